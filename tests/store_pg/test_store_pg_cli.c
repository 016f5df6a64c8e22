/*  test_store_pg_cli.c: the audit log on PostgreSQL from the outside.

    `airlock store copy` moves a realistic SQLite log (tests/audit's history of releases,
    with its side tables) into PostgreSQL and proves the copy; `store compare` names a
    row changed in the copy or a side-table row gone; a source whose chain is broken is
    refused with nothing written; a non-empty target is refused. `airlock audit verify,
    replay, history, export` give the same answers on the PostgreSQL copy (airlock.yaml
    store.backend postgres, or --postgres DSN) as on the SQLite original, and verify
    names a row tampered with psql-style SQL. airlock.yaml's store section is checked
    (unknown backend, missing dsn, a password in the dsn). Last, a real broker with
    store: postgres in airlock.yaml accepts, acknowledges and de-duplicates messages whose
    rows are in PostgreSQL, and nothing in SQLite.
*/
#include "pg_harness.h"
#include "../audit/audit_log.h"
#include "../broker/harness.h"
#include "base/al_config.h"
#include "store/al_store_pg.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static pg_harness_t *s_server;
static audit_log_t *s_log;
static char s_out [4200];

static int
s_group_setup (void **state)
{
    (void) state;
    char error [2048];
    s_server = pg_harness_new (error, sizeof error);
    if (!s_server) {
        fprintf (stderr, "test_store_pg_cli: %s\n", error);
        return -1;
    }
    s_log = audit_log_new ();
    snprintf (s_out, sizeof s_out, "%s/command.out", s_log->dir);
    return 0;
}

static int
s_group_teardown (void **state)
{
    (void) state;
    audit_log_destroy (&s_log);
    pg_harness_destroy (&s_server);
    return 0;
}

//  Run `airlock ARGS`, output (stdout and stderr) into *output_p; returns the exit code.
static int
s_airlock (char **output_p, const char *format, ...)
{
    const char *binary_dir = getenv ("AIRLOCK_BINARY_DIR");
    assert_non_null (binary_dir);
    char arguments [3000], command [8192];
    va_list args;
    va_start (args, format);
    vsnprintf (arguments, sizeof arguments, format, args);
    va_end (args);
    snprintf (command, sizeof command, "%s/airlock %s > '%s' 2>&1", binary_dir, arguments, s_out);
    int status = system (command);
    assert_true (WIFEXITED (status));
    char *output = audit_log_read_file (s_out);
    assert_non_null (output);
    if (output_p)
        *output_p = output;
    else
        free (output);
    return WEXITSTATUS (status);
}

static void
s_expect (const char *output, const char *needle)
{
    if (!strstr (output, needle))
        fail_msg ("'%s' not in the output:\n%s", needle, output);
}

static char *
s_sql (const char *dbname, const char *sql)
{
    char error [1024];
    char *value = pg_harness_sql (s_server, dbname, sql, error, sizeof error);
    if (!value)
        fail_msg ("%s", error);
    return value;
}

static char *
s_new_database (const char *prefix, char *name, size_t name_size)
{
    char error [1024];
    char *dsn = pg_harness_database_new (s_server, prefix, error, sizeof error);
    if (!dsn)
        fail_msg ("%s", error);
    const char *start = strstr (dsn, "dbname=") + 7;
    snprintf (name, name_size, "%.*s", (int) strcspn (start, " "), start);
    return dsn;
}

//  airlock.yaml of the audit log's state directory with store: postgres added.
static char *
s_pg_config (const char *dsn)
{
    char *original = audit_log_read_file (s_log->config);
    assert_non_null (original);
    char *path = NULL, *text = NULL;
    assert_true (asprintf (&path, "%s/airlock-pg.yaml", s_log->dir) > 0);
    assert_true (asprintf (&text, "%sstore:\n  backend: postgres\n  dsn: \"%s\"\n", original, dsn) > 0);
    audit_log_write_file (path, text);
    free (original);
    free (text);
    return path;
}

static void
test_copy_then_audit_on_postgres (void **state)
{
    (void) state;
    char name [128];
    char *dsn = s_new_database ("copy", name, sizeof name);
    char *output = NULL;

    //  Copy, with every side table, and the proof.
    assert_int_equal (s_airlock (&output, "store copy --db '%s' --postgres '%s'", s_log->db, dsn), 0);
    s_expect (output, "store copy: OK");
    char rows [64];
    snprintf (rows, sizeof rows, "the same %llu rows", (unsigned long long) s_log->rows);
    s_expect (output, rows);
    free (output);
    char *count = s_sql (name, "SELECT count(*) FROM events");
    assert_int_equal (strtoull (count, NULL, 10), s_log->rows);
    free (count);
    assert_int_equal (s_airlock (&output, "store compare --db '%s' --postgres '%s' --json", s_log->db, dsn), 0);
    s_expect (output, "\"equal\": true");
    free (output);
    //  Never twice into the same log.
    assert_int_equal (s_airlock (&output, "store copy --db '%s' --postgres '%s'", s_log->db, dsn), 2);
    s_expect (output, "already holds");
    free (output);

    //  The auditor's tools answer the same on both backends.
    char *pg_config = s_pg_config (dsn);
    const char *commands [] = { "audit replay", "audit history", "audit export", "audit export --format cloudevents",
                                "audit replay --deployment rel-b-prod --json" };
    for (size_t i = 0; i < sizeof commands / sizeof commands [0]; i++) {
        char *on_sqlite = NULL, *on_pg = NULL;
        int sqlite_code = s_airlock (&on_sqlite, "%s --config '%s'", commands [i], s_log->config);
        int pg_code = s_airlock (&on_pg, "%s --config '%s'", commands [i], pg_config);
        assert_int_equal (sqlite_code, 0);
        assert_int_equal (pg_code, 0);
        if (strstr (commands [i], "--json")) {
            //  The JSON names its source ("db"): compare from the deployments on.
            assert_non_null (strstr (on_pg, "\"deployments\""));
            assert_string_equal (strstr (on_pg, "\"deployments\""), strstr (on_sqlite, "\"deployments\""));
        }
        else
            assert_string_equal (on_pg, on_sqlite);
        assert_true (strlen (on_pg) > 100);
        free (on_sqlite);
        free (on_pg);
    }
    assert_int_equal (s_airlock (&output, "audit verify --config '%s'", pg_config), 0);
    s_expect (output, "audit verify: OK");
    s_expect (output, "dbname=copy_");
    free (output);
    assert_int_equal (s_airlock (&output, "audit export --postgres '%s' --from %llu", dsn,
                                 (unsigned long long) s_log->rows), 0);
    assert_non_null (strstr (output, "\"seq\""));
    assert_null (strchr (strchr (output, '\n') + 1, '\n'));     // one line: the last row
    free (output);

    //  A row changed behind the store's back, with psql: verify and compare both name it.
    char psql [8192];
    snprintf (psql, sizeof psql, "sh '%s' psql '%s' -d %s -c \"UPDATE events SET reason = 'approved by nobody'"
              " WHERE seq = %llu\"", PG_HARNESS_SCRIPT, pg_harness_dir (s_server), name,
              (unsigned long long) s_log->a_prod_approval);
    assert_int_equal (system (psql), 0);
    char needle [64];
    snprintf (needle, sizeof needle, "row %llu", (unsigned long long) s_log->a_prod_approval);
    assert_int_equal (s_airlock (&output, "audit verify --postgres '%s'", dsn), 1);
    s_expect (output, "TAMPERED");
    s_expect (output, needle);
    free (output);
    assert_int_equal (s_airlock (&output, "store compare --db '%s' --postgres '%s'", s_log->db, dsn), 1);
    s_expect (output, "DIFFERENT");
    s_expect (output, needle);
    free (output);

    free (pg_config);
    free (dsn);
}

//  A SQLite log whose side tables hold every kind of row: pending and acknowledged
//  deliveries, outbox items sent, failed and pending, a consumed approval, journal entries.
static char *
s_side_table_log (void)
{
    char *path = NULL;
    assert_true (asprintf (&path, "%s/side.db", s_log->dir) > 0);
    char error [512];
    al_store_t *store = al_store_open ("sqlite", path, NULL, error, sizeof error);
    assert_non_null (store);
    uint8_t approval [16];
    memset (approval, 0x5A, sizeof approval);
    assert_int_equal (al_store_begin (store), AL_STORE_OK);
    for (int i = 1; i <= 6; i++) {
        char id [32];
        snprintf (id, sizeof id, "m-%d", i);
        al_store_event_t event = {
            .time_ms = 1000 + (uint64_t) i, .sender = "orchestrator", .role = "orchestrator",
            .type = "DeployRequest", .message_id = id, .deployment_id = "dep-1", .environment = "staging",
            .decision = AL_STORE_ACCEPTED, .envelope = (const uint8_t *) "x", .envelope_size = 1
        };
        al_store_append_result_t result;
        assert_int_equal (al_store_append (store, &event, &result), AL_STORE_OK);
        assert_int_equal (al_store_delivery_add (store, "deploy-manager", result.sequence), AL_STORE_OK);
        uint64_t outbox_id;
        assert_int_equal (al_store_outbox_add (store, result.sequence, "webhook", (const uint8_t *) "{}", 2,
                                               &outbox_id), AL_STORE_OK);
        assert_int_equal (al_store_journal_add (store, "dep-1", "rollout", "after", "ok", id), AL_STORE_OK);
        if (i == 3)
            assert_int_equal (al_store_approval_consume (store, approval, 16, result.sequence), AL_STORE_OK);
    }
    assert_int_equal (al_store_commit (store), AL_STORE_OK);
    assert_int_equal (al_store_delivery_ack (store, "deploy-manager", 1), AL_STORE_OK);
    al_store_outbox_item_t item;
    assert_int_equal (al_store_outbox_claim (store, 5000, 1000, &item), AL_STORE_OK);
    assert_int_equal (al_store_outbox_mark_sent (store, item.id, 5001), AL_STORE_OK);
    assert_int_equal (al_store_outbox_claim (store, 5000, 1000, &item), AL_STORE_OK);
    assert_int_equal (al_store_outbox_retry_at (store, item.id, 9000, "HTTP 503"), AL_STORE_OK);
    al_store_destroy (&store);
    return path;
}

static void
test_compare_sees_side_tables_and_refusals (void **state)
{
    (void) state;
    char name [128];
    char *dsn = s_new_database ("side", name, sizeof name);
    char *side = s_side_table_log ();
    char *output = NULL;
    assert_int_equal (s_airlock (&output, "store copy --db '%s' --postgres '%s' --json", side, dsn), 0);
    s_expect (output, "\"equal\": true");
    s_expect (output, "\"deliveries\": 5");
    s_expect (output, "\"outbox\": 6");
    s_expect (output, "\"approvals\": 1");
    s_expect (output, "\"journal\": 6");
    free (output);

    //  The copy carries on where the original stopped: the approval stays used, the
    //  outbox remembers sent and failed items, new ids follow the copied ones.
    char error [512];
    al_store_t *store = al_store_open (AL_STORE_PG_BACKEND, dsn, NULL, error, sizeof error);
    assert_non_null (store);
    uint8_t approval [16];
    memset (approval, 0x5A, sizeof approval);
    assert_int_equal (al_store_begin (store), AL_STORE_OK);
    assert_int_equal (al_store_approval_consume (store, approval, 16, 7), AL_STORE_ALREADY_USED);
    uint64_t outbox_id = 0;
    assert_int_equal (al_store_outbox_add (store, 6, "webhook", (const uint8_t *) "{}", 2, &outbox_id), AL_STORE_OK);
    assert_int_equal (outbox_id, 7);
    assert_int_equal (al_store_rollback (store), AL_STORE_OK);
    al_store_outbox_item_t item;
    assert_int_equal (al_store_outbox_claim (store, 9500, 1000, &item), AL_STORE_OK);
    assert_int_equal (item.id, 3);                  // never tried (1 is sent, 2 failed: due at 9000)
    assert_int_equal (item.attempts, 1);
    char *failed = s_sql (name, "SELECT convert_from(last_error, 'UTF8') || ' ' || attempts || ' ' || next_attempt_ms"
                                " || ' ' || (sent_ms IS NULL) FROM outbox WHERE id = 2");
    assert_string_equal (failed, "HTTP 503 1 9000 true");
    free (failed);
    char *sent = s_sql (name, "SELECT sent_ms FROM outbox WHERE id = 1");
    assert_string_equal (sent, "5001");
    free (sent);
    uint64_t pending [8];
    size_t count = 0;
    assert_int_equal (al_store_delivery_pending (store, "deploy-manager", 0, pending, 8, &count), AL_STORE_OK);
    assert_int_equal (count, 5);
    assert_int_equal (pending [0], 2);
    al_store_destroy (&store);

    //  Side-table rows gone from the copy are named.
    assert_int_equal (s_airlock (&output, "store compare --db '%s' --postgres '%s'", side, dsn), 1);
    s_expect (output, "DIFFERENT: outbox");    // the claim just made changed it
    free (output);
    char *fresh = s_new_database ("side", name, sizeof name);
    assert_int_equal (s_airlock (&output, "store copy --db '%s' --postgres '%s'", side, fresh), 0);
    free (output);
    free (s_sql (name, "DELETE FROM approvals_used"));
    assert_int_equal (s_airlock (&output, "store compare --db '%s' --postgres '%s'", side, fresh), 1);
    s_expect (output, "DIFFERENT: approvals_used");
    free (output);
    free (fresh);
    free (side);

    //  A source whose chain is broken: refused, nothing written.
    char broken [4300];
    snprintf (broken, sizeof broken, "%s/broken.db", s_log->dir);
    audit_log_copy_db (s_log->db, broken);
    sqlite3 *db = NULL;
    assert_int_equal (sqlite3_open (broken, &db), SQLITE_OK);
    assert_int_equal (sqlite3_exec (db, "UPDATE events SET reason = 'edited' WHERE seq = 4", NULL, NULL, NULL),
                      SQLITE_OK);
    sqlite3_close (db);
    char empty_name [128];
    char *empty = s_new_database ("broken", empty_name, sizeof empty_name);
    assert_int_equal (s_airlock (&output, "store copy --db '%s' --postgres '%s'", broken, empty), 1);
    s_expect (output, "chain breaks at row 4");
    free (output);
    char *rows = s_sql (empty_name, "SELECT count(*) FROM events");
    assert_string_equal (rows, "0");
    free (rows);

    //  A password on the command line is refused and never echoed.
    char with_password [600];
    snprintf (with_password, sizeof with_password, "%s password=hunter2secret", dsn);
    assert_int_equal (s_airlock (&output, "store compare --db '%s' --postgres '%s'", s_log->db, with_password), 2);
    s_expect (output, "passfile");
    assert_null (strstr (output, "hunter2secret"));
    free (output);
    assert_int_equal (s_airlock (&output, "audit verify --postgres '%s'", with_password), 2);
    assert_null (strstr (output, "hunter2secret"));
    free (output);
    assert_int_equal (s_airlock (&output, "store copy --db '%s'", s_log->db), 2);
    free (output);
    free (empty);
    free (dsn);
}

static void
s_expect_config_error (const char *store_section, const char *needle)
{
    char path [4300], text [1024], error [1024];
    snprintf (path, sizeof path, "%s/airlock-bad.yaml", s_log->dir);
    snprintf (text, sizeof text, "state_dir: %s\n%s", s_log->dir, store_section);
    audit_log_write_file (path, text);
    al_config_t *config = al_config_load (path, error, sizeof error);
    if (config)
        fail_msg ("accepted: %s", store_section);
    if (!strstr (error, needle))
        fail_msg ("'%s' not in '%s'", needle, error);
    assert_null (strstr (error, "hunter2secret"));
}

static void
test_config_store_section (void **state)
{
    (void) state;
    char path [4300], text [1024], error [1024];
    snprintf (path, sizeof path, "%s/airlock-ok.yaml", s_log->dir);
    snprintf (text, sizeof text, "state_dir: %s\n", s_log->dir);
    audit_log_write_file (path, text);
    al_config_t *config = al_config_load (path, error, sizeof error);
    assert_non_null (config);
    assert_string_equal (al_config_store_backend (config), "sqlite");
    assert_string_equal (al_config_store_location (config), al_config_database (config));
    al_config_destroy (&config);
    snprintf (text, sizeof text, "state_dir: %s\nstore:\n  backend: postgres\n  dsn: \"host=db1 dbname=audit\"\n",
              s_log->dir);
    audit_log_write_file (path, text);
    config = al_config_load (path, error, sizeof error);
    assert_non_null (config);
    assert_string_equal (al_config_store_backend (config), "postgres");
    assert_string_equal (al_config_store_location (config), "host=db1 dbname=audit");
    //  Saved and loaded again, the choice stays.
    char saved [4300];
    snprintf (saved, sizeof saved, "%s/airlock-saved.yaml", s_log->dir);
    assert_int_equal (al_config_save (config, saved, error, sizeof error), 0);
    al_config_destroy (&config);
    config = al_config_load (saved, error, sizeof error);
    assert_non_null (config);
    assert_string_equal (al_config_store_backend (config), "postgres");
    al_config_destroy (&config);

    s_expect_config_error ("store:\n  backend: mysql\n", "store.backend: 'mysql' is not a store backend");
    s_expect_config_error ("store:\n  backend: postgres\n", "store.dsn: required");
    s_expect_config_error ("store:\n  dsn: \"host=x\"\n", "store.dsn: only for store.backend postgres");
    //  The dsn itself is checked where libpq is: opening the store refuses it, and the
    //  password is never echoed.
    const char *bad [][2] = {
        { "host=x password=hunter2secret", "store.dsn: holds a password" },
        { "host", "store.dsn: not a libpq connection" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        error [0] = '\0';
        al_store_t *store = al_store_open ("postgres", bad [i][0], NULL, error, sizeof error);
        assert_null (store);
        if (!strstr (error, bad [i][1]))
            fail_msg ("'%s' not in '%s'", bad [i][1], error);
        assert_null (strstr (error, "hunter2secret"));
    }
    s_expect_config_error ("store:\n  engine: postgres\n", "unknown key 'store.engine'");
}

static const harness_identity_t s_identities [] = {
    { "orchestrator", "orchestrator" },
    { "deploy-manager", "deploy-manager" },
};

static al_envelope_t *
s_expect_body (zsock_t *client, al_msg_type_t body_case, int timeout_ms)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    while (zclock_mono () < deadline) {
        al_envelope_t *envelope = harness_recv (client, (int) (deadline - zclock_mono ()));
        if (!envelope)
            return NULL;
        if (envelope->body_case == body_case)
            return envelope;
        al_codec_free (&envelope);
    }
    return NULL;
}

static void
test_broker_on_postgres (void **state)
{
    (void) state;
    char name [128];
    char *dsn = s_new_database ("broker", name, sizeof name);
    harness_t *fx = harness_new (NULL, s_identities, 2);
    FILE *file = fopen (fx->config_path, "a");
    assert_non_null (file);
    fprintf (file, "store:\n  backend: postgres\n  dsn: \"%s\"\n", dsn);
    fclose (file);
    assert_int_equal (harness_broker_start (fx), 0);

    zsock_t *orchestrator = harness_client (fx, "orchestrator", NULL);
    harness_register (orchestrator, "reg-o", false);
    al_envelope_t *ack = s_expect_body (orchestrator, AIRLOCK__ENVELOPE__BODY_ACK, 20000);
    assert_non_null (ack);
    al_codec_free (&ack);
    uint64_t sequences [3];
    const char *ids [] = { "d-1", "d-2", "d-3" };
    for (size_t i = 0; i < 3; i++) {
        harness_deploy_request (orchestrator, ids [i], AIRLOCK__ENVIRONMENT__ENV_STAGING);
        ack = s_expect_body (orchestrator, AIRLOCK__ENVELOPE__BODY_ACK, 20000);
        assert_non_null (ack);
        assert_string_equal (ack->ack->acked_message_id, ids [i]);
        assert_false (ack->ack->duplicate);
        sequences [i] = ack->ack->audit_sequence;
        al_codec_free (&ack);
    }
    harness_deploy_request (orchestrator, "d-2", AIRLOCK__ENVIRONMENT__ENV_STAGING);
    ack = s_expect_body (orchestrator, AIRLOCK__ENVELOPE__BODY_ACK, 20000);
    assert_non_null (ack);
    assert_true (ack->ack->duplicate);
    assert_int_equal (ack->ack->audit_sequence, sequences [1]);
    al_codec_free (&ack);

    //  The acknowledged rows are in PostgreSQL, with their deliveries queued for
    //  deploy-manager (away); the SQLite file was never made.
    char sql [256];
    snprintf (sql, sizeof sql, "SELECT count(*) FROM events WHERE seq IN (%llu, %llu, %llu)"
              " AND type = 'DeployRequest'::bytea", (unsigned long long) sequences [0],
              (unsigned long long) sequences [1], (unsigned long long) sequences [2]);
    char *count = s_sql (name, sql);
    assert_string_equal (count, "3");
    free (count);
    count = s_sql (name, "SELECT count(*) FROM deliveries WHERE role = 'deploy-manager'::bytea");
    assert_string_equal (count, "3");
    free (count);
    struct stat info;
    assert_int_not_equal (stat (fx->database, &info), 0);

    //  Stopped, the log verifies, also against the broker's own checkpoint.
    zsock_destroy (&orchestrator);
    assert_int_equal (harness_broker_signal (fx, SIGTERM), 0);
    al_verify_report_t report;
    assert_int_equal (al_store_verify_path (AL_STORE_PG_BACKEND, dsn, fx->checkpoint_path, fx->checkpoint_public,
                                            &report), AL_STORE_OK);
    assert_int_equal (report.result, AL_VERIFY_OK);
    assert_true (report.rows >= 4);
    assert_true (report.checkpoint_checked);
    harness_destroy (&fx);
    free (dsn);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_copy_then_audit_on_postgres),
        cmocka_unit_test (test_compare_sees_side_tables_and_refusals),
        cmocka_unit_test (test_config_store_section),
        cmocka_unit_test (test_broker_on_postgres),
    };
    return cmocka_run_group_tests (tests, s_group_setup, s_group_teardown);
}
