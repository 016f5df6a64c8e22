/*  al_deploy_receipt.h: deploy_receipt.json, deploy-manager's receipt of one deployment,
    and its typed reader.

    deploy-manager writes the receipt in the deployment's evidence directory
    (STATE_DIR/deploy/.artifacts/deployment/<deployment>/, base/al_paths) at the end of
    the receipt step (al_deployer_receipt.c); this module names the file and reads it,
    so no other module spells its path or its keys (docs/design.md, "Files on disk").
    A reader gets the fields it needs and the SHA-256 of the bytes on disk, which is
    what the log's DeployReceipt row records.

    Stateless; any thread may call it.
*/
#ifndef AL_DEPLOY_RECEIPT_H_INCLUDED
#define AL_DEPLOY_RECEIPT_H_INCLUDED

#include "base/al_id.h"

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

//  The file's name inside the evidence directory, and the "format" it carries.
#define AL_DEPLOY_RECEIPT_FILE "deploy_receipt.json"
#define AL_DEPLOY_RECEIPT_FORMAT "airlock-deploy-receipt-v1"

//  Largest receipt read (a receipt is a few KiB; the soak's checkpoints make it grow).
#define AL_DEPLOY_RECEIPT_MAX_SIZE (16 * 1024 * 1024)

typedef struct {
    char path [4200];               // where it was read
    char sha256 [65];               // lowercase hex of the file's bytes
    //  The fields; "" when the file lacks one (a reader decides whether that matters).
    char format [64];
    char deployment_id [AL_ID_SIZE];
    char service [128];
    char environment [32];
    char version [128];
    char outcome [32];              // "succeeded", "rolled_back", "failed"
    char rollback_rule [128];
    char previous_version [128];
    bool done;                      // the Definition of Done was met
} al_deploy_receipt_t;

//  The receipt file of deployment under state_dir: "STATE/deploy/.artifacts/deployment/
//  <deployment>/deploy_receipt.json". 0, or -1 with the reason in error (a deployment id
//  that could leave its directory).
int al_deploy_receipt_path (const char *state_dir, const char *deployment, char *path, size_t path_size,
                            char *error, size_t error_size);

//  Read the receipt of deployment into *receipt (zeroed first). Returns
//     0  read and parsed: every field filled ("" for a missing one);
//    -1  not read (no such file, unreadable, too large, not a deployment id): only
//        path may be set; error says why ("PATH: reason");
//    -2  read but not a JSON object: path and sha256 are set (the bytes are there),
//        error is "PATH:LINE: not JSON: what".
int al_deploy_receipt_load (const char *state_dir, const char *deployment, al_deploy_receipt_t *receipt,
                            char *error, size_t error_size);

#ifdef __cplusplus
}
#endif

#endif
