/*  test_deploy_manager.c: `airlock agent deploy-manager` against a real broker.

    Real processes: the broker (broker_under_test, through tests/broker/harness), the
    deploy-manager agent (the airlock binary), demo-service instances. Shown here:
      - staging: the orchestrator's DeployRequest is carried out end to end; the journal
        lives in the broker's store (StatusQuery "journal") and the receipt is an audit row;
      - kill -9 of deploy-manager mid-rollout, then a restart: the delivery comes back,
        the journal says rollout was interrupted, the release is rolled back to the
        recorded one; no step started twice; the leftover instances are gone;
      - production: a DeployRequest for production and an ExecuteDeploy from an agent are
        refused by the broker; a signed approval opens the gate, the broker's
        ExecuteDeploy reaches deploy-manager, which verifies the grant itself and deploys;
        the receipt carries the approval.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include "../broker/harness.h"
#include "deploy_test_util.h"
#include "deploy/al_deployer.h"
#include "policies/al_approval_sign.h"
#include "proto/al_codec.h"
#include <jansson.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    harness_t *harness;
    pid_t agent;
    int counter;
    char deploy_state [400];
    uint8_t alice_public [32];
    uint8_t alice_secret [64];
    zsock_t *orchestrator;
} s_fixture_t;

static void
s_start_agent (s_fixture_t *f)
{
    char log [400];
    snprintf (log, sizeof log, "%s/deploy-manager.log", f->harness->dir);
    const char *binary = getenv ("AIRLOCK_BINARY_DIR");
    char airlock [400];
    snprintf (airlock, sizeof airlock, "%s/airlock", binary);
    f->agent = fork ();
    assert_true (f->agent >= 0);
    if (f->agent == 0) {
        FILE *out = freopen (log, "a", stderr);
        (void) out;
        execl (airlock, airlock, "agent", "deploy-manager", "--config", f->harness->config_path, (char *) NULL);
        _exit (127);
    }
}

static void
s_stop_agent (s_fixture_t *f, int signum)
{
    if (f->agent <= 0)
        return;
    kill (f->agent, signum);
    int status = 0;
    waitpid (f->agent, &status, 0);
    f->agent = 0;
}

static al_envelope_t *
s_roundtrip (s_fixture_t *f, zsock_t *client, al_envelope_t *envelope)
{
    char id [32];
    snprintf (id, sizeof id, "m-%d", ++f->counter);
    envelope->message_id = id;
    assert_int_equal (harness_send (client, envelope), 0);
    for (int tries = 0; tries < 50; tries++) {
        al_envelope_t *answer = harness_recv (client, 5000);
        assert_non_null (answer);
        if ((answer->body_case == AIRLOCK__ENVELOPE__BODY_ACK && strcmp (answer->ack->acked_message_id, id) == 0)
        ||  (answer->body_case == AIRLOCK__ENVELOPE__BODY_DENIED
             && strcmp (answer->denied->denied_message_id, id) == 0)
        ||  (answer->body_case == AIRLOCK__ENVELOPE__BODY_STATUS_REPLY && strcmp (answer->correlation_id, id) == 0))
            return answer;
        al_codec_free (&answer);
    }
    fail_msg ("no answer to %s", id);
    return NULL;
}

static zsock_t *
s_client (s_fixture_t *f, const char *identity)
{
    zsock_t *client = harness_client (f->harness, identity, NULL);
    assert_non_null (client);
    char id [32];
    snprintf (id, sizeof id, "reg-%d", ++f->counter);
    harness_register (client, id, false);
    al_envelope_t *answer = harness_recv (client, 5000);
    assert_non_null (answer);
    al_codec_free (&answer);
    return client;
}

static int
s_setup (void **state)
{
    assert_true (sodium_init () >= 0);
    s_fixture_t *f = calloc (1, sizeof *f);
    assert_non_null (f);
    static const harness_identity_t identities [] = {
        { "orchestrator", "orchestrator" }, { "deploy-manager", "deploy-manager" }, { "approver", "approver" },
        { "monitor", "monitor" },
    };
    f->harness = harness_new (NULL, identities, sizeof identities / sizeof identities [0]);
    assert_non_null (f->harness);
    harness_t *h = f->harness;
    //  The agent connects with the state directory's certificate, like in production.
    char path [600];
    snprintf (path, sizeof path, "%s/keys", h->dir);
    mkdir (path, 0700);
    snprintf (path, sizeof path, "%s/keys/deploy-manager.cert", h->dir);
    assert_int_equal (zcert_save ((zcert_t *) zhashx_lookup (h->certs, "deploy-manager"), path), 0);
    //  An approver (manager) and an open calendar.
    crypto_sign_keypair (f->alice_public, f->alice_secret);
    char hex [65];
    sodium_bin2hex (hex, sizeof hex, f->alice_public, 32);
    snprintf (path, sizeof path, "%s/approvers.yaml", h->policy_dir);
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fprintf (file, "approvers:\n  - name: alice\n    roles: [manager]\n    keys:\n      - {id: a, ed25519: \"%s\"}\n", hex);
    fclose (file);
    dtu_open_calendar (h->policy_dir);
    //  services.yaml: the demo service, 3 instances, quick gates.
    snprintf (path, sizeof path, "%s/services.yaml", h->dir);
    file = fopen (path, "w");
    assert_non_null (file);
    fprintf (file, "version: 1\nservices:\n  demo:\n    driver: process\n    instances: 3\n    strategy: rolling\n"
                   "    soak_ms: 600\n    soak: { duration_ms: 600, reason: \"test: 600 ms of production soak suffice\" }\n"
                   "    probe_interval_ms: 100\n    ready_timeout_ms: 10000\n"
                   "    stop_timeout_ms: 3000\n    command: [\"{{artifact}}\"]\n    signals: probes\n"
                   "  watched:\n    driver: process\n    instances: 1\n    strategy: rolling\n"
                   "    soak_ms: 600\n    soak: { duration_ms: 600, reason: \"test: 600 ms of production soak suffice\" }\n"
                   "    probe_interval_ms: 100\n    ready_timeout_ms: 10000\n"
                   "    stop_timeout_ms: 3000\n    command: [\"{{artifact}}\"]\n    signals: monitor\n");
    fclose (file);
    snprintf (f->deploy_state, sizeof f->deploy_state, "%s/deploy", h->dir);
    assert_int_equal (harness_broker_start (h), 0);
    f->orchestrator = s_client (f, "orchestrator");
    s_start_agent (f);
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    s_fixture_t *f = *state;
    s_stop_agent (f, SIGTERM);
    zsock_destroy (&f->orchestrator);
    harness_destroy (&f->harness);
    free (f);
    return 0;
}

static void
s_deploy_request (s_fixture_t *f, const char *deployment_id, Airlock__Environment env, const char *version,
                  const char *artifact, const char *sha, Airlock__DeployRequest *request, al_envelope_t *envelope)
{
    airlock__deploy_request__init (request);
    request->service = (char *) "demo";
    request->version = (char *) version;
    request->artifact_uri = (char *) artifact;
    request->artifact_sha256 = (char *) sha;
    request->strategy = AIRLOCK__STRATEGY__STRATEGY_ROLLING;
    request->deployment_type = AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD;
    airlock__envelope__init (envelope);
    envelope->deployment_id = (char *) deployment_id;
    envelope->environment = env;
    envelope->body_case = AIRLOCK__ENVELOPE__BODY_DEPLOY_REQUEST;
    envelope->deploy_request = request;
    (void) f;
}

static json_t *
s_receipt (s_fixture_t *f, const char *deployment_id, int timeout_ms)
{
    char path [700];
    snprintf (path, sizeof path, "%s/.artifacts/deployment/%s/deploy_receipt.json", f->deploy_state, deployment_id);
    for (int waited = 0; waited < timeout_ms; waited += 100) {
        json_t *root = json_load_file (path, 0, NULL);
        if (root)
            return root;
        zclock_sleep (100);
    }
    char log [400];
    snprintf (log, sizeof log, "%s/deploy-manager.log", f->harness->dir);
    char *text = dtu_read (log);
    fail_msg ("no receipt for %s; deploy-manager's log:\n%s", deployment_id, text? text: "(none)");
    return NULL;
}

static al_deploy_journal_t
s_journal (s_fixture_t *f, const char *deployment_id)
{
    al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
    Airlock__StatusQuery query = AIRLOCK__STATUS_QUERY__INIT;
    query.what = (char *) "journal";
    query.filter = (char *) deployment_id;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_STATUS_QUERY;
    envelope.status_query = &query;
    al_envelope_t *reply = s_roundtrip (f, f->orchestrator, &envelope);
    assert_int_equal (reply->body_case, AIRLOCK__ENVELOPE__BODY_STATUS_REPLY);
    al_deploy_journal_t journal;
    char error [256];
    if (al_deploy_journal_parse (reply->status_reply->json, deployment_id, &journal, error, sizeof error) != 0)
        fail_msg ("journal: %s (%s)", error, reply->status_reply->json);
    al_codec_free (&reply);
    return journal;
}

static void
s_expect_no_step_twice (const al_deploy_journal_t *journal)
{
    unsigned started [8] = { 0 };
    for (size_t i = 0; i < journal->count; i++)
        if (journal->records [i].outcome == AIRLOCK__OUTCOME__OUTCOME_STARTED)
            started [journal->records [i].step]++;
    for (int step = 1; step < 8; step++)
        if (started [step] > 1)
            fail_msg ("step %s started %u times", al_step_name ((Airlock__Step) step), started [step]);
}

static void
test_staging_and_kill_mid_rollout (void **state)
{
    s_fixture_t *f = *state;
    char v1 [1024], v2 [1024], sha1 [65], sha2 [65];
    dtu_artifact (f->harness->dir, "demo-v1", "v1", NULL, v1, sizeof v1, sha1);
    dtu_artifact (f->harness->dir, "demo-v2", "v2", "--ready-delay-ms 1500", v2, sizeof v2, sha2);

    Airlock__DeployRequest request;
    al_envelope_t envelope;
    s_deploy_request (f, "dep-1", AIRLOCK__ENVIRONMENT__ENV_STAGING, "v1", v1, sha1, &request, &envelope);
    al_envelope_t *answer = s_roundtrip (f, f->orchestrator, &envelope);
    assert_int_equal (answer->body_case, AIRLOCK__ENVELOPE__BODY_ACK);
    al_codec_free (&answer);
    json_t *receipt = s_receipt (f, "dep-1", 60000);
    assert_string_equal (json_string_value (json_object_get (receipt, "outcome")), "succeeded");
    json_decref (receipt);
    assert_int_equal (harness_wait_rows (f->harness, "DeployReceipt", "deploy-manager", NULL, 1, 10000), 1);
    al_deploy_journal_t journal = s_journal (f, "dep-1");
    assert_int_equal (journal.count, 12);      // six steps, before and after each
    s_expect_no_step_twice (&journal);
    al_deploy_journal_clear (&journal);

    //  v2 takes 1.5 s per instance to get ready: kill -9 once its first instance runs.
    s_deploy_request (f, "dep-2", AIRLOCK__ENVIRONMENT__ENV_STAGING, "v2", v2, sha2, &request, &envelope);
    answer = s_roundtrip (f, f->orchestrator, &envelope);
    assert_int_equal (answer->body_case, AIRLOCK__ENVELOPE__BODY_ACK);
    al_codec_free (&answer);
    char registry [600];
    snprintf (registry, sizeof registry, "%s/drivers/demo/staging/instances.json", f->deploy_state);
    bool seen = false;
    for (int waited = 0; waited < 30000 && !seen; waited += 20) {
        char *text = dtu_read (registry);
        seen = text && strstr (text, "\"v2\"");
        free (text);
        if (!seen)
            zclock_sleep (20);
    }
    assert_true (seen);
    s_stop_agent (f, SIGKILL);
    int with_version = 0, total = 0;
    dtu_count (f->deploy_state, "demo", "staging", "v2", &with_version, &total);
    assert_true (total >= 3);                  // the orphans still run

    //  Restart: the broker redelivers dep-2, the journal says rollout was interrupted.
    s_start_agent (f);
    receipt = s_receipt (f, "dep-2", 60000);
    assert_string_equal (json_string_value (json_object_get (receipt, "outcome")), "rolled_back");
    assert_string_equal (json_string_value (json_object_get (receipt, "rollback_rule")), "interrupted");
    json_decref (receipt);
    dtu_count (f->deploy_state, "demo", "staging", "v1", &with_version, &total);
    assert_int_equal (with_version, 3);
    assert_int_equal (total, 3);
    journal = s_journal (f, "dep-2");
    s_expect_no_step_twice (&journal);
    bool rolled_back = false;
    for (size_t i = 0; i < journal.count; i++)
        rolled_back |= journal.records [i].step == AIRLOCK__STEP__STEP_ROLLBACK
                    && journal.records [i].outcome == AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED;
    assert_true (rolled_back);
    al_deploy_journal_clear (&journal);
    assert_int_equal (harness_wait_rows (f->harness, "DeployReceipt", "deploy-manager", NULL, 2, 10000), 2);
}

static void
test_production_paths (void **state)
{
    s_fixture_t *f = *state;
    char v1 [1024], sha1 [65];
    dtu_artifact (f->harness->dir, "demo-v1", "v1", NULL, v1, sizeof v1, sha1);

    //  1. A DeployRequest for production: refused by the broker's permission table.
    Airlock__DeployRequest request;
    al_envelope_t envelope;
    s_deploy_request (f, "prod-0", AIRLOCK__ENVIRONMENT__ENV_PRODUCTION, "v1", v1, sha1, &request, &envelope);
    al_envelope_t *answer = s_roundtrip (f, f->orchestrator, &envelope);
    assert_int_equal (answer->body_case, AIRLOCK__ENVELOPE__BODY_DENIED);
    assert_int_equal (answer->denied->code, AIRLOCK__DENY_CODE__DENY_NOT_PERMITTED);
    al_codec_free (&answer);

    //  2. The signed way: request filed, alice signs, the broker's ExecuteDeploy reaches
    //     deploy-manager, which verifies the grant itself and deploys.
    Airlock__ApprovalRequest filed = AIRLOCK__APPROVAL_REQUEST__INIT;
    filed.request_id = (char *) "prod-1";
    filed.deployment_type = AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD;
    filed.environment = AIRLOCK__ENVIRONMENT__ENV_PRODUCTION;
    filed.service = (char *) "demo";
    filed.version = (char *) "v1";
    filed.artifact_uri = v1;
    filed.artifact_sha256 = sha1;
    //  The qa agent's report, kept by digest where pre-flight opens it.
    char qa_digest [65];
    dtu_qa_report (f->harness->dir, sha1, true, qa_digest);
    filed.qa_report_sha256 = qa_digest;
    filed.summary = (char *) "v1 to production";
    filed.strategy = AIRLOCK__STRATEGY__STRATEGY_ROLLING;
    filed.instances = 3;
    al_envelope_t file_envelope = AIRLOCK__ENVELOPE__INIT;
    file_envelope.deployment_id = (char *) "prod-1";
    file_envelope.environment = AIRLOCK__ENVIRONMENT__ENV_PRODUCTION;
    file_envelope.body_case = AIRLOCK__ENVELOPE__BODY_APPROVAL_REQUEST;
    file_envelope.approval_request = &filed;
    answer = s_roundtrip (f, f->orchestrator, &file_envelope);
    assert_int_equal (answer->body_case, AIRLOCK__ENVELOPE__BODY_ACK);
    al_codec_free (&answer);
    al_approval_sign_options_t options = { .decision = AIRLOCK__DECISION__DECISION_GRANT,
                                      .issued_at_ms = (uint64_t) time (NULL) * 1000, .valid_for_ms = 3600000 };
    char error [256];
    al_approval_signed_t *approval = al_approval_sign_with_secret (&filed, f->alice_secret, &options, error, sizeof error);
    assert_non_null (approval);
    //  3. Before it is submitted, an agent wraps that genuine signed approval in an ExecuteDeploy of its own
    //     (from the orchestrator's key and from deploy-manager's own key): the broker
    //     refuses both; only its approval gate makes an ExecuteDeploy.
    const char *senders [] = { "orchestrator", "deploy-manager" };
    for (size_t i = 0; i < 2; i++) {
        zsock_t *client = i == 0? f->orchestrator: s_client (f, senders [i]);
        Airlock__SignedApproval *signatures [1] = { (Airlock__SignedApproval *) al_approval_signed_message (approval) };
        Airlock__ProductionGrant grant = AIRLOCK__PRODUCTION_GRANT__INIT;
        grant.request_id = (char *) "prod-1";
        grant.request = &filed;
        grant.n_approvals = 1;
        grant.approvals = signatures;
        grant.granted_at_ms = (uint64_t) time (NULL) * 1000;
        Airlock__ExecuteDeploy execute = AIRLOCK__EXECUTE_DEPLOY__INIT;
        execute.request = &request;
        execute.grant = &grant;
        al_envelope_t forged = AIRLOCK__ENVELOPE__INIT;
        forged.deployment_id = (char *) "prod-forged";
        forged.environment = AIRLOCK__ENVIRONMENT__ENV_PRODUCTION;
        forged.body_case = AIRLOCK__ENVELOPE__BODY_EXECUTE_DEPLOY;
        forged.execute_deploy = &execute;
        answer = s_roundtrip (f, client, &forged);
        assert_int_equal (answer->body_case, AIRLOCK__ENVELOPE__BODY_DENIED);
        assert_int_equal (answer->denied->code, AIRLOCK__DENY_CODE__DENY_NOT_PERMITTED);
        al_codec_free (&answer);
        if (i == 1)
            zsock_destroy (&client);
    }
    zsock_t *approver = s_client (f, "approver");
    al_envelope_t submit = AIRLOCK__ENVELOPE__INIT;
    submit.environment = AIRLOCK__ENVIRONMENT__ENV_PRODUCTION;
    submit.body_case = AIRLOCK__ENVELOPE__BODY_SIGNED_APPROVAL;
    submit.signed_approval = (Airlock__SignedApproval *) al_approval_signed_message (approval);
    answer = s_roundtrip (f, approver, &submit);
    assert_int_equal (answer->body_case, AIRLOCK__ENVELOPE__BODY_ACK);
    assert_non_null (strstr (answer->ack->detail, "granted"));
    al_codec_free (&answer);
    al_approval_signed_destroy (&approval);
    zsock_destroy (&approver);

    json_t *receipt = s_receipt (f, "prod-1", 60000);
    assert_string_equal (json_string_value (json_object_get (receipt, "outcome")), "succeeded");
    assert_string_equal (json_string_value (json_object_get (receipt, "environment")), "production");
    json_t *approvals = json_object_get (receipt, "approvals");
    assert_int_equal (json_array_size (approvals), 1);
    assert_string_equal (json_string_value (json_object_get (json_array_get (approvals, 0), "decision")), "grant");
    json_decref (receipt);
    int with_version = 0, total = 0;
    dtu_count (f->deploy_state, "demo", "production", "v1", &with_version, &total);
    assert_int_equal (with_version, 3);
    //  Nothing ran for the refused attempts.
    char path [700];
    snprintf (path, sizeof path, "%s/.artifacts/deployment/prod-0", f->deploy_state);
    assert_int_not_equal (access (path, F_OK), 0);
    snprintf (path, sizeof path, "%s/.artifacts/deployment/prod-forged", f->deploy_state);
    assert_int_not_equal (access (path, F_OK), 0);
}

//  A broker restart makes every agent register again, deploy-manager often before the
//  monitor. Pre-flight of a service whose soak needs golden signals waits (bounded) for a
//  monitor to register instead of failing at once and burning the request.
static void
test_preflight_waits_for_the_monitor (void **state)
{
    s_fixture_t *f = *state;
    char v1 [1024], sha1 [65];
    dtu_artifact (f->harness->dir, "watched-v1", "v1", NULL, v1, sizeof v1, sha1);
    Airlock__DeployRequest request;
    al_envelope_t envelope;
    s_deploy_request (f, "wait-1", AIRLOCK__ENVIRONMENT__ENV_STAGING, "v1", v1, sha1, &request, &envelope);
    request.service = (char *) "watched";
    al_envelope_t *answer = s_roundtrip (f, f->orchestrator, &envelope);
    assert_int_equal (answer->body_case, AIRLOCK__ENVELOPE__BODY_ACK);
    al_codec_free (&answer);
    //  The monitor registers only once pre-flight has started (and found none).
    bool started = false;
    for (int waited = 0; waited < 60000 && !started; waited += 100) {
        al_deploy_journal_t journal = s_journal (f, "wait-1");
        for (size_t i = 0; i < journal.count; i++)
            started |= journal.records [i].step == AIRLOCK__STEP__STEP_PREFLIGHT;
        al_deploy_journal_clear (&journal);
        if (!started)
            zclock_sleep (100);
    }
    assert_true (started);
    //  Long enough for a pre-flight that asks once to have given up, well inside the wait.
    zclock_sleep (5000);
    zsock_t *monitor = s_client (f, "monitor");
    //  Pre-flight's end record says the monitor check passed.
    bool passed = false, failed = false;
    for (int waited = 0; waited < 60000 && !passed && !failed; waited += 250) {
        al_deploy_journal_t journal = s_journal (f, "wait-1");
        for (size_t i = 0; i < journal.count; i++)
            if (journal.records [i].step == AIRLOCK__STEP__STEP_PREFLIGHT
            &&  journal.records [i].outcome != AIRLOCK__OUTCOME__OUTCOME_STARTED) {
                passed = journal.records [i].outcome == AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED;
                failed = !passed;
                if (failed)
                    print_message ("pre-flight: %s\n", journal.records [i].detail);
            }
        al_deploy_journal_clear (&journal);
        if (!passed && !failed)
            zclock_sleep (250);
    }
    assert_true (passed);
    zsock_destroy (&monitor);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_staging_and_kill_mid_rollout, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_production_paths, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_preflight_waits_for_the_monitor, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
