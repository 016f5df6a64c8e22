/*  al_canary.h: a canary judged against the stable version serving at the same time.

    During a canary rollout the new version's instances (canary) and the old version's
    (stable) take traffic side by side. A before-rollout baseline cannot tell a
    regression from a change in the traffic itself (a busier hour, a slow dependency):
    both sides see those. Comparing the two sides over the same window can (Kayenta's
    idea). Per monitor tick the caller feeds one observation per side; the judge keeps
    the last `window` values of each signal per side and decides, per signal, whether
    the canary is worse than stable:

    - canary_latency_vs_stable: the per-scrape latency p99 values;
    - canary_errors_vs_stable:  the per-scrape error ratios.

    The test is the one-sided Mann-Whitney U test (H1: canary values tend to be larger),
    U = the canary's rank sum minus n1(n1+1)/2, mid-ranks for ties. p-value:
    - exact (the null distribution of U, counted) when both sides have at most
      AL_CANARY_EXACT_MAX values and there are no ties;
    - otherwise the normal approximation with the tie correction of the variance and a
      continuity correction of 0.5, as scipy.stats.mannwhitneyu(canary, stable,
      alternative="greater", method="asymptotic") computes it.
    When every value of both sides is equal the variance is 0 and p is 1: no evidence.

    A signal FAILS only when p < alpha AND the effect is above its floor:
    - latency: median canary p99 > median stable p99 × (1 + min_latency_increase_percent/100);
    - errors:  mean canary error% − mean stable error% > min_error_increase_points.
    A significant but tiny difference (a 2 ms p99 shift seen in 120 scrapes) is no
    reason to roll back; a large one seen twice is no evidence. Both are needed.

    Verdict of a feed:
    - FAIL (with the rule name above and a one-line detail) if a signal fails; the
      latency signal is reported when both do. FAIL is sticky: once reported every later
      feed returns it unchanged (a failed canary is rolled back; values that recover
      afterwards do not cancel that), as al_rules does for a breach.
    - NOT_ENOUGH_DATA while a signal has fewer than min_samples values on a side.
    - PASS otherwise (both signals judged, neither failed).
    - DISABLED when config.enabled is false (every feed; nothing is kept).

    What a value is: an observation's latency_p99_ms (and p50) that is NaN or negative is
    "none this tick" and skipped; its error_ratio counts only when requests_per_second is
    finite and > 0 (al_signals reports error ratio 0 without traffic, which is no
    evidence) and the ratio is within 0..1. +Inf latency is kept (it ranks above all).

    Pure computation: no I/O, no clock (times are the caller's monotonic ms, asserted
    never to go backwards), memory allocated once in al_canary_new. Not thread-safe:
    one owner (the monitor's actor).

    How the monitor calls it (agents/al_monitor.c, one al_canary_t per deployment):
    1. When a rollout of a service with signals.compare_to_stable.enabled starts
       (s_watch_start), copy its al_service_canary_judge_t into an al_canary_config_t
       field for field and call al_canary_new (&config, 0, error, sizeof error); NULL:
       log the error and fail closed (roll back with rule "canary_config").
    2. Every tick, after the scrapes, split the service's instances by the registry's
       version: the ids of group->version (canary) and the ids of every other version
       (stable). al_signals_sample_of over each list gives canary_sample and
       stable_sample; copy four fields of each and feed both:
           al_canary_observation_t canary = {
               .requests_per_second = canary_sample.requests_per_second,
               .error_ratio = canary_sample.error_ratio,
               .latency_p50_ms = canary_sample.latency_p50_ms,
               .latency_p99_ms = canary_sample.latency_p99_ms };
           (stable likewise)
           al_canary_result_t r = al_canary_feed (judge, now_ms, &canary, &stable);
       A side with no instance at all this tick is passed as NULL. (A side whose
       instances are all down gives rps 0 and NaN latency: nothing is kept either.)
    3. r.verdict == AL_CANARY_FAIL: send RollbackTrigger{service, rule = r.rule,
       detail = r.detail} once, exactly as for an al_rules breach. PASS and
       NOT_ENOUGH_DATA change nothing (al_rules still guards the soak on its own);
       r.detail may be logged or shown.
    4. al_canary_destroy at the end of the soak or when a rollback starts.
    When the last step reaches 100% no stable instance is left: the stable window keeps
    what was seen while both sides served, and the canary's later values are still
    compared with it (no longer the same window; the monitor may stop feeding instead).
*/
#ifndef AL_CANARY_H_INCLUDED
#define AL_CANARY_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

//  services.yaml signals.compare_to_stable defaults.
#define AL_CANARY_DEFAULT_ALPHA                         0.01
#define AL_CANARY_DEFAULT_MIN_SAMPLES                   8
#define AL_CANARY_DEFAULT_MIN_LATENCY_INCREASE_PERCENT  20.0
#define AL_CANARY_DEFAULT_MIN_ERROR_INCREASE_POINTS     1.0
//  Values kept per signal and side when al_canary_new gets 0 (30 s at 250 ms ticks,
//  2 min at 1 s), and the most it accepts.
#define AL_CANARY_DEFAULT_WINDOW                        120
#define AL_CANARY_MAX_WINDOW                            10000
//  Largest side for which the p-value is exact (no ties).
#define AL_CANARY_EXACT_MAX                             20

//  The same fields as services.yaml's al_service_canary_judge_t (deploy/al_services.h).
typedef struct {
    bool enabled;                           // false: every verdict is DISABLED
    double alpha;                           // one-sided significance, 0 < alpha < 0.5
    unsigned min_samples;                   // values per side before judging, >= 3
    double min_latency_increase_percent;    // floor, >= 0: median canary p99 over stable's
    double min_error_increase_points;       // floor, >= 0: canary error% - stable error%
} al_canary_config_t;

//  One tick of one side: what al_signals_sample_of reports for its instances.
typedef struct {
    double requests_per_second;             // error_ratio counts only when > 0
    double error_ratio;                     // 0..1
    double latency_p50_ms;                  // NaN: none this tick
    double latency_p99_ms;                  // NaN: none this tick
} al_canary_observation_t;

typedef enum {
    AL_CANARY_NOT_ENOUGH_DATA = 0,
    AL_CANARY_PASS,
    AL_CANARY_FAIL,
    AL_CANARY_DISABLED
} al_canary_verdict_t;

//  One-sided Mann-Whitney U test of x greater than y.
typedef struct {
    double u;                               // U of x: rank sum of x - nx(nx+1)/2
    double z;                               // standardised U (continuity-corrected); NaN when exact
    double p;                               // P(U >= u) under H0; 1 when no evidence
    bool exact;                             // p from the exact distribution
    size_t nx, ny;
} al_mann_whitney_t;

typedef struct {
    al_canary_verdict_t verdict;
    char rule [64];                         // FAIL: canary_latency_vs_stable or canary_errors_vs_stable
    char detail [320];                      // one line: medians/means, n per side, U, p
    int64_t failed_at_ms;                   // FAIL: now_ms of the feed that failed; else -1
    //  The evidence of this verdict (NaN or 0 when a side has no values).
    al_mann_whitney_t latency_test;         // canary p99 greater than stable p99
    al_mann_whitney_t errors_test;          // canary error ratio greater than stable's
    double canary_p99_median_ms, stable_p99_median_ms;
    double canary_p50_median_ms, stable_p50_median_ms;
    double canary_error_mean_percent, stable_error_mean_percent;
} al_canary_result_t;

typedef struct _al_canary_t al_canary_t;

//  Fill config with enabled = true and the defaults above.
void al_canary_config_default (al_canary_config_t *config);

//  New judge for one canary. config is copied. window: values kept per signal and side
//  (0: AL_CANARY_DEFAULT_WINDOW). NULL with "field: what is wrong" in error if config or
//  window is out of range (alpha not in (0, 0.5), min_samples < 3 or > window, a floor
//  negative or not finite, window > AL_CANARY_MAX_WINDOW), or "out of memory".
al_canary_t *al_canary_new (const al_canary_config_t *config, size_t window,
                            char *error, size_t error_size);
//  NULL-safe; sets *self_p to NULL.
void al_canary_destroy (al_canary_t **self_p);

//  One tick at now_ms: the canary side's observation and the stable side's (either may
//  be NULL: nothing from that side this tick). Returns the verdict on the window as it
//  is after this feed (or the sticky FAIL).
al_canary_result_t al_canary_feed (al_canary_t *self, int64_t now_ms,
                                   const al_canary_observation_t *canary,
                                   const al_canary_observation_t *stable);

//  Values currently kept: of the latency p99 (latency true) or error-ratio signal, per side.
size_t al_canary_count (const al_canary_t *self, bool latency, bool canary);

//  The one-sided Mann-Whitney U test of x (nx values) greater than y (ny values), as
//  described above. No value may be NaN (asserted). nx or ny 0: u 0, p 1. It allocates
//  nx + ny entries and returns -1 when out of memory, 0 otherwise.
int al_mann_whitney_greater (const double *x, size_t nx, const double *y, size_t ny,
                             al_mann_whitney_t *result);

//  "not_enough_data", "pass", "fail", "disabled".
const char *al_canary_verdict_name (al_canary_verdict_t verdict);

#ifdef __cplusplus
}
#endif

#endif
