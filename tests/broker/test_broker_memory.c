/*  test_broker_memory.c: what the broker does to hold less memory per connection
    leaves its behaviour as it was.

    1. It renews its ZAP handler to release libzmq's per-connection ZAP pipes
       (al_broker_auth.c): agents registered under an old handler keep working after it
       was closed, new agents are admitted by the fresh handler, an unknown key is still
       refused and audited, and the retired handlers were really closed.
    2. A peer's key and routing id live in storage sized to its routing id
       (al_broker_peers.c): clients that choose their own routing id, of 1 and of 255
       bytes (libzmq's largest), are answered and their messages delivered.

    The broker runs in this process (al_broker_run in a thread), so that the test can
    lower the renewal threshold (zap_renew_after, al_broker_int.h) and read how many
    handlers were closed. The clients are CURVE DEALERs with the harness's keys.
*/
#include "harness.h"
#include "broker/al_broker_int.h"
#include "base/al_config.h"
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#define S_AGENTS 12
#define S_RENEW_AFTER 3

static harness_identity_t s_identities [S_AGENTS];
static char s_names [S_AGENTS][16];

static void *
s_run (void *arg)
{
    al_broker_t *broker = (al_broker_t *) arg;
    al_broker_run (broker);
    return NULL;
}

//  A fixture (ipc://) with the given identities and a broker for its airlock.yaml, made in
//  this process and not yet running (the caller may adjust it, then runs s_run in a thread).
static al_broker_t *
s_broker_new (const harness_identity_t *identities, size_t count, harness_t **fx_p, al_config_t **config_p)
{
    harness_options_t options = { .tcp = false };
    *fx_p = harness_new (&options, identities, count);
    assert_non_null (*fx_p);
    char error [1024] = "";
    *config_p = al_config_load ((*fx_p)->config_path, error, sizeof error);
    if (!*config_p)
        fail_msg ("%s", error);
    al_broker_t *broker = al_broker_new (*config_p, error, sizeof error);
    if (!broker)
        fail_msg ("%s", error);
    return broker;
}

//  The broker (its thread joined), its configuration and the fixture, gone.
static void
s_broker_destroy (al_broker_t **broker_p, al_config_t **config_p, harness_t **fx_p)
{
    al_broker_destroy (broker_p);
    al_config_destroy (config_p);
    harness_destroy (fx_p);
}

//  Register and wait for the Ack (the connection and ZAP are then done).
static void
s_register (zsock_t *client, const char *message_id)
{
    assert_int_equal (harness_register_acked (client, message_id, false, 20000), 0);
}

//  The reactor thread writes zap_retired; this thread only polls it (relaxed atomic
//  load) until it reaches minimum, and asserts on it again after the join.
static size_t
s_wait_retired (al_broker_t *broker, size_t minimum, int timeout_ms)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    size_t retired = __atomic_load_n (&broker->zap_retired, __ATOMIC_RELAXED);
    while (retired < minimum && zclock_mono () < deadline) {
        zclock_sleep (20);
        retired = __atomic_load_n (&broker->zap_retired, __ATOMIC_RELAXED);
    }
    return retired;
}

static void
test_renewed_handler_keeps_agents_and_refuses_strangers (void **state)
{
    (void) state;
    for (size_t i = 0; i < S_AGENTS; i++) {
        snprintf (s_names [i], sizeof s_names [i], "agent-%zu", i);
        s_identities [i] = (harness_identity_t) { s_names [i], "orchestrator" };
    }
    harness_t *fx;
    al_config_t *config;
    al_broker_t *broker = s_broker_new (s_identities, S_AGENTS, &fx, &config);
    assert_int_equal (broker->zap_renew_after, AL_BROKER_ZAP_RENEW_AFTER);
    broker->zap_renew_after = S_RENEW_AFTER;
    pthread_t thread;
    assert_int_equal (pthread_create (&thread, NULL, s_run, broker), 0);

    //  Groups of S_RENEW_AFTER agents; after each group, the handler that admitted them
    //  is renewed and, once quiet, closed.
    zsock_t *clients [S_AGENTS];
    size_t groups = S_AGENTS / S_RENEW_AFTER;
    for (size_t group = 0; group < groups; group++) {
        for (size_t k = 0; k < S_RENEW_AFTER; k++) {
            size_t i = group * S_RENEW_AFTER + k;
            char id [32];
            snprintf (id, sizeof id, "reg-%zu", i);
            clients [i] = harness_client (fx, s_names [i], NULL);
            assert_non_null (clients [i]);
            s_register (clients [i], id);
        }
        assert_true (s_wait_retired (broker, group + 1, 30000) >= group + 1);
    }
    //  The first agents' handler is long closed: their connections still carry messages.
    for (size_t i = 0; i < S_RENEW_AFTER; i++) {
        char id [32];
        snprintf (id, sizeof id, "again-%zu", i);
        s_register (clients [i], id);
    }
    //  An unknown key is refused by the current handler and audited; nothing reaches it.
    zsock_t *stranger = harness_client (fx, "stranger", NULL);
    assert_non_null (stranger);
    harness_register (stranger, "stranger-1", false);
    char stranger_key [41];
    zcert_t *cert = (zcert_t *) zhashx_lookup (fx->certs, "stranger");
    snprintf (stranger_key, sizeof stranger_key, "%s", zcert_public_txt (cert));
    assert_true (harness_wait_rows (fx, "HandshakeRefused", NULL, stranger_key, 1, 20000) >= 1);
    assert_null (harness_recv (stranger, 500));
    assert_int_equal (harness_count_rows (fx, NULL, stranger_key, NULL), 0);
    //  Every agent (12 Registers and 3 again) was admitted and audited once per message.
    assert_int_equal (harness_count_rows (fx, "Register", NULL, NULL), S_AGENTS + S_RENEW_AFTER);

    al_broker_request_stop (broker);
    assert_int_equal (pthread_join (thread, NULL), 0);
    //  One handler closed per group at least; the stranger's request went to the current one.
    assert_true (broker->zap_retired >= groups);
    assert_true (broker->zap_answered + broker->zap_retiring_answered >= 1);
    zsock_destroy (&stranger);
    for (size_t i = 0; i < S_AGENTS; i++)
        zsock_destroy (&clients [i]);
    s_broker_destroy (&broker, &config, &fx);
}

//  ---- 2. peers' storage sized to their routing id -----------------------------------

static zsock_t *
s_client_with_routing_id (harness_t *fx, const char *identity, const uint8_t *routing_id, size_t size)
{
    zcert_t *cert = (zcert_t *) zhashx_lookup (fx->certs, identity);
    assert_non_null (cert);
    zsock_t *client = zsock_new (ZMQ_DEALER);
    assert_non_null (client);
    zcert_apply (cert, client);
    zsock_set_curve_serverkey (client, fx->broker_public);
    zsock_set_linger (client, 0);
    assert_int_equal (zmq_setsockopt (zsock_resolve (client), ZMQ_ROUTING_ID, routing_id, size), 0);
    assert_int_equal (zsock_connect (client, "%s", fx->router), 0);
    return client;
}

static void
test_own_routing_ids_of_1_and_255_bytes_are_served (void **state)
{
    (void) state;
    static const harness_identity_t identities [] = {
        { "orch-short", "orchestrator" },
        { "orch-long", "orchestrator" },
        { "deploy-manager", "deploy-manager" },
    };
    harness_t *fx;
    al_config_t *config;
    al_broker_t *broker = s_broker_new (identities, 3, &fx, &config);
    pthread_t thread;
    assert_int_equal (pthread_create (&thread, NULL, s_run, broker), 0);

    zsock_t *manager = harness_client (fx, "deploy-manager", NULL);
    harness_register (manager, "reg-m", true);
    al_envelope_t *ack = harness_expect (manager, AIRLOCK__ENVELOPE__BODY_ACK, 20000);
    assert_non_null (ack);
    al_codec_free (&ack);
    uint8_t short_id [1] = { 'A' };
    uint8_t long_id [255];
    for (size_t i = 0; i < sizeof long_id; i++)
        long_id [i] = (uint8_t) (0x80 + i % 64);
    struct {
        const char *identity;
        const uint8_t *routing_id;
        size_t size;
    } senders [] = {
        { "orch-short", short_id, sizeof short_id },
        { "orch-long", long_id, sizeof long_id },
    };
    for (size_t k = 0; k < 2; k++) {
        zsock_t *client = s_client_with_routing_id (fx, senders [k].identity, senders [k].routing_id,
                                                    senders [k].size);
        char id [32];
        snprintf (id, sizeof id, "reg-%zu", k);
        s_register (client, id);                    // the Ack went to the stored routing id
        snprintf (id, sizeof id, "deploy-%zu", k);
        harness_deploy_request (client, id, AIRLOCK__ENVIRONMENT__ENV_STAGING);
        al_envelope_t *reply = harness_expect (client, AIRLOCK__ENVELOPE__BODY_ACK, 20000);
        assert_non_null (reply);
        assert_string_equal (reply->ack->acked_message_id, id);
        al_codec_free (&reply);
        al_envelope_t *delivery = harness_expect (manager, AIRLOCK__ENVELOPE__BODY_DEPLOY_REQUEST, 20000);
        assert_non_null (delivery);
        assert_string_equal (delivery->message_id, id);
        assert_string_equal (delivery->sender->identity, senders [k].identity);
        al_codec_free (&delivery);
        zsock_destroy (&client);
    }
    al_broker_request_stop (broker);
    assert_int_equal (pthread_join (thread, NULL), 0);
    zsock_destroy (&manager);
    s_broker_destroy (&broker, &config, &fx);
}

int
main (void)
{
    zsys_init ();
    zsys_handler_set (NULL);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_renewed_handler_keeps_agents_and_refuses_strangers),
        cmocka_unit_test (test_own_routing_ids_of_1_and_255_bytes_are_served),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
