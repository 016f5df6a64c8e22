/*  al_id.h: release ids, and the deployment and request ids made from them.

    One rule for every id airlock keeps on disk or routes (the release file
    STATE_DIR/orchestrator/releases/<release>.json, the evidence directory
    .artifacts/deployment/<deployment>/, the journal, the approvals):

      a release id is 1..AL_ID_RELEASE_MAX (56) of [A-Za-z0-9._-], not starting with '.'
        (so it is a safe file name: never ".", "..", a hidden file, nor a path);
      a deployment or request id is 1..AL_ID_MAX (64) of the same, not starting with '.'.

    A release's staging deployment is "<release>-stg"; its production request and
    deployment are "<release>-prod". Those suffixes are spelled here and nowhere else:
    al_id_deployment makes such an id and al_id_release_of splits one. A release id of
    56 characters plus "-prod" fits AL_ID_MAX, so every id made from a valid release id
    is a valid deployment id.

    Pure functions (al_id_release_make reads libsodium's random bytes); thread-safe.
*/
#ifndef AL_ID_H_INCLUDED
#define AL_ID_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AL_ID_RELEASE_MAX 56
#define AL_ID_MAX 64
//  A buffer for any id (the longest plus its terminator, rounded up).
#define AL_ID_SIZE 72

//  Which part of a release a deployment id names.
typedef enum {
    AL_ID_PART_NONE = 0,            // neither suffix: not a release's deployment
    AL_ID_PART_STAGING,             // "<release>-stg"
    AL_ID_PART_PRODUCTION           // "<release>-prod"
} al_id_part_t;

//  Is id a valid release id (see above)? NULL is not.
bool al_id_release_valid (const char *id);

//  Is id a valid deployment or request id (see above)? NULL is not.
bool al_id_valid (const char *id);

//  Make a new release id: "<prefix>-<service>-<version>-<6 random hex>", service and
//  version cut to 16 characters each and every character outside [A-Za-z0-9.-] made
//  '_'. prefix is ours ("rel", "rb"): [a-z]{1,8}. size > AL_ID_RELEASE_MAX; the
//  result is a valid release id.
void al_id_release_make (const char *prefix, const char *service, const char *version, char *id, size_t size);

//  The id of release's deployment for part (STAGING or PRODUCTION) in id (size >
//  AL_ID_MAX). Returns false (id "") when release is not a valid release id.
bool al_id_deployment (const char *release, al_id_part_t part, char *id, size_t size);

//  Which part deployment_id names, its release id in release (size >
//  AL_ID_RELEASE_MAX). AL_ID_PART_NONE (release "") when it has neither suffix or the
//  release id before it is not valid.
al_id_part_t al_id_release_of (const char *deployment_id, char *release, size_t size);

#ifdef __cplusplus
}
#endif

#endif
