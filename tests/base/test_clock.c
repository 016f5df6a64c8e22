/*  test_clock.c: al_clock, the monotonic and the wall clock named apart.

    The wall clock must agree with time(2); the monotonic one must never go back and
    must advance across a sleep by at least the time slept; the ISO 8601 form must be
    exact for known instants and refuse out-of-range ones.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "base/al_clock.h"

#include <string.h>
#include <time.h>

static void
test_wall_is_epoch_ms (void **state)
{
    (void) state;
    int64_t before = (int64_t) time (NULL);
    int64_t wall = al_clock_wall_ms ();
    int64_t after = (int64_t) time (NULL);
    assert_true (wall / 1000 >= before && wall / 1000 <= after);
    int64_t seconds = al_clock_wall_s ();
    assert_true (seconds >= before && seconds <= (int64_t) time (NULL));
}

static void
test_mono_advances_across_sleep (void **state)
{
    (void) state;
    int64_t start = al_clock_mono_ms ();
    int64_t previous = start;
    for (int index = 0; index < 1000; index++) {
        int64_t now = al_clock_mono_ms ();
        assert_true (now >= previous);
        previous = now;
    }
    al_clock_sleep_ms (30);
    assert_true (al_clock_mono_ms () - start >= 30);
    //  No sleep for zero or a negative time.
    int64_t before = al_clock_mono_ms ();
    al_clock_sleep_ms (0);
    al_clock_sleep_ms (-5);
    assert_true (al_clock_mono_ms () - before < 1000);
}

static void
test_deadline (void **state)
{
    (void) state;
    int64_t deadline = al_clock_deadline_ms (60000);
    int64_t left = al_clock_remaining_ms (deadline);
    assert_true (left > 0 && left <= 60000);
    assert_int_equal (al_clock_remaining_ms (al_clock_mono_ms () - 1), 0);
    int64_t now = al_clock_deadline_ms (0);
    al_clock_sleep_ms (2);
    assert_int_equal (al_clock_remaining_ms (now), 0);
}

static void
test_iso8601 (void **state)
{
    (void) state;
    char text [AL_CLOCK_ISO8601_SIZE];
    assert_string_equal (al_clock_wall_iso8601 (0, text, sizeof text), "1970-01-01T00:00:00.000Z");
    assert_string_equal (al_clock_wall_iso8601 (1796662320123LL, text, sizeof text),
                         "2026-12-07T16:52:00.123Z");
    assert_string_equal (al_clock_wall_iso8601 (-1, text, sizeof text), "invalid-time");
    assert_string_equal (al_clock_wall_iso8601 (253402300800000LL, text, sizeof text), "invalid-time");
    //  Bounded by the buffer.
    char small [11];
    assert_string_equal (al_clock_wall_iso8601 (0, small, sizeof small), "1970-01-01");
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_wall_is_epoch_ms),
        cmocka_unit_test (test_mono_advances_across_sleep),
        cmocka_unit_test (test_deadline),
        cmocka_unit_test (test_iso8601),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
