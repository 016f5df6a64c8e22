/*  test_telemetry.c: the operator metrics: the registry's exposition, the metrics
    section of airlock.yaml, and the broker's GET /metrics as a real process.

    Shown here:
      - al_telemetry renders HELP/TYPE lines, escaped label values, cumulative histogram
        buckets with +Inf = _count, and `promtool check metrics` accepts the output;
      - airlock.yaml's metrics section: addresses kept, an unset one is NULL, a bad one is
        "airlock.yaml:LINE:COL: metrics.broker: ..." and no configuration;
      - the broker with `metrics: {broker: 127.0.0.1:0}` writes the port it bound to
        STATE/run/metrics-broker.address, serves /metrics (404 elsewhere) that promtool
        accepts, and the values move: a DeployRequest from qa (not permitted) makes
        airlock_broker_messages_denied_total{type="DeployRequest",reason="DENY_NOT_PERMITTED"}
        1, an accepted Register counts, the commit histograms count, and the connected
        qa agent shows in airlock_broker_connected_agents{role="qa"}.
*/
#include "harness.h"
#include "base/al_config.h"
#include "broker/al_telemetry.h"
#include "broker/al_telemetry_server.h"
#include "broker/al_broker_int.h"
#include <curl/curl.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

static const harness_identity_t s_identities [] = {
    { "orchestrator",   "orchestrator" },
    { "qa",             "qa" },
    { "deploy-manager", "deploy-manager" },
};
#define S_IDENTITY_COUNT (sizeof s_identities / sizeof s_identities [0])
#define S_DEADLINE_MS 30000

typedef struct {
    char *data;
    size_t size;
} s_buffer_t;

static size_t
s_collect (char *data, size_t size, size_t count, void *arg)
{
    s_buffer_t *buffer = (s_buffer_t *) arg;
    char *grown = realloc (buffer->data, buffer->size + size * count + 1);
    if (!grown)
        return 0;
    memcpy (grown + buffer->size, data, size * count);
    buffer->data = grown;
    buffer->size += size * count;
    buffer->data [buffer->size] = '\0';
    return size * count;
}

//  GET http://address/path: the body (caller frees) and the status in *status; NULL on failure.
static char *
s_get (const char *address, const char *path, long *status)
{
    char url [300];
    snprintf (url, sizeof url, "http://%s%s", address, path);
    s_buffer_t buffer = { calloc (1, 1), 0 };
    CURL *curl = curl_easy_init ();
    assert_non_null (curl);
    curl_easy_setopt (curl, CURLOPT_URL, url);
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, s_collect);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, &buffer);
    curl_easy_setopt (curl, CURLOPT_TIMEOUT, 20L);
    CURLcode code = curl_easy_perform (curl);
    *status = 0;
    curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, status);
    curl_easy_cleanup (curl);
    if (code != CURLE_OK) {
        free (buffer.data);
        return NULL;
    }
    return buffer.data;
}

//  `promtool check metrics` on text; its exit status (its findings go to stderr).
static int
s_promtool (const char *text, const char *dir)
{
    char path [400];
    snprintf (path, sizeof path, "%s/scrape.prom", dir);
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fputs (text, file);
    fclose (file);
    char command [600];
    snprintf (command, sizeof command, "promtool check metrics < '%s'", path);
    int rc = system (command);
    return WIFEXITED (rc)? WEXITSTATUS (rc): -1;
}

//  The value of the sample whose name and labels are exactly `series`; NAN if absent.
static double
s_sample (const char *text, const char *series)
{
    size_t length = strlen (series);
    for (const char *line = text; line && *line; line = strchr (line, '\n'), line = line? line + 1: NULL) {
        if (strncmp (line, series, length) == 0 && line [length] == ' ')
            return strtod (line + length + 1, NULL);
    }
    return NAN;
}

//  Scrape until series is at least minimum; returns the last scrape (caller frees).
static char *
s_wait_sample (const char *address, const char *series, double minimum)
{
    int64_t deadline = zclock_mono () + S_DEADLINE_MS;
    char *text = NULL;
    while (true) {
        free (text);
        long status = 0;
        text = s_get (address, "/metrics", &status);
        if (text && status == 200 && s_sample (text, series) >= minimum)
            return text;
        if (zclock_mono () > deadline)
            break;
        zclock_sleep (50);
    }
    fprintf (stderr, "never saw %s >= %g in:\n%s\n", series, minimum, text? text: "(no answer)");
    return text;
}

static void
test_render (void **state)
{
    (void) state;
    al_telemetry_t *metrics = al_telemetry_new ();
    assert_non_null (metrics);
    al_telemetry_series_t *denied = al_telemetry_series (metrics, AL_TELEMETRY_COUNTER, "t_denied_total", "Denied\nby type",
                                                         "type", "Deploy\"Request\\", "reason", "line\nbreak");
    al_telemetry_add (denied, 2);
    //  The same labels find the same series.
    assert_ptr_equal (denied, al_telemetry_series (metrics, AL_TELEMETRY_COUNTER, "t_denied_total", NULL,
                                                   "type", "Deploy\"Request\\", "reason", "line\nbreak"));
    al_telemetry_add (al_telemetry_series (metrics, AL_TELEMETRY_COUNTER, "t_denied_total", NULL,
                                           "type", "Other", "reason", "x"), 1);
    al_telemetry_series_t *depth = al_telemetry_series (metrics, AL_TELEMETRY_GAUGE, "t_depth", "Depth", NULL, NULL, NULL, NULL);
    al_telemetry_set (depth, 7.5);
    al_telemetry_series_t *age = al_telemetry_series (metrics, AL_TELEMETRY_AGE, "t_age_seconds", "Age", NULL, NULL, NULL, NULL);
    assert_true (isnan (al_telemetry_value (age)));
    al_telemetry_touch (age);
    assert_true (al_telemetry_value (age) >= 0 && al_telemetry_value (age) < 60);
    al_telemetry_series_t *latency = al_telemetry_series (metrics, AL_TELEMETRY_HISTOGRAM, "t_latency_seconds", "Latency",
                                                          NULL, NULL, NULL, NULL);
    al_telemetry_observe (latency, 0.0002);
    al_telemetry_observe (latency, 0.003);
    al_telemetry_observe (latency, 99);
    al_telemetry_series_t *sizes = al_telemetry_series (metrics, AL_TELEMETRY_HISTOGRAM, "t_batch_size", "Sizes",
                                                        NULL, NULL, NULL, NULL);
    al_telemetry_observe (sizes, 3);

    char *text = al_telemetry_render (metrics);
    assert_non_null (text);
    assert_non_null (strstr (text, "# HELP t_denied_total Denied\\nby type\n# TYPE t_denied_total counter\n"));
    assert_non_null (strstr (text, "t_denied_total{type=\"Deploy\\\"Request\\\\\",reason=\"line\\nbreak\"} 2\n"));
    assert_true (s_sample (text, "t_denied_total{type=\"Other\",reason=\"x\"}") == 1);
    assert_true (s_sample (text, "t_depth") == 7.5);
    assert_non_null (strstr (text, "# TYPE t_age_seconds gauge\n"));
    assert_true (s_sample (text, "t_latency_seconds_bucket{le=\"0.0001\"}") == 0);
    assert_true (s_sample (text, "t_latency_seconds_bucket{le=\"0.00025\"}") == 1);
    assert_true (s_sample (text, "t_latency_seconds_bucket{le=\"0.005\"}") == 2);
    assert_true (s_sample (text, "t_latency_seconds_bucket{le=\"10\"}") == 2);
    assert_true (s_sample (text, "t_latency_seconds_bucket{le=\"+Inf\"}") == 3);
    assert_true (s_sample (text, "t_latency_seconds_count") == 3);
    assert_true (fabs (s_sample (text, "t_latency_seconds_sum") - 99.0032) < 1e-9);
    assert_true (s_sample (text, "t_batch_size_bucket{le=\"4\"}") == 1);
    assert_true (s_sample (text, "t_batch_size_bucket{le=\"1\"}") == 0);
    char dir [] = "/tmp/al-telemetry-XXXXXX";
    assert_non_null (mkdtemp (dir));
    assert_int_equal (s_promtool (text, dir), 0);
    free (text);
    char command [100];
    snprintf (command, sizeof command, "rm -rf '%s'", dir);
    assert_int_equal (system (command), 0);
    al_telemetry_destroy (&metrics);
    assert_null (metrics);
}

static void
s_write (const char *path, const char *text)
{
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fputs (text, file);
    fclose (file);
}

//  al_broker_metrics_count reuses the series it resolved (a cache per thread): every
//  outcome still lands in its own series, also once more outcomes were counted than
//  the cache holds, and a type given in a reused buffer is not taken for the one before.
static double
s_counted (const char *type, const char *reason)
{
    al_telemetry_t *metrics = al_telemetry_process ();
    al_telemetry_series_t *series = reason
        ? al_telemetry_series (metrics, AL_TELEMETRY_COUNTER, "airlock_broker_messages_denied_total", NULL,
                               "type", type, "reason", reason)
        : al_telemetry_series (metrics, AL_TELEMETRY_COUNTER, "airlock_broker_messages_accepted_total", NULL,
                               "type", type, NULL, NULL);
    return al_telemetry_value (series);
}

static void
test_metrics_count (void **state)
{
    (void) state;
    char type [64];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 40; i++) {
            snprintf (type, sizeof type, "CountTest%d", i);      // one buffer, many types
            al_broker_metrics_count (type, AL_STORE_ACCEPTED, AIRLOCK__DENY_CODE__DENY_NOT_PERMITTED);
        }
        snprintf (type, sizeof type, "CountTestDenied");
        al_broker_metrics_count (type, AL_STORE_DENIED, AIRLOCK__DENY_CODE__DENY_NOT_PERMITTED);
        al_broker_metrics_count (type, AL_STORE_DENIED, AIRLOCK__DENY_CODE__DENY_NOT_PERMITTED);
        al_broker_metrics_count (type, AL_STORE_DENIED, AIRLOCK__DENY_CODE__DENY_RATE_LIMITED);
        al_broker_metrics_count ("CountTest7", AL_STORE_ACCEPTED, AIRLOCK__DENY_CODE__DENY_POLICY);
    }
    for (int i = 0; i < 40; i++) {
        snprintf (type, sizeof type, "CountTest%d", i);
        assert_true (s_counted (type, NULL) == (i == 7? 6: 3));
    }
    assert_true (s_counted ("CountTestDenied", "DENY_NOT_PERMITTED") == 6);
    assert_true (s_counted ("CountTestDenied", "DENY_RATE_LIMITED") == 3);
    assert_true (s_counted ("CountTestDenied", NULL) == 0);
}

static void
test_config (void **state)
{
    (void) state;
    char dir [] = "/tmp/al-telemetry-XXXXXX";
    assert_non_null (mkdtemp (dir));
    char path [300], error [512] = "";
    snprintf (path, sizeof path, "%s/airlock.yaml", dir);
    s_write (path, "state_dir: /tmp/x\nmetrics:\n  broker: 127.0.0.1:9464\n  monitor: \"127.0.0.1:0\"\n");
    al_config_t *config = al_config_load (path, error, sizeof error);
    assert_non_null (config);
    assert_string_equal (al_config_metrics_address (config, "broker"), "127.0.0.1:9464");
    assert_string_equal (al_config_metrics_address (config, "monitor"), "127.0.0.1:0");
    assert_null (al_config_metrics_address (config, "qa"));
    char *port_file = al_config_metrics_port_file (config, "monitor");
    assert_string_equal (port_file, "/tmp/x/run/metrics-monitor.address");
    free (port_file);
    //  Saved and loaded again: the addresses set survive, the unset stay unset.
    assert_int_equal (al_config_save (config, path, error, sizeof error), 0);
    al_config_destroy (&config);
    config = al_config_load (path, error, sizeof error);
    assert_non_null (config);
    assert_string_equal (al_config_metrics_address (config, "broker"), "127.0.0.1:9464");
    assert_null (al_config_metrics_address (config, "notifier"));
    al_config_destroy (&config);

    s_write (path, "state_dir: /tmp/x\nmetrics:\n  broker: localhost:9464\n");
    assert_null (al_config_load (path, error, sizeof error));
    assert_non_null (strstr (error, "airlock.yaml:3:11: metrics.broker: 'localhost:9464': the host must be a numeric IPv4"));
    s_write (path, "state_dir: /tmp/x\nmetrics:\n  qa: 127.0.0.1:70000\n");
    assert_null (al_config_load (path, error, sizeof error));
    assert_non_null (strstr (error, "airlock.yaml:3:7: metrics.qa: '127.0.0.1:70000': the port must be a number"));
    s_write (path, "state_dir: /tmp/x\nmetrics:\n  brokr: 127.0.0.1:1\n");
    assert_null (al_config_load (path, error, sizeof error));
    assert_non_null (strstr (error, "unknown key 'metrics.brokr'"));
    char command [100];
    snprintf (command, sizeof command, "rm -rf '%s'", dir);
    assert_int_equal (system (command), 0);
}

//  What the broker test started, stopped by s_teardown also when an assertion failed.
typedef struct {
    harness_t *fx;
    zsock_t *qa;
} s_fixture_t;

static int
s_setup (void **state)
{
    s_fixture_t *fixture = calloc (1, sizeof *fixture);
    assert_non_null (fixture);
    *state = fixture;
    return 0;
}

static int
s_teardown (void **state)
{
    s_fixture_t *fixture = *state;
    zsock_destroy (&fixture->qa);
    harness_destroy (&fixture->fx);      // stops the broker if it still runs
    free (fixture);
    return 0;
}

static void
test_broker_endpoint (void **state)
{
    s_fixture_t *fixture = *state;
    harness_t *fx = fixture->fx = harness_new (NULL, s_identities, S_IDENTITY_COUNT);
    FILE *file = fopen (fx->config_path, "a");
    assert_non_null (file);
    fprintf (file, "metrics:\n  broker: 127.0.0.1:0\n");
    fclose (file);
    assert_int_equal (harness_broker_start (fx), 0);

    //  The port the kernel chose, as the broker wrote it.
    char path [400], address [64] = "";
    snprintf (path, sizeof path, "%s/run/metrics-broker.address", fx->dir);
    file = fopen (path, "r");
    assert_non_null (file);
    assert_non_null (fgets (address, sizeof address, file));
    fclose (file);
    address [strcspn (address, "\n")] = '\0';
    assert_int_equal (strncmp (address, "127.0.0.1:", 10), 0);
    assert_true (atoi (address + 10) > 0);

    long status = 0;
    char *text = s_get (address, "/nothing", &status);
    assert_non_null (text);
    assert_int_equal (status, 404);
    free (text);

    text = s_wait_sample (address, "airlock_broker_connected_agents{role=\"qa\"}", 0);
    assert_non_null (text);
    double denied_before = s_sample (text, "airlock_broker_messages_denied_total{type=\"DeployRequest\",reason=\"DENY_NOT_PERMITTED\"}");
    assert_true (isnan (denied_before));
    assert_true (s_sample (text, "airlock_broker_connected_agents{role=\"qa\"}") == 0);
    assert_true (s_sample (text, "airlock_broker_checkpoint_age_seconds") >= 0);
    assert_true (s_sample (text, "airlock_broker_approvals_pending") == 0);
    free (text);

    zsock_t *qa = fixture->qa = harness_client (fx, "qa", NULL);
    harness_register (qa, "qa-reg", false);
    harness_deploy_request (qa, "not-yours", AIRLOCK__ENVIRONMENT__ENV_STAGING);
    bool answered = false;
    int64_t deadline = zclock_mono () + S_DEADLINE_MS;
    while (!answered && zclock_mono () < deadline) {
        al_envelope_t *reply = harness_recv (qa, 1000);
        if (reply && reply->body_case == AIRLOCK__ENVELOPE__BODY_DENIED)
            answered = strcmp (reply->denied->denied_message_id, "not-yours") == 0;
        al_codec_free (&reply);
    }
    assert_true (answered);

    text = s_wait_sample (address, "airlock_broker_messages_denied_total{type=\"DeployRequest\",reason=\"DENY_NOT_PERMITTED\"}", 1);
    assert_non_null (text);
    assert_true (s_sample (text, "airlock_broker_messages_denied_total{type=\"DeployRequest\",reason=\"DENY_NOT_PERMITTED\"}") == 1);
    assert_true (s_sample (text, "airlock_broker_messages_accepted_total{type=\"Register\"}") >= 1);
    assert_true (s_sample (text, "airlock_broker_commit_batch_size_count") >= 1);
    assert_true (s_sample (text, "airlock_broker_commit_latency_seconds_count") >= 1);
    assert_true (s_sample (text, "airlock_broker_fsync_seconds_count") >= 2);   // the start-up rows too
    free (text);
    //  The connection shows at the next tick.
    text = s_wait_sample (address, "airlock_broker_connected_agents{role=\"qa\"}", 1);
    assert_true (s_sample (text, "airlock_broker_connected_agents{role=\"qa\"}") == 1);
    assert_int_equal (s_promtool (text, fx->dir), 0);
    free (text);

    zsock_destroy (&fixture->qa);
    assert_int_equal (harness_broker_signal (fx, SIGTERM), 0);
    //  Stopped: the address file is gone with the endpoint.
    assert_int_equal (access (path, F_OK), -1);
}

int
main (void)
{
    curl_global_init (CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_render),
        cmocka_unit_test (test_config),
        cmocka_unit_test (test_metrics_count),
        cmocka_unit_test_setup_teardown (test_broker_endpoint, s_setup, s_teardown),
    };
    int rc = cmocka_run_group_tests (tests, NULL, NULL);
    curl_global_cleanup ();
    return rc;
}
