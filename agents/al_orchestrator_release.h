/*  al_orchestrator_release.h: the orchestrator's release files and their typed API.

    One file per release, STATE_DIR/orchestrator/releases/<release>.json (base/al_paths):
    where the orchestrator keeps each release's state machine (PREPARE ... DONE), what
    `airlock status`, the console and the MCP server show, and what `airlock audit
    replay` compares with the log. Not to be confused with deploy-manager's release
    record (deploy/al_release_record: deploy/releases/<service>/<environment>.json, what
    runs in an environment): this is the orchestrator's view of one release.

    This module is the file's only reader and writer: the orchestrator saves through
    al_orchestrator_release_save (an atomic replace, base/al_file), everyone else loads
    through al_orchestrator_release_load or lists through al_orchestrator_release_each.
    The document is the orchestrator's JSON object; the struct names the fields its
    readers use, borrowed from the document.

    Stateless; any thread may call it. A loaded release is read-only and belongs to the
    caller (al_orchestrator_release_destroy).
*/
#ifndef AL_ORCHESTRATOR_RELEASE_H_INCLUDED
#define AL_ORCHESTRATOR_RELEASE_H_INCLUDED

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

//  Largest release file read (a release is a few KiB: its history grows a line a step).
#define AL_ORCHESTRATOR_RELEASE_MAX_SIZE (4 * 1024 * 1024)

typedef struct {
    //  Borrowed from document; "" when the file lacks the field or it is not a string.
    const char *release_id;
    const char *service;
    const char *version;
    const char *type;               // deployment type: "standard", "hotfix", ...
    const char *state;              // "PREPARE", "STAGING", ..., "DONE", "ROLLED_BACK", "FAILED"
    const char *detail;             // why it is in that state
    const char *artifact_uri;
    const char *artifact_sha256;
    const char *submitted_by;
    int64_t created_ms;             // 0 when missing
    int64_t updated_ms;
    json_t *document;               // the whole file (owned by the release)
} al_orchestrator_release_t;

//  The file of release id under state_dir. 0, or -1 with "what is wrong" in error (an
//  id that is not a release id: 1..56 of [A-Za-z0-9._-], not starting with '.').
int al_orchestrator_release_path (const char *state_dir, const char *id, char *path, size_t path_size,
                                  char *error, size_t error_size);

//  The release file of id, or NULL with the reason in error: "no release X (release id
//  'X': ...)" for an id that is not one, "no release ID (no PATH)" when there is no file (errno is
//  then ENOENT), "PATH:LINE: not JSON: what" or "PATH: not a JSON object" when it does
//  not parse, "PATH: ..." when it cannot be read.
al_orchestrator_release_t *al_orchestrator_release_load (const char *state_dir, const char *id,
                                                         char *error, size_t error_size);

//  NULL-safe; sets *self_p to NULL.
void al_orchestrator_release_destroy (al_orchestrator_release_t **self_p);

//  Calls fn (id, arg) for every release file (<id>.json, not starting with '.'), in
//  name order. Returns how many, 0 when the directory does not exist yet, -1 with the
//  reason in error when it cannot be read.
typedef void (al_orchestrator_release_fn) (const char *id, void *arg);
int al_orchestrator_release_each (const char *state_dir, al_orchestrator_release_fn *fn, void *arg,
                                  char *error, size_t error_size);

//  Write document (a JSON object whose "release_id" is a valid release id) as its
//  release file, replacing it atomically (keys sorted, indented); creates the directory
//  when missing. 0, or -1 with the reason in error.
int al_orchestrator_release_save (const char *state_dir, const json_t *document, char *error, size_t error_size);

#ifdef __cplusplus
}
#endif

#endif
