/*  test_agent.c: the agent runtime against a fake broker (fake_broker.c).

    Each test gets a temporary directory with a broker certificate and an agent
    certificate, czmq's zauth as the ZAP handler (allowing the certificates in that
    directory), and a fake broker on ipc:// in it. Waits are bounded loops on a condition
    (never assertions on time): a test fails if the condition never becomes true.
*/
#include "agents/al_agent.h"
#include "agent_test_env.h"
#include "fake_broker.h"

#include <czmq.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#define WAIT_UNTIL(cond) AGENT_TEST_WAIT_UNTIL (cond, 20000)

typedef struct {
    agent_test_env_t env;       // directory, certificates, zauth
    char endpoint [200];
    fake_broker_t *broker;
} fixture_t;

static int
setup (void **state)
{
    fixture_t *fixture = calloc (1, sizeof *fixture);
    assert_non_null (fixture);
    agent_test_env_init (&fixture->env, "al-agent");
    snprintf (fixture->endpoint, sizeof fixture->endpoint, "ipc://%s/broker.ipc", fixture->env.dir);
    fixture->broker = fake_broker_new (fixture->endpoint, fixture->env.broker_cert, 100);
    fake_broker_start (fixture->broker);
    *state = fixture;
    return 0;
}

static int
teardown (void **state)
{
    fixture_t *fixture = *state;
    fake_broker_destroy (&fixture->broker);
    agent_test_env_fini (&fixture->env);
    free (fixture);
    al_agent_set_interrupted (false);
    return 0;
}

static void
s_options (fixture_t *fixture, al_agent_options_t *options)
{
    agent_test_options (&fixture->env, fixture->endpoint, options);
}

static al_agent_t *
s_agent (fixture_t *fixture)
{
    al_agent_options_t options;
    s_options (fixture, &options);
    char error [256] = "";
    al_agent_t *agent = al_agent_new (&options, error, sizeof error);
    if (!agent)
        fail_msg ("al_agent_new: %s", error);
    return agent;
}

//  Pack a QaRequest delivery with DELIVERY_ID for the fake broker to send.
static void
s_deliver (fixture_t *fixture, uint64_t delivery_id)
{
    al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
    Airlock__QaRequest request = AIRLOCK__QA_REQUEST__INIT;
    Airlock__Sender sender = AIRLOCK__SENDER__INIT;
    char id [32];
    snprintf (id, sizeof id, "orch-%" PRIu64, delivery_id);
    request.service = "demo";
    request.version = "v1";
    request.artifact_sha256 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    sender.identity = "orchestrator";
    sender.role = "orchestrator";
    envelope.message_id = id;
    envelope.sender = &sender;
    envelope.delivery_id = delivery_id;
    envelope.environment = AIRLOCK__ENVIRONMENT__ENV_STAGING;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_QA_REQUEST;
    envelope.qa_request = &request;
    uint8_t *data = NULL;
    size_t size = 0;
    char error [256];
    assert_int_equal (al_codec_pack (&envelope, &data, &size, error, sizeof error), AL_CODEC_OK);
    assert_int_equal (fake_broker_deliver (fixture->broker, data, size), 0);
    free (data);
}

//  How many times delivery_id was acknowledged (a DeliveryAck may list several).
static size_t
s_delivery_acks (fixture_t *fixture, uint64_t delivery_id)
{
    return fake_broker_acks_of (fixture->broker, delivery_id);
}

//  Every delivery id in [first, end) was acknowledged exactly once.
static bool
s_acked_once (fixture_t *fixture, uint64_t first, uint64_t end)
{
    for (uint64_t delivery_id = first; delivery_id < end; delivery_id++)
        if (s_delivery_acks (fixture, delivery_id) != 1)
            return false;
    return true;
}

//  ---------------------------------------------------------------------------------

static void
test_register_is_sent_first (void **state)
{
    fixture_t *fixture = *state;
    al_agent_t *agent = s_agent (fixture);
    assert_int_equal (al_agent_wait_registered (agent, 20000), 0);
    fake_record_t first;
    assert_true (fake_broker_log_at (fixture->broker, 0, &first));
    assert_string_equal (first.type, "Register");
    assert_string_equal (first.agent_name, "qa");
    assert_true (first.subscribe_deliveries);
    // The broker sees the agent's certificate key as the ZAP User-Id.
    assert_string_equal (first.user_id, zcert_public_txt (fixture->env.agent));
    al_agent_info_t info;
    al_agent_info (agent, &info);
    assert_true (info.registered);
    assert_true (info.registrations >= 1);
    al_agent_destroy (&agent);
    assert_null (agent);
}

static void
test_send_retries_with_the_same_id (void **state)
{
    fixture_t *fixture = *state;
    fake_broker_set_drop_first (fixture->broker, true);
    al_agent_t *agent = s_agent (fixture);
    al_envelope_t envelope;
    Airlock__QaReport report;
    agent_test_qa_report (&envelope, &report, "v1");
    al_agent_result_t result;
    assert_int_equal (al_agent_send (agent, &envelope, 20000, &result), AL_AGENT_ACKED);
    assert_int_equal (result.status, AL_AGENT_ACKED);
    assert_true (result.audit_sequence > 0);
    // The first copy was dropped: the broker saw the same message id again (at least
    // twice; a slow machine may retransmit once more), and no other QaReport.
    assert_true (fake_broker_count_id (fixture->broker, result.message_id) >= 2);
    assert_int_equal (fake_broker_count (fixture->broker, "QaReport", 0),
                      fake_broker_count_id (fixture->broker, result.message_id));
    // Ids are "<name>-<16 hex boot id>-<counter>".
    assert_int_equal (strncmp (result.message_id, "qa-", 3), 0);
    assert_int_equal (result.message_id [19], '-');
    al_agent_info_t info;
    al_agent_info (agent, &info);
    assert_true (info.retransmissions >= 1);
    assert_int_equal (info.pending, 0);
    al_agent_destroy (&agent);
}

static void
test_denied_reaches_the_caller (void **state)
{
    fixture_t *fixture = *state;
    fake_broker_set_deny_type (fixture->broker, "QaReport");
    al_agent_t *agent = s_agent (fixture);
    al_envelope_t envelope;
    Airlock__QaReport report;
    agent_test_qa_report (&envelope, &report, "v2");
    al_agent_result_t result;
    assert_int_equal (al_agent_send (agent, &envelope, 20000, &result), AL_AGENT_DENIED);
    assert_int_equal (result.deny_code, AIRLOCK__DENY_CODE__DENY_NOT_PERMITTED);
    assert_string_equal (result.reason, "roles.yaml: this role may not send QaReport");
    assert_true (result.audit_sequence > 0);
    assert_int_equal (al_agent_pending (agent), 0);
    al_agent_destroy (&agent);
}

static void
test_invalid_envelope_is_not_sent (void **state)
{
    fixture_t *fixture = *state;
    al_agent_t *agent = s_agent (fixture);
    al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;   // no body
    al_agent_result_t result;
    assert_int_equal (al_agent_send (agent, &envelope, 1000, &result), AL_AGENT_INVALID);
    assert_true (strlen (result.reason) > 0);
    char error [256] = "";
    assert_int_equal (al_agent_post (agent, &envelope, 1000, NULL, error, sizeof error),
                      AL_AGENT_INVALID);
    assert_true (strlen (error) > 0);
    assert_int_equal (al_agent_pending (agent), 0);
    assert_int_equal (al_agent_wait (agent, "no-such-id", 0, &result), AL_AGENT_INVALID);
    al_agent_destroy (&agent);
}

static void
test_deliveries_are_received_and_acked (void **state)
{
    fixture_t *fixture = *state;
    al_agent_t *agent = s_agent (fixture);
    assert_int_equal (al_agent_wait_registered (agent, 20000), 0);
    s_deliver (fixture, 42);
    al_envelope_t *delivery = al_agent_recv (agent, 20000);
    assert_non_null (delivery);
    assert_int_equal (delivery->delivery_id, 42);
    assert_int_equal (delivery->body_case, AIRLOCK__ENVELOPE__BODY_QA_REQUEST);
    assert_string_equal (delivery->sender->role, "orchestrator");

    // Redelivered while still held: not handed out twice.
    s_deliver (fixture, 42);
    al_agent_info_t info;
    WAIT_UNTIL ((al_agent_info (agent, &info), info.redeliveries == 1));
    assert_int_equal (info.redeliveries, 1);
    assert_null (al_agent_recv (agent, 0));
    assert_int_equal (s_delivery_acks (fixture, 42), 0);

    assert_int_equal (al_agent_ack_delivery (agent, 42), 0);
    al_codec_free (&delivery);
    WAIT_UNTIL (s_delivery_acks (fixture, 42) == 1);
    assert_int_equal (s_delivery_acks (fixture, 42), 1);
    // Not held any more: a second ack is refused, an unknown id too.
    assert_int_equal (al_agent_ack_delivery (agent, 42), -1);
    assert_int_equal (al_agent_ack_delivery (agent, 7), -1);

    // Redelivered after the ack (the ack was lost): acknowledged again, not handed out.
    s_deliver (fixture, 42);
    WAIT_UNTIL (s_delivery_acks (fixture, 42) == 2);
    assert_int_equal (s_delivery_acks (fixture, 42), 2);
    al_agent_info (agent, &info);
    assert_int_equal (info.redeliveries, 2);
    assert_null (al_agent_recv (agent, 0));

    // Another one, received in order after a first.
    s_deliver (fixture, 43);
    s_deliver (fixture, 44);
    al_envelope_t *first = al_agent_recv (agent, 20000);
    al_envelope_t *second = al_agent_recv (agent, 20000);
    assert_non_null (first);
    assert_non_null (second);
    assert_int_equal (first->delivery_id, 43);
    assert_int_equal (second->delivery_id, 44);
    assert_int_equal (al_agent_ack_delivery (agent, 44), 0);
    assert_int_equal (al_agent_ack_delivery (agent, 43), 0);
    assert_int_equal (al_agent_flush (agent, 20000), 0);
    WAIT_UNTIL (s_delivery_acks (fixture, 43) == 1 && s_delivery_acks (fixture, 44) == 1);
    assert_int_equal (s_delivery_acks (fixture, 43), 1);
    assert_int_equal (s_delivery_acks (fixture, 44), 1);
    al_codec_free (&first);
    al_codec_free (&second);
    al_agent_info (agent, &info);
    assert_int_equal (info.deliveries_received, 3);
    al_agent_destroy (&agent);
}

//  Acknowledgements queued while the link is down leave, once it is up, as ONE
//  DeliveryAck per AL_CODEC_MAX_DELIVERY_ACK_IDS ids (one frame, one audit row at the
//  broker), in the order they were made.
static void
test_queued_acks_leave_as_one_frame (void **state)
{
    fixture_t *fixture = *state;
    al_agent_t *agent = s_agent (fixture);
    assert_int_equal (al_agent_wait_registered (agent, 20000), 0);
    const uint64_t first = 1000, count = AL_CODEC_MAX_DELIVERY_ACK_IDS + 6;
    for (uint64_t delivery_id = first; delivery_id < first + count; delivery_id++) {
        s_deliver (fixture, delivery_id);
        al_envelope_t *delivery = al_agent_recv (agent, 20000);
        assert_non_null (delivery);
        assert_int_equal (delivery->delivery_id, delivery_id);
        al_codec_free (&delivery);
    }
    fake_broker_stop (fixture->broker);
    al_agent_info_t info;
    WAIT_UNTIL ((al_agent_info (agent, &info), !info.connected));
    assert_false (info.connected);
    for (uint64_t delivery_id = first; delivery_id < first + count; delivery_id++)
        assert_int_equal (al_agent_ack_delivery (agent, delivery_id), 0);
    assert_int_equal (fake_broker_count (fixture->broker, "DeliveryAck", 0), 0);

    fake_broker_start (fixture->broker);
    WAIT_UNTIL (s_acked_once (fixture, first, first + count));
    assert_true (s_acked_once (fixture, first, first + count));
    assert_int_equal (al_agent_flush (agent, 20000), 0);
    assert_int_equal (fake_broker_count (fixture->broker, "DeliveryAck", 0), 2);
    fake_record_t acks [2];
    size_t found = 0, size = fake_broker_log_size (fixture->broker);
    for (size_t index = 0; index < size && found < 2; index++)
        if (fake_broker_log_at (fixture->broker, index, &acks [found]) && streq (acks [found].type, "DeliveryAck"))
            found++;
    assert_int_equal (found, 2);
    assert_int_equal (acks [0].generation, 2);
    assert_int_equal (acks [0].delivery_id, first);
    assert_int_equal (acks [0].delivery_id_count, AL_CODEC_MAX_DELIVERY_ACK_IDS);
    assert_int_equal (acks [1].delivery_id, first + AL_CODEC_MAX_DELIVERY_ACK_IDS);
    assert_int_equal (acks [1].delivery_id_count, 6);
    al_agent_destroy (&agent);
}

static void
test_heartbeats_and_reconnect_after_restart (void **state)
{
    fixture_t *fixture = *state;
    al_agent_t *agent = s_agent (fixture);
    assert_int_equal (al_agent_wait_registered (agent, 20000), 0);
    al_agent_info_t info;
    WAIT_UNTIL (fake_broker_count (fixture->broker, "Heartbeat", 1) >= 3
             && (al_agent_info (agent, &info), info.heartbeats_received >= 3));
    assert_true (fake_broker_count (fixture->broker, "Heartbeat", 1) >= 3);
    al_agent_info (agent, &info);
    assert_true (info.heartbeats_received >= 3);
    assert_true (info.heartbeats_sent >= 3);

    // The broker goes away; a message posted meanwhile waits in the outbox.
    fake_broker_stop (fixture->broker);
    WAIT_UNTIL ((al_agent_info (agent, &info), !info.connected));
    char id [AL_AGENT_ID_SIZE];
    al_envelope_t envelope;
    Airlock__QaReport report;
    agent_test_qa_report (&envelope, &report, "v3");
    assert_int_equal (al_agent_post (agent, &envelope, 1000, id, NULL, 0), AL_AGENT_QUEUED);
    al_agent_result_t result;
    assert_int_equal (al_agent_wait (agent, id, 200, &result), AL_AGENT_TIMEOUT);
    assert_int_equal (al_agent_pending (agent), 1);

    // It comes back: a new registration, then the outbox.
    fake_broker_start (fixture->broker);
    assert_int_equal (al_agent_wait (agent, id, 20000, &result), AL_AGENT_ACKED);
    assert_string_equal (result.message_id, id);
    assert_true (fake_broker_count (fixture->broker, "Register", 2) >= 1);
    fake_record_t record;
    size_t size = fake_broker_log_size (fixture->broker);
    bool register_before_report = false;
    for (size_t index = 0; index < size; index++)
        if (fake_broker_log_at (fixture->broker, index, &record) && record.generation == 2) {
            register_before_report = streq (record.type, "Register");
            break;
        }
    assert_true (register_before_report);
    WAIT_UNTIL (fake_broker_count (fixture->broker, "Heartbeat", 2) >= 2);
    assert_true (fake_broker_count (fixture->broker, "Heartbeat", 2) >= 2);
    al_agent_info (agent, &info);
    assert_true (info.registrations >= 2);
    assert_true (info.connections >= 2);
    al_agent_destroy (&agent);
}

static void
test_silent_broker_is_declared_dead (void **state)
{
    fixture_t *fixture = *state;
    al_agent_t *agent = s_agent (fixture);
    assert_int_equal (al_agent_wait_registered (agent, 20000), 0);
    fake_record_t first;
    assert_true (fake_broker_log_at (fixture->broker, 0, &first));

    // No answers, no heartbeats: after 3 intervals the agent remakes its socket.
    fake_broker_set_mute (fixture->broker, true);
    al_agent_info_t info;
    WAIT_UNTIL ((al_agent_info (agent, &info), info.socket_recreations >= 1)
             && fake_broker_count (fixture->broker, "Register", 1) >= 2);
    assert_true (info.socket_recreations >= 1);
    assert_false (info.registered);
    // The new socket registered again, from a new connection (a new routing id).
    size_t size = fake_broker_log_size (fixture->broker);
    bool new_routing_id = false;
    for (size_t index = 1; index < size; index++) {
        fake_record_t record;
        if (fake_broker_log_at (fixture->broker, index, &record) && streq (record.type, "Register")
        &&  !streq (record.routing_id, first.routing_id))
            new_routing_id = true;
    }
    assert_true (new_routing_id);

    fake_broker_set_mute (fixture->broker, false);
    assert_int_equal (al_agent_wait_registered (agent, 20000), 0);
    al_agent_destroy (&agent);
}

static void
test_pipelined_posts (void **state)
{
    fixture_t *fixture = *state;
    // A small high-water mark and outbox: the socket refuses frames and posts block,
    // and everything still arrives.
    al_agent_options_t options;
    s_options (fixture, &options);
    options.sndhwm = 64;
    options.max_pending = 500;
    char error [256];
    al_agent_t *agent = al_agent_new (&options, error, sizeof error);
    assert_non_null (agent);
    enum { COUNT = 2000 };
    zhashx_t *ids = zhashx_new ();
    al_envelope_t envelope;
    Airlock__QaReport report;
    agent_test_qa_report (&envelope, &report, "v4");
    for (int index = 0; index < COUNT; index++) {
        char id [AL_AGENT_ID_SIZE];
        assert_int_equal (al_agent_post (agent, &envelope, 20000, id, NULL, 0), AL_AGENT_QUEUED);
        assert_int_equal (zhashx_insert (ids, id, (void *) 1), 0);     // unique
    }
    zhashx_t *sequences = zhashx_new ();
    for (int index = 0; index < COUNT; index++) {
        al_agent_result_t result;
        assert_int_equal (al_agent_next_result (agent, 20000, &result), AL_AGENT_ACKED);
        assert_non_null (zhashx_lookup (ids, result.message_id));
        zhashx_delete (ids, result.message_id);
        char key [24];
        snprintf (key, sizeof key, "%" PRIu64, result.audit_sequence);
        assert_int_equal (zhashx_insert (sequences, key, (void *) 1), 0);
    }
    assert_int_equal (zhashx_size (ids), 0);
    assert_int_equal (al_agent_pending (agent), 0);
    // With the broker away the outbox fills: a post with no time to wait says so.
    fake_broker_stop (fixture->broker);
    for (int index = 0; index < 500; index++)
        assert_int_equal (al_agent_post (agent, &envelope, 20000, NULL, NULL, 0), AL_AGENT_QUEUED);
    assert_int_equal (al_agent_post (agent, &envelope, 0, NULL, error, sizeof error), AL_AGENT_BUSY);
    assert_int_equal (al_agent_pending (agent), 500);
    fake_broker_start (fixture->broker);
    for (int index = 0; index < 500; index++)
        assert_int_equal (al_agent_next_result (agent, 20000, &(al_agent_result_t) { 0 }), AL_AGENT_ACKED);
    al_agent_result_t result;
    assert_int_equal (al_agent_next_result (agent, 0, &result), AL_AGENT_TIMEOUT);
    assert_int_equal (al_agent_flush (agent, 0), 0);
    zhashx_destroy (&ids);
    zhashx_destroy (&sequences);
    al_agent_destroy (&agent);
}

typedef struct {
    al_agent_t *agent;
    int acked;
    char last_id [AL_AGENT_ID_SIZE];
} s_sender_t;

static void *
s_sender (void *arg)
{
    s_sender_t *sender = arg;
    al_envelope_t envelope;
    Airlock__QaReport report;
    agent_test_qa_report (&envelope, &report, "v6");
    for (int index = 0; index < 200; index++) {
        al_agent_result_t result;
        if (al_agent_send (sender->agent, &envelope, 20000, &result) == AL_AGENT_ACKED)
            sender->acked++;
        snprintf (sender->last_id, sizeof sender->last_id, "%s", result.message_id);
    }
    return NULL;
}

static void
test_concurrent_senders_and_receiver (void **state)
{
    fixture_t *fixture = *state;
    al_agent_t *agent = s_agent (fixture);
    assert_int_equal (al_agent_wait_registered (agent, 20000), 0);
    s_sender_t senders [2] = { { agent, 0, "" }, { agent, 0, "" } };
    pthread_t threads [2];
    for (int index = 0; index < 2; index++)
        assert_int_equal (pthread_create (&threads [index], NULL, s_sender, &senders [index]), 0);
    // Meanwhile this thread takes and acknowledges deliveries.
    for (uint64_t delivery_id = 100; delivery_id < 110; delivery_id++) {
        s_deliver (fixture, delivery_id);
        al_envelope_t *delivery = al_agent_recv (agent, 20000);
        assert_non_null (delivery);
        assert_int_equal (delivery->delivery_id, delivery_id);
        assert_int_equal (al_agent_ack_delivery (agent, delivery_id), 0);
        al_codec_free (&delivery);
    }
    for (int index = 0; index < 2; index++)
        pthread_join (threads [index], NULL);
    assert_int_equal (senders [0].acked, 200);
    assert_int_equal (senders [1].acked, 200);
    assert_string_not_equal (senders [0].last_id, senders [1].last_id);
    assert_true (fake_broker_count (fixture->broker, "QaReport", 0) >= 400);
    assert_int_equal (al_agent_flush (agent, 20000), 0);
    // Each of the ten acknowledged once (in as many DeliveryAcks as the flushes made).
    WAIT_UNTIL (s_acked_once (fixture, 100, 110));
    for (uint64_t delivery_id = 100; delivery_id < 110; delivery_id++)
        assert_int_equal (s_delivery_acks (fixture, delivery_id), 1);
    assert_true (fake_broker_count (fixture->broker, "DeliveryAck", 0) >= 1);
    assert_true (fake_broker_count (fixture->broker, "DeliveryAck", 0) <= 10);
    al_agent_destroy (&agent);
}

static void
test_status_query (void **state)
{
    fixture_t *fixture = *state;
    al_agent_t *agent = s_agent (fixture);
    al_agent_result_t result;
    al_envelope_t *reply = al_agent_status_query (agent, "agents", NULL, 0, 20000, &result);
    assert_non_null (reply);
    assert_int_equal (result.status, AL_AGENT_ACKED);
    assert_int_equal (reply->body_case, AIRLOCK__ENVELOPE__BODY_STATUS_REPLY);
    assert_string_equal (reply->correlation_id, result.message_id);
    assert_int_equal (reply->status_reply->n_agents, 1);
    assert_string_equal (reply->status_reply->agents [0]->identity, "qa");
    al_codec_free (&reply);
    assert_true (fake_broker_count (fixture->broker, "StatusQuery", 0) >= 1);
    al_agent_destroy (&agent);
}

static void
test_unknown_key_is_reported (void **state)
{
    fixture_t *fixture = *state;
    // A certificate outside the ZAP handler's directory.
    char path [256];
    snprintf (path, sizeof path, "%s/stranger.cert", fixture->env.dir);
    zcert_t *stranger = zcert_new ();
    assert_int_equal (zcert_save (stranger, path), 0);
    al_agent_options_t options;
    s_options (fixture, &options);
    snprintf (options.cert_path, sizeof options.cert_path, "%s", path);
    char error [256];
    al_agent_t *agent = al_agent_new (&options, error, sizeof error);
    assert_non_null (agent);
    char last [512] = "";
    WAIT_UNTIL ((al_agent_last_error (agent, last, sizeof last), *last != 0));
    assert_non_null (strstr (last, "refused this key"));
    assert_non_null (strstr (last, zcert_public_txt (stranger)));
    assert_int_equal (al_agent_wait_registered (agent, 100), -1);
    assert_int_equal (fake_broker_count (fixture->broker, NULL, 0), 0);
    al_agent_destroy (&agent);
    zcert_destroy (&stranger);
}

static void
test_bad_options_are_errors (void **state)
{
    fixture_t *fixture = *state;
    al_agent_options_t options;
    char error [256];
    s_options (fixture, &options);
    snprintf (options.broker_key, sizeof options.broker_key, "not a key");
    assert_null (al_agent_new (&options, error, sizeof error));
    assert_non_null (strstr (error, "broker_key"));

    s_options (fixture, &options);
    snprintf (options.cert_path, sizeof options.cert_path, "%s/missing.cert", fixture->env.dir);
    assert_null (al_agent_new (&options, error, sizeof error));
    assert_non_null (strstr (error, "missing.cert"));

    // A public certificate without its secret half cannot authenticate.
    char path [256];
    snprintf (path, sizeof path, "%s/public-only.cert", fixture->env.dir);
    zcert_t *cert = zcert_new ();
    assert_int_equal (zcert_save_public (cert, path), 0);
    zcert_destroy (&cert);
    s_options (fixture, &options);
    snprintf (options.cert_path, sizeof options.cert_path, "%s", path);
    assert_null (al_agent_new (&options, error, sizeof error));
    assert_non_null (strstr (error, "no secret key"));

    s_options (fixture, &options);
    snprintf (options.endpoint, sizeof options.endpoint, "nonsense://x");
    assert_null (al_agent_new (&options, error, sizeof error));
    assert_non_null (strstr (error, "nonsense://x"));

    s_options (fixture, &options);
    options.heartbeat_ms = 5;
    assert_null (al_agent_new (&options, error, sizeof error));
    assert_non_null (strstr (error, "heartbeat_ms"));
}

static void
test_ids_differ_across_restarts (void **state)
{
    fixture_t *fixture = *state;
    char first [AL_AGENT_ID_SIZE];
    char second [AL_AGENT_ID_SIZE];
    al_envelope_t envelope;
    Airlock__QaReport report;
    agent_test_qa_report (&envelope, &report, "v5");
    al_agent_result_t result;
    al_agent_t *agent = s_agent (fixture);
    assert_int_equal (al_agent_post (agent, &envelope, 1000, first, NULL, 0), AL_AGENT_QUEUED);
    assert_int_equal (al_agent_wait (agent, first, 20000, &result), AL_AGENT_ACKED);
    al_agent_destroy (&agent);
    agent = s_agent (fixture);
    assert_int_equal (al_agent_post (agent, &envelope, 1000, second, NULL, 0), AL_AGENT_QUEUED);
    assert_int_equal (al_agent_wait (agent, second, 20000, &result), AL_AGENT_ACKED);
    al_agent_destroy (&agent);
    assert_string_not_equal (first, second);
    // "qa-<boot id>-<counter>": the boot ids differ.
    assert_int_not_equal (strncmp (first, second, 19), 0);
    // The fake broker (deduplicating on id) saw two different messages.
    assert_false (result.duplicate);

    // A caller-chosen id is kept, and a second message with it is refused while pending.
    agent = s_agent (fixture);
    envelope.message_id = "release-v5-report";
    envelope.timestamp_ms = 1700000000000;
    assert_int_equal (al_agent_send (agent, &envelope, 20000, &result), AL_AGENT_ACKED);
    assert_string_equal (result.message_id, "release-v5-report");
    assert_false (result.duplicate);
    // Sent again with the same id (as after a crash): the broker answers it as a duplicate.
    assert_int_equal (al_agent_send (agent, &envelope, 20000, &result), AL_AGENT_ACKED);
    assert_true (result.duplicate);
    al_agent_destroy (&agent);
}

static void
test_interrupt_stops_recv (void **state)
{
    fixture_t *fixture = *state;
    al_agent_t *agent = s_agent (fixture);
    assert_int_equal (al_agent_wait_registered (agent, 20000), 0);
    s_deliver (fixture, 9);
    al_agent_info_t info;
    WAIT_UNTIL ((al_agent_info (agent, &info), info.deliveries_received == 1));
    al_agent_set_interrupted (true);
    assert_true (al_agent_interrupted ());
    // Interrupted: recv hands out nothing, even with a delivery waiting.
    assert_null (al_agent_recv (agent, -1));
    al_agent_set_interrupted (false);
    assert_false (al_agent_interrupted ());
    al_envelope_t *delivery = al_agent_recv (agent, 20000);
    assert_non_null (delivery);
    assert_int_equal (delivery->delivery_id, 9);
    assert_int_equal (al_agent_ack_delivery (agent, 9), 0);
    al_codec_free (&delivery);
    assert_int_equal (al_agent_flush (agent, 20000), 0);
    al_agent_destroy (&agent);
}

static void
test_signal_sets_the_flag (void **state)
{
    (void) state;
    al_agent_catch_signals ();
    assert_false (al_agent_interrupted ());
    raise (SIGTERM);
    assert_true (al_agent_interrupted ());
    al_agent_set_interrupted (false);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_register_is_sent_first, setup, teardown),
        cmocka_unit_test_setup_teardown (test_send_retries_with_the_same_id, setup, teardown),
        cmocka_unit_test_setup_teardown (test_denied_reaches_the_caller, setup, teardown),
        cmocka_unit_test_setup_teardown (test_invalid_envelope_is_not_sent, setup, teardown),
        cmocka_unit_test_setup_teardown (test_deliveries_are_received_and_acked, setup, teardown),
        cmocka_unit_test_setup_teardown (test_queued_acks_leave_as_one_frame, setup, teardown),
        cmocka_unit_test_setup_teardown (test_heartbeats_and_reconnect_after_restart, setup, teardown),
        cmocka_unit_test_setup_teardown (test_silent_broker_is_declared_dead, setup, teardown),
        cmocka_unit_test_setup_teardown (test_pipelined_posts, setup, teardown),
        cmocka_unit_test_setup_teardown (test_concurrent_senders_and_receiver, setup, teardown),
        cmocka_unit_test_setup_teardown (test_status_query, setup, teardown),
        cmocka_unit_test_setup_teardown (test_unknown_key_is_reported, setup, teardown),
        cmocka_unit_test_setup_teardown (test_bad_options_are_errors, setup, teardown),
        cmocka_unit_test_setup_teardown (test_ids_differ_across_restarts, setup, teardown),
        cmocka_unit_test_setup_teardown (test_interrupt_stops_recv, setup, teardown),
        cmocka_unit_test_setup_teardown (test_signal_sets_the_flag, setup, teardown),
    };
    int failed = cmocka_run_group_tests (tests, NULL, NULL);
    zsys_shutdown ();
    return failed;
}
