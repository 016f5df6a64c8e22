/*  test_approvals.c: the approval gate on the real bus (issue 5).

    The broker runs as a real process; clients are raw CURVE DEALERs. Every attempt that
    must not open production is counted: each must come back Denied and leave exactly
    one denial row, and in the end the log holds exactly one production grant: the one
    the quorum earned. Replays are tried at once, on a new connection and after kill -9
    and restart of the broker. The real `airlock approve` then signs from a terminal with
    an airlock key and with an OpenSSH key.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "harness.h"
#include "policies/al_approval_sign.h"
#include "proto/al_codec.h"

#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char s_artifact [] = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
static const char s_other [] = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752";
static const char s_qa [] = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";

typedef struct {
    uint8_t public_key [32];
    uint8_t secret_key [64];
} s_key_t;

typedef struct {
    harness_t *harness;
    s_key_t alice, bob, carol, dave, erin, stranger;
    size_t attempts;                // must-fail attempts at the gate
    int counter;                    // message ids
} s_fixture_t;

static uint64_t
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

static void
s_write_approvers (s_fixture_t *f, const char *extra)
{
    char path [400], alice [65], bob [65], carol [65], dave [65], erin [65];
    sodium_bin2hex (alice, sizeof alice, f->alice.public_key, 32);
    sodium_bin2hex (bob, sizeof bob, f->bob.public_key, 32);
    sodium_bin2hex (carol, sizeof carol, f->carol.public_key, 32);
    sodium_bin2hex (dave, sizeof dave, f->dave.public_key, 32);
    sodium_bin2hex (erin, sizeof erin, f->erin.public_key, 32);
    snprintf (path, sizeof path, "%s/approvers.yaml", f->harness->policy_dir);
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fprintf (file, "approvers:\n"
        "  - name: alice\n    roles: [manager]\n    keys:\n      - {id: a, ed25519: \"%s\"}\n"
        "  - name: carol\n    roles: [security]\n    keys:\n      - {id: c, ed25519: \"%s\"}\n"
        "  - name: dave\n    roles: [devops]\n    keys:\n      - {id: d, ed25519: \"%s\"}\n"
        "  - name: erin\n    roles: [manager]\n    keys: []\n    revoked_keys:\n      - {id: e, ed25519: \"%s\"}\n"
        "  - name: bob\n    roles: [manager]\n    keys:\n      - {id: b, ed25519: \"%s\"}\n%s",
        alice, carol, dave, erin, bob, extra ? extra : "");
    fclose (file);
}

//  Deploy windows and freezes do not get in the way of these tests (they are tested
//  against injected clocks in tests/gate): an empty calendar.
static void
s_open_calendar (s_fixture_t *f)
{
    char path [400];
    snprintf (path, sizeof path, "%s/constraints.yaml", f->harness->policy_dir);
    FILE *file = fopen (path, "r");
    assert_non_null (file);
    char text [8192];
    size_t size = fread (text, 1, sizeof text - 1, file);
    fclose (file);
    text [size] = 0;
    char *calendar = strstr (text, "\ncalendar:");
    assert_non_null (calendar);
    calendar [1] = 0;
    file = fopen (path, "w");
    assert_non_null (file);
    fprintf (file, "%scalendar:\n  timezone: UTC\n  applies_to: [production]\n  windows: []\n"
                   "  freezes:\n    weekdays: []\n    holidays: []\n    month_end: off\n", text);
    fclose (file);
}

//  identities.yaml: name the person behind identity (the harness writes none).
static void
s_name_person (s_fixture_t *f, const char *identity, const char *person)
{
    char path [400], text [16384], entry [128];
    snprintf (path, sizeof path, "%s/identities.yaml", f->harness->policy_dir);
    FILE *file = fopen (path, "r");
    assert_non_null (file);
    size_t size = fread (text, 1, sizeof text - 1, file);
    fclose (file);
    text [size] = 0;
    snprintf (entry, sizeof entry, "    identity: %s\n", identity);
    char *at = strstr (text, entry);
    assert_non_null (at);
    char *end = strchr (at + strlen (entry), '\n');    // the entry's role line
    assert_non_null (end);
    file = fopen (path, "w");
    assert_non_null (file);
    fprintf (file, "%.*s\n    person: %s%s", (int) (end - text), text, person, end);
    fclose (file);
}

static int
s_setup (void **state)
{
    assert_true (sodium_init () >= 0);
    s_fixture_t *f = calloc (1, sizeof *f);
    assert_non_null (f);
    static const harness_identity_t identities [] = {
        { "orchestrator", "orchestrator" }, { "deploy-manager", "deploy-manager" }, { "qa", "qa" },
        { "approver", "approver" }, { "approver-2", "approver" },
        { "ci-1", "ci" },                   // alice's CI identity (s_name_person): four eyes
    };
    f->harness = harness_new (NULL, identities, sizeof identities / sizeof identities [0]);
    assert_non_null (f->harness);
    s_key_t *keys [] = { &f->alice, &f->bob, &f->carol, &f->dave, &f->erin, &f->stranger };
    for (size_t i = 0; i < sizeof keys / sizeof keys [0]; i++)
        crypto_sign_keypair (keys [i]->public_key, keys [i]->secret_key);
    s_write_approvers (f, NULL);
    s_name_person (f, "ci-1", "alice");
    s_open_calendar (f);
    assert_int_equal (harness_broker_start (f->harness), 0);
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    s_fixture_t *f = *state;
    harness_destroy (&f->harness);
    free (f);
    return 0;
}

static Airlock__ApprovalRequest
s_request (const char *request_id, Airlock__DeploymentType type)
{
    Airlock__ApprovalRequest request = AIRLOCK__APPROVAL_REQUEST__INIT;
    request.request_id = (char *) request_id;
    request.deployment_type = type;
    request.environment = AIRLOCK__ENVIRONMENT__ENV_PRODUCTION;
    request.service = "demo-service";
    request.version = "v2.0.0";
    request.artifact_uri = "file:///artifacts/demo-service-v2";
    request.artifact_sha256 = (char *) s_artifact;
    request.qa_report_sha256 = (char *) s_qa;
    request.requested_by = "somebody-else";     // overwritten by the broker
    request.summary = "v2: faster checkout";
    request.strategy = AIRLOCK__STRATEGY__STRATEGY_ROLLING;
    request.instances = 3;
    return request;
}

//  Send an envelope from client and return the answer (Ack or Denied; caller frees).
static al_envelope_t *
s_roundtrip (s_fixture_t *f, zsock_t *client, al_envelope_t *envelope)
{
    char id [32];
    snprintf (id, sizeof id, "m-%d", ++f->counter);
    envelope->message_id = id;
    assert_int_equal (harness_send (client, envelope), 0);
    for (int tries = 0; tries < 20; tries++) {
        al_envelope_t *answer = harness_recv (client, 5000);
        assert_non_null (answer);
        if ((answer->body_case == AIRLOCK__ENVELOPE__BODY_ACK && strcmp (answer->ack->acked_message_id, id) == 0)
        ||  (answer->body_case == AIRLOCK__ENVELOPE__BODY_DENIED
             && strcmp (answer->denied->denied_message_id, id) == 0))
            return answer;
        al_codec_free (&answer);
    }
    fail_msg ("no answer to %s", id);
    return NULL;
}

static void
s_file_request (s_fixture_t *f, zsock_t *orchestrator, const char *request_id, Airlock__DeploymentType type)
{
    Airlock__ApprovalRequest request = s_request (request_id, type);
    al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
    envelope.deployment_id = (char *) request_id;
    envelope.environment = AIRLOCK__ENVIRONMENT__ENV_PRODUCTION;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_APPROVAL_REQUEST;
    envelope.approval_request = &request;
    al_envelope_t *answer = s_roundtrip (f, orchestrator, &envelope);
    assert_int_equal (answer->body_case, AIRLOCK__ENVELOPE__BODY_ACK);
    al_codec_free (&answer);
}

static al_approval_signed_t *
s_sign (const Airlock__ApprovalRequest *request, const s_key_t *key, uint64_t issued, uint64_t valid_for,
        Airlock__Decision decision)
{
    al_approval_sign_options_t options = {
        .decision = decision, .reason = decision == AIRLOCK__DECISION__DECISION_DENY ? "not today" : NULL,
        .issued_at_ms = issued, .valid_for_ms = valid_for,
    };
    char error [256];
    al_approval_signed_t *signed_approval = al_approval_sign_with_secret (request, key->secret_key, &options,
                                                                          error, sizeof error);
    if (!signed_approval)
        fail_msg ("signing: %s", error);
    return signed_approval;
}

static al_envelope_t *
s_submit (s_fixture_t *f, zsock_t *client, const Airlock__SignedApproval *approval)
{
    al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
    envelope.environment = AIRLOCK__ENVIRONMENT__ENV_PRODUCTION;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_SIGNED_APPROVAL;
    envelope.signed_approval = (Airlock__SignedApproval *) approval;
    return s_roundtrip (f, client, &envelope);
}

//  An attempt that must be refused by the gate: Denied, code APPROVAL_INVALID, and the
//  reason naming what is wrong.
static void
s_expect_refused (s_fixture_t *f, zsock_t *client, const Airlock__SignedApproval *approval, const char *why)
{
    f->attempts++;
    al_envelope_t *answer = s_submit (f, client, approval);
    if (answer->body_case != AIRLOCK__ENVELOPE__BODY_DENIED)
        fail_msg ("attempt %zu (%s) was accepted: %s", f->attempts, why, answer->ack->detail);
    assert_int_equal (answer->denied->code, AIRLOCK__DENY_CODE__DENY_APPROVAL_INVALID);
    if (!strstr (answer->denied->reason, why))
        fail_msg ("attempt %zu: reason '%s' does not mention '%s'", f->attempts, answer->denied->reason, why);
    assert_true (answer->denied->audit_sequence > 0);
    al_codec_free (&answer);
}

static zsock_t *
s_client (s_fixture_t *f, const char *identity, bool deliveries)
{
    zsock_t *client = harness_client (f->harness, identity, NULL);
    assert_non_null (client);
    char id [32];
    snprintf (id, sizeof id, "reg-%d", ++f->counter);
    harness_register (client, id, deliveries);
    al_envelope_t *answer = harness_recv (client, 5000);
    assert_non_null (answer);
    al_codec_free (&answer);
    return client;
}

static void
test_gate_on_the_bus (void **state)
{
    s_fixture_t *f = *state;
    zsock_t *orchestrator = s_client (f, "orchestrator", false);
    zsock_t *approver = s_client (f, "approver", false);
    zsock_t *qa = s_client (f, "qa", false);
    s_file_request (f, orchestrator, "req-hotfix-1", AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_HOTFIX);
    Airlock__ApprovalRequest request = s_request ("req-hotfix-1", AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_HOTFIX);
    uint64_t now = s_now_ms ();

    //  The pending list, with requested_by stamped from the authenticated sender.
    al_envelope_t query = AIRLOCK__ENVELOPE__INIT;
    Airlock__StatusQuery status_query = AIRLOCK__STATUS_QUERY__INIT;
    status_query.what = "approvals";
    query.body_case = AIRLOCK__ENVELOPE__BODY_STATUS_QUERY;
    query.status_query = &status_query;
    query.message_id = "q-1";
    assert_int_equal (harness_send (approver, &query), 0);
    al_envelope_t *reply = NULL;
    for (int tries = 0; tries < 5 && !reply; tries++) {
        reply = harness_recv (approver, 5000);
        if (reply && reply->body_case != AIRLOCK__ENVELOPE__BODY_STATUS_REPLY)
            al_codec_free (&reply);
    }
    assert_non_null (reply);
    assert_int_equal (reply->status_reply->n_approvals, 1);
    assert_string_equal (reply->status_reply->approvals [0]->requested_by, "orchestrator");
    al_codec_free (&reply);

    //  Keys that never count.
    al_approval_signed_t *signed_approval = s_sign (&request, &f->stranger, now, 3600000, AIRLOCK__DECISION__DECISION_GRANT);
    s_expect_refused (f, approver, al_approval_signed_message (signed_approval), "not an approver key");
    al_approval_signed_destroy (&signed_approval);
    signed_approval = s_sign (&request, &f->erin, now, 3600000, AIRLOCK__DECISION__DECISION_GRANT);
    s_expect_refused (f, approver, al_approval_signed_message (signed_approval), "revoked");
    al_approval_signed_destroy (&signed_approval);

    //  A statement for another artifact, and an expired approval.
    Airlock__ApprovalRequest other = request;
    other.artifact_sha256 = (char *) s_other;
    signed_approval = s_sign (&other, &f->alice, now, 3600000, AIRLOCK__DECISION__DECISION_GRANT);
    s_expect_refused (f, approver, al_approval_signed_message (signed_approval), "artifact_sha256");
    al_approval_signed_destroy (&signed_approval);
    signed_approval = s_sign (&request, &f->alice, now - 7200000, 3600000, AIRLOCK__DECISION__DECISION_GRANT);
    s_expect_refused (f, approver, al_approval_signed_message (signed_approval), "expired");
    al_approval_signed_destroy (&signed_approval);

    //  Bit flips of a valid approval, in the statement and in the signature.
    al_approval_signed_t *alice = s_sign (&request, &f->alice, now, 3600000, AIRLOCK__DECISION__DECISION_GRANT);
    Airlock__SignedApproval flipped = *al_approval_signed_message (alice);
    uint8_t statement [1024], signature [64];
    assert_true (flipped.statement.len <= sizeof statement);
    for (size_t bit = 0; bit < flipped.statement.len * 8; bit += 37) {
        memcpy (statement, flipped.statement.data, flipped.statement.len);
        statement [bit / 8] ^= (uint8_t) (1u << (bit % 8));
        Airlock__SignedApproval copy = flipped;
        copy.statement.data = statement;
        s_expect_refused (f, approver, &copy, "");
    }
    for (size_t bit = 0; bit < 64 * 8; bit += 41) {
        memcpy (signature, flipped.signature.data, 64);
        signature [bit / 8] ^= (uint8_t) (1u << (bit % 8));
        Airlock__SignedApproval copy = flipped;
        copy.signature.data = signature;
        s_expect_refused (f, approver, &copy, "signature");
    }

    //  An agent may not even carry a valid approval: qa is refused by the policy.
    al_envelope_t *answer = s_submit (f, qa, al_approval_signed_message (alice));
    assert_int_equal (answer->body_case, AIRLOCK__ENVELOPE__BODY_DENIED);
    assert_int_equal (answer->denied->code, AIRLOCK__DENY_CODE__DENY_NOT_PERMITTED);
    al_codec_free (&answer);

    //  alice's valid approval: counted, one more (security) needed.
    answer = s_submit (f, approver, al_approval_signed_message (alice));
    assert_int_equal (answer->body_case, AIRLOCK__ENVELOPE__BODY_ACK);
    assert_non_null (strstr (answer->ack->detail, "waiting for 1 more approval: security"));
    al_codec_free (&answer);

    //  Replays of it: at once, on a new connection, and after kill -9 + restart.
    s_expect_refused (f, approver, al_approval_signed_message (alice), "used before");
    zsock_t *second = s_client (f, "approver-2", false);
    s_expect_refused (f, second, al_approval_signed_message (alice), "used before");
    zsock_destroy (&second);
    zsock_destroy (&approver);
    zsock_destroy (&orchestrator);
    zsock_destroy (&qa);
    assert_int_not_equal (harness_broker_signal (f->harness, SIGKILL), -1);
    assert_int_equal (harness_broker_start (f->harness), 0);
    approver = s_client (f, "approver", false);
    s_expect_refused (f, approver, al_approval_signed_message (alice), "used before");
    al_approval_signed_destroy (&alice);

    //  deploy-manager listens; carol (security) completes the quorum after the restart:
    //  alice's approval was rebuilt from the log.
    zsock_t *deploy_manager = s_client (f, "deploy-manager", true);
    al_approval_signed_t *carol = s_sign (&request, &f->carol, s_now_ms (), 3600000, AIRLOCK__DECISION__DECISION_GRANT);
    answer = s_submit (f, approver, al_approval_signed_message (carol));
    assert_int_equal (answer->body_case, AIRLOCK__ENVELOPE__BODY_ACK);
    assert_non_null (strstr (answer->ack->detail, "granted"));
    al_codec_free (&answer);
    al_approval_signed_destroy (&carol);

    //  deploy-manager receives the broker's ExecuteDeploy with the grant and both approvals.
    al_envelope_t *delivery = NULL;
    for (int tries = 0; tries < 10 && !delivery; tries++) {
        delivery = harness_recv (deploy_manager, 5000);
        if (delivery && delivery->body_case != AIRLOCK__ENVELOPE__BODY_EXECUTE_DEPLOY)
            al_codec_free (&delivery);
    }
    assert_non_null (delivery);
    assert_int_equal (delivery->environment, AIRLOCK__ENVIRONMENT__ENV_PRODUCTION);
    assert_string_equal (delivery->sender->identity, "broker");
    assert_non_null (delivery->execute_deploy->grant);
    assert_string_equal (delivery->execute_deploy->grant->request_id, "req-hotfix-1");
    assert_int_equal (delivery->execute_deploy->grant->n_approvals, 2);
    assert_string_equal (delivery->execute_deploy->request->artifact_sha256, s_artifact);
    assert_true (delivery->delivery_id > 0);
    al_codec_free (&delivery);

    //  After the grant the request is closed.
    al_approval_signed_t *dave = s_sign (&request, &f->dave, s_now_ms (), 3600000, AIRLOCK__DECISION__DECISION_GRANT);
    s_expect_refused (f, approver, al_approval_signed_message (dave), "closed");
    al_approval_signed_destroy (&dave);

    //  Any other way to ask deploy-manager to act in production is refused and audited.
    orchestrator = s_client (f, "orchestrator", false);
    harness_deploy_request (orchestrator, "prod-direct", AIRLOCK__ENVIRONMENT__ENV_PRODUCTION);
    answer = harness_recv (orchestrator, 5000);
    assert_non_null (answer);
    assert_int_equal (answer->body_case, AIRLOCK__ENVELOPE__BODY_DENIED);
    al_codec_free (&answer);

    //  The log: one denial row per refused attempt, exactly one grant, a verified chain.
    long refused = harness_wait_rows (f->harness, "SignedApproval", NULL, "approval refused", (long) f->attempts, 5000);
    assert_int_equal (refused, (long) f->attempts);
    assert_int_equal (harness_count_rows (f->harness, "ExecuteDeploy", "broker", NULL), 1);
    al_verify_report_t report;
    assert_int_equal (al_store_verify_path (NULL, f->harness->database, NULL, NULL, &report), AL_STORE_OK);
    assert_int_equal (report.result, AL_VERIFY_OK);
    printf ("adversarial attempts on the bus: %zu, denial rows: %ld, production grants: 1\n", f->attempts, refused);
    zsock_destroy (&orchestrator);
    zsock_destroy (&approver);
    zsock_destroy (&deploy_manager);
}

static void
test_deny_closes_and_cli_approves (void **state)
{
    s_fixture_t *f = *state;
    zsock_t *orchestrator = s_client (f, "orchestrator", false);
    zsock_t *approver = s_client (f, "approver", false);

    //  A required approver's DENY closes the request: a later GRANT is refused.
    s_file_request (f, orchestrator, "req-denied", AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD);
    Airlock__ApprovalRequest denied = s_request ("req-denied", AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD);
    al_approval_signed_t *no = s_sign (&denied, &f->alice, s_now_ms (), 3600000, AIRLOCK__DECISION__DECISION_DENY);
    al_envelope_t *answer = s_submit (f, approver, al_approval_signed_message (no));
    assert_int_equal (answer->body_case, AIRLOCK__ENVELOPE__BODY_ACK);
    assert_non_null (strstr (answer->ack->detail, "denied by alice"));
    al_codec_free (&answer);
    al_approval_signed_destroy (&no);
    assert_int_equal (harness_wait_rows (f->harness, "ApprovalClosed", "broker", "req-denied", 1, 5000), 1);

    //  The terminal client: save the approver's certificate where airlock.yaml points,
    //  then `airlock approve --yes` with an airlock key file and with an OpenSSH key
    //  (a hotfix, so both signatures are needed).
    s_file_request (f, orchestrator, "req-cli", AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_HOTFIX);
    char path [600], command [2048];
    zcert_t *cert = (zcert_t *) zhashx_lookup (f->harness->certs, "approver");
    assert_non_null (cert);
    snprintf (path, sizeof path, "%s/keys/approver.cert", f->harness->dir);
    assert_int_equal (zcert_save (cert, path), 0);
    snprintf (path, sizeof path, "%s/alice.key", f->harness->dir);
    char error [256];
    assert_int_equal (al_key_file_write (path, "alice", f->alice.secret_key, error, sizeof error), AL_SIG_OK);
    snprintf (command, sizeof command, "ssh-keygen -q -t ed25519 -N '' -C carol -f %s/carol_ssh", f->harness->dir);
    assert_int_equal (system (command), 0);
    //  carol's SSH key joins approvers.yaml (security), then the broker reloads (SIGHUP).
    snprintf (path, sizeof path, "%s/carol_ssh.pub", f->harness->dir);
    FILE *file = fopen (path, "r");
    assert_non_null (file);
    char line [512], extra [700];
    assert_non_null (fgets (line, sizeof line, file));
    fclose (file);
    line [strcspn (line, "\n")] = 0;
    snprintf (extra, sizeof extra, "  - name: carol-ssh\n    roles: [security]\n    keys:\n      - {id: cs, ssh: \"%s\"}\n", line);
    s_write_approvers (f, extra);
    assert_int_equal (harness_broker_signal (f->harness, SIGHUP), 0);
    assert_true (harness_wait_rows (f->harness, "PolicyLoaded", "broker", "reload", 1, 5000) >= 1);

    const char *airlock = getenv ("AIRLOCK_BINARY_DIR");
    assert_non_null (airlock);
    snprintf (command, sizeof command, "%s/airlock approvals --config %s > %s/approvals.txt 2>&1",
              airlock, f->harness->config_path, f->harness->dir);
    assert_int_equal (system (command), 0);
    snprintf (command, sizeof command,
              "%s/airlock approve req-cli --yes --key %s/alice.key --config %s > %s/alice.txt 2>&1",
              airlock, f->harness->dir, f->harness->config_path, f->harness->dir);
    assert_int_equal (system (command), 0);
    snprintf (command, sizeof command,
              "%s/airlock approve req-cli --yes --ssh-key %s/carol_ssh --config %s > %s/carol.txt 2>&1",
              airlock, f->harness->dir, f->harness->config_path, f->harness->dir);
    assert_int_equal (system (command), 0);
    //  What the humans saw.
    const char *files [] = { "approvals.txt", "alice.txt", "carol.txt" };
    const char *needles [] = { "req-cli", "waiting for 1 more approval: security", "granted" };
    for (size_t i = 0; i < 3; i++) {
        snprintf (path, sizeof path, "%s/%s", f->harness->dir, files [i]);
        file = fopen (path, "r");
        assert_non_null (file);
        char text [16384];
        size_t size = fread (text, 1, sizeof text - 1, file);
        fclose (file);
        text [size] = 0;
        if (!strstr (text, needles [i]))
            fail_msg ("%s does not show '%s':\n%s", files [i], needles [i], text);
        if (i == 1 && !strstr (text, "Production Deployment Request"))
            fail_msg ("approve did not show the request:\n%s", text);
    }
    assert_int_equal (harness_count_rows (f->harness, "ExecuteDeploy", "broker", "req-cli"), 1);
    zsock_destroy (&orchestrator);
    zsock_destroy (&approver);
}

//  Four eyes on the bus: alice submitted the release through ci-1 (identities.yaml names
//  her as its person), so the gate refuses her approval, with a denial row like every
//  gate refusal; bob's approval opens production.
static void
test_four_eyes_on_the_bus (void **state)
{
    s_fixture_t *f = *state;
    zsock_t *orchestrator = s_client (f, "orchestrator", false);
    zsock_t *approver = s_client (f, "approver", false);
    Airlock__ApprovalRequest request = s_request ("req-4eyes", AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD);
    request.submitted_by = "ci-1";
    al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
    envelope.deployment_id = "req-4eyes";
    envelope.environment = AIRLOCK__ENVIRONMENT__ENV_PRODUCTION;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_APPROVAL_REQUEST;
    envelope.approval_request = &request;
    al_envelope_t *answer = s_roundtrip (f, orchestrator, &envelope);
    assert_int_equal (answer->body_case, AIRLOCK__ENVELOPE__BODY_ACK);
    al_codec_free (&answer);

    al_approval_signed_t *own = s_sign (&request, &f->alice, s_now_ms (), 3600000, AIRLOCK__DECISION__DECISION_GRANT);
    s_expect_refused (f, approver, al_approval_signed_message (own),
                      "four eyes: alice submitted this release (request req-4eyes) through identity ci-1");
    al_approval_signed_destroy (&own);
    assert_int_equal (harness_wait_rows (f->harness, "SignedApproval", "approver", "four eyes: alice", 1, 5000), 1);
    assert_int_equal (harness_count_rows (f->harness, "ExecuteDeploy", "broker", "req-4eyes"), 0);

    al_approval_signed_t *other = s_sign (&request, &f->bob, s_now_ms (), 3600000, AIRLOCK__DECISION__DECISION_GRANT);
    answer = s_submit (f, approver, al_approval_signed_message (other));
    if (answer->body_case != AIRLOCK__ENVELOPE__BODY_ACK)
        fail_msg ("bob's approval was refused: %s", answer->denied->reason);
    assert_non_null (strstr (answer->ack->detail, "granted: manager bob"));
    al_codec_free (&answer);
    al_approval_signed_destroy (&other);
    assert_int_equal (harness_wait_rows (f->harness, "ExecuteDeploy", "broker", "req-4eyes", 1, 5000), 1);
    zsock_destroy (&orchestrator);
    zsock_destroy (&approver);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_gate_on_the_bus, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_deny_closes_and_cli_approves, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_four_eyes_on_the_bus, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
