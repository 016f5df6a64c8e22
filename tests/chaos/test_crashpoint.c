/*  test_crashpoint.c: base/al_crashpoint, the hook the chaos harness aims kills with.

    Each case runs al_crashpoint in a forked child with AIRLOCK_CRASHPOINT (and
    AIRLOCK_CRASHPOINT_ARM) set before the first call, as a product process would see
    them, and asserts on how the child ended: killed by SIGKILL on exactly the NTH pass,
    untouched by other names, one-shot across "restarts" while the arm file exists and
    again after it is removed; a malformed spec arms nothing and names the fault.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include "base/al_crashpoint.h"
#include "../common/testpoint_env.h"
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

//  In a child: set the environment, pass point NAME passes times (exit 0 after), or
//  report the parse error through exit 3. Returns the raw wait status.
static int
s_run (const char *spec, const char *arm, const char *name, int passes, int *passed)
{
    int channel [2];
    assert_int_equal (pipe (channel), 0);
    pid_t pid = fork ();
    assert_true (pid >= 0);
    if (pid == 0) {
        close (channel [0]);
        testpoint_env ("AIRLOCK_CRASHPOINT", spec, arm);
        char error [256] = "";
        if (al_crashpoint_configured (error, sizeof error) < 0)
            _exit (3);
        for (int i = 1; i <= passes; i++) {
            //  The count of passes completed so far, one byte each, before the next pass.
            char byte = (char) i;
            if (write (channel [1], &byte, 1) != 1)
                _exit (4);
            al_crashpoint (name);
        }
        _exit (0);
    }
    close (channel [1]);
    int status = 0;
    assert_int_equal (waitpid (pid, &status, 0), pid);
    char bytes [256];
    ssize_t got = read (channel [0], bytes, sizeof bytes);
    *passed = got > 0? (int) got: 0;
    close (channel [0]);
    return status;
}

static bool
s_killed (int status)
{
    return WIFSIGNALED (status) && WTERMSIG (status) == SIGKILL;
}

static void
test_unset_never_fires (void **state)
{
    (void) state;
    int passed;
    int status = s_run (NULL, NULL, "broker.after-commit", 50, &passed);
    assert_true (WIFEXITED (status));
    assert_int_equal (WEXITSTATUS (status), 0);
    assert_int_equal (passed, 50);
}

static void
test_fires_on_the_nth_pass (void **state)
{
    (void) state;
    int passed;
    int status = s_run ("other:1,broker.after-commit:7", NULL, "broker.after-commit", 20, &passed);
    assert_true (s_killed (status));
    assert_int_equal (passed, 7);               // the 7th pass was entered and never left
    status = s_run ("deploy-manager.before-journal", NULL, "deploy-manager.before-journal", 5, &passed);
    assert_true (s_killed (status));
    assert_int_equal (passed, 1);               // NTH defaults to 1
    //  Another name passes freely.
    status = s_run ("broker.after-commit:2", NULL, "approve.after-send", 10, &passed);
    assert_true (WIFEXITED (status));
    assert_int_equal (WEXITSTATUS (status), 0);
}

static void
test_arm_file_makes_it_one_shot (void **state)
{
    (void) state;
    char dir [] = "/tmp/al-crashpoint-XXXXXX";
    assert_non_null (mkdtemp (dir));
    char marker [128];
    snprintf (marker, sizeof marker, "%s/approve.after-send", dir);
    int passed;
    int status = s_run ("approve.after-send:2", dir, "approve.after-send", 5, &passed);
    assert_true (s_killed (status));
    assert_int_equal (passed, 2);
    struct stat info;
    assert_int_equal (stat (marker, &info), 0);     // proof that it fired
    //  A restart meets the point again: the marker is there, it does not fire.
    status = s_run ("approve.after-send:2", dir, "approve.after-send", 5, &passed);
    assert_true (WIFEXITED (status));
    assert_int_equal (WEXITSTATUS (status), 0);
    assert_int_equal (passed, 5);
    //  Re-armed by removing the marker: it fires again.
    assert_int_equal (unlink (marker), 0);
    status = s_run ("approve.after-send:2", dir, "approve.after-send", 5, &passed);
    assert_true (s_killed (status));
    assert_int_equal (unlink (marker), 0);
    assert_int_equal (rmdir (dir), 0);
}

static void
test_malformed_spec_arms_nothing (void **state)
{
    (void) state;
    const char *bad [] = { "name:0", "name:", ":3", "name:x", "a/b", "name:-1", "name:99999999999999999999999" };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        int passed;
        int status = s_run (bad [i], NULL, "name", 3, &passed);
        assert_true (WIFEXITED (status));
        if (WEXITSTATUS (status) != 3)
            fail_msg ("'%s' was accepted", bad [i]);
    }
    //  And the reason is given in the caller's buffer.
    setenv ("AIRLOCK_CRASHPOINT", "name:0", 1);
    char error [256] = "";
    assert_int_equal (al_crashpoint_configured (error, sizeof error), -1);
    assert_non_null (strstr (error, "AIRLOCK_CRASHPOINT: 'name:0': NTH must be a number >= 1"));
    al_crashpoint ("name");                     // armed nothing: we are still here
    unsetenv ("AIRLOCK_CRASHPOINT");
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_unset_never_fires),
        cmocka_unit_test (test_fires_on_the_nth_pass),
        cmocka_unit_test (test_arm_file_makes_it_one_shot),
        cmocka_unit_test (test_malformed_spec_arms_nothing),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
