/*  al_done.c: the Definition of Done, point by point, from a deployment's evidence.

    See al_done.h. One function per point id; each reads only the evidence it needs and
    says why. A point is "not_applicable" only for a reason airlock can state (no
    database, no migrations, no approval needed in this environment, a deployment type
    that needs no QA report); everything else that is not proved is "false".
*/
#include "deploy/al_done.h"
#include "base/al_error.h"
#include "policies/al_approval_gate.h"
#include <assert.h>
#include <stdio.h>
#include <string.h>

#define S_REASON_SIZE 768

typedef al_done_status_t (s_point_fn) (const al_policy_t *policy, const al_done_evidence_t *evidence,
                                       char *reason, size_t reason_size);

static const char *
s_env (const al_done_evidence_t *evidence)
{
    const char *name = al_environment_name (evidence->environment);
    return name? name: "this environment";
}

static const char *
s_text (const char *text)
{
    return text && *text? text: "(no detail)";
}

//  Pre-flight's check by name: found (with ok and detail) or not.
static bool
s_check (const al_done_evidence_t *evidence, const char *name, bool *ok, const char **detail)
{
    size_t index;
    json_t *check;
    json_array_foreach ((json_t *) evidence->preflight_checks, index, check) {
        const char *check_name = json_string_value (json_object_get (check, "check"));
        if (check_name && strcmp (check_name, name) == 0) {
            *ok = json_is_true (json_object_get (check, "ok"));
            *detail = json_string_value (json_object_get (check, "detail"));
            return true;
        }
    }
    return false;
}

//  A step that never finished: why, from the steps before it.
static void
s_not_reached (const al_done_evidence_t *evidence, const char *what, char *reason, size_t size)
{
    for (int step = AIRLOCK__STEP__STEP_PREFLIGHT; step <= AIRLOCK__STEP__STEP_SOAK; step++) {
        const al_done_step_t *entry = &evidence->steps [step];
        if (entry->finished && entry->outcome == AIRLOCK__OUTCOME__OUTCOME_FAILED) {
            al_error_set (reason, size, "%s never ran: %s failed first (%s)", what,
                   al_step_name ((Airlock__Step) step)? al_step_name ((Airlock__Step) step): "a step",
                   s_text (entry->detail));
            return;
        }
    }
    al_error_set (reason, size, "%s never ran%s%s", what, evidence->failure && *evidence->failure? ": ": "",
           evidence->failure? evidence->failure: "");
}

//  qa_approved: in production, the grant's request names a QA report and pre-flight saw
//  the approvers' signatures bind it. Before production QA runs on the deploy itself.
static al_done_status_t
s_qa_approved (const al_policy_t *policy, const al_done_evidence_t *evidence, char *reason, size_t size)
{
    if (evidence->environment != AIRLOCK__ENVIRONMENT__ENV_PRODUCTION) {
        al_error_set (reason, size, "QA validates a %s deploy after it; its report is approved before production", s_env (evidence));
        return AL_DONE_NOT_APPLICABLE;
    }
    bool ok = false;
    const char *detail = NULL;
    bool checked = s_check (evidence, "qa_report_approved", &ok, &detail);
    const char *sha = evidence->qa_report_sha256;
    bool no_report = !sha || !*sha || strcmp (sha, AL_APPROVAL_GATE_NO_QA_REPORT) == 0;
    const char *type = al_deployment_type_name (evidence->deployment_type)?
                       al_deployment_type_name (evidence->deployment_type): "this";
    if (no_report && !al_policy_requires_staging (policy, evidence->deployment_type)) {
        al_error_set (reason, size, "%s deployments need no new QA report (deployment_types.yaml)", type);
        return AL_DONE_NOT_APPLICABLE;
    }
    if (no_report && al_policy_skip_staging_quorum (policy, evidence->deployment_type).count > 0 && checked && ok) {
        //  Not applicable rather than false: deployment_types.yaml lets this type go
        //  without staging (so without a QA report) against extra signed approvals, and
        //  pre-flight verified the grant counted them; approvals_valid carries that
        //  evidence. "false" would make every sanctioned emergency "not done" forever,
        //  and a done that can never be reached stops being read. The reason says
        //  plainly that no QA report stands behind this release.
        al_error_set (reason, size, "staging skipped under the extra approvals deployment_types.yaml names "
               "(skip_staging_quorum): no QA report stands behind this release");
        return AL_DONE_NOT_APPLICABLE;
    }
    if (no_report) {
        al_error_set (reason, size, "the grant names no approved QA report");
        return AL_DONE_FALSE;
    }
    if (!checked) {
        al_error_set (reason, size, "pre-flight's evidence (connectivity-report.json) does not show QA report sha256:%s verified", sha);
        return AL_DONE_FALSE;
    }
    if (!ok) {
        al_error_set (reason, size, "pre-flight refused the QA report: %s", s_text (detail));
        return AL_DONE_FALSE;
    }
    al_error_set (reason, size, "QA report sha256:%s, verified by pre-flight: %s", sha, s_text (detail));
    return AL_DONE_TRUE;
}

//  approvals_valid: pre-flight verified the signed grant (quorum, keys, artifact, expiry).
static al_done_status_t
s_approvals_valid (const al_policy_t *policy, const al_done_evidence_t *evidence, char *reason, size_t size)
{
    (void) policy;
    if (evidence->environment != AIRLOCK__ENVIRONMENT__ENV_PRODUCTION) {
        al_error_set (reason, size, "%s needs no human approval: only production does", s_env (evidence));
        return AL_DONE_NOT_APPLICABLE;
    }
    bool ok = false;
    const char *detail = NULL;
    if (!s_check (evidence, "production_grant", &ok, &detail)) {
        al_error_set (reason, size, "pre-flight's evidence (connectivity-report.json) shows no verified grant");
        return AL_DONE_FALSE;
    }
    al_error_set (reason, size, "%s%s", ok? "pre-flight verified: ": "pre-flight refused the grant: ", s_text (detail));
    return ok? AL_DONE_TRUE: AL_DONE_FALSE;
}

static al_done_status_t
s_backup_verified (const al_policy_t *policy, const al_done_evidence_t *evidence, char *reason, size_t size)
{
    (void) policy;
    const al_done_step_t *step = &evidence->steps [AIRLOCK__STEP__STEP_BACKUP];
    if (!evidence->has_database) {
        al_error_set (reason, size, "no database in %s (services.yaml)", s_env (evidence));
        return AL_DONE_NOT_APPLICABLE;
    }
    if (!step->finished) {
        s_not_reached (evidence, "the backup", reason, size);
        return AL_DONE_FALSE;
    }
    if (step->outcome == AIRLOCK__OUTCOME__OUTCOME_SKIPPED) {
        al_error_set (reason, size, "nothing to back up: %s", s_text (step->detail));
        return AL_DONE_NOT_APPLICABLE;
    }
    if (step->outcome == AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED) {
        al_error_set (reason, size, "%s", s_text (step->detail));
        return AL_DONE_TRUE;
    }
    al_error_set (reason, size, "the backup failed: %s", s_text (step->detail));
    return AL_DONE_FALSE;
}

static al_done_status_t
s_migrations_applied (const al_policy_t *policy, const al_done_evidence_t *evidence, char *reason, size_t size)
{
    (void) policy;
    const al_done_step_t *step = &evidence->steps [AIRLOCK__STEP__STEP_MIGRATE];
    if (!evidence->has_migrations) {
        al_error_set (reason, size, "the service has no migrations (services.yaml)");
        return AL_DONE_NOT_APPLICABLE;
    }
    if (!evidence->has_database) {
        al_error_set (reason, size, "no database in %s (services.yaml)", s_env (evidence));
        return AL_DONE_NOT_APPLICABLE;
    }
    if (!step->finished) {
        s_not_reached (evidence, "migrate", reason, size);
        return AL_DONE_FALSE;
    }
    if (step->outcome == AIRLOCK__OUTCOME__OUTCOME_SKIPPED) {
        al_error_set (reason, size, "%s", s_text (step->detail));
        return AL_DONE_NOT_APPLICABLE;
    }
    if (step->outcome != AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED) {
        al_error_set (reason, size, "migrate failed: %s", s_text (step->detail));
        return AL_DONE_FALSE;
    }
    const al_done_step_t *rollback = &evidence->steps [AIRLOCK__STEP__STEP_ROLLBACK];
    if (rollback->finished) {
        al_error_set (reason, size, "applied (%s), then undone by the rollback: %s", s_text (step->detail),
               s_text (rollback->detail));
        return AL_DONE_FALSE;
    }
    bool ok = false;
    const char *detail = NULL;
    bool checked = s_check (evidence, "migrations_reversible", &ok, &detail);
    al_error_set (reason, size, "%s; backward compatibility: %s", s_text (step->detail),
           checked? s_text (detail): "not shown in pre-flight's evidence");
    return checked && ok? AL_DONE_TRUE: AL_DONE_FALSE;
}

static al_done_status_t
s_rollout_healthy (const al_policy_t *policy, const al_done_evidence_t *evidence, char *reason, size_t size)
{
    (void) policy;
    const al_done_step_t *step = &evidence->steps [AIRLOCK__STEP__STEP_ROLLOUT];
    if (!step->finished) {
        s_not_reached (evidence, "the rollout", reason, size);
        return AL_DONE_FALSE;
    }
    if (step->outcome == AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED) {
        al_error_set (reason, size, "every instance of the new release passed its readiness gate%s%s",
               step->detail && *step->detail? "; ": "", step->detail? step->detail: "");
        return AL_DONE_TRUE;
    }
    al_error_set (reason, size, "the rollout failed: %s", s_text (step->detail));
    return AL_DONE_FALSE;
}

static al_done_status_t
s_soak_passed (const al_policy_t *policy, const al_done_evidence_t *evidence, char *reason, size_t size)
{
    (void) policy;
    const al_done_step_t *step = &evidence->steps [AIRLOCK__STEP__STEP_SOAK];
    bool rule = evidence->rule && *evidence->rule;
    if (step->finished && step->outcome == AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED && !rule) {
        al_error_set (reason, size, "%s", s_text (step->detail));
        return AL_DONE_TRUE;
    }
    if (step->finished)
        al_error_set (reason, size, "rule %s: %s", rule? evidence->rule: "soak_failed", s_text (step->detail));
    else
    if (rule)
        al_error_set (reason, size, "the soak never ran: rule %s broke before it: %s", evidence->rule,
               s_text (evidence->failure));
    else
        s_not_reached (evidence, "the soak", reason, size);
    return AL_DONE_FALSE;
}

//  receipt_recorded: the receipt is written atomically right after this is computed,
//  and its SHA-256 goes into the journal (the broker's audit log) with the receipt
//  step's end. Both happen after this point is computed, so what can be proved here is
//  that the journal took every record so far: a receipt that cannot be written or
//  journaled leaves the receipt step unfinished, and deploy-manager reports the
//  deployment unrecorded instead of handing this file to anyone.
static al_done_status_t
s_receipt_recorded (const al_policy_t *policy, const al_done_evidence_t *evidence, char *reason, size_t size)
{
    (void) policy;
    if (!evidence->recorded) {
        al_error_set (reason, size, "the journal refused a record of this deployment");
        return AL_DONE_FALSE;
    }
    al_error_set (reason, size, "the journal holds every step; this file is written atomically and its SHA-256 "
           "journaled with the receipt step (compare with the audit log's receipt row)");
    return AL_DONE_TRUE;
}

static const struct {
    const char *id;
    s_point_fn *fn;
} s_points [] = {
    { "qa_approved", s_qa_approved },
    { "approvals_valid", s_approvals_valid },
    { "backup_verified", s_backup_verified },
    { "migrations_applied", s_migrations_applied },
    { "rollout_healthy", s_rollout_healthy },
    { "soak_passed", s_soak_passed },
    { "receipt_recorded", s_receipt_recorded },
};

const char *
al_done_status_name (al_done_status_t status)
{
    return status == AL_DONE_TRUE? "true": status == AL_DONE_NOT_APPLICABLE? "not_applicable": "false";
}

json_t *
al_done_evaluate (const al_policy_t *policy, const al_done_evidence_t *evidence, bool *done,
                  char *why, size_t why_size)
{
    assert (policy && evidence && done);
    json_t *points = json_array ();
    assert (points);
    *done = evidence->outcome == AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED;
    char first [S_REASON_SIZE + 64] = "";
    if (!*done)
        al_error_set (first, sizeof first, "the deployment %s: %s", al_outcome_name (evidence->outcome)?
               al_outcome_name (evidence->outcome): "did not succeed", s_text (evidence->failure));
    for (size_t i = 0; i < al_policy_done_count (policy); i++) {
        const char *id = al_policy_done_id (policy, i);
        char reason [S_REASON_SIZE] = "";
        al_done_status_t status = AL_DONE_FALSE;
        s_point_fn *fn = NULL;
        for (size_t k = 0; k < sizeof s_points / sizeof s_points [0]; k++)
            if (strcmp (s_points [k].id, id) == 0)
                fn = s_points [k].fn;
        if (fn)
            status = fn (policy, evidence, reason, sizeof reason);
        else
            al_error_set (reason, sizeof reason, "airlock cannot evaluate it: no evidence is collected for this id");
        if (status == AL_DONE_FALSE && *done) {
            *done = false;
            al_error_set (first, sizeof first, "%s is false: %s", id, reason);
        }
        json_array_append_new (points, json_pack ("{s:s, s:s, s:s, s:s}", "id", id,
                                                  "text", al_policy_done_text (policy, i),
                                                  "status", al_done_status_name (status), "reason", reason));
    }
    if (*done)
        al_error_set (first, sizeof first, "every applicable point is true");
    if (why && why_size)
        al_error_set (why, why_size, "%s", first);
    return points;
}
