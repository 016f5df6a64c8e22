/*  driver_test_util.c: helpers shared by the driver tests (see driver_test_util.h). */
#include "driver_test_util.h"
#include <stdarg.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void
dt_become_subreaper (void)
{
    assert_int_equal (prctl (PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
}

char *
dt_temp_dir (const char *prefix)
{
    char *path = NULL;
    assert_true (asprintf (&path, "/tmp/%s-XXXXXX", prefix) > 0);
    assert_non_null (mkdtemp (path));
    return path;
}

static int
s_remove (const char *path, const struct stat *info, int flag, struct FTW *ftw)
{
    (void) info;
    (void) flag;
    (void) ftw;
    remove (path);
    return 0;
}

void
dt_remove_tree (const char *path)
{
    if (path)
        nftw (path, s_remove, 16, FTW_DEPTH | FTW_PHYS);
}

const char *
dt_demo_service (void)
{
    static char path [4096];
    const char *binary_dir = getenv ("AIRLOCK_BINARY_DIR");
    assert_non_null (binary_dir);
    snprintf (path, sizeof (path), "%s/demo-service", binary_dir);
    assert_int_equal (access (path, X_OK), 0);
    return path;
}

const char *
dt_script (const char *name, char *buffer, size_t size)
{
    const char *source_dir = getenv ("AIRLOCK_SOURCE_DIR");
    assert_non_null (source_dir);
    snprintf (buffer, size, "%s/tests/drivers/scripts/%s", source_dir, name);
    assert_int_equal (access (buffer, R_OK), 0);
    return buffer;
}

static void
s_pause_ms (long milliseconds)
{
    struct timespec pause = { milliseconds / 1000, (milliseconds % 1000) * 1000000L };
    nanosleep (&pause, NULL);
}

static bool
s_running (pid_t pid)
{
    char path [64];
    snprintf (path, sizeof (path), "/proc/%d/stat", (int) pid);
    FILE *file = fopen (path, "r");
    if (!file)
        return false;
    char line [512] = "";
    bool got = fgets (line, sizeof (line), file) != NULL;
    fclose (file);
    const char *close = got ? strrchr (line, ')') : NULL;
    return close && close [1] == ' ' && close [2] != 'Z' && close [2] != 'X';
}

bool
dt_pid_gone (pid_t pid)
{
    assert_true (pid > 0);
    for (int i = 0; i < 1000; i++) {
        waitpid (pid, NULL, WNOHANG);
        if (!s_running (pid))
            return true;
        s_pause_ms (10);
    }
    return false;
}

void
dt_reap_all (int timeout_ms)
{
    for (int waited = 0; ; waited += 10) {
        pid_t pid;
        while ((pid = waitpid (-1, NULL, WNOHANG)) > 0)
            ;
        if (pid < 0 && errno == ECHILD)
            return;
        if (waited >= timeout_ms)
            return;
        s_pause_ms (10);
    }
}

bool
dt_file_contains (const char *path, const char *text)
{
    FILE *file = fopen (path, "rb");
    if (!file)
        return false;
    size_t capacity = 1 << 20;
    char *data = calloc (1, capacity + 1);
    assert_non_null (data);
    size_t size = fread (data, 1, capacity, file);
    fclose (file);
    bool found = memmem (data, size, text, strlen (text)) != NULL;
    free (data);
    return found;
}

static const char *s_tree_text;
static char *s_tree_found;
static size_t s_tree_found_size;
static bool s_tree_hit;

static int
s_tree_visit (const char *path, const struct stat *info, int flag, struct FTW *ftw)
{
    (void) info;
    (void) ftw;
    if (flag == FTW_F && dt_file_contains (path, s_tree_text)) {
        if (s_tree_found && !s_tree_hit)
            snprintf (s_tree_found, s_tree_found_size, "%s", path);
        s_tree_hit = true;
    }
    return 0;
}

bool
dt_tree_contains (const char *dir, const char *text, char *found, size_t found_size)
{
    s_tree_text = text;
    s_tree_found = found;
    s_tree_found_size = found_size;
    s_tree_hit = false;
    nftw (dir, s_tree_visit, 16, FTW_PHYS);
    return s_tree_hit;
}
