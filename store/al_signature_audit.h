/*  al_signature_audit.h: check every human signature the audit log relies on.

    The hash chain proves the rows were not changed after they were written; it cannot
    prove that what was written was genuine, because the chain has no secret: whoever
    rewrites a row and recomputes every later hash produces a well-chained log (only a
    checkpoint kept elsewhere can show that). This check adds what the chain cannot: every
    approval the log says was accepted is re-verified from the bytes in the log.

    For each ACCEPTED row, in sequence order:
    - SignedApproval: the envelope decodes; its statement is a complete ApprovalStatement;
      the signature (raw Ed25519 or SSHSIG, proto/al_signature.h) verifies over the
      statement bytes carried in the row; the statement's approver_key_id names the key
      that signed.
    - ExecuteDeploy: it was made by the broker (no other sender may produce one); a
      production one carries a grant; the grant holds at least one approval; each of its
      signed approvals passes the checks above, names the grant's request, and was
      accepted earlier in the log as a SignedApproval for that request (same approval id).
    Denied rows are not checked: the broker already said no to them.

    Whether a key belonged to an approver at the time is the policy's question (al_approval_gate);
    this check needs no policy and trusts nothing but the signatures.

    Reads the store in the caller's thread.
*/
#ifndef AL_SIGNATURE_AUDIT_H_INCLUDED
#define AL_SIGNATURE_AUDIT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "store/al_store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    uint64_t rows;                  // rows read
    uint64_t approvals;             // accepted SignedApproval rows checked
    uint64_t grants;                // accepted ExecuteDeploy rows checked
    uint64_t grant_approvals;       // signed approvals inside those grants checked
    uint64_t failures;              // rows that failed a check
    uint64_t first_bad_sequence;    // 0 when none failed
    char reason [512];              // the first failure, "row N: what is wrong"
} al_signature_audit_t;

//  Called once for each row that fails, with what is wrong.
typedef void (al_signature_audit_fn) (uint64_t sequence, const char *what, void *arg);

//  Check every accepted SignedApproval and ExecuteDeploy row of store. fn (may be NULL)
//  hears about each failing row. Returns AL_STORE_OK when the check ran (its outcome is
//  report->failures), or a read error (text in al_store_error).
al_store_status_t al_signature_audit_run (al_store_t *store, al_signature_audit_fn *fn, void *arg,
                                          al_signature_audit_t *report);

#ifdef __cplusplus
}
#endif

#endif
