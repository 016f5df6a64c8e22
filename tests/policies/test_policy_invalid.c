/*  test_policy_invalid.c: every kind of invalid policy fails with its exact messages.

    Each folder under fixtures/ is one case: its .yaml files replace the default's files
    in a scratch copy of policies/default, a file named DELETE lists default files to
    remove, and expected.txt lists every error the loader must report, in order, as
    "file.yaml:line:column: message" relative to the policy directory. A case passes only
    if the load fails and the error list is exactly expected.txt: all errors, not only
    the first.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "policies/al_policy.h"
#include "policy_test_util.h"

static const char *
s_fixtures_dir (void)
{
    static char path [4096];
    const char *source = getenv ("AIRLOCK_SOURCE_DIR");
    snprintf (path, sizeof path, "%s/tests/policies/fixtures", source ? source : ".");
    return path;
}

//  Runs one fixture; returns the number of mismatches (printed).
static int
s_run_case (const char *name)
{
    char case_dir [4096];
    int length = snprintf (case_dir, sizeof case_dir, "%s/%s", s_fixtures_dir (), name);
    assert_true (length > 0 && (size_t) length < sizeof case_dir);
    char *dir = pt_copy_default ();
    DIR *handle = opendir (case_dir);
    assert_non_null (handle);
    struct dirent *entry;
    while ((entry = readdir (handle))) {
        const char *file = entry->d_name;
        size_t length = strlen (file);
        if (length > 5 && strcmp (file + length - 5, ".yaml") == 0) {
            char *text = pt_read_file (case_dir, file);
            pt_write_file (dir, file, text);
            free (text);
        }
        else
        if (strcmp (file, "DELETE") == 0) {
            char *text = pt_read_file (case_dir, file);
            for (char *line = strtok (text, "\n"); line; line = strtok (NULL, "\n")) {
                char path [4096];
                snprintf (path, sizeof path, "%s/%s", dir, line);
                assert_int_equal (unlink (path), 0);
            }
            free (text);
        }
    }
    closedir (handle);

    al_policy_errors_t *errors = NULL;
    al_policy_t *policy = al_policy_load (dir, &errors);
    int mismatches = 0;
    if (policy) {
        fprintf (stderr, "%s: loaded, expected errors\n", name);
        al_policy_destroy (&policy);
        mismatches++;
    }
    char *expected = pt_read_file (case_dir, "expected.txt");
    size_t index = 0;
    for (char *line = strtok (expected, "\n"); line; line = strtok (NULL, "\n"), index++) {
        char want [4096];
        snprintf (want, sizeof want, "%s/%s", dir, line);
        const char *got = index < al_policy_errors_count (errors)
                        ? al_policy_errors_at (errors, index) : "(no error)";
        if (strcmp (want, got) != 0) {
            fprintf (stderr, "%s: error %zu\n  expected: %s\n  got:      %s\n", name, index, want, got);
            mismatches++;
        }
    }
    for (; index < al_policy_errors_count (errors); index++) {
        fprintf (stderr, "%s: unexpected error: %s\n", name, al_policy_errors_at (errors, index));
        mismatches++;
    }
    free (expected);
    al_policy_errors_destroy (&errors);
    pt_remove_dir (dir);
    free (dir);
    return mismatches;
}

static void
test_every_fixture (void **state)
{
    (void) state;
    DIR *handle = opendir (s_fixtures_dir ());
    assert_non_null (handle);
    struct dirent *entry;
    int cases = 0, mismatches = 0;
    while ((entry = readdir (handle))) {
        if (entry->d_name [0] == '.')
            continue;
        mismatches += s_run_case (entry->d_name);
        cases++;
    }
    closedir (handle);
    assert_true (cases >= 20);
    assert_int_equal (mismatches, 0);
}

static void
test_errors_without_list (void **state)
{
    (void) state;
    //  A missing directory: NULL with or without an error list.
    assert_null (al_policy_load ("/nonexistent/airlock-policy", NULL));
    al_policy_errors_t *errors = NULL;
    assert_null (al_policy_load ("/nonexistent/airlock-policy", &errors));
    assert_int_equal (al_policy_errors_count (errors), AL_POLICY_FILE_COUNT);
    assert_string_equal (al_policy_errors_at (errors, 0),
                         "/nonexistent/airlock-policy/roles.yaml: cannot open: No such file or directory");
    al_policy_errors_destroy (&errors);
    al_policy_errors_destroy (&errors);     // NULL-safe
    assert_int_equal (al_policy_errors_count (NULL), 0);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_every_fixture),
        cmocka_unit_test (test_errors_without_list),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
