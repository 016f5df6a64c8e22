/*  al_error.c: the bounded error formatter (see al_error.h). */
#include "base/al_error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
al_error_vset (char *error, size_t error_size, const char *format, va_list args)
{
    if (!error || error_size == 0)
        return;
    int saved = errno;
    if (!format)
        error [0] = 0;
    else
        vsnprintf (error, error_size, format, args);
    errno = saved;
}

void
al_error_set (char *error, size_t error_size, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    al_error_vset (error, error_size, format, args);
    va_end (args);
}

void
al_error_prefix (char *error, size_t error_size, const char *format, ...)
{
    if (!error || error_size == 0 || !format)
        return;
    int saved = errno;
    //  The old message is copied first: it lives in the buffer we write.
    char *old = strndup (error, error_size - 1);
    char prefix [512];
    va_list args;
    va_start (args, format);
    vsnprintf (prefix, sizeof prefix, format, args);
    va_end (args);
    if (old) {
        snprintf (error, error_size, "%s: %s", prefix, old);
        free (old);
    }
    else
        snprintf (error, error_size, "%s", prefix);
    errno = saved;
}
