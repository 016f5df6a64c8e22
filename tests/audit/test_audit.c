/*  test_audit.c: the auditor's tools as a library: replay (states, timelines, --as-of),
    the history rows, CloudEvents, the signature audit (a tampered signature inside a
    well-chained log), and the comparison with the live state.

    One log (audit_log.h) is built for the group; tests that tamper work on a copy, tests
    that edit the live state put the files back.
*/
#include "audit_log.h"
#include "agents/al_audit_view.h"
#include "proto/al_codec.h"
#include "proto/al_signature.h"
#include "store/al_cloudevents.h"
#include "store/al_replay.h"
#include "store/al_signature_audit.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static audit_log_t *s_log;

static int
s_setup (void **state)
{
    (void) state;
    s_log = audit_log_new ();
    return 0;
}

static int
s_teardown (void **state)
{
    (void) state;
    audit_log_destroy (&s_log);
    return 0;
}

static al_replay_t *
s_replay (uint64_t as_of)
{
    char error [512];
    al_store_t *store = audit_log_open (s_log->db);
    al_replay_t *replay = al_replay_new (store, as_of, error, sizeof error);
    if (!replay)
        fail_msg ("%s", error);
    al_store_destroy (&store);
    return replay;
}

static const al_replay_deployment_t *
s_find (const al_replay_t *replay, const char *id)
{
    const al_replay_deployment_t *deployment = al_replay_find (replay, id);
    if (!deployment)
        fail_msg ("no deployment %s in the replay", id);
    return deployment;
}

static const al_replay_entry_t *
s_entry_at (const al_replay_deployment_t *deployment, uint64_t sequence)
{
    for (size_t i = 0; i < deployment->entry_count; i++)
        if (deployment->entries [i].sequence == sequence)
            return &deployment->entries [i];
    fail_msg ("%s has no entry for row %llu", deployment->id, (unsigned long long) sequence);
    return NULL;
}

static void
test_replay_states (void **state)
{
    (void) state;
    al_replay_t *replay = s_replay (0);
    assert_int_equal (al_replay_rows (replay), s_log->rows);
    //  Nine deployments; the rows about none (policy, signals, the malformed frame) make none.
    assert_int_equal (al_replay_count (replay), 9);
    assert_string_equal (al_replay_at (replay, 0)->id, "rel-a-stg");

    struct { const char *id; al_replay_state_t state; const char *environment; const char *detail; } expected [] = {
        { "rel-a-stg", AL_REPLAY_SUCCEEDED, "staging", "" },
        { "rel-a-prod", AL_REPLAY_SUCCEEDED, "production", "" },
        { "rel-b-stg", AL_REPLAY_SUCCEEDED, "staging", "" },
        { "rel-b-prod", AL_REPLAY_ROLLED_BACK, "production", "rule error_rate_increase" },
        { "rel-c-prod", AL_REPLAY_REFUSED, "production", "only the broker's approval gate deploys to production" },
        { "rel-d-prod", AL_REPLAY_AWAITING_APPROVAL, "production", "" },
        { "rel-e-stg", AL_REPLAY_RUNNING, "staging", "" },
        { "rel-f-stg", AL_REPLAY_REFUSED, "staging", "strategy canary is not allowed in staging" },
        { "rel-g-prod", AL_REPLAY_REFUSED, "production", "closed: denied by bob" },
    };
    for (size_t i = 0; i < sizeof expected / sizeof expected [0]; i++) {
        const al_replay_deployment_t *d = s_find (replay, expected [i].id);
        if (d->state != expected [i].state)
            fail_msg ("%s: state %s, expected %s", d->id, al_replay_state_name (d->state),
                      al_replay_state_name (expected [i].state));
        assert_string_equal (d->environment, expected [i].environment);
        if (!strstr (d->detail, expected [i].detail))
            fail_msg ("%s: detail '%s' lacks '%s'", d->id, d->detail, expected [i].detail);
    }
    const al_replay_deployment_t *running = s_find (replay, "rel-e-stg");
    char text [64];
    al_replay_state_text (running, text, sizeof text);
    assert_string_equal (text, "running rollout");
    //  The refused request still says what it wanted.
    const al_replay_deployment_t *refused = s_find (replay, "rel-c-prod");
    assert_string_equal (refused->service, "web");
    assert_string_equal (refused->version, "v3.0.0");
    assert_int_equal (refused->requested_ms, 0);
    assert_null (al_replay_find (replay, "rel-a"));
    al_replay_destroy (&replay);
    assert_null (replay);
}

static void
test_replay_timeline (void **state)
{
    (void) state;
    al_replay_t *replay = s_replay (0);
    const al_replay_deployment_t *d = s_find (replay, "rel-a-prod");
    assert_string_equal (d->service, "api");
    assert_string_equal (d->version, "v1.1.0");
    assert_string_equal (d->deployment_type, "standard");
    assert_string_equal (d->requested_by, "orchestrator-1");
    assert_int_equal (d->request_sequence, s_log->a_prod_request);
    assert_int_equal (d->requested_ms, audit_log_time (s_log->a_prod_request));

    //  The approval: by key id, its signature checked again, carried by the grant.
    assert_int_equal (d->approval_count, 1);
    const al_replay_approval_t *approval = &d->approvals [0];
    char alice [65];
    sodium_bin2hex (alice, sizeof alice, s_log->alice_public, 32);
    assert_string_equal (approval->key_id, s_log->alice_key_id);
    assert_string_equal (approval->public_key, alice);
    assert_true (approval->signature_valid);
    assert_true (approval->in_grant);
    assert_string_equal (approval->decision, "grant");
    assert_string_equal (approval->sender, "approver-1");
    assert_int_equal (approval->sequence, s_log->a_prod_approval);
    assert_int_equal (d->grant_sequence, s_log->a_prod_grant);

    //  The receipt and its digest: the evidence file's.
    assert_int_equal (d->receipt_sequence, s_log->a_prod_receipt);
    assert_string_equal (d->receipt_outcome, "succeeded");
    char *path = audit_log_evidence (s_log, "rel-a-prod");
    char *text = audit_log_read_file (path);
    assert_non_null (text);
    uint8_t digest [32];
    char hex [65];
    crypto_hash_sha256 (digest, (const uint8_t *) text, strlen (text));
    sodium_bin2hex (hex, sizeof hex, digest, sizeof digest);
    assert_string_equal (d->receipt_sha256, hex);
    free (text);
    free (path);

    //  The timeline: request, qa's denied attempt, approval, grant, 12 journal records,
    //  receipt; progress inside a step is not part of it.
    assert_int_equal (d->entry_count, 17);
    for (size_t i = 1; i < d->entry_count; i++)
        assert_true (d->entries [i].sequence > d->entries [i - 1].sequence);
    assert_int_equal (d->entries [0].kind, AL_REPLAY_REQUEST);
    const al_replay_entry_t *denial = s_entry_at (d, s_log->a_prod_denial);
    assert_int_equal (denial->kind, AL_REPLAY_DENIAL);
    assert_string_equal (denial->sender, "qa-1");
    assert_non_null (strstr (denial->text, "default deny"));
    assert_int_equal (s_entry_at (d, s_log->a_prod_approval)->kind, AL_REPLAY_APPROVAL);
    assert_non_null (strstr (s_entry_at (d, s_log->a_prod_approval)->text, s_log->alice_key_id));
    assert_int_equal (s_entry_at (d, s_log->a_prod_grant)->kind, AL_REPLAY_GRANT);
    const al_replay_entry_t *rollout = s_entry_at (d, s_log->a_prod_rollout);
    assert_int_equal (rollout->kind, AL_REPLAY_JOURNAL);
    assert_string_equal (rollout->step, "rollout");
    assert_string_equal (rollout->outcome, "started");
    assert_int_equal (rollout->time_ms, audit_log_time (s_log->a_prod_rollout));
    size_t journal = 0;
    for (size_t i = 0; i < d->entry_count; i++)
        journal += d->entries [i].kind == AL_REPLAY_JOURNAL;
    assert_int_equal (journal, 12);
    assert_int_equal (d->entries [d->entry_count - 1].kind, AL_REPLAY_RECEIPT);
    assert_int_equal (d->started_ms, audit_log_time (s_log->a_prod_grant + 2));

    //  The rollback: the trigger, the failed soak, the rollback, the rule.
    const al_replay_deployment_t *b = s_find (replay, "rel-b-prod");
    bool trigger = false, soak_failed = false, rollback = false;
    for (size_t i = 0; i < b->entry_count; i++) {
        const al_replay_entry_t *e = &b->entries [i];
        trigger |= e->kind == AL_REPLAY_TRIGGER && strstr (e->text, "error_rate_increase");
        soak_failed |= e->kind == AL_REPLAY_JOURNAL && !strcmp (e->step, "soak") && !strcmp (e->outcome, "failed");
        rollback |= e->kind == AL_REPLAY_JOURNAL && !strcmp (e->step, "rollback") && !strcmp (e->outcome, "succeeded");
    }
    assert_true (trigger && soak_failed && rollback);
    assert_string_equal (b->rollback_rule, "error_rate_increase");
    assert_string_equal (b->previous_version, "v1.1.0");
    assert_string_equal (b->approvals [0].key_id, s_log->bob_key_id);

    //  A refused approval is in the request's timeline (found by the statement's request id).
    const al_replay_deployment_t *waiting = s_find (replay, "rel-d-prod");
    assert_int_equal (waiting->approval_count, 0);
    assert_int_equal (waiting->entry_count, 2);
    assert_int_equal (waiting->entries [1].kind, AL_REPLAY_DENIAL);
    assert_non_null (strstr (waiting->entries [1].text, "expired"));
    //  A DENY that closed its request.
    const al_replay_deployment_t *closed = s_find (replay, "rel-g-prod");
    assert_int_equal (closed->approval_count, 1);
    assert_string_equal (closed->approvals [0].decision, "deny");
    assert_string_equal (closed->approvals [0].reason, "the risk is not acceptable today");
    assert_false (closed->approvals [0].in_grant);
    assert_int_equal (closed->entries [closed->entry_count - 1].kind, AL_REPLAY_CLOSED);
    al_replay_destroy (&replay);
}

static void
test_replay_as_of (void **state)
{
    (void) state;
    //  Just before the grant: rel-a-prod was approved by alice but not granted yet.
    al_replay_t *replay = s_replay (audit_log_time (s_log->a_prod_grant) - 1);
    assert_int_equal (al_replay_rows (replay), s_log->a_prod_grant - 1);
    const al_replay_deployment_t *d = s_find (replay, "rel-a-prod");
    assert_int_equal (d->state, AL_REPLAY_AWAITING_APPROVAL);
    assert_int_equal (d->approval_count, 1);
    assert_false (d->approvals [0].in_grant);
    assert_int_equal (d->grant_sequence, 0);
    assert_int_equal (s_find (replay, "rel-a-stg")->state, AL_REPLAY_SUCCEEDED);
    assert_null (al_replay_find (replay, "rel-b-stg"));
    al_replay_destroy (&replay);

    //  At the rollout's journal record: running rollout.
    replay = s_replay (audit_log_time (s_log->a_prod_rollout));
    d = s_find (replay, "rel-a-prod");
    assert_int_equal (d->state, AL_REPLAY_RUNNING);
    assert_string_equal (d->step, "rollout");
    assert_int_equal (d->receipt_sequence, 0);
    assert_int_equal (d->entries [d->entry_count - 1].sequence, s_log->a_prod_rollout);
    al_replay_destroy (&replay);

    //  Just after the grant: approved.
    replay = s_replay (audit_log_time (s_log->a_prod_grant));
    assert_int_equal (s_find (replay, "rel-a-prod")->state, AL_REPLAY_APPROVED);
    al_replay_destroy (&replay);
}

static void
test_history_rows (void **state)
{
    (void) state;
    al_replay_t *replay = s_replay (0);
    al_replay_history_t row;
    al_replay_history_row (s_find (replay, "rel-b-prod"), &row);
    assert_string_equal (row.date, "2026-02-01");
    assert_string_equal (row.type, "Standard");
    assert_string_equal (row.status, "Rolled back");
    assert_string_equal (row.rollback, "Yes");
    assert_non_null (strstr (row.notes, "error_rate_increase"));
    assert_non_null (strstr (row.notes, "back to v1.1.0"));
    //  From the first journal record to the journal's receipt record (the row before the receipt).
    assert_int_equal (row.duration_ms, (s_log->b_prod_receipt - 1 - s_log->b_prod_first_journal) * 1000);

    al_replay_history_row (s_find (replay, "rel-a-prod"), &row);
    assert_string_equal (row.status, "Success");
    assert_string_equal (row.rollback, "N/A");
    assert_int_equal (row.duration_ms, 12000);
    assert_non_null (strstr (row.notes, "receipt sha256"));

    al_replay_history_row (s_find (replay, "rel-c-prod"), &row);
    assert_string_equal (row.status, "Refused");
    assert_string_equal (row.date, "2026-02-01");
    assert_non_null (strstr (row.notes, "denied"));
    al_replay_history_row (s_find (replay, "rel-d-prod"), &row);
    assert_string_equal (row.status, "Awaiting approval");
    assert_int_equal (row.duration_ms, 0);
    al_replay_history_row (s_find (replay, "rel-e-stg"), &row);
    assert_string_equal (row.status, "In progress");
    assert_string_equal (row.notes, "running rollout");
    al_replay_destroy (&replay);
}

static void
test_deployment_json (void **state)
{
    (void) state;
    al_replay_t *replay = s_replay (0);
    const al_replay_deployment_t *d = s_find (replay, "rel-b-prod");
    json_t *root = al_replay_deployment_json (d);
    assert_non_null (root);
    assert_string_equal (json_string_value (json_object_get (root, "state")), "rolled_back");
    assert_string_equal (json_string_value (json_object_get (root, "state_text")), "rolled_back");
    assert_int_equal (json_array_size (json_object_get (root, "timeline")), d->entry_count);
    json_t *approval = json_array_get (json_object_get (root, "approvals"), 0);
    assert_string_equal (json_string_value (json_object_get (approval, "key_id")), s_log->bob_key_id);
    assert_true (json_is_true (json_object_get (approval, "signature_valid")));
    json_t *receipt = json_object_get (root, "receipt");
    assert_string_equal (json_string_value (json_object_get (receipt, "rollback_rule")), "error_rate_increase");
    assert_int_equal (json_integer_value (json_object_get (receipt, "sequence")), s_log->b_prod_receipt);
    json_t *first = json_array_get (json_object_get (root, "timeline"), 0);
    assert_string_equal (json_string_value (json_object_get (first, "kind")), "request");
    json_decref (root);
    al_replay_destroy (&replay);
}

//  The exported line of row `sequence`, parsed.
static json_t *
s_line (json_t *lines, uint64_t sequence)
{
    json_t *line = json_array_get (lines, sequence - 1);
    assert_non_null (line);
    return line;
}

static void
test_cloudevents (void **state)
{
    (void) state;
    al_store_t *store = audit_log_open (s_log->db);
    char *buffer = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&buffer, &size);
    assert_non_null (out);
    char error [256] = "";
    assert_int_equal (al_cloudevents_export (store, 1, out, error, sizeof error), AL_STORE_OK);
    assert_int_equal (fclose (out), 0);
    json_t *lines = json_array ();
    for (char *line = strtok (buffer, "\n"); line; line = strtok (NULL, "\n")) {
        json_error_t json_error;
        json_t *event = json_loads (line, 0, &json_error);
        if (!event)
            fail_msg ("not JSON: %s: %s", json_error.text, line);
        json_array_append_new (lines, event);
    }
    assert_int_equal (json_array_size (lines), s_log->rows);

    //  A staging DeployRequest.
    json_t *event = s_line (lines, s_log->a_stg_request);
    char id [24];
    snprintf (id, sizeof id, "%llu", (unsigned long long) s_log->a_stg_request);
    assert_string_equal (json_string_value (json_object_get (event, "specversion")), "1.0");
    assert_string_equal (json_string_value (json_object_get (event, "id")), id);
    assert_string_equal (json_string_value (json_object_get (event, "source")), "airlock/audit");
    assert_string_equal (json_string_value (json_object_get (event, "type")), "dev.airlock.DeployRequest");
    assert_string_equal (json_string_value (json_object_get (event, "time")), "2026-02-01T10:00:02.000Z");
    assert_string_equal (json_string_value (json_object_get (event, "subject")), "rel-a-stg");
    assert_string_equal (json_string_value (json_object_get (event, "datacontenttype")), "application/json");
    json_t *data = json_object_get (event, "data");
    assert_int_equal (json_integer_value (json_object_get (data, "sequence")), s_log->a_stg_request);
    al_store_event_t row;
    assert_int_equal (al_store_event_get (store, s_log->a_stg_request, &row), AL_STORE_OK);
    char hash [65];
    sodium_bin2hex (hash, sizeof hash, row.hash, 32);
    assert_string_equal (json_string_value (json_object_get (data, "hash")), hash);
    assert_string_equal (json_string_value (json_object_get (data, "sender")), "orchestrator-1");
    assert_string_equal (json_string_value (json_object_get (data, "role")), "orchestrator");
    assert_string_equal (json_string_value (json_object_get (data, "decision")), "accepted");
    json_t *envelope = json_object_get (data, "envelope");
    assert_string_equal (json_string_value (json_object_get (envelope, "deployment_id")), "rel-a-stg");
    assert_string_equal (json_string_value (json_object_get (envelope, "environment")), "ENV_STAGING");
    json_t *request = json_object_get (envelope, "deploy_request");
    assert_string_equal (json_string_value (json_object_get (request, "service")), "api");
    assert_string_equal (json_string_value (json_object_get (request, "strategy")), "STRATEGY_ROLLING");
    assert_int_equal (json_integer_value (json_object_get (request, "instances")), 2);
    //  Default values are left out (proto3 JSON); other bodies of the oneof too.
    assert_null (json_object_get (request, "migration_set_sha256"));
    assert_null (json_object_get (envelope, "qa_request"));

    //  The broker's own row: no subject, no envelope.
    event = s_line (lines, s_log->policy_loaded);
    assert_string_equal (json_string_value (json_object_get (event, "type")), "dev.airlock.PolicyLoaded");
    assert_null (json_object_get (event, "subject"));
    assert_true (json_is_null (json_object_get (json_object_get (event, "data"), "envelope")));
    //  A denial, decoded all the same.
    event = s_line (lines, s_log->a_prod_denial);
    data = json_object_get (event, "data");
    assert_string_equal (json_string_value (json_object_get (data, "decision")), "denied");
    assert_non_null (strstr (json_string_value (json_object_get (data, "reason")), "default deny"));
    assert_string_equal (json_string_value (json_object_get (json_object_get (json_object_get (data, "envelope"),
                         "deploy_request"), "version")), "v1.1.0");
    //  Bytes that do not decode are kept as base64.
    event = s_line (lines, s_log->malformed);
    data = json_object_get (event, "data");
    assert_true (json_is_null (json_object_get (data, "envelope")));
    assert_string_equal (json_string_value (json_object_get (data, "envelope_base64")), "////");
    //  A signed approval: enum names, bytes as base64.
    event = s_line (lines, s_log->a_prod_approval);
    json_t *approval = json_object_get (json_object_get (json_object_get (event, "data"), "envelope"), "signed_approval");
    assert_string_equal (json_string_value (json_object_get (approval, "format")), "SIG_ED25519");
    char key [64];
    sodium_bin2base64 (key, sizeof key, s_log->alice_public, 32, sodium_base64_VARIANT_ORIGINAL);
    assert_string_equal (json_string_value (json_object_get (approval, "public_key")), key);
    json_t *statement = json_object_get (approval, "statement_decoded");
    assert_string_equal (json_string_value (json_object_get (statement, "request_id")), "rel-a-prod");
    assert_string_equal (json_string_value (json_object_get (statement, "approver_key_id")), s_log->alice_key_id);
    assert_string_equal (json_string_value (json_object_get (statement, "decision")), "DECISION_GRANT");
    json_decref (lines);
    free (buffer);
    al_store_destroy (&store);
}

static void
test_message_json (void **state)
{
    (void) state;
    Airlock__Notification notification = AIRLOCK__NOTIFICATION__INIT;
    Airlock__Notification__FieldsEntry first = AIRLOCK__NOTIFICATION__FIELDS_ENTRY__INIT;
    Airlock__Notification__FieldsEntry second = AIRLOCK__NOTIFICATION__FIELDS_ENTRY__INIT;
    Airlock__Notification__FieldsEntry *fields [] = { &first, &second };
    first.key = (char *) "service";
    first.value = (char *) "api";
    second.key = (char *) "version";
    second.value = (char *) "v1";
    notification.template_ = (char *) "rollback";
    notification.n_fields = 2;
    notification.fields = fields;
    json_t *json = al_message_to_json (&notification.base);
    assert_string_equal (json_string_value (json_object_get (json, "template")), "rollback");
    json_t *map = json_object_get (json, "fields");
    assert_true (json_is_object (map));
    assert_string_equal (json_string_value (json_object_get (map, "service")), "api");
    assert_string_equal (json_string_value (json_object_get (map, "version")), "v1");
    assert_null (json_object_get (json, "subject"));
    json_decref (json);

    //  64-bit numbers, doubles, repeated messages, text that is not UTF-8.
    Airlock__SoakSignal signal = AIRLOCK__SOAK_SIGNAL__INIT;
    signal.service = (char *) "bad\xff";
    signal.sequence = 1ULL << 40;
    signal.error_ratio = 0.25;
    Airlock__SoakSignal *samples [] = { &signal, &signal };
    Airlock__RollbackTrigger trigger = AIRLOCK__ROLLBACK_TRIGGER__INIT;
    trigger.rule = (char *) "error_rate_increase";
    trigger.n_samples = 2;
    trigger.samples = samples;
    json = al_message_to_json (&trigger.base);
    json_t *list = json_object_get (json, "samples");
    assert_int_equal (json_array_size (list), 2);
    json_t *sample = json_array_get (list, 1);
    assert_int_equal (json_integer_value (json_object_get (sample, "sequence")), 1LL << 40);
    assert_true (json_real_value (json_object_get (sample, "error_ratio")) == 0.25);
    assert_string_equal (json_string_value (json_object_get (sample, "service")), "hex:626164ff");
    json_decref (json);
}

//  A DeliveryAck row that acknowledges several deliveries: the chain verifies, the
//  replay reads past it (it is about no deployment), and its CloudEvent lists every id.
static void
test_batched_delivery_ack (void **state)
{
    (void) state;
    al_verify_report_t verify;
    assert_int_equal (al_store_verify_path (NULL, s_log->db, NULL, NULL, &verify), AL_STORE_OK);
    assert_int_equal (verify.result, AL_VERIFY_OK);
    assert_int_equal (verify.rows, s_log->rows);
    assert_int_equal (s_log->batched_ack, s_log->rows);

    al_replay_t *replay = s_replay (0);
    assert_int_equal (al_replay_rows (replay), s_log->rows);
    for (size_t i = 0; i < al_replay_count (replay); i++) {
        const al_replay_deployment_t *deployment = al_replay_at (replay, i);
        for (size_t j = 0; j < deployment->entry_count; j++)
            assert_int_not_equal (deployment->entries [j].sequence, s_log->batched_ack);
    }
    al_replay_destroy (&replay);

    al_store_t *store = audit_log_open (s_log->db);
    al_store_event_t event;
    assert_int_equal (al_store_event_get (store, s_log->batched_ack, &event), AL_STORE_OK);
    assert_string_equal (event.type, "DeliveryAck");
    json_t *cloudevent = al_cloudevent_of (&event);
    assert_non_null (cloudevent);
    assert_string_equal (json_string_value (json_object_get (cloudevent, "type")), "dev.airlock.DeliveryAck");
    json_t *ack = json_object_get (json_object_get (json_object_get (cloudevent, "data"), "envelope"), "delivery_ack");
    assert_non_null (ack);
    assert_int_equal (json_integer_value (json_object_get (ack, "delivery_id")), s_log->batched_ack_ids [0]);
    json_t *more = json_object_get (ack, "more_delivery_ids");
    assert_int_equal (json_array_size (more), 2);
    assert_int_equal (json_integer_value (json_array_get (more, 0)), s_log->batched_ack_ids [1]);
    assert_int_equal (json_integer_value (json_array_get (more, 1)), s_log->batched_ack_ids [2]);
    json_decref (cloudevent);
    al_store_destroy (&store);
}

static void
test_signatures_hold (void **state)
{
    (void) state;
    al_store_t *store = audit_log_open (s_log->db);
    al_signature_audit_t report;
    assert_int_equal (al_signature_audit_run (store, NULL, NULL, &report), AL_STORE_OK);
    assert_int_equal (report.rows, s_log->rows);
    //  alice's, bob's, bob's DENY; the refused one is not checked.
    assert_int_equal (report.approvals, 3);
    assert_int_equal (report.grants, 2);
    assert_int_equal (report.grant_approvals, 2);
    assert_int_equal (report.failures, 0);
    assert_int_equal (report.first_bad_sequence, 0);
    al_store_destroy (&store);
}

typedef struct {
    uint64_t sequences [8];
    size_t count;
} s_failures_t;

static void
s_on_failure (uint64_t sequence, const char *what, void *arg)
{
    (void) what;
    s_failures_t *failures = (s_failures_t *) arg;
    if (failures->count < 8)
        failures->sequences [failures->count++] = sequence;
}

static void
test_signature_tampered (void **state)
{
    (void) state;
    char *copy = audit_log_tamper_signature (s_log, s_log->a_prod_approval, false);
    //  The chain holds: only the signature check can see it.
    al_verify_report_t verify;
    assert_int_equal (al_store_verify_path (NULL, copy, NULL, NULL, &verify), AL_STORE_OK);
    assert_int_equal (verify.result, AL_VERIFY_OK);
    assert_int_equal (verify.rows, s_log->rows);

    al_store_t *store = audit_log_open (copy);
    al_signature_audit_t report;
    s_failures_t failures = { .count = 0 };
    assert_int_equal (al_signature_audit_run (store, s_on_failure, &failures, &report), AL_STORE_OK);
    assert_int_equal (report.first_bad_sequence, s_log->a_prod_approval);
    assert_non_null (strstr (report.reason, "does not verify"));
    //  The grant that carried it is named too: its approval has no genuine accepted row.
    assert_int_equal (report.failures, 2);
    assert_int_equal (failures.count, 2);
    assert_int_equal (failures.sequences [0], s_log->a_prod_approval);
    assert_int_equal (failures.sequences [1], s_log->a_prod_grant);
    al_store_destroy (&store);

    //  Replay shows it too.
    char error [256];
    store = audit_log_open (copy);
    al_replay_t *replay = al_replay_new (store, 0, error, sizeof error);
    assert_non_null (replay);
    const al_replay_approval_t *approval = &s_find (replay, "rel-a-prod")->approvals [0];
    assert_false (approval->signature_valid);
    assert_string_equal (approval->public_key, "");
    al_replay_destroy (&replay);
    al_store_destroy (&store);
    unlink (copy);
    free (copy);

    //  A signature altered inside the grant only.
    copy = audit_log_tamper_signature (s_log, s_log->a_prod_grant, true);
    assert_int_equal (al_store_verify_path (NULL, copy, NULL, NULL, &verify), AL_STORE_OK);
    assert_int_equal (verify.result, AL_VERIFY_OK);
    store = audit_log_open (copy);
    assert_int_equal (al_signature_audit_run (store, NULL, NULL, &report), AL_STORE_OK);
    assert_int_equal (report.failures, 1);
    assert_int_equal (report.first_bad_sequence, s_log->a_prod_grant);
    assert_non_null (strstr (report.reason, "grant for request rel-a-prod"));
    al_store_destroy (&store);
    unlink (copy);
    free (copy);
}

//  A copy of the log whose grant row (re-chained, so only the signature audit can see it)
//  names another artifact: in the deploy only, or in the deploy and the approved request.
static char *
s_swap_granted_artifact (bool in_request_too)
{
    char *copy = NULL;
    assert_true (asprintf (&copy, "%s/swapped-%d.db", s_log->dir, in_request_too) >= 0);
    unlink (copy);
    audit_log_copy_db (s_log->db, copy);
    al_store_t *store = audit_log_open (copy);
    al_store_event_t row;
    assert_int_equal (al_store_event_get (store, s_log->a_prod_grant, &row), AL_STORE_OK);
    al_envelope_t *envelope = NULL;
    char error [256];
    assert_int_equal (al_codec_unpack (row.envelope, row.envelope_size, 0, &envelope, error, sizeof error), AL_CODEC_OK);
    static char other [] = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752";
    char *deploy_digest = envelope->execute_deploy->request->artifact_sha256;
    char *request_digest = envelope->execute_deploy->grant->request->artifact_sha256;
    envelope->execute_deploy->request->artifact_sha256 = other;
    if (in_request_too)
        envelope->execute_deploy->grant->request->artifact_sha256 = other;
    uint8_t *bytes = NULL;
    size_t size = 0;
    assert_int_equal (al_codec_pack (envelope, &bytes, &size, error, sizeof error), AL_CODEC_OK);
    //  The swapped pointers are not the decoder's: put its own back before freeing.
    envelope->execute_deploy->request->artifact_sha256 = deploy_digest;
    envelope->execute_deploy->grant->request->artifact_sha256 = request_digest;
    al_codec_free (&envelope);
    al_store_destroy (&store);
    audit_log_rewrite (copy, s_log->a_prod_grant, bytes, size);
    free (bytes);
    return copy;
}

//  An insider rewrites a grant to another artifact, keeping the genuine approvals and
//  re-chaining the log: the signatures still verify, but not for what was deployed.
static void
test_grant_bound_to_artifact (void **state)
{
    (void) state;
    for (int in_request_too = 0; in_request_too < 2; in_request_too++) {
        char *copy = s_swap_granted_artifact (in_request_too);
        al_verify_report_t verify;
        assert_int_equal (al_store_verify_path (NULL, copy, NULL, NULL, &verify), AL_STORE_OK);
        assert_int_equal (verify.result, AL_VERIFY_OK);
        al_store_t *store = audit_log_open (copy);
        al_signature_audit_t report;
        assert_int_equal (al_signature_audit_run (store, NULL, NULL, &report), AL_STORE_OK);
        assert_int_equal (report.failures, 1);
        assert_int_equal (report.first_bad_sequence, s_log->a_prod_grant);
        const char *expected = in_request_too? "approval 1 signed another artifact_sha256"
                                             : "the deploy's artifact_sha256 differs";
        if (!strstr (report.reason, expected))
            fail_msg ("reason '%s' does not say '%s'", report.reason, expected);
        al_store_destroy (&store);
        unlink (copy);
        free (copy);
    }
}

typedef struct {
    char subjects [16][64];
    char whats [16][512];
    size_t count;
} s_disagreements_t;

static void
s_on_disagreement (const char *subject, const char *what, void *arg)
{
    s_disagreements_t *list = (s_disagreements_t *) arg;
    if (list->count < 16) {
        snprintf (list->subjects [list->count], sizeof list->subjects [0], "%s", subject);
        snprintf (list->whats [list->count], sizeof list->whats [0], "%s", what);
        list->count++;
    }
}

static s_disagreements_t
s_compare (al_replay_live_t *live)
{
    al_replay_t *replay = s_replay (0);
    s_disagreements_t list;
    memset (&list, 0, sizeof list);
    al_replay_live_source_t source;
    al_audit_live_source (s_log->dir, &source);
    al_replay_compare_live (replay, &source, s_on_disagreement, &list, live);
    al_replay_destroy (&replay);
    return list;
}

static void
test_live_agrees (void **state)
{
    (void) state;
    al_replay_live_t live;
    s_disagreements_t list = s_compare (&live);
    if (list.count)
        fail_msg ("%s: %s", list.subjects [0], list.whats [0]);
    assert_int_equal (live.disagreements, 0);
    assert_int_equal (live.receipts, 4);
    assert_int_equal (live.releases, 4);
}

static void
test_live_disagrees (void **state)
{
    (void) state;
    al_replay_live_t live;
    //  An edited receipt: its digest and its outcome both disagree.
    char *path = audit_log_evidence (s_log, "rel-a-prod");
    char *original = audit_log_read_file (path);
    assert_non_null (original);
    char *edited = strdup (original);
    char *at = strstr (edited, "\"succeeded\"");
    assert_non_null (at);
    memcpy (at, "\"failed\"   ", 11);
    audit_log_write_file (path, edited);
    s_disagreements_t list = s_compare (&live);
    assert_int_equal (live.disagreements, 2);
    assert_string_equal (list.subjects [0], "rel-a-prod");
    assert_non_null (strstr (list.whats [0], "SHA-256"));
    assert_non_null (strstr (list.whats [1], "says outcome failed, the log says succeeded"));
    audit_log_write_file (path, original);
    free (edited);
    free (original);
    free (path);

    //  Missing evidence.
    path = audit_log_evidence (s_log, "rel-b-stg");
    char *moved = NULL;
    assert_true (asprintf (&moved, "%s.moved", path) >= 0);
    assert_int_equal (rename (path, moved), 0);
    list = s_compare (&live);
    assert_int_equal (live.disagreements, 1);
    assert_string_equal (list.subjects [0], "rel-b-stg");
    assert_non_null (strstr (list.whats [0], "cannot be read"));
    assert_int_equal (rename (moved, path), 0);
    free (moved);
    free (path);

    //  Release files that claim what the log does not hold.
    assert_true (asprintf (&path, "%s/rel-b.json", s_log->releases_dir) >= 0);
    original = audit_log_read_file (path);
    audit_log_write_file (path, "{\"release_id\": \"rel-b\", \"state\": \"DONE\"}\n");
    char *pending = NULL;
    assert_true (asprintf (&pending, "%s/rel-d.json", s_log->releases_dir) >= 0);
    char *pending_original = audit_log_read_file (pending);
    audit_log_write_file (pending, "{\"release_id\": \"rel-d\", \"state\": \"DONE\"}\n");
    list = s_compare (&live);
    assert_int_equal (live.disagreements, 2);
    assert_string_equal (list.subjects [0], "rel-b");
    assert_non_null (strstr (list.whats [0], "the log says production deployment rel-b-prod rolled_back"));
    assert_string_equal (list.subjects [1], "rel-d");
    assert_non_null (strstr (list.whats [1], "no succeeded receipt"));
    audit_log_write_file (path, original);
    audit_log_write_file (pending, pending_original);
    free (pending_original);
    free (pending);
    free (original);
    free (path);

    list = s_compare (&live);
    assert_int_equal (live.disagreements, 0);
}

//  A live source whose every read fails in a chosen way: what store/ does with files it
//  cannot get (reports each, never skips), without any file.
typedef struct {
    int list_rc;                    // list_releases' answer
    int receipt_rc;                 // load_receipt's answer: 0, -1, -2
    const char *receipt_outcome;
    bool receipt_right_digest;
} s_fake_source_t;

static int
s_fake_list (void *self, al_replay_release_id_fn *each, void *each_arg, char *error, size_t error_size)
{
    s_fake_source_t *fake = (s_fake_source_t *) self;
    if (fake->list_rc != 0) {
        snprintf (error, error_size, "releases: Permission denied");
        return fake->list_rc;
    }
    each ("rel-a", each_arg);
    each ("rel-broken", each_arg);
    return 0;
}

static int
s_fake_release (void *self, const char *release_id, al_replay_release_t *release, char *error, size_t error_size)
{
    (void) self;
    if (strcmp (release_id, "rel-broken") == 0) {
        snprintf (error, error_size, "rel-broken.json:1: not JSON: '[' or '{' expected near 'x'");
        return -1;
    }
    snprintf (release->release_id, sizeof release->release_id, "%s", release_id);
    snprintf (release->state, sizeof release->state, "DONE");
    return 0;
}

static int
s_fake_receipt (void *self, const char *deployment_id, al_replay_receipt_t *receipt, char *error, size_t error_size)
{
    s_fake_source_t *fake = (s_fake_source_t *) self;
    snprintf (receipt->path, sizeof receipt->path, "/evidence/%s/deploy_receipt.json", deployment_id);
    if (fake->receipt_rc == -1) {
        snprintf (error, error_size, "%s: No such file or directory", receipt->path);
        return -1;
    }
    //  The replay's own digest, or one that is not it.
    al_replay_t *replay = s_replay (0);
    const al_replay_deployment_t *d = al_replay_find (replay, deployment_id);
    snprintf (receipt->sha256, sizeof receipt->sha256, "%s",
              fake->receipt_right_digest && d? d->receipt_sha256: "00");
    if (d)
        snprintf (receipt->outcome, sizeof receipt->outcome, "%s",
                  fake->receipt_outcome? fake->receipt_outcome: al_replay_state_name (d->state));
    al_replay_destroy (&replay);
    snprintf (receipt->deployment_id, sizeof receipt->deployment_id, "%s", deployment_id);
    if (fake->receipt_rc == -2) {
        snprintf (error, error_size, "%s:1: not JSON: end of file expected", receipt->path);
        return -2;
    }
    return 0;
}

static s_disagreements_t
s_compare_fake (s_fake_source_t *fake, al_replay_live_t *live)
{
    al_replay_t *replay = s_replay (0);
    al_replay_live_source_t source = { .list_releases = s_fake_list, .load_release = s_fake_release,
                                       .load_receipt = s_fake_receipt, .self = fake };
    s_disagreements_t list;
    memset (&list, 0, sizeof list);
    al_replay_compare_live (replay, &source, s_on_disagreement, &list, live);
    al_replay_destroy (&replay);
    return list;
}

static void
test_live_source_failures (void **state)
{
    (void) state;
    al_replay_live_t live;
    //  Receipts that match; rel-a's release file agrees; rel-broken does not parse.
    s_fake_source_t fake = { .list_rc = 0, .receipt_rc = 0, .receipt_right_digest = true };
    s_disagreements_t list = s_compare_fake (&fake, &live);
    assert_int_equal (live.receipts, 4);
    assert_int_equal (live.releases, 2);
    assert_int_equal (live.disagreements, 1);
    assert_string_equal (list.subjects [0], "rel-broken");
    assert_non_null (strstr (list.whats [0], "not JSON"));

    //  Release files that cannot be listed: one disagreement, about the orchestrator.
    fake.list_rc = -1;
    list = s_compare_fake (&fake, &live);
    assert_int_equal (live.releases, 0);
    assert_int_equal (live.disagreements, 1);
    assert_string_equal (list.subjects [0], "orchestrator");
    assert_non_null (strstr (list.whats [0], "cannot be listed: releases: Permission denied"));

    //  Receipts that cannot be read: each is a disagreement naming its row.
    fake.list_rc = 0;
    fake.receipt_rc = -1;
    list = s_compare_fake (&fake, &live);
    assert_int_equal (live.receipts, 4);
    assert_int_equal (live.disagreements, 4 + 1);
    assert_string_equal (list.subjects [0], "rel-a-stg");
    assert_non_null (strstr (list.whats [0], "cannot be read: /evidence/rel-a-stg/deploy_receipt.json: No such file"));

    //  Receipts read but not parsed: the digest is still compared, and the parse error said.
    fake.receipt_rc = -2;
    fake.receipt_right_digest = false;
    list = s_compare_fake (&fake, &live);
    assert_int_equal (live.disagreements, 4 * 2 + 1);
    assert_non_null (strstr (list.whats [0], "has SHA-256 00 but the log's receipt"));
    assert_non_null (strstr (list.whats [1], "not JSON: end of file expected"));

    //  A receipt whose outcome is not the log's.
    fake.receipt_rc = 0;
    fake.receipt_right_digest = true;
    fake.receipt_outcome = "failed";
    list = s_compare_fake (&fake, &live);
    assert_int_equal (live.disagreements, 4 + 1);
    assert_non_null (strstr (list.whats [0], "says outcome failed, the log says succeeded"));
}

//  The real source on files that do not parse: a release file and a receipt.
static void
test_live_unparsable_files (void **state)
{
    (void) state;
    al_replay_live_t live;
    char *path = NULL;
    assert_true (asprintf (&path, "%s/rel-e.json", s_log->releases_dir) >= 0);
    char *original = audit_log_read_file (path);
    audit_log_write_file (path, "{\"release_id\": \"rel-e\", \"state\": ");
    s_disagreements_t list = s_compare (&live);
    assert_int_equal (live.disagreements, 1);
    assert_string_equal (list.subjects [0], "rel-e");
    assert_non_null (strstr (list.whats [0], "rel-e.json:1: not JSON"));
    audit_log_write_file (path, original);
    free (original);
    free (path);

    path = audit_log_evidence (s_log, "rel-b-prod");
    original = audit_log_read_file (path);
    audit_log_write_file (path, "[1, 2");
    list = s_compare (&live);
    assert_int_equal (live.disagreements, 2);
    assert_string_equal (list.subjects [0], "rel-b-prod");
    assert_non_null (strstr (list.whats [0], "SHA-256"));
    assert_non_null (strstr (list.whats [1], "deploy_receipt.json:1: not JSON"));
    audit_log_write_file (path, original);
    free (original);
    free (path);

    list = s_compare (&live);
    assert_int_equal (live.disagreements, 0);
}

static void
test_parse_time (void **state)
{
    (void) state;
    uint64_t ms = 0;
    assert_true (al_replay_parse_time ("2026-02-01T10:00:00Z", &ms));
    assert_int_equal (ms, AL_T0_MS);
    assert_true (al_replay_parse_time ("2026-02-01T11:00:00.25+01:00", &ms));
    assert_int_equal (ms, AL_T0_MS + 250);
    assert_true (al_replay_parse_time ("2026-02-01 09:30:00-00:30", &ms));
    assert_int_equal (ms, AL_T0_MS);
    assert_true (al_replay_parse_time ("1769940000123", &ms));
    assert_int_equal (ms, AL_T0_MS + 123);
    const char *bad [] = { "", "yesterday", "2026-02-01T10:00:00", "2026-02-30T10:00:00Z", "2026-13-01T10:00:00Z",
                           "2026-02-01T10:00:00.Z", "2026-02-01T10:00:00Zjunk", "99999999999999999999", "-5" };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++)
        if (al_replay_parse_time (bad [i], &ms))
            fail_msg ("'%s' parsed", bad [i]);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_replay_states),
        cmocka_unit_test (test_replay_timeline),
        cmocka_unit_test (test_replay_as_of),
        cmocka_unit_test (test_history_rows),
        cmocka_unit_test (test_deployment_json),
        cmocka_unit_test (test_cloudevents),
        cmocka_unit_test (test_message_json),
        cmocka_unit_test (test_batched_delivery_ack),
        cmocka_unit_test (test_signatures_hold),
        cmocka_unit_test (test_signature_tampered),
        cmocka_unit_test (test_grant_bound_to_artifact),
        cmocka_unit_test (test_live_agrees),
        cmocka_unit_test (test_live_disagrees),
        cmocka_unit_test (test_live_source_failures),
        cmocka_unit_test (test_live_unparsable_files),
        cmocka_unit_test (test_parse_time),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
