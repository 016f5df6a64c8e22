/*  al_signals.c: golden signals of a service from successive scrapes of its instances.

    Each instance keeps only its latest good scrape. When the next good scrape arrives,
    the increase of every relevant series since the kept one is computed at once (the
    instance's "window": requests, errors, bucket increases, and its length) and the
    old scrape is dropped; al_signals_sample then only sums windows. Increases are per
    series, as rate() computes them: a lower value than before is a counter reset and
    counts in full; a series absent from the earlier scrape counts in full too (it was
    created since, from zero; rate() would miss those first requests, and the first 5xx
    of a bad release is exactly what must not be missed).

    Invariants: report times of an instance strictly increase; a window exists only
    between two good scrapes; window_ms > 0.

    Not thread-safe: one owner.
*/
#include "base/al_error.h"
#include "deploy/al_signals.h"
#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *name;
    al_metrics_t *metrics;          // latest good scrape, NULL before the first
    int64_t metrics_ms;
    int64_t last_report_ms;         // -1 before the first report
    bool last_failed;
    uint32_t consecutive_failures;
    char *last_error;
    //  Between the two latest good scrapes.
    bool has_window;
    int64_t window_ms;
    double requests;
    double errors;
    al_metric_bucket_t *buckets;    // increase per bucket series, unsorted
    size_t bucket_count;
    //  From the latest good scrape (CPU seconds: the two latest); NaN when absent.
    double cpu;
    double memory;
    const char *memory_basis;       // of memory ("" when NaN)
    uint64_t memory_limit;          // al_signals_set_memory_limit, 0: none
    const char *memory_limit_basis;
} s_instance_t;

struct _al_signals_t {
    char *service;
    char *environment;
    al_signals_config_t config;     // strings owned
    s_instance_t **instances;
    size_t instance_count;
    size_t instance_alloc;
    uint64_t sequence;
};

void
al_signals_config_default (al_signals_config_t *config)
{
    assert (config);
    memset (config, 0, sizeof *config);
    config->requests_metric = AL_SIGNALS_DEFAULT_REQUESTS_METRIC;
    config->status_label = NULL;        // per series: code, else status
    config->error_prefix = AL_SIGNALS_DEFAULT_ERROR_PREFIX;
    config->latency_metric = AL_SIGNALS_DEFAULT_LATENCY_METRIC;
    config->latency_to_ms = AL_SIGNALS_DEFAULT_LATENCY_TO_MS;
    config->cpu_metric = AL_SIGNALS_DEFAULT_CPU_METRIC;
    config->memory_metric = AL_SIGNALS_DEFAULT_MEMORY_METRIC;
    config->stale_after_ms = AL_SIGNALS_DEFAULT_STALE_AFTER_MS;
}

static void
s_instance_destroy (s_instance_t **self_p)
{
    s_instance_t *self = *self_p;
    if (!self)
        return;
    al_metrics_destroy (&self->metrics);
    free (self->name);
    free (self->last_error);
    free (self->buckets);
    free (self);
    *self_p = NULL;
}

void
al_signals_destroy (al_signals_t **self_p)
{
    assert (self_p);
    al_signals_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->instance_count; i++)
        s_instance_destroy (&self->instances [i]);
    free (self->instances);
    free (self->service);
    free (self->environment);
    free ((char *) self->config.requests_metric);
    free ((char *) self->config.status_label);
    free ((char *) self->config.error_prefix);
    free ((char *) self->config.latency_metric);
    free ((char *) self->config.cpu_metric);
    free ((char *) self->config.memory_metric);
    if (self->config.error_statuses) {
        for (size_t i = 0; self->config.error_statuses [i]; i++)
            free ((char *) self->config.error_statuses [i]);
        free ((char **) self->config.error_statuses);
    }
    free (self);
    *self_p = NULL;
}

static bool
s_nonempty (const char *text)
{
    return text && *text;
}

al_signals_t *
al_signals_new (const char *service, const char *environment, const al_signals_config_t *config)
{
    assert (service);
    assert (environment);
    al_signals_config_t defaults;
    al_signals_config_default (&defaults);
    if (!config)
        config = &defaults;
    if (!s_nonempty (config->requests_metric)
    ||  (!config->error_prefix && !config->error_statuses) || !s_nonempty (config->latency_metric)
    ||  !s_nonempty (config->cpu_metric) || !s_nonempty (config->memory_metric)
    ||  !(config->latency_to_ms > 0) || config->stale_after_ms <= 0
    ||  !(config->cpu_limit_cores >= 0) || config->cpu_kind > AL_SIGNALS_CPU_PERCENT_GAUGE
    ||  config->memory_kind > AL_SIGNALS_MEMORY_PERCENT_GAUGE)
        return NULL;
    al_signals_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->service = strdup (service);
    self->environment = strdup (environment);
    self->config = *config;
    self->config.requests_metric = strdup (config->requests_metric);
    self->config.status_label = s_nonempty (config->status_label) ? strdup (config->status_label) : NULL;
    self->config.error_prefix = strdup (config->error_prefix ? config->error_prefix : "");
    self->config.error_statuses = NULL;
    bool copied = true;
    if (config->error_statuses) {
        size_t count = 0;
        while (config->error_statuses [count])
            count++;
        char **statuses = calloc (count + 1, sizeof *statuses);
        for (size_t i = 0; statuses && i < count; i++)
            copied = copied && (statuses [i] = strdup (config->error_statuses [i]));
        self->config.error_statuses = (const char *const *) statuses;
        copied = copied && statuses;
    }
    if (!self->config.machine_memory_bytes)
        self->config.machine_memory_bytes = al_signals_machine_memory ();
    self->config.latency_metric = strdup (config->latency_metric);
    self->config.cpu_metric = strdup (config->cpu_metric);
    self->config.memory_metric = strdup (config->memory_metric);
    if (!self->service || !self->environment || !self->config.requests_metric
    ||  (s_nonempty (config->status_label) && !self->config.status_label) || !self->config.error_prefix
    ||  !copied
    ||  !self->config.latency_metric || !self->config.cpu_metric || !self->config.memory_metric)
        al_signals_destroy (&self);
    return self;
}

const char *
al_signals_service (const al_signals_t *self)
{
    assert (self);
    return self->service;
}

const char *
al_signals_environment (const al_signals_t *self)
{
    assert (self);
    return self->environment;
}

static s_instance_t *
s_find_instance (const al_signals_t *self, const char *name, size_t *index_p)
{
    for (size_t i = 0; i < self->instance_count; i++)
        if (strcmp (self->instances [i]->name, name) == 0) {
            if (index_p)
                *index_p = i;
            return self->instances [i];
        }
    return NULL;
}

int
al_signals_add_instance (al_signals_t *self, const char *instance)
{
    assert (self);
    assert (instance);
    if (s_find_instance (self, instance, NULL))
        return -1;
    if (self->instance_count == self->instance_alloc) {
        size_t alloc = self->instance_alloc ? self->instance_alloc * 2 : 8;
        s_instance_t **instances = realloc (self->instances, alloc * sizeof *instances);
        if (!instances)
            return -1;
        self->instances = instances;
        self->instance_alloc = alloc;
    }
    s_instance_t *entry = calloc (1, sizeof *entry);
    if (!entry)
        return -1;
    entry->name = strdup (instance);
    if (!entry->name) {
        free (entry);
        return -1;
    }
    entry->last_report_ms = -1;
    entry->cpu = NAN;
    entry->memory = NAN;
    entry->memory_basis = "";
    self->instances [self->instance_count++] = entry;
    return 0;
}

int
al_signals_set_memory_limit (al_signals_t *self, const char *instance, uint64_t bytes,
                             const char *basis)
{
    assert (self);
    assert (instance);
    s_instance_t *entry = s_find_instance (self, instance, NULL);
    if (!entry)
        return -1;
    entry->memory_limit = bytes;
    entry->memory_limit_basis = bytes ? (basis ? basis : "cgroup") : NULL;
    return 0;
}

//  The first line of path as an unsigned number; 0 when it is not one (e.g. "max").
static uint64_t
s_read_number (const char *path)
{
    FILE *file = fopen (path, "r");
    if (!file)
        return 0;
    char line [64] = "";
    bool read = fgets (line, sizeof line, file) != NULL;
    fclose (file);
    char *end = NULL;
    unsigned long long number = read && line [0] >= '0' && line [0] <= '9' ? strtoull (line, &end, 10) : 0;
    return end && (*end == '\n' || *end == '\0') ? (uint64_t) number : 0;
}

uint64_t
al_signals_cgroup_memory_limit (int pid)
{
    if (pid <= 0)
        return 0;
    char path [64];
    snprintf (path, sizeof path, "/proc/%d/cgroup", pid);
    return al_signals_cgroup_memory_limit_in (path, "/sys/fs/cgroup");
}

uint64_t
al_signals_cgroup_memory_limit_in (const char *cgroup_file, const char *cgroup_root)
{
    assert (cgroup_file);
    assert (cgroup_root);
    FILE *file = fopen (cgroup_file, "r");
    if (!file)
        return 0;
    char line [1024];
    uint64_t limit = 0;
    //  cgroup v2: the one line "0::/path". The limit that applies is the lowest
    //  memory.max that is a number, on the cgroup or any of its ancestors.
    while (fgets (line, sizeof line, file)) {
        if (strncmp (line, "0::", 3) != 0)
            continue;
        char *group = line + 3;
        group [strcspn (group, "\n")] = '\0';
        if (group [0] != '/' || strstr (group, ".."))
            break;
        char *end = group + strlen (group);
        while (true) {
            char max_path [2400];
            snprintf (max_path, sizeof max_path, "%.1000s%.*s/memory.max", cgroup_root, (int) (end - group),
                      group);
            uint64_t here = s_read_number (max_path);
            if (here && (!limit || here < limit))
                limit = here;
            if (end == group)
                break;
            while (end > group && *--end != '/')
                ;
        }
        break;
    }
    fclose (file);
    return limit;
}

uint64_t
al_signals_machine_memory (void)
{
    FILE *file = fopen ("/proc/meminfo", "r");
    if (!file)
        return 0;
    char line [256];
    uint64_t bytes = 0;
    while (fgets (line, sizeof line, file)) {
        unsigned long long kilobytes;
        if (sscanf (line, "MemTotal: %llu kB", &kilobytes) == 1) {
            bytes = (uint64_t) kilobytes * 1024;
            break;
        }
    }
    fclose (file);
    return bytes;
}

int
al_signals_remove_instance (al_signals_t *self, const char *instance)
{
    assert (self);
    assert (instance);
    size_t index;
    if (!s_find_instance (self, instance, &index))
        return -1;
    s_instance_destroy (&self->instances [index]);
    memmove (&self->instances [index], &self->instances [index + 1],
             (self->instance_count - index - 1) * sizeof self->instances [0]);
    self->instance_count--;
    return 0;
}

//  The instance a report is about, if the report is acceptable.
static s_instance_t *
s_reported (al_signals_t *self, const char *instance, int64_t timestamp_ms, char *error,
            size_t error_size)
{
    assert (instance);
    s_instance_t *entry = s_find_instance (self, instance, NULL);
    if (!entry) {
        al_error_set (error, error_size, "%s: not an instance of %s", instance, self->service);
        return NULL;
    }
    if (entry->last_report_ms >= 0 && timestamp_ms <= entry->last_report_ms) {
        al_error_set (error, error_size, "%s: scrape time %lld is not after the previous report "
                     "(%lld)", instance, (long long) timestamp_ms, (long long) entry->last_report_ms);
        return NULL;
    }
    return entry;
}

//  Increase of a counter series from earlier (NULL: series new since) to now (finite).
static double
s_increase (const al_metric_sample_t *earlier, double now)
{
    if (!earlier || !isfinite (earlier->value) || now < earlier->value)
        return now;
    return now - earlier->value;
}

//  The status of a request series: the configured label, else "code" when the series
//  carries it, else "status".
static const char *
s_status (const al_signals_config_t *config, const al_metric_sample_t *sample)
{
    if (config->status_label)
        return al_metric_sample_label (sample, config->status_label);
    const char *status = al_metric_sample_label (sample, AL_SIGNALS_DEFAULT_STATUS_LABEL);
    return status ? status : al_metric_sample_label (sample, AL_SIGNALS_FALLBACK_STATUS_LABEL);
}

//  Is status an error: a class ("5xx") or code ("429") of error_statuses, else a
//  value starting with error_prefix.
static bool
s_is_error (const al_signals_config_t *config, const char *status)
{
    if (!status)
        return false;
    if (!config->error_statuses)
        return strncmp (status, config->error_prefix, strlen (config->error_prefix)) == 0;
    for (size_t i = 0; config->error_statuses [i]; i++) {
        const char *item = config->error_statuses [i];
        bool is_class = strlen (item) == 3 && strcmp (item + 1, "xx") == 0;
        if (is_class ? (strlen (status) == 3 && status [0] == item [0]) : strcmp (status, item) == 0)
            return true;
    }
    return false;
}

//  Sum of the finite values of the samples named name, NaN if none (a counter split by
//  mode or cpu, such as some exporters' CPU seconds, adds up).
static double
s_counter_total (const al_metrics_t *metrics, const char *name)
{
    const al_metric_family_t *family = al_metrics_find (metrics, name);
    double total = NAN;
    for (size_t i = 0; family && i < family->sample_count; i++) {
        const al_metric_sample_t *sample = &family->samples [i];
        if (strcmp (sample->name, name) == 0 && isfinite (sample->value))
            total = isnan (total) ? sample->value : total + sample->value;
    }
    return total;
}

//  Highest non-NaN value of the samples named name, NaN if none.
static double
s_gauge (const al_metrics_t *metrics, const char *name)
{
    const al_metric_family_t *family = al_metrics_find (metrics, name);
    double result = NAN;
    for (size_t i = 0; family && i < family->sample_count; i++) {
        const al_metric_sample_t *sample = &family->samples [i];
        if (strcmp (sample->name, name) == 0 && !isnan (sample->value)
        &&  (isnan (result) || sample->value > result))
            result = sample->value;
    }
    return result;
}

//  The window between the kept scrape (earlier) and now. Returns 0, -1 out of memory.
static int
s_compute_window (const al_signals_t *self, s_instance_t *entry, const al_metrics_t *earlier,
                  const al_metrics_t *now, int64_t window_ms)
{
    const al_signals_config_t *config = &self->config;
    double requests = 0, errors = 0;
    const al_metric_family_t *family = al_metrics_find (now, config->requests_metric);
    for (size_t i = 0; family && i < family->sample_count; i++) {
        const al_metric_sample_t *sample = &family->samples [i];
        //  NaN or infinite counters carry no usable increase.
        if (strcmp (sample->name, config->requests_metric) != 0 || !isfinite (sample->value))
            continue;
        double increase = s_increase (al_metrics_lookup (earlier, sample), sample->value);
        requests += increase;
        if (s_is_error (config, s_status (config, sample)))
            errors += increase;
    }
    al_metric_bucket_t *buckets = NULL;
    size_t bucket_count = 0;
    family = al_metrics_find (now, config->latency_metric);
    if (family && family->type == AL_METRIC_HISTOGRAM && family->sample_count > 0) {
        buckets = malloc (family->sample_count * sizeof *buckets);
        if (!buckets)
            return -1;
        for (size_t i = 0; i < family->sample_count; i++) {
            const al_metric_sample_t *sample = &family->samples [i];
            const char *le = al_metric_sample_label (sample, "le");
            double bound;
            //  Only _bucket samples carry le in a parsed histogram.
            if (!le || !al_metric_parse_value (le, &bound) || !isfinite (sample->value))
                continue;
            buckets [bucket_count].upper_bound = bound;
            buckets [bucket_count].count = s_increase (al_metrics_lookup (earlier, sample),
                                                       sample->value);
            bucket_count++;
        }
    }
    free (entry->buckets);
    entry->buckets = buckets;
    entry->bucket_count = bucket_count;
    entry->requests = requests;
    entry->errors = errors;
    entry->window_ms = window_ms;
    entry->has_window = true;
    return 0;
}

//  CPU and memory of entry after a good scrape now (earlier: the one before, or NULL).
static void
s_saturation (const al_signals_t *self, s_instance_t *entry, const al_metrics_t *earlier,
              const al_metrics_t *now, int64_t window_ms)
{
    const al_signals_config_t *config = &self->config;
    if (config->cpu_kind == AL_SIGNALS_CPU_PERCENT_GAUGE)
        entry->cpu = s_gauge (now, config->cpu_metric);
    else {
        //  A rate needs two scrapes: the first one of an instance gives no CPU evidence.
        double before = earlier ? s_counter_total (earlier, config->cpu_metric) : NAN;
        double after = s_counter_total (now, config->cpu_metric);
        entry->cpu = NAN;
        if (isfinite (before) && isfinite (after) && window_ms > 0) {
            double used = after >= before ? after - before : after;    // a reset: a new process
            double cores = config->cpu_limit_cores > 0 ? config->cpu_limit_cores : 1.0;
            entry->cpu = used / ((double) window_ms / 1000.0) / cores * 100.0;
        }
    }
    if (config->memory_kind == AL_SIGNALS_MEMORY_PERCENT_GAUGE) {
        entry->memory = s_gauge (now, config->memory_metric);
        entry->memory_basis = "gauge";
    }
    else {
        double bytes = s_gauge (now, config->memory_metric);
        uint64_t limit = config->memory_limit_bytes;
        entry->memory_basis = "services.yaml";
        if (!limit && entry->memory_limit) {
            limit = entry->memory_limit;
            entry->memory_basis = entry->memory_limit_basis;
        }
        else
        if (!limit) {
            limit = config->machine_memory_bytes;
            entry->memory_basis = "machine";
        }
        entry->memory = limit && !isnan (bytes) ? bytes / (double) limit * 100.0 : NAN;
    }
    if (isnan (entry->memory))
        entry->memory_basis = "";
}

int
al_signals_scrape_ok (al_signals_t *self, const char *instance, int64_t timestamp_ms,
                      al_metrics_t **metrics_p, char *error, size_t error_size)
{
    assert (self);
    assert (metrics_p && *metrics_p);
    al_metrics_t *metrics = *metrics_p;
    *metrics_p = NULL;
    int rc = -1;
    s_instance_t *entry = s_reported (self, instance, timestamp_ms, error, error_size);
    if (!entry)
        goto cleanup;
    if (entry->metrics) {
        assert (timestamp_ms > entry->metrics_ms);
        if (s_compute_window (self, entry, entry->metrics, metrics,
                              timestamp_ms - entry->metrics_ms)) {
            al_error_set (error, error_size, "%s: out of memory", instance);
            goto cleanup;
        }
    }
    s_saturation (self, entry, entry->metrics, metrics, timestamp_ms - entry->metrics_ms);
    al_metrics_destroy (&entry->metrics);
    entry->metrics = metrics;
    metrics = NULL;
    entry->metrics_ms = timestamp_ms;
    entry->last_report_ms = timestamp_ms;
    entry->last_failed = false;
    entry->consecutive_failures = 0;
    free (entry->last_error);
    entry->last_error = NULL;
    rc = 0;
cleanup:
    al_metrics_destroy (&metrics);
    return rc;
}

int
al_signals_scrape_failed (al_signals_t *self, const char *instance, int64_t timestamp_ms,
                          const char *reason, char *error, size_t error_size)
{
    assert (self);
    s_instance_t *entry = s_reported (self, instance, timestamp_ms, error, error_size);
    if (!entry)
        return -1;
    char *copy = strdup (reason ? reason : "scrape failed");
    if (!copy) {
        al_error_set (error, error_size, "%s: out of memory", instance);
        return -1;
    }
    free (entry->last_error);
    entry->last_error = copy;
    entry->last_report_ms = timestamp_ms;
    entry->last_failed = true;
    if (entry->consecutive_failures < UINT32_MAX)
        entry->consecutive_failures++;
    return 0;
}

static bool
s_is_missing (const al_signals_t *self, const s_instance_t *entry, int64_t now_ms)
{
    return entry->last_report_ms < 0 || now_ms - entry->last_report_ms > self->config.stale_after_ms;
}

static double
s_max (double a, double b)
{
    if (isnan (a))
        return b;
    if (isnan (b))
        return a;
    return a > b ? a : b;
}

//  Is entry one of ids (all instances when ids is NULL)?
static bool
s_selected (const s_instance_t *entry, const char *const *ids, size_t count)
{
    if (!ids)
        return true;
    for (size_t i = 0; i < count; i++)
        if (ids [i] && strcmp (ids [i], entry->name) == 0)
            return true;
    return false;
}

static void
s_sample (al_signals_t *self, int64_t now_ms, bool baseline, const char *const *ids, size_t id_count, bool publish,
          al_signals_sample_t *sample)
{
    assert (self);
    assert (sample);
    memset (sample, 0, sizeof *sample);
    sample->service = self->service;
    //  Only a published sample moves the sequence subscribers check for gaps.
    sample->sequence = publish? ++self->sequence: 0;
    sample->baseline = baseline;
    sample->cpu_percent = NAN;
    sample->memory_percent = NAN;
    sample->memory_basis = "";
    sample->not_required = self->config.not_required;
    double requests = 0, errors = 0;
    size_t bucket_count = 0;
    for (size_t i = 0; i < self->instance_count; i++) {
        const s_instance_t *entry = self->instances [i];
        if (!s_selected (entry, ids, id_count))
            continue;
        sample->instances_total++;
        if (entry->consecutive_failures > sample->consecutive_health_failures)
            sample->consecutive_health_failures = entry->consecutive_failures;
        if (s_is_missing (self, entry, now_ms)) {
            sample->instances_missing++;
            continue;
        }
        if (entry->last_failed) {
            sample->instances_failing++;
            continue;
        }
        sample->instances_up++;
        sample->cpu_percent = s_max (sample->cpu_percent, entry->cpu);
        if (!isnan (entry->memory) && (isnan (sample->memory_percent) || entry->memory > sample->memory_percent)) {
            sample->memory_percent = entry->memory;
            sample->memory_basis = entry->memory_basis;
        }
        if (!entry->has_window)
            continue;
        assert (entry->window_ms > 0);
        sample->requests_per_second += entry->requests / ((double) entry->window_ms / 1000.0);
        requests += entry->requests;
        errors += entry->errors;
        bucket_count += entry->bucket_count;
    }
    sample->error_ratio = requests > 0 ? errors / requests : 0;
    //  Buckets of all up instances together: histogram_quantile coalesces equal bounds,
    //  which is sum by (le) over instances.
    sample->latency_p50_ms = NAN;
    sample->latency_p99_ms = NAN;
    al_metric_bucket_t *buckets = bucket_count ? malloc (bucket_count * sizeof *buckets) : NULL;
    if (!buckets)
        return;                     // no data (or no memory): no latency evidence
    size_t used = 0;
    for (size_t i = 0; i < self->instance_count; i++) {
        const s_instance_t *entry = self->instances [i];
        if (!s_selected (entry, ids, id_count) || s_is_missing (self, entry, now_ms) || entry->last_failed
        ||  !entry->has_window)
            continue;
        memcpy (buckets + used, entry->buckets, entry->bucket_count * sizeof *buckets);
        used += entry->bucket_count;
    }
    assert (used == bucket_count);
    sample->latency_p50_ms = al_histogram_quantile (0.5, buckets, used) * self->config.latency_to_ms;
    sample->latency_p99_ms = al_histogram_quantile (0.99, buckets, used) * self->config.latency_to_ms;
    free (buckets);
}

void
al_signals_sample (al_signals_t *self, int64_t now_ms, bool baseline, al_signals_sample_t *sample)
{
    s_sample (self, now_ms, baseline, NULL, 0, true, sample);
}

void
al_signals_sample_of (al_signals_t *self, int64_t now_ms, bool baseline, const char *const *ids, size_t count,
                      al_signals_sample_t *sample)
{
    assert (ids || count == 0);
    static const char *const none [1] = { NULL };
    s_sample (self, now_ms, baseline, ids? ids: none, count, true, sample);
}

void
al_signals_measure_of (al_signals_t *self, int64_t now_ms, const char *const *ids, size_t count,
                       al_signals_sample_t *sample)
{
    assert (ids || count == 0);
    static const char *const none [1] = { NULL };
    s_sample (self, now_ms, false, ids? ids: none, count, false, sample);
}

size_t
al_signals_instance_count (const al_signals_t *self)
{
    assert (self);
    return self->instance_count;
}

bool
al_signals_instance_at (const al_signals_t *self, size_t index, int64_t now_ms,
                        al_signals_instance_t *instance)
{
    assert (self);
    assert (instance);
    if (index >= self->instance_count)
        return false;
    const s_instance_t *entry = self->instances [index];
    instance->name = entry->name;
    instance->missing = s_is_missing (self, entry, now_ms);
    instance->up = !instance->missing && !entry->last_failed;
    instance->consecutive_failures = entry->consecutive_failures;
    instance->last_report_ms = entry->last_report_ms;
    instance->last_error = entry->last_error;
    return true;
}

void
al_signals_to_proto (const al_signals_sample_t *sample, Airlock__SoakSignal *message)
{
    assert (sample);
    assert (message);
    message->service = (char *) sample->service;
    message->sequence = sample->sequence;
    message->requests_per_second = sample->requests_per_second;
    message->error_ratio = sample->error_ratio;
    //  NaN ("no evidence") never goes on the wire: the field is 0 and its bit is set.
    message->no_evidence = 0;
    bool latency = isfinite (sample->latency_p50_ms) && isfinite (sample->latency_p99_ms);
    message->latency_p50_ms = latency? sample->latency_p50_ms: 0;
    message->latency_p99_ms = latency? sample->latency_p99_ms: 0;
    if (!latency)
        message->no_evidence |= AL_SIGNALS_NO_LATENCY;
    message->cpu_percent = isfinite (sample->cpu_percent)? sample->cpu_percent: 0;
    if (!isfinite (sample->cpu_percent))
        message->no_evidence |= AL_SIGNALS_NO_CPU;
    message->memory_percent = isfinite (sample->memory_percent)? sample->memory_percent: 0;
    if (!isfinite (sample->memory_percent))
        message->no_evidence |= AL_SIGNALS_NO_MEMORY;
    message->instances_missing = sample->instances_missing;
    message->instances_up = sample->instances_up;
    message->instances_total = sample->instances_total;
    message->consecutive_health_failures = sample->consecutive_health_failures;
    message->baseline = sample->baseline;
    message->not_required = sample->not_required;
    message->memory_basis = (char *) (sample->memory_basis ? sample->memory_basis : "");
    message->source = (char *) "scrape";
}
