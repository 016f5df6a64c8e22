/*  bench_scale.c: the airlock broker with 1, 10, 100 and 1,000 agents, beside a
    zero-work CURVE ROUTER holding the same connections, in one run.

    Each server runs in its own process (forked before this process makes a ZeroMQ
    context), so its resident memory (VmRSS) is its own. Every agent is a CURVE DEALER
    with its own key, listed in identities.yaml (role orchestrator). For each size N:
    connect N agents, each sends Register and waits for its Ack (the time until all are
    registered is printed), then a burst of S_BURST DeployRequests spread over the agents
    (throughput: replies per second) and S_PACED ones offered at S_PACED_RATE msgs/s
    round-robin (p99 of send → reply). The servers' RSS is read twice while the N agents
    are connected: once all are registered (holding the connections: the RESULT the
    goal is about) and after the traffic (which leaves each server's heap at its
    high-water mark: the broker, slower, has more queued in libzmq's pipes meanwhile);
    then the agents leave. The zero-work ROUTER answers every frame by
    sending it back (no ZAP, no decoding, no disk), the broker does all it does in
    production (ZAP, decode, policy, audit append + commit with synchronous=FULL, Ack,
    delivery queue). For reference only, a third server, the same zero-work ROUTER with a
    ZAP handler that admits every key, is connected and measured (RSS only): libzmq keeps
    per-connection ZAP state for any authenticating server, and that server shows how
    much of the broker's RSS is libzmq's and how much is airlock's. The goal's RESULT
    compares with the plain zero-work ROUTER.

    Then 10 waves of 1,000 agents connect, register and leave the broker; its RSS is
    printed after each wave, once it has forgotten the agents (a StatusQuery "agents"
    from an observer connection lists only the observer again) and had a tick since.

    AIRLOCK_BENCH_SCALE_QUICK=1 runs only the 1,000-agent step and one wave, to study
    the RSS in a minute (its figures are lower than a full run's: no earlier traffic).

    Results are "RESULT name value unit" lines (scripts/bench collects them).
*/
#include "broker/al_broker.h"
#include "base/al_config.h"
#include "proto/al_codec.h"
#include "store/al_store.h"
#include <czmq.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define S_MAX_AGENTS 1000
#define S_BURST 4000
#define S_PACED 2000
#define S_PACED_RATE 1000
#define S_WAVES 10
#define S_DEADLINE_MS 120000

typedef struct {
    char dir [256];
    char broker_endpoint [320];
    char zero_endpoint [320];
    char zero_zap_endpoint [320];
    char config_path [320];
    zcert_t *server_cert;
    zcert_t *agents [S_MAX_AGENTS];
    zcert_t *observer;
    pid_t broker_pid;
    pid_t zero_pid;
    pid_t zero_zap_pid;
} s_bench_t;

static int64_t
s_now_ns (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

//  VmRSS of a process in MB, -1 if unreadable.
static double
s_rss_mb (pid_t pid)
{
    char path [64], line [256];
    snprintf (path, sizeof path, "/proc/%d/status", (int) pid);
    FILE *file = fopen (path, "r");
    if (!file)
        return -1;
    double mb = -1;
    while (fgets (line, sizeof line, file))
        if (strncmp (line, "VmRSS:", 6) == 0) {
            mb = atof (line + 6) / 1024.0;
            break;
        }
    fclose (file);
    return mb;
}

//  A server's resident memory split as smaps_rollup shows it: anonymous pages (heaps,
//  stacks, libzmq's buffers) and file-backed ones (the binary and every shared library
//  page the process touched). -1 when unreadable.
typedef struct {
    double rss_mb;
    double anon_mb;
    double file_mb;
} s_rss_split_t;

static s_rss_split_t
s_rss_split (pid_t pid)
{
    s_rss_split_t split = { -1, -1, -1 };
    char path [64], line [256];
    snprintf (path, sizeof path, "/proc/%d/smaps_rollup", (int) pid);
    FILE *file = fopen (path, "r");
    if (!file)
        return split;
    double rss_kb = -1, anon_kb = -1;
    while (fgets (line, sizeof line, file)) {
        if (strncmp (line, "Rss:", 4) == 0)
            rss_kb = atof (line + 4);
        else
        if (strncmp (line, "Anonymous:", 10) == 0)
            anon_kb = atof (line + 10);
    }
    fclose (file);
    if (rss_kb >= 0 && anon_kb >= 0) {
        split.rss_mb = rss_kb / 1024.0;
        split.anon_mb = anon_kb / 1024.0;
        split.file_mb = (rss_kb - anon_kb) / 1024.0;
    }
    return split;
}

//  AIRLOCK_BENCH_SCALE_SMAPS_DIR=dir: a copy of the server's /proc/PID/smaps at the
//  moment its RSS is read, as dir/<server>-<agents>.smaps, to see which mappings hold it.
static void
s_save_smaps (pid_t pid, const char *server, size_t agents)
{
    const char *dir = getenv ("AIRLOCK_BENCH_SCALE_SMAPS_DIR");
    if (!dir)
        return;
    char from [64], to [512], buffer [8192];
    snprintf (from, sizeof from, "/proc/%d/smaps", (int) pid);
    snprintf (to, sizeof to, "%s/%s-%zu.smaps", dir, server, agents);
    FILE *in = fopen (from, "r");
    FILE *out = fopen (to, "w");
    size_t size;
    while (in && out && (size = fread (buffer, 1, sizeof buffer, in)) > 0)
        fwrite (buffer, 1, size, out);
    if (in)
        fclose (in);
    if (out)
        fclose (out);
}

static void
s_die (const char *what)
{
    fprintf (stderr, "bench_scale: %s\n", what);
    exit (2);
}

//  ---- the servers (child processes) --------------------------------------------------

static volatile sig_atomic_t s_zero_stop;

static void
s_zero_on_signal (int signum)
{
    (void) signum;
    s_zero_stop = 1;
}

//  A ZAP handler that admits every key (the reference server's, see s_zero_zap_main).
static void *
s_admit_all_run (void *arg)
{
    zsock_t *zap = (zsock_t *) arg;
    while (!s_zero_stop) {
        zmsg_t *request = zmsg_recv (zap);      // times out (rcvtimeo) to see the stop
        if (!request)
            continue;
        char *version = zmsg_popstr (request);
        zframe_t *request_id = zmsg_pop (request);
        zmsg_t *reply = zmsg_new ();
        zmsg_addstr (reply, "1.0");
        if (request_id)
            zmsg_append (reply, &request_id);
        else
            zmsg_addstr (reply, "");
        zmsg_addstr (reply, "200");
        zmsg_addstr (reply, "OK");
        zmsg_addstr (reply, "anyone");
        zmsg_addmem (reply, "", 0);
        zmsg_send (&reply, zap);
        zstr_free (&version);
        zmsg_destroy (&request);
    }
    return NULL;
}

//  The zero-work CURVE ROUTER: every frame goes back to its sender. With admit_all, a
//  ZAP handler that admits every key runs beside it: libzmq then keeps a ZAP pipe per
//  connection, as for the broker, which tells libzmq's share of the gap from airlock's.
static int
s_zero_serve (s_bench_t *bench, int ready_fd, bool admit_all, const char *endpoint)
{
    signal (SIGTERM, s_zero_on_signal);
    zsys_handler_set (NULL);
    zsock_t *zap = NULL;
    pthread_t zap_thread;
    if (admit_all) {
        zap = zsock_new (ZMQ_REP);
        if (!zap || zsock_bind (zap, "inproc://zeromq.zap.01") == -1)
            return 2;
        zsock_set_rcvtimeo (zap, 100);
        if (pthread_create (&zap_thread, NULL, s_admit_all_run, zap) != 0)
            return 2;
    }
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    if (!router)
        return 2;
    zcert_apply (bench->server_cert, router);
    zsock_set_curve_server (router, 1);
    zsock_set_sndhwm (router, 100000);
    zsock_set_rcvhwm (router, 100000);
    zsock_set_linger (router, 0);
    if (zsock_bind (router, "%s", endpoint) == -1)
        return 2;
    if (write (ready_fd, "r", 1) != 1)
        return 2;
    close (ready_fd);
    void *handle = zsock_resolve (router);
    zmq_msg_t id, body;
    zmq_msg_init (&id);
    zmq_msg_init (&body);
    while (!s_zero_stop) {
        zmq_pollitem_t item = { handle, 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, 100) <= 0)
            continue;
        while (zmq_msg_recv (&id, handle, ZMQ_DONTWAIT) != -1) {
            if (zmq_msg_recv (&body, handle, 0) == -1)
                break;
            zmq_msg_send (&id, handle, ZMQ_SNDMORE | ZMQ_DONTWAIT);
            zmq_msg_send (&body, handle, ZMQ_DONTWAIT);
        }
    }
    zmq_msg_close (&id);
    zmq_msg_close (&body);
    zsock_destroy (&router);
    if (zap) {
        pthread_join (zap_thread, NULL);
        zsock_destroy (&zap);
    }
    return 0;
}

static int
s_zero_main (s_bench_t *bench, int ready_fd)
{
    return s_zero_serve (bench, ready_fd, false, bench->zero_endpoint);
}

static int
s_zero_zap_main (s_bench_t *bench, int ready_fd)
{
    return s_zero_serve (bench, ready_fd, true, bench->zero_zap_endpoint);
}

static int
s_broker_main (s_bench_t *bench, int ready_fd)
{
    zsys_set_logstream (stderr);
    char error [1024] = "";
    al_config_t *config = al_config_load (bench->config_path, error, sizeof error);
    if (!config) {
        fprintf (stderr, "bench_scale: broker: %s\n", error);
        return 2;
    }
    al_broker_t *broker = al_broker_new (config, error, sizeof error);
    if (!broker) {
        fprintf (stderr, "bench_scale: broker: %s\n", error);
        al_config_destroy (&config);
        return 2;
    }
    al_broker_handle_signals (broker);
    if (write (ready_fd, "r", 1) != 1)
        return 2;
    close (ready_fd);
    int rc = al_broker_run (broker);
    al_broker_destroy (&broker);
    al_config_destroy (&config);
    return rc == 0? 0: 1;
}

static pid_t
s_spawn (s_bench_t *bench, int (*main_fn) (s_bench_t *, int))
{
    int fds [2];
    if (pipe (fds) != 0)
        s_die ("pipe");
    fflush (stdout);
    fflush (stderr);
    pid_t pid = fork ();
    if (pid < 0)
        s_die ("fork");
    if (pid == 0) {
        close (fds [0]);
        _exit (main_fn (bench, fds [1]));
    }
    close (fds [1]);
    char ready = 0;
    if (read (fds [0], &ready, 1) != 1)
        s_die ("a server did not start");
    close (fds [0]);
    return pid;
}

//  ---- the agents ---------------------------------------------------------------------

typedef struct {
    zsock_t *sockets [S_MAX_AGENTS];
    zmq_pollitem_t items [S_MAX_AGENTS];
    size_t count;
    bool echo;                      // the zero-work ROUTER: replies are our own frames
} s_agents_t;

static zsock_t *
s_connect (s_bench_t *bench, zcert_t *cert, const char *endpoint)
{
    zsock_t *client = zsock_new (ZMQ_DEALER);
    if (!client)
        s_die ("cannot create a socket (file descriptors?)");
    zcert_apply (cert, client);
    zsock_set_curve_serverkey (client, zcert_public_txt (bench->server_cert));
    zsock_set_sndhwm (client, 100000);
    zsock_set_rcvhwm (client, 100000);
    zsock_set_linger (client, 0);
    if (zsock_connect (client, "%s", endpoint) != 0)
        s_die ("connect");
    return client;
}

static size_t
s_pack (al_envelope_t *envelope, uint8_t *buffer, size_t size)
{
    size_t packed = airlock__envelope__get_packed_size (envelope);
    if (packed > size)
        s_die ("envelope too big");
    return airlock__envelope__pack (envelope, buffer);
}

static void
s_send_register (zsock_t *client, size_t index)
{
    char id [32];
    snprintf (id, sizeof id, "r%zu", index);
    al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
    Airlock__Register body = AIRLOCK__REGISTER__INIT;
    body.agent_name = (char *) "bench-agent";
    envelope.message_id = id;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_REGISTER;
    envelope.register_ = &body;
    uint8_t buffer [256];
    size_t size = s_pack (&envelope, buffer, sizeof buffer);
    zmq_send (zsock_resolve (client), buffer, size, 0);
}

static void
s_send_request (zsock_t *client, const char *prefix, size_t number)
{
    char id [32];
    snprintf (id, sizeof id, "%s%zu", prefix, number);
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
    uint8_t buffer [512];
    size_t size = s_pack (&envelope, buffer, sizeof buffer);
    zmq_send (zsock_resolve (client), buffer, size, 0);
}

//  The message id a reply answers: the Ack's acked id from the broker, the frame's own
//  id from the echo. Returns the number after prefix, or -1.
static long
s_reply_number (s_agents_t *agents, zmq_msg_t *msg, char prefix)
{
    al_envelope_t *envelope = airlock__envelope__unpack (NULL, zmq_msg_size (msg), (const uint8_t *) zmq_msg_data (msg));
    if (!envelope)
        return -1;
    const char *id = NULL;
    if (agents->echo)
        id = envelope->message_id;
    else
    if (envelope->body_case == AIRLOCK__ENVELOPE__BODY_ACK)
        id = envelope->ack->acked_message_id;
    long number = -1;
    if (id && id [0] == prefix)
        number = atol (id + 1);
    airlock__envelope__free_unpacked (envelope, NULL);
    return number;
}

//  Receive replies for up to timeout_ms; records receipt times of numbers in [0, total).
//  Returns how many new ones arrived.
static size_t
s_collect (s_agents_t *agents, char prefix, int64_t *received_ns, size_t total, int timeout_ms)
{
    size_t got = 0;
    int rc = zmq_poll (agents->items, (int) agents->count, timeout_ms);
    if (rc <= 0)
        return 0;
    zmq_msg_t msg;
    zmq_msg_init (&msg);
    for (size_t i = 0; i < agents->count; i++) {
        if (!(agents->items [i].revents & ZMQ_POLLIN))
            continue;
        while (zmq_msg_recv (&msg, agents->items [i].socket, ZMQ_DONTWAIT) != -1) {
            long number = s_reply_number (agents, &msg, prefix);
            if (number >= 0 && (size_t) number < total && received_ns [number] == 0) {
                received_ns [number] = s_now_ns ();
                got++;
            }
        }
    }
    zmq_msg_close (&msg);
    return got;
}

static int
s_compare_i64 (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y? -1: x > y;
}

typedef struct {
    double register_ms;             // connect + Register until every Ack (broker) / echo
    double rate;                    // burst replies per second
    double p99_ms;                  // paced send → reply
    double rss_mb;                  // holding n registered connections, before traffic
    double anon_mb;                 // of which anonymous (smaps_rollup)
    double file_mb;                 // of which file-backed (binary and libraries)
    double rss_traffic_mb;          // after the burst and the paced run
    bool complete;
} s_step_t;

//  Connect n agents to endpoint, register them, measure, (leave them connected).
static s_step_t
s_step (s_bench_t *bench, s_agents_t *agents, size_t n, const char *endpoint, bool echo, pid_t server,
        const char *server_name, bool measure_traffic)
{
    s_step_t step = { 0 };
    step.complete = true;
    agents->echo = echo;
    agents->count = n;
    int64_t started = s_now_ns ();
    for (size_t i = 0; i < n; i++) {
        agents->sockets [i] = s_connect (bench, bench->agents [i], endpoint);
        agents->items [i] = (zmq_pollitem_t) { zsock_resolve (agents->sockets [i]), 0, ZMQ_POLLIN, 0 };
        s_send_register (agents->sockets [i], i);
    }
    int64_t *received = (int64_t *) calloc (S_BURST > S_PACED? S_BURST: S_PACED, sizeof *received);
    int64_t *sent = (int64_t *) calloc (S_PACED, sizeof *sent);
    if (!received || !sent)
        s_die ("out of memory");
    size_t got = 0;
    int64_t deadline = s_now_ns () + (int64_t) S_DEADLINE_MS * 1000000;
    while (got < n && s_now_ns () < deadline)
        got += s_collect (agents, 'r', received, n, 100);
    step.register_ms = (double) (s_now_ns () - started) / 1e6;
    step.complete = got == n;
    s_rss_split_t split = s_rss_split (server);
    step.rss_mb = s_rss_mb (server);
    step.anon_mb = split.anon_mb;
    step.file_mb = split.file_mb;
    s_save_smaps (server, server_name, n);
    if (measure_traffic && step.complete) {
        //  Burst: every message at once, spread over the agents.
        memset (received, 0, S_BURST * sizeof *received);
        started = s_now_ns ();
        for (size_t k = 0; k < S_BURST; k++)
            s_send_request (agents->sockets [k % n], "b", k);
        got = 0;
        deadline = s_now_ns () + (int64_t) S_DEADLINE_MS * 1000000;
        int64_t last = started;
        while (got < S_BURST && s_now_ns () < deadline) {
            size_t more = s_collect (agents, 'b', received, S_BURST, 100);
            if (more)
                last = s_now_ns ();
            got += more;
        }
        step.rate = last > started? (double) got / ((double) (last - started) / 1e9): 0;
        step.complete = step.complete && got == S_BURST;
        //  Paced: S_PACED_RATE msgs/s offered, round-robin over the agents.
        memset (received, 0, S_PACED * sizeof *received);
        int64_t interval = 1000000000ll / S_PACED_RATE;
        started = s_now_ns ();
        got = 0;
        for (size_t k = 0; k < S_PACED; k++) {
            int64_t due = started + (int64_t) k * interval;
            while (s_now_ns () < due) {
                int64_t left_ms = (due - s_now_ns ()) / 1000000;
                got += s_collect (agents, 'p', received, S_PACED, left_ms > 0? (int) left_ms: 0);
            }
            sent [k] = s_now_ns ();
            s_send_request (agents->sockets [k % n], "p", k);
        }
        deadline = s_now_ns () + (int64_t) S_DEADLINE_MS * 1000000;
        while (got < S_PACED && s_now_ns () < deadline)
            got += s_collect (agents, 'p', received, S_PACED, 100);
        step.complete = step.complete && got == S_PACED;
        size_t count = 0;
        for (size_t k = 0; k < S_PACED; k++)
            if (received [k])
                sent [count++] = received [k] - sent [k];
        if (count) {
            qsort (sent, count, sizeof *sent, s_compare_i64);
            step.p99_ms = (double) sent [(count * 99) / 100] / 1e6;
        }
    }
    step.rss_traffic_mb = s_rss_mb (server);
    free (received);
    free (sent);
    return step;
}

static void
s_leave (s_agents_t *agents)
{
    for (size_t i = 0; i < agents->count; i++)
        zsock_destroy (&agents->sockets [i]);
    agents->count = 0;
}

//  Wait until the broker lists only the observer among its agents (it forgot the rest).
//  Returns the number of agents it still listed at the end.
static size_t
s_broker_settled (zsock_t *observer)
{
    int64_t deadline = s_now_ns () + (int64_t) S_DEADLINE_MS * 1000000;
    size_t listed = SIZE_MAX;
    unsigned query = 0;
    while (listed > 1 && s_now_ns () < deadline) {
        char id [32];
        snprintf (id, sizeof id, "q%u", query++);
        al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
        Airlock__StatusQuery body = AIRLOCK__STATUS_QUERY__INIT;
        body.what = (char *) "agents";
        envelope.message_id = id;
        envelope.body_case = AIRLOCK__ENVELOPE__BODY_STATUS_QUERY;
        envelope.status_query = &body;
        uint8_t buffer [128];
        size_t size = s_pack (&envelope, buffer, sizeof buffer);
        zmq_send (zsock_resolve (observer), buffer, size, 0);
        int64_t until = s_now_ns () + 2000000000ll;
        while (s_now_ns () < until) {
            zmq_pollitem_t item = { zsock_resolve (observer), 0, ZMQ_POLLIN, 0 };
            if (zmq_poll (&item, 1, 100) <= 0)
                continue;
            zmq_msg_t msg;
            zmq_msg_init (&msg);
            bool answered = false;
            while (zmq_msg_recv (&msg, zsock_resolve (observer), ZMQ_DONTWAIT) != -1) {
                al_envelope_t *reply = airlock__envelope__unpack (NULL, zmq_msg_size (&msg),
                                                                  (const uint8_t *) zmq_msg_data (&msg));
                if (reply && reply->body_case == AIRLOCK__ENVELOPE__BODY_STATUS_REPLY
                &&  reply->correlation_id && strcmp (reply->correlation_id, id) == 0) {
                    listed = reply->status_reply->n_agents;
                    answered = true;
                }
                if (reply)
                    airlock__envelope__free_unpacked (reply, NULL);
            }
            zmq_msg_close (&msg);
            if (answered)
                break;
        }
        if (listed > 1)
            usleep (200000);
    }
    return listed;
}

//  ---- setup --------------------------------------------------------------------------

static void
s_copy (const char *from, const char *to)
{
    FILE *in = fopen (from, "rb");
    FILE *out = fopen (to, "wb");
    if (!in || !out)
        s_die ("cannot copy the default policy");
    char buffer [8192];
    size_t size;
    while ((size = fread (buffer, 1, sizeof buffer, in)) > 0)
        fwrite (buffer, 1, size, out);
    fclose (in);
    fclose (out);
}

//  A state directory on disk (not tmpfs: fsync must cost what it costs).
static void
s_setup (s_bench_t *bench)
{
    const char *base = getenv ("AIRLOCK_BENCH_DIR");
    snprintf (bench->dir, sizeof bench->dir, "%s/al-bench-scale-XXXXXX", base? base: "/var/tmp");
    if (!mkdtemp (bench->dir))
        s_die ("cannot create the state directory");
    char path [512];
    snprintf (path, sizeof path, "%s/keys", bench->dir);
    mkdir (path, 0700);
    bench->server_cert = zcert_new ();
    snprintf (path, sizeof path, "%s/keys/broker.cert", bench->dir);
    zcert_save (bench->server_cert, path);
    snprintf (path, sizeof path, "%s/keys/broker.cert_secret", bench->dir);
    chmod (path, 0600);
    uint8_t public_key [crypto_sign_PUBLICKEYBYTES], secret_key [crypto_sign_SECRETKEYBYTES];
    crypto_sign_keypair (public_key, secret_key);
    char hex [2 * crypto_sign_SECRETKEYBYTES + 1];
    sodium_bin2hex (hex, sizeof hex, secret_key, sizeof secret_key);
    snprintf (path, sizeof path, "%s/keys/checkpoint.key", bench->dir);
    FILE *file = fopen (path, "w");
    if (!file)
        s_die ("cannot write the checkpoint key");
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
    if (!file)
        s_die ("cannot write identities.yaml");
    fprintf (file, "identities:\n");
    for (int i = 0; i < S_MAX_AGENTS; i++) {
        bench->agents [i] = zcert_new ();
        fprintf (file, "  - key: \"%s\"\n    identity: agent-%d\n    role: orchestrator\n",
                 zcert_public_txt (bench->agents [i]), i);
    }
    bench->observer = zcert_new ();
    fprintf (file, "  - key: \"%s\"\n    identity: observer\n    role: monitor\n",
             zcert_public_txt (bench->observer));
    fclose (file);
    snprintf (bench->broker_endpoint, sizeof bench->broker_endpoint, "ipc://%s/broker.ipc", bench->dir);
    snprintf (bench->zero_endpoint, sizeof bench->zero_endpoint, "ipc://%s/zero.ipc", bench->dir);
    snprintf (bench->zero_zap_endpoint, sizeof bench->zero_zap_endpoint, "ipc://%s/zero-zap.ipc", bench->dir);
    snprintf (bench->config_path, sizeof bench->config_path, "%s/airlock.yaml", bench->dir);
    file = fopen (bench->config_path, "w");
    if (!file)
        s_die ("cannot write airlock.yaml");
    fprintf (file,
             "state_dir: %s\n"
             "database: %s/audit.db\n"
             "endpoints:\n  router: %s\n  pub: ipc://%s/events.ipc\n"
             "limits:\n  rate_per_second: 10000000\n  rate_burst: 100000000\n"
             "  sndhwm: 100000\n  rcvhwm: 100000\n",
             bench->dir, bench->dir, bench->broker_endpoint, bench->dir);
    fclose (file);
}

//  Rows of the given type in the broker's audit log (read once it has stopped); -1 if
//  it cannot be read.
static long
s_count_rows (s_bench_t *bench, const char *type)
{
    char database [320], error [512];
    snprintf (database, sizeof database, "%s/audit.db", bench->dir);
    al_store_options_t options = { .read_only = true };
    al_store_t *store = al_store_open (NULL, database, &options, error, sizeof error);
    if (!store)
        return -1;
    long count = 0;
    al_store_iter_t *iter = al_store_iter_new (store, 1);
    al_store_event_t event;
    while (iter && al_store_iter_next (iter, &event) == AL_STORE_OK)
        if (strcmp (event.type, type) == 0 && count++ < 3)
            printf ("  %s: %s\n", type, event.reason);     // the first ones, to say why
    al_store_iter_destroy (&iter);
    al_store_destroy (&store);
    return count;
}

static int
s_wait_child (pid_t pid)
{
    int status = 0;
    kill (pid, SIGTERM);
    if (waitpid (pid, &status, 0) != pid)
        return -1;
    return WIFEXITED (status)? WEXITSTATUS (status): 128 + WTERMSIG (status);
}

int
main (void)
{
    //  1,000 agents hold 2 descriptors each here (connection, mailbox), and the servers
    //  one per connection.
    struct rlimit limit;
    if (getrlimit (RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit (RLIMIT_NOFILE, &limit);
    }
    if (sodium_init () < 0)
        return 2;
    s_bench_t bench;
    memset (&bench, 0, sizeof bench);
    s_setup (&bench);
    //  The servers first, before this process makes a ZeroMQ context.
    bench.broker_pid = s_spawn (&bench, s_broker_main);
    bench.zero_pid = s_spawn (&bench, s_zero_main);
    bench.zero_zap_pid = s_spawn (&bench, s_zero_zap_main);
    zsys_set_max_sockets (4 * S_MAX_AGENTS);
    zsys_init ();
    zsys_set_logstream (stderr);
    printf ("bench_scale: agents with their own CURVE keys, ipc:// in %s\n", bench.dir);
    //  The fixed cost, split: anonymous (heaps, stacks, caches) and file-backed pages.
    s_rss_split_t broker_idle = s_rss_split (bench.broker_pid);
    s_rss_split_t zero_idle = s_rss_split (bench.zero_pid);
    s_save_smaps (bench.broker_pid, "broker", 0);
    s_save_smaps (bench.zero_pid, "zero", 0);
    printf ("  before any agent: broker RSS %.1f MB (anon %.1f, file %.1f), zero-work ROUTER RSS %.1f MB"
            " (anon %.1f, file %.1f)\n", broker_idle.rss_mb, broker_idle.anon_mb, broker_idle.file_mb,
            zero_idle.rss_mb, zero_idle.anon_mb, zero_idle.file_mb);
    printf ("RESULT scale.broker_rss_mb_0_agents %.1f MB\n", broker_idle.rss_mb);
    printf ("RESULT scale.broker_anon_mb_0_agents %.1f MB\n", broker_idle.anon_mb);
    printf ("RESULT scale.broker_file_mb_0_agents %.1f MB\n", broker_idle.file_mb);
    printf ("RESULT scale.zero_work_rss_mb_0_agents %.1f MB\n", zero_idle.rss_mb);
    printf ("RESULT scale.zero_work_anon_mb_0_agents %.1f MB\n", zero_idle.anon_mb);
    printf ("RESULT scale.zero_work_file_mb_0_agents %.1f MB\n", zero_idle.file_mb);

    static s_agents_t agents;
    zsock_t *observer = s_connect (&bench, bench.observer, bench.broker_endpoint);
    bool complete = true;
    //  AIRLOCK_BENCH_SCALE_QUICK=1: only the 1,000-agent step and one wave (to study the
    //  RSS; the full run's figures differ, since its earlier steps' traffic raised the heaps).
    bool quick = getenv ("AIRLOCK_BENCH_SCALE_QUICK") != NULL;
    const size_t sizes [] = { 1, 10, 100, 1000 };
    //  What each side runs, so that the ratio is read for what it is.
    printf ("  zero:     a CURVE ROUTER (the broker's key), no ZAP handler, echoes each frame back\n"
            "  zero+zap: the same with a ZAP handler thread admitting every key (RSS only): libzmq\n"
            "            keeps a ZAP pipe pair per connection of any authenticating server\n"
            "  broker:   the airlock broker: CURVE + ZAP (its identities.yaml), decode, policy, audit\n"
            "            append + commit (synchronous=FULL), Ack, delivery queue, heartbeats\n");
    printf ("%8s  %-7s %12s %14s %10s %10s %12s\n", "agents", "server", "register ms", "burst msgs/s", "p99 ms",
            "RSS MB", "after traffic");
    for (size_t s = quick? 3: 0; s < sizeof sizes / sizeof sizes [0]; s++) {
        size_t n = sizes [s];
        s_step_t zero = s_step (&bench, &agents, n, bench.zero_endpoint, true, bench.zero_pid, "zero", true);
        s_leave (&agents);
        s_step_t zero_zap = s_step (&bench, &agents, n, bench.zero_zap_endpoint, true, bench.zero_zap_pid, "zero-zap",
                                    false);
        s_leave (&agents);
        s_step_t broker = s_step (&bench, &agents, n, bench.broker_endpoint, false, bench.broker_pid, "broker", true);
        s_leave (&agents);
        size_t left = s_broker_settled (observer);
        complete = complete && zero.complete && zero_zap.complete && broker.complete && left == 1;
        printf ("%8zu  %-7s %12.1f %14.0f %10.3f %10.1f %12.1f\n", n, "zero", zero.register_ms, zero.rate,
                zero.p99_ms, zero.rss_mb, zero.rss_traffic_mb);
        printf ("%8zu  %-7s %12.1f %14s %10s %10.1f %12s\n", n, "zero+zap", zero_zap.register_ms, "-", "-",
                zero_zap.rss_mb, "-");
        printf ("%8zu  %-7s %12.1f %14.0f %10.3f %10.1f %12.1f%s\n", n, "broker", broker.register_ms, broker.rate,
                broker.p99_ms, broker.rss_mb, broker.rss_traffic_mb, broker.complete? "": " (INCOMPLETE)");
        printf ("RESULT scale.broker_register_ms_%zu_agents %.1f ms\n", n, broker.register_ms);
        printf ("RESULT scale.broker_rate_%zu_agents %.0f msgs/s\n", n, broker.rate);
        printf ("RESULT scale.zero_work_rate_%zu_agents %.0f msgs/s\n", n, zero.rate);
        printf ("RESULT scale.broker_p99_%zu_agents %.3f ms\n", n, broker.p99_ms);
        printf ("RESULT scale.zero_work_p99_%zu_agents %.3f ms\n", n, zero.p99_ms);
        printf ("RESULT scale.broker_rss_mb_%zu_agents %.1f MB\n", n, broker.rss_mb);
        printf ("RESULT scale.zero_work_rss_mb_%zu_agents %.1f MB\n", n, zero.rss_mb);
        printf ("RESULT scale.zero_work_zap_rss_mb_%zu_agents %.1f MB\n", n, zero_zap.rss_mb);
        printf ("RESULT scale.broker_anon_mb_%zu_agents %.1f MB\n", n, broker.anon_mb);
        printf ("RESULT scale.broker_file_mb_%zu_agents %.1f MB\n", n, broker.file_mb);
        printf ("RESULT scale.zero_work_anon_mb_%zu_agents %.1f MB\n", n, zero.anon_mb);
        printf ("RESULT scale.zero_work_file_mb_%zu_agents %.1f MB\n", n, zero.file_mb);
        printf ("RESULT scale.zero_work_zap_anon_mb_%zu_agents %.1f MB\n", n, zero_zap.anon_mb);
        printf ("RESULT scale.broker_rss_mb_%zu_agents_after_traffic %.1f MB\n", n, broker.rss_traffic_mb);
        printf ("RESULT scale.zero_work_rss_mb_%zu_agents_after_traffic %.1f MB\n", n, zero.rss_traffic_mb);
        if (n == S_MAX_AGENTS) {
            printf ("RESULT scale.rss_ratio_1000_agents %.2f x\n", zero.rss_mb > 0? broker.rss_mb / zero.rss_mb: 0);
            //  For reference: against the same ROUTER with a ZAP handler, and that
            //  ROUTER's own cost of ZAP (issue 19's goal compares with the plain one).
            printf ("RESULT scale.rss_ratio_vs_zap_1000_agents %.2f x\n",
                    zero_zap.rss_mb > 0? broker.rss_mb / zero_zap.rss_mb: 0);
            printf ("RESULT scale.zap_rss_ratio_1000_agents %.2f x\n",
                    zero.rss_mb > 0? zero_zap.rss_mb / zero.rss_mb: 0);
        }
    }
    double first = 0, last = 0;
    printf ("waves of %d agents connecting, registering and leaving the broker:\n", S_MAX_AGENTS);
    for (int wave = 1; wave <= (quick? 1: S_WAVES); wave++) {
        s_step_t step = s_step (&bench, &agents, S_MAX_AGENTS, bench.broker_endpoint, false, bench.broker_pid, "wave",
                                false);
        s_leave (&agents);
        size_t left = s_broker_settled (observer);
        complete = complete && step.complete && left == 1;
        //  Read once the broker had a tick after forgetting them (it trims its heap there).
        usleep (2 * AL_CONFIG_DEFAULT_HEARTBEAT_MS * 1000);
        last = s_rss_mb (bench.broker_pid);
        if (wave == 1)
            first = last;
        printf ("  wave %2d: registered in %.1f ms, RSS after leaving %.1f MB\n", wave, step.register_ms, last);
    }
    printf ("RESULT scale.rss_mb_after_first_wave %.1f MB\n", first);
    printf ("RESULT scale.rss_mb_after_10_waves %.1f MB\n", last);
    printf ("RESULT scale.rss_growth_10_waves %.2f x\n", first > 0? last / first: 0);

    zsock_destroy (&observer);
    int broker_rc = s_wait_child (bench.broker_pid);
    int zero_rc = s_wait_child (bench.zero_pid);
    int zero_zap_rc = s_wait_child (bench.zero_zap_pid);
    if (broker_rc != 0 || zero_rc != 0 || zero_zap_rc != 0) {
        fprintf (stderr, "bench_scale: the broker exited %d, the zero-work ROUTERs %d and %d\n", broker_rc, zero_rc,
                 zero_zap_rc);
        complete = false;
    }
    //  Handshakes the broker audited as failed (not completed within handshake_ms: they
    //  appear when the machine is loaded, the client then connects again) or refused
    //  (none expected: every key is known). The first reasons are printed above.
    long failed = s_count_rows (&bench, "HandshakeFailed"), refused = s_count_rows (&bench, "HandshakeRefused");
    printf ("RESULT scale.broker_handshakes_failed %ld rows\n", failed);
    printf ("RESULT scale.broker_handshakes_refused %ld rows\n", refused);
    if (refused != 0)
        complete = false;
    for (int i = 0; i < S_MAX_AGENTS; i++)
        zcert_destroy (&bench.agents [i]);
    zcert_destroy (&bench.observer);
    zcert_destroy (&bench.server_cert);
    char command [400];
    snprintf (command, sizeof command, "rm -rf '%s'", bench.dir);
    if (system (command) != 0)
        fprintf (stderr, "bench_scale: could not remove %s\n", bench.dir);
    return complete? 0: 1;
}
