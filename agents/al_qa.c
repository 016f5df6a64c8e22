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

    The QA run itself (instances, smoke checks, suites, scanners, the report) is
    al_qa_check.c; small file and text helpers are al_qa_util.c.

    Suites run through al_qa_runner.c, on base/al_child (the one fork/exec): the argv
    from services.yaml, no shell, in the directory of services.yaml, in a new process
    group; stdout and stderr on one pipe, kept up to AL_QA_EVIDENCE_MAX_SIZE and
    drained beyond; after the suite exits, or at its timeout (SIGTERM, then SIGKILL
    half a second later), whatever is left of its process group is killed before the
    leader is reaped. A shutdown request stops a running suite the same way.

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

#define S_REPORT_WAIT_MS    5000        // one wait for the broker's answer (then again)
#define S_RETRY_MS          5000        // a request that could not be answered, again after
#define S_REFUSED_DIR       ".refused"  // not a valid deployment id: cannot collide
#define S_REPORT_MAX_SIZE   (8 * 1024 * 1024)   // a report is kept and sent whole

//  What became of a delivery.
typedef enum {
    S_DONE,                         // answered (or nothing to answer): acknowledge it
    S_RETRY,                        // not answered (a file could not be written): keep, retry
    S_STOP                          // interrupted: keep it unacknowledged and stop
} s_outcome_t;

//  ---------------------------------------------------------------------------------
//  The agent

//  Write a file whole, 0600, replacing it atomically: a crash leaves the old file or
//  the new one, never a part. Returns 0 or -1 with "path: reason".
static int
s_write_atomic (const char *path, const char *data, size_t size, char *error, size_t error_size)
{
    return al_file_write_atomic (path, data, size, 0600, error, error_size);
}

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
s_send_recorded (al_qa_state_t *self, const al_envelope_t *envelope)
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
s_answer (al_qa_state_t *self, const al_envelope_t *request, const char *path, const char *message_id)
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
s_refuse (al_qa_state_t *self, const al_envelope_t *envelope, const char *why)
{
    zsys_warning ("qa: refused the QaRequest %s (deployment %s) from %s: %s", envelope->message_id,
                  envelope->deployment_id, envelope->sender ? envelope->sender->identity : "?", why);
    char error [1024];
    char *dir = al_qa_printf ("%s/%s/%" PRIu64, self->qa_dir, S_REFUSED_DIR, envelope->delivery_id);
    char *path = al_qa_printf ("%s/qa_report.json", dir);
    char *message_id = al_qa_printf ("qa-refused-%" PRIu64, envelope->delivery_id);
    s_outcome_t outcome = S_RETRY;
    if (access (path, F_OK) != 0) {
        json_t *report = al_qa_report_new (envelope);
        al_qa_findings_t findings = { .checks = json_array (), .suites = json_array (), .issues = json_array () };
        al_qa_issue (&findings, "%s", why);
        al_qa_report_seal (report, &findings);
        json_object_set_new (report, "refused", json_true ());
        int rc = al_file_make_directories (dir, 0700, error, sizeof error);
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
        { "environment", al_qa_env_name (envelope->environment) },
    };
    for (size_t i = 0; i < 4; i++) {
        const char *value = json_string_value (json_object_get (stored, fields [i][0]));
        if (!value || strcmp (value, fields [i][1]) != 0)
            return false;
    }
    return true;
}

static s_outcome_t
s_handle (al_qa_state_t *self, const al_envelope_t *envelope)
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
                  env == AIRLOCK__ENVIRONMENT__ENV_UNSPECIFIED ? "no environment" : al_qa_env_name (env));
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
    if (al_file_make_directories (dir, 0700, error, sizeof error) != 0) {
        zsys_error ("qa: %s", error);
        goto cleanup;
    }
    zsys_info ("qa: %s: validating %s %s in %s", envelope->deployment_id, envelope->qa_request->service,
               envelope->qa_request->version, al_qa_env_name (env));
    report = al_qa_run_checks (self, envelope, dir);
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
    al_qa_state_t self;
    memset (&self, 0, sizeof self);
    self.config = config;
    zlistx_t *pending = NULL;
    self.services = al_services_load (al_config_services_path (config), error, error_size);
    if (!self.services)
        goto cleanup;
    self.qa_dir = al_qa_printf ("%s/qa", al_config_state_dir (config));
    self.deploy_dir = al_qa_printf ("%s/deploy", al_config_state_dir (config));
    if (al_file_make_directories (self.qa_dir, 0700, error, error_size) != 0)
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
