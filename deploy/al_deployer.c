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
#include "base/al_text.h"
#include "deploy/al_artifacts.h"
#include "deploy/al_driver.h"
#include "deploy/al_migrate.h"
#include "deploy/al_qa_reports.h"
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

typedef struct {
    bool present;
    char version [128];
    char digest [65];               // bare hex
    char artifact_uri [S_PATH_SIZE];
    char deployment_id [72];
    unsigned instances;
} s_release_t;

typedef struct {
    s_release_t current;
    s_release_t previous;
} s_record_t;

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

static uint64_t
s_real_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

static uint64_t
s_mono_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

static int
s_mkdirs (const char *path, mode_t mode)
{
    char buffer [S_PATH_SIZE];
    if (strlen (path) >= sizeof buffer)
        return -1;
    s_format (buffer, sizeof buffer, "%s", path);
    for (char *slash = buffer + 1; *slash; slash++) {
        if (*slash != '/')
            continue;
        *slash = 0;
        if (mkdir (buffer, mode) != 0 && errno != EEXIST)
            return -1;
        *slash = '/';
    }
    if (mkdir (buffer, mode) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

//  Write root as JSON to dir/name atomically; the file's SHA-256 in sha256 (may be NULL).
static int
s_write_json (const char *dir, const char *name, json_t *root, char sha256 [65],
              char *error, size_t error_size)
{
    char path [S_PATH_SIZE], temp [S_PATH_SIZE + 16];
    s_format (path, sizeof path, "%s/%s", dir, name);
    s_format (temp, sizeof temp, "%s.tmp", path);
    char *text = json_dumps (root, JSON_INDENT (2) | JSON_SORT_KEYS);
    int rc = -1;
    int fd = -1;
    if (!text) {
        s_format (error, error_size, "%s: cannot encode JSON", path);
        goto cleanup;
    }
    fd = open (temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    size_t size = strlen (text);
    if (fd < 0
    ||  write (fd, text, size) != (ssize_t) size
    ||  write (fd, "\n", 1) != 1
    ||  fsync (fd) != 0) {
        s_format (error, error_size, "%s: %s", temp, strerror (errno));
        goto cleanup;
    }
    close (fd);
    fd = -1;
    if (rename (temp, path) != 0) {
        s_format (error, error_size, "%s: %s", path, strerror (errno));
        goto cleanup;
    }
    int dir_fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd >= 0) {
        fsync (dir_fd);
        close (dir_fd);
    }
    if (sha256 && al_sha256_file_hex (path, sha256, error, error_size) != 0)
        goto cleanup;
    rc = 0;
cleanup:
    if (fd >= 0) {
        close (fd);
        unlink (temp);
    }
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

static void
s_record_path (const al_deployer_t *self, const char *service, Airlock__Environment env,
               char *path, size_t path_size)
{
    s_format (path, path_size, "%s/releases/%s/%s.json", self->state_dir, service, s_env_name (env));
}

static void
s_release_from_json (json_t *object, s_release_t *release)
{
    memset (release, 0, sizeof *release);
    if (!json_is_object (object))
        return;
    const char *version = json_string_value (json_object_get (object, "version"));
    const char *digest = json_string_value (json_object_get (object, "artifact_sha256"));
    const char *uri = json_string_value (json_object_get (object, "artifact_uri"));
    const char *id = json_string_value (json_object_get (object, "deployment_id"));
    json_t *instances = json_object_get (object, "instances");
    if (!version || !digest || !uri)
        return;
    release->present = true;
    s_format (release->version, sizeof release->version, "%s", version);
    s_format (release->digest, sizeof release->digest, "%s", digest);
    s_format (release->artifact_uri, sizeof release->artifact_uri, "%s", uri);
    s_format (release->deployment_id, sizeof release->deployment_id, "%s", id? id: "");
    release->instances = json_is_integer (instances)? (unsigned) json_integer_value (instances): 0;
}

static json_t *
s_release_to_json (const s_release_t *release)
{
    if (!release->present)
        return json_null ();
    return json_pack ("{s:s, s:s, s:s, s:s, s:i}", "version", release->version,
                      "artifact_sha256", release->digest, "artifact_uri", release->artifact_uri,
                      "deployment_id", release->deployment_id, "instances", (int) release->instances);
}

//  A missing record is "nothing deployed yet"; an unreadable one is an error: we
//  would not know what to roll back to.
static int
s_record_load (const al_deployer_t *self, const char *service, Airlock__Environment env,
               s_record_t *record, char *error, size_t error_size)
{
    memset (record, 0, sizeof *record);
    char path [S_PATH_SIZE];
    s_record_path (self, service, env, path, sizeof path);
    if (access (path, F_OK) != 0)
        return 0;
    json_error_t parse_error;
    json_t *root = json_load_file (path, 0, &parse_error);
    if (!root) {
        s_format (error, error_size, "%s:%d: %s", path, parse_error.line, parse_error.text);
        return -1;
    }
    s_release_from_json (json_object_get (root, "current"), &record->current);
    s_release_from_json (json_object_get (root, "previous"), &record->previous);
    json_decref (root);
    if (!record->current.present) {
        s_format (error, error_size, "%s: no current release in the record", path);
        return -1;
    }
    return 0;
}

static int
s_record_save (const al_deployer_t *self, const char *service, Airlock__Environment env,
               const s_record_t *record, char *error, size_t error_size)
{
    char path [S_PATH_SIZE], dir [S_PATH_SIZE];
    s_record_path (self, service, env, path, sizeof path);
    s_format (dir, sizeof dir, "%s", path);
    *strrchr (dir, '/') = 0;
    if (s_mkdirs (dir, 0700) != 0) {
        s_format (error, error_size, "%s: %s", dir, strerror (errno));
        return -1;
    }
    json_t *root = json_pack ("{s:s, s:s, s:s, s:o, s:o}", "format", "airlock-release-record-v1",
                              "service", service, "environment", s_env_name (env),
                              "current", s_release_to_json (&record->current),
                              "previous", s_release_to_json (&record->previous));
    const char *name = strrchr (path, '/') + 1;
    int rc = s_write_json (dir, name, root, NULL, error, error_size);
    json_decref (root);
    return rc;
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
    if (s_mkdirs (state_dir, 0700) != 0) {
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
    s_format (dir, sizeof dir, "%s/drivers/%s/%s", self->state_dir, svc->name, s_env_name (env));
    s_format (state_file, sizeof state_file, "%s/instances.json", dir);
    if (s_mkdirs (dir, 0700) != 0) {
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
    unsigned checkpoints_passed;            // the policy's soak checkpoints passed
} s_run_t;

static uint64_t
s_now (const s_run_t *run)
{
    return run->hooks->now_ms? run->hooks->now_ms (run->hooks->arg): s_real_now_ms ();
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
    uint64_t now = s_mono_ms ();
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

//  Watch the new release for duration_ms: probes every interval, rollback triggers.
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
    uint64_t start = s_mono_ms ();
    uint64_t deadline = start + (uint64_t) (duration_ms > 0? duration_ms: 0);
    //  The monitor's golden signals, scraped or read through the Prometheus provider.
    bool monitored = run->svc->signals != AL_SERVICE_SIGNALS_PROBES;
    uint64_t max_age = (uint64_t) al_policy_signal_max_age_s (run->self->policy) * 1000;
    //  The policy's soak checkpoints (quality_rules.yaml, already scaled) that fall in
    //  this soak are reported as they pass (the main soak only).
    const al_policy_soak_t *policy_soak = al_policy_soak (run->self->policy);
    size_t checkpoint = 0;
    do {
        if (s_trigger (run))
            return -1;
        if (monitored && s_stale (run, start, max_age, false))
            return -1;
        while (percent == 100 && policy_soak && checkpoint < policy_soak->checkpoint_count
        &&     policy_soak->checkpoints_ms [checkpoint] <= duration_ms
        &&     s_mono_ms () - start >= (uint64_t) policy_soak->checkpoints_ms [checkpoint]) {
            run->checkpoints_passed++;
            s_progress (run, AIRLOCK__STEP__STEP_SOAK, AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED, 0, run->instances,
                        (unsigned) (policy_soak->checkpoints_ms [checkpoint] * 100 / (duration_ms > 0? duration_ms: 1)),
                        "checkpoint %zu of %zu passed at %.1f s: no rule breached", checkpoint + 1,
                        policy_soak->checkpoint_count, (double) policy_soak->checkpoints_ms [checkpoint] / 1000.0);
            checkpoint++;
        }
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
        uint64_t elapsed = s_mono_ms () - start;
        unsigned share = duration_ms > 0? (unsigned) (elapsed * 100 / (uint64_t) duration_ms): 100;
        s_progress (run, AIRLOCK__STEP__STEP_SOAK, AIRLOCK__OUTCOME__OUTCOME_STARTED, 0, run->instances,
                    share > 100? 100: share, "%s: %u probes, %u failed", what, run->probes_run, run->probes_failed);
        if (s_mono_ms () >= deadline) {
            //  No promotion without evidence: the soak must have seen the monitor's
            //  samples (a canary step's short soak only checks they are not stale).
            if (monitored && s_stale (run, start, max_age, percent == 100))
                return -1;
            break;
        }
        uint64_t left = deadline - s_mono_ms ();
        zclock_sleep ((int) (left < (uint64_t) interval? left: (uint64_t) interval));
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

static json_t *
s_check (json_t *checks, const char *name, bool ok, const char *format, ...) __attribute__ ((format (printf, 4, 5)));

static json_t *
s_check (json_t *checks, const char *name, bool ok, const char *format, ...)
{
    char detail [AL_DEPLOYER_DETAIL_SIZE];
    va_list args;
    va_start (args, format);
    vsnprintf (detail, sizeof detail, format, args);
    va_end (args);
    json_array_append_new (checks, json_pack ("{s:s, s:b, s:s}", "check", name, "ok", ok, "detail", detail));
    return checks;
}

static bool
s_checks_ok (json_t *checks, char *first, size_t first_size)
{
    size_t index;
    json_t *check;
    json_array_foreach (checks, index, check) {
        if (!json_is_true (json_object_get (check, "ok"))) {
            s_format (first, first_size, "%s: %s", json_string_value (json_object_get (check, "check")),
                      json_string_value (json_object_get (check, "detail")));
            return false;
        }
    }
    return true;
}

//  The report the approvers signed for: opened from the qa agent's store, its bytes
//  hashed again, and it must say approved for the very artifact deployed. The digest
//  alone proves nothing (anyone can name one); fail closed on anything else.
static void
s_check_qa_report (s_run_t *run, json_t *checks, const Airlock__ApprovalRequest *signed_request)
{
    const char *digest = signed_request->qa_report_sha256;
    char reason [AL_DEPLOYER_DETAIL_SIZE];
    bool ok = false;
    if (!*run->self->qa_reports)
        s_format (reason, sizeof reason, "QA report %.64s cannot be opened: deploy-manager knows no QA report store",
                  digest);
    else
        ok = al_qa_reports_approves (run->self->qa_reports, digest, run->request->artifact_sha256,
                                     reason, sizeof reason);
    //  An approved report over the security scan limits (as loaded now) still refuses.
    char scan [AL_DEPLOYER_DETAIL_SIZE] = "";
    if (ok) {
        char summary [AL_DEPLOYER_DETAIL_SIZE];
        al_qa_reports_scan_t verdict = al_qa_reports_scan (run->self->qa_reports, digest,
                                                           al_policy_scan_limits (run->self->policy), summary,
                                                           sizeof summary);
        ok = verdict == AL_QA_REPORTS_SCAN_NONE || verdict == AL_QA_REPORTS_SCAN_WITHIN;
        s_format (scan, sizeof scan, "; security scan: %s", summary);
    }
    s_check (checks, "qa_report_approved", ok, "%s%s%s", reason, scan, ok? ", bound by the approvers' signatures": "");
}

static int
s_step_preflight (s_run_t *run)
{
    const al_policy_t *policy = run->self->policy;
    const Airlock__DeployRequest *request = run->request;
    Airlock__Environment env = run->job->environment;
    json_t *checks = json_array ();
    char reason [AL_DEPLOYER_DETAIL_SIZE];
    uint64_t now = s_now (run);

    //  The grant (production), verified here again whatever the caller did.
    if (env == AIRLOCK__ENVIRONMENT__ENV_PRODUCTION) {
        bool ok = run->job->execute
               && al_gate_verify_grant (policy, env, run->job->execute, now, reason, sizeof reason);
        s_check (checks, "production_grant", ok, "%s", ok? "signed approvals verified for this artifact"
                 : run->job->execute? reason: "no ExecuteDeploy with a grant");
        const Airlock__ProductionGrant *grant = run->job->execute? run->job->execute->grant: NULL;
        bool qa = grant && grant->request && !al_gate_no_qa_report (grant->request);
        if (!qa && !al_policy_requires_staging (policy, run->request->deployment_type))
            s_check (checks, "qa_report_approved", true, "%s deployments need no new QA report (deployment_types.yaml)",
                     al_deployment_type_name (run->request->deployment_type)?
                     al_deployment_type_name (run->request->deployment_type): "these");
        else
        if (!qa && ok && al_policy_skip_staging_quorum (policy, run->request->deployment_type).count > 0)
            //  al_gate_verify_grant counted the skip-staging approvals into the quorum.
            s_check (checks, "qa_report_approved", true, "staging skipped: the grant carries the extra approvals "
                     "deployment_types.yaml names to skip it (skip_staging_quorum)");
        else
        if (!qa)
            s_check (checks, "qa_report_approved", false, "the grant names no approved QA report");
        else
            s_check_qa_report (run, checks, grant->request);
    }
    else
        s_check (checks, "qa_report_approved", true, "not required before %s: QA validates this deploy", s_env_name (env));

    //  Constraints: strategy, instances, budget.
    bool allowed = al_policy_strategy_allowed (policy, env, run->strategy);
    s_check (checks, "strategy_allowed", allowed, "%s in %s%s", al_strategy_name (run->strategy)?
             al_strategy_name (run->strategy): "unspecified", s_env_name (env),
             allowed? "": " is not allowed by constraints.yaml");
    unsigned max = al_policy_max_instances (policy, env);
    s_check (checks, "max_instances", run->instances >= 1 && run->instances <= max,
             "%u instance(s), constraints.yaml allows %u", run->instances, max);
    double budget = al_policy_monthly_budget_usd (policy, env);
    double cost = run->instances * run->svc->cost_per_instance_usd_month;
    s_check (checks, "monthly_budget", cost <= budget, "%.2f USD/month for %u instance(s), budget %.2f",
             cost, run->instances, budget);

    //  Calendar: freezes and windows.
    time_t now_s = (time_t) (now / 1000);
    char explanation [256] = "";
    al_policy_freeze_t freeze = al_policy_freeze_check (policy, env, now_s, explanation, sizeof explanation);
    bool break_glass = false;
    if (run->job->execute && run->job->execute->grant)
        for (size_t i = 0; i < run->job->execute->grant->n_approvals; i++) {
            Airlock__ApprovalStatement *statement = NULL;
            char error [128];
            const Airlock__SignedApproval *approval = run->job->execute->grant->approvals [i];
            if (al_statement_unpack (approval->statement.data, approval->statement.len, &statement,
                                     error, sizeof error) == AL_SIG_OK && statement->break_glass)
                break_glass = true;
            if (statement)
                airlock__approval_statement__free_unpacked (statement, NULL);
        }
    s_check (checks, "freeze", freeze != AL_POLICY_FREEZE_ACTIVE || break_glass, "%s%s",
             explanation [0]? explanation: "no freeze", freeze == AL_POLICY_FREEZE_ACTIVE && break_glass?
             " (break-glass signed)": "");
    Airlock__DeploymentType type = request->deployment_type;
    if (al_policy_requires_window (policy, type)) {
        bool open = al_policy_window_open (policy, env, now_s, explanation, sizeof explanation);
        s_check (checks, "deploy_window", open, "%s", explanation);
    }
    else
        s_check (checks, "deploy_window", true, "%s deployments need no window", al_deployment_type_name (type)?
                 al_deployment_type_name (type): "these");
    //  A scheduled request's own window: the deploy must start inside it, whenever the
    //  grant was given (the gate checked it at the grant; a deploy-manager busy or
    //  restarting may start later).
    const Airlock__ApprovalRequest *approved = env == AIRLOCK__ENVIRONMENT__ENV_PRODUCTION && run->job->execute
        && run->job->execute->grant? run->job->execute->grant->request: NULL;
    if (approved && approved->window_end_ms) {
        bool inside = now >= approved->window_start_ms && now < approved->window_end_ms;
        s_check (checks, "scheduled_window", inside, "%s the request's window (%llu..%llu ms, now %llu)",
                 inside? "inside": "outside", (unsigned long long) approved->window_start_ms,
                 (unsigned long long) approved->window_end_ms, (unsigned long long) now);
    }

    //  The artifact: bit for bit what was approved, kept for rollback.
    if (s_artifact (run, request->artifact_uri, request->artifact_sha256, true,
                    run->artifact_path, sizeof run->artifact_path) == 0)
        s_check (checks, "artifact_digest", true, "%s is sha256:%s", request->artifact_uri, request->artifact_sha256);
    else
        s_check (checks, "artifact_digest", false, "%s", run->failure);
    if (run->has_from) {
        s_check (checks, "previous_version_retained", run->from_artifact_path [0] != 0,
                 "%s (sha256:%s)", run->record.current.version, run->record.current.digest);
        //  Versions tell releases apart (instances, rollback targets): a release of the
        //  version that already runs is refused here, before anything is touched.
        bool same = strcmp (run->record.current.version, request->version) == 0
                 && strcmp (run->record.current.deployment_id, run->job->deployment_id) != 0;
        s_check (checks, "new_version", !same, same? "%s already runs in %s (deployment %s): give the release "
                 "a new version": "%s replaces %s", request->version, same? s_env_name (env): run->record.current.version,
                 run->record.current.deployment_id);
    }

    //  A rollback goes back to what ran before, nothing else: its type needs neither
    //  staging nor QA nor a manager, so a "rollback" to a new artifact must not pass.
    if (request->deployment_type == AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_ROLLBACK) {
        const s_release_t *previous = &run->record.previous;
        bool back = previous->present && strcmp (previous->digest, request->artifact_sha256) == 0
                 && strcmp (previous->version, request->version) == 0;
        s_check (checks, "rollback_target", back, back? "%s (sha256:%s) ran here before %s": previous->present?
                 "a rollback must return to %s (sha256:%s), the release that ran before %s": "%s%snothing ran "
                 "before %s here: there is nothing to roll back to", previous->present? previous->version: "",
                 previous->present? previous->digest: "", run->has_from? run->record.current.version: "this deploy");
    }

    //  Migrations: the set is the one approved; reversible in production.
    const char *wanted = request->migration_set_sha256? request->migration_set_sha256: "";
    if (run->svc->migrations) {
        char error [512] = "cannot load";
        if (!run->set)
            run->set = al_migration_set_load (run->svc->migrations, error, sizeof error);
        if (!run->set)
            s_check (checks, "migration_set", false, "%s", error);
        else {
            const char *digest = al_migration_set_digest (run->set);
            s_check (checks, "migration_set", strcmp (digest, wanted) == 0, "%s has digest %s, the request names %s",
                     run->svc->migrations, digest, *wanted? wanted: "none");
            bool production = env == AIRLOCK__ENVIRONMENT__ENV_PRODUCTION;
            int reversible = al_migration_set_check_reversible (run->set, production, error, sizeof error);
            s_check (checks, "migrations_reversible", reversible == 0, "%s", error [0]? error: "every step has a down script or is forward-only");
        }
    }
    else
        s_check (checks, "migration_set", *wanted == 0, "%s", *wanted? "the request names a migration set "
                 "but services.yaml has none for this service": "no migrations");

    //  Observability prerequisites: the probes the soak and the monitor rely on, and the
    //  monitor itself when the soak depends on its signals.
    if (run->svc->signals != AL_SERVICE_SIGNALS_PROBES) {
        char detail [256] = "no monitor is connected";
        bool alive = run->hooks->monitor_alive
                  && run->hooks->monitor_alive (run->hooks->arg, detail, sizeof detail);
        s_check (checks, "monitor", alive, "%s", detail);
    }
    s_check (checks, "observability", run->svc->liveness_path && run->svc->readiness_path && run->svc->metrics_path,
             "liveness %s, readiness %s, metrics %s", run->svc->liveness_path? run->svc->liveness_path: "(none)",
             run->svc->readiness_path? run->svc->readiness_path: "(none)",
             run->svc->metrics_path? run->svc->metrics_path: "(none)");

    //  The driver's own prerequisites (connectivity, programs, ports).
    al_driver_report_t *report = al_driver_report_new ();
    char error [512] = "";
    al_driver_status_t status = al_driver_prerequisites (run->driver, &run->to, report, error, sizeof error);
    for (size_t i = 0; i < al_driver_report_size (report); i++) {
        bool ok = false;
        const char *detail = NULL;
        const char *name = al_driver_report_check (report, i, &ok, &detail);
        s_check (checks, name, ok, "%s", detail? detail: "");
    }
    if (status != AL_DRIVER_OK && al_driver_report_failures (report) == 0)
        s_check (checks, "driver", false, "%s", error);
    al_driver_report_destroy (&report);

    json_t *root = json_pack ("{s:s, s:s, s:s, s:s, s:I, s:o}", "deployment_id", run->job->deployment_id,
                              "service", run->svc->name, "environment", s_env_name (env),
                              "driver", run->svc->driver, "time_ms", (json_int_t) now, "checks", checks);
    bool ok = s_checks_ok (checks, reason, sizeof reason);
    char write_error [512];
    if (s_write_json (run->evidence_dir, "connectivity-report.json", root, NULL, write_error, sizeof write_error) != 0) {
        ok = false;
        s_format (reason, sizeof reason, "evidence: %s", write_error);
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
    if (s_mkdirs (dir, 0700) != 0) {
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
    char error [AL_DEPLOYER_DETAIL_SIZE];
    al_rollout_status_t status = al_rollout_run (run->driver, &plan, run->has_from? &run->from: NULL,
                                                 &run->to, error, sizeof error);
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

static int
s_step_soak (s_run_t *run)
{
    int64_t duration = run->svc->soak_ms;
    const al_policy_soak_t *soak = al_policy_soak (run->self->policy);
    if (soak && soak->duration_ms > 0 && soak->duration_ms < duration)
        duration = soak->duration_ms;
    int rc = s_soak (run, duration, 100, "soak");
    if (rc == 0)
        s_format (run->failure, sizeof run->failure, "held %lld ms: %u checkpoint(s) passed, %u probe(s), %u failed",
                  (long long) duration, run->checkpoints_passed, run->probes_run, run->probes_failed);
    json_t *root = json_pack ("{s:s, s:s, s:s, s:I, s:i, s:i, s:i, s:b, s:s, s:O}", "deployment_id", run->job->deployment_id,
                              "service", run->svc->name, "version", run->to.version,
                              "soak_ms", (json_int_t) duration, "checkpoints_passed", (int) run->checkpoints_passed,
                              "probes", (int) run->probes_run,
                              "failed", (int) run->probes_failed, "passed", rc == 0, "rule", run->rule,
                              "rounds", run->soak_samples);
    char error [512];
    if (s_write_json (run->evidence_dir, "smoke-test-results.json", root, NULL, error, sizeof error) != 0)
        zsys_warning ("deploy-manager: %s", error);
    json_decref (root);
    if (rc == 0)
        s_health_report (run, "health-check-report.json");
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
    json_t *done = json_array ();
    for (size_t i = 0; i < al_policy_done_count (run->self->policy); i++) {
        const char *id = al_policy_done_id (run->self->policy, i);
        bool checked = outcome == AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED;
        if (strcmp (id, "approvals_valid") == 0 || strcmp (id, "qa_approved") == 0)
            checked = checked && env == AIRLOCK__ENVIRONMENT__ENV_PRODUCTION;
        json_array_append_new (done, json_pack ("{s:s, s:s, s:b}", "id", id,
                                                "text", al_policy_done_text (run->self->policy, i), "done", checked));
    }
    const Airlock__ProductionGrant *grant = run->job->execute? run->job->execute->grant: NULL;
    json_t *receipt = json_pack ("{s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s, s:s}, s:s, s:s, s:i, s:s, s:s, s:s,"
                                 " s:o, s:o, s:o, s:{s:s, s:i, s:i, s:f, s:s}, s:o, s:o}",
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
        "definition_of_done", done,
        "rollback_trigger", s_trigger_json (run, outcome));
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
    if (s_mkdirs (run->evidence_dir, 0700) != 0) {
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
