/*  test_canary.c: tests of the canary-against-stable judge (deploy/al_canary).

    The Mann-Whitney U and p values are checked against scipy 1.10.1
    (scipy.stats.mannwhitneyu(x, y, alternative="greater", method="exact" or
    "asymptotic", use_continuity=True)), computed once and written here with the
    samples they came from. The judge is then fed tick by tick: not enough data, a
    latency and an error regression (FAIL, sticky), the effect-size floors that keep a
    significant but small difference a PASS, the bounded window, NaN / no traffic /
    out-of-range values skipped, all ties, constant sides, huge values, one side empty,
    a disabled judge, and the configuration checks.
*/
#include "deploy/al_canary.h"
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#define S_COUNT(array) (sizeof (array) / sizeof (array) [0])

static void
s_assert_close (double actual, double expected, double relative)
{
    if (!(fabs (actual - expected) <= relative * fabs (expected)))
        fail_msg ("%.17g is not within %g of %.17g", actual, relative, expected);
}

static al_mann_whitney_t
s_test (const double *x, size_t nx, const double *y, size_t ny)
{
    al_mann_whitney_t result;
    assert_int_equal (al_mann_whitney_greater (x, nx, y, ny, &result), 0);
    assert_int_equal (result.nx, nx);
    assert_int_equal (result.ny, ny);
    return result;
}

//  Exact p-values (no ties, both sides <= 20), against scipy's method="exact".
static void
test_exact_known_values (void **state)
{
    (void) state;
    const double a_x [] = { 4, 5, 6 }, a_y [] = { 1, 2, 3 };
    al_mann_whitney_t r = s_test (a_x, 3, a_y, 3);
    assert_true (r.exact);
    assert_true (r.u == 9);
    s_assert_close (r.p, 0.05, 1e-12);                 // 1 of C(6,3) = 20 arrangements
    //  The other direction: the canary is the better side, U 0, p 1.
    r = s_test (a_y, 3, a_x, 3);
    assert_true (r.u == 0);
    s_assert_close (r.p, 1, 1e-12);

    const double b_x [] = { 3, 5, 7, 9, 11 }, b_y [] = { 1, 2, 4, 6, 8 };
    r = s_test (b_x, 5, b_y, 5);
    assert_true (r.exact && r.u == 19);
    s_assert_close (r.p, 0.1111111111111111, 1e-12);
    r = s_test (b_y, 5, b_x, 5);
    assert_true (r.u == 6);
    s_assert_close (r.p, 0.9246031746031744, 1e-12);

    const double sep_x [] = { 6, 7, 8, 9, 10 }, sep_y [] = { 1, 2, 3, 4, 5 };
    r = s_test (sep_x, 5, sep_y, 5);
    assert_true (r.u == 25);
    s_assert_close (r.p, 0.003968253968253968, 1e-12);  // 1 / 252

    //  20 against 20, the largest exact case.
    const double c_x [] = { 16.477, 13.017, 23.019, 11.449, 20.718, 17.314, 11.16, 20.149, 10.75, 18.673,
                            11.397, 11.814, 18.49, 26.537, 12.476, 14.465, 22.549, 28.954, 21.542, 17.934 };
    const double c_y [] = { 25.573, 8.838, 23.452, 13.213, 10.597, 10.12, 13.553, 22.69, 11.253, 18.469,
                            19.5, 14.703, 17.859, 9.13, 9.073, 11.707, 20.247, 15.697, 13.655, 18.54 };
    r = s_test (c_x, 20, c_y, 20);
    assert_true (r.exact && r.u == 244);
    s_assert_close (r.p, 0.12113481074162022, 1e-9);
    assert_true (isnan (r.z));

    //  Huge and infinite values rank like any other.
    const double h_x [] = { 1e308, 1.7e308, 1.79e308, INFINITY }, h_y [] = { 1e300, 2e300, 3e300, 4e300 };
    r = s_test (h_x, 4, h_y, 4);
    assert_true (r.exact && r.u == 16);
    s_assert_close (r.p, 0.014285714285714285, 1e-12);  // 1 / 70
}

//  The normal approximation: ties or more than 20 on a side.
static void
test_asymptotic_known_values (void **state)
{
    (void) state;
    //  21 against 20: c_x above plus 17.5.
    const double d_x [] = { 16.477, 13.017, 23.019, 11.449, 20.718, 17.314, 11.16, 20.149, 10.75, 18.673,
                            11.397, 11.814, 18.49, 26.537, 12.476, 14.465, 22.549, 28.954, 21.542, 17.934, 17.5 };
    const double d_y [] = { 25.573, 8.838, 23.452, 13.213, 10.597, 10.12, 13.553, 22.69, 11.253, 18.469,
                            19.5, 14.703, 17.859, 9.13, 9.073, 11.707, 20.247, 15.697, 13.655, 18.54 };
    al_mann_whitney_t r = s_test (d_x, 21, d_y, 20);
    assert_false (r.exact);
    assert_true (r.u == 256);
    s_assert_close (r.p, 0.11766663325479293, 1e-9);

    //  24 against 24 with many ties (tie-corrected variance, half ranks).
    const double e_x [] = { 15, 20, 15, 15, 20, 20, 12, 12, 20, 15, 25, 20, 12, 10, 15, 12.5, 12, 10, 20, 25,
                            25, 10, 20, 15 };
    const double e_y [] = { 12.5, 20, 20, 15, 20, 10, 15, 10, 15, 10, 10, 10, 10, 10, 15, 10, 12.5, 12, 12.5,
                            15, 10, 15, 10, 20 };
    r = s_test (e_x, 24, e_y, 24);
    assert_false (r.exact);
    assert_true (r.u == 397.5);
    s_assert_close (r.p, 0.01058896207498299, 1e-9);

    //  Small samples with ties are not exact either.
    const double f_x [] = { 1, 2, 2, 3 }, f_y [] = { 0, 1, 2, 2 };
    r = s_test (f_x, 4, f_y, 4);
    assert_false (r.exact);
    assert_true (r.u == 11.5);
    s_assert_close (r.p, 0.17644835073844467, 1e-9);

    //  Error ratios of a quiet service: mostly 0.
    double g_x [12] = { 0 }, g_y [12] = { 0 };
    g_x [10] = g_x [11] = 0.04;
    g_y [11] = 0.04;
    r = s_test (g_x, 12, g_y, 12);
    assert_true (r.u == 78);
    s_assert_close (r.p, 0.289835113448498, 1e-9);

    //  Constant sides, fully apart: each side one tie group.
    double k_x [10], k_y [10];
    for (int i = 0; i < 10; i++) {
        k_x [i] = 5;
        k_y [i] = 3;
    }
    r = s_test (k_x, 10, k_y, 10);
    assert_false (r.exact);
    assert_true (r.u == 100);
    s_assert_close (r.p, 7.968955844033122e-06, 1e-9);
}

static void
test_no_evidence (void **state)
{
    (void) state;
    //  All ties across both sides: variance 0, p 1.
    double same [30];
    for (int i = 0; i < 30; i++)
        same [i] = 12.5;
    al_mann_whitney_t r = s_test (same, 15, same + 15, 15);
    assert_true (r.u == 112.5);
    assert_true (r.p == 1);
    //  One side empty, both empty.
    r = s_test (same, 15, NULL, 0);
    assert_true (r.u == 0 && r.p == 1);
    r = s_test (NULL, 0, same, 15);
    assert_true (r.u == 0 && r.p == 1);
    r = s_test (NULL, 0, NULL, 0);
    assert_true (r.u == 0 && r.p == 1);
    //  One value each: exact, 1/2 when x is above.
    const double one = 2, other = 1;
    r = s_test (&one, 1, &other, 1);
    assert_true (r.exact && r.u == 1);
    s_assert_close (r.p, 0.5, 1e-12);
}

//  ---------------------------------------------------------------------------------
//  The judge

static al_canary_t *
s_judge (size_t window, double latency_floor, double error_floor)
{
    al_canary_config_t config;
    al_canary_config_default (&config);
    config.min_latency_increase_percent = latency_floor;
    config.min_error_increase_points = error_floor;
    char error [256];
    al_canary_t *judge = al_canary_new (&config, window, error, sizeof error);
    if (!judge)
        fail_msg ("al_canary_new: %s", error);
    return judge;
}

static al_canary_observation_t
s_observation (double rps, double error_ratio, double p50, double p99)
{
    return (al_canary_observation_t) { rps, error_ratio, p50, p99 };
}

static void
test_config_checked (void **state)
{
    (void) state;
    al_canary_config_t config;
    al_canary_config_default (&config);
    assert_true (config.enabled);
    assert_true (config.alpha == 0.01);
    assert_int_equal (config.min_samples, 8);
    assert_true (config.min_latency_increase_percent == 20);
    assert_true (config.min_error_increase_points == 1);
    char error [256];
    al_canary_t *judge = al_canary_new (&config, AL_CANARY_MAX_WINDOW + 1, error, sizeof error);
    assert_null (judge);
    assert_string_equal (error, "window: 10001 is above 10000");

    double alphas [] = { 0, 0.5, -0.1, NAN, 1 };
    for (size_t i = 0; i < S_COUNT (alphas); i++) {
        al_canary_config_default (&config);
        config.alpha = alphas [i];
        assert_null (al_canary_new (&config, 0, error, sizeof error));
        assert_non_null (strstr (error, "alpha: "));
        assert_non_null (strstr (error, "is not in (0, 0.5)"));
    }
    al_canary_config_default (&config);
    config.min_samples = 2;
    assert_null (al_canary_new (&config, 0, error, sizeof error));
    assert_string_equal (error, "min_samples: 2 is not in 3..120 (the window)");
    config.min_samples = 11;
    assert_null (al_canary_new (&config, 10, error, sizeof error));
    assert_string_equal (error, "min_samples: 11 is not in 3..10 (the window)");

    al_canary_config_default (&config);
    config.min_latency_increase_percent = -1;
    assert_null (al_canary_new (&config, 0, error, sizeof error));
    assert_string_equal (error, "min_latency_increase_percent: -1 is not a number >= 0");
    config.min_latency_increase_percent = INFINITY;
    assert_null (al_canary_new (&config, 0, error, sizeof error));
    assert_non_null (strstr (error, "min_latency_increase_percent: "));

    al_canary_config_default (&config);
    config.min_error_increase_points = NAN;
    assert_null (al_canary_new (&config, 0, error, sizeof error));
    assert_non_null (strstr (error, "min_error_increase_points: "));

    //  The edges that are allowed.
    al_canary_config_default (&config);
    config.alpha = 0.49;
    config.min_samples = 3;
    config.min_latency_increase_percent = 0;
    config.min_error_increase_points = 0;
    judge = al_canary_new (&config, 3, error, sizeof error);
    assert_non_null (judge);
    assert_string_equal (error, "");
    al_canary_destroy (&judge);
    assert_null (judge);
    al_canary_destroy (&judge);         // NULL-safe
}

//  Latency p99 values of a 24-tick window: canary about 41 ms, stable about 12.
static double
s_canary_p99 (int tick)
{
    return 40 + (tick * 7) % 5 + 0.1 * tick;
}

static double
s_stable_p99 (int tick)
{
    return 11 + (tick * 3) % 3 + 0.05 * tick;
}

static void
test_not_enough_data (void **state)
{
    (void) state;
    al_canary_t *judge = s_judge (0, 20, 1);
    al_canary_result_t result;
    for (int tick = 0; tick < 7; tick++) {
        al_canary_observation_t canary = s_observation (50, 0, 30, s_canary_p99 (tick));
        al_canary_observation_t stable = s_observation (50, 0, 10, s_stable_p99 (tick));
        result = al_canary_feed (judge, tick * 250, &canary, &stable);
        assert_int_equal (result.verdict, AL_CANARY_NOT_ENOUGH_DATA);
        assert_string_equal (result.rule, "");
        assert_true (result.failed_at_ms == -1);
    }
    assert_string_equal (result.detail, "8 scrapes per side needed: latency 7 canary vs 7 stable, "
                                        "errors 7 canary vs 7 stable");
    //  The 8th tick is enough, and this canary is far worse.
    al_canary_observation_t canary = s_observation (50, 0, 30, s_canary_p99 (7));
    al_canary_observation_t stable = s_observation (50, 0, 10, s_stable_p99 (7));
    result = al_canary_feed (judge, 7 * 250, &canary, &stable);
    assert_int_equal (result.verdict, AL_CANARY_FAIL);
    al_canary_destroy (&judge);

    //  One side empty: never judged, however long the other side's window.
    judge = s_judge (0, 20, 1);
    for (int tick = 0; tick < 200; tick++) {
        canary = s_observation (50, 0.5, 30, 500);
        result = al_canary_feed (judge, tick * 250, &canary, NULL);
        assert_int_equal (result.verdict, AL_CANARY_NOT_ENOUGH_DATA);
    }
    assert_int_equal (al_canary_count (judge, true, true), 120);
    assert_int_equal (al_canary_count (judge, true, false), 0);
    assert_true (isnan (result.stable_p99_median_ms));
    assert_true (result.latency_test.p == 1);
    assert_string_equal (result.detail, "8 scrapes per side needed: latency 120 canary vs 0 stable, "
                                        "errors 120 canary vs 0 stable");
    al_canary_destroy (&judge);
}

static void
test_latency_regression_fails (void **state)
{
    (void) state;
    al_canary_config_t config;
    al_canary_config_default (&config);
    config.min_samples = 24;            // judged first at 24 vs 24: the known U and p below
    char error [256];
    al_canary_t *judge = al_canary_new (&config, 0, error, sizeof error);
    assert_non_null (judge);
    al_canary_result_t result;
    for (int tick = 0; tick < 24; tick++) {
        al_canary_observation_t canary = s_observation (50, 0.01, 20, s_canary_p99 (tick));
        al_canary_observation_t stable = s_observation (50, 0.01, 8, s_stable_p99 (tick));
        result = al_canary_feed (judge, 1000 + tick * 250, &canary, &stable);
        if (tick < 23)
            assert_int_equal (result.verdict, AL_CANARY_NOT_ENOUGH_DATA);
    }
    assert_int_equal (result.verdict, AL_CANARY_FAIL);
    assert_string_equal (result.rule, "canary_latency_vs_stable");
    assert_true (result.failed_at_ms == 1000 + 23 * 250);
    assert_true (result.latency_test.u == 576);
    s_assert_close (result.latency_test.p, 1.531832116836585e-09, 1e-6);   // scipy, asymptotic
    s_assert_close (result.canary_p99_median_ms, 43.2, 1e-9);
    s_assert_close (result.stable_p99_median_ms, 11.575, 1e-9);
    s_assert_close (result.canary_p50_median_ms, 20, 1e-12);
    s_assert_close (result.stable_p50_median_ms, 8, 1e-12);
    assert_string_equal (result.detail,
        "canary p99 43.2 ms vs stable 11.6 ms (median, 24 vs 24 scrapes), Mann-Whitney U=576, p=1.5e-09 < 0.01");
    //  Sticky: a recovered canary does not cancel the failure.
    for (int tick = 24; tick < 200; tick++) {
        al_canary_observation_t same = s_observation (50, 0.01, 8, 12);
        al_canary_result_t later = al_canary_feed (judge, 1000 + tick * 250, &same, &same);
        assert_int_equal (later.verdict, AL_CANARY_FAIL);
        assert_true (later.failed_at_ms == 1000 + 23 * 250);
        assert_string_equal (later.detail, result.detail);
    }
    al_canary_destroy (&judge);
}

static void
test_latency_floor (void **state)
{
    (void) state;
    //  Canary 10% slower every tick: as significant as it gets, under the 20% floor.
    al_canary_t *judge = s_judge (0, 20, 1);
    al_canary_result_t result;
    for (int tick = 0; tick < 60; tick++) {
        double stable_p99 = 12 + (tick % 4) * 0.1;
        al_canary_observation_t canary = s_observation (50, 0, 5, stable_p99 * 1.1 + 0.5);
        al_canary_observation_t stable = s_observation (50, 0, 5, stable_p99);
        result = al_canary_feed (judge, tick * 250, &canary, &stable);
        if (tick >= 7)
            assert_int_equal (result.verdict, AL_CANARY_PASS);
    }
    assert_true (result.latency_test.p < 1e-6);
    assert_non_null (strstr (result.detail, "p99 13.9 vs 12.1 ms (median, 60 vs 60 scrapes, p="));
    assert_non_null (strstr (result.detail, "errors 0.00% vs 0.00% (mean, 60 vs 60 scrapes, p=1)"));
    al_canary_destroy (&judge);

    //  The same values with no floor fail: the floor was what passed them.
    judge = s_judge (0, 0, 1);
    for (int tick = 0; tick < 8; tick++) {
        double stable_p99 = 12 + (tick % 4) * 0.1;
        al_canary_observation_t canary = s_observation (50, 0, 5, stable_p99 * 1.1 + 0.5);
        al_canary_observation_t stable = s_observation (50, 0, 5, stable_p99);
        result = al_canary_feed (judge, tick * 250, &canary, &stable);
    }
    assert_int_equal (result.verdict, AL_CANARY_FAIL);
    assert_string_equal (result.rule, "canary_latency_vs_stable");
    al_canary_destroy (&judge);

    //  Large but not significant: medians 21.5 against 14.5 ms (+48%), sides overlapping
    //  (scipy, exact: U 34, p 0.43923853923853917).
    const double canary_p99 [] = { 10, 11, 30, 31, 32, 12, 33, 13 };
    const double stable_p99 [] = { 11.5, 12.5, 13.5, 29, 30.5, 14, 15, 16 };
    judge = s_judge (0, 20, 1);
    for (int tick = 0; tick < 8; tick++) {
        al_canary_observation_t canary = s_observation (50, 0, 5, canary_p99 [tick]);
        al_canary_observation_t stable = s_observation (50, 0, 5, stable_p99 [tick]);
        result = al_canary_feed (judge, tick * 250, &canary, &stable);
    }
    assert_int_equal (result.verdict, AL_CANARY_PASS);
    assert_true (result.canary_p99_median_ms == 21.5 && result.stable_p99_median_ms == 14.5);
    assert_true (result.latency_test.exact && result.latency_test.u == 34);
    s_assert_close (result.latency_test.p, 0.43923853923853917, 1e-12);
    al_canary_destroy (&judge);
}

static void
test_error_regression_and_floor (void **state)
{
    (void) state;
    //  Canary errors 8..12% against stable 0..2%: FAIL on errors (latency equal).
    al_canary_t *judge = s_judge (0, 20, 1);
    al_canary_result_t result;
    int tick;
    for (tick = 0; tick < 40; tick++) {
        al_canary_observation_t canary = s_observation (80, 0.08 + (tick % 5) * 0.01, 5, 20);
        al_canary_observation_t stable = s_observation (80, (tick % 3) * 0.01, 5, 20);
        result = al_canary_feed (judge, tick * 250, &canary, &stable);
        if (result.verdict == AL_CANARY_FAIL)
            break;
    }
    assert_int_equal (result.verdict, AL_CANARY_FAIL);
    assert_int_equal (tick, 7);         // the first tick with 8 per side
    assert_string_equal (result.rule, "canary_errors_vs_stable");
    assert_true (result.errors_test.u == 64);
    assert_true (result.errors_test.p < 0.01);
    s_assert_close (result.canary_error_mean_percent, 9.625, 1e-9);
    s_assert_close (result.stable_error_mean_percent, 0.875, 1e-9);
    assert_non_null (strstr (result.detail, "canary errors 9.62% vs stable 0.87% (mean, 8 vs 8 scrapes), "
                                            "Mann-Whitney U=64, p="));
    al_canary_destroy (&judge);

    //  Canary 1.5% vs stable 1.0% every tick: significant, half a point, floor 1 point.
    judge = s_judge (0, 20, 1);
    for (tick = 0; tick < 40; tick++) {
        al_canary_observation_t canary = s_observation (80, 0.015 + (tick % 2) * 0.001, 5, 20);
        al_canary_observation_t stable = s_observation (80, 0.010 + (tick % 2) * 0.001, 5, 20);
        result = al_canary_feed (judge, tick * 250, &canary, &stable);
    }
    assert_int_equal (result.verdict, AL_CANARY_PASS);
    assert_true (result.errors_test.p < 0.01);
    al_canary_destroy (&judge);
    //  With a floor of 0.25 points it fails.
    judge = s_judge (0, 20, 0.25);
    for (tick = 0; tick < 8; tick++) {
        al_canary_observation_t canary = s_observation (80, 0.015 + (tick % 2) * 0.001, 5, 20);
        al_canary_observation_t stable = s_observation (80, 0.010 + (tick % 2) * 0.001, 5, 20);
        result = al_canary_feed (judge, tick * 250, &canary, &stable);
    }
    assert_int_equal (result.verdict, AL_CANARY_FAIL);
    assert_string_equal (result.rule, "canary_errors_vs_stable");
    al_canary_destroy (&judge);
}

static void
test_latency_reported_first (void **state)
{
    (void) state;
    al_canary_t *judge = s_judge (0, 20, 1);
    al_canary_result_t result;
    for (int tick = 0; tick < 8; tick++) {
        al_canary_observation_t canary = s_observation (80, 0.2 + tick * 0.001, 5, 100 + tick);
        al_canary_observation_t stable = s_observation (80, 0.01 + tick * 0.001, 5, 10 + tick);
        result = al_canary_feed (judge, tick * 250, &canary, &stable);
    }
    assert_int_equal (result.verdict, AL_CANARY_FAIL);
    assert_string_equal (result.rule, "canary_latency_vs_stable");
    assert_true (result.errors_test.p < 0.01);      // errors failed too
    al_canary_destroy (&judge);
}

static void
test_values_skipped (void **state)
{
    (void) state;
    al_canary_t *judge = s_judge (0, 20, 1);
    al_canary_observation_t bad [] = {
        s_observation (0, 0, NAN, NAN),             // no traffic: error ratio 0 is no evidence
        s_observation (NAN, 0.5, NAN, NAN),
        s_observation (INFINITY, 0.5, NAN, NAN),
        s_observation (10, NAN, NAN, NAN),
        s_observation (10, -0.1, NAN, NAN),
        s_observation (10, 1.5, NAN, NAN),
        s_observation (-10, 0.5, -1, -1),           // negative latency is none either
    };
    for (size_t i = 0; i < S_COUNT (bad); i++) {
        al_canary_result_t result = al_canary_feed (judge, (int64_t) i, &bad [i], &bad [i]);
        assert_int_equal (result.verdict, AL_CANARY_NOT_ENOUGH_DATA);
    }
    assert_int_equal (al_canary_count (judge, true, true), 0);
    assert_int_equal (al_canary_count (judge, false, true), 0);
    assert_int_equal (al_canary_count (judge, true, false), 0);
    assert_int_equal (al_canary_count (judge, false, false), 0);
    //  Latency without a usable error ratio and the reverse count separately.
    al_canary_observation_t latency_only = s_observation (0, 0, 5, 12);
    al_canary_observation_t errors_only = s_observation (10, 1, NAN, NAN);   // 1 is in range
    al_canary_feed (judge, 100, &latency_only, &errors_only);
    assert_int_equal (al_canary_count (judge, true, true), 1);
    assert_int_equal (al_canary_count (judge, false, true), 0);
    assert_int_equal (al_canary_count (judge, true, false), 0);
    assert_int_equal (al_canary_count (judge, false, false), 1);
    //  A latency signal with data and an error signal without: not judged, not a pass.
    al_canary_result_t result;
    for (int tick = 0; tick < 30; tick++) {
        al_canary_observation_t both = s_observation (0, 0, 5, 12 + tick % 3);
        result = al_canary_feed (judge, 200 + tick, &both, &both);
    }
    assert_int_equal (result.verdict, AL_CANARY_NOT_ENOUGH_DATA);
    assert_non_null (strstr (result.detail, "errors 0 canary vs 1 stable"));
    al_canary_destroy (&judge);
}

static void
test_ties_and_constant_sides (void **state)
{
    (void) state;
    //  Everything equal: p 1, PASS.
    al_canary_t *judge = s_judge (0, 20, 1);
    al_canary_result_t result;
    for (int tick = 0; tick < 50; tick++) {
        al_canary_observation_t same = s_observation (40, 0, 0.99, 0.99);
        result = al_canary_feed (judge, tick * 250, &same, &same);
    }
    assert_int_equal (result.verdict, AL_CANARY_PASS);
    assert_true (result.latency_test.p == 1 && result.errors_test.p == 1);
    assert_string_equal (result.detail, "p99 1.0 vs 1.0 ms (median, 50 vs 50 scrapes, p=1), "
                                        "errors 0.00% vs 0.00% (mean, 50 vs 50 scrapes, p=1)");
    al_canary_destroy (&judge);

    //  Two constant sides apart (a p99 pinned to a bucket bound on each side).
    judge = s_judge (0, 20, 1);
    for (int tick = 0; tick < 10; tick++) {
        al_canary_observation_t canary = s_observation (40, 0, 5, 50);
        al_canary_observation_t stable = s_observation (40, 0, 5, 25);
        result = al_canary_feed (judge, tick * 250, &canary, &stable);
        if (tick < 7)
            assert_int_equal (result.verdict, AL_CANARY_NOT_ENOUGH_DATA);
    }
    assert_int_equal (result.verdict, AL_CANARY_FAIL);
    assert_true (result.latency_test.u == 64);
    assert_false (result.latency_test.exact);
    al_canary_destroy (&judge);

    //  The canary constant and better: PASS.
    judge = s_judge (0, 20, 1);
    for (int tick = 0; tick < 20; tick++) {
        al_canary_observation_t canary = s_observation (40, 0, 5, 10);
        al_canary_observation_t stable = s_observation (40, 0.01 * (tick % 2), 5, 25 + tick % 4);
        result = al_canary_feed (judge, tick * 250, &canary, &stable);
    }
    assert_int_equal (result.verdict, AL_CANARY_PASS);
    assert_true (result.latency_test.u == 0);
    al_canary_destroy (&judge);
}

static void
test_huge_values (void **state)
{
    (void) state;
    al_canary_t *judge = s_judge (0, 20, 1);
    al_canary_result_t result;
    for (int tick = 0; tick < 8; tick++) {
        al_canary_observation_t canary = s_observation (DBL_MAX, 0, DBL_MAX, tick % 2? DBL_MAX: 1e308);
        al_canary_observation_t stable = s_observation (DBL_MAX, 0, 1e300, 1e300 + tick * 1e290);
        result = al_canary_feed (judge, tick * 250, &canary, &stable);
    }
    assert_int_equal (result.verdict, AL_CANARY_FAIL);
    assert_true (isfinite (result.canary_p99_median_ms));    // no overflow in the midpoint
    s_assert_close (result.canary_p99_median_ms, 1e308 + (DBL_MAX - 1e308) / 2, 1e-12);
    assert_true (isfinite (result.canary_p50_median_ms));
    assert_non_null (strstr (result.detail, "canary p99 1.4e+308 ms vs stable 1e+300 ms (median, 8 vs 8 scrapes)"));
    al_canary_destroy (&judge);

    //  Infinite canary p99s rank above everything; a floor of inf × 1.2 never passes them.
    judge = s_judge (0, 20, 1);
    for (int tick = 0; tick < 8; tick++) {
        al_canary_observation_t canary = s_observation (5, 0, 1, INFINITY);
        al_canary_observation_t stable = s_observation (5, 0, 1, 20 + tick);
        result = al_canary_feed (judge, tick * 250, &canary, &stable);
    }
    assert_int_equal (result.verdict, AL_CANARY_FAIL);
    assert_true (isinf (result.canary_p99_median_ms));
    assert_non_null (strstr (result.detail, "canary p99 inf ms"));
    al_canary_destroy (&judge);
    judge = s_judge (0, 20, 1);
    for (int tick = 0; tick < 8; tick++) {
        al_canary_observation_t both = s_observation (5, 0, 1, INFINITY);
        result = al_canary_feed (judge, tick * 250, &both, &both);
    }
    assert_int_equal (result.verdict, AL_CANARY_PASS);
    al_canary_destroy (&judge);
}

//  Only the last `window` values count: a regression that old values would hide is
//  seen once they have left the window.
static void
test_window_bounded (void **state)
{
    (void) state;
    //  Distinct values throughout, so every p is exact (scipy, method="exact").
    al_canary_t *judge = s_judge (10, 20, 1);
    al_canary_result_t result;
    int tick = 0;
    for (; tick < 40; tick++) {                         // canary better than stable
        al_canary_observation_t canary = s_observation (40, 0, 5, 5 + tick * 0.01);
        al_canary_observation_t stable = s_observation (40, 0, 5, 20 + tick * 0.01);
        result = al_canary_feed (judge, tick * 250, &canary, &stable);
        assert_int_equal (result.verdict, tick < 7? AL_CANARY_NOT_ENOUGH_DATA: AL_CANARY_PASS);
    }
    assert_int_equal (al_canary_count (judge, true, true), 10);
    assert_int_equal (al_canary_count (judge, false, false), 10);
    int first_fail = -1;
    for (int worse = 0; worse < 10; worse++, tick++) {  // then far worse
        al_canary_observation_t canary = s_observation (40, 0, 5, 60 + worse);
        al_canary_observation_t stable = s_observation (40, 0, 5, 20 + tick * 0.01);
        result = al_canary_feed (judge, tick * 250, &canary, &stable);
        if (result.verdict == AL_CANARY_FAIL && first_fail < 0)
            first_fail = worse;
    }
    //  k worse values among the 10 kept give U = 10 k: 8 give p 0.0116 (not yet), 9 give
    //  p 0.00075. Nothing older than the window counts.
    assert_int_equal (first_fail, 8);
    assert_int_equal (result.verdict, AL_CANARY_FAIL);
    assert_true (result.latency_test.exact && result.latency_test.u == 90);
    s_assert_close (result.latency_test.p, 0.0007523436316005976, 1e-9);
    assert_int_equal (result.latency_test.nx, 10);
    assert_int_equal (result.latency_test.ny, 10);

    //  The same sequence with a window of 120 keeps the 40 better ticks and passes.
    al_canary_destroy (&judge);
    judge = s_judge (0, 20, 1);
    for (tick = 0; tick < 50; tick++) {
        double canary_p99 = tick < 40? 5 + tick * 0.01: 60 + (tick - 40);
        al_canary_observation_t canary = s_observation (40, 0, 5, canary_p99);
        al_canary_observation_t stable = s_observation (40, 0, 5, 20 + tick * 0.01);
        result = al_canary_feed (judge, tick * 250, &canary, &stable);
    }
    assert_int_equal (result.verdict, AL_CANARY_PASS);
    al_canary_destroy (&judge);
}

static void
test_disabled (void **state)
{
    (void) state;
    al_canary_config_t config;
    al_canary_config_default (&config);
    config.enabled = false;
    char error [256];
    al_canary_t *judge = al_canary_new (&config, 0, error, sizeof error);
    assert_non_null (judge);
    for (int tick = 0; tick < 20; tick++) {
        al_canary_observation_t canary = s_observation (40, 0.5, 5, 500);
        al_canary_observation_t stable = s_observation (40, 0, 5, 5);
        al_canary_result_t result = al_canary_feed (judge, tick, &canary, &stable);
        assert_int_equal (result.verdict, AL_CANARY_DISABLED);
        assert_string_equal (al_canary_verdict_name (result.verdict), "disabled");
    }
    assert_int_equal (al_canary_count (judge, true, true), 0);
    al_canary_destroy (&judge);
    assert_string_equal (al_canary_verdict_name (AL_CANARY_NOT_ENOUGH_DATA), "not_enough_data");
    assert_string_equal (al_canary_verdict_name (AL_CANARY_PASS), "pass");
    assert_string_equal (al_canary_verdict_name (AL_CANARY_FAIL), "fail");
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_exact_known_values),
        cmocka_unit_test (test_asymptotic_known_values),
        cmocka_unit_test (test_no_evidence),
        cmocka_unit_test (test_config_checked),
        cmocka_unit_test (test_not_enough_data),
        cmocka_unit_test (test_latency_regression_fails),
        cmocka_unit_test (test_latency_floor),
        cmocka_unit_test (test_error_regression_and_floor),
        cmocka_unit_test (test_latency_reported_first),
        cmocka_unit_test (test_values_skipped),
        cmocka_unit_test (test_ties_and_constant_sides),
        cmocka_unit_test (test_huge_values),
        cmocka_unit_test (test_window_bounded),
        cmocka_unit_test (test_disabled),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
