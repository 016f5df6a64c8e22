/*  al_deploy_manager.c: the deploy-manager agent: deliveries in, deployments out.

    The loop takes one delivery at a time (deliveries that arrive while a deployment runs
    wait in a local queue, unacknowledged, so nothing is lost if we die), decides whether
    it may act on it, and runs it with al_deployer_run. The deployer's hooks are here:
      journal   DeployProgress{journal: true}, posted and waited for until the broker
                acknowledges it (same message id on every retransmission, so it is
                recorded once); a denial stops the deployment unrecorded;
      progress  DeployProgress{journal: false}, sent with a short wait (best effort);
      rollback  RollbackTrigger deliveries for the running service, read between actions;
                for a service whose signals are probes only, a trigger is ignored, said
                in the log and in a DeployProgress (soak, skipped) the audit log keeps.
    The receipt message has a message id derived from the deployment id, so a restart
    that reports a finished deployment again is recognised by the broker as the same
    message.
*/
#include "agents/al_deploy_manager.h"
#include "base/al_id.h"
#include "agents/al_agent.h"
#include "base/al_clock.h"
#include "base/al_crashpoint.h"
#include "deploy/al_deployer.h"
#include "deploy/al_qa_reports.h"
#include "deploy/al_rules.h"
#include "deploy/al_services.h"
#include "policies/al_approval_gate.h"
#include "policies/al_policy.h"
#include <assert.h>
#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_JOURNAL_WAIT_MS 5000
#define S_PROGRESS_WAIT_MS 2000
#define S_BROKER_IDENTITY "broker"

typedef struct {
    al_agent_t *agent;
    const al_policy_t *policy;
    al_deployer_t *deployer;
    const al_services_t *services;
    zlistx_t *pending;              // deliveries received while a deployment ran
    //  The running deployment (for the rollback and evidence hooks).
    const char *service;
    const char *version;            // the version the running job brings
    Airlock__Environment environment;
    bool probes_only;               // its services.yaml says signals: probes: no trigger counts
    uint64_t last_signal_ms;        // monotonic time of its latest SoakSignal, 0: none
    //  Its SoakSignals judged as published (baseline, then the soak), for the soak
    //  checkpoints: the rows of the latest soak sample.
    al_rules_stream_t *signals;
    al_rules_row_t rows [AL_RULES_ROWS];
    size_t row_count;
    uint64_t rows_ms;               // monotonic time the rows' sample arrived
    al_envelope_t *trigger;         // the RollbackTrigger acted on, for the receipt
    al_envelope_t *signal;          // its latest SoakSignal of the new release, for the evidence
} s_manager_t;

static void
s_progress_init (al_envelope_t *envelope, Airlock__DeployProgress *progress, const char *deployment_id,
                 Airlock__Environment env, const char *service)
{
    airlock__envelope__init (envelope);
    airlock__deploy_progress__init (progress);
    progress->service = (char *) (service? service: "");
    envelope->deployment_id = (char *) deployment_id;
    envelope->environment = env;
    envelope->body_case = AIRLOCK__ENVELOPE__BODY_DEPLOY_PROGRESS;
    envelope->deploy_progress = progress;
}

//  Post and wait until the broker answers (retransmitted with the same id meanwhile).
//  0: recorded; -1: denied, invalid, or interrupted before an answer.
static int
s_send_recorded (s_manager_t *self, const al_envelope_t *envelope, char *reason, size_t reason_size)
{
    char id [AL_AGENT_ID_SIZE];
    char error [256];
    al_agent_status_t status = al_agent_post (self->agent, envelope, -1, id, error, sizeof error);
    if (status != AL_AGENT_QUEUED) {
        snprintf (reason, reason_size, "%s: %s", al_agent_status_name (status), error);
        return -1;
    }
    al_agent_result_t result;
    while (true) {
        status = al_agent_wait (self->agent, id, S_JOURNAL_WAIT_MS, &result);
        if (status == AL_AGENT_ACKED)
            return 0;
        if (status != AL_AGENT_TIMEOUT) {
            snprintf (reason, reason_size, "%s: %.400s", al_agent_status_name (status), result.reason);
            return -1;
        }
        if (al_agent_interrupted ()) {
            snprintf (reason, reason_size, "interrupted while the broker had not answered");
            return -1;
        }
        zsys_warning ("deploy-manager: the broker has not recorded %s yet; waiting (nothing runs unrecorded)", id);
    }
}

static int
s_hook_journal (void *arg, const char *deployment_id, Airlock__Environment env, Airlock__Step step,
                Airlock__Outcome outcome, const char *detail)
{
    s_manager_t *self = (s_manager_t *) arg;
    al_envelope_t envelope;
    Airlock__DeployProgress progress;
    s_progress_init (&envelope, &progress, deployment_id, env, self->service);
    progress.version = (char *) (self->version? self->version: "");
    progress.step = step;
    progress.outcome = outcome;
    progress.detail = (char *) detail;
    progress.journal = true;
    al_crashpoint ("deploy-manager.before-journal");  // chaos: the step ran, its record not sent
    char reason [512];
    if (s_send_recorded (self, &envelope, reason, sizeof reason) != 0) {
        zsys_error ("deploy-manager: %s: journal %s/%s: %s", deployment_id, al_step_name (step),
                    al_outcome_name (outcome), reason);
        return -1;
    }
    zsys_info ("deploy-manager: %s: %s %s%s%s", deployment_id, al_step_name (step), al_outcome_name (outcome),
               detail && *detail? ": ": "", detail? detail: "");
    return 0;
}

static void
s_hook_progress (void *arg, const char *deployment_id, Airlock__Environment env, Airlock__Step step,
                 Airlock__Outcome outcome, unsigned instance, unsigned instances, unsigned percent,
                 const char *detail)
{
    s_manager_t *self = (s_manager_t *) arg;
    al_envelope_t envelope;
    Airlock__DeployProgress progress;
    s_progress_init (&envelope, &progress, deployment_id, env, self->service);
    progress.version = (char *) (self->version? self->version: "");
    progress.step = step;
    progress.outcome = outcome;
    progress.instance = instance;
    progress.instances = instances;
    progress.percent = percent;
    progress.detail = (char *) detail;
    al_agent_result_t result;
    al_agent_send (self->agent, &envelope, S_PROGRESS_WAIT_MS, &result);
}

//  Read what arrived; a RollbackTrigger for the running service says roll back.
static bool
s_hook_rollback (void *arg, const char *deployment_id, char *rule, size_t rule_size,
                 char *detail, size_t detail_size)
{
    s_manager_t *self = (s_manager_t *) arg;
    bool triggered = false;
    al_envelope_t *envelope;
    while (!triggered && (envelope = al_agent_recv (self->agent, 0))) {
        if (envelope->body_case == AIRLOCK__ENVELOPE__BODY_ROLLBACK_TRIGGER
        &&  strcmp (envelope->rollback_trigger->service, self->service) == 0
        &&  (envelope->environment == self->environment
             || envelope->environment == AIRLOCK__ENVIRONMENT__ENV_UNSPECIFIED)
        &&  (!envelope->deployment_id || !*envelope->deployment_id
             || strcmp (envelope->deployment_id, deployment_id) == 0)) {
            if (self->probes_only) {
                //  Probes are this service's only evidence: a judgement on metrics is not
                //  its to act on, whoever sent it. Said where the audit log keeps it.
                char why [700];
                snprintf (why, sizeof why, "RollbackTrigger ignored: %s uses signals: probes (rule %.64s "
                          "from %.64s: %.400s)", self->service, envelope->rollback_trigger->rule,
                          envelope->sender? envelope->sender->identity: "?", envelope->rollback_trigger->detail);
                zsys_warning ("deploy-manager: %s: %s", deployment_id, why);
                s_hook_progress (self, deployment_id, self->environment, AIRLOCK__STEP__STEP_SOAK,
                                 AIRLOCK__OUTCOME__OUTCOME_SKIPPED, 0, 0, 0, why);
                if (envelope->delivery_id)
                    al_agent_ack_delivery (self->agent, envelope->delivery_id);
                al_codec_free (&envelope);
                continue;
            }
            snprintf (rule, rule_size, "%s", envelope->rollback_trigger->rule);
            snprintf (detail, detail_size, "%s (from %s)", envelope->rollback_trigger->detail,
                      envelope->sender? envelope->sender->identity: "?");
            triggered = true;
            if (envelope->delivery_id)
                al_agent_ack_delivery (self->agent, envelope->delivery_id);
            al_codec_free (&self->trigger);
            self->trigger = envelope;       // kept for the receipt
            continue;
        }
        if (envelope->body_case == AIRLOCK__ENVELOPE__BODY_SOAK_SIGNAL
        &&  strcmp (envelope->soak_signal->service, self->service) == 0
        &&  envelope->environment == self->environment) {
            self->last_signal_ms = al_clock_mono_ms ();
            al_rules_row_t rows [AL_RULES_ROWS];
            bool judged = false;
            if (self->signals) {
                al_rules_stream_feed (self->signals, envelope->soak_signal, (int64_t) self->last_signal_ms,
                                      rows, AL_RULES_ROWS, &judged);
                if (judged) {
                    memcpy (self->rows, rows, sizeof rows);
                    self->row_count = AL_RULES_ROWS;
                    self->rows_ms = self->last_signal_ms;
                }
            }
            //  The new release's own samples (not the pre-rollout baseline): the latest
            //  is what performance-baseline.json records at the end of the soak.
            if (!envelope->soak_signal->baseline) {
                if (envelope->delivery_id)
                    al_agent_ack_delivery (self->agent, envelope->delivery_id);
                al_codec_free (&self->signal);
                self->signal = envelope;
                continue;
            }
        }
        if (envelope->body_case == AIRLOCK__ENVELOPE__BODY_DEPLOY_REQUEST
        ||  envelope->body_case == AIRLOCK__ENVELOPE__BODY_EXECUTE_DEPLOY) {
            zlistx_add_end (self->pending, envelope);    // later, still unacknowledged
            continue;
        }
        if (envelope->delivery_id)
            al_agent_ack_delivery (self->agent, envelope->delivery_id);
        al_codec_free (&envelope);
    }
    return triggered;
}

static const Airlock__RollbackTrigger *
s_hook_last_trigger (void *arg)
{
    s_manager_t *self = (s_manager_t *) arg;
    return self->trigger? self->trigger->rollback_trigger: NULL;
}

static const Airlock__SoakSignal *
s_hook_latest_signal (void *arg)
{
    s_manager_t *self = (s_manager_t *) arg;
    return self->signal? self->signal->soak_signal: NULL;
}

//  The deployer polls rollback_requested (which reads every delivery that arrived,
//  SoakSignals included) just before it asks this.
static uint64_t
s_hook_last_signal (void *arg)
{
    s_manager_t *self = (s_manager_t *) arg;
    return self->last_signal_ms;
}

//  The rows of the latest soak sample (s_hook_rollback feeds them as they arrive).
static size_t
s_hook_signal_rows (void *arg, al_rules_row_t *rows, size_t size, uint64_t *sample_ms)
{
    s_manager_t *self = (s_manager_t *) arg;
    size_t count = self->row_count < size? self->row_count: size;
    memcpy (rows, self->rows, count * sizeof *rows);
    *sample_ms = self->rows_ms;
    return count;
}

//  Is a monitor connected and alive? Asks the broker, once.
static bool
s_monitor_alive_once (s_manager_t *self, char *detail, size_t detail_size)
{
    al_agent_result_t result;
    al_envelope_t *reply = al_agent_status_query (self->agent, "agents", NULL, 0, 5000, &result);
    if (!reply) {
        snprintf (detail, detail_size, "cannot ask the broker which agents run: %s", al_agent_status_name (result.status));
        return false;
    }
    bool alive = false;
    for (size_t i = 0; i < reply->status_reply->n_agents && !alive; i++) {
        const Airlock__AgentStatus *agent = reply->status_reply->agents [i];
        if (strcmp (agent->role, "monitor") == 0 && agent->alive) {
            alive = true;
            snprintf (detail, detail_size, "monitor %s is connected and alive", agent->identity);
        }
    }
    if (!alive)
        snprintf (detail, detail_size, "no monitor is connected: the soak of this service needs its golden signals");
    al_codec_free (&reply);
    return alive;
}

//  Is a monitor connected and alive? After a broker restart every agent registers again,
//  deploy-manager often a second before the monitor: a grant's pre-flight that asked only
//  once would fail on that blip and burn a human's approval. So it waits, bounded by
//  AL_DEPLOY_MANAGER_MONITOR_WAIT_MS, for a monitor to register.
static bool
s_hook_monitor_alive (void *arg, char *detail, size_t detail_size)
{
    s_manager_t *self = (s_manager_t *) arg;
    int64_t deadline = zclock_mono () + AL_DEPLOY_MANAGER_MONITOR_WAIT_MS;
    bool waiting = false;
    while (true) {
        if (s_monitor_alive_once (self, detail, detail_size))
            return true;
        if (zclock_mono () >= deadline || al_agent_interrupted ())
            break;
        if (!waiting) {
            zsys_info ("deploy-manager: %s; waiting up to %d s for one to register", detail,
                       AL_DEPLOY_MANAGER_MONITOR_WAIT_MS / 1000);
            waiting = true;
        }
        zclock_sleep (250);
    }
    size_t length = strlen (detail);
    if (waiting && length + 1 < detail_size)
        snprintf (detail + length, detail_size - length, " (waited %d s)", AL_DEPLOY_MANAGER_MONITOR_WAIT_MS / 1000);
    return false;
}

//  A request deploy-manager will not act on: say so to the broker, which records it.
static void
s_refuse (s_manager_t *self, const al_envelope_t *envelope, const char *why)
{
    const char *deployment_id = envelope->deployment_id && *envelope->deployment_id? envelope->deployment_id: "";
    zsys_warning ("deploy-manager: refused %s from %s: %s", al_msg_type_name ((al_msg_type_t) envelope->body_case),
                  envelope->sender? envelope->sender->identity: "?", why);
    char detail [600];
    snprintf (detail, sizeof detail, "refused: %s", why);
    al_envelope_t reply;
    Airlock__DeployProgress progress;
    const char *service = envelope->body_case == AIRLOCK__ENVELOPE__BODY_DEPLOY_REQUEST? envelope->deploy_request->service
                        : envelope->body_case == AIRLOCK__ENVELOPE__BODY_EXECUTE_DEPLOY && envelope->execute_deploy->request?
                          envelope->execute_deploy->request->service: "";
    s_progress_init (&reply, &progress, deployment_id, envelope->environment, service);
    progress.step = AIRLOCK__STEP__STEP_PREFLIGHT;
    progress.outcome = AIRLOCK__OUTCOME__OUTCOME_FAILED;
    progress.detail = detail;
    char reason [256];
    if (s_send_recorded (self, &reply, reason, sizeof reason) != 0)
        zsys_error ("deploy-manager: the refusal could not be recorded: %s", reason);
}

static int
s_journal_fetch (s_manager_t *self, const char *deployment_id, al_deploy_journal_t *journal)
{
    al_agent_result_t result;
    char error [512];
    while (!al_agent_interrupted ()) {
        al_envelope_t *reply = al_agent_status_query (self->agent, "journal", deployment_id, 0, 10000, &result);
        if (reply) {
            int rc = al_deploy_journal_parse (reply->status_reply->json, deployment_id, journal, error, sizeof error);
            al_codec_free (&reply);
            if (rc == 0)
                return 0;
        }
        else
            snprintf (error, sizeof error, "%s: %.400s", al_agent_status_name (result.status), result.reason);
        zsys_warning ("deploy-manager: %s: cannot read the journal (%s); retrying", deployment_id, error);
        zclock_sleep (1000);
    }
    return -1;
}

static void
s_send_receipt (s_manager_t *self, const al_deploy_job_t *job, const al_deploy_result_t *result)
{
    const Airlock__DeployRequest *request = job->request;
    al_envelope_t envelope;
    airlock__envelope__init (&envelope);
    Airlock__DeployReceipt receipt = AIRLOCK__DEPLOY_RECEIPT__INIT;
    Airlock__StepRecord records [AL_DEPLOYER_MAX_STEPS];
    Airlock__StepRecord *record_list [AL_DEPLOYER_MAX_STEPS];
    for (size_t i = 0; i < result->step_count; i++) {
        airlock__step_record__init (&records [i]);
        records [i].step = result->steps [i].step;
        records [i].outcome = result->steps [i].outcome;
        records [i].started_ms = result->steps [i].started_ms;
        records [i].ended_ms = result->steps [i].ended_ms;
        records [i].detail = (char *) result->steps [i].detail;
        record_list [i] = &records [i];
    }
    char id [AL_AGENT_ID_SIZE];
    snprintf (id, sizeof id, "receipt-%.56s", job->deployment_id);
    envelope.message_id = id;
    envelope.deployment_id = (char *) job->deployment_id;
    envelope.environment = job->environment;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_DEPLOY_RECEIPT;
    envelope.deploy_receipt = &receipt;
    receipt.service = request && request->service? request->service: (char *) "";
    receipt.version = request && request->version? request->version: (char *) "";
    receipt.artifact_sha256 = request && request->artifact_sha256? request->artifact_sha256: (char *) "";
    receipt.outcome = result->outcome;
    receipt.n_steps = result->step_count;
    receipt.steps = record_list;
    receipt.receipt_sha256 = (char *) result->receipt_sha256;
    receipt.rollback_rule = (char *) result->rollback_rule;
    receipt.previous_version = (char *) result->previous_version;
    char reason [256];
    if (s_send_recorded (self, &envelope, reason, sizeof reason) != 0 && !strstr (reason, "denied"))
        zsys_error ("deploy-manager: %s: the receipt message was not recorded: %s", job->deployment_id, reason);
}

//  Run one job to an end. Returns 0 when the delivery may be acknowledged.
static int
s_execute (s_manager_t *self, al_deploy_job_t *job)
{
    al_deploy_journal_t journal;
    if (s_journal_fetch (self, job->deployment_id, &journal) != 0)
        return -1;
    job->journal = &journal;
    self->service = job->request->service;
    self->version = job->request->version;
    self->environment = job->environment;
    const al_service_t *svc = al_services_find (self->services, job->request->service);
    self->probes_only = svc && svc->signals == AL_SERVICE_SIGNALS_PROBES;
    self->last_signal_ms = 0;
    al_codec_free (&self->signal);
    self->row_count = 0;
    self->rows_ms = 0;
    self->signals = al_rules_stream_new (al_policy_thresholds (self->policy),
                                         al_policy_signal_max_age_s (self->policy) * 1000);
    al_deployer_hooks_t hooks = {
        .journal = s_hook_journal, .progress = s_hook_progress,
        .rollback_requested = s_hook_rollback, .monitor_alive = s_hook_monitor_alive,
        .last_signal_ms = s_hook_last_signal, .last_trigger = s_hook_last_trigger,
        .latest_signal = s_hook_latest_signal, .signal_rows = s_hook_signal_rows, .now_ms = NULL, .arg = self
    };
    al_deploy_result_t *result = (al_deploy_result_t *) calloc (1, sizeof *result);
    assert (result);
    int rc = al_deployer_run (self->deployer, job, &hooks, result);
    if (rc == 0) {
        s_send_receipt (self, job, result);
        zsys_info ("deploy-manager: %s: %s %s%s%s", job->deployment_id, al_outcome_name (result->outcome),
                   result->detail, result->rollback_rule [0]? ", rule ": "", result->rollback_rule);
    }
    self->service = NULL;
    self->version = NULL;
    al_rules_stream_destroy (&self->signals);
    al_codec_free (&self->trigger);
    al_codec_free (&self->signal);
    free (result);
    al_deploy_journal_clear (&journal);
    return rc;
}

//  Decide on one delivery. Returns 0 when it may be acknowledged, -1 to keep it (a
//  deployment stopped unrecorded: it is resumed from the journal later).
static int
s_handle (s_manager_t *self, al_envelope_t *envelope)
{
    const char *identity = envelope->sender? envelope->sender->identity: "";
    const char *role = envelope->sender? envelope->sender->role: "";
    al_deploy_job_t job;
    memset (&job, 0, sizeof job);
    job.deployment_id = envelope->deployment_id;
    job.environment = envelope->environment;
    char reason [512];
    switch (envelope->body_case) {
        case AIRLOCK__ENVELOPE__BODY_DEPLOY_REQUEST:
            if (envelope->environment == AIRLOCK__ENVIRONMENT__ENV_PRODUCTION) {
                s_refuse (self, envelope, "a production deploy is executed only on the broker's ExecuteDeploy "
                          "carrying signed human approvals; a DeployRequest cannot reach production");
                return 0;
            }
            if (strcmp (role, "orchestrator") != 0) {
                s_refuse (self, envelope, "deploy requests come from the orchestrator only");
                return 0;
            }
            job.request = envelope->deploy_request;
            break;
        case AIRLOCK__ENVELOPE__BODY_EXECUTE_DEPLOY:
            if (strcmp (identity, S_BROKER_IDENTITY) != 0) {
                s_refuse (self, envelope, "ExecuteDeploy is accepted from the broker's approval gate only");
                return 0;
            }
            if (envelope->environment != AIRLOCK__ENVIRONMENT__ENV_PRODUCTION) {
                s_refuse (self, envelope, "ExecuteDeploy is for production; other environments take a DeployRequest");
                return 0;
            }
            if (envelope->execute_deploy->rollback) {
                s_refuse (self, envelope, "a rollback request is carried out by the monitor's RollbackTrigger "
                          "during a deployment; an approved rollback is deployed as the previous artifact");
                return 0;
            }
            if (!al_approval_gate_verify_grant (self->policy, envelope->environment, envelope->execute_deploy,
                                       al_clock_wall_ms (), reason, sizeof reason)) {
                char why [600];
                snprintf (why, sizeof why, "the grant does not verify: %s", reason);
                s_refuse (self, envelope, why);
                return 0;
            }
            job.request = envelope->execute_deploy->request;
            job.execute = envelope->execute_deploy;
            break;
        case AIRLOCK__ENVELOPE__BODY_ROLLBACK_TRIGGER:
            zsys_info ("deploy-manager: rollback trigger for %s (%s) while no deployment of it runs: nothing to do",
                       envelope->rollback_trigger->service, envelope->rollback_trigger->rule);
            return 0;
        default:
            return 0;
    }
    if (!al_id_valid (job.deployment_id)) {
        s_refuse (self, envelope, "the deployment id must be 1..64 of [A-Za-z0-9._-], not starting with '.'");
        return 0;
    }
    if (!job.request) {
        s_refuse (self, envelope, "no deploy request in the message");
        return 0;
    }
    return s_execute (self, &job);
}

static void
s_pending_destructor (void **item)
{
    al_codec_free ((al_envelope_t **) item);
}

int
al_deploy_manager_run (const al_config_t *config, char *error, size_t error_size)
{
    int rc = 2;
    s_manager_t self;
    memset (&self, 0, sizeof self);
    al_policy_t *policy = NULL;
    al_services_t *services = NULL;
    al_policy_errors_t *errors = NULL;
    policy = al_policy_load (al_config_policy_dir (config), &errors);
    if (!policy) {
        snprintf (error, error_size, "%s", errors && al_policy_errors_count (errors)?
                  al_policy_errors_at (errors, 0): "policy: cannot load");
        goto cleanup;
    }
    services = al_services_load (al_config_services_path (config), error, error_size);
    if (!services)
        goto cleanup;
    char state [1024];
    snprintf (state, sizeof state, "%s/deploy", al_config_state_dir (config));
    self.policy = policy;
    self.services = services;
    self.deployer = al_deployer_new (policy, services, state, error, error_size);
    if (!self.deployer)
        goto cleanup;
    char *qa_reports = al_qa_reports_dir (al_config_state_dir (config));
    assert (qa_reports);
    al_deployer_set_qa_reports (self.deployer, qa_reports);
    free (qa_reports);
    self.agent = al_agent_new_for_role (config, "deploy-manager", true, error, error_size);
    if (!self.agent)
        goto cleanup;
    self.pending = zlistx_new ();
    zlistx_set_destructor (self.pending, s_pending_destructor);
    int failures = al_deployer_reconcile (self.deployer, NULL);
    if (failures)
        zsys_warning ("deploy-manager: %d release(s) could not be restored at start", failures);
    zsys_info ("deploy-manager: ready (%zu service(s), state %s)", al_services_count (services), state);
    rc = 0;
    while (!al_agent_interrupted ()) {
        al_envelope_t *envelope = (al_envelope_t *) zlistx_first (self.pending);
        if (envelope)
            zlistx_detach_cur (self.pending);
        else
            envelope = al_agent_recv (self.agent, 500);
        if (!envelope)
            continue;
        if (s_handle (&self, envelope) == 0) {
            if (envelope->delivery_id)
                al_agent_ack_delivery (self.agent, envelope->delivery_id);
            al_codec_free (&envelope);
        }
        else {
            //  Stopped unrecorded (the broker refused or went away): keep the delivery,
            //  try again shortly; the journal says where to resume.
            zlistx_add_start (self.pending, envelope);
            if (!al_agent_interrupted ())
                zclock_sleep (1000);
        }
    }
    al_agent_flush (self.agent, 3000);
cleanup:
    zlistx_destroy (&self.pending);
    al_agent_destroy (&self.agent);
    al_deployer_destroy (&self.deployer);
    al_services_destroy (&services);
    al_policy_errors_destroy (&errors);
    al_policy_destroy (&policy);
    return rc;
}
