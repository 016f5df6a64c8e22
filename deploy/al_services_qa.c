/*  al_services_qa.c: the qa: key of a service in services.yaml: smoke checks,
    command suites and scanners, and the default liveness smoke check when qa.smoke
    is absent. The schema is in docs/drivers.md.
*/
#include "deploy/al_services_int.h"
#include "base/al_yaml.h"
#include "proto/al_codec.h"
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

typedef al_services_loader_t s_loader_t;

//  ---------------------------------------------------------------------------------
//  QA: smoke checks and command suites

//  A smoke check or suite name: [a-z0-9_-]{1,32}.
static bool
s_is_qa_name (const char *value)
{
    size_t length = strlen (value);
    if (length == 0 || length > AL_SERVICE_QA_NAME_MAX)
        return false;
    for (size_t i = 0; i < length; i++) {
        char c = value [i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return true;
}

//  The name key of a smoke check or suite entry, pooled; NULL (with an error) when it
//  is not a name or repeats one of the count entries before it (read with name_at).
static const char *
s_qa_entry_name (s_loader_t *L, yaml_node_t *entry, const char *item, const char *what,
                 const char *(*name_at) (const void *, size_t), const void *entries, size_t count)
{
    yaml_node_t *value = al_yaml_get (L->yaml, entry, "name");
    if (!value)
        return NULL;        // al_yaml_check_map reported it missing
    char sub [AL_YAML_FIELD_SIZE];
    al_yaml_field_key (sub, item, "name");
    const char *name = al_yaml_string (L->yaml, value, sub, false);
    if (!name)
        return NULL;
    if (!s_is_qa_name (name)) {
        al_yaml_error (L->yaml, value, sub, "'%.64s' is not 1 to %d of [a-z0-9_-]", name,
                       AL_SERVICE_QA_NAME_MAX);
        return NULL;
    }
    for (size_t i = 0; i < count; i++) {
        const char *prior = name_at (entries, i);
        if (prior && strcmp (prior, name) == 0) {
            al_yaml_error (L->yaml, value, sub, "%s '%s' is given twice", what, name);
            return NULL;
        }
    }
    const char *copy = al_services_pool_strdup (L->self, name);
    if (!copy)
        al_yaml_out_of_memory (L->yaml);
    return copy;
}

static const char *
s_smoke_name_at (const void *entries, size_t index)
{
    return ((const al_service_smoke_t *) entries) [index].name;
}

static const char *
s_suite_name_at (const void *entries, size_t index)
{
    return ((const al_service_suite_t *) entries) [index].name;
}

//  qa.smoke[index]: one smoke check (an al_services_entry_fn).
static bool
s_qa_smoke_check (s_loader_t *L, void *entries, size_t i, yaml_node_t *entry, const char *item)
{
    al_service_smoke_t *checks = entries;
    bool ok = true;
    al_service_smoke_t *check = &checks [i];
    check->status = AL_SERVICE_DEFAULT_QA_STATUS;
    check->name = s_qa_entry_name (L, entry, item, "smoke check", s_smoke_name_at, checks, i);
    char sub [AL_YAML_FIELD_SIZE];
    yaml_node_t *value;
    if ((value = al_yaml_get (L->yaml, entry, "path"))) {
        al_yaml_field_key (sub, item, "path");
        check->path = al_services_http_path (L, value, sub);
    }
    if ((value = al_yaml_get (L->yaml, entry, "status"))) {
        al_yaml_field_key (sub, item, "status");
        if (!al_services_integer_into_int (L, value, sub, 100, 599, &check->status))
            ok = false;
    }
    if ((value = al_yaml_get (L->yaml, entry, "body_contains"))) {
        al_yaml_field_key (sub, item, "body_contains");
        const char *text = al_yaml_string (L->yaml, value, sub, false);
        if (text && strlen (text) > AL_SERVICES_MAX_BODY_TEXT)
            al_yaml_error (L->yaml, value, sub, "longer than %d bytes", AL_SERVICES_MAX_BODY_TEXT);
        else
        if (text && !(check->body_contains = al_services_pool_strdup (L->self, text)))
            al_yaml_out_of_memory (L->yaml);
        if (!check->body_contains)
            ok = false;
    }
    if (!check->name || !check->path)
        ok = false;
    return ok;
}

static void
s_qa_smoke (s_loader_t *L, al_service_t *svc, yaml_node_t *node, const char *field)
{
    static const char *const allowed [] = { "name", "path", "status", "body_contains", NULL };
    static const char *const required [] = { "name", "path", NULL };
    size_t count;
    al_service_smoke_t *checks = al_services_entry_list (L, node, field, sizeof *checks, allowed, required,
                                               s_qa_smoke_check, &count);
    if (checks) {
        svc->qa_smoke = checks;
        svc->qa_smoke_count = count;
    }
}

static const char *
s_suite_junit_at (const void *entries, size_t index)
{
    return ((const al_service_suite_t *) entries) [index].junit;
}

static const char *
s_scanner_name_at (const void *entries, size_t index)
{
    return ((const al_service_scanner_t *) entries) [index].name;
}

static const char *
s_scanner_output_at (const void *entries, size_t index)
{
    return ((const al_service_scanner_t *) entries) [index].output;
}

//  The report a suite or scanner writes (value at sub), absolute and pooled; NULL (with
//  an error) when it is not, or when one of the count entries before it (read with
//  path_at, named with name_at) writes the same file.
static const char *
s_qa_report_path (s_loader_t *L, yaml_node_t *value, const char *sub, const char *what,
                  const char *(*path_at) (const void *, size_t),
                  const char *(*name_at) (const void *, size_t), const void *entries, size_t count)
{
    const char *path = al_services_abs_path (L, value, sub);
    for (size_t j = 0; path && j < count; j++) {
        const char *prior = path_at (entries, j);
        if (prior && strcmp (prior, path) == 0) {
            const char *name = name_at (entries, j);
            al_yaml_error (L->yaml, value, sub, "%s is also the report of %s '%s'", path, what,
                           name ? name : "?");
            path = NULL;
        }
    }
    return path;
}

//  The timeout_ms key of a suite or scanner entry, into *timeout_ms when present.
//  False (with an error) when it is present and out of range.
static bool
s_qa_timeout (s_loader_t *L, yaml_node_t *entry, const char *item, int *timeout_ms)
{
    yaml_node_t *value = al_yaml_get (L->yaml, entry, "timeout_ms");
    if (!value)
        return true;
    char sub [AL_YAML_FIELD_SIZE];
    al_yaml_field_key (sub, item, "timeout_ms");
    return al_services_integer_into_int (L, value, sub, 100, AL_SERVICES_MAX_DAY_MS, timeout_ms);
}

//  qa.suites[index]: one command suite (an al_services_entry_fn).
static bool
s_qa_suite (s_loader_t *L, void *entries, size_t i, yaml_node_t *entry, const char *item)
{
    al_service_suite_t *suites = entries;
    bool ok = true;
    al_service_suite_t *suite = &suites [i];
    suite->timeout_ms = AL_SERVICE_DEFAULT_QA_SUITE_TIMEOUT_MS;
    suite->name = s_qa_entry_name (L, entry, item, "suite", s_suite_name_at, suites, i);
    char sub [AL_YAML_FIELD_SIZE];
    yaml_node_t *value;
    if ((value = al_yaml_get (L->yaml, entry, "argv"))) {
        al_yaml_field_key (sub, item, "argv");
        suite->argv = al_services_strv (L, value, sub, true);
    }
    if ((value = al_yaml_get (L->yaml, entry, "junit"))) {
        al_yaml_field_key (sub, item, "junit");
        //  Two suites writing one report would count each other's tests.
        suite->junit = s_qa_report_path (L, value, sub, "suite", s_suite_junit_at, s_suite_name_at, suites, i);
        if (!suite->junit)
            ok = false;
    }
    if (!s_qa_timeout (L, entry, item, &suite->timeout_ms))
        ok = false;
    if (!suite->name || !suite->argv)
        ok = false;
    return ok;
}

static void
s_qa_suites (s_loader_t *L, al_service_t *svc, yaml_node_t *node, const char *field)
{
    static const char *const allowed [] = { "name", "argv", "junit", "timeout_ms", NULL };
    static const char *const required [] = { "name", "argv", NULL };
    size_t count;
    al_service_suite_t *suites = al_services_entry_list (L, node, field, sizeof *suites, allowed, required,
                                               s_qa_suite, &count);
    if (suites) {
        svc->qa_suites = suites;
        svc->qa_suite_count = count;
    }
}

//  qa.scanners[index]: one security scanner (an al_services_entry_fn).
static bool
s_qa_scanner (s_loader_t *L, void *entries, size_t i, yaml_node_t *entry, const char *item)
{
    static const struct { const char *name; al_service_scan_format_t format; } formats [] = {
        { "sarif", AL_SERVICE_SCAN_SARIF }, { "bandit-json", AL_SERVICE_SCAN_BANDIT_JSON }
    };
    al_service_scanner_t *scanners = entries;
    al_service_scanner_t *scanner = &scanners [i];
    bool ok = true;
    scanner->timeout_ms = AL_SERVICE_DEFAULT_QA_SUITE_TIMEOUT_MS;
    scanner->name = s_qa_entry_name (L, entry, item, "scanner", s_scanner_name_at, scanners, i);
    char sub [AL_YAML_FIELD_SIZE];
    yaml_node_t *value;
    if ((value = al_yaml_get (L->yaml, entry, "argv"))) {
        al_yaml_field_key (sub, item, "argv");
        scanner->argv = al_services_strv (L, value, sub, true);
    }
    if ((value = al_yaml_get (L->yaml, entry, "format"))) {
        al_yaml_field_key (sub, item, "format");
        const char *name = al_yaml_string (L->yaml, value, sub, false);
        for (size_t f = 0; name && !scanner->format_name && f < sizeof formats / sizeof formats [0]; f++)
            if (strcmp (name, formats [f].name) == 0) {
                scanner->format = formats [f].format;
                scanner->format_name = formats [f].name;
            }
        if (name && !scanner->format_name)
            al_yaml_error (L->yaml, value, sub, "'%.64s' is not sarif or bandit-json", name);
    }
    if ((value = al_yaml_get (L->yaml, entry, "output"))) {
        al_yaml_field_key (sub, item, "output");
        //  Two scanners writing one report would count each other's findings.
        scanner->output = s_qa_report_path (L, value, sub, "scanner", s_scanner_output_at, s_scanner_name_at,
                                            scanners, i);
    }
    if (!s_qa_timeout (L, entry, item, &scanner->timeout_ms))
        ok = false;
    return ok && scanner->name && scanner->argv && scanner->format_name && scanner->output;
}

static void
s_qa_scanners (s_loader_t *L, al_service_t *svc, yaml_node_t *node, const char *field)
{
    static const char *const allowed [] = { "name", "argv", "format", "output", "timeout_ms", NULL };
    static const char *const required [] = { "name", "argv", "format", "output", NULL };
    size_t count;
    al_service_scanner_t *scanners = al_services_entry_list (L, node, field, sizeof *scanners, allowed, required,
                                                   s_qa_scanner, &count);
    if (scanners) {
        svc->qa_scanners = scanners;
        svc->qa_scanner_count = count;
    }
}

void
al_services_qa (s_loader_t *L, al_service_t *svc, yaml_node_t *node, const char *field)
{
    static const char *const allowed [] = { "smoke", "suites", "scanners", "timeout_ms", NULL };
    if (!al_yaml_check_map (L->yaml, node, field, allowed, NULL))
        return;
    char sub [AL_YAML_FIELD_SIZE];
    yaml_node_t *value;
    if ((value = al_yaml_get (L->yaml, node, "timeout_ms"))) {
        al_yaml_field_key (sub, field, "timeout_ms");
        al_services_int_field (L, value, sub, 10, 600000, &svc->qa_timeout_ms);
    }
    if ((value = al_yaml_get (L->yaml, node, "smoke"))) {
        al_yaml_field_key (sub, field, "smoke");
        s_qa_smoke (L, svc, value, sub);
    }
    if ((value = al_yaml_get (L->yaml, node, "suites"))) {
        al_yaml_field_key (sub, field, "suites");
        s_qa_suites (L, svc, value, sub);
    }
    if ((value = al_yaml_get (L->yaml, node, "scanners"))) {
        al_yaml_field_key (sub, field, "scanners");
        s_qa_scanners (L, svc, value, sub);
        //  A suite's JUnit report read as a scanner's would be counted twice, wrongly.
        for (size_t i = 0; i < svc->qa_scanner_count; i++)
            for (size_t j = 0; j < svc->qa_suite_count; j++)
                if (svc->qa_suites [j].junit && strcmp (svc->qa_suites [j].junit, svc->qa_scanners [i].output) == 0)
                    al_yaml_error (L->yaml, value, sub, "%s is the report of scanner '%s' and of suite '%s'",
                                   svc->qa_scanners [i].output, svc->qa_scanners [i].name, svc->qa_suites [j].name);
    }
}

//  Without qa.smoke, one liveness check (after the walk: liveness_path is known then).
void
al_services_qa_defaults (s_loader_t *L, al_service_t *svc)
{
    if (svc->qa_smoke)
        return;
    al_service_smoke_t *check = al_services_pool_alloc (L->self, sizeof *check);
    if (!check) {
        al_yaml_out_of_memory (L->yaml);
        return;
    }
    check->name = "liveness";
    check->path = svc->liveness_path;
    check->status = 0;
    svc->qa_smoke = check;
    svc->qa_smoke_count = 1;
}
