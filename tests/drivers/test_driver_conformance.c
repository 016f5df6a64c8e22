/*  test_driver_conformance.c: one suite, run against every built-in driver.

    Each test runs twice: against "process" (instances are children running
    scripts/service.sh, which execs the demo service) and against "exec" (the steps are
    scripts/exec_start.sh, exec_stop.sh and exec_switch.sh, which start and stop the
    same demo service in the background, as an operator's commands would drive a
    platform). Both therefore run real instances on real ports, and the assertions are
    the contract of al_driver.h: start, probe, list, stop (graceful and forced), a
    failing readiness, a crash at start, the active set, prerequisites, unknown ids.
    Faults are asked for through the spec's extra_env (FAIL_READINESS, CRASH_AT_START,
    STUBBORN). A few generic tests cover the registry.

    The teardown kills every instance's process group and reaps every child, whether
    or not the test failed. Nothing here asserts timing.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "deploy/al_driver.h"
#include "driver_test_util.h"

#define S_MAX 16

typedef struct {
    const char *driver;
    char *dir;
    char evidence [4096];
    char service_sh [4096];
    char start_sh [4096];
    char stop_sh [4096];
    char switch_sh [4096];
    const char *command [5];
    const char *start_argv [3];
    const char *stop_argv [3];
    const char *switch_argv [3];
    al_driver_step_t steps [3];
    al_driver_config_t config;
    al_driver_t *d;
} s_fixture_t;

static void
s_configure (s_fixture_t *self)
{
    memset (&self->config, 0, sizeof (self->config));
    self->config.evidence_dir = self->evidence;
    self->config.stop_timeout_ms = 5000;
    self->config.probe_timeout_ms = 2000;
    if (strcmp (self->driver, "process") == 0) {
        self->command [0] = "/bin/sh";
        self->command [1] = self->service_sh;
        self->command [2] = "{{artifact}}";
        self->command [3] = "{{version}}";
        self->command [4] = NULL;
        self->config.command = self->command;
    }
    else {
        self->start_argv [0] = "/bin/sh";
        self->start_argv [1] = self->start_sh;
        self->stop_argv [0] = "/bin/sh";
        self->stop_argv [1] = self->stop_sh;
        self->switch_argv [0] = "/bin/sh";
        self->switch_argv [1] = self->switch_sh;
        self->steps [0] = (al_driver_step_t) { "start", self->start_argv, 30000 };
        self->steps [1] = (al_driver_step_t) { "stop", self->stop_argv, 30000 };
        self->steps [2] = (al_driver_step_t) { "switch", self->switch_argv, 30000 };
        self->config.steps = self->steps;
        self->config.step_count = 3;
        self->config.endpoint = "http://127.0.0.1:{{port}}";
    }
}

#define S_SERVICE_TOKEN "tok-5ecret-in-the-service-log"

static int
s_setup_with (void **state, const char *driver, bool with_secret)
{
    dt_become_subreaper ();
    s_fixture_t *self = calloc (1, sizeof (s_fixture_t));
    assert_non_null (self);
    self->driver = driver;
    self->dir = dt_temp_dir ("al-conformance");
    snprintf (self->evidence, sizeof (self->evidence), "%s/evidence", self->dir);
    dt_script ("service.sh", self->service_sh, sizeof (self->service_sh));
    dt_script ("exec_start.sh", self->start_sh, sizeof (self->start_sh));
    dt_script ("exec_stop.sh", self->stop_sh, sizeof (self->stop_sh));
    dt_script ("exec_switch.sh", self->switch_sh, sizeof (self->switch_sh));
    s_configure (self);
    static const al_driver_secret_ref_t secret = {
        .name = "service_token", .env = "AIRLOCK_TEST_SERVICE_TOKEN", .as = "SERVICE_TOKEN"
    };
    if (with_secret) {
        setenv ("AIRLOCK_TEST_SERVICE_TOKEN", S_SERVICE_TOKEN, 1);
        self->config.secrets = &secret;
        self->config.secret_count = 1;
    }
    char error [1024];
    self->d = al_driver_open (driver, &self->config, error, sizeof (error));
    if (!self->d)
        fail_msg ("open %s: %s", driver, error);
    *state = self;
    return 0;
}

static int s_setup_process (void **state) { return s_setup_with (state, "process", false); }
static int s_setup_exec (void **state) { return s_setup_with (state, "exec", false); }
static int s_setup_process_secret (void **state) { return s_setup_with (state, "process", true); }

static int
s_teardown (void **state)
{
    s_fixture_t *self = *state;
    if (self->d) {
        al_driver_instance_t instances [S_MAX];
        size_t count = 0;
        char error [512];
        al_driver_list_instances (self->d, instances, S_MAX, &count, error, sizeof (error));
        //  Every group, running or not: a stop that failed to stop must not leak.
        for (size_t i = 0; i < count && i < S_MAX; i++)
            if (instances [i].pid > 0)
                kill (-instances [i].pid, SIGKILL);
        al_driver_destroy (&self->d);
    }
    dt_reap_all (2000);
    dt_remove_tree (self->dir);
    free (self->dir);
    free (self);
    return 0;
}

//  Start one instance; fails the test with the driver's error otherwise.
static void
s_start (s_fixture_t *self, const char *version, int index, const char *set,
         const char *const *extra_env, al_driver_instance_t *info)
{
    al_driver_spec_t spec = {
        .vars = { "demo", version, dt_demo_service (), "sha256:00", "test" },
        .instance = index, .set = set, .extra_env = extra_env
    };
    char error [2048];
    al_driver_status_t status = al_driver_start_instance (self->d, &spec, info, error, sizeof (error));
    if (status != AL_DRIVER_OK)
        fail_msg ("%s: start: %s: %s", self->driver, al_driver_status_name (status), error);
}

//  Probe until it succeeds or 20 s pass; returns the last result.
static bool
s_probe_until_ok (s_fixture_t *self, const char *id, al_driver_probe_kind_t kind, al_probe_result_t *result)
{
    char error [512];
    for (int i = 0; i < 400; i++) {
        assert_int_equal (al_driver_probe (self->d, id, kind, result, error, sizeof (error)), AL_DRIVER_OK);
        if (result->ok)
            return true;
        usleep (50000);
    }
    return false;
}

static void
test_three_instances_ready_then_one_stopped (void **state)
{
    s_fixture_t *self = *state;
    al_driver_instance_t started [3];
    for (int i = 0; i < 3; i++)
        s_start (self, "1.4.0", i, NULL, NULL, &started [i]);
    for (int i = 0; i < 3; i++) {
        al_probe_result_t probe;
        assert_true (s_probe_until_ok (self, started [i].id, AL_DRIVER_READINESS, &probe));
        assert_int_equal (probe.status, 200);
        assert_true (s_probe_until_ok (self, started [i].id, AL_DRIVER_LIVENESS, &probe));
    }
    al_driver_instance_t listed [S_MAX];
    size_t count;
    char error [1024];
    assert_int_equal (al_driver_list_instances (self->d, listed, S_MAX, &count, error, sizeof (error)),
                      AL_DRIVER_OK);
    assert_int_equal (count, 3);
    for (size_t i = 0; i < count; i++) {
        assert_string_equal (listed [i].version, "1.4.0");
        assert_string_equal (listed [i].service, "demo");
        assert_string_equal (listed [i].set, "default");
        assert_string_equal (listed [i].id, started [i].id);
        assert_int_equal (listed [i].instance, (int) i);
        assert_true (listed [i].running);
        assert_true (listed [i].active);
        assert_true (listed [i].pid > 0);
        assert_true (listed [i].port > 0);
        assert_non_null (strstr (listed [i].endpoint, "http://127.0.0.1:"));
        for (size_t j = 0; j < i; j++) {
            assert_int_not_equal (listed [i].port, listed [j].port);
            assert_string_not_equal (listed [i].id, listed [j].id);
        }
    }
    //  Stop the middle one gracefully: the demo service exits 0 on SIGTERM.
    al_driver_stop_t stop;
    assert_int_equal (al_driver_stop_instance (self->d, started [1].id, 5000, &stop, error, sizeof (error)),
                      AL_DRIVER_OK);
    assert_false (stop.forced);
    assert_int_equal (stop.exit_code, 0);
    assert_true (dt_pid_gone (listed [1].pid));
    al_probe_result_t probe;
    assert_int_equal (al_driver_probe (self->d, started [1].id, AL_DRIVER_READINESS, &probe,
                                       error, sizeof (error)), AL_DRIVER_OK);
    assert_false (probe.ok);
    assert_int_equal (al_driver_list_instances (self->d, listed, S_MAX, &count, error, sizeof (error)),
                      AL_DRIVER_OK);
    assert_int_equal (count, 3);
    assert_true (listed [0].running);
    assert_false (listed [1].running);
    assert_true (listed [2].running);
    assert_true (s_probe_until_ok (self, started [0].id, AL_DRIVER_READINESS, &probe));
    assert_true (s_probe_until_ok (self, started [2].id, AL_DRIVER_READINESS, &probe));
    //  Stopping it again is not an error.
    assert_int_equal (al_driver_stop_instance (self->d, started [1].id, 5000, &stop, error, sizeof (error)),
                      AL_DRIVER_OK);
}

static void
test_sigterm_ignored_is_killed (void **state)
{
    s_fixture_t *self = *state;
    const char *stubborn [] = { "STUBBORN=1", NULL };
    al_driver_instance_t info;
    s_start (self, "1.0.0", 0, NULL, stubborn, &info);
    assert_true (info.pid > 0);
    al_driver_stop_t stop;
    char error [1024];
    assert_int_equal (al_driver_stop_instance (self->d, info.id, 300, &stop, error, sizeof (error)),
                      AL_DRIVER_OK);
    assert_true (stop.forced);
    assert_true (dt_pid_gone (info.pid));
    al_driver_instance_t listed [S_MAX];
    size_t count;
    assert_int_equal (al_driver_list_instances (self->d, listed, S_MAX, &count, error, sizeof (error)),
                      AL_DRIVER_OK);
    assert_int_equal (count, 1);
    assert_false (listed [0].running);
}

static void
test_failing_readiness_is_reported (void **state)
{
    s_fixture_t *self = *state;
    const char *fault [] = { "FAIL_READINESS=1", NULL };
    al_driver_instance_t info;
    s_start (self, "2.0.0", 0, NULL, fault, &info);
    al_probe_result_t probe;
    assert_true (s_probe_until_ok (self, info.id, AL_DRIVER_LIVENESS, &probe));
    char error [512];
    assert_int_equal (al_driver_probe (self->d, info.id, AL_DRIVER_READINESS, &probe, error, sizeof (error)),
                      AL_DRIVER_OK);
    assert_false (probe.ok);
    assert_int_equal (probe.status, 503);
    assert_string_equal (probe.detail, "503");
}

static void
test_crash_at_start_is_reported (void **state)
{
    s_fixture_t *self = *state;
    const char *fault [] = { "CRASH_AT_START=1", NULL };
    al_driver_spec_t spec = {
        .vars = { "demo", "3.0.0", dt_demo_service (), "", "test" }, .instance = 0, .extra_env = fault
    };
    al_driver_instance_t info;
    char error [2048];
    assert_int_equal (al_driver_start_instance (self->d, &spec, &info, error, sizeof (error)),
                      AL_DRIVER_ERR_FAILED);
    assert_non_null (strstr (error, "exit code 3"));
    assert_non_null (strstr (error, "crash-at-start"));
    al_driver_instance_t listed [S_MAX];
    size_t count;
    assert_int_equal (al_driver_list_instances (self->d, listed, S_MAX, &count, error, sizeof (error)),
                      AL_DRIVER_OK);
    for (size_t i = 0; i < count; i++)
        assert_false (listed [i].running);
}

static void
test_switch_active_labels_the_set (void **state)
{
    s_fixture_t *self = *state;
    al_driver_instance_t blue, green;
    s_start (self, "1.0.0", 0, "blue", NULL, &blue);
    s_start (self, "1.1.0", 0, "green", NULL, &green);
    assert_string_equal (al_driver_active_set (self->d), "default");
    assert_false (blue.active);
    char error [1024];
    assert_int_equal (al_driver_switch_active (self->d, "green", error, sizeof (error)), AL_DRIVER_OK);
    assert_string_equal (al_driver_active_set (self->d), "green");
    al_driver_instance_t listed [S_MAX];
    size_t count;
    assert_int_equal (al_driver_list_instances (self->d, listed, S_MAX, &count, error, sizeof (error)),
                      AL_DRIVER_OK);
    assert_int_equal (count, 2);
    assert_string_equal (listed [0].set, "blue");
    assert_false (listed [0].active);
    assert_string_equal (listed [1].set, "green");
    assert_string_equal (listed [1].version, "1.1.0");
    assert_true (listed [1].active);
    //  A set name is checked before any driver sees it.
    assert_int_equal (al_driver_switch_active (self->d, "-rf x", error, sizeof (error)), AL_DRIVER_ERR_CONFIG);
    assert_string_equal (al_driver_active_set (self->d), "green");
    //  Back to blue: the old set was kept for exactly this.
    assert_int_equal (al_driver_switch_active (self->d, "blue", error, sizeof (error)), AL_DRIVER_OK);
    assert_int_equal (al_driver_list_instances (self->d, listed, S_MAX, &count, error, sizeof (error)),
                      AL_DRIVER_OK);
    assert_true (listed [0].active);
    assert_false (listed [1].active);
}

static void
test_prerequisites (void **state)
{
    s_fixture_t *self = *state;
    al_driver_vars_t vars = { "demo", "1.0.0", dt_demo_service (), "", "test" };
    al_driver_report_t *report = al_driver_report_new ();
    char error [1024];
    al_driver_status_t status = al_driver_prerequisites (self->d, &vars, report, error, sizeof (error));
    if (status != AL_DRIVER_OK)
        fail_msg ("%s: prerequisites: %s", self->driver, error);
    assert_true (al_driver_report_size (report) >= 2);
    assert_int_equal (al_driver_report_failures (report), 0);
    al_driver_report_destroy (&report);
    assert_null (report);

    //  The same driver with a program that does not exist.
    al_driver_destroy (&self->d);
    const char *missing = "/nonexistent/airlock-test-program";
    self->command [1] = NULL;
    self->command [0] = missing;
    self->start_argv [0] = missing;
    self->start_argv [1] = NULL;
    self->d = al_driver_open (self->driver, &self->config, error, sizeof (error));
    assert_non_null (self->d);
    report = al_driver_report_new ();
    assert_int_equal (al_driver_prerequisites (self->d, &vars, report, error, sizeof (error)),
                      AL_DRIVER_ERR_FAILED);
    assert_true (al_driver_report_failures (report) >= 1);
    bool named = false;
    for (size_t i = 0; i < al_driver_report_size (report); i++) {
        bool ok;
        const char *detail;
        al_driver_report_check (report, i, &ok, &detail);
        named |= !ok && strstr (detail, missing) != NULL;
    }
    assert_true (named);
    al_driver_report_destroy (&report);
    //  And starting with it fails without leaving anything behind.
    al_driver_spec_t spec = { .vars = vars, .instance = 0 };
    al_driver_instance_t info;
    assert_int_equal (al_driver_start_instance (self->d, &spec, &info, error, sizeof (error)),
                      AL_DRIVER_ERR_FAILED);
    assert_non_null (strstr (error, missing));
}

static void
test_unknown_instance_and_bad_spec (void **state)
{
    s_fixture_t *self = *state;
    char error [512];
    al_driver_stop_t stop;
    al_probe_result_t probe;
    assert_int_equal (al_driver_stop_instance (self->d, "nope-0.1", 100, &stop, error, sizeof (error)),
                      AL_DRIVER_ERR_NOT_FOUND);
    assert_non_null (strstr (error, "nope-0.1"));
    assert_int_equal (al_driver_probe (self->d, "nope-0.1", AL_DRIVER_LIVENESS, &probe, error, sizeof (error)),
                      AL_DRIVER_ERR_NOT_FOUND);
    //  Outside input with a newline or a bad service name is refused before anything runs.
    al_driver_spec_t spec = { .vars = { "demo", "1.0\nX", dt_demo_service (), "", "test" } };
    al_driver_instance_t info;
    assert_int_equal (al_driver_start_instance (self->d, &spec, &info, error, sizeof (error)),
                      AL_DRIVER_ERR_CONFIG);
    spec.vars.version = "1.0";
    spec.vars.service = "../etc";
    assert_int_equal (al_driver_start_instance (self->d, &spec, &info, error, sizeof (error)),
                      AL_DRIVER_ERR_CONFIG);
    size_t count;
    assert_int_equal (al_driver_list_instances (self->d, NULL, 0, &count, error, sizeof (error)), AL_DRIVER_OK);
    assert_int_equal (count, 0);
}

//  Generic: the registry.

static al_driver_status_t
s_fake_prerequisites (void *handle, const al_driver_vars_t *vars, al_driver_report_t *report,
                      char *error, size_t error_size)
{
    (void) handle; (void) vars; (void) report; (void) error; (void) error_size;
    return AL_DRIVER_OK;
}

static void *
s_fake_open (const al_driver_config_t *config, const al_driver_secrets_t *secrets,
             char *error, size_t error_size)
{
    (void) config; (void) secrets; (void) error; (void) error_size;
    static int handle;
    return &handle;
}

static void s_fake_close (void *handle) { (void) handle; }

static al_driver_status_t
s_fake_start (void *handle, const al_driver_spec_t *spec, al_driver_instance_t *info, char *error, size_t size)
{
    (void) handle; (void) spec; (void) info; (void) error; (void) size;
    return AL_DRIVER_OK;
}

static al_driver_status_t
s_fake_stop (void *handle, const char *id, int grace, al_driver_stop_t *result, char *error, size_t size)
{
    (void) handle; (void) id; (void) grace; (void) result; (void) error; (void) size;
    return AL_DRIVER_OK;
}

static al_driver_status_t
s_fake_probe (void *handle, const char *id, al_driver_probe_kind_t kind, al_probe_result_t *result,
              char *error, size_t size)
{
    (void) handle; (void) id; (void) kind; (void) result; (void) error; (void) size;
    return AL_DRIVER_OK;
}

static al_driver_status_t
s_fake_list (void *handle, al_driver_instance_t *instances, size_t max, size_t *count, char *error, size_t size)
{
    (void) handle; (void) instances; (void) max; (void) error; (void) size;
    *count = 0;
    return AL_DRIVER_OK;
}

static void
test_registry (void **state)
{
    (void) state;
    assert_non_null (al_driver_find ("process"));
    assert_non_null (al_driver_find ("exec"));
    assert_null (al_driver_find ("kubernetes"));
    al_driver_ops_t ops = {
        .name = "fake", .version = AL_DRIVER_OPS_VERSION, .open = s_fake_open, .close = s_fake_close,
        .prerequisites = s_fake_prerequisites, .start_instance = s_fake_start,
        .stop_instance = s_fake_stop, .probe = s_fake_probe,
    };
    char error [512];
    //  list_instances is mandatory.
    assert_int_equal (al_driver_register (&ops, error, sizeof (error)), AL_DRIVER_ERR_CONFIG);
    assert_non_null (strstr (error, "list_instances"));
    ops.list_instances = s_fake_list;
    ops.version = AL_DRIVER_OPS_VERSION + 1;
    assert_int_equal (al_driver_register (&ops, error, sizeof (error)), AL_DRIVER_ERR_CONFIG);
    ops.version = AL_DRIVER_OPS_VERSION;
    assert_int_equal (al_driver_register (&ops, error, sizeof (error)), AL_DRIVER_OK);
    assert_int_equal (al_driver_register (&ops, error, sizeof (error)), AL_DRIVER_ERR_CONFIG);
    ops.name = "process";
    assert_int_equal (al_driver_register (&ops, error, sizeof (error)), AL_DRIVER_ERR_CONFIG);
    //  Optional members default to "unsupported", never to a silent success.
    al_driver_config_t config = { .evidence_dir = "/tmp" };
    al_driver_t *d = al_driver_open ("fake", &config, error, sizeof (error));
    assert_non_null (d);
    assert_int_equal (al_driver_switch_active (d, "green", error, sizeof (error)), AL_DRIVER_ERR_UNSUPPORTED);
    assert_string_equal (al_driver_active_set (d), "default");
    al_driver_run_t run;
    assert_int_equal (al_driver_run_step (d, "backup", NULL, &run, error, sizeof (error)),
                      AL_DRIVER_ERR_UNSUPPORTED);
    al_driver_destroy (&d);
    assert_null (d);
    assert_null (al_driver_open ("kubernetes", &config, error, sizeof (error)));
    assert_non_null (strstr (error, "kubernetes"));
}

static void
test_open_rejects_bad_configurations (void **state)
{
    (void) state;
    bool stdin_open = fcntl (0, F_GETFD) >= 0;
    char error [1024];
    const char *command [] = { "{{artifact}}", "--port", "{{prot}}", NULL };
    al_driver_config_t config = { .evidence_dir = "/tmp" };
    assert_null (al_driver_open ("process", &config, error, sizeof (error)));
    assert_non_null (strstr (error, "command"));
    config.command = command;
    assert_null (al_driver_open ("process", &config, error, sizeof (error)));
    assert_non_null (strstr (error, "command[2]"));
    assert_non_null (strstr (error, "{{prot}}"));
    command [2] = "{{port}}";
    config.evidence_dir = "/proc/airlock-cannot-create/evidence";
    assert_null (al_driver_open ("process", &config, error, sizeof (error)));
    assert_non_null (strstr (error, "/proc/airlock-cannot-create"));
    const char *env [] = { "NOEQUALS", NULL };
    config.evidence_dir = "/tmp";
    config.env = env;
    assert_null (al_driver_open ("process", &config, error, sizeof (error)));
    assert_non_null (strstr (error, "env[0]"));
    config.env = NULL;
    config.host = "localhost.invalid";
    assert_null (al_driver_open ("process", &config, error, sizeof (error)));
    assert_non_null (strstr (error, "host"));
    //  stdin is still ours: a failed open closed nothing it did not open.
    assert_int_equal (fcntl (0, F_GETFD) >= 0, stdin_open);
    al_driver_config_t exec = { .evidence_dir = "/tmp" };
    assert_null (al_driver_open ("exec", &exec, error, sizeof (error)));
    assert_non_null (strstr (error, "start"));
}

static void
test_process_refuses_switch_to_empty_set (void **state)
{
    s_fixture_t *self = *state;
    al_driver_instance_t info;
    s_start (self, "1.0.0", 0, "blue", NULL, &info);
    char error [512];
    assert_int_equal (al_driver_switch_active (self->d, "green", error, sizeof (error)), AL_DRIVER_ERR_FAILED);
    assert_non_null (strstr (error, "green"));
    assert_string_equal (al_driver_active_set (self->d), "default");
}

//  process only: a service that prints a secret it was given. Its instance log is
//  written through the driver's redacting pump, and a start error quoting the log tail
//  is redacted too.
static void
test_process_service_log_is_redacted (void **state)
{
    s_fixture_t *self = *state;
    al_driver_instance_t info;
    s_start (self, "1.0.0", 0, NULL, NULL, &info);
    al_probe_result_t probe;
    assert_true (s_probe_until_ok (self, info.id, AL_DRIVER_READINESS, &probe));
    const char *fault [] = { "CRASH_AT_START=1", NULL };
    al_driver_spec_t spec = {
        .vars = { "demo", "1.0.1", dt_demo_service (), "", "test" }, .instance = 1, .extra_env = fault
    };
    char error [2048];
    assert_int_equal (al_driver_start_instance (self->d, &spec, &info, error, sizeof (error)),
                      AL_DRIVER_ERR_FAILED);
    assert_null (strstr (error, S_SERVICE_TOKEN));
    assert_non_null (strstr (error, "token=[REDACTED:service_token]"));
    al_driver_destroy (&self->d);          // stops the instance, flushes its log
    char found [4200] = "";
    if (dt_tree_contains (self->evidence, S_SERVICE_TOKEN, found, sizeof (found)))
        fail_msg ("the secret is in %s", found);
    assert_true (dt_tree_contains (self->evidence, "starting with token [REDACTED:service_token]",
                                   found, sizeof (found)));
}

#define S_BOTH(test) \
    cmocka_unit_test_setup_teardown (test, s_setup_process, s_teardown), \
    cmocka_unit_test_setup_teardown (test, s_setup_exec, s_teardown)

int
main (void)
{
    const struct CMUnitTest tests [] = {
        S_BOTH (test_three_instances_ready_then_one_stopped),
        S_BOTH (test_sigterm_ignored_is_killed),
        S_BOTH (test_failing_readiness_is_reported),
        S_BOTH (test_crash_at_start_is_reported),
        S_BOTH (test_switch_active_labels_the_set),
        S_BOTH (test_prerequisites),
        S_BOTH (test_unknown_instance_and_bad_spec),
        cmocka_unit_test_setup_teardown (test_process_refuses_switch_to_empty_set, s_setup_process, s_teardown),
        cmocka_unit_test_setup_teardown (test_process_service_log_is_redacted, s_setup_process_secret, s_teardown),
        cmocka_unit_test (test_registry),
        cmocka_unit_test (test_open_rejects_bad_configurations),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
