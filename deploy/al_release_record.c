/*  al_release_record.c: deploy-manager's release record (see al_release_record.h).
*/
#include "deploy/al_release_record.h"
#include "base/al_file.h"
#include "base/al_paths.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_FORMAT "airlock-release-record-v1"

static bool
s_plain_name (const char *name)
{
    if (!name || !*name || name [0] == '.')
        return false;
    for (const char *c = name; *c; c++)
        if (!isalnum ((unsigned char) *c) && *c != '.' && *c != '_' && *c != '-')
            return false;
    return true;
}

static bool
s_path (const char *dir, const char *middle, const char *service, const char *env, char *path, size_t size)
{
    assert (dir && path);
    if (!s_plain_name (service) || !s_plain_name (env)) {
        if (size)
            *path = 0;
        return false;
    }
    int length = snprintf (path, size, "%s%s/releases/%s/%s.json", dir, middle, service, env);
    return length >= 0 && (size_t) length < size;
}

bool
al_release_record_path (const char *deploy_dir, const char *service, const char *env, char *path, size_t size)
{
    return s_path (deploy_dir, "", service, env, path, size);
}

bool
al_release_record_path_in_state (const char *state_dir, const char *service, const char *env, char *path, size_t size)
{
    char error [256];
    return al_paths_release_record (state_dir, service, env, path, size, error, sizeof error) == 0;
}

static void
s_release_from_json (json_t *object, al_release_t *release)
{
    memset (release, 0, sizeof *release);
    if (!json_is_object (object))
        return;
    const char *version = json_string_value (json_object_get (object, "version"));
    const char *digest = json_string_value (json_object_get (object, "artifact_sha256"));
    const char *uri = json_string_value (json_object_get (object, "artifact_uri"));
    const char *id = json_string_value (json_object_get (object, "deployment_id"));
    json_t *instances = json_object_get (object, "instances");
    if (!version || !digest || !uri)
        return;
    release->present = true;
    snprintf (release->version, sizeof release->version, "%s", version);
    snprintf (release->digest, sizeof release->digest, "%s", digest);
    snprintf (release->artifact_uri, sizeof release->artifact_uri, "%s", uri);
    snprintf (release->deployment_id, sizeof release->deployment_id, "%s", id? id: "");
    release->instances = json_is_integer (instances)? (unsigned) json_integer_value (instances): 0;
}

static json_t *
s_release_to_json (const al_release_t *release)
{
    if (!release->present)
        return json_null ();
    return json_pack ("{s:s, s:s, s:s, s:s, s:i}", "version", release->version,
                      "artifact_sha256", release->digest, "artifact_uri", release->artifact_uri,
                      "deployment_id", release->deployment_id, "instances", (int) release->instances);
}

int
al_release_record_load (const char *path, al_release_record_t *record, char *error, size_t error_size)
{
    assert (path && record);
    memset (record, 0, sizeof *record);
    if (access (path, F_OK) != 0)
        return 0;
    json_error_t parse_error;
    json_t *root = json_load_file (path, 0, &parse_error);
    if (!root) {
        snprintf (error, error_size, "%s:%d: %s", path, parse_error.line, parse_error.text);
        return -1;
    }
    s_release_from_json (json_object_get (root, "current"), &record->current);
    s_release_from_json (json_object_get (root, "previous"), &record->previous);
    json_decref (root);
    if (!record->current.present) {
        snprintf (error, error_size, "%s: no current release in the record", path);
        return -1;
    }
    return 0;
}

int
al_release_record_save (const char *path, const char *service, const char *env,
                        const al_release_record_t *record, char *error, size_t error_size)
{
    assert (path && service && env && record);
    assert (record->current.present);
    int rc = -1;
    char *copy = strdup (path);
    char *dir = copy? dirname (copy): NULL;
    json_t *root = json_pack ("{s:s, s:s, s:s, s:o, s:o}", "format", S_FORMAT, "service", service,
                              "environment", env, "current", s_release_to_json (&record->current),
                              "previous", s_release_to_json (&record->previous));
    char *text = root? json_dumps (root, JSON_INDENT (2) | JSON_SORT_KEYS): NULL;
    if (!dir || !text) {
        snprintf (error, error_size, "%s: cannot encode JSON", path);
        goto cleanup;
    }
    //  Atomically (al_file): the previous record or this one survives a crash, never half.
    if (al_file_make_directories (dir, 0700, error, error_size) != 0
    ||  al_file_write_atomic_text (path, text, 0600, error, error_size) != 0)
        goto cleanup;
    rc = 0;
cleanup:
    free (text);
    free (copy);
    json_decref (root);
    return rc;
}
