/*  test_prometheus_soak.c: the soak judged through the Prometheus provider, end to end.

    The broker, deploy-manager and the monitor (`airlock agent monitor --interval-ms
    250`) as real processes; demo-service releases of "promdemo" under the process
    driver, which lists its instances in file_sd.json with the labels service,
    environment, version and instance_id; a real /usr/bin/prometheus (1 s scrape
    interval, kernel-chosen port, in the fixture's directory, dying with the test)
    discovering them from that file; background traffic on every instance.
    services.yaml says `signals: {source: prometheus}` with PromQL over the standard
    names, templated with {{service}} {{environment}} {{version}}: the monitor never
    scrapes the instances, every sample is the provider's. Shown here, in order:
      - a healthy release soaks on the provider's samples (complete samples of its
        version are in the audit log) and SUCCEEDS; its receipt says the signals came
        from the Prometheus provider;
      - a release answering half of /work with 500 is rolled back by
        error_rate_increase, on samples whose error ratio Prometheus computed, and the
        failed release's samples never become a baseline;
      - Prometheus killed in the middle of a soak: the release is rolled back by
        missing_evidence after the grace period, and the trigger's detail names the
        provider and its server ("prometheus http://127.0.0.1:PORT: ...").
    The soak is 15 s: Prometheus (2.42) applies file_sd changes to its scrapers at most
    every 5 s, and rate() needs two scrapes, so a new version has data 5 to 8 s after
    its instances start. Everything started is stopped in the group teardown, also
    after a failure.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include "agents_test_util.h"
#include "deploy_test_util.h"
#include "../promql/prom_harness.h"
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_SERVICE "promdemo"
#define S_SELECTOR "service=\"{{service}}\",environment=\"{{environment}}\",version=\"{{version}}\""

typedef struct {
    atu_fixture_t *agents;
    prom_harness_t *prometheus;
    dtu_traffic_t *traffic;
    char file_sd [800];
} s_fixture_t;

static void
s_mkdirs (const char *path)
{
    char command [1024];
    snprintf (command, sizeof command, "mkdir -p '%s'", path);
    assert_int_equal (system (command), 0);
}

static int
s_setup (void **state)
{
    s_fixture_t *self = calloc (1, sizeof *self);
    assert_non_null (self);
    *state = self;
    self->agents = atu_new ();
    harness_t *h = self->agents->harness;
    //  Prometheus first: services.yaml names its URL. The driver's directory and an
    //  empty target list exist before the first release, so file_sd has a file to watch.
    char path [700];
    snprintf (path, sizeof path, "%s/drivers/%s/staging", self->agents->deploy_state, S_SERVICE);
    s_mkdirs (path);
    snprintf (self->file_sd, sizeof self->file_sd, "%s/file_sd.json", path);
    FILE *file = fopen (self->file_sd, "w");
    assert_non_null (file);
    fputs ("[]\n", file);
    fclose (file);
    snprintf (path, sizeof path, "%s/prometheus", h->dir);
    s_mkdirs (path);
    char error [2048];
    self->prometheus = prom_start (path, self->file_sd, 30000, error, sizeof error);
    if (!self->prometheus)
        fail_msg ("prometheus: %s", error);

    file = fopen (self->agents->services_path, "w");
    assert_non_null (file);
    //  The queries a team would write for a Prometheus it runs (docs/drivers.md); the
    //  labels are file_sd's. Memory against a stated 256 MiB limit. rate() over 5 s:
    //  five scrapes at 1 s. "or vector(0)": a release that never answered a 5xx has no
    //  5xx series, and without it the error ratio would be no data (missing evidence)
    //  for every healthy release.
    fprintf (file,
             "version: 1\nservices:\n  " S_SERVICE ":\n    driver: process\n    instances: 2\n"
             "    strategy: rolling\n    soak_ms: 15000\n    probe_interval_ms: 100\n    ready_timeout_ms: 10000\n"
             "    stop_timeout_ms: 3000\n    command: [\"{{artifact}}\"]\n"
             "    signals:\n      source: prometheus\n      prometheus:\n        url: %s\n        timeout: 2s\n"
             "        queries:\n"
             "          requests_per_second: 'sum(rate(http_requests_total{" S_SELECTOR "}[5s]))'\n"
             "          error_ratio: '(sum(rate(http_requests_total{" S_SELECTOR ",code=~\"5..\"}[5s])) or vector(0))"
             " / sum(rate(http_requests_total{" S_SELECTOR "}[5s]))'\n"
             "          latency_p50_ms: '1000 * histogram_quantile(0.5, sum by (le) "
             "(rate(http_request_duration_seconds_bucket{" S_SELECTOR "}[5s])))'\n"
             "          latency_p99_ms: '1000 * histogram_quantile(0.99, sum by (le) "
             "(rate(http_request_duration_seconds_bucket{" S_SELECTOR "}[5s])))'\n"
             "          cpu_percent: '100 * max(rate(process_cpu_seconds_total{" S_SELECTOR "}[5s]))'\n"
             "          memory_percent: '100 * max(process_resident_memory_bytes{" S_SELECTOR "}) / 268435456'\n",
             prom_url (self->prometheus));
    fclose (file);
    atu_start (self->agents, 250);
    self->traffic = dtu_traffic_start (self->agents->deploy_state, S_SERVICE, "staging", 40);
    return 0;
}

static int
s_teardown (void **state)
{
    s_fixture_t *self = *state;
    if (!self)
        return 0;
    dtu_traffic_stop (&self->traffic);
    prom_destroy (&self->prometheus);
    atu_destroy (&self->agents);
    free (self);
    return 0;
}

//  The receipt's signals source, and the version running on both instances afterwards.
static void
s_check_after (s_fixture_t *self, json_t *receipt, const char *running)
{
    const char *source = json_string_value (json_object_get (json_object_get (receipt, "signals"), "source"));
    if (!source || !strstr (source, "Prometheus provider"))
        fail_msg ("receipt signals.source: %s", source? source: "(none)");
    int with_version = 0, total = 0;
    dtu_count (self->agents->deploy_state, S_SERVICE, "staging", running, &with_version, &total);
    assert_int_equal (with_version, 2);
    assert_int_equal (total, 2);
}

//  deployment_id's stored baseline: samples with traffic and mean error ratio.
static void
s_baseline (s_fixture_t *self, const char *deployment_id, int *samples, double *error_ratio)
{
    char path [700];
    snprintf (path, sizeof path, "%s/monitor/baselines/%s.json", self->agents->harness->dir, deployment_id);
    json_t *baseline = json_load_file (path, 0, NULL);
    assert_non_null (baseline);
    *samples = (int) json_integer_value (json_object_get (baseline, "samples_with_traffic"));
    *error_ratio = json_real_value (json_object_get (baseline, "error_ratio"));
    json_decref (baseline);
}

static void
test_healthy_release_soaks_on_prometheus (void **state)
{
    s_fixture_t *self = *state;
    json_t *receipt = atu_deploy (self->agents, S_SERVICE, "p-1", "v1", NULL, NULL, NULL);
    atu_expect (receipt, "succeeded", "");
    s_check_after (self, receipt, "v1");
    json_decref (receipt);
    //  The soak was judged on the provider's numbers: samples of v1, from Prometheus,
    //  with traffic and every signal, were published under p-1 (the monitor never
    //  scraped: it has no other source for this service).
    int complete = atu_complete_samples (self->agents, "p-1", "prometheus", "v1", NULL, NULL);
    if (complete < 4)
        fail_msg ("%d complete Prometheus sample(s) of v1 during p-1's soak", complete);
    assert_int_equal (harness_count_rows (self->agents->harness, "RollbackTrigger", NULL, NULL), 0);
}

static void
test_errors_rolled_back_through_prometheus (void **state)
{
    s_fixture_t *self = *state;
    json_t *receipt = atu_deploy (self->agents, S_SERVICE, "p-2", "v2", "--error-rate 0.5", NULL, NULL);
    atu_expect (receipt, "rolled_back", "error_rate_increase");
    //  The samples that broke the rule are the provider's: PromQL's error ratio.
    json_t *samples = json_object_get (json_object_get (receipt, "rollback_trigger"), "samples");
    json_t *last = json_array_get (samples, json_array_size (samples) - 1);
    double ratio = json_real_value (json_object_get (last, "error_ratio"));
    if (ratio < 0.2 || ratio > 0.8)
        fail_msg ("the breaching sample's error ratio is %.3f, not about 0.5", ratio);
    assert_true (json_real_value (json_object_get (last, "requests_per_second")) > 0);
    s_check_after (self, receipt, "v1");
    json_decref (receipt);
    //  The baseline stored for p-2 is v1's, from Prometheus: traffic, no errors. (The
    //  monitor stores it at p-2's rollout and again at the restore's rollout; the second
    //  is taken after p-2 failed, and p-2's own 50% must not be in it.)
    int with_traffic = 0;
    double error_ratio = 1;
    s_baseline (self, "p-2", &with_traffic, &error_ratio);
    assert_true (with_traffic >= 1);
    assert_true (error_ratio < 0.01);
}

static void
s_kill_prometheus (atu_fixture_t *agents, void *arg)
{
    (void) agents;
    prom_kill ((prom_harness_t *) arg);
}

static void
test_prometheus_outage_rolls_back (void **state)
{
    s_fixture_t *self = *state;
    char url [128];
    snprintf (url, sizeof url, "prometheus %s: ", prom_url (self->prometheus));
    json_t *receipt = atu_deploy (self->agents, S_SERVICE, "p-3", "v3", NULL, s_kill_prometheus, self->prometheus);
    atu_expect (receipt, "rolled_back", "missing_evidence");
    const char *detail = json_string_value (json_object_get (json_object_get (receipt, "rollback_trigger"), "detail"));
    if (!detail || !strstr (detail, url))
        fail_msg ("the trigger's detail does not name %s: %s", url, detail? detail: "(none)");
    //  The samples say why: no instance up by the provider's account.
    json_t *samples = json_object_get (json_object_get (receipt, "rollback_trigger"), "samples");
    json_t *last = json_array_get (samples, json_array_size (samples) - 1);
    assert_int_equal (json_integer_value (json_object_get (last, "instances_up")), 0);
    s_check_after (self, receipt, "v1");
    json_decref (receipt);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_healthy_release_soaks_on_prometheus),
        cmocka_unit_test (test_errors_rolled_back_through_prometheus),
        cmocka_unit_test (test_prometheus_outage_rolls_back),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
