/*  al_agent_int.h: internals shared by the agent runtime's files, never installed.

    al_agent.c is the caller's side (outbox entries, waits, the public API),
    al_agent_link.c the actor (the DEALER socket, heartbeats, failover between broker
    endpoints), al_agent_options.c the options and their checks. The struct below is
    shared by both threads under its mutex (see al_agent.c for the outbox invariants).
    Names with a double underscore are these internals; they are not part of al_agent.h.
*/
#ifndef AL_AGENT_INT_H_INCLUDED
#define AL_AGENT_INT_H_INCLUDED

#include "agents/al_agent.h"
#include "base/al_clock.h"
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
#define AL_AGENT_ACKED_RING 4096
//  Software version sent in Register.
#define AL_AGENT_VERSION "0.1.0"

typedef enum {
    AL_AGENT_KIND_POSTED,      // al_agent_post: outcome collected by wait / next_result
    AL_AGENT_KIND_SYNC,        // al_agent_send: outcome collected by the sender
    AL_AGENT_KIND_STATUS,      // al_agent_status_query: completed by the StatusReply
    AL_AGENT_KIND_REGISTER     // internal: the link's registration
} al_agent_kind_t;

typedef struct {
    char id [AL_AGENT_ID_SIZE];
    al_agent_kind_t kind;
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
} al_agent_entry_t;

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
    zhashx_t *entries;          // id -> al_agent_entry_t, owns them
    zlistx_t *unsent;           // al_agent_entry_t *, to send on the current link
    zlistx_t *inflight;         // al_agent_entry_t *, sent on the current link, oldest first
    zlistx_t *completed;        // posted al_agent_entry_t * with an outcome, arrival order
    size_t pending;             // user entries without an outcome
    char register_id [AL_AGENT_ID_SIZE];   // the current link's Register, "" if none
    zlistx_t *deliveries;       // al_envelope_t *, for al_agent_recv
    zhashx_t *held;             // delivery ids (decimal) queued or handed out, not acked
    uint64_t acked_ring [AL_AGENT_ACKED_RING];
    size_t acked_next;
    uint64_t *ack_queue;        // DeliveryAcks to send
    size_t ack_count;
    size_t ack_capacity;
    int64_t last_rx_ms;         // last envelope from the broker (monotonic)
    int64_t last_tx_ms;         // last frame handed to the socket on this link (0: none)
    int64_t backoff_ms;         // extra wait before the next socket remake
    uint64_t heartbeat_sequence;
    al_agent_info_t info;
    //  Failover: the broker endpoints from options.endpoint, tried in order; the link
    //  is on endpoints [endpoint_index]. link_down_ms: since when the link is not up
    //  (the socket was made, or it disconnected); with several endpoints, a link not up
    //  for a heartbeat interval (plus backoff) moves on to the next endpoint.
    char (*endpoints) [AL_AGENT_PATH_SIZE];
    size_t endpoint_count;
    size_t endpoint_index;
    int64_t link_down_ms;
    char last_error [512];
    char start_error [512];     // the actor could not make its first socket
};

//  snprintf into an error buffer; truncation of an error text is acceptable.
void al_agent__format (char *target, size_t size, const char *format, ...);
//  Under the lock: the next message id.
void al_agent__next_id (al_agent_t *self, char *id);
//  Under the lock: make sure the actor looks at the shared state soon.
void al_agent__wake (al_agent_t *self);
//  Under the lock: take an entry out of the send lists.
void al_agent__entry_unlist (al_agent_t *self, al_agent_entry_t *entry);
//  Under the lock: the entry has its outcome (in entry->result). Wake waiters.
void al_agent__entry_finish (al_agent_t *self, al_agent_entry_t *entry);
//  Under the lock: queue a DeliveryAck for the actor.
void al_agent__queue_delivery_ack (al_agent_t *self, uint64_t delivery_id);
//  Check options before a connection is made. 0, or -1 with the field at fault in error.
int al_agent__options_check (const al_agent_options_t *options, char *error, size_t error_size);
//  The actor (zactor_fn): args is the al_agent_t.
void al_agent__actor (zsock_t *pipe, void *args);

//  What the agent runtime and the subscriber (al_subscriber.c) share: both are CURVE
//  clients of the broker, configured from airlock.yaml the same way.

//  Copy VALUE into TARGET (TARGET_SIZE bytes). 0, or -1 with "WHAT: longer than ...".
int al_agent__copy (char *target, size_t target_size, const char *value, const char *what,
                    char *error, size_t error_size);
//  ROLE's CURVE identity from a loaded airlock.yaml: ENDPOINTS (FIELD names it in errors)
//  into endpoint, the broker's public key into broker_key (41 bytes) and ROLE's
//  certificate path into cert_path; endpoint and cert_path are AL_AGENT_PATH_SIZE.
//  0, or -1 with the field at fault in error.
int al_agent__identity_from_config (const al_config_t *config, const char *role,
                                    const char *endpoints, const char *field, char *endpoint,
                                    char *broker_key, char *cert_path,
                                    char *error, size_t error_size);
//  Load the certificate at CERT_PATH with its secret half, which must be its owner's
//  alone. The certificate, or NULL with the reason in error.
zcert_t *al_agent__cert_load (const char *cert_path, char *error, size_t error_size);
//  Watch SOCKET's handshakes and disconnections: *monitor is a new PAIR that receives
//  the events (NAME makes its inproc endpoint readable). 0, or -1 with the reason.
int al_agent__socket_monitor (zsock_t *socket, const char *name, zsock_t **monitor,
                              char *error, size_t error_size);
//  Read one pending event from MONITOR without blocking: its number into *event and the
//  endpoint it is about into ADDRESS ("" if unknown or longer than ADDRESS_SIZE). false
//  when none is waiting.
bool al_agent__monitor_event (zsock_t *monitor, uint16_t *event, char *address,
                              size_t address_size);
//  When EVENT is a failed handshake with ENDPOINT, say why into error (OWN_KEY: this
//  client's public key; BROKER_KEY: the key it expected) and return true.
bool al_agent__handshake_failure (uint16_t event, const char *endpoint, const char *own_key,
                                  const char *broker_key, char *error, size_t error_size);

#endif
