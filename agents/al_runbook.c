/*  al_runbook.c: the runbook's configuration and its checks (see al_runbook.h).

    Loads what the sections need beyond the caller's files (the canonical policy,
    notifications.yaml, the migration set), collects the configuration warnings
    (pre-flight's checks through deploy/al_preflight, quorums, soak, notifications) and
    writes the runbook atomically. The sections themselves are al_runbook_render.c;
    the helpers both use are declared in al_runbook_int.h.
*/
#include "agents/al_runbook_int.h"
#include "agents/al_notifier.h"
#include "base/al_error.h"
#include "base/al_file.h"
#include "deploy/al_deployer.h"
#include "deploy/al_preflight.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

//  ---- small helpers ------------------------------------------------------------------

static void
s_warn (al_runbook_t *self, const char *format, ...)
{
    if (self->warning_count == AL_RUNBOOK__WARNINGS_MAX)
        return;
    char text [1024];
    va_list args;
    va_start (args, format);
    al_error_vset (text, sizeof text, format, args);
    va_end (args);
    self->warnings [self->warning_count] = strdup (text);
    if (self->warnings [self->warning_count])
        self->warning_count++;
}

//  A duration for humans: "60 min", "1 h", "1.5 s", "250 ms".
const char *
al_runbook__duration (int64_t ms, char *buffer, size_t size)
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
const char *
al_runbook__number (double value, char *buffer, size_t size)
{
    snprintf (buffer, size, "%.6g", value);
    return buffer;
}

//  A scalar of the canonical policy as text (names and ids may have been numbers).
const char *
al_runbook__json_text (json_t *value, char *buffer, size_t size)
{
    if (json_is_string (value))
        return json_string_value (value);
    if (json_is_integer (value))
        snprintf (buffer, size, "%lld", (long long) json_integer_value (value));
    else
    if (json_is_real (value))
        al_runbook__number (json_real_value (value), buffer, size);
    else
    if (json_is_boolean (value))
        snprintf (buffer, size, "%s", json_is_true (value)? "true": "false");
    else
        snprintf (buffer, size, "?");
    return buffer;
}

//  Text inside a Markdown table cell: '|' escaped, line breaks as spaces.
void
al_runbook__cell (FILE *out, const char *text)
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
void
al_runbook__shell_word (FILE *out, const char *text)
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
void
al_runbook__argv (FILE *out, const char *const *argv, bool in_table)
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

const Airlock__Environment al_runbook__envs [AL_RUNBOOK__ENV_COUNT] = {
    AIRLOCK__ENVIRONMENT__ENV_DEVELOPMENT, AIRLOCK__ENVIRONMENT__ENV_STAGING, AIRLOCK__ENVIRONMENT__ENV_PRODUCTION
};

const Airlock__DeploymentType al_runbook__types [AL_RUNBOOK__TYPE_COUNT] = {
    AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD, AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_HOTFIX,
    AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_ROLLBACK, AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_SCHEDULED,
    AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_EMERGENCY
};

//  ---- what the policy says, through its canonical JSON --------------------------------

json_t *
al_runbook__policy_file (const al_runbook_t *self, const char *file)
{
    return json_object_get (self->policy_json, file);
}

json_t *
al_runbook__approvers (const al_runbook_t *self)
{
    return json_object_get (al_runbook__policy_file (self, "approvers.yaml"), "approvers");
}

bool
al_runbook__has_role (json_t *approver, const char *role)
{
    size_t index;
    json_t *value;
    json_array_foreach (json_object_get (approver, "roles"), index, value) {
        char buffer [64];
        if (strcmp (al_runbook__json_text (value, buffer, sizeof buffer), role) == 0)
            return true;
    }
    return false;
}

//  People who can sign for role: an approver holding it with at least one valid key
//  (each person counts once, whatever keys they hold: docs/approvals.md).
size_t
al_runbook__people_with_role (const al_runbook_t *self, const char *role)
{
    size_t count = 0, index;
    json_t *approver;
    json_array_foreach (al_runbook__approvers (self), index, approver)
        count += al_runbook__has_role (approver, role) && json_array_size (json_object_get (approver, "keys")) > 0;
    return count;
}

//  "alice, carol" for role, or "nobody".
void
al_runbook__names_with_role (const al_runbook_t *self, FILE *out, const char *role)
{
    size_t printed = 0, index;
    json_t *approver;
    json_array_foreach (al_runbook__approvers (self), index, approver) {
        if (!al_runbook__has_role (approver, role) || json_array_size (json_object_get (approver, "keys")) == 0)
            continue;
        char buffer [64];
        fputs (printed++? ", ": "", out);
        al_runbook__cell (out, al_runbook__json_text (json_object_get (approver, "name"), buffer, sizeof buffer));
    }
    if (printed == 0)
        fprintf (out, "nobody (no approver holds %s)", role);
}

//  "1 manager + 1 security", or "none".
void
al_runbook__quorum_text (FILE *out, al_policy_quorum_t quorum)
{
    if (quorum.count == 0)
        fputs ("none", out);
    for (size_t i = 0; i < quorum.count; i++)
        fprintf (out, "%s%u %s", i? " + ": "", quorum.entries [i].count, quorum.entries [i].role);
}

//  Can approvers.yaml meet quorum (plus extra, from other people)? Says why not in why.
bool
al_runbook__quorum_feasible (const al_runbook_t *self, al_policy_quorum_t quorum, al_policy_quorum_t extra,
                   char *why, size_t why_size)
{
    size_t needed = 0;
    *why = 0;
    const al_policy_quorum_t parts [2] = { quorum, extra };
    for (int p = 0; p < 2; p++)
        for (size_t i = 0; i < parts [p].count; i++) {
            size_t have = al_runbook__people_with_role (self, parts [p].entries [i].role);
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
    json_array_foreach (al_runbook__approvers (self), index, approver) {
        bool useful = false;
        for (int p = 0; p < 2; p++)
            for (size_t i = 0; i < parts [p].count; i++)
                useful |= al_runbook__has_role (approver, parts [p].entries [i].role);
        people += useful && json_array_size (json_object_get (approver, "keys")) > 0;
    }
    if (people < needed) {
        snprintf (why, why_size, "it needs %zu distinct people, approvers.yaml has %zu who hold those roles",
                  needed, people);
        return false;
    }
    return true;
}

//  ---- checking ----------------------------------------------------------------------

//  The soak deploy-manager runs in env (al_deployer_soak_ms: the same function).
int64_t
al_runbook__soak_ms (const al_runbook_t *self, Airlock__Environment env)
{
    return al_deployer_soak_ms (self->policy, self->svc, env, NULL, NULL, 0);
}

unsigned
al_runbook__health_limit (const al_runbook_t *self)
{
    const al_policy_thresholds_t *thresholds = al_policy_thresholds (self->policy);
    if (thresholds && thresholds->health_check_failures_more_than > 0)
        return thresholds->health_check_failures_more_than;
    return self->svc->health_failures;
}

//  Every check deploy-manager's pre-flight, the approval gate or the monitor would make
//  against the configuration alone, as warnings.
static void
s_check (al_runbook_t *self)
{
    const al_service_t *svc = self->svc;
    const char *where = al_services_path (self->services);
    char a [64], b [64];
    const Airlock__Environment pipeline [] = { AIRLOCK__ENVIRONMENT__ENV_STAGING, AIRLOCK__ENVIRONMENT__ENV_PRODUCTION };
    char detail [AL_PREFLIGHT_DETAIL_SIZE];
    for (size_t i = 0; i < 2; i++) {
        //  Pre-flight's own checks (deploy/al_preflight), never a copy of them.
        Airlock__Environment env = pipeline [i];
        const char *name = al_environment_name (env);
        Airlock__Strategy strategy = al_service_strategy (svc, env);
        unsigned instances = al_service_instances (svc, env);
        if (!al_preflight_strategy (self->policy, env, strategy, detail, sizeof detail))
            s_warn (self, "%s:%zu: services.%s.strategy is %s in %s, which constraints.yaml does not allow "
                    "there: pre-flight refuses every %s deployment (strategy_allowed: %s)", where, svc->line,
                    svc->name, al_strategy_name (strategy), name, name, detail);
        if (!al_preflight_instances (self->policy, env, instances, detail, sizeof detail))
            s_warn (self, "%s:%zu: services.%s.instances in %s: pre-flight refuses every %s deployment "
                    "(max_instances: %s)", where, svc->line, svc->name, name, name, detail);
        if (!al_preflight_budget (self->policy, svc, env, instances, detail, sizeof detail))
            s_warn (self, "%s:%zu: services.%s in %s: pre-flight refuses every %s deployment (monthly_budget: %s)",
                    where, svc->line, svc->name, name, name, detail);
    }
    if (!al_preflight_observability (svc, detail, sizeof detail))
        s_warn (self, "%s:%zu: services.%s: pre-flight refuses every deployment (observability: %s)", where,
                svc->line, svc->name, detail);
    const al_policy_thresholds_t *thresholds = al_policy_thresholds (self->policy);
    if (thresholds && thresholds->liveness_path && strcmp (thresholds->liveness_path, svc->liveness_path) != 0)
        s_warn (self, "%s:%zu: services.%s probes liveness at %s, quality_rules.yaml's health_checks name %s: "
                "the driver and the soak probe %s", where, svc->line, svc->name, svc->liveness_path, thresholds->liveness_path, svc->liveness_path);
    if (thresholds && thresholds->readiness_path && strcmp (thresholds->readiness_path, svc->readiness_path) != 0)
        s_warn (self, "%s:%zu: services.%s probes readiness at %s, quality_rules.yaml's health_checks name %s: "
                "the driver and the soak probe %s", where, svc->line, svc->name, svc->readiness_path, thresholds->readiness_path, svc->readiness_path);
    const al_policy_soak_t *soak = al_policy_soak (self->policy);
    int64_t effective = al_runbook__soak_ms (self, AIRLOCK__ENVIRONMENT__ENV_STAGING);
    if (soak && effective < svc->soak_ms)
        s_warn (self, "%s:%zu: services.%s.soak_ms %s is capped by quality_rules.yaml's soak duration %s",
                where, svc->line, svc->name, al_runbook__duration (svc->soak_ms, a, sizeof a), al_runbook__duration (effective, b, sizeof b));
    bool shortened = false;
    int64_t production = al_deployer_soak_ms (self->policy, svc, AIRLOCK__ENVIRONMENT__ENV_PRODUCTION, &shortened, NULL, 0);
    if (soak && soak->checkpoint_count > 0 && shortened) {
        size_t within = 0;
        for (size_t i = 0; i < soak->checkpoint_count; i++)
            within += soak->checkpoints_ms [i] <= production;
        s_warn (self, "%s:%zu: services.%s.soak shortens the production soak to %s (reason: %s): %zu of the %zu "
                "checkpoints of quality_rules.yaml fall within it, then the all-normal check at its end",
                where, svc->line, svc->name, al_runbook__duration (production, a, sizeof a), svc->soak_reason, within,
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
    for (size_t i = 0; i < AL_RUNBOOK__TYPE_COUNT; i++) {
        al_policy_quorum_t quorum = al_policy_quorum (self->policy, al_runbook__types [i]);
        if (!al_runbook__quorum_feasible (self, quorum, none, why, sizeof why))
            s_warn (self, "approvers.yaml: no %s deployment of %s can be approved: %s",
                    al_deployment_type_name (al_runbook__types [i]), svc->name, why);
    }
    al_policy_quorum_t standard = al_policy_quorum (self->policy, AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD);
    al_policy_quorum_t glass = al_policy_break_glass (self->policy);
    if (glass.count > 0 && !al_runbook__quorum_feasible (self, standard, glass, why, sizeof why))
        s_warn (self, "approvers.yaml: a freeze cannot be broken (break-glass on top of a standard quorum): %s", why);
    //  Data.
    if (svc->migrations && !self->migrations)
        s_warn (self, "migrations: %s: pre-flight fails until the migration set loads", self->migrations_error);
    if (self->migrations) {
        //  Pre-flight's migration checks as production runs them, for the set as it is.
        al_migration_set_t *set = self->migrations;
        json_t *checks = json_array ();
        al_preflight_add_migrations (checks, svc, AIRLOCK__ENVIRONMENT__ENV_PRODUCTION,
                                     al_migration_set_digest (set), &set);
        assert (set == self->migrations);
        size_t index;
        json_t *item;
        json_array_foreach (checks, index, item)
            if (!json_is_true (json_object_get (item, "ok")))
                s_warn (self, "migrations: %s (pre-flight's %s)", json_string_value (json_object_get (item, "detail")),
                        json_string_value (json_object_get (item, "check")));
        json_decref (checks);
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

//  The canonical policy, notifications.yaml and the migration set. 0, or -1 with error
//  filled.
static int
s_load_extras (al_runbook_t *self, char *error, size_t size)
{
    self->policy_json = json_loads (al_policy_canonical_json (self->policy), 0, NULL);
    if (!self->policy_json) {
        snprintf (error, size, "%s: cannot read the policy's canonical form", al_policy_dir (self->policy));
        return -1;
    }
    char *notify_path = al_notifier_config_path (self->config);
    snprintf (self->notify_path, sizeof self->notify_path, "%.1000s", notify_path? notify_path: "notifications.yaml");
    free (notify_path);
    struct stat info;
    self->notify_present = stat (self->notify_path, &info) == 0;
    if (self->notify_present)
        self->notify = al_notify_config_load (self->notify_path, self->notify_error, sizeof self->notify_error);
    if (self->notify)
        self->notify_error [0] = 0;
    if (self->svc->migrations)
        self->migrations = al_migration_set_load (self->svc->migrations, self->migrations_error,
                                                  sizeof self->migrations_error);
    return 0;
}

al_runbook_t *
al_runbook_new (const al_config_t *config, const al_policy_t *policy, const al_services_t *services,
                const al_service_t *svc, Airlock__Environment env, char *error, size_t size)
{
    assert (config && policy && services && svc && error);
    al_runbook_t *self = (al_runbook_t *) calloc (1, sizeof *self);
    if (!self) {
        snprintf (error, size, "out of memory");
        return NULL;
    }
    self->config = config;
    self->policy = policy;
    self->services = services;
    self->svc = svc;
    self->env = env;
    if (s_load_extras (self, error, size) != 0) {
        al_runbook_destroy (&self);
        return NULL;
    }
    s_check (self);
    return self;
}

void
al_runbook_destroy (al_runbook_t **self_p)
{
    assert (self_p);
    al_runbook_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->warning_count; i++)
        free (self->warnings [i]);
    json_decref (self->policy_json);
    al_notify_config_destroy (&self->notify);
    al_migration_set_destroy (&self->migrations);
    free (self);
    *self_p = NULL;
}

size_t
al_runbook_warning_count (const al_runbook_t *self)
{
    assert (self);
    return self->warning_count;
}

const char *
al_runbook_warning_at (const al_runbook_t *self, size_t index)
{
    assert (self);
    return index < self->warning_count? self->warnings [index]: NULL;
}

const char *
al_runbook_notify_error (const al_runbook_t *self)
{
    assert (self);
    return self->notify_present && !self->notify? self->notify_error: NULL;
}

int
al_runbook_write (const al_runbook_t *self, const char *path, char *error, size_t size)
{
    assert (self && path && error);
    char *markdown = NULL;
    size_t length = 0;
    FILE *memory = open_memstream (&markdown, &length);
    if (!memory) {
        al_error_set (error, size, "%s: cannot render the runbook: %s", path, strerror (errno));
        return -1;
    }
    bool rendered = al_runbook_render (self, memory) == 0;
    if (fclose (memory) != 0 || !rendered) {
        al_error_set (error, size, "%s: cannot render the runbook", path);
        free (markdown);
        return -1;
    }
    int rc = al_file_write_atomic (path, markdown, length, 0644, error, size);
    free (markdown);
    return rc;
}
