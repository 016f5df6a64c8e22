/*  al_stallpoint.h: named stall points, a test hook that makes a thread hang for a
    while at a chosen moment (a reactor stuck in a blocking call, a slow rebuild).

    The sibling of al_crashpoint: a product file marks a place with one line,
    al_stallpoint ("broker.reactor"). With the environment variable AIRLOCK_STALLPOINT
    unset, the call does nothing but read one flag (the variable is read once, at the
    first call). Set, it names the points and how long each stalls:

        AIRLOCK_STALLPOINT=NAME:MS[:NTH][,NAME:MS[:NTH]...]    (NTH defaults to 1)

    The NTH pass through NAME in this process sleeps MS milliseconds (1 .. 3600000) on
    the calling thread, then returns: the caller goes on as if a call had blocked.

    AIRLOCK_STALLPOINT_ARM=DIR replaces the pass count by a trigger the test pulls: a
    pass through NAME stalls only if the file DIR/NAME exists, and removes it first, so
    each file the test creates causes exactly one stall, at the next pass after it.

    Threading: any thread may pass a stall point; the pass counters are atomic.
*/
#ifndef AL_STALLPOINT_H_INCLUDED
#define AL_STALLPOINT_H_INCLUDED

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

//  Pass the stall point NAME: sleep there if AIRLOCK_STALLPOINT says so.
void al_stallpoint (const char *name);

//  How many stall points AIRLOCK_STALLPOINT names (0 when unset); -1 if it does not
//  parse (then no point stalls, and the reason is in error: "AIRLOCK_STALLPOINT: ...").
int al_stallpoint_configured (char *error, size_t error_size);

#ifdef __cplusplus
}
#endif

#endif
