/*  al_preflight.h: pre-flight's checks, one function per check, callable by anyone who
    must say what pre-flight would decide.

    deploy-manager's pre-flight (al_deployer) runs every check below before a deploy
    changes anything, in the order of docs/deploying.md, and refuses the deploy when one
    fails. `airlock runbook` calls the configuration-only checks (strategy, instances,
    budget, observability, migrations) to warn about what pre-flight would refuse, so the
    runbook and pre-flight cannot drift apart.

    Two kinds of function:
      al_preflight_<check>      a pure verdict: true when the check passes, the detail in
                                the caller's buffer (always filled, passed or not);
      al_preflight_add_<check>  the same verdict appended to a list of checks, the JSON
                                array connectivity-report.json and validation.json keep:
                                [{"check": NAME, "ok": BOOL, "detail": TEXT}, ...].

    Check names are part of the evidence format (docs/deploying.md lists them); a rename
    here is a rename there. Pure functions of their arguments (the QA report check reads
    the qa agent's report store); thread-safe.
*/
#ifndef AL_PREFLIGHT_H_INCLUDED
#define AL_PREFLIGHT_H_INCLUDED

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "deploy/al_driver.h"
#include "deploy/al_migrate.h"
#include "deploy/al_services.h"
#include "policies/al_policy.h"
#include "proto/al_codec.h"

#ifdef __cplusplus
extern "C" {
#endif

//  Longest detail text a check keeps (longer ones are cut short).
#define AL_PREFLIGHT_DETAIL_SIZE 1024

//  ---- the list of checks ------------------------------------------------------------

//  Append {check: name, ok, detail: printf (format, ...)} to checks (a JSON array).
void al_preflight_add (json_t *checks, const char *name, bool ok, const char *format, ...)
    __attribute__ ((format (printf, 4, 5)));

//  True when every check in checks passed; else false with "NAME: DETAIL" of the first
//  that failed in first.
bool al_preflight_passed (const json_t *checks, char *first, size_t first_size);

//  ---- constraints.yaml: strategy, instances, budget -----------------------------------

//  strategy_allowed: constraints.yaml allows strategy in env.
bool al_preflight_strategy (const al_policy_t *policy, Airlock__Environment env, Airlock__Strategy strategy,
                            char *detail, size_t detail_size);

//  max_instances: 1 <= instances <= constraints.yaml's max_instances for env.
bool al_preflight_instances (const al_policy_t *policy, Airlock__Environment env, unsigned instances,
                             char *detail, size_t detail_size);

//  monthly_budget: instances × svc's cost per instance is within env's monthly budget
//  (al_cost, the same projection the notifier and costplan use).
bool al_preflight_budget (const al_policy_t *policy, const al_service_t *svc, Airlock__Environment env,
                          unsigned instances, char *detail, size_t detail_size);

//  The three above, appended in that order.
void al_preflight_add_constraints (json_t *checks, const al_policy_t *policy, const al_service_t *svc,
                                   Airlock__Environment env, Airlock__Strategy strategy, unsigned instances);

//  ---- the grant and the QA report (production) ------------------------------------------

//  production_grant and qa_report_approved. In production: the ExecuteDeploy's grant is
//  verified again (al_approval_gate) at now_ms, and the QA report the approvers signed must be in
//  qa_reports (the qa agent's store, "" = none), approve request's artifact and be within
//  the policy's scan limits, unless the deployment type needs no QA report or the grant
//  carries the skip-staging approvals. Elsewhere only qa_report_approved (passed: QA
//  validates the deploy). *break_glass: the verified grant fills the break-glass quorum.
void al_preflight_add_grant (json_t *checks, const al_policy_t *policy, Airlock__Environment env,
                             const Airlock__DeployRequest *request, const Airlock__ExecuteDeploy *execute,
                             const char *qa_reports, uint64_t now_ms, bool *break_glass);

//  ---- the calendar ------------------------------------------------------------------

//  freeze, deploy_window and (when the approved request names one) scheduled_window,
//  decided by al_calendar_decide at now_ms as the gate decides them. approved: the
//  request the grant signs (NULL outside production); break_glass: from
//  al_preflight_add_grant. Returns the calendar's verdict.
bool al_preflight_add_calendar (json_t *checks, const al_policy_t *policy, Airlock__Environment env,
                                Airlock__DeploymentType type, const Airlock__ApprovalRequest *approved,
                                uint64_t now_ms, bool break_glass);

//  ---- releases ----------------------------------------------------------------------

//  What ran before in (service, environment), as the release record has it.
typedef struct {
    bool present;
    const char *version;
    const char *digest;             // bare hex
    const char *deployment_id;
} al_preflight_release_t;

//  previous_version_retained and new_version, when something runs (current->present):
//  its artifact is kept for rollback (retained) and the request's version differs
//  from it (unless this very deployment put it there: a resume).
void al_preflight_add_release (json_t *checks, Airlock__Environment env, const al_preflight_release_t *current,
                               bool retained, const char *version, const char *deployment_id);

//  rollback_target: a rollback returns to previous (the release before current), its
//  version and digest, and nothing else.
bool al_preflight_rollback_target (const al_preflight_release_t *current, const al_preflight_release_t *previous,
                                   const char *version, const char *digest, char *detail, size_t detail_size);

//  ---- migrations --------------------------------------------------------------------

//  migration_set and (when the set loads) migrations_reversible: svc's set (loaded into
//  *set_p on first use, the caller's to destroy) has the digest the request names
//  (wanted, "" = none) and, in production, every step can be undone or is forward-only.
void al_preflight_add_migrations (json_t *checks, const al_service_t *svc, Airlock__Environment env,
                                  const char *wanted, al_migration_set_t **set_p);

//  ---- observability and the driver --------------------------------------------------------

//  observability: svc declares liveness, readiness and metrics paths.
bool al_preflight_observability (const al_service_t *svc, char *detail, size_t detail_size);

//  The driver's own prerequisites (connectivity, programs, ports) for vars, one check
//  each as the driver names them; "driver" when it fails without saying which.
void al_preflight_add_driver (json_t *checks, al_driver_t *driver, const al_driver_vars_t *vars);

#ifdef __cplusplus
}
#endif

#endif
