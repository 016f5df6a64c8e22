/*  ds_faults.c: the faults demo-service injects, changeable while it runs.

    A mutex guards the settings; readers copy them out, so a request sees one
    consistent set. The CPU-burn thread runs for the object's whole life: each 100 ms
    period it spins until it has used cpu_burn_percent of the period in CPU time and
    sleeps the rest, so a change through POST /fault takes effect within a period.
    Random draws use a per-thread xorshift generator, seeded from the clock and the
    thread, so request threads never contend for it.
*/
#include "ds_faults.h"
#include <assert.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_BURN_PERIOD_NS 100000000LL

struct _ds_faults_t {
    pthread_mutex_t mutex;
    ds_fault_values_t values;       //  under mutex
    pthread_t burner;
    atomic_bool stopping;
};

static int64_t
s_now_ns (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (int64_t) now.tv_sec * 1000000000LL + now.tv_nsec;
}

static int64_t
s_thread_cpu_ns (void)
{
    struct timespec now;
    clock_gettime (CLOCK_THREAD_CPUTIME_ID, &now);
    return (int64_t) now.tv_sec * 1000000000LL + now.tv_nsec;
}

static void
s_sleep_until_ns (int64_t deadline)
{
    struct timespec until = { (time_t) (deadline / 1000000000LL), (long) (deadline % 1000000000LL) };
    while (clock_nanosleep (CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) == EINTR)
        ;
}

static void *
s_burner (void *arg)
{
    ds_faults_t *self = (ds_faults_t *) arg;
    volatile uint64_t sink = 0;
    while (!atomic_load (&self->stopping)) {
        pthread_mutex_lock (&self->mutex);
        int percent = self->values.cpu_burn_percent;
        pthread_mutex_unlock (&self->mutex);
        //  Spin until this thread has had its share of CPU time in the period, not
        //  its share of wall time: on a busy machine, preemption would otherwise
        //  make the burn fall short of the percentage asked for.
        int64_t start = s_now_ns ();
        int64_t end = start + S_BURN_PERIOD_NS;
        int64_t cpu_start = s_thread_cpu_ns ();
        int64_t cpu_share = S_BURN_PERIOD_NS * percent / 100;
        while (s_thread_cpu_ns () - cpu_start < cpu_share && s_now_ns () < end)
            for (int i = 0; i < 1000; i++)
                sink = sink * 6364136223846793005ULL + 1442695040888963407ULL;
        s_sleep_until_ns (end);
    }
    return NULL;
}

ds_faults_t *
ds_faults_new (const ds_options_t *options)
{
    assert (options);
    ds_faults_t *self = (ds_faults_t *) calloc (1, sizeof *self);
    if (!self)
        return NULL;
    pthread_mutex_init (&self->mutex, NULL);
    self->values = (ds_fault_values_t) {
        .error_rate = options->error_rate,
        .latency_ms = options->latency_ms,
        .jitter_ms = options->jitter_ms,
        .cpu_burn_percent = options->cpu_burn_percent,
        .fail_readiness = options->fail_readiness
    };
    atomic_init (&self->stopping, false);
    if (pthread_create (&self->burner, NULL, s_burner, self) != 0) {
        pthread_mutex_destroy (&self->mutex);
        free (self);
        return NULL;
    }
    return self;
}

void
ds_faults_destroy (ds_faults_t **self_p)
{
    assert (self_p);
    ds_faults_t *self = *self_p;
    if (!self)
        return;
    atomic_store (&self->stopping, true);
    pthread_join (self->burner, NULL);
    pthread_mutex_destroy (&self->mutex);
    free (self);
    *self_p = NULL;
}

void
ds_faults_get (ds_faults_t *self, ds_fault_values_t *values)
{
    assert (self && values);
    pthread_mutex_lock (&self->mutex);
    *values = self->values;
    pthread_mutex_unlock (&self->mutex);
}

void
ds_faults_set (ds_faults_t *self, const ds_fault_values_t *values)
{
    assert (self && values);
    pthread_mutex_lock (&self->mutex);
    self->values = *values;
    pthread_mutex_unlock (&self->mutex);
}

static int
s_parse_int (const char *name, const char *text, long min, long max, int *out,
             char *error, size_t error_size)
{
    char *end = NULL;
    errno = 0;
    long number = strtol (text, &end, 10);
    if (errno || end == text || *end || number < min || number > max) {
        snprintf (error, error_size, "%s: '%.32s' is not an integer in %ld..%ld", name, text, min, max);
        return -1;
    }
    *out = (int) number;
    return 0;
}

int
ds_faults_parse (ds_fault_values_t *values, const char *name, const char *text,
                 char *error, size_t error_size)
{
    assert (values && name);
    if (!text)
        text = "";
    if (strcmp (name, "error_rate") == 0) {
        char *end = NULL;
        errno = 0;
        double rate = strtod (text, &end);
        if (errno || end == text || *end || !isfinite (rate) || rate < 0 || rate > 1) {
            snprintf (error, error_size, "error_rate: '%.32s' is not a number in 0..1", text);
            return -1;
        }
        values->error_rate = rate;
        return 0;
    }
    if (strcmp (name, "latency_ms") == 0)
        return s_parse_int (name, text, 0, 60000, &values->latency_ms, error, error_size);
    if (strcmp (name, "jitter_ms") == 0)
        return s_parse_int (name, text, 0, 60000, &values->jitter_ms, error, error_size);
    if (strcmp (name, "cpu_burn") == 0)
        return s_parse_int (name, text, 0, 100, &values->cpu_burn_percent, error, error_size);
    if (strcmp (name, "fail_readiness") == 0) {
        int flag = 0;
        if (s_parse_int (name, text, 0, 1, &flag, error, error_size))
            return -1;
        values->fail_readiness = flag == 1;
        return 0;
    }
    snprintf (error, error_size, "%.32s: unknown fault (error_rate, latency_ms, jitter_ms, "
              "cpu_burn, fail_readiness)", name);
    return -1;
}

//  A uniform double in [0, 1) from this thread's generator.
static double
s_random_unit (void)
{
    static atomic_uint_fast64_t threads = 0;
    static _Thread_local uint64_t state = 0;
    if (state == 0) {
        uint64_t mix = (uint64_t) s_now_ns () ^ ((atomic_fetch_add (&threads, 1) + 1) * 0x9E3779B97F4A7C15ULL);
        state = mix ? mix : 1;
    }
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return (double) (state >> 11) / 9007199254740992.0;    //  2^53
}

void
ds_faults_draw (ds_faults_t *self, bool *fail, int *delay_ms)
{
    assert (self && fail && delay_ms);
    ds_fault_values_t values;
    ds_faults_get (self, &values);
    *fail = s_random_unit () < values.error_rate;
    *delay_ms = values.latency_ms;
    if (values.jitter_ms > 0)
        *delay_ms += (int) (s_random_unit () * (values.jitter_ms + 1));
}
