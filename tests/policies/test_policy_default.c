/*  test_policy_default.c: the shipped default policy says what the seeds say.

    Seed 001's "Agent Restrictions" table is asserted cell by cell (capability name, ✅
    or ❌, and what the cell means on the bus), then the bus agents' and humans' grants,
    the quorums of seed 004, constraints, thresholds, and the digest's stability.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "policies/al_policy.h"
#include "policy_test_util.h"

#define DEV AIRLOCK__ENVIRONMENT__ENV_DEVELOPMENT
#define STG AIRLOCK__ENVIRONMENT__ENV_STAGING
#define PRD AIRLOCK__ENVIRONMENT__ENV_PRODUCTION
#define BUS AL_POLICY_ENV_BUS

static int
s_setup (void **state)
{
    al_policy_errors_t *errors = NULL;
    al_policy_t *policy = al_policy_load (pt_default_dir (), &errors);
    for (size_t i = 0; i < al_policy_errors_count (errors); i++)
        fprintf (stderr, "%s\n", al_policy_errors_at (errors, i));
    al_policy_errors_destroy (&errors);
    *state = policy;
    return policy ? 0 : -1;
}

static int
s_teardown (void **state)
{
    al_policy_t *policy = *state;
    al_policy_destroy (&policy);
    return 0;
}

static bool
s_may (const al_policy_t *policy, const char *role, const char *type, Airlock__Environment env)
{
    al_msg_type_t msg = al_msg_type_from_name (type);
    assert_int_not_equal (msg, AL_MSG_NONE);
    return al_policy_may_send (policy, role, msg, env, NULL, 0);
}

//  One cell of seed 001's table: the capability, ✅/❌, and the bus meaning.
static void
s_cell (const al_policy_t *policy, const char *role, Airlock__Environment env,
        const char *capability, bool allowed)
{
    bool cell_allowed = !allowed;
    const char *cell = al_policy_capability (policy, role, env, &cell_allowed);
    assert_non_null (cell);
    assert_string_equal (cell, capability);
    assert_int_equal (cell_allowed, allowed);
    //  No cell of any agent ever allows a deploy to production.
    assert_false (s_may (policy, role, "DeployRequest", PRD));
    assert_false (s_may (policy, role, "ExecuteDeploy", env));
}

static void
test_seed_001_table (void **state)
{
    const al_policy_t *p = *state;
    //  | backend-specialist | ✅ Write code | ❌ Cannot deploy | ❌ Forbidden |
    s_cell (p, "backend-specialist", DEV, "write_code", true);
    s_cell (p, "backend-specialist", STG, "cannot_deploy", false);
    s_cell (p, "backend-specialist", PRD, "forbidden", false);
    assert_true (s_may (p, "backend-specialist", "ReleaseCandidate", DEV));
    assert_false (s_may (p, "backend-specialist", "DeployRequest", STG));
    assert_false (s_may (p, "backend-specialist", "ReleaseCandidate", PRD));
    //  | frontend-specialist | ✅ Write code | ❌ Cannot deploy | ❌ Forbidden |
    s_cell (p, "frontend-specialist", DEV, "write_code", true);
    s_cell (p, "frontend-specialist", STG, "cannot_deploy", false);
    s_cell (p, "frontend-specialist", PRD, "forbidden", false);
    assert_true (s_may (p, "frontend-specialist", "ReleaseCandidate", DEV));
    assert_false (s_may (p, "frontend-specialist", "DeployRequest", STG));
    assert_false (s_may (p, "frontend-specialist", "QaReport", PRD));
    //  | database-specialist | ✅ Create migrations | ❌ Cannot run | ❌ Forbidden |
    s_cell (p, "database-specialist", DEV, "create_migrations", true);
    s_cell (p, "database-specialist", STG, "cannot_run", false);
    s_cell (p, "database-specialist", PRD, "forbidden", false);
    assert_true (s_may (p, "database-specialist", "ReleaseCandidate", DEV));
    assert_false (s_may (p, "database-specialist", "DeployRequest", STG));
    assert_false (s_may (p, "database-specialist", "ReleaseCandidate", STG));
    //  | qa-specialist | ✅ Write tests | ✅ Run tests | ❌ Forbidden |
    s_cell (p, "qa-specialist", DEV, "write_tests", true);
    s_cell (p, "qa-specialist", STG, "run_tests", true);
    s_cell (p, "qa-specialist", PRD, "forbidden", false);
    assert_true (s_may (p, "qa-specialist", "QaReport", STG));
    assert_false (s_may (p, "qa-specialist", "QaReport", PRD));
    assert_false (s_may (p, "qa-specialist", "DeployRequest", STG));
    //  | docs-specialist | ✅ Write docs | N/A | N/A |
    s_cell (p, "docs-specialist", DEV, "write_docs", true);
    s_cell (p, "docs-specialist", STG, "not_applicable", false);
    s_cell (p, "docs-specialist", PRD, "not_applicable", false);
    //  Writing docs starts no deployment: no ReleaseCandidate anywhere (issue 15).
    assert_false (s_may (p, "docs-specialist", "ReleaseCandidate", DEV));
    assert_false (s_may (p, "docs-specialist", "ReleaseCandidate", STG));
    //  | orchestrator | ✅ Coordinate | ✅ Request deploy | ❌ Cannot execute |
    s_cell (p, "orchestrator", DEV, "coordinate", true);
    s_cell (p, "orchestrator", STG, "request_deploy", true);
    s_cell (p, "orchestrator", PRD, "cannot_execute", false);
    assert_true (s_may (p, "orchestrator", "QaRequest", DEV));
    assert_true (s_may (p, "orchestrator", "DeployRequest", STG));
    assert_true (s_may (p, "orchestrator", "ApprovalRequest", PRD));
    assert_false (s_may (p, "orchestrator", "ProductionGrant", PRD));

    //  Seed 001's environments: in production no agent role but monitor and
    //  deploy-manager (reports only) sends anything but approval requests.
    for (size_t i = 0; i < al_policy_role_count (p); i++) {
        const char *role = al_policy_role_at (p, i);
        if (strcmp (al_policy_role_kind (p, role), "ai-agent") != 0)
            continue;
        for (size_t t = 0; t < al_msg_type_count (); t++)
            assert_false (al_policy_may_send (p, role, al_msg_type_at (t), PRD, NULL, 0));
    }
}

static void
test_nobody_deploys_production (void **state)
{
    const al_policy_t *p = *state;
    const char *deploys [] = { "DeployRequest", "ExecuteDeploy", "ProductionGrant" };
    for (size_t i = 0; i < al_policy_role_count (p); i++)
        for (size_t d = 0; d < 3; d++) {
            char rule [256];
            assert_false (al_policy_may_send (p, al_policy_role_at (p, i),
                          al_msg_type_from_name (deploys [d]), PRD, rule, sizeof rule));
            //  Refused by a reserved rule, never by an ordinary grant or default deny.
            assert_null (strstr (rule, "roles.yaml:"));
            assert_non_null (strstr (rule, "broker"));
        }
}

static void
test_bus_agents_and_humans (void **state)
{
    const al_policy_t *p = *state;
    assert_true (s_may (p, "qa", "QaReport", STG));
    assert_false (s_may (p, "qa", "DeployRequest", STG));
    assert_true (s_may (p, "deploy-manager", "DeployReceipt", PRD));
    assert_true (s_may (p, "deploy-manager", "DeployProgress", STG));
    assert_false (s_may (p, "deploy-manager", "DeployRequest", STG));
    assert_true (s_may (p, "monitor", "RollbackTrigger", PRD));
    assert_true (s_may (p, "monitor", "SoakSignal", STG));
    assert_false (s_may (p, "notifier", "Notification", PRD));
    assert_true (s_may (p, "notifier", "StatusQuery", BUS));
    assert_true (s_may (p, "manager", "SignedApproval", PRD));
    assert_true (s_may (p, "security", "SignedApproval", STG));
    assert_true (s_may (p, "devops", "SignedApproval", PRD));
    assert_false (s_may (p, "manager", "SignedApproval", DEV));
    assert_true (s_may (p, "auditor", "StatusQuery", BUS));
    assert_false (s_may (p, "auditor", "SignedApproval", PRD));
    assert_false (s_may (p, "auditor", "StatusQuery", PRD));
    assert_true (s_may (p, "auditor", "Heartbeat", BUS));
    assert_false (s_may (p, "nobody", "Heartbeat", BUS));

    char rule [256];
    assert_true (al_policy_may_send (p, "orchestrator", al_msg_type_from_name ("DeployRequest"),
                                     STG, rule, sizeof rule));
    assert_non_null (strstr (rule, "roles.yaml:"));
    assert_non_null (strstr (rule, "orchestrator may send DeployRequest in staging"));
    assert_false (al_policy_may_send (p, "qa", al_msg_type_from_name ("QaRequest"),
                                      STG, rule, sizeof rule));
    assert_string_equal (rule, "no rule grants qa QaRequest in staging: default deny (roles.yaml)");
    assert_string_equal (al_policy_role_kind (p, "manager"), "human");
    assert_string_equal (al_policy_role_kind (p, "monitor"), "bus-agent");
    //  Issue 15: the qa agent's report is the verdict, nobody else's.
    assert_string_equal (al_policy_qa_authority (p), "qa");
    //  Seed 001 "Human declares emergency": the human approval client may file a
    //  candidate (the orchestrator takes an emergency only from a human role); ci is not
    //  human.
    assert_true (s_may (p, "approver", "ReleaseCandidate", DEV));
    assert_false (s_may (p, "approver", "ReleaseCandidate", STG));
    assert_string_equal (al_policy_role_kind (p, "approver"), "human");
    assert_string_equal (al_policy_role_kind (p, "ci"), "bus-agent");
}

static void
s_assert_quorum (const al_policy_t *p, Airlock__DeploymentType type, const char *role1,
                 const char *role2)
{
    al_policy_quorum_t quorum = al_policy_quorum (p, type);
    assert_int_equal (quorum.count, role2 ? 2 : 1);
    assert_string_equal (quorum.entries [0].role, role1);
    assert_int_equal (quorum.entries [0].count, 1);
    if (role2) {
        assert_string_equal (quorum.entries [1].role, role2);
        assert_int_equal (quorum.entries [1].count, 1);
    }
}

static void
test_deployment_types (void **state)
{
    const al_policy_t *p = *state;
    s_assert_quorum (p, AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD, "manager", NULL);
    s_assert_quorum (p, AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_HOTFIX, "manager", "security");
    s_assert_quorum (p, AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_ROLLBACK, "devops", NULL);
    s_assert_quorum (p, AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_SCHEDULED, "manager", NULL);
    s_assert_quorum (p, AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_EMERGENCY, "manager", NULL);
    assert_true (al_policy_requires_window (p, AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_SCHEDULED));
    assert_false (al_policy_requires_window (p, AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD));
    assert_false (al_policy_requires_staging (p, AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_ROLLBACK));
    assert_true (al_policy_requires_staging (p, AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_HOTFIX));
    al_policy_quorum_t skip = al_policy_skip_staging_quorum (p, AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_EMERGENCY);
    assert_int_equal (skip.count, 1);
    assert_string_equal (skip.entries [0].role, "devops");
    assert_int_equal (al_policy_skip_staging_quorum (p, AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD).count, 0);
    al_policy_quorum_t glass = al_policy_break_glass (p);
    assert_int_equal (glass.count, 1);
    assert_string_equal (glass.entries [0].role, "security");
    assert_int_equal (al_policy_approval_expiry_s (p), 4 * 3600);
    assert_true (al_policy_self_approval_forbidden (p));
    assert_int_equal (al_policy_quorum (p, AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_UNSPECIFIED).count, 0);
}

static void
test_constraints_and_rules (void **state)
{
    const al_policy_t *p = *state;
    assert_true (al_policy_strategy_allowed (p, PRD, AIRLOCK__STRATEGY__STRATEGY_ROLLING));
    assert_false (al_policy_strategy_allowed (p, PRD, AIRLOCK__STRATEGY__STRATEGY_CANARY));
    assert_false (al_policy_strategy_allowed (p, PRD, AIRLOCK__STRATEGY__STRATEGY_BLUE_GREEN));
    assert_true (al_policy_strategy_allowed (p, STG, AIRLOCK__STRATEGY__STRATEGY_CANARY));
    assert_true (al_policy_strategy_allowed (p, STG, AIRLOCK__STRATEGY__STRATEGY_BLUE_GREEN));
    assert_int_equal (al_policy_max_instances (p, PRD), 50);
    assert_true (al_policy_monthly_budget_usd (p, PRD) == 5000.0);
    assert_string_equal (al_policy_timezone (p), "UTC");

    const Airlock__Step *steps;
    assert_int_equal (al_policy_critical_path (p, &steps), 6);
    assert_int_equal (steps [0], AIRLOCK__STEP__STEP_PREFLIGHT);
    assert_int_equal (steps [1], AIRLOCK__STEP__STEP_BACKUP);
    assert_int_equal (steps [2], AIRLOCK__STEP__STEP_MIGRATE);
    assert_int_equal (steps [3], AIRLOCK__STEP__STEP_ROLLOUT);
    assert_int_equal (steps [4], AIRLOCK__STEP__STEP_SOAK);
    assert_int_equal (steps [5], AIRLOCK__STEP__STEP_RECEIPT);
    assert_int_equal (al_policy_signal_max_age_s (p), 30);
    assert_int_equal (al_policy_qa_report_max_age_s (p), 24 * 3600);

    const al_policy_thresholds_t *t = al_policy_thresholds (p);
    assert_int_equal (t->health_check_failures_more_than, 3);
    assert_true (t->error_rate_increase_more_than_points == 5.0);
    assert_true (t->latency_p99_more_than_baseline_factor == 2.0);
    assert_true (t->cpu_percent_more_than == 80.0);
    assert_true (t->memory_percent_more_than == 80.0);
    assert_true (t->investigate_error_rate_percent_more_than == 1.0);
    assert_string_equal (t->liveness_path, "/healthz");
    assert_string_equal (t->readiness_path, "/readyz");
    assert_int_equal (t->health_interval_ms, 10000);
    assert_int_equal (t->health_timeout_ms, 2000);

    const al_policy_soak_t *soak = al_policy_soak (p);
    assert_int_equal (soak->duration_ms, 60 * 60000);
    assert_int_equal (soak->checkpoint_count, 4);
    assert_int_equal (soak->checkpoints_ms [0], 5 * 60000);
    assert_int_equal (soak->checkpoints_ms [1], 15 * 60000);
    assert_int_equal (soak->checkpoints_ms [2], 30 * 60000);
    assert_int_equal (soak->checkpoints_ms [3], 60 * 60000);
    assert_int_equal (al_policy_done_count (p), 7);
    assert_string_equal (al_policy_done_id (p, 0), "qa_approved");
    assert_int_equal (al_policy_approver_count (p), 0);
    assert_false (al_policy_identity_for_key (p, "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7", NULL, NULL));
}

//  Replaces the first occurrence of from with to in text (caller frees the result).
static char *
s_replace (const char *text, const char *from, const char *to)
{
    const char *at = strstr (text, from);
    assert_non_null (at);
    size_t size = strlen (text) - strlen (from) + strlen (to) + 1;
    char *result = malloc (size);
    assert_non_null (result);
    snprintf (result, size, "%.*s%s%s", (int) (at - text), text, to, at + strlen (from));
    return result;
}

static void
test_digest_stable (void **state)
{
    const al_policy_t *p = *state;
    assert_int_equal (strlen (al_policy_digest_hex (p)), 64);
    char *dir = pt_copy_default ();
    //  Comments, blank lines, quoting and key order do not change the digest.
    char *text = pt_read_file (dir, "quality_rules.yaml");
    char *edited = s_replace (text, "soak:\n  duration: 60m\n  checkpoints: [5m, 15m, 30m, 60m]\n  time_scale: 1.0",
                              "# reformatted\nsoak:\n\n  time_scale: 1.0   # same value\n"
                              "  checkpoints:\n    - 5m\n    - \"15m\"\n    - '30m'\n    - 60m\n"
                              "  duration: \"60m\"");
    pt_write_file (dir, "quality_rules.yaml", edited);
    al_policy_t *again = al_policy_load (dir, NULL);
    assert_non_null (again);
    assert_string_equal (al_policy_digest_hex (again), al_policy_digest_hex (p));
    assert_memory_equal (al_policy_digest (again), al_policy_digest (p), 32);
    al_policy_destroy (&again);
    free (edited);
    //  A changed value changes it.
    edited = s_replace (text, "time_scale: 1.0", "time_scale: 0.5");
    pt_write_file (dir, "quality_rules.yaml", edited);
    again = al_policy_load (dir, NULL);
    assert_non_null (again);
    assert_string_not_equal (al_policy_digest_hex (again), al_policy_digest_hex (p));
    assert_int_equal (al_policy_soak (again)->checkpoints_ms [0], 150000);
    al_policy_destroy (&again);
    al_policy_destroy (&again);     // NULL-safe
    free (edited);
    free (text);
    pt_remove_dir (dir);
    free (dir);
}

static void
test_identities_and_approvers (void **state)
{
    (void) state;
    char *dir = pt_copy_default ();
    pt_write_file (dir, "identities.yaml",
        "identities:\n"
        "  - key: \"rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7\"\n"
        "    identity: orchestrator-1\n"
        "    role: orchestrator\n");
    //  RFC 8032 test keys 1 and 2; key 2 also as an OpenSSH line.
    pt_write_file (dir, "approvers.yaml",
        "approvers:\n"
        "  - name: alice\n"
        "    roles: [manager, security]\n"
        "    keys:\n"
        "      - id: alice-1\n"
        "        ed25519: d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a\n"
        "    revoked_keys:\n"
        "      - ed25519: \"PUAXw+hDiVqStwqnTRt+vJyYLM8uxJaMwM1V8Sr0Zgw=\"\n");
    al_policy_errors_t *errors = NULL;
    al_policy_t *p = al_policy_load (dir, &errors);
    for (size_t i = 0; i < al_policy_errors_count (errors); i++)
        fprintf (stderr, "%s\n", al_policy_errors_at (errors, i));
    al_policy_errors_destroy (&errors);
    assert_non_null (p);
    const char *identity, *role;
    assert_true (al_policy_identity_for_key (p, "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7", &identity, &role));
    assert_string_equal (identity, "orchestrator-1");
    assert_string_equal (role, "orchestrator");
    assert_false (al_policy_identity_for_key (p, "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf8", NULL, NULL));
    static const uint8_t key1 [32] = {
        0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64, 0x07, 0x3a,
        0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a };
    static const uint8_t key2 [32] = {
        0x3d, 0x40, 0x17, 0xc3, 0xe8, 0x43, 0x89, 0x5a, 0x92, 0xb7, 0x0a, 0xa7, 0x4d, 0x1b, 0x7e, 0xbc,
        0x9c, 0x98, 0x2c, 0xcf, 0x2e, 0xc4, 0x96, 0x8c, 0xc0, 0xcd, 0x55, 0xf1, 0x2a, 0xf4, 0x66, 0x0c };
    al_policy_approver_t approver;
    assert_true (al_policy_approver_for_key (p, key1, &approver));
    assert_string_equal (approver.name, "alice");
    assert_string_equal (approver.key_id, "alice-1");
    assert_int_equal (approver.role_count, 2);
    assert_string_equal (approver.roles [1], "security");
    assert_false (approver.revoked);
    assert_true (al_policy_approver_for_key (p, key2, &approver));
    assert_true (approver.revoked);
    uint8_t other [32];
    memcpy (other, key1, 32);
    other [0] ^= 1;
    assert_false (al_policy_approver_for_key (p, other, NULL));
    al_policy_destroy (&p);

    //  The same key 2 as an OpenSSH line.
    pt_write_file (dir, "approvers.yaml",
        "approvers:\n"
        "  - name: bob\n"
        "    roles: [devops]\n"
        "    keys:\n"
        "      - ssh: \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAID1AF8PoQ4lakrcKp00bfrycmCzPLsSWjMDNVfEq9GYM bob@host\"\n");
    p = al_policy_load (dir, NULL);
    assert_non_null (p);
    assert_true (al_policy_approver_for_key (p, key2, &approver));
    assert_string_equal (approver.name, "bob");
    assert_false (approver.revoked);
    al_policy_destroy (&p);
    pt_remove_dir (dir);
    free (dir);
}

//  Every key of every shipped file appears in docs/policies.md as `key` (role and
//  deployment type names included), so the reference cannot fall behind the files.
static void
s_assert_keys_documented (json_t *value, const char *docs, int *checked)
{
    if (json_is_array (value)) {
        size_t index;
        json_t *item;
        json_array_foreach (value, index, item)
            s_assert_keys_documented (item, docs, checked);
        return;
    }
    if (!json_is_object (value))
        return;
    const char *key;
    json_t *item;
    //  A key is documented as `key`, as part of a dotted path (`calendar.timezone`), as
    //  a cell of a table (role and type names), or in a list like {days, start, end}.
    static const char *patterns [] = {
        "`%s`", "`%s.", ".%s`", ".%s.", "| %s |", "| %s,", ", %s |", "{%s,", ", %s}", ", %s,"
    };
    json_object_foreach (value, key, item) {
        bool found = false;
        for (size_t i = 0; i < sizeof patterns / sizeof patterns [0] && !found; i++) {
            char pattern [160];
            snprintf (pattern, sizeof pattern, patterns [i], key);
            found = strstr (docs, pattern) != NULL;
        }
        if (!found) {
            fprintf (stderr, "docs/policies.md does not document key '%s'\n", key);
            fail ();
        }
        (*checked)++;
        s_assert_keys_documented (item, docs, checked);
    }
}

static void
test_docs_cover_every_key (void **state)
{
    const al_policy_t *p = *state;
    char docs_dir [4096];
    snprintf (docs_dir, sizeof docs_dir, "%s/docs", getenv ("AIRLOCK_SOURCE_DIR") ? getenv ("AIRLOCK_SOURCE_DIR") : ".");
    char *docs = pt_read_file (docs_dir, "policies.md");
    json_t *canonical = json_loads (al_policy_canonical_json (p), 0, NULL);
    assert_non_null (canonical);
    int checked = 0;
    s_assert_keys_documented (canonical, docs, &checked);
    assert_true (checked > 80);
    //  And every file.
    for (size_t i = 0; i < AL_POLICY_FILE_COUNT; i++)
        assert_non_null (strstr (docs, al_policy_file_name (i)));
    json_decref (canonical);
    free (docs);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_seed_001_table),
        cmocka_unit_test (test_nobody_deploys_production),
        cmocka_unit_test (test_bus_agents_and_humans),
        cmocka_unit_test (test_deployment_types),
        cmocka_unit_test (test_constraints_and_rules),
        cmocka_unit_test (test_digest_stable),
        cmocka_unit_test (test_identities_and_approvers),
        cmocka_unit_test (test_docs_cover_every_key),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
