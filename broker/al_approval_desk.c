/*  al_approval_desk.c: the broker's approval desk (see al_approval_desk.h).

    Each request keeps a private copy of the ApprovalRequest (packed and unpacked, so the
    grant carries it exactly as filed) and the packed SignedApproval of every approval
    the gate accepted, next to its verdict. `committed` counts how many of those belong
    to committed batches; the tail beyond it is the current batch's, dropped by rollback.
    Requests are few (a handful open at any time), so a list is the right structure.
*/
#include "broker/al_approval_desk.h"
#include "base/al_error.h"

#include <assert.h>
#include <czmq.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint8_t *bytes;                 // packed SignedApproval as received
    size_t size;
    al_approval_gate_accepted_t verdict;
} s_approval_t;

typedef struct {
    Airlock__ApprovalRequest *request;  // unpacked copy (owns its memory)
    char requester [AL_CODEC_MAX_NAME_LEN + 1];
    uint64_t sequence;              // row that filed it
    uint64_t filed_ms;              // that row's time
    s_approval_t *approvals;
    size_t count;                   // approvals held (committed + tentative)
    size_t committed;
    size_t capacity;
    bool closed;                    // committed state
    bool closing;                   // closed in the current batch
    bool tentative;                 // filed in the current batch
} s_request_t;

struct al_approval_desk_t {
    zlistx_t *requests;             // s_request_t, in filing order
};

static void
s_request_destroy (void **item_p)
{
    s_request_t *request = (s_request_t *) *item_p;
    if (!request)
        return;
    for (size_t i = 0; i < request->count; i++)
        free (request->approvals [i].bytes);
    free (request->approvals);
    airlock__approval_request__free_unpacked (request->request, NULL);
    free (request);
    *item_p = NULL;
}

al_approval_desk_t *
al_approval_desk_new (void)
{
    al_approval_desk_t *self = (al_approval_desk_t *) calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->requests = zlistx_new ();
    if (!self->requests) {
        free (self);
        return NULL;
    }
    zlistx_set_destructor (self->requests, s_request_destroy);
    return self;
}

void
al_approval_desk_destroy (al_approval_desk_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    al_approval_desk_t *self = *self_p;
    zlistx_destroy (&self->requests);
    free (self);
    *self_p = NULL;
}

static s_request_t *
s_find (al_approval_desk_t *self, const char *request_id)
{
    for (s_request_t *request = (s_request_t *) zlistx_first (self->requests); request;
         request = (s_request_t *) zlistx_next (self->requests))
        if (strcmp (request->request->request_id, request_id) == 0)
            return request;
    return NULL;
}

bool
al_approval_desk_file (al_approval_desk_t *self, const Airlock__ApprovalRequest *request, const char *requester,
                       uint64_t sequence, uint64_t filed_ms, char *reason, size_t reason_size)
{
    assert (self && request && requester);
    if (s_find (self, request->request_id)) {
        al_error_set (reason, reason_size, "request %s was filed before", request->request_id);
        return false;
    }
    //  A private copy through pack/unpack: the caller's message is borrowed.
    size_t size = airlock__approval_request__get_packed_size (request);
    uint8_t *bytes = malloc (size + 1);
    s_request_t *entry = (s_request_t *) calloc (1, sizeof *entry);
    if (!bytes || !entry)
        goto failed;
    airlock__approval_request__pack (request, bytes);
    entry->request = airlock__approval_request__unpack (NULL, size, bytes);
    if (!entry->request)
        goto failed;
    free (bytes);
    bytes = NULL;
    //  requested_by is what the authenticated sender is, not what the body claims.
    char *stamped = strdup (requester);
    if (!stamped) {
        airlock__approval_request__free_unpacked (entry->request, NULL);
        goto failed;
    }
    //  protobuf-c points an absent string at the field's static default: never free that.
    const ProtobufCFieldDescriptor *field = protobuf_c_message_descriptor_get_field_by_name (
        &airlock__approval_request__descriptor, "requested_by");
    if (entry->request->requested_by != field->default_value)
        free (entry->request->requested_by);
    entry->request->requested_by = stamped;
    snprintf (entry->requester, sizeof entry->requester, "%s", requester);
    entry->sequence = sequence;
    entry->filed_ms = filed_ms;
    entry->tentative = true;
    zlistx_add_end (self->requests, entry);
    return true;
failed:
    free (bytes);
    free (entry);
    al_error_set (reason, reason_size, "out of memory filing request %s", request->request_id);
    return false;
}

static al_approval_gate_accepted_t *
s_verdicts (s_request_t *request, al_approval_gate_accepted_t *buffer, size_t max)
{
    for (size_t i = 0; i < request->count && i < max; i++)
        buffer [i] = request->approvals [i].verdict;
    return buffer;
}

//  Approvals a request may hold. Quorums need one to three people plus break-glass;
//  the bound keeps the grant (every approval, SSHSIG blobs up to 4 KiB each) well inside
//  one envelope.
#define S_MAX_APPROVALS 16

void
al_approval_desk_check (al_approval_desk_t *self, const al_policy_t *policy,
                        const Airlock__SignedApproval *signed_approval, uint64_t now_ms,
                        al_approval_desk_verdict_t *verdict)
{
    assert (self && policy && signed_approval && verdict);
    memset (verdict, 0, sizeof *verdict);
    //  The request id comes from the signed statement; the gate then checks the whole
    //  statement (signature included) against that request.
    Airlock__ApprovalStatement *statement = NULL;
    char error [256];
    if (al_statement_unpack (signed_approval->statement.data, signed_approval->statement.len,
                             &statement, error, sizeof error) != AL_SIG_OK) {
        al_error_set (verdict->reason, sizeof verdict->reason, "%s", error);
        return;
    }
    snprintf (verdict->request_id, sizeof verdict->request_id, "%s", statement->request_id);
    airlock__approval_statement__free_unpacked (statement, NULL);

    s_request_t *request = s_find (self, verdict->request_id);
    if (!request) {
        al_error_set (verdict->reason, sizeof verdict->reason, "no production request %s was filed",
                      verdict->request_id);
        return;
    }
    if (request->closed || request->closing) {
        al_error_set (verdict->reason, sizeof verdict->reason, "request %s is closed", verdict->request_id);
        return;
    }
    verdict->valid = al_approval_gate_check (policy, request->request, request->requester, signed_approval,
                                             now_ms, &verdict->approval, verdict->reason, sizeof verdict->reason);
}

bool
al_approval_desk_add (al_approval_desk_t *self, const al_policy_t *policy,
                      const Airlock__SignedApproval *signed_approval, uint64_t now_ms,
                      al_approval_desk_verdict_t *verdict)
{
    assert (verdict->valid);
    s_request_t *request = s_find (self, verdict->request_id);
    if (!request || request->closed || request->closing) {
        al_error_set (verdict->reason, sizeof verdict->reason, "request %s is closed", verdict->request_id);
        return false;
    }
    if (request->count >= S_MAX_APPROVALS) {
        al_error_set (verdict->reason, sizeof verdict->reason, "request %s holds %d approvals already",
                      verdict->request_id, S_MAX_APPROVALS);
        return false;
    }
    //  Keep the signed message exactly as received: the grant carries it to deploy-manager.
    if (request->count == request->capacity) {
        size_t capacity = request->capacity ? request->capacity * 2 : 4;
        s_approval_t *grown = realloc (request->approvals, capacity * sizeof *grown);
        if (!grown)
            return false;
        request->approvals = grown;
        request->capacity = capacity;
    }
    s_approval_t *slot = &request->approvals [request->count];
    slot->size = airlock__signed_approval__get_packed_size (signed_approval);
    slot->bytes = malloc (slot->size + 1);
    if (!slot->bytes)
        return false;
    airlock__signed_approval__pack (signed_approval, slot->bytes);
    slot->verdict = verdict->approval;
    request->count++;
    al_approval_gate_accepted_t verdicts [S_MAX_APPROVALS];
    verdict->outcome = al_approval_gate_evaluate (policy, request->request, s_verdicts (request, verdicts, S_MAX_APPROVALS),
                                                  request->count, now_ms, verdict->explanation,
                                                  sizeof verdict->explanation);
    //  A request lives as long as the QA report it was built on (qa_handoff.report_max_age):
    //  whatever the approvals say, a stale one is closed, and its release must be submitted
    //  again. Fail closed.
    uint64_t max_age_ms = (uint64_t) al_policy_qa_report_max_age_s (policy) * 1000;
    if (max_age_ms && now_ms > request->filed_ms && now_ms - request->filed_ms > max_age_ms
    &&  verdict->outcome != AL_APPROVAL_GATE_DENIED) {
        verdict->outcome = AL_APPROVAL_GATE_DENIED;
        al_error_set (verdict->explanation, sizeof verdict->explanation, "request filed %llu min ago, longer than "
                      "qa_handoff.report_max_age (%llu min): its QA report is stale; submit the release again",
                      (unsigned long long) ((now_ms - request->filed_ms) / 60000), (unsigned long long) (max_age_ms / 60000));
    }
    return true;
}

void
al_approval_desk_withdraw (al_approval_desk_t *self, const char *request_id, const uint8_t *approval_id)
{
    s_request_t *request = s_find (self, request_id);
    if (!request)
        return;
    for (size_t i = request->committed; i < request->count; i++)
        if (memcmp (request->approvals [i].verdict.approval_id, approval_id, AL_APPROVAL_ID_SIZE) == 0) {
            free (request->approvals [i].bytes);
            memmove (&request->approvals [i], &request->approvals [i + 1],
                     (request->count - i - 1) * sizeof request->approvals [0]);
            request->count--;
            return;
        }
}

bool
al_approval_desk_known (al_approval_desk_t *self, const char *request_id)
{
    return s_find (self, request_id) != NULL;
}

void
al_approval_desk_close (al_approval_desk_t *self, const char *request_id)
{
    s_request_t *request = s_find (self, request_id);
    if (request)
        request->closing = true;
}

void
al_approval_desk_commit (al_approval_desk_t *self)
{
    for (s_request_t *request = (s_request_t *) zlistx_first (self->requests); request;
         request = (s_request_t *) zlistx_next (self->requests)) {
        request->committed = request->count;
        request->tentative = false;
        if (request->closing)
            request->closed = true;
        request->closing = false;
    }
}

void
al_approval_desk_rollback (al_approval_desk_t *self)
{
    s_request_t *request = (s_request_t *) zlistx_first (self->requests);
    while (request) {
        s_request_t *next = (s_request_t *) zlistx_next (self->requests);
        if (request->tentative) {
            void *handle = zlistx_find (self->requests, request);
            zlistx_delete (self->requests, handle);
        }
        else {
            while (request->count > request->committed) {
                request->count--;
                free (request->approvals [request->count].bytes);
            }
            request->closing = false;
        }
        request = next;
    }
}

uint8_t *
al_approval_desk_execute_deploy (al_approval_desk_t *self, const char *request_id, uint64_t now_ms,
                                 uint64_t grant_sequence, size_t *size_p)
{
    s_request_t *request = s_find (self, request_id);
    if (!request || request->count == 0)
        return NULL;
    Airlock__SignedApproval **approvals = calloc (request->count, sizeof *approvals);
    if (!approvals)
        return NULL;
    uint8_t *packed = NULL;
    size_t unpacked = 0;
    for (; unpacked < request->count; unpacked++) {
        approvals [unpacked] = airlock__signed_approval__unpack (NULL, request->approvals [unpacked].size,
                                                                 request->approvals [unpacked].bytes);
        if (!approvals [unpacked])
            goto cleanup;
    }
    const Airlock__ApprovalRequest *filed = request->request;
    Airlock__DeployRequest deploy = AIRLOCK__DEPLOY_REQUEST__INIT;
    deploy.service = filed->service;
    deploy.version = filed->version;
    deploy.artifact_uri = filed->artifact_uri;
    deploy.artifact_sha256 = filed->artifact_sha256;
    deploy.strategy = filed->strategy;
    deploy.instances = filed->instances;
    deploy.migration_set_sha256 = filed->migration_set_sha256;
    deploy.deployment_type = filed->deployment_type;

    Airlock__ProductionGrant grant = AIRLOCK__PRODUCTION_GRANT__INIT;
    grant.request_id = filed->request_id;
    grant.request = (Airlock__ApprovalRequest *) filed;
    grant.n_approvals = request->count;
    grant.approvals = approvals;
    grant.granted_at_ms = now_ms;
    grant.grant_audit_sequence = grant_sequence;

    Airlock__ExecuteDeploy execute = AIRLOCK__EXECUTE_DEPLOY__INIT;
    execute.request = &deploy;
    execute.grant = &grant;
    execute.reason = "production grant: the approval quorum is met";

    char message_id [AL_CODEC_MAX_ID_LEN + 1];
    snprintf (message_id, sizeof message_id, AL_APPROVAL_DESK_GRANT_ID_FORMAT, filed->request_id);
    Airlock__Envelope envelope = AIRLOCK__ENVELOPE__INIT;
    envelope.message_id = message_id;
    envelope.deployment_id = filed->request_id;
    envelope.environment = filed->environment;
    envelope.timestamp_ms = now_ms;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_EXECUTE_DEPLOY;
    envelope.execute_deploy = &execute;
    char error [256];
    if (al_codec_pack (&envelope, &packed, size_p, error, sizeof error) != AL_CODEC_OK) {
        zsys_error ("approvals: ExecuteDeploy for %s does not pack: %s", filed->request_id, error);
        packed = NULL;
    }
cleanup:
    for (size_t i = 0; i < unpacked; i++)
        airlock__signed_approval__free_unpacked (approvals [i], NULL);
    free (approvals);
    return packed;
}

size_t
al_approval_desk_pending (al_approval_desk_t *self, const Airlock__ApprovalRequest **requests, size_t max)
{
    size_t count = 0;
    for (s_request_t *request = (s_request_t *) zlistx_first (self->requests); request;
         request = (s_request_t *) zlistx_next (self->requests)) {
        if (request->closed || request->tentative)
            continue;
        if (count < max)
            requests [count] = request->request;
        count++;
    }
    return count;
}

int
al_approval_desk_rebuild (al_approval_desk_t *self, al_store_t *store, const al_policy_t *policy,
                          char *error, size_t error_size)
{
    al_store_iter_t *iter = al_store_iter_new (store, 1);
    if (!iter) {
        al_error_set (error, error_size, "approvals: cannot read the log: %s", al_store_error (store));
        return -1;
    }
    al_store_event_t event;
    al_store_status_t status;
    while ((status = al_store_iter_next (iter, &event)) == AL_STORE_OK) {
        if (event.decision != AL_STORE_ACCEPTED || event.envelope_size == 0)
            continue;
        bool filing = strcmp (event.type, "ApprovalRequest") == 0;
        bool approving = strcmp (event.type, "SignedApproval") == 0;
        bool granting = strcmp (event.type, "ExecuteDeploy") == 0 && strcmp (event.sender, "broker") == 0;
        if (!filing && !approving && !granting)
            continue;
        al_envelope_t *envelope = NULL;
        //  The broker accepted these bytes under its own size limit, whatever it was
        //  then: the log's row size is the bound here, never the codec's default.
        if (al_codec_unpack (event.envelope, event.envelope_size, event.envelope_size, &envelope, NULL, 0)
            != AL_CODEC_OK)
            continue;
        if (filing && envelope->environment == AIRLOCK__ENVIRONMENT__ENV_PRODUCTION)
            al_approval_desk_file (self, envelope->approval_request, event.sender, event.sequence, event.time_ms, NULL, 0);
        else
        if (approving) {
            //  Judged again as it was then, at the time it was recorded.
            al_approval_desk_verdict_t verdict;
            al_approval_desk_check (self, policy, envelope->signed_approval, event.time_ms, &verdict);
            if (verdict.valid && al_approval_desk_add (self, policy, envelope->signed_approval, event.time_ms, &verdict)
            &&  verdict.outcome == AL_APPROVAL_GATE_DENIED)
                al_approval_desk_close (self, verdict.request_id);
        }
        else
        if (granting && envelope->execute_deploy->grant)
            al_approval_desk_close (self, envelope->execute_deploy->grant->request_id);
        al_codec_free (&envelope);
        al_approval_desk_commit (self);
    }
    al_store_iter_destroy (&iter);
    if (status != AL_STORE_END) {
        al_error_set (error, error_size, "approvals: reading the log: %s", al_store_error (store));
        return -1;
    }
    return (int) al_approval_desk_pending (self, NULL, 0);
}
