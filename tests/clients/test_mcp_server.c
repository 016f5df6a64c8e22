/*  test_mcp_server.c: agents/al_mcp_server without the airlock binary.

    A real broker (tests/broker's broker_under_test, through tests/agents/bus.c) and a
    ci agent of this process; the server runs al_mcp_server_serve in a thread on one end
    of a socketpair and the test is its MCP client on the other end, one JSON-RPC
    message per line. Shown:
      - initialize negotiates the client's revision (2025-06-18); the initialized
        notification gets no answer; tools/list has the five tools with outputSchema and
        annotations, and no approve tool;
      - get_status and list_approvals are answered by the broker; submit_release with a
        missing field, approve and an unknown tool are error results (isError) that say
        why, with the same document as structuredContent;
      - al_mcp_server_handle alone (no stream): a parse error, an invalid request, an
        unknown method and bad params are JSON-RPC errors; a batch is answered as a
        batch, a batch of notifications not at all;
      - recent_signals returns a sample a monitor publishes while it listens, judged by
        deploy/al_rules: CPU without evidence is null, listed as missing, a breach;
      - the end of the input ends al_mcp_server_serve with 0.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "bus.h"
#include "agents/al_mcp_server.h"
#include "deploy/al_rules.h"

#include <czmq.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define S_ANSWER_MS 30000

typedef struct {
    bus_t *bus;
    al_agent_t *ci;
    al_agent_t *monitor;
    al_mcp_server_t *server;
    int client;                 // our end of the socketpair
    int server_end;             // the server's
    pthread_t thread;
    int serve_rc;
    char buffer [1 << 20];
    size_t used;
} fixture_t;

static void *
s_serve (void *arg)
{
    fixture_t *f = arg;
    f->serve_rc = al_mcp_server_serve (f->server, f->server_end, f->server_end);
    return NULL;
}

static int
s_group_setup (void **state)
{
    fixture_t *f = calloc (1, sizeof *f);
    assert_non_null (f);
    f->bus = bus_new (NULL);
    assert_non_null (f->bus);
    assert_int_equal (bus_broker_start (f->bus), 0);
    f->ci = bus_agent (f->bus, "ci");
    f->monitor = bus_agent (f->bus, "monitor");
    assert_non_null (f->ci);
    assert_non_null (f->monitor);
    f->server = al_mcp_server_new (f->bus->config, f->ci);
    assert_non_null (f->server);
    assert_string_equal (al_mcp_server_protocol (f->server), "2024-11-05");
    int pair [2];
    assert_int_equal (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
    f->client = pair [0];
    f->server_end = pair [1];
    f->serve_rc = -2;
    assert_int_equal (pthread_create (&f->thread, NULL, s_serve, f), 0);
    *state = f;
    return 0;
}

static int
s_group_teardown (void **state)
{
    fixture_t *f = *state;
    if (f->client >= 0) {
        close (f->client);      // the server sees the end of its input
        pthread_join (f->thread, NULL);
    }
    close (f->server_end);
    al_mcp_server_destroy (&f->server);
    al_agent_destroy (&f->ci);
    al_agent_destroy (&f->monitor);
    bus_destroy (&f->bus);
    free (f);
    return 0;
}

static void
s_send (fixture_t *f, const char *line)
{
    size_t length = strlen (line);
    assert_int_equal (write (f->client, line, length), (ssize_t) length);
    assert_int_equal (write (f->client, "\n", 1), 1);
}

//  The next line the server wrote, parsed; fails after S_ANSWER_MS.
static json_t *
s_receive (fixture_t *f)
{
    int64_t deadline = zclock_mono () + S_ANSWER_MS;
    while (true) {
        char *newline = memchr (f->buffer, '\n', f->used);
        if (newline) {
            size_t length = (size_t) (newline - f->buffer);
            json_error_t error;
            json_t *message = json_loadb (f->buffer, length, 0, &error);
            if (!message)
                fail_msg ("not JSON: %.*s (%s)", (int) length, f->buffer, error.text);
            f->used -= length + 1;
            memmove (f->buffer, newline + 1, f->used);
            return message;
        }
        int64_t left = deadline - zclock_mono ();
        if (left <= 0)
            fail_msg ("no answer from the server within %d ms", S_ANSWER_MS);
        struct pollfd item = { .fd = f->client, .events = POLLIN };
        if (poll (&item, 1, (int) left) <= 0)
            continue;
        ssize_t got = read (f->client, f->buffer + f->used, sizeof f->buffer - f->used - 1);
        assert_true (got > 0);
        f->used += (size_t) got;
    }
}

//  Send a tools/call and return its result (the answer must have id).
static json_t *
s_call (fixture_t *f, int id, const char *tool, const char *arguments)
{
    char line [1024];
    snprintf (line, sizeof line, "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"tools/call\","
              "\"params\":{\"name\":\"%s\",\"arguments\":%s}}", id, tool, arguments);
    s_send (f, line);
    json_t *answer = s_receive (f);
    assert_int_equal (json_integer_value (json_object_get (answer, "id")), id);
    json_t *result = json_incref (json_object_get (answer, "result"));
    assert_non_null (result);
    json_decref (answer);
    return result;
}

static const char *
s_text (json_t *result)
{
    return json_string_value (json_object_get (json_array_get (json_object_get (result, "content"), 0), "text"));
}

static void
test_initialize_and_list (void **state)
{
    fixture_t *f = *state;
    s_send (f, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"protocolVersion\":"
               "\"2025-06-18\",\"capabilities\":{},\"clientInfo\":{\"name\":\"test\",\"version\":\"1\"}}}");
    json_t *answer = s_receive (f);
    json_t *result = json_object_get (answer, "result");
    assert_string_equal (json_string_value (json_object_get (result, "protocolVersion")), "2025-06-18");
    assert_string_equal (json_string_value (json_object_get (json_object_get (result, "serverInfo"), "name")),
                         "airlock");
    assert_non_null (json_object_get (json_object_get (result, "capabilities"), "tools"));
    json_decref (answer);
    assert_string_equal (al_mcp_server_protocol (f->server), "2025-06-18");
    //  The notification is not answered: the next line is the ping's.
    s_send (f, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}");
    s_send (f, "{\"jsonrpc\":\"2.0\",\"id\":\"p\",\"method\":\"ping\"}");
    answer = s_receive (f);
    assert_string_equal (json_string_value (json_object_get (answer, "id")), "p");
    assert_true (json_is_object (json_object_get (answer, "result")));
    json_decref (answer);
    s_send (f, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\"}");
    answer = s_receive (f);
    json_t *tools = json_object_get (json_object_get (answer, "result"), "tools");
    assert_int_equal (json_array_size (tools), 5);
    const char *names [] = { "submit_release", "get_status", "list_approvals", "request_rollback", "recent_signals" };
    for (size_t index = 0; index < 5; index++) {
        json_t *tool = json_array_get (tools, index);
        assert_string_equal (json_string_value (json_object_get (tool, "name")), names [index]);
        assert_string_equal (json_string_value (json_object_get (json_object_get (tool, "inputSchema"), "type")),
                             "object");
        assert_true (json_is_object (json_object_get (tool, "outputSchema")));
        assert_true (json_is_object (json_object_get (tool, "annotations")));
    }
    json_decref (answer);
}

static void
test_tools_through_the_broker (void **state)
{
    fixture_t *f = *state;
    json_t *result = s_call (f, 10, "get_status", "{}");
    assert_true (json_is_false (json_object_get (result, "isError")));
    json_t *document = json_object_get (result, "structuredContent");
    json_t *agents = json_object_get (document, "agents");
    assert_true (json_is_array (agents));
    bool ci_alive = false;
    for (size_t index = 0; index < json_array_size (agents); index++) {
        json_t *agent = json_array_get (agents, index);
        ci_alive |= strcmp (json_string_value (json_object_get (agent, "role")), "ci") == 0
                    && json_is_true (json_object_get (agent, "alive"));
    }
    if (!ci_alive)
        fail_msg ("the broker does not list this test's ci agent:\n%s", s_text (result));
    assert_true (json_is_array (json_object_get (document, "releases")));
    json_decref (result);

    result = s_call (f, 11, "list_approvals", "{}");
    assert_true (json_is_false (json_object_get (result, "isError")));
    document = json_object_get (result, "structuredContent");
    assert_int_equal (json_array_size (json_object_get (document, "approvals")), 0);
    assert_non_null (strstr (json_string_value (json_object_get (document, "note")), "only a human approves"));
    json_decref (result);

    result = s_call (f, 12, "submit_release", "{\"service\":\"demo-service\",\"artifact\":\"x\",\"digest\":\"y\"}");
    assert_true (json_is_true (json_object_get (result, "isError")));
    assert_string_equal (json_string_value (json_object_get (json_object_get (result, "structuredContent"), "error")),
                         "version: required");
    json_decref (result);

    result = s_call (f, 13, "approve", "{\"request_id\":\"r-prod\"}");
    assert_true (json_is_true (json_object_get (result, "isError")));
    assert_non_null (strstr (s_text (result), "a production approval is a human's decision"));
    json_decref (result);

    result = s_call (f, 14, "deploy_everything", "{}");
    assert_true (json_is_true (json_object_get (result, "isError")));
    assert_non_null (strstr (s_text (result), "unknown tool 'deploy_everything'"));
    json_decref (result);

    result = s_call (f, 15, "get_status", "{\"release\":\"x\"}");
    assert_true (json_is_true (json_object_get (result, "isError")));
    assert_non_null (strstr (s_text (result), "release: unknown argument"));
    json_decref (result);
}

//  The answer of al_mcp_server_handle for line, parsed (NULL: none).
static json_t *
s_handle (fixture_t *f, const char *line)
{
    char *text = al_mcp_server_handle (f->server, line, strlen (line));
    if (!text)
        return NULL;
    json_t *answer = json_loads (text, 0, NULL);
    assert_non_null (answer);
    free (text);
    return answer;
}

static int
s_error_code (json_t *answer)
{
    return (int) json_integer_value (json_object_get (json_object_get (answer, "error"), "code"));
}

static void
test_protocol_errors_without_a_stream (void **state)
{
    fixture_t *f = *state;
    json_t *answer = s_handle (f, "{\"jsonrpc\":\"2.0\",\"id\":1,");
    assert_int_equal (s_error_code (answer), -32700);
    assert_true (json_is_null (json_object_get (answer, "id")));
    json_decref (answer);
    answer = s_handle (f, "{\"jsonrpc\":\"1.0\",\"id\":5,\"method\":\"ping\"}");
    assert_int_equal (s_error_code (answer), -32600);
    assert_int_equal (json_integer_value (json_object_get (answer, "id")), 5);
    json_decref (answer);
    answer = s_handle (f, "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"resources/list\"}");
    assert_int_equal (s_error_code (answer), -32601);
    json_decref (answer);
    answer = s_handle (f, "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\"}");
    assert_int_equal (s_error_code (answer), -32602);
    json_decref (answer);
    answer = s_handle (f, "{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"tools/call\",\"params\":{\"name\":3}}");
    assert_int_equal (s_error_code (answer), -32602);
    json_decref (answer);
    answer = s_handle (f, "[]");
    assert_int_equal (s_error_code (answer), -32600);
    json_decref (answer);
    //  A batch: one answer per request, none for the notification.
    answer = s_handle (f, "[{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"ping\"},"
                          "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\"},"
                          "{\"jsonrpc\":\"2.0\",\"id\":10,\"method\":\"nope\"}]");
    assert_true (json_is_array (answer));
    assert_int_equal (json_array_size (answer), 2);
    assert_int_equal (json_integer_value (json_object_get (json_array_get (answer, 0), "id")), 9);
    assert_int_equal (s_error_code (json_array_get (answer, 1)), -32601);
    json_decref (answer);
    assert_null (s_handle (f, "[{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}]"));
    assert_null (s_handle (f, "{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{}}"));
}

static void
test_recent_signals_judged_by_the_rules (void **state)
{
    fixture_t *f = *state;
    s_send (f, "{\"jsonrpc\":\"2.0\",\"id\":20,\"method\":\"tools/call\",\"params\":{\"name\":\"recent_signals\","
               "\"arguments\":{\"service\":\"demo-service\",\"environment\":\"staging\",\"count\":1}}}");
    //  Publish until the tool has heard one (it listens for 2 s, from when it is connected).
    Airlock__SoakSignal signal = AIRLOCK__SOAK_SIGNAL__INIT;
    signal.requests_per_second = 20;
    signal.error_ratio = 0.01;
    signal.latency_p50_ms = 20;
    signal.latency_p99_ms = 90;
    signal.memory_percent = 30;
    signal.instances_up = signal.instances_total = 2;
    signal.no_evidence = AL_RULES_SIGNAL_CPU;
    json_t *answer = NULL;
    for (int attempt = 0; attempt < 100 && !answer; attempt++) {
        assert_int_equal (bus_send_signal (f->monitor, "demo-service", AIRLOCK__ENVIRONMENT__ENV_STAGING, &signal), 0);
        struct pollfd item = { .fd = f->client, .events = POLLIN };
        if (poll (&item, 1, 100) > 0)
            answer = s_receive (f);
    }
    assert_non_null (answer);
    assert_int_equal (json_integer_value (json_object_get (answer, "id")), 20);
    json_t *result = json_object_get (answer, "result");
    if (!json_is_false (json_object_get (result, "isError")))
        fail_msg ("recent_signals failed: %s", s_text (result));
    json_t *document = json_object_get (result, "structuredContent");
    json_t *samples = json_object_get (document, "samples");
    assert_int_equal (json_array_size (samples), 1);
    json_t *sample = json_array_get (samples, 0);
    assert_string_equal (json_string_value (json_object_get (sample, "environment")), "staging");
    assert_true (json_is_null (json_object_get (sample, "cpu_percent")));
    assert_string_equal (json_string_value (json_array_get (json_object_get (sample, "missing"), 0)), "cpu");
    json_t *cpu = json_object_get (json_object_get (sample, "checks"), "cpu_percent");
    assert_string_equal (json_string_value (json_object_get (cpu, "status")), "missing");
    json_t *verdict = json_object_get (sample, "verdict");
    assert_string_equal (json_string_value (json_object_get (verdict, "verdict")), "breach");
    assert_string_equal (json_string_value (json_object_get (verdict, "rule")), "missing_evidence");
    json_decref (answer);
}

static void
test_end_of_input_ends_serve (void **state)
{
    fixture_t *f = *state;
    assert_int_equal (shutdown (f->client, SHUT_WR), 0);
    pthread_join (f->thread, NULL);
    assert_int_equal (f->serve_rc, 0);
    close (f->client);
    f->client = -1;
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_initialize_and_list),
        cmocka_unit_test (test_tools_through_the_broker),
        cmocka_unit_test (test_protocol_errors_without_a_stream),
        cmocka_unit_test (test_recent_signals_judged_by_the_rules),
        cmocka_unit_test (test_end_of_input_ends_serve),
    };
    return cmocka_run_group_tests (tests, s_group_setup, s_group_teardown);
}
