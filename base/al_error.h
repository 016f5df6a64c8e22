/*  al_error.h: writing an error message into a caller's buffer.

    airlock reports errors the C way: a function that can fail takes (char *error,
    size_t error_size) and, on failure, writes one line saying what went wrong there
    ("services.yaml:12:3: canary.steps: must rise", "/var/lib/airlock/keys: Permission
    denied"). al_error_set is the one formatter every module uses for that:

    - bounded: never writes more than error_size bytes, always NUL-terminates; a message
      too long is cut short (the start, which names the file and field, is kept);
    - NULL-safe: error NULL or error_size 0 writes nothing, so a caller that does not
      want the text passes NULL, 0;
    - errno-safe: errno is the same after the call as before (callers often format
      strerror (errno) and then test errno);
    - printf-format-checked by the compiler.

    Pure functions; thread-safe.
*/
#ifndef AL_ERROR_H_INCLUDED
#define AL_ERROR_H_INCLUDED

#include <stdarg.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

//  Format into error (error_size bytes). See above.
void al_error_set (char *error, size_t error_size, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

//  The same with a va_list (for functions that take a format themselves).
void al_error_vset (char *error, size_t error_size, const char *format, va_list args)
    __attribute__ ((format (printf, 3, 0)));

//  Put prefix and ": " before what error already holds ("loading policy: " + the
//  parser's message), bounded like al_error_set. NULL-safe.
void al_error_prefix (char *error, size_t error_size, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

#ifdef __cplusplus
}
#endif

#endif
