/*  cmd_mcp.c: `airlock mcp [--identity NAME] [--config FILE]`: the Model Context
    Protocol server on stdin and stdout.

    Argument parsing only: load airlock.yaml, connect with the ci certificate or the
    --identity's (never a human role), and hand stdin and stdout to agents/al_mcp_server
    (the protocol, the tools and their invariants: see al_mcp_server.h). stdout carries
    protocol messages only; czmq's log goes to stderr. SIGINT/SIGTERM or the end of
    stdin ends the server (exit 0).
*/
#include "cli/cli.h"
#include "agents/al_agent.h"
#include "agents/al_init.h"
#include "agents/al_mcp_server.h"
#include "base/al_config.h"

#include <czmq.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: airlock mcp [--identity NAME] [--state DIR | --config FILE]\n\n"
        "Serve the Model Context Protocol (2025-11-25 .. 2024-11-05) on stdin/stdout for an AI agent's MCP\n"
        "client: JSON-RPC 2.0, one message per line. Tools: submit_release, get_status,\n"
        "list_approvals, request_rollback, recent_signals. Connects to the broker with the\n"
        "state directory's ci certificate: it can submit and read, never approve or deploy\n"
        "to production. Logs go to stderr. Ends at the end of stdin, SIGINT or SIGTERM.\n\n"
        "options:\n"
        "  --identity NAME connect as this identity of identities.yaml (its key: KEYS/NAME.cert,\n"
        "                  made by `airlock identity add`), never a human role; default ci\n"
        "  --state DIR     the state directory (reads DIR/airlock.yaml)\n"
        "  --config FILE   airlock.yaml (default $AIRLOCK_CONFIG, else ./airlock-state/airlock.yaml)\n\n"
        "exit codes: 0 stdin ended, 2 usage error or unusable configuration\n"
        "docs/clients.md shows an MCP client configuration.\n");
}

int
al_cmd_mcp (int argc, char **argv)
{
    if (al_cli_wants_help (argc, argv)) {
        s_usage (stdout);
        return AL_EXIT_OK;
    }
    const char *identity = NULL;
    const al_cli_option_t options [] = { { "--identity", .value = &identity }, { .name = NULL } };
    const al_cli_parser_t parser = { "mcp", s_usage, .config = true, .options = options };
    al_cli_common_t common;
    if (al_cli_parse (&parser, argc, argv, &common) != 0)
        return AL_EXIT_USAGE;
    const char *config_path = common.config_path;
    //  stdout is the protocol channel: everything else goes to stderr.
    zsys_set_logstream (stderr);
    signal (SIGPIPE, SIG_IGN);
    int exit_code = AL_EXIT_USAGE;
    char error [1024];
    al_agent_t *agent = NULL;
    al_mcp_server_t *server = NULL;
    al_config_t *config = al_config_load (config_path, error, sizeof error);
    if (!config) {
        fprintf (stderr, "airlock mcp: %s\n", error);
        goto cleanup;
    }
    //  The ci identity, or the agent's own (--identity: listed in identities.yaml with its
    //  key in KEYS/NAME.cert, and never a human role).
    char role [64] = "ci";
    if (identity && al_init_client_identity (config, identity, role, sizeof role, error, sizeof error) != 0) {
        fprintf (stderr, "airlock mcp: --identity %s: %s\n", identity, error);
        goto cleanup;
    }
    agent = al_agent_new_for_role (config, identity? identity: "ci", false, error, sizeof error);
    if (!agent) {
        fprintf (stderr, "airlock mcp: %s\n", error);
        goto cleanup;
    }
    server = al_mcp_server_new (config, agent);
    if (!server) {
        fprintf (stderr, "airlock mcp: out of memory\n");
        goto cleanup;
    }
    al_agent_catch_signals ();
    char brokers [AL_AGENT_ENDPOINTS_TEXT_SIZE];
    zsys_info ("mcp: serving on stdio as %s, role %s (broker %s)", identity? identity: "ci", role,
               al_agent_endpoints_describe (al_config_broker_endpoints (config), brokers, sizeof brokers));
    exit_code = al_mcp_server_serve (server, STDIN_FILENO, STDOUT_FILENO) == 0? AL_EXIT_OK: AL_EXIT_USAGE;
    al_agent_flush (agent, 1000);
cleanup:
    al_mcp_server_destroy (&server);
    al_agent_destroy (&agent);
    al_config_destroy (&config);
    return exit_code;
}
