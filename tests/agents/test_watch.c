/*  test_watch.c: the built `airlock watch` against a real broker.

    A deploy-manager client sends DeployProgress and DeployReceipt envelopes for
    "dep-1", interleaved with some for "dep-2"; `airlock watch dep-1 --json` must print
    exactly dep-1's events, in order, and exit 0 on SUCCEEDED and 1 on ROLLED_BACK (a
    dep-2 receipt must not end it). A monitor client sends SoakSignals for
    `airlock watch --signals`: each sample is judged by deploy/al_rules (the monitor's
    rules) against quality_rules.yaml and the baseline; missing evidence shows as
    missing and exits 1, a single CPU spike is "over" and no breach, three in a row
    breach; after a broker restart the watch reports the restart and the gap. Every
    rule's status and verdict the watch shows for a run of samples is checked against
    deploy/al_rules fed the same samples here (s_assert_agrees_with_rules).

    The watch subscribes asynchronously; it says "receiving events" on stderr once the
    first event reaches it. Each test publishes warm-up events the watch must not show
    (another deployment, a neighbouring service) until it says so.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "bus.h"
#include "deploy/al_rules.h"

#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
    bus_t *bus;
    al_agent_t *deployer;
    al_agent_t *monitor;
    pid_t watch_pid;
    char out_path [400];
    char err_path [400];
} fixture_t;

static int
s_setup (void **state)
{
    fixture_t *fixture = calloc (1, sizeof *fixture);
    assert_non_null (fixture);
    fixture->bus = bus_new (NULL);
    assert_non_null (fixture->bus);
    assert_int_equal (bus_broker_start (fixture->bus), 0);
    fixture->deployer = bus_agent (fixture->bus, "deploy-manager");
    assert_non_null (fixture->deployer);
    fixture->monitor = bus_agent (fixture->bus, "monitor");
    assert_non_null (fixture->monitor);
    snprintf (fixture->out_path, sizeof fixture->out_path, "%s/watch.out", fixture->bus->dir);
    snprintf (fixture->err_path, sizeof fixture->err_path, "%s/watch.err", fixture->bus->dir);
    *state = fixture;
    return 0;
}

static int
s_teardown (void **state)
{
    fixture_t *fixture = *state;
    if (fixture->watch_pid > 0) {
        kill (fixture->watch_pid, SIGKILL);
        waitpid (fixture->watch_pid, NULL, 0);
    }
    al_agent_destroy (&fixture->deployer);
    al_agent_destroy (&fixture->monitor);
    bus_destroy (&fixture->bus);
    free (fixture);
    return 0;
}

static const char *
s_airlock (void)
{
    static char path [512];
    const char *binary = getenv ("AIRLOCK_BINARY_DIR");
    assert_non_null (binary);
    snprintf (path, sizeof path, "%s/airlock", binary);
    return path;
}

//  Start `airlock watch ARGS... --config CONFIG` with stdout and stderr in files.
static void
s_watch_start (fixture_t *fixture, const char *const *args)
{
    const char *argv [32];
    size_t count = 0;
    argv [count++] = s_airlock ();
    argv [count++] = "watch";
    for (size_t index = 0; args [index]; index++)
        argv [count++] = args [index];
    argv [count++] = "--config";
    argv [count++] = fixture->bus->config_path;
    argv [count] = NULL;
    assert_true (count < 32);
    pid_t pid = fork ();
    assert_true (pid >= 0);
    if (pid == 0) {
        int out = open (fixture->out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int err = open (fixture->err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (out < 0 || err < 0)
            _exit (127);
        dup2 (out, STDOUT_FILENO);
        dup2 (err, STDERR_FILENO);
        execv (argv [0], (char *const *) argv);
        _exit (127);
    }
    fixture->watch_pid = pid;
}

//  The whole of a file ("" if it does not exist yet); caller frees.
static char *
s_slurp (const char *path)
{
    FILE *file = fopen (path, "r");
    if (!file)
        return strdup ("");
    char *text = NULL;
    size_t size = 0;
    FILE *memory = open_memstream (&text, &size);
    assert_non_null (memory);
    char buffer [4096];
    size_t got;
    while ((got = fread (buffer, 1, sizeof buffer, file)) > 0)
        fwrite (buffer, 1, got, memory);
    fclose (file);
    fclose (memory);
    return text;
}

static bool
s_file_has (const char *path, const char *needle)
{
    char *text = s_slurp (path);
    bool found = strstr (text, needle) != NULL;
    free (text);
    return found;
}

//  Wait up to timeout_ms for the watch to exit; its exit code, or -1.
static int
s_watch_wait (fixture_t *fixture, int timeout_ms)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    while (zclock_mono () < deadline) {
        int status = 0;
        pid_t done = waitpid (fixture->watch_pid, &status, WNOHANG);
        if (done == fixture->watch_pid) {
            fixture->watch_pid = 0;
            return WIFEXITED (status)? WEXITSTATUS (status): -1;
        }
        zclock_sleep (50);
    }
    return -1;
}

//  Run the CLI synchronously; its exit code.
static int
s_run (fixture_t *fixture, const char *args)
{
    char command [2048];
    snprintf (command, sizeof command, "%s watch %s > %s 2> %s", s_airlock (), args, fixture->out_path,
              fixture->err_path);
    int status = system (command);
    return WIFEXITED (status)? WEXITSTATUS (status): -1;
}

//  stdout of the watch as JSON objects, one per complete line. A last line without its
//  newline is still being written (a line longer than what stdio had room for reaches
//  the file in two writes): it is left for the next read.
static json_t *
s_json_lines (fixture_t *fixture)
{
    char *text = s_slurp (fixture->out_path);
    char *end = strrchr (text, '\n');
    *(end? end + 1: text) = '\0';
    json_t *lines = json_array ();
    char *save = NULL;
    for (char *line = strtok_r (text, "\n", &save); line; line = strtok_r (NULL, "\n", &save)) {
        json_error_t error;
        json_t *object = json_loads (line, 0, &error);
        if (!object)
            fail_msg ("not a JSON line: '%s' (%s)", line, error.text);
        json_array_append_new (lines, object);
    }
    free (text);
    return lines;
}

//  Warm up: dep-2 events until the watch says events reach it.
static void
s_warm_up_deployment (fixture_t *fixture)
{
    for (int attempt = 0; attempt < 100; attempt++) {
        if (s_file_has (fixture->err_path, "receiving events"))
            return;
        assert_int_equal (bus_send_progress (fixture->deployer, "dep-2", AIRLOCK__STEP__STEP_PREFLIGHT,
                                             AIRLOCK__OUTCOME__OUTCOME_STARTED, 0, 0, 0, "warm-up"), 0);
        zclock_sleep (200);
    }
    char *text = s_slurp (fixture->err_path);
    fail_msg ("the watch never received an event; it said:\n%s", text);
    free (text);
}

typedef struct {
    const char *deployment;
    Airlock__Step step;
    Airlock__Outcome outcome;
    uint32_t instance, instances, percent;
    const char *detail;
} s_event_t;

static const s_event_t s_story [] = {
    { "dep-1", AIRLOCK__STEP__STEP_PREFLIGHT, AIRLOCK__OUTCOME__OUTCOME_STARTED, 0, 0, 0, "checks" },
    { "dep-2", AIRLOCK__STEP__STEP_BACKUP, AIRLOCK__OUTCOME__OUTCOME_STARTED, 0, 0, 0, "other" },
    { "dep-1", AIRLOCK__STEP__STEP_PREFLIGHT, AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED, 0, 0, 0, "all passed" },
    { "dep-1", AIRLOCK__STEP__STEP_ROLLOUT, AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED, 1, 3, 33, "127.0.0.1:8081" },
    { "dep-2", AIRLOCK__STEP__STEP_ROLLOUT, AIRLOCK__OUTCOME__OUTCOME_STARTED, 1, 2, 50, "other" },
    { "dep-1", AIRLOCK__STEP__STEP_ROLLOUT, AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED, 2, 3, 67, "127.0.0.1:8082" },
    { "dep-1", AIRLOCK__STEP__STEP_ROLLOUT, AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED, 3, 3, 100, "127.0.0.1:8083" },
    { "dep-1", AIRLOCK__STEP__STEP_ROLLOUT, AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED, 0, 3, 100, "" },
};

static void
s_check_story (json_t *lines, const char *receipt_outcome)
{
    size_t expected = 0, index = 0;
    json_int_t previous = 0;
    for (size_t event = 0; event < sizeof s_story / sizeof s_story [0]; event++) {
        const s_event_t *sent = &s_story [event];
        if (strcmp (sent->deployment, "dep-1") != 0)
            continue;
        expected++;
        json_t *line = json_array_get (lines, index++);
        assert_non_null (line);
        assert_string_equal (json_string_value (json_object_get (line, "deployment")), "dep-1");
        assert_string_equal (json_string_value (json_object_get (line, "type")), "DeployProgress");
        assert_string_equal (json_string_value (json_object_get (line, "step")), al_step_name (sent->step));
        assert_string_equal (json_string_value (json_object_get (line, "outcome")),
                             al_outcome_name (sent->outcome));
        assert_int_equal (json_integer_value (json_object_get (line, "instance")), sent->instance);
        assert_int_equal (json_integer_value (json_object_get (line, "instances")), sent->instances);
        assert_int_equal (json_integer_value (json_object_get (line, "percent")), sent->percent);
        assert_string_equal (json_string_value (json_object_get (line, "detail")), sent->detail);
        assert_string_equal (json_string_value (json_object_get (line, "sender")), "deploy-manager");
        assert_non_null (json_string_value (json_object_get (line, "time")));
        json_int_t sequence = json_integer_value (json_object_get (line, "sequence"));
        assert_true (sequence > previous);
        previous = sequence;
    }
    json_t *receipt = json_array_get (lines, index++);
    assert_non_null (receipt);
    assert_string_equal (json_string_value (json_object_get (receipt, "deployment")), "dep-1");
    assert_string_equal (json_string_value (json_object_get (receipt, "type")), "DeployReceipt");
    assert_string_equal (json_string_value (json_object_get (receipt, "outcome")), receipt_outcome);
    assert_string_equal (json_string_value (json_object_get (receipt, "version")), "v2.0.0");
    //  Exactly dep-1's events: nothing for dep-2, no gap, nothing after the receipt.
    assert_int_equal (json_array_size (lines), expected + 1);
}

//  A row about DEPLOYMENT in the audit log, before a watch starts: the deployment exists
//  (a watch of one the log does not know ends at once with "no such deployment").
static void
s_deployment_exists (fixture_t *fixture, const char *deployment)
{
    assert_int_equal (bus_send_journal (fixture->deployer, deployment, AIRLOCK__STEP__STEP_PREFLIGHT,
                                        AIRLOCK__OUTCOME__OUTCOME_STARTED, "queued"), 0);
}

static void
s_deployment_watch (fixture_t *fixture, Airlock__Outcome outcome, const char *outcome_name, int exit_code)
{
    const char *args [] = { "dep-1", "--json", "--timeout", "120", NULL };
    s_deployment_exists (fixture, "dep-1");
    s_watch_start (fixture, args);
    s_warm_up_deployment (fixture);
    for (size_t event = 0; event < sizeof s_story / sizeof s_story [0]; event++) {
        const s_event_t *sent = &s_story [event];
        assert_int_equal (bus_send_progress (fixture->deployer, sent->deployment, sent->step, sent->outcome,
                                             sent->instance, sent->instances, sent->percent, sent->detail), 0);
    }
    //  Another deployment's receipt does not end the watch of dep-1.
    assert_int_equal (bus_send_receipt (fixture->deployer, "dep-2", AIRLOCK__OUTCOME__OUTCOME_FAILED), 0);
    assert_int_equal (bus_send_receipt (fixture->deployer, "dep-1", outcome), 0);
    int code = s_watch_wait (fixture, 30000);
    if (code != exit_code) {
        char *out = s_slurp (fixture->out_path), *err = s_slurp (fixture->err_path);
        fail_msg ("exit %d, expected %d\nstdout:\n%s\nstderr:\n%s", code, exit_code, out, err);
    }
    json_t *lines = s_json_lines (fixture);
    s_check_story (lines, outcome_name);
    json_decref (lines);
}

static void
test_watch_succeeded (void **state)
{
    s_deployment_watch (*state, AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED, "succeeded", 0);
}

static void
test_watch_rolled_back (void **state)
{
    fixture_t *fixture = *state;
    s_deployment_watch (fixture, AIRLOCK__OUTCOME__OUTCOME_ROLLED_BACK, "rolled_back", 1);
    json_t *lines = s_json_lines (fixture);
    json_t *receipt = json_array_get (lines, json_array_size (lines) - 1);
    assert_string_equal (json_string_value (json_object_get (receipt, "rollback_rule")), "error_rate");
    assert_string_equal (json_string_value (json_object_get (receipt, "previous_version")), "v1.9.0");
    json_decref (lines);
}

//  Plain output (not a terminal): one line per event, the receipt last.
static void
test_watch_plain_lines (void **state)
{
    fixture_t *fixture = *state;
    const char *args [] = { "dep-1", "--timeout", "120", NULL };
    s_deployment_exists (fixture, "dep-1");
    s_watch_start (fixture, args);
    s_warm_up_deployment (fixture);
    assert_int_equal (bus_send_progress (fixture->deployer, "dep-1", AIRLOCK__STEP__STEP_ROLLOUT,
                                         AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED, 2, 3, 67, "127.0.0.1:8082"), 0);
    assert_int_equal (bus_send_receipt (fixture->deployer, "dep-1", AIRLOCK__OUTCOME__OUTCOME_FAILED), 0);
    assert_int_equal (s_watch_wait (fixture, 30000), 1);
    char *out = s_slurp (fixture->out_path);
    if (!strstr (out, "[rollout] instance 2/3 ready  67%  127.0.0.1:8082\n")
    ||  !strstr (out, "[receipt] demo-service v2.0.0 failed")
    ||  strstr (out, "dep-2") || strstr (out, "warm-up") || strchr (out, '\033'))
        fail_msg ("unexpected output:\n%s", out);
    free (out);
}

static void
test_usage_and_timeout (void **state)
{
    fixture_t *fixture = *state;
    char args [1024];
    assert_int_equal (s_run (fixture, "--help"), 0);
    assert_true (s_file_has (fixture->out_path, "--signals SERVICE"));
    assert_int_equal (s_run (fixture, ""), 2);
    assert_int_equal (s_run (fixture, "dep-1 --signals demo-service"), 2);
    assert_int_equal (s_run (fixture, "--signals Not_A_Service"), 2);
    assert_int_equal (s_run (fixture, "--signals demo-service --env moon"), 2);
    assert_int_equal (s_run (fixture, "dep-1 --timeout soon"), 2);
    assert_int_equal (s_run (fixture, "dep-1 --config /nonexistent/airlock.yaml"), 2);
    assert_true (s_file_has (fixture->err_path, "/nonexistent/airlock.yaml"));
    //  A deployment neither the audit log nor the orchestrator knows: exit 1 at once.
    snprintf (args, sizeof args, "dep-9 --state %s --timeout 600", fixture->bus->dir);
    assert_int_equal (s_run (fixture, args), 1);
    assert_true (s_file_has (fixture->err_path, "no such deployment: dep-9"));
    //  --state DIR finds DIR/airlock.yaml; no receipt within the timeout is exit 2.
    s_deployment_exists (fixture, "dep-9");
    snprintf (args, sizeof args, "dep-9 --state %s --timeout 1", fixture->bus->dir);
    assert_int_equal (s_run (fixture, args), 2);
    assert_true (s_file_has (fixture->err_path, "no receipt for dep-9 within 1 s"));
    //  A role whose key the broker does not know.
    char path [512];
    snprintf (path, sizeof path, "%s/stranger.cert", al_config_agents_keys_dir (fixture->bus->config));
    zcert_t *cert = zcert_new ();
    assert_int_equal (zcert_save (cert, path), 0);
    zcert_destroy (&cert);
    snprintf (args, sizeof args, "dep-9 --as stranger --timeout 30 --config %s", fixture->bus->config_path);
    assert_int_equal (s_run (fixture, args), 2);
    assert_true (s_file_has (fixture->err_path, "refused this key"));
}

//  A deployment that already finished: its receipt from the audit log at once, exit by
//  outcome; a release id instead of a deployment id is named as such.
static void
test_watch_finished_answers_at_once (void **state)
{
    fixture_t *fixture = *state;
    s_deployment_exists (fixture, "dep-5");
    assert_int_equal (bus_send_receipt (fixture->deployer, "dep-5", AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED), 0);
    s_deployment_exists (fixture, "dep-6");
    assert_int_equal (bus_send_receipt (fixture->deployer, "dep-6", AIRLOCK__OUTCOME__OUTCOME_ROLLED_BACK), 0);
    char args [1024];
    //  No --timeout: without the answer from the log this would wait forever.
    snprintf (args, sizeof args, "dep-5 --json --config %s", fixture->bus->config_path);
    assert_int_equal (s_run (fixture, args), 0);
    json_t *lines = s_json_lines (fixture);
    assert_int_equal (json_array_size (lines), 1);
    json_t *receipt = json_array_get (lines, 0);
    assert_string_equal (json_string_value (json_object_get (receipt, "deployment")), "dep-5");
    assert_string_equal (json_string_value (json_object_get (receipt, "type")), "DeployReceipt");
    assert_string_equal (json_string_value (json_object_get (receipt, "outcome")), "succeeded");
    assert_string_equal (json_string_value (json_object_get (receipt, "version")), "v2.0.0");
    assert_string_equal (json_string_value (json_object_get (receipt, "source")), "audit log");
    assert_true (json_integer_value (json_object_get (receipt, "sequence")) > 0);
    json_decref (lines);
    snprintf (args, sizeof args, "dep-6 --config %s", fixture->bus->config_path);
    assert_int_equal (s_run (fixture, args), 1);
    char *out = s_slurp (fixture->out_path);
    if (!strstr (out, "dep-6 [receipt] demo-service v2.0.0 rolled_back") || !strstr (out, "previous version v1.9.0"))
        fail_msg ("unexpected output:\n%s", out);
    free (out);
    //  A release's own id: not a deployment, and the two that are are named.
    char path [512];
    snprintf (path, sizeof path, "%s/orchestrator/releases", fixture->bus->dir);
    char command [1200];
    snprintf (command, sizeof command, "mkdir -p '%s' && printf '{\"release_id\": \"rel-7\", \"state\": \"STAGING\"}' "
              "> '%s/rel-7.json'", path, path);
    assert_int_equal (system (command), 0);
    snprintf (args, sizeof args, "rel-7 --config %s", fixture->bus->config_path);
    assert_int_equal (s_run (fixture, args), 1);
    assert_true (s_file_has (fixture->err_path, "it is a release: watch rel-7-stg"));
    //  Its staging deployment has not started: it is watched live (here until --timeout).
    snprintf (args, sizeof args, "rel-7-stg --timeout 1 --config %s", fixture->bus->config_path);
    assert_int_equal (s_run (fixture, args), 2);
    assert_true (s_file_has (fixture->err_path, "rel-7-stg has not started yet"));
    assert_true (s_file_has (fixture->err_path, "no receipt for rel-7-stg within 1 s"));
}

//  ---- --signals ------------------------------------------------------------------------

//  A healthy sample: 40 req/s, all 3 instances up, every signal with evidence.
static Airlock__SoakSignal
s_healthy (bool baseline, double error_ratio, double p99, double cpu)
{
    Airlock__SoakSignal signal = AIRLOCK__SOAK_SIGNAL__INIT;
    signal.requests_per_second = 40;
    signal.error_ratio = error_ratio;
    signal.latency_p50_ms = p99 / 2;
    signal.latency_p99_ms = p99;
    signal.cpu_percent = cpu;
    signal.memory_percent = 30;
    signal.instances_up = 3;
    signal.instances_total = 3;
    signal.baseline = baseline;
    return signal;
}

static void
s_send (fixture_t *fixture, const char *service, Airlock__SoakSignal *signal)
{
    static uint64_t counter = 0;
    signal->sequence = ++counter;
    assert_int_equal (bus_send_signal (fixture->monitor, service, AIRLOCK__ENVIRONMENT__ENV_PRODUCTION, signal), 0);
}

static void
s_signal (fixture_t *fixture, const char *service, bool baseline, double error_ratio, double p99,
          double cpu, uint32_t failures)
{
    Airlock__SoakSignal signal = s_healthy (baseline, error_ratio, p99, cpu);
    signal.consecutive_health_failures = failures;
    s_send (fixture, service, &signal);
}

//  Start `airlock watch --signals demo-service ARGS...` and warm it up with a
//  neighbouring service, whose topic shares the prefix, until it receives events.
static void
s_watch_signals (fixture_t *fixture, const char *const *extra)
{
    const char *args [16] = { "--signals", "demo-service", "--timeout", "120" };
    size_t count = 4;
    for (size_t index = 0; extra [index]; index++)
        args [count++] = extra [index];
    args [count] = NULL;
    s_watch_start (fixture, args);
    for (int attempt = 0; attempt < 100 && !s_file_has (fixture->err_path, "receiving events"); attempt++) {
        s_signal (fixture, "demo-service-canary", false, 0.9, 5000, 99, 9);
        zclock_sleep (200);
    }
    assert_true (s_file_has (fixture->err_path, "receiving events"));
}

static size_t
s_count_lines (fixture_t *fixture, const char *key)
{
    json_t *lines = s_json_lines (fixture);
    size_t count = 0;
    for (size_t index = 0; index < json_array_size (lines); index++)
        if (json_object_get (json_array_get (lines, index), key))
            count++;
    json_decref (lines);
    return count;
}

static void
s_wait_lines (fixture_t *fixture, const char *key, size_t count)
{
    for (int attempt = 0; attempt < 300; attempt++) {
        if (s_count_lines (fixture, key) >= count)
            return;
        zclock_sleep (50);
    }
    char *out = s_slurp (fixture->out_path);
    fail_msg ("fewer than %zu lines with '%s':\n%s", count, key, out);
    free (out);
}

static json_t *
s_check (json_t *line, const char *rule)
{
    json_t *checks = json_object_get (line, "checks");
    assert_non_null (checks);
    json_t *check = json_object_get (checks, rule);
    if (!check)
        fail_msg ("no check %s in %s", rule, json_dumps (line, 0));
    return check;
}

static const char *
s_status (json_t *line, const char *rule)
{
    const char *status = json_string_value (json_object_get (s_check (line, rule), "status"));
    assert_non_null (status);
    return status;
}

static double
s_limit (json_t *line, const char *rule)
{
    return json_number_value (json_object_get (s_check (line, rule), "limit"));
}

//  The names in a JSON array of strings, joined by ",".
static void
s_names (json_t *list, char *text, size_t size)
{
    assert_true (json_is_array (list));
    text [0] = 0;
    for (size_t index = 0; index < json_array_size (list); index++)
        snprintf (text + strlen (text), size - strlen (text), "%s%s", index? ",": "",
                  json_string_value (json_array_get (list, index)));
}

static void
s_assert_names (json_t *line, const char *key, const char *expected)
{
    char names [256];
    s_names (json_object_get (line, key), names, sizeof names);
    if (strcmp (names, expected) != 0)
        fail_msg ("%s: expected [%s], got [%s]", key, expected, names);
}

static void
test_signals_against_thresholds (void **state)
{
    fixture_t *fixture = *state;
    const char *extra [] = { "--json", NULL };
    s_watch_signals (fixture, extra);
    //  Baseline: 1% errors, p99 100 ms (90, 110, and a sample without latency evidence
    //  whose 0 must not count). Then an ok sample, then p99 above 2 × baseline.
    s_signal (fixture, "demo-service", true, 0.01, 90, 20, 0);
    Airlock__SoakSignal quiet = s_healthy (true, 0.01, 0, 20);
    quiet.no_evidence = AL_RULES_SIGNAL_LATENCY;
    quiet.latency_p50_ms = 0;
    s_send (fixture, "demo-service", &quiet);
    s_signal (fixture, "demo-service", true, 0.01, 110, 20, 0);
    s_signal (fixture, "demo-service", false, 0.02, 150, 50, 1);
    s_signal (fixture, "demo-service", false, 0.02, 250, 50, 0);
    s_wait_lines (fixture, "checks", 5);
    json_t *lines = s_json_lines (fixture);
    assert_int_equal (json_array_size (lines), 5);
    for (size_t index = 0; index < 5; index++) {
        json_t *line = json_array_get (lines, index);
        assert_string_equal (json_string_value (json_object_get (line, "service")), "demo-service");
        assert_string_equal (json_string_value (json_object_get (line, "environment")), "production");
    }
    //  Baseline samples make the baseline; they are not judged.
    json_t *baseline = json_array_get (lines, 0);
    assert_true (json_is_true (json_object_get (baseline, "baseline")));
    assert_true (json_is_false (json_object_get (baseline, "judged")));
    assert_null (json_object_get (baseline, "verdict"));
    assert_string_equal (s_status (baseline, "latency_p99_factor"), "skipped");
    assert_string_equal (s_status (baseline, "cpu_percent"), "ok");
    //  The latency-less baseline sample: p99 and p50 absent (null), not 0.
    json_t *blind = json_array_get (lines, 1);
    assert_true (json_is_null (json_object_get (blind, "latency_p50_ms")));
    assert_true (json_is_null (json_object_get (s_check (blind, "latency_p99_factor"), "value")));
    //  quality_rules.yaml of policies/default: p99 > 2 × baseline, errors +5 points,
    //  CPU and memory > 80%, more than 3 consecutive health-check failures.
    json_t *good = json_array_get (lines, 3);
    assert_true (json_is_true (json_object_get (good, "judged")));
    assert_true (json_is_false (json_object_get (good, "breach")));
    assert_string_equal (s_status (good, "latency_p99_factor"), "ok");
    //  2 × the mean of 90 and 110: the latency-less sample is not averaged in.
    assert_true (s_limit (good, "latency_p99_factor") > 199.9 && s_limit (good, "latency_p99_factor") < 200.1);
    assert_true (s_limit (good, "error_rate_increase") > 5.9 && s_limit (good, "error_rate_increase") < 6.1);
    assert_true (s_limit (good, "cpu_percent") > 79.9 && s_limit (good, "cpu_percent") < 80.1);
    assert_true (s_limit (good, "health_check_failures") > 2.9 && s_limit (good, "health_check_failures") < 3.1);
    assert_string_equal (s_status (good, "health_check_failures"), "ok");
    assert_string_equal (s_status (good, "missing_evidence"), "ok");
    assert_string_equal (s_status (good, "error_rate_investigate"), "over");
    assert_string_equal (json_string_value (json_object_get (json_object_get (good, "verdict"), "verdict")),
                         "investigate");
    s_assert_names (good, "missing", "");
    json_t *bad = json_array_get (lines, 4);
    assert_true (json_is_true (json_object_get (bad, "breach")));
    assert_string_equal (s_status (bad, "latency_p99_factor"), "breach");
    assert_string_equal (s_status (bad, "error_rate_increase"), "ok");
    s_assert_names (bad, "breaches", "latency_p99_factor");
    json_t *verdict = json_object_get (bad, "verdict");
    assert_string_equal (json_string_value (json_object_get (verdict, "verdict")), "breach");
    assert_string_equal (json_string_value (json_object_get (verdict, "rule")), "latency_p99_factor");
    json_decref (lines);

    //  The broker restarts: the watch reconnects and says so, and counts what the new
    //  run published before it was back as a gap. First the topic's sequence is taken
    //  well past where the new run will be when the watch is back.
    for (int index = 0; index < 20; index++)
        s_signal (fixture, "demo-service", false, 0.02, 150, 50, 0);
    s_wait_lines (fixture, "checks", 25);
    assert_int_equal (bus_broker_stop (fixture->bus), 0);
    assert_int_equal (bus_broker_start (fixture->bus), 0);
    for (int attempt = 0; attempt < 100 && s_count_lines (fixture, "checks") < 26; attempt++) {
        s_signal (fixture, "demo-service", false, 0.02, 150, 50, 0);
        zclock_sleep (200);
    }
    s_wait_lines (fixture, "checks", 26);
    lines = s_json_lines (fixture);
    size_t index = 25;
    json_t *restarted = json_array_get (lines, index++);
    assert_non_null (restarted);
    assert_true (json_is_true (json_object_get (restarted, "restarted")));
    assert_string_equal (json_string_value (json_object_get (restarted, "topic")), "soak.production.demo-service");
    json_int_t gap = 0;
    if (json_object_get (json_array_get (lines, index), "gap")) {
        gap = json_integer_value (json_object_get (json_array_get (lines, index), "gap"));
        assert_string_equal (json_string_value (json_object_get (json_array_get (lines, index), "topic")),
                             "soak.production.demo-service");
        index++;
    }
    json_t *sample = json_array_get (lines, index);
    assert_non_null (json_object_get (sample, "checks"));
    assert_int_equal (gap, json_integer_value (json_object_get (sample, "sequence")) - 1);
    assert_true (json_integer_value (json_object_get (sample, "sequence")) < 25);
    json_decref (lines);

    //  SIGINT ends it; a breach was seen: exit 1.
    kill (fixture->watch_pid, SIGINT);
    assert_int_equal (s_watch_wait (fixture, 30000), 1);
}

static void
test_signals_within_thresholds (void **state)
{
    fixture_t *fixture = *state;
    const char *args [] = { "--signals", "demo-service", "--env", "staging", "--timeout", "120", NULL };
    s_watch_start (fixture, args);
    Airlock__SoakSignal signal = s_healthy (false, 0.5, 9000, 99);
    signal.memory_percent = 99;
    for (int attempt = 0; attempt < 100 && !s_file_has (fixture->err_path, "receiving events"); attempt++) {
        //  Production samples of the same service are another topic: never shown.
        assert_int_equal (bus_send_signal (fixture->monitor, "demo-service", AIRLOCK__ENVIRONMENT__ENV_PRODUCTION,
                                           &signal), 0);
        assert_int_equal (bus_send_signal (fixture->monitor, "demo-service-canary",
                                           AIRLOCK__ENVIRONMENT__ENV_STAGING, &signal), 0);
        zclock_sleep (200);
    }
    signal = s_healthy (true, 0.01, 100, 10);
    signal.memory_percent = 10;
    assert_int_equal (bus_send_signal (fixture->monitor, "demo-service", AIRLOCK__ENVIRONMENT__ENV_STAGING, &signal), 0);
    signal.baseline = false;
    signal.latency_p99_ms = 180;
    assert_int_equal (bus_send_signal (fixture->monitor, "demo-service", AIRLOCK__ENVIRONMENT__ENV_STAGING, &signal), 0);
    //  A single CPU spike over 80 % is no saturation (3 in a row are).
    signal.cpu_percent = 95;
    assert_int_equal (bus_send_signal (fixture->monitor, "demo-service", AIRLOCK__ENVIRONMENT__ENV_STAGING, &signal), 0);
    for (int attempt = 0; attempt < 300; attempt++) {
        char *out = s_slurp (fixture->out_path);
        size_t count = 0;
        for (char *c = out; *c; c++)
            count += *c == '\n';
        free (out);
        if (count >= 3)
            break;
        zclock_sleep (50);
    }
    kill (fixture->watch_pid, SIGINT);
    int code = s_watch_wait (fixture, 30000);
    char *out = s_slurp (fixture->out_path);
    if (code != 0 || !strstr (out, "demo-service #")
    ||  !strstr (out, "latency_p99_factor 180.0 ms (max 200.0 ms) ok")
    ||  !strstr (out, "error_rate_increase 1.00% (max 6.00%) ok")
    ||  !strstr (out, "health_check_failures 0 (max 3) ok")
    ||  !strstr (out, "cpu_percent 95.00% (max 80.00%) over (cpu 95.0% > 80% in 1 of 3 samples in a row)")
    ||  !strstr (out, "=> not judged (a baseline sample)") || !strstr (out, "=> ok")
    ||  strstr (out, "9000") || strstr (out, "breach") || strstr (out, "missing ("))
        fail_msg ("exit %d, unexpected output:\n%s", code, out);
    free (out);
}

//  CPU saturation breaches on the third sample in a row; missing evidence is null in
//  JSON, listed under "missing", and a breach.
//  Judge samples with deploy/al_rules here, as the monitor would, and require the
//  watch's lines to say exactly the same: every rule's status and the verdict. The
//  cases are those where the CLI's former copy of the rules disagreed: one CPU sample
//  above 80 % (the copy: breach; the rules: over, a breach only 3 in a row), and an
//  absent gauge (the copy read its 0 as ok; the rules: missing).
static void
s_assert_agrees_with_rules (fixture_t *fixture, json_t *lines, Airlock__SoakSignal *const *samples, size_t count)
{
    al_policy_errors_t *errors = NULL;
    al_policy_t *policy = al_policy_load (al_config_policy_dir (fixture->bus->config), &errors);
    assert_non_null (policy);
    al_rules_stream_t *judge = al_rules_stream_new (al_policy_thresholds (policy), 0);
    assert_non_null (judge);
    for (size_t index = 0; index < count; index++) {
        al_rules_row_t rows [AL_RULES_ROWS];
        bool judged = false;
        al_rules_result_t verdict = al_rules_stream_feed (judge, samples [index], zclock_mono (), rows,
                                                          AL_RULES_ROWS, &judged);
        json_t *line = json_array_get (lines, index);
        assert_non_null (line);
        for (size_t row = 0; row < AL_RULES_ROWS; row++)
            if (strcmp (s_status (line, rows [row].rule), al_rules_row_status_name (rows [row].status)) != 0)
                fail_msg ("sample %zu, %s: the watch says %s, deploy/al_rules says %s", index, rows [row].rule,
                          s_status (line, rows [row].rule), al_rules_row_status_name (rows [row].status));
        assert_int_equal (json_is_true (json_object_get (line, "judged")), judged);
        if (judged) {
            json_t *shown = json_object_get (line, "verdict");
            assert_string_equal (json_string_value (json_object_get (shown, "verdict")),
                                 al_rules_verdict_name (verdict.verdict));
            assert_string_equal (json_string_value (json_object_get (shown, "rule")), verdict.rule);
            assert_int_equal (json_is_true (json_object_get (line, "breach")), verdict.verdict == AL_RULES_BREACH);
        }
    }
    al_rules_stream_destroy (&judge);
    al_policy_destroy (&policy);
    al_policy_errors_destroy (&errors);
}

static void
test_signals_saturation_and_missing_json (void **state)
{
    fixture_t *fixture = *state;
    const char *extra [] = { "--json", NULL };
    s_watch_signals (fixture, extra);
    Airlock__SoakSignal sent [6];
    sent [0] = s_healthy (true, 0.001, 100, 20);
    for (int index = 1; index <= 3; index++)
        sent [index] = s_healthy (false, 0.001, 100, 95);
    Airlock__SoakSignal blind = s_healthy (false, 0.001, 100, 20);
    blind.no_evidence = AL_RULES_SIGNAL_MEMORY;
    blind.memory_percent = 0;
    sent [4] = blind;
    //  Memory not required: absent, said so, no breach of its own.
    Airlock__SoakSignal optional = s_healthy (false, 0.001, 100, 20);
    optional.no_evidence = optional.not_required = AL_RULES_SIGNAL_MEMORY;
    optional.memory_percent = 0;
    sent [5] = optional;
    Airlock__SoakSignal *samples [6];
    for (size_t index = 0; index < 6; index++) {
        s_send (fixture, "demo-service", &sent [index]);
        samples [index] = &sent [index];
    }
    s_wait_lines (fixture, "checks", 6);
    json_t *lines = s_json_lines (fixture);
    s_assert_agrees_with_rules (fixture, lines, samples, 6);
    for (size_t index = 1; index <= 2; index++) {
        json_t *spike = json_array_get (lines, index);
        assert_string_equal (s_status (spike, "cpu_percent"), "over");
        assert_int_equal (json_integer_value (json_object_get (s_check (spike, "cpu_percent"), "in_a_row")), index);
        assert_true (json_is_false (json_object_get (spike, "breach")));
        assert_string_equal (json_string_value (json_object_get (json_object_get (spike, "verdict"), "verdict")), "ok");
    }
    json_t *third = json_array_get (lines, 3);
    assert_string_equal (s_status (third, "cpu_percent"), "breach");
    assert_true (json_is_true (json_object_get (third, "breach")));
    s_assert_names (third, "breaches", "cpu_percent");
    assert_string_equal (json_string_value (json_object_get (json_object_get (third, "verdict"), "rule")),
                         "cpu_percent");
    json_t *missing = json_array_get (lines, 4);
    json_t *memory = s_check (missing, "memory_percent");
    assert_true (json_is_null (json_object_get (memory, "value")));
    assert_string_equal (s_status (missing, "memory_percent"), "missing");
    assert_string_equal (s_status (missing, "missing_evidence"), "missing");
    s_assert_names (missing, "missing", "memory");
    s_assert_names (missing, "breaches", "missing_evidence,memory_percent");
    assert_true (json_is_true (json_object_get (missing, "breach")));
    json_t *optional_line = json_array_get (lines, 5);
    assert_string_equal (s_status (optional_line, "memory_percent"), "not required");
    assert_string_equal (s_status (optional_line, "missing_evidence"), "ok");
    assert_true (json_is_null (json_object_get (s_check (optional_line, "memory_percent"), "value")));
    s_assert_names (optional_line, "missing", "");
    s_assert_names (optional_line, "not_required", "memory");
    s_assert_names (optional_line, "breaches", "");
    json_decref (lines);
    kill (fixture->watch_pid, SIGINT);
    assert_int_equal (s_watch_wait (fixture, 30000), 1);
}

//  The issue: CPU evidence missing during a soak printed "cpu_percent 0.0 ok" and exit 0.
static void
test_signals_missing_cpu (void **state)
{
    fixture_t *fixture = *state;
    const char *extra [] = { NULL };
    s_watch_signals (fixture, extra);
    s_signal (fixture, "demo-service", true, 0.001, 100, 20, 0);
    Airlock__SoakSignal blind = s_healthy (false, 0.001, 100, 0);
    blind.no_evidence = AL_RULES_SIGNAL_CPU;
    s_send (fixture, "demo-service", &blind);
    for (int attempt = 0; attempt < 300 && !s_file_has (fixture->out_path, "=> breach"); attempt++)
        zclock_sleep (50);
    kill (fixture->watch_pid, SIGINT);
    int code = s_watch_wait (fixture, 30000);
    char *out = s_slurp (fixture->out_path);
    if (code != 1 || !strstr (out, "cpu_percent missing (max 80.00%) missing (no cpu evidence)")
    ||  !strstr (out, "missing_evidence missing (max -) missing (no cpu evidence)")
    ||  !strstr (out, "=> breach missing_evidence: no cpu evidence")
    ||  strstr (out, "cpu_percent 0.00%"))
        fail_msg ("exit %d, unexpected output:\n%s", code, out);
    free (out);
}

//  On a terminal: the table drawn in place says "missing" for missing CPU evidence.
static void
test_signals_table_on_terminal (void **state)
{
    fixture_t *fixture = *state;
    const char *argv [] = { s_airlock (), "watch", "--signals", "demo-service", "--timeout", "120", "--config",
                            fixture->bus->config_path, NULL };
    int terminal = -1;
    pid_t pid = forkpty (&terminal, NULL, NULL, NULL);
    assert_true (pid >= 0);
    if (pid == 0) {
        int err = open (fixture->err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (err < 0)
            _exit (127);
        dup2 (err, STDERR_FILENO);
        execv (argv [0], (char *const *) argv);
        _exit (127);
    }
    fixture->watch_pid = pid;
    assert_int_equal (fcntl (terminal, F_SETFL, fcntl (terminal, F_GETFL) | O_NONBLOCK), 0);
    for (int attempt = 0; attempt < 100 && !s_file_has (fixture->err_path, "receiving events"); attempt++) {
        s_signal (fixture, "demo-service-canary", false, 0.9, 5000, 99, 9);
        zclock_sleep (200);
    }
    assert_true (s_file_has (fixture->err_path, "receiving events"));
    s_signal (fixture, "demo-service", true, 0.001, 100, 20, 0);
    Airlock__SoakSignal blind = s_healthy (false, 0.001, 100, 0);
    blind.no_evidence = AL_RULES_SIGNAL_CPU;
    s_send (fixture, "demo-service", &blind);
    //  Read what the terminal shows until the verdict of the second sample is on it.
    char screen [65536];
    size_t used = 0;
    for (int attempt = 0; attempt < 300; attempt++) {
        ssize_t got = read (terminal, screen + used, sizeof screen - 1 - used);
        if (got > 0)
            used += (size_t) got;
        screen [used] = 0;
        if (strstr (screen, "verdict: breach"))
            break;
        zclock_sleep (50);
    }
    kill (fixture->watch_pid, SIGINT);
    int code = s_watch_wait (fixture, 30000);
    close (terminal);
    char cpu_row [256], cpu_zero [256];
    snprintf (cpu_row, sizeof cpu_row, "  %-24s %12s %12s  %s", "cpu_percent", "missing", "80.00%",
              "missing: no cpu evidence");
    snprintf (cpu_zero, sizeof cpu_zero, "  %-24s %12s", "cpu_percent", "0.00%");
    if (code != 1 || !strstr (screen, "\033[K") || !strstr (screen, "BREACH demo-service in production")
    ||  !strstr (screen, cpu_row) || !strstr (screen, "verdict: breach missing_evidence: no cpu evidence")
    ||  strstr (screen, cpu_zero)) {
        fprintf (stderr, "unexpected screen:\n%s\n", screen);
        fail_msg ("exit %d, unexpected screen (above)", code);
    }
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_watch_succeeded, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_watch_rolled_back, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_watch_plain_lines, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_usage_and_timeout, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_watch_finished_answers_at_once, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_signals_against_thresholds, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_signals_within_thresholds, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_signals_saturation_and_missing_json, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_signals_missing_cpu, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_signals_table_on_terminal, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
