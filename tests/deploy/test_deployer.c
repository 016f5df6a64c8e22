/*  test_deployer.c: the critical path (deploy/al_deployer) with real demo-service
    instances under the process driver, and an in-memory journal.

    What is shown: the three strategies change the running version with counts held;
    a release that fails readiness is rolled back to the recorded one, and the receipt
    names the rule; a rollback trigger during soak rolls back; a journal that cannot
    record stops everything where it stands, and a restart resumes from the journal
    without running any step twice; a finished deployment is only reported again;
    production without a verifiable grant does nothing; constraints (instances,
    budget) refuse in pre-flight; migrations are undone by down scripts or a backup
    restore; secrets never reach the evidence, the logs or the journal.
*/
#include "deploy/al_deployer.h"
#include "deploy/al_deploy_receipt.h"
#include "deploy/al_artifacts.h"
#include "deploy/al_migrate.h"
#include "deploy/al_qa_reports.h"
#include "deploy_test_util.h"
#include "policies/al_approval_sign.h"
#include "policies/al_approval_gate.h"
#include <sodium.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define S_SECRET "s3cr3t-Token-9d8c7b"
#define S_MAX_RECORDS 256

typedef struct {
    char dir [256];
    char policy_dir [300];
    char state [300];
    char services_path [300];
    char migrations [1024];
    al_policy_t *policy;
    al_services_t *services;
    al_deployer_t *deployer;
    //  The in-memory journal.
    al_deploy_record_t records [S_MAX_RECORDS];
    size_t count;
    int fail_at;                    // refuse the record with this index (-1: never)
    char trigger_rule [64];         // a rollback trigger to deliver during soak
    unsigned progress_events;
    bool monitor_alive;             // what the monitor hooks answer
    bool signals_fresh;
    uint64_t now_ms;                // the deployer's clock (0: the real one)
    char breach_rule [64];          // the quality rule the monitor's rows say is breached
    Airlock__SoakSignal signal;     // the latest SoakSignal the hook answers, when has_signal
    bool has_signal;
} s_fixture_t;

static int
s_journal (void *arg, const char *deployment_id, Airlock__Environment env, Airlock__Step step,
           Airlock__Outcome outcome, const char *detail)
{
    (void) deployment_id;
    (void) env;
    s_fixture_t *f = (s_fixture_t *) arg;
    if (f->fail_at >= 0 && (size_t) f->fail_at == f->count)
        return -1;
    assert_true (f->count < S_MAX_RECORDS);
    al_deploy_record_t *record = &f->records [f->count++];
    record->step = step;
    record->outcome = outcome;
    record->time_ms = (uint64_t) time (NULL) * 1000;
    snprintf (record->detail, sizeof record->detail, "%s", detail);
    return 0;
}

static void
s_progress (void *arg, const char *deployment_id, Airlock__Environment env, Airlock__Step step,
            Airlock__Outcome outcome, unsigned instance, unsigned instances, unsigned percent,
            const char *detail)
{
    (void) deployment_id; (void) env; (void) step; (void) outcome; (void) instance;
    (void) instances; (void) percent;
    s_fixture_t *f = (s_fixture_t *) arg;
    assert_null (strstr (detail, S_SECRET));
    f->progress_events++;
}

static bool
s_rollback_requested (void *arg, const char *deployment_id, char *rule, size_t rule_size,
                      char *detail, size_t detail_size)
{
    (void) deployment_id;
    s_fixture_t *f = (s_fixture_t *) arg;
    //  Deliver the trigger once soak has started.
    if (!f->trigger_rule [0] || f->count == 0 || f->records [f->count - 1].step != AIRLOCK__STEP__STEP_SOAK)
        return false;
    snprintf (rule, rule_size, "%s", f->trigger_rule);
    snprintf (detail, detail_size, "error rate 31%% > baseline 0%% + 5 points");
    f->trigger_rule [0] = 0;
    return true;
}

static bool
s_monitor_alive (void *arg, char *detail, size_t detail_size)
{
    s_fixture_t *f = (s_fixture_t *) arg;
    snprintf (detail, detail_size, "%s", f->monitor_alive? "monitor-1 alive": "no monitor connected");
    return f->monitor_alive;
}

//  The monitor's samples: "fresh" answers now, otherwise never.
static uint64_t
s_last_signal_ms (void *arg)
{
    s_fixture_t *f = (s_fixture_t *) arg;
    if (!f->signals_fresh)
        return 0;
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

//  The monitor's judged rows: every rule ok, but breach_rule breached; fresh when the
//  samples are.
static size_t
s_signal_rows (void *arg, al_rules_row_t *rows, size_t size, uint64_t *sample_ms)
{
    s_fixture_t *f = (s_fixture_t *) arg;
    static const char *const rules [] = { "health_check_failures", "missing_evidence", "error_rate_increase",
                                          "latency_p99_factor", "cpu_percent", "memory_percent",
                                          "error_rate_investigate" };
    if (!f->signals_fresh || size < 7)
        return 0;
    for (size_t i = 0; i < 7; i++) {
        memset (&rows [i], 0, sizeof rows [i]);
        rows [i].rule = rules [i];
        rows [i].unit = "";
        rows [i].value = 1.0;
        rows [i].limit = 2.0;
        rows [i].status = AL_RULES_ROW_OK;
        if (strcmp (rules [i], f->breach_rule) == 0) {
            rows [i].value = 3.0;
            rows [i].status = AL_RULES_ROW_BREACH;
            snprintf (rows [i].detail, sizeof rows [i].detail, "p99 3 ms > 2 x baseline");
        }
    }
    *sample_ms = s_last_signal_ms (arg);
    return 7;
}

static uint64_t
s_now_ms (void *arg)
{
    return ((s_fixture_t *) arg)->now_ms;
}

static const Airlock__SoakSignal *
s_latest_signal (void *arg)
{
    s_fixture_t *f = (s_fixture_t *) arg;
    return f->has_signal? &f->signal: NULL;
}

static al_deployer_hooks_t
s_hooks (s_fixture_t *f)
{
    al_deployer_hooks_t hooks = {
        .journal = s_journal, .progress = s_progress, .rollback_requested = s_rollback_requested,
        .monitor_alive = s_monitor_alive, .last_signal_ms = s_last_signal_ms, .latest_signal = s_latest_signal,
        .signal_rows = s_signal_rows,
        .now_ms = f->now_ms? s_now_ms: NULL, .arg = f
    };
    return hooks;
}

static void
s_open (s_fixture_t *f)
{
    char error [4096];
    f->services = al_services_load (f->services_path, error, sizeof error);
    if (!f->services)
        fail_msg ("services.yaml: %s", error);
    f->deployer = al_deployer_new (f->policy, f->services, f->state, error, sizeof error);
    if (!f->deployer)
        fail_msg ("deployer: %s", error);
    char *reports = al_qa_reports_dir (f->dir);
    assert_non_null (reports);
    al_deployer_set_qa_reports (f->deployer, reports);
    free (reports);
}

static void
s_close (s_fixture_t *f)
{
    al_deployer_destroy (&f->deployer);
    al_services_destroy (&f->services);
}

static int
s_setup (void **state)
{
    s_fixture_t *f = calloc (1, sizeof *f);
    assert_non_null (f);
    snprintf (f->dir, sizeof f->dir, "/tmp/al-deployer-XXXXXX");
    assert_non_null (mkdtemp (f->dir));
    snprintf (f->policy_dir, sizeof f->policy_dir, "%s/policy", f->dir);
    snprintf (f->state, sizeof f->state, "%s/deploy", f->dir);
    snprintf (f->services_path, sizeof f->services_path, "%s/services.yaml", f->dir);
    snprintf (f->migrations, sizeof f->migrations, "%s/examples/demo-service/migrations", getenv ("AIRLOCK_SOURCE_DIR"));
    dtu_policy (f->dir, f->policy_dir);
    //  The policy's soak (60 min, checkpoints 5/15/30/60 min) scaled to 0.72 s, so the
    //  first three checkpoints fall inside a 600 ms soak.
    char quality [400];
    snprintf (quality, sizeof quality, "%s/quality_rules.yaml", f->policy_dir);
    char *rules = dtu_read (quality);
    assert_non_null (rules);
    char *scale = strstr (rules, "time_scale: 1.0");
    assert_non_null (scale);
    FILE *out = fopen (quality, "w");
    assert_non_null (out);
    fprintf (out, "%.*stime_scale: 0.0002%s", (int) (scale - rules), rules, scale + strlen ("time_scale: 1.0"));
    fclose (out);
    free (rules);
    al_policy_errors_t *errors = NULL;
    f->policy = al_policy_load (f->policy_dir, &errors);
    if (!f->policy)
        fail_msg ("policy: %s", al_policy_errors_at (errors, 0));
    FILE *file = fopen (f->services_path, "w");
    assert_non_null (file);
    const char *common =
        "    probe_interval_ms: 100\n    ready_timeout_ms: 3000\n    stop_timeout_ms: 3000\n"
        "    start_timeout_ms: 10000\n    command: [\"{{artifact}}\"]\n    signals: probes\n";
    fprintf (file,
        "version: 1\nservices:\n"
        "  demo:\n    driver: process\n    instances: 3\n    strategy: rolling\n"
        "    canary: { steps: [34, 67, 100], step_soak_ms: 200 }\n    soak_ms: 600\n%s"
        "    secrets: [ { name: token, env: AL_TEST_DEPLOY_TOKEN, as: SERVICE_TOKEN } ]\n"
        "  shop:\n    driver: process\n    instances: 1\n    soak_ms: 300\n%s"
        "    database: { staging: %s/shop.db }\n    migrations: %s\n    data_rollback: down\n"
        "  shop2:\n    driver: process\n    instances: 1\n    soak_ms: 300\n%s"
        "    database: { staging: %s/shop2.db }\n    migrations: %s\n    data_rollback: restore\n"
        "  pricey:\n    driver: process\n    instances: 6\n    cost_per_instance_usd_month: 100\n%s"
        "  brief:\n    driver: process\n    instances: 1\n%s"
        "    soak: { duration_ms: 1000000, reason: \"stateless; 200 s covers its cache warm-up\" }\n"
        "  watched:\n    driver: process\n    instances: 2\n    soak_ms: 500\n"
        "    probe_interval_ms: 100\n    ready_timeout_ms: 3000\n    command: [\"{{artifact}}\"]\n"
        "  smoky:\n    driver: process\n    instances: 2\n    soak_ms: 300\n%s"
        "    qa:\n      smoke:\n        - { name: health, path: /healthz, status: 200, body_contains: ok }\n"
        "        - { name: work, path: \"/work?n=1\", status: 200 }\n",
        common, common, f->dir, f->migrations, common, f->dir, f->migrations, common, common, common);
    fclose (file);
    setenv ("AL_TEST_DEPLOY_TOKEN", S_SECRET, 1);
    f->fail_at = -1;
    s_open (f);
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    s_fixture_t *f = *state;
    s_close (f);
    al_policy_destroy (&f->policy);
    dtu_remove_tree (f->dir);
    free (f);
    return 0;
}

//  A staging request for service/version with the artifact's digest.
typedef struct {
    Airlock__DeployRequest request;
    char path [1024];
    char sha [65];
    char qa_digest [65];            // s_run_granted: the stored QA report the grant binds
} s_release_t;

static void
s_release (s_fixture_t *f, s_release_t *release, const char *service, const char *version,
           const char *extra, Airlock__Strategy strategy)
{
    char name [64];
    snprintf (name, sizeof name, "%s-%s", service, version);
    dtu_artifact (f->dir, name, version, extra, release->path, sizeof release->path, release->sha);
    airlock__deploy_request__init (&release->request);
    release->request.service = (char *) service;
    release->request.version = (char *) version;
    release->request.artifact_uri = release->path;
    release->request.artifact_sha256 = release->sha;
    release->request.strategy = strategy;
    release->request.deployment_type = AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD;
}

static al_deploy_result_t *
s_run_journal (s_fixture_t *f, const char *deployment_id, Airlock__Environment env,
               const Airlock__DeployRequest *request, const al_deploy_journal_t *journal, int expect_rc)
{
    al_deploy_job_t job = { .deployment_id = deployment_id, .environment = env, .request = request,
                            .execute = NULL, .journal = journal };
    al_deployer_hooks_t hooks = s_hooks (f);
    al_deploy_result_t *result = calloc (1, sizeof *result);
    assert_non_null (result);
    int rc = al_deployer_run (f->deployer, &job, &hooks, result);
    if (rc != expect_rc)
        fail_msg ("%s: run returned %d (%s: %s)", deployment_id, rc, al_outcome_name (result->outcome), result->detail);
    return result;
}

static al_deploy_result_t *
s_run (s_fixture_t *f, const char *deployment_id, const Airlock__DeployRequest *request)
{
    f->count = 0;
    return s_run_journal (f, deployment_id, AIRLOCK__ENVIRONMENT__ENV_STAGING, request, NULL, 0);
}

static void
s_expect (al_deploy_result_t *result, Airlock__Outcome outcome, const char *rule)
{
    if (result->outcome != outcome)
        fail_msg ("outcome %s, expected %s: %s", al_outcome_name (result->outcome), al_outcome_name (outcome),
                  result->detail);
    assert_string_equal (result->rollback_rule, rule);
}

static void
s_expect_running (s_fixture_t *f, const char *service, const char *version, int count)
{
    int with_version = 0, total = 0;
    dtu_count (f->state, service, "staging", version, &with_version, &total);
    if (with_version != count || total != count)
        fail_msg ("%s: %d instance(s) of %s answer, %d run; expected %d", service, with_version, version, total, count);
}

//  Every step started at most once in the journal (rollback included), and the receipt
//  is recorded after everything else.
static void
s_expect_no_step_twice (s_fixture_t *f)
{
    unsigned started [8] = { 0 };
    for (size_t i = 0; i < f->count; i++)
        if (f->records [i].outcome == AIRLOCK__OUTCOME__OUTCOME_STARTED)
            started [f->records [i].step]++;
    for (int step = 1; step < 8; step++)
        if (started [step] > 1)
            fail_msg ("step %s started %u times", al_step_name ((Airlock__Step) step), started [step]);
    assert_true (f->count >= 2);
    assert_int_equal (f->records [f->count - 1].step, AIRLOCK__STEP__STEP_RECEIPT);
}

static json_t *
s_evidence (s_fixture_t *f, const char *deployment_id, const char *name)
{
    char path [1024];
    snprintf (path, sizeof path, "%s/.artifacts/deployment/%s/%s", f->state, deployment_id, name);
    json_error_t error;
    json_t *root = json_load_file (path, 0, &error);
    if (!root)
        fail_msg ("%s: %s", path, error.text);
    return root;
}

//  The receipt's Definition of Done point id has status, and its reason holds in_reason.
static void
s_expect_point (json_t *receipt, const char *id, const char *status, const char *in_reason)
{
    size_t index;
    json_t *point;
    json_array_foreach (json_object_get (receipt, "definition_of_done"), index, point) {
        if (strcmp (json_string_value (json_object_get (point, "id")), id) != 0)
            continue;
        const char *got = json_string_value (json_object_get (point, "status"));
        const char *reason = json_string_value (json_object_get (point, "reason"));
        if (strcmp (got, status) != 0 || !reason || (in_reason && !strstr (reason, in_reason)))
            fail_msg ("%s: %s (%s), expected %s with '%s'", id, got, reason? reason: "", status,
                      in_reason? in_reason: "");
        return;
    }
    fail_msg ("the receipt has no point %s", id);
}

static void
test_rolling_and_failed_readiness (void **state)
{
    s_fixture_t *f = *state;
    s_release_t v1, v2, v3;
    s_release (f, &v1, "demo", "v1", NULL, AIRLOCK__STRATEGY__STRATEGY_ROLLING);
    s_release (f, &v2, "demo", "v2", NULL, AIRLOCK__STRATEGY__STRATEGY_ROLLING);
    s_release (f, &v3, "demo", "v3", "--fail-readiness", AIRLOCK__STRATEGY__STRATEGY_ROLLING);

    al_deploy_result_t *result = s_run (f, "dep-v1", &v1.request);
    s_expect (result, AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED, "");
    s_expect_no_step_twice (f);
    s_expect_running (f, "demo", "v1", 3);
    free (result);

    result = s_run (f, "dep-v2", &v2.request);
    s_expect (result, AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED, "");
    assert_string_equal (result->previous_version, "v1");
    s_expect_running (f, "demo", "v2", 3);
    assert_true (f->progress_events > 6);
    //  The evidence, with seed 003's names, and the receipt whose digest we report.
    const char *names [] = { "connectivity-report.json", "health-check-report.json", "staging-deployment.json",
                             "smoke-test-results.json", "performance-baseline.json" };
    for (size_t i = 0; i < sizeof names / sizeof names [0]; i++)
        json_decref (s_evidence (f, "dep-v2", names [i]));
    //  The staging soak lasted the shorter of services.yaml's 600 ms and the policy's scaled
    //  720 ms, and passed the three checkpoints inside it (5, 15 and 30 min scaled: 60, 180,
    //  360 ms), each with its own check, then the last check (all normal) at its end.
    json_t *smoke = s_evidence (f, "dep-v2", "smoke-test-results.json");
    assert_int_equal (json_integer_value (json_object_get (smoke, "soak_ms")), 600);
    assert_int_equal (json_integer_value (json_object_get (smoke, "checkpoints_passed")), 4);
    const char *checks [] = { "initial health", "error rate", "performance", "all normal" };
    const json_int_t at [] = { 60, 180, 360, 600 };
    json_t *checkpoints = json_object_get (smoke, "checkpoints");
    assert_int_equal (json_array_size (checkpoints), 4);
    for (size_t i = 0; i < 4; i++) {
        json_t *checkpoint = json_array_get (checkpoints, i);
        assert_string_equal (json_string_value (json_object_get (checkpoint, "check")), checks [i]);
        assert_int_equal (json_integer_value (json_object_get (checkpoint, "at_ms")), at [i]);
        assert_true (json_is_true (json_object_get (checkpoint, "passed")));
        assert_non_null (strstr (json_string_value (json_object_get (checkpoint, "detail")), "3 of 3 instance(s) healthy"));
    }
    //  signals: probes has no error rate or latency to judge: said, not ticked silently.
    assert_non_null (strstr (json_string_value (json_object_get (json_array_get (checkpoints, 1), "detail")),
                             "error rate not applicable"));
    json_decref (smoke);
    json_t *receipt = s_evidence (f, "dep-v2", "deploy_receipt.json");
    assert_string_equal (json_string_value (json_object_get (receipt, "outcome")), "succeeded");
    assert_string_equal (json_string_value (json_object_get (receipt, "previous_version")), "v1");
    //  Done from evidence: no database, so no backup or migration is ticked; staging needs
    //  neither a QA report (QA runs after) nor approvals.
    assert_true (json_is_true (json_object_get (receipt, "done")));
    s_expect_point (receipt, "backup_verified", "not_applicable", "no database in staging");
    s_expect_point (receipt, "migrations_applied", "not_applicable", "no migrations");
    s_expect_point (receipt, "qa_approved", "not_applicable", "QA validates a staging deploy");
    s_expect_point (receipt, "approvals_valid", "not_applicable", NULL);
    s_expect_point (receipt, "rollout_healthy", "true", NULL);
    s_expect_point (receipt, "soak_passed", "true", "4 checkpoint(s) passed");
    s_expect_point (receipt, "receipt_recorded", "true", NULL);
    assert_int_equal (json_array_size (json_object_get (receipt, "steps")), 5);
    json_t *steps = json_object_get (receipt, "steps");
    for (size_t i = 0; i < 5; i++) {
        json_t *step = json_array_get (steps, i);
        assert_true (json_integer_value (json_object_get (step, "ended_ms"))
                     >= json_integer_value (json_object_get (step, "started_ms")));
    }
    json_decref (receipt);
    char sha [65], error [256];
    assert_int_equal (al_sha256_file_hex (result->receipt_path, sha, error, sizeof error), 0);
    assert_string_equal (sha, result->receipt_sha256);
    //  The receipt's owner reads back what the receipt step wrote (deploy/al_deploy_receipt).
    al_deploy_receipt_t read_back;
    char read_error [4400];
    assert_int_equal (al_deploy_receipt_load (f->dir, "dep-v2", &read_back, read_error, sizeof read_error), 0);
    assert_string_equal (read_back.path, result->receipt_path);
    assert_string_equal (read_back.sha256, result->receipt_sha256);
    assert_string_equal (read_back.format, AL_DEPLOY_RECEIPT_FORMAT);
    assert_string_equal (read_back.deployment_id, "dep-v2");
    assert_string_equal (read_back.outcome, "succeeded");
    assert_string_equal (read_back.previous_version, "v1");
    assert_true (read_back.done);
    free (result);

    //  v3 never gets ready: the rollout stops, v2 is restored, the receipt names the rule.
    result = s_run (f, "dep-v3", &v3.request);
    s_expect (result, AIRLOCK__OUTCOME__OUTCOME_ROLLED_BACK, "rollout_failed");
    s_expect_no_step_twice (f);
    s_expect_running (f, "demo", "v2", 3);
    char version [64];
    al_deployer_current (f->deployer, "demo", AIRLOCK__ENVIRONMENT__ENV_STAGING, version, sizeof version);
    assert_string_equal (version, "v2");
    receipt = s_evidence (f, "dep-v3", "deploy_receipt.json");
    assert_string_equal (json_string_value (json_object_get (receipt, "outcome")), "rolled_back");
    assert_string_equal (json_string_value (json_object_get (receipt, "rollback_rule")), "rollout_failed");
    assert_true (json_is_false (json_object_get (receipt, "done")));
    s_expect_point (receipt, "rollout_healthy", "false", "the rollout failed");
    s_expect_point (receipt, "soak_passed", "false", "rule rollout_failed");
    json_decref (receipt);
    free (result);

    //  No secret anywhere: evidence, driver logs, release records, journal. The service
    //  did print it (the artifact echoes it), so the logs hold the redaction mark.
    assert_false (dtu_tree_contains (f->state, S_SECRET));
    assert_true (dtu_tree_contains (f->state, "[REDACTED:token]"));
    for (size_t i = 0; i < f->count; i++)
        assert_null (strstr (f->records [i].detail, S_SECRET));
}

static void
test_canary_blue_green_and_trigger (void **state)
{
    s_fixture_t *f = *state;
    s_release_t v1, v2, v3, v4;
    s_release (f, &v1, "demo", "v1", NULL, AIRLOCK__STRATEGY__STRATEGY_ROLLING);
    s_release (f, &v2, "demo", "v2", NULL, AIRLOCK__STRATEGY__STRATEGY_CANARY);
    s_release (f, &v3, "demo", "v3", NULL, AIRLOCK__STRATEGY__STRATEGY_BLUE_GREEN);
    s_release (f, &v4, "demo", "v4", NULL, AIRLOCK__STRATEGY__STRATEGY_CANARY);
    al_deploy_result_t *result = s_run (f, "dep-1", &v1.request);
    s_expect (result, AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED, "");
    free (result);
    result = s_run (f, "dep-2", &v2.request);
    s_expect (result, AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED, "");
    s_expect_running (f, "demo", "v2", 3);
    free (result);
    result = s_run (f, "dep-3", &v3.request);
    s_expect (result, AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED, "");
    s_expect_running (f, "demo", "v3", 3);      // the old set was stopped after soak
    free (result);

    //  The monitor's trigger during soak: rolled back to v3, the rule in the receipt.
    snprintf (f->trigger_rule, sizeof f->trigger_rule, "error_rate");
    result = s_run (f, "dep-4", &v4.request);
    s_expect (result, AIRLOCK__OUTCOME__OUTCOME_ROLLED_BACK, "error_rate");
    s_expect_no_step_twice (f);
    s_expect_running (f, "demo", "v3", 3);
    json_t *receipt = s_evidence (f, "dep-4", "deploy_receipt.json");
    assert_string_equal (json_string_value (json_object_get (receipt, "rollback_rule")), "error_rate");
    //  The soak did not pass, and the receipt says which rule broke.
    assert_true (json_is_false (json_object_get (receipt, "done")));
    s_expect_point (receipt, "soak_passed", "false", "rule error_rate: rollback trigger error_rate");
    s_expect_point (receipt, "rollout_healthy", "true", NULL);
    assert_non_null (strstr (json_string_value (json_object_get (receipt, "done_reason")), "rolled_back"));
    json_decref (receipt);
    free (result);
}

static void
test_resume_after_crash (void **state)
{
    s_fixture_t *f = *state;
    s_release_t v1, v2, v3;
    s_release (f, &v1, "demo", "v1", NULL, AIRLOCK__STRATEGY__STRATEGY_ROLLING);
    s_release (f, &v2, "demo", "v2", NULL, AIRLOCK__STRATEGY__STRATEGY_ROLLING);
    s_release (f, &v3, "demo", "v3", NULL, AIRLOCK__STRATEGY__STRATEGY_ROLLING);
    al_deploy_result_t *result = s_run (f, "dep-1", &v1.request);
    s_expect (result, AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED, "");
    free (result);

    //  The journal stops answering when rollout would be recorded as finished: the run
    //  stops unrecorded, right there (no soak, no receipt, no rollback).
    f->count = 0;
    f->fail_at = 7;     // preflight 2, backup 2, migrate 2, rollout started = 7 records
    result = s_run_journal (f, "dep-2", AIRLOCK__ENVIRONMENT__ENV_STAGING, &v2.request, NULL, -1);
    assert_true (result->unrecorded);
    assert_int_equal (f->count, 7);
    assert_int_equal (f->records [6].step, AIRLOCK__STEP__STEP_ROLLOUT);
    assert_int_equal (f->records [6].outcome, AIRLOCK__OUTCOME__OUTCOME_STARTED);
    free (result);

    //  "Restart": a new deployer (the process driver's instances went with the old one),
    //  reconcile brings back the recorded release, the run resumes from the journal:
    //  rollout was interrupted, so it is rolled back, and nothing runs twice.
    s_close (f);
    s_open (f);
    al_deployer_hooks_t hooks = s_hooks (f);
    assert_int_equal (al_deployer_reconcile (f->deployer, &hooks), 0);
    s_expect_running (f, "demo", "v1", 3);
    f->fail_at = -1;
    al_deploy_journal_t journal;
    journal.count = f->count;
    journal.records = calloc (f->count, sizeof *journal.records);
    memcpy (journal.records, f->records, f->count * sizeof *journal.records);
    result = s_run_journal (f, "dep-2", AIRLOCK__ENVIRONMENT__ENV_STAGING, &v2.request, &journal, 0);
    s_expect (result, AIRLOCK__OUTCOME__OUTCOME_ROLLED_BACK, "interrupted");
    s_expect_no_step_twice (f);
    s_expect_running (f, "demo", "v1", 3);
    free (result);

    //  Run again with the whole journal: already finished, reported, nothing recorded.
    size_t before = f->count;
    free (journal.records);
    journal.count = f->count;
    journal.records = calloc (f->count, sizeof *journal.records);
    memcpy (journal.records, f->records, f->count * sizeof *journal.records);
    result = s_run_journal (f, "dep-2", AIRLOCK__ENVIRONMENT__ENV_STAGING, &v2.request, &journal, 0);
    assert_true (result->replayed);
    assert_int_equal (result->outcome, AIRLOCK__OUTCOME__OUTCOME_ROLLED_BACK);
    assert_int_equal (f->count, before);
    free (result);
    free (journal.records);

    //  Interrupted in pre-flight (nothing changed yet): the deployment fails, no rollback.
    al_deploy_record_t started = { .step = AIRLOCK__STEP__STEP_PREFLIGHT, .outcome = AIRLOCK__OUTCOME__OUTCOME_STARTED };
    journal.count = 1;
    journal.records = &started;
    f->count = 0;
    result = s_run_journal (f, "dep-3", AIRLOCK__ENVIRONMENT__ENV_STAGING, &v3.request, &journal, 0);
    s_expect (result, AIRLOCK__OUTCOME__OUTCOME_FAILED, "");
    for (size_t i = 0; i < f->count; i++) {
        assert_true (f->records [i].step == AIRLOCK__STEP__STEP_PREFLIGHT || f->records [i].step == AIRLOCK__STEP__STEP_RECEIPT);
        assert_false (f->records [i].step == AIRLOCK__STEP__STEP_PREFLIGHT && f->records [i].outcome == AIRLOCK__OUTCOME__OUTCOME_STARTED);
    }
    s_expect_running (f, "demo", "v1", 3);
    free (result);
}

static void
test_production_without_grant_and_constraints (void **state)
{
    s_fixture_t *f = *state;
    s_release_t v1, big;
    s_release (f, &v1, "demo", "v1", NULL, AIRLOCK__STRATEGY__STRATEGY_ROLLING);
    f->count = 0;
    al_deploy_result_t *result = s_run_journal (f, "dep-prod", AIRLOCK__ENVIRONMENT__ENV_PRODUCTION,
                                                &v1.request, NULL, 0);
    s_expect (result, AIRLOCK__OUTCOME__OUTCOME_FAILED, "");
    assert_non_null (strstr (result->detail, "production_grant"));
    int with_version = 0, total = 0;
    dtu_count (f->state, "demo", "production", "v1", &with_version, &total);
    assert_int_equal (total, 0);
    for (size_t i = 0; i < f->count; i++)
        assert_true (f->records [i].step == AIRLOCK__STEP__STEP_PREFLIGHT || f->records [i].step == AIRLOCK__STEP__STEP_RECEIPT);
    free (result);

    //  Cost guardrail: 6 × 100 USD > staging's 500 USD budget; 11 instances > 10.
    s_release (f, &big, "pricey", "v1", NULL, AIRLOCK__STRATEGY__STRATEGY_ROLLING);
    result = s_run (f, "dep-pricey", &big.request);
    s_expect (result, AIRLOCK__OUTCOME__OUTCOME_FAILED, "");
    json_t *report = s_evidence (f, "dep-pricey", "connectivity-report.json");
    json_t *checks = json_object_get (report, "checks");
    bool budget_failed = false;
    size_t index;
    json_t *check;
    json_array_foreach (checks, index, check)
        if (strcmp (json_string_value (json_object_get (check, "check")), "monthly_budget") == 0)
            budget_failed = json_is_false (json_object_get (check, "ok"));
    assert_true (budget_failed);
    json_decref (report);
    free (result);
    big.request.instances = 11;
    big.request.service = (char *) "demo";
    result = s_run (f, "dep-many", &big.request);
    s_expect (result, AIRLOCK__OUTCOME__OUTCOME_FAILED, "");
    assert_non_null (strstr (result->detail, "max_instances"));
    free (result);
}

//  A rollback-typed deploy (no staging, no QA, devops only) may only go back to the
//  release that ran before: a "rollback" carrying anything else fails pre-flight.
static void
test_rollback_only_to_previous (void **state)
{
    s_fixture_t *f = *state;
    s_release_t v1, v2, v3;
    s_release (f, &v1, "demo", "v1", NULL, AIRLOCK__STRATEGY__STRATEGY_ROLLING);
    s_release (f, &v2, "demo", "v2", NULL, AIRLOCK__STRATEGY__STRATEGY_ROLLING);
    s_release (f, &v3, "demo", "v3", NULL, AIRLOCK__STRATEGY__STRATEGY_ROLLING);
    //  Nothing ran before: nothing to roll back to.
    v1.request.deployment_type = AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_ROLLBACK;
    al_deploy_result_t *result = s_run (f, "dep-rb0", &v1.request);
    s_expect (result, AIRLOCK__OUTCOME__OUTCOME_FAILED, "");
    assert_non_null (strstr (result->detail, "rollback_target"));
    free (result);
    v1.request.deployment_type = AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD;
    result = s_run (f, "dep-v1", &v1.request);
    s_expect (result, AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED, "");
    free (result);
    result = s_run (f, "dep-v2", &v2.request);
    s_expect (result, AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED, "");
    free (result);
    //  A new artifact dressed as a rollback: refused, v2 keeps running.
    v3.request.deployment_type = AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_ROLLBACK;
    result = s_run (f, "dep-rb3", &v3.request);
    s_expect (result, AIRLOCK__OUTCOME__OUTCOME_FAILED, "");
    assert_non_null (strstr (result->detail, "rollback_target"));
    free (result);
    s_expect_running (f, "demo", "v2", 3);
    //  v1's version with another artifact: refused too.
    v1.request.deployment_type = AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_ROLLBACK;
    v1.request.artifact_sha256 = v2.sha;
    result = s_run (f, "dep-rb-swap", &v1.request);
    s_expect (result, AIRLOCK__OUTCOME__OUTCOME_FAILED, "");
    free (result);
    //  Back to v1 itself: done.
    v1.request.artifact_sha256 = v1.sha;
    result = s_run (f, "dep-rb1", &v1.request);
    s_expect (result, AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED, "");
    free (result);
    s_expect_running (f, "demo", "v1", 3);
}

//  An approver (alice, manager) whose secret key goes to secret_key, and a deploy window
//  open all day (the standard and scheduled types require one); the deployer reopened.
static void
s_approver_policy (s_fixture_t *f, uint8_t secret_key [64])
{
    assert_true (sodium_init () >= 0);
    uint8_t public_key [32];
    crypto_sign_keypair (public_key, secret_key);
    char hex [65], path [400];
    sodium_bin2hex (hex, sizeof hex, public_key, sizeof public_key);
    snprintf (path, sizeof path, "%s/approvers.yaml", f->policy_dir);
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fprintf (file, "approvers:\n  - name: alice\n    roles: [manager]\n    keys:\n      - {id: a1, ed25519: \"%s\"}\n", hex);
    fclose (file);
    snprintf (path, sizeof path, "%s/constraints.yaml", f->policy_dir);
    char *constraints = dtu_read (path);
    assert_non_null (constraints);
    char *windows = strstr (constraints, "  windows: []\n");
    assert_non_null (windows);
    *windows = 0;
    file = fopen (path, "w");
    assert_non_null (file);
    fprintf (file, "%s  windows:\n    - {days: [monday, tuesday, wednesday, thursday, friday, saturday, sunday], "
             "start: \"00:00\", end: \"24:00\"}\n%s", constraints, windows + strlen ("  windows: []\n"));
    fclose (file);
    free (constraints);
    s_close (f);
    al_policy_destroy (&f->policy);
    al_policy_errors_t *errors = NULL;
    f->policy = al_policy_load (f->policy_dir, &errors);
    if (!f->policy)
        fail_msg ("policy: %s", al_policy_errors_at (errors, 0));
    s_open (f);
}

//  A standard production request for release, granted by alice now, with its QA report.
typedef struct {
    Airlock__ApprovalRequest filed;
    al_approval_signed_t *approval;
    Airlock__SignedApproval *signatures [1];
    Airlock__ProductionGrant grant;
    Airlock__ExecuteDeploy execute;
} s_granted_t;


static al_deploy_result_t *
s_run_granted (s_fixture_t *f, const char *deployment_id, s_release_t *release, const uint8_t secret_key [64])
{
    s_granted_t g;
    memset (&g, 0, sizeof g);
    uint64_t now = (uint64_t) time (NULL) * 1000;
    airlock__approval_request__init (&g.filed);
    g.filed.request_id = (char *) deployment_id;
    g.filed.deployment_type = AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD;
    g.filed.environment = AIRLOCK__ENVIRONMENT__ENV_PRODUCTION;
    g.filed.service = release->request.service;
    g.filed.version = release->request.version;
    g.filed.artifact_uri = release->path;
    g.filed.artifact_sha256 = release->sha;
    //  Pre-flight opens the report the grant binds: it is kept, approved, for this artifact.
    dtu_qa_report (f->dir, release->sha, true, release->qa_digest);
    g.filed.qa_report_sha256 = release->qa_digest;
    g.filed.requested_by = (char *) "orchestrator";
    al_approval_sign_options_t options = { .decision = AIRLOCK__DECISION__DECISION_GRANT,
                                      .issued_at_ms = now - 1000, .valid_for_ms = 3600000 };
    char error [256];
    g.approval = al_approval_sign_with_secret (&g.filed, secret_key, &options, error, sizeof error);
    if (!g.approval)
        fail_msg ("sign: %s", error);
    g.signatures [0] = (Airlock__SignedApproval *) al_approval_signed_message (g.approval);
    airlock__production_grant__init (&g.grant);
    g.grant.request_id = (char *) deployment_id;
    g.grant.request = &g.filed;
    g.grant.n_approvals = 1;
    g.grant.approvals = g.signatures;
    g.grant.granted_at_ms = now;
    airlock__execute_deploy__init (&g.execute);
    g.execute.request = &release->request;
    g.execute.grant = &g.grant;
    al_deploy_job_t job = { .deployment_id = deployment_id, .environment = AIRLOCK__ENVIRONMENT__ENV_PRODUCTION,
                            .request = &release->request, .execute = &g.execute, .journal = NULL };
    al_deployer_hooks_t hooks = s_hooks (f);
    al_deploy_result_t *result = calloc (1, sizeof *result);
    assert_non_null (result);
    f->count = 0;
    assert_int_equal (al_deployer_run (f->deployer, &job, &hooks, result), 0);
    al_approval_signed_destroy (&g.approval);
    return result;
}

//  A scheduled deployment granted inside its window but started after it ends (deploy-
//  manager busy or restarting): pre-flight refuses it, though the grant still verifies.
static void
test_scheduled_window_at_preflight (void **state)
{
    s_fixture_t *f = *state;
    uint8_t secret_key [64];
    s_approver_policy (f, secret_key);
    s_release_t v1;
    s_release (f, &v1, "demo", "v1", NULL, AIRLOCK__STRATEGY__STRATEGY_ROLLING);
    v1.request.deployment_type = AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_SCHEDULED;
    v1.request.instances = 3;
    uint64_t start = (uint64_t) time (NULL) * 1000 - 3600000;      //  a window from an hour ago...
    Airlock__ApprovalRequest filed = AIRLOCK__APPROVAL_REQUEST__INIT;
    filed.request_id = (char *) "sched-1";
    filed.deployment_type = AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_SCHEDULED;
    filed.environment = AIRLOCK__ENVIRONMENT__ENV_PRODUCTION;
    filed.service = (char *) "demo";
    filed.version = (char *) "v1";
    filed.artifact_uri = v1.path;
    filed.artifact_sha256 = v1.sha;
    char qa_digest [65];
    dtu_qa_report (f->dir, v1.sha, true, qa_digest);
    filed.qa_report_sha256 = qa_digest;
    filed.requested_by = (char *) "orchestrator";
    filed.window_start_ms = start;
    filed.window_end_ms = start + 1800000;                          //  ...that closed 30 min ago
    al_approval_sign_options_t options = { .decision = AIRLOCK__DECISION__DECISION_GRANT,
                                      .issued_at_ms = start + 600000, .valid_for_ms = 3600000 };
    char error [256];
    al_approval_signed_t *approval = al_approval_sign_with_secret (&filed, secret_key, &options, error, sizeof error);
    assert_non_null (approval);
    Airlock__SignedApproval *signatures [1] = { (Airlock__SignedApproval *) al_approval_signed_message (approval) };
    Airlock__ProductionGrant grant = AIRLOCK__PRODUCTION_GRANT__INIT;
    grant.request_id = (char *) "sched-1";
    grant.request = &filed;
    grant.n_approvals = 1;
    grant.approvals = signatures;
    grant.granted_at_ms = start + 900000;                           //  granted inside the window
    Airlock__ExecuteDeploy execute = AIRLOCK__EXECUTE_DEPLOY__INIT;
    execute.request = &v1.request;
    execute.grant = &grant;
    //  Started now, 30 minutes after the window closed (within the approvals' expiry).
    f->now_ms = (uint64_t) time (NULL) * 1000;
    al_deploy_job_t job = { .deployment_id = "sched-1", .environment = AIRLOCK__ENVIRONMENT__ENV_PRODUCTION,
                            .request = &v1.request, .execute = &execute, .journal = NULL };
    al_deployer_hooks_t hooks = s_hooks (f);
    al_deploy_result_t result;
    memset (&result, 0, sizeof result);
    f->count = 0;
    assert_int_equal (al_deployer_run (f->deployer, &job, &hooks, &result), 0);
    s_expect (&result, AIRLOCK__OUTCOME__OUTCOME_FAILED, "");
    if (!strstr (result.detail, "scheduled_window") || strstr (result.detail, "production_grant"))
        fail_msg ("expected only scheduled_window to fail: %s", result.detail);
    int with_version = 0, total = 0;
    dtu_count (f->state, "demo", "production", "v1", &with_version, &total);
    assert_int_equal (total, 0);
    al_approval_signed_destroy (&approval);
    f->now_ms = 0;
}

//  Production pre-flight opens the QA report the approvers signed for: a digest with no
//  kept report, a report that does not approve, one for another artifact and one altered
//  on disk are refused (check qa_report_approved, before anything runs); the report that
//  approves this artifact lets the deployment through.
static void
test_qa_report_opened_at_preflight (void **state)
{
    s_fixture_t *f = *state;
    assert_true (sodium_init () >= 0);
    uint8_t public_key [32], secret_key [64];
    crypto_sign_keypair (public_key, secret_key);
    char hex [65], path [400];
    sodium_bin2hex (hex, sizeof hex, public_key, sizeof public_key);
    snprintf (path, sizeof path, "%s/approvers.yaml", f->policy_dir);
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fprintf (file, "approvers:\n  - name: alice\n    roles: [manager]\n    keys:\n      - {id: a1, ed25519: \"%s\"}\n", hex);
    fclose (file);
    dtu_open_calendar (f->policy_dir);
    s_close (f);
    al_policy_destroy (&f->policy);
    al_policy_errors_t *errors = NULL;
    f->policy = al_policy_load (f->policy_dir, &errors);
    if (!f->policy)
        fail_msg ("policy: %s", al_policy_errors_at (errors, 0));
    s_open (f);

    s_release_t v1, other;
    s_release (f, &v1, "demo", "v1", NULL, AIRLOCK__STRATEGY__STRATEGY_ROLLING);
    s_release (f, &other, "demo", "v0", NULL, AIRLOCK__STRATEGY__STRATEGY_ROLLING);
    char missing [65], refused [65], elsewhere [65], altered [65], good [65];
    memset (missing, 'a', 64);
    missing [64] = 0;
    dtu_qa_report (f->dir, v1.sha, false, refused);
    dtu_qa_report (f->dir, other.sha, true, elsewhere);
    //  Altered: kept as approving v1, then its bytes changed (and so no longer its name).
    char *store = al_qa_reports_dir (f->dir);
    char *text = NULL;
    dtu_qa_report (f->dir, v1.sha, true, altered);
    snprintf (path, sizeof path, "%s/%s.json", store, altered);
    assert_int_equal (chmod (path, 0600), 0);
    text = dtu_read (path);
    assert_non_null (text);
    file = fopen (path, "w");
    assert_non_null (file);
    fprintf (file, "%s ", text);
    fclose (file);
    //  Never overwritten: keeping the original again finds other bytes under its name.
    char error [512], again [65];
    assert_int_equal (al_qa_reports_put (store, text, strlen (text), again, error, sizeof error), -1);
    assert_non_null (strstr (error, "already kept with other bytes"));
    free (text);
    free (store);
    //  The good one: approves v1, as the qa agent writes it (one more key, other bytes).
    json_t *report = json_pack ("{s:i, s:s, s:s, s:s, s:b}", "format", 1, "service", "demo", "artifact_sha256",
                                v1.sha, "recommendation", "ship it", "approved", true);
    text = json_dumps (report, JSON_INDENT (2));
    store = al_qa_reports_dir (f->dir);
    assert_int_equal (al_qa_reports_put (store, text, strlen (text), good, error, sizeof error), 0);
    //  Kept again, the same bytes: the same name, nothing changes.
    char same [65];
    assert_int_equal (al_qa_reports_put (store, text, strlen (text), same, error, sizeof error), 0);
    assert_string_equal (same, good);
    free (text);
    //  Approved by a QA that judged its scan within laxer limits than the policy's now
    //  (max_high 0): pre-flight refuses it.
    char scanned [65];
    json_object_set_new (report, "security_scan", json_pack ("{s:{s:i, s:i, s:i, s:i}, s:b, s:b}", "totals",
                         "critical", 0, "high", 1, "medium", 0, "low", 0, "within_limits", 1, "complete", 1));
    text = json_dumps (report, JSON_INDENT (2));
    assert_int_equal (al_qa_reports_put (store, text, strlen (text), scanned, error, sizeof error), 0);
    free (store);
    free (text);
    json_decref (report);

    const struct { const char *digest; const char *expect; } cases [] = {
        { scanned, "security scan: critical 0, high 1, medium 0, low 0; over quality_rules.yaml security_scan: "
                   "1 high (max_high 0)" },
        { missing, "is not kept" },
        { refused, "\"approved\" is not true" },
        { elsewhere, "not the deployed artifact's" },
        { altered, "altered" },
        { good, NULL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        char id [32];
        snprintf (id, sizeof id, "qa-%zu", i);
        Airlock__ApprovalRequest filed = AIRLOCK__APPROVAL_REQUEST__INIT;
        filed.request_id = id;
        filed.deployment_type = AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD;
        filed.environment = AIRLOCK__ENVIRONMENT__ENV_PRODUCTION;
        filed.service = (char *) "demo";
        filed.version = (char *) "v1";
        filed.artifact_uri = v1.path;
        filed.artifact_sha256 = v1.sha;
        filed.qa_report_sha256 = (char *) cases [i].digest;
        filed.requested_by = (char *) "orchestrator";
        uint64_t now = (uint64_t) time (NULL) * 1000;
        al_approval_sign_options_t options = { .decision = AIRLOCK__DECISION__DECISION_GRANT,
                                          .issued_at_ms = now - 60000, .valid_for_ms = 3600000 };
        al_approval_signed_t *approval = al_approval_sign_with_secret (&filed, secret_key, &options, error, sizeof error);
        if (!approval)
            fail_msg ("sign: %s", error);
        Airlock__SignedApproval *signatures [1] = { (Airlock__SignedApproval *) al_approval_signed_message (approval) };
        Airlock__ProductionGrant grant = AIRLOCK__PRODUCTION_GRANT__INIT;
        grant.request_id = id;
        grant.request = &filed;
        grant.n_approvals = 1;
        grant.approvals = signatures;
        grant.granted_at_ms = now - 30000;
        Airlock__ExecuteDeploy execute = AIRLOCK__EXECUTE_DEPLOY__INIT;
        execute.request = &v1.request;
        execute.grant = &grant;
        al_deploy_job_t job = { .deployment_id = id, .environment = AIRLOCK__ENVIRONMENT__ENV_PRODUCTION,
                                .request = &v1.request, .execute = &execute, .journal = NULL };
        al_deployer_hooks_t hooks = s_hooks (f);
        al_deploy_result_t result;
        memset (&result, 0, sizeof result);
        f->count = 0;
        assert_int_equal (al_deployer_run (f->deployer, &job, &hooks, &result), 0);
        int with_version = 0, total = 0;
        dtu_count (f->state, "demo", "production", "v1", &with_version, &total);
        if (cases [i].expect) {
            s_expect (&result, AIRLOCK__OUTCOME__OUTCOME_FAILED, "");
            if (!strstr (result.detail, "qa_report_approved") || !strstr (result.detail, cases [i].expect))
                fail_msg ("case %zu: expected qa_report_approved to fail with '%s': %s", i, cases [i].expect,
                          result.detail);
            assert_int_equal (total, 0);
        }
        else {
            s_expect (&result, AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED, "");
            assert_true (with_version > 0);
        }
        al_approval_signed_destroy (&approval);
    }
}

//  approvers.yaml with alice (manager) and carol (security), keys made here; the policy
//  and the deployer reloaded.
static void
s_approvers (s_fixture_t *f, uint8_t alice_sk [64], uint8_t carol_sk [64])
{
    assert_true (sodium_init () >= 0);
    uint8_t alice_pk [32], carol_pk [32];
    crypto_sign_keypair (alice_pk, alice_sk);
    crypto_sign_keypair (carol_pk, carol_sk);
    char alice_hex [65], carol_hex [65], path [400];
    sodium_bin2hex (alice_hex, sizeof alice_hex, alice_pk, sizeof alice_pk);
    sodium_bin2hex (carol_hex, sizeof carol_hex, carol_pk, sizeof carol_pk);
    snprintf (path, sizeof path, "%s/approvers.yaml", f->policy_dir);
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fprintf (file, "approvers:\n  - name: alice\n    roles: [manager]\n    keys:\n      - {id: a1, ed25519: \"%s\"}\n"
             "  - name: carol\n    roles: [security]\n    keys:\n      - {id: c1, ed25519: \"%s\"}\n",
             alice_hex, carol_hex);
    fclose (file);
    s_close (f);
    al_policy_destroy (&f->policy);
    al_policy_errors_t *errors = NULL;
    f->policy = al_policy_load (f->policy_dir, &errors);
    if (!f->policy)
        fail_msg ("policy: %s", al_policy_errors_at (errors, 0));
    s_open (f);
}

//  A production deploy of release with a grant signed now by alice (and carol when
//  carol_sk is not NULL); the result, which the caller frees.
static al_deploy_result_t *
s_run_production (s_fixture_t *f, const char *request_id, s_release_t *release, Airlock__DeploymentType type,
                  const uint8_t *alice_sk, const uint8_t *carol_sk)
{
    release->request.deployment_type = type;
    uint64_t now = (uint64_t) time (NULL) * 1000;
    Airlock__ApprovalRequest filed = AIRLOCK__APPROVAL_REQUEST__INIT;
    filed.request_id = (char *) request_id;
    filed.deployment_type = type;
    filed.environment = AIRLOCK__ENVIRONMENT__ENV_PRODUCTION;
    filed.service = release->request.service;
    filed.version = release->request.version;
    filed.artifact_uri = release->path;
    filed.artifact_sha256 = release->sha;
    dtu_qa_report (f->dir, release->sha, true, release->qa_digest);     // kept: pre-flight opens it
    filed.qa_report_sha256 = release->qa_digest;
    filed.requested_by = (char *) "orchestrator";
    char error [256];
    al_approval_sign_options_t options = { .decision = AIRLOCK__DECISION__DECISION_GRANT,
                                      .issued_at_ms = now - 60000, .valid_for_ms = 3600000 };
    al_approval_signed_t *signed_approvals [2] = { NULL, NULL };
    Airlock__SignedApproval *signatures [2];
    size_t count = 0;
    const uint8_t *keys [2] = { alice_sk, carol_sk };
    for (size_t i = 0; i < 2; i++) {
        if (!keys [i])
            continue;
        signed_approvals [count] = al_approval_sign_with_secret (&filed, keys [i], &options, error, sizeof error);
        assert_non_null (signed_approvals [count]);
        signatures [count] = (Airlock__SignedApproval *) al_approval_signed_message (signed_approvals [count]);
        count++;
    }
    Airlock__ProductionGrant grant = AIRLOCK__PRODUCTION_GRANT__INIT;
    grant.request_id = (char *) request_id;
    grant.request = &filed;
    grant.n_approvals = count;
    grant.approvals = signatures;
    grant.granted_at_ms = now;
    Airlock__ExecuteDeploy execute = AIRLOCK__EXECUTE_DEPLOY__INIT;
    execute.request = &release->request;
    execute.grant = &grant;
    al_deploy_job_t job = { .deployment_id = request_id, .environment = AIRLOCK__ENVIRONMENT__ENV_PRODUCTION,
                            .request = &release->request, .execute = &execute, .journal = NULL };
    al_deployer_hooks_t hooks = s_hooks (f);
    al_deploy_result_t *result = calloc (1, sizeof *result);
    assert_non_null (result);
    f->count = 0;
    assert_int_equal (al_deployer_run (f->deployer, &job, &hooks, result), 0);
    for (size_t i = 0; i < count; i++)
        al_approval_signed_destroy (&signed_approvals [i]);
    return result;
}

//  The receipt's soak: duration and the checks of its checkpoints, in order, at their times.
static void
s_expect_soak (s_fixture_t *f, const char *deployment_id, json_int_t duration_ms, size_t count,
               const char *const *checks, const json_int_t *at)
{
    json_t *receipt = s_evidence (f, deployment_id, "deploy_receipt.json");
    json_t *soak = json_object_get (receipt, "soak");
    assert_non_null (soak);
    assert_int_equal (json_integer_value (json_object_get (soak, "duration_ms")), duration_ms);
    json_t *checkpoints = json_object_get (soak, "checkpoints");
    if (json_array_size (checkpoints) != count) {
        char *text = json_dumps (soak, 0);
        fail_msg ("%s: %zu checkpoint(s), expected %zu: %s", deployment_id, json_array_size (checkpoints), count, text);
    }
    for (size_t i = 0; i < count; i++) {
        json_t *checkpoint = json_array_get (checkpoints, i);
        assert_string_equal (json_string_value (json_object_get (checkpoint, "check")), checks [i]);
        assert_int_equal (json_integer_value (json_object_get (checkpoint, "at_ms")), at [i]);
    }
    json_decref (receipt);
}


//  Seed 004's one window decision: the gate and pre-flight decide windows, freezes and
//  break-glass with the same function (policies/al_calendar.h), so a grant the gate
//  gives passes pre-flight's calendar checks, and what the gate refuses pre-flight
//  refuses. The test policy has no deploy window at all: a scheduled release is always
//  outside one.
typedef struct {
    const char *name;
    bool carol_break_glass;         // the security approver signs with --break-glass
    int64_t scheduled_offset_ms;    // the request's own window starts now + this (0: none)
    bool granted;                   // what the gate decides (and so pre-flight)
    const char *refusal;            // the pre-flight check that fails when not granted
} s_calendar_case_t;

static void
test_one_window_decision_at_preflight (void **state)
{
    s_fixture_t *f = *state;
    uint8_t alice_sk [64], carol_sk [64];
    s_approvers (f, alice_sk, carol_sk);

    const s_calendar_case_t cases [] = {
        //  The case: granted with a break-glass signature over a closed window;
        //  pre-flight refused it before. Now it deploys.
        { "break-glass", true, 0, true, NULL },
        //  No break-glass: the gate blocks, pre-flight refuses the window.
        { "no-glass", false, 0, false, "deploy_window" },
        //  The request's own window starts in an hour: break-glass does not lift it,
        //  neither at the gate nor in pre-flight.
        { "early", true, 3600000, false, "scheduled_window" },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases [0]; c++) {
        const s_calendar_case_t *test = &cases [c];
        s_release_t release;
        char version [32];
        snprintf (version, sizeof version, "v%zu", c + 1);
        s_release (f, &release, "demo", version, NULL, AIRLOCK__STRATEGY__STRATEGY_ROLLING);
        release.request.deployment_type = AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_SCHEDULED;
        release.request.instances = 1;
        uint64_t now = (uint64_t) time (NULL) * 1000;
        char request_id [32];
        snprintf (request_id, sizeof request_id, "cal-%s", test->name);
        Airlock__ApprovalRequest filed = AIRLOCK__APPROVAL_REQUEST__INIT;
        filed.request_id = request_id;
        filed.deployment_type = AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_SCHEDULED;
        filed.environment = AIRLOCK__ENVIRONMENT__ENV_PRODUCTION;
        filed.service = (char *) "demo";
        filed.version = version;
        filed.artifact_uri = release.path;
        filed.artifact_sha256 = release.sha;
        dtu_qa_report (f->dir, release.sha, true, release.qa_digest);   // kept: pre-flight opens it
        filed.qa_report_sha256 = release.qa_digest;
        filed.requested_by = (char *) "orchestrator";
        if (test->scheduled_offset_ms) {
            filed.window_start_ms = now + (uint64_t) test->scheduled_offset_ms;
            filed.window_end_ms = filed.window_start_ms + 1800000;
        }
        char error [256];
        al_approval_sign_options_t options = { .decision = AIRLOCK__DECISION__DECISION_GRANT,
                                          .issued_at_ms = now - 60000, .valid_for_ms = 3600000 };
        al_approval_signed_t *manager = al_approval_sign_with_secret (&filed, alice_sk, &options, error, sizeof error);
        options.break_glass = test->carol_break_glass;
        al_approval_signed_t *security = al_approval_sign_with_secret (&filed, carol_sk, &options, error, sizeof error);
        assert_non_null (manager);
        assert_non_null (security);
        Airlock__SignedApproval *signatures [2] = {
            (Airlock__SignedApproval *) al_approval_signed_message (manager),
            (Airlock__SignedApproval *) al_approval_signed_message (security)
        };
        Airlock__ProductionGrant grant = AIRLOCK__PRODUCTION_GRANT__INIT;
        grant.request_id = request_id;
        grant.request = &filed;
        grant.n_approvals = 2;
        grant.approvals = signatures;
        grant.granted_at_ms = now;
        Airlock__ExecuteDeploy execute = AIRLOCK__EXECUTE_DEPLOY__INIT;
        execute.request = &release.request;
        execute.grant = &grant;

        //  The gate's decision on these approvals, now.
        char reason [512];
        bool granted = al_approval_gate_verify_grant (f->policy, AIRLOCK__ENVIRONMENT__ENV_PRODUCTION, &execute, now,
                                             reason, sizeof reason);
        if (granted != test->granted)
            fail_msg ("%s: the gate says %s: %s", test->name, granted? "granted": "refused", reason);

        //  Pre-flight on the same facts, at the same moment.
        f->now_ms = now;
        al_deploy_job_t job = { .deployment_id = request_id, .environment = AIRLOCK__ENVIRONMENT__ENV_PRODUCTION,
                                .request = &release.request, .execute = &execute, .journal = NULL };
        al_deployer_hooks_t hooks = s_hooks (f);
        al_deploy_result_t result;
        memset (&result, 0, sizeof result);
        f->count = 0;
        assert_int_equal (al_deployer_run (f->deployer, &job, &hooks, &result), 0);
        bool preflight_passed = false;
        for (size_t i = 0; i < f->count; i++)
            if (f->records [i].step == AIRLOCK__STEP__STEP_PREFLIGHT
            &&  f->records [i].outcome == AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED)
                preflight_passed = true;
        if (preflight_passed != granted)
            fail_msg ("%s: the gate %s but pre-flight %s: %s", test->name, granted? "granted": "refused",
                      preflight_passed? "passed": "refused", result.detail);
        if (granted) {
            s_expect (&result, AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED, "");
            //  The evidence says the window was lifted by break-glass.
            json_t *preflight = s_evidence (f, request_id, "connectivity-report.json");
            char *text = json_dumps (preflight, 0);
            assert_non_null (strstr (text, "lifted by the grant's break-glass approvals"));
            free (text);
            json_decref (preflight);
        }
        else {
            s_expect (&result, AIRLOCK__OUTCOME__OUTCOME_FAILED, "");
            //  pre-flight's evidence: the calendar check named failed (the grant's check
            //  failed too: it is the gate's own verdict, taken again).
            json_t *preflight = s_evidence (f, request_id, "connectivity-report.json");
            bool refused_there = false;
            size_t index;
            json_t *check;
            json_array_foreach (json_object_get (preflight, "checks"), index, check)
                if (strcmp (json_string_value (json_object_get (check, "check")), test->refusal) == 0)
                    refused_there = json_is_false (json_object_get (check, "ok"));
            json_decref (preflight);
            if (!refused_there)
                fail_msg ("%s: expected %s to fail pre-flight: %s", test->name, test->refusal, result.detail);
        }
        al_approval_signed_destroy (&manager);
        al_approval_signed_destroy (&security);
    }
    f->now_ms = 0;
}

//  Seed 004's checkpoints for real: production soaks for quality_rules.yaml's duration
//  (60 min, scaled to 720 ms here) whatever soak_ms says, with the four checkpoints and
//  their four checks; a service shortens it only with soak: {duration_ms, reason}, and
//  then ends on the last check; a monitored checkpoint fails on its own rule; a hotfix
//  ramps faster but soaks as long.
static void
test_soak_checkpoints (void **state)
{
    s_fixture_t *f = *state;
    uint8_t alice_sk [64], carol_sk [64];
    s_approvers (f, alice_sk, carol_sk);
    const char *checks [] = { "initial health", "error rate", "performance", "all normal" };

    //  demo says soak_ms: 600; production soaks the policy's 720 ms, every checkpoint.
    s_release_t v1;
    s_release (f, &v1, "demo", "v1", NULL, AIRLOCK__STRATEGY__STRATEGY_ROLLING);
    v1.request.instances = 1;
    al_deploy_result_t *result = s_run_production (f, "prod-1", &v1, AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD,
                                                   alice_sk, NULL);
    s_expect (result, AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED, "");
    free (result);
    const json_int_t full [] = { 60, 180, 360, 720 };
    s_expect_soak (f, "prod-1", 720, 4, checks, full);
    //  The soak step's detail (what the post-deployment notification lists) names them.
    json_t *receipt = s_evidence (f, "prod-1", "deploy_receipt.json");
    size_t index;
    json_t *step;
    bool listed = false;
    json_array_foreach (json_object_get (receipt, "steps"), index, step)
        if (strcmp (json_string_value (json_object_get (step, "step")), "soak") == 0)
            listed = strstr (json_string_value (json_object_get (step, "detail")), "4 checkpoint(s) passed (0.1 s initial "
                             "health, 0.2 s error rate, 0.4 s performance, 0.7 s all normal)") != NULL;
    if (!listed)
        fail_msg ("the soak step does not list its checkpoints: %s", json_dumps (json_object_get (receipt, "steps"), 0));
    json_decref (receipt);

    //  brief shortens it to 1000 s (200 ms scaled) with a reason: the checkpoints inside
    //  it, then all normal at its end; the receipt carries the reason.
    s_release_t b1;
    s_release (f, &b1, "brief", "v1", NULL, AIRLOCK__STRATEGY__STRATEGY_ROLLING);
    result = s_run_production (f, "brief-1", &b1, AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD, alice_sk, NULL);
    s_expect (result, AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED, "");
    free (result);
    const char *brief_checks [] = { "initial health", "error rate", "all normal" };
    const json_int_t brief_at [] = { 60, 180, 200 };
    s_expect_soak (f, "brief-1", 200, 3, brief_checks, brief_at);
    receipt = s_evidence (f, "brief-1", "deploy_receipt.json");
    json_t *soak = json_object_get (receipt, "soak");
    assert_true (json_is_true (json_object_get (soak, "shortened")));
    assert_non_null (strstr (json_string_value (json_object_get (soak, "reason")), "cache warm-up"));
    json_decref (receipt);

    //  A hotfix (manager + security): rolling batches of 2 instead of 1, the soak as long.
    s_release_t v2;
    s_release (f, &v2, "demo", "v2", NULL, AIRLOCK__STRATEGY__STRATEGY_ROLLING);
    v2.request.instances = 3;
    result = s_run_production (f, "prod-2", &v2, AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_HOTFIX, alice_sk, carol_sk);
    s_expect (result, AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED, "");
    free (result);
    s_expect_soak (f, "prod-2", 720, 4, checks, full);
    receipt = s_evidence (f, "prod-2", "deploy_receipt.json");
    assert_string_equal (json_string_value (json_object_get (json_object_get (receipt, "soak"), "expedited")),
                         "hotfix expedited: rolling batches of 2 (not 1)");
    json_decref (receipt);

    //  Monitored (watched, staging, 500 ms): the rows say p99 is breached. Initial health
    //  and error rate pass (they do not judge latency); performance fails and rolls back.
    f->monitor_alive = true;
    f->signals_fresh = true;
    s_release_t w1, w2;
    s_release (f, &w1, "watched", "v1", NULL, AIRLOCK__STRATEGY__STRATEGY_ROLLING);
    s_release (f, &w2, "watched", "v2", NULL, AIRLOCK__STRATEGY__STRATEGY_ROLLING);
    result = s_run (f, "w-ok", &w1.request);
    s_expect (result, AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED, "");
    free (result);
    snprintf (f->breach_rule, sizeof f->breach_rule, "latency_p99_factor");
    result = s_run (f, "w-slow", &w2.request);
    s_expect (result, AIRLOCK__OUTCOME__OUTCOME_ROLLED_BACK, "latency_p99_factor");
    assert_non_null (strstr (result->detail, "checkpoint 3 (performance)"));
    free (result);
    s_expect_running (f, "watched", "v1", 2);
    json_t *smoke = s_evidence (f, "w-slow", "smoke-test-results.json");
    json_t *checkpoints = json_object_get (smoke, "checkpoints");
    assert_int_equal (json_array_size (checkpoints), 3);
    assert_true (json_is_true (json_object_get (json_array_get (checkpoints, 1), "passed")));
    assert_non_null (strstr (json_string_value (json_object_get (json_array_get (checkpoints, 1), "detail")),
                             "error_rate_increase 1 ok"));
    assert_true (json_is_false (json_object_get (json_array_get (checkpoints, 2), "passed")));
    json_decref (smoke);
    f->breach_rule [0] = 0;
}

static void
test_migrations_down_and_restore (void **state)
{
    s_fixture_t *f = *state;
    char error [512], db [600];
    al_migration_set_t *set = al_migration_set_load (f->migrations, error, sizeof error);
    assert_non_null (set);
    s_release_t bad, good;
    s_release (f, &bad, "shop", "v1", "--fail-readiness", AIRLOCK__STRATEGY__STRATEGY_ROLLING);
    bad.request.migration_set_sha256 = (char *) al_migration_set_digest (set);

    //  First deploy applies 001 and 002, fails readiness: down scripts take it back to 0.
    al_deploy_result_t *result = s_run (f, "shop-1", &bad.request);
    s_expect (result, AIRLOCK__OUTCOME__OUTCOME_ROLLED_BACK, "rollout_failed");
    snprintf (db, sizeof db, "%s/shop.db", f->dir);
    unsigned version = 99;
    assert_int_equal (al_migrate_version (db, set, &version, error, sizeof error), 0);
    assert_int_equal (version, 0);
    free (result);

    //  A request that names another migration set is refused in pre-flight.
    s_release (f, &good, "shop", "v2", NULL, AIRLOCK__STRATEGY__STRATEGY_ROLLING);
    good.request.migration_set_sha256 = (char *) "0000000000000000000000000000000000000000000000000000000000000000";
    result = s_run (f, "shop-2", &good.request);
    s_expect (result, AIRLOCK__OUTCOME__OUTCOME_FAILED, "");
    assert_non_null (strstr (result->detail, "migration_set"));
    free (result);
    good.request.migration_set_sha256 = (char *) al_migration_set_digest (set);
    result = s_run (f, "shop-3", &good.request);
    s_expect (result, AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED, "");
    assert_int_equal (al_migrate_version (db, set, &version, error, sizeof error), 0);
    assert_int_equal (version, 2);
    free (result);
    //  The points a database and a migration set make applicable, from the steps' own evidence.
    json_t *receipt = s_evidence (f, "shop-3", "deploy_receipt.json");
    s_expect_point (receipt, "backup_verified", "true", "verified, sha256 ");
    s_expect_point (receipt, "migrations_applied", "true", "version 0 -> 2");
    assert_true (json_is_true (json_object_get (receipt, "done")));
    json_decref (receipt);

    //  shop2 restores the backup: its database is at 001 with a row; the failed deploy
    //  migrates to 002 and is rolled back to the backup, byte for byte.
    snprintf (db, sizeof db, "%s/shop2.db", f->dir);
    assert_int_equal (al_migrate_up (db, set, 1, NULL, error, sizeof error), 0);
    char before [65], after [65];
    assert_int_equal (al_sha256_file_hex (db, before, error, sizeof error), 0);
    s_release_t bad2;
    s_release (f, &bad2, "shop2", "v1", "--fail-readiness", AIRLOCK__STRATEGY__STRATEGY_ROLLING);
    bad2.request.migration_set_sha256 = (char *) al_migration_set_digest (set);
    result = s_run (f, "shop2-1", &bad2.request);
    s_expect (result, AIRLOCK__OUTCOME__OUTCOME_ROLLED_BACK, "rollout_failed");
    assert_int_equal (al_migrate_version (db, set, &version, error, sizeof error), 0);
    assert_int_equal (version, 1);
    assert_int_equal (al_backup_verify (db, NULL, after, error, sizeof error), 0);
    free (result);
    receipt = s_evidence (f, "shop2-1", "deploy_receipt.json");
    s_expect_point (receipt, "backup_verified", "true", "verified");
    s_expect_point (receipt, "migrations_applied", "false", "undone by the rollback");
    json_decref (receipt);
    (void) before;
    al_migration_set_destroy (&set);
}

//  signals: monitor — no monitor, no deploy; a monitor that goes quiet, no promotion.
static void
test_monitor_evidence (void **state)
{
    s_fixture_t *f = *state;
    s_release_t v1, v2;
    s_release (f, &v1, "watched", "v1", NULL, AIRLOCK__STRATEGY__STRATEGY_ROLLING);
    s_release (f, &v2, "watched", "v2", NULL, AIRLOCK__STRATEGY__STRATEGY_ROLLING);
    al_deploy_result_t *result = s_run (f, "w-0", &v1.request);
    s_expect (result, AIRLOCK__OUTCOME__OUTCOME_FAILED, "");
    assert_non_null (strstr (result->detail, "monitor: no monitor connected"));
    free (result);
    f->monitor_alive = true;
    f->signals_fresh = true;
    result = s_run (f, "w-1", &v1.request);
    s_expect (result, AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED, "");
    free (result);
    //  The monitor is connected but no sample arrives during the soak: rolled back.
    f->signals_fresh = false;
    result = s_run (f, "w-2", &v2.request);
    s_expect (result, AIRLOCK__OUTCOME__OUTCOME_ROLLED_BACK, "missing_evidence");
    s_expect_running (f, "watched", "v1", 2);
    free (result);
}

//  Seed 003's evidence in production: validation.json (the QA report and pre-flight),
//  the smoke checks after the rollout (a failing one rolls back), the new release's
//  performance at the end of its soak, read again by the next deploy's baseline.
static void
test_production_evidence (void **state)
{
    s_fixture_t *f = *state;
    uint8_t secret_key [64];
    s_approver_policy (f, secret_key);
    s_release_t v1, v2, v3;
    s_release (f, &v1, "smoky", "v1", NULL, AIRLOCK__STRATEGY__STRATEGY_ROLLING);
    s_release (f, &v2, "smoky", "v2", "--error-rate 1", AIRLOCK__STRATEGY__STRATEGY_ROLLING);
    s_release (f, &v3, "smoky", "v3", NULL, AIRLOCK__STRATEGY__STRATEGY_ROLLING);
    //  What the monitor said last about the new release.
    airlock__soak_signal__init (&f->signal);
    f->signal.service = (char *) "smoky";
    f->signal.sequence = 41;
    f->signal.error_ratio = 0.002;
    f->signal.latency_p99_ms = 12.5;
    f->signal.instances_up = 2;
    f->signal.instances_total = 2;
    f->has_signal = true;

    al_deploy_result_t *result = s_run_granted (f, "p-1", &v1, secret_key);
    s_expect (result, AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED, "");
    free (result);
    json_t *validation = s_evidence (f, "p-1", "validation.json");
    json_t *qa = json_object_get (validation, "qa");
    assert_string_equal (json_string_value (json_object_get (qa, "report_sha256")), v1.qa_digest);
    assert_string_equal (json_string_value (json_object_get (qa, "verdict")), "approved");
    assert_true (json_is_true (json_object_get (json_object_get (validation, "preflight"), "passed")));
    assert_true (json_array_size (json_object_get (json_object_get (validation, "preflight"), "checks")) > 5);
    json_decref (validation);
    //  Two smoke checks on each of the two instances, all passed, kept with the soak's rounds.
    json_t *smoke = s_evidence (f, "p-1", "smoke-test-results.json");
    json_t *checks = json_object_get (smoke, "smoke");
    assert_true (json_is_true (json_object_get (checks, "passed")));
    assert_int_equal (json_integer_value (json_object_get (checks, "run")), 4);
    assert_int_equal (json_array_size (json_object_get (checks, "checks")), 4);
    assert_non_null (json_object_get (smoke, "soak_ms"));
    json_decref (smoke);
    json_t *performance = s_evidence (f, "p-1", "performance-baseline.json");
    json_t *at_end = json_object_get (performance, "at_soak_end");
    assert_string_equal (json_string_value (json_object_get (at_end, "version")), "v1");
    assert_true (json_real_value (json_object_get (json_object_get (at_end, "golden_signals"), "latency_p99_ms")) == 12.5);
    assert_true (json_array_size (json_object_get (at_end, "probes")) == 2);
    assert_true (json_is_null (json_object_get (performance, "previous_release_at_soak_end")));
    json_decref (performance);
    json_t *receipt = s_evidence (f, "p-1", "deploy_receipt.json");
    assert_true (json_is_true (json_object_get (receipt, "done")));
    s_expect_point (receipt, "qa_approved", "true", v1.qa_digest);
    s_expect_point (receipt, "approvals_valid", "true", NULL);
    s_expect_point (receipt, "rollout_healthy", "true", "production smoke: 4 check(s) passed");
    json_decref (receipt);

    //  v2 answers /healthz but fails every /work: the smoke check fails the rollout, v1 is back.
    result = s_run_granted (f, "p-2", &v2, secret_key);
    s_expect (result, AIRLOCK__OUTCOME__OUTCOME_ROLLED_BACK, "smoke_failed");
    assert_non_null (strstr (result->detail, "smoke check work"));
    free (result);
    int with_version = 0, total = 0;
    dtu_count (f->state, "smoky", "production", "v1", &with_version, &total);
    assert_int_equal (with_version, 2);
    assert_int_equal (total, 2);
    smoke = s_evidence (f, "p-2", "smoke-test-results.json");
    checks = json_object_get (smoke, "smoke");
    assert_true (json_is_false (json_object_get (checks, "passed")));
    assert_true (json_integer_value (json_object_get (checks, "failed")) >= 1);
    json_decref (smoke);
    receipt = s_evidence (f, "p-2", "deploy_receipt.json");
    assert_true (json_is_false (json_object_get (receipt, "done")));
    s_expect_point (receipt, "rollout_healthy", "false", "smoke check work");
    s_expect_point (receipt, "soak_passed", "false", "rule smoke_failed");
    json_decref (receipt);

    //  v3: its baseline carries what v1 (still the recorded release) showed at its soak's end.
    result = s_run_granted (f, "p-3", &v3, secret_key);
    s_expect (result, AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED, "");
    free (result);
    performance = s_evidence (f, "p-3", "performance-baseline.json");
    json_t *previous = json_object_get (performance, "previous_release_at_soak_end");
    assert_string_equal (json_string_value (json_object_get (previous, "version")), "v1");
    assert_string_equal (json_string_value (json_object_get (performance, "baseline_version")), "v1");
    assert_string_equal (json_string_value (json_object_get (json_object_get (performance, "at_soak_end"), "version")), "v3");
    json_decref (performance);
    f->has_signal = false;
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_rolling_and_failed_readiness, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_canary_blue_green_and_trigger, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_resume_after_crash, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_production_without_grant_and_constraints, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_rollback_only_to_previous, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_scheduled_window_at_preflight, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_qa_report_opened_at_preflight, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_one_window_decision_at_preflight, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_soak_checkpoints, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_migrations_down_and_restore, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_monitor_evidence, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_production_evidence, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
