/*  al_request_view.c: a pending production request as a human approver sees it (see
    al_request_view.h).

    Every string taken from the request goes through al_text_escape before it is
    printed or put in JSON, facts included: the codec already bounds ids, digests and
    URIs to visible ASCII, so for those the escape is a no-op, and for the rest
    (version, requester, everything the orchestrator wrote) it is the protection.
    Stateless. The context (al_request_view_context_load) reads the policy, services.yaml
    and the QA report as they are on disk now.
*/
#include "agents/al_request_view.h"
#include "base/al_clock.h"
#include "base/al_config.h"
#include "base/al_text.h"
#include "deploy/al_deployer.h"
#include "deploy/al_qa_reports.h"
#include "deploy/al_services.h"
#include "policies/al_approval_gate.h"
#include "policies/al_policy.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

//  Print label and the escaped value (fallback when the value is empty).
static void
s_line (FILE *out, const char *prefix, const char *label, const char *value, const char *fallback)
{
    const char *shown = value && *value ? value : fallback;
    char *escaped = al_text_escape (shown);
    fprintf (out, "%s%s: %s\n", prefix, label, escaped ? escaped : "(out of memory)");
    free (escaped);
}

static const char *
s_or (const char *name, const char *fallback)
{
    return name ? name : fallback;
}

void
al_request_view_print (FILE *out, const Airlock__ApprovalRequest *request, const al_request_view_context_t *context)
{
    assert (out && request);
    al_request_view_context_t none = { NULL, NULL, NULL, NULL, NULL };
    if (!context)
        context = &none;
    fprintf (out, "## Production Deployment Request\n\n**Status**: AWAITING HUMAN APPROVAL\n\n");

    fprintf (out, "### Checked by airlock (your signature binds request, environment, service, type and digests)\n");
    s_line (out, "- ", "Request", request->request_id, "(none)");
    s_line (out, "- ", "Environment", s_or (al_environment_name (request->environment), "unknown"), NULL);
    s_line (out, "- ", "Service", request->service, "(none)");
    s_line (out, "- ", "Deployment type", s_or (al_deployment_type_name (request->deployment_type), "unknown"), NULL);
    s_line (out, "- ", "Artifact sha256", request->artifact_sha256, "(none)");
    if (al_approval_gate_no_qa_report (request))
        fprintf (out, "- QA report: NONE (no staging run stands behind this request)\n");
    else
        s_line (out, "- ", "QA report sha256", request->qa_report_sha256, "(none)");
    if (!al_approval_gate_no_qa_report (request))
        s_line (out, "- ", "Security scan", context->scan, "unknown (the QA report could not be read here)");
    s_line (out, "- ", "Database changes", request->migration_set_sha256, "none (no migration set)");
    s_line (out, "- ", "Version", request->version, "(none)");
    s_line (out, "- ", "Artifact", request->artifact_uri, "(none)");
    fprintf (out, "- Strategy: %s, %u instance(s)\n", s_or (al_strategy_name (request->strategy), "unknown"),
             request->instances);
    char requested_by [300];
    snprintf (requested_by, sizeof requested_by, "%s (the authenticated sender)",
              *request->requested_by ? request->requested_by : "(unknown)");
    s_line (out, "- ", "Requested by", requested_by, NULL);
    char submitted_by [300];
    snprintf (submitted_by, sizeof submitted_by, "%s (the identity that sent the release; four eyes: its "
              "person cannot approve)", *request->submitted_by ? request->submitted_by : "(not recorded)");
    s_line (out, "- ", "Submitted by", submitted_by, NULL);
    s_line (out, "- ", "Deployment window", context->window, "unknown (the policy could not be read)");
    s_line (out, "- ", "Freeze", context->freeze, "unknown (the policy could not be read)");
    s_line (out, "- ", "Quorum", context->quorum, "unknown (the policy could not be read)");
    if (context->soak)
        s_line (out, "- ", "Soak after the rollout", context->soak, NULL);

    fprintf (out, "\n### Agent-written text (unverified; shown escaped: \\n is a line break, "
                  "\\u{...} an invisible or control character)\n");
    const char *p = AL_REQUEST_VIEW_AGENT_PREFIX;
    s_line (out, p, "Summary", request->summary, "(none given)");
    s_line (out, p, "Urgency", request->urgency, "(not given)");
    s_line (out, p, "Risk level", request->risk_level, "(not given)");
    s_line (out, p, "Impact if failure", request->risk_impact, "(not given)");
    s_line (out, p, "Mitigation", request->risk_mitigation, "(not given)");
    s_line (out, p, "Rollback command", request->rollback_command, "(not given)");
    s_line (out, p, "Database rollback", request->rollback_migration, "(none)");
    fprintf (out, "%sEstimated rollback time: %u min\n", p, request->rollback_estimate_minutes);
    if (request->n_checklist) {
        fprintf (out, "%sChecklist (ticked by the orchestrator):\n", p);
        const char *section = NULL;
        for (size_t i = 0; i < request->n_checklist; i++) {
            const Airlock__ChecklistItem *item = request->checklist [i];
            if (!section || strcmp (item->section, section) != 0) {
                char *escaped = al_text_escape (item->section);
                fprintf (out, "%s  %s:\n", p, escaped ? escaped : "(out of memory)");
                free (escaped);
                section = item->section;
            }
            char *escaped = al_text_escape (item->text);
            //  [-]: a box the orchestrator says does not apply (al_checklist.h).
            bool not_applicable = !item->checked && item->text
                               && strncmp (item->text, "not applicable: ", 16) == 0;
            fprintf (out, "%s    - [%c] %s\n", p, item->checked ? 'x' : not_applicable ? '-' : ' ',
                     escaped ? escaped : "(out of memory)");
            free (escaped);
        }
    }
    fprintf (out, "\n");
}

//  Set key to the escaped form of value in object; false if memory runs out.
static bool
s_set_escaped (json_t *object, const char *key, const char *value)
{
    char *escaped = al_text_escape (value ? value : "");
    bool set = escaped && json_object_set_new (object, key, json_string (escaped)) == 0;
    free (escaped);
    return set;
}

json_t *
al_request_view_json (const Airlock__ApprovalRequest *request)
{
    assert (request);
    json_t *facts = json_object ();
    json_t *agent_text = json_object ();
    json_t *checklist = json_array ();
    json_t *document = NULL;
    if (!facts || !agent_text || !checklist)
        goto cleanup;
    const char *no_report = al_approval_gate_no_qa_report (request) ? "none" : NULL;
    struct { const char *key, *value; } fact_strings [] = {
        { "request_id", request->request_id },
        { "environment", s_or (al_environment_name (request->environment), "unknown") },
        { "service", request->service },
        { "deployment_type", s_or (al_deployment_type_name (request->deployment_type), "unknown") },
        { "artifact_sha256", request->artifact_sha256 },
        { "qa_report_sha256", no_report ? no_report : request->qa_report_sha256 },
        { "migration_set_sha256", request->migration_set_sha256 },
        { "version", request->version },
        { "artifact_uri", request->artifact_uri },
        { "strategy", s_or (al_strategy_name (request->strategy), "unknown") },
        { "requested_by", request->requested_by },
        { "submitted_by", request->submitted_by },
    };
    for (size_t i = 0; i < sizeof fact_strings / sizeof fact_strings [0]; i++)
        if (!s_set_escaped (facts, fact_strings [i].key, fact_strings [i].value))
            goto cleanup;
    if (json_object_set_new (facts, "instances", json_integer (request->instances))
    ||  json_object_set_new (facts, "window_start_ms", json_integer ((json_int_t) request->window_start_ms))
    ||  json_object_set_new (facts, "window_end_ms", json_integer ((json_int_t) request->window_end_ms)))
        goto cleanup;
    struct { const char *key, *value; } agent_strings [] = {
        { "summary", request->summary }, { "urgency", request->urgency },
        { "risk_level", request->risk_level }, { "risk_impact", request->risk_impact },
        { "risk_mitigation", request->risk_mitigation }, { "rollback_command", request->rollback_command },
        { "rollback_migration", request->rollback_migration },
    };
    for (size_t i = 0; i < sizeof agent_strings / sizeof agent_strings [0]; i++)
        if (!s_set_escaped (agent_text, agent_strings [i].key, agent_strings [i].value))
            goto cleanup;
    if (json_object_set_new (agent_text, "rollback_estimate_minutes", json_integer (request->rollback_estimate_minutes)))
        goto cleanup;
    for (size_t i = 0; i < request->n_checklist; i++) {
        json_t *item = json_object ();
        if (!item || json_array_append_new (checklist, item)
        ||  !s_set_escaped (item, "section", request->checklist [i]->section)
        ||  !s_set_escaped (item, "text", request->checklist [i]->text)
        ||  json_object_set_new (item, "checked", json_boolean (request->checklist [i]->checked)))
            goto cleanup;
    }
    if (json_object_set (agent_text, "checklist", checklist))
        goto cleanup;
    char *request_id = al_text_escape (request->request_id);
    char approve [200];
    snprintf (approve, sizeof approve, "airlock approve %s", request_id ? request_id : "");
    free (request_id);
    document = json_pack ("{s:O, s:O, s:s}", "facts", facts, "agent_text", agent_text, "approve_with", approve);

cleanup:
    json_decref (checklist);
    json_decref (agent_text);
    json_decref (facts);
    return document;
}

//  ---- the context from the policy and services.yaml as loaded now ----------------------

//  "1 manager + 1 security", plus the skip-staging signatures when the request has no QA
//  report and its type requires staging.
static void
s_quorum_text (const al_policy_t *policy, const Airlock__ApprovalRequest *request, char *text, size_t size)
{
    size_t used = 0;
    text [0] = '\0';
    al_policy_quorum_t quorum = al_policy_quorum (policy, request->deployment_type);
    for (size_t i = 0; i < quorum.count && used < size; i++)
        used += (size_t) snprintf (text + used, size - used, "%s%u %s", i ? " + " : "",
                                   quorum.entries [i].count, quorum.entries [i].role);
    if (al_approval_gate_no_qa_report (request) && al_policy_requires_staging (policy, request->deployment_type)) {
        al_policy_quorum_t skip = al_policy_skip_staging_quorum (policy, request->deployment_type);
        for (size_t i = 0; i < skip.count && used < size; i++)
            used += (size_t) snprintf (text + used, size - used, " + %u %s (to skip staging)",
                                       skip.entries [i].count, skip.entries [i].role);
    }
    if (quorum.count == 0)
        snprintf (text, size, "none defined for this deployment type (the gate refuses it)");
}

//  The soak the deploy will run (al_deployer_soak_ms, what deploy-manager runs), its
//  checkpoints, and the reason when services.yaml shortens it. False if services.yaml
//  cannot be read or does not name the service.
static bool
s_soak_text (const al_policy_t *policy, const al_config_t *config, const Airlock__ApprovalRequest *request,
             char *text, size_t size)
{
    char error [512];
    al_services_t *services = al_services_load (al_config_services_path (config), error, sizeof error);
    const al_service_t *svc = services? al_services_find (services, request->service): NULL;
    if (svc) {
        bool shortened = false;
        char why [400];
        int64_t ms = al_deployer_soak_ms (policy, svc, request->environment, &shortened, why, sizeof why);
        const al_policy_soak_t *soak = al_policy_soak (policy);
        size_t reached = 0;
        for (size_t i = 0; i < soak->checkpoint_count; i++)
            reached += soak->checkpoints_ms [i] <= ms;
        snprintf (text, size, "%s%.1f s, %zu of %zu checkpoint(s) inside it (%s)", shortened? "SHORTENED to ": "",
                  (double) ms / 1000.0, reached, soak->checkpoint_count, why);
    }
    al_services_destroy (&services);
    return svc != NULL;
}

bool
al_request_view_context_load (const Airlock__ApprovalRequest *request, const al_config_t *config,
                              al_request_view_context_text_t *text, al_request_view_context_t *context)
{
    char *window = text->window, *freeze = text->freeze, *quorum = text->quorum, *soak = text->soak,
         *scan = text->scan;
    window [0] = freeze [0] = quorum [0] = soak [0] = scan [0] = '\0';
    *context = (al_request_view_context_t) { NULL, NULL, NULL, NULL, NULL };
    al_policy_t *policy = al_policy_load (al_config_policy_dir (config), NULL);
    if (!policy)
        return false;
    char explanation [256] = "";
    time_t now = (time_t) al_clock_wall_s ();
    bool open = al_policy_window_open (policy, request->environment, now, explanation, sizeof explanation);
    al_policy_freeze_t frozen = al_policy_freeze_check (policy, request->environment, now, freeze,
                                                        sizeof text->freeze);
    bool required = al_policy_requires_window (policy, request->deployment_type);
    snprintf (window, sizeof text->window, "%s: %s%s", open ? "open" : "closed", explanation,
              open ? "" : required ? " (required: the gate refuses this deployment type outside a window)"
                                   : " (not required for this deployment type)");
    if (frozen == AL_POLICY_FREEZE_NONE)
        snprintf (freeze, sizeof text->freeze, "none");
    s_quorum_text (policy, request, quorum, sizeof text->quorum);
    //  The scan of the QA report the request binds, judged by the limits as loaded now.
    char *reports = al_qa_reports_dir (al_config_state_dir (config));
    al_qa_reports_scan_t verdict = al_qa_reports_scan (reports, request->qa_report_sha256,
                                                       al_policy_scan_limits (policy), scan, sizeof text->scan);
    free (reports);
    char *summary = strdup (scan);
    if (summary)
        snprintf (scan, sizeof text->scan, "%s%s", verdict == AL_QA_REPORTS_SCAN_WITHIN ? "within limits: "
                  : verdict == AL_QA_REPORTS_SCAN_OVER ? "REFUSED (pre-flight will refuse this report): "
                  : verdict == AL_QA_REPORTS_SCAN_UNREADABLE ? "unknown (cannot be judged here; pre-flight "
                  "refuses a report it cannot judge): " : "", summary);
    free (summary);
    *context = (al_request_view_context_t) { window, freeze, quorum,
                                            s_soak_text (policy, config, request, soak, sizeof text->soak)? soak: NULL,
                                            scan };
    al_policy_destroy (&policy);
    return true;
}
