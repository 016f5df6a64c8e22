/*  al_subscriber.c: a CURVE SUB client of the broker's event bus, with per-topic gap
    detection (al_seqtrack_t).

    One SUB socket, its CURVE certificate and the broker's key, and a socket monitor
    (inproc PAIR) that tells us whether a handshake succeeded or was refused. Nothing runs
    in the background: the socket and the monitor are read inside al_subscriber_recv and
    al_subscriber_wait_connected, by the one thread that owns the subscriber. Events are
    read as raw zmq_msg frames so that a message with the wrong number of frames is
    drained whole and never shifts the framing of the next one.

    Invariant: the tracker sees only sequences of events handed to the caller, so every
    event the caller did not get (dropped by a high-water mark, lost in a disconnect,
    skipped as malformed) is counted as missed on the next event of its topic.
*/
#include "agents/al_subscriber.h"
#include "base/al_clock.h"
#include "base/al_error.h"
#include "agents/al_agent_int.h"

#include <assert.h>
#include "proto/al_signature.h"
#include <czmq.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

//  The options' buffers are filled by the agent runtime's shared helpers (al_agent_curve.c).
_Static_assert (AL_SUBSCRIBER_PATH_SIZE == AL_AGENT_PATH_SIZE, "path buffers differ");

//  Longest topic we accept ("soak.<environment>.<service>" is far shorter).
#define S_MAX_TOPIC 255
//  Longest poll slice: al_agent_interrupted() is checked at least this often.
#define S_SLICE_MS 200

//  ---- al_seqtrack_t -----------------------------------------------------------------

struct _al_seqtrack_t {
    zhashx_t *last;             // topic → uint64_t * last sequence seen
    al_seqtrack_info_t info;
};

static void
s_free_counter (void **item_p)
{
    free (*item_p);
    *item_p = NULL;
}

al_seqtrack_t *
al_seqtrack_new (void)
{
    al_seqtrack_t *self = (al_seqtrack_t *) calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->last = zhashx_new ();
    if (!self->last) {
        free (self);
        return NULL;
    }
    zhashx_set_destructor (self->last, s_free_counter);
    return self;
}

void
al_seqtrack_destroy (al_seqtrack_t **self_p)
{
    assert (self_p);
    al_seqtrack_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy (&self->last);
    free (self);
    *self_p = NULL;
}

uint64_t
al_seqtrack_feed (al_seqtrack_t *self, const char *topic, uint64_t sequence, bool *restarted_p)
{
    assert (self);
    assert (topic);
    if (restarted_p)
        *restarted_p = false;
    self->info.received++;
    uint64_t *last = (uint64_t *) zhashx_lookup (self->last, topic);
    if (!last) {
        //  First of its topic: whatever came before we subscribed is not ours to miss.
        last = (uint64_t *) malloc (sizeof *last);
        assert (last);
        *last = sequence;
        zhashx_insert (self->last, topic, last);
        self->info.topics = zhashx_size (self->last);
        return 0;
    }
    uint64_t missed = 0;
    if (sequence <= *last) {
        //  Sequences only grow within a broker run: going back (or standing still) means
        //  a new run counting from 1; what it published before this one never reached us.
        missed = sequence > 0? sequence - 1: 0;
        self->info.restarts++;
        if (restarted_p)
            *restarted_p = true;
    }
    else
        missed = sequence - *last - 1;
    *last = sequence;
    self->info.missed += missed;
    return missed;
}

void
al_seqtrack_info (const al_seqtrack_t *self, al_seqtrack_info_t *info)
{
    assert (self);
    assert (info);
    *info = self->info;
}

uint64_t
al_seqtrack_last (const al_seqtrack_t *self, const char *topic)
{
    assert (self);
    assert (topic);
    uint64_t *last = (uint64_t *) zhashx_lookup (self->last, topic);
    return last? *last: 0;
}

//  ---- al_subscriber_t ---------------------------------------------------------------

struct _al_subscriber_t {
    al_subscriber_options_t options;
    zcert_t *cert;
    zsock_t *sub;
    zsock_t *monitor;           // PAIR end of the SUB socket's monitor
    al_seqtrack_t *tracker;
    al_subscriber_info_t info;
    char last_error [512];
    char answered [AL_SUBSCRIBER_PATH_SIZE]; // the endpoint of the last handshake that succeeded
};

void
al_subscriber_options_defaults (al_subscriber_options_t *options)
{
    assert (options);
    memset (options, 0, sizeof *options);
    options->rcvhwm = 10000;
    options->handshake_ms = 5000;
    options->max_envelope_bytes = 4 * 1024 * 1024;
}

int
al_subscriber_options_from_config (al_subscriber_options_t *options, const al_config_t *config,
                                   const char *role, char *error, size_t error_size)
{
    assert (options);
    assert (config);
    assert (role);
    if (al_agent__identity_from_config (config, role, al_config_event_endpoints (config),
                                        "endpoints.events", options->endpoint,
                                        options->broker_key, options->cert_path,
                                        error, error_size))
        return -1;
    options->rcvhwm = al_config_rcvhwm (config);
    options->handshake_ms = al_config_handshake_ms (config);
    //  The broker publishes envelopes it accepted, with the sender stamped on: a little
    //  larger than the limit it enforces; the agent runtime allows the same margin.
    if (options->max_envelope_bytes < 4 * al_config_max_message_bytes (config))
        options->max_envelope_bytes = 4 * al_config_max_message_bytes (config);
    return 0;
}

al_subscriber_t *
al_subscriber_new_with (const al_subscriber_options_t *options, char *error, size_t error_size)
{
    assert (options);
    uint8_t key [32];
    if (!*options->endpoint) {
        snprintf (error, error_size, "endpoint: is required");
        return NULL;
    }
    if (strlen (options->broker_key) != 40 || !zmq_z85_decode (key, options->broker_key)) {
        snprintf (error, error_size, "broker_key: '%s' is not a 40-character Z85 CURVE key",
                  options->broker_key);
        return NULL;
    }
    if (!*options->cert_path) {
        snprintf (error, error_size, "cert_path: is required");
        return NULL;
    }
    if (options->rcvhwm < 0 || options->handshake_ms < 0 || options->max_envelope_bytes == 0) {
        snprintf (error, error_size, "options: rcvhwm and handshake_ms must be >= 0, "
                  "max_envelope_bytes > 0");
        return NULL;
    }
    al_subscriber_t *self = (al_subscriber_t *) calloc (1, sizeof *self);
    assert (self);
    self->options = *options;
    self->cert = al_agent__cert_load (options->cert_path, error, error_size);
    if (!self->cert)
        goto failed;
    self->tracker = al_seqtrack_new ();
    self->sub = zsock_new (ZMQ_SUB);
    if (!self->tracker || !self->sub) {
        snprintf (error, error_size, "cannot create a socket: %s", zmq_strerror (zmq_errno ()));
        goto failed;
    }
    zcert_apply (self->cert, self->sub);
    zsock_set_curve_serverkey (self->sub, options->broker_key);
    zsock_set_rcvhwm (self->sub, options->rcvhwm);
    zsock_set_handshake_ivl (self->sub, options->handshake_ms);
    //  Far larger frames are cut off by libzmq before they are buffered.
    zsock_set_maxmsgsize (self->sub, options->max_envelope_bytes > INT_MAX / 2? INT_MAX
                                     : (int) (2 * options->max_envelope_bytes));
    zsock_set_linger (self->sub, 0);
    if (al_agent__socket_monitor (self->sub, "subscriber", &self->monitor, error, error_size) != 0)
        goto failed;
    //  Failover (docs/ha.md): only the active broker binds its PUB, so a SUB connected
    //  to every broker's endpoint hears whichever is active, and nothing twice.
    char (*endpoints) [AL_AGENT_PATH_SIZE] = malloc (AL_AGENT_MAX_ENDPOINTS * sizeof *endpoints);
    assert (endpoints);
    int count = al_agent_endpoints_split (options->endpoint, endpoints, error, error_size);
    for (int i = 0; i < count; i++)
        if (zsock_connect (self->sub, "%s", endpoints [i]) != 0) {
            snprintf (error, error_size, "%s: cannot connect: %s", endpoints [i],
                      zmq_strerror (zmq_errno ()));
            count = -1;
        }
    free (endpoints);
    if (count < 0)
        goto failed;
    return self;
failed:
    al_subscriber_destroy (&self);
    return NULL;
}

al_subscriber_t *
al_subscriber_new (const al_config_t *config, const char *role, char *error, size_t error_size)
{
    al_subscriber_options_t options;
    al_subscriber_options_defaults (&options);
    if (al_subscriber_options_from_config (&options, config, role, error, error_size) != 0)
        return NULL;
    return al_subscriber_new_with (&options, error, error_size);
}

void
al_subscriber_destroy (al_subscriber_t **self_p)
{
    assert (self_p);
    al_subscriber_t *self = *self_p;
    if (!self)
        return;
    if (self->sub && self->monitor)
        zmq_socket_monitor (zsock_resolve (self->sub), NULL, 0);
    zsock_destroy (&self->monitor);
    zsock_destroy (&self->sub);
    zcert_destroy (&self->cert);
    al_seqtrack_destroy (&self->tracker);
    free (self);
    *self_p = NULL;
}

int
al_subscriber_subscribe (al_subscriber_t *self, const char *topic_prefix)
{
    assert (self);
    assert (topic_prefix);
    if (strlen (topic_prefix) > S_MAX_TOPIC)
        return -1;
    zsock_set_subscribe (self->sub, topic_prefix);
    return 0;
}

//  Read every pending monitor event (non-blocking) into info and last_error.
static void
s_monitor_drain (al_subscriber_t *self)
{
    uint16_t event;
    char address [AL_SUBSCRIBER_PATH_SIZE];
    while (al_agent__monitor_event (self->monitor, &event, address, sizeof address)) {
        if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
            snprintf (self->answered, sizeof self->answered, "%s", address);
            self->info.connected = true;
            self->info.refused = false;
            self->info.connections++;
        }
        else
        if (event == ZMQ_EVENT_DISCONNECTED)
            self->info.connected = false;
        else {
            if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
                self->info.refused = true;
            al_agent__handshake_failure (event, *address? address: self->options.endpoint,
                                         zcert_public_txt (self->cert), self->options.broker_key,
                                         self->last_error, sizeof self->last_error);
        }
    }
}

//  Poll the SUB socket and the monitor for up to timeout_ms (sliced, so that an
//  interruption is noticed). Returns true when an event is waiting on the SUB socket.
static bool
s_poll (al_subscriber_t *self, int64_t deadline, bool until_connected)
{
    while (true) {
        s_monitor_drain (self);
        if (until_connected && self->info.connected)
            return false;
        if (al_agent_interrupted ())
            return false;
        int64_t now = al_clock_mono_ms ();
        long slice = S_SLICE_MS;
        if (deadline >= 0) {
            if (now >= deadline)
                slice = 0;
            else
            if (deadline - now < slice)
                slice = (long) (deadline - now);
        }
        //  Waiting for the handshake: events stay queued, only the monitor is read.
        zmq_pollitem_t items [] = {
            { zsock_resolve (self->monitor), 0, ZMQ_POLLIN, 0 },
            { zsock_resolve (self->sub), 0, ZMQ_POLLIN, 0 },
        };
        int rc = zmq_poll (items, until_connected? 1: 2, slice);
        if (rc > 0 && !until_connected && (items [1].revents & ZMQ_POLLIN))
            return true;
        if (rc > 0 && (items [0].revents & ZMQ_POLLIN))
            continue;
        if (deadline >= 0 && al_clock_mono_ms () >= deadline) {
            s_monitor_drain (self);
            return false;
        }
    }
}

//  Read one whole message (all its frames) from the SUB socket without blocking. Returns
//  the envelope, or NULL if the message was not a valid event (or nothing was there);
//  *skipped tells the two apart.
static al_envelope_t *
s_read_event (al_subscriber_t *self, char *topic, size_t topic_size, uint64_t *sequence_p,
              bool *skipped)
{
    void *socket = zsock_resolve (self->sub);
    zmq_msg_t frames [3];
    size_t count = 0;           // frames in the message
    size_t stored = 0;          // of which kept in frames
    bool more = true;
    *skipped = false;
    while (more) {
        zmq_msg_t msg;
        zmq_msg_init (&msg);
        if (zmq_msg_recv (&msg, socket, count == 0? ZMQ_DONTWAIT: 0) < 0) {
            zmq_msg_close (&msg);
            if (count == 0)
                return NULL;
            //  A multipart message arrives whole, so only a context shutdown gets here;
            //  what was read is not a valid event.
            count = 0;
            break;
        }
        more = zmq_msg_more (&msg);
        if (stored < 3)
            frames [stored++] = msg;
        else
            zmq_msg_close (&msg);
        count++;
    }
    al_envelope_t *envelope = NULL;
    char what [S_MAX_TOPIC + 1] = "event";
    if (stored >= 1 && zmq_msg_size (&frames [0]) <= S_MAX_TOPIC) {
        memcpy (what, zmq_msg_data (&frames [0]), zmq_msg_size (&frames [0]));
        what [zmq_msg_size (&frames [0])] = '\0';
    }
    if (count != 3) {
        al_error_set (self->last_error, sizeof self->last_error, "%s: %zu frames, expected 3 (topic, "
                      "envelope, sequence)", what, count);
        goto skipped;
    }
    if (zmq_msg_size (&frames [0]) > S_MAX_TOPIC || memchr (what, '\0', zmq_msg_size (&frames [0]))) {
        al_error_set (self->last_error, sizeof self->last_error, "topic: not a topic name");
        goto skipped;
    }
    if (zmq_msg_size (&frames [2]) != 8) {
        al_error_set (self->last_error, sizeof self->last_error, "%s: sequence: %zu bytes, expected 8",
                      what, zmq_msg_size (&frames [2]));
        goto skipped;
    }
    uint64_t sequence = 0;
    const uint8_t *be = (const uint8_t *) zmq_msg_data (&frames [2]);
    for (int i = 0; i < 8; i++)
        sequence = (sequence << 8) | be [i];
    char reason [256] = "";
    if (al_codec_unpack ((const uint8_t *) zmq_msg_data (&frames [1]), zmq_msg_size (&frames [1]),
                         self->options.max_envelope_bytes, &envelope, reason, sizeof reason) != AL_CODEC_OK) {
        al_error_set (self->last_error, sizeof self->last_error, "%s #%" PRIu64 ": envelope: %s", what,
                      sequence, reason);
        envelope = NULL;
        goto skipped;
    }
    snprintf (topic, topic_size, "%s", what);
    *sequence_p = sequence;
    goto cleanup;
skipped:
    *skipped = true;
    self->info.malformed++;
cleanup:
    for (size_t i = 0; i < stored; i++)
        zmq_msg_close (&frames [i]);
    return envelope;
}

al_envelope_t *
al_subscriber_recv (al_subscriber_t *self, int timeout_ms, char *topic, size_t topic_size,
                    uint64_t *sequence_p, uint64_t *missed_p, bool *restarted_p)
{
    assert (self);
    int64_t deadline = timeout_ms < 0? -1: al_clock_mono_ms () + timeout_ms;
    char name [S_MAX_TOPIC + 1];
    while (true) {
        bool skipped = false;
        uint64_t sequence = 0;
        al_envelope_t *envelope = s_read_event (self, name, sizeof name, &sequence, &skipped);
        if (envelope) {
            bool restarted = false;
            uint64_t missed = al_seqtrack_feed (self->tracker, name, sequence, &restarted);
            self->info.received++;
            self->info.missed += missed;
            if (restarted)
                self->info.restarts++;
            if (topic && topic_size)
                snprintf (topic, topic_size, "%s", name);
            if (sequence_p)
                *sequence_p = sequence;
            if (missed_p)
                *missed_p = missed;
            if (restarted_p)
                *restarted_p = restarted;
            return envelope;
        }
        if (skipped)
            continue;
        if (!s_poll (self, deadline, false))
            return NULL;
    }
}

int
al_subscriber_wait_connected (al_subscriber_t *self, int timeout_ms)
{
    assert (self);
    int64_t deadline = timeout_ms < 0? -1: al_clock_mono_ms () + timeout_ms;
    s_poll (self, deadline, true);
    return self->info.connected? 0: -1;
}

void
al_subscriber_info (al_subscriber_t *self, al_subscriber_info_t *info)
{
    assert (self);
    assert (info);
    s_monitor_drain (self);
    *info = self->info;
}

void
al_subscriber_last_error (al_subscriber_t *self, char *error, size_t error_size)
{
    assert (self);
    s_monitor_drain (self);
    snprintf (error, error_size, "%s", self->last_error);
}

const char *
al_subscriber_endpoint (al_subscriber_t *self)
{
    assert (self);
    return self->options.endpoint;
}

const char *
al_subscriber_answered (al_subscriber_t *self)
{
    assert (self);
    s_monitor_drain (self);
    return self->answered;
}
