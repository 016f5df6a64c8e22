/*  test_store_tamper.c: verification finds tampering on a 10,000-row log.

    One log is built once; each case copies it, tampers through the raw sqlite3 API (as
    an attacker with write access to the file would) and checks verify's verdict and
    its first bad sequence number, at the head, the middle and the tail. Checkpoints
    catch what the chain alone cannot: truncation and a consistent rewrite.
*/
#include "store_test_util.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_ROWS 10000
#define S_MIDDLE 5000

static char *s_dir;
static char *s_base;            // the pristine log
static char *s_copy;            // the copy each case tampers with
static char *s_checkpoint;      // signed at S_ROWS rows
static uint8_t s_secret_key [crypto_sign_SECRETKEYBYTES];
static uint8_t s_public_key [crypto_sign_PUBLICKEYBYTES];

static int
s_group_setup (void **state)
{
    (void) state;
    s_dir = st_dir_new ();
    assert_non_null (s_dir);
    s_base = st_path (s_dir, "base.db");
    s_copy = st_path (s_dir, "copy.db");
    s_checkpoint = st_path (s_dir, "checkpoint.json");
    assert_true (sodium_init () >= 0);
    crypto_sign_keypair (s_public_key, s_secret_key);
    al_store_t *store = st_open (s_base);
    st_append_range (store, 1, S_ROWS, 500);
    char error [512];
    assert_int_equal (al_store_checkpoint_write (store, s_secret_key, s_checkpoint, error, sizeof error),
                      AL_STORE_OK);
    //  Closing the last connection folds the WAL into the main file.
    al_store_destroy (&store);
    return 0;
}

static int
s_group_teardown (void **state)
{
    (void) state;
    st_dir_remove (&s_dir);
    free (s_base);
    free (s_copy);
    free (s_checkpoint);
    return 0;
}

static sqlite3 *
s_fresh_copy (void)
{
    //  Stale -wal/-shm files of the previous case must not be applied to the new copy.
    char *side = NULL;
    assert_true (asprintf (&side, "%s-wal", s_copy) > 0);
    remove (side);
    side [strlen (side) - 3] = 's';
    side [strlen (side) - 2] = 'h';
    side [strlen (side) - 1] = 'm';
    remove (side);
    free (side);
    assert_int_equal (st_copy_file (s_base, s_copy), 0);
    sqlite3 *db = NULL;
    assert_int_equal (sqlite3_open (s_copy, &db), SQLITE_OK);
    return db;
}

static void
s_exec (sqlite3 *db, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    char *sql = sqlite3_vmprintf (format, args);
    va_end (args);
    char *message = NULL;
    if (sqlite3_exec (db, sql, NULL, NULL, &message) != SQLITE_OK)
        fail_msg ("%s: %s", sql, message);
    sqlite3_free (sql);
}

//  Closes the tampered copy and verifies it (read-only) with an optional checkpoint.
static al_verify_report_t
s_verify (sqlite3 **db_p, const char *checkpoint)
{
    if (*db_p) {
        assert_int_equal (sqlite3_close (*db_p), SQLITE_OK);
        *db_p = NULL;
    }
    al_verify_report_t report;
    assert_int_equal (al_store_verify_path ("sqlite", s_copy, checkpoint, NULL, &report), AL_STORE_OK);
    return report;
}

static void
s_expect (sqlite3 **db_p, const char *checkpoint, al_verify_result_t result, uint64_t first_bad)
{
    al_verify_report_t report = s_verify (db_p, checkpoint);
    if (report.result != result || report.first_bad_sequence != first_bad)
        fail_msg ("expected %s at %llu, got %s at %llu (%s)", al_verify_result_name (result),
                  (unsigned long long) first_bad, al_verify_result_name (report.result),
                  (unsigned long long) report.first_bad_sequence, report.reason);
}

//  Head, middle, tail; S_MIDDLE and S_MIDDLE + 1 are also where verify splits the log
//  between its two threads on a 2-core machine.
static const uint64_t s_positions [] = { 1, S_MIDDLE, S_MIDDLE + 1, S_ROWS };
#define S_POSITIONS (sizeof s_positions / sizeof s_positions [0])

static void
test_pristine_log_verifies (void **state)
{
    (void) state;
    sqlite3 *db = s_fresh_copy ();
    al_verify_report_t report = s_verify (&db, s_checkpoint);
    assert_int_equal (report.result, AL_VERIFY_OK);
    assert_int_equal (report.rows, S_ROWS);
    assert_true (report.checkpoint_checked);
    assert_int_equal (report.first_bad_sequence, 0);
}

static void
test_modify_one_byte (void **state)
{
    (void) state;
    for (size_t i = 0; i < S_POSITIONS; i++) {
        uint64_t k = s_positions [i];
        //  A byte of the envelope.
        sqlite3 *db = s_fresh_copy ();
        s_exec (db, "UPDATE events SET envelope = CAST(substr(envelope, 1, 9) || X'FF' || substr(envelope, 11)"
                    " AS BLOB) WHERE seq = %llu", (unsigned long long) k);
        s_expect (&db, NULL, AL_VERIFY_HASH_MISMATCH, k);
        //  A byte of a text field (the reason of a denial, the time, the sender).
        db = s_fresh_copy ();
        s_exec (db, "UPDATE events SET time_ms = time_ms + 1 WHERE seq = %llu", (unsigned long long) k);
        s_expect (&db, NULL, AL_VERIFY_HASH_MISMATCH, k);
        db = s_fresh_copy ();
        s_exec (db, "UPDATE events SET sender = 'agent-X' WHERE seq = %llu", (unsigned long long) k);
        s_expect (&db, NULL, AL_VERIFY_HASH_MISMATCH, k);
        //  The decision: a denial turned into an acceptance.
        db = s_fresh_copy ();
        s_exec (db, "UPDATE events SET decision = 3 - decision WHERE seq = %llu", (unsigned long long) k);
        s_expect (&db, NULL, AL_VERIFY_HASH_MISMATCH, k);
        //  A byte of the stored hash itself.
        db = s_fresh_copy ();
        s_exec (db, "UPDATE events SET hash = X'00' || substr(hash, 2) WHERE seq = %llu", (unsigned long long) k);
        s_expect (&db, NULL, AL_VERIFY_HASH_MISMATCH, k);
    }
}

static void
test_malformed_rows (void **state)
{
    (void) state;
    for (size_t i = 0; i < S_POSITIONS; i++) {
        uint64_t k = s_positions [i];
        sqlite3 *db = s_fresh_copy ();
        s_exec (db, "UPDATE events SET hash = X'' WHERE seq = %llu", (unsigned long long) k);
        s_expect (&db, NULL, AL_VERIFY_BAD_ROW, k);
        db = s_fresh_copy ();
        s_exec (db, "UPDATE events SET hash = substr(hash, 1, 31) WHERE seq = %llu", (unsigned long long) k);
        s_expect (&db, NULL, AL_VERIFY_BAD_ROW, k);
        db = s_fresh_copy ();
        s_exec (db, "UPDATE events SET decision = 7 WHERE seq = %llu", (unsigned long long) k);
        s_expect (&db, NULL, AL_VERIFY_BAD_ROW, k);
    }
}

//  A row numbered 0 or below sorts before row 1: verify must see it, not skip it.
static void
test_row_below_one (void **state)
{
    (void) state;
    const long long numbers [] = { 0, -1, -9223372036854775807LL - 1 };
    for (size_t i = 0; i < sizeof numbers / sizeof numbers [0]; i++) {
        sqlite3 *db = s_fresh_copy ();
        s_exec (db, "INSERT INTO events SELECT %lld, time_ms, sender, role, type, 'hidden-%d',"
                    " deployment_id, environment, decision, reason, envelope, hash FROM events WHERE seq = 5",
                numbers [i], (int) i);
        s_expect (&db, NULL, AL_VERIFY_BAD_ROW, 1);
    }
}

static void
test_delete_row (void **state)
{
    (void) state;
    //  Head and middle: a gap at the missing number.
    sqlite3 *db = s_fresh_copy ();
    s_exec (db, "DELETE FROM events WHERE seq = 1");
    s_expect (&db, NULL, AL_VERIFY_GAP, 1);
    db = s_fresh_copy ();
    s_exec (db, "DELETE FROM events WHERE seq = %d", S_MIDDLE);
    s_expect (&db, NULL, AL_VERIFY_GAP, S_MIDDLE);
    db = s_fresh_copy ();
    s_exec (db, "DELETE FROM events WHERE seq = %d", S_MIDDLE + 1);
    s_expect (&db, NULL, AL_VERIFY_GAP, S_MIDDLE + 1);
    //  Deleted and the rest renumbered to hide the gap: the hashes break there.
    db = s_fresh_copy ();
    s_exec (db, "DELETE FROM events WHERE seq = %d;"
                "UPDATE events SET seq = -seq WHERE seq > %d;"
                "UPDATE events SET seq = -seq - 1 WHERE seq < 0", S_MIDDLE, S_MIDDLE);
    s_expect (&db, NULL, AL_VERIFY_HASH_MISMATCH, S_MIDDLE);
    //  Tail: the remaining chain is intact; only the checkpoint shows the cut.
    db = s_fresh_copy ();
    s_exec (db, "DELETE FROM events WHERE seq = %d", S_ROWS);
    al_verify_report_t report = s_verify (&db, NULL);
    assert_int_equal (report.result, AL_VERIFY_OK);
    assert_int_equal (report.rows, S_ROWS - 1);
    s_expect (&db, s_checkpoint, AL_VERIFY_TRUNCATED, S_ROWS);
}

static void
test_swap_neighbours (void **state)
{
    (void) state;
    const uint64_t firsts [] = { 1, S_MIDDLE, S_ROWS - 1 };
    for (size_t i = 0; i < 3; i++) {
        uint64_t k = firsts [i];
        sqlite3 *db = s_fresh_copy ();
        //  Each row moves, whole, to its neighbour's sequence number.
        s_exec (db, "UPDATE events SET seq = -1 WHERE seq = %llu;"
                    "UPDATE events SET seq = %llu WHERE seq = %llu;"
                    "UPDATE events SET seq = %llu WHERE seq = -1",
                (unsigned long long) k, (unsigned long long) k, (unsigned long long) k + 1,
                (unsigned long long) k + 1);
        s_expect (&db, NULL, AL_VERIFY_HASH_MISMATCH, k);
    }
}

//  Inserts a forged row at sequence k, shifting the rows from k up by one. With
//  consistent, the forger computes the forged row's hash correctly from its predecessor
//  (the chain has no secret); otherwise the forged row carries a copied hash.
static void
s_insert_forged (sqlite3 *db, uint64_t k, bool consistent)
{
    s_exec (db, "UPDATE events SET seq = -seq WHERE seq >= %llu;"
                "UPDATE events SET seq = -seq + 1 WHERE seq < 0", (unsigned long long) k);
    st_event_t holder;
    st_event_make (&holder, k);
    holder.event.sequence = k;
    holder.event.decision = AL_STORE_ACCEPTED;
    holder.event.reason = "approved by manager";
    snprintf (holder.message_id, sizeof holder.message_id, "forged-%llu", (unsigned long long) k);
    uint8_t prev [AL_STORE_HASH_SIZE] = { 0 };
    sqlite3_stmt *stmt = NULL;
    if (k > 1) {
        assert_int_equal (sqlite3_prepare_v2 (db, "SELECT hash FROM events WHERE seq = ?", -1, &stmt, NULL),
                          SQLITE_OK);
        sqlite3_bind_int64 (stmt, 1, (sqlite3_int64) k - 1);
        assert_int_equal (sqlite3_step (stmt), SQLITE_ROW);
        memcpy (prev, sqlite3_column_blob (stmt, 0), AL_STORE_HASH_SIZE);
        sqlite3_finalize (stmt);
    }
    uint8_t row [1024];
    size_t size = al_store_row_encode (&holder.event, row, sizeof row);
    assert_true (size <= sizeof row);
    uint8_t hash [AL_STORE_HASH_SIZE];
    al_store_chain_hash (prev, row, size, hash);
    if (!consistent)
        memcpy (hash, prev, AL_STORE_HASH_SIZE);
    assert_int_equal (sqlite3_prepare_v2 (db, "INSERT INTO events (seq, time_ms, sender, role, type, message_id,"
                      " deployment_id, environment, decision, reason, envelope, hash)"
                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)", -1, &stmt, NULL), SQLITE_OK);
    sqlite3_bind_int64 (stmt, 1, (sqlite3_int64) k);
    sqlite3_bind_int64 (stmt, 2, (sqlite3_int64) holder.event.time_ms);
    sqlite3_bind_text (stmt, 3, holder.event.sender, -1, SQLITE_STATIC);
    sqlite3_bind_text (stmt, 4, holder.event.role, -1, SQLITE_STATIC);
    sqlite3_bind_text (stmt, 5, holder.event.type, -1, SQLITE_STATIC);
    sqlite3_bind_text (stmt, 6, holder.event.message_id, -1, SQLITE_STATIC);
    sqlite3_bind_text (stmt, 7, holder.event.deployment_id, -1, SQLITE_STATIC);
    sqlite3_bind_text (stmt, 8, holder.event.environment, -1, SQLITE_STATIC);
    sqlite3_bind_int (stmt, 9, (int) holder.event.decision);
    sqlite3_bind_text (stmt, 10, holder.event.reason, -1, SQLITE_STATIC);
    sqlite3_bind_blob (stmt, 11, holder.event.envelope, (int) holder.event.envelope_size, SQLITE_STATIC);
    sqlite3_bind_blob (stmt, 12, hash, AL_STORE_HASH_SIZE, SQLITE_STATIC);
    assert_int_equal (sqlite3_step (stmt), SQLITE_DONE);
    sqlite3_finalize (stmt);
}

static void
test_insert_forged_row (void **state)
{
    (void) state;
    const uint64_t positions [] = { 1, S_MIDDLE, S_ROWS, S_ROWS + 1 };
    for (size_t i = 0; i < 4; i++) {
        uint64_t k = positions [i];
        //  A forged row that does not carry its chain hash is caught at its own number.
        sqlite3 *db = s_fresh_copy ();
        s_insert_forged (db, k, false);
        s_expect (&db, NULL, AL_VERIFY_HASH_MISMATCH, k);
        //  A forger who computes the hash: the displaced original row no longer chains
        //  (its predecessor and its number changed), so the break is at k + 1.
        if (k <= S_ROWS) {
            db = s_fresh_copy ();
            s_insert_forged (db, k, true);
            s_expect (&db, NULL, AL_VERIFY_HASH_MISMATCH, k + 1);
        }
    }
    //  Appended after the tail with a correct hash, a forged row is indistinguishable
    //  from a real one by the chain alone: that is what the broker's own later
    //  checkpoints (which would not include it) and the key-signed envelopes are for.
    sqlite3 *db = s_fresh_copy ();
    s_insert_forged (db, S_ROWS + 1, true);
    al_verify_report_t report = s_verify (&db, s_checkpoint);
    assert_int_equal (report.result, AL_VERIFY_OK);
    assert_int_equal (report.rows, S_ROWS + 1);
}

//  The copy's row `from` gets another reason and every hash from it on is recomputed, as
//  a forger who knows the (secret-less) chain would: verify alone passes afterwards.
static void
s_rewrite_consistently (uint64_t from)
{
    sqlite3 *db = NULL;
    assert_int_equal (sqlite3_open (s_copy, &db), SQLITE_OK);
    s_exec (db, "UPDATE events SET reason = 'rewritten' WHERE seq = %llu", (unsigned long long) from);
    sqlite3_close (db);
    char error [512];
    al_store_t *store = al_store_open ("sqlite", s_copy, NULL, error, sizeof error);
    assert_non_null (store);
    sqlite3 *raw = NULL;
    assert_int_equal (sqlite3_open (s_copy, &raw), SQLITE_OK);
    uint8_t prev [AL_STORE_HASH_SIZE];
    al_store_event_t event;
    assert_int_equal (al_store_event_get (store, from - 1, &event), AL_STORE_OK);
    memcpy (prev, event.hash, AL_STORE_HASH_SIZE);
    s_exec (raw, "BEGIN");
    sqlite3_stmt *update = NULL;
    assert_int_equal (sqlite3_prepare_v2 (raw, "UPDATE events SET hash = ?1 WHERE seq = ?2", -1, &update,
                                          NULL), SQLITE_OK);
    for (uint64_t seq = from; seq <= S_ROWS; seq++) {
        assert_int_equal (al_store_event_get (store, seq, &event), AL_STORE_OK);
        uint8_t row [1024];
        size_t size = al_store_row_encode (&event, row, sizeof row);
        al_store_chain_hash (prev, row, size, prev);
        sqlite3_bind_blob (update, 1, prev, AL_STORE_HASH_SIZE, SQLITE_STATIC);
        sqlite3_bind_int64 (update, 2, (sqlite3_int64) seq);
        assert_int_equal (sqlite3_step (update), SQLITE_DONE);
        sqlite3_reset (update);
    }
    sqlite3_finalize (update);
    s_exec (raw, "COMMIT");
    sqlite3_close (raw);
    al_store_destroy (&store);
}

static void
test_checkpoint_truncation_and_rewrite (void **state)
{
    (void) state;
    //  The last 10 rows cut off: the chain alone is fine, the checkpoint is not.
    sqlite3 *db = s_fresh_copy ();
    s_exec (db, "DELETE FROM events WHERE seq > %d", S_ROWS - 10);
    al_verify_report_t report = s_verify (&db, NULL);
    assert_int_equal (report.result, AL_VERIFY_OK);
    s_expect (&db, s_checkpoint, AL_VERIFY_TRUNCATED, S_ROWS - 9);
    //  Everything deleted.
    db = s_fresh_copy ();
    s_exec (db, "DELETE FROM events");
    s_expect (&db, s_checkpoint, AL_VERIFY_TRUNCATED, 1);

    //  A consistent rewrite from the middle on: every hash recomputed, so the chain
    //  verifies, but the row the checkpoint vouches for has another hash.
    db = s_fresh_copy ();
    sqlite3_close (db);
    db = NULL;
    s_rewrite_consistently (S_MIDDLE);
    report = s_verify (&db, NULL);
    assert_int_equal (report.result, AL_VERIFY_OK);
    s_expect (&db, s_checkpoint, AL_VERIFY_CHECKPOINT_MISMATCH, S_ROWS);
}

//  al_store_checkpoint_write_head signs the writer's own head, and only while the file
//  still holds it; al_store_checkpoint_write signs whatever the file holds, a consistent
//  rewrite included.
static void
test_checkpoint_signs_only_the_writers_head (void **state)
{
    (void) state;
    sqlite3 *db = s_fresh_copy ();
    sqlite3_close (db);
    db = NULL;
    char error [1024];
    al_store_t *store = al_store_open ("sqlite", s_copy, NULL, error, sizeof error);
    assert_non_null (store);
    al_store_event_t event;
    assert_int_equal (al_store_event_get (store, S_ROWS, &event), AL_STORE_OK);
    uint8_t own_head [AL_STORE_HASH_SIZE];
    memcpy (own_head, event.hash, AL_STORE_HASH_SIZE);
    char *own = st_path (s_dir, "own.json");
    char *file_head = st_path (s_dir, "file-head.json");
    remove (own);
    assert_int_equal (al_store_checkpoint_write_head (store, s_secret_key, own, S_ROWS, own_head,
                                                      error, sizeof error), AL_STORE_OK);
    al_verify_report_t report;
    assert_int_equal (al_store_verify_path ("sqlite", s_copy, own, s_public_key, &report), AL_STORE_OK);
    assert_int_equal (report.result, AL_VERIFY_OK);
    assert_int_equal (report.checkpoint_rows, S_ROWS);
    remove (own);
    //  A row the writer never committed, and an empty log that is not empty.
    assert_int_equal (al_store_checkpoint_write_head (store, s_secret_key, own, S_ROWS + 1, own_head,
                                                      error, sizeof error), AL_STORE_ERR_HEAD_MISMATCH);
    assert_non_null (strstr (error, "is missing"));
    assert_int_equal (al_store_checkpoint_write_head (store, s_secret_key, own, 0, own_head,
                                                      error, sizeof error), AL_STORE_ERR_HEAD_MISMATCH);
    assert_int_equal (access (own, F_OK), -1);
    al_store_destroy (&store);

    //  The file is rewritten consistently under the writer.
    s_rewrite_consistently (S_MIDDLE);
    store = al_store_open ("sqlite", s_copy, NULL, error, sizeof error);
    assert_non_null (store);
    assert_int_equal (al_store_checkpoint_write_head (store, s_secret_key, own, S_ROWS, own_head,
                                                      error, sizeof error), AL_STORE_ERR_HEAD_MISMATCH);
    assert_non_null (strstr (error, "the log was changed"));
    char own_hex [AL_STORE_HASH_SIZE * 2 + 1];
    sodium_bin2hex (own_hex, sizeof own_hex, own_head, AL_STORE_HASH_SIZE);
    assert_non_null (strstr (error, own_hex));
    assert_int_equal (access (own, F_OK), -1);
    //  A row before the rewrite still holds: signing it is right.
    assert_int_equal (al_store_event_get (store, S_MIDDLE - 1, &event), AL_STORE_OK);
    uint8_t before [AL_STORE_HASH_SIZE];
    memcpy (before, event.hash, AL_STORE_HASH_SIZE);
    assert_int_equal (al_store_checkpoint_write_head (store, s_secret_key, own, S_MIDDLE - 1, before,
                                                      error, sizeof error), AL_STORE_OK);
    //  What the file-head checkpoint does: it vouches for the forgery.
    assert_int_equal (al_store_checkpoint_write (store, s_secret_key, file_head, error, sizeof error), AL_STORE_OK);
    al_store_destroy (&store);
    assert_int_equal (al_store_verify_path ("sqlite", s_copy, file_head, s_public_key, &report), AL_STORE_OK);
    assert_int_equal (report.result, AL_VERIFY_OK);
    assert_int_equal (al_store_verify_path ("sqlite", s_copy, own, s_public_key, &report), AL_STORE_OK);
    assert_int_equal (report.result, AL_VERIFY_OK);
    assert_int_equal (report.checkpoint_rows, S_MIDDLE - 1);
    remove (own);
    remove (file_head);
    free (own);
    free (file_head);
}

//  Rewrites one field of the checkpoint file with sed-like substitution in memory.
static void
s_write_altered_checkpoint (const char *path, const char *field, const char *replacement_value)
{
    FILE *in = fopen (s_checkpoint, "r");
    assert_non_null (in);
    char text [2048];
    size_t size = fread (text, 1, sizeof text - 1, in);
    fclose (in);
    text [size] = '\0';
    char *start = strstr (text, field);
    assert_non_null (start);
    char *value = strchr (start + strlen (field), ':');
    assert_non_null (value);
    char *end = strpbrk (value, ",\n}");
    assert_non_null (end);
    FILE *out = fopen (path, "w");
    assert_non_null (out);
    fprintf (out, "%.*s: %s%s", (int) (value - text), text, replacement_value, end);
    fclose (out);
}

static void
test_bad_checkpoint (void **state)
{
    (void) state;
    char *altered = st_path (s_dir, "altered.json");
    sqlite3 *db = s_fresh_copy ();
    sqlite3_close (db);
    db = NULL;
    //  A claimed smaller row count, a flipped signature, a foreign key: all refused.
    s_write_altered_checkpoint (altered, "\"row_count\"", "9000");
    s_expect (&db, altered, AL_VERIFY_BAD_CHECKPOINT, 0);
    char signature [129];
    memset (signature, 'a', 128);
    signature [128] = '\0';
    char quoted [140];
    snprintf (quoted, sizeof quoted, "\"%s\"", signature);
    s_write_altered_checkpoint (altered, "\"signature\"", quoted);
    s_expect (&db, altered, AL_VERIFY_BAD_CHECKPOINT, 0);
    s_write_altered_checkpoint (altered, "\"public_key\"", "\"00\"");
    s_expect (&db, altered, AL_VERIFY_BAD_CHECKPOINT, 0);
    FILE *garbage = fopen (altered, "w");
    assert_non_null (garbage);
    fputs ("not json", garbage);
    fclose (garbage);
    s_expect (&db, altered, AL_VERIFY_BAD_CHECKPOINT, 0);
    //  Pinned to the broker's key: its checkpoint holds, a checkpoint made (over a
    //  truncated log, say) with any other key does not.
    al_verify_report_t report;
    assert_int_equal (al_store_verify_path ("sqlite", s_copy, s_checkpoint, s_public_key, &report), AL_STORE_OK);
    assert_int_equal (report.result, AL_VERIFY_OK);
    assert_true (report.checkpoint_checked);
    assert_memory_equal (report.checkpoint_key, s_public_key, sizeof s_public_key);
    uint8_t other_public [crypto_sign_PUBLICKEYBYTES], other_secret [crypto_sign_SECRETKEYBYTES];
    crypto_sign_keypair (other_public, other_secret);
    {
        char error [512];
        al_store_t *store = st_open (s_copy);
        assert_int_equal (al_store_checkpoint_write (store, other_secret, altered, error, sizeof error), AL_STORE_OK);
        al_store_destroy (&store);
    }
    assert_int_equal (al_store_verify_path ("sqlite", s_copy, altered, NULL, &report), AL_STORE_OK);
    assert_int_equal (report.result, AL_VERIFY_OK);
    assert_int_equal (al_store_verify_path ("sqlite", s_copy, altered, s_public_key, &report), AL_STORE_OK);
    assert_int_equal (report.result, AL_VERIFY_BAD_CHECKPOINT);
    assert_non_null (strstr (report.reason, "another key"));
    free (altered);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_pristine_log_verifies),
        cmocka_unit_test (test_modify_one_byte),
        cmocka_unit_test (test_malformed_rows),
        cmocka_unit_test (test_row_below_one),
        cmocka_unit_test (test_delete_row),
        cmocka_unit_test (test_swap_neighbours),
        cmocka_unit_test (test_insert_forged_row),
        cmocka_unit_test (test_checkpoint_truncation_and_rewrite),
        cmocka_unit_test (test_bad_checkpoint),
        cmocka_unit_test (test_checkpoint_signs_only_the_writers_head),
    };
    return cmocka_run_group_tests (tests, s_group_setup, s_group_teardown);
}
