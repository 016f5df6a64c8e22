/*  cli_test.c: running the built airlock binary for the CLI tests (see cli_test.h).
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "cli_test.h"

#include <stdio.h>
#include <stdlib.h>

al_child_t *
cli_test_run (const char *const *words, const char *config, const char **out, const char **err)
{
    const char *binary = getenv ("AIRLOCK_BINARY_DIR");
    assert_non_null (binary);
    char path [512];
    snprintf (path, sizeof path, "%s/airlock", binary);
    char *argv [32];
    size_t count = 0;
    argv [count++] = path;
    for (size_t index = 0; words [index]; index++) {
        assert_true (count < 28);
        argv [count++] = (char *) words [index];
    }
    if (config) {
        argv [count++] = "--config";
        argv [count++] = (char *) config;
    }
    argv [count] = NULL;
    al_child_options_t options = { .out = AL_CHILD_PIPE, .err = AL_CHILD_PIPE };
    char error [512] = "";
    bool timed_out = false;
    al_child_t *child = al_child_run (argv, &options, 120000, &timed_out, error, sizeof error);
    if (!child)
        fail_msg ("airlock: %s", error);
    assert_false (timed_out);
    *out = al_child_out (child, NULL);
    *err = al_child_err (child, NULL);
    return child;
}
