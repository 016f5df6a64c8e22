/*  al_release_record.h: deploy-manager's release record, STATE_DIR/deploy/releases/<service>/<env>.json.

    The record says which release runs in (service, environment) now and which ran
    before it: what a rollback goes back to. deploy-manager writes it when a deploy
    succeeds; the orchestrator (is a rollback candidate the previous release?), the CLI
    (`airlock rollback`, `airlock status`) and the deployer itself read it through this
    module only, so the path and the JSON keys are spelled once.

    The file: {"format": "airlock-release-record-v1", "service", "environment",
               "current": RELEASE, "previous": RELEASE | null}
    RELEASE: {"version", "artifact_sha256", "artifact_uri", "deployment_id", "instances"}.
    It is replaced atomically (temporary file, fsync, rename, fsync of the directory).
    Thread-safe (no state).
*/
#ifndef AL_RELEASE_RECORD_H_INCLUDED
#define AL_RELEASE_RECORD_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AL_RELEASE_RECORD_URI_SIZE 1024

typedef struct {
    bool present;
    char version [128];
    char digest [65];               // bare hex
    char artifact_uri [AL_RELEASE_RECORD_URI_SIZE];
    char deployment_id [72];
    unsigned instances;
} al_release_t;

typedef struct {
    al_release_t current;           // what runs now
    al_release_t previous;          // what ran before it (a rollback's target)
} al_release_record_t;

//  The record of (service, env) under deploy_dir (STATE_DIR/deploy), or under
//  state_dir. False when it does not fit size or service or env is not a plain name
//  ([A-Za-z0-9._-], not starting with '.').
bool al_release_record_path (const char *deploy_dir, const char *service, const char *env, char *path, size_t size);
bool al_release_record_path_in_state (const char *state_dir, const char *service, const char *env,
                                      char *path, size_t size);

//  Load the record at path. A missing file is "nothing deployed yet" (both releases
//  absent, 0); one that does not parse, or has no current release, is an error (-1,
//  "path[:line]: what"): we would not know what to roll back to.
int al_release_record_load (const char *path, al_release_record_t *record, char *error, size_t error_size);

//  Write record (current present) to path for service and env, creating its directory.
//  Returns 0, or -1 with error.
int al_release_record_save (const char *path, const char *service, const char *env,
                            const al_release_record_t *record, char *error, size_t error_size);

#ifdef __cplusplus
}
#endif

#endif
