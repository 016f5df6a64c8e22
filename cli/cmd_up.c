/*  cmd_up.c: `airlock up`: the broker and the five agents, supervised.

    Argument parsing and printing only. It checks the state directory (`airlock
    check`), then hands the bus to agents/al_supervisor (the children, their logs and
    pid files, the bounded restart backoff, the stop order, the one-per-state lock: see
    al_supervisor.h) with this binary (/proc/self/exe) as the program and --log-format
    passed on to every child. A signal handler only sets the stop flag the supervisor
    polls; SIGTERM, SIGINT (Ctrl-C) or SIGHUP is a clean shutdown and exit 0.
*/
#include "cli/cli.h"
#include "agents/al_process_logs.h"
#include "agents/al_supervisor.h"
#include "console/al_console.h"
#include "cli/cli_log.h"
#include "base/al_paths.h"
#include "base/al_config.h"
#include <jansson.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define S_PATH_MAX 1200

static volatile sig_atomic_t s_stop;

static void
s_on_signal (int signum)
{
    (void) signum;
    s_stop = 1;
}

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: airlock up [--state DIR | --config FILE] [--interval-ms N] [--log-format text|json]\n\n"
        "Check the state directory first (`airlock check`: airlock.yaml, the policy,\n"
        "services.yaml, notifications.yaml, keys) and start nothing if it is invalid. Then\n"
        "run the broker and the five agents (orchestrator, qa, deploy-manager, monitor,\n"
        "notifier) as supervised child processes until Ctrl-C, SIGTERM or SIGHUP:\n"
        "  - logs: STATE_DIR/logs/<name>.log, one per process (broker, orchestrator, qa,\n"
        "    deploy-manager, monitor, notifier), appended; each start of a process adds a line\n"
        "    \"airlock up: <name> started (pid N, restart K)\";\n"
        "  - pids: STATE_DIR/run/<name>.pid while the process runs; STATE_DIR/run/up.lock holds\n"
        "    this process's pid and is locked while it runs (one `airlock up` per state);\n"
        "  - a crashed process is restarted after a backoff of 0.5 s doubling to at most 1 s\n"
        "    for the broker (the bus is never down long) and 5 s for an agent (back to 0.5 s\n"
        "    once it has run for a minute); stderr reports each exit and restart:\n"
        "      airlock up: <name> (pid N) killed by signal S after T s; restart in D s\n"
        "      airlock up: <name> last said: <its log's last error line> (<log>)\n"
        "      airlock up: <name> restarted (pid N, restart K)\n"
        "  - shutdown stops the agents first, then the broker (SIGTERM, SIGKILL after 10 s).\n"
        "If this process is killed, its children get SIGTERM.\n\n"
        "options:\n"
        "  --state DIR       the state directory (reads DIR/airlock.yaml)\n"
        "  --config FILE     airlock.yaml (default $AIRLOCK_CONFIG, else ./airlock-state/airlock.yaml)\n"
        "  --interval-ms N   the monitor's scrape interval (50..60000, default 1000)\n"
        "  --log-format F    text or json: passed to every process (their logs), and this\n"
        "                    command's own stderr as JSON lines with json\n\n"
        "exit codes: 0 after a clean shutdown, 1 the state directory is invalid (every error\n"
        "listed) or another `airlock up` runs on it, 2 usage error, unreadable configuration\n"
        "or unusable state directory\n");
}

//  Why a child stopped, as its log says: "airlock up: NAME last said: LINE".
static void
s_report_last_error (void *arg, const char *name, const char *log_path)
{
    (void) arg;
    char line [512];
    if (al_process_logs_last_error (log_path, line, sizeof line))
        fprintf (stderr, "airlock up: %s last said: %s (%s)\n", name, line, log_path);
}

//  --log-format text|json (also --log-format=json), for al_cli_parse: *arg is the
//  int that becomes 1 for json, 0 for text.
static int
s_log_format_option (int argc, char **argv, int *index, void *arg)
{
    int json = 0;
    int taken = al_cli_log_format_option ("up", argc, argv, index, &json);
    if (taken > 0)
        *(int *) arg = json;
    return taken;
}

int
al_cmd_up (int argc, char **argv)
{
    if (al_cli_wants_help (argc, argv)) {
        s_usage (stdout);
        return AL_EXIT_OK;
    }
    const char *interval = NULL;
    int interval_ms = 0, log_json = -1;     // -1: no --log-format given
    al_cli_number_t number = { "up", "--interval-ms", "ms", 50, 60000, &interval_ms, &interval };
    const al_cli_option_t options [] = {
        { "--interval-ms", .take = al_cli_take_number, .arg = &number }, { .name = NULL }
    };
    const al_cli_parser_t parser = { "up", s_usage, .config = true, .options = options,
                                     .other = s_log_format_option, .other_arg = &log_json };
    al_cli_common_t common;
    if (al_cli_parse (&parser, argc, argv, &common) != 0)
        return AL_EXIT_USAGE;
    const char *state_option = common.state_option;
    if (state_option) {
        struct stat info;
        bool found = stat (state_option, &info) == 0;
        if (!found || !S_ISDIR (info.st_mode)) {
            fprintf (stderr, "airlock up: --state %s: %s (`airlock init %s` makes a state directory)\n",
                     state_option, found? "not a directory": strerror (errno), state_option);
            return AL_EXIT_USAGE;
        }
    }
    const char *config_path = common.config_path;
    //  `airlock check` first: an invalid file would only make an agent crash-loop, the
    //  cause in its log. Every error is listed here instead, and nothing starts.
    json_t *problems = json_array ();
    int problem_count = al_cli_check_state (config_path, problems);
    size_t problem_index;
    json_t *problem;
    json_array_foreach (problems, problem_index, problem)
        fprintf (stderr, "%s\n", json_string_value (problem));
    json_decref (problems);
    if (problem_count != 0) {
        if (problem_count > 0)
            fprintf (stderr, "airlock up: %s: %d error%s (`airlock check` lists them too); nothing started\n",
                     config_path, problem_count, problem_count == 1? "": "s");
        return problem_count < 0? AL_EXIT_USAGE: AL_EXIT_BAD;
    }
    int rc = AL_EXIT_USAGE;
    al_supervisor_t *supervisor = NULL;
    char error [1024];
    al_config_t *config = al_config_load (config_path, error, sizeof error);
    if (!config) {
        fprintf (stderr, "airlock up: %s\n", error);
        return AL_EXIT_USAGE;
    }
    const char *state_dir = al_config_state_dir (config);
    char self_exe [1024];
    ssize_t length = readlink ("/proc/self/exe", self_exe, sizeof self_exe - 1);
    if (length <= 0 || (size_t) length >= sizeof self_exe - 1) {
        fprintf (stderr, "airlock up: cannot find its own executable: %s\n", length < 0? strerror (errno): "path too long");
        goto cleanup;
    }
    self_exe [length] = 0;
    supervisor = al_supervisor_new (state_dir, stderr, error, sizeof error);
    if (!supervisor) {
        fprintf (stderr, "airlock up: %s\n", error);
        goto cleanup;
    }
    al_supervisor_bus_t bus = {
        .executable = self_exe, .config_path = config_path, .interval_ms = interval,
        .log_format = log_json < 0? NULL: log_json? "json": "text",
    };
    if (al_supervisor_add_bus (supervisor, &bus, error, sizeof error) != 0) {
        fprintf (stderr, "airlock up: %s\n", error);
        goto cleanup;
    }
    //  The web console, when airlock.yaml asks for one (console: listen, token_file).
    const char *console_listen = al_config_console_listen (config);
    if (console_listen) {
        char port_file [S_PATH_MAX + 16];
        if (al_paths_get (state_dir, AL_PATH_CONSOLE_PORT, port_file, sizeof port_file, error, sizeof error) != 0) {
            fprintf (stderr, "airlock up: %s\n", error);
            goto cleanup;
        }
        const char *token_file = al_config_console_token_file (config);
        if (al_console_listen_check (console_listen, token_file != NULL, error, sizeof error) != 0) {
            fprintf (stderr, "airlock up: %s: console: %s; nothing started\n", config_path, error);
            rc = AL_EXIT_BAD;
            goto cleanup;
        }
        const char *argv [] = { self_exe, "console", "--config", config_path, "--listen", console_listen,
                                "--port-file", port_file, token_file? "--token-file": NULL, token_file, NULL };
        al_supervisor_child_t child = { .name = "console", .argv = argv, .backoff = al_supervisor_agent_backoff,
                                        .stop_rank = 0 };
        if (al_supervisor_add (supervisor, &child, error, sizeof error) != 0) {
            fprintf (stderr, "airlock up: %s\n", error);
            goto cleanup;
        }
    }
    int locked = al_supervisor_lock (supervisor, error, sizeof error);
    if (locked != 0) {
        fprintf (stderr, "airlock up: %s\n", error);
        rc = locked == -2? AL_EXIT_BAD: AL_EXIT_USAGE;
        goto cleanup;
    }
    al_supervisor_on_exit (supervisor, s_report_last_error, NULL);
    //  Our own lines as JSON too when the children's are; they write to their logs.
    if (log_json > 0 && al_cli_log_json_start ("up") != 0) {
        fprintf (stderr, "airlock up: --log-format json: cannot redirect stderr\n");
        goto cleanup;
    }
    struct sigaction action;
    memset (&action, 0, sizeof action);
    action.sa_handler = s_on_signal;
    sigemptyset (&action.sa_mask);
    sigaction (SIGINT, &action, NULL);
    sigaction (SIGTERM, &action, NULL);
    sigaction (SIGHUP, &action, NULL);
    fprintf (stderr, "airlock up: starting the broker and 5 agents%s%s%s (logs in %s/%s, pids in %s/%s)\n",
             console_listen? " and the web console on http://": "", console_listen? console_listen: "",
             console_listen? "/": "", state_dir, al_paths_relative (AL_PATH_LOGS_DIR), state_dir,
             al_paths_relative (AL_PATH_RUN_DIR));
    al_supervisor_run (supervisor, &s_stop);
    fprintf (stderr, "airlock up: stopped\n");
    al_cli_log_json_stop ();
    rc = AL_EXIT_OK;

cleanup:
    al_supervisor_destroy (&supervisor);
    al_config_destroy (&config);
    return rc;
}
