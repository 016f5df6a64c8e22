/*  al_file.c: atomic replacement and capped reads of whole files (see al_file.h). */
#include "base/al_file.h"
#include "base/al_error.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

//  The directory part of path ("." when it has none) into out.
static void
s_directory_of (const char *path, char *out, size_t out_size)
{
    const char *slash = strrchr (path, '/');
    if (!slash)
        snprintf (out, out_size, ".");
    else
    if (slash == path)
        snprintf (out, out_size, "/");
    else
        snprintf (out, out_size, "%.*s", (int) (slash - path), path);
}

int
al_file_sync_directory (const char *path, char *error, size_t error_size)
{
    assert (path);
    int fd = open (path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        al_error_set (error, error_size, "%s: %s", path, strerror (errno));
        return -1;
    }
    int rc = 0;
    if (fsync (fd) != 0) {
        al_error_set (error, error_size, "%s: fsync: %s", path, strerror (errno));
        rc = -1;
    }
    close (fd);
    return rc;
}

//  Steps 1 to 3, and 4 when sync_directory.
static int
s_write_atomic (const char *path, const void *data, size_t size, mode_t mode, bool sync_directory,
                char *error, size_t error_size)
{
    assert (path);
    assert (data || size == 0);
    int rc = -1;
    int fd = -1;
    char temporary [PATH_MAX];
    char directory [PATH_MAX];
    temporary [0] = 0;
    if (snprintf (temporary, sizeof temporary, "%s.tmp-XXXXXX", path) >= (int) sizeof temporary) {
        al_error_set (error, error_size, "%s: path too long", path);
        temporary [0] = 0;
        goto cleanup;
    }
    fd = mkostemp (temporary, O_CLOEXEC);
    if (fd < 0) {
        al_error_set (error, error_size, "%s: cannot create a temporary file: %s", path, strerror (errno));
        temporary [0] = 0;
        goto cleanup;
    }
    //  mkostemp made it 0600; the caller's mode, exactly (no umask).
    if (fchmod (fd, mode) != 0) {
        al_error_set (error, error_size, "%s: chmod: %s", path, strerror (errno));
        goto cleanup;
    }
    const char *bytes = data;
    size_t done = 0;
    while (done < size) {
        ssize_t wrote = write (fd, bytes + done, size - done);
        if (wrote < 0) {
            if (errno == EINTR)
                continue;
            al_error_set (error, error_size, "%s: write: %s", path, strerror (errno));
            goto cleanup;
        }
        done += (size_t) wrote;
    }
    if (fsync (fd) != 0) {
        al_error_set (error, error_size, "%s: fsync: %s", path, strerror (errno));
        goto cleanup;
    }
    int closed = close (fd);
    fd = -1;
    if (closed != 0) {
        al_error_set (error, error_size, "%s: close: %s", path, strerror (errno));
        goto cleanup;
    }
    if (rename (temporary, path) != 0) {
        al_error_set (error, error_size, "%s: rename: %s", path, strerror (errno));
        goto cleanup;
    }
    temporary [0] = 0;          // renamed: nothing to remove
    s_directory_of (path, directory, sizeof directory);
    if (sync_directory && al_file_sync_directory (directory, error, error_size) != 0)
        goto cleanup;
    rc = 0;

cleanup:
    if (fd >= 0)
        close (fd);
    if (temporary [0]) {
        int saved = errno;
        unlink (temporary);
        errno = saved;
    }
    return rc;
}

int
al_file_write_atomic (const char *path, const void *data, size_t size, mode_t mode,
                      char *error, size_t error_size)
{
    return s_write_atomic (path, data, size, mode, true, error, error_size);
}

int
al_file_write_atomic_unsynced (const char *path, const void *data, size_t size, mode_t mode,
                               char *error, size_t error_size)
{
    return s_write_atomic (path, data, size, mode, false, error, error_size);
}

int
al_file_write_atomic_text (const char *path, const char *text, mode_t mode,
                           char *error, size_t error_size)
{
    assert (text);
    return al_file_write_atomic (path, text, strlen (text), mode, error, error_size);
}

char *
al_file_read (const char *path, size_t max_size, size_t *size_p, char *error, size_t error_size)
{
    assert (path);
    char *buffer = NULL;
    int fd = open (path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        al_error_set (error, error_size, "%s: %s", path, strerror (errno));
        return NULL;
    }
    struct stat info;
    if (fstat (fd, &info) != 0) {
        al_error_set (error, error_size, "%s: %s", path, strerror (errno));
        goto failed;
    }
    if (!S_ISREG (info.st_mode)) {
        al_error_set (error, error_size, "%s: not a regular file", path);
        errno = EINVAL;
        goto failed;
    }
    if ((uintmax_t) info.st_size > (uintmax_t) max_size) {
        al_error_set (error, error_size, "%s: larger than %zu bytes", path, max_size);
        errno = EFBIG;
        goto failed;
    }
    //  Read to the end rather than trusting st_size: the file may grow or shrink while
    //  read; one byte more than the cap tells that it grew past it.
    size_t capacity = (size_t) info.st_size + 1;
    if (capacity > max_size + 1)
        capacity = max_size + 1;
    size_t length = 0;
    buffer = malloc (capacity + 1);
    if (!buffer) {
        al_error_set (error, error_size, "%s: out of memory", path);
        errno = ENOMEM;
        goto failed;
    }
    while (true) {
        if (length == capacity) {
            if (capacity > max_size) {
                al_error_set (error, error_size, "%s: larger than %zu bytes", path, max_size);
                errno = EFBIG;
                goto failed;
            }
            size_t grown = capacity * 2 > max_size + 1 ? max_size + 1 : capacity * 2;
            char *bigger = realloc (buffer, grown + 1);
            if (!bigger) {
                al_error_set (error, error_size, "%s: out of memory", path);
                errno = ENOMEM;
                goto failed;
            }
            buffer = bigger;
            capacity = grown;
        }
        ssize_t got = read (fd, buffer + length, capacity - length);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            al_error_set (error, error_size, "%s: read: %s", path, strerror (errno));
            goto failed;
        }
        if (got == 0)
            break;
        length += (size_t) got;
    }
    if (length > max_size) {
        al_error_set (error, error_size, "%s: larger than %zu bytes", path, max_size);
        errno = EFBIG;
        goto failed;
    }
    close (fd);
    buffer [length] = 0;
    if (size_p)
        *size_p = length;
    return buffer;

failed: {
        int saved = errno;
        close (fd);
        free (buffer);
        errno = saved;
    }
    return NULL;
}

int
al_file_make_directories (const char *path, mode_t mode, char *error, size_t error_size)
{
    assert (path);
    char copy [PATH_MAX];
    if (snprintf (copy, sizeof copy, "%s", path) >= (int) sizeof copy) {
        //  Its start only: the whole would push the reason out of a caller's buffer.
        al_error_set (error, error_size, "%.128s...: path too long", path);
        return -1;
    }
    //  Each prefix ending before a '/', then the whole path.
    for (char *slash = strchr (copy + 1, '/'); ; slash = strchr (slash + 1, '/')) {
        if (slash)
            *slash = 0;
        if (copy [0] && mkdir (copy, mode) != 0 && errno != EEXIST) {
            al_error_set (error, error_size, "%s: %s", copy, strerror (errno));
            return -1;
        }
        if (!slash)
            break;
        *slash = '/';
        if (slash [1] == 0)
            break;
    }
    struct stat info;
    if (stat (path, &info) != 0 || !S_ISDIR (info.st_mode)) {
        al_error_set (error, error_size, "%s: not a directory", path);
        return -1;
    }
    return 0;
}
