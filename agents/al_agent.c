/*  al_agent.c: the agent runtime (see al_agent.h for the contract).

    Two halves share one mutex. The caller's half (any thread) packs envelopes into
    outbox entries, waits on a condition variable for outcomes and deliveries, and wakes
    the actor with one "WAKE" on the actor pipe (never more than one in flight, so the
    pipe never fills). The actor's half owns the DEALER socket and its monitor: it sends
    what the outbox holds, reads Ack / Denied / Heartbeat / StatusReply / deliveries,
    heartbeats, and remakes the socket when the broker stops answering.

    Outbox invariants: every entry is in the `entries` table (which owns it) until its
    outcome is collected (or at once for internal and abandoned ones). An entry without
    an outcome is in exactly one of two lists: `unsent` (to send on the current link, in
    order) or `inflight` (sent on the current link, oldest send first, so the retry scan
    stops at the first entry that is not due). A new link moves everything back to
    `unsent`, behind a fresh Register.
*/
#include "agents/al_agent.h"
#include "broker/al_telemetry.h"

#include <assert.h>
#include "proto/al_signature.h"
#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <sodium.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

//  Deliveries acknowledged recently: a redelivery of one is acknowledged again.
#define S_ACKED_RING 4096
//  Software version sent in Register.
#define AL_AGENT_VERSION "0.1.0"
//  Longest slice a caller sleeps before re-checking deadlines and the interrupt flag.
#define S_WAIT_SLICE_MS 200
//  Frames read from the socket per actor pass, so timers are never starved.
#define S_RECV_BATCH 1000

typedef enum {
    S_KIND_POSTED,      // al_agent_post: outcome collected by wait / next_result
    S_KIND_SYNC,        // al_agent_send: outcome collected by the sender
    S_KIND_STATUS,      // al_agent_status_query: completed by the StatusReply
    S_KIND_REGISTER     // internal: the link's registration
} s_kind_t;

typedef struct {
    char id [AL_AGENT_ID_SIZE];
    s_kind_t kind;
    uint8_t *data;              // packed envelope
    size_t size;
    void *handle;               // handle in unsent or inflight; NULL once answered
    bool queued;                // handle is in unsent (else in inflight)
    int64_t sent_ms;            // last send on the current link
    unsigned sends;             // sends over the entry's life
    bool done;                  // outcome known
    bool acked;                 // status query: the broker acknowledged it (reply pending)
    bool detached;              // the waiter gave up: discard the outcome
    void *done_handle;          // posted: handle in completed
    al_agent_result_t result;
    al_envelope_t *reply;       // status query: the StatusReply envelope
} s_entry_t;

struct _al_agent_t {
    al_agent_options_t options;
    zcert_t *cert;
    zactor_t *actor;
    char id_prefix [32];
    uint64_t boot_id;

    //  Everything below is shared with the actor and guarded by mutex.
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    bool wake_pending;          // a WAKE is in the actor pipe
    uint64_t counter;           // message id counter
    zhashx_t *entries;          // id -> s_entry_t, owns them
    zlistx_t *unsent;           // s_entry_t *, to send on the current link
    zlistx_t *inflight;         // s_entry_t *, sent on the current link, oldest first
    zlistx_t *completed;        // posted s_entry_t * with an outcome, arrival order
    size_t pending;             // user entries without an outcome
    char register_id [AL_AGENT_ID_SIZE];   // the current link's Register, "" if none
    zlistx_t *deliveries;       // al_envelope_t *, for al_agent_recv
    zhashx_t *held;             // delivery ids (decimal) queued or handed out, not acked
    uint64_t acked_ring [S_ACKED_RING];
    size_t acked_next;
    uint64_t *ack_queue;        // DeliveryAcks to send
    size_t ack_count;
    size_t ack_capacity;
    int64_t last_rx_ms;         // last envelope from the broker (monotonic)
    int64_t last_tx_ms;         // last frame handed to the socket on this link (0: none)
    int64_t backoff_ms;         // extra wait before the next socket remake
    uint64_t heartbeat_sequence;
    al_agent_info_t info;
    char last_error [512];
    char start_error [512];     // the actor could not make its first socket
};

//  The actor's own state: the socket and its monitor.
typedef struct {
    zsock_t *dealer;
    zsock_t *monitor;
    int64_t next_heartbeat_ms;
} s_link_t;

static volatile sig_atomic_t s_interrupted = 0;
//  Names the inproc endpoint of each socket monitor (unique in the process: an old
//  monitor's endpoint may still be registered for a moment after its socket closed).
static atomic_uint_fast64_t s_monitor_count = 0;

static int64_t
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t
s_wall_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

//  snprintf into an error buffer; truncation of an error text is acceptable.
static void
s_format (char *target, size_t size, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    vsnprintf (target, size, format, args);
    va_end (args);
}

static void
s_entry_destroy (void **item_p)
{
    s_entry_t *entry = *item_p;
    if (entry) {
        free (entry->data);
        al_codec_free (&entry->reply);
        free (entry);
        *item_p = NULL;
    }
}

static void
s_envelope_destroy (void **item_p)
{
    al_envelope_t *envelope = *item_p;
    al_codec_free (&envelope);
    *item_p = NULL;
}

//  Under the lock: the next message id.
static void
s_next_id (al_agent_t *self, char *id)
{
    snprintf (id, AL_AGENT_ID_SIZE, "%s-%016" PRIx64 "-%" PRIu64,
              self->id_prefix, self->boot_id, ++self->counter);
}

//  Under the lock: make sure the actor looks at the shared state soon.
static void
s_wake (al_agent_t *self)
{
    if (!self->wake_pending && self->actor) {
        self->wake_pending = true;
        zstr_send (self->actor, "WAKE");
    }
}

//  Under the lock: take an entry out of the send lists.
static void
s_entry_unlist (al_agent_t *self, s_entry_t *entry)
{
    if (entry->handle) {
        zlistx_delete (entry->queued ? self->unsent : self->inflight, entry->handle);
        entry->handle = NULL;
    }
}

//  Under the lock: the entry has its outcome (in entry->result). Wake waiters.
static void
s_entry_finish (al_agent_t *self, s_entry_t *entry)
{
    assert (!entry->done);
    s_entry_unlist (self, entry);
    entry->done = true;
    strcpy (entry->result.message_id, entry->id);
    if (entry->kind != S_KIND_REGISTER) {
        assert (self->pending > 0);
        self->pending--;
        al_telemetry_add (al_telemetry_series (al_telemetry_process (), AL_TELEMETRY_COUNTER, "airlock_agent_messages_total",
                                         "Messages this agent sent, by the broker's answer", "outcome",
                                         al_agent_status_name (entry->result.status), NULL, NULL), 1);
    }
    if (entry->kind == S_KIND_REGISTER || entry->detached)
        zhashx_delete (self->entries, entry->id);
    else
    if (entry->kind == S_KIND_POSTED)
        entry->done_handle = zlistx_add_end (self->completed, entry);
    pthread_cond_broadcast (&self->cond);
}

//  Under the lock: the caller collected the outcome; forget the entry.
static void
s_entry_collect (al_agent_t *self, s_entry_t *entry, al_agent_result_t *result)
{
    assert (entry->done);
    if (result)
        *result = entry->result;
    if (entry->done_handle)
        zlistx_delete (self->completed, entry->done_handle);
    zhashx_delete (self->entries, entry->id);
}

static void
s_result_clear (al_agent_result_t *result, al_agent_status_t status)
{
    memset (result, 0, sizeof *result);
    result->status = status;
}

//  Wait on the condition until signalled, a slice passes, or the deadline (-1: none).
//  Returns false once the deadline has passed. Called with the lock held.
static bool
s_wait (al_agent_t *self, int64_t deadline)
{
    int64_t now = s_now_ms ();
    if (deadline >= 0 && now >= deadline)
        return false;
    int64_t until = now + S_WAIT_SLICE_MS;
    if (deadline >= 0 && deadline < until)
        until = deadline;
    struct timespec ts = { .tv_sec = until / 1000, .tv_nsec = (until % 1000) * 1000000 };
    pthread_cond_timedwait (&self->cond, &self->mutex, &ts);
    return true;
}

static int64_t
s_deadline (int timeout_ms)
{
    return timeout_ms < 0 ? -1 : s_now_ms () + timeout_ms;
}

//  ---------------------------------------------------------------------------------
//  Options

void
al_agent_options_defaults (al_agent_options_t *options)
{
    assert (options);
    memset (options, 0, sizeof *options);
    options->subscribe_deliveries = false;
    options->heartbeat_ms = AL_CONFIG_DEFAULT_HEARTBEAT_MS;
    options->retry_ms = 3000;
    options->reconnect_ivl_ms = 250;
    options->reconnect_ivl_max_ms = 10000;
    options->handshake_ms = AL_CONFIG_DEFAULT_HANDSHAKE_MS;
    options->sndhwm = AL_CONFIG_DEFAULT_SNDHWM;
    options->rcvhwm = AL_CONFIG_DEFAULT_RCVHWM;
    options->max_pending = 10000;
    options->max_reply_bytes = 4 * 1024 * 1024;
}

static int
s_copy (char *target, size_t target_size, const char *value, const char *what,
        char *error, size_t error_size)
{
    if (strlen (value) >= target_size) {
        snprintf (error, error_size, "%s: longer than %zu characters", what, target_size - 1);
        return -1;
    }
    strcpy (target, value);
    return 0;
}

int
al_agent_options_from_config (al_agent_options_t *options, const al_config_t *config,
                              const char *role, char *error, size_t error_size)
{
    assert (options);
    assert (config);
    assert (role);
    int rc = -1;
    char *cert_path = al_config_agent_cert (config, role);
    zcert_t *broker_cert = NULL;
    if (!cert_path) {
        snprintf (error, error_size, "role '%s': not a valid role name", role);
        goto cleanup;
    }
    broker_cert = zcert_load (al_config_broker_cert (config));
    if (!broker_cert) {
        snprintf (error, error_size, "%s: cannot read the broker's certificate",
                  al_config_broker_cert (config));
        goto cleanup;
    }
    if (s_copy (options->endpoint, sizeof options->endpoint,
                al_config_router_endpoint (config), "endpoints.router", error, error_size)
    ||  s_copy (options->broker_key, sizeof options->broker_key,
                zcert_public_txt (broker_cert), "broker key", error, error_size)
    ||  s_copy (options->cert_path, sizeof options->cert_path, cert_path, "certificate path",
                error, error_size)
    ||  s_copy (options->name, sizeof options->name, role, "role", error, error_size))
        goto cleanup;
    options->heartbeat_ms = al_config_heartbeat_ms (config);
    options->handshake_ms = al_config_handshake_ms (config);
    options->sndhwm = al_config_sndhwm (config);
    options->rcvhwm = al_config_rcvhwm (config);
    if (options->max_reply_bytes < 4 * al_config_max_message_bytes (config))
        options->max_reply_bytes = 4 * al_config_max_message_bytes (config);
    rc = 0;
cleanup:
    zcert_destroy (&broker_cert);
    free (cert_path);
    return rc;
}

static int
s_options_check (const al_agent_options_t *options, char *error, size_t error_size)
{
    uint8_t key [32];
    if (!*options->endpoint) {
        snprintf (error, error_size, "endpoint: is required");
        return -1;
    }
    if (strlen (options->broker_key) != 40 || !zmq_z85_decode (key, options->broker_key)) {
        snprintf (error, error_size, "broker_key: '%s' is not a 40-character Z85 CURVE key",
                  options->broker_key);
        return -1;
    }
    if (!*options->cert_path) {
        snprintf (error, error_size, "cert_path: is required");
        return -1;
    }
    if (!*options->name) {
        snprintf (error, error_size, "name: is required");
        return -1;
    }
    if (options->heartbeat_ms < AL_CODEC_MIN_HEARTBEAT_MS
    ||  options->heartbeat_ms > AL_CODEC_MAX_HEARTBEAT_MS) {
        snprintf (error, error_size, "heartbeat_ms: %d is outside %d..%d", options->heartbeat_ms,
                  AL_CODEC_MIN_HEARTBEAT_MS, AL_CODEC_MAX_HEARTBEAT_MS);
        return -1;
    }
    if (options->retry_ms < 1 || options->reconnect_ivl_ms < 1
    ||  options->reconnect_ivl_max_ms < options->reconnect_ivl_ms || options->handshake_ms < 1
    ||  options->sndhwm < 1 || options->rcvhwm < 1 || options->max_pending < 1
    ||  options->max_reply_bytes < 1024) {
        snprintf (error, error_size, "options: retry, reconnect, handshake, hwm and size limits "
                  "must be positive (reconnect_ivl_max_ms >= reconnect_ivl_ms, max_reply_bytes >= 1024)");
        return -1;
    }
    return 0;
}

//  ---------------------------------------------------------------------------------
//  The actor

//  Under the lock: pack and queue an internal envelope (Register) at the front or back.
static s_entry_t *
s_entry_internal (al_agent_t *self, al_envelope_t *envelope, s_kind_t kind, bool front)
{
    s_entry_t *entry = calloc (1, sizeof *entry);
    assert (entry);
    entry->kind = kind;
    s_next_id (self, entry->id);
    envelope->message_id = entry->id;
    envelope->timestamp_ms = s_wall_ms ();
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
    s_entry_t *old_register = *self->register_id
                            ? zhashx_lookup (self->entries, self->register_id) : NULL;
    if (old_register) {
        s_entry_unlist (self, old_register);
        zhashx_delete (self->entries, old_register->id);
    }
    // inflight (in the order last sent) then unsent: all go again on this link, in order
    s_entry_t *entry;
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
    entry = s_entry_internal (self, &envelope, S_KIND_REGISTER, true);
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
    char monitor_endpoint [128];
    snprintf (monitor_endpoint, sizeof monitor_endpoint, "inproc://al-agent-monitor-%d-%" PRIuFAST64,
              (int) getpid (), atomic_fetch_add (&s_monitor_count, 1) + 1);
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
    if (zmq_socket_monitor (zsock_resolve (link->dealer), monitor_endpoint,
                            ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED
                          | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
                          | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) != 0) {
        snprintf (error, error_size, "cannot monitor the socket: %s", zmq_strerror (zmq_errno ()));
        goto failed;
    }
    link->monitor = zsock_new (ZMQ_PAIR);
    if (!link->monitor || zsock_connect (link->monitor, "%s", monitor_endpoint) != 0) {
        snprintf (error, error_size, "cannot connect the socket monitor: %s",
                  zmq_strerror (zmq_errno ()));
        goto failed;
    }
    if (zsock_connect (link->dealer, "%s", self->options.endpoint) != 0) {
        s_format (error, error_size, "cannot connect to %s: %s", self->options.endpoint,
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
    s_entry_t *entry;
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
    // Delivery acknowledgements (answered by nothing; a lost one is redone on redelivery).
    while (self->ack_count > 0) {
        al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
        Airlock__DeliveryAck ack = AIRLOCK__DELIVERY_ACK__INIT;
        char id [AL_AGENT_ID_SIZE];
        s_next_id (self, id);
        ack.delivery_id = self->ack_queue [0];
        envelope.message_id = id;
        envelope.timestamp_ms = s_wall_ms ();
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
        memmove (self->ack_queue, self->ack_queue + 1, --self->ack_count * sizeof (uint64_t));
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
        envelope.timestamp_ms = s_wall_ms ();
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
    for (size_t i = 0; i < S_ACKED_RING; i++)
        if (self->acked_ring [i] == delivery_id)
            return true;
    return false;
}

//  Under the lock: queue a DeliveryAck for the actor.
static void
s_queue_delivery_ack (al_agent_t *self, uint64_t delivery_id)
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
    s_entry_t *entry = NULL;
    switch (envelope->body_case) {
        case AIRLOCK__ENVELOPE__BODY_HEARTBEAT:
            self->info.heartbeats_received++;
            break;

        case AIRLOCK__ENVELOPE__BODY_ACK: {
            const Airlock__Ack *ack = envelope->ack;
            entry = zhashx_lookup (self->entries, ack->acked_message_id);
            if (!entry || entry->done)
                break;      // a late answer to a retransmission
            if (entry->kind == S_KIND_STATUS) {
                // The query is recorded; its answer is the StatusReply. No more resends.
                entry->acked = true;
                entry->result.audit_sequence = ack->audit_sequence;
                s_entry_unlist (self, entry);
                break;
            }
            entry->result.status = AL_AGENT_ACKED;
            entry->result.audit_sequence = ack->audit_sequence;
            if (ack->audit_hash.len == 32)
                memcpy (entry->result.audit_hash, ack->audit_hash.data, 32);
            entry->result.duplicate = ack->duplicate;
            snprintf (entry->result.reason, sizeof entry->result.reason, "%s", ack->detail ? ack->detail : "");
            if (entry->kind == S_KIND_REGISTER
            &&  streq (entry->id, self->register_id)) {
                self->info.registered = true;
                self->info.registrations++;
                *self->last_error = 0;
            }
            s_entry_finish (self, entry);
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
            if (entry->kind == S_KIND_REGISTER)
                snprintf (self->last_error, sizeof self->last_error,
                          "the broker refused the registration: %s", denied->reason);
            s_entry_finish (self, entry);
            break;
        }

        case AIRLOCK__ENVELOPE__BODY_STATUS_REPLY: {
            if (*envelope->correlation_id)
                entry = zhashx_lookup (self->entries, envelope->correlation_id);
            else {
                // The broker correlates replies; an uncorrelated one answers an open query.
                for (s_entry_t *candidate = zhashx_first (self->entries); candidate && !entry;
                     candidate = zhashx_next (self->entries))
                    if (candidate->kind == S_KIND_STATUS && !candidate->done)
                        entry = candidate;
            }
            if (!entry || entry->kind != S_KIND_STATUS || entry->done)
                break;
            entry->result.status = AL_AGENT_ACKED;
            entry->reply = envelope;
            envelope = NULL;
            s_entry_finish (self, entry);
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
                    s_queue_delivery_ack (self, delivery_id);
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
        int64_t now = s_now_ms ();
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
    void *socket = zsock_resolve (link->monitor);
    while (true) {
        zmq_msg_t msg;
        zmq_msg_init (&msg);
        if (zmq_msg_recv (&msg, socket, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close (&msg);
            return;
        }
        uint16_t event = 0;
        uint32_t value = 0;
        if (zmq_msg_size (&msg) >= 6) {
            memcpy (&event, zmq_msg_data (&msg), 2);
            memcpy (&value, (uint8_t *) zmq_msg_data (&msg) + 2, 4);
        }
        bool more = zmq_msg_more (&msg);
        zmq_msg_close (&msg);
        while (more) {
            zmq_msg_init (&msg);
            more = zmq_msg_recv (&msg, socket, ZMQ_DONTWAIT) >= 0 && zmq_msg_more (&msg);
            zmq_msg_close (&msg);
        }
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
        }
        else
        if (event == ZMQ_EVENT_DISCONNECTED) {
            self->info.connected = false;
            self->info.registered = false;
        }
        else
        if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
            s_format (self->last_error, sizeof self->last_error,
                      "handshake with %s failed: the broker refused this key (%s is not in "
                      "identities.yaml, or the broker key is wrong)",
                      self->options.endpoint, zcert_public_txt (self->cert));
        else
        if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL || event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL)
            s_format (self->last_error, sizeof self->last_error,
                      "handshake with %s failed (wrong broker key %s, or not an airlock broker)",
                      self->options.endpoint, self->options.broker_key);
        pthread_cond_broadcast (&self->cond);
        pthread_mutex_unlock (&self->mutex);
    }
}

//  Under the lock: the broker said nothing for 3 intervals (plus backoff): remake the
//  socket. The outbox stays; the next link registers and sends it again.
static void
s_link_remake (al_agent_t *self, s_link_t *link, int64_t now)
{
    zsys_warning ("agent %s: no word from the broker for %lld ms (heartbeat timeout): reconnecting", self->options.name, (long long) (now - self->last_rx_ms));
    s_link_close (link, 0);
    self->info.connected = false;
    self->info.registered = false;
    self->info.socket_recreations++;
    self->last_rx_ms = now;
    self->backoff_ms = self->backoff_ms
        ? (self->backoff_ms * 2 < self->options.reconnect_ivl_max_ms
           ? self->backoff_ms * 2 : self->options.reconnect_ivl_max_ms)
        : self->options.reconnect_ivl_ms;
    char error [256];
    if (s_link_open (self, link, error, sizeof error) != 0)
        snprintf (self->last_error, sizeof self->last_error, "%s", error);
}

static void
s_actor (zsock_t *pipe, void *args)
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
    self->last_rx_ms = s_now_ms ();
    pthread_mutex_unlock (&self->mutex);
    zsock_signal (pipe, 0);

    bool terminated = false;
    while (!terminated) {
        int64_t now = s_now_ms ();
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
        now = s_now_ms ();
        if (count > 1 && (items [1].revents & ZMQ_POLLIN))
            s_monitor_drain (self, &link, now);
        if (count > 2 && (items [2].revents & ZMQ_POLLIN))
            s_dealer_drain (self, &link);
        now = s_now_ms ();
        pthread_mutex_lock (&self->mutex);
        if (now - self->last_rx_ms > 3 * (int64_t) self->options.heartbeat_ms + self->backoff_ms)
            s_link_remake (self, &link, now);
        if (!terminated)
            s_link_flush (self, &link, now);
        pthread_mutex_unlock (&self->mutex);
    }
    // Give what was handed to the socket (the last DeliveryAcks) a moment to leave.
    s_link_close (&link, 1000);
}

//  ---------------------------------------------------------------------------------
//  The caller's side

al_agent_t *
al_agent_new (const al_agent_options_t *options, char *error, size_t error_size)
{
    assert (options);
    if (s_options_check (options, error, error_size) != 0)
        return NULL;
    if (sodium_init () < 0) {
        snprintf (error, error_size, "libsodium: cannot initialise");
        return NULL;
    }
    al_agent_t *self = calloc (1, sizeof *self);
    assert (self);
    self->options = *options;
    self->cert = zcert_load (options->cert_path);
    if (!self->cert) {
        snprintf (error, error_size, "%s: cannot read the certificate", options->cert_path);
        goto failed;
    }
    uint8_t zero [32] = { 0 };
    if (memcmp (zcert_secret_key (self->cert), zero, 32) == 0) {
        snprintf (error, error_size, "%s_secret: no secret key (missing or unreadable)",
                  options->cert_path);
        goto failed;
    }
    //  The secret half must be its owner's alone: a key others can read is no identity.
    char secret_path [sizeof options->cert_path + 8];
    snprintf (secret_path, sizeof secret_path, "%s_secret", options->cert_path);
    if (!al_secret_file_private (access (secret_path, F_OK) == 0 ? secret_path : options->cert_path, -1,
                                 error, error_size))
        goto failed;
    // Message id prefix: the name as visible ASCII, short enough for a 64-character id.
    size_t length = 0;
    for (const char *c = options->name; *c && length < 24; c++)
        self->id_prefix [length++] = (*c > 0x20 && *c < 0x7F) ? *c : '_';
    self->id_prefix [length] = 0;
    randombytes_buf (&self->boot_id, sizeof self->boot_id);

    pthread_condattr_t attr;
    pthread_condattr_init (&attr);
    pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
    pthread_cond_init (&self->cond, &attr);
    pthread_condattr_destroy (&attr);
    pthread_mutex_init (&self->mutex, NULL);
    self->entries = zhashx_new ();
    zhashx_set_destructor (self->entries, s_entry_destroy);
    self->unsent = zlistx_new ();
    self->inflight = zlistx_new ();
    self->completed = zlistx_new ();
    self->deliveries = zlistx_new ();
    zlistx_set_destructor (self->deliveries, s_envelope_destroy);
    self->held = zhashx_new ();
    assert (self->entries && self->unsent && self->inflight && self->completed
         && self->deliveries && self->held);

    self->actor = zactor_new (s_actor, self);
    if (!self->actor || *self->start_error) {
        snprintf (error, error_size, "%s", *self->start_error ? self->start_error
                                                              : "cannot start the agent actor");
        goto failed;
    }
    return self;
failed:
    al_agent_destroy (&self);
    return NULL;
}

void
al_agent_destroy (al_agent_t **self_p)
{
    assert (self_p);
    al_agent_t *self = *self_p;
    if (!self)
        return;
    zactor_destroy (&self->actor);
    if (self->entries) {
        zlistx_destroy (&self->unsent);
        zlistx_destroy (&self->inflight);
        zlistx_destroy (&self->completed);
        zhashx_destroy (&self->entries);
        zlistx_destroy (&self->deliveries);
        zhashx_destroy (&self->held);
        pthread_mutex_destroy (&self->mutex);
        pthread_cond_destroy (&self->cond);
    }
    free (self->ack_queue);
    zcert_destroy (&self->cert);
    free (self);
    *self_p = NULL;
}

const char *
al_agent_status_name (al_agent_status_t status)
{
    switch (status) {
        case AL_AGENT_ACKED:   return "acked";
        case AL_AGENT_DENIED:  return "denied";
        case AL_AGENT_TIMEOUT: return "timeout";
        case AL_AGENT_INVALID: return "invalid";
        case AL_AGENT_QUEUED:  return "queued";
        case AL_AGENT_BUSY:    return "busy";
    }
    return "unknown";
}

//  Pack ENVELOPE into a new entry of KIND and put it in the outbox, waiting while the
//  outbox is full. Returns QUEUED with *entry_p set, or BUSY / INVALID.
static al_agent_status_t
s_enqueue (al_agent_t *self, const al_envelope_t *envelope, s_kind_t kind, int timeout_ms,
           s_entry_t **entry_p, char *message_id, char *error, size_t error_size)
{
    assert (self);
    assert (envelope);
    *entry_p = NULL;
    int64_t deadline = s_deadline (timeout_ms);
    s_entry_t *entry = calloc (1, sizeof *entry);
    assert (entry);
    entry->kind = kind;
    if (envelope->message_id && *envelope->message_id) {
        if (strlen (envelope->message_id) > AL_CODEC_MAX_ID_LEN) {
            snprintf (error, error_size, "message_id: longer than %d characters", AL_CODEC_MAX_ID_LEN);
            free (entry);
            return AL_AGENT_INVALID;
        }
        strcpy (entry->id, envelope->message_id);
    }
    else {
        pthread_mutex_lock (&self->mutex);
        s_next_id (self, entry->id);
        pthread_mutex_unlock (&self->mutex);
    }
    // Pack a shallow copy: our id and time; sender and delivery_id are the broker's.
    al_envelope_t copy = *envelope;
    copy.message_id = entry->id;
    if (copy.timestamp_ms == 0)
        copy.timestamp_ms = s_wall_ms ();
    copy.sender = NULL;
    copy.delivery_id = 0;
    char reason [256];
    if (al_codec_pack (&copy, &entry->data, &entry->size, reason, sizeof reason) != AL_CODEC_OK) {
        snprintf (error, error_size, "%s", reason);
        free (entry);
        return AL_AGENT_INVALID;
    }
    pthread_mutex_lock (&self->mutex);
    while (self->pending >= self->options.max_pending)
        if (!s_wait (self, deadline))
            break;
    al_agent_status_t status = AL_AGENT_QUEUED;
    if (self->pending >= self->options.max_pending) {
        snprintf (error, error_size, "the outbox holds %zu messages", self->pending);
        status = AL_AGENT_BUSY;
    }
    else
    if (zhashx_lookup (self->entries, entry->id)) {
        snprintf (error, error_size, "message_id: '%s' is already in the outbox", entry->id);
        status = AL_AGENT_INVALID;
    }
    else {
        zhashx_insert (self->entries, entry->id, entry);
        entry->queued = true;
        entry->handle = zlistx_add_end (self->unsent, entry);
        self->pending++;
        s_wake (self);
        *entry_p = entry;
        if (message_id)
            strcpy (message_id, entry->id);
    }
    pthread_mutex_unlock (&self->mutex);
    if (status != AL_AGENT_QUEUED)
        s_entry_destroy ((void **) &entry);
    return status;
}

//  Under the lock: wait for a sync or status entry; on timeout leave it detached.
static al_agent_status_t
s_wait_entry (al_agent_t *self, s_entry_t *entry, int64_t deadline, al_agent_result_t *result,
              al_envelope_t **reply_p)
{
    while (!entry->done)
        if (!s_wait (self, deadline))
            break;
    if (!entry->done) {
        entry->detached = true;
        s_result_clear (result, AL_AGENT_TIMEOUT);
        strcpy (result->message_id, entry->id);
        return AL_AGENT_TIMEOUT;
    }
    if (reply_p) {
        *reply_p = entry->reply;
        entry->reply = NULL;
    }
    s_entry_collect (self, entry, result);
    return result->status;
}

al_agent_status_t
al_agent_send (al_agent_t *self, const al_envelope_t *envelope, int timeout_ms,
               al_agent_result_t *result)
{
    assert (self);
    assert (result);
    int64_t deadline = s_deadline (timeout_ms);
    s_entry_t *entry;
    s_result_clear (result, AL_AGENT_INVALID);
    al_agent_status_t status = s_enqueue (self, envelope, S_KIND_SYNC, timeout_ms, &entry,
                                          NULL, result->reason, sizeof result->reason);
    if (status != AL_AGENT_QUEUED) {
        result->status = status == AL_AGENT_BUSY ? AL_AGENT_TIMEOUT : status;
        return result->status;
    }
    pthread_mutex_lock (&self->mutex);
    status = s_wait_entry (self, entry, deadline, result, NULL);
    pthread_mutex_unlock (&self->mutex);
    return status;
}

al_agent_status_t
al_agent_post (al_agent_t *self, const al_envelope_t *envelope, int timeout_ms,
               char *message_id, char *error, size_t error_size)
{
    s_entry_t *entry;
    char reason [256] = "";
    al_agent_status_t status = s_enqueue (self, envelope, S_KIND_POSTED, timeout_ms, &entry,
                                          message_id, reason, sizeof reason);
    if (status != AL_AGENT_QUEUED && error)
        snprintf (error, error_size, "%s", reason);
    return status;
}

al_agent_status_t
al_agent_wait (al_agent_t *self, const char *message_id, int timeout_ms, al_agent_result_t *result)
{
    assert (self);
    assert (message_id);
    assert (result);
    int64_t deadline = s_deadline (timeout_ms);
    pthread_mutex_lock (&self->mutex);
    s_entry_t *entry = zhashx_lookup (self->entries, message_id);
    if (!entry || entry->kind != S_KIND_POSTED) {
        pthread_mutex_unlock (&self->mutex);
        s_result_clear (result, AL_AGENT_INVALID);
        snprintf (result->reason, sizeof result->reason, "no posted message '%s'", message_id);
        return AL_AGENT_INVALID;
    }
    while (!entry->done)
        if (!s_wait (self, deadline))
            break;
    al_agent_status_t status = AL_AGENT_TIMEOUT;
    if (entry->done) {
        s_entry_collect (self, entry, result);
        status = result->status;
    }
    else {
        s_result_clear (result, AL_AGENT_TIMEOUT);
        snprintf (result->message_id, sizeof result->message_id, "%s", message_id);
    }
    pthread_mutex_unlock (&self->mutex);
    return status;
}

al_agent_status_t
al_agent_next_result (al_agent_t *self, int timeout_ms, al_agent_result_t *result)
{
    assert (self);
    assert (result);
    int64_t deadline = s_deadline (timeout_ms);
    pthread_mutex_lock (&self->mutex);
    while (zlistx_size (self->completed) == 0)
        if (!s_wait (self, deadline))
            break;
    s_entry_t *entry = zlistx_first (self->completed);
    al_agent_status_t status = AL_AGENT_TIMEOUT;
    if (entry) {
        s_entry_collect (self, entry, result);
        status = result->status;
    }
    else
        s_result_clear (result, AL_AGENT_TIMEOUT);
    pthread_mutex_unlock (&self->mutex);
    return status;
}

size_t
al_agent_pending (al_agent_t *self)
{
    assert (self);
    pthread_mutex_lock (&self->mutex);
    size_t pending = self->pending;
    pthread_mutex_unlock (&self->mutex);
    return pending;
}

int
al_agent_flush (al_agent_t *self, int timeout_ms)
{
    assert (self);
    int64_t deadline = s_deadline (timeout_ms);
    pthread_mutex_lock (&self->mutex);
    s_wake (self);
    while (self->pending > 0 || self->ack_count > 0)
        if (!s_wait (self, deadline))
            break;
    int rc = self->pending > 0 || self->ack_count > 0 ? -1 : 0;
    pthread_mutex_unlock (&self->mutex);
    return rc;
}

al_envelope_t *
al_agent_recv (al_agent_t *self, int timeout_ms)
{
    assert (self);
    int64_t deadline = s_deadline (timeout_ms);
    pthread_mutex_lock (&self->mutex);
    while (zlistx_size (self->deliveries) == 0 && !al_agent_interrupted ())
        if (!s_wait (self, deadline))
            break;
    al_envelope_t *envelope = NULL;
    if (!al_agent_interrupted ()) {
        void *handle = zlistx_first (self->deliveries) ? zlistx_cursor (self->deliveries) : NULL;
        if (handle)
            envelope = zlistx_detach (self->deliveries, handle);
    }
    pthread_mutex_unlock (&self->mutex);
    if (envelope)
        al_telemetry_add (al_telemetry_series (al_telemetry_process (), AL_TELEMETRY_COUNTER, "airlock_agent_deliveries_total",
                                         "Deliveries this agent received from the broker", NULL, NULL, NULL, NULL), 1);
    return envelope;
}

int
al_agent_ack_delivery (al_agent_t *self, uint64_t delivery_id)
{
    assert (self);
    char key [24];
    snprintf (key, sizeof key, "%" PRIu64, delivery_id);
    pthread_mutex_lock (&self->mutex);
    int rc = -1;
    if (delivery_id && zhashx_lookup (self->held, key)) {
        zhashx_delete (self->held, key);
        self->acked_ring [self->acked_next] = delivery_id;
        self->acked_next = (self->acked_next + 1) % S_ACKED_RING;
        s_queue_delivery_ack (self, delivery_id);
        s_wake (self);
        rc = 0;
    }
    pthread_mutex_unlock (&self->mutex);
    return rc;
}

al_envelope_t *
al_agent_status_query (al_agent_t *self, const char *what, const char *filter, uint32_t limit,
                       int timeout_ms, al_agent_result_t *result)
{
    assert (self);
    assert (what);
    assert (result);
    int64_t deadline = s_deadline (timeout_ms);
    al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
    Airlock__StatusQuery query = AIRLOCK__STATUS_QUERY__INIT;
    query.what = (char *) what;
    query.filter = (char *) (filter ? filter : "");
    query.limit = limit;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_STATUS_QUERY;
    envelope.status_query = &query;
    s_entry_t *entry;
    s_result_clear (result, AL_AGENT_INVALID);
    al_agent_status_t status = s_enqueue (self, &envelope, S_KIND_STATUS, timeout_ms, &entry,
                                          NULL, result->reason, sizeof result->reason);
    if (status != AL_AGENT_QUEUED) {
        result->status = status == AL_AGENT_BUSY ? AL_AGENT_TIMEOUT : status;
        return NULL;
    }
    al_envelope_t *reply = NULL;
    pthread_mutex_lock (&self->mutex);
    s_wait_entry (self, entry, deadline, result, &reply);
    pthread_mutex_unlock (&self->mutex);
    return reply;
}

int
al_agent_wait_registered (al_agent_t *self, int timeout_ms)
{
    assert (self);
    int64_t deadline = s_deadline (timeout_ms);
    pthread_mutex_lock (&self->mutex);
    while (!self->info.registered)
        if (!s_wait (self, deadline))
            break;
    int rc = self->info.registered ? 0 : -1;
    pthread_mutex_unlock (&self->mutex);
    return rc;
}

void
al_agent_info (al_agent_t *self, al_agent_info_t *info)
{
    assert (self);
    assert (info);
    pthread_mutex_lock (&self->mutex);
    *info = self->info;
    info->pending = self->pending;
    pthread_mutex_unlock (&self->mutex);
}

void
al_agent_last_error (al_agent_t *self, char *error, size_t error_size)
{
    assert (self);
    pthread_mutex_lock (&self->mutex);
    snprintf (error, error_size, "%s", self->last_error);
    pthread_mutex_unlock (&self->mutex);
}

//  ---------------------------------------------------------------------------------
//  Signals

static void
s_signal_handler (int signal_value)
{
    (void) signal_value;
    s_interrupted = 1;
    // What czmq's own handler does, so czmq loops elsewhere in the process stop too.
    zsys_interrupted = 1;
}

void
al_agent_catch_signals (void)
{
    zsys_init ();
    zsys_handler_set (s_signal_handler);
}

bool
al_agent_interrupted (void)
{
    return s_interrupted || zsys_interrupted;
}

void
al_agent_set_interrupted (bool interrupted)
{
    s_interrupted = interrupted;
    zsys_interrupted = interrupted;
}

al_agent_t *
al_agent_new_for_role (const al_config_t *config, const char *role, bool subscribe_deliveries,
                       char *error, size_t error_size)
{
    al_agent_options_t options;
    al_agent_options_defaults (&options);
    if (al_agent_options_from_config (&options, config, role, error, error_size) != 0)
        return NULL;
    options.subscribe_deliveries = subscribe_deliveries;
    return al_agent_new (&options, error, error_size);
}
