/*  al_qa.c: the qa agent (see al_qa.h; docs/qa.md is the contract).

    One delivery at a time, on the calling thread: decide whether the request may run
    (environment, deployment id, a report already there), run the checks and suites,
    write the report atomically (temp file, fsync, rename, fsync of the directory),
    then answer from the file: the QaReport is always rebuilt from qa_report.json as
    written, so a first answer and a resend after a crash or a redelivery are the same
    bytes under the same message id ("qa-report-<delivery id>"), which the broker
    de-duplicates. A delivery is acknowledged once the broker has recorded the answer
    (or refused it: a refusal is final, and audited); a run cut short by a shutdown
    leaves its delivery unacknowledged, so the broker hands it to the next qa.

    Suites run through a small runner of our own (al_qa_runner.c; the drivers' runner
    is internal to deploy/ and has no working directory): fork and execve of the argv from
    services.yaml, no shell, in the directory of services.yaml, in a new process group;
    stdout and stderr on one pipe, kept up to AL_QA_EVIDENCE_MAX_SIZE and drained
    beyond; after the suite exits, or at its timeout (SIGTERM, then SIGKILL half a
    second later), whatever is left of its process group is killed before the leader
    is reaped, so the group id cannot be reused meanwhile. A shutdown request stops a
    running suite the same way. Between fork and execve the child makes only
    async-signal-safe calls; everything it needs is prepared before the fork.

    Security scanners (qa.scanners) run through the same runner after the suites; their
    reports are read by al_qa_scan.c and judged against quality_rules.yaml
    security_scan by al_qa_reports (docs/qa.md "Security scans"). Fail closed: a scanner
    whose report is not read counts as a failure, never as "no findings".

    The JUnit counter is al_qa_junit.c.
*/
#include "agents/al_qa.h"
#include "agents/al_qa_int.h"
#include "base/al_clock.h"
#include "base/al_file.h"
#include "base/al_id.h"
#include "deploy/al_instances.h"
#include "agents/al_agent.h"
#include "agents/al_notify_config.h"
#include "agents/al_qa_scan.h"
#include "deploy/al_artifacts.h"
#include "deploy/al_probe.h"
#include "deploy/al_qa_reports.h"
#include "deploy/al_services.h"
#include "proto/al_codec.h"
#include <assert.h>
#include <czmq.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define S_REPORT_FORMAT     1
#define S_REPORT_WAIT_MS    5000        // one wait for the broker's answer (then again)
#define S_RETRY_MS          5000        // a request that could not be answered, again after
#define S_MAX_INSTANCES     256
#define S_MAX_ISSUES        100
#define S_ISSUE_SIZE        512
#define AL_QA_SMOKE_BODY_MAX    (1024 * 1024)
#define S_REFUSED_DIR       ".refused"  // not a valid deployment id: cannot collide
#define S_REPORT_MAX_SIZE   (8 * 1024 * 1024)   // a report is kept and sent whole

//  What became of a delivery.
typedef enum {
    S_DONE,                         // answered (or nothing to answer): acknowledge it
    S_RETRY,                        // not answered (a file could not be written): keep, retry
    S_STOP                          // interrupted: keep it unacknowledged and stop
} s_outcome_t;

//  ---------------------------------------------------------------------------------
//  Small helpers

//  A formatted string the caller frees. Running out of memory here leaves nothing
//  sensible to do, as for every small allocation of the agent loops.
char *
al_qa_printf (const char *format, ...)
{
    va_list args;
    va_start (args, format);
    char *text = NULL;
    int rc = vasprintf (&text, format, args);
    va_end (args);
    assert (rc >= 0 && text);
    return text;
}

//  Make outside text (an HTTP error, a path, a version cut short by a bound) fit a
//  report line and the wire's text fields: valid UTF-8 without control characters.
//  Each byte of a control character or of an invalid or cut sequence becomes '?'.
void
al_qa_clean (char *text)
{
    unsigned char *p = (unsigned char *) text;
    while (*p) {
        unsigned char lead = *p;
        size_t length = lead < 0x80 ? 1 : lead >= 0xc2 && lead <= 0xdf ? 2
                      : lead >= 0xe0 && lead <= 0xef ? 3 : lead >= 0xf0 && lead <= 0xf4 ? 4 : 0;
        uint32_t value = length == 1 ? lead : length == 2 ? lead & 0x1fu : length == 3 ? lead & 0x0fu : lead & 0x07u;
        bool valid = length > 0;
        for (size_t i = 1; valid && i < length; i++) {
            valid = (p [i] & 0xc0) == 0x80;     // a NUL ends the text: not a continuation
            value = (value << 6) | (p [i] & 0x3fu);
        }
        static const uint32_t minimum [5] = { 0, 0, 0x80, 0x800, 0x10000 };
        valid = valid && value >= minimum [length] && value <= 0x10ffff && !(value >= 0xd800 && value <= 0xdfff)
             && value >= 0x20 && !(value >= 0x7f && value <= 0x9f);
        if (!valid) {
            *p++ = '?';
            continue;
        }
        p += length;
    }
}

//  mkdir -p, new directories 0700. Returns 0 or -1 with "path: reason".
static int
s_mkdir_p (const char *path, char *error, size_t error_size)
{
    return al_file_make_directories (path, 0700, error, error_size);
}

static int
s_write_all (int fd, const char *data, size_t size)
{
    while (size > 0) {
        ssize_t written = write (fd, data, size);
        if (written < 0 && errno == EINTR)
            continue;
        if (written <= 0)
            return -1;
        data += written;
        size -= (size_t) written;
    }
    return 0;
}

//  Write a file whole, 0600, replacing it atomically: a crash leaves the old file or
//  the new one, never a part. Returns 0 or -1 with "path: reason".
static int
s_write_atomic (const char *path, const char *data, size_t size, char *error, size_t error_size)
{
    return al_file_write_atomic (path, data, size, 0600, error, error_size);
}

//  Write a file (0600, truncated, not through a symlink). Returns 0 or -1.
int
al_qa_write_file (const char *path, const char *data, size_t size)
{
    int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -1;
    int rc = s_write_all (fd, data, size);
    if (close (fd) != 0)
        rc = -1;
    return rc;
}

//  Read a regular file of at most max bytes into *data_p (NUL-terminated; caller frees).
//  Returns 0, or -1 with "path: reason"; *missing_p (MAY be NULL) says it did not exist.
int
al_qa_read_regular (const char *path, size_t max, char **data_p, size_t *size_p, bool *missing_p,
                char *error, size_t error_size)
{
    *data_p = NULL;
    *size_p = 0;
    if (missing_p)
        *missing_p = false;
    //  O_NONBLOCK: a FIFO planted at the path must not hang us; it is refused below.
    int fd = open (path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        if (missing_p)
            *missing_p = errno == ENOENT;
        snprintf (error, error_size, "%s: cannot open: %s", path, strerror (errno));
        return -1;
    }
    int rc = -1;
    char *data = NULL;
    struct stat info;
    if (fstat (fd, &info) != 0 || !S_ISREG (info.st_mode)) {
        snprintf (error, error_size, "%s: not a regular file", path);
        goto cleanup;
    }
    //  Read up to one byte past the limit, whatever the size said: files grow.
    size_t size = 0, capacity = info.st_size > 0 && (size_t) info.st_size <= max ? (size_t) info.st_size + 1 : 65536;
    if (capacity > max + 1)
        capacity = max + 1;
    data = malloc (capacity + 1);
    assert (data);
    while (true) {
        if (size == capacity) {
            if (capacity > max) {
                snprintf (error, error_size, "%s: larger than %zu bytes", path, max);
                goto cleanup;
            }
            capacity = capacity * 2 > max + 1 ? max + 1 : capacity * 2;
            data = realloc (data, capacity + 1);
            assert (data);
        }
        ssize_t got = read (fd, data + size, capacity - size);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            snprintf (error, error_size, "%s: cannot read: %s", path, strerror (errno));
            goto cleanup;
        }
        if (got == 0)
            break;
        size += (size_t) got;
    }
    data [size] = '\0';
    *data_p = data;
    *size_p = size;
    data = NULL;
    rc = 0;
cleanup:
    free (data);
    close (fd);
    return rc;
}

//  ---------------------------------------------------------------------------------
//  The instances running in an environment

typedef struct {
    char id [64];
    char version [128];
    bool has_version;
    int port;
} s_instance_t;

//  Read the process driver's registry of (service, env). Returns the number of
//  instances, or -1 with detail (the file is missing, or does not read as one).
static int
s_registry (const char *path, s_instance_t *instances, size_t max, char *detail, size_t detail_size)
{
    al_instance_record_t *records = NULL;
    size_t count = 0;
    bool found = false;
    if (al_instances_read (path, AL_INSTANCES_TO_REACH, &records, &count, &found, detail, detail_size) != 0)
        return -1;
    if (!found) {
        snprintf (detail, detail_size, "%.900s: not found (nothing was deployed there)", path);
        return -1;
    }
    if (count > max)
        count = max;
    for (size_t i = 0; i < count; i++) {
        s_instance_t *instance = &instances [i];
        snprintf (instance->id, sizeof instance->id, "%s", records [i].id);
        al_qa_clean (instance->id);
        instance->port = records [i].port;
        instance->has_version = records [i].has_version;
        snprintf (instance->version, sizeof instance->version, "%s", records [i].version);
        al_qa_clean (instance->version);
    }
    free (records);
    return (int) count;
}

//  ---------------------------------------------------------------------------------
//  The agent

typedef struct {
    const al_config_t *config;
    al_agent_t *agent;
    al_services_t *services;
    char *qa_dir;                   // STATE_DIR/qa
    char *deploy_dir;               // STATE_DIR/deploy (the driver registries)
    char *suite_dir;                // the directory of services.yaml: where suites run
    char **hidden;                  // variables a suite does not inherit (secret sources)
    size_t hidden_count;
} s_qa_t;

//  What one QA run found, as it builds the report.
typedef struct {
    json_t *checks;
    json_t *suites;
    json_t *issues;
    size_t issues_dropped;
    json_t *security_scan;          // NULL: no scanner configured
} s_findings_t;

static void
s_issue (s_findings_t *findings, const char *format, ...) __attribute__ ((format (printf, 2, 3)));

static void
s_issue (s_findings_t *findings, const char *format, ...)
{
    if (json_array_size (findings->issues) >= S_MAX_ISSUES) {
        findings->issues_dropped++;
        return;
    }
    char text [S_ISSUE_SIZE];
    va_list args;
    va_start (args, format);
    vsnprintf (text, sizeof text, format, args);
    va_end (args);
    al_qa_clean (text);
    json_array_append_new (findings->issues, json_string (text));
}

static void
s_check (s_findings_t *findings, const char *name, const char *instance, bool ok, const char *detail)
{
    char clean [S_ISSUE_SIZE];
    snprintf (clean, sizeof clean, "%s", detail);
    al_qa_clean (clean);
    json_array_append_new (findings->checks, json_pack ("{s:s, s:s, s:b, s:s}", "name", name,
                                                        "instance", instance, "ok", ok, "detail", clean));
}

//  "staging", ...; "unspecified" for an environment without a name.
static const char *
s_env_name (Airlock__Environment env)
{
    const char *name = al_environment_name (env);
    return name ? name : "unspecified";
}

//  The environment of a suite: the agent's, without the variables services.yaml names
//  as secret sources and without AIRLOCK_*, plus what the suite needs to know.
static char **
s_suite_env (s_qa_t *self, const al_envelope_t *envelope, const al_service_suite_t *suite,
             const char *urls, const char *evidence_dir)
{
    const Airlock__QaRequest *request = envelope->qa_request;
    size_t count = 0;
    while (environ [count])
        count++;
    char **env = calloc (count + 16, sizeof *env);
    assert (env);
    size_t used = 0;
    for (size_t i = 0; i < count; i++) {
        const char *equal = strchr (environ [i], '=');
        size_t length = equal ? (size_t) (equal - environ [i]) : strlen (environ [i]);
        bool hidden = strncmp (environ [i], "AIRLOCK_", 8) == 0;
        for (size_t j = 0; j < self->hidden_count && !hidden; j++)
            hidden = strlen (self->hidden [j]) == length && strncmp (environ [i], self->hidden [j], length) == 0;
        if (!hidden)
            env [used++] = al_qa_printf ("%s", environ [i]);
    }
    env [used++] = al_qa_printf ("AIRLOCK_SERVICE=%s", request->service);
    env [used++] = al_qa_printf ("AIRLOCK_VERSION=%s", request->version);
    env [used++] = al_qa_printf ("AIRLOCK_DIGEST=%s", request->artifact_sha256);
    env [used++] = al_qa_printf ("AIRLOCK_ENV=%s", s_env_name (envelope->environment));
    env [used++] = al_qa_printf ("AIRLOCK_DEPLOYMENT_ID=%s", envelope->deployment_id);
    env [used++] = al_qa_printf ("AIRLOCK_QA_SUITE=%s", suite->name);
    env [used++] = al_qa_printf ("AIRLOCK_QA_URLS=%s", urls);
    env [used++] = al_qa_printf ("AIRLOCK_QA_EVIDENCE_DIR=%s", evidence_dir);
    if (suite->junit)
        env [used++] = al_qa_printf ("AIRLOCK_QA_JUNIT=%s", suite->junit);
    env [used] = NULL;
    return env;
}

static void
s_strv_free (char ***strv_p)
{
    char **strv = *strv_p;
    for (size_t i = 0; strv && strv [i]; i++)
        free (strv [i]);
    free (strv);
    *strv_p = NULL;
}

//  Health, version and smoke checks of every instance of svc in the environment.
//  Fills urls (space-separated base URLs, for the suites; caller frees).
static void
s_check_instances (s_qa_t *self, const al_envelope_t *envelope, const al_service_t *svc,
                   s_findings_t *findings, json_t *instances_json, char **urls_p)
{
    const Airlock__QaRequest *request = envelope->qa_request;
    const char *env_name = s_env_name (envelope->environment);
    char registry [512];
    al_instances_path (self->deploy_dir, svc->name, env_name, registry, sizeof registry);
    s_instance_t *instances = calloc (S_MAX_INSTANCES, sizeof *instances);
    assert (instances);
    char detail [1024];
    int count = s_registry (registry, instances, S_MAX_INSTANCES, detail, sizeof detail);
    char *urls = al_qa_printf ("%s", "");
    if (count <= 0) {
        if (count == 0)
            snprintf (detail, sizeof detail, "%s: no instance is running", registry);
        s_check (findings, "health.instances", "", false, detail);
        s_issue (findings, "no instance of %s runs in %s: %s", svc->name, env_name, detail);
    }
    al_qa_body_t body = { .data = malloc (AL_QA_SMOKE_BODY_MAX) };
    assert (body.data);
    for (int i = 0; i < count; i++) {
        const s_instance_t *instance = &instances [i];
        char *base = al_qa_printf ("http://%s:%d", svc->host, instance->port);
        char *joined = al_qa_printf ("%s%s%s", urls, *urls ? " " : "", base);
        free (urls);
        urls = joined;
        json_array_append_new (instances_json, json_pack ("{s:s, s:s, s:s}", "id", instance->id, "url", base,
                                                          "version", instance->version));
        //  It runs what was asked for.
        bool same = instance->has_version && strcmp (instance->version, request->version) == 0;
        if (instance->has_version)
            snprintf (detail, sizeof detail, "runs %s", instance->version);
        else
            snprintf (detail, sizeof detail, "the registry does not say which version it runs");
        s_check (findings, "health.version", instance->id, same, detail);
        if (!same)
            s_issue (findings, "instance %s: %s, the request is for %s", instance->id, detail, request->version);
        //  Liveness and readiness.
        const char *paths [2] = { svc->liveness_path, svc->readiness_path };
        const char *names [2] = { "liveness", "readiness" };
        for (int kind = 0; kind < 2; kind++) {
            char *url = al_qa_printf ("%s%s", base, paths [kind]);
            al_probe_result_t probe;
            al_probe_http (url, svc->probe_timeout_ms, &probe);
            char name [32];
            snprintf (name, sizeof name, "health.%s", names [kind]);
            snprintf (detail, sizeof detail, "GET %s: %s", paths [kind], probe.detail);
            s_check (findings, name, instance->id, probe.ok, detail);
            if (!probe.ok)
                s_issue (findings, "instance %s: %s failed: %s", instance->id, names [kind], detail);
            free (url);
        }
        //  The smoke checks.
        for (size_t k = 0; k < svc->qa_smoke_count; k++) {
            const al_service_smoke_t *smoke = &svc->qa_smoke [k];
            char *url = al_qa_printf ("%s%s", base, smoke->path);
            body.size = 0;
            body.cut = false;
            char why [512];
            long status = al_qa_http_get (url, svc->qa_timeout_ms, &body, why, sizeof why);
            bool status_ok = smoke->status ? status == smoke->status : status >= 200 && status <= 299;
            bool body_ok = !smoke->body_contains
                        || memmem (body.data, body.size, smoke->body_contains, strlen (smoke->body_contains));
            char expected [32];
            if (smoke->status)
                snprintf (expected, sizeof expected, "%d", smoke->status);
            else
                snprintf (expected, sizeof expected, "2xx");
            if (status == 0)
                snprintf (detail, sizeof detail, "GET %s: %s", smoke->path, why);
            else
            if (!status_ok)
                snprintf (detail, sizeof detail, "GET %s: status %ld, expected %s", smoke->path, status, expected);
            else
            if (!body_ok)
                snprintf (detail, sizeof detail, "GET %s: status %ld, but the body%s does not contain \"%.200s\"",
                          smoke->path, status, body.cut ? " (its first MiB)" : "", smoke->body_contains);
            else
                snprintf (detail, sizeof detail, "GET %s: status %ld%s", smoke->path, status,
                          smoke->body_contains ? ", body contains the text" : "");
            char name [64];
            snprintf (name, sizeof name, "smoke.%s", smoke->name);
            bool ok = status != 0 && status_ok && body_ok;
            s_check (findings, name, instance->id, ok, detail);
            if (!ok)
                s_issue (findings, "smoke check %s on %s: %s", smoke->name, instance->id, detail);
            free (url);
        }
        free (base);
    }
    free (body.data);
    free (instances);
    *urls_p = urls;
}

//  Run one suite and record its result. Returns false when a shutdown stopped it.
static bool
s_suite (s_qa_t *self, const al_envelope_t *envelope, const al_service_suite_t *suite, const char *urls,
         const char *evidence_dir, s_findings_t *findings)
{
    if (al_agent_interrupted ())
        return false;
    char *evidence = al_qa_printf ("%s/%s.log", evidence_dir, suite->name);
    char *junit_copy = al_qa_printf ("%s/%s.junit.xml", evidence_dir, suite->name);
    char error [1024];
    //  A report left by an earlier run must not be counted for this one.
    bool junit_stale = false;
    if (suite->junit && unlink (suite->junit) != 0 && errno != ENOENT) {
        junit_stale = true;
        snprintf (error, sizeof error, "%s", strerror (errno));
    }
    char **env = s_suite_env (self, envelope, suite, urls, evidence_dir);
    al_qa_run_t run;
    zsys_info ("qa: %s: suite %s started", envelope->deployment_id, suite->name);
    al_qa_run_suite (suite, self->suite_dir, env, evidence, &run);
    s_strv_free (&env);
    bool stopped = run.interrupted;
    if (stopped)
        goto cleanup;

    al_qa_junit_t counts = { 0 };
    bool from_junit = false;
    if (!run.started)
        s_issue (findings, "suite %s: cannot run: %s", suite->name, run.error);
    else
    if (junit_stale)
        s_issue (findings, "suite %s: cannot remove the previous JUnit report %s (%s): its counts are not used",
                 suite->name, suite->junit, error);
    else
    if (suite->junit) {
        char *data = NULL;
        size_t size = 0;
        bool missing = false;
        if (al_qa_read_regular (suite->junit, AL_QA_JUNIT_MAX_SIZE, &data, &size, &missing, error, sizeof error) == 0) {
            if (al_qa_write_file (junit_copy, data, size) != 0)
                zsys_warning ("qa: %s: cannot keep a copy: %s", junit_copy, strerror (errno));
            if (al_qa_junit_count (suite->junit, data, size, &counts, error, sizeof error) == 0)
                from_junit = true;
            else
                s_issue (findings, "suite %s: its JUnit report does not read: %s", suite->name, error);
        }
        else
        if (missing && !run.timed_out)
            s_issue (findings, "suite %s: wrote no JUnit report at %s", suite->name, suite->junit);
        else
        if (!missing)
            s_issue (findings, "suite %s: its JUnit report does not read: %s", suite->name, error);
        free (data);
    }
    if (!from_junit) {
        //  One test, passed when the suite exited 0 in time.
        bool passed = run.started && !run.timed_out && run.exit_code == 0;
        counts = (al_qa_junit_t) { .tests = 1, .passed = passed ? 1 : 0, .failed = passed ? 0 : 1 };
    }
    if (from_junit && counts.failed)
        s_issue (findings, "suite %s: %u of %u tests failed", suite->name, counts.failed, counts.tests);
    if (run.timed_out)
        s_issue (findings, "suite %s: timed out after %d ms; its process group was killed", suite->name,
                 suite->timeout_ms);
    else
    if (run.started && run.exit_code > 0)
        s_issue (findings, "suite %s: exited with code %d", suite->name, run.exit_code);
    else
    if (run.started && run.exit_code < 0)
        s_issue (findings, "suite %s: killed by signal %d", suite->name, -run.exit_code);
    if (from_junit && counts.tests == 0)
        s_issue (findings, "suite %s: ran no tests", suite->name);

    json_t *result = json_pack ("{s:s, s:i, s:i, s:i, s:i, s:s}", "name", suite->name,
                                "passed", (json_int_t) counts.passed, "failed", (json_int_t) counts.failed,
                                "skipped", (json_int_t) counts.skipped, "tests", (json_int_t) counts.tests,
                                "evidence", evidence);
    if (!result) {
        //  Only a path that is not UTF-8 (the state or services.yaml directory) gets here.
        s_issue (findings, "suite %s: its result cannot be recorded (a path is not UTF-8)", suite->name);
        goto cleanup;
    }
    json_object_set_new (result, "counted_from", json_string (from_junit ? "junit" : "exit code"));
    json_object_set_new (result, "junit", suite->junit ? json_string (suite->junit) : json_null ());
    json_object_set_new (result, "exit_code", run.started ? json_integer (run.exit_code) : json_null ());
    json_object_set_new (result, "timed_out", json_boolean (run.timed_out));
    json_object_set_new (result, "duration_ms", json_integer ((json_int_t) run.duration_ms));
    json_array_append_new (findings->suites, result);
    zsys_info ("qa: %s: suite %s: %u/%u passed, %u failed, %u skipped%s", envelope->deployment_id, suite->name,
               counts.passed, counts.tests, counts.failed, counts.skipped, run.timed_out ? " (timed out)" : "");
cleanup:
    free (junit_copy);
    free (evidence);
    return !stopped;
}

//  Run one security scanner and add what it found to section's "scanners" and totals.
//  False when its findings cannot be trusted (it did not run, timed out, was killed,
//  exited above 1, or its report does not read). Sets *stopped on a shutdown.
static bool
s_scanner (s_qa_t *self, const al_envelope_t *envelope, const al_service_scanner_t *scanner, const char *urls,
           const char *evidence_dir, s_findings_t *findings, json_t *section, al_qa_scan_totals_t *totals,
           bool *stopped)
{
    char *evidence = al_qa_printf ("%s/scan-%s.log", evidence_dir, scanner->name);
    char *copy = al_qa_printf ("%s/scan-%s.json", evidence_dir, scanner->name);
    char error [1024] = "";
    bool ok = false;
    char *data = NULL;
    //  A report left by an earlier run must never be read for this one.
    if (unlink (scanner->output) != 0 && errno != ENOENT) {
        s_issue (findings, "scanner %s: cannot remove the previous report %s (%s): not run", scanner->name,
                 scanner->output, strerror (errno));
        goto cleanup;
    }
    //  The suites' runner, as is: a scanner is a command with a report.
    al_service_suite_t as_suite = { .name = scanner->name, .argv = scanner->argv, .timeout_ms = scanner->timeout_ms };
    char **env = s_suite_env (self, envelope, &as_suite, urls, evidence_dir);
    al_qa_run_t run;
    zsys_info ("qa: %s: scanner %s started", envelope->deployment_id, scanner->name);
    al_qa_run_suite (&as_suite, self->suite_dir, env, evidence, &run);
    s_strv_free (&env);
    if ((*stopped = run.interrupted))
        goto cleanup;
    al_qa_scan_result_t *result = calloc (1, sizeof *result);
    assert (result);
    size_t size = 0;
    bool missing = false, read = false;
    if (!run.started)
        s_issue (findings, "scanner %s: cannot run: %s", scanner->name, run.error);
    else
    if (run.timed_out)
        s_issue (findings, "scanner %s: timed out after %d ms; its process group was killed", scanner->name,
                 scanner->timeout_ms);
    else
    if (run.exit_code < 0 || run.exit_code > 1)
        //  0: no findings, 1: findings (bandit, semgrep --error, ...); anything else a failure.
        s_issue (findings, "scanner %s: %s %d: its findings are not trusted", scanner->name,
                 run.exit_code < 0 ? "killed by signal" : "exited with code",
                 run.exit_code < 0 ? -run.exit_code : run.exit_code);
    else
    if (al_qa_read_regular (scanner->output, AL_QA_SCAN_MAX_SIZE, &data, &size, &missing, error, sizeof error) != 0)
        s_issue (findings, "scanner %s: %s", scanner->name,
                 missing ? "wrote no report: its findings are unknown" : error);
    else {
        if (al_qa_write_file (copy, data, size) != 0)
            zsys_warning ("qa: %s: cannot keep a copy: %s", copy, strerror (errno));
        al_qa_scan_format_t format = scanner->format == AL_SERVICE_SCAN_SARIF ? AL_QA_SCAN_SARIF
                                                                               : AL_QA_SCAN_BANDIT_JSON;
        if (al_qa_scan_read (scanner->output, data, size, format, result, error, sizeof error) != 0)
            s_issue (findings, "scanner %s: its report does not read: %s", scanner->name, error);
        else
        if (result->tool_errors)
            s_issue (findings, "scanner %s: %s reports %u error(s) (files it could not scan): its findings are "
                     "incomplete", scanner->name, result->tool, result->tool_errors);
        else
            read = true;
    }
    json_t *counts = json_object ();
    for (int i = 0; i < AL_QA_SCAN_SEVERITIES; i++)
        json_object_set_new (counts, al_qa_scan_severity_name ((al_qa_scan_severity_t) i),
                             json_integer ((json_int_t) result->counts [i]));
    json_t *top = json_array ();
    for (size_t i = 0; i < result->top_count; i++) {
        const al_qa_scan_finding_t *finding = &result->top [i];
        json_array_append_new (top, json_pack ("{s:s, s:s, s:s, s:i, s:s}",
                               "severity", al_qa_scan_severity_name (finding->severity), "rule", finding->rule,
                               "file", finding->file, "line", (json_int_t) finding->line,
                               "message", finding->message));
    }
    json_t *entry = json_pack ("{s:s, s:s, s:s, s:o, s:o, s:b}", "name", scanner->name,
                               "format", scanner->format_name, "tool", result->tool, "counts", counts,
                               "top", top, "read", read);
    if (entry) {
        json_object_set_new (entry, "output", json_string (scanner->output));
        json_object_set_new (entry, "evidence", json_string (evidence));
        json_object_set_new (entry, "exit_code", run.started ? json_integer (run.exit_code) : json_null ());
        json_object_set_new (entry, "tool_errors", json_integer (result->tool_errors));
        json_array_append_new (json_object_get (section, "scanners"), entry);
    }
    totals->critical += result->counts [AL_QA_SCAN_CRITICAL];
    totals->high += result->counts [AL_QA_SCAN_HIGH];
    totals->medium += result->counts [AL_QA_SCAN_MEDIUM];
    totals->low += result->counts [AL_QA_SCAN_LOW];
    totals->info += result->counts [AL_QA_SCAN_INFO];
    zsys_info ("qa: %s: scanner %s: %s, %u critical, %u high, %u medium, %u low", envelope->deployment_id,
               scanner->name, read ? "read" : "FAILED", result->counts [AL_QA_SCAN_CRITICAL],
               result->counts [AL_QA_SCAN_HIGH], result->counts [AL_QA_SCAN_MEDIUM], result->counts [AL_QA_SCAN_LOW]);
    free (result);
    ok = read;
cleanup:
    free (data);
    free (copy);
    free (evidence);
    return ok;
}

//  Every scanner of svc, judged against quality_rules.yaml security_scan (the policy as
//  loaded now). Fails closed: no policy, a scanner that fails or totals over a limit is
//  an issue. Returns false when a shutdown stopped it.
static bool
s_scanners (s_qa_t *self, const al_envelope_t *envelope, const al_service_t *svc, const char *urls,
            const char *evidence_dir, s_findings_t *findings)
{
    if (svc->qa_scanner_count == 0)
        return true;
    json_t *section = json_pack ("{s:[]}", "scanners");
    findings->security_scan = section;
    al_qa_scan_totals_t totals = { 0 };
    bool complete = true, stopped = false;
    for (size_t i = 0; i < svc->qa_scanner_count && !stopped && !al_agent_interrupted (); i++)
        if (!s_scanner (self, envelope, &svc->qa_scanners [i], urls, evidence_dir, findings, section, &totals,
                        &stopped))
            complete = false;
    if (stopped || al_agent_interrupted ())
        return false;
    al_policy_errors_t *errors = NULL;
    al_policy_t *policy = al_policy_load (al_config_policy_dir (self->config), &errors);
    //  Without the policy the strictest limits: nothing is let through unjudged.
    al_policy_scan_limits_t none = { 0, 0, 0, 0 };
    const al_policy_scan_limits_t *limits = policy ? al_policy_scan_limits (policy) : &none;
    if (!policy)
        s_issue (findings, "security scan: the policy %s does not load (%s): its limits are unknown",
                 al_config_policy_dir (self->config),
                 errors && al_policy_errors_count (errors) ? al_policy_errors_at (errors, 0) : "no detail");
    char summary [512];
    if (!al_qa_reports_scan_judge (section, &totals, complete, limits, summary, sizeof summary))
        s_issue (findings, "security scan: %s", summary);
    al_policy_destroy (&policy);
    al_policy_errors_destroy (&errors);
    return true;
}

//  The report's fixed part: what the request was about.
static json_t *
s_report_new (const al_envelope_t *envelope)
{
    const Airlock__QaRequest *request = envelope->qa_request;
    uint64_t now = (uint64_t) al_clock_wall_ms ();
    char time_text [40];
    al_clock_wall_iso8601 ((int64_t) now, time_text, sizeof time_text);
    return json_pack ("{s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I}",
                      "format", S_REPORT_FORMAT, "deployment_id", envelope->deployment_id ? envelope->deployment_id : "",
                      "service", request->service, "version", request->version,
                      "artifact_sha256", request->artifact_sha256,
                      "environment", s_env_name (envelope->environment),
                      "requested_by", envelope->sender ? envelope->sender->identity : "",
                      "request_message_id", envelope->message_id ? envelope->message_id : "",
                      "time", time_text, "time_ms", (json_int_t) now);
}

//  Seal a report: issues, recommendation, approval.
static void
s_report_seal (json_t *report, s_findings_t *findings)
{
    if (findings->issues_dropped)
        s_issue (findings, "... and %zu more issues", findings->issues_dropped);
    bool approved = json_array_size (findings->issues) == 0;
    json_object_set_new (report, "checks", findings->checks);
    json_object_set_new (report, "suites", findings->suites);
    if (findings->security_scan)
        json_object_set_new (report, "security_scan", findings->security_scan);
    json_object_set_new (report, "issues_found", findings->issues);
    json_object_set_new (report, "recommendation", json_string (approved ? "ready" : "needs fixes"));
    json_object_set_new (report, "approved", json_boolean (approved));
}

//  Run the whole QA of a request. Returns the report, or NULL when a shutdown stopped it.
static json_t *
s_run_qa (s_qa_t *self, const al_envelope_t *envelope, const char *dir)
{
    const Airlock__QaRequest *request = envelope->qa_request;
    json_t *report = s_report_new (envelope);
    s_findings_t findings = { .checks = json_array (), .suites = json_array (), .issues = json_array () };
    json_t *instances = json_array ();
    json_object_set_new (report, "instances", instances);
    char *urls = NULL;
    char *evidence_dir = al_qa_printf ("%s/evidence", dir);
    bool stopped = false;
    char error [512];
    const al_service_t *svc = al_services_find (self->services, request->service);
    if (!svc) {
        s_issue (&findings, "service %s is not in %s: nothing to check", request->service,
                 al_services_path (self->services));
        goto seal;
    }
    if (s_mkdir_p (evidence_dir, error, sizeof error) != 0)
        s_issue (&findings, "evidence directory: %s", error);
    s_check_instances (self, envelope, svc, &findings, instances, &urls);

    //  The suites: every configured one, or those the request names (by name only).
    const al_service_suite_t **selected = calloc (svc->qa_suite_count + 1, sizeof *selected);
    assert (selected);
    size_t count = 0;
    if (request->n_suites == 0)
        for (size_t i = 0; i < svc->qa_suite_count; i++)
            selected [count++] = &svc->qa_suites [i];
    for (size_t i = 0; i < request->n_suites; i++) {
        const al_service_suite_t *suite = NULL;
        for (size_t j = 0; j < svc->qa_suite_count && !suite; j++)
            if (strcmp (svc->qa_suites [j].name, request->suites [i]) == 0)
                suite = &svc->qa_suites [j];
        if (!suite) {
            char configured [256] = "";
            for (size_t j = 0; j < svc->qa_suite_count; j++) {
                size_t used = strlen (configured);
                snprintf (configured + used, sizeof configured - used, "%s%s", j ? ", " : "", svc->qa_suites [j].name);
            }
            s_issue (&findings, "suite %.64s: not configured for %s, not run (configured: %s)", request->suites [i],
                     svc->name, svc->qa_suite_count ? configured : "none");
            continue;
        }
        bool again = false;
        for (size_t j = 0; j < count && !again; j++)
            again = selected [j] == suite;
        if (!again)
            selected [count++] = suite;
    }
    for (size_t i = 0; i < count && !stopped; i++)
        stopped = !s_suite (self, envelope, selected [i], urls, evidence_dir, &findings);
    free (selected);
    if (!stopped)
        stopped = !s_scanners (self, envelope, svc, urls, evidence_dir, &findings);
seal:
    free (urls);
    free (evidence_dir);
    s_report_seal (report, &findings);
    if (stopped) {
        json_decref (report);
        return NULL;
    }
    return report;
}

//  Write a report (pretty JSON, one final newline) atomically.
static int
s_save (json_t *report, const char *path, char *error, size_t error_size)
{
    char *text = json_dumps (report, JSON_INDENT (2));
    if (!text) {
        snprintf (error, error_size, "%s: cannot serialise the report", path);
        return -1;
    }
    size_t size = strlen (text);
    char *line = al_qa_printf ("%s\n", text);
    free (text);
    int rc = s_write_atomic (path, line, size + 1, error, error_size);
    free (line);
    return rc;
}

//  "file://" + path, percent-encoding what a URI may not hold as is.
static char *
s_file_uri (const char *path)
{
    size_t length = strlen (path);
    char *uri = malloc (7 + length * 3 + 1);
    assert (uri);
    char *out = stpcpy (uri, "file://");
    for (const unsigned char *c = (const unsigned char *) path; *c; c++) {
        if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')
        ||  strchr ("/._~-", *c))
            *out++ = (char) *c;
        else
            out += sprintf (out, "%%%02X", *c);
    }
    *out = '\0';
    return uri;
}

//  Post and wait until the broker answers (retransmitted with the same id meanwhile).
static s_outcome_t
s_send_recorded (s_qa_t *self, const al_envelope_t *envelope)
{
    char id [AL_AGENT_ID_SIZE];
    char error [256] = "";
    al_agent_status_t status = al_agent_post (self->agent, envelope, -1, id, error, sizeof error);
    if (status != AL_AGENT_QUEUED) {
        zsys_error ("qa: %s: the report was not sent: %s: %s", envelope->deployment_id,
                    al_agent_status_name (status), error);
        return S_DONE;          // it cannot be sent as it is: retrying would not help
    }
    al_agent_result_t result;
    while (true) {
        status = al_agent_wait (self->agent, id, S_REPORT_WAIT_MS, &result);
        if (status == AL_AGENT_ACKED)
            return S_DONE;
        if (status != AL_AGENT_TIMEOUT) {
            zsys_error ("qa: %s: the broker did not record the report %s: %s: %s", envelope->deployment_id, id,
                        al_agent_status_name (status), result.reason);
            return S_DONE;      // a refusal is final (and the broker audited it)
        }
        if (al_agent_interrupted ())
            return S_STOP;
        zsys_warning ("qa: %s: the broker has not recorded %s yet; waiting", envelope->deployment_id, id);
    }
}

//  Answer request with the report at path, rebuilt from the file as written.
static s_outcome_t
s_answer (s_qa_t *self, const al_envelope_t *request, const char *path, const char *message_id)
{
    //  The bytes are read once: they are kept by digest in the report store (what
    //  pre-flight opens), and the answer is built from that very buffer, so the digest
    //  the approvers sign names exactly the report the orchestrator was told about.
    char digest [65];
    char error [512];
    char *bytes = NULL;
    size_t size = 0;
    if (al_qa_read_regular (path, S_REPORT_MAX_SIZE, &bytes, &size, NULL, error, sizeof error) != 0) {
        zsys_error ("qa: %s", error);
        return S_RETRY;
    }
    char *store = al_qa_reports_dir (al_config_state_dir (self->config));
    int kept = store? al_qa_reports_put (store, bytes, size, digest, error, sizeof error): -1;
    if (kept != 0)
        zsys_error ("qa: %s: the report cannot be kept by digest: %s", path, store? error: "out of memory");
    free (store);
    if (kept != 0) {
        free (bytes);
        return S_RETRY;
    }
    json_error_t json_error;
    json_t *root = json_loadb (bytes, size, JSON_REJECT_DUPLICATES, &json_error);
    free (bytes);
    if (!root) {
        zsys_error ("qa: %s: line %d: %s", path, json_error.line, json_error.text);
        return S_RETRY;
    }
    json_t *suites = json_object_get (root, "suites");
    json_t *issues = json_object_get (root, "issues_found");
    size_t suite_count = json_array_size (suites), issue_count = json_array_size (issues);
    Airlock__SuiteResult *results = calloc (suite_count + 1, sizeof *results);
    Airlock__SuiteResult **result_list = calloc (suite_count + 1, sizeof *result_list);
    char **uris = calloc (suite_count + 1, sizeof *uris);
    char **issue_list = calloc (issue_count + 1, sizeof *issue_list);
    assert (results && result_list && uris && issue_list);
    for (size_t i = 0; i < suite_count; i++) {
        json_t *suite = json_array_get (suites, i);
        airlock__suite_result__init (&results [i]);
        results [i].name = (char *) json_string_value (json_object_get (suite, "name"));
        results [i].passed = (uint32_t) json_integer_value (json_object_get (suite, "passed"));
        results [i].failed = (uint32_t) json_integer_value (json_object_get (suite, "failed"));
        results [i].skipped = (uint32_t) json_integer_value (json_object_get (suite, "skipped"));
        const char *evidence = json_string_value (json_object_get (suite, "evidence"));
        uris [i] = evidence ? s_file_uri (evidence) : NULL;
        results [i].evidence_uri = uris [i] ? uris [i] : (char *) "";
        if (!results [i].name)
            results [i].name = (char *) "?";
        result_list [i] = &results [i];
    }
    //  The health and smoke checks count as one more suite, "checks", so that the
    //  approver's "Tests Passed x/y" includes them; their details are in the report.
    json_t *checks = json_object_get (root, "checks");
    if (json_array_size (checks) > 0) {
        Airlock__SuiteResult *result = &results [suite_count];
        airlock__suite_result__init (result);
        result->name = (char *) "checks";
        size_t index;
        json_t *check;
        json_array_foreach (checks, index, check) {
            if (json_is_true (json_object_get (check, "ok")))
                result->passed++;
            else
                result->failed++;
        }
        uris [suite_count] = s_file_uri (path);
        result->evidence_uri = uris [suite_count] ? uris [suite_count] : (char *) "";
        result_list [suite_count++] = result;
    }
    for (size_t i = 0; i < issue_count; i++) {
        const char *issue = json_string_value (json_array_get (issues, i));
        issue_list [i] = (char *) (issue ? issue : "?");
    }
    Airlock__QaReport report = AIRLOCK__QA_REPORT__INIT;
    report.service = (char *) json_string_value (json_object_get (root, "service"));
    report.version = (char *) json_string_value (json_object_get (root, "version"));
    report.artifact_sha256 = (char *) json_string_value (json_object_get (root, "artifact_sha256"));
    report.n_suites = suite_count;
    report.suites = result_list;
    report.approved = json_is_true (json_object_get (root, "approved"));
    report.report_sha256 = digest;
    report.n_issues_found = issue_count;
    report.issues_found = issue_list;
    al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
    envelope.message_id = (char *) message_id;
    envelope.correlation_id = request->message_id;
    envelope.deployment_id = request->deployment_id;
    envelope.environment = request->environment;
    //  The report's own time: a resend is byte for byte the first send.
    envelope.timestamp_ms = (uint64_t) json_integer_value (json_object_get (root, "time_ms"));
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_QA_REPORT;
    envelope.qa_report = &report;
    s_outcome_t outcome = S_DONE;
    if (!report.service || !report.version || !report.artifact_sha256) {
        zsys_error ("qa: %s: service, version or artifact_sha256 missing: not sent", path);
        outcome = S_RETRY;
    }
    else {
        outcome = s_send_recorded (self, &envelope);
        if (outcome == S_DONE)
            zsys_info ("qa: %s: QaReport %s sent: %s, %zu issue(s), report %s", request->deployment_id, message_id,
                       report.approved ? "approved" : "not approved", issue_count, digest);
    }
    for (size_t i = 0; i < suite_count; i++)
        free (uris [i]);
    free (uris);
    free (issue_list);
    free (result_list);
    free (results);
    json_decref (root);
    return outcome;
}

//  A request QA does not run: answer approved=false with why (kept under .refused).
static s_outcome_t
s_refuse (s_qa_t *self, const al_envelope_t *envelope, const char *why)
{
    zsys_warning ("qa: refused the QaRequest %s (deployment %s) from %s: %s", envelope->message_id,
                  envelope->deployment_id, envelope->sender ? envelope->sender->identity : "?", why);
    char error [1024];
    char *dir = al_qa_printf ("%s/%s/%" PRIu64, self->qa_dir, S_REFUSED_DIR, envelope->delivery_id);
    char *path = al_qa_printf ("%s/qa_report.json", dir);
    char *message_id = al_qa_printf ("qa-refused-%" PRIu64, envelope->delivery_id);
    s_outcome_t outcome = S_RETRY;
    if (access (path, F_OK) != 0) {
        json_t *report = s_report_new (envelope);
        s_findings_t findings = { .checks = json_array (), .suites = json_array (), .issues = json_array () };
        s_issue (&findings, "%s", why);
        s_report_seal (report, &findings);
        json_object_set_new (report, "refused", json_true ());
        int rc = s_mkdir_p (dir, error, sizeof error);
        if (rc == 0)
            rc = s_save (report, path, error, sizeof error);
        json_decref (report);
        if (rc != 0) {
            zsys_error ("qa: cannot write the refusal: %s", error);
            goto cleanup;
        }
    }
    outcome = s_answer (self, envelope, path, message_id);
cleanup:
    free (message_id);
    free (path);
    free (dir);
    return outcome;
}

static const char *
s_json_text (json_t *object, const char *key)
{
    const char *text = json_string_value (json_object_get (object, key));
    return text ? text : "?";
}

//  Does the stored report answer this request (same release, same environment)?
static bool
s_same_request (json_t *stored, const al_envelope_t *envelope)
{
    const Airlock__QaRequest *request = envelope->qa_request;
    const char *fields [4][2] = {
        { "service", request->service }, { "version", request->version },
        { "artifact_sha256", request->artifact_sha256 },
        { "environment", s_env_name (envelope->environment) },
    };
    for (size_t i = 0; i < 4; i++) {
        const char *value = json_string_value (json_object_get (stored, fields [i][0]));
        if (!value || strcmp (value, fields [i][1]) != 0)
            return false;
    }
    return true;
}

static s_outcome_t
s_handle (s_qa_t *self, const al_envelope_t *envelope)
{
    if (envelope->body_case != AIRLOCK__ENVELOPE__BODY_QA_REQUEST) {
        zsys_info ("qa: ignored a %s from %s", al_msg_type_name ((al_msg_type_t) envelope->body_case),
                   envelope->sender ? envelope->sender->identity : "?");
        return S_DONE;
    }
    if (envelope->delivery_id == 0) {
        zsys_warning ("qa: a QaRequest without a delivery id (not from the broker's queue): ignored");
        return S_DONE;
    }
    Airlock__Environment env = envelope->environment;
    if (env != AIRLOCK__ENVIRONMENT__ENV_STAGING && env != AIRLOCK__ENVIRONMENT__ENV_DEVELOPMENT) {
        char why [200];
        snprintf (why, sizeof why, "QA runs against staging only (or development): this request is for %s",
                  env == AIRLOCK__ENVIRONMENT__ENV_UNSPECIFIED ? "no environment" : s_env_name (env));
        return s_refuse (self, envelope, why);
    }
    if (!al_id_valid (envelope->deployment_id))
        return s_refuse (self, envelope, "the deployment id must be 1 to 64 of [A-Za-z0-9._-], not starting with '.'");

    s_outcome_t outcome = S_RETRY;
    char error [1024];
    char *dir = al_qa_printf ("%s/%s", self->qa_dir, envelope->deployment_id);
    char *path = al_qa_printf ("%s/qa_report.json", dir);
    char *message_id = al_qa_printf ("qa-report-%" PRIu64, envelope->delivery_id);
    json_t *report = NULL;
    if (access (path, F_OK) == 0) {
        //  Answered before: the same report again, nothing runs twice.
        json_error_t json_error;
        json_t *stored = json_load_file (path, JSON_REJECT_DUPLICATES, &json_error);
        if (stored && s_same_request (stored, envelope)) {
            zsys_info ("qa: %s: a report exists; sending it again", envelope->deployment_id);
            outcome = s_answer (self, envelope, path, message_id);
        }
        else {
            char why [600];
            if (stored)
                snprintf (why, sizeof why, "deployment %s already has a QA report, for %s %s (artifact %.12s) in %s: "
                          "a new QA run needs a new deployment id", envelope->deployment_id,
                          s_json_text (stored, "service"), s_json_text (stored, "version"),
                          s_json_text (stored, "artifact_sha256"), s_json_text (stored, "environment"));
            else
                snprintf (why, sizeof why, "the QA report of deployment %s does not read (line %d: %s); it is "
                          "kept as it is", envelope->deployment_id, json_error.line, json_error.text);
            outcome = s_refuse (self, envelope, why);
        }
        json_decref (stored);
        goto cleanup;
    }
    if (s_mkdir_p (dir, error, sizeof error) != 0) {
        zsys_error ("qa: %s", error);
        goto cleanup;
    }
    zsys_info ("qa: %s: validating %s %s in %s", envelope->deployment_id, envelope->qa_request->service,
               envelope->qa_request->version, s_env_name (env));
    report = s_run_qa (self, envelope, dir);
    if (!report) {
        zsys_info ("qa: %s: stopped by a shutdown; the request stays queued", envelope->deployment_id);
        outcome = S_STOP;
        goto cleanup;
    }
    if (s_save (report, path, error, sizeof error) != 0) {
        zsys_error ("qa: %s: the report cannot be written: %s", envelope->deployment_id, error);
        goto cleanup;
    }
    outcome = s_answer (self, envelope, path, message_id);
cleanup:
    json_decref (report);
    free (message_id);
    free (path);
    free (dir);
    return outcome;
}

static void
s_pending_destructor (void **item)
{
    al_codec_free ((al_envelope_t **) item);
}

int
al_qa_run (const al_config_t *config, char *error, size_t error_size)
{
    assert (config);
    int rc = 2;
    s_qa_t self;
    memset (&self, 0, sizeof self);
    self.config = config;
    zlistx_t *pending = NULL;
    self.services = al_services_load (al_config_services_path (config), error, error_size);
    if (!self.services)
        goto cleanup;
    self.qa_dir = al_qa_printf ("%s/qa", al_config_state_dir (config));
    self.deploy_dir = al_qa_printf ("%s/deploy", al_config_state_dir (config));
    if (s_mkdir_p (self.qa_dir, error, error_size) != 0)
        goto cleanup;
    char *services_path = realpath (al_services_path (self.services), NULL);
    if (!services_path) {
        snprintf (error, error_size, "%s: %s", al_services_path (self.services), strerror (errno));
        goto cleanup;
    }
    char *slash = strrchr (services_path, '/');
    assert (slash);
    slash [slash == services_path ? 1 : 0] = '\0';
    self.suite_dir = services_path;
    //  Secret sources of any service are not handed to a suite.
    for (size_t i = 0; i < al_services_count (self.services); i++) {
        const al_service_t *svc = al_services_at (self.services, i);
        for (size_t j = 0; j < svc->secret_count; j++)
            if (svc->secrets [j].env) {
                self.hidden = realloc (self.hidden, (self.hidden_count + 1) * sizeof *self.hidden);
                assert (self.hidden);
                self.hidden [self.hidden_count++] = al_qa_printf ("%s", svc->secrets [j].env);
            }
    }
    //  Nor the notifier's webhook secrets (every agent under `airlock up` inherits one
    //  environment). An unreadable notifications.yaml hides nothing more: the notifier
    //  refuses to start on it, and says why.
    char notifications [PATH_MAX];
    snprintf (notifications, sizeof notifications, "%s/notifications.yaml", al_config_state_dir (config));
    if (access (notifications, F_OK) == 0) {
        char ignored [256];
        al_notify_config_t *notify = al_notify_config_load (notifications, ignored, sizeof ignored);
        for (size_t i = 0; notify && i < al_notify_config_count (notify); i++) {
            const al_notify_endpoint_t *endpoint = al_notify_config_at (notify, i);
            if (endpoint->secret_env) {
                self.hidden = realloc (self.hidden, (self.hidden_count + 1) * sizeof *self.hidden);
                assert (self.hidden);
                self.hidden [self.hidden_count++] = al_qa_printf ("%s", endpoint->secret_env);
            }
        }
        al_notify_config_destroy (&notify);
    }
    self.agent = al_agent_new_for_role (config, "qa", true, error, error_size);
    if (!self.agent)
        goto cleanup;
    pending = zlistx_new ();
    assert (pending);
    zlistx_set_destructor (pending, s_pending_destructor);
    zsys_info ("qa: ready (%zu service(s), reports in %s)", al_services_count (self.services), self.qa_dir);
    rc = 0;
    while (!al_agent_interrupted ()) {
        al_envelope_t *envelope = (al_envelope_t *) zlistx_first (pending);
        if (envelope)
            zlistx_detach_cur (pending);
        else
            envelope = al_agent_recv (self.agent, 500);
        if (!envelope)
            continue;
        s_outcome_t outcome = s_handle (&self, envelope);
        if (outcome == S_DONE) {
            if (envelope->delivery_id)
                al_agent_ack_delivery (self.agent, envelope->delivery_id);
            al_codec_free (&envelope);
        }
        else
        if (outcome == S_RETRY) {
            zlistx_add_start (pending, envelope);
            for (int waited = 0; waited < S_RETRY_MS && !al_agent_interrupted (); waited += 100)
                zclock_sleep (100);
        }
        else
            al_codec_free (&envelope);      // the broker keeps it for the next start
    }
    al_agent_flush (self.agent, 3000);
cleanup:
    zlistx_destroy (&pending);
    al_agent_destroy (&self.agent);
    for (size_t i = 0; i < self.hidden_count; i++)
        free (self.hidden [i]);
    free (self.hidden);
    free (self.suite_dir);
    free (self.deploy_dir);
    free (self.qa_dir);
    al_services_destroy (&self.services);
    return rc;
}
