/*  al_qa_reports.c: the QA report store (see al_qa_reports.h).

    Reports are small (at most 100 issues of 511 bytes, a few checks and suites): they
    are read whole, up to S_MAX_SIZE, hashed with libsodium's SHA-256 and parsed from
    the very buffer that was hashed, so what is judged is what the digest names.
*/
#include "deploy/al_qa_reports.h"
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_MAX_SIZE (8 * 1024 * 1024)

static void
s_say (char *buffer, size_t size, const char *format, ...) __attribute__ ((format (printf, 3, 4)));

static void
s_say (char *buffer, size_t size, const char *format, ...)
{
    if (!buffer || size == 0)
        return;
    va_list args;
    va_start (args, format);
    vsnprintf (buffer, size, format, args);
    va_end (args);
}

static bool
s_valid_digest (const char *digest)
{
    if (!digest || strlen (digest) != 64)
        return false;
    for (const char *c = digest; *c; c++)
        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
            return false;
    return true;
}

static void
s_hex_digest (const void *bytes, size_t size, char digest [65])
{
    unsigned char hash [crypto_hash_sha256_BYTES];
    crypto_hash_sha256 (hash, bytes, size);
    sodium_bin2hex (digest, 65, hash, sizeof hash);
}

char *
al_qa_reports_dir (const char *state_dir)
{
    char *path = NULL;
    if (!state_dir || asprintf (&path, "%s/qa/.reports", state_dir) < 0)
        return NULL;
    return path;
}

//  Read the regular file at path whole (at most S_MAX_SIZE bytes). NULL with why.
static char *
s_read (const char *path, size_t *size_p, char *error, size_t error_size)
{
    char *data = NULL;
    int fd = open (path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat info;
    if (fd < 0 || fstat (fd, &info) != 0) {
        s_say (error, error_size, "%s: %s", path, strerror (errno));
        goto cleanup;
    }
    if (!S_ISREG (info.st_mode) || info.st_size > S_MAX_SIZE) {
        s_say (error, error_size, "%s: not a regular file of at most %d bytes", path, S_MAX_SIZE);
        goto cleanup;
    }
    size_t size = (size_t) info.st_size, done = 0;
    data = malloc (size + 1);
    if (!data) {
        s_say (error, error_size, "%s: out of memory", path);
        goto cleanup;
    }
    while (done < size) {
        ssize_t got = read (fd, data + done, size - done);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            s_say (error, error_size, "%s: %s", path, got < 0? strerror (errno): "shorter than it was");
            free (data);
            data = NULL;
            goto cleanup;
        }
        done += (size_t) got;
    }
    data [size] = '\0';
    *size_p = size;
cleanup:
    if (fd >= 0)
        close (fd);
    return data;
}

static int
s_mkdir (const char *path, char *error, size_t error_size)
{
    if (mkdir (path, 0700) != 0 && errno != EEXIST) {
        s_say (error, error_size, "%s: %s", path, strerror (errno));
        return -1;
    }
    return 0;
}

int
al_qa_reports_put (const char *dir, const void *bytes, size_t size, char digest [65],
                   char *error, size_t error_size)
{
    int rc = -1, fd = -1;
    char *path = NULL, *temp = NULL, *parent = NULL;
    s_hex_digest (bytes, size, digest);
    if (asprintf (&path, "%s/%s.json", dir, digest) < 0 || asprintf (&temp, "%s.%d.tmp", path, (int) getpid ()) < 0
    ||  !(parent = strdup (dir))) {
        s_say (error, error_size, "%s: out of memory", dir);
        goto cleanup;
    }
    char *slash = strrchr (parent, '/');
    if (slash && slash != parent) {
        *slash = '\0';
        if (s_mkdir (parent, error, error_size) != 0)
            goto cleanup;
    }
    if (s_mkdir (dir, error, error_size) != 0)
        goto cleanup;
    //  Never overwritten: a report already kept must be these very bytes.
    struct stat info;
    if (lstat (path, &info) == 0) {
        size_t kept_size = 0;
        char *kept = s_read (path, &kept_size, error, error_size);
        bool same = kept && kept_size == size && memcmp (kept, bytes, size) == 0;
        free (kept);
        if (!same) {
            if (kept)
                s_say (error, error_size, "%s: already kept with other bytes than its name says: left as it is", path);
            goto cleanup;
        }
        rc = 0;
        goto cleanup;
    }
    fd = open (temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0400);
    if (fd < 0) {
        s_say (error, error_size, "%s: %s", temp, strerror (errno));
        goto cleanup;
    }
    size_t done = 0;
    while (done < size) {
        ssize_t written = write (fd, (const char *) bytes + done, size - done);
        if (written < 0 && errno == EINTR)
            continue;
        if (written <= 0) {
            s_say (error, error_size, "%s: %s", temp, strerror (errno));
            goto cleanup;
        }
        done += (size_t) written;
    }
    if (fsync (fd) != 0) {
        s_say (error, error_size, "%s: %s", temp, strerror (errno));
        goto cleanup;
    }
    close (fd);
    fd = -1;
    //  link() refuses to replace an existing name, where rename() would not.
    if (link (temp, path) != 0 && errno != EEXIST) {
        s_say (error, error_size, "%s: %s", path, strerror (errno));
        goto cleanup;
    }
    int dir_fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd >= 0) {
        fsync (dir_fd);
        close (dir_fd);
    }
    rc = 0;
cleanup:
    if (fd >= 0)
        close (fd);
    if (temp)
        unlink (temp);
    free (parent);
    free (temp);
    free (path);
    return rc;
}

bool
al_qa_reports_approves (const char *dir, const char *digest, const char *artifact_sha256,
                        char *reason, size_t reason_size)
{
    bool approves = false;
    char *path = NULL, *data = NULL;
    json_t *root = NULL;
    size_t size = 0;
    if (!s_valid_digest (digest)) {
        s_say (reason, reason_size, "QA report digest '%.80s' is not 64 lowercase hex digits", digest? digest: "");
        goto cleanup;
    }
    if (!dir || asprintf (&path, "%s/%s.json", dir, digest) < 0) {
        s_say (reason, reason_size, "QA report %s: no report store", digest);
        path = NULL;
        goto cleanup;
    }
    char error [512];
    data = s_read (path, &size, error, sizeof error);
    if (!data) {
        s_say (reason, reason_size, "QA report %s is not kept: %s", digest, error);
        goto cleanup;
    }
    char actual [65];
    s_hex_digest (data, size, actual);
    if (strcmp (actual, digest) != 0) {
        s_say (reason, reason_size, "%s: its bytes have digest %s, not the %s the request names: altered", path,
               actual, digest);
        goto cleanup;
    }
    json_error_t json_error;
    root = json_loadb (data, size, JSON_REJECT_DUPLICATES, &json_error);
    if (!json_is_object (root)) {
        s_say (reason, reason_size, "%s:%d: %s", path, json_error.line, root? "not a JSON object": json_error.text);
        goto cleanup;
    }
    const char *reported = json_string_value (json_object_get (root, "artifact_sha256"));
    if (json_is_true (json_object_get (root, "refused")))
        s_say (reason, reason_size, "%s: a refusal (\"refused\": true), no QA verdict", path);
    else
    if (!json_is_true (json_object_get (root, "approved")))
        s_say (reason, reason_size, "%s: \"approved\" is not true: QA did not approve this release", path);
    else
    if (!reported || !artifact_sha256 || strcmp (reported, artifact_sha256) != 0)
        s_say (reason, reason_size, "%s: \"artifact_sha256\" is %.64s, not the deployed artifact's %.64s", path,
               reported? reported: "(missing)", artifact_sha256? artifact_sha256: "(none)");
    else {
        s_say (reason, reason_size, "QA report %s approves artifact sha256:%s", digest, artifact_sha256);
        approves = true;
    }
cleanup:
    json_decref (root);
    free (data);
    free (path);
    return approves;
}
