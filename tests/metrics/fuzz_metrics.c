/*  fuzz_metrics.c: libFuzzer target for the Prometheus text parser (al_metrics_parse).

    Arbitrary bytes are parsed. A refusal must leave an error text starting "line " or
    "input: ". Whatever is accepted goes through every query helper, and the answers
    must agree with each other: each family is found by its name, each sample is
    found again by lookup and is that very sample, labels are sorted and found, sums
    over one series equal its value, histogram buckets are sorted with distinct
    bounds, quantiles outside [0, 1] are infinite. Then the exposition is fed twice to
    al_signals at two times: the same counters twice make zero traffic. Any
    disagreement aborts, which libFuzzer reports as a crash; ASan reports leaks.
    Seeds: tests/metrics/corpus/fuzz_metrics/.
*/
#include "deploy/al_metrics.h"
#include "deploy/al_signals.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_SIZE (64 * 1024)

static void
s_die (const char *what, const char *detail)
{
    fprintf (stderr, "fuzz_metrics: %s: %s\n", what, detail);
    abort ();
}

static void
s_check_histogram (const al_metrics_t *metrics, const al_metric_family_t *family)
{
    al_metric_bucket_t *buckets = NULL;
    size_t count = 0;
    const al_metric_matcher_t *matchers = NULL;
    size_t matcher_count = 0;
    al_metric_matcher_t first_label;
    if (family->sample_count > 0 && family->samples [0].label_count > 0) {
        first_label = (al_metric_matcher_t) { family->samples [0].labels [0].name, AL_MATCH_PREFIX,
                                              family->samples [0].labels [0].value };
        matchers = &first_label;
        matcher_count = 1;
    }
    for (int pass = 0; pass < 2; pass++) {
        if (al_metrics_histogram (metrics, family->name, matchers, pass ? matcher_count : 0,
                                  &buckets, &count))
            s_die ("histogram query failed", family->name);
        for (size_t i = 1; i < count; i++)
            if (!(buckets [i - 1].upper_bound < buckets [i].upper_bound))
                s_die ("merged buckets not strictly ascending", family->name);
        double quantiles [] = { 0, 0.01, 0.5, 0.9, 0.99, 1 };
        for (size_t i = 0; i < sizeof quantiles / sizeof quantiles [0]; i++) {
            double q = al_histogram_quantile (quantiles [i], buckets, count);
            if (!isnan (q) && count > 0 && q > buckets [count - 1].upper_bound)
                s_die ("quantile above the highest bound", family->name);
        }
        if (count > 0) {
            double below = al_histogram_quantile (-0.5, buckets, count);
            double above = al_histogram_quantile (1.5, buckets, count);
            if (!(isinf (below) && below < 0) || !(isinf (above) && above > 0))
                s_die ("quantile outside [0, 1] not infinite", family->name);
        }
        free (buckets);
    }
}

static void
s_check (const al_metrics_t *metrics)
{
    size_t total = 0;
    for (size_t i = 0; i < al_metrics_family_count (metrics); i++) {
        const al_metric_family_t *family = al_metrics_family_at (metrics, i);
        if (al_metrics_find (metrics, family->name) != family)
            s_die ("family not found by name", family->name);
        if (!al_metric_type_name (family->type))
            s_die ("family type has no name", family->name);
        total += family->sample_count;
        for (size_t j = 0; j < family->sample_count; j++) {
            const al_metric_sample_t *sample = &family->samples [j];
            if (al_metrics_lookup (metrics, sample) != sample)
                s_die ("sample not found by lookup", sample->name);
            for (size_t k = 0; k < sample->label_count; k++) {
                if (k > 0 && strcmp (sample->labels [k - 1].name, sample->labels [k].name) >= 0)
                    s_die ("labels not sorted and unique", sample->name);
                if (al_metric_sample_label (sample, sample->labels [k].name) != sample->labels [k].value)
                    s_die ("label not found", sample->labels [k].name);
            }
            //  All labels as equality matchers select exactly this series.
            al_metric_matcher_t matchers [AL_METRICS_DEFAULT_MAX_LABELS];
            for (size_t k = 0; k < sample->label_count; k++)
                matchers [k] = (al_metric_matcher_t) { sample->labels [k].name, AL_MATCH_EQUAL,
                                                       sample->labels [k].value };
            double sum;
            size_t matched = al_metrics_sum (metrics, sample->name, matchers, sample->label_count, &sum);
            if (matched == 0)
                s_die ("sample not matched by its own labels", sample->name);
            if (matched == 1 && !(sum == sample->value || (isnan (sum) && isnan (sample->value))))
                s_die ("sum over one sample differs from it", sample->name);
            if (sample->label_count > 0) {
                matchers [0].op = AL_MATCH_NOT_PREFIX;
                al_metrics_sum (metrics, sample->name, matchers, 1, &sum);
            }
            al_metrics_sum_if (metrics, sample->name, NULL, NULL, &sum);
        }
        if (family->type == AL_METRIC_HISTOGRAM)
            s_check_histogram (metrics, family);
    }
    if (total != al_metrics_sample_count (metrics))
        s_die ("family sample counts do not add up", "");
}

static void
s_check_signals (al_metrics_t **first_p, al_metrics_t **second_p)
{
    char error [256];
    al_signals_t *signals = al_signals_new ("fuzz", "test", NULL);
    if (!signals || al_signals_add_instance (signals, "i"))
        s_die ("signals setup failed", "");
    if (al_signals_scrape_ok (signals, "i", 1000, first_p, error, sizeof error)
    ||  al_signals_scrape_ok (signals, "i", 2000, second_p, error, sizeof error))
        s_die ("scrape refused", error);
    al_signals_sample_t sample;
    al_signals_sample (signals, 2000, false, &sample);
    if (sample.instances_up != 1 || sample.requests_per_second != 0 || sample.error_ratio != 0)
        s_die ("the same scrape twice is not zero traffic", "");
    al_signals_destroy (&signals);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char error [512] = "";
    al_metrics_limits_t limits = { .max_input_size = S_MAX_SIZE, .max_samples = 2000 };
    al_metrics_t *metrics = al_metrics_parse ((const char *) data, size, &limits, error, sizeof error);
    if (!metrics) {
        if (strncmp (error, "line ", 5) != 0 && strncmp (error, "input: ", 7) != 0)
            s_die ("refusal without a proper error", error);
        return 0;
    }
    s_check (metrics);
    al_metrics_t *again = al_metrics_parse ((const char *) data, size, &limits, error, sizeof error);
    if (!again)
        s_die ("second parse of the same input failed", error);
    if (al_metrics_sample_count (again) != al_metrics_sample_count (metrics))
        s_die ("parsing is not deterministic", "");
    s_check_signals (&metrics, &again);
    return 0;
}
