/*  audit_log.h: builds, through the store API, the audit log of a small history of
    releases, with the live state a real installation would have next to it.

    The state directory (a fresh temporary one) holds airlock.yaml, a policy (the shipped
    default with two approvers, alice and bob), audit.db, deploy-manager's evidence
    (deploy/.artifacts/deployment/<id>/deploy_receipt.json, whose SHA-256 the receipt rows
    carry) and the orchestrator's release files (orchestrator/releases/<id>.json).

    Row n is recorded at AL_T0_MS + n seconds. The deployments:
      rel-a-stg   staging, succeeded               rel-a-prod  production, approved by alice, succeeded
      rel-b-stg   staging, succeeded               rel-b-prod  approved by bob, rolled back (error_rate_increase)
      rel-c-prod  a production DeployRequest, denied: refused
      rel-d-prod  filed, one approval refused by the broker: awaiting approval
      rel-e-stg   running rollout                  rel-f-stg   refused by deploy-manager
      rel-g-prod  bob signed a DENY, the broker closed the request: refused
    plus rows about no deployment (policy loaded, soak signals, a frame that does not decode,
    and deploy-manager's DeliveryAck acknowledging three deliveries in one row).
*/
#ifndef AUDIT_LOG_H_INCLUDED
#define AUDIT_LOG_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include "store/al_store.h"

//  2026-02-01T10:00:00Z
#define AL_T0_MS 1769940000000ULL

typedef struct {
    char *dir;                      // the state directory
    char *db;                       // dir/audit.db
    char *config;                   // dir/airlock.yaml
    char *deploy_dir;               // dir/deploy
    char *releases_dir;             // dir/orchestrator/releases
    uint8_t alice_public [32], alice_secret [64];
    uint8_t bob_public [32], bob_secret [64];
    char alice_key_id [32], bob_key_id [32];
    uint64_t rows;
    //  Sequences of rows the tests look at.
    uint64_t a_stg_request;         // rel-a-stg's DeployRequest
    uint64_t a_prod_request;        // rel-a-prod's ApprovalRequest
    uint64_t a_prod_denial;         // qa's production DeployRequest for rel-a-prod, denied
    uint64_t a_prod_approval;       // alice's SignedApproval
    uint64_t a_prod_grant;          // the broker's ExecuteDeploy
    uint64_t a_prod_rollout;        // rel-a-prod's journal "rollout started"
    uint64_t a_prod_receipt;        // rel-a-prod's DeployReceipt
    uint64_t b_prod_first_journal;
    uint64_t b_prod_receipt;
    uint64_t policy_loaded;
    uint64_t malformed;
    uint64_t batched_ack;           // deploy-manager's DeliveryAck of three deliveries
    uint64_t batched_ack_ids [3];   // the deliveries it lists, in order
} audit_log_t;

//  Build it all; fails the test on any error.
audit_log_t *audit_log_new (void);
//  Remove the directory and free. NULL-safe.
void audit_log_destroy (audit_log_t **self_p);

//  The store at path, opened read-only (an auditor's view); fails the test if it cannot.
al_store_t *audit_log_open (const char *path);

//  Time of row n.
uint64_t audit_log_time (uint64_t sequence);
//  "dir/deploy/.artifacts/deployment/<id>/deploy_receipt.json" (caller frees).
char *audit_log_evidence (const audit_log_t *self, const char *deployment_id);
//  Overwrite a whole file with text; fails the test on error.
void audit_log_write_file (const char *path, const char *text);
//  Read a whole file (caller frees), NULL if it cannot be read.
char *audit_log_read_file (const char *path);

//  Copy a database with SQLite's backup API (WAL content included).
void audit_log_copy_db (const char *from, const char *to);

//  Rewrite row `sequence`'s envelope with new bytes through raw SQLite and recompute
//  the hash of that row and of every later row, so the chain holds again.
void audit_log_rewrite (const char *db, uint64_t sequence, const uint8_t *envelope, size_t size);

//  A copy of the log (dir/tampered-N.db, caller frees the path) where one byte of the
//  signature in row `sequence` (a SignedApproval, or with in_grant the first approval of
//  an ExecuteDeploy's grant) is flipped and the chain recomputed: well chained, forged.
char *audit_log_tamper_signature (const audit_log_t *self, uint64_t sequence, bool in_grant);

//  A copy of the log (caller frees the path) where the grant in row `sequence` also
//  carries, after its own approvals, a GRANT signed by bob (or alice) a second before the
//  grant, for request_id (NULL: the grant's own request). Well chained; the signature
//  verifies; whether it counts is for the gate to say.
char *audit_log_grant_add_signer (const audit_log_t *self, uint64_t sequence, bool bob, const char *request_id);

#endif
