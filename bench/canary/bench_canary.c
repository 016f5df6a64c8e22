/*  bench_canary.c: how often the canary-against-stable judge fails a healthy canary,
    and how fast it fails a bad one, on real demo-service instances.

    No broker, no agents: the monitor's data path alone. Four demo-service processes
    (2 "stable", 2 "canary", all the same healthy build: --latency-ms 5 --jitter-ms 15
    --error-rate 0.01) take steady GET /work traffic (one client thread per instance,
    back to back). Every 250 ms all four /metrics are scraped at once (al_scrape),
    parsed (al_metrics) and reported to one al_signals_t; al_signals_sample_of over the
    canary ids and over the stable ids gives one observation per side, which is fed to
    an al_canary_t with the services.yaml defaults (alpha 0.01, min_samples 8, floors
    20% and 1 point, window 120).

    - False positives: HEALTHY runs (argv[1], default 20), each a fresh judge fed for
      10 s (40 ticks) with both sides healthy; a run that ever returns FAIL is a false
      positive. The judge re-tests on every tick, so this is the rate per canary (per
      10 s of soak), not per test.
    - Detection delay: DETECT runs of each regression (argv[2], default 5): latency +40
      ms (POST /fault?latency_ms=45 on both canary instances) and errors at 10% (POST
      /fault?error_rate=0.1). Each run feeds a fresh judge 5 s of healthy ticks, switches
      the fault on (the time just before the POSTs is the switch), and measures until
      the first FAIL (at most 30 s: a miss). The fault is then switched off and the
      next run skips the two ticks whose scrape windows still hold faulty requests.
    Printed as "RESULT name value unit": canary.healthy_runs, canary.false_positive_rate,
    canary.detect_runs, canary.detect_delay_p50_ms / _p95_ms (both regressions
    together) and per regression, canary.missed_detections.
*/
#include "deploy/al_canary.h"
#include "deploy/al_metrics.h"
#include "deploy/al_scrape.h"
#include "deploy/al_signals.h"
#include <curl/curl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define S_INTERVAL_MS       250
#define S_HEALTHY_TICKS     40          // 10 s per healthy run
#define S_BEFORE_TICKS      20          // 5 s of healthy ticks before a regression
#define S_DETECT_LIMIT_MS   30000       // a regression not failed by then is a miss
#define S_SETTLE_TICKS      2           // ticks not fed after a fault is switched off
#define S_INSTANCES         4           // 0, 1 stable; 2, 3 canary
#define S_MAX_RUNS          1000
#define S_HEALTHY_ARGS      "--latency-ms", "5", "--jitter-ms", "15", "--error-rate", "0.01"
#define S_HEALTHY_FAULT     "latency_ms=5&jitter_ms=15&error_rate=0.01"

typedef struct {
    pid_t pid;
    int port;
    char name [32];                 // "127.0.0.1:PORT": the al_signals instance id
    char metrics_url [64];
    pthread_t traffic;
    bool traffic_started;
} s_instance_t;

typedef struct {
    s_instance_t instances [S_INSTANCES];
    volatile int stop;
    al_scraper_t *scraper;
    al_signals_t *signals;
    char log [128];                 // demo-service's stderr
} s_bench_t;

typedef struct {
    s_bench_t *bench;
    int index;
} s_traffic_arg_t;

static double
s_mono_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static void
s_sleep_ms (double ms)
{
    if (ms <= 0)
        return;
    struct timespec pause = { (time_t) (ms / 1000), (long) (fmod (ms, 1000) * 1e6) };
    nanosleep (&pause, NULL);
}

static size_t
s_discard (char *data, size_t size, size_t count, void *arg)
{
    (void) data;
    (void) arg;
    return size * count;
}

//  Start demo-service on a free port; 0 and the port in instance, or -1.
static int
s_start (s_bench_t *bench, s_instance_t *instance, const char *version)
{
    const char *binary = AIRLOCK_BUILD_DIR "/demo-service";
    const char *argv [] = { binary, "--port", "0", "--version", version, S_HEALTHY_ARGS, NULL };
    int fds [2];
    if (pipe (fds) != 0)
        return -1;
    fflush (NULL);
    pid_t pid = fork ();
    if (pid < 0) {
        close (fds [0]);
        close (fds [1]);
        return -1;
    }
    if (pid == 0) {
        dup2 (fds [1], STDOUT_FILENO);
        close (fds [0]);
        close (fds [1]);
        FILE *log = freopen (bench->log, "a", stderr);
        (void) log;
        execv (binary, (char *const *) argv);
        _exit (127);
    }
    instance->pid = pid;
    close (fds [1]);
    char line [256];
    size_t used = 0;
    double deadline = s_mono_ms () + 10000;
    while (used < sizeof line - 1 && !memchr (line, '\n', used)) {
        struct pollfd readable = { fds [0], POLLIN, 0 };
        int wait_ms = (int) (deadline - s_mono_ms ());
        if (wait_ms <= 0 || poll (&readable, 1, wait_ms) <= 0)
            break;
        ssize_t got = read (fds [0], line + used, sizeof line - 1 - used);
        if (got <= 0)
            break;
        used += (size_t) got;
    }
    close (fds [0]);
    line [used] = 0;
    const char *at = strstr (line, "listening on 127.0.0.1:");
    instance->port = at? atoi (at + strlen ("listening on 127.0.0.1:")): 0;
    if (instance->port <= 0 || instance->port > 65535) {
        fprintf (stderr, "bench_canary: demo-service did not report its port (stdout '%s')\n", line);
        return -1;
    }
    snprintf (instance->name, sizeof instance->name, "127.0.0.1:%d", instance->port);
    snprintf (instance->metrics_url, sizeof instance->metrics_url, "http://127.0.0.1:%d/metrics", instance->port);
    return 0;
}

//  GET /work on one instance, back to back, until the bench stops.
static void *
s_traffic (void *arg)
{
    s_traffic_arg_t *traffic = (s_traffic_arg_t *) arg;
    s_bench_t *bench = traffic->bench;
    char url [96];
    snprintf (url, sizeof url, "http://127.0.0.1:%d/work?n=1000", bench->instances [traffic->index].port);
    CURL *curl = curl_easy_init ();
    if (!curl)
        return NULL;
    curl_easy_setopt (curl, CURLOPT_URL, url);
    curl_easy_setopt (curl, CURLOPT_TIMEOUT_MS, 2000L);
    curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, s_discard);
    while (!bench->stop) {
        if (curl_easy_perform (curl) != CURLE_OK)
            s_sleep_ms (50);        // an instance going away must not spin the thread
        s_sleep_ms (2);
    }
    curl_easy_cleanup (curl);
    return NULL;
}

//  POST /fault?query to both canary instances. Returns how many answered 200.
static int
s_fault (s_bench_t *bench, const char *query)
{
    CURL *curl = curl_easy_init ();
    if (!curl)
        return 0;
    int done = 0;
    for (int i = 2; i < S_INSTANCES; i++) {
        char url [160];
        snprintf (url, sizeof url, "http://127.0.0.1:%d/fault?%s", bench->instances [i].port, query);
        curl_easy_setopt (curl, CURLOPT_URL, url);
        curl_easy_setopt (curl, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt (curl, CURLOPT_TIMEOUT_MS, 2000L);
        curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, s_discard);
        long status = 0;
        if (curl_easy_perform (curl) == CURLE_OK
        &&  curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK && status == 200)
            done++;
    }
    curl_easy_cleanup (curl);
    return done;
}

//  One scrape round of all instances into bench->signals at now_ms (monotonic ms).
static void
s_scrape (s_bench_t *bench, int64_t now_ms)
{
    al_scrape_target_t targets [S_INSTANCES];
    al_scrape_result_t results [S_INSTANCES];
    for (int i = 0; i < S_INSTANCES; i++)
        targets [i] = (al_scrape_target_t) { bench->instances [i].metrics_url, &bench->instances [i] };
    al_scraper_run (bench->scraper, targets, S_INSTANCES, S_INTERVAL_MS * 8 / 10, results);
    for (int i = 0; i < S_INSTANCES; i++) {
        const char *name = bench->instances [i].name;
        char error [256] = "";
        al_metrics_t *metrics = results [i].ok
            ? al_metrics_parse (results [i].body, results [i].body_size, NULL, error, sizeof error): NULL;
        if (metrics)
            al_signals_scrape_ok (bench->signals, name, now_ms, &metrics, error, sizeof error);
        else
            al_signals_scrape_failed (bench->signals, name, now_ms,
                                      results [i].ok? error: results [i].error, error, sizeof error);
    }
}

static al_canary_observation_t
s_observation (const al_signals_sample_t *sample)
{
    return (al_canary_observation_t) {
        .requests_per_second = sample->requests_per_second,
        .error_ratio = sample->error_ratio,
        .latency_p50_ms = sample->latency_p50_ms,
        .latency_p99_ms = sample->latency_p99_ms };
}

//  Wait for the next tick (deadline *next_ms, then advanced by one interval), scrape,
//  sample each side and, if judge is not NULL, feed it. Returns the verdict (or
//  NOT_ENOUGH_DATA when not fed); *at_ms gets the time the verdict was known.
static al_canary_result_t
s_tick (s_bench_t *bench, double *next_ms, al_canary_t *judge, double *at_ms)
{
    s_sleep_ms (*next_ms - s_mono_ms ());
    *next_ms += S_INTERVAL_MS;
    int64_t now = (int64_t) s_mono_ms ();
    s_scrape (bench, now);
    const char *stable_ids [] = { bench->instances [0].name, bench->instances [1].name };
    const char *canary_ids [] = { bench->instances [2].name, bench->instances [3].name };
    al_signals_sample_t stable, canary;
    al_signals_sample_of (bench->signals, now, false, stable_ids, 2, &stable);
    al_signals_sample_of (bench->signals, now, false, canary_ids, 2, &canary);
    al_canary_result_t result;
    memset (&result, 0, sizeof result);
    result.verdict = AL_CANARY_NOT_ENOUGH_DATA;
    if (judge) {
        al_canary_observation_t canary_observation = s_observation (&canary);
        al_canary_observation_t stable_observation = s_observation (&stable);
        result = al_canary_feed (judge, now, &canary_observation, &stable_observation);
    }
    *at_ms = s_mono_ms ();
    return result;
}

static al_canary_t *
s_judge_new (void)
{
    al_canary_config_t config;
    al_canary_config_default (&config);
    char error [256];
    al_canary_t *judge = al_canary_new (&config, 0, error, sizeof error);
    if (!judge)
        fprintf (stderr, "bench_canary: %s\n", error);
    return judge;
}

static int
s_compare (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y? -1: x > y;
}

//  Nearest-rank quantile of count values (sorted in place); NaN when none.
static double
s_quantile (double *values, int count, double q)
{
    if (count == 0)
        return NAN;
    qsort (values, (size_t) count, sizeof *values, s_compare);
    int index = (int) ceil (q * count) - 1;
    return values [index < 0? 0: index];
}

int
main (int argc, char **argv)
{
    int healthy_runs = argc > 1? atoi (argv [1]): 20;
    int detect_runs = argc > 2? atoi (argv [2]): 5;
    if (healthy_runs < 0 || healthy_runs > S_MAX_RUNS || detect_runs < 0 || detect_runs > S_MAX_RUNS / 2
    ||  healthy_runs + detect_runs == 0) {
        fprintf (stderr, "usage: bench_canary [HEALTHY_RUNS (default 20)] [DETECT_RUNS per regression (default 5)]\n");
        return 2;
    }
    signal (SIGPIPE, SIG_IGN);
    curl_global_init (CURL_GLOBAL_DEFAULT);
    s_bench_t bench;
    memset (&bench, 0, sizeof bench);
    snprintf (bench.log, sizeof bench.log, "/tmp/al-bench-canary-%d.log", (int) getpid ());
    s_traffic_arg_t traffic_args [S_INSTANCES];
    static double delays [S_MAX_RUNS], latency_delays [S_MAX_RUNS], error_delays [S_MAX_RUNS];
    int rc = 1, delay_count = 0, latency_count = 0, error_count = 0, misses = 0, early = 0;
    int false_positives = 0;
    char error [256];
    bench.scraper = al_scraper_new (0, error, sizeof error);
    bench.signals = al_signals_new ("demo", "bench", NULL);
    if (!bench.scraper || !bench.signals) {
        fprintf (stderr, "bench_canary: cannot create the scraper or the signals\n");
        goto cleanup;
    }
    for (int i = 0; i < S_INSTANCES; i++) {
        if (s_start (&bench, &bench.instances [i], i < 2? "stable": "canary") != 0
        ||  al_signals_add_instance (bench.signals, bench.instances [i].name) != 0) {
            fprintf (stderr, "bench_canary: demo-service did not start (see %s)\n", bench.log);
            goto cleanup;
        }
    }
    for (int i = 0; i < S_INSTANCES; i++) {
        traffic_args [i] = (s_traffic_arg_t) { &bench, i };
        if (pthread_create (&bench.instances [i].traffic, NULL, s_traffic, &traffic_args [i]) != 0)
            goto cleanup;
        bench.instances [i].traffic_started = true;
    }
    printf ("demo-service x4 (2 stable, 2 canary) --latency-ms 5 --jitter-ms 15 --error-rate 0.01; "
            "scrape every %d ms; judge: alpha %g, min_samples %d, floors %g%% / %g points, window %d\n",
            S_INTERVAL_MS, AL_CANARY_DEFAULT_ALPHA, AL_CANARY_DEFAULT_MIN_SAMPLES,
            AL_CANARY_DEFAULT_MIN_LATENCY_INCREASE_PERCENT, AL_CANARY_DEFAULT_MIN_ERROR_INCREASE_POINTS,
            AL_CANARY_DEFAULT_WINDOW);
    fflush (stdout);
    double next = s_mono_ms (), at;
    for (int tick = 0; tick < 8; tick++)         // traffic flowing, two scrapes per instance
        s_tick (&bench, &next, NULL, &at);

    //  False positives.
    for (int run = 0; run < healthy_runs; run++) {
        al_canary_t *judge = s_judge_new ();
        if (!judge)
            goto cleanup;
        al_canary_result_t result, first_fail;
        memset (&first_fail, 0, sizeof first_fail);
        int passes = 0;
        for (int tick = 0; tick < S_HEALTHY_TICKS; tick++) {
            result = s_tick (&bench, &next, judge, &at);
            passes += result.verdict == AL_CANARY_PASS;
            if (result.verdict == AL_CANARY_FAIL && first_fail.verdict != AL_CANARY_FAIL)
                first_fail = result;
        }
        bool failed = first_fail.verdict == AL_CANARY_FAIL;
        false_positives += failed;
        printf ("healthy %2d: %s; %s\n", run + 1, failed? "FAIL (false positive)": al_canary_verdict_name (result.verdict),
                failed? first_fail.detail: result.detail);
        if (!failed && passes == 0)
            printf ("healthy %2d: never judged: the bench measured nothing\n", run + 1);
        fflush (stdout);
        al_canary_destroy (&judge);
    }

    //  Detection delay, the two regressions alternating.
    for (int run = 0; run < 2 * detect_runs; run++) {
        bool latency = run % 2 == 0;
        al_canary_t *judge = s_judge_new ();
        if (!judge)
            goto cleanup;
        bool failed_early = false;
        for (int tick = 0; tick < S_BEFORE_TICKS && !failed_early; tick++)
            failed_early = s_tick (&bench, &next, judge, &at).verdict == AL_CANARY_FAIL;
        if (failed_early) {
            early++;
            printf ("detect %2d (%s): FAIL before the regression (a false positive); run not counted\n",
                    run + 1, latency? "latency": "errors");
            al_canary_destroy (&judge);
            continue;
        }
        double switched = s_mono_ms ();
        if (s_fault (&bench, latency? "latency_ms=45": "error_rate=0.1") != 2) {
            fprintf (stderr, "bench_canary: could not switch the fault on\n");
            al_canary_destroy (&judge);
            goto cleanup;
        }
        al_canary_result_t result;
        memset (&result, 0, sizeof result);
        while (result.verdict != AL_CANARY_FAIL && s_mono_ms () - switched < S_DETECT_LIMIT_MS)
            result = s_tick (&bench, &next, judge, &at);
        if (result.verdict == AL_CANARY_FAIL) {
            double delay = at - switched;
            delays [delay_count++] = delay;
            if (latency)
                latency_delays [latency_count++] = delay;
            else
                error_delays [error_count++] = delay;
            printf ("detect %2d (%s): FAIL %.0f ms after the switch: %s: %s\n", run + 1,
                    latency? "latency +40 ms": "errors 10%", delay, result.rule, result.detail);
        }
        else {
            misses++;
            printf ("detect %2d (%s): no FAIL within %d ms: %s\n", run + 1, latency? "latency +40 ms": "errors 10%",
                    S_DETECT_LIMIT_MS, result.detail);
        }
        fflush (stdout);
        al_canary_destroy (&judge);
        if (s_fault (&bench, S_HEALTHY_FAULT) != 2) {
            fprintf (stderr, "bench_canary: could not switch the fault off\n");
            goto cleanup;
        }
        for (int tick = 0; tick < S_SETTLE_TICKS; tick++)
            s_tick (&bench, &next, NULL, &at);
    }
    printf ("RESULT canary.scrape_interval %d ms\n", S_INTERVAL_MS);
    printf ("RESULT canary.healthy_runs %d runs\n", healthy_runs);
    printf ("RESULT canary.false_positives %d runs\n", false_positives);
    printf ("RESULT canary.false_positive_rate %.3f ratio\n",
            healthy_runs? (double) false_positives / healthy_runs: NAN);
    printf ("RESULT canary.detect_runs %d runs\n", delay_count);
    printf ("RESULT canary.missed_detections %d runs\n", misses);
    printf ("RESULT canary.failed_before_regression %d runs\n", early);
    printf ("RESULT canary.detect_delay_p50_ms %.0f ms\n", s_quantile (delays, delay_count, 0.5));
    printf ("RESULT canary.detect_delay_p95_ms %.0f ms\n", s_quantile (delays, delay_count, 0.95));
    printf ("RESULT canary.detect_latency_delay_p50_ms %.0f ms\n", s_quantile (latency_delays, latency_count, 0.5));
    printf ("RESULT canary.detect_errors_delay_p50_ms %.0f ms\n", s_quantile (error_delays, error_count, 0.5));
    rc = 0;
cleanup:
    bench.stop = 1;
    for (int i = 0; i < S_INSTANCES; i++)
        if (bench.instances [i].traffic_started)
            pthread_join (bench.instances [i].traffic, NULL);
    for (int i = 0; i < S_INSTANCES; i++)
        if (bench.instances [i].pid > 0) {
            kill (bench.instances [i].pid, SIGTERM);
            waitpid (bench.instances [i].pid, NULL, 0);
        }
    al_signals_destroy (&bench.signals);
    al_scraper_destroy (&bench.scraper);
    if (rc == 0)
        unlink (bench.log);
    else
        fprintf (stderr, "bench_canary: demo-service's stderr is in %s\n", bench.log);
    curl_global_cleanup ();
    return rc;
}
