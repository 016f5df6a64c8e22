/*  al_qa_runner.c: the qa agent's suite runner (al_qa_run_suite, agents/al_qa_int.h).

    fork and execve of the argv from services.yaml, no shell, in the directory of
    services.yaml, in a new process group; stdout and stderr on one pipe, kept up to
    AL_QA_EVIDENCE_MAX_SIZE and drained beyond; after the suite exits, or at its timeout
    (SIGTERM, then SIGKILL half a second later), whatever is left of its process group
    is killed before the leader is reaped, so the group id cannot be reused meanwhile. A
    shutdown request stops a running suite the same way. Between fork and execve the
    child makes only async-signal-safe calls; everything it needs is prepared before the
    fork. One suite at a time, on the calling thread.
*/
#include "agents/al_qa_int.h"
#include "agents/al_agent.h"
#include "base/al_clock.h"
#include <assert.h>
#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define S_KILL_GRACE_MS     500
#define S_DRAIN_MS          100

//  The program to execute: as given when it holds a '/' (relative to the suite's
//  directory), else looked up in PATH. False with error when not found.
static char *
s_resolve_program (const char *program, const char *cwd, char *error, size_t error_size)
{
    if (strchr (program, '/'))
        return program [0] == '/' ? al_qa_printf ("%s", program) : al_qa_printf ("%s/%s", cwd, program);
    const char *search = getenv ("PATH");
    if (!search || !*search)
        search = "/usr/local/bin:/usr/bin:/bin";
    char *copy = al_qa_printf ("%s", search);
    char *found = NULL;
    char *saveptr = NULL;
    for (char *dir = strtok_r (copy, ":", &saveptr); dir && !found; dir = strtok_r (NULL, ":", &saveptr)) {
        char *candidate = al_qa_printf ("%s/%s", dir, program);
        struct stat info;
        if (stat (candidate, &info) == 0 && S_ISREG (info.st_mode) && access (candidate, X_OK) == 0)
            found = candidate;
        else
            free (candidate);
    }
    free (copy);
    if (!found)
        snprintf (error, error_size, "%s: not found in PATH", program);
    return found;
}

//  argv as one line, single-quoting what a shell would split (for the evidence).
static char *
s_command_text (const char *const *argv)
{
    size_t capacity = 1;
    for (size_t i = 0; argv [i]; i++)
        capacity += strlen (argv [i]) * 4 + 3;
    char *text = malloc (capacity);
    assert (text);
    char *out = text;
    for (size_t i = 0; argv [i]; i++) {
        if (i)
            *out++ = ' ';
        bool plain = *argv [i] != 0;
        for (const char *c = argv [i]; *c && plain; c++)
            plain = strchr ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./:=@,+%", *c) != NULL;
        if (plain) {
            out = stpcpy (out, argv [i]);
            continue;
        }
        *out++ = '\'';
        for (const char *c = argv [i]; *c; c++)
            if (*c == '\'')
                out = stpcpy (out, "'\\''");
            else
                *out++ = *c;
        *out++ = '\'';
    }
    *out = '\0';
    return text;
}

//  Has pid exited? Looks without reaping: while the leader is a zombie its pid, the
//  group id, cannot be given to another process.
static bool
s_exited (pid_t pid)
{
    siginfo_t info;
    memset (&info, 0, sizeof info);
    return waitid (P_PID, (id_t) pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid;
}

//  Read what the pipe holds, waiting up to wait_ms; keep up to the bound. Returns
//  false once the pipe is closed.
static bool
s_read_output (int fd, int wait_ms, char *output, al_qa_run_t *run)
{
    struct pollfd item = { .fd = fd, .events = POLLIN };
    if (poll (&item, 1, wait_ms) <= 0)
        return true;
    char chunk [16384];
    ssize_t got = read (fd, chunk, sizeof chunk);
    if (got < 0)
        return errno == EINTR || errno == EAGAIN;
    if (got == 0)
        return false;
    size_t keep = (size_t) got;
    if (run->kept + keep > AL_QA_EVIDENCE_MAX_SIZE)
        keep = AL_QA_EVIDENCE_MAX_SIZE - run->kept;
    memcpy (output + run->kept, chunk, keep);
    run->kept += keep;
    run->dropped += (size_t) got - keep;
    return true;
}

//  Run suite in cwd with envp; its output, with what happened, into evidence_path.
void
al_qa_run_suite (const al_service_suite_t *suite, const char *cwd, char *const *envp,
             const char *evidence_path, al_qa_run_t *run)
{
    memset (run, 0, sizeof *run);
    char *output = malloc (AL_QA_EVIDENCE_MAX_SIZE);
    assert (output);
    int out [2] = { -1, -1 }, report [2] = { -1, -1 }, null_fd = -1;
    char *path = s_resolve_program (suite->argv [0], cwd, run->error, sizeof run->error);
    double started = (double) al_clock_mono_ms ();
    if (!path)
        goto evidence;
    if (pipe2 (out, O_CLOEXEC) != 0 || pipe2 (report, O_CLOEXEC) != 0
    ||  (null_fd = open ("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
        snprintf (run->error, sizeof run->error, "pipe: %s", strerror (errno));
        goto evidence;
    }
    pid_t pid = fork ();
    if (pid < 0) {
        snprintf (run->error, sizeof run->error, "fork: %s", strerror (errno));
        goto evidence;
    }
    if (pid == 0) {
        //  The child: async-signal-safe calls only.
        setpgid (0, 0);
        sigset_t none;
        sigemptyset (&none);
        sigprocmask (SIG_SETMASK, &none, NULL);
        for (int sig = 1; sig < NSIG; sig++)
            if (sig != SIGKILL && sig != SIGSTOP)
                signal (sig, SIG_DFL);
        int failure [2] = { 0, 0 };         // stage (0 setup, 1 directory, 2 exec), errno
        if (dup2 (null_fd, 0) < 0 || dup2 (out [1], 1) < 0 || dup2 (out [1], 2) < 0)
            failure [1] = errno;
        else
        if (chdir (cwd) != 0) {
            failure [0] = 1;
            failure [1] = errno;
        }
        else {
            //  Nothing of the agent's but the report pipe: the host may hold descriptors
            //  (sockets, databases) that are not close-on-exec.
            int keep = report [1];
            if (keep > 3)
                close_range (3, (unsigned) keep - 1, 0);
            close_range ((unsigned) keep + 1, ~0U, 0);
            execve (path, (char *const *) suite->argv, envp);
            failure [0] = 2;
            failure [1] = errno;
        }
        (void) !write (report [1], failure, sizeof failure);
        _exit (127);
    }
    //  Also from here, so that the group exists before we may signal it.
    setpgid (pid, pid);
    close (out [1]);
    close (report [1]);
    close (null_fd);
    out [1] = report [1] = null_fd = -1;
    int failure [2] = { 0, 0 };
    ssize_t got;
    do
        got = read (report [0], failure, sizeof failure);
    while (got < 0 && errno == EINTR);
    if (got == (ssize_t) sizeof failure) {
        while (waitpid (pid, NULL, 0) < 0 && errno == EINTR)
            ;
        snprintf (run->error, sizeof run->error, "%s %s: %s",
                  failure [0] == 1 ? "cannot enter the directory" : failure [0] == 2 ? "cannot execute" : "cannot set up",
                  failure [0] == 1 ? cwd : path, strerror (failure [1]));
        goto evidence;
    }
    run->started = true;
    double deadline = started + suite->timeout_ms;
    bool open = true, exited = false;
    while (!(exited = s_exited (pid))) {
        if (al_agent_interrupted ()) {
            run->interrupted = true;
            break;
        }
        if ((double) al_clock_mono_ms () >= deadline) {
            run->timed_out = true;
            break;
        }
        if (open)
            open = s_read_output (out [0], 20, output, run);
        else
            usleep (20000);
    }
    if (!exited) {
        kill (-pid, SIGTERM);
        double grace = (double) al_clock_mono_ms () + S_KILL_GRACE_MS;
        while (!s_exited (pid) && (double) al_clock_mono_ms () < grace)
            if (!open || !(open = s_read_output (out [0], 20, output, run)))
                usleep (20000);
    }
    //  What the suite left in its group (servers, stuck children) goes with it.
    kill (-pid, SIGKILL);
    int status = 0;
    while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
        ;
    run->exit_code = WIFEXITED (status) ? WEXITSTATUS (status) : WIFSIGNALED (status) ? -WTERMSIG (status) : -1;
    run->duration_ms = (double) al_clock_mono_ms () - started;
    //  What was written before the end; a process outside the group that kept the
    //  pipe open is not waited for.
    double drain = (double) al_clock_mono_ms () + S_DRAIN_MS;
    while (open && (double) al_clock_mono_ms () < drain)
        open = s_read_output (out [0], 10, output, run);

evidence:
    if (!run->started && run->duration_ms == 0)
        run->duration_ms = (double) al_clock_mono_ms () - started;
    char *command = s_command_text (suite->argv);
    char *header = run->started
        ? al_qa_printf ("suite: %s\ncommand: %s\ndirectory: %s\nexit_code: %d\ntimed_out: %s\ninterrupted: %s\n"
                    "duration_ms: %.1f\noutput_kept_bytes: %zu\noutput_dropped_bytes: %zu\n"
                    "--- output (stdout and stderr) ---\n",
                    suite->name, command, cwd, run->exit_code, run->timed_out ? "true" : "false",
                    run->interrupted ? "true" : "false", run->duration_ms, run->kept, run->dropped)
        : al_qa_printf ("suite: %s\ncommand: %s\ndirectory: %s\nnot started: %s\n", suite->name, command, cwd,
                    run->error);
    size_t header_size = strlen (header);
    char *text = malloc (header_size + run->kept + 1);
    assert (text);
    memcpy (text, header, header_size);
    memcpy (text + header_size, output, run->kept);
    if (al_qa_write_file (evidence_path, text, header_size + run->kept) != 0)
        zsys_warning ("qa: %s: cannot write evidence: %s", evidence_path, strerror (errno));
    free (text);
    free (header);
    free (command);
    for (int i = 0; i < 2; i++) {
        if (out [i] >= 0)
            close (out [i]);
        if (report [i] >= 0)
            close (report [i]);
    }
    if (null_fd >= 0)
        close (null_fd);
    free (path);
    free (output);
}
