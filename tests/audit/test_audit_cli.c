/*  test_audit_cli.c: `airlock audit verify|replay|history|export` end to end, through the
    airlock binary (system()), on the log of audit_log.h: exit codes, what is printed,
    the JSON forms, and each check failing when its evidence is altered.
*/
#include "audit_log.h"
#include "store/al_store.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <sqlite3.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static audit_log_t *s_log;
static char *s_out;                 // where each command's output goes

static int
s_setup (void **state)
{
    (void) state;
    s_log = audit_log_new ();
    assert_true (asprintf (&s_out, "%s/out.txt", s_log->dir) >= 0);
    return 0;
}

static int
s_teardown (void **state)
{
    (void) state;
    free (s_out);
    audit_log_destroy (&s_log);
    return 0;
}

//  Run `airlock ARGS` with stdout and stderr into s_out; returns its exit code. The
//  output is handed back in *output_p (caller frees) when output_p is not NULL.
static int
s_airlock (char **output_p, const char *format, ...)
{
    const char *binary_dir = getenv ("AIRLOCK_BINARY_DIR");
    assert_non_null (binary_dir);
    char arguments [2048], command [4096];
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

static void
test_replay_agrees (void **state)
{
    (void) state;
    char *output = NULL;
    assert_int_equal (s_airlock (&output, "audit replay --config %s", s_log->config), 0);
    s_expect (output, "rel-b-prod  production  api v1.2.0 (standard)  state: rolled_back: rule error_rate_increase");
    s_expect (output, "rel-e-stg  staging  web v3.1.0 (standard)  state: running rollout");
    s_expect (output, "rel-c-prod  production  web v3.0.0 (standard)  state: refused");
    //  Approver names from the configuration's policy.
    s_expect (output, "(alice) via approver-1");
    s_expect (output, "replay agrees with live state: 4 receipt(s) match deploy-manager's evidence, 4 release file(s)");
    free (output);

    assert_int_equal (s_airlock (&output, "audit replay --config %s --deployment rel-b-prod --json", s_log->config), 0);
    json_error_t error;
    json_t *root = json_loads (output, 0, &error);
    if (!root)
        fail_msg ("not JSON: %s:\n%s", error.text, output);
    json_t *deployments = json_object_get (root, "deployments");
    assert_int_equal (json_array_size (deployments), 1);
    json_t *deployment = json_array_get (deployments, 0);
    assert_string_equal (json_string_value (json_object_get (deployment, "state")), "rolled_back");
    json_t *approval = json_array_get (json_object_get (deployment, "approvals"), 0);
    assert_string_equal (json_string_value (json_object_get (approval, "approver")), "bob");
    assert_true (json_is_true (json_object_get (json_object_get (root, "live"), "agrees")));
    assert_int_equal (json_integer_value (json_object_get (root, "rows")), s_log->rows);
    json_decref (root);
    free (output);
}

static void
test_replay_as_of (void **state)
{
    (void) state;
    //  RFC 3339 for the second before the grant of rel-a-prod.
    uint64_t seconds = (audit_log_time (s_log->a_prod_grant) - 1000) / 1000;
    time_t when = (time_t) seconds;
    struct tm utc;
    gmtime_r (&when, &utc);
    char as_of [32];
    strftime (as_of, sizeof as_of, "%Y-%m-%dT%H:%M:%SZ", &utc);
    char *output = NULL;
    assert_int_equal (s_airlock (&output, "audit replay --config %s --as-of %s", s_log->config, as_of), 0);
    s_expect (output, "rel-a-prod  production  api v1.1.0 (standard)  state: awaiting approval");
    s_expect (output, "live state not compared");
    assert_null (strstr (output, "rel-b-prod"));
    free (output);
    //  The same instant in epoch milliseconds.
    assert_int_equal (s_airlock (&output, "audit replay --db %s --as-of %llu --deployment rel-a-prod", s_log->db,
                                 (unsigned long long) seconds * 1000), 0);
    s_expect (output, "state: awaiting approval");
    free (output);

    assert_int_equal (s_airlock (&output, "audit replay --db %s --deployment rel-zz-prod", s_log->db), 1);
    s_expect (output, "no deployment rel-zz-prod");
    free (output);
    assert_int_equal (s_airlock (&output, "audit replay --db %s --as-of yesterday", s_log->db), 2);
    s_expect (output, "not an RFC 3339 time");
    free (output);
}

static void
test_replay_disagrees (void **state)
{
    (void) state;
    char *path = audit_log_evidence (s_log, "rel-a-prod");
    char *original = audit_log_read_file (path);
    assert_non_null (original);
    char *edited = NULL;
    assert_true (asprintf (&edited, "%s ", original) >= 0);
    audit_log_write_file (path, edited);
    char *output = NULL;
    assert_int_equal (s_airlock (&output, "audit replay --config %s", s_log->config), 1);
    s_expect (output, "replay DISAGREES with live state: 1 disagreement(s)");
    s_expect (output, "  rel-a-prod: ");
    s_expect (output, "has SHA-256");
    free (output);
    audit_log_write_file (path, original);
    assert_int_equal (s_airlock (NULL, "audit replay --config %s", s_log->config), 0);
    free (edited);
    free (original);
    free (path);
}

static void
test_history (void **state)
{
    (void) state;
    char *output = NULL;
    assert_int_equal (s_airlock (&output, "audit history --config %s", s_log->config), 0);
    s_expect (output, "| Date | Service | Version | Type | Environment | Approved by | Status | Duration | Rollback | Notes |");
    char row [512];
    double seconds = (double) (s_log->b_prod_receipt - 1 - s_log->b_prod_first_journal);
    snprintf (row, sizeof row, "| 2026-02-01 | api | v1.2.0 | Standard | production | bob | Rolled back | %.1fs | Yes "
              "| rule error_rate_increase, back to v1.1.0 |", seconds);
    s_expect (output, row);
    s_expect (output, "| 2026-02-01 | api | v1.1.0 | Standard | production | alice | Success | 12.0s | N/A |");
    s_expect (output, "| 2026-02-01 | api | v1.1.0 | Standard | staging | - | Success |");
    s_expect (output, "| 2026-02-01 | web | v3.0.0 | Standard | production | - | Refused | - | N/A |");
    free (output);

    //  Without the policy, key ids stand for the approvers.
    assert_int_equal (s_airlock (&output, "audit history --db %s", s_log->db), 0);
    s_expect (output, s_log->bob_key_id);
    free (output);

    assert_int_equal (s_airlock (&output, "audit history --config %s --service web --json", s_log->config), 0);
    json_t *root = json_loads (output, 0, NULL);
    assert_non_null (root);
    json_t *rows = json_object_get (root, "deployments");
    assert_int_equal (json_array_size (rows), 3);
    for (size_t i = 0; i < 3; i++)
        assert_string_equal (json_string_value (json_object_get (json_array_get (rows, i), "service")), "web");
    assert_string_equal (json_string_value (json_object_get (json_array_get (rows, 1), "status")), "In progress");
    json_decref (root);
    free (output);
}

//  "Approved by" names only the signatures that made the quorum: a grant that also
//  carries a surplus signature (bob's, after alice met the one-manager quorum) or one for
//  another request lists alice alone; without the policy, signers are "unverified".
static void
test_history_counted_signers (void **state)
{
    (void) state;
    const char *row = "| 2026-02-01 | api | v1.1.0 | Standard | production | alice | Success |";
    char *surplus = audit_log_grant_add_signer (s_log, s_log->a_prod_grant, true, NULL);
    char *elsewhere = audit_log_grant_add_signer (s_log, s_log->a_prod_grant, true, "rel-b-prod");
    const char *dbs [] = { surplus, elsewhere };
    for (size_t i = 0; i < 2; i++) {
        char *output = NULL;
        assert_int_equal (s_airlock (&output, "audit history --db %s --policy %s/policy", dbs [i], s_log->dir), 0);
        s_expect (output, row);
        assert_null (strstr (output, "alice, bob"));
        free (output);
        assert_int_equal (s_airlock (&output, "audit history --db %s --policy %s/policy --json --service api",
                                     dbs [i], s_log->dir), 0);
        json_t *root = json_loads (output, 0, NULL);
        assert_non_null (root);
        json_t *rows = json_object_get (root, "deployments"), *item;
        size_t index;
        bool seen = false;
        json_array_foreach (rows, index, item) {
            if (strcmp (json_string_value (json_object_get (item, "deployment_id")), "rel-a-prod") != 0)
                continue;
            json_t *approvers = json_object_get (item, "approved_by");
            assert_int_equal (json_array_size (approvers), 1);
            assert_string_equal (json_string_value (json_object_get (json_array_get (approvers, 0), "approver")), "alice");
            assert_true (json_is_true (json_object_get (json_array_get (approvers, 0), "verified")));
            seen = true;
        }
        assert_true (seen);
        json_decref (root);
        free (output);
    }
    //  Without a policy nothing can be judged: the grant's signers, marked unverified.
    char *output = NULL;
    assert_int_equal (s_airlock (&output, "audit history --db %s", surplus), 0);
    s_expect (output, "unverified: ");
    free (output);
    free (surplus);
    free (elsewhere);
}

static size_t
s_lines (const char *text)
{
    size_t count = 0;
    for (; *text; text++)
        count += *text == '\n';
    return count;
}

static void
test_export (void **state)
{
    (void) state;
    char *output = NULL;
    assert_int_equal (s_airlock (&output, "audit export --db %s --format cloudevents", s_log->db), 0);
    assert_int_equal (s_lines (output), s_log->rows);
    char *first_line = strtok (output, "\n");
    json_t *event = json_loads (first_line, 0, NULL);
    assert_non_null (event);
    assert_string_equal (json_string_value (json_object_get (event, "specversion")), "1.0");
    assert_string_equal (json_string_value (json_object_get (event, "id")), "1");
    assert_string_equal (json_string_value (json_object_get (event, "type")), "dev.airlock.PolicyLoaded");
    json_decref (event);
    free (output);

    assert_int_equal (s_airlock (&output, "audit export --config %s --from 2", s_log->config), 0);
    assert_int_equal (s_lines (output), s_log->rows - 1);
    s_expect (output, "{\"seq\":2,");
    free (output);
    //  The last row is a DeliveryAck of three deliveries: its event lists them all.
    assert_int_equal (s_airlock (&output, "audit export --db %s --format cloudevents --from %llu", s_log->db,
                                 (unsigned long long) s_log->batched_ack), 0);
    assert_int_equal (s_lines (output), 1);
    char needle [160];
    snprintf (needle, sizeof needle, "\"delivery_ack\":{\"delivery_id\":%llu,\"more_delivery_ids\":[%llu,%llu]}",
              (unsigned long long) s_log->batched_ack_ids [0], (unsigned long long) s_log->batched_ack_ids [1],
              (unsigned long long) s_log->batched_ack_ids [2]);
    s_expect (output, needle);
    free (output);
    assert_int_equal (s_airlock (&output, "audit export --db %s --format xml", s_log->db), 2);
    s_expect (output, "use jsonl or cloudevents");
    free (output);
    //  Each subcommand reads its options the same way (cmd_audit.c's s_parse).
    assert_int_equal (s_airlock (&output, "audit export --db %s --from 0", s_log->db), 2);
    s_expect (output, "--from needs a sequence number >= 1");
    free (output);
    assert_int_equal (s_airlock (&output, "audit history --db %s --bogus", s_log->db), 2);
    s_expect (output, "airlock audit history: unexpected argument '--bogus'");
    free (output);
    assert_int_equal (s_airlock (&output, "audit verify --db %s --key", s_log->db), 2);
    s_expect (output, "--key needs a value");
    free (output);
    assert_int_equal (s_airlock (&output, "audit verify --db %s --key abc", s_log->db), 2);
    s_expect (output, "--key needs --checkpoint");
    free (output);
}

static void
test_verify_signatures (void **state)
{
    (void) state;
    char *output = NULL;
    assert_int_equal (s_airlock (&output, "audit verify --db %s", s_log->db), 0);
    s_expect (output, "audit verify: OK");
    s_expect (output, "signatures OK: 3 approval(s) and 2 grant(s) holding 2 approval(s)");
    free (output);

    //  A forged signature in a well-chained log, with a checkpoint signed after the forgery:
    //  the chain and the checkpoint hold, the signature check does not.
    char *copy = audit_log_tamper_signature (s_log, s_log->a_prod_approval, false);
    uint8_t public_key [32], secret_key [64];
    crypto_sign_keypair (public_key, secret_key);
    char *checkpoint = NULL, error [256];
    assert_true (asprintf (&checkpoint, "%s.ckpt", copy) >= 0);
    al_store_t *store = al_store_open (NULL, copy, NULL, error, sizeof error);
    assert_non_null (store);
    assert_int_equal (al_store_checkpoint_write (store, secret_key, checkpoint, error, sizeof error), AL_STORE_OK);
    al_store_destroy (&store);
    char key [65];
    sodium_bin2hex (key, sizeof key, public_key, sizeof public_key);

    assert_int_equal (s_airlock (&output, "audit verify --db %s --checkpoint %s --key %s", copy, checkpoint, key), 1);
    s_expect (output, "audit verify: OK");
    char needle [128];
    snprintf (needle, sizeof needle, "BAD SIGNATURE at row %llu", (unsigned long long) s_log->a_prod_approval);
    s_expect (output, needle);
    s_expect (output, "SIGNATURES FAILED");
    free (output);

    assert_int_equal (s_airlock (&output, "audit verify --db %s --checkpoint %s --json", copy, checkpoint), 1);
    json_t *root = json_loads (output, 0, NULL);
    assert_non_null (root);
    assert_true (json_is_false (json_object_get (root, "ok")));
    assert_string_equal (json_string_value (json_object_get (root, "result")), "ok");
    assert_true (json_is_true (json_object_get (json_object_get (root, "checkpoint"), "holds")));
    json_t *failures = json_object_get (json_object_get (root, "signatures"), "failures");
    assert_int_equal (json_integer_value (json_object_get (json_array_get (failures, 0), "sequence")),
                      s_log->a_prod_approval);
    json_decref (root);
    free (output);
    free (checkpoint);
    free (copy);

    assert_int_equal (s_airlock (&output, "audit verify --db %s/none.db", s_log->dir), 2);
    free (output);
    assert_int_equal (s_airlock (&output, "audit frobnicate"), 2);
    free (output);
    assert_int_equal (s_airlock (&output, "audit replay --help"), 0);
    s_expect (output, "airlock audit history");
    free (output);
}

//  The verdict reads one way: a rewritten row is TAMPERED and no "signatures OK" line
//  stands next to it; a file that is not a checkpoint is a format error (exit 2), not
//  TAMPERED; with no SOURCE, $AIRLOCK_CONFIG names the log (as for every command).
static void
test_verify_verdict_and_lookup (void **state)
{
    (void) state;
    char *output = NULL;
    //  $AIRLOCK_CONFIG, from a directory that holds no state: its database is verified.
    assert_int_equal (s_airlock (&output, "audit verify --help"), 0);
    free (output);
    const char *binary_dir = getenv ("AIRLOCK_BINARY_DIR");
    char command [4096];
    snprintf (command, sizeof command, "cd / && AIRLOCK_CONFIG='%s' '%s/airlock' audit verify > '%s' 2>&1",
              s_log->config, binary_dir, s_out);
    int status = system (command);
    assert_true (WIFEXITED (status));
    output = audit_log_read_file (s_out);
    if (WEXITSTATUS (status) != 0)
        fail_msg ("AIRLOCK_CONFIG ignored (exit %d):\n%s", WEXITSTATUS (status), output);
    s_expect (output, s_log->db);
    s_expect (output, "audit verify: verdict: OK");
    free (output);
    //  --state DIR works the same way.
    assert_int_equal (s_airlock (&output, "audit verify --state %s", s_log->dir), 0);
    s_expect (output, s_log->db);
    free (output);

    //  A file that is not a checkpoint at all: exit 2, no TAMPERED.
    char *garbage = NULL;
    assert_true (asprintf (&garbage, "%s/garbage.ckpt", s_log->dir) >= 0);
    audit_log_write_file (garbage, "not json\n");
    assert_int_equal (s_airlock (&output, "audit verify --db %s --checkpoint %s", s_log->db, garbage), 2);
    s_expect (output, "not a checkpoint file");
    if (strstr (output, "TAMPERED"))
        fail_msg ("a malformed checkpoint reads as tampering:\n%s", output);
    free (output);
    audit_log_write_file (garbage, "{\"format\": \"airlock-checkpoint-v1\", \"row_count\": \"many\"}\n");
    assert_int_equal (s_airlock (&output, "audit verify --db %s --checkpoint %s --json", s_log->db, garbage), 2);
    //  stderr (unbuffered) may come before the JSON on stdout.
    const char *brace = strchr (output, '{');
    assert_non_null (brace);
    json_t *root = json_loads (brace, JSON_DISABLE_EOF_CHECK, NULL);
    if (!root)
        fail_msg ("no JSON:\n%s", output);
    assert_true (json_is_true (json_object_get (json_object_get (root, "checkpoint"), "malformed")));
    json_decref (root);
    free (output);
    free (garbage);

    //  A row rewritten without recomputing the chain: TAMPERED, and the signatures are
    //  not announced as OK.
    char *copy = NULL;
    assert_true (asprintf (&copy, "%s/rewritten.db", s_log->dir) >= 0);
    audit_log_copy_db (s_log->db, copy);
    sqlite3 *db = NULL;
    assert_int_equal (sqlite3_open (copy, &db), SQLITE_OK);
    assert_int_equal (sqlite3_exec (db, "UPDATE events SET reason = 'rewritten' WHERE seq = 2", NULL, NULL, NULL),
                      SQLITE_OK);
    sqlite3_close (db);
    assert_int_equal (s_airlock (&output, "audit verify --db %s", copy), 1);
    s_expect (output, "audit verify: TAMPERED");
    s_expect (output, "signatures not trusted");
    s_expect (output, "audit verify: verdict: TAMPERED");
    if (strstr (output, "signatures OK"))
        fail_msg ("a mixed verdict:\n%s", output);
    free (output);
    free (copy);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_replay_agrees),
        cmocka_unit_test (test_replay_as_of),
        cmocka_unit_test (test_replay_disagrees),
        cmocka_unit_test (test_history),
        cmocka_unit_test (test_history_counted_signers),
        cmocka_unit_test (test_export),
        cmocka_unit_test (test_verify_signatures),
        cmocka_unit_test (test_verify_verdict_and_lookup),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
