/*  bench_rollback.c: from a fault injected into a running release to its rollback.

    The whole stack as in production, each its own process: `airlock broker`,
    `airlock agent deploy-manager`, `airlock agent monitor --interval-ms 250`, demo-service
    instances (2 per release) with steady background traffic. For each run a healthy
    release is deployed to staging with a long soak; once its soak has started, errors
    are injected into every instance of it (POST /fault?error_rate=0.9). Measured from
    the injection:
      - rollback started: the journal record "rollback started" on the PUB socket;
      - rollback complete: the journal record "rollback succeeded".
    Over RUNS runs (default 10; argv[1]) the median and p95 of both are printed as
    "RESULT name value unit" lines. Goal (issue 7): breach -> rollback started within
    1 s at a 250 ms scrape interval. A time, not a ratio: the interval it is compared
    with is measured in the same run (the monitor's configured interval, printed too).

    Then the same through the Prometheus provider (PROMETHEUS_RUNS, default 5; argv[2],
    0 skips it): a second service, promdemo, with `signals: {source: prometheus}` and
    PromQL over [5s] windows, read by the same monitor from a real /usr/bin/prometheus
    (tests/promql/prom_harness: 1 s scrape interval, the process driver's file_sd.json).
    The fault is injected once the monitor publishes complete samples of the new
    version (Prometheus applies file_sd changes at most every 5 s, so its data come 5 to
    8 s after the instances start; that wait is not part of the figure): breach ->
    rollback started, rollback.prometheus_started_p50_ms / _p95_ms.
*/
#include "agents/al_agent.h"
#include "agents/al_subscriber.h"
#include "base/al_config.h"
#include "proto/al_codec.h"
#include "prom_harness.h"
#include <curl/curl.h>
#include <czmq.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define S_INTERVAL_MS "250"
#define S_MAX_RUNS 100

typedef struct {
    char dir [256];
    char config [300];
    char deploy_state [300];
    pid_t broker, deploy_manager, monitor;
    volatile int stop;
    pthread_t traffic;
    pthread_t prometheus_traffic;
} s_bench_t;

//  One traffic thread: its service's staging instances.
typedef struct {
    s_bench_t *bench;
    const char *service;
} s_traffic_t;

static double
s_mono_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static pid_t
s_spawn (s_bench_t *bench, const char *log, const char *const *argv)
{
    char path [400];
    snprintf (path, sizeof path, "%s/%s.log", bench->dir, log);
    pid_t pid = fork ();
    if (pid == 0) {
        FILE *out = freopen (path, "a", stderr);
        out = freopen (path, "a", stdout);
        (void) out;
        execv (argv [0], (char *const *) argv);
        _exit (127);
    }
    return pid;
}

static void
s_kill (pid_t *pid)
{
    if (*pid > 0) {
        kill (*pid, SIGTERM);
        waitpid (*pid, NULL, 0);
        *pid = 0;
    }
}

static int
s_run (const char *command)
{
    int rc = system (command);
    return WIFEXITED (rc)? WEXITSTATUS (rc): -1;
}

//  GET /work round robin over the staging instances, ~200 requests/s.
static size_t
s_discard (char *data, size_t size, size_t count, void *arg)
{
    (void) data;
    (void) arg;
    return size * count;
}

static void *
s_traffic (void *arg)
{
    s_traffic_t *traffic = (s_traffic_t *) arg;
    s_bench_t *bench = traffic->bench;
    char registry [400];
    snprintf (registry, sizeof registry, "%s/drivers/%s/staging/instances.json", bench->deploy_state,
              traffic->service);
    CURL *curl = curl_easy_init ();
    unsigned turn = 0;
    while (!bench->stop) {
        json_t *root = json_load_file (registry, 0, NULL);
        json_t *instances = root? json_object_get (root, "instances"): NULL;
        size_t count = json_array_size (instances);
        for (size_t i = 0; i < 20 && count; i++) {
            json_t *instance = json_array_get (instances, turn++ % count);
            char url [128];
            snprintf (url, sizeof url, "http://127.0.0.1:%d/work?n=1000",
                      (int) json_integer_value (json_object_get (instance, "port")));
            curl_easy_setopt (curl, CURLOPT_URL, url);
            curl_easy_setopt (curl, CURLOPT_TIMEOUT_MS, 500L);
            curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, s_discard);
            curl_easy_perform (curl);
            struct timespec pause = { 0, 5000000L };
            nanosleep (&pause, NULL);
        }
        json_decref (root);
        if (!count) {
            struct timespec pause = { 0, 50000000L };
            nanosleep (&pause, NULL);
        }
    }
    curl_easy_cleanup (curl);
    return NULL;
}

//  POST /fault?error_rate=0.9 to every running instance of version. Returns how many.
static int
s_inject (s_bench_t *bench, const char *service, const char *version)
{
    char registry [400];
    snprintf (registry, sizeof registry, "%s/drivers/%s/staging/instances.json", bench->deploy_state, service);
    json_t *root = json_load_file (registry, 0, NULL);
    json_t *instances = root? json_object_get (root, "instances"): NULL;
    size_t index;
    json_t *instance;
    int injected = 0;
    CURL *curl = curl_easy_init ();
    json_array_foreach (instances, index, instance) {
        if (strcmp (json_string_value (json_object_get (instance, "version")), version) != 0)
            continue;
        char url [160];
        snprintf (url, sizeof url, "http://127.0.0.1:%d/fault?error_rate=0.9",
                  (int) json_integer_value (json_object_get (instance, "port")));
        curl_easy_setopt (curl, CURLOPT_URL, url);
        curl_easy_setopt (curl, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt (curl, CURLOPT_TIMEOUT_MS, 1000L);
        curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, s_discard);
        long status = 0;
        if (curl_easy_perform (curl) == CURLE_OK
        &&  curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK && status == 200)
            injected++;
    }
    curl_easy_cleanup (curl);
    json_decref (root);
    return injected;
}

static int
s_compare (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y? -1: x > y;
}

static double
s_quantile (double *values, int count, double q)
{
    qsort (values, (size_t) count, sizeof *values, s_compare);
    int index = (int) (q * (count - 1) + 0.5);
    return values [index];
}

//  Wait for a journal record (step, outcome) of deployment on the PUB socket. Returns
//  the monotonic ms it arrived, or -1 after timeout_ms.
static double
s_wait_record (al_subscriber_t *events, const char *deployment, Airlock__Step step, Airlock__Outcome outcome,
               int timeout_ms)
{
    double deadline = s_mono_ms () + timeout_ms;
    while (s_mono_ms () < deadline) {
        al_envelope_t *event = al_subscriber_recv (events, 100, NULL, 0, NULL, NULL, NULL);
        if (!event)
            continue;
        bool match = event->body_case == AIRLOCK__ENVELOPE__BODY_DEPLOY_PROGRESS
                  && event->deploy_progress->journal
                  && strcmp (event->deployment_id, deployment) == 0
                  && event->deploy_progress->step == step && event->deploy_progress->outcome == outcome;
        al_codec_free (&event);
        if (match)
            return s_mono_ms ();
    }
    return -1;
}

//  Wait for a SoakSignal of service about version with complete evidence and traffic
//  (the monitor judges that version from now on). Returns 0, or -1 after timeout_ms.
static int
s_wait_judged (al_subscriber_t *events, const char *service, const char *version, int timeout_ms)
{
    double deadline = s_mono_ms () + timeout_ms;
    while (s_mono_ms () < deadline) {
        al_envelope_t *event = al_subscriber_recv (events, 100, NULL, 0, NULL, NULL, NULL);
        if (!event)
            continue;
        bool match = event->body_case == AIRLOCK__ENVELOPE__BODY_SOAK_SIGNAL
                  && strcmp (event->soak_signal->service, service) == 0
                  && event->soak_signal->version && strcmp (event->soak_signal->version, version) == 0
                  && event->soak_signal->no_evidence == 0 && event->soak_signal->requests_per_second > 0;
        al_codec_free (&event);
        if (match)
            return 0;
    }
    return -1;
}

static int
s_deploy (al_agent_t *orchestrator, s_bench_t *bench, const char *service, const char *deployment,
          const char *version)
{
    char artifact [400], command [900];
    snprintf (artifact, sizeof artifact, "%s/%s-%s.sh", bench->dir, service, version);
    FILE *file = fopen (artifact, "w");
    if (!file)
        return -1;
    fprintf (file, "#!/bin/sh\nexec '%s/demo-service' --version '%s' \"$@\"\n", AIRLOCK_BUILD_DIR, version);
    fclose (file);
    chmod (artifact, 0755);
    char sha [65] = "";
    snprintf (command, sizeof command, "sha256sum '%s' > '%s.sha'", artifact, artifact);
    if (s_run (command) != 0)
        return -1;
    snprintf (command, sizeof command, "%s.sha", artifact);
    file = fopen (command, "r");
    if (!file || fscanf (file, "%64s", sha) != 1) {
        if (file)
            fclose (file);
        return -1;
    }
    fclose (file);
    Airlock__DeployRequest request = AIRLOCK__DEPLOY_REQUEST__INIT;
    request.service = (char *) service;
    request.version = (char *) version;
    request.artifact_uri = artifact;
    request.artifact_sha256 = sha;
    request.deployment_type = AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD;
    al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
    envelope.deployment_id = (char *) deployment;
    envelope.environment = AIRLOCK__ENVIRONMENT__ENV_STAGING;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_DEPLOY_REQUEST;
    envelope.deploy_request = &request;
    al_agent_result_t result;
    return al_agent_send (orchestrator, &envelope, 10000, &result) == AL_AGENT_ACKED? 0: -1;
}

int
main (int argc, char **argv)
{
    int runs = argc > 1? atoi (argv [1]): 10;
    int prometheus_runs = argc > 2? atoi (argv [2]): 5;
    if (runs < 1 || runs > S_MAX_RUNS || prometheus_runs < 0 || prometheus_runs > S_MAX_RUNS) {
        fprintf (stderr, "usage: bench_rollback [RUNS (1..%d, default 10) [PROMETHEUS_RUNS (0..%d, default 5)]]\n",
                 S_MAX_RUNS, S_MAX_RUNS);
        return 2;
    }
    zsys_init ();
    zsys_set_logstream (NULL);
    curl_global_init (CURL_GLOBAL_DEFAULT);
    s_bench_t bench;
    memset (&bench, 0, sizeof bench);
    snprintf (bench.dir, sizeof bench.dir, "/tmp/al-bench-rollback-XXXXXX");
    if (!mkdtemp (bench.dir))
        return 2;
    snprintf (bench.config, sizeof bench.config, "%s/airlock.yaml", bench.dir);
    snprintf (bench.deploy_state, sizeof bench.deploy_state, "%s/deploy", bench.dir);
    const char *airlock = AIRLOCK_BUILD_DIR "/airlock";
    char command [1200];
    snprintf (command, sizeof command, "'%s' init '%s' > /dev/null", airlock, bench.dir);
    int rc = 1;
    al_config_t *config = NULL;
    al_agent_t *orchestrator = NULL;
    al_subscriber_t *events = NULL;
    double started [S_MAX_RUNS], completed [S_MAX_RUNS], prometheus_started [S_MAX_RUNS];
    int measured = 0, prometheus_measured = 0;
    prom_harness_t *prometheus = NULL;
    s_traffic_t demo_traffic = { &bench, "demo" }, promdemo_traffic = { &bench, "promdemo" };
    if (s_run (command) != 0) {
        fprintf (stderr, "bench_rollback: airlock init failed\n");
        goto cleanup;
    }
    //  No deploy windows or freezes in the way of a benchmark. The soak (8 s) is long
    //  enough for the fault to be injected during it; a rollback cuts it short.
    snprintf (command, sizeof command,
              "sed -i '/^calendar:/,$d' '%s/policy/constraints.yaml' && printf 'calendar:\\n  timezone: UTC\\n"
              "  applies_to: [production]\\n  windows: []\\n  freezes:\\n    weekdays: []\\n    holidays: []\\n"
              "    month_end: off\\n' >> '%s/policy/constraints.yaml'", bench.dir, bench.dir);
    if (s_run (command) != 0)
        goto cleanup;
    snprintf (command, sizeof command, "%s/services.yaml", bench.dir);
    FILE *file = fopen (command, "w");
    if (!file)
        goto cleanup;
    fprintf (file, "version: 1\nservices:\n  demo:\n    driver: process\n    instances: 2\n    strategy: rolling\n"
                   "    soak_ms: 8000\n    probe_interval_ms: 100\n    ready_timeout_ms: 10000\n"
                   "    stop_timeout_ms: 2000\n    command: [\"{{artifact}}\"]\n");
    if (prometheus_runs > 0) {
        //  The Prometheus pass: a real Prometheus reading the driver's file_sd.json (its
        //  directory and an empty list exist before the first release). The soak (16 s)
        //  outlasts the wait for the new version's data and the fault after it.
        char path [600], error_text [2048];
        snprintf (command, sizeof command, "mkdir -p '%s/drivers/promdemo/staging' '%s/prometheus' && echo '[]' > "
                  "'%s/drivers/promdemo/staging/file_sd.json'", bench.deploy_state, bench.dir, bench.deploy_state);
        if (s_run (command) != 0) {
            fclose (file);
            goto cleanup;
        }
        snprintf (command, sizeof command, "%s/drivers/promdemo/staging/file_sd.json", bench.deploy_state);
        snprintf (path, sizeof path, "%s/prometheus", bench.dir);
        prometheus = prom_start (path, command, 30000, error_text, sizeof error_text);
        if (!prometheus) {
            fprintf (stderr, "bench_rollback: prometheus: %s\n", error_text);
            fclose (file);
            goto cleanup;
        }
#define S_SELECTOR "service=\"{{service}}\",environment=\"{{environment}}\",version=\"{{version}}\""
        fprintf (file,
                 "  promdemo:\n    driver: process\n    instances: 2\n    strategy: rolling\n    soak_ms: 16000\n"
                 "    probe_interval_ms: 100\n    ready_timeout_ms: 10000\n    stop_timeout_ms: 2000\n"
                 "    command: [\"{{artifact}}\"]\n"
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
                 prom_url (prometheus));
    }
    fclose (file);
    const char *broker_argv [] = { airlock, "broker", "--config", bench.config, NULL };
    const char *manager_argv [] = { airlock, "agent", "deploy-manager", "--config", bench.config, NULL };
    const char *monitor_argv [] = { airlock, "agent", "monitor", "--config", bench.config, "--interval-ms", S_INTERVAL_MS, NULL };
    bench.broker = s_spawn (&bench, "broker", broker_argv);
    zclock_sleep (500);
    bench.deploy_manager = s_spawn (&bench, "deploy-manager", manager_argv);
    bench.monitor = s_spawn (&bench, "monitor", monitor_argv);
    char error [512];
    config = al_config_load (bench.config, error, sizeof error);
    if (!config)
        goto cleanup;
    orchestrator = al_agent_new_for_role (config, "orchestrator", false, error, sizeof error);
    events = orchestrator? al_subscriber_new (config, "auditor", error, sizeof error): NULL;
    if (!events) {
        fprintf (stderr, "bench_rollback: %s\n", error);
        goto cleanup;
    }
    al_subscriber_subscribe (events, "event.DeployProgress");
    if (al_agent_wait_registered (orchestrator, 10000) != 0 || al_subscriber_wait_connected (events, 10000) != 0) {
        fprintf (stderr, "bench_rollback: the broker did not answer\n");
        goto cleanup;
    }
    pthread_create (&bench.traffic, NULL, s_traffic, &demo_traffic);

    //  v0 first: it must become the recorded release (what every rollback restores), so
    //  its fault-free soak runs to the end once.
    if (s_deploy (orchestrator, &bench, "demo", "base", "v0") != 0
    ||  s_wait_record (events, "base", AIRLOCK__STEP__STEP_RECEIPT, AIRLOCK__OUTCOME__OUTCOME_STARTED, 120000) < 0) {
        fprintf (stderr, "bench_rollback: the first release did not deploy (see %s/*.log)\n", bench.dir);
        goto cleanup;
    }
    zclock_sleep (2500);                // baseline samples with traffic
    for (int run = 0; run < runs; run++) {
        char deployment [32], version [32];
        snprintf (deployment, sizeof deployment, "run-%d", run + 1);
        snprintf (version, sizeof version, "v%d", run + 1);
        if (s_deploy (orchestrator, &bench, "demo", deployment, version) != 0
        ||  s_wait_record (events, deployment, AIRLOCK__STEP__STEP_SOAK, AIRLOCK__OUTCOME__OUTCOME_STARTED, 60000) < 0) {
            fprintf (stderr, "bench_rollback: %s did not reach its soak\n", deployment);
            goto cleanup;
        }
        zclock_sleep (600);             // a few healthy samples of the new release
        double injected_at = s_mono_ms ();
        if (s_inject (&bench, "demo", version) == 0) {
            fprintf (stderr, "bench_rollback: could not inject the fault into %s\n", version);
            goto cleanup;
        }
        double start = s_wait_record (events, deployment, AIRLOCK__STEP__STEP_ROLLBACK, AIRLOCK__OUTCOME__OUTCOME_STARTED, 30000);
        double done = start < 0? -1: s_wait_record (events, deployment, AIRLOCK__STEP__STEP_ROLLBACK,
                                                     AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED, 30000);
        if (done < 0) {
            fprintf (stderr, "bench_rollback: %s was not rolled back\n", deployment);
            goto cleanup;
        }
        started [measured] = start - injected_at;
        completed [measured] = done - injected_at;
        printf ("run %2d: rollback started %7.1f ms, complete %7.1f ms after the fault\n", run + 1,
                started [measured], completed [measured]);
        fflush (stdout);
        measured++;
        s_wait_record (events, deployment, AIRLOCK__STEP__STEP_RECEIPT, AIRLOCK__OUTCOME__OUTCOME_ROLLED_BACK, 30000);
        zclock_sleep (1500);            // the restored release's samples refill the baseline
    }
    printf ("RESULT rollback.scrape_interval %s ms\n", S_INTERVAL_MS);
    printf ("RESULT rollback.runs %d runs\n", measured);
    printf ("RESULT rollback.fault_to_start_p50 %.1f ms\n", s_quantile (started, measured, 0.5));
    printf ("RESULT rollback.fault_to_start_p95 %.1f ms\n", s_quantile (started, measured, 0.95));
    printf ("RESULT rollback.fault_to_complete_p50 %.1f ms\n", s_quantile (completed, measured, 0.5));
    printf ("RESULT rollback.fault_to_complete_p95 %.1f ms\n", s_quantile (completed, measured, 0.95));
    printf ("RESULT rollback.start_p50_in_intervals %.2f x\n", s_quantile (started, measured, 0.5) / atof (S_INTERVAL_MS));
    fflush (stdout);

    //  The same through the Prometheus provider.
    if (prometheus_runs > 0) {
        al_subscriber_subscribe (events, "soak.staging.promdemo");
        pthread_create (&bench.prometheus_traffic, NULL, s_traffic, &promdemo_traffic);
        if (s_deploy (orchestrator, &bench, "promdemo", "pbase", "v0") != 0
        ||  s_wait_record (events, "pbase", AIRLOCK__STEP__STEP_RECEIPT, AIRLOCK__OUTCOME__OUTCOME_STARTED, 120000) < 0) {
            fprintf (stderr, "bench_rollback: promdemo's first release did not deploy (see %s/*.log)\n", bench.dir);
            goto cleanup;
        }
        zclock_sleep (2500);
        for (int run = 0; run < prometheus_runs; run++) {
            char deployment [32], version [32];
            snprintf (deployment, sizeof deployment, "prun-%d", run + 1);
            snprintf (version, sizeof version, "v%d", run + 1);
            if (s_deploy (orchestrator, &bench, "promdemo", deployment, version) != 0
            ||  s_wait_record (events, deployment, AIRLOCK__STEP__STEP_SOAK, AIRLOCK__OUTCOME__OUTCOME_STARTED, 60000) < 0) {
                fprintf (stderr, "bench_rollback: %s did not reach its soak\n", deployment);
                goto cleanup;
            }
            double soak_at = s_mono_ms ();
            if (s_wait_judged (events, "promdemo", version, 30000) != 0) {
                fprintf (stderr, "bench_rollback: no complete Prometheus sample of %s within 30 s\n", version);
                goto cleanup;
            }
            double data_at = s_mono_ms ();
            zclock_sleep (600);
            double injected_at = s_mono_ms ();
            if (s_inject (&bench, "promdemo", version) == 0) {
                fprintf (stderr, "bench_rollback: could not inject the fault into promdemo %s\n", version);
                goto cleanup;
            }
            double start = s_wait_record (events, deployment, AIRLOCK__STEP__STEP_ROLLBACK,
                                          AIRLOCK__OUTCOME__OUTCOME_STARTED, 30000);
            if (start < 0) {
                fprintf (stderr, "bench_rollback: %s was not rolled back\n", deployment);
                goto cleanup;
            }
            prometheus_started [prometheus_measured++] = start - injected_at;
            printf ("prometheus run %2d: rollback started %7.1f ms after the fault (the version's first complete "
                    "sample %.1f ms after its soak started)\n", run + 1, start - injected_at, data_at - soak_at);
            fflush (stdout);
            s_wait_record (events, deployment, AIRLOCK__STEP__STEP_RECEIPT, AIRLOCK__OUTCOME__OUTCOME_ROLLED_BACK, 30000);
            zclock_sleep (1500);
        }
        printf ("RESULT rollback.prometheus_scrape_interval 1000 ms\n");
        printf ("RESULT rollback.prometheus_runs %d runs\n", prometheus_measured);
        printf ("RESULT rollback.prometheus_started_p50_ms %.1f ms\n", s_quantile (prometheus_started, prometheus_measured, 0.5));
        printf ("RESULT rollback.prometheus_started_p95_ms %.1f ms\n", s_quantile (prometheus_started, prometheus_measured, 0.95));
    }
    rc = 0;
cleanup:
    bench.stop = 1;
    if (bench.traffic)
        pthread_join (bench.traffic, NULL);
    if (bench.prometheus_traffic)
        pthread_join (bench.prometheus_traffic, NULL);
    prom_destroy (&prometheus);
    al_subscriber_destroy (&events);
    al_agent_destroy (&orchestrator);
    al_config_destroy (&config);
    s_kill (&bench.monitor);
    s_kill (&bench.deploy_manager);
    s_kill (&bench.broker);
    if (rc == 0) {
        snprintf (command, sizeof command, "rm -rf '%s'", bench.dir);
        if (s_run (command) != 0)
            fprintf (stderr, "bench_rollback: could not remove %s\n", bench.dir);
    }
    else
        fprintf (stderr, "bench_rollback: logs kept in %s\n", bench.dir);
    curl_global_cleanup ();
    return rc;
}
