/*  al_orchestrator_release.c: the orchestrator's release files (see al_orchestrator_release.h).

    Paths come from base/al_paths, bytes go through base/al_file (capped read, atomic
    write). Nothing else in airlock opens these files.
*/
#include "agents/al_orchestrator_release.h"
#include "base/al_error.h"
#include "base/al_file.h"
#include "base/al_id.h"
#include "base/al_paths.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
al_orchestrator_release_path (const char *state_dir, const char *id, char *path, size_t path_size,
                              char *error, size_t error_size)
{
    assert (state_dir && path && error);
    if (!id || !al_id_release_valid (id)) {
        al_error_set (error, error_size, "release id '%.100s': 1..56 of [A-Za-z0-9._-], not starting with '.'",
                      id? id: "");
        return -1;
    }
    return al_paths_orchestrator_release (state_dir, id, path, path_size, error, error_size);
}

static const char *
s_text (json_t *document, const char *key)
{
    const char *value = json_string_value (json_object_get (document, key));
    return value? value: "";
}

al_orchestrator_release_t *
al_orchestrator_release_load (const char *state_dir, const char *id, char *error, size_t error_size)
{
    assert (state_dir && error);
    char path [4200];
    if (al_orchestrator_release_path (state_dir, id, path, sizeof path, error, error_size) != 0) {
        char why [512];
        al_error_set (why, sizeof why, "%s", error);
        al_error_set (error, error_size, "no release %.100s (%s)", id? id: "", why);
        errno = EINVAL;
        return NULL;
    }
    size_t size = 0;
    char *data = al_file_read (path, AL_ORCHESTRATOR_RELEASE_MAX_SIZE, &size, error, error_size);
    if (!data) {
        int cause = errno;
        if (cause == ENOENT)
            al_error_set (error, error_size, "no release %s (no %s)", id, path);
        errno = cause;
        return NULL;
    }
    json_error_t parse;
    json_t *document = json_loadb (data, size, 0, &parse);
    free (data);
    if (!json_is_object (document)) {
        if (document)
            al_error_set (error, error_size, "%s: not a JSON object", path);
        else
            al_error_set (error, error_size, "%s:%d: not JSON: %s", path, parse.line, parse.text);
        json_decref (document);
        errno = EINVAL;
        return NULL;
    }
    al_orchestrator_release_t *self = calloc (1, sizeof *self);
    if (!self) {
        al_error_set (error, error_size, "%s: out of memory", path);
        json_decref (document);
        return NULL;
    }
    self->document = document;
    self->release_id = s_text (document, "release_id");
    self->service = s_text (document, "service");
    self->version = s_text (document, "version");
    self->type = s_text (document, "type");
    self->state = s_text (document, "state");
    self->detail = s_text (document, "detail");
    self->artifact_uri = s_text (document, "artifact_uri");
    self->artifact_sha256 = s_text (document, "artifact_sha256");
    self->submitted_by = s_text (document, "submitted_by");
    self->created_ms = (int64_t) json_integer_value (json_object_get (document, "created_ms"));
    self->updated_ms = (int64_t) json_integer_value (json_object_get (document, "updated_ms"));
    return self;
}

void
al_orchestrator_release_destroy (al_orchestrator_release_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        json_decref ((*self_p)->document);
        free (*self_p);
        *self_p = NULL;
    }
}

static int
s_name_compare (const void *a, const void *b)
{
    return strcmp (*(char *const *) a, *(char *const *) b);
}

int
al_orchestrator_release_each (const char *state_dir, al_orchestrator_release_fn *fn, void *arg,
                              char *error, size_t error_size)
{
    assert (state_dir && fn && error);
    char dir_path [4096];
    if (al_paths_get (state_dir, AL_PATH_ORCHESTRATOR_RELEASES_DIR, dir_path, sizeof dir_path,
                      error, error_size) != 0)
        return -1;
    DIR *dir = opendir (dir_path);
    if (!dir) {
        if (errno == ENOENT)
            return 0;
        al_error_set (error, error_size, "%s: %s", dir_path, strerror (errno));
        return -1;
    }
    int rc = -1;
    char **names = NULL;
    size_t count = 0, capacity = 0;
    struct dirent *item;
    errno = 0;
    while ((item = readdir (dir))) {
        size_t length = strlen (item->d_name);
        if (length <= 5 || item->d_name [0] == '.' || strcmp (item->d_name + length - 5, ".json") != 0)
            continue;
        if (count == capacity) {
            capacity = capacity? capacity * 2: 32;
            char **grown = realloc (names, capacity * sizeof *grown);
            if (!grown) {
                al_error_set (error, error_size, "%s: out of memory", dir_path);
                goto cleanup;
            }
            names = grown;
        }
        if (!(names [count] = strndup (item->d_name, length - 5))) {
            al_error_set (error, error_size, "%s: out of memory", dir_path);
            goto cleanup;
        }
        count++;
        errno = 0;
    }
    if (errno != 0) {
        al_error_set (error, error_size, "%s: %s", dir_path, strerror (errno));
        goto cleanup;
    }
    //  In name order, so that whoever shows them shows them the same every time.
    if (count)
        qsort (names, count, sizeof *names, s_name_compare);
    for (size_t i = 0; i < count; i++)
        fn (names [i], arg);
    rc = (int) count;
cleanup:
    closedir (dir);
    for (size_t i = 0; i < count; i++)
        free (names [i]);
    free (names);
    return rc;
}

int
al_orchestrator_release_save (const char *state_dir, const json_t *document, char *error, size_t error_size)
{
    assert (state_dir && document && error);
    const char *id = json_string_value (json_object_get (document, "release_id"));
    char path [4200], dir [4096];
    if (al_orchestrator_release_path (state_dir, id, path, sizeof path, error, error_size) != 0
    ||  al_paths_get (state_dir, AL_PATH_ORCHESTRATOR_RELEASES_DIR, dir, sizeof dir, error, error_size) != 0
    ||  al_file_make_directories (dir, 0700, error, error_size) != 0)
        return -1;
    char *text = json_dumps (document, JSON_INDENT (2) | JSON_SORT_KEYS);
    if (!text) {
        al_error_set (error, error_size, "%s: cannot encode the release", path);
        return -1;
    }
    int rc = al_file_write_atomic_text (path, text, 0600, error, error_size);
    free (text);
    return rc;
}
