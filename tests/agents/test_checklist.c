/*  test_checklist.c: the production request's checklist is computed (agents/al_checklist).

    Shown: Tests Passed per suite kind from the QA report's counts, "no suite of that
    kind ran" unticked, a failing kind unticked; Database Changes lists the migration
    set's steps, says whether the request signs that set, and that its rollback was not
    rehearsed, and is "not applicable" without migrations; Dependencies and Breaking
    Changes are "not declared" (unticked) unless the submitter declared them, and then
    say they are declarations; Monitoring names the signals source and the notification
    routes that hear of a production rollback, unticked when there is none or when only
    probes watch the service; an emergency without staging has no tests ticked.
*/
#include "agents/al_checklist.h"
#include "../deploy/deploy_test_util.h"
#include "deploy/al_migrate.h"
#include "policies/al_approval_gate.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    char dir [256];
    char migrations [1024];
    al_policy_t *policy;
    al_services_t *services;
    json_t *release;
    char digest [65];
} s_fixture_t;

static int
s_setup (void **state)
{
    s_fixture_t *f = calloc (1, sizeof *f);
    assert_non_null (f);
    snprintf (f->dir, sizeof f->dir, "/tmp/al-checklist-XXXXXX");
    assert_non_null (mkdtemp (f->dir));
    char path [400];
    snprintf (path, sizeof path, "%s/policy", f->dir);
    dtu_policy (f->dir, path);
    al_policy_errors_t *errors = NULL;
    f->policy = al_policy_load (path, &errors);
    if (!f->policy)
        fail_msg ("policy: %s", al_policy_errors_at (errors, 0));
    snprintf (f->migrations, sizeof f->migrations, "%s/examples/demo-service/migrations", getenv ("AIRLOCK_SOURCE_DIR"));
    char error [4096];
    al_migration_set_t *set = al_migration_set_load (f->migrations, error, sizeof error);
    if (!set)
        fail_msg ("migrations: %s", error);
    snprintf (f->digest, sizeof f->digest, "%s", al_migration_set_digest (set));
    al_migration_set_destroy (&set);
    snprintf (path, sizeof path, "%s/services.yaml", f->dir);
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fprintf (file, "version: 1\nservices:\n"
                   "  shop:\n    driver: process\n    command: [\"/bin/true\"]\n    migrations: %s\n"
                   "    database: { production: %s/shop.db }\n"
                   "  plain:\n    driver: process\n    command: [\"/bin/true\"]\n    signals: probes\n",
             f->migrations, f->dir);
    fclose (file);
    f->services = al_services_load (path, error, sizeof error);
    if (!f->services)
        fail_msg ("services.yaml: %s", error);
    snprintf (path, sizeof path, "%s/notifications.yaml", f->dir);
    file = fopen (path, "w");
    assert_non_null (file);
    fprintf (file, "version: 1\nendpoints:\n"
                   "  - name: ops-slack\n    kind: slack\n    url: https://hooks.slack.com/services/T/B/X\n"
                   "    events: [rollback, escalation]\n    environments: [production]\n"
                   "  - name: staging-only\n    kind: slack\n    url: https://hooks.slack.com/services/T/B/Y\n"
                   "    environments: [staging]\n");
    fclose (file);
    //  A standard release whose QA ran a unit suite, an e2e suite that failed once, and
    //  the smoke checks.
    f->release = json_pack ("{s:s, s:s, s:s, s:[s], s:s, s:{s:b, s:i, s:i, s:i, s:s, s:[{s:s, s:i, s:i, s:i},"
                            " {s:s, s:i, s:i, s:i}, {s:s, s:i, s:i, s:i}]}}",
                            "release_id", "rel-1", "service", "shop", "type", "standard", "changes", "faster checkout",
                            "migration_set_sha256", f->digest,
                            "qa", "approved", 1, "passed", 158, "failed", 1, "skipped", 2,
                            "report_sha256", "ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12",
                            "suites", "name", "unit", "passed", 150, "failed", 0, "skipped", 2,
                                      "name", "e2e-checkout", "passed", 4, "failed", 1, "skipped", 0,
                                      "name", "checks", "passed", 4, "failed", 0, "skipped", 0);
    assert_non_null (f->release);
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    s_fixture_t *f = *state;
    json_decref (f->release);
    al_services_destroy (&f->services);
    al_policy_destroy (&f->policy);
    dtu_remove_tree (f->dir);
    free (f);
    return 0;
}

static al_checklist_t *
s_checklist (s_fixture_t *f, const char *service)
{
    al_checklist_input_t input = { .policy = f->policy, .service = al_services_find (f->services, service),
                                   .release = f->release, .state_dir = f->dir, .now = time (NULL), .risk = "Medium" };
    al_checklist_t *checklist = al_checklist_new (&input);
    assert_non_null (checklist);
    return checklist;
}

//  The item of section whose text holds needle: its checked flag; fails if none.
static bool
s_item (al_checklist_t *checklist, const char *section, const char *needle)
{
    Airlock__ChecklistItem **items = al_checklist_items (checklist);
    for (size_t i = 0; i < al_checklist_size (checklist); i++)
        if (strcmp (items [i]->section, section) == 0 && strstr (items [i]->text, needle))
            return items [i]->checked;
    fprintf (stderr, "checklist:\n");
    for (size_t i = 0; i < al_checklist_size (checklist); i++)
        fprintf (stderr, "  [%c] %s: %s\n", items [i]->checked? 'x': ' ', items [i]->section, items [i]->text);
    fail_msg ("no %s item with '%s'", section, needle);
    return false;
}

static void
test_tests_per_suite_kind (void **state)
{
    s_fixture_t *f = *state;
    al_checklist_t *checklist = s_checklist (f, "shop");
    assert_false (s_item (checklist, "Tests Passed", "158/159 passed (2 skipped)"));
    assert_true (s_item (checklist, "Tests Passed", "Unit tests: 150/150 passed (2 skipped) in unit"));
    assert_false (s_item (checklist, "Tests Passed", "Integration tests: no suite of that kind ran"));
    assert_false (s_item (checklist, "Tests Passed", "E2E tests: 4/5 passed (0 skipped) in e2e-checkout"));
    assert_true (s_item (checklist, "Tests Passed", "Other suites and checks: checks 4/4 passed"));
    al_checklist_destroy (&checklist);
    assert_null (checklist);

    //  An emergency that skipped staging: no QA report, nothing ticked.
    json_object_set_new (f->release, "type", json_string ("emergency"));
    json_object_set_new (json_object_get (f->release, "qa"), "report_sha256", json_string (AL_APPROVAL_GATE_NO_QA_REPORT));
    checklist = s_checklist (f, "shop");
    assert_false (s_item (checklist, "Tests Passed", "NONE: staging skipped"));
    al_checklist_destroy (&checklist);
}

static void
test_database_changes (void **state)
{
    s_fixture_t *f = *state;
    al_checklist_t *checklist = s_checklist (f, "shop");
    assert_true (s_item (checklist, "Database Changes", "2 migration(s): 001_create_items, 002_add_price"));
    assert_true (s_item (checklist, "Database Changes", "(the one this request signs)"));
    assert_true (s_item (checklist, "Database Changes", "rollback NOT rehearsed in staging"));
    al_checklist_destroy (&checklist);

    //  Another digest than the set's: unticked, and it says pre-flight will refuse.
    json_object_set_new (f->release, "migration_set_sha256",
                         json_string ("0000000000000000000000000000000000000000000000000000000000000001"));
    checklist = s_checklist (f, "shop");
    assert_false (s_item (checklist, "Database Changes", "NOT the one this request signs"));
    al_checklist_destroy (&checklist);

    //  No migration set: not applicable, not ticked.
    json_object_set_new (f->release, "migration_set_sha256", json_string (""));
    checklist = s_checklist (f, "plain");
    assert_false (s_item (checklist, "Database Changes", AL_CHECKLIST_NOT_APPLICABLE "no migration set"));
    al_checklist_destroy (&checklist);
}

static void
test_declarations (void **state)
{
    s_fixture_t *f = *state;
    al_checklist_t *checklist = s_checklist (f, "shop");
    assert_false (s_item (checklist, "Dependencies", "not declared"));
    assert_false (s_item (checklist, "Breaking Changes", "not declared"));
    al_checklist_destroy (&checklist);

    json_object_set_new (f->release, "dependencies_added", json_pack ("[s, s]", "libfoo@1.2.3", "@scope/bar@4"));
    json_object_set_new (f->release, "breaking_changes", json_string ("GET /v1/cart is gone"));
    checklist = s_checklist (f, "shop");
    assert_true (s_item (checklist, "Dependencies", "declared by the submitter (airlock does not check it): adds "
                         "libfoo@1.2.3; @scope/bar@4"));
    assert_true (s_item (checklist, "Breaking Changes", "declared by the submitter (airlock does not check it): "
                         "GET /v1/cart is gone"));
    al_checklist_destroy (&checklist);

    json_object_set_new (f->release, "dependencies_added", json_array ());
    json_object_set_new (f->release, "no_dependencies_added", json_true ());
    json_object_set_new (f->release, "breaking_changes", json_string (""));
    json_object_set_new (f->release, "no_breaking_changes", json_true ());
    checklist = s_checklist (f, "shop");
    assert_true (s_item (checklist, "Dependencies", "no new dependency"));
    assert_true (s_item (checklist, "Breaking Changes", "declared by the submitter (airlock does not check it): none"));
    al_checklist_destroy (&checklist);
}

static void
test_monitoring (void **state)
{
    s_fixture_t *f = *state;
    al_checklist_t *checklist = s_checklist (f, "shop");
    assert_true (s_item (checklist, "Monitoring", "golden signals from the monitor (/metrics on each instance)"));
    assert_true (s_item (checklist, "Monitoring", "a rollback is announced to ops-slack (slack)"));
    al_checklist_destroy (&checklist);
    //  The staging-only endpoint is not a production route.
    checklist = s_checklist (f, "shop");
    Airlock__ChecklistItem **items = al_checklist_items (checklist);
    for (size_t i = 0; i < al_checklist_size (checklist); i++)
        assert_null (strstr (items [i]->text, "staging-only"));
    al_checklist_destroy (&checklist);

    //  Probes only: said, and not ticked.
    checklist = s_checklist (f, "plain");
    assert_false (s_item (checklist, "Monitoring", "health probes only (services.yaml signals: probes)"));
    al_checklist_destroy (&checklist);

    //  No notifications.yaml: no route, not ticked.
    char path [400];
    snprintf (path, sizeof path, "%s/notifications.yaml", f->dir);
    assert_int_equal (unlink (path), 0);
    checklist = s_checklist (f, "shop");
    assert_false (s_item (checklist, "Monitoring", "NO notification route hears of a production rollback"));
    al_checklist_destroy (&checklist);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_tests_per_suite_kind, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_database_changes, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_declarations, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_monitoring, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
