/*  al_services_signals.c: the `resources:` and `signals:` keys of a service in
    services.yaml (the schema is in docs/drivers.md).

    resources: { cpu_cores, memory } are the limits CPU and memory are judged against.
    signals: is the short form "monitor | probes | prometheus" or the long form: source,
    which metrics of /metrics the monitor reads (requests, latency, cpu, memory, each
    with required), the Prometheus provider's url, timeout and queries, and the canary
    judge (compare_to_stable). Every optional value holds its default after load, so
    readers never test for "not configured" except where a NULL says so (status_label,
    prometheus.url, queries).

    Strict like the rest of al_services.c: an unknown key, a wrong type, a value out of
    range is "services.yaml:LINE:COL: services.NAME.signals.cpu.kind: what is wrong",
    recorded in the loader's al_yaml_t and the walk goes on. Cross-key rules (a
    prometheus source needs its url and a query per required signal; prometheus: with
    another source) are checked by al_services_signals_check once every key is read.
*/
#include "deploy/al_services_int.h"
#include "deploy/al_signals.h"
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_METRIC_NAME   200
#define S_MAX_URL           1024
#define S_MAX_QUERY         4096
#define S_MAX_ERROR_ITEMS   32

static const char *const s_default_error_statuses [] = { "5xx", NULL };

//  The query keys of signals.prometheus.queries, by al_signal_t.
static const char *const s_query_names [AL_SIGNAL_COUNT + 1] = {
    [AL_SIGNAL_REQUESTS_PER_SECOND] = "requests_per_second",
    [AL_SIGNAL_ERROR_RATIO] = "error_ratio",
    [AL_SIGNAL_LATENCY_P50_MS] = "latency_p50_ms",
    [AL_SIGNAL_LATENCY_P99_MS] = "latency_p99_ms",
    [AL_SIGNAL_CPU_PERCENT] = "cpu_percent",
    [AL_SIGNAL_MEMORY_PERCENT] = "memory_percent",
    [AL_SIGNAL_COUNT] = NULL,
};

void
al_services_signal_defaults (al_service_t *svc)
{
    al_service_signal_map_t *map = &svc->signal_map;
    map->requests_metric = AL_SIGNALS_DEFAULT_REQUESTS_METRIC;
    map->status_label = NULL;
    map->error_statuses = s_default_error_statuses;
    map->requests_required = true;
    map->latency_metric = AL_SIGNALS_DEFAULT_LATENCY_METRIC;
    map->latency_to_ms = AL_SIGNALS_DEFAULT_LATENCY_TO_MS;
    map->latency_required = true;
    map->cpu_kind = AL_SERVICE_CPU_SECONDS;
    map->cpu_metric = AL_SIGNALS_DEFAULT_CPU_METRIC;
    map->cpu_required = true;
    map->memory_kind = AL_SERVICE_MEMORY_BYTES;
    map->memory_metric = AL_SIGNALS_DEFAULT_MEMORY_METRIC;
    map->memory_required = true;
    svc->prometheus.url = NULL;
    svc->prometheus.timeout_ms = AL_SERVICE_DEFAULT_PROMETHEUS_TIMEOUT_MS;
    for (int i = 0; i < AL_SIGNAL_COUNT; i++)
        svc->prometheus.queries [i] = NULL;
    svc->canary_judge.enabled = true;
    svc->canary_judge.alpha = AL_SERVICE_DEFAULT_CANARY_ALPHA;
    svc->canary_judge.min_samples = AL_SERVICE_DEFAULT_CANARY_MIN_SAMPLES;
    svc->canary_judge.min_latency_increase_percent = AL_SERVICE_DEFAULT_CANARY_MIN_LATENCY_INCREASE_PERCENT;
    svc->canary_judge.min_error_increase_points = AL_SERVICE_DEFAULT_CANARY_MIN_ERROR_INCREASE_POINTS;
    svc->cpu_limit_cores = 0;
    svc->memory_limit_bytes = 0;
}

//  ---------------------------------------------------------------------------------
//  Values

//  A pooled copy of a string value; NULL after an error.
static const char *
s_pooled (al_services_loader_t *L, const char *value)
{
    const char *copy = al_services_pool_strdup (L->self, value);
    if (!copy)
        al_yaml_out_of_memory (L->yaml);
    return copy;
}

//  A plain true or false.
static bool
s_bool (al_services_loader_t *L, yaml_node_t *node, const char *field, bool *out)
{
    const char *value = al_yaml_scalar (node);
    if (value && node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
        if (strcmp (value, "true") == 0) {
            *out = true;
            return true;
        }
        if (strcmp (value, "false") == 0) {
            *out = false;
            return true;
        }
    }
    al_yaml_error (L->yaml, node, field, "expected true or false, found %s",
                   value && !al_yaml_is_null (node) ? "another value" : al_yaml_kind_name (node));
    return false;
}

//  A Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*), or a label name (no ':'), pooled.
static const char *
s_name (al_services_loader_t *L, yaml_node_t *node, const char *field, bool is_label)
{
    const char *value = al_yaml_string (L->yaml, node, field, false);
    if (!value)
        return NULL;
    bool ok = strlen (value) <= S_MAX_METRIC_NAME && !isdigit ((unsigned char) value [0]);
    for (const char *p = value; ok && *p; p++)
        ok = isalnum ((unsigned char) *p) || *p == '_' || (*p == ':' && !is_label);
    if (!ok) {
        al_yaml_error (L->yaml, node, field, "'%.64s' is not a Prometheus %s name (%s, at most %d "
                       "bytes)", value, is_label ? "label" : "metric",
                       is_label ? "[a-zA-Z_][a-zA-Z0-9_]*" : "[a-zA-Z_:][a-zA-Z0-9_:]*",
                       S_MAX_METRIC_NAME);
        return NULL;
    }
    return s_pooled (L, value);
}

//  One of the names in choices (NULL-terminated); its index, or -1 after an error
//  "unknown WHAT 'value' (listed)".
static int
s_choice (al_services_loader_t *L, yaml_node_t *node, const char *field, const char *what,
          const char *const *choices, const char *listed)
{
    const char *value = al_yaml_string (L->yaml, node, field, false);
    if (!value)
        return -1;
    for (int i = 0; choices [i]; i++)
        if (strcmp (choices [i], value) == 0)
            return i;
    al_yaml_error (L->yaml, node, field, "unknown %s '%.64s' (%s)", what, value, listed);
    return -1;
}

//  "required: true|false" of a signal's mapping, when given.
static void
s_required (al_services_loader_t *L, yaml_node_t *mapping, const char *field, bool *out)
{
    yaml_node_t *value = al_yaml_get (L->yaml, mapping, "required");
    if (!value)
        return;
    char sub [AL_YAML_FIELD_SIZE];
    al_yaml_field_key (sub, field, "required");
    s_bool (L, value, sub, out);
}

//  A size in bytes: a number with an optional suffix Ki Mi Gi Ti (1024) or K M G T (1000).
static bool
s_bytes (al_services_loader_t *L, yaml_node_t *node, const char *field, uint64_t *out)
{
    static const struct { const char *suffix; double factor; } units [] = {
        { "Ki", 1024.0 }, { "Mi", 1048576.0 }, { "Gi", 1073741824.0 }, { "Ti", 1099511627776.0 },
        { "K", 1e3 }, { "M", 1e6 }, { "G", 1e9 }, { "T", 1e12 }, { "", 1.0 },
    };
    const char *value = al_yaml_scalar (node);
    bool ok = value && !al_yaml_is_null (node) && (isdigit ((unsigned char) value [0]) || value [0] == '.');
    double bytes = 0;
    if (ok) {
        char *end = NULL;
        errno = 0;
        double number = strtod (value, &end);
        ok = errno == 0 && end != value && isfinite (number);
        for (const char *p = value; ok && p < end; p++)
            ok = isdigit ((unsigned char) *p) || *p == '.';     // no exponent, sign or hex
        bool known = false;
        for (size_t i = 0; ok && !known && i < sizeof units / sizeof units [0]; i++)
            if (strcmp (end, units [i].suffix) == 0) {
                known = true;
                bytes = number * units [i].factor;
            }
        ok = ok && known;
    }
    if (!ok) {
        al_yaml_error (L->yaml, node, field, "expected a size in bytes, optionally with a suffix "
                       "Ki Mi Gi Ti K M G T (e.g. 256Mi), found %s",
                       value && !al_yaml_is_null (node) ? "another value" : al_yaml_kind_name (node));
        return false;
    }
    bytes = floor (bytes);
    if (bytes < 1 || bytes > 1099511627776.0 * 1024) {
        al_yaml_error (L->yaml, node, field, "%.64s is out of range 1 byte..1024Ti", value);
        return false;
    }
    *out = (uint64_t) bytes;
    return true;
}

//  A duration "500ms", "2s", "1.5s", "1m": 1 ms to 10 minutes.
static bool
s_duration_ms (al_services_loader_t *L, yaml_node_t *node, const char *field, int *out)
{
    const char *value = al_yaml_scalar (node);
    bool ok = value && !al_yaml_is_null (node) && isdigit ((unsigned char) value [0]);
    double ms = 0;
    if (ok) {
        char *end = NULL;
        errno = 0;
        double number = strtod (value, &end);
        ok = errno == 0 && isfinite (number);
        for (const char *p = value; ok && p < end; p++)
            ok = isdigit ((unsigned char) *p) || *p == '.';
        if (ok && strcmp (end, "ms") == 0)
            ms = number;
        else
        if (ok && strcmp (end, "s") == 0)
            ms = number * 1000;
        else
        if (ok && strcmp (end, "m") == 0)
            ms = number * 60000;
        else
            ok = false;
    }
    if (!ok) {
        al_yaml_error (L->yaml, node, field, "expected a duration such as 500ms, 2s or 1m, found %s",
                       value && !al_yaml_is_null (node) ? "another value" : al_yaml_kind_name (node));
        return false;
    }
    if (ms < 1 || ms > 600000) {
        al_yaml_error (L->yaml, node, field, "%.64s is out of range 1ms..10m", value);
        return false;
    }
    *out = (int) ms;
    return true;
}

//  ---------------------------------------------------------------------------------
//  resources:

void
al_services_resources (al_services_loader_t *L, al_service_t *svc, yaml_node_t *node,
                       const char *field)
{
    static const char *const allowed [] = { "cpu_cores", "memory", NULL };
    if (!al_yaml_check_map (L->yaml, node, field, allowed, NULL))
        return;
    char sub [AL_YAML_FIELD_SIZE];
    yaml_node_t *value;
    if ((value = al_yaml_get (L->yaml, node, "cpu_cores"))) {
        al_yaml_field_key (sub, field, "cpu_cores");
        double cores;
        if (al_services_real (L, value, sub, 0, 4096, &cores)) {
            if (cores <= 0)
                al_yaml_error (L->yaml, value, sub, "must be above 0 (a share of one core, e.g. 0.5)");
            else
                svc->cpu_limit_cores = cores;
        }
    }
    if ((value = al_yaml_get (L->yaml, node, "memory"))) {
        al_yaml_field_key (sub, field, "memory");
        s_bytes (L, value, sub, &svc->memory_limit_bytes);
    }
}

//  ---------------------------------------------------------------------------------
//  signals: the metric mapping

//  errors: [5xx, "429", ...]: a class 1xx..5xx or an exact status 100..599.
static void
s_error_statuses (al_services_loader_t *L, al_service_t *svc, yaml_node_t *node, const char *field)
{
    if (!al_yaml_want_list (L->yaml, node, field))
        return;
    size_t count = al_yaml_list_length (node);
    if (count == 0 || count > S_MAX_ERROR_ITEMS) {
        al_yaml_error (L->yaml, node, field, "expected 1 to %d statuses (a class such as 5xx or a "
                       "code such as 429)", S_MAX_ERROR_ITEMS);
        return;
    }
    const char **statuses = al_services_pool_alloc (L->self, (count + 1) * sizeof *statuses);
    if (!statuses) {
        al_yaml_out_of_memory (L->yaml);
        return;
    }
    bool ok = true;
    for (size_t i = 0; i < count; i++) {
        char item [AL_YAML_FIELD_SIZE];
        al_yaml_field_index (item, field, i);
        yaml_node_t *entry = al_yaml_list_at (L->yaml, node, i);
        const char *value = al_yaml_string (L->yaml, entry, item, false);
        if (!value) {
            ok = false;
            continue;
        }
        bool is_class = strlen (value) == 3 && value [0] >= '1' && value [0] <= '5'
                     && strcmp (value + 1, "xx") == 0;
        bool is_code = strlen (value) == 3 && value [0] >= '1' && value [0] <= '5'
                    && isdigit ((unsigned char) value [1]) && isdigit ((unsigned char) value [2]);
        if (!is_class && !is_code) {
            al_yaml_error (L->yaml, entry, item, "'%.64s' is neither a status class (1xx..5xx) nor "
                           "a status code (100..599)", value);
            ok = false;
            continue;
        }
        for (size_t j = 0; j < i; j++)
            if (statuses [j] && strcmp (statuses [j], value) == 0) {
                al_yaml_error (L->yaml, entry, item, "'%s' is given twice", value);
                ok = false;
            }
        if (!(statuses [i] = s_pooled (L, value)))
            ok = false;
    }
    if (ok)
        svc->signal_map.error_statuses = statuses;
}

static void
s_requests (al_services_loader_t *L, al_service_t *svc, yaml_node_t *node, const char *field)
{
    static const char *const allowed [] = { "metric", "status_label", "errors", "required", NULL };
    if (!al_yaml_check_map (L->yaml, node, field, allowed, NULL))
        return;
    char sub [AL_YAML_FIELD_SIZE];
    yaml_node_t *value;
    const char *text;
    if ((value = al_yaml_get (L->yaml, node, "metric"))) {
        al_yaml_field_key (sub, field, "metric");
        if ((text = s_name (L, value, sub, false)))
            svc->signal_map.requests_metric = text;
    }
    if ((value = al_yaml_get (L->yaml, node, "status_label"))) {
        al_yaml_field_key (sub, field, "status_label");
        if ((text = s_name (L, value, sub, true)))
            svc->signal_map.status_label = text;
    }
    if ((value = al_yaml_get (L->yaml, node, "errors"))) {
        al_yaml_field_key (sub, field, "errors");
        s_error_statuses (L, svc, value, sub);
    }
    s_required (L, node, field, &svc->signal_map.requests_required);
}

static void
s_latency (al_services_loader_t *L, al_service_t *svc, yaml_node_t *node, const char *field)
{
    static const char *const allowed [] = { "metric", "unit", "required", NULL };
    if (!al_yaml_check_map (L->yaml, node, field, allowed, NULL))
        return;
    char sub [AL_YAML_FIELD_SIZE];
    yaml_node_t *value;
    if ((value = al_yaml_get (L->yaml, node, "metric"))) {
        al_yaml_field_key (sub, field, "metric");
        const char *metric = s_name (L, value, sub, false);
        size_t length = metric ? strlen (metric) : 0;
        if (length > 7 && strcmp (metric + length - 7, "_bucket") == 0)
            al_yaml_error (L->yaml, value, sub, "'%.64s': give the histogram's name, without "
                           "_bucket", metric);
        else
        if (metric)
            svc->signal_map.latency_metric = metric;
    }
    if ((value = al_yaml_get (L->yaml, node, "unit"))) {
        al_yaml_field_key (sub, field, "unit");
        static const char *const units [] = { "seconds", "milliseconds", NULL };
        int unit = s_choice (L, value, sub, "unit", units, "seconds, milliseconds");
        if (unit >= 0)
            svc->signal_map.latency_to_ms = unit == 0 ? 1000.0 : 1.0;
    }
    s_required (L, node, field, &svc->signal_map.latency_required);
}

//  cpu: or memory: { metric, kind, required }. A percent kind names its gauge: the
//  default metric is not one.
static void
s_saturation (al_services_loader_t *L, al_service_t *svc, yaml_node_t *node, const char *field,
              bool is_cpu)
{
    static const char *const allowed [] = { "metric", "kind", "required", NULL };
    if (!al_yaml_check_map (L->yaml, node, field, allowed, NULL))
        return;
    char sub [AL_YAML_FIELD_SIZE];
    yaml_node_t *value;
    const char *metric = NULL;
    if ((value = al_yaml_get (L->yaml, node, "metric"))) {
        al_yaml_field_key (sub, field, "metric");
        metric = s_name (L, value, sub, false);
        if (metric && is_cpu)
            svc->signal_map.cpu_metric = metric;
        else
        if (metric)
            svc->signal_map.memory_metric = metric;
    }
    if ((value = al_yaml_get (L->yaml, node, "kind"))) {
        al_yaml_field_key (sub, field, "kind");
        static const char *const cpu_kinds [] = { "cpu_seconds", "percent", NULL };
        static const char *const memory_kinds [] = { "bytes", "percent", NULL };
        int kind = s_choice (L, value, sub, "kind", is_cpu ? cpu_kinds : memory_kinds,
                             is_cpu ? "cpu_seconds, percent" : "bytes, percent");
        if (kind == 1 && !al_yaml_get (L->yaml, node, "metric"))
            al_yaml_error (L->yaml, value, sub, "kind: percent needs 'metric' (a 0..100 gauge; "
                           "the default metric is not one)");
        if (kind >= 0 && is_cpu)
            svc->signal_map.cpu_kind = kind == 0 ? AL_SERVICE_CPU_SECONDS : AL_SERVICE_CPU_PERCENT_GAUGE;
        else
        if (kind >= 0)
            svc->signal_map.memory_kind = kind == 0 ? AL_SERVICE_MEMORY_BYTES
                                                    : AL_SERVICE_MEMORY_PERCENT_GAUGE;
    }
    s_required (L, node, field, is_cpu ? &svc->signal_map.cpu_required
                                       : &svc->signal_map.memory_required);
}

//  ---------------------------------------------------------------------------------
//  signals.prometheus and signals.compare_to_stable

//  A PromQL query: printable text whose {{...}} name a template variable.
static const char *
s_query (al_services_loader_t *L, yaml_node_t *node, const char *field)
{
    static const char *const variables [] = { "service", "environment", "version", "instance", NULL };
    const char *value = al_yaml_string (L->yaml, node, field, false);
    if (!value)
        return NULL;
    if (strlen (value) > S_MAX_QUERY) {
        al_yaml_error (L->yaml, node, field, "a query of more than %d bytes", S_MAX_QUERY);
        return NULL;
    }
    for (const char *p = value; *p; p++)
        if ((unsigned char) *p < 0x20 && *p != '\n' && *p != '\t') {
            al_yaml_error (L->yaml, node, field, "a control character in the query");
            return NULL;
        }
    for (const char *open = strstr (value, "{{"); open; open = strstr (open + 2, "{{")) {
        const char *close = strstr (open + 2, "}}");
        bool known = false;
        for (int i = 0; close && variables [i]; i++)
            known = known || ((size_t) (close - open - 2) == strlen (variables [i])
                              && strncmp (open + 2, variables [i], strlen (variables [i])) == 0);
        if (!known) {
            al_yaml_error (L->yaml, node, field, "'%.*s': a template is {{service}}, "
                           "{{environment}}, {{version}} or {{instance}}",
                           close ? (int) (close - open + 2 < 64 ? close - open + 2 : 64) : 16, open);
            return NULL;
        }
    }
    return s_pooled (L, value);
}

static void
s_prometheus (al_services_loader_t *L, al_service_t *svc, yaml_node_t *node, const char *field)
{
    static const char *const allowed [] = { "url", "timeout", "queries", NULL };
    if (!al_yaml_check_map (L->yaml, node, field, allowed, NULL))
        return;
    char sub [AL_YAML_FIELD_SIZE];
    yaml_node_t *value;
    if ((value = al_yaml_get (L->yaml, node, "url"))) {
        al_yaml_field_key (sub, field, "url");
        const char *url = al_yaml_string (L->yaml, value, sub, false);
        const char *host = !url ? NULL : strncmp (url, "http://", 7) == 0 ? url + 7
                         : strncmp (url, "https://", 8) == 0 ? url + 8 : NULL;
        bool ok = host && *host && *host != '/' && strlen (url) <= S_MAX_URL;
        for (const char *p = url; ok && *p; p++)
            ok = *p > 0x20 && *p < 0x7f;
        if (url && !ok)
            al_yaml_error (L->yaml, value, sub, "'%.64s' is not an http:// or https:// URL with a "
                           "host (no spaces, at most %d bytes)", url, S_MAX_URL);
        else
        if (url)
            svc->prometheus.url = s_pooled (L, url);
    }
    if ((value = al_yaml_get (L->yaml, node, "timeout"))) {
        al_yaml_field_key (sub, field, "timeout");
        s_duration_ms (L, value, sub, &svc->prometheus.timeout_ms);
    }
    if ((value = al_yaml_get (L->yaml, node, "queries"))) {
        al_yaml_field_key (sub, field, "queries");
        if (!al_yaml_check_map (L->yaml, value, sub, s_query_names, NULL))
            return;
        for (int i = 0; i < AL_SIGNAL_COUNT; i++) {
            yaml_node_t *query = al_yaml_get (L->yaml, value, s_query_names [i]);
            if (!query)
                continue;
            char item [AL_YAML_FIELD_SIZE];
            al_yaml_field_key (item, sub, s_query_names [i]);
            svc->prometheus.queries [i] = s_query (L, query, item);
        }
    }
}

static void
s_compare_to_stable (al_services_loader_t *L, al_service_t *svc, yaml_node_t *node,
                     const char *field)
{
    static const char *const allowed [] = { "enabled", "alpha", "min_samples",
        "min_latency_increase_percent", "min_error_increase_points", NULL };
    if (!al_yaml_check_map (L->yaml, node, field, allowed, NULL))
        return;
    al_service_canary_judge_t *judge = &svc->canary_judge;
    char sub [AL_YAML_FIELD_SIZE];
    yaml_node_t *value;
    if ((value = al_yaml_get (L->yaml, node, "enabled"))) {
        al_yaml_field_key (sub, field, "enabled");
        s_bool (L, value, sub, &judge->enabled);
    }
    if ((value = al_yaml_get (L->yaml, node, "alpha"))) {
        al_yaml_field_key (sub, field, "alpha");
        double alpha;
        if (al_services_real (L, value, sub, 0, 0.5, &alpha)) {
            if (alpha <= 0 || alpha >= 0.5)
                al_yaml_error (L->yaml, value, sub, "must be above 0 and below 0.5");
            else
                judge->alpha = alpha;
        }
    }
    if ((value = al_yaml_get (L->yaml, node, "min_samples"))) {
        al_yaml_field_key (sub, field, "min_samples");
        long long samples;
        if (al_yaml_integer (L->yaml, value, sub, 3, 100000, &samples))
            judge->min_samples = (unsigned) samples;
    }
    if ((value = al_yaml_get (L->yaml, node, "min_latency_increase_percent"))) {
        al_yaml_field_key (sub, field, "min_latency_increase_percent");
        al_services_real (L, value, sub, 0, 100000, &judge->min_latency_increase_percent);
    }
    if ((value = al_yaml_get (L->yaml, node, "min_error_increase_points"))) {
        al_yaml_field_key (sub, field, "min_error_increase_points");
        al_services_real (L, value, sub, 0, 100, &judge->min_error_increase_points);
    }
}

//  ---------------------------------------------------------------------------------
//  signals:

static const char *const s_sources [] = { "monitor", "probes", "prometheus", NULL };
static const al_service_signals_t s_source_values [] = {
    AL_SERVICE_SIGNALS_MONITOR, AL_SERVICE_SIGNALS_PROBES, AL_SERVICE_SIGNALS_PROMETHEUS
};

void
al_services_signals (al_services_loader_t *L, al_service_t *svc, yaml_node_t *node,
                     const char *field)
{
    if (node->type != YAML_MAPPING_NODE) {
        int source = s_choice (L, node, field, "source", s_sources, "monitor, probes, prometheus; "
                               "or the long form, a mapping");
        if (source >= 0)
            svc->signals = s_source_values [source];
        return;
    }
    static const char *const allowed [] = { "source", "requests", "latency", "cpu", "memory",
        "prometheus", "compare_to_stable", NULL };
    if (!al_yaml_check_map (L->yaml, node, field, allowed, NULL))
        return;
    char sub [AL_YAML_FIELD_SIZE];
    yaml_node_t *value;
    if ((value = al_yaml_get (L->yaml, node, "source"))) {
        al_yaml_field_key (sub, field, "source");
        int source = s_choice (L, value, sub, "source", s_sources, "monitor, probes, prometheus");
        if (source >= 0)
            svc->signals = s_source_values [source];
    }
    else
        svc->signals = AL_SERVICE_SIGNALS_MONITOR;
    if ((value = al_yaml_get (L->yaml, node, "requests"))) {
        al_yaml_field_key (sub, field, "requests");
        s_requests (L, svc, value, sub);
    }
    if ((value = al_yaml_get (L->yaml, node, "latency"))) {
        al_yaml_field_key (sub, field, "latency");
        s_latency (L, svc, value, sub);
    }
    if ((value = al_yaml_get (L->yaml, node, "cpu"))) {
        al_yaml_field_key (sub, field, "cpu");
        s_saturation (L, svc, value, sub, true);
    }
    if ((value = al_yaml_get (L->yaml, node, "memory"))) {
        al_yaml_field_key (sub, field, "memory");
        s_saturation (L, svc, value, sub, false);
    }
    if ((value = al_yaml_get (L->yaml, node, "prometheus"))) {
        al_yaml_field_key (sub, field, "prometheus");
        s_prometheus (L, svc, value, sub);
    }
    if ((value = al_yaml_get (L->yaml, node, "compare_to_stable"))) {
        al_yaml_field_key (sub, field, "compare_to_stable");
        s_compare_to_stable (L, svc, value, sub);
    }
}

void
al_services_signals_check (al_services_loader_t *L, al_service_t *svc, yaml_node_t *node,
                           const char *field)
{
    yaml_node_t *signals = al_yaml_get (L->yaml, node, "signals");
    if (!signals)
        return;
    char sub [AL_YAML_FIELD_SIZE];
    al_yaml_field_key (sub, field, "signals");
    yaml_node_t *prometheus = signals->type == YAML_MAPPING_NODE
                            ? al_yaml_get (L->yaml, signals, "prometheus") : NULL;
    if (svc->signals != AL_SERVICE_SIGNALS_PROMETHEUS) {
        if (prometheus) {
            char prometheus_field [AL_YAML_FIELD_SIZE];
            al_yaml_field_key (prometheus_field, sub, "prometheus");
            al_yaml_error (L->yaml, prometheus, prometheus_field, "only with source: prometheus");
        }
        svc->prometheus.url = NULL;
        return;
    }
    if (!svc->prometheus.url) {
        //  An invalid url was reported where it stands.
        if (!prometheus || !al_yaml_get (L->yaml, prometheus, "url"))
            al_yaml_error (L->yaml, prometheus ? prometheus : signals, sub, "source: prometheus "
                           "needs prometheus.url (http:// or https://)");
        return;
    }
    const al_service_signal_map_t *map = &svc->signal_map;
    const struct { bool required; al_signal_t query; const char *signal; } needs [] = {
        { map->requests_required, AL_SIGNAL_REQUESTS_PER_SECOND, "requests" },
        { map->requests_required, AL_SIGNAL_ERROR_RATIO, "requests" },
        { map->latency_required, AL_SIGNAL_LATENCY_P50_MS, "latency" },
        { map->latency_required, AL_SIGNAL_LATENCY_P99_MS, "latency" },
        { map->cpu_required, AL_SIGNAL_CPU_PERCENT, "cpu" },
        { map->memory_required, AL_SIGNAL_MEMORY_PERCENT, "memory" },
    };
    yaml_node_t *queries = al_yaml_get (L->yaml, prometheus, "queries");
    for (size_t i = 0; i < sizeof needs / sizeof needs [0]; i++)
        if (needs [i].required && !svc->prometheus.queries [needs [i].query]
        &&  !(queries && al_yaml_get (L->yaml, queries, s_query_names [needs [i].query]))) {
            char queries_field [AL_YAML_FIELD_SIZE];
            al_yaml_field_key (queries_field, sub, "prometheus.queries");
            al_yaml_error (L->yaml, queries ? queries : prometheus, queries_field, "missing query "
                           "'%s' (the %s signal is required; or set signals.%s.required: false)",
                           s_query_names [needs [i].query], needs [i].signal, needs [i].signal);
        }
}
