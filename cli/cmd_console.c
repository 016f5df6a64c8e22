/*  cmd_console.c: `airlock console`: the web console for approvers, operators, auditors.

    Parses the options, connects to the broker as the state directory's `console`
    identity (the read-only `console` role: send nothing; StatusQuery and the event bus
    only), starts the console's HTTP server (console/al_console.h) with the data API of
    agents/al_console_data.h (agents, releases, approvals, audit, audit_row, verify,
    history, soak_rules), and streams to the browsers (GET /api/stream, server-sent
    events) what al_console_data makes of the soak signals, rollback triggers, deploy
    progress and receipts the broker publishes. docs/console.md.

    Threading: the HTTP server calls the API from its connection threads; this thread
    reads the event bus until SIGINT or SIGTERM.
*/
#include "cli/cli.h"
#include "agents/al_agent.h"
#include "agents/al_console_data.h"
#include "agents/al_subscriber.h"
#include "base/al_config.h"
#include "console/al_console.h"
#include "proto/al_codec.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: airlock console [--state DIR | --config FILE] [--listen HOST:PORT]\n"
        "                       [--token-file FILE] [--port-file FILE] [--timeout SECONDS]\n\n"
        "Serve the web console: agents, releases, approvals, soak charts and the audit log,\n"
        "read-only (no approve button: a production approval stays a signature made with\n"
        "the approver's own key, `airlock approve REQUEST_ID`). Connects to the broker as\n"
        "the state directory's `console` identity (read-only role). docs/console.md.\n\n"
        "options:\n"
        "  --listen HOST:PORT  where to listen (default 127.0.0.1:8470; port 0: the kernel\n"
        "                      chooses). A non-loopback address needs --token-file.\n"
        "  --token-file FILE   require this token (first line, 16+ characters) on every\n"
        "                      request: Authorization: Bearer TOKEN, or /login?token=TOKEN\n"
        "  --port-file FILE    write the port listened on to FILE once listening\n"
        "  --timeout SECONDS   how long a page waits for the broker (default 5)\n\n"
        "exit codes: 0 stopped by SIGINT/SIGTERM, 2 usage error or cannot start\n");
}

//  The console's query parameters, for al_console_data.
static const char *
s_arg (const void *request, const char *key)
{
    return al_console_request_arg ((const al_console_request_t *) request, key);
}

static json_t *
s_api (void *arg, const char *name, const al_console_request_t *request, int *status, char *error,
       size_t error_size)
{
    return al_console_data_api ((al_console_data_t *) arg, name, s_arg, request, status, error, error_size);
}

//  ---- the command ----------------------------------------------------------------------

int
al_cmd_console (int argc, char **argv)
{
    if (al_cli_wants_help (argc, argv)) {
        s_usage (stdout);
        return AL_EXIT_OK;
    }
    const char *listen = "127.0.0.1:8470", *token_file = NULL, *port_file = NULL;
    int timeout_s = 5;
    al_cli_number_t timeout = { "console", "--timeout", "seconds", 1, 3600, &timeout_s, NULL };
    const al_cli_option_t table [] = {
        { "--listen", .value = &listen }, { "--token-file", .value = &token_file },
        { "--port-file", .value = &port_file },
        { "--timeout", .take = al_cli_take_number, .arg = &timeout }, { .name = NULL }
    };
    const al_cli_parser_t parser = { "console", s_usage, .config = true, .options = table };
    al_cli_common_t common;
    if (al_cli_parse (&parser, argc, argv, &common) != 0)
        return AL_EXIT_USAGE;
    const char *config_path = common.config_path;
    int exit_code = AL_EXIT_USAGE;
    char error [1024] = "";
    al_console_t *console = NULL;
    al_subscriber_t *subscriber = NULL;
    al_agent_t *agent = NULL;
    al_console_data_t *data = NULL;
    al_config_t *config = al_config_load (config_path, error, sizeof error);
    if (!config) {
        fprintf (stderr, "airlock console: %s\n", error);
        goto cleanup;
    }
    agent = al_agent_new_for_role (config, "console", false, error, sizeof error);
    if (!agent) {
        fprintf (stderr, "airlock console: %s\n(`airlock identity add console --role console` makes the "
                 "console's identity)\n", error);
        goto cleanup;
    }
    subscriber = al_subscriber_new (config, "console", error, sizeof error);
    if (!subscriber) {
        fprintf (stderr, "airlock console: %s\n", error);
        goto cleanup;
    }
    const char *topics [] = { "soak.", "event.RollbackTrigger", "event.DeployProgress", "event.DeployReceipt" };
    for (size_t index = 0; index < sizeof topics / sizeof topics [0]; index++)
        al_subscriber_subscribe (subscriber, topics [index]);
    data = al_console_data_new (config, agent, timeout_s * 1000);
    if (!data) {
        fprintf (stderr, "airlock console: out of memory\n");
        goto cleanup;
    }
    if (!al_console_data_judges (data))
        fprintf (stderr, "airlock console: %s: the policy does not load: soak samples are shown unjudged\n",
                 al_config_policy_dir (config));
    al_console_options_t options = { .listen = listen, .token_file = token_file, .api = s_api, .api_arg = data };
    console = al_console_new (&options, error, sizeof error);
    if (!console) {
        fprintf (stderr, "airlock console: %s\n", error);
        goto cleanup;
    }
    //  The URL: the host part of --listen as given ("[::1]" keeps its brackets).
    char url [300];
    const char *colon = strrchr (listen, ':');
    snprintf (url, sizeof url, "http://%.*s:%u/", (int) (colon - listen), listen, (unsigned) al_console_port (console));
    printf ("airlock console: serving %s (read-only, as the console identity)\n", url);
    fflush (stdout);
    if (port_file) {
        FILE *file = fopen (port_file, "w");
        if (!file || fprintf (file, "%u\n", (unsigned) al_console_port (console)) < 0) {
            fprintf (stderr, "airlock console: %s: cannot write the port\n", port_file);
            if (file)
                fclose (file);
            goto cleanup;
        }
        fclose (file);
    }
    al_agent_catch_signals ();
    while (!al_agent_interrupted ()) {
        char topic [300];
        uint64_t missed = 0;
        al_envelope_t *envelope = al_subscriber_recv (subscriber, 250, topic, sizeof topic, NULL, &missed, NULL);
        const char *event = NULL;
        json_t *json = envelope? al_console_data_event (data, topic, envelope, missed, &event): NULL;
        if (json)
            al_console_publish (console, event, json);
        json_decref (json);
        al_codec_free (&envelope);
    }
    exit_code = AL_EXIT_OK;
cleanup:
    al_console_destroy (&console);
    al_subscriber_destroy (&subscriber);
    al_console_data_destroy (&data);
    al_agent_destroy (&agent);
    al_config_destroy (&config);
    return exit_code;
}
