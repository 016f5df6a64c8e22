/*  al_crashpoint.h: named crash points, a test hook that kills the process at a chosen
    moment (the chaos harness aims SIGKILL at narrow windows with it).

    A product file marks a window with one line, al_crashpoint ("broker.after-commit").
    With the environment variable AIRLOCK_CRASHPOINT unset, the call does nothing but
    read one flag (the variable is read once, at the first call). Set, it names the points
    to fire and on which pass:

        AIRLOCK_CRASHPOINT=NAME[:NTH][,NAME[:NTH]...]    (NTH defaults to 1)

    The NTH pass through NAME in this process raises SIGKILL (nothing is flushed, no
    handler runs: exactly what a crash or `kill -9` does).

    AIRLOCK_CRASHPOINT_ARM=DIR makes every point one-shot across restarts: a point fires
    only if it can create DIR/NAME (O_EXCL), so a supervisor that restarts the process does
    not meet the same crash again until whoever watches (the harness) removes the file to
    re-arm it. The file is written before the kill, so its presence proves the point fired.

    Threading: any thread may pass a crash point; the pass counters are atomic.
*/
#ifndef AL_CRASHPOINT_H
#define AL_CRASHPOINT_H

#include <stddef.h>

//  Pass the crash point NAME: SIGKILL this process if AIRLOCK_CRASHPOINT says so.
void al_crashpoint (const char *name);

//  How many crash points AIRLOCK_CRASHPOINT names (0 when unset); -1 if it does not
//  parse (then no point fires, and the reason is in error: "AIRLOCK_CRASHPOINT: ...").
int al_crashpoint_configured (char *error, size_t error_size);

#endif
