/*  al_deploy_receipt.c: deploy_receipt.json's path and typed reader (see al_deploy_receipt.h).

    The writer is the receipt step (al_deployer_receipt.c), which uses the names
    declared here; this file is the only one that reads the receipt's bytes.
*/
#include "deploy/al_deploy_receipt.h"
#include "base/al_error.h"
#include "base/al_file.h"
#include "base/al_paths.h"

#include <assert.h>
#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

int
al_deploy_receipt_path (const char *state_dir, const char *deployment, char *path, size_t path_size,
                        char *error, size_t error_size)
{
    assert (state_dir && path && error);
    char dir [4096];
    if (al_paths_deploy_evidence (state_dir, deployment? deployment: "", dir, sizeof dir, error, error_size) != 0)
        return -1;
    if ((size_t) snprintf (path, path_size, "%s/%s", dir, AL_DEPLOY_RECEIPT_FILE) >= path_size) {
        al_error_set (error, error_size, "%s/%s: path too long", dir, AL_DEPLOY_RECEIPT_FILE);
        return -1;
    }
    return 0;
}

//  A string field into a fixed buffer ("" when missing or not a string).
static void
s_field (json_t *root, const char *key, char *out, size_t size)
{
    const char *value = json_string_value (json_object_get (root, key));
    snprintf (out, size, "%s", value? value: "");
}

int
al_deploy_receipt_load (const char *state_dir, const char *deployment, al_deploy_receipt_t *receipt,
                        char *error, size_t error_size)
{
    assert (state_dir && receipt && error);
    memset (receipt, 0, sizeof *receipt);
    if (al_deploy_receipt_path (state_dir, deployment, receipt->path, sizeof receipt->path, error, error_size) != 0)
        return -1;
    size_t size = 0;
    char *data = al_file_read (receipt->path, AL_DEPLOY_RECEIPT_MAX_SIZE, &size, error, error_size);
    if (!data)
        return -1;
    uint8_t digest [crypto_hash_sha256_BYTES];
    crypto_hash_sha256 (digest, (const uint8_t *) data, size);
    sodium_bin2hex (receipt->sha256, sizeof receipt->sha256, digest, sizeof digest);
    json_error_t json_error;
    json_t *root = json_loadb (data, size, 0, &json_error);
    free (data);
    if (!json_is_object (root)) {
        if (root)
            al_error_set (error, error_size, "%s:1: not JSON: not an object", receipt->path);
        else
            al_error_set (error, error_size, "%s:%d: not JSON: %s", receipt->path, json_error.line, json_error.text);
        json_decref (root);
        return -2;
    }
    s_field (root, "format", receipt->format, sizeof receipt->format);
    s_field (root, "deployment_id", receipt->deployment_id, sizeof receipt->deployment_id);
    s_field (root, "service", receipt->service, sizeof receipt->service);
    s_field (root, "environment", receipt->environment, sizeof receipt->environment);
    s_field (root, "version", receipt->version, sizeof receipt->version);
    s_field (root, "outcome", receipt->outcome, sizeof receipt->outcome);
    s_field (root, "rollback_rule", receipt->rollback_rule, sizeof receipt->rollback_rule);
    s_field (root, "previous_version", receipt->previous_version, sizeof receipt->previous_version);
    receipt->done = json_is_true (json_object_get (root, "done"));
    json_decref (root);
    return 0;
}
