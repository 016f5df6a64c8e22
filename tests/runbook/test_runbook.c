/*  test_runbook.c: `airlock runbook`, through the real binary.

    Each test makes a state directory with `airlock init`, two approvers with keys from
    `airlock keygen` (alice, manager; bob, devops) and a services.yaml, then runs
    `airlock runbook` and asserts on what it printed: the service's own values (instances,
    strategy, soak, health paths, data rollback, QA checks), the policy's (the error-rate
    threshold, quorums, approvers, the deploy window), the commands with this
    configuration, and never a public key's bytes. Then it changes services.yaml and
    quality_rules.yaml and checks that the runbook follows; checks --out (atomic, same
    bytes as stdout, deterministic), --env, an unknown service and broken files.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <jansson.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "base/al_config.h"
#include "deploy/al_preflight.h"
#include "deploy/al_services.h"
#include "policies/al_policy.h"

typedef struct {
    char dir [256];
    char config [320];
    char airlock [512];
    char alice_hex [65];
    char bob_hex [65];
} s_fixture_t;

static char *
s_read (const char *path)
{
    FILE *file = fopen (path, "rb");
    if (!file)
        return NULL;
    fseek (file, 0, SEEK_END);
    long size = ftell (file);
    fseek (file, 0, SEEK_SET);
    char *text = malloc ((size_t) size + 1);
    assert_non_null (text);
    size_t got = fread (text, 1, (size_t) size, file);
    text [got] = 0;
    fclose (file);
    return text;
}

static void
s_write (const char *path, const char *text)
{
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fputs (text, file);
    assert_int_equal (fclose (file), 0);
}

//  Replace the one occurrence of old in the file at path with new.
static void
s_edit (const char *path, const char *old, const char *new)
{
    char *text = s_read (path);
    assert_non_null (text);
    char *at = strstr (text, old);
    if (!at || strstr (at + 1, old))
        fail_msg ("%s: '%s' is not there exactly once", path, old);
    size_t size = strlen (text) - strlen (old) + strlen (new) + 1;
    char *edited = malloc (size);
    assert_non_null (edited);
    snprintf (edited, size, "%.*s%s%s", (int) (at - text), text, new, at + strlen (old));
    s_write (path, edited);
    free (edited);
    free (text);
}

static int
s_remove_entry (const char *path, const struct stat *info, int flag, struct FTW *ftw)
{
    (void) info, (void) flag, (void) ftw;
    return remove (path);
}

//  Run `airlock ARGUMENTS` (no shell expansion in them beyond the quoting we write);
//  stdout to DIR/NAME.out, stderr to DIR/NAME.err. Returns the exit code.
static int
s_airlock (s_fixture_t *f, const char *name, const char *arguments)
{
    char command [8192];
    snprintf (command, sizeof command, "'%s' %s > '%s/%s.out' 2> '%s/%s.err'", f->airlock, arguments,
              f->dir, name, f->dir, name);
    int rc = system (command);
    return WIFEXITED (rc)? WEXITSTATUS (rc): -1;
}

static char *
s_output (s_fixture_t *f, const char *name, const char *stream)
{
    char path [512];
    snprintf (path, sizeof path, "%s/%s.%s", f->dir, name, stream);
    char *text = s_read (path);
    assert_non_null (text);
    return text;
}

//  The runbook of SERVICE with extra options; fails the test unless it exits 0.
static char *
s_runbook (s_fixture_t *f, const char *service, const char *options)
{
    char arguments [2048];
    snprintf (arguments, sizeof arguments, "runbook %s --config '%s' %s", service, f->config, options);
    int rc = s_airlock (f, "runbook", arguments);
    if (rc != 0) {
        char *error = s_output (f, "runbook", "err");
        fail_msg ("airlock %s exited %d: %s", arguments, rc, error);
    }
    return s_output (f, "runbook", "out");
}

static void
s_contains (const char *text, const char *needle)
{
    if (!strstr (text, needle))
        fail_msg ("the runbook lacks \"%s\":\n%s", needle, text);
}

static void
s_lacks (const char *text, const char *needle)
{
    if (strstr (text, needle))
        fail_msg ("the runbook should not contain \"%s\":\n%s", needle, text);
}

static void
s_keygen (s_fixture_t *f, const char *name, const char *role, char hex [65])
{
    char arguments [1024];
    snprintf (arguments, sizeof arguments, "keygen --name %s --role %s --out '%s/%s.key' --config '%s'", name, role,
              f->dir, name, f->config);
    assert_int_equal (s_airlock (f, "keygen", arguments), 0);
    char path [512];
    snprintf (path, sizeof path, "%s/%s.key.pub", f->dir, name);
    char *line = s_read (path);
    assert_non_null (line);
    assert_int_equal (sscanf (line, "airlock-ed25519 %64s", hex), 1);
    free (line);
}

static const char *s_services =
    "version: 1\n"
    "services:\n"
    "  demo:\n"
    "    driver: process\n"
    "    instances: { staging: 2, production: 3 }\n"
    "    strategy: rolling\n"
    "    soak_ms: 900000\n"
    "    probe_interval_ms: 100\n"
    "    liveness_path: /live-check\n"
    "    readiness_path: /ready-check\n"
    "    database: { staging: data/demo-staging.db, production: data/demo.db }\n"
    "    data_rollback: restore\n"
    "    command: [\"{{artifact}}\"]\n"
    "    qa:\n"
    "      smoke:\n"
    "        - { name: health, path: /live-check, status: 200, body_contains: ok }\n"
    "        - { name: work, path: \"/work?n=10\", status: 200 }\n"
    "  api:\n"
    "    driver: process\n"
    "    command: [\"{{artifact}}\"]\n";

static int
s_setup (void **state)
{
    s_fixture_t *f = calloc (1, sizeof *f);
    assert_non_null (f);
    char dir [] = "/tmp/al-runbook-XXXXXX";
    assert_non_null (mkdtemp (dir));
    //  The canonical path, as airlock prints it (no symlinked /tmp in the way).
    char *resolved = realpath (dir, NULL);
    assert_non_null (resolved);
    assert_true (strlen (resolved) < sizeof f->dir);
    memcpy (f->dir, resolved, strlen (resolved) + 1);
    free (resolved);
    snprintf (f->config, sizeof f->config, "%s/airlock.yaml", f->dir);
    snprintf (f->airlock, sizeof f->airlock, "%s/airlock", getenv ("AIRLOCK_BINARY_DIR"));
    char arguments [1024];
    snprintf (arguments, sizeof arguments, "init '%s'", f->dir);
    assert_int_equal (s_airlock (f, "init", arguments), 0);
    s_keygen (f, "alice", "manager", f->alice_hex);
    s_keygen (f, "bob", "devops", f->bob_hex);
    char path [512], text [1024];
    snprintf (path, sizeof path, "%s/policy/approvers.yaml", f->dir);
    snprintf (text, sizeof text,
              "approvers:\n"
              "  - name: alice\n    roles: [manager]\n    keys:\n      - {id: alice-2026, ed25519: \"%s\"}\n"
              "  - name: bob\n    roles: [devops]\n    keys:\n      - {id: bob-laptop, ed25519: \"%s\"}\n",
              f->alice_hex, f->bob_hex);
    s_write (path, text);
    snprintf (path, sizeof path, "%s/services.yaml", f->dir);
    s_write (path, s_services);
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    s_fixture_t *f = *state;
    nftw (f->dir, s_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free (f);
    return 0;
}

static void
test_runbook_shows_the_live_configuration (void **state)
{
    s_fixture_t *f = *state;
    char *text = s_runbook (f, "demo", "");
    char needle [1024];
    s_contains (text, "# Runbook: demo\n");
    //  Seed 002's sections.
    const char *sections [] = { "## Deployment", "## Operations (production)", "## Monitoring", "## Rollback",
                                "## QA checks", "## Troubleshooting", "## Escalation" };
    for (size_t i = 0; i < sizeof sections / sizeof sections [0]; i++)
        s_contains (text, sections [i]);
    //  services.yaml.
    s_contains (text, "| instances | 1 | 2 | 3 |");
    s_contains (text, "| strategy | rolling | rolling | rolling |");
    s_contains (text, "- **Driver**: `process`");
    s_contains (text, "liveness `GET /live-check`, readiness `GET /ready-check`");
    //  Production soaks for the policy's 60 min (soak_ms is the staging soak).
    s_contains (text, "watched for **1 h** (quality_rules.yaml");
    s_contains (text, "in staging for 15 min");
    s_contains (text, "`data_rollback: restore`");
    snprintf (needle, sizeof needle, "| database | none | `%s/data/demo-staging.db` | `%s/data/demo.db` |", f->dir, f->dir);
    s_contains (text, needle);
    s_contains (text, "| health | `GET /live-check` | status 200, body contains \"ok\" |");
    s_contains (text, "| work | `GET /work?n=10` | status 200 |");
    //  quality_rules.yaml: thresholds, soak checkpoints within 15 min.
    s_contains (text, "more than 5 points above the pre-deploy baseline");
    s_contains (text, "above 2 x the baseline p99 and above 25 ms");
    s_contains (text, "more than 3 consecutive failures on one instance");
    //  Each checkpoint with its own check, all four within the production soak.
    s_contains (text, "| 1 | 5 min | initial health: every instance of the new release answers liveness and readiness, none failing | yes |");
    s_contains (text, "| 2 | 15 min | error rate: `error_rate_increase` within its limit against the baseline | yes |");
    s_contains (text, "| 3 | 30 min | performance: `latency_p99_factor` within its limit against the baseline | yes |");
    s_contains (text, "| 4 | 1 h | all normal: every rule above holds | yes |");
    //  The policy: quorums with the approvers who can sign, approvers, windows.
    s_contains (text, "| standard | normal release, full process | 1 manager | manager: alice |");
    s_contains (text, "| rollback | revert to the previous version, immediate | 1 devops | devops: bob |");
    s_contains (text, "| alice | manager | `alice-2026` (ed25519) | none |");
    s_contains (text, "| bob | devops | `bob-laptop` (ed25519) | none |");
    s_contains (text, "tuesday, wednesday, thursday 10:00-12:00");
    s_contains (text, "**Frozen weekdays**: friday.");
    //  Key material never appears, only key ids.
    s_lacks (text, f->alice_hex);
    s_lacks (text, f->bob_hex);
    //  Real commands with this configuration.
    snprintf (needle, sizeof needle, "airlock submit --config %s --service demo --version VERSION", f->config);
    s_contains (text, needle);
    snprintf (needle, sizeof needle, "airlock rollback RELEASE --config %s", f->config);
    s_contains (text, needle);
    snprintf (needle, sizeof needle, "airlock audit history --config %s --service demo", f->config);
    s_contains (text, needle);
    snprintf (needle, sizeof needle, "airlock watch --config %s --signals demo --env production", f->config);
    s_contains (text, needle);
    snprintf (needle, sizeof needle, "airlock approve RELEASE-prod --config %s --key YOUR.key", f->config);
    s_contains (text, needle);
    snprintf (needle, sizeof needle, "airlock approvals --config %s", f->config);
    s_contains (text, needle);
    snprintf (needle, sizeof needle, "airlock status --config %s", f->config);
    s_contains (text, needle);
    //  Rollback: who approves it; troubleshooting names this service's paths.
    s_contains (text, "approved by 1 devops (devops: bob)");
    s_contains (text, "it does not answer `GET /ready-check` with a 2xx");
    s_contains (text, "rule `missing_evidence`");
    //  Escalation by role, from approvers.yaml.
    s_contains (text, "| bob | devops | rollbacks");
    s_contains (text, "| alice | manager | releases");
    //  The default policy has no security approver here: the hotfix quorum cannot be met.
    s_contains (text, "no hotfix deployment of demo can be approved: it needs 1 security, approvers.yaml has 0");
    s_lacks (text, "no rollback deployment of demo can be approved");
    free (text);
}

static void
test_runbook_follows_changes (void **state)
{
    s_fixture_t *f = *state;
    char path [512];
    snprintf (path, sizeof path, "%s/policy/quality_rules.yaml", f->dir);
    s_edit (path, "error_rate_increase_more_than_points: 5\n", "error_rate_increase_more_than_points: 7.5\n");
    s_edit (path, "duration: 60m\n  checkpoints: [5m, 15m, 30m, 60m]", "duration: 10m\n  checkpoints: [5m, 10m]");
    snprintf (path, sizeof path, "%s/services.yaml", f->dir);
    s_edit (path, "instances: { staging: 2, production: 3 }", "instances: { staging: 2, production: 4 }");
    s_edit (path, "strategy: rolling\n", "strategy: { staging: blue-green, production: canary }\n");
    s_edit (path, "liveness_path: /live-check", "liveness_path: /alive");
    s_edit (path, "    soak_ms: 900000\n", "    soak_ms: 900000\n"
            "    soak: { duration_ms: 420000, reason: \"internal tool with little traffic\" }\n");
    //  bob leaves: nobody can approve a rollback any more.
    snprintf (path, sizeof path, "%s/policy/approvers.yaml", f->dir);
    char text_approvers [512];
    snprintf (text_approvers, sizeof text_approvers,
              "approvers:\n  - name: alice\n    roles: [manager]\n    keys:\n      - {id: alice-2026, ed25519: \"%s\"}\n",
              f->alice_hex);
    s_write (path, text_approvers);

    char *text = s_runbook (f, "demo", "");
    s_contains (text, "more than 7.5 points above the pre-deploy baseline");
    s_lacks (text, "more than 5 points above");
    s_contains (text, "| instances | 1 | 2 | 4 |");
    s_contains (text, "| strategy | rolling | blue-green | canary (**not allowed**) |");
    s_contains (text, "services.demo.strategy is canary in production, which constraints.yaml does not allow");
    s_contains (text, "liveness `GET /alive`");
    s_lacks (text, "/live-check`, readiness");
    //  The staging soak is capped by the policy's 10 minutes; production is shortened to
    //  7 min with its reason shown: the first checkpoint within it, the last check at its end.
    s_contains (text, "in staging for 10 min");
    s_contains (text, "services.demo.soak_ms 15 min is capped by quality_rules.yaml's soak duration 10 min");
    s_contains (text, "watched for **7 min** (SHORTENED by services.yaml `soak`");
    s_contains (text, "Why the production soak is shorter (services.yaml, `demo`): internal tool with little traffic.");
    s_contains (text, "services.demo.soak shortens the production soak to 7 min (reason: internal tool with little traffic)");
    s_contains (text, "| 1 | 5 min | initial health: every instance");
    s_contains (text, "| 2 | 10 min | all normal: every rule above holds | no: the all-normal check runs at the soak's end instead |");
    s_lacks (text, "| 3 |");
    s_contains (text, "approved by 1 devops (devops: nobody (no approver holds devops))");
    s_contains (text, "no rollback deployment of demo can be approved: it needs 1 devops, approvers.yaml has 0");
    s_lacks (text, "bob-laptop");
    s_lacks (text, "devops: bob");
    free (text);
}

static void
test_runbook_out_env_and_determinism (void **state)
{
    s_fixture_t *f = *state;
    char *first = s_runbook (f, "demo", "");
    char *second = s_runbook (f, "demo", "");
    assert_string_equal (first, second);

    char target [512], options [1024];
    snprintf (target, sizeof target, "%s/docs", f->dir);
    assert_int_equal (mkdir (target, 0755), 0);
    snprintf (target, sizeof target, "%s/docs/runbook.md", f->dir);
    snprintf (options, sizeof options, "--out '%s'", target);
    char *printed = s_runbook (f, "demo", options);
    char expected [600];
    snprintf (expected, sizeof expected, "%s\n", target);
    assert_string_equal (printed, expected);
    char *written = s_read (target);
    assert_non_null (written);
    assert_string_equal (written, first);
    free (written);
    free (printed);
    //  Written through a temporary file and a rename: nothing else is left beside it.
    char listing [1200];
    snprintf (listing, sizeof listing, "ls -A '%s/docs' > '%s/listing.out'", f->dir, f->dir);
    assert_int_equal (system (listing), 0);
    char *names = s_output (f, "listing", "out");
    assert_string_equal (names, "runbook.md\n");
    free (names);
    struct stat info;
    assert_int_equal (stat (target, &info), 0);
    assert_int_equal (info.st_mode & 0777, 0644);
    //  Into a directory that does not exist: exit 2, the target named, no file.
    char arguments [2048];
    snprintf (arguments, sizeof arguments, "runbook demo --config '%s' --out '%s/missing/runbook.md'", f->config, f->dir);
    assert_int_equal (s_airlock (f, "missing", arguments), 2);
    char *error = s_output (f, "missing", "err");
    s_contains (error, "/missing/runbook.md");
    free (error);

    //  --env staging: monitoring and operations follow it.
    char *staging = s_runbook (f, "demo", "--env staging");
    char needle [1024];
    snprintf (needle, sizeof needle, "airlock watch --config %s --signals demo --env staging", f->config);
    s_contains (staging, needle);
    s_contains (staging, "## Operations (staging)");
    snprintf (needle, sizeof needle, "%s/deploy/drivers/demo/staging/instances.json", f->dir);
    s_contains (staging, needle);
    free (staging);
    //  Another service of the same file has its own runbook.
    char *api = s_runbook (f, "api", "");
    s_contains (api, "# Runbook: api\n");
    s_contains (api, "| instances | 1 | 1 | 1 |");
    s_contains (api, "liveness `GET /healthz`");
    s_lacks (api, "/live-check");
    free (api);
    free (first);
    free (second);
}

//  --json carries the same runbook as the text output; --state DIR and $AIRLOCK_CONFIG
//  find the same configuration as --config (the lookup of every command).
static void
test_runbook_json_and_lookup (void **state)
{
    s_fixture_t *f = *state;
    char *text = s_runbook (f, "demo", "");
    char *json_text = s_runbook (f, "demo", "--json");
    json_error_t error;
    json_t *root = json_loads (json_text, 0, &error);
    if (!root)
        fail_msg ("not JSON (%s):\n%s", error.text, json_text);
    assert_string_equal (json_string_value (json_object_get (root, "service")), "demo");
    assert_string_equal (json_string_value (json_object_get (root, "environment")), "production");
    assert_true (json_is_array (json_object_get (root, "warnings")));
    assert_string_equal (json_string_value (json_object_get (root, "markdown")), text);
    json_decref (root);
    free (json_text);
    char arguments [2048];
    snprintf (arguments, sizeof arguments, "runbook demo --state '%s'", f->dir);
    assert_int_equal (s_airlock (f, "state", arguments), 0);
    char *by_state = s_output (f, "state", "out");
    assert_string_equal (by_state, text);
    free (by_state);
    char command [4096];
    snprintf (command, sizeof command, "cd / && AIRLOCK_CONFIG='%s' '%s' runbook demo > '%s/env.out' 2>&1",
              f->config, f->airlock, f->dir);
    int rc = system (command);
    assert_true (WIFEXITED (rc) && WEXITSTATUS (rc) == 0);
    char *by_environment = s_output (f, "env", "out");
    assert_string_equal (by_environment, text);
    free (by_environment);
    free (text);
}

//  The runbook warns about exactly what pre-flight refuses: each warning carries the
//  detail deploy/al_preflight gives for the same service, computed here from the same
//  files, refused or not: staging within its instances but over its budget, production
//  over both (the budget as al_cost projects it, which the former copy recomputed).
static void
test_runbook_warns_what_preflight_refuses (void **state)
{
    s_fixture_t *f = *state;
    char path [512];
    snprintf (path, sizeof path, "%s/services.yaml", f->dir);
    s_edit (path, "instances: { staging: 2, production: 3 }",
            "instances: { staging: 2, production: 60 }\n    cost_per_instance_usd_month: 2000");
    char *json_text = s_runbook (f, "demo", "--json");
    json_t *root = json_loads (json_text, 0, NULL);
    assert_non_null (root);
    json_t *warnings = json_object_get (root, "warnings");

    char error [4096];
    al_config_t *config = al_config_load (f->config, error, sizeof error);
    assert_non_null (config);
    al_policy_errors_t *errors = NULL;
    al_policy_t *policy = al_policy_load (al_config_policy_dir (config), &errors);
    assert_non_null (policy);
    al_services_t *services = al_services_load (path, error, sizeof error);
    if (!services)
        fail_msg ("%s", error);
    const al_service_t *svc = al_services_find (services, "demo");
    assert_non_null (svc);
    struct {
        Airlock__Environment env;
        const char *check;
        bool ok;
        char detail [AL_PREFLIGHT_DETAIL_SIZE];
    } expected [4] = {
        { AIRLOCK__ENVIRONMENT__ENV_STAGING, "max_instances", false, "" },
        { AIRLOCK__ENVIRONMENT__ENV_STAGING, "monthly_budget", false, "" },
        { AIRLOCK__ENVIRONMENT__ENV_PRODUCTION, "max_instances", false, "" },
        { AIRLOCK__ENVIRONMENT__ENV_PRODUCTION, "monthly_budget", false, "" },
    };
    for (size_t i = 0; i < 4; i++) {
        unsigned instances = al_service_instances (svc, expected [i].env);
        expected [i].ok = expected [i].check [1] == 'a'
            ? al_preflight_instances (policy, expected [i].env, instances, expected [i].detail, AL_PREFLIGHT_DETAIL_SIZE)
            : al_preflight_budget (policy, svc, expected [i].env, instances, expected [i].detail,
                                   AL_PREFLIGHT_DETAIL_SIZE);
    }
    //  What pre-flight decides here (the default policy: at most 50 instances, budgets
    //  500 in staging and 5000 in production).
    assert_true (expected [0].ok);
    assert_false (expected [1].ok);
    assert_false (expected [2].ok);
    assert_false (expected [3].ok);
    for (size_t i = 0; i < 4; i++) {
        char needle [AL_PREFLIGHT_DETAIL_SIZE + 64];
        snprintf (needle, sizeof needle, "(%s: %s)", expected [i].check, expected [i].detail);
        bool found = false;
        for (size_t w = 0; w < json_array_size (warnings); w++)
            found |= strstr (json_string_value (json_array_get (warnings, w)), needle) != NULL;
        if (found != !expected [i].ok)
            fail_msg ("%s in %s: pre-flight says %s (%s), the runbook's warnings %s it:\n%s", expected [i].check,
                      al_environment_name (expected [i].env), expected [i].ok? "ok": "refused", expected [i].detail,
                      found? "list": "do not list", json_text);
    }
    al_services_destroy (&services);
    al_policy_destroy (&policy);
    al_policy_errors_destroy (&errors);
    al_config_destroy (&config);
    json_decref (root);
    free (json_text);
}

//  keygen --role takes only a human role of the state's policy (the entry it prints must
//  load); its help lists the exit codes.
static void
test_keygen_roles (void **state)
{
    s_fixture_t *f = *state;
    char arguments [2048];
    snprintf (arguments, sizeof arguments, "keygen --name carol --role wizard --out '%s/carol.key' --state '%s'",
              f->dir, f->dir);
    assert_int_equal (s_airlock (f, "wizard", arguments), 2);
    char *error = s_output (f, "wizard", "err");
    if (!strstr (error, "--role wizard: no such role") || !strstr (error, "manager") || !strstr (error, "devops"))
        fail_msg ("keygen said:\n%s", error);
    free (error);
    //  A bus agent's role is not an approver's.
    snprintf (arguments, sizeof arguments, "keygen --name carol --role qa --out '%s/carol.key' --state '%s'",
              f->dir, f->dir);
    assert_int_equal (s_airlock (f, "qa", arguments), 2);
    error = s_output (f, "qa", "err");
    s_contains (error, "--role qa: not a human role");
    free (error);
    char path [512];
    struct stat info;
    snprintf (path, sizeof path, "%s/carol.key", f->dir);
    assert_int_not_equal (stat (path, &info), 0);
    //  A configuration named but unreadable: refused (fail closed), no key written.
    snprintf (arguments, sizeof arguments, "keygen --name carol --role security --out '%s/carol.key' "
              "--config /nonexistent/airlock.yaml", f->dir);
    assert_int_equal (s_airlock (f, "nopolicy", arguments), 2);
    assert_int_not_equal (stat (path, &info), 0);
    snprintf (arguments, sizeof arguments, "keygen --name carol --role security --out '%s/carol.key' --state '%s'",
              f->dir, f->dir);
    assert_int_equal (s_airlock (f, "security", arguments), 0);
    char *out = s_output (f, "security", "out");
    s_contains (out, "roles: [security]");
    free (out);
    assert_int_equal (stat (path, &info), 0);
    //  On an approver's machine (no state directory): the shipped default policy decides.
    char command [4096];
    snprintf (command, sizeof command, "mkdir -p '%s/laptop' && cd '%s/laptop' && env -u AIRLOCK_CONFIG "
              "-u AIRLOCK_POLICY_DIR '%s' keygen --name dan --role wizard > '%s/laptop.out' 2>&1", f->dir, f->dir,
              f->airlock, f->dir);
    int rc = system (command);
    assert_true (WIFEXITED (rc) && WEXITSTATUS (rc) == 2);
    error = s_output (f, "laptop", "out");
    s_contains (error, "--role wizard: no such role");
    free (error);
    snprintf (command, sizeof command, "cd '%s/laptop' && env -u AIRLOCK_CONFIG -u AIRLOCK_POLICY_DIR '%s' keygen "
              "--name dan --role devops > '%s/laptop.out' 2>&1", f->dir, f->airlock, f->dir);
    rc = system (command);
    assert_true (WIFEXITED (rc) && WEXITSTATUS (rc) == 0);
    snprintf (path, sizeof path, "%s/laptop/dan.key", f->dir);
    assert_int_equal (stat (path, &info), 0);
    assert_int_equal (s_airlock (f, "help", "keygen --help"), 0);
    out = s_output (f, "help", "out");
    s_contains (out, "exit codes: 0 key pair written, 2 usage error");
    free (out);
}

static void
test_runbook_errors (void **state)
{
    s_fixture_t *f = *state;
    char arguments [2048];
    //  Unknown service: exit 2, the configured ones listed.
    snprintf (arguments, sizeof arguments, "runbook nope --config '%s'", f->config);
    assert_int_equal (s_airlock (f, "unknown", arguments), 2);
    char *error = s_output (f, "unknown", "err");
    s_contains (error, "no service 'nope'");
    s_contains (error, "configured services: demo, api");
    free (error);
    char *out = s_output (f, "unknown", "out");
    assert_string_equal (out, "");
    free (out);
    //  Usage errors.
    snprintf (arguments, sizeof arguments, "runbook demo --config '%s' --env prod", f->config);
    assert_int_equal (s_airlock (f, "env", arguments), 2);
    snprintf (arguments, sizeof arguments, "runbook --config '%s'", f->config);
    assert_int_equal (s_airlock (f, "noservice", arguments), 2);
    assert_int_equal (s_airlock (f, "help", "runbook --help"), 0);
    out = s_output (f, "help", "out");
    s_contains (out, "usage: airlock runbook SERVICE");
    free (out);
    //  A missing configuration: exit 2, the file named.
    snprintf (arguments, sizeof arguments, "runbook demo --config '%s/none.yaml'", f->dir);
    assert_int_equal (s_airlock (f, "noconfig", arguments), 2);
    error = s_output (f, "noconfig", "err");
    s_contains (error, "none.yaml");
    free (error);

    //  A broken services.yaml: non-zero, the file, line and field named.
    char path [512];
    snprintf (path, sizeof path, "%s/services.yaml", f->dir);
    s_edit (path, "    soak_ms: 900000\n", "    soak_ms: 900000\n    comand: [x]\n");
    snprintf (arguments, sizeof arguments, "runbook demo --config '%s'", f->config);
    int rc = s_airlock (f, "broken", arguments);
    assert_int_equal (rc, 1);
    error = s_output (f, "broken", "err");
    char needle [1024];
    snprintf (needle, sizeof needle, "%s:8:5: services.demo: unknown key 'comand'", path);
    s_contains (error, needle);
    free (error);
    s_edit (path, "    comand: [x]\n", "");

    //  A broken policy file: non-zero, the policy file and line named.
    snprintf (path, sizeof path, "%s/policy/quality_rules.yaml", f->dir);
    s_edit (path, "  cpu_percent_more_than: 80\n", "  cpu_percent_more_than: lots\n");
    assert_int_equal (s_airlock (f, "policy", arguments), 1);
    error = s_output (f, "policy", "err");
    s_contains (error, "quality_rules.yaml:");
    s_contains (error, "cpu_percent_more_than");
    free (error);
    s_edit (path, "  cpu_percent_more_than: lots\n", "  cpu_percent_more_than: 80\n");
    //  Fixed again: it works again.
    char *text = s_runbook (f, "demo", "");
    s_contains (text, "above 80%");
    free (text);
}

//  Seed 002's cost plan: estimates, budgets, guardrails and opportunities from the live
//  configuration, through al_cost_project (the function pre-flight and the notifier use).
static void
test_costplan (void **state)
{
    s_fixture_t *f = *state;
    char path [512], arguments [2048];
    snprintf (path, sizeof path, "%s/services.yaml", f->dir);
    //  Without a cost per instance, every estimate is 0 and the plan says so.
    snprintf (arguments, sizeof arguments, "costplan demo --config '%s'", f->config);
    assert_int_equal (s_airlock (f, "costplan", arguments), 0);
    char *text = s_output (f, "costplan", "out");
    s_contains (text, "# Cost plan: demo");
    s_contains (text, "**services.yaml sets no `cost_per_instance_usd_month` for demo**");
    free (text);
    //  The one configuration lookup: --state DIR reads DIR/airlock.yaml, as every command.
    snprintf (arguments, sizeof arguments, "costplan demo --state '%s'", f->dir);
    assert_int_equal (s_airlock (f, "costplan", arguments), 0);
    text = s_output (f, "costplan", "out");
    s_contains (text, "# Cost plan: demo");
    free (text);

    //  1500 USD per instance: production 3 x 1500 = 4500 of 5000 (90%, past the 80% alert),
    //  staging 2 x 1500 = 3000 of 500 (over budget, as development: exit 1, the plan still written).
    s_edit (path, "    soak_ms: 900000\n", "    soak_ms: 900000\n    cost_per_instance_usd_month: 1500\n");
    snprintf (arguments, sizeof arguments, "costplan demo --config '%s' --out '%s/cost-plan.md'", f->config, f->dir);
    assert_int_equal (s_airlock (f, "costplan", arguments), 1);
    char *error = s_output (f, "costplan", "err");
    s_contains (error, "2 environment(s) over budget");
    free (error);
    snprintf (path, sizeof path, "%s/cost-plan.md", f->dir);
    text = s_read (path);
    assert_non_null (text);
    const char *sections [] = { "## Estimated Costs", "## Cost Tracking", "## Guardrails", "## Optimization Opportunities" };
    for (size_t i = 0; i < 4; i++)
        s_contains (text, sections [i]);
    s_contains (text, "| production | 3 | 4500.00 | 5000.00 | 90.0% **past the alert share** | 80% (4000.00 USD) | 50 instances: 75000.00 USD (over budget) |");
    s_contains (text, "| staging | 2 | 3000.00 | 500.00 | 600.0% **over budget** |");
    s_contains (text, "| development | 1 | 1500.00 | 100.00 |");
    s_contains (text, "All environments together: **9000.00 USD/month**");
    s_contains (text, "- Not tracked by airlock: the provider's actual bill; data transfer");
    s_contains (text, "production: 80%, 4000.00 USD");
    s_contains (text, "- staging runs 2 instances (3000.00 USD/month); one instance would save 1500.00 USD/month");
    s_lacks (text, "sets no `cost_per_instance_usd_month`");
    free (text);

    //  The alert share is the policy's: 95% in production puts 90% below it.
    snprintf (path, sizeof path, "%s/policy/constraints.yaml", f->dir);
    s_edit (path, "    monthly_budget_usd: 5000\n", "    monthly_budget_usd: 5000\n    budget_alert_percent: 95\n");
    snprintf (arguments, sizeof arguments, "costplan demo --config '%s'", f->config);
    assert_int_equal (s_airlock (f, "costplan", arguments), 1);
    text = s_output (f, "costplan", "out");
    s_contains (text, "| production | 3 | 4500.00 | 5000.00 | 90.0% | 95% (4750.00 USD) |");
    free (text);
    //  An unknown service: usage error.
    snprintf (arguments, sizeof arguments, "costplan nosuch --config '%s'", f->config);
    assert_int_equal (s_airlock (f, "costplan", arguments), 2);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_runbook_shows_the_live_configuration, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_runbook_follows_changes, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_runbook_out_env_and_determinism, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_runbook_errors, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_runbook_json_and_lookup, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_runbook_warns_what_preflight_refuses, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_keygen_roles, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_costplan, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
