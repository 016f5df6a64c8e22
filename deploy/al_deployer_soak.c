/*  al_deployer_soak.c: watching the new release: probe rounds, the monitor's evidence,
    the policy's soak checkpoints, the canary's soaks and the soak step.

    See al_deployer.c for the map of the deployer's files.
*/
#include "deploy/al_deployer_int.h"
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

//  Probe every running instance of the new release once, liveness and readiness. Returns
//  the number of instances that failed; failures per instance in counts (by index).
static unsigned
s_probe_round (al_deployer_run_t *run, unsigned *consecutive, size_t slots, json_t *round)
{
    al_driver_instance_t *instances = (al_driver_instance_t *) calloc (AL_DEPLOYER_MAX_INSTANCES, sizeof *instances);
    assert (instances);
    size_t count = 0;
    char error [256];
    unsigned failed = 0;
    if (al_driver_list_instances (run->driver, instances, AL_DEPLOYER_MAX_INSTANCES, &count, error, sizeof error) != AL_DRIVER_OK) {
        failed = 1;
        count = 0;
        if (round)
            json_array_append_new (round, json_pack ("{s:s, s:b, s:s}", "instance", "*", "ok", 0, "detail", error));
        for (size_t i = 0; i < slots; i++)
            consecutive [i]++;
    }
    size_t seen = 0;
    for (size_t i = 0; i < count && i < AL_DEPLOYER_MAX_INSTANCES; i++) {
        al_driver_instance_t *instance = &instances [i];
        if (!instance->running || strcmp (instance->version, run->to.version) != 0)
            continue;
        al_probe_result_t live, ready;
        memset (&live, 0, sizeof live);
        memset (&ready, 0, sizeof ready);
        bool ok = al_driver_probe (run->driver, instance->id, AL_DRIVER_LIVENESS, &live, error, sizeof error) == AL_DRIVER_OK
               && live.ok
               && al_driver_probe (run->driver, instance->id, AL_DRIVER_READINESS, &ready, error, sizeof error) == AL_DRIVER_OK
               && ready.ok;
        run->probes_run++;
        if (live.latency_ms > run->probe_latency_max_ms)
            run->probe_latency_max_ms = live.latency_ms;
        if (!ok) {
            run->probes_failed++;
            failed++;
        }
        if (seen < slots)
            consecutive [seen] = ok? 0: consecutive [seen] + 1;
        if (round)
            json_array_append_new (round, json_pack ("{s:s, s:s, s:b, s:s, s:s, s:f}", "instance", instance->id,
                                                     "endpoint", instance->endpoint, "ok", ok,
                                                     "liveness", live.detail, "readiness", ready.detail,
                                                     "latency_ms", live.latency_ms));
        seen++;
    }
    if (seen == 0 && count > 0 && slots > 0) {
        //  No instance of the new release runs at all: every slot fails.
        for (size_t i = 0; i < slots; i++)
            consecutive [i]++;
        failed++;
    }
    run->round_seen = (unsigned) seen;
    run->round_failed = failed;
    free (instances);
    return failed;
}

//  The monitor's evidence for a soak that started at start: stale when the latest
//  SoakSignal is older than max_age, or (required) when none arrived since start.
//  Sets the rule and the failure. Fail closed.
static bool
s_stale (al_deployer_run_t *run, uint64_t start, uint64_t max_age, bool required)
{
    uint64_t last = run->hooks->last_signal_ms? run->hooks->last_signal_ms (run->hooks->arg): 0;
    uint64_t now = (uint64_t) al_clock_mono_ms ();
    bool stale = false;
    if (last >= start)
        stale = now - last > max_age;
    else
        stale = required || now - start > max_age;
    if (!stale)
        return false;
    al_error_set (run->rule, sizeof run->rule, "missing_evidence");
    if (last == 0)
        al_deployer_fail (run, "no SoakSignal from the monitor for %s during the soak", run->svc->name);
    else
        al_deployer_fail (run, "the monitor's latest SoakSignal for %s is %.1f s old (limit %.1f s)%s",
                          run->svc->name, (double) (now - last) / 1000.0, (double) max_age / 1000.0,
                          last < start? ", none since the soak started": "");
    return true;
}

//  ---- soak checkpoints (seed 004: 5 min initial health, 15 min error rate, 30 min
//  performance, 60 min all normal) -------------------------------------------------

typedef enum { S_CHECK_HEALTH, S_CHECK_ERROR_RATE, S_CHECK_PERFORMANCE, S_CHECK_ALL } s_check_kind_t;

static s_check_kind_t
s_check_kind (size_t index, size_t count)
{
    if (index + 1 >= count || index > 2)
        return S_CHECK_ALL;
    return index == 0? S_CHECK_HEALTH: index == 1? S_CHECK_ERROR_RATE: S_CHECK_PERFORMANCE;
}

const char *
al_deployer_checkpoint_check (size_t index, size_t count)
{
    static const char *const names [] = { "initial health", "error rate", "performance", "all normal" };
    return names [s_check_kind (index, count)];
}

//  The rule rows a check judges: health the health rule, error rate and performance
//  their rule, all normal every rule but the investigate notice.
static bool
s_row_judged (s_check_kind_t kind, const char *rule)
{
    switch (kind) {
        case S_CHECK_HEALTH: return strcmp (rule, "health_check_failures") == 0;
        case S_CHECK_ERROR_RATE: return strcmp (rule, "error_rate_increase") == 0;
        case S_CHECK_PERFORMANCE: return strcmp (rule, "latency_p99_factor") == 0;
        case S_CHECK_ALL: return strcmp (rule, "error_rate_investigate") != 0;
    }
    return false;
}

typedef enum { S_CHECKPOINT_PENDING, S_CHECKPOINT_PASSED, S_CHECKPOINT_FAILED } s_checkpoint_t;

//  Judge one checkpoint on the evidence gathered at or after due (monotonic ms): the
//  latest probe round and, for signals: monitor, the rows of the latest soak sample,
//  which must have arrived at or after due. PENDING until such evidence is complete and
//  healthy, for at most the policy's signal max age past due; then FAILED (closed). A
//  breached rule fails at once. On FAILED run->rule and run->failure say why.
static s_checkpoint_t
s_checkpoint_judge (al_deployer_run_t *run, size_t index, size_t count, uint64_t due, char *detail, size_t size)
{
    s_check_kind_t kind = s_check_kind (index, count);
    bool monitored = run->svc->signals == AL_SERVICE_SIGNALS_MONITOR;
    al_rules_row_t rows [AL_RULES_ROWS];
    size_t row_count = 0;
    uint64_t sample_ms = 0;
    if (monitored) {
        if (run->hooks->signal_rows)
            row_count = run->hooks->signal_rows (run->hooks->arg, rows, AL_RULES_ROWS, &sample_ms);
        uint64_t max_age = (uint64_t) al_policy_signal_max_age_s (run->self->policy) * 1000;
        if (!run->hooks->signal_rows || ((row_count == 0 || sample_ms < due) && (uint64_t) al_clock_mono_ms () - due > max_age)) {
            //  Fail closed: the monitor's samples come (s_stale), but none judged since due.
            al_error_set (run->rule, sizeof run->rule, "missing_evidence");
            al_deployer_fail (run, "soak checkpoint %zu (%s): no soak sample judged by the quality rules since the "
                              "checkpoint was due", index + 1, al_deployer_checkpoint_check (index, count));
            al_error_set (detail, size, "%s", run->failure);
            return S_CHECKPOINT_FAILED;
        }
        if (row_count == 0 || sample_ms < due)
            return S_CHECKPOINT_PENDING;
    }
    //  Health, from our own probes, for every check: every instance of the new release
    //  answers, none failed in the latest round.
    size_t used = 0;
    bool healthy = run->round_seen >= run->instances && run->round_failed == 0;
    used += (size_t) snprintf (detail + used, size - used, "probes: %u of %u instance(s) healthy, %u failed probe(s) "
                               "so far", run->round_seen - (run->round_failed < run->round_seen? run->round_failed:
                               run->round_seen), run->instances, run->probes_failed);
    //  A round with a failure waits for the next one (the consecutive-failures rule
    //  breaches a failure that persists); still unhealthy past the signal max age: failed.
    uint64_t patience = (uint64_t) al_policy_signal_max_age_s (run->self->policy) * 1000;
    bool waited_enough = (uint64_t) al_clock_mono_ms () - due > patience;
    if (!healthy && !waited_enough)
        return S_CHECKPOINT_PENDING;
    if (!healthy) {
        al_error_set (run->rule, sizeof run->rule, "health_check_failures");
        al_deployer_fail (run, "soak checkpoint %zu (%s): %s", index + 1, al_deployer_checkpoint_check (index, count), detail);
        return S_CHECKPOINT_FAILED;
    }
    if (!monitored) {
        if ((kind == S_CHECK_ERROR_RATE || kind == S_CHECK_PERFORMANCE) && used < size)
            snprintf (detail + used, size - used,
                      "; %s not applicable: services.yaml signals: probes gives no %s evidence", kind ==
                      S_CHECK_ERROR_RATE? "error rate": "p99 latency", kind == S_CHECK_ERROR_RATE? "error-rate": "latency");
        return S_CHECKPOINT_PASSED;
    }
    for (size_t r = 0; r < row_count; r++) {
        if (!s_row_judged (kind, rows [r].rule))
            continue;
        char value [48] = "", bound [64] = "";
        if (!isnan (rows [r].value))
            snprintf (value, sizeof value, " %g%s", rows [r].value, rows [r].unit);
        if (!isnan (rows [r].limit))
            snprintf (bound, sizeof bound, " (limit %g%s)", rows [r].limit, rows [r].unit);
        bool say = rows [r].detail [0] && rows [r].status != AL_RULES_ROW_OK;
        if (used < size)
            used += (size_t) snprintf (detail + used, size - used, "; %s%s %s%s%s%s", rows [r].rule, value,
                                       al_rules_row_status_name (rows [r].status), bound, say? ": ": "",
                                       say? rows [r].detail: "");
        //  Missing evidence gets the same patience as the monitor's grace (the next
        //  sample may carry it); a breach fails at once.
        if (rows [r].status == AL_RULES_ROW_MISSING && !waited_enough)
            return S_CHECKPOINT_PENDING;
        if (rows [r].status == AL_RULES_ROW_BREACH || rows [r].status == AL_RULES_ROW_MISSING) {
            al_error_set (run->rule, sizeof run->rule, "%s", rows [r].status == AL_RULES_ROW_MISSING?
                          "missing_evidence": rows [r].rule);
            al_deployer_fail (run, "soak checkpoint %zu (%s): %s", index + 1, al_deployer_checkpoint_check (index, count), detail);
            return S_CHECKPOINT_FAILED;
        }
    }
    return S_CHECKPOINT_PASSED;
}

//  Record a judged checkpoint: progress, and the soak's list for the evidence and receipt.
static void
s_checkpoint_report (al_deployer_run_t *run, size_t index, size_t count, int64_t at_ms, int64_t duration_ms,
                     bool passed, const char *detail)
{
    const char *check = al_deployer_checkpoint_check (index, count);
    if (run->checkpoints)
        json_array_append_new (run->checkpoints, json_pack ("{s:i, s:I, s:s, s:b, s:s}", "checkpoint", (int) index + 1,
                                                            "at_ms", (json_int_t) at_ms, "check", check,
                                                            "passed", passed, "detail", detail));
    if (passed)
        run->checkpoints_passed++;
    al_deployer_progress (run, AIRLOCK__STEP__STEP_SOAK, passed? AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED: AIRLOCK__OUTCOME__OUTCOME_FAILED,
                          0, run->instances, (unsigned) (at_ms * 100 / (duration_ms > 0? duration_ms: 1)),
                          "checkpoint %zu of %zu (%s) %s at %.1f s: %s", index + 1, count, check, passed? "passed": "FAILED",
                          (double) at_ms / 1000.0, detail);
}

//  Watch the new release for duration_ms: probes every interval, rollback triggers, and
//  (the main soak, percent 100) the policy's checkpoints, each judged by its own check.
//  Returns 0 when it held, -1 on a breach (run->rule and run->failure say which).
static int
s_soak (al_deployer_run_t *run, int64_t duration_ms, unsigned percent, const char *what)
{
    unsigned consecutive [AL_DEPLOYER_MAX_INSTANCES];
    memset (consecutive, 0, sizeof consecutive);
    unsigned limit = run->svc->health_failures;
    const al_policy_thresholds_t *thresholds = al_policy_thresholds (run->self->policy);
    if (thresholds && thresholds->health_check_failures_more_than > 0)
        limit = thresholds->health_check_failures_more_than;
    int interval = run->svc->probe_interval_ms > 0? run->svc->probe_interval_ms: 1000;
    uint64_t start = (uint64_t) al_clock_mono_ms ();
    uint64_t deadline = start + (uint64_t) (duration_ms > 0? duration_ms: 0);
    //  The monitor's golden signals, scraped or read through the Prometheus provider.
    bool monitored = run->svc->signals != AL_SERVICE_SIGNALS_PROBES;
    uint64_t max_age = (uint64_t) al_policy_signal_max_age_s (run->self->policy) * 1000;
    //  The policy's checkpoints (quality_rules.yaml, already scaled) that fall in this
    //  soak; a soak shorter than the last one (services.yaml soak: with a reason) ends
    //  with the last check, "all normal", judged at its end.
    const al_policy_soak_t *policy_soak = al_policy_soak (run->self->policy);
    size_t count = percent == 100 && policy_soak? policy_soak->checkpoint_count: 0;
    int64_t at [64];
    size_t due_count = 0;
    for (size_t i = 0; i < count && due_count < 64; i++)
        if (policy_soak->checkpoints_ms [i] <= duration_ms)
            at [due_count++] = policy_soak->checkpoints_ms [i];
    bool final_at_end = count > 0 && due_count < count && due_count < 64;
    if (final_at_end)
        at [due_count++] = duration_ms;
    size_t checkpoint = 0;
    do {
        if (al_deployer_trigger (run))
            return -1;
        if (monitored && s_stale (run, start, max_age, false))
            return -1;
        json_t *round = json_array ();
        s_probe_round (run, consecutive, AL_DEPLOYER_MAX_INSTANCES, round);
        if (run->soak_samples)
            json_array_append_new (run->soak_samples,
                                   json_pack ("{s:I, s:s, s:i, s:o}", "time_ms", (json_int_t) al_deployer_now (run),
                                              "phase", what, "percent", (int) percent, "probes", round));
        else
            json_decref (round);
        for (size_t i = 0; i < AL_DEPLOYER_MAX_INSTANCES; i++)
            if (consecutive [i] > limit) {
                al_error_set (run->rule, sizeof run->rule, "health_check_failures");
                al_deployer_fail (run, "%s: more than %u consecutive failed health checks on an instance of %s",
                                  what, limit, run->to.version);
                return -1;
            }
        while (checkpoint < due_count && (uint64_t) al_clock_mono_ms () - start >= (uint64_t) at [checkpoint]) {
            //  The checkpoint's index in the policy: the last one for the final check.
            size_t index = final_at_end && checkpoint + 1 == due_count? count - 1: checkpoint;
            char detail [AL_DEPLOYER_DETAIL_SIZE] = "";
            s_checkpoint_t verdict = s_checkpoint_judge (run, index, count, start + (uint64_t) at [checkpoint],
                                                         detail, sizeof detail);
            if (verdict == S_CHECKPOINT_PENDING)
                break;
            s_checkpoint_report (run, index, count, at [checkpoint], duration_ms,
                                 verdict == S_CHECKPOINT_PASSED, detail);
            if (verdict == S_CHECKPOINT_FAILED)
                return -1;
            checkpoint++;
        }
        uint64_t elapsed = (uint64_t) al_clock_mono_ms () - start;
        unsigned share = duration_ms > 0? (unsigned) (elapsed * 100 / (uint64_t) duration_ms): 100;
        al_deployer_progress (run, AIRLOCK__STEP__STEP_SOAK, AIRLOCK__OUTCOME__OUTCOME_STARTED, 0, run->instances,
                              share > 100? 100: share, "%s: %u probes, %u failed; %zu of %zu checkpoint(s) judged", what,
                              run->probes_run, run->probes_failed, checkpoint, due_count);
        if ((uint64_t) al_clock_mono_ms () >= deadline) {
            //  No promotion without evidence: the soak must have seen the monitor's
            //  samples (a canary step's short soak only checks they are not stale).
            if (monitored && s_stale (run, start, max_age, percent == 100))
                return -1;
            //  A checkpoint still waiting for its sample keeps the soak going (s_stale
            //  above ends the wait, closed, when the samples stop).
            if (checkpoint >= due_count)
                break;
        }
        uint64_t now = (uint64_t) al_clock_mono_ms ();
        uint64_t left = deadline > now? deadline - now: 0;
        if (checkpoint < due_count && start + (uint64_t) at [checkpoint] > now
        &&  start + (uint64_t) at [checkpoint] - now < left)
            left = start + (uint64_t) at [checkpoint] - now;
        int wait = (int) (left < (uint64_t) interval? left: (uint64_t) interval);
        zclock_sleep (wait > 0? wait: (checkpoint < due_count? 20: 0));
    } while (true);
    return 0;
}

int
al_deployer_canary_soak (void *arg, unsigned percent, char *reason, size_t reason_size)
{
    al_deployer_run_t *run = (al_deployer_run_t *) arg;
    char what [64];
    al_error_set (what, sizeof what, "canary %u%%", percent);
    if (s_soak (run, run->svc->canary_step_soak_ms, percent, what) == 0)
        return 0;
    al_error_set (reason, reason_size, "%s", run->failure);
    return -1;
}

int
al_deployer_health_report (al_deployer_run_t *run, const char *name)
{
    json_t *round = json_array ();
    unsigned consecutive [AL_DEPLOYER_MAX_INSTANCES];
    memset (consecutive, 0, sizeof consecutive);
    unsigned failed = s_probe_round (run, consecutive, AL_DEPLOYER_MAX_INSTANCES, round);
    json_t *root = json_pack ("{s:s, s:s, s:s, s:I, s:b, s:o}", "deployment_id", run->job->deployment_id,
                              "service", run->svc->name, "version", run->to.version,
                              "time_ms", (json_int_t) al_deployer_now (run), "healthy", failed == 0, "instances", round);
    char error [512];
    if (al_deployer_write_json (run->evidence_dir, name, root, NULL, error, sizeof error) != 0)
        zsys_warning ("deploy-manager: %s", error);
    json_decref (root);
    return failed == 0? 0: -1;
}

int64_t
al_deployer_soak_ms (const al_policy_t *policy, const al_service_t *svc, Airlock__Environment env,
                     bool *shortened_p, char *why, size_t why_size)
{
    assert (policy);
    assert (svc);
    char scratch [8];
    if (!why) {
        why = scratch;
        why_size = sizeof scratch;
    }
    if (shortened_p)
        *shortened_p = false;
    const al_policy_soak_t *soak = al_policy_soak (policy);
    int64_t policy_ms = soak? soak->duration_ms: 0;
    double scale = soak && soak->time_scale > 0? soak->time_scale: 1.0;
    if (env == AIRLOCK__ENVIRONMENT__ENV_PRODUCTION) {
        if (svc->soak_shortened_ms > 0 && svc->soak_reason) {
            int64_t shortened = (int64_t) ((double) svc->soak_shortened_ms * scale);
            if (shortened < 1)
                shortened = 1;          // never no soak
            if (shortened < policy_ms) {
                if (shortened_p)
                    *shortened_p = true;
                al_error_set (why, why_size, "services.yaml soak.duration_ms, shortened from quality_rules.yaml's: %s",
                              svc->soak_reason);
                return shortened;
            }
        }
        al_error_set (why, why_size, "quality_rules.yaml soak.duration");
        return policy_ms;
    }
    if (policy_ms > 0 && policy_ms < svc->soak_ms) {
        al_error_set (why, why_size, "services.yaml soak_ms, capped by quality_rules.yaml soak.duration");
        return policy_ms;
    }
    al_error_set (why, why_size, "services.yaml soak_ms");
    return svc->soak_ms;
}

int
al_deployer_step_soak (al_deployer_run_t *run)
{
    char source [400];
    bool shortened = false;
    int64_t duration = al_deployer_soak_ms (run->self->policy, run->svc, run->job->environment, &shortened,
                                            source, sizeof source);
    al_deployer_progress (run, AIRLOCK__STEP__STEP_SOAK, AIRLOCK__OUTCOME__OUTCOME_STARTED, 0, run->instances, 0,
                          "soak of %.1f s (%s)%s%s", (double) duration / 1000.0, source, run->expedited [0]? "; ": "",
                          run->expedited);
    int rc = s_soak (run, duration, 100, "soak");
    if (rc == 0) {
        //  Each checkpoint with its check, so the receipt's steps (and the notification
        //  built from them) say what was judged when.
        char list [320] = "";
        size_t index;
        json_t *checkpoint;
        json_array_foreach (run->checkpoints, index, checkpoint) {
            size_t used = strlen (list);
            al_error_set (list + used, sizeof list - used, "%s%.1f s %s", used? ", ": "",
                          (double) json_integer_value (json_object_get (checkpoint, "at_ms")) / 1000.0,
                          json_string_value (json_object_get (checkpoint, "check")));
        }
        al_error_set (run->failure, sizeof run->failure, "held %lld ms%s: %u checkpoint(s) passed (%s), %u probe(s), %u failed",
                      (long long) duration, shortened? " (shortened: services.yaml soak)": "", run->checkpoints_passed,
                      list [0]? list: "none in this soak", run->probes_run, run->probes_failed);
    }
    json_t *root = json_pack ("{s:s, s:s, s:s, s:I, s:s, s:i, s:O, s:i, s:i, s:b, s:s, s:O}", "deployment_id",
                              run->job->deployment_id, "service", run->svc->name, "version", run->to.version,
                              "soak_ms", (json_int_t) duration, "soak_source", source,
                              "checkpoints_passed", (int) run->checkpoints_passed, "checkpoints", run->checkpoints,
                              "probes", (int) run->probes_run,
                              "failed", (int) run->probes_failed, "passed", rc == 0, "rule", run->rule,
                              "rounds", run->soak_samples);
    json_object_set (root, "smoke", run->smoke? run->smoke: json_null ());
    json_object_set_new (root, "environment", json_string (al_deployer_env_name (run->job->environment)));
    char error [512];
    if (al_deployer_write_json (run->evidence_dir, "smoke-test-results.json", root, NULL, error, sizeof error) != 0)
        zsys_warning ("deploy-manager: %s", error);
    json_decref (root);
    if (rc == 0) {
        al_deployer_health_report (run, "health-check-report.json");
        al_deployer_performance_at_soak_end (run);
    }
    return rc;
}
