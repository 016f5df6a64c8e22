/*  cmd_broker.c: `airlock broker [--config FILE]`: run the broker until SIGTERM.

    Loads airlock.yaml (--config, else $AIRLOCK_CONFIG, else ./airlock-state/airlock.yaml), starts the
    broker (which refuses to start unless every security setting took effect) and runs
    it. SIGTERM/SIGINT: drain what is received, commit, answer, exit 0. SIGHUP: reload
    the policy (an invalid one is refused and the refusal audited).
*/
#include "cli/cli.h"
#include "base/al_sd_notify.h"
#include "cli/cli_log.h"
#include "broker/al_broker.h"
#include "base/al_config.h"
#include "broker/al_telemetry_server.h"
#include <czmq.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void
s_usage (FILE *out)
{
    fprintf (out, "usage: airlock broker [--state DIR | --config FILE] [--log-format text|json]\n\n"
                  "Run the airlock broker: CURVE-authenticated ROUTER and PUB endpoints, the\n"
                  "permission table, the hash-chained audit log, durable delivery queues.\n\n"
                  "  --state DIR     the state directory (reads DIR/airlock.yaml)\n"
                  "  --config FILE   airlock.yaml to use (default: $AIRLOCK_CONFIG, else ./airlock-state/airlock.yaml)\n"
                  "  --log-format F  text (default) or json: stderr as one JSON object per line\n"
                  "                  (time, level, component, message)\n\n"
                  "Signals: SIGTERM/SIGINT drain, commit and exit 0; SIGHUP reloads the policy.\n"
                  "Exit codes: 0 stopped cleanly, 1 the audit log failed, 2 usage or start-up error.\n");
}

static int
s_broker (int argc, char **argv)
{
    if (al_cli_wants_help (argc, argv)) {
        s_usage (stdout);
        return AL_EXIT_OK;
    }
    const al_cli_parser_t parser = { "broker", s_usage, .config = true };
    al_cli_common_t common;
    if (al_cli_parse (&parser, argc, argv, &common) != 0)
        return AL_EXIT_USAGE;
    const char *path = common.config_path;
    //  Logs go to stderr: stdout may be a pipe its reader closes.
    zsys_set_logstream (stderr);
    char error [1024] = "";
    al_config_t *config = al_config_load (path, error, sizeof error);
    if (!config) {
        fprintf (stderr, "airlock broker: %s\n", error);
        return AL_EXIT_USAGE;
    }
    al_broker_t *broker = al_broker_new (config, error, sizeof error);
    if (!broker) {
        fprintf (stderr, "airlock broker: %s\n", error);
        al_config_destroy (&config);
        return AL_EXIT_USAGE;
    }
    al_telemetry_server_t *metrics = al_telemetry_server_for (config, "broker", error, sizeof error);
    if (!metrics && *error) {
        fprintf (stderr, "airlock broker: %s\n", error);
        al_broker_destroy (&broker);
        al_config_destroy (&config);
        return AL_EXIT_USAGE;
    }
    al_broker_handle_signals (broker);
    fprintf (stderr, "airlock broker: listening on %s (events on %s)\n",
             al_config_router_endpoint (config), al_config_pub_endpoint (config));
    //  Both endpoints are bound: tell systemd (Type=notify), if it asked.
    char ready [1024];
    snprintf (ready, sizeof ready, "READY=1\nSTATUS=broker listening on %s",
              al_config_router_endpoint (config));
    if (al_sd_notify (ready) < 0)
        fprintf (stderr, "airlock broker: warning: cannot notify systemd at $NOTIFY_SOCKET: %s\n",
                 strerror (errno));
    if (metrics)
        fprintf (stderr, "airlock broker: metrics on http://%s/metrics\n", al_telemetry_server_address (metrics));
    int rc = al_broker_run (broker);
    al_telemetry_server_destroy (&metrics);
    al_broker_destroy (&broker);
    al_config_destroy (&config);
    return rc == 0? AL_EXIT_OK: AL_EXIT_BAD;
}

int
al_cmd_broker (int argc, char **argv)
{
    return al_cli_log_run ("broker", "broker", argc, argv, s_broker);
}
