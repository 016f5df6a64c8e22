/*  al_instances.c: the instance registry and its file_sd.json (see al_instances.h).
*/
#include "deploy/al_instances.h"
#include "base/al_file.h"
#include "base/al_paths.h"

#include <assert.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_MAX_SIZE (16u * 1024 * 1024)

//  ---- paths --------------------------------------------------------------------------

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
s_path (const char *deploy_dir, const char *middle, const char *service, const char *env, const char *file,
        char *path, size_t size)
{
    assert (deploy_dir && path);
    if (!s_plain_name (service) || !s_plain_name (env)) {
        if (size)
            *path = 0;
        return false;
    }
    int length = snprintf (path, size, "%s%s/drivers/%s/%s%s", deploy_dir, middle, service, env, file);
    return length >= 0 && (size_t) length < size;
}

bool
al_instances_dir (const char *deploy_dir, const char *service, const char *env, char *path, size_t size)
{
    return s_path (deploy_dir, "", service, env, "", path, size);
}

bool
al_instances_path (const char *deploy_dir, const char *service, const char *env, char *path, size_t size)
{
    return s_path (deploy_dir, "", service, env, "/instances.json", path, size);
}

bool
al_instances_path_in_state (const char *state_dir, const char *service, const char *env, char *path, size_t size)
{
    char error [256];
    return al_paths_instances (state_dir, service, env, path, size, error, sizeof error) == 0;
}

//  ---- reading ------------------------------------------------------------------------

//  A member of one entry, checked: an integer in [min, max]; absent is 0 when optional.
static bool
s_json_int (json_t *object, const char *key, bool optional, long long min, long long max, long long *value_p,
            const char *file, size_t index, char *error, size_t error_size)
{
    json_t *value = json_object_get (object, key);
    if (!value && optional) {
        *value_p = 0;
        return true;
    }
    if (!json_is_integer (value) || json_integer_value (value) < min || json_integer_value (value) > max) {
        snprintf (error, error_size, "%s: instances[%zu].%s: not an integer in %lld..%lld",
                  file, index, key, min, max);
        return false;
    }
    *value_p = json_integer_value (value);
    return true;
}

static void
s_copy_string (json_t *object, const char *key, char *buffer, size_t size, bool *present_p)
{
    const char *value = json_string_value (json_object_get (object, key));
    snprintf (buffer, size, "%s", value? value: "");
    if (present_p)
        *present_p = value != NULL;
}

//  Read the whole file at fd (at most S_MAX_SIZE) into *text_p (caller frees).
static int
s_read_text (int fd, const char *file, bool ours, char **text_p, size_t *size_p, char *error, size_t error_size)
{
    struct stat info;
    if (fstat (fd, &info) != 0) {
        snprintf (error, error_size, "%s: %s", file, strerror (errno));
        return -1;
    }
    //  The registry says which processes to kill: only our own file may say so.
    if (ours && (!S_ISREG (info.st_mode) || info.st_uid != geteuid () || (info.st_mode & 022))) {
        snprintf (error, error_size, "%s: not a regular file of ours that only we can write "
                  "(owner %u, mode %03o); refusing to act on it",
                  file, (unsigned) info.st_uid, (unsigned) (info.st_mode & 0777));
        return -1;
    }
    if (!S_ISREG (info.st_mode)) {
        snprintf (error, error_size, "%s: not a regular file", file);
        return -1;
    }
    if ((unsigned long long) info.st_size > S_MAX_SIZE) {
        snprintf (error, error_size, "%s: %lld bytes, larger than a registry can be", file, (long long) info.st_size);
        return -1;
    }
    size_t size = 0;
    char *text = malloc ((size_t) info.st_size + 1);
    while (text && size < (size_t) info.st_size) {
        ssize_t got = read (fd, text + size, (size_t) info.st_size - size);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        size += (size_t) got;
    }
    if (!text || size != (size_t) info.st_size) {
        snprintf (error, error_size, "%s: cannot read: %s", file, text? strerror (errno): "out of memory");
        free (text);
        return -1;
    }
    *text_p = text;
    *size_p = size;
    return 0;
}

//  Check entry index of the registry and fill record. Returns false with error.
static bool
s_entry (json_t *entry, size_t index, al_instances_use_t use, al_instance_record_t *record, const char *file,
         char *error, size_t error_size)
{
    json_t *id = json_object_get (entry, "id");
    if (!json_is_object (entry) || !json_is_string (id) || !*json_string_value (id)) {
        snprintf (error, error_size, "%s: instances[%zu]: not an object with a string id", file, index);
        return false;
    }
    bool stop = use == AL_INSTANCES_TO_STOP;
    long long pid, pgid, start_time, port, instance;
    //  pid 1 and group 0 or 1 would signal init or every process we may signal; who
    //  only connects takes a pid as a label (0: unknown).
    long long lowest = stop? 2: 0;
    if (!s_json_int (entry, "pid", !stop, lowest, INT_MAX, &pid, file, index, error, error_size)
    ||  !s_json_int (entry, "pgid", !stop, lowest, INT_MAX, &pgid, file, index, error, error_size)
    ||  !s_json_int (entry, "start_time", !stop, 0, LLONG_MAX, &start_time, file, index, error, error_size)
    ||  !s_json_int (entry, "port", stop, 1, 65535, &port, file, index, error, error_size)
    ||  !s_json_int (entry, "instance", true, 0, INT_MAX, &instance, file, index, error, error_size))
        return false;
    snprintf (record->id, sizeof record->id, "%s", json_string_value (id));
    s_copy_string (entry, "service", record->service, sizeof record->service, NULL);
    s_copy_string (entry, "version", record->version, sizeof record->version, &record->has_version);
    s_copy_string (entry, "set", record->set, sizeof record->set, NULL);
    record->pid = (int) pid;
    record->pgid = (int) pgid;
    record->start_time = (unsigned long long) start_time;
    record->port = (int) port;
    record->instance = (int) instance;
    return true;
}

int
al_instances_read (const char *path, al_instances_use_t use, al_instance_record_t **records_p,
                   size_t *count_p, bool *found_p, char *error, size_t error_size)
{
    assert (path && records_p && count_p);
    *records_p = NULL;
    *count_p = 0;
    if (found_p)
        *found_p = false;
    int rc = -1;
    char *text = NULL;
    json_t *root = NULL;
    al_instance_record_t *records = NULL;
    int fd = open (path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno == ENOENT)
        return 0;
    if (fd < 0) {
        snprintf (error, error_size, "%s: %s", path, strerror (errno));
        goto cleanup;
    }
    if (found_p)
        *found_p = true;
    size_t size = 0;
    if (s_read_text (fd, path, use == AL_INSTANCES_TO_STOP, &text, &size, error, error_size) != 0)
        goto cleanup;
    bool blank = true;
    for (size_t i = 0; i < size && blank; i++)
        blank = isspace ((unsigned char) text [i]);
    if (blank) {
        rc = 0;
        goto cleanup;
    }
    json_error_t parse_error;
    root = json_loadb (text, size, JSON_REJECT_DUPLICATES, &parse_error);
    if (!root) {
        snprintf (error, error_size, "%s:%d: %s", path, parse_error.line, parse_error.text);
        goto cleanup;
    }
    json_t *instances = json_object_get (root, "instances");
    json_t *format = json_object_get (root, "format");
    if (!json_is_object (root) || !json_is_integer (format)
    ||  json_integer_value (format) != AL_INSTANCES_FORMAT || !json_is_array (instances)) {
        snprintf (error, error_size, "%s: not an instance registry (an object with "
                  "\"format\": %d and an \"instances\" array)", path, AL_INSTANCES_FORMAT);
        goto cleanup;
    }
    size_t count = json_array_size (instances);
    records = calloc (count? count: 1, sizeof *records);
    if (!records) {
        snprintf (error, error_size, "%s: out of memory", path);
        goto cleanup;
    }
    for (size_t i = 0; i < count; i++)
        if (!s_entry (json_array_get (instances, i), i, use, &records [i], path, error, error_size))
            goto cleanup;
    *records_p = records;
    records = NULL;
    *count_p = count;
    rc = 0;

cleanup:
    free (records);
    json_decref (root);
    free (text);
    if (fd >= 0)
        close (fd);
    return rc;
}

//  ---- rewrites killed before their rename -------------------------------------------

//  Is name (in path's directory) a temporary of path's rewrite: base + ".XXXXXX" (our
//  mkostemp's) or base + ".tmp-XXXXXX" (al_file_write_atomic's)?
static bool
s_unrenamed (const char *base, const char *name)
{
    size_t base_size = strlen (base), size = strlen (name);
    if (strncmp (name, base, base_size) != 0 || name [base_size] != '.')
        return false;
    return size == base_size + 7 || (size == base_size + 11 && strncmp (name + base_size, ".tmp-", 5) == 0);
}

//  Call each (temporary path, arg) for every unrenamed rewrite of path; stops at a
//  non-zero return and returns it (0 when none, or the directory cannot be read).
static int
s_each_unrenamed (const char *path, int (*each) (const char *, void *), void *arg)
{
    char directory [PATH_MAX], file [PATH_MAX];
    if (snprintf (directory, sizeof directory, "%s", path) >= (int) sizeof directory)
        return 0;
    char *slash = strrchr (directory, '/');
    const char *base = slash? path + (slash - directory) + 1: path;
    if (slash)
        *slash = 0;
    DIR *dir = opendir (slash? (*directory? directory: "/"): ".");
    if (!dir)
        return 0;
    int rc = 0;
    struct dirent *entry;
    while (rc == 0 && (entry = readdir (dir)) != NULL)
        if (s_unrenamed (base, entry->d_name)
        &&  snprintf (file, sizeof file, "%s/%s", slash? directory: ".", entry->d_name) < (int) sizeof file)
            rc = each (file, arg);
    closedir (dir);
    return rc;
}

typedef struct {
    al_instance_record_t **records_p;
    size_t *count_p;
} s_gather_t;

static int
s_gather (const char *file, void *arg)
{
    s_gather_t *gather = arg;
    al_instance_record_t *more = NULL;
    size_t more_count = 0;
    char ignored [512];
    if (al_instances_read (file, AL_INSTANCES_TO_STOP, &more, &more_count, NULL, ignored, sizeof ignored) != 0
    ||  more_count == 0) {
        free (more);
        return 0;
    }
    size_t count = *gather->count_p;
    al_instance_record_t *all = realloc (*gather->records_p, (count + more_count) * sizeof *all);
    if (all) {
        memcpy (all + count, more, more_count * sizeof *all);
        *gather->records_p = all;
        *gather->count_p = count + more_count;
    }
    free (more);
    return all? 0: -1;
}

int
al_instances_read_unrenamed (const char *path, al_instance_record_t **records_p, size_t *count_p,
                             char *error, size_t error_size)
{
    assert (path && records_p && count_p);
    s_gather_t gather = { records_p, count_p };
    if (s_each_unrenamed (path, s_gather, &gather) != 0) {
        snprintf (error, error_size, "%s: out of memory", path);
        return -1;
    }
    return 0;
}

static int
s_remove (const char *file, void *arg)
{
    (void) arg;
    unlink (file);
    return 0;
}

void
al_instances_remove_unrenamed (const char *path)
{
    assert (path);
    s_each_unrenamed (path, s_remove, NULL);
}

//  ---- writing ------------------------------------------------------------------------

//  The registry, then (unless registry_only) file_sd.json, each replaced atomically.
static int
s_write (const char *path, const char *host, const al_instance_record_t *records, size_t count,
         bool registry_only, char *error, size_t error_size)
{
    assert (path && host);
    assert (records || count == 0);
    int rc = -1;
    char *text = NULL, *targets_text = NULL, *copy = NULL, *file_sd = NULL;
    json_t *instances = json_array ();
    json_t *targets = json_array ();
    json_t *root = json_pack ("{s:i, s:s, s:I, s:O}", "format", AL_INSTANCES_FORMAT, "driver", "process",
                              "owner_pid", (json_int_t) getpid (), "instances", instances);
    bool built = root && targets && instances;
    for (size_t i = 0; built && i < count; i++) {
        const al_instance_record_t *record = &records [i];
        char target [AL_DRIVER_ENDPOINT_SIZE];
        snprintf (target, sizeof target, "%s:%d", host, record->port);
        built = json_array_append_new (instances, json_pack ("{s:s, s:s, s:s, s:s, s:i, s:I, s:I, s:I, s:i}",
                                       "id", record->id, "service", record->service, "version", record->version,
                                       "set", record->set, "port", record->port, "pid", (json_int_t) record->pid,
                                       "pgid", (json_int_t) record->pgid, "start_time", (json_int_t) record->start_time,
                                       "instance", record->instance)) == 0
             && json_array_append_new (targets, json_pack ("{s:[s], s:{s:s, s:s, s:s, s:s}}", "targets", target,
                                       "labels", "service", record->service, "environment", record->environment,
                                       "version", record->version, "instance_id", record->id)) == 0;
    }
    text = built? json_dumps (root, JSON_INDENT (2)): NULL;
    targets_text = built? json_dumps (targets, JSON_INDENT (2)): NULL;
    copy = strdup (path);
    char *dir = copy? dirname (copy): NULL;
    if (!text || !targets_text || !dir || asprintf (&file_sd, "%s/file_sd.json", dir) < 0) {
        file_sd = NULL;
        snprintf (error, error_size, "%s: out of memory", path);
        goto cleanup;
    }
    //  Each replaced atomically (al_file): a reader sees the old file or the new one.
    if (registry_only) {
        if (al_file_write_atomic_unsynced (path, text, strlen (text), 0600, error, error_size) != 0)
            goto cleanup;
    }
    else
    if (al_file_write_atomic_text (path, text, 0600, error, error_size) != 0
    ||  al_file_write_atomic_text (file_sd, targets_text, 0600, error, error_size) != 0)
        goto cleanup;
    rc = 0;

cleanup:
    free (text);
    free (targets_text);
    free (copy);
    free (file_sd);
    json_decref (root);
    json_decref (instances);
    json_decref (targets);
    return rc;
}

int
al_instances_write (const char *path, const char *host, const al_instance_record_t *records, size_t count,
                    char *error, size_t error_size)
{
    return s_write (path, host, records, count, false, error, error_size);
}

int
al_instances_write_unsynced (const char *path, const al_instance_record_t *records, size_t count,
                             char *error, size_t error_size)
{
    return s_write (path, "", records, count, true, error, error_size);
}
