/*  harness.h: the broker integration tests' harness: a state directory in a temporary
    directory (certificates, checkpoint key, a copy of policies/default with our own
    identities.yaml, airlock.yaml), the broker as a child process (broker_under_test),
    raw DEALER clients, and read-only looks at the audit store.

    Test-only code; not part of libairlock. Everything a fixture creates is removed by
    harness_destroy.
*/
#ifndef HARNESS_H_INCLUDED
#define HARNESS_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "proto/al_codec.h"
#include "store/al_store.h"

//  Identities the harness writes into identities.yaml (identity = name, role given).
typedef struct {
    const char *identity;
    const char *role;
} harness_identity_t;

typedef struct {
    bool tcp;                       // endpoints on tcp loopback instead of ipc://
    int heartbeat_ms;               // 0 = 200
    int max_message_bytes;          // 0 = default
    int rate_per_second;            // 0 = 100000
    int rate_burst;                 // 0 = 100000
    int checkpoint_events;          // 0 = 1000
} harness_options_t;

typedef struct {
    char dir [256];
    char config_path [300];
    char policy_dir [300];
    char database [300];
    char checkpoint_path [300];
    char router [300];
    char pub [300];
    int tcp_port;                   // router port when tcp
    char broker_public [41];        // Z85
    uint8_t checkpoint_public [32]; // the broker's Ed25519 checkpoint key
    pid_t broker_pid;
    zhashx_t *certs;                // identity → zcert_t
    harness_options_t options;      // as given to harness_new (airlock.yaml is rewritten
                                    // with fresh ports when a tcp port was taken)
} harness_t;

//  A fixture with the given identities (plus "stranger", a key NOT in identities.yaml).
harness_t *harness_new (const harness_options_t *options, const harness_identity_t *identities, size_t count);
void harness_destroy (harness_t **self_p);

//  Start broker_under_test and wait for "ready". Returns 0 or -1. With tcp endpoints, a
//  broker that exits before "ready" (another process took a port between the harness
//  choosing it and the broker binding it) is started again on fresh ports (router, pub,
//  tcp_port and airlock.yaml change).
int harness_broker_start (harness_t *self);
//  Send a signal; for SIGTERM/SIGKILL wait for exit and return the exit status (or -1
//  on a signal death other than the one sent); for other signals return 0.
int harness_broker_signal (harness_t *self, int signum);
//  Wait up to timeout_ms for the broker to exit on its own; returns its exit status, 128
//  + the signal that ended it, or -1 if it still runs (it is then left running).
int harness_broker_wait_exit (harness_t *self, int timeout_ms);

//  A CURVE DEALER for an identity's certificate, connected to the router. metadata (may
//  be NULL) is a ZMQ_METADATA property "Name:value" set before connecting.
zsock_t *harness_client (harness_t *self, const char *identity, const char *metadata);

//  Send an envelope (packed with al_codec_pack). Returns 0 or -1.
int harness_send (zsock_t *client, const al_envelope_t *envelope);
//  Receive one envelope other than a Heartbeat within timeout_ms; NULL on timeout.
al_envelope_t *harness_recv (zsock_t *client, int timeout_ms);

//  Envelopes the tests send (message id given; strings borrowed from static storage).
void harness_register (zsock_t *client, const char *message_id, bool deliveries);
void harness_deploy_request (zsock_t *client, const char *message_id, Airlock__Environment env);

//  Wait for an envelope of the given body case, skipping (and freeing) others; NULL on
//  timeout.
al_envelope_t *harness_expect (zsock_t *client, al_msg_type_t body_case, int timeout_ms);
//  Register and wait (up to timeout_ms) for the broker's Ack to it: 0 when that Ack
//  names message_id and carries its audit row (sequence > 0, a 32-byte hash), so that the
//  connection and ZAP are done; -1 (and why, on stderr) otherwise.
int harness_register_acked (zsock_t *client, const char *message_id, bool deliveries, int timeout_ms);
//  The usual start: a fixture with the given identities (which must include
//  "orchestrator" and "deploy-manager"), its broker started, an orchestrator registered
//  as "reg-o" and a deploy-manager registered as "reg-m" with deliveries. NULL (and
//  nothing left behind) if any step fails.
harness_t *harness_start_pair (const harness_identity_t *identities, size_t count,
                               zsock_t **orchestrator_p, zsock_t **manager_p);

//  Count rows of the audit log whose type equals type (NULL = any) and whose reason
//  contains needle (NULL = any) and sender equals sender (NULL = any). -1 on error.
long harness_count_rows (harness_t *self, const char *type, const char *sender, const char *needle);
//  Wait (up to timeout_ms) until harness_count_rows reaches at least minimum.
long harness_wait_rows (harness_t *self, const char *type, const char *sender, const char *needle,
                        long minimum, int timeout_ms);
//  Deliveries acknowledged in the accepted DeliveryAck rows of sender (NULL = any): one
//  DeliveryAck row may list several. -1 on error. And the wait for at least minimum.
long harness_count_delivery_acks (harness_t *self, const char *sender);
long harness_wait_delivery_acks (harness_t *self, const char *sender, long minimum, int timeout_ms);

#endif
