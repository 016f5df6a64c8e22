/*  test_file.c: al_file, atomic replacement and capped reads.

    A write must leave exactly the new bytes with exactly the mode asked (umask
    ignored) and no temporary file; a failed write must leave the old file untouched,
    no temporary file, and an error naming the path. A read must return the bytes
    NUL-terminated, and refuse (never cut) a file over the cap.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "base/al_file.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    char directory [64];
    char path [128];
} s_fixture_t;

static int
s_setup (void **state)
{
    s_fixture_t *fixture = calloc (1, sizeof *fixture);
    snprintf (fixture->directory, sizeof fixture->directory, "/tmp/test_file-XXXXXX");
    if (!mkdtemp (fixture->directory))
        return -1;
    snprintf (fixture->path, sizeof fixture->path, "%s/receipt.json", fixture->directory);
    *state = fixture;
    return 0;
}

static int
s_teardown (void **state)
{
    s_fixture_t *fixture = *state;
    char command [200];
    snprintf (command, sizeof command, "rm -rf '%s'", fixture->directory);
    int rc = system (command);
    free (fixture);
    return rc == 0 ? 0 : -1;
}

//  Entries in directory (besides . and ..).
static int
s_entries (const char *directory)
{
    DIR *dir = opendir (directory);
    assert_non_null (dir);
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir (dir)))
        if (strcmp (entry->d_name, ".") && strcmp (entry->d_name, ".."))
            count++;
    closedir (dir);
    return count;
}

static void
test_write_then_read (void **state)
{
    s_fixture_t *fixture = *state;
    char error [256] = "";
    mode_t old_umask = umask (077);
    assert_int_equal (al_file_write_atomic_text (fixture->path, "first", 0644, error, sizeof error), 0);
    umask (old_umask);
    struct stat info;
    assert_int_equal (stat (fixture->path, &info), 0);
    assert_int_equal (info.st_mode & 07777, 0644);
    size_t size = 0;
    char *text = al_file_read (fixture->path, 100, &size, error, sizeof error);
    assert_non_null (text);
    assert_int_equal (size, 5);
    assert_string_equal (text, "first");
    free (text);
    //  Replaced, with a new mode; binary with a NUL inside.
    const char bytes [] = { 'a', 0, 'b' };
    assert_int_equal (al_file_write_atomic (fixture->path, bytes, sizeof bytes, 0600, error, sizeof error), 0);
    assert_int_equal (stat (fixture->path, &info), 0);
    assert_int_equal (info.st_mode & 07777, 0600);
    text = al_file_read (fixture->path, 100, &size, error, sizeof error);
    assert_non_null (text);
    assert_int_equal (size, 3);
    assert_memory_equal (text, bytes, 3);
    assert_int_equal (text [3], 0);
    free (text);
    //  Empty content.
    assert_int_equal (al_file_write_atomic (fixture->path, NULL, 0, 0600, error, sizeof error), 0);
    text = al_file_read (fixture->path, 100, &size, error, sizeof error);
    assert_non_null (text);
    assert_int_equal (size, 0);
    free (text);
    //  Unsynced (no fsync of the directory): replaced all the same, mode exact.
    assert_int_equal (al_file_write_atomic_unsynced (fixture->path, "second", 6, 0640, error, sizeof error), 0);
    assert_int_equal (stat (fixture->path, &info), 0);
    assert_int_equal (info.st_mode & 07777, 0640);
    text = al_file_read (fixture->path, 100, &size, error, sizeof error);
    assert_non_null (text);
    assert_string_equal (text, "second");
    free (text);
    assert_int_equal (s_entries (fixture->directory), 1);   // no temporary left
}

static void
test_failed_write_keeps_old (void **state)
{
    s_fixture_t *fixture = *state;
    char error [256] = "";
    assert_int_equal (al_file_write_atomic_text (fixture->path, "old", 0644, error, sizeof error), 0);
    //  A directory where the file should go: rename fails, the temporary is removed.
    char blocked [160];
    snprintf (blocked, sizeof blocked, "%s/blocked", fixture->directory);
    assert_int_equal (mkdir (blocked, 0700), 0);
    char inside [200];
    snprintf (inside, sizeof inside, "%s/child", blocked);
    assert_int_equal (al_file_write_atomic_text (inside, "x", 0644, error, sizeof error), 0);
    assert_int_equal (al_file_write_atomic_text (blocked, "new", 0644, error, sizeof error), -1);
    assert_non_null (strstr (error, blocked));
    assert_non_null (strstr (error, "rename"));
    assert_int_equal (s_entries (fixture->directory), 2);   // receipt.json and blocked only
    //  A missing directory: cannot create the temporary; error names the path.
    char missing [200];
    snprintf (missing, sizeof missing, "%s/no/such/file", fixture->directory);
    assert_int_equal (al_file_write_atomic_text (missing, "x", 0644, error, sizeof error), -1);
    assert_non_null (strstr (error, missing));
    //  The old file is intact; NULL error buffer is allowed.
    assert_int_equal (al_file_write_atomic_text (missing, "x", 0644, NULL, 0), -1);
    char *text = al_file_read (fixture->path, 100, NULL, error, sizeof error);
    assert_non_null (text);
    assert_string_equal (text, "old");
    free (text);
}

static void
test_read_refuses (void **state)
{
    s_fixture_t *fixture = *state;
    char error [256] = "";
    assert_int_equal (al_file_write_atomic_text (fixture->path, "0123456789", 0644, error, sizeof error), 0);
    //  Exactly at the cap: read; one byte over: refused, never cut.
    char *text = al_file_read (fixture->path, 10, NULL, error, sizeof error);
    assert_non_null (text);
    free (text);
    assert_null (al_file_read (fixture->path, 9, NULL, error, sizeof error));
    assert_non_null (strstr (error, fixture->path));
    assert_non_null (strstr (error, "larger than 9 bytes"));
    //  Missing: ENOENT kept for the caller.
    char missing [200];
    snprintf (missing, sizeof missing, "%s/absent", fixture->directory);
    assert_null (al_file_read (missing, 10, NULL, error, sizeof error));
    assert_int_equal (errno, ENOENT);
    assert_non_null (strstr (error, missing));
    //  A directory is not a file.
    assert_null (al_file_read (fixture->directory, 10, NULL, error, sizeof error));
    assert_non_null (strstr (error, "not a regular file"));
}

static void
test_make_directories (void **state)
{
    s_fixture_t *fixture = *state;
    char error [256] = "";
    char deep [200];
    snprintf (deep, sizeof deep, "%s/a/b/c/", fixture->directory);
    assert_int_equal (al_file_make_directories (deep, 0700, error, sizeof error), 0);
    struct stat info;
    assert_int_equal (stat (deep, &info), 0);
    assert_true (S_ISDIR (info.st_mode));
    assert_int_equal (al_file_make_directories (deep, 0700, error, sizeof error), 0);   // again: fine
    //  A file in the way.
    char through [220];
    snprintf (through, sizeof through, "%s/receipt.json/x", fixture->directory);
    assert_int_equal (al_file_write_atomic_text (fixture->path, "x", 0644, error, sizeof error), 0);
    assert_int_equal (al_file_make_directories (through, 0700, error, sizeof error), -1);
    assert_non_null (strstr (error, "receipt.json"));
}

//  The one mkdir -p of the tree (the drivers, the artifact store and the qa agent call
//  it): new directories get the caller's mode, existing ones keep theirs.
static void
test_make_directories_mode (void **state)
{
    s_fixture_t *fixture = *state;
    char error [256] = "";
    char parent [200], deep [220];
    snprintf (parent, sizeof parent, "%s/kept", fixture->directory);
    assert_int_equal (mkdir (parent, 0755), 0);
    assert_int_equal (chmod (parent, 0755), 0);
    snprintf (deep, sizeof deep, "%s/evidence/run", parent);
    assert_int_equal (al_file_make_directories (deep, 0700, error, sizeof error), 0);
    struct stat info;
    assert_int_equal (stat (deep, &info), 0);
    assert_int_equal (info.st_mode & 0777, 0700);
    assert_int_equal (stat (parent, &info), 0);
    assert_int_equal (info.st_mode & 0777, 0755);
    //  A path too long for PATH_MAX is refused with a message, not cut.
    char *longest = malloc (PATH_MAX + 16);
    assert_non_null (longest);
    memset (longest, 'a', PATH_MAX + 15);
    longest [0] = '/';
    longest [PATH_MAX + 15] = 0;
    assert_int_equal (al_file_make_directories (longest, 0700, error, sizeof error), -1);
    assert_non_null (strstr (error, "path too long"));
    free (longest);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_write_then_read, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_make_directories_mode, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_failed_write_keeps_old, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_read_refuses, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_make_directories, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
