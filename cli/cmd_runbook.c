/*  cmd_runbook.c: `airlock runbook SERVICE [--config FILE] [--out FILE] [--env ENV]`.

    Writes seed 002's runbook.md (deployment, operations, monitoring, rollback, QA,
    troubleshooting, escalation) for one service of services.yaml, from the live
    configuration only: airlock.yaml, the policy directory it names (through the policy
    engine, so only a policy that validates is described), services.yaml, the service's
    migration set and notifications.yaml. Every number, path, role and name in it is
    read from those files; nothing is a placeholder except what only exists at release
    time (VERSION, RELEASE, the artifact), which is written in capitals.

    The output depends on the configuration alone, never on the clock or on what runs
    now (no "generated at", no current release): the same files give the same runbook
    byte for byte, so it can be committed and diffed, and a stale copy is detected by
    regenerating it. What is wrong with the configuration (a strategy pre-flight would
    refuse, a quorum no approver can meet, a soak shorter than its checkpoints, ...) is
    listed under "Configuration warnings" at the top, not hidden in the body.

    Approver names, roles and key ids, the deploy windows and the freezes come from the
    policy's canonical JSON (al_policy_canonical_json), the validated form the digest
    covers; key material (ed25519 or ssh values) is never printed, only key ids.
*/
#include "cli/cli.h"
#include "agents/al_notifier.h"
#include "agents/al_notify_config.h"
#include "broker/al_config.h"
#include "deploy/al_migrate.h"
#include "deploy/al_deployer.h"
#include "deploy/al_services.h"
#include "policies/al_policy.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_WARNINGS_MAX 64

typedef struct {
    const al_config_t *config;
    const al_policy_t *policy;
    const al_services_t *services;
    const al_service_t *svc;
    json_t *policy_json;                    // the canonical policy, parsed
    al_notify_config_t *notify;             // NULL: no notifications.yaml (or invalid)
    char notify_path [1024];
    bool notify_present;
    al_migration_set_t *migrations;         // NULL: none configured, or it did not load
    char migrations_error [1024];
    Airlock__Environment env;               // the environment in focus (--env)
    char *warnings [S_WARNINGS_MAX];
    size_t warning_count;
} s_runbook_t;

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: airlock runbook SERVICE [--state DIR | --config FILE] [--out FILE] [--env ENV] [--json]\n\n"
        "Write seed 002's runbook.md for SERVICE from the live configuration: airlock.yaml,\n"
        "its policy directory (quorums, approvers, windows and freezes, rollback triggers,\n"
        "soak), services.yaml (driver, strategy and instances per environment, health\n"
        "endpoints, QA checks, data rollback), the migration set and notifications.yaml.\n"
        "Sections: Deployment, Operations, Monitoring, Rollback, QA checks,\n"
        "Troubleshooting, Escalation; problems of the configuration are listed first.\n"
        "The output depends on the files only: regenerate it after changing them.\n\n"
        "options:\n"
        "  --state DIR    the state directory (reads DIR/airlock.yaml)\n"
        "  --config FILE  airlock.yaml (default $AIRLOCK_CONFIG, else\n"
        "                 ./airlock-state/airlock.yaml)\n"
        "  --out FILE     write the runbook to FILE (atomically) and print its path;\n"
        "                 default: standard output\n"
        "  --env ENV      the environment the Operations, Monitoring and automatic\n"
        "                 rollback sections focus on: development, staging or\n"
        "                 production (default production)\n"
        "  --json         print {\"service\", \"environment\", \"configuration\", \"warnings\",\n"
        "                 and \"out\" (with --out) or \"markdown\": the runbook}\n\n"
        "exit codes: 0 written, 1 a configuration file is invalid (the error names the\n"
        "file, line and field), 2 usage error, unknown service (the configured ones are\n"
        "listed), unreadable configuration or the output could not be written\n");
}

//  ---- small helpers ------------------------------------------------------------------

static void
s_warn (s_runbook_t *self, const char *format, ...)
{
    if (self->warning_count == S_WARNINGS_MAX)
        return;
    char text [1024];
    va_list args;
    va_start (args, format);
    vsnprintf (text, sizeof text, format, args);
    va_end (args);
    self->warnings [self->warning_count] = strdup (text);
    if (self->warnings [self->warning_count])
        self->warning_count++;
}

//  A duration for humans: "60 min", "1 h", "1.5 s", "250 ms".
static const char *
s_duration (int64_t ms, char *buffer, size_t size)
{
    if (ms <= 0)
        snprintf (buffer, size, "0 s");
    else
    if (ms % 3600000 == 0)
        snprintf (buffer, size, "%lld h", (long long) (ms / 3600000));
    else
    if (ms % 60000 == 0)
        snprintf (buffer, size, "%lld min", (long long) (ms / 60000));
    else
    if (ms % 1000 == 0)
        snprintf (buffer, size, "%lld s", (long long) (ms / 1000));
    else
    if (ms < 1000)
        snprintf (buffer, size, "%lld ms", (long long) ms);
    else
        snprintf (buffer, size, "%.1f s", (double) ms / 1000.0);
    return buffer;
}

//  A number as written: no trailing zeros ("5", "2.5", "0.001").
static const char *
s_number (double value, char *buffer, size_t size)
{
    snprintf (buffer, size, "%.6g", value);
    return buffer;
}

//  A scalar of the canonical policy as text (names and ids may have been numbers).
static const char *
s_json_text (json_t *value, char *buffer, size_t size)
{
    if (json_is_string (value))
        return json_string_value (value);
    if (json_is_integer (value))
        snprintf (buffer, size, "%lld", (long long) json_integer_value (value));
    else
    if (json_is_real (value))
        s_number (json_real_value (value), buffer, size);
    else
    if (json_is_boolean (value))
        snprintf (buffer, size, "%s", json_is_true (value)? "true": "false");
    else
        snprintf (buffer, size, "?");
    return buffer;
}

//  Text inside a Markdown table cell: '|' escaped, line breaks as spaces.
static void
s_cell (FILE *out, const char *text)
{
    for (const char *c = text? text: ""; *c; c++) {
        if (*c == '|')
            fputs ("\\|", out);
        else
        if (*c == '\n' || *c == '\r')
            fputc (' ', out);
        else
            fputc (*c, out);
    }
}

//  One shell word: as is when it is safe, else single-quoted.
static void
s_shell_word (FILE *out, const char *text)
{
    bool safe = *text != 0;
    for (const char *c = text; *c && safe; c++)
        safe = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')
            || strchr ("_./:=@%+-,", *c) != NULL;
    if (safe) {
        fputs (text, out);
        return;
    }
    fputc ('\'', out);
    for (const char *c = text; *c; c++) {
        if (*c == '\'')
            fputs ("'\\''", out);
        else
            fputc (*c, out);
    }
    fputc ('\'', out);
}

//  An argv as a YAML-like flow list in a code span: `["a", "b"]`. In a table cell a '|'
//  is escaped (GFM allows "\|" inside code spans there); a backtick in the text makes
//  the span's delimiters double.
static void
s_argv (FILE *out, const char *const *argv, bool in_table)
{
    bool backtick = false;
    for (size_t i = 0; argv && argv [i]; i++)
        backtick |= strchr (argv [i], '`') != NULL;
    fputs (backtick? "`` [": "`[", out);
    for (size_t i = 0; argv && argv [i]; i++) {
        fprintf (out, "%s\"", i? ", ": "");
        for (const char *c = argv [i]; *c; c++) {
            if (*c == '|' && in_table)
                fputs ("\\|", out);
            else
            if (*c == '\n' || *c == '\r')
                fputs (*c == '\n'? "\\n": "\\r", out);
            else
            if (*c == '"' || *c == '\\')
                fprintf (out, "\\%c", *c);
            else
                fputc (*c, out);
        }
        fputc ('"', out);
    }
    fputs (backtick? "] ``": "]`", out);
}

static const Airlock__Environment s_envs [] = {
    AIRLOCK__ENVIRONMENT__ENV_DEVELOPMENT, AIRLOCK__ENVIRONMENT__ENV_STAGING, AIRLOCK__ENVIRONMENT__ENV_PRODUCTION
};
#define S_ENV_COUNT (sizeof s_envs / sizeof s_envs [0])

static const Airlock__DeploymentType s_types [] = {
    AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD, AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_HOTFIX,
    AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_ROLLBACK, AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_SCHEDULED,
    AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_EMERGENCY
};
#define S_TYPE_COUNT (sizeof s_types / sizeof s_types [0])

//  ---- what the policy says, through its canonical JSON --------------------------------

static json_t *
s_policy_file (const s_runbook_t *self, const char *file)
{
    return json_object_get (self->policy_json, file);
}

static json_t *
s_approvers (const s_runbook_t *self)
{
    return json_object_get (s_policy_file (self, "approvers.yaml"), "approvers");
}

static bool
s_has_role (json_t *approver, const char *role)
{
    size_t index;
    json_t *value;
    json_array_foreach (json_object_get (approver, "roles"), index, value) {
        char buffer [64];
        if (strcmp (s_json_text (value, buffer, sizeof buffer), role) == 0)
            return true;
    }
    return false;
}

//  People who can sign for role: an approver holding it with at least one valid key
//  (each person counts once, whatever keys they hold: docs/approvals.md).
static size_t
s_people_with_role (const s_runbook_t *self, const char *role)
{
    size_t count = 0, index;
    json_t *approver;
    json_array_foreach (s_approvers (self), index, approver)
        count += s_has_role (approver, role) && json_array_size (json_object_get (approver, "keys")) > 0;
    return count;
}

//  "alice, carol" for role, or "nobody".
static void
s_names_with_role (const s_runbook_t *self, FILE *out, const char *role)
{
    size_t printed = 0, index;
    json_t *approver;
    json_array_foreach (s_approvers (self), index, approver) {
        if (!s_has_role (approver, role) || json_array_size (json_object_get (approver, "keys")) == 0)
            continue;
        char buffer [64];
        fputs (printed++? ", ": "", out);
        s_cell (out, s_json_text (json_object_get (approver, "name"), buffer, sizeof buffer));
    }
    if (printed == 0)
        fprintf (out, "nobody (no approver holds %s)", role);
}

//  "1 manager + 1 security", or "none".
static void
s_quorum_text (FILE *out, al_policy_quorum_t quorum)
{
    if (quorum.count == 0)
        fputs ("none", out);
    for (size_t i = 0; i < quorum.count; i++)
        fprintf (out, "%s%u %s", i? " + ": "", quorum.entries [i].count, quorum.entries [i].role);
}

//  Can approvers.yaml meet quorum (plus extra, from other people)? Says why not in why.
static bool
s_quorum_feasible (const s_runbook_t *self, al_policy_quorum_t quorum, al_policy_quorum_t extra,
                   char *why, size_t why_size)
{
    size_t needed = 0;
    *why = 0;
    const al_policy_quorum_t parts [2] = { quorum, extra };
    for (int p = 0; p < 2; p++)
        for (size_t i = 0; i < parts [p].count; i++) {
            size_t have = s_people_with_role (self, parts [p].entries [i].role);
            needed += parts [p].entries [i].count;
            if (have < parts [p].entries [i].count) {
                snprintf (why, why_size, "it needs %u %s, approvers.yaml has %zu", parts [p].entries [i].count,
                          parts [p].entries [i].role, have);
                return false;
            }
        }
    //  Each person counts once: the entries together need that many distinct people.
    size_t people = 0, index;
    json_t *approver;
    json_array_foreach (s_approvers (self), index, approver) {
        bool useful = false;
        for (int p = 0; p < 2; p++)
            for (size_t i = 0; i < parts [p].count; i++)
                useful |= s_has_role (approver, parts [p].entries [i].role);
        people += useful && json_array_size (json_object_get (approver, "keys")) > 0;
    }
    if (people < needed) {
        snprintf (why, why_size, "it needs %zu distinct people, approvers.yaml has %zu who hold those roles",
                  needed, people);
        return false;
    }
    return true;
}

//  ---- loading and checking ------------------------------------------------------------

//  The soak deploy-manager runs in env (al_deployer_soak_ms: the same function).
static int64_t
s_soak_ms (const s_runbook_t *self, Airlock__Environment env)
{
    return al_deployer_soak_ms (self->policy, self->svc, env, NULL, NULL, 0);
}

static unsigned
s_health_limit (const s_runbook_t *self)
{
    const al_policy_thresholds_t *thresholds = al_policy_thresholds (self->policy);
    if (thresholds && thresholds->health_check_failures_more_than > 0)
        return thresholds->health_check_failures_more_than;
    return self->svc->health_failures;
}

//  Every check deploy-manager's pre-flight, the approval gate or the monitor would make
//  against the configuration alone, as warnings.
static void
s_check (s_runbook_t *self)
{
    const al_service_t *svc = self->svc;
    const char *where = al_services_path (self->services);
    char a [64], b [64], c [64];
    const Airlock__Environment pipeline [] = { AIRLOCK__ENVIRONMENT__ENV_STAGING, AIRLOCK__ENVIRONMENT__ENV_PRODUCTION };
    for (size_t i = 0; i < 2; i++) {
        Airlock__Environment env = pipeline [i];
        const char *name = al_environment_name (env);
        Airlock__Strategy strategy = al_service_strategy (svc, env);
        unsigned instances = al_service_instances (svc, env);
        if (!al_policy_strategy_allowed (self->policy, env, strategy))
            s_warn (self, "%s:%zu: services.%s.strategy is %s in %s, which constraints.yaml does not allow "
                    "there: pre-flight refuses every %s deployment", where, svc->line, svc->name,
                    al_strategy_name (strategy), name, name);
        if (instances > al_policy_max_instances (self->policy, env))
            s_warn (self, "%s:%zu: services.%s.instances is %u in %s, above constraints.yaml's max_instances %u: "
                    "pre-flight refuses every %s deployment", where, svc->line, svc->name, instances, name,
                    al_policy_max_instances (self->policy, env), name);
        double cost = instances * svc->cost_per_instance_usd_month;
        double budget = al_policy_monthly_budget_usd (self->policy, env);
        if (cost > budget)
            s_warn (self, "%s:%zu: services.%s: %u instances x %s USD/month = %s USD in %s, above constraints.yaml's "
                    "monthly_budget_usd %s: pre-flight refuses it", where, svc->line, svc->name, instances,
                    s_number (svc->cost_per_instance_usd_month, a, sizeof a), s_number (cost, b, sizeof b), name,
                    s_number (budget, c, sizeof c));
    }
    const al_policy_thresholds_t *thresholds = al_policy_thresholds (self->policy);
    if (thresholds && thresholds->liveness_path && strcmp (thresholds->liveness_path, svc->liveness_path) != 0)
        s_warn (self, "%s:%zu: services.%s probes liveness at %s, quality_rules.yaml's health_checks name %s: "
                "the driver and the soak probe %s", where, svc->line, svc->name, svc->liveness_path, thresholds->liveness_path, svc->liveness_path);
    if (thresholds && thresholds->readiness_path && strcmp (thresholds->readiness_path, svc->readiness_path) != 0)
        s_warn (self, "%s:%zu: services.%s probes readiness at %s, quality_rules.yaml's health_checks name %s: "
                "the driver and the soak probe %s", where, svc->line, svc->name, svc->readiness_path, thresholds->readiness_path, svc->readiness_path);
    const al_policy_soak_t *soak = al_policy_soak (self->policy);
    int64_t effective = s_soak_ms (self, AIRLOCK__ENVIRONMENT__ENV_STAGING);
    if (soak && effective < svc->soak_ms)
        s_warn (self, "%s:%zu: services.%s.soak_ms %s is capped by quality_rules.yaml's soak duration %s",
                where, svc->line, svc->name, s_duration (svc->soak_ms, a, sizeof a), s_duration (effective, b, sizeof b));
    bool shortened = false;
    int64_t production = al_deployer_soak_ms (self->policy, svc, AIRLOCK__ENVIRONMENT__ENV_PRODUCTION, &shortened, NULL, 0);
    if (soak && soak->checkpoint_count > 0 && shortened) {
        size_t within = 0;
        for (size_t i = 0; i < soak->checkpoint_count; i++)
            within += soak->checkpoints_ms [i] <= production;
        s_warn (self, "%s:%zu: services.%s.soak shortens the production soak to %s (reason: %s): %zu of the %zu "
                "checkpoints of quality_rules.yaml fall within it, then the all-normal check at its end",
                where, svc->line, svc->name, s_duration (production, a, sizeof a), svc->soak_reason, within,
                soak->checkpoint_count);
    }
    if (strcmp (svc->driver, "process") != 0 && svc->signals == AL_SERVICE_SIGNALS_MONITOR)
        s_warn (self, "%s:%zu: services.%s uses the %s driver with signals: monitor, but the monitor scrapes "
                "only process-driver instances: every soak would end in a missing_evidence rollback; set "
                "signals: probes", where, svc->line, svc->name, svc->driver);
    if (strcmp (svc->driver, "process") != 0)
        s_warn (self, "%s:%zu: services.%s uses the %s driver, but the qa agent finds instances in the process "
                "driver's registry only (docs/qa.md, Limits): every release of it fails QA in staging",
                where, svc->line, svc->name, svc->driver);
    //  Quorums the approvers cannot meet.
    char why [256];
    al_policy_quorum_t none = { NULL, 0 };
    for (size_t i = 0; i < S_TYPE_COUNT; i++) {
        al_policy_quorum_t quorum = al_policy_quorum (self->policy, s_types [i]);
        if (!s_quorum_feasible (self, quorum, none, why, sizeof why))
            s_warn (self, "approvers.yaml: no %s deployment of %s can be approved: %s",
                    al_deployment_type_name (s_types [i]), svc->name, why);
    }
    al_policy_quorum_t standard = al_policy_quorum (self->policy, AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD);
    al_policy_quorum_t glass = al_policy_break_glass (self->policy);
    if (glass.count > 0 && !s_quorum_feasible (self, standard, glass, why, sizeof why))
        s_warn (self, "approvers.yaml: a freeze cannot be broken (break-glass on top of a standard quorum): %s", why);
    //  Data.
    if (svc->migrations && !self->migrations)
        s_warn (self, "migrations: %s: pre-flight fails until the migration set loads", self->migrations_error);
    if (self->migrations) {
        char error [1024] = "";
        if (al_migration_set_check_reversible (self->migrations, true, error, sizeof error) != 0)
            s_warn (self, "migrations: %s", error);
    }
    //  Notifications.
    if (self->notify_present && !self->notify)
        s_warn (self, "%s is invalid, the notifier does not start: nobody is notified", self->notify_path);
    else {
        bool rollback = false, escalation = false;
        for (size_t i = 0; self->notify && i < al_notify_config_count (self->notify); i++) {
            const al_notify_endpoint_t *endpoint = al_notify_config_at (self->notify, i);
            rollback |= al_notify_endpoint_wants (endpoint, "rollback", AIRLOCK__ENVIRONMENT__ENV_PRODUCTION);
            escalation |= al_notify_endpoint_wants (endpoint, "escalation", AIRLOCK__ENVIRONMENT__ENV_PRODUCTION);
        }
        if (!rollback || !escalation)
            s_warn (self, "%s: no endpoint receives %s%s%s notifications about production: humans learn of them "
                    "only from the audit log", self->notify_path, rollback? "": "rollback",
                    !rollback && !escalation? " and ": "", escalation? "": "escalation");
    }
}

//  Returns 0, or an exit code with the error printed.
static int
s_load_extras (s_runbook_t *self)
{
    self->policy_json = json_loads (al_policy_canonical_json (self->policy), 0, NULL);
    if (!self->policy_json) {
        fprintf (stderr, "airlock runbook: %s: cannot read the policy's canonical form\n", al_policy_dir (self->policy));
        return AL_EXIT_BAD;
    }
    char *notify_path = al_notifier_config_path (self->config);
    snprintf (self->notify_path, sizeof self->notify_path, "%.1000s", notify_path? notify_path: "notifications.yaml");
    free (notify_path);
    struct stat info;
    self->notify_present = stat (self->notify_path, &info) == 0;
    if (self->notify_present) {
        char error [2048];
        self->notify = al_notify_config_load (self->notify_path, error, sizeof error);
        if (!self->notify)
            fprintf (stderr, "airlock runbook: warning: %s\n", error);
    }
    if (self->svc->migrations)
        self->migrations = al_migration_set_load (self->svc->migrations, self->migrations_error,
                                                  sizeof self->migrations_error);
    return 0;
}

//  ---- the runbook --------------------------------------------------------------------

//  "airlock " + the config option, the way every command below is written.
static void
s_cmd (const s_runbook_t *self, FILE *out, const char *command)
{
    fprintf (out, "airlock %s --config ", command);
    s_shell_word (out, al_config_path (self->config));
}

static void
s_header (const s_runbook_t *self, FILE *out)
{
    const al_service_t *svc = self->svc;
    fprintf (out, "# Runbook: %s\n\n", svc->name);
    fprintf (out, "Generated by `airlock runbook %s` from the live configuration below. Do not edit it by hand:\n"
                  "change the files, then regenerate it (the same files always give the same runbook).\n\n",
             svc->name);
    fprintf (out, "| source | where |\n|---|---|\n");
    fprintf (out, "| configuration | `%s` |\n", al_config_path (self->config));
    fprintf (out, "| service | `%s`, line %zu |\n", al_services_path (self->services), svc->line);
    fprintf (out, "| policy | `%s` (digest `%.16s…`) |\n", al_policy_dir (self->policy),
             al_policy_digest_hex (self->policy));
    fprintf (out, "| notifications | `%s`%s |\n", self->notify_path,
             !self->notify_present? " (absent: no endpoints)": self->notify? "": " (invalid)");
    fprintf (out, "| state directory | `%s` |\n", al_config_state_dir (self->config));
    fprintf (out, "| environment in focus | %s |\n\n", al_environment_name (self->env));
    fprintf (out, "Commands below use this configuration; run them on the host that runs airlock.\n"
                  "Words in CAPITALS (VERSION, RELEASE, ...) are the values of one release.\n\n");
    if (self->warning_count > 0) {
        fprintf (out, "## Configuration warnings\n\n");
        for (size_t i = 0; i < self->warning_count; i++)
            fprintf (out, "- **%s**\n", self->warnings [i]);
        fprintf (out, "\n");
    }
}

static void
s_overview (const s_runbook_t *self, FILE *out)
{
    const al_service_t *svc = self->svc;
    char a [64], b [64], c [64];
    fprintf (out, "## Service overview\n\n");
    fprintf (out, "| | development | staging | production |\n|---|---|---|---|\n");
    fprintf (out, "| instances |");
    for (size_t i = 0; i < S_ENV_COUNT; i++)
        fprintf (out, " %u |", al_service_instances (svc, s_envs [i]));
    fprintf (out, "\n| strategy |");
    for (size_t i = 0; i < S_ENV_COUNT; i++) {
        Airlock__Strategy strategy = al_service_strategy (svc, s_envs [i]);
        fprintf (out, " %s%s |", al_strategy_name (strategy),
                 al_policy_strategy_allowed (self->policy, s_envs [i], strategy)? "": " (**not allowed**)");
    }
    fprintf (out, "\n| strategies allowed (constraints.yaml) |");
    for (size_t i = 0; i < S_ENV_COUNT; i++) {
        const Airlock__Strategy all [] = { AIRLOCK__STRATEGY__STRATEGY_ROLLING, AIRLOCK__STRATEGY__STRATEGY_CANARY,
                                           AIRLOCK__STRATEGY__STRATEGY_BLUE_GREEN };
        size_t printed = 0;
        fputc (' ', out);
        for (size_t s = 0; s < 3; s++)
            if (al_policy_strategy_allowed (self->policy, s_envs [i], all [s]))
                fprintf (out, "%s%s", printed++? ", ": "", al_strategy_name (all [s]));
        fprintf (out, "%s |", printed? "": "none");
    }
    fprintf (out, "\n| max instances (constraints.yaml) |");
    for (size_t i = 0; i < S_ENV_COUNT; i++)
        fprintf (out, " %u |", al_policy_max_instances (self->policy, s_envs [i]));
    fprintf (out, "\n| cost, USD/month (instances x %s) / budget |", s_number (svc->cost_per_instance_usd_month, a, sizeof a));
    for (size_t i = 0; i < S_ENV_COUNT; i++)
        fprintf (out, " %s / %s |", s_number (al_service_instances (svc, s_envs [i]) * svc->cost_per_instance_usd_month, a, sizeof a),
                 s_number (al_policy_monthly_budget_usd (self->policy, s_envs [i]), b, sizeof b));
    fprintf (out, "\n| database |");
    for (size_t i = 0; i < S_ENV_COUNT; i++) {
        const char *database = al_service_database (svc, s_envs [i]);
        if (database) {
            fputs (" `", out);
            s_cell (out, database);
            fputs ("` |", out);
        }
        else
            fputs (" none |", out);
    }
    fprintf (out, "\n\n");

    fprintf (out, "- **Driver**: `%s`", svc->driver);
    if (svc->command) {
        fprintf (out, ", each instance runs ");
        s_argv (out, svc->command, false);
        fprintf (out, " on `%s`, on its own port", svc->host? svc->host: "127.0.0.1");
    }
    else
    if (svc->step_count > 0) {
        fprintf (out, ", steps:");
        for (size_t i = 0; i < svc->step_count; i++) {
            fprintf (out, "%s `%s` ", i? ",": "", svc->steps [i].name);
            s_argv (out, svc->steps [i].argv, false);
        }
        if (svc->endpoint)
            fprintf (out, "; an instance's base URL is `%s`", svc->endpoint);
    }
    fprintf (out, ".\n");
    fprintf (out, "- **Rolling**: batch size %u, max unavailable %u, max surge %u.\n", svc->batch_size,
             svc->max_unavailable, svc->max_surge);
    fprintf (out, "- **Canary** ramp:");
    for (size_t i = 0; i < svc->canary_step_count; i++)
        fprintf (out, "%s %u%%", i? ",": "", svc->canary_steps [i]);
    fprintf (out, ", %s soak between two steps.\n", s_duration (svc->canary_step_soak_ms, a, sizeof a));
    fprintf (out, "- **Blue-green**: the new set starts beside the old one, traffic switches once every new instance is ready; "
                  "the old set is kept until the soak passes.\n");
    fprintf (out, "- **Health endpoints**: liveness `GET %s`, readiness `GET %s` (2xx within %s; probed every %s; "
                  "an instance has %s to become ready).\n", svc->liveness_path, svc->readiness_path,
             s_duration (svc->probe_timeout_ms, a, sizeof a), s_duration (svc->probe_interval_ms, b, sizeof b),
             s_duration (svc->ready_timeout_ms, c, sizeof c));
    if (svc->signals == AL_SERVICE_SIGNALS_MONITOR)
        fprintf (out, "- **Soak evidence**: the monitor's golden signals, scraped from `GET %s` on every instance, "
                      "and the probes above.\n", svc->metrics_path);
    else
    if (svc->signals == AL_SERVICE_SIGNALS_PROMETHEUS)
        fprintf (out, "- **Soak evidence**: the monitor's golden signals, read from the Prometheus server at %s with "
                      "one query per signal (services.yaml `signals.prometheus`), and the probes above.\n",
                 svc->prometheus.url);
    else
        fprintf (out, "- **Soak evidence**: liveness and readiness probes only (`signals: probes`): no error-rate, "
                      "latency or saturation rule applies to this service.\n");
    if (svc->secret_count > 0) {
        fprintf (out, "- **Secrets** (by reference; values never appear in logs, evidence or this runbook):\n\n");
        fprintf (out, "  | secret | read from | given to instances as |\n  |---|---|---|\n");
        for (size_t i = 0; i < svc->secret_count; i++) {
            const al_driver_secret_ref_t *secret = &svc->secrets [i];
            fprintf (out, "  | %s | %s `%s` | `%s` |\n", secret->name, secret->env? "variable": "file",
                     secret->env? secret->env: secret->file, secret->as? secret->as: secret->name);
        }
    }
    else
        fprintf (out, "- **Secrets**: none configured.\n");
    fprintf (out, "\n");
}

static void
s_approvals_tables (const s_runbook_t *self, FILE *out)
{
    char buffer [64];
    fprintf (out, "### Who approves (deployment_types.yaml, approvers.yaml)\n\n");
    fprintf (out, "| type | what for | quorum | who can sign | deploy window | staging |\n|---|---|---|---|---|---|\n");
    json_t *types = json_object_get (s_policy_file (self, "deployment_types.yaml"), "types");
    for (size_t i = 0; i < S_TYPE_COUNT; i++) {
        const char *name = al_deployment_type_name (s_types [i]);
        json_t *description = json_object_get (json_object_get (types, name), "description");
        al_policy_quorum_t quorum = al_policy_quorum (self->policy, s_types [i]);
        fprintf (out, "| %s | ", name);
        s_cell (out, description? s_json_text (description, buffer, sizeof buffer): "");
        fprintf (out, " | ");
        s_quorum_text (out, quorum);
        fprintf (out, " | ");
        for (size_t e = 0; e < quorum.count; e++) {
            fprintf (out, "%s%s: ", e? "; ": "", quorum.entries [e].role);
            s_names_with_role (self, out, quorum.entries [e].role);
        }
        fprintf (out, " | %s | ", al_policy_requires_window (self->policy, s_types [i])? "required": "not required");
        if (!al_policy_requires_staging (self->policy, s_types [i]))
            fprintf (out, "not required");
        else {
            al_policy_quorum_t skip = al_policy_skip_staging_quorum (self->policy, s_types [i]);
            fprintf (out, "required");
            if (skip.count > 0) {
                fprintf (out, "; skipped only with ");
                s_quorum_text (out, skip);
                fprintf (out, " more");
            }
        }
        fprintf (out, " |\n");
    }
    al_policy_quorum_t glass = al_policy_break_glass (self->policy);
    char a [64];
    fprintf (out, "\n- An approval is valid for at most %s (`airlock approve --valid-for` shortens it).\n",
             s_duration (al_policy_approval_expiry_s (self->policy) * 1000, a, sizeof a));
    fprintf (out, "- Self-approval is forbidden: whoever filed a request never counts for it. Each person counts "
                  "once, whatever keys or roles they hold.\n");
    fprintf (out, "- Break-glass (a freeze, or a closed window for a type that needs one): ");
    s_quorum_text (out, glass);
    fprintf (out, " more, signed with `--break-glass`, from people not already counted (");
    for (size_t e = 0; e < glass.count; e++) {
        fprintf (out, "%s%s: ", e? "; ": "", glass.entries [e].role);
        s_names_with_role (self, out, glass.entries [e].role);
    }
    fprintf (out, "%s).\n\n", glass.count? "": "nobody can break a freeze");

    fprintf (out, "### Approvers\n\n");
    json_t *approvers = s_approvers (self);
    if (json_array_size (approvers) == 0)
        fprintf (out, "approvers.yaml lists nobody: no production deployment can be approved. Add approvers with "
                      "`airlock keygen --name NAME --role ROLE`, which prints the entry.\n\n");
    else {
        fprintf (out, "| name | roles | valid key ids | revoked key ids |\n|---|---|---|---|\n");
        size_t index;
        json_t *approver;
        json_array_foreach (approvers, index, approver) {
            fprintf (out, "| ");
            s_cell (out, s_json_text (json_object_get (approver, "name"), buffer, sizeof buffer));
            fprintf (out, " | ");
            size_t r;
            json_t *role;
            json_array_foreach (json_object_get (approver, "roles"), r, role) {
                fputs (r? ", ": "", out);
                s_cell (out, s_json_text (role, buffer, sizeof buffer));
            }
            const char *lists [2] = { "keys", "revoked_keys" };
            for (int l = 0; l < 2; l++) {
                fprintf (out, " | ");
                json_t *keys = json_object_get (approver, lists [l]);
                size_t k;
                json_t *key;
                json_array_foreach (keys, k, key) {
                    json_t *id = json_object_get (key, "id");
                    fputs (k? ", ": "", out);
                    if (id && !json_is_null (id)) {
                        fputc ('`', out);
                        s_cell (out, s_json_text (id, buffer, sizeof buffer));
                        fputc ('`', out);
                    }
                    else
                        fputs ("(no id)", out);
                    fprintf (out, " (%s)", json_object_get (key, "ssh")? "ssh": "ed25519");
                }
                if (json_array_size (keys) == 0)
                    fputs (l? "none": "none: cannot sign", out);
            }
            fprintf (out, " |\n");
        }
        fprintf (out, "\n");
    }
}

static void
s_calendar (const s_runbook_t *self, FILE *out)
{
    char buffer [64];
    json_t *calendar = json_object_get (s_policy_file (self, "constraints.yaml"), "calendar");
    fprintf (out, "### Deploy windows and freezes (constraints.yaml)\n\n");
    fprintf (out, "Times are in **%s**. They govern: ", al_policy_timezone (self->policy));
    size_t index;
    json_t *value;
    json_t *applies = json_object_get (calendar, "applies_to");
    json_array_foreach (applies, index, value)
        fprintf (out, "%s%s", index? ", ": "", s_json_text (value, buffer, sizeof buffer));
    fprintf (out, "%s.\n\n", json_array_size (applies)? "": "no environment");
    json_t *windows = json_object_get (calendar, "windows");
    fprintf (out, "- **Windows** (required by the types marked above; recommended for all):");
    json_array_foreach (windows, index, value) {
        fprintf (out, "%s ", index? ";": "");
        size_t d;
        json_t *day;
        json_array_foreach (json_object_get (value, "days"), d, day)
            fprintf (out, "%s%s", d? ", ": "", s_json_text (day, buffer, sizeof buffer));
        fprintf (out, " %s", s_json_text (json_object_get (value, "start"), buffer, sizeof buffer));
        fprintf (out, "-%s", s_json_text (json_object_get (value, "end"), buffer, sizeof buffer));
    }
    fprintf (out, "%s\n", json_array_size (windows)? ".": " none: a type that requires a window can never deploy.");
    json_t *freezes = json_object_get (calendar, "freezes");
    fprintf (out, "- **Frozen weekdays**:");
    json_array_foreach (json_object_get (freezes, "weekdays"), index, value)
        fprintf (out, "%s %s", index? ",": "", s_json_text (value, buffer, sizeof buffer));
    fprintf (out, "%s\n", json_array_size (json_object_get (freezes, "weekdays"))? ".": " none.");
    fprintf (out, "- **Frozen holidays**:");
    json_array_foreach (json_object_get (freezes, "holidays"), index, value)
        fprintf (out, "%s %s", index? ",": "", s_json_text (value, buffer, sizeof buffer));
    fprintf (out, "%s\n", json_array_size (json_object_get (freezes, "holidays"))? ".": " none.");
    json_t *month_end = json_object_get (freezes, "month_end");
    const char *mode = month_end? s_json_text (month_end, buffer, sizeof buffer): "flag";
    fprintf (out, "- **Last business day of the month**: %s.\n", strcmp (mode, "freeze") == 0? "frozen"
             : strcmp (mode, "off") == 0? "no restriction": "allowed, but flagged as a warning");
    fprintf (out, "- A freeze is lifted only by break-glass approvals (above). `airlock approve` shows whether the "
                  "window is open and whether a freeze is active before you sign.\n\n");
}

static void
s_deployment (const s_runbook_t *self, FILE *out)
{
    const al_service_t *svc = self->svc;
    char a [64], b [64];
    fprintf (out, "## Deployment\n\n### Prerequisites\n\n");
    fprintf (out, "1. The broker and the five agents run: `");
    s_cmd (self, out, "up");
    fprintf (out, "` (supervised; logs in `%s/logs/`). Check that orchestrator, qa, deploy-manager, monitor and "
                  "notifier are alive:\n\n   ```sh\n   ", al_config_state_dir (self->config));
    s_cmd (self, out, "status");
    fprintf (out, "\n   ```\n");
    fprintf (out, "2. The release artifact (%s) and its SHA-256 digest; a file of changes, one per line.\n",
             strcmp (svc->driver, "process") == 0? "an executable file: the process driver runs it as `{{artifact}}`"
             : "an artifact reference the exec steps understand, pinned with `{{digest}}`");
    if (svc->migrations) {
        fprintf (out, "3. The migration set `%s`: its digest goes into the request, and pre-flight refuses any "
                      "other.", svc->migrations);
        if (self->migrations)
            fprintf (out, " Today it has %zu step(s) and digest `sha256:%s` (regenerate this runbook after "
                          "changing it).\n", al_migration_set_count (self->migrations),
                     al_migration_set_digest (self->migrations));
        else
            fprintf (out, " It does not load today: %s.\n", self->migrations_error);
    }
    else
        fprintf (out, "3. No migration set is configured: no database migration runs.\n");
    fprintf (out, "4. An approver's key for the production approval (see *Who approves* below).\n");
    fprintf (out, "5. For a `scheduled` release: an open deploy window; for any release: no active freeze "
                  "(see *Deploy windows and freezes* below).\n\n");

    fprintf (out, "### Procedure\n\n");
    fprintf (out, "1. **Submit** the release candidate (type `standard` by default; `hotfix`, `scheduled`, "
                  "`emergency` with `--type`):\n\n   ```sh\n   ");
    s_cmd (self, out, "submit");
    fprintf (out, " --service %s --version VERSION \\\n       --artifact ARTIFACT --digest sha256:HEX "
                  "--changes CHANGES.txt --summary 'WHAT AND WHY'", svc->name);
    if (self->migrations)
        fprintf (out, " \\\n       --migrations sha256:%s", al_migration_set_digest (self->migrations));
    fprintf (out, "\n   ```\n\n   It prints the release id (RELEASE). Follow it with `");
    s_cmd (self, out, "status RELEASE");
    fprintf (out, "`.\n");
    Airlock__Environment staging = AIRLOCK__ENVIRONMENT__ENV_STAGING, production = AIRLOCK__ENVIRONMENT__ENV_PRODUCTION;
    fprintf (out, "2. **Staging**: the orchestrator deploys it to staging (%u instance(s), %s), watch it live with `",
             al_service_instances (svc, staging), al_strategy_name (al_service_strategy (svc, staging)));
    s_cmd (self, out, "watch RELEASE-stg");
    fprintf (out, "`.\n");
    fprintf (out, "3. **QA** validates staging with the checks in [QA checks](#qa-checks); a release that fails "
                  "them ends FAILED and is never proposed for production.\n");
    fprintf (out, "4. **Approval**: the production request RELEASE-prod waits for signatures:\n\n   ```sh\n   ");
    s_cmd (self, out, "approvals");
    fprintf (out, "\n   ");
    s_cmd (self, out, "approve RELEASE-prod");
    fprintf (out, " --key YOUR.key        # or --ssh-key ~/.ssh/id_ed25519\n   ");
    s_cmd (self, out, "deny RELEASE-prod");
    fprintf (out, " --reason 'WHY' --key YOUR.key\n   ```\n\n");
    fprintf (out, "   A standard release needs ");
    s_quorum_text (out, al_policy_quorum (self->policy, AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD));
    fprintf (out, ".\n");
    fprintf (out, "5. **Production**: deploy-manager deploys %u instance(s) with the %s strategy once the quorum is "
                  "met; watch it with `", al_service_instances (svc, production),
             al_strategy_name (al_service_strategy (svc, production)));
    s_cmd (self, out, "watch RELEASE-prod");
    fprintf (out, "` (exit 0 succeeded, 1 failed or rolled back).\n");
    fprintf (out, "6. **Soak**: %s of monitoring after the rollout (see [Monitoring](#monitoring)); any rollback "
                  "trigger rolls back automatically.\n", s_duration (s_soak_ms (self, production), a, sizeof a));
    fprintf (out, "7. **Verify** (below) and record: `");
    s_cmd (self, out, "audit history");
    fprintf (out, " --service %s`.\n\n", svc->name);

    fprintf (out, "### What deploy-manager does, in order (dependencies.yaml)\n\n");
    const Airlock__Step *steps = NULL;
    size_t count = al_policy_critical_path (self->policy, &steps);
    for (size_t i = 0; i < count; i++)
        fprintf (out, "%s%s", i? " → ": "", al_step_name (steps [i]));
    fprintf (out, "; any failure, or a rollback trigger: rollback → receipt.\n\n");
    fprintf (out, "Pre-flight refuses the deployment, before anything changes, when: the strategy is not allowed in the "
                  "environment; the instances exceed max_instances; instances x cost exceed the monthly budget; a freeze "
                  "is active (without break-glass); a required window is closed; the artifact's bytes differ from the "
                  "approved digest; the migration set's digest differs from the approved one (or a production step is "
                  "neither reversible nor forward-only); the health paths are missing; a driver prerequisite fails; %s. "
                  "QA reports older than %s and soak signals older than %s are not trusted.\n\n",
             svc->signals != AL_SERVICE_SIGNALS_PROBES? "the monitor is not alive": "(probes only: no monitor needed)",
             s_duration (al_policy_qa_report_max_age_s (self->policy) * 1000, a, sizeof a),
             s_duration (al_policy_signal_max_age_s (self->policy) * 1000, b, sizeof b));

    fprintf (out, "### Expected duration\n\n");
    fprintf (out, "| phase | duration |\n|---|---|\n");
    fprintf (out, "| start of one instance | up to %s for readiness", s_duration (svc->ready_timeout_ms, a, sizeof a));
    if (strcmp (svc->driver, "process") == 0)
        fprintf (out, " (liveness within %s of its start)", s_duration (svc->start_timeout_ms, b, sizeof b));
    fprintf (out, " |\n");
    for (size_t e = 1; e < S_ENV_COUNT; e++) {
        Airlock__Environment env = s_envs [e];
        Airlock__Strategy strategy = al_service_strategy (svc, env);
        fprintf (out, "| %s rollout | %u instance(s), %s", al_environment_name (env), al_service_instances (svc, env),
                 al_strategy_name (strategy));
        if (strategy == AIRLOCK__STRATEGY__STRATEGY_ROLLING)
            fprintf (out, " in batches of %u", svc->batch_size);
        if (strategy == AIRLOCK__STRATEGY__STRATEGY_CANARY && svc->canary_step_count > 1)
            fprintf (out, ", plus %zu canary step soak(s) of %s = %s", svc->canary_step_count - 1,
                     s_duration (svc->canary_step_soak_ms, a, sizeof a),
                     s_duration ((int64_t) svc->canary_step_soak_ms * (int64_t) (svc->canary_step_count - 1), b, sizeof b));
        fprintf (out, " |\n| %s soak | %s |\n", al_environment_name (env), s_duration (s_soak_ms (self, env), a, sizeof a));
    }
    int64_t qa_max = 0;
    for (size_t i = 0; i < svc->qa_suite_count; i++)
        qa_max += svc->qa_suites [i].timeout_ms;
    fprintf (out, "| QA | %zu smoke check(s) per staging instance, %s each at most", svc->qa_smoke_count,
             s_duration (svc->qa_timeout_ms, a, sizeof a));
    if (svc->qa_suite_count > 0)
        fprintf (out, "; %zu suite(s), %s at most", svc->qa_suite_count, s_duration (qa_max, b, sizeof b));
    fprintf (out, " |\n| approval | as long as the approvers take; an approval stays valid %s |\n\n",
             s_duration (al_policy_approval_expiry_s (self->policy) * 1000, a, sizeof a));

    fprintf (out, "### Verification (Definition of Done, quality_rules.yaml)\n\n");
    fprintf (out, "A deployment is done when `deploy_receipt.json` ticks every point:\n\n");
    for (size_t i = 0; i < al_policy_done_count (self->policy); i++)
        fprintf (out, "- [ ] `%s`: %s\n", al_policy_done_id (self->policy, i), al_policy_done_text (self->policy, i));
    fprintf (out, "\nEvidence: `%s/deploy/.artifacts/deployment/RELEASE-prod/` (`deploy_receipt.json`, "
                  "`production-deployment.json`, `health-check-report.json`, `smoke-test-results.json`). The receipt's "
                  "digest is in the audit log: `", al_config_state_dir (self->config));
    s_cmd (self, out, "audit verify");
    fprintf (out, "` proves the log intact, `");
    s_cmd (self, out, "audit replay");
    fprintf (out, " --deployment RELEASE-prod` re-derives the deployment from it.\n\n");
    s_approvals_tables (self, out);
    s_calendar (self, out);
}

static void
s_operations (const s_runbook_t *self, FILE *out)
{
    const al_service_t *svc = self->svc;
    const char *env = al_environment_name (self->env);
    const char *state = al_config_state_dir (self->config);
    fprintf (out, "## Operations (%s)\n\n", env);
    fprintf (out, "| task | command or place |\n|---|---|\n");
    fprintf (out, "| start / stop the stack | `");
    s_cmd (self, out, "up");
    fprintf (out, "`; Ctrl-C or SIGTERM stops agents, then the broker |\n");
    fprintf (out, "| agents alive, releases in the pipeline | `");
    s_cmd (self, out, "status");
    fprintf (out, "` |\n| one release's state and history | `");
    s_cmd (self, out, "status RELEASE");
    fprintf (out, "` |\n| requests awaiting approval | `");
    s_cmd (self, out, "approvals");
    fprintf (out, "` |\n| deployment history of %s | `", svc->name);
    s_cmd (self, out, "audit history");
    fprintf (out, " --service %s` |\n", svc->name);
    fprintf (out, "| audit log intact | `");
    s_cmd (self, out, "audit verify");
    fprintf (out, "` |\n| what runs in %s (current and previous release) | `%s/deploy/releases/%s/%s.json` |\n",
             env, state, svc->name, env);
    if (strcmp (svc->driver, "process") == 0)
        fprintf (out, "| %s instances (pid, port, version, set) | `%s/deploy/drivers/%s/%s/instances.json` |\n"
                      "| instance logs (redacted) | `%s/deploy/drivers/%s/%s/INSTANCE.log` |\n",
                 env, state, svc->name, env, state, svc->name, env);
    else
        fprintf (out, "| %s instances | on the platform the exec steps drive; step output in the evidence directory "
                      "`%s/deploy/drivers/%s/%s/` |\n", env, state, svc->name, env);
    fprintf (out, "| agent logs | `%s/logs/` (when started by `airlock up`) |\n", state);
    fprintf (out, "| the policy | `airlock policy check ");
    s_shell_word (out, al_policy_dir (self->policy));
    fprintf (out, "`, `airlock policy show ");
    s_shell_word (out, al_policy_dir (self->policy));
    fprintf (out, "` |\n| this runbook | `airlock runbook %s --config ", svc->name);
    s_shell_word (out, al_config_path (self->config));
    fprintf (out, " --env %s --out runbook.md` |\n\n", env);
    fprintf (out, "The broker rereads the policy on SIGHUP; orchestrator, qa, deploy-manager and monitor read the "
                  "policy and services.yaml only when they start: after changing either, restart them (`airlock up`) "
                  "and regenerate this runbook.\n\n");
    if (self->env != AIRLOCK__ENVIRONMENT__ENV_PRODUCTION)
        fprintf (out, "Releases reach %s through `airlock submit` (the orchestrator's DeployRequest); only production "
                      "needs human approval.\n\n", env);
    if (svc->secret_count > 0) {
        fprintf (out, "**Secret rotation.** Secret values are read when deploy-manager opens %s's driver in an "
                      "environment (its first deployment there after deploy-manager started) and handed to the instances "
                      "it starts. To rotate: update the source (", svc->name);
        for (size_t i = 0; i < svc->secret_count; i++)
            fprintf (out, "%s%s `%s`", i? ", ": "", svc->secrets [i].env? "variable": "file",
                     svc->secrets [i].env? svc->secrets [i].env: svc->secrets [i].file);
        if (strcmp (svc->driver, "process") == 0)
            fprintf (out, "), then restart deploy-manager (`airlock up` restarts a child that exits). Its process-driver "
                          "instances stop with it and come back at its next start with the new value: a short "
                          "interruption of %s, not a rolling restart.\n\n", svc->name);
        else
            fprintf (out, "), restart deploy-manager (`airlock up` restarts a child that exits), then deploy a release: "
                          "instances started from then on get the new value.\n\n");
    }
}

static void
s_monitoring (const s_runbook_t *self, FILE *out)
{
    const al_service_t *svc = self->svc;
    const al_policy_thresholds_t *t = al_policy_thresholds (self->policy);
    const al_policy_soak_t *soak = al_policy_soak (self->policy);
    const char *env = al_environment_name (self->env);
    char a [64], b [64];
    fprintf (out, "## Monitoring\n\n");
    fprintf (out, "The live dashboard of %s in %s, against the thresholds below (exit 1 on a breach):\n\n```sh\n",
             svc->name, env);
    s_cmd (self, out, "watch");
    fprintf (out, " --signals %s --env %s\n```\n\n", svc->name, env);
    if (svc->signals == AL_SERVICE_SIGNALS_MONITOR)
        fprintf (out, "The monitor scrapes `GET %s` on every instance (Prometheus text) and publishes the golden "
                      "signals; no sample for longer than %s is itself a breach (fail closed).\n\n", svc->metrics_path,
                 s_duration (al_policy_signal_max_age_s (self->policy) * 1000, a, sizeof a));
    else
        fprintf (out, "This service has `signals: probes`: only the health-check rule applies; the others below "
                      "are listed for completeness and are not evaluated for it.\n\n");
    fprintf (out, "### Thresholds (quality_rules.yaml)\n\n");
    fprintf (out, "| signal | rule | rolls back when | notifies when |\n|---|---|---|---|\n");
    fprintf (out, "| health checks (`%s`, `%s`) | `health_check_failures` | more than %u consecutive failures on one "
                  "instance | |\n", svc->liveness_path, svc->readiness_path, s_health_limit (self));
    fprintf (out, "| error rate (5xx ratio) | `error_rate_increase` | more than %s points above the pre-deploy baseline | "
                  "above %s%% (`error_rate_investigate`) |\n", s_number (t->error_rate_increase_more_than_points, a, sizeof a),
             s_number (t->investigate_error_rate_percent_more_than, b, sizeof b));
    fprintf (out, "| latency p99 | `latency_p99_factor` | above %s x the baseline p99", s_number (t->latency_p99_more_than_baseline_factor, a, sizeof a));
    if (t->latency_p99_floor_ms > 0)
        fprintf (out, " and above %s ms", s_number (t->latency_p99_floor_ms, b, sizeof b));
    fprintf (out, " | |\n");
    fprintf (out, "| CPU | `cpu_percent` | above %s%% | |\n", s_number (t->cpu_percent_more_than, a, sizeof a));
    fprintf (out, "| memory | `memory_percent` | above %s%% | |\n", s_number (t->memory_percent_more_than, a, sizeof a));
    fprintf (out, "| evidence | `missing_evidence` | scrapes failing, instances missing, or no fresh sample | |\n\n");
    fprintf (out, "The baseline is taken from the samples just before the rollout (the running release).\n\n");
    fprintf (out, "### Soak\n\n");
    bool shortened = false;
    char why [400];
    int64_t effective = al_deployer_soak_ms (self->policy, svc, AIRLOCK__ENVIRONMENT__ENV_PRODUCTION, &shortened,
                                             why, sizeof why);
    fprintf (out, "After the rollout to production, %s is watched for **%s** (%s; quality_rules.yaml soak %s", svc->name,
             s_duration (effective, a, sizeof a), shortened? "SHORTENED by services.yaml `soak`": "quality_rules.yaml",
             s_duration (soak->duration_ms, b, sizeof b));
    if (soak->time_scale != 1.0)
        fprintf (out, " after its time_scale %s", s_number (soak->time_scale, b, sizeof b));
    fprintf (out, "), probed every %s; in staging for %s (services.yaml `soak_ms`, capped by the policy's).",
             s_duration (svc->probe_interval_ms, a, sizeof a),
             s_duration (s_soak_ms (self, AIRLOCK__ENVIRONMENT__ENV_STAGING), b, sizeof b));
    if (shortened)
        fprintf (out, " Why the production soak is shorter (services.yaml, `%s`): %s.", svc->name, svc->soak_reason);
    fprintf (out, " Checkpoints, each judged on evidence taken at or after it:\n\n");
    fprintf (out, "| checkpoint | at | check | within the production soak |\n|---|---|---|---|\n");
    static const char *const what [] = {
        "initial health: every instance of the new release answers liveness and readiness, none failing",
        "error rate: `error_rate_increase` within its limit against the baseline",
        "performance: `latency_p99_factor` within its limit against the baseline",
        "all normal: every rule above holds",
    };
    for (size_t i = 0; i < soak->checkpoint_count; i++) {
        const char *check = al_deployer_checkpoint_check (i, soak->checkpoint_count);
        size_t kind = strcmp (check, "initial health") == 0? 0: strcmp (check, "error rate") == 0? 1:
                      strcmp (check, "performance") == 0? 2: 3;
        fprintf (out, "| %zu | %s | %s | %s |\n", i + 1, s_duration (soak->checkpoints_ms [i], a, sizeof a), what [kind],
                 soak->checkpoints_ms [i] <= effective? "yes": "no: the all-normal check runs at the soak's end instead");
    }
    fprintf (out, "\nWith `signals: probes` the error-rate and performance checks are not applicable (no such evidence) "
                  "and say so. Each checkpoint judged is a `DeployProgress` (\"checkpoint N of M (check) passed\") in "
                  "`airlock watch RELEASE-prod` and in the receipt's `soak.checkpoints`; a failed one rolls back with its "
                  "rule. A hotfix ramps faster (canary: first step then 100%%; rolling: batches twice as large) but "
                  "soaks as long. After the soak, breaches no longer roll back by themselves: use the manual rollback "
                  "below.\n\n");
}

static void
s_rollback (const s_runbook_t *self, FILE *out)
{
    const al_service_t *svc = self->svc;
    const char *state = al_config_state_dir (self->config);
    fprintf (out, "## Rollback\n\n### Automatic\n\n");
    fprintf (out, "In every environment (%s included), during the rollout and the soak, a rule of "
                  "[Monitoring](#monitoring) breached, a failed migration or a failed rollout rolls %s back at once: "
                  "no analysis, no canary steps. "
                  "The release recorded in `%s/deploy/releases/%s/ENV.json` is brought back to its instance count "
                  "(blue-green: traffic switches back), every new instance is stopped, the data is undone (below), "
                  "then the restored release's health is checked. The receipt names the rule "
                  "(`rollback_trigger` in `deploy_receipt.json`).\n\n", al_environment_name (self->env), svc->name,
             state, svc->name);
    fprintf (out, "### Manual (production)\n\n");
    fprintf (out, "Roll back the release that runs now to the one that ran before it:\n\n```sh\n");
    s_cmd (self, out, "audit history");
    fprintf (out, " --service %s      # the release in production: RELEASE\n", svc->name);
    s_cmd (self, out, "rollback RELEASE");
    fprintf (out, "                           # prints the rollback release: ROLLBACK\n");
    s_cmd (self, out, "approve ROLLBACK-prod");
    fprintf (out, " --key YOUR.key\n");
    s_cmd (self, out, "watch ROLLBACK-prod");
    fprintf (out, "\n```\n\n");
    fprintf (out, "A rollback is a deployment of type `rollback` of %s's previous artifact (kept by digest in "
                  "`%s/deploy/artifacts/sha256/`): no staging run", svc->name, state);
    fprintf (out, ", approved by ");
    al_policy_quorum_t quorum = al_policy_quorum (self->policy, AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_ROLLBACK);
    s_quorum_text (out, quorum);
    fprintf (out, " (");
    for (size_t e = 0; e < quorum.count; e++) {
        fprintf (out, "%s%s: ", e? "; ": "", quorum.entries [e].role);
        s_names_with_role (self, out, quorum.entries [e].role);
    }
    fprintf (out, "), %s.\n\n", al_policy_requires_window (self->policy, AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_ROLLBACK)?
             "inside a deploy window": "at any time (no window required; a freeze still needs break-glass)");
    fprintf (out, "### Data\n\n");
    bool any_database = false;
    for (size_t i = 0; i < S_ENV_COUNT; i++)
        any_database |= al_service_database (svc, s_envs [i]) != NULL;
    if (!any_database)
        fprintf (out, "%s has no database configured: there is no data to roll back.\n\n", svc->name);
    else {
        fprintf (out, "- Before migrating, the database is backed up with SQLite's online backup API and verified "
                      "(integrity check, page count, SHA-256) into `%s/deploy/backups/DEPLOYMENT/`.\n", state);
        if (svc->data_rollback == AL_SERVICE_DATA_ROLLBACK_DOWN)
            fprintf (out, "- `data_rollback: down`: a rollback runs the migration set's down scripts back to the "
                          "version in the backup; a step without one (forward-only) falls back to restoring the backup.\n");
        else
            fprintf (out, "- `data_rollback: restore`: a rollback restores the backup taken before the deploy; "
                          "everything written after it is lost.\n");
        if (svc->migrations)
            fprintf (out, "- Migration set: `%s`%s.\n", svc->migrations,
                     self->migrations? "": " (does not load today: see the warnings)");
        fprintf (out, "\n");
    }
    fprintf (out, "### After a rollback\n\n");
    fprintf (out, "1. `");
    s_cmd (self, out, "watch");
    fprintf (out, " --signals %s --env production` shows every signal within thresholds.\n", svc->name);
    fprintf (out, "2. `curl -fsS http://HOST:PORT%s` and `%s` answer 2xx on every instance", svc->readiness_path,
             svc->liveness_path);
    if (strcmp (svc->driver, "process") == 0)
        fprintf (out, " (ports in `%s/deploy/drivers/%s/production/instances.json`)", state, svc->name);
    fprintf (out, ".\n3. `");
    s_cmd (self, out, "audit history");
    fprintf (out, " --service %s` shows the rollback and the version now running.\n", svc->name);
    fprintf (out, "4. Seed 004's follow-up: notify stakeholders, investigate the root cause, document the incident, "
                  "plan the fix.\n\n");
}

static void
s_qa (const s_runbook_t *self, FILE *out)
{
    const al_service_t *svc = self->svc;
    char a [64];
    fprintf (out, "## QA checks\n\n");
    fprintf (out, "The qa agent checks liveness and readiness of every staging instance, then:\n\n");
    fprintf (out, "| smoke check | request | expects |\n|---|---|---|\n");
    for (size_t i = 0; i < svc->qa_smoke_count; i++) {
        const al_service_smoke_t *smoke = &svc->qa_smoke [i];
        fprintf (out, "| %s | `GET ", smoke->name);
        s_cell (out, smoke->path);
        fprintf (out, "` | ");
        if (smoke->status == 0)
            fprintf (out, "any 2xx");
        else
            fprintf (out, "status %d", smoke->status);
        if (smoke->body_contains) {
            fprintf (out, ", body contains \"");
            s_cell (out, smoke->body_contains);
            fprintf (out, "\"");
        }
        fprintf (out, " |\n");
    }
    fprintf (out, "\nEach request has %s, on every staging instance.\n\n", s_duration (svc->qa_timeout_ms, a, sizeof a));
    if (svc->qa_suite_count == 0)
        fprintf (out, "No command suites are configured (`qa.suites`).\n\n");
    else {
        fprintf (out, "| suite | command (run in the directory of services.yaml) | report | timeout |\n|---|---|---|---|\n");
        for (size_t i = 0; i < svc->qa_suite_count; i++) {
            const al_service_suite_t *suite = &svc->qa_suites [i];
            fprintf (out, "| %s | ", suite->name);
            s_argv (out, suite->argv, true);
            fprintf (out, " | ");
            if (suite->junit) {
                fputc ('`', out);
                s_cell (out, suite->junit);
                fputc ('`', out);
            }
            else
                fputs ("exit code", out);
            fprintf (out, " | %s |\n", s_duration (suite->timeout_ms, a, sizeof a));
        }
        fprintf (out, "\n");
    }
}

static void
s_troubleshooting (const s_runbook_t *self, FILE *out)
{
    const al_service_t *svc = self->svc;
    const al_policy_thresholds_t *t = al_policy_thresholds (self->policy);
    const char *state = al_config_state_dir (self->config);
    char a [64], b [64];
    fprintf (out, "## Troubleshooting\n\n");
    fprintf (out, "| symptom | likely cause | what to do |\n|---|---|---|\n");

    fprintf (out, "| rollout stops: an instance of %s is not ready within %s | it does not answer `GET %s` with a 2xx "
                  "within %s: still starting, a dependency it checks is down, a crash at start | read the instance's "
                  "log (`%s/deploy/drivers/%s/ENV/`); `curl -i http://HOST:PORT%s`; the deployment was rolled back "
                  "already: fix and submit a new VERSION |\n", svc->name, s_duration (svc->ready_timeout_ms, a, sizeof a),
             svc->readiness_path, s_duration (svc->probe_timeout_ms, b, sizeof b), state, svc->name, svc->readiness_path);

    fprintf (out, "| rolled back, rule `health_check_failures` | more than %u consecutive failed probes of `%s` or `%s` on "
                  "one instance during the soak | `", s_health_limit (self), svc->liveness_path, svc->readiness_path);
    s_cmd (self, out, "audit replay");
    fprintf (out, " --deployment RELEASE-prod` shows when; read the instance logs; check the host's resources |\n");

    fprintf (out, "| rolled back, rule `error_rate_increase` | the new version's 5xx ratio rose more than %s points over "
                  "the baseline | `", s_number (t->error_rate_increase_more_than_points, a, sizeof a));
    s_cmd (self, out, "watch");
    fprintf (out, " --signals %s --env staging` while reproducing in staging; the receipt's `rollback_trigger` holds the "
                  "samples; fix and resubmit |\n", svc->name);

    fprintf (out, "| rolled back, rule `latency_p99_factor` | p99 above %s x the baseline", 
             s_number (t->latency_p99_more_than_baseline_factor, a, sizeof a));
    if (t->latency_p99_floor_ms > 0)
        fprintf (out, " and above %s ms", s_number (t->latency_p99_floor_ms, b, sizeof b));
    fprintf (out, ": a slower code path, a missing index after a migration, a cold cache | compare "
                  "`performance-baseline.json` with the soak samples in the evidence directory; profile in staging |\n");

    fprintf (out, "| rolled back, rule `cpu_percent` / `memory_percent` | saturation above %s%% CPU / %s%% memory "
                  "on an instance | look for a leak or a busy loop in the new version; more instances need a "
                  "services.yaml change (max %u in production) |\n", s_number (t->cpu_percent_more_than, a, sizeof a),
             s_number (t->memory_percent_more_than, b, sizeof b),
             al_policy_max_instances (self->policy, AIRLOCK__ENVIRONMENT__ENV_PRODUCTION));

    if (svc->signals == AL_SERVICE_SIGNALS_MONITOR)
        fprintf (out, "| rolled back, rule `missing_evidence` | no fresh monitor sample for %s: the monitor is down, "
                      "`GET %s` fails or is not Prometheus text, instances are missing | `", 
                 s_duration (al_policy_signal_max_age_s (self->policy) * 1000, a, sizeof a), svc->metrics_path);
    else
        fprintf (out, "| rolled back, rule `missing_evidence` | the soak saw no evidence (probes only for this service) | `");
    s_cmd (self, out, "status");
    fprintf (out, "` shows whether the monitor is alive; `curl -s http://HOST:PORT%s`; the monitor's log in `%s/logs/` |\n",
             svc->metrics_path, state);

    fprintf (out, "| notification \"investigate\" | the error rate is above %s%%, below the rollback trigger | watch the "
                  "signals; decide on a manual rollback |\n",
             s_number (t->investigate_error_rate_percent_more_than, a, sizeof a));

    fprintf (out, "| release FAILED in QA | a smoke check or suite failed in staging | `");
    s_cmd (self, out, "status RELEASE");
    fprintf (out, "` names the check; run it against staging; fix and resubmit |\n");

    fprintf (out, "| pre-flight refused | strategy not allowed, instances or budget above constraints.yaml, freeze, "
                  "closed window, digest or migration set not the approved one | the refusal names the check "
                  "(`connectivity-report.json` in the evidence directory); see the warnings at the top |\n");

    fprintf (out, "| request waits in `airlock approvals` | the quorum is not met yet (standard: ");
    s_quorum_text (out, al_policy_quorum (self->policy, AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD));
    fprintf (out, "), or a freeze needs break-glass | ask the approvers listed above; `airlock approve` prints what is "
                  "still missing |\n");

    fprintf (out, "| approval refused by the gate | expired (over %s), revoked or unknown key, self-approval, signed "
                  "for another request | `airlock approve` prints the reason and the audit row; sign again with a "
                  "valid key |\n\n", s_duration (al_policy_approval_expiry_s (self->policy) * 1000, a, sizeof a));
}

static void
s_escalation (const s_runbook_t *self, FILE *out)
{
    const al_service_t *svc = self->svc;
    fprintf (out, "## Escalation\n\n");
    fprintf (out, "Escalate (seed 004) when a deployment of %s fails repeatedly, production shows unexpected errors "
                  "or degraded performance, there is a security incident, or a rollback fails.\n\n", svc->name);
    fprintf (out, "| who | role | for |\n|---|---|---|\n");
    const char *roles [] = { "devops", "manager", "security" };
    const char *reasons [] = { "rollbacks, failed deployments, the stack itself",
                               "releases, hotfixes, emergencies",
                               "security incidents, hotfixes, breaking a freeze" };
    for (size_t i = 0; i < 3; i++) {
        fprintf (out, "| ");
        s_names_with_role (self, out, roles [i]);
        fprintf (out, " | %s | %s |\n", roles [i], reasons [i]);
    }
    fprintf (out, "\nNotifications (`%s`):", self->notify_path);
    size_t printed = 0;
    for (size_t i = 0; self->notify && i < al_notify_config_count (self->notify); i++) {
        const al_notify_endpoint_t *endpoint = al_notify_config_at (self->notify, i);
        bool rollback = al_notify_endpoint_wants (endpoint, "rollback", AIRLOCK__ENVIRONMENT__ENV_PRODUCTION);
        bool escalation = al_notify_endpoint_wants (endpoint, "escalation", AIRLOCK__ENVIRONMENT__ENV_PRODUCTION);
        if (!rollback && !escalation)
            continue;
        fprintf (out, "%s `%s` (%s: %s%s%s)", printed++? ",": "", endpoint->name, al_notify_kind_name (endpoint->kind),
                 rollback? "rollback": "", rollback && escalation? ", ": "", escalation? "escalation": "");
    }
    fprintf (out, "%s\n\n", printed? ".": " no endpoint receives production rollbacks or escalations.");
    fprintf (out, "**Severity** (seed 001): P1 complete outage, immediate; P2 major feature broken, under 1 hour; "
                  "P3 minor feature, under 4 hours; P4 cosmetic, next business day.\n\n");
    fprintf (out, "**Emergency deployment** (P1/P2): a human declares it and submits with `--type emergency`; it needs ");
    s_quorum_text (out, al_policy_quorum (self->policy, AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_EMERGENCY));
    al_policy_quorum_t skip = al_policy_skip_staging_quorum (self->policy, AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_EMERGENCY);
    if (skip.count > 0) {
        fprintf (out, ", and ");
        s_quorum_text (out, skip);
        fprintf (out, " more to skip staging");
    }
    fprintf (out, ". Even emergencies require a human signature; review the incident fully afterwards.\n");
}

static int
s_render (const s_runbook_t *self, FILE *out)
{
    s_header (self, out);
    s_overview (self, out);
    s_deployment (self, out);
    s_operations (self, out);
    s_monitoring (self, out);
    s_rollback (self, out);
    s_qa (self, out);
    s_troubleshooting (self, out);
    s_escalation (self, out);
    return ferror (out)? -1: 0;
}

//  Write the runbook to path through a temporary file in the same directory and a
//  rename, so a reader never sees half a runbook. Returns 0, or -1 with the error printed.
static int
s_write_file (const s_runbook_t *self, const char *path)
{
    size_t length = strlen (path);
    char *temporary = (char *) malloc (length + 16);
    if (!temporary)
        return -1;
    snprintf (temporary, length + 16, "%s.tmp-XXXXXX", path);
    int rc = -1;
    FILE *file = NULL;
    int fd = mkstemp (temporary);
    if (fd < 0) {
        fprintf (stderr, "airlock runbook: cannot write %s: %s (temporary file %s)\n", path, strerror (errno), temporary);
        goto cleanup;
    }
    if (fchmod (fd, 0644) != 0 || !(file = fdopen (fd, "w"))) {
        fprintf (stderr, "airlock runbook: %s: %s\n", temporary, strerror (errno));
        close (fd);
        unlink (temporary);
        goto cleanup;
    }
    if (s_render (self, file) != 0 || fflush (file) != 0 || fsync (fileno (file)) != 0) {
        fprintf (stderr, "airlock runbook: %s: %s\n", temporary, strerror (errno));
        fclose (file);
        unlink (temporary);
        goto cleanup;
    }
    if (fclose (file) != 0 || rename (temporary, path) != 0) {
        fprintf (stderr, "airlock runbook: %s: %s\n", path, strerror (errno));
        unlink (temporary);
        goto cleanup;
    }
    rc = 0;
cleanup:
    free (temporary);
    return rc;
}

//  An exit code for a file that did not load: 2 when it cannot be read, 1 when invalid.
static int
s_load_failure (const char *path)
{
    return access (path, R_OK) == 0? AL_EXIT_BAD: AL_EXIT_USAGE;
}

//  --json: {"service", "environment", "configuration", "warnings": [...], and "out": FILE
//  (the runbook written there) or "markdown": the runbook itself}. Returns the exit code.
static int
s_print_json (s_runbook_t *self, const char *service, const char *out_path)
{
    char *markdown = NULL;
    size_t size = 0;
    if (out_path) {
        if (s_write_file (self, out_path) != 0)
            return AL_EXIT_USAGE;
    }
    else {
        FILE *memory = open_memstream (&markdown, &size);
        bool rendered = memory && s_render (self, memory) == 0;
        if (memory)
            fclose (memory);
        if (!rendered) {
            fprintf (stderr, "airlock runbook: cannot render the runbook\n");
            free (markdown);
            return AL_EXIT_USAGE;
        }
    }
    json_t *warnings = json_array ();
    for (size_t i = 0; i < self->warning_count; i++)
        json_array_append_new (warnings, json_string (self->warnings [i]));
    json_t *root = json_pack ("{s:s, s:s, s:s, s:o}", "service", service,
                              "environment", al_environment_name (self->env),
                              "configuration", al_config_path (self->config), "warnings", warnings);
    if (root && out_path)
        json_object_set_new (root, "out", json_string (out_path));
    else
    if (root)
        json_object_set_new (root, "markdown", json_string (markdown));
    free (markdown);
    int rc = root && json_dumpf (root, stdout, JSON_INDENT (2) | JSON_PRESERVE_ORDER) == 0? AL_EXIT_OK: AL_EXIT_USAGE;
    printf ("\n");
    json_decref (root);
    return rc;
}

int
al_cmd_runbook (int argc, char **argv)
{
    if (al_cli_wants_help (argc, argv)) {
        s_usage (stdout);
        return AL_EXIT_OK;
    }
    const char *config_option = NULL, *state_option = NULL;
    const char *service = NULL, *out_path = NULL, *env_name = "production";
    bool json = false;
    for (int index = 1; index < argc; index++) {
        const char *arg = argv [index];
        int taken = al_cli_config_option ("runbook", argc, argv, &index, &config_option, &state_option);
        if (taken < 0)
            return AL_EXIT_USAGE;
        if (taken)
            continue;
        if (strcmp (arg, "--json") == 0) {
            json = true;
            continue;
        }
        const char **slot = strcmp (arg, "--out") == 0? &out_path
                          : strcmp (arg, "--env") == 0? &env_name: NULL;
        if (slot && index + 1 < argc)
            *slot = argv [++index];
        else
        if (!slot && arg [0] != '-' && !service)
            service = arg;
        else {
            fprintf (stderr, "airlock runbook: %s '%s'\n\n", slot? "missing value after": "unexpected argument", arg);
            s_usage (stderr);
            return AL_EXIT_USAGE;
        }
    }
    if (!service) {
        fprintf (stderr, "airlock runbook: which service? (SERVICE is required)\n\n");
        s_usage (stderr);
        return AL_EXIT_USAGE;
    }
    char config_buffer [2048];
    const char *config_path = al_cli_config_path (config_option, state_option, config_buffer, sizeof config_buffer);
    if (!config_path) {
        fprintf (stderr, "airlock runbook: --state: path too long\n");
        return AL_EXIT_USAGE;
    }
    s_runbook_t self;
    memset (&self, 0, sizeof self);
    self.env = al_environment_from_name (env_name);
    if (self.env == AIRLOCK__ENVIRONMENT__ENV_UNSPECIFIED) {
        fprintf (stderr, "airlock runbook: --env: unknown environment '%s' (development, staging, production)\n", env_name);
        return AL_EXIT_USAGE;
    }

    int exit_code = AL_EXIT_USAGE;
    char error [8192];
    al_config_t *config = NULL;
    al_policy_t *policy = NULL;
    al_policy_errors_t *errors = NULL;
    al_services_t *services = NULL;
    config = al_config_load (config_path, error, sizeof error);
    if (!config) {
        fprintf (stderr, "airlock runbook: %s\n", error);
        exit_code = s_load_failure (config_path);
        goto cleanup;
    }
    policy = al_policy_load (al_config_policy_dir (config), &errors);
    if (!policy) {
        fprintf (stderr, "airlock runbook: the policy %s does not load:\n", al_config_policy_dir (config));
        for (size_t i = 0; i < al_policy_errors_count (errors); i++)
            fprintf (stderr, "%s\n", al_policy_errors_at (errors, i));
        exit_code = s_load_failure (al_config_policy_dir (config));
        goto cleanup;
    }
    const char *services_path = al_config_services_path (config);
    services = al_services_load (services_path, error, sizeof error);
    if (!services) {
        fprintf (stderr, "airlock runbook: %s\n", error);
        exit_code = s_load_failure (services_path);
        goto cleanup;
    }
    self.svc = al_services_find (services, service);
    if (!self.svc) {
        fprintf (stderr, "airlock runbook: no service '%s' in %s; configured services:", service, services_path);
        for (size_t i = 0; i < al_services_count (services); i++)
            fprintf (stderr, "%s %s", i? ",": "", al_services_at (services, i)->name);
        fprintf (stderr, "%s\n", al_services_count (services)? "": " none");
        exit_code = AL_EXIT_USAGE;
        goto cleanup;
    }
    self.config = config;
    self.policy = policy;
    self.services = services;
    exit_code = s_load_extras (&self);
    if (exit_code != 0)
        goto cleanup;
    s_check (&self);
    if (json) {
        exit_code = s_print_json (&self, service, out_path);
        goto cleanup;
    }
    if (out_path) {
        if (s_write_file (&self, out_path) != 0) {
            exit_code = AL_EXIT_USAGE;
            goto cleanup;
        }
        printf ("%s\n", out_path);
    }
    else
    if (s_render (&self, stdout) != 0 || fflush (stdout) != 0) {
        fprintf (stderr, "airlock runbook: standard output: %s\n", strerror (errno));
        exit_code = AL_EXIT_USAGE;
        goto cleanup;
    }
    exit_code = AL_EXIT_OK;
cleanup:
    for (size_t i = 0; i < self.warning_count; i++)
        free (self.warnings [i]);
    json_decref (self.policy_json);
    al_notify_config_destroy (&self.notify);
    al_migration_set_destroy (&self.migrations);
    al_services_destroy (&services);
    al_policy_errors_destroy (&errors);
    al_policy_destroy (&policy);
    al_config_destroy (&config);
    return exit_code;
}
