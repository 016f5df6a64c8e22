/*  al_canary.c: the canary-against-stable judge (one-sided Mann-Whitney U per signal).

    Each signal (latency p99, p50, error ratio) of each side (canary, stable) is a ring
    of the last `window` values; a feed pushes what the tick brought and judges the two
    judged signals afresh on everything kept. A judgement sorts at most 2 × window
    values into a scratch array allocated with the object, so a feed never allocates.

    Invariants: count <= window for every ring; once failed, the stored result is
    returned unchanged; now_ms never decreases.
*/
#include "deploy/al_canary.h"
#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_CANARY 0
#define S_STABLE 1

typedef struct {
    double *values;                 // window entries, a ring
    size_t head;                    // where the next value goes
    size_t count;                   // values kept, <= window
} s_ring_t;

//  One value of the combined sample, and which side it came from.
typedef struct {
    double value;
    int from_x;
} s_ranked_t;

struct _al_canary_t {
    al_canary_config_t config;
    size_t window;
    s_ring_t p99 [2], p50 [2], errors [2];
    double *scratch_x, *scratch_y;  // window entries each: ring contents for a test
    s_ranked_t *scratch_ranked;     // 2 × window entries
    int64_t last_ms;                // INT64_MIN before the first feed
    bool failed;
    al_canary_result_t failure;     // returned as is once failed
};

void
al_canary_config_default (al_canary_config_t *config)
{
    assert (config);
    config->enabled = true;
    config->alpha = AL_CANARY_DEFAULT_ALPHA;
    config->min_samples = AL_CANARY_DEFAULT_MIN_SAMPLES;
    config->min_latency_increase_percent = AL_CANARY_DEFAULT_MIN_LATENCY_INCREASE_PERCENT;
    config->min_error_increase_points = AL_CANARY_DEFAULT_MIN_ERROR_INCREASE_POINTS;
}

const char *
al_canary_verdict_name (al_canary_verdict_t verdict)
{
    switch (verdict) {
        case AL_CANARY_NOT_ENOUGH_DATA: return "not_enough_data";
        case AL_CANARY_PASS:            return "pass";
        case AL_CANARY_FAIL:            return "fail";
        case AL_CANARY_DISABLED:        return "disabled";
    }
    return "unknown";
}

//  ---------------------------------------------------------------------------------
//  The Mann-Whitney U test

static int
s_compare_ranked (const void *a, const void *b)
{
    double x = ((const s_ranked_t *) a)->value, y = ((const s_ranked_t *) b)->value;
    return x < y? -1: x > y;
}

static int
s_compare_double (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y? -1: x > y;
}

//  P(U >= u) for U of samples of nx and ny values without ties: the number of
//  arrangements with each U is the coefficient of q^U in the Gaussian binomial
//  [nx + ny choose nx]_q, built as prod_{i=1..nx} (1 - q^(ny+i)) / (1 - q^i). Every
//  coefficient is an integer below C(40, 20) < 2^53, so doubles hold them exactly.
static double
s_exact_upper_tail (size_t nx, size_t ny, double u)
{
    assert (nx >= 1 && ny >= 1 && nx <= AL_CANARY_EXACT_MAX && ny <= AL_CANARY_EXACT_MAX);
    double counts [AL_CANARY_EXACT_MAX * AL_CANARY_EXACT_MAX + AL_CANARY_EXACT_MAX + 1];
    size_t size = nx * ny + nx + 1;
    memset (counts, 0, size * sizeof counts [0]);
    counts [0] = 1;
    size_t degree = 0;                  // of the product so far: (i - 1) × ny
    for (size_t i = 1; i <= nx; i++) {
        size_t shift = ny + i;
        for (size_t k = degree + shift; k >= shift; k--)
            counts [k] -= counts [k - shift];
        for (size_t k = i; k <= degree + shift; k++)
            counts [k] += counts [k - i];
        degree += ny;
    }
    double total = 0, tail = 0;
    for (size_t k = 0; k <= degree; k++) {
        total += counts [k];
        if ((double) k >= u)
            tail += counts [k];
    }
    return tail / total;
}

//  The test on x and y with ranked (nx + ny entries) as scratch.
static void
s_mann_whitney (const double *x, size_t nx, const double *y, size_t ny, s_ranked_t *ranked,
                al_mann_whitney_t *result)
{
    memset (result, 0, sizeof *result);
    result->nx = nx;
    result->ny = ny;
    result->z = NAN;
    result->p = 1;
    if (nx == 0 || ny == 0)
        return;
    size_t n = nx + ny;
    for (size_t i = 0; i < nx; i++) {
        assert (!isnan (x [i]));
        ranked [i] = (s_ranked_t) { x [i], 1 };
    }
    for (size_t i = 0; i < ny; i++) {
        assert (!isnan (y [i]));
        ranked [nx + i] = (s_ranked_t) { y [i], 0 };
    }
    qsort (ranked, n, sizeof *ranked, s_compare_ranked);
    //  Mid-ranks: a group of t equal values at positions i..i+t-1 (0-based) all get
    //  rank i + (t + 1) / 2. Ties also shrink the variance by sum (t^3 - t).
    double rank_sum = 0, tie_term = 0;
    for (size_t i = 0; i < n; ) {
        size_t j = i + 1;
        while (j < n && ranked [j].value == ranked [i].value)
            j++;
        double t = (double) (j - i);
        double rank = (double) i + (t + 1) / 2;
        for (size_t k = i; k < j; k++)
            if (ranked [k].from_x)
                rank_sum += rank;
        tie_term += t * t * t - t;
        i = j;
    }
    double fx = (double) nx, fy = (double) ny, fn = (double) n;
    result->u = rank_sum - fx * (fx + 1) / 2;
    if (tie_term == 0 && nx <= AL_CANARY_EXACT_MAX && ny <= AL_CANARY_EXACT_MAX) {
        result->exact = true;
        result->p = s_exact_upper_tail (nx, ny, result->u);
        return;
    }
    double variance = fx * fy / 12 * ((fn + 1) - tie_term / (fn * (fn - 1)));
    if (!(variance > 0))
        return;                         // every value equal: no evidence either way
    result->z = (result->u - fx * fy / 2 - 0.5) / sqrt (variance);
    result->p = 0.5 * erfc (result->z / sqrt (2.0));
}

int
al_mann_whitney_greater (const double *x, size_t nx, const double *y, size_t ny,
                         al_mann_whitney_t *result)
{
    assert (result);
    assert ((x || nx == 0) && (y || ny == 0));
    s_ranked_t *ranked = (s_ranked_t *) malloc ((nx + ny + 1) * sizeof *ranked);
    if (!ranked)
        return -1;
    s_mann_whitney (x, nx, y, ny, ranked, result);
    free (ranked);
    return 0;
}

//  ---------------------------------------------------------------------------------
//  The judge

al_canary_t *
al_canary_new (const al_canary_config_t *config, size_t window, char *error, size_t error_size)
{
    assert (config);
    assert (error && error_size);
    error [0] = 0;
    if (window == 0)
        window = AL_CANARY_DEFAULT_WINDOW;
    if (window > AL_CANARY_MAX_WINDOW) {
        snprintf (error, error_size, "window: %zu is above %d", window, AL_CANARY_MAX_WINDOW);
        return NULL;
    }
    if (!(config->alpha > 0 && config->alpha < 0.5)) {
        snprintf (error, error_size, "alpha: %g is not in (0, 0.5)", config->alpha);
        return NULL;
    }
    if (config->min_samples < 3 || config->min_samples > window) {
        snprintf (error, error_size, "min_samples: %u is not in 3..%zu (the window)",
                  config->min_samples, window);
        return NULL;
    }
    if (!(isfinite (config->min_latency_increase_percent) && config->min_latency_increase_percent >= 0)) {
        snprintf (error, error_size, "min_latency_increase_percent: %g is not a number >= 0",
                  config->min_latency_increase_percent);
        return NULL;
    }
    if (!(isfinite (config->min_error_increase_points) && config->min_error_increase_points >= 0)) {
        snprintf (error, error_size, "min_error_increase_points: %g is not a number >= 0",
                  config->min_error_increase_points);
        return NULL;
    }
    al_canary_t *self = (al_canary_t *) calloc (1, sizeof *self);
    if (!self)
        goto out_of_memory;
    self->config = *config;
    self->window = window;
    self->last_ms = INT64_MIN;
    for (int side = 0; side < 2; side++) {
        self->p99 [side].values = (double *) calloc (window, sizeof (double));
        self->p50 [side].values = (double *) calloc (window, sizeof (double));
        self->errors [side].values = (double *) calloc (window, sizeof (double));
        if (!self->p99 [side].values || !self->p50 [side].values || !self->errors [side].values)
            goto out_of_memory;
    }
    self->scratch_x = (double *) calloc (window, sizeof (double));
    self->scratch_y = (double *) calloc (window, sizeof (double));
    self->scratch_ranked = (s_ranked_t *) calloc (2 * window, sizeof (s_ranked_t));
    if (!self->scratch_x || !self->scratch_y || !self->scratch_ranked)
        goto out_of_memory;
    return self;

out_of_memory:
    snprintf (error, error_size, "out of memory");
    al_canary_destroy (&self);
    return NULL;
}

void
al_canary_destroy (al_canary_t **self_p)
{
    assert (self_p);
    al_canary_t *self = *self_p;
    if (!self)
        return;
    for (int side = 0; side < 2; side++) {
        free (self->p99 [side].values);
        free (self->p50 [side].values);
        free (self->errors [side].values);
    }
    free (self->scratch_x);
    free (self->scratch_y);
    free (self->scratch_ranked);
    free (self);
    *self_p = NULL;
}

static void
s_ring_push (s_ring_t *ring, size_t window, double value)
{
    ring->values [ring->head] = value;
    ring->head = (ring->head + 1) % window;
    if (ring->count < window)
        ring->count++;
}

//  Copy ring's values into out (order does not matter to any statistic here).
static size_t
s_ring_copy (const s_ring_t *ring, double *out)
{
    memcpy (out, ring->values, ring->count * sizeof (double));
    return ring->count;
}

//  Median of values (sorted in place); NaN when count is 0. Never overflows: the
//  midpoint of two huge values is a + (b - a) / 2, not (a + b) / 2.
static double
s_median (double *values, size_t count)
{
    if (count == 0)
        return NAN;
    qsort (values, count, sizeof *values, s_compare_double);
    if (count % 2)
        return values [count / 2];
    double a = values [count / 2 - 1], b = values [count / 2];
    return a == b? a: a + (b - a) / 2;
}

static double
s_mean_percent (const double *values, size_t count)
{
    if (count == 0)
        return NAN;
    double sum = 0;
    for (size_t i = 0; i < count; i++)
        sum += values [i];
    return sum / (double) count * 100;
}

static void
s_push_observation (al_canary_t *self, int side, const al_canary_observation_t *observation)
{
    if (!observation)
        return;
    if (!isnan (observation->latency_p99_ms) && observation->latency_p99_ms >= 0)
        s_ring_push (&self->p99 [side], self->window, observation->latency_p99_ms);
    if (!isnan (observation->latency_p50_ms) && observation->latency_p50_ms >= 0)
        s_ring_push (&self->p50 [side], self->window, observation->latency_p50_ms);
    if (isfinite (observation->requests_per_second) && observation->requests_per_second > 0
    &&  observation->error_ratio >= 0 && observation->error_ratio <= 1)
        s_ring_push (&self->errors [side], self->window, observation->error_ratio);
}

//  A latency for the detail: "41.2", or "1.3e+308" for a value %.1f would spell in
//  300 digits (the detail is one line of bounded size).
static const char *
s_format_ms (char *buffer, size_t size, double value)
{
    snprintf (buffer, size, fabs (value) < 1e9? "%.1f": "%.3g", value);
    return buffer;
}

//  "p=0.0003 < 0.01" or "p=0.41"
static void
s_format_p (char *buffer, size_t size, double p, double alpha)
{
    if (p < alpha)
        snprintf (buffer, size, "p=%.2g < %g", p, alpha);
    else
        snprintf (buffer, size, "p=%.2g", p);
}

static void
s_judge (al_canary_t *self, al_canary_result_t *result)
{
    const al_canary_config_t *config = &self->config;
    size_t n_lat_c = self->p99 [S_CANARY].count, n_lat_s = self->p99 [S_STABLE].count;
    size_t n_err_c = self->errors [S_CANARY].count, n_err_s = self->errors [S_STABLE].count;

    //  Latency p99: the test, then the medians (s_median sorts the scratch copies).
    s_ring_copy (&self->p99 [S_CANARY], self->scratch_x);
    s_ring_copy (&self->p99 [S_STABLE], self->scratch_y);
    s_mann_whitney (self->scratch_x, n_lat_c, self->scratch_y, n_lat_s, self->scratch_ranked,
                    &result->latency_test);
    result->canary_p99_median_ms = s_median (self->scratch_x, n_lat_c);
    result->stable_p99_median_ms = s_median (self->scratch_y, n_lat_s);
    result->canary_p50_median_ms = s_median (self->scratch_x,
                                             s_ring_copy (&self->p50 [S_CANARY], self->scratch_x));
    result->stable_p50_median_ms = s_median (self->scratch_y,
                                             s_ring_copy (&self->p50 [S_STABLE], self->scratch_y));
    //  Error ratio.
    s_ring_copy (&self->errors [S_CANARY], self->scratch_x);
    s_ring_copy (&self->errors [S_STABLE], self->scratch_y);
    s_mann_whitney (self->scratch_x, n_err_c, self->scratch_y, n_err_s, self->scratch_ranked,
                    &result->errors_test);
    result->canary_error_mean_percent = s_mean_percent (self->scratch_x, n_err_c);
    result->stable_error_mean_percent = s_mean_percent (self->scratch_y, n_err_s);

    bool latency_judged = n_lat_c >= config->min_samples && n_lat_s >= config->min_samples;
    bool errors_judged = n_err_c >= config->min_samples && n_err_s >= config->min_samples;
    bool latency_fails = latency_judged && result->latency_test.p < config->alpha
                      && result->canary_p99_median_ms
                         > result->stable_p99_median_ms * (1 + config->min_latency_increase_percent / 100);
    bool errors_fails = errors_judged && result->errors_test.p < config->alpha
                     && result->canary_error_mean_percent - result->stable_error_mean_percent
                        > config->min_error_increase_points;
    char latency_p [48], errors_p [48], canary_ms [32], stable_ms [32];
    s_format_ms (canary_ms, sizeof canary_ms, result->canary_p99_median_ms);
    s_format_ms (stable_ms, sizeof stable_ms, result->stable_p99_median_ms);
    s_format_p (latency_p, sizeof latency_p, result->latency_test.p, config->alpha);
    s_format_p (errors_p, sizeof errors_p, result->errors_test.p, config->alpha);
    if (latency_fails) {
        result->verdict = AL_CANARY_FAIL;
        snprintf (result->rule, sizeof result->rule, "canary_latency_vs_stable");
        snprintf (result->detail, sizeof result->detail,
                  "canary p99 %s ms vs stable %s ms (median, %zu vs %zu scrapes), "
                  "Mann-Whitney U=%g, %s", canary_ms, stable_ms, n_lat_c, n_lat_s,
                  result->latency_test.u, latency_p);
    }
    else
    if (errors_fails) {
        result->verdict = AL_CANARY_FAIL;
        snprintf (result->rule, sizeof result->rule, "canary_errors_vs_stable");
        snprintf (result->detail, sizeof result->detail,
                  "canary errors %.2f%% vs stable %.2f%% (mean, %zu vs %zu scrapes), "
                  "Mann-Whitney U=%g, %s", result->canary_error_mean_percent,
                  result->stable_error_mean_percent, n_err_c, n_err_s, result->errors_test.u, errors_p);
    }
    else
    if (!latency_judged || !errors_judged) {
        result->verdict = AL_CANARY_NOT_ENOUGH_DATA;
        snprintf (result->detail, sizeof result->detail,
                  "%u scrapes per side needed: latency %zu canary vs %zu stable, "
                  "errors %zu canary vs %zu stable", config->min_samples, n_lat_c, n_lat_s,
                  n_err_c, n_err_s);
    }
    else {
        result->verdict = AL_CANARY_PASS;
        snprintf (result->detail, sizeof result->detail,
                  "p99 %s vs %s ms (median, %zu vs %zu scrapes, %s), "
                  "errors %.2f%% vs %.2f%% (mean, %zu vs %zu scrapes, %s)",
                  canary_ms, stable_ms, n_lat_c, n_lat_s,
                  latency_p, result->canary_error_mean_percent, result->stable_error_mean_percent,
                  n_err_c, n_err_s, errors_p);
    }
}

al_canary_result_t
al_canary_feed (al_canary_t *self, int64_t now_ms, const al_canary_observation_t *canary,
                const al_canary_observation_t *stable)
{
    assert (self);
    assert (now_ms >= self->last_ms);
    self->last_ms = now_ms;
    if (self->failed)
        return self->failure;
    al_canary_result_t result;
    memset (&result, 0, sizeof result);
    result.failed_at_ms = -1;
    if (!self->config.enabled) {
        result.verdict = AL_CANARY_DISABLED;
        snprintf (result.detail, sizeof result.detail, "compare_to_stable is not enabled");
        result.latency_test.p = result.errors_test.p = 1;
        result.latency_test.z = result.errors_test.z = NAN;
        result.canary_p99_median_ms = result.stable_p99_median_ms = NAN;
        result.canary_p50_median_ms = result.stable_p50_median_ms = NAN;
        result.canary_error_mean_percent = result.stable_error_mean_percent = NAN;
        return result;
    }
    s_push_observation (self, S_CANARY, canary);
    s_push_observation (self, S_STABLE, stable);
    s_judge (self, &result);
    if (result.verdict == AL_CANARY_FAIL) {
        result.failed_at_ms = now_ms;
        self->failed = true;
        self->failure = result;
    }
    return result;
}

size_t
al_canary_count (const al_canary_t *self, bool latency, bool canary)
{
    assert (self);
    int side = canary? S_CANARY: S_STABLE;
    return latency? self->p99 [side].count: self->errors [side].count;
}
