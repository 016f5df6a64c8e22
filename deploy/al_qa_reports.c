/*  al_qa_reports.c: the QA report store (see al_qa_reports.h).

    Reports are small (at most 100 issues of 511 bytes, a few checks and suites): they
    are read whole, up to S_MAX_SIZE, hashed with libsodium's SHA-256 and parsed from
    the very buffer that was hashed, so what is judged is what the digest names.
*/
#include "deploy/al_qa_reports.h"
#include "base/al_error.h"
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_MAX_SIZE (8 * 1024 * 1024)

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
        al_error_set (error, error_size, "%s: %s", path, strerror (errno));
        goto cleanup;
    }
    if (!S_ISREG (info.st_mode) || info.st_size > S_MAX_SIZE) {
        al_error_set (error, error_size, "%s: not a regular file of at most %d bytes", path, S_MAX_SIZE);
        goto cleanup;
    }
    size_t size = (size_t) info.st_size, done = 0;
    data = malloc (size + 1);
    if (!data) {
        al_error_set (error, error_size, "%s: out of memory", path);
        goto cleanup;
    }
    while (done < size) {
        ssize_t got = read (fd, data + done, size - done);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            al_error_set (error, error_size, "%s: %s", path, got < 0? strerror (errno): "shorter than it was");
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
        al_error_set (error, error_size, "%s: %s", path, strerror (errno));
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
        al_error_set (error, error_size, "%s: out of memory", dir);
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
                al_error_set (error, error_size, "%s: already kept with other bytes than its name says: left as it is", path);
            goto cleanup;
        }
        rc = 0;
        goto cleanup;
    }
    fd = open (temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0400);
    if (fd < 0) {
        al_error_set (error, error_size, "%s: %s", temp, strerror (errno));
        goto cleanup;
    }
    size_t done = 0;
    while (done < size) {
        ssize_t written = write (fd, (const char *) bytes + done, size - done);
        if (written < 0 && errno == EINTR)
            continue;
        if (written <= 0) {
            al_error_set (error, error_size, "%s: %s", temp, strerror (errno));
            goto cleanup;
        }
        done += (size_t) written;
    }
    if (fsync (fd) != 0) {
        al_error_set (error, error_size, "%s: %s", temp, strerror (errno));
        goto cleanup;
    }
    close (fd);
    fd = -1;
    //  link() refuses to replace an existing name, where rename() would not.
    if (link (temp, path) != 0 && errno != EEXIST) {
        al_error_set (error, error_size, "%s: %s", path, strerror (errno));
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

//  Open the stored report with digest: its bytes hashed and parsed. The root object, or
//  NULL with why in reason; *path_p (MAY be NULL) gets the file's path (caller frees).
static json_t *
s_open (const char *dir, const char *digest, char **path_p, char *reason, size_t reason_size)
{
    char *path = NULL, *data = NULL;
    json_t *root = NULL;
    size_t size = 0;
    if (!s_valid_digest (digest)) {
        al_error_set (reason, reason_size, "QA report digest '%.80s' is not 64 lowercase hex digits", digest? digest: "");
        goto cleanup;
    }
    if (!dir || asprintf (&path, "%s/%s.json", dir, digest) < 0) {
        al_error_set (reason, reason_size, "QA report %s: no report store", digest);
        path = NULL;
        goto cleanup;
    }
    char error [512];
    data = s_read (path, &size, error, sizeof error);
    if (!data) {
        al_error_set (reason, reason_size, "QA report %s is not kept: %s", digest, error);
        goto cleanup;
    }
    char actual [65];
    s_hex_digest (data, size, actual);
    if (strcmp (actual, digest) != 0) {
        al_error_set (reason, reason_size, "%s: its bytes have digest %s, not the %s the request names: altered", path,
               actual, digest);
        goto cleanup;
    }
    json_error_t json_error;
    root = json_loadb (data, size, JSON_REJECT_DUPLICATES, &json_error);
    if (!json_is_object (root)) {
        al_error_set (reason, reason_size, "%s:%d: %s", path, json_error.line, root? "not a JSON object": json_error.text);
        json_decref (root);
        root = NULL;
    }
cleanup:
    free (data);
    if (path_p && root)
        *path_p = path;
    else
        free (path);
    return root;
}

bool
al_qa_reports_approves (const char *dir, const char *digest, const char *artifact_sha256,
                        char *reason, size_t reason_size)
{
    bool approves = false;
    char *path = NULL;
    json_t *root = s_open (dir, digest, &path, reason, reason_size);
    if (!root)
        goto cleanup;
    const char *reported = json_string_value (json_object_get (root, "artifact_sha256"));
    if (json_is_true (json_object_get (root, "refused")))
        al_error_set (reason, reason_size, "%s: a refusal (\"refused\": true), no QA verdict", path);
    else
    if (!json_is_true (json_object_get (root, "approved")))
        al_error_set (reason, reason_size, "%s: \"approved\" is not true: QA did not approve this release", path);
    else
    if (!reported || !artifact_sha256 || strcmp (reported, artifact_sha256) != 0)
        al_error_set (reason, reason_size, "%s: \"artifact_sha256\" is %.64s, not the deployed artifact's %.64s", path,
               reported? reported: "(missing)", artifact_sha256? artifact_sha256: "(none)");
    else {
        al_error_set (reason, reason_size, "QA report %s approves artifact sha256:%s", digest, artifact_sha256);
        approves = true;
    }
cleanup:
    json_decref (root);
    free (path);
    return approves;
}

//  ---------------------------------------------------------------------------------
//  The security scan: "security_scan": {"totals": {"critical": N, "high": N,
//  "medium": N, "low": N, ...}, "limits": {...}, "within_limits": bool, ...}

static const char *const s_severities [] = { "critical", "high", "medium", "low" };

//  "critical 0, high 1, medium 2, low 0" then, when over, "; over quality_rules.yaml
//  security_scan: 1 high (max_high 0)". Returns whether the totals are within limits.
static bool
s_judge (const int64_t counts [4], const al_policy_scan_limits_t *limits, char *text, size_t size)
{
    const int64_t max [4] = { limits->max_critical, limits->max_high, limits->max_medium, limits->max_low };
    size_t used = 0;
    text [0] = '\0';
    for (int i = 0; i < 4 && used < size; i++)
        used += (size_t) snprintf (text + used, size - used, "%s%s %lld", i? ", ": "", s_severities [i],
                                   (long long) counts [i]);
    bool within = true;
    for (int i = 0; i < 4; i++)
        if (max [i] != AL_POLICY_SCAN_UNLIMITED && counts [i] > max [i]) {
            if (used < size)
                used += (size_t) snprintf (text + used, size - used, "%s %lld %s (max_%s %lld)",
                                           within? "; over quality_rules.yaml security_scan:": ",",
                                           (long long) counts [i], s_severities [i], s_severities [i],
                                           (long long) max [i]);
            within = false;
        }
    return within;
}

bool
al_qa_reports_scan_judge (json_t *section, const al_qa_scan_totals_t *totals, bool complete,
                          const al_policy_scan_limits_t *limits, char *summary, size_t summary_size)
{
    assert (section && totals && limits);
    const int64_t counts [4] = { totals->critical, totals->high, totals->medium, totals->low };
    const int64_t max [4] = { limits->max_critical, limits->max_high, limits->max_medium, limits->max_low };
    json_t *totals_json = json_object (), *limits_json = json_object ();
    for (int i = 0; i < 4; i++) {
        json_object_set_new (totals_json, s_severities [i], json_integer ((json_int_t) counts [i]));
        char key [16];
        snprintf (key, sizeof key, "max_%s", s_severities [i]);
        json_object_set_new (limits_json, key, max [i] == AL_POLICY_SCAN_UNLIMITED? json_string ("unlimited")
                                                : json_integer ((json_int_t) max [i]));
    }
    json_object_set_new (totals_json, "info", json_integer ((json_int_t) totals->info));
    json_object_set_new (section, "totals", totals_json);
    json_object_set_new (section, "limits", limits_json);
    char text [512];
    bool within = s_judge (counts, limits, text, sizeof text);
    json_object_set_new (section, "within_limits", json_boolean (within));
    json_object_set_new (section, "complete", json_boolean (complete));
    al_error_set (summary, summary_size, "%s", text);
    return within;
}

al_qa_reports_scan_t
al_qa_reports_scan (const char *dir, const char *digest, const al_policy_scan_limits_t *limits,
                    char *summary, size_t summary_size)
{
    assert (limits);
    al_qa_reports_scan_t verdict = AL_QA_REPORTS_SCAN_UNREADABLE;
    char *path = NULL;
    json_t *root = s_open (dir, digest, &path, summary, summary_size);
    if (!root)
        goto cleanup;
    json_t *section = json_object_get (root, "security_scan");
    if (!section || json_is_null (section)) {
        al_error_set (summary, summary_size, "not run (services.yaml configures no scanner for %.64s)",
               json_string_value (json_object_get (root, "service"))?
               json_string_value (json_object_get (root, "service")): "this service");
        verdict = AL_QA_REPORTS_SCAN_NONE;
        goto cleanup;
    }
    json_t *totals = json_object_get (section, "totals");
    int64_t counts [4];
    for (int i = 0; i < 4; i++) {
        json_t *count = json_object_get (totals, s_severities [i]);
        if (!json_is_integer (count) || json_integer_value (count) < 0) {
            al_error_set (summary, summary_size, "%s: security_scan.totals.%s is not a count: the scan cannot be judged",
                   path, s_severities [i]);
            goto cleanup;
        }
        counts [i] = json_integer_value (count);
    }
    char text [512];
    bool within = s_judge (counts, limits, text, sizeof text);
    //  QA's own verdict on its scan (a scanner that did not run, a report that did not
    //  read) counts too, whatever the limits now.
    if (!json_is_true (json_object_get (section, "within_limits")) || !json_is_true (json_object_get (section, "complete"))) {
        al_error_set (summary, summary_size, "%s; QA judged the scan %s", text,
               json_is_true (json_object_get (section, "complete"))? "over its limits": "incomplete (a scanner failed)");
        verdict = AL_QA_REPORTS_SCAN_OVER;
    }
    else {
        al_error_set (summary, summary_size, "%s", text);
        verdict = within? AL_QA_REPORTS_SCAN_WITHIN: AL_QA_REPORTS_SCAN_OVER;
    }
cleanup:
    json_decref (root);
    free (path);
    return verdict;
}
