/*  al_notify_templates.c: bus events to notifications (see al_notify_templates.h).

    One function per event type builds the message: subject, text (the seed's template,
    filled in), and fields a machine can use. Strings the event does not carry read
    "unknown" rather than being left blank, so a reader sees what is missing. Times in
    texts are UTC.
*/
#include "agents/al_notify_templates.h"
#include "deploy/al_cost.h"
#include <assert.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *
s_or (const char *value, const char *fallback)
{
    return value && *value? value: fallback;
}

static const char *
s_known (const json_t *known, const char *key)
{
    return json_string_value (json_object_get (known, key));
}

static uint64_t
s_time_ms (const al_envelope_t *envelope, uint64_t now_ms)
{
    return envelope->timestamp_ms? envelope->timestamp_ms: now_ms;
}

//  "2026-01-30" and "10:15" (UTC).
static void
s_date_time (uint64_t time_ms, char *date, size_t date_size, char *clock, size_t clock_size)
{
    time_t seconds = (time_t) (time_ms / 1000);
    struct tm tm;
    gmtime_r (&seconds, &tm);
    strftime (date, date_size, "%Y-%m-%d", &tm);
    strftime (clock, clock_size, "%H:%M:%S", &tm);
}

static const char *
s_env_name (int environment)
{
    const char *name = environment? al_environment_name ((Airlock__Environment) environment): NULL;
    return name? name: "no environment";
}

//  "event:<audit sequence>"; without a sequence (never from a broker), the sender's
//  identity and message id, which the broker also keeps unique. Empty if neither.
static void
s_event_key (const al_envelope_t *envelope, char *key, size_t key_size)
{
    if (envelope->delivery_id)
        snprintf (key, key_size, "event:%" PRIu64, envelope->delivery_id);
    else
    if (envelope->message_id && *envelope->message_id && envelope->sender && envelope->sender->identity)
        snprintf (key, key_size, "message:%.64s:%.64s", envelope->sender->identity, envelope->message_id);
    else
        key [0] = '\0';
}

static void
s_deployment_key (const al_envelope_t *envelope, const char *template_name, char *key, size_t key_size)
{
    if (envelope->deployment_id && *envelope->deployment_id)
        snprintf (key, key_size, "deployment:%.64s:%s", envelope->deployment_id, template_name);
    else
        s_event_key (envelope, key, key_size);
}

static al_notify_message_t *
s_new (const al_envelope_t *envelope, const char *template_name, const char *key, const char *service,
       uint64_t now_ms)
{
    al_notify_message_t *message = al_notify_message_new (template_name, key);
    if (!message)
        return NULL;
    al_notify_message_set_origin (message, al_msg_type_name (envelope->body_case), envelope->delivery_id,
                                  envelope->deployment_id, (int) envelope->environment, service,
                                  s_time_ms (envelope, now_ms));
    return message;
}

static void
s_changes (al_notify_message_t *message, const json_t *known)
{
    const json_t *changes = json_object_get (known, "changes");
    size_t index;
    const json_t *change;
    size_t count = 0;
    json_array_foreach (changes, index, change) {
        if (json_string_value (change)) {
            al_notify_message_append (message, "- %s\n", json_string_value (change));
            count++;
        }
    }
    if (count == 0)
        al_notify_message_append (message, "- (no change list: no release candidate was seen for this version)\n");
}

//  ---- approval_requested ------------------------------------------------------------------

static al_notify_message_t *
s_approval_request (const al_envelope_t *envelope, uint64_t now_ms)
{
    const Airlock__ApprovalRequest *request = envelope->approval_request;
    if (request->environment != AIRLOCK__ENVIRONMENT__ENV_PRODUCTION
    &&  envelope->environment != AIRLOCK__ENVIRONMENT__ENV_PRODUCTION)
        return NULL;                    // approvals are asked for production only
    char key [AL_NOTIFY_SOURCE_KEY_MAX];
    s_event_key (envelope, key, sizeof key);
    al_notify_message_t *message = s_new (envelope, "approval_requested", key, request->service, now_ms);
    if (!message)
        return NULL;
    const char *id = s_or (request->request_id, "unknown");
    const char *type = al_deployment_type_name (request->deployment_type);
    const char *requested_by = s_or (request->requested_by,
                                     envelope->sender? s_or (envelope->sender->identity, "unknown"): "unknown");
    al_notify_message_set_subject (message, "[Approval required] %s %s to production (%s)",
                                   s_or (request->service, "unknown service"), s_or (request->version, "unknown version"),
                                   s_or (type, "unknown type"));
    al_notify_message_append (message,
        "Production Deployment Request\n"
        "Status: AWAITING HUMAN APPROVAL\n"
        "Urgency: %s\n"
        "Requested by: %s\n"
        "Request: %s\n\n"
        "Summary\n%s\n\n"
        "Risk Assessment\n"
        "- Risk level: %s\n"
        "- Impact if failure: %s\n"
        "- Mitigation: %s\n\n",
        s_or (request->urgency, "Routine"), requested_by, id, s_or (request->summary, "(none given)"),
        s_or (request->risk_level, "not assessed"), s_or (request->risk_impact, "not described"),
        s_or (request->risk_mitigation, "not described"));
    al_notify_message_append (message,
        "Artifact: %s\n"
        "Artifact sha256: %s\n"
        "QA report sha256: %s\n"
        "Migration set sha256: %s\n"
        "Strategy: %s, %u instance(s)\n",
        s_or (request->artifact_uri, "unknown"), s_or (request->artifact_sha256, "unknown"),
        s_or (request->qa_report_sha256, "unknown"), s_or (request->migration_set_sha256, "none"),
        s_or (al_strategy_name (request->strategy), "default"), request->instances);
    if (request->window_start_ms && request->window_end_ms) {
        char date [16], clock [16], end_date [16], end_clock [16];
        s_date_time (request->window_start_ms, date, sizeof date, clock, sizeof clock);
        s_date_time (request->window_end_ms, end_date, sizeof end_date, end_clock, sizeof end_clock);
        al_notify_message_append (message, "Deployment window: %s %s to %s %s UTC\n", date, clock, end_date, end_clock);
    }
    size_t checked = 0;
    for (size_t i = 0; i < request->n_checklist; i++)
        checked += request->checklist [i]->checked;
    if (request->n_checklist)
        al_notify_message_append (message, "Checklist: %zu of %zu item(s) checked\n", checked,
                                  request->n_checklist);
    al_notify_message_append (message,
        "\nRollback Plan\n"
        "- Rollback command: %s\n"
        "- Database rollback: %s\n",
        s_or (request->rollback_command, "not given"), s_or (request->rollback_migration, "none"));
    if (request->rollback_estimate_minutes)
        al_notify_message_append (message, "- Estimated rollback time: %u minute(s)\n",
                                  request->rollback_estimate_minutes);
    char command [160];
    snprintf (command, sizeof command, "airlock approve %.64s --key YOUR_KEY", id);
    al_notify_message_append (message,
        "\nACTION REQUIRED: a human must review and approve this deployment:\n"
        "  %s\n"
        "(or refuse it: airlock deny %.64s --key YOUR_KEY)\n", command, id);
    //  The command first: Slack shows the first ten fields only.
    al_notify_message_add_field (message, "approve_command", command);
    al_notify_message_add_field (message, "request_id", id);
    al_notify_message_add_field (message, "service", request->service);
    al_notify_message_add_field (message, "version", request->version);
    al_notify_message_add_field (message, "environment", "production");
    al_notify_message_add_field (message, "deployment_type", type);
    al_notify_message_add_field (message, "urgency", s_or (request->urgency, "Routine"));
    al_notify_message_add_field (message, "risk_level", request->risk_level);
    al_notify_message_add_field (message, "artifact_sha256", request->artifact_sha256);
    al_notify_message_add_field (message, "qa_report_sha256", request->qa_report_sha256);
    al_notify_message_add_field (message, "requested_by", requested_by);
    return message;
}

//  ---- pre_deployment -----------------------------------------------------------------------

static al_notify_message_t *
s_progress (const al_envelope_t *envelope, const json_t *known, uint64_t now_ms)
{
    const Airlock__DeployProgress *progress = envelope->deploy_progress;
    if (!progress->journal || progress->step != AIRLOCK__STEP__STEP_PREFLIGHT
    ||  progress->outcome != AIRLOCK__OUTCOME__OUTCOME_STARTED)
        return NULL;
    char key [AL_NOTIFY_SOURCE_KEY_MAX];
    s_deployment_key (envelope, "pre_deployment", key, sizeof key);
    const char *service = s_or (progress->service, s_or (s_known (known, "service"), "unknown service"));
    al_notify_message_t *message = s_new (envelope, "pre_deployment", key, service, now_ms);
    if (!message)
        return NULL;
    const char *version = s_or (s_known (known, "version"), "(version unknown)");
    const char *env = s_env_name ((int) envelope->environment);
    const char *deployment = s_or (envelope->deployment_id, "unknown");
    char date [16], clock [16];
    s_date_time (al_notify_message_time_ms (message), date, sizeof date, clock, sizeof clock);
    al_notify_message_set_subject (message, "[Scheduled] Deployment %s %s to %s - %s %s UTC", service, version, env,
                                   date, clock);
    al_notify_message_append (message, "Deployment of %s %s to %s is scheduled for %s at %s UTC and starts now "
                              "(deployment %s).\n\nChanges included:\n", service, version, env, date, clock, deployment);
    s_changes (message, known);
    al_notify_message_append (message,
        "\nExpected duration: until its soak ends; follow it with: airlock watch %s\n"
        "Impact: %s\n\n"
        "Contact: the on-call engineer; a rollback or an escalation is announced here.\n",
        deployment, s_or (s_known (known, "risk_impact"),
                          "minimal expected (readiness-gated rollout, automatic rollback on a quality-rule breach)"));
    al_notify_message_add_field (message, "deployment_id", envelope->deployment_id);
    al_notify_message_add_field (message, "service", service);
    al_notify_message_add_field (message, "version", s_known (known, "version"));
    al_notify_message_add_field (message, "environment", env);
    al_notify_message_add_field (message, "step", "preflight started");
    return message;
}

//  ---- receipts -----------------------------------------------------------------------------

static void
s_steps (al_notify_message_t *message, const Airlock__DeployReceipt *receipt)
{
    if (!receipt->n_steps)
        return;
    al_notify_message_append (message, "\nSteps:\n");
    for (size_t i = 0; i < receipt->n_steps; i++) {
        const Airlock__StepRecord *step = receipt->steps [i];
        double seconds = step->ended_ms >= step->started_ms? (double) (step->ended_ms - step->started_ms) / 1000: 0;
        al_notify_message_append (message, "- %s %s (%.1f s)%s%s\n", s_or (al_step_name (step->step), "step"),
                                  s_or (al_outcome_name (step->outcome), "?"), seconds,
                                  step->detail && *step->detail? ": ": "", s_or (step->detail, ""));
    }
}

static al_notify_message_t *
s_receipt (const al_envelope_t *envelope, const json_t *known, uint64_t now_ms)
{
    const Airlock__DeployReceipt *receipt = envelope->deploy_receipt;
    const char *template_name = receipt->outcome == AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED? "post_deployment"
                              : receipt->outcome == AIRLOCK__OUTCOME__OUTCOME_ROLLED_BACK? "rollback"
                              : receipt->outcome == AIRLOCK__OUTCOME__OUTCOME_FAILED? "escalation": NULL;
    if (!template_name)
        return NULL;
    char key [AL_NOTIFY_SOURCE_KEY_MAX];
    s_deployment_key (envelope, template_name, key, sizeof key);
    const char *service = s_or (receipt->service, s_or (s_known (known, "service"), "unknown service"));
    al_notify_message_t *message = s_new (envelope, template_name, key, service, now_ms);
    if (!message)
        return NULL;
    const char *version = s_or (receipt->version, s_or (s_known (known, "version"), "(version unknown)"));
    const char *env = s_env_name ((int) envelope->environment);
    const char *deployment = s_or (envelope->deployment_id, "unknown");
    char date [16], clock [16];
    s_date_time (al_notify_message_time_ms (message), date, sizeof date, clock, sizeof clock);
    if (receipt->outcome == AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED) {
        al_notify_message_set_subject (message, "[Complete] Deployment %s %s to %s", service, version, env);
        al_notify_message_append (message, "Deployment of %s %s to %s completed successfully at %s %s UTC "
                                  "(deployment %s).\n\nStatus: All systems operational\nChanges deployed:\n",
                                  service, version, env, date, clock, deployment);
        s_changes (message, known);
        s_steps (message, receipt);
        al_notify_message_append (message, "\nReceipt sha256: %s\nAny issues: contact the on-call engineer.\n",
                                  s_or (receipt->receipt_sha256, "none"));
    }
    else
    if (receipt->outcome == AIRLOCK__OUTCOME__OUTCOME_ROLLED_BACK) {
        al_notify_message_set_subject (message, "[Rolled back] Deployment %s %s to %s", service, version, env);
        al_notify_message_append (message,
            "Deployment of %s %s to %s was rolled back (deployment %s).\n\n"
            "Rollback Log\n"
            "- Reason: %s%s\n"
            "- Completed: %s %s UTC\n"
            "- Previous version: %s\n",
            service, version, env, deployment,
            receipt->rollback_rule && *receipt->rollback_rule? "quality rule breached: ": "",
            s_or (receipt->rollback_rule, "not recorded"), date, clock, s_or (receipt->previous_version, "none"));
        s_steps (message, receipt);
        al_notify_message_append (message,
            "\nPost-Rollback Actions\n"
            "1. Document what happened\n2. Analyze root cause\n3. Create fix task\n"
            "4. Update deployment checklist\n5. Review process for gaps\n"
            "\nReceipt sha256: %s\n", s_or (receipt->receipt_sha256, "none"));
        al_notify_message_add_field (message, "rollback_rule", receipt->rollback_rule);
        al_notify_message_add_field (message, "previous_version", receipt->previous_version);
    }
    else {
        const char *failed_step = NULL, *failed_detail = NULL;
        for (size_t i = 0; i < receipt->n_steps && !failed_step; i++)
            if (receipt->steps [i]->outcome == AIRLOCK__OUTCOME__OUTCOME_FAILED) {
                failed_step = al_step_name (receipt->steps [i]->step);
                failed_detail = receipt->steps [i]->detail;
            }
        al_notify_message_set_subject (message, "[Escalation] Deployment %s %s to %s failed", service, version, env);
        al_notify_message_append (message,
            "Deployment of %s %s to %s failed at %s %s UTC (deployment %s)%s%s%s%s.\n\n"
            "Escalate: a failed deployment needs a human. Check the service's health, decide on a "
            "rollback or a fix, and escalate further if it fails repeatedly or cannot be rolled back.\n",
            service, version, env, date, clock, deployment, failed_step? ", step ": "", s_or (failed_step, ""),
            failed_detail && *failed_detail? ": ": "", s_or (failed_detail, ""));
        s_steps (message, receipt);
        al_notify_message_append (message, "\nReceipt sha256: %s\n", s_or (receipt->receipt_sha256, "none"));
        al_notify_message_add_field (message, "failed_step", failed_step);
    }
    al_notify_message_add_field (message, "deployment_id", envelope->deployment_id);
    al_notify_message_add_field (message, "service", service);
    al_notify_message_add_field (message, "version", receipt->version && *receipt->version? receipt->version
                                                                                          : s_known (known, "version"));
    al_notify_message_add_field (message, "environment", env);
    al_notify_message_add_field (message, "outcome", al_outcome_name (receipt->outcome));
    al_notify_message_add_field (message, "artifact_sha256", receipt->artifact_sha256);
    al_notify_message_add_field (message, "receipt_sha256", receipt->receipt_sha256);
    return message;
}

//  ---- rollback trigger ---------------------------------------------------------------------

static al_notify_message_t *
s_trigger (const al_envelope_t *envelope, const json_t *known, uint64_t now_ms)
{
    const Airlock__RollbackTrigger *trigger = envelope->rollback_trigger;
    char key [AL_NOTIFY_SOURCE_KEY_MAX];
    s_event_key (envelope, key, sizeof key);
    const char *service = s_or (trigger->service, s_or (s_known (known, "service"), "unknown service"));
    al_notify_message_t *message = s_new (envelope, "rollback", key, service, now_ms);
    if (!message)
        return NULL;
    const char *env = s_env_name ((int) envelope->environment);
    const char *rule = s_or (trigger->rule, "unknown rule");
    char date [16], clock [16];
    s_date_time (al_notify_message_time_ms (message), date, sizeof date, clock, sizeof clock);
    al_notify_message_set_subject (message, "[Rollback started] %s in %s: %s", service, env, rule);
    al_notify_message_append (message,
        "Automatic rollback of %s%s%s in %s: quality rule %s breached.\n\n"
        "Rollback Log\n"
        "- Initiated: %s %s UTC (by %s)\n"
        "- Reason: %s\n"
        "- Deployment: %s\n",
        service, s_known (known, "version")? " ": "", s_or (s_known (known, "version"), ""), env, rule, date, clock,
        envelope->sender? s_or (envelope->sender->identity, "the monitor"): "the monitor",
        s_or (trigger->detail, rule), s_or (envelope->deployment_id, "unknown"));
    if (trigger->n_samples) {
        const Airlock__SoakSignal *last = trigger->samples [trigger->n_samples - 1];
        al_notify_message_append (message,
            "\nLast sample: error rate %.2f%%, p99 %.1f ms, CPU %.0f%%, memory %.0f%%, %u of %u instance(s) up\n",
            last->error_ratio * 100, last->latency_p99_ms, last->cpu_percent, last->memory_percent,
            last->instances_up, last->instances_total);
    }
    al_notify_message_append (message, "\nThe deploy receipt follows when the rollback has completed.\n");
    al_notify_message_add_field (message, "deployment_id", envelope->deployment_id);
    al_notify_message_add_field (message, "service", service);
    al_notify_message_add_field (message, "environment", env);
    al_notify_message_add_field (message, "rule", trigger->rule);
    al_notify_message_add_field (message, "detail", trigger->detail);
    return message;
}

//  ---- Notification -------------------------------------------------------------------------

static al_notify_message_t *
s_notification (const al_envelope_t *envelope, uint64_t now_ms)
{
    const Airlock__Notification *note = envelope->notification;
    if (!note->template_ || !*note->template_)
        return NULL;
    char key [AL_NOTIFY_SOURCE_KEY_MAX];
    s_event_key (envelope, key, sizeof key);
    const char *service = NULL;
    for (size_t i = 0; i < note->n_fields; i++)
        if (note->fields [i]->key && strcmp (note->fields [i]->key, "service") == 0)
            service = note->fields [i]->value;
    al_notify_message_t *message = s_new (envelope, note->template_, key, service, now_ms);
    if (!message)
        return NULL;
    const char *subject = s_or (note->subject, note->template_);
    if (strcmp (note->template_, "escalation") == 0 && subject [0] != '[')
        al_notify_message_set_subject (message, "[Escalation] %s", subject);
    else
        al_notify_message_set_subject (message, "%s", subject);
    if (note->text && *note->text)
        al_notify_message_append (message, "%s", note->text);
    if (strcmp (note->template_, "escalation") == 0) {
        const char *from = envelope->sender? s_or (envelope->sender->identity, "unknown"): "unknown";
        al_notify_message_append (message, "%sRaised by %s%s%s in %s. A human should look at it now.\n",
                                  note->text && *note->text? "\n\n": "", from,
                                  envelope->deployment_id && *envelope->deployment_id? " during deployment ": "",
                                  s_or (envelope->deployment_id, ""), s_env_name ((int) envelope->environment));
    }
    for (size_t i = 0; i < note->n_fields; i++)
        if (note->fields [i]->key && *note->fields [i]->key)
            al_notify_message_add_field (message, note->fields [i]->key, note->fields [i]->value);
    return message;
}

al_notify_message_t *
al_notify_templates_map (const al_envelope_t *envelope, const json_t *known, uint64_t now_ms)
{
    assert (envelope);
    switch (envelope->body_case) {
        case AIRLOCK__ENVELOPE__BODY_APPROVAL_REQUEST:
            return s_approval_request (envelope, now_ms);
        case AIRLOCK__ENVELOPE__BODY_DEPLOY_PROGRESS:
            return s_progress (envelope, known, now_ms);
        case AIRLOCK__ENVELOPE__BODY_DEPLOY_RECEIPT:
            return s_receipt (envelope, known, now_ms);
        case AIRLOCK__ENVELOPE__BODY_ROLLBACK_TRIGGER:
            return s_trigger (envelope, known, now_ms);
        case AIRLOCK__ENVELOPE__BODY_NOTIFICATION:
            return s_notification (envelope, now_ms);
        default:
            return NULL;
    }
}

al_notify_message_t *
al_notify_templates_budget_alert (const al_envelope_t *envelope, const al_policy_t *policy,
                                  const al_services_t *services, uint64_t now_ms)
{
    assert (envelope);
    if (!policy || !services)
        return NULL;
    const char *service = NULL, *id = NULL;
    unsigned instances = 0;
    Airlock__Environment env = envelope->environment;
    if (envelope->body_case == AIRLOCK__ENVELOPE__BODY_DEPLOY_REQUEST) {
        service = envelope->deploy_request->service;
        instances = envelope->deploy_request->instances;
        id = envelope->deployment_id;
    }
    else
    if (envelope->body_case == AIRLOCK__ENVELOPE__BODY_APPROVAL_REQUEST) {
        service = envelope->approval_request->service;
        instances = envelope->approval_request->instances;
        env = AIRLOCK__ENVIRONMENT__ENV_PRODUCTION;
        id = envelope->approval_request->request_id;
    }
    if (!service || !id || !*id)
        return NULL;
    const al_service_t *svc = al_services_find (services, service);
    if (!svc)
        return NULL;
    al_cost_projection_t cost;
    al_cost_project (policy, svc, env, instances, &cost);
    if (!cost.alert)
        return NULL;
    char key [AL_NOTIFY_SOURCE_KEY_MAX];
    snprintf (key, sizeof key, "budget:%.64s", id);
    al_notify_message_t *message = al_notify_message_new ("escalation", key);
    if (!message)
        return NULL;
    al_notify_message_set_origin (message, al_msg_type_name (envelope->body_case), envelope->delivery_id, id,
                                  (int) env, svc->name, s_time_ms (envelope, now_ms));
    al_notify_message_set_subject (message, "[Budget alert] %s in %s: %.0f%% of the monthly budget", svc->name,
                                   s_env_name ((int) env), cost.share_percent);
    char text [256];
    al_cost_describe (&cost, text, sizeof text);
    al_notify_message_append (message, "Deploying %s to %s projects %s.\n%s\n", svc->name, s_env_name ((int) env), text,
                              cost.over_budget? "Pre-flight will refuse this deploy (constraints.yaml monthly_budget_usd)."
                              : "Pre-flight allows it; lower the instance count or raise the budget before the next one.");
    al_notify_message_add_field (message, "service", svc->name);
    char number [64];
    snprintf (number, sizeof number, "%.2f", cost.monthly_usd);
    al_notify_message_add_field (message, "projected_usd_month", number);
    snprintf (number, sizeof number, "%.2f", cost.budget_usd);
    al_notify_message_add_field (message, "budget_usd_month", number);
    snprintf (number, sizeof number, "%.1f", cost.share_percent);
    al_notify_message_add_field (message, "share_percent", number);
    return message;
}
