/*  test_notifier.c: the notifier agent end to end.

    A real broker (broker_under_test), the notifier run in-process (al_notifier_run in a
    thread, stopped with al_agent_set_interrupted), raw clients playing orchestrator,
    deploy-manager and monitor, and two local receivers: A takes the slack and webhook
    endpoints, B the cloudevents one. The test knows every delivery id it should see:
    they are derived from the event's source key (its audit sequence, from the broker's
    Ack, or "deployment:<id>:<template>") and the endpoint name. Shown:
      - every event the notifier announces arrives exactly once at each endpoint, with a
        valid HMAC (checked with OpenSSL) and valid CloudEvents attributes; events it
        does not announce, and a second "preflight started" of a deployment, make
        nothing; what a DeployProgress lacks (the version, the change list) is learned
        from the DeployRequest and ReleaseCandidate events before it;
      - endpoints down (A answering 503, B not listening) for a while, then A back while
        B is still down, then B: still exactly once everywhere, after retries with the
        same delivery id and body;
      - the notifier stopped with deliveries still pending and events sent while it is
        away, then started again: nothing lost, nothing twice;
      - its outbox locked by another writer for longer than it waits: events are held,
        the delivery is not acknowledged, and all of it goes out once the lock is gone.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include "receiver.h"
#include "../broker/harness.h"
#include "agents/al_agent.h"
#include "agents/al_notifier.h"
#include "agents/al_notify_format.h"
#include "agents/al_notify_outbox.h"
#include "base/al_config.h"
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define S_HOOK_SECRET "hook-secret-for-tests"
#define S_BUS_SECRET "bus-secret-for-tests"
#define S_MAX_EXPECTED 64
#define S_WAIT_MS 30000

static const char *s_digest = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

//  The three endpoints: name, receiver (0 = A, 1 = B), path.
static const struct {
    const char *name;
    int receiver;
    const char *path;
} s_endpoints [] = {
    { "ops-slack", 0, "/slack" }, { "audit-sink", 0, "/hook" }, { "bus", 1, "/events" }
};
#define S_ENDPOINTS 3

typedef struct {
    harness_t *harness;
    al_config_t *config;
    receiver_t *receivers [2];
    zsock_t *orchestrator;
    zsock_t *deployer;
    zsock_t *monitor;
    pthread_t thread;
    bool running;
    int rc;
    char error [2048];
    int counter;
    int warm_ups;
    //  Source keys of the notifications the test expects (warm-ups are separate).
    char expected [S_MAX_EXPECTED][AL_NOTIFY_SOURCE_KEY_MAX];
    size_t expected_count;
} s_fixture_t;

static void *
s_run (void *arg)
{
    s_fixture_t *f = (s_fixture_t *) arg;
    f->rc = al_notifier_run (f->config, f->error, sizeof f->error);
    if (f->rc != 0)
        fprintf (stderr, "notifier: %s\n", f->error);
    return NULL;
}

static void
s_notifier_start (s_fixture_t *f)
{
    assert_false (f->running);
    long registered = harness_count_rows (f->harness, "Register", "notifier", NULL);
    al_agent_set_interrupted (false);
    assert_int_equal (pthread_create (&f->thread, NULL, s_run, f), 0);
    f->running = true;
    assert_true (harness_wait_rows (f->harness, "Register", "notifier", NULL, registered + 1, 20000) > registered);
}

static void
s_notifier_stop (s_fixture_t *f)
{
    if (!f->running)
        return;
    al_agent_set_interrupted (true);
    pthread_join (f->thread, NULL);
    al_agent_set_interrupted (false);
    f->running = false;
    assert_int_equal (f->rc, 0);
}

static zsock_t *
s_client (s_fixture_t *f, const char *identity)
{
    zsock_t *client = harness_client (f->harness, identity, NULL);
    assert_non_null (client);
    char id [32];
    snprintf (id, sizeof id, "reg-%s", identity);
    harness_register (client, id, false);
    al_envelope_t *answer = harness_recv (client, 10000);
    assert_non_null (answer);
    assert_int_equal (answer->body_case, AIRLOCK__ENVELOPE__BODY_ACK);
    al_codec_free (&answer);
    return client;
}

//  Send and return the audit sequence of its row (the broker must accept it).
static uint64_t
s_send (s_fixture_t *f, zsock_t *client, al_envelope_t *envelope)
{
    char id [32];
    snprintf (id, sizeof id, "m-%d", ++f->counter);
    envelope->message_id = id;
    assert_int_equal (harness_send (client, envelope), 0);
    for (int tries = 0; tries < 50; tries++) {
        al_envelope_t *answer = harness_recv (client, 10000);
        assert_non_null (answer);
        if (answer->body_case == AIRLOCK__ENVELOPE__BODY_DENIED && strcmp (answer->denied->denied_message_id, id) == 0)
            fail_msg ("denied: %s", answer->denied->reason);
        if (answer->body_case == AIRLOCK__ENVELOPE__BODY_ACK && strcmp (answer->ack->acked_message_id, id) == 0) {
            uint64_t sequence = answer->ack->audit_sequence;
            al_codec_free (&answer);
            return sequence;
        }
        al_codec_free (&answer);
    }
    fail_msg ("no answer to %s", id);
    return 0;
}

static void
s_expect (s_fixture_t *f, const char *format, ...)
{
    assert_true (f->expected_count < S_MAX_EXPECTED);
    va_list args;
    va_start (args, format);
    vsnprintf (f->expected [f->expected_count++], AL_NOTIFY_SOURCE_KEY_MAX, format, args);
    va_end (args);
}

static void
s_expect_event (s_fixture_t *f, uint64_t sequence)
{
    s_expect (f, "event:%llu", (unsigned long long) sequence);
}

//  ---- what the test clients publish --------------------------------------------------------

static uint64_t
s_notification (s_fixture_t *f, zsock_t *client, const char *template_name, const char *deployment_id,
                Airlock__Environment env)
{
    Airlock__Notification note = AIRLOCK__NOTIFICATION__INIT;
    char subject [100];
    snprintf (subject, sizeof subject, "%s number %d", template_name, f->counter + 1);
    note.template_ = (char *) template_name;
    note.subject = subject;
    note.text = (char *) "something a human should hear about";
    al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
    envelope.deployment_id = (char *) deployment_id;
    envelope.environment = env;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_NOTIFICATION;
    envelope.notification = &note;
    return s_send (f, client, &envelope);
}

static uint64_t
s_progress (s_fixture_t *f, const char *deployment_id, Airlock__Step step, Airlock__Outcome outcome, bool journal)
{
    Airlock__DeployProgress progress = AIRLOCK__DEPLOY_PROGRESS__INIT;
    progress.step = step;
    progress.outcome = outcome;
    progress.journal = journal;
    progress.service = (char *) "demo";
    al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
    envelope.deployment_id = (char *) deployment_id;
    envelope.environment = AIRLOCK__ENVIRONMENT__ENV_STAGING;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_DEPLOY_PROGRESS;
    envelope.deploy_progress = &progress;
    return s_send (f, f->deployer, &envelope);
}

static uint64_t
s_receipt (s_fixture_t *f, const char *deployment_id, Airlock__Outcome outcome)
{
    Airlock__StepRecord step = AIRLOCK__STEP_RECORD__INIT;
    step.step = AIRLOCK__STEP__STEP_SOAK;
    step.outcome = outcome == AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED? AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED
                                                                : AIRLOCK__OUTCOME__OUTCOME_FAILED;
    step.started_ms = 1000;
    step.ended_ms = 2000;
    Airlock__StepRecord *steps [] = { &step };
    Airlock__DeployReceipt receipt = AIRLOCK__DEPLOY_RECEIPT__INIT;
    receipt.service = (char *) "demo";
    receipt.version = (char *) "v1.2.3";
    receipt.artifact_sha256 = (char *) s_digest;
    receipt.receipt_sha256 = (char *) s_digest;
    receipt.outcome = outcome;
    receipt.n_steps = 1;
    receipt.steps = steps;
    if (outcome == AIRLOCK__OUTCOME__OUTCOME_ROLLED_BACK) {
        receipt.rollback_rule = (char *) "error_rate";
        receipt.previous_version = (char *) "v1.2.2";
    }
    al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
    envelope.deployment_id = (char *) deployment_id;
    envelope.environment = AIRLOCK__ENVIRONMENT__ENV_STAGING;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_DEPLOY_RECEIPT;
    envelope.deploy_receipt = &receipt;
    return s_send (f, f->deployer, &envelope);
}

static uint64_t
s_approval_request (s_fixture_t *f, const char *request_id)
{
    Airlock__ApprovalRequest request = AIRLOCK__APPROVAL_REQUEST__INIT;
    request.request_id = (char *) request_id;
    request.deployment_type = AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD;
    request.environment = AIRLOCK__ENVIRONMENT__ENV_PRODUCTION;
    request.service = (char *) "demo";
    request.version = (char *) "v1.2.3";
    request.artifact_uri = (char *) "file:///artifacts/demo-v1.2.3";
    request.artifact_sha256 = (char *) s_digest;
    request.qa_report_sha256 = (char *) s_digest;
    request.summary = (char *) "faster checkout";
    request.risk_level = (char *) "Low";
    request.strategy = AIRLOCK__STRATEGY__STRATEGY_ROLLING;
    request.instances = 2;
    al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
    envelope.deployment_id = (char *) request_id;
    envelope.environment = AIRLOCK__ENVIRONMENT__ENV_PRODUCTION;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_APPROVAL_REQUEST;
    envelope.approval_request = &request;
    return s_send (f, f->orchestrator, &envelope);
}

//  ---- checks -------------------------------------------------------------------------------

static void
s_assert_hmac (const receiver_request_t *request, const char *secret)
{
    char *text = NULL;
    assert_true (asprintf (&text, "%s.%s", request->timestamp, request->body) > 0);
    unsigned char mac [EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    HMAC (EVP_sha256 (), secret, (int) strlen (secret), (const unsigned char *) text, strlen (text), mac, &size);
    free (text);
    char expected [80] = "sha256=";
    for (unsigned i = 0; i < size; i++)
        snprintf (expected + 7 + 2 * i, 3, "%02x", mac [i]);
    if (strcmp (request->signature, expected) != 0)
        fail_msg ("%s: bad signature '%s' (expected %s)", request->delivery, request->signature, expected);
}

static void
s_assert_format (const receiver_request_t *request, const char *path)
{
    json_t *root = json_loads (request->body, 0, NULL);
    if (!root)
        fail_msg ("%s: not JSON: %s", path, request->body);
    if (strcmp (path, "/slack") == 0) {
        assert_string_equal (request->content_type, "application/json; charset=utf-8");
        assert_true (json_is_string (json_object_get (root, "text")));
        assert_true (json_array_size (json_object_get (root, "blocks")) >= 2);
        assert_string_equal (request->signature, "");
    }
    else
    if (strcmp (path, "/hook") == 0) {
        assert_string_equal (request->content_type, "application/json; charset=utf-8");
        assert_string_equal (json_string_value (json_object_get (root, "id")), request->delivery);
        assert_string_equal (json_string_value (json_object_get (root, "type")), request->event);
        s_assert_hmac (request, S_HOOK_SECRET);
    }
    else {
        assert_string_equal (request->content_type, "application/cloudevents+json; charset=utf-8");
        assert_string_equal (json_string_value (json_object_get (root, "specversion")), "1.0");
        assert_string_equal (json_string_value (json_object_get (root, "id")), request->delivery);
        assert_string_equal (json_string_value (json_object_get (root, "source")), "airlock");
        char type [200];
        snprintf (type, sizeof type, "dev.airlock.%s", request->event);
        assert_string_equal (json_string_value (json_object_get (root, "type")), type);
        const char *time_text = json_string_value (json_object_get (root, "time"));
        assert_true (time_text && strlen (time_text) == 24 && time_text [10] == 'T' && time_text [23] == 'Z');
        assert_string_equal (json_string_value (json_object_get (root, "datacontenttype")), "application/json");
        assert_true (json_is_object (json_object_get (root, "data")));
        assert_true (json_is_string (json_object_get (root, "subject")));
        s_assert_hmac (request, S_BUS_SECRET);
    }
    json_decref (root);
}

//  Is delivery id that of one of the source keys (expected or warm-up)?
static bool
s_is_expected (s_fixture_t *f, const char *endpoint, const char *delivery)
{
    char id [AL_NOTIFY_DELIVERY_ID_SIZE];
    for (size_t i = 0; i < f->expected_count; i++) {
        al_notify_format_delivery_id (f->expected [i], endpoint, id);
        if (strcmp (id, delivery) == 0)
            return true;
    }
    for (int n = 1; n <= f->warm_ups; n++) {
        char key [64];
        snprintf (key, sizeof key, "deployment:warm-%d:pre_deployment", n);
        al_notify_format_delivery_id (key, endpoint, id);
        if (strcmp (id, delivery) == 0)
            return true;
    }
    return false;
}

//  Accepted requests for delivery at receiver/path.
static size_t
s_accepted (s_fixture_t *f, int receiver, const char *path, const char *delivery)
{
    size_t count = 0;
    for (size_t i = 0; i < receiver_count (f->receivers [receiver]); i++) {
        receiver_request_t request;
        receiver_get (f->receivers [receiver], i, &request);
        if (strcmp (request.path, path) == 0 && strcmp (request.delivery, delivery) == 0
        &&  request.status >= 200 && request.status < 300)
            count++;
        receiver_request_clear (&request);
    }
    return count;
}

//  Wait until every expected notification was accepted at every endpoint, then check:
//  each exactly once, nothing unexpected, every request well formed and signed.
static void
s_assert_exactly_once (s_fixture_t *f)
{
    char id [AL_NOTIFY_DELIVERY_ID_SIZE];
    for (size_t e = 0; e < S_ENDPOINTS; e++)
        for (size_t i = 0; i < f->expected_count; i++) {
            al_notify_format_delivery_id (f->expected [i], s_endpoints [e].name, id);
            int waited = 0;
            while (s_accepted (f, s_endpoints [e].receiver, s_endpoints [e].path, id) == 0 && waited < S_WAIT_MS) {
                zclock_sleep (50);
                waited += 50;
            }
            if (s_accepted (f, s_endpoints [e].receiver, s_endpoints [e].path, id) == 0)
                fail_msg ("%s never got %s (%s)", s_endpoints [e].name, f->expected [i], id);
        }
    //  The outbox has nothing left to send: no late duplicate can still come.
    char path [400], error [512];
    snprintf (path, sizeof path, "%s/notifier/outbox.db", f->harness->dir);
    al_notify_outbox_t *outbox = al_notify_outbox_open (path, error, sizeof error);
    assert_non_null (outbox);
    al_notify_outbox_counts_t counts;
    for (int waited = 0; waited < S_WAIT_MS; waited += 50) {
        assert_int_equal (al_notify_outbox_counts (outbox, NULL, &counts), 0);
        if (counts.pending == 0)
            break;
        zclock_sleep (50);
    }
    assert_int_equal (counts.pending, 0);
    assert_int_equal (counts.failed, 0);
    al_notify_outbox_destroy (&outbox);
    for (int r = 0; r < 2; r++)
        for (size_t i = 0; i < receiver_count (f->receivers [r]); i++) {
            receiver_request_t request;
            receiver_get (f->receivers [r], i, &request);
            const char *endpoint = NULL;
            for (size_t e = 0; e < S_ENDPOINTS; e++)
                if (s_endpoints [e].receiver == r && strcmp (s_endpoints [e].path, request.path) == 0)
                    endpoint = s_endpoints [e].name;
            assert_non_null (endpoint);
            if (!s_is_expected (f, endpoint, request.delivery))
                fail_msg ("%s got an unexpected delivery %s: %s", endpoint, request.delivery, request.body);
            size_t accepted = s_accepted (f, r, request.path, request.delivery);
            if (accepted != 1)
                fail_msg ("%s got %s %zu times", endpoint, request.delivery, accepted);
            s_assert_format (&request, request.path);
            receiver_request_clear (&request);
        }
}

//  The body of the accepted webhook delivery for source key (caller frees).
static char *
s_webhook_body (s_fixture_t *f, const char *key)
{
    char id [AL_NOTIFY_DELIVERY_ID_SIZE];
    al_notify_format_delivery_id (key, "audit-sink", id);
    for (size_t i = 0; i < receiver_count (f->receivers [0]); i++) {
        receiver_request_t request;
        receiver_get (f->receivers [0], i, &request);
        if (strcmp (request.delivery, id) == 0 && request.status == 200)
            return request.body;
        receiver_request_clear (&request);
    }
    fail_msg ("no webhook delivery for %s", key);
    return NULL;
}

//  Wait until the notifier's outbox has nothing pending.
static void
s_wait_outbox_empty (s_fixture_t *f)
{
    char path [400], error [512];
    snprintf (path, sizeof path, "%s/notifier/outbox.db", f->harness->dir);
    al_notify_outbox_t *outbox = al_notify_outbox_open (path, error, sizeof error);
    assert_non_null (outbox);
    al_notify_outbox_counts_t counts;
    for (int waited = 0; waited < S_WAIT_MS; waited += 25) {
        assert_int_equal (al_notify_outbox_counts (outbox, NULL, &counts), 0);
        if (counts.pending == 0)
            break;
        zclock_sleep (25);
    }
    assert_int_equal (counts.pending, 0);
    al_notify_outbox_destroy (&outbox);
}

//  PUB subscriptions take effect asynchronously: announce deployments warm-1, warm-2, ...
//  until one reaches the webhook, so that later events are not published too early.
static void
s_warm_up (s_fixture_t *f)
{
    for (int attempt = 0; attempt < 60; attempt++) {
        char deployment [32], key [64], id [AL_NOTIFY_DELIVERY_ID_SIZE];
        snprintf (deployment, sizeof deployment, "warm-%d", ++f->warm_ups);
        s_progress (f, deployment, AIRLOCK__STEP__STEP_PREFLIGHT, AIRLOCK__OUTCOME__OUTCOME_STARTED, true);
        snprintf (key, sizeof key, "deployment:%s:pre_deployment", deployment);
        al_notify_format_delivery_id (key, "audit-sink", id);
        for (int waited = 0; waited < 500; waited += 25) {
            if (s_accepted (f, 0, "/hook", id)) {
                s_wait_outbox_empty (f);
                return;
            }
            zclock_sleep (25);
        }
    }
    fail_msg ("the notifier never announced a deployment: is it subscribed?");
}

//  Warm-ups that reached the webhook (those published before the subscription did not).
static size_t
s_warm_delivered (s_fixture_t *f)
{
    size_t count = 0;
    for (int n = 1; n <= f->warm_ups; n++) {
        char key [64], id [AL_NOTIFY_DELIVERY_ID_SIZE];
        snprintf (key, sizeof key, "deployment:warm-%d:pre_deployment", n);
        al_notify_format_delivery_id (key, "audit-sink", id);
        count += s_accepted (f, 0, "/hook", id) > 0;
    }
    return count;
}

//  ---- fixture ------------------------------------------------------------------------------

static int
s_setup (void **state)
{
    s_fixture_t *f = calloc (1, sizeof *f);
    assert_non_null (f);
    static const harness_identity_t identities [] = {
        { "orchestrator", "orchestrator" }, { "deploy-manager", "deploy-manager" }, { "monitor", "monitor" },
        { "notifier", "notifier" },
    };
    f->harness = harness_new (NULL, identities, sizeof identities / sizeof identities [0]);
    assert_non_null (f->harness);
    harness_t *h = f->harness;
    char path [600];
    snprintf (path, sizeof path, "%s/keys/notifier.cert", h->dir);
    assert_int_equal (zcert_save ((zcert_t *) zhashx_lookup (h->certs, "notifier"), path), 0);
    snprintf (path, sizeof path, "%s/keys/bus.key", h->dir);
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fprintf (file, "%s\n", S_BUS_SECRET);
    fclose (file);
    setenv ("AL_TEST_NOTIFIER_SECRET", S_HOOK_SECRET, 1);
    f->receivers [0] = receiver_new (0);
    f->receivers [1] = receiver_new (0);
    assert_non_null (f->receivers [0]);
    assert_non_null (f->receivers [1]);
    char slack [200], hook [200], events [200];
    receiver_url (f->receivers [0], "/slack", slack, sizeof slack);
    receiver_url (f->receivers [0], "/hook", hook, sizeof hook);
    receiver_url (f->receivers [1], "/events", events, sizeof events);
    snprintf (path, sizeof path, "%s/notifications.yaml", h->dir);
    file = fopen (path, "w");
    assert_non_null (file);
    fprintf (file, "version: 1\nendpoints:\n"
                   "  - { name: ops-slack, kind: slack, url: \"%s\" }\n"
                   "  - { name: audit-sink, kind: webhook, url: \"%s\", secret: { env: AL_TEST_NOTIFIER_SECRET } }\n"
                   "  - { name: bus, kind: cloudevents, url: \"%s\", secret: { file: keys/bus.key } }\n"
                   "retry: { initial_ms: 50, max_ms: 300 }\n", slack, hook, events);
    fclose (file);
    assert_int_equal (harness_broker_start (h), 0);
    f->orchestrator = s_client (f, "orchestrator");
    f->deployer = s_client (f, "deploy-manager");
    f->monitor = s_client (f, "monitor");
    char error [512];
    f->config = al_config_load (h->config_path, error, sizeof error);
    if (!f->config)
        fail_msg ("%s", error);
    s_notifier_start (f);
    s_warm_up (f);
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    s_fixture_t *f = *state;
    s_notifier_stop (f);
    zsock_destroy (&f->orchestrator);
    zsock_destroy (&f->deployer);
    zsock_destroy (&f->monitor);
    al_config_destroy (&f->config);
    receiver_destroy (&f->receivers [0]);
    receiver_destroy (&f->receivers [1]);
    harness_destroy (&f->harness);
    unsetenv ("AL_TEST_NOTIFIER_SECRET");
    free (f);
    return 0;
}

//  ---- tests --------------------------------------------------------------------------------

static void
test_every_event_once (void **state)
{
    s_fixture_t *f = *state;
    //  What deployments are: learned, not announced.
    Airlock__ReleaseCandidate candidate = AIRLOCK__RELEASE_CANDIDATE__INIT;
    char *changes [] = { (char *) "checkout is faster", (char *) "fix the login redirect" };
    candidate.service = (char *) "demo";
    candidate.version = (char *) "v1.2.3";
    candidate.artifact_uri = (char *) "file:///artifacts/demo-v1.2.3";
    candidate.artifact_sha256 = (char *) s_digest;
    candidate.deployment_type = AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD;
    candidate.n_changes = 2;
    candidate.changes = changes;
    al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
    envelope.environment = AIRLOCK__ENVIRONMENT__ENV_STAGING;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_RELEASE_CANDIDATE;
    envelope.release_candidate = &candidate;
    s_send (f, f->orchestrator, &envelope);
    Airlock__DeployRequest request = AIRLOCK__DEPLOY_REQUEST__INIT;
    request.service = (char *) "demo";
    request.version = (char *) "v1.2.3";
    request.artifact_uri = (char *) "file:///artifacts/demo-v1.2.3";
    request.artifact_sha256 = (char *) s_digest;
    request.deployment_type = AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD;
    airlock__envelope__init (&envelope);
    envelope.deployment_id = (char *) "dep-1";
    envelope.environment = AIRLOCK__ENVIRONMENT__ENV_STAGING;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_DEPLOY_REQUEST;
    envelope.deploy_request = &request;
    s_send (f, f->orchestrator, &envelope);

    //  Deliveries (and their PUB copies): one notification each.
    s_expect_event (f, s_approval_request (f, "req-1"));
    s_expect_event (f, s_notification (f, f->monitor, "escalation", "dep-1", AIRLOCK__ENVIRONMENT__ENV_STAGING));
    s_expect_event (f, s_notification (f, f->orchestrator, "release_note", "", AIRLOCK__ENVIRONMENT__ENV_UNSPECIFIED));
    //  Deployment events.
    s_progress (f, "dep-1", AIRLOCK__STEP__STEP_PREFLIGHT, AIRLOCK__OUTCOME__OUTCOME_STARTED, true);
    s_expect (f, "deployment:dep-1:pre_deployment");
    s_progress (f, "dep-1", AIRLOCK__STEP__STEP_ROLLOUT, AIRLOCK__OUTCOME__OUTCOME_STARTED, false);
    s_progress (f, "dep-1", AIRLOCK__STEP__STEP_PREFLIGHT, AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED, true);
    s_progress (f, "dep-1", AIRLOCK__STEP__STEP_PREFLIGHT, AIRLOCK__OUTCOME__OUTCOME_STARTED, true);    // again
    s_receipt (f, "dep-1", AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED);
    s_expect (f, "deployment:dep-1:post_deployment");
    Airlock__RollbackTrigger trigger = AIRLOCK__ROLLBACK_TRIGGER__INIT;
    trigger.service = (char *) "demo";
    trigger.rule = (char *) "error_rate";
    trigger.detail = (char *) "error rate 30% above baseline 0%";
    airlock__envelope__init (&envelope);
    envelope.deployment_id = (char *) "dep-2";
    envelope.environment = AIRLOCK__ENVIRONMENT__ENV_STAGING;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_ROLLBACK_TRIGGER;
    envelope.rollback_trigger = &trigger;
    s_expect_event (f, s_send (f, f->monitor, &envelope));
    s_receipt (f, "dep-2", AIRLOCK__OUTCOME__OUTCOME_ROLLED_BACK);
    s_expect (f, "deployment:dep-2:rollback");
    s_receipt (f, "dep-3", AIRLOCK__OUTCOME__OUTCOME_FAILED);
    s_expect (f, "deployment:dep-3:escalation");

    s_assert_exactly_once (f);
    //  Worded from what was learned before.
    char *body = s_webhook_body (f, "deployment:dep-1:pre_deployment");
    assert_non_null (strstr (body, "Deployment demo v1.2.3 to staging"));
    assert_non_null (strstr (body, "- checkout is faster\\n- fix the login redirect"));
    free (body);
    body = s_webhook_body (f, f->expected [0]);          // the approval request
    assert_non_null (strstr (body, "\"type\":\"approval_requested\""));
    assert_non_null (strstr (body, "airlock approve req-1"));
    free (body);
    body = s_webhook_body (f, "deployment:dep-2:rollback");
    assert_non_null (strstr (body, "quality rule breached: error_rate"));
    free (body);
    //  The deliveries were acknowledged once queued.
    assert_true (harness_wait_delivery_acks (f->harness, "notifier", 3, 10000) >= 3);
}

static void
test_endpoints_down_then_up (void **state)
{
    s_fixture_t *f = *state;
    size_t accepted_before = receiver_accepted (f->receivers [0], "/hook");
    receiver_set_status (f->receivers [0], 503);
    assert_int_equal (receiver_stop (f->receivers [1]), 0);
    s_expect_event (f, s_notification (f, f->monitor, "escalation", "dep-9", AIRLOCK__ENVIRONMENT__ENV_STAGING));
    s_expect_event (f, s_notification (f, f->orchestrator, "release_note", "", AIRLOCK__ENVIRONMENT__ENV_UNSPECIFIED));
    s_expect_event (f, s_notification (f, f->orchestrator, "release_note", "", AIRLOCK__ENVIRONMENT__ENV_UNSPECIFIED));
    s_progress (f, "dep-9", AIRLOCK__STEP__STEP_PREFLIGHT, AIRLOCK__OUTCOME__OUTCOME_STARTED, true);
    s_expect (f, "deployment:dep-9:pre_deployment");
    s_receipt (f, "dep-9", AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED);
    s_expect (f, "deployment:dep-9:post_deployment");
    //  A turns them away for a while.
    for (int waited = 0; waited < S_WAIT_MS
         && receiver_requests (f->receivers [0], "/hook") < accepted_before + 3; waited += 50)
        zclock_sleep (50);
    assert_true (receiver_requests (f->receivers [0], "/hook") >= accepted_before + 3);
    assert_int_equal (receiver_accepted (f->receivers [0], "/hook"), accepted_before);  // the warm-up only
    //  A is back, B is still down: A gets everything regardless of B.
    receiver_set_status (f->receivers [0], 200);
    char id [AL_NOTIFY_DELIVERY_ID_SIZE];
    for (size_t i = 0; i < f->expected_count; i++) {
        al_notify_format_delivery_id (f->expected [i], "audit-sink", id);
        for (int waited = 0; waited < S_WAIT_MS && !s_accepted (f, 0, "/hook", id); waited += 50)
            zclock_sleep (50);
        assert_int_equal (s_accepted (f, 0, "/hook", id), 1);
    }
    char path [400], error [512];
    snprintf (path, sizeof path, "%s/notifier/outbox.db", f->harness->dir);
    al_notify_outbox_t *outbox = al_notify_outbox_open (path, error, sizeof error);
    assert_non_null (outbox);
    al_notify_outbox_counts_t counts;
    assert_int_equal (al_notify_outbox_counts (outbox, "bus", &counts), 0);
    assert_int_equal (counts.pending, 5);
    al_notify_outbox_destroy (&outbox);
    //  B comes back.
    assert_int_equal (receiver_start (f->receivers [1]), 0);
    s_assert_exactly_once (f);
    //  What A turned away came again with the same delivery id and the same body.
    size_t refused = 0;
    for (size_t i = 0; i < receiver_count (f->receivers [0]); i++) {
        receiver_request_t request;
        receiver_get (f->receivers [0], i, &request);
        if (request.status == 503) {
            refused++;
            for (size_t j = 0; j < receiver_count (f->receivers [0]); j++) {
                receiver_request_t later;
                receiver_get (f->receivers [0], j, &later);
                if (later.status == 200 && strcmp (later.delivery, request.delivery) == 0)
                    assert_string_equal (later.body, request.body);
                receiver_request_clear (&later);
            }
        }
        receiver_request_clear (&request);
    }
    assert_true (refused >= 3);
}

static void
test_restart_loses_nothing (void **state)
{
    s_fixture_t *f = *state;
    //  Nothing can be delivered for now.
    receiver_set_status (f->receivers [0], 503);
    assert_int_equal (receiver_stop (f->receivers [1]), 0);
    s_expect_event (f, s_notification (f, f->monitor, "escalation", "dep-r1", AIRLOCK__ENVIRONMENT__ENV_STAGING));
    s_expect_event (f, s_notification (f, f->orchestrator, "release_note", "", AIRLOCK__ENVIRONMENT__ENV_UNSPECIFIED));
    s_progress (f, "dep-r1", AIRLOCK__STEP__STEP_PREFLIGHT, AIRLOCK__OUTCOME__OUTCOME_STARTED, true);
    s_expect (f, "deployment:dep-r1:pre_deployment");
    s_receipt (f, "dep-r1", AIRLOCK__OUTCOME__OUTCOME_ROLLED_BACK);
    s_expect (f, "deployment:dep-r1:rollback");
    char path [400], error [512];
    snprintf (path, sizeof path, "%s/notifier/outbox.db", f->harness->dir);
    al_notify_outbox_t *outbox = al_notify_outbox_open (path, error, sizeof error);
    assert_non_null (outbox);
    al_notify_outbox_counts_t counts;
    for (int waited = 0; waited < S_WAIT_MS; waited += 50) {
        assert_int_equal (al_notify_outbox_counts (outbox, "audit-sink", &counts), 0);
        if (counts.pending == 4)
            break;
        zclock_sleep (50);
    }
    assert_int_equal (counts.pending, 4);
    //  Stopped mid-way: four notifications per endpoint still to send.
    s_notifier_stop (f);
    //  While it is away, deliveries wait for it in the broker.
    s_expect_event (f, s_notification (f, f->monitor, "escalation", "dep-r2", AIRLOCK__ENVIRONMENT__ENV_STAGING));
    s_expect_event (f, s_notification (f, f->orchestrator, "release_note", "", AIRLOCK__ENVIRONMENT__ENV_UNSPECIFIED));
    s_expect_event (f, s_approval_request (f, "req-r2"));
    assert_int_equal (al_notify_outbox_counts (outbox, "audit-sink", &counts), 0);
    assert_int_equal (counts.pending, 4);
    //  Back, with the endpoints up again.
    receiver_set_status (f->receivers [0], 200);
    assert_int_equal (receiver_start (f->receivers [1]), 0);
    s_notifier_start (f);
    s_warm_up (f);
    //  The same deployment starting again after the restart is not announced twice.
    s_progress (f, "dep-r1", AIRLOCK__STEP__STEP_PREFLIGHT, AIRLOCK__OUTCOME__OUTCOME_STARTED, true);
    s_assert_exactly_once (f);
    assert_int_equal (al_notify_outbox_counts (outbox, NULL, &counts), 0);
    assert_int_equal (counts.pending, 0);
    assert_int_equal (counts.done, 3 * (f->expected_count + s_warm_delivered (f)));
    al_notify_outbox_destroy (&outbox);
}

static void
test_outbox_busy_holds_events (void **state)
{
    s_fixture_t *f = *state;
    //  Another writer holds the outbox longer than the notifier waits for it (5 s).
    char path [400];
    snprintf (path, sizeof path, "%s/notifier/outbox.db", f->harness->dir);
    sqlite3 *lock = NULL;
    assert_int_equal (sqlite3_open (path, &lock), SQLITE_OK);
    assert_int_equal (sqlite3_exec (lock, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    long acks = harness_count_delivery_acks (f->harness, "notifier");
    s_expect_event (f, s_notification (f, f->monitor, "escalation", "dep-b", AIRLOCK__ENVIRONMENT__ENV_STAGING));
    s_receipt (f, "dep-b", AIRLOCK__OUTCOME__OUTCOME_FAILED);
    s_expect (f, "deployment:dep-b:escalation");
    zclock_sleep (7000);
    //  Not stored, so not acknowledged: the broker still holds the delivery.
    assert_int_equal (harness_count_delivery_acks (f->harness, "notifier"), acks);
    assert_int_equal (sqlite3_exec (lock, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close (lock);
    //  Held, then stored in order once the outbox is free: nothing lost.
    s_assert_exactly_once (f);
    assert_true (harness_wait_delivery_acks (f->harness, "notifier", acks + 1, 10000) > acks);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_every_event_once, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_endpoints_down_then_up, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_restart_loses_nothing, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_outbox_busy_holds_events, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
