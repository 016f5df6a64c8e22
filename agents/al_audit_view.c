/*  al_audit_view.c: approver names, counted signers and the live state for `airlock
    audit` (see al_audit_view.h).
*/
#include "agents/al_audit_view.h"
#include "agents/al_orchestrator_release.h"
#include "base/al_error.h"
#include "deploy/al_deploy_receipt.h"
#include "policies/al_approval_gate.h"
#include "proto/al_codec.h"

#include <assert.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

const char *
al_audit_approver_name (const al_policy_t *policy, const char *public_key_hex)
{
    uint8_t key [32];
    size_t length = 0;
    al_policy_approver_t approver;
    if (!policy || !public_key_hex || strlen (public_key_hex) != 64
    ||  sodium_hex2bin (key, sizeof key, public_key_hex, 64, NULL, &length, NULL) != 0 || length != 32
    ||  !al_policy_approver_for_key (policy, key, &approver))
        return NULL;
    return approver.name;
}

int
al_audit_signers_counted (al_store_t *store, const al_policy_t *policy, uint64_t grant_sequence,
                          al_audit_approval_id_t ids [AL_AUDIT_SIGNERS_MAX], char *why, size_t why_size)
{
    assert (store && policy && ids && why);
    int count = -1;
    al_store_event_t event;
    Airlock__Envelope *envelope = NULL;
    al_error_set (why, why_size, "the grant (row %llu) does not read", (unsigned long long) grant_sequence);
    if (al_store_event_get (store, grant_sequence, &event) != AL_STORE_OK
    ||  !(envelope = airlock__envelope__unpack (NULL, event.envelope_size, event.envelope))
    ||  envelope->body_case != AIRLOCK__ENVELOPE__BODY_EXECUTE_DEPLOY || !envelope->execute_deploy->grant
    ||  !envelope->execute_deploy->grant->request)
        goto cleanup;
    const Airlock__ProductionGrant *grant = envelope->execute_deploy->grant;
    const Airlock__ApprovalRequest *request = grant->request;
    al_approval_gate_accepted_t valid [AL_AUDIT_SIGNERS_MAX];
    size_t valid_count = 0;
    for (size_t i = 0; i < grant->n_approvals && valid_count < AL_AUDIT_SIGNERS_MAX; i++) {
        char reason [256];
        if (al_approval_gate_check (policy, request, request->requested_by, grant->approvals [i],
                                    grant->granted_at_ms, &valid [valid_count], reason, sizeof reason))
            valid_count++;
    }
    char explanation [256];
    al_approval_gate_outcome_t full = al_approval_gate_evaluate (policy, request, valid, valid_count, grant->granted_at_ms,
                                               explanation, sizeof explanation);
    if (full != AL_APPROVAL_GATE_GRANTED && full != AL_APPROVAL_GATE_BLOCKED) {
        al_error_set (why, why_size, "its signatures do not meet the quorum under this policy: %s", explanation);
        goto cleanup;
    }
    bool kept [AL_AUDIT_SIGNERS_MAX];
    for (size_t i = 0; i < valid_count; i++)
        kept [i] = true;
    for (size_t drop = valid_count; drop-- > 0; ) {
        kept [drop] = false;
        al_approval_gate_accepted_t rest [AL_AUDIT_SIGNERS_MAX];
        size_t rest_count = 0;
        for (size_t i = 0; i < valid_count; i++)
            if (kept [i])
                rest [rest_count++] = valid [i];
        if (al_approval_gate_evaluate (policy, request, rest, rest_count, grant->granted_at_ms, explanation,
                              sizeof explanation) != full)
            kept [drop] = true;
    }
    count = 0;
    for (size_t i = 0; i < valid_count; i++)
        if (kept [i])
            sodium_bin2hex (ids [count++], sizeof ids [0], valid [i].approval_id, AL_APPROVAL_ID_SIZE);
    why [0] = 0;
cleanup:
    if (envelope)
        airlock__envelope__free_unpacked (envelope, NULL);
    return count;
}

json_t *
al_audit_history_approvers (al_store_t *store, const al_policy_t *policy, const al_replay_deployment_t *deployment,
                            bool *verified_p, char *why, size_t why_size)
{
    assert (store && deployment && verified_p && why);
    json_t *approvers = json_array ();
    al_audit_approval_id_t counted [AL_AUDIT_SIGNERS_MAX];
    why [0] = 0;
    int counted_count = policy && deployment->grant_sequence?
                        al_audit_signers_counted (store, policy, deployment->grant_sequence, counted, why, why_size): -1;
    bool verified = counted_count >= 0;
    *verified_p = verified;
    //  With a policy and signatures that cannot be judged, nobody is listed.
    for (size_t k = 0; approvers && k < deployment->approval_count && (verified || !policy); k++) {
        const al_replay_approval_t *approval = &deployment->approvals [k];
        if (!approval->in_grant || strcmp (approval->decision, "grant") != 0)
            continue;
        bool counts = false;
        for (int c = 0; c < counted_count && !counts; c++)
            counts = strcmp (counted [c], approval->approval_id) == 0;
        if (verified && !counts)
            continue;
        const char *name = al_audit_approver_name (policy, approval->public_key);
        json_array_append_new (approvers, json_pack ("{s:s, s:o, s:b}", "key_id", approval->key_id,
                                                     "approver", name? json_string (name): json_null (),
                                                     "verified", verified));
    }
    return approvers;
}

bool
al_audit_history_listed (const al_replay_deployment_t *deployment, const char *service)
{
    assert (deployment);
    return *deployment->environment && deployment->state != AL_REPLAY_UNKNOWN
        && (!service || strcmp (deployment->service, service) == 0);
}

json_t *
al_audit_history_entry (al_store_t *store, const al_policy_t *policy, const al_replay_deployment_t *deployment,
                        bool *verified_p, char *why, size_t why_size)
{
    assert (store && deployment && verified_p && why);
    al_replay_history_t row;
    al_replay_history_row (deployment, &row);
    json_t *approvers = al_audit_history_approvers (store, policy, deployment, verified_p, why, why_size);
    return json_pack ("{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:s, s:o, s:s, s:s, s:s}",
        "date", row.date, "deployment_id", deployment->id, "service", deployment->service,
        "version", deployment->version, "type", row.type, "environment", deployment->environment,
        "approved_by", approvers, "status", row.status, "state", al_replay_state_name (deployment->state),
        "duration_ms", row.duration_ms? json_integer ((json_int_t) row.duration_ms): json_null (),
        "rollback", row.rollback, "rollback_rule", deployment->rollback_rule, "notes", row.notes);
}

json_t *
al_audit_deployment_json (const al_replay_deployment_t *deployment, const al_policy_t *policy)
{
    json_t *root = al_replay_deployment_json (deployment);
    json_t *approvals = json_object_get (root, "approvals");
    for (size_t i = 0; i < deployment->approval_count && i < json_array_size (approvals); i++) {
        const char *name = al_audit_approver_name (policy, deployment->approvals [i].public_key);
        json_object_set_new (json_array_get (approvals, i), "approver", name? json_string (name): json_null ());
    }
    return root;
}

//  ---- the live state, through its owners ------------------------------------------------

static int
s_list_releases (void *self, al_replay_release_id_fn *each, void *each_arg, char *error, size_t error_size)
{
    return al_orchestrator_release_each ((const char *) self, each, each_arg, error, error_size) < 0? -1: 0;
}

static int
s_load_release (void *self, const char *release_id, al_replay_release_t *release, char *error, size_t error_size)
{
    al_orchestrator_release_t *file = al_orchestrator_release_load ((const char *) self, release_id,
                                                                    error, error_size);
    if (!file)
        return -1;
    al_error_set (release->release_id, sizeof release->release_id, "%s", file->release_id);
    al_error_set (release->state, sizeof release->state, "%s", file->state);
    al_orchestrator_release_destroy (&file);
    return 0;
}

static int
s_load_receipt (void *self, const char *deployment_id, al_replay_receipt_t *receipt, char *error, size_t error_size)
{
    al_deploy_receipt_t file;
    int rc = al_deploy_receipt_load ((const char *) self, deployment_id, &file, error, error_size);
    al_error_set (receipt->path, sizeof receipt->path, "%s", file.path);
    al_error_set (receipt->sha256, sizeof receipt->sha256, "%s", file.sha256);
    al_error_set (receipt->deployment_id, sizeof receipt->deployment_id, "%s", file.deployment_id);
    al_error_set (receipt->outcome, sizeof receipt->outcome, "%s", file.outcome);
    return rc;
}

void
al_audit_live_source (const char *state_dir, al_replay_live_source_t *source)
{
    assert (state_dir && source);
    *source = (al_replay_live_source_t) {
        .list_releases = s_list_releases,
        .load_release = s_load_release,
        .load_receipt = s_load_receipt,
        .self = (void *) state_dir
    };
}
