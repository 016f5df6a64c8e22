/*  test_rules.c: quality_rules.yaml's rollback triggers on SoakSignal samples.

    Thresholds are the shipped defaults (seed 001/004: > 3 health failures, > 5 points of
    error rate over baseline, p99 > 2 × baseline, cpu/memory > 80 %, investigate above
    1 %), written out in rules_fixture.c (shared with test_watch_view) and also loaded
    from policies/default to prove the YAML drives them. Each rule is probed just below its threshold (passes) and just above (breaches);
    missing evidence is probed at the end of its grace period and one millisecond later.
    al_rules_explain's rows must say what al_rules_feed decides (missing shown as
    missing, a single saturation spike as "over"), baselines are built per signal from
    the samples that carry it, a signal that is not required is never missing, and the
    stream (airlock watch --signals, the MCP) judges baseline runs and soaks as the
    monitor does. Times are the test's own numbers: nothing sleeps and nothing measures
    time.
*/
#include "deploy/al_metrics.h"
#include "deploy/al_rules.h"
#include "deploy/al_signals.h"
#include "policies/al_policy.h"
#include "rules_fixture.h"
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#define S_EPSILON 1e-6
#define S_GRACE_MS 5000

//  A healthy sample of demo (rules_fixture.h).
static Airlock__SoakSignal
s_sample (void)
{
    return rf_sample ("demo", 1, false);
}

//  The baseline of a service that ran at 0.2 % errors and p99 100 ms.
static const al_baseline_t s_baseline = { 0.002, 100, 10 };

static al_rules_t *
s_rules (const al_baseline_t *baseline)
{
    al_policy_thresholds_t thresholds = rf_thresholds ();
    al_rules_t *rules = al_rules_new (&thresholds, baseline, S_GRACE_MS);
    assert_non_null (rules);
    return rules;
}

static void
s_assert_result (al_rules_result_t result, al_rules_verdict_t verdict, const char *rule)
{
    if (result.verdict != verdict || strcmp (result.rule, rule) != 0)
        fail_msg ("expected %s '%s', got %s '%s' (%s)", al_rules_verdict_name (verdict), rule,
                  al_rules_verdict_name (result.verdict), result.rule, result.detail);
    if (verdict == AL_RULES_OK)
        assert_string_equal (result.detail, "");
    else
        assert_true (strlen (result.detail) > 0);
}

//  Feed sample to a fresh evaluator with the given baseline; its verdict.
static al_rules_result_t
s_once (const al_baseline_t *baseline, const Airlock__SoakSignal *sample)
{
    al_rules_t *rules = s_rules (baseline);
    al_rules_result_t result = al_rules_feed (rules, sample, 0, 1000);
    al_rules_destroy (&rules);
    assert_null (rules);
    return result;
}

//  The same sample AL_RULES_SATURATION_SAMPLES times in a row, 250 ms apart: the verdict
//  of the last; every earlier one must be OK (saturation counts only when it lasts).
static al_rules_result_t
s_sustained (const al_baseline_t *baseline, const Airlock__SoakSignal *sample)
{
    al_rules_t *rules = s_rules (baseline);
    al_rules_result_t result;
    for (int i = 0; i < AL_RULES_SATURATION_SAMPLES; i++) {
        result = al_rules_feed (rules, sample, 0, 1000 + 250 * i);
        if (i + 1 < AL_RULES_SATURATION_SAMPLES && result.verdict != AL_RULES_OK)
            break;
    }
    al_rules_destroy (&rules);
    return result;
}

//  --- Each rule at its threshold ----------------------------------------------------

static void
test_healthy_sample (void **state)
{
    (void) state;
    Airlock__SoakSignal sample = s_sample ();
    s_assert_result (s_once (&s_baseline, &sample), AL_RULES_OK, "");
    s_assert_result (s_once (NULL, &sample), AL_RULES_OK, "");
    al_rules_t *none = NULL;
    al_rules_destroy (&none);
    assert_null (none);
    assert_string_equal (al_rules_verdict_name (AL_RULES_BREACH), "breach");
}

static void
test_health_check_failures (void **state)
{
    (void) state;
    Airlock__SoakSignal sample = s_sample ();
    sample.consecutive_health_failures = 3;
    s_assert_result (s_once (&s_baseline, &sample), AL_RULES_OK, "");
    sample.consecutive_health_failures = 4;
    al_rules_result_t result = s_once (&s_baseline, &sample);
    s_assert_result (result, AL_RULES_BREACH, "health_check_failures");
    assert_string_equal (result.detail, "4 consecutive health-check failures > 3");
}

static void
test_error_rate_increase (void **state)
{
    (void) state;
    Airlock__SoakSignal sample = s_sample ();
    //  Baseline 0.2 %: the limit is 5.2 %. Below it, still above 1 %: investigate.
    sample.error_ratio = (0.2 + 5 - S_EPSILON) / 100;
    s_assert_result (s_once (&s_baseline, &sample), AL_RULES_INVESTIGATE, "error_rate_investigate");
    sample.error_ratio = (0.2 + 5 + S_EPSILON) / 100;
    s_assert_result (s_once (&s_baseline, &sample), AL_RULES_BREACH, "error_rate_increase");
    sample.error_ratio = 0.31;
    al_rules_result_t result = s_once (&s_baseline, &sample);
    s_assert_result (result, AL_RULES_BREACH, "error_rate_increase");
    assert_string_equal (result.detail, "error rate 31.0% > baseline 0.2% + 5 points");
}

//  Without a baseline the error baseline is 0 %: the limit is 5 %, not "anything goes".
static void
test_error_rate_without_baseline (void **state)
{
    (void) state;
    Airlock__SoakSignal sample = s_sample ();
    sample.error_ratio = (5 - S_EPSILON) / 100;
    s_assert_result (s_once (NULL, &sample), AL_RULES_INVESTIGATE, "error_rate_investigate");
    sample.error_ratio = (5 + S_EPSILON) / 100;
    al_rules_result_t result = s_once (NULL, &sample);
    s_assert_result (result, AL_RULES_BREACH, "error_rate_increase");
    assert_non_null (strstr (result.detail, "baseline 0.0%"));
    //  A baseline of 0 samples is no baseline, whatever its ratio says.
    al_baseline_t empty = { 0.5, NAN, 0 };
    s_assert_result (s_once (&empty, &sample), AL_RULES_BREACH, "error_rate_increase");
}

static void
test_latency_p99_factor (void **state)
{
    (void) state;
    Airlock__SoakSignal sample = s_sample ();
    sample.latency_p99_ms = 200 - S_EPSILON;
    s_assert_result (s_once (&s_baseline, &sample), AL_RULES_OK, "");
    sample.latency_p99_ms = 200 + S_EPSILON;
    al_rules_result_t result = s_once (&s_baseline, &sample);
    s_assert_result (result, AL_RULES_BREACH, "latency_p99_factor");
    assert_string_equal (result.detail, "p99 latency 200.0 ms > 2 × baseline 100.0 ms");
}

//  The noise floor: against a 1 ms baseline, 3 ms is "3 ×" but no breach while at or
//  below the floor; above the floor the factor applies again.
static void
test_latency_p99_floor (void **state)
{
    (void) state;
    al_policy_thresholds_t thresholds = rf_thresholds ();
    thresholds.latency_p99_floor_ms = 25;
    al_baseline_t fast = { 0.002, 1.0, 10 };
    Airlock__SoakSignal sample = s_sample ();
    sample.latency_p99_ms = 25;
    al_rules_t *rules = al_rules_new (&thresholds, &fast, 1000);
    s_assert_result (al_rules_feed (rules, &sample, 0, 1000), AL_RULES_OK, "");
    al_rules_destroy (&rules);
    sample.latency_p99_ms = 25 + S_EPSILON;
    rules = al_rules_new (&thresholds, &fast, 1000);
    s_assert_result (al_rules_feed (rules, &sample, 0, 1000), AL_RULES_BREACH, "latency_p99_factor");
    al_rules_destroy (&rules);
}

//  No baseline latency evidence: nothing to compare against, the rule is skipped while
//  the other rules still apply.
static void
test_latency_skipped_without_baseline_evidence (void **state)
{
    (void) state;
    Airlock__SoakSignal sample = s_sample ();
    sample.latency_p99_ms = 100000;
    al_baseline_t no_latency = { 0.002, NAN, 10 };
    s_assert_result (s_once (&no_latency, &sample), AL_RULES_OK, "");
    s_assert_result (s_once (NULL, &sample), AL_RULES_OK, "");
    //  A baseline p99 of 0 is no evidence either (2 × 0 would fail every request).
    al_baseline_t zero_latency = { 0.002, 0, 10 };
    s_assert_result (s_once (&zero_latency, &sample), AL_RULES_OK, "");
    //  The same sample against a baseline with evidence breaches.
    s_assert_result (s_once (&s_baseline, &sample), AL_RULES_BREACH, "latency_p99_factor");
    //  A baseline built only from samples without latency evidence has none.
    Airlock__SoakSignal quiet = s_sample ();
    quiet.no_evidence = AL_SIGNALS_NO_LATENCY;
    quiet.latency_p50_ms = quiet.latency_p99_ms = 0;
    const Airlock__SoakSignal *samples [] = { &quiet, &quiet };
    al_baseline_t built;
    al_baseline_from (samples, 2, &built);
    assert_true (isnan (built.latency_p99_ms));
    s_assert_result (s_once (&built, &sample), AL_RULES_OK, "");
    sample.cpu_percent = 95;
    s_assert_result (s_sustained (&built, &sample), AL_RULES_BREACH, "cpu_percent");
}

static void
test_cpu_and_memory (void **state)
{
    (void) state;
    Airlock__SoakSignal sample = s_sample ();
    sample.cpu_percent = 80;
    sample.memory_percent = 80;
    s_assert_result (s_sustained (&s_baseline, &sample), AL_RULES_OK, "");
    sample.cpu_percent = 80 + S_EPSILON;
    //  One sample over the line is a burst, not saturation.
    s_assert_result (s_once (&s_baseline, &sample), AL_RULES_OK, "");
    al_rules_result_t result = s_sustained (&s_baseline, &sample);
    s_assert_result (result, AL_RULES_BREACH, "cpu_percent");
    assert_string_equal (result.detail, "cpu 80.0% > 80% in 3 samples in a row");
    sample.cpu_percent = 80;
    sample.memory_percent = 80 + S_EPSILON;
    s_assert_result (s_sustained (&s_baseline, &sample), AL_RULES_BREACH, "memory_percent");
}

//  A start-up burst, then calm, then a burst again: the count starts over each time.
static void
test_saturation_must_last (void **state)
{
    (void) state;
    al_rules_t *rules = s_rules (&s_baseline);
    Airlock__SoakSignal hot = s_sample (), calm = s_sample ();
    hot.cpu_percent = 99;
    int64_t now = 1000;
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i + 1 < AL_RULES_SATURATION_SAMPLES; i++, now += 250)
            s_assert_result (al_rules_feed (rules, &hot, 0, now), AL_RULES_OK, "");
        s_assert_result (al_rules_feed (rules, &calm, 0, now), AL_RULES_OK, "");
        now += 250;
    }
    //  A sample without cpu evidence breaks the run too.
    Airlock__SoakSignal blind = s_sample ();
    blind.no_evidence = AL_SIGNALS_NO_CPU;
    blind.cpu_percent = 0;
    for (int i = 0; i + 1 < AL_RULES_SATURATION_SAMPLES; i++, now += 250)
        s_assert_result (al_rules_feed (rules, &hot, 0, now), AL_RULES_OK, "");
    s_assert_result (al_rules_feed (rules, &blind, 0, now), AL_RULES_OK, "");
    now += 250;
    for (int i = 0; i < AL_RULES_SATURATION_SAMPLES; i++, now += 250) {
        al_rules_result_t result = al_rules_feed (rules, &hot, 0, now);
        s_assert_result (result, i + 1 < AL_RULES_SATURATION_SAMPLES? AL_RULES_OK: AL_RULES_BREACH,
                         i + 1 < AL_RULES_SATURATION_SAMPLES? "": "cpu_percent");
    }
    al_rules_destroy (&rules);
}

//  Investigate is a notice, not a rollback: it does not stick. A breach does.
static void
test_investigate_and_sticky_breach (void **state)
{
    (void) state;
    al_rules_t *rules = s_rules (&s_baseline);
    Airlock__SoakSignal sample = s_sample ();
    sample.error_ratio = 0.01;
    s_assert_result (al_rules_feed (rules, &sample, 0, 1000), AL_RULES_OK, "");
    sample.error_ratio = 0.01 + S_EPSILON;
    al_rules_result_t result = al_rules_feed (rules, &sample, 0, 2000);
    s_assert_result (result, AL_RULES_INVESTIGATE, "error_rate_investigate");
    assert_string_equal (result.detail, "error rate 1.0% > 1%");
    Airlock__SoakSignal healthy = s_sample ();
    s_assert_result (al_rules_feed (rules, &healthy, 0, 3000), AL_RULES_OK, "");

    Airlock__SoakSignal hot = s_sample ();
    hot.memory_percent = 99;
    al_rules_result_t breach;
    for (int i = 0; i < AL_RULES_SATURATION_SAMPLES; i++)
        breach = al_rules_feed (rules, &hot, 0, 4000 + i);
    s_assert_result (breach, AL_RULES_BREACH, "memory_percent");
    //  Healthy again, silent or not: the soak has failed and stays failed.
    result = al_rules_feed (rules, &healthy, 0, 5000);
    s_assert_result (result, AL_RULES_BREACH, "memory_percent");
    assert_string_equal (result.detail, breach.detail);
    s_assert_result (al_rules_tick (rules, 5001), AL_RULES_BREACH, "memory_percent");
    s_assert_result (al_rules_tick (rules, 5000 + 10 * S_GRACE_MS), AL_RULES_BREACH, "memory_percent");
    al_rules_destroy (&rules);
}

//  Several rules at once: the first in the documented order is named.
static void
test_rule_order (void **state)
{
    (void) state;
    Airlock__SoakSignal sample = s_sample ();
    sample.consecutive_health_failures = 10;
    sample.error_ratio = 0.5;
    sample.latency_p99_ms = 1000;
    sample.cpu_percent = sample.memory_percent = 99;
    s_assert_result (s_once (&s_baseline, &sample), AL_RULES_BREACH, "health_check_failures");
    sample.consecutive_health_failures = 0;
    s_assert_result (s_once (&s_baseline, &sample), AL_RULES_BREACH, "error_rate_increase");
    sample.error_ratio = 0;
    s_assert_result (s_once (&s_baseline, &sample), AL_RULES_BREACH, "latency_p99_factor");
    sample.latency_p99_ms = 100;
    s_assert_result (s_sustained (&s_baseline, &sample), AL_RULES_BREACH, "cpu_percent");
    sample.cpu_percent = 0;
    s_assert_result (s_sustained (&s_baseline, &sample), AL_RULES_BREACH, "memory_percent");
}

//  --- Baseline ----------------------------------------------------------------------

static void
test_baseline_from_samples (void **state)
{
    (void) state;
    Airlock__SoakSignal samples [5];
    for (int i = 0; i < 5; i++)
        samples [i] = s_sample ();
    samples [0].error_ratio = 0.01;
    samples [0].latency_p99_ms = 100;
    samples [1].error_ratio = 0.03;
    samples [1].latency_p99_ms = 300;
    samples [2].error_ratio = 0.02;
    samples [2].no_evidence = AL_SIGNALS_NO_LATENCY;
    samples [2].latency_p99_ms = 0;
    samples [3].error_ratio = 0.02;
    samples [3].latency_p99_ms = 200;
    //  No traffic: its error ratio of 0 says nothing and is not averaged in.
    samples [4].requests_per_second = 0;
    samples [4].error_ratio = 0;
    samples [4].no_evidence = AL_SIGNALS_NO_LATENCY;
    samples [4].latency_p99_ms = 0;
    const Airlock__SoakSignal *pointers [5];
    for (int i = 0; i < 5; i++)
        pointers [i] = &samples [i];
    al_baseline_t baseline;
    al_baseline_from (pointers, 5, &baseline);
    assert_int_equal (baseline.samples, 4);
    assert_true (fabs (baseline.error_ratio - 0.02) < 1e-12);
    assert_true (fabs (baseline.latency_p99_ms - 200) < 1e-9);

    //  The rules use it: 2 % + 5 points, 2 × 200 ms.
    Airlock__SoakSignal sample = s_sample ();
    sample.error_ratio = (2 + 5 - S_EPSILON) / 100;
    sample.latency_p99_ms = 400;
    s_assert_result (s_once (&baseline, &sample), AL_RULES_INVESTIGATE, "error_rate_investigate");
    sample.error_ratio = (2 + 5 + S_EPSILON) / 100;
    s_assert_result (s_once (&baseline, &sample), AL_RULES_BREACH, "error_rate_increase");
    sample.error_ratio = 0;
    sample.latency_p99_ms = 400 + S_EPSILON;
    s_assert_result (s_once (&baseline, &sample), AL_RULES_BREACH, "latency_p99_factor");

    //  Nothing to build from.
    al_baseline_from (NULL, 0, &baseline);
    assert_int_equal (baseline.samples, 0);
    assert_true (baseline.error_ratio == 0);
    assert_true (isnan (baseline.latency_p99_ms));
}

//  --- Missing evidence --------------------------------------------------------------

typedef void (s_spoil_fn) (Airlock__SoakSignal *sample, uint64_t *missed);

static void
s_no_latency (Airlock__SoakSignal *sample, uint64_t *missed)
{
    (void) missed;
    sample->no_evidence = AL_SIGNALS_NO_LATENCY;
    sample->latency_p99_ms = 0;
}

static void
s_no_cpu (Airlock__SoakSignal *sample, uint64_t *missed)
{
    (void) missed;
    sample->no_evidence = AL_SIGNALS_NO_CPU;
    sample->cpu_percent = 0;
}

static void
s_no_memory (Airlock__SoakSignal *sample, uint64_t *missed)
{
    (void) missed;
    sample->no_evidence = AL_SIGNALS_NO_MEMORY;
    sample->memory_percent = 0;
}

static void
s_none_up (Airlock__SoakSignal *sample, uint64_t *missed)
{
    (void) missed;
    sample->instances_up = 0;
}

static void
s_one_missing (Airlock__SoakSignal *sample, uint64_t *missed)
{
    (void) missed;
    sample->instances_up = 2;
    sample->instances_missing = 1;
}

static void
s_gap (Airlock__SoakSignal *sample, uint64_t *missed)
{
    (void) sample;
    *missed = 2;
}

static void
s_not_a_number (Airlock__SoakSignal *sample, uint64_t *missed)
{
    (void) missed;
    sample->cpu_percent = NAN;
}

//  Every kind of missing evidence: fine up to the end of the grace period, a breach one
//  millisecond later, named by what is missing.
static void
test_missing_evidence_kinds (void **state)
{
    (void) state;
    struct { s_spoil_fn *spoil; const char *reason; } kinds [] = {
        { s_no_latency, "no latency evidence with traffic 20.0 req/s" },
        { s_no_cpu, "no cpu evidence" },
        { s_no_memory, "no memory evidence" },
        { s_none_up, "no instance up (0 of 3)" },
        { s_one_missing, "1 of 3 instances missing" },
        { s_gap, "2 samples lost (sequence gap)" },
        { s_not_a_number, "a value in the sample is not a number" },
    };
    for (size_t i = 0; i < sizeof kinds / sizeof kinds [0]; i++) {
        al_rules_t *rules = s_rules (&s_baseline);
        Airlock__SoakSignal good = s_sample ();
        Airlock__SoakSignal bad = s_sample ();
        uint64_t missed = 0;
        kinds [i].spoil (&bad, &missed);
        s_assert_result (al_rules_feed (rules, &good, 0, 0), AL_RULES_OK, "");
        s_assert_result (al_rules_feed (rules, &bad, missed, 1000), AL_RULES_OK, "");
        s_assert_result (al_rules_feed (rules, &bad, missed, 1000 + S_GRACE_MS / 2), AL_RULES_OK, "");
        s_assert_result (al_rules_feed (rules, &bad, missed, 1000 + S_GRACE_MS), AL_RULES_OK, "");
        al_rules_result_t result = al_rules_feed (rules, &bad, missed, 1000 + S_GRACE_MS + 1);
        s_assert_result (result, AL_RULES_BREACH, "missing_evidence");
        char expected [256];
        snprintf (expected, sizeof expected, "%s, for %d ms > grace %d ms", kinds [i].reason,
                  S_GRACE_MS + 1, S_GRACE_MS);
        assert_string_equal (result.detail, expected);
        al_rules_destroy (&rules);
    }
}

//  No latency without traffic is expected, not missing: no clock starts.
static void
test_no_latency_without_traffic (void **state)
{
    (void) state;
    al_rules_t *rules = s_rules (&s_baseline);
    Airlock__SoakSignal idle = s_sample ();
    idle.requests_per_second = 0;
    idle.error_ratio = 0;
    idle.no_evidence = AL_SIGNALS_NO_LATENCY;
    idle.latency_p50_ms = idle.latency_p99_ms = 0;
    for (int64_t at = 0; at <= 10 * S_GRACE_MS; at += 1000)
        s_assert_result (al_rules_feed (rules, &idle, 0, at), AL_RULES_OK, "");
    al_rules_destroy (&rules);
}

//  A gap, then complete samples within grace: the clock stops, and a later gap has a
//  grace period of its own.
static void
test_gap_then_recovery (void **state)
{
    (void) state;
    al_rules_t *rules = s_rules (&s_baseline);
    Airlock__SoakSignal sample = s_sample ();
    s_assert_result (al_rules_feed (rules, &sample, 0, 0), AL_RULES_OK, "");
    s_assert_result (al_rules_feed (rules, &sample, 3, 1000), AL_RULES_OK, "");
    s_assert_result (al_rules_feed (rules, &sample, 0, 1000 + S_GRACE_MS), AL_RULES_OK, "");
    s_assert_result (al_rules_feed (rules, &sample, 0, 2000 + S_GRACE_MS), AL_RULES_OK, "");
    s_assert_result (al_rules_tick (rules, 2000 + 2 * S_GRACE_MS), AL_RULES_OK, "");
    s_assert_result (al_rules_feed (rules, &sample, 1, 3000 + 2 * S_GRACE_MS), AL_RULES_OK, "");
    s_assert_result (al_rules_feed (rules, &sample, 0, 3000 + 3 * S_GRACE_MS), AL_RULES_OK, "");
    al_rules_destroy (&rules);
}

//  Gaps that keep coming: the clock started by the first is never stopped.
static void
test_gap_persisting (void **state)
{
    (void) state;
    al_rules_t *rules = s_rules (&s_baseline);
    Airlock__SoakSignal sample = s_sample ();
    s_assert_result (al_rules_feed (rules, &sample, 0, 0), AL_RULES_OK, "");
    int64_t at = 1000;
    for (; at <= 1000 + S_GRACE_MS; at += 1000)
        s_assert_result (al_rules_feed (rules, &sample, 1, at), AL_RULES_OK, "");
    al_rules_result_t result = al_rules_feed (rules, &sample, 1, at);
    s_assert_result (result, AL_RULES_BREACH, "missing_evidence");
    assert_non_null (strstr (result.detail, "1 samples lost (sequence gap)"));
    al_rules_destroy (&rules);
}

//  Silence: the timer breaches once no sample has come for longer than grace, counting
//  from the latest sample, or from the first call when none ever came.
static void
test_silence (void **state)
{
    (void) state;
    al_rules_t *rules = s_rules (&s_baseline);
    Airlock__SoakSignal sample = s_sample ();
    s_assert_result (al_rules_feed (rules, &sample, 0, 10000), AL_RULES_OK, "");
    s_assert_result (al_rules_tick (rules, 10000 + S_GRACE_MS), AL_RULES_OK, "");
    al_rules_result_t result = al_rules_tick (rules, 10001 + S_GRACE_MS);
    s_assert_result (result, AL_RULES_BREACH, "missing_evidence");
    assert_string_equal (result.detail, "no sample for 5001 ms > grace 5000 ms");
    al_rules_destroy (&rules);

    rules = s_rules (&s_baseline);
    s_assert_result (al_rules_tick (rules, 70000), AL_RULES_OK, "");
    s_assert_result (al_rules_tick (rules, 70000 + S_GRACE_MS), AL_RULES_OK, "");
    s_assert_result (al_rules_tick (rules, 70001 + S_GRACE_MS), AL_RULES_BREACH, "missing_evidence");
    al_rules_destroy (&rules);
}

//  Incomplete evidence followed by silence breaches on the timer too.
static void
test_incomplete_then_silence (void **state)
{
    (void) state;
    al_rules_t *rules = s_rules (&s_baseline);
    Airlock__SoakSignal sample = s_sample ();
    sample.instances_up = 0;
    s_assert_result (al_rules_feed (rules, &sample, 0, 0), AL_RULES_OK, "");
    s_assert_result (al_rules_tick (rules, S_GRACE_MS), AL_RULES_OK, "");
    al_rules_result_t result = al_rules_tick (rules, S_GRACE_MS + 1);
    s_assert_result (result, AL_RULES_BREACH, "missing_evidence");
    assert_non_null (strstr (result.detail, "no instance up"));
    al_rules_destroy (&rules);
}

//  Evidence that has rules of its own is still judged during the grace period.
static void
test_rules_apply_during_grace (void **state)
{
    (void) state;
    al_rules_t *rules = s_rules (&s_baseline);
    Airlock__SoakSignal sample = s_sample ();
    sample.no_evidence = AL_SIGNALS_NO_CPU;
    sample.cpu_percent = 0;
    s_assert_result (al_rules_feed (rules, &sample, 0, 0), AL_RULES_OK, "");
    sample.error_ratio = 0.4;
    s_assert_result (al_rules_feed (rules, &sample, 0, 1000), AL_RULES_BREACH, "error_rate_increase");
    al_rules_destroy (&rules);
}

//  Grace 0: missing evidence breaches at once.
static void
test_zero_grace (void **state)
{
    (void) state;
    al_policy_thresholds_t thresholds = rf_thresholds ();
    al_rules_t *rules = al_rules_new (&thresholds, &s_baseline, 0);
    assert_non_null (rules);
    Airlock__SoakSignal sample = s_sample ();
    s_assert_result (al_rules_feed (rules, &sample, 0, 0), AL_RULES_OK, "");
    s_assert_result (al_rules_feed (rules, &sample, 1, 0), AL_RULES_BREACH, "missing_evidence");
    al_rules_destroy (&rules);
}

//  --- With the shipped policy and with al_signals -----------------------------------

static const al_policy_t *s_policy;

static int
s_load_policy (void **state)
{
    (void) state;
    const char *source = getenv ("AIRLOCK_SOURCE_DIR");
    assert_non_null (source);
    char dir [1024];
    snprintf (dir, sizeof dir, "%s/policies/default", source);
    al_policy_errors_t *errors = NULL;
    al_policy_t *policy = al_policy_load (dir, &errors);
    if (!policy) {
        fprintf (stderr, "%s\n", errors && al_policy_errors_count (errors)?
                 al_policy_errors_at (errors, 0): "no error reported");
        al_policy_errors_destroy (&errors);
        return -1;
    }
    s_policy = policy;
    return 0;
}

static int
s_free_policy (void **state)
{
    (void) state;
    al_policy_t *policy = (al_policy_t *) s_policy;
    al_policy_destroy (&policy);
    s_policy = NULL;
    return 0;
}

static void
test_shipped_thresholds (void **state)
{
    (void) state;
    al_rules_t *rules = al_rules_new (al_policy_thresholds (s_policy), &s_baseline, S_GRACE_MS);
    assert_non_null (rules);
    Airlock__SoakSignal sample = s_sample ();
    sample.consecutive_health_failures = 3;
    sample.cpu_percent = 80;
    sample.error_ratio = 0.052 - S_EPSILON;
    sample.latency_p99_ms = 200;
    s_assert_result (al_rules_feed (rules, &sample, 0, 0), AL_RULES_INVESTIGATE, "error_rate_investigate");
    sample.consecutive_health_failures = 4;
    s_assert_result (al_rules_feed (rules, &sample, 0, 1000), AL_RULES_BREACH, "health_check_failures");
    al_rules_destroy (&rules);
}

//  Exposition of one instance: request counters, latency buckets, the process collector's
//  CPU seconds (idle: constant) and resident bytes (al_signals' default names).
static al_metrics_t *
s_exposition (double ok, double errors, double fast, double slow)
{
    char text [2048];
    snprintf (text, sizeof text,
              "# TYPE http_requests_total counter\n"
              "http_requests_total{code=\"200\",path=\"/work\"} %.17g\n"
              "http_requests_total{code=\"500\",path=\"/work\"} %.17g\n"
              "# TYPE http_request_duration_seconds histogram\n"
              "http_request_duration_seconds_bucket{path=\"/work\",le=\"0.05\"} %.17g\n"
              "http_request_duration_seconds_bucket{path=\"/work\",le=\"0.5\"} %.17g\n"
              "http_request_duration_seconds_bucket{path=\"/work\",le=\"+Inf\"} %.17g\n"
              "http_request_duration_seconds_count{path=\"/work\"} %.17g\n"
              "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 12\n"
              "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes 20000000\n",
              ok, errors, fast, fast + slow, fast + slow, fast + slow);
    char error [256] = "";
    al_metrics_t *metrics = al_metrics_parse (text, strlen (text), NULL, error, sizeof error);
    if (!metrics)
        fail_msg ("fixture: %s", error);
    return metrics;
}

static al_rules_result_t
s_scrape_and_feed (al_signals_t *signals, al_rules_t *rules, int64_t at, double ok, double errors,
                   double fast, double slow)
{
    al_metrics_t *metrics = s_exposition (ok, errors, fast, slow);
    char error [256] = "";
    if (al_signals_scrape_ok (signals, "a", at, &metrics, error, sizeof error))
        fail_msg ("scrape refused: %s", error);
    al_signals_sample_t signal;
    al_signals_sample (signals, at, false, &signal);
    Airlock__SoakSignal sample;
    airlock__soak_signal__init (&sample);
    al_signals_to_proto (&signal, &sample);
    return al_rules_feed (rules, &sample, 0, at);
}

//  Counters reset when an instance restarts: al_signals turns the drop into a rate, so
//  the rules see ordinary numbers and stay quiet. Rules never see counters.
static void
test_counter_reset_is_upstream (void **state)
{
    (void) state;
    al_signals_t *signals = al_signals_new ("demo", "production", NULL);
    assert_non_null (signals);
    assert_int_equal (al_signals_add_instance (signals, "a"), 0);
    al_baseline_t baseline = { 0.0, 50, 5 };
    al_rules_t *rules = s_rules (&baseline);
    //  10 s windows, 1000 requests each, no errors, all fast.
    al_metrics_t *first = s_exposition (5000, 0, 5000, 0);
    char error [256] = "";
    assert_int_equal (al_signals_scrape_ok (signals, "a", 0, &first, error, sizeof error), 0);
    s_assert_result (s_scrape_and_feed (signals, rules, 10000, 6000, 0, 6000, 0), AL_RULES_OK, "");
    //  Restart: every counter drops to what the new process has served.
    s_assert_result (s_scrape_and_feed (signals, rules, 20000, 990, 0, 990, 0), AL_RULES_OK, "");
    s_assert_result (s_scrape_and_feed (signals, rules, 30000, 1990, 0, 1990, 0), AL_RULES_OK, "");
    //  The same path does catch a bad window: 40 % errors.
    s_assert_result (s_scrape_and_feed (signals, rules, 40000, 2590, 400, 2990, 0),
                     AL_RULES_BREACH, "error_rate_increase");
    al_rules_destroy (&rules);
    al_signals_destroy (&signals);
}

//  --- Each rule's status (al_rules_explain) -----------------------------------------

static const char *const s_row_names [AL_RULES_ROWS] = {
    "health_check_failures", "missing_evidence", "error_rate_increase", "latency_p99_factor",
    "cpu_percent", "memory_percent", "error_rate_investigate"
};

//  The row of rule in rows.
static const al_rules_row_t *
s_row_of (const al_rules_row_t rows [AL_RULES_ROWS], const char *rule)
{
    for (size_t i = 0; i < AL_RULES_ROWS; i++)
        if (strcmp (rows [i].rule, rule) == 0)
            return &rows [i];
    fail_msg ("no row for %s", rule);
    return NULL;
}

static void
s_assert_row (const al_rules_row_t rows [AL_RULES_ROWS], const char *rule, al_rules_row_status_t status)
{
    const al_rules_row_t *row = s_row_of (rows, rule);
    if (row->status != status)
        fail_msg ("%s: expected %s, got %s (%s)", rule, al_rules_row_status_name (status),
                  al_rules_row_status_name (row->status), row->detail);
}

static void
test_explain_healthy (void **state)
{
    (void) state;
    al_rules_t *rules = s_rules (&s_baseline);
    Airlock__SoakSignal sample = s_sample ();
    al_rules_row_t rows [AL_RULES_ROWS + 1];
    assert_int_equal (al_rules_explain (rules, &sample, rows, AL_RULES_ROWS + 1), AL_RULES_ROWS);
    for (size_t i = 0; i < AL_RULES_ROWS; i++) {
        assert_string_equal (rows [i].rule, s_row_names [i]);
        if (rows [i].status != AL_RULES_ROW_OK)
            fail_msg ("%s: %s (%s)", rows [i].rule, al_rules_row_status_name (rows [i].status), rows [i].detail);
        assert_string_equal (rows [i].detail, "");
    }
    //  Values and limits: the numbers the rules compare.
    const al_rules_row_t *error = s_row_of (rows, "error_rate_increase");
    assert_true (fabs (error->value - 0.2) < 1e-9 && fabs (error->limit - 5.2) < 1e-9);
    assert_string_equal (error->unit, "%");
    const al_rules_row_t *latency = s_row_of (rows, "latency_p99_factor");
    assert_true (latency->value == 100 && latency->limit == 200);
    assert_string_equal (latency->unit, "ms");
    assert_true (s_row_of (rows, "cpu_percent")->value == 30 && s_row_of (rows, "cpu_percent")->limit == 80);
    assert_true (s_row_of (rows, "memory_percent")->value == 40);
    assert_true (s_row_of (rows, "health_check_failures")->limit == 3);
    assert_true (isnan (s_row_of (rows, "missing_evidence")->value));
    assert_true (s_row_of (rows, "error_rate_investigate")->limit == 1);
    assert_string_equal (al_rules_row_status_name (AL_RULES_ROW_NOT_REQUIRED), "not required");
    assert_string_equal (al_rules_row_status_name (AL_RULES_ROW_MISSING), "missing");
    //  The noise floor raises the latency limit above 2 × a fast baseline.
    al_policy_thresholds_t thresholds = rf_thresholds ();
    thresholds.latency_p99_floor_ms = 25;
    al_baseline_t fast = { 0.002, 1.0, 10 };
    al_rules_t *floor = al_rules_new (&thresholds, &fast, S_GRACE_MS);
    assert_non_null (floor);
    sample.latency_p99_ms = 20;
    al_rules_explain (floor, &sample, rows, AL_RULES_ROWS);
    assert_true (s_row_of (rows, "latency_p99_factor")->limit == 25);
    s_assert_row (rows, "latency_p99_factor", AL_RULES_ROW_OK);
    al_rules_destroy (&floor);
    //  Without a baseline: error baseline 0 % (said so), latency skipped.
    al_rules_t *bare = s_rules (NULL);
    al_rules_explain (bare, &sample, rows, AL_RULES_ROWS);
    assert_true (fabs (s_row_of (rows, "error_rate_increase")->limit - 5) < 1e-9);
    assert_non_null (strstr (s_row_of (rows, "error_rate_increase")->detail, "no baseline"));
    s_assert_row (rows, "latency_p99_factor", AL_RULES_ROW_SKIPPED);
    assert_true (isnan (s_row_of (rows, "latency_p99_factor")->limit));
    al_rules_destroy (&bare);
    al_rules_destroy (&rules);
}

//  Missing evidence is missing in the rows, never a 0 that passes.
static void
test_explain_missing (void **state)
{
    (void) state;
    al_rules_t *rules = s_rules (&s_baseline);
    al_rules_row_t rows [AL_RULES_ROWS];
    Airlock__SoakSignal sample = s_sample ();
    sample.no_evidence = AL_SIGNALS_NO_CPU;
    sample.cpu_percent = 0;
    al_rules_explain (rules, &sample, rows, AL_RULES_ROWS);
    s_assert_row (rows, "cpu_percent", AL_RULES_ROW_MISSING);
    assert_true (isnan (s_row_of (rows, "cpu_percent")->value));
    assert_string_equal (s_row_of (rows, "cpu_percent")->detail, "no cpu evidence");
    s_assert_row (rows, "missing_evidence", AL_RULES_ROW_MISSING);
    assert_string_equal (s_row_of (rows, "missing_evidence")->detail, "no cpu evidence");
    s_assert_row (rows, "memory_percent", AL_RULES_ROW_OK);
    assert_int_equal (al_rules_missing_signals (&sample), AL_RULES_SIGNAL_CPU);
    assert_string_equal (al_rules_signal_name (AL_RULES_SIGNAL_CPU), "cpu");
    assert_null (al_rules_signal_name (16));

    //  Latency without traffic: absent and skipped, not missing; with traffic, missing.
    sample = s_sample ();
    sample.no_evidence = AL_SIGNALS_NO_LATENCY;
    sample.latency_p50_ms = sample.latency_p99_ms = 0;
    al_rules_explain (rules, &sample, rows, AL_RULES_ROWS);
    s_assert_row (rows, "latency_p99_factor", AL_RULES_ROW_MISSING);
    assert_true (isnan (s_row_of (rows, "latency_p99_factor")->value));
    assert_int_equal (al_rules_missing_signals (&sample), AL_RULES_SIGNAL_LATENCY);
    sample.requests_per_second = 0;
    sample.error_ratio = 0;
    al_rules_explain (rules, &sample, rows, AL_RULES_ROWS);
    s_assert_row (rows, "latency_p99_factor", AL_RULES_ROW_SKIPPED);
    s_assert_row (rows, "missing_evidence", AL_RULES_ROW_OK);
    assert_int_equal (al_rules_missing_signals (&sample), 0);

    //  A baseline sample is not judged against the baseline.
    sample = s_sample ();
    sample.baseline = true;
    sample.latency_p99_ms = 1000;
    al_rules_explain (rules, &sample, rows, AL_RULES_ROWS);
    s_assert_row (rows, "latency_p99_factor", AL_RULES_ROW_SKIPPED);
    s_assert_row (rows, "error_rate_increase", AL_RULES_ROW_SKIPPED);
    al_rules_destroy (&rules);
}

//  One cpu spike is "over", not a breach; the third in a row breaches, and the feed
//  reports exactly what the rows said.
static void
test_explain_saturation (void **state)
{
    (void) state;
    al_rules_t *rules = s_rules (&s_baseline);
    al_rules_row_t rows [AL_RULES_ROWS];
    Airlock__SoakSignal hot = s_sample ();
    hot.cpu_percent = 95;
    for (unsigned i = 1; i <= AL_RULES_SATURATION_SAMPLES; i++) {
        al_rules_explain (rules, &hot, rows, AL_RULES_ROWS);
        const al_rules_row_t *cpu = s_row_of (rows, "cpu_percent");
        assert_int_equal (cpu->in_a_row, i);
        assert_true (cpu->value == 95);
        al_rules_result_t result = al_rules_feed (rules, &hot, 0, 1000 * i);
        if (i < AL_RULES_SATURATION_SAMPLES) {
            assert_int_equal (cpu->status, AL_RULES_ROW_OVER);
            s_assert_result (result, AL_RULES_OK, "");
        }
        else {
            assert_int_equal (cpu->status, AL_RULES_ROW_BREACH);
            s_assert_result (result, AL_RULES_BREACH, "cpu_percent");
            assert_string_equal (result.detail, cpu->detail);
        }
    }
    al_rules_destroy (&rules);
}

//  explain and feed are one code path: on every kind of sample, the verdict of a feed
//  (grace 0) is the first row, in the documented order, that breaches or misses.
static void
test_explain_agrees_with_feed (void **state)
{
    (void) state;
    al_policy_thresholds_t thresholds = rf_thresholds ();
    for (int kind = 0; kind < 12; kind++) {
        Airlock__SoakSignal sample = s_sample ();
        switch (kind) {
            case 1: sample.consecutive_health_failures = 4; break;
            case 2: sample.error_ratio = 0.3; break;
            case 3: sample.latency_p99_ms = 500; break;
            case 4: sample.no_evidence = AL_SIGNALS_NO_MEMORY; sample.memory_percent = 0; break;
            case 5: sample.error_ratio = 0.03; break;
            case 6: sample.instances_up = 0; break;
            case 7: sample.no_evidence = AL_RULES_SIGNAL_TRAFFIC; sample.requests_per_second = 0; break;
            case 8: sample.latency_p99_ms = NAN; break;
            case 9: sample.error_ratio = 0.3; sample.no_evidence = AL_SIGNALS_NO_CPU; break;
            case 10: sample.cpu_percent = 99; break;
            case 11: sample.consecutive_health_failures = 9; sample.latency_p99_ms = 900; break;
            default: break;
        }
        al_rules_t *rules = al_rules_new (&thresholds, &s_baseline, 0);
        assert_non_null (rules);
        al_rules_row_t rows [AL_RULES_ROWS];
        al_rules_explain (rules, &sample, rows, AL_RULES_ROWS);
        al_rules_result_t result = al_rules_feed (rules, &sample, 0, 0);
        const al_rules_row_t *first = NULL;
        for (size_t i = 0; i < AL_RULES_ROWS && !first; i++)
            if (rows [i].status == AL_RULES_ROW_BREACH
            ||  (rows [i].status == AL_RULES_ROW_MISSING && strcmp (rows [i].rule, "missing_evidence") == 0))
                first = &rows [i];
        if (first) {
            s_assert_result (result, AL_RULES_BREACH, first->rule);
            assert_non_null (strstr (result.detail, first->detail));
        }
        else
        if (s_row_of (rows, "error_rate_investigate")->status == AL_RULES_ROW_OVER)
            s_assert_result (result, AL_RULES_INVESTIGATE, "error_rate_investigate");
        else
            s_assert_result (result, AL_RULES_OK, "");
        //  Every kind but the healthy one and the mild cpu spike says something.
        if (kind != 0 && kind != 10)
            assert_int_not_equal (result.verdict, AL_RULES_OK);
        al_rules_destroy (&rules);
    }
}

//  Per signal, only the samples that carry it make the baseline: the 0 of a sample
//  without request metrics is no error ratio (a stale one neither), the 0 of a sample
//  without latency no p99.
static void
test_baseline_only_from_evidence (void **state)
{
    (void) state;
    Airlock__SoakSignal with = s_sample (), no_traffic = s_sample (), no_latency = s_sample ();
    with.error_ratio = 0.01;
    with.latency_p99_ms = 100;
    no_traffic.no_evidence = AL_RULES_SIGNAL_TRAFFIC;
    no_traffic.error_ratio = 0.5;
    no_traffic.latency_p99_ms = 120;
    no_latency.no_evidence = AL_SIGNALS_NO_LATENCY;
    no_latency.error_ratio = 0.03;
    no_latency.latency_p99_ms = 0;
    const Airlock__SoakSignal *samples [] = { &with, &no_traffic, &no_latency };
    al_baseline_t baseline;
    al_baseline_from (samples, 3, &baseline);
    //  Errors: with and no_latency (mean 2 %); p99: with and no_traffic (mean 110 ms).
    assert_int_equal (baseline.samples, 2);
    assert_true (fabs (baseline.error_ratio - 0.02) < 1e-12);
    assert_true (fabs (baseline.latency_p99_ms - 110) < 1e-9);
    //  A latency-less sample with a stale p99 is no p99 either.
    no_latency.latency_p99_ms = 1000;
    al_baseline_from (samples, 3, &baseline);
    assert_true (fabs (baseline.latency_p99_ms - 110) < 1e-9);
}

//  A signal the service does not require is never missing evidence: its rules are not
//  judged, and say "not required".
static void
test_not_required (void **state)
{
    (void) state;
    al_rules_row_t rows [AL_RULES_ROWS];
    struct { uint32_t bit; const char *rule; } cases [] = {
        { AL_RULES_SIGNAL_CPU, "cpu_percent" },
        { AL_RULES_SIGNAL_MEMORY, "memory_percent" },
        { AL_RULES_SIGNAL_LATENCY, "latency_p99_factor" },
        { AL_RULES_SIGNAL_TRAFFIC, "error_rate_increase" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        Airlock__SoakSignal sample = s_sample ();
        sample.no_evidence = cases [i].bit;
        sample.not_required = cases [i].bit;
        if (cases [i].bit == AL_RULES_SIGNAL_TRAFFIC) {
            //  No request metrics: the numbers are not evidence, whatever they say.
            sample.requests_per_second = 0;
            sample.error_ratio = 0.9;
        }
        al_rules_t *rules = s_rules (&s_baseline);
        for (int64_t at = 0; at <= 10 * S_GRACE_MS; at += 1000) {
            al_rules_explain (rules, &sample, rows, AL_RULES_ROWS);
            s_assert_row (rows, cases [i].rule, AL_RULES_ROW_NOT_REQUIRED);
            s_assert_row (rows, "missing_evidence", AL_RULES_ROW_OK);
            s_assert_result (al_rules_feed (rules, &sample, 0, at), AL_RULES_OK, "");
        }
        assert_non_null (strstr (s_row_of (rows, cases [i].rule)->detail, "not required"));
        if (cases [i].bit == AL_RULES_SIGNAL_TRAFFIC)
            s_assert_row (rows, "error_rate_investigate", AL_RULES_ROW_NOT_REQUIRED);
        assert_int_equal (al_rules_missing_signals (&sample), 0);
        al_rules_destroy (&rules);
        //  The same absence while required: missing evidence once the grace is over.
        sample.not_required = 0;
        rules = s_rules (&s_baseline);
        al_rules_explain (rules, &sample, rows, AL_RULES_ROWS);
        if (cases [i].bit != AL_RULES_SIGNAL_TRAFFIC)
            s_assert_row (rows, cases [i].rule, AL_RULES_ROW_MISSING);
        s_assert_row (rows, "missing_evidence", AL_RULES_ROW_MISSING);
        s_assert_result (al_rules_feed (rules, &sample, 0, 0), AL_RULES_OK, "");
        s_assert_result (al_rules_feed (rules, &sample, 0, S_GRACE_MS + 1), AL_RULES_BREACH, "missing_evidence");
        al_rules_destroy (&rules);
    }
    //  Not required but present: judged as ever (3 cpu samples over 80 % breach).
    Airlock__SoakSignal hot = s_sample ();
    hot.not_required = AL_RULES_SIGNAL_CPU;
    hot.cpu_percent = 95;
    s_assert_result (s_sustained (&s_baseline, &hot), AL_RULES_BREACH, "cpu_percent");
    //  No request metrics while traffic is required: missing, named.
    Airlock__SoakSignal blind = s_sample ();
    blind.no_evidence = AL_RULES_SIGNAL_TRAFFIC;
    blind.requests_per_second = 0;
    al_rules_t *rules = s_rules (&s_baseline);
    al_rules_explain (rules, &blind, rows, AL_RULES_ROWS);
    s_assert_row (rows, "error_rate_increase", AL_RULES_ROW_MISSING);
    assert_string_equal (s_row_of (rows, "missing_evidence")->detail, "no traffic evidence (no request metrics)");
    al_rules_destroy (&rules);
}

//  The published stream: baseline samples make the baseline and are not judged; the
//  soak after them is; a new run of baseline samples starts a new soak.
static void
test_stream (void **state)
{
    (void) state;
    al_policy_thresholds_t thresholds = rf_thresholds ();
    al_rules_stream_t *stream = al_rules_stream_new (&thresholds, 0);
    assert_non_null (stream);
    al_rules_row_t rows [AL_RULES_ROWS];
    bool judged = true;
    Airlock__SoakSignal base = s_sample (), quiet = s_sample ();
    base.baseline = quiet.baseline = true;
    base.latency_p99_ms = 90;
    quiet.no_evidence = AL_SIGNALS_NO_LATENCY;
    quiet.latency_p99_ms = 0;
    s_assert_result (al_rules_stream_feed (stream, &base, 0, rows, AL_RULES_ROWS, &judged), AL_RULES_OK, "");
    assert_false (judged);
    s_assert_row (rows, "latency_p99_factor", AL_RULES_ROW_SKIPPED);
    s_assert_result (al_rules_stream_feed (stream, &quiet, 1, rows, AL_RULES_ROWS, &judged), AL_RULES_OK, "");
    base.latency_p99_ms = 110;
    s_assert_result (al_rules_stream_feed (stream, &base, 2, rows, AL_RULES_ROWS, &judged), AL_RULES_OK, "");
    al_baseline_t baseline;
    al_rules_stream_baseline (stream, &baseline);
    assert_true (fabs (baseline.latency_p99_ms - 100) < 1e-9);
    //  The soak: 2 × 100 ms is the limit, not 2 × (90 + 0 + 110) / 3.
    Airlock__SoakSignal sample = s_sample ();
    sample.latency_p99_ms = 150;
    s_assert_result (al_rules_stream_feed (stream, &sample, 3, rows, AL_RULES_ROWS, &judged), AL_RULES_OK, "");
    assert_true (judged);
    assert_true (s_row_of (rows, "latency_p99_factor")->limit == 200);
    sample.cpu_percent = 95;
    for (int i = 1; i < AL_RULES_SATURATION_SAMPLES; i++) {
        s_assert_result (al_rules_stream_feed (stream, &sample, 3 + i, rows, AL_RULES_ROWS, &judged), AL_RULES_OK, "");
        s_assert_row (rows, "cpu_percent", AL_RULES_ROW_OVER);
    }
    assert_false (al_rules_stream_breached (stream));
    s_assert_result (al_rules_stream_feed (stream, &sample, 10, rows, AL_RULES_ROWS, &judged), AL_RULES_BREACH,
                     "cpu_percent");
    assert_true (al_rules_stream_breached (stream));
    //  A new baseline run, a new soak: healthy again, yet the stream did breach once.
    base.latency_p99_ms = 300;
    al_rules_stream_feed (stream, &base, 11, rows, AL_RULES_ROWS, &judged);
    al_rules_stream_baseline (stream, &baseline);
    assert_true (fabs (baseline.latency_p99_ms - 300) < 1e-9);
    sample = s_sample ();
    s_assert_result (al_rules_stream_feed (stream, &sample, 12, rows, AL_RULES_ROWS, &judged), AL_RULES_OK, "");
    assert_true (al_rules_stream_breached (stream));
    //  Missing evidence breaches at once with grace 0.
    sample.no_evidence = AL_SIGNALS_NO_CPU;
    sample.cpu_percent = 0;
    s_assert_result (al_rules_stream_feed (stream, &sample, 13, rows, AL_RULES_ROWS, &judged), AL_RULES_BREACH,
                     "missing_evidence");
    al_rules_stream_destroy (&stream);
    assert_null (stream);
    al_rules_stream_destroy (&stream);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_healthy_sample),
        cmocka_unit_test (test_health_check_failures),
        cmocka_unit_test (test_error_rate_increase),
        cmocka_unit_test (test_error_rate_without_baseline),
        cmocka_unit_test (test_latency_p99_factor),
        cmocka_unit_test (test_latency_p99_floor),
        cmocka_unit_test (test_latency_skipped_without_baseline_evidence),
        cmocka_unit_test (test_cpu_and_memory),
        cmocka_unit_test (test_saturation_must_last),
        cmocka_unit_test (test_investigate_and_sticky_breach),
        cmocka_unit_test (test_rule_order),
        cmocka_unit_test (test_baseline_from_samples),
        cmocka_unit_test (test_missing_evidence_kinds),
        cmocka_unit_test (test_no_latency_without_traffic),
        cmocka_unit_test (test_gap_then_recovery),
        cmocka_unit_test (test_gap_persisting),
        cmocka_unit_test (test_silence),
        cmocka_unit_test (test_incomplete_then_silence),
        cmocka_unit_test (test_rules_apply_during_grace),
        cmocka_unit_test (test_zero_grace),
        cmocka_unit_test_setup_teardown (test_shipped_thresholds, s_load_policy, s_free_policy),
        cmocka_unit_test (test_counter_reset_is_upstream),
        cmocka_unit_test (test_explain_healthy),
        cmocka_unit_test (test_explain_missing),
        cmocka_unit_test (test_explain_saturation),
        cmocka_unit_test (test_explain_agrees_with_feed),
        cmocka_unit_test (test_baseline_only_from_evidence),
        cmocka_unit_test (test_not_required),
        cmocka_unit_test (test_stream),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
