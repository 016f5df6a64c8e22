/*  test_canary_soak.c: a canary rollout judged against stable, end to end.

    The broker, deploy-manager and the monitor as real processes; "canarydemo", two
    demo-service instances under the process driver with `strategy: canary`, steps
    50 % then 100 %, so during the first step one instance runs the new version
    (canary) beside one of the old (stable), for long enough that the monitor's judge
    (deploy/al_canary, the defaults of services.yaml's compare_to_stable) has well over
    min_samples scrapes on each side. Steady traffic reaches every instance. Shown:
      - a healthy canary (the same build as stable) is promoted: SUCCEEDED, after the
        monitor sampled the canary's own instance through the step;
      - a canary answering 2 % of /work with 500 (stable: none) is rolled back by
        canary_errors_vs_stable, with the Mann-Whitney figures in the trigger.
    2 %: above the judge's floor (1 point over stable). The soak rules' error_rate_increase
    judges each sample on its own, so on a loaded machine (fewer requests per scrape) one
    scrape of a 2 % canary can read 6 % and breach the default 5 points first; this
    test's quality_rules.yaml raises that rule to 25 points, so that only the judge can
    see a 2 % canary, and runs a 1 s monitor interval with a few hundred requests per
    second on each instance. That traffic keeps an instance of the ASan build near one
    core busy, so the service declares 4 cores: the test is about errors, and the CPU rule
    must not see saturation in what is only load.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include "agents_test_util.h"
#include "deploy_test_util.h"
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_SERVICE "canarydemo"
#define S_INTERVAL_MS 1000
#define S_TRAFFIC_THREADS 3

typedef struct {
    atu_fixture_t *agents;
    dtu_traffic_t *traffic [S_TRAFFIC_THREADS];
} s_fixture_t;

static int
s_setup (void **state)
{
    s_fixture_t *self = calloc (1, sizeof *self);
    assert_non_null (self);
    *state = self;
    self->agents = atu_new ();
    //  The soak rules alone must not see a 2 % canary (see above): 25 points, not 5.
    char path [600];
    snprintf (path, sizeof path, "%s/quality_rules.yaml", self->agents->harness->policy_dir);
    char *rules = dtu_read (path);
    assert_non_null (rules);
    char *at = strstr (rules, "error_rate_increase_more_than_points: 5\n");
    assert_non_null (at);
    FILE *out = fopen (path, "w");
    assert_non_null (out);
    fprintf (out, "%.*serror_rate_increase_more_than_points: 25\n%s", (int) (at - rules), rules,
             at + strlen ("error_rate_increase_more_than_points: 5\n"));
    fclose (out);
    free (rules);
    FILE *file = fopen (self->agents->services_path, "w");
    assert_non_null (file);
    fprintf (file, "version: 1\nservices:\n  " S_SERVICE ":\n    driver: process\n    instances: 2\n"
                   "    strategy: canary\n    canary: { steps: [50, 100], step_soak_ms: 14000 }\n"
                   "    soak_ms: 3000\n    probe_interval_ms: 200\n    ready_timeout_ms: 10000\n"
                   "    stop_timeout_ms: 3000\n    signals: monitor\n    command: [\"{{artifact}}\"]\n"
                   "    resources: { cpu_cores: 4 }\n");
    fclose (file);
    atu_start (self->agents, S_INTERVAL_MS);
    for (int i = 0; i < S_TRAFFIC_THREADS; i++)
        self->traffic [i] = dtu_traffic_start (self->agents->deploy_state, S_SERVICE, "staging", 500);
    return 0;
}

static int
s_teardown (void **state)
{
    s_fixture_t *self = *state;
    if (!self)
        return 0;
    for (int i = 0; i < S_TRAFFIC_THREADS; i++)
        dtu_traffic_stop (&self->traffic [i]);
    atu_destroy (&self->agents);
    free (self);
    return 0;
}

static void
test_healthy_canary_promoted (void **state)
{
    s_fixture_t *self = *state;
    json_t *receipt = atu_deploy (self->agents, S_SERVICE, "c-1", "v1", NULL, NULL, NULL);
    atu_expect (receipt, "succeeded", "");
    json_decref (receipt);
    receipt = atu_deploy (self->agents, S_SERVICE, "c-2", "v2", NULL, NULL, NULL);
    atu_expect (receipt, "succeeded", "");
    json_decref (receipt);
    //  The canary's own instance was sampled through the step (the judge's input).
    double rps = 0, error_max = 0;
    int complete = atu_complete_samples (self->agents, "c-2", "scrape", "v2", &rps, &error_max);
    if (complete < 8)
        fail_msg ("%d complete sample(s) of v2 during c-2", complete);
    print_message ("c-2: %d samples of v2's instances, %.0f requests/s on them (mean), error ratio <= %.3f\n",
                   complete, rps, error_max);
    int with_version = 0, total = 0;
    dtu_count (self->agents->deploy_state, S_SERVICE, "staging", "v2", &with_version, &total);
    assert_int_equal (with_version, 2);
    assert_int_equal (harness_count_rows (self->agents->harness, "RollbackTrigger", NULL, NULL), 0);
}

static void
test_worse_canary_rolled_back (void **state)
{
    s_fixture_t *self = *state;
    json_t *receipt = atu_deploy (self->agents, S_SERVICE, "c-3", "v3", "--error-rate 0.02", NULL, NULL);
    atu_expect (receipt, "rolled_back", "canary_errors_vs_stable");
    const char *detail = json_string_value (json_object_get (json_object_get (receipt, "rollback_trigger"), "detail"));
    if (!detail || !strstr (detail, "Mann-Whitney"))
        fail_msg ("trigger detail: %s", detail? detail: "(none)");
    json_decref (receipt);
    double rps = 0, error_max = 0;
    int complete = atu_complete_samples (self->agents, "c-3", "scrape", "v3", &rps, &error_max);
    print_message ("c-3: %d samples of v3's instance, %.0f requests/s on it (mean), error ratio <= %.3f\n",
                   complete, rps, error_max);
    int with_version = 0, total = 0;
    dtu_count (self->agents->deploy_state, S_SERVICE, "staging", "v2", &with_version, &total);
    assert_int_equal (with_version, 2);
    assert_int_equal (total, 2);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_healthy_canary_promoted),
        cmocka_unit_test (test_worse_canary_rolled_back),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
