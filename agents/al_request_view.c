/*  al_request_view.c: a pending production request as a human approver sees it (see
    al_request_view.h).

    Every string taken from the request goes through al_text_escape before it is
    printed or put in JSON, facts included: the codec already bounds ids, digests and
    URIs to visible ASCII, so for those the escape is a no-op, and for the rest
    (version, requester, everything the orchestrator wrote) it is the protection.
    Stateless.
*/
#include "agents/al_request_view.h"
#include "base/al_text.h"
#include "policies/al_gate.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

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
    if (al_gate_no_qa_report (request))
        fprintf (out, "- QA report: NONE (no staging run stands behind this request)\n");
    else
        s_line (out, "- ", "QA report sha256", request->qa_report_sha256, "(none)");
    if (!al_gate_no_qa_report (request))
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
    const char *no_report = al_gate_no_qa_report (request) ? "none" : NULL;
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
