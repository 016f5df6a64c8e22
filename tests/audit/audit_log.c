/*  audit_log.c: the audit log of a small release history, built through the store API
    (see audit_log.h). Rows are what the broker would have written: the sender's
    identity and role in the row, the envelope as the sender packed it, denials with the
    broker's reason, the broker's own rows (PolicyLoaded, ExecuteDeploy, ApprovalClosed).
*/
#include "audit_log.h"
#include "proto/al_codec.h"
#include "proto/al_signature.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <ftw.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_ARTIFACT_A "1111111111111111111111111111111111111111111111111111111111111111"
#define S_ARTIFACT_B "2222222222222222222222222222222222222222222222222222222222222222"
#define S_ARTIFACT_C "3333333333333333333333333333333333333333333333333333333333333333"
#define S_QA_REPORT  "4444444444444444444444444444444444444444444444444444444444444444"

typedef struct {
    audit_log_t *log;
    al_store_t *store;
} s_builder_t;

uint64_t
audit_log_time (uint64_t sequence)
{
    return AL_T0_MS + sequence * 1000;
}

static char *
s_path (const char *format, ...)
{
    char *path = NULL;
    va_list args;
    va_start (args, format);
    assert_true (vasprintf (&path, format, args) >= 0);
    va_end (args);
    return path;
}

static void
s_mkdir (const char *path)
{
    assert_true (mkdir (path, 0700) == 0 || errno == EEXIST);
}

char *
audit_log_evidence (const audit_log_t *self, const char *deployment_id)
{
    return s_path ("%s/.artifacts/deployment/%s/deploy_receipt.json", self->deploy_dir, deployment_id);
}

void
audit_log_write_file (const char *path, const char *text)
{
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    assert_int_equal (fputs (text, file) >= 0, 1);
    assert_int_equal (fclose (file), 0);
}

char *
audit_log_read_file (const char *path)
{
    FILE *file = fopen (path, "r");
    if (!file)
        return NULL;
    size_t capacity = 4096, size = 0;
    char *text = malloc (capacity);
    size_t got;
    while (text && (got = fread (text + size, 1, capacity - size - 1, file)) > 0) {
        size += got;
        if (size + 1 == capacity) {
            capacity *= 2;
            char *grown = realloc (text, capacity);
            if (!grown) {
                free (text);
                text = NULL;
            }
            else
                text = grown;
        }
    }
    fclose (file);
    if (text)
        text [size] = 0;
    return text;
}

//  ---- rows --------------------------------------------------------------------------------

static uint64_t
s_append_raw (s_builder_t *self, const char *sender, const char *role, const char *type, const char *message_id,
              const char *deployment_id, const char *environment, al_store_decision_t decision, const char *reason,
              const uint8_t *bytes, size_t size)
{
    audit_log_t *log = self->log;
    al_store_event_t event = {
        .time_ms = audit_log_time (log->rows + 1),
        .sender = sender, .role = role, .type = type, .message_id = message_id,
        .deployment_id = deployment_id, .environment = environment,
        .decision = decision, .reason = reason, .envelope = bytes, .envelope_size = size,
    };
    al_store_append_result_t result;
    assert_int_equal (al_store_begin (self->store), AL_STORE_OK);
    assert_int_equal (al_store_append (self->store, &event, &result), AL_STORE_OK);
    assert_int_equal (al_store_commit (self->store), AL_STORE_OK);
    log->rows++;
    assert_int_equal (result.sequence, log->rows);
    return result.sequence;
}

//  Append an envelope (packed, so validated) as sent by sender.
static uint64_t
s_append (s_builder_t *self, const char *sender, const char *role, al_envelope_t *envelope,
          al_store_decision_t decision, const char *reason)
{
    char message_id [64], error [256];
    snprintf (message_id, sizeof message_id, "m-%llu", (unsigned long long) self->log->rows + 1);
    envelope->message_id = message_id;
    envelope->timestamp_ms = audit_log_time (self->log->rows + 1);
    uint8_t *bytes = NULL;
    size_t size = 0;
    if (al_codec_pack (envelope, &bytes, &size, error, sizeof error) != AL_CODEC_OK)
        fail_msg ("pack: %s", error);
    const char *env = al_environment_name (envelope->environment);
    uint64_t sequence = s_append_raw (self, sender, role, al_msg_type_name ((al_msg_type_t) envelope->body_case),
                                      message_id, envelope->deployment_id, env? env: "", decision, reason,
                                      bytes, size);
    free (bytes);
    return sequence;
}

static uint64_t
s_deploy_request (s_builder_t *self, const char *id, Airlock__Environment env, const char *service,
                  const char *version, const char *artifact, const char *sender, const char *role,
                  al_store_decision_t decision, const char *reason)
{
    Airlock__DeployRequest request = AIRLOCK__DEPLOY_REQUEST__INIT;
    request.service = (char *) service;
    request.version = (char *) version;
    request.artifact_uri = (char *) "file:///artifacts/app.tar.gz";
    request.artifact_sha256 = (char *) artifact;
    request.strategy = AIRLOCK__STRATEGY__STRATEGY_ROLLING;
    request.instances = 2;
    request.deployment_type = AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD;
    al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
    envelope.deployment_id = (char *) id;
    envelope.environment = env;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_DEPLOY_REQUEST;
    envelope.deploy_request = &request;
    return s_append (self, sender, role, &envelope, decision, reason);
}

static uint64_t
s_progress (s_builder_t *self, const char *id, Airlock__Environment env, Airlock__Step step, Airlock__Outcome outcome,
            bool journal, const char *detail)
{
    Airlock__DeployProgress progress = AIRLOCK__DEPLOY_PROGRESS__INIT;
    progress.step = step;
    progress.outcome = outcome;
    progress.journal = journal;
    progress.detail = (char *) detail;
    progress.service = (char *) "api";
    al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
    envelope.deployment_id = (char *) id;
    envelope.environment = env;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_DEPLOY_PROGRESS;
    envelope.deploy_progress = &progress;
    return s_append (self, "deploy-manager-1", "deploy-manager", &envelope, AL_STORE_ACCEPTED, "");
}

static uint64_t
s_journal (s_builder_t *self, const char *id, Airlock__Environment env, Airlock__Step step, Airlock__Outcome outcome)
{
    return s_progress (self, id, env, step, outcome, true, outcome == AIRLOCK__OUTCOME__OUTCOME_STARTED? "": "done");
}

//  deploy-manager's evidence, then the receipt row carrying its SHA-256.
static uint64_t
s_receipt (s_builder_t *self, const char *id, Airlock__Environment env, const char *service, const char *version,
           const char *artifact, Airlock__Outcome outcome, const char *rule, const char *previous)
{
    audit_log_t *log = self->log;
    char *dir = s_path ("%s/.artifacts/deployment/%s", log->deploy_dir, id);
    char *mkdir_command = s_path ("mkdir -p '%s'", dir);
    assert_int_equal (system (mkdir_command), 0);
    char *path = audit_log_evidence (log, id);
    char text [1024];
    snprintf (text, sizeof text, "{\n  \"deployment_id\": \"%s\",\n  \"format\": \"airlock-deploy-receipt-v1\",\n"
              "  \"outcome\": \"%s\",\n  \"rollback_rule\": \"%s\",\n  \"service\": \"%s\",\n  \"version\": \"%s\"\n}\n",
              id, al_outcome_name (outcome), rule, service, version);
    audit_log_write_file (path, text);
    uint8_t digest [32];
    char hex [65];
    crypto_hash_sha256 (digest, (const uint8_t *) text, strlen (text));
    sodium_bin2hex (hex, sizeof hex, digest, sizeof digest);

    Airlock__StepRecord record = AIRLOCK__STEP_RECORD__INIT;
    record.step = AIRLOCK__STEP__STEP_SOAK;
    record.outcome = outcome == AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED? AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED
                   : AIRLOCK__OUTCOME__OUTCOME_FAILED;
    record.started_ms = AL_T0_MS;
    record.ended_ms = AL_T0_MS + 1;
    record.detail = (char *) "soak";
    Airlock__StepRecord *records [] = { &record };
    Airlock__DeployReceipt receipt = AIRLOCK__DEPLOY_RECEIPT__INIT;
    receipt.service = (char *) service;
    receipt.version = (char *) version;
    receipt.artifact_sha256 = (char *) artifact;
    receipt.outcome = outcome;
    receipt.n_steps = 1;
    receipt.steps = records;
    receipt.receipt_sha256 = hex;
    receipt.rollback_rule = (char *) rule;
    receipt.previous_version = (char *) previous;
    al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
    envelope.deployment_id = (char *) id;
    envelope.environment = env;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_DEPLOY_RECEIPT;
    envelope.deploy_receipt = &receipt;
    uint64_t sequence = s_append (self, "deploy-manager-1", "deploy-manager", &envelope, AL_STORE_ACCEPTED, "");
    free (path);
    free (mkdir_command);
    free (dir);
    return sequence;
}

//  Journal of a whole run (preflight .. soak, receipt) with its outcome, and the receipt.
static uint64_t
s_run (s_builder_t *self, const char *id, Airlock__Environment env, const char *service, const char *version,
       const char *artifact, uint64_t *rollout_p)
{
    const Airlock__Step steps [] = { AIRLOCK__STEP__STEP_PREFLIGHT, AIRLOCK__STEP__STEP_BACKUP,
                                     AIRLOCK__STEP__STEP_MIGRATE, AIRLOCK__STEP__STEP_ROLLOUT,
                                     AIRLOCK__STEP__STEP_SOAK, AIRLOCK__STEP__STEP_RECEIPT };
    for (size_t i = 0; i < sizeof steps / sizeof steps [0]; i++) {
        uint64_t started = s_journal (self, id, env, steps [i], AIRLOCK__OUTCOME__OUTCOME_STARTED);
        if (rollout_p && steps [i] == AIRLOCK__STEP__STEP_ROLLOUT) {
            *rollout_p = started;
            //  Progress inside the step: not part of the record.
            s_progress (self, id, env, AIRLOCK__STEP__STEP_ROLLOUT, AIRLOCK__OUTCOME__OUTCOME_STARTED, false,
                        "instance 1 ready");
        }
        s_journal (self, id, env, steps [i], AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED);
    }
    return s_receipt (self, id, env, service, version, artifact, AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED, "", "");
}

static void
s_fill_request (Airlock__ApprovalRequest *request, const char *id, const char *service, const char *version,
                const char *artifact)
{
    airlock__approval_request__init (request);
    request->request_id = (char *) id;
    request->deployment_type = AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD;
    request->environment = AIRLOCK__ENVIRONMENT__ENV_PRODUCTION;
    request->service = (char *) service;
    request->version = (char *) version;
    request->artifact_uri = (char *) "file:///artifacts/app.tar.gz";
    request->artifact_sha256 = (char *) artifact;
    request->qa_report_sha256 = (char *) S_QA_REPORT;
    request->risk_level = (char *) "Low";
    request->strategy = AIRLOCK__STRATEGY__STRATEGY_ROLLING;
    request->instances = 2;
    request->requested_by = (char *) "orchestrator-1";
}

static uint64_t
s_file_request (s_builder_t *self, const char *id, const char *service, const char *version, const char *artifact)
{
    Airlock__ApprovalRequest request;
    s_fill_request (&request, id, service, version, artifact);
    al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
    envelope.deployment_id = (char *) id;
    envelope.environment = AIRLOCK__ENVIRONMENT__ENV_PRODUCTION;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_APPROVAL_REQUEST;
    envelope.approval_request = &request;
    return s_append (self, "orchestrator-1", "orchestrator", &envelope, AL_STORE_ACCEPTED, "production request");
}

//  A signed approval and the buffers it points into.
typedef struct {
    uint8_t statement [1024];
    uint8_t signature [AL_ED25519_SIGNATURE_SIZE];
    uint8_t public_key [AL_ED25519_PUBLIC_KEY_SIZE];
    uint8_t approval_id [AL_APPROVAL_ID_SIZE];
    Airlock__SignedApproval message;
} s_signed_t;

static void
s_sign (s_signed_t *holder, const char *request_id, const char *service, const char *artifact,
        const uint8_t public_key [32], const uint8_t secret_key [64], Airlock__Decision decision, uint64_t now_ms)
{
    char key_id [32];
    al_key_id (public_key, key_id);
    randombytes_buf (holder->approval_id, sizeof holder->approval_id);
    Airlock__ApprovalStatement statement = AIRLOCK__APPROVAL_STATEMENT__INIT;
    statement.request_id = (char *) request_id;
    statement.deployment_type = AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD;
    statement.environment = AIRLOCK__ENVIRONMENT__ENV_PRODUCTION;
    statement.service = (char *) service;
    statement.artifact_sha256 = (char *) artifact;
    statement.qa_report_sha256 = (char *) S_QA_REPORT;
    statement.approver_key_id = key_id;
    statement.issued_at_ms = now_ms;
    statement.expires_at_ms = now_ms + 3600 * 1000;
    statement.approval_id.data = holder->approval_id;
    statement.approval_id.len = sizeof holder->approval_id;
    statement.decision = decision;
    statement.reason = (char *) (decision == AIRLOCK__DECISION__DECISION_DENY? "the risk is not acceptable today": "");
    size_t size = airlock__approval_statement__get_packed_size (&statement);
    assert_true (size <= sizeof holder->statement);
    airlock__approval_statement__pack (&statement, holder->statement);
    size_t signing_size = 0;
    uint8_t *signing = al_codec_signing_bytes (AL_SIGN_APPROVAL_STATEMENT, holder->statement, size, &signing_size);
    assert_non_null (signing);
    crypto_sign_detached (holder->signature, NULL, signing, signing_size, secret_key);
    free (signing);
    memcpy (holder->public_key, public_key, 32);
    airlock__signed_approval__init (&holder->message);
    holder->message.statement.data = holder->statement;
    holder->message.statement.len = size;
    holder->message.signature.data = holder->signature;
    holder->message.signature.len = sizeof holder->signature;
    holder->message.format = AIRLOCK__SIGNATURE_FORMAT__SIG_ED25519;
    holder->message.public_key.data = holder->public_key;
    holder->message.public_key.len = sizeof holder->public_key;
}

static uint64_t
s_send_approval (s_builder_t *self, const char *request_id, s_signed_t *holder, al_store_decision_t decision,
                 const char *reason)
{
    al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
    envelope.deployment_id = (char *) request_id;
    envelope.environment = AIRLOCK__ENVIRONMENT__ENV_PRODUCTION;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_SIGNED_APPROVAL;
    envelope.signed_approval = &holder->message;
    return s_append (self, "approver-1", "approver", &envelope, decision, reason);
}

//  The broker's ExecuteDeploy, as al_approval_desk_execute_deploy makes it.
static uint64_t
s_grant (s_builder_t *self, const char *id, const char *service, const char *version, const char *artifact,
         s_signed_t *holder, uint64_t approval_sequence)
{
    Airlock__ApprovalRequest request;
    s_fill_request (&request, id, service, version, artifact);
    Airlock__DeployRequest deploy = AIRLOCK__DEPLOY_REQUEST__INIT;
    deploy.service = (char *) service;
    deploy.version = (char *) version;
    deploy.artifact_uri = request.artifact_uri;
    deploy.artifact_sha256 = (char *) artifact;
    deploy.strategy = request.strategy;
    deploy.instances = request.instances;
    deploy.deployment_type = request.deployment_type;
    Airlock__SignedApproval *approvals [] = { &holder->message };
    Airlock__ProductionGrant grant = AIRLOCK__PRODUCTION_GRANT__INIT;
    grant.request_id = (char *) id;
    grant.request = &request;
    grant.n_approvals = 1;
    grant.approvals = approvals;
    grant.granted_at_ms = audit_log_time (self->log->rows + 1);
    grant.grant_audit_sequence = approval_sequence;
    Airlock__ExecuteDeploy execute = AIRLOCK__EXECUTE_DEPLOY__INIT;
    execute.request = &deploy;
    execute.grant = &grant;
    execute.reason = (char *) "production grant: the approval quorum is met";
    al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
    envelope.deployment_id = (char *) id;
    envelope.environment = AIRLOCK__ENVIRONMENT__ENV_PRODUCTION;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_EXECUTE_DEPLOY;
    envelope.execute_deploy = &execute;
    char reason [256];
    snprintf (reason, sizeof reason, "production grant for request %s: granted: manager", id);
    return s_append (self, "broker", "broker", &envelope, AL_STORE_ACCEPTED, reason);
}

static void
s_soak_signal (s_builder_t *self)
{
    Airlock__SoakSignal signal = AIRLOCK__SOAK_SIGNAL__INIT;
    signal.service = (char *) "api";
    signal.sequence = self->log->rows;
    signal.instances_up = 2;
    signal.instances_total = 2;
    al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
    envelope.environment = AIRLOCK__ENVIRONMENT__ENV_PRODUCTION;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_SOAK_SIGNAL;
    envelope.soak_signal = &signal;
    s_append (self, "monitor-1", "monitor", &envelope, AL_STORE_ACCEPTED, "");
}

//  ---- the history ----------------------------------------------------------------------------

static void
s_history (s_builder_t *self)
{
    audit_log_t *log = self->log;
    const Airlock__Environment stg = AIRLOCK__ENVIRONMENT__ENV_STAGING, prod = AIRLOCK__ENVIRONMENT__ENV_PRODUCTION;
    log->policy_loaded = s_append_raw (self, "broker", "broker", "PolicyLoaded", "", "", "", AL_STORE_ACCEPTED,
                                       "start: policy default digest 00", NULL, 0);

    //  rel-a: staging, QA, production with alice's approval; qa's own attempt at production is denied.
    log->a_stg_request = s_deploy_request (self, "rel-a-stg", stg, "api", "v1.1.0", S_ARTIFACT_A,
                                           "orchestrator-1", "orchestrator", AL_STORE_ACCEPTED, "roles.yaml: allowed");
    s_run (self, "rel-a-stg", stg, "api", "v1.1.0", S_ARTIFACT_A, NULL);
    Airlock__QaReport report = AIRLOCK__QA_REPORT__INIT;
    Airlock__SuiteResult suite = AIRLOCK__SUITE_RESULT__INIT;
    Airlock__SuiteResult *suites [] = { &suite };
    suite.name = (char *) "smoke";
    suite.passed = 12;
    report.service = (char *) "api";
    report.version = (char *) "v1.1.0";
    report.artifact_sha256 = (char *) S_ARTIFACT_A;
    report.n_suites = 1;
    report.suites = suites;
    report.approved = true;
    report.report_sha256 = (char *) S_QA_REPORT;
    al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
    envelope.deployment_id = (char *) "rel-a-stg";
    envelope.environment = stg;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_QA_REPORT;
    envelope.qa_report = &report;
    s_append (self, "qa-1", "qa", &envelope, AL_STORE_ACCEPTED, "");
    log->a_prod_request = s_file_request (self, "rel-a-prod", "api", "v1.1.0", S_ARTIFACT_A);
    log->a_prod_denial = s_deploy_request (self, "rel-a-prod", prod, "api", "v1.1.0", S_ARTIFACT_A, "qa-1", "qa",
                                           AL_STORE_DENIED, "roles.yaml: no rule lets role qa send DeployRequest "
                                           "in production (default deny)");
    s_signed_t alice;
    s_sign (&alice, "rel-a-prod", "api", S_ARTIFACT_A, log->alice_public, log->alice_secret,
            AIRLOCK__DECISION__DECISION_GRANT, audit_log_time (log->rows + 1));
    log->a_prod_approval = s_send_approval (self, "rel-a-prod", &alice, AL_STORE_ACCEPTED,
                                            "approval by alice for request rel-a-prod: granted");
    log->a_prod_grant = s_grant (self, "rel-a-prod", "api", "v1.1.0", S_ARTIFACT_A, &alice, log->a_prod_approval);
    s_soak_signal (self);
    log->a_prod_receipt = s_run (self, "rel-a-prod", prod, "api", "v1.1.0", S_ARTIFACT_A, &log->a_prod_rollout);

    //  rel-b: staging, then production approved by bob, rolled back during soak.
    s_deploy_request (self, "rel-b-stg", stg, "api", "v1.2.0", S_ARTIFACT_B, "orchestrator-1", "orchestrator",
                      AL_STORE_ACCEPTED, "roles.yaml: allowed");
    s_run (self, "rel-b-stg", stg, "api", "v1.2.0", S_ARTIFACT_B, NULL);
    s_file_request (self, "rel-b-prod", "api", "v1.2.0", S_ARTIFACT_B);
    s_signed_t bob;
    s_sign (&bob, "rel-b-prod", "api", S_ARTIFACT_B, log->bob_public, log->bob_secret,
            AIRLOCK__DECISION__DECISION_GRANT, audit_log_time (log->rows + 1));
    uint64_t approval = s_send_approval (self, "rel-b-prod", &bob, AL_STORE_ACCEPTED, "approval by bob");
    s_grant (self, "rel-b-prod", "api", "v1.2.0", S_ARTIFACT_B, &bob, approval);
    const Airlock__Step steps [] = { AIRLOCK__STEP__STEP_PREFLIGHT, AIRLOCK__STEP__STEP_BACKUP,
                                     AIRLOCK__STEP__STEP_MIGRATE, AIRLOCK__STEP__STEP_ROLLOUT };
    for (size_t i = 0; i < sizeof steps / sizeof steps [0]; i++) {
        uint64_t started = s_journal (self, "rel-b-prod", prod, steps [i], AIRLOCK__OUTCOME__OUTCOME_STARTED);
        if (i == 0)
            log->b_prod_first_journal = started;
        s_journal (self, "rel-b-prod", prod, steps [i], AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED);
    }
    s_journal (self, "rel-b-prod", prod, AIRLOCK__STEP__STEP_SOAK, AIRLOCK__OUTCOME__OUTCOME_STARTED);
    Airlock__RollbackTrigger trigger = AIRLOCK__ROLLBACK_TRIGGER__INIT;
    trigger.service = (char *) "api";
    trigger.rule = (char *) "error_rate_increase";
    trigger.detail = (char *) "error rate 9.1% against a 0.2% baseline";
    al_envelope_t trigger_envelope = AIRLOCK__ENVELOPE__INIT;
    trigger_envelope.deployment_id = (char *) "rel-b-prod";
    trigger_envelope.environment = prod;
    trigger_envelope.body_case = AIRLOCK__ENVELOPE__BODY_ROLLBACK_TRIGGER;
    trigger_envelope.rollback_trigger = &trigger;
    s_append (self, "monitor-1", "monitor", &trigger_envelope, AL_STORE_ACCEPTED, "");
    s_progress (self, "rel-b-prod", prod, AIRLOCK__STEP__STEP_SOAK, AIRLOCK__OUTCOME__OUTCOME_FAILED, true,
                "rollback trigger: error_rate_increase");
    s_journal (self, "rel-b-prod", prod, AIRLOCK__STEP__STEP_ROLLBACK, AIRLOCK__OUTCOME__OUTCOME_STARTED);
    s_journal (self, "rel-b-prod", prod, AIRLOCK__STEP__STEP_ROLLBACK, AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED);
    s_journal (self, "rel-b-prod", prod, AIRLOCK__STEP__STEP_RECEIPT, AIRLOCK__OUTCOME__OUTCOME_STARTED);
    s_journal (self, "rel-b-prod", prod, AIRLOCK__STEP__STEP_RECEIPT, AIRLOCK__OUTCOME__OUTCOME_ROLLED_BACK);
    log->b_prod_receipt = s_receipt (self, "rel-b-prod", prod, "api", "v1.2.0", S_ARTIFACT_B,
                                     AIRLOCK__OUTCOME__OUTCOME_ROLLED_BACK, "error_rate_increase", "v1.1.0");

    //  rel-c: a production DeployRequest straight from the orchestrator: denied.
    s_deploy_request (self, "rel-c-prod", prod, "web", "v3.0.0", S_ARTIFACT_C, "orchestrator-1", "orchestrator",
                      AL_STORE_DENIED, "roles.yaml: only the broker's approval gate deploys to production");

    //  rel-d: filed; an approval the broker refused (expired); still waiting.
    s_file_request (self, "rel-d-prod", "api", "v1.3.0", S_ARTIFACT_C);
    s_signed_t late;
    s_sign (&late, "rel-d-prod", "api", S_ARTIFACT_C, log->alice_public, log->alice_secret,
            AIRLOCK__DECISION__DECISION_GRANT, AL_T0_MS - 7200 * 1000);
    s_send_approval (self, "rel-d-prod", &late, AL_STORE_DENIED, "approval refused: the statement expired");

    //  rel-e: staging, stopped in the middle of its rollout.
    s_deploy_request (self, "rel-e-stg", stg, "web", "v3.1.0", S_ARTIFACT_C, "orchestrator-1", "orchestrator",
                      AL_STORE_ACCEPTED, "roles.yaml: allowed");
    s_journal (self, "rel-e-stg", stg, AIRLOCK__STEP__STEP_PREFLIGHT, AIRLOCK__OUTCOME__OUTCOME_STARTED);
    s_journal (self, "rel-e-stg", stg, AIRLOCK__STEP__STEP_PREFLIGHT, AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED);
    s_journal (self, "rel-e-stg", stg, AIRLOCK__STEP__STEP_ROLLOUT, AIRLOCK__OUTCOME__OUTCOME_STARTED);

    //  rel-f: staging, refused by deploy-manager.
    s_deploy_request (self, "rel-f-stg", stg, "web", "v3.2.0", S_ARTIFACT_C, "orchestrator-1", "orchestrator",
                      AL_STORE_ACCEPTED, "roles.yaml: allowed");
    s_progress (self, "rel-f-stg", stg, AIRLOCK__STEP__STEP_PREFLIGHT, AIRLOCK__OUTCOME__OUTCOME_FAILED, false,
                "refused: strategy canary is not allowed in staging");

    //  rel-g: bob signs a DENY; the broker closes the request.
    s_file_request (self, "rel-g-prod", "api", "v1.4.0", S_ARTIFACT_C);
    s_signed_t deny;
    s_sign (&deny, "rel-g-prod", "api", S_ARTIFACT_C, log->bob_public, log->bob_secret,
            AIRLOCK__DECISION__DECISION_DENY, audit_log_time (log->rows + 1));
    s_send_approval (self, "rel-g-prod", &deny, AL_STORE_ACCEPTED, "denial by bob for request rel-g-prod");
    s_append_raw (self, "broker", "broker", "ApprovalClosed", "", "rel-g-prod", "production", AL_STORE_ACCEPTED,
                  "request rel-g-prod closed: denied by bob (manager)", NULL, 0);

    //  A frame that did not decode.
    const uint8_t garbage [] = { 0xff, 0xff, 0xff };
    log->malformed = s_append_raw (self, "qa-1", "qa", "Malformed", "", "", "", AL_STORE_DENIED,
                                   "envelope: not a valid protobuf Envelope", garbage, sizeof garbage);

    //  deploy-manager acknowledges three deliveries with one DeliveryAck: one row.
    log->batched_ack_ids [0] = log->a_stg_request;
    log->batched_ack_ids [1] = log->a_prod_grant;
    log->batched_ack_ids [2] = log->b_prod_first_journal;
    Airlock__DeliveryAck ack = AIRLOCK__DELIVERY_ACK__INIT;
    ack.delivery_id = log->batched_ack_ids [0];
    ack.n_more_delivery_ids = 2;
    ack.more_delivery_ids = log->batched_ack_ids + 1;
    al_envelope_t ack_envelope = AIRLOCK__ENVELOPE__INIT;
    ack_envelope.body_case = AIRLOCK__ENVELOPE__BODY_DELIVERY_ACK;
    ack_envelope.delivery_ack = &ack;
    log->batched_ack = s_append (self, "deploy-manager-1", "deploy-manager", &ack_envelope, AL_STORE_ACCEPTED,
                                 "roles.yaml: common grants DeliveryAck");
}

//  ---- the state directory --------------------------------------------------------------------

static void
s_policy (audit_log_t *self)
{
    const char *source = getenv ("AIRLOCK_SOURCE_DIR");
    assert_non_null (source);
    char *command = s_path ("mkdir -p '%s/policy' && cp '%s'/policies/default/*.yaml '%s/policy/'",
                            self->dir, source, self->dir);
    assert_int_equal (system (command), 0);
    free (command);
    char alice [65], bob [65], text [1024];
    sodium_bin2hex (alice, sizeof alice, self->alice_public, 32);
    sodium_bin2hex (bob, sizeof bob, self->bob_public, 32);
    snprintf (text, sizeof text,
              "approvers:\n"
              "  - name: alice\n    roles: [manager]\n    keys:\n      - {id: alice-key, ed25519: \"%s\"}\n"
              "  - name: bob\n    roles: [manager, devops]\n    keys:\n      - {id: bob-key, ed25519: \"%s\"}\n",
              alice, bob);
    char *path = s_path ("%s/policy/approvers.yaml", self->dir);
    audit_log_write_file (path, text);
    free (path);
}

static void
s_release (audit_log_t *self, const char *id, const char *state)
{
    char *path = s_path ("%s/%s.json", self->releases_dir, id);
    char text [256];
    snprintf (text, sizeof text, "{\"release_id\": \"%s\", \"service\": \"api\", \"state\": \"%s\"}\n", id, state);
    audit_log_write_file (path, text);
    free (path);
}

audit_log_t *
audit_log_new (void)
{
    assert_true (sodium_init () >= 0);
    audit_log_t *self = calloc (1, sizeof *self);
    assert_non_null (self);
    const char *base = getenv ("TMPDIR");
    self->dir = s_path ("%s/airlock-audit-XXXXXX", base && *base? base: "/tmp");
    assert_non_null (mkdtemp (self->dir));
    self->db = s_path ("%s/audit.db", self->dir);
    self->config = s_path ("%s/airlock.yaml", self->dir);
    self->deploy_dir = s_path ("%s/deploy", self->dir);
    self->releases_dir = s_path ("%s/orchestrator/releases", self->dir);
    char *orchestrator = s_path ("%s/orchestrator", self->dir);
    s_mkdir (orchestrator);
    s_mkdir (self->releases_dir);
    s_mkdir (self->deploy_dir);
    free (orchestrator);
    crypto_sign_keypair (self->alice_public, self->alice_secret);
    crypto_sign_keypair (self->bob_public, self->bob_secret);
    al_key_id (self->alice_public, self->alice_key_id);
    al_key_id (self->bob_public, self->bob_key_id);
    s_policy (self);
    char text [1024];
    snprintf (text, sizeof text, "state_dir: %s\npolicy_dir: %s/policy\n", self->dir, self->dir);
    audit_log_write_file (self->config, text);

    char error [512];
    s_builder_t builder = { .log = self };
    builder.store = al_store_open (NULL, self->db, NULL, error, sizeof error);
    if (!builder.store)
        fail_msg ("%s", error);
    s_history (&builder);
    al_store_destroy (&builder.store);

    //  What the orchestrator would hold for these releases.
    s_release (self, "rel-a", "DONE");
    s_release (self, "rel-b", "ROLLED_BACK");
    s_release (self, "rel-d", "APPROVE");
    s_release (self, "rel-e", "STAGING");
    return self;
}

static int
s_remove_entry (const char *path, const struct stat *info, int flag, struct FTW *ftw)
{
    (void) info; (void) flag; (void) ftw;
    return remove (path);
}

void
audit_log_destroy (audit_log_t **self_p)
{
    audit_log_t *self = *self_p;
    if (!self)
        return;
    if (self->dir)
        nftw (self->dir, s_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free (self->dir);
    free (self->db);
    free (self->config);
    free (self->deploy_dir);
    free (self->releases_dir);
    free (self);
    *self_p = NULL;
}

al_store_t *
audit_log_open (const char *path)
{
    char error [512];
    al_store_options_t options = { .read_only = true };
    al_store_t *store = al_store_open (NULL, path, &options, error, sizeof error);
    if (!store)
        fail_msg ("%s", error);
    return store;
}

//  ---- tampering --------------------------------------------------------------------------------

void
audit_log_copy_db (const char *from, const char *to)
{
    sqlite3 *source = NULL, *target = NULL;
    assert_int_equal (sqlite3_open_v2 (from, &source, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal (sqlite3_open (to, &target), SQLITE_OK);
    sqlite3_backup *backup = sqlite3_backup_init (target, "main", source, "main");
    assert_non_null (backup);
    assert_int_equal (sqlite3_backup_step (backup, -1), SQLITE_DONE);
    assert_int_equal (sqlite3_backup_finish (backup), SQLITE_OK);
    assert_int_equal (sqlite3_close (source), SQLITE_OK);
    assert_int_equal (sqlite3_close (target), SQLITE_OK);
}

//  Copy the log, flip one byte of a signature inside row `sequence`, rewrite the chain.
char *
audit_log_tamper_signature (const audit_log_t *self, uint64_t sequence, bool in_grant)
{
    char *copy = NULL;
    assert_true (asprintf (&copy, "%s/tampered-%llu.db", self->dir, (unsigned long long) sequence) >= 0);
    unlink (copy);
    audit_log_copy_db (self->db, copy);
    char error [256];
    al_store_options_t options = { .read_only = true };
    al_store_t *store = al_store_open (NULL, copy, &options, error, sizeof error);
    assert_non_null (store);
    al_store_event_t row;
    assert_int_equal (al_store_event_get (store, sequence, &row), AL_STORE_OK);
    al_envelope_t *envelope = NULL;
    assert_int_equal (al_codec_unpack (row.envelope, row.envelope_size, 0, &envelope, error, sizeof error), AL_CODEC_OK);
    Airlock__SignedApproval *approval = in_grant? envelope->execute_deploy->grant->approvals [0]
                                                : envelope->signed_approval;
    approval->signature.data [10] ^= 0x01;
    uint8_t *bytes = NULL;
    size_t size = 0;
    assert_int_equal (al_codec_pack (envelope, &bytes, &size, error, sizeof error), AL_CODEC_OK);
    al_codec_free (&envelope);
    al_store_destroy (&store);
    audit_log_rewrite (copy, sequence, bytes, size);
    free (bytes);
    return copy;
}

char *
audit_log_grant_add_signer (const audit_log_t *self, uint64_t sequence, bool bob, const char *request_id)
{
    char *copy = NULL;
    assert_true (asprintf (&copy, "%s/signer-%llu-%d.db", self->dir, (unsigned long long) sequence, (int) bob) >= 0);
    unlink (copy);
    audit_log_copy_db (self->db, copy);
    char error [256];
    al_store_options_t options = { .read_only = true };
    al_store_t *store = al_store_open (NULL, copy, &options, error, sizeof error);
    assert_non_null (store);
    al_store_event_t row;
    assert_int_equal (al_store_event_get (store, sequence, &row), AL_STORE_OK);
    al_envelope_t *envelope = NULL;
    assert_int_equal (al_codec_unpack (row.envelope, row.envelope_size, 0, &envelope, error, sizeof error), AL_CODEC_OK);
    Airlock__ProductionGrant *grant = envelope->execute_deploy->grant;
    const Airlock__ApprovalRequest *request = grant->request;
    s_signed_t extra;
    s_sign (&extra, request_id? request_id: request->request_id, request->service, request->artifact_sha256,
            bob? self->bob_public: self->alice_public, bob? self->bob_secret: self->alice_secret,
            AIRLOCK__DECISION__DECISION_GRANT, grant->granted_at_ms - 1000);
    Airlock__SignedApproval **approvals = calloc (grant->n_approvals + 1, sizeof *approvals);
    assert_non_null (approvals);
    for (size_t i = 0; i < grant->n_approvals; i++)
        approvals [i] = grant->approvals [i];
    approvals [grant->n_approvals] = &extra.message;
    Airlock__SignedApproval **original = grant->approvals;
    size_t original_count = grant->n_approvals;
    grant->approvals = approvals;
    grant->n_approvals = original_count + 1;
    uint8_t *bytes = NULL;
    size_t size = 0;
    assert_int_equal (al_codec_pack (envelope, &bytes, &size, error, sizeof error), AL_CODEC_OK);
    grant->approvals = original;
    grant->n_approvals = original_count;
    free (approvals);
    al_codec_free (&envelope);
    al_store_destroy (&store);
    audit_log_rewrite (copy, sequence, bytes, size);
    free (bytes);
    return copy;
}

void
audit_log_rewrite (const char *db_path, uint64_t sequence, const uint8_t *envelope, size_t size)
{
    sqlite3 *db = NULL;
    assert_int_equal (sqlite3_open (db_path, &db), SQLITE_OK);
    sqlite3_stmt *statement = NULL;
    assert_int_equal (sqlite3_prepare_v2 (db, "UPDATE events SET envelope = ?1 WHERE seq = ?2", -1, &statement, NULL),
                      SQLITE_OK);
    sqlite3_bind_blob (statement, 1, envelope, (int) size, SQLITE_TRANSIENT);
    sqlite3_bind_int64 (statement, 2, (sqlite3_int64) sequence);
    assert_int_equal (sqlite3_step (statement), SQLITE_DONE);
    sqlite3_finalize (statement);

    //  The chain from that row on, recomputed exactly as the store computes it.
    uint8_t previous [AL_STORE_HASH_SIZE] = { 0 };
    if (sequence > 1) {
        assert_int_equal (sqlite3_prepare_v2 (db, "SELECT hash FROM events WHERE seq = ?1", -1, &statement, NULL),
                          SQLITE_OK);
        sqlite3_bind_int64 (statement, 1, (sqlite3_int64) sequence - 1);
        assert_int_equal (sqlite3_step (statement), SQLITE_ROW);
        assert_int_equal (sqlite3_column_bytes (statement, 0), AL_STORE_HASH_SIZE);
        memcpy (previous, sqlite3_column_blob (statement, 0), AL_STORE_HASH_SIZE);
        sqlite3_finalize (statement);
    }
    size_t count = 0, capacity = 64;
    uint8_t (*hashes) [AL_STORE_HASH_SIZE] = malloc (capacity * AL_STORE_HASH_SIZE);
    assert_non_null (hashes);
    assert_int_equal (sqlite3_prepare_v2 (db, "SELECT seq, time_ms, sender, role, type, message_id, deployment_id, "
                                          "environment, decision, reason, envelope FROM events WHERE seq >= ?1 "
                                          "ORDER BY seq", -1, &statement, NULL), SQLITE_OK);
    sqlite3_bind_int64 (statement, 1, (sqlite3_int64) sequence);
    while (sqlite3_step (statement) == SQLITE_ROW) {
        al_store_event_t event = {
            .sequence = (uint64_t) sqlite3_column_int64 (statement, 0),
            .time_ms = (uint64_t) sqlite3_column_int64 (statement, 1),
            .sender = (const char *) sqlite3_column_text (statement, 2),
            .role = (const char *) sqlite3_column_text (statement, 3),
            .type = (const char *) sqlite3_column_text (statement, 4),
            .message_id = (const char *) sqlite3_column_text (statement, 5),
            .deployment_id = (const char *) sqlite3_column_text (statement, 6),
            .environment = (const char *) sqlite3_column_text (statement, 7),
            .decision = (al_store_decision_t) sqlite3_column_int (statement, 8),
            .reason = (const char *) sqlite3_column_text (statement, 9),
            .envelope = sqlite3_column_blob (statement, 10),
            .envelope_size = (size_t) sqlite3_column_bytes (statement, 10),
        };
        size_t row_size = al_store_row_encode (&event, NULL, 0);
        uint8_t *row = malloc (row_size);
        assert_non_null (row);
        assert_int_equal (al_store_row_encode (&event, row, row_size), row_size);
        if (count == capacity) {
            capacity *= 2;
            hashes = realloc (hashes, capacity * AL_STORE_HASH_SIZE);
            assert_non_null (hashes);
        }
        al_store_chain_hash (previous, row, row_size, hashes [count]);
        memcpy (previous, hashes [count], AL_STORE_HASH_SIZE);
        count++;
        free (row);
    }
    sqlite3_finalize (statement);
    assert_int_equal (sqlite3_prepare_v2 (db, "UPDATE events SET hash = ?1 WHERE seq = ?2", -1, &statement, NULL),
                      SQLITE_OK);
    for (size_t i = 0; i < count; i++) {
        sqlite3_reset (statement);
        sqlite3_bind_blob (statement, 1, hashes [i], AL_STORE_HASH_SIZE, SQLITE_TRANSIENT);
        sqlite3_bind_int64 (statement, 2, (sqlite3_int64) (sequence + i));
        assert_int_equal (sqlite3_step (statement), SQLITE_DONE);
    }
    sqlite3_finalize (statement);
    free (hashes);
    assert_int_equal (sqlite3_close (db), SQLITE_OK);
}
