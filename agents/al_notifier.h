/*  al_notifier.h: the notifier agent: bus events in, webhooks out, nothing lost.

    It connects to the broker as the notifier role: it takes the deliveries routed to it
    (ApprovalRequest, Notification) and subscribes to the events it announces on the PUB
    socket (event.ApprovalRequest, event.Notification, event.DeployProgress,
    event.DeployReceipt, event.RollbackTrigger) and to those it learns deployments from
    (event.DeployRequest, event.ReleaseCandidate). Each event that makes a notification
    (al_notify_templates.h) is rendered for every endpoint of STATE_DIR/notifications.yaml
    that wants it (al_notify_config.h, al_notify_format.h) and stored, with the event's
    source key, in the notifier's outbox STATE_DIR/notifier/outbox.db in one transaction
    (al_notify_outbox.h); only then is a delivery acknowledged to the broker. A sending
    thread delivers the outbox with retries (al_notify_sender.h). An event seen again (its
    PUB copy, a redelivery, a restart) finds its source key and makes nothing new.

    No notifications.yaml: no endpoints; the notifier still runs, acknowledges what it
    is given and says it has nothing to send. An invalid one: it does not start.
    One notifier runs per state directory (a lock file, STATE_DIR/notifier/lock).

    Limit: PUB/SUB is not durable. Events published while no notifier is subscribed
    (DeployProgress, DeployReceipt, RollbackTrigger) are not seen; a sequence gap is
    logged with its topic and size. ApprovalRequest and Notification come as durable
    deliveries and are never missed.

    Threading: runs on the calling thread until al_agent_interrupted(); the sender has
    its own thread.
*/
#ifndef AL_NOTIFIER_H_INCLUDED
#define AL_NOTIFIER_H_INCLUDED

#include <stddef.h>
#include "base/al_config.h"

#ifdef __cplusplus
extern "C" {
#endif

//  Run the notifier with a loaded airlock.yaml until interrupted. Returns 0 after a
//  clean shutdown, 2 when it cannot start (error says why: notifications.yaml, a secret,
//  the outbox, the lock, the certificate).
int al_notifier_run (const al_config_t *config, char *error, size_t error_size);

//  The notifier's configuration file, STATE_DIR/notifications.yaml (caller frees; NULL
//  when out of memory). A missing file means no endpoints.
char *al_notifier_config_path (const al_config_t *config);

#ifdef __cplusplus
}
#endif

#endif
