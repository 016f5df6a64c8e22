/*  test_error.c: al_error_set, the one bounded error formatter.

    It must format, cut long messages at the buffer with a NUL, write nothing with a
    NULL buffer or size 0, keep errno, and prefix an existing message.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "base/al_error.h"

#include <errno.h>
#include <string.h>

static void
test_formats (void **state)
{
    (void) state;
    char error [64];
    al_error_set (error, sizeof error, "%s:%d: %s", "services.yaml", 12, "bad");
    assert_string_equal (error, "services.yaml:12: bad");
}

static void
test_bounded (void **state)
{
    (void) state;
    char error [8];
    memset (error, 'x', sizeof error);
    al_error_set (error, 6, "%s", "abcdefghij");
    assert_string_equal (error, "abcde");
    assert_int_equal (error [6], 'x');      // nothing past the size given
    al_error_set (error, 1, "long");
    assert_string_equal (error, "");
}

static void
test_null_safe (void **state)
{
    (void) state;
    al_error_set (NULL, 100, "%s", "nowhere");
    char error [4] = "abc";
    al_error_set (error, 0, "%s", "nothing");
    assert_string_equal (error, "abc");
    al_error_prefix (NULL, 10, "x");
    al_error_prefix (error, 0, "x");
    assert_string_equal (error, "abc");
}

static void
test_keeps_errno (void **state)
{
    (void) state;
    char error [64];
    errno = ENOENT;
    al_error_set (error, sizeof error, "%s", strerror (errno));
    assert_int_equal (errno, ENOENT);
    assert_string_equal (error, strerror (ENOENT));
}

static void
s_vwrapper (char *error, size_t size, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    al_error_vset (error, size, format, args);
    va_end (args);
}

static void
test_vset_and_prefix (void **state)
{
    (void) state;
    char error [32];
    s_vwrapper (error, sizeof error, "%d of %d", 3, 4);
    assert_string_equal (error, "3 of 4");
    al_error_prefix (error, sizeof error, "loading %s", "policy");
    assert_string_equal (error, "loading policy: 3 of 4");
    //  Cut at the buffer, the prefix first.
    al_error_prefix (error, 16, "%s", "a very long prefix");
    assert_string_equal (error, "a very long pre");
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_formats),
        cmocka_unit_test (test_bounded),
        cmocka_unit_test (test_null_safe),
        cmocka_unit_test (test_keeps_errno),
        cmocka_unit_test (test_vset_and_prefix),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
