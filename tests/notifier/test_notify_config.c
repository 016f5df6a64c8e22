/*  test_notify_config.c: notifications.yaml (agents/al_notify_config).

    Every key read back, the defaults, each class of error with its position, all errors
    of a file reported in one load, an inline secret refused without being echoed, and
    the secret references resolved (variable, file without its line break, missing).
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include "agents/al_notify_config.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    char dir [64];
    char path [128];
    char error [4096];
} s_fixture_t;

static int
s_setup (void **state)
{
    s_fixture_t *f = calloc (1, sizeof *f);
    assert_non_null (f);
    snprintf (f->dir, sizeof f->dir, "/tmp/al-notify-config-XXXXXX");
    assert_non_null (mkdtemp (f->dir));
    snprintf (f->path, sizeof f->path, "%s/notifications.yaml", f->dir);
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    s_fixture_t *f = *state;
    char command [200];
    snprintf (command, sizeof command, "rm -rf '%s'", f->dir);
    assert_int_equal (system (command), 0);
    free (f);
    return 0;
}

static al_notify_config_t *
s_load (s_fixture_t *f, const char *text)
{
    FILE *file = fopen (f->path, "w");
    assert_non_null (file);
    fputs (text, file);
    fclose (file);
    f->error [0] = '\0';
    return al_notify_config_load (f->path, f->error, sizeof f->error);
}

//  The load fails and its errors include "notifications.yaml:LINE:COL: needle".
static void
s_expect_error (s_fixture_t *f, const char *text, int line, int column, const char *needle)
{
    al_notify_config_t *config = s_load (f, text);
    if (config) {
        al_notify_config_destroy (&config);
        fail_msg ("loaded, expected an error containing '%s'", needle);
    }
    char position [200];
    snprintf (position, sizeof position, "%s:%d:%d: ", f->path, line, column);
    const char *at = strstr (f->error, position);
    if (!at || !strstr (at, needle))
        fail_msg ("expected '%s%s' in:\n%s", position, needle, f->error);
}

static void
test_every_key (void **state)
{
    s_fixture_t *f = *state;
    al_notify_config_t *config = s_load (f,
        "version: 1\n"
        "endpoints:\n"
        "  - name: ops-slack\n"
        "    kind: slack\n"
        "    url: https://hooks.slack.com/services/T/B/X\n"
        "    events: [approval_requested, rollback, escalation]\n"
        "    environments: [production]\n"
        "  - name: audit-sink\n"
        "    kind: webhook\n"
        "    url: http://127.0.0.1:9000/hook\n"
        "    secret: { env: AIRLOCK_WEBHOOK_SECRET }\n"
        "    timeout_ms: 2500\n"
        "  - name: bus\n"
        "    kind: cloudevents\n"
        "    url: http://127.0.0.1:9001/events\n"
        "    secret: { file: secrets/bus.key }\n"
        "    events: [other]\n"
        "retry: { initial_ms: 100, max_ms: 5000, give_up_after_ms: 60000 }\n");
    if (!config)
        fail_msg ("%s", f->error);
    assert_int_equal (al_notify_config_count (config), 3);
    const al_notify_endpoint_t *slack = al_notify_config_at (config, 0);
    assert_string_equal (slack->name, "ops-slack");
    assert_int_equal (slack->kind, AL_NOTIFY_SLACK);
    assert_string_equal (slack->url, "https://hooks.slack.com/services/T/B/X");
    assert_int_equal (slack->timeout_ms, AL_NOTIFY_DEFAULT_TIMEOUT_MS);
    assert_null (slack->secret_env);
    assert_null (slack->secret_file);
    assert_true (al_notify_endpoint_wants (slack, "approval_requested", 3));
    assert_true (al_notify_endpoint_wants (slack, "rollback", 3));
    assert_false (al_notify_endpoint_wants (slack, "rollback", 2));          // staging not wanted
    assert_true (al_notify_endpoint_wants (slack, "escalation", 0));         // no environment: passes
    assert_false (al_notify_endpoint_wants (slack, "pre_deployment", 3));
    assert_false (al_notify_endpoint_wants (slack, "release_note", 3));      // "other" not asked for

    const al_notify_endpoint_t *hook = al_notify_config_find (config, "audit-sink");
    assert_ptr_equal (hook, al_notify_config_at (config, 1));
    assert_int_equal (hook->kind, AL_NOTIFY_WEBHOOK);
    assert_string_equal (hook->secret_env, "AIRLOCK_WEBHOOK_SECRET");
    assert_int_equal (hook->timeout_ms, 2500);
    for (unsigned t = 0; t < AL_NOTIFY_TEMPLATE_COUNT; t++)
        assert_true (al_notify_endpoint_wants (hook, al_notify_template_name (t), 1));

    const al_notify_endpoint_t *bus = al_notify_config_at (config, 2);
    assert_int_equal (bus->kind, AL_NOTIFY_CLOUDEVENTS);
    char expected [200];
    snprintf (expected, sizeof expected, "%s/secrets/bus.key", f->dir);
    char *real_dir = realpath (f->dir, NULL);
    snprintf (expected, sizeof expected, "%s/secrets/bus.key", real_dir);
    free (real_dir);
    assert_string_equal (bus->secret_file, expected);
    assert_true (al_notify_endpoint_wants (bus, "release_note", 2));
    assert_false (al_notify_endpoint_wants (bus, "rollback", 2));
    assert_null (al_notify_config_find (config, "nope"));

    const al_notify_retry_t *retry = al_notify_config_retry (config);
    assert_int_equal (retry->initial_ms, 100);
    assert_int_equal (retry->max_ms, 5000);
    assert_int_equal (retry->give_up_after_ms, 60000);
    al_notify_config_destroy (&config);
    assert_null (config);
    al_notify_config_destroy (&config);             // NULL-safe
}

static void
test_defaults (void **state)
{
    s_fixture_t *f = *state;
    al_notify_config_t *config = s_load (f, "version: 1\nendpoints: []\n");
    if (!config)
        fail_msg ("%s", f->error);
    assert_int_equal (al_notify_config_count (config), 0);
    assert_int_equal (al_notify_config_retry (config)->initial_ms, AL_NOTIFY_DEFAULT_INITIAL_MS);
    assert_int_equal (al_notify_config_retry (config)->max_ms, AL_NOTIFY_DEFAULT_MAX_MS);
    assert_int_equal (al_notify_config_retry (config)->give_up_after_ms, AL_NOTIFY_DEFAULT_GIVE_UP_MS);
    al_notify_config_destroy (&config);
    config = al_notify_config_new_empty ();
    assert_non_null (config);
    assert_int_equal (al_notify_config_count (config), 0);
    assert_int_equal (al_notify_config_retry (config)->max_ms, AL_NOTIFY_DEFAULT_MAX_MS);
    al_notify_config_destroy (&config);
    //  The template filter's names and "other".
    assert_int_equal (al_notify_template_index ("approval_requested"), 0);
    assert_int_equal (al_notify_template_index ("escalation"), 4);
    assert_int_equal (al_notify_template_index ("anything"), 5);
    assert_string_equal (al_notify_template_name (5), "other");
    assert_string_equal (al_notify_kind_name (AL_NOTIFY_CLOUDEVENTS), "cloudevents");
}

static void
test_errors (void **state)
{
    s_fixture_t *f = *state;
    const char *head = "version: 1\nendpoints:\n  - name: a\n    kind: slack\n    url: http://127.0.0.1/x\n";
    char text [1024];
    s_expect_error (f, "endpoints: []\n", 1, 1, "missing key 'version'");
    s_expect_error (f, "version: 2\nendpoints: []\n", 1, 10, "version: unsupported version 2");
    s_expect_error (f, "version: 1\nendpoints: []\nextra: 1\n", 3, 1, "unknown key 'extra'");
    s_expect_error (f, "version: 1\nendpoints: []\nendpoints: []\n", 3, 1, "duplicate key 'endpoints'");
    s_expect_error (f, "version: 1\nendpoints: {}\n", 2, 12, "endpoints: expected a list, found a mapping");
    s_expect_error (f, "version: 1\nendpoints:\n  - name: a\n    kind: email\n    url: http://x/\n", 4, 11,
                    "endpoints[0].kind: unknown kind 'email'");
    s_expect_error (f, "version: 1\nendpoints:\n  - name: a\n    kind: slack\n    url: ftp://x/\n", 5, 10,
                    "endpoints[0].url: must start with http:// or https://");
    s_expect_error (f, "version: 1\nendpoints:\n  - name: a\n    kind: slack\n    url: \"http://x y/\"\n", 5, 10,
                    "contains whitespace");
    s_expect_error (f, "version: 1\nendpoints:\n  - name: a\n    kind: slack\n    url: \"http://\"\n", 5, 10,
                    "endpoints[0].url: not a valid URL");
    s_expect_error (f, "version: 1\nendpoints:\n  - name: -a\n    kind: slack\n    url: http://x/\n", 3, 11,
                    "endpoints[0].name: '-a' is not 1 to 64");
    s_expect_error (f, "version: 1\nendpoints:\n  - kind: slack\n    url: http://x/\n", 3, 5,
                    "endpoints[0]: missing key 'name'");
    snprintf (text, sizeof text, "%s    events: [rollback, rollbak]\n", head);
    s_expect_error (f, text, 6, 24, "endpoints[0].events[1]: unknown template 'rollbak'");
    snprintf (text, sizeof text, "%s    events: [rollback, rollback]\n", head);
    s_expect_error (f, text, 6, 24, "'rollback' is given twice");
    snprintf (text, sizeof text, "%s    events: []\n", head);
    s_expect_error (f, text, 6, 13, "must name at least one template");
    snprintf (text, sizeof text, "%s    environments: [prod]\n", head);
    s_expect_error (f, text, 6, 20, "unknown environment 'prod'");
    snprintf (text, sizeof text, "%s    timeout_ms: 5\n", head);
    s_expect_error (f, text, 6, 17, "endpoints[0].timeout_ms: 5 is out of range 100..300000");
    snprintf (text, sizeof text, "%s    timeout_ms: soon\n", head);
    s_expect_error (f, text, 6, 17, "expected an integer, found a string");
    snprintf (text, sizeof text, "%s    secret: { env: A, file: b }\n", head);
    s_expect_error (f, text, 6, 13, "give exactly one of env and file");
    snprintf (text, sizeof text, "%s    secret: { env: 1BAD }\n", head);
    s_expect_error (f, text, 6, 20, "'1BAD' is not an environment variable name");
    s_expect_error (f, "version: 1\nendpoints:\n  - name: h\n    kind: webhook\n    url: http://x/\n", 3, 5,
                    "endpoints[0]: a webhook endpoint needs a secret");
    snprintf (text, sizeof text, "%s  - name: a\n    kind: slack\n    url: http://y/\n", head);
    s_expect_error (f, text, 6, 5, "endpoints[1]: endpoint name 'a' is also used by endpoints[0]");
    s_expect_error (f, "version: 1\nendpoints: []\nretry: { initial_ms: 5000, max_ms: 100 }\n", 3, 8,
                    "retry: max_ms (100) is below initial_ms (5000)");
    s_expect_error (f, "version: 1\nendpoints: []\nretry: { give_up_after_ms: 10 }\n", 3, 28,
                    "retry.give_up_after_ms: 10 is out of range");
    s_expect_error (f, "version: 1\nendpoints: [\n", 3, 1, "did not find expected node content");
    s_expect_error (f, "version: 1\nendpoints: []\n---\nversion: 1\n", 4, 1, "a second YAML document");
    //  An alias is refused where it is written (no billion laughs; one rule for every file).
    snprintf (text, sizeof text, "%s    events: &e [rollback]\n    environments: *e\n", head);
    s_expect_error (f, text, 7, 19, "an alias (*e): aliases are not allowed");
}

static void
test_inline_secret_not_echoed (void **state)
{
    s_fixture_t *f = *state;
    s_expect_error (f, "version: 1\nendpoints:\n  - name: h\n    kind: webhook\n    url: http://x/\n"
                       "    secret: s3cr3t-value\n", 6, 13, "give a reference, { env: VARIABLE } or { file: PATH }");
    assert_null (strstr (f->error, "s3cr3t-value"));
}

static void
test_all_errors_in_one_load (void **state)
{
    s_fixture_t *f = *state;
    al_notify_config_t *config = s_load (f,
        "version: 1\n"
        "endpoints:\n"
        "  - name: a\n"
        "    kind: pager\n"
        "    url: gopher://x/\n"
        "    colour: red\n"
        "retry: { initial_ms: 0 }\n");
    assert_null (config);
    size_t lines = 1;
    for (const char *p = f->error; *p; p++)
        lines += *p == '\n';
    assert_int_equal (lines, 4);
    assert_non_null (strstr (f->error, "unknown key 'colour'"));
    assert_non_null (strstr (f->error, "unknown kind 'pager'"));
    assert_non_null (strstr (f->error, "must start with http"));
    assert_non_null (strstr (f->error, "retry.initial_ms: 0 is out of range"));
    //  A missing file.
    unlink (f->path);
    f->error [0] = '\0';
    assert_null (al_notify_config_load (f->path, f->error, sizeof f->error));
    assert_non_null (strstr (f->error, "cannot open"));
}

static void
test_secrets (void **state)
{
    s_fixture_t *f = *state;
    char secret_path [200];
    snprintf (secret_path, sizeof secret_path, "%s/hook.key", f->dir);
    FILE *file = fopen (secret_path, "w");
    assert_non_null (file);
    fputs ("file-secret\n", file);
    fclose (file);
    al_notify_config_t *config = s_load (f,
        "version: 1\nendpoints:\n"
        "  - { name: by-env, kind: webhook, url: \"http://x/\", secret: { env: AL_TEST_NOTIFY_SECRET } }\n"
        "  - { name: by-file, kind: webhook, url: \"http://x/\", secret: { file: hook.key } }\n"
        "  - { name: missing, kind: webhook, url: \"http://x/\", secret: { file: nothing.key } }\n"
        "  - { name: none, kind: slack, url: \"http://x/\" }\n");
    if (!config)
        fail_msg ("%s", f->error);
    char *secret = NULL;
    char error [300];
    unsetenv ("AL_TEST_NOTIFY_SECRET");
    assert_int_equal (al_notify_endpoint_secret (al_notify_config_at (config, 0), &secret, error, sizeof error), -1);
    assert_null (secret);
    assert_non_null (strstr (error, "endpoint by-env: secret: environment variable AL_TEST_NOTIFY_SECRET"));
    setenv ("AL_TEST_NOTIFY_SECRET", "env-secret", 1);
    assert_int_equal (al_notify_endpoint_secret (al_notify_config_at (config, 0), &secret, error, sizeof error), 0);
    assert_string_equal (secret, "env-secret");
    free (secret);
    assert_int_equal (al_notify_endpoint_secret (al_notify_config_at (config, 1), &secret, error, sizeof error), 0);
    assert_string_equal (secret, "file-secret");
    free (secret);
    assert_int_equal (al_notify_endpoint_secret (al_notify_config_at (config, 2), &secret, error, sizeof error), -1);
    assert_non_null (strstr (error, "nothing.key"));
    assert_int_equal (al_notify_endpoint_secret (al_notify_config_at (config, 3), &secret, error, sizeof error), 0);
    assert_null (secret);
    //  An empty file is no secret.
    file = fopen (secret_path, "w");
    assert_non_null (file);
    fputs ("\n", file);
    fclose (file);
    assert_int_equal (al_notify_endpoint_secret (al_notify_config_at (config, 1), &secret, error, sizeof error), -1);
    assert_non_null (strstr (error, "is empty"));
    unsetenv ("AL_TEST_NOTIFY_SECRET");
    al_notify_config_destroy (&config);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_every_key, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_defaults, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_errors, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_inline_secret_not_echoed, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_all_errors_in_one_load, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_secrets, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
