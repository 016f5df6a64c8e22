/*  al_deployer.h: deploy-manager's engine: the critical path, run, journaled and resumable.

    One al_deployer_t holds what outlives a deployment: the policy, services.yaml, the
    artifact store, one driver per (service, environment), and the release records
    (which release runs in each environment, and the one before it). al_deployer_run
    carries one deployment through the critical path that dependencies.yaml fixes:

        preflight -> backup -> migrate -> rollout -> soak -> receipt
                                 \-- on any failure or rollback trigger: rollback -> receipt

    Journal: every step is recorded through hooks->journal before it runs ("started")
    and after ("succeeded", "failed", "skipped"); a step runs only once its "started"
    record is durable (deploy-manager's hook waits for the broker's Ack, so the record is
    an audit row). A record that cannot be made stops the deployment where it stands:
    nothing runs unrecorded. On a restart, al_deployer_run gets the journal recorded so
    far and decides from it alone, so no step runs twice:
      - the receipt was recorded: nothing to do, the outcome is reported again;
      - a step started and never finished: preflight and backup changed nothing, the
        deployment fails; migrate, rollout and soak may have: it is rolled back; an
        interrupted rollback is run again (it converges: it only ever restores the
        recorded release), an interrupted receipt is completed (it only records);
      - a step failed, or a rollback was requested: rollback (if not done), then receipt;
      - otherwise it goes on with the first step not started.

    The release record of (service, environment) changes in the receipt step only, once
    soak passed: until then "current" is the release that ran before, which is what a
    rollback restores. Files, under state_dir:
        releases/<service>/<env>.json      current and previous release (atomic writes)
        artifacts/sha256/<hex>             kept artifacts (al_artifacts)
        drivers/<service>/<env>/           driver evidence and instance registry
        backups/<deployment>/<service>.db  the pre-migration backup
        .artifacts/deployment/<deployment>/ evidence with seed 003's names, deploy_receipt.json

    Production: a job for production must carry the ExecuteDeploy with its grant, and
    pre-flight verifies it again (al_approval_gate_verify_grant) against the policy, so a caller
    that forgot to cannot deploy. Secrets stay in the drivers (by reference).

    Threading: one thread at a time per al_deployer_t. Hooks are called on that thread.
*/
#ifndef AL_DEPLOYER_H_INCLUDED
#define AL_DEPLOYER_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "proto/al_codec.h"
#include "policies/al_policy.h"
#include "deploy/al_rules.h"
#include "deploy/al_services.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _al_deployer_t al_deployer_t;

#define AL_DEPLOYER_DETAIL_SIZE 512
#define AL_DEPLOYER_MAX_STEPS   16

//  One journal record of a deployment, as the broker keeps it.
typedef struct {
    Airlock__Step step;
    Airlock__Outcome outcome;           // STARTED ("before") or the step's result ("after")
    uint64_t time_ms;                   // the broker's clock when it was recorded
    char detail [AL_DEPLOYER_DETAIL_SIZE];
} al_deploy_record_t;

typedef struct {
    al_deploy_record_t *records;
    size_t count;
} al_deploy_journal_t;

//  Parse the broker's answer to StatusQuery{what: "journal"}: {"deployment_id": ID,
//  "entries": [{"sequence", "time_ms", "step", "phase", "status", "detail"}...]}. An
//  "error" member, an unknown step or status, or another deployment's id is an error
//  (the caller must not guess what ran). Returns 0, or -1 with the reason in error.
int al_deploy_journal_parse (const char *json, const char *deployment_id,
                             al_deploy_journal_t *journal, char *error, size_t error_size);
void al_deploy_journal_clear (al_deploy_journal_t *journal);

//  What the deployer needs from deploy-manager.
typedef struct {
    //  Record a whole step durably. 0 once recorded; -1 when it cannot be (the deployer
    //  then stops at once and reports unrecorded).
    int (*journal) (void *arg, const char *deployment_id, Airlock__Environment env,
                    Airlock__Step step, Airlock__Outcome outcome, const char *detail);
    //  Progress inside a step (instance i of N, percent); best effort. MAY be NULL.
    void (*progress) (void *arg, const char *deployment_id, Airlock__Environment env,
                      Airlock__Step step, Airlock__Outcome outcome, unsigned instance,
                      unsigned instances, unsigned percent, const char *detail);
    //  Polled during rollout and soak: true when the deployment must roll back now (the
    //  monitor's RollbackTrigger); rule and detail say why. MAY be NULL.
    bool (*rollback_requested) (void *arg, const char *deployment_id, char *rule, size_t rule_size,
                                char *detail, size_t detail_size);
    //  Services whose soak evidence is the monitor's (services.yaml signals: monitor):
    //  is a monitor connected and alive? detail names it or says why not. MAY be NULL
    //  (then no monitor is known: such services fail pre-flight).
    bool (*monitor_alive) (void *arg, char *detail, size_t detail_size);
    //  Monotonic time (CLOCK_MONOTONIC, ms) of the latest SoakSignal received for the
    //  running deployment's service and environment, 0 if none. MAY be NULL (none).
    uint64_t (*last_signal_ms) (void *arg);
    //  The RollbackTrigger behind the latest true answer of rollback_requested, or NULL:
    //  its samples go into the receipt. Borrowed until the run ends. MAY be NULL.
    const Airlock__RollbackTrigger *(*last_trigger) (void *arg);
    //  The latest SoakSignal of the new release (not a baseline sample) received for the
    //  running deployment, or NULL: performance-baseline.json records it at the end of
    //  the soak. Borrowed until the next call. MAY be NULL.
    const Airlock__SoakSignal *(*latest_signal) (void *arg);
    //  Wall clock in ms since the epoch. MAY be NULL (the real clock).
    uint64_t (*now_ms) (void *arg);
    //  The quality rules' rows (al_rules_explain) of the latest soak sample for the running
    //  deployment's service and environment, judged against the baseline published before
    //  it (al_rules_stream), and in *sample_ms the monotonic time it arrived. Returns the
    //  rows filled, 0 when no soak sample arrived. The soak checkpoints of services with
    //  signals: monitor judge these (fail closed without). MAY be NULL (no rows).
    size_t (*signal_rows) (void *arg, al_rules_row_t *rows, size_t size, uint64_t *sample_ms);
    void *arg;
} al_deployer_hooks_t;

//  One deployment to run.
typedef struct {
    const char *deployment_id;          // [A-Za-z0-9._-]{1,64}
    Airlock__Environment environment;
    const Airlock__DeployRequest *request;
    const Airlock__ExecuteDeploy *execute;  // production: the broker's ExecuteDeploy with its grant
    const al_deploy_journal_t *journal; // what was recorded so far (empty for a new deployment)
} al_deploy_job_t;

typedef struct {
    Airlock__Step step;
    Airlock__Outcome outcome;
    uint64_t started_ms;
    uint64_t ended_ms;
    char detail [AL_DEPLOYER_DETAIL_SIZE];
} al_deploy_step_t;

typedef struct {
    Airlock__Outcome outcome;           // SUCCEEDED, FAILED or ROLLED_BACK
    bool unrecorded;                    // stopped because a journal record failed: retry later
    bool replayed;                      // the receipt was already recorded before this run
    char detail [AL_DEPLOYER_DETAIL_SIZE];
    char rollback_rule [64];            // the rule that caused the rollback, or ""
    char previous_version [128];        // the release that ran before, or ""
    char receipt_path [1024];
    char receipt_sha256 [65];
    al_deploy_step_t steps [AL_DEPLOYER_MAX_STEPS];
    size_t step_count;
} al_deploy_result_t;

//  Open a deployer. policy and services are borrowed for its lifetime. state_dir is
//  created (0700). NULL with the reason in error.
al_deployer_t *al_deployer_new (const al_policy_t *policy, const al_services_t *services,
                                const char *state_dir, char *error, size_t error_size);
//  Close every driver (the process driver stops its instances). NULL-safe.
void al_deployer_destroy (al_deployer_t **self_p);
//  Where the qa agent keeps its reports by digest (al_qa_reports_dir): production
//  pre-flight opens the report the grant names there (check qa_report_approved). Unset,
//  a production deployment that names a QA report is refused (fail closed).
void al_deployer_set_qa_reports (al_deployer_t *self, const char *dir);

//  After a (re)start: bring every recorded release back to its instance count (the
//  process driver's instances do not outlive deploy-manager). Returns the number of
//  releases that could not be restored (their errors are logged through zsys).
int al_deployer_reconcile (al_deployer_t *self, const al_deployer_hooks_t *hooks);

//  Run (or resume) a deployment. Always fills result; returns 0 when the deployment
//  reached an end (its outcome, any outcome), -1 when it stopped unrecorded.
int al_deployer_run (al_deployer_t *self, const al_deploy_job_t *job, const al_deployer_hooks_t *hooks,
                     al_deploy_result_t *result);

//  The soak after the rollout of svc in env, in ms, and in why where it comes from.
//  Production soaks for quality_rules.yaml's duration unless services.yaml's
//  soak: {duration_ms, reason} shortens it (never lengthens it); other environments
//  for soak_ms, capped by the policy's duration. Durations from quality_rules.yaml and
//  soak.duration_ms are multiplied by its time_scale; soak_ms is taken as written.
//  *shortened_p (MAY be NULL) says whether a production soak was shortened.
int64_t al_deployer_soak_ms (const al_policy_t *policy, const al_service_t *svc, Airlock__Environment env,
                             bool *shortened_p, char *why, size_t why_size);

//  Seed 004's checks of the soak checkpoints, by position: the first checkpoint is
//  "initial health", then "error rate", then "performance"; the last (and any
//  beyond the fourth) is "all normal" (every rule).
const char *al_deployer_checkpoint_check (size_t index, size_t count);

//  The version recorded as current for (service, env) in buffer, or "" when none.
void al_deployer_current (al_deployer_t *self, const char *service, Airlock__Environment env,
                          char *version, size_t version_size);

//  The evidence directory of a deployment (state_dir/.artifacts/deployment/<id>).
void al_deployer_evidence_dir (const al_deployer_t *self, const char *deployment_id,
                               char *path, size_t path_size);

#ifdef __cplusplus
}
#endif

#endif
