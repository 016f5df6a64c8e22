/*  test_qa.c: the qa agent end to end, on a real broker.

    The broker runs as its own process (broker_under_test), the qa agent (al_qa_run) on
    a thread of this test, demo-service instances as processes the test starts, listed
    in the process driver's registries the test writes (as deploy-manager would). An
    orchestrator client (harness_client) sends QaRequests and receives the QaReports
    the broker routes back. Shown here:
      - a passing release: approved, the counts of each suite (JUnit and exit code),
        report_sha256 the SHA-256 of qa_report.json, evidence kept, the suite run in the
        directory of services.yaml with the instances' URLs and without secret sources;
        asked again, the same report is sent and nothing runs twice;
      - a failing release (a suite exiting 1 with a JUnit report of 3 tests, 1 failed;
        /work answering 500 under --error-rate 1; an unknown suite asked for): not
        approved, "needs fixes", every issue listed;
      - a suite that hangs is killed with its process group at its timeout, and a
        configured JUnit report that is not written is an issue (a stale one is not read);
      - fail closed: another version running, no instance, an unknown service, a
        deployment id reused for another release; a request for production is refused
        by the broker at the door.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include "../broker/harness.h"
#include "agents/al_agent.h"
#include "agents/al_qa.h"
#include "base/al_config.h"
#include "policies/al_policy.h"
#include "deploy/al_artifacts.h"
#include "deploy/al_qa_reports.h"
#include "proto/al_codec.h"
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define S_SECRET "qa-test-secret-value-42"
#define S_HOOK_SECRET "qa-test-hook-secret-17"
#define S_DIGEST "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

typedef struct {
    harness_t *harness;
    al_config_t *config;
    pthread_t thread;
    int rc;
    char error [1024];
    zsock_t *orchestrator;
    int counter;
    pid_t instances [3];
    int ports [3];
    zlistx_t *reports;              // routed QaReports not yet taken
} s_fixture_t;


static void *
s_run_qa (void *arg)
{
    s_fixture_t *f = (s_fixture_t *) arg;
    f->rc = al_qa_run (f->config, f->error, sizeof f->error);
    return NULL;
}

//  Start demo-service on a free port; its port from its first line.
static pid_t
s_start_instance (const char *version, const char *extra, int *port)
{
    char binary [1024];
    snprintf (binary, sizeof binary, "%s/demo-service", getenv ("AIRLOCK_BINARY_DIR"));
    int out [2];
    assert_int_equal (pipe (out), 0);
    pid_t pid = fork ();
    assert_true (pid >= 0);
    if (pid == 0) {
        dup2 (out [1], 1);
        close (out [0]);
        close (out [1]);
        if (extra)
            execl (binary, binary, "--port", "0", "--version", version, extra, "1", (char *) NULL);
        else
            execl (binary, binary, "--port", "0", "--version", version, (char *) NULL);
        _exit (127);
    }
    close (out [1]);
    FILE *stream = fdopen (out [0], "r");
    assert_non_null (stream);
    char line [256] = "";
    assert_non_null (fgets (line, sizeof line, stream));
    fclose (stream);
    const char *colon = strrchr (line, ':');
    assert_non_null (colon);
    *port = atoi (colon + 1);
    assert_true (*port > 0);
    return pid;
}

static void
s_write (const char *path, const char *text)
{
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fputs (text, file);
    fclose (file);
}

//  The process driver's registry of (service, staging), as deploy-manager keeps it.
static void
s_registry (harness_t *h, const char *service, const char *ids [], const int ports [], const char *version, size_t count)
{
    char path [600];
    snprintf (path, sizeof path, "mkdir -p '%s/deploy/drivers/%s/staging'", h->dir, service);
    assert_int_equal (system (path), 0);
    json_t *instances = json_array ();
    for (size_t i = 0; i < count; i++)
        json_array_append_new (instances, json_pack ("{s:s, s:s, s:s, s:s, s:i, s:i}", "id", ids [i], "service", service,
                                                     "version", version, "set", "default", "port", ports [i], "pid", 1));
    json_t *root = json_pack ("{s:i, s:s, s:o}", "format", 1, "driver", "process", "instances", instances);
    snprintf (path, sizeof path, "%s/deploy/drivers/%s/staging/instances.json", h->dir, service);
    assert_int_equal (json_dump_file (root, path, JSON_INDENT (2)), 0);
    json_decref (root);
}

static const char *s_services =
    "version: 1\n"
    "services:\n"
    "  demo:\n"
    "    driver: process\n"
    "    command: [\"{{artifact}}\"]\n"
    "    secrets:\n"
    "      - { name: qa_secret, env: QA_TEST_SECRET }\n"
    "    qa:\n"
    "      smoke:\n"
    "        - { name: health, path: /healthz, status: 200, body_contains: \"ok\" }\n"
    "        - { name: work, path: /work?n=10, status: 200 }\n"
    "      suites:\n"
    "        - { name: unit, argv: [\"sh\", \"suites/unit.sh\"], junit: reports/unit.xml, timeout_ms: 20000 }\n"
    "        - { name: lint, argv: [\"true\"] }\n"
    "      timeout_ms: 2000\n"
    "  shop:\n"
    "    driver: process\n"
    "    command: [\"{{artifact}}\"]\n"
    "    qa:\n"
    "      smoke:\n"
    "        - { name: health, path: /healthz, status: 200, body_contains: \"ok\" }\n"
    "        - { name: work, path: /work?n=10, status: 200 }\n"
    "      suites:\n"
    "        - { name: unit, argv: [\"sh\", \"suites/failing.sh\"], junit: reports/shop-unit.xml }\n"
    "  slow:\n"
    "    driver: process\n"
    "    command: [\"{{artifact}}\"]\n"
    "    qa:\n"
    "      suites:\n"
    "        - { name: hang, argv: [\"sh\", \"suites/hang.sh\"], timeout_ms: 500 }\n"
    "        - { name: no-report, argv: [\"true\"], junit: reports/stale.xml }\n"
    "  ghost:\n"
    "    driver: process\n"
    "    command: [\"{{artifact}}\"]\n"
    //  Security scanning with the real bandit on two Python artifacts, one with a
    //  known finding (B602, subprocess with shell=True), and a scanner whose report
    //  does not read.
    "  pybad:\n"
    "    driver: process\n"
    "    command: [\"{{artifact}}\"]\n"
    "    qa:\n"
    "      scanners:\n"
    "        - { name: bandit, argv: [bandit, -f, json, -o, reports/pybad-bandit.json, -r, pyapps/bad],\n"
    "            format: bandit-json, output: reports/pybad-bandit.json, timeout_ms: 120000 }\n"
    "  pyok:\n"
    "    driver: process\n"
    "    command: [\"{{artifact}}\"]\n"
    "    qa:\n"
    "      scanners:\n"
    "        - { name: bandit, argv: [bandit, -f, json, -o, reports/pyok-bandit.json, -r, pyapps/ok],\n"
    "            format: bandit-json, output: reports/pyok-bandit.json, timeout_ms: 120000 }\n"
    "  pybroken:\n"
    "    driver: process\n"
    "    command: [\"{{artifact}}\"]\n"
    "    qa:\n"
    "      scanners:\n"
    "        - { name: fake, argv: [sh, -c, \"mkdir -p reports; echo '{\\\"version\\\": \\\"2.0\\\"}' > reports/fake.sarif\"],\n"
    "            format: sarif, output: reports/fake.sarif }\n"
    "        - { name: absent, argv: [airlock-no-such-scanner], format: sarif, output: reports/absent.sarif }\n";

//  The Python artifacts bandit scans: the same service with and without the finding.
static const char *s_py_ok =
    "import subprocess\n\n\ndef run(argv):\n    return subprocess.call(argv)  # nosec B603\n";
static const char *s_py_bad =
    "import subprocess\n\n\ndef run(cmd):\n    return subprocess.call(cmd, shell=True)\n";

static const char *s_unit_sh =
    "echo run >> runs-unit.log\n"
    "echo \"cwd: $(pwd)\"\n"
    "echo \"urls: $AIRLOCK_QA_URLS\"\n"
    "echo \"version: $AIRLOCK_VERSION env: $AIRLOCK_ENV deployment: $AIRLOCK_DEPLOYMENT_ID\"\n"
    "echo \"secret: ${QA_TEST_SECRET:-absent}\"\n"
    "echo \"hook secret: ${QA_TEST_HOOK_SECRET:-absent}\"\n"
    "echo \"junit: $AIRLOCK_QA_JUNIT\"\n"
    "mkdir -p reports\n"
    "printf '<testsuites><testsuite name=\"unit\"><testcase name=\"a\"/><testcase name=\"b\"/>"
    "<testcase name=\"c\"/><testcase name=\"d\"><skipped/></testcase></testsuite></testsuites>' > reports/unit.xml\n";

static const char *s_failing_sh =
    "mkdir -p reports\n"
    "printf '<testsuites><testsuite name=\"unit\" tests=\"3\" failures=\"1\"><testcase name=\"a\"/>"
    "<testcase name=\"b\"/><testcase name=\"c\"><failure message=\"boom\"/></testcase></testsuite>"
    "</testsuites>' > reports/shop-unit.xml\n"
    "echo '1 of 3 failed' >&2\n"
    "exit 1\n";

static const char *s_hang_sh =
    "sleep 30 &\n"
    "echo $! > hang.pid\n"
    "echo waiting\n"
    "wait\n";

static void
s_save_cert (harness_t *h, const char *role)
{
    char path [600];
    snprintf (path, sizeof path, "%s/keys/%s.cert", h->dir, role);
    assert_int_equal (zcert_save ((zcert_t *) zhashx_lookup (h->certs, role), path), 0);
}

static int
s_group_setup (void **state)
{
    //  A secret source of a service: suites must not inherit it. (Set before any
    //  thread starts.)
    assert_int_equal (setenv ("QA_TEST_SECRET", S_SECRET, 1), 0);
    //  And a webhook secret of the notifier's (notifications.yaml), in the same environment.
    assert_int_equal (setenv ("QA_TEST_HOOK_SECRET", S_HOOK_SECRET, 1), 0);
    s_fixture_t *f = calloc (1, sizeof *f);
    assert_non_null (f);
    static const harness_identity_t identities [] = { { "orchestrator", "orchestrator" }, { "qa", "qa" } };
    f->harness = harness_new (NULL, identities, 2);
    assert_non_null (f->harness);
    harness_t *h = f->harness;
    s_save_cert (h, "qa");
    char path [600];
    snprintf (path, sizeof path, "%s/services.yaml", h->dir);
    s_write (path, s_services);
    snprintf (path, sizeof path, "%s/notifications.yaml", h->dir);
    s_write (path, "version: 1\nendpoints:\n  - name: audit-sink\n    kind: webhook\n"
                   "    url: http://127.0.0.1:9/hook\n    secret: { env: QA_TEST_HOOK_SECRET }\n");
    snprintf (path, sizeof path, "%s/suites", h->dir);
    assert_int_equal (mkdir (path, 0700), 0);
    snprintf (path, sizeof path, "%s/suites/unit.sh", h->dir);
    s_write (path, s_unit_sh);
    snprintf (path, sizeof path, "%s/suites/failing.sh", h->dir);
    s_write (path, s_failing_sh);
    snprintf (path, sizeof path, "%s/suites/hang.sh", h->dir);
    s_write (path, s_hang_sh);
    const char *py_dirs [] = { "pyapps", "pyapps/ok", "pyapps/bad" };
    for (size_t i = 0; i < 3; i++) {
        snprintf (path, sizeof path, "%s/%s", h->dir, py_dirs [i]);
        assert_int_equal (mkdir (path, 0700), 0);
    }
    snprintf (path, sizeof path, "%s/pyapps/ok/app.py", h->dir);
    s_write (path, s_py_ok);
    snprintf (path, sizeof path, "%s/pyapps/bad/app.py", h->dir);
    s_write (path, s_py_bad);

    f->instances [0] = s_start_instance ("v1", NULL, &f->ports [0]);
    f->instances [1] = s_start_instance ("v1", NULL, &f->ports [1]);
    f->instances [2] = s_start_instance ("v2", "--error-rate", &f->ports [2]);
    const char *demo_ids [] = { "demo-1", "demo-2" };
    s_registry (h, "demo", demo_ids, f->ports, "v1", 2);
    const char *shop_ids [] = { "shop-1" };
    s_registry (h, "shop", shop_ids, &f->ports [2], "v2", 1);
    const char *slow_ids [] = { "slow-1" };
    s_registry (h, "slow", slow_ids, f->ports, "v1", 1);
    const char *py_ids [] = { "py-1" };
    s_registry (h, "pybad", py_ids, f->ports, "v1", 1);
    s_registry (h, "pyok", py_ids, f->ports, "v1", 1);
    s_registry (h, "pybroken", py_ids, f->ports, "v1", 1);

    assert_int_equal (harness_broker_start (h), 0);
    f->config = al_config_load (h->config_path, f->error, sizeof f->error);
    if (!f->config)
        fail_msg ("%s", f->error);
    al_agent_set_interrupted (false);
    assert_int_equal (pthread_create (&f->thread, NULL, s_run_qa, f), 0);

    //  The orchestrator: takes deliveries; says it heartbeats slowly, so the broker
    //  keeps it while the test waits without heartbeating.
    f->orchestrator = harness_client (h, "orchestrator", NULL);
    assert_non_null (f->orchestrator);
    al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
    Airlock__Register body = AIRLOCK__REGISTER__INIT;
    body.agent_name = (char *) "orchestrator-test";
    body.subscribe_deliveries = true;
    body.heartbeat_interval_ms = 60000;
    envelope.message_id = (char *) "reg-1";
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_REGISTER;
    envelope.register_ = &body;
    assert_int_equal (harness_send (f->orchestrator, &envelope), 0);
    al_envelope_t *answer = harness_recv (f->orchestrator, 5000);
    assert_non_null (answer);
    assert_int_equal (answer->body_case, AIRLOCK__ENVELOPE__BODY_ACK);
    al_codec_free (&answer);
    assert_true (harness_wait_rows (h, "Register", "qa", NULL, 1, 20000) >= 1);
    f->reports = zlistx_new ();
    *state = f;
    return 0;
}

static int
s_group_teardown (void **state)
{
    s_fixture_t *f = *state;
    al_agent_set_interrupted (true);
    pthread_join (f->thread, NULL);
    al_agent_set_interrupted (false);
    if (f->rc != 0)
        fprintf (stderr, "qa: %s\n", f->error);
    assert_int_equal (f->rc, 0);
    al_envelope_t *report;
    while ((report = (al_envelope_t *) zlistx_detach (f->reports, NULL)))
        al_codec_free (&report);
    zlistx_destroy (&f->reports);
    for (int i = 0; i < 3; i++) {
        kill (f->instances [i], SIGTERM);
        waitpid (f->instances [i], NULL, 0);
    }
    zsock_destroy (&f->orchestrator);
    al_config_destroy (&f->config);
    harness_destroy (&f->harness);
    unsetenv ("QA_TEST_SECRET");
    free (f);
    return 0;
}

//  Acknowledge a delivery to the orchestrator, as its runtime would.
static void
s_ack_delivery (s_fixture_t *f, uint64_t delivery_id)
{
    char id [32];
    snprintf (id, sizeof id, "dack-%d", ++f->counter);
    Airlock__DeliveryAck body = AIRLOCK__DELIVERY_ACK__INIT;
    body.delivery_id = delivery_id;
    al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
    envelope.message_id = id;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_DELIVERY_ACK;
    envelope.delivery_ack = &body;
    assert_int_equal (harness_send (f->orchestrator, &envelope), 0);
}

//  The next envelope for the orchestrator; routed QaReports are kept aside.
static al_envelope_t *
s_receive (s_fixture_t *f, int timeout_ms)
{
    al_envelope_t *envelope = harness_recv (f->orchestrator, timeout_ms);
    if (envelope && envelope->body_case == AIRLOCK__ENVELOPE__BODY_QA_REPORT) {
        if (envelope->delivery_id)
            s_ack_delivery (f, envelope->delivery_id);
        zlistx_add_end (f->reports, envelope);
        return NULL;
    }
    return envelope;
}

//  Send a QaRequest; returns the broker's answer (Ack or Denied) and the message id.
static al_envelope_t *
s_request (s_fixture_t *f, const char *deployment_id, Airlock__Environment env, const char *service,
           const char *version, const char *const *suites, size_t suite_count, char *id, size_t id_size)
{
    snprintf (id, id_size, "qa-req-%d", ++f->counter);
    Airlock__QaRequest request = AIRLOCK__QA_REQUEST__INIT;
    request.service = (char *) service;
    request.version = (char *) version;
    request.artifact_sha256 = (char *) S_DIGEST;
    request.n_suites = suite_count;
    request.suites = (char **) suites;
    al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
    envelope.message_id = id;
    envelope.deployment_id = (char *) deployment_id;
    envelope.environment = env;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_QA_REQUEST;
    envelope.qa_request = &request;
    assert_int_equal (harness_send (f->orchestrator, &envelope), 0);
    for (int waited = 0; waited < 10000; waited += 100) {
        al_envelope_t *answer = s_receive (f, 100);
        if (!answer)
            continue;
        if ((answer->body_case == AIRLOCK__ENVELOPE__BODY_ACK && strcmp (answer->ack->acked_message_id, id) == 0)
        ||  (answer->body_case == AIRLOCK__ENVELOPE__BODY_DENIED && strcmp (answer->denied->denied_message_id, id) == 0))
            return answer;
        al_codec_free (&answer);
    }
    fail_msg ("no answer to %s", id);
    return NULL;
}

//  The routed QaReport answering request id (caller frees).
static al_envelope_t *
s_wait_report (s_fixture_t *f, const char *request_id)
{
    for (int waited = 0; waited < 60000; waited += 100) {
        for (al_envelope_t *report = (al_envelope_t *) zlistx_first (f->reports); report;
             report = (al_envelope_t *) zlistx_next (f->reports))
            if (report->correlation_id && strcmp (report->correlation_id, request_id) == 0) {
                zlistx_detach_cur (f->reports);
                return report;
            }
        al_envelope_t *other = s_receive (f, 100);
        al_codec_free (&other);
    }
    fail_msg ("no QaReport for %s; qa says: %s", request_id, f->error);
    return NULL;
}

//  Ask for QA and wait for the report, which must be acknowledged by the broker.
static al_envelope_t *
s_qa (s_fixture_t *f, const char *deployment_id, const char *service, const char *version,
      const char *const *suites, size_t suite_count)
{
    char id [32];
    al_envelope_t *answer = s_request (f, deployment_id, AIRLOCK__ENVIRONMENT__ENV_STAGING, service, version,
                                       suites, suite_count, id, sizeof id);
    assert_int_equal (answer->body_case, AIRLOCK__ENVELOPE__BODY_ACK);
    al_codec_free (&answer);
    al_envelope_t *report = s_wait_report (f, id);
    assert_string_equal (report->deployment_id, deployment_id);
    assert_int_equal (report->environment, AIRLOCK__ENVIRONMENT__ENV_STAGING);
    assert_string_equal (report->sender->role, "qa");
    assert_string_equal (report->qa_report->service, service);
    assert_string_equal (report->qa_report->version, version);
    assert_string_equal (report->qa_report->artifact_sha256, S_DIGEST);
    return report;
}

static json_t *
s_load_report (s_fixture_t *f, const char *deployment_id, const al_envelope_t *report)
{
    char path [700], digest [65], error [512];
    snprintf (path, sizeof path, "%s/qa/%s/qa_report.json", f->harness->dir, deployment_id);
    //  The digest the approvers will sign is the file as written.
    assert_int_equal (al_sha256_file_hex (path, digest, error, sizeof error), 0);
    assert_string_equal (report->qa_report->report_sha256, digest);
    //  Kept by content where pre-flight opens it: the same bytes under their digest,
    //  read-only, and judged as the QaReport says.
    char *store = al_qa_reports_dir (f->harness->dir), kept [700], kept_digest [65];
    assert_non_null (store);
    snprintf (kept, sizeof kept, "%s/%s.json", store, digest);
    assert_int_equal (al_sha256_file_hex (kept, kept_digest, error, sizeof error), 0);
    assert_string_equal (kept_digest, digest);
    struct stat info;
    assert_int_equal (stat (kept, &info), 0);
    assert_int_equal (info.st_mode & 0777, 0400);
    char reason [600];
    assert_int_equal (al_qa_reports_approves (store, digest, S_DIGEST, reason, sizeof reason),
                      report->qa_report->approved);
    free (store);
    json_t *root = json_load_file (path, 0, NULL);
    assert_non_null (root);
    assert_string_equal (json_string_value (json_object_get (root, "deployment_id")), deployment_id);
    assert_int_equal (json_is_true (json_object_get (root, "approved")), report->qa_report->approved);
    assert_int_equal (json_array_size (json_object_get (root, "issues_found")), report->qa_report->n_issues_found);
    return root;
}

static bool
s_has_issue (const al_envelope_t *report, const char *text)
{
    for (size_t i = 0; i < report->qa_report->n_issues_found; i++)
        if (strstr (report->qa_report->issues_found [i], text))
            return true;
    return false;
}

static void
s_expect_issue (const al_envelope_t *report, const char *text)
{
    if (s_has_issue (report, text))
        return;
    char all [4096] = "";
    for (size_t i = 0; i < report->qa_report->n_issues_found; i++) {
        size_t used = strlen (all);
        snprintf (all + used, sizeof all - used, "\n  %s", report->qa_report->issues_found [i]);
    }
    fail_msg ("no issue '%s' among:%s", text, all);
}

static const Airlock__SuiteResult *
s_suite (const al_envelope_t *report, const char *name)
{
    for (size_t i = 0; i < report->qa_report->n_suites; i++)
        if (strcmp (report->qa_report->suites [i]->name, name) == 0)
            return report->qa_report->suites [i];
    fail_msg ("no suite %s in the report", name);
    return NULL;
}

static char *
s_read (const char *path)
{
    FILE *file = fopen (path, "r");
    if (!file)
        return NULL;
    char *text = calloc (1, 1 << 20);
    assert_non_null (text);
    size_t got = fread (text, 1, (1 << 20) - 1, file);
    text [got] = '\0';
    fclose (file);
    return text;
}

static void
test_passing_release (void **state)
{
    s_fixture_t *f = *state;
    harness_t *h = f->harness;
    al_envelope_t *report = s_qa (f, "rel-1-stg", "demo", "v1", NULL, 0);
    if (!report->qa_report->approved)
        s_expect_issue (report, "(expected none)");
    assert_int_equal (report->qa_report->n_issues_found, 0);
    //  unit, lint, and "checks": the health and smoke checks counted as one suite.
    assert_int_equal (report->qa_report->n_suites, 3);
    const Airlock__SuiteResult *checked = s_suite (report, "checks");
    assert_non_null (checked);
    assert_int_equal (checked->passed, 10);
    assert_int_equal (checked->failed, 0);
    const Airlock__SuiteResult *unit = s_suite (report, "unit");
    assert_int_equal (unit->passed, 3);
    assert_int_equal (unit->failed, 0);
    assert_int_equal (unit->skipped, 1);
    char expected [800];
    snprintf (expected, sizeof expected, "file://%s/qa/rel-1-stg/evidence/unit.log", h->dir);
    assert_string_equal (unit->evidence_uri, expected);
    const Airlock__SuiteResult *lint = s_suite (report, "lint");
    assert_int_equal (lint->passed, 1);
    assert_int_equal (lint->failed, 0);

    json_t *root = s_load_report (f, "rel-1-stg", report);
    assert_string_equal (json_string_value (json_object_get (root, "recommendation")), "ready");
    assert_string_equal (json_string_value (json_object_get (root, "environment")), "staging");
    assert_string_equal (json_string_value (json_object_get (root, "requested_by")), "orchestrator");
    //  Two instances, each: version, liveness, readiness and two smoke checks, all ok.
    json_t *checks = json_object_get (root, "checks");
    assert_int_equal (json_array_size (checks), 10);
    size_t index;
    json_t *check;
    json_array_foreach (checks, index, check)
        assert_true (json_is_true (json_object_get (check, "ok")));
    json_t *suites = json_object_get (root, "suites");
    assert_string_equal (json_string_value (json_object_get (json_array_get (suites, 0), "counted_from")), "junit");
    assert_string_equal (json_string_value (json_object_get (json_array_get (suites, 1), "counted_from")), "exit code");
    json_decref (root);

    //  The suite ran in the directory of services.yaml, knew the instances, and did
    //  not inherit the secret source; its output and its JUnit report are kept.
    char path [800];
    snprintf (path, sizeof path, "%s/qa/rel-1-stg/evidence/unit.log", h->dir);
    char *evidence = s_read (path);
    assert_non_null (evidence);
    char line [600];
    snprintf (line, sizeof line, "cwd: %s\n", h->dir);
    assert_non_null (strstr (evidence, line));
    snprintf (line, sizeof line, "urls: http://127.0.0.1:%d http://127.0.0.1:%d\n", f->ports [0], f->ports [1]);
    assert_non_null (strstr (evidence, line));
    assert_non_null (strstr (evidence, "version: v1 env: staging deployment: rel-1-stg\n"));
    assert_non_null (strstr (evidence, "secret: absent\n"));
    assert_null (strstr (evidence, S_SECRET));
    assert_non_null (strstr (evidence, "hook secret: absent\n"));
    assert_null (strstr (evidence, S_HOOK_SECRET));
    snprintf (line, sizeof line, "junit: %s/reports/unit.xml\n", h->dir);
    assert_non_null (strstr (evidence, line));
    assert_non_null (strstr (evidence, "exit_code: 0\n"));
    free (evidence);
    snprintf (path, sizeof path, "%s/qa/rel-1-stg/evidence/unit.junit.xml", h->dir);
    assert_int_equal (access (path, R_OK), 0);

    //  Asked again (a new request for the same deployment): the same report, the same
    //  digest, and nothing ran a second time.
    char first_digest [65];
    snprintf (first_digest, sizeof first_digest, "%s", report->qa_report->report_sha256);
    al_codec_free (&report);
    report = s_qa (f, "rel-1-stg", "demo", "v1", NULL, 0);
    assert_true (report->qa_report->approved);
    assert_string_equal (report->qa_report->report_sha256, first_digest);
    assert_int_equal (s_suite (report, "unit")->passed, 3);
    al_codec_free (&report);
    snprintf (path, sizeof path, "%s/runs-unit.log", h->dir);
    char *runs = s_read (path);
    assert_non_null (runs);
    assert_string_equal (runs, "run\n");
    free (runs);
    //  Each delivery was acknowledged by qa once answered.
    assert_true (harness_wait_delivery_acks (h, "qa", 2, 10000) >= 2);
    assert_true (harness_count_rows (h, "QaReport", "qa", NULL) >= 2);
}

static void
test_failing_release (void **state)
{
    s_fixture_t *f = *state;
    const char *suites [] = { "unit", "nope", "unit" };
    al_envelope_t *report = s_qa (f, "rel-2-stg", "shop", "v2", suites, 3);
    assert_false (report->qa_report->approved);
    //  The unknown suite is not run, the repeated one runs once (plus "checks").
    assert_int_equal (report->qa_report->n_suites, 2);
    assert_true (s_suite (report, "checks")->failed >= 1);
    const Airlock__SuiteResult *unit = s_suite (report, "unit");
    assert_int_equal (unit->passed, 2);
    assert_int_equal (unit->failed, 1);
    assert_int_equal (unit->skipped, 0);
    s_expect_issue (report, "smoke check work on shop-1: GET /work?n=10: status 500, expected 200");
    s_expect_issue (report, "suite unit: 1 of 3 tests failed");
    s_expect_issue (report, "suite unit: exited with code 1");
    s_expect_issue (report, "suite nope: not configured for shop, not run (configured: unit)");
    //  Health itself was fine: /healthz answers under --error-rate.
    assert_false (s_has_issue (report, "liveness"));
    assert_int_equal (report->qa_report->n_issues_found, 4);
    json_t *root = s_load_report (f, "rel-2-stg", report);
    assert_string_equal (json_string_value (json_object_get (root, "recommendation")), "needs fixes");
    assert_false (json_is_true (json_object_get (root, "approved")));
    json_decref (root);
    char path [800];
    snprintf (path, sizeof path, "%s/qa/rel-2-stg/evidence/unit.log", f->harness->dir);
    char *evidence = s_read (path);
    assert_non_null (evidence);
    assert_non_null (strstr (evidence, "exit_code: 1\n"));
    assert_non_null (strstr (evidence, "1 of 3 failed\n"));
    free (evidence);
    al_codec_free (&report);
}

//  Is pid gone (or a zombie nobody reaped yet)?
static bool
s_dead (pid_t pid)
{
    char path [64];
    snprintf (path, sizeof path, "/proc/%d/stat", (int) pid);
    char *stat = s_read (path);
    if (!stat)
        return true;
    const char *close = strrchr (stat, ')');
    bool zombie = close && (close [2] == 'Z' || close [2] == 'X');
    free (stat);
    return zombie;
}

static void
test_timeout_and_missing_report (void **state)
{
    s_fixture_t *f = *state;
    harness_t *h = f->harness;
    //  A passing report left from before: the suite writes none, so it must not count.
    char path [800];
    snprintf (path, sizeof path, "%s/reports", h->dir);
    mkdir (path, 0700);
    snprintf (path, sizeof path, "%s/reports/stale.xml", h->dir);
    s_write (path, "<testsuite><testcase name=\"old\"/></testsuite>");
    al_envelope_t *report = s_qa (f, "rel-3-stg", "slow", "v1", NULL, 0);
    assert_false (report->qa_report->approved);
    s_expect_issue (report, "suite hang: timed out after 500 ms; its process group was killed");
    char expected [1000];
    snprintf (expected, sizeof expected, "suite no-report: wrote no JUnit report at %s", path);
    s_expect_issue (report, expected);
    assert_int_not_equal (access (path, F_OK), 0);
    assert_int_equal (s_suite (report, "hang")->failed, 1);
    assert_int_equal (s_suite (report, "no-report")->passed, 1);
    json_t *root = s_load_report (f, "rel-3-stg", report);
    json_decref (root);
    al_codec_free (&report);
    //  The suite's background child went with its process group.
    snprintf (path, sizeof path, "%s/hang.pid", h->dir);
    char *text = s_read (path);
    assert_non_null (text);
    pid_t child = (pid_t) atoi (text);
    free (text);
    assert_true (child > 0);
    bool dead = false;
    for (int waited = 0; waited < 5000 && !(dead = s_dead (child)); waited += 50)
        zclock_sleep (50);
    assert_true (dead);
    snprintf (path, sizeof path, "%s/qa/rel-3-stg/evidence/hang.log", h->dir);
    char *evidence = s_read (path);
    assert_non_null (evidence);
    assert_non_null (strstr (evidence, "timed_out: true\n"));
    assert_non_null (strstr (evidence, "waiting\n"));
    free (evidence);
}

static void
test_fail_closed (void **state)
{
    s_fixture_t *f = *state;
    harness_t *h = f->harness;
    //  Another version runs than the one asked about.
    al_envelope_t *report = s_qa (f, "rel-4-stg", "demo", "v9", NULL, 0);
    assert_false (report->qa_report->approved);
    s_expect_issue (report, "instance demo-1: runs v1, the request is for v9");
    s_expect_issue (report, "instance demo-2: runs v1, the request is for v9");
    al_codec_free (&report);
    //  Nothing runs at all.
    report = s_qa (f, "rel-5-stg", "ghost", "v1", NULL, 0);
    assert_false (report->qa_report->approved);
    s_expect_issue (report, "no instance of ghost runs in staging");
    //  Only "checks", holding the one failed check: no instance.
    assert_int_equal (report->qa_report->n_suites, 1);
    assert_int_equal (s_suite (report, "checks")->passed, 0);
    assert_int_equal (s_suite (report, "checks")->failed, 1);
    json_t *root = s_load_report (f, "rel-5-stg", report);
    json_decref (root);
    al_codec_free (&report);
    //  A service services.yaml does not know.
    report = s_qa (f, "rel-6-stg", "nosuch", "v1", NULL, 0);
    assert_false (report->qa_report->approved);
    s_expect_issue (report, "service nosuch is not in");
    al_codec_free (&report);

    //  A deployment id already used for another release: refused, the report kept.
    char path [800], before [65], after [65], error [512];
    snprintf (path, sizeof path, "%s/qa/rel-2-stg/qa_report.json", h->dir);
    assert_int_equal (al_sha256_file_hex (path, before, error, sizeof error), 0);
    report = s_qa (f, "rel-2-stg", "shop", "v3", NULL, 0);
    assert_false (report->qa_report->approved);
    s_expect_issue (report, "deployment rel-2-stg already has a QA report, for shop v2");
    assert_int_equal (al_sha256_file_hex (path, after, error, sizeof error), 0);
    assert_string_equal (before, after);
    assert_string_not_equal (report->qa_report->report_sha256, before);
    al_codec_free (&report);

    //  Production: the broker refuses the request at the door; qa never sees it.
    char id [32];
    al_envelope_t *answer = s_request (f, "rel-7-prod", AIRLOCK__ENVIRONMENT__ENV_PRODUCTION, "demo", "v1",
                                       NULL, 0, id, sizeof id);
    assert_int_equal (answer->body_case, AIRLOCK__ENVELOPE__BODY_DENIED);
    assert_int_equal (answer->denied->code, AIRLOCK__DENY_CODE__DENY_NOT_PERMITTED);
    al_codec_free (&answer);
    zclock_sleep (500);
    snprintf (path, sizeof path, "%s/qa/rel-7-prod", h->dir);
    assert_int_not_equal (access (path, F_OK), 0);
}


//  The scanner's security_scan entry of a report.
static json_t *
s_scan_entry (json_t *root, const char *name)
{
    json_t *section = json_object_get (root, "security_scan");
    assert_non_null (section);
    size_t index;
    json_t *entry;
    json_array_foreach (json_object_get (section, "scanners"), index, entry)
        if (strcmp (json_string_value (json_object_get (entry, "name")), name) == 0)
            return entry;
    fail_msg ("no scanner %s in the report", name);
    return NULL;
}

static json_int_t
s_count (json_t *object, const char *severity)
{
    json_t *count = json_object_get (json_object_get (object, "counts") ? json_object_get (object, "counts")
                                     : json_object_get (object, "totals"), severity);
    assert_true (json_is_integer (count));
    return json_integer_value (count);
}

//  bandit, for real: the artifact with shell=True is not approved, the same without is.
static void
test_security_scan (void **state)
{
    s_fixture_t *f = *state;
    harness_t *h = f->harness;
    al_envelope_t *report = s_qa (f, "rel-py-bad", "pybad", "v1", NULL, 0);
    assert_false (report->qa_report->approved);
    s_expect_issue (report, "security scan: critical 0, high 1, medium 0, low 1; over quality_rules.yaml "
                            "security_scan: 1 high (max_high 0)");
    json_t *root = s_load_report (f, "rel-py-bad", report);
    json_t *section = json_object_get (root, "security_scan");
    assert_false (json_is_true (json_object_get (section, "within_limits")));
    assert_true (json_is_true (json_object_get (section, "complete")));
    assert_int_equal (s_count (section, "high"), 1);
    json_t *bandit = s_scan_entry (root, "bandit");
    assert_string_equal (json_string_value (json_object_get (bandit, "tool")), "bandit");
    assert_int_equal (s_count (bandit, "high"), 1);
    assert_int_equal (s_count (bandit, "low"), 1);
    assert_int_equal (json_integer_value (json_object_get (bandit, "exit_code")), 1);    // bandit: findings
    json_t *top = json_array_get (json_object_get (bandit, "top"), 0);
    assert_string_equal (json_string_value (json_object_get (top, "severity")), "high");
    assert_string_equal (json_string_value (json_object_get (top, "rule")), "B602");
    assert_string_equal (json_string_value (json_object_get (top, "file")), "pyapps/bad/app.py");
    assert_int_equal (json_integer_value (json_object_get (top, "line")), 5);
    json_decref (root);
    //  Pre-flight's judgement of the stored report agrees.
    char *store = al_qa_reports_dir (h->dir), summary [512];
    al_policy_scan_limits_t limits = { 0, 0, 10, AL_POLICY_SCAN_UNLIMITED };
    assert_int_equal (al_qa_reports_scan (store, report->qa_report->report_sha256, &limits, summary, sizeof summary),
                      AL_QA_REPORTS_SCAN_OVER);
    al_codec_free (&report);
    //  The scanner's output and report are kept as evidence.
    char path [800];
    snprintf (path, sizeof path, "%s/qa/rel-py-bad/evidence/scan-bandit.json", h->dir);
    assert_int_equal (access (path, R_OK), 0);

    report = s_qa (f, "rel-py-ok", "pyok", "v1", NULL, 0);
    if (!report->qa_report->approved)
        s_expect_issue (report, "(expected none)");
    root = s_load_report (f, "rel-py-ok", report);
    section = json_object_get (root, "security_scan");
    assert_true (json_is_true (json_object_get (section, "within_limits")));
    assert_int_equal (s_count (section, "high"), 0);
    assert_int_equal (s_count (s_scan_entry (root, "bandit"), "low"), 1);       // B404: the import
    json_decref (root);
    assert_int_equal (al_qa_reports_scan (store, report->qa_report->report_sha256, &limits, summary, sizeof summary),
                      AL_QA_REPORTS_SCAN_WITHIN);
    al_codec_free (&report);

    //  A report that does not read fails QA closed, never "no findings".
    report = s_qa (f, "rel-py-broken", "pybroken", "v1", NULL, 0);
    assert_false (report->qa_report->approved);
    s_expect_issue (report, "scanner fake: its report does not read: ");
    s_expect_issue (report, "\"version\" is \"2.0\", not \"2.1.0\"");
    s_expect_issue (report, "scanner absent: cannot run: airlock-no-such-scanner: not found in PATH");
    assert_int_equal (al_qa_reports_scan (store, report->qa_report->report_sha256, &limits, summary, sizeof summary),
                      AL_QA_REPORTS_SCAN_OVER);
    al_codec_free (&report);
    free (store);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_passing_release),
        cmocka_unit_test (test_failing_release),
        cmocka_unit_test (test_security_scan),
        cmocka_unit_test (test_timeout_and_missing_report),
        cmocka_unit_test (test_fail_closed),
    };
    return cmocka_run_group_tests (tests, s_group_setup, s_group_teardown);
}
