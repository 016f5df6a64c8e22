/*  cmd_agent.c: `airlock agent ROLE`: run one of the bus agents in the foreground.

    The agents are long-running processes; `airlock up` supervises them, and an operator
    or a test may run one directly. Logs go to stderr (czmq's zsys). SIGTERM or Ctrl-C
    stops the agent cleanly: the running step ends, its record is flushed, the
    connection closes; a deployment in progress is resumed from the journal at the next
    start.
*/
#include "cli/cli.h"
#include "cli/cli_log.h"
#include "agents/al_agent.h"
#include "agents/al_deploy_manager.h"
#include "agents/al_monitor.h"
#include "agents/al_notifier.h"
#include "agents/al_orchestrator.h"
#include "agents/al_qa.h"
#include "base/al_config.h"
#include "broker/al_telemetry_server.h"
#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: airlock agent ROLE [--state DIR | --config FILE] [--interval-ms N] [--log-format text|json]\n"
        "\n"
        "Run a bus agent in the foreground until SIGTERM or Ctrl-C.\n"
        "\n"
        "roles:\n"
        "  orchestrator     runs each release: staging, QA, the production request; never deploys\n"
        "  deploy-manager   executes deploys: staging on the orchestrator's DeployRequest,\n"
        "                   production only on the broker's ExecuteDeploy with a verified grant\n"
        "  monitor          scrapes every instance's /metrics, publishes golden signals, evaluates\n"
        "                   quality_rules.yaml during rollouts and soaks, triggers rollbacks\n"
        "  qa               validates a release running in staging (services.yaml qa: smoke\n"
        "                   requests and test suites) and answers a signed-off QA report\n"
        "  notifier         delivers notifications (notifications.yaml: Slack, webhooks with\n"
        "                   HMAC, CloudEvents) through a durable outbox, each exactly once\n"
        "\n"
        "options:\n"
        "  --state DIR      the state directory (reads DIR/airlock.yaml)\n"
        "  --config FILE    airlock.yaml (default $AIRLOCK_CONFIG, else ./airlock-state/airlock.yaml)\n"
        "  --interval-ms N  monitor: scrape interval (default 1000, at least 50)\n"
        "  --log-format F   text (default) or json: stderr as one JSON object per line\n"
        "                   (time, level, component: the role, message)\n"
        "\n"
        "exit codes: 0 clean shutdown, 2 cannot start (configuration, policy, services.yaml, keys)\n");
}

static int
s_agent (int argc, char **argv)
{
    if (al_cli_wants_help (argc, argv)) {
        s_usage (stdout);
        return AL_EXIT_OK;
    }
    const char *role = NULL;
    al_monitor_options_t monitor;
    al_monitor_options_defaults (&monitor);
    al_cli_number_t interval = { "agent", "--interval-ms", "ms", 50, 60000, &monitor.interval_ms, NULL };
    const al_cli_option_t options [] = {
        { "--interval-ms", .take = al_cli_take_number, .arg = &interval }, { .name = NULL }
    };
    const al_cli_parser_t parser = { "agent", s_usage, .config = true, .options = options,
                                     .arguments = &role, .arguments_max = 1 };
    al_cli_common_t common;
    if (al_cli_parse (&parser, argc, argv, &common) != 0)
        return AL_EXIT_USAGE;
    if (!role) {
        s_usage (stderr);
        return AL_EXIT_USAGE;
    }
    if (strcmp (role, "deploy-manager") != 0 && strcmp (role, "monitor") != 0 && strcmp (role, "orchestrator") != 0
    &&  strcmp (role, "qa") != 0 && strcmp (role, "notifier") != 0) {
        fprintf (stderr, "airlock agent: unknown role '%s' (roles: orchestrator, qa, deploy-manager, monitor, notifier)\n", role);
        return AL_EXIT_USAGE;
    }
    const char *config_path = common.config_path;
    char error [2048] = "";
    al_config_t *config = al_config_load (config_path, error, sizeof error);
    if (!config) {
        fprintf (stderr, "airlock agent: %s\n", error);
        return AL_EXIT_USAGE;
    }
    al_telemetry_server_t *metrics = al_telemetry_server_for (config, role, error, sizeof error);
    if (!metrics && *error) {
        fprintf (stderr, "airlock agent %s: %s\n", role, error);
        al_config_destroy (&config);
        return AL_EXIT_USAGE;
    }
    if (metrics)
        fprintf (stderr, "airlock agent %s: metrics on http://%s/metrics\n", role, al_telemetry_server_address (metrics));
    al_agent_catch_signals ();
    int rc = strcmp (role, "monitor") == 0? al_monitor_run (config, &monitor, error, sizeof error)
           : strcmp (role, "orchestrator") == 0? al_orchestrator_run (config, error, sizeof error)
           : strcmp (role, "qa") == 0? al_qa_run (config, error, sizeof error)
           : strcmp (role, "notifier") == 0? al_notifier_run (config, error, sizeof error)
           : al_deploy_manager_run (config, error, sizeof error);
    if (rc != 0)
        fprintf (stderr, "airlock agent %s: %s\n", role, error);
    al_telemetry_server_destroy (&metrics);
    al_config_destroy (&config);
    return rc == 0? AL_EXIT_OK: AL_EXIT_USAGE;
}

int
al_cmd_agent (int argc, char **argv)
{
    //  The component is the role: the first argument that is not an option or its value.
    const char *role = NULL;
    for (int index = 1; index < argc && !role; index++) {
        if (argv [index][0] == '-') {
            if (strchr (argv [index], '=') == NULL && index + 1 < argc && strcmp (argv [index], "--help") != 0
            &&  strcmp (argv [index], "-h") != 0)
                index++;        // skip its value
        }
        else
            role = argv [index];
    }
    return al_cli_log_run ("agent", role? role: "agent", argc, argv, s_agent);
}
