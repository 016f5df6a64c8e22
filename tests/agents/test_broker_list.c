/*  test_broker_list.c: every message about reaching the broker names every broker.

    Clients take a list of broker endpoints (endpoints.brokers, endpoints.events;
    docs/ha.md). A state directory from `airlock init` is configured with two broker
    endpoints and two event endpoints where nothing listens (ipc:// in a temporary
    directory of this test); `airlock status`, `airlock status RELEASE`, `airlock
    approvals` and `airlock watch` (the built binary) must each name both in their
    "no answer" / "not connected" messages, and an agent's log must say which broker it
    tries next and name the list. al_agent_endpoints_describe, which words the list for
    all of them, is checked directly.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "bus.h"
#include "base/al_child.h"
#include "base/al_clock.h"

#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    char dir [256];                 // where the endpoints are (nothing binds there unless a
                                    // test starts the broker: then the second ones)
    char brokers [2][400];
    char events [2][400];
    bus_t *bus;
} fixture_t;

static void
s_assert_contains (const char *text, const char *part)
{
    if (!strstr (text, part))
        fail_msg ("'%s' does not contain '%s'", text, part);
}

static int
s_setup (void **state)
{
    fixture_t *self = calloc (1, sizeof *self);
    assert_non_null (self);
    snprintf (self->dir, sizeof self->dir, "/tmp/al-broker-list-XXXXXX");
    assert_non_null (mkdtemp (self->dir));
    for (int index = 0; index < 2; index++) {
        snprintf (self->brokers [index], sizeof self->brokers [index], "ipc://%s/broker-%c.ipc", self->dir,
                  'a' + index);
        snprintf (self->events [index], sizeof self->events [index], "ipc://%s/events-%c.ipc", self->dir,
                  'a' + index);
    }
    //  bus_new puts these lines after its own "limits:" ones: a top-level section.
    //  The broker, when a test starts it, binds the second of each (router, pub).
    char yaml [4096];
    snprintf (yaml, sizeof yaml, "endpoints:\n  router: \"%s\"\n  pub: \"%s\"\n  brokers: \"%s, %s\"\n"
              "  events: \"%s,%s\"\n", self->brokers [1], self->events [1], self->brokers [0], self->brokers [1],
              self->events [0], self->events [1]);
    self->bus = bus_new (yaml);
    assert_non_null (self->bus);
    //  The configuration holds both lists (init kept our section).
    s_assert_contains (al_config_broker_endpoints (self->bus->config), self->brokers [1]);
    s_assert_contains (al_config_event_endpoints (self->bus->config), self->events [1]);
    *state = self;
    return 0;
}

static int
s_teardown (void **state)
{
    fixture_t *self = *state;
    bus_destroy (&self->bus);
    for (int index = 0; index < 2; index++) {
        unlink (self->brokers [index] + strlen ("ipc://"));
        unlink (self->events [index] + strlen ("ipc://"));
    }
    rmdir (self->dir);
    free (self);
    return 0;
}

//  Run `airlock ARGS... --config CONFIG`; returns the child (exited), stderr in *err.
static al_child_t *
s_airlock (fixture_t *self, const char *const *args, int64_t timeout_ms, const char **err)
{
    const char *binary = getenv ("AIRLOCK_BINARY_DIR");
    assert_non_null (binary);
    char path [512];
    snprintf (path, sizeof path, "%s/airlock", binary);
    char *argv [16];
    size_t count = 0;
    argv [count++] = path;
    for (size_t index = 0; args [index]; index++)
        argv [count++] = (char *) args [index];
    argv [count++] = "--config";
    argv [count++] = self->bus->config_path;
    argv [count] = NULL;
    al_child_options_t options = { .out = AL_CHILD_PIPE, .err = AL_CHILD_PIPE };
    char error [512] = "";
    bool timed_out = false;
    al_child_t *child = al_child_run (argv, &options, timeout_ms, &timed_out, error, sizeof error);
    if (!child)
        fail_msg ("airlock: %s", error);
    assert_false (timed_out);
    *err = al_child_err (child, NULL);
    return child;
}

//  ---------------------------------------------------------------------------------

static void
test_describe (void **state)
{
    (void) state;
    char text [AL_AGENT_ENDPOINTS_TEXT_SIZE];
    assert_string_equal (al_agent_endpoints_describe ("ipc:///s/broker.ipc", text, sizeof text),
                         "ipc:///s/broker.ipc");
    assert_string_equal (al_agent_endpoints_describe (" tcp://10.0.0.1:7001 ,tcp://10.0.0.2:7001", text, sizeof text),
                         "any of 2 brokers (tcp://10.0.0.1:7001, tcp://10.0.0.2:7001)");
    assert_string_equal (al_agent_endpoints_describe ("tcp://a:1,tcp://b:2,tcp://c:3", text, sizeof text),
                         "any of 3 brokers (tcp://a:1, tcp://b:2, tcp://c:3)");
    //  A list that does not split is named as written, never dropped.
    assert_string_equal (al_agent_endpoints_describe ("tcp://a:1,,tcp://b:2", text, sizeof text),
                         "tcp://a:1,,tcp://b:2");
    //  A small buffer cuts, it never overflows.
    char small [12];
    al_agent_endpoints_describe ("tcp://a:1,tcp://b:2", small, sizeof small);
    assert_int_equal (strlen (small), sizeof small - 1);
}

static void
test_status_names_every_broker (void **state)
{
    fixture_t *self = *state;
    const char *err = NULL;
    const char *agents [] = { "status", "--timeout", "1", NULL };
    al_child_t *child = s_airlock (self, agents, 60000, &err);
    assert_int_equal (al_child_exit_code (child), 2);
    s_assert_contains (err, "no answer from the broker at any of 2 brokers");
    s_assert_contains (err, self->brokers [0]);
    s_assert_contains (err, self->brokers [1]);
    al_child_destroy (&child);

    const char *release [] = { "status", "rel-1", "--timeout", "1", NULL };
    child = s_airlock (self, release, 60000, &err);
    assert_int_equal (al_child_exit_code (child), 2);
    s_assert_contains (err, self->brokers [0]);
    s_assert_contains (err, self->brokers [1]);
    al_child_destroy (&child);
}

static void
test_approvals_names_every_broker (void **state)
{
    fixture_t *self = *state;
    const char *err = NULL;
    const char *args [] = { "approvals", NULL };
    al_child_t *child = s_airlock (self, args, 120000, &err);
    assert_int_equal (al_child_exit_code (child), 2);
    s_assert_contains (err, "the broker did not list approvals: timeout (no answer from any of 2 brokers");
    s_assert_contains (err, self->brokers [0]);
    s_assert_contains (err, self->brokers [1]);
    al_child_destroy (&child);
}

static void
test_watch_names_every_broker (void **state)
{
    fixture_t *self = *state;
    const char *err = NULL;
    //  The warning comes after 5 s without a handshake; the watch ends at 8 s.
    const char *args [] = { "watch", "--signals", "api", "--timeout", "8", NULL };
    al_child_t *child = s_airlock (self, args, 120000, &err);
    assert_int_equal (al_child_exit_code (child), 0);
    s_assert_contains (err, "not connected to any of 2 brokers");
    s_assert_contains (err, self->events [0]);
    s_assert_contains (err, self->events [1]);
    al_child_destroy (&child);
}

//  One of the two brokers answers: the watch says which, and names the list.
static void
test_watch_names_the_broker_that_answered (void **state)
{
    fixture_t *self = *state;
    assert_int_equal (bus_broker_start (self->bus), 0);
    //  An agent fails over from the dead first broker to the second and logs which one
    //  answered.
    char path [512];
    snprintf (path, sizeof path, "%s/agent.log", self->dir);
    FILE *log = fopen (path, "w+");
    assert_non_null (log);
    zsys_set_logstream (log);
    char error [512] = "";
    al_agent_t *agent = al_agent_new_for_role (self->bus->config, "auditor", false, error, sizeof error);
    if (!agent)
        fail_msg ("agent: %s", error);
    int registered = al_agent_wait_registered (agent, 60000);
    char endpoint [AL_AGENT_PATH_SIZE];
    al_agent_endpoint (agent, endpoint, sizeof endpoint);
    al_agent_destroy (&agent);
    zsys_set_logstream (NULL);
    fflush (log);
    rewind (log);
    char text [8192] = "";
    text [fread (text, 1, sizeof text - 1, log)] = 0;
    fclose (log);
    unlink (path);
    assert_int_equal (registered, 0);
    assert_string_equal (endpoint, self->brokers [1]);
    char connected [1400];
    snprintf (connected, sizeof connected, "connected to the broker at %s (endpoints.brokers: any of 2 brokers (%s, %s))",
              self->brokers [1], self->brokers [0], self->brokers [1]);
    s_assert_contains (text, connected);

    const char *err = NULL;
    const char *args [] = { "watch", "--signals", "api", "--timeout", "4", NULL };
    al_child_t *child = s_airlock (self, args, 120000, &err);
    assert_int_equal (al_child_exit_code (child), 0);
    char expected [1400];
    snprintf (expected, sizeof expected, "connected to %s (endpoints.events: any of 2 brokers (%s, %s)) as auditor",
              self->events [1], self->events [0], self->events [1]);
    s_assert_contains (err, expected);
    al_child_destroy (&child);
    assert_int_equal (bus_broker_stop (self->bus), 0);
}

static void
test_agent_log_names_every_broker (void **state)
{
    fixture_t *self = *state;
    char path [512];
    snprintf (path, sizeof path, "%s/agent.log", self->dir);
    FILE *log = fopen (path, "w+");
    assert_non_null (log);
    zsys_set_logstream (log);
    char error [512] = "";
    al_agent_t *agent = al_agent_new_for_role (self->bus->config, "auditor", false, error, sizeof error);
    if (!agent)
        fail_msg ("agent: %s", error);
    char brokers [AL_AGENT_ENDPOINTS_TEXT_SIZE];
    s_assert_contains (al_agent_brokers (agent, brokers, sizeof brokers), self->brokers [1]);
    //  Heartbeats every 200 ms: the agent gives up on the first broker within a second
    //  or so; wait for the line, however long a loaded machine takes.
    char expected [1200];
    snprintf (expected, sizeof expected, "no word from the broker at %s", self->brokers [0]);
    char text [8192] = "";
    int64_t deadline = al_clock_mono_ms () + 60000;
    while (al_clock_mono_ms () < deadline) {
        fflush (log);
        rewind (log);
        size_t size = fread (text, 1, sizeof text - 1, log);
        text [size] = 0;
        if (strstr (text, expected) && strstr (text, "endpoints.brokers"))
            break;
        al_clock_sleep_ms (100);
    }
    al_agent_destroy (&agent);
    zsys_set_logstream (NULL);
    fclose (log);
    unlink (path);
    s_assert_contains (text, expected);
    char trying [1400];
    snprintf (trying, sizeof trying, "trying %s (endpoints.brokers: any of 2 brokers (%s, %s))", self->brokers [1],
              self->brokers [0], self->brokers [1]);
    s_assert_contains (text, trying);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_describe),
        cmocka_unit_test_setup_teardown (test_status_names_every_broker, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_approvals_names_every_broker, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_watch_names_every_broker, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_watch_names_the_broker_that_answered, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_agent_log_names_every_broker, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
