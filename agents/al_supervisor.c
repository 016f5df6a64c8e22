/*  al_supervisor.c: runs child programs and restarts them with a bounded backoff.

    The engine of `airlock up` (al_supervisor.h says what it promises). Children are kept
    in start order in a zlist; a child's state is its pid (0: not running) and, when it
    is not running, the monotonic time its restart is due (0: none pending). The loop
    polls with waitpid (WNOHANG) on each pid: single-threaded, no SIGCHLD handler, so a
    signal handler of the owner only has to set its stop flag.
*/
#include "agents/al_supervisor.h"
#include "base/al_sd_notify.h"

#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define S_STOP_GRACE_MS 10000
#define S_POLL_MS 100
#define S_PATH_MAX 1200
#define S_ARGS_MAX 32

const al_supervisor_backoff_t al_supervisor_broker_backoff = { 500, 1000, 60000 };
const al_supervisor_backoff_t al_supervisor_agent_backoff = { 500, 5000, 60000 };

typedef struct {
    char *name;
    char **argv;                    // NULL-terminated, owned
    al_supervisor_backoff_t backoff;
    int stop_rank;
    int settle_ms;
    bool systemd_notify;
    pid_t pid;                      // 0: not running
    int64_t started_ms;
    int64_t restart_at_ms;          // 0: running, or no restart scheduled
    int backoff_ms;                 // the delay before the next restart
    int last_delay_ms;              // -1: never exited
    unsigned restarts;
} s_child_t;

struct _al_supervisor_t {
    char *logs;
    char *run;
    FILE *report;
    zlist_t *children;              // s_child_t, in start order
    int lock_fd;                    // -1: not locked
    al_supervisor_exit_fn *on_exit;
    void *on_exit_arg;
};

static void
s_child_destroy (s_child_t **self_p)
{
    s_child_t *self = *self_p;
    if (!self)
        return;
    for (size_t index = 0; self->argv && self->argv [index]; index++)
        free (self->argv [index]);
    free (self->argv);
    free (self->name);
    free (self);
    *self_p = NULL;
}

static void
s_sleep_ms (int64_t ms)
{
    struct timespec pause = { (time_t) (ms / 1000), (long) (ms % 1000) * 1000000L };
    nanosleep (&pause, NULL);       // a signal cuts it short, which is what we want
}

al_supervisor_t *
al_supervisor_new (const char *logs_dir, const char *run_dir, FILE *report)
{
    assert (logs_dir && run_dir && report);
    al_supervisor_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->logs = strdup (logs_dir);
    self->run = strdup (run_dir);
    self->children = zlist_new ();
    self->report = report;
    self->lock_fd = -1;
    if (!self->logs || !self->run || !self->children)
        al_supervisor_destroy (&self);
    return self;
}

void
al_supervisor_destroy (al_supervisor_t **self_p)
{
    assert (self_p);
    al_supervisor_t *self = *self_p;
    if (!self)
        return;
    if (self->children) {
        al_supervisor_stop (self);
        s_child_t *child;
        while ((child = zlist_pop (self->children)))
            s_child_destroy (&child);
        zlist_destroy (&self->children);
    }
    if (self->lock_fd >= 0)
        close (self->lock_fd);
    free (self->logs);
    free (self->run);
    free (self);
    *self_p = NULL;
}

static s_child_t *
s_find (const al_supervisor_t *self, const char *name)
{
    for (s_child_t *child = zlist_first (self->children); child; child = zlist_next (self->children))
        if (strcmp (child->name, name) == 0)
            return child;
    return NULL;
}

int
al_supervisor_add (al_supervisor_t *self, const al_supervisor_child_t *child, char *error, size_t size)
{
    assert (self && child && error);
    const char *name = child->name? child->name: "";
    bool name_ok = *name && strlen (name) <= 64 && strcmp (name, ".") != 0 && strcmp (name, "..") != 0;
    for (const char *c = name; *c && name_ok; c++)
        name_ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')
                  || *c == '.' || *c == '_' || *c == '-';
    if (!name_ok) {
        snprintf (error, size, "child '%s': a name is 1 to 64 of [A-Za-z0-9._-]", name);
        return -1;
    }
    if (s_find (self, name)) {
        snprintf (error, size, "child '%s': the name is already used", name);
        return -1;
    }
    if (!child->argv || !child->argv [0] || !*child->argv [0]) {
        snprintf (error, size, "child '%s': no program to run", name);
        return -1;
    }
    const al_supervisor_backoff_t *backoff = &child->backoff;
    if (backoff->first_ms <= 0 || backoff->max_ms < backoff->first_ms || backoff->healthy_ms <= 0
    ||  child->settle_ms < 0) {
        snprintf (error, size, "child '%s': backoff needs 0 < first_ms <= max_ms, healthy_ms > 0, settle_ms >= 0",
                  name);
        return -1;
    }
    size_t count = 0;
    while (child->argv [count])
        count++;
    s_child_t *entry = calloc (1, sizeof *entry);
    if (entry) {
        entry->name = strdup (name);
        entry->argv = calloc (count + 1, sizeof (char *));
    }
    bool ok = entry && entry->name && entry->argv;
    for (size_t index = 0; ok && index < count; index++)
        ok = (entry->argv [index] = strdup (child->argv [index])) != NULL;
    if (!ok || zlist_append (self->children, entry) != 0) {
        s_child_destroy (&entry);
        snprintf (error, size, "child '%s': out of memory", name);
        return -1;
    }
    entry->backoff = *backoff;
    entry->stop_rank = child->stop_rank;
    entry->settle_ms = child->settle_ms;
    entry->systemd_notify = child->systemd_notify;
    entry->backoff_ms = backoff->first_ms;
    entry->last_delay_ms = -1;
    return 0;
}

int
al_supervisor_add_bus (al_supervisor_t *self, const al_supervisor_bus_t *bus, char *error, size_t size)
{
    assert (self && bus && bus->executable && bus->config_path && error);
    //  The bus, in start order: the broker binds first, then the agents.
    static const struct {
        const char *name;
        const char *role;           // NULL: the broker
    } members [] = {
        { "broker", NULL },
        { "orchestrator", "orchestrator" },
        { "qa", "qa" },
        { "deploy-manager", "deploy-manager" },
        { "monitor", "monitor" },
        { "notifier", "notifier" },
    };
    for (size_t index = 0; index < sizeof members / sizeof members [0]; index++) {
        const char *argv [S_ARGS_MAX];
        size_t count = 0;
        argv [count++] = bus->executable;
        if (members [index].role) {
            argv [count++] = "agent";
            argv [count++] = members [index].role;
        }
        else
            argv [count++] = "broker";
        argv [count++] = "--config";
        argv [count++] = bus->config_path;
        if (members [index].role && strcmp (members [index].role, "monitor") == 0 && bus->interval_ms) {
            argv [count++] = "--interval-ms";
            argv [count++] = bus->interval_ms;
        }
        if (bus->log_format) {
            argv [count++] = "--log-format";
            argv [count++] = bus->log_format;
        }
        argv [count] = NULL;
        bool broker = !members [index].role;
        al_supervisor_child_t child = {
            .name = members [index].name,
            .argv = argv,
            .backoff = broker? al_supervisor_broker_backoff: al_supervisor_agent_backoff,
            .stop_rank = broker? 1: 0,
            .settle_ms = broker? 300: 0,
            .systemd_notify = broker,
        };
        if (al_supervisor_add (self, &child, error, size) != 0)
            return -1;
    }
    return 0;
}

int
al_supervisor_lock (al_supervisor_t *self, char *error, size_t size)
{
    assert (self && error);
    assert (self->lock_fd < 0);
    char path [S_PATH_MAX + 16];
    snprintf (path, sizeof path, "%s/up.lock", self->run);
    //  Never removed: removing it would let two processes lock two different files.
    int fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf (error, size, "cannot open %s: %s", path, strerror (errno));
        return -1;
    }
    if (flock (fd, LOCK_EX | LOCK_NB) != 0) {
        int cause = errno;
        char text [32] = "";
        ssize_t length = read (fd, text, sizeof text - 1);
        text [length > 0? length: 0] = 0;
        close (fd);
        if (cause == EWOULDBLOCK) {
            snprintf (error, size, "another airlock up (pid %d) already runs on this state directory (%s is locked)",
                      atoi (text), path);
            return -2;
        }
        snprintf (error, size, "cannot lock %s: %s", path, strerror (cause));
        return -1;
    }
    char text [32];
    int length = snprintf (text, sizeof text, "%d\n", (int) getpid ());
    if (ftruncate (fd, 0) != 0 || write (fd, text, (size_t) length) != length) {
        snprintf (error, size, "cannot write %s: %s", path, strerror (errno));
        close (fd);
        return -1;
    }
    self->lock_fd = fd;
    return 0;
}

void
al_supervisor_on_exit (al_supervisor_t *self, al_supervisor_exit_fn *handler, void *arg)
{
    assert (self);
    self->on_exit = handler;
    self->on_exit_arg = arg;
}

//  Write RUN/NAME.pid through a rename, so a reader never sees half a pid.
static void
s_pidfile_write (al_supervisor_t *self, const s_child_t *child)
{
    char path [S_PATH_MAX + 80], temporary [S_PATH_MAX + 96];
    snprintf (path, sizeof path, "%s/%s.pid", self->run, child->name);
    snprintf (temporary, sizeof temporary, "%s/.%s.pid.tmp", self->run, child->name);
    FILE *file = fopen (temporary, "w");
    if (!file) {
        fprintf (self->report, "airlock up: cannot write %s: %s\n", temporary, strerror (errno));
        return;
    }
    fprintf (file, "%d\n", (int) child->pid);
    if (fclose (file) != 0 || rename (temporary, path) != 0) {
        fprintf (self->report, "airlock up: cannot write %s: %s\n", path, strerror (errno));
        unlink (temporary);
    }
}

static void
s_pidfile_remove (al_supervisor_t *self, const s_child_t *child)
{
    char path [S_PATH_MAX + 80];
    snprintf (path, sizeof path, "%s/%s.pid", self->run, child->name);
    unlink (path);
}

//  Fork and exec one child; its pid, or -1 if fork failed (errno set).
static pid_t
s_spawn (al_supervisor_t *self, s_child_t *child)
{
    char log [S_PATH_MAX + 80];
    snprintf (log, sizeof log, "%s/%s.log", self->logs, child->name);
    sigset_t stops, previous;
    sigemptyset (&stops);
    sigaddset (&stops, SIGINT);
    sigaddset (&stops, SIGTERM);
    sigaddset (&stops, SIGHUP);
    sigprocmask (SIG_BLOCK, &stops, &previous);
    fflush (self->report);          // nothing buffered is written twice
    pid_t parent = getpid ();
    pid_t pid = fork ();
    if (pid != 0) {
        int cause = errno;
        if (pid > 0)
            setpgid (pid, pid);     // also done by the child: whichever runs first
        sigprocmask (SIG_SETMASK, &previous, NULL);
        errno = cause;
        return pid;
    }
    //  The child: only async-signal-safe calls until exec.
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
    if (!child->systemd_notify)
        al_sd_notify_forget ();
    execv (child->argv [0], child->argv);
    length = snprintf (line, sizeof line, "airlock up: cannot run %s: %s\n", child->argv [0], strerror (errno));
    if (length > 0 && (size_t) length < sizeof line && write (STDERR_FILENO, line, (size_t) length) < 0)
        _exit (127);
    _exit (127);
}

static void
s_schedule_restart (s_child_t *child, int64_t now)
{
    child->restart_at_ms = now + child->backoff_ms;
    child->last_delay_ms = child->backoff_ms;
    child->backoff_ms = child->backoff_ms * 2 > child->backoff.max_ms? child->backoff.max_ms: child->backoff_ms * 2;
}

//  Start a child (first start or restart). A failed fork counts as a crash: retried
//  after the backoff.
static void
s_start (al_supervisor_t *self, s_child_t *child, int64_t now)
{
    child->restart_at_ms = 0;
    child->pid = s_spawn (self, child);
    child->started_ms = now;
    if (child->pid < 0) {
        fprintf (self->report, "airlock up: cannot start %s: %s; retry in %.1f s\n", child->name, strerror (errno),
                 (double) child->backoff_ms / 1000.0);
        child->pid = 0;
        s_schedule_restart (child, now);
        return;
    }
    s_pidfile_write (self, child);
    if (child->restarts == 0)
        fprintf (self->report, "airlock up: %-15s pid %d\n", child->name, (int) child->pid);
    else
        fprintf (self->report, "airlock up: %s restarted (pid %d, restart %u)\n", child->name, (int) child->pid,
                 child->restarts);
    fflush (self->report);
}

static void
s_describe (int status, char *text, size_t size)
{
    if (WIFSIGNALED (status))
        snprintf (text, size, "killed by signal %d", WTERMSIG (status));
    else
        snprintf (text, size, "exited with %d", WEXITSTATUS (status));
}

void
al_supervisor_start (al_supervisor_t *self, volatile sig_atomic_t *stop)
{
    assert (self);
    for (s_child_t *child = zlist_first (self->children); child && !(stop && *stop);
         child = zlist_next (self->children)) {
        if (child->pid > 0)
            continue;
        s_start (self, child, zclock_mono ());
        if (child->settle_ms > 0)
            s_sleep_ms (child->settle_ms);
    }
}

void
al_supervisor_poll (al_supervisor_t *self)
{
    assert (self);
    int64_t now = zclock_mono ();
    for (s_child_t *child = zlist_first (self->children); child; child = zlist_next (self->children)) {
        int status = 0;
        if (child->pid > 0 && waitpid (child->pid, &status, WNOHANG) == child->pid) {
            int64_t ran = now - child->started_ms;
            if (ran >= child->backoff.healthy_ms)
                child->backoff_ms = child->backoff.first_ms;
            char how [64];
            s_describe (status, how, sizeof how);
            fprintf (self->report, "airlock up: %s (pid %d) %s after %.1f s; restart in %.1f s\n", child->name,
                     (int) child->pid, how, (double) ran / 1000.0, (double) child->backoff_ms / 1000.0);
            if (self->on_exit) {
                char log [S_PATH_MAX + 80];
                snprintf (log, sizeof log, "%s/%s.log", self->logs, child->name);
                self->on_exit (self->on_exit_arg, child->name, log);
            }
            fflush (self->report);
            s_pidfile_remove (self, child);
            child->pid = 0;
            s_schedule_restart (child, now);
        }
        if (child->pid == 0 && child->restart_at_ms && now >= child->restart_at_ms) {
            child->restarts++;
            s_start (self, child, now);
        }
    }
}

void
al_supervisor_run (al_supervisor_t *self, volatile sig_atomic_t *stop)
{
    assert (self && stop);
    al_supervisor_start (self, stop);
    while (!*stop) {
        al_supervisor_poll (self);
        if (!*stop)
            s_sleep_ms (S_POLL_MS);
    }
    al_supervisor_stop (self);
}

//  Stop the children of one rank together: SIGTERM to each, wait for all of them for
//  the grace period, SIGKILL whoever is left.
static void
s_stop_rank (al_supervisor_t *self, int rank)
{
    s_child_t *child;
    for (child = zlist_first (self->children); child; child = zlist_next (self->children))
        if (child->stop_rank == rank) {
            child->restart_at_ms = 0;
            if (child->pid > 0)
                kill (child->pid, SIGTERM);
        }
    int64_t deadline = zclock_mono () + S_STOP_GRACE_MS;
    while (true) {
        bool running = false;
        for (child = zlist_first (self->children); child; child = zlist_next (self->children)) {
            int status = 0;
            if (child->stop_rank != rank || child->pid <= 0)
                continue;
            if (waitpid (child->pid, &status, WNOHANG) == child->pid) {
                char how [64];
                s_describe (status, how, sizeof how);
                fprintf (self->report, "airlock up: %s (pid %d) stopped: %s\n", child->name, (int) child->pid, how);
                s_pidfile_remove (self, child);
                child->pid = 0;
            }
            running |= child->pid > 0;
        }
        if (!running)
            return;
        if (zclock_mono () >= deadline)
            break;
        s_sleep_ms (20);
    }
    for (child = zlist_first (self->children); child; child = zlist_next (self->children)) {
        if (child->stop_rank != rank || child->pid <= 0)
            continue;
        kill (child->pid, SIGKILL);
        waitpid (child->pid, NULL, 0);
        fprintf (self->report, "airlock up: %s (pid %d) did not stop within %d s: killed\n", child->name,
                 (int) child->pid, S_STOP_GRACE_MS / 1000);
        s_pidfile_remove (self, child);
        child->pid = 0;
    }
}

void
al_supervisor_stop (al_supervisor_t *self)
{
    assert (self);
    //  Ranks in ascending order, each once.
    bool first = true;
    int rank = 0;
    while (true) {
        bool found = false;
        int next = 0;
        for (s_child_t *child = zlist_first (self->children); child; child = zlist_next (self->children))
            if ((first || child->stop_rank > rank) && (!found || child->stop_rank < next)) {
                next = child->stop_rank;
                found = true;
            }
        if (!found)
            break;
        bool running = false;
        for (s_child_t *child = zlist_first (self->children); child; child = zlist_next (self->children))
            if (child->stop_rank == next && child->pid > 0) {
                if (!running)
                    fprintf (self->report, "airlock up: stopping");
                fprintf (self->report, " %s", child->name);
                running = true;
            }
        if (running)
            fprintf (self->report, "\n");
        s_stop_rank (self, next);
        rank = next;
        first = false;
    }
    fflush (self->report);
}

pid_t
al_supervisor_pid (const al_supervisor_t *self, const char *name)
{
    assert (self && name);
    const s_child_t *child = s_find (self, name);
    return child? child->pid: 0;
}

unsigned
al_supervisor_restarts (const al_supervisor_t *self, const char *name)
{
    assert (self && name);
    const s_child_t *child = s_find (self, name);
    return child? child->restarts: 0;
}

int
al_supervisor_last_delay_ms (const al_supervisor_t *self, const char *name)
{
    assert (self && name);
    const s_child_t *child = s_find (self, name);
    return child? child->last_delay_ms: -1;
}
