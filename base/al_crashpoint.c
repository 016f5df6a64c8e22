/*  al_crashpoint.c: named crash points (see al_crashpoint.h for the contract).

    AIRLOCK_CRASHPOINT is parsed once (pthread_once) into a small fixed table by the
    parser it shares with al_stallpoint (al_testpoint_int.h); a pass
    through a point looks its name up only when the table is not empty, so an unset
    variable costs one flag read per pass. The counters are atomic: the broker's reactor
    and deploy-manager's worker may pass points on different threads. A spec that does not
    parse arms nothing and says why on stderr once (a test hook must not crash a product
    by being mistyped; al_crashpoint_configured lets a test see the error).
*/
#include "base/al_crashpoint.h"
#include "base/al_testpoint_int.h"
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static pthread_once_t s_once = PTHREAD_ONCE_INIT;
static al_testpoint_table_t s_table = {
    .variable = "AIRLOCK_CRASHPOINT", .arm_variable = "AIRLOCK_CRASHPOINT_ARM",
    .tag = "crashpoint", .unarmed = "no crash point armed",
    .field = { { .label = "NTH", .minimum = 1, .maximum = ULONG_MAX, .fallback = 1 } },
    .field_count = 1,
};

static void
s_load (void)
{
    al_testpoint_load (&s_table);
}

//  With AIRLOCK_CRASHPOINT_ARM: may this point fire (its marker file was free)?
static int
s_claim (const char *name)
{
    if (!s_table.arm_dir)
        return 1;
    char path [1024];
    if (snprintf (path, sizeof path, "%s/%s", s_table.arm_dir, name) >= (int) sizeof path)
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
    if (s_table.count <= 0)
        return;
    unsigned long pass;
    for (int i = 0; (pass = al_testpoint_pass (&s_table, name, &i)) != 0; i++) {
        if (pass == s_table.point [i].value [0] && s_claim (name)) {
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
    return al_testpoint_configured (&s_table, error, error_size);
}
