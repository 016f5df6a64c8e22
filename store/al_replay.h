/*  al_replay.h: re-derive every deployment's state from the audit log alone.

    A replay reads the rows in sequence order (optionally only those recorded up to a
    time) and groups the ones about a deployment by deployment id: "<release>-stg" for
    staging, "<release>-prod" for a production request and its deployment, any other id
    as it comes. For each it keeps the request (who, when, which artifact), every
    refusal or denial, every accepted approval (by key id, with its signature checked
    again), the grant, each deploy-journal record (step, outcome, time), rollback
    triggers, QA, and the receipt; and it derives the state:

      requested          a DeployRequest was accepted (staging, development)
      awaiting approval  a production ApprovalRequest was filed
      approved           the broker's gate granted it (ExecuteDeploy with the approvals)
      running <step>     deploy-manager journaled <step> (preflight ... soak, rollback, receipt)
      succeeded | rolled_back | failed   the receipt's outcome (the DeployReceipt row, or
                         the journal's receipt record when that row is missing)
      refused            the broker denied the request (and none was accepted),
                         deploy-manager refused it, or a required approver said DENY
      unknown            rows about the deployment, but no request among them

    Nothing but the rows is read: no policy, no files. Comparing the result with the
    live state (deploy-manager's evidence, the orchestrator's release files) is a
    separate step, al_replay_compare_live.

    An al_replay_t is immutable once made; everything it hands out is borrowed from it
    and lives until al_replay_destroy. Any number of threads may read one.
*/
#ifndef AL_REPLAY_H_INCLUDED
#define AL_REPLAY_H_INCLUDED

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "base/al_id.h"
#include "store/al_store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _al_replay_t al_replay_t;

typedef enum {
    AL_REPLAY_UNKNOWN = 0,
    AL_REPLAY_REQUESTED,
    AL_REPLAY_AWAITING_APPROVAL,
    AL_REPLAY_APPROVED,
    AL_REPLAY_RUNNING,
    AL_REPLAY_SUCCEEDED,
    AL_REPLAY_ROLLED_BACK,
    AL_REPLAY_FAILED,
    AL_REPLAY_REFUSED
} al_replay_state_t;

//  What a timeline entry records.
typedef enum {
    AL_REPLAY_REQUEST = 0,          // DeployRequest or ApprovalRequest accepted
    AL_REPLAY_DENIAL,               // the broker denied a message about the deployment
    AL_REPLAY_REFUSAL,              // deploy-manager refused it (DeployProgress "refused: ...")
    AL_REPLAY_QA,                   // QaRequest, QaReport
    AL_REPLAY_APPROVAL,             // an accepted SignedApproval (a GRANT or a DENY)
    AL_REPLAY_CLOSED,               // ApprovalClosed: the request was closed by a DENY
    AL_REPLAY_GRANT,                // the broker's ExecuteDeploy with the approvals
    AL_REPLAY_JOURNAL,              // a deploy-journal record (DeployProgress, journal: true)
    AL_REPLAY_TRIGGER,              // RollbackTrigger
    AL_REPLAY_RECEIPT               // DeployReceipt
} al_replay_kind_t;

typedef struct {
    al_replay_kind_t kind;
    uint64_t sequence;
    uint64_t time_ms;
    const char *sender;             // identity (the broker's rows: "broker")
    const char *role;
    const char *type;               // the row's message type
    const char *step;               // JOURNAL: the step; else ""
    const char *outcome;            // JOURNAL, RECEIPT: outcome name; APPROVAL: "grant"/"deny"; else ""
    const char *text;               // one line saying what happened
} al_replay_entry_t;

typedef struct {
    uint64_t sequence;              // the SignedApproval row (the grant's, if only the grant holds it)
    uint64_t time_ms;
    const char *sender;             // the identity that sent it (the approver's client)
    const char *key_id;             // from the statement: "ed25519:<hex>"
    const char *public_key;         // hex of the signing key; "" when the signature does not verify
    bool signature_valid;           // verifies over the statement bytes in the row
    const char *decision;           // "grant" or "deny"
    const char *approval_id;        // hex
    const char *reason;             // a DENY's reason
    bool break_glass;
    bool in_grant;                  // carried by the deployment's grant
} al_replay_approval_t;

typedef struct {
    const char *id;
    const char *environment;        // "staging", "production", "development", or ""
    const char *service;            // "" when unknown (e.g. only a denial that did not decode)
    const char *version;
    const char *artifact_uri;
    const char *artifact_sha256;
    const char *deployment_type;    // "standard", "hotfix", ... or ""
    const char *requested_by;       // identity that filed the accepted request, or ""
    uint64_t requested_ms;          // 0: no accepted request
    uint64_t request_sequence;
    uint64_t first_sequence;        // first row about it
    al_replay_state_t state;
    const char *step;               // RUNNING: the step; else ""
    const char *detail;             // REFUSED, FAILED: why; ROLLED_BACK: the rule; else ""
    const al_replay_approval_t *approvals;
    size_t approval_count;
    uint64_t grant_sequence;        // 0: no grant
    uint64_t grant_ms;
    uint64_t started_ms;            // first journal record; 0 if none
    uint64_t finished_ms;           // the receipt (row, else journal record); 0 if none
    uint64_t receipt_sequence;      // the DeployReceipt row; 0 if none
    const char *receipt_outcome;    // of that row; "" if none
    const char *receipt_sha256;
    const char *rollback_rule;
    const char *previous_version;
    const al_replay_entry_t *entries;
    size_t entry_count;
} al_replay_deployment_t;

//  Replay store's rows recorded at or before as_of_ms (0: all of them). Returns NULL
//  with "what is wrong" in error when the store cannot be read.
al_replay_t *al_replay_new (al_store_t *store, uint64_t as_of_ms, char *error, size_t error_size);
//  NULL-safe; sets *self_p to NULL.
void al_replay_destroy (al_replay_t **self_p);

//  Rows replayed (those within as_of).
uint64_t al_replay_rows (const al_replay_t *self);
//  Deployments in the order they first appear in the log.
size_t al_replay_count (const al_replay_t *self);
const al_replay_deployment_t *al_replay_at (const al_replay_t *self, size_t index);
//  The deployment with this id, or NULL.
const al_replay_deployment_t *al_replay_find (const al_replay_t *self, const char *id);

//  "requested", "awaiting approval", ... (see above).
const char *al_replay_state_name (al_replay_state_t state);
//  The state as a person reads it: "running rollout", "rolled_back", ...
void al_replay_state_text (const al_replay_deployment_t *deployment, char *text, size_t size);
//  "request", "denial", "refusal", "qa", "approval", "closed", "grant", "journal",
//  "trigger", "receipt".
const char *al_replay_kind_name (al_replay_kind_t kind);

//  The deployment as a JSON object (caller decrefs; NULL when out of memory): its
//  fields, "state", "state_text", "request", "approvals", "grant", "receipt",
//  "duration_ms" and "timeline" (every entry, with RFC 3339 times).
json_t *al_replay_deployment_json (const al_replay_deployment_t *deployment);

//  One row of seed 001's deployment history table.
typedef struct {
    char date [16];                 // YYYY-MM-DD (UTC) it started, else was requested, else its first row
    char type [32];                 // "Standard", "Hotfix", ...
    const char *status;             // "Success", "Rolled back", "Failed", "Refused", "Awaiting approval",
                                    // "Approved", "In progress", "Requested", "Unknown"
    const char *rollback;           // "Yes" when rolled back, else "N/A"
    uint64_t duration_ms;           // started → finished; 0 when it did not run to a receipt
    char notes [300];               // the rollback rule, why it was refused or failed, the receipt
} al_replay_history_t;

void al_replay_history_row (const al_replay_deployment_t *deployment, al_replay_history_t *row);

//  Comparison with the live state. For every deployment with a DeployReceipt row:
//  deploy-manager's receipt (deploy_receipt.json in the deployment's evidence directory)
//  can be read, its SHA-256 is the row's receipt_sha256, and its deployment_id and
//  outcome are the replay's. For every orchestrator release file
//  (orchestrator/releases/<release>.json; none at all is fine): its state agrees with
//  the log: DONE <-> "<release>-prod" succeeded, ROLLED_BACK <-> rolled_back, FAILED <->
//  failed (a failed or rolled-back staging deployment also makes FAILED); DONE or
//  ROLLED_BACK without that production outcome in the log disagrees. A file that cannot
//  be read or parsed is a disagreement, never skipped. fn hears about each disagreement
//  ("subject", "what is wrong").
//
//  store/ is below deploy/ and agents/, which own those files, so it reads none of them:
//  the caller hands in a source that reads them through their owners' typed API
//  (agents/al_audit_view.h fills one) and store only compares (docs/design.md, "Files
//  on disk").
typedef void (al_replay_disagreement_fn) (const char *subject, const char *what, void *arg);

//  An orchestrator release file, as the comparison needs it.
typedef struct {
    char release_id [AL_ID_SIZE];   // the id the file names; "" when it names none
    char state [32];                // "DONE", "FAILED", ...; "" when it has none
} al_replay_release_t;

//  deploy-manager's receipt of one deployment, as the comparison needs it.
typedef struct {
    char path [4200];               // where it was read (for messages)
    char sha256 [65];               // lowercase hex of the file's bytes
    char deployment_id [AL_ID_SIZE];// "" when the receipt names none
    char outcome [32];              // "succeeded", "rolled_back", "failed"; "" when none
} al_replay_receipt_t;

//  Called by list_releases once per release file.
typedef void (al_replay_release_id_fn) (const char *release_id, void *arg);

//  The live state, read by its owners. Every member is mandatory; self is handed back
//  to each of them as it is. Errors go to (error, error_size) as "what is wrong".
typedef struct {
    //  Call each (release_id, each_arg) for every release file, in name order. 0; a
    //  missing release directory is an empty list; -1 when the list cannot be read.
    int (*list_releases) (void *self, al_replay_release_id_fn *each, void *each_arg,
                          char *error, size_t error_size);
    //  Fill *release with the release file of release_id. 0, or -1 when it cannot be
    //  read or parsed.
    int (*load_release) (void *self, const char *release_id, al_replay_release_t *release,
                         char *error, size_t error_size);
    //  Fill *receipt with the receipt of deployment_id. 0 when read and parsed; -1 when
    //  it cannot be read (nothing but path may be set); -2 when it was read but does not
    //  parse (path and sha256 are set).
    int (*load_receipt) (void *self, const char *deployment_id, al_replay_receipt_t *receipt,
                         char *error, size_t error_size);
    void *self;
} al_replay_live_source_t;

typedef struct {
    size_t receipts;                // receipt rows compared with evidence
    size_t releases;                // release files compared
    size_t disagreements;
} al_replay_live_t;

void al_replay_compare_live (const al_replay_t *self, const al_replay_live_source_t *source,
                             al_replay_disagreement_fn *fn, void *arg, al_replay_live_t *report);

//  Parse a time given as RFC 3339 ("2026-01-30T10:15:00Z", fractions and offsets
//  allowed) or as epoch milliseconds (digits only). False when it is neither.
bool al_replay_parse_time (const char *text, uint64_t *time_ms);

#ifdef __cplusplus
}
#endif

#endif
