/*  al_store_sqlite.c: the SQLite backend of the audit store (ops table "sqlite").

    One database file per broker, in WAL mode with synchronous=FULL: both are set and read
    back at open, and the open fails if SQLite did not take them, because a commit that
    is not durable would let the broker acknowledge a message it can lose. The schema is
    versioned in the meta table; a database written by a newer schema is refused.

    Events are stored one column per field (seq is the rowid) with a partial unique index
    on (sender, message_id) that recognises retransmissions: the insert itself fails on a
    retransmission (SQLITE_CONSTRAINT_UNIQUE) and reports AL_STORE_DUPLICATE, so append
    needs no SELECT before each insert (insert_reports_duplicate). A database whose index
    is not exactly that one (altered by hand) gets the SELECT before the insert instead,
    so a retransmission is still never stored twice. Side tables (deliveries,
    outbox, approvals_used, journal) live in the same file so they commit atomically with
    their event. Read-only opens (verify, export) never write; a WAL database whose -shm
    cannot be created (read-only directory) and that has no -wal content is opened as
    immutable instead.

    Threading: a handle belongs to one thread (SQLITE_OPEN_NOMUTEX).

    Checkpoint policy (WAL → database file): a writable handle hands checkpoints to a
    thread of its own (al_store_sqlite_checkpointer.h says why and how).
*/
#include "base/al_error.h"
#include "store/al_store_ops.h"
#include "store/al_store_sqlite_checkpointer.h"
#include <sqlite3.h>
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>


//  The index that recognises retransmissions, exactly as created (sqlite_master keeps
//  the text): the insert relies on it (s_insert).
#define S_MESSAGE_INDEX "CREATE UNIQUE INDEX events_message ON events (sender, message_id) WHERE message_id <> ''"

static const char *s_schema =
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE events ("
    "  seq INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL, sender TEXT NOT NULL,"
    "  role TEXT NOT NULL, type TEXT NOT NULL, message_id TEXT NOT NULL,"
    "  deployment_id TEXT NOT NULL, environment TEXT NOT NULL, decision INTEGER NOT NULL,"
    "  reason TEXT NOT NULL, envelope BLOB NOT NULL, hash BLOB NOT NULL);"
    S_MESSAGE_INDEX ";"
    "CREATE TABLE deliveries (role TEXT NOT NULL, seq INTEGER NOT NULL,"
    "  PRIMARY KEY (role, seq)) WITHOUT ROWID;"
    "CREATE TABLE outbox (id INTEGER PRIMARY KEY, seq INTEGER NOT NULL, channel TEXT NOT NULL,"
    "  payload BLOB NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,"
    "  next_attempt_ms INTEGER NOT NULL DEFAULT 0, lease_until_ms INTEGER NOT NULL DEFAULT 0,"
    "  sent_ms INTEGER, last_error TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX outbox_due ON outbox (next_attempt_ms, id) WHERE sent_ms IS NULL;"
    "CREATE TABLE approvals_used (approval_id BLOB PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE journal (id INTEGER PRIMARY KEY, deployment_id TEXT NOT NULL,"
    "  seq INTEGER NOT NULL, time_ms INTEGER NOT NULL, step TEXT NOT NULL, phase TEXT NOT NULL,"
    "  status TEXT NOT NULL, detail TEXT NOT NULL);"
    "CREATE INDEX journal_deployment ON journal (deployment_id, id);"
    "INSERT INTO meta (key, value) VALUES ('application', '" AL_STORE_META_APPLICATION "'), ('schema_version', '1');";

#define S_EVENT_COLUMNS "seq, time_ms, sender, role, type, message_id, deployment_id, environment, " \
                        "decision, reason, envelope, hash"

//  Prepared statements, indexed by s_stmt_id_t; prepared lazily on first use.
typedef enum {
    S_BEGIN, S_COMMIT, S_ROLLBACK, S_HEAD, S_FIND, S_INSERT, S_GET,
    S_DELIVERY_ADD, S_DELIVERY_ACK, S_DELIVERY_PENDING,
    S_OUTBOX_ADD, S_OUTBOX_DUE, S_OUTBOX_LEASE, S_OUTBOX_SENT, S_OUTBOX_RETRY,
    S_APPROVAL, S_JOURNAL_ADD, S_JOURNAL_LIST, S_STMT_COUNT
} s_stmt_id_t;

static const char *s_sql [S_STMT_COUNT] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_HEAD] = "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1",
    [S_FIND] = "SELECT " S_EVENT_COLUMNS " FROM events WHERE sender = ?1 AND message_id = ?2 AND message_id <> ''",
    [S_INSERT] = "INSERT INTO events (" S_EVENT_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    [S_GET] = "SELECT " S_EVENT_COLUMNS " FROM events WHERE seq = ?1",
    [S_DELIVERY_ADD] = "INSERT INTO deliveries (role, seq) VALUES (?1, ?2)",
    [S_DELIVERY_ACK] = "DELETE FROM deliveries WHERE role = ?1 AND seq = ?2",
    [S_DELIVERY_PENDING] = "SELECT seq FROM deliveries WHERE role = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
    [S_OUTBOX_ADD] = "INSERT INTO outbox (seq, channel, payload) VALUES (?1, ?2, ?3)",
    [S_OUTBOX_DUE] = "SELECT id, seq, channel, payload, attempts, last_error FROM outbox"
                     " WHERE sent_ms IS NULL AND next_attempt_ms <= ?1 AND lease_until_ms <= ?1"
                     " ORDER BY next_attempt_ms, id LIMIT 1",
    [S_OUTBOX_LEASE] = "UPDATE outbox SET attempts = attempts + 1, lease_until_ms = ?2 WHERE id = ?1",
    [S_OUTBOX_SENT] = "UPDATE outbox SET sent_ms = ?2 WHERE id = ?1 AND sent_ms IS NULL",
    [S_OUTBOX_RETRY] = "UPDATE outbox SET next_attempt_ms = ?2, lease_until_ms = 0, last_error = ?3"
                       " WHERE id = ?1 AND sent_ms IS NULL",
    [S_APPROVAL] = "INSERT OR IGNORE INTO approvals_used (approval_id, seq) VALUES (?1, ?2)",
    [S_JOURNAL_ADD] = "INSERT INTO journal (deployment_id, seq, time_ms, step, phase, status, detail)"
                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [S_JOURNAL_LIST] = "SELECT seq, time_ms, deployment_id, step, phase, status, detail FROM journal"
                       " WHERE deployment_id = ?1 ORDER BY id",
};

typedef struct {
    sqlite3 *db;
    char *path;
    bool read_only;
    bool probe_before_insert;           // events_message is not S_MESSAGE_INDEX (s_check_schema)
    al_store_sqlite_checkpointer_t *checkpointer;   // writable handles only; NULL if it could not start
    sqlite3_stmt *stmt [S_STMT_COUNT];
    //  Copies of the last claimed outbox item (borrowed by the caller).
    char *claim_channel;
    uint8_t *claim_payload;
    char *claim_error;
    char error [512];
} s_handle_t;

typedef struct {
    s_handle_t *handle;
    sqlite3_stmt *stmt;
} s_iter_t;

static void
s_set_error (s_handle_t *self, const char *format, ...)
{
    char text [384];
    va_list args;
    va_start (args, format);
    al_error_vset (text, sizeof text, format, args);
    va_end (args);
    al_error_set (self->error, sizeof self->error, "%s: %s", self->path, text);
}

static al_store_status_t
s_db_error (s_handle_t *self, const char *what)
{
    int code = sqlite3_errcode (self->db);
    s_set_error (self, "%s: %s", what, sqlite3_errmsg (self->db));
    if (code == SQLITE_BUSY || code == SQLITE_LOCKED)
        return AL_STORE_ERR_BUSY;
    if (code == SQLITE_NOMEM)
        return AL_STORE_ERR_NOMEM;
    return AL_STORE_ERR_IO;
}

//  The statement, reset, or NULL (error set). Its bindings are not cleared: every use of
//  a statement binds all of its parameters (clearing 12 of them per appended row is a
//  cost of its own on the per-message path).
static sqlite3_stmt *
s_stmt (s_handle_t *self, s_stmt_id_t id)
{
    assert (id < S_STMT_COUNT);
    if (!self->stmt [id]) {
        if (sqlite3_prepare_v3 (self->db, s_sql [id], -1, SQLITE_PREPARE_PERSISTENT,
                                &self->stmt [id], NULL) != SQLITE_OK) {
            s_db_error (self, "prepare");
            return NULL;
        }
    }
    else
        sqlite3_reset (self->stmt [id]);
    return self->stmt [id];
}

//  Runs a statement expected to finish in one step (write or no result).
static al_store_status_t
s_run (s_handle_t *self, sqlite3_stmt *stmt, const char *what)
{
    int rc = sqlite3_step (stmt);
    al_store_status_t status = AL_STORE_OK;
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        status = s_db_error (self, what);
    sqlite3_reset (stmt);
    return status;
}

//  A single-row query returning text in *value_p (malloc'd), or NULL value if no row.
static int
s_query_text (sqlite3 *db, const char *sql, char **value_p)
{
    sqlite3_stmt *stmt = NULL;
    *value_p = NULL;
    int rc = sqlite3_prepare_v2 (db, sql, -1, &stmt, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step (stmt);
        if (rc == SQLITE_ROW) {
            const char *text = (const char *) sqlite3_column_text (stmt, 0);
            *value_p = strdup (text? text: "");
            rc = *value_p? SQLITE_OK: SQLITE_NOMEM;
        }
        else
        if (rc == SQLITE_DONE)
            rc = SQLITE_OK;
    }
    sqlite3_finalize (stmt);
    return rc;
}

static const char *
s_error (void *handle)
{
    return ((s_handle_t *) handle)->error;
}

static void
s_close (void *handle)
{
    s_handle_t *self = (s_handle_t *) handle;
    if (!self)
        return;
    //  The checkpointer's connection closes first, so that the writer's close is the
    //  last one and checkpoints the WAL wholly, as before.
    al_store_sqlite_checkpointer_stop (self->db, &self->checkpointer);
    for (int i = 0; i < S_STMT_COUNT; i++)
        sqlite3_finalize (self->stmt [i]);
    if (self->db) {
        if (!self->read_only && !sqlite3_get_autocommit (self->db))
            sqlite3_exec (self->db, "ROLLBACK", NULL, NULL, NULL);
        sqlite3_close_v2 (self->db);
    }
    free (self->claim_channel);
    free (self->claim_payload);
    free (self->claim_error);
    free (self->path);
    free (self);
}

//  Opens the connection; for read-only opens of a WAL database whose -shm cannot be
//  made, falls back to immutable when no -wal content exists.
static int
s_connect (s_handle_t *self, const al_store_options_t *options)
{
    int flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI;
    if (options->read_only)
        flags |= SQLITE_OPEN_READONLY;
    else {
        flags |= SQLITE_OPEN_READWRITE;
        if (options->create)
            flags |= SQLITE_OPEN_CREATE;
    }
    //  A URI keeps odd characters in path harmless and lets us pass options.
    char *uri = sqlite3_mprintf ("file:%s", self->path);
    char *uri_immutable = sqlite3_mprintf ("file:%s?immutable=1", self->path);
    int rc = SQLITE_NOMEM;
    if (!uri || !uri_immutable)
        goto cleanup;
    //  sqlite3_mprintf does not escape '?' or '#'; pass plain paths through open_v2 without URI
    //  when they contain them.
    bool plain = strpbrk (self->path, "?#%") != NULL;
    rc = sqlite3_open_v2 (plain? self->path: uri, &self->db,
                          plain? flags & ~SQLITE_OPEN_URI: flags, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout (self->db, options->busy_timeout_ms > 0? options->busy_timeout_ms: 5000);
        sqlite3_extended_result_codes (self->db, 1);
        rc = sqlite3_exec (self->db, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL);
    }
    if (rc != SQLITE_OK && options->read_only && !plain
    &&  (rc & 0xff) != SQLITE_NOTADB && (rc & 0xff) != SQLITE_CORRUPT) {
        char wal [4096];
        struct stat info;
        snprintf (wal, sizeof wal, "%s-wal", self->path);
        if (stat (wal, &info) != 0 || info.st_size == 0) {
            sqlite3_close_v2 (self->db);
            self->db = NULL;
            rc = sqlite3_open_v2 (uri_immutable, &self->db, flags, NULL);
            if (rc == SQLITE_OK)
                rc = sqlite3_exec (self->db, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL);
        }
    }
cleanup:
    sqlite3_free (uri);
    sqlite3_free (uri_immutable);
    return rc;
}

static al_store_status_t
s_check_schema (s_handle_t *self, bool read_only)
{
    char *value = NULL;
    char *tables = NULL;
    al_store_status_t status = AL_STORE_ERR_IO;
    if (s_query_text (self->db, "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
                      &value) != SQLITE_OK) {
        s_db_error (self, "reading schema");
        goto cleanup;
    }
    if (!value) {
        if (s_query_text (self->db, "SELECT count(*) FROM sqlite_master", &tables) != SQLITE_OK) {
            s_db_error (self, "reading schema");
            goto cleanup;
        }
        if (strcmp (tables, "0") != 0) {
            s_set_error (self, "not an airlock audit database (no meta table)");
            goto cleanup;
        }
        if (read_only) {
            s_set_error (self, "empty database (no audit log)");
            goto cleanup;
        }
        char *message = NULL;
        if (sqlite3_exec (self->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK
        ||  sqlite3_exec (self->db, s_schema, NULL, NULL, &message) != SQLITE_OK
        ||  sqlite3_exec (self->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
            s_set_error (self, "creating schema: %s", message? message: sqlite3_errmsg (self->db));
            sqlite3_free (message);
            sqlite3_exec (self->db, "ROLLBACK", NULL, NULL, NULL);
            goto cleanup;
        }
        status = AL_STORE_OK;
        goto cleanup;
    }
    free (value);
    value = NULL;
    //  A failed read counts as no row: the same verdict as a missing value.
    char reason [256];
    int found = s_query_text (self->db, "SELECT value FROM meta WHERE key = 'application'", &value);
    if (al_store_meta_application_check (found == SQLITE_OK? value: NULL, reason, sizeof reason) != 0) {
        s_set_error (self, "%s", reason);
        goto cleanup;
    }
    free (value);
    value = NULL;
    found = s_query_text (self->db, "SELECT value FROM meta WHERE key = 'schema_version'", &value);
    if (al_store_meta_version_check (found == SQLITE_OK? value: NULL, reason, sizeof reason) != 0) {
        s_set_error (self, "%s", reason);
        goto cleanup;
    }
    //  The insert detects a retransmission only through the unique index; without it
    //  (a database altered by hand) s_insert looks the message up first.
    free (value);
    value = NULL;
    if (s_query_text (self->db, "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = 'events_message'"
                      " AND tbl_name = 'events'", &value) != SQLITE_OK) {
        s_db_error (self, "reading schema");
        goto cleanup;
    }
    self->probe_before_insert = !value || strcmp (value, S_MESSAGE_INDEX) != 0;
    status = AL_STORE_OK;
cleanup:
    free (value);
    free (tables);
    return status;
}

static void *
s_open (const char *path, const al_store_options_t *options, char *error, size_t error_size)
{
    char *value = NULL;
    s_handle_t *self = calloc (1, sizeof *self);
    if (!self || !(self->path = strdup (path))) {
        snprintf (error, error_size, "%s: out of memory", path);
        goto failed;
    }
    self->read_only = options->read_only;
    int rc = s_connect (self, options);
    if (rc != SQLITE_OK) {
        int primary = rc & 0xff;
        if (primary == SQLITE_NOTADB || primary == SQLITE_CORRUPT)
            s_set_error (self, "not an SQLite database (or corrupt): %s", sqlite3_errstr (rc));
        else
            s_set_error (self, "cannot open: %s", self->db? sqlite3_errmsg (self->db): sqlite3_errstr (rc));
        goto failed;
    }
    if (!self->read_only) {
        //  Durability is not negotiable: set WAL and FULL, then read both back.
        if (s_query_text (self->db, "PRAGMA journal_mode = WAL", &value) != SQLITE_OK
        ||  !value || strcmp (value, "wal") != 0) {
            s_set_error (self, "journal_mode=WAL not in effect (got '%s')", value? value: "?");
            goto failed;
        }
        free (value);
        value = NULL;
        if (sqlite3_exec (self->db, "PRAGMA synchronous = FULL", NULL, NULL, NULL) != SQLITE_OK
        ||  s_query_text (self->db, "PRAGMA synchronous", &value) != SQLITE_OK
        ||  !value || strcmp (value, "2") != 0) {
            s_set_error (self, "synchronous=FULL not in effect (got '%s')", value? value: "?");
            goto failed;
        }
        free (value);
        value = NULL;
        self->checkpointer = al_store_sqlite_checkpointer_start (self->db);
    }
    else {
        if (s_query_text (self->db, "PRAGMA journal_mode", &value) != SQLITE_OK || !value) {
            s_db_error (self, "reading journal_mode");
            goto failed;
        }
        free (value);
        value = NULL;
        //  Verify streams the whole table once: map it rather than copy it through the cache.
        sqlite3_exec (self->db, "PRAGMA query_only = 1; PRAGMA mmap_size = 1073741824",
                      NULL, NULL, NULL);
    }
    if (options->cache_kib > 0) {
        char pragma [64];
        snprintf (pragma, sizeof pragma, "PRAGMA cache_size = -%lld", (long long) options->cache_kib);
        sqlite3_exec (self->db, pragma, NULL, NULL, NULL);
    }
    if (s_check_schema (self, self->read_only) != AL_STORE_OK)
        goto failed;
    return self;

failed:
    if (self && self->error [0])
        snprintf (error, error_size, "%s", self->error);
    free (value);
    s_close (self);
    return NULL;
}

static al_store_status_t
s_head (void *handle, uint64_t *rows_p, uint8_t hash [AL_STORE_HASH_SIZE])
{
    s_handle_t *self = (s_handle_t *) handle;
    sqlite3_stmt *stmt = s_stmt (self, S_HEAD);
    if (!stmt)
        return AL_STORE_ERR_IO;
    al_store_status_t status = AL_STORE_OK;
    int rc = sqlite3_step (stmt);
    memset (hash, 0, AL_STORE_HASH_SIZE);
    *rows_p = 0;
    if (rc == SQLITE_ROW) {
        *rows_p = (uint64_t) sqlite3_column_int64 (stmt, 0);
        //  A damaged hash column reads as zeros: opening must still work so that
        //  verify can name the damaged row.
        if (sqlite3_column_bytes (stmt, 1) == AL_STORE_HASH_SIZE)
            memcpy (hash, sqlite3_column_blob (stmt, 1), AL_STORE_HASH_SIZE);
    }
    else
    if (rc != SQLITE_DONE)
        status = s_db_error (self, "reading head");
    sqlite3_reset (stmt);
    return status;
}

static al_store_status_t
s_exec_stmt (void *handle, s_stmt_id_t id, const char *what)
{
    s_handle_t *self = (s_handle_t *) handle;
    sqlite3_stmt *stmt = s_stmt (self, id);
    return stmt? s_run (self, stmt, what): AL_STORE_ERR_IO;
}

//  Events handed out by get/find stay borrowed from their statement, which keeps a read
//  snapshot open. Starting or ending a transaction ends those loans (al_store.h: valid
//  until the next call), so a stale snapshot never blocks BEGIN IMMEDIATE or holds back
//  the WAL checkpoint.
static void
s_end_loans (s_handle_t *self)
{
    if (self->stmt [S_GET])
        sqlite3_reset (self->stmt [S_GET]);
    if (self->stmt [S_FIND])
        sqlite3_reset (self->stmt [S_FIND]);
}

static al_store_status_t
s_begin (void *handle)
{
    s_end_loans ((s_handle_t *) handle);
    return s_exec_stmt (handle, S_BEGIN, "begin");
}

static al_store_status_t
s_commit (void *handle)
{
    s_end_loans ((s_handle_t *) handle);
    return s_exec_stmt (handle, S_COMMIT, "commit");
}

static al_store_status_t
s_rollback (void *handle)
{
    s_handle_t *self = (s_handle_t *) handle;
    //  SQLite may already have rolled back (after an I/O error on commit).
    if (sqlite3_get_autocommit (self->db))
        return AL_STORE_OK;
    return s_exec_stmt (handle, S_ROLLBACK, "rollback");
}

static const char *
s_column_text (sqlite3_stmt *stmt, int column)
{
    const char *text = (const char *) sqlite3_column_text (stmt, column);
    return text? text: "";
}

//  Fills event from a row of S_EVENT_COLUMNS. A malformed row (hash not 32 bytes,
//  decision not 1 or 2) is reported with decision 0 so verify flags it at its sequence.
static void
s_read_event (sqlite3_stmt *stmt, al_store_event_t *event)
{
    event->sequence = (uint64_t) sqlite3_column_int64 (stmt, 0);
    event->time_ms = (uint64_t) sqlite3_column_int64 (stmt, 1);
    event->sender = s_column_text (stmt, 2);
    event->role = s_column_text (stmt, 3);
    event->type = s_column_text (stmt, 4);
    event->message_id = s_column_text (stmt, 5);
    event->deployment_id = s_column_text (stmt, 6);
    event->environment = s_column_text (stmt, 7);
    sqlite3_int64 decision = sqlite3_column_int64 (stmt, 8);
    event->decision = (decision == AL_STORE_ACCEPTED || decision == AL_STORE_DENIED)
                    ? (al_store_decision_t) decision: (al_store_decision_t) 0;
    event->reason = s_column_text (stmt, 9);
    event->envelope = (const uint8_t *) sqlite3_column_blob (stmt, 10);
    event->envelope_size = (size_t) sqlite3_column_bytes (stmt, 10);
    if (!event->envelope)
        event->envelope = (const uint8_t *) "";
    const void *hash = sqlite3_column_blob (stmt, 11);
    if (hash && sqlite3_column_bytes (stmt, 11) == AL_STORE_HASH_SIZE)
        memcpy (event->hash, hash, AL_STORE_HASH_SIZE);
    else {
        memset (event->hash, 0, AL_STORE_HASH_SIZE);
        event->decision = (al_store_decision_t) 0;
    }
}

//  Runs a one-row event query; the event stays borrowed until the statement's next use.
static al_store_status_t
s_event_query (s_handle_t *self, sqlite3_stmt *stmt, al_store_event_t *event, const char *what)
{
    int rc = sqlite3_step (stmt);
    if (rc == SQLITE_ROW) {
        s_read_event (stmt, event);
        return AL_STORE_OK;
    }
    sqlite3_reset (stmt);
    return rc == SQLITE_DONE? AL_STORE_NOT_FOUND: s_db_error (self, what);
}

static al_store_status_t
s_find_message (void *handle, const char *sender, const char *message_id, al_store_event_t *event)
{
    s_handle_t *self = (s_handle_t *) handle;
    sqlite3_stmt *stmt = s_stmt (self, S_FIND);
    if (!stmt)
        return AL_STORE_ERR_IO;
    sqlite3_bind_text (stmt, 1, sender, -1, SQLITE_STATIC);
    sqlite3_bind_text (stmt, 2, message_id, -1, SQLITE_STATIC);
    return s_event_query (self, stmt, event, "finding message");
}

static al_store_status_t
s_get (void *handle, uint64_t sequence, al_store_event_t *event)
{
    s_handle_t *self = (s_handle_t *) handle;
    sqlite3_stmt *stmt = s_stmt (self, S_GET);
    if (!stmt)
        return AL_STORE_ERR_IO;
    sqlite3_bind_int64 (stmt, 1, (sqlite3_int64) sequence);
    return s_event_query (self, stmt, event, "reading event");
}

//  Stores the event; AL_STORE_DUPLICATE (nothing stored, the transaction still usable:
//  a constraint failure undoes only its statement) if an event with the same sender and
//  non-empty message_id exists.
static al_store_status_t
s_insert (void *handle, const al_store_event_t *event)
{
    s_handle_t *self = (s_handle_t *) handle;
    bool has_id = event->message_id && *event->message_id;
    if (has_id && self->probe_before_insert) {
        al_store_event_t original;
        al_store_status_t status = s_find_message (self, event->sender, event->message_id, &original);
        sqlite3_reset (self->stmt [S_FIND]);
        if (status != AL_STORE_NOT_FOUND)
            return status == AL_STORE_OK? AL_STORE_DUPLICATE: status;
    }
    sqlite3_stmt *stmt = s_stmt (self, S_INSERT);
    if (!stmt)
        return AL_STORE_ERR_IO;
    sqlite3_bind_int64 (stmt, 1, (sqlite3_int64) event->sequence);
    sqlite3_bind_int64 (stmt, 2, (sqlite3_int64) event->time_ms);
    sqlite3_bind_text (stmt, 3, event->sender, -1, SQLITE_STATIC);
    sqlite3_bind_text (stmt, 4, event->role, -1, SQLITE_STATIC);
    sqlite3_bind_text (stmt, 5, event->type, -1, SQLITE_STATIC);
    sqlite3_bind_text (stmt, 6, event->message_id, -1, SQLITE_STATIC);
    sqlite3_bind_text (stmt, 7, event->deployment_id, -1, SQLITE_STATIC);
    sqlite3_bind_text (stmt, 8, event->environment, -1, SQLITE_STATIC);
    sqlite3_bind_int (stmt, 9, (int) event->decision);
    sqlite3_bind_text (stmt, 10, event->reason, -1, SQLITE_STATIC);
    sqlite3_bind_blob64 (stmt, 11, event->envelope_size? event->envelope: (const void *) "",
                         event->envelope_size, SQLITE_STATIC);
    sqlite3_bind_blob (stmt, 12, event->hash, AL_STORE_HASH_SIZE, SQLITE_STATIC);
    int rc = sqlite3_step (stmt);
    //  Only events_message is a UNIQUE index of events (seq, the rowid, would fail with
    //  SQLITE_CONSTRAINT_PRIMARYKEY, an error).
    if ((rc & 0xff) == SQLITE_CONSTRAINT && has_id && sqlite3_extended_errcode (self->db) == SQLITE_CONSTRAINT_UNIQUE) {
        sqlite3_reset (stmt);
        return AL_STORE_DUPLICATE;
    }
    al_store_status_t status = rc == SQLITE_DONE? AL_STORE_OK: s_db_error (self, "inserting event");
    sqlite3_reset (stmt);
    return status;
}

static void *
s_iter_open (void *handle, uint64_t from_sequence)
{
    s_handle_t *self = (s_handle_t *) handle;
    s_iter_t *iter = calloc (1, sizeof *iter);
    if (!iter) {
        s_set_error (self, "out of memory");
        return NULL;
    }
    iter->handle = self;
    if (sqlite3_prepare_v2 (self->db, "SELECT " S_EVENT_COLUMNS " FROM events WHERE seq >= ?1 ORDER BY seq",
                            -1, &iter->stmt, NULL) != SQLITE_OK) {
        s_db_error (self, "preparing iterator");
        free (iter);
        return NULL;
    }
    //  From the start, the scan also returns rows numbered 0 or below (they sort first):
    //  nobody may hide a row from verify or replay by giving it a sequence below 1.
    sqlite3_bind_int64 (iter->stmt, 1, from_sequence <= 1 ? INT64_MIN : (sqlite3_int64) from_sequence);
    return iter;
}

static al_store_status_t
s_iter_next (void *handle, al_store_event_t *event)
{
    s_iter_t *iter = (s_iter_t *) handle;
    int rc = sqlite3_step (iter->stmt);
    if (rc == SQLITE_ROW) {
        s_read_event (iter->stmt, event);
        return AL_STORE_OK;
    }
    if (rc == SQLITE_DONE)
        return AL_STORE_END;
    return s_db_error (iter->handle, "reading events");
}

static void
s_iter_close (void *handle)
{
    s_iter_t *iter = (s_iter_t *) handle;
    if (iter) {
        sqlite3_finalize (iter->stmt);
        free (iter);
    }
}

static al_store_status_t
s_delivery_add (void *handle, const char *role, uint64_t sequence)
{
    s_handle_t *self = (s_handle_t *) handle;
    sqlite3_stmt *stmt = s_stmt (self, S_DELIVERY_ADD);
    if (!stmt)
        return AL_STORE_ERR_IO;
    sqlite3_bind_text (stmt, 1, role, -1, SQLITE_STATIC);
    sqlite3_bind_int64 (stmt, 2, (sqlite3_int64) sequence);
    return s_run (self, stmt, "adding delivery");
}

static al_store_status_t
s_delivery_ack (void *handle, const char *role, uint64_t sequence)
{
    s_handle_t *self = (s_handle_t *) handle;
    sqlite3_stmt *stmt = s_stmt (self, S_DELIVERY_ACK);
    if (!stmt)
        return AL_STORE_ERR_IO;
    sqlite3_bind_text (stmt, 1, role, -1, SQLITE_STATIC);
    sqlite3_bind_int64 (stmt, 2, (sqlite3_int64) sequence);
    al_store_status_t status = s_run (self, stmt, "acknowledging delivery");
    if (status == AL_STORE_OK && sqlite3_changes (self->db) == 0)
        status = AL_STORE_NOT_FOUND;
    return status;
}

static al_store_status_t
s_delivery_pending (void *handle, const char *role, uint64_t after_sequence,
                    uint64_t *sequences, size_t max, size_t *count_p)
{
    s_handle_t *self = (s_handle_t *) handle;
    *count_p = 0;
    sqlite3_stmt *stmt = s_stmt (self, S_DELIVERY_PENDING);
    if (!stmt)
        return AL_STORE_ERR_IO;
    sqlite3_bind_text (stmt, 1, role, -1, SQLITE_STATIC);
    sqlite3_bind_int64 (stmt, 2, (sqlite3_int64) after_sequence);
    sqlite3_bind_int64 (stmt, 3, (sqlite3_int64) max);
    int rc;
    while ((rc = sqlite3_step (stmt)) == SQLITE_ROW && *count_p < max)
        sequences [(*count_p)++] = (uint64_t) sqlite3_column_int64 (stmt, 0);
    al_store_status_t status = rc == SQLITE_DONE || rc == SQLITE_ROW
                             ? AL_STORE_OK: s_db_error (self, "listing deliveries");
    sqlite3_reset (stmt);
    return status;
}

static al_store_status_t
s_outbox_add (void *handle, uint64_t sequence, const char *channel, const uint8_t *payload,
              size_t payload_size, uint64_t *id_p)
{
    s_handle_t *self = (s_handle_t *) handle;
    sqlite3_stmt *stmt = s_stmt (self, S_OUTBOX_ADD);
    if (!stmt)
        return AL_STORE_ERR_IO;
    sqlite3_bind_int64 (stmt, 1, (sqlite3_int64) sequence);
    sqlite3_bind_text (stmt, 2, channel, -1, SQLITE_STATIC);
    sqlite3_bind_blob64 (stmt, 3, payload_size? (const void *) payload: (const void *) "",
                         payload_size, SQLITE_STATIC);
    al_store_status_t status = s_run (self, stmt, "adding outbox item");
    if (status == AL_STORE_OK && id_p)
        *id_p = (uint64_t) sqlite3_last_insert_rowid (self->db);
    return status;
}

//  Runs fn inside the open transaction, or inside its own IMMEDIATE one.
static al_store_status_t
s_in_transaction (s_handle_t *self, al_store_status_t (*fn) (s_handle_t *, void *), void *arg)
{
    if (!sqlite3_get_autocommit (self->db))
        return fn (self, arg);
    al_store_status_t status = s_begin (self);
    if (status != AL_STORE_OK)
        return status;
    status = fn (self, arg);
    if (status == AL_STORE_OK || status == AL_STORE_NOT_FOUND) {
        al_store_status_t commit = s_commit (self);
        if (commit != AL_STORE_OK) {
            s_rollback (self);
            return commit;
        }
        return status;
    }
    s_rollback (self);
    return status;
}

typedef struct {
    uint64_t now_ms;
    uint64_t lease_ms;
    al_store_outbox_item_t *item;
} s_claim_args_t;

static al_store_status_t
s_outbox_claim_locked (s_handle_t *self, void *arg)
{
    s_claim_args_t *args = (s_claim_args_t *) arg;
    sqlite3_stmt *due = s_stmt (self, S_OUTBOX_DUE);
    if (!due)
        return AL_STORE_ERR_IO;
    sqlite3_bind_int64 (due, 1, (sqlite3_int64) args->now_ms);
    int rc = sqlite3_step (due);
    if (rc != SQLITE_ROW) {
        sqlite3_reset (due);
        return rc == SQLITE_DONE? AL_STORE_NOT_FOUND: s_db_error (self, "claiming outbox item");
    }
    free (self->claim_channel);
    free (self->claim_payload);
    free (self->claim_error);
    al_store_outbox_item_t *item = args->item;
    item->id = (uint64_t) sqlite3_column_int64 (due, 0);
    item->sequence = (uint64_t) sqlite3_column_int64 (due, 1);
    self->claim_channel = strdup (s_column_text (due, 2));
    item->payload_size = (size_t) sqlite3_column_bytes (due, 3);
    self->claim_payload = malloc (item->payload_size + 1);
    if (self->claim_payload && item->payload_size)
        memcpy (self->claim_payload, sqlite3_column_blob (due, 3), item->payload_size);
    item->attempts = (uint32_t) sqlite3_column_int64 (due, 4) + 1;
    self->claim_error = strdup (s_column_text (due, 5));
    sqlite3_reset (due);
    if (!self->claim_channel || !self->claim_payload || !self->claim_error) {
        s_set_error (self, "out of memory");
        return AL_STORE_ERR_NOMEM;
    }
    item->channel = self->claim_channel;
    item->payload = self->claim_payload;
    item->last_error = self->claim_error;
    sqlite3_stmt *lease = s_stmt (self, S_OUTBOX_LEASE);
    if (!lease)
        return AL_STORE_ERR_IO;
    sqlite3_bind_int64 (lease, 1, (sqlite3_int64) item->id);
    sqlite3_bind_int64 (lease, 2, (sqlite3_int64) (args->now_ms + args->lease_ms));
    return s_run (self, lease, "leasing outbox item");
}

static al_store_status_t
s_outbox_claim (void *handle, uint64_t now_ms, uint64_t lease_ms, al_store_outbox_item_t *item)
{
    s_claim_args_t args = { now_ms, lease_ms, item };
    return s_in_transaction ((s_handle_t *) handle, s_outbox_claim_locked, &args);
}

static al_store_status_t
s_outbox_mark_sent (void *handle, uint64_t id, uint64_t sent_ms)
{
    s_handle_t *self = (s_handle_t *) handle;
    sqlite3_stmt *stmt = s_stmt (self, S_OUTBOX_SENT);
    if (!stmt)
        return AL_STORE_ERR_IO;
    sqlite3_bind_int64 (stmt, 1, (sqlite3_int64) id);
    sqlite3_bind_int64 (stmt, 2, (sqlite3_int64) sent_ms);
    al_store_status_t status = s_run (self, stmt, "marking outbox item sent");
    if (status == AL_STORE_OK && sqlite3_changes (self->db) == 0)
        status = AL_STORE_NOT_FOUND;
    return status;
}

static al_store_status_t
s_outbox_retry_at (void *handle, uint64_t id, uint64_t next_attempt_ms, const char *error)
{
    s_handle_t *self = (s_handle_t *) handle;
    sqlite3_stmt *stmt = s_stmt (self, S_OUTBOX_RETRY);
    if (!stmt)
        return AL_STORE_ERR_IO;
    sqlite3_bind_int64 (stmt, 1, (sqlite3_int64) id);
    sqlite3_bind_int64 (stmt, 2, (sqlite3_int64) next_attempt_ms);
    sqlite3_bind_text (stmt, 3, error? error: "", -1, SQLITE_STATIC);
    al_store_status_t status = s_run (self, stmt, "rescheduling outbox item");
    if (status == AL_STORE_OK && sqlite3_changes (self->db) == 0)
        status = AL_STORE_NOT_FOUND;
    return status;
}

static al_store_status_t
s_approval_consume (void *handle, const uint8_t *approval_id, size_t size, uint64_t sequence)
{
    s_handle_t *self = (s_handle_t *) handle;
    sqlite3_stmt *stmt = s_stmt (self, S_APPROVAL);
    if (!stmt)
        return AL_STORE_ERR_IO;
    sqlite3_bind_blob64 (stmt, 1, approval_id, size, SQLITE_STATIC);
    sqlite3_bind_int64 (stmt, 2, (sqlite3_int64) sequence);
    al_store_status_t status = s_run (self, stmt, "consuming approval");
    if (status == AL_STORE_OK && sqlite3_changes (self->db) == 0)
        status = AL_STORE_ALREADY_USED;
    return status;
}

static al_store_status_t
s_journal_add (void *handle, const al_store_journal_entry_t *entry)
{
    s_handle_t *self = (s_handle_t *) handle;
    sqlite3_stmt *stmt = s_stmt (self, S_JOURNAL_ADD);
    if (!stmt)
        return AL_STORE_ERR_IO;
    sqlite3_bind_text (stmt, 1, entry->deployment_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64 (stmt, 2, (sqlite3_int64) entry->sequence);
    sqlite3_bind_int64 (stmt, 3, (sqlite3_int64) entry->time_ms);
    sqlite3_bind_text (stmt, 4, entry->step, -1, SQLITE_STATIC);
    sqlite3_bind_text (stmt, 5, entry->phase, -1, SQLITE_STATIC);
    sqlite3_bind_text (stmt, 6, entry->status, -1, SQLITE_STATIC);
    sqlite3_bind_text (stmt, 7, entry->detail, -1, SQLITE_STATIC);
    return s_run (self, stmt, "adding journal entry");
}

static al_store_status_t
s_journal_list (void *handle, const char *deployment_id, al_store_journal_fn *fn, void *arg)
{
    s_handle_t *self = (s_handle_t *) handle;
    sqlite3_stmt *stmt = s_stmt (self, S_JOURNAL_LIST);
    if (!stmt)
        return AL_STORE_ERR_IO;
    sqlite3_bind_text (stmt, 1, deployment_id, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step (stmt)) == SQLITE_ROW) {
        al_store_journal_entry_t entry = {
            .sequence = (uint64_t) sqlite3_column_int64 (stmt, 0),
            .time_ms = (uint64_t) sqlite3_column_int64 (stmt, 1),
            .deployment_id = s_column_text (stmt, 2),
            .step = s_column_text (stmt, 3),
            .phase = s_column_text (stmt, 4),
            .status = s_column_text (stmt, 5),
            .detail = s_column_text (stmt, 6),
        };
        if (fn (&entry, arg) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    al_store_status_t status = rc == SQLITE_DONE? AL_STORE_OK: s_db_error (self, "listing journal");
    sqlite3_reset (stmt);
    return status;
}

const al_store_ops_t al_store_sqlite_ops = {
    .name = "sqlite",
    .version = AL_STORE_OPS_VERSION,
    .open = s_open,
    .close = s_close,
    .error = s_error,
    .head = s_head,
    .begin = s_begin,
    .commit = s_commit,
    .rollback = s_rollback,
    .find_message = s_find_message,
    .insert = s_insert,
    .insert_reports_duplicate = true,
    .get = s_get,
    .iter_open = s_iter_open,
    .iter_next = s_iter_next,
    .iter_close = s_iter_close,
    .delivery_add = s_delivery_add,
    .delivery_ack = s_delivery_ack,
    .delivery_pending = s_delivery_pending,
    .outbox_add = s_outbox_add,
    .outbox_claim = s_outbox_claim,
    .outbox_mark_sent = s_outbox_mark_sent,
    .outbox_retry_at = s_outbox_retry_at,
    .approval_consume = s_approval_consume,
    .journal_add = s_journal_add,
    .journal_list = s_journal_list,
};
