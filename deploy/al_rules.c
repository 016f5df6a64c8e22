/*  al_rules.c: quality_rules.yaml's rollback triggers on soak samples (see al_rules.h).

    The state of one soak is small: the thresholds and baseline (copies), when the
    latest sample came, whether evidence is incomplete and since when, and the sticky
    breach. Every rule is a pure comparison of one sample against thresholds and
    baseline; only missing evidence depends on time.

    Invariants: times passed in never decrease; once breached is set, breach never
    changes.

    Not thread-safe: one owner.
*/
#include "deploy/al_rules.h"
#include "deploy/al_signals.h"
#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct _al_rules_t {
    al_policy_thresholds_t thresholds;
    al_baseline_t baseline;
    int64_t grace_ms;
    bool started;                   // a feed or tick was seen
    int64_t latest_call_ms;         // of the latest feed or tick
    int64_t last_sample_ms;         // of the latest sample, or of the first call
    bool incomplete;                // evidence is missing since incomplete_since_ms
    int64_t incomplete_since_ms;
    char incomplete_reason [160];   // of the latest incomplete sample
    bool breached;
    al_rules_result_t breach;
    unsigned cpu_over;              // consecutive samples above the cpu threshold
    unsigned memory_over;           // consecutive samples above the memory threshold
};

const char *
al_rules_verdict_name (al_rules_verdict_t verdict)
{
    switch (verdict) {
        case AL_RULES_OK:          return "ok";
        case AL_RULES_INVESTIGATE: return "investigate";
        case AL_RULES_BREACH:      return "breach";
    }
    return "unknown";
}

void
al_baseline_from (const Airlock__SoakSignal *const *samples, size_t count, al_baseline_t *baseline)
{
    assert (baseline);
    assert (count == 0 || samples);
    double error_sum = 0;
    size_t error_count = 0;
    double latency_sum = 0;
    size_t latency_count = 0;
    for (size_t i = 0; i < count; i++) {
        const Airlock__SoakSignal *sample = samples [i];
        assert (sample);
        if (isfinite (sample->requests_per_second) && sample->requests_per_second > 0
        &&  isfinite (sample->error_ratio)) {
            error_sum += sample->error_ratio;
            error_count++;
        }
        if (!(sample->no_evidence & AL_SIGNALS_NO_LATENCY)
        &&  isfinite (sample->latency_p99_ms) && sample->latency_p99_ms > 0) {
            latency_sum += sample->latency_p99_ms;
            latency_count++;
        }
    }
    baseline->error_ratio = error_count? error_sum / (double) error_count: 0;
    baseline->latency_p99_ms = latency_count? latency_sum / (double) latency_count: NAN;
    baseline->samples = error_count;
}

al_rules_t *
al_rules_new (const al_policy_thresholds_t *thresholds, const al_baseline_t *baseline,
              int64_t evidence_grace_ms)
{
    assert (thresholds);
    assert (evidence_grace_ms >= 0);
    al_rules_t *self = calloc (1, sizeof (al_rules_t));
    if (!self)
        return NULL;
    self->thresholds = *thresholds;
    //  The strings belong to the policy, which may go before this object does.
    self->thresholds.liveness_path = NULL;
    self->thresholds.readiness_path = NULL;
    if (baseline)
        self->baseline = *baseline;
    else
        self->baseline = (al_baseline_t) { 0, NAN, 0 };
    //  A baseline error ratio that is no number, or from no samples, counts as 0.
    if (self->baseline.samples == 0 || !isfinite (self->baseline.error_ratio))
        self->baseline.error_ratio = 0;
    self->grace_ms = evidence_grace_ms;
    return self;
}

void
al_rules_destroy (al_rules_t **self_p)
{
    assert (self_p);
    free (*self_p);
    *self_p = NULL;
}

static al_rules_result_t
s_result (al_rules_verdict_t verdict, const char *rule, const char *format, ...)
{
    al_rules_result_t result;
    memset (&result, 0, sizeof result);
    result.verdict = verdict;
    snprintf (result.rule, sizeof result.rule, "%s", rule);
    va_list args;
    va_start (args, format);
    vsnprintf (result.detail, sizeof result.detail, format, args);
    va_end (args);
    return result;
}

static al_rules_result_t
s_ok (void)
{
    al_rules_result_t result;
    memset (&result, 0, sizeof result);
    result.verdict = AL_RULES_OK;
    return result;
}

static al_rules_result_t
s_latch (al_rules_t *self, al_rules_result_t result)
{
    assert (!self->breached);
    assert (result.verdict == AL_RULES_BREACH);
    self->breached = true;
    self->breach = result;
    return result;
}

//  Every call starts here: time never goes back, the silence clock starts at the first.
static void
s_clock (al_rules_t *self, int64_t now_ms)
{
    if (self->started)
        assert (now_ms >= self->latest_call_ms);
    else {
        self->started = true;
        self->last_sample_ms = now_ms;
    }
    self->latest_call_ms = now_ms;
}

//  Why the evidence of sample is incomplete, in reason; false if it is complete.
static bool
s_incomplete (const Airlock__SoakSignal *sample, uint64_t missed, char *reason, size_t reason_size)
{
    bool latency = !(sample->no_evidence & AL_SIGNALS_NO_LATENCY);
    bool cpu = !(sample->no_evidence & AL_SIGNALS_NO_CPU);
    bool memory = !(sample->no_evidence & AL_SIGNALS_NO_MEMORY);
    if (sample->instances_up == 0)
        snprintf (reason, reason_size, "no instance up (0 of %u)", sample->instances_total);
    else
    if (sample->instances_missing > 0)
        snprintf (reason, reason_size, "%u of %u instances missing", sample->instances_missing,
                  sample->instances_total);
    else
    if (missed > 0)
        snprintf (reason, reason_size, "%llu samples lost (sequence gap)", (unsigned long long) missed);
    else
    if (!isfinite (sample->requests_per_second) || !isfinite (sample->error_ratio)
    ||  (latency && (!isfinite (sample->latency_p50_ms) || !isfinite (sample->latency_p99_ms)))
    ||  (cpu && !isfinite (sample->cpu_percent))
    ||  (memory && !isfinite (sample->memory_percent)))
        snprintf (reason, reason_size, "a value in the sample is not a number");
    else
    if (!latency && sample->requests_per_second > 0)
        snprintf (reason, reason_size, "no latency evidence with traffic %.1f req/s",
                  sample->requests_per_second);
    else
    if (!cpu)
        snprintf (reason, reason_size, "no cpu evidence");
    else
    if (!memory)
        snprintf (reason, reason_size, "no memory evidence");
    else
        return false;
    return true;
}

//  Has incomplete evidence lasted too long at now_ms?
static bool
s_incomplete_too_long (const al_rules_t *self, int64_t now_ms)
{
    if (!self->incomplete)
        return false;
    int64_t lasted = now_ms - self->incomplete_since_ms;
    return self->grace_ms == 0 || lasted > self->grace_ms;
}

static al_rules_result_t
s_missing_evidence (const al_rules_t *self, int64_t now_ms)
{
    return s_result (AL_RULES_BREACH, "missing_evidence", "%s, for %lld ms > grace %lld ms",
                     self->incomplete_reason, (long long) (now_ms - self->incomplete_since_ms),
                     (long long) self->grace_ms);
}

al_rules_result_t
al_rules_feed (al_rules_t *self, const Airlock__SoakSignal *sample, uint64_t missed, int64_t now_ms)
{
    assert (self);
    assert (sample);
    s_clock (self, now_ms);
    if (self->breached)
        return self->breach;
    self->last_sample_ms = now_ms;
    char reason [sizeof self->incomplete_reason];
    if (s_incomplete (sample, missed, reason, sizeof reason)) {
        if (!self->incomplete) {
            self->incomplete = true;
            self->incomplete_since_ms = now_ms;
        }
        memcpy (self->incomplete_reason, reason, sizeof reason);
    }
    else
        self->incomplete = false;

    const al_policy_thresholds_t *limits = &self->thresholds;
    //  Saturation counts only when it lasts: a start-up burst (a process warming up, a
    //  gauge measured over its first fraction of a second) is not a saturated service.
    bool cpu_over = !(sample->no_evidence & AL_SIGNALS_NO_CPU) && isfinite (sample->cpu_percent)
                 && sample->cpu_percent > limits->cpu_percent_more_than;
    bool memory_over = !(sample->no_evidence & AL_SIGNALS_NO_MEMORY) && isfinite (sample->memory_percent)
                    && sample->memory_percent > limits->memory_percent_more_than;
    self->cpu_over = cpu_over? self->cpu_over + 1: 0;
    self->memory_over = memory_over? self->memory_over + 1: 0;
    if (sample->consecutive_health_failures > limits->health_check_failures_more_than)
        return s_latch (self, s_result (AL_RULES_BREACH, "health_check_failures",
                        "%u consecutive health-check failures > %u",
                        sample->consecutive_health_failures, limits->health_check_failures_more_than));
    if (s_incomplete_too_long (self, now_ms))
        return s_latch (self, s_missing_evidence (self, now_ms));

    bool error_known = isfinite (sample->error_ratio);
    double error_percent = sample->error_ratio * 100;
    double baseline_percent = self->baseline.error_ratio * 100;
    if (error_known
    &&  error_percent > baseline_percent + limits->error_rate_increase_more_than_points)
        return s_latch (self, s_result (AL_RULES_BREACH, "error_rate_increase",
                        "error rate %.1f%% > baseline %.1f%% + %g points",
                        error_percent, baseline_percent, limits->error_rate_increase_more_than_points));

    double baseline_p99 = self->baseline.latency_p99_ms;
    if (!(sample->no_evidence & AL_SIGNALS_NO_LATENCY) && isfinite (sample->latency_p99_ms)
    &&  isfinite (baseline_p99) && baseline_p99 > 0
    &&  sample->latency_p99_ms > limits->latency_p99_floor_ms
    &&  sample->latency_p99_ms > limits->latency_p99_more_than_baseline_factor * baseline_p99)
        return s_latch (self, s_result (AL_RULES_BREACH, "latency_p99_factor",
                        "p99 latency %.1f ms > %g × baseline %.1f ms", sample->latency_p99_ms,
                        limits->latency_p99_more_than_baseline_factor, baseline_p99));

    if (self->cpu_over >= AL_RULES_SATURATION_SAMPLES)
        return s_latch (self, s_result (AL_RULES_BREACH, "cpu_percent", "cpu %.1f%% > %g%% in %u samples in a row",
                        sample->cpu_percent, limits->cpu_percent_more_than, self->cpu_over));
    if (self->memory_over >= AL_RULES_SATURATION_SAMPLES)
        return s_latch (self, s_result (AL_RULES_BREACH, "memory_percent", "memory %.1f%% > %g%% in %u samples in a row",
                        sample->memory_percent, limits->memory_percent_more_than, self->memory_over));

    if (error_known && error_percent > limits->investigate_error_rate_percent_more_than)
        return s_result (AL_RULES_INVESTIGATE, "error_rate_investigate", "error rate %.1f%% > %g%%",
                         error_percent, limits->investigate_error_rate_percent_more_than);
    return s_ok ();
}

al_rules_result_t
al_rules_tick (al_rules_t *self, int64_t now_ms)
{
    assert (self);
    s_clock (self, now_ms);
    if (self->breached)
        return self->breach;
    if (s_incomplete_too_long (self, now_ms))
        return s_latch (self, s_missing_evidence (self, now_ms));
    int64_t silent_ms = now_ms - self->last_sample_ms;
    if (silent_ms > self->grace_ms)
        return s_latch (self, s_result (AL_RULES_BREACH, "missing_evidence",
                        "no sample for %lld ms > grace %lld ms",
                        (long long) silent_ms, (long long) self->grace_ms));
    return s_ok ();
}
