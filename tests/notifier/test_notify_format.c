/*  test_notify_format.c: what a notification looks like and how it is kept.

    Formats (agents/al_notify_format): the HMAC is checked with OpenSSL, not with the code
    that made it; CloudEvents' required attributes; Slack's limits and escaping; header
    values that cannot carry a line break; invalid UTF-8 from the bus. Templates
    (agents/al_notify_templates): which events make which notification, with the seed's
    wording and the source keys that de-duplicate them. The outbox
    (agents/al_notify_outbox): a source recorded once, across a reopen; due order,
    retries and outcomes; what is remembered of deployments.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include "agents/al_notify_format.h"
#include "agents/al_notify_outbox.h"
#include "agents/al_notify_templates.h"
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *s_digest = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
//  2026-01-30T10:15:00.123Z
static const uint64_t s_time = 1769768100123ULL;

static al_notify_message_t *
s_message (void)
{
    al_notify_message_t *message = al_notify_message_new ("rollback", "event:42");
    assert_non_null (message);
    al_notify_message_set_subject (message, "[Rolled back] demo v2 to staging");
    al_notify_message_append (message, "line one\n");
    al_notify_message_append (message, "rule %s breached\n", "error_rate");
    al_notify_message_add_field (message, "service", "demo");
    al_notify_message_add_field (message, "rule", "error_rate");
    al_notify_message_add_field (message, "empty", "");          // left out
    al_notify_message_set_origin (message, "DeployReceipt", 42, "dep-7", 2, "demo", s_time);
    return message;
}

//  RFC 3339 as we write it: YYYY-MM-DDTHH:MM:SS.mmmZ.
static void
s_assert_rfc3339 (const char *text)
{
    assert_non_null (text);
    assert_int_equal (strlen (text), 24);
    const char *shape = "dddd-dd-ddTdd:dd:dd.dddZ";
    for (size_t i = 0; i < 24; i++) {
        if (shape [i] == 'd')
            assert_true (text [i] >= '0' && text [i] <= '9');
        else
            assert_int_equal (text [i], shape [i]);
    }
}

static void
test_delivery_id_and_time (void **state)
{
    (void) state;
    char a [AL_NOTIFY_DELIVERY_ID_SIZE], b [AL_NOTIFY_DELIVERY_ID_SIZE], c [AL_NOTIFY_DELIVERY_ID_SIZE];
    al_notify_format_delivery_id ("event:42", "ops-slack", a);
    al_notify_format_delivery_id ("event:42", "ops-slack", b);
    assert_string_equal (a, b);                     // stable: retries and restarts
    assert_int_equal (strlen (a), 36);
    assert_memory_equal (a, "ntf-", 4);
    al_notify_format_delivery_id ("event:42", "audit-sink", c);
    assert_string_not_equal (a, c);                 // one per endpoint
    al_notify_format_delivery_id ("event:43", "ops-slack", c);
    assert_string_not_equal (a, c);                 // one per event
    //  The key and the name cannot slide into each other.
    al_notify_format_delivery_id ("event:4", "2ops-slack", c);
    assert_string_not_equal (a, c);
    char text [AL_NOTIFY_TIME_SIZE];
    al_notify_format_time (s_time, text);
    assert_string_equal (text, "2026-01-30T10:15:00.123Z");
    al_notify_format_time (0, text);
    assert_string_equal (text, "1970-01-01T00:00:00.000Z");
}

static void
test_hmac_verified_independently (void **state)
{
    (void) state;
    const char *secret = "whsec-test-0123456789";
    const char *body = "{\"id\":\"ntf-1\",\"text\":\"caf\xc3\xa9\"}";
    char signature [AL_NOTIFY_SIGNATURE_SIZE];
    al_notify_format_sign ((const uint8_t *) secret, strlen (secret), 1769768100, (const uint8_t *) body,
                           strlen (body), signature);
    //  The receiver's recipe (docs/notifications.md) with OpenSSL.
    char signed_text [200];
    snprintf (signed_text, sizeof signed_text, "%llu.%s", 1769768100ULL, body);
    unsigned char mac [EVP_MAX_MD_SIZE];
    unsigned int mac_size = 0;
    assert_non_null (HMAC (EVP_sha256 (), secret, (int) strlen (secret), (const unsigned char *) signed_text,
                           strlen (signed_text), mac, &mac_size));
    assert_int_equal (mac_size, 32);
    char expected [AL_NOTIFY_SIGNATURE_SIZE] = "sha256=";
    for (unsigned i = 0; i < mac_size; i++)
        snprintf (expected + 7 + 2 * i, 3, "%02x", mac [i]);
    assert_string_equal (signature, expected);
    //  Another timestamp, another body, another key: another signature.
    char other [AL_NOTIFY_SIGNATURE_SIZE];
    al_notify_format_sign ((const uint8_t *) secret, strlen (secret), 1769768101, (const uint8_t *) body,
                           strlen (body), other);
    assert_string_not_equal (signature, other);
    al_notify_format_sign ((const uint8_t *) "other", 5, 1769768100, (const uint8_t *) body, strlen (body), other);
    assert_string_not_equal (signature, other);
    //  A key longer than SHA-256's block is hashed first (RFC 2104): OpenSSL agrees.
    char long_key [200];
    memset (long_key, 'k', sizeof long_key - 1);
    long_key [sizeof long_key - 1] = 0;
    al_notify_format_sign ((const uint8_t *) long_key, strlen (long_key), 1769768100, (const uint8_t *) body,
                           strlen (body), signature);
    assert_non_null (HMAC (EVP_sha256 (), long_key, (int) strlen (long_key), (const unsigned char *) signed_text,
                           strlen (signed_text), mac, &mac_size));
    for (unsigned i = 0; i < mac_size; i++)
        snprintf (expected + 7 + 2 * i, 3, "%02x", mac [i]);
    assert_string_equal (signature, expected);
}

static void
test_webhook_body (void **state)
{
    (void) state;
    al_notify_message_t *message = s_message ();
    size_t size = 0;
    char *body = al_notify_format_body (AL_NOTIFY_WEBHOOK, message, "ntf-abc", &size);
    assert_int_equal (size, strlen (body));
    json_error_t error;
    json_t *root = json_loads (body, 0, &error);
    if (!root)
        fail_msg ("not JSON: %s: %s", error.text, body);
    assert_string_equal (json_string_value (json_object_get (root, "id")), "ntf-abc");
    assert_string_equal (json_string_value (json_object_get (root, "type")), "rollback");
    assert_string_equal (json_string_value (json_object_get (root, "time")), "2026-01-30T10:15:00.123Z");
    assert_string_equal (json_string_value (json_object_get (root, "source")), "airlock");
    assert_string_equal (json_string_value (json_object_get (root, "subject")), "[Rolled back] demo v2 to staging");
    assert_string_equal (json_string_value (json_object_get (root, "text")), "line one\nrule error_rate breached\n");
    json_t *fields = json_object_get (root, "fields");
    assert_int_equal (json_object_size (fields), 2);
    assert_string_equal (json_string_value (json_object_get (fields, "rule")), "error_rate");
    assert_string_equal (json_string_value (json_object_get (root, "deployment_id")), "dep-7");
    assert_string_equal (json_string_value (json_object_get (root, "environment")), "staging");
    assert_string_equal (json_string_value (json_object_get (root, "service")), "demo");
    json_t *event = json_object_get (root, "event");
    assert_string_equal (json_string_value (json_object_get (event, "type")), "DeployReceipt");
    assert_int_equal (json_integer_value (json_object_get (event, "audit_sequence")), 42);
    json_decref (root);
    free (body);
    char *headers = al_notify_format_headers (AL_NOTIFY_WEBHOOK, message, "ntf-abc");
    assert_string_equal (headers, "Content-Type: application/json; charset=utf-8\nUser-Agent: airlock-notifier/0.1\n"
                                  "X-Airlock-Delivery: ntf-abc\nX-Airlock-Event: rollback\n");
    free (headers);
    al_notify_message_destroy (&message);
    assert_null (message);
}

static void
test_cloudevents_body (void **state)
{
    (void) state;
    al_notify_message_t *message = s_message ();
    size_t size = 0;
    char *body = al_notify_format_body (AL_NOTIFY_CLOUDEVENTS, message, "ntf-ce1", &size);
    json_t *root = json_loads (body, 0, NULL);
    assert_non_null (root);
    //  CloudEvents 1.0 required attributes, and the optional ones we promise.
    assert_string_equal (json_string_value (json_object_get (root, "specversion")), "1.0");
    assert_string_equal (json_string_value (json_object_get (root, "id")), "ntf-ce1");
    assert_string_equal (json_string_value (json_object_get (root, "source")), "airlock");
    assert_string_equal (json_string_value (json_object_get (root, "type")), "dev.airlock.rollback");
    s_assert_rfc3339 (json_string_value (json_object_get (root, "time")));
    assert_string_equal (json_string_value (json_object_get (root, "subject")), "[Rolled back] demo v2 to staging");
    assert_string_equal (json_string_value (json_object_get (root, "datacontenttype")), "application/json");
    json_t *data = json_object_get (root, "data");
    assert_true (json_is_object (data));
    assert_string_equal (json_string_value (json_object_get (data, "template")), "rollback");
    assert_string_equal (json_string_value (json_object_get (data, "text")), "line one\nrule error_rate breached\n");
    assert_string_equal (json_string_value (json_object_get (json_object_get (data, "fields"), "service")), "demo");
    assert_string_equal (json_string_value (json_object_get (data, "deployment_id")), "dep-7");
    //  Attribute names are lowercase alphanumerics (CloudEvents 1.0, naming conventions).
    const char *key;
    json_t *value;
    json_object_foreach (root, key, value) {
        for (const char *p = key; *p; p++)
            assert_true ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9'));
    }
    json_decref (root);
    free (body);
    assert_string_equal (al_notify_format_content_type (AL_NOTIFY_CLOUDEVENTS),
                         "application/cloudevents+json; charset=utf-8");
    char type [64];
    al_notify_format_event_type ("release note/x", type, sizeof type);
    assert_string_equal (type, "dev.airlock.release_note_x");
    al_notify_message_destroy (&message);
}

static void
test_slack_body (void **state)
{
    (void) state;
    al_notify_message_t *message = al_notify_message_new ("approval_requested", "event:1");
    char subject [400];
    memset (subject, 'S', sizeof subject - 1);
    subject [sizeof subject - 1] = 0;
    al_notify_message_set_subject (message, "%s", subject);
    al_notify_message_append (message, "run: airlock approve <req-1> & read it\n");
    for (int i = 0; i < 400; i++)
        al_notify_message_append (message, "0123456789\xc3\xa9");         // 11 characters, 12 bytes
    al_notify_message_add_field (message, "approve_command", "airlock approve <req-1>");
    for (int i = 0; i < 14; i++) {
        char key [16];
        snprintf (key, sizeof key, "k%d", i);
        al_notify_message_add_field (message, key, "v");
    }
    al_notify_message_set_origin (message, "ApprovalRequest", 1, "req-1", 3, "demo", s_time);
    size_t size = 0;
    char *body = al_notify_format_body (AL_NOTIFY_SLACK, message, "ntf-s1", &size);
    json_t *root = json_loads (body, 0, NULL);
    assert_non_null (root);
    const char *fallback = json_string_value (json_object_get (root, "text"));
    assert_non_null (fallback);
    assert_non_null (strstr (fallback, "airlock approve &lt;req-1&gt; &amp; read it"));
    json_t *blocks = json_object_get (root, "blocks");
    assert_int_equal (json_array_size (blocks), 4);
    json_t *header = json_array_get (blocks, 0);
    assert_string_equal (json_string_value (json_object_get (header, "type")), "header");
    const char *header_text = json_string_value (json_object_get (json_object_get (header, "text"), "text"));
    assert_string_equal (json_string_value (json_object_get (json_object_get (header, "text"), "type")), "plain_text");
    assert_true (json_string_length (json_object_get (json_object_get (header, "text"), "text")) <= 150);
    assert_non_null (strstr (header_text, "\xe2\x80\xa6"));              // cut, and says so
    json_t *section = json_array_get (blocks, 1);
    const char *text = json_string_value (json_object_get (json_object_get (section, "text"), "text"));
    assert_string_equal (json_string_value (json_object_get (json_object_get (section, "text"), "type")), "mrkdwn");
    assert_true (strlen (text) <= 3000);
    assert_non_null (strstr (text, "&lt;req-1&gt; &amp;"));
    //  The cut is at a character boundary: the text is valid UTF-8 (jansson parsed it)
    //  and ends with the ellipsis.
    assert_string_equal (text + strlen (text) - 3, "\xe2\x80\xa6");
    json_t *fields = json_object_get (json_array_get (blocks, 2), "fields");
    assert_int_equal (json_array_size (fields), 10);
    assert_string_equal (json_string_value (json_object_get (json_array_get (fields, 0), "text")),
                         "*approve_command*\nairlock approve &lt;req-1&gt;");
    assert_string_equal (json_string_value (json_object_get (json_array_get (fields, 1), "text")), "*k0*\nv");
    json_t *context = json_array_get (blocks, 3);
    assert_string_equal (json_string_value (json_object_get (context, "type")), "context");
    json_decref (root);
    free (body);
    al_notify_message_destroy (&message);
}

static void
test_hostile_strings (void **state)
{
    (void) state;
    //  A template with a line break must not make a header of its own.
    al_notify_message_t *message = al_notify_message_new ("x\r\nX-Evil: 1", "event:9");
    assert_non_null (message);
    al_notify_message_set_subject (message, "bad \xff\xfe bytes");
    al_notify_message_add_field (message, "k\xc0", "v\xed\xa0\x80");    // overlong lead, surrogate
    char *headers = al_notify_format_headers (AL_NOTIFY_WEBHOOK, message, "ntf-h");
    assert_non_null (strstr (headers, "X-Airlock-Event: x__X-Evil__1\n"));
    assert_null (strstr (headers, "\nX-Evil"));
    free (headers);
    size_t size;
    char *body = al_notify_format_body (AL_NOTIFY_CLOUDEVENTS, message, "ntf-h", &size);
    json_t *root = json_loads (body, 0, NULL);
    assert_non_null (root);                         // valid JSON, valid UTF-8
    assert_string_equal (json_string_value (json_object_get (root, "subject")), "bad \xef\xbf\xbd\xef\xbf\xbd bytes");
    assert_string_equal (json_string_value (json_object_get (root, "type")), "dev.airlock.x__X-Evil__1");
    json_decref (root);
    free (body);
    al_notify_message_destroy (&message);
    assert_null (al_notify_message_new ("", "k"));
    assert_null (al_notify_message_new ("t", ""));
    char *clean = al_notify_utf8_clean ("ok \xe2\x82\xac \xf0\x9f\x98\x80 \xe2\x82");
    assert_string_equal (clean, "ok \xe2\x82\xac \xf0\x9f\x98\x80 \xef\xbf\xbd\xef\xbf\xbd");
    free (clean);
}

//  ---- templates ---------------------------------------------------------------------------

static Airlock__Sender s_sender = AIRLOCK__SENDER__INIT;

static void
s_envelope (al_envelope_t *envelope, Airlock__Envelope__BodyCase body, const char *deployment_id,
            Airlock__Environment env, uint64_t sequence)
{
    airlock__envelope__init (envelope);
    s_sender.identity = (char *) "deploy-manager";
    s_sender.role = (char *) "deploy-manager";
    envelope->message_id = (char *) "m-1";
    envelope->deployment_id = (char *) deployment_id;
    envelope->environment = env;
    envelope->timestamp_ms = s_time;
    envelope->sender = &s_sender;
    envelope->delivery_id = sequence;
    envelope->body_case = body;
}

static void
test_template_approval (void **state)
{
    (void) state;
    Airlock__ApprovalRequest request = AIRLOCK__APPROVAL_REQUEST__INIT;
    request.request_id = (char *) "req-1";
    request.deployment_type = AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD;
    request.environment = AIRLOCK__ENVIRONMENT__ENV_PRODUCTION;
    request.service = (char *) "demo";
    request.version = (char *) "v2.0.0";
    request.artifact_sha256 = (char *) s_digest;
    request.qa_report_sha256 = (char *) s_digest;
    request.risk_level = (char *) "Medium";
    request.summary = (char *) "faster checkout";
    request.rollback_command = (char *) "airlock rollback demo";
    request.rollback_estimate_minutes = 5;
    al_envelope_t envelope;
    s_envelope (&envelope, AIRLOCK__ENVELOPE__BODY_APPROVAL_REQUEST, "req-1", AIRLOCK__ENVIRONMENT__ENV_PRODUCTION, 17);
    envelope.approval_request = &request;
    al_notify_message_t *message = al_notify_templates_map (&envelope, NULL, 1);
    assert_non_null (message);
    assert_string_equal (al_notify_message_template (message), "approval_requested");
    assert_string_equal (al_notify_message_source_key (message), "event:17");
    assert_string_equal (al_notify_message_subject (message), "[Approval required] demo v2.0.0 to production (standard)");
    const char *text = al_notify_message_text (message);
    assert_non_null (strstr (text, "Status: AWAITING HUMAN APPROVAL"));
    assert_non_null (strstr (text, "faster checkout"));
    assert_non_null (strstr (text, "- Risk level: Medium"));
    assert_non_null (strstr (text, s_digest));
    assert_non_null (strstr (text, "- Estimated rollback time: 5 minute(s)"));
    assert_non_null (strstr (text, "airlock approve req-1"));
    assert_string_equal (al_notify_message_field (message, "approve_command"), "airlock approve req-1 --key YOUR_KEY");
    assert_string_equal (al_notify_message_field (message, "artifact_sha256"), s_digest);
    assert_string_equal (al_notify_message_field (message, "requested_by"), "deploy-manager");
    assert_int_equal (al_notify_message_time_ms (message), s_time);
    al_notify_message_destroy (&message);
    //  Not for production: no approval is asked, nothing to announce.
    request.environment = AIRLOCK__ENVIRONMENT__ENV_STAGING;
    envelope.environment = AIRLOCK__ENVIRONMENT__ENV_STAGING;
    assert_null (al_notify_templates_map (&envelope, NULL, 1));
}

static void
test_template_deployment (void **state)
{
    (void) state;
    json_t *known = json_pack ("{s:s, s:s, s:[s, s]}", "service", "demo", "version", "v1.2.3", "changes",
                               "checkout is faster", "fix the login redirect");
    Airlock__DeployProgress progress = AIRLOCK__DEPLOY_PROGRESS__INIT;
    progress.step = AIRLOCK__STEP__STEP_PREFLIGHT;
    progress.outcome = AIRLOCK__OUTCOME__OUTCOME_STARTED;
    progress.journal = true;
    progress.service = (char *) "demo";
    al_envelope_t envelope;
    s_envelope (&envelope, AIRLOCK__ENVELOPE__BODY_DEPLOY_PROGRESS, "dep-1", AIRLOCK__ENVIRONMENT__ENV_STAGING, 30);
    envelope.deploy_progress = &progress;
    al_notify_message_t *message = al_notify_templates_map (&envelope, known, 1);
    assert_non_null (message);
    assert_string_equal (al_notify_message_template (message), "pre_deployment");
    assert_string_equal (al_notify_message_source_key (message), "deployment:dep-1:pre_deployment");
    assert_string_equal (al_notify_message_subject (message),
                         "[Scheduled] Deployment demo v1.2.3 to staging - 2026-01-30 10:15:00 UTC");
    assert_non_null (strstr (al_notify_message_text (message), "Changes included:\n- checkout is faster\n"
                                                               "- fix the login redirect\n"));
    assert_non_null (strstr (al_notify_message_text (message), "airlock watch dep-1"));
    al_notify_message_destroy (&message);
    //  Progress inside a step, another step, or the step's end: nothing.
    progress.journal = false;
    assert_null (al_notify_templates_map (&envelope, known, 1));
    progress.journal = true;
    progress.outcome = AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED;
    assert_null (al_notify_templates_map (&envelope, known, 1));
    progress.outcome = AIRLOCK__OUTCOME__OUTCOME_STARTED;
    progress.step = AIRLOCK__STEP__STEP_ROLLOUT;
    assert_null (al_notify_templates_map (&envelope, known, 1));

    //  Receipts: one template per outcome, once per deployment.
    Airlock__StepRecord step = AIRLOCK__STEP_RECORD__INIT;
    step.step = AIRLOCK__STEP__STEP_SOAK;
    step.outcome = AIRLOCK__OUTCOME__OUTCOME_FAILED;
    step.started_ms = 1000;
    step.ended_ms = 3500;
    step.detail = (char *) "error rate 9%";
    Airlock__StepRecord *steps [] = { &step };
    Airlock__DeployReceipt receipt = AIRLOCK__DEPLOY_RECEIPT__INIT;
    receipt.service = (char *) "demo";
    receipt.version = (char *) "v1.2.3";
    receipt.artifact_sha256 = (char *) s_digest;
    receipt.receipt_sha256 = (char *) s_digest;
    receipt.n_steps = 1;
    receipt.steps = steps;
    s_envelope (&envelope, AIRLOCK__ENVELOPE__BODY_DEPLOY_RECEIPT, "dep-1", AIRLOCK__ENVIRONMENT__ENV_STAGING, 31);
    envelope.deploy_receipt = &receipt;
    receipt.outcome = AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED;
    message = al_notify_templates_map (&envelope, known, 1);
    assert_string_equal (al_notify_message_template (message), "post_deployment");
    assert_string_equal (al_notify_message_source_key (message), "deployment:dep-1:post_deployment");
    assert_string_equal (al_notify_message_subject (message), "[Complete] Deployment demo v1.2.3 to staging");
    assert_non_null (strstr (al_notify_message_text (message), "completed successfully at 2026-01-30 10:15:00 UTC"));
    assert_non_null (strstr (al_notify_message_text (message), "Status: All systems operational\nChanges deployed:\n"
                                                               "- checkout is faster\n"));
    al_notify_message_destroy (&message);
    receipt.outcome = AIRLOCK__OUTCOME__OUTCOME_ROLLED_BACK;
    receipt.rollback_rule = (char *) "error_rate";
    receipt.previous_version = (char *) "v1.2.2";
    message = al_notify_templates_map (&envelope, known, 1);
    assert_string_equal (al_notify_message_template (message), "rollback");
    assert_string_equal (al_notify_message_source_key (message), "deployment:dep-1:rollback");
    assert_non_null (strstr (al_notify_message_text (message), "- Reason: quality rule breached: error_rate\n"));
    assert_non_null (strstr (al_notify_message_text (message), "- Previous version: v1.2.2\n"));
    assert_non_null (strstr (al_notify_message_text (message), "2. Analyze root cause"));
    assert_string_equal (al_notify_message_field (message, "rollback_rule"), "error_rate");
    al_notify_message_destroy (&message);
    receipt.outcome = AIRLOCK__OUTCOME__OUTCOME_FAILED;
    message = al_notify_templates_map (&envelope, known, 1);
    assert_string_equal (al_notify_message_template (message), "escalation");
    assert_string_equal (al_notify_message_subject (message), "[Escalation] Deployment demo v1.2.3 to staging failed");
    assert_non_null (strstr (al_notify_message_text (message), "step soak: error rate 9%"));
    assert_non_null (strstr (al_notify_message_text (message), "- soak failed (2.5 s): error rate 9%"));
    al_notify_message_destroy (&message);
    receipt.outcome = AIRLOCK__OUTCOME__OUTCOME_STARTED;
    assert_null (al_notify_templates_map (&envelope, known, 1));
    //  Without a deployment id the key falls back to the event's sequence.
    receipt.outcome = AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED;
    envelope.deployment_id = (char *) "";
    message = al_notify_templates_map (&envelope, NULL, 1);
    assert_string_equal (al_notify_message_source_key (message), "event:31");
    al_notify_message_destroy (&message);
    json_decref (known);
}

static void
test_template_trigger_and_notifications (void **state)
{
    (void) state;
    Airlock__SoakSignal sample = AIRLOCK__SOAK_SIGNAL__INIT;
    sample.service = (char *) "demo";
    sample.error_ratio = 0.25;
    sample.instances_up = 2;
    sample.instances_total = 2;
    Airlock__SoakSignal *samples [] = { &sample };
    Airlock__RollbackTrigger trigger = AIRLOCK__ROLLBACK_TRIGGER__INIT;
    trigger.service = (char *) "demo";
    trigger.rule = (char *) "error_rate";
    trigger.detail = (char *) "error rate 25% above baseline 0%";
    trigger.n_samples = 1;
    trigger.samples = samples;
    al_envelope_t envelope;
    s_envelope (&envelope, AIRLOCK__ENVELOPE__BODY_ROLLBACK_TRIGGER, "dep-2", AIRLOCK__ENVIRONMENT__ENV_STAGING, 50);
    envelope.rollback_trigger = &trigger;
    al_notify_message_t *message = al_notify_templates_map (&envelope, NULL, 1);
    assert_string_equal (al_notify_message_template (message), "rollback");
    assert_string_equal (al_notify_message_source_key (message), "event:50");
    assert_string_equal (al_notify_message_subject (message), "[Rollback started] demo in staging: error_rate");
    assert_non_null (strstr (al_notify_message_text (message), "error rate 25.00%"));
    al_notify_message_destroy (&message);

    Airlock__Notification__FieldsEntry field = AIRLOCK__NOTIFICATION__FIELDS_ENTRY__INIT;
    field.key = (char *) "service";
    field.value = (char *) "demo";
    Airlock__Notification__FieldsEntry *fields [] = { &field };
    Airlock__Notification note = AIRLOCK__NOTIFICATION__INIT;
    note.template_ = (char *) "escalation";
    note.subject = (char *) "investigate demo in staging: error_rate_investigate";
    note.text = (char *) "error rate 2% (investigate above 1%)";
    note.n_fields = 1;
    note.fields = fields;
    s_envelope (&envelope, AIRLOCK__ENVELOPE__BODY_NOTIFICATION, "dep-2", AIRLOCK__ENVIRONMENT__ENV_STAGING, 51);
    envelope.notification = &note;
    message = al_notify_templates_map (&envelope, NULL, 1);
    assert_string_equal (al_notify_message_template (message), "escalation");
    assert_string_equal (al_notify_message_source_key (message), "event:51");
    assert_string_equal (al_notify_message_subject (message),
                         "[Escalation] investigate demo in staging: error_rate_investigate");
    assert_non_null (strstr (al_notify_message_text (message), "error rate 2% (investigate above 1%)\n\nRaised by"));
    assert_string_equal (al_notify_message_service (message), "demo");
    assert_string_equal (al_notify_message_field (message, "service"), "demo");
    al_notify_message_destroy (&message);
    //  Any other template: sent as it is.
    note.template_ = (char *) "release_note";
    note.subject = (char *) "v2 is out";
    message = al_notify_templates_map (&envelope, NULL, 1);
    assert_string_equal (al_notify_message_template (message), "release_note");
    assert_string_equal (al_notify_message_subject (message), "v2 is out");
    assert_string_equal (al_notify_message_text (message), "error rate 2% (investigate above 1%)");
    al_notify_message_destroy (&message);
    //  Types the notifier does not announce.
    Airlock__DeployRequest request = AIRLOCK__DEPLOY_REQUEST__INIT;
    s_envelope (&envelope, AIRLOCK__ENVELOPE__BODY_DEPLOY_REQUEST, "dep-2", AIRLOCK__ENVIRONMENT__ENV_STAGING, 52);
    envelope.deploy_request = &request;
    assert_null (al_notify_templates_map (&envelope, NULL, 1));
}

//  ---- the outbox -------------------------------------------------------------------------

static void
s_entry (al_notify_outbox_entry_t *entry, const char *endpoint, const char *id, const char *body)
{
    entry->endpoint = endpoint;
    entry->delivery_id = id;
    entry->template_name = "rollback";
    entry->headers = "Content-Type: application/json\nX-Airlock-Delivery: x\n";
    entry->body = body;
    entry->body_size = strlen (body);
}

static void
test_outbox (void **state)
{
    (void) state;
    char dir [] = "/tmp/al-notify-outbox-XXXXXX";
    assert_non_null (mkdtemp (dir));
    char path [100];
    snprintf (path, sizeof path, "%s/outbox.db", dir);
    char error [512];
    al_notify_outbox_t *outbox = al_notify_outbox_open (path, error, sizeof error);
    if (!outbox)
        fail_msg ("%s", error);
    al_notify_outbox_entry_t entries [2];
    s_entry (&entries [0], "a", "ntf-1", "{\"n\":1}");
    s_entry (&entries [1], "b", "ntf-2", "{\"n\":2}");
    bool duplicate = true;
    assert_int_equal (al_notify_outbox_has_source (outbox, "event:1"), 0);
    assert_int_equal (al_notify_outbox_enqueue (outbox, "event:1", "rollback", entries, 2, 1000, &duplicate), 0);
    assert_false (duplicate);
    assert_int_equal (al_notify_outbox_has_source (outbox, "event:1"), 1);
    //  The same source again: nothing new.
    assert_int_equal (al_notify_outbox_enqueue (outbox, "event:1", "rollback", entries, 2, 1001, &duplicate), 0);
    assert_true (duplicate);
    s_entry (&entries [0], "a", "ntf-3", "{\"n\":3}");
    assert_int_equal (al_notify_outbox_enqueue (outbox, "event:2", "rollback", entries, 1, 1002, &duplicate), 0);
    //  A delivery id is unique: a second use fails the whole transaction (source too).
    assert_int_equal (al_notify_outbox_enqueue (outbox, "event:3", "rollback", entries, 1, 1003, &duplicate), -1);
    assert_non_null (strstr (al_notify_outbox_error (outbox), "UNIQUE"));
    assert_int_equal (al_notify_outbox_has_source (outbox, "event:3"), 0);
    //  A source with no endpoint is still recorded.
    assert_int_equal (al_notify_outbox_enqueue (outbox, "event:4", "rollback", NULL, 0, 1004, &duplicate), 0);
    assert_int_equal (al_notify_outbox_has_source (outbox, "event:4"), 1);

    al_notify_outbox_item_t item;
    uint64_t next_due = 0;
    assert_int_equal (al_notify_outbox_next (outbox, "a", 999, &item, &next_due), 0);    // not due yet
    assert_int_equal (next_due, 1000);
    assert_int_equal (al_notify_outbox_next (outbox, "a", 5000, &item, &next_due), 1);   // oldest first
    assert_string_equal (item.delivery_id, "ntf-1");
    assert_string_equal (item.endpoint, "a");
    assert_int_equal (item.body_size, 7);
    assert_memory_equal (item.body, "{\"n\":1}", 7);
    assert_int_equal (item.attempts, 0);
    assert_int_equal (item.created_ms, 1000);
    int64_t first = item.id;
    al_notify_outbox_item_clear (&item);
    assert_int_equal (al_notify_outbox_mark_retry (outbox, first, 503, "HTTP 503", 9000), 0);
    //  Waiting its backoff: the next one goes first.
    assert_int_equal (al_notify_outbox_next (outbox, "a", 5000, &item, NULL), 1);
    assert_string_equal (item.delivery_id, "ntf-3");
    assert_int_equal (al_notify_outbox_mark_failed (outbox, item.id, 404, "HTTP 404", 5001), 0);
    assert_int_equal (al_notify_outbox_mark_failed (outbox, item.id, 404, "again", 5002), 0);   // no-op
    al_notify_outbox_item_clear (&item);
    assert_int_equal (al_notify_outbox_next (outbox, "a", 5000, &item, &next_due), 0);
    assert_int_equal (next_due, 9000);
    assert_int_equal (al_notify_outbox_next (outbox, "a", 9000, &item, NULL), 1);
    assert_int_equal (item.attempts, 1);
    assert_int_equal (al_notify_outbox_mark_done (outbox, item.id, 200, 9001), 0);
    al_notify_outbox_item_clear (&item);
    assert_int_equal (al_notify_outbox_next (outbox, "a", 99999, &item, &next_due), 0);
    assert_int_equal (next_due, 0);                 // nothing pending at all

    al_notify_outbox_counts_t counts;
    assert_int_equal (al_notify_outbox_counts (outbox, "a", &counts), 0);
    assert_int_equal (counts.pending, 0);
    assert_int_equal (counts.done, 1);
    assert_int_equal (counts.failed, 1);
    assert_int_equal (counts.attempts, 3);
    assert_int_equal (counts.sources, 3);
    assert_int_equal (al_notify_outbox_counts (outbox, NULL, &counts), 0);
    assert_int_equal (counts.pending, 1);           // b's

    //  Remembered deployments and releases, merged.
    json_t *info = json_pack ("{s:s, s:s}", "service", "demo", "version", "v1");
    assert_int_equal (al_notify_outbox_remember_deployment (outbox, "dep-1", info, 1), 0);
    json_decref (info);
    info = json_pack ("{s:s}", "environment", "staging");
    assert_int_equal (al_notify_outbox_remember_deployment (outbox, "dep-1", info, 2), 0);
    json_decref (info);
    info = json_pack ("{s:[s], s:s}", "changes", "a change", "version", "ignored: the deployment's wins");
    assert_int_equal (al_notify_outbox_remember_release (outbox, "demo", "v1", info, 3), 0);
    json_decref (info);
    al_notify_outbox_destroy (&outbox);

    //  Reopened (a restart): everything is still there.
    outbox = al_notify_outbox_open (path, error, sizeof error);
    assert_non_null (outbox);
    assert_int_equal (al_notify_outbox_has_source (outbox, "event:1"), 1);
    assert_int_equal (al_notify_outbox_enqueue (outbox, "event:1", "rollback", entries, 1, 2000, &duplicate), 0);
    assert_true (duplicate);
    assert_int_equal (al_notify_outbox_next (outbox, "b", 99999, &item, NULL), 1);
    assert_string_equal (item.delivery_id, "ntf-2");
    al_notify_outbox_item_clear (&item);
    json_t *known = al_notify_outbox_recall (outbox, "dep-1");
    assert_non_null (known);
    assert_string_equal (json_string_value (json_object_get (known, "service")), "demo");
    assert_string_equal (json_string_value (json_object_get (known, "version")), "v1");
    assert_string_equal (json_string_value (json_object_get (known, "environment")), "staging");
    assert_string_equal (json_string_value (json_array_get (json_object_get (known, "changes"), 0)), "a change");
    json_decref (known);
    assert_null (al_notify_outbox_recall (outbox, "dep-none"));
    assert_null (al_notify_outbox_recall (outbox, ""));
    al_notify_outbox_destroy (&outbox);

    //  The durability it promises is in the file.
    sqlite3 *db = NULL;
    assert_int_equal (sqlite3_open (path, &db), SQLITE_OK);
    sqlite3_stmt *stmt = NULL;
    assert_int_equal (sqlite3_prepare_v2 (db, "PRAGMA journal_mode", -1, &stmt, NULL), SQLITE_OK);
    assert_int_equal (sqlite3_step (stmt), SQLITE_ROW);
    assert_string_equal ((const char *) sqlite3_column_text (stmt, 0), "wal");
    sqlite3_finalize (stmt);
    //  A newer schema is refused.
    assert_int_equal (sqlite3_exec (db, "PRAGMA user_version = 9", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close (db);
    assert_null (al_notify_outbox_open (path, error, sizeof error));
    assert_non_null (strstr (error, "schema version 9 is newer"));
    char command [200];
    snprintf (command, sizeof command, "rm -rf '%s'", dir);
    assert_int_equal (system (command), 0);
}

//  Seed 002's budget alert: a deploy whose projection reaches the alert share of its
//  environment's budget (80% by default) makes an escalation; below it, nothing.
static void
test_budget_alert (void **state)
{
    (void) state;
    char dir [] = "/tmp/al-budget-XXXXXX";
    assert_non_null (mkdtemp (dir));
    char policy_dir [600], services_path [600], command [1400];
    snprintf (policy_dir, sizeof policy_dir, "%s/policy", dir);
    snprintf (command, sizeof command, "mkdir -p '%s' && cp '%s'/policies/default/*.yaml '%s'/", policy_dir,
              getenv ("AIRLOCK_SOURCE_DIR"), policy_dir);
    assert_int_equal (system (command), 0);
    al_policy_t *policy = al_policy_load (policy_dir, NULL);
    assert_non_null (policy);
    snprintf (services_path, sizeof services_path, "%s/services.yaml", dir);
    FILE *file = fopen (services_path, "w");
    assert_non_null (file);
    fprintf (file, "version: 1\nservices:\n  demo:\n    driver: process\n    command: [x]\n"
                   "    instances: { staging: 1, production: 3 }\n    cost_per_instance_usd_month: 1400\n");
    fclose (file);
    char error [512];
    al_services_t *services = al_services_load (services_path, error, sizeof error);
    assert_non_null (services);

    //  Production: 3 x 1400 = 4200 of 5000 = 84% >= 80%: alert, once per request id.
    Airlock__ApprovalRequest request = AIRLOCK__APPROVAL_REQUEST__INIT;
    request.request_id = (char *) "req-9";
    request.service = (char *) "demo";
    request.instances = 3;
    al_envelope_t envelope;
    s_envelope (&envelope, AIRLOCK__ENVELOPE__BODY_APPROVAL_REQUEST, "req-9", AIRLOCK__ENVIRONMENT__ENV_PRODUCTION, 21);
    envelope.approval_request = &request;
    al_notify_message_t *message = al_notify_templates_budget_alert (&envelope, policy, services, 1);
    assert_non_null (message);
    assert_string_equal (al_notify_message_template (message), "escalation");
    assert_string_equal (al_notify_message_source_key (message), "budget:req-9");
    assert_string_equal (al_notify_message_subject (message), "[Budget alert] demo in production: 84% of the monthly budget");
    assert_non_null (strstr (al_notify_message_text (message), "4200.00 USD/month for 3 instance(s) at 1400.00, 84.0% of "
                                                                 "the 5000.00 budget (alert at 80%)"));
    assert_string_equal (al_notify_message_field (message, "projected_usd_month"), "4200.00");
    al_notify_message_destroy (&message);
    //  Two instances: 2800, 56%: no alert.
    request.instances = 2;
    assert_null (al_notify_templates_budget_alert (&envelope, policy, services, 1));
    //  Staging DeployRequest, 1 x 1400 of 500: over budget, and the text says pre-flight refuses it.
    Airlock__DeployRequest deploy = AIRLOCK__DEPLOY_REQUEST__INIT;
    deploy.service = (char *) "demo";
    s_envelope (&envelope, AIRLOCK__ENVELOPE__BODY_DEPLOY_REQUEST, "dep-3", AIRLOCK__ENVIRONMENT__ENV_STAGING, 22);
    envelope.deploy_request = &deploy;
    message = al_notify_templates_budget_alert (&envelope, policy, services, 1);
    assert_non_null (message);
    assert_string_equal (al_notify_message_source_key (message), "budget:dep-3");
    assert_non_null (strstr (al_notify_message_text (message), "Pre-flight will refuse this deploy"));
    al_notify_message_destroy (&message);
    //  Other events, unknown services, no policy: nothing.
    deploy.service = (char *) "other";
    assert_null (al_notify_templates_budget_alert (&envelope, policy, services, 1));
    assert_null (al_notify_templates_budget_alert (&envelope, NULL, services, 1));
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_DEPLOY_RECEIPT;
    assert_null (al_notify_templates_budget_alert (&envelope, policy, services, 1));
    al_services_destroy (&services);
    al_policy_destroy (&policy);
    snprintf (command, sizeof command, "rm -rf '%s'", dir);
    assert_int_equal (system (command), 0);
}

int
main (void)
{
    assert_true (sodium_init () >= 0);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_delivery_id_and_time),
        cmocka_unit_test (test_hmac_verified_independently),
        cmocka_unit_test (test_webhook_body),
        cmocka_unit_test (test_cloudevents_body),
        cmocka_unit_test (test_slack_body),
        cmocka_unit_test (test_hostile_strings),
        cmocka_unit_test (test_template_approval),
        cmocka_unit_test (test_template_deployment),
        cmocka_unit_test (test_template_trigger_and_notifications),
        cmocka_unit_test (test_outbox),
        cmocka_unit_test (test_budget_alert),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
