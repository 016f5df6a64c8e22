/*  al_metrics.h: a strict parser for the Prometheus text exposition format (0.0.4),
    query helpers over a parsed exposition, and histogram_quantile.

    al_metrics_parse turns one scrape body into an immutable list of metric families
    (counter, gauge, histogram, summary, untyped), each with its samples. It never
    trusts its input: sizes are bounded (al_metrics_limits_t), names, escapes, numbers
    and UTF-8 are validated, the grouping rules of the format are enforced (HELP/TYPE
    before the samples of a family, one of each, all lines of a family together) and
    histograms must be well formed (le ascending, counts cumulative, +Inf bucket equal
    to _count). On any error nothing is returned and the caller's buffer holds
    "line N: what is wrong". docs/metrics.md lists every rule.

    A parsed al_metrics_t is read-only: every query is safe from several threads at
    once. All strings and arrays handed out are borrowed from it and live until
    al_metrics_destroy.
*/
#ifndef AL_METRICS_H_INCLUDED
#define AL_METRICS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

//  Default limits; a scrape above any of them is refused.
#define AL_METRICS_DEFAULT_MAX_INPUT_SIZE   (8u * 1024 * 1024)
#define AL_METRICS_DEFAULT_MAX_LINE_LENGTH  (16u * 1024)
#define AL_METRICS_DEFAULT_MAX_LABELS       64
#define AL_METRICS_DEFAULT_MAX_SAMPLES      100000

typedef struct {
    size_t max_input_size;          // bytes of the whole exposition
    size_t max_line_length;         // bytes of one line, without its '\n'
    size_t max_labels_per_sample;   // labels inside one {...}
    size_t max_samples;             // sample lines in the whole exposition
} al_metrics_limits_t;

typedef enum {
    AL_METRIC_UNTYPED = 0,
    AL_METRIC_COUNTER,
    AL_METRIC_GAUGE,
    AL_METRIC_HISTOGRAM,
    AL_METRIC_SUMMARY
} al_metric_type_t;

typedef struct {
    const char *name;
    const char *value;              // unescaped
} al_metric_label_t;

typedef struct {
    const char *name;               // full sample name, with suffix (x_bucket, x_sum, ...)
    const al_metric_label_t *labels;// sorted by name, names unique
    size_t label_count;
    double value;                   // may be +Inf, -Inf or NaN
    bool has_timestamp;
    int64_t timestamp_ms;
    size_t line;                    // 1-based line of the sample in the exposition
} al_metric_sample_t;

typedef struct {
    const char *name;
    al_metric_type_t type;          // AL_METRIC_UNTYPED when no TYPE line
    const char *help;               // unescaped; NULL when no HELP line
    const al_metric_sample_t *samples;
    size_t sample_count;            // 0 for a family that has only HELP/TYPE lines
} al_metric_family_t;

typedef struct _al_metrics_t al_metrics_t;

//  Label matchers for the query helpers. A sample without the label matches as if
//  its value were "" (as in PromQL). All matchers of a list must match.
typedef enum {
    AL_MATCH_EQUAL,                 // label = value
    AL_MATCH_NOT_EQUAL,             // label != value
    AL_MATCH_PREFIX,                // label starts with value (code=~"5.." is prefix "5")
    AL_MATCH_NOT_PREFIX
} al_match_op_t;

typedef struct {
    const char *name;
    al_match_op_t op;
    const char *value;
} al_metric_matcher_t;

//  A sample predicate for al_metrics_sum_if; arg is the caller's.
typedef bool (al_metric_predicate_fn) (const al_metric_sample_t *sample, void *arg);

//  One histogram bucket: the count of observations <= upper_bound (cumulative).
typedef struct {
    double upper_bound;
    double count;
} al_metric_bucket_t;

//  Fill limits with the defaults above.
void al_metrics_limits_default (al_metrics_limits_t *limits);

//  Parse an exposition of size bytes (need not be NUL-terminated). limits may be NULL
//  for the defaults; a zero member takes its default. Returns the parsed exposition or
//  NULL with "line N: what is wrong" (or "input: ...") in error.
al_metrics_t *al_metrics_parse (const char *data, size_t size, const al_metrics_limits_t *limits,
                                char *error, size_t error_size);

//  Destroy a parsed exposition; NULL-safe, sets *self_p to NULL.
void al_metrics_destroy (al_metrics_t **self_p);

//  Families in the order they first appear.
size_t al_metrics_family_count (const al_metrics_t *self);
const al_metric_family_t *al_metrics_family_at (const al_metrics_t *self, size_t index);
//  The family named name (exact), or NULL.
const al_metric_family_t *al_metrics_find (const al_metrics_t *self, const char *name);
//  Total number of samples.
size_t al_metrics_sample_count (const al_metrics_t *self);

//  The sample of self with the same name and labels as sample (which may come from
//  another exposition), or NULL. How a series is followed from one scrape to the next.
const al_metric_sample_t *al_metrics_lookup (const al_metrics_t *self,
                                             const al_metric_sample_t *sample);

//  Value of label name on sample, or NULL.
const char *al_metric_sample_label (const al_metric_sample_t *sample, const char *name);
//  True if sample matches every matcher (true for count 0).
bool al_metric_sample_matches (const al_metric_sample_t *sample,
                               const al_metric_matcher_t *matchers, size_t count);

//  Sum the values of samples named sample_name ("http_requests_total",
//  "x_count") that match; *sum_p gets the sum (0 when none). Returns how many matched.
size_t al_metrics_sum (const al_metrics_t *self, const char *sample_name,
                       const al_metric_matcher_t *matchers, size_t count, double *sum_p);
//  The same with a predicate instead of matchers (NULL predicate matches all).
size_t al_metrics_sum_if (const al_metrics_t *self, const char *sample_name,
                          al_metric_predicate_fn *predicate, void *arg, double *sum_p);

//  Buckets of histogram family name over the _bucket samples that match, merged
//  across label sets (counts with the same le are summed, like sum by (le)), sorted by
//  upper bound. *buckets_p is allocated (free() it; NULL when *count_p is 0).
//  Returns 0, or -1 when out of memory. A family that is no histogram gives 0 buckets.
int al_metrics_histogram (const al_metrics_t *self, const char *name,
                          const al_metric_matcher_t *matchers, size_t count,
                          al_metric_bucket_t **buckets_p, size_t *count_p);

//  The q-quantile of cumulative buckets (any order), with the semantics of
//  Prometheus' histogram_quantile for classic histograms (promql/quantile.go,
//  bucketQuantile): NaN q -> NaN; q < 0 -> -Inf; q > 1 -> +Inf; no +Inf bucket, fewer
//  than 2 buckets or 0 observations -> NaN; linear interpolation inside the bucket;
//  the lowest bucket interpolates from 0 if its upper bound is > 0; a rank in the +Inf
//  bucket gives the highest finite upper bound. buckets is not modified.
double al_histogram_quantile (double q, const al_metric_bucket_t *buckets, size_t count);

//  Parse a sample value or le/quantile label value as the exposition format writes
//  them (decimal float, NaN, +Inf, -Inf, Inf). False if text is not such a number.
bool al_metric_parse_value (const char *text, double *value_p);

//  "counter", "gauge", "histogram", "summary", "untyped".
const char *al_metric_type_name (al_metric_type_t type);

#ifdef __cplusplus
}
#endif

#endif
