/*  al_approval_gate.h: the approval gate: does a set of signed human approvals open
    production for exactly this request, under this policy, at this moment?

    Two steps, both pure functions of their inputs (no I/O, no clock: now is a parameter,
    read once per decision by the caller):

    1. al_approval_gate_check judges ONE signed approval against the request: signature
       (raw Ed25519 or SSHSIG) over the statement bytes it carries; the key belongs to an
       approver in policy and is not revoked; the statement's key id names that key; every
       statement field equals the request's, bit for bit; issued before now, not expired
       at now, and not valid for longer than the policy allows; the approver did not file
       the request; and (four eyes) the approver is not the person behind the identity
       that submitted the release (request.submitted_by, signed in the statement too; the
       person comes from that identity's `person` in identities.yaml). The caller (the
       broker) then checks the approval id was never used, in the same store transaction
       that records it.

    2. al_approval_gate_evaluate takes the accepted approvals collected for a request and
       decides: GRANTED when the deployment type's quorum is met by distinct PEOPLE (one person
       fills at most one slot, whatever roles or keys they hold) and the calendar allows
       it (al_calendar_decide, the same decision pre-flight takes: no freeze, the window
       open if the type needs one - or break-glass approvals fill the policy's extra
       slots with yet other people - and inside the request's own scheduled window,
       which break-glass never lifts); DENIED when an approver whose role the
       quorum needs said DENY; PENDING otherwise, saying which roles are still missing.

    The broker runs both before it sends a ProductionGrant; deploy-manager runs both again
    on the grant it receives (defence in depth). Thread-safe: no shared state.

    Where this sits in the approval decision (docs/design.md): 1. policies/al_approval_sign,
    the approver signs; 2. broker/al_approval_desk, the broker's desk collects; 3.
    policies/al_approval_gate, the decision the desk (and deploy-manager again) asks for.
*/
#ifndef AL_APPROVAL_GATE_H_INCLUDED
#define AL_APPROVAL_GATE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "policies/al_policy.h"
#include "proto/al_signature.h"

#ifdef __cplusplus
extern "C" {
#endif

//  Tolerated clock skew between an approver's machine and the broker: a statement issued
//  up to this far in the future is accepted.
#define AL_APPROVAL_GATE_CLOCK_SKEW_MS (120 * 1000)

//  The qa_report_sha256 of a request that comes with no QA report: a deployment type
//  without requires_staging (rollback as shipped), or an emergency that skips staging.
//  64 zeros: a well-formed digest (statements' digests must be 64 hex digits) that no
//  report has: a SHA-256 of all zeros cannot be produced. Approvers sign it like any digest, and are shown "none", so they know no QA
//  report stands behind the request; for a type that requires staging the gate then also
//  needs the type's skip_staging_quorum (deployment_types.yaml), and refuses the request
//  without one.
#define AL_APPROVAL_GATE_NO_QA_REPORT "0000000000000000000000000000000000000000000000000000000000000000"

//  True when request names no QA report (AL_APPROVAL_GATE_NO_QA_REPORT, or empty).
bool al_approval_gate_no_qa_report (const Airlock__ApprovalRequest *request);

//  One approval that passed al_approval_gate_check. Strings point into the policy (or the
//  verdict itself) and live as long as both.
typedef struct {
    char approver [128];            // approver name (policy)
    char key_id [32];               // "ed25519:<hex of first 8 bytes>"
    uint8_t public_key [AL_ED25519_PUBLIC_KEY_SIZE];
    uint8_t approval_id [AL_APPROVAL_ID_SIZE];
    Airlock__Decision decision;
    bool break_glass;
    uint64_t expires_at_ms;
    const char *const *roles;       // the approver's roles (policy-owned)
    size_t role_count;
    char reason [256];              // for a DENY: the approver's reason
} al_approval_gate_accepted_t;

typedef enum {
    AL_APPROVAL_GATE_PENDING = 0,   // valid so far, quorum not met yet
    AL_APPROVAL_GATE_GRANTED,       // quorum met, no freeze or window problem (or break-glass)
    AL_APPROVAL_GATE_DENIED,        // a required approver said DENY: the request is closed
    AL_APPROVAL_GATE_BLOCKED        // quorum met but a freeze / closed window stands without
                                    // break-glass, or it is outside the request's own
                                    // scheduled window
} al_approval_gate_outcome_t;

const char *al_approval_gate_outcome_name (al_approval_gate_outcome_t outcome);

//  Judge one signed approval. requester is the identity that filed the request (from
//  the authenticated sender, never from the request body). Returns true and fills
//  *approval, or false with the reason (naming the rule or field) in reason.
bool al_approval_gate_check (const al_policy_t *policy, const Airlock__ApprovalRequest *request,
                             const char *requester, const Airlock__SignedApproval *signed_approval,
                             uint64_t now_ms, al_approval_gate_accepted_t *approval,
                             char *reason, size_t reason_size);

//  Decide on the accepted approvals of a request (checked with al_approval_gate_check,
//  approval ids already known unused). explanation says why, e.g. "granted: manager
//  alice" or "waiting for 1 more approval: security".
al_approval_gate_outcome_t
    al_approval_gate_evaluate (const al_policy_t *policy, const Airlock__ApprovalRequest *request,
                               const al_approval_gate_accepted_t *approvals, size_t count,
                               uint64_t now_ms, char *explanation, size_t explanation_size);

//  deploy-manager's own check of a production ExecuteDeploy before it acts (defence in
//  depth: it trusts neither the broker nor the bus). True only if: the envelope is for
//  production and carries a grant; the deploy request names exactly the artifact of the
//  grant's request (service, version, artifact URI and digest, migration set, type);
//  every signed approval passes al_approval_gate_check against the grant's request at
//  the grant's time, each approval id appears once; the quorum evaluates to GRANTED at
//  the grant's time; and the grant is not in the future nor older than the policy's
//  approval expiry at now_ms. reason says which check failed.
bool al_approval_gate_verify_grant (const al_policy_t *policy, Airlock__Environment environment,
                                    const Airlock__ExecuteDeploy *execute, uint64_t now_ms,
                                    char *reason, size_t reason_size);

//  al_approval_gate_verify_grant, and (when it returns true) *break_glass_p says whether
//  the grant's approvals fill the policy's break_glass quorum on top of the type's quorum,
//  by other people, at the grant's time: the flag pre-flight hands to al_calendar_decide,
//  so it lifts exactly the obstacles the gate would have lifted.
bool al_approval_gate_verify_grant_break_glass (const al_policy_t *policy, Airlock__Environment environment,
                                                const Airlock__ExecuteDeploy *execute, uint64_t now_ms,
                                                bool *break_glass_p, char *reason, size_t reason_size);

#ifdef __cplusplus
}
#endif

#endif
