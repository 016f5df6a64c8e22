/*  al_orchestrator.c: the orchestrator agent (see al_orchestrator.h).

    A release is a JSON document (jansson) kept in memory only while a delivery is
    handled: load, change, save (temp file, fsync, rename), then send what the new state
    asks for, then acknowledge the delivery. A crash between save and send is repaired by
    the redelivery: the handlers look at the state, not at what they were given, and
    sending again reuses a message id derived from the release and the step, which the
    broker de-duplicates.

    Deployment ids: the release id is the candidate's deployment id (`airlock submit`
    makes one: rel-<service>-<version>-<random>); its staging deployment is "<id>-stg",
    its production request and deployment "<id>-prod" (base/al_id makes and splits them).
*/
#include "agents/al_orchestrator.h"
#include "base/al_clock.h"
#include "base/al_id.h"
#include "broker/al_telemetry.h"
#include "agents/al_agent.h"
#include "agents/al_checklist.h"
#include "agents/al_orchestrator_release.h"
#include "base/al_file.h"
#include "base/al_paths.h"
#include "broker/al_broker.h"
#include "deploy/al_qa_reports.h"
#include "deploy/al_release_record.h"
#include "deploy/al_services.h"
#include "policies/al_approval_gate.h"
#include "policies/al_policy.h"
#include <assert.h>
#include <czmq.h>
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define S_PATH_SIZE 1024
#define S_WAIT_MS 5000

typedef struct {
    al_agent_t *agent;
    al_policy_t *policy;
    al_services_t *services;
    const char *state_dir;          // STATE_DIR (deploy-manager's release records live below)
} s_orchestrator_t;

//  ---- release files (agents/al_orchestrator_release owns them) ---------------------------

//  The release file of id as a document to change, or NULL when there is none yet. A
//  file that is there but does not read is said once in the log; the candidate then
//  starts the release again (what a redelivery after such a loss can do).
static json_t *
s_load (s_orchestrator_t *self, const char *id)
{
    char error [1024];
    al_orchestrator_release_t *release = al_orchestrator_release_load (self->state_dir, id, error, sizeof error);
    if (!release) {
        if (errno != ENOENT)
            zsys_warning ("orchestrator: %s", error);
        return NULL;
    }
    json_t *document = json_incref (release->document);
    al_orchestrator_release_destroy (&release);
    return document;
}

static int
s_save (s_orchestrator_t *self, json_t *release)
{
    char error [1024];
    if (al_orchestrator_release_save (self->state_dir, release, error, sizeof error) != 0) {
        zsys_error ("orchestrator: cannot save: %s", error);
        return -1;
    }
    return 0;
}

static const char *
s_get (json_t *release, const char *key)
{
    const char *value = json_string_value (json_object_get (release, key));
    return value? value: "";
}

//  Move to state, with a line in the history.
static void
s_state (json_t *release, const char *state, const char *format, ...) __attribute__ ((format (printf, 3, 4)));

static void
s_state (json_t *release, const char *state, const char *format, ...)
{
    char detail [600];
    va_list args;
    va_start (args, format);
    vsnprintf (detail, sizeof detail, format, args);
    va_end (args);
    json_object_set_new (release, "state", json_string (state));
    al_telemetry_add (al_telemetry_series (al_telemetry_process (), AL_TELEMETRY_COUNTER, "airlock_orchestrator_releases_total",
                                     "Releases that entered each state", "state", state, NULL, NULL), 1);
    json_object_set_new (release, "detail", json_string (detail));
    json_object_set_new (release, "updated_ms", json_integer ((json_int_t) al_clock_wall_ms ()));
    json_t *history = json_object_get (release, "history");
    if (!json_is_array (history)) {
        history = json_array ();
        json_object_set_new (release, "history", history);
    }
    json_array_append_new (history, json_pack ("{s:s, s:I, s:s}", "state", state,
                                               "time_ms", (json_int_t) al_clock_wall_ms (), "detail", detail));
    zsys_info ("orchestrator: %s: %s: %s", s_get (release, "release_id"), state, detail);
}

static bool
s_in (json_t *release, const char *state)
{
    return strcmp (s_get (release, "state"), state) == 0;
}

//  ---- sending ----------------------------------------------------------------------------

//  Send with a message id fixed by (release, step): a resend after a restart is the same
//  message to the broker. 0 when recorded (or already recorded), -1 otherwise.
static int
s_send (s_orchestrator_t *self, al_envelope_t *envelope, const char *release_id, const char *step)
{
    char id [AL_AGENT_ID_SIZE];
    snprintf (id, sizeof id, "orc-%.48s-%.10s", release_id, step);
    envelope->message_id = id;
    char error [256], posted [AL_AGENT_ID_SIZE];
    if (al_agent_post (self->agent, envelope, -1, posted, error, sizeof error) != AL_AGENT_QUEUED) {
        zsys_error ("orchestrator: %s: %s", id, error);
        return -1;
    }
    al_agent_result_t result;
    while (!al_agent_interrupted ()) {
        al_agent_status_t status = al_agent_wait (self->agent, posted, S_WAIT_MS, &result);
        if (status == AL_AGENT_ACKED)
            return 0;
        if (status == AL_AGENT_DENIED && result.deny_code == AIRLOCK__DENY_CODE__DENY_DUPLICATE)
            return 0;
        if (status != AL_AGENT_TIMEOUT) {
            zsys_error ("orchestrator: %s refused: %s", id, result.reason);
            return -1;
        }
    }
    return -1;
}

static const al_service_t *
s_service (s_orchestrator_t *self, json_t *release)
{
    return al_services_find (self->services, s_get (release, "service"));
}

static int
s_deploy_staging (s_orchestrator_t *self, json_t *release)
{
    const al_service_t *svc = s_service (self, release);
    char deployment [AL_ID_SIZE];
    al_id_deployment (s_get (release, "release_id"), AL_ID_PART_STAGING, deployment, sizeof deployment);
    Airlock__DeployRequest request = AIRLOCK__DEPLOY_REQUEST__INIT;
    request.service = (char *) s_get (release, "service");
    request.version = (char *) s_get (release, "version");
    request.artifact_uri = (char *) s_get (release, "artifact_uri");
    request.artifact_sha256 = (char *) s_get (release, "artifact_sha256");
    request.migration_set_sha256 = (char *) s_get (release, "migration_set_sha256");
    request.strategy = svc? al_service_strategy (svc, AIRLOCK__ENVIRONMENT__ENV_STAGING): AIRLOCK__STRATEGY__STRATEGY_ROLLING;
    request.instances = svc? al_service_instances (svc, AIRLOCK__ENVIRONMENT__ENV_STAGING): 1;
    request.deployment_type = al_deployment_type_from_name (s_get (release, "type"));
    al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
    envelope.deployment_id = deployment;
    envelope.environment = AIRLOCK__ENVIRONMENT__ENV_STAGING;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_DEPLOY_REQUEST;
    envelope.deploy_request = &request;
    return s_send (self, &envelope, s_get (release, "release_id"), "staging");
}

static int
s_request_qa (s_orchestrator_t *self, json_t *release)
{
    char deployment [AL_ID_SIZE];
    al_id_deployment (s_get (release, "release_id"), AL_ID_PART_STAGING, deployment, sizeof deployment);
    Airlock__QaRequest request = AIRLOCK__QA_REQUEST__INIT;
    request.service = (char *) s_get (release, "service");
    request.version = (char *) s_get (release, "version");
    request.artifact_sha256 = (char *) s_get (release, "artifact_sha256");
    al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
    envelope.deployment_id = deployment;
    envelope.environment = AIRLOCK__ENVIRONMENT__ENV_STAGING;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_QA_REQUEST;
    envelope.qa_request = &request;
    return s_send (self, &envelope, s_get (release, "release_id"), "qa");
}

//  An audit-visible event about a release: a Notification through the broker, which
//  records it (and the notifier delivers it to the endpoints that want template).
static int
s_notify (s_orchestrator_t *self, json_t *release, const char *deployment_id, Airlock__Environment env,
          const char *step, const char *template_name, const char *subject, const char *text)
{
    Airlock__Notification note = AIRLOCK__NOTIFICATION__INIT;
    note.template_ = (char *) template_name;
    note.subject = (char *) subject;
    note.text = (char *) text;
    Airlock__Notification__FieldsEntry service = AIRLOCK__NOTIFICATION__FIELDS_ENTRY__INIT;
    service.key = (char *) "service";
    service.value = (char *) s_get (release, "service");
    Airlock__Notification__FieldsEntry *fields [1] = { &service };
    note.n_fields = 1;
    note.fields = fields;
    al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
    envelope.deployment_id = (char *) deployment_id;
    envelope.environment = env;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_NOTIFICATION;
    envelope.notification = &note;
    return s_send (self, &envelope, s_get (release, "release_id"), step);
}

//  The production deployment request, seed 001's "Production Deployment Request".
static int
s_file_request (s_orchestrator_t *self, json_t *release)
{
    const al_service_t *svc = s_service (self, release);
    const char *type_name = s_get (release, "type");
    Airlock__DeploymentType type = al_deployment_type_from_name (type_name);
    char request_id [AL_ID_SIZE];
    al_id_deployment (s_get (release, "release_id"), AL_ID_PART_PRODUCTION, request_id, sizeof request_id);
    json_t *qa = json_object_get (release, "qa");
    bool migrations = *s_get (release, "migration_set_sha256") != 0;
    bool urgent = type == AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_HOTFIX || type == AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_EMERGENCY;
    const char *risk = urgent? "High": migrations? "Medium": "Low";
    unsigned instances = svc? al_service_instances (svc, AIRLOCK__ENVIRONMENT__ENV_PRODUCTION): 1;

    //  The checklist, section by section (seed 001), each box computed (al_checklist).
    const char *report_sha256 = json_string_value (json_object_get (qa, "report_sha256"));
    al_checklist_input_t input = { .policy = self->policy, .service = svc, .release = release,
                                   .state_dir = self->state_dir, .now = (time_t) (al_clock_wall_ms () / 1000),
                                   .risk = risk };
    al_checklist_t *checklist = al_checklist_new (&input);
    Airlock__ApprovalRequest request = AIRLOCK__APPROVAL_REQUEST__INIT;
    request.request_id = request_id;
    request.deployment_type = type;
    request.environment = AIRLOCK__ENVIRONMENT__ENV_PRODUCTION;
    request.service = (char *) s_get (release, "service");
    request.version = (char *) s_get (release, "version");
    request.artifact_uri = (char *) s_get (release, "artifact_uri");
    request.artifact_sha256 = (char *) s_get (release, "artifact_sha256");
    request.qa_report_sha256 = (char *) (report_sha256? report_sha256: AL_APPROVAL_GATE_NO_QA_REPORT);
    request.migration_set_sha256 = (char *) s_get (release, "migration_set_sha256");
    request.urgency = (char *) (type == AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_EMERGENCY? "Emergency": urgent? "Urgent": "Routine");
    request.risk_level = (char *) risk;
    request.risk_impact = (char *) (migrations? "schema change: data at risk without the verified backup": "application only");
    request.risk_mitigation = (char *) "verified backup, staged rollout with readiness gates, automatic rollback on breach";
    request.summary = (char *) (*s_get (release, "summary")? s_get (release, "summary"): s_get (release, "version"));
    char rollback_command [128];
    snprintf (rollback_command, sizeof rollback_command, "airlock rollback %s", s_get (release, "release_id"));
    request.rollback_command = rollback_command;
    request.rollback_migration = (char *) (migrations? (svc && svc->data_rollback == AL_SERVICE_DATA_ROLLBACK_RESTORE?
                                           "restore the pre-deploy backup": "down scripts, else backup restore"): "none");
    request.rollback_estimate_minutes = 1 + instances / 10;
    request.n_checklist = al_checklist_size (checklist);
    request.checklist = al_checklist_items (checklist);
    request.strategy = svc? al_service_strategy (svc, AIRLOCK__ENVIRONMENT__ENV_PRODUCTION): AIRLOCK__STRATEGY__STRATEGY_ROLLING;
    request.instances = instances;
    request.window_start_ms = (uint64_t) json_integer_value (json_object_get (release, "window_start_ms"));
    request.window_end_ms = (uint64_t) json_integer_value (json_object_get (release, "window_end_ms"));
    //  The broker-stamped sender of the ReleaseCandidate: the gate refuses the person
    //  behind it as an approver (four eyes), and the approvers sign it.
    request.submitted_by = (char *) s_get (release, "submitted_by");
    al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
    envelope.deployment_id = request_id;
    envelope.environment = AIRLOCK__ENVIRONMENT__ENV_PRODUCTION;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_APPROVAL_REQUEST;
    envelope.approval_request = &request;
    json_object_set_new (release, "request_id", json_string (request_id));
    int rc = s_send (self, &envelope, s_get (release, "release_id"), "approval");
    al_checklist_destroy (&checklist);
    return rc;
}

//  ---- the state machine ------------------------------------------------------------------

//  What the current state asks to send (idempotent: the broker de-duplicates resends).
static int
s_act (s_orchestrator_t *self, json_t *release)
{
    if (s_in (release, "STAGING"))
        return s_deploy_staging (self, release);
    if (s_in (release, "VALIDATE"))
        return s_request_qa (self, release);
    if (s_in (release, "APPROVE"))
        return s_file_request (self, release);
    return 0;
}

//  A rollback candidate must name the release that ran in production before the current
//  one (deploy-manager's record): its type needs no staging, no QA and no manager, so it
//  must not carry anything new. deploy-manager checks it again at pre-flight. Returns
//  true, or false with why.
static bool
s_rollback_target_ok (s_orchestrator_t *self, const Airlock__ReleaseCandidate *candidate, char *why, size_t why_size)
{
    char path [S_PATH_SIZE];
    al_release_record_t record;
    char error [512];
    if (!al_release_record_path_in_state (self->state_dir, candidate->service, "production", path, sizeof path)) {
        snprintf (why, why_size, "%.64s is not a service name", candidate->service);
        return false;
    }
    if (al_release_record_load (path, &record, error, sizeof error) != 0) {
        snprintf (why, why_size, "the release record cannot be read: %s", error);
        return false;
    }
    const al_release_t *previous = &record.previous;
    bool ok = previous->present && strcmp (previous->version, candidate->version) == 0
           && strcmp (previous->digest, candidate->artifact_sha256) == 0;
    if (!ok) {
        if (previous->present)
            snprintf (why, why_size, "a rollback must return to %.64s (sha256:%.64s), the release that ran in "
                      "production before the current one", previous->version, previous->digest);
        else
            snprintf (why, why_size, "nothing ran in production before the current release of %.64s (%.512s): "
                      "nothing to roll back to", candidate->service, path);
    }
    return ok;
}

static int
s_candidate (s_orchestrator_t *self, const al_envelope_t *envelope)
{
    const Airlock__ReleaseCandidate *candidate = envelope->release_candidate;
    const char *id = envelope->deployment_id;
    if (!al_id_release_valid (id)) {
        zsys_warning ("orchestrator: release candidate %s from %s: the release id must be 1..56 of [A-Za-z0-9._-], "
                      "not starting with '.'",
                      id? id: "", envelope->sender? envelope->sender->identity: "?");
        return 0;
    }
    json_t *release = s_load (self, id);
    if (release) {
        //  A redelivery, or a restart between save and send: do what the state asks.
        int rc = s_act (self, release);
        json_decref (release);
        return rc;
    }
    Airlock__DeploymentType type = candidate->deployment_type? candidate->deployment_type
                                 : AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD;
    release = json_pack ("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I}",
                         "release_id", id, "service", candidate->service, "version", candidate->version,
                         "artifact_uri", candidate->artifact_uri, "artifact_sha256", candidate->artifact_sha256,
                         "migration_set_sha256", candidate->migration_set_sha256? candidate->migration_set_sha256: "",
                         "type", al_deployment_type_name (type)? al_deployment_type_name (type): "standard",
                         "summary", candidate->summary? candidate->summary: "",
                         "submitted_by", envelope->sender? envelope->sender->identity: "",
                         "created_ms", (json_int_t) al_clock_wall_ms ());
    json_t *changes = json_array ();
    for (size_t i = 0; i < candidate->n_changes; i++)
        json_array_append_new (changes, json_string (candidate->changes [i]));
    json_object_set_new (release, "changes", changes);
    //  The submitter's declarations, for the checklist (never ticked unless declared).
    json_t *dependencies = json_array ();
    for (size_t i = 0; i < candidate->n_dependencies_added; i++)
        json_array_append_new (dependencies, json_string (candidate->dependencies_added [i]));
    json_object_set_new (release, "dependencies_added", dependencies);
    json_object_set_new (release, "no_dependencies_added", json_boolean (candidate->no_dependencies_added));
    json_object_set_new (release, "breaking_changes", json_string (candidate->breaking_changes? candidate->breaking_changes: ""));
    json_object_set_new (release, "no_breaking_changes", json_boolean (candidate->no_breaking_changes));
    if (candidate->window_end_ms) {
        json_object_set_new (release, "window_start_ms", json_integer ((json_int_t) candidate->window_start_ms));
        json_object_set_new (release, "window_end_ms", json_integer ((json_int_t) candidate->window_end_ms));
    }
    s_state (release, "PREPARE", "release candidate from %s", s_get (release, "submitted_by"));
    bool can_skip = al_policy_skip_staging_quorum (self->policy, type).count > 0;
    char why [1024] = "";
    //  Seed 001: "Human declares emergency". The sender's role comes from its CURVE key
    //  (the broker sets it), its kind from roles.yaml: no ci client, AI agent or bus
    //  agent declares one.
    const char *role = envelope->sender? envelope->sender->role: "";
    const char *kind = al_policy_role_kind (self->policy, role);
    bool human = kind && strcmp (kind, "human") == 0;
    if (type == AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_EMERGENCY && !human)
        s_state (release, "FAILED", "an emergency is declared by a human (seed 001): %s has role %s (%s), not a "
                 "human role; a human files it with `airlock submit --type emergency`", s_get (release, "submitted_by"),
                 *role? role: "(none)", kind? kind: "unknown kind");
    else
    if (!al_services_find (self->services, candidate->service))
        s_state (release, "FAILED", "service %s is not in services.yaml", candidate->service);
    else
    if (type == AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_ROLLBACK && !s_rollback_target_ok (self, candidate, why, sizeof why))
        s_state (release, "FAILED", "%s", why);
    else
    if (type == AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_SCHEDULED
    &&  (!candidate->window_end_ms || candidate->window_start_ms >= candidate->window_end_ms))
        s_state (release, "FAILED", "a scheduled deployment needs its window (airlock submit --window START/END)");
    else
    if (candidate->skip_staging && !can_skip)
        s_state (release, "FAILED", "%s deployments may not skip staging (no skip_staging_quorum in "
                 "deployment_types.yaml)", s_get (release, "type"));
    else
    if (al_policy_requires_staging (self->policy, type) && !candidate->skip_staging)
        s_state (release, "STAGING", "deploying %s %s to staging", candidate->service, candidate->version);
    else {
        json_object_set_new (release, "qa", json_pack ("{s:i, s:i, s:i, s:s}", "passed", 0, "failed", 0,
                             "skipped", 0, "report_sha256", AL_APPROVAL_GATE_NO_QA_REPORT));
        if (candidate->skip_staging)
            s_state (release, "APPROVE", "%s deployment skips staging: asking for approval, including the "
                     "extra approvals deployment_types.yaml names to skip it", s_get (release, "type"));
        else
            s_state (release, "APPROVE", "%s deployment: no staging run required; asking for approval",
                     s_get (release, "type"));
    }
    int rc = s_save (self, release);
    if (rc == 0)
        rc = s_act (self, release);
    //  A would-be emergency from a non-human is a refusal a human should see.
    if (rc == 0 && type == AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_EMERGENCY && !human)
        rc = s_notify (self, release, id, AIRLOCK__ENVIRONMENT__ENV_DEVELOPMENT, "emergency", "escalation",
                       "emergency refused: not declared by a human", s_get (release, "detail"));
    json_decref (release);
    return rc;
}

//  The release a deployment id belongs to, and which part ("-stg" or "-prod").
static json_t *
s_release_of (s_orchestrator_t *self, const char *deployment_id, bool *production_p)
{
    char id [AL_ID_SIZE];
    al_id_part_t part = al_id_release_of (deployment_id, id, sizeof id);
    *production_p = part == AL_ID_PART_PRODUCTION;
    return part == AL_ID_PART_NONE? NULL: s_load (self, id);
}

//  Why a deployment failed, for the release's detail (what `airlock status` shows): ":
//  STEP failed: DETAIL" of the receipt's first failed step, or "" when none says.
static void
s_failed_step (const Airlock__DeployReceipt *receipt, char *cause, size_t size)
{
    *cause = 0;
    for (size_t i = 0; i < receipt->n_steps; i++) {
        const Airlock__StepRecord *record = receipt->steps [i];
        if (record && record->outcome == AIRLOCK__OUTCOME__OUTCOME_FAILED) {
            const char *step = al_step_name (record->step);
            snprintf (cause, size, ": %s failed%s%.480s", step? step: "a step", *record->detail? ": ": "",
                      record->detail);
            return;
        }
    }
}

static int
s_receipt (s_orchestrator_t *self, const al_envelope_t *envelope)
{
    bool production = false;
    json_t *release = s_release_of (self, envelope->deployment_id, &production);
    if (!release)
        return 0;
    const Airlock__DeployReceipt *receipt = envelope->deploy_receipt;
    const char *outcome = al_outcome_name (receipt->outcome);
    bool changed = false;
    if (!production && s_in (release, "STAGING")) {
        if (receipt->outcome == AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED)
            s_state (release, "VALIDATE", "staging deployed (receipt %.12s...); QA validates it", receipt->receipt_sha256);
        else {
            char cause [600];
            s_failed_step (receipt, cause, sizeof cause);
            s_state (release, "FAILED", "staging deployment %s%s%s%s", outcome, *receipt->rollback_rule? ", rule ": "",
                     receipt->rollback_rule, cause);
        }
        changed = true;
    }
    else
    if (production && (s_in (release, "APPROVE") || s_in (release, "DEPLOY") || s_in (release, "MONITOR"))) {
        if (receipt->outcome == AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED)
            s_state (release, "DONE", "in production (receipt %s)", receipt->receipt_sha256);
        else
        if (receipt->outcome == AIRLOCK__OUTCOME__OUTCOME_ROLLED_BACK)
            s_state (release, "ROLLED_BACK", "rolled back to %s: rule %s", receipt->previous_version, receipt->rollback_rule);
        else {
            char cause [600];
            s_failed_step (receipt, cause, sizeof cause);
            s_state (release, "FAILED", "production deployment %s%s", outcome, cause);
        }
        json_object_set_new (release, "receipt_sha256", json_string (receipt->receipt_sha256));
        changed = true;
    }
    int rc = changed? s_save (self, release): 0;
    if (rc == 0 && changed)
        rc = s_act (self, release);
    json_decref (release);
    return rc;
}

static int
s_progress (s_orchestrator_t *self, const al_envelope_t *envelope)
{
    bool production = false;
    json_t *release = s_release_of (self, envelope->deployment_id, &production);
    if (!release)
        return 0;
    const Airlock__DeployProgress *progress = envelope->deploy_progress;
    bool changed = false;
    if (production && s_in (release, "APPROVE") && progress->journal) {
        s_state (release, "DEPLOY", "approved: deploy-manager runs the production deployment");
        changed = true;
    }
    if (production && s_in (release, "DEPLOY") && progress->journal && progress->step == AIRLOCK__STEP__STEP_SOAK
    &&  progress->outcome == AIRLOCK__OUTCOME__OUTCOME_STARTED) {
        s_state (release, "MONITOR", "rolled out; soaking on the golden signals");
        changed = true;
    }
    //  deploy-manager would not act on the grant at all (it does not verify: expired,
    //  another policy...): nothing ran, and nothing else will come for this release.
    if (production && (s_in (release, "APPROVE") || s_in (release, "DEPLOY")) && !progress->journal
    &&  progress->outcome == AIRLOCK__OUTCOME__OUTCOME_FAILED && progress->detail
    &&  strncmp (progress->detail, "refused:", 8) == 0) {
        s_state (release, "FAILED", "deploy-manager %.480s", progress->detail);
        changed = true;
    }
    int rc = changed? s_save (self, release): 0;
    json_decref (release);
    return rc;
}

//  A line in the release's history that does not change its state.
static void
s_note (json_t *release, const char *detail)
{
    json_t *history = json_object_get (release, "history");
    if (!json_is_array (history)) {
        history = json_array ();
        json_object_set_new (release, "history", history);
    }
    json_array_append_new (history, json_pack ("{s:s, s:I, s:s}", "state", s_get (release, "state"),
                                               "time_ms", (json_int_t) al_clock_wall_ms (), "detail", detail));
    zsys_info ("orchestrator: %s: %s", s_get (release, "release_id"), detail);
}

#define S_MAX_QA_EVIDENCE 32

//  A QaReport from a role that is not the policy's QA authority: kept with the release
//  as evidence (shown by `airlock status`), never its verdict, and made audit-visible
//  with a qa_evidence Notification. Idempotent: a redelivery finds its entry again and
//  resends the same Notification (same message id, de-duplicated by the broker).
static int
s_qa_evidence (s_orchestrator_t *self, json_t *release, const al_envelope_t *envelope, const char *authority)
{
    const Airlock__QaReport *report = envelope->qa_report;
    const char *identity = envelope->sender? envelope->sender->identity: "";
    const char *role = envelope->sender? envelope->sender->role: "";
    const char *message_id = envelope->message_id? envelope->message_id: "";
    unsigned passed = 0, failed = 0;
    for (size_t i = 0; i < report->n_suites; i++) {
        passed += report->suites [i]->passed;
        failed += report->suites [i]->failed;
    }
    json_t *evidence = json_object_get (release, "qa_evidence");
    if (!json_is_array (evidence)) {
        evidence = json_array ();
        json_object_set_new (release, "qa_evidence", evidence);
    }
    size_t index, found = SIZE_MAX;
    json_t *entry;
    json_array_foreach (evidence, index, entry)
        if (strcmp (s_get (entry, "from"), identity) == 0 && strcmp (s_get (entry, "message_id"), message_id) == 0)
            found = index;
    //  Identity and role are the broker's (from the CURVE key); the digest is the
    //  sender's own text, so it is quoted only if it is one (64 lowercase hex digits).
    const char *digest = report->report_sha256? report->report_sha256: "";
    bool hex = strlen (digest) == 64 && strspn (digest, "0123456789abcdef") == 64;
    char detail [600];
    snprintf (detail, sizeof detail, "QA report from %.64s (role %.64s) kept as evidence, not as the verdict: "
              "only role %.64s gives one (roles.yaml qa_authority); it said %s, %u/%u passed, report %s",
              identity, role, authority? authority: "(none named)", report->approved? "approved": "not approved",
              passed, passed + failed, hex? digest: "(not a digest)");
    int rc = 0;
    if (found == SIZE_MAX) {
        if (json_array_size (evidence) >= S_MAX_QA_EVIDENCE) {
            zsys_warning ("orchestrator: %s: %s (not kept: %d evidence reports already)", s_get (release, "release_id"),
                          detail, S_MAX_QA_EVIDENCE);
            return 0;
        }
        found = json_array_size (evidence);
        json_array_append_new (evidence, json_pack ("{s:s, s:s, s:s, s:b, s:i, s:i, s:s, s:s, s:I}",
                               "from", identity, "role", role, "message_id", message_id, "approved", report->approved,
                               "passed", (int) passed, "failed", (int) failed,
                               "report_sha256", hex? digest: "",
                               "artifact_sha256", report->artifact_sha256? report->artifact_sha256: "",
                               "time_ms", (json_int_t) al_clock_wall_ms ()));
        s_note (release, detail);
        rc = s_save (self, release);
    }
    char step [32];
    snprintf (step, sizeof step, "qaev-%u", (unsigned) found);
    if (rc == 0)
        rc = s_notify (self, release, envelope->deployment_id, envelope->environment, step, "qa_evidence",
                       "QA report from a non-authority kept as evidence only", detail);
    return rc;
}

static int
s_qa_report (s_orchestrator_t *self, const al_envelope_t *envelope)
{
    bool production = false;
    json_t *release = s_release_of (self, envelope->deployment_id, &production);
    if (!release)
        return 0;
    int rc = 0;
    const Airlock__QaReport *report = envelope->qa_report;
    const char *authority = al_policy_qa_authority (self->policy);
    if (!production && (!authority || !envelope->sender || strcmp (envelope->sender->role, authority) != 0)) {
        rc = s_qa_evidence (self, release, envelope, authority);
        json_decref (release);
        return rc;
    }
    if (!production && s_in (release, "VALIDATE")) {
        unsigned passed = 0, failed = 0, skipped = 0;
        for (size_t i = 0; i < report->n_suites; i++) {
            passed += report->suites [i]->passed;
            failed += report->suites [i]->failed;
            skipped += report->suites [i]->skipped;
        }
        json_object_set_new (release, "qa", json_pack ("{s:b, s:i, s:i, s:i, s:s}", "approved", report->approved,
                             "passed", (int) passed, "failed", (int) failed, "skipped", (int) skipped,
                             "report_sha256", report->report_sha256));
        json_object_set_new (json_object_get (release, "qa"), "suites", al_checklist_suites_json (report));
        bool matches = strcmp (report->artifact_sha256, s_get (release, "artifact_sha256")) == 0;
        //  The verdict is the kept report, not the message: open it by digest as
        //  pre-flight will, so a request is filed only on a report that approves.
        char why [1024] = "";
        char *store = report->approved && matches? al_qa_reports_dir (self->state_dir): NULL;
        bool kept = store && al_qa_reports_approves (store, report->report_sha256, s_get (release, "artifact_sha256"),
                                                     why, sizeof why);
        free (store);
        if (report->approved && matches && !kept)
            s_state (release, "FAILED", "QA report refused: %.900s", why);
        else
        if (report->approved && matches)
            s_state (release, "APPROVE", "QA passed %u/%u; production request filed for human approval",
                     passed, passed + failed);
        else
            s_state (release, "FAILED", "QA %s (%u/%u passed%s%s): no approval asked", matches? "needs fixes": "reported on another artifact",
                     passed, passed + failed, report->n_issues_found? "; ": "",
                     report->n_issues_found? report->issues_found [0]: "");
        rc = s_save (self, release);
        if (rc == 0)
            rc = s_act (self, release);
    }
    json_decref (release);
    return rc;
}

//  The broker closed a production request: a required approver said DENY.
static int
s_closed (s_orchestrator_t *self, const al_envelope_t *envelope)
{
    const Airlock__Notification *note = envelope->notification;
    if (!note || strcmp (note->template_, AL_BROKER_APPROVAL_CLOSED_TEMPLATE) != 0
    ||  !envelope->sender || strcmp (envelope->sender->identity, "broker") != 0)
        return 0;
    bool production = false;
    json_t *release = s_release_of (self, envelope->deployment_id, &production);
    if (!release)
        return 0;
    int rc = 0;
    if (production && s_in (release, "APPROVE")) {
        s_state (release, "FAILED", "%.480s", note->text && *note->text? note->text: "production request closed");
        rc = s_save (self, release);
    }
    json_decref (release);
    return rc;
}

static int
s_handle (s_orchestrator_t *self, const al_envelope_t *envelope)
{
    switch (envelope->body_case) {
        case AIRLOCK__ENVELOPE__BODY_RELEASE_CANDIDATE: return s_candidate (self, envelope);
        case AIRLOCK__ENVELOPE__BODY_DEPLOY_RECEIPT:    return s_receipt (self, envelope);
        case AIRLOCK__ENVELOPE__BODY_DEPLOY_PROGRESS:   return s_progress (self, envelope);
        case AIRLOCK__ENVELOPE__BODY_QA_REPORT:         return s_qa_report (self, envelope);
        case AIRLOCK__ENVELOPE__BODY_NOTIFICATION:       return s_closed (self, envelope);
        default:                                        return 0;
    }
}

int
al_orchestrator_run (const al_config_t *config, char *error, size_t error_size)
{
    int rc = 2;
    s_orchestrator_t self;
    memset (&self, 0, sizeof self);
    al_policy_errors_t *errors = NULL;
    self.policy = al_policy_load (al_config_policy_dir (config), &errors);
    if (!self.policy) {
        snprintf (error, error_size, "%s", errors && al_policy_errors_count (errors)?
                  al_policy_errors_at (errors, 0): "policy: cannot load");
        goto cleanup;
    }
    self.services = al_services_load (al_config_services_path (config), error, error_size);
    if (!self.services)
        goto cleanup;
    self.state_dir = al_config_state_dir (config);
    char releases_dir [S_PATH_SIZE];
    if (al_paths_get (self.state_dir, AL_PATH_ORCHESTRATOR_RELEASES_DIR, releases_dir, sizeof releases_dir,
                      error, error_size) != 0
    ||  al_file_make_directories (releases_dir, 0700, error, error_size) != 0)
        goto cleanup;
    self.agent = al_agent_new_for_role (config, "orchestrator", true, error, error_size);
    if (!self.agent)
        goto cleanup;
    zsys_info ("orchestrator: ready (releases in %s)", releases_dir);
    rc = 0;
    while (!al_agent_interrupted ()) {
        al_envelope_t *envelope = al_agent_recv (self.agent, 500);
        if (!envelope)
            continue;
        if (s_handle (&self, envelope) == 0 && envelope->delivery_id)
            al_agent_ack_delivery (self.agent, envelope->delivery_id);
        //  Not acknowledged: the broker delivers it again (after a restart at the latest).
        al_codec_free (&envelope);
    }
    al_agent_flush (self.agent, 3000);
cleanup:
    al_agent_destroy (&self.agent);
    al_services_destroy (&self.services);
    al_policy_errors_destroy (&errors);
    al_policy_destroy (&self.policy);
    return rc;
}
