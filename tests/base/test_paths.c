/*  test_paths.c: al_paths, the layout of the state directory spelled once.

    Each fixed entry and each named entry must give the documented path
    (docs/operations.md); a name that could leave its directory or hide must be
    refused with an error naming it; a path that does not fit must be refused.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "base/al_paths.h"

#include <stdlib.h>
#include <string.h>

static void
test_fixed_entries (void **state)
{
    (void) state;
    char path [256], error [256];
    struct { al_path_t which; const char *expected; } cases [] = {
        { AL_PATH_AIRLOCK_YAML, "/s/airlock.yaml" },
        { AL_PATH_KEYS_DIR, "/s/keys" },
        { AL_PATH_CHECKPOINT_KEY, "/s/keys/checkpoint.key" },
        { AL_PATH_POLICY_DIR, "/s/policy" },
        { AL_PATH_IDENTITIES_YAML, "/s/policy/identities.yaml" },
        { AL_PATH_SERVICES_YAML, "/s/services.yaml" },
        { AL_PATH_AUDIT_DB, "/s/audit.db" },
        { AL_PATH_CHECKPOINT, "/s/checkpoints/latest.ckpt" },
        { AL_PATH_QA_REFUSED_DIR, "/s/qa/.refused" },
        { AL_PATH_DEPLOY_EVIDENCE_DIR, "/s/deploy/.artifacts/deployment" },
        { AL_PATH_NOTIFIER_OUTBOX, "/s/notifier/outbox.db" },
    };
    for (size_t index = 0; index < sizeof cases / sizeof cases [0]; index++) {
        assert_int_equal (al_paths_get ("/s", cases [index].which, path, sizeof path, error, sizeof error), 0);
        assert_string_equal (path, cases [index].expected);
        char *copy = al_paths_dup ("/s", cases [index].which, error, sizeof error);
        assert_non_null (copy);
        assert_string_equal (copy, cases [index].expected);
        free (copy);
    }
    //  Every entry has a name, and no two share one.
    for (int one = 0; one < AL_PATH_COUNT; one++)
        for (int other = one + 1; other < AL_PATH_COUNT; other++)
            assert_string_not_equal (al_paths_relative ((al_path_t) one), al_paths_relative ((al_path_t) other));
    assert_int_equal (al_paths_endpoint ("/s", AL_PATH_BROKER_SOCKET, path, sizeof path, error, sizeof error), 0);
    assert_string_equal (path, "ipc:///s/broker.ipc");
    assert_int_equal (al_paths_endpoint ("/s", AL_PATH_EVENTS_SOCKET, path, sizeof path, error, sizeof error), 0);
    assert_string_equal (path, "ipc:///s/events.ipc");
}

static void
test_named_entries (void **state)
{
    (void) state;
    char path [256], error [256];
    assert_int_equal (al_paths_certificate ("/s", "qa", false, path, sizeof path, error, sizeof error), 0);
    assert_string_equal (path, "/s/keys/qa.cert");
    assert_int_equal (al_paths_certificate ("/s", "qa", true, path, sizeof path, error, sizeof error), 0);
    assert_string_equal (path, "/s/keys/qa.cert_secret");
    assert_int_equal (al_paths_log ("/s", "broker", path, sizeof path, error, sizeof error), 0);
    assert_string_equal (path, "/s/logs/broker.log");
    assert_int_equal (al_paths_pid ("/s", "monitor", path, sizeof path, error, sizeof error), 0);
    assert_string_equal (path, "/s/run/monitor.pid");
    assert_int_equal (al_paths_metrics_address ("/s", "qa", path, sizeof path, error, sizeof error), 0);
    assert_string_equal (path, "/s/run/metrics-qa.address");
    assert_int_equal (al_paths_orchestrator_release ("/s", "rel-1", path, sizeof path, error, sizeof error), 0);
    assert_string_equal (path, "/s/orchestrator/releases/rel-1.json");
    assert_int_equal (al_paths_qa_report ("/s", "dep-1", path, sizeof path, error, sizeof error), 0);
    assert_string_equal (path, "/s/qa/dep-1/qa_report.json");
    assert_int_equal (al_paths_qa_deployment_dir ("/s", "dep-1", path, sizeof path, error, sizeof error), 0);
    assert_string_equal (path, "/s/qa/dep-1");
    assert_int_equal (al_paths_deploy_evidence ("/s", "dep-1", path, sizeof path, error, sizeof error), 0);
    assert_string_equal (path, "/s/deploy/.artifacts/deployment/dep-1");
    assert_int_equal (al_paths_release_record ("/s", "api", "production", path, sizeof path, error, sizeof error), 0);
    assert_string_equal (path, "/s/deploy/releases/api/production.json");
    assert_int_equal (al_paths_driver_dir ("/s", "api", "staging", path, sizeof path, error, sizeof error), 0);
    assert_string_equal (path, "/s/deploy/drivers/api/staging");
    assert_int_equal (al_paths_instances ("/s", "api", "staging", path, sizeof path, error, sizeof error), 0);
    assert_string_equal (path, "/s/deploy/drivers/api/staging/instances.json");
    assert_int_equal (al_paths_backup ("/s", "dep-1", "api", path, sizeof path, error, sizeof error), 0);
    assert_string_equal (path, "/s/deploy/backups/dep-1/api.db");
    assert_int_equal (al_paths_monitor_baseline ("/s", "dep-1", path, sizeof path, error, sizeof error), 0);
    assert_string_equal (path, "/s/monitor/baselines/dep-1.json");
}

static void
test_refusals (void **state)
{
    (void) state;
    char path [256], error [256];
    const char *bad [] = { "", ".", "..", "../etc", "a/b", "tab\there", NULL };
    for (size_t index = 0; index < sizeof bad / sizeof bad [0]; index++) {
        assert_false (al_paths_name_ok (bad [index]));
        strcpy (path, "unchanged");
        assert_int_equal (al_paths_release_record ("/s", "api", bad [index], path, sizeof path, error,
                                                   sizeof error), -1);
        assert_string_equal (path, "");
        assert_non_null (strstr (error, "environment '"));
    }
    assert_true (al_paths_name_ok ("..hidden-but-fine"));
    char long_name [AL_PATHS_NAME_MAX + 2];
    memset (long_name, 'a', sizeof long_name - 1);
    long_name [sizeof long_name - 1] = 0;
    assert_false (al_paths_name_ok (long_name));
    long_name [AL_PATHS_NAME_MAX] = 0;
    assert_true (al_paths_name_ok (long_name));
    //  The first bad name is the one named.
    assert_int_equal (al_paths_backup ("/s", "dep/1", "..", path, sizeof path, error, sizeof error), -1);
    assert_non_null (strstr (error, "deployment 'dep/1'"));
    //  Too long for the buffer: refused, never cut.
    char small [12];
    assert_int_equal (al_paths_get ("/state", AL_PATH_AIRLOCK_YAML, small, sizeof small, error, sizeof error), -1);
    assert_string_equal (small, "");
    assert_non_null (strstr (error, "/state: a path under it would be over 11 bytes"));
    //  No state directory.
    assert_int_equal (al_paths_get ("", AL_PATH_AUDIT_DB, path, sizeof path, error, sizeof error), -1);
    assert_string_equal (error, "the state directory is not set");
    assert_null (al_paths_dup (NULL, AL_PATH_AUDIT_DB, error, sizeof error));
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_fixed_entries),
        cmocka_unit_test (test_named_entries),
        cmocka_unit_test (test_refusals),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
