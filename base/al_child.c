/*  al_child.c: the one fork/exec of airlock (see al_child.h).

    The child reports a failure before execve (dup2, chdir, execve itself) through a
    close-on-exec pipe: {stage, errno}. End of file on that pipe means execve worked.
    stdin fed from a buffer is a socket pair, written with MSG_NOSIGNAL, so a child
    that exits without reading its input cannot kill us with SIGPIPE.

    The hold gate is a socket pair too (a release sent to a child that already died
    must not raise SIGPIPE either). The held child closes every descriptor but 0, 1, 2,
    its report pipe and its end of the gate before it waits: it then holds no other
    child's gate open, so each gate's end of file means its own caller closed it or died.
*/
#include "base/al_child.h"
#include "base/al_clock.h"
#include "base/al_error.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

typedef struct {
    int fd;                 // our end; -1 once closed
    char *data;             // captured bytes (NUL-terminated)
    size_t size;
    size_t capacity;
    size_t max;
    size_t dropped;
} s_capture_t;

struct _al_child_t {
    pid_t pid;
    bool exited;
    int status;             // from waitpid; valid once exited
    bool lost;              // reaped elsewhere: status unknown
    bool keep_leftovers;
    int64_t drain_ms;
    pid_t target;           // what signals go to: -pid (the group), or pid (same_group)
    int input_fd;           // our end of stdin; -1 once closed
    const char *input;      // borrowed from the options: the caller keeps it alive
    size_t input_size;
    size_t input_done;
    s_capture_t out, err;
    int report_fd;          // while held: the child's report pipe (read at release)
    int gate_fd;            // while held: our end of the gate; -1 otherwise
    char *name;             // argv[0], the resolved path and cwd: for error texts
    char *path;
    char *cwd;
    char status_text [48];
};

enum { S_STAGE_SETUP, S_STAGE_DIRECTORY, S_STAGE_EXECUTE };

//  ---------------------------------------------------------------------------------

bool
al_child_resolve (const char *program, char *path, size_t path_size, char *error, size_t error_size)
{
    assert (program && path);
    if (!*program) {
        al_error_set (error, error_size, "the program name is empty");
        return false;
    }
    if (strchr (program, '/')) {
        if ((size_t) snprintf (path, path_size, "%s", program) >= path_size) {
            al_error_set (error, error_size, "%s: path too long", program);
            return false;
        }
        struct stat info;
        if (stat (program, &info) != 0) {
            al_error_set (error, error_size, "%s: %s", program, strerror (errno));
            return false;
        }
        if (!S_ISREG (info.st_mode) || access (program, X_OK) != 0) {
            al_error_set (error, error_size, "%s: not an executable file", program);
            return false;
        }
        return true;
    }
    const char *search = getenv ("PATH");
    if (!search || !*search)
        search = "/usr/local/bin:/usr/bin:/bin";
    while (*search) {
        const char *colon = strchr (search, ':');
        size_t length = colon ? (size_t) (colon - search) : strlen (search);
        int wrote = snprintf (path, path_size, "%.*s/%s", (int) length, length ? search : ".", program);
        struct stat info;
        if (wrote > 0 && (size_t) wrote < path_size
        &&  stat (path, &info) == 0 && S_ISREG (info.st_mode) && access (path, X_OK) == 0)
            return true;
        search += length + (colon ? 1 : 0);
    }
    al_error_set (error, error_size, "%s: not found in PATH", program);
    return false;
}

const char *
al_child_describe_status (int status, char *out, size_t out_size)
{
    assert (out);
    if (WIFEXITED (status))
        al_error_set (out, out_size, "exited %d", WEXITSTATUS (status));
    else
    if (WIFSIGNALED (status))
        al_error_set (out, out_size, "killed by signal %d%s", WTERMSIG (status),
                      WCOREDUMP (status) ? " (core dumped)" : "");
    else
    if (WIFSTOPPED (status))
        al_error_set (out, out_size, "stopped by signal %d", WSTOPSIG (status));
    else
        al_error_set (out, out_size, "unknown wait status 0x%x", (unsigned) status);
    return out;
}

//  The environment: base without the names environment_add sets, then environment_add.
//  A fresh array of borrowed strings, or NULL when out of memory.
static char **
s_environment (char *const *base, char *const *add)
{
    if (!base)
        base = environ;
    size_t base_count = 0, add_count = 0;
    while (base && base [base_count])
        base_count++;
    while (add && add [add_count])
        add_count++;
    char **result = calloc (base_count + add_count + 1, sizeof (char *));
    if (!result)
        return NULL;
    size_t count = 0;
    for (size_t index = 0; index < base_count; index++) {
        const char *equals = strchr (base [index], '=');
        size_t name_length = equals ? (size_t) (equals - base [index]) : strlen (base [index]);
        bool replaced = false;
        for (size_t other = 0; other < add_count && !replaced; other++)
            replaced = strncmp (add [other], base [index], name_length) == 0
                    && (add [other][name_length] == '=' || add [other][name_length] == 0);
        if (!replaced)
            result [count++] = base [index];
    }
    for (size_t index = 0; index < add_count; index++)
        result [count++] = add [index];
    return result;
}

static void
s_close (int *fd_p)
{
    if (*fd_p >= 0) {
        close (*fd_p);
        *fd_p = -1;
    }
}

//  Read what fd has now into capture. False at end of file or on an error (closed).
static bool
s_capture_read (s_capture_t *capture)
{
    char chunk [16384];
    while (capture->fd >= 0) {
        ssize_t got = read (capture->fd, chunk, sizeof chunk);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return true;
        if (got <= 0) {
            s_close (&capture->fd);
            return false;
        }
        size_t keep = (size_t) got;
        if (capture->size + keep > capture->max)
            keep = capture->max - capture->size;
        if (keep > 0 && capture->size + keep + 1 > capture->capacity) {
            size_t capacity = capture->capacity ? capture->capacity : 4096;
            while (capacity < capture->size + keep + 1)
                capacity *= 2;
            if (capacity > capture->max + 1)
                capacity = capture->max + 1;
            //  Not realloc: the old buffer is wiped before it is freed.
            char *data = malloc (capacity);
            if (!data)
                keep = 0;       // out of memory: counted as dropped, the child goes on
            else {
                if (capture->data) {
                    memcpy (data, capture->data, capture->size + 1);
                    explicit_bzero (capture->data, capture->capacity);
                    free (capture->data);
                }
                capture->data = data;
                capture->capacity = capacity;
            }
        }
        if (keep > 0) {
            memcpy (capture->data + capture->size, chunk, keep);
            capture->size += keep;
            capture->data [capture->size] = 0;
        }
        capture->dropped += (size_t) got - keep;
    }
    return false;
}

//  Write what the child's stdin takes now; close it when all is written or it is gone.
static void
s_input_write (al_child_t *self)
{
    while (self->input_fd >= 0 && self->input_done < self->input_size) {
        ssize_t wrote = send (self->input_fd, self->input + self->input_done,
                              self->input_size - self->input_done, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (wrote < 0 && errno == EINTR)
            continue;
        if (wrote < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (wrote < 0) {
            s_close (&self->input_fd);      // EPIPE: the child does not read it
            return;
        }
        self->input_done += (size_t) wrote;
    }
    s_close (&self->input_fd);
}

//  Wait up to timeout_ms for the pipes, and serve them.
static void
s_pump (al_child_t *self, int timeout_ms)
{
    struct pollfd fds [3];
    int count = 0;
    if (self->input_fd >= 0)
        fds [count++] = (struct pollfd) { .fd = self->input_fd, .events = POLLOUT };
    if (self->out.fd >= 0)
        fds [count++] = (struct pollfd) { .fd = self->out.fd, .events = POLLIN };
    if (self->err.fd >= 0)
        fds [count++] = (struct pollfd) { .fd = self->err.fd, .events = POLLIN };
    if (count == 0) {
        al_clock_sleep_ms (timeout_ms);
        return;
    }
    if (poll (fds, (nfds_t) count, timeout_ms) <= 0)
        return;
    for (int index = 0; index < count; index++) {
        if (!fds [index].revents)
            continue;
        if (fds [index].fd == self->input_fd)
            s_input_write (self);
        else
        if (fds [index].fd == self->out.fd)
            s_capture_read (&self->out);
        else
        if (fds [index].fd == self->err.fd)
            s_capture_read (&self->err);
    }
}

//  True when the leader has exited (then reaped, its leftovers killed unless kept).
static bool
s_reap_if_exited (al_child_t *self)
{
    if (self->exited)
        return true;
    //  Look without reaping: while the leader is a zombie, its pid (the group id)
    //  cannot be reused, so signalling the group cannot hit a stranger.
    siginfo_t info = { 0 };
    int rc = waitid (P_PID, (id_t) self->pid, &info, WEXITED | WNOHANG | WNOWAIT);
    if (rc < 0 && errno == EINTR)
        return false;
    if (rc < 0) {
        //  Not our child any more (reaped elsewhere, SIGCHLD ignored): gone, status unknown.
        self->exited = true;
        self->lost = true;
        snprintf (self->status_text, sizeof self->status_text, "exit status lost");
        return true;
    }
    if (info.si_pid != self->pid)
        return false;
    if (!self->keep_leftovers && self->target < 0)
        kill (self->target, SIGKILL);
    if (self->gate_fd >= 0)
        s_close (&self->gate_fd);       // it died at its gate
    int status = 0;
    while (waitpid (self->pid, &status, 0) < 0 && errno == EINTR)
        ;
    self->status = status;
    self->exited = true;
    al_child_describe_status (status, self->status_text, sizeof self->status_text);
    //  What it wrote before the end.
    s_close (&self->input_fd);
    int64_t drain = al_clock_deadline_ms (self->drain_ms);
    while ((self->out.fd >= 0 || self->err.fd >= 0) && al_clock_remaining_ms (drain) > 0)
        s_pump (self, (int) (al_clock_remaining_ms (drain) < 50 ? al_clock_remaining_ms (drain) : 50));
    s_close (&self->out.fd);
    s_close (&self->err.fd);
    return true;
}

//  ---------------------------------------------------------------------------------

//  The child closes every descriptor but 0, 1, 2 and the two it keeps (a and b, maybe
//  equal). Async-signal-safe.
static void
s_close_all_but (int a, int b)
{
    int low = a < b ? a : b, high = a < b ? b : a;
    if (low > 3)
        close_range (3, (unsigned) low - 1, 0);
    if (high > low + 1)
        close_range ((unsigned) low + 1, (unsigned) high - 1, 0);
    close_range ((unsigned) high + 1, ~0U, 0);
}

//  Read the child's report pipe until execve closed it or the child reported a failure
//  (then reaped, with why in error). Closes the pipe. True when it executed its program.
static bool
s_report_read (al_child_t *self, int *report_fd_p, char *error, size_t error_size)
{
    int failure [2] = { 0, 0 };
    ssize_t got;
    do
        got = read (*report_fd_p, failure, sizeof failure);
    while (got < 0 && errno == EINTR);
    s_close (report_fd_p);
    if (got != (ssize_t) sizeof failure)
        return true;
    int status = 0;
    while (waitpid (self->pid, &status, 0) < 0 && errno == EINTR)
        ;
    self->status = status;
    self->exited = true;
    al_child_describe_status (status, self->status_text, sizeof self->status_text);
    if (failure [0] == S_STAGE_DIRECTORY)
        al_error_set (error, error_size, "%s: cannot enter the directory %s: %s",
                      self->name, self->cwd ? self->cwd : "", strerror (failure [1]));
    else
    if (failure [0] == S_STAGE_EXECUTE)
        al_error_set (error, error_size, "cannot execute %s: %s", self->path, strerror (failure [1]));
    else
        al_error_set (error, error_size, "%s: cannot set up its descriptors: %s", self->name,
                      strerror (failure [1]));
    return false;
}

al_child_t *
al_child_start (char *const *argv, const al_child_options_t *options, char *error, size_t error_size)
{
    assert (argv && argv [0]);
    static const al_child_options_t defaults = { .in = AL_CHILD_DEVNULL };
    if (!options)
        options = &defaults;
    assert (options->in != AL_CHILD_TO_STDOUT && options->out != AL_CHILD_TO_STDOUT);
    assert (options->in != AL_CHILD_PIPE || options->input || options->input_size == 0);

    al_child_t *self = NULL;
    char **envp = NULL;
    int null_fd = -1, report [2] = { -1, -1 }, input [2] = { -1, -1 }, gate [2] = { -1, -1 };
    int out [2] = { -1, -1 }, err [2] = { -1, -1 };
    char path [PATH_MAX];
    if (!al_child_resolve (options->program ? options->program : argv [0], path, sizeof path, error, error_size))
        goto failed;
    self = calloc (1, sizeof *self);
    envp = s_environment (options->environment, options->environment_add);
    if (self) {
        self->input_fd = self->out.fd = self->err.fd = self->report_fd = self->gate_fd = -1;
        self->name = strdup (argv [0]);
        self->path = strdup (path);
        self->cwd = options->cwd ? strdup (options->cwd) : NULL;
    }
    if (!self || !envp || !self->name || !self->path || (options->cwd && !self->cwd)) {
        al_error_set (error, error_size, "%s: out of memory", argv [0]);
        goto failed;
    }
    self->keep_leftovers = options->keep_leftovers;
    self->drain_ms = options->drain_ms > 0 ? options->drain_ms : AL_CHILD_DEFAULT_DRAIN_MS;
    self->out.max = options->out_max ? options->out_max : AL_CHILD_DEFAULT_MAX;
    self->err.max = options->err_max ? options->err_max : AL_CHILD_DEFAULT_MAX;
    snprintf (self->status_text, sizeof self->status_text, "running");

    if ((null_fd = open ("/dev/null", O_RDWR | O_CLOEXEC)) < 0
    ||  pipe2 (report, O_CLOEXEC) != 0
    ||  (options->hold && socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, gate) != 0)
    ||  (options->in == AL_CHILD_PIPE && socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, input) != 0)
    ||  (options->out == AL_CHILD_PIPE && pipe2 (out, O_CLOEXEC) != 0)
    ||  (options->err == AL_CHILD_PIPE && pipe2 (err, O_CLOEXEC) != 0)) {
        al_error_set (error, error_size, "%s: cannot make its pipes: %s", argv [0], strerror (errno));
        goto failed;
    }
    //  What becomes the child's 0, 1 and 2.
    int source [3];
    source [0] = options->in == AL_CHILD_PIPE ? input [1]
               : options->in == AL_CHILD_INHERIT ? 0
               : options->in == AL_CHILD_FD ? options->in_fd : null_fd;
    source [1] = options->out == AL_CHILD_PIPE ? out [1]
               : options->out == AL_CHILD_INHERIT ? 1
               : options->out == AL_CHILD_FD ? options->out_fd : null_fd;
    source [2] = options->err == AL_CHILD_PIPE ? err [1]
               : options->err == AL_CHILD_INHERIT ? 2
               : options->err == AL_CHILD_FD ? options->err_fd
               : options->err == AL_CHILD_TO_STDOUT ? source [1] : null_fd;
    const char *cwd = options->cwd;
    bool same_group = options->same_group;
    bool hold = options->hold;

    pid_t pid = fork ();
    if (pid < 0) {
        al_error_set (error, error_size, "%s: fork: %s", argv [0], strerror (errno));
        goto failed;
    }
    if (pid == 0) {
        //  The child: async-signal-safe calls only.
        if (!same_group)
            setpgid (0, 0);
        sigset_t none;
        sigemptyset (&none);
        sigprocmask (SIG_SETMASK, &none, NULL);
        for (int sig = 1; sig < NSIG; sig++)
            if (sig != SIGKILL && sig != SIGSTOP)
                signal (sig, SIG_DFL);
        int failure [2] = { S_STAGE_SETUP, 0 };
        //  Above 2 first, so that placing one cannot overwrite another's source.
        int keep = fcntl (report [1], F_DUPFD_CLOEXEC, 3);
        int gate_keep = hold ? fcntl (gate [1], F_DUPFD_CLOEXEC, 3) : keep;
        int high [3];
        for (int index = 0; index < 3; index++)
            high [index] = fcntl (source [index], F_DUPFD_CLOEXEC, 3);
        if (keep < 0 || gate_keep < 0 || high [0] < 0 || high [1] < 0 || high [2] < 0
        ||  dup2 (high [0], 0) < 0 || dup2 (high [1], 1) < 0 || dup2 (high [2], 2) < 0)
            failure [1] = errno;
        else
        if (cwd && chdir (cwd) != 0) {
            failure [0] = S_STAGE_DIRECTORY;
            failure [1] = errno;
        }
        else {
            //  Nothing of ours but 0, 1, 2, the report pipe (close-on-exec) and the gate.
            s_close_all_but (keep, gate_keep);
            if (hold) {
                char go = 0;
                ssize_t got;
                do
                    got = read (gate_keep, &go, 1);
                while (got < 0 && errno == EINTR);
                if (got != 1)
                    _exit (127);    // refused, or the caller died: never execute
                close (gate_keep);
            }
            execve (path, argv, envp);
            failure [0] = S_STAGE_EXECUTE;
            failure [1] = errno;
        }
        if (keep < 0)
            keep = report [1];
        (void) !write (keep, failure, sizeof failure);
        _exit (127);
    }
    //  Also from here, so the group exists before we may signal it.
    if (!same_group)
        setpgid (pid, pid);
    self->pid = pid;
    self->target = same_group ? pid : -pid;
    s_close (&report [1]);
    s_close (&gate [1]);
    s_close (&input [1]);
    s_close (&out [1]);
    s_close (&err [1]);
    s_close (&null_fd);
    self->input_fd = input [0];
    self->out.fd = out [0];
    self->err.fd = err [0];
    input [0] = out [0] = err [0] = -1;
    if (hold) {
        //  The report is read at the release.
        self->report_fd = report [0];
        self->gate_fd = gate [0];
        report [0] = gate [0] = -1;
    }
    else
    if (!s_report_read (self, &report [0], error, error_size))
        goto failed;
    int ours [3] = { self->input_fd, self->out.fd, self->err.fd };
    for (int index = 0; index < 3; index++)
        if (ours [index] >= 0)
            fcntl (ours [index], F_SETFL, fcntl (ours [index], F_GETFL) | O_NONBLOCK);
    self->input = options->input;
    self->input_size = options->in == AL_CHILD_PIPE ? options->input_size : 0;
    s_input_write (self);
    free (envp);
    return self;

failed:
    free (envp);
    s_close (&null_fd);
    for (int index = 0; index < 2; index++) {
        s_close (&report [index]);
        s_close (&gate [index]);
        s_close (&input [index]);
        s_close (&out [index]);
        s_close (&err [index]);
    }
    if (self) {
        assert (self->pid == 0 || self->exited);
        s_close (&self->input_fd);
        s_close (&self->out.fd);
        s_close (&self->err.fd);
        free (self->name);
        free (self->path);
        free (self->cwd);
        free (self);
    }
    return NULL;
}

bool
al_child_release (al_child_t *self, char *error, size_t error_size)
{
    assert (self);
    if (self->exited) {
        //  Killed at its gate, and reaped by a wait since.
        s_close (&self->report_fd);
        al_error_set (error, error_size, "%s: %s before its release", self->name, self->status_text);
        return false;
    }
    assert (self->gate_fd >= 0);        // started with hold, neither released nor refused
    //  A child that already died at its gate (killed) reads nothing: its report pipe
    //  then ends without a failure, and the next wait reaps it.
    ssize_t sent;
    do
        sent = send (self->gate_fd, "g", 1, MSG_NOSIGNAL);
    while (sent < 0 && errno == EINTR);
    s_close (&self->gate_fd);
    return s_report_read (self, &self->report_fd, error, error_size);
}

void
al_child_refuse (al_child_t *self)
{
    assert (self);
    assert (self->gate_fd >= 0 || self->exited);
    s_close (&self->gate_fd);
    s_close (&self->report_fd);
    al_child_wait (self, -1);           // it exits 127 at its gate
}

bool
al_child_held (const al_child_t *self)
{
    assert (self);
    return self->gate_fd >= 0;
}

bool
al_child_wait (al_child_t *self, int64_t timeout_ms)
{
    assert (self);
    int64_t deadline = al_clock_deadline_ms (timeout_ms);
    while (!s_reap_if_exited (self)) {
        if (timeout_ms >= 0 && al_clock_remaining_ms (deadline) == 0)
            return false;
        int64_t slice = timeout_ms < 0 ? 20 : al_clock_remaining_ms (deadline);
        s_pump (self, (int) (slice < 20 ? slice : 20));
    }
    return true;
}

bool
al_child_kill (al_child_t *self, int64_t grace_ms)
{
    assert (self);
    if (s_reap_if_exited (self))
        return false;
    self->keep_leftovers = false;       // a killed child takes its group along
    kill (self->target, SIGTERM);
    if (al_child_wait (self, grace_ms > 0 ? grace_ms : 0))
        return false;
    kill (self->target, SIGKILL);
    al_child_wait (self, -1);
    return true;
}

void
al_child_destroy (al_child_t **self_p)
{
    assert (self_p);
    al_child_t *self = *self_p;
    if (!self)
        return;
    if (self->gate_fd >= 0)
        al_child_refuse (self);
    if (!self->exited)
        al_child_kill (self, 0);
    s_close (&self->input_fd);
    s_close (&self->out.fd);
    s_close (&self->err.fd);
    s_close (&self->report_fd);
    if (self->out.data)
        explicit_bzero (self->out.data, self->out.capacity);
    if (self->err.data)
        explicit_bzero (self->err.data, self->err.capacity);
    free (self->out.data);
    free (self->err.data);
    free (self->name);
    free (self->path);
    free (self->cwd);
    free (self);
    *self_p = NULL;
}

al_child_t *
al_child_run (char *const *argv, const al_child_options_t *options, int64_t timeout_ms,
              bool *timed_out_p, char *error, size_t error_size)
{
    assert (!options || !options->hold);
    al_child_t *self = al_child_start (argv, options, error, error_size);
    bool timed_out = false;
    if (self && !al_child_wait (self, timeout_ms)) {
        timed_out = true;
        al_child_kill (self, 1000);
    }
    if (timed_out_p)
        *timed_out_p = timed_out;
    return self;
}

pid_t
al_child_pid (const al_child_t *self)
{
    assert (self);
    return self->pid;
}

bool
al_child_exited (const al_child_t *self)
{
    assert (self);
    return self->exited;
}

int
al_child_exit_code (const al_child_t *self)
{
    assert (self);
    if (!self->exited || self->lost)
        return -1;
    if (WIFEXITED (self->status))
        return WEXITSTATUS (self->status);
    if (WIFSIGNALED (self->status))
        return -WTERMSIG (self->status);
    return -1;
}

const char *
al_child_status_text (const al_child_t *self)
{
    assert (self);
    return self->status_text;
}

const char *
al_child_out (const al_child_t *self, size_t *size_p)
{
    assert (self);
    if (size_p)
        *size_p = self->out.size;
    return self->out.data ? self->out.data : "";
}

const char *
al_child_err (const al_child_t *self, size_t *size_p)
{
    assert (self);
    if (size_p)
        *size_p = self->err.size;
    return self->err.data ? self->err.data : "";
}

size_t
al_child_out_dropped (const al_child_t *self)
{
    assert (self);
    return self->out.dropped;
}

size_t
al_child_err_dropped (const al_child_t *self)
{
    assert (self);
    return self->err.dropped;
}
