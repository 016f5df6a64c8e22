/*  test_codec.c: tests of the envelope codec, message names and signing bytes.

    A fixture holds a valid, fully populated instance of every body type, built on the
    stack from literals (nothing to free). Tests round-trip every type, then break one
    thing at a time (with the raw protobuf-c packer, which does not validate) and check
    the codec rejects it with the right status and a message naming the field.

    `test_codec --write-corpus DIR` writes a few packed envelopes as the fuzzer's seeds.
*/
#include "proto/al_codec.h"
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#define S_DIGEST_A "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define S_DIGEST_B "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
#define S_DIGEST_C "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

typedef struct {
    Airlock__Envelope env;
    Airlock__Sender sender;
    Airlock__Register register_;
    Airlock__Heartbeat heartbeat;
    Airlock__Ack ack;
    Airlock__Denied denied;
    Airlock__DeliveryAck delivery_ack;
    uint64_t more_delivery_ids [2];
    Airlock__ReleaseCandidate release;
    char *changes [2];
    char *dependencies [2];
    Airlock__DeployRequest deploy;
    Airlock__QaRequest qa_request;
    char *suite_names [2];
    Airlock__QaReport qa_report;
    Airlock__SuiteResult suite;
    Airlock__SuiteResult *suites [1];
    char *issues [1];
    Airlock__ChecklistItem item;
    Airlock__ChecklistItem *items [1];
    Airlock__ApprovalRequest approval_request;
    Airlock__SignedApproval approval;
    Airlock__SignedApproval *approvals [1];
    Airlock__ProductionGrant grant;
    Airlock__ExecuteDeploy execute;
    Airlock__DeployProgress progress;
    Airlock__StepRecord step;
    Airlock__StepRecord *steps [1];
    Airlock__DeployReceipt receipt;
    Airlock__SoakSignal signal;
    Airlock__SoakSignal *samples [1];
    Airlock__RollbackTrigger trigger;
    Airlock__Notification notification;
    Airlock__Notification__FieldsEntry entry;
    Airlock__Notification__FieldsEntry *entries [1];
    Airlock__StatusQuery query;
    Airlock__AgentStatus agent;
    Airlock__AgentStatus *agents [1];
    Airlock__ApprovalRequest *pending [1];
    Airlock__StatusReply reply;
    Airlock__Checkpoint checkpoint;
    uint8_t hash [32];
    uint8_t key [32];
    uint8_t signature [64];
    uint8_t statement [40];
} s_fixture_t;

static ProtobufCBinaryData
s_bytes (uint8_t *data, size_t size)
{
    return (ProtobufCBinaryData) { .len = size, .data = data };
}

//  Every message populated, every field set; the envelope carries the body of type.
static void
s_fixture_init (s_fixture_t *f, al_msg_type_t type)
{
    memset (f, 0, sizeof *f);
    for (size_t i = 0; i < sizeof f->hash; i++)
        f->hash [i] = (uint8_t) (i + 1);
    for (size_t i = 0; i < sizeof f->key; i++)
        f->key [i] = (uint8_t) (0x40 + i);
    for (size_t i = 0; i < sizeof f->signature; i++)
        f->signature [i] = (uint8_t) (0x80 + i);
    for (size_t i = 0; i < sizeof f->statement; i++)
        f->statement [i] = (uint8_t) (0x10 + i);

    f->env = (Airlock__Envelope) AIRLOCK__ENVELOPE__INIT;
    f->env.message_id = "msg-0001";
    f->env.correlation_id = "msg-0000";
    f->env.deployment_id = "dep-42";
    f->env.environment = AIRLOCK__ENVIRONMENT__ENV_PRODUCTION;
    f->env.timestamp_ms = 1763790000000;
    f->sender = (Airlock__Sender) AIRLOCK__SENDER__INIT;
    f->sender.identity = "orchestrator-1";
    f->sender.role = "orchestrator";
    f->env.sender = &f->sender;
    f->env.delivery_id = 17;

    f->register_ = (Airlock__Register) AIRLOCK__REGISTER__INIT;
    f->register_.agent_name = "deploy-manager";
    f->register_.software_version = "0.1.0";
    f->register_.heartbeat_interval_ms = 1000;
    f->register_.subscribe_deliveries = true;

    f->heartbeat = (Airlock__Heartbeat) AIRLOCK__HEARTBEAT__INIT;
    f->heartbeat.sequence = 7;

    f->ack = (Airlock__Ack) AIRLOCK__ACK__INIT;
    f->ack.acked_message_id = "msg-0000";
    f->ack.audit_sequence = 99;
    f->ack.audit_hash = s_bytes (f->hash, 32);
    f->ack.duplicate = true;
    f->ack.detail = "granted: manager alice";

    f->denied = (Airlock__Denied) AIRLOCK__DENIED__INIT;
    f->denied.denied_message_id = "msg-0000";
    f->denied.code = AIRLOCK__DENY_CODE__DENY_NOT_PERMITTED;
    f->denied.reason = "role qa may not send DeployRequest to production";
    f->denied.audit_sequence = 100;

    f->delivery_ack = (Airlock__DeliveryAck) AIRLOCK__DELIVERY_ACK__INIT;
    f->delivery_ack.delivery_id = 17;
    f->more_delivery_ids [0] = 18;
    f->more_delivery_ids [1] = 21;
    f->delivery_ack.n_more_delivery_ids = 2;
    f->delivery_ack.more_delivery_ids = f->more_delivery_ids;

    f->release = (Airlock__ReleaseCandidate) AIRLOCK__RELEASE_CANDIDATE__INIT;
    f->release.service = "payments-api";
    f->release.version = "v2.3.1";
    f->release.artifact_uri = "oci://registry.example/payments-api@sha256:" S_DIGEST_A;
    f->release.artifact_sha256 = S_DIGEST_A;
    f->release.deployment_type = AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_EMERGENCY;
    f->release.skip_staging = true;
    f->release.window_start_ms = 1795516200000ULL;
    f->release.window_end_ms = 1795523400000ULL;
    f->changes [0] = "fix rounding in refunds";
    f->changes [1] = "ünïcödé is fine: 🚀";
    f->release.n_changes = 2;
    f->release.changes = f->changes;
    f->release.migration_set_sha256 = S_DIGEST_B;
    f->release.summary = "Refund fixes.\nTwo changes.";
    //  Every field set for the round trip (a real client sends one of each pair).
    f->dependencies [0] = "libfoo@1.2.3";
    f->dependencies [1] = "@scope/bar@4";
    f->release.n_dependencies_added = 2;
    f->release.dependencies_added = f->dependencies;
    f->release.no_dependencies_added = true;
    f->release.breaking_changes = "GET /v1/refunds is gone";
    f->release.no_breaking_changes = true;

    f->deploy = (Airlock__DeployRequest) AIRLOCK__DEPLOY_REQUEST__INIT;
    f->deploy.service = "payments-api";
    f->deploy.version = "v2.3.1";
    f->deploy.artifact_uri = "oci://registry.example/payments-api";
    f->deploy.artifact_sha256 = S_DIGEST_A;
    f->deploy.strategy = AIRLOCK__STRATEGY__STRATEGY_CANARY;
    f->deploy.instances = 4;
    f->deploy.migration_set_sha256 = S_DIGEST_B;
    f->deploy.deployment_type = AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_HOTFIX;

    f->qa_request = (Airlock__QaRequest) AIRLOCK__QA_REQUEST__INIT;
    f->qa_request.service = "payments-api";
    f->qa_request.version = "v2.3.1";
    f->qa_request.artifact_sha256 = S_DIGEST_A;
    f->suite_names [0] = "smoke";
    f->suite_names [1] = "integration";
    f->qa_request.n_suites = 2;
    f->qa_request.suites = f->suite_names;

    f->suite = (Airlock__SuiteResult) AIRLOCK__SUITE_RESULT__INIT;
    f->suite.name = "integration";
    f->suite.passed = 120;
    f->suite.failed = 1;
    f->suite.skipped = 2;
    f->suite.evidence_uri = "file:///var/lib/airlock/qa/integration.log";
    f->suites [0] = &f->suite;
    f->qa_report = (Airlock__QaReport) AIRLOCK__QA_REPORT__INIT;
    f->qa_report.service = "payments-api";
    f->qa_report.version = "v2.3.1";
    f->qa_report.artifact_sha256 = S_DIGEST_A;
    f->qa_report.n_suites = 1;
    f->qa_report.suites = f->suites;
    f->qa_report.approved = true;
    f->qa_report.report_sha256 = S_DIGEST_C;
    f->issues [0] = "flaky test: refunds_timeout";
    f->qa_report.n_issues_found = 1;
    f->qa_report.issues_found = f->issues;

    f->item = (Airlock__ChecklistItem) AIRLOCK__CHECKLIST_ITEM__INIT;
    f->item.section = "Tests Passed";
    f->item.text = "integration suite green in staging";
    f->item.checked = true;
    f->items [0] = &f->item;
    f->approval_request = (Airlock__ApprovalRequest) AIRLOCK__APPROVAL_REQUEST__INIT;
    Airlock__ApprovalRequest *request = &f->approval_request;
    request->request_id = "req-7";
    request->deployment_type = AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_SCHEDULED;
    request->environment = AIRLOCK__ENVIRONMENT__ENV_PRODUCTION;
    request->service = "payments-api";
    request->version = "v2.3.1";
    request->artifact_uri = "oci://registry.example/payments-api";
    request->artifact_sha256 = S_DIGEST_A;
    request->qa_report_sha256 = S_DIGEST_C;
    request->migration_set_sha256 = S_DIGEST_B;
    request->urgency = "Routine";
    request->risk_level = "Low";
    request->risk_impact = "refunds only";
    request->risk_mitigation = "canary at 5%";
    request->summary = "refund rounding fix";
    request->rollback_command = "airlock rollback payments-api";
    request->rollback_migration = "down/0042.sql";
    request->rollback_estimate_minutes = 5;
    request->n_checklist = 1;
    request->checklist = f->items;
    request->strategy = AIRLOCK__STRATEGY__STRATEGY_ROLLING;
    request->instances = 4;
    request->requested_by = "orchestrator-1";
    request->submitted_by = "ci-1";
    request->window_start_ms = 1763790000000;
    request->window_end_ms = 1763793600000;

    f->approval = (Airlock__SignedApproval) AIRLOCK__SIGNED_APPROVAL__INIT;
    f->approval.statement = s_bytes (f->statement, sizeof f->statement);
    f->approval.signature = s_bytes (f->signature, 64);
    f->approval.format = AIRLOCK__SIGNATURE_FORMAT__SIG_ED25519;
    f->approval.public_key = s_bytes (f->key, 32);
    f->approvals [0] = &f->approval;

    f->grant = (Airlock__ProductionGrant) AIRLOCK__PRODUCTION_GRANT__INIT;
    f->grant.request_id = "req-7";
    f->grant.request = request;
    f->grant.n_approvals = 1;
    f->grant.approvals = f->approvals;
    f->grant.granted_at_ms = 1763790001000;
    f->grant.grant_audit_sequence = 321;

    f->execute = (Airlock__ExecuteDeploy) AIRLOCK__EXECUTE_DEPLOY__INIT;
    f->execute.request = &f->deploy;
    f->execute.grant = &f->grant;
    f->execute.rollback = true;
    f->execute.reason = "operator rollback";

    f->progress = (Airlock__DeployProgress) AIRLOCK__DEPLOY_PROGRESS__INIT;
    f->progress.step = AIRLOCK__STEP__STEP_ROLLOUT;
    f->progress.outcome = AIRLOCK__OUTCOME__OUTCOME_STARTED;
    f->progress.instance = 2;
    f->progress.instances = 4;
    f->progress.detail = "batch 2 of 4";
    f->progress.percent = 50;
    f->progress.journal = true;
    f->progress.service = "shop";
    f->progress.version = "v2.3.1";

    f->step = (Airlock__StepRecord) AIRLOCK__STEP_RECORD__INIT;
    f->step.step = AIRLOCK__STEP__STEP_BACKUP;
    f->step.outcome = AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED;
    f->step.started_ms = 1000;
    f->step.ended_ms = 2000;
    f->step.detail = "backup verified";
    f->steps [0] = &f->step;
    f->receipt = (Airlock__DeployReceipt) AIRLOCK__DEPLOY_RECEIPT__INIT;
    f->receipt.service = "payments-api";
    f->receipt.version = "v2.3.1";
    f->receipt.artifact_sha256 = S_DIGEST_A;
    f->receipt.outcome = AIRLOCK__OUTCOME__OUTCOME_ROLLED_BACK;
    f->receipt.n_steps = 1;
    f->receipt.steps = f->steps;
    f->receipt.receipt_sha256 = S_DIGEST_B;
    f->receipt.rollback_rule = "error_rate_increase";
    f->receipt.previous_version = "v2.3.0";

    f->signal = (Airlock__SoakSignal) AIRLOCK__SOAK_SIGNAL__INIT;
    f->signal.service = "payments-api";
    f->signal.sequence = 5;
    f->signal.requests_per_second = 120.5;
    f->signal.error_ratio = 0.07;
    f->signal.latency_p50_ms = 12.0;
    f->signal.latency_p99_ms = 250.0;
    f->signal.cpu_percent = 35.0;
    f->signal.memory_percent = 61.5;
    f->signal.instances_up = 3;
    f->signal.instances_total = 4;
    f->signal.consecutive_health_failures = 1;
    f->signal.baseline = true;
    f->signal.no_evidence = 4;
    f->signal.instances_missing = 1;
    f->signal.not_required = 1;
    f->signal.source = (char *) "scrape";
    f->signal.memory_basis = (char *) "cgroup";
    f->signal.version = (char *) "1.4.2";
    f->samples [0] = &f->signal;

    f->trigger = (Airlock__RollbackTrigger) AIRLOCK__ROLLBACK_TRIGGER__INIT;
    f->trigger.service = "payments-api";
    f->trigger.rule = "error_rate_increase";
    f->trigger.detail = "error ratio 7% > baseline 1% + 5%";
    f->trigger.n_samples = 1;
    f->trigger.samples = f->samples;

    f->entry = (Airlock__Notification__FieldsEntry) AIRLOCK__NOTIFICATION__FIELDS_ENTRY__INIT;
    f->entry.key = "request_id";
    f->entry.value = "req-7";
    f->entries [0] = &f->entry;
    f->notification = (Airlock__Notification) AIRLOCK__NOTIFICATION__INIT;
    f->notification.template_ = "approval_requested";
    f->notification.subject = "payments-api v2.3.1 awaits approval";
    f->notification.text = "Run: airlock approve req-7";
    f->notification.n_fields = 1;
    f->notification.fields = f->entries;

    f->query = (Airlock__StatusQuery) AIRLOCK__STATUS_QUERY__INIT;
    f->query.what = "deployments";
    f->query.filter = "dep-42";
    f->query.limit = 10;

    f->agent = (Airlock__AgentStatus) AIRLOCK__AGENT_STATUS__INIT;
    f->agent.identity = "qa-1";
    f->agent.role = "qa";
    f->agent.last_heartbeat_ms = 1763790000000;
    f->agent.alive = true;
    f->agents [0] = &f->agent;
    f->reply = (Airlock__StatusReply) AIRLOCK__STATUS_REPLY__INIT;
    f->reply.n_agents = 1;
    f->reply.agents = f->agents;
    f->reply.json = "{\n\t\"deployments\": []\n}";
    f->pending [0] = &f->approval_request;
    f->reply.n_approvals = 1;
    f->reply.approvals = f->pending;

    f->checkpoint = (Airlock__Checkpoint) AIRLOCK__CHECKPOINT__INIT;
    f->checkpoint.row_count = 1000;
    f->checkpoint.head_hash = s_bytes (f->hash, 32);
    f->checkpoint.created_ms = 1763790000000;
    f->checkpoint.public_key = s_bytes (f->key, 32);
    f->checkpoint.signature = s_bytes (f->signature, 64);

    f->env.body_case = type;
    switch (type) {
        case AIRLOCK__ENVELOPE__BODY_REGISTER:          f->env.register_ = &f->register_; break;
        case AIRLOCK__ENVELOPE__BODY_HEARTBEAT:         f->env.heartbeat = &f->heartbeat; break;
        case AIRLOCK__ENVELOPE__BODY_ACK:               f->env.ack = &f->ack; break;
        case AIRLOCK__ENVELOPE__BODY_DENIED:            f->env.denied = &f->denied; break;
        case AIRLOCK__ENVELOPE__BODY_RELEASE_CANDIDATE: f->env.release_candidate = &f->release; break;
        case AIRLOCK__ENVELOPE__BODY_DEPLOY_REQUEST:    f->env.deploy_request = &f->deploy; break;
        case AIRLOCK__ENVELOPE__BODY_QA_REQUEST:        f->env.qa_request = &f->qa_request; break;
        case AIRLOCK__ENVELOPE__BODY_QA_REPORT:         f->env.qa_report = &f->qa_report; break;
        case AIRLOCK__ENVELOPE__BODY_APPROVAL_REQUEST:  f->env.approval_request = request; break;
        case AIRLOCK__ENVELOPE__BODY_SIGNED_APPROVAL:   f->env.signed_approval = &f->approval; break;
        case AIRLOCK__ENVELOPE__BODY_PRODUCTION_GRANT:  f->env.production_grant = &f->grant; break;
        case AIRLOCK__ENVELOPE__BODY_EXECUTE_DEPLOY:    f->env.execute_deploy = &f->execute; break;
        case AIRLOCK__ENVELOPE__BODY_DEPLOY_PROGRESS:   f->env.deploy_progress = &f->progress; break;
        case AIRLOCK__ENVELOPE__BODY_DEPLOY_RECEIPT:    f->env.deploy_receipt = &f->receipt; break;
        case AIRLOCK__ENVELOPE__BODY_SOAK_SIGNAL:       f->env.soak_signal = &f->signal; break;
        case AIRLOCK__ENVELOPE__BODY_ROLLBACK_TRIGGER:  f->env.rollback_trigger = &f->trigger; break;
        case AIRLOCK__ENVELOPE__BODY_NOTIFICATION:      f->env.notification = &f->notification; break;
        case AIRLOCK__ENVELOPE__BODY_STATUS_QUERY:      f->env.status_query = &f->query; break;
        case AIRLOCK__ENVELOPE__BODY_STATUS_REPLY:      f->env.status_reply = &f->reply; break;
        case AIRLOCK__ENVELOPE__BODY_CHECKPOINT:        f->env.checkpoint = &f->checkpoint; break;
        case AIRLOCK__ENVELOPE__BODY_DELIVERY_ACK:      f->env.delivery_ack = &f->delivery_ack; break;
        default:
            fail_msg ("fixture has no body for type %d", (int) type);
    }
}

//  The body message of an envelope, through its descriptor.
static ProtobufCMessage *
s_body (Airlock__Envelope *env)
{
    const ProtobufCFieldDescriptor *field =
        protobuf_c_message_descriptor_get_field (&airlock__envelope__descriptor, env->body_case);
    assert_non_null (field);
    return *(ProtobufCMessage **) ((uint8_t *) env + field->offset);
}

static const char *
s_body_field_name (al_msg_type_t type)
{
    const ProtobufCFieldDescriptor *field =
        protobuf_c_message_descriptor_get_field (&airlock__envelope__descriptor, type);
    assert_non_null (field);
    return field->name;
}

//  Asserts that every field of message (recursively) is set, so a round trip proves
//  every field survives.
static void
s_assert_populated (const ProtobufCMessage *message)
{
    const ProtobufCMessageDescriptor *desc = message->descriptor;
    const uint8_t *base = (const uint8_t *) message;
    for (unsigned i = 0; i < desc->n_fields; i++) {
        const ProtobufCFieldDescriptor *field = &desc->fields [i];
        const void *member = base + field->offset;
        if ((field->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        &&  *(const uint32_t *) (base + field->quantifier_offset) != field->id)
            continue;
        if (field->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t count = *(const size_t *) (base + field->quantifier_offset);
            if (count == 0)
                fail_msg ("%s.%s is an empty list", desc->short_name, field->name);
            if (field->type == PROTOBUF_C_TYPE_MESSAGE)
                for (size_t j = 0; j < count; j++)
                    s_assert_populated ((*(ProtobufCMessage * const * const *) member) [j]);
            continue;
        }
        bool set;
        switch (field->type) {
            case PROTOBUF_C_TYPE_STRING:  set = **(char * const *) member != '\0'; break;
            case PROTOBUF_C_TYPE_BYTES:   set = ((const ProtobufCBinaryData *) member)->len > 0; break;
            case PROTOBUF_C_TYPE_MESSAGE: set = *(void * const *) member != NULL; break;
            case PROTOBUF_C_TYPE_UINT64:  set = *(const uint64_t *) member != 0; break;
            case PROTOBUF_C_TYPE_DOUBLE:  set = *(const double *) member != 0; break;
            case PROTOBUF_C_TYPE_BOOL:    set = *(const protobuf_c_boolean *) member; break;
            default:                      set = *(const uint32_t *) member != 0; break;
        }
        if (!set)
            fail_msg ("%s.%s is not set", desc->short_name, field->name);
        if (field->type == PROTOBUF_C_TYPE_MESSAGE)
            s_assert_populated (*(ProtobufCMessage * const *) member);
    }
}

//  Clears one field of message by name, as an absent field decodes.
static void
s_clear_field (ProtobufCMessage *message, const char *name)
{
    const ProtobufCFieldDescriptor *field =
        protobuf_c_message_descriptor_get_field_by_name (message->descriptor, name);
    assert_non_null (field);
    uint8_t *base = (uint8_t *) message;
    void *member = base + field->offset;
    if (field->label == PROTOBUF_C_LABEL_REPEATED) {
        *(size_t *) (base + field->quantifier_offset) = 0;
        return;
    }
    switch (field->type) {
        case PROTOBUF_C_TYPE_STRING:  *(const char **) member = protobuf_c_empty_string; break;
        case PROTOBUF_C_TYPE_BYTES:   *(ProtobufCBinaryData *) member = s_bytes (NULL, 0); break;
        case PROTOBUF_C_TYPE_MESSAGE: *(void **) member = NULL; break;
        case PROTOBUF_C_TYPE_UINT64:  *(uint64_t *) member = 0; break;
        default:                      *(uint32_t *) member = 0; break;
    }
}

//  Packs with protobuf-c directly (no validation) to craft invalid inputs.
static uint8_t *
s_raw_pack (const Airlock__Envelope *env, size_t *size_p)
{
    *size_p = airlock__envelope__get_packed_size (env);
    uint8_t *data = malloc (*size_p + 1);
    assert_non_null (data);
    airlock__envelope__pack (env, data);
    return data;
}

//  Unpacks data and asserts the status and that the error starts with prefix.
static void
s_expect (const uint8_t *data, size_t size, al_codec_status_t expected, const char *prefix)
{
    al_envelope_t *env = (al_envelope_t *) data;      // must be reset to NULL on failure
    char error [512] = "untouched";
    al_codec_status_t status = al_codec_unpack (data, size, 0, &env, error, sizeof error);
    if (status != expected)
        fail_msg ("expected %s, got %s (%s)", al_codec_strerror (expected),
                  al_codec_strerror (status), error);
    if (expected == AL_CODEC_OK) {
        assert_non_null (env);
        al_codec_free (&env);
        assert_null (env);
        return;
    }
    assert_null (env);
    if (prefix && strncmp (error, prefix, strlen (prefix)) != 0)
        fail_msg ("error '%s' does not start with '%s'", error, prefix);
}

//  Raw-packs the fixture's envelope and checks what unpack says.
static void
s_expect_env (const Airlock__Envelope *env, al_codec_status_t expected, const char *prefix)
{
    size_t size;
    uint8_t *data = s_raw_pack (env, &size);
    s_expect (data, size, expected, prefix);
    free (data);
    // validate on the in-memory envelope agrees with unpack
    char error [512];
    memset (error, 'x', sizeof error);      // a valid envelope leaves it empty
    assert_int_equal (al_codec_validate (env, error, sizeof error), expected);
    if (expected == AL_CODEC_OK)
        assert_string_equal (error, "");
}

static void
test_round_trip_every_type (void **state)
{
    (void) state;
    size_t count = al_msg_type_count ();
    assert_true (count > 0);
    for (size_t i = 0; i < count; i++) {
        al_msg_type_t type = al_msg_type_at (i);
        s_fixture_t f;
        s_fixture_init (&f, type);
        s_assert_populated (&f.env.base);

        uint8_t *data;
        size_t size;
        char error [512];
        al_codec_status_t status = al_codec_pack (&f.env, &data, &size, error, sizeof error);
        if (status != AL_CODEC_OK)
            fail_msg ("%s: pack failed: %s", al_msg_type_name (type), error);
        al_envelope_t *env = NULL;
        status = al_codec_unpack (data, size, size, &env, error, sizeof error);
        if (status != AL_CODEC_OK)
            fail_msg ("%s: unpack failed: %s", al_msg_type_name (type), error);
        assert_int_equal (env->body_case, type);
        assert_string_equal (env->message_id, f.env.message_id);
        assert_string_equal (env->sender->identity, "orchestrator-1");
        assert_int_equal (env->delivery_id, 17);
        s_assert_populated (&env->base);

        // The decoded body packs to the same bytes as the original body, and so does
        // the whole envelope.
        ProtobufCMessage *body = s_body (&f.env), *decoded = s_body (env);
        size_t body_size = protobuf_c_message_get_packed_size (body);
        assert_int_equal (protobuf_c_message_get_packed_size (decoded), body_size);
        uint8_t *body_bytes = malloc (body_size + 1), *decoded_bytes = malloc (body_size + 1);
        assert_non_null (body_bytes);
        assert_non_null (decoded_bytes);
        protobuf_c_message_pack (body, body_bytes);
        protobuf_c_message_pack (decoded, decoded_bytes);
        assert_memory_equal (body_bytes, decoded_bytes, body_size);

        uint8_t *repacked;
        size_t repacked_size;
        assert_int_equal (al_codec_pack (env, &repacked, &repacked_size, NULL, 0), AL_CODEC_OK);
        assert_int_equal (repacked_size, size);
        assert_memory_equal (repacked, data, size);

        free (body_bytes);
        free (decoded_bytes);
        free (repacked);
        free (data);
        al_codec_free (&env);
        assert_null (env);
        al_codec_free (&env);   // NULL-safe
    }
}

static void
test_spot_values_survive (void **state)
{
    (void) state;
    s_fixture_t f;
    s_fixture_init (&f, AIRLOCK__ENVELOPE__BODY_ROLLBACK_TRIGGER);
    uint8_t *data;
    size_t size;
    assert_int_equal (al_codec_pack (&f.env, &data, &size, NULL, 0), AL_CODEC_OK);
    al_envelope_t *env;
    assert_int_equal (al_codec_unpack (data, size, 0, &env, NULL, 0), AL_CODEC_OK);
    Airlock__RollbackTrigger *trigger = env->rollback_trigger;
    assert_string_equal (trigger->rule, "error_rate_increase");
    assert_int_equal (trigger->n_samples, 1);
    assert_true (trigger->samples [0]->error_ratio == 0.07);
    assert_true (trigger->samples [0]->latency_p99_ms == 250.0);
    assert_int_equal (env->environment, AIRLOCK__ENVIRONMENT__ENV_PRODUCTION);
    al_codec_free (&env);
    free (data);
}

static void
test_truncated (void **state)
{
    (void) state;
    s_fixture_t f;
    s_fixture_init (&f, AIRLOCK__ENVELOPE__BODY_EXECUTE_DEPLOY);
    uint8_t *data;
    size_t size;
    assert_int_equal (al_codec_pack (&f.env, &data, &size, NULL, 0), AL_CODEC_OK);
    size_t decode_errors = 0;
    for (size_t length = 0; length < size; length++) {
        // An exact copy, so ASan sees any read past the prefix.
        uint8_t *prefix = malloc (length ? length : 1);
        assert_non_null (prefix);
        memcpy (prefix, data, length);
        al_envelope_t *env = NULL;
        char error [512];
        al_codec_status_t status = al_codec_unpack (prefix, length, 0, &env, error, sizeof error);
        if (status == AL_CODEC_OK) {
            assert_int_equal (al_codec_validate (env, NULL, 0), AL_CODEC_OK);
            al_codec_free (&env);
        }
        else {
            assert_null (env);
            assert_true (strlen (error) > 0);
        }
        if (status == AL_CODEC_ERR_DECODE)
            decode_errors++;
        free (prefix);
    }
    // Most cuts land inside a field; those must be decode errors.
    assert_true (decode_errors > size / 2);
    free (data);
}

static void
test_too_large (void **state)
{
    (void) state;
    s_fixture_t f;
    s_fixture_init (&f, AIRLOCK__ENVELOPE__BODY_HEARTBEAT);
    uint8_t *data;
    size_t size;
    assert_int_equal (al_codec_pack (&f.env, &data, &size, NULL, 0), AL_CODEC_OK);
    al_envelope_t *env = NULL;
    char error [256];
    assert_int_equal (al_codec_unpack (data, size, size - 1, &env, error, sizeof error),
                      AL_CODEC_ERR_TOO_LARGE);
    assert_null (env);
    assert_non_null (strstr (error, "limit"));
    assert_int_equal (al_codec_unpack (data, size, size, &env, NULL, 0), AL_CODEC_OK);
    al_codec_free (&env);
    free (data);

    // Garbage above the default limit: TOO_LARGE (not DECODE) proves the size is checked
    // before protobuf-c looks at the bytes.
    size_t big = AL_CODEC_DEFAULT_MAX_SIZE + 1;
    uint8_t *garbage = malloc (big);
    assert_non_null (garbage);
    memset (garbage, 0xFF, big);
    assert_int_equal (al_codec_unpack (garbage, big, 0, &env, NULL, 0), AL_CODEC_ERR_TOO_LARGE);
    assert_int_equal (al_codec_unpack (garbage, 64, 0, &env, NULL, 0), AL_CODEC_ERR_DECODE);
    free (garbage);
}

//  Field number 0 spelled in two bytes: protobuf-c decodes it as an unknown field but
//  then packs bytes it cannot decode; the codec refuses it. Found by fuzz_envelope.
static void
test_field_number_zero (void **state)
{
    (void) state;
    s_fixture_t f;
    s_fixture_init (&f, AIRLOCK__ENVELOPE__BODY_HEARTBEAT);
    uint8_t *data;
    size_t size;
    assert_int_equal (al_codec_pack (&f.env, &data, &size, NULL, 0), AL_CODEC_OK);
    uint8_t *crafted = malloc (size + 3);
    assert_non_null (crafted);
    memcpy (crafted, data, size);
    memcpy (crafted + size, "\x80\x00\x01", 3);
    s_expect (crafted, size + 3, AL_CODEC_ERR_DECODE, "envelope: has a field numbered 0");
    // An unknown field with a real number is kept and survives a round trip.
    memcpy (crafted + size, "\xb0\x06\x01", 3);       // field 102, varint 1
    al_envelope_t *env;
    assert_int_equal (al_codec_unpack (crafted, size + 3, 0, &env, NULL, 0), AL_CODEC_OK);
    assert_int_equal (env->base.n_unknown_fields, 1);
    uint8_t *repacked;
    size_t repacked_size;
    assert_int_equal (al_codec_pack (env, &repacked, &repacked_size, NULL, 0), AL_CODEC_OK);
    assert_int_equal (repacked_size, size + 3);
    assert_memory_equal (repacked, crafted, size + 3);
    free (repacked);
    al_codec_free (&env);
    free (crafted);
    free (data);
}

static void
test_bad_enum (void **state)
{
    (void) state;
    s_fixture_t f;
    s_fixture_init (&f, AIRLOCK__ENVELOPE__BODY_HEARTBEAT);
    uint8_t *data;
    size_t size;
    assert_int_equal (al_codec_pack (&f.env, &data, &size, NULL, 0), AL_CODEC_OK);
    // Hand-crafted: append field 4 (environment, varint) = 99; the last value wins.
    uint8_t *crafted = malloc (size + 2);
    assert_non_null (crafted);
    memcpy (crafted, data, size);
    crafted [size] = 0x20;
    crafted [size + 1] = 99;
    s_expect (crafted, size + 2, AL_CODEC_ERR_BAD_ENUM, "environment: 99 is not a valid Environment");
    // ... and 3 (production) is fine.
    crafted [size + 1] = 3;
    s_expect (crafted, size + 2, AL_CODEC_OK, NULL);
    free (crafted);
    free (data);

    s_fixture_init (&f, AIRLOCK__ENVELOPE__BODY_RELEASE_CANDIDATE);
    f.release.deployment_type = 42;
    s_expect_env (&f.env, AL_CODEC_ERR_BAD_ENUM, "release_candidate.deployment_type:");
    //  Only an emergency skips staging; a window ends after it starts.
    f.release.deployment_type = AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD;
    s_expect_env (&f.env, AL_CODEC_ERR_BAD_VALUE, "release_candidate.skip_staging:");
    f.release.deployment_type = AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_EMERGENCY;
    f.release.window_end_ms = f.release.window_start_ms;
    s_expect_env (&f.env, AL_CODEC_ERR_BAD_VALUE, "release_candidate.window_end_ms:");
    f.release.window_end_ms = f.release.window_start_ms + 1;
    s_fixture_init (&f, AIRLOCK__ENVELOPE__BODY_EXECUTE_DEPLOY);
    f.approval.format = -1;
    s_expect_env (&f.env, AL_CODEC_ERR_BAD_ENUM, "execute_deploy.grant.approvals[0].format:");
    s_fixture_init (&f, AIRLOCK__ENVELOPE__BODY_DEPLOY_RECEIPT);
    f.step.outcome = 6;
    s_expect_env (&f.env, AL_CODEC_ERR_BAD_ENUM, "deploy_receipt.steps[0].outcome:");
}

//  One required field per body type that has any (and a few more), cleared.
static void
test_missing_field (void **state)
{
    (void) state;
    static const struct {
        al_msg_type_t type;
        const char *field;
    } cases [] = {
        { AIRLOCK__ENVELOPE__BODY_REGISTER, "agent_name" },
        { AIRLOCK__ENVELOPE__BODY_ACK, "acked_message_id" },
        { AIRLOCK__ENVELOPE__BODY_DENIED, "code" },
        { AIRLOCK__ENVELOPE__BODY_DENIED, "reason" },
        { AIRLOCK__ENVELOPE__BODY_DELIVERY_ACK, "delivery_id" },
        { AIRLOCK__ENVELOPE__BODY_RELEASE_CANDIDATE, "service" },
        { AIRLOCK__ENVELOPE__BODY_RELEASE_CANDIDATE, "version" },
        { AIRLOCK__ENVELOPE__BODY_RELEASE_CANDIDATE, "artifact_uri" },
        { AIRLOCK__ENVELOPE__BODY_RELEASE_CANDIDATE, "artifact_sha256" },
        { AIRLOCK__ENVELOPE__BODY_RELEASE_CANDIDATE, "deployment_type" },
        { AIRLOCK__ENVELOPE__BODY_DEPLOY_REQUEST, "artifact_sha256" },
        { AIRLOCK__ENVELOPE__BODY_QA_REQUEST, "version" },
        { AIRLOCK__ENVELOPE__BODY_QA_REPORT, "report_sha256" },
        { AIRLOCK__ENVELOPE__BODY_APPROVAL_REQUEST, "request_id" },
        { AIRLOCK__ENVELOPE__BODY_APPROVAL_REQUEST, "environment" },
        { AIRLOCK__ENVELOPE__BODY_APPROVAL_REQUEST, "qa_report_sha256" },
        { AIRLOCK__ENVELOPE__BODY_APPROVAL_REQUEST, "window_end_ms" },
        { AIRLOCK__ENVELOPE__BODY_SIGNED_APPROVAL, "statement" },
        { AIRLOCK__ENVELOPE__BODY_SIGNED_APPROVAL, "signature" },
        { AIRLOCK__ENVELOPE__BODY_SIGNED_APPROVAL, "format" },
        { AIRLOCK__ENVELOPE__BODY_SIGNED_APPROVAL, "public_key" },
        { AIRLOCK__ENVELOPE__BODY_PRODUCTION_GRANT, "request" },
        { AIRLOCK__ENVELOPE__BODY_PRODUCTION_GRANT, "approvals" },
        { AIRLOCK__ENVELOPE__BODY_EXECUTE_DEPLOY, "request" },
        { AIRLOCK__ENVELOPE__BODY_EXECUTE_DEPLOY, "grant" },
        { AIRLOCK__ENVELOPE__BODY_DEPLOY_PROGRESS, "step" },
        { AIRLOCK__ENVELOPE__BODY_DEPLOY_RECEIPT, "outcome" },
        { AIRLOCK__ENVELOPE__BODY_SOAK_SIGNAL, "service" },
        { AIRLOCK__ENVELOPE__BODY_ROLLBACK_TRIGGER, "rule" },
        { AIRLOCK__ENVELOPE__BODY_NOTIFICATION, "template" },
        { AIRLOCK__ENVELOPE__BODY_STATUS_QUERY, "what" },
        { AIRLOCK__ENVELOPE__BODY_CHECKPOINT, "head_hash" },
        { AIRLOCK__ENVELOPE__BODY_CHECKPOINT, "signature" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        s_fixture_t f;
        s_fixture_init (&f, cases [i].type);
        s_clear_field (s_body (&f.env), cases [i].field);
        char prefix [128];
        snprintf (prefix, sizeof prefix, "%s.%s:", s_body_field_name (cases [i].type), cases [i].field);
        s_expect_env (&f.env, AL_CODEC_ERR_MISSING_FIELD, prefix);
    }
    // Envelope-level and nested requirements.
    s_fixture_t f;
    s_fixture_init (&f, AIRLOCK__ENVELOPE__BODY_HEARTBEAT);
    f.env.message_id = "";
    s_expect_env (&f.env, AL_CODEC_ERR_MISSING_FIELD, "message_id:");
    s_fixture_init (&f, AIRLOCK__ENVELOPE__BODY_DEPLOY_REQUEST);
    f.env.environment = AIRLOCK__ENVIRONMENT__ENV_UNSPECIFIED;
    s_expect_env (&f.env, AL_CODEC_ERR_MISSING_FIELD, "environment:");
    s_fixture_init (&f, AIRLOCK__ENVELOPE__BODY_EXECUTE_DEPLOY);
    f.approval_request.artifact_sha256 = "";
    s_expect_env (&f.env, AL_CODEC_ERR_MISSING_FIELD, "execute_deploy.grant.request.artifact_sha256:");
    s_fixture_init (&f, AIRLOCK__ENVELOPE__BODY_HEARTBEAT);
    f.sender.role = "";
    s_expect_env (&f.env, AL_CODEC_ERR_MISSING_FIELD, "sender.role:");
    // A staging ExecuteDeploy needs no grant; a message without optional fields is fine.
    s_fixture_init (&f, AIRLOCK__ENVELOPE__BODY_EXECUTE_DEPLOY);
    f.env.environment = AIRLOCK__ENVIRONMENT__ENV_STAGING;
    f.execute.grant = NULL;
    s_expect_env (&f.env, AL_CODEC_OK, NULL);
    s_fixture_init (&f, AIRLOCK__ENVELOPE__BODY_HEARTBEAT);
    f.env.sender = NULL;
    f.env.correlation_id = "";
    f.env.environment = 0;
    f.heartbeat.sequence = 0;
    s_expect_env (&f.env, AL_CODEC_OK, NULL);
}

static void
test_bad_length (void **state)
{
    (void) state;
    s_fixture_t f;
    char *long_string = malloc (AL_CODEC_MAX_TEXT_LEN + 2);
    assert_non_null (long_string);

    memset (long_string, 'a', AL_CODEC_MAX_ID_LEN + 1);
    long_string [AL_CODEC_MAX_ID_LEN + 1] = '\0';
    s_fixture_init (&f, AIRLOCK__ENVELOPE__BODY_HEARTBEAT);
    f.env.message_id = long_string;
    s_expect_env (&f.env, AL_CODEC_ERR_BAD_LENGTH, "message_id: is 65 bytes");
    long_string [AL_CODEC_MAX_ID_LEN] = '\0';           // exactly at the limit
    s_expect_env (&f.env, AL_CODEC_OK, NULL);

    memset (long_string, 'a', AL_CODEC_MAX_TEXT_LEN + 1);
    long_string [AL_CODEC_MAX_TEXT_LEN + 1] = '\0';
    s_fixture_init (&f, AIRLOCK__ENVELOPE__BODY_RELEASE_CANDIDATE);
    f.release.summary = long_string;
    s_expect_env (&f.env, AL_CODEC_ERR_BAD_LENGTH, "release_candidate.summary:");
    s_fixture_init (&f, AIRLOCK__ENVELOPE__BODY_RELEASE_CANDIDATE);
    f.release.version = long_string + AL_CODEC_MAX_TEXT_LEN - AL_CODEC_MAX_NAME_LEN;
    s_expect_env (&f.env, AL_CODEC_ERR_BAD_LENGTH, "release_candidate.version:");
    s_fixture_init (&f, AIRLOCK__ENVELOPE__BODY_RELEASE_CANDIDATE);
    f.release.service = long_string + AL_CODEC_MAX_TEXT_LEN + 1 - (AL_CODEC_MAX_SERVICE_LEN + 1);
    s_expect_env (&f.env, AL_CODEC_ERR_BAD_LENGTH, "release_candidate.service:");
    free (long_string);

    // A list one above its limit.
    char **changes = calloc (AL_CODEC_MAX_LIST_LEN + 1, sizeof (char *));
    assert_non_null (changes);
    for (size_t i = 0; i <= AL_CODEC_MAX_LIST_LEN; i++)
        changes [i] = "x";
    s_fixture_init (&f, AIRLOCK__ENVELOPE__BODY_RELEASE_CANDIDATE);
    f.release.changes = changes;
    f.release.n_changes = AL_CODEC_MAX_LIST_LEN + 1;
    s_expect_env (&f.env, AL_CODEC_ERR_BAD_LENGTH, "release_candidate.changes: has 1025 elements");
    f.release.n_changes = AL_CODEC_MAX_LIST_LEN;
    s_expect_env (&f.env, AL_CODEC_OK, NULL);
    free (changes);

    // Bytes of the wrong size, and above the bytes limit.
    s_fixture_init (&f, AIRLOCK__ENVELOPE__BODY_SIGNED_APPROVAL);
    f.approval.signature.len = 63;
    s_expect_env (&f.env, AL_CODEC_ERR_BAD_LENGTH, "signed_approval.signature: is 63 bytes");
    s_fixture_init (&f, AIRLOCK__ENVELOPE__BODY_SIGNED_APPROVAL);
    f.approval.public_key.len = 31;
    s_expect_env (&f.env, AL_CODEC_ERR_BAD_LENGTH, "signed_approval.public_key:");
    // An SSHSIG blob has no fixed size.
    s_fixture_init (&f, AIRLOCK__ENVELOPE__BODY_SIGNED_APPROVAL);
    f.approval.format = AIRLOCK__SIGNATURE_FORMAT__SIG_SSHSIG;
    f.approval.signature.len = 20;
    s_expect_env (&f.env, AL_CODEC_OK, NULL);
    uint8_t *big = calloc (1, AL_CODEC_MAX_BYTES_LEN + 1);
    assert_non_null (big);
    s_fixture_init (&f, AIRLOCK__ENVELOPE__BODY_SIGNED_APPROVAL);
    f.approval.statement = s_bytes (big, AL_CODEC_MAX_BYTES_LEN + 1);
    s_expect_env (&f.env, AL_CODEC_ERR_BAD_LENGTH, "signed_approval.statement:");
    free (big);
    s_fixture_init (&f, AIRLOCK__ENVELOPE__BODY_ACK);
    f.ack.audit_hash.len = 20;
    s_expect_env (&f.env, AL_CODEC_ERR_BAD_LENGTH, "ack.audit_hash:");
    f.ack.audit_hash.len = 0;       // optional
    s_expect_env (&f.env, AL_CODEC_OK, NULL);
    s_fixture_init (&f, AIRLOCK__ENVELOPE__BODY_CHECKPOINT);
    f.checkpoint.head_hash.len = 33;
    s_expect_env (&f.env, AL_CODEC_ERR_BAD_LENGTH, "checkpoint.head_hash:");
}

static void
test_bad_value (void **state)
{
    (void) state;
    static const char *bad_digests [] = {
        "sha256:" S_DIGEST_A,                   // no prefix on the wire
        "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg",
    };
    s_fixture_t f;
    for (size_t i = 0; i < sizeof bad_digests / sizeof bad_digests [0]; i++) {
        s_fixture_init (&f, AIRLOCK__ENVELOPE__BODY_RELEASE_CANDIDATE);
        f.release.artifact_sha256 = (char *) bad_digests [i];
        s_expect_env (&f.env, AL_CODEC_ERR_BAD_VALUE, "release_candidate.artifact_sha256:");
    }
    s_fixture_init (&f, AIRLOCK__ENVELOPE__BODY_EXECUTE_DEPLOY);
    f.approval_request.qa_report_sha256 = "abc";
    s_expect_env (&f.env, AL_CODEC_ERR_BAD_VALUE, "execute_deploy.grant.request.qa_report_sha256:");

    // Invalid UTF-8: a bad continuation, an overlong '/', a surrogate, beyond U+10FFFF,
    // a truncated sequence at the end.
    static const char *bad_utf8 [] = {
        "ok \xc3\x28", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "end \xe2\x82",
    };
    for (size_t i = 0; i < sizeof bad_utf8 / sizeof bad_utf8 [0]; i++) {
        s_fixture_init (&f, AIRLOCK__ENVELOPE__BODY_NOTIFICATION);
        f.notification.text = (char *) bad_utf8 [i];
        s_expect_env (&f.env, AL_CODEC_ERR_BAD_VALUE, "notification.text: is not valid UTF-8");
        s_fixture_init (&f, AIRLOCK__ENVELOPE__BODY_NOTIFICATION);
        f.entry.value = (char *) bad_utf8 [i];
        s_expect_env (&f.env, AL_CODEC_ERR_BAD_VALUE, "notification.fields[0].value:");
    }
    // Control characters: an ANSI escape in text an approver will read; a newline in a
    // name; a space in an id; C1 controls.
    s_fixture_init (&f, AIRLOCK__ENVELOPE__BODY_APPROVAL_REQUEST);
    f.approval_request.summary = "looks fine\x1b[8mhidden";
    s_expect_env (&f.env, AL_CODEC_ERR_BAD_VALUE, "approval_request.summary:");
    s_fixture_init (&f, AIRLOCK__ENVELOPE__BODY_APPROVAL_REQUEST);
    f.approval_request.risk_impact = "csi \xc2\x9b";
    s_expect_env (&f.env, AL_CODEC_ERR_BAD_VALUE, "approval_request.risk_impact:");
    s_fixture_init (&f, AIRLOCK__ENVELOPE__BODY_RELEASE_CANDIDATE);
    f.release.version = "v1\n";
    s_expect_env (&f.env, AL_CODEC_ERR_BAD_VALUE, "release_candidate.version:");
    //  The ASCII fast path of names refuses what the full decoder refuses: TAB, DEL.
    s_fixture_init (&f, AIRLOCK__ENVELOPE__BODY_RELEASE_CANDIDATE);
    f.release.version = "v1\t2";
    s_expect_env (&f.env, AL_CODEC_ERR_BAD_VALUE, "release_candidate.version: character 2");
    s_fixture_init (&f, AIRLOCK__ENVELOPE__BODY_RELEASE_CANDIDATE);
    f.release.version = "v1\x7f";
    s_expect_env (&f.env, AL_CODEC_ERR_BAD_VALUE, "release_candidate.version: character 2");
    // Free text an approver reads: CR (it overwrites the line on a terminal), DEL, C1
    // and every bidi control are refused; so are bidi controls in a name.
    static const char *bad_text [] = {
        "DISABLES-FRAUD-CHECKS\rroutine dependency bump", "del \x7f", "nel \xc2\x85",
        "\xd8\x9c", "\xe2\x80\x8e", "\xe2\x80\x8f", "\xe2\x80\xaa", "\xe2\x80\xab", "\xe2\x80\xac",
        "\xe2\x80\xad", "abc\xe2\x80\xaegnp", "\xe2\x81\xa6", "\xe2\x81\xa7", "\xe2\x81\xa8", "\xe2\x81\xa9",
    };
    for (size_t i = 0; i < sizeof bad_text / sizeof bad_text [0]; i++) {
        s_fixture_init (&f, AIRLOCK__ENVELOPE__BODY_APPROVAL_REQUEST);
        f.approval_request.summary = (char *) bad_text [i];
        s_expect_env (&f.env, AL_CODEC_ERR_BAD_VALUE, "approval_request.summary: character");
        s_fixture_init (&f, AIRLOCK__ENVELOPE__BODY_APPROVAL_REQUEST);
        f.approval_request.rollback_command = (char *) bad_text [i];
        s_expect_env (&f.env, AL_CODEC_ERR_BAD_VALUE, "approval_request.rollback_command:");
    }
    s_fixture_init (&f, AIRLOCK__ENVELOPE__BODY_APPROVAL_REQUEST);
    f.approval_request.risk_level = "low\xe2\x80\xae";
    s_expect_env (&f.env, AL_CODEC_ERR_BAD_VALUE, "approval_request.risk_level:");
    // What free text may hold: tab, LF (shown escaped), zero-width characters (they
    // join emoji; shown escaped too), any other UTF-8.
    s_fixture_init (&f, AIRLOCK__ENVELOPE__BODY_APPROVAL_REQUEST);
    f.approval_request.summary = "line one\n\tline two \xe2\x80\x8d Z\xc3\xbcrich";
    s_expect_env (&f.env, AL_CODEC_OK, NULL);
    s_fixture_init (&f, AIRLOCK__ENVELOPE__BODY_HEARTBEAT);
    f.env.message_id = "msg 1";
    s_expect_env (&f.env, AL_CODEC_ERR_BAD_VALUE, "message_id:");
    s_fixture_init (&f, AIRLOCK__ENVELOPE__BODY_DEPLOY_REQUEST);
    f.deploy.service = "Payments_API";
    s_expect_env (&f.env, AL_CODEC_ERR_BAD_VALUE, "deploy_request.service:");
    s_fixture_init (&f, AIRLOCK__ENVELOPE__BODY_DEPLOY_REQUEST);
    f.deploy.service = "-payments";
    s_expect_env (&f.env, AL_CODEC_ERR_BAD_VALUE, "deploy_request.service:");
    //  Past the plain ASCII prefix each character is decoded and judged, and the error
    //  names its position: a byte that is not UTF-8, a character the kind refuses.
    s_fixture_init (&f, AIRLOCK__ENVELOPE__BODY_DEPLOY_REQUEST);
    f.deploy.service = "payments-api-";
    s_expect_env (&f.env, AL_CODEC_OK, NULL);
    s_fixture_init (&f, AIRLOCK__ENVELOPE__BODY_HEARTBEAT);
    f.env.message_id = "msg-1\xff";
    s_expect_env (&f.env, AL_CODEC_ERR_BAD_VALUE, "message_id: is not valid UTF-8 (byte 5)");
    s_fixture_init (&f, AIRLOCK__ENVELOPE__BODY_HEARTBEAT);
    f.env.message_id = "msg-\xc3\xbc";
    s_expect_env (&f.env, AL_CODEC_ERR_BAD_VALUE, "message_id: character 4 is not allowed in an id");
    s_fixture_init (&f, AIRLOCK__ENVELOPE__BODY_DEPLOY_REQUEST);
    f.deploy.artifact_sha256 = "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef";
    s_expect_env (&f.env, AL_CODEC_ERR_BAD_VALUE, "deploy_request.artifact_sha256: character 10 is not allowed");
    s_fixture_init (&f, AIRLOCK__ENVELOPE__BODY_DEPLOY_REQUEST);
    f.deploy.artifact_sha256 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde";
    s_expect_env (&f.env, AL_CODEC_ERR_BAD_VALUE, "deploy_request.artifact_sha256: is 63 hex digits");
    s_fixture_init (&f, AIRLOCK__ENVELOPE__BODY_DEPLOY_REQUEST);
    f.deploy.version = "v1.2.3 \xc3\xa9t\xc3\xa9";
    s_expect_env (&f.env, AL_CODEC_OK, NULL);
    s_fixture_init (&f, AIRLOCK__ENVELOPE__BODY_STATUS_REPLY);
    f.reply.json = "{\r\n\t\"deployments\": []\r\n}";
    s_expect_env (&f.env, AL_CODEC_OK, NULL);

    // Doubles: finite, non-negative; a ratio is at most 1.
    double bad_numbers [] = { NAN, INFINITY, -INFINITY, -0.5 };
    for (size_t i = 0; i < sizeof bad_numbers / sizeof bad_numbers [0]; i++) {
        s_fixture_init (&f, AIRLOCK__ENVELOPE__BODY_ROLLBACK_TRIGGER);
        f.signal.latency_p99_ms = bad_numbers [i];
        s_expect_env (&f.env, AL_CODEC_ERR_BAD_VALUE, "rollback_trigger.samples[0].latency_p99_ms:");
    }
    s_fixture_init (&f, AIRLOCK__ENVELOPE__BODY_SOAK_SIGNAL);
    f.signal.error_ratio = 1.5;
    s_expect_env (&f.env, AL_CODEC_ERR_BAD_VALUE, "soak_signal.error_ratio:");

    // Cross-field sanity.
    s_fixture_init (&f, AIRLOCK__ENVELOPE__BODY_PRODUCTION_GRANT);
    f.grant.request_id = "req-8";
    s_expect_env (&f.env, AL_CODEC_ERR_BAD_VALUE, "production_grant.request_id:");
    s_fixture_init (&f, AIRLOCK__ENVELOPE__BODY_APPROVAL_REQUEST);
    f.approval_request.window_end_ms = f.approval_request.window_start_ms;
    s_expect_env (&f.env, AL_CODEC_ERR_BAD_VALUE, "approval_request.window_end_ms:");
    s_fixture_init (&f, AIRLOCK__ENVELOPE__BODY_DEPLOY_PROGRESS);
    f.progress.percent = 101;
    s_expect_env (&f.env, AL_CODEC_ERR_BAD_VALUE, "deploy_progress.percent:");
    s_fixture_init (&f, AIRLOCK__ENVELOPE__BODY_REGISTER);
    f.register_.heartbeat_interval_ms = 5;
    s_expect_env (&f.env, AL_CODEC_ERR_BAD_VALUE, "register.heartbeat_interval_ms:");
}

static void
test_no_body (void **state)
{
    (void) state;
    s_fixture_t f;
    s_fixture_init (&f, AIRLOCK__ENVELOPE__BODY_HEARTBEAT);
    f.env.body_case = AL_MSG_NONE;
    s_expect_env (&f.env, AL_CODEC_ERR_NO_BODY, "body:");
    // An empty frame decodes to an envelope with nothing set.
    s_expect (NULL, 0, AL_CODEC_ERR_NO_BODY, "body:");
    // A body selected in memory but not set is refused by pack, which writes nothing.
    s_fixture_init (&f, AIRLOCK__ENVELOPE__BODY_HEARTBEAT);
    f.env.heartbeat = NULL;
    uint8_t *data = (uint8_t *) &f;
    size_t size = 1;
    char error [128];
    assert_int_equal (al_codec_pack (&f.env, &data, &size, error, sizeof error), AL_CODEC_ERR_NO_BODY);
    assert_null (data);
    assert_int_equal (size, 0);
    assert_string_equal (error, "body: no message body is set");
}

static void
s_statement_init (Airlock__ApprovalStatement *statement, uint8_t *approval_id)
{
    *statement = (Airlock__ApprovalStatement) AIRLOCK__APPROVAL_STATEMENT__INIT;
    statement->request_id = "req-7";
    statement->deployment_type = AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD;
    statement->environment = AIRLOCK__ENVIRONMENT__ENV_PRODUCTION;
    statement->service = "payments-api";
    statement->artifact_sha256 = S_DIGEST_A;
    statement->qa_report_sha256 = S_DIGEST_C;
    statement->approver_key_id = "0a1b2c3d4e5f6071";
    statement->issued_at_ms = 1763790000000;
    statement->expires_at_ms = 1763793600000;
    statement->approval_id = s_bytes (approval_id, 16);
    statement->decision = AIRLOCK__DECISION__DECISION_GRANT;
}

static void
s_expect_message (const ProtobufCMessage *message, al_codec_status_t expected, const char *prefix)
{
    char error [512];
    al_codec_status_t status = al_codec_validate_message (message, error, sizeof error);
    if (status != expected)
        fail_msg ("expected %s, got %s (%s)", al_codec_strerror (expected),
                  al_codec_strerror (status), error);
    if (prefix && strncmp (error, prefix, strlen (prefix)) != 0)
        fail_msg ("error '%s' does not start with '%s'", error, prefix);
}

static void
test_validate_message (void **state)
{
    (void) state;
    uint8_t approval_id [16] = { 1, 2, 3 };
    Airlock__ApprovalStatement statement;
    s_statement_init (&statement, approval_id);
    s_expect_message (&statement.base, AL_CODEC_OK, NULL);
    statement.reason = "fine\x1b]0;title\x07";
    s_expect_message (&statement.base, AL_CODEC_ERR_BAD_VALUE, "ApprovalStatement.reason:");
    s_statement_init (&statement, approval_id);
    statement.approval_id.len = 0;
    s_expect_message (&statement.base, AL_CODEC_ERR_MISSING_FIELD, "ApprovalStatement.approval_id:");
    s_statement_init (&statement, approval_id);
    statement.decision = 3;
    s_expect_message (&statement.base, AL_CODEC_ERR_BAD_ENUM, "ApprovalStatement.decision:");
    s_statement_init (&statement, approval_id);
    statement.expires_at_ms = statement.issued_at_ms;
    s_expect_message (&statement.base, AL_CODEC_ERR_BAD_VALUE, "ApprovalStatement.expires_at_ms:");
    s_statement_init (&statement, approval_id);
    statement.decision = AIRLOCK__DECISION__DECISION_UNSPECIFIED;
    s_expect_message (&statement.base, AL_CODEC_ERR_MISSING_FIELD, "ApprovalStatement.decision:");

    // Other messages and envelopes go through the same rules.
    s_fixture_t f;
    s_fixture_init (&f, AIRLOCK__ENVELOPE__BODY_EXECUTE_DEPLOY);
    s_expect_message (&f.grant.base, AL_CODEC_OK, NULL);
    f.approval.public_key.len = 0;
    s_expect_message (&f.grant.base, AL_CODEC_ERR_MISSING_FIELD, "ProductionGrant.approvals[0].public_key:");
    f.execute.grant = NULL;     // no envelope: the environment is unknown, no grant needed
    s_expect_message (&f.execute.base, AL_CODEC_OK, NULL);
    s_fixture_init (&f, AIRLOCK__ENVELOPE__BODY_EXECUTE_DEPLOY);
    f.env.message_id = "";
    s_expect_message (&f.env.base, AL_CODEC_ERR_MISSING_FIELD, "message_id:");
}

static void
test_strerror (void **state)
{
    (void) state;
    const char *unknown = al_codec_strerror ((al_codec_status_t) 1000);
    for (int status = AL_CODEC_OK; status <= AL_CODEC_ERR_NOMEM; status++) {
        const char *text = al_codec_strerror ((al_codec_status_t) status);
        assert_true (strlen (text) > 0);
        assert_true (strcmp (text, unknown) != 0);
        for (int other = AL_CODEC_OK; other < status; other++)
            assert_true (strcmp (text, al_codec_strerror ((al_codec_status_t) other)) != 0);
    }
}

static void
test_names (void **state)
{
    (void) state;
    size_t count = al_msg_type_count ();
    assert_int_equal (al_msg_type_at (count), AL_MSG_NONE);
    for (size_t i = 0; i < count; i++) {
        al_msg_type_t type = al_msg_type_at (i);
        const char *name = al_msg_type_name (type);
        assert_non_null (name);
        assert_int_equal (al_msg_type_from_name (name), type);
        // The name is the body's message type.
        s_fixture_t f;
        s_fixture_init (&f, type);
        assert_string_equal (s_body (&f.env)->descriptor->short_name, name);
        for (size_t j = 0; j < i; j++)
            assert_int_not_equal (al_msg_type_at (j), type);
    }
    assert_string_equal (al_msg_type_name (AIRLOCK__ENVELOPE__BODY_DEPLOY_REQUEST), "DeployRequest");
    assert_int_equal (al_msg_type_from_name ("ExecuteDeploy"), AIRLOCK__ENVELOPE__BODY_EXECUTE_DEPLOY);
    assert_int_equal (al_msg_type_from_name ("deployrequest"), AL_MSG_NONE);
    assert_int_equal (al_msg_type_from_name ("Envelope"), AL_MSG_NONE);
    assert_int_equal (al_msg_type_from_name (""), AL_MSG_NONE);
    assert_int_equal (al_msg_type_from_name (NULL), AL_MSG_NONE);
    assert_null (al_msg_type_name (AL_MSG_NONE));
    assert_null (al_msg_type_name ((al_msg_type_t) 4));     // Envelope.environment: not a body
    assert_null (al_msg_type_name ((al_msg_type_t) 9999));

    for (int env = 1; env <= AIRLOCK__ENVIRONMENT__ENV_PRODUCTION; env++) {
        const char *name = al_environment_name ((Airlock__Environment) env);
        assert_non_null (name);
        assert_int_equal (al_environment_from_name (name), env);
    }
    assert_string_equal (al_environment_name (AIRLOCK__ENVIRONMENT__ENV_STAGING), "staging");
    assert_null (al_environment_name (AIRLOCK__ENVIRONMENT__ENV_UNSPECIFIED));
    assert_null (al_environment_name ((Airlock__Environment) 4));
    assert_null (al_environment_name ((Airlock__Environment) -1));
    assert_int_equal (al_environment_from_name ("Production"), AIRLOCK__ENVIRONMENT__ENV_UNSPECIFIED);
    assert_int_equal (al_environment_from_name (NULL), AIRLOCK__ENVIRONMENT__ENV_UNSPECIFIED);

    for (int type = 1; type <= AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_EMERGENCY; type++) {
        const char *name = al_deployment_type_name ((Airlock__DeploymentType) type);
        assert_non_null (name);
        assert_int_equal (al_deployment_type_from_name (name), type);
    }
    assert_string_equal (al_deployment_type_name (AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_HOTFIX), "hotfix");
    assert_null (al_deployment_type_name (AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_UNSPECIFIED));
    assert_null (al_deployment_type_name ((Airlock__DeploymentType) 6));
    assert_int_equal (al_deployment_type_from_name ("canary"), AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_UNSPECIFIED);
}

static void
test_signing_bytes (void **state)
{
    (void) state;
    static const uint8_t payload [] = { 0x0a, 0x05, 'r', 'e', 'q', '-', '7', 0x00, 0xff };
    size_t approval_size = 0, checkpoint_size = 0;
    uint8_t *approval = al_codec_signing_bytes (AL_SIGN_APPROVAL_STATEMENT, payload,
                                                sizeof payload, &approval_size);
    uint8_t *checkpoint = al_codec_signing_bytes (AL_SIGN_CHECKPOINT, payload,
                                                  sizeof payload, &checkpoint_size);
    assert_non_null (approval);
    assert_non_null (checkpoint);
    // Exact layout: context string, its NUL, then the payload.
    static const char approval_context [] = "airlock-approval-statement-v1";
    static const char checkpoint_context [] = "airlock-checkpoint-v1";
    assert_int_equal (approval_size, sizeof approval_context + sizeof payload);
    assert_memory_equal (approval, approval_context, sizeof approval_context);
    assert_memory_equal (approval + sizeof approval_context, payload, sizeof payload);
    assert_int_equal (checkpoint_size, sizeof checkpoint_context + sizeof payload);
    assert_memory_equal (checkpoint, checkpoint_context, sizeof checkpoint_context);
    assert_memory_equal (checkpoint + sizeof checkpoint_context, payload, sizeof payload);
    // Domain separation: the same payload never gives the same bytes.
    assert_true (approval_size != checkpoint_size
                 || memcmp (approval, checkpoint, approval_size) != 0);
    free (approval);
    free (checkpoint);

    size_t empty_size = 99;
    uint8_t *empty = al_codec_signing_bytes (AL_SIGN_CHECKPOINT, NULL, 0, &empty_size);
    assert_non_null (empty);
    assert_int_equal (empty_size, sizeof checkpoint_context);
    free (empty);
    assert_null (al_codec_signing_bytes ((al_sign_domain_t) 3, payload, sizeof payload, &empty_size));

    // Checkpoint signing bytes: the signature field does not count, every other does.
    s_fixture_t f;
    s_fixture_init (&f, AIRLOCK__ENVELOPE__BODY_CHECKPOINT);
    size_t signed_size, unsigned_size, other_size;
    uint8_t *with_signature = al_codec_checkpoint_signing_bytes (&f.checkpoint, &signed_size);
    Airlock__Checkpoint copy = f.checkpoint;
    copy.signature = s_bytes (NULL, 0);
    uint8_t *without = al_codec_checkpoint_signing_bytes (&copy, &unsigned_size);
    copy.row_count++;
    uint8_t *other = al_codec_checkpoint_signing_bytes (&copy, &other_size);
    assert_non_null (with_signature);
    assert_non_null (without);
    assert_non_null (other);
    assert_int_equal (signed_size, unsigned_size);
    assert_memory_equal (with_signature, without, signed_size);
    assert_true (other_size != unsigned_size || memcmp (other, without, other_size) != 0);
    // ... and they are the checkpoint domain over the packed unsigned checkpoint.
    copy.row_count--;
    size_t packed_size = airlock__checkpoint__get_packed_size (&copy);
    uint8_t *packed = malloc (packed_size);
    assert_non_null (packed);
    airlock__checkpoint__pack (&copy, packed);
    size_t expected_size;
    uint8_t *expected = al_codec_signing_bytes (AL_SIGN_CHECKPOINT, packed, packed_size, &expected_size);
    assert_int_equal (expected_size, unsigned_size);
    assert_memory_equal (expected, without, expected_size);
    assert_int_equal (f.checkpoint.signature.len, 64);      // the input is left alone
    free (expected);
    free (packed);
    free (with_signature);
    free (without);
    free (other);
}

//  Writes a few packed envelopes into dir as the fuzzer's seed corpus.
static int
s_write_corpus (const char *dir)
{
    static const al_msg_type_t types [] = {
        AIRLOCK__ENVELOPE__BODY_EXECUTE_DEPLOY, AIRLOCK__ENVELOPE__BODY_RELEASE_CANDIDATE,
        AIRLOCK__ENVELOPE__BODY_ROLLBACK_TRIGGER, AIRLOCK__ENVELOPE__BODY_NOTIFICATION,
        AIRLOCK__ENVELOPE__BODY_STATUS_REPLY, AIRLOCK__ENVELOPE__BODY_CHECKPOINT,
        AIRLOCK__ENVELOPE__BODY_QA_REPORT, AIRLOCK__ENVELOPE__BODY_ACK,
        AIRLOCK__ENVELOPE__BODY_DELIVERY_ACK,
    };
    for (size_t i = 0; i < sizeof types / sizeof types [0]; i++) {
        s_fixture_t f;
        s_fixture_init (&f, types [i]);
        uint8_t *data;
        size_t size;
        char error [256];
        if (al_codec_pack (&f.env, &data, &size, error, sizeof error) != AL_CODEC_OK) {
            fprintf (stderr, "test_codec: %s\n", error);
            return 1;
        }
        char path [1024];
        snprintf (path, sizeof path, "%s/%s.bin", dir, s_body_field_name (types [i]));
        FILE *file = fopen (path, "wb");
        bool written = file && fwrite (data, 1, size, file) == size;
        if (file && fclose (file) != 0)
            written = false;
        free (data);
        if (!written) {
            fprintf (stderr, "test_codec: cannot write %s\n", path);
            return 1;
        }
    }
    return 0;
}

//  DeliveryAck lists 1..AL_CODEC_MAX_DELIVERY_ACK_IDS ids, none 0; the single-id form
//  of older clients is byte for byte what it always was, and still accepted.
static void
test_delivery_ack_ids (void **state)
{
    (void) state;
    //  The old form: delivery_id alone, no field 2 on the wire.
    s_fixture_t f;
    s_fixture_init (&f, AIRLOCK__ENVELOPE__BODY_DELIVERY_ACK);
    f.delivery_ack.n_more_delivery_ids = 0;
    f.delivery_ack.more_delivery_ids = NULL;
    f.delivery_ack.delivery_id = 300;
    uint8_t body [16];
    size_t body_size = airlock__delivery_ack__pack (&f.delivery_ack, body);
    static const uint8_t old_form [] = { 0x08, 0xAC, 0x02 };    // field 1, varint 300
    assert_int_equal (body_size, sizeof old_form);
    assert_memory_equal (body, old_form, sizeof old_form);
    uint8_t *data;
    size_t size;
    char error [512];
    assert_int_equal (al_codec_pack (&f.env, &data, &size, error, sizeof error), AL_CODEC_OK);
    al_envelope_t *env = NULL;
    assert_int_equal (al_codec_unpack (data, size, size, &env, error, sizeof error), AL_CODEC_OK);
    free (data);
    assert_int_equal (al_delivery_ack_count (env->delivery_ack), 1);
    assert_int_equal (al_delivery_ack_id (env->delivery_ack, 0), 300);
    al_codec_free (&env);

    //  The most a DeliveryAck may list: delivery_id and 1023 more, in order.
    size_t most = AL_CODEC_MAX_DELIVERY_ACK_IDS;
    uint64_t *ids = calloc (most + 1, sizeof *ids);
    assert_non_null (ids);
    for (size_t i = 0; i <= most; i++)
        ids [i] = 1000 + i;
    f.delivery_ack.delivery_id = 999;
    f.delivery_ack.more_delivery_ids = ids;
    f.delivery_ack.n_more_delivery_ids = most - 1;
    assert_int_equal (al_codec_pack (&f.env, &data, &size, error, sizeof error), AL_CODEC_OK);
    assert_int_equal (al_codec_unpack (data, size, size, &env, error, sizeof error), AL_CODEC_OK);
    free (data);
    assert_int_equal (al_delivery_ack_count (env->delivery_ack), most);
    for (size_t i = 0; i < most; i++)
        assert_int_equal (al_delivery_ack_id (env->delivery_ack, i), 999 + i);
    al_codec_free (&env);

    //  One more is refused (by the DeliveryAck rule), and so is a list past the generic
    //  list limit.
    f.delivery_ack.n_more_delivery_ids = most;
    s_expect_env (&f.env, AL_CODEC_ERR_BAD_LENGTH, "delivery_ack.more_delivery_ids: lists 1024 ids");
    f.delivery_ack.n_more_delivery_ids = most + 1;
    s_expect_env (&f.env, AL_CODEC_ERR_BAD_LENGTH, "delivery_ack.more_delivery_ids:");

    //  No id is 0: not the first, not any other.
    f.delivery_ack.n_more_delivery_ids = 3;
    ids [1] = 0;
    s_expect_env (&f.env, AL_CODEC_ERR_MISSING_FIELD, "delivery_ack.more_delivery_ids[1]:");
    ids [1] = 1001;
    f.delivery_ack.delivery_id = 0;
    s_expect_env (&f.env, AL_CODEC_ERR_MISSING_FIELD, "delivery_ack.delivery_id:");
    f.delivery_ack.delivery_id = 999;
    s_expect_env (&f.env, AL_CODEC_OK, NULL);
    free (ids);
}

int
main (int argc, char **argv)
{
    if (argc == 3 && strcmp (argv [1], "--write-corpus") == 0)
        return s_write_corpus (argv [2]);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_round_trip_every_type),
        cmocka_unit_test (test_spot_values_survive),
        cmocka_unit_test (test_truncated),
        cmocka_unit_test (test_too_large),
        cmocka_unit_test (test_field_number_zero),
        cmocka_unit_test (test_bad_enum),
        cmocka_unit_test (test_missing_field),
        cmocka_unit_test (test_bad_length),
        cmocka_unit_test (test_bad_value),
        cmocka_unit_test (test_no_body),
        cmocka_unit_test (test_validate_message),
        cmocka_unit_test (test_strerror),
        cmocka_unit_test (test_names),
        cmocka_unit_test (test_signing_bytes),
        cmocka_unit_test (test_delivery_ack_ids),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
