/*  bench_promql.c: from a breach to its detection through the Prometheus provider.

    Two pyservice.py instances (tests/promql) run under the process driver, which
    lists them in file_sd.json; a real Prometheus scrapes them every second; a load
    thread keeps /work busy. The soak's view is al_promql_sample polled every 250 ms
    (the monitor's fastest interval) with the Python queries of docs/monitor.md over
    a [5s] rate window. For each run, once the error ratio reads healthy, errors are
    switched on in every instance (POST /fault?error_rate=0.5) and the time until the
    sample's error ratio passes the threshold (5%) is measured; errors are then
    switched off and the next run waits for a healthy reading again.

    Printed: "RESULT promql.breach_to_detect_p50_ms" and "_p95_ms" over RUNS runs
    (argv[1], default 5, at least 5), with the scrape and poll intervals they are
    bounded by (detection needs a scrape after the breach, then a poll after that:
    at most ~ scrape + poll + query time). The lead relates it to rollback start.
    Not a ctest test: it times things.
*/
#include "deploy/al_driver.h"
#include "deploy/al_promql.h"
#include "prom_harness.h"
#include <curl/curl.h>
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define S_SCRAPE_MS 1000            // prom_harness' scrape interval
#define S_POLL_MS 250
#define S_THRESHOLD 0.05
#define S_FAULT_RATE "0.5"
#define S_RUN_DEADLINE_MS 30000

#define S_SELECTOR "service=\"{{service}}\",environment=\"{{environment}}\",version=\"{{version}}\""
//  Healthy must read 0, not "no data": the numerator falls back to 0 while traffic flows.
static const char *const s_queries [AL_PROMQL_SIGNALS] = {
    "sum(rate(http_requests_total{" S_SELECTOR "}[5s]))",
    "(sum(rate(http_requests_total{" S_SELECTOR ",code=~\"5..\"}[5s])) or vector(0))"
    " / sum(rate(http_requests_total{" S_SELECTOR "}[5s]))",
    "1000 * histogram_quantile(0.5, sum by (le) (rate(http_request_duration_seconds_bucket{" S_SELECTOR "}[5s])))",
    "1000 * histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{" S_SELECTOR "}[5s])))",
    "100 * max(rate(process_cpu_seconds_total{" S_SELECTOR "}[5s]))",
    "100 * max(process_resident_memory_bytes{" S_SELECTOR "}) / 268435456",
};

static double
s_now_ms (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (double) now.tv_sec * 1e3 + now.tv_nsec / 1e6;
}

static void
s_sleep_until (double when_ms)
{
    double left = when_ms - s_now_ms ();
    if (left > 0)
        usleep ((useconds_t) (left * 1000));
}

static int
s_remove (const char *path, const struct stat *info, int flag, struct FTW *ftw)
{
    (void) info; (void) flag; (void) ftw;
    remove (path);
    return 0;
}

static int
s_compare (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

//  Nearest-rank quantile of sorted values.
static double
s_quantile (const double *sorted, int count, double q)
{
    int rank = (int) ceil (q * count);
    return sorted [rank < 1 ? 0 : rank - 1];
}

static size_t
s_discard (char *data, size_t size, size_t count, void *arg)
{
    (void) data; (void) arg;
    return size * count;
}

//  POST /fault?error_rate=rate to an instance. 0 when it answered 200.
static int
s_set_fault (const char *endpoint, const char *rate)
{
    char url [AL_DRIVER_ENDPOINT_SIZE + 64];
    snprintf (url, sizeof url, "%s/fault?error_rate=%s", endpoint, rate);
    CURL *easy = curl_easy_init ();
    if (!easy)
        return -1;
    long status = 0;
    curl_easy_setopt (easy, CURLOPT_URL, url);
    curl_easy_setopt (easy, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt (easy, CURLOPT_TIMEOUT_MS, 2000L);
    curl_easy_setopt (easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (easy, CURLOPT_WRITEFUNCTION, s_discard);
    CURLcode code = curl_easy_perform (easy);
    curl_easy_getinfo (easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup (easy);
    return code == CURLE_OK && status == 200 ? 0 : -1;
}

//  Poll the error ratio every S_POLL_MS until breached (or healthy, !breached) or the
//  deadline. Returns the time of the first matching reading, or -1.
static double
s_wait_for (al_promql_t *client, const al_promql_labels_t *labels, bool breached, double deadline_ms)
{
    double values [AL_PROMQL_SIGNALS];
    al_promql_status_t statuses [AL_PROMQL_SIGNALS];
    char error [1024];
    for (double tick = s_now_ms (); tick < deadline_ms; tick += S_POLL_MS) {
        s_sleep_until (tick);
        al_promql_sample (client, s_queries, labels, values, statuses, error, sizeof error);
        if (statuses [1] != AL_PROMQL_OK)
            continue;               // no evidence is neither healthy nor a breach
        if (breached ? values [1] > S_THRESHOLD : values [1] < S_THRESHOLD / 5)
            return s_now_ms ();
    }
    return -1;
}

int
main (int argc, char **argv)
{
    int runs = argc > 1 ? atoi (argv [1]) : 5;
    if (runs < 5)
        runs = 5;
    int rc = 1;
    char error [2048];
    char dir [] = "/tmp/al-bench-promql-XXXXXX";
    char state_file [256], file_sd [256], evidence [256], prometheus_dir [256], script [4096];
    al_driver_t *driver = NULL;
    prom_harness_t *prometheus = NULL;
    load_t *load = NULL;
    al_promql_t *client = NULL;
    al_driver_instance_t instances [2];
    double *detected = calloc ((size_t) runs, sizeof (double));
    curl_global_init (CURL_GLOBAL_DEFAULT);
    if (!detected || !mkdtemp (dir)) {
        fprintf (stderr, "bench_promql: %s\n", strerror (errno));
        free (detected);
        return 1;
    }
    snprintf (state_file, sizeof state_file, "%s/drivers/bench/staging/instances.json", dir);
    snprintf (file_sd, sizeof file_sd, "%s/drivers/bench/staging/file_sd.json", dir);
    snprintf (evidence, sizeof evidence, "%s/evidence", dir);
    snprintf (prometheus_dir, sizeof prometheus_dir, "%s/prometheus", dir);
    snprintf (script, sizeof script, "%s/tests/promql/pyservice.py", AIRLOCK_SOURCE_DIR);
    const char *command [] = { "/usr/bin/python3", script, "--port", "{{port}}", NULL };
    al_driver_config_t config = { .evidence_dir = evidence, .command = command, .state_file = state_file,
                                  .stop_timeout_ms = 5000, .probe_timeout_ms = 2000 };
    driver = al_driver_open ("process", &config, error, sizeof error);
    if (!driver) {
        fprintf (stderr, "bench_promql: driver: %s\n", error);
        goto cleanup;
    }
    for (int i = 0; i < 2; i++) {
        al_driver_spec_t spec = { .vars = { .service = "bench", .version = "1.0.0", .artifact = "",
                                            .digest = "", .env = "staging" }, .instance = i };
        if (al_driver_start_instance (driver, &spec, &instances [i], error, sizeof error) != AL_DRIVER_OK) {
            fprintf (stderr, "bench_promql: start: %s\n", error);
            goto cleanup;
        }
    }
    if (mkdir (prometheus_dir, 0700) != 0
    ||  !(prometheus = prom_start (prometheus_dir, file_sd, 60000, error, sizeof error))) {
        fprintf (stderr, "bench_promql: prometheus: %s\n", error);
        goto cleanup;
    }
    char urls [2][AL_DRIVER_ENDPOINT_SIZE + 8];
    const char *url_list [2];
    for (int i = 0; i < 2; i++) {
        snprintf (urls [i], sizeof urls [i], "%s/work", instances [i].endpoint);
        url_list [i] = urls [i];
    }
    load = load_start (url_list, 2, 2);
    client = al_promql_new (prom_url (prometheus), 2000, error, sizeof error);
    if (!load || !client) {
        fprintf (stderr, "bench_promql: %s\n", load ? error : "load thread failed");
        goto cleanup;
    }
    al_promql_labels_t labels = { "bench", "staging", "1.0.0", NULL };
    printf ("bench_promql: prometheus %s, scrape %d ms, poll %d ms, threshold error_ratio > %g, %d runs\n",
            prom_url (prometheus), S_SCRAPE_MS, S_POLL_MS, S_THRESHOLD, runs);
    for (int run = 0; run < runs; run++) {
        if (s_wait_for (client, &labels, false, s_now_ms () + S_RUN_DEADLINE_MS) < 0) {
            fprintf (stderr, "bench_promql: run %d: no healthy reading within %d ms\n", run, S_RUN_DEADLINE_MS);
            goto cleanup;
        }
        //  A random phase against the scrape interval, as a real fault has.
        usleep ((useconds_t) (rand () % S_SCRAPE_MS) * 1000);
        double breach = s_now_ms ();
        if (s_set_fault (instances [0].endpoint, S_FAULT_RATE) || s_set_fault (instances [1].endpoint, S_FAULT_RATE)) {
            fprintf (stderr, "bench_promql: run %d: POST /fault failed\n", run);
            goto cleanup;
        }
        double seen = s_wait_for (client, &labels, true, breach + S_RUN_DEADLINE_MS);
        if (seen < 0) {
            fprintf (stderr, "bench_promql: run %d: breach not detected within %d ms\n", run, S_RUN_DEADLINE_MS);
            goto cleanup;
        }
        detected [run] = seen - breach;
        printf ("bench_promql: run %d: breach detected after %.0f ms\n", run, detected [run]);
        fflush (stdout);
        if (s_set_fault (instances [0].endpoint, "0") || s_set_fault (instances [1].endpoint, "0")) {
            fprintf (stderr, "bench_promql: run %d: POST /fault failed\n", run);
            goto cleanup;
        }
    }
    qsort (detected, (size_t) runs, sizeof (double), s_compare);
    printf ("RESULT promql.scrape_interval %d ms\n", S_SCRAPE_MS);
    printf ("RESULT promql.poll_interval %d ms\n", S_POLL_MS);
    printf ("RESULT promql.runs %d runs\n", runs);
    printf ("RESULT promql.breach_to_detect_p50_ms %.1f ms\n", s_quantile (detected, runs, 0.5));
    printf ("RESULT promql.breach_to_detect_p95_ms %.1f ms\n", s_quantile (detected, runs, 0.95));
    printf ("RESULT promql.detect_p50_in_scrape_intervals %.2f x\n", s_quantile (detected, runs, 0.5) / S_SCRAPE_MS);
    rc = 0;

cleanup:
    load_stop (&load);
    prom_destroy (&prometheus);
    al_promql_destroy (&client);
    al_driver_destroy (&driver);
    nftw (dir, s_remove, 16, FTW_DEPTH | FTW_PHYS);
    free (detected);
    curl_global_cleanup ();
    return rc;
}
