/*  cmd_status.c: `airlock status [--config FILE] [--timeout SECONDS] [--json]`: which
    agents the broker sees, their roles and their last heartbeat.

    Connects as the read-only `auditor` certificate through the agent runtime, asks the
    broker StatusQuery{what: "agents"} and prints its StatusReply. A broker that does not
    answer within the timeout is exit code 2, with the endpoint named.
*/
#include "cli/cli.h"
#include "agents/al_agent.h"
#include "broker/al_config.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: airlock status [--config FILE] [--timeout SECONDS] [--json]\n\n"
        "Show the agents connected to the broker: identity, role, whether the broker\n"
        "considers them alive, and how long ago their last heartbeat arrived. Connects\n"
        "with the state directory's auditor certificate (read-only).\n\n"
        "options:\n"
        "  --config FILE      airlock.yaml (default $AIRLOCK_CONFIG, else\n"
        "                     ./airlock-state/airlock.yaml)\n"
        "  --timeout SECONDS  how long to wait for the broker (default 5)\n"
        "  --json             print a JSON array of agents\n\n"
        "exit codes: 0 ok, 1 the broker refused the query, 2 usage error, unreadable\n"
        "configuration or broker unreachable\n");
}

static uint64_t
s_wall_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

static void
s_print (const Airlock__StatusReply *reply, bool json)
{
    uint64_t now = s_wall_ms ();
    if (json) {
        json_t *agents = json_array ();
        for (size_t index = 0; index < reply->n_agents; index++) {
            const Airlock__AgentStatus *agent = reply->agents [index];
            json_t *item = json_pack ("{s:s, s:s, s:b, s:I}", "identity", agent->identity,
                                      "role", agent->role, "alive", agent->alive,
                                      "last_heartbeat_ms", (json_int_t) agent->last_heartbeat_ms);
            if (agent->last_heartbeat_ms && agent->last_heartbeat_ms <= now)
                json_object_set_new (item, "age_seconds",
                                     json_real ((double) (now - agent->last_heartbeat_ms) / 1000.0));
            else
                json_object_set_new (item, "age_seconds", json_null ());
            json_array_append_new (agents, item);
        }
        json_dumpf (agents, stdout, JSON_INDENT (2) | JSON_REAL_PRECISION (6));
        printf ("\n");
        json_decref (agents);
        return;
    }
    if (reply->n_agents == 0) {
        printf ("no agents connected\n");
        return;
    }
    printf ("%-24s %-20s %-6s %s\n", "IDENTITY", "ROLE", "ALIVE", "LAST HEARTBEAT");
    for (size_t index = 0; index < reply->n_agents; index++) {
        const Airlock__AgentStatus *agent = reply->agents [index];
        char age [64];
        if (agent->last_heartbeat_ms == 0)
            snprintf (age, sizeof age, "never");
        else
        if (agent->last_heartbeat_ms > now)
            snprintf (age, sizeof age, "just now");
        else
            snprintf (age, sizeof age, "%.1f s ago",
                      (double) (now - agent->last_heartbeat_ms) / 1000.0);
        printf ("%-24s %-20s %-6s %s\n", agent->identity, agent->role,
                agent->alive ? "yes" : "no", age);
    }
}

int
al_cmd_status (int argc, char **argv)
{
    if (al_cli_wants_help (argc, argv)) {
        s_usage (stdout);
        return AL_EXIT_OK;
    }
    const char *config_path = getenv ("AIRLOCK_CONFIG");
    if (!config_path || !*config_path)
        config_path = "./airlock-state/airlock.yaml";
    bool json = false;
    int timeout_s = 5;
    for (int index = 1; index < argc; index++) {
        if (strcmp (argv [index], "--json") == 0)
            json = true;
        else
        if (strcmp (argv [index], "--config") == 0 && index + 1 < argc)
            config_path = argv [++index];
        else
        if (strcmp (argv [index], "--timeout") == 0 && index + 1 < argc) {
            char *end = NULL;
            long value = strtol (argv [++index], &end, 10);
            if (!end || *end || value < 1 || value > 3600) {
                fprintf (stderr, "airlock status: --timeout: '%s' is not a number of seconds "
                         "(1..3600)\n", argv [index]);
                return AL_EXIT_USAGE;
            }
            timeout_s = (int) value;
        }
        else {
            fprintf (stderr, "airlock status: unexpected argument '%s'\n\n", argv [index]);
            s_usage (stderr);
            return AL_EXIT_USAGE;
        }
    }

    int exit_code = AL_EXIT_USAGE;
    char error [1024] = "";
    al_agent_t *agent = NULL;
    al_envelope_t *reply = NULL;
    al_config_t *config = al_config_load (config_path, error, sizeof error);
    if (!config) {
        fprintf (stderr, "airlock status: %s\n", error);
        goto cleanup;
    }
    agent = al_agent_new_for_role (config, "auditor", false, error, sizeof error);
    if (!agent) {
        fprintf (stderr, "airlock status: %s\n", error);
        goto cleanup;
    }
    al_agent_result_t result;
    reply = al_agent_status_query (agent, "agents", NULL, 0, timeout_s * 1000, &result);
    if (!reply) {
        if (result.status == AL_AGENT_DENIED) {
            fprintf (stderr, "airlock status: the broker refused the query: %s\n", result.reason);
            exit_code = AL_EXIT_BAD;
        }
        else {
            char last [512];
            al_agent_last_error (agent, last, sizeof last);
            fprintf (stderr, "airlock status: no answer from the broker at %s within %d s%s%s\n"
                             "(is it running? `airlock broker --config FILE` starts it)\n",
                     al_config_router_endpoint (config), timeout_s, *last ? ": " : "", last);
        }
        goto cleanup;
    }
    s_print (reply->status_reply, json);
    exit_code = AL_EXIT_OK;
cleanup:
    al_codec_free (&reply);
    al_agent_destroy (&agent);
    al_config_destroy (&config);
    return exit_code;
}
