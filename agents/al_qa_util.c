/*  al_qa_util.c: the qa agent's small helpers (see al_qa_int.h): formatted strings,
    making outside text fit a report line, creating directories, writing and reading
    files with bounds.
*/
#include "agents/al_qa_int.h"
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

//  ---------------------------------------------------------------------------------
//  Small helpers

//  A formatted string the caller frees. Running out of memory here leaves nothing
//  sensible to do, as for every small allocation of the agent loops.
char *
al_qa_printf (const char *format, ...)
{
    va_list args;
    va_start (args, format);
    char *text = NULL;
    int rc = vasprintf (&text, format, args);
    va_end (args);
    assert (rc >= 0 && text);
    return text;
}

//  Make outside text (an HTTP error, a path, a version cut short by a bound) fit a
//  report line and the wire's text fields: valid UTF-8 without control characters.
//  Each byte of a control character or of an invalid or cut sequence becomes '?'.
void
al_qa_clean (char *text)
{
    unsigned char *p = (unsigned char *) text;
    while (*p) {
        unsigned char lead = *p;
        size_t length = lead < 0x80 ? 1 : lead >= 0xc2 && lead <= 0xdf ? 2
                      : lead >= 0xe0 && lead <= 0xef ? 3 : lead >= 0xf0 && lead <= 0xf4 ? 4 : 0;
        uint32_t value = length == 1 ? lead : length == 2 ? lead & 0x1fu : length == 3 ? lead & 0x0fu : lead & 0x07u;
        bool valid = length > 0;
        for (size_t i = 1; valid && i < length; i++) {
            valid = (p [i] & 0xc0) == 0x80;     // a NUL ends the text: not a continuation
            value = (value << 6) | (p [i] & 0x3fu);
        }
        static const uint32_t minimum [5] = { 0, 0, 0x80, 0x800, 0x10000 };
        valid = valid && value >= minimum [length] && value <= 0x10ffff && !(value >= 0xd800 && value <= 0xdfff)
             && value >= 0x20 && !(value >= 0x7f && value <= 0x9f);
        if (!valid) {
            *p++ = '?';
            continue;
        }
        p += length;
    }
}

static int
s_write_all (int fd, const char *data, size_t size)
{
    while (size > 0) {
        ssize_t written = write (fd, data, size);
        if (written < 0 && errno == EINTR)
            continue;
        if (written <= 0)
            return -1;
        data += written;
        size -= (size_t) written;
    }
    return 0;
}

//  Write a file (0600, truncated, not through a symlink). Returns 0 or -1.
int
al_qa_write_file (const char *path, const char *data, size_t size)
{
    int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -1;
    int rc = s_write_all (fd, data, size);
    if (close (fd) != 0)
        rc = -1;
    return rc;
}

//  Read a regular file of at most max bytes into *data_p (NUL-terminated; caller frees).
//  Returns 0, or -1 with "path: reason"; *missing_p (MAY be NULL) says it did not exist.
int
al_qa_read_regular (const char *path, size_t max, char **data_p, size_t *size_p, bool *missing_p,
                char *error, size_t error_size)
{
    *data_p = NULL;
    *size_p = 0;
    if (missing_p)
        *missing_p = false;
    //  O_NONBLOCK: a FIFO planted at the path must not hang us; it is refused below.
    int fd = open (path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        if (missing_p)
            *missing_p = errno == ENOENT;
        snprintf (error, error_size, "%s: cannot open: %s", path, strerror (errno));
        return -1;
    }
    int rc = -1;
    char *data = NULL;
    struct stat info;
    if (fstat (fd, &info) != 0 || !S_ISREG (info.st_mode)) {
        snprintf (error, error_size, "%s: not a regular file", path);
        goto cleanup;
    }
    //  Read up to one byte past the limit, whatever the size said: files grow.
    size_t size = 0, capacity = info.st_size > 0 && (size_t) info.st_size <= max ? (size_t) info.st_size + 1 : 65536;
    if (capacity > max + 1)
        capacity = max + 1;
    data = malloc (capacity + 1);
    assert (data);
    while (true) {
        if (size == capacity) {
            if (capacity > max) {
                snprintf (error, error_size, "%s: larger than %zu bytes", path, max);
                goto cleanup;
            }
            capacity = capacity * 2 > max + 1 ? max + 1 : capacity * 2;
            data = realloc (data, capacity + 1);
            assert (data);
        }
        ssize_t got = read (fd, data + size, capacity - size);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            snprintf (error, error_size, "%s: cannot read: %s", path, strerror (errno));
            goto cleanup;
        }
        if (got == 0)
            break;
        size += (size_t) got;
    }
    data [size] = '\0';
    *data_p = data;
    *size_p = size;
    data = NULL;
    rc = 0;
cleanup:
    free (data);
    close (fd);
    return rc;
}

