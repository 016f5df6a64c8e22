/*  al_broker.h: the airlock broker: authenticate, decide, audit, acknowledge, route.

    The broker binds a ROUTER for clients and a PUB for events, both CURVE servers whose
    ZAP handler admits exactly the keys of the policy's identities.yaml. Each inbound
    envelope is decoded, judged (identity from the ZAP User-Id → policy; rate limit;
    permission table), appended to the audit log in a group-commit batch, committed,
    and only then acknowledged (Ack or Denied) and routed through the store's durable
    per-role delivery queue. See docs/broker.md for the details and the choices made.

    Threading: an al_broker_t is used by the thread that created it. al_broker_request_stop
    and al_broker_request_reload only set flags and are async-signal-safe; the loop in
    al_broker_run acts on them.
*/
#ifndef AL_BROKER_H_INCLUDED
#define AL_BROKER_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "base/al_config.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _al_broker_t al_broker_t;

//  Create a broker from a configuration (borrowed: it must outlive the broker): loads
//  the policy, the broker certificate and the checkpoint key, opens the audit store,
//  starts the ZAP handler, binds both endpoints with CURVE, ZAP domain "airlock" and
//  domain enforcement read back as on, and audits the policy digest. Returns NULL with
//  "what: why" in error if any of that fails: the broker never runs half-secured.
al_broker_t *al_broker_new (const al_config_t *config, char *error, size_t error_size);

//  Drain what is already received, commit it, close sockets and the store. NULL-safe.
void al_broker_destroy (al_broker_t **self_p);

//  Run until a stop is requested (then drain, commit, return 0) or the audit store
//  fails (return -1: a broker that cannot write its log must not accept messages), or
//  the log no longer holds the head the broker's own last commit left, i.e. it was
//  changed under the running broker (return -1 after writing the incident file below:
//  nothing is chained onto, acknowledged over or checkpointed for a changed log).
int al_broker_run (al_broker_t *self);
//  The plain-text incident file beside the audit database ("DATABASE.incident") where
//  the broker says why it stopped when it found the log changed under it. Freshly
//  allocated (the caller frees it), NULL when out of memory.
char *al_broker_incident_path (const al_config_t *config);

//  The Notification template of the ApprovalClosed row the broker delivers to the
//  orchestrator when a required approver's DENY closes a production request.
#define AL_BROKER_APPROVAL_CLOSED_TEMPLATE "approval_closed"

//  Async-signal-safe requests handled by the loop.
void al_broker_request_stop (al_broker_t *self);
void al_broker_request_reload (al_broker_t *self);

//  Reload the policy now. On success the new policy answers from the next message on
//  (ZAP included) and a PolicyLoaded row records its digest; on failure the old policy
//  stays and a PolicyReloadFailed row records why. Returns 0 or -1.
int al_broker_reload (al_broker_t *self);

//  Route SIGTERM and SIGINT to al_broker_request_stop and SIGHUP to
//  al_broker_request_reload for this broker (one broker per process), ignore SIGPIPE,
//  and disable czmq's own SIGINT handler.
void al_broker_handle_signals (al_broker_t *self);

//  The destination role of an accepted message type (the routing table in docs/broker.md), or NULL
//  when the broker itself answers or keeps it.
const char *al_broker_route_for (const char *type_name);

#ifdef __cplusplus
}
#endif

#endif
