/*  test_preflight.c: pre-flight's checks (deploy/al_preflight), without a deploy.

    Each check is called the way the deployer and the runbook call it, on the default
    policy (calendar always open) and a services.yaml written here, and the verdict and
    its detail are asserted: strategy, instances, budget, the grant outside and inside
    production, the calendar, the release checks, the rollback target, migrations and
    observability, and the list's first failure.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "deploy/al_preflight.h"
#include "deploy_test_util.h"

typedef struct {
    char dir [256];
    char policy_dir [300];
    al_policy_t *policy;
    al_services_t *services;
} s_fixture_t;

static int
s_setup (void **state)
{
    s_fixture_t *f = calloc (1, sizeof *f);
    assert_non_null (f);
    snprintf (f->dir, sizeof f->dir, "/tmp/al-preflight-XXXXXX");
    assert_non_null (mkdtemp (f->dir));
    snprintf (f->policy_dir, sizeof f->policy_dir, "%s/policy", f->dir);
    dtu_policy (f->dir, f->policy_dir);
    al_policy_errors_t *errors = NULL;
    f->policy = al_policy_load (f->policy_dir, &errors);
    if (!f->policy)
        fail_msg ("policy: %s", al_policy_errors_at (errors, 0));
    char path [400];
    snprintf (path, sizeof path, "%s/services.yaml", f->dir);
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fprintf (file, "version: 1\nservices:\n"
                   "  demo:\n    driver: process\n    instances: 3\n    strategy: rolling\n"
                   "    cost_per_instance_usd_month: 100\n    command: [\"{{artifact}}\"]\n");
    fclose (file);
    char error [1024];
    f->services = al_services_load (path, error, sizeof error);
    if (!f->services)
        fail_msg ("services.yaml: %s", error);
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    s_fixture_t *f = (s_fixture_t *) *state;
    al_services_destroy (&f->services);
    al_policy_destroy (&f->policy);
    dtu_remove_tree (f->dir);
    free (f);
    return 0;
}

static const al_service_t *
s_demo (s_fixture_t *f)
{
    const al_service_t *svc = al_services_find (f->services, "demo");
    assert_non_null (svc);
    return svc;
}

//  The check named name in checks: its verdict, its detail in detail.
static bool
s_verdict (json_t *checks, const char *name, const char **detail)
{
    size_t index;
    json_t *check;
    json_array_foreach (checks, index, check)
        if (strcmp (json_string_value (json_object_get (check, "check")), name) == 0) {
            if (detail)
                *detail = json_string_value (json_object_get (check, "detail"));
            return json_is_true (json_object_get (check, "ok"));
        }
    fail_msg ("no check %s", name);
    return false;
}

static void
test_strategy (void **state)
{
    s_fixture_t *f = (s_fixture_t *) *state;
    char detail [AL_PREFLIGHT_DETAIL_SIZE];
    //  The default constraints.yaml allows only rolling in production.
    assert_true (al_preflight_strategy (f->policy, AIRLOCK__ENVIRONMENT__ENV_PRODUCTION,
                                        AIRLOCK__STRATEGY__STRATEGY_ROLLING, detail, sizeof detail));
    assert_string_equal (detail, "rolling in production");
    assert_false (al_preflight_strategy (f->policy, AIRLOCK__ENVIRONMENT__ENV_PRODUCTION,
                                         AIRLOCK__STRATEGY__STRATEGY_CANARY, detail, sizeof detail));
    assert_string_equal (detail, "canary in production is not allowed by constraints.yaml");
    assert_true (al_preflight_strategy (f->policy, AIRLOCK__ENVIRONMENT__ENV_STAGING,
                                        AIRLOCK__STRATEGY__STRATEGY_CANARY, detail, sizeof detail));
}

static void
test_instances (void **state)
{
    s_fixture_t *f = (s_fixture_t *) *state;
    char detail [AL_PREFLIGHT_DETAIL_SIZE];
    //  Staging allows 10, production 50.
    assert_true (al_preflight_instances (f->policy, AIRLOCK__ENVIRONMENT__ENV_STAGING, 10, detail, sizeof detail));
    assert_string_equal (detail, "10 instance(s), constraints.yaml allows 10");
    assert_false (al_preflight_instances (f->policy, AIRLOCK__ENVIRONMENT__ENV_STAGING, 11, detail, sizeof detail));
    assert_string_equal (detail, "11 instance(s), constraints.yaml allows 10");
    assert_false (al_preflight_instances (f->policy, AIRLOCK__ENVIRONMENT__ENV_STAGING, 0, detail, sizeof detail));
    assert_true (al_preflight_instances (f->policy, AIRLOCK__ENVIRONMENT__ENV_PRODUCTION, 50, detail, sizeof detail));
}

static void
test_budget (void **state)
{
    s_fixture_t *f = (s_fixture_t *) *state;
    char detail [AL_PREFLIGHT_DETAIL_SIZE];
    //  Staging's budget is 500 USD a month; demo costs 100 an instance.
    assert_true (al_preflight_budget (f->policy, s_demo (f), AIRLOCK__ENVIRONMENT__ENV_STAGING, 5, detail, sizeof detail));
    assert_non_null (strstr (detail, "500.00 USD/month for 5 instance(s)"));
    assert_null (strstr (detail, "OVER BUDGET"));
    assert_false (al_preflight_budget (f->policy, s_demo (f), AIRLOCK__ENVIRONMENT__ENV_STAGING, 6, detail, sizeof detail));
    assert_non_null (strstr (detail, "600.00 USD/month for 6 instance(s)"));
    assert_non_null (strstr (detail, "OVER BUDGET"));
}

static void
test_constraints_list (void **state)
{
    s_fixture_t *f = (s_fixture_t *) *state;
    json_t *checks = json_array ();
    al_preflight_add_constraints (checks, f->policy, s_demo (f), AIRLOCK__ENVIRONMENT__ENV_STAGING,
                                  AIRLOCK__STRATEGY__STRATEGY_ROLLING, 3);
    assert_int_equal (json_array_size (checks), 3);
    char first [1024] = "";
    assert_true (al_preflight_passed (checks, first, sizeof first));
    assert_string_equal (json_string_value (json_object_get (json_array_get (checks, 0), "check")), "strategy_allowed");
    assert_string_equal (json_string_value (json_object_get (json_array_get (checks, 1), "check")), "max_instances");
    assert_string_equal (json_string_value (json_object_get (json_array_get (checks, 2), "check")), "monthly_budget");
    json_decref (checks);

    //  Canary in production with 60 instances: three failures, the first one named.
    checks = json_array ();
    al_preflight_add_constraints (checks, f->policy, s_demo (f), AIRLOCK__ENVIRONMENT__ENV_PRODUCTION,
                                  AIRLOCK__STRATEGY__STRATEGY_CANARY, 60);
    assert_false (s_verdict (checks, "strategy_allowed", NULL));
    assert_false (s_verdict (checks, "max_instances", NULL));
    assert_false (s_verdict (checks, "monthly_budget", NULL));
    assert_false (al_preflight_passed (checks, first, sizeof first));
    assert_string_equal (first, "strategy_allowed: canary in production is not allowed by constraints.yaml");
    json_decref (checks);
}

static void
test_grant (void **state)
{
    s_fixture_t *f = (s_fixture_t *) *state;
    Airlock__DeployRequest request = AIRLOCK__DEPLOY_REQUEST__INIT;
    request.artifact_sha256 = "00";
    request.deployment_type = AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD;
    uint64_t now = (uint64_t) time (NULL) * 1000;
    bool break_glass = true;
    //  Staging: no grant to verify, QA validates.
    json_t *checks = json_array ();
    al_preflight_add_grant (checks, f->policy, AIRLOCK__ENVIRONMENT__ENV_STAGING, &request, NULL, "", now, &break_glass);
    assert_false (break_glass);
    assert_int_equal (json_array_size (checks), 1);
    const char *detail = NULL;
    assert_true (s_verdict (checks, "qa_report_approved", &detail));
    assert_string_equal (detail, "not required before staging: QA validates this deploy");
    json_decref (checks);
    //  Production without an ExecuteDeploy: refused, closed, and no QA report either.
    checks = json_array ();
    al_preflight_add_grant (checks, f->policy, AIRLOCK__ENVIRONMENT__ENV_PRODUCTION, &request, NULL, "", now, &break_glass);
    assert_false (s_verdict (checks, "production_grant", &detail));
    assert_string_equal (detail, "no ExecuteDeploy with a grant");
    assert_false (s_verdict (checks, "qa_report_approved", &detail));
    assert_string_equal (detail, "the grant names no approved QA report");
    json_decref (checks);
}

static void
test_calendar (void **state)
{
    s_fixture_t *f = (s_fixture_t *) *state;
    uint64_t now = (uint64_t) time (NULL) * 1000;
    json_t *checks = json_array ();
    //  dtu_policy's calendar is always open.
    assert_true (al_preflight_add_calendar (checks, f->policy, AIRLOCK__ENVIRONMENT__ENV_PRODUCTION,
                                            AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD, NULL, now, false));
    assert_true (s_verdict (checks, "freeze", NULL));
    assert_true (s_verdict (checks, "deploy_window", NULL));
    assert_int_equal (json_array_size (checks), 2);
    json_decref (checks);
    //  A scheduled window that ended an hour ago is refused.
    Airlock__ApprovalRequest approved = AIRLOCK__APPROVAL_REQUEST__INIT;
    approved.window_start_ms = now - 7200 * 1000;
    approved.window_end_ms = now - 3600 * 1000;
    checks = json_array ();
    assert_false (al_preflight_add_calendar (checks, f->policy, AIRLOCK__ENVIRONMENT__ENV_PRODUCTION,
                                             AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD, &approved, now, false));
    assert_false (s_verdict (checks, "scheduled_window", NULL));
    json_decref (checks);
}

static void
test_release (void **state)
{
    (void) state;
    al_preflight_release_t current = { .present = true, .version = "1.0.0", .digest = "aa", .deployment_id = "d1" };
    al_preflight_release_t previous = { .present = true, .version = "0.9.0", .digest = "bb", .deployment_id = "d0" };
    json_t *checks = json_array ();
    //  The version that runs, from another deployment: refused.
    al_preflight_add_release (checks, AIRLOCK__ENVIRONMENT__ENV_STAGING, &current, true, "1.0.0", "d2");
    const char *detail = NULL;
    assert_true (s_verdict (checks, "previous_version_retained", NULL));
    assert_false (s_verdict (checks, "new_version", &detail));
    assert_string_equal (detail, "1.0.0 already runs in staging (deployment d1): give the release a new version");
    json_decref (checks);
    //  The same deployment resumed, and a new version with the old artifact lost.
    checks = json_array ();
    al_preflight_add_release (checks, AIRLOCK__ENVIRONMENT__ENV_STAGING, &current, false, "1.0.0", "d1");
    assert_true (s_verdict (checks, "new_version", NULL));
    assert_false (s_verdict (checks, "previous_version_retained", NULL));
    json_decref (checks);
    //  Nothing runs: no release check at all.
    al_preflight_release_t none = { .present = false };
    checks = json_array ();
    al_preflight_add_release (checks, AIRLOCK__ENVIRONMENT__ENV_STAGING, &none, false, "1.0.0", "d1");
    assert_int_equal (json_array_size (checks), 0);
    json_decref (checks);

    char text [AL_PREFLIGHT_DETAIL_SIZE];
    assert_true (al_preflight_rollback_target (&current, &previous, "0.9.0", "bb", text, sizeof text));
    assert_string_equal (text, "0.9.0 (sha256:bb) ran here before 1.0.0");
    assert_false (al_preflight_rollback_target (&current, &previous, "0.9.0", "cc", text, sizeof text));
    assert_string_equal (text, "a rollback must return to 0.9.0 (sha256:bb), the release that ran before 1.0.0");
    assert_false (al_preflight_rollback_target (&none, &none, "0.9.0", "bb", text, sizeof text));
    assert_string_equal (text, "nothing ran before this deploy here: there is nothing to roll back to");
}

static void
test_migrations_and_observability (void **state)
{
    s_fixture_t *f = (s_fixture_t *) *state;
    al_migration_set_t *set = NULL;
    json_t *checks = json_array ();
    al_preflight_add_migrations (checks, s_demo (f), AIRLOCK__ENVIRONMENT__ENV_STAGING, "", &set);
    const char *detail = NULL;
    assert_true (s_verdict (checks, "migration_set", &detail));
    assert_string_equal (detail, "no migrations");
    json_decref (checks);
    checks = json_array ();
    al_preflight_add_migrations (checks, s_demo (f), AIRLOCK__ENVIRONMENT__ENV_STAGING, "abcd", &set);
    assert_false (s_verdict (checks, "migration_set", NULL));
    json_decref (checks);
    assert_null (set);

    char text [AL_PREFLIGHT_DETAIL_SIZE];
    assert_true (al_preflight_observability (s_demo (f), text, sizeof text));
    al_service_t blind = *s_demo (f);
    blind.metrics_path = NULL;
    assert_false (al_preflight_observability (&blind, text, sizeof text));
    assert_non_null (strstr (text, "metrics (none)"));
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_strategy, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_instances, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_budget, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_constraints_list, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_grant, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_calendar, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_release, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_migrations_and_observability, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
