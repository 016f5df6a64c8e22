/*  al_signature_audit.c: re-verify every accepted approval in the log (see
    al_signature_audit.h).

    One pass over the rows. The approval ids of accepted SignedApproval rows are kept
    (with their request id) so that a grant can be checked against what was accepted
    before it; approvals are few next to the rows of a log, a linear list is enough.
    Rows are hostile input here: every envelope is decoded without trusting that it
    decodes, and every sub-message pointer is checked.
*/
#include "store/al_signature_audit.h"
#include "proto/al_codec.h"
#include "proto/al_signature.h"
#include <assert.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint8_t approval_id [AL_APPROVAL_ID_SIZE];
    uint8_t digest [crypto_hash_sha256_BYTES];     // of the signed approval's bytes
    char *request_id;
} s_accepted_t;

//  SHA-256 over what makes a signed approval: statement bytes, signature, public key
//  (each length-prefixed), so a grant's copy must be byte for byte an accepted one.
static void
s_approval_digest (const Airlock__SignedApproval *approval, uint8_t digest [crypto_hash_sha256_BYTES])
{
    crypto_hash_sha256_state state;
    crypto_hash_sha256_init (&state);
    const ProtobufCBinaryData *parts [3] = { &approval->statement, &approval->signature, &approval->public_key };
    for (int i = 0; i < 3; i++) {
        uint8_t length [8];
        for (int b = 0; b < 8; b++)
            length [b] = (uint8_t) ((uint64_t) parts [i]->len >> (8 * b));
        crypto_hash_sha256_update (&state, length, sizeof length);
        if (parts [i]->len)
            crypto_hash_sha256_update (&state, parts [i]->data, parts [i]->len);
    }
    crypto_hash_sha256_final (&state, digest);
}

static bool
s_same_text (const char *a, const char *b)
{
    return strcmp (a? a: "", b? b: "") == 0;
}

//  The statement's fields against the request it approves: NULL when they agree, else
//  the first field that differs.
static const char *
s_statement_differs (const Airlock__ApprovalStatement *statement, const Airlock__ApprovalRequest *request)
{
    if (!s_same_text (statement->request_id, request->request_id))
        return "request_id";
    if (statement->deployment_type != request->deployment_type)
        return "deployment_type";
    if (statement->environment != request->environment)
        return "environment";
    if (!s_same_text (statement->service, request->service))
        return "service";
    if (!s_same_text (statement->artifact_sha256, request->artifact_sha256))
        return "artifact_sha256";
    if (!s_same_text (statement->qa_report_sha256, request->qa_report_sha256))
        return "qa_report_sha256";
    if (!s_same_text (statement->migration_set_sha256, request->migration_set_sha256))
        return "migration_set_sha256";
    return NULL;
}

//  What deploy-manager is told to run against what was approved: NULL or the field.
static const char *
s_deploy_differs (const Airlock__DeployRequest *deploy, const Airlock__ApprovalRequest *request)
{
    if (!s_same_text (deploy->service, request->service))
        return "service";
    if (!s_same_text (deploy->version, request->version))
        return "version";
    if (!s_same_text (deploy->artifact_uri, request->artifact_uri))
        return "artifact_uri";
    if (!s_same_text (deploy->artifact_sha256, request->artifact_sha256))
        return "artifact_sha256";
    if (!s_same_text (deploy->migration_set_sha256, request->migration_set_sha256))
        return "migration_set_sha256";
    if (deploy->deployment_type != request->deployment_type)
        return "deployment_type";
    return NULL;
}

typedef struct {
    al_signature_audit_t *report;
    al_signature_audit_fn *fn;
    void *arg;
    s_accepted_t *accepted;
    size_t count;
    size_t capacity;
} s_audit_t;

static void
s_fail (s_audit_t *self, uint64_t sequence, const char *format, ...) __attribute__ ((format (printf, 3, 4)));

static void
s_fail (s_audit_t *self, uint64_t sequence, const char *format, ...)
{
    char what [512];
    va_list args;
    va_start (args, format);
    vsnprintf (what, sizeof what, format, args);
    va_end (args);
    if (self->report->failures++ == 0) {
        self->report->first_bad_sequence = sequence;
        snprintf (self->report->reason, sizeof self->report->reason, "row %llu: %.480s",
                  (unsigned long long) sequence, what);
    }
    if (self->fn)
        self->fn (sequence, what, self->arg);
}

//  Check one signed approval; returns true, or false with what is wrong in why. On
//  success the statement is handed back (caller frees) when statement_p is not NULL.
static bool
s_check (const Airlock__SignedApproval *approval, Airlock__ApprovalStatement **statement_p,
         char *why, size_t why_size)
{
    Airlock__ApprovalStatement *statement = NULL;
    char error [256];
    if (al_statement_unpack (approval->statement.data, approval->statement.len, &statement,
                             error, sizeof error) != AL_SIG_OK) {
        snprintf (why, why_size, "statement: %s", error);
        return false;
    }
    uint8_t public_key [AL_ED25519_PUBLIC_KEY_SIZE];
    al_sig_status_t status = al_signature_verify_approval (approval, public_key, error, sizeof error);
    if (status != AL_SIG_OK) {
        snprintf (why, why_size, "approval %s of request %s: signature does not verify: %s",
                  statement->approver_key_id, statement->request_id, error);
        airlock__approval_statement__free_unpacked (statement, NULL);
        return false;
    }
    char key_id [32];
    al_key_id (public_key, key_id);
    if (strcmp (key_id, statement->approver_key_id) != 0) {
        snprintf (why, why_size, "approval of request %s: statement names key %s but %s signed it",
                  statement->request_id, statement->approver_key_id, key_id);
        airlock__approval_statement__free_unpacked (statement, NULL);
        return false;
    }
    if (statement_p)
        *statement_p = statement;
    else
        airlock__approval_statement__free_unpacked (statement, NULL);
    return true;
}

static int
s_remember (s_audit_t *self, const Airlock__SignedApproval *approval, const Airlock__ApprovalStatement *statement)
{
    if (self->count == self->capacity) {
        size_t capacity = self->capacity? self->capacity * 2: 16;
        s_accepted_t *grown = realloc (self->accepted, capacity * sizeof *grown);
        if (!grown)
            return -1;
        self->accepted = grown;
        self->capacity = capacity;
    }
    s_accepted_t *slot = &self->accepted [self->count];
    slot->request_id = strdup (statement->request_id);
    if (!slot->request_id)
        return -1;
    memcpy (slot->approval_id, statement->approval_id.data, AL_APPROVAL_ID_SIZE);
    s_approval_digest (approval, slot->digest);
    self->count++;
    return 0;
}

//  Was this exact signed approval (same bytes) accepted earlier for this request?
static bool
s_was_accepted (s_audit_t *self, const Airlock__SignedApproval *approval, const Airlock__ApprovalStatement *statement)
{
    uint8_t digest [crypto_hash_sha256_BYTES];
    s_approval_digest (approval, digest);
    for (size_t i = 0; i < self->count; i++)
        if (memcmp (self->accepted [i].approval_id, statement->approval_id.data, AL_APPROVAL_ID_SIZE) == 0
        &&  strcmp (self->accepted [i].request_id, statement->request_id) == 0
        &&  memcmp (self->accepted [i].digest, digest, sizeof digest) == 0)
            return true;
    return false;
}

//  An accepted SignedApproval row. -1 only when out of memory.
static int
s_approval_row (s_audit_t *self, const al_store_event_t *event, const Airlock__Envelope *envelope)
{
    self->report->approvals++;
    if (!envelope || envelope->body_case != AIRLOCK__ENVELOPE__BODY_SIGNED_APPROVAL || !envelope->signed_approval) {
        s_fail (self, event->sequence, "accepted SignedApproval whose envelope does not decode as one");
        return 0;
    }
    Airlock__ApprovalStatement *statement = NULL;
    char why [512];
    if (!s_check (envelope->signed_approval, &statement, why, sizeof why)) {
        s_fail (self, event->sequence, "%s", why);
        return 0;
    }
    int rc = s_remember (self, envelope->signed_approval, statement);
    airlock__approval_statement__free_unpacked (statement, NULL);
    return rc;
}

//  An accepted ExecuteDeploy row.
static void
s_grant_row (s_audit_t *self, const al_store_event_t *event, const Airlock__Envelope *envelope)
{
    self->report->grants++;
    if (strcmp (event->sender, "broker") != 0) {
        s_fail (self, event->sequence, "ExecuteDeploy accepted from '%s': only the broker's approval gate makes one",
                event->sender);
        return;
    }
    if (!envelope || envelope->body_case != AIRLOCK__ENVELOPE__BODY_EXECUTE_DEPLOY || !envelope->execute_deploy) {
        s_fail (self, event->sequence, "accepted ExecuteDeploy whose envelope does not decode as one");
        return;
    }
    const Airlock__ProductionGrant *grant = envelope->execute_deploy->grant;
    if (!grant) {
        if (envelope->environment == AIRLOCK__ENVIRONMENT__ENV_PRODUCTION)
            s_fail (self, event->sequence, "production ExecuteDeploy without a grant");
        return;
    }
    if (grant->n_approvals == 0) {
        s_fail (self, event->sequence, "grant for request %s carries no approval", grant->request_id);
        return;
    }
    //  What the grant says was approved is what deploy-manager is told to run.
    const Airlock__ApprovalRequest *request = grant->request;
    const Airlock__DeployRequest *deploy = envelope->execute_deploy->request;
    if (!request || !deploy) {
        s_fail (self, event->sequence, "grant for request %s without the %s", grant->request_id,
                request? "deploy request": "approved request");
        return;
    }
    const char *field = s_deploy_differs (deploy, request);
    if (field) {
        s_fail (self, event->sequence, "grant for request %s: the deploy's %s differs from the approved request's",
                grant->request_id, field);
        return;
    }
    for (size_t i = 0; i < grant->n_approvals; i++) {
        self->report->grant_approvals++;
        const Airlock__SignedApproval *approval = grant->approvals [i];
        Airlock__ApprovalStatement *statement = NULL;
        char why [512];
        if (!approval) {
            s_fail (self, event->sequence, "grant for request %s: approval %zu is empty", grant->request_id, i + 1);
            return;
        }
        if (!s_check (approval, &statement, why, sizeof why)) {
            s_fail (self, event->sequence, "grant for request %s: %s", grant->request_id, why);
            return;
        }
        bool names_request = strcmp (statement->request_id, grant->request_id) == 0;
        const char *differs = s_statement_differs (statement, request);
        bool accepted = s_was_accepted (self, approval, statement);
        char request_id [AL_CODEC_MAX_ID_LEN + 1];
        snprintf (request_id, sizeof request_id, "%s", statement->request_id);
        airlock__approval_statement__free_unpacked (statement, NULL);
        if (!names_request) {
            s_fail (self, event->sequence, "grant for request %s carries an approval of request %s",
                    grant->request_id, request_id);
            return;
        }
        if (differs) {
            s_fail (self, event->sequence, "grant for request %s: approval %zu signed another %s than the "
                    "request's", grant->request_id, i + 1, differs);
            return;
        }
        if (!accepted) {
            s_fail (self, event->sequence, "grant for request %s carries approval %zu, which no earlier "
                    "accepted SignedApproval row holds byte for byte", grant->request_id, i + 1);
            return;
        }
    }
}

al_store_status_t
al_signature_audit_run (al_store_t *store, al_signature_audit_fn *fn, void *arg, al_signature_audit_t *report)
{
    assert (store && report);
    memset (report, 0, sizeof *report);
    s_audit_t self = { .report = report, .fn = fn, .arg = arg };
    al_store_status_t status = AL_STORE_ERR_IO;
    al_store_iter_t *iter = al_store_iter_new (store, 1);
    if (!iter)
        goto cleanup;
    al_store_event_t event;
    while ((status = al_store_iter_next (iter, &event)) == AL_STORE_OK) {
        report->rows++;
        if (event.decision != AL_STORE_ACCEPTED)
            continue;
        bool approving = strcmp (event.type, "SignedApproval") == 0;
        bool granting = strcmp (event.type, "ExecuteDeploy") == 0;
        if (!approving && !granting)
            continue;
        Airlock__Envelope *envelope = event.envelope_size
                                    ? airlock__envelope__unpack (NULL, event.envelope_size, event.envelope): NULL;
        int rc = 0;
        if (approving)
            rc = s_approval_row (&self, &event, envelope);
        else
            s_grant_row (&self, &event, envelope);
        if (envelope)
            airlock__envelope__free_unpacked (envelope, NULL);
        if (rc != 0) {
            status = AL_STORE_ERR_NOMEM;
            break;
        }
    }
    if (status == AL_STORE_END)
        status = AL_STORE_OK;
cleanup:
    al_store_iter_destroy (&iter);
    for (size_t i = 0; i < self.count; i++)
        free (self.accepted [i].request_id);
    free (self.accepted);
    return status;
}
