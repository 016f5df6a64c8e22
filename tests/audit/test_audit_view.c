/*  test_audit_view.c: the library behind `airlock audit` above store/ (agents/al_audit_view:
    approver names, the signers that counted, the live source) and the typed owners it
    reads through (agents/al_orchestrator_release, deploy/al_deploy_receipt), without the
    binary, on the log and state directory tests/audit/audit_log.c builds.
*/
#include "audit_log.h"
#include "agents/al_audit_view.h"
#include "agents/al_orchestrator_release.h"
#include "agents/al_releases.h"
#include "base/al_config.h"
#include "deploy/al_deploy_receipt.h"
#include "store/al_replay.h"
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>
#include <unistd.h>

static audit_log_t *s_log;

static int
s_setup (void **state)
{
    (void) state;
    s_log = audit_log_new ();
    return 0;
}

static int
s_teardown (void **state)
{
    (void) state;
    audit_log_destroy (&s_log);
    return 0;
}

static al_policy_t *
s_policy (void)
{
    char *dir = NULL;
    assert_true (asprintf (&dir, "%s/policy", s_log->dir) >= 0);
    al_policy_errors_t *errors = NULL;
    al_policy_t *policy = al_policy_load (dir, &errors);
    if (!policy)
        fail_msg ("%s: %s", dir, errors && al_policy_errors_count (errors)? al_policy_errors_at (errors, 0): "?");
    al_policy_errors_destroy (&errors);
    free (dir);
    return policy;
}

//  The approval id (hex) of key_id's approval of a deployment in the replay of db.
static void
s_approval_id (const char *db, const char *deployment, const char *key_id, char *id, size_t size)
{
    char error [512];
    al_store_t *store = audit_log_open (db);
    al_replay_t *replay = al_replay_new (store, 0, error, sizeof error);
    assert_non_null (replay);
    const al_replay_deployment_t *d = al_replay_find (replay, deployment);
    assert_non_null (d);
    id [0] = 0;
    for (size_t i = 0; i < d->approval_count; i++)
        if (strcmp (d->approvals [i].key_id, key_id) == 0)
            snprintf (id, size, "%s", d->approvals [i].approval_id);
    assert_true (*id);
    al_replay_destroy (&replay);
    al_store_destroy (&store);
}

static void
test_approver_name (void **state)
{
    (void) state;
    al_policy_t *policy = s_policy ();
    char hex [65];
    sodium_bin2hex (hex, sizeof hex, s_log->alice_public, 32);
    assert_string_equal (al_audit_approver_name (policy, hex), "alice");
    sodium_bin2hex (hex, sizeof hex, s_log->bob_public, 32);
    assert_string_equal (al_audit_approver_name (policy, hex), "bob");
    assert_null (al_audit_approver_name (NULL, hex));
    assert_null (al_audit_approver_name (policy, "zz"));
    assert_null (al_audit_approver_name (policy, ""));
    memset (hex, 'a', 64);
    assert_null (al_audit_approver_name (policy, hex));
    al_policy_destroy (&policy);
}

//  A grant that also carries bob's surplus signature, or bob's signature for another
//  request: only alice's counted (she met the one-manager quorum first).
static void
test_signers_counted (void **state)
{
    (void) state;
    al_policy_t *policy = s_policy ();
    char *surplus = audit_log_grant_add_signer (s_log, s_log->a_prod_grant, true, NULL);
    char *elsewhere = audit_log_grant_add_signer (s_log, s_log->a_prod_grant, true, "rel-b-prod");
    const char *dbs [] = { s_log->db, surplus, elsewhere };
    for (size_t i = 0; i < 3; i++) {
        char alice [64];
        s_approval_id (dbs [i], "rel-a-prod", s_log->alice_key_id, alice, sizeof alice);
        al_store_t *store = audit_log_open (dbs [i]);
        al_audit_approval_id_t ids [AL_AUDIT_SIGNERS_MAX];
        char why [400] = "not touched";
        int count = al_audit_signers_counted (store, policy, s_log->a_prod_grant, ids, why, sizeof why);
        assert_int_equal (count, 1);
        assert_string_equal (ids [0], alice);
        assert_string_equal (why, "");

        //  The history's "approved by": alice, verified.
        al_replay_t *replay = al_replay_new (store, 0, why, sizeof why);
        assert_non_null (replay);
        const al_replay_deployment_t *d = al_replay_find (replay, "rel-a-prod");
        bool verified = false;
        json_t *approvers = al_audit_history_approvers (store, policy, d, &verified, why, sizeof why);
        assert_true (verified);
        assert_string_equal (why, "");
        assert_int_equal (json_array_size (approvers), 1);
        assert_string_equal (json_string_value (json_object_get (json_array_get (approvers, 0), "approver")), "alice");
        assert_true (json_is_true (json_object_get (json_array_get (approvers, 0), "verified")));
        json_decref (approvers);

        //  Without the policy nothing is judged: every GRANT in the grant, unverified.
        approvers = al_audit_history_approvers (store, NULL, d, &verified, why, sizeof why);
        assert_false (verified);
        assert_int_equal (json_array_size (approvers), i == 0? 1: 2);
        for (size_t k = 0; k < json_array_size (approvers); k++)
            assert_true (json_is_false (json_object_get (json_array_get (approvers, k), "verified")));
        json_decref (approvers);
        al_replay_destroy (&replay);
        al_store_destroy (&store);
    }

    //  A row that is not a grant: nothing can be said to have counted, and why.
    al_store_t *store = audit_log_open (s_log->db);
    al_audit_approval_id_t ids [AL_AUDIT_SIGNERS_MAX];
    char why [400];
    assert_int_equal (al_audit_signers_counted (store, policy, s_log->a_prod_approval, ids, why, sizeof why), -1);
    assert_non_null (strstr (why, "does not read"));
    assert_int_equal (al_audit_signers_counted (store, policy, s_log->rows + 100, ids, why, sizeof why), -1);
    al_store_destroy (&store);
    al_policy_destroy (&policy);
    unlink (surplus);
    unlink (elsewhere);
    free (surplus);
    free (elsewhere);
}

//  The history's rows: which deployments it lists, and one row's fields.
static void
test_history_entry (void **state)
{
    (void) state;
    al_policy_t *policy = s_policy ();
    al_store_t *store = audit_log_open (s_log->db);
    char why [400];
    al_replay_t *replay = al_replay_new (store, 0, why, sizeof why);
    assert_non_null (replay);
    size_t listed = 0, api = 0;
    for (size_t i = 0; i < al_replay_count (replay); i++) {
        const al_replay_deployment_t *d = al_replay_at (replay, i);
        listed += al_audit_history_listed (d, NULL);
        api += al_audit_history_listed (d, "api");
    }
    //  rel-a/b stg+prod, rel-c-prod, rel-d-prod, rel-e-stg, rel-f-stg, rel-g-prod; api: rel-a, rel-b,
    //  rel-d, rel-g.
    assert_int_equal (listed, 9);
    assert_int_equal (api, 6);
    const al_replay_deployment_t *d = al_replay_find (replay, "rel-b-prod");
    assert_false (al_audit_history_listed (d, "web"));
    //  An id with rows but no environment, or no request among them, is not listed.
    al_replay_deployment_t stray = *d;
    stray.environment = "";
    assert_false (al_audit_history_listed (&stray, NULL));
    stray = *d;
    stray.state = AL_REPLAY_UNKNOWN;
    assert_false (al_audit_history_listed (&stray, NULL));
    bool verified = false;
    json_t *entry = al_audit_history_entry (store, policy, d, &verified, why, sizeof why);
    assert_non_null (entry);
    assert_true (verified);
    assert_string_equal (json_string_value (json_object_get (entry, "deployment_id")), "rel-b-prod");
    assert_string_equal (json_string_value (json_object_get (entry, "date")), "2026-02-01");
    assert_string_equal (json_string_value (json_object_get (entry, "status")), "Rolled back");
    assert_string_equal (json_string_value (json_object_get (entry, "rollback")), "Yes");
    assert_string_equal (json_string_value (json_object_get (entry, "rollback_rule")), "error_rate_increase");
    assert_string_equal (json_string_value (json_object_get (entry, "environment")), "production");
    assert_true (json_integer_value (json_object_get (entry, "duration_ms")) > 0);
    json_t *approvers = json_object_get (entry, "approved_by");
    assert_int_equal (json_array_size (approvers), 1);
    assert_string_equal (json_string_value (json_object_get (json_array_get (approvers, 0), "approver")), "bob");
    json_decref (entry);
    //  Refused before it ran: no duration, nobody approved.
    entry = al_audit_history_entry (store, policy, al_replay_find (replay, "rel-c-prod"), &verified, why, sizeof why);
    assert_true (json_is_null (json_object_get (entry, "duration_ms")));
    assert_string_equal (json_string_value (json_object_get (entry, "status")), "Refused");
    assert_int_equal (json_array_size (json_object_get (entry, "approved_by")), 0);
    json_decref (entry);
    al_replay_destroy (&replay);
    al_store_destroy (&store);
    al_policy_destroy (&policy);
}

//  deploy_receipt.json through its reader: the fields, the digest the log carries, and
//  the three answers (read, not read, read but not parsed).
static void
test_deploy_receipt (void **state)
{
    (void) state;
    char error [4400];
    al_store_t *store = audit_log_open (s_log->db);
    al_replay_t *replay = al_replay_new (store, 0, error, sizeof error);
    assert_non_null (replay);
    const al_replay_deployment_t *d = al_replay_find (replay, "rel-b-prod");
    al_deploy_receipt_t receipt;
    assert_int_equal (al_deploy_receipt_load (s_log->dir, "rel-b-prod", &receipt, error, sizeof error), 0);
    assert_string_equal (receipt.deployment_id, "rel-b-prod");
    assert_string_equal (receipt.outcome, "rolled_back");
    assert_string_equal (receipt.sha256, d->receipt_sha256);
    char *path = audit_log_evidence (s_log, "rel-b-prod");
    assert_string_equal (receipt.path, path);

    assert_int_equal (al_deploy_receipt_load (s_log->dir, "rel-zz-prod", &receipt, error, sizeof error), -1);
    assert_non_null (strstr (error, "rel-zz-prod/deploy_receipt.json"));
    assert_string_equal (receipt.sha256, "");
    assert_int_equal (al_deploy_receipt_load (s_log->dir, "../rel-b-prod", &receipt, error, sizeof error), -1);

    char *original = audit_log_read_file (path);
    audit_log_write_file (path, "{\"outcome\": ");
    assert_int_equal (al_deploy_receipt_load (s_log->dir, "rel-b-prod", &receipt, error, sizeof error), -2);
    assert_int_equal (strlen (receipt.sha256), 64);
    assert_string_not_equal (receipt.sha256, d->receipt_sha256);
    assert_non_null (strstr (error, "deploy_receipt.json:1: not JSON"));
    audit_log_write_file (path, "[]");
    assert_int_equal (al_deploy_receipt_load (s_log->dir, "rel-b-prod", &receipt, error, sizeof error), -2);
    assert_non_null (strstr (error, "not an object"));
    audit_log_write_file (path, original);
    free (original);
    free (path);
    al_replay_destroy (&replay);
    al_store_destroy (&store);
}

static int
s_count_entries (const char *dir)
{
    DIR *handle = opendir (dir);
    assert_non_null (handle);
    int count = 0;
    struct dirent *item;
    while ((item = readdir (handle)))
        count += item->d_name [0] != '.';
    closedir (handle);
    return count;
}

static void
s_collect (const char *id, void *arg)
{
    json_t *list = (json_t *) arg;
    json_array_append_new (list, json_string (id));
}

//  The orchestrator's release files through their owner: save, load, list, and every
//  way a load is refused.
static void
test_orchestrator_release (void **state)
{
    (void) state;
    char state_dir [] = "/tmp/airlock-test-release-XXXXXX";
    assert_non_null (mkdtemp (state_dir));
    char error [4400];
    json_t *list = json_array ();
    //  No directory yet: an empty list, not an error.
    assert_int_equal (al_orchestrator_release_each (state_dir, s_collect, list, error, sizeof error), 0);
    assert_int_equal (json_array_size (list), 0);

    json_t *older = json_pack ("{s:s, s:s, s:s, s:s, s:s, s:I}", "release_id", "rel-b", "service", "api",
                               "version", "v1", "state", "DONE", "detail", "in production", "created_ms",
                               (json_int_t) 1000);
    json_t *newer = json_pack ("{s:s, s:s, s:s, s:s, s:I}", "release_id", "rel-a", "service", "web",
                               "version", "v2", "state", "STAGING", "created_ms", (json_int_t) 2000);
    assert_int_equal (al_orchestrator_release_save (state_dir, older, error, sizeof error), 0);
    assert_int_equal (al_orchestrator_release_save (state_dir, newer, error, sizeof error), 0);
    //  Saved again (a state change): replaced, no temporary file left behind.
    json_object_set_new (newer, "state", json_string ("VALIDATE"));
    assert_int_equal (al_orchestrator_release_save (state_dir, newer, error, sizeof error), 0);
    char path [4200];
    assert_int_equal (al_orchestrator_release_path (state_dir, "rel-a", path, sizeof path, error, sizeof error), 0);
    struct stat info;
    assert_int_equal (stat (path, &info), 0);
    assert_int_equal (info.st_mode & 0777, 0600);
    char *dir = strdup (path);
    *strrchr (dir, '/') = 0;
    assert_int_equal (s_count_entries (dir), 2);

    al_orchestrator_release_t *release = al_orchestrator_release_load (state_dir, "rel-a", error, sizeof error);
    assert_non_null (release);
    assert_string_equal (release->release_id, "rel-a");
    assert_string_equal (release->service, "web");
    assert_string_equal (release->version, "v2");
    assert_string_equal (release->state, "VALIDATE");
    assert_string_equal (release->detail, "");          // missing: ""
    assert_int_equal (release->created_ms, 2000);
    assert_true (json_equal (release->document, newer));
    al_orchestrator_release_destroy (&release);
    assert_null (release);
    al_orchestrator_release_destroy (&release);          // NULL-safe

    //  A stray file (not .json, a dot file) is no release; the list is in name order.
    char *stray = NULL;
    assert_true (asprintf (&stray, "%s/notes.txt", dir) >= 0);
    audit_log_write_file (stray, "x");
    free (stray);
    assert_true (asprintf (&stray, "%s/.rel-c.json", dir) >= 0);
    audit_log_write_file (stray, "{}");
    free (stray);
    assert_int_equal (al_orchestrator_release_each (state_dir, s_collect, list, error, sizeof error), 2);
    assert_string_equal (json_string_value (json_array_get (list, 0)), "rel-a");
    assert_string_equal (json_string_value (json_array_get (list, 1)), "rel-b");

    //  al_releases_list: newest first, a file that does not parse left out.
    assert_true (asprintf (&stray, "%s/rel-broken.json", dir) >= 0);
    audit_log_write_file (stray, "{\"release_id\": ");
    al_config_t *config = al_config_new (state_dir);
    assert_non_null (config);
    json_t *releases = al_releases_list (config);
    assert_int_equal (json_array_size (releases), 2);
    assert_string_equal (json_string_value (json_object_get (json_array_get (releases, 0), "release_id")), "rel-a");
    assert_string_equal (json_string_value (json_object_get (json_array_get (releases, 1), "release_id")), "rel-b");
    json_decref (releases);
    al_config_destroy (&config);

    //  Refusals: no file, not JSON, not an object, not a release id.
    errno = 0;
    assert_null (al_orchestrator_release_load (state_dir, "rel-none", error, sizeof error));
    assert_int_equal (errno, ENOENT);
    assert_non_null (strstr (error, "no release rel-none (no "));
    assert_null (al_orchestrator_release_load (state_dir, "rel-broken", error, sizeof error));
    assert_int_not_equal (errno, ENOENT);
    assert_non_null (strstr (error, "rel-broken.json:1: not JSON"));
    audit_log_write_file (stray, "[1]");
    assert_null (al_orchestrator_release_load (state_dir, "rel-broken", error, sizeof error));
    assert_non_null (strstr (error, "not a JSON object"));
    assert_null (al_orchestrator_release_load (state_dir, "../releases/rel-a", error, sizeof error));
    assert_non_null (strstr (error, "no release ../releases/rel-a (release id"));
    unlink (stray);
    free (stray);

    //  A document that names no valid release id is not saved.
    json_t *bad = json_pack ("{s:s}", "release_id", "../escape");
    assert_int_equal (al_orchestrator_release_save (state_dir, bad, error, sizeof error), -1);
    assert_non_null (strstr (error, "release id '../escape'"));
    json_decref (bad);
    bad = json_object ();
    assert_int_equal (al_orchestrator_release_save (state_dir, bad, error, sizeof error), -1);
    json_decref (bad);
    assert_int_equal (s_count_entries (dir), 3);        // rel-a, rel-b, notes.txt

    json_decref (older);
    json_decref (newer);
    json_decref (list);
    char *command = NULL;
    assert_true (asprintf (&command, "rm -rf '%s'", state_dir) >= 0);
    assert_int_equal (system (command), 0);
    free (command);
    free (dir);
}

//  The live source reads through the owners: the fixture's state agrees with its log.
static void
test_live_source (void **state)
{
    (void) state;
    al_replay_live_source_t source;
    al_audit_live_source (s_log->dir, &source);
    json_t *ids = json_array ();
    char error [4400];
    assert_int_equal (source.list_releases (source.self, s_collect, ids, error, sizeof error), 0);
    assert_int_equal (json_array_size (ids), 4);
    assert_string_equal (json_string_value (json_array_get (ids, 0)), "rel-a");
    json_decref (ids);
    al_replay_release_t release;
    assert_int_equal (source.load_release (source.self, "rel-b", &release, error, sizeof error), 0);
    assert_string_equal (release.release_id, "rel-b");
    assert_string_equal (release.state, "ROLLED_BACK");
    assert_int_equal (source.load_release (source.self, "rel-none", &release, error, sizeof error), -1);
    assert_non_null (strstr (error, "no release rel-none"));
    al_replay_receipt_t receipt;
    assert_int_equal (source.load_receipt (source.self, "rel-a-prod", &receipt, error, sizeof error), 0);
    assert_string_equal (receipt.outcome, "succeeded");
    assert_string_equal (receipt.deployment_id, "rel-a-prod");
    assert_int_equal (strlen (receipt.sha256), 64);
    assert_int_equal (source.load_receipt (source.self, "rel-c-prod", &receipt, error, sizeof error), -1);

    al_store_t *store = audit_log_open (s_log->db);
    al_replay_t *replay = al_replay_new (store, 0, error, sizeof error);
    al_replay_live_t live;
    al_replay_compare_live (replay, &source, NULL, NULL, &live);
    assert_int_equal (live.receipts, 4);
    assert_int_equal (live.releases, 4);
    assert_int_equal (live.disagreements, 0);
    al_replay_destroy (&replay);
    al_store_destroy (&store);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_approver_name),
        cmocka_unit_test (test_signers_counted),
        cmocka_unit_test (test_history_entry),
        cmocka_unit_test (test_deploy_receipt),
        cmocka_unit_test (test_orchestrator_release),
        cmocka_unit_test (test_live_source),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
