/*  al_console_data.c: the web console's API answers and streamed events (see
    al_console_data.h). Read-only: it asks the broker (StatusQuery), opens the store
    read-only per request, and reads the release files, the policy and the logs, never
    another module's bytes itself.

    The log view: audit, history and approvals answer from one view of the audit log
    (agents/al_console_log: a replay of the whole log and a bounded window of its newest
    rows, advanced over the rows appended since the last request; older rows are read
    back from the store when a page reaches them). log_mutex holds one request at a time
    in the view.
*/
#include "agents/al_console_data.h"
#include "agents/al_audit_view.h"
#include "agents/al_console_log.h"
#include "agents/al_process_logs.h"
#include "agents/al_releases.h"
#include "agents/al_request_view.h"
#include "base/al_clock.h"
#include "base/al_id.h"
#include "deploy/al_rules.h"
#include "policies/al_policy.h"
#include "store/al_replay.h"
#include "store/al_store.h"

#include <assert.h>
#include <czmq.h>
#include <math.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define S_RELEASES_SHOWN 20
#define S_AUDIT_LIMIT_MAX 1000
#define S_STREAMS_MAX 64

typedef struct {
    char topic [300];
    al_rules_stream_t *rules;
} s_soak_stream_t;

struct _al_console_data_t {
    const al_config_t *config;
    al_agent_t *agent;
    int timeout_ms;
    pthread_mutex_t mutex;
    json_t *progress;               // deployment id -> the last DeployProgress seen
    al_policy_t *policy;            // for the soak judgement (the event thread only)
    s_soak_stream_t streams [S_STREAMS_MAX];
    size_t stream_count;
    pthread_mutex_t log_mutex;      // the log view below
    al_console_log_t *log;          // the replay and the newest rows (al_console_log)
};

al_console_data_t *
al_console_data_new (const al_config_t *config, al_agent_t *agent, int timeout_ms)
{
    assert (config && agent);
    al_console_data_t *self = (al_console_data_t *) calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->config = config;
    self->agent = agent;
    self->timeout_ms = timeout_ms;
    pthread_mutex_init (&self->mutex, NULL);
    pthread_mutex_init (&self->log_mutex, NULL);
    self->progress = json_object ();
    self->policy = al_policy_load (al_config_policy_dir (config), NULL);
    self->log = al_console_log_new (AL_CONSOLE_LOG_WINDOW_ROWS);
    if (!self->progress || !self->log)
        al_console_data_destroy (&self);
    return self;
}

void
al_console_data_destroy (al_console_data_t **self_p)
{
    assert (self_p);
    al_console_data_t *self = *self_p;
    if (!self)
        return;
    for (size_t index = 0; index < self->stream_count; index++)
        al_rules_stream_destroy (&self->streams [index].rules);
    al_policy_destroy (&self->policy);
    json_decref (self->progress);
    al_console_log_destroy (&self->log);
    pthread_mutex_destroy (&self->log_mutex);
    pthread_mutex_destroy (&self->mutex);
    free (self);
    *self_p = NULL;
}

bool
al_console_data_judges (const al_console_data_t *self)
{
    assert (self);
    return self->policy != NULL;
}

static const char *
s_text (json_t *object, const char *key)
{
    const char *value = json_string_value (json_object_get (object, key));
    return value? value: "";
}

static void
s_hex (const uint8_t *bytes, size_t size, char *out)
{
    static const char digits [] = "0123456789abcdef";
    for (size_t index = 0; index < size; index++) {
        out [2 * index] = digits [bytes [index] >> 4];
        out [2 * index + 1] = digits [bytes [index] & 15];
    }
    out [2 * size] = 0;
}

//  A finite number, or null (JSON has no NaN).
static json_t *
s_number (double value)
{
    return isfinite (value)? json_real (value): json_null ();
}

//  ---- agents --------------------------------------------------------------------------

static json_t *
s_api_agents (al_console_data_t *self, int *status, char *error, size_t error_size)
{
    al_agent_result_t result;
    al_envelope_t *reply = al_agent_status_query (self->agent, "agents", NULL, 0, self->timeout_ms, &result);
    if (!reply) {
        *status = 503;
        char brokers [AL_AGENT_ENDPOINTS_TEXT_SIZE];
        snprintf (error, error_size, "no answer from the broker at %s (%s)", al_agent_brokers (self->agent, brokers,
                  sizeof brokers), al_agent_status_name (result.status));
        return NULL;
    }
    uint64_t now = al_clock_wall_ms ();
    json_t *agents = json_array ();
    const Airlock__StatusReply *status_reply = reply->status_reply;
    for (size_t index = 0; index < status_reply->n_agents; index++) {
        const Airlock__AgentStatus *agent = status_reply->agents [index];
        json_t *item = json_pack ("{s:s, s:s, s:b, s:I}", "identity", agent->identity, "role", agent->role,
                                  "alive", agent->alive, "last_heartbeat_ms", (json_int_t) agent->last_heartbeat_ms);
        json_object_set_new (item, "age_seconds", agent->last_heartbeat_ms && agent->last_heartbeat_ms <= now
                             ? json_real ((double) (now - agent->last_heartbeat_ms) / 1000.0): json_null ());
        json_array_append_new (agents, item);
    }
    //  The processes `airlock up` supervises: the broker, then the five agents.
    json_t *processes = json_array ();
    for (size_t index = 0; index <= al_process_logs_agent_count (); index++) {
        const char *name = index == 0? "broker": al_process_logs_agent_at (index - 1);
        char *log = al_process_logs_path (self->config, name);
        char line [512] = "";
        bool has_line = log && al_process_logs_last_error (log, line, sizeof line);
        long restarts = log? al_process_logs_restarts (log, name): -1;
        bool connected = index == 0;
        for (size_t at = 0; index > 0 && at < status_reply->n_agents; at++)
            connected |= status_reply->agents [at]->alive && strcmp (status_reply->agents [at]->role, name) == 0;
        json_array_append_new (processes, json_pack ("{s:s, s:b, s:o, s:o, s:s}", "name", name, "connected", connected,
                                                     "restarts", restarts < 0? json_null (): json_integer (restarts),
                                                     "last_line", has_line? json_string (line): json_null (),
                                                     "log", log? log: ""));
        free (log);
    }
    al_codec_free (&reply);
    return json_pack ("{s:o, s:o, s:I}", "agents", agents, "processes", processes, "now_ms", (json_int_t) now);
}

//  ---- releases ------------------------------------------------------------------------

static json_t *
s_api_releases (al_console_data_t *self)
{
    json_t *releases = al_releases_list (self->config);
    json_t *shown = json_array ();
    size_t index;
    json_t *release;
    json_array_foreach (releases, index, release) {
        if (index >= S_RELEASES_SHOWN)
            break;
        const char *id = s_text (release, "release_id");
        char error [512] = "";
        json_t *status = al_releases_status (self->config, self->agent, id, self->timeout_ms, NULL, error,
                                            sizeof error);
        if (!status)
            status = json_pack ("{s:O, s:b, s:{}, s:s}", "release", release, "awaiting_approval", 0, "events",
                                "error", error);
        char deployment [AL_ID_SIZE];
        json_t *live = json_object ();
        pthread_mutex_lock (&self->mutex);
        //  An id that is no valid release id has no deployments: "" is in no progress.
        al_id_deployment (id, AL_ID_PART_STAGING, deployment, sizeof deployment);
        json_t *progress = *deployment? json_object_get (self->progress, deployment): NULL;
        if (progress)
            json_object_set_new (live, "staging", json_deep_copy (progress));
        al_id_deployment (id, AL_ID_PART_PRODUCTION, deployment, sizeof deployment);
        progress = *deployment? json_object_get (self->progress, deployment): NULL;
        if (progress)
            json_object_set_new (live, "production", json_deep_copy (progress));
        pthread_mutex_unlock (&self->mutex);
        json_object_set_new (status, "progress", live);
        json_array_append_new (shown, status);
    }
    json_t *root = json_pack ("{s:o, s:I}", "releases", shown, "total", (json_int_t) json_array_size (releases));
    json_decref (releases);
    return root;
}

//  ---- approvals -----------------------------------------------------------------------

//  The signatures the audit log holds for deployment ID so far.
static json_t *
s_signatures_so_far (const al_replay_t *replay, const char *id)
{
    json_t *list = json_array ();
    const al_replay_deployment_t *deployment = replay? al_replay_find (replay, id): NULL;
    for (size_t index = 0; deployment && index < deployment->approval_count; index++) {
        const al_replay_approval_t *approval = &deployment->approvals [index];
        json_array_append_new (list, json_pack ("{s:s, s:s, s:s, s:b}", "sender", approval->sender,
                                                "key_id", approval->key_id, "decision", approval->decision,
                                                "signature_verifies", *approval->public_key != 0));
    }
    return list;
}

static al_store_t *
s_store_open (al_console_data_t *self, char *error, size_t error_size)
{
    al_store_options_t options = { .read_only = true };
    return al_store_open (NULL, al_config_database (self->config), &options, error, error_size);
}

//  ---- the log view ----------------------------------------------------------------------

bool
al_console_data_set_window (al_console_data_t *self, size_t rows)
{
    assert (self);
    al_console_log_t *log = al_console_log_new (rows);
    if (!log)
        return false;
    pthread_mutex_lock (&self->log_mutex);
    al_console_log_destroy (&self->log);
    self->log = log;
    pthread_mutex_unlock (&self->log_mutex);
    return true;
}

void
al_console_data_log_stats (al_console_data_t *self, al_console_data_log_stats_t *stats)
{
    assert (self && stats);
    pthread_mutex_lock (&self->log_mutex);
    al_console_log_stats (self->log, stats);
    pthread_mutex_unlock (&self->log_mutex);
}

static json_t *
s_api_approvals (al_console_data_t *self, int *status, char *error, size_t error_size)
{
    al_agent_result_t result;
    al_envelope_t *reply = al_agent_status_query (self->agent, "approvals", NULL, 0, self->timeout_ms, &result);
    if (!reply) {
        *status = 503;
        snprintf (error, error_size, "no answer from the broker (%s)", al_agent_status_name (result.status));
        return NULL;
    }
    char store_error [512] = "";
    al_store_t *store = reply->status_reply->n_approvals? s_store_open (self, store_error, sizeof store_error): NULL;
    pthread_mutex_lock (&self->log_mutex);
    const al_replay_t *replay = store && al_console_log_advance (self->log, store, store_error, sizeof store_error)
                              ? al_console_log_replay (self->log): NULL;
    json_t *list = json_array ();
    for (size_t index = 0; index < reply->status_reply->n_approvals; index++) {
        const Airlock__ApprovalRequest *request = reply->status_reply->approvals [index];
        json_t *item = al_request_view_json (request);
        if (!item)
            continue;
        al_request_view_context_text_t text;
        al_request_view_context_t context;
        al_request_view_context_load (request, self->config, &text, &context);
        json_object_set_new (item, "context", json_pack ("{s:s?, s:s?, s:s?, s:s?, s:s?}", "window", context.window,
                                                         "freeze", context.freeze, "quorum", context.quorum,
                                                         "soak", context.soak, "scan", context.scan));
        json_object_set_new (item, "signatures_so_far", s_signatures_so_far (replay, request->request_id));
        json_array_append_new (list, item);
    }
    pthread_mutex_unlock (&self->log_mutex);
    al_store_destroy (&store);
    al_codec_free (&reply);
    return json_pack ("{s:o, s:s}", "approvals", list, "store_error", store_error);
}

//  ---- audit ---------------------------------------------------------------------------

static json_t *
s_api_audit (al_console_data_t *self, al_console_data_arg_fn *arg, const void *request, int *status, char *error, size_t error_size)
{
    const char *denied = arg (request, "denied");
    const char *limit_text = arg (request, "limit");
    const char *before_text = arg (request, "before");
    al_console_log_filter_t filter = {
        .type = arg (request, "type"), .sender = arg (request, "sender"), .release = arg (request, "release"),
        .search = arg (request, "q"),
        .denied_only = denied && (strcmp (denied, "1") == 0 || strcmp (denied, "true") == 0)
    };
    long limit = limit_text? strtol (limit_text, NULL, 10): 200;
    if (limit < 1 || limit > S_AUDIT_LIMIT_MAX) {
        *status = 400;
        snprintf (error, error_size, "limit: 1..%d", S_AUDIT_LIMIT_MAX);
        return NULL;
    }
    filter.limit = (size_t) limit;
    if (before_text) {
        char *end = NULL;
        unsigned long long before = strtoull (before_text, &end, 10);
        if (!*before_text || *before_text == '-' || *end || before == 0) {
            *status = 400;
            snprintf (error, error_size, "before: a row's sequence number (the page holds older rows)");
            return NULL;
        }
        filter.before = before;
    }
    al_store_t *store = s_store_open (self, error, error_size);
    if (!store) {
        *status = 503;
        return NULL;
    }
    //  The store stays open: a page may reach rows older than the view's window.
    pthread_mutex_lock (&self->log_mutex);
    json_t *root = al_console_log_advance (self->log, store, error, error_size)
                 ? al_console_log_audit (self->log, store, &filter, error, error_size): NULL;
    pthread_mutex_unlock (&self->log_mutex);
    al_store_destroy (&store);
    if (!root)
        *status = 503;
    return root;
}

static json_t *
s_api_audit_row (al_console_data_t *self, al_console_data_arg_fn *arg, const void *request, int *status, char *error, size_t error_size)
{
    const char *text = arg (request, "seq");
    char *end = NULL;
    unsigned long long sequence = text? strtoull (text, &end, 10): 0;
    if (!text || !*text || *end || sequence == 0) {
        *status = 400;
        snprintf (error, error_size, "seq: a row's sequence number (1, 2, ...)");
        return NULL;
    }
    al_store_t *store = s_store_open (self, error, error_size);
    if (!store) {
        *status = 503;
        return NULL;
    }
    json_t *root = NULL;
    uint8_t previous [AL_STORE_HASH_SIZE] = { 0 };
    al_store_event_t event;
    bool has_previous = sequence == 1;
    if (sequence > 1 && al_store_event_get (store, sequence - 1, &event) == AL_STORE_OK) {
        memcpy (previous, event.hash, sizeof previous);
        has_previous = true;
    }
    if (al_store_event_get (store, sequence, &event) != AL_STORE_OK) {
        *status = 404;
        snprintf (error, error_size, "no row %llu in %s", sequence, al_config_database (self->config));
        goto cleanup;
    }
    root = al_console_log_row_json (&event);
    char hex [2 * AL_STORE_HASH_SIZE + 1];
    s_hex (previous, sizeof previous, hex);
    json_object_set_new (root, "previous_hash", has_previous? json_string (hex): json_null ());
    //  The link: this row's hash is SHA-256 (previous hash || the row's bytes).
    size_t size = al_store_row_encode (&event, NULL, 0);
    uint8_t *bytes = size? (uint8_t *) malloc (size): NULL;
    bool holds = false;
    if (bytes && has_previous && al_store_row_encode (&event, bytes, size) == size) {
        uint8_t hash [AL_STORE_HASH_SIZE];
        al_store_chain_hash (previous, bytes, size, hash);
        holds = memcmp (hash, event.hash, sizeof hash) == 0;
    }
    free (bytes);
    json_object_set_new (root, "link_holds", json_boolean (holds));
    json_object_set_new (root, "envelope_bytes", json_integer ((json_int_t) event.envelope_size));
cleanup:
    al_store_destroy (&store);
    return root;
}

static json_t *
s_api_verify (al_console_data_t *self, int *status, char *error, size_t error_size)
{
    al_store_t *store = s_store_open (self, error, error_size);
    if (!store) {
        *status = 503;
        return NULL;
    }
    const char *checkpoint = al_config_checkpoint_path (self->config);
    FILE *file = fopen (checkpoint, "r");
    if (file)
        fclose (file);
    else
        checkpoint = NULL;
    //  Pin the broker's checkpoint key (KEYS/checkpoint.pub, which `airlock init` writes):
    //  a checkpoint signed by any other key does not verify. Without the file the
    //  checkpoint's own key is taken, and the page says the key was not pinned.
    char pub_path [1200], hex_key [80] = "";
    uint8_t pinned_key [32];
    bool pinned = false;
    snprintf (pub_path, sizeof pub_path, "%s/checkpoint.pub", al_config_agents_keys_dir (self->config));
    FILE *pub = fopen (pub_path, "r");
    if (pub) {
        pinned = fgets (hex_key, sizeof hex_key, pub) != NULL
              && sodium_hex2bin (pinned_key, sizeof pinned_key, hex_key, strlen (hex_key), " \n", NULL, NULL) == 0;
        fclose (pub);
    }
    al_verify_report_t report;
    al_store_status_t result = al_store_verify (store, checkpoint, pinned? pinned_key: NULL, &report);
    al_store_destroy (&store);
    char head [2 * AL_STORE_HASH_SIZE + 1], key [65];
    s_hex (report.head_hash, AL_STORE_HASH_SIZE, head);
    s_hex (report.checkpoint_key, 32, key);
    return json_pack ("{s:s, s:b, s:I, s:I, s:s, s:s?, s:b, s:I, s:s?, s:b, s:s}",
                      "result", result == AL_STORE_OK? al_verify_result_name (report.result): "IO",
                      "ok", result == AL_STORE_OK && report.result == AL_VERIFY_OK,
                      "rows", (json_int_t) report.rows, "first_bad_sequence", (json_int_t) report.first_bad_sequence,
                      "head_hash", head, "checkpoint", checkpoint, "checkpoint_checked", report.checkpoint_checked,
                      "checkpoint_rows", (json_int_t) report.checkpoint_rows,
                      "checkpoint_key", report.checkpoint_checked? key: NULL, "key_pinned", pinned,
                      "reason", report.reason);
}

static json_t *
s_api_history (al_console_data_t *self, int *status, char *error, size_t error_size)
{
    al_store_t *store = s_store_open (self, error, error_size);
    if (!store) {
        *status = 503;
        return NULL;
    }
    pthread_mutex_lock (&self->log_mutex);
    if (!al_console_log_advance (self->log, store, error, error_size)) {
        pthread_mutex_unlock (&self->log_mutex);
        al_store_destroy (&store);
        *status = 503;
        return NULL;
    }
    al_store_destroy (&store);
    const al_replay_t *replay = al_console_log_replay (self->log);
    json_t *rows = json_array ();
    for (size_t index = 0; index < al_replay_count (replay); index++) {
        const al_replay_deployment_t *deployment = al_replay_at (replay, index);
        //  The deployments `airlock audit history` lists, by the same rule.
        if (!al_audit_history_listed (deployment, NULL))
            continue;
        al_replay_history_t row;
        al_replay_history_row (deployment, &row);
        json_array_append_new (rows, json_pack ("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:s}",
                                                "deployment", deployment->id, "service", deployment->service,
                                                "version", deployment->version, "date", row.date, "type", row.type,
                                                "status", row.status, "rollback", row.rollback,
                                                "duration_ms", (json_int_t) row.duration_ms, "notes", row.notes,
                                                "state", al_replay_state_name (deployment->state)));
    }
    pthread_mutex_unlock (&self->log_mutex);
    return json_pack ("{s:o}", "history", rows);
}

static json_t *
s_api_soak_rules (al_console_data_t *self, int *status, char *error, size_t error_size)
{
    al_policy_t *policy = al_policy_load (al_config_policy_dir (self->config), NULL);
    if (!policy) {
        *status = 503;
        snprintf (error, error_size, "%s: the policy does not load (airlock check says why)",
                  al_config_policy_dir (self->config));
        return NULL;
    }
    const al_policy_thresholds_t *t = al_policy_thresholds (policy);
    const al_policy_soak_t *soak = al_policy_soak (policy);
    json_t *checkpoints = json_array ();
    for (size_t index = 0; index < soak->checkpoint_count; index++)
        json_array_append_new (checkpoints, json_integer ((json_int_t) soak->checkpoints_ms [index]));
    json_t *root = json_pack ("{s:{s:f, s:f, s:f, s:f, s:f, s:i}, s:{s:I, s:o}}",
                              "thresholds", "error_rate_increase_more_than_points", t->error_rate_increase_more_than_points,
                              "latency_p99_more_than_baseline_factor", t->latency_p99_more_than_baseline_factor,
                              "latency_p99_floor_ms", t->latency_p99_floor_ms,
                              "cpu_percent_more_than", t->cpu_percent_more_than,
                              "memory_percent_more_than", t->memory_percent_more_than,
                              "health_check_failures_more_than", (int) t->health_check_failures_more_than,
                              "soak", "duration_ms", (json_int_t) soak->duration_ms, "checkpoints_ms", checkpoints);
    al_policy_destroy (&policy);
    return root;
}

json_t *
al_console_data_api (al_console_data_t *self, const char *name, al_console_data_arg_fn *arg, const void *request,
                     int *status, char *error, size_t error_size)
{
    assert (self && name && arg && status && error);
    if (strcmp (name, "agents") == 0)
        return s_api_agents (self, status, error, error_size);
    if (strcmp (name, "releases") == 0)
        return s_api_releases (self);
    if (strcmp (name, "approvals") == 0)
        return s_api_approvals (self, status, error, error_size);
    if (strcmp (name, "audit") == 0)
        return s_api_audit (self, arg, request, status, error, error_size);
    if (strcmp (name, "audit_row") == 0)
        return s_api_audit_row (self, arg, request, status, error, error_size);
    if (strcmp (name, "verify") == 0)
        return s_api_verify (self, status, error, error_size);
    if (strcmp (name, "history") == 0)
        return s_api_history (self, status, error, error_size);
    if (strcmp (name, "soak_rules") == 0)
        return s_api_soak_rules (self, status, error, error_size);
    *status = 404;
    snprintf (error, error_size, "no API %s", name);
    return NULL;
}

//  ---- the event bus -------------------------------------------------------------------

static s_soak_stream_t *
s_soak_stream (al_console_data_t *self, const char *topic)
{
    for (size_t index = 0; index < self->stream_count; index++)
        if (strcmp (self->streams [index].topic, topic) == 0)
            return &self->streams [index];
    if (self->stream_count == S_STREAMS_MAX || !self->policy)
        return NULL;
    s_soak_stream_t *stream = &self->streams [self->stream_count];
    stream->rules = al_rules_stream_new (al_policy_thresholds (self->policy), 0);
    if (!stream->rules)
        return NULL;
    snprintf (stream->topic, sizeof stream->topic, "%s", topic);
    self->stream_count++;
    return stream;
}

static const char *
s_environment (const al_envelope_t *envelope)
{
    const char *name = al_environment_name (envelope->environment);
    return name? name: "";
}

//  A soak sample with every rule's value, limit and status (deploy/al_rules).
static json_t *
s_soak_sample (al_console_data_t *self, const char *topic, const al_envelope_t *envelope, uint64_t missed)
{
    const Airlock__SoakSignal *signal = envelope->soak_signal;
    json_t *sample = json_pack ("{s:s, s:s, s:s, s:I, s:I, s:b, s:I}", "service", signal->service,
                                "environment", s_environment (envelope),
                                "version", signal->version, "sequence", (json_int_t) signal->sequence,
                                "time_ms", (json_int_t) al_clock_wall_ms (), "baseline", signal->baseline,
                                "missed", (json_int_t) missed);
    json_object_set_new (sample, "rps", signal->no_evidence & AL_RULES_SIGNAL_TRAFFIC? json_null ()
                                                                                     : s_number (signal->requests_per_second));
    json_object_set_new (sample, "error_percent", signal->no_evidence & AL_RULES_SIGNAL_TRAFFIC? json_null ()
                                                                     : s_number (signal->error_ratio * 100.0));
    bool latency = !(signal->no_evidence & AL_RULES_SIGNAL_LATENCY);
    json_object_set_new (sample, "p50_ms", latency? s_number (signal->latency_p50_ms): json_null ());
    json_object_set_new (sample, "p99_ms", latency? s_number (signal->latency_p99_ms): json_null ());
    json_object_set_new (sample, "cpu_percent", signal->no_evidence & AL_RULES_SIGNAL_CPU? json_null ()
                                                                        : s_number (signal->cpu_percent));
    json_object_set_new (sample, "memory_percent", signal->no_evidence & AL_RULES_SIGNAL_MEMORY? json_null ()
                                                                              : s_number (signal->memory_percent));
    json_object_set_new (sample, "instances_up", json_integer (signal->instances_up));
    json_object_set_new (sample, "instances_total", json_integer (signal->instances_total));
    s_soak_stream_t *stream = s_soak_stream (self, topic);
    if (stream) {
        al_rules_row_t rows [AL_RULES_ROWS];
        bool judged = false;
        al_rules_result_t result = al_rules_stream_feed (stream->rules, signal, zclock_mono (), rows,
                                                         AL_RULES_ROWS, &judged);
        json_t *rules = json_object ();
        for (size_t index = 0; judged && index < AL_RULES_ROWS; index++)
            json_object_set_new (rules, rows [index].rule,
                                 json_pack ("{s:s, s:o, s:o, s:s}", "status", al_rules_row_status_name (rows [index].status),
                                            "value", s_number (rows [index].value), "limit", s_number (rows [index].limit),
                                            "detail", rows [index].detail));
        al_baseline_t baseline;
        al_rules_stream_baseline (stream->rules, &baseline);
        json_object_set_new (sample, "rules", rules);
        json_object_set_new (sample, "judged", json_boolean (judged));
        json_object_set_new (sample, "verdict", json_string (al_rules_verdict_name (result.verdict)));
        json_object_set_new (sample, "baseline_values", baseline.samples
                             ? json_pack ("{s:o, s:o}", "error_percent", s_number (baseline.error_ratio * 100.0),
                                          "p99_ms", s_number (baseline.latency_p99_ms))
                             : json_null ());
    }
    return sample;
}

json_t *
al_console_data_event (al_console_data_t *self, const char *topic, const al_envelope_t *envelope, uint64_t missed,
                       const char **event_p)
{
    assert (self && topic && envelope && event_p);
    *event_p = NULL;
    if (envelope->body_case == AIRLOCK__ENVELOPE__BODY_SOAK_SIGNAL) {
        *event_p = "soak";
        return s_soak_sample (self, topic, envelope, missed);
    }
    json_t *data = NULL;
    const char *event = NULL;
    if (envelope->body_case == AIRLOCK__ENVELOPE__BODY_ROLLBACK_TRIGGER) {
        const Airlock__RollbackTrigger *trigger = envelope->rollback_trigger;
        event = "rollback";
        data = json_pack ("{s:s, s:s, s:s, s:s, s:s, s:I}", "service", trigger->service, "rule", trigger->rule,
                          "detail", trigger->detail, "deployment_id", envelope->deployment_id,
                          "environment", s_environment (envelope), "time_ms", (json_int_t) al_clock_wall_ms ());
    }
    else
    if (envelope->body_case == AIRLOCK__ENVELOPE__BODY_DEPLOY_PROGRESS) {
        const Airlock__DeployProgress *progress = envelope->deploy_progress;
        event = "progress";
        data = json_pack ("{s:s, s:s, s:s?, s:s?, s:s, s:i, s:s, s:s, s:I}", "deployment_id", envelope->deployment_id,
                          "environment", s_environment (envelope),
                          "step", al_step_name (progress->step), "outcome", al_outcome_name (progress->outcome),
                          "detail", progress->detail, "percent", (int) progress->percent,
                          "service", progress->service, "version", progress->version,
                          "time_ms", (json_int_t) al_clock_wall_ms ());
        pthread_mutex_lock (&self->mutex);
        json_object_set (self->progress, envelope->deployment_id, data);
        pthread_mutex_unlock (&self->mutex);
    }
    else
    if (envelope->body_case == AIRLOCK__ENVELOPE__BODY_DEPLOY_RECEIPT) {
        event = "receipt";
        data = json_pack ("{s:s, s:s, s:I}", "deployment_id", envelope->deployment_id,
                          "outcome", al_outcome_name (envelope->deploy_receipt->outcome)? al_outcome_name (envelope->deploy_receipt->outcome): "",
                          "time_ms", (json_int_t) al_clock_wall_ms ());
    }
    *event_p = data? event: NULL;
    return data;
}
