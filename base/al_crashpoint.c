/*  al_crashpoint.c: named crash points (see al_crashpoint.h for the contract).

    AIRLOCK_CRASHPOINT is parsed once (pthread_once) into a small fixed table; a pass
    through a point looks its name up only when the table is not empty, so an unset
    variable costs one flag read per pass. The counters are atomic: the broker's reactor
    and deploy-manager's worker may pass points on different threads. A spec that does not
    parse arms nothing and says why on stderr once (a test hook must not crash a product
    by being mistyped; al_crashpoint_configured lets a test see the error).
*/
#include "base/al_crashpoint.h"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_POINTS_MAX 16
#define S_NAME_MAX 64

typedef struct {
    char name [S_NAME_MAX];
    unsigned long nth;
    atomic_ulong passes;
} s_point_t;

static pthread_once_t s_once = PTHREAD_ONCE_INIT;
static s_point_t s_points [S_POINTS_MAX];
static int s_point_count;               // -1: the spec did not parse
static char s_error [256];
static const char *s_arm_dir;

//  Parse "NAME[:NTH][,NAME[:NTH]...]" into s_points; -1 with s_error set if malformed.
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
            snprintf (s_error, sizeof s_error, "AIRLOCK_CRASHPOINT: '%.*s': %s", (int) length, at,
                      count == S_POINTS_MAX? "too many points": "a name of 1 to 63 characters is required");
            return -1;
        }
        for (size_t i = 0; i < name_length; i++)
            if (at [i] == '/' || at [i] <= ' ') {
                snprintf (s_error, sizeof s_error, "AIRLOCK_CRASHPOINT: '%.*s': no '/' or blank in a name",
                          (int) length, at);
                return -1;
            }
        unsigned long nth = 1;
        if (colon) {
            char digits [24];
            size_t digits_length = length - name_length - 1;
            char *end = NULL;
            if (digits_length == 0 || digits_length >= sizeof digits) {
                snprintf (s_error, sizeof s_error, "AIRLOCK_CRASHPOINT: '%.*s': NTH must be a number >= 1",
                          (int) length, at);
                return -1;
            }
            memcpy (digits, colon + 1, digits_length);
            digits [digits_length] = 0;
            errno = 0;
            nth = strtoul (digits, &end, 10);
            if (errno || *end || nth == 0 || digits [0] == '-') {
                snprintf (s_error, sizeof s_error, "AIRLOCK_CRASHPOINT: '%.*s': NTH must be a number >= 1",
                          (int) length, at);
                return -1;
            }
        }
        memcpy (s_points [count].name, at, name_length);
        s_points [count].name [name_length] = 0;
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
    const char *spec = getenv ("AIRLOCK_CRASHPOINT");
    s_point_count = spec? s_parse (spec): 0;
    if (s_point_count < 0)
        fprintf (stderr, "crashpoint: %s (no crash point armed)\n", s_error);
    s_arm_dir = getenv ("AIRLOCK_CRASHPOINT_ARM");
}

//  With AIRLOCK_CRASHPOINT_ARM: may this point fire (its marker file was free)?
static int
s_claim (const char *name)
{
    if (!s_arm_dir || !*s_arm_dir)
        return 1;
    char path [1024];
    if (snprintf (path, sizeof path, "%s/%s", s_arm_dir, name) >= (int) sizeof path)
        return 0;
    int fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return 0;                       // fired before and not re-armed (or unwritable)
    char line [32];
    int length = snprintf (line, sizeof line, "%d\n", (int) getpid ());
    ssize_t written = write (fd, line, (size_t) length);
    (void) written;
    fsync (fd);
    close (fd);
    return 1;
}

void
al_crashpoint (const char *name)
{
    pthread_once (&s_once, s_load);
    if (s_point_count <= 0)
        return;
    for (int i = 0; i < s_point_count; i++) {
        if (strcmp (s_points [i].name, name) != 0)
            continue;
        unsigned long pass = atomic_fetch_add (&s_points [i].passes, 1) + 1;
        if (pass == s_points [i].nth && s_claim (name)) {
            //  Said on stderr first so a log shows where the process died; then the kill
            //  that no handler sees.
            fprintf (stderr, "crashpoint: %s (pass %lu): SIGKILL\n", name, pass);
            kill (getpid (), SIGKILL);
        }
    }
}

int
al_crashpoint_configured (char *error, size_t error_size)
{
    pthread_once (&s_once, s_load);
    if (s_point_count < 0 && error && error_size)
        snprintf (error, error_size, "%s", s_error);
    return s_point_count;
}
