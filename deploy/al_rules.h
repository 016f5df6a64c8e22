/*  al_rules.h: quality_rules.yaml's rollback triggers evaluated on soak samples.

    The monitor feeds every SoakSignal of one (service, environment) soak to one
    al_rules_t, and calls al_rules_tick on a timer when none arrives. Each call returns
    a verdict: OK, INVESTIGATE (notify a human, keep going) or BREACH (roll back), with
    the rule's name as quality_rules.yaml spells it and a one-line detail.

    Rules, with t = al_policy_thresholds_t (from quality_rules.yaml) and b = the baseline:
    - health_check_failures: consecutive_health_failures > t.health_check_failures_more_than.
    - error_rate_increase:   error_ratio × 100 > b.error_ratio × 100
                             + t.error_rate_increase_more_than_points (percentage points).
                             Without a baseline (b.samples == 0) b.error_ratio counts as 0:
                             the strictest reading, never a pass by default.
    - latency_p99_factor:    latency_p99_ms > t.latency_p99_more_than_baseline_factor ×
                             b.latency_p99_ms, only when the sample has latency evidence and
                             the baseline does too (finite and > 0). Without baseline
                             evidence there is nothing to compare against and the rule is
                             skipped; the other rules still hold.
    - cpu_percent, memory_percent: the gauge > t.cpu/memory_percent_more_than in
      AL_RULES_SATURATION_SAMPLES samples in a row (a start-up burst is not saturation;
      at the demo's 250 ms interval that is 750 ms of it).
    - missing_evidence (fail closed): the evidence is incomplete when the sample has
      the no-latency bit while there is traffic (requests_per_second > 0; no traffic
      means no latency to observe), the no-cpu or no-memory bit, instances_up == 0,
      instances_missing > 0, a non-finite number, or missed > 0 (samples lost in a
      sequence gap, as counted by the caller). Incomplete evidence starts a grace clock
      at that sample's time; a complete sample stops it. It breaches once it has lasted
      longer than evidence_grace_ms, as does a stretch longer than evidence_grace_ms
      without any sample (measured from the latest sample, or from the first call when
      none arrived yet). With evidence_grace_ms == 0 incomplete evidence breaches at
      once. The rules that do have evidence are still checked during the grace period.
    - error_rate_investigate: error_ratio × 100 > t.investigate_error_rate_percent_more_than
      and no breach: INVESTIGATE, which is not sticky and does not roll back.
    Comparisons are strict ("more than"): a value exactly at a threshold passes.
    When several rules breach in one sample, the first in the order above is reported
    (health, then missing evidence, then error rate, latency, cpu, memory).

    A breach is sticky: once reported, every later al_rules_feed or al_rules_tick
    returns the same result. A soak that breached has failed; evidence that recovers
    afterwards must not un-trigger a rollback already under way. A new soak takes a new
    al_rules_t.

    Not here: counter resets (al_signals turns scrapes into rates and handles them),
    sequence bookkeeping (the caller counts gaps), what to do on a breach.

    Not thread-safe: one owner (the monitor's actor). Times are the caller's monotonic
    milliseconds and never go backwards (asserted).
*/
#ifndef AL_RULES_H_INCLUDED
#define AL_RULES_H_INCLUDED

//  Samples in a row above a saturation threshold (cpu, memory) that make a breach.
#define AL_RULES_SATURATION_SAMPLES 3

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "policies/al_policy.h"
#include "proto/airlock.pb-c.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    double error_ratio;             // mean over the samples with traffic (0..1)
    double latency_p99_ms;          // mean over the samples with latency evidence; NaN: none
    size_t samples;                 // samples that had traffic; 0: no baseline
} al_baseline_t;

//  Build a baseline from samples (SoakSignal messages with baseline = true, or the last
//  N before a rollout: the caller chooses). Samples without traffic carry no error
//  ratio and samples whose numbers are not finite carry nothing; both are skipped.
//  The baseline p99 is the mean of the samples' p99s, not the p99 of all their
//  requests together, which samples (without their histograms) cannot give back.
void al_baseline_from (const Airlock__SoakSignal *const *samples, size_t count,
                       al_baseline_t *baseline);

typedef enum {
    AL_RULES_OK = 0,
    AL_RULES_INVESTIGATE,
    AL_RULES_BREACH
} al_rules_verdict_t;

typedef struct {
    al_rules_verdict_t verdict;
    char rule [64];                 // "" when OK; otherwise a name listed above
    char detail [256];              // "error rate 31.0% > baseline 0.2% + 5 points"
} al_rules_result_t;

typedef struct _al_rules_t al_rules_t;

//  New evaluator for one soak. thresholds is copied (its strings are not used);
//  baseline may be NULL (no baseline) and is copied; evidence_grace_ms >= 0.
//  NULL if out of memory.
al_rules_t *al_rules_new (const al_policy_thresholds_t *thresholds, const al_baseline_t *baseline,
                          int64_t evidence_grace_ms);
//  NULL-safe; sets *self_p to NULL.
void al_rules_destroy (al_rules_t **self_p);

//  Evaluate the next sample, received at now_ms; missed is how many samples the
//  caller knows were lost just before it (sequence gap).
al_rules_result_t al_rules_feed (al_rules_t *self, const Airlock__SoakSignal *sample,
                                 uint64_t missed, int64_t now_ms);
//  No sample arrived: breach "missing_evidence" when the silence, or incomplete
//  evidence already seen, has lasted longer than the grace period. Otherwise OK (or
//  the sticky breach).
al_rules_result_t al_rules_tick (al_rules_t *self, int64_t now_ms);

//  "ok", "investigate", "breach".
const char *al_rules_verdict_name (al_rules_verdict_t verdict);

#ifdef __cplusplus
}
#endif

#endif
