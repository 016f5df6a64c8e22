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
      means no latency to observe), the no-cpu, no-memory or no-traffic bit (no request
      metrics), for a signal that is required (its bit is not in not_required: a
      service that declares a signal `required: false` never misses it; the rules that
      need it are then not judged), instances_up == 0,
      instances_missing > 0, a non-finite number, or missed > 0 (samples lost in a
      sequence gap, as counted by the caller). Incomplete evidence starts a grace clock
      at that sample's time; a complete sample stops it. It breaches once it has lasted
      longer than evidence_grace_ms, as does a stretch longer than evidence_grace_ms
      without any sample (measured from the latest sample, or from the first call when
      none arrived yet). With evidence_grace_ms == 0 incomplete evidence breaches at
      once. The rules that do have evidence are still checked during the grace period.
    - error_rate_investigate: error_ratio × 100 > t.investigate_error_rate_percent_more_than
      and no breach: INVESTIGATE, which is not sticky and does not roll back.
    The error rules need request metrics: with the no-traffic bit they are not judged
    (missing evidence when traffic is required, "not required" otherwise).
    Comparisons are strict ("more than"): a value exactly at a threshold passes.
    When several rules breach in one sample, the first in the order above is reported
    (health, then missing evidence, then error rate, latency, cpu, memory).

    A breach is sticky: once reported, every later al_rules_feed or al_rules_tick
    returns the same result. A soak that breached has failed; evidence that recovers
    afterwards must not un-trigger a rollback already under way. A new soak takes a new
    al_rules_t.

    al_rules_explain shows each rule's status for one sample (value, limit, ok, over,
    breach, missing, skipped, not required): it is what al_rules_feed decides from, so
    a client that shows the rules (airlock watch --signals, the MCP recent_signals tool)
    shows what the monitor judges. al_rules_stream_t judges the samples as the monitor
    publishes them (baseline samples, then the soak's) for such clients.

    Not here: counter resets (al_signals turns scrapes into rates and handles them),
    sequence bookkeeping (the caller counts gaps), what to do on a breach.

    Not thread-safe: one owner (the monitor's actor). Times are the caller's monotonic
    milliseconds and never go backwards (asserted).
*/
#ifndef AL_RULES_H_INCLUDED
#define AL_RULES_H_INCLUDED

//  Samples in a row above a saturation threshold (cpu, memory) that make a breach.
#define AL_RULES_SATURATION_SAMPLES 3

//  The signals of SoakSignal.no_evidence and SoakSignal.not_required, one bit each.
//  They mirror deploy/al_signals.h (AL_SIGNALS_NO_LATENCY, _NO_CPU, _NO_MEMORY and
//  _NO_TRAFFIC), which sets them; al_rules.c checks at compile time that they agree.
#define AL_RULES_SIGNAL_LATENCY 1u      // p50 and p99: no request observed
#define AL_RULES_SIGNAL_CPU     2u
#define AL_RULES_SIGNAL_MEMORY  4u
#define AL_RULES_SIGNAL_TRAFFIC 8u      // request metrics: traffic and error ratio
#define AL_RULES_SIGNAL_ALL     15u

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
//  N before a rollout: the caller chooses). Per signal, only the samples that carry it
//  count: a sample with the no-latency bit carries no p99 (its 0 is no evidence), one
//  with the no-traffic bit or without traffic no error ratio, and a number that is not
//  finite nothing.
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

//  ---- Each rule's status for one sample ----------------------------------------

typedef enum {
    AL_RULES_ROW_OK = 0,            // judged, within the limit
    AL_RULES_ROW_OVER,              // above the limit, no breach: saturation not yet
                                    // AL_RULES_SATURATION_SAMPLES in a row, or
                                    // error_rate_investigate (a notice)
    AL_RULES_ROW_BREACH,            // the rule is breached
    AL_RULES_ROW_MISSING,           // the evidence the rule needs is missing (fail closed)
    AL_RULES_ROW_SKIPPED,           // nothing to judge against; detail says why (no
                                    // baseline latency, no traffic, a baseline sample)
    AL_RULES_ROW_NOT_REQUIRED       // the signal is absent and the service does not require it
} al_rules_row_status_t;

//  The rules, in the order al_rules_feed reports them.
#define AL_RULES_ROWS 7

typedef struct {
    const char *rule;               // quality_rules.yaml's name; static
    const char *unit;               // "count", "%" or "ms"; "" for missing_evidence
    al_rules_row_status_t status;
    double value;                   // NaN: absent (no evidence, not required)
    double limit;                   // value > limit breaches; NaN: none
    unsigned in_a_row;              // cpu, memory: samples in a row above the limit, this one included
    char detail [160];              // "" for a plain ok; otherwise what and why
} al_rules_row_t;

//  Each rule's status for sample, as the next al_rules_feed (sample, missed 0) judges
//  it: al_rules_feed decides from these rows. One row per rule, in the order
//  health_check_failures, missing_evidence, error_rate_increase, latency_p99_factor,
//  cpu_percent, memory_percent, error_rate_investigate. A missing_evidence row says
//  MISSING for incomplete evidence; whether that breaches yet depends on the grace
//  period, which al_rules_feed applies. Sample with baseline = true: the rules against
//  the baseline are skipped (it makes the baseline). After a breach the rows still
//  describe sample itself. size >= AL_RULES_ROWS; returns AL_RULES_ROWS.
size_t al_rules_explain (const al_rules_t *self, const Airlock__SoakSignal *sample,
                         al_rules_row_t rows [], size_t size);

//  "ok", "over", "breach", "missing", "skipped", "not required".
const char *al_rules_row_status_name (al_rules_row_status_t status);

//  The AL_RULES_SIGNAL_* bits of the signals that sample lacks while they are required:
//  no_evidence minus not_required, minus latency when there is no traffic to observe.
uint32_t al_rules_missing_signals (const Airlock__SoakSignal *sample);

//  "latency", "cpu", "memory", "traffic" for one AL_RULES_SIGNAL_* bit; NULL otherwise.
const char *al_rules_signal_name (uint32_t bit);

//  ---- The published stream of samples --------------------------------------------

//  Judges samples as the monitor publishes them, for clients that see the stream
//  (airlock watch --signals, the MCP recent_signals tool): samples with baseline = true
//  are the baseline, as the monitor takes the samples before a rollout (the latest run
//  of them, at most AL_RULES_STREAM_BASELINE) and are not judged; the samples after them
//  are one soak, judged by one al_rules_t built from that baseline. A baseline sample
//  after soak samples starts a new baseline run (the next soak). Missing evidence
//  breaches after evidence_grace_ms, as for al_rules_new.
#define AL_RULES_STREAM_BASELINE 32

typedef struct _al_rules_stream_t al_rules_stream_t;

//  thresholds is copied as by al_rules_new. NULL if out of memory.
al_rules_stream_t *al_rules_stream_new (const al_policy_thresholds_t *thresholds, int64_t evidence_grace_ms);
void al_rules_stream_destroy (al_rules_stream_t **self_p);

//  The next sample, received at now_ms (monotonic). Fills rows (al_rules_explain);
//  *judged says whether the sample was judged (false for a baseline sample). Returns
//  the soak's verdict (al_rules_feed; sticky within a soak); OK when not judged.
al_rules_result_t al_rules_stream_feed (al_rules_stream_t *self, const Airlock__SoakSignal *sample,
                                        int64_t now_ms, al_rules_row_t rows [], size_t size,
                                        bool *judged);
//  Did any soak of the stream breach?
bool al_rules_stream_breached (const al_rules_stream_t *self);
//  The baseline the current soak is judged against (samples 0: none yet).
void al_rules_stream_baseline (const al_rules_stream_t *self, al_baseline_t *baseline);

#ifdef __cplusplus
}
#endif

#endif
