/*  test_qa_refusals.c: the qa agent's own refusals (defence in depth).

    The real broker never routes a production QaRequest to qa (test_qa shows it refused
    at the door), so a fake broker (tests/agents/fake_broker) delivers what a buggy or
    compromised one might, straight to the agent run in-process: a request for
    production, one without an environment, one whose deployment id would climb out of
    the report directory. Each must be answered with a QaReport approved=false naming
    why (its report kept under qa/.refused/), the delivery acknowledged, and nothing
    run: the suite configured for the service leaves no trace. A redelivery of the same
    request is answered with the same message (same id, same report), also by a qa
    restarted in between.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include "../agents/fake_broker.h"
#include "agents/al_agent.h"
#include "agents/al_qa.h"
#include "base/al_config.h"
#include "deploy/al_artifacts.h"
#include "proto/al_codec.h"
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    char dir [256];
    zactor_t *auth;
    zcert_t *broker_cert;
    fake_broker_t *broker;
    al_config_t *config;
    pthread_t thread;
    int rc;
    char error [1024];
} s_fixture_t;

static void *
s_run (void *arg)
{
    s_fixture_t *f = (s_fixture_t *) arg;
    f->rc = al_qa_run (f->config, f->error, sizeof f->error);
    return NULL;
}

static int
s_setup (void **state)
{
    s_fixture_t *f = calloc (1, sizeof *f);
    assert_non_null (f);
    snprintf (f->dir, sizeof f->dir, "/tmp/al-qa-refuse-XXXXXX");
    assert_non_null (mkdtemp (f->dir));
    f->config = al_config_new (f->dir);
    assert_non_null (f->config);
    char path [600], error [512];
    snprintf (path, sizeof path, "%s/airlock.yaml", f->dir);
    assert_int_equal (al_config_save (f->config, path, error, sizeof error), 0);
    mkdir (al_config_agents_keys_dir (f->config), 0700);
    f->broker_cert = zcert_new ();
    assert_int_equal (zcert_save (f->broker_cert, al_config_broker_cert (f->config)), 0);
    zcert_t *agent = zcert_new ();
    snprintf (path, sizeof path, "%s/qa.cert", al_config_agents_keys_dir (f->config));
    assert_int_equal (zcert_save (agent, path), 0);
    zcert_destroy (&agent);
    //  The suite would leave a marker if it ever ran.
    FILE *file = fopen (al_config_services_path (f->config), "w");
    assert_non_null (file);
    fprintf (file, "version: 1\nservices:\n  demo:\n    driver: process\n    command: [\"{{artifact}}\"]\n"
                   "    qa:\n      suites:\n        - { name: unit, argv: [\"touch\", \"suite-ran\"] }\n");
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
    if (f->rc != 0)
        fprintf (stderr, "qa: %s\n", f->error);
    assert_int_equal (f->rc, 0);
    fake_broker_destroy (&f->broker);
    zactor_destroy (&f->auth);
    zcert_destroy (&f->broker_cert);
    al_config_destroy (&f->config);
    char command [400];
    snprintf (command, sizeof command, "rm -rf '%s'", f->dir);
    assert_int_equal (system (command), 0);
    free (f);
    return 0;
}

//  Deliver a QaRequest (stamped as the broker would) and wait for the QaReport with
//  message id "qa-refused-<delivery>" (count copies of it) and the DeliveryAck.
static void
s_deliver (s_fixture_t *f, const char *deployment_id, Airlock__Environment env, uint64_t delivery_id, size_t copies)
{
    Airlock__QaRequest request = AIRLOCK__QA_REQUEST__INIT;
    request.service = (char *) "demo";
    request.version = (char *) "v1";
    request.artifact_sha256 = (char *) "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    Airlock__Sender sender = AIRLOCK__SENDER__INIT;
    sender.identity = (char *) "orchestrator";
    sender.role = (char *) "orchestrator";
    al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
    char id [32];
    snprintf (id, sizeof id, "req-%llu", (unsigned long long) delivery_id);
    envelope.message_id = id;
    envelope.deployment_id = (char *) deployment_id;
    envelope.environment = env;
    envelope.sender = &sender;
    envelope.delivery_id = delivery_id;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_QA_REQUEST;
    envelope.qa_request = &request;
    uint8_t *data = NULL;
    size_t size = 0;
    char error [256];
    if (al_codec_pack (&envelope, &data, &size, error, sizeof error) != AL_CODEC_OK)
        fail_msg ("pack: %s", error);
    assert_int_equal (fake_broker_deliver (f->broker, data, size), 0);
    free (data);
    char answer [64];
    snprintf (answer, sizeof answer, "qa-refused-%llu", (unsigned long long) delivery_id);
    size_t acks = 0;
    for (int waited = 0; waited < 10000; waited += 20) {
        acks = fake_broker_acks_of (f->broker, delivery_id);     // DeliveryAcks may list several
        if (acks >= copies && fake_broker_count_id (f->broker, answer) >= copies)
            break;
        zclock_sleep (20);
    }
    if (acks < copies || fake_broker_count_id (f->broker, answer) < copies)
        fail_msg ("delivery %llu: %zu QaReport(s) %s, %zu acknowledgement(s); expected %zu",
                  (unsigned long long) delivery_id, fake_broker_count_id (f->broker, answer), answer, acks, copies);
}

//  The refusal's report: approved false, the one issue naming why, no suites.
static void
s_expect_report (s_fixture_t *f, uint64_t delivery_id, const char *why, char digest [65])
{
    char path [700], error [512];
    snprintf (path, sizeof path, "%s/qa/.refused/%llu/qa_report.json", f->dir, (unsigned long long) delivery_id);
    json_t *root = json_load_file (path, 0, NULL);
    if (!root)
        fail_msg ("no report at %s", path);
    assert_false (json_is_true (json_object_get (root, "approved")));
    assert_true (json_is_true (json_object_get (root, "refused")));
    assert_string_equal (json_string_value (json_object_get (root, "recommendation")), "needs fixes");
    json_t *issues = json_object_get (root, "issues_found");
    assert_int_equal (json_array_size (issues), 1);
    const char *issue = json_string_value (json_array_get (issues, 0));
    if (!strstr (issue, why))
        fail_msg ("issue '%s' does not say '%s'", issue, why);
    assert_int_equal (json_array_size (json_object_get (root, "suites")), 0);
    json_decref (root);
    assert_int_equal (al_sha256_file_hex (path, digest, error, sizeof error), 0);
}

static void
test_refusals (void **state)
{
    s_fixture_t *f = *state;
    char digest [65], again [65];
    s_deliver (f, "rel-1-prod", AIRLOCK__ENVIRONMENT__ENV_PRODUCTION, 101, 1);
    s_expect_report (f, 101, "QA runs against staging only", digest);
    s_deliver (f, "rel-1", AIRLOCK__ENVIRONMENT__ENV_UNSPECIFIED, 102, 1);
    s_expect_report (f, 102, "QA runs against staging only", again);
    s_deliver (f, "../../escape", AIRLOCK__ENVIRONMENT__ENV_STAGING, 103, 1);
    s_expect_report (f, 103, "the deployment id must be", again);
    s_deliver (f, ".hidden", AIRLOCK__ENVIRONMENT__ENV_STAGING, 104, 1);
    s_expect_report (f, 104, "the deployment id must be", again);

    //  qa restarts before the broker saw its acknowledgement, and gets the request
    //  again: the same message (same id, so the broker de-duplicates it), the same
    //  report, nothing new written. (A redelivery to the same run is acknowledged
    //  again by the agent runtime itself.)
    al_agent_set_interrupted (true);
    pthread_join (f->thread, NULL);
    al_agent_set_interrupted (false);
    assert_int_equal (f->rc, 0);
    size_t registered = fake_broker_count (f->broker, "Register", 0);
    assert_int_equal (pthread_create (&f->thread, NULL, s_run, f), 0);
    for (int waited = 0; waited < 10000 && fake_broker_count (f->broker, "Register", 0) == registered; waited += 20)
        zclock_sleep (20);
    s_deliver (f, "rel-1-prod", AIRLOCK__ENVIRONMENT__ENV_PRODUCTION, 101, 2);
    s_expect_report (f, 101, "QA runs against staging only", again);
    assert_string_equal (digest, again);
    assert_int_equal (fake_broker_count (f->broker, "QaReport", 0), 5);

    //  Nothing ran, nothing was written outside the refusals.
    char path [700];
    snprintf (path, sizeof path, "%s/suite-ran", f->dir);
    assert_int_not_equal (access (path, F_OK), 0);
    snprintf (path, sizeof path, "%s/qa/rel-1-prod", f->dir);
    assert_int_not_equal (access (path, F_OK), 0);
    snprintf (path, sizeof path, "%s/escape", f->dir);
    assert_int_not_equal (access (path, F_OK), 0);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_refusals, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
