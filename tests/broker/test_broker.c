/*  test_broker.c: the broker as a real process, on ipc:// or tcp loopback, in a
    temporary state directory: authentication, authority, audit, delivery, limits,
    reload, crash recovery.

    Every test starts broker_under_test with its own keys and policy (harness.c), talks
    to it with raw DEALER sockets, and asserts on replies, deliveries and audit rows.
*/
#include "harness.h"
#include "broker/al_broker.h"
#include "base/al_config.h"
#include "store/al_store.h"
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

static const harness_identity_t s_identities [] = {
    { "orchestrator",   "orchestrator" },
    { "qa",             "qa" },
    { "deploy-manager", "deploy-manager" },
    { "auditor",        "auditor" },
};
#define S_IDENTITY_COUNT (sizeof s_identities / sizeof s_identities [0])

//  Register and wait for the Ack (the connection and ZAP are then done).
static void
s_register (zsock_t *client, const char *message_id, bool deliveries)
{
    assert_int_equal (harness_register_acked (client, message_id, deliveries, 10000), 0);
}

//  ---- start-up, status -------------------------------------------------------------

static void
test_start_status_and_policy_digest (void **state)
{
    (void) state;
    harness_t *fx = harness_new (NULL, s_identities, S_IDENTITY_COUNT);
    assert_int_equal (harness_broker_start (fx), 0);
    assert_int_equal (harness_count_rows (fx, "PolicyLoaded", "broker", "digest "), 1);

    zsock_t *manager = harness_client (fx, "deploy-manager", NULL);
    s_register (manager, "reg-1", true);
    zsock_t *auditor = harness_client (fx, "auditor", NULL);
    s_register (auditor, "reg-a", false);

    al_envelope_t query = AIRLOCK__ENVELOPE__INIT;
    Airlock__StatusQuery body = AIRLOCK__STATUS_QUERY__INIT;
    body.what = (char *) "agents";
    query.message_id = (char *) "status-1";
    query.body_case = AIRLOCK__ENVELOPE__BODY_STATUS_QUERY;
    query.status_query = &body;
    assert_int_equal (harness_send (auditor, &query), 0);
    al_envelope_t *reply = harness_expect (auditor, AIRLOCK__ENVELOPE__BODY_STATUS_REPLY, 10000);
    assert_non_null (reply);
    assert_string_equal (reply->correlation_id, "status-1");
    bool saw_manager = false;
    for (size_t i = 0; i < reply->status_reply->n_agents; i++) {
        Airlock__AgentStatus *agent = reply->status_reply->agents [i];
        if (strcmp (agent->identity, "deploy-manager") == 0) {
            saw_manager = true;
            assert_string_equal (agent->role, "deploy-manager");
            assert_true (agent->alive);
            assert_true (agent->last_heartbeat_ms > 0);
        }
    }
    assert_true (saw_manager);
    al_codec_free (&reply);

    //  The rows carry the identity from the key, never a claim.
    assert_int_equal (harness_count_rows (fx, "Register", "deploy-manager", NULL), 1);
    assert_int_equal (harness_count_rows (fx, "StatusQuery", "auditor", NULL), 1);
    zsock_destroy (&manager);
    zsock_destroy (&auditor);
    assert_int_equal (harness_broker_signal (fx, SIGTERM), 0);
    harness_destroy (&fx);
}

//  ---- events on PUB ----------------------------------------------------------------

static zsock_t *
s_subscriber (harness_t *fx, const char *identity)
{
    zcert_t *cert = (zcert_t *) zhashx_lookup (fx->certs, identity);
    assert_non_null (cert);
    zsock_t *sub = zsock_new (ZMQ_SUB);
    assert_non_null (sub);
    zcert_apply (cert, sub);
    zsock_set_curve_serverkey (sub, fx->broker_public);
    zsock_set_linger (sub, 0);
    zsock_set_subscribe (sub, "event.");
    assert_int_equal (zsock_connect (sub, "%s", fx->pub), 0);
    return sub;
}

static uint64_t
s_be64 (zframe_t *frame)
{
    assert_int_equal (zframe_size (frame), 8);
    uint64_t value = 0;
    for (int i = 0; i < 8; i++)
        value = (value << 8) | zframe_data (frame) [i];
    return value;
}

static void
test_pub_topics_sequences_and_subscriber_auth (void **state)
{
    (void) state;
    harness_t *fx = harness_new (NULL, s_identities, S_IDENTITY_COUNT);
    assert_int_equal (harness_broker_start (fx), 0);
    zsock_t *auditor = s_subscriber (fx, "auditor");
    zsock_t *stranger = s_subscriber (fx, "stranger");
    zsock_t *orchestrator = harness_client (fx, "orchestrator", NULL);
    s_register (orchestrator, "reg-o", false);

    //  Publish until the subscription is in place (PUB drops what nobody subscribed to).
    zmsg_t *first = NULL;
    char id [32];
    for (int i = 0; i < 50 && !first; i++) {
        snprintf (id, sizeof id, "pub-%d", i);
        harness_deploy_request (orchestrator, id, AIRLOCK__ENVIRONMENT__ENV_STAGING);
        zsock_set_rcvtimeo (auditor, 200);
        first = zmsg_recv (auditor);
    }
    assert_non_null (first);
    assert_int_equal (zmsg_size (first), 3);
    char *topic = zmsg_popstr (first);
    assert_string_equal (topic, "event.DeployRequest");
    zstr_free (&topic);
    zframe_t *body = zmsg_pop (first);
    al_envelope_t *envelope = NULL;
    char error [256];
    assert_int_equal (al_codec_unpack (zframe_data (body), zframe_size (body), 1 << 20, &envelope,
                                       error, sizeof error), AL_CODEC_OK);
    assert_string_equal (envelope->sender->identity, "orchestrator");
    al_codec_free (&envelope);
    zframe_destroy (&body);
    zframe_t *sequence = zmsg_pop (first);
    uint64_t first_sequence = s_be64 (sequence);
    zframe_destroy (&sequence);
    zmsg_destroy (&first);

    //  The next event on the topic carries the next sequence number.
    harness_deploy_request (orchestrator, "pub-next", AIRLOCK__ENVIRONMENT__ENV_STAGING);
    zsock_set_rcvtimeo (auditor, 10000);
    zmsg_t *second = zmsg_recv (auditor);
    assert_non_null (second);
    zframe_t *frame = zmsg_last (second);
    assert_int_equal (s_be64 (frame), first_sequence + 1);
    zmsg_destroy (&second);

    //  A subscriber whose key is not in the policy gets nothing.
    zsock_set_rcvtimeo (stranger, 500);
    zmsg_t *nothing = zmsg_recv (stranger);
    assert_null (nothing);

    zsock_destroy (&auditor);
    zsock_destroy (&stranger);
    zsock_destroy (&orchestrator);
    assert_int_equal (harness_broker_signal (fx, SIGTERM), 0);
    harness_destroy (&fx);
}

//  ---- authentication ---------------------------------------------------------------

static void
s_raw_tcp_garbage (int port)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    assert_true (fd >= 0);
    struct sockaddr_in address;
    memset (&address, 0, sizeof address);
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    address.sin_port = htons ((uint16_t) port);
    assert_int_equal (connect (fd, (struct sockaddr *) &address, sizeof address), 0);
    const char garbage [] = "GET / HTTP/1.1\r\nHost: airlock\r\n\r\n\xff\x00\x01garbage-garbage-garbage";
    ssize_t sent = send (fd, garbage, sizeof garbage, MSG_NOSIGNAL);
    (void) sent;
    char buffer [256];
    //  The broker closes the connection; read until it does (or 3 s).
    struct timeval timeout = { 3, 0 };
    setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    while (recv (fd, buffer, sizeof buffer, 0) > 0)
        ;
    close (fd);
}

static void
test_unknown_key_null_client_and_garbage_reach_nobody (void **state)
{
    (void) state;
    harness_options_t options = { .tcp = true };
    harness_t *fx = harness_new (&options, s_identities, S_IDENTITY_COUNT);
    assert_int_equal (harness_broker_start (fx), 0);
    zsock_t *manager = harness_client (fx, "deploy-manager", NULL);
    s_register (manager, "reg-1", true);

    //  1. A CURVE client whose key is not in identities.yaml.
    zsock_t *stranger = harness_client (fx, "stranger", NULL);
    harness_deploy_request (stranger, "stranger-1", AIRLOCK__ENVIRONMENT__ENV_STAGING);
    //  2. A NULL-mechanism client.
    zsock_t *plain = zsock_new (ZMQ_DEALER);
    assert_non_null (plain);
    zsock_set_linger (plain, 0);
    assert_int_equal (zsock_connect (plain, "%s", fx->router), 0);
    harness_deploy_request (plain, "plain-1", AIRLOCK__ENVIRONMENT__ENV_STAGING);
    //  3. Raw TCP garbage.
    s_raw_tcp_garbage (fx->tcp_port);

    //  The refusals are audited: the stranger by its key, failed handshakes from the
    //  socket monitor (libzmq reports the NULL client's mechanism mismatch; text that is
    //  not ZMTP at all is closed without a monitor event, see docs/broker.md).
    char stranger_key [41];
    zcert_t *cert = (zcert_t *) zhashx_lookup (fx->certs, "stranger");
    snprintf (stranger_key, sizeof stranger_key, "%s", zcert_public_txt (cert));
    assert_true (harness_wait_rows (fx, "HandshakeRefused", NULL, stranger_key, 1, 10000) >= 1);
    assert_true (harness_wait_rows (fx, "HandshakeFailed", NULL, NULL, 1, 10000) >= 1);

    //  A legitimate sender's message gets through: the receiver works.
    zsock_t *orchestrator = harness_client (fx, "orchestrator", NULL);
    s_register (orchestrator, "reg-o", false);
    harness_deploy_request (orchestrator, "legit-1", AIRLOCK__ENVIRONMENT__ENV_STAGING);
    al_envelope_t *delivery = harness_expect (manager, AIRLOCK__ENVELOPE__BODY_DEPLOY_REQUEST, 10000);
    assert_non_null (delivery);
    assert_string_equal (delivery->message_id, "legit-1");
    assert_string_equal (delivery->sender->identity, "orchestrator");
    al_codec_free (&delivery);
    //  ... and nothing else ever arrives, nor any row from the intruders.
    assert_null (harness_expect (manager, AIRLOCK__ENVELOPE__BODY_DEPLOY_REQUEST, 1000));
    assert_null (harness_recv (stranger, 200));
    assert_int_equal (harness_count_rows (fx, "DeployRequest", NULL, NULL), 1);
    assert_int_equal (harness_count_rows (fx, NULL, stranger_key, NULL), 0);

    zsock_destroy (&stranger);
    zsock_destroy (&plain);
    zsock_destroy (&orchestrator);
    zsock_destroy (&manager);
    assert_int_equal (harness_broker_signal (fx, SIGTERM), 0);
    harness_destroy (&fx);
}

//  A connection that never finishes its handshake is closed after handshake_ms (2 s in
//  the harness) and the violation is audited.
static void
test_handshake_timeout_closed_and_audited (void **state)
{
    (void) state;
    harness_options_t options = { .tcp = true };
    harness_t *fx = harness_new (&options, s_identities, S_IDENTITY_COUNT);
    assert_int_equal (harness_broker_start (fx), 0);
    long before = harness_count_rows (fx, "HandshakeFailed", NULL, NULL);
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    assert_true (fd >= 0);
    struct sockaddr_in address;
    memset (&address, 0, sizeof address);
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    address.sin_port = htons ((uint16_t) fx->tcp_port);
    assert_int_equal (connect (fd, (struct sockaddr *) &address, sizeof address), 0);
    //  Say nothing; read the broker's greeting until it hangs up (or 10 s).
    struct timeval timeout = { 10, 0 };
    setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    char buffer [256];
    int64_t start = zclock_mono ();
    ssize_t size;
    while ((size = recv (fd, buffer, sizeof buffer, 0)) > 0)
        ;
    bool closed_by_broker = size == 0 && zclock_mono () - start < 10000;
    close (fd);
    assert_true (closed_by_broker);
    assert_true (harness_wait_rows (fx, "HandshakeFailed", NULL, "handshake", before + 1, 10000) >= before + 1);
    assert_int_equal (harness_broker_signal (fx, SIGTERM), 0);
    harness_destroy (&fx);
}

//  A client claiming another identity and role in its handshake metadata is judged by
//  its key. libzmq only lets an application send "X-" properties (it refuses a literal
//  "User-Id" name), so the forgery uses the names a client can actually send.
static void
test_forged_metadata_is_ignored (void **state)
{
    (void) state;
    harness_t *fx = harness_new (NULL, s_identities, S_IDENTITY_COUNT);
    assert_int_equal (harness_broker_start (fx), 0);
    zsock_t *manager = harness_client (fx, "deploy-manager", NULL);
    s_register (manager, "reg-1", true);

    zsock_t *qa = harness_client (fx, "qa", "X-Role:orchestrator");
    assert_int_equal (zmq_setsockopt (zsock_resolve (qa), 95, "X-User-Id:orchestrator", 22), 0);
    s_register (qa, "qa-reg", false);
    harness_deploy_request (qa, "forged-1", AIRLOCK__ENVIRONMENT__ENV_STAGING);
    al_envelope_t *denied = harness_expect (qa, AIRLOCK__ENVELOPE__BODY_DENIED, 10000);
    assert_non_null (denied);
    assert_string_equal (denied->denied->denied_message_id, "forged-1");
    assert_int_equal (denied->denied->code, AIRLOCK__DENY_CODE__DENY_NOT_PERMITTED);
    assert_non_null (strstr (denied->denied->reason, "qa may not send DeployRequest"));
    al_codec_free (&denied);
    assert_int_equal (harness_count_rows (fx, "DeployRequest", "qa", NULL), 1);
    assert_int_equal (harness_count_rows (fx, "DeployRequest", "orchestrator", NULL), 0);
    assert_null (harness_expect (manager, AIRLOCK__ENVELOPE__BODY_DEPLOY_REQUEST, 500));

    zsock_destroy (&qa);
    zsock_destroy (&manager);
    assert_int_equal (harness_broker_signal (fx, SIGTERM), 0);
    harness_destroy (&fx);
}

//  ---- authority --------------------------------------------------------------------

static void
test_qa_production_deploy_denied_and_audited (void **state)
{
    (void) state;
    harness_t *fx = harness_new (NULL, s_identities, S_IDENTITY_COUNT);
    assert_int_equal (harness_broker_start (fx), 0);
    zsock_t *manager = harness_client (fx, "deploy-manager", NULL);
    s_register (manager, "reg-1", true);
    zsock_t *qa = harness_client (fx, "qa", NULL);
    s_register (qa, "qa-reg", false);

    harness_deploy_request (qa, "prod-1", AIRLOCK__ENVIRONMENT__ENV_PRODUCTION);
    al_envelope_t *denied = harness_expect (qa, AIRLOCK__ENVELOPE__BODY_DENIED, 10000);
    assert_non_null (denied);
    assert_int_equal (denied->denied->code, AIRLOCK__DENY_CODE__DENY_NOT_PERMITTED);
    assert_non_null (strstr (denied->denied->reason, "qa may not send DeployRequest in production"));
    uint64_t sequence = denied->denied->audit_sequence;
    assert_true (sequence > 0);
    al_codec_free (&denied);

    //  The audit row says who, what and why.
    al_store_options_t options = { .read_only = true };
    char error [512];
    al_store_t *store = al_store_open (NULL, fx->database, &options, error, sizeof error);
    assert_non_null (store);
    al_store_event_t event;
    assert_int_equal (al_store_event_get (store, sequence, &event), AL_STORE_OK);
    assert_string_equal (event.sender, "qa");
    assert_string_equal (event.role, "qa");
    assert_string_equal (event.type, "DeployRequest");
    assert_string_equal (event.message_id, "prod-1");
    assert_string_equal (event.environment, "production");
    assert_int_equal (event.decision, AL_STORE_DENIED);
    assert_non_null (strstr (event.reason, "qa may not send DeployRequest in production"));
    al_store_destroy (&store);

    //  A retransmission gets the same outcome, and no second row.
    harness_deploy_request (qa, "prod-1", AIRLOCK__ENVIRONMENT__ENV_PRODUCTION);
    denied = harness_expect (qa, AIRLOCK__ENVELOPE__BODY_DENIED, 10000);
    assert_non_null (denied);
    assert_int_equal (denied->denied->audit_sequence, sequence);
    al_codec_free (&denied);
    assert_int_equal (harness_count_rows (fx, "DeployRequest", "qa", NULL), 1);
    assert_null (harness_expect (manager, AIRLOCK__ENVELOPE__BODY_DEPLOY_REQUEST, 300));

    zsock_destroy (&qa);
    zsock_destroy (&manager);
    assert_int_equal (harness_broker_signal (fx, SIGTERM), 0);
    harness_destroy (&fx);
}

//  ---- durable delivery -------------------------------------------------------------

static void
test_delivered_when_deploy_manager_returns (void **state)
{
    (void) state;
    harness_t *fx = harness_new (NULL, s_identities, S_IDENTITY_COUNT);
    assert_int_equal (harness_broker_start (fx), 0);
    zsock_t *orchestrator = harness_client (fx, "orchestrator", NULL);
    s_register (orchestrator, "reg-o", false);
    const char *ids [] = { "d-1", "d-2", "d-3" };
    for (size_t i = 0; i < 3; i++) {
        harness_deploy_request (orchestrator, ids [i], AIRLOCK__ENVIRONMENT__ENV_STAGING);
        al_envelope_t *ack = harness_expect (orchestrator, AIRLOCK__ENVELOPE__BODY_ACK, 10000);
        assert_non_null (ack);
        assert_string_equal (ack->ack->acked_message_id, ids [i]);
        assert_false (ack->ack->duplicate);
        al_codec_free (&ack);
    }
    //  A retransmission is answered with the original outcome.
    harness_deploy_request (orchestrator, "d-2", AIRLOCK__ENVIRONMENT__ENV_STAGING);
    al_envelope_t *ack = harness_expect (orchestrator, AIRLOCK__ENVELOPE__BODY_ACK, 10000);
    assert_non_null (ack);
    assert_true (ack->ack->duplicate);
    al_codec_free (&ack);

    //  The broker restarts while deploy-manager is still away.
    assert_int_equal (harness_broker_signal (fx, SIGTERM), 0);
    assert_int_equal (harness_broker_start (fx), 0);

    //  deploy-manager comes, takes one delivery without acknowledging it, and goes.
    zsock_t *manager = harness_client (fx, "deploy-manager", NULL);
    s_register (manager, "reg-m1", true);
    al_envelope_t *first = harness_expect (manager, AIRLOCK__ENVELOPE__BODY_DEPLOY_REQUEST, 10000);
    assert_non_null (first);
    al_codec_free (&first);
    zsock_destroy (&manager);

    //  It comes back: every message is delivered, stamped with the real sender.
    manager = harness_client (fx, "deploy-manager", NULL);
    s_register (manager, "reg-m2", true);
    bool seen [3] = { false, false, false };
    for (int received = 0; received < 3; ) {
        al_envelope_t *delivery = harness_expect (manager, AIRLOCK__ENVELOPE__BODY_DEPLOY_REQUEST, 10000);
        assert_non_null (delivery);
        assert_string_equal (delivery->sender->identity, "orchestrator");
        assert_string_equal (delivery->sender->role, "orchestrator");
        assert_true (delivery->delivery_id > 0);
        for (size_t i = 0; i < 3; i++)
            if (strcmp (delivery->message_id, ids [i]) == 0 && !seen [i]) {
                seen [i] = true;
                received++;
            }
        al_envelope_t reply = AIRLOCK__ENVELOPE__INIT;
        Airlock__DeliveryAck body = AIRLOCK__DELIVERY_ACK__INIT;
        char id [32];
        snprintf (id, sizeof id, "dack-%llu", (unsigned long long) delivery->delivery_id);
        body.delivery_id = delivery->delivery_id;
        reply.message_id = id;
        reply.body_case = AIRLOCK__ENVELOPE__BODY_DELIVERY_ACK;
        reply.delivery_ack = &body;
        assert_int_equal (harness_send (manager, &reply), 0);
        al_codec_free (&delivery);
    }
    assert_int_equal (harness_wait_rows (fx, "DeliveryAck", "deploy-manager", NULL, 3, 10000), 3);

    //  Acknowledged deliveries are not delivered again.
    zsock_destroy (&manager);
    manager = harness_client (fx, "deploy-manager", NULL);
    s_register (manager, "reg-m3", true);
    assert_null (harness_expect (manager, AIRLOCK__ENVELOPE__BODY_DEPLOY_REQUEST, 1000));

    zsock_destroy (&manager);
    zsock_destroy (&orchestrator);
    assert_int_equal (harness_broker_signal (fx, SIGTERM), 0);
    harness_destroy (&fx);
}

//  The broker unpacks an envelope into its batch item's arena when it fits there and
//  with malloc when not (al_broker_batch.c, s_unpack): both are judged, audited and
//  delivered alike, and one that does not validate is denied with the codec's words.
static void
test_envelopes_in_and_beyond_the_arena (void **state)
{
    (void) state;
    zsock_t *orchestrator, *manager;
    harness_t *fx = harness_start_pair (s_identities, S_IDENTITY_COUNT, &orchestrator, &manager);
    assert_non_null (fx);

    //  A URI of 2,000 bytes: the unpacked envelope cannot fit AL_BROKER_ARENA_SIZE.
    static char uri [2001];
    memcpy (uri, "oci://registry.example/", 23);
    memset (uri + 23, 'a', sizeof uri - 24);
    const char *uris [] = { "file:///artifacts/small.tar.gz", uri };
    const char *ids [] = { "small-1", "big-1" };
    for (size_t i = 0; i < 2; i++) {
        al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
        Airlock__DeployRequest body = AIRLOCK__DEPLOY_REQUEST__INIT;
        body.service = (char *) "demo";
        body.version = (char *) "v1.2.3";
        body.artifact_uri = (char *) uris [i];
        body.artifact_sha256 = (char *) "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        body.strategy = AIRLOCK__STRATEGY__STRATEGY_ROLLING;
        body.instances = 2;
        body.deployment_type = AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD;
        envelope.message_id = (char *) ids [i];
        envelope.deployment_id = (char *) "dep-1";
        envelope.environment = AIRLOCK__ENVIRONMENT__ENV_STAGING;
        envelope.body_case = AIRLOCK__ENVELOPE__BODY_DEPLOY_REQUEST;
        envelope.deploy_request = &body;
        assert_int_equal (harness_send (orchestrator, &envelope), 0);
        al_envelope_t *ack = harness_expect (orchestrator, AIRLOCK__ENVELOPE__BODY_ACK, 10000);
        assert_non_null (ack);
        assert_string_equal (ack->ack->acked_message_id, ids [i]);
        al_codec_free (&ack);
        al_envelope_t *delivery = harness_expect (manager, AIRLOCK__ENVELOPE__BODY_DEPLOY_REQUEST, 10000);
        assert_non_null (delivery);
        assert_string_equal (delivery->message_id, ids [i]);
        assert_string_equal (delivery->deploy_request->artifact_uri, uris [i]);
        assert_string_equal (delivery->sender->identity, "orchestrator");
        al_codec_free (&delivery);

        //  The same body with a strategy no enum declares (packed raw: the codec would
        //  refuse to pack it) decodes into the arena and fails validation there.
        char bad_id [32];
        snprintf (bad_id, sizeof bad_id, "bad-%zu", i);
        envelope.message_id = bad_id;
        body.strategy = (Airlock__Strategy) 99;
        uint8_t *bytes = malloc (airlock__envelope__get_packed_size (&envelope));
        assert_non_null (bytes);
        size_t size = airlock__envelope__pack (&envelope, bytes);
        assert_int_equal (zmq_send (zsock_resolve (orchestrator), bytes, size, 0), (int) size);
        free (bytes);
        al_envelope_t *denied = harness_expect (orchestrator, AIRLOCK__ENVELOPE__BODY_DENIED, 10000);
        assert_non_null (denied);
        assert_string_equal (denied->denied->denied_message_id, "");     // not trusted: it did not validate
        assert_int_equal (denied->denied->code, AIRLOCK__DENY_CODE__DENY_MALFORMED);
        assert_non_null (strstr (denied->denied->reason, "deploy_request.strategy: 99 is not a valid"));
        al_codec_free (&denied);
    }
    assert_int_equal (harness_wait_rows (fx, "DeployRequest", "orchestrator", NULL, 2, 10000), 2);
    assert_int_equal (harness_wait_rows (fx, "malformed", "orchestrator", "is not a valid", 2, 10000), 2);
    zsock_destroy (&manager);
    zsock_destroy (&orchestrator);
    assert_int_equal (harness_broker_signal (fx, SIGTERM), 0);
    harness_destroy (&fx);
}

//  ---- limits -----------------------------------------------------------------------

static void
test_oversized_message_drops_peer (void **state)
{
    (void) state;
    harness_options_t options = { .max_message_bytes = 4096 };
    harness_t *fx = harness_new (&options, s_identities, S_IDENTITY_COUNT);
    assert_int_equal (harness_broker_start (fx), 0);
    zsock_t *qa = harness_client (fx, "qa", NULL);
    s_register (qa, "qa-reg", false);
    //  Watch qa's own connection.
    assert_int_equal (zmq_socket_monitor (zsock_resolve (qa), "inproc://test-qa-monitor",
                                          ZMQ_EVENT_DISCONNECTED), 0);
    zsock_t *monitor = zsock_new (ZMQ_PAIR);
    assert_int_equal (zsock_connect (monitor, "inproc://test-qa-monitor"), 0);

    char *big = (char *) malloc (6000);
    assert_non_null (big);
    memset (big, 'x', 6000);
    assert_int_equal (zmq_send (zsock_resolve (qa), big, 6000, 0), 6000);
    free (big);

    //  The answer comes first, then the connection ends.
    al_envelope_t *denied = harness_expect (qa, AIRLOCK__ENVELOPE__BODY_DENIED, 10000);
    assert_non_null (denied);
    assert_int_equal (denied->denied->code, AIRLOCK__DENY_CODE__DENY_TOO_LARGE);
    al_codec_free (&denied);
    zsock_set_rcvtimeo (monitor, 10000);
    zmsg_t *event = zmsg_recv (monitor);
    assert_non_null (event);
    uint16_t type;
    memcpy (&type, zframe_data (zmsg_first (event)), 2);
    assert_int_equal (type, ZMQ_EVENT_DISCONNECTED);
    zmsg_destroy (&event);
    assert_int_equal (harness_wait_rows (fx, "Oversized", "qa", "above max_message_bytes (4096)", 1, 10000), 1);

    zmq_socket_monitor (zsock_resolve (qa), NULL, 0);
    zsock_destroy (&monitor);
    zsock_destroy (&qa);
    assert_int_equal (harness_broker_signal (fx, SIGTERM), 0);
    harness_destroy (&fx);
}

//  A client that retransmits until answered must get its answer: every oversized
//  attempt, on a fresh connection each time, receives Denied TOO_LARGE before the broker
//  drops the connection (it used to be cut off before the reply left: 0-3 of 8 arrived).
#define S_OVERSIZE_TRIES 20

static void
s_oversize_answered (bool tcp)
{
    harness_options_t options = { .max_message_bytes = 4096, .tcp = tcp };
    harness_t *fx = harness_new (&options, s_identities, S_IDENTITY_COUNT);
    assert_int_equal (harness_broker_start (fx), 0);
    char *big = (char *) malloc (6000);
    assert_non_null (big);
    memset (big, 'x', 6000);
    int answered = 0, tries = 0;
    for (tries = 0; tries < S_OVERSIZE_TRIES; tries++) {
        zsock_t *qa = harness_client (fx, "qa", NULL);
        char id [32];
        snprintf (id, sizeof id, "qa-reg-%d", tries);
        s_register (qa, id, false);
        //  A message right behind the oversized one, on the same connection: the
        //  connection is closing, so it is neither audited nor answered.
        assert_int_equal (zmq_send (zsock_resolve (qa), big, 6000, 0), 6000);
        snprintf (id, sizeof id, "behind-%d", tries);
        harness_deploy_request (qa, id, AIRLOCK__ENVIRONMENT__ENV_STAGING);
        al_envelope_t *denied = harness_expect (qa, AIRLOCK__ENVELOPE__BODY_DENIED, 10000);
        bool ok = denied && denied->denied->code == AIRLOCK__DENY_CODE__DENY_TOO_LARGE
               && denied->denied->audit_sequence > 0;
        al_codec_free (&denied);
        zsock_destroy (&qa);
        if (!ok)
            break;              // one miss is enough: no need to wait for the others
        answered++;
    }
    free (big);
    long oversized = harness_wait_rows (fx, "Oversized", "qa", "above max_message_bytes (4096)", answered, 10000);
    long behind = harness_count_rows (fx, "DeployRequest", "qa", NULL);
    int exit_status = harness_broker_signal (fx, SIGTERM);
    harness_destroy (&fx);
    if (answered != S_OVERSIZE_TRIES)
        fail_msg ("try %d of %d got no Denied TOO_LARGE", tries + 1, S_OVERSIZE_TRIES);
    assert_int_equal (oversized, S_OVERSIZE_TRIES);
    //  Nothing sent on a closing connection is audited (nor, then, acknowledged).
    assert_int_equal (behind, 0);
    assert_int_equal (exit_status, 0);
}

static void
test_oversized_answered_every_time_tcp (void **state)
{
    (void) state;
    s_oversize_answered (true);
}

static void
test_oversized_answered_every_time_ipc (void **state)
{
    (void) state;
    s_oversize_answered (false);
}

static void
test_rate_limit_denied_and_audited (void **state)
{
    (void) state;
    harness_options_t options = { .rate_per_second = 1, .rate_burst = 3 };
    harness_t *fx = harness_new (&options, s_identities, S_IDENTITY_COUNT);
    assert_int_equal (harness_broker_start (fx), 0);
    zsock_t *orchestrator = harness_client (fx, "orchestrator", NULL);
    s_register (orchestrator, "reg-o", false);      // token 1 of 3
    char id [32];
    for (int i = 0; i < 6; i++) {
        snprintf (id, sizeof id, "burst-%d", i);
        harness_deploy_request (orchestrator, id, AIRLOCK__ENVIRONMENT__ENV_STAGING);
    }
    int acks = 0, limited = 0;
    char limited_id [32] = "";
    for (int i = 0; i < 6; i++) {
        al_envelope_t *reply = harness_recv (orchestrator, 10000);
        assert_non_null (reply);
        if (reply->body_case == AIRLOCK__ENVELOPE__BODY_ACK)
            acks++;
        else
        if (reply->body_case == AIRLOCK__ENVELOPE__BODY_DENIED
        &&  reply->denied->code == AIRLOCK__DENY_CODE__DENY_RATE_LIMITED) {
            limited++;
            snprintf (limited_id, sizeof limited_id, "%s", reply->denied->denied_message_id);
        }
        al_codec_free (&reply);
    }
    assert_true (acks >= 1 && acks <= 3);
    assert_int_equal (acks + limited, 6);
    assert_int_equal (harness_count_rows (fx, "DeployRequest", "orchestrator", "rate limit"), limited);
    //  A refusal for rate is transient: the same message, retried once the bucket has a
    //  token again, is judged afresh (not answered with the old denial).
    zclock_sleep (1500);
    assert_true (limited_id [0]);
    harness_deploy_request (orchestrator, limited_id, AIRLOCK__ENVIRONMENT__ENV_STAGING);
    al_envelope_t *retry = harness_recv (orchestrator, 10000);
    assert_non_null (retry);
    assert_int_equal (retry->body_case, AIRLOCK__ENVELOPE__BODY_ACK);
    assert_false (retry->ack->duplicate);
    al_codec_free (&retry);
    zsock_destroy (&orchestrator);
    assert_int_equal (harness_broker_signal (fx, SIGTERM), 0);
    harness_destroy (&fx);
}

//  ---- reload -----------------------------------------------------------------------

static void
test_sighup_broken_policy_keeps_old (void **state)
{
    (void) state;
    harness_t *fx = harness_new (NULL, s_identities, S_IDENTITY_COUNT);
    assert_int_equal (harness_broker_start (fx), 0);
    char path [400];
    snprintf (path, sizeof path, "%s/roles.yaml", fx->policy_dir);
    FILE *file = fopen (path, "a");
    assert_non_null (file);
    fprintf (file, "this_is_not_a_policy_key: [\n");
    fclose (file);
    assert_int_equal (harness_broker_signal (fx, SIGHUP), 0);
    assert_int_equal (harness_wait_rows (fx, "PolicyReloadFailed", "broker", "kept policy digest", 1, 10000), 1);
    assert_int_equal (harness_count_rows (fx, "PolicyLoaded", NULL, NULL), 1);

    //  The old policy still decides.
    zsock_t *manager = harness_client (fx, "deploy-manager", NULL);
    s_register (manager, "reg-1", true);
    zsock_t *orchestrator = harness_client (fx, "orchestrator", NULL);
    s_register (orchestrator, "reg-o", false);
    harness_deploy_request (orchestrator, "after-reload", AIRLOCK__ENVIRONMENT__ENV_STAGING);
    al_envelope_t *delivery = harness_expect (manager, AIRLOCK__ENVELOPE__BODY_DEPLOY_REQUEST, 10000);
    assert_non_null (delivery);
    al_codec_free (&delivery);

    zsock_destroy (&manager);
    zsock_destroy (&orchestrator);
    assert_int_equal (harness_broker_signal (fx, SIGTERM), 0);
    harness_destroy (&fx);
}

//  ---- crash recovery ---------------------------------------------------------------

#define S_SENDERS 4
#define S_PER_SENDER 2500
#define S_WINDOW 200

typedef struct {
    harness_t *fx;
    const char *identity;
    int index;
    bool acked [S_PER_SENDER];
    size_t acked_count;
    volatile size_t *total_acked;
    pthread_mutex_t *lock;
    bool done;
} s_sender_t;

static void *
s_sender_run (void *arg)
{
    s_sender_t *self = (s_sender_t *) arg;
    zsock_t *client = harness_client (self->fx, self->identity, NULL);
    bool sent [S_PER_SENDER] = { false };
    int next = 0;
    int64_t last_progress = zclock_mono ();
    int64_t deadline = zclock_mono () + 120000;
    char id [32];
    while (self->acked_count < S_PER_SENDER && zclock_mono () < deadline) {
        //  Keep a window of unacknowledged messages in flight.
        int in_flight = 0;
        for (int i = 0; i < next; i++)
            if (sent [i] && !self->acked [i])
                in_flight++;
        while (next < S_PER_SENDER && in_flight < S_WINDOW) {
            snprintf (id, sizeof id, "m-%d-%d", self->index, next);
            harness_deploy_request (client, id, AIRLOCK__ENVIRONMENT__ENV_STAGING);
            sent [next++] = true;
            in_flight++;
        }
        al_envelope_t *reply = harness_recv (client, 100);
        if (reply) {
            if (reply->body_case == AIRLOCK__ENVELOPE__BODY_ACK) {
                int sender = -1, number = -1;
                if (sscanf (reply->ack->acked_message_id, "m-%d-%d", &sender, &number) == 2
                &&  sender == self->index && number >= 0 && number < S_PER_SENDER && !self->acked [number]) {
                    self->acked [number] = true;
                    self->acked_count++;
                    pthread_mutex_lock (self->lock);
                    (*self->total_acked)++;
                    pthread_mutex_unlock (self->lock);
                    last_progress = zclock_mono ();
                }
            }
            al_codec_free (&reply);
        }
        else
        if (zclock_mono () - last_progress > 1000) {
            //  No progress: the broker is gone or restarted. Reconnect and retransmit
            //  everything not acknowledged.
            zsock_destroy (&client);
            client = harness_client (self->fx, self->identity, NULL);
            for (int i = 0; i < next; i++)
                if (!self->acked [i]) {
                    snprintf (id, sizeof id, "m-%d-%d", self->index, i);
                    harness_deploy_request (client, id, AIRLOCK__ENVIRONMENT__ENV_STAGING);
                }
            last_progress = zclock_mono ();
        }
    }
    zsock_destroy (&client);
    self->done = true;
    return NULL;
}

typedef struct {
    harness_t *fx;
    bool got [S_SENDERS][S_PER_SENDER];
    size_t distinct;
    volatile bool stop;
    bool bad_sender;
} s_receiver_t;

static void *
s_receiver_run (void *arg)
{
    s_receiver_t *self = (s_receiver_t *) arg;
    zsock_t *client = harness_client (self->fx, "deploy-manager", NULL);
    harness_register (client, "reg-0", true);
    int64_t last_message = zclock_mono ();
    int64_t last_heartbeat = 0;
    uint64_t registrations = 0, heartbeats = 0, broker_heartbeat = 0;
    char id [48];
    while (!self->stop) {
        int64_t now = zclock_mono ();
        if (now - last_heartbeat > 100) {
            al_envelope_t beat = AIRLOCK__ENVELOPE__INIT;
            Airlock__Heartbeat body = AIRLOCK__HEARTBEAT__INIT;
            body.sequence = ++heartbeats;
            snprintf (id, sizeof id, "hb-%llu", (unsigned long long) heartbeats);
            beat.message_id = id;
            beat.body_case = AIRLOCK__ENVELOPE__BODY_HEARTBEAT;
            beat.heartbeat = &body;
            harness_send (client, &beat);
            last_heartbeat = now;
        }
        if (now - last_message > 1000) {
            //  Silence: the broker restarted. Reconnect and register again.
            zsock_destroy (&client);
            client = harness_client (self->fx, "deploy-manager", NULL);
            snprintf (id, sizeof id, "reg-%llu", (unsigned long long) ++registrations);
            harness_register (client, id, true);
            last_message = now;
        }
        zmq_pollitem_t item = { zsock_resolve (client), 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, 50) <= 0)
            continue;
        zmq_msg_t msg;
        zmq_msg_init (&msg);
        if (zmq_msg_recv (&msg, zsock_resolve (client), 0) == -1) {
            zmq_msg_close (&msg);
            continue;
        }
        last_message = zclock_mono ();
        al_envelope_t *envelope = NULL;
        char error [256];
        if (al_codec_unpack ((const uint8_t *) zmq_msg_data (&msg), zmq_msg_size (&msg), 1 << 20,
                             &envelope, error, sizeof error) == AL_CODEC_OK
        &&  envelope->body_case == AIRLOCK__ENVELOPE__BODY_HEARTBEAT) {
            //  The broker's heartbeat sequence restarts with the broker: register again
            //  so that it knows this connection takes deliveries.
            if (envelope->heartbeat->sequence <= broker_heartbeat) {
                snprintf (id, sizeof id, "reg-%llu", (unsigned long long) ++registrations);
                harness_register (client, id, true);
            }
            broker_heartbeat = envelope->heartbeat->sequence;
        }
        else
        if (envelope && envelope->body_case == AIRLOCK__ENVELOPE__BODY_DEPLOY_REQUEST) {
            int sender = -1, number = -1;
            if (!envelope->sender || !envelope->sender->identity
            ||  strncmp (envelope->sender->identity, "orchestrator-", 13) != 0)
                self->bad_sender = true;
            if (sscanf (envelope->message_id, "m-%d-%d", &sender, &number) == 2
            &&  sender >= 0 && sender < S_SENDERS && number >= 0 && number < S_PER_SENDER
            &&  !self->got [sender][number]) {
                self->got [sender][number] = true;
                self->distinct++;
            }
            al_envelope_t reply = AIRLOCK__ENVELOPE__INIT;
            Airlock__DeliveryAck body = AIRLOCK__DELIVERY_ACK__INIT;
            body.delivery_id = envelope->delivery_id;
            snprintf (id, sizeof id, "dack-%llu", (unsigned long long) envelope->delivery_id);
            reply.message_id = id;
            reply.body_case = AIRLOCK__ENVELOPE__BODY_DELIVERY_ACK;
            reply.delivery_ack = &body;
            harness_send (client, &reply);
        }
        al_codec_free (&envelope);
        zmq_msg_close (&msg);
    }
    zsock_destroy (&client);
    return NULL;
}

static void
test_kill9_during_stream_loses_nothing (void **state)
{
    (void) state;
    harness_identity_t identities [S_SENDERS + 1] = {
        { "orchestrator-0", "orchestrator" }, { "orchestrator-1", "orchestrator" },
        { "orchestrator-2", "orchestrator" }, { "orchestrator-3", "orchestrator" },
        { "deploy-manager", "deploy-manager" },
    };
    harness_options_t options = { .heartbeat_ms = 300 };
    harness_t *fx = harness_new (&options, identities, S_SENDERS + 1);
    assert_int_equal (harness_broker_start (fx), 0);

    volatile size_t total_acked = 0;
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    s_receiver_t *receiver = (s_receiver_t *) calloc (1, sizeof *receiver);
    assert_non_null (receiver);
    receiver->fx = fx;
    pthread_t receiver_thread;
    assert_int_equal (pthread_create (&receiver_thread, NULL, s_receiver_run, receiver), 0);
    s_sender_t *senders = (s_sender_t *) calloc (S_SENDERS, sizeof *senders);
    assert_non_null (senders);
    pthread_t threads [S_SENDERS];
    for (int i = 0; i < S_SENDERS; i++) {
        senders [i].fx = fx;
        senders [i].identity = identities [i].identity;
        senders [i].index = i;
        senders [i].total_acked = &total_acked;
        senders [i].lock = &lock;
        assert_int_equal (pthread_create (&threads [i], NULL, s_sender_run, &senders [i]), 0);
    }
    //  Kill -9 mid-stream, then restart.
    int64_t deadline = zclock_mono () + 60000;
    size_t seen = 0;
    while (zclock_mono () < deadline) {
        pthread_mutex_lock (&lock);
        seen = total_acked;
        pthread_mutex_unlock (&lock);
        if (seen >= 3000)
            break;
        zclock_sleep (5);
    }
    assert_true (seen >= 3000);
    assert_int_equal (harness_broker_signal (fx, SIGKILL), 128 + SIGKILL);
    pthread_mutex_lock (&lock);
    size_t acked_at_kill = total_acked;
    pthread_mutex_unlock (&lock);
    assert_true (acked_at_kill < S_SENDERS * S_PER_SENDER);
    assert_int_equal (harness_broker_start (fx), 0);

    for (int i = 0; i < S_SENDERS; i++)
        pthread_join (threads [i], NULL);
    for (int i = 0; i < S_SENDERS; i++)
        assert_int_equal (senders [i].acked_count, S_PER_SENDER);
    //  Every message reaches deploy-manager.
    deadline = zclock_mono () + 60000;
    while (receiver->distinct < S_SENDERS * S_PER_SENDER && zclock_mono () < deadline)
        zclock_sleep (20);
    assert_int_equal (receiver->distinct, S_SENDERS * S_PER_SENDER);
    assert_false (receiver->bad_sender);
    //  And every delivery is eventually acknowledged (redelivered after the crash).
    al_store_options_t read_only = { .read_only = true };
    char error [512];
    size_t pending = 1;
    deadline = zclock_mono () + 30000;
    while (pending && zclock_mono () < deadline) {
        al_store_t *store = al_store_open (NULL, fx->database, &read_only, error, sizeof error);
        assert_non_null (store);
        uint64_t sequences [16];
        assert_int_equal (al_store_delivery_pending (store, "deploy-manager", 0, sequences, 16, &pending), AL_STORE_OK);
        al_store_destroy (&store);
        if (pending)
            zclock_sleep (100);
    }
    assert_int_equal (pending, 0);
    receiver->stop = true;
    pthread_join (receiver_thread, NULL);
    assert_int_equal (harness_broker_signal (fx, SIGTERM), 0);

    //  The log holds every acknowledged message exactly once, and its chain verifies
    //  (with the broker's signed checkpoint).
    al_store_t *store = al_store_open (NULL, fx->database, &read_only, error, sizeof error);
    assert_non_null (store);
    static unsigned char rows [S_SENDERS][S_PER_SENDER];
    memset (rows, 0, sizeof rows);
    al_store_iter_t *iter = al_store_iter_new (store, 1);
    assert_non_null (iter);
    al_store_event_t event;
    size_t others = 0;
    while (al_store_iter_next (iter, &event) == AL_STORE_OK) {
        if (strcmp (event.type, "DeployRequest") != 0)
            continue;
        int sender = -1, number = -1;
        if (sscanf (event.message_id, "m-%d-%d", &sender, &number) == 2 && sender >= 0 && sender < S_SENDERS
        &&  number >= 0 && number < S_PER_SENDER) {
            char expected [32];
            snprintf (expected, sizeof expected, "orchestrator-%d", sender);
            if (strcmp (event.sender, expected) == 0 && event.decision == AL_STORE_ACCEPTED) {
                rows [sender][number]++;
                continue;
            }
        }
        others++;
    }
    al_store_iter_destroy (&iter);
    assert_int_equal (others, 0);
    for (int s = 0; s < S_SENDERS; s++)
        for (int n = 0; n < S_PER_SENDER; n++)
            if (rows [s][n] != 1)
                fail_msg ("m-%d-%d is in the log %d times", s, n, rows [s][n]);
    al_verify_report_t report;
    assert_int_equal (al_store_verify (store, fx->checkpoint_path, fx->checkpoint_public, &report), AL_STORE_OK);
    if (report.result != AL_VERIFY_OK)
        fail_msg ("verify: %s: %s", al_verify_result_name (report.result), report.reason);
    assert_true (report.checkpoint_checked);
    al_store_destroy (&store);
    free (senders);
    free (receiver);
    harness_destroy (&fx);
}

//  ---- the broker trusts only the head it wrote ----------------------------------------

//  An attacker with write access to the live database rewrites row `from` (its reason)
//  and recomputes every hash after it with the store's own encoding, in one transaction:
//  `audit verify` without a checkpoint passes afterwards. Returns the forged head.
static void
s_forge_live_log (harness_t *fx, uint64_t from, const char *reason, uint8_t forged_head [AL_STORE_HASH_SIZE])
{
    sqlite3 *db = NULL;
    assert_int_equal (sqlite3_open (fx->database, &db), SQLITE_OK);
    sqlite3_busy_timeout (db, 10000);
    assert_int_equal (sqlite3_exec (db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_stmt *stmt = NULL;
    uint8_t prev [AL_STORE_HASH_SIZE];
    assert_int_equal (sqlite3_prepare_v2 (db, "SELECT hash FROM events WHERE seq = ?", -1, &stmt, NULL), SQLITE_OK);
    sqlite3_bind_int64 (stmt, 1, (sqlite3_int64) from - 1);
    assert_int_equal (sqlite3_step (stmt), SQLITE_ROW);
    assert_int_equal (sqlite3_column_bytes (stmt, 0), AL_STORE_HASH_SIZE);
    memcpy (prev, sqlite3_column_blob (stmt, 0), AL_STORE_HASH_SIZE);
    sqlite3_finalize (stmt);
    sqlite3_stmt *update = NULL;
    assert_int_equal (sqlite3_prepare_v2 (db, "UPDATE events SET reason = ?1, hash = ?2 WHERE seq = ?3", -1,
                                          &update, NULL), SQLITE_OK);
    assert_int_equal (sqlite3_prepare_v2 (db, "SELECT seq, time_ms, sender, role, type, message_id, deployment_id, "
                                              "environment, decision, reason, envelope FROM events WHERE seq = ?",
                                          -1, &stmt, NULL), SQLITE_OK);
    for (uint64_t seq = from; ; seq++) {
        sqlite3_bind_int64 (stmt, 1, (sqlite3_int64) seq);
        if (sqlite3_step (stmt) != SQLITE_ROW) {
            sqlite3_reset (stmt);
            break;
        }
        al_store_event_t event = {
            .sequence = seq, .time_ms = (uint64_t) sqlite3_column_int64 (stmt, 1),
            .sender = (const char *) sqlite3_column_text (stmt, 2),
            .role = (const char *) sqlite3_column_text (stmt, 3),
            .type = (const char *) sqlite3_column_text (stmt, 4),
            .message_id = (const char *) sqlite3_column_text (stmt, 5),
            .deployment_id = (const char *) sqlite3_column_text (stmt, 6),
            .environment = (const char *) sqlite3_column_text (stmt, 7),
            .decision = (al_store_decision_t) sqlite3_column_int (stmt, 8),
            .reason = seq == from? reason: (const char *) sqlite3_column_text (stmt, 9),
            .envelope = (const uint8_t *) sqlite3_column_blob (stmt, 10),
            .envelope_size = (size_t) sqlite3_column_bytes (stmt, 10),
        };
        size_t size = al_store_row_encode (&event, NULL, 0);
        uint8_t *row = (uint8_t *) malloc (size);
        assert_non_null (row);
        assert_int_equal (al_store_row_encode (&event, row, size), size);
        al_store_chain_hash (prev, row, size, prev);
        free (row);
        sqlite3_bind_text (update, 1, event.reason, -1, SQLITE_TRANSIENT);
        sqlite3_bind_blob (update, 2, prev, AL_STORE_HASH_SIZE, SQLITE_TRANSIENT);
        sqlite3_bind_int64 (update, 3, (sqlite3_int64) seq);
        sqlite3_reset (stmt);
        assert_int_equal (sqlite3_step (update), SQLITE_DONE);
        sqlite3_reset (update);
    }
    sqlite3_finalize (stmt);
    sqlite3_finalize (update);
    assert_int_equal (sqlite3_exec (db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal (sqlite3_close (db), SQLITE_OK);
    memcpy (forged_head, prev, AL_STORE_HASH_SIZE);
}

static char *
s_read_text (const char *path)
{
    FILE *file = fopen (path, "r");
    if (!file)
        return NULL;
    char *text = (char *) calloc (1, 65536);
    assert_non_null (text);
    size_t size = fread (text, 1, 65535, file);
    text [size] = '\0';
    fclose (file);
    return text;
}

static void
test_log_changed_under_the_broker_stops_it (void **state)
{
    (void) state;
    //  A checkpoint after every batch: the next one would vouch for whatever head it saw.
    harness_options_t options = { .checkpoint_events = 1 };
    harness_t *fx = harness_new (&options, s_identities, S_IDENTITY_COUNT);
    assert_int_equal (harness_broker_start (fx), 0);
    zsock_t *orchestrator = harness_client (fx, "orchestrator", NULL);
    s_register (orchestrator, "reg-o", false);
    uint64_t first = 0, last = 0;
    char id [32];
    for (int i = 0; i < 3; i++) {
        snprintf (id, sizeof id, "before-edit-%d", i);
        harness_deploy_request (orchestrator, id, AIRLOCK__ENVIRONMENT__ENV_STAGING);
        al_envelope_t *ack = harness_expect (orchestrator, AIRLOCK__ENVELOPE__BODY_ACK, 10000);
        assert_non_null (ack);
        assert_string_equal (ack->ack->acked_message_id, id);
        last = ack->ack->audit_sequence;
        first = first? first: last;
        al_codec_free (&ack);
    }
    //  The broker's checkpoint covers what it wrote.
    al_verify_report_t report;
    int64_t deadline = zclock_mono () + 20000;
    do {
        zclock_sleep (50);
        memset (&report, 0, sizeof report);
        al_store_verify_path (NULL, fx->database, fx->checkpoint_path, fx->checkpoint_public, &report);
    } while ((report.result != AL_VERIFY_OK || report.checkpoint_rows < last) && zclock_mono () < deadline);
    assert_int_equal (report.result, AL_VERIFY_OK);
    long rows_before = harness_count_rows (fx, NULL, NULL, NULL);

    //  The live log is rewritten: the first deploy request now reads as approved.
    uint8_t forged [AL_STORE_HASH_SIZE];
    s_forge_live_log (fx, first, "approved by the CTO in person", forged);
    assert_int_equal (al_store_verify_path (NULL, fx->database, NULL, NULL, &report), AL_STORE_OK);
    assert_int_equal (report.result, AL_VERIFY_OK);

    //  The next message finds it: no Ack, the broker exits non-zero.
    harness_deploy_request (orchestrator, "after-edit", AIRLOCK__ENVIRONMENT__ENV_STAGING);
    int exit_status = harness_broker_wait_exit (fx, 20000);
    al_envelope_t *ack = harness_expect (orchestrator, AIRLOCK__ENVELOPE__BODY_ACK, 1000);
    bool acked = ack != NULL;
    al_codec_free (&ack);
    zsock_destroy (&orchestrator);
    long rows_after = harness_count_rows (fx, NULL, NULL, NULL);
    long after_edit = harness_count_rows (fx, "DeployRequest", "orchestrator", NULL);
    //  No checkpoint vouches for the forged head: verify with the broker's checkpoint
    //  names the rewrite.
    memset (&report, 0, sizeof report);
    al_store_verify_path (NULL, fx->database, fx->checkpoint_path, fx->checkpoint_public, &report);
    char *checkpoint = s_read_text (fx->checkpoint_path);
    char forged_hex [AL_STORE_HASH_SIZE * 2 + 1];
    for (size_t i = 0; i < AL_STORE_HASH_SIZE; i++)
        snprintf (forged_hex + 2 * i, 3, "%02x", forged [i]);
    //  The reason is in the incident file beside the database.
    char error [512];
    al_config_t *config = al_config_load (fx->config_path, error, sizeof error);
    assert_non_null (config);
    char *incident_path = al_broker_incident_path (config);
    char *incident = incident_path? s_read_text (incident_path): NULL;
    free (incident_path);
    al_config_destroy (&config);
    if (exit_status == -1)
        harness_broker_signal (fx, SIGKILL);
    harness_destroy (&fx);

    assert_false (acked);
    assert_int_equal (exit_status, 1);         // broker_under_test: al_broker_run failed
    assert_int_equal (rows_after, rows_before);
    assert_int_equal (after_edit, 3);
    assert_int_equal (report.result, AL_VERIFY_CHECKPOINT_MISMATCH);
    assert_non_null (checkpoint);
    assert_null (strstr (checkpoint, forged_hex));
    assert_non_null (incident);
    assert_non_null (strstr (incident, "AUDIT LOG CHANGED UNDER THE BROKER"));
    assert_non_null (strstr (incident, forged_hex));
    free (checkpoint);
    free (incident);
}

//  Threads of this process.
static size_t
s_thread_count (void)
{
    size_t count = 0;
    DIR *tasks = opendir ("/proc/self/task");
    assert_non_null (tasks);
    for (struct dirent *entry = readdir (tasks); entry; entry = readdir (tasks))
        if (entry->d_name [0] != '.')
            count++;
    closedir (tasks);
    return count;
}

//  The audit store's checkpoint policy (store/al_store_sqlite.c): commits never copy the
//  WAL into the database file themselves; a checkpointer thread beside the writer does,
//  once the WAL passes 1,000 pages. Here ~1,500 pages are committed (one fsync each) and
//  the database file must then grow on its own, with no further commit: with the
//  checkpointer broken nothing would copy the pages before 16,000. Every row survives a
//  reopen.
static void
test_wal_checkpointed_beside_the_writer (void **state)
{
    (void) state;
    char dir [] = "/tmp/al-test-walXXXXXX";
    assert_non_null (mkdtemp (dir));
    char path [256], wal [300];
    snprintf (path, sizeof path, "%s/audit.db", dir);
    snprintf (wal, sizeof wal, "%s-wal", path);
    char error [512] = "";
    size_t threads = s_thread_count ();
    al_store_t *store = al_store_open (NULL, path, NULL, error, sizeof error);
    assert_non_null (store);
    assert_int_equal (s_thread_count (), threads + 1);     // the checkpointer
    static uint8_t envelope [16384];
    for (size_t i = 0; i < sizeof envelope; i++)
        envelope [i] = (uint8_t) (i * 7 + 3);
    const int commits = 380;            // ~4 pages each
    for (int i = 0; i < commits; i++) {
        char id [32];
        snprintf (id, sizeof id, "m-%d", i);
        envelope [0] = (uint8_t) i;
        envelope [1] = (uint8_t) (i >> 8);
        al_store_event_t event = { .time_ms = 1700000000000ull + (uint64_t) i, .sender = "orchestrator",
                                   .role = "orchestrator", .type = "DeployRequest", .message_id = id,
                                   .decision = AL_STORE_ACCEPTED, .reason = "bench",
                                   .envelope = envelope, .envelope_size = sizeof envelope };
        al_store_append_result_t result;
        assert_int_equal (al_store_begin (store), AL_STORE_OK);
        assert_int_equal (al_store_append (store, &event, &result), AL_STORE_OK);
        assert_int_equal (al_store_commit (store), AL_STORE_OK);
    }
    //  Pages reach the database file without another commit (generous deadline: the
    //  machine is shared).
    struct stat info;
    off_t wanted = (off_t) 1000 * 4096;
    int64_t deadline = zclock_mono () + 60000;
    while (zclock_mono () < deadline && (stat (path, &info) != 0 || info.st_size < wanted))
        zclock_sleep (50);
    assert_int_equal (stat (path, &info), 0);
    assert_true (info.st_size >= wanted);
    assert_int_equal (stat (wal, &info), 0);
    assert_true (info.st_size > 0);         // the WAL was not wholly copied by a close
    al_store_destroy (&store);
    assert_int_equal (s_thread_count (), threads);
    store = al_store_open (NULL, path, NULL, error, sizeof error);
    assert_non_null (store);
    assert_int_equal (al_store_row_count (store), (uint64_t) commits);
    al_store_destroy (&store);
    char command [300];
    snprintf (command, sizeof command, "rm -rf '%s'", dir);
    assert_int_equal (system (command), 0);
}

int
main (void)
{
    zsys_init ();
    zsys_handler_set (NULL);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_start_status_and_policy_digest),
        cmocka_unit_test (test_pub_topics_sequences_and_subscriber_auth),
        cmocka_unit_test (test_unknown_key_null_client_and_garbage_reach_nobody),
        cmocka_unit_test (test_handshake_timeout_closed_and_audited),
        cmocka_unit_test (test_forged_metadata_is_ignored),
        cmocka_unit_test (test_qa_production_deploy_denied_and_audited),
        cmocka_unit_test (test_delivered_when_deploy_manager_returns),
        cmocka_unit_test (test_envelopes_in_and_beyond_the_arena),
        cmocka_unit_test (test_oversized_message_drops_peer),
        cmocka_unit_test (test_oversized_answered_every_time_tcp),
        cmocka_unit_test (test_oversized_answered_every_time_ipc),
        cmocka_unit_test (test_rate_limit_denied_and_audited),
        cmocka_unit_test (test_sighup_broken_policy_keeps_old),
        cmocka_unit_test (test_kill9_during_stream_loses_nothing),
        cmocka_unit_test (test_log_changed_under_the_broker_stops_it),
        cmocka_unit_test (test_wal_checkpointed_beside_the_writer),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
