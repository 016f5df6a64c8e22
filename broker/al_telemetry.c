/*  al_telemetry.c: the metrics registry: atomic series, lock-free lookup, text exposition.

    Families and series are singly linked lists that only grow. A reader walks them
    with acquire loads and never locks; a writer that misses takes the mutex, looks
    again (another thread may have appended meanwhile), fully builds the new node and
    publishes it with one release store to its predecessor's `next`. Values are
    _Atomic uint64_t: counters as integers, gauges as the bits of a double, age gauges
    as a wall-clock time in ms, histograms as per-bucket counts plus the bits of their
    sum (updated by compare-and-swap). Rendering reads each atomic once; a scrape that
    races an update sees either side of it, which Prometheus tolerates.
*/
#include "broker/al_telemetry.h"
#include "base/al_clock.h"
#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const double s_duration_bounds [] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10
};
static const double s_size_bounds [] = { 1, 4, 16, 64, 256, 1024, 4096, 16384, 65536 };
#define S_MAX_BUCKETS (sizeof s_duration_bounds / sizeof s_duration_bounds [0])

struct _al_telemetry_series_t {
    char *value1, *value2;
    _Atomic uint64_t value;                 // see the file comment
    _Atomic uint64_t sum_bits;              // histogram
    _Atomic uint64_t buckets [S_MAX_BUCKETS];
    _Atomic (struct _al_telemetry_series_t *) next;
    struct _s_family_t *family;
};

typedef struct _s_family_t {
    char *name, *help, *label1, *label2;
    al_telemetry_kind_t kind;
    const double *bounds;
    size_t bound_count;
    _Atomic (al_telemetry_series_t *) series;
    _Atomic (struct _s_family_t *) next;
} s_family_t;

struct _al_telemetry_t {
    pthread_mutex_t lock;                   // appends only
    _Atomic (s_family_t *) families;
};

static uint64_t
s_bits (double value)
{
    uint64_t bits;
    memcpy (&bits, &value, sizeof bits);
    return bits;
}

static double
s_double (uint64_t bits)
{
    double value;
    memcpy (&value, &bits, sizeof value);
    return value;
}

static bool
s_same (const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp (a, b) == 0;
}

al_telemetry_t *
al_telemetry_new (void)
{
    al_telemetry_t *self = (al_telemetry_t *) calloc (1, sizeof *self);
    if (!self)
        return NULL;
    pthread_mutex_init (&self->lock, NULL);
    atomic_init (&self->families, NULL);
    return self;
}

void
al_telemetry_destroy (al_telemetry_t **self_p)
{
    assert (self_p);
    al_telemetry_t *self = *self_p;
    if (!self)
        return;
    s_family_t *family = atomic_load (&self->families);
    while (family) {
        s_family_t *next_family = atomic_load (&family->next);
        al_telemetry_series_t *series = atomic_load (&family->series);
        while (series) {
            al_telemetry_series_t *next = atomic_load (&series->next);
            free (series->value1);
            free (series->value2);
            free (series);
            series = next;
        }
        free (family->name);
        free (family->help);
        free (family->label1);
        free (family->label2);
        free (family);
        family = next_family;
    }
    pthread_mutex_destroy (&self->lock);
    free (self);
    *self_p = NULL;
}

static al_telemetry_t *s_process_registry;
static pthread_once_t s_process_once = PTHREAD_ONCE_INIT;

static void
s_process_create (void)
{
    s_process_registry = al_telemetry_new ();
}

al_telemetry_t *
al_telemetry_process (void)
{
    pthread_once (&s_process_once, s_process_create);
    return s_process_registry;
}

static s_family_t *
s_family_find (al_telemetry_t *self, const char *name)
{
    for (s_family_t *family = atomic_load_explicit (&self->families, memory_order_acquire); family;
         family = atomic_load_explicit (&family->next, memory_order_acquire))
        if (strcmp (family->name, name) == 0)
            return family;
    return NULL;
}

static al_telemetry_series_t *
s_series_find (s_family_t *family, const char *value1, const char *value2)
{
    for (al_telemetry_series_t *series = atomic_load_explicit (&family->series, memory_order_acquire); series;
         series = atomic_load_explicit (&series->next, memory_order_acquire))
        if (s_same (series->value1, value1) && s_same (series->value2, value2))
            return series;
    return NULL;
}

//  Called with the lock held.
static s_family_t *
s_family_append (al_telemetry_t *self, al_telemetry_kind_t kind, const char *name, const char *help,
                 const char *label1, const char *label2)
{
    s_family_t *family = (s_family_t *) calloc (1, sizeof *family);
    if (!family)
        return NULL;
    family->kind = kind;
    family->name = strdup (name);
    family->help = strdup (help? help: name);
    family->label1 = label1? strdup (label1): NULL;
    family->label2 = label2? strdup (label2): NULL;
    size_t length = strlen (name);
    if (length > 5 && strcmp (name + length - 5, "_size") == 0) {
        family->bounds = s_size_bounds;
        family->bound_count = sizeof s_size_bounds / sizeof s_size_bounds [0];
    }
    else {
        family->bounds = s_duration_bounds;
        family->bound_count = S_MAX_BUCKETS;
    }
    atomic_init (&family->series, NULL);
    atomic_init (&family->next, NULL);
    if (!family->name || !family->help || (label1 && !family->label1) || (label2 && !family->label2)) {
        free (family->name);
        free (family->help);
        free (family->label1);
        free (family->label2);
        free (family);
        return NULL;
    }
    _Atomic (s_family_t *) *link = &self->families;
    while (atomic_load (link))
        link = &atomic_load (link)->next;
    atomic_store_explicit (link, family, memory_order_release);
    return family;
}

//  Called with the lock held.
static al_telemetry_series_t *
s_series_append (s_family_t *family, const char *value1, const char *value2)
{
    al_telemetry_series_t *series = (al_telemetry_series_t *) calloc (1, sizeof *series);
    if (!series)
        return NULL;
    series->family = family;
    series->value1 = value1? strdup (value1): NULL;
    series->value2 = value2? strdup (value2): NULL;
    if ((value1 && !series->value1) || (value2 && !series->value2)) {
        free (series->value1);
        free (series->value2);
        free (series);
        return NULL;
    }
    atomic_init (&series->value, family->kind == AL_TELEMETRY_GAUGE? s_bits (0): 0);
    atomic_init (&series->sum_bits, s_bits (0));
    for (size_t i = 0; i < S_MAX_BUCKETS; i++)
        atomic_init (&series->buckets [i], 0);
    atomic_init (&series->next, NULL);
    _Atomic (al_telemetry_series_t *) *link = &family->series;
    while (atomic_load (link))
        link = &atomic_load (link)->next;
    atomic_store_explicit (link, series, memory_order_release);
    return series;
}

al_telemetry_series_t *
al_telemetry_series (al_telemetry_t *self, al_telemetry_kind_t kind, const char *name, const char *help,
                  const char *label1, const char *value1, const char *label2, const char *value2)
{
    assert (self);
    assert (name);
    assert ((label1 == NULL) == (value1 == NULL));
    assert ((label2 == NULL) == (value2 == NULL));
    assert (!label2 || label1);
    s_family_t *family = s_family_find (self, name);
    al_telemetry_series_t *series = family? s_series_find (family, value1, value2): NULL;
    if (series)
        return series;
    pthread_mutex_lock (&self->lock);
    family = s_family_find (self, name);
    if (!family)
        family = s_family_append (self, kind, name, help, label1, label2);
    if (family) {
        assert (family->kind == kind);
        assert (s_same (family->label1, label1) && s_same (family->label2, label2));
        series = s_series_find (family, value1, value2);
        if (!series)
            series = s_series_append (family, value1, value2);
    }
    pthread_mutex_unlock (&self->lock);
    return series;
}

void
al_telemetry_add (al_telemetry_series_t *series, uint64_t amount)
{
    if (!series)
        return;
    assert (series->family->kind == AL_TELEMETRY_COUNTER);
    atomic_fetch_add_explicit (&series->value, amount, memory_order_relaxed);
}

void
al_telemetry_set (al_telemetry_series_t *series, double value)
{
    if (!series)
        return;
    assert (series->family->kind == AL_TELEMETRY_GAUGE);
    atomic_store_explicit (&series->value, s_bits (value), memory_order_relaxed);
}

void
al_telemetry_touch (al_telemetry_series_t *series)
{
    if (!series)
        return;
    assert (series->family->kind == AL_TELEMETRY_AGE);
    atomic_store_explicit (&series->value, (uint64_t) al_clock_wall_ms (), memory_order_relaxed);
}

void
al_telemetry_observe (al_telemetry_series_t *series, double value)
{
    if (!series)
        return;
    s_family_t *family = series->family;
    assert (family->kind == AL_TELEMETRY_HISTOGRAM);
    if (isnan (value))
        return;
    //  Buckets hold the count of their own range; rendering makes them cumulative.
    size_t index = 0;
    while (index < family->bound_count && value > family->bounds [index])
        index++;
    if (index < family->bound_count)
        atomic_fetch_add_explicit (&series->buckets [index], 1, memory_order_relaxed);
    uint64_t old = atomic_load_explicit (&series->sum_bits, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit (&series->sum_bits, &old, s_bits (s_double (old) + value),
                                                   memory_order_relaxed, memory_order_relaxed))
        ;
    //  The count last: a scrape never sees more in the buckets than in the count.
    atomic_fetch_add_explicit (&series->value, 1, memory_order_release);
}

static double
s_age_seconds (uint64_t since_ms)
{
    uint64_t now = (uint64_t) al_clock_wall_ms ();
    return now > since_ms? (double) (now - since_ms) / 1000.0: 0;
}

double
al_telemetry_value (al_telemetry_series_t *series)
{
    assert (series);
    uint64_t value = atomic_load (&series->value);
    switch (series->family->kind) {
        case AL_TELEMETRY_GAUGE: return s_double (value);
        case AL_TELEMETRY_AGE: return value? s_age_seconds (value): NAN;
        case AL_TELEMETRY_COUNTER:
        case AL_TELEMETRY_HISTOGRAM: break;
    }
    return (double) value;
}

//  A label value as the exposition format wants it: \\, \" and \n escaped.
static void
s_put_label_value (FILE *out, const char *value)
{
    for (const char *p = value; *p; p++) {
        if (*p == '\\')
            fputs ("\\\\", out);
        else
        if (*p == '"')
            fputs ("\\\"", out);
        else
        if (*p == '\n')
            fputs ("\\n", out);
        else
            fputc (*p, out);
    }
}

//  HELP text escapes only \\ and \n.
static void
s_put_help (FILE *out, const char *help)
{
    for (const char *p = help; *p; p++) {
        if (*p == '\\')
            fputs ("\\\\", out);
        else
        if (*p == '\n')
            fputs ("\\n", out);
        else
            fputc (*p, out);
    }
}

static void
s_put_double (FILE *out, double value)
{
    if (isnan (value))
        fputs ("NaN", out);
    else
    if (isinf (value))
        fputs (value > 0? "+Inf": "-Inf", out);
    else
        fprintf (out, "%.17g", value);
}

//  {label1="v1",label2="v2"[,le="bound"]} or nothing.
static void
s_put_labels (FILE *out, const al_telemetry_series_t *series, const char *le)
{
    const s_family_t *family = series->family;
    if (!family->label1 && !le)
        return;
    fputc ('{', out);
    const char *separator = "";
    if (family->label1) {
        fprintf (out, "%s=\"", family->label1);
        s_put_label_value (out, series->value1);
        fputc ('"', out);
        separator = ",";
    }
    if (family->label2) {
        fprintf (out, ",%s=\"", family->label2);
        s_put_label_value (out, series->value2);
        fputc ('"', out);
    }
    if (le)
        fprintf (out, "%sle=\"%s\"", separator, le);
    fputc ('}', out);
}

static void
s_render_series (FILE *out, const s_family_t *family, al_telemetry_series_t *series)
{
    uint64_t value = atomic_load_explicit (&series->value, memory_order_acquire);
    switch (family->kind) {
        case AL_TELEMETRY_COUNTER:
            fputs (family->name, out);
            s_put_labels (out, series, NULL);
            fprintf (out, " %llu\n", (unsigned long long) value);
            break;
        case AL_TELEMETRY_GAUGE:
        case AL_TELEMETRY_AGE:
            if (family->kind == AL_TELEMETRY_AGE && value == 0)
                break;              // never touched: no sample rather than a made-up age
            fputs (family->name, out);
            s_put_labels (out, series, NULL);
            fputc (' ', out);
            s_put_double (out, family->kind == AL_TELEMETRY_AGE? s_age_seconds (value): s_double (value));
            fputc ('\n', out);
            break;
        case AL_TELEMETRY_HISTOGRAM: {
            uint64_t cumulative = 0;
            for (size_t i = 0; i < family->bound_count; i++) {
                cumulative += atomic_load_explicit (&series->buckets [i], memory_order_relaxed);
                char le [32];
                snprintf (le, sizeof le, "%g", family->bounds [i]);
                fprintf (out, "%s_bucket", family->name);
                s_put_labels (out, series, le);
                fprintf (out, " %llu\n", (unsigned long long) cumulative);
            }
            //  value (the count) was read first, so it is at most what the buckets
            //  hold now; +Inf takes the larger, keeping the buckets monotonic.
            uint64_t count = value > cumulative? value: cumulative;
            fprintf (out, "%s_bucket", family->name);
            s_put_labels (out, series, "+Inf");
            fprintf (out, " %llu\n", (unsigned long long) count);
            fprintf (out, "%s_sum", family->name);
            s_put_labels (out, series, NULL);
            fputc (' ', out);
            s_put_double (out, s_double (atomic_load_explicit (&series->sum_bits, memory_order_relaxed)));
            fputc ('\n', out);
            fprintf (out, "%s_count", family->name);
            s_put_labels (out, series, NULL);
            fprintf (out, " %llu\n", (unsigned long long) count);
            break;
        }
    }
}

char *
al_telemetry_render (al_telemetry_t *self)
{
    assert (self);
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&text, &size);
    if (!out)
        return NULL;
    static const char *type_names [] = {
        [AL_TELEMETRY_COUNTER] = "counter", [AL_TELEMETRY_GAUGE] = "gauge",
        [AL_TELEMETRY_AGE] = "gauge", [AL_TELEMETRY_HISTOGRAM] = "histogram",
    };
    for (s_family_t *family = atomic_load_explicit (&self->families, memory_order_acquire); family;
         family = atomic_load_explicit (&family->next, memory_order_acquire)) {
        fprintf (out, "# HELP %s ", family->name);
        s_put_help (out, family->help);
        fprintf (out, "\n# TYPE %s %s\n", family->name, type_names [family->kind]);
        for (al_telemetry_series_t *series = atomic_load_explicit (&family->series, memory_order_acquire); series;
             series = atomic_load_explicit (&series->next, memory_order_acquire))
            s_render_series (out, family, series);
    }
    if (fclose (out) != 0) {
        free (text);
        return NULL;
    }
    return text;
}
