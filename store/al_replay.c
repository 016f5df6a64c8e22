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
#include "store/al_replay_int.h"

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

bool
replay_terminal (al_replay_state_t state)
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
        if (view->state != AL_REPLAY_RUNNING && !replay_terminal (view->state)) {
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
    if (replay_terminal (view->state))
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

void
replay_row (al_replay_t *self, const al_store_event_t *event)
{
    self->last_sequence = event->sequence;
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
            if (deployment->view.state != AL_REPLAY_RUNNING && !replay_terminal (deployment->view.state)) {
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
        replay_row (self, &event);
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
