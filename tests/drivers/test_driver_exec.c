/*  test_driver_exec.c: the exec driver's runs, and the redactor it relies on.

    Steps are small sh or coreutils commands run through al_driver_run_step (and the
    instance members where a step's role matters): success, a failing exit code, a
    timeout that must kill the whole process group (a grandchild included), the
    bounds of captured output, template substitution that cannot inject arguments or
    shell code, configuration errors naming the template, and secrets: a secret that a
    command prints never appears in the returned output, the error text, or any file
    under the evidence directory.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "deploy/al_driver.h"
#include "deploy/al_redact.h"
#include "driver_test_util.h"

#define S_ENV_SECRET  "s3cr3t-env-value-42"
#define S_FILE_SECRET "f1le-secret-value-99"

typedef struct {
    char *dir;
    char evidence [4096];
    char secret_file [4096];
    al_driver_t *d;
} s_fixture_t;

static int
s_setup (void **state)
{
    dt_become_subreaper ();
    s_fixture_t *self = calloc (1, sizeof (s_fixture_t));
    assert_non_null (self);
    self->dir = dt_temp_dir ("al-exec");
    snprintf (self->evidence, sizeof (self->evidence), "%s/evidence", self->dir);
    snprintf (self->secret_file, sizeof (self->secret_file), "%s/db_password", self->dir);
    FILE *file = fopen (self->secret_file, "w");
    assert_non_null (file);
    fprintf (file, "%s\n", S_FILE_SECRET);
    fclose (file);
    setenv ("AIRLOCK_TEST_API_TOKEN", S_ENV_SECRET, 1);
    *state = self;
    return 0;
}

static int
s_teardown (void **state)
{
    s_fixture_t *self = *state;
    al_driver_destroy (&self->d);
    dt_reap_all (2000);
    dt_remove_tree (self->dir);
    free (self->dir);
    free (self);
    return 0;
}

static const char *s_true_argv [] = { "true", NULL };

//  Open the exec driver with the given extra steps (start and stop are required).
static al_driver_status_t
s_open (s_fixture_t *self, const al_driver_step_t *steps, size_t count, size_t max_output,
        char *error, size_t error_size)
{
    al_driver_step_t all [8] = {
        { "start", s_true_argv, 0 }, { "stop", s_true_argv, 0 }
    };
    assert_true (count <= 6);
    memcpy (all + 2, steps, count * sizeof (al_driver_step_t));
    al_driver_secret_ref_t secrets [] = {
        { .name = "api_token", .env = "AIRLOCK_TEST_API_TOKEN", .as = "API_TOKEN" },
        { .name = "db_password", .file = self->secret_file, .as = "DB_PASSWORD" },
    };
    al_driver_config_t config = {
        .evidence_dir = self->evidence, .steps = all, .step_count = count + 2,
        .step_timeout_ms = 20000, .max_output = max_output, .secrets = secrets, .secret_count = 2
    };
    self->d = al_driver_open ("exec", &config, error, error_size);
    return self->d ? AL_DRIVER_OK : AL_DRIVER_ERR_CONFIG;
}

static void
s_open_ok (s_fixture_t *self, const al_driver_step_t *steps, size_t count, size_t max_output)
{
    char error [1024];
    if (s_open (self, steps, count, max_output, error, sizeof (error)) != AL_DRIVER_OK)
        fail_msg ("open: %s", error);
}

static const al_driver_vars_t s_vars = { "shop", "1.2.3", "/srv/shop.tar", "sha256:ab", "staging" };

static void
test_success_is_evidence (void **state)
{
    s_fixture_t *self = *state;
    const char *argv [] = { "/bin/echo", "{{service}}", "v{{ version }}", "{{env}}", NULL };
    al_driver_step_t step = { "hello", argv, 0 };
    s_open_ok (self, &step, 1, 0);
    al_driver_run_t run;
    char error [1024];
    assert_int_equal (al_driver_run_step (self->d, "hello", &s_vars, &run, error, sizeof (error)), AL_DRIVER_OK);
    assert_int_equal (run.exit_code, 0);
    assert_false (run.timed_out);
    assert_string_equal (run.out, "shop v1.2.3 staging\n");
    assert_int_equal (run.out_size, strlen ("shop v1.2.3 staging\n"));
    assert_string_equal (run.err, "");
    assert_string_equal (run.command, "/bin/echo shop v1.2.3 staging");
    assert_non_null (run.evidence_path);
    assert_true (dt_file_contains (run.evidence_path, "shop v1.2.3 staging"));
    assert_true (dt_file_contains (run.evidence_path, "exit_code: 0"));
    al_driver_run_clear (&run);
    assert_null (run.out);
    //  An unknown step.
    assert_int_equal (al_driver_run_step (self->d, "backup", &s_vars, &run, error, sizeof (error)),
                      AL_DRIVER_ERR_NOT_FOUND);
    assert_non_null (strstr (error, "backup"));
}

static void
test_failure_exit_code (void **state)
{
    s_fixture_t *self = *state;
    const char *argv [] = { "sh", "-c", "echo partial; echo 'migration 0042 failed' >&2; exit 7", NULL };
    al_driver_step_t step = { "migrate", argv, 0 };
    s_open_ok (self, &step, 1, 0);
    al_driver_run_t run;
    char error [1024];
    assert_int_equal (al_driver_run_step (self->d, "migrate", &s_vars, &run, error, sizeof (error)),
                      AL_DRIVER_ERR_FAILED);
    assert_int_equal (run.exit_code, 7);
    assert_string_equal (run.out, "partial\n");
    assert_string_equal (run.err, "migration 0042 failed\n");
    assert_non_null (strstr (error, "exit code 7"));
    assert_non_null (strstr (error, "migration 0042 failed"));
    assert_true (dt_file_contains (run.evidence_path, "exit_code: 7"));
    al_driver_run_clear (&run);
    //  A program that cannot be executed.
    al_driver_destroy (&self->d);
    const char *missing [] = { "/nonexistent/tool", NULL };
    al_driver_step_t bad = { "migrate", missing, 0 };
    s_open_ok (self, &bad, 1, 0);
    assert_int_equal (al_driver_run_step (self->d, "migrate", &s_vars, &run, error, sizeof (error)),
                      AL_DRIVER_ERR_FAILED);
    assert_non_null (strstr (error, "/nonexistent/tool"));
    al_driver_run_clear (&run);
}

static void
test_timeout_kills_the_group (void **state)
{
    s_fixture_t *self = *state;
    char pid_file [4200];
    snprintf (pid_file, sizeof (pid_file), "%s/grandchild.pid", self->dir);
    char script [8400];
    snprintf (script, sizeof (script),
              "sleep 60 & echo $! > '%s'; echo started; sleep 60", pid_file);
    const char *argv [] = { "sh", "-c", script, NULL };
    al_driver_step_t step = { "hang", argv, 300 };
    s_open_ok (self, &step, 1, 0);
    al_driver_run_t run;
    char error [1024];
    assert_int_equal (al_driver_run_step (self->d, "hang", &s_vars, &run, error, sizeof (error)),
                      AL_DRIVER_ERR_TIMEOUT);
    assert_true (run.timed_out);
    assert_true (run.exit_code < 0);            // killed by a signal
    assert_string_equal (run.out, "started\n");
    assert_non_null (strstr (error, "timed out"));
    assert_true (dt_file_contains (run.evidence_path, "timed_out: true"));
    al_driver_run_clear (&run);
    FILE *file = fopen (pid_file, "r");
    assert_non_null (file);
    int grandchild = 0;
    assert_int_equal (fscanf (file, "%d", &grandchild), 1);
    fclose (file);
    assert_true (grandchild > 0);
    assert_true (dt_pid_gone (grandchild));
}

static void
test_output_is_bounded (void **state)
{
    s_fixture_t *self = *state;
    const char *argv [] = { "sh", "-c", "head -c 200000 /dev/zero | tr '\\000' x; "
                            "head -c 5000 /dev/zero | tr '\\000' e >&2", NULL };
    al_driver_step_t step = { "noisy", argv, 0 };
    s_open_ok (self, &step, 1, 1000);
    al_driver_run_t run;
    char error [1024];
    assert_int_equal (al_driver_run_step (self->d, "noisy", &s_vars, &run, error, sizeof (error)), AL_DRIVER_OK);
    assert_int_equal (run.out_size, 1000);
    assert_true (run.out_truncated);
    assert_int_equal (strspn (run.out, "x"), 1000);
    assert_int_equal (run.err_size, 1000);
    assert_true (run.err_truncated);
    assert_true (dt_file_contains (run.evidence_path, "stdout_truncated: true"));
    al_driver_run_clear (&run);
}

static void
test_substitution_cannot_inject (void **state)
{
    s_fixture_t *self = *state;
    char marker [4200];
    snprintf (marker, sizeof (marker), "%s/injected", self->dir);
    char hostile_version [16000];
    snprintf (hostile_version, sizeof (hostile_version), "1.0; touch %s $(touch %s) `touch %s`",
              marker, marker, marker);
    //  One element per template: values with spaces and quotes stay one argument.
    const char *direct [] = { "printf", "[%s]\\n", "{{version}}", "x{{artifact}}y", NULL };
    //  A shell, with values through the environment only.
    const char *shell [] = { "sh", "-c", "printf '<%s>' \"$AIRLOCK_VERSION\"", NULL };
    al_driver_step_t steps [] = { { "direct", direct, 0 }, { "shell", shell, 0 } };
    s_open_ok (self, steps, 2, 0);
    al_driver_vars_t vars = { "shop", hostile_version, "a b 'c' \"d\"", "", "staging" };
    al_driver_run_t run;
    char error [1024];
    assert_int_equal (al_driver_run_step (self->d, "direct", &vars, &run, error, sizeof (error)), AL_DRIVER_OK);
    char expected [40000];
    snprintf (expected, sizeof (expected), "[%s]\n[xa b 'c' \"d\"y]\n", hostile_version);
    assert_string_equal (run.out, expected);
    al_driver_run_clear (&run);
    assert_int_equal (al_driver_run_step (self->d, "shell", &vars, &run, error, sizeof (error)), AL_DRIVER_OK);
    snprintf (expected, sizeof (expected), "<%s>", hostile_version);
    assert_string_equal (run.out, expected);
    al_driver_run_clear (&run);
    assert_int_not_equal (access (marker, F_OK), 0);
    //  Control characters in outside values are refused.
    vars.version = "1.0\n2.0";
    assert_int_equal (al_driver_run_step (self->d, "direct", &vars, &run, error, sizeof (error)),
                      AL_DRIVER_ERR_CONFIG);
}

static void
test_unknown_variable_names_the_template (void **state)
{
    s_fixture_t *self = *state;
    const char *argv [] = { "kubectl", "set", "image", "deploy/{{service}}", "app={{image}}", NULL };
    al_driver_step_t step = { "rollout", argv, 0 };
    char error [1024];
    assert_int_equal (s_open (self, &step, 1, 0, error, sizeof (error)), AL_DRIVER_ERR_CONFIG);
    assert_non_null (strstr (error, "steps.rollout.argv[4]"));
    assert_non_null (strstr (error, "{{image}}"));
    assert_non_null (strstr (error, "app={{image}}"));
    const char *unclosed [] = { "echo", "{{version", NULL };
    step.argv = unclosed;
    assert_int_equal (s_open (self, &step, 1, 0, error, sizeof (error)), AL_DRIVER_ERR_CONFIG);
    assert_non_null (strstr (error, "steps.rollout.argv[1]"));
    //  A variable pasted into a shell script is refused: it could be executed.
    const char *pasted [] = { "/bin/bash", "-euc", "deploy --version {{version}}", NULL };
    step.argv = pasted;
    assert_int_equal (s_open (self, &step, 1, 0, error, sizeof (error)), AL_DRIVER_ERR_CONFIG);
    assert_non_null (strstr (error, "steps.rollout.argv[2]"));
    assert_non_null (strstr (error, "shell script"));
    //  ... while variables as the script's positional arguments are fine.
    const char *positional [] = { "sh", "-c", "echo \"$1\"", "sh", "{{version}}", NULL };
    step.argv = positional;
    assert_int_equal (s_open (self, &step, 1, 0, error, sizeof (error)), AL_DRIVER_OK);
    al_driver_run_t run;
    assert_int_equal (al_driver_run_step (self->d, "rollout", &s_vars, &run, error, sizeof (error)), AL_DRIVER_OK);
    assert_string_equal (run.out, "1.2.3\n");
    al_driver_run_clear (&run);
    al_driver_destroy (&self->d);
    //  start and stop are required.
    al_driver_step_t only = { "backup", s_true_argv, 0 };
    al_driver_config_t config = { .evidence_dir = self->evidence, .steps = &only, .step_count = 1 };
    assert_null (al_driver_open ("exec", &config, error, sizeof (error)));
    assert_non_null (strstr (error, "start"));
}

static void
test_secrets_are_redacted_everywhere (void **state)
{
    s_fixture_t *self = *state;
    //  The child sees the secrets in its environment, prints them on both streams and
    //  in its failure; a secret split by the output bound must not leak its head.
    const char *leak [] = { "sh", "-c",
        "echo \"token=$API_TOKEN\"; echo \"db=$DB_PASSWORD\" >&2; echo \"fatal: $API_TOKEN\" >&2; exit 5", NULL };
    const char *cut [] = { "sh", "-c", "printf 'aaaaaaaaaa%s' \"$API_TOKEN\"", NULL };
    const char *argv_leak [] = { "sh", "-c", "true", "{{version}}", NULL };
    al_driver_step_t steps [] = { { "leak", leak, 0 }, { "cut", cut, 0 }, { "argv", argv_leak, 0 } };
    s_open_ok (self, steps, 3, 16);
    al_driver_run_t run;
    char error [2048];
    assert_int_equal (al_driver_run_step (self->d, "leak", &s_vars, &run, error, sizeof (error)),
                      AL_DRIVER_ERR_FAILED);
    assert_int_equal (run.exit_code, 5);
    //  16 bytes of "token=s3cr3t-..." cut the secret: its head is dropped.
    assert_null (strstr (run.out, "s3cr3"));
    assert_non_null (strstr (run.out, "token="));
    assert_null (strstr (run.err, S_FILE_SECRET));
    assert_null (strstr (error, S_ENV_SECRET));
    al_driver_run_clear (&run);
    al_driver_destroy (&self->d);

    s_open_ok (self, steps, 3, 0);
    assert_int_equal (al_driver_run_step (self->d, "leak", &s_vars, &run, error, sizeof (error)),
                      AL_DRIVER_ERR_FAILED);
    assert_string_equal (run.out, "token=[REDACTED:api_token]\n");
    assert_string_equal (run.err, "db=[REDACTED:db_password]\nfatal: [REDACTED:api_token]\n");
    assert_non_null (strstr (error, "fatal: [REDACTED:api_token]"));
    assert_null (strstr (error, S_ENV_SECRET));
    al_driver_run_clear (&run);
    assert_int_equal (al_driver_run_step (self->d, "cut", &s_vars, &run, error, sizeof (error)), AL_DRIVER_OK);
    assert_string_equal (run.out, "aaaaaaaaaa[REDACTED:api_token]");
    al_driver_run_clear (&run);
    //  A value that happens to equal a secret is redacted in the recorded command too.
    al_driver_vars_t vars = s_vars;
    vars.version = S_FILE_SECRET;
    assert_int_equal (al_driver_run_step (self->d, "argv", &vars, &run, error, sizeof (error)), AL_DRIVER_OK);
    assert_null (strstr (run.command, S_FILE_SECRET));
    assert_non_null (strstr (run.command, "[REDACTED:db_password]"));
    al_driver_run_clear (&run);
    al_driver_destroy (&self->d);
    //  Nothing under the evidence directory holds either value.
    char found [4200] = "";
    assert_false (dt_tree_contains (self->evidence, S_ENV_SECRET, found, sizeof (found)));
    assert_false (dt_tree_contains (self->evidence, S_FILE_SECRET, found, sizeof (found)));
    assert_false (dt_tree_contains (self->evidence, "s3cr3", found, sizeof (found)));
    assert_true (dt_tree_contains (self->evidence, "[REDACTED:api_token]", found, sizeof (found)));
}

static void
test_missing_secret_fails_open (void **state)
{
    s_fixture_t *self = *state;
    al_driver_step_t steps [] = { { "start", s_true_argv, 0 }, { "stop", s_true_argv, 0 } };
    al_driver_secret_ref_t secrets [] = { { .name = "token", .env = "AIRLOCK_TEST_UNSET_VARIABLE" } };
    al_driver_config_t config = { .evidence_dir = self->evidence, .steps = steps, .step_count = 2,
                                  .secrets = secrets, .secret_count = 1 };
    char error [1024];
    unsetenv ("AIRLOCK_TEST_UNSET_VARIABLE");
    assert_null (al_driver_open ("exec", &config, error, sizeof (error)));
    assert_non_null (strstr (error, "AIRLOCK_TEST_UNSET_VARIABLE"));
    secrets [0] = (al_driver_secret_ref_t) { .name = "token", .file = "/nonexistent/secret" };
    assert_null (al_driver_open ("exec", &config, error, sizeof (error)));
    assert_non_null (strstr (error, "/nonexistent/secret"));
    secrets [0] = (al_driver_secret_ref_t) { .name = "token", .file = self->secret_file,
                                             .env = "AIRLOCK_TEST_API_TOKEN" };
    assert_null (al_driver_open ("exec", &config, error, sizeof (error)));
    assert_non_null (strstr (error, "exactly one"));
}

static void
test_probe_step_and_stop_facts (void **state)
{
    s_fixture_t *self = *state;
    //  An instance on a platform: no endpoint; the probe step decides.
    const char *start [] = { "sh", "-c", "echo airlock-pid: 4242; echo 'airlock-endpoint: http://10.0.0.9:80'", NULL };
    const char *stop [] = { "sh", "-c", "echo stopping $AIRLOCK_ID after $AIRLOCK_GRACE_MS; echo 'airlock-stop: forced'", NULL };
    const char *probe [] = { "sh", "-c", "test \"$AIRLOCK_PROBE\" = liveness", NULL };
    al_driver_step_t steps [] = { { "start", start, 0 }, { "stop", stop, 0 }, { "probe", probe, 0 } };
    al_driver_config_t config = { .evidence_dir = self->evidence, .steps = steps, .step_count = 3 };
    char error [1024];
    self->d = al_driver_open ("exec", &config, error, sizeof (error));
    assert_non_null (self->d);
    al_driver_spec_t spec = { .vars = s_vars, .instance = 2, .set = "canary" };
    al_driver_instance_t info;
    assert_int_equal (al_driver_start_instance (self->d, &spec, &info, error, sizeof (error)), AL_DRIVER_OK);
    assert_int_equal (info.pid, 4242);
    assert_string_equal (info.endpoint, "http://10.0.0.9:80");
    assert_string_equal (info.set, "canary");
    assert_int_equal (info.port, 0);
    al_probe_result_t result;
    assert_int_equal (al_driver_probe (self->d, info.id, AL_DRIVER_LIVENESS, &result, error, sizeof (error)),
                      AL_DRIVER_OK);
    assert_true (result.ok);
    assert_int_equal (al_driver_probe (self->d, info.id, AL_DRIVER_READINESS, &result, error, sizeof (error)),
                      AL_DRIVER_OK);
    assert_false (result.ok);
    assert_non_null (strstr (result.detail, "exit code 1"));
    al_driver_stop_t stopped;
    assert_int_equal (al_driver_stop_instance (self->d, info.id, 1234, &stopped, error, sizeof (error)),
                      AL_DRIVER_OK);
    assert_true (stopped.forced);
    //  switch is not configured: unsupported, not a silent success.
    assert_int_equal (al_driver_switch_active (self->d, "canary", error, sizeof (error)),
                      AL_DRIVER_ERR_UNSUPPORTED);
    char found [4200];
    assert_true (dt_tree_contains (self->evidence, "after 1234", found, sizeof (found)));
}

static void
test_redactor (void **state)
{
    (void) state;
    al_redact_t *redact = al_redact_new ();
    char error [256];
    assert_int_equal (al_redact_add (redact, "short", "abcdef", error, sizeof (error)), 0);
    assert_int_equal (al_redact_add (redact, "long", "abcdefgh", error, sizeof (error)), 0);
    assert_int_equal (al_redact_add (redact, "tiny", "abc", error, sizeof (error)), -1);
    assert_null (strstr (error, "abc\""));
    assert_int_equal (al_redact_add (redact, "bad name", "zzzzzz", error, sizeof (error)), -1);
    assert_int_equal (al_redact_size (redact), 2);
    assert_int_equal (al_redact_longest (redact), 8);
    const char *text = "x abcdefgh y abcdef z abcdefabcdef";
    size_t size;
    char *out = al_redact_text (redact, text, strlen (text), &size);
    assert_string_equal (out, "x [REDACTED:long] y [REDACTED:short] z [REDACTED:short][REDACTED:short]");
    assert_int_equal (size, strlen (out));
    free (out);
    //  Bytes after a NUL are redacted too.
    const char binary [] = "a\0abcdef";
    out = al_redact_text (redact, binary, sizeof (binary) - 1, &size);
    assert_int_equal (size, 2 + strlen ("[REDACTED:short]"));
    assert_memory_equal (out, "a\0[REDACTED:short]", size);
    free (out);
    assert_int_equal (al_redact_partial_suffix (redact, "xxabcde", 7), 5);
    assert_int_equal (al_redact_partial_suffix (redact, "xxabcdef", 8), 6);     // prefix of "long"
    assert_int_equal (al_redact_partial_suffix (redact, "xxabcdefgh", 10), 0);  // whole value
    assert_int_equal (al_redact_partial_suffix (redact, "xyz", 3), 0);
    char buffer [24] = "key abcdefgh end";
    assert_true (al_redact_buffer (redact, buffer, sizeof (buffer)));
    assert_string_equal (buffer, "key [REDACTED:long] end");
    char small [12] = "abcdefgh!";
    assert_true (al_redact_buffer (redact, small, sizeof (small)));
    assert_null (strstr (small, "abcdef"));
    assert_false (al_redact_buffer (redact, buffer, sizeof (buffer)));
    al_redact_destroy (&redact);
    assert_null (redact);
    al_redact_destroy (&redact);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_success_is_evidence, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_failure_exit_code, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_timeout_kills_the_group, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_output_is_bounded, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_substitution_cannot_inject, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_unknown_variable_names_the_template, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_secrets_are_redacted_everywhere, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_missing_secret_fails_open, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_probe_step_and_stop_facts, s_setup, s_teardown),
        cmocka_unit_test (test_redactor),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
