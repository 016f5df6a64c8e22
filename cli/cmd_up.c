/*  cmd_up.c: `airlock up`: the broker and the five agents, supervised.

    Starts `airlock broker` and `airlock agent ROLE` for orchestrator, qa, deploy-manager,
    monitor and notifier as child processes of this one (the same binary, through
    /proc/self/exe), each with its own log (STATE_DIR/logs/<name>.log, appended). A child
    that exits is started again after a backoff that doubles from 0.5 s to 30 s and goes
    back to 0.5 s once the child has run for a minute. SIGTERM or Ctrl-C stops the agents
    first, then the broker (so nothing the agents flush is lost), each with SIGTERM and,
    after 10 s, SIGKILL; then `airlock up` exits 0.

    Only this process's own children are waited for (waitpid on their pids), and no
    other signal handling is installed.
*/
#include "cli/cli.h"
#include "broker/al_config.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define S_CHILDREN 6
#define S_BACKOFF_MIN_MS 500
#define S_BACKOFF_MAX_MS 30000
#define S_HEALTHY_MS 60000
#define S_STOP_GRACE_MS 10000

typedef struct {
    const char *name;               // log name, and the agent role (NULL args: the broker)
    const char *role;
    pid_t pid;
    int64_t started_ms;
    int64_t restart_at_ms;          // 0: running or not scheduled
    int backoff_ms;
    unsigned restarts;
} s_child_t;

static volatile sig_atomic_t s_stop;

static void
s_on_signal (int signum)
{
    (void) signum;
    s_stop = 1;
}

static int64_t
s_mono_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: airlock up [--state DIR | --config FILE] [--interval-ms N]\n\n"
        "Run the broker and the five agents (orchestrator, qa, deploy-manager, monitor,\n"
        "notifier) as supervised child processes: one log each in STATE_DIR/logs/, a crashed\n"
        "child restarted with backoff (0.5 s doubling to 30 s), and a clean shutdown on\n"
        "Ctrl-C or SIGTERM (agents first, then the broker).\n\n"
        "options:\n"
        "  --state DIR       the state directory (reads DIR/airlock.yaml)\n"
        "  --config FILE     airlock.yaml (default $AIRLOCK_CONFIG, else ./airlock-state/airlock.yaml)\n"
        "  --interval-ms N   the monitor's scrape interval (default 1000)\n\n"
        "exit codes: 0 after a clean shutdown, 2 usage error or unreadable configuration\n");
}

static pid_t
s_spawn (const char *self_exe, const char *config_path, const char *logs, s_child_t *child, const char *interval)
{
    char log [2048];
    snprintf (log, sizeof log, "%s/%s.log", logs, child->name);
    pid_t pid = fork ();
    if (pid != 0)
        return pid;
    int fd = open (log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd >= 0) {
        dup2 (fd, STDOUT_FILENO);
        dup2 (fd, STDERR_FILENO);
    }
    int null = open ("/dev/null", O_RDONLY);
    if (null >= 0)
        dup2 (null, STDIN_FILENO);
    signal (SIGINT, SIG_DFL);
    signal (SIGTERM, SIG_DFL);
    if (!child->role)
        execl (self_exe, "airlock", "broker", "--config", config_path, (char *) NULL);
    else
    if (strcmp (child->role, "monitor") == 0 && interval)
        execl (self_exe, "airlock", "agent", child->role, "--config", config_path, "--interval-ms", interval, (char *) NULL);
    else
        execl (self_exe, "airlock", "agent", child->role, "--config", config_path, (char *) NULL);
    fprintf (stderr, "airlock up: cannot run %s: %s\n", self_exe, strerror (errno));
    _exit (127);
}

static void
s_stop_child (s_child_t *child)
{
    if (child->pid <= 0)
        return;
    kill (child->pid, SIGTERM);
    int64_t deadline = s_mono_ms () + S_STOP_GRACE_MS;
    while (s_mono_ms () < deadline) {
        if (waitpid (child->pid, NULL, WNOHANG) == child->pid) {
            child->pid = 0;
            return;
        }
        struct timespec pause = { 0, 50000000L };
        nanosleep (&pause, NULL);
    }
    kill (child->pid, SIGKILL);
    waitpid (child->pid, NULL, 0);
    fprintf (stderr, "airlock up: %s did not stop within %d s: killed\n", child->name, S_STOP_GRACE_MS / 1000);
    child->pid = 0;
}

int
al_cmd_up (int argc, char **argv)
{
    if (al_cli_wants_help (argc, argv)) {
        s_usage (stdout);
        return AL_EXIT_OK;
    }
    const char *config_path = getenv ("AIRLOCK_CONFIG");
    if (!config_path || !*config_path)
        config_path = "./airlock-state/airlock.yaml";
    const char *interval = NULL;
    char state_config [2048];
    for (int index = 1; index < argc; index++) {
        if (strcmp (argv [index], "--config") == 0 && index + 1 < argc)
            config_path = argv [++index];
        else
        if (strcmp (argv [index], "--state") == 0 && index + 1 < argc) {
            snprintf (state_config, sizeof state_config, "%s/airlock.yaml", argv [++index]);
            config_path = state_config;
        }
        else
        if (strcmp (argv [index], "--interval-ms") == 0 && index + 1 < argc)
            interval = argv [++index];
        else {
            fprintf (stderr, "airlock up: unexpected argument '%s'\n\n", argv [index]);
            s_usage (stderr);
            return AL_EXIT_USAGE;
        }
    }
    char error [1024];
    al_config_t *config = al_config_load (config_path, error, sizeof error);
    if (!config) {
        fprintf (stderr, "airlock up: %s\n", error);
        return AL_EXIT_USAGE;
    }
    char logs [1200], self_exe [1024];
    snprintf (logs, sizeof logs, "%s/logs", al_config_state_dir (config));
    mkdir (logs, 0700);
    ssize_t length = readlink ("/proc/self/exe", self_exe, sizeof self_exe - 1);
    if (length <= 0) {
        fprintf (stderr, "airlock up: cannot find its own executable: %s\n", strerror (errno));
        al_config_destroy (&config);
        return AL_EXIT_USAGE;
    }
    self_exe [length] = 0;
    s_child_t children [S_CHILDREN] = {
        { .name = "broker", .role = NULL },
        { .name = "orchestrator", .role = "orchestrator" },
        { .name = "qa", .role = "qa" },
        { .name = "deploy-manager", .role = "deploy-manager" },
        { .name = "monitor", .role = "monitor" },
        { .name = "notifier", .role = "notifier" },
    };
    struct sigaction action;
    memset (&action, 0, sizeof action);
    action.sa_handler = s_on_signal;
    sigaction (SIGINT, &action, NULL);
    sigaction (SIGTERM, &action, NULL);
    fprintf (stderr, "airlock up: starting the broker and 5 agents (logs in %s)\n", logs);
    for (int i = 0; i < S_CHILDREN && !s_stop; i++) {
        children [i].backoff_ms = S_BACKOFF_MIN_MS;
        children [i].pid = s_spawn (self_exe, config_path, logs, &children [i], interval);
        children [i].started_ms = s_mono_ms ();
        fprintf (stderr, "airlock up: %-15s pid %d\n", children [i].name, (int) children [i].pid);
        if (i == 0) {
            struct timespec pause = { 0, 300000000L };     // the broker binds first
            nanosleep (&pause, NULL);
        }
    }
    while (!s_stop) {
        int64_t now = s_mono_ms ();
        for (int i = 0; i < S_CHILDREN; i++) {
            s_child_t *child = &children [i];
            int status = 0;
            if (child->pid > 0 && waitpid (child->pid, &status, WNOHANG) == child->pid) {
                int64_t ran = now - child->started_ms;
                if (ran >= S_HEALTHY_MS)
                    child->backoff_ms = S_BACKOFF_MIN_MS;
                fprintf (stderr, "airlock up: %s (pid %d) %s %d after %.1f s; restart in %.1f s\n", child->name,
                         (int) child->pid, WIFSIGNALED (status)? "killed by signal": "exited with",
                         WIFSIGNALED (status)? WTERMSIG (status): WEXITSTATUS (status), (double) ran / 1000.0,
                         (double) child->backoff_ms / 1000.0);
                child->pid = 0;
                child->restart_at_ms = now + child->backoff_ms;
                child->backoff_ms = child->backoff_ms * 2 > S_BACKOFF_MAX_MS? S_BACKOFF_MAX_MS: child->backoff_ms * 2;
            }
            if (child->pid == 0 && child->restart_at_ms && now >= child->restart_at_ms) {
                child->pid = s_spawn (self_exe, config_path, logs, child, interval);
                child->started_ms = now;
                child->restart_at_ms = 0;
                child->restarts++;
                fprintf (stderr, "airlock up: %s restarted (pid %d, restart %u)\n", child->name, (int) child->pid,
                         child->restarts);
            }
        }
        struct timespec pause = { 0, 100000000L };
        nanosleep (&pause, NULL);
    }
    fprintf (stderr, "airlock up: stopping (agents first, then the broker)\n");
    for (int i = S_CHILDREN - 1; i >= 0; i--)
        s_stop_child (&children [i]);
    fprintf (stderr, "airlock up: stopped\n");
    al_config_destroy (&config);
    return AL_EXIT_OK;
}
