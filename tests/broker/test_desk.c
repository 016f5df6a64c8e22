/*  test_desk.c: the broker's approval desk (broker/al_approval_desk) on its own, with an
    injected clock: a production request lives as long as the QA report it was built on
    (qa_handoff.report_max_age, 24 h by default). Signed a minute before that age it is
    granted; a minute after, the same approval closes it as stale, whatever the quorum
    says. (A rebuild from the log files each request at its row's time and judges each
    approval at its own row's time, so it reaches the same verdicts.)
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include "broker/al_approval_desk.h"
#include "policies/al_approval_sign.h"
#include "policies/al_policy.h"
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

//  Tuesday 2026-11-24 10:30 UTC: inside the default window, no freeze.
#define S_FILED_MS 1795516200000ULL
#define S_DAY_MS (24ULL * 3600 * 1000)

typedef struct {
    char dir [64];
    al_policy_t *policy;
    uint8_t public_key [32];
    uint8_t secret_key [64];
} s_fixture_t;

static int
s_setup (void **state)
{
    assert_true (sodium_init () >= 0);
    s_fixture_t *f = calloc (1, sizeof *f);
    assert_non_null (f);
    snprintf (f->dir, sizeof f->dir, "/tmp/airlock-desk-XXXXXX");
    assert_non_null (mkdtemp (f->dir));
    char command [512];
    snprintf (command, sizeof command, "cp -r %s/. %s/", AIRLOCK_DEFAULT_POLICY_DIR, f->dir);
    assert_int_equal (system (command), 0);
    crypto_sign_keypair (f->public_key, f->secret_key);
    char hex [65], path [128];
    sodium_bin2hex (hex, sizeof hex, f->public_key, sizeof f->public_key);
    snprintf (path, sizeof path, "%s/approvers.yaml", f->dir);
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fprintf (file, "approvers:\n  - name: alice\n    roles: [manager]\n    keys:\n      - {id: a1, ed25519: \"%s\"}\n", hex);
    fclose (file);
    al_policy_errors_t *errors = NULL;
    f->policy = al_policy_load (f->dir, &errors);
    if (!f->policy)
        fail_msg ("policy: %s", al_policy_errors_at (errors, 0));
    assert_int_equal (al_policy_qa_report_max_age_s (f->policy), 24 * 3600);
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    s_fixture_t *f = *state;
    al_policy_destroy (&f->policy);
    char command [128];
    snprintf (command, sizeof command, "rm -rf %s", f->dir);
    assert_int_equal (system (command), 0);
    free (f);
    return 0;
}

//  File request `id` at S_FILED_MS, then alice signs it at now_ms: the verdict.
static al_approval_desk_verdict_t
s_sign_at (s_fixture_t *f, al_approval_desk_t *desk, const char *id, uint64_t now_ms)
{
    Airlock__ApprovalRequest request = AIRLOCK__APPROVAL_REQUEST__INIT;
    request.request_id = (char *) id;
    request.deployment_type = AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD;
    request.environment = AIRLOCK__ENVIRONMENT__ENV_PRODUCTION;
    request.service = (char *) "demo";
    request.version = (char *) "v2";
    request.artifact_sha256 = (char *) "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    request.qa_report_sha256 = (char *) "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";
    char reason [256] = "";
    assert_true (al_approval_desk_file (desk, &request, "orchestrator", 1, S_FILED_MS, reason, sizeof reason));
    al_approval_desk_commit (desk);
    al_approval_sign_options_t options = { .decision = AIRLOCK__DECISION__DECISION_GRANT,
                                      .issued_at_ms = now_ms - 1000, .valid_for_ms = 3600000 };
    char error [256];
    al_approval_signed_t *approval = al_approval_sign_with_secret (&request, f->secret_key, &options,
                                                                   error, sizeof error);
    assert_non_null (approval);
    al_approval_desk_verdict_t verdict;
    al_approval_desk_check (desk, f->policy, al_approval_signed_message (approval), now_ms, &verdict);
    if (!verdict.valid)
        fail_msg ("%s: approval refused: %s", id, verdict.reason);
    assert_true (al_approval_desk_add (desk, f->policy, al_approval_signed_message (approval), now_ms, &verdict));
    al_approval_signed_destroy (&approval);
    return verdict;
}

static void
test_request_lives_as_long_as_its_qa_report (void **state)
{
    s_fixture_t *f = *state;
    al_approval_desk_t *desk = al_approval_desk_new ();
    assert_non_null (desk);
    //  Signed a minute before the report's age runs out: granted.
    al_approval_desk_verdict_t verdict = s_sign_at (f, desk, "fresh", S_FILED_MS + S_DAY_MS - 60000);
    if (verdict.outcome != AL_APPROVAL_GATE_GRANTED)
        fail_msg ("fresh: %s", verdict.explanation);
    //  A minute after: the same approval closes the request as stale.
    verdict = s_sign_at (f, desk, "stale", S_FILED_MS + S_DAY_MS + 60000);
    assert_int_equal (verdict.outcome, AL_APPROVAL_GATE_DENIED);
    if (!strstr (verdict.explanation, "stale") || !strstr (verdict.explanation, "report_max_age"))
        fail_msg ("stale: %s", verdict.explanation);
    al_approval_desk_destroy (&desk);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_request_lives_as_long_as_its_qa_report, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
