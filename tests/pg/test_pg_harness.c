/*  test_pg_harness.c: the throwaway PostgreSQL server starts as an unprivileged user on
    loopback, answers SQL with durable settings, gives each test its own database, keeps
    its data across a crash and a restart on the same port, and leaves nothing behind:
    neither when destroyed nor when the test process dies without destroying it.
*/
#include "pg_harness.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char *
s_sql (pg_harness_t *harness, const char *dbname, const char *sql)
{
    char error [1024];
    char *value = pg_harness_sql (harness, dbname, sql, error, sizeof error);
    if (!value)
        fail_msg ("%s", error);
    return value;
}

static void
s_assert_sql (pg_harness_t *harness, const char *dbname, const char *sql, const char *expected)
{
    char *value = s_sql (harness, dbname, sql);
    assert_string_equal (value, expected);
    free (value);
}

static bool
s_exists (const char *path)
{
    struct stat info;
    return stat (path, &info) == 0;
}

static void
test_start_query_restart_destroy (void **state)
{
    (void) state;
    char error [2048];
    pg_harness_t *harness = pg_harness_new (error, sizeof error);
    if (!harness)
        fail_msg ("%s", error);
    assert_true (pg_harness_running (harness));
    assert_true (pg_harness_port (harness) > 0);
    char *dir = strdup (pg_harness_dir (harness));

    //  Durable defaults, the expected superuser, and not running as root.
    s_assert_sql (harness, "postgres", "SHOW synchronous_commit", "on");
    s_assert_sql (harness, "postgres", "SHOW fsync", "on");
    s_assert_sql (harness, "postgres", "SELECT current_user", "airlock");
    s_assert_sql (harness, "postgres", "SHOW listen_addresses", "127.0.0.1");
    char pid_path [4200];
    snprintf (pid_path, sizeof pid_path, "%s/data/postmaster.pid", dir);
    struct stat info;
    assert_int_equal (stat (pid_path, &info), 0);
    assert_int_not_equal (info.st_uid, 0);

    //  Databases of their own, reachable through the DSN.
    char *first = pg_harness_database_new (harness, "case", error, sizeof error);
    if (!first)
        fail_msg ("%s", error);
    char *second = pg_harness_database_new (harness, "case", error, sizeof error);
    assert_non_null (second);
    assert_string_not_equal (first, second);
    assert_non_null (strstr (first, "dbname=case_1"));
    s_assert_sql (harness, "case_1", "CREATE TABLE t (v int); INSERT INTO t VALUES (42); SELECT v FROM t", "42");
    s_assert_sql (harness, "case_2", "SELECT count(*) FROM pg_tables WHERE tablename = 't'", "0");
    //  Errors come back with the server's message.
    assert_null (pg_harness_sql (harness, "case_1", "SELECT * FROM nope", error, sizeof error));
    assert_non_null (strstr (error, "nope"));

    //  A crash and a restart: same port, committed data kept.
    int port = pg_harness_port (harness);
    assert_int_equal (pg_harness_kill (harness), 0);
    assert_false (pg_harness_running (harness));
    assert_null (pg_harness_sql (harness, "case_1", "SELECT 1", error, sizeof error));
    assert_int_equal (pg_harness_start (harness, error, sizeof error), 0);
    assert_int_equal (pg_harness_port (harness), port);
    s_assert_sql (harness, "case_1", "SELECT v FROM t", "42");

    pg_harness_destroy (&harness);
    assert_null (harness);
    assert_false (s_exists (dir));
    free (first);
    free (second);
    free (dir);
}

//  A test process that dies without destroying its harness: the watchdog stops the
//  server and deletes the directory.
static void
test_watchdog_cleans_up_after_a_dead_test (void **state)
{
    (void) state;
    int pipe_fds [2];
    assert_int_equal (pipe (pipe_fds), 0);
    pid_t child = fork ();
    assert_true (child >= 0);
    if (child == 0) {
        close (pipe_fds [0]);
        char error [2048];
        pg_harness_t *harness = pg_harness_new (error, sizeof error);
        char line [4200];
        snprintf (line, sizeof line, "%d %s\n", harness? pg_harness_port (harness): 0,
                  harness? pg_harness_dir (harness): error);
        if (write (pipe_fds [1], line, strlen (line)) < 0)
            _exit (2);
        _exit (harness? 0: 1);      // no destroy: as if the test crashed
    }
    close (pipe_fds [1]);
    char line [4200] = "";
    ssize_t size = read (pipe_fds [0], line, sizeof line - 1);
    close (pipe_fds [0]);
    int status = 0;
    waitpid (child, &status, 0);
    assert_true (size > 0);
    line [size] = 0;
    if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
        fail_msg ("child harness failed: %s", line);
    char dir [4200];
    int port = 0;
    assert_int_equal (sscanf (line, "%d %4199s", &port, dir), 2);
    assert_true (port > 0);
    //  Generous, condition-based wait: the watchdog polls once a second.
    time_t deadline = time (NULL) + 60;
    while (s_exists (dir) && time (NULL) < deadline)
        usleep (200 * 1000);
    assert_false (s_exists (dir));
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_start_query_restart_destroy),
        cmocka_unit_test (test_watchdog_cleans_up_after_a_dead_test),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
