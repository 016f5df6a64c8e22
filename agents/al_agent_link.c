/*  al_agent_link.c: the agent runtime's actor: the link to the broker.

    The actor owns the DEALER socket and its monitor: it sends what the outbox holds,
    reads Ack / Denied / Heartbeat / StatusReply / deliveries, heartbeats, and remakes
    the socket when the broker stops answering. Everything it shares with the caller's
    side (al_agent.c) is in the al_agent_t struct, touched only under its mutex.
*/
#include "agents/al_agent_int.h"

//  Frames read from the socket per actor pass, so timers are never starved.
#define S_RECV_BATCH 1000


//  The actor's own state: the socket and its monitor.
typedef struct {
    zsock_t *dealer;
    zsock_t *monitor;
    int64_t next_heartbeat_ms;
} s_link_t;

//  ---------------------------------------------------------------------------------
//  The actor

//  Under the lock: pack and queue an internal envelope (Register) at the front or back.
static al_agent_entry_t *
s_entry_internal (al_agent_t *self, al_envelope_t *envelope, al_agent_kind_t kind, bool front)
{
    al_agent_entry_t *entry = calloc (1, sizeof *entry);
    assert (entry);
    entry->kind = kind;
    al_agent__next_id (self, entry->id);
    envelope->message_id = entry->id;
    envelope->timestamp_ms = al_clock_wall_ms ();
    char error [256];
    al_codec_status_t status = al_codec_pack (envelope, &entry->data, &entry->size,
                                              error, sizeof error);
    //  Our own envelopes always pack; a failure is a bug here.
    assert (status == AL_CODEC_OK);
    zhashx_insert (self->entries, entry->id, entry);
    entry->queued = true;
    entry->handle = front ? zlistx_add_start (self->unsent, entry)
                          : zlistx_add_end (self->unsent, entry);
    return entry;
}

//  Under the lock: a new link is up. Everything not yet answered goes again, behind a
//  fresh Register, so the broker sees the registration first.
static void
s_link_registered_afresh (al_agent_t *self)
{
    al_agent_entry_t *old_register = *self->register_id
                            ? zhashx_lookup (self->entries, self->register_id) : NULL;
    if (old_register) {
        al_agent__entry_unlist (self, old_register);
        zhashx_delete (self->entries, old_register->id);
    }
    // inflight (in the order last sent) then unsent: all go again on this link, in order
    al_agent_entry_t *entry;
    while ((entry = zlistx_first (self->unsent))) {
        zlistx_delete (self->unsent, entry->handle);
        entry->handle = zlistx_add_end (self->inflight, entry);
    }
    zlistx_t *swap = self->unsent;
    self->unsent = self->inflight;
    self->inflight = swap;
    for (entry = zlistx_first (self->unsent); entry; entry = zlistx_next (self->unsent)) {
        entry->queued = true;
        entry->sent_ms = 0;
    }
    al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
    Airlock__Register reg = AIRLOCK__REGISTER__INIT;
    reg.agent_name = self->options.name;
    reg.software_version = "airlock " AL_AGENT_VERSION;
    reg.heartbeat_interval_ms = (uint32_t) self->options.heartbeat_ms;
    reg.subscribe_deliveries = self->options.subscribe_deliveries;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_REGISTER;
    envelope.register_ = &reg;
    entry = s_entry_internal (self, &envelope, AL_AGENT_KIND_REGISTER, true);
    strcpy (self->register_id, entry->id);
}

static void
s_link_close (s_link_t *link, int linger_ms)
{
    if (link->dealer) {
        zmq_socket_monitor (zsock_resolve (link->dealer), NULL, 0);
        zsock_set_linger (link->dealer, linger_ms);
    }
    zsock_destroy (&link->monitor);
    zsock_destroy (&link->dealer);
}

//  Make the DEALER and its monitor and connect. Returns 0, or -1 with the reason.
static int
s_link_open (al_agent_t *self, s_link_t *link, char *error, size_t error_size)
{
    assert (!link->dealer);
    link->dealer = zsock_new (ZMQ_DEALER);
    if (!link->dealer) {
        snprintf (error, error_size, "cannot create a socket: %s", zmq_strerror (zmq_errno ()));
        goto failed;
    }
    zcert_apply (self->cert, link->dealer);
    zsock_set_curve_serverkey (link->dealer, self->options.broker_key);
    // Our outbox is the queue: with immediate, nothing is queued for a link not yet up.
    zsock_set_immediate (link->dealer, 1);
    zsock_set_reconnect_ivl (link->dealer, self->options.reconnect_ivl_ms);
    zsock_set_reconnect_ivl_max (link->dealer, self->options.reconnect_ivl_max_ms);
    zsock_set_handshake_ivl (link->dealer, self->options.handshake_ms);
    zsock_set_sndhwm (link->dealer, self->options.sndhwm);
    zsock_set_rcvhwm (link->dealer, self->options.rcvhwm);
    zsock_set_linger (link->dealer, 0);
    if (al_agent__socket_monitor (link->dealer, "agent", &link->monitor, error, error_size) != 0)
        goto failed;
    const char *endpoint = self->endpoints [self->endpoint_index];
    self->link_down_ms = al_clock_mono_ms ();
    self->info.endpoint_index = self->endpoint_index;
    if (zsock_connect (link->dealer, "%s", endpoint) != 0) {
        al_agent__format (error, error_size, "cannot connect to %s: %s", endpoint,
                  zmq_strerror (zmq_errno ()));
        goto failed;
    }
    return 0;
failed:
    s_link_close (link, 0);
    return -1;
}

//  Under the lock: send one frame without blocking. False when the link cannot take it.
static bool
s_send_frame (al_agent_t *self, s_link_t *link, const uint8_t *data, size_t size, int64_t now)
{
    if (!link->dealer || zmq_send (zsock_resolve (link->dealer), data, size, ZMQ_DONTWAIT) < 0)
        return false;
    self->last_tx_ms = now;
    return true;
}

//  Under the lock: send what the outbox, the delivery acks and the heartbeat timer owe.
static void
s_link_flush (al_agent_t *self, s_link_t *link, int64_t now)
{
    if (!self->info.connected)
        return;
    // We said nothing for 3 intervals (the whole process stalled, or the socket refused
    // our frames): the broker has forgotten us, yet it heartbeats any peer it hears
    // from, so nothing else would tell us. Register again on this link.
    if (self->info.registered && self->last_tx_ms
    &&  now - self->last_tx_ms > 3 * (int64_t) self->options.heartbeat_ms) {
        self->info.registered = false;
        s_link_registered_afresh (self);
    }
    // Never sent on this link, in order (the Register first).
    al_agent_entry_t *entry;
    while ((entry = zlistx_first (self->unsent))) {
        if (!s_send_frame (self, link, entry->data, entry->size, now))
            return;
        zlistx_delete (self->unsent, entry->handle);
        entry->handle = zlistx_add_end (self->inflight, entry);
        entry->queued = false;
        entry->sent_ms = now;
        if (entry->sends++ > 0)
            self->info.retransmissions++;
    }
    // Delivery acknowledgements (answered by nothing; a lost one is redone on redelivery):
    // whatever is queued leaves as ONE DeliveryAck listing up to the codec's cap of ids,
    // one frame and one audit row instead of one per delivery.
    while (self->ack_count > 0) {
        al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
        Airlock__DeliveryAck ack = AIRLOCK__DELIVERY_ACK__INIT;
        char id [AL_AGENT_ID_SIZE];
        al_agent__next_id (self, id);
        size_t listed = self->ack_count < AL_CODEC_MAX_DELIVERY_ACK_IDS
                      ? self->ack_count: AL_CODEC_MAX_DELIVERY_ACK_IDS;
        ack.delivery_id = self->ack_queue [0];
        ack.n_more_delivery_ids = listed - 1;
        ack.more_delivery_ids = listed > 1? self->ack_queue + 1: NULL;
        envelope.message_id = id;
        envelope.timestamp_ms = al_clock_wall_ms ();
        envelope.body_case = AIRLOCK__ENVELOPE__BODY_DELIVERY_ACK;
        envelope.delivery_ack = &ack;
        uint8_t *data = NULL;
        size_t size = 0;
        char error [256];
        al_codec_status_t status = al_codec_pack (&envelope, &data, &size, error, sizeof error);
        assert (status == AL_CODEC_OK);
        bool sent = s_send_frame (self, link, data, size, now);
        free (data);
        if (!sent)
            return;
        self->ack_count -= listed;
        memmove (self->ack_queue, self->ack_queue + listed, self->ack_count * sizeof (uint64_t));
        if (self->ack_count == 0)
            pthread_cond_broadcast (&self->cond);
    }
    // Retransmit what waited a retry interval without an answer (same message id).
    while ((entry = zlistx_first (self->inflight))
       &&  now - entry->sent_ms >= self->options.retry_ms) {
        if (!s_send_frame (self, link, entry->data, entry->size, now))
            return;
        zlistx_move_end (self->inflight, entry->handle);
        entry->sent_ms = now;
        entry->sends++;
        self->info.retransmissions++;
    }
    // Heartbeat, once registered (the broker knows nothing of us before).
    if (self->info.registered && now >= link->next_heartbeat_ms) {
        al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
        Airlock__Heartbeat heartbeat = AIRLOCK__HEARTBEAT__INIT;
        char id [AL_AGENT_ID_SIZE];
        heartbeat.sequence = ++self->heartbeat_sequence;
        snprintf (id, sizeof id, "hb-%" PRIu64, heartbeat.sequence);
        envelope.message_id = id;
        envelope.timestamp_ms = al_clock_wall_ms ();
        envelope.body_case = AIRLOCK__ENVELOPE__BODY_HEARTBEAT;
        envelope.heartbeat = &heartbeat;
        uint8_t *data = NULL;
        size_t size = 0;
        char error [256];
        al_codec_status_t status = al_codec_pack (&envelope, &data, &size, error, sizeof error);
        assert (status == AL_CODEC_OK);
        if (s_send_frame (self, link, data, size, now))
            self->info.heartbeats_sent++;
        free (data);
        link->next_heartbeat_ms = now + self->options.heartbeat_ms;
    }
}

static bool
s_recently_acked (al_agent_t *self, uint64_t delivery_id)
{
    for (size_t i = 0; i < AL_AGENT_ACKED_RING; i++)
        if (self->acked_ring [i] == delivery_id)
            return true;
    return false;
}

//  Under the lock: queue a DeliveryAck for the actor.
void
al_agent__queue_delivery_ack (al_agent_t *self, uint64_t delivery_id)
{
    if (self->ack_count == self->ack_capacity) {
        self->ack_capacity = self->ack_capacity ? self->ack_capacity * 2 : 64;
        self->ack_queue = realloc (self->ack_queue, self->ack_capacity * sizeof (uint64_t));
        assert (self->ack_queue);
    }
    self->ack_queue [self->ack_count++] = delivery_id;
}

//  Under the lock: one envelope from the broker. Takes ownership of it.
static void
s_handle_envelope (al_agent_t *self, al_envelope_t *envelope)
{
    al_agent_entry_t *entry = NULL;
    switch (envelope->body_case) {
        case AIRLOCK__ENVELOPE__BODY_HEARTBEAT:
            self->info.heartbeats_received++;
            break;

        case AIRLOCK__ENVELOPE__BODY_ACK: {
            const Airlock__Ack *ack = envelope->ack;
            entry = zhashx_lookup (self->entries, ack->acked_message_id);
            if (!entry || entry->done)
                break;      // a late answer to a retransmission
            if (entry->kind == AL_AGENT_KIND_STATUS) {
                // The query is recorded; its answer is the StatusReply. No more resends.
                entry->acked = true;
                entry->result.audit_sequence = ack->audit_sequence;
                al_agent__entry_unlist (self, entry);
                break;
            }
            entry->result.status = AL_AGENT_ACKED;
            entry->result.audit_sequence = ack->audit_sequence;
            if (ack->audit_hash.len == 32)
                memcpy (entry->result.audit_hash, ack->audit_hash.data, 32);
            entry->result.duplicate = ack->duplicate;
            snprintf (entry->result.reason, sizeof entry->result.reason, "%s", ack->detail ? ack->detail : "");
            if (entry->kind == AL_AGENT_KIND_REGISTER
            &&  streq (entry->id, self->register_id)) {
                self->info.registered = true;
                self->info.registrations++;
                *self->last_error = 0;
            }
            al_agent__entry_finish (self, entry);
            break;
        }

        case AIRLOCK__ENVELOPE__BODY_DENIED: {
            const Airlock__Denied *denied = envelope->denied;
            entry = *denied->denied_message_id
                  ? zhashx_lookup (self->entries, denied->denied_message_id) : NULL;
            if (!entry) {
                snprintf (self->last_error, sizeof self->last_error,
                          "the broker refused a frame (%s): %s",
                          denied->denied_message_id, denied->reason);
                break;
            }
            if (entry->done)
                break;
            entry->result.status = AL_AGENT_DENIED;
            entry->result.deny_code = denied->code;
            entry->result.audit_sequence = denied->audit_sequence;
            snprintf (entry->result.reason, sizeof entry->result.reason, "%s", denied->reason);
            if (entry->kind == AL_AGENT_KIND_REGISTER)
                snprintf (self->last_error, sizeof self->last_error,
                          "the broker refused the registration: %s", denied->reason);
            al_agent__entry_finish (self, entry);
            break;
        }

        case AIRLOCK__ENVELOPE__BODY_STATUS_REPLY: {
            if (*envelope->correlation_id)
                entry = zhashx_lookup (self->entries, envelope->correlation_id);
            else {
                // The broker correlates replies; an uncorrelated one answers an open query.
                for (al_agent_entry_t *candidate = zhashx_first (self->entries); candidate && !entry;
                     candidate = zhashx_next (self->entries))
                    if (candidate->kind == AL_AGENT_KIND_STATUS && !candidate->done)
                        entry = candidate;
            }
            if (!entry || entry->kind != AL_AGENT_KIND_STATUS || entry->done)
                break;
            entry->result.status = AL_AGENT_ACKED;
            entry->reply = envelope;
            envelope = NULL;
            al_agent__entry_finish (self, entry);
            break;
        }

        default: {
            // A delivery routed to us (or a broker message for us): for the caller.
            uint64_t delivery_id = envelope->delivery_id;
            if (delivery_id) {
                char key [24];
                snprintf (key, sizeof key, "%" PRIu64, delivery_id);
                if (zhashx_lookup (self->held, key)) {
                    // Redelivered while the caller still holds it.
                    self->info.redeliveries++;
                    break;
                }
                if (s_recently_acked (self, delivery_id)) {
                    // Our DeliveryAck was lost with a link: say it again.
                    self->info.redeliveries++;
                    al_agent__queue_delivery_ack (self, delivery_id);
                    break;
                }
                zhashx_insert (self->held, key, (void *) 1);
            }
            zlistx_add_end (self->deliveries, envelope);
            envelope = NULL;
            self->info.deliveries_received++;
            pthread_cond_broadcast (&self->cond);
            break;
        }
    }
    al_codec_free (&envelope);
}

//  Read what the DEALER has (bounded), decode outside the lock, handle under it.
static void
s_dealer_drain (al_agent_t *self, s_link_t *link)
{
    void *socket = zsock_resolve (link->dealer);
    for (int count = 0; count < S_RECV_BATCH; count++) {
        zmq_msg_t msg;
        zmq_msg_init (&msg);
        if (zmq_msg_recv (&msg, socket, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close (&msg);
            return;
        }
        bool multipart = zmq_msg_more (&msg);
        al_envelope_t *envelope = NULL;
        char error [256] = "";
        al_codec_status_t status = multipart ? AL_CODEC_ERR_DECODE
            : al_codec_unpack (zmq_msg_data (&msg), zmq_msg_size (&msg),
                               self->options.max_reply_bytes, &envelope, error, sizeof error);
        zmq_msg_close (&msg);
        while (multipart) {
            // The bus sends single frames; drop the rest of anything else.
            zmq_msg_init (&msg);
            multipart = zmq_msg_recv (&msg, socket, ZMQ_DONTWAIT) >= 0 && zmq_msg_more (&msg);
            zmq_msg_close (&msg);
            snprintf (error, sizeof error, "a multi-frame message");
        }
        pthread_mutex_lock (&self->mutex);
        int64_t now = al_clock_mono_ms ();
        self->last_rx_ms = now;
        self->info.last_broker_ms = now;
        self->backoff_ms = 0;
        if (status == AL_CODEC_OK)
            s_handle_envelope (self, envelope);
        else
            zsys_warning ("agent %s: dropped a frame from the broker: %s",
                          self->options.name, error);
        pthread_mutex_unlock (&self->mutex);
    }
}

//  Read socket monitor events: a handshake that succeeded is a new link.
static void
s_monitor_drain (al_agent_t *self, s_link_t *link, int64_t now)
{
    uint16_t event;
    char address [AL_AGENT_PATH_SIZE];
    while (al_agent__monitor_event (link->monitor, &event, address, sizeof address)) {
        pthread_mutex_lock (&self->mutex);
        al_telemetry_set (al_telemetry_series (al_telemetry_process (), AL_TELEMETRY_GAUGE, "airlock_agent_connected",
                                         "1 while the CURVE connection to the broker is up", NULL, NULL, NULL, NULL),
                       event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED? 1: event == ZMQ_EVENT_DISCONNECTED? 0
                       : self->info.connected);
        if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
            self->info.connected = true;
            self->info.registered = false;
            self->info.connections++;
            self->last_rx_ms = now;
            self->last_tx_ms = 0;
            s_link_registered_afresh (self);
            //  With several brokers, say which one answered (the others stay silent).
            if (self->endpoint_count > 1) {
                char brokers [AL_AGENT_ENDPOINTS_TEXT_SIZE];
                zsys_info ("agent %s: connected to the broker at %s (endpoints.brokers: %s)", self->options.name,
                           self->endpoints [self->endpoint_index],
                           al_agent_endpoints_describe (self->options.endpoint, brokers, sizeof brokers));
            }
        }
        else
        if (event == ZMQ_EVENT_DISCONNECTED) {
            self->info.connected = false;
            self->info.registered = false;
            self->link_down_ms = now;
        }
        else
            al_agent__handshake_failure (event, self->endpoints [self->endpoint_index],
                                         zcert_public_txt (self->cert), self->options.broker_key,
                                         self->last_error, sizeof self->last_error);
        pthread_cond_broadcast (&self->cond);
        pthread_mutex_unlock (&self->mutex);
    }
}

//  Under the lock: the broker said nothing for 3 intervals (plus backoff), or, with
//  several endpoints, the link was not up for an interval: remake the socket, on the
//  next endpoint when there are several. The backoff grows when a whole round of
//  endpoints failed (with one endpoint: every time). The outbox stays; the next link
//  registers and sends it again.
static void
s_link_remake (al_agent_t *self, s_link_t *link, int64_t now)
{
    //  Name the whole list and where the link goes next: with several brokers, the
    //  operator must see that the next one is tried, not only that one went silent.
    size_t next = self->endpoint_count > 1? (self->endpoint_index + 1) % self->endpoint_count: self->endpoint_index;
    if (self->endpoint_count > 1) {
        char brokers [AL_AGENT_ENDPOINTS_TEXT_SIZE];
        zsys_warning ("agent %s: no word from the broker at %s for %lld ms (heartbeat timeout): trying %s "
                      "(endpoints.brokers: %s)", self->options.name, self->endpoints [self->endpoint_index],
                      (long long) (now - self->last_rx_ms), self->endpoints [next],
                      al_agent_endpoints_describe (self->options.endpoint, brokers, sizeof brokers));
    }
    else
        zsys_warning ("agent %s: no word from the broker at %s for %lld ms (heartbeat timeout): reconnecting",
                      self->options.name, self->endpoints [self->endpoint_index], (long long) (now - self->last_rx_ms));
    s_link_close (link, 0);
    self->info.connected = false;
    self->info.registered = false;
    self->info.socket_recreations++;
    self->last_rx_ms = now;
    if (self->endpoint_count > 1) {
        self->endpoint_index = next;
        self->info.endpoint_switches++;
    }
    if (self->endpoint_index == 0)
        self->backoff_ms = self->backoff_ms
            ? (self->backoff_ms * 2 < self->options.reconnect_ivl_max_ms
               ? self->backoff_ms * 2 : self->options.reconnect_ivl_max_ms)
            : self->options.reconnect_ivl_ms;
    char error [256];
    if (s_link_open (self, link, error, sizeof error) != 0)
        snprintf (self->last_error, sizeof self->last_error, "%s", error);
}

//  Under the lock: is it time to give up on the current link?
static bool
s_link_given_up (al_agent_t *self, int64_t now)
{
    int64_t interval = self->options.heartbeat_ms;
    if (now - self->last_rx_ms > 3 * interval + self->backoff_ms)
        return true;        // the broker went silent (or never spoke)
    return self->endpoint_count > 1 && !self->info.connected
        && now - self->link_down_ms > interval + self->backoff_ms;
}

void
al_agent__actor (zsock_t *pipe, void *args)
{
    al_agent_t *self = args;
    s_link_t link = { NULL, NULL, 0 };
    char error [256];
    if (s_link_open (self, &link, error, sizeof error) != 0) {
        snprintf (self->start_error, sizeof self->start_error, "%s", error);
        zsock_signal (pipe, 0);
        return;
    }
    pthread_mutex_lock (&self->mutex);
    self->last_rx_ms = al_clock_mono_ms ();
    pthread_mutex_unlock (&self->mutex);
    zsock_signal (pipe, 0);

    bool terminated = false;
    while (!terminated) {
        int64_t now = al_clock_mono_ms ();
        // Wake at least for the next heartbeat and retry check.
        long timeout = self->options.heartbeat_ms < self->options.retry_ms
                     ? self->options.heartbeat_ms : self->options.retry_ms;
        if (link.next_heartbeat_ms > now && link.next_heartbeat_ms - now < timeout)
            timeout = (long) (link.next_heartbeat_ms - now);
        // A backlog the socket refused (high-water mark) goes as soon as it has room.
        pthread_mutex_lock (&self->mutex);
        bool backlog = self->info.connected
                    && (zlistx_size (self->unsent) > 0 || self->ack_count > 0);
        pthread_mutex_unlock (&self->mutex);
        zmq_pollitem_t items [3] = {
            { zsock_resolve (pipe), 0, ZMQ_POLLIN, 0 },
            { link.monitor ? zsock_resolve (link.monitor) : NULL, 0, ZMQ_POLLIN, 0 },
            { link.dealer ? zsock_resolve (link.dealer) : NULL, 0,
              (short) (ZMQ_POLLIN | (backlog ? ZMQ_POLLOUT : 0)), 0 }
        };
        int count = link.dealer ? 3 : 1;
        if (zmq_poll (items, count, timeout) < 0) {
            if (zmq_errno () == ETERM)
                break;      // the process is exiting under us
            continue;       // EINTR: a signal; the caller decides what it means
        }
        if (items [0].revents & ZMQ_POLLIN) {
            char *command = zstr_recv (pipe);
            if (!command || streq (command, "$TERM"))
                terminated = true;
            zstr_free (&command);
            pthread_mutex_lock (&self->mutex);
            self->wake_pending = false;
            pthread_mutex_unlock (&self->mutex);
        }
        now = al_clock_mono_ms ();
        if (count > 1 && (items [1].revents & ZMQ_POLLIN))
            s_monitor_drain (self, &link, now);
        if (count > 2 && (items [2].revents & ZMQ_POLLIN))
            s_dealer_drain (self, &link);
        now = al_clock_mono_ms ();
        pthread_mutex_lock (&self->mutex);
        if (s_link_given_up (self, now))
            s_link_remake (self, &link, now);
        if (!terminated)
            s_link_flush (self, &link, now);
        pthread_mutex_unlock (&self->mutex);
    }
    // Give what was handed to the socket (the last DeliveryAcks) a moment to leave.
    s_link_close (&link, 1000);
}

const char *
al_agent_endpoint (al_agent_t *self, char *endpoint, size_t endpoint_size)
{
    assert (self && endpoint && endpoint_size);
    pthread_mutex_lock (&self->mutex);
    snprintf (endpoint, endpoint_size, "%s", self->endpoints [self->endpoint_index]);
    pthread_mutex_unlock (&self->mutex);
    return endpoint;
}

const char *
al_agent_brokers (al_agent_t *self, char *text, size_t size)
{
    assert (self);
    //  options.endpoint is set before the actor starts and never changes.
    return al_agent_endpoints_describe (self->options.endpoint, text, size);
}
