/*  al_agent.h: the agent runtime: one authenticated, reliable connection to the broker.

    Every agent process and every CLI client talks to the broker through an al_agent_t.
    It connects a DEALER socket with the agent's own CURVE certificate, registers, sends
    envelopes until the broker acknowledges them (Ack) or refuses them (Denied), receives
    the deliveries the broker routes to the agent's role and acknowledges them after the
    caller has handled them, heartbeats both ways, and reconnects with backoff when the
    broker goes away. docs/agents.md is the contract for agent authors.

    Reliability: every message is kept in an outbox until its outcome arrives. It is sent
    once per connection and retransmitted with the SAME message id every retry interval
    and after every reconnect, so the broker (which de-duplicates on identity + message
    id) records it exactly once. Message ids are "<name>-<boot id>-<counter>" where the
    boot id is 64 random bits drawn when the agent is created, so ids stay unique across
    restarts. Deliveries are handed to the caller once; a redelivery of one the caller
    still holds is dropped, a redelivery of one already acknowledged is acknowledged
    again (the first DeliveryAck was lost with a connection).

    Liveness: a heartbeat every heartbeat_ms; the broker is dead after 3 intervals without
    anything from it: then the socket is destroyed and created again (with an increasing
    backoff), the agent registers again and retransmits its outbox. A broker restart is
    usually noticed sooner: every new connection (socket monitor: handshake succeeded)
    is registered and gets the outbox again. If the agent itself said nothing for 3
    intervals (a stalled process), the broker has forgotten it: it registers again.

    Failover (docs/ha.md): the endpoint option may list several brokers, comma-separated.
    Only the active broker listens; the link is on one endpoint at a time. When it is
    not up for one heartbeat interval (refused, handshake not finished, disconnected),
    or the broker said nothing for 3 intervals, the socket is remade on the NEXT
    endpoint, and the outbox goes again there behind a fresh Register (same message
    ids, so the new active broker, which shares the store, answers retransmissions of
    what the old one committed with their original outcome). The backoff grows only
    after a whole round of endpoints failed. One endpoint: as before.

    Threading: a background actor (zactor) owns the socket and does all socket work:
    heartbeats go on while the caller is busy handling a delivery. The caller's side and
    the actor share the outbox and the delivery queue under one mutex, so every function
    here may be called from any thread, also concurrently (one thread receiving and
    acknowledging deliveries while another sends is fine).
*/
#ifndef AL_AGENT_H_INCLUDED
#define AL_AGENT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "proto/al_codec.h"
#include "base/al_config.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _al_agent_t al_agent_t;

//  Size of a message id buffer (64 characters + NUL).
#define AL_AGENT_ID_SIZE 65
//  Size of path and endpoint buffers in the options.
#define AL_AGENT_PATH_SIZE 1024
//  Most broker endpoints one agent fails over between.
#define AL_AGENT_MAX_ENDPOINTS 8

//  How a connection is made and kept. al_agent_options_defaults fills every field;
//  al_agent_options_from_config fills them from airlock.yaml for a role.
typedef struct {
    char endpoint [AL_AGENT_PATH_SIZE];   // broker ROUTER, e.g. "ipc:///abs/state/broker.ipc",
                                          // or several, comma-separated, for failover (below)
    char broker_key [41];                 // the broker's CURVE public key, Z85 (40 chars)
    char cert_path [AL_AGENT_PATH_SIZE];  // own czmq certificate; secret at cert_path + "_secret"
    char name [64];                       // agent name: Register.agent_name, message id prefix
    bool subscribe_deliveries;            // take deliveries for the role (agents: true, CLI: false)
    int heartbeat_ms;                     // heartbeat interval both ways (default 1000)
    int retry_ms;                         // retransmit an unanswered message after (default 3000)
    int reconnect_ivl_ms;                 // first reconnect delay (default 250)
    int reconnect_ivl_max_ms;             // reconnect backoff ceiling (default 10000)
    int handshake_ms;                     // CURVE handshake timeout (default 5000)
    int sndhwm;                           // socket high-water marks (default 10000)
    int rcvhwm;
    size_t max_pending;                   // outbox bound: post blocks above it (default 10000)
    size_t max_reply_bytes;               // largest envelope accepted from the broker (default 4 MiB)
} al_agent_options_t;

//  Defaults for everything; endpoint, broker_key, cert_path and name are left empty.
void al_agent_options_defaults (al_agent_options_t *options);

//  Fill options for ROLE from a loaded airlock.yaml: endpoint, broker key (read from the
//  broker's public certificate), the role's certificate, heartbeat and limits. Name is
//  ROLE; subscribe_deliveries is left as it was. Returns 0, or -1 with "path: what is
//  wrong" in error (missing certificate, bad role name).
int al_agent_options_from_config (al_agent_options_t *options, const al_config_t *config,
                                  const char *role, char *error, size_t error_size);

//  Split a comma-separated endpoint list (spaces around items ignored) into at most
//  AL_AGENT_MAX_ENDPOINTS endpoints of AL_AGENT_PATH_SIZE. Returns the count (>= 1), or
//  -1 with "endpoint: what is wrong" in error (empty item, too many, not an endpoint).
int al_agent_endpoints_split (const char *list, char (*endpoints) [AL_AGENT_PATH_SIZE],
                              char *error, size_t error_size);

//  An endpoint list as a message names it: "X" for one endpoint, "any of 2 brokers (X,
//  Y)" for several (endpoints.brokers, endpoints.events; a list that does not split is
//  named as written). Into text (AL_AGENT_ENDPOINTS_TEXT_SIZE is always enough for a
//  list of options.endpoint); returns text.
#define AL_AGENT_ENDPOINTS_TEXT_SIZE (AL_AGENT_PATH_SIZE + 64)
const char *al_agent_endpoints_describe (const char *list, char *text, size_t size);

//  Connect as ROLE with the state directory's certificate for it, from a loaded
//  airlock.yaml: defaults, al_agent_options_from_config, subscribe_deliveries, then
//  al_agent_new. What every agent and CLI client does. NULL with the reason in error.
al_agent_t *al_agent_new_for_role (const al_config_t *config, const char *role, bool subscribe_deliveries,
                                   char *error, size_t error_size);

//  Connect. Loads the certificate (a missing or unreadable one is an error), starts the
//  actor and returns at once; the connection, the registration and the retransmission
//  happen in the background. Returns NULL with "what: what is wrong" in error.
al_agent_t *al_agent_new (const al_agent_options_t *options, char *error, size_t error_size);

//  Stop the actor and close the connection. Messages still in the outbox are dropped:
//  call al_agent_flush first to wait for them. NULL-safe; sets *self_p to NULL.
void al_agent_destroy (al_agent_t **self_p);

//  Outcome of a message.
typedef enum {
    AL_AGENT_ACKED = 0,          // the broker committed it (audit_sequence, audit_hash)
    AL_AGENT_DENIED,             // the broker refused it (deny_code, reason; also audited)
    AL_AGENT_TIMEOUT,            // no outcome in time; the message stays in the outbox
    AL_AGENT_INVALID,            // the envelope does not pack (reason says why); not sent
    AL_AGENT_QUEUED,             // post: in the outbox; the outcome comes later
    AL_AGENT_BUSY                // post: the outbox stayed full
} al_agent_status_t;

typedef struct {
    al_agent_status_t status;
    char message_id [AL_AGENT_ID_SIZE];
    uint64_t audit_sequence;     // Ack or Denied: the audit row (0 if the denial was not recorded)
    uint8_t audit_hash [32];     // Ack: hash of that row
    bool duplicate;              // Ack: a retransmission answered with the original outcome
    Airlock__DenyCode deny_code; // Denied
    char reason [512];           // Denied: the broker's reason; INVALID: the codec's;
                                 // Ack: the broker's detail (the approval gate's outcome), if any
} al_agent_result_t;

//  Text for a status ("acked", "denied", ...).
const char *al_agent_status_name (al_agent_status_t status);

//  Send ENVELOPE and wait up to timeout_ms (-1: forever) for its outcome. The envelope
//  is borrowed; the runtime sets its message id (unless the caller set one, which must
//  then be unique for this sender across restarts; set timestamp_ms too, so that a resend
//  after a crash is byte-identical) and its timestamp if zero, in a copy.
//  On AL_AGENT_TIMEOUT the message stays in the outbox and is still retransmitted until
//  the broker answers; that late outcome is discarded.
al_agent_status_t al_agent_send (al_agent_t *self, const al_envelope_t *envelope,
                                 int timeout_ms, al_agent_result_t *result);

//  Pipelining: queue ENVELOPE and return at once with its id in message_id (a buffer of
//  AL_AGENT_ID_SIZE, may be NULL). Blocks up to timeout_ms while the outbox holds
//  max_pending messages. Returns AL_AGENT_QUEUED, AL_AGENT_BUSY when the outbox stayed
//  full, or AL_AGENT_INVALID (with the codec's reason in error) for an envelope that does
//  not pack. Every posted message's outcome must be collected, with al_agent_wait or
//  al_agent_next_result.
al_agent_status_t al_agent_post (al_agent_t *self, const al_envelope_t *envelope,
                                 int timeout_ms, char *message_id, char *error, size_t error_size);

//  Wait up to timeout_ms for the outcome of the posted message MESSAGE_ID. Returns its
//  status (AL_AGENT_TIMEOUT: not yet; AL_AGENT_INVALID: no such posted message).
al_agent_status_t al_agent_wait (al_agent_t *self, const char *message_id, int timeout_ms,
                                 al_agent_result_t *result);

//  Wait up to timeout_ms for the next outcome of any posted message, in the order
//  outcomes arrive. Returns its status, or AL_AGENT_TIMEOUT.
al_agent_status_t al_agent_next_result (al_agent_t *self, int timeout_ms, al_agent_result_t *result);

//  Messages in the outbox without an outcome yet (posted and sent ones).
size_t al_agent_pending (al_agent_t *self);

//  Wait up to timeout_ms until the outbox holds no message without an outcome and every
//  delivery acknowledgement has been handed to the socket. Returns 0, or -1 on timeout.
int al_agent_flush (al_agent_t *self, int timeout_ms);

//  The next delivery (or other routed envelope) for this agent, waiting up to timeout_ms
//  (-1: forever). Returns NULL on timeout or when al_agent_interrupted() became true.
//  The caller owns the envelope (al_codec_free). If its delivery_id is not zero the
//  caller must call al_agent_ack_delivery once it has handled it; until then the broker
//  keeps it queued and redelivers it if this agent goes away.
al_envelope_t *al_agent_recv (al_agent_t *self, int timeout_ms);

//  Acknowledge a handled delivery (queued; the actor sends what is queued as one
//  DeliveryAck listing up to AL_CODEC_MAX_DELIVERY_ACK_IDS ids; the broker answers nothing).
//  Returns 0, or -1 if DELIVERY_ID is not a delivery this agent holds.
int al_agent_ack_delivery (al_agent_t *self, uint64_t delivery_id);

//  Ask the broker (StatusQuery{what, filter, limit}) and wait up to timeout_ms for its
//  StatusReply. Returns the reply envelope (body status_reply; caller frees it with
//  al_codec_free), or NULL with result->status saying why (TIMEOUT, DENIED, INVALID).
al_envelope_t *al_agent_status_query (al_agent_t *self, const char *what, const char *filter,
                                      uint32_t limit, int timeout_ms, al_agent_result_t *result);

//  Wait up to timeout_ms until the broker has acknowledged this connection's Register.
//  Returns 0, or -1 (see al_agent_last_error for why, if anything went wrong).
int al_agent_wait_registered (al_agent_t *self, int timeout_ms);

//  What the runtime has seen so far (for status output and tests).
typedef struct {
    bool connected;                 // a CURVE handshake succeeded and the link is up
    bool registered;                // the broker acknowledged Register on this link
    uint64_t registrations;         // Register messages acknowledged, over all links
    uint64_t connections;           // links established (handshakes succeeded)
    uint64_t socket_recreations;    // times the broker was declared dead and the socket remade
    uint64_t heartbeats_sent;
    uint64_t heartbeats_received;
    uint64_t retransmissions;       // messages sent again with the same id
    uint64_t deliveries_received;   // deliveries handed to the caller
    uint64_t redeliveries;          // deliveries that came again (dropped, or acknowledged again)
    int64_t last_broker_ms;         // monotonic ms of the last envelope from the broker (0: never)
    uint64_t endpoint_switches;     // times the link moved on to the next broker endpoint
    size_t endpoint_index;          // the endpoint the link is on (0-based, in the list)
    size_t pending;                 // outbox messages without an outcome
} al_agent_info_t;

void al_agent_info (al_agent_t *self, al_agent_info_t *info);

//  The broker endpoint the link is on (endpoints [endpoint_index]; the one that answered
//  while info.connected), copied into endpoint. Returns endpoint.
const char *al_agent_endpoint (al_agent_t *self, char *endpoint, size_t endpoint_size);

//  Every broker endpoint the agent tries (options.endpoint), as al_agent_endpoints_describe
//  names them for a message ("no answer from the broker at %s"). Returns text.
const char *al_agent_brokers (al_agent_t *self, char *text, size_t size);

//  The last connection problem ("handshake with ENDPOINT failed: authentication refused"),
//  or "" if none. Copied into error.
void al_agent_last_error (al_agent_t *self, char *error, size_t error_size);

//  Clean shutdown: install handlers for SIGTERM and SIGINT (through czmq) that set a
//  flag; a run loop checks al_agent_interrupted() and, when set, stops taking work,
//  calls al_agent_flush and al_agent_destroy. al_agent_recv returns NULL once set; sends,
//  waits and flushes are bounded by their own timeouts so the shutdown can finish.
void al_agent_catch_signals (void);
bool al_agent_interrupted (void);
//  For tests and embedding: set or clear the flag as a signal would.
void al_agent_set_interrupted (bool interrupted);

#ifdef __cplusplus
}
#endif

#endif
