/*  al_broker_metrics.c: the operator metrics the broker keeps (docs/operations.md,
    Monitoring): batch size and latency, fsync time, messages by type and decision,
    connections and delivery-queue depth per role, approvals pending, checkpoint age.

    Series are resolved once in al_broker_metrics_init and updated atomically, so the
    checkpoint thread and the HTTP server's thread may touch or read them.
*/
#include "broker/al_broker_int.h"
#include <string.h>

//  ---- operator metrics (docs/operations.md, Monitoring) --------------------------------

//  The roles whose connection and delivery queue are always reported (0 included).
static const char *s_metric_roles [] = { "orchestrator", "qa", "deploy-manager", "monitor", "notifier" };
#define S_METRIC_ROLE_COUNT (sizeof s_metric_roles / sizeof s_metric_roles [0])
//  Pending deliveries counted per role and tick, at most (the gauge then stays there).
#define S_METRIC_QUEUE_PAGES 64

void
al_broker_metrics_init (al_broker_t *self)
{
    al_telemetry_t *metrics = al_telemetry_process ();
    self->metric_batch_size = al_telemetry_series (metrics, AL_TELEMETRY_HISTOGRAM, "airlock_broker_commit_batch_size",
        "Messages audited per group-commit transaction", NULL, NULL, NULL, NULL);
    self->metric_batch_seconds = al_telemetry_series (metrics, AL_TELEMETRY_HISTOGRAM, "airlock_broker_commit_latency_seconds",
        "From draining a batch to its commit (what a sender waits for its Ack)", NULL, NULL, NULL, NULL);
    self->metric_commit_seconds = al_telemetry_series (metrics, AL_TELEMETRY_HISTOGRAM, "airlock_broker_fsync_seconds",
        "Duration of the audit store's commit, i.e. its fsync", NULL, NULL, NULL, NULL);
    self->metric_redeliveries = al_telemetry_series (metrics, AL_TELEMETRY_COUNTER, "airlock_broker_redeliveries_total",
        "Deliveries sent again because their holder went away unacknowledged", NULL, NULL, NULL, NULL);
    self->metric_approvals_pending = al_telemetry_series (metrics, AL_TELEMETRY_GAUGE, "airlock_broker_approvals_pending",
        "Production approval requests waiting for approvers", NULL, NULL, NULL, NULL);
    self->metric_checkpoint_age = al_telemetry_series (metrics, AL_TELEMETRY_AGE, "airlock_broker_checkpoint_age_seconds",
        "Seconds since the audit log was last wholly covered by a signed checkpoint (an idle log stays covered)",
        NULL, NULL, NULL, NULL);
    self->metric_checkpoint_seconds = al_telemetry_series (metrics, AL_TELEMETRY_HISTOGRAM,
        "airlock_broker_checkpoint_write_seconds", "Duration of signing, writing and fsyncing a checkpoint",
        NULL, NULL, NULL, NULL);
    al_telemetry_touch (self->metric_checkpoint_age);
    //  Both families exist from the start (HELP, TYPE and a zero series), so that an
    //  alert's rate() has a value to start from.
    al_telemetry_series (metrics, AL_TELEMETRY_COUNTER, "airlock_broker_messages_accepted_total",
        "Messages accepted (audited, acknowledged, routed), by type", "type", "ReleaseCandidate", NULL, NULL);
    al_telemetry_series (metrics, AL_TELEMETRY_COUNTER, "airlock_broker_messages_denied_total",
        "Messages denied (audited and answered Denied), by type and deny code",
        "type", "malformed", "reason", "DENY_MALFORMED");
}

//  The series of the last outcomes counted on this thread: the process registry keeps
//  its series for good, so a resolved one may be reused; finding it again by name and
//  labels (string compares down two lists) would cost more than the count itself.
#define S_COUNT_CACHE 16
typedef struct {
    char type [AL_CODEC_MAX_NAME_LEN + 1];
    al_store_decision_t decision;
    Airlock__DenyCode code;
    al_telemetry_series_t *series;
} s_count_cached_t;
static _Thread_local s_count_cached_t s_count_cache [S_COUNT_CACHE];
static _Thread_local size_t s_count_cache_next;

static al_telemetry_series_t *
s_count_series (const char *type, al_store_decision_t decision, Airlock__DenyCode code)
{
    al_telemetry_t *metrics = al_telemetry_process ();
    if (decision == AL_STORE_ACCEPTED)
        return al_telemetry_series (metrics, AL_TELEMETRY_COUNTER, "airlock_broker_messages_accepted_total",
                                    NULL, "type", type, NULL, NULL);
    const ProtobufCEnumValue *value = protobuf_c_enum_descriptor_get_value (&airlock__deny_code__descriptor, code);
    return al_telemetry_series (metrics, AL_TELEMETRY_COUNTER, "airlock_broker_messages_denied_total",
                                NULL, "type", type, "reason", value? value->name: "unknown");
}

//  One audited message (its row committed): accepted by type, denied by type and code.
void
al_broker_metrics_count (const char *type, al_store_decision_t decision, Airlock__DenyCode code)
{
    if (decision == AL_STORE_ACCEPTED)
        code = 0;           // accepted messages are counted by type only
    for (size_t i = 0; i < S_COUNT_CACHE; i++) {
        s_count_cached_t *cached = &s_count_cache [i];
        if (cached->series && cached->decision == decision && cached->code == code
        &&  cached->type [0] == type [0] && strcmp (cached->type, type) == 0) {
            al_telemetry_add (cached->series, 1);
            return;
        }
    }
    al_telemetry_series_t *series = s_count_series (type, decision, code);
    al_telemetry_add (series, 1);
    //  Types are names of at most AL_CODEC_MAX_NAME_LEN bytes; a longer one is never cached.
    if (series && strlen (type) <= AL_CODEC_MAX_NAME_LEN) {
        s_count_cached_t *cached = &s_count_cache [s_count_cache_next++ % S_COUNT_CACHE];
        strcpy (cached->type, type);
        cached->decision = decision;
        cached->code = code;
        cached->series = series;
    }
}

//  Once per tick: connected agents and delivery queue depth per role, approvals pending.
void
al_broker_metrics_tick (al_broker_t *self)
{
    al_telemetry_t *metrics = al_telemetry_process ();
    for (size_t i = 0; i < S_METRIC_ROLE_COUNT; i++) {
        const char *role = s_metric_roles [i];
        size_t connected = 0;
        for (al_broker_peer_t *peer = (al_broker_peer_t *) zhashx_first (self->peers); peer;
             peer = (al_broker_peer_t *) zhashx_next (self->peers))
            if (!peer->closing && peer->identity [0] && strcmp (peer->role, role) == 0)
                connected++;
        al_telemetry_set (al_telemetry_series (metrics, AL_TELEMETRY_GAUGE, "airlock_broker_connected_agents",
                       "Authenticated connections alive, by role", "role", role, NULL, NULL), (double) connected);
        size_t depth = 0;
        uint64_t after = 0, sequences [AL_BROKER_SWEEP_PAGE];
        for (size_t page = 0; page < S_METRIC_QUEUE_PAGES; page++) {
            size_t count = 0;
            if (al_store_delivery_pending (self->store, role, after, sequences, AL_BROKER_SWEEP_PAGE, &count)
                != AL_STORE_OK || count == 0)
                break;
            depth += count;
            after = sequences [count - 1];
            if (count < AL_BROKER_SWEEP_PAGE)
                break;
        }
        al_telemetry_set (al_telemetry_series (metrics, AL_TELEMETRY_GAUGE, "airlock_broker_delivery_queue_depth",
                       "Accepted messages not yet acknowledged by their role (counted up to 16384)",
                       "role", role, NULL, NULL), (double) depth);
    }
    al_telemetry_set (self->metric_approvals_pending, (double) al_approval_desk_pending (self->approvals, NULL, 0));
    //  Nothing committed since the last signed checkpoint: the log is covered now. A
    //  failed or stalled checkpoint leaves the age growing, which is what is alerted on.
    if (atomic_load (&self->checkpoint_written_rows) == self->own_rows)
        al_telemetry_touch (self->metric_checkpoint_age);
}
