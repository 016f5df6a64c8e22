/*  al_releases.h: releases as the pipeline's clients see them (the CLI, the MCP server).

    What `airlock submit`, `airlock status RELEASE` and `airlock rollback` compute, as
    functions that return data (jansson) instead of printing: release ids, the
    orchestrator's release files, a release's status document (the same JSON as
    `airlock status RELEASE --json`) and the rollback candidate of a release. Errors go to the caller's buffer as "what is wrong";
    nothing here prints or exits.

    Threading: the functions keep no state; the agent passed in may be shared (the agent
    runtime is thread-safe).
*/
#ifndef AL_RELEASES_H_INCLUDED
#define AL_RELEASES_H_INCLUDED

#include "agents/al_agent.h"
#include "base/al_config.h"
#include "base/al_id.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

//  A release id as `airlock submit` makes them: PREFIX-<service>-<version>-<6 random
//  hex>, service and version cut to 16 characters, anything but [A-Za-z0-9.-] made '_'.
void al_releases_new_id (const char *prefix, const char *service, const char *version, char *id, size_t size);

//  True for a release id the orchestrator accepts: 1..56 of [A-Za-z0-9._-], not
//  starting with '.' (so that it is also a safe file name).
bool al_releases_id_valid (const char *id);

//  What can be checked on this host before a candidate is sent, since the orchestrator
//  and deploy-manager would only find it later (a release FAILED in `airlock status`) or
//  not at all (a taken id is taken as a redelivery and the candidate dropped): digest is
//  64 lowercase hex digits, release_id is valid and not taken, service is in
//  services.yaml, and an artifact on this host (a path or file:// URI) exists and has
//  that digest. A relative path is made absolute (deploy-manager keeps only absolute
//  ones) into artifact_out; anything else is copied there as it is (an image reference
//  is the platform's to pull). Returns 0; -1 with "what is wrong" in error when the
//  candidate is bad; -2 when the input is malformed or services.yaml does not load.
int al_releases_submit_check (const al_config_t *config, const char *release_id, const char *service,
                         const char *artifact, const char *digest, char *artifact_out, size_t artifact_size,
                         char *error, size_t error_size);

//  The orchestrator's release file of ID (STATE_DIR/orchestrator/releases/ID.json) as
//  its JSON document, read through agents/al_orchestrator_release (which also gives the
//  typed fields), or NULL with "no release ID (...)" or the parse error in error.
json_t *al_releases_load (const al_config_t *config, const char *id, char *error, size_t error_size);

//  Every release the orchestrator knows, newest first (by created_ms; the same time in
//  name order); a file that does not read is left out. Never NULL.
json_t *al_releases_list (const al_config_t *config);

//  Why al_releases_status gave no document.
typedef enum {
    AL_RELEASES_STATUS_OK = 0,
    AL_RELEASES_STATUS_NO_RELEASE,      // no release file of that id, or one that does not read
    AL_RELEASES_STATUS_NO_ANSWER        // the broker refused a query or did not answer in time
} al_releases_status_failure_t;

//  {"release": <file>, "awaiting_approval": bool, "events": {"staging": [...],
//  "production": [...]}} for release ID, asking the broker for the deploy journal and
//  the pending approvals (StatusQuery) through AGENT. NULL with the reason in error and,
//  when failure is not NULL, which of the two failures it was in *failure (the release
//  file is read once, before any query: an unknown release never waits for the
//  broker); *failure is AL_RELEASES_STATUS_OK with a document.
json_t *al_releases_status (const al_config_t *config, al_agent_t *agent, const char *id, int timeout_ms,
                            al_releases_status_failure_t *failure, char *error, size_t error_size);

//  The rollback of a release: the ReleaseCandidate that `airlock rollback RELEASE` and
//  the MCP tool request_rollback submit, built here once. The candidate is of type
//  rollback and carries the previous release's service, version, artifact_uri and
//  artifact_sha256 (bare hex) and the summary "rollback of RELEASE to VERSION";
//  release_id is a new id for it, rb-SERVICE-VERSION-<6 hex> (al_releases_new_id). The
//  candidate's strings belong to the struct: send it, then destroy the struct.
typedef struct {
    char release_id [AL_ID_SIZE];
    Airlock__ReleaseCandidate candidate;
} al_releases_rollback_t;

//  The rollback of RELEASE: RELEASE must be what runs in production for its service
//  (the orchestrator's release file names the service), and a release must have run
//  before it (deploy-manager's release record of the service in production,
//  deploy/al_release_record). NULL with the reason in error otherwise.
al_releases_rollback_t *al_releases_rollback_new (const al_config_t *config, const char *release, char *error,
                                                  size_t error_size);

//  NULL-safe; sets *self_p to NULL.
void al_releases_rollback_destroy (al_releases_rollback_t **self_p);

//  The name of a DenyCode ("DENY_NOT_PERMITTED"), or "DENY_UNSPECIFIED".
const char *al_releases_deny_code_name (Airlock__DenyCode code);

#endif
