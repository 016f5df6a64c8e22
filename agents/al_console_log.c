/*  al_console_log.c: the console's view of the audit log (see al_console_log.h): one
    replay of the whole log and a ring of the newest rows, both advanced over the rows
    appended since the last request; rows older than the ring are read back from the
    store, by sequence, when a page or a count needs them.

    Invariants: the ring holds the newest row_count rows of the log in sequence order
    (row_count <= window); every older row is in the store below the ring's first
    sequence; a filter's remembered count covers exactly the rows of [1, counted_below)
    and counted_below never passes the ring's first sequence. All of it is dropped
    together when the log is replaced.
*/
#include "agents/al_console_log.h"
#include "base/al_error.h"
#include "store/al_replay_advance.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

//  Rows older than the window are read back in ranges of this many sequences, newest
//  range first, until the page is full.
#define S_OLDER_CHUNK 4096

//  One audit row as the filter reads it; the strings live in text.
typedef struct {
    uint64_t sequence;
    uint64_t time_ms;
    al_store_decision_t decision;
    uint8_t hash [AL_STORE_HASH_SIZE];
    const char *sender, *role, *type, *message_id, *deployment_id, *environment, *reason;
    char text [];
} s_row_t;

//  How many rows older than the window one filter matches.
typedef struct {
    char *key;                      // the filter (al_console_log_filter_t without before, limit)
    uint64_t counted_below;         // rows of sequence 1 .. counted_below - 1 were counted
    uint64_t count;
    uint64_t used;                  // the request that last used it (least recently used goes)
} s_older_count_t;

struct _al_console_log_t {
    al_replay_t *replay;            // of the whole log, up to its last sequence
    s_row_t **rows;                 // the ring: window slots, the oldest at first
    size_t window;
    size_t first;
    size_t row_count;
    uint8_t last_hash [AL_STORE_HASH_SIZE];     // of the row at al_replay_last_sequence
    s_older_count_t counts [AL_CONSOLE_LOG_FILTERS_KEPT];
    uint64_t requests;
    al_console_log_stats_t stats;
};

al_console_log_t *
al_console_log_new (size_t window_rows)
{
    al_console_log_t *self = (al_console_log_t *) calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->window = window_rows? window_rows: 1;
    self->rows = (s_row_t **) calloc (self->window, sizeof *self->rows);
    if (!self->rows)
        al_console_log_destroy (&self);
    return self;
}

//  Drop the view: the replay, the rows and the counts (a replaced log, or a failure).
static void
s_forget (al_console_log_t *self)
{
    al_replay_destroy (&self->replay);
    for (size_t index = 0; index < self->row_count; index++)
        free (self->rows [(self->first + index) % self->window]);
    self->first = 0;
    self->row_count = 0;
    for (size_t index = 0; index < AL_CONSOLE_LOG_FILTERS_KEPT; index++) {
        free (self->counts [index].key);
        self->counts [index] = (s_older_count_t) { 0 };
    }
}

void
al_console_log_destroy (al_console_log_t **self_p)
{
    assert (self_p);
    al_console_log_t *self = *self_p;
    if (!self)
        return;
    if (self->rows)
        s_forget (self);
    free (self->rows);
    free (self);
    *self_p = NULL;
}

const al_replay_t *
al_console_log_replay (const al_console_log_t *self)
{
    assert (self);
    return self->replay;
}

void
al_console_log_stats (const al_console_log_t *self, al_console_log_stats_t *stats)
{
    assert (self && stats);
    *stats = self->stats;
    stats->rows_held = self->row_count;
    stats->window_rows = self->window;
}

static const s_row_t *
s_row_at (const al_console_log_t *self, size_t index)
{
    assert (index < self->row_count);
    return self->rows [(self->first + index) % self->window];
}

//  al_replay_row_fn: keep the row in the ring, the oldest leaving when it is full.
static bool
s_keep_row (const al_store_event_t *event, void *arg)
{
    al_console_log_t *self = (al_console_log_t *) arg;
    const char *fields [7] = { event->sender, event->role, event->type, event->message_id, event->deployment_id,
                               event->environment, event->reason };
    size_t lengths [7], total = 0;
    for (size_t index = 0; index < 7; index++)
        total += (lengths [index] = strlen (fields [index])) + 1;
    s_row_t *row = (s_row_t *) malloc (sizeof *row + total);
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
    if (self->row_count == self->window) {
        free (self->rows [self->first]);
        self->rows [self->first] = row;
        self->first = (self->first + 1) % self->window;
    }
    else
        self->rows [(self->first + self->row_count++) % self->window] = row;
    memcpy (self->last_hash, event->hash, sizeof self->last_hash);
    self->stats.rows_read++;
    return true;
}

bool
al_console_log_advance (al_console_log_t *self, al_store_t *store, char *error, size_t error_size)
{
    assert (self && store);
    uint64_t last = self->replay? al_replay_last_sequence (self->replay): 0;
    if (last) {
        al_store_event_t event;
        if (al_store_event_get (store, last, &event) != AL_STORE_OK
        ||  memcmp (event.hash, self->last_hash, sizeof self->last_hash) != 0)
            s_forget (self);        // replaced or truncated: start over
    }
    if (!self->replay) {
        self->replay = al_replay_new_empty ();
        if (!self->replay) {
            al_error_set (error, error_size, "replay: out of memory");
            return false;
        }
        self->stats.full_replays++;
    }
    if (al_replay_advance (self->replay, store, s_keep_row, self, error, error_size) < 0) {
        s_forget (self);
        return false;
    }
    return true;
}

//  ---- the audit page -------------------------------------------------------------------

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

json_t *
al_console_log_row_json (const al_store_event_t *event)
{
    assert (event);
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

static void
s_row_event (const s_row_t *row, al_store_event_t *event)
{
    *event = (al_store_event_t) {
        .sequence = row->sequence, .time_ms = row->time_ms, .sender = row->sender, .role = row->role,
        .type = row->type, .message_id = row->message_id, .deployment_id = row->deployment_id,
        .environment = row->environment, .decision = row->decision, .reason = row->reason
    };
    memcpy (event->hash, row->hash, sizeof event->hash);
}

static bool
s_set (const char *text)
{
    return text && *text;
}

static bool
s_contains (const char *haystack, const char *needle)
{
    return strcasestr (haystack, needle) != NULL;
}

static bool
s_filters (const al_console_log_filter_t *filter)
{
    return s_set (filter->type) || s_set (filter->sender) || s_set (filter->release) || s_set (filter->search)
        || filter->denied_only;
}

static bool
s_matches (const al_console_log_filter_t *filter, const al_store_event_t *event)
{
    if ((s_set (filter->type) && strcmp (event->type, filter->type) != 0)
    ||  (s_set (filter->sender) && strcmp (event->sender, filter->sender) != 0)
    ||  (filter->denied_only && event->decision != AL_STORE_DENIED)
    ||  (s_set (filter->release) && strncmp (event->deployment_id, filter->release, strlen (filter->release)) != 0))
        return false;
    const char *search = filter->search;
    return !s_set (search) || s_contains (event->type, search) || s_contains (event->sender, search)
        || s_contains (event->deployment_id, search) || s_contains (event->reason, search)
        || s_contains (event->message_id, search);
}

//  The sequence of the oldest row in the window; rows below it are in the store only.
static uint64_t
s_window_start (const al_console_log_t *self)
{
    return self->row_count? s_row_at (self, 0)->sequence: al_replay_last_sequence (self->replay) + 1;
}

//  Read the store's rows of [from, below) in order, calling each for every match of
//  filter (each may be NULL). Returns how many matched, or -1 with error set.
typedef bool (s_each_fn) (const al_store_event_t *event, void *arg);

static int64_t
s_scan_older (al_console_log_t *self, al_store_t *store, const al_console_log_filter_t *filter, uint64_t from,
              uint64_t below, s_each_fn *each, void *arg, char *error, size_t error_size)
{
    int64_t matched = 0;
    al_store_status_t status = AL_STORE_ERR_IO;
    al_store_iter_t *iter = from < below? al_store_iter_new (store, from): NULL;
    if (from >= below)
        return 0;
    if (!iter)
        goto cleanup;
    al_store_event_t event;
    while ((status = al_store_iter_next (iter, &event)) == AL_STORE_OK && event.sequence < below) {
        self->stats.older_rows_read++;
        if (event.sequence < from || !s_matches (filter, &event))
            continue;
        matched++;
        if (each && !each (&event, arg)) {
            status = AL_STORE_ERR_NOMEM;
            break;
        }
    }
    if (status == AL_STORE_OK)
        status = AL_STORE_END;      // stopped at below
cleanup:
    al_store_iter_destroy (&iter);
    if (status == AL_STORE_END)
        return matched;
    al_error_set (error, error_size, "audit: older rows: %s",
                  status == AL_STORE_ERR_NOMEM? "out of memory": al_store_error (store));
    return -1;
}

//  How many rows older than the window filter matches: remembered per filter, counted
//  only over the rows that left the window since the last time. -1 with error set.
static int64_t
s_older_matches (al_console_log_t *self, al_store_t *store, const al_console_log_filter_t *filter,
                 char *error, size_t error_size)
{
    uint64_t start = s_window_start (self);
    if (!s_filters (filter))
        return (int64_t) (al_replay_rows (self->replay) - self->row_count);
    char key [2048];
    int length = snprintf (key, sizeof key, "%s\x1f%s\x1f%s\x1f%s\x1f%d", filter->type? filter->type: "",
                           filter->sender? filter->sender: "", filter->release? filter->release: "",
                           filter->search? filter->search: "", filter->denied_only);
    s_older_count_t *entry = NULL;
    if (length > 0 && (size_t) length < sizeof key) {
        s_older_count_t *oldest = &self->counts [0];
        for (size_t index = 0; index < AL_CONSOLE_LOG_FILTERS_KEPT && !entry; index++) {
            s_older_count_t *slot = &self->counts [index];
            if (slot->key && strcmp (slot->key, key) == 0)
                entry = slot;
            else
            if (!slot->key || (oldest->key && slot->used < oldest->used))
                oldest = slot;
        }
        if (!entry) {
            free (oldest->key);
            *oldest = (s_older_count_t) { .key = strdup (key), .counted_below = 1 };
            entry = oldest->key? oldest: NULL;
        }
    }
    //  Not remembered (a filter too long, or no memory for it): counted afresh.
    s_older_count_t fresh = { .counted_below = 1 };
    s_older_count_t *counting = entry? entry: &fresh;
    int64_t more = s_scan_older (self, store, filter, counting->counted_below, start, NULL, NULL, error, error_size);
    if (more < 0) {
        if (entry) {
            free (entry->key);
            *entry = (s_older_count_t) { 0 };
        }
        return -1;
    }
    counting->count += (uint64_t) more;
    counting->counted_below = start > counting->counted_below? start: counting->counted_below;
    counting->used = self->requests;
    return (int64_t) counting->count;
}

//  The newest matches of one range of older rows, kept while the range is read.
typedef struct {
    json_t **slots;
    size_t size, first, count;
} s_newest_t;

static bool
s_keep_newest (const al_store_event_t *event, void *arg)
{
    s_newest_t *newest = (s_newest_t *) arg;
    json_t *row = al_console_log_row_json (event);
    if (!row)
        return false;
    if (newest->count == newest->size) {
        json_decref (newest->slots [newest->first]);
        newest->slots [newest->first] = row;
        newest->first = (newest->first + 1) % newest->size;
    }
    else
        newest->slots [(newest->first + newest->count++) % newest->size] = row;
    return true;
}

//  Append to rows, newest first, up to need matches older than below (below at most the
//  window's start), reading the store back range by range; older_left (-1: unknown)
//  bounds the matches there are to find. Returns how many were appended, or -1.
static int64_t
s_older_page (al_console_log_t *self, al_store_t *store, const al_console_log_filter_t *filter, uint64_t below,
              size_t need, int64_t older_left, json_t *rows, char *error, size_t error_size)
{
    s_newest_t newest = { .slots = (json_t **) calloc (need? need: 1, sizeof (json_t *)), .size = need };
    int64_t appended = 0;
    if (!newest.slots) {
        al_error_set (error, error_size, "audit: out of memory");
        return -1;
    }
    while (need > 0 && below > 1 && older_left != 0) {
        uint64_t from = below > S_OLDER_CHUNK? below - S_OLDER_CHUNK: 1;
        newest.first = newest.count = 0;
        newest.size = need;         // the newest NEED of this range: older ones are not shown
        int64_t matched = s_scan_older (self, store, filter, from, below, s_keep_newest, &newest, error, error_size);
        if (matched < 0) {
            appended = -1;
            break;
        }
        for (size_t index = newest.count; index > 0; index--) {
            json_array_append_new (rows, newest.slots [(newest.first + index - 1) % newest.size]);
            appended++;
        }
        newest.count = 0;
        need -= (size_t) matched < need? (size_t) matched: need;
        if (older_left > 0)
            older_left -= matched < older_left? matched: older_left;
        below = from;
    }
    for (size_t index = 0; index < newest.count; index++)
        json_decref (newest.slots [(newest.first + index) % newest.size]);
    free (newest.slots);
    return appended;
}

json_t *
al_console_log_audit (al_console_log_t *self, al_store_t *store, const al_console_log_filter_t *filter,
                      char *error, size_t error_size)
{
    assert (self && store && filter && filter->limit > 0);
    if (!self->replay) {
        al_error_set (error, error_size, "audit: the view was not advanced");
        return NULL;
    }
    self->requests++;
    uint64_t before = filter->before? filter->before: UINT64_MAX;
    json_t *rows = json_array ();
    size_t taken = 0;
    uint64_t matched = 0;
    //  The window, newest first: every match counted, the first LIMIT below before shown.
    for (size_t index = self->row_count; index > 0; index--) {
        al_store_event_t event;
        s_row_event (s_row_at (self, index - 1), &event);
        if (!s_matches (filter, &event))
            continue;
        matched++;
        if (event.sequence < before && taken < filter->limit) {
            json_array_append_new (rows, al_console_log_row_json (&event));
            taken++;
        }
    }
    //  Then what is older than the window, from the store.
    int64_t older = s_older_matches (self, store, filter, error, error_size);
    uint64_t start = s_window_start (self);
    if (older < 0)
        goto failed;
    matched += (uint64_t) older;
    if (taken < filter->limit && older > 0) {
        int64_t appended = s_older_page (self, store, filter, before < start? before: start, filter->limit - taken,
                                         filter->before? -1: older, rows, error, error_size);
        if (appended < 0)
            goto failed;
        taken += (size_t) appended;
    }
    json_t *last = json_array_get (rows, json_array_size (rows) - 1);
    return json_pack ("{s:o, s:I, s:I, s:o}", "rows", rows, "matched", (json_int_t) matched,
                      "rows_in_log", (json_int_t) al_replay_rows (self->replay),
                      "next_before", taken == filter->limit && last? json_incref (json_object_get (last, "sequence"))
                                                                    : json_null ());
failed:
    json_decref (rows);
    return NULL;
}
