/*  fake_broker.c: a small broker for testing the agent runtime (see fake_broker.h).
*/
#include "fake_broker.h"
#include "proto/al_codec.h"

#include <assert.h>
#include <inttypes.h>
#include <pthread.h>
#include <string.h>

struct _fake_broker_t {
    char endpoint [256];
    zcert_t *cert;                  // borrowed
    int heartbeat_ms;
    zactor_t *actor;
    int generation;
    pthread_mutex_t mutex;
    bool drop_first;
    bool mute;
    char deny_type [40];
    zlistx_t *log;                  // fake_record_t *
    zhashx_t *outcomes;             // message id -> audit sequence (as pointer-sized int)
    zhashx_t *dropped;              // message ids whose first copy was dropped
    zhashx_t *acked;                // delivery id (decimal) -> times listed in DeliveryAcks
    uint64_t sequence;
    zframe_t *last_peer;            // routing id of the latest registration
};

static void
s_record_destroy (void **item_p)
{
    free (*item_p);
    *item_p = NULL;
}

fake_broker_t *
fake_broker_new (const char *endpoint, zcert_t *broker_cert, int heartbeat_ms)
{
    fake_broker_t *self = calloc (1, sizeof *self);
    assert (self);
    snprintf (self->endpoint, sizeof self->endpoint, "%s", endpoint);
    self->cert = broker_cert;
    self->heartbeat_ms = heartbeat_ms;
    pthread_mutex_init (&self->mutex, NULL);
    self->log = zlistx_new ();
    zlistx_set_destructor (self->log, s_record_destroy);
    self->outcomes = zhashx_new ();
    self->dropped = zhashx_new ();
    self->acked = zhashx_new ();
    return self;
}

void
fake_broker_destroy (fake_broker_t **self_p)
{
    fake_broker_t *self = *self_p;
    if (!self)
        return;
    fake_broker_stop (self);
    zlistx_destroy (&self->log);
    zhashx_destroy (&self->outcomes);
    zhashx_destroy (&self->dropped);
    zhashx_destroy (&self->acked);
    zframe_destroy (&self->last_peer);
    pthread_mutex_destroy (&self->mutex);
    free (self);
    *self_p = NULL;
}

//  Send one envelope to a peer.
static void
s_reply (zsock_t *router, zframe_t *peer, al_envelope_t *envelope)
{
    uint8_t *data = NULL;
    size_t size = 0;
    char error [256];
    if (!envelope->message_id || !*envelope->message_id)
        envelope->message_id = "broker";
    int rc = al_codec_pack (envelope, &data, &size, error, sizeof error);
    assert (rc == AL_CODEC_OK);
    zmsg_t *msg = zmsg_new ();
    zframe_t *address = zframe_dup (peer);
    zmsg_append (msg, &address);
    zmsg_addmem (msg, data, size);
    zmsg_send (&msg, router);
    free (data);
}

//  Under the lock: one envelope from PEER.
static void
s_handle (fake_broker_t *self, zsock_t *router, zframe_t *peer, al_envelope_t *envelope,
          zlistx_t *registered)
{
    const char *type = al_msg_type_name (envelope->body_case);
    al_envelope_t reply = AIRLOCK__ENVELOPE__INIT;
    if (self->mute || envelope->body_case == AIRLOCK__ENVELOPE__BODY_HEARTBEAT
    ||  envelope->body_case == AIRLOCK__ENVELOPE__BODY_DELIVERY_ACK)
        return;
    if (envelope->body_case == AIRLOCK__ENVELOPE__BODY_REGISTER) {
        zframe_destroy (&self->last_peer);
        self->last_peer = zframe_dup (peer);
        zlistx_add_end (registered, zframe_dup (peer));
    }
    if (envelope->body_case == AIRLOCK__ENVELOPE__BODY_STATUS_QUERY) {
        Airlock__StatusReply status = AIRLOCK__STATUS_REPLY__INIT;
        Airlock__AgentStatus agent = AIRLOCK__AGENT_STATUS__INIT;
        Airlock__AgentStatus *agents [1] = { &agent };
        agent.identity = "qa";
        agent.role = "qa";
        agent.last_heartbeat_ms = 1000;
        agent.alive = true;
        status.n_agents = 1;
        status.agents = agents;
        reply.correlation_id = envelope->message_id;
        reply.body_case = AIRLOCK__ENVELOPE__BODY_STATUS_REPLY;
        reply.status_reply = &status;
        s_reply (router, peer, &reply);
        return;
    }
    if (self->drop_first && envelope->body_case != AIRLOCK__ENVELOPE__BODY_REGISTER
    &&  !zhashx_lookup (self->dropped, envelope->message_id)) {
        zhashx_insert (self->dropped, envelope->message_id, (void *) 1);
        return;
    }
    if (streq (type, self->deny_type)) {
        Airlock__Denied denied = AIRLOCK__DENIED__INIT;
        char reason [128];
        snprintf (reason, sizeof reason, "roles.yaml: this role may not send %s", type);
        denied.denied_message_id = envelope->message_id;
        denied.code = AIRLOCK__DENY_CODE__DENY_NOT_PERMITTED;
        denied.reason = reason;
        denied.audit_sequence = ++self->sequence;
        reply.body_case = AIRLOCK__ENVELOPE__BODY_DENIED;
        reply.denied = &denied;
        s_reply (router, peer, &reply);
        return;
    }
    Airlock__Ack ack = AIRLOCK__ACK__INIT;
    uint8_t hash [32];
    uintptr_t original = (uintptr_t) zhashx_lookup (self->outcomes, envelope->message_id);
    ack.duplicate = original != 0;
    if (!original) {
        original = (uintptr_t) ++self->sequence;
        zhashx_insert (self->outcomes, envelope->message_id, (void *) original);
    }
    memset (hash, (int) (original & 0xFF), sizeof hash);
    ack.acked_message_id = envelope->message_id;
    ack.audit_sequence = original;
    ack.audit_hash.data = hash;
    ack.audit_hash.len = sizeof hash;
    reply.body_case = AIRLOCK__ENVELOPE__BODY_ACK;
    reply.ack = &ack;
    s_reply (router, peer, &reply);
}

static void
s_frame_destroy (void **item_p)
{
    zframe_t *frame = *item_p;
    zframe_destroy (&frame);
    *item_p = NULL;
}

static void
s_actor (zsock_t *pipe, void *args)
{
    fake_broker_t *self = args;
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    assert (router);
    zsock_set_zap_domain (router, "airlock");
    zcert_apply (self->cert, router);
    zsock_set_curve_server (router, 1);
    zsock_set_linger (router, 0);
    int rc = zsock_bind (router, "%s", self->endpoint);
    assert (rc == 0);
    zlistx_t *registered = zlistx_new ();
    zlistx_set_destructor (registered, s_frame_destroy);
    zsock_signal (pipe, 0);

    zpoller_t *poller = zpoller_new (pipe, router, NULL);
    zpoller_set_nonstop (poller, true);
    int64_t next_heartbeat = zclock_mono () + self->heartbeat_ms;
    uint64_t heartbeat_sequence = 0;
    while (true) {
        void *which = zpoller_wait (poller, 10);
        if (which == pipe) {
            zmsg_t *msg = zmsg_recv (pipe);
            if (!msg)
                break;
            char *command = zmsg_popstr (msg);
            bool term = streq (command, "$TERM");
            if (streq (command, "DELIVER")) {
                zframe_t *body = zmsg_pop (msg);
                pthread_mutex_lock (&self->mutex);
                zframe_t *peer = self->last_peer ? zframe_dup (self->last_peer) : NULL;
                pthread_mutex_unlock (&self->mutex);
                bool sent = false;
                if (peer) {
                    zmsg_t *out = zmsg_new ();
                    zmsg_append (out, &peer);
                    zmsg_append (out, &body);
                    sent = zmsg_send (&out, router) == 0;
                }
                zframe_destroy (&body);
                zsock_signal (pipe, sent ? 0 : 1);
            }
            zstr_free (&command);
            zmsg_destroy (&msg);
            if (term)
                break;
        }
        else
        if (which == router) {
            zmq_msg_t part;
            zmq_msg_init (&part);
            if (zmq_msg_recv (&part, zsock_resolve (router), 0) < 0) {
                zmq_msg_close (&part);
                continue;
            }
            fake_record_t *record = calloc (1, sizeof *record);
            assert (record);
            zframe_t *peer = zframe_new (zmq_msg_data (&part), zmq_msg_size (&part));
            char *hex = zframe_strhex (peer);
            snprintf (record->routing_id, sizeof record->routing_id, "%s", hex);
            free (hex);
            zmq_msg_close (&part);
            // libzmq 4.3.4: after zmq_poll the routing-id frame carries no metadata
            // (it was prefetched); the body frame, which came off the wire, does.
            zframe_t *body = zframe_recv (router);
            const char *user_id = body ? zframe_meta (body, "User-Id") : NULL;
            snprintf (record->user_id, sizeof record->user_id, "%s", user_id ? user_id : "");
            al_envelope_t *envelope = NULL;
            char error [256];
            if (body && al_codec_unpack (zframe_data (body), zframe_size (body), AL_CODEC_DEFAULT_MAX_SIZE,
                                         &envelope, error, sizeof error) == AL_CODEC_OK) {
                snprintf (record->type, sizeof record->type, "%s",
                          al_msg_type_name (envelope->body_case));
                snprintf (record->message_id, sizeof record->message_id, "%s", envelope->message_id);
                if (envelope->body_case == AIRLOCK__ENVELOPE__BODY_DELIVERY_ACK) {
                    record->delivery_id = envelope->delivery_ack->delivery_id;
                    record->delivery_id_count = al_delivery_ack_count (envelope->delivery_ack);
                }
                if (envelope->body_case == AIRLOCK__ENVELOPE__BODY_DEPLOY_PROGRESS)
                    snprintf (record->detail, sizeof record->detail, "%s", envelope->deploy_progress->detail);
                if (envelope->body_case == AIRLOCK__ENVELOPE__BODY_REGISTER) {
                    record->subscribe_deliveries = envelope->register_->subscribe_deliveries;
                    snprintf (record->agent_name, sizeof record->agent_name, "%s",
                              envelope->register_->agent_name);
                }
            }
            else
                snprintf (record->type, sizeof record->type, "undecodable");
            pthread_mutex_lock (&self->mutex);
            record->generation = self->generation;
            zlistx_add_end (self->log, record);
            for (size_t k = 0; k < record->delivery_id_count; k++) {
                char key [24];
                snprintf (key, sizeof key, "%" PRIu64, al_delivery_ack_id (envelope->delivery_ack, k));
                uintptr_t times = (uintptr_t) zhashx_lookup (self->acked, key);
                zhashx_update (self->acked, key, (void *) (times + 1));
            }
            if (envelope)
                s_handle (self, router, peer, envelope, registered);
            pthread_mutex_unlock (&self->mutex);
            al_codec_free (&envelope);
            zframe_destroy (&body);
            zframe_destroy (&peer);
        }
        if (zclock_mono () >= next_heartbeat) {
            next_heartbeat = zclock_mono () + self->heartbeat_ms;
            pthread_mutex_lock (&self->mutex);
            bool mute = self->mute;
            pthread_mutex_unlock (&self->mutex);
            if (!mute) {
                for (zframe_t *peer = zlistx_first (registered); peer; peer = zlistx_next (registered)) {
                    al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
                    Airlock__Heartbeat heartbeat = AIRLOCK__HEARTBEAT__INIT;
                    heartbeat.sequence = ++heartbeat_sequence;
                    envelope.body_case = AIRLOCK__ENVELOPE__BODY_HEARTBEAT;
                    envelope.heartbeat = &heartbeat;
                    s_reply (router, peer, &envelope);
                }
            }
        }
    }
    zpoller_destroy (&poller);
    zlistx_destroy (&registered);
    zsock_destroy (&router);
}

void
fake_broker_start (fake_broker_t *self)
{
    assert (!self->actor);
    pthread_mutex_lock (&self->mutex);
    self->generation++;
    zframe_destroy (&self->last_peer);
    pthread_mutex_unlock (&self->mutex);
    self->actor = zactor_new (s_actor, self);
    assert (self->actor);
}

void
fake_broker_stop (fake_broker_t *self)
{
    zactor_destroy (&self->actor);
}

void
fake_broker_set_drop_first (fake_broker_t *self, bool drop_first)
{
    pthread_mutex_lock (&self->mutex);
    self->drop_first = drop_first;
    pthread_mutex_unlock (&self->mutex);
}

void
fake_broker_set_mute (fake_broker_t *self, bool mute)
{
    pthread_mutex_lock (&self->mutex);
    self->mute = mute;
    pthread_mutex_unlock (&self->mutex);
}

void
fake_broker_set_deny_type (fake_broker_t *self, const char *type_name)
{
    pthread_mutex_lock (&self->mutex);
    snprintf (self->deny_type, sizeof self->deny_type, "%s", type_name ? type_name : "");
    pthread_mutex_unlock (&self->mutex);
}

int
fake_broker_deliver (fake_broker_t *self, const uint8_t *data, size_t size)
{
    assert (self->actor);
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "DELIVER");
    zmsg_addmem (msg, data, size);
    zmsg_send (&msg, self->actor);
    return zsock_wait (self->actor) == 0 ? 0 : -1;
}

size_t
fake_broker_log_size (fake_broker_t *self)
{
    pthread_mutex_lock (&self->mutex);
    size_t size = zlistx_size (self->log);
    pthread_mutex_unlock (&self->mutex);
    return size;
}

bool
fake_broker_log_at (fake_broker_t *self, size_t index, fake_record_t *record)
{
    pthread_mutex_lock (&self->mutex);
    bool found = false;
    size_t position = 0;
    for (fake_record_t *item = zlistx_first (self->log); item; item = zlistx_next (self->log))
        if (position++ == index) {
            *record = *item;
            found = true;
            break;
        }
    pthread_mutex_unlock (&self->mutex);
    return found;
}

size_t
fake_broker_count (fake_broker_t *self, const char *type, int generation)
{
    pthread_mutex_lock (&self->mutex);
    size_t count = 0;
    for (fake_record_t *item = zlistx_first (self->log); item; item = zlistx_next (self->log))
        if ((!type || streq (item->type, type)) && (!generation || item->generation == generation))
            count++;
    pthread_mutex_unlock (&self->mutex);
    return count;
}

size_t
fake_broker_count_id (fake_broker_t *self, const char *message_id)
{
    pthread_mutex_lock (&self->mutex);
    size_t count = 0;
    for (fake_record_t *item = zlistx_first (self->log); item; item = zlistx_next (self->log))
        if (streq (item->message_id, message_id))
            count++;
    pthread_mutex_unlock (&self->mutex);
    return count;
}

size_t
fake_broker_acks_of (fake_broker_t *self, uint64_t delivery_id)
{
    char key [24];
    snprintf (key, sizeof key, "%" PRIu64, delivery_id);
    pthread_mutex_lock (&self->mutex);
    size_t times = (size_t) (uintptr_t) zhashx_lookup (self->acked, key);
    pthread_mutex_unlock (&self->mutex);
    return times;
}
