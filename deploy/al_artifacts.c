/*  al_artifacts.c: the local artifact store (see al_artifacts.h).

    Layout: DIR/sha256/<hex> for kept artifacts, DIR/sha256/.tmp-<hex>-XXXXXX while one
    is being copied (a crash can leave such a file; it is never a kept name, so nothing
    trusts it). Bytes go through one 64 KiB buffer: the SHA-256 context (OpenSSL EVP,
    as store/ uses) and the copy see the same chunks, so what is hashed is exactly what
    is written. All-zero chunks become holes in the copy (lseek, then ftruncate), so a
    sparse artifact stays sparse; its digest is the same either way.

    Invariant: a file named DIR/sha256/<hex> was renamed there only after its bytes
    hashed to hex; it is nevertheless re-hashed whenever it is handed out.

    Threading: the object is read-only after open; see al_artifacts.h.
*/
#include "deploy/al_artifacts.h"
#include "base/al_file.h"
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_CHUNK (64u * 1024)
#define S_HEX_SIZE 64

struct _al_artifacts_t {
    char *dir;                      // absolute
    char *kept;                     // dir/sha256
};

static bool
s_is_hex64 (const char *text)
{
    size_t length = 0;
    for (; text [length]; length++)
        if (!((text [length] >= '0' && text [length] <= '9') || (text [length] >= 'a' && text [length] <= 'f')))
            return false;
    return length == S_HEX_SIZE;
}

static bool
s_all_zero (const unsigned char *data, size_t size)
{
    return size == 0 || (data [0] == 0 && memcmp (data, data + 1, size - 1) == 0);
}

//  Stream fd through SHA-256 into hex; when copy_fd >= 0, also write every byte there
//  (zero chunks as holes) and give it the source's size. what names fd in errors.
static int
s_digest_fd (int fd, int copy_fd, const char *what, char hex [65], char *error, size_t error_size)
{
    int rc = -1;
    unsigned char *chunk = malloc (S_CHUNK);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
    if (!chunk || !ctx || !EVP_DigestInit_ex (ctx, EVP_sha256 (), NULL)) {
        snprintf (error, error_size, "%s: out of memory", what);
        goto cleanup;
    }
    off_t total = 0;
    while (true) {
        ssize_t got = read (fd, chunk, S_CHUNK);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            snprintf (error, error_size, "%s: cannot read: %s", what, strerror (errno));
            goto cleanup;
        }
        if (got == 0)
            break;
        if (!EVP_DigestUpdate (ctx, chunk, (size_t) got)) {
            snprintf (error, error_size, "%s: SHA-256 failed", what);
            goto cleanup;
        }
        total += got;
        if (copy_fd < 0)
            continue;
        if (s_all_zero (chunk, (size_t) got)) {
            if (lseek (copy_fd, got, SEEK_CUR) < 0) {
                snprintf (error, error_size, "%s: cannot seek the copy: %s", what, strerror (errno));
                goto cleanup;
            }
            continue;
        }
        for (ssize_t done = 0; done < got; ) {
            ssize_t wrote = write (copy_fd, chunk + done, (size_t) (got - done));
            if (wrote < 0 && errno == EINTR)
                continue;
            if (wrote <= 0) {
                snprintf (error, error_size, "%s: cannot write the copy: %s", what,
                          wrote < 0 ? strerror (errno) : "no space");
                goto cleanup;
            }
            done += wrote;
        }
    }
    //  A trailing hole is only a seek so far: the size makes it real.
    if (copy_fd >= 0 && ftruncate (copy_fd, total) != 0) {
        snprintf (error, error_size, "%s: cannot size the copy: %s", what, strerror (errno));
        goto cleanup;
    }
    unsigned char digest [EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (!EVP_DigestFinal_ex (ctx, digest, &length) || length != S_HEX_SIZE / 2) {
        snprintf (error, error_size, "%s: SHA-256 failed", what);
        goto cleanup;
    }
    for (unsigned int i = 0; i < length; i++)
        snprintf (hex + 2 * i, 3, "%02x", digest [i]);
    rc = 0;

cleanup:
    EVP_MD_CTX_free (ctx);
    free (chunk);
    return rc;
}

//  Why a file could not be opened as a regular file.
typedef enum { S_OPEN_OK, S_OPEN_MISSING, S_OPEN_NOT_REGULAR, S_OPEN_ERROR } s_open_t;

//  Open a regular file for reading (follow: through symbolic links). -1 with error and
//  the reason in *why_p (MAY be NULL).
static int
s_open_regular (const char *path, bool follow, s_open_t *why_p, char *error, size_t error_size)
{
    s_open_t why = S_OPEN_OK;
    int fd = open (path, O_RDONLY | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW));
    struct stat info;
    if (fd < 0) {
        why = errno == ENOENT ? S_OPEN_MISSING : errno == ELOOP ? S_OPEN_NOT_REGULAR : S_OPEN_ERROR;
        snprintf (error, error_size, "%s: %s", path,
                  why == S_OPEN_NOT_REGULAR ? "a symbolic link, not a regular file" : strerror (errno));
    }
    else
    if (fstat (fd, &info) != 0 || !S_ISREG (info.st_mode)) {
        why = S_OPEN_NOT_REGULAR;
        snprintf (error, error_size, "%s: not a regular file", path);
        close (fd);
        fd = -1;
    }
    if (why_p)
        *why_p = why;
    return fd;
}

int
al_sha256_file_hex (const char *path, char out [65], char *error, size_t error_size)
{
    assert (path && out && error && error_size > 0);
    int fd = s_open_regular (path, true, NULL, error, error_size);
    if (fd < 0)
        return -1;
    int rc = s_digest_fd (fd, -1, path, out, error, error_size);
    close (fd);
    return rc;
}

const char *
al_artifact_status_name (al_artifact_status_t status)
{
    switch (status) {
        case AL_ARTIFACT_OK:        return "ok";
        case AL_ARTIFACT_NOT_LOCAL: return "not local";
        case AL_ARTIFACT_MISMATCH:  return "mismatch";
        case AL_ARTIFACT_MISSING:   return "missing";
        case AL_ARTIFACT_IO:        return "io error";
    }
    return "unknown";
}

al_artifacts_t *
al_artifacts_open (const char *dir, char *error, size_t error_size)
{
    assert (dir && error && error_size > 0);
    *error = 0;
    if (!*dir) {
        snprintf (error, error_size, "artifacts dir: empty");
        return NULL;
    }
    al_artifacts_t *self = calloc (1, sizeof (al_artifacts_t));
    if (!self) {
        snprintf (error, error_size, "%s: out of memory", dir);
        return NULL;
    }
    if (al_file_make_directories (dir, 0700, error, error_size) != 0)
        goto cleanup;
    self->dir = realpath (dir, NULL);
    if (!self->dir) {
        snprintf (error, error_size, "%s: %s", dir, strerror (errno));
        goto cleanup;
    }
    if (asprintf (&self->kept, "%s/sha256", self->dir) < 0) {
        self->kept = NULL;
        snprintf (error, error_size, "%s: out of memory", dir);
        goto cleanup;
    }
    if (mkdir (self->kept, 0700) != 0 && errno != EEXIST) {
        snprintf (error, error_size, "%s: %s", self->kept, strerror (errno));
        goto cleanup;
    }
    struct stat info;
    if (lstat (self->kept, &info) != 0 || !S_ISDIR (info.st_mode)) {
        snprintf (error, error_size, "%s: not a directory", self->kept);
        goto cleanup;
    }
    return self;

cleanup:
    al_artifacts_destroy (&self);
    return NULL;
}

void
al_artifacts_destroy (al_artifacts_t **self_p)
{
    assert (self_p);
    al_artifacts_t *self = *self_p;
    if (!self)
        return;
    free (self->dir);
    free (self->kept);
    free (self);
    *self_p = NULL;
}

const char *
al_artifacts_dir (const al_artifacts_t *self)
{
    assert (self);
    return self->dir;
}

static int
s_hex_value (char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char) tolower ((unsigned char) c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

//  The local path uri names, into a new string. NULL with error when it names none.
static char *
s_local_path (const char *uri, char *error, size_t error_size)
{
    const char *path = uri;
    bool escaped = false;
    if (strncasecmp (uri, "file:", 5) == 0) {
        path = uri + 5;
        escaped = true;
        if (strncmp (path, "//", 2) == 0) {
            path += 2;
            //  An authority other than none or localhost is another host.
            if (strncasecmp (path, "localhost/", 10) == 0)
                path += 9;
            else if (*path != '/') {
                snprintf (error, error_size, "%.256s: a file URI of another host", uri);
                return NULL;
            }
        }
    }
    else
    if (strstr (uri, "://")) {
        snprintf (error, error_size, "%.256s: not a local artifact (only /abs/path and file:///abs/path "
                  "are kept)", uri);
        return NULL;
    }
    if (*path != '/') {
        snprintf (error, error_size, "%.256s: not an absolute path", uri);
        return NULL;
    }
    char *decoded = malloc (strlen (path) + 1);
    if (!decoded) {
        snprintf (error, error_size, "%.256s: out of memory", uri);
        return NULL;
    }
    size_t size = 0;
    for (const char *c = path; *c; c++) {
        if (escaped && *c == '%') {
            int high = s_hex_value (c [1]);
            int low = high < 0 ? -1 : s_hex_value (c [2]);
            if (low < 0 || (high == 0 && low == 0)) {
                snprintf (error, error_size, "%.256s: bad percent-escape", uri);
                free (decoded);
                return NULL;
            }
            decoded [size++] = (char) (high * 16 + low);
            c += 2;
        }
        else
        if (escaped && (*c == '?' || *c == '#')) {
            snprintf (error, error_size, "%.256s: a file URI with a query or fragment", uri);
            free (decoded);
            return NULL;
        }
        else
            decoded [size++] = *c;
    }
    decoded [size] = 0;
    return decoded;
}

char *
al_artifact_local_path (const char *uri, char *error, size_t error_size)
{
    assert (uri);
    return s_local_path (uri, error, error_size);
}

//  The kept name of hex into path_out. IO when path_out is too small.
static al_artifact_status_t
s_kept_path (al_artifacts_t *self, const char *hex, char *path_out, size_t path_size,
             char *error, size_t error_size)
{
    int needed = snprintf (path_out, path_size, "%s/%s", self->kept, hex);
    if (needed < 0 || (size_t) needed >= path_size) {
        snprintf (error, error_size, "%s/%s: path_out holds %zu bytes, %d needed", self->kept, hex,
                  path_size, needed + 1);
        return AL_ARTIFACT_IO;
    }
    return AL_ARTIFACT_OK;
}

//  Hash the kept copy at path: OK, MISSING, MISMATCH (changed on disk, or not a
//  regular file), IO.
static al_artifact_status_t
s_verify_kept (const char *path, const char *hex, char *error, size_t error_size)
{
    s_open_t why;
    int fd = s_open_regular (path, false, &why, error, error_size);
    if (fd < 0)
        return why == S_OPEN_MISSING ? AL_ARTIFACT_MISSING
             : why == S_OPEN_NOT_REGULAR ? AL_ARTIFACT_MISMATCH : AL_ARTIFACT_IO;
    char actual [65];
    int rc = s_digest_fd (fd, -1, path, actual, error, error_size);
    close (fd);
    if (rc != 0)
        return AL_ARTIFACT_IO;
    if (strcmp (actual, hex) != 0) {
        snprintf (error, error_size, "kept copy %s: sha256 is %s, expected %s (changed on disk)",
                  path, actual, hex);
        return AL_ARTIFACT_MISMATCH;
    }
    return AL_ARTIFACT_OK;
}

static int
s_sync_dir (const char *dir, char *error, size_t error_size)
{
    int fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync (fd) != 0) {
        snprintf (error, error_size, "%s: cannot sync: %s", dir, strerror (errno));
        if (fd >= 0)
            close (fd);
        return -1;
    }
    close (fd);
    return 0;
}

al_artifact_status_t
al_artifacts_keep (al_artifacts_t *self, const char *uri, const char *expected_hex,
                   char *path_out, size_t path_size, char *error, size_t error_size)
{
    assert (self && uri && expected_hex && path_out && path_size > 0 && error && error_size > 0);
    *error = 0;
    *path_out = 0;
    if (!s_is_hex64 (expected_hex)) {
        //  Nothing can have a malformed digest: refuse as a mismatch, fail closed.
        snprintf (error, error_size, "expected digest \"%.80s\": not 64 lowercase hex digits",
                  expected_hex);
        return AL_ARTIFACT_MISMATCH;
    }
    //  Refuse a too small path_out before any work, not after the copy.
    if (strlen (self->kept) + 1 + S_HEX_SIZE >= path_size) {
        snprintf (error, error_size, "path_out holds %zu bytes, %zu needed", path_size,
                  strlen (self->kept) + 1 + S_HEX_SIZE + 1);
        return AL_ARTIFACT_IO;
    }
    char *source = s_local_path (uri, error, error_size);
    if (!source)
        return AL_ARTIFACT_NOT_LOCAL;
    al_artifact_status_t status = AL_ARTIFACT_IO;
    char *temp = NULL;
    int in = -1, out = -1;
    char kept [PATH_MAX];
    if (s_kept_path (self, expected_hex, kept, sizeof (kept), error, error_size) != AL_ARTIFACT_OK)
        goto cleanup;
    char why [PATH_MAX + 256];
    al_artifact_status_t existing = s_verify_kept (kept, expected_hex, why, sizeof (why));
    if (existing == AL_ARTIFACT_IO) {
        snprintf (error, error_size, "%s", why);
        goto cleanup;
    }
    //  A kept copy that changed on disk is evidence of a fault, but no use: replace it.
    if (existing == AL_ARTIFACT_MISMATCH && unlink (kept) != 0) {
        snprintf (error, error_size, "%s; cannot remove it: %s", why, strerror (errno));
        goto cleanup;
    }
    in = s_open_regular (source, true, NULL, error, error_size);
    if (in < 0)
        goto cleanup;
    if (existing != AL_ARTIFACT_OK) {
        if (asprintf (&temp, "%s/.tmp-%s-XXXXXX", self->kept, expected_hex) < 0) {
            temp = NULL;
            snprintf (error, error_size, "%s: out of memory", uri);
            goto cleanup;
        }
        out = mkostemp (temp, O_CLOEXEC);
        if (out < 0) {
            snprintf (error, error_size, "%s: %s", temp, strerror (errno));
            free (temp);
            temp = NULL;
            goto cleanup;
        }
    }
    char actual [65];
    if (s_digest_fd (in, out, source, actual, error, error_size) != 0)
        goto cleanup;
    if (strcmp (actual, expected_hex) != 0) {
        snprintf (error, error_size, "%.512s: sha256 is %s, expected %s", uri, actual, expected_hex);
        status = AL_ARTIFACT_MISMATCH;
        goto cleanup;
    }
    if (out >= 0) {
        if (fchmod (out, 0500) != 0 || fsync (out) != 0) {
            snprintf (error, error_size, "%s: cannot sync: %s", temp, strerror (errno));
            goto cleanup;
        }
        int closed = close (out);
        out = -1;
        if (closed != 0 || rename (temp, kept) != 0) {
            snprintf (error, error_size, "%s: cannot keep as %s: %s", temp, kept, strerror (errno));
            goto cleanup;
        }
        free (temp);
        temp = NULL;
        if (s_sync_dir (self->kept, error, error_size) != 0)
            goto cleanup;
    }
    status = s_kept_path (self, expected_hex, path_out, path_size, error, error_size);

cleanup:
    if (out >= 0)
        close (out);
    if (temp) {
        unlink (temp);
        free (temp);
    }
    if (in >= 0)
        close (in);
    free (source);
    return status;
}

al_artifact_status_t
al_artifacts_path (al_artifacts_t *self, const char *hex, char *path_out, size_t path_size,
                   char *error, size_t error_size)
{
    assert (self && hex && path_out && path_size > 0 && error && error_size > 0);
    *error = 0;
    *path_out = 0;
    if (!s_is_hex64 (hex)) {
        snprintf (error, error_size, "digest \"%.80s\": not 64 lowercase hex digits, nothing is kept "
                  "under it", hex);
        return AL_ARTIFACT_MISSING;
    }
    char kept [PATH_MAX];
    al_artifact_status_t status = s_kept_path (self, hex, kept, sizeof (kept), error, error_size);
    if (status == AL_ARTIFACT_OK)
        status = s_verify_kept (kept, hex, error, error_size);
    if (status == AL_ARTIFACT_MISSING)
        snprintf (error, error_size, "artifact sha256:%s: not kept in %s", hex, self->kept);
    if (status == AL_ARTIFACT_OK)
        status = s_kept_path (self, hex, path_out, path_size, error, error_size);
    return status;
}
