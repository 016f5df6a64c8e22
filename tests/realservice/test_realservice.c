/*  test_realservice.c: a service instrumented with the official Prometheus Python client,
    judged by airlock with no signal configuration at all.

    tests/realservice/pyservice.py knows nothing of airlock: http.server and
    prometheus_client's default registry (process collector, http_requests_total{code,
    method}, the http_request_duration_seconds histogram). services.yaml names its driver
    and command only (and resources.cpu_cores, see below): no `signals:` key, so the
    monitor reads the standard names by default. Shown here, with every component its own
    process as `airlock up` runs them (broker, orchestrator, deploy-manager, monitor, qa):
      - its /metrics is promtool-clean (when promtool, Debian's prometheus, is there) and
        carries the standard names;
      - healthy, a release goes through staging, QA, a signed approval, production and
        the soak to DONE, and the production receipt says succeeded;
      - with injected errors, staging rolls it back on error_rate_increase;
      - with a CPU-burning thread, staging rolls it back on cpu_percent, computed from
        the rate of process_cpu_seconds_total.
    resources.cpu_cores is 0.5 for the healthy releases; the CPU-burning one is the same
    program deployed as service pyburner, with a twentieth of a core and no traffic: the
    test machine is shared and loaded (load averages of 8 to 14 on 2 cores were seen, and
    under ASan two burning threads once stayed below 80% of half a core), while a thread
    given even a tenth of a core reads 200% of a twentieth.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include "../deploy/deploy_test_util.h"
#include "deploy/al_artifacts.h"
#include "proc_harness.h"
#include <curl/curl.h>
#include <czmq.h>
#include <dirent.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define S_AGENTS 4
#define S_PYTHON "/usr/bin/python3"     // Debian's: python3-prometheus-client is for it

typedef struct {
    char dir [256];
    char config [300];
    char airlock [400];
    char deploy_state [400];
    char service [1024];            // pyservice.py
    ph_cli_t cli;
    al_child_t *broker;
    al_child_t *agents [S_AGENTS];
    dtu_traffic_t *traffic [2];     // staging, production
} s_fixture_t;

static const char *s_roles [S_AGENTS] = { "orchestrator", "deploy-manager", "monitor", "qa" };
static const char *s_logs [] = { "broker", "orchestrator", "deploy-manager", "monitor", "qa" };

static void
s_dump_logs (s_fixture_t *f)
{
    ph_dump_logs (f->dir, s_logs, sizeof s_logs / sizeof s_logs [0], 4000);
}

//  Wait until the release reaches want (or a final state); fail with the logs otherwise.
static void
s_wait_state (s_fixture_t *f, const char *release, const char *want, int timeout_ms)
{
    char *state = ph_wait_state (&f->cli, release, want, timeout_ms);
    if (!state || strcmp (state, want) != 0) {
        char arguments [256];
        snprintf (arguments, sizeof arguments, "status %s", release);
        ph_airlock (&f->cli, "release-text", arguments);
        char *one = ph_output (&f->cli, "release-text");
        fprintf (stderr, "%s\n", one? one: "");
        free (one);
        s_dump_logs (f);
        fail_msg ("%s: state %s, expected %s", release, state? state: "(none)", want);
    }
    free (state);
}

//  An artifact that runs pyservice.py with faults, submitted as release.
static void
s_submit (s_fixture_t *f, const char *service, const char *release, const char *version, const char *faults)
{
    char artifact [600], sha [65], error [4096] = "";
    snprintf (artifact, sizeof artifact, "%s/art-%s.sh", f->dir, version);
    FILE *file = fopen (artifact, "w");
    assert_non_null (file);
    fprintf (file, "#!/bin/sh\nexec '%s' '%s' --version '%s' %s \"$@\"\n", S_PYTHON, f->service, version,
             faults? faults: "");
    fclose (file);
    assert_int_equal (chmod (artifact, 0755), 0);
    assert_int_equal (al_sha256_file_hex (artifact, sha, error, sizeof error), 0);
    char changes [128];
    snprintf (changes, sizeof changes, "pyservice %s\n", version);
    if (ph_submit (&f->cli, service, release, version, artifact, sha, changes, NULL, error, sizeof error) != 0)
        fail_msg ("%s", error);
}

//  The receipt of version's deployment to env (caller decrefs), or NULL.
static json_t *
s_receipt (s_fixture_t *f, const char *env, const char *version)
{
    char dir_path [600];
    snprintf (dir_path, sizeof dir_path, "%s/.artifacts/deployment", f->deploy_state);
    DIR *dir = opendir (dir_path);
    if (!dir)
        return NULL;
    json_t *found = NULL;
    struct dirent *entry;
    while (!found && (entry = readdir (dir))) {
        if (entry->d_name [0] == '.')
            continue;
        char path [1200];
        snprintf (path, sizeof path, "%s/%s/deploy_receipt.json", dir_path, entry->d_name);
        json_t *root = json_load_file (path, 0, NULL);
        const char *root_env = json_string_value (json_object_get (root, "environment"));
        const char *root_version = json_string_value (json_object_get (root, "version"));
        if (root_env && root_version && strcmp (root_env, env) == 0 && strcmp (root_version, version) == 0)
            found = root;
        else
            json_decref (root);
    }
    closedir (dir);
    return found;
}

static void
s_expect_receipt (s_fixture_t *f, const char *env, const char *version, const char *outcome, const char *rule)
{
    json_t *receipt = s_receipt (f, env, version);
    if (!receipt) {
        s_dump_logs (f);
        fail_msg ("no %s receipt for %s", env, version);
    }
    const char *got = json_string_value (json_object_get (receipt, "outcome"));
    const char *got_rule = json_string_value (json_object_get (receipt, "rollback_rule"));
    if (!got || !got_rule || strcmp (got, outcome) != 0 || strcmp (got_rule, rule) != 0) {
        s_dump_logs (f);
        fail_msg ("%s receipt of %s: outcome %s rule '%s' (expected %s, '%s'): %s", env, version, got, got_rule,
                  outcome, rule, json_string_value (json_object_get (receipt, "detail")));
    }
    if (*rule) {
        json_t *trigger = json_object_get (receipt, "rollback_trigger");
        assert_true (json_is_object (trigger));
        assert_string_equal (json_string_value (json_object_get (trigger, "rule")), rule);
        assert_true (json_array_size (json_object_get (trigger, "samples")) >= 1);
    }
    json_decref (receipt);
}

static size_t
s_collect (char *data, size_t size, size_t count, void *user)
{
    return fwrite (data, size, count, (FILE *) user);
}

//  Start pyservice on a port the kernel chooses, save its /metrics (after one /work
//  and one 404) to path, stop it.
static void
s_fetch_metrics (s_fixture_t *f, const char *path)
{
    char log [400], error [1024] = "";
    snprintf (log, sizeof log, "%s/pyservice-alone.log", f->dir);
    const char *argv [] = { S_PYTHON, f->service, "--port", "0", NULL };
    al_child_t *service = ph_spawn (f->dir, "pyservice-alone", NULL, argv, error, sizeof error);
    if (!service)
        fail_msg ("%s", error);
    int port = 0;
    for (int waited = 0; waited < 30000 && !port; waited += 100) {
        char *text = dtu_read (log);
        const char *at = text? strstr (text, "listening on 127.0.0.1:"): NULL;
        if (at)
            port = atoi (at + strlen ("listening on 127.0.0.1:"));
        free (text);
        if (!port)
            zclock_sleep (100);
    }
    if (!port) {
        char *text = dtu_read (log);
        ph_stop (&service, SIGTERM);
        fail_msg ("pyservice did not start (is python3-prometheus-client installed? scripts/install-deps):\n%s",
                  text? text: "");
    }
    const char *paths [] = { "/work", "/nowhere", "/metrics" };
    for (size_t i = 0; i < 3; i++) {
        char url [128];
        snprintf (url, sizeof url, "http://127.0.0.1:%d%s", port, paths [i]);
        FILE *out = fopen (i == 2? path: "/dev/null", "w");
        assert_non_null (out);
        CURL *curl = curl_easy_init ();
        assert_non_null (curl);
        curl_easy_setopt (curl, CURLOPT_URL, url);
        curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, s_collect);
        curl_easy_setopt (curl, CURLOPT_WRITEDATA, out);
        curl_easy_setopt (curl, CURLOPT_TIMEOUT_MS, 10000L);
        CURLcode code = curl_easy_perform (curl);
        long status = 0;
        curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup (curl);
        fclose (out);
        assert_int_equal (code, CURLE_OK);
        assert_int_equal (status, i == 1? 404: 200);
    }
    ph_stop (&service, SIGTERM);
}

static int
s_setup (void **state)
{
    s_fixture_t *f = calloc (1, sizeof *f);
    assert_non_null (f);
    snprintf (f->dir, sizeof f->dir, "/tmp/al-realservice-XXXXXX");
    assert_non_null (mkdtemp (f->dir));
    snprintf (f->config, sizeof f->config, "%s/airlock.yaml", f->dir);
    snprintf (f->airlock, sizeof f->airlock, "%s/airlock", getenv ("AIRLOCK_BINARY_DIR"));
    snprintf (f->deploy_state, sizeof f->deploy_state, "%s/deploy", f->dir);
    snprintf (f->service, sizeof f->service, "%s/tests/realservice/pyservice.py", getenv ("AIRLOCK_SOURCE_DIR"));
    f->cli = (ph_cli_t) { .airlock = f->airlock, .config = f->config, .dir = f->dir };
    const char *keys [] = { "alice" }, *roles [] = { "manager" };
    char error [1024] = "", path [400];
    snprintf (path, sizeof path, "%s/policy", f->dir);
    if (ph_init (f->airlock, f->dir, keys, 1, error, sizeof error) != 0
    ||  ph_open_calendar (path, error, sizeof error) != 0
    ||  ph_write_approvers (f->dir, keys, roles, 1, error, sizeof error) != 0)
        fail_msg ("%s", error);
    //  No signals: key: the standard names are read by default.
    snprintf (path, sizeof path, "%s/services.yaml", f->dir);
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fprintf (file, "version: 1\nservices:\n  pyservice:\n    driver: process\n    instances: 1\n"
                   "    soak_ms: 5000\n    soak: { duration_ms: 5000, reason: \"test: 5 s of production soak suffice\" }\n"
                   "    probe_interval_ms: 100\n    ready_timeout_ms: 20000\n"
                   "    stop_timeout_ms: 3000\n    resources: { cpu_cores: 0.5 }\n    command: [\"{{artifact}}\"]\n"
                   "  pyburner:\n    driver: process\n    instances: 1\n    soak_ms: 5000\n"
                   "    probe_interval_ms: 100\n    ready_timeout_ms: 20000\n"
                   "    stop_timeout_ms: 3000\n    resources: { cpu_cores: 0.05 }\n    command: [\"{{artifact}}\"]\n");
    fclose (file);
    f->broker = ph_start_broker (&f->cli, f->config, "broker", error, sizeof error);
    if (!f->broker)
        fail_msg ("%s", error);
    zclock_sleep (300);
    //  A release that waits in vain says which agent's log to read.
    if (ph_start_agents (&f->cli, s_roles, S_AGENTS, f->agents, 30000, error, sizeof error) < 0)
        fail_msg ("%s", error);
    f->traffic [0] = dtu_traffic_start (f->deploy_state, "pyservice", "staging", 30);
    f->traffic [1] = dtu_traffic_start (f->deploy_state, "pyservice", "production", 30);
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    s_fixture_t *f = *state;
    dtu_traffic_stop (&f->traffic [0]);
    dtu_traffic_stop (&f->traffic [1]);
    for (int i = S_AGENTS - 1; i >= 0; i--)
        ph_stop (&f->agents [i], SIGTERM);
    ph_stop (&f->broker, SIGTERM);
    dtu_remove_tree (f->dir);
    free (f);
    return 0;
}

static void
test_prometheus_client_service (void **state)
{
    s_fixture_t *f = *state;
    //  Its /metrics: what prometheus_client writes, promtool-clean, the standard names.
    char metrics [400];
    snprintf (metrics, sizeof metrics, "%s/pyservice.metrics", f->dir);
    s_fetch_metrics (f, metrics);
    char *text = dtu_read (metrics);
    assert_non_null (text);
    const char *names [] = { "# TYPE process_cpu_seconds_total counter", "# TYPE process_resident_memory_bytes gauge",
                             "http_requests_total{code=\"200\",method=\"GET\"} 1.0",
                             "http_requests_total{code=\"404\",method=\"GET\"} 1.0",
                             "# TYPE http_request_duration_seconds histogram" };
    for (size_t i = 0; i < sizeof names / sizeof names [0]; i++)
        if (!strstr (text, names [i]))
            fail_msg ("pyservice's /metrics lacks '%s':\n%s", names [i], text);
    free (text);
    if (access ("/usr/bin/promtool", X_OK) == 0) {
        char command [1200];
        snprintf (command, sizeof command, "/usr/bin/promtool check metrics < '%s' > '%s/promtool.out' 2>&1",
                  metrics, f->dir);
        int rc = system (command);
        char path [400];
        snprintf (path, sizeof path, "%s/promtool.out", f->dir);
        char *lint = dtu_read (path);
        if (!WIFEXITED (rc) || WEXITSTATUS (rc) != 0 || (lint && *lint))
            fail_msg ("promtool check metrics: exit %d:\n%s", WIFEXITED (rc)? WEXITSTATUS (rc): -1, lint? lint: "");
        free (lint);
    }
    else
        fprintf (stderr, "realservice: promtool not installed (Debian package prometheus): lint not run\n");

    //  (i) Healthy: staging, QA, a signed approval, production, soak, DONE.
    s_submit (f, "pyservice", "py-1", "v1", NULL);
    s_wait_state (f, "py-1", "APPROVE", 90000);
    int rc = ph_approve (&f->cli, "py-1-prod", "alice", &text);
    if (rc != 0 || !text || !strstr (text, "granted"))
        fail_msg ("airlock approve: exit %d:\n%s", rc, text? text: "");
    free (text);
    s_wait_state (f, "py-1", "DONE", 90000);
    s_expect_receipt (f, "staging", "v1", "succeeded", "");
    s_expect_receipt (f, "production", "v1", "succeeded", "");
    int with_version = 0, total = 0;
    dtu_count (f->deploy_state, "pyservice", "production", "v1", &with_version, &total);
    assert_int_equal (with_version, 1);
    //  The monitor's samples said where their numbers came from.
    char path [400];
    snprintf (path, sizeof path, "%s/monitor/baselines", f->dir);
    assert_true (dtu_tree_contains (path, "\"samples_with_traffic\""));

    //  (ii) Errors: rolled back in staging by error_rate_increase; production keeps v1.
    s_submit (f, "pyservice", "py-2", "v2", "--error-rate 0.6");
    s_wait_state (f, "py-2", "FAILED", 90000);
    s_expect_receipt (f, "staging", "v2", "rolled_back", "error_rate_increase");

    //  (iii) A CPU-burning thread: rolled back in staging by cpu_percent, from the rate
    //  of process_cpu_seconds_total. The same service under another name with a twentieth
    //  of a core (and no traffic): a burner that a loaded machine (the ASan suite beside
    //  other builds) gives a fraction of a core still reads far above its limit.
    s_submit (f, "pyburner", "py-3", "v3", "--cpu-burn 100 --burn-threads 2");
    s_wait_state (f, "py-3", "FAILED", 90000);
    s_expect_receipt (f, "staging", "v3", "rolled_back", "cpu_percent");
    dtu_count (f->deploy_state, "pyservice", "production", "v1", &with_version, &total);
    assert_int_equal (with_version, 1);
    dtu_count (f->deploy_state, "pyservice", "staging", "v1", &with_version, &total);
    assert_int_equal (with_version, 1);
}

int
main (void)
{
    curl_global_init (CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_prometheus_client_service, s_setup, s_teardown),
    };
    int rc = cmocka_run_group_tests (tests, NULL, NULL);
    curl_global_cleanup ();
    return rc;
}
