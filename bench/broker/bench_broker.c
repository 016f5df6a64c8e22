/*  bench_broker.c: the airlock broker against a zero-work ROUTER forwarder, in one run.

    Both brokers get the same load: N sender threads (DEALER, CURVE) streaming 200-byte
    envelopes (DeployRequest, staging) and 1 receiver thread (the deploy-manager). The
    forwarder only passes frames from the senders to the receiver. The airlock broker
    does everything it does in production: ZAP, protobuf decode and validation, policy,
    rate limit, audit append with the hash chain, commit with synchronous=FULL, Ack after
    commit, durable delivery queue, routing, and audited DeliveryAcks: the receiver
    acknowledges what one drain of its socket returned with one DeliveryAck listing
    those deliveries (as the agent runtime does with what it queued), one frame and one
    audit row per drain rather than per delivery.
    Both use CURVE on ipc:// (the airlock broker cannot run without it; with a plain
    forwarder the ratio below would also charge the broker for the transport's crypto):
    the ratio measures what airlock adds on top of an encrypted bus. A second ratio
    against a plain (NULL mechanism) forwarder is printed for reference.

    Throughput: messages received by the receiver per second from the first send to the
    last receipt. Latency: send → receipt at 1,000 msgs/s offered in total, p50 and p99,
    a histogram of both servers' latencies, and the airlock broker's stalls: slow
    messages (above the 2 ms goal) sent close together, with their time into the run,
    to tell a periodic stall (checkpoints, ticks) from scattered scheduling noise.
    AIRLOCK_BENCH_LATENCY_ONLY=1 runs only the latency phases.
    AIRLOCK_BENCH_AIRLOCK_ONLY=N runs only the airlock broker's throughput phase, with N
    messages per sender: short enough for valgrind, to count the instructions of the
    whole per-message path (`valgrind --tool=callgrind --toggle-collect=al_broker_batch`,
    Ir divided by the messages printed).

    The durable reference: the broker acknowledges a message only after its commit is on
    disk (WAL, synchronous=FULL: a write and an fdatasync of the WAL), which the forwarder
    never does. So in the same run, in the same state directory (same file system), a
    zero-work durable writer appends ~300 bytes to a file and fdatasyncs it, at the same
    1,000 ops/s, and its per-op latency is printed beside the two servers: the broker's
    p99 cannot be below the disk's own. And a durable zero-work forwarder runs the same
    latency phase: the CURVE forwarder, but what one drain of its socket returned is
    written to a file and fdatasynced once before it is forwarded (group commit, as the
    broker commits a batch). It decodes, judges, hashes and acknowledges nothing: its p99
    is the floor for any broker that forwards only what is on disk, on this disk, in
    this run (broker.airlock_p99_over_durable_forwarder_p99).

    The reactor's CPU per message: the airlock broker's reactor thread's CPU time (it does
    the decoding, the store and the commit's write) over the throughput phase, divided by
    the messages delivered. This VM has no hardware counters (perf stat -e instructions:
    not supported), and thread CPU time survives the load far better than wall time.
    Results are printed as "RESULT name value unit" lines (scripts/bench collects them).
*/
#include "broker/al_broker.h"
#include "base/al_config.h"
#include "proto/al_codec.h"
#include <czmq.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define S_SENDERS 4
#define S_THROUGHPUT_PER_SENDER 25000
#define S_LATENCY_RATE 1000             // messages per second offered, all senders together
#define S_LATENCY_SECONDS 4
#define S_LATENCY_PER_SENDER (S_LATENCY_RATE * S_LATENCY_SECONDS / S_SENDERS)
#define S_PAYLOAD_BYTES 200
#define S_FSYNC_RECORD_BYTES 300        // about one audit row and its WAL frame header

typedef enum { S_FORWARDER_CURVE, S_FORWARDER_PLAIN, S_FORWARDER_DURABLE, S_AIRLOCK } s_mode_t;

typedef struct {
    char dir [256];
    char endpoint [320];
    char config_path [320];
    zcert_t *broker_cert;
    zcert_t *senders [S_SENDERS];
    zcert_t *receiver;
} s_bench_t;

//  One phase: who runs, how many messages, the send times, the latencies.
typedef struct {
    s_bench_t *bench;
    s_mode_t mode;
    int per_sender;
    bool paced;                     // latency run: offer S_LATENCY_RATE msgs/s in total
    int64_t *sent_ns;               // [sender * per_sender + n]
    int64_t *latency_ns;            // per received message
    int64_t *latency_sent_ns;       // its send time, same order as latency_ns
    volatile size_t received;
    volatile bool receiver_ready;
    volatile bool stop;
    int64_t first_send_ns;
    int64_t last_receive_ns;
} s_phase_t;

static int64_t
s_now_ns (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static zsock_t *
s_client (s_phase_t *phase, zcert_t *cert)
{
    zsock_t *client = zsock_new (ZMQ_DEALER);
    assert (client);
    if (phase->mode != S_FORWARDER_PLAIN) {
        zcert_apply (cert, client);
        zsock_set_curve_serverkey (client, zcert_public_txt (phase->bench->broker_cert));
    }
    zsock_set_sndhwm (client, 1000000);
    zsock_set_rcvhwm (client, 1000000);
    zsock_set_linger (client, 0);
    int rc = zsock_connect (client, "%s", phase->bench->endpoint);
    assert (rc == 0);
    return client;
}

//  A packed DeployRequest of about S_PAYLOAD_BYTES bytes with id "b<sender>-<n>".
static size_t
s_make_message (int sender, int number, uint8_t *buffer, size_t size)
{
    char id [32];
    snprintf (id, sizeof id, "b%d-%d", sender, number);
    al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
    Airlock__DeployRequest body = AIRLOCK__DEPLOY_REQUEST__INIT;
    body.service = (char *) "checkout-service";
    body.version = (char *) "v2.3.1";
    body.artifact_uri = (char *) "oci://registry.example.com/checkout@sha256:9f86d081884c7d659a2fe";
    body.artifact_sha256 = (char *) "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    body.strategy = AIRLOCK__STRATEGY__STRATEGY_ROLLING;
    body.instances = 3;
    body.deployment_type = AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD;
    envelope.message_id = id;
    envelope.deployment_id = (char *) "dep-2026-0001";
    envelope.environment = AIRLOCK__ENVIRONMENT__ENV_STAGING;
    envelope.timestamp_ms = 1700000000000ull;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_DEPLOY_REQUEST;
    envelope.deploy_request = &body;
    size_t packed = airlock__envelope__get_packed_size (&envelope);
    assert (packed <= size);
    return airlock__envelope__pack (&envelope, buffer);
}

typedef struct {
    s_phase_t *phase;
    int index;
} s_sender_arg_t;

static void *
s_sender_run (void *arg)
{
    s_sender_arg_t *self = (s_sender_arg_t *) arg;
    s_phase_t *phase = self->phase;
    zsock_t *client = s_client (phase, phase->bench->senders [self->index]);
    void *handle = zsock_resolve (client);
    uint8_t buffer [512];
    int64_t interval = 1000000000ll * S_SENDERS / S_LATENCY_RATE;
    int64_t start = s_now_ns () + self->index * (interval / S_SENDERS);
    zmq_msg_t reply;
    zmq_msg_init (&reply);
    for (int n = 0; n < phase->per_sender; n++) {
        if (phase->paced) {
            int64_t due = start + n * interval;
            while (s_now_ns () < due) {
                //  Read acks while waiting; sleep in small steps.
                while (zmq_msg_recv (&reply, handle, ZMQ_DONTWAIT) != -1)
                    ;
                int64_t left = due - s_now_ns ();
                if (left > 200000)
                    usleep (100);
            }
        }
        size_t size = s_make_message (self->index, n, buffer, sizeof buffer);
        phase->sent_ns [self->index * phase->per_sender + n] = s_now_ns ();
        zmq_send (handle, buffer, size, 0);
        while (zmq_msg_recv (&reply, handle, ZMQ_DONTWAIT) != -1)
            ;
    }
    //  Keep reading acks until the phase ends, so none piles up at the broker.
    while (!phase->stop) {
        zmq_pollitem_t item = { handle, 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, 50) > 0)
            while (zmq_msg_recv (&reply, handle, ZMQ_DONTWAIT) != -1)
                ;
    }
    zmq_msg_close (&reply);
    zsock_destroy (&client);
    return NULL;
}

//  Send one DeliveryAck for ids [0, *count_p) (nothing if none) and empty the list.
static void
s_receiver_ack (void *handle, uint64_t *ids, size_t *count_p, uint64_t *acks_sent)
{
    size_t count = *count_p;
    if (count == 0)
        return;
    char id [48];
    snprintf (id, sizeof id, "dack-%llu-%llu", (unsigned long long) ++*acks_sent, (unsigned long long) ids [0]);
    al_envelope_t ack = AIRLOCK__ENVELOPE__INIT;
    Airlock__DeliveryAck body = AIRLOCK__DELIVERY_ACK__INIT;
    body.delivery_id = ids [0];
    body.n_more_delivery_ids = count - 1;
    body.more_delivery_ids = ids + 1;
    ack.message_id = id;
    ack.body_case = AIRLOCK__ENVELOPE__BODY_DELIVERY_ACK;
    ack.delivery_ack = &body;
    size_t size = airlock__envelope__get_packed_size (&ack);
    uint8_t *buffer = (uint8_t *) malloc (size);
    assert (buffer);
    airlock__envelope__pack (&ack, buffer);
    zmq_send (handle, buffer, size, 0);
    free (buffer);
    *count_p = 0;
}

static void *
s_receiver_run (void *arg)
{
    s_phase_t *phase = (s_phase_t *) arg;
    zsock_t *client = s_client (phase, phase->bench->receiver);
    void *handle = zsock_resolve (client);
    size_t total = (size_t) S_SENDERS * phase->per_sender;
    if (phase->mode == S_AIRLOCK) {
        al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
        Airlock__Register body = AIRLOCK__REGISTER__INIT;
        body.agent_name = (char *) "bench-receiver";
        body.subscribe_deliveries = true;
        envelope.message_id = (char *) "bench-register";
        envelope.body_case = AIRLOCK__ENVELOPE__BODY_REGISTER;
        envelope.register_ = &body;
        uint8_t buffer [128];
        size_t size = airlock__envelope__pack (&envelope, buffer);
        zmq_send (handle, buffer, size, 0);
    }
    else
        zmq_send (handle, "hello", 5, 0);
    bool *seen = (bool *) calloc (total, sizeof *seen);
    assert (seen);
    //  The delivery ids of one drain, acknowledged together (s_receiver_ack).
    uint64_t *unacked = (uint64_t *) calloc (AL_CODEC_MAX_DELIVERY_ACK_IDS, sizeof *unacked);
    assert (unacked);
    size_t unacked_count = 0;
    uint64_t acks_sent = 0;
    zmq_msg_t msg;
    zmq_msg_init (&msg);
    while (!phase->stop && phase->received < total) {
        zmq_pollitem_t item = { handle, 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, 100) <= 0)
            continue;
        while (zmq_msg_recv (&msg, handle, ZMQ_DONTWAIT) != -1) {
            int64_t now = s_now_ns ();
            if (phase->mode != S_AIRLOCK && zmq_msg_size (&msg) == 5) {
                phase->receiver_ready = true;       // the forwarder's welcome
                continue;
            }
            al_envelope_t *envelope = airlock__envelope__unpack (NULL, zmq_msg_size (&msg),
                                                                (const uint8_t *) zmq_msg_data (&msg));
            if (!envelope)
                continue;
            if (envelope->body_case == AIRLOCK__ENVELOPE__BODY_ACK)
                phase->receiver_ready = true;       // our Register is acknowledged
            else
            if (envelope->body_case == AIRLOCK__ENVELOPE__BODY_DEPLOY_REQUEST) {
                int sender = -1, number = -1;
                if (sscanf (envelope->message_id, "b%d-%d", &sender, &number) == 2
                &&  sender >= 0 && sender < S_SENDERS && number >= 0 && number < phase->per_sender) {
                    size_t slot = (size_t) sender * phase->per_sender + number;
                    if (!seen [slot]) {
                        seen [slot] = true;
                        phase->latency_ns [phase->received] = now - phase->sent_ns [slot];
                        phase->latency_sent_ns [phase->received] = phase->sent_ns [slot];
                        phase->received++;
                        phase->last_receive_ns = now;
                    }
                }
                if (phase->mode == S_AIRLOCK && envelope->delivery_id) {
                    unacked [unacked_count++] = envelope->delivery_id;
                    if (unacked_count == AL_CODEC_MAX_DELIVERY_ACK_IDS)
                        s_receiver_ack (handle, unacked, &unacked_count, &acks_sent);
                }
            }
            airlock__envelope__free_unpacked (envelope, NULL);
        }
        //  The socket is drained: one DeliveryAck for everything it returned.
        s_receiver_ack (handle, unacked, &unacked_count, &acks_sent);
    }
    zmq_msg_close (&msg);
    free (unacked);
    free (seen);
    zsock_destroy (&client);
    return NULL;
}

//  ---- the zero-work forwarder --------------------------------------------------------

typedef struct {
    s_phase_t *phase;
    volatile bool stop;
    volatile bool bound;
} s_forwarder_t;

//  The durable zero-work forwarder (S_FORWARDER_DURABLE) keeps the broker's contract and
//  nothing else: what one drain of the socket returned is appended to a log file and
//  fdatasynced once (group commit), and only then forwarded. No decoding, no policy, no
//  SQLite, no hash chain, no acknowledgement to the sender: the floor for the broker's
//  latency on this disk at the same offered rate.
#define S_DURABLE_DRAIN 1024

static void *
s_forwarder_run (void *arg)
{
    s_forwarder_t *self = (s_forwarder_t *) arg;
    s_mode_t mode = self->phase->mode;
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    assert (router);
    if (mode == S_FORWARDER_CURVE || mode == S_FORWARDER_DURABLE) {
        zcert_apply (self->phase->bench->broker_cert, router);
        zsock_set_curve_server (router, 1);
    }
    zsock_set_sndhwm (router, 1000000);
    zsock_set_rcvhwm (router, 1000000);
    zsock_set_linger (router, 0);
    int rc = zsock_bind (router, "%s", self->phase->bench->endpoint);
    assert (rc != -1);
    int log = -1;
    if (mode == S_FORWARDER_DURABLE) {
        char path [400];
        snprintf (path, sizeof path, "%s/durable-forwarder.log", self->phase->bench->dir);
        log = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
        assert (log != -1);
    }
    self->bound = true;
    void *handle = zsock_resolve (router);
    uint8_t receiver [256];
    size_t receiver_size = 0;
    zmq_msg_t id;
    zmq_msg_init (&id);
    zmq_msg_t *bodies = (zmq_msg_t *) calloc (S_DURABLE_DRAIN, sizeof *bodies);
    uint8_t *record = (uint8_t *) malloc (S_DURABLE_DRAIN * (S_PAYLOAD_BYTES + 64));
    assert (bodies && record);
    while (!self->stop) {
        zmq_pollitem_t item = { handle, 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, 50) <= 0)
            continue;
        //  Zero-work: each message is forwarded as it is read. Durable: up to
        //  S_DURABLE_DRAIN are read, written, synced, then forwarded.
        size_t drained = 0;
        while (drained < S_DURABLE_DRAIN && zmq_msg_recv (&id, handle, ZMQ_DONTWAIT) != -1) {
            zmq_msg_t *body = &bodies [drained];
            zmq_msg_init (body);
            zmq_msg_recv (body, handle, 0);
            if (zmq_msg_size (body) == 5 && memcmp (zmq_msg_data (body), "hello", 5) == 0) {
                receiver_size = zmq_msg_size (&id);
                memcpy (receiver, zmq_msg_data (&id), receiver_size);
                zmq_send (handle, receiver, receiver_size, ZMQ_SNDMORE);
                zmq_send (handle, "hello", 5, 0);
                zmq_msg_close (body);
                continue;
            }
            if (receiver_size == 0) {
                zmq_msg_close (body);
                continue;
            }
            if (log == -1) {
                zmq_send (handle, receiver, receiver_size, ZMQ_SNDMORE);
                zmq_msg_send (body, handle, 0);
                zmq_msg_close (body);
                continue;
            }
            drained++;
        }
        if (log != -1 && drained > 0) {
            size_t size = 0;
            for (size_t i = 0; i < drained; i++) {
                size_t length = zmq_msg_size (&bodies [i]);
                if (length > S_PAYLOAD_BYTES + 60)
                    length = S_PAYLOAD_BYTES + 60;
                uint32_t prefix = (uint32_t) length;
                memcpy (record + size, &prefix, sizeof prefix);
                memcpy (record + size + sizeof prefix, zmq_msg_data (&bodies [i]), length);
                size += sizeof prefix + length;
            }
            if (write (log, record, size) != (ssize_t) size || fdatasync (log) != 0) {
                fprintf (stderr, "bench_broker: durable forwarder: write or fdatasync failed\n");
                exit (2);
            }
        }
        for (size_t i = 0; i < drained; i++) {
            zmq_send (handle, receiver, receiver_size, ZMQ_SNDMORE);
            zmq_msg_send (&bodies [i], handle, 0);
            zmq_msg_close (&bodies [i]);
        }
    }
    free (bodies);
    free (record);
    if (log != -1)
        close (log);
    zmq_msg_close (&id);
    zsock_destroy (&router);
    return NULL;
}

//  ---- the airlock broker in a thread -------------------------------------------------

typedef struct {
    al_broker_t *broker;
    int rc;
    int64_t cpu_ns;                 // the reactor thread's CPU time in al_broker_run
} s_airlock_t;

static int64_t
s_thread_cpu_ns (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *
s_airlock_run (void *arg)
{
    s_airlock_t *self = (s_airlock_t *) arg;
    pthread_setname_np (pthread_self (), "airlock-broker");
    int64_t start = s_thread_cpu_ns ();
    self->rc = al_broker_run (self->broker);
    self->cpu_ns = s_thread_cpu_ns () - start;
    return NULL;
}

//  ---- phases -------------------------------------------------------------------------

static int
s_compare_i64 (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y? -1: x > y;
}

//  Latency histogram bucket upper bounds (ms); the last bucket is open.
static const double s_bucket_ms [] = { 0.5, 1, 2, 5, 10, 20 };
#define S_BUCKETS (sizeof s_bucket_ms / sizeof s_bucket_ms [0] + 1)
//  Slow messages (above the 2 ms goal) sent within this many ms of each other form one
//  stall; the worst stalls are printed with their time into the run.
#define S_SLOW_NS 2000000
#define S_STALL_GAP_NS 20000000
#define S_STALLS_SHOWN 10

typedef struct {
    double start_s;                 // send time of its first slow message, from the phase start
    double span_ms;                 // first to last slow send
    size_t count;
    double worst_ms;
} s_stall_t;

typedef struct {
    double rate;                    // msgs/s received
    double cpu_us_per_message;      // airlock broker: its reactor thread's CPU per message
    double p50_ms, p99_ms;
    size_t received, expected;
    size_t histogram [S_BUCKETS];
    s_stall_t stalls [S_STALLS_SHOWN];  // the worst, by count of slow messages
    size_t stall_total;
} s_result_t;

//  Which messages were slow and when: in send order, slow messages close together make
//  one stall; keep the S_STALLS_SHOWN with the most slow messages.
static void
s_find_stalls (s_phase_t *phase, s_result_t *result)
{
    size_t n = phase->received;
    s_stall_t current = { 0 };
    int64_t last_slow = 0;
    //  received order is close to send order at this rate; sort by send time anyway.
    int64_t (*pairs) [2] = calloc (n? n: 1, sizeof *pairs);
    assert (pairs);
    for (size_t i = 0; i < n; i++) {
        pairs [i][0] = phase->latency_sent_ns [i];
        pairs [i][1] = phase->latency_ns [i];
    }
    qsort (pairs, n, sizeof *pairs, s_compare_i64);    // by the first member
    for (size_t i = 0; i <= n; i++) {
        bool slow = i < n && pairs [i][1] > S_SLOW_NS;
        bool ends = current.count && (i == n || (slow && pairs [i][0] - last_slow > S_STALL_GAP_NS));
        if (ends) {
            result->stall_total++;
            size_t place = S_STALLS_SHOWN;
            while (place > 0 && result->stalls [place - 1].count < current.count)
                place--;
            if (place < S_STALLS_SHOWN) {
                memmove (&result->stalls [place + 1], &result->stalls [place],
                         (S_STALLS_SHOWN - place - 1) * sizeof (s_stall_t));
                result->stalls [place] = current;
            }
            memset (&current, 0, sizeof current);
        }
        if (!slow)
            continue;
        double sent_s = (double) (pairs [i][0] - phase->first_send_ns) / 1e9;
        if (current.count == 0)
            current.start_s = sent_s;
        current.span_ms = (sent_s - current.start_s) * 1e3;
        current.count++;
        if ((double) pairs [i][1] / 1e6 > current.worst_ms)
            current.worst_ms = (double) pairs [i][1] / 1e6;
        last_slow = pairs [i][0];
    }
    free (pairs);
}

static s_result_t
s_run_phase (s_bench_t *bench, s_mode_t mode, bool paced, al_config_t *config)
{
    s_result_t result = { 0 };
    s_phase_t phase;
    memset (&phase, 0, sizeof phase);
    phase.bench = bench;
    phase.mode = mode;
    phase.paced = paced;
    phase.per_sender = paced? S_LATENCY_PER_SENDER: S_THROUGHPUT_PER_SENDER;
    const char *airlock_only = getenv ("AIRLOCK_BENCH_AIRLOCK_ONLY");
    if (!paced && airlock_only && atoi (airlock_only) > 0)
        phase.per_sender = atoi (airlock_only);
    size_t total = (size_t) S_SENDERS * phase.per_sender;
    phase.sent_ns = (int64_t *) calloc (total, sizeof *phase.sent_ns);
    phase.latency_ns = (int64_t *) calloc (total, sizeof *phase.latency_ns);
    phase.latency_sent_ns = (int64_t *) calloc (total, sizeof *phase.latency_sent_ns);
    assert (phase.sent_ns && phase.latency_ns && phase.latency_sent_ns);
    snprintf (bench->endpoint, sizeof bench->endpoint, "ipc://%s/bench-%d-%d.ipc", bench->dir, (int) mode, paced);

    s_forwarder_t forwarder = { .phase = &phase };
    s_airlock_t airlock = { 0 };
    pthread_t server;
    char error [1024] = "";
    if (mode == S_AIRLOCK) {
        //  The router endpoint comes from the configuration: rewrite it per phase.
        FILE *file = fopen (bench->config_path, "w");
        assert (file);
        fprintf (file,
                 "state_dir: %s\n"
                 "database: %s/audit-%d.db\n"
                 "endpoints:\n  router: %s\n  pub: ipc://%s/events-%d.ipc\n"
                 "limits:\n  rate_per_second: 10000000\n  rate_burst: 100000000\n"
                 "  sndhwm: 1000000\n  rcvhwm: 1000000\n",
                 bench->dir, bench->dir, paced, bench->endpoint, bench->dir, paced);
        fclose (file);
        al_config_t *loaded = al_config_load (bench->config_path, error, sizeof error);
        if (!loaded) {
            fprintf (stderr, "bench_broker: %s\n", error);
            exit (2);
        }
        config = loaded;
        airlock.broker = al_broker_new (config, error, sizeof error);
        if (!airlock.broker) {
            fprintf (stderr, "bench_broker: %s\n", error);
            exit (2);
        }
        pthread_create (&server, NULL, s_airlock_run, &airlock);
    }
    else {
        pthread_create (&server, NULL, s_forwarder_run, &forwarder);
        while (!forwarder.bound)
            usleep (1000);
    }
    pthread_t receiver;
    pthread_create (&receiver, NULL, s_receiver_run, &phase);
    while (!phase.receiver_ready)
        usleep (1000);
    phase.first_send_ns = s_now_ns ();
    pthread_t senders [S_SENDERS];
    s_sender_arg_t args [S_SENDERS];
    for (int i = 0; i < S_SENDERS; i++) {
        args [i].phase = &phase;
        args [i].index = i;
        pthread_create (&senders [i], NULL, s_sender_run, &args [i]);
    }
    //  Wait for every message (or give up after 120 s: the result then says so).
    int64_t deadline = s_now_ns () + 120ll * 1000000000;
    while (phase.received < total && s_now_ns () < deadline)
        usleep (2000);
    phase.stop = true;
    pthread_join (receiver, NULL);
    for (int i = 0; i < S_SENDERS; i++)
        pthread_join (senders [i], NULL);
    if (mode == S_AIRLOCK) {
        al_broker_request_stop (airlock.broker);
        pthread_join (server, NULL);
        if (phase.received > 0)
            result.cpu_us_per_message = (double) airlock.cpu_ns / 1e3 / (double) phase.received;
        al_broker_destroy (&airlock.broker);
        al_config_destroy (&config);
    }
    else {
        forwarder.stop = true;
        pthread_join (server, NULL);
    }
    result.received = phase.received;
    result.expected = total;
    double seconds = (double) (phase.last_receive_ns - phase.first_send_ns) / 1e9;
    result.rate = seconds > 0? (double) phase.received / seconds: 0;
    if (paced)
        s_find_stalls (&phase, &result);
    for (size_t i = 0; i < phase.received; i++) {
        size_t bucket = 0;
        while (bucket < S_BUCKETS - 1 && (double) phase.latency_ns [i] / 1e6 >= s_bucket_ms [bucket])
            bucket++;
        result.histogram [bucket]++;
    }
    if (phase.received > 0) {
        qsort (phase.latency_ns, phase.received, sizeof (int64_t), s_compare_i64);
        result.p50_ms = (double) phase.latency_ns [phase.received / 2] / 1e6;
        result.p99_ms = (double) phase.latency_ns [(phase.received * 99) / 100] / 1e6;
    }
    free (phase.sent_ns);
    free (phase.latency_ns);
    free (phase.latency_sent_ns);
    return result;
}

//  The disk reference: append S_FSYNC_RECORD_BYTES to a file in the state directory and
//  fdatasync it, at S_LATENCY_RATE ops/s for S_LATENCY_SECONDS; per op latency (the write
//  and the fdatasync alone, not the wait behind a slow one: one op at a time cannot batch,
//  so on a slow disk its queue would only grow). What one commit costs at the least; the
//  durable forwarder phase is the floor for a message's latency.
typedef struct {
    double p50_ms, p99_ms, max_ms;
    size_t done, expected;
} s_fsync_result_t;

static s_fsync_result_t
s_run_fsync (s_bench_t *bench)
{
    s_fsync_result_t result = { 0 };
    result.expected = (size_t) S_LATENCY_RATE * S_LATENCY_SECONDS;
    char path [400];
    snprintf (path, sizeof path, "%s/fsync-reference.log", bench->dir);
    int fd = open (path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd == -1) {
        fprintf (stderr, "bench_broker: cannot create %s\n", path);
        return result;
    }
    int64_t *latency = (int64_t *) calloc (result.expected, sizeof *latency);
    assert (latency);
    uint8_t record [S_FSYNC_RECORD_BYTES];
    memset (record, 'a', sizeof record);
    int64_t interval = 1000000000ll / S_LATENCY_RATE;
    int64_t start = s_now_ns ();
    for (size_t n = 0; n < result.expected; n++) {
        int64_t due = start + (int64_t) n * interval;
        while (s_now_ns () < due) {
            int64_t left = due - s_now_ns ();
            if (left > 200000)
                usleep (100);
        }
        int64_t begin = s_now_ns ();
        if (write (fd, record, sizeof record) != (ssize_t) sizeof record || fdatasync (fd) != 0) {
            fprintf (stderr, "bench_broker: %s: write or fdatasync failed\n", path);
            break;
        }
        latency [result.done++] = s_now_ns () - begin;
    }
    close (fd);
    unlink (path);
    if (result.done > 0) {
        qsort (latency, result.done, sizeof (int64_t), s_compare_i64);
        result.p50_ms = (double) latency [result.done / 2] / 1e6;
        result.p99_ms = (double) latency [(result.done * 99) / 100] / 1e6;
        result.max_ms = (double) latency [result.done - 1] / 1e6;
    }
    free (latency);
    return result;
}

static void
s_copy (const char *from, const char *to)
{
    FILE *in = fopen (from, "rb");
    FILE *out = fopen (to, "wb");
    assert (in && out);
    char buffer [8192];
    size_t size;
    while ((size = fread (buffer, 1, sizeof buffer, in)) > 0)
        fwrite (buffer, 1, size, out);
    fclose (in);
    fclose (out);
}

//  A state directory on disk (not tmpfs: fsync must cost what it costs).
static void
s_bench_setup (s_bench_t *bench)
{
    const char *base = getenv ("AIRLOCK_BENCH_DIR");
    snprintf (bench->dir, sizeof bench->dir, "%s/al-bench-broker-XXXXXX", base? base: "/var/tmp");
    if (!mkdtemp (bench->dir)) {
        fprintf (stderr, "bench_broker: cannot create %s\n", bench->dir);
        exit (2);
    }
    char path [512];
    snprintf (path, sizeof path, "%s/keys", bench->dir);
    mkdir (path, 0700);
    bench->broker_cert = zcert_new ();
    snprintf (path, sizeof path, "%s/keys/broker.cert", bench->dir);
    zcert_save (bench->broker_cert, path);
    //  The broker refuses secret key files others may read.
    snprintf (path, sizeof path, "%s/keys/broker.cert_secret", bench->dir);
    chmod (path, 0600);
    uint8_t public_key [crypto_sign_PUBLICKEYBYTES], secret_key [crypto_sign_SECRETKEYBYTES];
    crypto_sign_keypair (public_key, secret_key);
    char hex [2 * crypto_sign_SECRETKEYBYTES + 1];
    sodium_bin2hex (hex, sizeof hex, secret_key, sizeof secret_key);
    snprintf (path, sizeof path, "%s/keys/checkpoint.key", bench->dir);
    FILE *file = fopen (path, "w");
    fprintf (file, "%s\n", hex);
    fclose (file);
    chmod (path, 0600);

    snprintf (path, sizeof path, "%s/policy", bench->dir);
    mkdir (path, 0700);
    const char *files [] = { "roles.yaml", "approvers.yaml", "deployment_types.yaml", "constraints.yaml",
                             "dependencies.yaml", "quality_rules.yaml" };
    for (size_t i = 0; i < sizeof files / sizeof files [0]; i++) {
        char from [512], to [512];
        snprintf (from, sizeof from, "%s/%s", AIRLOCK_DEFAULT_POLICY_DIR, files [i]);
        snprintf (to, sizeof to, "%s/policy/%s", bench->dir, files [i]);
        s_copy (from, to);
    }
    snprintf (path, sizeof path, "%s/policy/identities.yaml", bench->dir);
    file = fopen (path, "w");
    fprintf (file, "identities:\n");
    for (int i = 0; i < S_SENDERS; i++) {
        bench->senders [i] = zcert_new ();
        fprintf (file, "  - key: \"%s\"\n    identity: orchestrator-%d\n    role: orchestrator\n",
                 zcert_public_txt (bench->senders [i]), i);
    }
    bench->receiver = zcert_new ();
    fprintf (file, "  - key: \"%s\"\n    identity: deploy-manager-1\n    role: deploy-manager\n",
             zcert_public_txt (bench->receiver));
    fclose (file);
    snprintf (bench->config_path, sizeof bench->config_path, "%s/airlock.yaml", bench->dir);
}

int
main (void)
{
    zsys_init ();
    zsys_set_logstream (stderr);
    if (sodium_init () < 0)
        return 2;
    s_bench_t bench;
    memset (&bench, 0, sizeof bench);
    s_bench_setup (&bench);
    printf ("bench_broker: %d senders, 1 receiver, %d-byte envelopes, ipc:// in %s\n",
            S_SENDERS, S_PAYLOAD_BYTES, bench.dir);

    //  AIRLOCK_BENCH_LATENCY_ONLY=1: only the latency phases (to study the tail).
    bool latency_only = getenv ("AIRLOCK_BENCH_LATENCY_ONLY") != NULL;
    if (getenv ("AIRLOCK_BENCH_AIRLOCK_ONLY")) {
        s_result_t only = s_run_phase (&bench, S_AIRLOCK, false, NULL);
        printf ("airlock broker: %zu of %zu messages, %.0f msgs/s; reactor thread CPU %.2f us/msg\n",
                only.received, only.expected, only.rate, only.cpu_us_per_message);
        printf ("RESULT broker.reactor_cpu_per_msg %.2f us\n", only.cpu_us_per_message);
        char command [400];
        snprintf (command, sizeof command, "rm -rf '%s'", bench.dir);
        if (system (command) != 0)
            fprintf (stderr, "bench_broker: could not remove %s\n", bench.dir);
        for (int i = 0; i < S_SENDERS; i++)
            zcert_destroy (&bench.senders [i]);
        zcert_destroy (&bench.receiver);
        zcert_destroy (&bench.broker_cert);
        return only.received == only.expected? 0: 1;
    }
    s_result_t plain = { 0 }, forwarder = { 0 }, airlock = { 0 };
    if (!latency_only) {
        plain = s_run_phase (&bench, S_FORWARDER_PLAIN, false, NULL);
        forwarder = s_run_phase (&bench, S_FORWARDER_CURVE, false, NULL);
        airlock = s_run_phase (&bench, S_AIRLOCK, false, NULL);
    }
    s_result_t forwarder_latency = s_run_phase (&bench, S_FORWARDER_CURVE, true, NULL);
    s_fsync_result_t disk = s_run_fsync (&bench);
    s_result_t durable_latency = s_run_phase (&bench, S_FORWARDER_DURABLE, true, NULL);
    s_result_t airlock_latency = s_run_phase (&bench, S_AIRLOCK, true, NULL);

    if (!latency_only) {
        printf ("throughput: %zu messages each\n", forwarder.expected);
        printf ("  forwarder (NULL)   %10.0f msgs/s (%zu received)\n", plain.rate, plain.received);
        printf ("  forwarder (CURVE)  %10.0f msgs/s (%zu received)\n", forwarder.rate, forwarder.received);
        printf ("  airlock broker     %10.0f msgs/s (%zu received); reactor thread CPU %.2f us/msg\n",
                airlock.rate, airlock.received, airlock.cpu_us_per_message);
    }
    double ratio = forwarder.rate > 0? airlock.rate / forwarder.rate: 0;
    double ratio_plain = plain.rate > 0? airlock.rate / plain.rate: 0;
    if (!latency_only)
        printf ("  ratio airlock / forwarder (CURVE) = %.2f (goal >= 0.50); / forwarder (NULL) = %.2f\n",
                ratio, ratio_plain);
    printf ("latency at %d msgs/s offered, %d s:\n", S_LATENCY_RATE, S_LATENCY_SECONDS);
    printf ("  forwarder (CURVE)  p50 %.3f ms  p99 %.3f ms\n", forwarder_latency.p50_ms, forwarder_latency.p99_ms);
    printf ("  disk (write+fdatasync)  p50 %.3f ms  p99 %.3f ms  max %.3f ms (%zu-byte appends, %zu of %zu)\n",
            disk.p50_ms, disk.p99_ms, disk.max_ms, (size_t) S_FSYNC_RECORD_BYTES, disk.done, disk.expected);
    printf ("  durable forwarder  p50 %.3f ms  p99 %.3f ms (CURVE; write+fdatasync per drain, then forward)\n",
            durable_latency.p50_ms, durable_latency.p99_ms);
    printf ("  airlock broker     p50 %.3f ms  p99 %.3f ms (goal p99 <= 2 ms)\n",
            airlock_latency.p50_ms, airlock_latency.p99_ms);
    double over_fsync = disk.p99_ms > 0? airlock_latency.p99_ms / disk.p99_ms: 0;
    printf ("  airlock broker p99 / disk p99 = %.2f (the broker fsyncs before every ack; the forwarder never does)\n",
            over_fsync);
    double over_durable = durable_latency.p99_ms > 0? airlock_latency.p99_ms / durable_latency.p99_ms: 0;
    printf ("  airlock broker p99 / durable forwarder p99 = %.2f (the same transport and durability, zero work)\n",
            over_durable);
    const s_result_t *shown [] = { &forwarder_latency, &durable_latency, &airlock_latency };
    const char *shown_name [] = { "forwarder (CURVE)", "durable forwarder", "airlock broker" };
    for (size_t r = 0; r < 3; r++) {
        printf ("  %-18s", shown_name [r]);
        for (size_t b = 0; b < S_BUCKETS; b++) {
            if (b < S_BUCKETS - 1)
                printf (" <%g ms: %zu", s_bucket_ms [b], shown [r]->histogram [b]);
            else
                printf (" >=%g ms: %zu\n", s_bucket_ms [b - 1], shown [r]->histogram [b]);
        }
    }
    printf ("  airlock broker: %zu stalls (slow messages > %d ms, sent within %d ms of each other); the worst:\n",
            airlock_latency.stall_total, S_SLOW_NS / 1000000, S_STALL_GAP_NS / 1000000);
    for (size_t i = 0; i < S_STALLS_SHOWN && airlock_latency.stalls [i].count; i++)
        printf ("    at %.3f s: %zu slow over %.1f ms, worst %.3f ms\n", airlock_latency.stalls [i].start_s,
                airlock_latency.stalls [i].count, airlock_latency.stalls [i].span_ms, airlock_latency.stalls [i].worst_ms);
    if (!latency_only) {
        printf ("RESULT broker.forwarder_plain_rate %.0f msgs/s\n", plain.rate);
        printf ("RESULT broker.forwarder_curve_rate %.0f msgs/s\n", forwarder.rate);
        printf ("RESULT broker.airlock_rate %.0f msgs/s\n", airlock.rate);
        printf ("RESULT broker.ratio_vs_curve_forwarder %.2f x\n", ratio);
        printf ("RESULT broker.ratio_vs_plain_forwarder %.2f x\n", ratio_plain);
        printf ("RESULT broker.reactor_cpu_per_msg %.2f us\n", airlock.cpu_us_per_message);
    }
    printf ("RESULT broker.airlock_p50_at_1000 %.3f ms\n", airlock_latency.p50_ms);
    printf ("RESULT broker.airlock_p99_at_1000 %.3f ms\n", airlock_latency.p99_ms);
    printf ("RESULT broker.fsync_p50_at_1000 %.3f ms\n", disk.p50_ms);
    printf ("RESULT broker.fsync_p99_at_1000 %.3f ms\n", disk.p99_ms);
    printf ("RESULT broker.airlock_p99_over_fsync_p99 %.2f x\n", over_fsync);
    printf ("RESULT broker.durable_forwarder_p50_at_1000 %.3f ms\n", durable_latency.p50_ms);
    printf ("RESULT broker.durable_forwarder_p99_at_1000 %.3f ms\n", durable_latency.p99_ms);
    printf ("RESULT broker.airlock_p99_over_durable_forwarder_p99 %.2f x\n", over_durable);

    for (int i = 0; i < S_SENDERS; i++)
        zcert_destroy (&bench.senders [i]);
    zcert_destroy (&bench.receiver);
    zcert_destroy (&bench.broker_cert);
    char command [400];
    snprintf (command, sizeof command, "rm -rf '%s'", bench.dir);
    if (system (command) != 0)
        fprintf (stderr, "bench_broker: could not remove %s\n", bench.dir);
    bool complete = disk.done == disk.expected && durable_latency.received == durable_latency.expected
                 && (latency_only? airlock_latency.received == airlock_latency.expected
                     : plain.received == plain.expected && forwarder.received == forwarder.expected
                       && airlock.received == airlock.expected
                       && airlock_latency.received == airlock_latency.expected);
    return complete? 0: 1;
}
