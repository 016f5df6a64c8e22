/*  test_delivery_ack.c: one DeliveryAck for many deliveries, against the broker as a
    real process (harness.c).

    A receiver that drained k deliveries acknowledges them with ONE DeliveryAck listing k
    ids: the broker writes one audit row (the row's envelope lists every id), takes every
    listed id out of the role's durable queue (ids it does not know are ignored), and so
    none of them is delivered again, not even after a restart. Ids not listed stay queued
    and are redelivered, with the same delivery id, when the acknowledgement is lost. A
    DeliveryAck with a 0 among its ids is refused whole.
*/
#include "harness.h"
#include "store/al_store.h"
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static const harness_identity_t s_identities [] = {
    { "orchestrator",   "orchestrator" },
    { "deploy-manager", "deploy-manager" },
};
#define S_IDENTITY_COUNT (sizeof s_identities / sizeof s_identities [0])
#define S_MAX_DELIVERIES 8

//  Register and wait for the Ack (the connection and ZAP are then done).
static void
s_register (zsock_t *client, const char *message_id, bool deliveries)
{
    assert_int_equal (harness_register_acked (client, message_id, deliveries, 10000), 0);
}

//  The orchestrator sends count staging DeployRequests "<prefix>-<i>", each acknowledged.
static void
s_send_requests (zsock_t *orchestrator, const char *prefix, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        char id [32];
        snprintf (id, sizeof id, "%s-%zu", prefix, i);
        harness_deploy_request (orchestrator, id, AIRLOCK__ENVIRONMENT__ENV_STAGING);
        al_envelope_t *ack = harness_expect (orchestrator, AIRLOCK__ENVELOPE__BODY_ACK, 10000);
        assert_non_null (ack);
        assert_string_equal (ack->ack->acked_message_id, id);
        al_codec_free (&ack);
    }
}

//  Receive count DeployRequest deliveries; their delivery ids go into ids, indexed by
//  the number in their message id "<prefix>-<i>".
static void
s_receive (zsock_t *manager, const char *prefix, size_t count, uint64_t *ids)
{
    memset (ids, 0, count * sizeof *ids);
    for (size_t received = 0; received < count; ) {
        al_envelope_t *delivery = harness_expect (manager, AIRLOCK__ENVELOPE__BODY_DEPLOY_REQUEST, 10000);
        assert_non_null (delivery);
        assert_true (delivery->delivery_id > 0);
        size_t index = 0;
        char format [32];
        snprintf (format, sizeof format, "%s-%%zu", prefix);
        assert_int_equal (sscanf (delivery->message_id, format, &index), 1);
        assert_true (index < count);
        if (ids [index] == 0)
            received++;
        ids [index] = delivery->delivery_id;
        al_codec_free (&delivery);
    }
}

//  Send ONE DeliveryAck for ids [0, count).
static void
s_ack (zsock_t *manager, const char *message_id, const uint64_t *ids, size_t count)
{
    assert_true (count >= 1);
    al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
    Airlock__DeliveryAck body = AIRLOCK__DELIVERY_ACK__INIT;
    body.delivery_id = ids [0];
    body.n_more_delivery_ids = count - 1;
    body.more_delivery_ids = (uint64_t *) (ids + 1);
    envelope.message_id = (char *) message_id;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_DELIVERY_ACK;
    envelope.delivery_ack = &body;
    assert_int_equal (harness_send (manager, &envelope), 0);
}

static al_store_t *
s_store (harness_t *fx)
{
    al_store_options_t options = { .read_only = true };
    char error [512];
    al_store_t *store = al_store_open (NULL, fx->database, &options, error, sizeof error);
    if (!store)
        fail_msg ("%s", error);
    return store;
}

//  Sequences still queued for deploy-manager (up to max).
static size_t
s_pending (harness_t *fx, uint64_t *sequences, size_t max)
{
    al_store_t *store = s_store (fx);
    size_t count = 0;
    assert_int_equal (al_store_delivery_pending (store, "deploy-manager", 0, sequences, max, &count), AL_STORE_OK);
    al_store_destroy (&store);
    return count;
}

//  The ids the DeliveryAck row with message_id lists (its envelope as audited).
static size_t
s_row_ids (harness_t *fx, const char *message_id, uint64_t *ids, size_t max)
{
    al_store_t *store = s_store (fx);
    al_store_iter_t *iter = al_store_iter_new (store, 1);
    assert_non_null (iter);
    al_store_event_t event;
    size_t count = 0, rows = 0;
    while (al_store_iter_next (iter, &event) == AL_STORE_OK) {
        if (strcmp (event.type, "DeliveryAck") != 0 || strcmp (event.message_id, message_id) != 0)
            continue;
        rows++;
        assert_int_equal (event.decision, AL_STORE_ACCEPTED);
        assert_string_equal (event.sender, "deploy-manager");
        al_envelope_t *envelope = NULL;
        char error [256];
        assert_int_equal (al_codec_unpack (event.envelope, event.envelope_size, AL_CODEC_DEFAULT_MAX_SIZE,
                                           &envelope, error, sizeof error), AL_CODEC_OK);
        count = al_delivery_ack_count (envelope->delivery_ack);
        assert_true (count <= max);
        for (size_t i = 0; i < count; i++)
            ids [i] = al_delivery_ack_id (envelope->delivery_ack, i);
        al_codec_free (&envelope);
    }
    al_store_iter_destroy (&iter);
    al_store_destroy (&store);
    assert_int_equal (rows, 1);
    return count;
}

//  The usual start (harness_start_pair), then count staging DeployRequests "<prefix>-<i>"
//  sent by the orchestrator and received by the manager, their delivery ids in ids.
static harness_t *
s_start_with_deliveries (const char *prefix, size_t count, uint64_t *ids,
                         zsock_t **orchestrator_p, zsock_t **manager_p)
{
    harness_t *fx = harness_start_pair (s_identities, S_IDENTITY_COUNT, orchestrator_p, manager_p);
    assert_non_null (fx);
    s_send_requests (*orchestrator_p, prefix, count);
    s_receive (*manager_p, prefix, count, ids);
    return fx;
}

//  Restart the broker (the manager's connection closed first), register the manager
//  anew and assert that nothing is delivered to it; then close both clients and stop the
//  broker and the fixture.
static void
s_restart_and_expect_nothing (harness_t *fx, zsock_t **manager_p, zsock_t **orchestrator_p)
{
    zsock_destroy (manager_p);
    assert_int_equal (harness_broker_signal (fx, SIGTERM), 0);
    assert_int_equal (harness_broker_start (fx), 0);
    *manager_p = harness_client (fx, "deploy-manager", NULL);
    s_register (*manager_p, "reg-m3", true);
    assert_null (harness_expect (*manager_p, AIRLOCK__ENVELOPE__BODY_DEPLOY_REQUEST, 1500));

    zsock_destroy (manager_p);
    zsock_destroy (orchestrator_p);
    assert_int_equal (harness_broker_signal (fx, SIGTERM), 0);
    harness_destroy (&fx);
}

//  ---------------------------------------------------------------------------------

static void
test_one_ack_for_many_deliveries (void **state)
{
    (void) state;
    zsock_t *orchestrator, *manager;
    uint64_t ids [6];
    harness_t *fx = s_start_with_deliveries ("many", 5, ids, &orchestrator, &manager);
    uint64_t pending [S_MAX_DELIVERIES];
    assert_int_equal (s_pending (fx, pending, S_MAX_DELIVERIES), 5);

    //  One DeliveryAck for all five, plus an id nobody queued (ignored).
    ids [5] = 987654321;
    s_ack (manager, "dack-all", ids, 6);
    assert_int_equal (harness_wait_rows (fx, "DeliveryAck", "deploy-manager", NULL, 1, 20000), 1);

    //  One row, listing every id, and nothing left in the queue.
    uint64_t listed [S_MAX_DELIVERIES];
    assert_int_equal (s_row_ids (fx, "dack-all", listed, S_MAX_DELIVERIES), 6);
    assert_memory_equal (listed, ids, sizeof ids);
    assert_int_equal (s_pending (fx, pending, S_MAX_DELIVERIES), 0);
    assert_int_equal (harness_count_rows (fx, "DeliveryAck", NULL, NULL), 1);

    //  None is delivered again: not to a new connection, not after a restart.
    zsock_destroy (&manager);
    manager = harness_client (fx, "deploy-manager", NULL);
    s_register (manager, "reg-m2", true);
    assert_null (harness_expect (manager, AIRLOCK__ENVELOPE__BODY_DEPLOY_REQUEST, 1500));
    s_restart_and_expect_nothing (fx, &manager, &orchestrator);
}

static void
test_unlisted_and_lost_are_redelivered (void **state)
{
    (void) state;
    zsock_t *orchestrator, *manager;
    uint64_t ids [4];
    harness_t *fx = s_start_with_deliveries ("part", 4, ids, &orchestrator, &manager);

    //  Acknowledge 0 and 2 in one DeliveryAck: 1 and 3 stay queued.
    uint64_t even [2] = { ids [0], ids [2] };
    s_ack (manager, "dack-even", even, 2);
    assert_int_equal (harness_wait_rows (fx, "DeliveryAck", "deploy-manager", NULL, 1, 20000), 1);
    uint64_t pending [S_MAX_DELIVERIES];
    assert_int_equal (s_pending (fx, pending, S_MAX_DELIVERIES), 2);
    assert_int_equal (pending [0], ids [1]);
    assert_int_equal (pending [1], ids [3]);

    //  The DeliveryAck for 1 and 3 is lost with the connection: both come again, with
    //  the same delivery ids, to the next connection; 0 and 2 do not.
    zsock_destroy (&manager);
    manager = harness_client (fx, "deploy-manager", NULL);
    s_register (manager, "reg-m2", true);
    for (int received = 0; received < 2; received++) {
        al_envelope_t *delivery = harness_expect (manager, AIRLOCK__ENVELOPE__BODY_DEPLOY_REQUEST, 10000);
        assert_non_null (delivery);
        uint64_t expected = strcmp (delivery->message_id, "part-1") == 0? ids [1]
                          : strcmp (delivery->message_id, "part-3") == 0? ids [3]: 0;
        if (expected == 0)
            fail_msg ("%s was delivered again after its acknowledgement", delivery->message_id);
        assert_int_equal (delivery->delivery_id, expected);
        al_codec_free (&delivery);
    }
    assert_null (harness_expect (manager, AIRLOCK__ENVELOPE__BODY_DEPLOY_REQUEST, 500));
    uint64_t odd [2] = { ids [1], ids [3] };
    s_ack (manager, "dack-odd", odd, 2);
    assert_int_equal (harness_wait_rows (fx, "DeliveryAck", "deploy-manager", NULL, 2, 20000), 2);
    assert_int_equal (s_pending (fx, pending, S_MAX_DELIVERIES), 0);
    uint64_t listed [S_MAX_DELIVERIES];
    assert_int_equal (s_row_ids (fx, "dack-odd", listed, S_MAX_DELIVERIES), 2);
    assert_memory_equal (listed, odd, sizeof odd);

    //  After a restart nothing is left to deliver.
    s_restart_and_expect_nothing (fx, &manager, &orchestrator);
}

static void
test_zero_id_refuses_the_whole_ack (void **state)
{
    (void) state;
    zsock_t *orchestrator, *manager;
    uint64_t ids [2];
    harness_t *fx = s_start_with_deliveries ("zero", 2, ids, &orchestrator, &manager);

    //  al_codec_pack would refuse it: pack it raw, as a hostile client would.
    uint64_t more [2] = { 0, ids [1] };
    al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
    Airlock__DeliveryAck body = AIRLOCK__DELIVERY_ACK__INIT;
    body.delivery_id = ids [0];
    body.n_more_delivery_ids = 2;
    body.more_delivery_ids = more;
    envelope.message_id = (char *) "dack-zero";
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_DELIVERY_ACK;
    envelope.delivery_ack = &body;
    size_t size = airlock__envelope__get_packed_size (&envelope);
    uint8_t *data = malloc (size);
    assert_non_null (data);
    airlock__envelope__pack (&envelope, data);
    assert_int_equal (zsock_send (manager, "b", data, size), 0);
    free (data);

    al_envelope_t *denied = harness_expect (manager, AIRLOCK__ENVELOPE__BODY_DENIED, 10000);
    assert_non_null (denied);
    assert_int_equal (denied->denied->code, AIRLOCK__DENY_CODE__DENY_MALFORMED);
    assert_non_null (strstr (denied->denied->reason, "delivery_ack.more_delivery_ids[0]"));
    al_codec_free (&denied);
    assert_int_equal (harness_count_rows (fx, "malformed", "deploy-manager", "more_delivery_ids[0]"), 1);
    assert_int_equal (harness_count_rows (fx, "DeliveryAck", NULL, NULL), 0);
    uint64_t pending [S_MAX_DELIVERIES];
    assert_int_equal (s_pending (fx, pending, S_MAX_DELIVERIES), 2);

    //  The same two, acknowledged properly, in one.
    s_ack (manager, "dack-both", ids, 2);
    assert_int_equal (harness_wait_rows (fx, "DeliveryAck", "deploy-manager", NULL, 1, 20000), 1);
    assert_int_equal (s_pending (fx, pending, S_MAX_DELIVERIES), 0);

    zsock_destroy (&manager);
    zsock_destroy (&orchestrator);
    assert_int_equal (harness_broker_signal (fx, SIGTERM), 0);
    harness_destroy (&fx);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_one_ack_for_many_deliveries),
        cmocka_unit_test (test_unlisted_and_lost_are_redelivered),
        cmocka_unit_test (test_zero_id_refuses_the_whole_ack),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
