/*  al_qa_scan.c: a security scanner's report to counts per severity (see al_qa_scan.h).

    SARIF 2.1.0: every result of every run counts once. Its severity is, in this order:
    the result's properties."security-severity" or its rule's (the CVSS-like score
    GitHub code scanning uses: >= 9.0 critical, >= 7.0 high, >= 4.0 medium, > 0 low,
    0 info); else its level, or its rule's defaultConfiguration.level, or "warning"
    (SARIF's default): error high, warning medium, note low, none info. A result whose
    kind is not "fail" (pass, review, informational, ...) is info. A run whose
    invocations say executionSuccessful false counts as a tool error.

    bandit JSON (bandit -f json, 1.6 and later): results[].issue_severity LOW, MEDIUM
    or HIGH; "errors" (files bandit could not scan) count as tool errors.

    Anything else (not JSON, another SARIF version, a result without a severity we
    know, a score that is not a number) is an error: a reader that guessed would turn a
    broken report into "no findings".
*/
#include "agents/al_qa_scan.h"
#include "base/al_text.h"

#include <assert.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int
s_fail (char *error, size_t error_size, const char *name, const char *format, ...)
    __attribute__ ((format (printf, 4, 5)));

static int
s_fail (char *error, size_t error_size, const char *name, const char *format, ...)
{
    char what [384];
    va_list args;
    va_start (args, format);
    vsnprintf (what, sizeof what, format, args);
    va_end (args);
    snprintf (error, error_size, "%s: %s", name, what);
    return -1;
}

const char *
al_qa_scan_severity_name (al_qa_scan_severity_t severity)
{
    static const char *const names [] = { "critical", "high", "medium", "low", "info" };
    assert (severity < AL_QA_SCAN_SEVERITIES);
    return names [severity];
}

//  Count one finding and keep it among the top ones when it is severe enough (stable:
//  equal severities keep report order).
static void
s_add (al_qa_scan_result_t *result, al_qa_scan_severity_t severity, const char *rule, const char *file,
       json_int_t line, const char *message)
{
    result->counts [severity]++;
    size_t at = result->top_count;
    while (at > 0 && result->top [at - 1].severity > severity)
        at--;
    if (at == AL_QA_SCAN_TOP)
        return;
    size_t last = result->top_count < AL_QA_SCAN_TOP ? result->top_count : AL_QA_SCAN_TOP - 1;
    memmove (&result->top [at + 1], &result->top [at], (last - at) * sizeof result->top [0]);
    if (result->top_count < AL_QA_SCAN_TOP)
        result->top_count++;
    al_qa_scan_finding_t *finding = &result->top [at];
    memset (finding, 0, sizeof *finding);
    finding->severity = severity;
    al_text_escape_to (rule ? rule : "", finding->rule, sizeof finding->rule);
    al_text_escape_to (file ? file : "", finding->file, sizeof finding->file);
    al_text_escape_to (message ? message : "", finding->message, sizeof finding->message);
    finding->line = line > 0 && line <= 100000000 ? (unsigned) line : 0;
}

//  ---------------------------------------------------------------------------------
//  bandit

static int
s_read_bandit (const char *name, json_t *root, al_qa_scan_result_t *result, char *error, size_t error_size)
{
    json_t *results = json_object_get (root, "results");
    if (!json_is_array (results))
        return s_fail (error, error_size, name, "\"results\" is not an array: not a bandit JSON report");
    json_t *errors = json_object_get (root, "errors");
    if (errors && !json_is_array (errors))
        return s_fail (error, error_size, name, "\"errors\" is not an array");
    result->tool_errors = (unsigned) json_array_size (errors);
    snprintf (result->tool, sizeof result->tool, "bandit");
    size_t index;
    json_t *item;
    json_array_foreach (results, index, item) {
        if (!json_is_object (item))
            return s_fail (error, error_size, name, "results[%zu] is not an object", index);
        const char *severity = json_string_value (json_object_get (item, "issue_severity"));
        al_qa_scan_severity_t level;
        if (severity && strcasecmp (severity, "HIGH") == 0)
            level = AL_QA_SCAN_HIGH;
        else
        if (severity && strcasecmp (severity, "MEDIUM") == 0)
            level = AL_QA_SCAN_MEDIUM;
        else
        if (severity && strcasecmp (severity, "LOW") == 0)
            level = AL_QA_SCAN_LOW;
        else
            return s_fail (error, error_size, name, "results[%zu].issue_severity is not LOW, MEDIUM or HIGH", index);
        const char *test_id = json_string_value (json_object_get (item, "test_id"));
        if (!test_id)
            return s_fail (error, error_size, name, "results[%zu].test_id is not a string", index);
        json_t *line = json_object_get (item, "line_number");
        if (line && !json_is_integer (line))
            return s_fail (error, error_size, name, "results[%zu].line_number is not an integer", index);
        s_add (result, level, test_id, json_string_value (json_object_get (item, "filename")),
               json_integer_value (line), json_string_value (json_object_get (item, "issue_text")));
    }
    return 0;
}

//  ---------------------------------------------------------------------------------
//  SARIF 2.1.0

//  A "security-severity" (string or number) to a severity; false if it is not a score.
static bool
s_security_severity (json_t *value, al_qa_scan_severity_t *severity)
{
    double score;
    if (json_is_number (value))
        score = json_number_value (value);
    else
    if (json_is_string (value)) {
        const char *text = json_string_value (value);
        char *end = NULL;
        score = strtod (text, &end);
        if (end == text || *end)
            return false;
    }
    else
        return false;
    if (!isfinite (score) || score < 0 || score > 10)
        return false;
    *severity = score >= 9.0 ? AL_QA_SCAN_CRITICAL : score >= 7.0 ? AL_QA_SCAN_HIGH
              : score >= 4.0 ? AL_QA_SCAN_MEDIUM : score > 0 ? AL_QA_SCAN_LOW : AL_QA_SCAN_INFO;
    return true;
}

static bool
s_level (const char *level, al_qa_scan_severity_t *severity)
{
    static const struct { const char *name; al_qa_scan_severity_t severity; } levels [] = {
        { "error", AL_QA_SCAN_HIGH }, { "warning", AL_QA_SCAN_MEDIUM },
        { "note", AL_QA_SCAN_LOW }, { "none", AL_QA_SCAN_INFO }
    };
    for (size_t i = 0; level && i < sizeof levels / sizeof levels [0]; i++)
        if (strcmp (level, levels [i].name) == 0) {
            *severity = levels [i].severity;
            return true;
        }
    return false;
}

//  The rule a result refers to (by ruleIndex, else by ruleId), or NULL.
static json_t *
s_rule_of (json_t *rules, json_t *item, const char *rule_id)
{
    json_t *index = json_object_get (item, "ruleIndex");
    if (json_is_integer (index) && json_integer_value (index) >= 0)
        return json_array_get (rules, (size_t) json_integer_value (index));
    size_t i;
    json_t *rule;
    json_array_foreach (rules, i, rule)
        if (rule_id && json_is_string (json_object_get (rule, "id"))
        &&  strcmp (json_string_value (json_object_get (rule, "id")), rule_id) == 0)
            return rule;
    return NULL;
}

static int
s_read_sarif_result (const char *name, size_t run_index, size_t index, json_t *item, json_t *rules,
                     al_qa_scan_result_t *result, char *error, size_t error_size)
{
    if (!json_is_object (item))
        return s_fail (error, error_size, name, "runs[%zu].results[%zu] is not an object", run_index, index);
    const char *rule_id = json_string_value (json_object_get (item, "ruleId"));
    if (!rule_id)
        rule_id = json_string_value (json_object_get (json_object_get (item, "rule"), "id"));
    json_t *rule = s_rule_of (rules, item, rule_id);
    if (!rule_id)
        rule_id = json_string_value (json_object_get (rule, "id"));

    al_qa_scan_severity_t severity = AL_QA_SCAN_MEDIUM;        // SARIF's default level, warning
    const char *kind = json_string_value (json_object_get (item, "kind"));
    json_t *score = json_object_get (json_object_get (item, "properties"), "security-severity");
    if (!score)
        score = json_object_get (json_object_get (rule, "properties"), "security-severity");
    json_t *level = json_object_get (item, "level");
    if (!level)
        level = json_object_get (json_object_get (rule, "defaultConfiguration"), "level");
    if (kind && strcmp (kind, "fail") != 0)
        severity = AL_QA_SCAN_INFO;
    else
    if (score) {
        if (!s_security_severity (score, &severity))
            return s_fail (error, error_size, name, "runs[%zu].results[%zu]: security-severity is not a score "
                           "from 0 to 10", run_index, index);
    }
    else
    if (level && !s_level (json_string_value (level), &severity))
        return s_fail (error, error_size, name, "runs[%zu].results[%zu].level is not error, warning, note or none",
                       run_index, index);

    json_t *message = json_object_get (item, "message");
    const char *text = json_string_value (json_object_get (message, "text"));
    if (!text)
        text = json_string_value (json_object_get (message, "id"));
    json_t *physical = json_object_get (json_array_get (json_object_get (item, "locations"), 0), "physicalLocation");
    const char *file = json_string_value (json_object_get (json_object_get (physical, "artifactLocation"), "uri"));
    json_t *line = json_object_get (json_object_get (physical, "region"), "startLine");
    s_add (result, severity, rule_id ? rule_id : "(no rule id)", file, json_integer_value (line), text);
    return 0;
}

static int
s_read_sarif (const char *name, json_t *root, al_qa_scan_result_t *result, char *error, size_t error_size)
{
    const char *version = json_string_value (json_object_get (root, "version"));
    if (!version || strcmp (version, "2.1.0") != 0)
        return s_fail (error, error_size, name, "\"version\" is %s%.16s%s, not \"2.1.0\": not a SARIF 2.1.0 log",
                       version ? "\"" : "", version ? version : "missing", version ? "\"" : "");
    json_t *runs = json_object_get (root, "runs");
    if (!json_is_array (runs) || json_array_size (runs) == 0)
        return s_fail (error, error_size, name, "\"runs\" is not a non-empty array: the tool reported no run");
    size_t run_index;
    json_t *run;
    json_array_foreach (runs, run_index, run) {
        if (!json_is_object (run))
            return s_fail (error, error_size, name, "runs[%zu] is not an object", run_index);
        json_t *driver = json_object_get (json_object_get (run, "tool"), "driver");
        const char *tool = json_string_value (json_object_get (driver, "name"));
        if (!tool)
            return s_fail (error, error_size, name, "runs[%zu].tool.driver.name is not a string", run_index);
        if (run_index == 0)
            al_text_escape_to (tool, result->tool, sizeof result->tool);
        //  Without results the tool did not determine any (SARIF 3.14.23): not "none".
        json_t *results = json_object_get (run, "results");
        if (!json_is_array (results))
            return s_fail (error, error_size, name, "runs[%zu].results is not an array: the run determined no "
                           "results", run_index);
        json_t *rules = json_object_get (driver, "rules");
        size_t index;
        json_t *item;
        json_array_foreach (results, index, item)
            if (s_read_sarif_result (name, run_index, index, item, rules, result, error, error_size) != 0)
                return -1;
        json_t *invocation;
        json_array_foreach (json_object_get (run, "invocations"), index, invocation)
            if (json_is_false (json_object_get (invocation, "executionSuccessful")))
                result->tool_errors++;
    }
    return 0;
}

int
al_qa_scan_read (const char *name, const char *data, size_t size, al_qa_scan_format_t format,
                 al_qa_scan_result_t *result, char *error, size_t error_size)
{
    assert (name && result && (data || size == 0));
    memset (result, 0, sizeof *result);
    if (size > AL_QA_SCAN_MAX_SIZE)
        return s_fail (error, error_size, name, "larger than %u bytes", AL_QA_SCAN_MAX_SIZE);
    json_error_t json_error;
    json_t *root = json_loadb (data ? data : "", size, JSON_REJECT_DUPLICATES, &json_error);
    if (!root)
        return s_fail (error, error_size, name, "line %d: %s", json_error.line, json_error.text);
    int rc;
    if (!json_is_object (root))
        rc = s_fail (error, error_size, name, "not a JSON object");
    else
        rc = format == AL_QA_SCAN_SARIF ? s_read_sarif (name, root, result, error, error_size)
                                        : s_read_bandit (name, root, result, error, error_size);
    json_decref (root);
    if (rc != 0)
        memset (result, 0, sizeof *result);
    return rc;
}
