/*  al_stallpoint.c: named stall points (see al_stallpoint.h for the contract).

    AIRLOCK_STALLPOINT is parsed once (pthread_once) into a small fixed table; a pass
    looks its name up only when the table is not empty, so an unset variable costs one
    flag read per pass. A spec that does not parse arms nothing and says why on stderr
    once (a test hook must not hang a product by being mistyped).
*/
#include "base/al_stallpoint.h"
#include "base/al_clock.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_POINTS_MAX 16
#define S_NAME_MAX 64
#define S_STALL_MAX_MS 3600000UL

typedef struct {
    char name [S_NAME_MAX];
    unsigned long stall_ms;
    unsigned long nth;
    atomic_ulong passes;
} s_point_t;

static pthread_once_t s_once = PTHREAD_ONCE_INIT;
static s_point_t s_points [S_POINTS_MAX];
static int s_point_count;               // -1: the spec did not parse
static char s_error [256];
static const char *s_arm_dir;

//  A decimal number in [minimum, maximum] from the LENGTH characters at TEXT; 0 if it is not one.
static int
s_number (const char *text, size_t length, unsigned long minimum, unsigned long maximum, unsigned long *value)
{
    char digits [24];
    if (length == 0 || length >= sizeof digits || text [0] < '0' || text [0] > '9')
        return 0;
    memcpy (digits, text, length);
    digits [length] = 0;
    char *end = NULL;
    errno = 0;
    *value = strtoul (digits, &end, 10);
    return !errno && !*end && *value >= minimum && *value <= maximum;
}

//  Parse "NAME:MS[:NTH][,...]" into s_points; -1 with s_error set if malformed.
static int
s_parse (const char *spec)
{
    int count = 0;
    const char *at = spec;
    while (*at) {
        size_t length = strcspn (at, ",");
        const char *colon = memchr (at, ':', length);
        size_t name_length = colon? (size_t) (colon - at): length;
        if (name_length == 0 || name_length >= S_NAME_MAX || count == S_POINTS_MAX) {
            snprintf (s_error, sizeof s_error, "AIRLOCK_STALLPOINT: '%.*s': %s", (int) length, at,
                      count == S_POINTS_MAX? "too many points": "a name of 1 to 63 characters is required");
            return -1;
        }
        for (size_t i = 0; i < name_length; i++)
            if (at [i] == '/' || at [i] <= ' ') {
                snprintf (s_error, sizeof s_error, "AIRLOCK_STALLPOINT: '%.*s': no '/' or blank in a name",
                          (int) length, at);
                return -1;
            }
        const char *stall = colon? colon + 1: at + length;
        size_t rest = (size_t) (at + length - stall);
        const char *second = memchr (stall, ':', rest);
        size_t stall_length = second? (size_t) (second - stall): rest;
        unsigned long stall_ms = 0, nth = 1;
        if (!colon || !s_number (stall, stall_length, 1, S_STALL_MAX_MS, &stall_ms)) {
            snprintf (s_error, sizeof s_error, "AIRLOCK_STALLPOINT: '%.*s': MS must be a number of 1 to %lu",
                      (int) length, at, S_STALL_MAX_MS);
            return -1;
        }
        if (second && !s_number (second + 1, (size_t) (at + length - second - 1), 1, (unsigned long) -1, &nth)) {
            snprintf (s_error, sizeof s_error, "AIRLOCK_STALLPOINT: '%.*s': NTH must be a number >= 1",
                      (int) length, at);
            return -1;
        }
        memcpy (s_points [count].name, at, name_length);
        s_points [count].name [name_length] = 0;
        s_points [count].stall_ms = stall_ms;
        s_points [count].nth = nth;
        atomic_init (&s_points [count].passes, 0);
        count++;
        at += length;
        if (*at == ',')
            at++;
    }
    return count;
}

static void
s_load (void)
{
    const char *spec = getenv ("AIRLOCK_STALLPOINT");
    s_point_count = spec? s_parse (spec): 0;
    if (s_point_count < 0)
        fprintf (stderr, "stallpoint: %s (no stall point armed)\n", s_error);
    s_arm_dir = getenv ("AIRLOCK_STALLPOINT_ARM");
    if (s_arm_dir && !*s_arm_dir)
        s_arm_dir = NULL;
}

//  With AIRLOCK_STALLPOINT_ARM: the trigger file DIR/NAME existed (and is now gone).
static int
s_triggered (const char *name)
{
    char path [1024];
    if (snprintf (path, sizeof path, "%s/%s", s_arm_dir, name) >= (int) sizeof path)
        return 0;
    return unlink (path) == 0;
}

void
al_stallpoint (const char *name)
{
    pthread_once (&s_once, s_load);
    if (s_point_count <= 0)
        return;
    for (int i = 0; i < s_point_count; i++) {
        if (strcmp (s_points [i].name, name) != 0)
            continue;
        unsigned long pass = atomic_fetch_add (&s_points [i].passes, 1) + 1;
        if (s_arm_dir? s_triggered (name): pass == s_points [i].nth) {
            //  Said on stderr before and after, so a log shows where the thread hung.
            fprintf (stderr, "stallpoint: %s (pass %lu): stalling %lu ms\n", name, pass, s_points [i].stall_ms);
            al_clock_sleep_ms ((int64_t) s_points [i].stall_ms);
            fprintf (stderr, "stallpoint: %s (pass %lu): resumed\n", name, pass);
        }
    }
}

int
al_stallpoint_configured (char *error, size_t error_size)
{
    pthread_once (&s_once, s_load);
    if (s_point_count < 0 && error && error_size)
        snprintf (error, error_size, "%s", s_error);
    return s_point_count;
}
