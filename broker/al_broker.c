/*  al_broker.c: the broker's lifecycle and reactor: new, destroy, reload, signals, run.

    One thread runs everything: a zmq_poll loop over the ROUTER (clients), the ZAP REP
    socket, and the two socket monitors. When the ROUTER is readable the loop drains up
    to batch_max messages without blocking, judges each one, appends all of them (denials
    and undecodable frames too) to the audit store in ONE transaction, commits (one
    fsync), and only then answers the senders and routes (al_broker_batch.c). Invariants:
    - nothing leaves the broker about a message before its audit row is committed;
    - the sender's identity and role come only from the ZAP User-Id of the frame (the
      client's Z85 CURVE key, set by our ZAP handler) mapped through the current policy;
      Envelope.sender from a client is never read and is overwritten in what we forward;
    - an accepted routed message is in the store's delivery queue (same transaction)
      until an instance of its role sends DeliveryAck.

    The other concerns live in their own files (al_broker_int.h lists them): ZAP and
    handshakes in al_broker_auth.c, the peer table and oversized-frame closing in
    al_broker_peers.c, routing and delivery in al_broker_delivery.c, StatusQuery in
    al_broker_status.c, checkpoints and the own-head check in al_broker_checkpoint.c.

    Threads: the reactor owns everything but the checkpoint writer, a second thread with
    its own read-only store handle that signs and writes the checkpoint file when the
    reactor asks (mutex + condition variable), so its fsyncs never delay an Ack.
*/
#include "broker/al_broker_int.h"
#include "broker/al_leader.h"
#include "store/al_store_pg.h"
#include "base/al_sd_notify.h"
#include "proto/al_signature.h"
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

//  ---- small helpers ------------------------------------------------------------------

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


//  ---- broker-made events -------------------------------------------------------------

void
al_broker_event_queue (al_broker_t *self, const char *type, const char *sender, const char *role,
                       const char *format, ...)
{
    al_broker_event_t *event = (al_broker_event_t *) calloc (1, sizeof *event);
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
    al_broker_event_queue (self, "PolicyLoaded", AL_BROKER_IDENTITY, AL_BROKER_IDENTITY, "%s: policy %s digest %s",
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
    al_broker_metrics_init (self);
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
    //  Several brokers on one PostgreSQL: the lease instead of the lock (docs/ha.md).
    if (al_config_ha_database (config)? al_broker_leader_start (self, error, error_size)
                                      : s_lock_database (self, error, error_size))
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
    //  With ha: the PostgreSQL store (store.dsn) the brokers share, fenced by the lease.
    const char *backend = self->leader? AL_STORE_PG_BACKEND: al_config_store_backend (config);
    const char *database = self->leader? al_config_ha_database (config): al_config_store_location (config);
    //  The writer's page cache: 1 MiB instead of SQLite's 2 MB. It appends at the right
    //  edge of the table and its indexes, and its sweeps read the delivery queue; a full
    //  2 MB cache was 5% of the broker's resident memory with 1,000 agents.
    al_store_options_t writer = { .create = true, .cache_kib = AL_BROKER_WRITER_CACHE_KIB };
    self->store = al_store_open (backend, database, &writer, error, error_size);
    if (!self->store || al_broker_leader_fence (self, error, error_size))
        goto failed;
    //  The head this broker starts from; from now on only its own commits move it.
    self->own_rows = al_store_row_count (self->store);
    al_store_head_hash (self->store, self->own_head);
    atomic_init (&self->tampered, false);
    //  It reads the head row only: a small page cache (the default is 2 MB per connection).
    al_store_options_t read_only = { .read_only = true, .cache_kib = 64 };
    self->checkpoint_store = al_store_open (backend, database, &read_only, error, error_size);
    if (!self->checkpoint_store)
        goto failed;
    //  Pending production requests and their approvals, from the log alone.
    self->approvals = al_approval_desk_new ();
    if (!self->approvals || al_approval_desk_rebuild (self->approvals, self->store, self->policy, error, error_size) < 0)
        goto failed;
    pthread_mutex_init (&self->checkpoint_lock, NULL);
    pthread_cond_init (&self->checkpoint_wake, NULL);
    if (pthread_create (&self->checkpoint_thread, NULL, al_broker_checkpoint_run, self) != 0) {
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
    //  The batch's items (~2.7 KB each, 1.4 MB for 512) are mapped on their own, so that
    //  the tick can hand their pages back once a burst has touched them all.
    self->items_bytes = self->max_items * sizeof *self->items;
    self->items = (al_broker_item_t *) mmap (NULL, self->items_bytes, PROT_READ | PROT_WRITE,
                                             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (self->items == MAP_FAILED)
        self->items = NULL;
    if (!self->peers || !self->buckets || !self->inflight || !self->topics || !self->round_robin
    ||  !self->events || !self->closed || !self->items) {
        snprintf (error, error_size, "broker: out of memory");
        goto failed;
    }
    zhashx_set_destructor (self->peers, al_broker_peer_free);
    zhashx_set_destructor (self->buckets, s_free_item);
    zhashx_set_destructor (self->inflight, s_free_item);
    zhashx_set_destructor (self->topics, s_free_item);
    zhashx_set_destructor (self->round_robin, s_free_item);
    zhashx_set_destructor (self->closed, s_free_item);
    zlistx_set_destructor (self->events, s_event_destroy);

    //  The ZAP handler first: libzmq accepts any CURVE key when none is bound.
    if (al_broker_zap_start (self, error, error_size))
        goto failed;
    self->router = zsock_new (ZMQ_ROUTER);
    self->pub = zsock_new (ZMQ_PUB);
    if (!self->router || !self->pub) {
        snprintf (error, error_size, "broker: cannot create sockets");
        goto failed;
    }
    if (al_broker_secure_socket (self, self->router, "router", error, error_size)
    ||  al_broker_secure_socket (self, self->pub, "pub", error, error_size))
        goto failed;
    zsock_set_router_mandatory (self->router, 1);
    self->monitor_router = al_broker_monitor_start (self, self->router, "router", error, error_size);
    if (!self->monitor_router)
        goto failed;
    self->monitor_pub = al_broker_monitor_start (self, self->pub, "pub", error, error_size);
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
    self->checkpoint_mono = al_broker_mono_ms ();
    s_policy_event (self, "broker started");
    if (al_broker_batch (self)) {
        if (atomic_load (&self->tampered))
            snprintf (error, error_size, "%s: the log changed while the broker started (see %s.incident)",
                      al_config_database (config), al_config_database (config));
        else
            snprintf (error, error_size, "%s: cannot write the audit log: %s", al_config_database (config),
                      al_store_error (self->store));
        goto failed;
    }
    self->next_tick_mono = al_broker_mono_ms () + (uint64_t) al_config_heartbeat_ms (config);
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
    zsock_destroy (&self->zap_retiring);
    if (self->items)
        al_broker_batch_discard (self);
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
    if (self->items)
        munmap (self->items, self->items_bytes);
    free (self->pack_buffer);
    al_approval_desk_destroy (&self->approvals);
    al_store_destroy (&self->store);
    al_leader_destroy (&self->leader);
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
        al_broker_event_queue (self, "PolicyReloadFailed", AL_BROKER_IDENTITY, AL_BROKER_IDENTITY,
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

//  Items past the DeliveryAcks held for the next commit are dead between batches (each
//  batch clears an item before use): their pages go back to the kernel, which gives
//  zeroed ones on the next touch. After a burst of 512 messages they held 1.4 MB.
static void
s_items_release (al_broker_t *self)
{
    size_t page = (size_t) sysconf (_SC_PAGESIZE);
    size_t live = self->deferred * sizeof *self->items;
    size_t from = (live + page - 1) / page * page;
    if (from < self->items_bytes)
        madvise ((char *) self->items + from, self->items_bytes - from, MADV_DONTNEED);
}

//  Once per heartbeat interval: heartbeat every peer, forget the dead, resend what
//  waits, checkpoint on time.
static void
s_tick (al_broker_t *self)
{
    uint64_t now = al_broker_mono_ms ();
    zlistx_t *dead = zlistx_new ();
    assert (dead);
    zlistx_set_duplicator (dead, (czmq_duplicator *) strdup);
    zlistx_set_destructor (dead, (czmq_destructor *) zstr_free);
    for (al_broker_peer_t *peer = (al_broker_peer_t *) zhashx_first (self->peers); peer;
         peer = (al_broker_peer_t *) zhashx_next (self->peers)) {
        if (peer->unsent) {
            al_broker_event_queue (self, "HighWaterMark", peer->identity, peer->role,
                           "%llu messages to this connection were not sent: its queue was at sndhwm "
                           "(%d); deliveries stay queued, acknowledgements come again on retransmission",
                           (unsigned long long) peer->unsent, al_config_sndhwm (self->config));
            peer->unsent = 0;
        }
        if (peer->closing)
            continue;               // al_broker_close_due drops it
        if (peer->disconnect_reported) {
            peer->disconnect_reported = false;
            if (al_broker_socket_gone (peer)) {
                al_broker_event_queue (self, "PeerDisconnected", peer->identity, peer->role,
                               "connection closed (by the peer, or by the transport for a frame "
                               "above %zu bytes)", 2 * self->max_message);
                zlistx_add_end (dead, peer->key);
                continue;
            }
        }
        if (now - peer->last_seen_mono > peer->dead_after_ms)
            zlistx_add_end (dead, peer->key);
        else
            al_broker_send_heartbeat (self, peer);
    }
    for (char *key = (char *) zlistx_first (dead); key; key = (char *) zlistx_next (dead))
        al_broker_peer_forget (self, key);
    zlistx_destroy (&dead);
    al_broker_closed_purge (self);
    //  Connections that ended leave their buffers (ours, libzmq's, CURVE's) free but
    //  scattered over the heaps of two threads, which glibc does not return by itself:
    //  without this, waves of agents connecting and leaving grew the RSS by a third.
    //  The same for the ZAP pipes a closed ZAP handler released (al_broker_auth.c).
    if (self->forgotten_peers + self->zap_released >= AL_BROKER_TRIM_AFTER_PEERS) {
        malloc_trim (0);
        self->forgotten_peers = 0;
        self->zap_released = 0;
    }
    s_items_release (self);
    al_broker_sweep_all (self);
    al_broker_checkpoint (self, false);
    al_broker_metrics_tick (self);
    if (al_broker_leader_tick (self))
        self->leadership_lost = true;
}

int
al_broker_run (al_broker_t *self)
{
    assert (self);
    //  Items 1 and 4 are the ZAP handler and the retiring one: renewed as they change.
    zmq_pollitem_t items [] = {
        { zsock_resolve (self->router), 0, ZMQ_POLLIN, 0 },
        { NULL, 0, ZMQ_POLLIN, 0 },
        { zsock_resolve (self->monitor_router), 0, ZMQ_POLLIN, 0 },
        { zsock_resolve (self->monitor_pub), 0, ZMQ_POLLIN, 0 },
        { NULL, 0, ZMQ_POLLIN, 0 },
    };
    uint64_t interval = (uint64_t) al_config_heartbeat_ms (self->config);
    //  Under systemd's watchdog (WATCHDOG_USEC), ping twice per interval from this loop:
    //  a broker stuck anywhere stops pinging and systemd restarts the unit.
    uint64_t watchdog_ms = al_sd_watchdog_usec () / 2000;
    uint64_t next_watchdog_mono = 0;
    while (!self->stop_requested) {
        if (self->leader)
            al_leader_progress (self->leader);  // the lease is renewed while this runs
        if (watchdog_ms && al_broker_mono_ms () >= next_watchdog_mono) {
            al_sd_notify ("WATCHDOG=1");
            next_watchdog_mono = al_broker_mono_ms () + watchdog_ms;
        }
        if (atomic_load (&self->tampered))
            return -1;              // al_broker_incident said why
        if (self->leadership_lost)
            return -1;              // al_broker_leader_tick said why
        if (self->reload_requested) {
            self->reload_requested = 0;
            al_broker_reload (self);
        }
        uint64_t now = al_broker_mono_ms ();
        long timeout = self->next_tick_mono > now? (long) (self->next_tick_mono - now): 0;
        if (self->closing_peers && timeout > AL_BROKER_CLOSE_POLL_MS)
            timeout = AL_BROKER_CLOSE_POLL_MS;
        if (watchdog_ms) {
            long until_watchdog = next_watchdog_mono > now? (long) (next_watchdog_mono - now): 0;
            if (until_watchdog < timeout)
                timeout = until_watchdog;
        }
        if (zlistx_size (self->events))
            timeout = 0;
        if (self->deferred) {
            uint64_t due = self->deferred_since_mono + AL_BROKER_ACK_DEFER_MS;
            long until_due = due > now? (long) (due - now): 0;
            if (until_due < timeout)
                timeout = until_due;
        }
        if (self->zap_retiring) {
            long until_retire = self->zap_retire_mono > now? (long) (self->zap_retire_mono - now): 0;
            if (until_retire < timeout)
                timeout = until_retire;
        }
        items [1].socket = zsock_resolve (self->zap);
        items [4].socket = self->zap_retiring? zsock_resolve (self->zap_retiring): NULL;
        int rc = zmq_poll (items, self->zap_retiring? 5: 4, timeout);
        if (rc == -1 && zmq_errno () != EINTR) {
            zsys_error ("broker: poll: %s", zmq_strerror (zmq_errno ()));
            return -1;
        }
        if (rc > 0) {
            while (items [1].revents & ZMQ_POLLIN) {
                al_broker_zap_handle (self, self->zap);
                if (!(zsock_events (self->zap) & ZMQ_POLLIN))
                    break;
            }
            while (self->zap_retiring && (items [4].revents & ZMQ_POLLIN)) {
                al_broker_zap_handle (self, self->zap_retiring);
                if (!(zsock_events (self->zap_retiring) & ZMQ_POLLIN))
                    break;
            }
            if (items [2].revents & ZMQ_POLLIN)
                al_broker_monitor_handle (self, self->monitor_router, "router");
            if (items [3].revents & ZMQ_POLLIN)
                al_broker_monitor_handle (self, self->monitor_pub, "pub");
        }
        if ((rc > 0 && (items [0].revents & ZMQ_POLLIN)) || zlistx_size (self->events)
        ||  (self->deferred && al_broker_mono_ms () >= self->deferred_since_mono + AL_BROKER_ACK_DEFER_MS)) {
            if (al_broker_batch (self))
                return -1;
        }
        al_broker_close_due (self);
        now = al_broker_mono_ms ();
        al_broker_zap_renew (self, now);
        if (now >= self->next_tick_mono) {
            s_tick (self);
            self->next_tick_mono = now + interval;
        }
    }
    //  Stop: take what is already queued, commit it, answer it, checkpoint.
    while (zsock_events (self->router) & ZMQ_POLLIN || zlistx_size (self->events) || self->deferred) {
        if (al_broker_batch (self))
            return -1;
    }
    al_broker_checkpoint (self, true);
    return 0;
}
