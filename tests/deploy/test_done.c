/*  test_done.c: the Definition of Done is computed from evidence (deploy/al_done).

    Shown: a production deploy with every step succeeded and a verified grant is done;
    a service without a database has backup_verified and migrations_applied
    "not_applicable" with the reason (not ticked); a rollback makes soak_passed false
    with the rule, and the receipt is not done; an emergency that skipped staging under
    the extra approvals has qa_approved not_applicable, but the same request without a
    verified grant has it false; staging needs neither QA nor approvals; skipped
    migrations after a rollback are not "applied"; an id airlock does not know is false.
*/
#include "deploy/al_done.h"
#include "deploy_test_util.h"
#include "policies/al_approval_gate.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_QA_SHA "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"

typedef struct {
    char dir [256];
    char policy_dir [300];
    al_policy_t *policy;
    json_t *checks;
    al_done_evidence_t evidence;
} s_fixture_t;

static int
s_setup (void **state)
{
    s_fixture_t *f = calloc (1, sizeof *f);
    assert_non_null (f);
    snprintf (f->dir, sizeof f->dir, "/tmp/al-done-XXXXXX");
    assert_non_null (mkdtemp (f->dir));
    snprintf (f->policy_dir, sizeof f->policy_dir, "%s/policy", f->dir);
    dtu_policy (f->dir, f->policy_dir);
    al_policy_errors_t *errors = NULL;
    f->policy = al_policy_load (f->policy_dir, &errors);
    if (!f->policy)
        fail_msg ("policy: %s", al_policy_errors_at (errors, 0));
    f->checks = json_pack ("[{s:s, s:b, s:s}, {s:s, s:b, s:s}, {s:s, s:b, s:s}]",
                           "check", "production_grant", "ok", 1, "detail", "signed approvals verified for this artifact",
                           "check", "qa_report_approved", "ok", 1, "detail", "QA report bound by the approvers' signatures",
                           "check", "migrations_reversible", "ok", 1, "detail", "every step has a down script");
    //  A production deploy that went through every step.
    al_done_evidence_t *e = &f->evidence;
    e->environment = AIRLOCK__ENVIRONMENT__ENV_PRODUCTION;
    e->deployment_type = AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD;
    e->outcome = AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED;
    e->failure = "";
    for (int step = AIRLOCK__STEP__STEP_PREFLIGHT; step <= AIRLOCK__STEP__STEP_SOAK; step++)
        e->steps [step] = (al_done_step_t) { .finished = true, .outcome = AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED, .detail = "" };
    e->steps [AIRLOCK__STEP__STEP_BACKUP].detail = "/s/backups/d/shop.db verified, sha256 00ff";
    e->steps [AIRLOCK__STEP__STEP_MIGRATE].detail = "version 1 -> 3 (2 step(s))";
    e->steps [AIRLOCK__STEP__STEP_SOAK].detail = "held 600 ms: 3 checkpoint(s) passed, 18 probe(s), 0 failed";
    e->preflight_checks = f->checks;
    e->qa_report_sha256 = S_QA_SHA;
    e->rule = "";
    e->has_database = true;
    e->has_migrations = true;
    e->recorded = true;
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    s_fixture_t *f = *state;
    json_decref (f->checks);
    al_policy_destroy (&f->policy);
    dtu_remove_tree (f->dir);
    free (f);
    return 0;
}

//  The point id's status and reason in points.
static const char *
s_point (json_t *points, const char *id, const char **reason)
{
    size_t index;
    json_t *point;
    json_array_foreach (points, index, point)
        if (strcmp (json_string_value (json_object_get (point, "id")), id) == 0) {
            if (reason)
                *reason = json_string_value (json_object_get (point, "reason"));
            return json_string_value (json_object_get (point, "status"));
        }
    fail_msg ("no point %s", id);
    return NULL;
}

static void
s_expect (json_t *points, const char *id, const char *status, const char *in_reason)
{
    const char *reason = NULL;
    const char *got = s_point (points, id, &reason);
    if (strcmp (got, status) != 0 || (in_reason && !strstr (reason, in_reason)))
        fail_msg ("%s: %s (%s), expected %s with '%s'", id, got, reason, status, in_reason? in_reason: "");
}

static void
test_every_point_from_evidence (void **state)
{
    s_fixture_t *f = *state;
    bool done = false;
    char why [512];
    json_t *points = al_done_evaluate (f->policy, &f->evidence, &done, why, sizeof why);
    assert_int_equal (json_array_size (points), 7);
    const char *ids [] = { "qa_approved", "approvals_valid", "backup_verified", "migrations_applied",
                           "rollout_healthy", "soak_passed", "receipt_recorded" };
    for (size_t i = 0; i < 7; i++)
        s_expect (points, ids [i], "true", NULL);
    s_expect (points, "qa_approved", "true", S_QA_SHA);
    s_expect (points, "backup_verified", "true", "verified, sha256 00ff");
    s_expect (points, "migrations_applied", "true", "version 1 -> 3");
    s_expect (points, "soak_passed", "true", "3 checkpoint(s) passed");
    assert_true (done);
    assert_string_equal (why, "every applicable point is true");
    json_decref (points);

    //  No database: the backup and migrate steps were skipped; not ticked, not applicable.
    f->evidence.has_database = false;
    f->evidence.has_migrations = false;
    f->evidence.steps [AIRLOCK__STEP__STEP_BACKUP] = (al_done_step_t) { true, AIRLOCK__OUTCOME__OUTCOME_SKIPPED, "no database" };
    f->evidence.steps [AIRLOCK__STEP__STEP_MIGRATE] = (al_done_step_t) { true, AIRLOCK__OUTCOME__OUTCOME_SKIPPED, "no migrations" };
    points = al_done_evaluate (f->policy, &f->evidence, &done, why, sizeof why);
    s_expect (points, "backup_verified", "not_applicable", "no database in production");
    s_expect (points, "migrations_applied", "not_applicable", "no migrations");
    assert_true (done);
    json_decref (points);

    //  A database that does not exist yet: nothing to back up, said so.
    f->evidence.has_database = true;
    f->evidence.steps [AIRLOCK__STEP__STEP_BACKUP].detail = "the database does not exist yet";
    points = al_done_evaluate (f->policy, &f->evidence, &done, why, sizeof why);
    s_expect (points, "backup_verified", "not_applicable", "does not exist yet");
    json_decref (points);

    //  A backup that failed is false, and so is done.
    f->evidence.steps [AIRLOCK__STEP__STEP_BACKUP] = (al_done_step_t) { true, AIRLOCK__OUTCOME__OUTCOME_FAILED, "backup: disk full" };
    f->evidence.outcome = AIRLOCK__OUTCOME__OUTCOME_FAILED;
    f->evidence.failure = "backup: disk full";
    points = al_done_evaluate (f->policy, &f->evidence, &done, why, sizeof why);
    s_expect (points, "backup_verified", "false", "disk full");
    s_expect (points, "rollout_healthy", "true", NULL);
    assert_false (done);
    json_decref (points);
}

static void
test_rolled_back (void **state)
{
    s_fixture_t *f = *state;
    al_done_evidence_t *e = &f->evidence;
    e->outcome = AIRLOCK__OUTCOME__OUTCOME_ROLLED_BACK;
    e->rule = "error_rate_increase";
    e->failure = "rollback trigger error_rate_increase: error rate 48% > baseline 0% + 5 points";
    e->steps [AIRLOCK__STEP__STEP_SOAK] = (al_done_step_t) { true, AIRLOCK__OUTCOME__OUTCOME_FAILED, e->failure };
    e->steps [AIRLOCK__STEP__STEP_ROLLBACK] = (al_done_step_t) { true, AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED,
                                                                 "restored v2 and its data" };
    bool done = true;
    char why [512];
    json_t *points = al_done_evaluate (f->policy, e, &done, why, sizeof why);
    s_expect (points, "soak_passed", "false", "rule error_rate_increase: rollback trigger");
    s_expect (points, "migrations_applied", "false", "undone by the rollback");
    s_expect (points, "rollout_healthy", "true", NULL);
    assert_false (done);
    assert_non_null (strstr (why, "rolled_back"));
    json_decref (points);

    //  Rolled back during the rollout: the soak never ran, and the reason says why.
    e->steps [AIRLOCK__STEP__STEP_ROLLOUT] = (al_done_step_t) { true, AIRLOCK__OUTCOME__OUTCOME_FAILED,
                                                                "rollout (rolling): instance 2 never ready" };
    e->steps [AIRLOCK__STEP__STEP_SOAK] = (al_done_step_t) { false, AIRLOCK__OUTCOME__OUTCOME_UNSPECIFIED, NULL };
    e->rule = "rollout_failed";
    points = al_done_evaluate (f->policy, e, &done, why, sizeof why);
    s_expect (points, "rollout_healthy", "false", "never ready");
    s_expect (points, "soak_passed", "false", "rule rollout_failed");
    json_decref (points);

    //  Pre-flight failed: nothing after it is ticked, each says that it never ran.
    for (int step = AIRLOCK__STEP__STEP_BACKUP; step < AL_DONE_STEP_SLOTS; step++)
        e->steps [step] = (al_done_step_t) { false, AIRLOCK__OUTCOME__OUTCOME_UNSPECIFIED, NULL };
    e->steps [AIRLOCK__STEP__STEP_PREFLIGHT] = (al_done_step_t) { true, AIRLOCK__OUTCOME__OUTCOME_FAILED,
                                                                  "pre-flight: freeze: code freeze" };
    e->outcome = AIRLOCK__OUTCOME__OUTCOME_FAILED;
    e->rule = "";
    points = al_done_evaluate (f->policy, e, &done, why, sizeof why);
    s_expect (points, "backup_verified", "false", "preflight failed first");
    s_expect (points, "soak_passed", "false", "never ran");
    json_decref (points);
}

static void
test_qa_and_approvals (void **state)
{
    s_fixture_t *f = *state;
    al_done_evidence_t *e = &f->evidence;
    bool done = false;
    char why [512];

    //  Staging: neither QA (it runs after) nor approvals apply.
    e->environment = AIRLOCK__ENVIRONMENT__ENV_STAGING;
    e->qa_report_sha256 = NULL;
    json_t *points = al_done_evaluate (f->policy, e, &done, why, sizeof why);
    s_expect (points, "qa_approved", "not_applicable", "QA validates a staging deploy");
    s_expect (points, "approvals_valid", "not_applicable", "staging needs no human approval");
    assert_true (done);
    json_decref (points);

    //  An emergency skipping staging, with the grant verified: no QA report stands behind
    //  it, not applicable under the extra approvals.
    e->environment = AIRLOCK__ENVIRONMENT__ENV_PRODUCTION;
    e->deployment_type = AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_EMERGENCY;
    e->qa_report_sha256 = AL_APPROVAL_GATE_NO_QA_REPORT;
    points = al_done_evaluate (f->policy, e, &done, why, sizeof why);
    s_expect (points, "qa_approved", "not_applicable", "staging skipped under the extra approvals");
    s_expect (points, "approvals_valid", "true", "signed approvals verified");
    json_decref (points);

    //  The same without a verified grant: false, both.
    json_t *refused = json_pack ("[{s:s, s:b, s:s}]", "check", "production_grant", "ok", 0, "detail", "quorum not met");
    e->preflight_checks = refused;
    points = al_done_evaluate (f->policy, e, &done, why, sizeof why);
    s_expect (points, "qa_approved", "false", "no approved QA report");
    s_expect (points, "approvals_valid", "false", "quorum not met");
    assert_false (done);
    assert_non_null (strstr (why, "qa_approved is false"));
    json_decref (points);

    //  A standard deploy whose pre-flight evidence is missing: false, never assumed.
    e->deployment_type = AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD;
    e->qa_report_sha256 = S_QA_SHA;
    e->preflight_checks = NULL;
    points = al_done_evaluate (f->policy, e, &done, why, sizeof why);
    s_expect (points, "qa_approved", "false", "does not show");
    s_expect (points, "approvals_valid", "false", "no verified grant");
    s_expect (points, "migrations_applied", "false", "not shown in pre-flight's evidence");
    json_decref (points);
    json_decref (refused);

    //  A rollback type needs no new QA report.
    e->preflight_checks = f->checks;
    e->deployment_type = AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_ROLLBACK;
    e->qa_report_sha256 = AL_APPROVAL_GATE_NO_QA_REPORT;
    points = al_done_evaluate (f->policy, e, &done, why, sizeof why);
    s_expect (points, "qa_approved", "not_applicable", "need no new QA report");
    json_decref (points);

    //  An unrecorded journal: the receipt point is false.
    e->recorded = false;
    points = al_done_evaluate (f->policy, e, &done, why, sizeof why);
    s_expect (points, "receipt_recorded", "false", "journal refused");
    assert_false (done);
    json_decref (points);
}

static void
test_unknown_id (void **state)
{
    s_fixture_t *f = *state;
    char path [400];
    snprintf (path, sizeof path, "%s/quality_rules.yaml", f->policy_dir);
    char *rules = dtu_read (path);
    assert_non_null (rules);
    char *at = strstr (rules, "\nhealth_checks:");
    assert_non_null (at);
    FILE *out = fopen (path, "w");
    assert_non_null (out);
    fprintf (out, "%.*s  - id: pen_test_signed\n    text: an external pen test signed this release\n%s",
             (int) (at - rules + 1), rules, at + 1);
    fclose (out);
    free (rules);
    al_policy_errors_t *errors = NULL;
    al_policy_t *policy = al_policy_load (f->policy_dir, &errors);
    if (!policy)
        fail_msg ("policy: %s", al_policy_errors_at (errors, 0));
    bool done = true;
    char why [512];
    json_t *points = al_done_evaluate (policy, &f->evidence, &done, why, sizeof why);
    assert_int_equal (json_array_size (points), 8);
    s_expect (points, "pen_test_signed", "false", "airlock cannot evaluate it");
    s_expect (points, "soak_passed", "true", NULL);
    assert_false (done);
    assert_non_null (strstr (why, "pen_test_signed"));
    json_decref (points);
    al_policy_destroy (&policy);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_every_point_from_evidence, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_rolled_back, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_qa_and_approvals, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_unknown_id, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
