/*  test_child.c: al_child, the one fork/exec.

    Real programs (/bin/sh, cat, sleep) are run: output captured within its limit,
    stdin fed from a buffer, cwd and environment additions applied, exit codes and
    signals decoded into text, a missing program or directory reported by start, a
    program executed other than argv[0] (which the child still sees), a
    deadline met by killing the whole group (a grandchild included), and no
    descriptor of ours leaked into the child. The hold gate: a held child executes its
    program only once released; refused, destroyed, or with its parent killed while it
    waits, it never does (a marker file its program would write stays absent).
    keep_leftovers: what the leader left runs on after a normal end, but not after a kill.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "base/al_child.h"
#include "base/al_clock.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void
test_capture_and_exit_code (void **state)
{
    (void) state;
    char *argv [] = { "sh", "-c", "echo out; echo err >&2; exit 3", NULL };
    al_child_options_t options = { .out = AL_CHILD_PIPE, .err = AL_CHILD_PIPE };
    char error [256] = "";
    al_child_t *child = al_child_run (argv, &options, 60000, NULL, error, sizeof error);
    assert_non_null (child);
    assert_true (al_child_exited (child));
    assert_int_equal (al_child_exit_code (child), 3);
    assert_string_equal (al_child_status_text (child), "exited 3");
    assert_string_equal (al_child_out (child, NULL), "out\n");
    assert_string_equal (al_child_err (child, NULL), "err\n");
    al_child_destroy (&child);
    assert_null (child);
    al_child_destroy (&child);      // NULL-safe
}

static void
test_merge_and_limit (void **state)
{
    (void) state;
    //  100000 bytes on stdout, then a line on stderr merged into it; keep 1000.
    char *argv [] = { "sh", "-c", "head -c 100000 /dev/zero | tr '\\0' a; echo tail >&2", NULL };
    al_child_options_t options = { .out = AL_CHILD_PIPE, .err = AL_CHILD_TO_STDOUT, .out_max = 1000 };
    char error [256] = "";
    al_child_t *child = al_child_run (argv, &options, 60000, NULL, error, sizeof error);
    assert_non_null (child);
    size_t size = 0;
    const char *out = al_child_out (child, &size);
    assert_int_equal (size, 1000);
    assert_int_equal (strlen (out), 1000);
    assert_int_equal (out [999], 'a');
    assert_int_equal (al_child_out_dropped (child), 100000 - 1000 + 5);
    assert_int_equal (al_child_exit_code (child), 0);
    al_child_destroy (&child);
}

static void
test_stdin_cwd_environment (void **state)
{
    (void) state;
    //  More input than a pipe buffer holds: the writer must not block.
    size_t input_size = 300000;
    char *input = malloc (input_size);
    memset (input, 'x', input_size);
    char *argv [] = { "sh", "-c", "wc -c; pwd; echo \"$AL_TEST_ONE $HOME\"", NULL };
    char *environment [] = { "HOME=/home/nobody", "PATH=/usr/bin:/bin", NULL };
    char *add [] = { "AL_TEST_ONE=one", "HOME=/replaced", NULL };
    al_child_options_t options = {
        .cwd = "/tmp", .environment = environment, .environment_add = add,
        .in = AL_CHILD_PIPE, .input = input, .input_size = input_size, .out = AL_CHILD_PIPE
    };
    char error [256] = "";
    al_child_t *child = al_child_run (argv, &options, 60000, NULL, error, sizeof error);
    assert_non_null (child);
    assert_string_equal (al_child_out (child, NULL), "300000\n/tmp\none /replaced\n");
    al_child_destroy (&child);
    //  A child that does not read its input does not kill us with SIGPIPE.
    char *quit [] = { "true", NULL };
    child = al_child_run (quit, &options, 60000, NULL, error, sizeof error);
    assert_non_null (child);
    assert_int_equal (al_child_exit_code (child), 0);
    al_child_destroy (&child);
    free (input);
    //  Default stdin is /dev/null: cat ends at once with nothing.
    char *cat [] = { "cat", NULL };
    al_child_options_t capture = { .out = AL_CHILD_PIPE };
    child = al_child_run (cat, &capture, 60000, NULL, error, sizeof error);
    assert_non_null (child);
    assert_string_equal (al_child_out (child, NULL), "");
    assert_int_equal (al_child_exit_code (child), 0);
    al_child_destroy (&child);
}

static void
test_start_failures (void **state)
{
    (void) state;
    char error [256] = "";
    char *missing [] = { "al-no-such-program-anywhere", NULL };
    assert_null (al_child_start (missing, NULL, error, sizeof error));
    assert_string_equal (error, "al-no-such-program-anywhere: not found in PATH");
    char *not_executable [] = { "/etc/hostname", NULL };
    assert_null (al_child_start (not_executable, NULL, error, sizeof error));
    assert_non_null (strstr (error, "/etc/hostname"));
    char *argv [] = { "true", NULL };
    al_child_options_t options = { .cwd = "/no/such/directory" };
    assert_null (al_child_start (argv, &options, error, sizeof error));
    assert_non_null (strstr (error, "cannot enter the directory /no/such/directory"));
    assert_non_null (strstr (error, strerror (ENOENT)));
}

//  options.program is what runs; argv[0] is only the name the child sees.
static void
test_program_other_than_argv0 (void **state)
{
    (void) state;
    char *argv [] = { "al-seen-name", "-c", "echo \"$0\"", NULL };
    al_child_options_t options = { .program = "/bin/sh", .out = AL_CHILD_PIPE };
    char error [256] = "";
    al_child_t *child = al_child_run (argv, &options, 60000, NULL, error, sizeof error);
    assert_non_null (child);
    assert_string_equal (al_child_status_text (child), "exited 0");
    assert_string_equal (al_child_out (child, NULL), "al-seen-name\n");
    al_child_destroy (&child);
    //  Resolved as argv[0] would be, and named in the error.
    al_child_options_t missing = { .program = "/no/such/al-program" };
    assert_null (al_child_start (argv, &missing, error, sizeof error));
    assert_non_null (strstr (error, "/no/such/al-program"));
}

static void
test_signal_text (void **state)
{
    (void) state;
    char *argv [] = { "sh", "-c", "kill -9 $$", NULL };
    char error [256] = "";
    al_child_t *child = al_child_run (argv, NULL, 60000, NULL, error, sizeof error);
    assert_non_null (child);
    assert_int_equal (al_child_exit_code (child), -9);
    assert_string_equal (al_child_status_text (child), "killed by signal 9");
    al_child_destroy (&child);
    char text [64];
    assert_string_equal (al_child_describe_status (0, text, sizeof text), "exited 0");
}

//  True when pid no longer exists (or is a zombie of someone else's: gone for us).
static bool
s_gone (pid_t pid)
{
    int64_t deadline = al_clock_deadline_ms (60000);
    while (al_clock_remaining_ms (deadline) > 0) {
        if (kill (pid, 0) != 0 && errno == ESRCH)
            return true;
        char path [64], line [256];
        snprintf (path, sizeof path, "/proc/%d/stat", (int) pid);
        FILE *file = fopen (path, "r");
        if (file) {
            bool zombie = fgets (line, sizeof line, file) && strstr (line, ") Z ");
            fclose (file);
            if (zombie)
                return true;
        }
        al_clock_sleep_ms (20);
    }
    return false;
}

static void
test_deadline_kills_the_group (void **state)
{
    (void) state;
    //  The shell starts a grandchild that ignores SIGTERM, prints its pid, and waits.
    char *argv [] = { "sh", "-c", "sh -c 'trap \"\" TERM; sleep 600' & echo $!; wait", NULL };
    al_child_options_t options = { .out = AL_CHILD_PIPE };
    char error [256] = "";
    al_child_t *child = al_child_start (argv, &options, error, sizeof error);
    assert_non_null (child);
    //  Until the grandchild's pid was printed.
    int64_t deadline = al_clock_deadline_ms (60000);
    while (!strchr (al_child_out (child, NULL), '\n') && al_clock_remaining_ms (deadline) > 0)
        assert_false (al_child_wait (child, 20));
    pid_t grandchild = (pid_t) atoi (al_child_out (child, NULL));
    assert_true (grandchild > 0);
    assert_false (al_child_wait (child, 100));
    assert_string_equal (al_child_status_text (child), "running");
    //  TERM kills the shell (default disposition); the grandchild that ignores TERM
    //  goes with the group.
    al_child_kill (child, 5000);
    assert_true (al_child_exited (child));
    assert_true (s_gone (grandchild));
    al_child_destroy (&child);
    //  al_child_run with a deadline.
    char *sleeper [] = { "sleep", "600", NULL };
    bool timed_out = false;
    child = al_child_run (sleeper, NULL, 200, &timed_out, error, sizeof error);
    assert_non_null (child);
    assert_true (timed_out);
    assert_string_equal (al_child_status_text (child), "killed by signal 15");
    al_child_destroy (&child);
}

static void
test_no_descriptor_leaks (void **state)
{
    (void) state;
    //  A descriptor of ours without close-on-exec must not reach the child.
    int fd = open ("/dev/null", O_RDONLY);
    assert_true (fd > 2);
    char *argv [] = { "sh", "-c", "ls /proc/self/fd | wc -l", NULL };
    al_child_options_t options = { .out = AL_CHILD_PIPE };
    char error [256] = "";
    al_child_t *child = al_child_run (argv, &options, 60000, NULL, error, sizeof error);
    assert_non_null (child);
    //  ls sees 0, 1, 2 and its own directory descriptor.
    assert_int_equal (atoi (al_child_out (child, NULL)), 4);
    al_child_destroy (&child);
    close (fd);
}

static void
test_process_group (void **state)
{
    (void) state;
    //  Field 5 of /proc/self/stat is the process group of cut, which is its shell's.
    char *argv [] = { "sh", "-c", "cut -d' ' -f5 /proc/self/stat", NULL };
    al_child_options_t options = { .out = AL_CHILD_PIPE };
    char error [256] = "";
    al_child_t *child = al_child_run (argv, &options, 60000, NULL, error, sizeof error);
    assert_non_null (child);
    assert_int_equal (atoi (al_child_out (child, NULL)), al_child_pid (child));
    al_child_destroy (&child);
    //  same_group: ours (a terminal prompt would stop a child in a group of its own).
    options.same_group = true;
    child = al_child_run (argv, &options, 60000, NULL, error, sizeof error);
    assert_non_null (child);
    assert_int_equal (atoi (al_child_out (child, NULL)), getpgrp ());
    al_child_destroy (&child);
    //  Killed by its pid alone.
    char *sleeper [] = { "sleep", "600", NULL };
    bool timed_out = false;
    child = al_child_run (sleeper, &options, 100, &timed_out, error, sizeof error);
    assert_non_null (child);
    assert_true (timed_out);
    assert_string_equal (al_child_status_text (child), "killed by signal 15");
    al_child_destroy (&child);
}

//  ---- the hold gate -----------------------------------------------------------------

//  A fresh directory and, in it, the path of the marker the held program would write.
static void
s_marker (char *dir, size_t dir_size, char *marker, size_t marker_size)
{
    snprintf (dir, dir_size, "/tmp/al-test-child-XXXXXX");
    assert_non_null (mkdtemp (dir));
    snprintf (marker, marker_size, "%s/ran", dir);
}

static void
s_marker_cleanup (const char *dir, const char *marker)
{
    unlink (marker);
    assert_int_equal (rmdir (dir), 0);
}

static bool
s_exists (const char *path)
{
    struct stat info;
    return stat (path, &info) == 0;
}

//  How many descriptors pid holds.
static int
s_descriptors (pid_t pid)
{
    char path [64];
    snprintf (path, sizeof path, "/proc/%d/fd", (int) pid);
    DIR *dir = opendir (path);
    assert_non_null (dir);
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir (dir)) != NULL)
        count += entry->d_name [0] != '.';
    closedir (dir);
    return count;
}

static void
test_hold_until_released (void **state)
{
    (void) state;
    char dir [64], marker [96], script [160];
    s_marker (dir, sizeof dir, marker, sizeof marker);
    snprintf (script, sizeof script, "echo ran > %s; echo out", marker);
    char *argv [] = { "sh", "-c", script, NULL };
    //  A descriptor of ours without close-on-exec, and another held child's gate, must
    //  not be open in the held child.
    int fd = open ("/dev/null", O_RDONLY);
    assert_true (fd > 2);
    al_child_options_t options = { .hold = true, .out = AL_CHILD_PIPE };
    char error [256] = "";
    char *other_argv [] = { "true", NULL };
    al_child_t *other = al_child_start (other_argv, &options, error, sizeof error);
    assert_non_null (other);
    al_child_t *child = al_child_start (argv, &options, error, sizeof error);
    assert_non_null (child);
    close (fd);
    assert_true (al_child_held (child));
    pid_t pid = al_child_pid (child);
    assert_true (pid > 0);
    assert_int_equal (getpgid (pid), pid);          // its group exists before it runs
    //  It waits: not exited, the marker absent, for as long as we hold it.
    assert_false (al_child_wait (child, 500));
    assert_false (s_exists (marker));
    assert_string_equal (al_child_status_text (child), "running");
    //  0, 1, 2, its report pipe and its gate: nothing else of ours.
    assert_int_equal (s_descriptors (pid), 5);
    assert_true (al_child_release (child, error, sizeof error));
    assert_false (al_child_held (child));
    assert_true (al_child_wait (child, 60000));
    assert_string_equal (al_child_status_text (child), "exited 0");
    assert_string_equal (al_child_out (child, NULL), "out\n");
    assert_true (s_exists (marker));
    al_child_destroy (&child);
    //  The other one, released too, runs its own program.
    assert_true (al_child_release (other, error, sizeof error));
    assert_true (al_child_wait (other, 60000));
    assert_int_equal (al_child_exit_code (other), 0);
    al_child_destroy (&other);
    s_marker_cleanup (dir, marker);
}

static void
test_hold_refused (void **state)
{
    (void) state;
    char dir [64], marker [96], script [160];
    s_marker (dir, sizeof dir, marker, sizeof marker);
    snprintf (script, sizeof script, "echo ran > %s", marker);
    char *argv [] = { "sh", "-c", script, NULL };
    al_child_options_t options = { .hold = true };
    char error [256] = "";
    //  Refused: it exits 127 by itself (no signal), never executing its program.
    al_child_t *child = al_child_start (argv, &options, error, sizeof error);
    assert_non_null (child);
    assert_false (al_child_wait (child, 200));
    al_child_refuse (child);
    assert_false (al_child_held (child));
    assert_true (al_child_exited (child));
    assert_string_equal (al_child_status_text (child), "exited 127");
    al_child_destroy (&child);
    //  Destroyed while held: the same.
    child = al_child_start (argv, &options, error, sizeof error);
    assert_non_null (child);
    pid_t pid = al_child_pid (child);
    al_child_destroy (&child);
    assert_true (s_gone (pid));
    //  Killed at its gate, then released: reported, not run.
    child = al_child_start (argv, &options, error, sizeof error);
    assert_non_null (child);
    al_child_kill (child, 5000);
    assert_false (al_child_release (child, error, sizeof error));
    assert_non_null (strstr (error, "killed by signal 15 before its release"));
    al_child_destroy (&child);
    //  A setup failure (its directory) is reported by the release.
    options.cwd = "/no/such/directory";
    child = al_child_start (argv, &options, error, sizeof error);
    assert_non_null (child);
    assert_false (al_child_release (child, error, sizeof error));
    assert_non_null (strstr (error, "cannot enter the directory /no/such/directory"));
    assert_true (al_child_exited (child));
    al_child_destroy (&child);
    assert_false (s_exists (marker));
    s_marker_cleanup (dir, marker);
}

//  The parent of a held child is killed: the child sees its gate close and exits 127
//  without executing its program. The test adopts orphans (a child subreaper) to see
//  the held child's end.
static void
test_hold_parent_killed (void **state)
{
    (void) state;
    char dir [64], marker [96], script [160];
    s_marker (dir, sizeof dir, marker, sizeof marker);
    snprintf (script, sizeof script, "echo ran > %s", marker);
    assert_int_equal (prctl (PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
    int channel [2];
    assert_int_equal (pipe (channel), 0);
    pid_t parent = fork ();
    assert_true (parent >= 0);
    if (parent == 0) {
        //  The parent to be killed: holds a child, says its pid, waits for its end.
        close (channel [0]);
        char *argv [] = { "sh", "-c", script, NULL };
        al_child_options_t options = { .hold = true };
        char error [256];
        al_child_t *child = al_child_start (argv, &options, error, sizeof error);
        pid_t pid = child ? al_child_pid (child) : -1;
        (void) !write (channel [1], &pid, sizeof pid);
        while (true)
            pause ();
    }
    close (channel [1]);
    pid_t held = -1;
    assert_int_equal (read (channel [0], &held, sizeof held), (ssize_t) sizeof held);
    close (channel [0]);
    assert_true (held > 0);
    assert_int_equal (kill (parent, SIGKILL), 0);
    int status = 0;
    assert_int_equal (waitpid (parent, &status, 0), parent);
    //  The orphan is ours now; it ends by itself.
    int64_t deadline = al_clock_deadline_ms (60000);
    pid_t reaped = 0;
    while (reaped == 0 && al_clock_remaining_ms (deadline) > 0) {
        reaped = waitpid (held, &status, WNOHANG);
        if (reaped == 0)
            al_clock_sleep_ms (20);
    }
    assert_int_equal (reaped, held);
    assert_true (WIFEXITED (status));
    assert_int_equal (WEXITSTATUS (status), 127);
    assert_false (s_exists (marker));
    assert_int_equal (prctl (PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0), 0);
    s_marker_cleanup (dir, marker);
}

//  keep_leftovers: a program the leader started in its group runs on after the leader
//  ended (its output no longer waited for past drain_ms); a kill takes it along.
static void
test_keep_leftovers (void **state)
{
    (void) state;
    char *argv [] = { "sh", "-c", "sleep 600 & echo $!", NULL };
    al_child_options_t options = { .keep_leftovers = true, .drain_ms = 100, .out = AL_CHILD_PIPE };
    char error [256] = "";
    al_child_t *child = al_child_run (argv, &options, 60000, NULL, error, sizeof error);
    assert_non_null (child);
    assert_int_equal (al_child_exit_code (child), 0);
    pid_t leftover = (pid_t) atoi (al_child_out (child, NULL));
    assert_true (leftover > 0);
    assert_int_equal (kill (leftover, 0), 0);
    assert_int_equal (kill (leftover, SIGKILL), 0);
    al_child_destroy (&child);
    //  Killed: the group goes, keep_leftovers or not.
    char *waiting [] = { "sh", "-c", "sleep 600 & echo $!; wait", NULL };
    child = al_child_start (waiting, &options, error, sizeof error);
    assert_non_null (child);
    int64_t deadline = al_clock_deadline_ms (60000);
    while (!strchr (al_child_out (child, NULL), '\n') && al_clock_remaining_ms (deadline) > 0)
        assert_false (al_child_wait (child, 20));
    leftover = (pid_t) atoi (al_child_out (child, NULL));
    assert_true (leftover > 0);
    al_child_kill (child, 5000);
    assert_true (s_gone (leftover));
    al_child_destroy (&child);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_capture_and_exit_code),
        cmocka_unit_test (test_merge_and_limit),
        cmocka_unit_test (test_stdin_cwd_environment),
        cmocka_unit_test (test_start_failures),
        cmocka_unit_test (test_program_other_than_argv0),
        cmocka_unit_test (test_signal_text),
        cmocka_unit_test (test_deadline_kills_the_group),
        cmocka_unit_test (test_no_descriptor_leaks),
        cmocka_unit_test (test_process_group),
        cmocka_unit_test (test_hold_until_released),
        cmocka_unit_test (test_hold_refused),
        cmocka_unit_test (test_hold_parent_killed),
        cmocka_unit_test (test_keep_leftovers),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
