/*  test_client_failover.c: the agent runtime with several broker endpoints.

    Two fake brokers (tests/agents/fake_broker.c) on ipc:// endpoints in a temporary
    directory, one certificate for both (as two brokers of one deployment share the
    broker key), czmq's zauth admitting the agent's key. Only one of them answers at a
    time; the agent is given both endpoints and must find the one that answers, move on
    when it goes silent or away, and carry its outbox over with the same message ids.
    Waits are bounded loops on a condition, never assertions on time.
*/
#include "agents/al_agent.h"
#include "base/al_config.h"
#include "agent_test_env.h"
#include "fake_broker.h"

#include <czmq.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#define WAIT_UNTIL(cond) AGENT_TEST_WAIT_UNTIL (cond, 30000)

typedef struct {
    agent_test_env_t env;       // directory, certificates (one broker key for both), zauth
    char endpoint_a [200];
    char endpoint_b [200];
    fake_broker_t *a;
    fake_broker_t *b;
} fixture_t;

static int
setup (void **state)
{
    fixture_t *fixture = calloc (1, sizeof *fixture);
    assert_non_null (fixture);
    agent_test_env_init (&fixture->env, "al-failover");
    snprintf (fixture->endpoint_a, sizeof fixture->endpoint_a, "ipc://%s/a.ipc", fixture->env.dir);
    snprintf (fixture->endpoint_b, sizeof fixture->endpoint_b, "ipc://%s/b.ipc", fixture->env.dir);
    fixture->a = fake_broker_new (fixture->endpoint_a, fixture->env.broker_cert, 100);
    fixture->b = fake_broker_new (fixture->endpoint_b, fixture->env.broker_cert, 100);
    *state = fixture;
    return 0;
}

static int
teardown (void **state)
{
    fixture_t *fixture = *state;
    fake_broker_destroy (&fixture->a);
    fake_broker_destroy (&fixture->b);
    agent_test_env_fini (&fixture->env);
    free (fixture);
    return 0;
}

//  The agent is given both endpoints, a first.
static al_agent_t *
s_agent (fixture_t *fixture)
{
    char endpoints [420];
    snprintf (endpoints, sizeof endpoints, "%s , %s", fixture->endpoint_a, fixture->endpoint_b);
    al_agent_options_t options;
    agent_test_options (&fixture->env, endpoints, &options);
    char error [256] = "";
    al_agent_t *agent = al_agent_new (&options, error, sizeof error);
    if (!agent)
        fail_msg ("al_agent_new: %s", error);
    return agent;
}

//  ---------------------------------------------------------------------------------

//  The first endpoint has no broker (a standby does not bind): the agent moves on to the
//  second, registers there and its message is acknowledged there.
static void
test_unanswered_first_endpoint_moves_to_the_second (void **state)
{
    fixture_t *fixture = *state;
    fake_broker_start (fixture->b);
    al_agent_t *agent = s_agent (fixture);
    al_envelope_t envelope;
    Airlock__QaReport report;
    agent_test_qa_report (&envelope, &report, "v1");
    al_agent_result_t result;
    assert_int_equal (al_agent_send (agent, &envelope, 30000, &result), AL_AGENT_ACKED);
    assert_int_equal (fake_broker_count_id (fixture->b, result.message_id), 1);
    assert_int_equal (fake_broker_log_size (fixture->a), 0);
    al_agent_info_t info;
    al_agent_info (agent, &info);
    assert_int_equal (info.endpoint_index, 1);
    assert_true (info.endpoint_switches >= 1);
    assert_true (info.registered);
    al_agent_destroy (&agent);
}

//  The active broker goes silent (as a SIGSTOPped process does) with a message in
//  flight; the other one takes over. The agent moves there, registers first, and the
//  message arrives with the SAME id (so a shared store would de-duplicate it). Then the
//  second goes away and the first answers again: the agent wraps round to it.
static void
test_silent_active_broker_fails_over_with_the_same_ids (void **state)
{
    fixture_t *fixture = *state;
    fake_broker_start (fixture->a);
    al_agent_t *agent = s_agent (fixture);
    assert_int_equal (al_agent_wait_registered (agent, 30000), 0);
    al_agent_info_t info;
    al_agent_info (agent, &info);
    assert_int_equal (info.endpoint_index, 0);

    fake_broker_set_mute (fixture->a, true);
    al_envelope_t envelope;
    Airlock__QaReport report;
    agent_test_qa_report (&envelope, &report, "v2");
    char id [AL_AGENT_ID_SIZE];
    assert_int_equal (al_agent_post (agent, &envelope, 1000, id, NULL, 0), AL_AGENT_QUEUED);
    // A records it but answers nothing.
    WAIT_UNTIL (fake_broker_count_id (fixture->a, id) >= 1);
    assert_true (fake_broker_count_id (fixture->a, id) >= 1);

    fake_broker_start (fixture->b);
    al_agent_result_t result;
    assert_int_equal (al_agent_wait (agent, id, 30000, &result), AL_AGENT_ACKED);
    assert_string_equal (result.message_id, id);
    assert_true (fake_broker_count_id (fixture->b, id) >= 1);
    fake_record_t first;
    assert_true (fake_broker_log_at (fixture->b, 0, &first));
    assert_string_equal (first.type, "Register");
    al_agent_info (agent, &info);
    assert_int_equal (info.endpoint_index, 1);
    assert_true (info.registered);

    // B goes away, A is back: the agent goes round the list to A.
    fake_broker_stop (fixture->b);
    fake_broker_set_mute (fixture->a, false);
    agent_test_qa_report (&envelope, &report, "v3");
    assert_int_equal (al_agent_send (agent, &envelope, 30000, &result), AL_AGENT_ACKED);
    assert_true (fake_broker_count_id (fixture->a, result.message_id) >= 1);
    assert_int_equal (fake_broker_count_id (fixture->b, result.message_id), 0);
    al_agent_info (agent, &info);
    assert_int_equal (info.endpoint_index, 0);
    assert_true (info.endpoint_switches >= 2);
    al_agent_destroy (&agent);
}

//  One endpoint keeps its old behaviour: it stays on it (no switches) across a restart.
static void
test_single_endpoint_stays (void **state)
{
    fixture_t *fixture = *state;
    fake_broker_start (fixture->a);
    al_agent_options_t options;
    al_agent_options_defaults (&options);
    snprintf (options.endpoint, sizeof options.endpoint, "%s", fixture->endpoint_a);
    snprintf (options.broker_key, sizeof options.broker_key, "%s", zcert_public_txt (fixture->env.broker_cert));
    snprintf (options.cert_path, sizeof options.cert_path, "%s", fixture->env.agent_cert);
    snprintf (options.name, sizeof options.name, "qa");
    options.heartbeat_ms = 100;
    char error [256] = "";
    al_agent_t *agent = al_agent_new (&options, error, sizeof error);
    assert_non_null (agent);
    assert_int_equal (al_agent_wait_registered (agent, 30000), 0);
    fake_broker_stop (fixture->a);
    fake_broker_start (fixture->a);
    al_envelope_t envelope;
    Airlock__QaReport report;
    agent_test_qa_report (&envelope, &report, "v4");
    al_agent_result_t result;
    assert_int_equal (al_agent_send (agent, &envelope, 30000, &result), AL_AGENT_ACKED);
    al_agent_info_t info;
    al_agent_info (agent, &info);
    assert_int_equal (info.endpoint_index, 0);
    assert_int_equal (info.endpoint_switches, 0);
    al_agent_destroy (&agent);
}

//  Endpoint lists: trimmed, bounded, and errors say what is wrong.
static void
test_endpoint_lists (void **state)
{
    (void) state;
    char (*endpoints) [AL_AGENT_PATH_SIZE] = malloc (AL_AGENT_MAX_ENDPOINTS * sizeof *endpoints);
    assert_non_null (endpoints);
    char error [256] = "";
    assert_int_equal (al_agent_endpoints_split (" tcp://10.0.0.1:5555 ,ipc:///tmp/x.ipc", endpoints,
                                                error, sizeof error), 2);
    assert_string_equal (endpoints [0], "tcp://10.0.0.1:5555");
    assert_string_equal (endpoints [1], "ipc:///tmp/x.ipc");
    assert_int_equal (al_agent_endpoints_split ("tcp://a:1", endpoints, error, sizeof error), 1);
    assert_int_equal (al_agent_endpoints_split ("tcp://a:1,,tcp://b:2", endpoints, error, sizeof error), -1);
    assert_non_null (strstr (error, "empty item"));
    assert_int_equal (al_agent_endpoints_split ("", endpoints, error, sizeof error), -1);
    assert_non_null (strstr (error, "is required"));
    assert_int_equal (al_agent_endpoints_split ("tcp://a:1, broker-two", endpoints, error, sizeof error), -1);
    assert_non_null (strstr (error, "'broker-two' is not a ZeroMQ endpoint"));
    char many [512] = "";
    for (int i = 0; i <= AL_AGENT_MAX_ENDPOINTS; i++)
        snprintf (many + strlen (many), sizeof many - strlen (many), "%stcp://h:%d", i ? "," : "", 1000 + i);
    assert_int_equal (al_agent_endpoints_split (many, endpoints, error, sizeof error), -1);
    assert_non_null (strstr (error, "more than 8 endpoints"));
    free (endpoints);
}

//  airlock.yaml: endpoints.brokers / endpoints.events are what clients use; unset, the
//  router / pub endpoints. al_agent_options_from_config takes the list.
static void
test_config_endpoint_lists (void **state)
{
    fixture_t *fixture = *state;
    char path [256];
    snprintf (path, sizeof path, "%s/airlock.yaml", fixture->env.dir);
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fprintf (file, "state_dir: %s\nkeys:\n  broker: %s/broker.cert\n  agents: %s\n"
                   "endpoints:\n  router: tcp://0.0.0.0:5555\n"
                   "  brokers: \"tcp://10.1.0.1:5555, tcp://10.2.0.1:5555\"\n",
             fixture->env.dir, fixture->env.dir, fixture->env.keys);
    fclose (file);
    char error [512] = "";
    al_config_t *config = al_config_load (path, error, sizeof error);
    if (!config)
        fail_msg ("%s", error);
    assert_string_equal (al_config_router_endpoint (config), "tcp://0.0.0.0:5555");
    assert_string_equal (al_config_broker_endpoints (config), "tcp://10.1.0.1:5555, tcp://10.2.0.1:5555");
    char pub [300];
    snprintf (pub, sizeof pub, "ipc://%s/events.ipc", fixture->env.dir);
    assert_string_equal (al_config_event_endpoints (config), pub);
    al_agent_options_t options;
    al_agent_options_defaults (&options);
    assert_int_equal (al_agent_options_from_config (&options, config, "qa", error, sizeof error), 0);
    assert_string_equal (options.endpoint, "tcp://10.1.0.1:5555, tcp://10.2.0.1:5555");
    al_config_destroy (&config);

    // Saved and loaded again, the list survives.
    config = al_config_load (path, error, sizeof error);
    assert_non_null (config);
    char saved [256];
    snprintf (saved, sizeof saved, "%s/saved.yaml", fixture->env.dir);
    assert_int_equal (al_config_save (config, saved, error, sizeof error), 0);
    al_config_destroy (&config);
    config = al_config_load (saved, error, sizeof error);
    assert_non_null (config);
    assert_string_equal (al_config_broker_endpoints (config), "tcp://10.1.0.1:5555, tcp://10.2.0.1:5555");
    al_config_destroy (&config);

    // A bad list in the file fails the agent with the field named.
    file = fopen (path, "w");
    assert_non_null (file);
    fprintf (file, "state_dir: %s\nkeys:\n  broker: %s/broker.cert\n  agents: %s\n"
                   "endpoints:\n  brokers: \"tcp://10.1.0.1:5555,,\"\n", fixture->env.dir, fixture->env.dir, fixture->env.keys);
    fclose (file);
    config = al_config_load (path, error, sizeof error);
    assert_non_null (config);
    assert_null (al_agent_new_for_role (config, "qa", false, error, sizeof error));
    assert_non_null (strstr (error, "endpoint:"));
    assert_non_null (strstr (error, "empty item"));
    al_config_destroy (&config);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_unanswered_first_endpoint_moves_to_the_second, setup, teardown),
        cmocka_unit_test_setup_teardown (test_silent_active_broker_fails_over_with_the_same_ids, setup, teardown),
        cmocka_unit_test_setup_teardown (test_single_endpoint_stays, setup, teardown),
        cmocka_unit_test_setup_teardown (test_endpoint_lists, setup, teardown),
        cmocka_unit_test_setup_teardown (test_config_endpoint_lists, setup, teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
