/*  cmd_up.c: `airlock up`: the broker and the five agents, supervised.

    Starts `airlock broker` and `airlock agent ROLE` for orchestrator, qa, deploy-manager,
    monitor and notifier as child processes of this one (the same binary, through
    /proc/self/exe), each with its own log (STATE_DIR/logs/<name>.log, appended; every
    start adds a line "airlock up: NAME started (pid N, restart K)" before the child's own
    output) and its pid in STATE_DIR/run/<name>.pid while it runs. A child that exits is
    started again after a backoff that doubles from 0.5 s to 30 s and goes back to 0.5 s
    once the child has run for a minute; every exit and restart is reported on stderr with
    the delay. SIGTERM, SIGINT (Ctrl-C) or SIGHUP stops the agents first, all at once, then
    the broker (so nothing the agents flush is lost), each with SIGTERM and, after 10 s,
    SIGKILL; then `airlock up` exits 0.

    Invariants:
      - One `airlock up` per state directory: it holds an exclusive flock on
        STATE_DIR/run/up.lock (which holds its pid) for its whole life; a second one exits 1.
        Two would each start a broker on the same ipc:// path, the second silently taking
        the endpoint over from the first.
      - Each child runs in its own process group, so Ctrl-C at a terminal reaches only
        this process, which then stops the children in order (the terminal would otherwise
        interrupt the broker together with the agents).
      - A child gets SIGTERM when this process dies, however it dies (PR_SET_PDEATHSIG),
        so a SIGKILLed `airlock up` leaves no broker or agent behind.
      - Only this process's own children are waited for (waitpid on their pids). It is
        single-threaded; the signal handler only sets a flag.
*/
#include "cli/cli.h"
#include "base/al_sd_notify.h"
#include "broker/al_config.h"
#include <jansson.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define S_CHILDREN 6
#define S_BACKOFF_MIN_MS 500
#define S_BACKOFF_MAX_MS 30000
#define S_HEALTHY_MS 60000
#define S_STOP_GRACE_MS 10000
#define S_PATH_MAX 1200

typedef struct {
    const char *name;               // log and pid file name
    const char *role;               // the agent role; NULL: the broker
    pid_t pid;                      // 0: not running
    int64_t started_ms;
    int64_t restart_at_ms;          // 0: running, or not scheduled
    int backoff_ms;                 // the delay before the next restart
    unsigned restarts;
} s_child_t;

typedef struct {
    char self_exe [1024];
    const char *config_path;
    const char *interval;           // --interval-ms for the monitor, or NULL
    char logs [S_PATH_MAX];         // STATE_DIR/logs
    char run [S_PATH_MAX];          // STATE_DIR/run
} s_up_t;

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
s_sleep_ms (long ms)
{
    struct timespec pause = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep (&pause, NULL);       // a signal cuts it short, which is what we want
}

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: airlock up [--state DIR | --config FILE] [--interval-ms N]\n\n"
        "Check the state directory first (`airlock check`: airlock.yaml, the policy,\n"
        "services.yaml, notifications.yaml, keys) and start nothing if it is invalid. Then\n"
        "run the broker and the five agents (orchestrator, qa, deploy-manager, monitor,\n"
        "notifier) as supervised child processes until Ctrl-C, SIGTERM or SIGHUP:\n"
        "  - logs: STATE_DIR/logs/<name>.log, one per process (broker, orchestrator, qa,\n"
        "    deploy-manager, monitor, notifier), appended; each start of a process adds a line\n"
        "    \"airlock up: <name> started (pid N, restart K)\";\n"
        "  - pids: STATE_DIR/run/<name>.pid while the process runs; STATE_DIR/run/up.lock holds\n"
        "    this process's pid and is locked while it runs (one `airlock up` per state);\n"
        "  - a crashed process is restarted after a backoff of 0.5 s doubling to 30 s (back to\n"
        "    0.5 s once it has run for a minute); stderr reports each exit and restart:\n"
        "      airlock up: <name> (pid N) killed by signal S after T s; restart in D s\n"
        "      airlock up: <name> last said: <its log's last error line> (<log>)\n"
        "      airlock up: <name> restarted (pid N, restart K)\n"
        "  - shutdown stops the agents first, then the broker (SIGTERM, SIGKILL after 10 s).\n"
        "If this process is killed, its children get SIGTERM.\n\n"
        "options:\n"
        "  --state DIR       the state directory (reads DIR/airlock.yaml)\n"
        "  --config FILE     airlock.yaml (default $AIRLOCK_CONFIG, else ./airlock-state/airlock.yaml)\n"
        "  --interval-ms N   the monitor's scrape interval (50..60000, default 1000)\n\n"
        "exit codes: 0 after a clean shutdown, 1 the state directory is invalid (every error\n"
        "listed) or another `airlock up` runs on it, 2 usage error, unreadable configuration\n"
        "or unusable state directory\n");
}

//  Write STATE_DIR/run/NAME.pid through a rename, so a reader never sees half a pid.
static void
s_pidfile_write (const s_up_t *up, const char *name, pid_t pid)
{
    char path [S_PATH_MAX + 64], temporary [S_PATH_MAX + 80];
    snprintf (path, sizeof path, "%s/%s.pid", up->run, name);
    snprintf (temporary, sizeof temporary, "%s/.%s.pid.tmp", up->run, name);
    FILE *file = fopen (temporary, "w");
    if (!file) {
        fprintf (stderr, "airlock up: cannot write %s: %s\n", temporary, strerror (errno));
        return;
    }
    fprintf (file, "%d\n", (int) pid);
    if (fclose (file) != 0 || rename (temporary, path) != 0) {
        fprintf (stderr, "airlock up: cannot write %s: %s\n", path, strerror (errno));
        unlink (temporary);
    }
}

static void
s_pidfile_remove (const s_up_t *up, const char *name)
{
    char path [S_PATH_MAX + 64];
    snprintf (path, sizeof path, "%s/%s.pid", up->run, name);
    unlink (path);
}

//  Fork and exec one child; returns its pid, or -1 if fork failed.
static pid_t
s_spawn (const s_up_t *up, s_child_t *child)
{
    char log [S_PATH_MAX + 64];
    snprintf (log, sizeof log, "%s/%s.log", up->logs, child->name);
    //  Signals stay blocked from fork until the child has reset their handlers, so a
    //  SIGTERM sent to the new pid at once is not swallowed by our handler: it waits,
    //  pending, and then kills the child.
    sigset_t stops, previous;
    sigemptyset (&stops);
    sigaddset (&stops, SIGINT);
    sigaddset (&stops, SIGTERM);
    sigaddset (&stops, SIGHUP);
    sigprocmask (SIG_BLOCK, &stops, &previous);
    pid_t parent = getpid ();
    pid_t pid = fork ();
    if (pid != 0) {
        if (pid > 0)
            setpgid (pid, pid);     // also done by the child: whichever runs first
        sigprocmask (SIG_SETMASK, &previous, NULL);
        return pid;
    }
    signal (SIGINT, SIG_DFL);
    signal (SIGTERM, SIG_DFL);
    signal (SIGHUP, SIG_DFL);
    setpgid (0, 0);
    prctl (PR_SET_PDEATHSIG, SIGTERM);
    if (getppid () != parent)       // the parent died before prctl: nobody supervises us
        _exit (0);
    sigprocmask (SIG_SETMASK, &previous, NULL);
    int fd = open (log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd >= 0) {
        dup2 (fd, STDOUT_FILENO);
        dup2 (fd, STDERR_FILENO);
        close (fd);
    }
    int null = open ("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null >= 0) {
        dup2 (null, STDIN_FILENO);
        close (null);
    }
    char line [256];
    int length = snprintf (line, sizeof line, "airlock up: %s started (pid %d, restart %u)\n", child->name,
                           (int) getpid (), child->restarts);
    if (length > 0 && (size_t) length < sizeof line && write (STDERR_FILENO, line, (size_t) length) < 0)
        _exit (127);
    //  Only the broker speaks to systemd (READY=1, WATCHDOG=1): no agent, and no service
    //  deploy-manager starts, inherits the notification socket (al_sd_notify.h).
    if (child->role)
        al_sd_notify_forget ();
    if (!child->role)
        execl (up->self_exe, "airlock", "broker", "--config", up->config_path, (char *) NULL);
    else
    if (strcmp (child->role, "monitor") == 0 && up->interval)
        execl (up->self_exe, "airlock", "agent", child->role, "--config", up->config_path,
               "--interval-ms", up->interval, (char *) NULL);
    else
        execl (up->self_exe, "airlock", "agent", child->role, "--config", up->config_path, (char *) NULL);
    fprintf (stderr, "airlock up: cannot run %s: %s\n", up->self_exe, strerror (errno));
    _exit (127);
}

//  Start a child (first start or restart). A failed fork counts as a crash: retried
//  after the backoff.
static void
s_start (const s_up_t *up, s_child_t *child, int64_t now)
{
    child->restart_at_ms = 0;
    child->pid = s_spawn (up, child);
    child->started_ms = now;
    if (child->pid < 0) {
        fprintf (stderr, "airlock up: cannot start %s: %s; retry in %.1f s\n", child->name, strerror (errno),
                 (double) child->backoff_ms / 1000.0);
        child->pid = 0;
        child->restart_at_ms = now + child->backoff_ms;
        child->backoff_ms = child->backoff_ms * 2 > S_BACKOFF_MAX_MS? S_BACKOFF_MAX_MS: child->backoff_ms * 2;
        return;
    }
    s_pidfile_write (up, child->name, child->pid);
    if (child->restarts == 0)
        fprintf (stderr, "airlock up: %-15s pid %d\n", child->name, (int) child->pid);
    else
        fprintf (stderr, "airlock up: %s restarted (pid %d, restart %u)\n", child->name, (int) child->pid,
                 child->restarts);
}

static void
s_describe (int status, char *text, size_t size)
{
    if (WIFSIGNALED (status))
        snprintf (text, size, "killed by signal %d", WTERMSIG (status));
    else
        snprintf (text, size, "exited with %d", WEXITSTATUS (status));
}

//  Stop children [from, to) together: SIGTERM to each, wait for all of them for the
//  grace period, SIGKILL whoever is left.
static void
s_stop_children (const s_up_t *up, s_child_t *children, int from, int to)
{
    for (int i = from; i < to; i++) {
        children [i].restart_at_ms = 0;
        if (children [i].pid > 0)
            kill (children [i].pid, SIGTERM);
    }
    int64_t deadline = s_mono_ms () + S_STOP_GRACE_MS;
    while (true) {
        bool running = false;
        for (int i = from; i < to; i++) {
            s_child_t *child = &children [i];
            int status = 0;
            if (child->pid > 0 && waitpid (child->pid, &status, WNOHANG) == child->pid) {
                char how [64];
                s_describe (status, how, sizeof how);
                fprintf (stderr, "airlock up: %s (pid %d) stopped: %s\n", child->name, (int) child->pid, how);
                s_pidfile_remove (up, child->name);
                child->pid = 0;
            }
            running |= child->pid > 0;
        }
        if (!running)
            return;
        if (s_mono_ms () >= deadline)
            break;
        s_sleep_ms (20);
    }
    for (int i = from; i < to; i++) {
        s_child_t *child = &children [i];
        if (child->pid <= 0)
            continue;
        kill (child->pid, SIGKILL);
        waitpid (child->pid, NULL, 0);
        fprintf (stderr, "airlock up: %s (pid %d) did not stop within %d s: killed\n", child->name,
                 (int) child->pid, S_STOP_GRACE_MS / 1000);
        s_pidfile_remove (up, child->name);
        child->pid = 0;
    }
}

//  Why a child stopped, as its log says: "airlock up: NAME last said: LINE".
static void
s_report_last_error (const s_up_t *up, const s_child_t *child)
{
    char path [S_PATH_MAX + 64], line [512];
    snprintf (path, sizeof path, "%s/%s.log", up->logs, child->name);
    if (al_cli_log_last_error (path, line, sizeof line))
        fprintf (stderr, "airlock up: %s last said: %s (%s)\n", child->name, line, path);
}

//  mkdir that accepts an existing directory.
static int
s_make_dir (const char *path)
{
    struct stat info;
    if (mkdir (path, 0700) == 0 || (errno == EEXIST && stat (path, &info) == 0 && S_ISDIR (info.st_mode)))
        return 0;
    fprintf (stderr, "airlock up: cannot make %s: %s\n", path, errno == EEXIST? "not a directory": strerror (errno));
    return -1;
}

//  Lock STATE_DIR/run/up.lock for this process's life and write our pid in it. Returns
//  the open descriptor, -1 on an I/O error, -2 if another `airlock up` holds it. The file
//  is never removed: removing it would let two processes lock two different files.
static int
s_lock (const s_up_t *up)
{
    char path [S_PATH_MAX + 16];
    snprintf (path, sizeof path, "%s/up.lock", up->run);
    int fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf (stderr, "airlock up: cannot open %s: %s\n", path, strerror (errno));
        return -1;
    }
    if (flock (fd, LOCK_EX | LOCK_NB) != 0) {
        int error = errno;
        char text [32] = "";
        ssize_t length = read (fd, text, sizeof text - 1);
        text [length > 0? length: 0] = 0;
        close (fd);
        if (error == EWOULDBLOCK) {
            fprintf (stderr, "airlock up: another airlock up (pid %d) already runs on this state directory "
                     "(%s is locked)\n", atoi (text), path);
            return -2;
        }
        fprintf (stderr, "airlock up: cannot lock %s: %s\n", path, strerror (error));
        return -1;
    }
    char text [32];
    int length = snprintf (text, sizeof text, "%d\n", (int) getpid ());
    if (ftruncate (fd, 0) != 0 || write (fd, text, (size_t) length) != length) {
        fprintf (stderr, "airlock up: cannot write %s: %s\n", path, strerror (errno));
        close (fd);
        return -1;
    }
    return fd;
}

int
al_cmd_up (int argc, char **argv)
{
    if (al_cli_wants_help (argc, argv)) {
        s_usage (stdout);
        return AL_EXIT_OK;
    }
    s_up_t up = { .interval = NULL };
    const char *config_option = NULL, *state_option = NULL;
    for (int index = 1; index < argc; index++) {
        const char *option = argv [index];
        int taken = al_cli_config_option ("up", argc, argv, &index, &config_option, &state_option);
        if (taken < 0) {
            s_usage (stderr);
            return AL_EXIT_USAGE;
        }
        if (taken)
            continue;
        if (strcmp (option, "--interval-ms") == 0) {
            if (index + 1 >= argc) {
                fprintf (stderr, "airlock up: %s needs a value\n\n", option);
                s_usage (stderr);
                return AL_EXIT_USAGE;
            }
            up.interval = argv [++index];
            char *end = NULL;
            long value = strtol (up.interval, &end, 10);
            if (!*up.interval || !end || *end || value < 50 || value > 60000) {
                fprintf (stderr, "airlock up: --interval-ms: '%s' is not a number of ms (50..60000)\n", up.interval);
                return AL_EXIT_USAGE;
            }
        }
        else {
            fprintf (stderr, "airlock up: unexpected argument '%s'\n\n", option);
            s_usage (stderr);
            return AL_EXIT_USAGE;
        }
    }
    if (state_option) {
        struct stat info;
        bool found = stat (state_option, &info) == 0;
        if (!found || !S_ISDIR (info.st_mode)) {
            fprintf (stderr, "airlock up: --state %s: %s (`airlock init %s` makes a state directory)\n",
                     state_option, found? "not a directory": strerror (errno), state_option);
            return AL_EXIT_USAGE;
        }
    }
    char state_config [S_PATH_MAX];
    up.config_path = al_cli_config_path (config_option, state_option, state_config, sizeof state_config);
    if (!up.config_path) {
        fprintf (stderr, "airlock up: --state: path too long\n");
        return AL_EXIT_USAGE;
    }
    //  `airlock check` first: an invalid file would only make an agent crash-loop, the
    //  cause in its log. Every error is listed here instead, and nothing starts.
    json_t *problems = json_array ();
    int problem_count = al_cli_check_state (up.config_path, problems);
    size_t problem_index;
    json_t *problem;
    json_array_foreach (problems, problem_index, problem)
        fprintf (stderr, "%s\n", json_string_value (problem));
    json_decref (problems);
    if (problem_count != 0) {
        if (problem_count > 0)
            fprintf (stderr, "airlock up: %s: %d error%s (`airlock check` lists them too); nothing started\n",
                     up.config_path, problem_count, problem_count == 1? "": "s");
        return problem_count < 0? AL_EXIT_USAGE: AL_EXIT_BAD;
    }
    char error [1024];
    al_config_t *config = al_config_load (up.config_path, error, sizeof error);
    if (!config) {
        fprintf (stderr, "airlock up: %s\n", error);
        return AL_EXIT_USAGE;
    }
    const char *state_dir = al_config_state_dir (config);
    int logs_length = snprintf (up.logs, sizeof up.logs, "%s/logs", state_dir);
    int run_length = snprintf (up.run, sizeof up.run, "%s/run", state_dir);
    if (logs_length < 0 || (size_t) logs_length >= sizeof up.logs
    ||  run_length < 0 || (size_t) run_length >= sizeof up.run) {
        fprintf (stderr, "airlock up: state directory path too long: %s\n", state_dir);
        goto usage;
    }
    if (s_make_dir (up.logs) != 0 || s_make_dir (up.run) != 0)
        goto usage;
    ssize_t length = readlink ("/proc/self/exe", up.self_exe, sizeof up.self_exe - 1);
    if (length <= 0 || (size_t) length >= sizeof up.self_exe - 1) {
        fprintf (stderr, "airlock up: cannot find its own executable: %s\n", length < 0? strerror (errno): "path too long");
        goto usage;
    }
    up.self_exe [length] = 0;
    int lock = s_lock (&up);
    if (lock < 0) {
        al_config_destroy (&config);
        return lock == -2? AL_EXIT_BAD: AL_EXIT_USAGE;
    }
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
    sigemptyset (&action.sa_mask);
    sigaction (SIGINT, &action, NULL);
    sigaction (SIGTERM, &action, NULL);
    sigaction (SIGHUP, &action, NULL);
    fprintf (stderr, "airlock up: starting the broker and 5 agents (logs in %s, pids in %s)\n", up.logs, up.run);
    for (int i = 0; i < S_CHILDREN && !s_stop; i++) {
        children [i].backoff_ms = S_BACKOFF_MIN_MS;
        s_start (&up, &children [i], s_mono_ms ());
        if (i == 0)
            s_sleep_ms (300);       // the broker binds first
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
                char how [64];
                s_describe (status, how, sizeof how);
                fprintf (stderr, "airlock up: %s (pid %d) %s after %.1f s; restart in %.1f s\n", child->name,
                         (int) child->pid, how, (double) ran / 1000.0, (double) child->backoff_ms / 1000.0);
                s_report_last_error (&up, child);
                s_pidfile_remove (&up, child->name);
                child->pid = 0;
                child->restart_at_ms = now + child->backoff_ms;
                child->backoff_ms = child->backoff_ms * 2 > S_BACKOFF_MAX_MS? S_BACKOFF_MAX_MS: child->backoff_ms * 2;
            }
            if (child->pid == 0 && child->restart_at_ms && now >= child->restart_at_ms) {
                child->restarts++;
                s_start (&up, child, now);
            }
        }
        s_sleep_ms (100);
    }
    fprintf (stderr, "airlock up: stopping the agents\n");
    s_stop_children (&up, children, 1, S_CHILDREN);
    fprintf (stderr, "airlock up: stopping the broker\n");
    s_stop_children (&up, children, 0, 1);
    fprintf (stderr, "airlock up: stopped\n");
    close (lock);
    al_config_destroy (&config);
    return AL_EXIT_OK;

usage:
    al_config_destroy (&config);
    return AL_EXIT_USAGE;
}
