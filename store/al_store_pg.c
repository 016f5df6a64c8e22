/*  al_store_pg.c: the PostgreSQL backend of the audit store (ops table "postgres").

    Same tables as the SQLite backend, in the connection's current schema. Every string
    an agent can influence is stored as bytea, byte for byte: the chain hashes bytes, so
    no encoding conversion may touch them, and a string that is not valid UTF-8 must not
    make the broker's transaction fail. Parameters and results travel in binary.

    Durability: at open a writer checks that fsync is on and synchronous_commit is not
    off (COMMIT then returns only once the WAL is flushed) and refuses to open otherwise.
    Writers serialise on LOCK TABLE events IN EXCLUSIVE MODE taken at begin (readers are
    not blocked), the equivalent of SQLite's BEGIN IMMEDIATE, waiting up to
    busy_timeout_ms (lock_timeout) before AL_STORE_ERR_BUSY. Standalone side-table writes
    are single statements, each its own durable transaction; the outbox claim picks and
    leases its item in one UPDATE (FOR UPDATE SKIP LOCKED). A read-only open sets
    default_transaction_read_only and never creates anything. A connection lost outside a
    transaction is re-established at the next begin.

    Pipelining: inside a transaction, the writes whose result the caller does not need
    (event insert, delivery add, journal add) are sent in libpq's pipeline mode without
    waiting; the next call that needs an answer (the next de-duplication lookup, commit)
    sends its own query behind them, syncs, and reads every result in order, so an append
    costs one round trip instead of two. The first error of a deferred write is reported
    by that next call, at the latest by commit, which then fails: PostgreSQL aborts the
    whole transaction at the first error, so nothing of it can be committed.

    The iterator reads in keyset-paginated batches (seq > last ORDER BY seq LIMIT n), so
    it never holds the connection between calls and sees rows exactly as stored.

    The side tables' members are in al_store_pg_side.c; what both files share (the
    handle, parameters, running statements) is in al_store_pg_int.h.

    Threading: a handle (one connection) belongs to one thread; verify opens one handle
    per worker thread.
*/
#include "base/al_error.h"
#include "store/al_store_pg.h"
#include "store/al_store_pg_int.h"
#include <libpq-fe.h>
#include <assert.h>
#include <inttypes.h>
#include <endian.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#define S_ITER_BATCH 2048
//  Serialises schema creation by concurrent first opens (any constant of our own).
#define S_SCHEMA_LOCK_KEY "7164540183125131521"

static const char *s_schema =
    "CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL);"
    "CREATE TABLE events ("
    "  seq bigint PRIMARY KEY, time_ms bigint NOT NULL, sender bytea NOT NULL,"
    "  role bytea NOT NULL, type bytea NOT NULL, message_id bytea NOT NULL,"
    "  deployment_id bytea NOT NULL, environment bytea NOT NULL, decision bigint NOT NULL,"
    "  reason bytea NOT NULL, envelope bytea NOT NULL, hash bytea NOT NULL);"
    "CREATE UNIQUE INDEX events_message ON events (sender, message_id) WHERE message_id <> '';"
    "CREATE TABLE deliveries (role bytea NOT NULL, seq bigint NOT NULL, PRIMARY KEY (role, seq));"
    "CREATE TABLE outbox (id bigserial PRIMARY KEY, seq bigint NOT NULL, channel bytea NOT NULL,"
    "  payload bytea NOT NULL, attempts bigint NOT NULL DEFAULT 0,"
    "  next_attempt_ms bigint NOT NULL DEFAULT 0, lease_until_ms bigint NOT NULL DEFAULT 0,"
    "  sent_ms bigint, last_error bytea NOT NULL DEFAULT '');"
    "CREATE INDEX outbox_due ON outbox (next_attempt_ms, id) WHERE sent_ms IS NULL;"
    "CREATE TABLE approvals_used (approval_id bytea PRIMARY KEY, seq bigint NOT NULL);"
    "CREATE TABLE journal (id bigserial PRIMARY KEY, deployment_id bytea NOT NULL,"
    "  seq bigint NOT NULL, time_ms bigint NOT NULL, step bytea NOT NULL, phase bytea NOT NULL,"
    "  status bytea NOT NULL, detail bytea NOT NULL);"
    "CREATE INDEX journal_deployment ON journal (deployment_id, id);"
    "INSERT INTO meta (key, value) VALUES ('application', '" AL_STORE_META_APPLICATION "'), ('schema_version', '1');";

#define S_EVENT_COLUMNS "seq, time_ms, sender, role, type, message_id, deployment_id, environment, " \
                        "decision, reason, envelope, hash"

static const char *s_sql [AL_PG_STMT_COUNT] = {
    [AL_PG_HEAD] = "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1",
    [AL_PG_FIND] = "SELECT " S_EVENT_COLUMNS " FROM events WHERE sender = $1::bytea AND message_id = $2::bytea"
               " AND message_id <> ''",
    [AL_PG_INSERT] = "INSERT INTO events (" S_EVENT_COLUMNS ") VALUES ($1::bigint, $2::bigint, $3::bytea,"
                 " $4::bytea, $5::bytea, $6::bytea, $7::bytea, $8::bytea, $9::bigint, $10::bytea,"
                 " $11::bytea, $12::bytea)",
    [AL_PG_GET] = "SELECT " S_EVENT_COLUMNS " FROM events WHERE seq = $1::bigint",
    [AL_PG_ITER] = "SELECT " S_EVENT_COLUMNS " FROM events WHERE seq >= $1::bigint ORDER BY seq LIMIT $2::bigint",
    [AL_PG_DELIVERY_ADD] = "INSERT INTO deliveries (role, seq) VALUES ($1::bytea, $2::bigint)",
    [AL_PG_DELIVERY_ACK] = "DELETE FROM deliveries WHERE role = $1::bytea AND seq = $2::bigint",
    [AL_PG_DELIVERY_PENDING] = "SELECT seq FROM deliveries WHERE role = $1::bytea AND seq > $2::bigint"
                           " ORDER BY seq LIMIT $3::bigint",
    [AL_PG_OUTBOX_ADD] = "INSERT INTO outbox (seq, channel, payload) VALUES ($1::bigint, $2::bytea, $3::bytea)"
                     " RETURNING id",
    [AL_PG_OUTBOX_CLAIM] = "UPDATE outbox SET attempts = attempts + 1, lease_until_ms = $2::bigint"
                       " WHERE id = (SELECT id FROM outbox WHERE sent_ms IS NULL AND next_attempt_ms <= $1::bigint"
                       " AND lease_until_ms <= $1::bigint ORDER BY next_attempt_ms, id LIMIT 1"
                       " FOR UPDATE SKIP LOCKED)"
                       " RETURNING id, seq, channel, payload, attempts, last_error",
    [AL_PG_OUTBOX_SENT] = "UPDATE outbox SET sent_ms = $2::bigint WHERE id = $1::bigint AND sent_ms IS NULL",
    [AL_PG_OUTBOX_RETRY] = "UPDATE outbox SET next_attempt_ms = $2::bigint, lease_until_ms = 0,"
                       " last_error = $3::bytea WHERE id = $1::bigint AND sent_ms IS NULL",
    [AL_PG_APPROVAL] = "INSERT INTO approvals_used (approval_id, seq) VALUES ($1::bytea, $2::bigint)"
                   " ON CONFLICT DO NOTHING",
    [AL_PG_JOURNAL_ADD] = "INSERT INTO journal (deployment_id, seq, time_ms, step, phase, status, detail)"
                      " VALUES ($1::bytea, $2::bigint, $3::bigint, $4::bytea, $5::bytea, $6::bytea, $7::bytea)",
    [AL_PG_JOURNAL_LIST] = "SELECT seq, time_ms, deployment_id, step, phase, status, detail FROM journal"
                       " WHERE deployment_id = $1::bytea ORDER BY id",
};

static const char *s_stmt_name [AL_PG_STMT_COUNT] = {
    "al_head", "al_find", "al_insert", "al_get", "al_iter", "al_delivery_add", "al_delivery_ack",
    "al_delivery_pending", "al_outbox_add", "al_outbox_claim", "al_outbox_sent", "al_outbox_retry",
    "al_approval", "al_journal_add", "al_journal_list"
};

typedef struct {
    al_pg_handle_t *handle;
    PGresult *batch;
    int row, rows;
    int64_t next_from;
    bool last_batch;
} s_iter_t;

void
al_pg_param_int (al_pg_params_t *params, int64_t value)
{
    assert (params->count < AL_PG_MAX_PARAMS);
    int i = params->count++;
    params->integers [i] = htobe64 ((uint64_t) value);
    params->values [i] = (const char *) &params->integers [i];
    params->lengths [i] = 8;
    params->formats [i] = 1;
}

void
al_pg_param_bytes (al_pg_params_t *params, const void *data, size_t size)
{
    assert (params->count < AL_PG_MAX_PARAMS);
    int i = params->count++;
    params->values [i] = size? (const char *) data: "";
    params->lengths [i] = (int) size;
    params->formats [i] = 1;
}

void
al_pg_param_text (al_pg_params_t *params, const char *text)
{
    text = text? text: "";
    al_pg_param_bytes (params, text, strlen (text));
}

int64_t
al_pg_get_int (const PGresult *result, int row, int column)
{
    if (PQgetisnull (result, row, column))
        return 0;
    const uint8_t *bytes = (const uint8_t *) PQgetvalue (result, row, column);
    int length = PQgetlength (result, row, column);
    uint64_t value = 0;
    for (int i = 0; i < length && i < 8; i++)
        value = (value << 8) | bytes [i];
    if (length == 4)
        return (int32_t) (uint32_t) value;
    return (int64_t) value;
}

//  A bytea column as a string: libpq terminates every value with a zero byte.
const char *
al_pg_get_text (const PGresult *result, int row, int column)
{
    return PQgetisnull (result, row, column)? "": PQgetvalue (result, row, column);
}

static void
s_set_error (al_pg_handle_t *self, const char *format, ...)
{
    char text [400];
    va_list args;
    va_start (args, format);
    al_error_vset (text, sizeof text, format, args);
    va_end (args);
    al_error_set (self->error, sizeof self->error, "%s: %s", self->display, text);
}

//  Records the server's (or the connection's) error for what; maps lock waits to BUSY.
static al_store_status_t
s_db_error (al_pg_handle_t *self, const char *what, const PGresult *result)
{
    const char *message = result? PQresultErrorMessage (result): "";
    if (!message || !*message)
        message = PQerrorMessage (self->conn);
    char text [320];
    snprintf (text, sizeof text, "%s", message && *message? message: "unknown error");
    size_t length = strlen (text);
    while (length && (text [length - 1] == '\n' || text [length - 1] == ' '))
        text [--length] = 0;
    s_set_error (self, "%s: %s", what, text);
    const char *state = result? PQresultErrorField (result, PG_DIAG_SQLSTATE): NULL;
    if (state && (strcmp (state, "55P03") == 0 || strcmp (state, "40P01") == 0
               || strcmp (state, "40001") == 0 || strcmp (state, "57014") == 0))
        return AL_STORE_ERR_BUSY;
    if (state && strcmp (state, "53200") == 0)
        return AL_STORE_ERR_NOMEM;
    return AL_STORE_ERR_IO;
}

static al_store_status_t
s_prepare (al_pg_handle_t *self, al_pg_stmt_t id, const char *what)
{
    if (self->prepared [id])
        return AL_STORE_OK;
    PGresult *prepared = PQprepare (self->conn, s_stmt_name [id], s_sql [id], 0, NULL);
    al_store_status_t status = AL_STORE_OK;
    if (PQresultStatus (prepared) != PGRES_COMMAND_OK)
        status = s_db_error (self, what, prepared);
    else
        self->prepared [id] = true;
    PQclear (prepared);
    return status;
}

//  Syncs the pipeline and reads the result of every query sent into it, in order; the
//  last one's result goes to *last_p when last_p is not NULL (and all went well). Leaves
//  pipeline mode. The first error wins (later queries were skipped by the server).
static al_store_status_t
s_drain (al_pg_handle_t *self, PGresult **last_p)
{
    assert (self->pipeline);
    al_store_status_t status = AL_STORE_OK;
    if (!PQpipelineSync (self->conn))
        status = s_db_error (self, "pipeline sync", NULL);
    //  Each query yields one result (PGRES_PIPELINE_ABORTED after an earlier error) and a
    //  NULL; then comes the sync point. A broken connection yields NULL early.
    bool broken = false;
    for (int i = 0; i < self->pending && !broken; i++) {
        PGresult *result = PQgetResult (self->conn);
        if (!result) {
            if (status == AL_STORE_OK)
                status = s_db_error (self, self->pending_what [i], NULL);
            broken = true;
            break;
        }
        ExecStatusType state = PQresultStatus (result);
        if (status == AL_STORE_OK && state != PGRES_COMMAND_OK && state != PGRES_TUPLES_OK)
            status = s_db_error (self, self->pending_what [i], result);
        if (status == AL_STORE_OK && last_p && i == self->pending - 1)
            *last_p = result;
        else
            PQclear (result);
        PQclear (PQgetResult (self->conn));
    }
    if (!broken)
        PQclear (PQgetResult (self->conn));         // the sync point
    self->pending = 0;
    if (!PQexitPipelineMode (self->conn) && status == AL_STORE_OK)
        status = s_db_error (self, "leaving pipeline mode", NULL);
    self->pipeline = false;
    return status;
}

//  Reads every deferred result; AL_STORE_OK when all of them succeeded.
static al_store_status_t
s_settle (al_pg_handle_t *self)
{
    return self->pipeline? s_drain (self, NULL): AL_STORE_OK;
}

//  Sends a prepared statement into the pipeline without reading its result.
static al_store_status_t
s_send (al_pg_handle_t *self, al_pg_stmt_t id, const al_pg_params_t *params, const char *what)
{
    if (!self->prepared [id]) {
        //  Preparing is synchronous: once per statement and session.
        al_store_status_t status = s_settle (self);
        if (status == AL_STORE_OK)
            status = s_prepare (self, id, what);
        if (status != AL_STORE_OK)
            return status;
    }
    if (!self->pipeline) {
        if (!PQenterPipelineMode (self->conn))
            return s_db_error (self, "entering pipeline mode", NULL);
        self->pipeline = true;
    }
    assert (self->pending < AL_PG_STMT_COUNT);
    if (!PQsendQueryPrepared (self->conn, s_stmt_name [id], params->count, params->values,
                              params->lengths, params->formats, 1))
        return s_db_error (self, what, NULL);
    self->pending_what [self->pending++] = what;
    return AL_STORE_OK;
}

//  Runs a prepared statement (preparing it on first use); returns the result or NULL
//  with the error set (*status_p). Deferred writes go first, in the same round trip.
PGresult *
al_pg_exec (al_pg_handle_t *self, al_pg_stmt_t id, const al_pg_params_t *params, const char *what,
        al_store_status_t *status_p)
{
    assert (id < AL_PG_STMT_COUNT);
    PGresult *result = NULL;
    if (self->pipeline) {
        *status_p = s_send (self, id, params, what);
        if (*status_p == AL_STORE_OK)
            *status_p = s_drain (self, &result);
        else
        if (self->pipeline)
            s_drain (self, NULL);
        if (*status_p != AL_STORE_OK) {
            PQclear (result);
            return NULL;
        }
        return result;
    }
    *status_p = s_prepare (self, id, what);
    if (*status_p != AL_STORE_OK)
        return NULL;
    result = PQexecPrepared (self->conn, s_stmt_name [id], params->count, params->values,
                             params->lengths, params->formats, 1);
    ExecStatusType status = PQresultStatus (result);
    if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
        *status_p = s_db_error (self, what, result);
        PQclear (result);
        return NULL;
    }
    *status_p = AL_STORE_OK;
    return result;
}

//  A write whose result nobody reads: deferred inside a transaction (its error surfaces
//  at the next call that reads, at the latest commit), else run now.
al_store_status_t
al_pg_write_deferred (al_pg_handle_t *self, al_pg_stmt_t id, const al_pg_params_t *params, const char *what)
{
    if (!self->in_transaction) {
        al_store_status_t status;
        PGresult *result = al_pg_exec (self, id, params, what, &status);
        PQclear (result);
        return status;
    }
    if (self->pending == AL_PG_STMT_COUNT) {
        //  Bound the queue (and the parameters it refers to: libpq copies them on send).
        al_store_status_t status = s_settle (self);
        if (status != AL_STORE_OK)
            return status;
    }
    return s_send (self, id, params, what);
}

//  Runs a prepared write; AL_STORE_OK, or zero_status when it touched no row.
al_store_status_t
al_pg_write (al_pg_handle_t *self, al_pg_stmt_t id, const al_pg_params_t *params, const char *what,
         al_store_status_t zero_status)
{
    al_store_status_t status;
    PGresult *result = al_pg_exec (self, id, params, what, &status);
    if (!result)
        return status;
    const char *tuples = PQcmdTuples (result);
    if (tuples && strcmp (tuples, "0") == 0)
        status = zero_status;
    PQclear (result);
    return status;
}

//  A simple query in text format: the first value (malloc'd, NULL if no row) or -1.
static int
s_query_text (al_pg_handle_t *self, const char *sql, const char *what, char **value_p)
{
    *value_p = NULL;
    if (s_settle (self) != AL_STORE_OK)
        return -1;
    PGresult *result = PQexec (self->conn, sql);
    ExecStatusType status = PQresultStatus (result);
    if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
        s_db_error (self, what, result);
        PQclear (result);
        return -1;
    }
    if (status == PGRES_TUPLES_OK && PQntuples (result) > 0 && PQnfields (result) > 0) {
        *value_p = strdup (PQgetvalue (result, 0, 0));
        if (!*value_p) {
            s_set_error (self, "%s: out of memory", what);
            PQclear (result);
            return -1;
        }
    }
    PQclear (result);
    return 0;
}

static int
s_command (al_pg_handle_t *self, const char *sql, const char *what)
{
    char *ignored = NULL;
    int rc = s_query_text (self, sql, what, &ignored);
    free (ignored);
    return rc;
}

void
al_pg_end_loan (al_pg_handle_t *self)
{
    PQclear (self->loan);
    self->loan = NULL;
}

PGconn *
al_store_pg_connection (void *handle)
{
    assert (handle);
    al_pg_handle_t *self = (al_pg_handle_t *) handle;
    return s_settle (self) == AL_STORE_OK? self->conn: NULL;
}

static const char *
s_error (void *handle)
{
    return ((al_pg_handle_t *) handle)->error;
}

static void
s_close (void *handle)
{
    al_pg_handle_t *self = (al_pg_handle_t *) handle;
    if (!self)
        return;
    al_pg_end_loan (self);
    if (self->conn) {
        if (self->pipeline)
            s_drain (self, NULL);
        if (PQtransactionStatus (self->conn) != PQTRANS_IDLE
        &&  PQtransactionStatus (self->conn) != PQTRANS_UNKNOWN)
            PQclear (PQexec (self->conn, "ROLLBACK"));
        PQfinish (self->conn);
    }
    free (self->dsn);
    free (self->display);
    free (self);
}

char *
al_store_pg_dsn_display (const char *dsn)
{
    char *error = NULL;
    PQconninfoOption *options = PQconninfoParse (dsn, &error);
    PQfreemem (error);
    if (!options)
        return strdup ("postgres (connection string not parseable)");
    char text [512] = "";
    size_t used = 0;
    static const char *shown [] = { "host", "hostaddr", "port", "dbname", "user" };
    for (PQconninfoOption *option = options; option->keyword; option++) {
        if (!option->val || !*option->val)
            continue;
        for (size_t i = 0; i < sizeof shown / sizeof shown [0]; i++)
            if (strcmp (option->keyword, shown [i]) == 0 && used < sizeof text) {
                snprintf (text + used, sizeof text - used, "%s%s=%s", used? " ": "", option->keyword, option->val);
                used = strlen (text);
            }
    }
    PQconninfoFree (options);
    char *display = NULL;
    if (asprintf (&display, "postgres:%s%s", used? " ": "", used? text: " (libpq defaults)") < 0)
        return NULL;
    return display;
}

int
al_store_pg_dsn_has_password (const char *dsn, char *error, size_t error_size)
{
    char *parse_error = NULL;
    PQconninfoOption *options = PQconninfoParse (dsn, &parse_error);
    PQfreemem (parse_error);
    if (!options) {
        snprintf (error, error_size, "not a libpq connection string (key=value pairs or a postgresql:// URI)");
        return -1;
    }
    int found = 0;
    for (PQconninfoOption *option = options; option->keyword; option++)
        if (strcmp (option->keyword, "password") == 0 && option->val && *option->val)
            found = 1;
    PQconninfoFree (options);
    return found;
}

//  Session settings, again after a reconnect (prepared statements are per session).
static int
s_session_setup (al_pg_handle_t *self)
{
    memset (self->prepared, 0, sizeof self->prepared);
    self->pipeline = false;
    self->pending = 0;
    self->in_transaction = false;
    char sql [160];
    snprintf (sql, sizeof sql, "SET lock_timeout = %d", self->busy_timeout_ms);
    if (s_command (self, sql, "setting lock_timeout") != 0)
        return -1;
    if (self->read_only
    &&  s_command (self, "SET default_transaction_read_only = on", "setting read-only") != 0)
        return -1;
    return 0;
}

//  Durability is not negotiable: fsync on and synchronous_commit not off.
static int
s_check_durability (al_pg_handle_t *self)
{
    char *value = NULL;
    int rc = -1;
    if (s_query_text (self, "SHOW fsync", "reading fsync", &value) != 0)
        goto cleanup;
    if (!value || strcmp (value, "on") != 0) {
        s_set_error (self, "fsync=%s: commits would not survive a crash; the server must run with fsync=on",
                     value? value: "?");
        goto cleanup;
    }
    free (value);
    value = NULL;
    if (s_query_text (self, "SHOW synchronous_commit", "reading synchronous_commit", &value) != 0)
        goto cleanup;
    if (!value || strcmp (value, "off") == 0) {
        s_set_error (self, "synchronous_commit=%s: a commit could return before it is durable; set it to on",
                     value? value: "?");
        goto cleanup;
    }
    rc = 0;
cleanup:
    free (value);
    return rc;
}

static int
s_check_schema (al_pg_handle_t *self, const al_store_options_t *options)
{
    char *value = NULL;
    int rc = -1;
    if (s_query_text (self, "SELECT to_regclass('meta') IS NOT NULL", "reading schema", &value) != 0)
        goto cleanup;
    if (!value || strcmp (value, "t") != 0) {
        free (value);
        value = NULL;
        if (s_query_text (self, "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()",
                          "reading schema", &value) != 0)
            goto cleanup;
        if (!value || strcmp (value, "0") != 0) {
            s_set_error (self, "not an airlock audit database (no meta table)");
            goto cleanup;
        }
        if (options->read_only) {
            s_set_error (self, "empty database (no audit log)");
            goto cleanup;
        }
        if (!options->create) {
            s_set_error (self, "no audit log (and not asked to create one)");
            goto cleanup;
        }
        //  Two first opens at once: the second waits, then finds the tables made.
        free (value);
        value = NULL;
        if (s_command (self, "BEGIN; SELECT pg_advisory_xact_lock(" S_SCHEMA_LOCK_KEY ")",
                       "creating schema") != 0
        ||  s_query_text (self, "SELECT to_regclass('meta') IS NOT NULL", "creating schema", &value) != 0
        ||  (strcmp (value? value: "f", "t") != 0 && s_command (self, s_schema, "creating schema") != 0)
        ||  s_command (self, "COMMIT", "creating schema") != 0) {
            PQclear (PQexec (self->conn, "ROLLBACK"));
            goto cleanup;
        }
        free (value);
        value = NULL;
    }
    free (value);
    value = NULL;
    if (s_query_text (self, "SELECT value FROM meta WHERE key = 'application'", "reading meta", &value) != 0)
        goto cleanup;
    char reason [256];
    if (al_store_meta_application_check (value, reason, sizeof reason) != 0) {
        s_set_error (self, "%s", reason);
        goto cleanup;
    }
    free (value);
    value = NULL;
    if (s_query_text (self, "SELECT value FROM meta WHERE key = 'schema_version'", "reading meta", &value) != 0)
        goto cleanup;
    if (al_store_meta_version_check (value, reason, sizeof reason) != 0) {
        s_set_error (self, "%s", reason);
        goto cleanup;
    }
    rc = 0;
cleanup:
    free (value);
    return rc;
}

//  Server notices (warnings on shutdown, ...) are not errors; libpq would print them on
//  stderr, which belongs to the program using the store.
static void
s_ignore_notice (void *arg, const char *message)
{
    (void) arg; (void) message;
}

static void *
s_open (const char *path, const al_store_options_t *options, char *error, size_t error_size)
{
    al_pg_handle_t *self = calloc (1, sizeof *self);
    if (!self || !(self->dsn = strdup (path)) || !(self->display = al_store_pg_dsn_display (path))) {
        snprintf (error, error_size, "postgres: out of memory");
        goto failed;
    }
    //  airlock.yaml's store.dsn is checked here, where libpq's parser is: a password in
    //  it would be shown wherever the configuration is; a passfile holds it instead.
    char why [256];
    int password = al_store_pg_dsn_has_password (path, why, sizeof why);
    if (password != 0) {
        snprintf (error, error_size, "store.dsn: %s", password < 0? why:
                  "holds a password; put it in a passfile (passfile=FILE in the dsn, libpq's format) "
                  "so it is never shown");
        goto failed;
    }
    self->read_only = options->read_only;
    self->busy_timeout_ms = options->busy_timeout_ms > 0? options->busy_timeout_ms: 5000;
    self->conn = PQconnectdb (path);
    if (!self->conn) {
        s_set_error (self, "out of memory");
        goto failed;
    }
    if (PQstatus (self->conn) != CONNECTION_OK) {
        s_db_error (self, "cannot connect", NULL);
        goto failed;
    }
    PQsetNoticeProcessor (self->conn, s_ignore_notice, NULL);
    if (s_session_setup (self) != 0)
        goto failed;
    if (!self->read_only && s_check_durability (self) != 0)
        goto failed;
    if (s_check_schema (self, options) != 0)
        goto failed;
    return self;

failed:
    if (self && self->error [0])
        snprintf (error, error_size, "%s", self->error);
    s_close (self);
    return NULL;
}

//  Fills event from a row of S_EVENT_COLUMNS. A malformed row (hash not 32 bytes,
//  decision not 1 or 2) is reported with decision 0 so verify flags it at its sequence.
static void
s_read_event (const PGresult *result, int row, al_store_event_t *event)
{
    event->sequence = (uint64_t) al_pg_get_int (result, row, 0);
    event->time_ms = (uint64_t) al_pg_get_int (result, row, 1);
    event->sender = al_pg_get_text (result, row, 2);
    event->role = al_pg_get_text (result, row, 3);
    event->type = al_pg_get_text (result, row, 4);
    event->message_id = al_pg_get_text (result, row, 5);
    event->deployment_id = al_pg_get_text (result, row, 6);
    event->environment = al_pg_get_text (result, row, 7);
    int64_t decision = al_pg_get_int (result, row, 8);
    event->decision = (decision == AL_STORE_ACCEPTED || decision == AL_STORE_DENIED)
                    ? (al_store_decision_t) decision: (al_store_decision_t) 0;
    event->reason = al_pg_get_text (result, row, 9);
    event->envelope = (const uint8_t *) al_pg_get_text (result, row, 10);
    event->envelope_size = (size_t) PQgetlength (result, row, 10);
    if (!PQgetisnull (result, row, 11) && PQgetlength (result, row, 11) == AL_STORE_HASH_SIZE)
        memcpy (event->hash, PQgetvalue (result, row, 11), AL_STORE_HASH_SIZE);
    else {
        memset (event->hash, 0, AL_STORE_HASH_SIZE);
        event->decision = (al_store_decision_t) 0;
    }
}

static al_store_status_t
s_head (void *handle, uint64_t *rows_p, uint8_t hash [AL_STORE_HASH_SIZE])
{
    al_pg_handle_t *self = (al_pg_handle_t *) handle;
    al_pg_params_t params = { .count = 0 };
    al_store_status_t status;
    *rows_p = 0;
    memset (hash, 0, AL_STORE_HASH_SIZE);
    PGresult *result = al_pg_exec (self, AL_PG_HEAD, &params, "reading head", &status);
    if (!result)
        return status;
    if (PQntuples (result) > 0) {
        *rows_p = (uint64_t) al_pg_get_int (result, 0, 0);
        //  A damaged hash reads as zeros: opening must still work so verify names the row.
        if (PQgetlength (result, 0, 1) == AL_STORE_HASH_SIZE)
            memcpy (hash, PQgetvalue (result, 0, 1), AL_STORE_HASH_SIZE);
    }
    PQclear (result);
    return AL_STORE_OK;
}

//  A connection lost while idle (server restart, failover) is re-established here, at the
//  start of the next transaction, never in the middle of one.
static al_store_status_t
s_reconnect_if_lost (al_pg_handle_t *self)
{
    if (PQstatus (self->conn) == CONNECTION_OK)
        return AL_STORE_OK;
    PQreset (self->conn);
    if (PQstatus (self->conn) != CONNECTION_OK) {
        s_db_error (self, "reconnecting", NULL);
        return AL_STORE_ERR_IO;
    }
    return s_session_setup (self) == 0? AL_STORE_OK: AL_STORE_ERR_IO;
}

static al_store_status_t
s_simple (al_pg_handle_t *self, const char *sql, const char *what)
{
    al_store_status_t status = s_settle (self);
    if (status != AL_STORE_OK)
        return status;
    PGresult *result = PQexec (self->conn, sql);
    if (PQresultStatus (result) != PGRES_COMMAND_OK)
        status = s_db_error (self, what, result);
    PQclear (result);
    return status;
}

static al_store_status_t
s_begin (void *handle)
{
    al_pg_handle_t *self = (al_pg_handle_t *) handle;
    al_pg_end_loan (self);
    al_store_status_t status = s_reconnect_if_lost (self);
    if (status != AL_STORE_OK)
        return status;
    status = s_simple (self, "BEGIN", "begin");
    if (status != AL_STORE_OK)
        return status;
    //  The writers' lock, like SQLite's BEGIN IMMEDIATE: the generic layer re-reads the
    //  head after begin and must see the last committed row.
    status = s_simple (self, "LOCK TABLE events IN EXCLUSIVE MODE", "begin (waiting for the write lock)");
    if (status != AL_STORE_OK)
        PQclear (PQexec (self->conn, "ROLLBACK"));
    else
        self->in_transaction = true;
    return status;
}

//  ---- failover: the fence (docs/ha.md; the lease and airlock_ha.fence() are made by
//  broker/al_leader.c). The last statement before COMMIT: it locks the lease row and
//  raises unless our epoch is the lease's, so a broker that lost the lease while paused
//  commits nothing; the transaction is rolled back here.
static al_store_status_t
s_fence (al_pg_handle_t *self)
{
    char epoch [24];
    snprintf (epoch, sizeof epoch, "%" PRIu64, self->fence_epoch);
    const char *values [] = { epoch };
    PGresult *result = PQexecParams (self->conn, "SELECT airlock_ha.fence($1::bigint)", 1, NULL, values,
                                     NULL, NULL, 0);
    al_store_status_t status = AL_STORE_OK;
    if (PQresultStatus (result) != PGRES_TUPLES_OK) {
        const char *message = PQresultErrorField (result, PG_DIAG_MESSAGE_PRIMARY);
        s_set_error (self, "commit refused: %s", message? message: PQerrorMessage (self->conn));
        PQclear (PQexec (self->conn, "ROLLBACK"));
        self->in_transaction = false;
        status = AL_STORE_ERR_IO;
    }
    PQclear (result);
    return status;
}

static al_store_status_t
s_set_fence (void *handle, uint64_t epoch)
{
    ((al_pg_handle_t *) handle)->fence_epoch = epoch;
    return AL_STORE_OK;
}
//  ---- end of the fence

static al_store_status_t
s_commit (void *handle)
{
    al_pg_handle_t *self = (al_pg_handle_t *) handle;
    al_pg_end_loan (self);
    //  A deferred write that failed fails the commit (the caller then rolls back).
    al_store_status_t settled = s_settle (self);
    if (settled != AL_STORE_OK)
        return settled;
    //  COMMIT of a failed transaction "succeeds" as a ROLLBACK: never report that as done.
    if (PQtransactionStatus (self->conn) == PQTRANS_INERROR) {
        s_set_error (self, "commit: the transaction failed earlier and was rolled back");
        PQclear (PQexec (self->conn, "ROLLBACK"));
        return AL_STORE_ERR_IO;
    }
    if (self->fence_epoch && s_fence (self) != AL_STORE_OK)
        return AL_STORE_ERR_IO;
    PGresult *result = PQexec (self->conn, "COMMIT");
    al_store_status_t status = AL_STORE_OK;
    if (PQresultStatus (result) != PGRES_COMMAND_OK)
        status = s_db_error (self, "commit", result);
    else
    if (strcmp (PQcmdStatus (result), "COMMIT") != 0) {
        s_set_error (self, "commit: the server answered %s", PQcmdStatus (result));
        status = AL_STORE_ERR_IO;
    }
    PQclear (result);
    if (status == AL_STORE_OK)
        self->in_transaction = false;
    return status;
}

static al_store_status_t
s_rollback (void *handle)
{
    al_pg_handle_t *self = (al_pg_handle_t *) handle;
    al_pg_end_loan (self);
    self->in_transaction = false;
    if (self->pipeline)
        s_drain (self, NULL);       // its errors belong to the transaction being abandoned
    PGTransactionStatusType state = PQtransactionStatus (self->conn);
    //  Nothing open (already rolled back by the server, or the connection is gone: the
    //  server rolls back what a lost connection left open).
    if (state == PQTRANS_IDLE || state == PQTRANS_UNKNOWN)
        return AL_STORE_OK;
    return s_simple (self, "ROLLBACK", "rollback");
}

static al_store_status_t
s_event_query (al_pg_handle_t *self, al_pg_stmt_t id, const al_pg_params_t *params, al_store_event_t *event,
               const char *what)
{
    al_pg_end_loan (self);
    al_store_status_t status;
    PGresult *result = al_pg_exec (self, id, params, what, &status);
    if (!result)
        return status;
    if (PQntuples (result) == 0) {
        PQclear (result);
        return AL_STORE_NOT_FOUND;
    }
    s_read_event (result, 0, event);
    self->loan = result;
    return AL_STORE_OK;
}

static al_store_status_t
s_find_message (void *handle, const char *sender, const char *message_id, al_store_event_t *event)
{
    al_pg_params_t params = { .count = 0 };
    al_pg_param_text (&params, sender);
    al_pg_param_text (&params, message_id);
    return s_event_query ((al_pg_handle_t *) handle, AL_PG_FIND, &params, event, "finding message");
}

static al_store_status_t
s_get (void *handle, uint64_t sequence, al_store_event_t *event)
{
    al_pg_params_t params = { .count = 0 };
    al_pg_param_int (&params, (int64_t) sequence);
    return s_event_query ((al_pg_handle_t *) handle, AL_PG_GET, &params, event, "reading event");
}

static al_store_status_t
s_insert (void *handle, const al_store_event_t *event)
{
    al_pg_params_t params = { .count = 0 };
    al_pg_param_int (&params, (int64_t) event->sequence);
    al_pg_param_int (&params, (int64_t) event->time_ms);
    al_pg_param_text (&params, event->sender);
    al_pg_param_text (&params, event->role);
    al_pg_param_text (&params, event->type);
    al_pg_param_text (&params, event->message_id);
    al_pg_param_text (&params, event->deployment_id);
    al_pg_param_text (&params, event->environment);
    al_pg_param_int (&params, (int64_t) event->decision);
    al_pg_param_text (&params, event->reason);
    al_pg_param_bytes (&params, event->envelope, event->envelope_size);
    al_pg_param_bytes (&params, event->hash, AL_STORE_HASH_SIZE);
    return al_pg_write_deferred ((al_pg_handle_t *) handle, AL_PG_INSERT, &params, "inserting event");
}

static void *
s_iter_open (void *handle, uint64_t from_sequence)
{
    al_pg_handle_t *self = (al_pg_handle_t *) handle;
    s_iter_t *iter = calloc (1, sizeof *iter);
    if (!iter) {
        s_set_error (self, "out of memory");
        return NULL;
    }
    iter->handle = self;
    //  From the start, the scan also returns rows numbered 0 or below (they sort first):
    //  nobody may hide a row from verify or replay by giving it a sequence below 1.
    iter->next_from = from_sequence <= 1? INT64_MIN: (int64_t) from_sequence;
    return iter;
}

static al_store_status_t
s_iter_next (void *handle, al_store_event_t *event)
{
    s_iter_t *iter = (s_iter_t *) handle;
    if (iter->row >= iter->rows) {
        PQclear (iter->batch);
        iter->batch = NULL;
        iter->row = iter->rows = 0;
        if (iter->last_batch)
            return AL_STORE_END;
        al_pg_params_t params = { .count = 0 };
        al_pg_param_int (&params, iter->next_from);
        al_pg_param_int (&params, S_ITER_BATCH);
        al_store_status_t status;
        iter->batch = al_pg_exec (iter->handle, AL_PG_ITER, &params, "reading events", &status);
        if (!iter->batch)
            return status;
        iter->rows = PQntuples (iter->batch);
        if (iter->rows < S_ITER_BATCH)
            iter->last_batch = true;
        if (iter->rows == 0)
            return AL_STORE_END;
        int64_t last = al_pg_get_int (iter->batch, iter->rows - 1, 0);
        if (last == INT64_MAX)
            iter->last_batch = true;
        else
            iter->next_from = last + 1;
    }
    s_read_event (iter->batch, iter->row++, event);
    return AL_STORE_OK;
}

static void
s_iter_close (void *handle)
{
    s_iter_t *iter = (s_iter_t *) handle;
    if (iter) {
        PQclear (iter->batch);
        free (iter);
    }
}

const al_store_ops_t al_store_pg_ops = {
    .name = AL_STORE_PG_BACKEND,
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
    .get = s_get,
    .iter_open = s_iter_open,
    .iter_next = s_iter_next,
    .iter_close = s_iter_close,
    .delivery_add = al_pg_delivery_add,
    .delivery_ack = al_pg_delivery_ack,
    .delivery_pending = al_pg_delivery_pending,
    .outbox_add = al_pg_outbox_add,
    .outbox_claim = al_pg_outbox_claim,
    .outbox_mark_sent = al_pg_outbox_mark_sent,
    .outbox_retry_at = al_pg_outbox_retry_at,
    .approval_consume = al_pg_approval_consume,
    .journal_add = al_pg_journal_add,
    .journal_list = al_pg_journal_list,
    .set_fence = s_set_fence,
};
