/*  test_deploy_manager_refusals.c: deploy-manager's own refusals (defence in depth).

    The real broker never routes these (test_deploy_manager shows it refusing them at the
    door), so a fake broker (tests/agents/fake_broker) plays a compromised or buggy one
    and delivers them straight to the deploy-manager agent, run in-process. Each one must
    be refused by deploy-manager itself: a DeployProgress "refused: why" goes back (an
    audit row on a real broker), the delivery is acknowledged so it does not come back,
    and nothing is started: no journal is even asked for, no evidence directory exists.
    The positive control (a valid grant is acted on) is in test_deploy_manager.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include "../agents/fake_broker.h"
#include "deploy_test_util.h"
#include "agents/al_agent.h"
#include "agents/al_deploy_manager.h"
#include "base/al_config.h"
#include "policies/al_approval_sign.h"
#include "proto/al_codec.h"
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    char dir [256];
    char config_path [300];
    zactor_t *auth;
    zcert_t *broker_cert;
    fake_broker_t *broker;
    al_config_t *config;
    pthread_t thread;
    int rc;
    uint8_t alice_public [32];
    uint8_t alice_secret [64];
} s_fixture_t;

static void *
s_run (void *arg)
{
    s_fixture_t *f = (s_fixture_t *) arg;
    char error [1024];
    f->rc = al_deploy_manager_run (f->config, error, sizeof error);
    if (f->rc != 0)
        fprintf (stderr, "deploy-manager: %s\n", error);
    return NULL;
}

static int
s_setup (void **state)
{
    assert_true (sodium_init () >= 0);
    s_fixture_t *f = calloc (1, sizeof *f);
    assert_non_null (f);
    snprintf (f->dir, sizeof f->dir, "/tmp/al-dm-refuse-XXXXXX");
    assert_non_null (mkdtemp (f->dir));
    f->config = al_config_new (f->dir);
    assert_non_null (f->config);
    char path [600], error [512];
    snprintf (f->config_path, sizeof f->config_path, "%s/airlock.yaml", f->dir);
    assert_int_equal (al_config_save (f->config, f->config_path, error, sizeof error), 0);
    mkdir (al_config_agents_keys_dir (f->config), 0700);
    f->broker_cert = zcert_new ();
    assert_int_equal (zcert_save (f->broker_cert, al_config_broker_cert (f->config)), 0);
    zcert_t *agent = zcert_new ();
    snprintf (path, sizeof path, "%s/deploy-manager.cert", al_config_agents_keys_dir (f->config));
    assert_int_equal (zcert_save (agent, path), 0);
    zcert_destroy (&agent);
    dtu_policy (f->dir, al_config_policy_dir (f->config));
    crypto_sign_keypair (f->alice_public, f->alice_secret);
    char hex [65];
    sodium_bin2hex (hex, sizeof hex, f->alice_public, 32);
    snprintf (path, sizeof path, "%s/approvers.yaml", al_config_policy_dir (f->config));
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fprintf (file, "approvers:\n  - name: alice\n    roles: [manager]\n    keys:\n      - {id: a, ed25519: \"%s\"}\n", hex);
    fclose (file);
    file = fopen (al_config_services_path (f->config), "w");
    assert_non_null (file);
    fprintf (file, "version: 1\nservices:\n  demo:\n    driver: process\n    instances: 1\n"
                   "    command: [\"{{artifact}}\"]\n    signals: probes\n");
    fclose (file);
    f->auth = zactor_new (zauth, NULL);
    assert_non_null (f->auth);
    zstr_sendx (f->auth, "CURVE", al_config_agents_keys_dir (f->config), NULL);
    zsock_wait (f->auth);
    f->broker = fake_broker_new (al_config_router_endpoint (f->config), f->broker_cert, 200);
    fake_broker_start (f->broker);
    al_agent_set_interrupted (false);
    assert_int_equal (pthread_create (&f->thread, NULL, s_run, f), 0);
    for (int waited = 0; waited < 10000 && fake_broker_count (f->broker, "Register", 0) == 0; waited += 20)
        zclock_sleep (20);
    assert_true (fake_broker_count (f->broker, "Register", 0) >= 1);
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    s_fixture_t *f = *state;
    al_agent_set_interrupted (true);
    pthread_join (f->thread, NULL);
    al_agent_set_interrupted (false);
    assert_int_equal (f->rc, 0);
    fake_broker_destroy (&f->broker);
    zactor_destroy (&f->auth);
    zcert_destroy (&f->broker_cert);
    al_config_destroy (&f->config);
    dtu_remove_tree (f->dir);
    free (f);
    return 0;
}

//  Deliver envelope (sender stamped as a broker would) and wait for deploy-manager's
//  DeployProgress with a "refused:" detail naming why, and the DeliveryAck.
static void
s_expect_refused (s_fixture_t *f, al_envelope_t *envelope, uint64_t delivery_id, const char *why)
{
    envelope->delivery_id = delivery_id;
    uint8_t *data = NULL;
    size_t size = 0;
    char error [256];
    if (al_codec_pack (envelope, &data, &size, error, sizeof error) != AL_CODEC_OK)
        fail_msg ("pack: %s", error);
    size_t before = fake_broker_log_size (f->broker);
    assert_int_equal (fake_broker_deliver (f->broker, data, size), 0);
    free (data);
    bool refused = false, acked = false;
    for (int waited = 0; waited < 10000 && !(refused && acked); waited += 20) {
        zclock_sleep (20);
        size_t count = fake_broker_log_size (f->broker);
        for (size_t i = before; i < count; i++) {
            fake_record_t record;
            assert_true (fake_broker_log_at (f->broker, i, &record));
            if (strcmp (record.type, "DeployProgress") == 0 && strncmp (record.detail, "refused: ", 9) == 0) {
                if (!strstr (record.detail, why))
                    fail_msg ("refused for another reason: '%s' (expected '%s')", record.detail, why);
                refused = true;
            }
        }
        acked = fake_broker_acks_of (f->broker, delivery_id) > 0;   // a DeliveryAck may list several
    }
    if (!refused || !acked)
        fail_msg ("%s: refused %d, acknowledged %d", why, refused, acked);
    //  Nothing was started: no journal asked for, no evidence.
    assert_int_equal (fake_broker_count (f->broker, "StatusQuery", 0), 0);
    char path [700];
    snprintf (path, sizeof path, "%s/deploy/.artifacts/deployment/%s", f->dir, envelope->deployment_id);
    assert_int_not_equal (access (path, F_OK), 0);
}

static void
test_refusals (void **state)
{
    s_fixture_t *f = *state;
    char artifact [1024], sha [65];
    dtu_artifact (f->dir, "demo-v1", "v1", NULL, artifact, sizeof artifact, sha);

    Airlock__ApprovalRequest filed = AIRLOCK__APPROVAL_REQUEST__INIT;
    filed.request_id = (char *) "prod-1";
    filed.deployment_type = AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD;
    filed.environment = AIRLOCK__ENVIRONMENT__ENV_PRODUCTION;
    filed.service = (char *) "demo";
    filed.version = (char *) "v1";
    filed.artifact_uri = artifact;
    filed.artifact_sha256 = sha;
    filed.qa_report_sha256 = (char *) "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";
    filed.requested_by = (char *) "orchestrator";
    uint64_t now = (uint64_t) time (NULL) * 1000;
    al_approval_sign_options_t options = { .decision = AIRLOCK__DECISION__DECISION_GRANT,
                                      .issued_at_ms = now, .valid_for_ms = 3600000 };
    char error [256];
    al_approval_signed_t *approval = al_approval_sign_with_secret (&filed, f->alice_secret, &options, error, sizeof error);
    assert_non_null (approval);
    Airlock__SignedApproval signed_copy = *al_approval_signed_message (approval);
    Airlock__SignedApproval *approvals [1] = { &signed_copy };
    Airlock__ProductionGrant grant = AIRLOCK__PRODUCTION_GRANT__INIT;
    grant.request_id = (char *) "prod-1";
    grant.request = &filed;
    grant.n_approvals = 1;
    grant.approvals = approvals;
    grant.granted_at_ms = now;
    Airlock__DeployRequest request = AIRLOCK__DEPLOY_REQUEST__INIT;
    request.service = (char *) "demo";
    request.version = (char *) "v1";
    request.artifact_uri = artifact;
    request.artifact_sha256 = sha;
    request.deployment_type = AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD;
    Airlock__ExecuteDeploy execute = AIRLOCK__EXECUTE_DEPLOY__INIT;
    execute.request = &request;
    execute.grant = &grant;
    Airlock__Sender sender = AIRLOCK__SENDER__INIT;
    al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
    envelope.message_id = (char *) "x-1";
    envelope.deployment_id = (char *) "prod-1";
    envelope.environment = AIRLOCK__ENVIRONMENT__ENV_PRODUCTION;
    envelope.sender = &sender;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_EXECUTE_DEPLOY;
    envelope.execute_deploy = &execute;

    //  1. A valid grant, but not from the broker's gate.
    sender.identity = (char *) "orchestrator";
    sender.role = (char *) "orchestrator";
    s_expect_refused (f, &envelope, 101, "from the broker's approval gate only");

    //  2. From "the broker", one bit of the signature flipped.
    sender.identity = (char *) "broker";
    sender.role = (char *) "broker";
    uint8_t signature [512];
    assert_true (signed_copy.signature.len <= sizeof signature);
    memcpy (signature, signed_copy.signature.data, signed_copy.signature.len);
    signature [7] ^= 0x10;
    ProtobufCBinaryData original = signed_copy.signature;
    signed_copy.signature.data = signature;
    s_expect_refused (f, &envelope, 102, "the grant does not verify");
    signed_copy.signature = original;

    //  3. A valid grant, but the request to run names another artifact.
    request.artifact_sha256 = (char *) "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752";
    s_expect_refused (f, &envelope, 103, "the grant does not verify");
    request.artifact_sha256 = sha;

    //  4. A well-formed grant signed by a key that is not an approver's. (A grant without
    //     approvals, or no grant at all, does not even decode: the codec requires both
    //     for production, on both ends.)
    uint8_t stranger_public [32], stranger_secret [64];
    crypto_sign_keypair (stranger_public, stranger_secret);
    al_approval_signed_t *forged = al_approval_sign_with_secret (&filed, stranger_secret, &options, error, sizeof error);
    assert_non_null (forged);
    approvals [0] = (Airlock__SignedApproval *) al_approval_signed_message (forged);
    s_expect_refused (f, &envelope, 104, "the grant does not verify");
    approvals [0] = &signed_copy;
    al_approval_signed_destroy (&forged);

    //  5. A DeployRequest for production (even "from the orchestrator").
    al_envelope_t direct = AIRLOCK__ENVELOPE__INIT;
    direct.message_id = (char *) "x-5";
    direct.deployment_id = (char *) "prod-5";
    direct.environment = AIRLOCK__ENVIRONMENT__ENV_PRODUCTION;
    sender.identity = (char *) "orchestrator";
    sender.role = (char *) "orchestrator";
    direct.sender = &sender;
    direct.body_case = AIRLOCK__ENVELOPE__BODY_DEPLOY_REQUEST;
    direct.deploy_request = &request;
    s_expect_refused (f, &direct, 105, "cannot reach production");

    //  6. A staging DeployRequest from a role other than the orchestrator.
    direct.environment = AIRLOCK__ENVIRONMENT__ENV_STAGING;
    direct.deployment_id = (char *) "stg-6";
    sender.identity = (char *) "qa";
    sender.role = (char *) "qa";
    s_expect_refused (f, &direct, 106, "from the orchestrator only");

    al_approval_signed_destroy (&approval);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_refusals, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
