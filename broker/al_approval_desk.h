/*  al_approval_desk.h: the broker's approval desk: pending production requests, the signed
    approvals collected for each, and the gate's decision on every new signature.

    Changes are tentative until the broker has committed the batch they belong to: the
    broker checks each SignedApproval of a batch (al_approval_desk_check), consumes its
    approval id in the store, counts it (al_approval_desk_add), appends the rows, commits the
    store, then calls al_approval_desk_commit; if the store fails it calls
    al_approval_desk_rollback and nothing counted in that batch remains. So a second
    approval in the same batch sees the first one, and a crash before the commit leaves
    no trace.

    The desk is rebuilt at start from the audit log alone (al_approval_desk_rebuild): every
    accepted ApprovalRequest is filed, every accepted SignedApproval checked and counted again, every
    broker-made ExecuteDeploy or ApprovalClosed row closes its request. Single-use
    approval ids are NOT kept here: the store's approvals_used table is the authority,
    written in the same transaction as the row.

    Threading: owned by the broker's reactor thread.

    Where this sits in the approval decision (docs/design.md): 1. policies/al_approval_sign,
    the approver signs; 2. broker/al_approval_desk, the broker's desk collects; 3.
    policies/al_approval_gate, the decision the desk (and deploy-manager again) asks for.
*/
#ifndef AL_APPROVAL_DESK_H_INCLUDED
#define AL_APPROVAL_DESK_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "policies/al_approval_gate.h"
#include "store/al_store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct al_approval_desk_t al_approval_desk_t;

//  Message id of the broker's ExecuteDeploy for a request: printf format, request id.
#define AL_APPROVAL_DESK_GRANT_ID_FORMAT "grant-%.50s"

al_approval_desk_t *al_approval_desk_new (void);
void al_approval_desk_destroy (al_approval_desk_t **self_p);

//  File a production request accepted in row `sequence` at filed_ms (that row's time),
//  from the authenticated requester identity. A request id filed before is refused
//  (false, reason). A request older than the policy's qa_handoff.report_max_age when an
//  approval is added is closed (al_approval_desk_add: outcome AL_APPROVAL_GATE_DENIED, "stale").
bool al_approval_desk_file (al_approval_desk_t *self, const Airlock__ApprovalRequest *request,
                            const char *requester, uint64_t sequence, uint64_t filed_ms,
                            char *reason, size_t reason_size);

//  The verdict on one signed approval.
typedef struct {
    bool valid;                     // passed the gate's checks for its request
    char reason [512];              // why not (valid = false)
    char request_id [AL_CODEC_MAX_ID_LEN + 1];
    al_approval_gate_accepted_t approval;    // valid: who signed what
    al_approval_gate_outcome_t outcome;      // valid: the request's state with this approval counted
    char explanation [512];         // valid: the gate's explanation of outcome
} al_approval_desk_verdict_t;

//  Check a SignedApproval at now_ms (one clock reading per decision) against its
//  request; changes nothing. verdict->valid says whether the gate accepts it.
void al_approval_desk_check (al_approval_desk_t *self, const al_policy_t *policy,
                             const Airlock__SignedApproval *signed_approval, uint64_t now_ms,
                             al_approval_desk_verdict_t *verdict);
//  Count a checked approval (tentatively, with the batch) once its approval id has been
//  consumed in the store, and evaluate the request: fills verdict->outcome and
//  explanation. Returns false (nothing counted) if the request is gone or full.
bool al_approval_desk_add (al_approval_desk_t *self, const al_policy_t *policy,
                           const Airlock__SignedApproval *signed_approval, uint64_t now_ms,
                           al_approval_desk_verdict_t *verdict);
//  Withdraw a tentative approval by its approval id (its row turned out to be a
//  retransmission answered with its original outcome).
void al_approval_desk_withdraw (al_approval_desk_t *self, const char *request_id, const uint8_t *approval_id);
//  True if request_id was filed (open or closed).
bool al_approval_desk_known (al_approval_desk_t *self, const char *request_id);

//  Make the tentative changes of this batch permanent / discard them.
void al_approval_desk_commit (al_approval_desk_t *self);
void al_approval_desk_rollback (al_approval_desk_t *self);

//  Close a request (granted or denied) tentatively, with the batch.
void al_approval_desk_close (al_approval_desk_t *self, const char *request_id);

//  Build the broker's ExecuteDeploy envelope for a granted request: body ExecuteDeploy
//  {request, grant{request, approvals, granted_at, grant_audit_sequence}}, environment
//  production, deployment id and message id set. Returns the packed bytes (caller frees)
//  or NULL.
uint8_t *al_approval_desk_execute_deploy (al_approval_desk_t *self, const char *request_id, uint64_t now_ms,
                                          uint64_t grant_sequence, size_t *size_p);

//  Pending (open) requests, oldest first: up to max pointers, borrowed until the next
//  change. Returns how many there are in all.
size_t al_approval_desk_pending (al_approval_desk_t *self, const Airlock__ApprovalRequest **requests, size_t max);

//  Rebuild from the log (see the file comment). Returns the number of open requests, or
//  -1 with an error (a store failure).
int al_approval_desk_rebuild (al_approval_desk_t *self, al_store_t *store, const al_policy_t *policy,
                              char *error, size_t error_size);

#ifdef __cplusplus
}
#endif

#endif
