/*  al_clock.h: the two clocks of airlock, named by what they measure.

    - al_clock_mono_ms: CLOCK_MONOTONIC, milliseconds since an arbitrary start. It never
      jumps; use it for every duration, deadline and timeout (soak windows, child
      deadlines, retry backoff). Its values mean nothing across processes or reboots.
    - al_clock_wall_ms: CLOCK_REALTIME, milliseconds since the Unix epoch (UTC). It may
      jump (NTP, an operator); use it only for what a human or another machine reads:
      timestamps in audit rows, receipts, journals, expiry of signed statements.

    Mixing them is the bug this module exists to prevent: a deadline on the wall clock
    fires early or never when the clock is set, a timestamp on the monotonic clock is
    meaningless in a receipt. Both are int64_t so that differences may be negative.

    Pure functions; thread-safe.
*/
#ifndef AL_CLOCK_H_INCLUDED
#define AL_CLOCK_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

//  Milliseconds on CLOCK_MONOTONIC (durations and deadlines).
int64_t al_clock_mono_ms (void);

//  Milliseconds since the epoch on CLOCK_REALTIME (timestamps people and files read).
int64_t al_clock_wall_ms (void);

//  Seconds since the epoch on CLOCK_REALTIME.
int64_t al_clock_wall_s (void);

//  Sleep at least ms milliseconds (a signal does not cut the sleep short). ms <= 0
//  returns at once.
void al_clock_sleep_ms (int64_t ms);

//  A monotonic deadline timeout_ms from now, and the milliseconds left until it
//  (0 once passed; never negative).
int64_t al_clock_deadline_ms (int64_t timeout_ms);
int64_t al_clock_remaining_ms (int64_t deadline_ms);

//  A wall-clock time (ms since the epoch) as UTC ISO 8601 with milliseconds,
//  "2026-12-07T16:52:00.123Z", into out (AL_CLOCK_ISO8601_SIZE bytes are always
//  enough). Returns out. A time before the epoch or past year 9999 gives "invalid-time".
#define AL_CLOCK_ISO8601_SIZE 32
char *al_clock_wall_iso8601 (int64_t wall_ms, char *out, size_t out_size);

#ifdef __cplusplus
}
#endif

#endif
