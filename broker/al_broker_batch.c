/*  al_broker_batch.c: the group commit: drain, judge, audit in one transaction, commit,
    then answer and route.

    al_broker_batch drains up to batch_max messages without blocking, judges each one
    (identity from the ZAP User-Id through the policy, rate limit, permission table, the
    approval gate), appends all of them and the broker's own queued events in ONE
    transaction with their delivery-queue and journal rows, commits (one fsync), and only
    then answers the senders and routes. Nothing leaves the broker about a message before
    its row is committed; if the store fails, nothing is answered and the batch is rolled
    back (the approvals' in-memory state too). Before appending, inside the write lock,
    the head the store re-read must be the one our last commit left
    (al_broker_head_is_ours, al_broker_checkpoint.c).

    Threading: the reactor thread only.
*/
#include "broker/al_broker_int.h"
#include "base/al_crashpoint.h"
#include <assert.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  ---- the batch ----------------------------------------------------------------------

//  Copy text into a buffer of size bytes, cut to fit, always terminated: what
//  snprintf ("%s") does, without parsing a format for every message.
static void
s_copy (char *buffer, size_t size, const char *text)
{
    assert (size > 0);
    size_t length = strnlen (text, size - 1);
    memcpy (buffer, text, length);
    buffer [length] = '\0';
}

//  The item's envelope is unpacked into the item's own arena: no malloc per field on
//  the way in, no free per field on the way out (s_item_release drops the arena whole).
static void *
s_arena_alloc (void *data, size_t size)
{
    al_broker_item_t *item = (al_broker_item_t *) data;
    size_t at = (item->arena_used + 15) & ~(size_t) 15;
    if (at > sizeof item->arena || size > sizeof item->arena - at)
        return NULL;        // protobuf-c then fails the unpack; s_unpack retries with malloc
    item->arena_used = at + size;
    return item->arena + at;
}

static void
s_arena_free (void *data, void *pointer)
{
    (void) data;
    (void) pointer;         // freed with the arena
}

//  al_codec_unpack of the item's body, into its arena when the envelope fits there:
//  decoded by protobuf-c and checked by al_codec_validate as al_codec_unpack does. The
//  caller has already refused a body above max_message.
static al_codec_status_t
s_unpack (al_broker_t *self, al_broker_item_t *item, char *error, size_t error_size)
{
    const uint8_t *data = (const uint8_t *) zmq_msg_data (&item->body);
    size_t size = zmq_msg_size (&item->body);
    assert (size <= self->max_message);
    ProtobufCAllocator allocator = { .alloc = s_arena_alloc, .free = s_arena_free, .allocator_data = item };
    item->arena_used = 0;
    al_envelope_t *envelope = data? airlock__envelope__unpack (&allocator, size, data): NULL;
    if (envelope) {
        al_codec_status_t status = al_codec_validate (envelope, error, error_size);
        if (status == AL_CODEC_OK) {
            item->envelope = envelope;
            item->envelope_in_arena = true;
        }
        return status;
    }
    //  Too big for the arena, or not an envelope at all: al_codec_unpack decides, with
    //  its own words for what is wrong.
    return al_codec_unpack (data, size, self->max_message, &item->envelope, error, error_size);
}

//  Judge one received message: fills the item's decision. The identity comes from the
//  peer (ZAP User-Id → policy), never from the envelope.
static void
s_judge (al_broker_t *self, al_broker_item_t *item, al_broker_peer_t *peer, uint64_t now_mono)
{
    size_t size = zmq_msg_size (&item->body);
    item->decision = AL_STORE_DENIED;
    if (size > self->max_message) {
        item->type = "Oversized";
        item->code = AIRLOCK__DENY_CODE__DENY_TOO_LARGE;
        item->drop_peer = true;
        snprintf (item->reason, sizeof item->reason,
                  "message of %zu bytes is above max_message_bytes (%zu): peer dropped", size,
                  self->max_message);
        return;
    }
    char error [256] = "";
    al_codec_status_t status = s_unpack (self, item, error, sizeof error);
    if (status != AL_CODEC_OK) {
        item->type = "malformed";
        item->code = AIRLOCK__DENY_CODE__DENY_MALFORMED;
        snprintf (item->reason, sizeof item->reason, "%s: %s", al_codec_strerror (status), error);
        return;
    }
    item->type = al_msg_type_name (item->envelope->body_case);
    if (!peer->identity [0]) {
        item->code = AIRLOCK__DENY_CODE__DENY_UNKNOWN_IDENTITY;
        snprintf (item->reason, sizeof item->reason, "CURVE key %s is not in identities.yaml",
                  peer->user_id);
        return;
    }
    al_broker_bucket_t *bucket = (al_broker_bucket_t *) zhashx_lookup (self->buckets, peer->identity);
    if (!bucket) {
        bucket = (al_broker_bucket_t *) calloc (1, sizeof *bucket);
        assert (bucket);
        zhashx_insert (self->buckets, peer->identity, bucket);
    }
    if (!al_broker_bucket_take (bucket, (double) al_config_rate_per_second (self->config),
                        (double) al_config_rate_burst (self->config), now_mono)) {
        //  A transient refusal: the row keeps the message id in its reason but not in
        //  its message_id field, so the store does not answer a later retry of the same
        //  message with this denial.
        item->code = AIRLOCK__DENY_CODE__DENY_RATE_LIMITED;
        item->transient = true;
        snprintf (item->reason, sizeof item->reason,
                  "rate limit: %u messages per second (burst %u) for identity %s; message %s "
                  "not accepted, retry later", al_config_rate_per_second (self->config),
                  al_config_rate_burst (self->config), peer->identity, item->envelope->message_id);
        return;
    }
    char rule [256] = "";
    if (!al_policy_may_send (self->policy, peer->role, item->envelope->body_case,
                             item->envelope->environment, rule, sizeof rule)) {
        item->code = AIRLOCK__DENY_CODE__DENY_NOT_PERMITTED;
        const char *env = al_environment_name (item->envelope->environment);
        snprintf (item->reason, sizeof item->reason, "%s may not send %s in %s: %s", peer->role,
                  item->type, env? env: "bus", rule);
        return;
    }
    //  The approval gate: the policy lets humans send SignedApproval; what one is worth
    //  is decided here, against the request it names (one clock reading per decision).
    if (item->envelope->body_case == AIRLOCK__ENVELOPE__BODY_SIGNED_APPROVAL) {
        item->now_ms = al_broker_wall_ms ();
        item->verdict = (al_approval_desk_verdict_t *) calloc (1, sizeof *item->verdict);
        assert (item->verdict);
        al_approval_desk_check (self->approvals, self->policy, item->envelope->signed_approval, item->now_ms,
                            item->verdict);
        if (!item->verdict->valid) {
            item->code = AIRLOCK__DENY_CODE__DENY_APPROVAL_INVALID;
            snprintf (item->reason, sizeof item->reason, "approval refused: %s", item->verdict->reason);
            return;
        }
    }
    else
    if (item->envelope->body_case == AIRLOCK__ENVELOPE__BODY_APPROVAL_REQUEST
    &&  item->envelope->environment == AIRLOCK__ENVIRONMENT__ENV_PRODUCTION
    &&  al_approval_desk_known (self->approvals, item->envelope->approval_request->request_id)) {
        item->code = AIRLOCK__DENY_CODE__DENY_POLICY;
        snprintf (item->reason, sizeof item->reason, "production request %s was filed before",
                  item->envelope->approval_request->request_id);
        return;
    }
    item->decision = AL_STORE_ACCEPTED;
    s_copy (item->reason, sizeof item->reason, rule);
}

//  Append one row inside the open transaction; returns the store status.
static al_store_status_t
s_append (al_broker_t *self, const char *type, const char *sender, const char *role,
          const al_envelope_t *envelope, bool transient, al_store_decision_t decision,
          const char *reason, const uint8_t *bytes, size_t size, al_store_append_result_t *result)
{
    al_store_event_t event;
    memset (&event, 0, sizeof event);
    event.time_ms = al_broker_wall_ms ();
    event.sender = sender;
    event.role = role;
    event.type = type;
    event.decision = decision;
    event.reason = reason;
    event.envelope = bytes;
    event.envelope_size = size;
    if (envelope) {
        const char *env = al_environment_name (envelope->environment);
        event.message_id = transient? "": envelope->message_id;
        event.deployment_id = envelope->deployment_id;
        event.environment = env && envelope->environment != AIRLOCK__ENVIRONMENT__ENV_UNSPECIFIED? env: "";
    }
    return al_store_append (self->store, &event, result);
}

//  Append the broker's own queued events (inside the open transaction).
static al_store_status_t
s_append_events (al_broker_t *self)
{
    al_broker_event_t *event = (al_broker_event_t *) zlistx_first (self->events);
    while (event) {
        al_store_append_result_t result;
        al_store_status_t status = s_append (self, event->type, event->sender, event->role, NULL, false,
                                             AL_STORE_ACCEPTED, event->reason, NULL, 0, &result);
        if (status != AL_STORE_OK)
            return status;
        event = (al_broker_event_t *) zlistx_next (self->events);
    }
    return AL_STORE_OK;
}

//  A SignedApproval the gate accepted: consume its single-use approval id in this
//  transaction (it is tied to the row about to be appended), then count it. A used id is
//  a replay: the item becomes a denial. Returns the store status.
static al_store_status_t
s_count_approval (al_broker_t *self, al_broker_item_t *item)
{
    al_approval_desk_verdict_t *verdict = item->verdict;
    al_store_status_t status = al_store_approval_consume (self->store, verdict->approval.approval_id,
                                                          AL_APPROVAL_ID_SIZE, al_store_row_count (self->store) + 1);
    if (status != AL_STORE_OK && status != AL_STORE_ALREADY_USED)
        return status;
    item->decision = AL_STORE_DENIED;
    item->code = AIRLOCK__DENY_CODE__DENY_APPROVAL_INVALID;
    if (status == AL_STORE_ALREADY_USED) {
        char id [AL_APPROVAL_ID_SIZE * 2 + 1];
        al_broker_hex (verdict->approval.approval_id, AL_APPROVAL_ID_SIZE, id);
        snprintf (item->reason, sizeof item->reason, "approval refused: approval id %s of %s was used "
                  "before (a replay)", id, verdict->approval.approver);
        return AL_STORE_OK;
    }
    if (!al_approval_desk_add (self->approvals, self->policy, item->envelope->signed_approval, item->now_ms, verdict)) {
        snprintf (item->reason, sizeof item->reason, "approval refused: %s", verdict->reason);
        return AL_STORE_OK;
    }
    item->decision = AL_STORE_ACCEPTED;
    snprintf (item->detail, sizeof item->detail, "%s", verdict->explanation);
    snprintf (item->reason, sizeof item->reason, "%s by %s (%s) for request %s: %s",
              verdict->approval.decision == AIRLOCK__DECISION__DECISION_DENY? "denial": "approval",
              verdict->approval.approver, verdict->approval.key_id, verdict->request_id, verdict->explanation);
    return AL_STORE_OK;
}

//  The approval of item completed its request's quorum: append the broker's ExecuteDeploy
//  (the ProductionGrant with every signed approval) in the same transaction, queued for
//  deploy-manager; or, if a required approver denied, the row that closes the request.
static al_store_status_t
s_conclude (al_broker_t *self, al_broker_item_t *item)
{
    al_approval_desk_verdict_t *verdict = item->verdict;
    al_store_append_result_t result;
    al_store_status_t status;
    char reason [1024];
    if (verdict->outcome == AL_APPROVAL_GATE_DENIED) {
        snprintf (reason, sizeof reason, "request %s closed: %s", verdict->request_id, verdict->explanation);
        //  The row carries a Notification for the orchestrator (its release ends there,
        //  FAILED with the reason), queued in the same transaction.
        char message_id [AL_CODEC_MAX_ID_LEN + 1];
        snprintf (message_id, sizeof message_id, "closed-%.56s", verdict->request_id);
        Airlock__Notification__FieldsEntry field = AIRLOCK__NOTIFICATION__FIELDS_ENTRY__INIT;
        field.key = (char *) "request_id";
        field.value = verdict->request_id;
        Airlock__Notification__FieldsEntry *fields [1] = { &field };
        Airlock__Notification note = AIRLOCK__NOTIFICATION__INIT;
        note.template_ = (char *) AL_BROKER_APPROVAL_CLOSED_TEMPLATE;
        char subject [160];
        snprintf (subject, sizeof subject, "production request %.64s closed", verdict->request_id);
        note.subject = subject;
        note.text = reason;
        note.n_fields = 1;
        note.fields = fields;
        al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
        envelope.message_id = message_id;
        envelope.deployment_id = verdict->request_id;
        envelope.environment = AIRLOCK__ENVIRONMENT__ENV_PRODUCTION;
        envelope.timestamp_ms = item->now_ms;
        envelope.body_case = AIRLOCK__ENVELOPE__BODY_NOTIFICATION;
        envelope.notification = &note;
        size_t size = airlock__envelope__get_packed_size (&envelope);
        uint8_t *bytes = malloc (size? size: 1);
        if (!bytes)
            return AL_STORE_ERR_NOMEM;
        airlock__envelope__pack (&envelope, bytes);
        status = s_append (self, "ApprovalClosed", AL_BROKER_IDENTITY, AL_BROKER_IDENTITY, &envelope, false,
                           AL_STORE_ACCEPTED, reason, bytes, size, &result);
        free (bytes);
        if (status == AL_STORE_OK)
            status = al_store_delivery_add (self->store, "orchestrator", result.sequence);
        if (status == AL_STORE_OK) {
            item->closed_sequence = result.sequence;
            al_approval_desk_close (self->approvals, verdict->request_id);
        }
        return status;
    }
    assert (verdict->outcome == AL_APPROVAL_GATE_GRANTED);
    size_t size = 0;
    uint8_t *bytes = al_approval_desk_execute_deploy (self->approvals, verdict->request_id, item->now_ms,
                                                  item->result.sequence, &size);
    if (!bytes)
        return AL_STORE_ERR_NOMEM;     // the batch fails whole: nothing is granted
    //  The row's columns are known here: no need to decode what was just packed.
    char message_id [AL_CODEC_MAX_ID_LEN + 1];
    snprintf (message_id, sizeof message_id, AL_APPROVAL_DESK_GRANT_ID_FORMAT, verdict->request_id);
    al_envelope_t meta = AIRLOCK__ENVELOPE__INIT;
    meta.message_id = message_id;
    meta.deployment_id = verdict->request_id;
    meta.environment = AIRLOCK__ENVIRONMENT__ENV_PRODUCTION;
    snprintf (reason, sizeof reason, "production grant for request %s: %s", verdict->request_id,
              verdict->explanation);
    status = s_append (self, "ExecuteDeploy", AL_BROKER_IDENTITY, AL_BROKER_IDENTITY, &meta, false,
                       AL_STORE_ACCEPTED, reason, bytes, size, &result);
    free (bytes);
    if (status == AL_STORE_OK)
        status = al_store_delivery_add (self->store, "deploy-manager", result.sequence);
    if (status == AL_STORE_OK) {
        item->grant_sequence = result.sequence;
        al_approval_desk_close (self->approvals, verdict->request_id);
    }
    return status;
}

static void
s_item_release (al_broker_item_t *item)
{
    if (item->envelope_in_arena)
        item->envelope = NULL;          // its memory is the item's arena
    else
        al_codec_free (&item->envelope);
    item->envelope_in_arena = false;
    zmq_msg_close (&item->body);
    free (item->verdict);
    item->verdict = NULL;
}

//  After commit: answer, route, publish.
static void
s_item_finish (al_broker_t *self, al_broker_item_t *item)
{
    al_broker_peer_t *peer = (al_broker_peer_t *) zhashx_lookup (self->peers, item->peer_key);
    if (!peer || strcmp (peer->user_id, item->user_id) != 0)
        return;                     // that connection is gone

    const char *message_id = item->envelope? item->envelope->message_id: "";
    if (item->result.decision == AL_STORE_DENIED) {
        //  A retransmission of a denied message: only permanent denials are found again
        //  (malformed, oversized and rate-limited rows carry no message id).
        Airlock__DenyCode code = item->code;
        if (!item->fresh)
            code = strncmp (item->result.reason, "CURVE key ", 10) == 0
                 ? AIRLOCK__DENY_CODE__DENY_UNKNOWN_IDENTITY: AIRLOCK__DENY_CODE__DENY_NOT_PERMITTED;
        al_broker_reply_denied (self, peer, message_id, code, item->fresh? item->reason: item->result.reason,
                        item->result.sequence);
        //  Closing since its frame was read; it is cut once this answer has left.
        if (item->drop_peer && peer->closing && peer->answered_mono == 0)
            peer->answered_mono = al_broker_mono_ms ();
        return;
    }
    al_envelope_t *envelope = item->envelope;
    assert (envelope);
    switch (envelope->body_case) {
        case AIRLOCK__ENVELOPE__BODY_DELIVERY_ACK:
            for (size_t k = 0; k < al_delivery_ack_count (envelope->delivery_ack); k++)
                zhashx_delete (self->inflight, AL_BROKER_KEY (al_delivery_ack_id (envelope->delivery_ack, k)));
            return;
        case AIRLOCK__ENVELOPE__BODY_STATUS_QUERY:
            al_broker_reply_status (self, peer, envelope);
            return;
        case AIRLOCK__ENVELOPE__BODY_REGISTER:
            al_broker_reply_ack (self, peer, message_id, &item->result, !item->fresh, NULL);
            if (envelope->register_->heartbeat_interval_ms)
                peer->dead_after_ms = (uint64_t) AL_BROKER_MISSED_HEARTBEATS * envelope->register_->heartbeat_interval_ms;
            if (envelope->register_->subscribe_deliveries && peer->role [0]) {
                peer->takes_deliveries = true;
                al_broker_sweep_role (self, peer->role);
            }
            return;
        default:
            break;
    }
    al_broker_reply_ack (self, peer, message_id, &item->result, !item->fresh, item->detail);
    //  The gate opened: deploy-manager gets the ExecuteDeploy row (it stays queued until
    //  an instance acknowledges it).
    if (item->grant_sequence)
        al_broker_deliver_stored (self, "deploy-manager", item->grant_sequence);
    //  A required approver denied: the orchestrator learns that its request is closed.
    if (item->closed_sequence)
        al_broker_deliver_stored (self, "orchestrator", item->closed_sequence);
    const char *role = al_broker_route_for (item->type);
    if (!item->fresh || !role)
        return;
    size_t size = al_broker_pack_stamped (self, envelope, item->sender, item->role, item->result.sequence);
    al_broker_publish (self, envelope, item->type, size);
    al_broker_peer_t *holder = al_broker_pick_instance (self, role);
    if (holder && al_broker_send_to (self, holder, self->pack_buffer, size) == 0)
        zhashx_update (self->inflight, AL_BROKER_KEY (item->result.sequence), strdup (holder->key));
}

//  Drain up to batch_max messages, audit them in one transaction, then answer and route.
//  Returns 0, or -1 if the store failed (nothing was answered).
int
al_broker_batch (al_broker_t *self)
{
    //  The checkpoint thread found the log changed: nothing more is answered.
    if (atomic_load (&self->tampered))
        return -1;
    void *router = zsock_resolve (self->router);
    size_t count = self->deferred;      // DeliveryAcks held back by the last call
    uint64_t now_mono = al_broker_mono_ms ();
    double batch_started = al_broker_mono_seconds ();
    while (count < self->max_items) {
        zmq_msg_t routing_id;
        zmq_msg_init (&routing_id);
        if (zmq_msg_recv (&routing_id, router, ZMQ_DONTWAIT) == -1) {
            zmq_msg_close (&routing_id);
            break;
        }
        al_broker_item_t *item = &self->items [count];
        memset (item, 0, offsetof (al_broker_item_t, arena));     // the arena is overwritten as used
        zmq_msg_init (&item->body);
        bool extra = false;
        if (zmq_msg_more (&routing_id)) {
            zmq_msg_recv (&item->body, router, 0);
            //  A client frame is exactly one envelope: more parts make it malformed.
            while (zmq_msg_more (&item->body)) {
                zmq_msg_t part;
                zmq_msg_init (&part);
                zmq_msg_recv (&part, router, 0);
                bool more = zmq_msg_more (&part);
                zmq_msg_close (&part);
                extra = true;
                if (!more)
                    break;
            }
        }
        al_broker_peer_t *peer = al_broker_closed_recently (self, &routing_id)? NULL
                       : al_broker_peer_touch (self, &routing_id, &item->body, item->peer_key);
        zmq_msg_close (&routing_id);
        if (!peer || peer->closing) {
            //  No ZAP User-Id: impossible with a ZAP handler and enforcement on. Closing
            //  or closed: it was answered TOO_LARGE and is dropped; what follows is not read.
            zmq_msg_close (&item->body);
            continue;
        }
        s_copy (item->user_id, sizeof item->user_id, peer->user_id);
        s_copy (item->sender, sizeof item->sender, peer->identity [0]? peer->identity: peer->user_id);
        s_copy (item->role, sizeof item->role, peer->role);
        if (extra) {
            item->type = "malformed";
            item->decision = AL_STORE_DENIED;
            item->code = AIRLOCK__DENY_CODE__DENY_MALFORMED;
            snprintf (item->reason, sizeof item->reason, "a message must be exactly one frame");
        }
        else
            s_judge (self, item, peer, now_mono);
        if (item->drop_peer)
            al_broker_peer_closing_begin (self, peer);
        //  Heartbeats only refresh liveness: never audited, never answered.
        if (item->decision == AL_STORE_ACCEPTED
        &&  item->envelope->body_case == AIRLOCK__ENVELOPE__BODY_HEARTBEAT) {
            s_item_release (item);
            continue;
        }
        count++;
    }
    if (count == 0 && zlistx_size (self->events) == 0)
        return 0;
    //  A batch of nothing but accepted DeliveryAcks answers nobody: its rows may wait
    //  (up to AL_BROKER_ACK_DEFER_MS) for the next commit instead of paying an fsync of
    //  their own. A lost DeliveryAck only means a redelivery, which the delivery id
    //  makes harmless; every row that answers somebody is still committed before the
    //  answer.
    bool acks_only = zlistx_size (self->events) == 0 && count < self->max_items && !self->stop_requested;
    for (size_t i = 0; i < count && acks_only; i++)
        acks_only = self->items [i].decision == AL_STORE_ACCEPTED && self->items [i].envelope
                 && self->items [i].envelope->body_case == AIRLOCK__ENVELOPE__BODY_DELIVERY_ACK;
    if (acks_only) {
        if (self->deferred == 0)
            self->deferred_since_mono = now_mono;
        if (now_mono - self->deferred_since_mono < AL_BROKER_ACK_DEFER_MS) {
            self->deferred = count;
            return 0;
        }
    }
    self->deferred = 0;

    al_store_status_t status = al_store_begin (self->store);
    if (status == AL_STORE_OK && al_broker_leader_superseded (self))
        status = AL_STORE_ERR_HEAD_MISMATCH;    // failover, not tampering: the leader tick said why
    if (status == AL_STORE_OK && !al_broker_head_is_ours (self))
        status = AL_STORE_ERR_HEAD_MISMATCH;
    if (status == AL_STORE_OK)
        status = s_append_events (self);
    for (size_t i = 0; i < count && status == AL_STORE_OK; i++) {
        al_broker_item_t *item = &self->items [i];
        bool oversized = item->drop_peer;
        bool counted = false;
        if (item->verdict && item->decision == AL_STORE_ACCEPTED) {
            status = s_count_approval (self, item);
            if (status != AL_STORE_OK)
                break;
            counted = item->decision == AL_STORE_ACCEPTED;
        }
        status = s_append (self, item->type, item->sender, item->role, item->envelope, item->transient,
                           item->decision, item->reason, oversized? NULL: (const uint8_t *) zmq_msg_data (&item->body),
                           oversized? 0: zmq_msg_size (&item->body), &item->result);
        if (status == AL_STORE_DUPLICATE) {
            //  A retransmission, answered with its original outcome. Should it have been
            //  counted now (its first try was refused), its id stays consumed: the
            //  approver signs again (fail closed).
            if (counted)
                al_approval_desk_withdraw (self->approvals, item->verdict->request_id,
                                       item->verdict->approval.approval_id);
            status = AL_STORE_OK;
            continue;
        }
        if (status != AL_STORE_OK)
            break;
        item->fresh = true;
        if (item->decision != AL_STORE_ACCEPTED)
            continue;
        if (item->envelope->body_case == AIRLOCK__ENVELOPE__BODY_APPROVAL_REQUEST
        &&  item->envelope->environment == AIRLOCK__ENVIRONMENT__ENV_PRODUCTION)
            al_approval_desk_file (self->approvals, item->envelope->approval_request, item->sender,
                               item->result.sequence, al_broker_wall_ms (), NULL, 0);
        if (counted && (item->verdict->outcome == AL_APPROVAL_GATE_GRANTED || item->verdict->outcome == AL_APPROVAL_GATE_DENIED)) {
            status = s_conclude (self, item);
            if (status != AL_STORE_OK)
                break;
        }
        //  deploy-manager's journal records, committed with their event: it runs a step
        //  only once its "started" record is acknowledged.
        if (item->envelope->body_case == AIRLOCK__ENVELOPE__BODY_DEPLOY_PROGRESS
        &&  item->envelope->deploy_progress->journal
        &&  item->envelope->deployment_id [0]) {
            const Airlock__DeployProgress *progress = item->envelope->deploy_progress;
            const char *step = al_step_name (progress->step);
            const char *outcome = al_outcome_name (progress->outcome);
            status = al_store_journal_add (self->store, item->envelope->deployment_id,
                                           step? step: "unspecified",
                                           progress->outcome == AIRLOCK__OUTCOME__OUTCOME_STARTED? "before": "after",
                                           outcome? outcome: "unspecified", progress->detail);
            if (status != AL_STORE_OK)
                break;
        }
        const char *role = al_broker_route_for (item->type);
        if (role)
            status = al_store_delivery_add (self->store, role, item->result.sequence);
        else
        if (item->envelope->body_case == AIRLOCK__ENVELOPE__BODY_DELIVERY_ACK) {
            //  One row (appended above, listing every id) for all the deliveries it
            //  acknowledges; an id not queued for this role is ignored.
            const Airlock__DeliveryAck *ack = item->envelope->delivery_ack;
            for (size_t k = 0; k < al_delivery_ack_count (ack) && status == AL_STORE_OK; k++) {
                status = al_store_delivery_ack (self->store, item->role, al_delivery_ack_id (ack, k));
                if (status == AL_STORE_NOT_FOUND)
                    status = AL_STORE_OK;
            }
        }
    }
    double commit_started = al_broker_mono_seconds ();
    if (status == AL_STORE_OK)
        status = al_store_commit (self->store);
    if (status != AL_STORE_OK) {
        if (status != AL_STORE_ERR_HEAD_MISMATCH)     // else al_broker_incident said why
            zsys_error ("broker: audit store: %s: %s", al_store_strerror (status), al_store_error (self->store));
        if (al_store_in_transaction (self->store))
            al_store_rollback (self->store);
        al_approval_desk_rollback (self->approvals);
        for (size_t i = 0; i < count; i++)
            s_item_release (&self->items [i]);
        return -1;
    }
    self->own_rows = al_store_row_count (self->store);
    al_store_head_hash (self->store, self->own_head);
    al_approval_desk_commit (self->approvals);
    zlistx_purge (self->events);
    al_crashpoint ("broker.after-commit");     // chaos: committed, nothing acknowledged yet
    double committed = al_broker_mono_seconds ();
    al_telemetry_observe (self->metric_commit_seconds, committed - commit_started);
    if (count) {
        al_telemetry_observe (self->metric_batch_seconds, committed - batch_started);
        al_telemetry_observe (self->metric_batch_size, (double) count);
    }
    for (size_t i = 0; i < count; i++) {
        if (self->items [i].fresh)
            al_broker_metrics_count (self->items [i].type, self->items [i].decision, self->items [i].code);
        s_item_finish (self, &self->items [i]);
        s_item_release (&self->items [i]);
    }
    al_broker_checkpoint (self, false);
    return 0;
}

void
al_broker_batch_discard (al_broker_t *self)
{
    for (size_t i = 0; i < self->deferred; i++)
        s_item_release (&self->items [i]);
    self->deferred = 0;
}
