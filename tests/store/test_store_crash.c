/*  test_store_crash.c: committed batches survive SIGKILL at any moment.

    A child process appends batches of events to the log and, after each commit
    returns, reports the batch's last sequence number over a pipe. The parent kills it
    with SIGKILL after a random delay (so kills land before, during and after commits),
    then reopens the log and checks: every reported batch is present with the content
    the child wrote, PRAGMA integrity_check says ok, and the whole chain verifies. The
    next child continues the same log. This is the broker's promise: a message is
    acknowledged only after commit returns, and then it is never lost.
*/
#include "store_test_util.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define S_ITERATIONS 120

//  The child: append batches forever, report each commit. Never returns.
static void
s_child (const char *path, int report_fd, unsigned seed)
{
    char error [512];
    al_store_t *store = al_store_open ("sqlite", path, NULL, error, sizeof error);
    if (!store)
        _exit (3);
    srand (seed);
    for (;;) {
        if (al_store_begin (store) != AL_STORE_OK)
            _exit (4);
        int batch = 1 + rand () % 16;
        uint64_t last = 0;
        for (int i = 0; i < batch; i++) {
            st_event_t holder;
            //  The event's content is derived from its sequence, so the parent can check it.
            uint64_t next = al_store_row_count (store) + 1;
            st_event_make (&holder, next);
            al_store_append_result_t result;
            if (al_store_append (store, &holder.event, &result) != AL_STORE_OK || result.sequence != next)
                _exit (5);
            last = result.sequence;
        }
        if (al_store_commit (store) != AL_STORE_OK)
            _exit (6);
        if (write (report_fd, &last, sizeof last) != (ssize_t) sizeof last)
            _exit (7);
    }
}

static char *
s_integrity_check (const char *path)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = NULL;
    char *value = NULL;
    assert_int_equal (sqlite3_open_v2 (path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal (sqlite3_prepare_v2 (db, "PRAGMA integrity_check", -1, &stmt, NULL), SQLITE_OK);
    if (sqlite3_step (stmt) == SQLITE_ROW)
        value = strdup ((const char *) sqlite3_column_text (stmt, 0));
    sqlite3_finalize (stmt);
    sqlite3_close (db);
    return value;
}

static void
test_sigkill_during_appends (void **state)
{
    (void) state;
    char *dir = st_dir_new ();
    assert_non_null (dir);
    char *path = st_path (dir, "crash.db");
    //  AIRLOCK_CRASH_SEED replays a failing run's kill schedule (roughly: timing varies).
    const char *seed_text = getenv ("AIRLOCK_CRASH_SEED");
    unsigned run_seed = seed_text? (unsigned) strtoul (seed_text, NULL, 10)
                                 : (unsigned) time (NULL) ^ (unsigned) getpid ();
    print_message ("seed %u\n", run_seed);
    srand (run_seed);
    uint64_t max_reported = 0;
    unsigned kills_with_commits = 0;
    for (int iteration = 0; iteration < S_ITERATIONS; iteration++) {
        int fds [2];
        assert_int_equal (pipe (fds), 0);
        unsigned seed = (unsigned) rand ();
        pid_t pid = fork ();
        assert_true (pid >= 0);
        if (pid == 0) {
            close (fds [0]);
            s_child (path, fds [1], seed);
        }
        close (fds [1]);
        uint64_t reported [4096];
        size_t reports = 0;
        uint64_t value;
        //  Every other child is first seen committing, so those kills always land on
        //  a working writer; the others may also die while opening the log.
        if (iteration % 2 == 1) {
            assert_int_equal (read (fds [0], &value, sizeof value), (ssize_t) sizeof value);
            reported [reports++] = value;
        }
        //  0..40 ms: the child may die opening, mid-batch, mid-commit or between batches.
        struct timespec delay = { 0, (long) (rand () % 40000) * 1000 };
        nanosleep (&delay, NULL);
        assert_int_equal (kill (pid, SIGKILL), 0);
        int status = 0;
        assert_int_equal (waitpid (pid, &status, 0), pid);
        //  Killed by us, not exited on an error of its own.
        if (!WIFSIGNALED (status))
            fail_msg ("iteration %d: child exited with %d", iteration, WEXITSTATUS (status));
        ssize_t got;
        while ((got = read (fds [0], &value, sizeof value)) == (ssize_t) sizeof value) {
            assert_true (reports == 0 || value > reported [reports - 1]);
            assert_true (reports < sizeof reported / sizeof reported [0]);
            reported [reports++] = value;
        }
        assert_true (got == 0);
        close (fds [0]);
        if (reports > 0) {
            assert_true (reported [reports - 1] > max_reported);
            max_reported = reported [reports - 1];
            kills_with_commits++;
        }

        //  Recovery: open as the broker would, then check.
        al_store_t *store = st_open (path);
        assert_true (al_store_row_count (store) >= max_reported);
        //  Every batch the child reported is there, as the child wrote it.
        for (size_t i = 0; i < reports; i++) {
            al_store_event_t event;
            assert_int_equal (al_store_event_get (store, reported [i], &event), AL_STORE_OK);
            st_event_t holder;
            st_event_make (&holder, reported [i]);
            assert_string_equal (event.message_id, holder.message_id);
            assert_memory_equal (event.envelope, holder.envelope, sizeof holder.envelope);
        }
        al_verify_report_t report;
        assert_int_equal (al_store_verify (store, NULL, NULL, &report), AL_STORE_OK);
        if (report.result != AL_VERIFY_OK)
            fail_msg ("iteration %d: %s", iteration, report.reason);
        assert_int_equal (report.rows, al_store_row_count (store));
        al_store_destroy (&store);
        char *integrity = s_integrity_check (path);
        assert_non_null (integrity);
        assert_string_equal (integrity, "ok");
        free (integrity);
    }
    //  The test is only meaningful if kills hit a working writer many times.
    print_message ("%d kills, %llu rows committed, %u iterations advanced the log\n", S_ITERATIONS,
                   (unsigned long long) max_reported, kills_with_commits);
    assert_true (kills_with_commits >= S_ITERATIONS / 2);
    st_dir_remove (&dir);
    free (path);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_sigkill_during_appends),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
