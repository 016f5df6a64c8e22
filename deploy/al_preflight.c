/*  al_preflight.c: pre-flight's checks (see al_preflight.h).

    Every check is decided here and only here: al_deployer runs them in order before a
    deploy touches anything, and the CLI's runbook asks the configuration-only ones what
    pre-flight would refuse. Details name the file a value comes from (constraints.yaml,
    services.yaml, deployment_types.yaml) so a refusal says where to look.
*/
#include "deploy/al_preflight.h"
#include "deploy/al_cost.h"
#include "deploy/al_qa_reports.h"
#include "policies/al_calendar.h"
#include "policies/al_approval_gate.h"
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *
s_env_name (Airlock__Environment env)
{
    const char *name = al_environment_name (env);
    return name? name: "unspecified";
}

//  ---- the list of checks ------------------------------------------------------------

void
al_preflight_add (json_t *checks, const char *name, bool ok, const char *format, ...)
{
    assert (json_is_array (checks));
    assert (name);
    char detail [AL_PREFLIGHT_DETAIL_SIZE];
    va_list args;
    va_start (args, format);
    vsnprintf (detail, sizeof detail, format, args);
    va_end (args);
    json_array_append_new (checks, json_pack ("{s:s, s:b, s:s}", "check", name, "ok", ok, "detail", detail));
}

bool
al_preflight_passed (const json_t *checks, char *first, size_t first_size)
{
    size_t index;
    json_t *check;
    json_array_foreach (checks, index, check) {
        if (!json_is_true (json_object_get (check, "ok"))) {
            snprintf (first, first_size, "%s: %s", json_string_value (json_object_get (check, "check")),
                      json_string_value (json_object_get (check, "detail")));
            return false;
        }
    }
    return true;
}

//  ---- constraints.yaml ------------------------------------------------------------------

bool
al_preflight_strategy (const al_policy_t *policy, Airlock__Environment env, Airlock__Strategy strategy,
                       char *detail, size_t detail_size)
{
    assert (policy);
    bool allowed = al_policy_strategy_allowed (policy, env, strategy);
    const char *name = al_strategy_name (strategy);
    snprintf (detail, detail_size, "%s in %s%s", name? name: "unspecified", s_env_name (env),
              allowed? "": " is not allowed by constraints.yaml");
    return allowed;
}

bool
al_preflight_instances (const al_policy_t *policy, Airlock__Environment env, unsigned instances,
                        char *detail, size_t detail_size)
{
    assert (policy);
    unsigned max = al_policy_max_instances (policy, env);
    snprintf (detail, detail_size, "%u instance(s), constraints.yaml allows %u", instances, max);
    return instances >= 1 && instances <= max;
}

bool
al_preflight_budget (const al_policy_t *policy, const al_service_t *svc, Airlock__Environment env,
                     unsigned instances, char *detail, size_t detail_size)
{
    assert (policy);
    assert (svc);
    al_cost_projection_t cost;
    al_cost_project (policy, svc, env, instances, &cost);
    al_cost_describe (&cost, detail, detail_size);
    return !cost.over_budget;
}

void
al_preflight_add_constraints (json_t *checks, const al_policy_t *policy, const al_service_t *svc,
                              Airlock__Environment env, Airlock__Strategy strategy, unsigned instances)
{
    char detail [AL_PREFLIGHT_DETAIL_SIZE];
    bool ok = al_preflight_strategy (policy, env, strategy, detail, sizeof detail);
    al_preflight_add (checks, "strategy_allowed", ok, "%s", detail);
    ok = al_preflight_instances (policy, env, instances, detail, sizeof detail);
    al_preflight_add (checks, "max_instances", ok, "%s", detail);
    ok = al_preflight_budget (policy, svc, env, instances, detail, sizeof detail);
    al_preflight_add (checks, "monthly_budget", ok, "%s", detail);
}

//  ---- the grant and the QA report ---------------------------------------------------------

//  The report the approvers signed for: opened from the qa agent's store, its bytes
//  hashed again, and it must say approved for the very artifact deployed. The digest
//  alone proves nothing (anyone can name one); fail closed on anything else.
static void
s_add_qa_report (json_t *checks, const al_policy_t *policy, const char *qa_reports, const char *digest,
                 const char *artifact_sha256)
{
    char reason [AL_PREFLIGHT_DETAIL_SIZE];
    bool ok = false;
    if (!qa_reports || !*qa_reports)
        snprintf (reason, sizeof reason, "QA report %.64s cannot be opened: deploy-manager knows no QA report store",
                  digest);
    else
        ok = al_qa_reports_approves (qa_reports, digest, artifact_sha256, reason, sizeof reason);
    //  An approved report over the security scan limits (as loaded now) still refuses.
    char scan [AL_PREFLIGHT_DETAIL_SIZE] = "";
    if (ok) {
        char summary [512];
        al_qa_reports_scan_t verdict = al_qa_reports_scan (qa_reports, digest, al_policy_scan_limits (policy),
                                                           summary, sizeof summary);
        ok = verdict == AL_QA_REPORTS_SCAN_NONE || verdict == AL_QA_REPORTS_SCAN_WITHIN;
        snprintf (scan, sizeof scan, "; security scan: %s", summary);
    }
    al_preflight_add (checks, "qa_report_approved", ok, "%s%s%s", reason, scan,
                      ok? ", bound by the approvers' signatures": "");
}

void
al_preflight_add_grant (json_t *checks, const al_policy_t *policy, Airlock__Environment env,
                        const Airlock__DeployRequest *request, const Airlock__ExecuteDeploy *execute,
                        const char *qa_reports, uint64_t now_ms, bool *break_glass)
{
    assert (policy);
    assert (request);
    assert (break_glass);
    *break_glass = false;
    if (env != AIRLOCK__ENVIRONMENT__ENV_PRODUCTION) {
        al_preflight_add (checks, "qa_report_approved", true, "not required before %s: QA validates this deploy",
                          s_env_name (env));
        return;
    }
    //  The grant, verified here again whatever the caller did.
    char reason [AL_PREFLIGHT_DETAIL_SIZE];
    bool ok = execute
           && al_approval_gate_verify_grant_break_glass (policy, env, execute, now_ms, break_glass, reason, sizeof reason);
    al_preflight_add (checks, "production_grant", ok, "%s", ok? "signed approvals verified for this artifact"
                      : execute? reason: "no ExecuteDeploy with a grant");
    const Airlock__ProductionGrant *grant = execute? execute->grant: NULL;
    bool qa = grant && grant->request && !al_approval_gate_no_qa_report (grant->request);
    const char *type = al_deployment_type_name (request->deployment_type);
    if (!qa && !al_policy_requires_staging (policy, request->deployment_type))
        al_preflight_add (checks, "qa_report_approved", true,
                          "%s deployments need no new QA report (deployment_types.yaml)", type? type: "these");
    else
    if (!qa && ok && al_policy_skip_staging_quorum (policy, request->deployment_type).count > 0)
        //  al_approval_gate_verify_grant counted the skip-staging approvals into the quorum.
        al_preflight_add (checks, "qa_report_approved", true, "staging skipped: the grant carries the extra "
                          "approvals deployment_types.yaml names to skip it (skip_staging_quorum)");
    else
    if (!qa)
        al_preflight_add (checks, "qa_report_approved", false, "the grant names no approved QA report");
    else
        s_add_qa_report (checks, policy, qa_reports, grant->request->qa_report_sha256, request->artifact_sha256);
}

//  ---- the calendar ------------------------------------------------------------------

bool
al_preflight_add_calendar (json_t *checks, const al_policy_t *policy, Airlock__Environment env,
                           Airlock__DeploymentType type, const Airlock__ApprovalRequest *approved,
                           uint64_t now_ms, bool break_glass)
{
    //  Decided by the same function as the gate (al_calendar.h), on the approved request
    //  and with the break-glass the grant's approvals fill, so what the gate granted for
    //  these facts pre-flight grants too. Judged at now: a scheduled window the
    //  deploy-manager starts after (busy, restarting) is refused whenever the grant was given.
    al_calendar_query_t query = {
        .environment = env, .deployment_type = type, .now_ms = now_ms,
        .window_start_ms = approved? approved->window_start_ms: 0,
        .window_end_ms = approved? approved->window_end_ms: 0,
        .break_glass = break_glass
    };
    al_calendar_decision_t calendar;
    al_calendar_decide (policy, &query, &calendar);
    bool lifted = calendar.break_glass_used;
    al_preflight_add (checks, "freeze", calendar.freeze != AL_POLICY_FREEZE_ACTIVE || lifted, "%s%s",
                      calendar.freeze_text, calendar.freeze == AL_POLICY_FREEZE_ACTIVE && lifted?
                      " (lifted by the grant's break-glass approvals)": "");
    al_preflight_add (checks, "deploy_window", !calendar.window_closed || lifted, "%s%s", calendar.window_text,
                      calendar.window_closed && lifted? " (lifted by the grant's break-glass approvals)": "");
    if (query.window_end_ms)
        al_preflight_add (checks, "scheduled_window", !calendar.outside_scheduled, "%s", calendar.scheduled_text);
    //  The checks above are the decision's parts; the decision itself must agree.
    assert (calendar.allowed == ((calendar.freeze != AL_POLICY_FREEZE_ACTIVE || lifted)
                                 && (!calendar.window_closed || lifted) && !calendar.outside_scheduled));
    return calendar.allowed;
}

//  ---- releases ----------------------------------------------------------------------

void
al_preflight_add_release (json_t *checks, Airlock__Environment env, const al_preflight_release_t *current,
                          bool retained, const char *version, const char *deployment_id)
{
    assert (current);
    if (!current->present)
        return;
    al_preflight_add (checks, "previous_version_retained", retained, "%s (sha256:%s)", current->version,
                      current->digest);
    //  Versions tell releases apart (instances, rollback targets): a release of the
    //  version that already runs is refused here, before anything is touched.
    bool same = strcmp (current->version, version) == 0 && strcmp (current->deployment_id, deployment_id) != 0;
    if (same)
        al_preflight_add (checks, "new_version", false, "%s already runs in %s (deployment %s): give the release "
                          "a new version", version, s_env_name (env), current->deployment_id);
    else
        al_preflight_add (checks, "new_version", true, "%s replaces %s", version, current->version);
}

bool
al_preflight_rollback_target (const al_preflight_release_t *current, const al_preflight_release_t *previous,
                              const char *version, const char *digest, char *detail, size_t detail_size)
{
    //  A rollback goes back to what ran before, nothing else: its type needs neither
    //  staging nor QA nor a manager, so a "rollback" to a new artifact must not pass.
    assert (current && previous);
    bool back = previous->present && strcmp (previous->digest, digest) == 0 && strcmp (previous->version, version) == 0;
    const char *before = current->present? current->version: "this deploy";
    if (back)
        snprintf (detail, detail_size, "%s (sha256:%s) ran here before %s", previous->version, previous->digest, before);
    else
    if (previous->present)
        snprintf (detail, detail_size, "a rollback must return to %s (sha256:%s), the release that ran before %s",
                  previous->version, previous->digest, before);
    else
        snprintf (detail, detail_size, "nothing ran before %s here: there is nothing to roll back to", before);
    return back;
}

//  ---- migrations --------------------------------------------------------------------

void
al_preflight_add_migrations (json_t *checks, const al_service_t *svc, Airlock__Environment env,
                             const char *wanted, al_migration_set_t **set_p)
{
    assert (svc);
    assert (set_p);
    if (!wanted)
        wanted = "";
    if (!svc->migrations) {
        al_preflight_add (checks, "migration_set", *wanted == 0, "%s", *wanted? "the request names a migration set "
                          "but services.yaml has none for this service": "no migrations");
        return;
    }
    char error [512] = "cannot load";
    if (!*set_p)
        *set_p = al_migration_set_load (svc->migrations, error, sizeof error);
    if (!*set_p) {
        al_preflight_add (checks, "migration_set", false, "%s", error);
        return;
    }
    const char *digest = al_migration_set_digest (*set_p);
    al_preflight_add (checks, "migration_set", strcmp (digest, wanted) == 0, "%s has digest %s, the request names %s",
                      svc->migrations, digest, *wanted? wanted: "none");
    bool production = env == AIRLOCK__ENVIRONMENT__ENV_PRODUCTION;
    error [0] = 0;
    int reversible = al_migration_set_check_reversible (*set_p, production, error, sizeof error);
    al_preflight_add (checks, "migrations_reversible", reversible == 0, "%s",
                      error [0]? error: "every step has a down script or is forward-only");
}

//  ---- observability and the driver --------------------------------------------------------

bool
al_preflight_observability (const al_service_t *svc, char *detail, size_t detail_size)
{
    assert (svc);
    snprintf (detail, detail_size, "liveness %s, readiness %s, metrics %s",
              svc->liveness_path? svc->liveness_path: "(none)", svc->readiness_path? svc->readiness_path: "(none)",
              svc->metrics_path? svc->metrics_path: "(none)");
    return svc->liveness_path && svc->readiness_path && svc->metrics_path;
}

void
al_preflight_add_driver (json_t *checks, al_driver_t *driver, const al_driver_vars_t *vars)
{
    al_driver_report_t *report = al_driver_report_new ();
    char error [512] = "";
    al_driver_status_t status = al_driver_prerequisites (driver, vars, report, error, sizeof error);
    for (size_t i = 0; i < al_driver_report_size (report); i++) {
        bool ok = false;
        const char *detail = NULL;
        const char *name = al_driver_report_check (report, i, &ok, &detail);
        al_preflight_add (checks, name, ok, "%s", detail? detail: "");
    }
    if (status != AL_DRIVER_OK && al_driver_report_failures (report) == 0)
        al_preflight_add (checks, "driver", false, "%s", error);
    al_driver_report_destroy (&report);
}
