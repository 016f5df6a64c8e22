/*  al_notify_templates.h: which bus events become which notification, and their words.

    The communication templates of seed 004 (pre-deployment, post-deployment) and seed
    001's wording (the production deployment request, the rollback procedure), applied
    to what the broker publishes and routes:
      approval_requested  ApprovalRequest for production: service, version, artifact
                          digest, summary, risk, rollback plan and the command a human
                          runs: `airlock approve <request id>`;
      pre_deployment      the first journal DeployProgress of a deployment (preflight
                          started);
      post_deployment     DeployReceipt with outcome succeeded;
      rollback            DeployReceipt rolled_back (with its rule and the previous
                          version), and the monitor's RollbackTrigger;
      escalation          Notification with template "escalation" (the monitor's
                          "investigate"), and DeployReceipt failed.
    A Notification with another template is sent as that template with its own subject,
    text and fields. Everything else makes no notification.

    The source key names the event so that it is notified once, whatever path it came by
    (a delivery and its PUB copy carry the same audit sequence) and however often:
    "deployment:<id>:<template>" for the once-per-deployment templates (pre_deployment,
    and a receipt's), "event:<audit sequence>" for the others.

    Pure functions: thread-safe.
*/
#ifndef AL_NOTIFY_TEMPLATES_H_INCLUDED
#define AL_NOTIFY_TEMPLATES_H_INCLUDED

#include <jansson.h>
#include "agents/al_notify_message.h"
#include "deploy/al_services.h"
#include "policies/al_policy.h"
#include "proto/al_codec.h"

#ifdef __cplusplus
extern "C" {
#endif

//  The notification an event makes, or NULL if it makes none. known (may be NULL) is
//  what the notifier remembers of the event's deployment (al_notify_outbox_recall):
//  an object with any of "service", "version", "environment", "summary", "risk_impact"
//  and "changes" (a list of strings); it fills what the event itself does not carry
//  (a DeployProgress has no version). now_ms is used when the envelope has no time.
al_notify_message_t *al_notify_templates_map (const al_envelope_t *envelope, const json_t *known, uint64_t now_ms);

//  Seed 002's budget alert: for a deploy about to happen (a DeployRequest, or a
//  production ApprovalRequest), an "escalation" titled "Budget alert" when its projected
//  monthly cost (al_cost_project: instances x services.yaml cost_per_instance_usd_month)
//  reaches constraints.yaml's budget_alert_percent of the environment's budget; NULL
//  otherwise (another event, an unknown service, a projection below the share). Its
//  source key is "budget:<deployment or request id>", so the event's delivery and its
//  PUB copy alert once.
al_notify_message_t *al_notify_templates_budget_alert (const al_envelope_t *envelope, const al_policy_t *policy,
                                                       const al_services_t *services, uint64_t now_ms);

#ifdef __cplusplus
}
#endif

#endif
