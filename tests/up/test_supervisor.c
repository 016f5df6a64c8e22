/*  test_supervisor.c: agents/al_supervisor without the airlock binary.

    The children are small programs (/bin/sh scripts, sleep, a program that does not
    exist) in a temporary directory; the test drives al_supervisor_poll itself. Shown:
      - a "broker" killed again and again is restarted each time within its bound: the
        scheduled delay is 0.5 s, then never more than 1 s (issue 19: it doubled to 16 s),
        and the new pid appears well within a few seconds; the other child is untouched;
      - a crash-looping child's delay doubles up to its cap and no further, and the
        reason (exit 127, "cannot run" in its log) is reported;
      - al_supervisor_add_bus starts the broker and the five agents with --config,
        the monitor's --interval-ms and --log-format passed on; pid files hold the pids;
        stop stops the agents before the broker and removes the pid files;
      - bad children are refused with the name in the error; a second lock on the same
        run directory is refused with the holder's pid.
    Waits poll for a condition with a long deadline; the only times asserted are the
    bounds themselves, with seconds of slack for a busy machine.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "agents/al_supervisor.h"

#include <czmq.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_DEADLINE_MS 30000
#define S_SLACK_MS 4000             // a busy 2-core machine; the old doubling reached 16 s

typedef struct {
    char dir [256];
    char logs [300];
    char run [300];
    char report_path [300];
    FILE *report;
    al_supervisor_t *supervisor;
} fixture_t;

static int
s_setup (void **state)
{
    fixture_t *f = calloc (1, sizeof *f);
    assert_non_null (f);
    snprintf (f->dir, sizeof f->dir, "/tmp/test_supervisor.XXXXXX");
    assert_non_null (mkdtemp (f->dir));
    snprintf (f->logs, sizeof f->logs, "%s/logs", f->dir);
    snprintf (f->run, sizeof f->run, "%s/run", f->dir);
    snprintf (f->report_path, sizeof f->report_path, "%s/report", f->dir);
    assert_int_equal (mkdir (f->logs, 0700), 0);
    assert_int_equal (mkdir (f->run, 0700), 0);
    f->report = fopen (f->report_path, "w");
    assert_non_null (f->report);
    f->supervisor = al_supervisor_new (f->logs, f->run, f->report);
    assert_non_null (f->supervisor);
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    fixture_t *f = *state;
    al_supervisor_destroy (&f->supervisor);     // stops what still runs
    assert_null (f->supervisor);
    fclose (f->report);
    char command [400];
    snprintf (command, sizeof command, "rm -rf '%s'", f->dir);
    assert_int_equal (system (command), 0);
    free (f);
    return 0;
}

static char *
s_read (const char *path)
{
    FILE *file = fopen (path, "r");
    if (!file)
        return NULL;
    char *text = calloc (1, 65536);
    assert_non_null (text);
    size_t got = fread (text, 1, 65535, file);
    text [got] = 0;
    fclose (file);
    return text;
}

static char *
s_report (fixture_t *f)
{
    fflush (f->report);
    return s_read (f->report_path);
}

//  Poll the supervisor until child name runs with a pid other than old.
static pid_t
s_wait_new_pid (fixture_t *f, const char *name, pid_t old)
{
    int64_t deadline = zclock_mono () + S_DEADLINE_MS;
    while (zclock_mono () < deadline) {
        al_supervisor_poll (f->supervisor);
        pid_t pid = al_supervisor_pid (f->supervisor, name);
        if (pid > 0 && pid != old)
            return pid;
        zclock_sleep (10);
    }
    fail_msg ("%s was not restarted within %d ms", name, S_DEADLINE_MS);
    return 0;
}

//  Poll until path contains needle.
static void
s_wait_file_has (fixture_t *f, const char *path, const char *needle)
{
    int64_t deadline = zclock_mono () + S_DEADLINE_MS;
    while (zclock_mono () < deadline) {
        al_supervisor_poll (f->supervisor);
        char *text = s_read (path);
        bool found = text && strstr (text, needle);
        free (text);
        if (found)
            return;
        zclock_sleep (20);
    }
    char *text = s_read (path);
    fail_msg ("no '%s' in %s:\n%s", needle, path, text? text: "(missing)");
}

static void
s_add (fixture_t *f, const char *name, const char *const *argv, al_supervisor_backoff_t backoff, int rank)
{
    char error [256] = "";
    al_supervisor_child_t child = { .name = name, .argv = argv, .backoff = backoff, .stop_rank = rank };
    if (al_supervisor_add (f->supervisor, &child, error, sizeof error) != 0)
        fail_msg ("add %s: %s", name, error);
}

static void
test_broker_restart_is_bounded (void **state)
{
    fixture_t *f = *state;
    const char *forever [] = { "/bin/sh", "-c", "echo ready; exec sleep 600", NULL };
    s_add (f, "broker", forever, al_supervisor_broker_backoff, 1);
    s_add (f, "qa", forever, al_supervisor_agent_backoff, 0);
    al_supervisor_start (f->supervisor, NULL);
    pid_t broker = al_supervisor_pid (f->supervisor, "broker");
    pid_t qa = al_supervisor_pid (f->supervisor, "qa");
    assert_true (broker > 0 && qa > 0 && broker != qa);
    assert_int_equal (al_supervisor_last_delay_ms (f->supervisor, "broker"), -1);
    //  Six crashes in a row: a doubling from 0.5 s without the cap would be 16 s by now.
    const int expected [] = { 500, 1000, 1000, 1000, 1000, 1000 };
    for (int kill_index = 0; kill_index < 6; kill_index++) {
        int64_t killed_ms = zclock_mono ();
        assert_int_equal (kill (broker, SIGKILL), 0);
        pid_t again = s_wait_new_pid (f, "broker", broker);
        int64_t down_ms = zclock_mono () - killed_ms;
        int delay = al_supervisor_last_delay_ms (f->supervisor, "broker");
        if (delay != expected [kill_index])
            fail_msg ("kill %d: scheduled delay %d ms, expected %d", kill_index + 1, delay, expected [kill_index]);
        if (down_ms > 1000 + S_SLACK_MS)
            fail_msg ("kill %d: the broker was down %lld ms, more than its 1 s bound and %d ms of slack",
                      kill_index + 1, (long long) down_ms, S_SLACK_MS);
        assert_int_equal (al_supervisor_restarts (f->supervisor, "broker"), (unsigned) kill_index + 1);
        //  The pid file names the new pid.
        char path [400];
        snprintf (path, sizeof path, "%s/broker.pid", f->run);
        char *text = s_read (path);
        assert_non_null (text);
        assert_int_equal (atoi (text), again);
        free (text);
        broker = again;
    }
    assert_int_equal (al_supervisor_pid (f->supervisor, "qa"), qa);
    assert_int_equal (al_supervisor_restarts (f->supervisor, "qa"), 0);
    char *report = s_report (f);
    assert_non_null (strstr (report, "killed by signal 9 after "));
    assert_non_null (strstr (report, "; restart in 0.5 s\n"));
    assert_non_null (strstr (report, "; restart in 1.0 s\n"));
    assert_null (strstr (report, "restart in 2.0 s"));
    assert_non_null (strstr (report, "airlock up: broker restarted (pid "));
    free (report);
    //  Each start is told in the child's log before its own output.
    char path [400];
    snprintf (path, sizeof path, "%s/broker.log", f->logs);
    s_wait_file_has (f, path, "airlock up: broker started (pid ");
    char needle [96];
    snprintf (needle, sizeof needle, "airlock up: broker started (pid %d, restart 6)\nready\n", (int) broker);
    s_wait_file_has (f, path, needle);
    al_supervisor_stop (f->supervisor);
    assert_int_equal (al_supervisor_pid (f->supervisor, "broker"), 0);
    assert_int_equal (kill (broker, 0), -1);
    assert_int_equal (errno, ESRCH);
    assert_int_equal (kill (qa, 0), -1);
}

static void
test_crash_loop_doubles_to_the_cap (void **state)
{
    fixture_t *f = *state;
    const char *missing [] = { "/nonexistent/airlock-test-program", "arg", NULL };
    al_supervisor_backoff_t fast = { 50, 200, 60000 };
    s_add (f, "looper", missing, fast, 0);
    al_supervisor_start (f->supervisor, NULL);
    const int expected [] = { 50, 100, 200, 200, 200 };
    unsigned restarts = 0;
    for (int index = 0; index < 5; index++) {
        int64_t deadline = zclock_mono () + S_DEADLINE_MS;
        while (al_supervisor_restarts (f->supervisor, "looper") == restarts && zclock_mono () < deadline) {
            al_supervisor_poll (f->supervisor);
            zclock_sleep (5);
        }
        restarts = al_supervisor_restarts (f->supervisor, "looper");
        assert_int_equal (restarts, (unsigned) index + 1);
        assert_int_equal (al_supervisor_last_delay_ms (f->supervisor, "looper"), expected [index]);
    }
    char *report = s_report (f);
    assert_non_null (strstr (report, "airlock up: looper (pid "));
    assert_non_null (strstr (report, "exited with 127 after "));
    assert_non_null (strstr (report, "restart in 0.1 s"));
    free (report);
    char path [400];
    snprintf (path, sizeof path, "%s/looper.log", f->logs);
    char *log = s_read (path);
    assert_non_null (log);
    assert_non_null (strstr (log, "airlock up: cannot run /nonexistent/airlock-test-program: "));
    free (log);
    //  The bounds `airlock up` uses.
    assert_true (al_supervisor_broker_backoff.max_ms <= 1000);
    assert_true (al_supervisor_agent_backoff.max_ms <= 5000);
}

static void
test_bus_passes_options_and_stops_in_order (void **state)
{
    fixture_t *f = *state;
    //  A stand-in for the airlock binary: says how it was called, then waits.
    char program [400];
    snprintf (program, sizeof program, "%s/fake-airlock", f->dir);
    FILE *file = fopen (program, "w");
    assert_non_null (file);
    fprintf (file, "#!/bin/sh\necho \"argv: $*\"\nexec sleep 600\n");
    fclose (file);
    assert_int_equal (chmod (program, 0700), 0);
    al_supervisor_bus_t bus = { .executable = program, .config_path = "/x/airlock.yaml", .interval_ms = "250",
                                .log_format = "json" };
    char error [256] = "";
    assert_int_equal (al_supervisor_add_bus (f->supervisor, &bus, error, sizeof error), 0);
    al_supervisor_start (f->supervisor, NULL);
    const char *names [] = { "broker", "orchestrator", "qa", "deploy-manager", "monitor", "notifier" };
    const char *expected [] = {
        "argv: broker --config /x/airlock.yaml --log-format json\n",
        "argv: agent orchestrator --config /x/airlock.yaml --log-format json\n",
        "argv: agent qa --config /x/airlock.yaml --log-format json\n",
        "argv: agent deploy-manager --config /x/airlock.yaml --log-format json\n",
        "argv: agent monitor --config /x/airlock.yaml --interval-ms 250 --log-format json\n",
        "argv: agent notifier --config /x/airlock.yaml --log-format json\n",
    };
    pid_t pids [6];
    for (int index = 0; index < 6; index++) {
        char path [400];
        snprintf (path, sizeof path, "%s/%s.log", f->logs, names [index]);
        s_wait_file_has (f, path, expected [index]);
        pids [index] = al_supervisor_pid (f->supervisor, names [index]);
        assert_true (pids [index] > 0);
        snprintf (path, sizeof path, "%s/%s.pid", f->run, names [index]);
        char *text = s_read (path);
        assert_non_null (text);
        assert_int_equal (atoi (text), pids [index]);
        free (text);
        //  Its own process group.
        assert_int_equal (getpgid (pids [index]), pids [index]);
    }
    al_supervisor_stop (f->supervisor);
    char *report = s_report (f);
    const char *agents = strstr (report, "airlock up: stopping orchestrator qa deploy-manager monitor notifier\n");
    const char *broker = strstr (report, "airlock up: stopping broker\n");
    if (!agents || !broker || broker < agents)
        fail_msg ("the agents must stop before the broker:\n%s", report);
    for (int index = 0; index < 6; index++) {
        char needle [96], path [400];
        snprintf (needle, sizeof needle, "airlock up: %s (pid %d) stopped: killed by signal 15\n", names [index],
                  (int) pids [index]);
        if (!strstr (report, needle))
            fail_msg ("no '%s' in:\n%s", needle, report);
        snprintf (path, sizeof path, "%s/%s.pid", f->run, names [index]);
        assert_int_equal (access (path, F_OK), -1);
    }
    free (report);
}

static void
test_bad_children_and_second_lock (void **state)
{
    fixture_t *f = *state;
    char error [256];
    const char *argv [] = { "/bin/true", NULL };
    const char *empty [] = { NULL };
    al_supervisor_child_t child = { .name = "../evil", .argv = argv, .backoff = al_supervisor_agent_backoff };
    assert_int_equal (al_supervisor_add (f->supervisor, &child, error, sizeof error), -1);
    assert_non_null (strstr (error, "child '../evil'"));
    child.name = "ok";
    child.argv = empty;
    assert_int_equal (al_supervisor_add (f->supervisor, &child, error, sizeof error), -1);
    assert_non_null (strstr (error, "no program"));
    child.argv = argv;
    child.backoff = (al_supervisor_backoff_t) { 500, 100, 1000 };
    assert_int_equal (al_supervisor_add (f->supervisor, &child, error, sizeof error), -1);
    assert_non_null (strstr (error, "backoff"));
    child.backoff = al_supervisor_agent_backoff;
    assert_int_equal (al_supervisor_add (f->supervisor, &child, error, sizeof error), 0);
    assert_int_equal (al_supervisor_add (f->supervisor, &child, error, sizeof error), -1);
    assert_non_null (strstr (error, "already used"));

    assert_int_equal (al_supervisor_lock (f->supervisor, error, sizeof error), 0);
    al_supervisor_t *second = al_supervisor_new (f->logs, f->run, f->report);
    assert_non_null (second);
    assert_int_equal (al_supervisor_lock (second, error, sizeof error), -2);
    char needle [64];
    snprintf (needle, sizeof needle, "(pid %d)", (int) getpid ());
    assert_non_null (strstr (error, needle));
    al_supervisor_destroy (&second);
    assert_null (second);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_broker_restart_is_bounded, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_crash_loop_doubles_to_the_cap, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_bus_passes_options_and_stops_in_order, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_bad_children_and_second_lock, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
