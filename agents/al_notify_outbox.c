/*  al_notify_outbox.c: the notifier's SQLite database (see al_notify_outbox.h).

    WAL + synchronous=FULL, read back at open. Every statement is prepared once per
    connection. Writes outside enqueue are single statements (each its own durable
    transaction); enqueue wraps its source row and its delivery rows in BEGIN IMMEDIATE
    ... COMMIT so that a crash leaves either all of them or none. The schema version is
    PRAGMA user_version; a newer one is refused.
*/
#include "agents/al_notify_outbox.h"
#include "base/al_error.h"
#include <assert.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_SCHEMA_VERSION 1
#define S_BUSY_TIMEOUT_MS 5000

static const char *s_schema =
    "CREATE TABLE IF NOT EXISTS sources ("
    "  key TEXT PRIMARY KEY, template TEXT NOT NULL, created_ms INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS deliveries ("
    "  id INTEGER PRIMARY KEY, delivery_id TEXT NOT NULL UNIQUE, endpoint TEXT NOT NULL,"
    "  template TEXT NOT NULL, source_key TEXT NOT NULL, headers TEXT NOT NULL, body BLOB NOT NULL,"
    "  created_ms INTEGER NOT NULL, next_attempt_ms INTEGER NOT NULL,"
    "  attempts INTEGER NOT NULL DEFAULT 0, state TEXT NOT NULL DEFAULT 'pending',"
    "  last_status INTEGER NOT NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT '', finished_ms INTEGER);"
    "CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (endpoint, next_attempt_ms, id)"
    "  WHERE state = 'pending';"
    "CREATE TABLE IF NOT EXISTS deployments ("
    "  id TEXT PRIMARY KEY, info TEXT NOT NULL, updated_ms INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS releases ("
    "  service TEXT NOT NULL, version TEXT NOT NULL, info TEXT NOT NULL, updated_ms INTEGER NOT NULL,"
    "  PRIMARY KEY (service, version)) WITHOUT ROWID;";

typedef enum {
    S_HAS_SOURCE, S_ADD_SOURCE, S_ADD_DELIVERY, S_NEXT, S_NEXT_DUE, S_DONE, S_RETRY, S_FAILED,
    S_COUNTS, S_COUNTS_ALL, S_SOURCES, S_PENDING_ENDPOINTS, S_GET_DEPLOYMENT, S_PUT_DEPLOYMENT,
    S_GET_RELEASE, S_PUT_RELEASE, S_BEGIN, S_COMMIT, S_ROLLBACK, S_STATEMENT_COUNT
} s_statement_t;

static const char *s_sql [S_STATEMENT_COUNT] = {
    [S_HAS_SOURCE] = "SELECT 1 FROM sources WHERE key = ?1",
    [S_ADD_SOURCE] = "INSERT OR IGNORE INTO sources (key, template, created_ms) VALUES (?1, ?2, ?3)",
    [S_ADD_DELIVERY] = "INSERT INTO deliveries (delivery_id, endpoint, template, source_key, headers, body,"
                       " created_ms, next_attempt_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
    [S_NEXT] = "SELECT id, delivery_id, endpoint, headers, body, attempts, created_ms, next_attempt_ms"
               " FROM deliveries WHERE endpoint = ?1 AND state = 'pending' AND next_attempt_ms <= ?2"
               " ORDER BY id LIMIT 1",
    [S_NEXT_DUE] = "SELECT min(next_attempt_ms) FROM deliveries WHERE endpoint = ?1 AND state = 'pending'",
    [S_DONE] = "UPDATE deliveries SET state = 'done', attempts = attempts + 1, last_status = ?2,"
               " last_error = '', finished_ms = ?3 WHERE id = ?1 AND state = 'pending'",
    [S_RETRY] = "UPDATE deliveries SET attempts = attempts + 1, last_status = ?2, last_error = ?3,"
                " next_attempt_ms = ?4 WHERE id = ?1 AND state = 'pending'",
    [S_FAILED] = "UPDATE deliveries SET state = 'failed', attempts = attempts + 1, last_status = ?2,"
                 " last_error = ?3, finished_ms = ?4 WHERE id = ?1 AND state = 'pending'",
    [S_COUNTS] = "SELECT state, count(*), sum(attempts) FROM deliveries WHERE endpoint = ?1 GROUP BY state",
    [S_COUNTS_ALL] = "SELECT state, count(*), sum(attempts) FROM deliveries GROUP BY state",
    [S_SOURCES] = "SELECT count(*) FROM sources",
    [S_PENDING_ENDPOINTS] = "SELECT endpoint, count(*) FROM deliveries WHERE state = 'pending'"
                            " GROUP BY endpoint ORDER BY endpoint",
    [S_GET_DEPLOYMENT] = "SELECT info FROM deployments WHERE id = ?1",
    [S_PUT_DEPLOYMENT] = "INSERT INTO deployments (id, info, updated_ms) VALUES (?1, ?2, ?3)"
                         " ON CONFLICT (id) DO UPDATE SET info = excluded.info, updated_ms = excluded.updated_ms",
    [S_GET_RELEASE] = "SELECT info FROM releases WHERE service = ?1 AND version = ?2",
    [S_PUT_RELEASE] = "INSERT INTO releases (service, version, info, updated_ms) VALUES (?1, ?2, ?3, ?4)"
                      " ON CONFLICT (service, version) DO UPDATE SET info = excluded.info,"
                      " updated_ms = excluded.updated_ms",
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
};

struct _al_notify_outbox_t {
    sqlite3 *db;
    char *path;
    sqlite3_stmt *statements [S_STATEMENT_COUNT];
    char error [512];
};

static void
s_set_error (al_notify_outbox_t *self, const char *format, ...) __attribute__ ((format (printf, 2, 3)));

static void
s_set_error (al_notify_outbox_t *self, const char *format, ...)
{
    char what [400];
    va_list args;
    va_start (args, format);
    al_error_vset (what, sizeof what, format, args);
    va_end (args);
    al_error_set (self->error, sizeof self->error, "%s: %s", self->path, what);
}

static int
s_db_error (al_notify_outbox_t *self, const char *doing)
{
    s_set_error (self, "%s: %s", doing, sqlite3_errmsg (self->db));
    return -1;
}

//  The statement, reset and unbound, ready for binding.
static sqlite3_stmt *
s_statement (al_notify_outbox_t *self, s_statement_t which)
{
    sqlite3_stmt *stmt = self->statements [which];
    sqlite3_reset (stmt);
    sqlite3_clear_bindings (stmt);
    return stmt;
}

//  Step a statement that returns no row. 0 or -1.
static int
s_run (al_notify_outbox_t *self, sqlite3_stmt *stmt, const char *doing)
{
    int rc = sqlite3_step (stmt);
    sqlite3_reset (stmt);
    if (rc != SQLITE_DONE)
        return s_db_error (self, doing);
    return 0;
}

static int
s_pragma_text (sqlite3 *db, const char *sql, char *value, size_t value_size)
{
    sqlite3_stmt *stmt = NULL;
    value [0] = '\0';
    int rc = sqlite3_prepare_v2 (db, sql, -1, &stmt, NULL);
    if (rc == SQLITE_OK && sqlite3_step (stmt) == SQLITE_ROW && sqlite3_column_text (stmt, 0))
        snprintf (value, value_size, "%s", (const char *) sqlite3_column_text (stmt, 0));
    else
    if (rc == SQLITE_OK)
        rc = SQLITE_ERROR;
    sqlite3_finalize (stmt);
    return rc;
}

al_notify_outbox_t *
al_notify_outbox_open (const char *path, char *error, size_t error_size)
{
    assert (path);
    al_notify_outbox_t *self = calloc (1, sizeof *self);
    assert (self);
    self->path = strdup (path);
    assert (self->path);
    char value [64];
    int rc = sqlite3_open_v2 (path, &self->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        s_set_error (self, "cannot open: %s", self->db? sqlite3_errmsg (self->db): sqlite3_errstr (rc));
        goto failed;
    }
    sqlite3_busy_timeout (self->db, S_BUSY_TIMEOUT_MS);
    sqlite3_extended_result_codes (self->db, 1);
    //  Durability first: a commit that is not durable would let us acknowledge an event
    //  whose notifications a crash then loses.
    if (s_pragma_text (self->db, "PRAGMA journal_mode = WAL", value, sizeof value) != SQLITE_OK
    ||  strcmp (value, "wal") != 0) {
        s_set_error (self, "journal_mode=WAL not in effect (got '%s'): %s", value, sqlite3_errmsg (self->db));
        goto failed;
    }
    if (sqlite3_exec (self->db, "PRAGMA synchronous = FULL", NULL, NULL, NULL) != SQLITE_OK
    ||  s_pragma_text (self->db, "PRAGMA synchronous", value, sizeof value) != SQLITE_OK || strcmp (value, "2") != 0) {
        s_set_error (self, "synchronous=FULL not in effect (got '%s')", value);
        goto failed;
    }
    if (s_pragma_text (self->db, "PRAGMA user_version", value, sizeof value) != SQLITE_OK) {
        s_db_error (self, "reading the schema version");
        goto failed;
    }
    int version = atoi (value);
    if (version > S_SCHEMA_VERSION) {
        s_set_error (self, "schema version %d is newer than this airlock's (%d)", version, S_SCHEMA_VERSION);
        goto failed;
    }
    if (sqlite3_exec (self->db, s_schema, NULL, NULL, NULL) != SQLITE_OK
    ||  sqlite3_exec (self->db, "PRAGMA user_version = 1", NULL, NULL, NULL) != SQLITE_OK) {
        s_db_error (self, "creating the schema");
        goto failed;
    }
    for (int i = 0; i < S_STATEMENT_COUNT; i++)
        if (sqlite3_prepare_v3 (self->db, s_sql [i], -1, SQLITE_PREPARE_PERSISTENT, &self->statements [i], NULL)
            != SQLITE_OK) {
            s_db_error (self, "preparing statements");
            goto failed;
        }
    return self;
failed:
    snprintf (error, error_size, "%s", self->error);
    al_notify_outbox_destroy (&self);
    return NULL;
}

void
al_notify_outbox_destroy (al_notify_outbox_t **self_p)
{
    assert (self_p);
    al_notify_outbox_t *self = *self_p;
    if (!self)
        return;
    for (int i = 0; i < S_STATEMENT_COUNT; i++)
        sqlite3_finalize (self->statements [i]);
    sqlite3_close (self->db);
    free (self->path);
    free (self);
    *self_p = NULL;
}

const char *
al_notify_outbox_error (al_notify_outbox_t *self)
{
    assert (self);
    return self->error;
}

int
al_notify_outbox_has_source (al_notify_outbox_t *self, const char *source_key)
{
    assert (self && source_key);
    sqlite3_stmt *stmt = s_statement (self, S_HAS_SOURCE);
    sqlite3_bind_text (stmt, 1, source_key, -1, SQLITE_STATIC);
    int rc = sqlite3_step (stmt);
    sqlite3_reset (stmt);
    if (rc == SQLITE_ROW)
        return 1;
    if (rc == SQLITE_DONE)
        return 0;
    return s_db_error (self, "looking up a source");
}

int
al_notify_outbox_enqueue (al_notify_outbox_t *self, const char *source_key, const char *template_name,
                          const al_notify_outbox_entry_t *entries, size_t count, uint64_t now_ms, bool *duplicate_p)
{
    assert (self && source_key && template_name);
    assert (entries || count == 0);
    if (duplicate_p)
        *duplicate_p = false;
    if (s_run (self, s_statement (self, S_BEGIN), "beginning a transaction") != 0)
        return -1;
    sqlite3_stmt *stmt = s_statement (self, S_ADD_SOURCE);
    sqlite3_bind_text (stmt, 1, source_key, -1, SQLITE_STATIC);
    sqlite3_bind_text (stmt, 2, template_name, -1, SQLITE_STATIC);
    sqlite3_bind_int64 (stmt, 3, (sqlite3_int64) now_ms);
    if (s_run (self, stmt, "recording a source") != 0)
        goto failed;
    if (sqlite3_changes (self->db) == 0) {
        //  Seen before: its notifications were queued then.
        if (duplicate_p)
            *duplicate_p = true;
        s_run (self, s_statement (self, S_ROLLBACK), "rolling back");
        return 0;
    }
    for (size_t i = 0; i < count; i++) {
        stmt = s_statement (self, S_ADD_DELIVERY);
        sqlite3_bind_text (stmt, 1, entries [i].delivery_id, -1, SQLITE_STATIC);
        sqlite3_bind_text (stmt, 2, entries [i].endpoint, -1, SQLITE_STATIC);
        sqlite3_bind_text (stmt, 3, entries [i].template_name, -1, SQLITE_STATIC);
        sqlite3_bind_text (stmt, 4, source_key, -1, SQLITE_STATIC);
        sqlite3_bind_text (stmt, 5, entries [i].headers, -1, SQLITE_STATIC);
        sqlite3_bind_blob64 (stmt, 6, entries [i].body, (sqlite3_uint64) entries [i].body_size, SQLITE_STATIC);
        sqlite3_bind_int64 (stmt, 7, (sqlite3_int64) now_ms);
        if (s_run (self, stmt, "queueing a delivery") != 0)
            goto failed;
    }
    if (s_run (self, s_statement (self, S_COMMIT), "committing") != 0)
        goto failed;
    return 0;
failed:
    //  Keep the first error, not the rollback's.
    if (!sqlite3_get_autocommit (self->db)) {
        char kept [sizeof self->error];
        memcpy (kept, self->error, sizeof kept);
        sqlite3_exec (self->db, "ROLLBACK", NULL, NULL, NULL);
        memcpy (self->error, kept, sizeof kept);
    }
    return -1;
}

void
al_notify_outbox_item_clear (al_notify_outbox_item_t *item)
{
    assert (item);
    free (item->headers);
    free (item->body);
    memset (item, 0, sizeof *item);
}

int
al_notify_outbox_next (al_notify_outbox_t *self, const char *endpoint, uint64_t now_ms,
                       al_notify_outbox_item_t *item, uint64_t *next_due_ms_p)
{
    assert (self && endpoint && item);
    memset (item, 0, sizeof *item);
    if (next_due_ms_p)
        *next_due_ms_p = 0;
    sqlite3_stmt *stmt = s_statement (self, S_NEXT);
    sqlite3_bind_text (stmt, 1, endpoint, -1, SQLITE_STATIC);
    sqlite3_bind_int64 (stmt, 2, (sqlite3_int64) now_ms);
    int rc = sqlite3_step (stmt);
    if (rc == SQLITE_ROW) {
        item->id = sqlite3_column_int64 (stmt, 0);
        snprintf (item->delivery_id, sizeof item->delivery_id, "%s", (const char *) sqlite3_column_text (stmt, 1));
        snprintf (item->endpoint, sizeof item->endpoint, "%s", (const char *) sqlite3_column_text (stmt, 2));
        item->headers = strdup ((const char *) sqlite3_column_text (stmt, 3));
        size_t size = (size_t) sqlite3_column_bytes (stmt, 4);
        item->body = malloc (size + 1);
        assert (item->headers && item->body);
        if (size)
            memcpy (item->body, sqlite3_column_blob (stmt, 4), size);
        item->body [size] = 0;
        item->body_size = size;
        item->attempts = (uint32_t) sqlite3_column_int64 (stmt, 5);
        item->created_ms = (uint64_t) sqlite3_column_int64 (stmt, 6);
        item->next_attempt_ms = (uint64_t) sqlite3_column_int64 (stmt, 7);
        sqlite3_reset (stmt);
        return 1;
    }
    sqlite3_reset (stmt);
    if (rc != SQLITE_DONE)
        return s_db_error (self, "reading the next delivery");
    if (next_due_ms_p) {
        stmt = s_statement (self, S_NEXT_DUE);
        sqlite3_bind_text (stmt, 1, endpoint, -1, SQLITE_STATIC);
        rc = sqlite3_step (stmt);
        if (rc == SQLITE_ROW && sqlite3_column_type (stmt, 0) != SQLITE_NULL)
            *next_due_ms_p = (uint64_t) sqlite3_column_int64 (stmt, 0);
        sqlite3_reset (stmt);
        if (rc != SQLITE_ROW)
            return s_db_error (self, "reading the next due time");
    }
    return 0;
}

static int
s_mark (al_notify_outbox_t *self, s_statement_t which, int64_t id, int http_status, const char *error,
        uint64_t time_ms)
{
    sqlite3_stmt *stmt = s_statement (self, which);
    sqlite3_bind_int64 (stmt, 1, id);
    sqlite3_bind_int (stmt, 2, http_status);
    if (which == S_DONE)
        sqlite3_bind_int64 (stmt, 3, (sqlite3_int64) time_ms);
    else {
        sqlite3_bind_text (stmt, 3, error? error: "", -1, SQLITE_STATIC);
        sqlite3_bind_int64 (stmt, 4, (sqlite3_int64) time_ms);
    }
    return s_run (self, stmt, "recording an attempt");
}

int
al_notify_outbox_mark_done (al_notify_outbox_t *self, int64_t id, int http_status, uint64_t now_ms)
{
    assert (self);
    return s_mark (self, S_DONE, id, http_status, NULL, now_ms);
}

int
al_notify_outbox_mark_retry (al_notify_outbox_t *self, int64_t id, int http_status, const char *error,
                             uint64_t next_attempt_ms)
{
    assert (self);
    return s_mark (self, S_RETRY, id, http_status, error, next_attempt_ms);
}

int
al_notify_outbox_mark_failed (al_notify_outbox_t *self, int64_t id, int http_status, const char *error,
                              uint64_t now_ms)
{
    assert (self);
    return s_mark (self, S_FAILED, id, http_status, error, now_ms);
}

int
al_notify_outbox_counts (al_notify_outbox_t *self, const char *endpoint, al_notify_outbox_counts_t *counts)
{
    assert (self && counts);
    memset (counts, 0, sizeof *counts);
    sqlite3_stmt *stmt = s_statement (self, endpoint? S_COUNTS: S_COUNTS_ALL);
    if (endpoint)
        sqlite3_bind_text (stmt, 1, endpoint, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step (stmt)) == SQLITE_ROW) {
        const char *state = (const char *) sqlite3_column_text (stmt, 0);
        uint64_t count = (uint64_t) sqlite3_column_int64 (stmt, 1);
        counts->attempts += (uint64_t) sqlite3_column_int64 (stmt, 2);
        if (strcmp (state, "pending") == 0)
            counts->pending = count;
        else
        if (strcmp (state, "done") == 0)
            counts->done = count;
        else
            counts->failed = count;
    }
    sqlite3_reset (stmt);
    if (rc != SQLITE_DONE)
        return s_db_error (self, "counting deliveries");
    stmt = s_statement (self, S_SOURCES);
    rc = sqlite3_step (stmt);
    if (rc == SQLITE_ROW)
        counts->sources = (uint64_t) sqlite3_column_int64 (stmt, 0);
    sqlite3_reset (stmt);
    return rc == SQLITE_ROW? 0: s_db_error (self, "counting sources");
}

int
al_notify_outbox_pending_endpoints (al_notify_outbox_t *self, al_notify_outbox_endpoint_fn *fn, void *arg)
{
    assert (self && fn);
    sqlite3_stmt *stmt = s_statement (self, S_PENDING_ENDPOINTS);
    int rc;
    while ((rc = sqlite3_step (stmt)) == SQLITE_ROW) {
        char endpoint [128];
        snprintf (endpoint, sizeof endpoint, "%s", (const char *) sqlite3_column_text (stmt, 0));
        if (fn (endpoint, (uint64_t) sqlite3_column_int64 (stmt, 1), arg) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    sqlite3_reset (stmt);
    return rc == SQLITE_DONE? 0: s_db_error (self, "listing endpoints");
}

//  The JSON text of a row (new reference; NULL when none or unreadable).
static json_t *
s_get_info (al_notify_outbox_t *self, sqlite3_stmt *stmt)
{
    json_t *info = NULL;
    if (sqlite3_step (stmt) == SQLITE_ROW && sqlite3_column_text (stmt, 0))
        info = json_loads ((const char *) sqlite3_column_text (stmt, 0), 0, NULL);
    sqlite3_reset (stmt);
    (void) self;
    if (info && !json_is_object (info)) {
        json_decref (info);
        info = NULL;
    }
    return info;
}

static int
s_merge_put (al_notify_outbox_t *self, json_t *current, const json_t *info, sqlite3_stmt *put, int text_index,
             uint64_t now_ms)
{
    json_t *merged = current? current: json_object ();
    json_object_update (merged, (json_t *) info);
    char *text = json_dumps (merged, JSON_COMPACT);
    json_decref (merged);
    assert (text);
    sqlite3_bind_text (put, text_index, text, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64 (put, text_index + 1, (sqlite3_int64) now_ms);
    free (text);
    return s_run (self, put, "remembering a deployment");
}

int
al_notify_outbox_remember_deployment (al_notify_outbox_t *self, const char *deployment_id, const json_t *info,
                                      uint64_t now_ms)
{
    assert (self && deployment_id && json_is_object (info));
    sqlite3_stmt *stmt = s_statement (self, S_GET_DEPLOYMENT);
    sqlite3_bind_text (stmt, 1, deployment_id, -1, SQLITE_STATIC);
    json_t *current = s_get_info (self, stmt);
    stmt = s_statement (self, S_PUT_DEPLOYMENT);
    sqlite3_bind_text (stmt, 1, deployment_id, -1, SQLITE_STATIC);
    return s_merge_put (self, current, info, stmt, 2, now_ms);
}

int
al_notify_outbox_remember_release (al_notify_outbox_t *self, const char *service, const char *version,
                                   const json_t *info, uint64_t now_ms)
{
    assert (self && service && version && json_is_object (info));
    sqlite3_stmt *stmt = s_statement (self, S_GET_RELEASE);
    sqlite3_bind_text (stmt, 1, service, -1, SQLITE_STATIC);
    sqlite3_bind_text (stmt, 2, version, -1, SQLITE_STATIC);
    json_t *current = s_get_info (self, stmt);
    stmt = s_statement (self, S_PUT_RELEASE);
    sqlite3_bind_text (stmt, 1, service, -1, SQLITE_STATIC);
    sqlite3_bind_text (stmt, 2, version, -1, SQLITE_STATIC);
    return s_merge_put (self, current, info, stmt, 3, now_ms);
}

json_t *
al_notify_outbox_recall (al_notify_outbox_t *self, const char *deployment_id)
{
    assert (self);
    if (!deployment_id || !*deployment_id)
        return NULL;
    sqlite3_stmt *stmt = s_statement (self, S_GET_DEPLOYMENT);
    sqlite3_bind_text (stmt, 1, deployment_id, -1, SQLITE_STATIC);
    json_t *info = s_get_info (self, stmt);
    const char *service = json_string_value (json_object_get (info, "service"));
    const char *version = json_string_value (json_object_get (info, "version"));
    if (service && version) {
        stmt = s_statement (self, S_GET_RELEASE);
        sqlite3_bind_text (stmt, 1, service, -1, SQLITE_STATIC);
        sqlite3_bind_text (stmt, 2, version, -1, SQLITE_STATIC);
        json_t *release = s_get_info (self, stmt);
        if (release)
            json_object_update_missing (info, release);
        json_decref (release);
    }
    return info;
}
