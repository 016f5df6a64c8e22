/*  al_rules.c: quality_rules.yaml's rollback triggers on soak samples (see al_rules.h).

    The state of one soak is small: the thresholds and baseline (copies), when the
    latest sample came, whether evidence is incomplete and since when, and the sticky
    breach. Every rule is a pure comparison of one sample against thresholds and
    baseline (s_explain, one row per rule), plus the saturation runs so far; only
    missing evidence depends on time. al_rules_feed decides from s_explain's rows and
    al_rules_explain returns the same rows: what a client shows is what is judged.
    al_rules_stream_t wraps one al_rules_t per soak for clients of the published stream.

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

//  The bits are set by al_signals; a renumbering there must not go unnoticed here.
_Static_assert (AL_RULES_SIGNAL_LATENCY == AL_SIGNALS_NO_LATENCY, "no_evidence bits differ from al_signals.h");
_Static_assert (AL_RULES_SIGNAL_CPU == AL_SIGNALS_NO_CPU, "no_evidence bits differ from al_signals.h");
_Static_assert (AL_RULES_SIGNAL_MEMORY == AL_SIGNALS_NO_MEMORY, "no_evidence bits differ from al_signals.h");
#ifdef AL_SIGNALS_NO_TRAFFIC
_Static_assert (AL_RULES_SIGNAL_TRAFFIC == AL_SIGNALS_NO_TRAFFIC, "no_evidence bits differ from al_signals.h");
#endif

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
        //  Per signal, only the samples that carry it: a 0 that stands for "no
        //  evidence" must not pull the mean down (a p99 limit of 0 ms fails everything).
        if (!(sample->no_evidence & AL_RULES_SIGNAL_TRAFFIC)
        &&  isfinite (sample->requests_per_second) && sample->requests_per_second > 0
        &&  isfinite (sample->error_ratio)) {
            error_sum += sample->error_ratio;
            error_count++;
        }
        if (!(sample->no_evidence & AL_RULES_SIGNAL_LATENCY)
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

static bool
s_required (const Airlock__SoakSignal *sample, uint32_t bit)
{
    return !(sample->not_required & bit);
}

static bool
s_absent (const Airlock__SoakSignal *sample, uint32_t bit)
{
    return (sample->no_evidence & bit) != 0;
}

uint32_t
al_rules_missing_signals (const Airlock__SoakSignal *sample)
{
    assert (sample);
    uint32_t missing = sample->no_evidence & ~sample->not_required & AL_RULES_SIGNAL_ALL;
    //  No traffic means no latency to observe (requests_per_second is not traffic
    //  evidence when the no-traffic bit says so, and is then 0).
    if (!(isfinite (sample->requests_per_second) && sample->requests_per_second > 0))
        missing &= ~AL_RULES_SIGNAL_LATENCY;
    return missing;
}

const char *
al_rules_signal_name (uint32_t bit)
{
    switch (bit) {
        case AL_RULES_SIGNAL_LATENCY: return "latency";
        case AL_RULES_SIGNAL_CPU:     return "cpu";
        case AL_RULES_SIGNAL_MEMORY:  return "memory";
        case AL_RULES_SIGNAL_TRAFFIC: return "traffic";
    }
    return NULL;
}

const char *
al_rules_row_status_name (al_rules_row_status_t status)
{
    switch (status) {
        case AL_RULES_ROW_OK:           return "ok";
        case AL_RULES_ROW_OVER:         return "over";
        case AL_RULES_ROW_BREACH:       return "breach";
        case AL_RULES_ROW_MISSING:      return "missing";
        case AL_RULES_ROW_SKIPPED:      return "skipped";
        case AL_RULES_ROW_NOT_REQUIRED: return "not required";
    }
    return "unknown";
}

//  Why the evidence of sample is incomplete, in reason; false if it is complete.
static bool
s_incomplete (const Airlock__SoakSignal *sample, uint64_t missed, char *reason, size_t reason_size)
{
    bool traffic = !s_absent (sample, AL_RULES_SIGNAL_TRAFFIC);
    bool latency = !s_absent (sample, AL_RULES_SIGNAL_LATENCY);
    bool cpu = !s_absent (sample, AL_RULES_SIGNAL_CPU);
    bool memory = !s_absent (sample, AL_RULES_SIGNAL_MEMORY);
    uint32_t missing = al_rules_missing_signals (sample);
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
    if ((traffic && (!isfinite (sample->requests_per_second) || !isfinite (sample->error_ratio)))
    ||  (latency && (!isfinite (sample->latency_p50_ms) || !isfinite (sample->latency_p99_ms)))
    ||  (cpu && !isfinite (sample->cpu_percent))
    ||  (memory && !isfinite (sample->memory_percent)))
        snprintf (reason, reason_size, "a value in the sample is not a number");
    else
    if (missing & AL_RULES_SIGNAL_LATENCY)
        snprintf (reason, reason_size, "no latency evidence with traffic %.1f req/s",
                  sample->requests_per_second);
    else
    if (missing & AL_RULES_SIGNAL_CPU)
        snprintf (reason, reason_size, "no cpu evidence");
    else
    if (missing & AL_RULES_SIGNAL_MEMORY)
        snprintf (reason, reason_size, "no memory evidence");
    else
    if (missing & AL_RULES_SIGNAL_TRAFFIC)
        snprintf (reason, reason_size, "no traffic evidence (no request metrics)");
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

//  ---- Rows: each rule on one sample ----------------------------------------------

enum { S_HEALTH, S_MISSING, S_ERROR, S_LATENCY, S_CPU, S_MEMORY, S_INVESTIGATE };

static void
s_row (al_rules_row_t *row, const char *rule, const char *unit, al_rules_row_status_t status,
       double value, double limit, const char *format, ...)
{
    memset (row, 0, sizeof *row);
    row->rule = rule;
    row->unit = unit;
    row->status = status;
    row->value = value;
    row->limit = limit;
    va_list args;
    va_start (args, format);
    vsnprintf (row->detail, sizeof row->detail, format, args);
    va_end (args);
}

//  A signal without evidence: missing when required, not required otherwise. True if
//  absent (row filled).
static bool
s_row_absent (al_rules_row_t *row, const Airlock__SoakSignal *sample, uint32_t bit, const char *rule,
              const char *unit, double limit)
{
    const char *name = al_rules_signal_name (bit);
    if (!s_absent (sample, bit))
        return false;
    if (s_required (sample, bit))
        s_row (row, rule, unit, AL_RULES_ROW_MISSING, NAN, limit, "no %s evidence%s", name,
               bit == AL_RULES_SIGNAL_TRAFFIC? " (no request metrics)": "");
    else
        s_row (row, rule, unit, AL_RULES_ROW_NOT_REQUIRED, NAN, limit, "no %s evidence; %s is not required",
               name, name);
    return true;
}

//  cpu or memory: over the threshold in how many samples in a row (over_before before
//  this one).
static void
s_row_saturation (al_rules_row_t *row, const Airlock__SoakSignal *sample, uint32_t bit, const char *rule,
                  const char *name, double value, double limit, unsigned over_before)
{
    if (s_row_absent (row, sample, bit, rule, "%", limit))
        return;
    if (!isfinite (value)) {
        s_row (row, rule, "%", AL_RULES_ROW_MISSING, NAN, limit, "%s is not a number", name);
        return;
    }
    if (!(value > limit)) {
        s_row (row, rule, "%", AL_RULES_ROW_OK, value, limit, "%s", "");
        return;
    }
    unsigned in_a_row = over_before + 1;
    if (in_a_row >= AL_RULES_SATURATION_SAMPLES)
        s_row (row, rule, "%", AL_RULES_ROW_BREACH, value, limit, "%s %.1f%% > %g%% in %u samples in a row",
               name, value, limit, in_a_row);
    else
        s_row (row, rule, "%", AL_RULES_ROW_OVER, value, limit, "%s %.1f%% > %g%% in %u of %d samples in a row",
               name, value, limit, in_a_row, AL_RULES_SATURATION_SAMPLES);
    row->in_a_row = in_a_row;
}

static void
s_explain (const al_rules_t *self, const Airlock__SoakSignal *sample, uint64_t missed,
           al_rules_row_t rows [AL_RULES_ROWS])
{
    const al_policy_thresholds_t *limits = &self->thresholds;

    double failures = (double) sample->consecutive_health_failures;
    double failures_limit = (double) limits->health_check_failures_more_than;
    if (sample->consecutive_health_failures > limits->health_check_failures_more_than)
        s_row (&rows [S_HEALTH], "health_check_failures", "count", AL_RULES_ROW_BREACH, failures, failures_limit,
               "%u consecutive health-check failures > %u", sample->consecutive_health_failures,
               limits->health_check_failures_more_than);
    else
        s_row (&rows [S_HEALTH], "health_check_failures", "count", AL_RULES_ROW_OK, failures, failures_limit,
               "%s", "");

    char reason [sizeof rows [S_MISSING].detail];
    if (s_incomplete (sample, missed, reason, sizeof reason))
        s_row (&rows [S_MISSING], "missing_evidence", "", AL_RULES_ROW_MISSING, NAN, NAN, "%s", reason);
    else
        s_row (&rows [S_MISSING], "missing_evidence", "", AL_RULES_ROW_OK, NAN, NAN, "%s", "");

    //  The error rules: only with request metrics.
    double error_percent = sample->error_ratio * 100;
    double baseline_percent = self->baseline.error_ratio * 100;
    double error_limit = baseline_percent + limits->error_rate_increase_more_than_points;
    double investigate_limit = limits->investigate_error_rate_percent_more_than;
    al_rules_row_t *error = &rows [S_ERROR], *investigate = &rows [S_INVESTIGATE];
    if (sample->baseline)
        s_row (error, "error_rate_increase", "%", AL_RULES_ROW_SKIPPED, NAN, NAN,
               "a baseline sample: it makes the baseline");
    else
    if (s_row_absent (error, sample, AL_RULES_SIGNAL_TRAFFIC, "error_rate_increase", "%", error_limit))
        ;
    else
    if (!isfinite (sample->error_ratio))
        s_row (error, "error_rate_increase", "%", AL_RULES_ROW_MISSING, NAN, error_limit,
               "error ratio is not a number");
    else
    if (error_percent > error_limit)
        s_row (error, "error_rate_increase", "%", AL_RULES_ROW_BREACH, error_percent, error_limit,
               "error rate %.1f%% > baseline %.1f%% + %g points", error_percent, baseline_percent,
               limits->error_rate_increase_more_than_points);
    else
        s_row (error, "error_rate_increase", "%", AL_RULES_ROW_OK, error_percent, error_limit, "%s",
               self->baseline.samples? "": "no baseline samples: the baseline counts as 0%");

    if (s_row_absent (investigate, sample, AL_RULES_SIGNAL_TRAFFIC, "error_rate_investigate", "%",
                      investigate_limit))
        ;
    else
    if (!isfinite (sample->error_ratio))
        s_row (investigate, "error_rate_investigate", "%", AL_RULES_ROW_MISSING, NAN, investigate_limit,
               "error ratio is not a number");
    else
    if (error_percent > investigate_limit)
        s_row (investigate, "error_rate_investigate", "%", AL_RULES_ROW_OVER, error_percent, investigate_limit,
               "error rate %.1f%% > %g%%", error_percent, investigate_limit);
    else
        s_row (investigate, "error_rate_investigate", "%", AL_RULES_ROW_OK, error_percent, investigate_limit,
               "%s", "");

    //  p99 against the baseline's, above the noise floor: the limit is the larger.
    al_rules_row_t *latency = &rows [S_LATENCY];
    double baseline_p99 = self->baseline.latency_p99_ms;
    bool has_baseline_p99 = isfinite (baseline_p99) && baseline_p99 > 0;
    double factor_limit = limits->latency_p99_more_than_baseline_factor * baseline_p99;
    double latency_limit = !has_baseline_p99? NAN
                         : factor_limit > limits->latency_p99_floor_ms? factor_limit: limits->latency_p99_floor_ms;
    if (sample->baseline)
        s_row (latency, "latency_p99_factor", "ms", AL_RULES_ROW_SKIPPED, NAN, NAN,
               "a baseline sample: it makes the baseline");
    else
    if (s_absent (sample, AL_RULES_SIGNAL_LATENCY)
    &&  s_required (sample, AL_RULES_SIGNAL_LATENCY)
    &&  !(al_rules_missing_signals (sample) & AL_RULES_SIGNAL_LATENCY))
        s_row (latency, "latency_p99_factor", "ms", AL_RULES_ROW_SKIPPED, NAN, latency_limit,
               "no traffic: no latency to observe");
    else
    if (s_row_absent (latency, sample, AL_RULES_SIGNAL_LATENCY, "latency_p99_factor", "ms", latency_limit))
        ;
    else
    if (!isfinite (sample->latency_p99_ms))
        s_row (latency, "latency_p99_factor", "ms", AL_RULES_ROW_MISSING, NAN, latency_limit,
               "p99 latency is not a number");
    else
    if (!has_baseline_p99)
        s_row (latency, "latency_p99_factor", "ms", AL_RULES_ROW_SKIPPED, sample->latency_p99_ms, NAN,
               "no baseline latency to compare against");
    else
    if (sample->latency_p99_ms > latency_limit)
        s_row (latency, "latency_p99_factor", "ms", AL_RULES_ROW_BREACH, sample->latency_p99_ms, latency_limit,
               "p99 latency %.1f ms > %g × baseline %.1f ms", sample->latency_p99_ms,
               limits->latency_p99_more_than_baseline_factor, baseline_p99);
    else
        s_row (latency, "latency_p99_factor", "ms", AL_RULES_ROW_OK, sample->latency_p99_ms, latency_limit,
               "%s", "");

    s_row_saturation (&rows [S_CPU], sample, AL_RULES_SIGNAL_CPU, "cpu_percent", "cpu", sample->cpu_percent,
                      limits->cpu_percent_more_than, self->cpu_over);
    s_row_saturation (&rows [S_MEMORY], sample, AL_RULES_SIGNAL_MEMORY, "memory_percent", "memory",
                      sample->memory_percent, limits->memory_percent_more_than, self->memory_over);
}

size_t
al_rules_explain (const al_rules_t *self, const Airlock__SoakSignal *sample, al_rules_row_t rows [],
                  size_t size)
{
    assert (self);
    assert (sample);
    assert (rows && size >= AL_RULES_ROWS);
    s_explain (self, sample, 0, rows);
    return AL_RULES_ROWS;
}

static al_rules_result_t
s_row_result (const al_rules_row_t *row, al_rules_verdict_t verdict)
{
    return s_result (verdict, row->rule, "%s", row->detail);
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
    al_rules_row_t rows [AL_RULES_ROWS];
    s_explain (self, sample, missed, rows);
    if (rows [S_MISSING].status == AL_RULES_ROW_MISSING) {
        if (!self->incomplete) {
            self->incomplete = true;
            self->incomplete_since_ms = now_ms;
        }
        snprintf (self->incomplete_reason, sizeof self->incomplete_reason, "%s", rows [S_MISSING].detail);
    }
    else
        self->incomplete = false;
    //  Saturation counts only when it lasts: a start-up burst (a process warming up, a
    //  gauge measured over its first fraction of a second) is not a saturated service.
    //  A sample without the gauge, or under the threshold, starts the count over.
    self->cpu_over = rows [S_CPU].in_a_row;
    self->memory_over = rows [S_MEMORY].in_a_row;

    if (rows [S_HEALTH].status == AL_RULES_ROW_BREACH)
        return s_latch (self, s_row_result (&rows [S_HEALTH], AL_RULES_BREACH));
    if (s_incomplete_too_long (self, now_ms))
        return s_latch (self, s_missing_evidence (self, now_ms));
    //  The rules that do have evidence still hold during the grace period.
    const int order [] = { S_ERROR, S_LATENCY, S_CPU, S_MEMORY };
    for (size_t i = 0; i < sizeof order / sizeof order [0]; i++)
        if (rows [order [i]].status == AL_RULES_ROW_BREACH)
            return s_latch (self, s_row_result (&rows [order [i]], AL_RULES_BREACH));
    if (rows [S_INVESTIGATE].status == AL_RULES_ROW_OVER)
        return s_row_result (&rows [S_INVESTIGATE], AL_RULES_INVESTIGATE);
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

//  ---- The published stream --------------------------------------------------------

struct _al_rules_stream_t {
    al_policy_thresholds_t thresholds;
    int64_t grace_ms;
    //  The latest run of baseline samples, oldest first (a ring), numbers only: their
    //  strings belong to messages the caller frees.
    Airlock__SoakSignal baseline_samples [AL_RULES_STREAM_BASELINE];
    size_t baseline_count;
    size_t baseline_next;
    al_baseline_t baseline;         // from them
    al_rules_t *rules;              // the soak's, or the next soak's before its first sample
    bool soaking;                   // a sample of the soak was judged
    bool breached;                  // any soak breached
};

al_rules_stream_t *
al_rules_stream_new (const al_policy_thresholds_t *thresholds, int64_t evidence_grace_ms)
{
    assert (thresholds);
    assert (evidence_grace_ms >= 0);
    al_rules_stream_t *self = calloc (1, sizeof (al_rules_stream_t));
    if (!self)
        return NULL;
    self->thresholds = *thresholds;
    self->thresholds.liveness_path = NULL;
    self->thresholds.readiness_path = NULL;
    self->grace_ms = evidence_grace_ms;
    al_baseline_from (NULL, 0, &self->baseline);
    self->rules = al_rules_new (&self->thresholds, &self->baseline, self->grace_ms);
    if (!self->rules)
        al_rules_stream_destroy (&self);
    return self;
}

void
al_rules_stream_destroy (al_rules_stream_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        al_rules_destroy (&(*self_p)->rules);
        free (*self_p);
        *self_p = NULL;
    }
}

//  A baseline sample: into the ring, and a fresh evaluator for the soak to come (out of
//  memory: the previous one stays, with the baseline it has).
static void
s_stream_baseline (al_rules_stream_t *self, const Airlock__SoakSignal *sample)
{
    if (self->soaking) {
        //  A new run of baseline samples: the previous soak is over.
        self->baseline_count = 0;
        self->baseline_next = 0;
        self->soaking = false;
    }
    Airlock__SoakSignal *copy = &self->baseline_samples [self->baseline_next];
    *copy = *sample;
    copy->service = NULL;
    copy->source = NULL;
    copy->memory_basis = NULL;
    copy->version = NULL;
    self->baseline_next = (self->baseline_next + 1) % AL_RULES_STREAM_BASELINE;
    if (self->baseline_count < AL_RULES_STREAM_BASELINE)
        self->baseline_count++;
    const Airlock__SoakSignal *samples [AL_RULES_STREAM_BASELINE];
    for (size_t i = 0; i < self->baseline_count; i++)
        samples [i] = &self->baseline_samples [i];
    al_baseline_t baseline;
    al_baseline_from (samples, self->baseline_count, &baseline);
    al_rules_t *rules = al_rules_new (&self->thresholds, &baseline, self->grace_ms);
    if (rules) {
        al_rules_destroy (&self->rules);
        self->rules = rules;
        self->baseline = baseline;
    }
}

al_rules_result_t
al_rules_stream_feed (al_rules_stream_t *self, const Airlock__SoakSignal *sample, int64_t now_ms,
                      al_rules_row_t rows [], size_t size, bool *judged)
{
    assert (self);
    assert (sample);
    assert (judged);
    if (sample->baseline)
        s_stream_baseline (self, sample);
    al_rules_explain (self->rules, sample, rows, size);
    *judged = !sample->baseline;
    if (!*judged)
        return s_ok ();
    al_rules_result_t result = al_rules_feed (self->rules, sample, 0, now_ms);
    self->soaking = true;
    if (result.verdict == AL_RULES_BREACH)
        self->breached = true;
    return result;
}

bool
al_rules_stream_breached (const al_rules_stream_t *self)
{
    assert (self);
    return self->breached;
}

void
al_rules_stream_baseline (const al_rules_stream_t *self, al_baseline_t *baseline)
{
    assert (self);
    assert (baseline);
    *baseline = self->baseline;
}
