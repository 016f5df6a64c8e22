/*  al_stallpoint.c: named stall points (see al_stallpoint.h for the contract).

    AIRLOCK_STALLPOINT is parsed once (pthread_once) into a small fixed table by the
    parser it shares with al_crashpoint (al_testpoint_int.h); a pass
    looks its name up only when the table is not empty, so an unset variable costs one
    flag read per pass. A spec that does not parse arms nothing and says why on stderr
    once (a test hook must not hang a product by being mistyped).
*/
#include "base/al_stallpoint.h"
#include "base/al_clock.h"
#include "base/al_testpoint_int.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define S_STALL_MAX_MS 3600000UL

static pthread_once_t s_once = PTHREAD_ONCE_INIT;
static al_testpoint_table_t s_table = {
    .variable = "AIRLOCK_STALLPOINT", .arm_variable = "AIRLOCK_STALLPOINT_ARM",
    .tag = "stallpoint", .unarmed = "no stall point armed",
    .field = { { .label = "MS", .minimum = 1, .maximum = S_STALL_MAX_MS, .required = 1 },
               { .label = "NTH", .minimum = 1, .maximum = ULONG_MAX, .fallback = 1 } },
    .field_count = 2,
};

static void
s_load (void)
{
    al_testpoint_load (&s_table);
}

//  With AIRLOCK_STALLPOINT_ARM: the trigger file DIR/NAME existed (and is now gone).
static int
s_triggered (const char *name)
{
    char path [1024];
    if (snprintf (path, sizeof path, "%s/%s", s_table.arm_dir, name) >= (int) sizeof path)
        return 0;
    return unlink (path) == 0;
}

void
al_stallpoint (const char *name)
{
    pthread_once (&s_once, s_load);
    if (s_table.count <= 0)
        return;
    unsigned long pass;
    for (int i = 0; (pass = al_testpoint_pass (&s_table, name, &i)) != 0; i++) {
        unsigned long stall_ms = s_table.point [i].value [0];
        if (s_table.arm_dir? s_triggered (name): pass == s_table.point [i].value [1]) {
            //  Said on stderr before and after, so a log shows where the thread hung.
            fprintf (stderr, "stallpoint: %s (pass %lu): stalling %lu ms\n", name, pass, stall_ms);
            al_clock_sleep_ms ((int64_t) stall_ms);
            fprintf (stderr, "stallpoint: %s (pass %lu): resumed\n", name, pass);
        }
    }
}

int
al_stallpoint_configured (char *error, size_t error_size)
{
    pthread_once (&s_once, s_load);
    return al_testpoint_configured (&s_table, error, error_size);
}
