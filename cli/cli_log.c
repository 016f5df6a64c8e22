/*  cli_log.c: stderr as JSON lines (see cli_log.h).

    Threading: one reader thread per process, started and stopped by the entry point's
    thread. The reader polls the pipe with a short timeout so that stop never waits on
    a writer that keeps a copy of the pipe (a child process that inherited fd 2): once
    stop has handed fd 2 back, the reader drains what is already in the pipe and ends.
*/
#include "cli/cli_log.h"
#include "base/al_clock.h"
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static struct {
    bool started;
    int real_stderr;            // a dup of the original fd 2
    int pipe_read;
    pthread_t reader;
    atomic_bool stopping;
    char component [64];
} s_log = { .real_stderr = -1, .pipe_read = -1 };

int
al_cli_log_format_option (const char *command, int argc, char **argv, int *index, int *json)
{
    const char *arg = argv [*index];
    const char *value = NULL;
    if (strncmp (arg, "--log-format=", 13) == 0)
        value = arg + 13;
    else
    if (strcmp (arg, "--log-format") == 0) {
        if (*index + 1 >= argc) {
            fprintf (stderr, "airlock %s: --log-format needs a value (text or json)\n", command);
            return -1;
        }
        value = argv [++*index];
    }
    else
        return 0;
    if (strcmp (value, "json") == 0)
        *json = 1;
    else
    if (strcmp (value, "text") == 0)
        *json = 0;
    else {
        fprintf (stderr, "airlock %s: --log-format: '%s' is not text or json\n", command, value);
        return -1;
    }
    return 1;
}

static const char *
s_level_of_letter (char letter)
{
    switch (letter) {
        case 'E': return "error";
        case 'W': return "warning";
        case 'N': return "notice";
        case 'I': return "info";
        case 'D': return "debug";
        default: return NULL;
    }
}

//  "X: YY-MM-DD HH:MM:SS " (zsys's prefix): its length, or 0.
static size_t
s_zsys_prefix (const char *line, size_t length)
{
    static const char pattern [] = "X: 00-00-00 00:00:00 ";
    size_t size = sizeof pattern - 1;
    if (length < size || !s_level_of_letter (line [0]))
        return 0;
    for (size_t i = 1; i < size; i++) {
        if (pattern [i] == '0' ? !isdigit ((unsigned char) line [i]) : line [i] != pattern [i])
            return 0;
    }
    return size;
}

static bool
s_says_error (const char *text)
{
    static const char *words [] = { "cannot", "failed", "error", "refused", "invalid" };
    for (size_t i = 0; i < sizeof words / sizeof words [0]; i++)
        if (strcasestr (text, words [i]))
            return true;
    return false;
}

char *
al_cli_log_json_line (const char *component, const char *line, size_t length, const char *time_text)
{
    const char *level = NULL;
    size_t prefix = s_zsys_prefix (line, length);
    if (prefix)
        level = s_level_of_letter (line [0]);
    char *message = strndup (line + prefix, length - prefix);
    if (!message)
        return NULL;
    if (!level)
        level = s_says_error (message)? "error": "info";
    json_t *text = json_string (message);
    if (!text) {
        //  Not UTF-8: keep the line readable rather than drop it.
        for (char *p = message; *p; p++)
            if ((unsigned char) *p >= 0x80)
                *p = '?';
        text = json_string (message);
    }
    free (message);
    if (!text)
        return NULL;
    json_t *object = json_pack ("{s:s, s:s, s:s, s:o}", "time", time_text, "level", level,
                                "component", component, "message", text);
    if (!object)
        return NULL;
    char *result = json_dumps (object, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref (object);
    return result;
}

static void
s_now_text (char *out, size_t size)
{
    al_clock_wall_iso8601 (al_clock_wall_ms (), out, size);
}

static void
s_emit (const char *line, size_t length)
{
    if (length && line [length - 1] == '\r')
        length--;
    char time_text [64];
    s_now_text (time_text, sizeof time_text);
    char *json = al_cli_log_json_line (s_log.component, line, length, time_text);
    if (!json)
        return;
    size_t size = strlen (json);
    //  One write per line: lines of concurrent writers never interleave within a line.
    char *out = malloc (size + 1);
    if (out) {
        memcpy (out, json, size);
        out [size] = '\n';
        ssize_t written = write (s_log.real_stderr, out, size + 1);
        (void) written;
        free (out);
    }
    free (json);
}

static void *
s_reader (void *arg)
{
    (void) arg;
    char *pending = NULL;
    size_t used = 0, capacity = 0;
    while (true) {
        struct pollfd item = { s_log.pipe_read, POLLIN, 0 };
        int ready = poll (&item, 1, 100);
        if (ready < 0 && errno != EINTR)
            break;
        ssize_t got = 0;
        if (ready > 0) {
            if (capacity - used < 4096) {
                char *grown = realloc (pending, capacity + 8192);
                if (!grown)
                    break;
                pending = grown;
                capacity += 8192;
            }
            got = read (s_log.pipe_read, pending + used, capacity - used);
            if (got > 0) {
                used += (size_t) got;
                char *start = pending, *newline;
                while ((newline = memchr (start, '\n', used - (size_t) (start - pending)))) {
                    s_emit (start, (size_t) (newline - start));
                    start = newline + 1;
                }
                used -= (size_t) (start - pending);
                memmove (pending, start, used);
                continue;
            }
        }
        //  End of file (every writer gone), or stopping with nothing left to read.
        if (got == 0 && ready > 0)
            break;
        if (ready == 0 && atomic_load (&s_log.stopping))
            break;
    }
    if (used)
        s_emit (pending, used);
    free (pending);
    return NULL;
}

int
al_cli_log_run (const char *command, const char *component, int argc, char **argv,
                int (*run) (int argc, char **argv))
{
    char **kept = calloc ((size_t) argc + 1, sizeof *kept);
    if (!kept)
        return 2;
    int count = 0, json = 0;
    for (int index = 0; index < argc; index++) {
        int taken = index? al_cli_log_format_option (command, argc, argv, &index, &json): 0;
        if (taken < 0) {
            free (kept);
            return 2;
        }
        if (!taken)
            kept [count++] = argv [index];
    }
    if (json && al_cli_log_json_start (component? component: command)) {
        fprintf (stderr, "airlock %s: --log-format json: cannot redirect stderr\n", command);
        free (kept);
        return 2;
    }
    int rc = run (count, kept);
    al_cli_log_json_stop ();
    free (kept);
    return rc;
}

int
al_cli_log_json_start (const char *component)
{
    if (s_log.started)
        return 0;
    int pipe_fds [2];
    if (pipe (pipe_fds))
        return -1;
    fflush (stderr);
    s_log.real_stderr = fcntl (STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
    if (s_log.real_stderr < 0 || dup2 (pipe_fds [1], STDERR_FILENO) < 0) {
        if (s_log.real_stderr >= 0)
            close (s_log.real_stderr);
        close (pipe_fds [0]);
        close (pipe_fds [1]);
        return -1;
    }
    close (pipe_fds [1]);
    fcntl (pipe_fds [0], F_SETFD, FD_CLOEXEC);
    s_log.pipe_read = pipe_fds [0];
    snprintf (s_log.component, sizeof s_log.component, "%s", component);
    atomic_store (&s_log.stopping, false);
    if (pthread_create (&s_log.reader, NULL, s_reader, NULL)) {
        dup2 (s_log.real_stderr, STDERR_FILENO);
        close (s_log.real_stderr);
        close (s_log.pipe_read);
        return -1;
    }
    //  stderr stays unbuffered: glibc formats each fprintf whole and writes it with one
    //  write(2), and a pipe write up to PIPE_BUF is atomic, so lines never mix.
    s_log.started = true;
    return 0;
}

void
al_cli_log_json_stop (void)
{
    if (!s_log.started)
        return;
    fflush (stderr);
    dup2 (s_log.real_stderr, STDERR_FILENO);
    atomic_store (&s_log.stopping, true);
    pthread_join (s_log.reader, NULL);
    close (s_log.pipe_read);
    close (s_log.real_stderr);
    s_log.started = false;
}
