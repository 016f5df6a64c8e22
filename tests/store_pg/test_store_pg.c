/*  test_store_pg.c: the store's conformance suite, run against every backend (SQLite and
    PostgreSQL): append and the chain across reopen, de-duplication, side tables that
    commit and roll back with their event, the iterator and export, checkpoints and
    read-only (multi-threaded) verify, tamper detection naming the row, writers that wait
    for each other. Then what is PostgreSQL's own: durability refused when
    synchronous_commit is off, refusals of foreign or newer databases, no password in any
    message, a connection that comes back after the server restarts, and a pipelined
    write the server refuses failing its transaction.

    One throwaway PostgreSQL server (tests/pg) serves the whole executable; each case gets
    a database of its own (and, for SQLite, a file in a temporary directory).
*/
#include "../store/store_test_util.h"
#include "pg_harness.h"
#include "store/al_store_pg.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pg_harness_t *s_server;

typedef struct {
    const char *backend;
    char *dir;                  // temporary directory (checkpoints, exports, SQLite files)
    char *path;                 // the file, or the connection string
    char *dbname;               // PostgreSQL database name
} s_fixture_t;

static int
s_group_setup (void **state)
{
    (void) state;
    char error [2048];
    s_server = pg_harness_new (error, sizeof error);
    if (!s_server) {
        fprintf (stderr, "test_store_pg: %s\n", error);
        return -1;
    }
    return 0;
}

static int
s_group_teardown (void **state)
{
    (void) state;
    pg_harness_destroy (&s_server);
    return 0;
}

static int
s_setup (void **state)
{
    s_fixture_t *fixture = calloc (1, sizeof *fixture);
    assert_non_null (fixture);
    fixture->backend = (const char *) *state;
    fixture->dir = st_dir_new ();
    assert_non_null (fixture->dir);
    if (strcmp (fixture->backend, "sqlite") == 0)
        fixture->path = st_path (fixture->dir, "audit.db");
    else {
        char error [1024];
        fixture->path = pg_harness_database_new (s_server, "store", error, sizeof error);
        if (!fixture->path)
            fail_msg ("%s", error);
        const char *name = strstr (fixture->path, "dbname=") + 7;
        fixture->dbname = strndup (name, strcspn (name, " "));
    }
    *state = fixture;
    return 0;
}

static int
s_teardown (void **state)
{
    s_fixture_t *fixture = *state;
    st_dir_remove (&fixture->dir);
    free (fixture->path);
    free (fixture->dbname);
    free (fixture);
    return 0;
}

static bool
s_is_pg (s_fixture_t *fixture)
{
    return strcmp (fixture->backend, AL_STORE_PG_BACKEND) == 0;
}

static al_store_t *
s_open (s_fixture_t *fixture)
{
    char error [512];
    al_store_t *store = al_store_open (fixture->backend, fixture->path, NULL, error, sizeof error);
    if (!store)
        fail_msg ("open %s: %s", fixture->backend, error);
    assert_string_equal (al_store_backend_name (store), fixture->backend);
    return store;
}

//  Runs SQL on the backend's raw database, behind the store's back (a tamperer's view).
static void
s_raw_sql (s_fixture_t *fixture, const char *sql)
{
    if (s_is_pg (fixture)) {
        char error [1024];
        char *value = pg_harness_sql (s_server, fixture->dbname, sql, error, sizeof error);
        if (!value)
            fail_msg ("%s", error);
        free (value);
    }
    else
        st_sql_exec (fixture->path, sql);
}

static void
test_append_chain_and_reopen (void **state)
{
    s_fixture_t *fixture = *state;
    al_store_t *store = s_open (fixture);
    assert_int_equal (al_store_row_count (store), 0);
    st_append_range (store, 1, 120, 25);
    uint8_t head [AL_STORE_HASH_SIZE];
    al_store_head_hash (store, head);
    al_store_destroy (&store);

    //  Reopened: same head; the chain recomputed from the rows agrees with it.
    store = s_open (fixture);
    assert_int_equal (al_store_row_count (store), 120);
    uint8_t reopened [AL_STORE_HASH_SIZE];
    al_store_head_hash (store, reopened);
    assert_memory_equal (head, reopened, AL_STORE_HASH_SIZE);
    uint8_t chain [AL_STORE_HASH_SIZE] = { 0 };
    uint8_t row [4096];
    for (uint64_t sequence = 1; sequence <= 120; sequence++) {
        al_store_event_t event;
        assert_int_equal (al_store_event_get (store, sequence, &event), AL_STORE_OK);
        st_event_t holder;
        st_event_make (&holder, sequence);
        assert_int_equal (event.sequence, sequence);
        assert_int_equal (event.time_ms, holder.event.time_ms);
        assert_string_equal (event.sender, holder.sender);
        assert_string_equal (event.role, holder.event.role);
        assert_string_equal (event.environment, holder.event.environment);
        assert_string_equal (event.reason, holder.reason);
        assert_int_equal (event.decision, holder.event.decision);
        assert_int_equal (event.envelope_size, sizeof holder.envelope);
        assert_memory_equal (event.envelope, holder.envelope, sizeof holder.envelope);
        size_t size = al_store_row_encode (&event, row, sizeof row);
        assert_true (size <= sizeof row);
        al_store_chain_hash (chain, row, size, chain);
        assert_memory_equal (chain, event.hash, AL_STORE_HASH_SIZE);
    }
    assert_memory_equal (chain, head, AL_STORE_HASH_SIZE);
    al_store_event_t event;
    assert_int_equal (al_store_event_get (store, 121, &event), AL_STORE_NOT_FOUND);

    //  Bytes that are not UTF-8 (and an empty envelope) are stored exactly.
    al_store_event_t odd = {
        .time_ms = 5, .sender = "agent-\xff\xfe", .role = "qa", .type = "QaReport",
        .message_id = "m-\xc3\x28", .decision = AL_STORE_DENIED, .reason = "caf\xe9",
    };
    al_store_append_result_t result;
    assert_int_equal (al_store_begin (store), AL_STORE_OK);
    assert_int_equal (al_store_append (store, &odd, &result), AL_STORE_OK);
    assert_int_equal (al_store_commit (store), AL_STORE_OK);
    assert_int_equal (al_store_event_get (store, 121, &event), AL_STORE_OK);
    assert_string_equal (event.sender, "agent-\xff\xfe");
    assert_string_equal (event.message_id, "m-\xc3\x28");
    assert_string_equal (event.reason, "caf\xe9");
    assert_int_equal (event.envelope_size, 0);
    al_store_destroy (&store);

    al_verify_report_t report;
    assert_int_equal (al_store_verify_path (fixture->backend, fixture->path, NULL, NULL, &report), AL_STORE_OK);
    assert_int_equal (report.result, AL_VERIFY_OK);
    assert_int_equal (report.rows, 121);
}

static void
test_dedup (void **state)
{
    s_fixture_t *fixture = *state;
    al_store_t *store = s_open (fixture);
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

    //  A retransmission gets the original outcome, also after reopen.
    al_store_destroy (&store);
    store = s_open (fixture);
    al_store_event_t retransmitted = event;
    retransmitted.decision = AL_STORE_ACCEPTED;
    retransmitted.reason = "";
    assert_int_equal (al_store_begin (store), AL_STORE_OK);
    assert_int_equal (al_store_append (store, &retransmitted, &again), AL_STORE_DUPLICATE);
    assert_int_equal (again.sequence, 1);
    assert_memory_equal (again.hash, result.hash, AL_STORE_HASH_SIZE);
    assert_int_equal (again.decision, AL_STORE_DENIED);
    assert_string_equal (again.reason, "agents may not deploy to production");
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
    //  Empty message ids are never de-duplicated.
    al_store_event_t anonymous = event;
    anonymous.message_id = "";
    assert_int_equal (al_store_append (store, &anonymous, &result), AL_STORE_OK);
    assert_int_equal (al_store_append (store, &anonymous, &result), AL_STORE_OK);
    assert_int_equal (result.sequence, 5);
    //  Rolled back: m-2 is new again and numbering continues from the committed head.
    assert_int_equal (al_store_rollback (store), AL_STORE_OK);
    assert_int_equal (al_store_row_count (store), 1);
    assert_int_equal (al_store_begin (store), AL_STORE_OK);
    assert_int_equal (al_store_append (store, &fresh, &result), AL_STORE_OK);
    assert_int_equal (result.sequence, 2);
    assert_int_equal (al_store_commit (store), AL_STORE_OK);
    al_store_destroy (&store);
}

static void
test_side_tables (void **state)
{
    s_fixture_t *fixture = *state;
    al_store_t *store = s_open (fixture);
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
    store = s_open (fixture);

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
    assert_int_equal (al_store_delivery_pending (store, "deploy-manager", 0, pending, 1, &count), AL_STORE_OK);
    assert_int_equal (count, 1);
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
    assert_string_equal (item.last_error, "");
    assert_int_equal (al_store_outbox_claim (store, 5000, 1000, &item), AL_STORE_OK);
    assert_int_not_equal (item.id, claimed);
    assert_int_equal (al_store_outbox_claim (store, 5500, 1000, &item), AL_STORE_NOT_FOUND);
    assert_int_equal (al_store_outbox_retry_at (store, claimed, 9000, "HTTP 503"), AL_STORE_OK);
    assert_int_equal (al_store_outbox_claim (store, 8000, 1000, &item), AL_STORE_OK);
    assert_int_not_equal (item.id, claimed);
    assert_int_equal (item.attempts, 2);
    assert_int_equal (al_store_outbox_mark_sent (store, item.id, 8001), AL_STORE_OK);
    assert_int_equal (al_store_outbox_claim (store, 9000, 1000, &item), AL_STORE_OK);
    assert_int_equal (item.id, claimed);
    assert_int_equal (item.attempts, 2);
    assert_string_equal (item.last_error, "HTTP 503");
    assert_int_equal (al_store_outbox_mark_sent (store, claimed, 9001), AL_STORE_OK);
    assert_int_equal (al_store_outbox_mark_sent (store, claimed, 9002), AL_STORE_NOT_FOUND);
    assert_int_equal (al_store_outbox_retry_at (store, 424242, 1, "x"), AL_STORE_NOT_FOUND);
    assert_int_equal (al_store_outbox_claim (store, 99999, 1000, &item), AL_STORE_NOT_FOUND);

    //  Journal: in order, tied to the events.
    assert_int_equal (al_store_journal_list (store, "dep-1", st_journal_collect, &seen), AL_STORE_OK);
    assert_int_equal (seen.count, 2);
    assert_string_equal (seen.steps [0], "backup/after/ok/12 MB");
    assert_int_equal (seen.sequences [0], first);
    assert_int_equal (seen.sequences [1], second);
    memset (&seen, 0, sizeof seen);
    assert_int_equal (al_store_journal_list (store, "dep-2", st_journal_collect, &seen), AL_STORE_OK);
    assert_int_equal (seen.count, 0);
    al_store_destroy (&store);
}

static void
test_iterator_and_export (void **state)
{
    s_fixture_t *fixture = *state;
    al_store_t *store = s_open (fixture);
    //  More rows than one PostgreSQL iterator batch (2048).
    st_append_range (store, 1, 2500, 500);
    al_store_iter_t *iter = al_store_iter_new (store, 40);
    assert_non_null (iter);
    al_store_event_t event;
    uint64_t expected = 40;
    al_store_status_t status;
    while ((status = al_store_iter_next (iter, &event)) == AL_STORE_OK) {
        assert_int_equal (event.sequence, expected);
        expected++;
    }
    assert_int_equal (status, AL_STORE_END);
    assert_int_equal (expected, 2501);
    al_store_iter_destroy (&iter);

    char *export_path = st_path (fixture->dir, "export.jsonl");
    FILE *out = fopen (export_path, "w+");
    assert_non_null (out);
    assert_int_equal (al_store_export_json (store, 2491, out), AL_STORE_OK);
    rewind (out);
    char line [4096];
    uint64_t lines = 0;
    while (fgets (line, sizeof line, out)) {
        json_error_t error;
        json_t *object = json_loads (line, 0, &error);
        assert_non_null (object);
        st_event_t holder;
        st_event_make (&holder, 2491 + lines);
        assert_int_equal (json_integer_value (json_object_get (object, "seq")), 2491 + lines);
        assert_string_equal (json_string_value (json_object_get (object, "message_id")), holder.message_id);
        assert_int_equal (strlen (json_string_value (json_object_get (object, "hash"))), 64);
        json_decref (object);
        lines++;
    }
    assert_int_equal (lines, 10);
    fclose (out);
    free (export_path);
    al_store_destroy (&store);
}

static void
test_checkpoint_and_read_only_verify (void **state)
{
    s_fixture_t *fixture = *state;
    al_store_t *store = s_open (fixture);
    st_append_range (store, 1, 50, 10);
    uint8_t public_key [crypto_sign_PUBLICKEYBYTES], secret_key [crypto_sign_SECRETKEYBYTES];
    crypto_sign_keypair (public_key, secret_key);
    char *checkpoint = st_path (fixture->dir, "checkpoint.json");
    char error [512];
    assert_int_equal (al_store_checkpoint_write (store, secret_key, checkpoint, error, sizeof error), AL_STORE_OK);
    st_append_range (store, 51, 10, 10);

    //  Read-only verification while the writer keeps its connection open.
    al_verify_report_t report;
    assert_int_equal (al_store_verify_path (fixture->backend, fixture->path, checkpoint, public_key, &report),
                      AL_STORE_OK);
    assert_int_equal (report.result, AL_VERIFY_OK);
    assert_int_equal (report.rows, 60);
    assert_true (report.checkpoint_checked);
    assert_int_equal (report.checkpoint_rows, 50);
    //  A read-only store refuses to write.
    al_store_options_t read_only = { .read_only = true };
    al_store_t *reader = al_store_open (fixture->backend, fixture->path, &read_only, error, sizeof error);
    assert_non_null (reader);
    assert_int_equal (al_store_row_count (reader), 60);
    al_store_destroy (&reader);

    //  Truncation below the checkpoint is caught.
    al_store_destroy (&store);
    s_raw_sql (fixture, "DELETE FROM events WHERE seq > 45");
    assert_int_equal (al_store_verify_path (fixture->backend, fixture->path, checkpoint, public_key, &report),
                      AL_STORE_OK);
    assert_int_equal (report.result, AL_VERIFY_TRUNCATED);
    free (checkpoint);
}

//  Enough rows for verify to split the scan over threads (each with its own connection),
//  then one tamper at a time, each named by verify at its row.
static void
test_tamper_detection (void **state)
{
    s_fixture_t *fixture = *state;
    al_store_t *store = s_open (fixture);
    st_append_range (store, 1, 9000, 1000);
    al_store_destroy (&store);
    al_verify_report_t report;
    assert_int_equal (al_store_verify_path (fixture->backend, fixture->path, NULL, NULL, &report), AL_STORE_OK);
    assert_int_equal (report.result, AL_VERIFY_OK);
    assert_int_equal (report.rows, 9000);

    //  A reason rewritten in place (late in the log: the second range's thread sees it).
    s_raw_sql (fixture, "UPDATE events SET reason = 'approved by nobody' WHERE seq = 7001");
    assert_int_equal (al_store_verify_path (fixture->backend, fixture->path, NULL, NULL, &report), AL_STORE_OK);
    assert_int_equal (report.result, AL_VERIFY_HASH_MISMATCH);
    assert_int_equal (report.first_bad_sequence, 7001);
    assert_int_equal (report.rows, 7000);
    //  An earlier damaged hash wins over the later rewrite.
    s_raw_sql (fixture, "UPDATE events SET hash = substr(hash, 1, 3) WHERE seq = 12");
    assert_int_equal (al_store_verify_path (fixture->backend, fixture->path, NULL, NULL, &report), AL_STORE_OK);
    assert_int_equal (report.result, AL_VERIFY_BAD_ROW);
    assert_int_equal (report.first_bad_sequence, 12);
    //  A row hidden below 1.
    s_raw_sql (fixture, "UPDATE events SET seq = -5 WHERE seq = 12");
    assert_int_equal (al_store_verify_path (fixture->backend, fixture->path, NULL, NULL, &report), AL_STORE_OK);
    assert_int_equal (report.result, AL_VERIFY_BAD_ROW);
    assert_non_null (strstr (report.reason, "-5"));
    s_raw_sql (fixture, "DELETE FROM events WHERE seq = -5");
    assert_int_equal (al_store_verify_path (fixture->backend, fixture->path, NULL, NULL, &report), AL_STORE_OK);
    assert_int_equal (report.result, AL_VERIFY_GAP);
    assert_int_equal (report.first_bad_sequence, 12);
}

//  Two writers on one log: the second waits for the first's lock, gives up with BUSY
//  after its busy timeout, and continues the chain from the real head.
static void
test_two_writers (void **state)
{
    s_fixture_t *fixture = *state;
    al_store_t *first = s_open (fixture);
    char error [512];
    al_store_options_t impatient = { .create = true, .busy_timeout_ms = 300 };
    al_store_t *second = al_store_open (fixture->backend, fixture->path, &impatient, error, sizeof error);
    assert_non_null (second);
    st_append_range (first, 1, 10, 10);
    assert_int_equal (al_store_begin (first), AL_STORE_OK);
    assert_int_equal (al_store_begin (second), AL_STORE_ERR_BUSY);
    assert_false (al_store_in_transaction (second));
    assert_int_equal (al_store_rollback (first), AL_STORE_OK);
    st_append_range (second, 11, 5, 5);
    assert_int_equal (al_store_row_count (second), 15);
    st_append_range (first, 16, 5, 5);
    assert_int_equal (al_store_row_count (first), 20);
    al_store_destroy (&first);
    al_store_destroy (&second);
    al_verify_report_t report;
    assert_int_equal (al_store_verify_path (fixture->backend, fixture->path, NULL, NULL, &report), AL_STORE_OK);
    assert_int_equal (report.result, AL_VERIFY_OK);
    assert_int_equal (report.rows, 20);
}

//  PostgreSQL only: durability and the refusals.
static void
test_pg_refusals (void **state)
{
    s_fixture_t *fixture = *state;
    char error [1024];
    char sql [256];
    al_store_t *store = s_open (fixture);
    st_append_range (store, 1, 3, 3);
    al_store_destroy (&store);

    //  synchronous_commit off for this database: a writer refuses, a reader still reads.
    snprintf (sql, sizeof sql, "ALTER DATABASE %s SET synchronous_commit = off", fixture->dbname);
    s_raw_sql (fixture, sql);
    store = al_store_open (AL_STORE_PG_BACKEND, fixture->path, NULL, error, sizeof error);
    assert_null (store);
    assert_non_null (strstr (error, "synchronous_commit=off"));
    assert_non_null (strstr (error, fixture->dbname));
    al_verify_report_t report;
    assert_int_equal (al_store_verify_path (AL_STORE_PG_BACKEND, fixture->path, NULL, NULL, &report), AL_STORE_OK);
    assert_int_equal (report.result, AL_VERIFY_OK);
    snprintf (sql, sizeof sql, "ALTER DATABASE %s SET synchronous_commit = on", fixture->dbname);
    s_raw_sql (fixture, sql);
    store = s_open (fixture);
    al_store_destroy (&store);

    //  A newer schema.
    s_raw_sql (fixture, "UPDATE meta SET value = '2' WHERE key = 'schema_version'");
    store = al_store_open (AL_STORE_PG_BACKEND, fixture->path, NULL, error, sizeof error);
    assert_null (store);
    assert_non_null (strstr (error, "schema version 2 is newer"));

    //  An empty database opened read-only or without create.
    char *empty = pg_harness_database_new (s_server, "empty", error, sizeof error);
    assert_non_null (empty);
    al_store_options_t read_only = { .read_only = true };
    store = al_store_open (AL_STORE_PG_BACKEND, empty, &read_only, error, sizeof error);
    assert_null (store);
    assert_non_null (strstr (error, "empty database"));
    al_store_options_t no_create = { .create = false };
    store = al_store_open (AL_STORE_PG_BACKEND, empty, &no_create, error, sizeof error);
    assert_null (store);
    assert_non_null (strstr (error, "no audit log"));
    free (empty);

    //  A database holding other tables.
    snprintf (sql, sizeof sql, "DROP TABLE meta");
    s_raw_sql (fixture, sql);
    store = al_store_open (AL_STORE_PG_BACKEND, fixture->path, NULL, error, sizeof error);
    assert_null (store);
    assert_non_null (strstr (error, "not an airlock audit database"));

    //  A dsn holding a password is refused before connecting, and the password is not
    //  shown (a passfile holds it instead).
    char dsn [256];
    snprintf (dsn, sizeof dsn, "host=127.0.0.1 port=1 dbname=x user=airlock password=hunter2secret connect_timeout=5");
    store = al_store_open (AL_STORE_PG_BACKEND, dsn, NULL, error, sizeof error);
    assert_null (store);
    assert_non_null (strstr (error, "holds a password"));
    assert_null (strstr (error, "hunter2secret"));
    //  A server that does not answer: the error names it.
    char quiet [256];
    snprintf (quiet, sizeof quiet, "host=127.0.0.1 port=1 dbname=x user=airlock connect_timeout=5");
    store = al_store_open (AL_STORE_PG_BACKEND, quiet, NULL, error, sizeof error);
    assert_null (store);
    assert_non_null (strstr (error, "cannot connect"));
    assert_non_null (strstr (error, "port=1"));
    assert_int_equal (al_store_pg_dsn_has_password (dsn, error, sizeof error), 1);
    assert_int_equal (al_store_pg_dsn_has_password (fixture->path, error, sizeof error), 0);
    assert_int_equal (al_store_pg_dsn_has_password ("host=a port", error, sizeof error), -1);
    char *display = al_store_pg_dsn_display ("postgresql://airlock:hunter2secret@db1:5433/audit");
    assert_non_null (display);
    assert_null (strstr (display, "hunter2secret"));
    assert_non_null (strstr (display, "host=db1"));
    assert_non_null (strstr (display, "dbname=audit"));
    free (display);
}

//  PostgreSQL only: the server restarts under an open store; the next transaction
//  reconnects and the chain continues.
static void
test_pg_reconnect (void **state)
{
    s_fixture_t *fixture = *state;
    al_store_t *store = s_open (fixture);
    st_append_range (store, 1, 5, 5);
    assert_int_equal (pg_harness_kill (s_server), 0);
    char error [2048];
    if (pg_harness_start (s_server, error, sizeof error) != 0)
        fail_msg ("%s", error);
    //  The first begin may find the connection broken only on use; it must then fail
    //  cleanly, and the one after must reconnect.
    al_store_status_t status = al_store_begin (store);
    if (status != AL_STORE_OK) {
        assert_int_equal (status, AL_STORE_ERR_IO);
        assert_false (al_store_in_transaction (store));
        status = al_store_begin (store);
    }
    assert_int_equal (status, AL_STORE_OK);
    assert_int_equal (al_store_row_count (store), 5);
    assert_int_equal (al_store_rollback (store), AL_STORE_OK);
    st_append_range (store, 6, 5, 5);
    al_store_destroy (&store);
    al_verify_report_t report;
    assert_int_equal (al_store_verify_path (AL_STORE_PG_BACKEND, fixture->path, NULL, NULL, &report), AL_STORE_OK);
    assert_int_equal (report.result, AL_VERIFY_OK);
    assert_int_equal (report.rows, 10);
}

//  PostgreSQL only: a write deferred in the pipeline that the server refuses fails the
//  transaction (at the next call, at the latest at commit), never a commit that reports
//  success; the store goes on afterwards.
static void
test_pg_deferred_write_fails_the_commit (void **state)
{
    s_fixture_t *fixture = *state;
    al_store_t *store = s_open (fixture);
    st_append_range (store, 1, 3, 3);
    s_raw_sql (fixture, "ALTER TABLE events ADD CONSTRAINT no_evil CHECK (reason <> 'evil'::bytea)");
    al_store_event_t event = {
        .time_ms = 9, .sender = "qa", .role = "qa", .type = "QaReport", .message_id = "evil-1",
        .decision = AL_STORE_DENIED, .reason = "evil"
    };
    al_store_event_t after = event;
    after.message_id = "after-1";
    after.reason = "fine";
    al_store_append_result_t result;
    assert_int_equal (al_store_begin (store), AL_STORE_OK);
    al_store_status_t first = al_store_append (store, &event, &result);
    al_store_status_t second = first == AL_STORE_OK? al_store_append (store, &after, &result): first;
    al_store_status_t commit = AL_STORE_ERR_IO;
    if (first == AL_STORE_OK && second == AL_STORE_OK)
        commit = al_store_commit (store);
    else
        assert_int_equal (al_store_rollback (store), AL_STORE_OK);
    //  Whichever call saw it, the refusal is reported, and named.
    assert_true (first != AL_STORE_OK || second != AL_STORE_OK || commit != AL_STORE_OK);
    assert_non_null (strstr (al_store_error (store), "no_evil"));
    assert_false (al_store_in_transaction (store));
    assert_int_equal (al_store_row_count (store), 3);
    //  Only the commit: an event with no lookup before it (empty message id).
    event.message_id = "";
    assert_int_equal (al_store_begin (store), AL_STORE_OK);
    assert_int_equal (al_store_append (store, &event, &result), AL_STORE_OK);
    assert_int_not_equal (al_store_commit (store), AL_STORE_OK);
    assert_int_equal (al_store_row_count (store), 3);
    //  The store goes on.
    st_append_range (store, 4, 4, 2);
    al_store_destroy (&store);
    al_verify_report_t report;
    assert_int_equal (al_store_verify_path (AL_STORE_PG_BACKEND, fixture->path, NULL, NULL, &report), AL_STORE_OK);
    assert_int_equal (report.result, AL_VERIFY_OK);
    assert_int_equal (report.rows, 7);
}

#define S_BOTH(test) \
    cmocka_unit_test_prestate_setup_teardown (test, s_setup, s_teardown, (void *) "sqlite"), \
    cmocka_unit_test_prestate_setup_teardown (test, s_setup, s_teardown, (void *) AL_STORE_PG_BACKEND)
#define S_PG(test) \
    cmocka_unit_test_prestate_setup_teardown (test, s_setup, s_teardown, (void *) AL_STORE_PG_BACKEND)

int
main (void)
{
    const struct CMUnitTest tests [] = {
        //  First, while the server holds few databases: crash recovery syncs them all.
        S_PG (test_pg_reconnect),
        S_BOTH (test_append_chain_and_reopen),
        S_BOTH (test_dedup),
        S_BOTH (test_side_tables),
        S_BOTH (test_iterator_and_export),
        S_BOTH (test_checkpoint_and_read_only_verify),
        S_BOTH (test_tamper_detection),
        S_BOTH (test_two_writers),
        S_PG (test_pg_refusals),
        S_PG (test_pg_deferred_write_fails_the_commit),
    };
    return cmocka_run_group_tests (tests, s_group_setup, s_group_teardown);
}
