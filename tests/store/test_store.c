/*  test_store.c: the audit store's API: append and the chain, reopen, durability settings
    and refusals, de-duplication, side tables committing and rolling back with their
    event, the replay iterator, JSON export, checkpoints and the backend registry.
*/
#include "store_test_util.h"
#include "store/al_store_ops.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    char *dir;
    char *path;
} s_fixture_t;

static int
s_setup (void **state)
{
    s_fixture_t *fixture = calloc (1, sizeof *fixture);
    assert_non_null (fixture);
    fixture->dir = st_dir_new ();
    assert_non_null (fixture->dir);
    fixture->path = st_path (fixture->dir, "audit.db");
    *state = fixture;
    return 0;
}

static int
s_teardown (void **state)
{
    s_fixture_t *fixture = *state;
    st_dir_remove (&fixture->dir);
    free (fixture->path);
    free (fixture);
    return 0;
}

//  Runs one SQL statement on the raw file; returns the first column of the first row
//  (malloc'd) or NULL.
static char *
s_sql_text (const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = NULL;
    char *value = NULL;
    assert_int_equal (sqlite3_open (path, &db), SQLITE_OK);
    assert_int_equal (sqlite3_prepare_v2 (db, sql, -1, &stmt, NULL), SQLITE_OK);
    if (sqlite3_step (stmt) == SQLITE_ROW && sqlite3_column_text (stmt, 0))
        value = strdup ((const char *) sqlite3_column_text (stmt, 0));
    sqlite3_finalize (stmt);
    sqlite3_close (db);
    return value;
}

static void
test_append_chain_and_reopen (void **state)
{
    s_fixture_t *fixture = *state;
    al_store_t *store = st_open (fixture->path);
    assert_int_equal (al_store_row_count (store), 0);
    assert_string_equal (al_store_backend_name (store), "sqlite");
    st_append_range (store, 1, 5, 2);
    assert_int_equal (al_store_row_count (store), 5);
    uint8_t head [AL_STORE_HASH_SIZE];
    al_store_head_hash (store, head);
    al_store_destroy (&store);
    assert_null (store);

    //  Recompute the chain independently from the documented encoding.
    store = st_open (fixture->path);
    assert_int_equal (al_store_row_count (store), 5);
    uint8_t reopened [AL_STORE_HASH_SIZE];
    al_store_head_hash (store, reopened);
    assert_memory_equal (head, reopened, AL_STORE_HASH_SIZE);
    uint8_t prev [AL_STORE_HASH_SIZE] = { 0 };
    for (uint64_t seq = 1; seq <= 5; seq++) {
        st_event_t holder;
        st_event_make (&holder, seq);
        holder.event.sequence = seq;
        uint8_t row [1024];
        size_t size = al_store_row_encode (&holder.event, row, sizeof row);
        assert_true (size <= sizeof row);
        //  format + seq + time + 6 strings + decision + reason + envelope
        size_t expected_size = 1 + 8 + 8 + 4 + strlen (holder.sender) + 4 + strlen (holder.event.role)
                             + 4 + strlen (holder.event.type) + 4 + strlen (holder.message_id)
                             + 4 + strlen (holder.deployment_id) + 4 + strlen (holder.event.environment)
                             + 1 + 4 + strlen (holder.reason) + 4 + sizeof holder.envelope;
        assert_int_equal (size, expected_size);
        assert_int_equal (row [0], 1);
        assert_int_equal (row [8], seq);    // big-endian sequence in bytes 1..8
        uint8_t hash [AL_STORE_HASH_SIZE];
        al_store_chain_hash (prev, row, size, hash);
        //  The chain hash is SHA-256 (previous hash || row bytes), checked against a
        //  second implementation (libsodium's), whatever libcrypto API the store uses.
        uint8_t joined [AL_STORE_HASH_SIZE + sizeof row], independent [crypto_hash_sha256_BYTES];
        memcpy (joined, prev, AL_STORE_HASH_SIZE);
        memcpy (joined + AL_STORE_HASH_SIZE, row, size);
        crypto_hash_sha256 (independent, joined, AL_STORE_HASH_SIZE + size);
        assert_memory_equal (hash, independent, AL_STORE_HASH_SIZE);
        al_store_event_t stored;
        assert_int_equal (al_store_event_get (store, seq, &stored), AL_STORE_OK);
        assert_int_equal (stored.sequence, seq);
        assert_string_equal (stored.message_id, holder.message_id);
        assert_string_equal (stored.reason, holder.reason);
        assert_int_equal (stored.decision, holder.event.decision);
        assert_int_equal (stored.envelope_size, sizeof holder.envelope);
        assert_memory_equal (stored.envelope, holder.envelope, sizeof holder.envelope);
        assert_memory_equal (stored.hash, hash, AL_STORE_HASH_SIZE);
        memcpy (prev, hash, AL_STORE_HASH_SIZE);
    }
    assert_memory_equal (prev, head, AL_STORE_HASH_SIZE);
    al_store_event_t missing;
    assert_int_equal (al_store_event_get (store, 6, &missing), AL_STORE_NOT_FOUND);

    //  Sequence numbers continue after reopen; a rolled-back batch leaves no trace.
    st_append_range (store, 6, 2, 2);
    assert_int_equal (al_store_begin (store), AL_STORE_OK);
    st_event_t holder;
    al_store_append_result_t result;
    st_event_make (&holder, 100);
    assert_int_equal (al_store_append (store, &holder.event, &result), AL_STORE_OK);
    assert_int_equal (result.sequence, 8);
    assert_int_equal (al_store_rollback (store), AL_STORE_OK);
    assert_int_equal (al_store_row_count (store), 7);
    assert_int_equal (al_store_begin (store), AL_STORE_OK);
    assert_int_equal (al_store_append (store, &holder.event, &result), AL_STORE_OK);
    assert_int_equal (result.sequence, 8);
    assert_int_equal (al_store_commit (store), AL_STORE_OK);
    al_verify_report_t report;
    assert_int_equal (al_store_verify (store, NULL, NULL, &report), AL_STORE_OK);
    assert_int_equal (report.result, AL_VERIFY_OK);
    assert_int_equal (report.rows, 8);
    al_store_destroy (&store);
}

static void
test_durability_settings (void **state)
{
    s_fixture_t *fixture = *state;
    al_store_t *store = st_open (fixture->path);
    st_append_range (store, 1, 3, 3);
    //  While open, the WAL file exists next to the database and holds the commits.
    char *wal_path = NULL;
    assert_true (asprintf (&wal_path, "%s-wal", fixture->path) > 0);
    FILE *wal = fopen (wal_path, "rb");
    assert_non_null (wal);
    fclose (wal);
    free (wal_path);
    al_store_destroy (&store);
    char *mode = s_sql_text (fixture->path, "PRAGMA journal_mode");
    assert_string_equal (mode, "wal");
    free (mode);
    char *version = s_sql_text (fixture->path, "SELECT value FROM meta WHERE key = 'schema_version'");
    assert_string_equal (version, "1");
    free (version);

    //  A database that cannot be in WAL mode (in-memory) is refused, naming the reason.
    char error [512] = "";
    store = al_store_open ("sqlite", ":memory:", NULL, error, sizeof error);
    assert_null (store);
    assert_non_null (strstr (error, ":memory:"));
    assert_non_null (strstr (error, "journal_mode=WAL not in effect"));
}

static void
test_open_refusals (void **state)
{
    s_fixture_t *fixture = *state;
    char error [512] = "";
    //  Not a database.
    FILE *file = fopen (fixture->path, "wb");
    assert_non_null (file);
    for (int i = 0; i < 4096; i++)
        fputc ('x', file);
    fclose (file);
    al_store_t *store = al_store_open ("sqlite", fixture->path, NULL, error, sizeof error);
    assert_null (store);
    assert_non_null (strstr (error, fixture->path));
    assert_non_null (strstr (error, "not an SQLite database"));
    remove (fixture->path);

    //  Someone else's SQLite database.
    st_sql_exec (fixture->path, "CREATE TABLE customers (id INTEGER)");
    store = al_store_open ("sqlite", fixture->path, NULL, error, sizeof error);
    assert_null (store);
    assert_non_null (strstr (error, "not an airlock audit database"));
    remove (fixture->path);

    //  A newer schema.
    store = st_open (fixture->path);
    al_store_destroy (&store);
    st_sql_exec (fixture->path, "UPDATE meta SET value = '2' WHERE key = 'schema_version'");
    store = al_store_open ("sqlite", fixture->path, NULL, error, sizeof error);
    assert_null (store);
    assert_non_null (strstr (error, "schema version 2 is newer"));

    //  The other meta verdicts, judged by the generic layer for every backend.
    st_sql_exec (fixture->path, "UPDATE meta SET value = 'x1' WHERE key = 'schema_version'");
    store = al_store_open ("sqlite", fixture->path, NULL, error, sizeof error);
    assert_null (store);
    assert_non_null (strstr (error, fixture->path));
    assert_non_null (strstr (error, "bad schema version 'x1'"));
    st_sql_exec (fixture->path, "DELETE FROM meta WHERE key = 'schema_version'");
    store = al_store_open ("sqlite", fixture->path, NULL, error, sizeof error);
    assert_null (store);
    assert_non_null (strstr (error, "schema version missing"));
    st_sql_exec (fixture->path, "UPDATE meta SET value = 'someone-else' WHERE key = 'application'");
    store = al_store_open ("sqlite", fixture->path, NULL, error, sizeof error);
    assert_null (store);
    assert_non_null (strstr (error, "meta.application is not 'airlock-audit'"));

    //  Unknown backend; missing file opened read-only or without create.
    store = al_store_open ("oracle", fixture->path, NULL, error, sizeof error);
    assert_null (store);
    assert_non_null (strstr (error, "unknown store backend 'oracle'"));
    char *missing = st_path (fixture->dir, "missing.db");
    al_store_options_t read_only = { .read_only = true };
    store = al_store_open ("sqlite", missing, &read_only, error, sizeof error);
    assert_null (store);
    assert_non_null (strstr (error, missing));
    al_store_options_t no_create = { .create = false };
    store = al_store_open ("sqlite", missing, &no_create, error, sizeof error);
    assert_null (store);
    free (missing);
}

static void
test_dedup (void **state)
{
    s_fixture_t *fixture = *state;
    al_store_t *store = st_open (fixture->path);
    al_store_append_result_t result, again;
    al_store_event_t event = {
        .time_ms = 1000, .sender = "orchestrator-1", .role = "orchestrator", .type = "DeployRequest",
        .message_id = "m-1", .decision = AL_STORE_DENIED, .reason = "agents may not deploy to production",
        .envelope = (const uint8_t *) "abc", .envelope_size = 3
    };
    assert_int_equal (al_store_begin (store), AL_STORE_OK);
    assert_int_equal (al_store_append (store, &event, &result), AL_STORE_OK);
    assert_int_equal (result.sequence, 1);
    assert_int_equal (al_store_commit (store), AL_STORE_OK);

    //  A retransmission (other content, same sender and id) gets the original outcome.
    al_store_event_t retransmitted = event;
    retransmitted.decision = AL_STORE_ACCEPTED;
    retransmitted.reason = "";
    retransmitted.time_ms = 2000;
    assert_int_equal (al_store_begin (store), AL_STORE_OK);
    assert_int_equal (al_store_append (store, &retransmitted, &again), AL_STORE_DUPLICATE);
    assert_int_equal (again.sequence, 1);
    assert_memory_equal (again.hash, result.hash, AL_STORE_HASH_SIZE);
    assert_int_equal (again.decision, AL_STORE_DENIED);
    assert_string_equal (again.reason, "agents may not deploy to production");
    //  The same id from another sender is a different message.
    al_store_event_t other = event;
    other.sender = "orchestrator-2";
    assert_int_equal (al_store_append (store, &other, &again), AL_STORE_OK);
    assert_int_equal (again.sequence, 2);
    //  Within one open transaction.
    al_store_event_t fresh = event;
    fresh.message_id = "m-2";
    fresh.decision = AL_STORE_ACCEPTED;
    fresh.reason = "ok";
    assert_int_equal (al_store_append (store, &fresh, &result), AL_STORE_OK);
    assert_int_equal (result.sequence, 3);
    assert_int_equal (al_store_append (store, &fresh, &again), AL_STORE_DUPLICATE);
    assert_int_equal (again.sequence, 3);
    assert_string_equal (again.reason, "ok");
    assert_int_equal (al_store_row_count (store), 3);
    //  Empty message ids are never de-duplicated.
    al_store_event_t anonymous = event;
    anonymous.message_id = "";
    assert_int_equal (al_store_append (store, &anonymous, &result), AL_STORE_OK);
    assert_int_equal (al_store_append (store, &anonymous, &result), AL_STORE_OK);
    assert_int_equal (result.sequence, 5);
    //  Rolled back: m-2 is new again.
    assert_int_equal (al_store_rollback (store), AL_STORE_OK);
    assert_int_equal (al_store_begin (store), AL_STORE_OK);
    assert_int_equal (al_store_append (store, &fresh, &result), AL_STORE_OK);
    assert_int_equal (result.sequence, 2);
    assert_int_equal (al_store_commit (store), AL_STORE_OK);
    //  A bad decision from outside is an error, not an assert.
    al_store_event_t bad = event;
    bad.message_id = "m-3";
    bad.decision = (al_store_decision_t) 7;
    assert_int_equal (al_store_begin (store), AL_STORE_OK);
    assert_int_equal (al_store_append (store, &bad, &result), AL_STORE_ERR_ARGUMENT);
    assert_int_equal (al_store_rollback (store), AL_STORE_OK);
    //  The SQLite insert reports the duplicate itself (no probe before it): the refused
    //  insert leaves the transaction usable and the chain intact.
    assert_true (al_store_sqlite_ops.insert_reports_duplicate);
    assert_int_equal (al_store_begin (store), AL_STORE_OK);
    assert_int_equal (al_store_append (store, &event, &again), AL_STORE_DUPLICATE);
    assert_int_equal (again.sequence, 1);
    bad.decision = AL_STORE_ACCEPTED;
    assert_int_equal (al_store_append (store, &bad, &result), AL_STORE_OK);
    assert_int_equal (result.sequence, 3);
    assert_int_equal (al_store_commit (store), AL_STORE_OK);
    al_verify_report_t report;
    assert_int_equal (al_store_verify (store, NULL, NULL, &report), AL_STORE_OK);
    assert_int_equal (report.result, AL_VERIFY_OK);
    assert_int_equal (report.rows, 3);
    al_store_destroy (&store);
}

//  A database whose unique index was altered by hand still never stores a retransmission
//  twice: the backend then looks the message up before inserting.
static void
test_dedup_without_unique_index (void **state)
{
    s_fixture_t *fixture = *state;
    al_store_t *store = st_open (fixture->path);
    al_store_append_result_t result, again;
    al_store_event_t event = {
        .time_ms = 1000, .sender = "orchestrator-1", .role = "orchestrator", .type = "DeployRequest",
        .message_id = "m-1", .decision = AL_STORE_ACCEPTED, .reason = "ok",
        .envelope = (const uint8_t *) "abc", .envelope_size = 3
    };
    assert_int_equal (al_store_begin (store), AL_STORE_OK);
    assert_int_equal (al_store_append (store, &event, &result), AL_STORE_OK);
    assert_int_equal (al_store_commit (store), AL_STORE_OK);
    al_store_destroy (&store);
    st_sql_exec (fixture->path, "DROP INDEX events_message;"
                               "CREATE INDEX events_message ON events (sender, message_id)");

    store = st_open (fixture->path);
    assert_int_equal (al_store_begin (store), AL_STORE_OK);
    assert_int_equal (al_store_append (store, &event, &again), AL_STORE_DUPLICATE);
    assert_int_equal (again.sequence, 1);
    assert_memory_equal (again.hash, result.hash, AL_STORE_HASH_SIZE);
    al_store_event_t fresh = event;
    fresh.message_id = "m-2";
    assert_int_equal (al_store_append (store, &fresh, &result), AL_STORE_OK);
    assert_int_equal (result.sequence, 2);
    assert_int_equal (al_store_append (store, &fresh, &again), AL_STORE_DUPLICATE);
    assert_int_equal (again.sequence, 2);
    assert_int_equal (al_store_commit (store), AL_STORE_OK);
    al_store_destroy (&store);
    char *rows = s_sql_text (fixture->path, "SELECT count(*) FROM events");
    assert_string_equal (rows, "2");
    free (rows);
}

//  The writer's WAL is copied into the database file while the store is open once it
//  passes AL_STORE_SQLITE_WAL_CHECKPOINT_PAGES (by the checkpointer thread, or inline when
//  there is none: store/al_store_sqlite_checkpointer.h), so it never grows unbounded.
static void
test_wal_checkpointed_while_open (void **state)
{
    s_fixture_t *fixture = *state;
    al_store_t *store = st_open (fixture->path);
    struct stat before;
    assert_int_equal (stat (fixture->path, &before), 0);
    static uint8_t envelope [4000];
    memset (envelope, 'e', sizeof envelope);
    //  1,300 rows of 4 KB: more than 1,000 WAL pages, far fewer than the inline limit.
    for (int batch = 0; batch < 26; batch++) {
        assert_int_equal (al_store_begin (store), AL_STORE_OK);
        for (int row = 0; row < 50; row++) {
            al_store_event_t event = {
                .time_ms = 1000, .sender = "orchestrator-1", .role = "orchestrator", .type = "DeployRequest",
                .message_id = "", .decision = AL_STORE_ACCEPTED, .reason = "ok",
                .envelope = envelope, .envelope_size = sizeof envelope
            };
            al_store_append_result_t result;
            assert_int_equal (al_store_append (store, &event, &result), AL_STORE_OK);
        }
        assert_int_equal (al_store_commit (store), AL_STORE_OK);
    }
    //  The thread runs on its own time: poll (a busy machine may take a while).
    struct stat after = before;
    for (int tries = 0; tries < 600 && after.st_size < (off_t) 2 * 1000 * 1000; tries++) {
        usleep (50 * 1000);
        assert_int_equal (stat (fixture->path, &after), 0);
    }
    assert_true (before.st_size < (off_t) 1000 * 1000);
    assert_true (after.st_size >= (off_t) 2 * 1000 * 1000);
    al_store_destroy (&store);
}

static void
test_side_tables (void **state)
{
    s_fixture_t *fixture = *state;
    al_store_t *store = st_open (fixture->path);
    uint8_t approval [16];
    memset (approval, 0xA5, sizeof approval);
    uint64_t pending [8];
    size_t count = 99;
    al_store_outbox_item_t item;
    st_journal_seen_t seen = { 0 };

    //  Rolled back: nothing of the event's side effects survives.
    assert_int_equal (al_store_begin (store), AL_STORE_OK);
    st_append_with_side_effects (store, 1, approval);
    assert_int_equal (al_store_rollback (store), AL_STORE_OK);
    assert_int_equal (al_store_delivery_pending (store, "deploy-manager", 0, pending, 8, &count), AL_STORE_OK);
    assert_int_equal (count, 0);
    assert_int_equal (al_store_outbox_claim (store, 5000, 1000, &item), AL_STORE_NOT_FOUND);
    assert_int_equal (al_store_journal_list (store, "dep-1", st_journal_collect, &seen), AL_STORE_OK);
    assert_int_equal (seen.count, 0);

    //  Committed: everything is there, tied to the event.
    assert_int_equal (al_store_begin (store), AL_STORE_OK);
    uint64_t first = st_append_with_side_effects (store, 1, approval);
    uint64_t second = st_append_with_side_effects (store, 2, NULL);
    assert_int_equal (al_store_commit (store), AL_STORE_OK);
    assert_int_equal (first, 1);
    al_store_destroy (&store);
    store = st_open (fixture->path);

    //  An approval id is single use, across transactions and reopen.
    assert_int_equal (al_store_begin (store), AL_STORE_OK);
    assert_int_equal (al_store_approval_consume (store, approval, 16, 3), AL_STORE_ALREADY_USED);
    uint8_t other_approval [16] = { 1 };
    assert_int_equal (al_store_approval_consume (store, other_approval, 16, 3), AL_STORE_OK);
    assert_int_equal (al_store_rollback (store), AL_STORE_OK);

    //  Deliveries: per role, oldest first, until acknowledged.
    assert_int_equal (al_store_delivery_pending (store, "deploy-manager", 0, pending, 8, &count), AL_STORE_OK);
    assert_int_equal (count, 2);
    assert_int_equal (pending [0], first);
    assert_int_equal (pending [1], second);
    assert_int_equal (al_store_delivery_pending (store, "deploy-manager", first, pending, 8, &count), AL_STORE_OK);
    assert_int_equal (count, 1);
    assert_int_equal (al_store_delivery_pending (store, "qa", 0, pending, 8, &count), AL_STORE_OK);
    assert_int_equal (count, 0);
    assert_int_equal (al_store_delivery_ack (store, "deploy-manager", first), AL_STORE_OK);
    assert_int_equal (al_store_delivery_ack (store, "deploy-manager", first), AL_STORE_NOT_FOUND);
    assert_int_equal (al_store_delivery_pending (store, "deploy-manager", 0, pending, 8, &count), AL_STORE_OK);
    assert_int_equal (count, 1);
    assert_int_equal (pending [0], second);

    //  Outbox: claim leases, retry reschedules, sent is final.
    assert_int_equal (al_store_outbox_claim (store, 5000, 1000, &item), AL_STORE_OK);
    uint64_t claimed = item.id;
    assert_int_equal (item.sequence, first);
    assert_string_equal (item.channel, "webhook");
    assert_int_equal (item.payload_size, 2);
    assert_memory_equal (item.payload, "{}", 2);
    assert_int_equal (item.attempts, 1);
    assert_int_equal (al_store_outbox_claim (store, 5000, 1000, &item), AL_STORE_OK);
    assert_int_not_equal (item.id, claimed);      // the first is leased
    assert_int_equal (al_store_outbox_claim (store, 5500, 1000, &item), AL_STORE_NOT_FOUND);
    assert_int_equal (al_store_outbox_retry_at (store, claimed, 9000, "HTTP 503"), AL_STORE_OK);
    assert_int_equal (al_store_outbox_claim (store, 8000, 1000, &item), AL_STORE_OK);
    assert_int_not_equal (item.id, claimed);      // the second's lease expired at 6000
    assert_int_equal (item.attempts, 2);
    assert_int_equal (al_store_outbox_mark_sent (store, item.id, 8001), AL_STORE_OK);
    assert_int_equal (al_store_outbox_claim (store, 9000, 1000, &item), AL_STORE_OK);
    assert_int_equal (item.id, claimed);
    assert_int_equal (item.attempts, 2);
    assert_string_equal (item.last_error, "HTTP 503");
    assert_int_equal (al_store_outbox_mark_sent (store, claimed, 9001), AL_STORE_OK);
    assert_int_equal (al_store_outbox_mark_sent (store, claimed, 9002), AL_STORE_NOT_FOUND);
    assert_int_equal (al_store_outbox_claim (store, 99999, 1000, &item), AL_STORE_NOT_FOUND);

    //  Journal: in order, tied to the events.
    assert_int_equal (al_store_journal_list (store, "dep-1", st_journal_collect, &seen), AL_STORE_OK);
    assert_int_equal (seen.count, 2);
    assert_string_equal (seen.steps [0], "backup/after/ok/12 MB");
    assert_int_equal (seen.sequences [0], first);
    assert_int_equal (seen.sequences [1], second);
    al_store_destroy (&store);
}

static void
test_iterator_and_export (void **state)
{
    s_fixture_t *fixture = *state;
    al_store_t *store = st_open (fixture->path);
    st_append_range (store, 1, 100, 30);
    al_store_iter_t *iter = al_store_iter_new (store, 40);
    assert_non_null (iter);
    al_store_event_t event;
    uint64_t expected = 40;
    al_store_status_t status;
    while ((status = al_store_iter_next (iter, &event)) == AL_STORE_OK) {
        st_event_t holder;
        st_event_make (&holder, expected);
        assert_int_equal (event.sequence, expected);
        assert_string_equal (event.message_id, holder.message_id);
        expected++;
    }
    assert_int_equal (status, AL_STORE_END);
    assert_int_equal (expected, 101);
    al_store_iter_destroy (&iter);
    assert_null (iter);

    char *export_path = st_path (fixture->dir, "export.jsonl");
    FILE *out = fopen (export_path, "w+");
    assert_non_null (out);
    assert_int_equal (al_store_export_json (store, 1, out), AL_STORE_OK);
    rewind (out);
    char line [4096];
    uint64_t lines = 0;
    while (fgets (line, sizeof line, out)) {
        lines++;
        json_error_t error;
        json_t *object = json_loads (line, 0, &error);
        assert_non_null (object);
        st_event_t holder;
        st_event_make (&holder, lines);
        assert_int_equal (json_integer_value (json_object_get (object, "seq")), lines);
        assert_string_equal (json_string_value (json_object_get (object, "message_id")), holder.message_id);
        assert_string_equal (json_string_value (json_object_get (object, "decision")),
                             lines % 5? "accepted": "denied");
        const char *time_text = json_string_value (json_object_get (object, "time"));
        assert_non_null (time_text);
        assert_int_equal (strlen (time_text), 24);      // 2026-09-21T...:SS.mmmZ
        assert_int_equal (time_text [23], 'Z');
        assert_int_equal (strlen (json_string_value (json_object_get (object, "hash"))), 64);
        const char *base64 = json_string_value (json_object_get (object, "envelope"));
        uint8_t envelope [256];
        size_t size = 0;
        assert_int_equal (sodium_base642bin (envelope, sizeof envelope, base64, strlen (base64), NULL, &size,
                                             NULL, sodium_base64_VARIANT_ORIGINAL), 0);
        assert_int_equal (size, sizeof holder.envelope);
        assert_memory_equal (envelope, holder.envelope, size);
        json_decref (object);
    }
    assert_int_equal (lines, 100);
    fclose (out);
    free (export_path);
    al_store_destroy (&store);
}

static void
test_checkpoint_and_read_only_verify (void **state)
{
    s_fixture_t *fixture = *state;
    al_store_t *store = st_open (fixture->path);
    st_append_range (store, 1, 50, 10);
    uint8_t public_key [crypto_sign_PUBLICKEYBYTES], secret_key [crypto_sign_SECRETKEYBYTES];
    crypto_sign_keypair (public_key, secret_key);
    char *checkpoint = st_path (fixture->dir, "checkpoint.json");
    char error [512];
    assert_int_equal (al_store_checkpoint_write (store, secret_key, checkpoint, error, sizeof error), AL_STORE_OK);
    json_error_t json_error;
    json_t *root = json_load_file (checkpoint, 0, &json_error);
    assert_non_null (root);
    assert_int_equal (json_integer_value (json_object_get (root, "row_count")), 50);
    char key_hex [65];
    sodium_bin2hex (key_hex, sizeof key_hex, public_key, sizeof public_key);
    assert_string_equal (json_string_value (json_object_get (root, "public_key")), key_hex);
    json_decref (root);
    st_append_range (store, 51, 10, 10);
    al_store_destroy (&store);

    //  Read-only verification, also while a writer has the database open.
    al_verify_report_t report;
    assert_int_equal (al_store_verify_path ("sqlite", fixture->path, checkpoint, NULL, &report), AL_STORE_OK);
    assert_int_equal (report.result, AL_VERIFY_OK);
    assert_int_equal (report.rows, 60);
    assert_true (report.checkpoint_checked);
    assert_int_equal (report.checkpoint_rows, 50);
    store = st_open (fixture->path);
    assert_int_equal (al_store_verify_path (NULL, fixture->path, checkpoint, NULL, &report), AL_STORE_OK);
    assert_int_equal (report.result, AL_VERIFY_OK);
    al_store_destroy (&store);

    //  A missing checkpoint file is an I/O error, not a verdict.
    char *missing = st_path (fixture->dir, "nope.json");
    assert_int_equal (al_store_verify_path ("sqlite", fixture->path, missing, NULL, &report), AL_STORE_ERR_IO);
    assert_int_equal (report.result, AL_VERIFY_IO);
    free (missing);
    free (checkpoint);
}

//  A backend with only the mandatory members: optional ones refuse.
static void
test_backend_registry (void **state)
{
    s_fixture_t *fixture = *state;
    char error [256];
    al_store_ops_t minimal = {
        .name = "sqlite-minimal", .version = AL_STORE_OPS_VERSION,
        .open = al_store_sqlite_ops.open, .close = al_store_sqlite_ops.close,
        .error = al_store_sqlite_ops.error, .head = al_store_sqlite_ops.head,
        .begin = al_store_sqlite_ops.begin, .commit = al_store_sqlite_ops.commit,
        .rollback = al_store_sqlite_ops.rollback, .find_message = al_store_sqlite_ops.find_message,
        .insert = al_store_sqlite_ops.insert, .get = al_store_sqlite_ops.get,
        .iter_open = al_store_sqlite_ops.iter_open, .iter_next = al_store_sqlite_ops.iter_next,
    };
    //  iter_close is missing.
    assert_int_equal (al_store_backend_register (&minimal, error, sizeof error), AL_STORE_ERR_ARGUMENT);
    assert_non_null (strstr (error, "'iter_close'"));
    minimal.iter_close = al_store_sqlite_ops.iter_close;
    minimal.version = AL_STORE_OPS_VERSION + 1;
    assert_int_equal (al_store_backend_register (&minimal, error, sizeof error), AL_STORE_ERR_ARGUMENT);
    minimal.version = AL_STORE_OPS_VERSION;
    assert_int_equal (al_store_backend_register (&al_store_sqlite_ops, error, sizeof error), AL_STORE_ERR_ARGUMENT);
    assert_non_null (strstr (error, "already registered"));
    assert_int_equal (al_store_backend_register (&minimal, error, sizeof error), AL_STORE_OK);

    al_store_t *store = al_store_open ("sqlite-minimal", fixture->path, NULL, error, sizeof error);
    assert_non_null (store);
    assert_string_equal (al_store_backend_name (store), "sqlite-minimal");
    assert_int_equal (al_store_begin (store), AL_STORE_OK);
    st_event_t holder;
    st_event_make (&holder, 1);
    al_store_append_result_t result;
    assert_int_equal (al_store_append (store, &holder.event, &result), AL_STORE_OK);
    assert_int_equal (al_store_delivery_add (store, "qa", result.sequence), AL_STORE_ERR_UNSUPPORTED);
    uint8_t approval [16] = { 0 };
    assert_int_equal (al_store_approval_consume (store, approval, 16, 1), AL_STORE_ERR_UNSUPPORTED);
    assert_int_equal (al_store_commit (store), AL_STORE_OK);
    al_verify_report_t report;
    assert_int_equal (al_store_verify (store, NULL, NULL, &report), AL_STORE_OK);
    assert_int_equal (report.result, AL_VERIFY_OK);
    assert_int_equal (report.rows, 1);
    al_store_destroy (&store);
}

//  The meta rules every backend calls (al_store_ops.h), value by value.
static void
test_meta_checks (void **state)
{
    (void) state;
    char error [256] = "";
    assert_int_equal (al_store_meta_application_check (AL_STORE_META_APPLICATION, error, sizeof error), 0);
    assert_int_equal (al_store_meta_application_check (NULL, error, sizeof error), -1);
    assert_non_null (strstr (error, "not an airlock audit database"));
    *error = 0;
    assert_int_equal (al_store_meta_application_check ("airlock-audit2", error, sizeof error), -1);
    assert_non_null (strstr (error, "meta.application is not 'airlock-audit'"));
    assert_int_equal (al_store_meta_version_check ("1", error, sizeof error), 0);
    assert_int_equal (al_store_meta_version_check (NULL, error, sizeof error), -1);
    assert_string_equal (error, "schema version missing");
    assert_int_equal (al_store_meta_version_check ("0", error, sizeof error), -1);
    assert_string_equal (error, "bad schema version '0'");
    assert_int_equal (al_store_meta_version_check ("1x", error, sizeof error), -1);
    assert_string_equal (error, "bad schema version '1x'");
    assert_int_equal (al_store_meta_version_check ("2", error, sizeof error), -1);
    assert_string_equal (error, "schema version 2 is newer than this airlock supports (1)");
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_append_chain_and_reopen, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_durability_settings, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_open_refusals, s_setup, s_teardown),
        cmocka_unit_test (test_meta_checks),
        cmocka_unit_test_setup_teardown (test_dedup, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_wal_checkpointed_while_open, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_dedup_without_unique_index, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_side_tables, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_iterator_and_export, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_checkpoint_and_read_only_verify, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_backend_registry, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
