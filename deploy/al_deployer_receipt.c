/*  al_deployer_receipt.c: the receipt step: promote the release (success only), judge
    the Definition of Done, write the evidence and deploy_receipt.json.

    See al_deployer.c for the map of the deployer's files. The receipt's name and its
    typed reader are deploy/al_deploy_receipt.h (what everyone else reads it through).
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

static json_t *
s_approvals_json (const al_deployer_run_t *run)
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
            al_error_set (id + 2 * b, 3, "%02x", statement->approval_id.data [b]);
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
s_trigger_json (const al_deployer_run_t *run, Airlock__Outcome outcome)
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
s_definition_of_done (al_deployer_run_t *run, Airlock__Outcome outcome, bool *done, char *why, size_t why_size)
{
    al_done_evidence_t evidence;
    memset (&evidence, 0, sizeof evidence);
    evidence.environment = run->job->environment;
    evidence.deployment_type = run->request->deployment_type;
    evidence.outcome = outcome;
    evidence.failure = run->failure;
    for (int step = 1; step < AL_DONE_STEP_SLOTS && step < AL_DEPLOYER_STEP_SLOTS; step++) {
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
    char path [AL_DEPLOYER_PATH_SIZE];
    al_error_set (path, sizeof path, "%s/connectivity-report.json", run->evidence_dir);
    json_t *preflight = json_load_file (path, 0, NULL);
    evidence.preflight_checks = json_object_get (preflight, "checks");
    const Airlock__ProductionGrant *grant = run->job->execute? run->job->execute->grant: NULL;
    evidence.qa_report_sha256 = grant && grant->request? grant->request->qa_report_sha256: NULL;
    evidence.rule = run->rule;
    const char *db;
    evidence.has_database = al_deployer_has_database (run, &db);
    evidence.has_migrations = run->svc->migrations != NULL;
    evidence.recorded = !run->unrecorded;
    json_t *points = al_done_evaluate (run->self->policy, &evidence, done, why, why_size);
    json_decref (preflight);
    return points;
}

//  The receipt step: promote (success only), then write the evidence and the receipt.
int
al_deployer_receipt (al_deployer_run_t *run, Airlock__Outcome outcome)
{
    al_deploy_result_t *result = run->result;
    if (al_deployer_journal (run, AIRLOCK__STEP__STEP_RECEIPT, AIRLOCK__OUTCOME__OUTCOME_STARTED, al_outcome_name (outcome)) != 0)
        return -1;
    char error [AL_DEPLOYER_DETAIL_SIZE] = "";
    if (outcome == AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED) {
        //  Blue-green keeps the old set until here; then the record moves.
        al_rollout_plan_t plan;
        al_deployer_plan_init (run, &plan);
        plan.aborted = NULL;
        if (run->strategy == AIRLOCK__STRATEGY__STRATEGY_BLUE_GREEN && run->has_from
        &&  al_rollout_finish (run->driver, &plan, &run->from, error, sizeof error) != AL_ROLLOUT_OK)
            zsys_warning ("deploy-manager: %s: stopping the old set: %s", run->job->deployment_id, error);
        al_release_record_t record = run->record;
        if (record.current.present && strcmp (record.current.deployment_id, run->job->deployment_id) != 0)
            record.previous = record.current;
        memset (&record.current, 0, sizeof record.current);
        record.current.present = true;
        al_error_set (record.current.version, sizeof record.current.version, "%s", run->request->version);
        al_error_set (record.current.digest, sizeof record.current.digest, "%s", run->request->artifact_sha256);
        al_error_set (record.current.artifact_uri, sizeof record.current.artifact_uri, "%s", run->request->artifact_uri);
        al_error_set (record.current.deployment_id, sizeof record.current.deployment_id, "%s", run->job->deployment_id);
        record.current.instances = run->instances;
        if (al_deployer_record_save (run->self, run->svc->name, run->job->environment, &record, error, sizeof error) != 0) {
            //  The new release runs, but we could not write it down: say so loudly; a
            //  restart would bring back the old one.
            outcome = AIRLOCK__OUTCOME__OUTCOME_FAILED;
            al_deployer_fail (run, "release record: %s", error);
        }
    }
    result->outcome = outcome;
    al_error_set (result->rollback_rule, sizeof result->rollback_rule, "%s",
                  outcome == AIRLOCK__OUTCOME__OUTCOME_ROLLED_BACK? (run->rule [0]? run->rule: "step_failed"): "");
    al_error_set (result->previous_version, sizeof result->previous_version, "%s",
                  run->has_from? run->from.version: "");
    al_error_set (result->detail, sizeof result->detail, "%s", outcome == AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED?
                  "deployed": run->failure);

    //  The environment's deployment record (seed 003: staging- or production-deployment.json).
    Airlock__Environment env = run->job->environment;
    char name [64];
    al_error_set (name, sizeof name, "%s-deployment.json", al_deployer_env_name (env));
    json_t *deployment = json_pack ("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:s, s:s}",
                                    "deployment_id", run->job->deployment_id, "service", run->svc->name,
                                    "environment", al_deployer_env_name (env), "version", run->request->version,
                                    "artifact_uri", run->request->artifact_uri,
                                    "artifact_sha256", run->request->artifact_sha256,
                                    "strategy", al_strategy_name (run->strategy)? al_strategy_name (run->strategy): "",
                                    "instances", (int) run->instances, "driver", run->svc->driver,
                                    "outcome", al_outcome_name (outcome));
    al_deployer_write_json (run->evidence_dir, name, deployment, NULL, error, sizeof error);
    json_decref (deployment);

    json_t *steps = json_array ();
    for (size_t i = 0; i < result->step_count; i++) {
        const al_deploy_step_t *step = &result->steps [i];
        if (step->step == AIRLOCK__STEP__STEP_RECEIPT)
            continue;
        json_array_append_new (steps, json_pack ("{s:s, s:s, s:I, s:I, s:s}", "step", al_deployer_step_name (step->step),
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
        "format", AL_DEPLOY_RECEIPT_FORMAT,
        "deployment_id", run->job->deployment_id,
        "service", run->svc->name,
        "environment", al_deployer_env_name (env),
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
    if (!receipt || al_deployer_write_json (run->evidence_dir, AL_DEPLOY_RECEIPT_FILE, receipt, result->receipt_sha256,
                                  error, sizeof error) != 0) {
        zsys_error ("deploy-manager: %s: receipt: %s", run->job->deployment_id, receipt? error: "cannot encode");
        rc = -1;
    }
    json_decref (receipt);
    al_error_set (result->receipt_path, sizeof result->receipt_path, "%s/%s", run->evidence_dir, AL_DEPLOY_RECEIPT_FILE);
    char detail [AL_DEPLOYER_DETAIL_SIZE];
    al_error_set (detail, sizeof detail, "%s receipt sha256 %s", al_outcome_name (outcome),
                  rc == 0? result->receipt_sha256: "(not written)");
    //  The receipt step's own outcome is the deployment's (what a restart reports again).
    if (al_deployer_journal (run, AIRLOCK__STEP__STEP_RECEIPT, outcome, detail) != 0)
        return -1;
    return 0;
}
