/*  al_broker_int.h: the broker's state and the functions its files share. Never
    included outside broker/al_broker*.c.

    The broker is one object, al_broker_t, split by concern over these files:
      al_broker.c             lifecycle (new, destroy, reload, signals), the reactor loop
                              and its tick; the broker's own events
      al_broker_auth.c        authentication: the ZAP handler, socket monitors, the
                              CURVE server options, the audit budget of unauthenticated peers
      al_broker_peers.c       the peer table, sending to a peer, heartbeats, closing peers
      al_broker_delivery.c    routing, delivery queues, Ack / Denied replies, publishing
      al_broker_status.c      the StatusQuery server (agents, approvals, journal)
      al_broker_batch.c       judging, the group-commit batch, answering after the commit
      al_broker_checkpoint.c  the checkpoint writer thread, the own-head check, incidents
      al_broker_metrics.c     the operator metrics the broker keeps

    Threading: everything runs in the reactor thread except al_broker_checkpoint_run,
    which touches only the checkpoint_* fields (under checkpoint_lock), the checkpoint
    store, the atomics and the telemetry registry.
*/
#ifndef AL_BROKER_INT_H_INCLUDED
#define AL_BROKER_INT_H_INCLUDED

#include "broker/al_broker.h"
#include "broker/al_approval_desk.h"
#include "broker/al_telemetry.h"
#include "policies/al_policy.h"
#include "proto/al_codec.h"
#include "store/al_store.h"
#include <czmq.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

//  The ZAP endpoint libzmq asks (RFC 27); bound by al_broker_new before any endpoint.
#define AL_BROKER_ZAP_ENDPOINT "inproc://zeromq.zap.01"
//  A peer is dead after this many missed heartbeat intervals.
#define AL_BROKER_MISSED_HEARTBEATS 3
//  Pending deliveries looked at per page of a sweep (and of the queue-depth metric).
#define AL_BROKER_SWEEP_PAGE 256
//  The sender identity and role of the rows the broker writes itself.
#define AL_BROKER_IDENTITY "broker"
//  A dropped closing peer's routing id is remembered, and an unanswered closing peer
//  cut, after this long (al_broker_peers.c).
#define AL_BROKER_CLOSE_LIMIT_MS 5000
//  How often the reactor looks at closing peers while there are some.
#define AL_BROKER_CLOSE_POLL_MS 20
//  After this many peers were forgotten, the next tick hands free heap pages back to the
//  kernel (al_broker.c, s_tick).
#define AL_BROKER_TRIM_AFTER_PEERS 32
//  libzmq keeps the pipe pair of each connection's ZAP request until the connection
//  ends (~10 KB each). After this many answered requests the reactor binds a fresh ZAP
//  handler and closes the old one once it was quiet for AL_BROKER_ZAP_RETIRE_MS, which
//  releases the pipes of the handshakes it answered (al_broker_auth.c).
#define AL_BROKER_ZAP_RENEW_AFTER 64
#define AL_BROKER_ZAP_RETIRE_MS 250
//  The audit writer's SQLite page cache, KiB (al_broker.c, al_broker_new).
#define AL_BROKER_WRITER_CACHE_KIB 1024
//  How long accepted DeliveryAcks may wait for the next commit (al_broker_batch.c).
#define AL_BROKER_ACK_DEFER_MS 10
//  Integer keys for zhashx (delivery sequences): stored in the key pointer itself.
#define AL_BROKER_KEY(sequence) ((void *) (uintptr_t) (sequence))

//  ---- state --------------------------------------------------------------------------

//  One connection, known by its ROUTER routing id. key and routing_id point into the
//  storage allocated with the struct (al_broker_peer_touch), sized for this routing id:
//  libzmq's are 5 bytes, a client's own up to 255, and 1,000 peers with room for the
//  largest held 0.75 MB for nothing.
typedef struct {
    char *key;                      // hex of the routing id (zhashx key)
    uint8_t *routing_id;
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
    //  open: the next tick looks again (al_broker_socket_gone).
    bool disconnect_reported;
    //  Closing (it sent an oversized frame): its later frames are dropped unread, and
    //  al_broker_close_due cuts it once its Denied has left (answered_mono: when it was queued,
    //  0 before; closing_mono: when the frame was read).
    bool closing;
    uint64_t closing_mono;
    uint64_t answered_mono;
    char storage [];                // routing_id, then key
} al_broker_peer_t;

//  Token bucket.
typedef struct {
    double tokens;
    uint64_t last_mono;
} al_broker_bucket_t;

//  An event the broker itself records (policy loaded, handshake failed, ...).
typedef struct {
    char type [64];
    char sender [AL_CODEC_MAX_NAME_LEN + 1];
    char role [AL_CODEC_MAX_NAME_LEN + 1];
    char reason [512];
} al_broker_event_t;


//  Bytes per item for its unpacked envelope: a 200-byte DeployRequest takes about 700;
//  a larger envelope is unpacked with malloc instead.
#define AL_BROKER_ARENA_SIZE 2048

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
    bool transient;                 // rate limited: recorded without message id (see s_judge, al_broker_batch.c)
    bool fresh;                     // appended now (not a retransmission)
    al_store_append_result_t result;
    //  SignedApproval: the gate's verdict (NULL for other types), the clock reading of
    //  its decision, the outcome text for the Ack, and the row of the grant it produced.
    al_approval_desk_verdict_t *verdict;
    uint64_t now_ms;
    char detail [512];
    uint64_t grant_sequence;
    uint64_t closed_sequence;       // the ApprovalClosed row the orchestrator is told of
    //  Memory the envelope is unpacked into, if it fits (al_broker_batch.c); last: not cleared per message.
    bool envelope_in_arena;
    size_t arena_used;
    _Alignas (16) uint8_t arena [AL_BROKER_ARENA_SIZE];
} al_broker_item_t;

struct _al_broker_t {
    const al_config_t *config;
    int lock_fd;                    // flock on DATABASE.lock: one broker per audit log
    struct _al_leader_t *leader;    // failover (al_broker_leader.c): the lease; NULL without ha
    al_policy_t *policy;
    uint64_t policy_generation;
    al_store_t *store;
    al_approval_desk_t *approvals;      // pending production requests and their approvals
    zcert_t *cert;
    uint8_t checkpoint_key [crypto_sign_SECRETKEYBYTES];
    zsock_t *router;
    zsock_t *pub;
    zsock_t *zap;                   // the ZAP handler bound to AL_BROKER_ZAP_ENDPOINT
    zsock_t *zap_retiring;          // the previous one, unbound: answers what it holds, then closed
    uint64_t zap_retire_mono;       // when zap_retiring may be closed, if quiet until then
    size_t zap_answered;            // requests answered by zap since it was bound
    size_t zap_retiring_answered;   // requests answered by zap_retiring (pipes it will release)
    size_t zap_renew_after;         // AL_BROKER_ZAP_RENEW_AFTER (tests lower it)
    size_t zap_retired;             // ZAP handlers closed so far
    size_t zap_released;            // their answered requests since the heap was last trimmed
    zsock_t *monitor_router;
    zsock_t *monitor_pub;
    zhashx_t *peers;                // key hex → al_broker_peer_t
    zhashx_t *buckets;              // identity → al_broker_bucket_t
    zhashx_t *inflight;             // sequence → holder peer key (strdup)
    zhashx_t *topics;               // topic → uint64_t counter
    zhashx_t *round_robin;          // role → size_t counter
    zlistx_t *events;               // al_broker_event_t waiting for the next batch
    size_t closing_peers;           // peers in the closing state (recounted by al_broker_close_due)
    size_t forgotten_peers;         // peers forgotten since the heap was last trimmed
    zhashx_t *closed;               // key hex of a dropped closing peer → uint64_t expiry (mono)
    al_broker_item_t *items;        // max_items, mapped on their own (al_broker.c, s_items_release)
    size_t items_bytes;
    size_t deferred;                // items [0, deferred): DeliveryAcks waiting for a commit
    uint64_t deferred_since_mono;
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
    al_broker_bucket_t unauth_bucket;
    uint64_t unauth_suppressed;
    volatile sig_atomic_t stop_requested;
    bool leadership_lost;           // the lease was lost: al_broker_run returns -1
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

//  ---- clocks and hex -------------------------------------------------------------------

static inline uint64_t
al_broker_wall_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

static inline uint64_t
al_broker_mono_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

static inline double
al_broker_mono_seconds (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (double) now.tv_sec + (double) now.tv_nsec / 1e9;
}

//  out gets 2 * size hex digits and a NUL.
static inline void
al_broker_hex (const uint8_t *data, size_t size, char *out)
{
    static const char digits [] = "0123456789abcdef";
    for (size_t i = 0; i < size; i++) {
        out [2 * i] = digits [data [i] >> 4];
        out [2 * i + 1] = digits [data [i] & 15];
    }
    out [2 * size] = '\0';
}

//  ---- al_broker.c ----------------------------------------------------------------------

//  Queue a row the broker writes itself (appended with the next batch).
void al_broker_event_queue (al_broker_t *self, const char *type, const char *sender, const char *role,
                            const char *format, ...) __attribute__ ((format (printf, 5, 6)));

//  ---- al_broker_auth.c -----------------------------------------------------------------

//  Take one token from bucket (rate per second, burst); false when empty.
bool al_broker_bucket_take (al_broker_bucket_t *bucket, double rate, double burst, uint64_t now_mono);
//  Answer one ZAP request.
//  Bind the first ZAP handler (before any endpoint). Returns 0 or -1 with error set.
int al_broker_zap_start (al_broker_t *self, char *error, size_t error_size);
//  Answer one ZAP request waiting on zap (self->zap or self->zap_retiring).
void al_broker_zap_handle (al_broker_t *self, zsock_t *zap);
//  Renew the handler when due, close the retiring one once quiet (every loop turn).
void al_broker_zap_renew (al_broker_t *self, uint64_t now_mono);
//  Failover (al_broker_leader.c, docs/ha.md): wait as a standby until this broker holds
//  the lease; fence the store with its epoch; renew it (-1: lost, stop serving).
int al_broker_leader_start (al_broker_t *self, char *error, size_t error_size);
int al_broker_leader_fence (al_broker_t *self, char *error, size_t error_size);
int al_broker_leader_tick (al_broker_t *self);
//  In a transaction just begun: the log grew under us AND the lease is no longer ours
//  (a failover, not tampering). Sets leadership_lost.
bool al_broker_leader_superseded (al_broker_t *self);
//  Handle one event of a socket monitor (handshake failures, disconnects).
void al_broker_monitor_handle (al_broker_t *self, zsock_t *monitor, const char *socket_name);
//  Start a monitor on socket; NULL with error filled on failure.
zsock_t *al_broker_monitor_start (al_broker_t *self, zsock_t *socket, const char *name, char *error,
                                  size_t error_size);
//  Make socket a CURVE server under our ZAP domain with enforcement read back as on.
int al_broker_secure_socket (al_broker_t *self, zsock_t *socket, const char *name, char *error,
                             size_t error_size);

//  ---- al_broker_peers.c ----------------------------------------------------------------

size_t al_broker_pack (al_broker_t *self, const al_envelope_t *envelope);
int al_broker_send_to (al_broker_t *self, al_broker_peer_t *peer, const uint8_t *data, size_t size);
void al_broker_envelope_init (al_broker_t *self, al_envelope_t *envelope, char *id_buffer, size_t id_size,
                              const char *prefix);
void al_broker_send_heartbeat (al_broker_t *self, al_broker_peer_t *peer);
void al_broker_peer_free (void **item_p);
al_broker_peer_t *al_broker_peer_touch (al_broker_t *self, const zmq_msg_t *routing_id, zmq_msg_t *body,
                                        char *key_out);
bool al_broker_socket_gone (const al_broker_peer_t *peer);
void al_broker_peer_forget (al_broker_t *self, const char *key);
bool al_broker_closed_recently (al_broker_t *self, zmq_msg_t *routing_id);
void al_broker_closed_purge (al_broker_t *self);
void al_broker_peer_closing_begin (al_broker_t *self, al_broker_peer_t *peer);
void al_broker_close_due (al_broker_t *self);

//  ---- al_broker_delivery.c -------------------------------------------------------------

al_broker_peer_t *al_broker_pick_instance (al_broker_t *self, const char *role);
size_t al_broker_pack_stamped (al_broker_t *self, al_envelope_t *envelope, const char *identity,
                               const char *role, uint64_t sequence);
bool al_broker_deliver_stored (al_broker_t *self, const char *role, uint64_t sequence);
void al_broker_sweep_role (al_broker_t *self, const char *role);
void al_broker_sweep_all (al_broker_t *self);
void al_broker_reply_ack (al_broker_t *self, al_broker_peer_t *peer, const char *message_id,
                          const al_store_append_result_t *result, bool duplicate, const char *detail);
void al_broker_reply_denied (al_broker_t *self, al_broker_peer_t *peer, const char *message_id,
                             Airlock__DenyCode code, const char *reason, uint64_t sequence);
void al_broker_publish (al_broker_t *self, const al_envelope_t *envelope, const char *type, size_t size);

//  ---- al_broker_status.c ---------------------------------------------------------------

void al_broker_reply_status (al_broker_t *self, al_broker_peer_t *peer, const al_envelope_t *query);

//  ---- al_broker_batch.c ----------------------------------------------------------------

//  Drain, judge, audit in one transaction, commit, answer, route. Returns 0, or -1 if
//  the store failed or the log changed (nothing was answered).
int al_broker_batch (al_broker_t *self);
//  Release the DeliveryAcks a batch held back without committing them (destroy).
void al_broker_batch_discard (al_broker_t *self);

//  ---- al_broker_checkpoint.c -----------------------------------------------------------

void al_broker_incident (al_broker_t *self, const char *where, const char *what);
bool al_broker_head_is_ours (al_broker_t *self);
void *al_broker_checkpoint_run (void *arg);
void al_broker_checkpoint (al_broker_t *self, bool force);

//  ---- al_broker_metrics.c --------------------------------------------------------------

void al_broker_metrics_init (al_broker_t *self);
void al_broker_metrics_count (const char *type, al_store_decision_t decision, Airlock__DenyCode code);
void al_broker_metrics_tick (al_broker_t *self);

#endif
