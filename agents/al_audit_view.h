/*  al_audit_view.h: what `airlock audit` shows beyond the replay itself: approver names,
    the signatures that counted for a grant, and the live state the replay is compared
    with, read through the files' owners.

    store/ replays the log (store/al_replay.h) but sits below policies/, deploy/ and
    agents/: it cannot name an approver, judge a signature against the policy, or read
    deploy-manager's receipts and the orchestrator's release files through their owners.
    This module, one layer up, does those three things for the CLI (cli/cmd_audit.c only
    parses and prints) and for any other client (the console).

    Stateless; the policy and store passed in are only read. Any thread may call it
    with its own store handle.
*/
#ifndef AL_AUDIT_VIEW_H_INCLUDED
#define AL_AUDIT_VIEW_H_INCLUDED

#include "policies/al_policy.h"
#include "proto/al_signature.h"
#include "store/al_replay.h"
#include "store/al_store.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

//  The approver's name for an approval's signing key (64 hex digits), borrowed from
//  policy; NULL when policy is NULL, the key is not hex, or no approver holds it.
const char *al_audit_approver_name (const al_policy_t *policy, const char *public_key_hex);

//  At most this many signatures of one grant are judged.
#define AL_AUDIT_SIGNERS_MAX 16

//  A hex approval id.
typedef char al_audit_approval_id_t [AL_APPROVAL_ID_SIZE * 2 + 1];

//  Which of a grant's signatures counted: those that pass the gate's check against the
//  grant's request at the grant's time (al_approval_gate_check, as deploy-manager does),
//  cut down to a minimal set that still meets the quorum as the whole set does
//  (al_approval_gate_evaluate): surplus signers, denials, expired or refused signatures are not
//  among them. Later signers are dropped first: the quorum was met by the earlier ones.
//  grant_sequence is the row of the broker's ExecuteDeploy. Fills ids and returns how
//  many, or -1 with why when the grant does not read or does not meet the quorum under
//  this policy (nothing can be said to have counted).
int al_audit_signers_counted (al_store_t *store, const al_policy_t *policy, uint64_t grant_sequence,
                              al_audit_approval_id_t ids [AL_AUDIT_SIGNERS_MAX], char *why, size_t why_size);

//  The approvers of a deployment as the history lists them: the GRANT signatures its
//  grant carried, with policy only those that counted (al_audit_signers_counted) and
//  "verified": true; without policy every one of them, "verified": false (nothing can
//  be judged). [{"key_id", "approver": name or null, "verified"}], in log order; never
//  NULL. When the policy is given but the grant's signatures cannot be judged, the list
//  is empty, *verified_p false, and why says so (else why is "").
json_t *al_audit_history_approvers (al_store_t *store, const al_policy_t *policy,
                                    const al_replay_deployment_t *deployment, bool *verified_p,
                                    char *why, size_t why_size);

//  Whether the history lists a deployment: it has an environment and a request (rows
//  about an id that has neither, a stray denial or an approval naming no filed request,
//  are in the replay, not in the history) and, when service is not NULL, is of service.
bool al_audit_history_listed (const al_replay_deployment_t *deployment, const char *service);

//  One row of the deployment history (seed 001's table) as JSON: "date", "deployment_id",
//  "service", "version", "type", "environment", "approved_by" (al_audit_history_approvers),
//  "status", "state", "duration_ms" (null when it did not run to a receipt), "rollback",
//  "rollback_rule", "notes". *verified_p and why as for al_audit_history_approvers.
//  NULL when out of memory.
json_t *al_audit_history_entry (al_store_t *store, const al_policy_t *policy,
                                const al_replay_deployment_t *deployment, bool *verified_p,
                                char *why, size_t why_size);

//  al_replay_deployment_json with each approval's "approver" name (null when unknown).
json_t *al_audit_deployment_json (const al_replay_deployment_t *deployment, const al_policy_t *policy);

//  A source for al_replay_compare_live that reads the live state of state_dir through
//  its owners: release files through agents/al_orchestrator_release, receipts through
//  deploy/al_deploy_receipt. state_dir is borrowed and must outlive the source.
void al_audit_live_source (const char *state_dir, al_replay_live_source_t *source);

#ifdef __cplusplus
}
#endif

#endif
