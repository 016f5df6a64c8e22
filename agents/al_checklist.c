/*  al_checklist.c: the production request's checklist, computed from evidence.

    See al_checklist.h. Items are appended in the order seed 001 lists the sections;
    every text is formatted into memory the checklist owns, so the items can be handed
    to the codec as they are. Single-threaded use of one checklist.
*/
#include "agents/al_checklist.h"
#include "base/al_paths.h"
#include "agents/al_notify_config.h"
#include "deploy/al_migrate.h"
#include "policies/al_approval_gate.h"
#include <assert.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_ITEMS 16
#define S_TEXT_SIZE 2048

struct _al_checklist_t {
    Airlock__ChecklistItem items [S_MAX_ITEMS];
    Airlock__ChecklistItem *list [S_MAX_ITEMS];
    char *texts [S_MAX_ITEMS];
    size_t count;
};

static void
s_add (al_checklist_t *self, const char *section, bool checked, const char *format, ...)
    __attribute__ ((format (printf, 4, 5)));

static void
s_add (al_checklist_t *self, const char *section, bool checked, const char *format, ...)
{
    assert (self->count < S_MAX_ITEMS);
    char *text = (char *) malloc (S_TEXT_SIZE);
    assert (text);
    va_list args;
    va_start (args, format);
    vsnprintf (text, S_TEXT_SIZE, format, args);
    va_end (args);
    Airlock__ChecklistItem *item = &self->items [self->count];
    airlock__checklist_item__init (item);
    item->section = (char *) section;
    item->text = text;
    item->checked = checked;
    self->texts [self->count] = text;
    self->list [self->count] = item;
    self->count++;
}

static const char *
s_get (const json_t *object, const char *key)
{
    const char *value = json_string_value (json_object_get (object, key));
    return value? value: "";
}

//  "a; b; c" of a JSON array of strings into buffer.
static void
s_join (const json_t *list, char *buffer, size_t size)
{
    buffer [0] = 0;
    size_t index;
    json_t *entry;
    json_array_foreach ((json_t *) list, index, entry) {
        size_t used = strlen (buffer);
        if (used + 1 >= size)
            break;
        snprintf (buffer + used, size - used, "%s%s", used? "; ": "", json_string_value (entry)?
                  json_string_value (entry): "?");
    }
}

//  ---- Tests Passed ---------------------------------------------------------------------

//  The kinds of suite an approver asks about, and how a suite's name says its kind: the
//  kind itself or the kind followed by '-' or '_' ("unit", "unit-core", "e2e_checkout").
static const struct {
    const char *label;
    const char *prefixes [3];
} s_kinds [] = {
    { "Unit", { "unit", "unittest", NULL } },
    { "Integration", { "integration", "it", NULL } },
    { "E2E", { "e2e", "end-to-end", "end_to_end" } },
};
#define S_KIND_COUNT (sizeof s_kinds / sizeof s_kinds [0])

static int
s_kind_of (const char *name)
{
    for (size_t k = 0; k < S_KIND_COUNT; k++)
        for (size_t p = 0; p < 3 && s_kinds [k].prefixes [p]; p++) {
            size_t length = strlen (s_kinds [k].prefixes [p]);
            if (strncasecmp (name, s_kinds [k].prefixes [p], length) == 0
            &&  (name [length] == 0 || name [length] == '-' || name [length] == '_'))
                return (int) k;
        }
    return -1;
}

static void
s_tests (al_checklist_t *self, const al_checklist_input_t *input)
{
    const json_t *release = input->release;
    const json_t *qa = json_object_get (release, "qa");
    const char *type_name = s_get (release, "type");
    Airlock__DeploymentType type = al_deployment_type_from_name (type_name);
    const char *report = s_get (qa, "report_sha256");
    bool no_report = !*report || strcmp (report, AL_APPROVAL_GATE_NO_QA_REPORT) == 0;
    if (no_report && al_policy_requires_staging (input->policy, type)) {
        s_add (self, "Tests Passed", false, "NONE: staging skipped (%s); no QA report stands behind this request",
               type_name);
        return;
    }
    if (no_report) {
        s_add (self, "Tests Passed", false, AL_CHECKLIST_NOT_APPLICABLE "no new QA report: %s deployments "
               "need none (deployment_types.yaml)", type_name);
        return;
    }
    long long passed = json_integer_value (json_object_get (qa, "passed"));
    long long failed = json_integer_value (json_object_get (qa, "failed"));
    long long skipped = json_integer_value (json_object_get (qa, "skipped"));
    s_add (self, "Tests Passed", failed == 0 && passed > 0, "%lld/%lld passed (%lld skipped), QA report sha256 %.12s...",
           passed, passed + failed, skipped, report);
    const json_t *suites = json_object_get (qa, "suites");
    if (!json_is_array (suites)) {
        s_add (self, "Tests Passed", false, "per-suite counts: not recorded with this QA report");
        return;
    }
    //  One line per kind, then whatever ran that is of no kind (the smoke and health
    //  checks, suites with other names).
    char others [S_TEXT_SIZE] = "";
    long long other_failed = 0;
    for (size_t k = 0; k <= S_KIND_COUNT; k++) {
        long long kind_passed = 0, kind_failed = 0, kind_skipped = 0;
        char names [512] = "";
        size_t ran = 0, index;
        json_t *suite;
        json_array_foreach ((json_t *) suites, index, suite) {
            const char *name = s_get (suite, "name");
            int kind = s_kind_of (name);
            if (k < S_KIND_COUNT? kind != (int) k: kind >= 0)
                continue;
            long long p = json_integer_value (json_object_get (suite, "passed"));
            long long f = json_integer_value (json_object_get (suite, "failed"));
            long long s = json_integer_value (json_object_get (suite, "skipped"));
            kind_passed += p;
            kind_failed += f;
            kind_skipped += s;
            size_t used = strlen (names);
            if (k < S_KIND_COUNT)
                snprintf (names + used, sizeof names - used, "%s%s", used? ", ": "", name);
            else {
                size_t at = strlen (others);
                snprintf (others + at, sizeof others - at, "%s%s %lld/%lld passed", at? "; ": "", name, p, p + f);
            }
            ran++;
        }
        if (k == S_KIND_COUNT) {
            other_failed = kind_failed;
            break;
        }
        if (ran == 0)
            s_add (self, "Tests Passed", false, "%s tests: no suite of that kind ran", s_kinds [k].label);
        else
            s_add (self, "Tests Passed", kind_failed == 0 && kind_passed > 0, "%s tests: %lld/%lld passed "
                   "(%lld skipped) in %s", s_kinds [k].label, kind_passed, kind_passed + kind_failed, kind_skipped, names);
    }
    if (*others)
        s_add (self, "Tests Passed", other_failed == 0, "Other suites and checks: %s", others);
}

//  ---- Database Changes -----------------------------------------------------------------

static void
s_database (al_checklist_t *self, const al_checklist_input_t *input)
{
    const al_service_t *svc = input->service;
    const char *wanted = s_get (input->release, "migration_set_sha256");
    if (!svc || !svc->migrations) {
        if (*wanted)
            s_add (self, "Database Changes", false, "the request names migration set sha256 %.12s... but "
                   "services.yaml has none for this service: pre-flight will refuse it", wanted);
        else
            s_add (self, "Database Changes", false, AL_CHECKLIST_NOT_APPLICABLE "no migration set "
                   "(services.yaml): no database changes");
        return;
    }
    char error [512] = "";
    al_migration_set_t *set = al_migration_set_load (svc->migrations, error, sizeof error);
    if (!set) {
        s_add (self, "Database Changes", false, "the migration set cannot be read: %s", error);
        return;
    }
    char steps [1024] = "";
    size_t count = al_migration_set_count (set);
    for (size_t i = 0; i < count; i++) {
        const al_migration_step_t *step = al_migration_set_step (set, i);
        size_t used = strlen (steps);
        snprintf (steps + used, sizeof steps - used, "%s%03u_%s%s", used? ", ": "", step->number, step->name,
                  step->down_sha256? "": step->forward_only? " (forward-only)": " (no down script)");
    }
    const char *digest = al_migration_set_digest (set);
    bool matches = strcmp (digest, wanted) == 0;
    int reversible = al_migration_set_check_reversible (set, true, error, sizeof error);
    const char *data_rollback = svc->data_rollback == AL_SERVICE_DATA_ROLLBACK_RESTORE?
        "restore the verified pre-deploy backup": "down scripts, else restore the verified pre-deploy backup";
    //  deploy-manager runs down scripts only when a deploy fails: a staging run that
    //  succeeded (the only kind that reaches this request) never exercised them.
    s_add (self, "Database Changes", matches && reversible == 0,
           "%zu migration(s): %s; set sha256 %.12s...%s; backup taken and verified before migrating; "
           "rollback: %s%s%s; rollback NOT rehearsed in staging (down scripts run only when a deploy fails)",
           count, *steps? steps: "(none)", digest,
           *wanted? (matches? " (the one this request signs)": ", NOT the one this request signs: pre-flight will refuse")
                   : ", but the request names none: pre-flight will refuse",
           data_rollback, reversible == 0? "": "; ", reversible == 0? "": error);
    al_migration_set_destroy (&set);
}

//  ---- Dependencies, Breaking Changes: declared by the submitter -------------------------

static void
s_declarations (al_checklist_t *self, const al_checklist_input_t *input)
{
    const json_t *release = input->release;
    const json_t *dependencies = json_object_get (release, "dependencies_added");
    char list [S_TEXT_SIZE - 128];
    s_join (dependencies, list, sizeof list);
    if (json_array_size (dependencies) > 0)
        s_add (self, "Dependencies", true, "declared by the submitter (airlock does not check it): adds %s", list);
    else
    if (json_is_true (json_object_get (release, "no_dependencies_added")))
        s_add (self, "Dependencies", true, "declared by the submitter (airlock does not check it): no new dependency");
    else
        s_add (self, "Dependencies", false, "not declared (airlock submit --dependency NAME@VERSION | --no-new-dependencies)");
    const char *breaking = s_get (release, "breaking_changes");
    if (*breaking)
        s_add (self, "Breaking Changes", true, "declared by the submitter (airlock does not check it): %.1800s", breaking);
    else
    if (json_is_true (json_object_get (release, "no_breaking_changes")))
        s_add (self, "Breaking Changes", true, "declared by the submitter (airlock does not check it): none");
    else
        s_add (self, "Breaking Changes", false, "not declared (airlock submit --breaking-changes TEXT | --no-breaking-changes)");
}

//  ---- Monitoring ---------------------------------------------------------------------

//  The endpoints of notifications.yaml that hear about a production rollback.
static void
s_routes (const char *state_dir, char *routes, size_t size, char *problem, size_t problem_size)
{
    routes [0] = 0;
    problem [0] = 0;
    if (!state_dir) {
        snprintf (problem, problem_size, "no state directory");
        return;
    }
    char path [1024], error [1024] = "";
    if (al_paths_get (state_dir, AL_PATH_NOTIFICATIONS_YAML, path, sizeof path, problem, problem_size) != 0)
        return;
    FILE *probe = fopen (path, "r");
    if (!probe) {
        snprintf (problem, problem_size, "no %.400s", path);
        return;
    }
    fclose (probe);
    al_notify_config_t *config = al_notify_config_load (path, error, sizeof error);
    if (!config) {
        snprintf (problem, problem_size, "%.*s", (int) (strcspn (error, "\n") < 400? strcspn (error, "\n"): 400), error);
        return;
    }
    for (size_t i = 0; i < al_notify_config_count (config); i++) {
        const al_notify_endpoint_t *endpoint = al_notify_config_at (config, i);
        if (!al_notify_endpoint_wants (endpoint, "rollback", AIRLOCK__ENVIRONMENT__ENV_PRODUCTION))
            continue;
        size_t used = strlen (routes);
        snprintf (routes + used, size - used, "%s%s (%s)", used? ", ": "", endpoint->name,
                  al_notify_kind_name (endpoint->kind));
    }
    al_notify_config_destroy (&config);
}

static void
s_monitoring (al_checklist_t *self, const al_checklist_input_t *input)
{
    const al_service_t *svc = input->service;
    const al_policy_thresholds_t *rules = al_policy_thresholds (input->policy);
    char routes [512], problem [512];
    s_routes (input->state_dir, routes, sizeof routes, problem, sizeof problem);
    char notify [1100];
    if (*routes)
        snprintf (notify, sizeof notify, "a rollback is announced to %s", routes);
    else
        snprintf (notify, sizeof notify, "NO notification route hears of a production rollback (%s)",
                  *problem? problem: "notifications.yaml names none");
    if (!svc) {
        s_add (self, "Monitoring", false, "the service is not in services.yaml: nothing watches it; %s", notify);
        return;
    }
    if (svc->signals == AL_SERVICE_SIGNALS_MONITOR)
        s_add (self, "Monitoring", *routes != 0, "golden signals from the monitor (%s on each instance) and "
               "liveness/readiness probes; rollback on >%u failed health checks, error rate +%g points, p99 > %gx "
               "baseline, CPU > %g%%, memory > %g%% (quality_rules.yaml); %s",
               svc->metrics_path? svc->metrics_path: "/metrics", rules->health_check_failures_more_than,
               rules->error_rate_increase_more_than_points, rules->latency_p99_more_than_baseline_factor,
               rules->cpu_percent_more_than, rules->memory_percent_more_than, notify);
    else
        s_add (self, "Monitoring", false, "health probes only (services.yaml signals: probes): rollback on >%u "
               "failed health checks; no error-rate, latency or saturation rule watches this service; %s",
               rules->health_check_failures_more_than, notify);
}

//  ---- the checklist ------------------------------------------------------------------

al_checklist_t *
al_checklist_new (const al_checklist_input_t *input)
{
    assert (input && input->policy && input->release);
    al_checklist_t *self = (al_checklist_t *) calloc (1, sizeof *self);
    assert (self);
    const json_t *release = input->release;
    const char *type_name = s_get (release, "type");
    Airlock__DeploymentType type = al_deployment_type_from_name (type_name);

    char changes [S_TEXT_SIZE - 64];
    s_join (json_object_get (release, "changes"), changes, sizeof changes);
    if (*changes)
        s_add (self, "Changes Included", true, "%s", changes);
    else
        s_add (self, "Changes Included", false, "(none listed: airlock submit --changes FILE)");
    s_tests (self, input);
    s_database (self, input);
    s_declarations (self, input);
    s_add (self, "Rollback Plan", true, "automatic on any quality-rule breach during soak; manual: airlock rollback %s",
           s_get (release, "release_id"));
    s_monitoring (self, input);
    s_add (self, "Risk Level", true, "%s (%s deployment)", input->risk? input->risk: "?", type_name);

    char explanation [200] = "";
    bool open = al_policy_window_open (input->policy, AIRLOCK__ENVIRONMENT__ENV_PRODUCTION, input->now,
                                       explanation, sizeof explanation);
    //  A type that does not require a window is not blocked by a closed one: say so, so the
    //  approver does not read an unticked box as a refusal to come.
    bool window_required = al_policy_requires_window (input->policy, type);
    json_int_t scheduled_start = json_integer_value (json_object_get (release, "window_start_ms"));
    json_int_t scheduled_end = json_integer_value (json_object_get (release, "window_end_ms"));
    char scheduled [96] = "";
    if (scheduled_end) {
        time_t start = (time_t) (scheduled_start / 1000), end = (time_t) (scheduled_end / 1000);
        struct tm start_tm, end_tm;
        char start_text [32] = "", end_text [32] = "";
        if (gmtime_r (&start, &start_tm) && gmtime_r (&end, &end_tm)) {
            strftime (start_text, sizeof start_text, "%Y-%m-%d %H:%M", &start_tm);
            strftime (end_text, sizeof end_text, "%Y-%m-%d %H:%M", &end_tm);
        }
        snprintf (scheduled, sizeof scheduled, "; scheduled for %s to %s UTC", start_text, end_text);
    }
    s_add (self, "Deployment Window", open || !window_required, "%s%s%s%s", open? "open: ": "closed: ", explanation,
           open || window_required? "": "; not required for this deployment type", scheduled);
    return self;
}

void
al_checklist_destroy (al_checklist_t **self_p)
{
    assert (self_p);
    al_checklist_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->count; i++)
        free (self->texts [i]);
    free (self);
    *self_p = NULL;
}

size_t
al_checklist_size (const al_checklist_t *self)
{
    assert (self);
    return self->count;
}

Airlock__ChecklistItem **
al_checklist_items (al_checklist_t *self)
{
    assert (self);
    return self->list;
}

json_t *
al_checklist_suites_json (const Airlock__QaReport *report)
{
    json_t *suites = json_array ();
    assert (suites);
    for (size_t i = 0; report && i < report->n_suites; i++) {
        const Airlock__SuiteResult *suite = report->suites [i];
        json_array_append_new (suites, json_pack ("{s:s, s:I, s:I, s:I}", "name", suite->name? suite->name: "?",
                                                  "passed", (json_int_t) suite->passed,
                                                  "failed", (json_int_t) suite->failed,
                                                  "skipped", (json_int_t) suite->skipped));
    }
    return suites;
}
