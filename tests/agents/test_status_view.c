/*  test_status_view.c: agents/al_status_view, what `airlock status` derives from the
    broker's StatusReply, without the binary or a broker.

    A reply built here (qa alive, monitor dead, an unnamed client with no heartbeat, one
    whose heartbeat is ahead of our clock) and a state directory whose logs/ holds a log
    for monitor, notifier and orchestrator: the agents list carries each heartbeat's age
    (null when there is none to compute), and the not-connected list names exactly the
    agents `airlock up` runs that have no live instance and a log, with the log's last
    error line.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "agents/al_status_view.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static Airlock__AgentStatus
s_agent (const char *identity, const char *role, bool alive, uint64_t last_heartbeat_ms)
{
    Airlock__AgentStatus agent;
    airlock__agent_status__init (&agent);
    agent.identity = (char *) identity;
    agent.role = (char *) role;
    agent.alive = alive;
    agent.last_heartbeat_ms = last_heartbeat_ms;
    return agent;
}

static void
s_write (const char *path, const char *text)
{
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    assert_true (fputs (text, file) >= 0);
    assert_int_equal (fclose (file), 0);
}

static void
test_agents_and_ages (void **state)
{
    (void) state;
    Airlock__AgentStatus agents [] = {
        s_agent ("qa-1", "qa", true, 98500),
        s_agent ("monitor-1", "monitor", false, 40000),
        s_agent ("ci", "ci", true, 0),
        s_agent ("skewed", "notifier", true, 100500),
    };
    Airlock__AgentStatus *pointers [] = { &agents [0], &agents [1], &agents [2], &agents [3] };
    Airlock__StatusReply reply;
    airlock__status_reply__init (&reply);
    reply.n_agents = 4;
    reply.agents = pointers;
    json_t *list = al_status_view_agents (&reply, 100000);
    assert_int_equal (json_array_size (list), 4);
    json_t *qa = json_array_get (list, 0);
    assert_string_equal (json_string_value (json_object_get (qa, "identity")), "qa-1");
    assert_string_equal (json_string_value (json_object_get (qa, "role")), "qa");
    assert_true (json_is_true (json_object_get (qa, "alive")));
    assert_int_equal (json_integer_value (json_object_get (qa, "last_heartbeat_ms")), 98500);
    assert_true (json_real_value (json_object_get (qa, "age_seconds")) > 1.49
              && json_real_value (json_object_get (qa, "age_seconds")) < 1.51);
    assert_true (json_is_false (json_object_get (json_array_get (list, 1), "alive")));
    assert_true (json_is_null (json_object_get (json_array_get (list, 2), "age_seconds")));
    assert_true (json_is_null (json_object_get (json_array_get (list, 3), "age_seconds")));
    json_decref (list);

    char text [64];
    al_status_view_age_text (98500, 100000, text, sizeof text);
    assert_string_equal (text, "1.5 s ago");
    al_status_view_age_text (0, 100000, text, sizeof text);
    assert_string_equal (text, "never");
    al_status_view_age_text (100500, 100000, text, sizeof text);
    assert_string_equal (text, "just now");
}

static void
test_not_connected (void **state)
{
    (void) state;
    char dir [] = "/tmp/test_status_view.XXXXXX";
    assert_non_null (mkdtemp (dir));
    char path [512], text [512];
    snprintf (path, sizeof path, "%s/airlock.yaml", dir);
    snprintf (text, sizeof text, "state_dir: %s\n", dir);
    s_write (path, text);
    char error [512] = "";
    al_config_t *config = al_config_load (path, error, sizeof error);
    if (!config)
        fail_msg ("airlock.yaml: %s", error);
    snprintf (path, sizeof path, "%s/logs", dir);
    assert_int_equal (mkdir (path, 0700), 0);
    //  monitor: dead in the reply, with a log; notifier: no instance, with a log;
    //  qa: alive, with a log (not listed); orchestrator: alive under another identity.
    snprintf (path, sizeof path, "%s/logs/monitor.log", dir);
    s_write (path, "I: monitor: started\nE: monitor: cannot reach prometheus\nI: monitor: waiting\n");
    snprintf (path, sizeof path, "%s/logs/notifier.log", dir);
    s_write (path, "I: notifier: started\n");
    snprintf (path, sizeof path, "%s/logs/qa.log", dir);
    s_write (path, "E: qa: something failed earlier\n");
    snprintf (path, sizeof path, "%s/logs/orchestrator.log", dir);
    s_write (path, "E: orchestrator: failed once\n");
    Airlock__AgentStatus agents [] = {
        s_agent ("qa-1", "qa", true, 1),
        s_agent ("monitor-1", "monitor", false, 1),
        s_agent ("orchestrator-2", "orchestrator", true, 1),
    };
    Airlock__AgentStatus *pointers [] = { &agents [0], &agents [1], &agents [2] };
    Airlock__StatusReply reply;
    airlock__status_reply__init (&reply);
    reply.n_agents = 3;
    reply.agents = pointers;
    json_t *silent = al_status_view_not_connected (config, &reply);
    //  deploy-manager has no instance but no log either: never started by `airlock up`.
    assert_int_equal (json_array_size (silent), 2);
    json_t *first = json_array_get (silent, 0), *second = json_array_get (silent, 1);
    const char *names [2] = { json_string_value (json_object_get (first, "agent")),
                              json_string_value (json_object_get (second, "agent")) };
    json_t *monitor = strcmp (names [0], "monitor") == 0? first: second;
    json_t *notifier = monitor == first? second: first;
    assert_string_equal (json_string_value (json_object_get (monitor, "agent")), "monitor");
    assert_string_equal (json_string_value (json_object_get (monitor, "last_line")),
                         "E: monitor: cannot reach prometheus");
    snprintf (path, sizeof path, "%s/logs/monitor.log", dir);
    assert_string_equal (json_string_value (json_object_get (monitor, "log")), path);
    assert_string_equal (json_string_value (json_object_get (notifier, "agent")), "notifier");
    assert_string_equal (json_string_value (json_object_get (notifier, "last_line")), "I: notifier: started");
    json_decref (silent);
    al_config_destroy (&config);
    char command [300];
    snprintf (command, sizeof command, "rm -rf '%s'", dir);
    assert_int_equal (system (command), 0);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_agents_and_ages),
        cmocka_unit_test (test_not_connected),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
