/*  harness.c: state directories, the broker child process, raw clients and audit
    look-ups for the broker integration tests (see harness.h).
*/
#include "harness.h"
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef BROKER_UNDER_TEST
#error "BROKER_UNDER_TEST must name the broker_under_test executable"
#endif

static void
s_cert_free (void **item_p)
{
    zcert_destroy ((zcert_t **) item_p);
}

static int
s_free_port (void)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    assert (fd >= 0);
    struct sockaddr_in address;
    memset (&address, 0, sizeof address);
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    address.sin_port = 0;
    assert (bind (fd, (struct sockaddr *) &address, sizeof address) == 0);
    socklen_t size = sizeof address;
    assert (getsockname (fd, (struct sockaddr *) &address, &size) == 0);
    close (fd);
    return ntohs (address.sin_port);
}

static void
s_copy_file (const char *from, const char *to)
{
    FILE *in = fopen (from, "rb");
    assert (in);
    FILE *out = fopen (to, "wb");
    assert (out);
    char buffer [8192];
    size_t size;
    while ((size = fread (buffer, 1, sizeof buffer, in)) > 0)
        assert (fwrite (buffer, 1, size, out) == size);
    fclose (in);
    fclose (out);
}

//  airlock.yaml with the endpoints: ipc:// in the directory, or tcp ports free just now.
static void
s_write_config (harness_t *self)
{
    if (self->options.tcp) {
        self->tcp_port = s_free_port ();
        snprintf (self->router, sizeof self->router, "tcp://127.0.0.1:%d", self->tcp_port);
        snprintf (self->pub, sizeof self->pub, "tcp://127.0.0.1:%d", s_free_port ());
    }
    else {
        snprintf (self->router, sizeof self->router, "ipc://%s/broker.ipc", self->dir);
        snprintf (self->pub, sizeof self->pub, "ipc://%s/events.ipc", self->dir);
    }
    snprintf (self->config_path, sizeof self->config_path, "%s/airlock.yaml", self->dir);
    FILE *file = fopen (self->config_path, "w");
    assert (file);
    fprintf (file,
             "state_dir: %s\n"
             "endpoints:\n  router: %s\n  pub: %s\n"
             "heartbeat_ms: %d\n"
             "limits:\n  max_message_bytes: %d\n  rate_per_second: %d\n  rate_burst: %d\n"
             "  handshake_ms: 2000\n"
             "checkpoint:\n  every_events: %d\n  every_seconds: 1\n",
             self->dir, self->router, self->pub,
             self->options.heartbeat_ms? self->options.heartbeat_ms: 200,
             self->options.max_message_bytes? self->options.max_message_bytes: 262144,
             self->options.rate_per_second? self->options.rate_per_second: 100000,
             self->options.rate_burst? self->options.rate_burst: 100000,
             self->options.checkpoint_events? self->options.checkpoint_events: 1000);
    fclose (file);
}

harness_t *
harness_new (const harness_options_t *options, const harness_identity_t *identities, size_t count)
{
    static const harness_options_t defaults = { 0 };
    if (!options)
        options = &defaults;
    assert (sodium_init () >= 0);
    //  czmq 4.2's zsys_init is not thread-safe: a thread that creates a socket while
    //  another is still inside zsys_init trips its assertion `s_open_sockets == 0`
    //  (zsys_set_thread_name_prefix). The tests start agents on threads (al_qa_run,
    //  al_notifier_run, ...) next to their own sockets: initialise here, before any.
    zsys_init ();
    harness_t *self = (harness_t *) calloc (1, sizeof *self);
    assert (self);
    snprintf (self->dir, sizeof self->dir, "/tmp/al-broker-test-XXXXXX");
    assert (mkdtemp (self->dir));
    char path [400];
    snprintf (path, sizeof path, "%s/keys", self->dir);
    assert (mkdir (path, 0700) == 0);
    self->certs = zhashx_new ();
    zhashx_set_destructor (self->certs, s_cert_free);

    //  Broker certificate and checkpoint key.
    zcert_t *broker = zcert_new ();
    snprintf (path, sizeof path, "%s/keys/broker.cert", self->dir);
    assert (zcert_save (broker, path) == 0);
    snprintf (self->broker_public, sizeof self->broker_public, "%s", zcert_public_txt (broker));
    zcert_destroy (&broker);
    uint8_t public_key [crypto_sign_PUBLICKEYBYTES], secret_key [crypto_sign_SECRETKEYBYTES];
    crypto_sign_keypair (public_key, secret_key);
    memcpy (self->checkpoint_public, public_key, sizeof self->checkpoint_public);
    char hex [2 * crypto_sign_SECRETKEYBYTES + 1];
    sodium_bin2hex (hex, sizeof hex, secret_key, sizeof secret_key);
    snprintf (path, sizeof path, "%s/keys/checkpoint.key", self->dir);
    FILE *file = fopen (path, "w");
    assert (file);
    fprintf (file, "%s\n", hex);
    fclose (file);
    chmod (path, 0600);

    //  The policy: a copy of policies/default with our identities.
    const char *source = getenv ("AIRLOCK_SOURCE_DIR");
    assert (source);
    snprintf (self->policy_dir, sizeof self->policy_dir, "%s/policy", self->dir);
    assert (mkdir (self->policy_dir, 0700) == 0);
    const char *files [] = { "roles.yaml", "approvers.yaml", "deployment_types.yaml", "constraints.yaml",
                             "dependencies.yaml", "quality_rules.yaml" };
    for (size_t i = 0; i < sizeof files / sizeof files [0]; i++) {
        char from [400], to [400];
        snprintf (from, sizeof from, "%s/policies/default/%s", source, files [i]);
        snprintf (to, sizeof to, "%s/%s", self->policy_dir, files [i]);
        s_copy_file (from, to);
    }
    snprintf (path, sizeof path, "%s/identities.yaml", self->policy_dir);
    file = fopen (path, "w");
    assert (file);
    fprintf (file, "identities:\n");
    for (size_t i = 0; i < count; i++) {
        zcert_t *cert = zcert_new ();
        fprintf (file, "  - key: \"%s\"\n    identity: %s\n    role: %s\n", zcert_public_txt (cert),
                 identities [i].identity, identities [i].role);
        zhashx_insert (self->certs, identities [i].identity, cert);
    }
    fclose (file);
    zhashx_insert (self->certs, "stranger", zcert_new ());

    //  airlock.yaml.
    self->options = *options;
    snprintf (self->database, sizeof self->database, "%s/audit.db", self->dir);
    snprintf (self->checkpoint_path, sizeof self->checkpoint_path, "%s/checkpoints/latest.ckpt", self->dir);
    s_write_config (self);
    return self;
}

void
harness_destroy (harness_t **self_p)
{
    harness_t *self = *self_p;
    if (!self)
        return;
    if (self->broker_pid > 0)
        harness_broker_signal (self, SIGKILL);
    zhashx_destroy (&self->certs);
    char command [400];
    snprintf (command, sizeof command, "rm -rf '%s'", self->dir);
    if (system (command) != 0)
        fprintf (stderr, "harness: could not remove %s\n", self->dir);
    free (self);
    *self_p = NULL;
}

//  One start: 0 ready, -1 no "ready" within 20 s, -2 the broker exited before "ready".
static int
s_broker_start_once (harness_t *self)
{
    assert (self->broker_pid == 0);
    int pipe_fds [2];
    assert (pipe (pipe_fds) == 0);
    pid_t pid = fork ();
    assert (pid >= 0);
    if (pid == 0) {
        dup2 (pipe_fds [1], STDOUT_FILENO);
        close (pipe_fds [0]);
        close (pipe_fds [1]);
        execl (BROKER_UNDER_TEST, BROKER_UNDER_TEST, self->config_path, (char *) NULL);
        _exit (127);
    }
    close (pipe_fds [1]);
    self->broker_pid = pid;
    //  Wait up to 20 s for "ready" (the ASan build starts slowly).
    char line [64] = "";
    size_t used = 0;
    bool exited = false;
    zmq_pollitem_t item = { NULL, pipe_fds [0], ZMQ_POLLIN, 0 };
    int64_t deadline = zclock_mono () + 20000;
    while (used < sizeof line - 1 && zclock_mono () < deadline) {
        if (zmq_poll (&item, 1, 200) <= 0)
            continue;
        ssize_t size = read (pipe_fds [0], line + used, 1);
        if (size <= 0) {
            exited = size == 0;     // end of file: the broker is gone
            break;
        }
        used++;
        if (line [used - 1] == '\n')
            break;
    }
    close (pipe_fds [0]);
    line [used] = '\0';
    if (strcmp (line, "ready\n") != 0) {
        harness_broker_signal (self, SIGKILL);
        return exited? -2: -1;
    }
    return 0;
}

int
harness_broker_start (harness_t *self)
{
    int rc = s_broker_start_once (self);
    //  A tcp port free when the harness chose it may be taken by another test running
    //  at the same time before the broker binds it ("cannot bind: Address already in
    //  use"): fresh ports, a few times.
    for (int attempt = 1; rc == -2 && self->options.tcp && attempt < 5; attempt++) {
        fprintf (stderr, "harness: the broker exited before ready on %s; again on fresh ports\n", self->router);
        s_write_config (self);
        rc = s_broker_start_once (self);
    }
    return rc == 0? 0: -1;
}

int
harness_broker_signal (harness_t *self, int signum)
{
    assert (self->broker_pid > 0);
    kill (self->broker_pid, signum);
    if (signum != SIGTERM && signum != SIGKILL && signum != SIGINT)
        return 0;
    int status = 0;
    while (waitpid (self->broker_pid, &status, 0) == -1 && errno == EINTR)
        ;
    self->broker_pid = 0;
    if (WIFEXITED (status))
        return WEXITSTATUS (status);
    if (WIFSIGNALED (status) && WTERMSIG (status) == signum)
        return 128 + signum;
    return -1;
}

int
harness_broker_wait_exit (harness_t *self, int timeout_ms)
{
    assert (self->broker_pid > 0);
    int64_t deadline = zclock_mono () + timeout_ms;
    while (true) {
        int status = 0;
        pid_t pid = waitpid (self->broker_pid, &status, WNOHANG);
        if (pid == self->broker_pid) {
            self->broker_pid = 0;
            if (WIFEXITED (status))
                return WEXITSTATUS (status);
            return WIFSIGNALED (status)? 128 + WTERMSIG (status): -1;
        }
        if (pid == -1 && errno != EINTR)
            return -1;
        if (zclock_mono () >= deadline)
            return -1;
        zclock_sleep (50);
    }
}

zsock_t *
harness_client (harness_t *self, const char *identity, const char *metadata)
{
    zcert_t *cert = (zcert_t *) zhashx_lookup (self->certs, identity);
    assert (cert);
    zsock_t *client = zsock_new (ZMQ_DEALER);
    assert (client);
    zcert_apply (cert, client);
    zsock_set_curve_serverkey (client, self->broker_public);
    zsock_set_linger (client, 0);
    zsock_set_rcvhwm (client, 100000);
    zsock_set_sndhwm (client, 100000);
    if (metadata)
        assert (zmq_setsockopt (zsock_resolve (client), 95 /* ZMQ_METADATA */, metadata, strlen (metadata)) == 0);
    assert (zsock_connect (client, "%s", self->router) == 0);
    return client;
}

int
harness_send (zsock_t *client, const al_envelope_t *envelope)
{
    uint8_t *data = NULL;
    size_t size = 0;
    char error [256];
    if (al_codec_pack (envelope, &data, &size, error, sizeof error) != AL_CODEC_OK) {
        fprintf (stderr, "harness_send: %s\n", error);
        return -1;
    }
    int rc = zmq_send (zsock_resolve (client), data, size, 0) == (int) size? 0: -1;
    free (data);
    return rc;
}

al_envelope_t *
harness_recv (zsock_t *client, int timeout_ms)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    while (true) {
        int64_t left = deadline - zclock_mono ();
        if (left < 0)
            return NULL;
        zmq_pollitem_t item = { zsock_resolve (client), 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, (long) left) <= 0)
            continue;
        zmq_msg_t msg;
        zmq_msg_init (&msg);
        if (zmq_msg_recv (&msg, zsock_resolve (client), 0) == -1) {
            zmq_msg_close (&msg);
            return NULL;
        }
        al_envelope_t *envelope = NULL;
        char error [256];
        al_codec_status_t status = al_codec_unpack ((const uint8_t *) zmq_msg_data (&msg), zmq_msg_size (&msg),
                                                    1 << 20, &envelope, error, sizeof error);
        zmq_msg_close (&msg);
        if (status != AL_CODEC_OK) {
            fprintf (stderr, "harness_recv: undecodable reply: %s\n", error);
            return NULL;
        }
        if (envelope->body_case == AIRLOCK__ENVELOPE__BODY_HEARTBEAT) {
            al_codec_free (&envelope);
            continue;
        }
        return envelope;
    }
}

void
harness_register (zsock_t *client, const char *message_id, bool deliveries)
{
    al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
    Airlock__Register body = AIRLOCK__REGISTER__INIT;
    body.agent_name = (char *) "test-client";
    body.subscribe_deliveries = deliveries;
    envelope.message_id = (char *) message_id;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_REGISTER;
    envelope.register_ = &body;
    assert (harness_send (client, &envelope) == 0);
}

void
harness_deploy_request (zsock_t *client, const char *message_id, Airlock__Environment env)
{
    al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
    Airlock__DeployRequest body = AIRLOCK__DEPLOY_REQUEST__INIT;
    body.service = (char *) "demo";
    body.version = (char *) "v1.2.3";
    body.artifact_uri = (char *) "file:///artifacts/demo-v1.2.3.tar.gz";
    body.artifact_sha256 = (char *) "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    body.strategy = AIRLOCK__STRATEGY__STRATEGY_ROLLING;
    body.instances = 2;
    body.deployment_type = AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD;
    envelope.message_id = (char *) message_id;
    envelope.deployment_id = (char *) "dep-1";
    envelope.environment = env;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_DEPLOY_REQUEST;
    envelope.deploy_request = &body;
    assert (harness_send (client, &envelope) == 0);
}

//  What a row adds to a count (0 to pass it over), or -1 to give up with an error.
typedef long (s_row_fn) (const al_store_event_t *event, const void *filter);

//  The sum of fn over every row of the audit store (read-only); -1 on error.
static long
s_sum_rows (harness_t *self, s_row_fn *fn, const void *filter)
{
    al_store_options_t options = { .read_only = true };
    char error [512];
    al_store_t *store = al_store_open (NULL, self->database, &options, error, sizeof error);
    if (!store)
        return -1;
    long count = 0;
    al_store_iter_t *iter = al_store_iter_new (store, 1);
    al_store_event_t event;
    while (iter && al_store_iter_next (iter, &event) == AL_STORE_OK) {
        long add = fn (&event, filter);
        if (add < 0) {
            count = -1;
            break;
        }
        count += add;
    }
    al_store_iter_destroy (&iter);
    al_store_destroy (&store);
    return count;
}

typedef struct {
    const char *type;
    const char *sender;
    const char *needle;
} s_row_filter_t;

static long
s_row_matches (const al_store_event_t *event, const void *arg)
{
    const s_row_filter_t *filter = (const s_row_filter_t *) arg;
    return (!filter->type || strcmp (event->type, filter->type) == 0)
        && (!filter->sender || strcmp (event->sender, filter->sender) == 0)
        && (!filter->needle || strstr (event->reason, filter->needle));
}

long
harness_count_rows (harness_t *self, const char *type, const char *sender, const char *needle)
{
    s_row_filter_t filter = { type, sender, needle };
    return s_sum_rows (self, s_row_matches, &filter);
}

long
harness_wait_rows (harness_t *self, const char *type, const char *sender, const char *needle,
                   long minimum, int timeout_ms)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    long count = harness_count_rows (self, type, sender, needle);
    while (count < minimum && zclock_mono () < deadline) {
        zclock_sleep (50);
        count = harness_count_rows (self, type, sender, needle);
    }
    return count;
}

//  The ids an accepted DeliveryAck row of the sender (NULL = any) acknowledges.
static long
s_row_acks (const al_store_event_t *event, const void *arg)
{
    const char *sender = (const char *) arg;
    if (strcmp (event->type, "DeliveryAck") != 0 || event->decision != AL_STORE_ACCEPTED
    ||  (sender && strcmp (event->sender, sender) != 0))
        return 0;
    al_envelope_t *envelope = NULL;
    char error [512];
    if (al_codec_unpack (event->envelope, event->envelope_size, AL_CODEC_DEFAULT_MAX_SIZE, &envelope,
                         error, sizeof error) != AL_CODEC_OK)
        return -1;
    long count = (long) al_delivery_ack_count (envelope->delivery_ack);
    al_codec_free (&envelope);
    return count;
}

long
harness_count_delivery_acks (harness_t *self, const char *sender)
{
    return s_sum_rows (self, s_row_acks, sender);
}

long
harness_wait_delivery_acks (harness_t *self, const char *sender, long minimum, int timeout_ms)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    long count = harness_count_delivery_acks (self, sender);
    while (count < minimum && zclock_mono () < deadline) {
        zclock_sleep (50);
        count = harness_count_delivery_acks (self, sender);
    }
    return count;
}

al_envelope_t *
harness_expect (zsock_t *client, al_msg_type_t body_case, int timeout_ms)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    while (zclock_mono () < deadline) {
        al_envelope_t *envelope = harness_recv (client, (int) (deadline - zclock_mono ()));
        if (!envelope)
            return NULL;
        if (envelope->body_case == body_case)
            return envelope;
        al_codec_free (&envelope);
    }
    return NULL;
}

int
harness_register_acked (zsock_t *client, const char *message_id, bool deliveries, int timeout_ms)
{
    harness_register (client, message_id, deliveries);
    al_envelope_t *ack = harness_expect (client, AIRLOCK__ENVELOPE__BODY_ACK, timeout_ms);
    int rc = -1;
    if (!ack)
        fprintf (stderr, "harness: no Ack to %s within %d ms\n", message_id, timeout_ms);
    else
    if (!ack->ack->acked_message_id || strcmp (ack->ack->acked_message_id, message_id) != 0)
        fprintf (stderr, "harness: the Ack names '%s', not %s\n",
                 ack->ack->acked_message_id? ack->ack->acked_message_id: "", message_id);
    else
    if (ack->ack->audit_sequence == 0 || ack->ack->audit_hash.len != 32)
        fprintf (stderr, "harness: the Ack to %s has no audit row (sequence %llu, hash %zu bytes)\n",
                 message_id, (unsigned long long) ack->ack->audit_sequence, ack->ack->audit_hash.len);
    else
        rc = 0;
    al_codec_free (&ack);
    return rc;
}

harness_t *
harness_start_pair (const harness_identity_t *identities, size_t count,
                    zsock_t **orchestrator_p, zsock_t **manager_p)
{
    *orchestrator_p = NULL;
    *manager_p = NULL;
    harness_t *self = harness_new (NULL, identities, count);
    if (!self)
        return NULL;
    if (harness_broker_start (self) != 0)
        goto cleanup;
    *orchestrator_p = harness_client (self, "orchestrator", NULL);
    if (!*orchestrator_p || harness_register_acked (*orchestrator_p, "reg-o", false, 10000) != 0)
        goto cleanup;
    *manager_p = harness_client (self, "deploy-manager", NULL);
    if (!*manager_p || harness_register_acked (*manager_p, "reg-m", true, 10000) != 0)
        goto cleanup;
    return self;

cleanup:
    zsock_destroy (orchestrator_p);
    zsock_destroy (manager_p);
    harness_destroy (&self);            // kills a broker still running
    return NULL;
}
