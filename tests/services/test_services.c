/*  test_services.c: al_services (services.yaml): every key read back, defaults, each
    class of error with its exact "file:line:col: field: what", errors collected in one
    load, driver configurations that the real drivers open, and the qa key.

    Fixtures are in tests/services/fixtures (found through AIRLOCK_SOURCE_DIR); the error
    cases write small files into a fresh temporary directory.
*/
#include "deploy/al_services.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#define S_STAGING       AIRLOCK__ENVIRONMENT__ENV_STAGING
#define S_PRODUCTION    AIRLOCK__ENVIRONMENT__ENV_PRODUCTION
#define S_DEVELOPMENT   AIRLOCK__ENVIRONMENT__ENV_DEVELOPMENT

typedef struct {
    char dir [256];             // scratch directory
    char path [300];            // dir/services.yaml
    char fixtures [4096];       // the fixtures directory (absolute, resolved)
    char error [32768];
} s_fixture_t;

static int
s_setup (void **state)
{
    s_fixture_t *fx = calloc (1, sizeof *fx);
    assert_non_null (fx);
    snprintf (fx->dir, sizeof fx->dir, "/tmp/al-services-XXXXXX");
    assert_non_null (mkdtemp (fx->dir));
    snprintf (fx->path, sizeof fx->path, "%s/services.yaml", fx->dir);
    const char *source = getenv ("AIRLOCK_SOURCE_DIR");
    assert_non_null (source);
    char fixtures [4096];
    snprintf (fixtures, sizeof fixtures, "%s/tests/services/fixtures", source);
    char *real = realpath (fixtures, NULL);
    assert_non_null (real);
    snprintf (fx->fixtures, sizeof fx->fixtures, "%s", real);
    free (real);
    *state = fx;
    return 0;
}

static int
s_teardown (void **state)
{
    s_fixture_t *fx = *state;
    char command [400];
    snprintf (command, sizeof command, "rm -rf '%s'", fx->dir);
    assert_int_equal (system (command), 0);
    free (fx);
    return 0;
}

static al_services_t *
s_load_fixture (s_fixture_t *fx, const char *name)
{
    char path [4200];
    snprintf (path, sizeof path, "%s/%s", fx->fixtures, name);
    al_services_t *services = al_services_load (path, fx->error, sizeof fx->error);
    if (!services)
        fail_msg ("%s: %s", name, fx->error);
    return services;
}

static void
s_write (s_fixture_t *fx, const char *text)
{
    FILE *file = fopen (fx->path, "w");
    assert_non_null (file);
    fputs (text, file);
    fclose (file);
}

static size_t
s_line_count (const char *text)
{
    size_t lines = *text ? 1 : 0;
    for (const char *p = text; *p; p++)
        if (*p == '\n')
            lines++;
    return lines;
}

//  text must be refused with exactly one error, "<path>" + expected at its start.
static void
s_expect_error (s_fixture_t *fx, const char *text, const char *expected)
{
    s_write (fx, text);
    fx->error [0] = '\0';
    al_services_t *services = al_services_load (fx->path, fx->error, sizeof fx->error);
    if (services) {
        al_services_destroy (&services);
        fail_msg ("loaded, expected '%s' for:\n%s", expected, text);
    }
    char prefix [1024];
    snprintf (prefix, sizeof prefix, "%s%s", fx->path, expected);
    if (strncmp (fx->error, prefix, strlen (prefix)) != 0 || s_line_count (fx->error) != 1)
        fail_msg ("expected one error '%s...', got:\n%s\nfor:\n%s", prefix, fx->error, text);
}

static void
test_full_file (void **state)
{
    s_fixture_t *fx = *state;
    al_services_t *services = s_load_fixture (fx, "full.yaml");
    assert_int_equal (al_services_count (services), 2);
    assert_non_null (strstr (al_services_path (services), "fixtures/full.yaml"));
    assert_null (al_services_at (services, 2));
    assert_null (al_services_find (services, "nope"));
    assert_null (al_services_find (services, NULL));

    const al_service_t *demo = al_services_find (services, "demo");
    assert_ptr_equal (demo, al_services_at (services, 0));
    assert_string_equal (demo->name, "demo");
    assert_string_equal (demo->driver, "process");
    assert_int_equal (demo->line, 5);
    assert_int_equal (al_service_instances (demo, S_DEVELOPMENT), AL_SERVICE_DEFAULT_INSTANCES);
    assert_int_equal (al_service_instances (demo, S_STAGING), 2);
    assert_int_equal (al_service_instances (demo, S_PRODUCTION), 3);
    assert_int_equal (al_service_instances (demo, AIRLOCK__ENVIRONMENT__ENV_UNSPECIFIED), 0);
    assert_int_equal (al_service_strategy (demo, S_DEVELOPMENT), AIRLOCK__STRATEGY__STRATEGY_BLUE_GREEN);
    assert_int_equal (al_service_strategy (demo, S_STAGING), AIRLOCK__STRATEGY__STRATEGY_ROLLING);
    assert_int_equal (al_service_strategy (demo, S_PRODUCTION), AIRLOCK__STRATEGY__STRATEGY_CANARY);
    assert_int_equal (al_service_strategy (demo, (Airlock__Environment) 9),
                      AIRLOCK__STRATEGY__STRATEGY_UNSPECIFIED);
    assert_int_equal (demo->batch_size, 2);
    assert_int_equal (demo->max_unavailable, 1);
    assert_int_equal (demo->max_surge, 0);
    assert_int_equal (demo->canary_step_count, 3);
    assert_int_equal (demo->canary_steps [0], 10);
    assert_int_equal (demo->canary_steps [1], 50);
    assert_int_equal (demo->canary_steps [2], 100);
    assert_int_equal (demo->canary_step_soak_ms, 1500);
    assert_int_equal (demo->soak_ms, 2000);
    assert_int_equal (demo->probe_interval_ms, 100);
    assert_int_equal (demo->ready_timeout_ms, 5000);
    assert_int_equal (demo->health_failures, 4);
    assert_true (demo->cost_per_instance_usd_month == 12.5);

    //  Relative paths resolve against the file's directory.
    char expected [4300];
    assert_null (al_service_database (demo, S_DEVELOPMENT));
    snprintf (expected, sizeof expected, "%s/data/staging.db", fx->fixtures);
    assert_string_equal (al_service_database (demo, S_STAGING), expected);
    assert_string_equal (al_service_database (demo, S_PRODUCTION), "/var/lib/demo/production.db");
    snprintf (expected, sizeof expected, "%s/migrations/demo", fx->fixtures);
    assert_string_equal (demo->migrations, expected);
    assert_int_equal (demo->data_rollback, AL_SERVICE_DATA_ROLLBACK_RESTORE);
    assert_string_equal (demo->metrics_path, "/stats");
    assert_int_equal (demo->signals, AL_SERVICE_SIGNALS_PROBES);

    assert_string_equal (demo->command [0], "{{artifact}}");
    assert_string_equal (demo->command [1], "--version");
    assert_string_equal (demo->command [2], "{{version}}");
    assert_string_equal (demo->command [3], "");
    assert_null (demo->command [4]);
    assert_string_equal (demo->env [0], "LOG_LEVEL=info");
    assert_string_equal (demo->env [1], "INSTANCE_NAME={{service}}-{{instance}}");
    assert_null (demo->env [2]);
    assert_string_equal (demo->host, "127.0.0.1");
    assert_string_equal (demo->liveness_path, "/live");
    assert_string_equal (demo->readiness_path, "/ready");
    assert_int_equal (demo->start_timeout_ms, 15000);
    assert_int_equal (demo->stop_timeout_ms, 3000);
    assert_int_equal (demo->probe_timeout_ms, 500);
    assert_int_equal (demo->secret_count, 2);
    assert_string_equal (demo->secrets [0].name, "db_password");
    snprintf (expected, sizeof expected, "%s/secrets/db_password", fx->fixtures);
    assert_string_equal (demo->secrets [0].file, expected);
    assert_null (demo->secrets [0].env);
    assert_string_equal (demo->secrets [0].as, "DB_PASSWORD");
    assert_string_equal (demo->secrets [1].name, "api_token");
    assert_string_equal (demo->secrets [1].env, "AIRLOCK_TEST_SERVICES_TOKEN");
    assert_null (demo->secrets [1].file);
    assert_null (demo->secrets [1].as);
    //  The exec driver's keys are left empty for a process service.
    assert_null (demo->steps);
    assert_int_equal (demo->step_count, 0);
    assert_null (demo->endpoint);
    assert_int_equal (demo->step_timeout_ms, 0);
    assert_int_equal (demo->max_output, 0);

    const al_service_t *shop = al_services_find (services, "shop");
    assert_ptr_equal (shop, al_services_at (services, 1));
    assert_string_equal (shop->driver, "exec");
    assert_int_equal (shop->line, 32);
    for (int env = S_DEVELOPMENT; env <= S_PRODUCTION; env++) {
        assert_int_equal (al_service_instances (shop, (Airlock__Environment) env), 4);
        assert_int_equal (al_service_strategy (shop, (Airlock__Environment) env),
                          AIRLOCK__STRATEGY__STRATEGY_BLUE_GREEN);
        assert_null (al_service_database (shop, (Airlock__Environment) env));
    }
    assert_string_equal (shop->endpoint, "http://127.0.0.1:{{port}}");
    assert_int_equal (shop->step_timeout_ms, 60000);
    assert_int_equal (shop->max_output, 4096);
    assert_string_equal (shop->liveness_path, "/healthz");
    assert_int_equal (shop->stop_timeout_ms, 2500);
    assert_int_equal (shop->step_count, 3);
    assert_string_equal (shop->steps [0].name, "start");
    assert_string_equal (shop->steps [0].argv [0], "/bin/echo");
    assert_string_equal (shop->steps [0].argv [3], "{{set}}");
    assert_null (shop->steps [0].argv [4]);
    assert_int_equal (shop->steps [0].timeout_ms, 90000);
    assert_string_equal (shop->steps [1].name, "stop");
    assert_string_equal (shop->steps [1].argv [2], "{{id}}");
    assert_int_equal (shop->steps [1].timeout_ms, 0);
    assert_string_equal (shop->steps [2].name, "backup");
    assert_null (shop->command);
    assert_null (shop->env);
    assert_int_equal (shop->start_timeout_ms, 0);
    assert_int_equal (shop->secret_count, 1);
    assert_string_equal (shop->secrets [0].name, "registry.token");
    assert_string_equal (shop->secrets [0].as, "REGISTRY_TOKEN");
    al_services_destroy (&services);
    assert_null (services);
    al_services_destroy (&services);
}

static void
test_defaults (void **state)
{
    s_fixture_t *fx = *state;
    al_services_t *services = s_load_fixture (fx, "minimal.yaml");
    assert_int_equal (al_services_count (services), 2);
    for (size_t i = 0; i < 2; i++) {
        const al_service_t *svc = al_services_at (services, i);
        for (int env = S_DEVELOPMENT; env <= S_PRODUCTION; env++) {
            assert_int_equal (al_service_instances (svc, (Airlock__Environment) env), 1);
            assert_int_equal (al_service_strategy (svc, (Airlock__Environment) env),
                              AIRLOCK__STRATEGY__STRATEGY_ROLLING);
            assert_null (al_service_database (svc, (Airlock__Environment) env));
        }
        assert_int_equal (svc->batch_size, 1);
        assert_int_equal (svc->max_unavailable, 0);
        assert_int_equal (svc->max_surge, 1);
        assert_int_equal (svc->canary_step_count, 4);
        assert_int_equal (svc->canary_steps [0], 5);
        assert_int_equal (svc->canary_steps [1], 25);
        assert_int_equal (svc->canary_steps [2], 50);
        assert_int_equal (svc->canary_steps [3], 100);
        assert_int_equal (svc->canary_step_soak_ms, 30000);
        assert_int_equal (svc->soak_ms, 300000);
        assert_int_equal (svc->probe_interval_ms, 1000);
        assert_int_equal (svc->ready_timeout_ms, 30000);
        assert_int_equal (svc->health_failures, 3);
        assert_true (svc->cost_per_instance_usd_month == 0);
        assert_null (svc->migrations);
        assert_int_equal (svc->data_rollback, AL_SERVICE_DATA_ROLLBACK_DOWN);
        assert_string_equal (svc->metrics_path, "/metrics");
        //  The monitor scrapes what the process driver registers; exec services default
        //  to the probes (signals: monitor on an exec service is refused, test_error_classes).
        assert_int_equal (svc->signals, strcmp (svc->driver, "exec") == 0 ? AL_SERVICE_SIGNALS_PROBES
                                                                         : AL_SERVICE_SIGNALS_MONITOR);
        assert_string_equal (svc->host, AL_DRIVER_DEFAULT_HOST);
        assert_string_equal (svc->liveness_path, "/healthz");
        assert_string_equal (svc->readiness_path, "/readyz");
        assert_int_equal (svc->stop_timeout_ms, AL_DRIVER_DEFAULT_STOP_TIMEOUT_MS);
        assert_int_equal (svc->probe_timeout_ms, AL_PROBE_DEFAULT_TIMEOUT_MS);
        assert_int_equal (svc->secret_count, 0);
    }
    const al_service_t *mini = al_services_find (services, "mini");
    assert_int_equal (mini->start_timeout_ms, AL_DRIVER_DEFAULT_START_TIMEOUT_MS);
    assert_null (mini->env);
    assert_null (mini->command [1]);
    const al_service_t *exec = al_services_find (services, "mini-exec");
    assert_int_equal (exec->step_timeout_ms, AL_DRIVER_DEFAULT_STEP_TIMEOUT_MS);
    assert_int_equal (exec->max_output, AL_DRIVER_DEFAULT_MAX_OUTPUT);
    assert_null (exec->endpoint);
    assert_int_equal (exec->step_count, 2);
    al_services_destroy (&services);

    //  No services at all is a valid (empty) set.
    s_write (fx, "version: 1\nservices: {}\n");
    services = al_services_load (fx->path, fx->error, sizeof fx->error);
    assert_non_null (services);
    assert_int_equal (al_services_count (services), 0);
    assert_null (al_services_find (services, "demo"));
    al_services_destroy (&services);
}

#define S_HEAD "version: 1\nservices:\n  demo:\n    driver: process\n    command: [x]\n"
#define S_EXEC_HEAD "version: 1\nservices:\n  demo:\n    driver: exec\n"

//  Each class of error, alone in its file, with its position and field path.
static void
test_error_classes (void **state)
{
    s_fixture_t *fx = *state;
    struct { const char *text; const char *expected; } cases [] = {
        //  unknown and duplicate keys
        { S_HEAD "    comand: [x]\n", ":6:5: services.demo: unknown key 'comand'" },
        { S_HEAD "    driver: exec\n", ":6:5: services.demo: duplicate key 'driver' (first at line 4)" },
        { S_HEAD "    rolling: { batch: 1 }\n", ":6:16: services.demo.rolling: unknown key 'batch'" },
        { "version: 1\nservices: {}\nextra: 1\n", ":3:1: unknown key 'extra'" },
        { "version: 1\nservices:\n  demo:\n    driver: process\n    command: [x]\n  demo:\n"
          "    driver: process\n    command: [y]\n",
          ":6:3: services: duplicate key 'demo' (first at line 3)" },
        //  wrong types
        { S_HEAD "    soak_ms: soon\n", ":6:14: services.demo.soak_ms: expected an integer, found a string" },
        { S_HEAD "    soak_ms: \"100\"\n", ":6:14: services.demo.soak_ms: expected an integer" },
        { S_HEAD "    rolling: 3\n", ":6:14: services.demo.rolling: expected a mapping, found a scalar" },
        { S_HEAD "    env: LOG=1\n", ":6:10: services.demo.env: expected a list, found a scalar" },
        { S_HEAD "    secrets:\n", ":6:13: services.demo.secrets: expected a list, found nothing" },
        { S_HEAD "    metrics_path: [a]\n", ":6:19: services.demo.metrics_path: expected a string, found a list" },
        { S_HEAD "    signals: scraper\n", ":6:14: services.demo.signals: unknown source 'scraper' (monitor, probes, prometheus;" },
        //  soak: shortening the production soak needs a duration (never 0) and a reason
        { S_HEAD "    soak: { duration_ms: 600000 }\n", ":6:11: services.demo.soak: missing key 'reason'" },
        { S_HEAD "    soak: { duration_ms: 0, reason: \"warm cache\" }\n", ":6:26: services.demo.soak.duration_ms: 0 is out of range" },
        { S_HEAD "    soak: { duration_ms: 600000, reason: \"  \" }\n", ":6:42: services.demo.soak.reason: say why the soak may be shorter" },
        { S_HEAD "    instances: [1]\n", ":6:16: services.demo.instances: expected a value or a mapping" },
        { S_HEAD "    cost_per_instance_usd_month: cheap\n",
          ":6:34: services.demo.cost_per_instance_usd_month: expected a number" },
        //  ranges
        { S_HEAD "    instances: 1001\n", ":6:16: services.demo.instances: 1001 is out of range 1..1000" },
        { S_HEAD "    instances: { production: 0 }\n",
          ":6:30: services.demo.instances.production: 0 is out of range 1..1000" },
        { S_HEAD "    probe_interval_ms: 10\n", ":6:24: services.demo.probe_interval_ms: 10 is out of range 50..600000" },
        { S_HEAD "    cost_per_instance_usd_month: -1\n",
          ":6:34: services.demo.cost_per_instance_usd_month: -1 is out of range 0..1000000000" },
        { S_HEAD "    health_failures: 99999999999999999999\n",
          ":6:22: services.demo.health_failures: expected an integer" },
        { S_HEAD "    rolling: { max_surge: 0 }\n",
          ":6:14: services.demo.rolling: max_unavailable + max_surge must be at least 1" },
        //  canary steps
        { S_HEAD "    canary: { steps: [5, 50] }\n", ":6:22: services.demo.canary.steps: must end with 100" },
        { S_HEAD "    canary: { steps: [50, 50, 100] }\n",
          ":6:27: services.demo.canary.steps[1]: 50 is not above the step before (50)" },
        { S_HEAD "    canary: { steps: [0, 100] }\n", ":6:23: services.demo.canary.steps[0]: 0 is out of range 1..100" },
        { S_HEAD "    canary: { steps: [] }\n", ":6:22: services.demo.canary.steps: must not be empty" },
        //  names
        { S_HEAD "    instances: { prod: 2 }\n",
          ":6:18: services.demo.instances: unknown environment 'prod' (development, staging, production)" },
        { S_HEAD "    database: { bus: x.db }\n", ":6:17: services.demo.database: unknown environment 'bus'" },
        { S_HEAD "    database: x.db\n", ":6:15: services.demo.database: expected a mapping, found a scalar" },
        { S_HEAD "    strategy: { staging: linear }\n",
          ":6:26: services.demo.strategy.staging: unknown strategy 'linear' (rolling, canary, blue-green)" },
        { S_HEAD "    data_rollback: forward\n", ":6:20: services.demo.data_rollback: unknown mode 'forward'" },
        { S_HEAD "    host: localhost\n", ":6:11: services.demo.host: 'localhost' is not an IPv4 address" },
        { S_HEAD "    liveness_path: healthz\n", ":6:20: services.demo.liveness_path: \"healthz\" is not an HTTP path" },
        { S_HEAD "    env: [LOG_LEVEL]\n", ":6:11: services.demo.env[0]: expected NAME=value" },
        { "version: 1\nservices:\n  Demo:\n    driver: process\n    command: [x]\n",
          ":3:3: services.Demo: not a service name: 1 to 32 of [a-z0-9-]" },
        { "version: 1\nservices:\n  \"a\\nb\": { driver: process, command: [x] }\n",
          ":3:3: services.a?b: not a service name" },
        { "version: 1\nservices:\n  demo:\n    driver: docker\n",
          ":4:13: services.demo.driver: unknown driver 'docker' (process, exec)" },
        { "version: 1\nservices:\n  demo:\n    command: [x]\n",
          ":4:5: services.demo: missing key 'driver' (process or exec)" },
        //  what each driver needs, and the other driver's keys
        { "version: 1\nservices:\n  demo:\n    driver: process\n",
          ":4:5: services.demo: a process service needs 'command'" },
        { S_HEAD "    command: []\n", ":6:5: services.demo: duplicate key 'command'" },
        { "version: 1\nservices:\n  demo:\n    driver: process\n    command: []\n",
          ":5:14: services.demo.command: must not be empty (argv[0] is the program)" },
        { "version: 1\nservices:\n  demo:\n    driver: process\n    command: [\"\", a]\n",
          ":5:15: services.demo.command[0]: must not be empty" },
        { S_EXEC_HEAD, ":4:5: services.demo: an exec service needs 'steps' with 'start' and 'stop'" },
        { S_EXEC_HEAD "    signals: monitor\n    steps:\n      start: { argv: [x] }\n      stop: { argv: [y] }\n",
          ":5:14: services.demo: signals: monitor needs the process driver" },
        { S_EXEC_HEAD "    steps:\n      start: { argv: [x] }\n",
          ":6:7: services.demo.steps: step 'stop' is required" },
        { S_EXEC_HEAD "    steps:\n      start: { argv: [x] }\n      stop: { timeout_ms: 5000 }\n",
          ":7:13: services.demo.steps.stop: missing key 'argv'" },
        { S_EXEC_HEAD "    steps:\n      start: { argv: [x], timeout_ms: 5 }\n      stop: { argv: [y] }\n",
          ":6:39: services.demo.steps.start.timeout_ms: 5 is out of range 100..86400000" },
        { S_EXEC_HEAD "    steps:\n      start: { argv: [x] }\n      stop: { argv: [y] }\n      -x: { argv: [z] }\n",
          ":8:7: services.demo.steps: step name '-x' is not 1 to 32" },
        { S_HEAD "    steps: { start: { argv: [x] }, stop: { argv: [y] } }\n",
          ":6:5: services.demo.steps: a key of the exec driver; this service uses the process driver" },
        { S_HEAD "    max_output: 4096\n",
          ":6:5: services.demo.max_output: a key of the exec driver; this service uses the process driver" },
        { S_EXEC_HEAD "    steps: { start: { argv: [x] }, stop: { argv: [y] } }\n    command: [x]\n",
          ":6:5: services.demo.command: a key of the process driver; this service uses the exec driver" },
        //  secrets
        { S_HEAD "    secrets: [ { name: a_b, env: X, file: /y } ]\n",
          ":6:16: services.demo.secrets[0]: give exactly one of env and file" },
        { S_HEAD "    secrets: [ { env: X } ]\n", ":6:16: services.demo.secrets[0]: missing key 'name'" },
        { S_HEAD "    secrets: [ { name: a.b, env: X } ]\n",
          ":6:16: services.demo.secrets[0]: name 'a.b' is not an environment variable name: give 'as'" },
        { S_HEAD "    secrets: [ { name: tok, env: 1X } ]\n",
          ":6:34: services.demo.secrets[0].env: '1X' is not an environment variable name" },
        { S_HEAD "    secrets: [ { name: tok, env: X }, { name: tok, env: Y } ]\n",
          ":6:39: services.demo.secrets[1]: secret 'tok' is given twice" },
        { S_HEAD "    secrets: [ { name: a, env: X, as: V }, { name: b, env: Y, as: V } ]\n",
          ":6:44: services.demo.secrets[1]: variable V is also set by secret 'a'" },
        //  the file as a whole
        { "version: 2\nservices: {}\n", ":1:10: version: unsupported version 2 (this airlock reads 1)" },
        { "version: 1\n", ":1:1: missing key 'services'" },
        { "services: {}\n", ":1:1: missing key 'version'" },
        { "- a\n", ":1:1: expected a mapping, found a list" },
        { "", ": empty file: version and services are required" },
        { "version: 1\nservices: [\n", ":3:1: did not find expected node content" },
        { "version: 1\nservices: {}\n---\nversion: 1\n", ":4:1: a second YAML document" },
        { "version: 1\nservices:\n  a: &x\n    driver: process\n    command: [x]\n  b: *x\n",
          ":6:6: an alias (*x): aliases are not allowed; write the value out" },
        //  No alias at all, not even of a scalar (base/al_yaml.h: one rule for every file).
        { S_HEAD "    soak_ms: &n 5\n    ready_timeout_ms: *n\n",
          ":7:23: an alias (*n): aliases are not allowed; write the value out" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++)
        s_expect_error (fx, cases [i].text, cases [i].expected);

    //  A file above 4 MiB is refused before it is parsed; one at the limit is parsed.
    for (int extra = 0; extra < 2; extra++) {
        FILE *file = fopen (fx->path, "w");
        assert_non_null (file);
        fputs ("version: 1\nservices: {}\n", file);
        size_t written = strlen ("version: 1\nservices: {}\n");
        for (; written < 4u * 1024 * 1024 + (size_t) extra; written++)
            fputc (written % 64 == 63 ? '\n' : '#', file);
        fclose (file);
        al_services_t *services = al_services_load (fx->path, fx->error, sizeof fx->error);
        if (extra) {
            assert_null (services);
            char expected [400];
            snprintf (expected, sizeof expected, "%s: larger than 4194304 bytes", fx->path);
            assert_string_equal (fx->error, expected);
        }
        else {
            if (!services)
                fail_msg ("%s", fx->error);
            al_services_destroy (&services);
        }
    }

    //  A file that cannot be read.
    char error [512] = "";
    assert_null (al_services_load ("/nonexistent/services.yaml", error, sizeof error));
    assert_string_equal (error, "/nonexistent/services.yaml: cannot open: No such file or directory");
}

//  One load reports every error of a file, in file order.
static void
test_errors_collected (void **state)
{
    s_fixture_t *fx = *state;
    char path [4200];
    snprintf (path, sizeof path, "%s/many_errors.yaml", fx->fixtures);
    assert_null (al_services_load (path, fx->error, sizeof fx->error));
    const char *expected [] = {
        ":6:18: services.api.instances: unknown environment 'prod'",
        ":7:22: services.api.canary.steps: must end with 100",
        ":8:5: services.api: unknown key 'comand'",
        ":5:5: services.api: a process service needs 'command'",
        ":11:5: services.worker.command: a key of the process driver",
        ":12:14: services.worker.soak_ms: -5 is out of range",
        ":14:22: services.worker.steps.start.argv: must not be empty",
        ":14:7: services.worker.steps: step 'stop' is required",
    };
    size_t count = sizeof expected / sizeof expected [0];
    if (s_line_count (fx->error) != count)
        fail_msg ("expected %zu errors, got:\n%s", count, fx->error);
    const char *line = fx->error;
    for (size_t i = 0; i < count; i++) {
        char prefix [4400];
        snprintf (prefix, sizeof prefix, "%s%s", path, expected [i]);
        if (strncmp (line, prefix, strlen (prefix)) != 0)
            fail_msg ("error %zu: expected '%s', got:\n%s", i, prefix, fx->error);
        line = strchr (line, '\n');
        line = line ? line + 1 : "";
    }

    //  A buffer too small for all of them keeps whole lines and counts the rest.
    char small [300];
    assert_null (al_services_load (path, small, sizeof small));
    assert_true (strlen (small) < sizeof small);
    const char *last = strrchr (small, '\n');
    assert_non_null (last);
    size_t kept = s_line_count (small) - 1;
    char tail [64];
    snprintf (tail, sizeof tail, "\n(%zu more errors)", count - kept);
    assert_string_equal (last, tail);
    assert_true (kept >= 1);
    assert_int_equal (strncmp (small, fx->error, (size_t) (last - small)), 0);

    //  Hostile input cannot make the list grow without bound.
    FILE *file = fopen (fx->path, "w");
    assert_non_null (file);
    fprintf (file, "version: 1\nservices:\n");
    for (int i = 0; i < 300; i++)
        fprintf (file, "  s%d: { driver: process }\n", i);
    fclose (file);
    assert_null (al_services_load (fx->path, fx->error, sizeof fx->error));
    assert_non_null (strstr (fx->error, "\n(200 more errors)"));
    assert_int_equal (s_line_count (fx->error), 101);

    //  Nor make the duplicate checks slow: a mapping or list holds at most 1000 entries.
    file = fopen (fx->path, "w");
    assert_non_null (file);
    fprintf (file, "version: 1\nservices:\n");
    for (int i = 0; i < 1001; i++)
        fprintf (file, "  s%d: { driver: process, command: [x] }\n", i);
    fclose (file);
    assert_null (al_services_load (fx->path, fx->error, sizeof fx->error));
    char too_many [400];
    snprintf (too_many, sizeof too_many, "%s:3:3: services: more than 1000 keys", fx->path);
    assert_string_equal (fx->error, too_many);
}

//  The qa key: every field read back, the defaults, and each class of error.
static void
test_qa (void **state)
{
    s_fixture_t *fx = *state;
    al_services_t *services = s_load_fixture (fx, "full.yaml");
    const al_service_t *shop = al_services_find (services, "shop");
    assert_int_equal (shop->qa_timeout_ms, 1500);
    assert_int_equal (shop->qa_smoke_count, 3);
    assert_string_equal (shop->qa_smoke [0].name, "health");
    assert_string_equal (shop->qa_smoke [0].path, "/healthz");
    assert_int_equal (shop->qa_smoke [0].status, 200);
    assert_string_equal (shop->qa_smoke [0].body_contains, "\"status\":\"ok\"");
    assert_string_equal (shop->qa_smoke [1].name, "work_10");
    assert_string_equal (shop->qa_smoke [1].path, "/work?n=10&x=y");
    assert_int_equal (shop->qa_smoke [1].status, 503);
    assert_null (shop->qa_smoke [1].body_contains);
    //  status defaults to 200.
    assert_string_equal (shop->qa_smoke [2].path, "/");
    assert_int_equal (shop->qa_smoke [2].status, AL_SERVICE_DEFAULT_QA_STATUS);
    assert_int_equal (shop->qa_suite_count, 2);
    assert_string_equal (shop->qa_suites [0].name, "unit");
    assert_string_equal (shop->qa_suites [0].argv [0], "sh");
    assert_string_equal (shop->qa_suites [0].argv [2], "exit 0");
    assert_null (shop->qa_suites [0].argv [3]);
    char expected [4300];
    snprintf (expected, sizeof expected, "%s/reports/unit.xml", fx->fixtures);
    assert_string_equal (shop->qa_suites [0].junit, expected);
    assert_int_equal (shop->qa_suites [0].timeout_ms, 60000);
    assert_string_equal (shop->qa_suites [1].name, "e2e-smoke");
    assert_string_equal (shop->qa_suites [1].argv [0], "./e2e.sh");
    assert_null (shop->qa_suites [1].junit);
    assert_int_equal (shop->qa_suites [1].timeout_ms, AL_SERVICE_DEFAULT_QA_SUITE_TIMEOUT_MS);

    //  Without qa: one liveness check on the service's own liveness path, any 2xx; no suites.
    const al_service_t *demo = al_services_find (services, "demo");
    assert_int_equal (demo->qa_smoke_count, 1);
    assert_string_equal (demo->qa_smoke [0].name, "liveness");
    assert_string_equal (demo->qa_smoke [0].path, "/live");
    assert_int_equal (demo->qa_smoke [0].status, 0);
    assert_null (demo->qa_smoke [0].body_contains);
    assert_int_equal (demo->qa_suite_count, 0);
    assert_null (demo->qa_suites);
    assert_int_equal (demo->qa_timeout_ms, AL_SERVICE_DEFAULT_QA_TIMEOUT_MS);
    al_services_destroy (&services);

    //  The default follows liveness_path even when it comes after qa; qa with suites
    //  only keeps the default smoke check; an empty smoke list means none.
    s_write (fx, S_HEAD "    qa: { suites: [ { name: a, argv: [x] } ] }\n    liveness_path: /up\n"
                 "  other:\n    driver: process\n    command: [x]\n    qa: { smoke: [] }\n");
    services = al_services_load (fx->path, fx->error, sizeof fx->error);
    if (!services)
        fail_msg ("%s", fx->error);
    demo = al_services_find (services, "demo");
    assert_int_equal (demo->qa_smoke_count, 1);
    assert_string_equal (demo->qa_smoke [0].path, "/up");
    assert_int_equal (demo->qa_suite_count, 1);
    assert_string_equal (demo->qa_suites [0].argv [0], "x");
    const al_service_t *other = al_services_find (services, "other");
    assert_int_equal (other->qa_smoke_count, 0);
    assert_int_equal (other->qa_suite_count, 0);
    al_services_destroy (&services);

    struct { const char *text; const char *expected; } cases [] = {
        { S_HEAD "    qa: [1]\n", ":6:9: services.demo.qa: expected a mapping, found a list" },
        { S_HEAD "    qa: { smok: [] }\n", ":6:11: services.demo.qa: unknown key 'smok'" },
        { S_HEAD "    qa: { timeout_ms: 5 }\n", ":6:23: services.demo.qa.timeout_ms: 5 is out of range 10..600000" },
        { S_HEAD "    qa: { smoke: { name: a } }\n", ":6:18: services.demo.qa.smoke: expected a list, found a mapping" },
        { S_HEAD "    qa: { smoke: [ { name: a } ] }\n", ":6:20: services.demo.qa.smoke[0]: missing key 'path'" },
        { S_HEAD "    qa: { smoke: [ { path: /a } ] }\n", ":6:20: services.demo.qa.smoke[0]: missing key 'name'" },
        { S_HEAD "    qa: { smoke: [ { name: a, path: /a, code: 200 } ] }\n",
          ":6:41: services.demo.qa.smoke[0]: unknown key 'code'" },
        { S_HEAD "    qa: { smoke: [ { name: Health, path: /a } ] }\n",
          ":6:28: services.demo.qa.smoke[0].name: 'Health' is not 1 to 32 of [a-z0-9_-]" },
        { S_HEAD "    qa: { smoke: [ { name: abcdefghijabcdefghijabcdefghijabc, path: /a } ] }\n",
          ":6:28: services.demo.qa.smoke[0].name: 'abcdefghijabcdefghijabcdefghijabc' is not 1 to 32" },
        { S_HEAD "    qa: { smoke: [ { name: a, path: /a }, { name: a, path: /b } ] }\n",
          ":6:51: services.demo.qa.smoke[1].name: smoke check 'a' is given twice" },
        { S_HEAD "    qa: { smoke: [ { name: a, path: a } ] }\n",
          ":6:37: services.demo.qa.smoke[0].path: \"a\" is not an HTTP path" },
        { S_HEAD "    qa: { smoke: [ { name: a, path: \"/a b\" } ] }\n",
          ":6:37: services.demo.qa.smoke[0].path: \"/a b\" is not an HTTP path" },
        { S_HEAD "    qa: { smoke: [ { name: a, path: /a, status: 99 } ] }\n",
          ":6:49: services.demo.qa.smoke[0].status: 99 is out of range 100..599" },
        { S_HEAD "    qa: { smoke: [ { name: a, path: /a, status: 600 } ] }\n",
          ":6:49: services.demo.qa.smoke[0].status: 600 is out of range 100..599" },
        { S_HEAD "    qa: { smoke: [ { name: a, path: /a, status: \"200\" } ] }\n",
          ":6:49: services.demo.qa.smoke[0].status: expected an integer, found a string" },
        { S_HEAD "    qa: { smoke: [ { name: a, path: /a, body_contains: \"\" } ] }\n",
          ":6:56: services.demo.qa.smoke[0].body_contains: must not be empty" },
        { S_HEAD "    qa: { smoke: [ { name: a, path: /a, body_contains: [ok] } ] }\n",
          ":6:56: services.demo.qa.smoke[0].body_contains: expected a string, found a list" },
        { S_HEAD "    qa: { suites: [ { name: a } ] }\n", ":6:21: services.demo.qa.suites[0]: missing key 'argv'" },
        { S_HEAD "    qa: { suites: [ { name: a, argv: [] } ] }\n",
          ":6:38: services.demo.qa.suites[0].argv: must not be empty (argv[0] is the program)" },
        { S_HEAD "    qa: { suites: [ { name: a, argv: x } ] }\n",
          ":6:38: services.demo.qa.suites[0].argv: expected a list, found a scalar" },
        { S_HEAD "    qa: { suites: [ { name: a, argv: [\"\"] } ] }\n",
          ":6:39: services.demo.qa.suites[0].argv[0]: must not be empty" },
        { S_HEAD "    qa: { suites: [ { name: a, argv: [x], timeout_ms: 99 } ] }\n",
          ":6:55: services.demo.qa.suites[0].timeout_ms: 99 is out of range 100..86400000" },
        { S_HEAD "    qa: { suites: [ { name: a, argv: [x], cwd: /tmp } ] }\n",
          ":6:43: services.demo.qa.suites[0]: unknown key 'cwd'" },
        { S_HEAD "    qa: { suites: [ { name: a, argv: [x] }, { name: a, argv: [y] } ] }\n",
          ":6:53: services.demo.qa.suites[1].name: suite 'a' is given twice" },
        { S_HEAD "    qa: { suites: [ { name: \"a b\", argv: [x] } ] }\n",
          ":6:29: services.demo.qa.suites[0].name: 'a b' is not 1 to 32 of [a-z0-9_-]" },
        { S_HEAD "    qa: { suites: [ { name: a, argv: [x], junit: \"\" } ] }\n",
          ":6:50: services.demo.qa.suites[0].junit: must not be empty" },
        { S_HEAD "    qa:\n      suites:\n        - { name: a, argv: [x], junit: /tmp/r.xml }\n"
                 "        - { name: b, argv: [y], junit: /tmp/r.xml }\n",
          ":9:40: services.demo.qa.suites[1].junit: /tmp/r.xml is also the report of suite 'a'" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++)
        s_expect_error (fx, cases [i].text, cases [i].expected);
}

//  Every complete example of docs/drivers.md ("```yaml" blocks that start with
//  "version: 1") is a valid services.yaml.
static void
test_doc_examples (void **state)
{
    s_fixture_t *fx = *state;
    char path [4200];
    snprintf (path, sizeof path, "%s/docs/drivers.md", getenv ("AIRLOCK_SOURCE_DIR"));
    FILE *doc = fopen (path, "r");
    assert_non_null (doc);
    char line [1024];
    FILE *example = NULL;
    size_t examples = 0;
    enum { OUTSIDE, FIRST_LINE, SKIPPED, EXAMPLE } where = OUTSIDE;
    while (fgets (line, sizeof line, doc)) {
        bool fence = strncmp (line, "```", 3) == 0;
        if (where == OUTSIDE) {
            if (strcmp (line, "```yaml\n") == 0)
                where = FIRST_LINE;
        }
        else
        if (where == FIRST_LINE || where == SKIPPED) {
            //  The first line of a block decides whether it is a whole file.
            if (fence)
                where = OUTSIDE;
            else
            if (where == FIRST_LINE && strcmp (line, "version: 1\n") == 0) {
                example = fopen (fx->path, "w");
                assert_non_null (example);
                fputs (line, example);
                where = EXAMPLE;
            }
            else
                where = SKIPPED;
        }
        else
        if (!fence)
            fputs (line, example);
        else {
            fclose (example);
            example = NULL;
            where = OUTSIDE;
            al_services_t *services = al_services_load (fx->path, fx->error, sizeof fx->error);
            if (!services)
                fail_msg ("example %zu of docs/drivers.md: %s", examples + 1, fx->error);
            assert_true (al_services_count (services) >= 1);
            al_services_destroy (&services);
            examples++;
        }
    }
    fclose (doc);
    assert_null (example);
    //  The reference example, process, exec, Cloud Run, ECS, Kubernetes, systemd.
    assert_true (examples >= 7);
}

#define S_ALL_QUERIES "        queries:\n          requests_per_second: a\n          error_ratio: b\n" \
    "          latency_p50_ms: c\n          latency_p99_ms: d\n          cpu_percent: e\n" \
    "          memory_percent: f\n"

//  resources: and signals: (short and long form): every key read back, the defaults of
//  the standard Prometheus names, and each class of error with its position.
static void
test_signals_keys (void **state)
{
    s_fixture_t *fx = *state;
    //  Defaults: the official client libraries' names, every signal required.
    s_write (fx, S_HEAD);
    al_services_t *services = al_services_load (fx->path, fx->error, sizeof fx->error);
    if (!services)
        fail_msg ("%s", fx->error);
    const al_service_t *svc = al_services_at (services, 0);
    assert_int_equal (svc->signals, AL_SERVICE_SIGNALS_MONITOR);
    assert_true (svc->cpu_limit_cores == 0);
    assert_true (svc->memory_limit_bytes == 0);
    const al_service_signal_map_t *map = &svc->signal_map;
    assert_string_equal (map->requests_metric, "http_requests_total");
    assert_null (map->status_label);
    assert_non_null (map->error_statuses);
    assert_string_equal (map->error_statuses [0], "5xx");
    assert_null (map->error_statuses [1]);
    assert_string_equal (map->latency_metric, "http_request_duration_seconds");
    assert_true (map->latency_to_ms == 1000.0);
    assert_int_equal (map->cpu_kind, AL_SERVICE_CPU_SECONDS);
    assert_string_equal (map->cpu_metric, "process_cpu_seconds_total");
    assert_int_equal (map->memory_kind, AL_SERVICE_MEMORY_BYTES);
    assert_string_equal (map->memory_metric, "process_resident_memory_bytes");
    assert_true (map->requests_required && map->latency_required && map->cpu_required
                 && map->memory_required);
    assert_null (svc->prometheus.url);
    assert_int_equal (svc->prometheus.timeout_ms, 2000);
    for (int i = 0; i < AL_SIGNAL_COUNT; i++)
        assert_null (svc->prometheus.queries [i]);
    assert_true (svc->canary_judge.enabled);
    assert_true (svc->canary_judge.alpha == 0.01);
    assert_int_equal (svc->canary_judge.min_samples, 8);
    assert_true (svc->canary_judge.min_latency_increase_percent == 20);
    assert_true (svc->canary_judge.min_error_increase_points == 1);
    al_services_destroy (&services);

    //  Short forms.
    s_write (fx, S_HEAD "    signals: probes\n    resources: { cpu_cores: 2, memory: 1073741824 }\n");
    services = al_services_load (fx->path, fx->error, sizeof fx->error);
    if (!services)
        fail_msg ("%s", fx->error);
    svc = al_services_at (services, 0);
    assert_int_equal (svc->signals, AL_SERVICE_SIGNALS_PROBES);
    assert_true (svc->cpu_limit_cores == 2);
    assert_true (svc->memory_limit_bytes == 1073741824u);
    al_services_destroy (&services);

    //  The long form, every key.
    s_write (fx, S_HEAD
        "    resources:\n"
        "      cpu_cores: 0.5\n"
        "      memory: 256Mi\n"
        "    signals:\n"
        "      source: prometheus\n"
        "      requests:\n"
        "        metric: app_requests_total\n"
        "        status_label: status\n"
        "        errors: [5xx, \"429\", 4xx]\n"
        "        required: true\n"
        "      latency:\n"
        "        metric: app_latency_ms\n"
        "        unit: milliseconds\n"
        "        required: false\n"
        "      cpu:\n"
        "        metric: app_cpu_percent\n"
        "        kind: percent\n"
        "      memory:\n"
        "        metric: app_memory_percent\n"
        "        kind: percent\n"
        "        required: true\n"
        "      prometheus:\n"
        "        url: http://127.0.0.1:9090\n"
        "        timeout: 1500ms\n"
        "        queries:\n"
        "          requests_per_second: 'sum(rate(app_requests_total{service=\"{{service}}\"}[1m]))'\n"
        "          error_ratio: 'x{env=\"{{environment}}\",v=\"{{version}}\",i=\"{{instance}}\"}'\n"
        "          cpu_percent: cpu\n"
        "          memory_percent: memory\n"
        "      compare_to_stable:\n"
        "        enabled: false\n"
        "        alpha: 0.05\n"
        "        min_samples: 12\n"
        "        min_latency_increase_percent: 30\n"
        "        min_error_increase_points: 2.5\n");
    services = al_services_load (fx->path, fx->error, sizeof fx->error);
    if (!services)
        fail_msg ("%s", fx->error);
    svc = al_services_at (services, 0);
    assert_int_equal (svc->signals, AL_SERVICE_SIGNALS_PROMETHEUS);
    assert_true (svc->cpu_limit_cores == 0.5);
    assert_true (svc->memory_limit_bytes == 256u * 1024 * 1024);
    map = &svc->signal_map;
    assert_string_equal (map->requests_metric, "app_requests_total");
    assert_string_equal (map->status_label, "status");
    assert_string_equal (map->error_statuses [0], "5xx");
    assert_string_equal (map->error_statuses [1], "429");
    assert_string_equal (map->error_statuses [2], "4xx");
    assert_null (map->error_statuses [3]);
    assert_true (map->requests_required);
    assert_string_equal (map->latency_metric, "app_latency_ms");
    assert_true (map->latency_to_ms == 1.0);
    assert_false (map->latency_required);
    assert_int_equal (map->cpu_kind, AL_SERVICE_CPU_PERCENT_GAUGE);
    assert_string_equal (map->cpu_metric, "app_cpu_percent");
    assert_true (map->cpu_required);
    assert_int_equal (map->memory_kind, AL_SERVICE_MEMORY_PERCENT_GAUGE);
    assert_string_equal (map->memory_metric, "app_memory_percent");
    assert_string_equal (svc->prometheus.url, "http://127.0.0.1:9090");
    assert_int_equal (svc->prometheus.timeout_ms, 1500);
    assert_string_equal (svc->prometheus.queries [AL_SIGNAL_REQUESTS_PER_SECOND],
                         "sum(rate(app_requests_total{service=\"{{service}}\"}[1m]))");
    assert_non_null (svc->prometheus.queries [AL_SIGNAL_ERROR_RATIO]);
    assert_null (svc->prometheus.queries [AL_SIGNAL_LATENCY_P50_MS]);
    assert_null (svc->prometheus.queries [AL_SIGNAL_LATENCY_P99_MS]);
    assert_string_equal (svc->prometheus.queries [AL_SIGNAL_CPU_PERCENT], "cpu");
    assert_string_equal (svc->prometheus.queries [AL_SIGNAL_MEMORY_PERCENT], "memory");
    assert_false (svc->canary_judge.enabled);
    assert_true (svc->canary_judge.alpha == 0.05);
    assert_int_equal (svc->canary_judge.min_samples, 12);
    assert_true (svc->canary_judge.min_latency_increase_percent == 30);
    assert_true (svc->canary_judge.min_error_increase_points == 2.5);
    al_services_destroy (&services);

    //  Sizes and the long form without source (monitor).
    s_write (fx, S_HEAD "    resources: { memory: 2G }\n    signals: { cpu: { required: false } }\n");
    services = al_services_load (fx->path, fx->error, sizeof fx->error);
    if (!services)
        fail_msg ("%s", fx->error);
    svc = al_services_at (services, 0);
    assert_true (svc->memory_limit_bytes == 2000000000u);
    assert_int_equal (svc->signals, AL_SERVICE_SIGNALS_MONITOR);
    assert_false (svc->signal_map.cpu_required);
    assert_string_equal (svc->signal_map.cpu_metric, "process_cpu_seconds_total");
    al_services_destroy (&services);

    struct { const char *text; const char *expected; } cases [] = {
        { S_HEAD "    resources: { cpu_cores: 0 }\n",
          ":6:29: services.demo.resources.cpu_cores: must be above 0" },
        { S_HEAD "    resources: { memory: 256Mb }\n",
          ":6:26: services.demo.resources.memory: expected a size in bytes" },
        { S_HEAD "    resources: { memory: 0 }\n",
          ":6:26: services.demo.resources.memory: 0 is out of range" },
        { S_HEAD "    resources: { disk: 1 }\n", ":6:18: services.demo.resources: unknown key 'disk'" },
        { S_HEAD "    signals: { source: magic }\n",
          ":6:24: services.demo.signals.source: unknown source 'magic' (monitor, probes, prometheus)" },
        { S_HEAD "    signals: { traffic: {} }\n", ":6:16: services.demo.signals: unknown key 'traffic'" },
        { S_HEAD "    signals: { requests: { metric: 'http requests' } }\n",
          ":6:36: services.demo.signals.requests.metric: 'http requests' is not a Prometheus metric name" },
        { S_HEAD "    signals: { requests: { status_label: 'a:b' } }\n",
          ":6:42: services.demo.signals.requests.status_label: 'a:b' is not a Prometheus label name" },
        { S_HEAD "    signals: { requests: { errors: [5xx, 600] } }\n",
          ":6:42: services.demo.signals.requests.errors[1]: '600' is neither a status class" },
        { S_HEAD "    signals: { requests: { errors: [] } }\n",
          ":6:36: services.demo.signals.requests.errors: expected 1 to 32 statuses" },
        { S_HEAD "    signals: { requests: { required: yes } }\n",
          ":6:38: services.demo.signals.requests.required: expected true or false" },
        { S_HEAD "    signals: { latency: { unit: minutes } }\n",
          ":6:33: services.demo.signals.latency.unit: unknown unit 'minutes' (seconds, milliseconds)" },
        { S_HEAD "    signals: { latency: { metric: x_bucket } }\n",
          ":6:35: services.demo.signals.latency.metric: 'x_bucket': give the histogram's name" },
        { S_HEAD "    signals: { cpu: { kind: percent } }\n",
          ":6:29: services.demo.signals.cpu.kind: kind: percent needs 'metric'" },
        { S_HEAD "    signals: { memory: { kind: gauge } }\n",
          ":6:32: services.demo.signals.memory.kind: unknown kind 'gauge' (bytes, percent)" },
        { S_HEAD "    signals: { prometheus: { url: 'http://p:9090' } }\n",
          ":6:28: services.demo.signals.prometheus: only with source: prometheus" },
        { S_HEAD "    signals: prometheus\n",
          ":6:14: services.demo.signals: source: prometheus needs prometheus.url" },
        { S_HEAD "    signals:\n      source: prometheus\n      prometheus:\n        url: ftp://p\n",
          ":9:14: services.demo.signals.prometheus.url: 'ftp://p' is not an http:// or https:// URL" },
        { S_HEAD "    signals:\n      source: prometheus\n      prometheus:\n        url: http://p:9090\n"
          "        timeout: 2\n" S_ALL_QUERIES,
          ":10:18: services.demo.signals.prometheus.timeout: expected a duration such as 500ms" },
        { S_HEAD "    signals:\n      source: prometheus\n      prometheus:\n        url: http://p:9090\n"
          "        queries: { requests_per_second: a, error_ratio: b, latency_p50_ms: c, "
          "latency_p99_ms: d, cpu_percent: e }\n",
          ":10:18: services.demo.signals.prometheus.queries: missing query 'memory_percent' (the "
          "memory signal is required" },
        { S_HEAD "    signals:\n      source: prometheus\n      prometheus:\n        url: http://p:9090\n"
          S_ALL_QUERIES "          rps: a\n",
          ":17:11: services.demo.signals.prometheus.queries: unknown key 'rps'" },
        { S_HEAD "    signals:\n      source: prometheus\n      memory: { required: false }\n"
          "      cpu: { required: false }\n      latency: { required: false }\n"
          "      prometheus:\n        url: http://p:9090\n"
          "        queries: { requests_per_second: 'a{x=\"{{svc}}\"}', error_ratio: b }\n",
          ":13:41: services.demo.signals.prometheus.queries.requests_per_second: '{{svc}}': a "
          "template is" },
        { S_HEAD "    signals:\n      compare_to_stable: { alpha: 0.5 }\n",
          ":7:35: services.demo.signals.compare_to_stable.alpha: must be above 0 and below 0.5" },
        { S_HEAD "    signals:\n      compare_to_stable: { min_samples: 2 }\n",
          ":7:41: services.demo.signals.compare_to_stable.min_samples: 2 is out of range 3..100000" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++)
        s_expect_error (fx, cases [i].text, cases [i].expected);

    //  A prometheus source without the optional signals' queries is fine.
    s_write (fx, S_HEAD "    signals:\n      source: prometheus\n      memory: { required: false }\n"
             "      cpu: { required: false }\n      latency: { required: false }\n"
             "      prometheus:\n        url: https://prom.example:9090\n"
             "        queries: { requests_per_second: a, error_ratio: b }\n");
    services = al_services_load (fx->path, fx->error, sizeof fx->error);
    if (!services)
        fail_msg ("%s", fx->error);
    al_services_destroy (&services);
}

//  The driver configuration of every fixture service opens with its real driver.
static void
test_driver_config_opens (void **state)
{
    s_fixture_t *fx = *state;
    assert_int_equal (setenv ("AIRLOCK_TEST_SERVICES_TOKEN", "token-for-the-fixture", 1), 0);
    const char *files [] = { "full.yaml", "minimal.yaml" };
    for (size_t f = 0; f < 2; f++) {
        al_services_t *services = s_load_fixture (fx, files [f]);
        for (size_t i = 0; i < al_services_count (services); i++) {
            const al_service_t *svc = al_services_at (services, i);
            char evidence [400];
            snprintf (evidence, sizeof evidence, "%s/evidence-%s", fx->dir, svc->name);
            al_driver_config_t config;
            memset (&config, 0xa5, sizeof config);
            al_service_driver_config (svc, evidence, &config);
            assert_ptr_equal (config.evidence_dir, evidence);
            assert_ptr_equal (config.command, svc->command);
            assert_ptr_equal (config.env, svc->env);
            assert_ptr_equal (config.host, svc->host);
            assert_ptr_equal (config.liveness_path, svc->liveness_path);
            assert_ptr_equal (config.readiness_path, svc->readiness_path);
            assert_int_equal (config.start_timeout_ms, svc->start_timeout_ms);
            assert_int_equal (config.stop_timeout_ms, svc->stop_timeout_ms);
            assert_int_equal (config.probe_timeout_ms, svc->probe_timeout_ms);
            assert_ptr_equal (config.steps, svc->steps);
            assert_int_equal (config.step_count, svc->step_count);
            assert_ptr_equal (config.endpoint, svc->endpoint);
            assert_int_equal (config.step_timeout_ms, svc->step_timeout_ms);
            assert_int_equal (config.max_output, svc->max_output);
            assert_ptr_equal (config.secrets, svc->secrets);
            assert_int_equal (config.secret_count, svc->secret_count);
            char error [1024] = "";
            al_driver_t *driver = al_driver_open (svc->driver, &config, error, sizeof error);
            if (!driver)
                fail_msg ("%s/%s: %s", files [f], svc->name, error);
            assert_string_equal (al_driver_name (driver), svc->driver);
            al_driver_destroy (&driver);
            assert_int_equal (access (evidence, F_OK), 0);
        }
        al_services_destroy (&services);
    }
    //  Without the secret's variable, open refuses: the references did reach the driver.
    assert_int_equal (unsetenv ("AIRLOCK_TEST_SERVICES_TOKEN"), 0);
    al_services_t *services = s_load_fixture (fx, "full.yaml");
    al_driver_config_t config;
    al_service_driver_config (al_services_find (services, "shop"), fx->dir, &config);
    char error [1024] = "";
    assert_null (al_driver_open ("exec", &config, error, sizeof error));
    assert_non_null (strstr (error, "AIRLOCK_TEST_SERVICES_TOKEN"));
    al_services_destroy (&services);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_full_file, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_defaults, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_error_classes, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_errors_collected, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_qa, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_signals_keys, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_doc_examples, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_driver_config_opens, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
