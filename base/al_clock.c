/*  al_clock.c: the monotonic and the wall clock in milliseconds (see al_clock.h).

    clock_gettime cannot fail for these two clocks on Linux; if it ever did, the
    invariant this module rests on is broken and the assert says so.
*/
#include "base/al_clock.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <time.h>

static int64_t
s_clock_ms (clockid_t clock)
{
    struct timespec now;
    int rc = clock_gettime (clock, &now);
    assert (rc == 0);
    (void) rc;
    return (int64_t) now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

int64_t
al_clock_mono_ms (void)
{
    return s_clock_ms (CLOCK_MONOTONIC);
}

int64_t
al_clock_wall_ms (void)
{
    return s_clock_ms (CLOCK_REALTIME);
}

int64_t
al_clock_wall_s (void)
{
    return s_clock_ms (CLOCK_REALTIME) / 1000;
}

void
al_clock_sleep_ms (int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec left = { .tv_sec = ms / 1000, .tv_nsec = (long) (ms % 1000) * 1000000 };
    //  nanosleep leaves in left what a signal cut short.
    while (nanosleep (&left, &left) != 0 && errno == EINTR)
        ;
}

int64_t
al_clock_deadline_ms (int64_t timeout_ms)
{
    return al_clock_mono_ms () + (timeout_ms > 0 ? timeout_ms : 0);
}

int64_t
al_clock_remaining_ms (int64_t deadline_ms)
{
    int64_t left = deadline_ms - al_clock_mono_ms ();
    return left > 0 ? left : 0;
}

char *
al_clock_wall_iso8601 (int64_t wall_ms, char *out, size_t out_size)
{
    assert (out && out_size > 0);
    //  253402300799999 ms: 9999-12-31T23:59:59.999Z, the last time ISO 8601's four
    //  year digits can say.
    struct tm tm;
    time_t seconds = (time_t) (wall_ms / 1000);
    if (wall_ms < 0 || wall_ms > 253402300799999LL || !gmtime_r (&seconds, &tm)) {
        snprintf (out, out_size, "invalid-time");
        return out;
    }
    snprintf (out, out_size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
              tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
              (int) (wall_ms % 1000));
    return out;
}
