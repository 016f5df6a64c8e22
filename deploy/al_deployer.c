/*  al_deployer.c: the critical path, journaled, resumable, with fast rollback.

    See al_deployer.h for the contract. This file holds the deployer object (its drivers,
    one per service and environment), the release records, the journal's parser and
    reconcile. A run is split by concern:

      al_deployer_run.c      al_deployer_run: read the journal (which steps finished, which
                             one was interrupted), prepare, then each step through
                             s_run_step, which records "started", runs it and records its
                             outcome; a record that fails sets run->unrecorded and nothing
                             else runs
      al_deployer_steps.c    al_deployer_step_*: one function per step; each returns 0
                             (succeeded or skipped) or -1 (failed, with its reason in
                             run->failure); al_deployer_rollback stops the new release,
                             brings back the recorded one, undoes the data
      al_deployer_soak.c     the soak: probe rounds, the monitor's evidence, checkpoints
      al_deployer_receipt.c  promote (on success), write the evidence and deploy_receipt.json

    Evidence JSON is written with jansson to a temporary file, fsynced and renamed, so a
    crash leaves the previous file or the new one, never half of one.
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

//  Longest state directory accepted: every path built below it (names of at most 64
//  characters) then fits AL_DEPLOYER_PATH_SIZE, so no path is ever cut short.
#define S_STATE_DIR_MAX 640

//  mkdir -p (al_file), errno set on failure for the callers' messages.
int
al_deployer_make_dirs (const char *path, mode_t mode)
{
    char error [256];
    return al_file_make_directories (path, mode, error, sizeof error);
}

//  Write root as JSON to dir/name atomically; the file's SHA-256 in sha256 (may be NULL).
int
al_deployer_write_json (const char *dir, const char *name, json_t *root, char sha256 [65],
                        char *error, size_t error_size)
{
    char path [AL_DEPLOYER_PATH_SIZE];
    al_error_set (path, sizeof path, "%s/%s", dir, name);
    char *text = json_dumps (root, JSON_INDENT (2) | JSON_SORT_KEYS);
    int rc = -1;
    if (!text) {
        al_error_set (error, error_size, "%s: cannot encode JSON", path);
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

const char *
al_deployer_env_name (Airlock__Environment env)
{
    const char *name = al_environment_name (env);
    return name? name: "unspecified";
}

const char *
al_deployer_step_name (Airlock__Step step)
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
        al_error_set (error, error_size, "journal: not a JSON object (%s)", root? "wrong type": parse_error.text);
        goto cleanup;
    }
    json_t *problem = json_object_get (root, "error");
    if (problem) {
        al_error_set (error, error_size, "journal: the broker says: %s",
                      json_is_string (problem)? json_string_value (problem): "error");
        goto cleanup;
    }
    const char *id = json_string_value (json_object_get (root, "deployment_id"));
    json_t *entries = json_object_get (root, "entries");
    if (!id || strcmp (id, deployment_id) != 0 || !json_is_array (entries)) {
        al_error_set (error, error_size, "journal: not the journal of deployment %s", deployment_id);
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
            al_error_set (error, error_size, "journal: entry %zu of deployment %s is not understood (step '%s', status '%s')",
                          i + 1, deployment_id, step? step: "?", status? status: "?");
            al_deploy_journal_clear (journal);
            goto cleanup;
        }
        record->time_ms = (uint64_t) json_integer_value (time);
        al_error_set (record->detail, sizeof record->detail, "%s", detail? detail: "");
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
    if (al_release_record_path (self->state_dir, service, al_deployer_env_name (env), path, path_size))
        return true;
    al_error_set (error, error_size, "%s/%s: no release record path for this service name", service, al_deployer_env_name (env));
    return false;
}

//  A missing record is "nothing deployed yet"; an unreadable one is an error: we
//  would not know what to roll back to.
int
al_deployer_record_load (const al_deployer_t *self, const char *service, Airlock__Environment env,
                         al_release_record_t *record, char *error, size_t error_size)
{
    char path [AL_DEPLOYER_PATH_SIZE];
    memset (record, 0, sizeof *record);
    if (!s_record_path (self, service, env, path, sizeof path, error, error_size))
        return -1;
    return al_release_record_load (path, record, error, error_size);
}

int
al_deployer_record_save (const al_deployer_t *self, const char *service, Airlock__Environment env,
                         const al_release_record_t *record, char *error, size_t error_size)
{
    char path [AL_DEPLOYER_PATH_SIZE];
    if (!s_record_path (self, service, env, path, sizeof path, error, error_size))
        return -1;
    return al_release_record_save (path, service, al_deployer_env_name (env), record, error, error_size);
}

//  ---- the deployer -------------------------------------------------------------------

al_deployer_t *
al_deployer_new (const al_policy_t *policy, const al_services_t *services, const char *state_dir,
                 char *error, size_t error_size)
{
    assert (policy && services && state_dir);
    if (strlen (state_dir) > S_STATE_DIR_MAX || state_dir [0] != '/') {
        al_error_set (error, error_size, "%s: the deploy state directory must be an absolute path of at most %d characters",
                      state_dir, S_STATE_DIR_MAX);
        return NULL;
    }
    al_deployer_t *self = (al_deployer_t *) calloc (1, sizeof *self);
    assert (self);
    self->policy = policy;
    self->services = services;
    al_error_set (self->state_dir, sizeof self->state_dir, "%s", state_dir);
    self->service_count = al_services_count (services);
    self->drivers = (al_driver_t **) calloc (self->service_count * AL_DEPLOYER_ENV_SLOTS + 1, sizeof *self->drivers);
    assert (self->drivers);
    char path [AL_DEPLOYER_PATH_SIZE];
    al_error_set (path, sizeof path, "%s/artifacts", state_dir);
    if (al_deployer_make_dirs (state_dir, 0700) != 0) {
        al_error_set (error, error_size, "%s: %s", state_dir, strerror (errno));
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
    al_error_set (self->qa_reports, sizeof self->qa_reports, "%s", dir);
}

void
al_deployer_destroy (al_deployer_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    al_deployer_t *self = *self_p;
    for (size_t i = 0; self->drivers && i < self->service_count * AL_DEPLOYER_ENV_SLOTS; i++)
        al_driver_destroy (&self->drivers [i]);
    free (self->drivers);
    al_artifacts_destroy (&self->artifacts);
    free (self);
    *self_p = NULL;
}

void
al_deployer_evidence_dir (const al_deployer_t *self, const char *deployment_id, char *path, size_t path_size)
{
    al_error_set (path, path_size, "%s/.artifacts/deployment/%s", self->state_dir, deployment_id);
}

void
al_deployer_current (al_deployer_t *self, const char *service, Airlock__Environment env,
                     char *version, size_t version_size)
{
    al_release_record_t record;
    char error [256];
    *version = 0;
    if (al_deployer_record_load (self, service, env, &record, error, sizeof error) == 0 && record.current.present)
        al_error_set (version, version_size, "%s", record.current.version);
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
al_driver_t *
al_deployer_driver (al_deployer_t *self, const al_service_t *svc, Airlock__Environment env,
                    char *error, size_t error_size)
{
    assert ((int) env > 0 && (int) env < AL_DEPLOYER_ENV_SLOTS);
    al_driver_t **slot = &self->drivers [s_service_index (self, svc) * AL_DEPLOYER_ENV_SLOTS + (size_t) env];
    if (*slot)
        return *slot;
    char dir [AL_DEPLOYER_PATH_SIZE], state_file [AL_DEPLOYER_PATH_SIZE + 32];
    if (!al_instances_dir (self->state_dir, svc->name, al_deployer_env_name (env), dir, sizeof dir)
    ||  !al_instances_path (self->state_dir, svc->name, al_deployer_env_name (env), state_file, sizeof state_file)) {
        al_error_set (error, error_size, "%s/%s: no instance registry path for this service", svc->name, al_deployer_env_name (env));
        return NULL;
    }
    if (al_deployer_make_dirs (dir, 0700) != 0) {
        al_error_set (error, error_size, "%s: %s", dir, strerror (errno));
        return NULL;
    }
    al_driver_config_t config;
    al_service_driver_config (svc, dir, &config);
    config.state_file = state_file;
    *slot = al_driver_open (svc->driver, &config, error, error_size);
    if (*slot && al_driver_stale_stopped (*slot) > 0)
        zsys_warning ("deploy-manager: %s/%s: stopped %zu instance(s) left by a previous run",
                      svc->name, al_deployer_env_name (env), al_driver_stale_stopped (*slot));
    return *slot;
}


//  ---- reconcile ------------------------------------------------------------------------

int
al_deployer_reconcile (al_deployer_t *self, const al_deployer_hooks_t *hooks)
{
    (void) hooks;
    int failures = 0;
    for (size_t i = 0; i < self->service_count; i++) {
        const al_service_t *svc = al_services_at (self->services, i);
        for (int env = 1; env < AL_DEPLOYER_ENV_SLOTS; env++) {
            al_release_record_t record;
            char error [AL_DEPLOYER_DETAIL_SIZE];
            if (al_deployer_record_load (self, svc->name, (Airlock__Environment) env, &record, error, sizeof error) != 0) {
                zsys_error ("deploy-manager: %s", error);
                failures++;
                continue;
            }
            if (!record.current.present)
                continue;
            al_driver_t *driver = al_deployer_driver (self, svc, (Airlock__Environment) env, error, sizeof error);
            char path [AL_DEPLOYER_PATH_SIZE], digest_ref [80];
            if (!driver
            ||  al_artifacts_path (self->artifacts, record.current.digest, path, sizeof path, error, sizeof error)
                    != AL_ARTIFACT_OK) {
                if (driver && strcmp (svc->driver, "process") != 0)
                    al_error_set (path, sizeof path, "%s", record.current.artifact_uri);
                else {
                    zsys_error ("deploy-manager: %s/%s: %s", svc->name, al_environment_name ((Airlock__Environment) env), error);
                    failures++;
                    continue;
                }
            }
            al_error_set (digest_ref, sizeof digest_ref, "sha256:%s", record.current.digest);
            al_driver_vars_t vars;
            al_deployer_vars (&vars, svc, record.current.version, path, digest_ref, (Airlock__Environment) env);
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
