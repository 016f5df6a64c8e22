/*  cmd_status.c: `airlock status [RELEASE] [--config FILE] [--timeout SECONDS] [--json]`.

    Without RELEASE: which agents the broker sees (StatusQuery "agents"), their roles and
    last heartbeat, then the releases the orchestrator knows and where each one is.
    With RELEASE: that release's pipeline state and history (the orchestrator's release
    file), whether its production request waits for approval (StatusQuery "approvals"),
    and the recent events of its staging and production deployments (the deploy journal
    in the broker's store, StatusQuery "journal").

    Connects as the read-only `auditor` certificate through the agent runtime. A broker
    that does not answer within the timeout is exit code 2, with the endpoint named.
*/
#include "cli/cli.h"
#include "base/al_clock.h"
#include "base/al_id.h"
#include "agents/al_process_logs.h"
#include "agents/al_releases.h"
#include "agents/al_agent.h"
#include "agents/al_status_view.h"
#include "base/al_config.h"


#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: airlock status [RELEASE] [--state DIR | --config FILE] [--timeout SECONDS] [--json]\n\n"
        "Without RELEASE: the agents connected to the broker (identity, role, alive, last\n"
        "heartbeat), each agent `airlock up` runs that is not connected with the last error\n"
        "line of its log (STATE_DIR/logs/<agent>.log), and the releases in the pipeline with\n"
        "their state. With RELEASE (the id\n"
        "`airlock submit` printed): its state (PREPARE, STAGING, VALIDATE, APPROVE, DEPLOY,\n"
        "MONITOR, DONE, ROLLED_BACK, FAILED), its history, whether its production request\n"
        "awaits approval, and the recent events of its deployments. Connects with the\n"
        "state directory's auditor certificate (read-only).\n\n"
        "options:\n"
        "  --state DIR        the state directory (reads DIR/airlock.yaml)\n"
        "  --config FILE      airlock.yaml (default $AIRLOCK_CONFIG, else\n"
        "                     ./airlock-state/airlock.yaml)\n"
        "  --timeout SECONDS  how long to wait for the broker (default 5)\n"
        "  --json             JSON: {\"agents\": [...], \"releases\": [...], \"not_connected\":\n"
        "                     [{\"agent\", \"log\", \"last_line\"}]}, or with RELEASE\n"
        "                     {\"release\": {...}, \"awaiting_approval\": bool, \"events\": {...}}\n\n"
        "exit codes: 0 ok, 1 the broker refused the query, 2 usage error, unreadable\n"
        "configuration or broker unreachable\n");
}

static const char *
s_text (json_t *object, const char *key)
{
    const char *value = json_string_value (json_object_get (object, key));
    return value? value: "";
}

static void
s_print_releases (json_t *releases)
{
    if (json_array_size (releases) == 0) {
        printf ("\nno releases in the pipeline\n");
        return;
    }
    printf ("\n%-40s %-16s %-14s %-12s %s\n", "RELEASE", "SERVICE", "VERSION", "STATE", "DETAIL");
    size_t index;
    json_t *release;
    json_array_foreach (releases, index, release)
        printf ("%-40s %-16s %-14s %-12s %s\n", s_text (release, "release_id"), s_text (release, "service"),
                s_text (release, "version"), s_text (release, "state"), s_text (release, "detail"));
}

//  `airlock status RELEASE`: the document of al_releases_status (agents/al_releases:
//  the release file, its deployments' journals, whether its production request awaits
//  approval), printed. A release the orchestrator does not hold is 1; a query the
//  broker did not answer is 2, never an empty history.
static int
s_release_status (const al_config_t *config, al_agent_t *agent, const char *id, bool json, int timeout_ms)
{
    char error [4400] = "";
    al_releases_status_failure_t failure;
    json_t *document = al_releases_status (config, agent, id, timeout_ms, &failure, error, sizeof error);
    if (!document) {
        fprintf (stderr, "airlock status: %s\n", error);
        return failure == AL_RELEASES_STATUS_NO_RELEASE? AL_EXIT_BAD: AL_EXIT_USAGE;
    }
    json_t *release = json_object_get (document, "release");
    json_t *events = json_object_get (document, "events");
    bool awaiting = json_is_true (json_object_get (document, "awaiting_approval"));
    char deployment [AL_ID_SIZE];
    al_id_deployment (id, AL_ID_PART_PRODUCTION, deployment, sizeof deployment);
    if (json) {
        json_dumpf (document, stdout, JSON_INDENT (2));
        printf ("\n");
        json_decref (document);
        return AL_EXIT_OK;
    }
    printf ("release   %s\nservice   %s %s (%s)\nartifact  %s\n          sha256:%s\nstate     %s: %s\n",
            id, s_text (release, "service"), s_text (release, "version"), s_text (release, "type"),
            s_text (release, "artifact_uri"), s_text (release, "artifact_sha256"), s_text (release, "state"),
            s_text (release, "detail"));
    if (awaiting)
        printf ("approval  waiting: airlock approve %s\n", deployment);
    printf ("\nhistory\n");
    size_t index;
    json_t *entry;
    json_array_foreach (json_object_get (release, "history"), index, entry) {
        time_t when = (time_t) (json_integer_value (json_object_get (entry, "time_ms")) / 1000);
        char stamp [32];
        strftime (stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", gmtime (&when));
        printf ("  %s  %-12s %s\n", stamp, s_text (entry, "state"), s_text (entry, "detail"));
    }
    const char *parts [] = { "staging", "production" };
    for (int p = 0; p < 2; p++) {
        json_t *list = json_object_get (events, parts [p]);
        if (json_array_size (list) == 0)
            continue;
        printf ("\n%s deployment events\n", parts [p]);
        json_array_foreach (list, index, entry)
            printf ("  #%-6lld %-9s %-6s %-11s %s\n", (long long) json_integer_value (json_object_get (entry, "sequence")),
                    s_text (entry, "step"), s_text (entry, "phase"), s_text (entry, "status"), s_text (entry, "detail"));
    }
    json_decref (document);
    return AL_EXIT_OK;
}

static void
s_print_silent (json_t *silent)
{
    if (json_array_size (silent) == 0)
        return;
    printf ("\nnot connected (the last error line of each one's log):\n");
    size_t index;
    json_t *entry;
    json_array_foreach (silent, index, entry)
        printf ("  %-16s %s\n  %-16s (%s)\n", s_text (entry, "agent"), s_text (entry, "last_line"), "",
                s_text (entry, "log"));
}

static void
s_print (const Airlock__StatusReply *reply, bool json, json_t *releases, json_t *silent)
{
    uint64_t now = (uint64_t) al_clock_wall_ms ();
    if (json) {
        json_t *agents = al_status_view_agents (reply, now);
        json_t *root = json_pack ("{s:o, s:O, s:O}", "agents", agents, "releases", releases,
                                  "not_connected", silent);
        json_dumpf (root, stdout, JSON_INDENT (2) | JSON_REAL_PRECISION (6));
        printf ("\n");
        json_decref (root);
        return;
    }
    if (reply->n_agents == 0) {
        printf ("no agents connected\n");
        s_print_silent (silent);
        s_print_releases (releases);
        return;
    }
    printf ("%-24s %-20s %-6s %s\n", "IDENTITY", "ROLE", "ALIVE", "LAST HEARTBEAT");
    for (size_t index = 0; index < reply->n_agents; index++) {
        const Airlock__AgentStatus *agent = reply->agents [index];
        char age [64];
        al_status_view_age_text (agent->last_heartbeat_ms, now, age, sizeof age);
        printf ("%-24s %-20s %-6s %s\n", agent->identity, agent->role,
                agent->alive ? "yes" : "no", age);
    }
    s_print_silent (silent);
    s_print_releases (releases);
}

int
al_cmd_status (int argc, char **argv)
{
    if (al_cli_wants_help (argc, argv)) {
        s_usage (stdout);
        return AL_EXIT_OK;
    }
    int timeout_s = 5;
    const char *release_id = NULL;
    json_t *releases = NULL;
    al_cli_number_t timeout = { "status", "--timeout", "seconds", 1, 3600, &timeout_s, NULL };
    const al_cli_option_t options [] = {
        { "--timeout", .take = al_cli_take_number, .arg = &timeout }, { .name = NULL }
    };
    const al_cli_parser_t parser = { "status", s_usage, .config = true, .json = true, .options = options,
                                     .arguments = &release_id, .arguments_max = 1 };
    al_cli_common_t common;
    if (al_cli_parse (&parser, argc, argv, &common) != 0)
        return AL_EXIT_USAGE;
    bool json = common.json;
    const char *config_path = common.config_path;
    int exit_code = AL_EXIT_USAGE;
    char error [1024] = "";
    al_agent_t *agent = NULL;
    al_envelope_t *reply = NULL;
    json_t *silent = NULL;
    char brokers [AL_AGENT_ENDPOINTS_TEXT_SIZE];
    al_config_t *config = al_config_load (config_path, error, sizeof error);
    if (!config) {
        fprintf (stderr, "airlock status: %s\n", error);
        goto cleanup;
    }
    //  Every broker the agent tries (endpoints.brokers), for the messages below.
    al_agent_endpoints_describe (al_config_broker_endpoints (config), brokers, sizeof brokers);
    agent = al_agent_new_for_role (config, "auditor", false, error, sizeof error);
    if (!agent) {
        fprintf (stderr, "airlock status: %s\n", error);
        goto cleanup;
    }
    if (release_id) {
        if (al_agent_wait_registered (agent, timeout_s * 1000) != 0) {
            fprintf (stderr, "airlock status: no answer from the broker at %s within %d s\n", brokers, timeout_s);
            goto cleanup;
        }
        exit_code = s_release_status (config, agent, release_id, json, timeout_s * 1000);
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
                             "(is it running? `airlock up` starts it and the agents)\n",
                     brokers, timeout_s, *last ? ": " : "", last);
            char *log = al_process_logs_path (config, "broker");
            char line [512];
            if (log && al_process_logs_last_error (log, line, sizeof line))
                fprintf (stderr, "airlock status: the broker's log says: %s (%s)\n", line, log);
            free (log);
        }
        goto cleanup;
    }
    releases = al_releases_list (config);
    silent = al_status_view_not_connected (config, reply->status_reply);
    s_print (reply->status_reply, json, releases, silent);
    exit_code = AL_EXIT_OK;
cleanup:
    json_decref (silent);
    json_decref (releases);
    al_codec_free (&reply);
    al_agent_destroy (&agent);
    al_config_destroy (&config);
    return exit_code;
}
