/*  test_stallpoint.c: base/al_stallpoint, the hook that makes a thread hang (the HA
    tests hang the broker's reactor and slow a takeover's rebuild with it).

    Each case runs al_stallpoint in a forked child with AIRLOCK_STALLPOINT (and
    AIRLOCK_STALLPOINT_ARM) set before the first call, as a product process would see
    them. The child reports, per pass, whether the point said it stalled (its stderr
    line) and how long the pass took: the stalled pass is exactly the NTH and lasted at
    least MS (a sleep's lower bound, not a timing assertion); unset or another name never
    stalls; with an arm directory each trigger file makes one stall and is removed; a
    malformed spec arms nothing and names the fault.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include "base/al_clock.h"
#include "base/al_stallpoint.h"
#include "../common/testpoint_env.h"
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define S_PASSES_MAX 16

typedef struct {
    int passes;                         // passes completed
    int stalled [S_PASSES_MAX];         // 1 if the point said it stalled on that pass
    int64_t took_ms [S_PASSES_MAX];
} s_outcome_t;

//  In a child: set the environment, pass point NAME PASSES times (before pass ARM_AT,
//  create the trigger file DIR/NAME if ARM_AT > 0). Exit 3 if the spec does not parse.
static int
s_run (const char *spec, const char *arm, int arm_at, const char *name, int passes, s_outcome_t *outcome)
{
    assert_true (passes <= S_PASSES_MAX);
    char log [] = "/tmp/al-stallpoint-log-XXXXXX";
    int log_fd = mkstemp (log);
    assert_true (log_fd >= 0);
    int channel [2];
    assert_int_equal (pipe (channel), 0);
    pid_t pid = fork ();
    assert_true (pid >= 0);
    if (pid == 0) {
        close (channel [0]);
        dup2 (log_fd, 2);
        testpoint_env ("AIRLOCK_STALLPOINT", spec, arm);
        char error [256] = "";
        if (al_stallpoint_configured (error, sizeof error) < 0)
            _exit (3);
        for (int i = 1; i <= passes; i++) {
            if (arm && i == arm_at) {
                char path [256];
                snprintf (path, sizeof path, "%s/%s", arm, name);
                FILE *trigger = fopen (path, "w");
                if (!trigger)
                    _exit (5);
                fclose (trigger);
            }
            int64_t started = al_clock_mono_ms ();
            al_stallpoint (name);
            int64_t took = al_clock_mono_ms () - started;
            if (write (channel [1], &took, sizeof took) != sizeof took)
                _exit (4);
        }
        _exit (0);
    }
    close (channel [1]);
    int status = 0;
    assert_int_equal (waitpid (pid, &status, 0), pid);
    memset (outcome, 0, sizeof *outcome);
    int64_t took;
    while (read (channel [0], &took, sizeof took) == sizeof took && outcome->passes < S_PASSES_MAX)
        outcome->took_ms [outcome->passes++] = took;
    close (channel [0]);
    //  Which passes said "stalling": "stallpoint: NAME (pass N): stalling MS ms".
    FILE *file = fdopen (log_fd, "r");
    assert_non_null (file);
    rewind (file);
    char line [512];
    while (fgets (line, sizeof line, file)) {
        int pass = 0;
        const char *at = strstr (line, "(pass ");
        if (at && strstr (line, "stalling") && sscanf (at, "(pass %d)", &pass) == 1 && pass >= 1
        &&  pass <= S_PASSES_MAX)
            outcome->stalled [pass - 1] = 1;
    }
    fclose (file);
    unlink (log);
    return status;
}

static int
s_stall_count (const s_outcome_t *outcome)
{
    int count = 0;
    for (int i = 0; i < S_PASSES_MAX; i++)
        count += outcome->stalled [i];
    return count;
}

static void
test_unset_never_stalls (void **state)
{
    (void) state;
    s_outcome_t outcome;
    int status = s_run (NULL, NULL, 0, "broker.reactor", 10, &outcome);
    assert_true (WIFEXITED (status));
    assert_int_equal (WEXITSTATUS (status), 0);
    assert_int_equal (outcome.passes, 10);
    assert_int_equal (s_stall_count (&outcome), 0);
}

static void
test_stalls_on_the_nth_pass (void **state)
{
    (void) state;
    s_outcome_t outcome;
    int status = s_run ("other:5000,broker.reactor:300:3", NULL, 0, "broker.reactor", 5, &outcome);
    assert_true (WIFEXITED (status));
    assert_int_equal (WEXITSTATUS (status), 0);
    assert_int_equal (outcome.passes, 5);
    assert_int_equal (s_stall_count (&outcome), 1);
    assert_int_equal (outcome.stalled [2], 1);
    assert_true (outcome.took_ms [2] >= 300);
    //  NTH defaults to 1; another name passes freely.
    status = s_run ("broker.takeover-rebuild:200", NULL, 0, "broker.takeover-rebuild", 3, &outcome);
    assert_int_equal (WEXITSTATUS (status), 0);
    assert_int_equal (s_stall_count (&outcome), 1);
    assert_int_equal (outcome.stalled [0], 1);
    assert_true (outcome.took_ms [0] >= 200);
    status = s_run ("broker.reactor:5000", NULL, 0, "broker.takeover-rebuild", 3, &outcome);
    assert_int_equal (WEXITSTATUS (status), 0);
    assert_int_equal (outcome.passes, 3);
    assert_int_equal (s_stall_count (&outcome), 0);
}

static void
test_arm_file_triggers_one_stall (void **state)
{
    (void) state;
    char dir [] = "/tmp/al-stallpoint-XXXXXX";
    assert_non_null (mkdtemp (dir));
    //  No trigger file: no stall, whatever the pass count says.
    s_outcome_t outcome;
    int status = s_run ("broker.reactor:200", dir, 0, "broker.reactor", 4, &outcome);
    assert_int_equal (WEXITSTATUS (status), 0);
    assert_int_equal (s_stall_count (&outcome), 0);
    //  The file made before pass 3: pass 3 stalls, removes it, and no other pass stalls.
    status = s_run ("broker.reactor:200", dir, 3, "broker.reactor", 6, &outcome);
    assert_int_equal (WEXITSTATUS (status), 0);
    assert_int_equal (outcome.passes, 6);
    assert_int_equal (s_stall_count (&outcome), 1);
    assert_int_equal (outcome.stalled [2], 1);
    assert_true (outcome.took_ms [2] >= 200);
    char path [256];
    snprintf (path, sizeof path, "%s/broker.reactor", dir);
    struct stat info;
    assert_int_not_equal (stat (path, &info), 0);
    assert_int_equal (rmdir (dir), 0);
}

static void
test_malformed_spec_arms_nothing (void **state)
{
    (void) state;
    const char *bad [] = { "name", "name:", "name:0", ":300", "a/b:300", "name:x", "name:300:0",
                           "name:300:", "name:-5", "name:3600001", "name:99999999999999999999999" };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        s_outcome_t outcome;
        int status = s_run (bad [i], NULL, 0, "name", 2, &outcome);
        assert_true (WIFEXITED (status));
        if (WEXITSTATUS (status) != 3)
            fail_msg ("'%s' was accepted", bad [i]);
    }
    setenv ("AIRLOCK_STALLPOINT", "name:0", 1);
    char error [256] = "";
    assert_int_equal (al_stallpoint_configured (error, sizeof error), -1);
    assert_non_null (strstr (error, "AIRLOCK_STALLPOINT: 'name:0': MS must be a number"));
    unsetenv ("AIRLOCK_STALLPOINT");
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_unset_never_stalls),
        cmocka_unit_test (test_stalls_on_the_nth_pass),
        cmocka_unit_test (test_arm_file_triggers_one_stall),
        cmocka_unit_test (test_malformed_spec_arms_nothing),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
