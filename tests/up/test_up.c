/*  test_up.c: `airlock up` supervising the broker and the five agents, real processes.

    Each test makes a state directory with `airlock init` (plus a services.yaml the agents
    accept) and runs `airlock up --state DIR` as a child of this process, in its own process
    group as a shell would run it, stderr into DIR/up.out. The pids of the supervised
    processes come from what `airlock up` publishes: DIR/run/<name>.pid while each runs.
    This process is a child subreaper (PR_SET_CHILD_SUBREAPER), so anything `airlock up`
    leaves behind becomes our child: once `airlock up` is reaped, waitpid(-1) answering
    ECHILD proves that no broker or agent survived it. Shown here:
      - up starts the broker and the five agents: all five roles alive in `airlock status
        --json`, one log per process in DIR/logs/<name>.log, each child its own process
        group; SIGTERM stops them all (agents first, each exiting 0) and up exits 0;
      - an agent killed with SIGKILL comes back (new pid, registered again), the exit and
        the restart are reported, and killed again and again its logged backoff doubles
        (0.5, 1, 2, 4 s);
      - the broker killed with SIGKILL comes back and the agents, not restarted, register
        with it again;
      - Ctrl-C (SIGINT to up's process group) is a clean shutdown too;
      - up killed with SIGKILL leaves no child behind (each gets SIGTERM from the kernel);
      - a second `airlock up` on the same state directory is refused and the first keeps
        working;
      - bad input: a missing state directory (exit 2, the path named), bad options (2),
        --help (0);
      - `airlock check` exits 0 on a valid state and 1 with every error (policy, services,
        notifications, keys) on a broken one; up runs it first and starts nothing;
      - an agent that keeps dying: up's output and `airlock status` show its log's last
        error line.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define S_NAMES 6               // the broker, then the five agents
#define S_SEEN_MAX 64
#define S_START_TIMEOUT_MS 30000
#define S_STOP_TIMEOUT_MS 25000 // up's own grace is 10 s for the agents, then 10 s for the broker

static const char *s_names [S_NAMES] = { "broker", "orchestrator", "qa", "deploy-manager", "monitor", "notifier" };

typedef struct {
    char dir [256];
    char airlock [400];
    pid_t up;                           // `airlock up`, 0 once reaped
    pid_t seen [S_SEEN_MAX];            // every supervised pid seen, checked gone at the end
    size_t seen_count;
} s_fixture_t;

static int64_t
s_wall_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
s_sleep_ms (long ms)
{
    struct timespec pause = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep (&pause, &pause) != 0 && errno == EINTR)
        ;
}

static char *
s_read (const char *path)
{
    FILE *file = fopen (path, "r");
    if (!file)
        return NULL;
    size_t size = 0, capacity = 4096;
    char *text = malloc (capacity);
    assert_non_null (text);
    size_t got;
    while ((got = fread (text + size, 1, capacity - size - 1, file)) > 0) {
        size += got;
        if (capacity - size - 1 == 0) {
            capacity *= 2;
            text = realloc (text, capacity);
            assert_non_null (text);
        }
    }
    fclose (file);
    text [size] = 0;
    return text;
}

static char *
s_file (s_fixture_t *f, const char *relative)
{
    char path [512];
    snprintf (path, sizeof path, "%s/%s", f->dir, relative);
    return s_read (path);
}

static int
s_count (const char *text, const char *needle)
{
    int count = 0;
    for (const char *at = text? strstr (text, needle): NULL; at; at = strstr (at + 1, needle))
        count++;
    return count;
}

//  The last line of text that starts with needle, or NULL.
static const char *
s_last_line (const char *text, const char *needle)
{
    const char *line = NULL;
    for (const char *at = strstr (text, needle); at; at = strstr (at + 1, needle))
        if (at == text || at [-1] == '\n')
            line = at;
    return line;
}

//  Does the line at line contain what (before its end)?
static bool
s_line_has (const char *line, const char *what)
{
    const char *end = strchr (line, '\n');
    const char *at = strstr (line, what);
    return at && (!end || at < end);
}

//  Run `airlock ARGUMENTS`, output (both streams) into DIR/NAME.out; returns the exit code.
static int
s_run (s_fixture_t *f, const char *name, const char *arguments)
{
    char command [4096];
    snprintf (command, sizeof command, "'%s' %s > '%s/%s.out' 2>&1", f->airlock, arguments, f->dir, name);
    int rc = system (command);
    return WIFEXITED (rc)? WEXITSTATUS (rc): -1;
}

static void
s_dump (s_fixture_t *f)
{
    char *text = s_file (f, "up.out");
    fprintf (stderr, "---- up.out\n%s\n", text? text: "(none)");
    free (text);
    for (int i = 0; i < S_NAMES; i++) {
        char relative [64];
        snprintf (relative, sizeof relative, "logs/%s.log", s_names [i]);
        text = s_file (f, relative);
        size_t length = text? strlen (text): 0;
        fprintf (stderr, "---- %s (last 1500 bytes)\n%s\n", relative, text? text + (length > 1500? length - 1500: 0): "");
        free (text);
    }
}

static void
s_remember (s_fixture_t *f, pid_t pid)
{
    for (size_t i = 0; i < f->seen_count; i++)
        if (f->seen [i] == pid)
            return;
    assert_true (f->seen_count < S_SEEN_MAX);
    f->seen [f->seen_count++] = pid;
}

//  The pid in DIR/run/NAME.pid, 0 if there is none.
static pid_t
s_pid (s_fixture_t *f, const char *name)
{
    char relative [64];
    snprintf (relative, sizeof relative, "run/%s.pid", name);
    char *text = s_file (f, relative);
    pid_t pid = text? (pid_t) atoi (text): 0;
    free (text);
    if (pid > 0)
        s_remember (f, pid);
    return pid;
}

//  /proc/PID/stat: the parent and the process group; false if there is no such process.
static bool
s_proc (pid_t pid, pid_t *parent, pid_t *group, char *state)
{
    char path [64];
    snprintf (path, sizeof path, "/proc/%d/stat", (int) pid);
    char *text = s_read (path);
    if (!text)
        return false;
    const char *close = strrchr (text, ')');     // the command name may hold anything
    int ppid = 0, pgrp = 0;
    char st = '?';
    bool parsed = close && sscanf (close + 1, " %c %d %d", &st, &ppid, &pgrp) == 3;
    free (text);
    if (parent)
        *parent = ppid;
    if (group)
        *group = pgrp;
    if (state)
        *state = st;
    return parsed;
}

//  The children of parent, from /proc.
static size_t
s_children_of (pid_t parent, pid_t *children, size_t max)
{
    DIR *proc = opendir ("/proc");
    assert_non_null (proc);
    size_t count = 0;
    struct dirent *entry;
    while ((entry = readdir (proc))) {
        pid_t pid = (pid_t) atoi (entry->d_name);
        pid_t ppid = 0;
        if (pid > 0 && s_proc (pid, &ppid, NULL, NULL) && ppid == parent && count < max)
            children [count++] = pid;
    }
    closedir (proc);
    return count;
}

//  Wait until DIR/run/NAME.pid names a process other than old; returns it.
static pid_t
s_wait_new_pid (s_fixture_t *f, const char *name, pid_t old)
{
    for (int waited = 0; waited < S_START_TIMEOUT_MS; waited += 50) {
        pid_t pid = s_pid (f, name);
        if (pid > 0 && pid != old)
            return pid;
        s_sleep_ms (50);
    }
    s_dump (f);
    fail_msg ("%s: no new pid after %d (still %d)", name, (int) old, (int) s_pid (f, name));
    return 0;
}

//  How many of the five agent roles `airlock status --json` shows alive with a heartbeat
//  at or after since_ms (broker's wall clock: the same host's); -1 if status failed.
static int
s_alive_since (s_fixture_t *f, int64_t since_ms)
{
    char arguments [512];
    snprintf (arguments, sizeof arguments, "status --json --timeout 2 --config '%s/airlock.yaml'", f->dir);
    if (s_run (f, "status", arguments) != 0)
        return -1;
    char *text = s_file (f, "status.out");
    json_t *root = text? json_loads (text, 0, NULL): NULL;
    free (text);
    int alive = 0;
    for (int i = 1; i < S_NAMES; i++) {
        size_t index;
        json_t *agent;
        bool found = false;
        json_array_foreach (json_object_get (root, "agents"), index, agent) {
            const char *role = json_string_value (json_object_get (agent, "role"));
            found |= role && strcmp (role, s_names [i]) == 0 && json_is_true (json_object_get (agent, "alive"))
                  && json_integer_value (json_object_get (agent, "last_heartbeat_ms")) >= since_ms;
        }
        alive += found;
    }
    json_decref (root);
    return alive;
}

static void
s_wait_alive (s_fixture_t *f, int64_t since_ms)
{
    int alive = -1;
    for (int waited = 0; waited < S_START_TIMEOUT_MS; waited += 200) {
        alive = s_alive_since (f, since_ms);
        if (alive == S_NAMES - 1)
            return;
        s_sleep_ms (200);
    }
    char *status = s_file (f, "status.out");
    fprintf (stderr, "---- status\n%s\n", status? status: "");
    free (status);
    s_dump (f);
    fail_msg ("%d of the 5 agents alive (heartbeat since %lld)", alive, (long long) since_ms);
}

//  Start `airlock up --state DIR --interval-ms 250 [extra]`, as its own process group.
static void
s_start_up (s_fixture_t *f)
{
    char out [400], state [300];
    snprintf (out, sizeof out, "%s/up.out", f->dir);
    snprintf (state, sizeof state, "%s", f->dir);
    f->up = fork ();
    assert_true (f->up >= 0);
    if (f->up == 0) {
        setpgid (0, 0);
        if (!freopen (out, "a", stderr) || !freopen (out, "a", stdout))
            _exit (126);
        execl (f->airlock, "airlock", "up", "--state", state, "--interval-ms", "250", (char *) NULL);
        _exit (127);
    }
    setpgid (f->up, f->up);
}

//  Wait for `airlock up` to exit; true with its status, false if it still runs after timeout_ms.
static bool
s_wait_up (s_fixture_t *f, int timeout_ms, int *status)
{
    for (int waited = 0; waited < timeout_ms; waited += 20) {
        pid_t pid = waitpid (f->up, status, WNOHANG);
        if (pid == f->up) {
            f->up = 0;
            return true;
        }
        s_sleep_ms (20);
    }
    return false;
}

//  Reap whatever was left to us; true once there is no child left at all (ECHILD).
static bool
s_reap_all (int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 20) {
        pid_t pid;
        while ((pid = waitpid (-1, NULL, WNOHANG)) > 0)
            ;
        if (pid < 0 && errno == ECHILD)
            return true;
        s_sleep_ms (20);
    }
    return false;
}

//  Every supervised pid ever seen is gone: not running, not a zombie.
static void
s_assert_all_gone (s_fixture_t *f)
{
    assert_true (f->seen_count >= S_NAMES);
    for (size_t i = 0; i < f->seen_count; i++) {
        errno = 0;
        if (kill (f->seen [i], 0) == 0 || errno != ESRCH)
            fail_msg ("pid %d is still there after airlock up stopped", (int) f->seen [i]);
    }
}

//  Send signum to up (or to its whole process group, as Ctrl-C at a terminal does) and
//  check a clean shutdown: exit 0, every child stopped by SIGTERM and exiting 0 (none
//  SIGKILLed), the agents before the broker, nothing left, no pid file left.
static void
s_stop_and_check (s_fixture_t *f, int signum, bool to_group)
{
    for (int i = 0; i < S_NAMES; i++)
        assert_true (s_pid (f, s_names [i]) > 0);
    assert_int_equal (kill (to_group? -f->up: f->up, signum), 0);
    int status = 0;
    if (!s_wait_up (f, S_STOP_TIMEOUT_MS, &status)) {
        s_dump (f);
        fail_msg ("airlock up still runs %d s after signal %d", S_STOP_TIMEOUT_MS / 1000, signum);
    }
    if (!WIFEXITED (status) || WEXITSTATUS (status) != 0) {
        s_dump (f);
        fail_msg ("airlock up: status 0x%x after signal %d, expected exit 0", status, signum);
    }
    //  up reaped its own children: nothing was handed over to us.
    errno = 0;
    assert_int_equal (waitpid (-1, NULL, WNOHANG), -1);
    assert_int_equal (errno, ECHILD);
    s_assert_all_gone (f);
    char *out = s_file (f, "up.out");
    assert_non_null (out);
    const char *stopped [S_NAMES];
    for (int i = 0; i < S_NAMES; i++) {
        char relative [64], needle [128];
        snprintf (relative, sizeof relative, "run/%s.pid", s_names [i]);
        char *left = s_file (f, relative);
        if (left)
            fail_msg ("%s left behind (%s)", relative, left);
        //  The last line about this child is its stop, by SIGTERM, exiting 0.
        snprintf (needle, sizeof needle, "airlock up: %s (pid ", s_names [i]);
        stopped [i] = s_last_line (out, needle);
        if (!stopped [i] || !s_line_has (stopped [i], "stopped: exited with 0"))
            fail_msg ("%s was not stopped cleanly:\n%s", s_names [i], out);
    }
    //  The agents stop before the broker.
    for (int i = 1; i < S_NAMES; i++)
        if (stopped [i] > stopped [0])
            fail_msg ("%s stopped after the broker:\n%s", s_names [i], out);
    assert_non_null (strstr (out, "airlock up: stopped"));
    free (out);
}

static int
s_setup (void **state)
{
    s_fixture_t *f = calloc (1, sizeof *f);
    assert_non_null (f);
    snprintf (f->dir, sizeof f->dir, "/tmp/al-up-XXXXXX");
    assert_non_null (mkdtemp (f->dir));
    snprintf (f->airlock, sizeof f->airlock, "%s/airlock", getenv ("AIRLOCK_BINARY_DIR"));
    char arguments [400];
    snprintf (arguments, sizeof arguments, "init '%s'", f->dir);
    assert_int_equal (s_run (f, "init", arguments), 0);
    char path [400];
    snprintf (path, sizeof path, "%s/services.yaml", f->dir);
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fprintf (file, "version: 1\nservices:\n  demo:\n    driver: process\n    instances: 1\n"
                   "    command: [\"/bin/true\"]\n");
    fclose (file);
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    s_fixture_t *f = *state;
    if (f->up > 0) {
        //  A failed test: up dies, and its children with it (they get SIGTERM); whatever
        //  is left is SIGKILLed and reaped here.
        kill (f->up, SIGKILL);
        waitpid (f->up, NULL, 0);
        f->up = 0;
    }
    if (!s_reap_all (5000)) {
        pid_t children [64];
        size_t count = s_children_of (getpid (), children, 64);
        for (size_t i = 0; i < count; i++)
            kill (children [i], SIGKILL);
        s_reap_all (5000);
    }
    char command [400];
    snprintf (command, sizeof command, "rm -rf '%s'", f->dir);
    if (system (command) != 0)
        fprintf (stderr, "could not remove %s\n", f->dir);
    free (f);
    return 0;
}

//  up brings up the broker and the five agents, each logging into its own file, each in
//  its own process group; SIGTERM stops all of them.
static void
test_up_starts_everyone_and_sigterm_stops_them (void **state)
{
    s_fixture_t *f = *state;
    s_start_up (f);
    s_wait_alive (f, 0);
    //  up's children are exactly the six processes of the pid files.
    pid_t pids [S_NAMES], children [16];
    size_t count = s_children_of (f->up, children, 16);
    assert_int_equal (count, S_NAMES);
    for (int i = 0; i < S_NAMES; i++) {
        pids [i] = s_pid (f, s_names [i]);
        assert_true (pids [i] > 0);
        bool child = false;
        for (size_t c = 0; c < count; c++)
            child |= children [c] == pids [i];
        if (!child)
            fail_msg ("%s (pid %d) is not a child of airlock up (%d)", s_names [i], (int) pids [i], (int) f->up);
        pid_t parent = 0, group = 0;
        assert_true (s_proc (pids [i], &parent, &group, NULL));
        assert_int_equal (group, pids [i]);     // its own group: Ctrl-C reaches only up
        assert_int_not_equal (group, f->up);
    }
    //  One log per process, named after it, starting with up's line and then its own.
    for (int i = 0; i < S_NAMES; i++) {
        char relative [64], needle [128];
        snprintf (relative, sizeof relative, "logs/%s.log", s_names [i]);
        char *log = NULL;
        const char *own = i == 0? "airlock broker: listening on": NULL;
        char ready [64];
        snprintf (ready, sizeof ready, "%s: ready", s_names [i]);
        if (!own)
            own = ready;
        for (int waited = 0; waited < 10000; waited += 100) {
            free (log);
            log = s_file (f, relative);
            if (log && strstr (log, own))
                break;
            s_sleep_ms (100);
        }
        if (!log || !strstr (log, own))
            fail_msg ("%s has no '%s':\n%s", relative, own, log? log: "(missing)");
        snprintf (needle, sizeof needle, "airlock up: %s started (pid %d, restart 0)\n", s_names [i], (int) pids [i]);
        if (strncmp (log, needle, strlen (needle)) != 0)
            fail_msg ("%s does not start with '%s':\n%s", relative, needle, log);
        free (log);
    }
    //  Nothing else in logs/.
    DIR *logs = NULL;
    char path [400];
    snprintf (path, sizeof path, "%s/logs", f->dir);
    logs = opendir (path);
    assert_non_null (logs);
    int files = 0;
    struct dirent *entry;
    while ((entry = readdir (logs)))
        files += entry->d_name [0] != '.';
    closedir (logs);
    assert_int_equal (files, S_NAMES);
    //  up.lock names up.
    char *lock = s_file (f, "run/up.lock");
    assert_non_null (lock);
    assert_int_equal (atoi (lock), f->up);
    free (lock);
    s_stop_and_check (f, SIGTERM, false);
}

//  The delay D in up's report "NAME (pid PID) killed by signal 9 after T s; restart in D s", -1 if missing.
static double
s_logged_delay (const char *out, const char *name, pid_t pid)
{
    char needle [128];
    snprintf (needle, sizeof needle, "airlock up: %s (pid %d) killed by signal 9 after ", name, (int) pid);
    const char *line = s_last_line (out, needle);
    const char *restart = line? strstr (line, "; restart in "): NULL;
    double delay = -1;
    if (!restart || !s_line_has (line, "; restart in ") || sscanf (restart, "; restart in %lf s", &delay) != 1)
        return -1;
    return delay;
}

//  An agent killed with SIGKILL is restarted, again and again, with a growing backoff.
static void
test_up_restarts_a_crashed_agent_with_backoff (void **state)
{
    s_fixture_t *f = *state;
    s_start_up (f);
    s_wait_alive (f, 0);
    pid_t others [S_NAMES];
    for (int i = 0; i < S_NAMES; i++)
        others [i] = s_pid (f, s_names [i]);
    const int kills = 4;
    const double expected [] = { 0.5, 1.0, 2.0, 4.0 };
    pid_t killed [4];
    pid_t pid = s_pid (f, "qa");
    int64_t last_kill_ms = 0;
    for (int k = 0; k < kills; k++) {
        //  Kill it once it has started (its log shows it ready k+1 times).
        for (int waited = 0; waited < S_START_TIMEOUT_MS; waited += 50) {
            char *log = s_file (f, "logs/qa.log");
            int ready = s_count (log, "qa: ready");
            free (log);
            if (ready >= k + 1)
                break;
            s_sleep_ms (50);
        }
        killed [k] = pid;
        last_kill_ms = s_wall_ms ();
        assert_int_equal (kill (pid, SIGKILL), 0);
        pid = s_wait_new_pid (f, "qa", pid);
        pid_t parent = 0;
        assert_true (s_proc (pid, &parent, NULL, NULL));
        assert_int_equal (parent, f->up);
    }
    //  The last one registered again: qa heartbeats reach the broker after its kill.
    s_wait_alive (f, last_kill_ms + 1500);
    //  Each crash reported with the delay before the restart, doubling.
    char *out = s_file (f, "up.out");
    assert_non_null (out);
    for (int k = 0; k < kills; k++) {
        double delay = s_logged_delay (out, "qa", killed [k]);
        if (delay != expected [k])
            fail_msg ("kill %d of qa (pid %d): logged delay %.1f s, expected %.1f s:\n%s", k + 1, (int) killed [k],
                      delay, expected [k], out);
    }
    char needle [128];
    snprintf (needle, sizeof needle, "airlock up: qa restarted (pid %d, restart %d)\n", (int) pid, kills);
    if (!strstr (out, needle))
        fail_msg ("no '%s' in:\n%s", needle, out);
    free (out);
    //  qa's log tells each start apart.
    char *log = s_file (f, "logs/qa.log");
    snprintf (needle, sizeof needle, "airlock up: qa started (pid %d, restart %d)\n", (int) pid, kills);
    assert_non_null (strstr (log, needle));
    assert_int_equal (s_count (log, "airlock up: qa started"), kills + 1);
    free (log);
    //  Nobody else was touched.
    for (int i = 0; i < S_NAMES; i++)
        if (strcmp (s_names [i], "qa") != 0)
            assert_int_equal (s_pid (f, s_names [i]), others [i]);
    s_stop_and_check (f, SIGTERM, false);
}

//  The broker killed with SIGKILL is restarted; the agents stay and register with it again.
static void
test_up_restarts_a_crashed_broker (void **state)
{
    s_fixture_t *f = *state;
    s_start_up (f);
    s_wait_alive (f, 0);
    pid_t agents [S_NAMES];
    for (int i = 1; i < S_NAMES; i++)
        agents [i] = s_pid (f, s_names [i]);
    pid_t broker = s_pid (f, "broker");
    int64_t killed_ms = s_wall_ms ();
    assert_int_equal (kill (broker, SIGKILL), 0);
    pid_t again = s_wait_new_pid (f, "broker", broker);
    //  A new broker knows only the agents that registered with it: all five, heartbeating.
    s_wait_alive (f, killed_ms);
    for (int i = 1; i < S_NAMES; i++)
        assert_int_equal (s_pid (f, s_names [i]), agents [i]);
    char *out = s_file (f, "up.out");
    assert_true (s_logged_delay (out, "broker", broker) == 0.5);
    char needle [128];
    snprintf (needle, sizeof needle, "airlock up: broker restarted (pid %d, restart 1)\n", (int) again);
    if (!strstr (out, needle))
        fail_msg ("no '%s' in:\n%s", needle, out);
    free (out);
    char *log = s_file (f, "logs/broker.log");
    assert_int_equal (s_count (log, "airlock broker: listening on"), 2);
    free (log);
    s_stop_and_check (f, SIGTERM, false);
}

//  Ctrl-C at a terminal: SIGINT to up's whole process group.
static void
test_up_ctrl_c_stops_everyone (void **state)
{
    s_fixture_t *f = *state;
    s_start_up (f);
    s_wait_alive (f, 0);
    s_stop_and_check (f, SIGINT, true);
}

//  up killed with SIGKILL: its children do not outlive it.
static void
test_up_killed_leaves_no_orphans (void **state)
{
    s_fixture_t *f = *state;
    s_start_up (f);
    s_wait_alive (f, 0);
    for (int i = 0; i < S_NAMES; i++)
        assert_true (s_pid (f, s_names [i]) > 0);
    assert_int_equal (kill (f->up, SIGKILL), 0);
    assert_int_equal (waitpid (f->up, NULL, 0), f->up);
    f->up = 0;
    //  They are ours now (subreaper): each exits on its own, and we reap it.
    if (!s_reap_all (15000)) {
        pid_t children [16];
        size_t count = s_children_of (getpid (), children, 16);
        fail_msg ("%zu processes outlived airlock up (first: %d)", count, count? (int) children [0]: 0);
    }
    s_assert_all_gone (f);
}

//  A second up on the same state directory is refused; the first keeps serving.
static void
test_up_second_instance_refused (void **state)
{
    s_fixture_t *f = *state;
    s_start_up (f);
    s_wait_alive (f, 0);
    pid_t broker = s_pid (f, "broker");
    //  The second one runs as our child, so that if it is not refused it is stopped
    //  (and the test fails) rather than running on.
    char out [400];
    snprintf (out, sizeof out, "%s/second.out", f->dir);
    int64_t refused_ms = s_wall_ms ();
    pid_t second = fork ();
    assert_true (second >= 0);
    if (second == 0) {
        if (!freopen (out, "w", stderr))
            _exit (126);
        execl (f->airlock, "airlock", "up", "--state", f->dir, (char *) NULL);
        _exit (127);
    }
    int status = 0;
    pid_t done = 0;
    for (int waited = 0; waited < 10000 && done == 0; waited += 20) {
        done = waitpid (second, &status, WNOHANG);
        if (done == 0)
            s_sleep_ms (20);
    }
    if (done != second) {
        kill (second, SIGTERM);
        waitpid (second, NULL, 0);
        s_dump (f);
        fail_msg ("a second airlock up on the same state directory was not refused");
    }
    assert_true (WIFEXITED (status));
    assert_int_equal (WEXITSTATUS (status), 1);
    char *text = s_file (f, "second.out");
    char needle [64];
    snprintf (needle, sizeof needle, "(pid %d) already runs", (int) f->up);
    if (!text || !strstr (text, needle))
        fail_msg ("second up said:\n%s", text? text: "");
    free (text);
    //  It started nothing of its own (and left nothing to reap), and the first broker still
    //  answers, with every agent heartbeating to it.
    errno = 0;
    assert_int_equal (waitpid (-1, NULL, WNOHANG), 0);       // only up is our child
    pid_t children [16];
    assert_int_equal (s_children_of (getpid (), children, 16), 1);
    s_wait_alive (f, refused_ms + 1000);
    assert_int_equal (s_pid (f, "broker"), broker);

    //  A bare `airlock broker` on the same audit log is refused too (its lock), naming
    //  the broker that holds it; `timeout` stops it if it is not, and the test fails.
    char command [2048];
    snprintf (command, sizeof command, "timeout 10 '%s' broker --config '%s/airlock.yaml' 2> '%s/bare.out'",
              f->airlock, f->dir, f->dir);
    int rc = system (command);
    assert_true (WIFEXITED (rc));
    assert_int_equal (WEXITSTATUS (rc), 2);
    text = s_file (f, "bare.out");
    snprintf (needle, sizeof needle, "another broker (pid %d) already serves", (int) broker);
    if (!text || !strstr (text, needle))
        fail_msg ("bare broker said:\n%s", text? text: "");
    free (text);
    s_wait_alive (f, s_wall_ms () + 500);
    s_stop_and_check (f, SIGTERM, false);
}

static void
test_up_bad_input (void **state)
{
    s_fixture_t *f = *state;
    assert_int_equal (s_run (f, "missing", "up --state /nonexistent/al-up-state"), 2);
    char *text = s_file (f, "missing.out");
    assert_non_null (strstr (text, "/nonexistent/al-up-state"));
    free (text);
    //  A directory without airlock.yaml: the file is named.
    char arguments [600];
    snprintf (arguments, sizeof arguments, "up --state '%s/logs-not-a-state'", f->dir);
    char path [400];
    snprintf (path, sizeof path, "%s/logs-not-a-state", f->dir);
    assert_int_equal (mkdir (path, 0700), 0);
    assert_int_equal (s_run (f, "empty", arguments), 2);
    text = s_file (f, "empty.out");
    assert_non_null (strstr (text, "logs-not-a-state/airlock.yaml"));
    free (text);
    snprintf (arguments, sizeof arguments, "up --state '%s' --interval-ms 10", f->dir);
    assert_int_equal (s_run (f, "interval", arguments), 2);
    text = s_file (f, "interval.out");
    assert_non_null (strstr (text, "--interval-ms"));
    free (text);
    snprintf (arguments, sizeof arguments, "up --state '%s' --bogus", f->dir);
    assert_int_equal (s_run (f, "bogus", arguments), 2);
    assert_int_equal (s_run (f, "novalue", "up --state"), 2);
    text = s_file (f, "novalue.out");
    assert_non_null (strstr (text, "--state needs a value"));
    free (text);
    //  -V and --version print the version, and nothing else.
    assert_int_equal (s_run (f, "version", "-V"), 0);
    text = s_file (f, "version.out");
    unsigned major = 0, minor = 0, patch = 0;
    if (sscanf (text, "airlock %u.%u.%u\n", &major, &minor, &patch) != 3 || strchr (text, '\n') [1])
        fail_msg ("-V printed '%s'", text);
    free (text);
    assert_int_equal (s_run (f, "long-version", "--version"), 0);
    text = s_file (f, "long-version.out");
    assert_non_null (strstr (text, "airlock "));
    free (text);
    assert_int_equal (s_run (f, "help", "up --help"), 0);
    text = s_file (f, "help.out");
    assert_non_null (strstr (text, "usage: airlock up"));
    assert_non_null (strstr (text, "run/<name>.pid"));
    free (text);
    //  None of them started anything or made the state's logs and run directories.
    errno = 0;
    assert_int_equal (waitpid (-1, NULL, WNOHANG), -1);
    assert_int_equal (errno, ECHILD);
    struct stat info;
    snprintf (path, sizeof path, "%s/logs", f->dir);
    assert_int_not_equal (stat (path, &info), 0);
    snprintf (path, sizeof path, "%s/run", f->dir);
    assert_int_not_equal (stat (path, &info), 0);
}

//  Write text to DIR/relative (replacing it).
static void
s_write (s_fixture_t *f, const char *relative, const char *text)
{
    char path [512];
    snprintf (path, sizeof path, "%s/%s", f->dir, relative);
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fputs (text, file);
    fclose (file);
}

//  Append text to DIR/relative.
static void
s_append (s_fixture_t *f, const char *relative, const char *text)
{
    char path [512];
    snprintf (path, sizeof path, "%s/%s", f->dir, relative);
    FILE *file = fopen (path, "a");
    assert_non_null (file);
    fputs (text, file);
    fclose (file);
}

//  Break four files at once: a policy file, services.yaml, notifications.yaml and a key.
static void
s_break_state (s_fixture_t *f)
{
    s_append (f, "policy/roles.yaml", "bogus_key: 1\n");
    s_write (f, "services.yaml", "version: 1\nservices:\n  demo:\n    driver: bogus\n    instances: 1\n"
                                 "    command: [\"/bin/true\"]\n");
    s_write (f, "notifications.yaml", "version: 1\nendpoints:\n  - name: ops\n    kind: pigeon\n");
    char path [512];
    snprintf (path, sizeof path, "%s/keys/qa.cert_secret", f->dir);
    assert_int_equal (unlink (path), 0);
}

//  `airlock check` on a valid state: exit 0; on a broken one: exit 1 with every error,
//  each naming its file (and line:column where the loader knows it), also as JSON.
static void
test_check_lists_every_error (void **state)
{
    s_fixture_t *f = *state;
    char arguments [1200];
    snprintf (arguments, sizeof arguments, "check --state '%s'", f->dir);
    assert_int_equal (s_run (f, "check-ok", arguments), 0);
    char *text = s_file (f, "check-ok.out");
    assert_non_null (strstr (text, "valid"));
    free (text);
    //  $AIRLOCK_CONFIG is the default when no option names the state.
    snprintf (arguments, sizeof arguments, "env AIRLOCK_CONFIG='%s/airlock.yaml' '%s' check", f->dir, f->airlock);
    char command [2000];
    snprintf (command, sizeof command, "cd /tmp && %s > '%s/check-env.out' 2>&1", arguments, f->dir);
    int rc = system (command);
    assert_true (WIFEXITED (rc));
    assert_int_equal (WEXITSTATUS (rc), 0);
    s_break_state (f);
    snprintf (arguments, sizeof arguments, "check --state '%s'", f->dir);
    assert_int_equal (s_run (f, "check-bad", arguments), 1);
    text = s_file (f, "check-bad.out");
    char needle [600];
    snprintf (needle, sizeof needle, "%s/policy/roles.yaml:", f->dir);
    if (!strstr (text, needle) || !strstr (text, "unknown key 'bogus_key'")
    ||  !strstr (text, "services.yaml:4:") || !strstr (text, "unknown driver 'bogus'")
    ||  !strstr (text, "notifications.yaml:4:") || !strstr (text, "pigeon")
    ||  !strstr (text, "keys/qa.cert_secret: No such file")
    ||  !strstr (text, "missing key 'url'") || !strstr (text, "5 errors"))
        fail_msg ("check did not list every error:\n%s", text);
    free (text);
    snprintf (arguments, sizeof arguments, "check --state '%s' --json", f->dir);
    assert_int_equal (s_run (f, "check-json", arguments), 1);
    text = s_file (f, "check-json.out");
    json_error_t error;
    json_t *root = json_loads (text, 0, &error);
    if (!root)
        fail_msg ("not JSON (%s):\n%s", error.text, text);
    assert_true (json_is_false (json_object_get (root, "ok")));
    assert_int_equal (json_array_size (json_object_get (root, "errors")), 5);
    json_decref (root);
    free (text);
    //  No airlock.yaml at all: exit 2, the file named.
    assert_int_equal (s_run (f, "check-none", "check --config /nonexistent/al-check/airlock.yaml"), 2);
    text = s_file (f, "check-none.out");
    assert_non_null (strstr (text, "/nonexistent/al-check/airlock.yaml: No such file"));
    free (text);
    assert_int_equal (s_run (f, "check-usage", "check --bogus"), 2);
}

//  up runs the same check first: on a broken state it lists every error, exits 1 and
//  starts nothing (no logs, no pid files, no child).
static void
test_up_refuses_an_invalid_state (void **state)
{
    s_fixture_t *f = *state;
    s_break_state (f);
    char arguments [600];
    snprintf (arguments, sizeof arguments, "up --state '%s'", f->dir);
    assert_int_equal (s_run (f, "up-bad", arguments), 1);
    char *text = s_file (f, "up-bad.out");
    if (!strstr (text, "unknown key 'bogus_key'") || !strstr (text, "unknown driver 'bogus'")
    ||  !strstr (text, "pigeon") || !strstr (text, "keys/qa.cert_secret") || !strstr (text, "nothing started"))
        fail_msg ("up did not list every error:\n%s", text);
    free (text);
    errno = 0;
    assert_int_equal (waitpid (-1, NULL, WNOHANG), -1);
    assert_int_equal (errno, ECHILD);
    struct stat info;
    char path [400];
    snprintf (path, sizeof path, "%s/logs", f->dir);
    assert_int_not_equal (stat (path, &info), 0);
    snprintf (path, sizeof path, "%s/run", f->dir);
    assert_int_not_equal (stat (path, &info), 0);
}

//  An agent that keeps dying for a reason the check cannot see (here the notifier's
//  directory is a file): up's own output and `airlock status` show its log's last error.
static void
test_up_and_status_show_why_an_agent_dies (void **state)
{
    s_fixture_t *f = *state;
    s_write (f, "notifier", "not a directory\n");
    s_start_up (f);
    char *out = NULL;
    for (int waited = 0; waited < S_START_TIMEOUT_MS; waited += 200) {
        free (out);
        out = s_file (f, "up.out");
        if (out && strstr (out, "airlock up: notifier last said: "))
            break;
        s_sleep_ms (200);
    }
    const char *line = out? s_last_line (out, "airlock up: notifier last said: "): NULL;
    if (!line || !s_line_has (line, "notifier/lock") || !s_line_has (line, "Not a directory")
    ||  !s_line_has (line, "logs/notifier.log"))
        fail_msg ("up did not say why the notifier died:\n%s", out? out: "");
    free (out);
    //  status (the broker answers) lists the notifier as not connected, with that line.
    char arguments [600];
    snprintf (arguments, sizeof arguments, "status --state '%s' --json", f->dir);
    json_t *entry = NULL;
    char *text = NULL;
    for (int waited = 0; waited < S_START_TIMEOUT_MS && !entry; waited += 300) {
        free (text);
        text = NULL;
        if (s_run (f, "status", arguments) == 0) {
            text = s_file (f, "status.out");
            json_t *root = text? json_loads (text, 0, NULL): NULL;
            json_t *silent = json_object_get (root, "not_connected");
            for (size_t i = 0; i < json_array_size (silent); i++)
                if (strcmp (json_string_value (json_object_get (json_array_get (silent, i), "agent")), "notifier") == 0)
                    entry = json_incref (json_array_get (silent, i));
            json_decref (root);
        }
        if (!entry)
            s_sleep_ms (300);
    }
    if (!entry)
        fail_msg ("status never listed the notifier as not connected:\n%s", text? text: "");
    free (text);
    assert_non_null (strstr (json_string_value (json_object_get (entry, "last_line")), "Not a directory"));
    json_decref (entry);
    snprintf (arguments, sizeof arguments, "status --state '%s'", f->dir);
    assert_int_equal (s_run (f, "status-text", arguments), 0);
    text = s_file (f, "status-text.out");
    if (!strstr (text, "not connected") || !strstr (text, "Not a directory"))
        fail_msg ("status text:\n%s", text);
    free (text);
    assert_int_equal (kill (f->up, SIGTERM), 0);
    int status = 0;
    assert_true (s_wait_up (f, S_STOP_TIMEOUT_MS, &status));
    assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 0);
}

//  Run `cd DIR && airlock ARGUMENTS` (a relative path in them is relative to DIR);
//  output into DIR/NAME.out; the exit code.
static int
s_run_in_dir (s_fixture_t *f, const char *name, const char *arguments)
{
    char command [4096];
    snprintf (command, sizeof command, "cd '%s' && '%s' %s > '%s/%s.out' 2>&1", f->dir, f->airlock, arguments,
              f->dir, name);
    int rc = system (command);
    return WIFEXITED (rc)? WEXITSTATUS (rc): -1;
}

//  submit checks what it can before saying "submitted" (service, artifact and digest,
//  a taken id); a staging deployment that fails shows its cause in `airlock status`.
static void
test_submit_checks_and_staging_failure_cause (void **state)
{
    s_fixture_t *f = *state;
    s_write (f, "app.sh", "#!/bin/sh\nexit 0\n");
    char command [1200];
    snprintf (command, sizeof command, "chmod 755 '%s/app.sh' && sha256sum '%s/app.sh' | cut -c1-64 > '%s/app.sha'",
              f->dir, f->dir, f->dir);
    assert_int_equal (system (command), 0);
    char *digest = s_file (f, "app.sha");
    assert_non_null (digest);
    digest [strcspn (digest, "\n")] = 0;
    assert_int_equal (strlen (digest), 64);
    char arguments [2048];
    //  Refused here, before anything is sent (no broker runs yet).
    snprintf (arguments, sizeof arguments, "submit --state . --service nosuch --version 1 --artifact ./app.sh "
              "--digest sha256:%s", digest);
    assert_int_equal (s_run_in_dir (f, "unknown-service", arguments), 1);
    char *text = s_file (f, "unknown-service.out");
    if (!strstr (text, "service nosuch: not in") || !strstr (text, "demo") || strstr (text, "submitted"))
        fail_msg ("unknown service:\n%s", text);
    free (text);
    snprintf (arguments, sizeof arguments, "submit --state . --service demo --version 1 --artifact ./missing.sh "
              "--digest sha256:%s", digest);
    assert_int_equal (s_run_in_dir (f, "missing", arguments), 1);
    text = s_file (f, "missing.out");
    if (!strstr (text, "missing.sh: No such file") || strstr (text, "submitted"))
        fail_msg ("missing artifact:\n%s", text);
    free (text);
    snprintf (arguments, sizeof arguments, "submit --state . --service demo --version 1 --artifact ./app.sh "
              "--digest sha256:%064d", 0);
    assert_int_equal (s_run_in_dir (f, "mismatch", arguments), 1);
    text = s_file (f, "mismatch.out");
    char needle [256];
    snprintf (needle, sizeof needle, "has sha256:%s, not the digest given", digest);
    if (!strstr (text, needle) || strstr (text, "submitted"))
        fail_msg ("digest mismatch:\n%s", text);
    free (text);

    s_start_up (f);
    s_wait_alive (f, 0);
    snprintf (arguments, sizeof arguments, "submit --state . --service demo --version 1 --artifact ./app.sh "
              "--digest sha256:%s --id rel-t1", digest);
    if (s_run_in_dir (f, "submit", arguments) != 0) {
        text = s_file (f, "submit.out");
        fail_msg ("submit:\n%s", text);
    }
    text = s_file (f, "submit.out");
    assert_non_null (strstr (text, "as release rel-t1"));
    free (text);
    //  The staging deployment of a service whose instance exits at once fails; the
    //  release's detail says which step failed and why.
    snprintf (arguments, sizeof arguments, "status rel-t1 --state '%s' --json", f->dir);
    const char *detail = NULL;
    json_t *root = NULL;
    for (int waited = 0; waited < 120000; waited += 500) {
        json_decref (root);
        root = NULL;
        if (s_run (f, "status", arguments) == 0) {
            text = s_file (f, "status.out");
            root = json_loads (text, 0, NULL);
            free (text);
            json_t *release = json_object_get (root, "release");
            const char *state_name = json_string_value (json_object_get (release, "state"));
            if (state_name && (strcmp (state_name, "FAILED") == 0 || strcmp (state_name, "VALIDATE") == 0
                           ||  strcmp (state_name, "APPROVE") == 0)) {
                detail = json_string_value (json_object_get (release, "detail"));
                break;
            }
        }
        s_sleep_ms (500);
    }
    if (!detail) {
        s_dump (f);
        fail_msg ("release rel-t1 never left staging");
    }
    //  (here "staging deployment rolled_back, rule rollout_failed: rollout failed: ... instance
    //  demo-0.1 exited during start ..."; before, the detail stopped at the rule)
    if (strncmp (detail, "staging deployment ", 19) != 0 || !strstr (detail, " failed: ")
    ||  !strstr (detail, "exited during start")) {
        s_dump (f);
        fail_msg ("the release's detail has no cause: '%s'", detail);
    }
    json_decref (root);
    //  The id is now taken: refused, not "submitted" and dropped.
    assert_int_equal (s_run_in_dir (f, "bad-digest", "submit --state . --service demo --version 2 "
                                    "--artifact ./app.sh --digest sha256:0 --id rel-t2"), 2);
    snprintf (arguments, sizeof arguments, "submit --state . --service demo --version 2 --artifact ./app.sh "
              "--digest sha256:%s --id rel-t1", digest);
    assert_int_equal (s_run_in_dir (f, "taken", arguments), 1);
    text = s_file (f, "taken.out");
    if (!strstr (text, "release id rel-t1 is taken") || strstr (text, "submitted"))
        fail_msg ("taken id:\n%s", text);
    free (text);
    free (digest);
    s_stop_and_check (f, SIGTERM, false);
}

int
main (void)
{
    //  What airlock up leaves behind is reparented to us, so we can see it and reap it.
    if (prctl (PR_SET_CHILD_SUBREAPER, 1) != 0) {
        perror ("prctl PR_SET_CHILD_SUBREAPER");
        return 1;
    }
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_up_bad_input, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_check_lists_every_error, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_up_refuses_an_invalid_state, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_up_and_status_show_why_an_agent_dies, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_submit_checks_and_staging_failure_cause, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_up_starts_everyone_and_sigterm_stops_them, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_up_restarts_a_crashed_agent_with_backoff, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_up_restarts_a_crashed_broker, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_up_ctrl_c_stops_everyone, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_up_killed_leaves_no_orphans, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_up_second_instance_refused, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
