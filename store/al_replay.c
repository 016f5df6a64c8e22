/*  al_replay.c: deployments re-derived from the audit log (see al_replay.h).

    One pass over the rows in sequence order. Rows of types that never concern a
    deployment (heartbeat-free bus traffic: signals, acks, status queries, ...) are
    skipped on their type column before anything is decoded. The others are decoded as
    protobuf only, never trusted: a denied row may hold anything, and even an accepted
    row is only as good as the chain (verify is a separate command). Every sub-message
    pointer is checked before use.

    Memory: every string a deployment shows lives in one pool owned by the replay, so
    the structs handed out are plain borrowed views. Deployments are found by id through
    a small open-addressing index (a long log holds thousands of them).
*/
#include "store/al_replay.h"
#include "proto/al_codec.h"
#include "proto/al_signature.h"
#include "base/al_file.h"
#include "base/al_paths.h"
#include <assert.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

//  Largest evidence file read for the comparison (receipts are a few KiB).
#define S_MAX_EVIDENCE (16 * 1024 * 1024)

typedef struct {
    al_replay_deployment_t view;    // what callers see; pointers into the pool and arrays below
    al_replay_entry_t *entries;
    size_t entry_capacity;
    al_replay_approval_t *approvals;
    size_t approval_capacity;
    bool accepted_request;          // an accepted request (or grant) was seen
} s_deployment_t;

struct _al_replay_t {
    s_deployment_t **deployments;
    size_t count;
    size_t capacity;
    size_t *index;                  // open addressing: slot holds deployment index + 1, 0 = empty
    size_t index_size;              // power of two
    char **pool;
    size_t pool_count;
    size_t pool_capacity;
    uint64_t rows;
    bool out_of_memory;
};

//  ---- strings ---------------------------------------------------------------------------

static const char *
s_keep (al_replay_t *self, const char *text)
{
    if (!text || !*text)
        return "";
    if (self->pool_count == self->pool_capacity) {
        size_t capacity = self->pool_capacity? self->pool_capacity * 2: 256;
        char **grown = realloc (self->pool, capacity * sizeof *grown);
        if (!grown) {
            self->out_of_memory = true;
            return "";
        }
        self->pool = grown;
        self->pool_capacity = capacity;
    }
    char *copy = strdup (text);
    if (!copy) {
        self->out_of_memory = true;
        return "";
    }
    self->pool [self->pool_count++] = copy;
    return copy;
}

static const char *
s_keepf (al_replay_t *self, const char *format, ...) __attribute__ ((format (printf, 2, 3)));

static const char *
s_keepf (al_replay_t *self, const char *format, ...)
{
    char text [1024];
    va_list args;
    va_start (args, format);
    vsnprintf (text, sizeof text, format, args);
    va_end (args);
    return s_keep (self, text);
}

static const char *
s_keep_hex (al_replay_t *self, const uint8_t *data, size_t size)
{
    char hex [129];
    if (size > 64)
        size = 64;
    sodium_bin2hex (hex, sizeof hex, data, size);
    return s_keep (self, hex);
}

//  ---- deployments -----------------------------------------------------------------------

static size_t
s_hash (const char *text)
{
    size_t hash = 14695981039346656037ull;
    for (; *text; text++)
        hash = (hash ^ (unsigned char) *text) * 1099511628211ull;
    return hash;
}

static int
s_index_grow (al_replay_t *self)
{
    size_t size = self->index_size? self->index_size * 2: 64;
    size_t *index = calloc (size, sizeof *index);
    if (!index)
        return -1;
    for (size_t i = 0; i < self->count; i++) {
        size_t slot = s_hash (self->deployments [i]->view.id) & (size - 1);
        while (index [slot])
            slot = (slot + 1) & (size - 1);
        index [slot] = i + 1;
    }
    free (self->index);
    self->index = index;
    self->index_size = size;
    return 0;
}

static s_deployment_t *
s_lookup (const al_replay_t *self, const char *id)
{
    if (!self->index_size)
        return NULL;
    size_t slot = s_hash (id) & (self->index_size - 1);
    while (self->index [slot]) {
        s_deployment_t *deployment = self->deployments [self->index [slot] - 1];
        if (strcmp (deployment->view.id, id) == 0)
            return deployment;
        slot = (slot + 1) & (self->index_size - 1);
    }
    return NULL;
}

//  The deployment with this id, made on first sight; NULL when out of memory.
static s_deployment_t *
s_deployment (al_replay_t *self, const char *id, uint64_t sequence)
{
    s_deployment_t *deployment = s_lookup (self, id);
    if (deployment)
        return deployment;
    if ((self->count + 1) * 2 > self->index_size && s_index_grow (self) != 0)
        goto failed;
    if (self->count == self->capacity) {
        size_t capacity = self->capacity? self->capacity * 2: 32;
        s_deployment_t **grown = realloc (self->deployments, capacity * sizeof *grown);
        if (!grown)
            goto failed;
        self->deployments = grown;
        self->capacity = capacity;
    }
    deployment = calloc (1, sizeof *deployment);
    if (!deployment)
        goto failed;
    al_replay_deployment_t *view = &deployment->view;
    view->id = s_keep (self, id);
    view->environment = view->service = view->version = view->artifact_uri = view->artifact_sha256 = "";
    view->deployment_type = view->requested_by = view->step = view->detail = "";
    view->receipt_outcome = view->receipt_sha256 = view->rollback_rule = view->previous_version = "";
    view->first_sequence = sequence;
    self->deployments [self->count++] = deployment;
    size_t slot = s_hash (id) & (self->index_size - 1);
    while (self->index [slot])
        slot = (slot + 1) & (self->index_size - 1);
    self->index [slot] = self->count;
    return deployment;
failed:
    self->out_of_memory = true;
    return NULL;
}

static al_replay_entry_t *
s_entry (al_replay_t *self, s_deployment_t *deployment, al_replay_kind_t kind, const al_store_event_t *event)
{
    if (deployment->view.entry_count == deployment->entry_capacity) {
        size_t capacity = deployment->entry_capacity? deployment->entry_capacity * 2: 16;
        al_replay_entry_t *grown = realloc (deployment->entries, capacity * sizeof *grown);
        if (!grown) {
            self->out_of_memory = true;
            return NULL;
        }
        deployment->entries = grown;
        deployment->entry_capacity = capacity;
        deployment->view.entries = grown;
    }
    al_replay_entry_t *entry = &deployment->entries [deployment->view.entry_count++];
    entry->kind = kind;
    entry->sequence = event->sequence;
    entry->time_ms = event->time_ms;
    entry->sender = s_keep (self, event->sender);
    entry->role = s_keep (self, event->role);
    entry->type = s_keep (self, event->type);
    entry->step = entry->outcome = entry->text = "";
    return entry;
}

static bool
s_terminal (al_replay_state_t state)
{
    return state == AL_REPLAY_SUCCEEDED || state == AL_REPLAY_ROLLED_BACK || state == AL_REPLAY_FAILED;
}

static bool
s_empty (const char *text)
{
    return !text || !*text;
}

//  What a request says about the deployment. overwrite: an accepted request is the
//  authority; a denial only fills what is still unknown.
static void
s_describe (al_replay_t *self, s_deployment_t *deployment, bool overwrite, const char *service, const char *version,
            const char *artifact_uri, const char *artifact_sha256, Airlock__DeploymentType type)
{
    al_replay_deployment_t *view = &deployment->view;
    if (!s_empty (service) && (overwrite || !*view->service))
        view->service = s_keep (self, service);
    if (!s_empty (version) && (overwrite || !*view->version))
        view->version = s_keep (self, version);
    if (!s_empty (artifact_uri) && (overwrite || !*view->artifact_uri))
        view->artifact_uri = s_keep (self, artifact_uri);
    if (!s_empty (artifact_sha256) && (overwrite || !*view->artifact_sha256))
        view->artifact_sha256 = s_keep (self, artifact_sha256);
    const char *type_name = al_deployment_type_name (type);
    if (type_name && type != AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_UNSPECIFIED
    &&  (overwrite || !*view->deployment_type))
        view->deployment_type = s_keep (self, type_name);
}

static void
s_requested (al_replay_t *self, s_deployment_t *deployment, const al_store_event_t *event, al_replay_state_t state)
{
    al_replay_deployment_t *view = &deployment->view;
    if (deployment->accepted_request)
        return;
    deployment->accepted_request = true;
    view->requested_by = s_keep (self, event->sender);
    view->requested_ms = event->time_ms;
    view->request_sequence = event->sequence;
    if (view->state == AL_REPLAY_UNKNOWN || view->state == AL_REPLAY_REFUSED) {
        view->state = state;
        view->detail = "";
    }
}

//  ---- approvals ---------------------------------------------------------------------------

static al_replay_approval_t *
s_approval_find (s_deployment_t *deployment, const char *approval_id)
{
    for (size_t i = 0; i < deployment->view.approval_count; i++)
        if (strcmp (deployment->approvals [i].approval_id, approval_id) == 0)
            return &deployment->approvals [i];
    return NULL;
}

//  Record a signed approval (from its own row, or found only in the grant). Returns the
//  record, or NULL when its statement does not decode or memory is short.
static al_replay_approval_t *
s_approval (al_replay_t *self, s_deployment_t *deployment, const Airlock__SignedApproval *signed_approval,
            const Airlock__ApprovalStatement *statement, const al_store_event_t *event)
{
    char id_hex [AL_APPROVAL_ID_SIZE * 2 + 1];
    sodium_bin2hex (id_hex, sizeof id_hex, statement->approval_id.data, AL_APPROVAL_ID_SIZE);
    al_replay_approval_t *approval = s_approval_find (deployment, id_hex);
    if (approval)
        return approval;
    if (deployment->view.approval_count == deployment->approval_capacity) {
        size_t capacity = deployment->approval_capacity? deployment->approval_capacity * 2: 4;
        al_replay_approval_t *grown = realloc (deployment->approvals, capacity * sizeof *grown);
        if (!grown) {
            self->out_of_memory = true;
            return NULL;
        }
        deployment->approvals = grown;
        deployment->approval_capacity = capacity;
        deployment->view.approvals = grown;
    }
    approval = &deployment->approvals [deployment->view.approval_count++];
    memset (approval, 0, sizeof *approval);
    approval->sequence = event->sequence;
    approval->time_ms = event->time_ms;
    approval->sender = s_keep (self, event->sender);
    approval->key_id = s_keep (self, statement->approver_key_id);
    uint8_t public_key [AL_ED25519_PUBLIC_KEY_SIZE];
    approval->signature_valid = al_signature_verify_approval (signed_approval, public_key, NULL, 0) == AL_SIG_OK;
    approval->public_key = approval->signature_valid? s_keep_hex (self, public_key, sizeof public_key): "";
    approval->decision = statement->decision == AIRLOCK__DECISION__DECISION_DENY? "deny": "grant";
    approval->approval_id = s_keep (self, id_hex);
    approval->reason = s_keep (self, statement->reason);
    approval->break_glass = statement->break_glass;
    return approval;
}

//  ---- one row ----------------------------------------------------------------------------

typedef enum {
    S_OTHER = 0, S_DEPLOY_REQUEST, S_APPROVAL_REQUEST, S_SIGNED_APPROVAL, S_APPROVAL_CLOSED, S_EXECUTE_DEPLOY,
    S_DEPLOY_PROGRESS, S_DEPLOY_RECEIPT, S_ROLLBACK_TRIGGER, S_QA_REQUEST, S_QA_REPORT
} s_type_t;

static s_type_t
s_type (const char *name)
{
    static const struct { const char *name; s_type_t type; } types [] = {
        { "DeployRequest", S_DEPLOY_REQUEST }, { "ApprovalRequest", S_APPROVAL_REQUEST },
        { "SignedApproval", S_SIGNED_APPROVAL }, { "ApprovalClosed", S_APPROVAL_CLOSED },
        { "ExecuteDeploy", S_EXECUTE_DEPLOY }, { "DeployProgress", S_DEPLOY_PROGRESS },
        { "DeployReceipt", S_DEPLOY_RECEIPT }, { "RollbackTrigger", S_ROLLBACK_TRIGGER },
        { "QaRequest", S_QA_REQUEST }, { "QaReport", S_QA_REPORT },
    };
    for (size_t i = 0; i < sizeof types / sizeof types [0]; i++)
        if (strcmp (name, types [i].name) == 0)
            return types [i].type;
    return S_OTHER;
}

//  The envelope's body matches the row's type (else its content is not used).
static bool
s_body_is (const Airlock__Envelope *envelope, const char *type)
{
    if (!envelope)
        return false;
    const char *name = al_msg_type_name ((al_msg_type_t) envelope->body_case);
    return name && strcmp (name, type) == 0;
}

static void
s_denied (al_replay_t *self, s_deployment_t *deployment, s_type_t type, const al_store_event_t *event,
          const Airlock__Envelope *envelope)
{
    al_replay_entry_t *entry = s_entry (self, deployment, AL_REPLAY_DENIAL, event);
    if (entry)
        entry->text = s_keepf (self, "denied %s from %s (%s): %s", event->type, event->sender, event->role,
                               event->reason);
    if (envelope && envelope->body_case == AIRLOCK__ENVELOPE__BODY_DEPLOY_REQUEST && envelope->deploy_request) {
        const Airlock__DeployRequest *request = envelope->deploy_request;
        s_describe (self, deployment, false, request->service, request->version, request->artifact_uri,
                    request->artifact_sha256, request->deployment_type);
    }
    else
    if (envelope && envelope->body_case == AIRLOCK__ENVELOPE__BODY_APPROVAL_REQUEST && envelope->approval_request) {
        const Airlock__ApprovalRequest *request = envelope->approval_request;
        s_describe (self, deployment, false, request->service, request->version, request->artifact_uri,
                    request->artifact_sha256, request->deployment_type);
    }
    //  A refused attempt is the deployment's state only while nothing was accepted for it.
    bool request = type == S_DEPLOY_REQUEST || type == S_APPROVAL_REQUEST || type == S_EXECUTE_DEPLOY;
    al_replay_deployment_t *view = &deployment->view;
    if (request && !deployment->accepted_request
    &&  (view->state == AL_REPLAY_UNKNOWN || view->state == AL_REPLAY_REFUSED)) {
        view->state = AL_REPLAY_REFUSED;
        view->detail = s_keepf (self, "%s from %s denied: %s", event->type, event->sender, event->reason);
    }
}

static void
s_deploy_request (al_replay_t *self, s_deployment_t *deployment, const al_store_event_t *event,
                  const Airlock__DeployRequest *request)
{
    s_describe (self, deployment, true, request->service, request->version, request->artifact_uri,
                request->artifact_sha256, request->deployment_type);
    al_replay_entry_t *entry = s_entry (self, deployment, AL_REPLAY_REQUEST, event);
    if (entry) {
        const char *strategy = al_strategy_name (request->strategy);
        entry->text = s_keepf (self, "deploy request by %s (%s): %s %s, artifact sha256 %.12s, %s, %u instance(s)",
                               event->sender, event->role, request->service, request->version,
                               request->artifact_sha256, strategy? strategy: "default strategy", request->instances);
    }
    s_requested (self, deployment, event, AL_REPLAY_REQUESTED);
}

static void
s_approval_request (al_replay_t *self, s_deployment_t *deployment, const al_store_event_t *event,
                    const Airlock__Envelope *envelope)
{
    const Airlock__ApprovalRequest *request = envelope->approval_request;
    s_describe (self, deployment, true, request->service, request->version, request->artifact_uri,
                request->artifact_sha256, request->deployment_type);
    al_replay_entry_t *entry = s_entry (self, deployment, AL_REPLAY_REQUEST, event);
    const char *type = al_deployment_type_name (request->deployment_type);
    if (entry)
        entry->text = s_keepf (self, "%s request filed by %s (%s): %s %s (%s), artifact sha256 %.12s, "
                               "QA report %.12s, risk %s", al_environment_name (request->environment)?
                               al_environment_name (request->environment): "approval",
                               event->sender, event->role, request->service, request->version, type? type: "?",
                               request->artifact_sha256, request->qa_report_sha256,
                               *request->risk_level? request->risk_level: "?");
    bool production = request->environment == AIRLOCK__ENVIRONMENT__ENV_PRODUCTION
                   || envelope->environment == AIRLOCK__ENVIRONMENT__ENV_PRODUCTION;
    s_requested (self, deployment, event, production? AL_REPLAY_AWAITING_APPROVAL: AL_REPLAY_REQUESTED);
}

static void
s_signed_approval (al_replay_t *self, s_deployment_t *deployment, const al_store_event_t *event,
                   const Airlock__SignedApproval *signed_approval, const Airlock__ApprovalStatement *statement)
{
    al_replay_approval_t *approval = s_approval (self, deployment, signed_approval, statement, event);
    al_replay_entry_t *entry = s_entry (self, deployment, AL_REPLAY_APPROVAL, event);
    if (!entry || !approval)
        return;
    bool deny = statement->decision == AIRLOCK__DECISION__DECISION_DENY;
    entry->outcome = approval->decision;
    entry->text = s_keepf (self, "%s by %s (via %s), approval id %.8s%s%s%s%s", deny? "DENY": "GRANT",
                           approval->key_id, event->sender, approval->approval_id,
                           statement->break_glass? ", break-glass": "",
                           deny && *statement->reason? ": ": "", deny? statement->reason: "",
                           approval->signature_valid? "": " (the signature does NOT verify)");
}

static void
s_grant (al_replay_t *self, s_deployment_t *deployment, const al_store_event_t *event,
         const Airlock__ExecuteDeploy *execute)
{
    al_replay_deployment_t *view = &deployment->view;
    const Airlock__ProductionGrant *grant = execute->grant;
    if (execute->request)
        s_describe (self, deployment, !deployment->accepted_request, execute->request->service,
                    execute->request->version, execute->request->artifact_uri, execute->request->artifact_sha256,
                    execute->request->deployment_type);
    if (!grant) {
        //  Not a production grant: an instruction to deploy, i.e. a request.
        al_replay_entry_t *entry = s_entry (self, deployment, AL_REPLAY_REQUEST, event);
        if (entry)
            entry->text = s_keepf (self, "ExecuteDeploy from %s (%s)%s%s", event->sender, event->role,
                                   *execute->reason? ": ": "", execute->reason);
        s_requested (self, deployment, event, AL_REPLAY_REQUESTED);
        return;
    }
    view->grant_sequence = event->sequence;
    view->grant_ms = event->time_ms;
    char keys [600] = "";
    for (size_t i = 0; i < grant->n_approvals; i++) {
        const Airlock__SignedApproval *signed_approval = grant->approvals [i];
        Airlock__ApprovalStatement *statement = NULL;
        if (!signed_approval
        ||  al_statement_unpack (signed_approval->statement.data, signed_approval->statement.len, &statement,
                                 NULL, 0) != AL_SIG_OK)
            continue;
        al_replay_approval_t *approval = s_approval (self, deployment, signed_approval, statement, event);
        if (approval) {
            approval->in_grant = true;
            size_t used = strlen (keys);
            snprintf (keys + used, sizeof keys - used, "%s%s", used? ", ": "", approval->key_id);
        }
        airlock__approval_statement__free_unpacked (statement, NULL);
    }
    if (!deployment->accepted_request && grant->request) {
        //  The request row is not in this log (or not within as_of): the grant carries it.
        deployment->accepted_request = true;
        view->requested_by = s_keep (self, grant->request->requested_by);
    }
    deployment->accepted_request = true;
    al_replay_entry_t *entry = s_entry (self, deployment, AL_REPLAY_GRANT, event);
    if (entry)
        entry->text = s_keepf (self, "production grant by %s for request %s: %zu approval(s): %s", event->sender,
                               grant->request_id, grant->n_approvals, keys);
    if (view->state == AL_REPLAY_UNKNOWN || view->state == AL_REPLAY_REQUESTED
    ||  view->state == AL_REPLAY_AWAITING_APPROVAL || view->state == AL_REPLAY_REFUSED) {
        view->state = AL_REPLAY_APPROVED;
        view->detail = "";
    }
}

static al_replay_state_t
s_outcome_state (Airlock__Outcome outcome)
{
    return outcome == AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED? AL_REPLAY_SUCCEEDED
         : outcome == AIRLOCK__OUTCOME__OUTCOME_ROLLED_BACK? AL_REPLAY_ROLLED_BACK
         : AL_REPLAY_FAILED;
}

static void
s_progress (al_replay_t *self, s_deployment_t *deployment, const al_store_event_t *event,
            const Airlock__DeployProgress *progress)
{
    al_replay_deployment_t *view = &deployment->view;
    if (!*view->service && *progress->service)
        view->service = s_keep (self, progress->service);
    const char *step = al_step_name (progress->step);
    const char *outcome = al_outcome_name (progress->outcome);
    step = step? step: "unspecified";
    outcome = outcome? outcome: "unspecified";
    if (!progress->journal) {
        //  Only a refusal counts here; progress inside a step is not part of the record.
        const char *why = progress->detail + strlen ("refused:");
        while (*why == ' ')
            why++;
        al_replay_entry_t *entry = s_entry (self, deployment, AL_REPLAY_REFUSAL, event);
        if (entry)
            entry->text = s_keepf (self, "%s (%s) refused it: %s", event->sender, event->role, why);
        if (view->state != AL_REPLAY_RUNNING && !s_terminal (view->state)) {
            view->state = AL_REPLAY_REFUSED;
            view->detail = s_keepf (self, "refused by %s: %s", event->sender, why);
        }
        return;
    }
    al_replay_entry_t *entry = s_entry (self, deployment, AL_REPLAY_JOURNAL, event);
    if (entry) {
        entry->step = s_keep (self, step);
        entry->outcome = s_keep (self, outcome);
        entry->text = s_keepf (self, "%s %s%s%s", step, outcome, *progress->detail? ": ": "", progress->detail);
    }
    if (!view->started_ms)
        view->started_ms = event->time_ms;
    if (s_terminal (view->state))
        return;
    bool final = progress->step == AIRLOCK__STEP__STEP_RECEIPT
              && (progress->outcome == AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED
                  || progress->outcome == AIRLOCK__OUTCOME__OUTCOME_ROLLED_BACK
                  || progress->outcome == AIRLOCK__OUTCOME__OUTCOME_FAILED);
    if (final) {
        view->state = s_outcome_state (progress->outcome);
        view->step = "";
        view->finished_ms = event->time_ms;
    }
    else {
        view->state = AL_REPLAY_RUNNING;
        view->step = s_keep (self, step);
    }
}

static void
s_receipt (al_replay_t *self, s_deployment_t *deployment, const al_store_event_t *event,
           const Airlock__DeployReceipt *receipt)
{
    al_replay_deployment_t *view = &deployment->view;
    const char *outcome = al_outcome_name (receipt->outcome);
    outcome = outcome? outcome: "unspecified";
    s_describe (self, deployment, false, receipt->service, receipt->version, NULL, receipt->artifact_sha256,
                AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_UNSPECIFIED);
    view->receipt_sequence = event->sequence;
    view->receipt_outcome = s_keep (self, outcome);
    view->receipt_sha256 = s_keep (self, receipt->receipt_sha256);
    view->rollback_rule = s_keep (self, receipt->rollback_rule);
    view->previous_version = s_keep (self, receipt->previous_version);
    view->state = s_outcome_state (receipt->outcome);
    view->step = "";
    if (!view->finished_ms)
        view->finished_ms = event->time_ms;
    if (view->state == AL_REPLAY_ROLLED_BACK)
        view->detail = *receipt->rollback_rule? s_keepf (self, "rule %s", receipt->rollback_rule): "";
    else
    if (view->state == AL_REPLAY_FAILED) {
        //  The receipt says which step failed and why.
        view->detail = s_keepf (self, "the receipt's outcome is %s", outcome);
        for (size_t i = 0; i < receipt->n_steps; i++) {
            const Airlock__StepRecord *record = receipt->steps [i];
            if (record && record->outcome == AIRLOCK__OUTCOME__OUTCOME_FAILED) {
                const char *step = al_step_name (record->step);
                view->detail = s_keepf (self, "%s failed%s%s", step? step: "a step", *record->detail? ": ": "",
                                        record->detail);
                break;
            }
        }
    }
    else
        view->detail = "";
    al_replay_entry_t *entry = s_entry (self, deployment, AL_REPLAY_RECEIPT, event);
    if (entry) {
        entry->outcome = view->receipt_outcome;
        entry->text = s_keepf (self, "receipt: %s%s%s%s%s, receipt sha256 %s", outcome,
                               *receipt->rollback_rule? ", rule ": "", receipt->rollback_rule,
                               *receipt->previous_version? ", previous version ": "", receipt->previous_version,
                               receipt->receipt_sha256);
    }
}

static void
s_qa (al_replay_t *self, s_deployment_t *deployment, const al_store_event_t *event, const Airlock__Envelope *envelope)
{
    al_replay_entry_t *entry = s_entry (self, deployment, AL_REPLAY_QA, event);
    if (!entry)
        return;
    if (envelope->body_case == AIRLOCK__ENVELOPE__BODY_QA_REQUEST)
        entry->text = s_keepf (self, "QA requested by %s", event->sender);
    else {
        const Airlock__QaReport *report = envelope->qa_report;
        unsigned passed = 0, failed = 0;
        for (size_t i = 0; i < report->n_suites; i++)
            if (report->suites [i]) {
                passed += report->suites [i]->passed;
                failed += report->suites [i]->failed;
            }
        entry->text = s_keepf (self, "QA report by %s: %s, %u passed, %u failed, report sha256 %.12s",
                               event->sender, report->approved? "approved": "NOT approved", passed, failed,
                               report->report_sha256);
    }
}

static void
s_row (al_replay_t *self, const al_store_event_t *event)
{
    s_type_t type = s_type (event->type);
    if (type == S_OTHER)
        return;
    Airlock__Envelope *envelope = event->envelope_size
                                ? airlock__envelope__unpack (NULL, event->envelope_size, event->envelope): NULL;
    const Airlock__Envelope *body = s_body_is (envelope, event->type)? envelope: NULL;
    Airlock__ApprovalStatement *statement = NULL;
    const char *id = event->deployment_id;
    if (type == S_SIGNED_APPROVAL && body && body->signed_approval
    &&  al_statement_unpack (body->signed_approval->statement.data, body->signed_approval->statement.len,
                             &statement, NULL, 0) == AL_SIG_OK)
        id = statement->request_id;     // what the human signed names the request
    //  An accepted row whose envelope does not decode is damage for verify to report,
    //  not an event to replay; progress inside a step is not part of the record (only
    //  refusals and the journal are).
    bool skip = !*id
             || (event->decision == AL_STORE_ACCEPTED && type != S_APPROVAL_CLOSED && !body)
             || (type == S_DEPLOY_PROGRESS && event->decision == AL_STORE_ACCEPTED
                 && (!body || !body->deploy_progress
                     || (!body->deploy_progress->journal
                         && strncmp (body->deploy_progress->detail, "refused:", 8) != 0)));
    s_deployment_t *deployment = skip? NULL: s_deployment (self, id, event->sequence);
    if (!deployment)
        goto cleanup;
    if (*event->environment && !*deployment->view.environment)
        deployment->view.environment = s_keep (self, event->environment);
    if (event->decision != AL_STORE_ACCEPTED) {
        s_denied (self, deployment, type, event, body);
        goto cleanup;
    }
    switch (type) {
        case S_DEPLOY_REQUEST:
            if (body && body->deploy_request)
                s_deploy_request (self, deployment, event, body->deploy_request);
            break;
        case S_APPROVAL_REQUEST:
            if (body && body->approval_request)
                s_approval_request (self, deployment, event, body);
            break;
        case S_SIGNED_APPROVAL:
            if (statement)
                s_signed_approval (self, deployment, event, body->signed_approval, statement);
            else {
                al_replay_entry_t *entry = s_entry (self, deployment, AL_REPLAY_APPROVAL, event);
                if (entry)
                    entry->text = s_keepf (self, "accepted SignedApproval from %s whose statement does not decode "
                                           "(audit verify reports it)", event->sender);
            }
            break;
        case S_APPROVAL_CLOSED: {
            al_replay_entry_t *entry = s_entry (self, deployment, AL_REPLAY_CLOSED, event);
            if (entry)
                entry->text = s_keep (self, event->reason);
            if (deployment->view.state != AL_REPLAY_RUNNING && !s_terminal (deployment->view.state)) {
                deployment->view.state = AL_REPLAY_REFUSED;
                deployment->view.detail = s_keep (self, event->reason);
            }
            break;
        }
        case S_EXECUTE_DEPLOY:
            if (body && body->execute_deploy)
                s_grant (self, deployment, event, body->execute_deploy);
            break;
        case S_DEPLOY_PROGRESS:
            s_progress (self, deployment, event, body->deploy_progress);
            break;
        case S_DEPLOY_RECEIPT:
            if (body && body->deploy_receipt)
                s_receipt (self, deployment, event, body->deploy_receipt);
            break;
        case S_ROLLBACK_TRIGGER:
            if (body && body->rollback_trigger) {
                al_replay_entry_t *entry = s_entry (self, deployment, AL_REPLAY_TRIGGER, event);
                if (entry)
                    entry->text = s_keepf (self, "rollback trigger from %s: rule %s%s%s", event->sender,
                                           body->rollback_trigger->rule, *body->rollback_trigger->detail? ": ": "",
                                           body->rollback_trigger->detail);
            }
            break;
        case S_QA_REQUEST:
        case S_QA_REPORT:
            if (body && (body->qa_request || body->qa_report))
                s_qa (self, deployment, event, body);
            break;
        case S_OTHER:
            break;
    }
cleanup:
    if (statement)
        airlock__approval_statement__free_unpacked (statement, NULL);
    if (envelope)
        airlock__envelope__free_unpacked (envelope, NULL);
}

//  ---- the class ---------------------------------------------------------------------------

al_replay_t *
al_replay_new (al_store_t *store, uint64_t as_of_ms, char *error, size_t error_size)
{
    assert (store);
    al_replay_t *self = calloc (1, sizeof *self);
    al_store_iter_t *iter = self? al_store_iter_new (store, 1): NULL;
    al_store_status_t status = self? AL_STORE_ERR_IO: AL_STORE_ERR_NOMEM;
    if (!iter)
        goto failed;
    al_store_event_t event;
    while ((status = al_store_iter_next (iter, &event)) == AL_STORE_OK) {
        //  The broker's clock may step back: every row is judged on its own time.
        if (as_of_ms && event.time_ms > as_of_ms)
            continue;
        self->rows++;
        s_row (self, &event);
        if (self->out_of_memory) {
            status = AL_STORE_ERR_NOMEM;
            break;
        }
    }
    if (status != AL_STORE_END)
        goto failed;
    al_store_iter_destroy (&iter);
    return self;
failed:
    snprintf (error, error_size, "replay: %s", status == AL_STORE_ERR_NOMEM? "out of memory": al_store_error (store));
    al_store_iter_destroy (&iter);
    al_replay_destroy (&self);
    return NULL;
}

void
al_replay_destroy (al_replay_t **self_p)
{
    assert (self_p);
    al_replay_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->count; i++) {
        free (self->deployments [i]->entries);
        free (self->deployments [i]->approvals);
        free (self->deployments [i]);
    }
    free (self->deployments);
    free (self->index);
    for (size_t i = 0; i < self->pool_count; i++)
        free (self->pool [i]);
    free (self->pool);
    free (self);
    *self_p = NULL;
}

uint64_t
al_replay_rows (const al_replay_t *self)
{
    assert (self);
    return self->rows;
}

size_t
al_replay_count (const al_replay_t *self)
{
    assert (self);
    return self->count;
}

const al_replay_deployment_t *
al_replay_at (const al_replay_t *self, size_t index)
{
    assert (self);
    return index < self->count? &self->deployments [index]->view: NULL;
}

const al_replay_deployment_t *
al_replay_find (const al_replay_t *self, const char *id)
{
    assert (self && id);
    s_deployment_t *deployment = s_lookup (self, id);
    return deployment? &deployment->view: NULL;
}

const char *
al_replay_state_name (al_replay_state_t state)
{
    switch (state) {
        case AL_REPLAY_UNKNOWN:           return "unknown";
        case AL_REPLAY_REQUESTED:         return "requested";
        case AL_REPLAY_AWAITING_APPROVAL: return "awaiting approval";
        case AL_REPLAY_APPROVED:          return "approved";
        case AL_REPLAY_RUNNING:           return "running";
        case AL_REPLAY_SUCCEEDED:         return "succeeded";
        case AL_REPLAY_ROLLED_BACK:       return "rolled_back";
        case AL_REPLAY_FAILED:            return "failed";
        case AL_REPLAY_REFUSED:           return "refused";
    }
    return "unknown";
}

void
al_replay_state_text (const al_replay_deployment_t *deployment, char *text, size_t size)
{
    assert (deployment && text);
    if (deployment->state == AL_REPLAY_RUNNING)
        snprintf (text, size, "running %s", deployment->step);
    else
        snprintf (text, size, "%s", al_replay_state_name (deployment->state));
}

const char *
al_replay_kind_name (al_replay_kind_t kind)
{
    static const char *names [] = {
        [AL_REPLAY_REQUEST] = "request", [AL_REPLAY_DENIAL] = "denial", [AL_REPLAY_REFUSAL] = "refusal",
        [AL_REPLAY_QA] = "qa", [AL_REPLAY_APPROVAL] = "approval", [AL_REPLAY_CLOSED] = "closed",
        [AL_REPLAY_GRANT] = "grant", [AL_REPLAY_JOURNAL] = "journal", [AL_REPLAY_TRIGGER] = "trigger",
        [AL_REPLAY_RECEIPT] = "receipt",
    };
    return (size_t) kind < sizeof names / sizeof names [0] && names [kind]? names [kind]: "?";
}

//  ---- JSON and history ---------------------------------------------------------------------

static json_t *
s_time_json (uint64_t time_ms)
{
    if (!time_ms)
        return json_null ();
    char text [48];
    al_store_format_time (time_ms, text, sizeof text);
    return json_string (text);
}

//  Strings of a damaged log may not be UTF-8: jansson refuses them, so say so instead.
static json_t *
s_string_json (const char *text)
{
    json_t *value = json_string (text? text: "");
    return value? value: json_string ("(not UTF-8)");
}

json_t *
al_replay_deployment_json (const al_replay_deployment_t *deployment)
{
    assert (deployment);
    const al_replay_deployment_t *d = deployment;
    char state [160];
    al_replay_state_text (d, state, sizeof state);
    json_t *root = json_object ();
    json_t *approvals = json_array ();
    json_t *timeline = json_array ();
    if (!root || !approvals || !timeline) {
        json_decref (root);
        json_decref (approvals);
        json_decref (timeline);
        return NULL;
    }
    for (size_t i = 0; i < d->approval_count; i++) {
        const al_replay_approval_t *a = &d->approvals [i];
        json_t *item = json_object ();
        json_object_set_new (item, "sequence", json_integer ((json_int_t) a->sequence));
        json_object_set_new (item, "time", s_time_json (a->time_ms));
        json_object_set_new (item, "sender", s_string_json (a->sender));
        json_object_set_new (item, "key_id", s_string_json (a->key_id));
        json_object_set_new (item, "public_key", s_string_json (a->public_key));
        json_object_set_new (item, "signature_valid", json_boolean (a->signature_valid));
        json_object_set_new (item, "decision", json_string (a->decision));
        json_object_set_new (item, "approval_id", s_string_json (a->approval_id));
        json_object_set_new (item, "break_glass", json_boolean (a->break_glass));
        json_object_set_new (item, "in_grant", json_boolean (a->in_grant));
        if (*a->reason)
            json_object_set_new (item, "reason", s_string_json (a->reason));
        json_array_append_new (approvals, item);
    }
    for (size_t i = 0; i < d->entry_count; i++) {
        const al_replay_entry_t *e = &d->entries [i];
        json_t *item = json_object ();
        json_object_set_new (item, "sequence", json_integer ((json_int_t) e->sequence));
        json_object_set_new (item, "time", s_time_json (e->time_ms));
        json_object_set_new (item, "kind", json_string (al_replay_kind_name (e->kind)));
        json_object_set_new (item, "type", s_string_json (e->type));
        json_object_set_new (item, "sender", s_string_json (e->sender));
        json_object_set_new (item, "role", s_string_json (e->role));
        if (*e->step)
            json_object_set_new (item, "step", s_string_json (e->step));
        if (*e->outcome)
            json_object_set_new (item, "outcome", s_string_json (e->outcome));
        json_object_set_new (item, "text", s_string_json (e->text));
        json_array_append_new (timeline, item);
    }
    json_object_set_new (root, "deployment_id", s_string_json (d->id));
    json_object_set_new (root, "environment", s_string_json (d->environment));
    json_object_set_new (root, "service", s_string_json (d->service));
    json_object_set_new (root, "version", s_string_json (d->version));
    json_object_set_new (root, "deployment_type", s_string_json (d->deployment_type));
    json_object_set_new (root, "artifact_uri", s_string_json (d->artifact_uri));
    json_object_set_new (root, "artifact_sha256", s_string_json (d->artifact_sha256));
    json_object_set_new (root, "state", json_string (al_replay_state_name (d->state)));
    json_object_set_new (root, "step", *d->step? s_string_json (d->step): json_null ());
    json_object_set_new (root, "state_text", s_string_json (state));
    json_object_set_new (root, "detail", s_string_json (d->detail));
    json_object_set_new (root, "request", d->requested_ms || *d->requested_by
        ? json_pack ("{s:o, s:o, s:I}", "by", s_string_json (d->requested_by), "time", s_time_json (d->requested_ms),
                     "sequence", (json_int_t) d->request_sequence)
        : json_null ());
    json_object_set_new (root, "approvals", approvals);
    json_object_set_new (root, "grant", d->grant_sequence
        ? json_pack ("{s:I, s:o}", "sequence", (json_int_t) d->grant_sequence, "time", s_time_json (d->grant_ms))
        : json_null ());
    json_object_set_new (root, "receipt", d->receipt_sequence
        ? json_pack ("{s:I, s:o, s:o, s:o, s:o, s:o}", "sequence", (json_int_t) d->receipt_sequence,
                     "outcome", s_string_json (d->receipt_outcome), "rollback_rule", s_string_json (d->rollback_rule),
                     "receipt_sha256", s_string_json (d->receipt_sha256),
                     "previous_version", s_string_json (d->previous_version),
                     "time", s_time_json (d->finished_ms))
        : json_null ());
    json_object_set_new (root, "started", s_time_json (d->started_ms));
    json_object_set_new (root, "finished", s_time_json (d->finished_ms));
    json_object_set_new (root, "duration_ms", d->started_ms && d->finished_ms >= d->started_ms
        ? json_integer ((json_int_t) (d->finished_ms - d->started_ms)): json_null ());
    json_object_set_new (root, "timeline", timeline);
    return root;
}

void
al_replay_history_row (const al_replay_deployment_t *deployment, al_replay_history_t *row)
{
    assert (deployment && row);
    const al_replay_deployment_t *d = deployment;
    memset (row, 0, sizeof *row);
    //  When it ran; else when it was asked for; else (a refused attempt) its first row.
    uint64_t when = d->started_ms? d->started_ms: d->requested_ms? d->requested_ms: d->grant_ms;
    if (!when && d->entry_count)
        when = d->entries [0].time_ms;
    if (when) {
        char text [48];
        al_store_format_time (when, text, sizeof text);
        snprintf (row->date, sizeof row->date, "%.10s", text);
    }
    else
        snprintf (row->date, sizeof row->date, "-");
    snprintf (row->type, sizeof row->type, "%s", *d->deployment_type? d->deployment_type: "-");
    row->type [0] = (char) toupper ((unsigned char) row->type [0]);
    switch (d->state) {
        case AL_REPLAY_SUCCEEDED:         row->status = "Success"; break;
        case AL_REPLAY_ROLLED_BACK:       row->status = "Rolled back"; break;
        case AL_REPLAY_FAILED:            row->status = "Failed"; break;
        case AL_REPLAY_REFUSED:           row->status = "Refused"; break;
        case AL_REPLAY_AWAITING_APPROVAL: row->status = "Awaiting approval"; break;
        case AL_REPLAY_APPROVED:          row->status = "Approved"; break;
        case AL_REPLAY_RUNNING:           row->status = "In progress"; break;
        case AL_REPLAY_REQUESTED:         row->status = "Requested"; break;
        case AL_REPLAY_UNKNOWN:           row->status = "Unknown"; break;
    }
    row->rollback = d->state == AL_REPLAY_ROLLED_BACK? "Yes": "N/A";
    if (d->started_ms && d->finished_ms >= d->started_ms && s_terminal (d->state))
        row->duration_ms = d->finished_ms - d->started_ms;
    if (d->state == AL_REPLAY_RUNNING)
        snprintf (row->notes, sizeof row->notes, "running %s", d->step);
    else
    if (*d->detail)
        snprintf (row->notes, sizeof row->notes, "%s", d->detail);
    else
    if (d->state == AL_REPLAY_SUCCEEDED && *d->receipt_sha256)
        snprintf (row->notes, sizeof row->notes, "receipt sha256 %.12s", d->receipt_sha256);
    if (d->state == AL_REPLAY_ROLLED_BACK && *d->previous_version) {
        size_t used = strlen (row->notes);
        snprintf (row->notes + used, sizeof row->notes - used, "%sback to %s", used? ", ": "", d->previous_version);
    }
}

//  ---- the live state -----------------------------------------------------------------------

static void
s_disagree (al_replay_live_t *report, al_replay_disagreement_fn *fn, void *arg, const char *subject,
            const char *format, ...) __attribute__ ((format (printf, 5, 6)));

static void
s_disagree (al_replay_live_t *report, al_replay_disagreement_fn *fn, void *arg, const char *subject,
            const char *format, ...)
{
    char what [1024];
    va_list args;
    va_start (args, format);
    vsnprintf (what, sizeof what, format, args);
    va_end (args);
    report->disagreements++;
    if (fn)
        fn (subject, what, arg);
}

//  deploy-manager's receipt (deploy/al_done.h writes it): the file is read here, not
//  through deploy's API, because store/ is below deploy/ (docs/design.md); its path
//  comes from base/al_paths, as deploy's does.
static void
s_compare_receipt (const al_replay_deployment_t *d, const char *state_dir, al_replay_disagreement_fn *fn,
                   void *arg, al_replay_live_t *report)
{
    report->receipts++;
    char dir [4096], path [4200], error [4400];
    if (al_paths_deploy_evidence (state_dir, d->id, dir, sizeof dir, error, sizeof error) != 0) {
        s_disagree (report, fn, arg, d->id, "not a deployment id deploy-manager keeps evidence for (%s)", error);
        return;
    }
    snprintf (path, sizeof path, "%s/deploy_receipt.json", dir);
    size_t size = 0;
    char *data = al_file_read (path, S_MAX_EVIDENCE, &size, error, sizeof error);
    if (!data) {
        s_disagree (report, fn, arg, d->id, "the log holds a receipt (row %llu) but deploy-manager's evidence "
                    "cannot be read: %s", (unsigned long long) d->receipt_sequence, error);
        return;
    }
    uint8_t digest [crypto_hash_sha256_BYTES];
    char hex [crypto_hash_sha256_BYTES * 2 + 1];
    crypto_hash_sha256 (digest, (const uint8_t *) data, size);
    sodium_bin2hex (hex, sizeof hex, digest, sizeof digest);
    if (strcmp (hex, d->receipt_sha256) != 0)
        s_disagree (report, fn, arg, d->id, "%s has SHA-256 %s but the log's receipt (row %llu) says %s",
                    path, hex, (unsigned long long) d->receipt_sequence, d->receipt_sha256);
    json_error_t json_error;
    json_t *root = json_loadb ((const char *) data, size, 0, &json_error);
    free (data);
    if (!root) {
        s_disagree (report, fn, arg, d->id, "%s:%d: not JSON: %s", path, json_error.line, json_error.text);
        return;
    }
    const char *outcome = json_string_value (json_object_get (root, "outcome"));
    const char *id = json_string_value (json_object_get (root, "deployment_id"));
    const char *replayed = al_replay_state_name (d->state);
    if (!outcome || strcmp (outcome, replayed) != 0)
        s_disagree (report, fn, arg, d->id, "deploy_receipt.json says outcome %s, the log says %s",
                    outcome? outcome: "(none)", replayed);
    if (!id || strcmp (id, d->id) != 0)
        s_disagree (report, fn, arg, d->id, "deploy_receipt.json is about deployment %s", id? id: "(none)");
    json_decref (root);
}

//  The orchestrator state a replayed deployment implies, or NULL when it implies none.
static const char *
s_release_state (const al_replay_deployment_t *deployment)
{
    if (!deployment)
        return NULL;
    switch (deployment->state) {
        case AL_REPLAY_SUCCEEDED:   return "DONE";
        case AL_REPLAY_ROLLED_BACK: return "ROLLED_BACK";
        case AL_REPLAY_FAILED:      return "FAILED";
        default:                    return NULL;
    }
}

static void
s_compare_release (const al_replay_t *self, const char *path, const char *file_id,
                   al_replay_disagreement_fn *fn, void *arg, al_replay_live_t *report)
{
    report->releases++;
    json_error_t error;
    json_t *release = json_load_file (path, 0, &error);
    if (!release) {
        s_disagree (report, fn, arg, file_id, "%s:%d: not JSON: %s", path, error.line, error.text);
        return;
    }
    const char *id = json_string_value (json_object_get (release, "release_id"));
    const char *state = json_string_value (json_object_get (release, "state"));
    id = id? id: file_id;
    state = state? state: "";
    char name [512];
    snprintf (name, sizeof name, "%.400s-prod", id);
    const al_replay_deployment_t *production = al_replay_find (self, name);
    snprintf (name, sizeof name, "%.400s-stg", id);
    const al_replay_deployment_t *staging = al_replay_find (self, name);
    const char *expected = s_release_state (production);
    if (expected) {
        if (strcmp (state, expected) != 0)
            s_disagree (report, fn, arg, id, "release file says %s, the log says production deployment %s-prod %s "
                        "(expected %s)", state, id, al_replay_state_name (production->state), expected);
    }
    else
    if (strcmp (state, "DONE") == 0 || strcmp (state, "ROLLED_BACK") == 0)
        s_disagree (report, fn, arg, id, "release file says %s, but the log holds no %s receipt for %s-prod%s%s",
                    state, strcmp (state, "DONE") == 0? "succeeded": "rolled_back", id,
                    production? ", which is ": "", production? al_replay_state_name (production->state): "");
    else
    if (staging && (staging->state == AL_REPLAY_FAILED || staging->state == AL_REPLAY_ROLLED_BACK)
    &&  strcmp (state, "FAILED") != 0)
        s_disagree (report, fn, arg, id, "release file says %s, but its staging deployment %s-stg %s",
                    state, id, al_replay_state_name (staging->state));
    json_decref (release);
}

static int
s_name_compare (const void *a, const void *b)
{
    return strcmp (*(char *const *) a, *(char *const *) b);
}

void
al_replay_compare_live (const al_replay_t *self, const char *state_dir,
                        al_replay_disagreement_fn *fn, void *arg, al_replay_live_t *report)
{
    assert (self && state_dir && report);
    memset (report, 0, sizeof *report);
    for (size_t i = 0; i < self->count; i++)
        if (self->deployments [i]->view.receipt_sequence)
            s_compare_receipt (&self->deployments [i]->view, state_dir, fn, arg, report);
    //  The orchestrator's release files (agents/al_orchestrator.c writes them): read
    //  here for the same reason, at the path base/al_paths names.
    char releases_dir [4096], error [4400];
    if (al_paths_get (state_dir, AL_PATH_ORCHESTRATOR_RELEASES_DIR, releases_dir, sizeof releases_dir,
                      error, sizeof error) != 0) {
        s_disagree (report, fn, arg, "orchestrator", "%s", error);
        return;
    }
    DIR *dir = opendir (releases_dir);
    if (!dir)
        return;
    //  In name order, so that the report reads the same every time.
    char **names = NULL;
    size_t count = 0, capacity = 0;
    struct dirent *item;
    while ((item = readdir (dir))) {
        size_t length = strlen (item->d_name);
        if (length <= 5 || item->d_name [0] == '.' || strcmp (item->d_name + length - 5, ".json") != 0)
            continue;
        if (count == capacity) {
            capacity = capacity? capacity * 2: 32;
            char **grown = realloc (names, capacity * sizeof *grown);
            if (!grown)
                break;
            names = grown;
        }
        if (!(names [count] = strdup (item->d_name)))
            break;
        count++;
    }
    closedir (dir);
    if (count)
        qsort (names, count, sizeof *names, s_name_compare);
    for (size_t i = 0; i < count; i++) {
        char path [4096 + 1024], id [1024];
        snprintf (path, sizeof path, "%s/%.1000s", releases_dir, names [i]);
        snprintf (id, sizeof id, "%.*s", (int) (strlen (names [i]) - 5), names [i]);
        s_compare_release (self, path, id, fn, arg, report);
        free (names [i]);
    }
    free (names);
}

//  ---- time ----------------------------------------------------------------------------------

static bool
s_digits (const char **text, int count, int *value)
{
    *value = 0;
    for (int i = 0; i < count; i++) {
        if (!isdigit ((unsigned char) (*text) [i]))
            return false;
        *value = *value * 10 + ((*text) [i] - '0');
    }
    *text += count;
    return true;
}

bool
al_replay_parse_time (const char *text, uint64_t *time_ms)
{
    assert (time_ms);
    if (!text || !*text)
        return false;
    size_t length = strlen (text);
    if (strspn (text, "0123456789") == length) {
        if (length > 15)                // beyond year 33658: not a time
            return false;
        *time_ms = strtoull (text, NULL, 10);
        return true;
    }
    int year, month, day, hour, minute, second;
    const char *p = text;
    if (!s_digits (&p, 4, &year) || *p++ != '-' || !s_digits (&p, 2, &month) || *p++ != '-'
    ||  !s_digits (&p, 2, &day) || (*p != 'T' && *p != 't' && *p != ' '))
        return false;
    p++;
    if (!s_digits (&p, 2, &hour) || *p++ != ':' || !s_digits (&p, 2, &minute) || *p++ != ':'
    ||  !s_digits (&p, 2, &second))
        return false;
    if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60)
        return false;
    int64_t millis = 0;
    if (*p == '.') {
        p++;
        int scale = 100, digits = 0;
        while (isdigit ((unsigned char) *p)) {
            millis += (*p - '0') * scale;
            scale /= 10;
            digits++;
            p++;
        }
        if (digits == 0)
            return false;
    }
    int64_t offset_s = 0;
    if (*p == 'Z' || *p == 'z')
        p++;
    else
    if (*p == '+' || *p == '-') {
        int sign = *p++ == '-'? -1: 1, offset_hour, offset_minute;
        if (!s_digits (&p, 2, &offset_hour) || *p++ != ':' || !s_digits (&p, 2, &offset_minute)
        ||  offset_hour > 23 || offset_minute > 59)
            return false;
        offset_s = sign * (offset_hour * 3600 + offset_minute * 60);
    }
    else
        return false;
    if (*p)
        return false;
    struct tm utc = { .tm_year = year - 1900, .tm_mon = month - 1, .tm_mday = day,
                      .tm_hour = hour, .tm_min = minute, .tm_sec = second };
    time_t seconds = timegm (&utc);
    //  timegm normalises 31 February into March: such a date is not one.
    if (utc.tm_mday != day && second < 60)
        return false;
    int64_t total = (int64_t) seconds - offset_s;
    if (total < 0)
        return false;
    *time_ms = (uint64_t) total * 1000 + (uint64_t) millis;
    return true;
}
