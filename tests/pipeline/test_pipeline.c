/*  test_pipeline.c: the whole pipeline, real processes, driven through the CLI.

    `airlock init` makes a state directory; the test opens the calendar, makes an approver
    key (`airlock keygen`) and writes services.yaml. Then `airlock broker` and the agents
    (`airlock agent orchestrator | deploy-manager | monitor | qa`) run as separate
    processes, as `airlock up` will run them. Shown here:
      - release -> staging -> QA pass -> production request -> signed approval (`airlock
        approve --yes --key`) -> production rollout -> soak -> DONE, followed with
        `airlock status RELEASE --json`;
      - a release whose QA fails stops before any approval is asked (FAILED, no request);
      - the orchestrator killed with SIGKILL mid-pipeline and restarted resumes the release
        to DONE;
      - `airlock rollback RELEASE`: a rollback release, no staging, approved by devops (the
        rollback type's quorum; the manager alone is not enough), back to the previous
        version;
      - an emergency with `--skip-staging`: no staging run, and the request needs the
        manager's approval plus the devops engineer's (skip_staging_quorum); `--skip-staging`
        on another type is refused by the CLI.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include "../deploy/deploy_test_util.h"
#include "agents/al_agent.h"
#include "base/al_config.h"
#include "proto/al_codec.h"
#include "proc_harness.h"
#include "store/al_store.h"
#include <czmq.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define S_AGENTS 4

typedef struct {
    char dir [256];
    char config [300];
    char airlock [400];
    ph_cli_t cli;
    al_child_t *broker;
    al_child_t *agents [S_AGENTS];
} s_fixture_t;

static const char *s_roles [S_AGENTS] = { "orchestrator", "deploy-manager", "monitor", "qa" };
static const char *s_logs [] = { "broker", "orchestrator", "deploy-manager", "monitor", "qa" };

static void
s_start_agent (s_fixture_t *f, int index)
{
    char error [1024] = "";
    f->agents [index] = ph_start_agent (&f->cli, s_roles [index], error, sizeof error);
    if (!f->agents [index])
        fail_msg ("%s", error);
}

static void
s_dump_logs (s_fixture_t *f)
{
    ph_dump_logs (f->dir, s_logs, sizeof s_logs / sizeof s_logs [0], 3000);
}

//  The release's state, through `airlock status RELEASE --json`.
static char *
s_state (s_fixture_t *f, const char *release)
{
    return ph_state (&f->cli, release);
}

//  Wait until the release reaches want (or a final state); fail with the logs otherwise.
static void
s_wait_state (s_fixture_t *f, const char *release, const char *want, int timeout_ms)
{
    char *state = ph_wait_state (&f->cli, release, want, timeout_ms);
    if (!state || strcmp (state, want) != 0) {
        ph_airlock (&f->cli, "status-text", "status");
        char arguments [256];
        snprintf (arguments, sizeof arguments, "status %s", release);
        ph_airlock (&f->cli, "release-text", arguments);
        char *all = ph_output (&f->cli, "status-text"), *one = ph_output (&f->cli, "release-text");
        fprintf (stderr, "%s\n%s\n", all? all: "", one? one: "");
        free (all);
        free (one);
        s_dump_logs (f);
        fail_msg ("%s: state %s, expected %s", release, state? state: "(none)", want);
    }
    free (state);
}

static void
s_submit_with (s_fixture_t *f, const char *release, const char *version, const char *faults, const char *extra)
{
    char artifact [1024], sha [65], name [64], changes [128], error [4096] = "";
    snprintf (name, sizeof name, "demo-%s", version);
    dtu_artifact (f->dir, name, version, faults, artifact, sizeof artifact, sha);
    snprintf (changes, sizeof changes, "faster checkout (%s)\nfix: totals rounding\n", version);
    if (ph_submit (&f->cli, "demo", release, version, artifact, sha, changes, extra, error, sizeof error) != 0)
        fail_msg ("%s", error);
}

static void
s_submit (s_fixture_t *f, const char *release, const char *version, const char *faults)
{
    s_submit_with (f, release, version, faults, "");
}

//  The deploy receipt of deployment_id (deploy-manager's evidence directory).
static json_t *
s_receipt (s_fixture_t *f, const char *deployment_id)
{
    char path [600];
    snprintf (path, sizeof path, "%s/deploy/.artifacts/deployment/%s/deploy_receipt.json", f->dir, deployment_id);
    json_error_t error;
    json_t *receipt = json_load_file (path, 0, &error);
    if (!receipt)
        fail_msg ("%s: %s", path, error.text);
    return receipt;
}

//  The receipt's Definition of Done point id has status, its reason holds in_reason.
static void
s_expect_point (json_t *receipt, const char *id, const char *status, const char *in_reason)
{
    size_t index;
    json_t *point;
    json_array_foreach (json_object_get (receipt, "definition_of_done"), index, point) {
        if (strcmp (json_string_value (json_object_get (point, "id")), id) != 0)
            continue;
        const char *got = json_string_value (json_object_get (point, "status"));
        const char *reason = json_string_value (json_object_get (point, "reason"));
        if (strcmp (got, status) != 0 || !reason || (in_reason && !strstr (reason, in_reason)))
            fail_msg ("%s: %s (%s), expected %s with '%s'", id, got, reason? reason: "", status, in_reason);
        return;
    }
    fail_msg ("the receipt has no point %s", id);
}

//  `airlock approve REQUEST --yes --key DIR/KEY.key`; its output must hold expect.
static char *
s_approve_as (s_fixture_t *f, const char *request, const char *key, const char *expect)
{
    char *text = NULL;
    int rc = ph_approve (&f->cli, request, key, &text);
    if (rc != 0 || !text || !strstr (text, expect))
        fail_msg ("airlock approve %s as %s: exit %d, expected '%s':\n%s", request, key, rc, expect, text? text: "");
    return text;
}

static void
s_approve (s_fixture_t *f, const char *release)
{
    char request [128];
    snprintf (request, sizeof request, "%s-prod", release);
    char *text = s_approve_as (f, request, "alice", "granted");
    //  What the approver was shown: seed 001's request, built from real data.
    const char *shown [] = { "Production Deployment Request", "demo", "Tests Passed", "faster checkout",
                             "airlock rollback" };
    for (size_t i = 0; i < sizeof shown / sizeof shown [0]; i++)
        if (!strstr (text, shown [i]))
            fail_msg ("approve did not show '%s':\n%s", shown [i], text);
    free (text);
}

static int
s_setup (void **state)
{
    s_fixture_t *f = calloc (1, sizeof *f);
    assert_non_null (f);
    snprintf (f->dir, sizeof f->dir, "/tmp/al-pipeline-XXXXXX");
    assert_non_null (mkdtemp (f->dir));
    snprintf (f->config, sizeof f->config, "%s/airlock.yaml", f->dir);
    snprintf (f->airlock, sizeof f->airlock, "%s/airlock", getenv ("AIRLOCK_BINARY_DIR"));
    f->cli = (ph_cli_t) { .airlock = f->airlock, .config = f->config, .dir = f->dir };
    const char *keys [] = { "alice", "dave" }, *roles [] = { "manager", "devops" };
    char error [1024] = "", path [400];
    if (ph_init (f->airlock, f->dir, keys, 2, error, sizeof error) != 0
    ||  ph_prepare_demo (f->dir, keys, roles, 2, 1500, "        - { name: work, path: \"/work?n=10\", status: 200 }\n",
                         error, sizeof error) != 0)
        fail_msg ("%s", error);
    //  One window all day every day, for the scheduled deployment (its own window decides).
    snprintf (path, sizeof path, "%s/policy/constraints.yaml", f->dir);
    char *constraints = dtu_read (path);
    assert_non_null (constraints);
    char *windows = strstr (constraints, "  windows: []\n");
    assert_non_null (windows);
    *windows = 0;
    FILE *rewrite = fopen (path, "w");
    assert_non_null (rewrite);
    fprintf (rewrite, "%s  windows:\n    - {days: [monday, tuesday, wednesday, thursday, friday, saturday, sunday], "
             "start: \"00:00\", end: \"24:00\"}\n%s", constraints, windows + strlen ("  windows: []\n"));
    fclose (rewrite);
    free (constraints);
    //  Two of seed 001's AI agents connect too, as an MCP client would: their CURVE
    //  certificates and identities (the broker reads identities.yaml when it starts).
    al_config_t *config = al_config_load (f->config, error, sizeof error);
    assert_non_null (config);
    snprintf (path, sizeof path, "%s/identities.yaml", al_config_policy_dir (config));
    const char *specialists [] = { "qa-specialist", "docs-specialist" };
    for (size_t i = 0; i < 2; i++) {
        zcert_t *cert = zcert_new ();
        assert_non_null (cert);
        char *cert_path = al_config_agent_cert (config, specialists [i]);
        assert_non_null (cert_path);
        assert_int_equal (zcert_save (cert, cert_path), 0);
        FILE *file = fopen (path, "a");
        assert_non_null (file);
        fprintf (file, "  - key: \"%s\"\n    identity: %s-1\n    role: %s\n", zcert_public_txt (cert),
                 specialists [i], specialists [i]);
        fclose (file);
        free (cert_path);
        zcert_destroy (&cert);
    }
    al_config_destroy (&config);
    f->broker = ph_start_broker (&f->cli, f->config, "broker", error, sizeof error);
    if (!f->broker)
        fail_msg ("%s", error);
    zclock_sleep (300);
    //  Everyone registered (airlock status shows them alive); a release that waits in
    //  vain says which agent's log to read.
    if (ph_start_agents (&f->cli, s_roles, S_AGENTS, f->agents, 20000, error, sizeof error) < 0)
        fail_msg ("%s", error);
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    s_fixture_t *f = *state;
    ph_stop_all (f->agents, S_AGENTS, SIGTERM);
    ph_stop (&f->broker, SIGTERM);
    dtu_remove_tree (f->dir);
    free (f);
    return 0;
}

//  The submitted_by of the production request filed for request_id, as the audit log
//  holds it (caller frees), or NULL.
static char *
s_request_submitter (s_fixture_t *f, const char *request_id)
{
    char path [400], error [512];
    snprintf (path, sizeof path, "%s/audit.db", f->dir);
    al_store_options_t options = { .read_only = true };
    al_store_t *store = al_store_open (NULL, path, &options, error, sizeof error);
    if (!store)
        return NULL;
    char *submitter = NULL;
    al_store_iter_t *iter = al_store_iter_new (store, 1);
    al_store_event_t event;
    while (!submitter && iter && al_store_iter_next (iter, &event) == AL_STORE_OK) {
        if (strcmp (event.type, "ApprovalRequest") != 0 || event.decision != AL_STORE_ACCEPTED)
            continue;
        al_envelope_t *envelope = NULL;
        if (al_codec_unpack (event.envelope, event.envelope_size, event.envelope_size, &envelope, NULL, 0) == AL_CODEC_OK
        &&  strcmp (envelope->approval_request->request_id, request_id) == 0)
            submitter = strdup (envelope->approval_request->submitted_by);
        al_codec_free (&envelope);
    }
    al_store_iter_destroy (&iter);
    al_store_destroy (&store);
    return submitter;
}

static void
test_release_to_production (void **state)
{
    s_fixture_t *f = *state;
    //  The submitter declares what airlock cannot check: the approver sees it as declared.
    s_submit_with (f, "rel-1", "v1", NULL, "--dependency libfoo@1.2.3 --dependency @scope/bar@4 "
                   "--breaking-changes 'GET /v1/cart is gone'");
    s_wait_state (f, "rel-1", "APPROVE", 60000);
    //  The request waits in `airlock approvals`.
    assert_int_equal (ph_airlock (&f->cli, "approvals", "approvals"), 0);
    char *text = ph_output (&f->cli, "approvals");
    assert_non_null (strstr (text, "rel-1-prod"));
    free (text);
    //  Four eyes: the request names who submitted the release (`airlock submit`: ci), and
    //  the approver signs it with the rest (deploy-manager verifies it again).
    char *submitter = s_request_submitter (f, "rel-1-prod");
    assert_non_null (submitter);
    assert_string_equal (submitter, "ci");
    free (submitter);
    //  The checklist the approver signs, computed: the smoke checks ran, no unit, integration
    //  or E2E suite did (services.yaml configures none), no migrations, the declarations.
    text = s_approve_as (f, "rel-1-prod", "alice", "granted");
    const char *boxes [] = { "[ ] Unit tests: no suite of that kind ran", "[ ] E2E tests: no suite of that kind ran",
                             "[x] Other suites and checks: checks", "[-] not applicable: no migration set",
                             "adds libfoo@1.2.3; @scope/bar@4", "declared by the submitter (airlock does not check it): "
                             "GET /v1/cart is gone", "Production Deployment Request", "faster checkout" };
    for (size_t i = 0; i < sizeof boxes / sizeof boxes [0]; i++)
        if (!strstr (text, boxes [i]))
            fail_msg ("approve did not show '%s':\n%s", boxes [i], text);
    free (text);
    s_wait_state (f, "rel-1", "DONE", 60000);
    //  Its receipt: done, every point from evidence (the QA report the grant carries).
    json_t *receipt = s_receipt (f, "rel-1-prod");
    assert_true (json_is_true (json_object_get (receipt, "done")));
    s_expect_point (receipt, "qa_approved", "true", "QA report sha256:");
    s_expect_point (receipt, "approvals_valid", "true", "pre-flight verified");
    s_expect_point (receipt, "backup_verified", "not_applicable", "no database in production");
    json_decref (receipt);
    int with_version = 0, total = 0;
    char deploy_state [400];
    snprintf (deploy_state, sizeof deploy_state, "%s/deploy", f->dir);
    dtu_count (deploy_state, "demo", "production", "v1", &with_version, &total);
    assert_int_equal (with_version, 2);
    //  The human view of the release.
    assert_int_equal (ph_airlock (&f->cli, "release", "status rel-1"), 0);
    text = ph_output (&f->cli, "release");
    const char *states [] = { "PREPARE", "STAGING", "VALIDATE", "APPROVE", "DEPLOY", "DONE" };
    for (size_t i = 0; i < sizeof states / sizeof states [0]; i++)
        if (!strstr (text, states [i]))
            fail_msg ("status rel-1 does not show %s:\n%s", states [i], text);
    free (text);
    //  A release id is one path component: one that climbs out of the orchestrator's
    //  directory (even back into it) is refused, not read.
    assert_int_not_equal (ph_airlock (&f->cli, "release-climb", "status ../releases/rel-1"), 0);
    text = ph_output (&f->cli, "release-climb");
    assert_non_null (text);
    if (!strstr (text, "no release ../releases/rel-1") || strstr (text, "DONE"))
        fail_msg ("status ../releases/rel-1 was not refused:\n%s", text);
    free (text);

    //  A release whose QA fails: staging is fine, the /work smoke check is not.
    s_submit (f, "rel-2", "v2", "--error-rate 1");
    s_wait_state (f, "rel-2", "FAILED", 60000);
    assert_int_equal (ph_airlock (&f->cli, "approvals2", "approvals --json"), 0);
    text = ph_output (&f->cli, "approvals2");
    assert_null (strstr (text, "rel-2"));
    free (text);
    dtu_count (deploy_state, "demo", "production", "v1", &with_version, &total);
    assert_int_equal (with_version, 2);

    //  A release the approver denies: the broker closes the request and tells the
    //  orchestrator, whose release ends FAILED with the reason (not APPROVE forever).
    s_submit (f, "rel-n", "v3", NULL);
    s_wait_state (f, "rel-n", "APPROVE", 60000);
    char arguments [600];
    snprintf (arguments, sizeof arguments, "deny rel-n-prod --yes --reason 'not before the sale' --key '%s/alice.key'",
              f->dir);
    assert_int_equal (ph_airlock (&f->cli, "deny", arguments), 0);
    s_wait_state (f, "rel-n", "FAILED", 30000);
    assert_int_equal (ph_airlock (&f->cli, "denied", "status rel-n"), 0);
    text = ph_output (&f->cli, "denied");
    if (!strstr (text, "not before the sale"))
        fail_msg ("status rel-n does not give the denial's reason:\n%s", text);
    free (text);
    dtu_count (deploy_state, "demo", "production", "v1", &with_version, &total);
    assert_int_equal (with_version, 2);
}

static void
test_orchestrator_restart_resumes (void **state)
{
    s_fixture_t *f = *state;
    //  v1 takes 2 s per instance to get ready in staging: kill the orchestrator meanwhile.
    s_submit (f, "rel-3", "v1", "--ready-delay-ms 2000");
    s_wait_state (f, "rel-3", "STAGING", 30000);
    ph_stop (&f->agents [0], SIGKILL);
    zclock_sleep (3000);
    s_start_agent (f, 0);
    s_wait_state (f, "rel-3", "APPROVE", 60000);
    s_approve (f, "rel-3");
    s_wait_state (f, "rel-3", "DONE", 90000);
}

//  The release's history (status --json) holds no STAGING step.
static void
s_assert_no_staging (s_fixture_t *f, const char *release)
{
    char arguments [256];
    snprintf (arguments, sizeof arguments, "status %s --json", release);
    assert_int_equal (ph_airlock (&f->cli, "history", arguments), 0);
    char *text = ph_output (&f->cli, "history");
    assert_non_null (text);
    if (strstr (text, "\"STAGING\""))
        fail_msg ("%s went through staging:\n%s", release, text);
    free (text);
}

static void
test_rollback_and_emergency (void **state)
{
    s_fixture_t *f = *state;
    char deploy_state [400];
    snprintf (deploy_state, sizeof deploy_state, "%s/deploy", f->dir);
    int with_version = 0, total = 0;
    s_submit (f, "rel-a", "v1", NULL);
    s_wait_state (f, "rel-a", "APPROVE", 60000);
    s_approve (f, "rel-a");
    s_wait_state (f, "rel-a", "DONE", 60000);
    s_submit (f, "rel-b", "v2", NULL);
    s_wait_state (f, "rel-b", "APPROVE", 60000);
    s_approve (f, "rel-b");
    s_wait_state (f, "rel-b", "DONE", 60000);
    dtu_count (deploy_state, "demo", "production", "v2", &with_version, &total);
    assert_int_equal (with_version, 2);

    //  Roll rel-b back: a rollback release of v1, straight to the approval.
    assert_int_equal (ph_airlock (&f->cli, "rollback", "rollback rel-b --json"), 0);
    char *text = ph_stdout (&f->cli, "rollback");
    json_t *root = text? json_loads (text, 0, NULL): NULL;
    const char *id = json_string_value (json_object_get (root, "release_id"));
    if (!id)
        fail_msg ("airlock rollback --json: %s", text? text: "");
    char rollback [80], request [96];
    snprintf (rollback, sizeof rollback, "%s", id);
    json_decref (root);
    free (text);
    s_wait_state (f, rollback, "APPROVE", 30000);
    snprintf (request, sizeof request, "%s-prod", rollback);
    //  The manager is not the rollback type's quorum: waiting for devops.
    free (s_approve_as (f, request, "alice", "devops"));
    text = s_approve_as (f, request, "dave", "granted");
    assert_non_null (strstr (text, "QA report: NONE"));
    free (text);
    s_wait_state (f, rollback, "DONE", 60000);
    s_assert_no_staging (f, rollback);
    dtu_count (deploy_state, "demo", "production", "v1", &with_version, &total);
    assert_int_equal (with_version, 2);

    //  A ci client sends a "rollback" of a new artifact itself (airlock rollback would
    //  not): the orchestrator refuses it; no approval is ever asked.
    char forged_path [1024], forged_sha [65], error [1024];
    dtu_artifact (f->dir, "demo-v9", "v9", NULL, forged_path, sizeof forged_path, forged_sha);
    al_config_t *config = al_config_load (f->config, error, sizeof error);
    assert_non_null (config);
    al_agent_t *ci = al_agent_new_for_role (config, "ci", false, error, sizeof error);
    assert_non_null (ci);
    Airlock__ReleaseCandidate candidate = AIRLOCK__RELEASE_CANDIDATE__INIT;
    candidate.service = (char *) "demo";
    candidate.version = (char *) "v9";
    candidate.artifact_uri = forged_path;
    candidate.artifact_sha256 = forged_sha;
    candidate.deployment_type = AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_ROLLBACK;
    al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
    envelope.deployment_id = (char *) "rb-forged";
    envelope.environment = AIRLOCK__ENVIRONMENT__ENV_DEVELOPMENT;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_RELEASE_CANDIDATE;
    envelope.release_candidate = &candidate;
    al_agent_result_t result;
    assert_int_equal (al_agent_send (ci, &envelope, 10000, &result), AL_AGENT_ACKED);
    al_agent_flush (ci, 1000);
    al_agent_destroy (&ci);
    al_config_destroy (&config);
    s_wait_state (f, "rb-forged", "FAILED", 30000);
    assert_int_equal (ph_airlock (&f->cli, "forged", "status rb-forged"), 0);
    text = ph_output (&f->cli, "forged");
    assert_non_null (strstr (text, "a rollback must return to v2"));
    free (text);
    assert_int_equal (ph_airlock (&f->cli, "approvals-forged", "approvals --json"), 0);
    text = ph_output (&f->cli, "approvals-forged");
    assert_null (strstr (text, "rb-forged"));
    free (text);

    //  Seed 001: a human declares an emergency. A ci client (what an AI agent's MCP
    //  server uses) filing one gets it refused by the orchestrator: no approval asked.
    char emergency_path [1024], emergency_sha [65];
    dtu_artifact (f->dir, "demo-v8", "v8", NULL, emergency_path, sizeof emergency_path, emergency_sha);
    config = al_config_load (f->config, error, sizeof error);
    assert_non_null (config);
    ci = al_agent_new_for_role (config, "ci", false, error, sizeof error);
    assert_non_null (ci);
    Airlock__ReleaseCandidate urgent = AIRLOCK__RELEASE_CANDIDATE__INIT;
    urgent.service = (char *) "demo";
    urgent.version = (char *) "v8";
    urgent.artifact_uri = emergency_path;
    urgent.artifact_sha256 = emergency_sha;
    urgent.deployment_type = AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_EMERGENCY;
    urgent.skip_staging = true;
    al_envelope_t urgent_envelope = AIRLOCK__ENVELOPE__INIT;
    urgent_envelope.deployment_id = (char *) "em-by-ci";
    urgent_envelope.environment = AIRLOCK__ENVIRONMENT__ENV_DEVELOPMENT;
    urgent_envelope.body_case = AIRLOCK__ENVELOPE__BODY_RELEASE_CANDIDATE;
    urgent_envelope.release_candidate = &urgent;
    assert_int_equal (al_agent_send (ci, &urgent_envelope, 10000, &result), AL_AGENT_ACKED);
    al_agent_flush (ci, 1000);
    al_agent_destroy (&ci);
    al_config_destroy (&config);
    s_wait_state (f, "em-by-ci", "FAILED", 30000);
    assert_int_equal (ph_airlock (&f->cli, "em-ci", "status em-by-ci"), 0);
    text = ph_output (&f->cli, "em-ci");
    if (!strstr (text, "an emergency is declared by a human"))
        fail_msg ("status em-by-ci does not say why:\n%s", text);
    free (text);
    assert_int_equal (ph_airlock (&f->cli, "approvals-em", "approvals --json"), 0);
    text = ph_output (&f->cli, "approvals-em");
    assert_null (strstr (text, "em-by-ci"));
    free (text);

    //  --skip-staging is for emergencies only.
    char artifact [1024], sha [65], arguments [2048];
    dtu_artifact (f->dir, "demo-v3", "v3", NULL, artifact, sizeof artifact, sha);
    snprintf (arguments, sizeof arguments, "submit --service demo --version v3 --artifact '%s' --digest sha256:%s "
              "--skip-staging --id rel-c", artifact, sha);
    assert_int_equal (ph_airlock (&f->cli, "skip-standard", arguments), 2);
    text = ph_output (&f->cli, "skip-standard");
    assert_non_null (strstr (text, "emergency only"));
    free (text);
    //  Declarations that contradict each other, or a dependency without its version.
    snprintf (arguments, sizeof arguments, "submit --service demo --version v3 --artifact '%s' --digest sha256:%s "
              "--no-breaking-changes --breaking-changes 'x' --id rel-c", artifact, sha);
    assert_int_equal (ph_airlock (&f->cli, "contradiction", arguments), 2);
    text = ph_output (&f->cli, "contradiction");
    assert_non_null (strstr (text, "--no-breaking-changes contradicts --breaking-changes"));
    free (text);
    snprintf (arguments, sizeof arguments, "submit --service demo --version v3 --artifact '%s' --digest sha256:%s "
              "--dependency libfoo --id rel-c", artifact, sha);
    assert_int_equal (ph_airlock (&f->cli, "bad-dependency", arguments), 2);
    text = ph_output (&f->cli, "bad-dependency");
    assert_non_null (strstr (text, "expected NAME@VERSION"));
    free (text);
    //  An emergency skipping staging, declared by a human (`airlock submit --type
    //  emergency` goes over the human approval client's connection): the manager's
    //  quorum plus devops to skip staging.
    snprintf (arguments, sizeof arguments, "submit --service demo --version v3 --artifact '%s' --digest sha256:%s "
              "--type emergency --skip-staging --summary 'P1: checkout down' --id rel-e", artifact, sha);
    assert_int_equal (ph_airlock (&f->cli, "emergency", arguments), 0);
    s_wait_state (f, "rel-e", "APPROVE", 30000);
    text = s_approve_as (f, "rel-e-prod", "alice", "devops (to skip staging)");
    assert_non_null (strstr (text, "staging skipped"));
    free (text);
    free (s_approve_as (f, "rel-e-prod", "dave", "granted"));
    s_wait_state (f, "rel-e", "DONE", 60000);
    s_assert_no_staging (f, "rel-e");
    //  No QA report stands behind it: not ticked, not applicable under the extra approvals.
    json_t *receipt = s_receipt (f, "rel-e-prod");
    s_expect_point (receipt, "qa_approved", "not_applicable", "staging skipped under the extra approvals");
    s_expect_point (receipt, "approvals_valid", "true", NULL);
    json_decref (receipt);
    dtu_count (deploy_state, "demo", "production", "v3", &with_version, &total);
    assert_int_equal (with_version, 2);
}

//  Send one envelope as role (its own certificate); returns what the broker said.
static al_agent_status_t
s_send_as (s_fixture_t *f, const char *role, al_envelope_t *envelope, al_agent_result_t *result)
{
    char error [1024];
    al_config_t *config = al_config_load (f->config, error, sizeof error);
    assert_non_null (config);
    al_agent_t *agent = al_agent_new_for_role (config, role, false, error, sizeof error);
    if (!agent)
        fail_msg ("%s: %s", role, error);
    al_agent_status_t status = al_agent_send (agent, envelope, 10000, result);
    al_agent_flush (agent, 1000);
    al_agent_destroy (&agent);
    al_config_destroy (&config);
    return status;
}

//  The release's document, from `airlock status RELEASE --json` (caller decrefs).
static json_t *
s_release_json (s_fixture_t *f, const char *release)
{
    char arguments [256];
    snprintf (arguments, sizeof arguments, "status %s --json", release);
    if (ph_airlock (&f->cli, "status", arguments) != 0)
        return NULL;
    char *text = ph_stdout (&f->cli, "status");
    json_t *root = text? json_loads (text, 0, NULL): NULL;
    free (text);
    json_t *document = json_incref (json_object_get (root, "release"));
    json_decref (root);
    return document;
}

//  The audit log has an accepted (or denied) row of type from role whose message id
//  starts with prefix (NULL: any).
static bool
s_audited (s_fixture_t *f, const char *type, const char *role, const char *prefix, const char *decision)
{
    assert_int_equal (ph_airlock (&f->cli, "export", "audit export"), 0);
    char *text = ph_stdout (&f->cli, "export");
    assert_non_null (text);
    bool found = false;
    for (char *line = strtok (text, "\n"); line && !found; line = strtok (NULL, "\n")) {
        json_t *row = json_loads (line, 0, NULL);
        const char *id = json_string_value (json_object_get (row, "message_id"));
        found = row && strcmp (json_string_value (json_object_get (row, "type")), type) == 0
             && strcmp (json_string_value (json_object_get (row, "role")), role) == 0
             && strcmp (json_string_value (json_object_get (row, "decision")), decision) == 0
             && (!prefix || (id && strncmp (id, prefix, strlen (prefix)) == 0));
        json_decref (row);
    }
    free (text);
    return found;
}

//  Issue 15's forged verdict, replayed: a release whose QA fails; before the qa agent
//  answers, a qa-specialist identity sends a QaReport saying 42/42 passed, approved,
//  with a made-up digest. It is kept as evidence (release qa_evidence, history, an
//  audited qa_evidence Notification), never the verdict: the release stays in VALIDATE,
//  no approval is asked, and the qa agent's real report (approved: false) fails it.
//  And a docs-specialist cannot start a deployment: the broker denies (and audits) its
//  ReleaseCandidate.
static void
test_forged_qa_verdict (void **state)
{
    s_fixture_t *f = *state;
    //  The qa agent is away: its report comes only when the test lets it.
    ph_stop (&f->agents [3], SIGTERM);
    s_submit (f, "rel-f", "v2", "--error-rate 1");
    s_wait_state (f, "rel-f", "VALIDATE", 60000);
    json_t *release = s_release_json (f, "rel-f");
    assert_non_null (release);
    const char *sha = json_string_value (json_object_get (release, "artifact_sha256"));
    assert_non_null (sha);
    char artifact_sha [65];
    snprintf (artifact_sha, sizeof artifact_sha, "%s", sha);
    json_decref (release);

    Airlock__SuiteResult suite = AIRLOCK__SUITE_RESULT__INIT;
    suite.name = (char *) "all";
    suite.passed = 42;
    Airlock__SuiteResult *suites [] = { &suite };
    Airlock__QaReport report = AIRLOCK__QA_REPORT__INIT;
    report.service = (char *) "demo";
    report.version = (char *) "v2";
    report.artifact_sha256 = artifact_sha;
    report.n_suites = 1;
    report.suites = suites;
    report.approved = true;
    report.report_sha256 = (char *) "1111111111111111111111111111111111111111111111111111111111111111";
    al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
    envelope.deployment_id = (char *) "rel-f-stg";
    envelope.environment = AIRLOCK__ENVIRONMENT__ENV_STAGING;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_QA_REPORT;
    envelope.qa_report = &report;
    al_agent_result_t result;
    al_agent_status_t sent = s_send_as (f, "qa-specialist", &envelope, &result);
    if (sent != AL_AGENT_ACKED)
        fail_msg ("the forged QaReport was not recorded: %s: %s", al_agent_status_name (sent), result.reason);

    //  The orchestrator has handled it once the evidence is there (or, before the fix,
    //  once the release has moved on).
    json_t *evidence = NULL;
    const char *state_now = "VALIDATE";
    for (int waited = 0; waited < 30000 && !evidence; waited += 250) {
        release = s_release_json (f, "rel-f");
        if (release && json_array_size (json_object_get (release, "qa_evidence")) > 0)
            evidence = json_incref (json_array_get (json_object_get (release, "qa_evidence"), 0));
        state_now = release && strcmp (json_string_value (json_object_get (release, "state")), "VALIDATE") != 0?
                    "moved": "VALIDATE";
        json_decref (release);
        if (strcmp (state_now, "VALIDATE") != 0)
            break;
        zclock_sleep (250);
    }
    if (!evidence) {
        s_dump_logs (f);
        fail_msg ("the forged QaReport was not kept as evidence (release %s)", state_now);
    }
    assert_string_equal (json_string_value (json_object_get (evidence, "role")), "qa-specialist");
    assert_string_equal (json_string_value (json_object_get (evidence, "from")), "qa-specialist-1");
    assert_true (json_is_true (json_object_get (evidence, "approved")));
    assert_int_equal (json_integer_value (json_object_get (evidence, "passed")), 42);
    json_decref (evidence);
    char *state_text = s_state (f, "rel-f");
    assert_string_equal (state_text, "VALIDATE");
    free (state_text);
    assert_int_equal (ph_airlock (&f->cli, "approvals-f", "approvals --json"), 0);
    char *text = ph_output (&f->cli, "approvals-f");
    assert_null (strstr (text, "rel-f"));
    free (text);
    //  Audit-visible: the orchestrator's qa_evidence Notification is a row of the log.
    assert_true (s_audited (f, "Notification", "orchestrator", "orc-rel-f-qaev-", "accepted"));
    assert_int_equal (ph_airlock (&f->cli, "status-f", "status rel-f"), 0);
    text = ph_output (&f->cli, "status-f");
    if (!strstr (text, "kept as evidence, not as the verdict"))
        fail_msg ("status rel-f does not show the evidence note:\n%s", text);
    free (text);

    //  The real verdict: approved: false. The release fails; nothing reaches production.
    s_start_agent (f, 3);
    s_wait_state (f, "rel-f", "FAILED", 60000);
    assert_int_equal (ph_airlock (&f->cli, "approvals-f2", "approvals --json"), 0);
    text = ph_output (&f->cli, "approvals-f2");
    assert_null (strstr (text, "rel-f"));
    free (text);
    int with_version = 0, total = 0;
    char deploy_state [400];
    snprintf (deploy_state, sizeof deploy_state, "%s/deploy", f->dir);
    dtu_count (deploy_state, "demo", "production", "v2", &with_version, &total);
    assert_int_equal (total, 0);

    //  docs-specialist: its ReleaseCandidate is denied by the broker, and audited.
    char artifact [1024], digest [65];
    dtu_artifact (f->dir, "demo-v7", "v7", NULL, artifact, sizeof artifact, digest);
    Airlock__ReleaseCandidate candidate = AIRLOCK__RELEASE_CANDIDATE__INIT;
    candidate.service = (char *) "demo";
    candidate.version = (char *) "v7";
    candidate.artifact_uri = artifact;
    candidate.artifact_sha256 = digest;
    candidate.deployment_type = AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD;
    al_envelope_t docs = AIRLOCK__ENVELOPE__INIT;
    docs.deployment_id = (char *) "rel-docs";
    docs.environment = AIRLOCK__ENVIRONMENT__ENV_DEVELOPMENT;
    docs.body_case = AIRLOCK__ENVELOPE__BODY_RELEASE_CANDIDATE;
    docs.release_candidate = &candidate;
    assert_int_equal (s_send_as (f, "docs-specialist", &docs, &result), AL_AGENT_DENIED);
    assert_int_equal (result.deny_code, AIRLOCK__DENY_CODE__DENY_NOT_PERMITTED);
    assert_true (s_audited (f, "ReleaseCandidate", "docs-specialist", NULL, "denied"));
    char path [400];
    snprintf (path, sizeof path, "%s/orchestrator/releases/rel-docs.json", f->dir);
    assert_int_not_equal (access (path, F_OK), 0);
}

static void
s_utc (time_t when, char *text, size_t size)
{
    struct tm tm;
    gmtime_r (&when, &tm);
    strftime (text, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

//  A scheduled deployment carries its window into the request: signed outside it, the
//  gate holds it back; inside it, it is granted and deployed.
static void
test_scheduled_window (void **state)
{
    s_fixture_t *f = *state;
    char artifact [1024], sha [65], arguments [2048], start [32], end [32];
    dtu_artifact (f->dir, "demo-v4", "v4", NULL, artifact, sizeof artifact, sha);
    snprintf (arguments, sizeof arguments, "submit --service demo --version v4 --artifact '%s' --digest sha256:%s "
              "--type scheduled --id rel-x", artifact, sha);
    assert_int_equal (ph_airlock (&f->cli, "no-window", arguments), 2);
    char *text = ph_output (&f->cli, "no-window");
    assert_non_null (strstr (text, "--window is required"));
    free (text);

    time_t now = time (NULL);
    s_utc (now + 86400, start, sizeof start);
    s_utc (now + 90000, end, sizeof end);
    snprintf (arguments, sizeof arguments, "submit --service demo --version v4 --artifact '%s' --digest sha256:%s "
              "--type scheduled --window %s/%s --id rel-later", artifact, sha, start, end);
    assert_int_equal (ph_airlock (&f->cli, "later", arguments), 0);
    s_wait_state (f, "rel-later", "APPROVE", 60000);
    text = s_approve_as (f, "rel-later-prod", "alice", "outside the request's scheduled window");
    assert_null (strstr (text, "granted:"));
    assert_non_null (strstr (text, "scheduled for"));
    free (text);
    int with_version = 0, total = 0;
    char deploy_state [400];
    snprintf (deploy_state, sizeof deploy_state, "%s/deploy", f->dir);
    dtu_count (deploy_state, "demo", "production", "v4", &with_version, &total);
    assert_int_equal (with_version, 0);

    //  Inside its window (a new version: staging already runs v4 from rel-later).
    dtu_artifact (f->dir, "demo-v5", "v5", NULL, artifact, sizeof artifact, sha);
    s_utc (now - 60, start, sizeof start);
    s_utc (now + 3600, end, sizeof end);
    snprintf (arguments, sizeof arguments, "submit --service demo --version v5 --artifact '%s' --digest sha256:%s "
              "--type scheduled --window %s/%s --id rel-now", artifact, sha, start, end);
    assert_int_equal (ph_airlock (&f->cli, "now", arguments), 0);
    s_wait_state (f, "rel-now", "APPROVE", 60000);
    free (s_approve_as (f, "rel-now-prod", "alice", "granted"));
    s_wait_state (f, "rel-now", "DONE", 60000);
    dtu_count (deploy_state, "demo", "production", "v5", &with_version, &total);
    assert_int_equal (with_version, 2);
}

//  The broker reloads its policy on SIGHUP, deploy-manager reads it once at start: an
//  approver added since is counted by the gate but not by deploy-manager, which refuses
//  the grant. The release ends FAILED with deploy-manager's reason; nothing deploys.
static void
test_grant_refused_by_deploy_manager (void **state)
{
    s_fixture_t *f = *state;
    char command [2048], path [400];
    snprintf (command, sizeof command, "'%s' keygen --name erin --out '%s/erin.key' > /dev/null", f->airlock, f->dir);
    assert_int_equal (system (command), 0);
    snprintf (path, sizeof path, "%s/erin.key.pub", f->dir);
    char *public_line = dtu_read (path);
    assert_non_null (public_line);
    char hex [65];
    assert_int_equal (sscanf (public_line, "airlock-ed25519 %64s", hex), 1);
    free (public_line);
    s_submit (f, "rel-r", "v1", NULL);
    s_wait_state (f, "rel-r", "APPROVE", 60000);
    snprintf (path, sizeof path, "%s/policy/approvers.yaml", f->dir);
    FILE *file = fopen (path, "a");
    assert_non_null (file);
    fprintf (file, "  - name: erin\n    roles: [manager]\n    keys:\n      - {id: erin, ed25519: \"%s\"}\n", hex);
    fclose (file);
    assert_int_equal (kill (al_child_pid (f->broker), SIGHUP), 0);
    //  The broker has reloaded once erin's approval counts.
    char arguments [600];
    snprintf (arguments, sizeof arguments, "approve rel-r-prod --yes --key '%s/erin.key'", f->dir);
    int rc = -1;
    for (int tries = 0; tries < 20 && rc != 0; tries++) {
        zclock_sleep (250);
        rc = ph_airlock (&f->cli, "approve-erin", arguments);
    }
    char *text = ph_output (&f->cli, "approve-erin");
    if (rc != 0 || !strstr (text, "granted"))
        fail_msg ("erin's approval: exit %d:\n%s", rc, text? text: "");
    free (text);
    s_wait_state (f, "rel-r", "FAILED", 30000);
    assert_int_equal (ph_airlock (&f->cli, "refused", "status rel-r"), 0);
    text = ph_output (&f->cli, "refused");
    if (!strstr (text, "deploy-manager refused: the grant does not verify"))
        fail_msg ("status rel-r does not give deploy-manager's refusal:\n%s", text);
    free (text);
    int with_version = 0, total = 0;
    char deploy_state [400];
    snprintf (deploy_state, sizeof deploy_state, "%s/deploy", f->dir);
    dtu_count (deploy_state, "demo", "production", "v1", &with_version, &total);
    assert_int_equal (total, 0);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_release_to_production, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_orchestrator_restart_resumes, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_rollback_and_emergency, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_scheduled_window, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_grant_refused_by_deploy_manager, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_forged_qa_verdict, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
