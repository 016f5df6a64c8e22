/*  al_driver_util.c: the system helpers the built-in drivers share: resolving and
    spawning programs, waiting for and stopping children, free ports, directories and
    evidence files, error texts, validation of outside values, and a monotonic clock.

    No state; thread-safe.
*/
#include "deploy/al_driver_int.h"
#include "base/al_clock.h"
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

//  --------------------------------------------------------------------------
//  Programs and children

bool
al_program_resolve (const char *program, char *path, size_t path_size, char *error, size_t error_size)
{
    assert (program && path);
    if (!*program) {
        snprintf (error, error_size, "the program name is empty");
        return false;
    }
    if (strchr (program, '/')) {
        snprintf (path, path_size, "%s", program);
        struct stat info;
        if (stat (program, &info) != 0) {
            snprintf (error, error_size, "%s: %s", program, strerror (errno));
            return false;
        }
        if (!S_ISREG (info.st_mode) || access (program, X_OK) != 0) {
            snprintf (error, error_size, "%s: not an executable file", program);
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
        snprintf (path, path_size, "%.*s/%s", (int) length, length ? search : ".", program);
        struct stat info;
        if (stat (path, &info) == 0 && S_ISREG (info.st_mode) && access (path, X_OK) == 0)
            return true;
        search += length + (colon ? 1 : 0);
    }
    snprintf (error, error_size, "%s: not found in PATH", program);
    return false;
}

pid_t
al_child_spawn (char *const *argv, char *const *envp, int out_fd, int err_fd, char *error, size_t error_size)
{
    return al_child_spawn_recorded (argv, envp, out_fd, err_fd, NULL, NULL, error, error_size);
}

pid_t
al_child_spawn_recorded (char *const *argv, char *const *envp, int out_fd, int err_fd,
                         al_child_record_fn *record, void *arg, char *error, size_t error_size)
{
    assert (argv && argv [0] && envp);
    char path [PATH_MAX];
    if (!al_program_resolve (argv [0], path, sizeof (path), error, error_size))
        return -1;
    //  The child reports an execve failure through this pipe (closed on exec).
    int report [2];
    if (pipe2 (report, O_CLOEXEC) != 0) {
        snprintf (error, error_size, "pipe: %s", strerror (errno));
        return -1;
    }
    //  With record: the child waits on this gate before its execve (one byte: go; end
    //  of file: the owner died or refused, exit).
    int gate [2] = { -1, -1 };
    if (record && pipe2 (gate, O_CLOEXEC) != 0) {
        snprintf (error, error_size, "pipe: %s", strerror (errno));
        close (report [0]);
        close (report [1]);
        return -1;
    }
    int null_fd = open ("/dev/null", O_RDONLY | O_CLOEXEC);
    pid_t pid = null_fd < 0 ? -1 : fork ();
    if (pid < 0) {
        snprintf (error, error_size, "%s: %s", null_fd < 0 ? "/dev/null" : "fork", strerror (errno));
        close (report [0]);
        close (report [1]);
        if (null_fd >= 0)
            close (null_fd);
        if (record) {
            close (gate [0]);
            close (gate [1]);
        }
        return -1;
    }
    if (pid == 0) {
        //  Child: async-signal-safe calls only.
        setpgid (0, 0);
        sigset_t none;
        sigemptyset (&none);
        sigprocmask (SIG_SETMASK, &none, NULL);
        for (int sig = 1; sig < NSIG; sig++)
            if (sig != SIGKILL && sig != SIGSTOP)
                signal (sig, SIG_DFL);
        if (dup2 (null_fd, 0) < 0 || dup2 (out_fd, 1) < 0 || dup2 (err_fd, 2) < 0) {
            int code = errno;
            (void) !write (report [1], &code, sizeof (code));
            _exit (127);
        }
        //  Everything but 0, 1, 2, the report pipe (and the gate's read end): the host
        //  may hold descriptors (sockets, the audit database) that are not
        //  close-on-exec, and other children's gates, whose end of file they await.
        int keep = report [1], keep_too = record ? gate [0] : report [1];
        int low = keep < keep_too ? keep : keep_too, high = keep < keep_too ? keep_too : keep;
        if (low > 3)
            close_range (3, (unsigned) low - 1, 0);
        if (high > low + 1)
            close_range ((unsigned) low + 1, (unsigned) high - 1, 0);
        close_range ((unsigned) high + 1, ~0U, 0);
        if (record) {
            char go = 0;
            ssize_t got;
            do
                got = read (gate [0], &go, 1);
            while (got < 0 && errno == EINTR);
            if (got != 1)
                _exit (127);            // the owner died (or refused) before recording us
        }
        execve (path, argv, envp);
        int code = errno;
        (void) !write (keep, &code, sizeof (code));
        _exit (127);
    }
    //  Also set from here, so the group exists before we might signal it.
    setpgid (pid, pid);
    close (report [1]);
    close (null_fd);
    if (record) {
        close (gate [0]);
        int recorded = record (pid, arg, error, error_size);
        if (recorded == 0 && write (gate [1], "", 1) != 1) {
            snprintf (error, error_size, "gate: %s", strerror (errno));
            recorded = -1;
        }
        close (gate [1]);               // without the byte: the child exits 127
        if (recorded != 0) {
            close (report [0]);
            int status;
            while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
                ;
            return -1;
        }
    }
    int code = 0;
    ssize_t got;
    do
        got = read (report [0], &code, sizeof (code));
    while (got < 0 && errno == EINTR);
    close (report [0]);
    if (got == (ssize_t) sizeof (code)) {
        int status;
        while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
            ;
        snprintf (error, error_size, "cannot execute %s: %s", path, strerror (code));
        return -1;
    }
    return pid;
}

static int
s_exit_code (int status)
{
    if (WIFEXITED (status))
        return WEXITSTATUS (status);
    if (WIFSIGNALED (status))
        return -WTERMSIG (status);
    return -1;
}

bool
al_child_wait (pid_t pid, int timeout_ms, bool kill_leftovers, int *exit_code_p)
{
    assert (pid > 0);
    double deadline = al_now_ms () + timeout_ms;
    while (true) {
        //  Look without reaping first: while the leader is a zombie its pid (the group
        //  id) cannot be reused, so signalling the group cannot hit a stranger.
        siginfo_t info = { 0 };
        int rc = waitid (P_PID, (id_t) pid, &info, WEXITED | WNOHANG | WNOWAIT);
        if (rc == 0 && info.si_pid == pid) {
            if (kill_leftovers)
                kill (-pid, SIGKILL);
            int status = 0;
            while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
                ;
            if (exit_code_p)
                *exit_code_p = s_exit_code (status);
            return true;
        }
        if (rc < 0 && errno != EINTR) {
            //  Not our child any more (reaped elsewhere): treat as gone.
            if (exit_code_p)
                *exit_code_p = -1;
            return true;
        }
        if (al_now_ms () >= deadline)
            return false;
        al_sleep_ms (10);
    }
}

void
al_child_stop (pid_t pid, int grace_ms, bool *forced_p, int *exit_code_p)
{
    assert (pid > 0);
    bool forced = false;
    int exit_code = 0;
    kill (-pid, SIGTERM);
    if (!al_child_wait (pid, grace_ms, true, &exit_code)) {
        forced = true;
        kill (-pid, SIGKILL);
        al_child_wait (pid, 60000, true, &exit_code);
    }
    if (forced_p)
        *forced_p = forced;
    if (exit_code_p)
        *exit_code_p = exit_code;
}

int
al_free_port (const char *host, char *error, size_t error_size)
{
    struct sockaddr_in address = { .sin_family = AF_INET };
    if (inet_pton (AF_INET, host, &address.sin_addr) != 1) {
        snprintf (error, error_size, "%s: not an IPv4 address", host);
        return -1;
    }
    int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf (error, error_size, "socket: %s", strerror (errno));
        return -1;
    }
    socklen_t length = sizeof (address);
    int port = -1;
    if (bind (fd, (struct sockaddr *) &address, sizeof (address)) != 0
    ||  getsockname (fd, (struct sockaddr *) &address, &length) != 0)
        snprintf (error, error_size, "%s: cannot bind a port: %s", host, strerror (errno));
    else
        port = ntohs (address.sin_port);
    close (fd);
    return port;
}

//  --------------------------------------------------------------------------
//  Files, errors, checks, time

int
al_mkdir_p (const char *path, char *error, size_t error_size)
{
    char buffer [PATH_MAX];
    if (snprintf (buffer, sizeof (buffer), "%s", path) >= (int) sizeof (buffer)) {
        snprintf (error, error_size, "%s: path too long", path);
        return -1;
    }
    for (char *slash = buffer + 1; ; slash++) {
        bool last = *slash == 0;
        if (*slash == '/' || last) {
            *slash = 0;
            if (mkdir (buffer, 0700) != 0 && errno != EEXIST) {
                snprintf (error, error_size, "%s: %s", buffer, strerror (errno));
                return -1;
            }
            if (last)
                break;
            *slash = '/';
        }
    }
    struct stat info;
    if (stat (path, &info) != 0 || !S_ISDIR (info.st_mode)) {
        snprintf (error, error_size, "%s: not a directory", path);
        return -1;
    }
    return 0;
}

char *
al_file_tail (const char *path, size_t max, const al_redact_t *redact)
{
    char *raw = calloc (1, max + 1);
    size_t size = 0;
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (raw && fd >= 0) {
        off_t end = lseek (fd, 0, SEEK_END);
        off_t start = end > (off_t) max ? end - (off_t) max : 0;
        ssize_t got = pread (fd, raw, max, start);
        size = got > 0 ? (size_t) got : 0;
    }
    if (fd >= 0)
        close (fd);
    char *result = raw ? al_redact_text (redact, raw, size, NULL) : NULL;
    free (raw);
    return result ? result : strdup ("");
}

int
al_file_write (const char *path, const char *data, size_t size)
{
    int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    size_t done = 0;
    while (done < size) {
        ssize_t wrote = write (fd, data + done, size - done);
        if (wrote < 0 && errno == EINTR)
            continue;
        if (wrote <= 0)
            break;
        done += (size_t) wrote;
    }
    int rc = close (fd) == 0 && done == size ? 0 : -1;
    return rc;
}

void
al_error_set (char *error, size_t error_size, const al_redact_t *redact, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    vsnprintf (error, error_size, format, args);
    va_end (args);
    al_redact_buffer (redact, error, error_size);
}

bool
al_check_name (const char *value, size_t max, const char *what, char *error, size_t error_size)
{
    size_t length = value ? strlen (value) : 0;
    bool ok = length > 0 && length <= max;
    for (size_t i = 0; ok && i < length; i++) {
        char c = value [i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
          || c == '_' || c == '.' || c == '-';
    }
    if (ok && value [0] == '-')
        ok = false;
    if (!ok)
        snprintf (error, error_size, "%s: \"%.64s\" is not 1 to %zu of [A-Za-z0-9_.-] "
                  "(not starting with '-')", what, value ? value : "", max);
    return ok;
}

bool
al_check_text (const char *value, const char *what, char *error, size_t error_size)
{
    for (const unsigned char *c = (const unsigned char *) (value ? value : ""); *c; c++)
        if (*c < 0x20 || *c == 0x7f) {
            snprintf (error, error_size, "%s: holds a control character", what);
            return false;
        }
    return true;
}

bool
al_check_spec (const al_driver_spec_t *spec, char *error, size_t error_size)
{
    const al_driver_vars_t *vars = &spec->vars;
    if (!al_check_name (vars->service, 32, "service", error, error_size)
    ||  (spec->set && !al_check_name (spec->set, AL_DRIVER_SET_SIZE - 1, "set", error, error_size))
    ||  !al_check_text (vars->version, "version", error, error_size)
    ||  !al_check_text (vars->artifact, "artifact", error, error_size)
    ||  !al_check_text (vars->digest, "digest", error, error_size)
    ||  !al_check_text (vars->env, "env", error, error_size))
        return false;
    if (!vars->version || !*vars->version || strlen (vars->version) >= AL_DRIVER_VERSION_SIZE) {
        snprintf (error, error_size, "version: 1 to %d characters", AL_DRIVER_VERSION_SIZE - 1);
        return false;
    }
    if (spec->instance < 0 || spec->port < 0 || spec->port > 65535) {
        snprintf (error, error_size, "instance %d, port %d: out of range", spec->instance, spec->port);
        return false;
    }
    for (size_t i = 0; spec->extra_env && spec->extra_env [i]; i++)
        if (!strchr (spec->extra_env [i], '=') || spec->extra_env [i][0] == '=') {
            snprintf (error, error_size, "extra_env[%zu]: not NAME=value", i);
            return false;
        }
    return true;
}

double
al_now_ms (void)
{
    return (double) al_clock_mono_ms ();
}

void
al_sleep_ms (int milliseconds)
{
    al_clock_sleep_ms (milliseconds);
}

void
al_driver_probe_endpoint (const char *endpoint, al_driver_probe_kind_t kind, const char *liveness_path,
                          const char *readiness_path, int timeout_ms, al_probe_result_t *result)
{
    char url [AL_DRIVER_ENDPOINT_SIZE + 256];
    snprintf (url, sizeof (url), "%s%s", endpoint, kind == AL_DRIVER_LIVENESS ? liveness_path : readiness_path);
    al_probe_http (url, timeout_ms, result);
}
