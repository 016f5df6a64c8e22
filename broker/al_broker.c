/*  al_broker.c: the broker's reactor: ZAP, group commit, acknowledgements, routing.

    One thread runs everything: a zmq_poll loop over the ROUTER (clients), the ZAP REP
    socket, and the two socket monitors. When the ROUTER is readable the loop drains up
    to batch_max messages without blocking, judges each one, appends all of them (denials
    and undecodable frames too) to the audit store in ONE transaction, commits (one
    fsync), and only then answers the senders and routes. Invariants:
    - nothing leaves the broker about a message before its audit row is committed;
    - the sender's identity and role come only from the ZAP User-Id of the frame (the
      client's Z85 CURVE key, set by our ZAP handler) mapped through the current policy;
      Envelope.sender from a client is never read and is overwritten in what we forward;
    - an accepted routed message is in the store's delivery queue (same transaction)
      until an instance of its role sends DeliveryAck.

    Why our own ZAP handler instead of czmq's zauth actor: zauth admits keys from a
    certificate directory, while airlock's keys live in the policy (identities.yaml), and
    zauth's User-Id is whatever its cert store says. Answering ZAP (RFC 27) here, in the
    reactor thread, gives exact control: a key is admitted iff the CURRENT policy maps
    it, User-Id is always the Z85 key, and a SIGHUP reload swaps the key set atomically
    between two ZAP requests with no lock and no second thread. The handler is bound to
    inproc://zeromq.zap.01 before any endpoint is bound, and ZMQ_ZAP_ENFORCE_DOMAIN is
    set and read back on both sockets, so libzmq never falls back to "no handler: accept".

    Oversized messages: ZMQ_MAXMSGSIZE is a hard cap at twice max_message_bytes, so
    libzmq itself drops a connection that announces a bigger frame before buffering it
    (memory stays bounded; the monitor's disconnect of a known peer is audited). A frame
    between the configured limit and the cap reaches us: it is audited as "Oversized"
    with the sender's identity, answered Denied(TOO_LARGE), and the connection is
    dropped by shutdown(2) of its descriptor (ZMQ_SRCFD of the frame): libzmq sees the
    connection end and closes it; the ROUTER API has no per-peer close.
    The drop waits for the answer. zmq_send only queues the Denied in the peer's pipe;
    libzmq's I/O thread writes it to the kernel later, and a ROUTER never says when a
    frame left. Cutting the descriptor at once lost the answer most of the time, and a
    client that retransmits until answered would loop forever. So the peer enters a
    closing state when its oversized frame is read: what it sends afterwards is dropped
    unread (not audited, not answered), it gets no heartbeats or deliveries, and
    s_close_due cuts it once (a) S_CLOSE_GRACE_MS have passed since the Denied was
    queued, time for the I/O thread to write it, and (b) the kernel's send queue of that
    descriptor is empty (SIOCOUTQ: on TCP every byte acknowledged by the peer's kernel,
    on ipc every byte read by the peer), so the reset that follows the close cannot
    discard the answer. A peer that does not read is cut after S_CLOSE_LIMIT_MS anyway.
    Before cutting, the descriptor's socket inode is compared with the one seen with the
    peer's first frame, so a descriptor number reused by a new connection is never cut.
    Frames of a dropped closing peer can still sit in the ROUTER's queue after its
    connection ended: its routing id stays in `closed` for S_CLOSE_LIMIT_MS, and such
    frames are dropped too (a client that picks its own routing id and reconnects at once
    is not answered until then; it retransmits).

    Threads: the reactor owns everything but the checkpoint writer, a second thread with
    its own read-only store handle that signs and writes the checkpoint file when the
    reactor asks (mutex + condition variable), so its fsyncs never delay an Ack.

    The broker trusts only the head it wrote. It is the log's only writer (the flock on
    DATABASE.lock), so it keeps in memory the row count and head hash its own last
    commit left (own_rows, own_head). Before appending a batch, inside the write lock,
    the store re-reads the head (one indexed SELECT of the last row, which al_store_begin
    does anyway) and s_head_is_ours compares it with ours; a checkpoint signs our head,
    never the file's, and only if the file still holds it (al_store_checkpoint_write_head).
    A mismatch means the file was changed under the running broker, e.g. a row rewritten
    and the chain recomputed so that verify alone passes. No row can be chained safely
    then: appending one would extend the forged chain with the broker's own rows, and a
    row the forger can rewrite proves nothing. So the broker writes a plain-text incident
    file beside the database (al_broker_incident_path) and an error to its log, answers
    nothing more, signs nothing more, and al_broker_run returns -1 (non-zero exit).

    Handshake failures (NULL mechanism, garbage, timeouts) come from socket monitors and
    ZAP refusals from the handler; both are audited through a token bucket, because
    unauthenticated peers must not be able to fill the disk.
*/
#include "broker/al_broker.h"
#include "base/al_crashpoint.h"
#include "broker/al_approvals.h"
#include "base/al_sd_notify.h"
#include "broker/al_telemetry.h"
#include "policies/al_policy.h"
#include "proto/al_codec.h"
#include "proto/al_signature.h"
#include "store/al_store.h"
#include <assert.h>
#include <czmq.h>
#include <limits.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <linux/sockios.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

//  Draft libzmq option, set by number (not in stable headers).
#define S_ZMQ_ZAP_ENFORCE_DOMAIN 93
#define S_ZAP_DOMAIN "airlock"
#define S_ZAP_ENDPOINT "inproc://zeromq.zap.01"
//  A peer is dead after this many missed heartbeat intervals.
#define S_MISSED_HEARTBEATS 3
//  Pending deliveries looked at per role and sweep.
#define S_SWEEP_PAGE 256
#define S_SWEEP_BUDGET 4096
//  Unauthenticated events (handshake failures, refused keys) audited per second / burst.
#define S_UNAUTH_RATE 20.0
#define S_UNAUTH_BURST 100.0
#define S_BROKER_IDENTITY "broker"
//  A peer that sent an oversized frame is cut this long after its Denied was queued, once
//  the kernel has sent it on (see the file comment), or after the limit regardless.
#define S_CLOSE_GRACE_MS 200
#define S_CLOSE_LIMIT_MS 5000
//  How often the reactor looks at closing peers while there are some.
#define S_CLOSE_POLL_MS 20

//  ---- small helpers ------------------------------------------------------------------

static uint64_t
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

static uint64_t
s_mono_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

static void
s_hex (const uint8_t *data, size_t size, char *out)
{
    static const char digits [] = "0123456789abcdef";
    for (size_t i = 0; i < size; i++) {
        out [2 * i] = digits [data [i] >> 4];
        out [2 * i + 1] = digits [data [i] & 15];
    }
    out [2 * size] = '\0';
}

//  Integer keys for zhashx (delivery sequences): stored in the key pointer itself.
static size_t
s_u64_hash (const void *key)
{
    uint64_t value = (uint64_t) (uintptr_t) key;
    return (size_t) (value * 0x9E3779B97F4A7C15ull);
}

static int
s_u64_compare (const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) a, y = (uintptr_t) b;
    return x < y? -1: x > y;
}

static void *
s_u64_dup (const void *key)
{
    return (void *) key;
}

static void
s_u64_free (void **key_p)
{
    *key_p = NULL;
}

static zhashx_t *
s_u64_table (void)
{
    zhashx_t *table = zhashx_new ();
    if (!table)
        return NULL;
    zhashx_set_key_hasher (table, s_u64_hash);
    zhashx_set_key_comparator (table, s_u64_compare);
    zhashx_set_key_duplicator (table, s_u64_dup);
    zhashx_set_key_destructor (table, s_u64_free);
    return table;
}

#define S_KEY(sequence) ((void *) (uintptr_t) (sequence))

//  ---- state --------------------------------------------------------------------------

//  One connection, known by its ROUTER routing id.
typedef struct {
    char key [512];                 // hex of the routing id (zhashx key)
    uint8_t routing_id [256];
    size_t routing_id_size;
    char user_id [64];              // Z85 CURVE key from ZAP
    char identity [AL_CODEC_MAX_NAME_LEN + 1];  // "" when the key is unknown
    char role [AL_CODEC_MAX_NAME_LEN + 1];
    uint64_t policy_generation;     // identity resolved under this policy
    int fd;                         // ZMQ_SRCFD of its frames
    bool takes_deliveries;          // registered with subscribe_deliveries
    uint64_t last_seen_mono;
    uint64_t last_seen_ms;          // wall clock, for status
    uint64_t dead_after_ms;         // missed-heartbeat window
    uint64_t heartbeat_sequence;    // our heartbeats to it: 1, 2, ... from first sight
    uint64_t unsent;                // sends refused at its high-water mark since the last tick
    //  The inode of its socket, seen with its first frame: tells its descriptor from the
    //  same number reused by a later connection (descriptor numbers are reused at once).
    ino_t socket_inode;
    //  A disconnect was reported for its descriptor number while its socket was still
    //  open: the next tick looks again (s_socket_gone).
    bool disconnect_reported;
    //  Closing (it sent an oversized frame): its later frames are dropped unread, and
    //  s_close_due cuts it once its Denied has left (answered_mono: when it was queued,
    //  0 before; closing_mono: when the frame was read).
    bool closing;
    uint64_t closing_mono;
    uint64_t answered_mono;
} s_peer_t;

//  Token bucket.
typedef struct {
    double tokens;
    uint64_t last_mono;
} s_bucket_t;

//  An event the broker itself records (policy loaded, handshake failed, ...).
typedef struct {
    char type [64];
    char sender [AL_CODEC_MAX_NAME_LEN + 1];
    char role [AL_CODEC_MAX_NAME_LEN + 1];
    char reason [512];
} s_event_t;

typedef enum {
    S_OUT_ACK,                      // accepted: Ack (or StatusReply for StatusQuery)
    S_OUT_DENY,                     // Denied
    S_OUT_NONE                      // DeliveryAck: audited, not answered
} s_outcome_t;

//  One received message within a batch.
typedef struct {
    zmq_msg_t body;
    char peer_key [512];
    //  Who sent it, captured when it was received: a routing id can pass to another
    //  connection (a client may choose its own) before the batch is answered.
    char user_id [64];
    char sender [AL_CODEC_MAX_NAME_LEN + 1];    // identity, or the Z85 key when unknown
    char role [AL_CODEC_MAX_NAME_LEN + 1];
    al_envelope_t *envelope;        // NULL if it did not decode
    const char *type;               // type name for the row
    al_store_decision_t decision;
    Airlock__DenyCode code;
    char reason [1024];
    bool drop_peer;                 // oversized: drop the connection after answering
    bool transient;                 // rate limited: recorded without message id (see s_judge)
    bool fresh;                     // appended now (not a retransmission)
    al_store_append_result_t result;
    //  SignedApproval: the gate's verdict (NULL for other types), the clock reading of
    //  its decision, the outcome text for the Ack, and the row of the grant it produced.
    al_approvals_verdict_t *verdict;
    uint64_t now_ms;
    char detail [512];
    uint64_t grant_sequence;
    uint64_t closed_sequence;       // the ApprovalClosed row the orchestrator is told of
} s_item_t;

struct _al_broker_t {
    const al_config_t *config;
    int lock_fd;                    // flock on DATABASE.lock: one broker per audit log
    al_policy_t *policy;
    uint64_t policy_generation;
    al_store_t *store;
    al_approvals_t *approvals;      // pending production requests and their approvals
    zcert_t *cert;
    uint8_t checkpoint_key [crypto_sign_SECRETKEYBYTES];
    zsock_t *router;
    zsock_t *pub;
    zsock_t *zap;
    zsock_t *monitor_router;
    zsock_t *monitor_pub;
    zhashx_t *peers;                // key hex → s_peer_t
    zhashx_t *buckets;              // identity → s_bucket_t
    zhashx_t *inflight;             // sequence → holder peer key (strdup)
    zhashx_t *topics;               // topic → uint64_t counter
    zhashx_t *round_robin;          // role → size_t counter
    zlistx_t *events;               // s_event_t waiting for the next batch
    size_t closing_peers;           // peers in the closing state (recounted by s_close_due)
    zhashx_t *closed;               // key hex of a dropped closing peer → uint64_t expiry (mono)
    s_item_t *items;
    size_t max_items;
    size_t max_message;
    uint64_t message_counter;       // broker-made message ids
    uint64_t next_tick_mono;
    uint64_t checkpoint_rows;
    uint64_t checkpoint_mono;
    //  The checkpoint writer: a thread with its own read-only store handle, so that
    //  signing and fsyncing the checkpoint file never stalls the reactor.
    pthread_t checkpoint_thread;
    bool checkpoint_thread_started;
    pthread_mutex_t checkpoint_lock;
    pthread_cond_t checkpoint_wake;
    bool checkpoint_requested;
    bool checkpoint_stop;
    al_store_t *checkpoint_store;
    //  The head as this broker's own last commit left it, the only one it chains onto
    //  or lets a checkpoint vouch for; the head handed with a checkpoint request (under
    //  checkpoint_lock); set by either thread when the file no longer holds our head.
    uint64_t own_rows;
    uint8_t own_head [AL_STORE_HASH_SIZE];
    uint64_t checkpoint_want_rows;
    uint8_t checkpoint_want_head [AL_STORE_HASH_SIZE];
    atomic_bool tampered;
    s_bucket_t unauth_bucket;
    uint64_t unauth_suppressed;
    volatile sig_atomic_t stop_requested;
    volatile sig_atomic_t reload_requested;
    bool failed;
    uint8_t *pack_buffer;
    size_t pack_capacity;
    //  Operator metrics (al_telemetry.h): series resolved once, updated atomically.
    al_telemetry_series_t *metric_batch_size;
    al_telemetry_series_t *metric_batch_seconds;
    al_telemetry_series_t *metric_commit_seconds;
    al_telemetry_series_t *metric_redeliveries;
    al_telemetry_series_t *metric_approvals_pending;
    al_telemetry_series_t *metric_checkpoint_age;      // touched when the log is wholly checkpointed
    _Atomic uint64_t checkpoint_written_rows;       // rows the last signed checkpoint covers
    al_telemetry_series_t *metric_checkpoint_seconds;
};

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
    for (size_t i = 0; i < sizeof s_routes / sizeof s_routes [0]; i++)
        if (strcmp (s_routes [i].type, type_name) == 0)
            return s_routes [i].role;
    return NULL;
}

//  ---- broker-made events -------------------------------------------------------------

static void
s_event_queue (al_broker_t *self, const char *type, const char *sender, const char *role,
               const char *format, ...)
{
    s_event_t *event = (s_event_t *) calloc (1, sizeof *event);
    if (!event)
        return;
    snprintf (event->type, sizeof event->type, "%s", type);
    snprintf (event->sender, sizeof event->sender, "%s", sender? sender: "");
    snprintf (event->role, sizeof event->role, "%s", role? role: "");
    va_list args;
    va_start (args, format);
    vsnprintf (event->reason, sizeof event->reason, format, args);
    va_end (args);
    zlistx_add_end (self->events, event);
}

static void
s_event_destroy (void **item_p)
{
    free (*item_p);
    *item_p = NULL;
}

static bool
s_bucket_take (s_bucket_t *bucket, double rate, double burst, uint64_t now_mono)
{
    if (bucket->last_mono == 0)
        bucket->tokens = burst;
    else
        bucket->tokens += (double) (now_mono - bucket->last_mono) * rate / 1000.0;
    if (bucket->tokens > burst)
        bucket->tokens = burst;
    bucket->last_mono = now_mono;
    if (bucket->tokens < 1.0)
        return false;
    bucket->tokens -= 1.0;
    return true;
}

//  An event about an unauthenticated peer: audited within a budget.
static void
s_unauth_event (al_broker_t *self, const char *type, const char *reason)
{
    if (!s_bucket_take (&self->unauth_bucket, S_UNAUTH_RATE, S_UNAUTH_BURST, s_mono_ms ())) {
        self->unauth_suppressed++;
        return;
    }
    if (self->unauth_suppressed)
        s_event_queue (self, type, "", "", "%s (and %llu similar events not recorded: audit budget)",
                       reason, (unsigned long long) self->unauth_suppressed);
    else
        s_event_queue (self, type, "", "", "%s", reason);
    self->unauth_suppressed = 0;
}

//  ---- packing and sending ----------------------------------------------------------------

//  Pack into the broker's reusable buffer; returns its size.
static size_t
s_pack (al_broker_t *self, const al_envelope_t *envelope)
{
    size_t size = airlock__envelope__get_packed_size (envelope);
    if (size > self->pack_capacity) {
        uint8_t *buffer = (uint8_t *) realloc (self->pack_buffer, size);
        assert (buffer);
        self->pack_buffer = buffer;
        self->pack_capacity = size;
    }
    size_t packed = airlock__envelope__pack (envelope, self->pack_buffer);
    assert (packed == size);
    return size;
}

//  Send [routing id][data] without blocking. Returns 0 or -1 (peer gone, or its queue
//  at the high-water mark: counted, and audited at the next tick).
static int
s_send_to (al_broker_t *self, s_peer_t *peer, const uint8_t *data, size_t size)
{
    void *router = zsock_resolve (self->router);
    if (zmq_send (router, peer->routing_id, peer->routing_id_size, ZMQ_SNDMORE | ZMQ_DONTWAIT) == -1
    ||  zmq_send (router, data, size, ZMQ_DONTWAIT) == -1) {
        if (zmq_errno () == EAGAIN)
            peer->unsent++;
        return -1;
    }
    return 0;
}

static void
s_envelope_init (al_broker_t *self, al_envelope_t *envelope, char *id_buffer, size_t id_size,
                 const char *prefix)
{
    airlock__envelope__init (envelope);
    snprintf (id_buffer, id_size, "%s-%llu", prefix, (unsigned long long) ++self->message_counter);
    envelope->message_id = id_buffer;
    envelope->timestamp_ms = s_now_ms ();
}

//  ---- peers --------------------------------------------------------------------------

//  A heartbeat to one peer. Its sequence restarts at 1 for every connection a broker
//  run sees, so a client that sees it go back knows the broker restarted and registers
//  again (the new broker does not know it takes deliveries).
static void
s_send_heartbeat (al_broker_t *self, s_peer_t *peer)
{
    char id [48];
    al_envelope_t envelope;
    s_envelope_init (self, &envelope, id, sizeof id, "hb");
    Airlock__Heartbeat heartbeat = AIRLOCK__HEARTBEAT__INIT;
    heartbeat.sequence = ++peer->heartbeat_sequence;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_HEARTBEAT;
    envelope.heartbeat = &heartbeat;
    size_t size = s_pack (self, &envelope);
    s_send_to (self, peer, self->pack_buffer, size);
}


static void
s_peer_free (void **item_p)
{
    free (*item_p);
    *item_p = NULL;
}

//  Resolve (or re-resolve after a reload) a peer's identity from its ZAP User-Id.
static void
s_peer_resolve (al_broker_t *self, s_peer_t *peer)
{
    const char *identity = NULL, *role = NULL;
    if (al_policy_identity_for_key (self->policy, peer->user_id, &identity, &role)) {
        snprintf (peer->identity, sizeof peer->identity, "%s", identity);
        snprintf (peer->role, sizeof peer->role, "%s", role);
    }
    else {
        peer->identity [0] = '\0';
        peer->role [0] = '\0';
        peer->takes_deliveries = false;
    }
    peer->policy_generation = self->policy_generation;
}

//  The peer a frame came from, created on first sight; NULL only without a User-Id.
static s_peer_t *
s_peer_touch (al_broker_t *self, const zmq_msg_t *routing_id, zmq_msg_t *body, char *key_out)
{
    const char *user_id = zmq_msg_gets (body, "User-Id");
    size_t id_size = zmq_msg_size ((zmq_msg_t *) routing_id);
    if (!user_id || id_size == 0 || id_size > 255)
        return NULL;
    s_hex ((const uint8_t *) zmq_msg_data ((zmq_msg_t *) routing_id), id_size, key_out);
    s_peer_t *peer = (s_peer_t *) zhashx_lookup (self->peers, key_out);
    if (peer && strcmp (peer->user_id, user_id) != 0) {
        //  A new connection reusing a routing id: forget the old one.
        zhashx_delete (self->peers, key_out);
        peer = NULL;
    }
    if (!peer) {
        peer = (s_peer_t *) calloc (1, sizeof *peer);
        assert (peer);
        snprintf (peer->key, sizeof peer->key, "%s", key_out);
        memcpy (peer->routing_id, zmq_msg_data ((zmq_msg_t *) routing_id), id_size);
        peer->routing_id_size = id_size;
        snprintf (peer->user_id, sizeof peer->user_id, "%s", user_id);
        struct stat status;
        int fd = zmq_msg_get (body, ZMQ_SRCFD);
        peer->socket_inode = fd >= 0 && fstat (fd, &status) == 0? status.st_ino: 0;
        peer->dead_after_ms = (uint64_t) S_MISSED_HEARTBEATS * (uint64_t) al_config_heartbeat_ms (self->config);
        s_peer_resolve (self, peer);
        zhashx_insert (self->peers, key_out, peer);
        s_send_heartbeat (self, peer);
    }
    else
    if (peer->policy_generation != self->policy_generation)
        s_peer_resolve (self, peer);
    peer->fd = zmq_msg_get (body, ZMQ_SRCFD);
    peer->last_seen_mono = s_mono_ms ();
    peer->last_seen_ms = s_now_ms ();
    return peer;
}

//  Is the peer's connection closed: its descriptor closed, or its number now serving
//  another socket?
static bool
s_socket_gone (const s_peer_t *peer)
{
    struct stat status;
    return peer->fd < 0 || fstat (peer->fd, &status) != 0 || status.st_ino != peer->socket_inode;
}

//  Forget a peer; deliveries it held go back to the queue (the next sweep resends them).
static void
s_peer_forget (al_broker_t *self, const char *key)
{
    zlistx_t *released = zlistx_new ();
    assert (released);
    for (char *holder = (char *) zhashx_first (self->inflight); holder;
         holder = (char *) zhashx_next (self->inflight))
        if (strcmp (holder, key) == 0)
            zlistx_add_end (released, (void *) zhashx_cursor (self->inflight));
    for (void *sequence = zlistx_first (released); sequence; sequence = zlistx_next (released))
        zhashx_delete (self->inflight, sequence);
    zlistx_destroy (&released);
    s_peer_t *peer = (s_peer_t *) zhashx_lookup (self->peers, key);
    if (peer && peer->closing) {
        uint64_t *expiry = (uint64_t *) malloc (sizeof *expiry);
        assert (expiry);
        *expiry = s_mono_ms () + S_CLOSE_LIMIT_MS;
        zhashx_update (self->closed, key, expiry);
    }
    zhashx_delete (self->peers, key);
}

//  Did this frame come from a closing peer dropped a moment ago (see the file comment)?
static bool
s_closed_recently (al_broker_t *self, zmq_msg_t *routing_id)
{
    size_t size = zmq_msg_size (routing_id);
    if (zhashx_size (self->closed) == 0 || size == 0 || size > 255)
        return false;
    char key [512];
    s_hex ((const uint8_t *) zmq_msg_data (routing_id), size, key);
    uint64_t *expiry = (uint64_t *) zhashx_lookup (self->closed, key);
    if (!expiry)
        return false;
    if (s_mono_ms () < *expiry)
        return true;
    zhashx_delete (self->closed, key);
    return false;
}

//  Forget the routing ids of dropped closing peers once their time is up.
static void
s_closed_purge (al_broker_t *self)
{
    uint64_t now = s_mono_ms ();
    zlistx_t *expired = zlistx_new ();
    assert (expired);
    for (uint64_t *expiry = (uint64_t *) zhashx_first (self->closed); expiry;
         expiry = (uint64_t *) zhashx_next (self->closed))
        if (now >= *expiry)
            zlistx_add_end (expired, (void *) zhashx_cursor (self->closed));
    for (const char *key = (const char *) zlistx_first (expired); key; key = (const char *) zlistx_next (expired))
        zhashx_delete (self->closed, key);
    zlistx_destroy (&expired);
}

//  The peer sent an oversized frame: from now on it is closing (see the file comment).
static void
s_peer_closing_begin (al_broker_t *self, s_peer_t *peer)
{
    if (peer->closing)
        return;
    peer->closing = true;
    peer->takes_deliveries = false;
    peer->closing_mono = s_mono_ms ();
    peer->answered_mono = 0;
    self->closing_peers++;
}

//  Bytes the kernel still holds for the peer (0 when unknown: then only time counts).
static int
s_unsent_bytes (int fd)
{
    int queued = 0;
    if (fd < 0 || ioctl (fd, SIOCOUTQ, &queued) != 0)
        return 0;
    return queued;
}

//  Cut the closing peers whose answer has left (see the file comment).
static void
s_close_due (al_broker_t *self)
{
    if (self->closing_peers == 0)
        return;
    uint64_t now = s_mono_ms ();
    size_t closing = 0;
    zlistx_t *due = zlistx_new ();
    assert (due);
    zlistx_set_duplicator (due, (czmq_duplicator *) strdup);
    zlistx_set_destructor (due, (czmq_destructor *) zstr_free);
    for (s_peer_t *peer = (s_peer_t *) zhashx_first (self->peers); peer;
         peer = (s_peer_t *) zhashx_next (self->peers)) {
        if (!peer->closing)
            continue;
        closing++;
        //  Not answered (yet): only the limit applies, so that no peer stays closing for
        //  ever should its answer never be sent.
        if (peer->answered_mono == 0) {
            if (now - peer->closing_mono >= S_CLOSE_LIMIT_MS)
                zlistx_add_end (due, peer->key);
            continue;
        }
        uint64_t waited = now - peer->answered_mono;
        if (waited < S_CLOSE_GRACE_MS
        ||  (waited < S_CLOSE_LIMIT_MS && s_unsent_bytes (peer->fd) > 0))
            continue;
        zlistx_add_end (due, peer->key);
    }
    for (char *key = (char *) zlistx_first (due); key; key = (char *) zlistx_next (due)) {
        s_peer_t *peer = (s_peer_t *) zhashx_lookup (self->peers, key);
        //  The ROUTER has no per-peer close: end the connection under libzmq, which then
        //  closes it. A descriptor whose socket changed belongs to another connection
        //  now (ours already ended): it is left alone.
        if (!s_socket_gone (peer))
            shutdown (peer->fd, SHUT_RDWR);
        s_peer_forget (self, key);
        closing--;
    }
    zlistx_destroy (&due);
    self->closing_peers = closing;
}

//  ---- deliveries ---------------------------------------------------------------------

//  A live instance of role taking deliveries, round-robin; NULL if none.
static s_peer_t *
s_pick_instance (al_broker_t *self, const char *role)
{
    size_t live = 0;
    for (s_peer_t *peer = (s_peer_t *) zhashx_first (self->peers); peer;
         peer = (s_peer_t *) zhashx_next (self->peers))
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
    for (s_peer_t *peer = (s_peer_t *) zhashx_first (self->peers); peer;
         peer = (s_peer_t *) zhashx_next (self->peers))
        if (peer->takes_deliveries && strcmp (peer->role, role) == 0 && index++ == wanted)
            return peer;
    return NULL;
}

//  Stamp sender and delivery id into envelope and pack it (the client's sender, if any,
//  is replaced; the unpacked original is restored so its owner frees it).
static size_t
s_pack_stamped (al_broker_t *self, al_envelope_t *envelope, const char *identity, const char *role,
                uint64_t sequence)
{
    Airlock__Sender sender = AIRLOCK__SENDER__INIT;
    sender.identity = (char *) identity;
    sender.role = (char *) role;
    Airlock__Sender *original = envelope->sender;
    uint64_t original_delivery = envelope->delivery_id;
    envelope->sender = &sender;
    envelope->delivery_id = sequence;
    size_t size = s_pack (self, envelope);
    envelope->sender = original;
    envelope->delivery_id = original_delivery;
    return size;
}

//  Send a stored event to an instance of role. Returns true if it went out.
static bool
s_deliver_stored (al_broker_t *self, const char *role, uint64_t sequence)
{
    s_peer_t *peer = s_pick_instance (self, role);
    if (!peer)
        return false;
    al_store_event_t event;
    if (al_store_event_get (self->store, sequence, &event) != AL_STORE_OK)
        return false;
    al_envelope_t *envelope = airlock__envelope__unpack (NULL, event.envelope_size, event.envelope);
    if (!envelope)
        return false;
    size_t size = s_pack_stamped (self, envelope, event.sender, event.role, sequence);
    airlock__envelope__free_unpacked (envelope, NULL);
    if (s_send_to (self, peer, self->pack_buffer, size))
        return false;
    zhashx_update (self->inflight, S_KEY (sequence), strdup (peer->key));
    return true;
}

//  Send what is pending for role and not in flight to a live holder.
static void
s_sweep_role (al_broker_t *self, const char *role)
{
    uint64_t after = 0;
    size_t budget = S_SWEEP_BUDGET;
    uint64_t sequences [S_SWEEP_PAGE];
    while (budget > 0) {
        size_t count = 0;
        if (al_store_delivery_pending (self->store, role, after, sequences, S_SWEEP_PAGE, &count)
            != AL_STORE_OK || count == 0)
            break;
        for (size_t i = 0; i < count && budget > 0; i++) {
            const char *holder = (const char *) zhashx_lookup (self->inflight, S_KEY (sequences [i]));
            if (holder && zhashx_lookup (self->peers, holder))
                continue;
            budget--;
            if (!s_deliver_stored (self, role, sequences [i]))
                return;
            if (holder)
                al_telemetry_add (self->metric_redeliveries, 1);
        }
        after = sequences [count - 1];
        if (count < S_SWEEP_PAGE)
            break;
    }
}

static void
s_sweep_all (al_broker_t *self)
{
    zlistx_t *roles = zlistx_new ();
    assert (roles);
    zlistx_set_duplicator (roles, (czmq_duplicator *) strdup);
    zlistx_set_destructor (roles, (czmq_destructor *) zstr_free);
    zlistx_set_comparator (roles, (czmq_comparator *) strcmp);
    for (s_peer_t *peer = (s_peer_t *) zhashx_first (self->peers); peer;
         peer = (s_peer_t *) zhashx_next (self->peers))
        if (peer->takes_deliveries && !zlistx_find (roles, peer->role))
            zlistx_add_end (roles, peer->role);
    for (char *role = (char *) zlistx_first (roles); role; role = (char *) zlistx_next (roles))
        s_sweep_role (self, role);
    zlistx_destroy (&roles);
}

//  ---- replies ------------------------------------------------------------------------

static void
s_reply_ack (al_broker_t *self, s_peer_t *peer, const char *message_id,
             const al_store_append_result_t *result, bool duplicate, const char *detail)
{
    char id [48];
    al_envelope_t envelope;
    s_envelope_init (self, &envelope, id, sizeof id, "ack");
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
    size_t size = s_pack (self, &envelope);
    s_send_to (self, peer, self->pack_buffer, size);
}

static void
s_reply_denied (al_broker_t *self, s_peer_t *peer, const char *message_id, Airlock__DenyCode code,
                const char *reason, uint64_t sequence)
{
    char id [48];
    al_envelope_t envelope;
    s_envelope_init (self, &envelope, id, sizeof id, "denied");
    Airlock__Denied denied = AIRLOCK__DENIED__INIT;
    denied.denied_message_id = (char *) message_id;
    denied.code = code;
    denied.reason = (char *) (reason && *reason? reason: "denied");
    denied.audit_sequence = sequence;
    envelope.correlation_id = (char *) message_id;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_DENIED;
    envelope.denied = &denied;
    size_t size = s_pack (self, &envelope);
    s_send_to (self, peer, self->pack_buffer, size);
}

static int
s_journal_add_json (const al_store_journal_entry_t *entry, void *arg)
{
    json_t *entries = (json_t *) arg;
    json_t *object = json_pack ("{s:I, s:I, s:s, s:s, s:s, s:s}",
                                "sequence", (json_int_t) entry->sequence, "time_ms", (json_int_t) entry->time_ms,
                                "step", entry->step? entry->step: "", "phase", entry->phase? entry->phase: "",
                                "status", entry->status? entry->status: "", "detail", entry->detail? entry->detail: "");
    return object? json_array_append_new (entries, object): -1;
}

//  The step journal of one deployment as {"deployment_id": ID, "entries": [...]}, or NULL
//  when the store cannot be read (the caller answers an error: never an empty journal,
//  which would tell deploy-manager that nothing ran).
static char *
s_journal_json (al_broker_t *self, const char *deployment_id)
{
    json_t *entries = json_array ();
    json_t *root = json_pack ("{s:s, s:o}", "deployment_id", deployment_id? deployment_id: "", "entries", entries);
    char *text = NULL;
    if (root && deployment_id && *deployment_id
    &&  al_store_journal_list (self->store, deployment_id, s_journal_add_json, entries) == AL_STORE_OK)
        text = json_dumps (root, JSON_COMPACT);
    json_decref (root);
    return text;
}

static void
s_reply_status (al_broker_t *self, s_peer_t *peer, const al_envelope_t *query)
{
    char id [48];
    al_envelope_t envelope;
    s_envelope_init (self, &envelope, id, sizeof id, "status");
    Airlock__StatusReply reply = AIRLOCK__STATUS_REPLY__INIT;
    size_t count = zhashx_size (self->peers), index = 0;
    Airlock__AgentStatus *agents = NULL;
    Airlock__AgentStatus **agent_list = NULL;
    const Airlock__ApprovalRequest **approvals = NULL;
    char *json = NULL;
    if (strcmp (query->status_query->what, "agents") == 0) {
        agents = (Airlock__AgentStatus *) calloc (count + 1, sizeof *agents);
        agent_list = (Airlock__AgentStatus **) calloc (count + 1, sizeof *agent_list);
        assert (agents && agent_list);
        uint64_t now = s_mono_ms ();
        for (s_peer_t *other = (s_peer_t *) zhashx_first (self->peers); other;
             other = (s_peer_t *) zhashx_next (self->peers)) {
            if (!other->identity [0])
                continue;
            airlock__agent_status__init (&agents [index]);
            agents [index].identity = other->identity;
            agents [index].role = other->role;
            agents [index].last_heartbeat_ms = other->last_seen_ms;
            agents [index].alive = now - other->last_seen_mono <= other->dead_after_ms;
            agent_list [index] = &agents [index];
            index++;
        }
        reply.n_agents = index;
        reply.agents = agent_list;
    }
    else
    if (strcmp (query->status_query->what, "approvals") == 0) {
        size_t pending = al_approvals_pending (self->approvals, NULL, 0);
        approvals = (const Airlock__ApprovalRequest **) calloc (pending + 1, sizeof *approvals);
        assert (approvals);
        reply.n_approvals = al_approvals_pending (self->approvals, approvals, pending);
        reply.approvals = (Airlock__ApprovalRequest **) approvals;
    }
    else
    if (strcmp (query->status_query->what, "journal") == 0) {
        json = s_journal_json (self, query->status_query->filter);
        reply.json = json? json: (char *) "{\"error\":\"journal: cannot read the store\"}";
    }
    else {
        if (asprintf (&json, "{\"error\":\"unknown query '%s'; this broker answers: agents, approvals, journal\"}",
                      query->status_query->what) < 0)
            json = NULL;
        reply.json = json? json: (char *) "{}";
    }
    envelope.correlation_id = query->message_id;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_STATUS_REPLY;
    envelope.status_reply = &reply;
    size_t size = s_pack (self, &envelope);
    s_send_to (self, peer, self->pack_buffer, size);
    free (agents);
    free (agent_list);
    free (approvals);
    free (json);
}

static void
s_publish (al_broker_t *self, const al_envelope_t *envelope, const char *type, size_t size)
{
    char topic [AL_CODEC_MAX_NAME_LEN * 2 + 32];
    if (envelope->body_case == AIRLOCK__ENVELOPE__BODY_SOAK_SIGNAL) {
        const char *env = al_environment_name (envelope->environment);
        snprintf (topic, sizeof topic, "soak.%s.%s", env? env: "bus", envelope->soak_signal->service);
    }
    else
        snprintf (topic, sizeof topic, "event.%s", type);
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

//  ---- the batch ----------------------------------------------------------------------

//  Judge one received message: fills the item's decision. The identity comes from the
//  peer (ZAP User-Id → policy), never from the envelope.
static void
s_judge (al_broker_t *self, s_item_t *item, s_peer_t *peer, uint64_t now_mono)
{
    size_t size = zmq_msg_size (&item->body);
    item->decision = AL_STORE_DENIED;
    if (size > self->max_message) {
        item->type = "Oversized";
        item->code = AIRLOCK__DENY_CODE__DENY_TOO_LARGE;
        item->drop_peer = true;
        snprintf (item->reason, sizeof item->reason,
                  "message of %zu bytes is above max_message_bytes (%zu): peer dropped", size,
                  self->max_message);
        return;
    }
    char error [256] = "";
    al_codec_status_t status = al_codec_unpack ((const uint8_t *) zmq_msg_data (&item->body), size,
                                                self->max_message, &item->envelope, error, sizeof error);
    if (status != AL_CODEC_OK) {
        item->type = "malformed";
        item->code = AIRLOCK__DENY_CODE__DENY_MALFORMED;
        snprintf (item->reason, sizeof item->reason, "%s: %s", al_codec_strerror (status), error);
        return;
    }
    item->type = al_msg_type_name (item->envelope->body_case);
    if (!peer->identity [0]) {
        item->code = AIRLOCK__DENY_CODE__DENY_UNKNOWN_IDENTITY;
        snprintf (item->reason, sizeof item->reason, "CURVE key %s is not in identities.yaml",
                  peer->user_id);
        return;
    }
    s_bucket_t *bucket = (s_bucket_t *) zhashx_lookup (self->buckets, peer->identity);
    if (!bucket) {
        bucket = (s_bucket_t *) calloc (1, sizeof *bucket);
        assert (bucket);
        zhashx_insert (self->buckets, peer->identity, bucket);
    }
    if (!s_bucket_take (bucket, (double) al_config_rate_per_second (self->config),
                        (double) al_config_rate_burst (self->config), now_mono)) {
        //  A transient refusal: the row keeps the message id in its reason but not in
        //  its message_id field, so the store does not answer a later retry of the same
        //  message with this denial.
        item->code = AIRLOCK__DENY_CODE__DENY_RATE_LIMITED;
        item->transient = true;
        snprintf (item->reason, sizeof item->reason,
                  "rate limit: %u messages per second (burst %u) for identity %s; message %s "
                  "not accepted, retry later", al_config_rate_per_second (self->config),
                  al_config_rate_burst (self->config), peer->identity, item->envelope->message_id);
        return;
    }
    char rule [256] = "";
    if (!al_policy_may_send (self->policy, peer->role, item->envelope->body_case,
                             item->envelope->environment, rule, sizeof rule)) {
        item->code = AIRLOCK__DENY_CODE__DENY_NOT_PERMITTED;
        const char *env = al_environment_name (item->envelope->environment);
        snprintf (item->reason, sizeof item->reason, "%s may not send %s in %s: %s", peer->role,
                  item->type, env? env: "bus", rule);
        return;
    }
    //  The approval gate: the policy lets humans send SignedApproval; what one is worth
    //  is decided here, against the request it names (one clock reading per decision).
    if (item->envelope->body_case == AIRLOCK__ENVELOPE__BODY_SIGNED_APPROVAL) {
        item->now_ms = s_now_ms ();
        item->verdict = (al_approvals_verdict_t *) calloc (1, sizeof *item->verdict);
        assert (item->verdict);
        al_approvals_check (self->approvals, self->policy, item->envelope->signed_approval, item->now_ms,
                            item->verdict);
        if (!item->verdict->valid) {
            item->code = AIRLOCK__DENY_CODE__DENY_APPROVAL_INVALID;
            snprintf (item->reason, sizeof item->reason, "approval refused: %s", item->verdict->reason);
            return;
        }
    }
    else
    if (item->envelope->body_case == AIRLOCK__ENVELOPE__BODY_APPROVAL_REQUEST
    &&  item->envelope->environment == AIRLOCK__ENVIRONMENT__ENV_PRODUCTION
    &&  al_approvals_known (self->approvals, item->envelope->approval_request->request_id)) {
        item->code = AIRLOCK__DENY_CODE__DENY_POLICY;
        snprintf (item->reason, sizeof item->reason, "production request %s was filed before",
                  item->envelope->approval_request->request_id);
        return;
    }
    item->decision = AL_STORE_ACCEPTED;
    snprintf (item->reason, sizeof item->reason, "%s", rule);
}

//  Append one row inside the open transaction; returns the store status.
static al_store_status_t
s_append (al_broker_t *self, const char *type, const char *sender, const char *role,
          const al_envelope_t *envelope, bool transient, al_store_decision_t decision,
          const char *reason, const uint8_t *bytes, size_t size, al_store_append_result_t *result)
{
    al_store_event_t event;
    memset (&event, 0, sizeof event);
    event.time_ms = s_now_ms ();
    event.sender = sender;
    event.role = role;
    event.type = type;
    event.decision = decision;
    event.reason = reason;
    event.envelope = bytes;
    event.envelope_size = size;
    if (envelope) {
        const char *env = al_environment_name (envelope->environment);
        event.message_id = transient? "": envelope->message_id;
        event.deployment_id = envelope->deployment_id;
        event.environment = env && envelope->environment != AIRLOCK__ENVIRONMENT__ENV_UNSPECIFIED? env: "";
    }
    return al_store_append (self->store, &event, result);
}

//  Append the broker's own queued events (inside the open transaction).
static al_store_status_t
s_append_events (al_broker_t *self)
{
    s_event_t *event = (s_event_t *) zlistx_first (self->events);
    while (event) {
        al_store_append_result_t result;
        al_store_status_t status = s_append (self, event->type, event->sender, event->role, NULL, false,
                                             AL_STORE_ACCEPTED, event->reason, NULL, 0, &result);
        if (status != AL_STORE_OK)
            return status;
        event = (s_event_t *) zlistx_next (self->events);
    }
    return AL_STORE_OK;
}

//  A SignedApproval the gate accepted: consume its single-use approval id in this
//  transaction (it is tied to the row about to be appended), then count it. A used id is
//  a replay: the item becomes a denial. Returns the store status.
static al_store_status_t
s_count_approval (al_broker_t *self, s_item_t *item)
{
    al_approvals_verdict_t *verdict = item->verdict;
    al_store_status_t status = al_store_approval_consume (self->store, verdict->approval.approval_id,
                                                          AL_APPROVAL_ID_SIZE, al_store_row_count (self->store) + 1);
    if (status != AL_STORE_OK && status != AL_STORE_ALREADY_USED)
        return status;
    item->decision = AL_STORE_DENIED;
    item->code = AIRLOCK__DENY_CODE__DENY_APPROVAL_INVALID;
    if (status == AL_STORE_ALREADY_USED) {
        char id [AL_APPROVAL_ID_SIZE * 2 + 1];
        s_hex (verdict->approval.approval_id, AL_APPROVAL_ID_SIZE, id);
        snprintf (item->reason, sizeof item->reason, "approval refused: approval id %s of %s was used "
                  "before (a replay)", id, verdict->approval.approver);
        return AL_STORE_OK;
    }
    if (!al_approvals_add (self->approvals, self->policy, item->envelope->signed_approval, item->now_ms, verdict)) {
        snprintf (item->reason, sizeof item->reason, "approval refused: %s", verdict->reason);
        return AL_STORE_OK;
    }
    item->decision = AL_STORE_ACCEPTED;
    snprintf (item->detail, sizeof item->detail, "%s", verdict->explanation);
    snprintf (item->reason, sizeof item->reason, "%s by %s (%s) for request %s: %s",
              verdict->approval.decision == AIRLOCK__DECISION__DECISION_DENY? "denial": "approval",
              verdict->approval.approver, verdict->approval.key_id, verdict->request_id, verdict->explanation);
    return AL_STORE_OK;
}

//  The approval of item completed its request's quorum: append the broker's ExecuteDeploy
//  (the ProductionGrant with every signed approval) in the same transaction, queued for
//  deploy-manager; or, if a required approver denied, the row that closes the request.
static al_store_status_t
s_conclude (al_broker_t *self, s_item_t *item)
{
    al_approvals_verdict_t *verdict = item->verdict;
    al_store_append_result_t result;
    al_store_status_t status;
    char reason [1024];
    if (verdict->outcome == AL_GATE_DENIED) {
        snprintf (reason, sizeof reason, "request %s closed: %s", verdict->request_id, verdict->explanation);
        //  The row carries a Notification for the orchestrator (its release ends there,
        //  FAILED with the reason), queued in the same transaction.
        char message_id [AL_CODEC_MAX_ID_LEN + 1];
        snprintf (message_id, sizeof message_id, "closed-%.56s", verdict->request_id);
        Airlock__Notification__FieldsEntry field = AIRLOCK__NOTIFICATION__FIELDS_ENTRY__INIT;
        field.key = (char *) "request_id";
        field.value = verdict->request_id;
        Airlock__Notification__FieldsEntry *fields [1] = { &field };
        Airlock__Notification note = AIRLOCK__NOTIFICATION__INIT;
        note.template_ = (char *) AL_BROKER_APPROVAL_CLOSED_TEMPLATE;
        char subject [160];
        snprintf (subject, sizeof subject, "production request %.64s closed", verdict->request_id);
        note.subject = subject;
        note.text = reason;
        note.n_fields = 1;
        note.fields = fields;
        al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
        envelope.message_id = message_id;
        envelope.deployment_id = verdict->request_id;
        envelope.environment = AIRLOCK__ENVIRONMENT__ENV_PRODUCTION;
        envelope.timestamp_ms = item->now_ms;
        envelope.body_case = AIRLOCK__ENVELOPE__BODY_NOTIFICATION;
        envelope.notification = &note;
        size_t size = airlock__envelope__get_packed_size (&envelope);
        uint8_t *bytes = malloc (size? size: 1);
        if (!bytes)
            return AL_STORE_ERR_NOMEM;
        airlock__envelope__pack (&envelope, bytes);
        status = s_append (self, "ApprovalClosed", S_BROKER_IDENTITY, S_BROKER_IDENTITY, &envelope, false,
                           AL_STORE_ACCEPTED, reason, bytes, size, &result);
        free (bytes);
        if (status == AL_STORE_OK)
            status = al_store_delivery_add (self->store, "orchestrator", result.sequence);
        if (status == AL_STORE_OK) {
            item->closed_sequence = result.sequence;
            al_approvals_close (self->approvals, verdict->request_id);
        }
        return status;
    }
    assert (verdict->outcome == AL_GATE_GRANTED);
    size_t size = 0;
    uint8_t *bytes = al_approvals_execute_deploy (self->approvals, verdict->request_id, item->now_ms,
                                                  item->result.sequence, &size);
    if (!bytes)
        return AL_STORE_ERR_NOMEM;     // the batch fails whole: nothing is granted
    //  The row's columns are known here: no need to decode what was just packed.
    char message_id [AL_CODEC_MAX_ID_LEN + 1];
    snprintf (message_id, sizeof message_id, AL_APPROVALS_GRANT_ID_FORMAT, verdict->request_id);
    al_envelope_t meta = AIRLOCK__ENVELOPE__INIT;
    meta.message_id = message_id;
    meta.deployment_id = verdict->request_id;
    meta.environment = AIRLOCK__ENVIRONMENT__ENV_PRODUCTION;
    snprintf (reason, sizeof reason, "production grant for request %s: %s", verdict->request_id,
              verdict->explanation);
    status = s_append (self, "ExecuteDeploy", S_BROKER_IDENTITY, S_BROKER_IDENTITY, &meta, false,
                       AL_STORE_ACCEPTED, reason, bytes, size, &result);
    free (bytes);
    if (status == AL_STORE_OK)
        status = al_store_delivery_add (self->store, "deploy-manager", result.sequence);
    if (status == AL_STORE_OK) {
        item->grant_sequence = result.sequence;
        al_approvals_close (self->approvals, verdict->request_id);
    }
    return status;
}

static void
s_item_release (s_item_t *item)
{
    al_codec_free (&item->envelope);
    zmq_msg_close (&item->body);
    free (item->verdict);
    item->verdict = NULL;
}

//  After commit: answer, route, publish.
static void
s_item_finish (al_broker_t *self, s_item_t *item)
{
    s_peer_t *peer = (s_peer_t *) zhashx_lookup (self->peers, item->peer_key);
    if (!peer || strcmp (peer->user_id, item->user_id) != 0)
        return;                     // that connection is gone

    const char *message_id = item->envelope? item->envelope->message_id: "";
    if (item->result.decision == AL_STORE_DENIED) {
        //  A retransmission of a denied message: only permanent denials are found again
        //  (malformed, oversized and rate-limited rows carry no message id).
        Airlock__DenyCode code = item->code;
        if (!item->fresh)
            code = strncmp (item->result.reason, "CURVE key ", 10) == 0
                 ? AIRLOCK__DENY_CODE__DENY_UNKNOWN_IDENTITY: AIRLOCK__DENY_CODE__DENY_NOT_PERMITTED;
        s_reply_denied (self, peer, message_id, code, item->fresh? item->reason: item->result.reason,
                        item->result.sequence);
        //  Closing since its frame was read; it is cut once this answer has left.
        if (item->drop_peer && peer->closing && peer->answered_mono == 0)
            peer->answered_mono = s_mono_ms ();
        return;
    }
    al_envelope_t *envelope = item->envelope;
    assert (envelope);
    switch (envelope->body_case) {
        case AIRLOCK__ENVELOPE__BODY_DELIVERY_ACK:
            zhashx_delete (self->inflight, S_KEY (envelope->delivery_ack->delivery_id));
            return;
        case AIRLOCK__ENVELOPE__BODY_STATUS_QUERY:
            s_reply_status (self, peer, envelope);
            return;
        case AIRLOCK__ENVELOPE__BODY_REGISTER:
            s_reply_ack (self, peer, message_id, &item->result, !item->fresh, NULL);
            if (envelope->register_->heartbeat_interval_ms)
                peer->dead_after_ms = (uint64_t) S_MISSED_HEARTBEATS * envelope->register_->heartbeat_interval_ms;
            if (envelope->register_->subscribe_deliveries && peer->role [0]) {
                peer->takes_deliveries = true;
                s_sweep_role (self, peer->role);
            }
            return;
        default:
            break;
    }
    s_reply_ack (self, peer, message_id, &item->result, !item->fresh, item->detail);
    //  The gate opened: deploy-manager gets the ExecuteDeploy row (it stays queued until
    //  an instance acknowledges it).
    if (item->grant_sequence)
        s_deliver_stored (self, "deploy-manager", item->grant_sequence);
    //  A required approver denied: the orchestrator learns that its request is closed.
    if (item->closed_sequence)
        s_deliver_stored (self, "orchestrator", item->closed_sequence);
    const char *role = al_broker_route_for (item->type);
    if (!item->fresh || !role)
        return;
    size_t size = s_pack_stamped (self, envelope, item->sender, item->role, item->result.sequence);
    s_publish (self, envelope, item->type, size);
    s_peer_t *holder = s_pick_instance (self, role);
    if (holder && s_send_to (self, holder, self->pack_buffer, size) == 0)
        zhashx_update (self->inflight, S_KEY (item->result.sequence), strdup (holder->key));
}

char *
al_broker_incident_path (const al_config_t *config)
{
    assert (config);
    char *path = NULL;
    if (asprintf (&path, "%s.incident", al_config_database (config)) < 0)
        return NULL;
    return path;
}

//  The log was changed under the broker (see the file comment): say so where it cannot
//  be chained away, a plain-text file beside the database (appended, fsynced) and the
//  log, and stop. Called by the reactor or the checkpoint thread.
static void
s_incident (al_broker_t *self, const char *where, const char *what)
{
    atomic_store (&self->tampered, true);
    char *path = al_broker_incident_path (self->config);
    char stamp [40];
    al_store_format_time (s_now_ms (), stamp, sizeof stamp);
    char text [2048];
    int length = snprintf (text, sizeof text,
                           "%s airlock broker (pid %d): AUDIT LOG CHANGED UNDER THE BROKER, found %s: %s. "
                           "No row was chained onto the changed log, no checkpoint was signed for it, "
                           "nothing more was acknowledged; the broker stopped. The last checkpoint "
                           "vouches for the log as the broker wrote it: airlock audit verify "
                           "--checkpoint FILE names the first changed row.\n",
                           stamp, (int) getpid (), where, what);
    if (length < 0 || length >= (int) sizeof text)
        length = (int) strlen (text);
    zsys_error ("broker: AUDIT LOG CHANGED UNDER THE BROKER (found %s): %s; stopping; incident written to %s",
                where, what, path? path: "(no memory for the path)");
    int fd = path? open (path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600): -1;
    if (fd < 0 || write (fd, text, (size_t) length) != length || fsync (fd) != 0)
        zsys_error ("broker: %s: cannot write the incident: %s", path? path: "incident", strerror (errno));
    if (fd >= 0)
        close (fd);
    free (path);
}

//  Inside the batch's transaction: is the head the store just re-read the one our last
//  commit left? If not, the incident is recorded and the caller appends nothing.
static bool
s_head_is_ours (al_broker_t *self)
{
    uint8_t head [AL_STORE_HASH_SIZE];
    al_store_head_hash (self->store, head);
    uint64_t rows = al_store_row_count (self->store);
    if (rows == self->own_rows && sodium_memcmp (head, self->own_head, AL_STORE_HASH_SIZE) == 0)
        return true;
    char found [AL_STORE_HASH_SIZE * 2 + 1], own [AL_STORE_HASH_SIZE * 2 + 1], what [1024];
    s_hex (head, AL_STORE_HASH_SIZE, found);
    s_hex (self->own_head, AL_STORE_HASH_SIZE, own);
    snprintf (what, sizeof what, "%.600s: the log's head is row %llu with hash %s, but this broker's last "
              "commit left row %llu with hash %s", al_config_database (self->config), (unsigned long long) rows,
              found, (unsigned long long) self->own_rows, own);
    s_incident (self, "before appending a batch", what);
    return false;
}

//  The checkpoint thread: signs the head the reactor committed, when asked, if the file
//  still holds it.
static void *
s_checkpoint_run (void *arg);

//  ---- operator metrics (docs/operations.md, Monitoring) --------------------------------

//  The roles whose connection and delivery queue are always reported (0 included).
static const char *s_metric_roles [] = { "orchestrator", "qa", "deploy-manager", "monitor", "notifier" };
#define S_METRIC_ROLE_COUNT (sizeof s_metric_roles / sizeof s_metric_roles [0])
//  Pending deliveries counted per role and tick, at most (the gauge then stays there).
#define S_METRIC_QUEUE_PAGES 64

static double
s_mono_seconds (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (double) now.tv_sec + (double) now.tv_nsec / 1e9;
}

static void
s_metrics_init (al_broker_t *self)
{
    al_telemetry_t *metrics = al_telemetry_process ();
    self->metric_batch_size = al_telemetry_series (metrics, AL_TELEMETRY_HISTOGRAM, "airlock_broker_commit_batch_size",
        "Messages audited per group-commit transaction", NULL, NULL, NULL, NULL);
    self->metric_batch_seconds = al_telemetry_series (metrics, AL_TELEMETRY_HISTOGRAM, "airlock_broker_commit_latency_seconds",
        "From draining a batch to its commit (what a sender waits for its Ack)", NULL, NULL, NULL, NULL);
    self->metric_commit_seconds = al_telemetry_series (metrics, AL_TELEMETRY_HISTOGRAM, "airlock_broker_fsync_seconds",
        "Duration of the audit store's commit, i.e. its fsync", NULL, NULL, NULL, NULL);
    self->metric_redeliveries = al_telemetry_series (metrics, AL_TELEMETRY_COUNTER, "airlock_broker_redeliveries_total",
        "Deliveries sent again because their holder went away unacknowledged", NULL, NULL, NULL, NULL);
    self->metric_approvals_pending = al_telemetry_series (metrics, AL_TELEMETRY_GAUGE, "airlock_broker_approvals_pending",
        "Production approval requests waiting for approvers", NULL, NULL, NULL, NULL);
    self->metric_checkpoint_age = al_telemetry_series (metrics, AL_TELEMETRY_AGE, "airlock_broker_checkpoint_age_seconds",
        "Seconds since the audit log was last wholly covered by a signed checkpoint (an idle log stays covered)",
        NULL, NULL, NULL, NULL);
    self->metric_checkpoint_seconds = al_telemetry_series (metrics, AL_TELEMETRY_HISTOGRAM,
        "airlock_broker_checkpoint_write_seconds", "Duration of signing, writing and fsyncing a checkpoint",
        NULL, NULL, NULL, NULL);
    al_telemetry_touch (self->metric_checkpoint_age);
    //  Both families exist from the start (HELP, TYPE and a zero series), so that an
    //  alert's rate() has a value to start from.
    al_telemetry_series (metrics, AL_TELEMETRY_COUNTER, "airlock_broker_messages_accepted_total",
        "Messages accepted (audited, acknowledged, routed), by type", "type", "ReleaseCandidate", NULL, NULL);
    al_telemetry_series (metrics, AL_TELEMETRY_COUNTER, "airlock_broker_messages_denied_total",
        "Messages denied (audited and answered Denied), by type and deny code",
        "type", "malformed", "reason", "DENY_MALFORMED");
}

//  One audited message (its row committed): accepted by type, denied by type and code.
static void
s_metrics_count (const char *type, al_store_decision_t decision, Airlock__DenyCode code)
{
    al_telemetry_t *metrics = al_telemetry_process ();
    if (decision == AL_STORE_ACCEPTED) {
        al_telemetry_add (al_telemetry_series (metrics, AL_TELEMETRY_COUNTER, "airlock_broker_messages_accepted_total",
                                         NULL, "type", type, NULL, NULL), 1);
        return;
    }
    const ProtobufCEnumValue *value = protobuf_c_enum_descriptor_get_value (&airlock__deny_code__descriptor, code);
    al_telemetry_add (al_telemetry_series (metrics, AL_TELEMETRY_COUNTER, "airlock_broker_messages_denied_total",
                                     NULL, "type", type, "reason", value? value->name: "unknown"), 1);
}

//  Once per tick: connected agents and delivery queue depth per role, approvals pending.
static void
s_metrics_tick (al_broker_t *self)
{
    al_telemetry_t *metrics = al_telemetry_process ();
    for (size_t i = 0; i < S_METRIC_ROLE_COUNT; i++) {
        const char *role = s_metric_roles [i];
        size_t connected = 0;
        for (s_peer_t *peer = (s_peer_t *) zhashx_first (self->peers); peer;
             peer = (s_peer_t *) zhashx_next (self->peers))
            if (!peer->closing && peer->identity [0] && strcmp (peer->role, role) == 0)
                connected++;
        al_telemetry_set (al_telemetry_series (metrics, AL_TELEMETRY_GAUGE, "airlock_broker_connected_agents",
                       "Authenticated connections alive, by role", "role", role, NULL, NULL), (double) connected);
        size_t depth = 0;
        uint64_t after = 0, sequences [S_SWEEP_PAGE];
        for (size_t page = 0; page < S_METRIC_QUEUE_PAGES; page++) {
            size_t count = 0;
            if (al_store_delivery_pending (self->store, role, after, sequences, S_SWEEP_PAGE, &count)
                != AL_STORE_OK || count == 0)
                break;
            depth += count;
            after = sequences [count - 1];
            if (count < S_SWEEP_PAGE)
                break;
        }
        al_telemetry_set (al_telemetry_series (metrics, AL_TELEMETRY_GAUGE, "airlock_broker_delivery_queue_depth",
                       "Accepted messages not yet acknowledged by their role (counted up to 16384)",
                       "role", role, NULL, NULL), (double) depth);
    }
    al_telemetry_set (self->metric_approvals_pending, (double) al_approvals_pending (self->approvals, NULL, 0));
    //  Nothing committed since the last signed checkpoint: the log is covered now. A
    //  failed or stalled checkpoint leaves the age growing, which is what is alerted on.
    if (atomic_load (&self->checkpoint_written_rows) == self->own_rows)
        al_telemetry_touch (self->metric_checkpoint_age);
}

static void *
s_checkpoint_run (void *arg)
{
    al_broker_t *self = (al_broker_t *) arg;
    pthread_mutex_lock (&self->checkpoint_lock);
    while (true) {
        while (!self->checkpoint_requested && !self->checkpoint_stop)
            pthread_cond_wait (&self->checkpoint_wake, &self->checkpoint_lock);
        if (!self->checkpoint_requested)
            break;
        self->checkpoint_requested = false;
        uint64_t rows = self->checkpoint_want_rows;
        uint8_t head [AL_STORE_HASH_SIZE];
        memcpy (head, self->checkpoint_want_head, AL_STORE_HASH_SIZE);
        pthread_mutex_unlock (&self->checkpoint_lock);
        char error [1024] = "";
        double started = s_mono_seconds ();
        al_store_status_t status = al_store_checkpoint_write_head (self->checkpoint_store, self->checkpoint_key,
                                                                   al_config_checkpoint_path (self->config),
                                                                   rows, head, error, sizeof error);
        if (status == AL_STORE_OK) {
            al_telemetry_observe (self->metric_checkpoint_seconds, s_mono_seconds () - started);
            atomic_store (&self->checkpoint_written_rows, rows);
            al_telemetry_touch (self->metric_checkpoint_age);
        }
        if (status == AL_STORE_ERR_HEAD_MISMATCH)
            s_incident (self, "before signing a checkpoint", error);
        else
        if (status != AL_STORE_OK)
            zsys_error ("broker: checkpoint: %s", error);
        pthread_mutex_lock (&self->checkpoint_lock);
    }
    pthread_mutex_unlock (&self->checkpoint_lock);
    return NULL;
}

//  Ask for a checkpoint when one is due (every N rows or S seconds; force: now).
static void
s_checkpoint (al_broker_t *self, bool force)
{
    uint64_t rows = self->own_rows;
    if (rows == self->checkpoint_rows || atomic_load (&self->tampered))
        return;
    uint64_t now = s_mono_ms ();
    bool due = force
            || rows - self->checkpoint_rows >= al_config_checkpoint_every_events (self->config)
            || now - self->checkpoint_mono >= 1000ull * al_config_checkpoint_every_seconds (self->config);
    if (!due)
        return;
    pthread_mutex_lock (&self->checkpoint_lock);
    self->checkpoint_requested = true;
    self->checkpoint_want_rows = self->own_rows;
    memcpy (self->checkpoint_want_head, self->own_head, AL_STORE_HASH_SIZE);
    pthread_cond_signal (&self->checkpoint_wake);
    pthread_mutex_unlock (&self->checkpoint_lock);
    self->checkpoint_rows = rows;
    self->checkpoint_mono = now;
}

//  Drain up to batch_max messages, audit them in one transaction, then answer and route.
//  Returns 0, or -1 if the store failed (nothing was answered).
static int
s_batch (al_broker_t *self)
{
    //  The checkpoint thread found the log changed: nothing more is answered.
    if (atomic_load (&self->tampered))
        return -1;
    void *router = zsock_resolve (self->router);
    size_t count = 0;
    uint64_t now_mono = s_mono_ms ();
    double batch_started = s_mono_seconds ();
    while (count < self->max_items) {
        zmq_msg_t routing_id;
        zmq_msg_init (&routing_id);
        if (zmq_msg_recv (&routing_id, router, ZMQ_DONTWAIT) == -1) {
            zmq_msg_close (&routing_id);
            break;
        }
        s_item_t *item = &self->items [count];
        memset (item, 0, sizeof *item);
        zmq_msg_init (&item->body);
        bool extra = false;
        if (zmq_msg_more (&routing_id)) {
            zmq_msg_recv (&item->body, router, 0);
            //  A client frame is exactly one envelope: more parts make it malformed.
            while (zmq_msg_more (&item->body)) {
                zmq_msg_t part;
                zmq_msg_init (&part);
                zmq_msg_recv (&part, router, 0);
                bool more = zmq_msg_more (&part);
                zmq_msg_close (&part);
                extra = true;
                if (!more)
                    break;
            }
        }
        s_peer_t *peer = s_closed_recently (self, &routing_id)? NULL
                       : s_peer_touch (self, &routing_id, &item->body, item->peer_key);
        zmq_msg_close (&routing_id);
        if (!peer || peer->closing) {
            //  No ZAP User-Id: impossible with a ZAP handler and enforcement on. Closing
            //  or closed: it was answered TOO_LARGE and is dropped; what follows is not read.
            zmq_msg_close (&item->body);
            continue;
        }
        snprintf (item->user_id, sizeof item->user_id, "%s", peer->user_id);
        snprintf (item->sender, sizeof item->sender, "%s", peer->identity [0]? peer->identity: peer->user_id);
        snprintf (item->role, sizeof item->role, "%s", peer->role);
        if (extra) {
            item->type = "malformed";
            item->decision = AL_STORE_DENIED;
            item->code = AIRLOCK__DENY_CODE__DENY_MALFORMED;
            snprintf (item->reason, sizeof item->reason, "a message must be exactly one frame");
        }
        else
            s_judge (self, item, peer, now_mono);
        if (item->drop_peer)
            s_peer_closing_begin (self, peer);
        //  Heartbeats only refresh liveness: never audited, never answered.
        if (item->decision == AL_STORE_ACCEPTED
        &&  item->envelope->body_case == AIRLOCK__ENVELOPE__BODY_HEARTBEAT) {
            s_item_release (item);
            continue;
        }
        count++;
    }
    if (count == 0 && zlistx_size (self->events) == 0)
        return 0;

    al_store_status_t status = al_store_begin (self->store);
    if (status == AL_STORE_OK && !s_head_is_ours (self))
        status = AL_STORE_ERR_HEAD_MISMATCH;
    if (status == AL_STORE_OK)
        status = s_append_events (self);
    for (size_t i = 0; i < count && status == AL_STORE_OK; i++) {
        s_item_t *item = &self->items [i];
        bool oversized = item->drop_peer;
        bool counted = false;
        if (item->verdict && item->decision == AL_STORE_ACCEPTED) {
            status = s_count_approval (self, item);
            if (status != AL_STORE_OK)
                break;
            counted = item->decision == AL_STORE_ACCEPTED;
        }
        status = s_append (self, item->type, item->sender, item->role, item->envelope, item->transient,
                           item->decision, item->reason, oversized? NULL: (const uint8_t *) zmq_msg_data (&item->body),
                           oversized? 0: zmq_msg_size (&item->body), &item->result);
        if (status == AL_STORE_DUPLICATE) {
            //  A retransmission, answered with its original outcome. Should it have been
            //  counted now (its first try was refused), its id stays consumed: the
            //  approver signs again (fail closed).
            if (counted)
                al_approvals_withdraw (self->approvals, item->verdict->request_id,
                                       item->verdict->approval.approval_id);
            status = AL_STORE_OK;
            continue;
        }
        if (status != AL_STORE_OK)
            break;
        item->fresh = true;
        if (item->decision != AL_STORE_ACCEPTED)
            continue;
        if (item->envelope->body_case == AIRLOCK__ENVELOPE__BODY_APPROVAL_REQUEST
        &&  item->envelope->environment == AIRLOCK__ENVIRONMENT__ENV_PRODUCTION)
            al_approvals_file (self->approvals, item->envelope->approval_request, item->sender,
                               item->result.sequence, s_now_ms (), NULL, 0);
        if (counted && (item->verdict->outcome == AL_GATE_GRANTED || item->verdict->outcome == AL_GATE_DENIED)) {
            status = s_conclude (self, item);
            if (status != AL_STORE_OK)
                break;
        }
        //  deploy-manager's journal records, committed with their event: it runs a step
        //  only once its "started" record is acknowledged.
        if (item->envelope->body_case == AIRLOCK__ENVELOPE__BODY_DEPLOY_PROGRESS
        &&  item->envelope->deploy_progress->journal
        &&  item->envelope->deployment_id [0]) {
            const Airlock__DeployProgress *progress = item->envelope->deploy_progress;
            const char *step = al_step_name (progress->step);
            const char *outcome = al_outcome_name (progress->outcome);
            status = al_store_journal_add (self->store, item->envelope->deployment_id,
                                           step? step: "unspecified",
                                           progress->outcome == AIRLOCK__OUTCOME__OUTCOME_STARTED? "before": "after",
                                           outcome? outcome: "unspecified", progress->detail);
            if (status != AL_STORE_OK)
                break;
        }
        const char *role = al_broker_route_for (item->type);
        if (role)
            status = al_store_delivery_add (self->store, role, item->result.sequence);
        else
        if (item->envelope->body_case == AIRLOCK__ENVELOPE__BODY_DELIVERY_ACK) {
            status = al_store_delivery_ack (self->store, item->role, item->envelope->delivery_ack->delivery_id);
            if (status == AL_STORE_NOT_FOUND)
                status = AL_STORE_OK;
        }
    }
    double commit_started = s_mono_seconds ();
    if (status == AL_STORE_OK)
        status = al_store_commit (self->store);
    if (status != AL_STORE_OK) {
        if (status != AL_STORE_ERR_HEAD_MISMATCH)     // else s_incident said why
            zsys_error ("broker: audit store: %s: %s", al_store_strerror (status), al_store_error (self->store));
        if (al_store_in_transaction (self->store))
            al_store_rollback (self->store);
        al_approvals_rollback (self->approvals);
        for (size_t i = 0; i < count; i++)
            s_item_release (&self->items [i]);
        return -1;
    }
    self->own_rows = al_store_row_count (self->store);
    al_store_head_hash (self->store, self->own_head);
    al_approvals_commit (self->approvals);
    zlistx_purge (self->events);
    al_crashpoint ("broker.after-commit");     // chaos: committed, nothing acknowledged yet
    double committed = s_mono_seconds ();
    al_telemetry_observe (self->metric_commit_seconds, committed - commit_started);
    if (count) {
        al_telemetry_observe (self->metric_batch_seconds, committed - batch_started);
        al_telemetry_observe (self->metric_batch_size, (double) count);
    }
    for (size_t i = 0; i < count; i++) {
        if (self->items [i].fresh)
            s_metrics_count (self->items [i].type, self->items [i].decision, self->items [i].code);
        s_item_finish (self, &self->items [i]);
        s_item_release (&self->items [i]);
    }
    s_checkpoint (self, false);
    return 0;
}

//  ---- ZAP handler (RFC 27) -----------------------------------------------------------

static void
s_zap_handle (al_broker_t *self)
{
    zmsg_t *request = zmsg_recv (self->zap);
    if (!request)
        return;
    char *version = zmsg_popstr (request);
    zframe_t *request_id = zmsg_pop (request);
    char *domain = zmsg_popstr (request);
    char *address = zmsg_popstr (request);
    zframe_t *routing_id = zmsg_pop (request);
    char *mechanism = zmsg_popstr (request);
    zframe_t *credentials = zmsg_pop (request);

    const char *code = "400", *text = "denied";
    char user_id [41] = "";
    char reason [300] = "";
    if (!version || strcmp (version, "1.0") != 0 || !request_id)
        snprintf (reason, sizeof reason, "ZAP request of unknown version");
    else
    if (!domain || strcmp (domain, S_ZAP_DOMAIN) != 0)
        snprintf (reason, sizeof reason, "ZAP domain '%s' is not '%s'", domain? domain: "", S_ZAP_DOMAIN);
    else
    if (!mechanism || strcmp (mechanism, "CURVE") != 0)
        snprintf (reason, sizeof reason, "mechanism %s refused from %s: only CURVE is allowed",
                  mechanism? mechanism: "?", address? address: "?");
    else
    if (!credentials || zframe_size (credentials) != 32)
        snprintf (reason, sizeof reason, "CURVE credentials of wrong size from %s", address? address: "?");
    else {
        zmq_z85_encode (user_id, zframe_data (credentials), 32);
        const char *identity = NULL, *role = NULL;
        if (al_policy_identity_for_key (self->policy, user_id, &identity, &role)) {
            code = "200";
            text = "OK";
        }
        else
            snprintf (reason, sizeof reason, "unknown CURVE key %s from %s refused", user_id,
                      address && *address? address: "a local peer");
    }
    if (strcmp (code, "200") != 0) {
        user_id [0] = '\0';
        s_unauth_event (self, "HandshakeRefused", reason);
    }
    zmsg_t *reply = zmsg_new ();
    zmsg_addstr (reply, "1.0");
    if (request_id)
        zmsg_append (reply, &request_id);
    else
        zmsg_addstr (reply, "");
    zmsg_addstr (reply, code);
    zmsg_addstr (reply, text);
    zmsg_addstr (reply, user_id);
    zmsg_addmem (reply, "", 0);
    zmsg_send (&reply, self->zap);

    zstr_free (&version);
    zframe_destroy (&request_id);
    zstr_free (&domain);
    zstr_free (&address);
    zframe_destroy (&routing_id);
    zstr_free (&mechanism);
    zframe_destroy (&credentials);
    zmsg_destroy (&request);
}

//  ---- socket monitors ----------------------------------------------------------------

static void
s_monitor_handle (al_broker_t *self, zsock_t *monitor, const char *socket_name)
{
    zmsg_t *msg = zmsg_recv (monitor);
    if (!msg)
        return;
    zframe_t *head = zmsg_first (msg);
    zframe_t *where = zmsg_next (msg);
    if (!head || zframe_size (head) < 6) {
        zmsg_destroy (&msg);
        return;
    }
    uint16_t event;
    uint32_t value;
    memcpy (&event, zframe_data (head), 2);
    memcpy (&value, zframe_data (head) + 2, 4);
    char *endpoint = where? zframe_strdup (where): NULL;
    const char *on = endpoint? endpoint: "?";
    switch (event) {
        case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL: {
            char reason [300];
            snprintf (reason, sizeof reason, "%s %s: ZMTP protocol error 0x%x (garbage, wrong "
                      "mechanism such as NULL, or a malformed handshake)", socket_name, on, value);
            s_unauth_event (self, "HandshakeFailed", reason);
            break;
        }
        case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL: {
            char reason [300];
            snprintf (reason, sizeof reason, "%s %s: handshake failed (%s), e.g. not completed "
                      "within handshake_ms", socket_name, on, strerror ((int) value));
            s_unauth_event (self, "HandshakeFailed", reason);
            break;
        }
        case ZMQ_EVENT_DISCONNECTED: {
            //  A known peer whose connection ended (closed by it, or by libzmq for a frame
            //  above the hard size cap): forget it now rather than after 3 heartbeats.
            //  The event arrives late, and its descriptor number may already serve a new
            //  connection: a peer whose socket is still open under that number (same
            //  inode) is either that new connection or one libzmq is about to close, so
            //  the next tick looks again.
            zlistx_t *gone = zlistx_new ();
            assert (gone);
            zlistx_set_duplicator (gone, (czmq_duplicator *) strdup);
            zlistx_set_destructor (gone, (czmq_destructor *) zstr_free);
            for (s_peer_t *peer = (s_peer_t *) zhashx_first (self->peers); peer;
                 peer = (s_peer_t *) zhashx_next (self->peers)) {
                if (peer->fd != (int) value)
                    continue;
                if (!s_socket_gone (peer)) {
                    peer->disconnect_reported = true;
                    continue;
                }
                if (!peer->closing)
                    s_event_queue (self, "PeerDisconnected", peer->identity, peer->role,
                                   "connection closed (by the peer, or by the transport for a frame "
                                   "above %zu bytes)", 2 * self->max_message);
                zlistx_add_end (gone, peer->key);
            }
            for (char *key = (char *) zlistx_first (gone); key; key = (char *) zlistx_next (gone))
                s_peer_forget (self, key);
            zlistx_destroy (&gone);
            break;
        }
        default:
            break;
    }
    free (endpoint);
    zmsg_destroy (&msg);
}

static zsock_t *
s_monitor_start (al_broker_t *self, zsock_t *socket, const char *name, char *error, size_t error_size)
{
    char endpoint [128];
    snprintf (endpoint, sizeof endpoint, "inproc://airlock-monitor-%s-%p", name, (void *) self);
    int events = ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL
               | ZMQ_EVENT_DISCONNECTED;
    if (zmq_socket_monitor (zsock_resolve (socket), endpoint, events) == -1) {
        snprintf (error, error_size, "%s: socket monitor: %s", name, zmq_strerror (zmq_errno ()));
        return NULL;
    }
    zsock_t *monitor = zsock_new (ZMQ_PAIR);
    if (!monitor || zsock_connect (monitor, "%s", endpoint) == -1) {
        snprintf (error, error_size, "%s: socket monitor: cannot connect", name);
        zsock_destroy (&monitor);
        return NULL;
    }
    return monitor;
}

//  ---- setup --------------------------------------------------------------------------

static int
s_read_checkpoint_key (const char *path, uint8_t key [crypto_sign_SECRETKEYBYTES], char *error,
                       size_t error_size)
{
    FILE *file = fopen (path, "r");
    if (!file) {
        snprintf (error, error_size, "%s: checkpoint key: %s", path, strerror (errno));
        return -1;
    }
    if (!al_secret_file_private (path, fileno (file), error, error_size)) {
        fclose (file);
        return -1;
    }
    char text [2 * crypto_sign_SECRETKEYBYTES + 8] = "";
    size_t size = fread (text, 1, sizeof text - 1, file);
    fclose (file);
    text [size] = '\0';
    while (size > 0 && (text [size - 1] == '\n' || text [size - 1] == '\r' || text [size - 1] == ' '))
        text [--size] = '\0';
    size_t bin_size = 0;
    if (size != 2 * crypto_sign_SECRETKEYBYTES
    ||  sodium_hex2bin (key, crypto_sign_SECRETKEYBYTES, text, size, NULL, &bin_size, NULL) != 0
    ||  bin_size != crypto_sign_SECRETKEYBYTES) {
        snprintf (error, error_size, "%s: checkpoint key: expected %d hex characters (an Ed25519 secret key)",
                  path, 2 * crypto_sign_SECRETKEYBYTES);
        return -1;
    }
    return 0;
}

//  CURVE server with our ZAP domain and domain enforcement read back as on.
static int
s_secure_socket (al_broker_t *self, zsock_t *socket, const char *name, char *error, size_t error_size)
{
    zsock_set_zap_domain (socket, S_ZAP_DOMAIN);
    int on = 1, value = 0;
    size_t value_size = sizeof value;
    void *handle = zsock_resolve (socket);
    if (zmq_setsockopt (handle, S_ZMQ_ZAP_ENFORCE_DOMAIN, &on, sizeof on) == -1
    ||  zmq_getsockopt (handle, S_ZMQ_ZAP_ENFORCE_DOMAIN, &value, &value_size) == -1 || value != 1) {
        snprintf (error, error_size, "%s: ZMQ_ZAP_ENFORCE_DOMAIN could not be turned on: refusing to start",
                  name);
        return -1;
    }
    zcert_apply (self->cert, socket);
    zsock_set_curve_server (socket, 1);
    if (zsock_curve_server (socket) != 1) {
        snprintf (error, error_size, "%s: CURVE server could not be enabled: refusing to start", name);
        return -1;
    }
    char *domain = zsock_zap_domain (socket);
    bool domain_ok = domain && strcmp (domain, S_ZAP_DOMAIN) == 0;
    zstr_free (&domain);
    if (!domain_ok) {
        snprintf (error, error_size, "%s: ZAP domain could not be set: refusing to start", name);
        return -1;
    }
    zsock_set_handshake_ivl (socket, al_config_handshake_ms (self->config));
    zsock_set_sndhwm (socket, al_config_sndhwm (self->config));
    zsock_set_rcvhwm (socket, al_config_rcvhwm (self->config));
    zsock_set_maxmsgsize (socket, (int) (2 * self->max_message));
    zsock_set_linger (socket, 1000);
    return 0;
}

static void
s_free_item (void **item_p)
{
    free (*item_p);
    *item_p = NULL;
}

//  Queue a PolicyLoaded row for the current policy.
static void
s_policy_event (al_broker_t *self, const char *why)
{
    s_event_queue (self, "PolicyLoaded", S_BROKER_IDENTITY, S_BROKER_IDENTITY, "%s: policy %s digest %s",
                   why, al_policy_dir (self->policy), al_policy_digest_hex (self->policy));
}

static char *
s_policy_errors_text (al_policy_errors_t *errors)
{
    char *text = NULL;
    size_t count = errors? al_policy_errors_count (errors): 0;
    if (count == 0)
        return strdup ("invalid policy");
    if (asprintf (&text, "%s%s", al_policy_errors_at (errors, 0),
                  count > 1? " (and more errors)": "") < 0)
        return NULL;
    return text;
}

static int
s_lock_database (al_broker_t *self, char *error, size_t error_size)
{
    char path [4096];
    if (snprintf (path, sizeof path, "%s.lock", al_config_database (self->config)) >= (int) sizeof path) {
        snprintf (error, error_size, "broker: the database path is too long");
        return -1;
    }
    int fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf (error, error_size, "%.3900s: cannot open: %s", path, strerror (errno));
        return -1;
    }
    if (flock (fd, LOCK_EX | LOCK_NB) != 0) {
        int cause = errno;
        char text [32] = "";
        ssize_t length = read (fd, text, sizeof text - 1);
        text [length > 0? length: 0] = 0;
        close (fd);
        if (cause == EWOULDBLOCK)
            snprintf (error, error_size, "another broker (pid %d) already serves this audit log (%.3900s is locked)",
                      atoi (text), path);
        else
            snprintf (error, error_size, "%.3900s: cannot lock: %s", path, strerror (cause));
        return -1;
    }
    char text [32];
    int length = snprintf (text, sizeof text, "%d\n", (int) getpid ());
    if (ftruncate (fd, 0) != 0 || write (fd, text, (size_t) length) != length) {
        snprintf (error, error_size, "%.3900s: cannot write: %s", path, strerror (errno));
        close (fd);
        return -1;
    }
    self->lock_fd = fd;
    return 0;
}

al_broker_t *
al_broker_new (const al_config_t *config, char *error, size_t error_size)
{
    assert (config);
    al_broker_t *self = (al_broker_t *) calloc (1, sizeof *self);
    if (!self) {
        snprintf (error, error_size, "broker: out of memory");
        return NULL;
    }
    self->config = config;
    self->lock_fd = -1;
    self->max_message = al_config_max_message_bytes (config);
    self->max_items = al_config_batch_max (config);
    s_metrics_init (self);
    if (sodium_init () < 0) {
        snprintf (error, error_size, "broker: libsodium failed to initialise");
        goto failed;
    }
    al_policy_errors_t *errors = NULL;
    self->policy = al_policy_load (al_config_policy_dir (config), &errors);
    if (!self->policy) {
        char *text = s_policy_errors_text (errors);
        snprintf (error, error_size, "%s", text? text: "invalid policy");
        free (text);
        al_policy_errors_destroy (&errors);
        goto failed;
    }
    self->policy_generation = 1;
    self->cert = zcert_load (al_config_broker_cert (config));
    if (!self->cert) {
        snprintf (error, error_size, "%s: cannot load the broker certificate", al_config_broker_cert (config));
        goto failed;
    }
    static const uint8_t zeros [32] = { 0 };
    if (memcmp (zcert_secret_key (self->cert), zeros, 32) == 0) {
        snprintf (error, error_size, "%s_secret: the broker's secret key is missing", al_config_broker_cert (config));
        goto failed;
    }
    char secret_path [PATH_MAX];
    snprintf (secret_path, sizeof secret_path, "%s_secret", al_config_broker_cert (config));
    if (!al_secret_file_private (access (secret_path, F_OK) == 0 ? secret_path : al_config_broker_cert (config), -1,
                                 error, error_size))
        goto failed;
    if (s_read_checkpoint_key (al_config_checkpoint_key (config), self->checkpoint_key, error, error_size))
        goto failed;
    //  One broker per audit log: a second one would take the endpoint over and write the
    //  same chain. The lock file holds the holder's pid and is never removed (removing it
    //  would let two processes lock two different files).
    if (s_lock_database (self, error, error_size))
        goto failed;
    //  The checkpoint's directory (one level) is made if missing.
    char *checkpoint_dir = strdup (al_config_checkpoint_path (config));
    if (checkpoint_dir) {
        char *slash = strrchr (checkpoint_dir, '/');
        if (slash && slash != checkpoint_dir) {
            *slash = '\0';
            mkdir (checkpoint_dir, 0700);
        }
        free (checkpoint_dir);
    }
    self->store = al_store_open (NULL, al_config_database (config), NULL, error, error_size);
    if (!self->store)
        goto failed;
    //  The head this broker starts from; from now on only its own commits move it.
    self->own_rows = al_store_row_count (self->store);
    al_store_head_hash (self->store, self->own_head);
    atomic_init (&self->tampered, false);
    al_store_options_t read_only = { .read_only = true };
    self->checkpoint_store = al_store_open (NULL, al_config_database (config), &read_only, error, error_size);
    if (!self->checkpoint_store)
        goto failed;
    //  Pending production requests and their approvals, from the log alone.
    self->approvals = al_approvals_new ();
    if (!self->approvals || al_approvals_rebuild (self->approvals, self->store, self->policy, error, error_size) < 0)
        goto failed;
    pthread_mutex_init (&self->checkpoint_lock, NULL);
    pthread_cond_init (&self->checkpoint_wake, NULL);
    if (pthread_create (&self->checkpoint_thread, NULL, s_checkpoint_run, self) != 0) {
        snprintf (error, error_size, "broker: cannot start the checkpoint thread");
        goto failed;
    }
    self->checkpoint_thread_started = true;
    self->peers = zhashx_new ();
    self->buckets = zhashx_new ();
    self->inflight = s_u64_table ();
    self->topics = zhashx_new ();
    self->round_robin = zhashx_new ();
    self->events = zlistx_new ();
    self->closed = zhashx_new ();
    self->items = (s_item_t *) calloc (self->max_items, sizeof *self->items);
    if (!self->peers || !self->buckets || !self->inflight || !self->topics || !self->round_robin
    ||  !self->events || !self->closed || !self->items) {
        snprintf (error, error_size, "broker: out of memory");
        goto failed;
    }
    zhashx_set_destructor (self->peers, s_peer_free);
    zhashx_set_destructor (self->buckets, s_free_item);
    zhashx_set_destructor (self->inflight, s_free_item);
    zhashx_set_destructor (self->topics, s_free_item);
    zhashx_set_destructor (self->round_robin, s_free_item);
    zhashx_set_destructor (self->closed, s_free_item);
    zlistx_set_destructor (self->events, s_event_destroy);

    //  The ZAP handler first: libzmq accepts any CURVE key when none is bound.
    self->zap = zsock_new (ZMQ_REP);
    if (!self->zap || zsock_bind (self->zap, S_ZAP_ENDPOINT) == -1) {
        snprintf (error, error_size, "%s: cannot bind the ZAP handler (another one in this process?): "
                  "refusing to start", S_ZAP_ENDPOINT);
        goto failed;
    }
    self->router = zsock_new (ZMQ_ROUTER);
    self->pub = zsock_new (ZMQ_PUB);
    if (!self->router || !self->pub) {
        snprintf (error, error_size, "broker: cannot create sockets");
        goto failed;
    }
    if (s_secure_socket (self, self->router, "router", error, error_size)
    ||  s_secure_socket (self, self->pub, "pub", error, error_size))
        goto failed;
    zsock_set_router_mandatory (self->router, 1);
    self->monitor_router = s_monitor_start (self, self->router, "router", error, error_size);
    if (!self->monitor_router)
        goto failed;
    self->monitor_pub = s_monitor_start (self, self->pub, "pub", error, error_size);
    if (!self->monitor_pub)
        goto failed;
    if (zsock_bind (self->router, "%s", al_config_router_endpoint (config)) == -1) {
        snprintf (error, error_size, "%s: cannot bind: %s", al_config_router_endpoint (config),
                  zmq_strerror (zmq_errno ()));
        goto failed;
    }
    if (zsock_bind (self->pub, "%s", al_config_pub_endpoint (config)) == -1) {
        snprintf (error, error_size, "%s: cannot bind: %s", al_config_pub_endpoint (config),
                  zmq_strerror (zmq_errno ()));
        goto failed;
    }
    self->checkpoint_rows = self->own_rows;
    atomic_store (&self->checkpoint_written_rows, self->own_rows);  // as the schedule assumes
    self->checkpoint_mono = s_mono_ms ();
    s_policy_event (self, "broker started");
    if (s_batch (self)) {
        if (atomic_load (&self->tampered))
            snprintf (error, error_size, "%s: the log changed while the broker started (see %s.incident)",
                      al_config_database (config), al_config_database (config));
        else
            snprintf (error, error_size, "%s: cannot write the audit log: %s", al_config_database (config),
                      al_store_error (self->store));
        goto failed;
    }
    self->next_tick_mono = s_mono_ms () + (uint64_t) al_config_heartbeat_ms (config);
    return self;

failed:
    al_broker_destroy (&self);
    return NULL;
}

void
al_broker_destroy (al_broker_t **self_p)
{
    assert (self_p);
    al_broker_t *self = *self_p;
    if (!self)
        return;
    //  Stop the monitors and drain their pipes before closing anything: an event left
    //  in a monitor pipe at context shutdown is never freed by libzmq.
    if (self->router && self->monitor_router)
        zmq_socket_monitor (zsock_resolve (self->router), NULL, 0);
    if (self->pub && self->monitor_pub)
        zmq_socket_monitor (zsock_resolve (self->pub), NULL, 0);
    zsock_t *monitors [] = { self->monitor_router, self->monitor_pub };
    for (size_t i = 0; i < 2; i++) {
        if (!monitors [i])
            continue;
        zmq_msg_t msg;
        zmq_msg_init (&msg);
        while (zmq_msg_recv (&msg, zsock_resolve (monitors [i]), ZMQ_DONTWAIT) != -1)
            ;
        zmq_msg_close (&msg);
    }
    zsock_destroy (&self->monitor_router);
    zsock_destroy (&self->monitor_pub);
    zsock_destroy (&self->router);
    zsock_destroy (&self->pub);
    zsock_destroy (&self->zap);
    if (self->checkpoint_thread_started) {
        //  The thread writes a last checkpoint if one was asked for, then ends.
        pthread_mutex_lock (&self->checkpoint_lock);
        self->checkpoint_stop = true;
        if (atomic_load (&self->tampered))
            self->checkpoint_requested = false;     // sign nothing more

        pthread_cond_signal (&self->checkpoint_wake);
        pthread_mutex_unlock (&self->checkpoint_lock);
        pthread_join (self->checkpoint_thread, NULL);
        pthread_mutex_destroy (&self->checkpoint_lock);
        pthread_cond_destroy (&self->checkpoint_wake);
    }
    al_store_destroy (&self->checkpoint_store);
    zhashx_destroy (&self->peers);
    zhashx_destroy (&self->buckets);
    zhashx_destroy (&self->inflight);
    zhashx_destroy (&self->topics);
    zhashx_destroy (&self->round_robin);
    zhashx_destroy (&self->closed);
    zlistx_destroy (&self->events);
    free (self->items);
    free (self->pack_buffer);
    al_approvals_destroy (&self->approvals);
    al_store_destroy (&self->store);
    zcert_destroy (&self->cert);
    al_policy_destroy (&self->policy);
    sodium_memzero (self->checkpoint_key, sizeof self->checkpoint_key);
    if (self->lock_fd >= 0)
        close (self->lock_fd);
    free (self);
    *self_p = NULL;
}

int
al_broker_reload (al_broker_t *self)
{
    assert (self);
    al_policy_errors_t *errors = NULL;
    al_policy_t *policy = al_policy_load (al_config_policy_dir (self->config), &errors);
    if (!policy) {
        char *text = s_policy_errors_text (errors);
        zsys_error ("broker: policy reload failed, keeping digest %s: %s",
                    al_policy_digest_hex (self->policy), text? text: "invalid policy");
        s_event_queue (self, "PolicyReloadFailed", S_BROKER_IDENTITY, S_BROKER_IDENTITY,
                       "kept policy digest %s: %s", al_policy_digest_hex (self->policy),
                       text? text: "invalid policy");
        free (text);
        al_policy_errors_destroy (&errors);
        return -1;
    }
    al_policy_destroy (&self->policy);
    self->policy = policy;
    self->policy_generation++;
    s_policy_event (self, "reloaded");
    return 0;
}

void
al_broker_request_stop (al_broker_t *self)
{
    self->stop_requested = 1;
}

void
al_broker_request_reload (al_broker_t *self)
{
    self->reload_requested = 1;
}

static al_broker_t *s_signal_broker;

static void
s_on_signal (int signum)
{
    if (!s_signal_broker)
        return;
    if (signum == SIGHUP)
        al_broker_request_reload (s_signal_broker);
    else
        al_broker_request_stop (s_signal_broker);
}

void
al_broker_handle_signals (al_broker_t *self)
{
    zsys_handler_set (NULL);
    s_signal_broker = self;
    struct sigaction action;
    memset (&action, 0, sizeof action);
    action.sa_handler = s_on_signal;
    sigemptyset (&action.sa_mask);
    sigaction (SIGTERM, &action, NULL);
    sigaction (SIGINT, &action, NULL);
    sigaction (SIGHUP, &action, NULL);
    //  A closed log pipe must not kill the broker.
    signal (SIGPIPE, SIG_IGN);
}

//  Once per heartbeat interval: heartbeat every peer, forget the dead, resend what
//  waits, checkpoint on time.
static void
s_tick (al_broker_t *self)
{
    uint64_t now = s_mono_ms ();
    zlistx_t *dead = zlistx_new ();
    assert (dead);
    zlistx_set_duplicator (dead, (czmq_duplicator *) strdup);
    zlistx_set_destructor (dead, (czmq_destructor *) zstr_free);
    for (s_peer_t *peer = (s_peer_t *) zhashx_first (self->peers); peer;
         peer = (s_peer_t *) zhashx_next (self->peers)) {
        if (peer->unsent) {
            s_event_queue (self, "HighWaterMark", peer->identity, peer->role,
                           "%llu messages to this connection were not sent: its queue was at sndhwm "
                           "(%d); deliveries stay queued, acknowledgements come again on retransmission",
                           (unsigned long long) peer->unsent, al_config_sndhwm (self->config));
            peer->unsent = 0;
        }
        if (peer->closing)
            continue;               // s_close_due drops it
        if (peer->disconnect_reported) {
            peer->disconnect_reported = false;
            if (s_socket_gone (peer)) {
                s_event_queue (self, "PeerDisconnected", peer->identity, peer->role,
                               "connection closed (by the peer, or by the transport for a frame "
                               "above %zu bytes)", 2 * self->max_message);
                zlistx_add_end (dead, peer->key);
                continue;
            }
        }
        if (now - peer->last_seen_mono > peer->dead_after_ms)
            zlistx_add_end (dead, peer->key);
        else
            s_send_heartbeat (self, peer);
    }
    for (char *key = (char *) zlistx_first (dead); key; key = (char *) zlistx_next (dead))
        s_peer_forget (self, key);
    zlistx_destroy (&dead);
    s_closed_purge (self);
    s_sweep_all (self);
    s_checkpoint (self, false);
    s_metrics_tick (self);
}

int
al_broker_run (al_broker_t *self)
{
    assert (self);
    zmq_pollitem_t items [] = {
        { zsock_resolve (self->router), 0, ZMQ_POLLIN, 0 },
        { zsock_resolve (self->zap), 0, ZMQ_POLLIN, 0 },
        { zsock_resolve (self->monitor_router), 0, ZMQ_POLLIN, 0 },
        { zsock_resolve (self->monitor_pub), 0, ZMQ_POLLIN, 0 },
    };
    uint64_t interval = (uint64_t) al_config_heartbeat_ms (self->config);
    //  Under systemd's watchdog (WATCHDOG_USEC), ping twice per interval from this loop:
    //  a broker stuck anywhere stops pinging and systemd restarts the unit.
    uint64_t watchdog_ms = al_sd_watchdog_usec () / 2000;
    uint64_t next_watchdog_mono = 0;
    while (!self->stop_requested) {
        if (watchdog_ms && s_mono_ms () >= next_watchdog_mono) {
            al_sd_notify ("WATCHDOG=1");
            next_watchdog_mono = s_mono_ms () + watchdog_ms;
        }
        if (atomic_load (&self->tampered))
            return -1;              // s_incident said why
        if (self->reload_requested) {
            self->reload_requested = 0;
            al_broker_reload (self);
        }
        uint64_t now = s_mono_ms ();
        long timeout = self->next_tick_mono > now? (long) (self->next_tick_mono - now): 0;
        if (self->closing_peers && timeout > S_CLOSE_POLL_MS)
            timeout = S_CLOSE_POLL_MS;
        if (watchdog_ms) {
            long until_watchdog = next_watchdog_mono > now? (long) (next_watchdog_mono - now): 0;
            if (until_watchdog < timeout)
                timeout = until_watchdog;
        }
        if (zlistx_size (self->events))
            timeout = 0;
        int rc = zmq_poll (items, 4, timeout);
        if (rc == -1 && zmq_errno () != EINTR) {
            zsys_error ("broker: poll: %s", zmq_strerror (zmq_errno ()));
            return -1;
        }
        if (rc > 0) {
            while (items [1].revents & ZMQ_POLLIN) {
                s_zap_handle (self);
                if (!(zsock_events (self->zap) & ZMQ_POLLIN))
                    break;
            }
            if (items [2].revents & ZMQ_POLLIN)
                s_monitor_handle (self, self->monitor_router, "router");
            if (items [3].revents & ZMQ_POLLIN)
                s_monitor_handle (self, self->monitor_pub, "pub");
        }
        if ((rc > 0 && (items [0].revents & ZMQ_POLLIN)) || zlistx_size (self->events)) {
            if (s_batch (self))
                return -1;
        }
        s_close_due (self);
        now = s_mono_ms ();
        if (now >= self->next_tick_mono) {
            s_tick (self);
            self->next_tick_mono = now + interval;
        }
    }
    //  Stop: take what is already queued, commit it, answer it, checkpoint.
    while (zsock_events (self->router) & ZMQ_POLLIN || zlistx_size (self->events)) {
        if (s_batch (self))
            return -1;
    }
    s_checkpoint (self, true);
    return 0;
}
