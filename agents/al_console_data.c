/*  al_console_data.c: the web console's API answers and streamed events (see
    al_console_data.h). Read-only: it asks the broker (StatusQuery), opens the store
    read-only per request, and reads the release files, the policy and the logs, never
    another module's bytes itself.

    The log view: audit, history and approvals answer from one replay of the audit log
    and one in-memory list of its rows (what the audit filter reads), both kept in this
    object and advanced over the rows appended since the last request (store/
    al_replay_advance), so a request costs the new rows, not the whole log. They are
    built anew only when the log is not the one they were built from: the row they last
    saw is gone or has another hash (a replaced or truncated database). log_mutex holds
    one request at a time in the view.
*/
#include "agents/al_console_data.h"
#include "agents/al_process_logs.h"
#include "agents/al_releases.h"
#include "agents/al_request_view.h"
#include "base/al_clock.h"
#include "base/al_id.h"
#include "deploy/al_rules.h"
#include "policies/al_policy.h"
#include "store/al_replay.h"
#include "store/al_replay_advance.h"
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

//  One audit row as the audit API filters and shows it; the strings live in text.
typedef struct {
    uint64_t sequence;
    uint64_t time_ms;
    al_store_decision_t decision;
    uint8_t hash [AL_STORE_HASH_SIZE];
    const char *sender, *role, *type, *message_id, *deployment_id, *environment, *reason;
    char text [];
} s_audit_row_t;

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
    al_replay_t *replay;            // of the whole log, up to its last sequence
    s_audit_row_t **rows;           // every row, in sequence order
    size_t row_count;
    size_t row_capacity;
    uint8_t last_hash [AL_STORE_HASH_SIZE];     // of the row at al_replay_last_sequence
    al_console_data_log_stats_t stats;
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
    if (!self->progress)
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
    al_replay_destroy (&self->replay);
    for (size_t index = 0; index < self->row_count; index++)
        free (self->rows [index]);
    free (self->rows);
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

//  ---- the log view (log_mutex held) -----------------------------------------------------

static void
s_log_forget (al_console_data_t *self)
{
    al_replay_destroy (&self->replay);
    for (size_t index = 0; index < self->row_count; index++)
        free (self->rows [index]);
    self->row_count = 0;
}

//  al_replay_row_fn: keep the row for the audit API.
static bool
s_log_keep_row (const al_store_event_t *event, void *arg)
{
    al_console_data_t *self = (al_console_data_t *) arg;
    if (self->row_count == self->row_capacity) {
        size_t capacity = self->row_capacity? 2 * self->row_capacity: 1024;
        s_audit_row_t **rows = (s_audit_row_t **) realloc (self->rows, capacity * sizeof *rows);
        if (!rows)
            return false;
        self->rows = rows;
        self->row_capacity = capacity;
    }
    const char *fields [7] = { event->sender, event->role, event->type, event->message_id, event->deployment_id,
                               event->environment, event->reason };
    size_t lengths [7], total = 0;
    for (size_t index = 0; index < 7; index++)
        total += (lengths [index] = strlen (fields [index])) + 1;
    s_audit_row_t *row = (s_audit_row_t *) malloc (sizeof *row + total);
    if (!row)
        return false;
    row->sequence = event->sequence;
    row->time_ms = event->time_ms;
    row->decision = event->decision;
    memcpy (row->hash, event->hash, sizeof row->hash);
    const char **targets [7] = { &row->sender, &row->role, &row->type, &row->message_id, &row->deployment_id,
                                 &row->environment, &row->reason };
    char *at = row->text;
    for (size_t index = 0; index < 7; index++) {
        memcpy (at, fields [index], lengths [index] + 1);
        *targets [index] = at;
        at += lengths [index] + 1;
    }
    self->rows [self->row_count++] = row;
    memcpy (self->last_hash, event->hash, sizeof self->last_hash);
    self->stats.rows_read++;
    return true;
}

//  Bring the view up to the log's head: the new rows only, unless the log is not the
//  one the view was built from. False with error set when the store cannot be read
//  (the view is dropped, to be built again by the next request).
static bool
s_log_advance (al_console_data_t *self, al_store_t *store, char *error, size_t error_size)
{
    uint64_t last = self->replay? al_replay_last_sequence (self->replay): 0;
    if (last) {
        al_store_event_t event;
        if (al_store_event_get (store, last, &event) != AL_STORE_OK
        ||  memcmp (event.hash, self->last_hash, sizeof self->last_hash) != 0)
            s_log_forget (self);        // replaced or truncated: start over
    }
    if (!self->replay) {
        self->replay = al_replay_new_empty ();
        if (!self->replay) {
            snprintf (error, error_size, "replay: out of memory");
            return false;
        }
        self->stats.full_replays++;
    }
    if (al_replay_advance (self->replay, store, s_log_keep_row, self, error, error_size) < 0) {
        s_log_forget (self);
        return false;
    }
    return true;
}

void
al_console_data_log_stats (al_console_data_t *self, al_console_data_log_stats_t *stats)
{
    assert (self && stats);
    pthread_mutex_lock (&self->log_mutex);
    *stats = self->stats;
    stats->rows_held = self->row_count;
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
    const al_replay_t *replay = store && s_log_advance (self, store, store_error, sizeof store_error)
                              ? self->replay: NULL;
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
s_row_json (const al_store_event_t *event)
{
    char when [40], hash [2 * AL_STORE_HASH_SIZE + 1];
    al_store_format_time (event->time_ms, when, sizeof when);
    s_hex (event->hash, AL_STORE_HASH_SIZE, hash);
    return json_pack ("{s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
                      "sequence", (json_int_t) event->sequence, "time", when, "sender", event->sender,
                      "role", event->role, "type", event->type, "message_id", event->message_id,
                      "deployment_id", event->deployment_id, "environment", event->environment,
                      "decision", event->decision == AL_STORE_DENIED? "denied": "accepted",
                      "reason", event->reason, "hash", hash);
}

static bool
s_contains (const char *haystack, const char *needle)
{
    return !needle || !*needle || strcasestr (haystack, needle) != NULL;
}

static json_t *
s_api_audit (al_console_data_t *self, al_console_data_arg_fn *arg, const void *request, int *status, char *error, size_t error_size)
{
    const char *type = arg (request, "type");
    const char *sender = arg (request, "sender");
    const char *release = arg (request, "release");
    const char *search = arg (request, "q");
    const char *denied = arg (request, "denied");
    const char *limit_text = arg (request, "limit");
    bool denied_only = denied && (strcmp (denied, "1") == 0 || strcmp (denied, "true") == 0);
    long limit = limit_text? strtol (limit_text, NULL, 10): 200;
    if (limit < 1 || limit > S_AUDIT_LIMIT_MAX) {
        *status = 400;
        snprintf (error, error_size, "limit: 1..%d", S_AUDIT_LIMIT_MAX);
        return NULL;
    }
    al_store_t *store = s_store_open (self, error, error_size);
    if (!store) {
        *status = 503;
        return NULL;
    }
    pthread_mutex_lock (&self->log_mutex);
    if (!s_log_advance (self, store, error, error_size)) {
        pthread_mutex_unlock (&self->log_mutex);
        al_store_destroy (&store);
        *status = 503;
        return NULL;
    }
    al_store_destroy (&store);
    //  Newest first: the first LIMIT matches of a backward scan; every match counted.
    json_t *rows = json_array ();
    uint64_t matched = 0;
    for (size_t index = self->row_count; index > 0; index--) {
        const s_audit_row_t *row = self->rows [index - 1];
        if ((type && *type && strcmp (row->type, type) != 0)
        ||  (sender && *sender && strcmp (row->sender, sender) != 0)
        ||  (denied_only && row->decision != AL_STORE_DENIED)
        ||  (release && *release && strncmp (row->deployment_id, release, strlen (release)) != 0))
            continue;
        if (search && *search && !(s_contains (row->type, search) || s_contains (row->sender, search)
                                   || s_contains (row->deployment_id, search) || s_contains (row->reason, search)
                                   || s_contains (row->message_id, search)))
            continue;
        if (matched++ < (uint64_t) limit) {
            al_store_event_t event = {
                .sequence = row->sequence, .time_ms = row->time_ms, .sender = row->sender, .role = row->role,
                .type = row->type, .message_id = row->message_id, .deployment_id = row->deployment_id,
                .environment = row->environment, .decision = row->decision, .reason = row->reason
            };
            memcpy (event.hash, row->hash, sizeof event.hash);
            json_array_append_new (rows, s_row_json (&event));
        }
    }
    size_t in_log = self->row_count;
    pthread_mutex_unlock (&self->log_mutex);
    return json_pack ("{s:o, s:I, s:I}", "rows", rows, "matched", (json_int_t) matched,
                      "rows_in_log", (json_int_t) in_log);
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
    root = s_row_json (&event);
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
    if (!s_log_advance (self, store, error, error_size)) {
        pthread_mutex_unlock (&self->log_mutex);
        al_store_destroy (&store);
        *status = 503;
        return NULL;
    }
    al_store_destroy (&store);
    const al_replay_t *replay = self->replay;
    json_t *rows = json_array ();
    for (size_t index = 0; index < al_replay_count (replay); index++) {
        const al_replay_deployment_t *deployment = al_replay_at (replay, index);
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
