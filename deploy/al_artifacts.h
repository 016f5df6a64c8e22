/*  al_artifacts.h: the local artifact store, artifacts kept and addressed by digest.

    What runs must be bit for bit what humans approved, and a rollback must always be
    able to start the previous artifact even when its source is gone. So deploy-manager
    keeps every artifact it deploys in DIR/sha256/<64 hex>: the bytes are streamed from
    the source through SHA-256 (never read whole into memory) into a temporary file,
    compared with the expected digest, and only then renamed into place (fsynced, mode
    0500: an executable stays executable, nobody writes it). A kept copy is never
    trusted by its name: keep and path hash its bytes again every time, so a copy
    changed on disk is detected before anything starts it.

    Only local artifacts are kept: "/abs/path" and "file:///abs/path" (percent-escapes
    decoded, "file://localhost/..." accepted). Anything else (docker://, https://, a
    relative path) is AL_ARTIFACT_NOT_LOCAL: the platform behind the exec driver pulls
    those by digest itself.

    Verification is of the bytes at rest. Between path() and the exec that follows, a
    process running as airlock's own user could still swap the file; DIR is created
    0700 so that nobody else can.

    Threading: an al_artifacts_t holds only its directory; calls may run concurrently,
    from threads or processes (temporary files are unique, renames atomic).
*/
#ifndef AL_ARTIFACTS_H_INCLUDED
#define AL_ARTIFACTS_H_INCLUDED

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    AL_ARTIFACT_OK = 0,
    AL_ARTIFACT_NOT_LOCAL,          // the URI is not a local absolute path or file:// URI
    AL_ARTIFACT_MISMATCH,           // the bytes do not have the expected digest (or it is malformed)
    AL_ARTIFACT_MISSING,            // no kept copy of that digest
    AL_ARTIFACT_IO                  // a file could not be read, written or synced
} al_artifact_status_t;

typedef struct _al_artifacts_t al_artifacts_t;

//  Open the store in dir, creating it (and dir/sha256) with mode 0700 if needed. NULL
//  with "dir: what is wrong" in error.
al_artifacts_t *al_artifacts_open (const char *dir, char *error, size_t error_size);
//  NULL-safe; sets *self_p to NULL.
void al_artifacts_destroy (al_artifacts_t **self_p);
//  The store's directory, absolute (borrowed).
const char *al_artifacts_dir (const al_artifacts_t *self);

//  Keep the artifact at uri ("file:///abs/path" or "/abs/path"; anything else is
//  NOT_LOCAL): stream its bytes through SHA-256, compare with expected_hex (64
//  lowercase hex digits), copy to dir/sha256/<hex> (temp, fsync, rename, mode 0500) and
//  put that path in path_out. A mismatch is MISMATCH naming both digests, and nothing
//  is kept. A copy already kept is re-verified: if intact the source is only hashed
//  (it must match too), if changed on disk it is replaced by a fresh copy.
al_artifact_status_t al_artifacts_keep (al_artifacts_t *self, const char *uri, const char *expected_hex,
                                        char *path_out, size_t path_size, char *error, size_t error_size);

//  The path of the kept artifact hex, after hashing its bytes again: MISSING if not
//  kept (or hex is not 64 lowercase hex digits), MISMATCH if it changed on disk.
al_artifact_status_t al_artifacts_path (al_artifacts_t *self, const char *hex, char *path_out, size_t path_size,
                                        char *error, size_t error_size);

//  The local path a URI names ("/abs/path", "file:///abs/path", "file://localhost/...",
//  percent-escapes decoded), as the store reads it: a new string (caller frees), or NULL
//  with "uri: why it is not local" in error (another scheme, another host, a relative
//  path). Lets a client check an artifact before handing it to deploy-manager.
char *al_artifact_local_path (const char *uri, char *error, size_t error_size);

//  SHA-256 of the regular file at path as 64 lowercase hex digits, streamed. Returns 0,
//  or -1 with "path: what is wrong".
int al_sha256_file_hex (const char *path, char out [65], char *error, size_t error_size);

//  "ok", "not local", "mismatch", "missing", "io error".
const char *al_artifact_status_name (al_artifact_status_t status);

#ifdef __cplusplus
}
#endif

#endif
