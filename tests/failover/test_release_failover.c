/*  test_release_failover.c: the active broker killed twice in the middle of a real
    release, which still ends DONE with one production deploy (docs/ha.md).

    Two `airlock broker` processes on one PostgreSQL (tests/pg's harness), loopback
    ipc:// endpoints in a temporary directory, the five agents as `airlock agent ROLE`
    knowing both brokers, the demo service with the process driver (release_cluster.h).
    A ledger client keeps Notifications in flight the whole time. One release, rel-fo:
      - kill 1 (SIGKILL) while deploy-manager soaks the staging deployment (its journal
        says the soak started; the staging soak lasts 6 s, so the monitor's evidence
        resumes on the new leader well within the policy's signal_max_age and the soak
        passes: the outcome is deterministic);
      - kill 2 while the release waits for the human approval; then `airlock approve`
        reaches whichever broker leads now (the new lease epoch);
    each killed broker is started again at once and comes back as a standby, so the
    second kill has a broker to fail over to. Then: the release is DONE; the audit log
    holds exactly one accepted production ExecuteDeploy and one DeployReceipt, for
    rel-fo-prod; `airlock audit verify --postgres` passes; every Ack the ledger client
    got (and the approval's row) is in the log with its sequence and hash; production
    runs the new version on both instances; a CLI client that moves past a dead
    endpoint warns on stderr and its `status --json` output stays JSON. Only conditions are polled, with long
    deadlines; no timing is asserted.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include "release_cluster.h"
#include <czmq.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
s_fail (rc_cluster_t *cluster, const char *what, const char *detail)
{
    rc_dump_logs (cluster);
    fail_msg ("%s: %s", what, detail);
}

//  Waits (120 s at most) until the release is in WANT; fails with the logs otherwise.
static void
s_expect_state (rc_cluster_t *cluster, const char *id, const char *want)
{
    char *state = rc_wait_state (cluster, id, want, 120000);
    if (!state || strcmp (state, want) != 0) {
        char detail [128];
        snprintf (detail, sizeof detail, "state %s, expected %s", state? state: "(none)", want);
        free (state);
        s_fail (cluster, id, detail);
    }
    free (state);
}

//  How many times broker WHICH (0 = A) has said it starts as a standby: once per start.
static int
s_standby_starts (rc_cluster_t *cluster, int which)
{
    char command [600];
    snprintf (command, sizeof command, "grep -c 'is a standby until it holds the lease' '%s/broker-%c.log'",
              rc_dir (cluster), 'a' + which);
    FILE *pipe = popen (command, "r");
    int count = 0;
    if (pipe) {
        if (fscanf (pipe, "%d", &count) != 1)
            count = 0;
        pclose (pipe);
    }
    return count;
}

//  The killed broker runs again, as a standby (60 s at most).
static void
s_expect_restarted (rc_cluster_t *cluster, int which, int starts)
{
    for (int64_t deadline = zclock_mono () + 60000; zclock_mono () < deadline && s_standby_starts (cluster, which) < starts; )
        zclock_sleep (100);
    if (s_standby_starts (cluster, which) < starts)
        s_fail (cluster, "restart", "the killed broker did not come back as a standby");
}

static int
s_setup (void **state)
{
    const char *binary_dir = getenv ("AIRLOCK_BINARY_DIR");
    assert_non_null (binary_dir);
    char error [1024] = "";
    rc_cluster_t *cluster = rc_cluster_new (binary_dir, 6000, error, sizeof error);
    if (!cluster)
        fail_msg ("rc_cluster_new: %s", error);
    *state = cluster;
    return 0;
}

static int
s_teardown (void **state)
{
    rc_cluster_t *cluster = *state;
    rc_cluster_destroy (&cluster, getenv ("AIRLOCK_TEST_KEEP") != NULL);
    return 0;
}

static void
test_release_survives_two_kills (void **state)
{
    rc_cluster_t *cluster = *state;
    char error [2048] = "";
    assert_int_equal (rc_active (cluster), 0);
    uint64_t first_epoch = rc_epoch (cluster);
    assert_true (first_epoch >= 1);
    assert_int_equal (rc_ledger_start (cluster, 4, 20, error, sizeof error), 0);
    if (rc_submit (cluster, "rel-fo", "v1", error, sizeof error) != 0)
        s_fail (cluster, "submit", error);

    //  Kill 1: deploy-manager soaks the staging deployment.
    for (int64_t deadline = zclock_mono () + 120000;
         zclock_mono () < deadline && !rc_journal_has (cluster, "rel-fo-stg", "soak", "before"); )
        zclock_sleep (50);
    if (!rc_journal_has (cluster, "rel-fo-stg", "soak", "before"))
        s_fail (cluster, "rel-fo-stg", "the staging soak never started");
    assert_false (rc_journal_has (cluster, "rel-fo-stg", "soak", "after"));
    size_t acked_before = rc_ledger_acked (cluster);
    int killed = rc_kill_active (cluster, NULL, error, sizeof error);
    if (killed < 0)
        s_fail (cluster, "kill 1", error);
    assert_int_equal (killed, 0);
    s_expect_restarted (cluster, 0, 2);
    uint64_t second_epoch = rc_epoch (cluster);
    assert_true (second_epoch > first_epoch);

    //  Kill 2: the release waits for the approval. The ledger made progress meanwhile
    //  (through the new leader).
    s_expect_state (cluster, "rel-fo", "APPROVE");
    assert_true (rc_journal_has (cluster, "rel-fo-stg", "soak", "after"));
    for (int64_t deadline = zclock_mono () + 60000; zclock_mono () < deadline && rc_ledger_acked (cluster) <= acked_before; )
        zclock_sleep (100);
    assert_true (rc_ledger_acked (cluster) > acked_before);
    acked_before = rc_ledger_acked (cluster);
    int leader = rc_active (cluster);
    assert_true (leader == 0 || leader == 1);
    killed = rc_kill_active (cluster, NULL, error, sizeof error);
    if (killed < 0)
        s_fail (cluster, "kill 2", error);
    assert_int_equal (killed, leader);
    s_expect_restarted (cluster, leader, leader == 0? 3: 2);
    uint64_t third_epoch = rc_epoch (cluster);
    assert_true (third_epoch > second_epoch);
    assert_true (rc_active (cluster) >= 0);

    //  The human approves, through whichever broker leads now.
    uint64_t row = 0;
    if (rc_approve (cluster, "rel-fo-prod", &row, error, sizeof error) != 0)
        s_fail (cluster, "approve", error);
    assert_true (row > 0);
    rc_ledger_add_row (cluster, row);
    s_expect_state (cluster, "rel-fo", "DONE");
    for (int64_t deadline = zclock_mono () + 60000; zclock_mono () < deadline && rc_ledger_acked (cluster) <= acked_before; )
        zclock_sleep (100);
    assert_true (rc_ledger_acked (cluster) > acked_before);
    rc_ledger_stop (cluster);

    //  Exactly one production deploy, granted once, one receipt, for rel-fo-prod.
    size_t deployments, grants, receipts, duplicates, ungranted;
    if (rc_production_deploys (cluster, &deployments, &grants, &receipts, &duplicates, &ungranted,
                               error, sizeof error) != 0)
        fail_msg ("%s", error);
    assert_int_equal (deployments, 1);
    assert_int_equal (grants, 1);
    assert_int_equal (receipts, 1);
    assert_int_equal (duplicates, 0);
    assert_int_equal (ungranted, 0);
    long long count = rc_sql_number (cluster, "SELECT count(*) FROM events WHERE decision = 1"
                                     " AND type = convert_to('DeployReceipt', 'UTF8')"
                                     " AND deployment_id = convert_to('rel-fo-prod', 'UTF8')", error, sizeof error);
    assert_int_equal (count, 1);

    //  The chain verifies on PostgreSQL.
    int verify = rc_audit_verify (cluster);
    char path [400];
    snprintf (path, sizeof path, "%s/verify.out", rc_dir (cluster));
    FILE *file = fopen (path, "r");
    char output [4096] = "";
    if (file) {
        size_t got = fread (output, 1, sizeof output - 1, file);
        output [got] = 0;
        fclose (file);
    }
    if (verify != 0 || !strstr (output, "OK"))
        fail_msg ("airlock audit verify: exit %d:\n%s", verify, output);

    //  Nothing acknowledged is lost.
    size_t acked = rc_ledger_acked (cluster);
    assert_true (acked > 0);
    long long lost = rc_ledger_lost (cluster, error, sizeof error);
    if (lost < 0)
        fail_msg ("%s", error);
    assert_int_equal (lost, 0);
    printf ("release_failover: %zu acknowledged, none lost; epochs %llu -> %llu -> %llu\n", acked,
            (unsigned long long) first_epoch, (unsigned long long) second_epoch, (unsigned long long) third_epoch);

    //  Production runs v1 on both instances.
    snprintf (path, sizeof path, "%s/deploy/drivers/demo/production/instances.json", rc_dir (cluster));
    json_t *root = json_load_file (path, 0, NULL);
    assert_non_null (root);
    int running = 0;
    size_t index;
    json_t *instance;
    json_array_foreach (json_object_get (root, "instances"), index, instance) {
        const char *version = json_string_value (json_object_get (instance, "version"));
        running += version && strcmp (version, "v1") == 0;
    }
    json_decref (root);
    assert_int_equal (running, 2);

    //  A command whose client moves past an endpoint nobody serves (as after a failover,
    //  when the first listed broker is a standby) warns on stderr, never inside its
    //  output: `status --json` stays JSON.
    const char *dir = rc_dir (cluster);
    char command [2048];
    snprintf (command, sizeof command,
              "sed 's|brokers: \"|brokers: \"ipc://%s/nobody.ipc, |' '%s/clients.yaml' > '%s/moving.yaml'"
              " && '%s/airlock' status rel-fo --json --config '%s/moving.yaml' > '%s/moving.out' 2> '%s/moving.err'",
              dir, dir, dir, getenv ("AIRLOCK_BINARY_DIR"), dir, dir, dir);
    assert_int_equal (system (command), 0);
    snprintf (path, sizeof path, "%s/moving.out", dir);
    root = json_load_file (path, 0, NULL);
    if (!root)
        fail_msg ("airlock status --json printed more than JSON (%s)", path);
    assert_string_equal (json_string_value (json_object_get (json_object_get (root, "release"), "state")), "DONE");
    json_decref (root);
    snprintf (command, sizeof command, "grep -q 'no word from the broker at ipc://%s/nobody.ipc' '%s/moving.err'", dir, dir);
    assert_int_equal (system (command), 0);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_release_survives_two_kills, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
