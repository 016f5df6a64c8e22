/*  al_deployer_run.c: one run of the critical path and its journal.

    al_deployer_run reads the journal (which steps finished, which one was interrupted),
    prepares what every step needs, then runs each step through s_run_step, which records
    "started", runs it and records its outcome; a record that fails sets run->unrecorded
    and nothing else runs. Also the run's helpers every step uses: the clock, failures,
    journal records, progress and rollback triggers. See al_deployer.c for the map.
*/
#include "deploy/al_deployer_int.h"
#include "deploy/al_deploy_receipt.h"
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

uint64_t
al_deployer_now (const al_deployer_run_t *run)
{
    return run->hooks->now_ms? run->hooks->now_ms (run->hooks->arg): (uint64_t) al_clock_wall_ms ();
}

void
al_deployer_fail (al_deployer_run_t *run, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    al_error_vset (run->failure, sizeof run->failure, format, args);
    va_end (args);
}

static al_deploy_step_t *
s_result_step (al_deployer_run_t *run, Airlock__Step step)
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

int
al_deployer_journal (al_deployer_run_t *run, Airlock__Step step, Airlock__Outcome outcome, const char *detail)
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
                    run->job->deployment_id, al_deployer_step_name (step), al_outcome_name (outcome));
        return -1;
    }
    al_deploy_step_t *entry = s_result_step (run, step);
    if (entry) {
        if (outcome == AIRLOCK__OUTCOME__OUTCOME_STARTED)
            entry->started_ms = al_deployer_now (run);
        else
            entry->ended_ms = al_deployer_now (run);
        entry->outcome = outcome;
        al_error_set (entry->detail, sizeof entry->detail, "%s", detail? detail: "");
    }
    return 0;
}

void
al_deployer_progress (al_deployer_run_t *run, Airlock__Step step, Airlock__Outcome outcome, unsigned instance,
                      unsigned instances, unsigned percent, const char *format, ...)
{
    char detail [AL_DEPLOYER_DETAIL_SIZE];
    va_list args;
    va_start (args, format);
    al_error_vset (detail, sizeof detail, format, args);
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
bool
al_deployer_trigger (al_deployer_run_t *run)
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
        al_error_set (run->rule, sizeof run->rule, "rollback_trigger");
    al_deployer_fail (run, "rollback trigger %s: %s", run->rule, detail);
    return true;
}

//  ---- the run ------------------------------------------------------------------------

//  Record a step's start, run it, record its end. Returns 0 when it succeeded or was
//  skipped, -1 when it failed or could not be recorded (run->unrecorded).
typedef int (s_step_fn) (al_deployer_run_t *run, bool *skipped);

static int
s_rollout_fn (al_deployer_run_t *run, bool *skipped)
{
    (void) skipped;
    return al_deployer_step_rollout (run);
}

static int
s_preflight_fn (al_deployer_run_t *run, bool *skipped)
{
    (void) skipped;
    return al_deployer_step_preflight (run);
}

static int
s_soak_fn (al_deployer_run_t *run, bool *skipped)
{
    (void) skipped;
    return al_deployer_step_soak (run);
}

static int
s_run_step (al_deployer_run_t *run, Airlock__Step step, s_step_fn *fn)
{
    if (al_deployer_journal (run, step, AIRLOCK__OUTCOME__OUTCOME_STARTED, "") != 0)
        return -1;
    run->started [step] = true;
    bool skipped = false;
    run->failure [0] = 0;
    int rc = fn (run, &skipped);
    Airlock__Outcome outcome = rc != 0? AIRLOCK__OUTCOME__OUTCOME_FAILED
                             : skipped? AIRLOCK__OUTCOME__OUTCOME_SKIPPED: AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED;
    char detail [AL_DEPLOYER_DETAIL_SIZE];
    al_error_set (detail, sizeof detail, "%s", run->failure);
    if (rc == 0)
        run->failure [0] = 0;
    if (al_deployer_journal (run, step, outcome, detail) != 0)
        return -1;
    run->finished [step] = true;
    run->outcome [step] = outcome;
    if (rc != 0)
        al_error_set (run->failure, sizeof run->failure, "%s", detail);
    return rc;
}

//  Fill what the journal says: which steps started, finished and how; the result's step
//  list with the broker's times; the rule of a recorded rollback.
static void
s_read_journal (al_deployer_run_t *run)
{
    const al_deploy_journal_t *journal = run->job->journal;
    for (size_t i = 0; journal && i < journal->count; i++) {
        const al_deploy_record_t *record = &journal->records [i];
        if ((int) record->step <= 0 || (int) record->step >= AL_DEPLOYER_STEP_SLOTS)
            continue;
        al_deploy_step_t *entry = s_result_step (run, record->step);
        if (record->outcome == AIRLOCK__OUTCOME__OUTCOME_STARTED) {
            run->started [record->step] = true;
            if (entry)
                entry->started_ms = record->time_ms;
            if (record->step == AIRLOCK__STEP__STEP_ROLLBACK && strncmp (record->detail, "rule ", 5) == 0) {
                const char *rule = record->detail + 5;
                size_t length = strcspn (rule, ":");
                al_error_set (run->rule, sizeof run->rule, "%.*s", (int) (length < sizeof run->rule? length: sizeof run->rule - 1), rule);
                const char *why = rule + length;
                al_error_set (run->failure, sizeof run->failure, "%s", *why == ':'? why + 2: why);
            }
        }
        else {
            run->finished [record->step] = true;
            run->outcome [record->step] = record->outcome;
            if (record->outcome == AIRLOCK__OUTCOME__OUTCOME_FAILED && !run->failure [0])
                al_error_set (run->failure, sizeof run->failure, "%s", record->detail);
        }
        if (entry && record->outcome != AIRLOCK__OUTCOME__OUTCOME_STARTED) {
            entry->ended_ms = record->time_ms;
            entry->outcome = record->outcome;
            al_error_set (entry->detail, sizeof entry->detail, "%s", record->detail);
        }
        else
        if (entry && entry->outcome == AIRLOCK__OUTCOME__OUTCOME_UNSPECIFIED)
            entry->outcome = AIRLOCK__OUTCOME__OUTCOME_STARTED;
    }
}

//  Set up what every step needs: service, driver, record, releases, paths. On failure
//  run->failure says why (the deployment fails in pre-flight).
static int
s_prepare (al_deployer_run_t *run)
{
    const al_deploy_job_t *job = run->job;
    const Airlock__DeployRequest *request = run->request;
    char error [AL_DEPLOYER_DETAIL_SIZE];
    run->svc = al_services_find (run->self->services, request->service);
    if (!run->svc) {
        al_deployer_fail (run, "service %s is not in services.yaml", request->service);
        return -1;
    }
    if ((int) job->environment <= 0 || (int) job->environment >= AL_DEPLOYER_ENV_SLOTS) {
        al_deployer_fail (run, "no environment");
        return -1;
    }
    run->instances = request->instances? request->instances: al_service_instances (run->svc, job->environment);
    run->strategy = request->strategy? request->strategy: al_service_strategy (run->svc, job->environment);
    if (al_deployer_record_load (run->self, run->svc->name, job->environment, &run->record, error, sizeof error) != 0) {
        al_deployer_fail (run, "release record: %s", error);
        return -1;
    }
    //  A resumed run may find the record already moved by its own receipt step.
    al_release_t *from = &run->record.current;
    if (from->present && strcmp (from->deployment_id, job->deployment_id) == 0)
        from = &run->record.previous;
    run->driver = al_deployer_driver (run->self, run->svc, job->environment, error, sizeof error);
    if (!run->driver) {
        al_deployer_fail (run, "driver %s: %s", run->svc->driver, error);
        return -1;
    }
    al_error_set (run->digest_ref, sizeof run->digest_ref, "sha256:%s", request->artifact_sha256);
    //  The kept copy if there is one already (resume); pre-flight keeps it otherwise.
    if (al_artifacts_path (run->self->artifacts, request->artifact_sha256, run->artifact_path,
                           sizeof run->artifact_path, error, sizeof error) != AL_ARTIFACT_OK)
        al_error_set (run->artifact_path, sizeof run->artifact_path, "%s", request->artifact_uri);
    al_deployer_vars (&run->to, run->svc, request->version, run->artifact_path, run->digest_ref, job->environment);
    if (from->present) {
        run->has_from = true;
        al_error_set (run->from_digest_ref, sizeof run->from_digest_ref, "sha256:%s", from->digest);
        if (al_deployer_artifact (run, from->artifact_uri, from->digest, false, run->from_artifact_path,
                        sizeof run->from_artifact_path) != 0)
            run->from_artifact_path [0] = 0;
        run->failure [0] = 0;
        al_deployer_vars (&run->from, run->svc, from->version, run->from_artifact_path, run->from_digest_ref, job->environment);
    }
    al_deployer_evidence_dir (run->self, job->deployment_id, run->evidence_dir, sizeof run->evidence_dir);
    if (al_deployer_make_dirs (run->evidence_dir, 0700) != 0) {
        al_deployer_fail (run, "%s: %s", run->evidence_dir, strerror (errno));
        return -1;
    }
    al_error_set (run->backup_path, sizeof run->backup_path, "%s/backups/%s/%s.db", run->self->state_dir,
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
    al_deployer_run_t run;
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
        al_error_set (result->detail, sizeof result->detail, "already finished: %s",
                      al_outcome_name (result->outcome));
        al_error_set (result->rollback_rule, sizeof result->rollback_rule, "%s", run.rule);
        al_deployer_evidence_dir (self, job->deployment_id, result->receipt_path, sizeof result->receipt_path);
        strncat (result->receipt_path, "/" AL_DEPLOY_RECEIPT_FILE, sizeof result->receipt_path - strlen (result->receipt_path) - 1);
        char error [256];
        if (al_sha256_file_hex (result->receipt_path, result->receipt_sha256, error, sizeof error) != 0)
            result->receipt_sha256 [0] = 0;
        goto cleanup;
    }
    bool prepared = job->request && s_prepare (&run) == 0;
    if (!job->request)
        al_deployer_fail (&run, "no deploy request");

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
            al_error_set (detail, sizeof detail, "interrupted by a restart of deploy-manager; not run again");
            if (al_deployer_journal (&run, step, AIRLOCK__OUTCOME__OUTCOME_FAILED, detail) != 0)
                break;
            run.finished [step] = true;
            run.outcome [step] = AIRLOCK__OUTCOME__OUTCOME_FAILED;
            al_error_set (run.failure, sizeof run.failure, "%s: %s", al_deployer_step_name (step), detail);
            if (!run.rule [0])
                al_error_set (run.rule, sizeof run.rule, "interrupted");
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
                      : step == AIRLOCK__STEP__STEP_BACKUP? al_deployer_step_backup
                      : step == AIRLOCK__STEP__STEP_MIGRATE? al_deployer_step_migrate
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
        int rc = done? 0: prepared? al_deployer_rollback (&run): -1;
        if (run.unrecorded)
            goto cleanup;
        outcome = rc == 0? AIRLOCK__OUTCOME__OUTCOME_ROLLED_BACK: AIRLOCK__OUTCOME__OUTCOME_FAILED;
        if (rc != 0 && !prepared)
            al_deployer_journal (&run, AIRLOCK__STEP__STEP_ROLLBACK, AIRLOCK__OUTCOME__OUTCOME_FAILED, run.failure);
    }
    else
    if (failed)
        outcome = AIRLOCK__OUTCOME__OUTCOME_FAILED;
    if (!prepared) {
        //  Nothing to deploy with (unknown service, unreadable record): a receipt still.
        if (!run.started [AIRLOCK__STEP__STEP_PREFLIGHT]
        &&  (al_deployer_journal (&run, AIRLOCK__STEP__STEP_PREFLIGHT, AIRLOCK__OUTCOME__OUTCOME_STARTED, "") != 0
        ||   al_deployer_journal (&run, AIRLOCK__STEP__STEP_PREFLIGHT, AIRLOCK__OUTCOME__OUTCOME_FAILED, run.failure) != 0))
            goto cleanup;
        result->outcome = AIRLOCK__OUTCOME__OUTCOME_FAILED;
        al_error_set (result->detail, sizeof result->detail, "%s", run.failure);
        if (al_deployer_journal (&run, AIRLOCK__STEP__STEP_RECEIPT, AIRLOCK__OUTCOME__OUTCOME_STARTED, "failed") == 0)
            al_deployer_journal (&run, AIRLOCK__STEP__STEP_RECEIPT, AIRLOCK__OUTCOME__OUTCOME_FAILED,
                                 "failed before the critical path could start; no receipt file");
        goto cleanup;
    }
    al_deployer_receipt (&run, outcome);
cleanup:
    result->unrecorded = run.unrecorded;
    al_migration_set_destroy (&run.set);
    json_decref (run.soak_samples);
    json_decref (run.smoke);
    json_decref (run.checkpoints);
    return run.unrecorded? -1: 0;
}
