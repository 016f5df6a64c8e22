/*  al_metrics.c: strict Prometheus text exposition (0.0.4) parser: queries on a parsed
    result and histogram_quantile. The parser itself is in al_metrics_parse.c (the
    input, the whole-input checks), al_metrics_lines.c (one line at a time) and
    al_metrics_index.c (arena and hash indexes); what they share is al_metrics_int.h.

    The parser reads the buffer line by line. Every string and label array of the
    result lives in an arena owned by the al_metrics_t, so a failed parse (any line,
    any check) frees everything by destroying the half-built object: there is one
    cleanup path, and it cannot leak. Names are looked up through two hash indexes
    (family name -> family, series name+labels -> sample) so hostile inputs with many
    names stay linear.

    Invariants after a successful parse: samples of one family are contiguous in the
    sample vector (the grouping rule guarantees it); labels of a sample are sorted and
    unique; no two samples share name and labels; histogram and summary families are
    well formed (checked once all lines are read). Every family but the current one is
    "closed": a later line for it is an error.

    al_histogram_quantile follows Prometheus' promql/quantile.go (bucketQuantile,
    with coalesceBuckets, correctPrecisionErrors and ensureMonotonic) step by step,
    including its binary search, so results match histogram_quantile() exactly.

    No global state: parse from any thread; a parsed object is immutable.
*/
#include "deploy/al_metrics_int.h"
#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  --------------------------------------------------------------------------
//  Queries

size_t
al_metrics_family_count (const al_metrics_t *self)
{
    assert (self);
    return self->family_count;
}

const al_metric_family_t *
al_metrics_family_at (const al_metrics_t *self, size_t index)
{
    assert (self);
    return index < self->family_count ? &self->families [index].pub : NULL;
}

const al_metric_family_t *
al_metrics_find (const al_metrics_t *self, const char *name)
{
    assert (self);
    assert (name);
    al_metrics_fam_t *family = al_metrics_find_family (self, name);
    return family ? &family->pub : NULL;
}

size_t
al_metrics_sample_count (const al_metrics_t *self)
{
    assert (self);
    return self->sample_count;
}

const al_metric_sample_t *
al_metrics_lookup (const al_metrics_t *self, const al_metric_sample_t *sample)
{
    assert (self);
    assert (sample);
    al_metrics_series_key_t key = { sample->name, sample->labels, sample->label_count };
    uint32_t hash = al_metrics_labels_hash (sample->name, sample->labels, sample->label_count, NULL);
    size_t found = al_metrics_table_find (&self->series_index, hash, al_metrics_same_series, self, &key);
    return found ? &self->samples [found - 1] : NULL;
}

const char *
al_metric_sample_label (const al_metric_sample_t *sample, const char *name)
{
    assert (sample);
    assert (name);
    //  Labels are sorted: binary search.
    size_t low = 0, high = sample->label_count;
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        int order = strcmp (sample->labels [middle].name, name);
        if (order == 0)
            return sample->labels [middle].value;
        if (order < 0)
            low = middle + 1;
        else
            high = middle;
    }
    return NULL;
}

bool
al_metric_sample_matches (const al_metric_sample_t *sample, const al_metric_matcher_t *matchers,
                          size_t count)
{
    assert (sample);
    assert (matchers || count == 0);
    for (size_t i = 0; i < count; i++) {
        assert (matchers [i].name && matchers [i].value);
        const char *value = al_metric_sample_label (sample, matchers [i].name);
        if (!value)
            value = "";
        bool match;
        switch (matchers [i].op) {
            case AL_MATCH_EQUAL:
            case AL_MATCH_NOT_EQUAL:
                match = strcmp (value, matchers [i].value) == 0;
                break;
            case AL_MATCH_PREFIX:
            case AL_MATCH_NOT_PREFIX:
                match = strncmp (value, matchers [i].value, strlen (matchers [i].value)) == 0;
                break;
            default:
                assert (false);
                return false;
        }
        if (matchers [i].op == AL_MATCH_NOT_EQUAL || matchers [i].op == AL_MATCH_NOT_PREFIX)
            match = !match;
        if (!match)
            return false;
    }
    return true;
}

size_t
al_metrics_sum_if (const al_metrics_t *self, const char *sample_name,
                   al_metric_predicate_fn *predicate, void *arg, double *sum_p)
{
    assert (self);
    assert (sample_name);
    assert (sum_p);
    *sum_p = 0;
    const al_metrics_fam_t *family = al_metrics_family_of_sample (self, sample_name);
    if (!family)
        return 0;
    size_t matched = 0;
    for (size_t i = 0; i < family->pub.sample_count; i++) {
        const al_metric_sample_t *sample = &family->pub.samples [i];
        if (strcmp (sample->name, sample_name) != 0)
            continue;
        if (predicate && !predicate (sample, arg))
            continue;
        *sum_p += sample->value;
        matched++;
    }
    return matched;
}

typedef struct {
    const al_metric_matcher_t *matchers;
    size_t count;
} s_matcher_list_t;

static bool
s_matches_list (const al_metric_sample_t *sample, void *arg)
{
    const s_matcher_list_t *list = arg;
    return al_metric_sample_matches (sample, list->matchers, list->count);
}

size_t
al_metrics_sum (const al_metrics_t *self, const char *sample_name,
                const al_metric_matcher_t *matchers, size_t count, double *sum_p)
{
    s_matcher_list_t list = { matchers, count };
    return al_metrics_sum_if (self, sample_name, s_matches_list, &list, sum_p);
}

//  Sort by upper bound; NaN bounds (never from the parser) sort last so the order is
//  total and qsort stays well defined.
static int
s_compare_buckets (const void *a, const void *b)
{
    double x = ((const al_metric_bucket_t *) a)->upper_bound;
    double y = ((const al_metric_bucket_t *) b)->upper_bound;
    if (isnan (x) || isnan (y))
        return isnan (x) - isnan (y);
    return (x > y) - (x < y);
}

int
al_metrics_histogram (const al_metrics_t *self, const char *name,
                      const al_metric_matcher_t *matchers, size_t count,
                      al_metric_bucket_t **buckets_p, size_t *count_p)
{
    assert (self);
    assert (name);
    assert (buckets_p && count_p);
    *buckets_p = NULL;
    *count_p = 0;
    const al_metrics_fam_t *family = al_metrics_find_family (self, name);
    if (!family || family->pub.type != AL_METRIC_HISTOGRAM || family->pub.sample_count == 0)
        return 0;
    al_metric_bucket_t *buckets = malloc (family->pub.sample_count * sizeof *buckets);
    if (!buckets)
        return -1;
    size_t used = 0;
    for (size_t i = 0; i < family->pub.sample_count; i++) {
        const al_metric_sample_t *sample = &family->pub.samples [i];
        if (!al_metrics_has_suffix (sample->name, name, "_bucket")
        ||  !al_metric_sample_matches (sample, matchers, count))
            continue;
        const char *le = al_metric_sample_label (sample, "le");
        assert (le);
        bool parsed = al_metrics_parse_number (le, strlen (le), &buckets [used].upper_bound);
        assert (parsed);
        buckets [used++].count = sample->value;
    }
    if (used == 0) {
        free (buckets);
        return 0;
    }
    qsort (buckets, used, sizeof *buckets, s_compare_buckets);
    size_t merged = 0;
    for (size_t i = 0; i < used; i++) {
        if (merged > 0 && buckets [merged - 1].upper_bound == buckets [i].upper_bound)
            buckets [merged - 1].count += buckets [i].count;
        else
            buckets [merged++] = buckets [i];
    }
    *buckets_p = buckets;
    *count_p = merged;
    return 0;
}

//  --------------------------------------------------------------------------
//  histogram_quantile, after promql/quantile.go

//  coalesceBuckets: merge buckets with the same upper bound (input sorted).
static size_t
s_coalesce (al_metric_bucket_t *buckets, size_t count)
{
    al_metric_bucket_t last = buckets [0];
    size_t i = 0;
    for (size_t j = 1; j < count; j++) {
        if (buckets [j].upper_bound == last.upper_bound)
            last.count += buckets [j].count;
        else {
            buckets [i++] = last;
            last = buckets [j];
        }
    }
    buckets [i] = last;
    return i + 1;
}

//  correctPrecisionErrors with tolerance 1e-12.
static void
s_correct_precision (al_metric_bucket_t *buckets, size_t count)
{
    double previous = buckets [0].count;
    for (size_t i = 1; i < count; i++) {
        double current = buckets [i].count;
        double delta = fabs (current - previous);
        if (delta == 0)
            continue;
        if (delta / current <= 1e-12)
            buckets [i].count = previous;
        else
            previous = current;
    }
}

//  ensureMonotonic: remove decreases between successive buckets.
static void
s_ensure_monotonic (al_metric_bucket_t *buckets, size_t count)
{
    double max = buckets [0].count;
    for (size_t i = 1; i < count; i++) {
        if (buckets [i].count > max)
            max = buckets [i].count;
        else
        if (buckets [i].count < max)
            buckets [i].count = max;
    }
}

double
al_histogram_quantile (double q, const al_metric_bucket_t *input, size_t count)
{
    assert (input || count == 0);
    if (isnan (q))
        return NAN;
    if (q < 0)
        return -INFINITY;
    if (q > 1)
        return INFINITY;
    if (count == 0)
        return NAN;
    al_metric_bucket_t *buckets = malloc (count * sizeof *buckets);
    if (!buckets)
        return NAN;
    memcpy (buckets, input, count * sizeof *buckets);
    qsort (buckets, count, sizeof *buckets, s_compare_buckets);
    double result = NAN;
    double highest = buckets [count - 1].upper_bound;
    if (!(isinf (highest) && highest > 0))
        goto cleanup;
    count = s_coalesce (buckets, count);
    s_correct_precision (buckets, count);
    s_ensure_monotonic (buckets, count);
    if (count < 2)
        goto cleanup;
    double observations = buckets [count - 1].count;
    if (observations == 0)
        goto cleanup;
    double rank = q * observations;
    //  sort.Search (len - 1, count >= rank): the smallest index whose count reaches rank.
    size_t low = 0, high = count - 1;
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        if (!(buckets [middle].count >= rank))
            low = middle + 1;
        else
            high = middle;
    }
    size_t b = low;
    if (b == count - 1) {
        result = buckets [count - 2].upper_bound;
        goto cleanup;
    }
    if (b == 0 && buckets [0].upper_bound <= 0) {
        result = buckets [0].upper_bound;
        goto cleanup;
    }
    double bucket_start = 0;
    double bucket_end = buckets [b].upper_bound;
    double bucket_count = buckets [b].count;
    if (b > 0) {
        bucket_start = buckets [b - 1].upper_bound;
        bucket_count -= buckets [b - 1].count;
        rank -= buckets [b - 1].count;
    }
    result = bucket_start + (bucket_end - bucket_start) * (rank / bucket_count);
cleanup:
    free (buckets);
    return result;
}

bool
al_metric_parse_value (const char *text, double *value_p)
{
    assert (text);
    assert (value_p);
    return al_metrics_parse_number (text, strlen (text), value_p);
}

const char *
al_metric_type_name (al_metric_type_t type)
{
    if ((int) type < AL_METRIC_UNTYPED || type > AL_METRIC_SUMMARY)
        return NULL;
    return al_metrics_type_names [type];
}
