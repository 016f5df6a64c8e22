/*  al_subscriber.h: a CURVE-authenticated subscriber to the broker's event bus (PUB).

    The broker publishes every accepted routed envelope on its PUB socket as three
    frames: the topic ("event.<Type>", or "soak.<environment>.<service>" for a
    SoakSignal), the packed envelope with the sender stamped, and its sequence number,
    8 bytes big-endian, counted per topic and per broker run (docs/broker.md). A
    subscriber connects a SUB socket with a role's certificate (the broker's ZAP handler
    admits only keys of identities.yaml, on the PUB socket too), subscribes to topic
    prefixes and receives envelopes with their topic and sequence.

    Losing an event must never go unnoticed: PUB/SUB drops messages when a subscriber is
    slow (high-water mark) or disconnected. Each received sequence is checked against the
    last one of its topic by al_seqtrack_t: a jump forward reports how many events were
    missed; a jump backwards (or a repeat) means the broker restarted and counts from 1
    again: the topic is reset and the restart reported, with the events of the new run
    that came before (sequence - 1) reported as missed. The first message of a topic
    only initialises it (whatever came before we subscribed is not a gap).
    Limit: if the broker restarts while we are disconnected and the new run's sequence
    has already passed the old one by the time we reconnect, this looks like a forward
    jump: it is still reported as a gap, only its size is then not exact.

    Threading: an al_subscriber_t and an al_seqtrack_t are used by one thread (no actor:
    the socket is read only inside al_subscriber_recv).
*/
#ifndef AL_SUBSCRIBER_H_INCLUDED
#define AL_SUBSCRIBER_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "proto/al_codec.h"
#include "base/al_config.h"

#ifdef __cplusplus
extern "C" {
#endif

//  ---- sequence gap tracking (pure; no sockets) ---------------------------------------

typedef struct _al_seqtrack_t al_seqtrack_t;

al_seqtrack_t *al_seqtrack_new (void);
//  NULL-safe; sets *self_p to NULL.
void al_seqtrack_destroy (al_seqtrack_t **self_p);

//  Account for SEQUENCE received on TOPIC. Returns how many events of that topic were
//  missed just before this one: 0 for the first of a topic and for last + 1; sequence -
//  last - 1 for a jump forward; sequence - 1 for a restart (sequence <= last), which also
//  sets *restarted_p (may be NULL; set to false otherwise).
uint64_t al_seqtrack_feed (al_seqtrack_t *self, const char *topic, uint64_t sequence, bool *restarted_p);

//  Totals over all topics since creation.
typedef struct {
    uint64_t received;      // sequences fed
    uint64_t missed;        // sum of what feed returned
    uint64_t restarts;      // feeds that reported a restart
    size_t topics;          // topics seen
} al_seqtrack_info_t;

void al_seqtrack_info (const al_seqtrack_t *self, al_seqtrack_info_t *info);

//  The last sequence seen on TOPIC, or 0 if none.
uint64_t al_seqtrack_last (const al_seqtrack_t *self, const char *topic);

//  ---- the subscriber ---------------------------------------------------------------

typedef struct _al_subscriber_t al_subscriber_t;

//  Size of path and endpoint buffers in the options.
#define AL_SUBSCRIBER_PATH_SIZE 1024

typedef struct {
    char endpoint [AL_SUBSCRIBER_PATH_SIZE];  // broker PUB, e.g. "ipc:///abs/state/events.ipc";
                                              // several, comma-separated: one per broker (docs/ha.md)
    char broker_key [41];                     // the broker's CURVE public key, Z85
    char cert_path [AL_SUBSCRIBER_PATH_SIZE]; // own czmq certificate; secret at cert_path + "_secret"
    int rcvhwm;                               // receive high-water mark (default 10000)
    int handshake_ms;                         // CURVE handshake timeout (default 5000)
    size_t max_envelope_bytes;                // larger envelopes are skipped (default 4 MiB)
} al_subscriber_options_t;

//  Defaults; endpoint, broker_key and cert_path are left empty.
void al_subscriber_options_defaults (al_subscriber_options_t *options);

//  Fill options for ROLE from a loaded airlock.yaml: the PUB endpoint, the broker key
//  (from its public certificate), the role's certificate, handshake timeout, rcvhwm and
//  4 × max_message_bytes. Returns 0, or -1 with "path: what is wrong" in error.
int al_subscriber_options_from_config (al_subscriber_options_t *options, const al_config_t *config,
                                       const char *role, char *error, size_t error_size);

//  Connect with the options. Loads the certificate (missing, or without a secret key: an
//  error) and returns at once; the connection is made (and remade) in the background.
//  Subscribes to nothing yet. NULL with "what: what is wrong" in error.
al_subscriber_t *al_subscriber_new_with (const al_subscriber_options_t *options, char *error,
                                         size_t error_size);

//  Connect as ROLE with the state directory's certificate for it: defaults,
//  al_subscriber_options_from_config, al_subscriber_new_with.
al_subscriber_t *al_subscriber_new (const al_config_t *config, const char *role, char *error,
                                    size_t error_size);

//  NULL-safe; sets *self_p to NULL.
void al_subscriber_destroy (al_subscriber_t **self_p);

//  Subscribe to topics starting with TOPIC_PREFIX ("" = everything). Takes effect
//  asynchronously: what the broker publishes before its PUB socket has seen the
//  subscription is not delivered (and is not a gap either). Returns 0, or -1 if the
//  prefix is too long (> 255 bytes).
int al_subscriber_subscribe (al_subscriber_t *self, const char *topic_prefix);

//  The next envelope, waiting up to timeout_ms (-1: forever). Returns NULL on timeout or
//  once al_agent_interrupted() is true (SIGINT/SIGTERM with al_agent_catch_signals). The
//  caller owns the envelope (al_codec_free). Fills, each may be NULL: topic (truncated to
//  topic_size), the sequence, how many events of that topic were missed just before it,
//  and whether the broker restarted (al_seqtrack_feed). Frames that do not make a valid
//  event (wrong frame count, undecodable envelope, sequence not 8 bytes) are skipped,
//  counted as malformed and not fed to the tracker: a skipped event is lost evidence and
//  shows as a gap on the next event of its topic. A refused handshake does not end the
//  wait (the key may be admitted by a policy reload): al_subscriber_info says so.
al_envelope_t *al_subscriber_recv (al_subscriber_t *self, int timeout_ms, char *topic, size_t topic_size,
                                   uint64_t *sequence_p, uint64_t *missed_p, bool *restarted_p);

//  Wait up to timeout_ms until a CURVE handshake with the broker has succeeded (at once
//  if one already has). Returns 0, or -1 (al_subscriber_last_error says why, if known).
//  Events that arrive meanwhile stay queued for al_subscriber_recv.
int al_subscriber_wait_connected (al_subscriber_t *self, int timeout_ms);

typedef struct {
    bool connected;             // a handshake succeeded and no disconnect since
    bool refused;               // the broker refused our key (not in identities.yaml)
    uint64_t connections;       // handshakes succeeded
    uint64_t received;          // events handed to the caller
    uint64_t missed;            // events lost, from sequence gaps
    uint64_t restarts;          // broker restarts seen in sequences
    uint64_t malformed;         // events skipped because they were not valid
} al_subscriber_info_t;

void al_subscriber_info (al_subscriber_t *self, al_subscriber_info_t *info);

//  The last problem ("handshake with ENDPOINT failed: the broker refused this key",
//  "event.X #4: envelope: ..."), or "" if none. Copied into error.
void al_subscriber_last_error (al_subscriber_t *self, char *error, size_t error_size);

//  The PUB endpoints this subscriber connects to, as configured: one, or several
//  comma-separated (al_agent_endpoints_describe names them for a message).
const char *al_subscriber_endpoint (al_subscriber_t *self);

//  The endpoint whose broker answered the last successful handshake ("" before any):
//  with several brokers, which one the events come from.
const char *al_subscriber_answered (al_subscriber_t *self);

#ifdef __cplusplus
}
#endif

#endif
