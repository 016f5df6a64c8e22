/*  al_file.h: reading and writing whole files, the one way airlock does it.

    al_file_write_atomic replaces a file so that a reader (or a crash, or a power cut)
    sees either the old content or the new one, never a mix or an empty file:
        1. a temporary file "NAME.tmp-XXXXXX" in the same directory (so rename is atomic:
           same filesystem), created with mode (not subject to the umask: the caller
           says who may read a key or a receipt);
        2. all bytes written (short writes and EINTR retried), fsync;
        3. rename over path;
        4. fsync of the directory, so the rename itself is durable.
    On any failure the temporary file is removed, path is left as it was, and the error
    names the path and the step ("PATH: fsync: No space left on device").

    al_file_read reads a whole file up to a size cap (a file larger than the cap is an
    error, never silently cut) and NUL-terminates it, so text may be used as a string.

    No state; thread-safe (two writers of one path race, and the last rename wins: the
    owner of a file serializes its writers).
*/
#ifndef AL_FILE_H_INCLUDED
#define AL_FILE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

//  Replace path with size bytes of data (data MAY be NULL when size is 0), file mode
//  mode (e.g. 0600, 0644). 0 on success; -1 with "path: step: reason" in error.
int al_file_write_atomic (const char *path, const void *data, size_t size, mode_t mode,
                          char *error, size_t error_size);

//  Steps 1 to 3 only: the new file is in place for every reader and survives the
//  writer's death, but without the directory's fsync a power cut may bring the old one
//  back. For a write that a durable one follows at once (the process driver's spawn
//  gate: the child waits for it).
int al_file_write_atomic_unsynced (const char *path, const void *data, size_t size, mode_t mode,
                                   char *error, size_t error_size);

//  The same for a NUL-terminated string.
int al_file_write_atomic_text (const char *path, const char *text, mode_t mode,
                               char *error, size_t error_size);

//  The whole file at path, at most max_size bytes, in a fresh buffer (the caller's:
//  free) with a NUL byte after the content; its length in *size_p (MAY be NULL). NULL
//  with "path: reason" in error when it cannot be read, is not a regular file, or is
//  larger than max_size ("path: larger than N bytes"). errno is ENOENT after the
//  call when the file does not exist, so a caller may treat a missing file apart.
char *al_file_read (const char *path, size_t max_size, size_t *size_p,
                    char *error, size_t error_size);

//  fsync the directory at path (after creating, renaming or removing an entry in it).
int al_file_sync_directory (const char *path, char *error, size_t error_size);

//  Create directory path and any missing parents with mode (existing ones are left
//  as they are). 0, or -1 with "path: reason" in error.
int al_file_make_directories (const char *path, mode_t mode, char *error, size_t error_size);

#ifdef __cplusplus
}
#endif

#endif
