/*  al_console_log.h: the web console's view of the audit log: a replay of the
    deployments and a bounded window of the newest rows, kept up to date with the log.

    The console answers audit, history and approvals again and again. Replaying the whole
    log per answer costs the whole log; keeping every row in memory costs ~150 bytes a row
    forever. This view keeps:
      - one replay of the whole log (store/al_replay_advance), advanced over the rows
        appended since the last request: history and approvals read it (it grows with
        the deployments, which the history lists, not with the rows);
      - the newest window_rows rows as the audit filter reads them (the window, a ring:
        the oldest row leaves when a new one comes), so its memory stays flat however
        long the log grows;
      - per recent filter, how many rows older than the window it matches (those rows
        never change: counted once, then only over the rows that left the window since).
    A page of the audit log (al_console_log_audit) is taken from the window, and from the
    store, read in sequence order chunk by chunk going back, for whatever is older than
    the window. The answer is the same as a scan of the whole log would give.

    The view is built anew when the log is not the one it was built from: the row it saw
    last is gone or has another hash (a replaced or truncated database).

    Threading: none; the caller holds one request at a time in the view (a mutex).
*/
#ifndef AL_CONSOLE_LOG_H_INCLUDED
#define AL_CONSOLE_LOG_H_INCLUDED

#include "store/al_replay.h"
#include "store/al_store.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _al_console_log_t al_console_log_t;

//  The rows a console keeps in memory by default (~1.5 MB); older ones are read from
//  the store when a page reaches them.
#define AL_CONSOLE_LOG_WINDOW_ROWS 10000
//  Filters whose count of matches older than the window is remembered.
#define AL_CONSOLE_LOG_FILTERS_KEPT 8

//  A view that keeps the newest window_rows rows (at least 1). NULL if memory runs out.
al_console_log_t *al_console_log_new (size_t window_rows);
void al_console_log_destroy (al_console_log_t **self_p);

//  Bring the view up to store's last row: the new rows only, unless the log is not the
//  one the view was built from (then from its first row). False with error set when
//  the store cannot be read (the view is dropped, to be built again next time).
bool al_console_log_advance (al_console_log_t *self, al_store_t *store, char *error, size_t error_size);

//  The replay of the whole log as of the last al_console_log_advance (NULL before the
//  first or after a failed one). Borrowed: valid until the next advance.
const al_replay_t *al_console_log_replay (const al_console_log_t *self);

//  What the audit API filters on; NULL or "" strings filter nothing.
typedef struct {
    const char *type;           // the type, exactly
    const char *sender;         // the sender, exactly
    const char *release;        // a prefix of the deployment id
    const char *search;         // a substring (any case) of type, sender, deployment, reason or message id
    bool denied_only;
    uint64_t before;            // only rows with a smaller sequence (0: from the newest)
    size_t limit;               // at most this many rows (1..)
} al_console_log_filter_t;

//  The page of the audit log filter selects after al_console_log_advance over store:
//  {"rows": [row JSON, newest first, at most limit, below before], "matched": how many
//  rows of the whole log match (before aside), "rows_in_log", "next_before": the sequence
//  to pass as before for the next page, or null when this page holds the last match}.
//  NULL with error set when the store fails or memory runs out.
json_t *al_console_log_audit (al_console_log_t *self, al_store_t *store, const al_console_log_filter_t *filter,
                              char *error, size_t error_size);

//  One audit row as the API shows it (sequence, time, sender, role, type, message_id,
//  deployment_id, environment, decision, reason, hash).
json_t *al_console_log_row_json (const al_store_event_t *event);

//  What the view cost so far (for tests and diagnostics).
typedef struct {
    uint64_t full_replays;          // views built from the first row (the first, and after a replaced log)
    uint64_t rows_read;             // rows read from the store into the view, all told
    uint64_t rows_held;             // rows in the window now (at most window_rows)
    uint64_t window_rows;           // the window's size
    uint64_t older_rows_read;       // rows older than the window read back from the store for pages and counts
} al_console_log_stats_t;

void al_console_log_stats (const al_console_log_t *self, al_console_log_stats_t *stats);

#endif
