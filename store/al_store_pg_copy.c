/*  al_store_pg_copy.c: copy a SQLite audit log into PostgreSQL and compare the two; see
    al_store_pg_copy.h.

    Events go through the generic API on the source (iterator) and the PostgreSQL
    backend's ops on the target (begin, insert with the source's hash, commit), so the
    copy is one transaction holding the writers' lock. The chain is recomputed from the
    source's row bytes as they stream (al_store_row_encode, al_store_chain_hash): a broken
    source is refused, never copied. The store API has no way to enumerate side tables,
    so they are read from the SQLite file directly (read-only, schema of
    al_store_sqlite.c) and written on the backend's connection inside the same
    transaction; compare reads them the same way from both sides. A side-table row is
    compared in a canonical form: integers as 8 big-endian bytes (with a NULL flag),
    strings and blobs as a length and their bytes.

    Threading: the caller's thread only.
*/
#include "store/al_store_pg_copy.h"
#include "store/al_store_pg.h"
#include "store/al_store_pg_int.h"
#include <sqlite3.h>
#include <assert.h>
#include <endian.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_COLUMNS 9

//  The side tables, their columns and kinds: i integer, n integer or NULL, b bytes.
typedef struct {
    const char *name;
    const char *columns;
    const char *kinds;
    const char *order;
} s_table_t;

static const s_table_t s_tables [] = {
    { "deliveries", "role, seq", "bi", "role, seq" },
    { "outbox", "id, seq, channel, payload, attempts, next_attempt_ms, lease_until_ms, sent_ms, last_error",
      "iibbiiinb", "id" },
    { "approvals_used", "approval_id, seq", "bi", "approval_id" },
    { "journal", "id, deployment_id, seq, time_ms, step, phase, status, detail", "ibiibbbb", "id" },
};
#define S_TABLE_COUNT (sizeof s_tables / sizeof s_tables [0])

static void
s_reason (al_store_copy_report_t *report, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    vsnprintf (report->reason, sizeof report->reason, format, args);
    va_end (args);
}

static uint64_t *
s_table_count (al_store_copy_report_t *report, size_t table)
{
    uint64_t *counts [] = { &report->deliveries, &report->outbox, &report->approvals, &report->journal };
    return counts [table];
}

//  A growing byte buffer for canonical rows.
typedef struct {
    uint8_t *data;
    size_t size, capacity;
} s_buffer_t;

static int
s_put (s_buffer_t *buffer, const void *data, size_t size)
{
    if (buffer->size + size > buffer->capacity) {
        size_t capacity = (buffer->size + size) * 2 + 64;
        uint8_t *bigger = realloc (buffer->data, capacity);
        if (!bigger)
            return -1;
        buffer->data = bigger;
        buffer->capacity = capacity;
    }
    if (size && data)               // NULL data only reserves room
        memcpy (buffer->data + buffer->size, data, size);
    buffer->size += size;
    return 0;
}

static int
s_put_int (s_buffer_t *buffer, bool null, int64_t value)
{
    uint8_t flag = null? 0: 1;
    uint64_t big = htobe64 ((uint64_t) value);
    return s_put (buffer, &flag, 1) || s_put (buffer, &big, 8);
}

static int
s_put_bytes (s_buffer_t *buffer, const void *data, size_t size)
{
    uint32_t length = htobe32 ((uint32_t) size);
    return s_put (buffer, &length, 4) || s_put (buffer, data, size);
}

//  Canonical form of the current SQLite row.
static int
s_canonical_sqlite (sqlite3_stmt *stmt, const char *kinds, s_buffer_t *buffer)
{
    buffer->size = 0;
    for (int i = 0; kinds [i]; i++) {
        bool null = sqlite3_column_type (stmt, i) == SQLITE_NULL;
        if (kinds [i] == 'b') {
            const void *data = sqlite3_column_blob (stmt, i);
            if (s_put_bytes (buffer, data, data? (size_t) sqlite3_column_bytes (stmt, i): 0))
                return -1;
        }
        else
        if (s_put_int (buffer, null, null? 0: sqlite3_column_int64 (stmt, i)))
            return -1;
    }
    return 0;
}

//  Canonical form of a PostgreSQL row (binary results).
static int
s_canonical_pg (const PGresult *result, int row, const char *kinds, s_buffer_t *buffer)
{
    buffer->size = 0;
    for (int i = 0; kinds [i]; i++) {
        bool null = PQgetisnull (result, row, i);
        const char *data = PQgetvalue (result, row, i);
        int length = PQgetlength (result, row, i);
        if (kinds [i] == 'b') {
            if (s_put_bytes (buffer, data, null? 0: (size_t) length))
                return -1;
        }
        else {
            int64_t value = 0;
            if (!null && length == 8) {
                uint64_t big;
                memcpy (&big, data, 8);
                value = (int64_t) be64toh (big);
            }
            if (s_put_int (buffer, null, value))
                return -1;
        }
    }
    return 0;
}

static sqlite3 *
s_sqlite_open (const char *path, al_store_copy_report_t *report)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2 (path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        s_reason (report, "%s: cannot open: %s", path, db? sqlite3_errmsg (db): "out of memory");
        sqlite3_close (db);
        return NULL;
    }
    sqlite3_busy_timeout (db, 5000);
    return db;
}

static sqlite3_stmt *
s_sqlite_select (sqlite3 *db, const s_table_t *table, const char *path, al_store_copy_report_t *report)
{
    char sql [512];
    snprintf (sql, sizeof sql, "SELECT %s FROM %s ORDER BY %s", table->columns, table->name, table->order);
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2 (db, sql, -1, &stmt, NULL) != SQLITE_OK) {
        s_reason (report, "%s: %s: %s", path, table->name, sqlite3_errmsg (db));
        return NULL;
    }
    return stmt;
}

//  Copies one side table from SQLite into the open PostgreSQL transaction.
static al_store_status_t
s_copy_table (sqlite3 *db, PGconn *conn, size_t index, const char *path, al_store_copy_report_t *report)
{
    const s_table_t *table = &s_tables [index];
    al_store_status_t status = AL_STORE_ERR_IO;
    sqlite3_stmt *stmt = s_sqlite_select (db, table, path, report);
    PGresult *result = NULL;
    if (!stmt)
        return AL_STORE_ERR_IO;
    char sql [1024];
    int used = snprintf (sql, sizeof sql, "INSERT INTO %s (%s) VALUES (", table->name, table->columns);
    int columns = (int) strlen (table->kinds);
    assert (columns <= S_MAX_COLUMNS);
    for (int i = 0; i < columns; i++)
        used += snprintf (sql + used, sizeof sql - (size_t) used, "%s$%d::%s", i? ", ": "", i + 1,
                          table->kinds [i] == 'b'? "bytea": "bigint");
    snprintf (sql + used, sizeof sql - (size_t) used, ")");
    char name [64];
    snprintf (name, sizeof name, "al_copy_%s", table->name);
    result = PQprepare (conn, name, sql, 0, NULL);
    if (PQresultStatus (result) != PGRES_COMMAND_OK) {
        s_reason (report, "%s: %s", table->name, PQresultErrorMessage (result));
        goto cleanup;
    }
    PQclear (result);
    result = NULL;
    int rc;
    while ((rc = sqlite3_step (stmt)) == SQLITE_ROW) {
        const char *values [S_MAX_COLUMNS];
        int lengths [S_MAX_COLUMNS], formats [S_MAX_COLUMNS];
        uint64_t integers [S_MAX_COLUMNS];
        for (int i = 0; i < columns; i++) {
            formats [i] = 1;
            if (sqlite3_column_type (stmt, i) == SQLITE_NULL && table->kinds [i] == 'n') {
                values [i] = NULL;
                lengths [i] = 0;
            }
            else
            if (table->kinds [i] == 'b') {
                const void *data = sqlite3_column_blob (stmt, i);
                values [i] = data? (const char *) data: "";
                lengths [i] = data? sqlite3_column_bytes (stmt, i): 0;
            }
            else {
                integers [i] = htobe64 ((uint64_t) sqlite3_column_int64 (stmt, i));
                values [i] = (const char *) &integers [i];
                lengths [i] = 8;
            }
        }
        result = PQexecPrepared (conn, name, columns, values, lengths, formats, 1);
        if (PQresultStatus (result) != PGRES_COMMAND_OK) {
            s_reason (report, "%s: %s", table->name, PQresultErrorMessage (result));
            goto cleanup;
        }
        PQclear (result);
        result = NULL;
        (*s_table_count (report, index))++;
    }
    if (rc != SQLITE_DONE) {
        s_reason (report, "%s: %s: %s", path, table->name, sqlite3_errmsg (db));
        goto cleanup;
    }
    //  Later ids (new outbox items, journal entries) continue after the copied ones.
    if (strstr (table->columns, "id, ") == table->columns) {
        snprintf (sql, sizeof sql, "SELECT setval(pg_get_serial_sequence('%s', 'id'),"
                  " GREATEST((SELECT max(id) FROM %s), 1))", table->name, table->name);
        result = PQexec (conn, sql);
        if (PQresultStatus (result) != PGRES_TUPLES_OK) {
            s_reason (report, "%s: %s", table->name, PQresultErrorMessage (result));
            goto cleanup;
        }
    }
    status = AL_STORE_OK;
cleanup:
    PQclear (result);
    sqlite3_finalize (stmt);
    return status;
}

//  Compares one side table; sets report->equal false with the reason at the first difference.
static al_store_status_t
s_compare_table (sqlite3 *db, PGconn *conn, size_t index, const char *path, al_store_copy_report_t *report)
{
    const s_table_t *table = &s_tables [index];
    al_store_status_t status = AL_STORE_ERR_IO;
    s_buffer_t left = { 0 }, right = { 0 };
    sqlite3_stmt *stmt = s_sqlite_select (db, table, path, report);
    if (!stmt)
        return AL_STORE_ERR_IO;
    char sql [512];
    snprintf (sql, sizeof sql, "SELECT %s FROM %s ORDER BY %s", table->columns, table->name, table->order);
    PGresult *result = PQexecParams (conn, sql, 0, NULL, NULL, NULL, NULL, 1);
    if (PQresultStatus (result) != PGRES_TUPLES_OK) {
        s_reason (report, "%s: %s", table->name, PQresultErrorMessage (result));
        goto cleanup;
    }
    int rows = PQntuples (result);
    int row = 0;
    int rc;
    while ((rc = sqlite3_step (stmt)) == SQLITE_ROW) {
        if (row == rows) {
            report->equal = false;
            s_reason (report, "%s: the copy has %d rows, the source more", table->name, rows);
            status = AL_STORE_OK;
            goto cleanup;
        }
        if (s_canonical_sqlite (stmt, table->kinds, &left) || s_canonical_pg (result, row, table->kinds, &right)) {
            s_reason (report, "out of memory");
            status = AL_STORE_ERR_NOMEM;
            goto cleanup;
        }
        if (left.size != right.size || memcmp (left.data, right.data, left.size) != 0) {
            report->equal = false;
            s_reason (report, "%s: row %d (in %s order) differs from the source", table->name, row + 1,
                      table->order);
            status = AL_STORE_OK;
            goto cleanup;
        }
        row++;
    }
    if (rc != SQLITE_DONE) {
        s_reason (report, "%s: %s: %s", path, table->name, sqlite3_errmsg (db));
        goto cleanup;
    }
    if (row != rows) {
        report->equal = false;
        s_reason (report, "%s: the copy has %d rows, the source %d", table->name, rows, row);
    }
    *s_table_count (report, index) = (uint64_t) row;
    status = AL_STORE_OK;
cleanup:
    PQclear (result);
    sqlite3_finalize (stmt);
    free (left.data);
    free (right.data);
    return status;
}

//  Events: the same rows in the same order, byte for byte, hashes included.
static al_store_status_t
s_compare_events (al_store_t *source, al_store_t *target, al_store_copy_report_t *report)
{
    al_store_status_t status = AL_STORE_ERR_NOMEM;
    al_store_iter_t *left = al_store_iter_new (source, 1);
    al_store_iter_t *right = al_store_iter_new (target, 1);
    s_buffer_t left_row = { 0 }, right_row = { 0 };
    if (!left || !right) {
        s_reason (report, "%s", al_store_error (left? target: source));
        status = AL_STORE_ERR_IO;
        goto cleanup;
    }
    while (true) {
        al_store_event_t a, b;
        al_store_status_t sa = al_store_iter_next (left, &a);
        al_store_status_t sb = al_store_iter_next (right, &b);
        if (sa != AL_STORE_OK && sa != AL_STORE_END) {
            s_reason (report, "%s", al_store_error (source));
            status = sa;
            goto cleanup;
        }
        if (sb != AL_STORE_OK && sb != AL_STORE_END) {
            s_reason (report, "%s", al_store_error (target));
            status = sb;
            goto cleanup;
        }
        if (sa == AL_STORE_END && sb == AL_STORE_END)
            break;
        if (sa == AL_STORE_END || sb == AL_STORE_END) {
            report->equal = false;
            report->first_bad_sequence = sa == AL_STORE_END? b.sequence: a.sequence;
            s_reason (report, "row %llu is only in the %s", (unsigned long long) report->first_bad_sequence,
                      sa == AL_STORE_END? "copy": "source");
            status = AL_STORE_OK;
            goto cleanup;
        }
        size_t sa_size = al_store_row_encode (&a, NULL, 0);
        size_t sb_size = al_store_row_encode (&b, NULL, 0);
        left_row.size = right_row.size = 0;
        if (s_put (&left_row, NULL, sa_size) || s_put (&right_row, NULL, sb_size)) {
            s_reason (report, "out of memory");
            goto cleanup;
        }
        al_store_row_encode (&a, left_row.data, sa_size);
        al_store_row_encode (&b, right_row.data, sb_size);
        if (a.sequence != b.sequence || sa_size != sb_size || memcmp (left_row.data, right_row.data, sa_size) != 0
        ||  memcmp (a.hash, b.hash, AL_STORE_HASH_SIZE) != 0 || a.decision != b.decision) {
            report->equal = false;
            report->first_bad_sequence = a.sequence < b.sequence? a.sequence: b.sequence;
            s_reason (report, "row %llu of the copy differs from the source",
                      (unsigned long long) report->first_bad_sequence);
            status = AL_STORE_OK;
            goto cleanup;
        }
        report->rows++;
        memcpy (report->head_hash, a.hash, AL_STORE_HASH_SIZE);
    }
    status = AL_STORE_OK;
cleanup:
    al_store_iter_destroy (&left);
    al_store_iter_destroy (&right);
    free (left_row.data);
    free (right_row.data);
    return status;
}

al_store_status_t
al_store_pg_compare_with_sqlite (const char *sqlite_path, const char *dsn, al_store_copy_report_t *report)
{
    assert (sqlite_path && dsn && report);
    memset (report, 0, sizeof *report);
    report->equal = true;
    al_store_status_t status = AL_STORE_ERR_IO;
    char error [512];
    al_store_options_t read_only = { .read_only = true };
    al_store_t *source = al_store_open ("sqlite", sqlite_path, &read_only, error, sizeof error);
    al_store_t *target = source? al_store_open (AL_STORE_PG_BACKEND, dsn, &read_only, error, sizeof error): NULL;
    void *handle = target? al_store_pg_ops.open (dsn, &read_only, error, sizeof error): NULL;
    sqlite3 *db = NULL;
    if (!source || !target || !handle) {
        s_reason (report, "%s", error);
        goto cleanup;
    }
    status = s_compare_events (source, target, report);
    if (status != AL_STORE_OK || !report->equal)
        goto cleanup;
    //  The copy must hold on its own too: its stored hashes form the chain.
    al_verify_report_t verify;
    status = al_store_verify (target, NULL, NULL, &verify);
    if (status != AL_STORE_OK) {
        s_reason (report, "%s", al_store_error (target));
        goto cleanup;
    }
    if (verify.result != AL_VERIFY_OK) {
        report->equal = false;
        report->first_bad_sequence = verify.first_bad_sequence;
        s_reason (report, "the copy does not verify: %s: %s", al_verify_result_name (verify.result), verify.reason);
        goto cleanup;
    }
    db = s_sqlite_open (sqlite_path, report);
    if (!db) {
        status = AL_STORE_ERR_IO;
        goto cleanup;
    }
    for (size_t i = 0; i < S_TABLE_COUNT && report->equal; i++) {
        status = s_compare_table (db, al_store_pg_connection (handle), i, sqlite_path, report);
        if (status != AL_STORE_OK)
            goto cleanup;
    }
cleanup:
    sqlite3_close (db);
    if (handle)
        al_store_pg_ops.close (handle);
    al_store_destroy (&target);
    al_store_destroy (&source);
    return status;
}

al_store_status_t
al_store_pg_copy_from_sqlite (const char *sqlite_path, const char *dsn, al_store_copy_report_t *report)
{
    assert (sqlite_path && dsn && report);
    memset (report, 0, sizeof *report);
    const al_store_ops_t *ops = &al_store_pg_ops;
    al_store_status_t status = AL_STORE_ERR_IO;
    char error [512];
    al_store_options_t read_only = { .read_only = true };
    al_store_options_t create = { .create = true };
    al_store_t *source = al_store_open ("sqlite", sqlite_path, &read_only, error, sizeof error);
    void *target = source? ops->open (dsn, &create, error, sizeof error): NULL;
    al_store_iter_t *iter = NULL;
    sqlite3 *db = NULL;
    s_buffer_t row = { 0 };
    bool open_transaction = false;
    if (!source || !target) {
        s_reason (report, "%s", error);
        goto cleanup;
    }
    status = ops->begin (target);
    if (status != AL_STORE_OK) {
        s_reason (report, "%s", ops->error (target));
        goto cleanup;
    }
    open_transaction = true;
    uint64_t rows = 0;
    uint8_t head [AL_STORE_HASH_SIZE];
    status = ops->head (target, &rows, head);
    if (status == AL_STORE_OK && rows > 0) {
        s_reason (report, "the target already holds %llu rows: copy only into an empty log",
                  (unsigned long long) rows);
        status = AL_STORE_ERR_ARGUMENT;
        goto cleanup;
    }
    db = s_sqlite_open (sqlite_path, report);
    iter = db? al_store_iter_new (source, 1): NULL;
    if (!iter) {
        if (db)
            s_reason (report, "%s", al_store_error (source));
        status = AL_STORE_ERR_IO;
        goto cleanup;
    }
    //  Stream the events, recomputing the chain: only an intact source is copied.
    uint8_t chain [AL_STORE_HASH_SIZE] = { 0 };
    al_store_event_t event;
    while ((status = al_store_iter_next (iter, &event)) == AL_STORE_OK) {
        uint64_t expected = report->rows + 1;
        size_t size = al_store_row_encode (&event, NULL, 0);
        row.size = 0;
        if (s_put (&row, NULL, size)) {
            s_reason (report, "out of memory");
            status = AL_STORE_ERR_NOMEM;
            goto cleanup;
        }
        al_store_row_encode (&event, row.data, size);
        al_store_chain_hash (chain, row.data, size, chain);
        if (event.sequence != expected || event.decision == 0
        ||  memcmp (chain, event.hash, AL_STORE_HASH_SIZE) != 0) {
            report->first_bad_sequence = expected;
            s_reason (report, "%s: the source's chain breaks at row %llu: nothing copied "
                      "(airlock audit verify --db %s names the damage)", sqlite_path,
                      (unsigned long long) expected, sqlite_path);
            status = AL_STORE_ERR_HEAD_MISMATCH;
            goto cleanup;
        }
        status = ops->insert (target, &event);
        if (status != AL_STORE_OK) {
            s_reason (report, "%s", ops->error (target));
            goto cleanup;
        }
        report->rows = expected;
        memcpy (report->head_hash, chain, AL_STORE_HASH_SIZE);
    }
    if (status != AL_STORE_END) {
        s_reason (report, "%s", al_store_error (source));
        goto cleanup;
    }
    for (size_t i = 0; i < S_TABLE_COUNT; i++) {
        status = s_copy_table (db, al_store_pg_connection (target), i, sqlite_path, report);
        if (status != AL_STORE_OK)
            goto cleanup;
    }
    status = ops->commit (target);
    if (status != AL_STORE_OK) {
        s_reason (report, "%s", ops->error (target));
        goto cleanup;
    }
    open_transaction = false;
    //  What was committed is read back and compared, as a separate reader would.
    al_store_copy_report_t copied = *report;
    status = al_store_pg_compare_with_sqlite (sqlite_path, dsn, report);
    if (status == AL_STORE_OK && !report->equal)
        status = AL_STORE_ERR_HEAD_MISMATCH;
    if (status == AL_STORE_OK && (report->rows != copied.rows || report->outbox != copied.outbox
                                  || report->deliveries != copied.deliveries
                                  || report->approvals != copied.approvals || report->journal != copied.journal)) {
        s_reason (report, "the source changed during the copy (is the broker running?)");
        status = AL_STORE_ERR_HEAD_MISMATCH;
    }
cleanup:
    if (open_transaction)
        ops->rollback (target);
    al_store_iter_destroy (&iter);
    sqlite3_close (db);
    if (target)
        ops->close (target);
    al_store_destroy (&source);
    free (row.data);
    return status;
}
