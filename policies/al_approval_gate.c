/*  al_approval_gate.c: the approval gate (see al_approval_gate.h for the rules).

    Quorum counting is a bipartite matching of PEOPLE to SLOTS: a hotfix needs one
    manager slot and one security slot; alice who is both manager and security can fill
    either but not both, so the matching, not a per-role count, decides. Break-glass
    slots (needed only while a freeze stands or a required window is closed) are extra
    slots that only approvals marked break_glass can fill, again by other people.
    Sizes are tiny (a few slots, a few people), so Kuhn's augmenting paths are plenty.
*/
#include "policies/al_approval_gate.h"
#include "base/al_error.h"
#include "policies/al_calendar.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define S_MAX_SLOTS AL_POLICY_MAX_APPROVAL_SLOTS
#define S_MAX_PEOPLE 64

const char *
al_approval_gate_outcome_name (al_approval_gate_outcome_t outcome)
{
    switch (outcome) {
        case AL_APPROVAL_GATE_PENDING: return "pending";
        case AL_APPROVAL_GATE_GRANTED: return "granted";
        case AL_APPROVAL_GATE_DENIED: return "denied";
        case AL_APPROVAL_GATE_BLOCKED: return "blocked";
    }
    return "unknown";
}

static bool
s_same (const char *a, const char *b)
{
    return strcmp (a ? a : "", b ? b : "") == 0;
}

bool
al_approval_gate_check (const al_policy_t *policy, const Airlock__ApprovalRequest *request,
                        const char *requester, const Airlock__SignedApproval *signed_approval,
                        uint64_t now_ms, al_approval_gate_accepted_t *approval, char *reason, size_t reason_size)
{
    memset (approval, 0, sizeof *approval);
    char error [256];
    uint8_t public_key [AL_ED25519_PUBLIC_KEY_SIZE];
    if (al_signature_verify_approval (signed_approval, public_key, error, sizeof error) != AL_SIG_OK) {
        al_error_set (reason, reason_size, "signature rejected: %s", error);
        return false;
    }
    char key_id [32];
    al_key_id (public_key, key_id);
    al_policy_approver_t approver;
    if (!al_policy_approver_for_key (policy, public_key, &approver)) {
        al_error_set (reason, reason_size, "key %s is not an approver key in approvers.yaml", key_id);
        return false;
    }
    if (approver.revoked) {
        al_error_set (reason, reason_size, "key %s of %s is revoked (approvers.yaml revoked_keys)", key_id, approver.name);
        return false;
    }
    Airlock__ApprovalStatement *statement = NULL;
    if (al_statement_unpack (signed_approval->statement.data, signed_approval->statement.len,
                             &statement, error, sizeof error) != AL_SIG_OK) {
        al_error_set (reason, reason_size, "%s", error);
        return false;
    }
    bool ok = false;
    //  Bit-for-bit match with the request: the first field that differs is named.
    const char *field = NULL;
    if (!s_same (statement->request_id, request->request_id))
        field = "request_id";
    else if (statement->deployment_type != request->deployment_type)
        field = "deployment_type";
    else if (statement->environment != request->environment)
        field = "environment";
    else if (!s_same (statement->service, request->service))
        field = "service";
    else if (!s_same (statement->artifact_sha256, request->artifact_sha256))
        field = "artifact_sha256";
    else if (!s_same (statement->qa_report_sha256, request->qa_report_sha256))
        field = "qa_report_sha256";
    else if (!s_same (statement->migration_set_sha256, request->migration_set_sha256))
        field = "migration_set_sha256";
    if (!field && !s_same (statement->submitted_by, request->submitted_by)) {
        //  Statements made before submitted_by was signed carry none: they cannot vouch for
        //  four eyes, so they do not count for a request that names its submitter.
        if (!statement->submitted_by || !*statement->submitted_by)
            al_error_set (reason, reason_size, "statement.submitted_by is missing (signed by an airlock older than "
                          "four-eyes checking) but request %s was submitted by %s: sign it again",
                          request->request_id, request->submitted_by);
        else
            al_error_set (reason, reason_size, "statement.submitted_by does not match request %s", request->request_id);
        goto cleanup;
    }
    if (field) {
        al_error_set (reason, reason_size, "statement.%s does not match request %s", field, request->request_id);
        goto cleanup;
    }
    if (!s_same (statement->approver_key_id, key_id)) {
        al_error_set (reason, reason_size, "statement.approver_key_id '%s' is not the signing key %s",
                      statement->approver_key_id, key_id);
        goto cleanup;
    }
    if (statement->issued_at_ms > now_ms + AL_APPROVAL_GATE_CLOCK_SKEW_MS) {
        al_error_set (reason, reason_size, "statement.issued_at_ms is in the future");
        goto cleanup;
    }
    if (now_ms >= statement->expires_at_ms) {
        al_error_set (reason, reason_size, "approval expired at %llu (now %llu)",
                      (unsigned long long) statement->expires_at_ms, (unsigned long long) now_ms);
        goto cleanup;
    }
    uint64_t longest_ms = (uint64_t) al_policy_approval_expiry_s (policy) * 1000;
    if (statement->expires_at_ms - statement->issued_at_ms > longest_ms) {
        al_error_set (reason, reason_size, "approval valid for longer than approval_expiry (%llds)",
                      (long long) al_policy_approval_expiry_s (policy));
        goto cleanup;
    }
    if (requester && s_same (approver.name, requester)) {
        al_error_set (reason, reason_size, "self-approval: %s filed request %s", approver.name, request->request_id);
        goto cleanup;
    }
    //  Four eyes: the person behind the identity that submitted the release (identities.yaml
    //  `person`, or an approver who has the identity's own name) may not approve it.
    if (request->submitted_by && *request->submitted_by) {
        const char *person = NULL;
        al_policy_identity_by_name (policy, request->submitted_by, NULL, NULL, &person);
        if (s_same (approver.name, request->submitted_by) || (person && s_same (approver.name, person))) {
            al_error_set (reason, reason_size, "four eyes: %s submitted this release (request %s) through identity %s "
                          "and cannot approve it", approver.name, request->request_id, request->submitted_by);
            goto cleanup;
        }
    }
    snprintf (approval->approver, sizeof approval->approver, "%s", approver.name);
    snprintf (approval->key_id, sizeof approval->key_id, "%s", key_id);
    memcpy (approval->public_key, public_key, sizeof public_key);
    memcpy (approval->approval_id, statement->approval_id.data, AL_APPROVAL_ID_SIZE);
    approval->decision = statement->decision;
    approval->break_glass = statement->break_glass;
    approval->expires_at_ms = statement->expires_at_ms;
    approval->roles = approver.roles;
    approval->role_count = approver.role_count;
    snprintf (approval->reason, sizeof approval->reason, "%s", statement->reason);
    ok = true;

cleanup:
    airlock__approval_statement__free_unpacked (statement, NULL);
    return ok;
}

static bool
s_has_role (const al_approval_gate_accepted_t *approval, const char *role)
{
    for (size_t i = 0; i < approval->role_count; i++)
        if (strcmp (approval->roles [i], role) == 0)
            return true;
    return false;
}

//  A slot to fill: a role, and whether only break-glass approvals may fill it.
typedef struct {
    const char *role;
    bool break_glass;
    bool skip_staging;              // one of the extra approvals that let a request skip staging
} s_slot_t;

//  People: one entry per approver name, the first of their approvals standing in for
//  their roles, break_glass if any of their approvals carries it.
typedef struct {
    const al_approval_gate_accepted_t *approval;
    bool break_glass;
} s_person_t;

typedef struct {
    const s_slot_t *slots;
    size_t slot_count;
    const s_person_t *people;
    size_t person_count;
    int slot_of_person [S_MAX_PEOPLE];      // -1 if unassigned
    int person_of_slot [S_MAX_SLOTS];
    bool visited [S_MAX_SLOTS];
} s_matching_t;

static bool
s_fits (const s_matching_t *m, size_t person, size_t slot)
{
    return s_has_role (m->people [person].approval, m->slots [slot].role)
        && (!m->slots [slot].break_glass || m->people [person].break_glass);
}

//  Kuhn's augmenting path from a slot.
static bool
s_augment (s_matching_t *m, size_t slot)
{
    for (size_t person = 0; person < m->person_count; person++) {
        if (!s_fits (m, person, slot))
            continue;
        int held = m->slot_of_person [person];
        if (held >= 0 && m->visited [held])
            continue;
        if (held >= 0) {
            m->visited [held] = true;
            if (!s_augment (m, (size_t) held))
                continue;
        }
        m->slot_of_person [person] = (int) slot;
        m->person_of_slot [slot] = (int) person;
        return true;
    }
    return false;
}

//  Append quorum's slots; returns the new count, or S_MAX_SLOTS + 1 when they do not fit
//  (the caller refuses: a quorum is never counted short).
static size_t
s_add_slots (s_slot_t *slots, size_t count, al_policy_quorum_t quorum, bool break_glass, bool skip_staging)
{
    for (size_t i = 0; i < quorum.count && count <= S_MAX_SLOTS; i++)
        for (unsigned n = 0; n < quorum.entries [i].count; n++) {
            if (count == S_MAX_SLOTS)
                return S_MAX_SLOTS + 1;
            slots [count++] = (s_slot_t) { quorum.entries [i].role, break_glass, skip_staging };
        }
    return count;
}

bool
al_approval_gate_no_qa_report (const Airlock__ApprovalRequest *request)
{
    return !request->qa_report_sha256 || !request->qa_report_sha256 [0]
        || strcmp (request->qa_report_sha256, AL_APPROVAL_GATE_NO_QA_REPORT) == 0;
}

//  People with a live GRANT at now_ms, each once (break_glass if any of their approvals
//  carries it). Returns how many.
static size_t
s_people (const al_approval_gate_accepted_t *approvals, size_t count, uint64_t now_ms, s_person_t *people)
{
    size_t person_count = 0;
    for (size_t i = 0; i < count; i++) {
        if (approvals [i].decision != AIRLOCK__DECISION__DECISION_GRANT || now_ms >= approvals [i].expires_at_ms)
            continue;
        size_t p;
        for (p = 0; p < person_count; p++)
            if (strcmp (people [p].approval->approver, approvals [i].approver) == 0)
                break;
        if (p == person_count) {
            if (person_count == S_MAX_PEOPLE)
                continue;
            people [person_count++] = (s_person_t) { &approvals [i], false };
        }
        people [p].break_glass |= approvals [i].break_glass;
    }
    return person_count;
}

//  Seat people in slots (maximum matching); m's tables say who holds which slot.
static void
s_match (s_matching_t *m, const s_slot_t *slots, size_t slot_count, const s_person_t *people, size_t person_count)
{
    memset (m, 0, sizeof *m);
    m->slots = slots;
    m->slot_count = slot_count;
    m->people = people;
    m->person_count = person_count;
    for (size_t p = 0; p < S_MAX_PEOPLE; p++)
        m->slot_of_person [p] = -1;
    for (size_t s = 0; s < S_MAX_SLOTS; s++)
        m->person_of_slot [s] = -1;
    //  Quorum slots first so break-glass people are not spent on ordinary slots when
    //  someone else could fill them: augmenting paths re-seat people as needed anyway.
    for (size_t s = 0; s < slot_count; s++) {
        memset (m->visited, 0, sizeof m->visited);
        m->visited [s] = true;
        s_augment (m, s);
    }
}

//  The skip-staging quorum a request needs: none unless it names no QA report and its
//  type requires staging.
static al_policy_quorum_t
s_skip_quorum (const al_policy_t *policy, const Airlock__ApprovalRequest *request)
{
    al_policy_quorum_t none = { NULL, 0 };
    if (al_approval_gate_no_qa_report (request) && al_policy_requires_staging (policy, request->deployment_type))
        return al_policy_skip_staging_quorum (policy, request->deployment_type);
    return none;
}

//  Do approvals fill the type's quorum, its skip-staging quorum and the policy's
//  break_glass quorum together, each slot by a different person, at now_ms?
static bool
s_break_glass_filled (const al_policy_t *policy, const Airlock__ApprovalRequest *request,
                      const al_approval_gate_accepted_t *approvals, size_t count, uint64_t now_ms)
{
    al_policy_quorum_t glass = al_policy_break_glass (policy);
    if (glass.count == 0)
        return false;
    s_slot_t slots [S_MAX_SLOTS];
    size_t slot_count = s_add_slots (slots, 0, al_policy_quorum (policy, request->deployment_type), false, false);
    if (slot_count <= S_MAX_SLOTS)
        slot_count = s_add_slots (slots, slot_count, s_skip_quorum (policy, request), false, true);
    if (slot_count <= S_MAX_SLOTS)
        slot_count = s_add_slots (slots, slot_count, glass, true, false);
    if (slot_count > S_MAX_SLOTS)
        return false;
    s_person_t people [S_MAX_PEOPLE];
    size_t person_count = s_people (approvals, count, now_ms, people);
    s_matching_t m;
    s_match (&m, slots, slot_count, people, person_count);
    for (size_t s = 0; s < slot_count; s++)
        if (m.person_of_slot [s] < 0)
            return false;
    return true;
}

al_approval_gate_outcome_t
al_approval_gate_evaluate (const al_policy_t *policy, const Airlock__ApprovalRequest *request,
                           const al_approval_gate_accepted_t *approvals, size_t count, uint64_t now_ms,
                           char *explanation, size_t explanation_size)
{
    al_policy_quorum_t quorum = al_policy_quorum (policy, request->deployment_type);
    if (quorum.count == 0) {
        al_error_set (explanation, explanation_size, "deployment type %d has no quorum in policy: refused",
                      (int) request->deployment_type);
        return AL_APPROVAL_GATE_DENIED;
    }
    //  No QA report for a type that requires staging: only the type's extra approvals
    //  to skip staging can stand in for it.
    al_policy_quorum_t skip = { NULL, 0 };
    if (al_approval_gate_no_qa_report (request) && al_policy_requires_staging (policy, request->deployment_type)) {
        skip = al_policy_skip_staging_quorum (policy, request->deployment_type);
        if (skip.count == 0) {
            al_error_set (explanation, explanation_size, "%s deployments require a staging run and an approved QA report "
                          "(deployment_types.yaml has no skip_staging_quorum for them); the request names none: refused",
                          al_deployment_type_name (request->deployment_type) ? al_deployment_type_name (request->deployment_type)
                          : "these");
            return AL_APPROVAL_GATE_DENIED;
        }
    }
    //  A DENY from anyone whose role the quorum (or the skip-staging quorum) needs closes
    //  the request.
    for (size_t i = 0; i < count; i++) {
        if (approvals [i].decision != AIRLOCK__DECISION__DECISION_DENY)
            continue;
        for (size_t q = 0; q < quorum.count + skip.count; q++) {
            const char *role = q < quorum.count ? quorum.entries [q].role : skip.entries [q - quorum.count].role;
            if (s_has_role (&approvals [i], role)) {
                al_error_set (explanation, explanation_size, "denied by %s (%s): %s", approvals [i].approver,
                              role, approvals [i].reason [0] ? approvals [i].reason : "no reason given");
                return AL_APPROVAL_GATE_DENIED;
            }
        }
    }
    s_person_t people [S_MAX_PEOPLE];
    size_t person_count = s_people (approvals, count, now_ms, people);
    //  Does a freeze or a closed window stand in the way? The same decision pre-flight
    //  takes (al_calendar.h): asked first without break-glass to learn whether its slots
    //  are needed, then with what the matching found.
    al_calendar_query_t calendar_query = {
        .environment = request->environment, .deployment_type = request->deployment_type,
        .window_start_ms = request->window_start_ms, .window_end_ms = request->window_end_ms,
        .now_ms = now_ms, .break_glass = false
    };
    al_calendar_decision_t calendar;
    al_calendar_decide (policy, &calendar_query, &calendar);
    s_slot_t slots [S_MAX_SLOTS];
    size_t quorum_slots = s_add_slots (slots, 0, quorum, false, false);
    if (quorum_slots <= S_MAX_SLOTS)
        quorum_slots = s_add_slots (slots, quorum_slots, skip, false, true);
    size_t slot_count = quorum_slots;
    if (calendar.break_glass_needed && slot_count <= S_MAX_SLOTS)
        slot_count = s_add_slots (slots, slot_count, al_policy_break_glass (policy), true, false);
    if (slot_count > S_MAX_SLOTS) {
        al_error_set (explanation, explanation_size, "the policy asks for more than %d signatures for one decision: "
                      "refused (the gate never counts a quorum short)", S_MAX_SLOTS);
        return AL_APPROVAL_GATE_DENIED;
    }

    s_matching_t m;
    s_match (&m, slots, slot_count, people, person_count);
    size_t missing_quorum = 0, missing_glass = 0;
    char missing [256] = "";
    for (size_t s = 0; s < slot_count; s++) {
        if (m.person_of_slot [s] >= 0)
            continue;
        if (s < quorum_slots)
            missing_quorum++;
        else
            missing_glass++;
        size_t used = strlen (missing);
        snprintf (missing + used, sizeof missing - used, "%s%s%s", used ? ", " : "", slots [s].role,
                  slots [s].break_glass ? " (break-glass)" : slots [s].skip_staging ? " (to skip staging)" : "");
    }
    if (missing_quorum) {
        al_error_set (explanation, explanation_size, "waiting for %zu more approval%s: %s", missing_quorum,
                      missing_quorum == 1 ? "" : "s", missing);
        return AL_APPROVAL_GATE_PENDING;
    }
    calendar_query.break_glass = calendar.break_glass_needed && missing_glass == 0;
    if (!al_calendar_decide (policy, &calendar_query, &calendar)) {
        if (missing_glass && !calendar.outside_scheduled)
            al_error_set (explanation, explanation_size, "quorum met but %s; break-glass needs: %s",
                          calendar.explanation, missing);
        else
            al_error_set (explanation, explanation_size, "quorum met but %s", calendar.explanation);
        return AL_APPROVAL_GATE_BLOCKED;
    }
    char granted [512] = "";
    for (size_t s = 0; s < slot_count; s++) {
        size_t used = strlen (granted);
        snprintf (granted + used, sizeof granted - used, "%s%s%s %s", used ? ", " : "",
                  slots [s].break_glass ? "break-glass" : slots [s].role,
                  slots [s].skip_staging ? " (skipping staging)" : "",
                  people [m.person_of_slot [s]].approval->approver);
    }
    al_error_set (explanation, explanation_size, "granted: %s%s%s", granted, calendar.break_glass_used ? "; " : "",
                  calendar.break_glass_used ? calendar.explanation : "");
    return AL_APPROVAL_GATE_GRANTED;
}

#define S_MAX_GRANT_APPROVALS 64

bool
al_approval_gate_verify_grant (const al_policy_t *policy, Airlock__Environment environment,
                               const Airlock__ExecuteDeploy *execute, uint64_t now_ms, char *reason, size_t reason_size)
{
    return al_approval_gate_verify_grant_break_glass (policy, environment, execute, now_ms, NULL, reason, reason_size);
}

bool
al_approval_gate_verify_grant_break_glass (const al_policy_t *policy, Airlock__Environment environment,
                                           const Airlock__ExecuteDeploy *execute, uint64_t now_ms,
                                           bool *break_glass_p, char *reason, size_t reason_size)
{
    if (break_glass_p)
        *break_glass_p = false;
    if (environment != AIRLOCK__ENVIRONMENT__ENV_PRODUCTION) {
        al_error_set (reason, reason_size, "not a production deploy");
        return false;
    }
    if (!execute || !execute->request || !execute->grant || !execute->grant->request) {
        al_error_set (reason, reason_size, "a production deploy without a production grant");
        return false;
    }
    const Airlock__DeployRequest *deploy = execute->request;
    const Airlock__ProductionGrant *grant = execute->grant;
    const Airlock__ApprovalRequest *request = grant->request;
    const char *field = NULL;
    if (request->environment != AIRLOCK__ENVIRONMENT__ENV_PRODUCTION)
        field = "environment";
    else if (!s_same (grant->request_id, request->request_id))
        field = "request_id";
    else if (!s_same (deploy->service, request->service))
        field = "service";
    else if (!s_same (deploy->version, request->version))
        field = "version";
    else if (!s_same (deploy->artifact_uri, request->artifact_uri))
        field = "artifact_uri";
    else if (!s_same (deploy->artifact_sha256, request->artifact_sha256))
        field = "artifact_sha256";
    else if (!s_same (deploy->migration_set_sha256, request->migration_set_sha256))
        field = "migration_set_sha256";
    else if (deploy->deployment_type != request->deployment_type)
        field = "deployment_type";
    if (field) {
        al_error_set (reason, reason_size, "grant: deploy request %s differs from the approved request", field);
        return false;
    }
    uint64_t longest_ms = (uint64_t) al_policy_approval_expiry_s (policy) * 1000;
    if (grant->granted_at_ms > now_ms + AL_APPROVAL_GATE_CLOCK_SKEW_MS || now_ms - grant->granted_at_ms > longest_ms) {
        al_error_set (reason, reason_size, "grant: granted_at is in the future or older than approval_expiry");
        return false;
    }
    if (grant->n_approvals == 0 || grant->n_approvals > S_MAX_GRANT_APPROVALS) {
        al_error_set (reason, reason_size, "grant: carries %zu approvals", grant->n_approvals);
        return false;
    }
    al_approval_gate_accepted_t approvals [S_MAX_GRANT_APPROVALS];
    char why [256];
    for (size_t i = 0; i < grant->n_approvals; i++) {
        if (!al_approval_gate_check (policy, request, request->requested_by, grant->approvals [i],
                                     grant->granted_at_ms, &approvals [i], why, sizeof why)) {
            al_error_set (reason, reason_size, "grant: approval %zu: %s", i, why);
            return false;
        }
        for (size_t j = 0; j < i; j++)
            if (memcmp (approvals [i].approval_id, approvals [j].approval_id, AL_APPROVAL_ID_SIZE) == 0) {
                al_error_set (reason, reason_size, "grant: approval %zu repeats approval %zu", i, j);
                return false;
            }
    }
    char explanation [512];
    if (al_approval_gate_evaluate (policy, request, approvals, grant->n_approvals, grant->granted_at_ms,
                          explanation, sizeof explanation) != AL_APPROVAL_GATE_GRANTED) {
        al_error_set (reason, reason_size, "grant: the approvals do not open production: %s", explanation);
        return false;
    }
    if (break_glass_p)
        *break_glass_p = s_break_glass_filled (policy, request, approvals, grant->n_approvals, grant->granted_at_ms);
    al_error_set (reason, reason_size, "grant verified: %s", explanation);
    return true;
}
