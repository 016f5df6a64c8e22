/*  al_qa_check.c: the QA run of one request (al_qa.c decides whether it may run and
    answers from the report): the instances running in the environment and their
    smoke checks, the suites, the security scanners, and the report they make.

    Suites and scanners run through al_qa_runner.c, in the directory of services.yaml,
    with the agent's environment minus the secrets' source variables and AIRLOCK_*.
    A scanner's report is read by al_qa_scan.c and judged against quality_rules.yaml
    security_scan by al_qa_reports (docs/qa.md "Security scans"). Fail closed: a
    scanner whose report is not read counts as a failure, never as "no findings".
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
#define S_MAX_INSTANCES     256
#define S_MAX_ISSUES        100
#define S_ISSUE_SIZE        512

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
//  Findings, checks, suites, scanners and the report

void
al_qa_issue (al_qa_findings_t *findings, const char *format, ...)
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
s_check (al_qa_findings_t *findings, const char *name, const char *instance, bool ok, const char *detail)
{
    char clean [S_ISSUE_SIZE];
    snprintf (clean, sizeof clean, "%s", detail);
    al_qa_clean (clean);
    json_array_append_new (findings->checks, json_pack ("{s:s, s:s, s:b, s:s}", "name", name,
                                                        "instance", instance, "ok", ok, "detail", clean));
}

//  "staging", ...; "unspecified" for an environment without a name.
const char *
al_qa_env_name (Airlock__Environment env)
{
    const char *name = al_environment_name (env);
    return name ? name : "unspecified";
}

//  The environment of a suite: the agent's, without the variables services.yaml names
//  as secret sources and without AIRLOCK_*, plus what the suite needs to know.
static char **
s_suite_env (al_qa_state_t *self, const al_envelope_t *envelope, const al_service_suite_t *suite,
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
    env [used++] = al_qa_printf ("AIRLOCK_ENV=%s", al_qa_env_name (envelope->environment));
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
s_check_instances (al_qa_state_t *self, const al_envelope_t *envelope, const al_service_t *svc,
                   al_qa_findings_t *findings, json_t *instances_json, char **urls_p)
{
    const Airlock__QaRequest *request = envelope->qa_request;
    const char *env_name = al_qa_env_name (envelope->environment);
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
        al_qa_issue (findings, "no instance of %s runs in %s: %s", svc->name, env_name, detail);
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
            al_qa_issue (findings, "instance %s: %s, the request is for %s", instance->id, detail, request->version);
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
                al_qa_issue (findings, "instance %s: %s failed: %s", instance->id, names [kind], detail);
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
                al_qa_issue (findings, "smoke check %s on %s: %s", smoke->name, instance->id, detail);
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
s_suite (al_qa_state_t *self, const al_envelope_t *envelope, const al_service_suite_t *suite, const char *urls,
         const char *evidence_dir, al_qa_findings_t *findings)
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
        al_qa_issue (findings, "suite %s: cannot run: %s", suite->name, run.error);
    else
    if (junit_stale)
        al_qa_issue (findings, "suite %s: cannot remove the previous JUnit report %s (%s): its counts are not used",
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
                al_qa_issue (findings, "suite %s: its JUnit report does not read: %s", suite->name, error);
        }
        else
        if (missing && !run.timed_out)
            al_qa_issue (findings, "suite %s: wrote no JUnit report at %s", suite->name, suite->junit);
        else
        if (!missing)
            al_qa_issue (findings, "suite %s: its JUnit report does not read: %s", suite->name, error);
        free (data);
    }
    if (!from_junit) {
        //  One test, passed when the suite exited 0 in time.
        bool passed = run.started && !run.timed_out && run.exit_code == 0;
        counts = (al_qa_junit_t) { .tests = 1, .passed = passed ? 1 : 0, .failed = passed ? 0 : 1 };
    }
    if (from_junit && counts.failed)
        al_qa_issue (findings, "suite %s: %u of %u tests failed", suite->name, counts.failed, counts.tests);
    if (run.timed_out)
        al_qa_issue (findings, "suite %s: timed out after %d ms; its process group was killed", suite->name,
                     suite->timeout_ms);
    else
    if (run.started && run.exit_code > 0)
        al_qa_issue (findings, "suite %s: exited with code %d", suite->name, run.exit_code);
    else
    if (run.started && run.exit_code < 0)
        al_qa_issue (findings, "suite %s: killed by signal %d", suite->name, -run.exit_code);
    if (from_junit && counts.tests == 0)
        al_qa_issue (findings, "suite %s: ran no tests", suite->name);

    json_t *result = json_pack ("{s:s, s:i, s:i, s:i, s:i, s:s}", "name", suite->name,
                                "passed", (json_int_t) counts.passed, "failed", (json_int_t) counts.failed,
                                "skipped", (json_int_t) counts.skipped, "tests", (json_int_t) counts.tests,
                                "evidence", evidence);
    if (!result) {
        //  Only a path that is not UTF-8 (the state or services.yaml directory) gets here.
        al_qa_issue (findings, "suite %s: its result cannot be recorded (a path is not UTF-8)", suite->name);
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
s_scanner (al_qa_state_t *self, const al_envelope_t *envelope, const al_service_scanner_t *scanner, const char *urls,
           const char *evidence_dir, al_qa_findings_t *findings, json_t *section, al_qa_scan_totals_t *totals,
           bool *stopped)
{
    char *evidence = al_qa_printf ("%s/scan-%s.log", evidence_dir, scanner->name);
    char *copy = al_qa_printf ("%s/scan-%s.json", evidence_dir, scanner->name);
    char error [1024] = "";
    bool ok = false;
    char *data = NULL;
    //  A report left by an earlier run must never be read for this one.
    if (unlink (scanner->output) != 0 && errno != ENOENT) {
        al_qa_issue (findings, "scanner %s: cannot remove the previous report %s (%s): not run", scanner->name,
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
        al_qa_issue (findings, "scanner %s: cannot run: %s", scanner->name, run.error);
    else
    if (run.timed_out)
        al_qa_issue (findings, "scanner %s: timed out after %d ms; its process group was killed", scanner->name,
                     scanner->timeout_ms);
    else
    if (run.exit_code < 0 || run.exit_code > 1)
        //  0: no findings, 1: findings (bandit, semgrep --error, ...); anything else a failure.
        al_qa_issue (findings, "scanner %s: %s %d: its findings are not trusted", scanner->name,
                     run.exit_code < 0 ? "killed by signal" : "exited with code",
                     run.exit_code < 0 ? -run.exit_code : run.exit_code);
    else
    if (al_qa_read_regular (scanner->output, AL_QA_SCAN_MAX_SIZE, &data, &size, &missing, error, sizeof error) != 0)
        al_qa_issue (findings, "scanner %s: %s", scanner->name,
                     missing ? "wrote no report: its findings are unknown" : error);
    else {
        if (al_qa_write_file (copy, data, size) != 0)
            zsys_warning ("qa: %s: cannot keep a copy: %s", copy, strerror (errno));
        al_qa_scan_format_t format = scanner->format == AL_SERVICE_SCAN_SARIF ? AL_QA_SCAN_SARIF
                                                                               : AL_QA_SCAN_BANDIT_JSON;
        if (al_qa_scan_read (scanner->output, data, size, format, result, error, sizeof error) != 0)
            al_qa_issue (findings, "scanner %s: its report does not read: %s", scanner->name, error);
        else
        if (result->tool_errors)
            al_qa_issue (findings, "scanner %s: %s reports %u error(s) (files it could not scan): its findings are "
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
s_scanners (al_qa_state_t *self, const al_envelope_t *envelope, const al_service_t *svc, const char *urls,
            const char *evidence_dir, al_qa_findings_t *findings)
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
        al_qa_issue (findings, "security scan: the policy %s does not load (%s): its limits are unknown",
                     al_config_policy_dir (self->config),
                     errors && al_policy_errors_count (errors) ? al_policy_errors_at (errors, 0) : "no detail");
    char summary [512];
    if (!al_qa_reports_scan_judge (section, &totals, complete, limits, summary, sizeof summary))
        al_qa_issue (findings, "security scan: %s", summary);
    al_policy_destroy (&policy);
    al_policy_errors_destroy (&errors);
    return true;
}

//  The report's fixed part: what the request was about.
json_t *
al_qa_report_new (const al_envelope_t *envelope)
{
    const Airlock__QaRequest *request = envelope->qa_request;
    uint64_t now = (uint64_t) al_clock_wall_ms ();
    char time_text [40];
    al_clock_wall_iso8601 ((int64_t) now, time_text, sizeof time_text);
    return json_pack ("{s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I}",
                      "format", S_REPORT_FORMAT, "deployment_id", envelope->deployment_id ? envelope->deployment_id : "",
                      "service", request->service, "version", request->version,
                      "artifact_sha256", request->artifact_sha256,
                      "environment", al_qa_env_name (envelope->environment),
                      "requested_by", envelope->sender ? envelope->sender->identity : "",
                      "request_message_id", envelope->message_id ? envelope->message_id : "",
                      "time", time_text, "time_ms", (json_int_t) now);
}

//  Seal a report: issues, recommendation, approval.
void
al_qa_report_seal (json_t *report, al_qa_findings_t *findings)
{
    if (findings->issues_dropped)
        al_qa_issue (findings, "... and %zu more issues", findings->issues_dropped);
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
json_t *
al_qa_run_checks (al_qa_state_t *self, const al_envelope_t *envelope, const char *dir)
{
    const Airlock__QaRequest *request = envelope->qa_request;
    json_t *report = al_qa_report_new (envelope);
    al_qa_findings_t findings = { .checks = json_array (), .suites = json_array (), .issues = json_array () };
    json_t *instances = json_array ();
    json_object_set_new (report, "instances", instances);
    char *urls = NULL;
    char *evidence_dir = al_qa_printf ("%s/evidence", dir);
    bool stopped = false;
    char error [512];
    const al_service_t *svc = al_services_find (self->services, request->service);
    if (!svc) {
        al_qa_issue (&findings, "service %s is not in %s: nothing to check", request->service,
                     al_services_path (self->services));
        goto seal;
    }
    if (al_file_make_directories (evidence_dir, 0700, error, sizeof error) != 0)
        al_qa_issue (&findings, "evidence directory: %s", error);
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
            al_qa_issue (&findings, "suite %.64s: not configured for %s, not run (configured: %s)", request->suites [i],
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
    al_qa_report_seal (report, &findings);
    if (stopped) {
        json_decref (report);
        return NULL;
    }
    return report;
}

//  Write a report (pretty JSON, one final newline) atomically.
