/*  al_deployer.c: the critical path, journaled, resumable, with fast rollback.

    See al_deployer.h for the contract. The shape of one run:

      s_plan        read the journal: which steps finished, which one was interrupted
      s_step_*      one function per step; each returns 0 (succeeded or skipped) or -1
                    (failed, with its reason in run->failure)
      s_rollback    stop the new release, bring back the recorded one, undo the data
      s_receipt     promote (on success), write the evidence and deploy_receipt.json

    Every step goes through s_run_step, which records "started", runs it and records its
    outcome; a record that fails sets run->unrecorded and nothing else runs.

    Evidence JSON is written with jansson to a temporary file, fsynced and renamed, so a
    crash leaves the previous file or the new one, never half of one.
*/
#include "deploy/al_deployer.h"
#include "base/al_clock.h"
#include "base/al_file.h"
#include "base/al_text.h"
#include "deploy/al_artifacts.h"
#include "deploy/al_done.h"
#include "deploy/al_driver.h"
#include "deploy/al_instances.h"
#include "deploy/al_migrate.h"
#include "deploy/al_preflight.h"
#include "deploy/al_release_record.h"
#include "deploy/al_probe.h"
#include "deploy/al_rollout.h"
#include "policies/al_gate.h"
#include "proto/al_signature.h"
#include <assert.h>
#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define S_PATH_SIZE 1024
#define S_ENV_SLOTS 4
#define S_STEP_SLOTS 8              // Airlock__Step values 0..7
#define S_MAX_INSTANCES 1024

typedef al_release_t s_release_t;
typedef al_release_record_t s_record_t;

struct _al_deployer_t {
    const al_policy_t *policy;
    const al_services_t *services;
    char state_dir [S_PATH_SIZE];
    char qa_reports [S_PATH_SIZE];  // the qa agent's reports by digest; "" = none
    al_artifacts_t *artifacts;
    //  One driver per (service, environment), opened on first use.
    al_driver_t **drivers;          // services count × S_ENV_SLOTS
    size_t service_count;
};

//  ---- small helpers ------------------------------------------------------------------

//  Longest state directory accepted: every path built below it (names of at most 64
//  characters) then fits S_PATH_SIZE, so no path is ever cut short.
#define S_STATE_DIR_MAX 640

//  snprintf for texts built from paths and reasons: the length is bounded by the
//  caller's buffer, cut short at worst (error texts) and never for paths (see above).
static void
s_format (char *buffer, size_t size, const char *format, ...) __attribute__ ((format (printf, 3, 4)));

static void
s_format (char *buffer, size_t size, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    vsnprintf (buffer, size, format, args);
    va_end (args);
}

//  mkdir -p (al_file), errno set on failure for the callers' messages.
static int
s_make_dirs (const char *path, mode_t mode)
{
    char error [256];
    return al_file_make_directories (path, mode, error, sizeof error);
}

//  Write root as JSON to dir/name atomically; the file's SHA-256 in sha256 (may be NULL).
static int
s_write_json (const char *dir, const char *name, json_t *root, char sha256 [65],
              char *error, size_t error_size)
{
    char path [S_PATH_SIZE];
    s_format (path, sizeof path, "%s/%s", dir, name);
    char *text = json_dumps (root, JSON_INDENT (2) | JSON_SORT_KEYS);
    int rc = -1;
    if (!text) {
        s_format (error, error_size, "%s: cannot encode JSON", path);
        goto cleanup;
    }
    if (al_file_write_atomic_text (path, text, 0600, error, error_size) != 0)
        goto cleanup;
    if (sha256 && al_sha256_file_hex (path, sha256, error, error_size) != 0)
        goto cleanup;
    rc = 0;
cleanup:
    free (text);
    return rc;
}

static const char *
s_env_name (Airlock__Environment env)
{
    const char *name = al_environment_name (env);
    return name? name: "unspecified";
}

static const char *
s_step_name (Airlock__Step step)
{
    const char *name = al_step_name (step);
    return name? name: "unspecified";
}

//  ---- journal parsing ----------------------------------------------------------------

void
al_deploy_journal_clear (al_deploy_journal_t *journal)
{
    if (!journal)
        return;
    free (journal->records);
    journal->records = NULL;
    journal->count = 0;
}

int
al_deploy_journal_parse (const char *json, const char *deployment_id,
                         al_deploy_journal_t *journal, char *error, size_t error_size)
{
    memset (journal, 0, sizeof *journal);
    json_error_t parse_error;
    json_t *root = json_loads (json? json: "", 0, &parse_error);
    int rc = -1;
    if (!root || !json_is_object (root)) {
        s_format (error, error_size, "journal: not a JSON object (%s)", root? "wrong type": parse_error.text);
        goto cleanup;
    }
    json_t *problem = json_object_get (root, "error");
    if (problem) {
        s_format (error, error_size, "journal: the broker says: %s",
                  json_is_string (problem)? json_string_value (problem): "error");
        goto cleanup;
    }
    const char *id = json_string_value (json_object_get (root, "deployment_id"));
    json_t *entries = json_object_get (root, "entries");
    if (!id || strcmp (id, deployment_id) != 0 || !json_is_array (entries)) {
        s_format (error, error_size, "journal: not the journal of deployment %s", deployment_id);
        goto cleanup;
    }
    size_t count = json_array_size (entries);
    journal->records = (al_deploy_record_t *) calloc (count + 1, sizeof *journal->records);
    assert (journal->records);
    for (size_t i = 0; i < count; i++) {
        json_t *entry = json_array_get (entries, i);
        const char *step = json_string_value (json_object_get (entry, "step"));
        const char *phase = json_string_value (json_object_get (entry, "phase"));
        const char *status = json_string_value (json_object_get (entry, "status"));
        const char *detail = json_string_value (json_object_get (entry, "detail"));
        json_t *time = json_object_get (entry, "time_ms");
        al_deploy_record_t *record = &journal->records [i];
        record->step = al_step_from_name (step);
        record->outcome = al_outcome_from_name (status);
        if (record->step == AIRLOCK__STEP__STEP_UNSPECIFIED || record->outcome == AIRLOCK__OUTCOME__OUTCOME_UNSPECIFIED
        ||  !phase || strcmp (phase, record->outcome == AIRLOCK__OUTCOME__OUTCOME_STARTED? "before": "after") != 0
        ||  !json_is_integer (time)) {
            s_format (error, error_size, "journal: entry %zu of deployment %s is not understood (step '%s', status '%s')",
                      i + 1, deployment_id, step? step: "?", status? status: "?");
            al_deploy_journal_clear (journal);
            goto cleanup;
        }
        record->time_ms = (uint64_t) json_integer_value (time);
        s_format (record->detail, sizeof record->detail, "%s", detail? detail: "");
        journal->count++;
    }
    rc = 0;
cleanup:
    json_decref (root);
    return rc;
}

//  ---- release records ----------------------------------------------------------------

//  The record's path; false (with error) when the service's name cannot make one:
//  then nothing is read or written (fail closed, never "nothing deployed yet").
static bool
s_record_path (const al_deployer_t *self, const char *service, Airlock__Environment env,
               char *path, size_t path_size, char *error, size_t error_size)
{
    if (al_release_record_path (self->state_dir, service, s_env_name (env), path, path_size))
        return true;
    s_format (error, error_size, "%s/%s: no release record path for this service name", service, s_env_name (env));
    return false;
}

//  A missing record is "nothing deployed yet"; an unreadable one is an error: we
//  would not know what to roll back to.
static int
s_record_load (const al_deployer_t *self, const char *service, Airlock__Environment env,
               s_record_t *record, char *error, size_t error_size)
{
    char path [S_PATH_SIZE];
    memset (record, 0, sizeof *record);
    if (!s_record_path (self, service, env, path, sizeof path, error, error_size))
        return -1;
    return al_release_record_load (path, record, error, error_size);
}

static int
s_record_save (const al_deployer_t *self, const char *service, Airlock__Environment env,
               const s_record_t *record, char *error, size_t error_size)
{
    char path [S_PATH_SIZE];
    if (!s_record_path (self, service, env, path, sizeof path, error, error_size))
        return -1;
    return al_release_record_save (path, service, s_env_name (env), record, error, error_size);
}

//  ---- the deployer -------------------------------------------------------------------

al_deployer_t *
al_deployer_new (const al_policy_t *policy, const al_services_t *services, const char *state_dir,
                 char *error, size_t error_size)
{
    assert (policy && services && state_dir);
    if (strlen (state_dir) > S_STATE_DIR_MAX || state_dir [0] != '/') {
        s_format (error, error_size, "%s: the deploy state directory must be an absolute path of at most %d characters",
                  state_dir, S_STATE_DIR_MAX);
        return NULL;
    }
    al_deployer_t *self = (al_deployer_t *) calloc (1, sizeof *self);
    assert (self);
    self->policy = policy;
    self->services = services;
    s_format (self->state_dir, sizeof self->state_dir, "%s", state_dir);
    self->service_count = al_services_count (services);
    self->drivers = (al_driver_t **) calloc (self->service_count * S_ENV_SLOTS + 1, sizeof *self->drivers);
    assert (self->drivers);
    char path [S_PATH_SIZE];
    s_format (path, sizeof path, "%s/artifacts", state_dir);
    if (s_make_dirs (state_dir, 0700) != 0) {
        s_format (error, error_size, "%s: %s", state_dir, strerror (errno));
        al_deployer_destroy (&self);
        return NULL;
    }
    self->artifacts = al_artifacts_open (path, error, error_size);
    if (!self->artifacts)
        al_deployer_destroy (&self);
    return self;
}

void
al_deployer_set_qa_reports (al_deployer_t *self, const char *dir)
{
    assert (self && dir);
    s_format (self->qa_reports, sizeof self->qa_reports, "%s", dir);
}

void
al_deployer_destroy (al_deployer_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    al_deployer_t *self = *self_p;
    for (size_t i = 0; self->drivers && i < self->service_count * S_ENV_SLOTS; i++)
        al_driver_destroy (&self->drivers [i]);
    free (self->drivers);
    al_artifacts_destroy (&self->artifacts);
    free (self);
    *self_p = NULL;
}

void
al_deployer_evidence_dir (const al_deployer_t *self, const char *deployment_id, char *path, size_t path_size)
{
    s_format (path, path_size, "%s/.artifacts/deployment/%s", self->state_dir, deployment_id);
}

void
al_deployer_current (al_deployer_t *self, const char *service, Airlock__Environment env,
                     char *version, size_t version_size)
{
    s_record_t record;
    char error [256];
    *version = 0;
    if (s_record_load (self, service, env, &record, error, sizeof error) == 0 && record.current.present)
        s_format (version, version_size, "%s", record.current.version);
}

static size_t
s_service_index (const al_deployer_t *self, const al_service_t *svc)
{
    for (size_t i = 0; i < self->service_count; i++)
        if (al_services_at (self->services, i) == svc)
            return i;
    assert (false);
    return 0;
}

//  The driver of (service, env), opened on first use with its own evidence directory and
//  instance registry (so instances left by a killed deploy-manager are stopped).
static al_driver_t *
s_driver (al_deployer_t *self, const al_service_t *svc, Airlock__Environment env,
          char *error, size_t error_size)
{
    assert ((int) env > 0 && (int) env < S_ENV_SLOTS);
    al_driver_t **slot = &self->drivers [s_service_index (self, svc) * S_ENV_SLOTS + (size_t) env];
    if (*slot)
        return *slot;
    char dir [S_PATH_SIZE], state_file [S_PATH_SIZE + 32];
    if (!al_instances_dir (self->state_dir, svc->name, s_env_name (env), dir, sizeof dir)
    ||  !al_instances_path (self->state_dir, svc->name, s_env_name (env), state_file, sizeof state_file)) {
        s_format (error, error_size, "%s/%s: no instance registry path for this service", svc->name, s_env_name (env));
        return NULL;
    }
    if (s_make_dirs (dir, 0700) != 0) {
        s_format (error, error_size, "%s: %s", dir, strerror (errno));
        return NULL;
    }
    al_driver_config_t config;
    al_service_driver_config (svc, dir, &config);
    config.state_file = state_file;
    *slot = al_driver_open (svc->driver, &config, error, error_size);
    if (*slot && al_driver_stale_stopped (*slot) > 0)
        zsys_warning ("deploy-manager: %s/%s: stopped %zu instance(s) left by a previous run",
                      svc->name, s_env_name (env), al_driver_stale_stopped (*slot));
    return *slot;
}

//  ---- one run ------------------------------------------------------------------------

typedef struct {
    al_deployer_t *self;
    const al_deploy_job_t *job;
    const al_deployer_hooks_t *hooks;
    al_deploy_result_t *result;
    const al_service_t *svc;
    const Airlock__DeployRequest *request;
    al_driver_t *driver;
    s_record_t record;                      // as loaded at the start: current = what runs now
    char evidence_dir [S_PATH_SIZE];
    unsigned instances;
    Airlock__Strategy strategy;
    //  The new release and the recorded one.
    char digest_ref [80];                   // "sha256:<hex>"
    char artifact_path [S_PATH_SIZE];
    al_driver_vars_t to;
    bool has_from;
    char from_digest_ref [80];
    char from_artifact_path [S_PATH_SIZE];
    al_driver_vars_t from;
    al_migration_set_t *set;
    char backup_path [S_PATH_SIZE];
    //  Journal analysis.
    bool started [S_STEP_SLOTS];
    bool finished [S_STEP_SLOTS];
    Airlock__Outcome outcome [S_STEP_SLOTS];
    //  Outcome.
    bool unrecorded;
    char failure [AL_DEPLOYER_DETAIL_SIZE];
    char rule [64];
    unsigned probes_run;
    unsigned probes_failed;
    double probe_latency_max_ms;
    json_t *soak_samples;                   // the soak's probe rounds (smoke-test results)
    json_t *smoke;                          // production smoke checks after the rollout, or NULL
    unsigned checkpoints_passed;            // the policy's soak checkpoints passed
    json_t *checkpoints;                    // each checkpoint judged: {at_ms, check, passed, detail}
    unsigned round_seen;                    // the latest probe round: instances of the new release
    unsigned round_failed;                  //   and how many of them failed
    unsigned hotfix_steps [2];              // a hotfix's canary ramp (first step, 100)
    char expedited [256];                   // what a hotfix shortened, "" otherwise
    bool grant_break_glass;                 // the verified grant fills the break_glass quorum
} s_run_t;

static uint64_t
s_now (const s_run_t *run)
{
    return run->hooks->now_ms? run->hooks->now_ms (run->hooks->arg): (uint64_t) al_clock_wall_ms ();
}

static void
s_fail (s_run_t *run, const char *format, ...) __attribute__ ((format (printf, 2, 3)));

static void
s_fail (s_run_t *run, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    vsnprintf (run->failure, sizeof run->failure, format, args);
    va_end (args);
}

static al_deploy_step_t *
s_result_step (s_run_t *run, Airlock__Step step)
{
    al_deploy_result_t *result = run->result;
    for (size_t i = 0; i < result->step_count; i++)
        if (result->steps [i].step == step)
            return &result->steps [i];
    if (result->step_count == AL_DEPLOYER_MAX_STEPS)
        return NULL;
    al_deploy_step_t *entry = &result->steps [result->step_count++];
    memset (entry, 0, sizeof *entry);
    entry->step = step;
    return entry;
}

static int
s_journal (s_run_t *run, Airlock__Step step, Airlock__Outcome outcome, const char *detail)
{
    if (run->unrecorded)
        return -1;
    //  A detail may quote a driver's or a probe's output: control characters there would
    //  make the codec refuse the record and stop the deployment, so they travel escaped.
    char escaped [AL_DEPLOYER_DETAIL_SIZE];
    if (detail && !al_text_is_plain (detail)) {
        al_text_escape_to (detail, escaped, sizeof escaped);
        detail = escaped;
    }
    if (run->hooks->journal (run->hooks->arg, run->job->deployment_id, run->job->environment,
                             step, outcome, detail? detail: "") != 0) {
        run->unrecorded = true;
        zsys_error ("deploy-manager: %s: cannot record %s %s in the journal: stopping here",
                    run->job->deployment_id, s_step_name (step), al_outcome_name (outcome));
        return -1;
    }
    al_deploy_step_t *entry = s_result_step (run, step);
    if (entry) {
        if (outcome == AIRLOCK__OUTCOME__OUTCOME_STARTED)
            entry->started_ms = s_now (run);
        else
            entry->ended_ms = s_now (run);
        entry->outcome = outcome;
        s_format (entry->detail, sizeof entry->detail, "%s", detail? detail: "");
    }
    return 0;
}

static void
s_progress (s_run_t *run, Airlock__Step step, Airlock__Outcome outcome, unsigned instance,
            unsigned instances, unsigned percent, const char *format, ...) __attribute__ ((format (printf, 7, 8)));

static void
s_progress (s_run_t *run, Airlock__Step step, Airlock__Outcome outcome, unsigned instance,
            unsigned instances, unsigned percent, const char *format, ...)
{
    char detail [AL_DEPLOYER_DETAIL_SIZE];
    va_list args;
    va_start (args, format);
    vsnprintf (detail, sizeof detail, format, args);
    va_end (args);
    if (!al_text_is_plain (detail)) {
        char escaped [AL_DEPLOYER_DETAIL_SIZE];
        al_text_escape_to (detail, escaped, sizeof escaped);
        memcpy (detail, escaped, sizeof detail);
    }
    if (run->hooks->progress)
        run->hooks->progress (run->hooks->arg, run->job->deployment_id, run->job->environment,
                              step, outcome, instance, instances, percent, detail);
}

//  A rollback trigger arrived (from the monitor, through deploy-manager)?
static bool
s_trigger (s_run_t *run)
{
    if (run->rule [0])
        return true;
    if (!run->hooks->rollback_requested)
        return false;
    char detail [AL_DEPLOYER_DETAIL_SIZE] = "";
    if (!run->hooks->rollback_requested (run->hooks->arg, run->job->deployment_id,
                                         run->rule, sizeof run->rule, detail, sizeof detail))
        return false;
    if (!run->rule [0])
        s_format (run->rule, sizeof run->rule, "rollback_trigger");
    s_fail (run, "rollback trigger %s: %s", run->rule, detail);
    return true;
}

//  ---- the rollout's callbacks ----------------------------------------------------------

static void
s_rollout_progress (void *arg, const al_rollout_progress_t *progress)
{
    s_run_t *run = (s_run_t *) arg;
    s_progress (run, AIRLOCK__STEP__STEP_ROLLOUT, AIRLOCK__OUTCOME__OUTCOME_STARTED, progress->instance,
                progress->instances, progress->percent, "%s%s%s", progress->phase? progress->phase: "",
                progress->detail && *progress->detail? ": ": "", progress->detail? progress->detail: "");
}

static bool
s_rollout_aborted (void *arg, char *reason, size_t reason_size)
{
    s_run_t *run = (s_run_t *) arg;
    if (!s_trigger (run))
        return false;
    s_format (reason, reason_size, "%s", run->failure);
    return true;
}

//  Probe every running instance of the new release once, liveness and readiness. Returns
//  the number of instances that failed; failures per instance in counts (by index).
static unsigned
s_probe_round (s_run_t *run, unsigned *consecutive, size_t slots, json_t *round)
{
    al_driver_instance_t *instances = (al_driver_instance_t *) calloc (S_MAX_INSTANCES, sizeof *instances);
    assert (instances);
    size_t count = 0;
    char error [256];
    unsigned failed = 0;
    if (al_driver_list_instances (run->driver, instances, S_MAX_INSTANCES, &count, error, sizeof error) != AL_DRIVER_OK) {
        failed = 1;
        count = 0;
        if (round)
            json_array_append_new (round, json_pack ("{s:s, s:b, s:s}", "instance", "*", "ok", 0, "detail", error));
        for (size_t i = 0; i < slots; i++)
            consecutive [i]++;
    }
    size_t seen = 0;
    for (size_t i = 0; i < count && i < S_MAX_INSTANCES; i++) {
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
s_stale (s_run_t *run, uint64_t start, uint64_t max_age, bool required)
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
    s_format (run->rule, sizeof run->rule, "missing_evidence");
    if (last == 0)
        s_fail (run, "no SoakSignal from the monitor for %s during the soak", run->svc->name);
    else
        s_fail (run, "the monitor's latest SoakSignal for %s is %.1f s old (limit %.1f s)%s",
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
s_checkpoint_judge (s_run_t *run, size_t index, size_t count, uint64_t due, char *detail, size_t size)
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
            s_format (run->rule, sizeof run->rule, "missing_evidence");
            s_fail (run, "soak checkpoint %zu (%s): no soak sample judged by the quality rules since the "
                    "checkpoint was due", index + 1, al_deployer_checkpoint_check (index, count));
            s_format (detail, size, "%s", run->failure);
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
        s_format (run->rule, sizeof run->rule, "health_check_failures");
        s_fail (run, "soak checkpoint %zu (%s): %s", index + 1, al_deployer_checkpoint_check (index, count), detail);
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
            s_format (run->rule, sizeof run->rule, "%s", rows [r].status == AL_RULES_ROW_MISSING?
                      "missing_evidence": rows [r].rule);
            s_fail (run, "soak checkpoint %zu (%s): %s", index + 1, al_deployer_checkpoint_check (index, count), detail);
            return S_CHECKPOINT_FAILED;
        }
    }
    return S_CHECKPOINT_PASSED;
}

//  Record a judged checkpoint: progress, and the soak's list for the evidence and receipt.
static void
s_checkpoint_report (s_run_t *run, size_t index, size_t count, int64_t at_ms, int64_t duration_ms,
                     bool passed, const char *detail)
{
    const char *check = al_deployer_checkpoint_check (index, count);
    if (run->checkpoints)
        json_array_append_new (run->checkpoints, json_pack ("{s:i, s:I, s:s, s:b, s:s}", "checkpoint", (int) index + 1,
                                                            "at_ms", (json_int_t) at_ms, "check", check,
                                                            "passed", passed, "detail", detail));
    if (passed)
        run->checkpoints_passed++;
    s_progress (run, AIRLOCK__STEP__STEP_SOAK, passed? AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED: AIRLOCK__OUTCOME__OUTCOME_FAILED,
                0, run->instances, (unsigned) (at_ms * 100 / (duration_ms > 0? duration_ms: 1)),
                "checkpoint %zu of %zu (%s) %s at %.1f s: %s", index + 1, count, check, passed? "passed": "FAILED",
                (double) at_ms / 1000.0, detail);
}

//  Watch the new release for duration_ms: probes every interval, rollback triggers, and
//  (the main soak, percent 100) the policy's checkpoints, each judged by its own check.
//  Returns 0 when it held, -1 on a breach (run->rule and run->failure say which).
static int
s_soak (s_run_t *run, int64_t duration_ms, unsigned percent, const char *what)
{
    unsigned consecutive [S_MAX_INSTANCES];
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
        if (s_trigger (run))
            return -1;
        if (monitored && s_stale (run, start, max_age, false))
            return -1;
        json_t *round = json_array ();
        s_probe_round (run, consecutive, S_MAX_INSTANCES, round);
        if (run->soak_samples)
            json_array_append_new (run->soak_samples,
                                   json_pack ("{s:I, s:s, s:i, s:o}", "time_ms", (json_int_t) s_now (run),
                                              "phase", what, "percent", (int) percent, "probes", round));
        else
            json_decref (round);
        for (size_t i = 0; i < S_MAX_INSTANCES; i++)
            if (consecutive [i] > limit) {
                s_format (run->rule, sizeof run->rule, "health_check_failures");
                s_fail (run, "%s: more than %u consecutive failed health checks on an instance of %s",
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
        s_progress (run, AIRLOCK__STEP__STEP_SOAK, AIRLOCK__OUTCOME__OUTCOME_STARTED, 0, run->instances,
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

static int
s_canary_soak (void *arg, unsigned percent, char *reason, size_t reason_size)
{
    s_run_t *run = (s_run_t *) arg;
    char what [64];
    s_format (what, sizeof what, "canary %u%%", percent);
    if (s_soak (run, run->svc->canary_step_soak_ms, percent, what) == 0)
        return 0;
    s_format (reason, reason_size, "%s", run->failure);
    return -1;
}

static void
s_plan_init (s_run_t *run, al_rollout_plan_t *plan)
{
    memset (plan, 0, sizeof *plan);
    plan->strategy = (int) run->strategy;
    plan->instances = run->instances;
    plan->batch_size = run->svc->batch_size;
    plan->max_unavailable = run->svc->max_unavailable;
    plan->max_surge = run->svc->max_surge;
    plan->canary_steps = run->svc->canary_steps;
    plan->canary_step_count = run->svc->canary_step_count;
    plan->probe_interval_ms = run->svc->probe_interval_ms;
    plan->ready_timeout_ms = run->svc->ready_timeout_ms;
    plan->stop_grace_ms = run->svc->stop_timeout_ms;
    //  Seed 004: a hotfix is expedited. Its ramp is shortened, never its checks: a
    //  canary goes from its first step straight to 100% (the first step still soaks in
    //  full), rolling batches are twice as large (within the same max_surge and
    //  max_unavailable bounds, each batch still gated on readiness), and the soak after
    //  the rollout keeps its full duration and checkpoints (docs/deploying.md).
    run->expedited [0] = 0;
    if (run->request->deployment_type == AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_HOTFIX) {
        if (run->strategy == AIRLOCK__STRATEGY__STRATEGY_CANARY && plan->canary_step_count > 2) {
            run->hotfix_steps [0] = plan->canary_steps [0];
            run->hotfix_steps [1] = 100;
            s_format (run->expedited, sizeof run->expedited, "hotfix expedited: canary steps %u%%, 100%% "
                      "(of %zu steps)", run->hotfix_steps [0], plan->canary_step_count);
            plan->canary_steps = run->hotfix_steps;
            plan->canary_step_count = 2;
        }
        else
        if (run->strategy == AIRLOCK__STRATEGY__STRATEGY_ROLLING && plan->batch_size < run->instances) {
            unsigned batch = plan->batch_size * 2 < run->instances? plan->batch_size * 2: run->instances;
            s_format (run->expedited, sizeof run->expedited, "hotfix expedited: rolling batches of %u (not %u)",
                      batch, plan->batch_size);
            plan->batch_size = batch;
        }
    }
    plan->step_soak = s_canary_soak;
    plan->progress = s_rollout_progress;
    plan->aborted = s_rollout_aborted;
    plan->arg = run;
}

//  ---- preparing the run ----------------------------------------------------------------

static void
s_vars (al_driver_vars_t *vars, const al_service_t *svc, const char *version, const char *artifact,
        const char *digest_ref, Airlock__Environment env)
{
    vars->service = svc->name;
    vars->version = version;
    vars->artifact = artifact;
    vars->digest = digest_ref;
    vars->env = s_env_name (env);
}

//  The artifact to run for a release: the kept copy when the URI is local, else the URI
//  itself (a platform image the exec driver pins by {{digest}}).
static int
s_artifact (s_run_t *run, const char *uri, const char *digest, bool keep, char *path, size_t path_size)
{
    char error [512];
    al_artifact_status_t status = keep
        ? al_artifacts_keep (run->self->artifacts, uri, digest, path, path_size, error, sizeof error)
        : al_artifacts_path (run->self->artifacts, digest, path, path_size, error, sizeof error);
    if (status == AL_ARTIFACT_OK)
        return 0;
    if (status == AL_ARTIFACT_NOT_LOCAL && strcmp (run->svc->driver, "process") != 0) {
        s_format (path, path_size, "%s", uri);
        return 0;
    }
    s_fail (run, "artifact %s: %s", uri, error);
    return -1;
}

//  ---- the steps ----------------------------------------------------------------------

//  Seed 003's validation.json: what was validated before this deploy changed anything:
//  the QA report it carries (in production the digest the approvers signed, and
//  pre-flight's verdict on it) and every pre-flight check with its result. Returns 0,
//  or -1 when the file cannot be written (pre-flight then fails: no evidence, no deploy).
static int
s_validation (s_run_t *run, json_t *checks, bool passed, uint64_t now)
{
    Airlock__Environment env = run->job->environment;
    const Airlock__ProductionGrant *grant = run->job->execute? run->job->execute->grant: NULL;
    const Airlock__ApprovalRequest *approved = grant? grant->request: NULL;
    bool has_report = approved && !al_gate_no_qa_report (approved);
    bool qa_ok = false;
    const char *qa_detail = "pre-flight made no QA check";
    size_t index;
    json_t *check;
    json_array_foreach (checks, index, check)
        if (strcmp (json_string_value (json_object_get (check, "check")), "qa_report_approved") == 0) {
            qa_ok = json_is_true (json_object_get (check, "ok"));
            qa_detail = json_string_value (json_object_get (check, "detail"));
        }
    const char *verdict = env != AIRLOCK__ENVIRONMENT__ENV_PRODUCTION? "not required before production"
                        : !qa_ok? "not approved": has_report? "approved": "no QA report required";
    json_t *root = json_pack ("{s:s, s:s, s:s, s:s, s:s, s:I, s:{s:s?, s:s, s:b, s:s}, s:{s:b, s:O}, s:b}",
                              "deployment_id", run->job->deployment_id, "service", run->svc->name,
                              "environment", s_env_name (env), "version", run->request->version,
                              "artifact_sha256", run->request->artifact_sha256, "time_ms", (json_int_t) now,
                              "qa", "report_sha256", has_report? approved->qa_report_sha256: NULL,
                                    "verdict", verdict, "ok", qa_ok, "detail", qa_detail? qa_detail: "",
                              "preflight", "passed", passed, "checks", checks,
                              "passed", passed);
    char error [512];
    int rc = root? s_write_json (run->evidence_dir, "validation.json", root, NULL, error, sizeof error): -1;
    if (rc != 0)
        zsys_error ("deploy-manager: %s: validation.json: %s", run->job->deployment_id, root? error: "cannot encode");
    json_decref (root);
    return rc;
}

static int
s_step_preflight (s_run_t *run)
{
    const al_policy_t *policy = run->self->policy;
    const Airlock__DeployRequest *request = run->request;
    Airlock__Environment env = run->job->environment;
    json_t *checks = json_array ();
    char reason [AL_DEPLOYER_DETAIL_SIZE];
    char detail [AL_PREFLIGHT_DETAIL_SIZE];
    uint64_t now = s_now (run);

    //  The grant and its QA report (production), the constraints, the calendar: the
    //  checks al_preflight shares with the runbook.
    al_preflight_add_grant (checks, policy, env, request, run->job->execute, run->self->qa_reports, now,
                            &run->grant_break_glass);
    al_preflight_add_constraints (checks, policy, run->svc, env, run->strategy, run->instances);
    const Airlock__ApprovalRequest *approved = env == AIRLOCK__ENVIRONMENT__ENV_PRODUCTION && run->job->execute
        && run->job->execute->grant? run->job->execute->grant->request: NULL;
    al_preflight_add_calendar (checks, policy, env, request->deployment_type, approved, now, run->grant_break_glass);

    //  The artifact: bit for bit what was approved, kept for rollback.
    if (s_artifact (run, request->artifact_uri, request->artifact_sha256, true,
                    run->artifact_path, sizeof run->artifact_path) == 0)
        al_preflight_add (checks, "artifact_digest", true, "%s is sha256:%s", request->artifact_uri,
                          request->artifact_sha256);
    else
        al_preflight_add (checks, "artifact_digest", false, "%s", run->failure);
    al_preflight_release_t current = {
        .present = run->has_from, .version = run->record.current.version,
        .digest = run->record.current.digest, .deployment_id = run->record.current.deployment_id
    };
    al_preflight_add_release (checks, env, &current, run->from_artifact_path [0] != 0, request->version,
                              run->job->deployment_id);
    if (request->deployment_type == AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_ROLLBACK) {
        const s_release_t *before = &run->record.previous;
        al_preflight_release_t previous = {
            .present = before->present, .version = before->version,
            .digest = before->digest, .deployment_id = before->deployment_id
        };
        bool back = al_preflight_rollback_target (&current, &previous, request->version, request->artifact_sha256,
                                                  detail, sizeof detail);
        al_preflight_add (checks, "rollback_target", back, "%s", detail);
    }

    //  Migrations: the set is the one approved; reversible in production.
    al_preflight_add_migrations (checks, run->svc, env, request->migration_set_sha256, &run->set);

    //  Observability prerequisites: the probes the soak and the monitor rely on, and the
    //  monitor itself when the soak depends on its signals.
    if (run->svc->signals != AL_SERVICE_SIGNALS_PROBES) {
        char monitor [256] = "no monitor is connected";
        bool alive = run->hooks->monitor_alive
                  && run->hooks->monitor_alive (run->hooks->arg, monitor, sizeof monitor);
        al_preflight_add (checks, "monitor", alive, "%s", monitor);
    }
    bool observable = al_preflight_observability (run->svc, detail, sizeof detail);
    al_preflight_add (checks, "observability", observable, "%s", detail);

    //  The driver's own prerequisites (connectivity, programs, ports).
    al_preflight_add_driver (checks, run->driver, &run->to);

    json_t *root = json_pack ("{s:s, s:s, s:s, s:s, s:I, s:o}", "deployment_id", run->job->deployment_id,
                              "service", run->svc->name, "environment", s_env_name (env),
                              "driver", run->svc->driver, "time_ms", (json_int_t) now, "checks", checks);
    bool ok = al_preflight_passed (checks, reason, sizeof reason);
    char write_error [512];
    if (s_write_json (run->evidence_dir, "connectivity-report.json", root, NULL, write_error, sizeof write_error) != 0) {
        ok = false;
        s_format (reason, sizeof reason, "evidence: %s", write_error);
    }
    if (s_validation (run, checks, ok, now) != 0) {
        ok = false;
        s_format (reason, sizeof reason, "evidence: validation.json cannot be written");
    }
    json_decref (root);
    if (!ok)
        s_fail (run, "pre-flight: %s", reason);
    return ok? 0: -1;
}

static bool
s_has_database (const s_run_t *run, const char **db_p)
{
    const char *db = al_service_database (run->svc, run->job->environment);
    *db_p = db;
    return db != NULL;
}

static int
s_step_backup (s_run_t *run, bool *skipped)
{
    const char *db;
    if (!s_has_database (run, &db) || access (db, F_OK) != 0) {
        *skipped = true;
        s_format (run->failure, sizeof run->failure, "%s", db? "the database does not exist yet": "no database");
        return 0;
    }
    char dir [S_PATH_SIZE], error [512], sha [AL_SHA256_HEX_SIZE];
    s_format (dir, sizeof dir, "%s/backups/%s", run->self->state_dir, run->job->deployment_id);
    if (s_make_dirs (dir, 0700) != 0) {
        s_fail (run, "backup: %s: %s", dir, strerror (errno));
        return -1;
    }
    if (al_backup_create (db, run->backup_path, sha, error, sizeof error) != 0) {
        s_fail (run, "backup: %s", error);
        return -1;
    }
    s_format (run->failure, sizeof run->failure, "%s verified, sha256 %s", run->backup_path, sha);
    return 0;
}

static int
s_step_migrate (s_run_t *run, bool *skipped)
{
    const char *db;
    if (!run->set || !s_has_database (run, &db)) {
        *skipped = true;
        s_format (run->failure, sizeof run->failure, "%s", run->set? "no database in this environment": "no migrations");
        return 0;
    }
    al_migrate_report_t report;
    memset (&report, 0, sizeof report);
    char error [512];
    if (al_migrate_up (db, run->set, AL_MIGRATE_LATEST, &report, error, sizeof error) != 0) {
        s_fail (run, "migrate: %s", error);
        return -1;
    }
    s_format (run->failure, sizeof run->failure, "version %u -> %u (%u step(s))",
              report.from_version, report.to_version, report.steps_run);
    return 0;
}

//  A baseline of the release that runs now, before anything changes (seed 003's
//  performance baseline): one probe round's latencies. The monitor's golden-signal
//  baseline, when it runs, is richer; this one never depends on it.
static void
s_baseline (s_run_t *run)
{
    json_t *probes = json_array ();
    al_driver_instance_t *instances = (al_driver_instance_t *) calloc (S_MAX_INSTANCES, sizeof *instances);
    assert (instances);
    size_t count = 0;
    char error [256];
    if (run->has_from
    &&  al_driver_list_instances (run->driver, instances, S_MAX_INSTANCES, &count, error, sizeof error) == AL_DRIVER_OK)
        for (size_t i = 0; i < count && i < S_MAX_INSTANCES; i++) {
            if (!instances [i].running || strcmp (instances [i].version, run->from.version) != 0)
                continue;
            al_probe_result_t probe;
            memset (&probe, 0, sizeof probe);
            al_driver_probe (run->driver, instances [i].id, AL_DRIVER_READINESS, &probe, error, sizeof error);
            json_array_append_new (probes, json_pack ("{s:s, s:b, s:f, s:s}", "instance", instances [i].id,
                                                      "ok", probe.ok, "latency_ms", probe.latency_ms,
                                                      "detail", probe.detail));
        }
    free (instances);
    json_t *root = json_pack ("{s:s, s:s, s:s, s:s, s:I, s:o}", "deployment_id", run->job->deployment_id,
                              "service", run->svc->name, "baseline_version",
                              run->has_from? run->from.version: "", "source", "readiness probes before the rollout",
                              "time_ms", (json_int_t) s_now (run), "probes", probes);
    //  What the running release showed at the end of its own soak (its deployment's
    //  performance-baseline.json), when it was deployed here by airlock.
    json_t *previous = NULL;
    if (run->has_from && run->record.current.present && run->record.current.deployment_id [0]
    &&  strcmp (run->record.current.deployment_id, run->job->deployment_id) != 0) {
        char path [S_PATH_SIZE];
        al_deployer_evidence_dir (run->self, run->record.current.deployment_id, path, sizeof path);
        strncat (path, "/performance-baseline.json", sizeof path - strlen (path) - 1);
        json_t *recorded = json_load_file (path, 0, NULL);
        previous = json_incref (json_object_get (recorded, "at_soak_end"));
        json_decref (recorded);
    }
    json_object_set_new (root, "previous_release_at_soak_end", previous? previous: json_null ());
    if (s_write_json (run->evidence_dir, "performance-baseline.json", root, NULL, error, sizeof error) != 0)
        zsys_warning ("deploy-manager: %s", error);
    json_decref (root);
}

//  Seed 003's post-deployment smoke tests, in production: the service's read-only
//  qa.smoke checks (without any, one "liveness" check of liveness_path, any 2xx) against
//  every instance of the new release, after the rollout and before the soak. The first
//  failing check fails the rollout, so the release is rolled back. An instance whose
//  driver gives no endpoint (exec without `endpoint:`) cannot be checked: said so in
//  the evidence, not counted as passed. Results in run->smoke and smoke-test-results.json.
static int
s_smoke (s_run_t *run)
{
    const al_service_t *svc = run->svc;
    al_service_smoke_t liveness = { .name = "liveness", .path = svc->liveness_path? svc->liveness_path: "/",
                                    .status = 0, .body_contains = NULL };
    const al_service_smoke_t *smoke = svc->qa_smoke_count? svc->qa_smoke: &liveness;
    size_t smoke_count = svc->qa_smoke_count? svc->qa_smoke_count: 1;
    al_driver_instance_t *instances = (al_driver_instance_t *) calloc (S_MAX_INSTANCES, sizeof *instances);
    assert (instances);
    json_t *results = json_array ();
    size_t count = 0;
    unsigned ran = 0, failed = 0, unchecked = 0;
    char error [256], first [AL_DEPLOYER_DETAIL_SIZE] = "";
    if (al_driver_list_instances (run->driver, instances, S_MAX_INSTANCES, &count, error, sizeof error) != AL_DRIVER_OK) {
        s_format (first, sizeof first, "cannot list the instances: %s", error);
        failed++;
        count = 0;
    }
    for (size_t i = 0; i < count && i < S_MAX_INSTANCES; i++) {
        const al_driver_instance_t *instance = &instances [i];
        if (!instance->running || strcmp (instance->version, run->to.version) != 0)
            continue;
        if (!instance->endpoint [0]) {
            unchecked++;
            json_array_append_new (results, json_pack ("{s:s, s:s, s:n, s:s}", "instance", instance->id,
                                   "status", "not_run", "ok", "detail",
                                   "the driver gives no endpoint for this instance (services.yaml endpoint:)"));
            continue;
        }
        for (size_t k = 0; k < smoke_count; k++) {
            char url [S_PATH_SIZE];
            s_format (url, sizeof url, "%s%s", instance->endpoint, smoke [k].path);
            al_probe_result_t probe;
            bool ok = al_probe_http_check (url, svc->qa_timeout_ms, smoke [k].status, smoke [k].body_contains, &probe);
            ran++;
            if (!ok && failed++ == 0)
                s_format (first, sizeof first, "smoke check %s on %s (GET %s): %s", smoke [k].name, instance->id,
                          smoke [k].path, probe.detail);
            json_array_append_new (results, json_pack ("{s:s, s:s, s:s, s:s, s:b, s:s, s:f}", "check", smoke [k].name,
                                   "instance", instance->id, "url", url, "status", ok? "passed": "failed", "ok", ok,
                                   "detail", probe.detail, "latency_ms", probe.latency_ms));
        }
    }
    free (instances);
    if (ran == 0 && failed == 0 && unchecked == 0) {
        s_format (first, sizeof first, "no instance of %s runs to check", run->to.version);
        failed++;
    }
    json_decref (run->smoke);
    run->smoke = json_pack ("{s:s, s:s, s:b, s:i, s:i, s:i, s:o}", "when", "after the rollout, before the soak",
                            "source", svc->qa_smoke_count? "services.yaml qa.smoke": "liveness_path (no qa.smoke)",
                            "passed", failed == 0, "run", (int) ran, "failed", (int) failed,
                            "not_run", (int) unchecked, "checks", results);
    json_t *root = json_pack ("{s:s, s:s, s:s, s:s, s:O}", "deployment_id", run->job->deployment_id,
                              "service", svc->name, "environment", s_env_name (run->job->environment),
                              "version", run->to.version, "smoke", run->smoke);
    char write_error [512];
    if (s_write_json (run->evidence_dir, "smoke-test-results.json", root, NULL, write_error, sizeof write_error) != 0)
        zsys_warning ("deploy-manager: %s", write_error);
    json_decref (root);
    if (failed) {
        s_fail (run, "%s", first);
        return -1;
    }
    //  The rollout step's detail (journal, receipt, Definition of Done).
    s_format (run->failure, sizeof run->failure, "production smoke: %u check(s) passed%s", ran,
              unchecked? ", some instance(s) not checkable (no endpoint)": "");
    return 0;
}

//  Seed 003's performance baseline of the new release: at the end of a soak that held,
//  the latest golden signals the monitor sent for it (SoakSignal), and the soak's last
//  probe round, added to performance-baseline.json as "at_soak_end". The next deploy of
//  the service copies it into its own baseline ("previous_release_at_soak_end"), so a
//  first look at a release always has the numbers of the one it replaces.
static void
s_performance_at_soak_end (s_run_t *run)
{
    char path [S_PATH_SIZE], error [512];
    s_format (path, sizeof path, "%s/performance-baseline.json", run->evidence_dir);
    json_t *root = json_load_file (path, 0, NULL);
    if (!json_is_object (root)) {
        json_decref (root);
        root = json_pack ("{s:s, s:s}", "deployment_id", run->job->deployment_id, "service", run->svc->name);
    }
    const Airlock__SoakSignal *signal = run->hooks->latest_signal? run->hooks->latest_signal (run->hooks->arg): NULL;
    json_t *signals = signal?
        json_pack ("{s:I, s:f, s:f, s:f, s:f, s:f, s:f, s:i, s:i, s:i, s:s}", "sequence", (json_int_t) signal->sequence,
                   "requests_per_second", signal->requests_per_second, "error_ratio", signal->error_ratio,
                   "latency_p50_ms", signal->latency_p50_ms, "latency_p99_ms", signal->latency_p99_ms,
                   "cpu_percent", signal->cpu_percent, "memory_percent", signal->memory_percent,
                   "instances_up", (int) signal->instances_up, "instances_total", (int) signal->instances_total,
                   "no_evidence", (int) signal->no_evidence, "source", signal->source? signal->source: "")
        : json_null ();
    json_t *last_round = json_object_get (json_array_get (run->soak_samples, json_array_size (run->soak_samples) - 1),
                                          "probes");
    json_object_set_new (root, "at_soak_end", json_pack ("{s:s, s:I, s:s, s:o, s:O, s:f, s:i, s:i}",
        "version", run->to.version, "time_ms", (json_int_t) s_now (run),
        "source", signal? "the monitor's latest SoakSignal for this release, and the soak's last probe round"
                        : "no SoakSignal for this release (signals: probes): the soak's last probe round only",
        "golden_signals", signals, "probes", last_round? last_round: json_null (),
        "max_probe_latency_ms", run->probe_latency_max_ms, "probes_run", (int) run->probes_run,
        "probes_failed", (int) run->probes_failed));
    if (s_write_json (run->evidence_dir, "performance-baseline.json", root, NULL, error, sizeof error) != 0)
        zsys_warning ("deploy-manager: %s", error);
    json_decref (root);
}

static int
s_step_rollout (s_run_t *run)
{
    s_baseline (run);
    al_rollout_plan_t plan;
    s_plan_init (run, &plan);
    if (run->expedited [0])
        s_progress (run, AIRLOCK__STEP__STEP_ROLLOUT, AIRLOCK__OUTCOME__OUTCOME_STARTED, 0, run->instances, 0,
                    "%s; the soak after the rollout is not shortened", run->expedited);
    char error [AL_DEPLOYER_DETAIL_SIZE];
    al_rollout_status_t status = al_rollout_run (run->driver, &plan, run->has_from? &run->from: NULL,
                                                 &run->to, error, sizeof error);
    if (status == AL_ROLLOUT_OK && run->job->environment == AIRLOCK__ENVIRONMENT__ENV_PRODUCTION
    &&  s_smoke (run) != 0) {
        s_format (run->rule, sizeof run->rule, "smoke_failed");
        return -1;
    }
    if (status == AL_ROLLOUT_OK)
        return 0;
    if (status != AL_ROLLOUT_ABORTED || !run->failure [0])
        s_fail (run, "rollout (%s): %s", al_strategy_name (run->strategy)? al_strategy_name (run->strategy): "?", error);
    if (!run->rule [0])
        s_format (run->rule, sizeof run->rule, "%s", status == AL_ROLLOUT_ABORTED? "rollback_trigger": "rollout_failed");
    return -1;
}

static int
s_health_report (s_run_t *run, const char *name)
{
    json_t *round = json_array ();
    unsigned consecutive [S_MAX_INSTANCES];
    memset (consecutive, 0, sizeof consecutive);
    unsigned failed = s_probe_round (run, consecutive, S_MAX_INSTANCES, round);
    json_t *root = json_pack ("{s:s, s:s, s:s, s:I, s:b, s:o}", "deployment_id", run->job->deployment_id,
                              "service", run->svc->name, "version", run->to.version,
                              "time_ms", (json_int_t) s_now (run), "healthy", failed == 0, "instances", round);
    char error [512];
    if (s_write_json (run->evidence_dir, name, root, NULL, error, sizeof error) != 0)
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
                s_format (why, why_size, "services.yaml soak.duration_ms, shortened from quality_rules.yaml's: %s",
                          svc->soak_reason);
                return shortened;
            }
        }
        s_format (why, why_size, "quality_rules.yaml soak.duration");
        return policy_ms;
    }
    if (policy_ms > 0 && policy_ms < svc->soak_ms) {
        s_format (why, why_size, "services.yaml soak_ms, capped by quality_rules.yaml soak.duration");
        return policy_ms;
    }
    s_format (why, why_size, "services.yaml soak_ms");
    return svc->soak_ms;
}

static int
s_step_soak (s_run_t *run)
{
    char source [400];
    bool shortened = false;
    int64_t duration = al_deployer_soak_ms (run->self->policy, run->svc, run->job->environment, &shortened,
                                            source, sizeof source);
    s_progress (run, AIRLOCK__STEP__STEP_SOAK, AIRLOCK__OUTCOME__OUTCOME_STARTED, 0, run->instances, 0,
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
            s_format (list + used, sizeof list - used, "%s%.1f s %s", used? ", ": "",
                      (double) json_integer_value (json_object_get (checkpoint, "at_ms")) / 1000.0,
                      json_string_value (json_object_get (checkpoint, "check")));
        }
        s_format (run->failure, sizeof run->failure, "held %lld ms%s: %u checkpoint(s) passed (%s), %u probe(s), %u failed",
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
    json_object_set_new (root, "environment", json_string (s_env_name (run->job->environment)));
    char error [512];
    if (s_write_json (run->evidence_dir, "smoke-test-results.json", root, NULL, error, sizeof error) != 0)
        zsys_warning ("deploy-manager: %s", error);
    json_decref (root);
    if (rc == 0) {
        s_health_report (run, "health-check-report.json");
        s_performance_at_soak_end (run);
    }
    return rc;
}

//  Rollback: fast, no analysis. Stop the new release, bring the recorded one back to its
//  count, undo the data as services.yaml says, then verify health.
static int
s_rollback (s_run_t *run)
{
    char detail [AL_DEPLOYER_DETAIL_SIZE];
    s_format (detail, sizeof detail, "rule %s: %s", run->rule [0]? run->rule: "step_failed", run->failure);
    if (s_journal (run, AIRLOCK__STEP__STEP_ROLLBACK, AIRLOCK__OUTCOME__OUTCOME_STARTED, detail) != 0)
        return -1;
    char error [AL_DEPLOYER_DETAIL_SIZE] = "";
    bool ok = true;
    al_rollout_plan_t plan;
    s_plan_init (run, &plan);
    plan.aborted = NULL;
    plan.step_soak = NULL;
    if (run->driver) {
        if (al_rollout_revert (run->driver, &plan, run->has_from? &run->from: NULL, &run->to,
                               error, sizeof error) != AL_ROLLOUT_OK)
            ok = false;
    }
    //  Data: only when migrate started (else nothing changed).
    const char *db;
    bool data = run->started [AIRLOCK__STEP__STEP_MIGRATE] && run->set && s_has_database (run, &db);
    if (ok && data) {
        if (run->svc->data_rollback == AL_SERVICE_DATA_ROLLBACK_RESTORE
        ||  access (run->backup_path, F_OK) == 0) {
            unsigned target = 0;
            if (access (run->backup_path, F_OK) != 0) {
                ok = false;
                s_format (error, sizeof error, "no backup at %s to restore", run->backup_path);
            }
            else
            if (run->svc->data_rollback == AL_SERVICE_DATA_ROLLBACK_DOWN
            &&  al_migrate_version (run->backup_path, run->set, &target, error, sizeof error) == 0
            &&  al_migrate_down (db, run->set, target, NULL, error, sizeof error) == 0)
                ;
            else
            if (al_backup_restore (run->backup_path, NULL, db, error, sizeof error) != 0)
                ok = false;
        }
        else
        if (al_migrate_down (db, run->set, 0, NULL, error, sizeof error) != 0)
            ok = false;
    }
    if (ok && run->has_from) {
        //  Health of what we went back to.
        al_driver_vars_t saved = run->to;
        run->to = run->from;
        if (s_health_report (run, "health-check-report.json") != 0) {
            ok = false;
            s_format (error, sizeof error, "the restored release %s is not healthy", run->from.version);
        }
        run->to = saved;
    }
    if (ok)
        s_format (detail, sizeof detail, "restored %s%s", run->has_from? run->from.version: "nothing (first deploy)",
                  data? " and its data": "");
    else
        s_format (detail, sizeof detail, "rollback failed: %s", error);
    if (s_journal (run, AIRLOCK__STEP__STEP_ROLLBACK, ok? AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED
                   : AIRLOCK__OUTCOME__OUTCOME_FAILED, detail) != 0)
        return -1;
    return ok? 0: -1;
}

static json_t *
s_approvals_json (const s_run_t *run)
{
    json_t *list = json_array ();
    const Airlock__ProductionGrant *grant = run->job->execute? run->job->execute->grant: NULL;
    for (size_t i = 0; grant && i < grant->n_approvals; i++) {
        const Airlock__SignedApproval *approval = grant->approvals [i];
        Airlock__ApprovalStatement *statement = NULL;
        char error [128];
        if (al_statement_unpack (approval->statement.data, approval->statement.len, &statement,
                                 error, sizeof error) != AL_SIG_OK)
            continue;
        char id [33] = "";
        for (size_t b = 0; b < statement->approval_id.len && b < 16; b++)
            s_format (id + 2 * b, 3, "%02x", statement->approval_id.data [b]);
        json_array_append_new (list, json_pack ("{s:s, s:s, s:s, s:I, s:I, s:b}",
                               "approver_key_id", statement->approver_key_id, "approval_id", id,
                               "decision", statement->decision == AIRLOCK__DECISION__DECISION_GRANT? "grant": "deny",
                               "issued_at_ms", (json_int_t) statement->issued_at_ms,
                               "expires_at_ms", (json_int_t) statement->expires_at_ms,
                               "break_glass", statement->break_glass));
        airlock__approval_statement__free_unpacked (statement, NULL);
    }
    return list;
}

//  The monitor's trigger with the samples that broke its rule, or null.
static json_t *
s_trigger_json (const s_run_t *run, Airlock__Outcome outcome)
{
    const Airlock__RollbackTrigger *trigger = run->hooks->last_trigger? run->hooks->last_trigger (run->hooks->arg): NULL;
    if (outcome != AIRLOCK__OUTCOME__OUTCOME_ROLLED_BACK || !trigger || strcmp (trigger->rule, run->rule) != 0)
        return json_null ();
    json_t *samples = json_array ();
    for (size_t i = 0; i < trigger->n_samples; i++) {
        const Airlock__SoakSignal *sample = trigger->samples [i];
        json_array_append_new (samples, json_pack ("{s:I, s:f, s:f, s:f, s:f, s:f, s:f, s:i, s:i, s:i, s:i}",
                               "sequence", (json_int_t) sample->sequence,
                               "requests_per_second", sample->requests_per_second,
                               "error_ratio", sample->error_ratio,
                               "latency_p50_ms", sample->latency_p50_ms, "latency_p99_ms", sample->latency_p99_ms,
                               "cpu_percent", sample->cpu_percent, "memory_percent", sample->memory_percent,
                               "instances_up", (int) sample->instances_up, "instances_total", (int) sample->instances_total,
                               "consecutive_health_failures", (int) sample->consecutive_health_failures,
                               "no_evidence", (int) sample->no_evidence));
    }
    return json_pack ("{s:s, s:s, s:o}", "rule", trigger->rule, "detail", trigger->detail, "samples", samples);
}

//  The Definition of Done from the evidence (al_done): the steps as the journal has them,
//  pre-flight's checks as connectivity-report.json has them (also after a restart), the
//  grant's QA report digest, the rollback rule.
static json_t *
s_definition_of_done (s_run_t *run, Airlock__Outcome outcome, bool *done, char *why, size_t why_size)
{
    al_done_evidence_t evidence;
    memset (&evidence, 0, sizeof evidence);
    evidence.environment = run->job->environment;
    evidence.deployment_type = run->request->deployment_type;
    evidence.outcome = outcome;
    evidence.failure = run->failure;
    for (int step = 1; step < AL_DONE_STEP_SLOTS && step < S_STEP_SLOTS; step++) {
        //  The result's step list holds every record of this run and of the journal
        //  it resumed (rollback is journaled outside s_run_step).
        for (size_t i = 0; i < run->result->step_count; i++) {
            const al_deploy_step_t *entry = &run->result->steps [i];
            if ((int) entry->step != step)
                continue;
            evidence.steps [step].finished = entry->outcome != AIRLOCK__OUTCOME__OUTCOME_UNSPECIFIED
                                          && entry->outcome != AIRLOCK__OUTCOME__OUTCOME_STARTED;
            evidence.steps [step].outcome = entry->outcome;
            evidence.steps [step].detail = entry->detail;
        }
    }
    char path [S_PATH_SIZE];
    s_format (path, sizeof path, "%s/connectivity-report.json", run->evidence_dir);
    json_t *preflight = json_load_file (path, 0, NULL);
    evidence.preflight_checks = json_object_get (preflight, "checks");
    const Airlock__ProductionGrant *grant = run->job->execute? run->job->execute->grant: NULL;
    evidence.qa_report_sha256 = grant && grant->request? grant->request->qa_report_sha256: NULL;
    evidence.rule = run->rule;
    const char *db;
    evidence.has_database = s_has_database (run, &db);
    evidence.has_migrations = run->svc->migrations != NULL;
    evidence.recorded = !run->unrecorded;
    json_t *points = al_done_evaluate (run->self->policy, &evidence, done, why, why_size);
    json_decref (preflight);
    return points;
}

//  The receipt step: promote (success only), then write the evidence and the receipt.
static int
s_receipt (s_run_t *run, Airlock__Outcome outcome)
{
    al_deploy_result_t *result = run->result;
    if (s_journal (run, AIRLOCK__STEP__STEP_RECEIPT, AIRLOCK__OUTCOME__OUTCOME_STARTED, al_outcome_name (outcome)) != 0)
        return -1;
    char error [AL_DEPLOYER_DETAIL_SIZE] = "";
    if (outcome == AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED) {
        //  Blue-green keeps the old set until here; then the record moves.
        al_rollout_plan_t plan;
        s_plan_init (run, &plan);
        plan.aborted = NULL;
        if (run->strategy == AIRLOCK__STRATEGY__STRATEGY_BLUE_GREEN && run->has_from
        &&  al_rollout_finish (run->driver, &plan, &run->from, error, sizeof error) != AL_ROLLOUT_OK)
            zsys_warning ("deploy-manager: %s: stopping the old set: %s", run->job->deployment_id, error);
        s_record_t record = run->record;
        if (record.current.present && strcmp (record.current.deployment_id, run->job->deployment_id) != 0)
            record.previous = record.current;
        memset (&record.current, 0, sizeof record.current);
        record.current.present = true;
        s_format (record.current.version, sizeof record.current.version, "%s", run->request->version);
        s_format (record.current.digest, sizeof record.current.digest, "%s", run->request->artifact_sha256);
        s_format (record.current.artifact_uri, sizeof record.current.artifact_uri, "%s", run->request->artifact_uri);
        s_format (record.current.deployment_id, sizeof record.current.deployment_id, "%s", run->job->deployment_id);
        record.current.instances = run->instances;
        if (s_record_save (run->self, run->svc->name, run->job->environment, &record, error, sizeof error) != 0) {
            //  The new release runs, but we could not write it down: say so loudly; a
            //  restart would bring back the old one.
            outcome = AIRLOCK__OUTCOME__OUTCOME_FAILED;
            s_fail (run, "release record: %s", error);
        }
    }
    result->outcome = outcome;
    s_format (result->rollback_rule, sizeof result->rollback_rule, "%s",
              outcome == AIRLOCK__OUTCOME__OUTCOME_ROLLED_BACK? (run->rule [0]? run->rule: "step_failed"): "");
    s_format (result->previous_version, sizeof result->previous_version, "%s",
              run->has_from? run->from.version: "");
    s_format (result->detail, sizeof result->detail, "%s", outcome == AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED?
              "deployed": run->failure);

    //  The environment's deployment record (seed 003: staging- or production-deployment.json).
    Airlock__Environment env = run->job->environment;
    char name [64];
    s_format (name, sizeof name, "%s-deployment.json", s_env_name (env));
    json_t *deployment = json_pack ("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:s, s:s}",
                                    "deployment_id", run->job->deployment_id, "service", run->svc->name,
                                    "environment", s_env_name (env), "version", run->request->version,
                                    "artifact_uri", run->request->artifact_uri,
                                    "artifact_sha256", run->request->artifact_sha256,
                                    "strategy", al_strategy_name (run->strategy)? al_strategy_name (run->strategy): "",
                                    "instances", (int) run->instances, "driver", run->svc->driver,
                                    "outcome", al_outcome_name (outcome));
    s_write_json (run->evidence_dir, name, deployment, NULL, error, sizeof error);
    json_decref (deployment);

    json_t *steps = json_array ();
    for (size_t i = 0; i < result->step_count; i++) {
        const al_deploy_step_t *step = &result->steps [i];
        if (step->step == AIRLOCK__STEP__STEP_RECEIPT)
            continue;
        json_array_append_new (steps, json_pack ("{s:s, s:s, s:I, s:I, s:s}", "step", s_step_name (step->step),
                               "outcome", al_outcome_name (step->outcome)? al_outcome_name (step->outcome): "unspecified",
                               "started_ms", (json_int_t) step->started_ms, "ended_ms", (json_int_t) step->ended_ms,
                               "detail", step->detail));
    }
    bool done = false;
    char done_reason [AL_DEPLOYER_DETAIL_SIZE * 2];
    json_t *points = s_definition_of_done (run, outcome, &done, done_reason, sizeof done_reason);
    const Airlock__ProductionGrant *grant = run->job->execute? run->job->execute->grant: NULL;
    json_t *receipt = json_pack ("{s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s, s:s}, s:s, s:s, s:i, s:s, s:s, s:s,"
                                 " s:o, s:o, s:o, s:{s:s, s:i, s:i, s:f, s:s}, s:o, s:b, s:s, s:o}",
        "format", "airlock-deploy-receipt-v1",
        "deployment_id", run->job->deployment_id,
        "service", run->svc->name,
        "environment", s_env_name (env),
        "version", run->request->version,
        "artifact", "uri", run->request->artifact_uri, "sha256", run->request->artifact_sha256,
                    "kept_at", run->artifact_path,
        "previous_version", result->previous_version,
        "strategy", al_strategy_name (run->strategy)? al_strategy_name (run->strategy): "",
        "instances", (int) run->instances,
        "outcome", al_outcome_name (outcome),
        "rollback_rule", result->rollback_rule,
        "detail", result->detail,
        "steps", steps,
        "approvals", s_approvals_json (run),
        "grant", grant? json_pack ("{s:s, s:I, s:I}", "request_id", grant->request_id,
                                   "grant_audit_sequence", (json_int_t) grant->grant_audit_sequence,
                                   "granted_at_ms", (json_int_t) grant->granted_at_ms): json_null (),
        "signals", "source", run->svc->signals == AL_SERVICE_SIGNALS_MONITOR?
                   "monitor golden signals and health probes"
                   : run->svc->signals == AL_SERVICE_SIGNALS_PROMETHEUS?
                   "golden signals from the Prometheus provider (the monitor's queries) and health probes"
                   : "health probes (liveness, readiness)",
                   "probes", (int) run->probes_run,
                   "failed", (int) run->probes_failed, "max_latency_ms", run->probe_latency_max_ms,
                   "rule", run->rule,
        "definition_of_done", points,
        "done", done,
        "done_reason", done_reason,
        "rollback_trigger", s_trigger_json (run, outcome));
    //  The soak's checkpoints, each with its check and what it saw (seed 004).
    if (receipt) {
        char source [400];
        bool shortened = false;
        int64_t soak_ms = al_deployer_soak_ms (run->self->policy, run->svc, env, &shortened, source, sizeof source);
        json_object_set_new (receipt, "soak", json_pack ("{s:I, s:s, s:b, s:s, s:O, s:s}", "duration_ms",
                                                         (json_int_t) soak_ms, "source", source, "shortened", shortened,
                                                         "reason", shortened && run->svc->soak_reason?
                                                         run->svc->soak_reason: "", "checkpoints", run->checkpoints,
                                                         "expedited", run->expedited));
    }
    int rc = 0;
    if (!receipt || s_write_json (run->evidence_dir, "deploy_receipt.json", receipt, result->receipt_sha256,
                                  error, sizeof error) != 0) {
        zsys_error ("deploy-manager: %s: receipt: %s", run->job->deployment_id, receipt? error: "cannot encode");
        rc = -1;
    }
    json_decref (receipt);
    s_format (result->receipt_path, sizeof result->receipt_path, "%s/deploy_receipt.json", run->evidence_dir);
    char detail [AL_DEPLOYER_DETAIL_SIZE];
    s_format (detail, sizeof detail, "%s receipt sha256 %s", al_outcome_name (outcome),
              rc == 0? result->receipt_sha256: "(not written)");
    //  The receipt step's own outcome is the deployment's (what a restart reports again).
    if (s_journal (run, AIRLOCK__STEP__STEP_RECEIPT, outcome, detail) != 0)
        return -1;
    return 0;
}

//  ---- the run ------------------------------------------------------------------------

//  Record a step's start, run it, record its end. Returns 0 when it succeeded or was
//  skipped, -1 when it failed or could not be recorded (run->unrecorded).
typedef int (s_step_fn) (s_run_t *run, bool *skipped);

static int
s_rollout_fn (s_run_t *run, bool *skipped)
{
    (void) skipped;
    return s_step_rollout (run);
}

static int
s_preflight_fn (s_run_t *run, bool *skipped)
{
    (void) skipped;
    return s_step_preflight (run);
}

static int
s_soak_fn (s_run_t *run, bool *skipped)
{
    (void) skipped;
    return s_step_soak (run);
}

static int
s_run_step (s_run_t *run, Airlock__Step step, s_step_fn *fn)
{
    if (s_journal (run, step, AIRLOCK__OUTCOME__OUTCOME_STARTED, "") != 0)
        return -1;
    run->started [step] = true;
    bool skipped = false;
    run->failure [0] = 0;
    int rc = fn (run, &skipped);
    Airlock__Outcome outcome = rc != 0? AIRLOCK__OUTCOME__OUTCOME_FAILED
                             : skipped? AIRLOCK__OUTCOME__OUTCOME_SKIPPED: AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED;
    char detail [AL_DEPLOYER_DETAIL_SIZE];
    s_format (detail, sizeof detail, "%s", run->failure);
    if (rc == 0)
        run->failure [0] = 0;
    if (s_journal (run, step, outcome, detail) != 0)
        return -1;
    run->finished [step] = true;
    run->outcome [step] = outcome;
    if (rc != 0)
        s_format (run->failure, sizeof run->failure, "%s", detail);
    return rc;
}

//  Fill what the journal says: which steps started, finished and how; the result's step
//  list with the broker's times; the rule of a recorded rollback.
static void
s_read_journal (s_run_t *run)
{
    const al_deploy_journal_t *journal = run->job->journal;
    for (size_t i = 0; journal && i < journal->count; i++) {
        const al_deploy_record_t *record = &journal->records [i];
        if ((int) record->step <= 0 || (int) record->step >= S_STEP_SLOTS)
            continue;
        al_deploy_step_t *entry = s_result_step (run, record->step);
        if (record->outcome == AIRLOCK__OUTCOME__OUTCOME_STARTED) {
            run->started [record->step] = true;
            if (entry)
                entry->started_ms = record->time_ms;
            if (record->step == AIRLOCK__STEP__STEP_ROLLBACK && strncmp (record->detail, "rule ", 5) == 0) {
                const char *rule = record->detail + 5;
                size_t length = strcspn (rule, ":");
                s_format (run->rule, sizeof run->rule, "%.*s", (int) (length < sizeof run->rule? length: sizeof run->rule - 1), rule);
                const char *why = rule + length;
                s_format (run->failure, sizeof run->failure, "%s", *why == ':'? why + 2: why);
            }
        }
        else {
            run->finished [record->step] = true;
            run->outcome [record->step] = record->outcome;
            if (record->outcome == AIRLOCK__OUTCOME__OUTCOME_FAILED && !run->failure [0])
                s_format (run->failure, sizeof run->failure, "%s", record->detail);
        }
        if (entry && record->outcome != AIRLOCK__OUTCOME__OUTCOME_STARTED) {
            entry->ended_ms = record->time_ms;
            entry->outcome = record->outcome;
            s_format (entry->detail, sizeof entry->detail, "%s", record->detail);
        }
        else
        if (entry && entry->outcome == AIRLOCK__OUTCOME__OUTCOME_UNSPECIFIED)
            entry->outcome = AIRLOCK__OUTCOME__OUTCOME_STARTED;
    }
}

//  Set up what every step needs: service, driver, record, releases, paths. On failure
//  run->failure says why (the deployment fails in pre-flight).
static int
s_prepare (s_run_t *run)
{
    const al_deploy_job_t *job = run->job;
    const Airlock__DeployRequest *request = run->request;
    char error [AL_DEPLOYER_DETAIL_SIZE];
    run->svc = al_services_find (run->self->services, request->service);
    if (!run->svc) {
        s_fail (run, "service %s is not in services.yaml", request->service);
        return -1;
    }
    if ((int) job->environment <= 0 || (int) job->environment >= S_ENV_SLOTS) {
        s_fail (run, "no environment");
        return -1;
    }
    run->instances = request->instances? request->instances: al_service_instances (run->svc, job->environment);
    run->strategy = request->strategy? request->strategy: al_service_strategy (run->svc, job->environment);
    if (s_record_load (run->self, run->svc->name, job->environment, &run->record, error, sizeof error) != 0) {
        s_fail (run, "release record: %s", error);
        return -1;
    }
    //  A resumed run may find the record already moved by its own receipt step.
    s_release_t *from = &run->record.current;
    if (from->present && strcmp (from->deployment_id, job->deployment_id) == 0)
        from = &run->record.previous;
    run->driver = s_driver (run->self, run->svc, job->environment, error, sizeof error);
    if (!run->driver) {
        s_fail (run, "driver %s: %s", run->svc->driver, error);
        return -1;
    }
    s_format (run->digest_ref, sizeof run->digest_ref, "sha256:%s", request->artifact_sha256);
    //  The kept copy if there is one already (resume); pre-flight keeps it otherwise.
    if (al_artifacts_path (run->self->artifacts, request->artifact_sha256, run->artifact_path,
                           sizeof run->artifact_path, error, sizeof error) != AL_ARTIFACT_OK)
        s_format (run->artifact_path, sizeof run->artifact_path, "%s", request->artifact_uri);
    s_vars (&run->to, run->svc, request->version, run->artifact_path, run->digest_ref, job->environment);
    if (from->present) {
        run->has_from = true;
        s_format (run->from_digest_ref, sizeof run->from_digest_ref, "sha256:%s", from->digest);
        if (s_artifact (run, from->artifact_uri, from->digest, false, run->from_artifact_path,
                        sizeof run->from_artifact_path) != 0)
            run->from_artifact_path [0] = 0;
        run->failure [0] = 0;
        s_vars (&run->from, run->svc, from->version, run->from_artifact_path, run->from_digest_ref, job->environment);
    }
    al_deployer_evidence_dir (run->self, job->deployment_id, run->evidence_dir, sizeof run->evidence_dir);
    if (s_make_dirs (run->evidence_dir, 0700) != 0) {
        s_fail (run, "%s: %s", run->evidence_dir, strerror (errno));
        return -1;
    }
    s_format (run->backup_path, sizeof run->backup_path, "%s/backups/%s/%s.db", run->self->state_dir,
              job->deployment_id, run->svc->name);
    if (run->svc->migrations && !run->set)
        run->set = al_migration_set_load (run->svc->migrations, error, sizeof error);
    return 0;
}

int
al_deployer_run (al_deployer_t *self, const al_deploy_job_t *job, const al_deployer_hooks_t *hooks,
                 al_deploy_result_t *result)
{
    assert (self && job && hooks && hooks->journal && result);
    memset (result, 0, sizeof *result);
    s_run_t run;
    memset (&run, 0, sizeof run);
    run.self = self;
    run.job = job;
    run.hooks = hooks;
    run.result = result;
    run.request = job->request;
    run.soak_samples = json_array ();
    run.checkpoints = json_array ();
    result->outcome = AIRLOCK__OUTCOME__OUTCOME_FAILED;
    s_read_journal (&run);

    //  Already finished: report the recorded outcome again.
    if (run.finished [AIRLOCK__STEP__STEP_RECEIPT]) {
        result->replayed = true;
        result->outcome = run.outcome [AIRLOCK__STEP__STEP_RECEIPT];
        s_format (result->detail, sizeof result->detail, "already finished: %s",
                  al_outcome_name (result->outcome));
        s_format (result->rollback_rule, sizeof result->rollback_rule, "%s", run.rule);
        al_deployer_evidence_dir (self, job->deployment_id, result->receipt_path, sizeof result->receipt_path);
        strncat (result->receipt_path, "/deploy_receipt.json", sizeof result->receipt_path - strlen (result->receipt_path) - 1);
        char error [256];
        if (al_sha256_file_hex (result->receipt_path, result->receipt_sha256, error, sizeof error) != 0)
            result->receipt_sha256 [0] = 0;
        goto cleanup;
    }
    bool prepared = job->request && s_prepare (&run) == 0;
    if (!job->request)
        s_fail (&run, "no deploy request");

    //  Steps that started and never finished were interrupted by a crash.
    bool need_rollback = false;
    bool failed = !prepared;
    const Airlock__Step *path = NULL;
    size_t steps = al_policy_critical_path (self->policy, &path);
    for (size_t i = 0; i < steps && !run.unrecorded; i++) {
        Airlock__Step step = path [i];
        if (step == AIRLOCK__STEP__STEP_RECEIPT)
            continue;
        if (run.started [step] && !run.finished [step]) {
            char detail [AL_DEPLOYER_DETAIL_SIZE];
            s_format (detail, sizeof detail, "interrupted by a restart of deploy-manager; not run again");
            if (s_journal (&run, step, AIRLOCK__OUTCOME__OUTCOME_FAILED, detail) != 0)
                break;
            run.finished [step] = true;
            run.outcome [step] = AIRLOCK__OUTCOME__OUTCOME_FAILED;
            s_format (run.failure, sizeof run.failure, "%s: %s", s_step_name (step), detail);
            if (!run.rule [0])
                s_format (run.rule, sizeof run.rule, "interrupted");
        }
        if (run.finished [step] && run.outcome [step] == AIRLOCK__OUTCOME__OUTCOME_FAILED) {
            failed = true;
            if (step != AIRLOCK__STEP__STEP_PREFLIGHT && step != AIRLOCK__STEP__STEP_BACKUP)
                need_rollback = true;
        }
    }
    if (run.started [AIRLOCK__STEP__STEP_ROLLBACK])
        need_rollback = true;

    //  Go on with the first step not started.
    for (size_t i = 0; i < steps && !failed && !run.unrecorded; i++) {
        Airlock__Step step = path [i];
        if (run.started [step] || step == AIRLOCK__STEP__STEP_RECEIPT)
            continue;
        s_step_fn *fn = step == AIRLOCK__STEP__STEP_PREFLIGHT? s_preflight_fn
                      : step == AIRLOCK__STEP__STEP_BACKUP? s_step_backup
                      : step == AIRLOCK__STEP__STEP_MIGRATE? s_step_migrate
                      : step == AIRLOCK__STEP__STEP_ROLLOUT? s_rollout_fn
                      : s_soak_fn;
        if (s_run_step (&run, step, fn) != 0) {
            failed = true;
            if (step != AIRLOCK__STEP__STEP_PREFLIGHT && step != AIRLOCK__STEP__STEP_BACKUP)
                need_rollback = true;
        }
    }
    if (run.unrecorded)
        goto cleanup;
    Airlock__Outcome outcome = AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED;
    if (need_rollback) {
        bool done = run.finished [AIRLOCK__STEP__STEP_ROLLBACK]
                 && run.outcome [AIRLOCK__STEP__STEP_ROLLBACK] == AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED;
        int rc = done? 0: prepared? s_rollback (&run): -1;
        if (run.unrecorded)
            goto cleanup;
        outcome = rc == 0? AIRLOCK__OUTCOME__OUTCOME_ROLLED_BACK: AIRLOCK__OUTCOME__OUTCOME_FAILED;
        if (rc != 0 && !prepared)
            s_journal (&run, AIRLOCK__STEP__STEP_ROLLBACK, AIRLOCK__OUTCOME__OUTCOME_FAILED, run.failure);
    }
    else
    if (failed)
        outcome = AIRLOCK__OUTCOME__OUTCOME_FAILED;
    if (!prepared) {
        //  Nothing to deploy with (unknown service, unreadable record): a receipt still.
        if (!run.started [AIRLOCK__STEP__STEP_PREFLIGHT]
        &&  (s_journal (&run, AIRLOCK__STEP__STEP_PREFLIGHT, AIRLOCK__OUTCOME__OUTCOME_STARTED, "") != 0
        ||   s_journal (&run, AIRLOCK__STEP__STEP_PREFLIGHT, AIRLOCK__OUTCOME__OUTCOME_FAILED, run.failure) != 0))
            goto cleanup;
        result->outcome = AIRLOCK__OUTCOME__OUTCOME_FAILED;
        s_format (result->detail, sizeof result->detail, "%s", run.failure);
        if (s_journal (&run, AIRLOCK__STEP__STEP_RECEIPT, AIRLOCK__OUTCOME__OUTCOME_STARTED, "failed") == 0)
            s_journal (&run, AIRLOCK__STEP__STEP_RECEIPT, AIRLOCK__OUTCOME__OUTCOME_FAILED,
                       "failed before the critical path could start; no receipt file");
        goto cleanup;
    }
    s_receipt (&run, outcome);
cleanup:
    result->unrecorded = run.unrecorded;
    al_migration_set_destroy (&run.set);
    json_decref (run.soak_samples);
    json_decref (run.smoke);
    json_decref (run.checkpoints);
    return run.unrecorded? -1: 0;
}

//  ---- reconcile ------------------------------------------------------------------------

int
al_deployer_reconcile (al_deployer_t *self, const al_deployer_hooks_t *hooks)
{
    (void) hooks;
    int failures = 0;
    for (size_t i = 0; i < self->service_count; i++) {
        const al_service_t *svc = al_services_at (self->services, i);
        for (int env = 1; env < S_ENV_SLOTS; env++) {
            s_record_t record;
            char error [AL_DEPLOYER_DETAIL_SIZE];
            if (s_record_load (self, svc->name, (Airlock__Environment) env, &record, error, sizeof error) != 0) {
                zsys_error ("deploy-manager: %s", error);
                failures++;
                continue;
            }
            if (!record.current.present)
                continue;
            al_driver_t *driver = s_driver (self, svc, (Airlock__Environment) env, error, sizeof error);
            char path [S_PATH_SIZE], digest_ref [80];
            if (!driver
            ||  al_artifacts_path (self->artifacts, record.current.digest, path, sizeof path, error, sizeof error)
                    != AL_ARTIFACT_OK) {
                if (driver && strcmp (svc->driver, "process") != 0)
                    s_format (path, sizeof path, "%s", record.current.artifact_uri);
                else {
                    zsys_error ("deploy-manager: %s/%s: %s", svc->name, al_environment_name ((Airlock__Environment) env), error);
                    failures++;
                    continue;
                }
            }
            s_format (digest_ref, sizeof digest_ref, "sha256:%s", record.current.digest);
            al_driver_vars_t vars;
            s_vars (&vars, svc, record.current.version, path, digest_ref, (Airlock__Environment) env);
            al_rollout_plan_t plan;
            memset (&plan, 0, sizeof plan);
            plan.strategy = AIRLOCK__STRATEGY__STRATEGY_ROLLING;
            plan.instances = record.current.instances? record.current.instances: al_service_instances (svc, (Airlock__Environment) env);
            plan.batch_size = svc->batch_size;
            plan.max_unavailable = svc->max_unavailable;
            plan.max_surge = svc->max_surge;
            plan.probe_interval_ms = svc->probe_interval_ms;
            plan.ready_timeout_ms = svc->ready_timeout_ms;
            plan.stop_grace_ms = svc->stop_timeout_ms;
            if (al_rollout_ensure (driver, &plan, &vars, error, sizeof error) != AL_ROLLOUT_OK) {
                zsys_error ("deploy-manager: %s/%s: cannot restore %s: %s", svc->name,
                            al_environment_name ((Airlock__Environment) env), record.current.version, error);
                failures++;
            }
            else
                zsys_info ("deploy-manager: %s/%s: %s runs on %u instance(s)", svc->name,
                           al_environment_name ((Airlock__Environment) env), record.current.version, plan.instances);
        }
    }
    return failures;
}
