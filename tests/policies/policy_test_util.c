/*  policy_test_util.c: scratch copies of the default policy for the policy tests.

    Single-threaded test code; setup failures abort the test through assert.
*/
#include "policy_test_util.h"
#include "policies/al_policy.h"
#include <assert.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *
pt_default_dir (void)
{
    static char path [4096];
    const char *source = getenv ("AIRLOCK_SOURCE_DIR");
    snprintf (path, sizeof path, "%s/policies/default", source ? source : ".");
    return path;
}

char *
pt_read_file (const char *dir, const char *name)
{
    char path [4096];
    snprintf (path, sizeof path, "%s/%s", dir, name);
    FILE *file = fopen (path, "rb");
    assert (file);
    fseek (file, 0, SEEK_END);
    long size = ftell (file);
    assert (size >= 0);
    rewind (file);
    char *text = malloc ((size_t) size + 1);
    assert (text);
    assert (fread (text, 1, (size_t) size, file) == (size_t) size);
    text [size] = 0;
    fclose (file);
    return text;
}

void
pt_write_file (const char *dir, const char *name, const char *text)
{
    char path [4096];
    snprintf (path, sizeof path, "%s/%s", dir, name);
    FILE *file = fopen (path, "wb");
    assert (file);
    assert (fwrite (text, 1, strlen (text), file) == strlen (text));
    fclose (file);
}

char *
pt_copy_default (void)
{
    char template [] = "/tmp/airlock-policy-XXXXXX";
    char *dir = mkdtemp (template);
    assert (dir);
    for (size_t i = 0; i < AL_POLICY_FILE_COUNT; i++) {
        char *text = pt_read_file (pt_default_dir (), al_policy_file_name (i));
        pt_write_file (dir, al_policy_file_name (i), text);
        free (text);
    }
    return strdup (dir);
}

void
pt_remove_dir (const char *dir)
{
    DIR *handle = opendir (dir);
    if (!handle)
        return;
    struct dirent *entry;
    while ((entry = readdir (handle))) {
        if (strcmp (entry->d_name, ".") == 0 || strcmp (entry->d_name, "..") == 0)
            continue;
        char path [4096];
        snprintf (path, sizeof path, "%s/%s", dir, entry->d_name);
        unlink (path);
    }
    closedir (handle);
    rmdir (dir);
}
