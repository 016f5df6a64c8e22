/*  al_broker_delivery.c: where accepted messages go: the routing table, the durable
    per-role delivery queues, the Ack and Denied replies, and the PUB stream.

    A routed message is in the store's delivery queue from its commit until an instance
    of its role acknowledges it (DeliveryAck); `inflight` remembers which connection holds
    each sent delivery, and a sweep resends what no live connection holds. Deliveries to
    a role go round-robin over its live instances that registered for them.

    Threading: the reactor thread only.
*/
#include "broker/al_broker_int.h"
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Pending deliveries sent per role and sweep, at most.
#define S_SWEEP_BUDGET 4096

//  ---- routing table (docs/broker.md) -----------------------------------------------------------

static const struct {
    const char *type;
    const char *role;
} s_routes [] = {
    { "ReleaseCandidate", "orchestrator" },
    { "QaRequest",        "qa" },
    { "QaReport",         "orchestrator" },
    { "DeployRequest",    "deploy-manager" },
    { "ApprovalRequest",  "notifier" },
    { "DeployProgress",   "orchestrator" },
    { "DeployReceipt",    "orchestrator" },
    { "SoakSignal",       "deploy-manager" },
    { "RollbackTrigger",  "deploy-manager" },
    { "Notification",     "notifier" },
};

const char *
al_broker_route_for (const char *type_name)
{
    if (!type_name)
        return NULL;
    //  Twice per message: the first letter rules out most routes before any strcmp.
    for (size_t i = 0; i < sizeof s_routes / sizeof s_routes [0]; i++)
        if (s_routes [i].type [0] == type_name [0] && strcmp (s_routes [i].type, type_name) == 0)
            return s_routes [i].role;
    return NULL;
}

//  ---- deliveries ---------------------------------------------------------------------

//  A live instance of role taking deliveries, round-robin; NULL if none.
al_broker_peer_t *
al_broker_pick_instance (al_broker_t *self, const char *role)
{
    size_t live = 0;
    for (al_broker_peer_t *peer = (al_broker_peer_t *) zhashx_first (self->peers); peer;
         peer = (al_broker_peer_t *) zhashx_next (self->peers))
        if (peer->takes_deliveries && strcmp (peer->role, role) == 0)
            live++;
    if (live == 0)
        return NULL;
    size_t *counter = (size_t *) zhashx_lookup (self->round_robin, role);
    if (!counter) {
        counter = (size_t *) calloc (1, sizeof *counter);
        assert (counter);
        zhashx_insert (self->round_robin, role, counter);
    }
    size_t wanted = (*counter)++ % live, index = 0;
    for (al_broker_peer_t *peer = (al_broker_peer_t *) zhashx_first (self->peers); peer;
         peer = (al_broker_peer_t *) zhashx_next (self->peers))
        if (peer->takes_deliveries && strcmp (peer->role, role) == 0 && index++ == wanted)
            return peer;
    return NULL;
}

//  Stamp sender and delivery id into envelope and pack it (the client's sender, if any,
//  is replaced; the unpacked original is restored so its owner frees it).
size_t
al_broker_pack_stamped (al_broker_t *self, al_envelope_t *envelope, const char *identity, const char *role,
                        uint64_t sequence)
{
    Airlock__Sender sender = AIRLOCK__SENDER__INIT;
    sender.identity = (char *) identity;
    sender.role = (char *) role;
    Airlock__Sender *original = envelope->sender;
    uint64_t original_delivery = envelope->delivery_id;
    envelope->sender = &sender;
    envelope->delivery_id = sequence;
    size_t size = al_broker_pack (self, envelope);
    envelope->sender = original;
    envelope->delivery_id = original_delivery;
    return size;
}

//  Send a stored event to an instance of role. Returns true if it went out.
bool
al_broker_deliver_stored (al_broker_t *self, const char *role, uint64_t sequence)
{
    al_broker_peer_t *peer = al_broker_pick_instance (self, role);
    if (!peer)
        return false;
    al_store_event_t event;
    if (al_store_event_get (self->store, sequence, &event) != AL_STORE_OK)
        return false;
    al_envelope_t *envelope = airlock__envelope__unpack (NULL, event.envelope_size, event.envelope);
    if (!envelope)
        return false;
    size_t size = al_broker_pack_stamped (self, envelope, event.sender, event.role, sequence);
    airlock__envelope__free_unpacked (envelope, NULL);
    if (al_broker_send_to (self, peer, self->pack_buffer, size))
        return false;
    zhashx_update (self->inflight, AL_BROKER_KEY (sequence), strdup (peer->key));
    return true;
}

//  Send what is pending for role and not in flight to a live holder.
void
al_broker_sweep_role (al_broker_t *self, const char *role)
{
    uint64_t after = 0;
    size_t budget = S_SWEEP_BUDGET;
    uint64_t sequences [AL_BROKER_SWEEP_PAGE];
    while (budget > 0) {
        size_t count = 0;
        if (al_store_delivery_pending (self->store, role, after, sequences, AL_BROKER_SWEEP_PAGE, &count)
            != AL_STORE_OK || count == 0)
            break;
        for (size_t i = 0; i < count && budget > 0; i++) {
            const char *holder = (const char *) zhashx_lookup (self->inflight, AL_BROKER_KEY (sequences [i]));
            if (holder && zhashx_lookup (self->peers, holder))
                continue;
            budget--;
            if (!al_broker_deliver_stored (self, role, sequences [i]))
                return;
            if (holder)
                al_telemetry_add (self->metric_redeliveries, 1);
        }
        after = sequences [count - 1];
        if (count < AL_BROKER_SWEEP_PAGE)
            break;
    }
}

void
al_broker_sweep_all (al_broker_t *self)
{
    zlistx_t *roles = zlistx_new ();
    assert (roles);
    zlistx_set_duplicator (roles, (czmq_duplicator *) strdup);
    zlistx_set_destructor (roles, (czmq_destructor *) zstr_free);
    zlistx_set_comparator (roles, (czmq_comparator *) strcmp);
    for (al_broker_peer_t *peer = (al_broker_peer_t *) zhashx_first (self->peers); peer;
         peer = (al_broker_peer_t *) zhashx_next (self->peers))
        if (peer->takes_deliveries && !zlistx_find (roles, peer->role))
            zlistx_add_end (roles, peer->role);
    for (char *role = (char *) zlistx_first (roles); role; role = (char *) zlistx_next (roles))
        al_broker_sweep_role (self, role);
    zlistx_destroy (&roles);
}

//  ---- replies ------------------------------------------------------------------------

void
al_broker_reply_ack (al_broker_t *self, al_broker_peer_t *peer, const char *message_id,
                     const al_store_append_result_t *result, bool duplicate, const char *detail)
{
    char id [48];
    al_envelope_t envelope;
    al_broker_envelope_init (self, &envelope, id, sizeof id, "ack");
    Airlock__Ack ack = AIRLOCK__ACK__INIT;
    ack.acked_message_id = (char *) message_id;
    ack.audit_sequence = result->sequence;
    ack.audit_hash.data = (uint8_t *) result->hash;
    ack.audit_hash.len = AL_STORE_HASH_SIZE;
    ack.duplicate = duplicate;
    ack.detail = (char *) (detail? detail: "");
    envelope.correlation_id = (char *) message_id;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_ACK;
    envelope.ack = &ack;
    size_t size = al_broker_pack (self, &envelope);
    al_broker_send_to (self, peer, self->pack_buffer, size);
}

void
al_broker_reply_denied (al_broker_t *self, al_broker_peer_t *peer, const char *message_id, Airlock__DenyCode code,
                        const char *reason, uint64_t sequence)
{
    char id [48];
    al_envelope_t envelope;
    al_broker_envelope_init (self, &envelope, id, sizeof id, "denied");
    Airlock__Denied denied = AIRLOCK__DENIED__INIT;
    denied.denied_message_id = (char *) message_id;
    denied.code = code;
    denied.reason = (char *) (reason && *reason? reason: "denied");
    denied.audit_sequence = sequence;
    envelope.correlation_id = (char *) message_id;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_DENIED;
    envelope.denied = &denied;
    size_t size = al_broker_pack (self, &envelope);
    al_broker_send_to (self, peer, self->pack_buffer, size);
}

void
al_broker_publish (al_broker_t *self, const al_envelope_t *envelope, const char *type, size_t size)
{
    char topic [AL_CODEC_MAX_NAME_LEN * 2 + 32];
    if (envelope->body_case == AIRLOCK__ENVELOPE__BODY_SOAK_SIGNAL) {
        const char *env = al_environment_name (envelope->environment);
        snprintf (topic, sizeof topic, "soak.%s.%s", env? env: "bus", envelope->soak_signal->service);
    }
    else {
        //  "event.<type>", cut to fit like snprintf, without a format per message.
        size_t length = strnlen (type, sizeof topic - 7);
        memcpy (topic, "event.", 6);
        memcpy (topic + 6, type, length);
        topic [6 + length] = '\0';
    }
    uint64_t *counter = (uint64_t *) zhashx_lookup (self->topics, topic);
    if (!counter) {
        counter = (uint64_t *) calloc (1, sizeof *counter);
        assert (counter);
        zhashx_insert (self->topics, topic, counter);
    }
    uint64_t sequence = ++*counter;
    uint8_t be [8];
    for (int i = 0; i < 8; i++)
        be [i] = (uint8_t) (sequence >> (56 - 8 * i));
    void *pub = zsock_resolve (self->pub);
    zmq_send (pub, topic, strlen (topic), ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send (pub, self->pack_buffer, size, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send (pub, be, sizeof be, ZMQ_DONTWAIT);
}
