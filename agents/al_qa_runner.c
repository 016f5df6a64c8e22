/*  al_qa_runner.c: the qa agent's suite runner (al_qa_run_suite, agents/al_qa_int.h).

    The argv from services.yaml runs through base/al_child (no shell, its own process
    group, nothing of ours open in it) in the directory of services.yaml, a relative
    program path being relative to that directory; stdout and stderr on one pipe, kept
    up to AL_QA_EVIDENCE_MAX_SIZE and drained beyond. After the suite exits, whatever
    is left of its process group is killed; at its timeout, or when a shutdown is
    asked for, the group gets SIGTERM, then SIGKILL half a second later. One suite at
    a time, on the calling thread.
*/
#include "agents/al_qa_int.h"
#include "agents/al_agent.h"
#include "base/al_child.h"
#include "base/al_clock.h"
#include <assert.h>
#include <czmq.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_KILL_GRACE_MS     500
#define S_SLICE_MS          20      // how often a shutdown and the deadline are looked at

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

//  Run suite in cwd with envp; its output, with what happened, into evidence_path.
void
al_qa_run_suite (const al_service_suite_t *suite, const char *cwd, char *const *envp,
             const char *evidence_path, al_qa_run_t *run)
{
    memset (run, 0, sizeof *run);
    //  A relative path names a file of the suite's directory; a bare name is looked
    //  up in PATH; argv[0] itself is passed on as written.
    const char *program = suite->argv [0];
    char *path = strchr (program, '/') && program [0] != '/' ? al_qa_printf ("%s/%s", cwd, program) : NULL;
    al_child_options_t options = {
        .cwd = cwd, .program = path, .environment = envp,
        .out = AL_CHILD_PIPE, .err = AL_CHILD_TO_STDOUT, .out_max = AL_QA_EVIDENCE_MAX_SIZE
    };
    int64_t started = al_clock_mono_ms ();
    al_child_t *child = al_child_start ((char *const *) suite->argv, &options, run->error, sizeof run->error);
    if (child) {
        run->started = true;
        int64_t deadline = started + suite->timeout_ms;
        while (!al_child_wait (child, S_SLICE_MS)) {
            if (al_agent_interrupted ())
                run->interrupted = true;
            else
            if (al_clock_mono_ms () >= deadline)
                run->timed_out = true;
            if (run->interrupted || run->timed_out) {
                al_child_kill (child, S_KILL_GRACE_MS);
                break;
            }
        }
        run->exit_code = al_child_exit_code (child);
        run->kept = 0;
        al_child_out (child, &run->kept);
        run->dropped = al_child_out_dropped (child);
    }
    run->duration_ms = (double) (al_clock_mono_ms () - started);

    const char *output = child ? al_child_out (child, NULL) : "";
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
    al_child_destroy (&child);
    free (path);
}
