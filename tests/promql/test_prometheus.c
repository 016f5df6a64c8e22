/*  test_prometheus.c: test 7b, the Prometheus provider against the real thing.

    Two instances of pyservice.py (prometheus_client, 20% of /work answered with 500)
    run under the process driver, which writes file_sd.json; a real Prometheus
    (/usr/bin/prometheus, 1 s scrape interval, in a temporary directory, on a port the
    kernel picked) discovers them from that file; a load thread calls /work on both.
    al_promql_sample, with templated queries whose labels come from file_sd, must
    return real values for all six signals: traffic, the injected error ratio within
    a tolerance, latency p50/p99, CPU from process_cpu_seconds_total, memory as
    resident bytes against a stated 256 MiB limit. A query with an empty result is
    NO_DATA; one that does not parse, or answers two series, is an error. Then
    Prometheus is killed: every signal is an error naming the provider
    and the server, none is a number.

    The teardown stops everything started (Prometheus' process group, the load
    thread, the instances through the driver) whether or not an assertion failed.
*/
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include "deploy/al_driver.h"
#include "deploy/al_promql.h"
#include "../drivers/driver_test_util.h"
#include "prom_harness.h"

#define S_ERROR_RATE 0.2
#define S_MEMORY_LIMIT_BYTES "268435456"    // the stated limit memory_percent is a share of
#define S_DEADLINE_MS 60000

//  The templates a Python team would write (docs/monitor.md has the same ones).
#define S_SELECTOR "service=\"{{service}}\",environment=\"{{environment}}\",version=\"{{version}}\""
static const char *const s_queries [AL_PROMQL_SIGNALS] = {
    "sum(rate(http_requests_total{" S_SELECTOR "}[5s]))",
    "sum(rate(http_requests_total{" S_SELECTOR ",code=~\"5..\"}[5s]))"
    " / sum(rate(http_requests_total{" S_SELECTOR "}[5s]))",
    "1000 * histogram_quantile(0.5, sum by (le) (rate(http_request_duration_seconds_bucket{" S_SELECTOR "}[5s])))",
    "1000 * histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{" S_SELECTOR "}[5s])))",
    "100 * max(rate(process_cpu_seconds_total{" S_SELECTOR "}[5s]))",
    "100 * max(process_resident_memory_bytes{" S_SELECTOR "}) / " S_MEMORY_LIMIT_BYTES,
};

typedef struct {
    char *dir;
    char evidence [4096];
    char state_file [4096];
    char file_sd [4096];
    char script [4096];
    const char *command [7];
    al_driver_config_t config;
    al_driver_t *d;
    al_driver_instance_t instances [2];
    prom_harness_t *prometheus;
    load_t *load;
    al_promql_t *client;
} s_fixture_t;

static double
s_now_ms (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (double) now.tv_sec * 1e3 + now.tv_nsec / 1e6;
}

static int
s_setup (void **state)
{
    dt_become_subreaper ();
    s_fixture_t *self = calloc (1, sizeof (s_fixture_t));
    assert_non_null (self);
    *state = self;
    self->dir = dt_temp_dir ("al-prometheus");
    snprintf (self->evidence, sizeof self->evidence, "%s/evidence", self->dir);
    snprintf (self->state_file, sizeof self->state_file, "%s/drivers/checkout/staging/instances.json", self->dir);
    snprintf (self->file_sd, sizeof self->file_sd, "%s/drivers/checkout/staging/file_sd.json", self->dir);
    const char *source = getenv ("AIRLOCK_SOURCE_DIR");
    assert_non_null (source);
    snprintf (self->script, sizeof self->script, "%s/tests/promql/pyservice.py", source);
    assert_int_equal (access (self->script, R_OK), 0);
    //  Debian's interpreter, which has python3-prometheus-client (not a pyenv shim).
    self->command [0] = "/usr/bin/python3";
    self->command [1] = self->script;
    self->command [2] = "--port";
    self->command [3] = "{{port}}";
    self->command [4] = "--error-rate";
    self->command [5] = "0.2";
    self->config.command = self->command;
    self->config.evidence_dir = self->evidence;
    self->config.state_file = self->state_file;
    self->config.stop_timeout_ms = 5000;
    self->config.probe_timeout_ms = 2000;
    return 0;
}

static int
s_teardown (void **state)
{
    s_fixture_t *self = *state;
    load_stop (&self->load);
    prom_destroy (&self->prometheus);
    al_promql_destroy (&self->client);
    al_driver_destroy (&self->d);
    dt_reap_all (2000);
    dt_remove_tree (self->dir);
    free (self->dir);
    free (self);
    return 0;
}

static void
s_start_everything (s_fixture_t *self)
{
    char error [2048];
    self->d = al_driver_open ("process", &self->config, error, sizeof error);
    if (!self->d)
        fail_msg ("open: %s", error);
    for (int i = 0; i < 2; i++) {
        al_driver_spec_t spec = { .vars = { .service = "checkout", .version = "1.4.0", .artifact = "",
                                            .digest = "", .env = "staging" }, .instance = i };
        if (al_driver_start_instance (self->d, &spec, &self->instances [i], error, sizeof error) != AL_DRIVER_OK)
            fail_msg ("start instance %d: %s", i, error);
    }
    char prometheus_dir [4096];
    snprintf (prometheus_dir, sizeof prometheus_dir, "%s/prometheus", self->dir);
    if (mkdir (prometheus_dir, 0700) != 0)
        fail_msg ("mkdir %s", prometheus_dir);
    self->prometheus = prom_start (prometheus_dir, self->file_sd, 30000, error, sizeof error);
    if (!self->prometheus)
        fail_msg ("prometheus: %s", error);
    char urls [2][AL_DRIVER_ENDPOINT_SIZE + 8];
    const char *url_list [2];
    for (int i = 0; i < 2; i++) {
        snprintf (urls [i], sizeof urls [i], "%s/work", self->instances [i].endpoint);
        url_list [i] = urls [i];
    }
    self->load = load_start (url_list, 2, 2);
    assert_non_null (self->load);
    self->client = al_promql_new (prom_url (self->prometheus), 5000, error, sizeof error);
    if (!self->client)
        fail_msg ("al_promql_new: %s", error);
}

static void
test_prometheus_provider (void **state)
{
    s_fixture_t *self = *state;
    s_start_everything (self);
    al_promql_labels_t labels = { "checkout", "staging", "1.4.0", self->instances [0].id };
    double values [AL_PROMQL_SIGNALS];
    al_promql_status_t statuses [AL_PROMQL_SIGNALS];
    char error [1024] = "";

    //  Prometheus needs a few scrapes of both instances before rates exist: poll until
    //  every signal has a value (errors are not expected at any time while it runs).
    double deadline = s_now_ms () + S_DEADLINE_MS;
    bool complete = false;
    while (!complete && s_now_ms () < deadline) {
        int failed = al_promql_sample (self->client, s_queries, &labels, values, statuses, error, sizeof error);
        if (failed != 0)
            fail_msg ("sample failed while Prometheus runs: %s", error);
        complete = true;
        for (int i = 0; i < AL_PROMQL_SIGNALS; i++)
            complete = complete && statuses [i] == AL_PROMQL_OK;
        if (!complete)
            usleep (500 * 1000);
    }
    if (!complete)
        fail_msg ("no complete sample within %d ms (statuses %d %d %d %d %d %d)", S_DEADLINE_MS,
                  statuses [0], statuses [1], statuses [2], statuses [3], statuses [4], statuses [5]);
    //  Let both instances contribute a full rate window, then read the sample checked.
    usleep (5500 * 1000);
    assert_int_equal (al_promql_sample (self->client, s_queries, &labels, values, statuses, error, sizeof error), 0);
    for (int i = 0; i < AL_PROMQL_SIGNALS; i++) {
        print_message ("%-20s %g\n", al_promql_signal_name (i), values [i]);
        assert_int_equal (statuses [i], AL_PROMQL_OK);
        assert_true (isfinite (values [i]));
    }
    assert_true (values [0] > 1);                           // requests/s: the load is steady
    assert_true (fabs (values [1] - S_ERROR_RATE) < 0.07);  // the injected error rate
    assert_true (values [2] > 0 && values [3] >= values [2]);
    assert_true (values [3] < 1000);                        // /work sleeps 1..5 ms
    assert_true (values [4] > 0 && values [4] < 400);       // two busy interpreters
    assert_true (values [5] > 0 && values [5] < 100);       // a few tens of MB out of 256 MiB

    //  The labels came from file_sd: both targets are up, and {{instance}} selects one.
    double value = 0;
    char wanted [256];
    char *query = al_promql_expand ("count(up{service=\"{{service}}\",environment=\"{{environment}}\"} == 1)",
                                    &labels, error, sizeof error);
    assert_non_null (query);
    assert_int_equal (al_promql_query (self->client, query, &value, error, sizeof error), AL_PROMQL_OK);
    assert_true (value == 2);
    free (query);
    query = al_promql_expand ("sum(up{instance_id=\"{{instance}}\"})", &labels, error, sizeof error);
    assert_int_equal (al_promql_query (self->client, query, &value, error, sizeof error), AL_PROMQL_OK);
    assert_true (value == 1);
    free (query);

    //  An empty result is no data, never zero: another version has no series.
    al_promql_labels_t other = { "checkout", "staging", "9.9.9", NULL };
    const char *only_traffic [AL_PROMQL_SIGNALS] = { s_queries [0], NULL, NULL, NULL, NULL, NULL };
    assert_int_equal (al_promql_sample (self->client, only_traffic, &other, values, statuses, error, sizeof error), 0);
    assert_int_equal (statuses [0], AL_PROMQL_NO_DATA);
    assert_true (isnan (values [0]));
    value = 0;
    assert_int_equal (al_promql_query (self->client, "sum(http_requests_total{code=\"418\"})", &value,
                                       error, sizeof error), AL_PROMQL_NO_DATA);
    assert_true (isnan (value));

    //  The real server's refusals: a query that does not parse (with the API's own
    //  reason) and one that answers two series (which one would be the evidence?).
    snprintf (wanted, sizeof wanted, "prometheus %s: HTTP 400: bad_data: ", prom_url (self->prometheus));
    assert_int_equal (al_promql_query (self->client, "sum(up", &value, error, sizeof error), AL_PROMQL_ERROR);
    if (strncmp (error, wanted, strlen (wanted)) != 0)
        fail_msg ("\"%s\" does not start with \"%s\"", error, wanted);
    assert_int_equal (al_promql_query (self->client, "up{service=\"checkout\"}", &value, error, sizeof error),
                      AL_PROMQL_ERROR);
    assert_non_null (strstr (error, ": 2 series: aggregate the query to one"));
    assert_true (isnan (value));

    //  Outage: Prometheus dies mid-soak. Every signal is an error naming the provider
    //  and the server; no value is a number.
    prom_kill (self->prometheus);
    snprintf (wanted, sizeof wanted, "prometheus %s: requests_per_second: connection refused",
              prom_url (self->prometheus));
    error [0] = 0;
    assert_int_equal (al_promql_sample (self->client, s_queries, &labels, values, statuses, error, sizeof error),
                      AL_PROMQL_SIGNALS);
    assert_string_equal (error, wanted);
    for (int i = 0; i < AL_PROMQL_SIGNALS; i++) {
        assert_int_equal (statuses [i], AL_PROMQL_ERROR);
        assert_true (isnan (values [i]));
    }
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_prometheus_provider, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
