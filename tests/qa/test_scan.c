/*  test_scan.c: security scanning before approval (docs/qa.md "Security scans").

    The reader (al_qa_scan_read) on a real bandit 1.6 report and a SARIF 2.1.0 log that
    exercises every way a severity is given, on malformed and hostile input; the
    services.yaml qa.scanners key, strictly; the quality_rules.yaml security_scan limits;
    and al_qa_reports_scan, which pre-flight and the approval screen use to judge the
    stored report a request binds. Running a real scanner is in test_qa.c.
*/
#include "agents/al_qa_scan.h"
#include "deploy/al_qa_reports.h"
#include "deploy/al_services.h"
#include "policies/al_policy.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char s_source [1024];

static char *
s_slurp (const char *name, size_t *size)
{
    char path [1200];
    snprintf (path, sizeof path, "%s/tests/qa/fixtures/%s", s_source, name);
    FILE *file = fopen (path, "rb");
    assert_non_null (file);
    fseek (file, 0, SEEK_END);
    long length = ftell (file);
    fseek (file, 0, SEEK_SET);
    char *data = malloc ((size_t) length + 1);
    assert_non_null (data);
    assert_int_equal (fread (data, 1, (size_t) length, file), (size_t) length);
    data [length] = '\0';
    fclose (file);
    *size = (size_t) length;
    return data;
}

static void
test_bandit_report (void **state)
{
    (void) state;
    size_t size;
    char *data = s_slurp ("bandit_shell_true.json", &size);
    al_qa_scan_result_t result;
    char error [512] = "";
    assert_int_equal (al_qa_scan_read ("bandit.json", data, size, AL_QA_SCAN_BANDIT_JSON, &result, error,
                                       sizeof error), 0);
    assert_string_equal (result.tool, "bandit");
    assert_int_equal (result.counts [AL_QA_SCAN_CRITICAL], 0);
    assert_int_equal (result.counts [AL_QA_SCAN_HIGH], 1);
    assert_int_equal (result.counts [AL_QA_SCAN_MEDIUM], 0);
    assert_int_equal (result.counts [AL_QA_SCAN_LOW], 1);
    assert_int_equal (result.tool_errors, 0);
    assert_int_equal (result.top_count, 2);
    //  The most severe first, although bandit lists B404 (line 1) first.
    assert_int_equal (result.top [0].severity, AL_QA_SCAN_HIGH);
    assert_string_equal (result.top [0].rule, "B602");
    assert_string_equal (result.top [0].file, "app/bad.py");
    assert_int_equal (result.top [0].line, 4);
    assert_non_null (strstr (result.top [0].message, "shell=True"));
    assert_string_equal (result.top [1].rule, "B404");
    //  The same report read as SARIF is refused, not "no findings".
    assert_int_equal (al_qa_scan_read ("bandit.json", data, size, AL_QA_SCAN_SARIF, &result, error, sizeof error), -1);
    assert_string_equal (error, "bandit.json: \"version\" is missing, not \"2.1.0\": not a SARIF 2.1.0 log");
    free (data);
}

static void
test_sarif_log (void **state)
{
    (void) state;
    size_t size;
    char *data = s_slurp ("sarif_mixed.sarif", &size);
    al_qa_scan_result_t result;
    char error [512] = "";
    assert_int_equal (al_qa_scan_read ("mixed.sarif", data, size, AL_QA_SCAN_SARIF, &result, error, sizeof error), 0);
    assert_string_equal (result.tool, "semgrep");
    assert_int_equal (result.counts [AL_QA_SCAN_CRITICAL], 1);     // security-severity 9.8 (rule) over level
    assert_int_equal (result.counts [AL_QA_SCAN_HIGH], 2);         // 7.5 (rule, a number), level error
    assert_int_equal (result.counts [AL_QA_SCAN_MEDIUM], 1);       // no level: warning
    assert_int_equal (result.counts [AL_QA_SCAN_LOW], 1);          // the rule's default level note
    assert_int_equal (result.counts [AL_QA_SCAN_INFO], 2);         // level none, kind pass
    assert_int_equal (result.top_count, 7);
    assert_string_equal (result.top [0].rule, "sql-injection");
    assert_string_equal (result.top [0].file, "app/db.py");
    assert_int_equal (result.top [0].line, 42);
    //  Hostile text is escaped: no line feed, no escape byte reaches a screen.
    assert_string_equal (result.top [0].message, "query built from input\\n\\x1b[2Jforged line");
    assert_string_equal (result.top [1].rule, "hardcoded-password");
    assert_string_equal (result.top [2].rule, "style");
    assert_int_equal (result.top [2].severity, AL_QA_SCAN_HIGH);
    assert_int_equal (result.top [3].severity, AL_QA_SCAN_MEDIUM);
    assert_string_equal (result.top [4].rule, "weak-hash");
    assert_int_equal (result.top [4].line, 3);
    assert_int_equal (result.top [6].severity, AL_QA_SCAN_INFO);
    free (data);
}

//  Twelve findings: ten kept, the most severe, in report order among equals.
static void
test_top_findings (void **state)
{
    (void) state;
    char data [4096] = "{\"version\":\"2.1.0\",\"runs\":[{\"tool\":{\"driver\":{\"name\":\"t\"}},\"results\":[";
    const char *levels [12] = { "note", "warning", "note", "error", "note", "note",
                                "note", "note", "note", "note", "note", "error" };
    for (int i = 0; i < 12; i++)
        snprintf (data + strlen (data), sizeof data - strlen (data), "%s{\"ruleId\":\"r%d\",\"level\":\"%s\","
                  "\"message\":{\"text\":\"m\"}}", i ? "," : "", i, levels [i]);
    strcat (data, "]}]}");
    al_qa_scan_result_t result;
    char error [512] = "";
    assert_int_equal (al_qa_scan_read ("t", data, strlen (data), AL_QA_SCAN_SARIF, &result, error, sizeof error), 0);
    assert_int_equal (result.counts [AL_QA_SCAN_HIGH], 2);
    assert_int_equal (result.counts [AL_QA_SCAN_LOW], 9);
    assert_int_equal (result.top_count, AL_QA_SCAN_TOP);
    assert_string_equal (result.top [0].rule, "r3");
    assert_string_equal (result.top [1].rule, "r11");
    assert_string_equal (result.top [2].rule, "r1");
    assert_string_equal (result.top [3].rule, "r0");
    assert_string_equal (result.top [9].rule, "r8");
}

static void
s_refused (const char *data, al_qa_scan_format_t format, const char *expected)
{
    al_qa_scan_result_t result;
    memset (&result, 0xff, sizeof result);
    char error [512] = "";
    if (al_qa_scan_read ("r.json", data, strlen (data), format, &result, error, sizeof error) != -1)
        fail_msg ("accepted: %s", data);
    if (strncmp (error, expected, strlen (expected)) != 0)
        fail_msg ("expected '%s...', got '%s' for %s", expected, error, data);
    assert_int_equal (result.counts [AL_QA_SCAN_HIGH], 0);
    assert_int_equal (result.top_count, 0);
}

static void
test_malformed (void **state)
{
    (void) state;
    s_refused ("", AL_QA_SCAN_SARIF, "r.json: line 1: ");
    s_refused ("{\"version\":\"2.1.0\",\"runs\":[", AL_QA_SCAN_SARIF, "r.json: line 1: ");
    s_refused ("[]", AL_QA_SCAN_BANDIT_JSON, "r.json: not a JSON object");
    s_refused ("{\"version\":\"2.0.0\",\"runs\":[]}", AL_QA_SCAN_SARIF, "r.json: \"version\" is \"2.0.0\"");
    s_refused ("{\"version\":\"2.1.0\",\"runs\":[]}", AL_QA_SCAN_SARIF, "r.json: \"runs\" is not a non-empty array");
    s_refused ("{\"version\":\"2.1.0\",\"runs\":[{\"tool\":{\"driver\":{\"name\":\"t\"}}}]}", AL_QA_SCAN_SARIF,
               "r.json: runs[0].results is not an array");
    s_refused ("{\"version\":\"2.1.0\",\"runs\":[{\"results\":[]}]}", AL_QA_SCAN_SARIF,
               "r.json: runs[0].tool.driver.name is not a string");
    s_refused ("{\"version\":\"2.1.0\",\"runs\":[{\"tool\":{\"driver\":{\"name\":\"t\"}},\"results\":"
               "[{\"level\":\"fatal\"}]}]}", AL_QA_SCAN_SARIF, "r.json: runs[0].results[0].level is not error");
    s_refused ("{\"version\":\"2.1.0\",\"runs\":[{\"tool\":{\"driver\":{\"name\":\"t\"}},\"results\":"
               "[{\"properties\":{\"security-severity\":\"high\"}}]}]}", AL_QA_SCAN_SARIF,
               "r.json: runs[0].results[0]: security-severity is not a score");
    s_refused ("{\"version\":\"2.1.0\",\"runs\":[{\"tool\":{\"driver\":{\"name\":\"t\"}},\"results\":[7]}]}",
               AL_QA_SCAN_SARIF, "r.json: runs[0].results[0] is not an object");
    s_refused ("{\"version\":\"2.1.0\",\"version\":\"2.1.0\",\"runs\":[]}", AL_QA_SCAN_SARIF, "r.json: line 1: ");
    s_refused ("{\"errors\":[]}", AL_QA_SCAN_BANDIT_JSON, "r.json: \"results\" is not an array");
    s_refused ("{\"results\":[{\"issue_severity\":\"UNDEFINED\",\"test_id\":\"B1\"}]}", AL_QA_SCAN_BANDIT_JSON,
               "r.json: results[0].issue_severity is not LOW, MEDIUM or HIGH");
    s_refused ("{\"results\":[{\"issue_severity\":\"HIGH\"}]}", AL_QA_SCAN_BANDIT_JSON,
               "r.json: results[0].test_id is not a string");
    s_refused ("{\"results\":[{\"issue_severity\":\"HIGH\",\"test_id\":\"B1\",\"line_number\":\"4\"}]}",
               AL_QA_SCAN_BANDIT_JSON, "r.json: results[0].line_number is not an integer");
    s_refused ("{\"results\":[],\"errors\":{}}", AL_QA_SCAN_BANDIT_JSON, "r.json: \"errors\" is not an array");
    //  Files bandit could not scan, and a SARIF run that failed, are counted as tool errors.
    al_qa_scan_result_t result;
    char error [512];
    const char *bandit = "{\"results\":[],\"errors\":[{\"filename\":\"x.py\",\"reason\":\"syntax error\"}]}";
    assert_int_equal (al_qa_scan_read ("b", bandit, strlen (bandit), AL_QA_SCAN_BANDIT_JSON, &result, error,
                                       sizeof error), 0);
    assert_int_equal (result.tool_errors, 1);
    const char *sarif = "{\"version\":\"2.1.0\",\"runs\":[{\"tool\":{\"driver\":{\"name\":\"t\"}},\"results\":[],"
                        "\"invocations\":[{\"executionSuccessful\":false}]}]}";
    assert_int_equal (al_qa_scan_read ("s", sarif, strlen (sarif), AL_QA_SCAN_SARIF, &result, error, sizeof error), 0);
    assert_int_equal (result.tool_errors, 1);
}

//  services.yaml qa.scanners, strictly.
static const char *s_head =
    "version: 1\n"
    "services:\n"
    "  py:\n"
    "    driver: process\n"
    "    command: [\"{{artifact}}\"]\n"
    "    qa:\n";

static al_services_t *
s_services (const char *dir, const char *qa, char *error, size_t error_size)
{
    char path [1200];
    snprintf (path, sizeof path, "%s/services.yaml", dir);
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fprintf (file, "%s%s", s_head, qa);
    fclose (file);
    return al_services_load (path, error, error_size);
}

static void
s_services_refused (const char *dir, const char *qa, const char *expected)
{
    char error [2048] = "";
    al_services_t *services = s_services (dir, qa, error, sizeof error);
    if (services) {
        al_services_destroy (&services);
        fail_msg ("loaded: %s", qa);
    }
    if (!strstr (error, expected))
        fail_msg ("expected '%s' in '%s'", expected, error);
}

static void
test_services_scanners (void **state)
{
    (void) state;
    char dir [] = "/tmp/test_scan.XXXXXX";
    assert_non_null (mkdtemp (dir));
    char error [2048] = "";
    al_services_t *services = s_services (dir,
        "      suites:\n"
        "        - { name: unit, argv: [\"true\"], junit: reports/unit.xml }\n"
        "      scanners:\n"
        "        - { name: bandit, argv: [bandit, -f, json, -o, reports/bandit.json, -r, app],\n"
        "            format: bandit-json, output: reports/bandit.json, timeout_ms: 60000 }\n"
        "        - { name: semgrep, argv: [semgrep, --sarif], format: sarif, output: /tmp/semgrep.sarif }\n",
        error, sizeof error);
    if (!services)
        fail_msg ("%s", error);
    const al_service_t *svc = al_services_find (services, "py");
    assert_non_null (svc);
    assert_int_equal (svc->qa_scanner_count, 2);
    const al_service_scanner_t *bandit = &svc->qa_scanners [0];
    assert_string_equal (bandit->name, "bandit");
    assert_string_equal (bandit->argv [0], "bandit");
    assert_string_equal (bandit->argv [6], "app");
    assert_null (bandit->argv [7]);
    assert_int_equal (bandit->format, AL_SERVICE_SCAN_BANDIT_JSON);
    assert_string_equal (bandit->format_name, "bandit-json");
    char expected [1300];
    char *real = realpath (dir, NULL);
    snprintf (expected, sizeof expected, "%s/reports/bandit.json", real);
    free (real);
    assert_string_equal (bandit->output, expected);
    assert_int_equal (bandit->timeout_ms, 60000);
    assert_int_equal (svc->qa_scanners [1].format, AL_SERVICE_SCAN_SARIF);
    assert_string_equal (svc->qa_scanners [1].output, "/tmp/semgrep.sarif");
    assert_int_equal (svc->qa_scanners [1].timeout_ms, AL_SERVICE_DEFAULT_QA_SUITE_TIMEOUT_MS);
    al_services_destroy (&services);

    //  Without qa.scanners: none.
    services = s_services (dir, "      timeout_ms: 2000\n", error, sizeof error);
    assert_non_null (services);
    assert_int_equal (al_services_find (services, "py")->qa_scanner_count, 0);
    al_services_destroy (&services);

    s_services_refused (dir, "      scanners:\n        - { name: b, argv: [x], format: xml, output: r.json }\n",
                        "services.py.qa.scanners[0].format: 'xml' is not sarif or bandit-json");
    s_services_refused (dir, "      scanners:\n        - { name: b, argv: [x], format: sarif }\n",
                        "services.py.qa.scanners[0]");
    s_services_refused (dir, "      scanners:\n        - { name: b, argv: [x], format: sarif, output: r, shell: yes }\n",
                        "shell");
    s_services_refused (dir, "      scanners:\n        - { name: b, argv: [], format: sarif, output: r }\n",
                        "must not be empty");
    s_services_refused (dir, "      scanners:\n        - { name: b, argv: [x], format: sarif, output: r }\n"
                             "        - { name: b, argv: [y], format: sarif, output: s }\n",
                        "scanner 'b' is given twice");
    s_services_refused (dir, "      scanners:\n        - { name: a, argv: [x], format: sarif, output: r }\n"
                             "        - { name: b, argv: [y], format: sarif, output: r }\n",
                        "is also the report of scanner 'a'");
    s_services_refused (dir, "      suites:\n        - { name: u, argv: [x], junit: r }\n"
                             "      scanners:\n        - { name: a, argv: [x], format: sarif, output: r }\n",
                        "is the report of scanner 'a' and of suite 'u'");
    s_services_refused (dir, "      scanners:\n        - { name: a, argv: [x], format: sarif, output: r, timeout_ms: 5 }\n",
                        "timeout_ms");
    char path [1200];
    snprintf (path, sizeof path, "%s/services.yaml", dir);
    unlink (path);
    rmdir (dir);
}

//  quality_rules.yaml security_scan: the default policy's limits, and a strict key.
static void
test_policy_limits (void **state)
{
    (void) state;
    char dir [1200];
    snprintf (dir, sizeof dir, "%s/policies/default", s_source);
    al_policy_errors_t *errors = NULL;
    al_policy_t *policy = al_policy_load (dir, &errors);
    if (!policy)
        fail_msg ("%s", al_policy_errors_at (errors, 0));
    const al_policy_scan_limits_t *limits = al_policy_scan_limits (policy);
    assert_int_equal (limits->max_critical, 0);
    assert_int_equal (limits->max_high, 0);
    assert_int_equal (limits->max_medium, 10);
    assert_int_equal (limits->max_low, AL_POLICY_SCAN_UNLIMITED);
    al_policy_destroy (&policy);
    al_policy_errors_destroy (&errors);

    //  A copy whose security_scan has a bad value and an unknown key is refused.
    char copy [] = "/tmp/test_scan_policy.XXXXXX";
    assert_non_null (mkdtemp (copy));
    char command [4000];
    snprintf (command, sizeof command, "cp '%s'/*.yaml '%s'/ && sed -i 's/^  max_medium: 10$/  max_medium: many/; "
              "s/^  max_low: unlimited$/  max_info: 3/' '%s/quality_rules.yaml'", dir, copy, copy);
    assert_int_equal (system (command), 0);
    policy = al_policy_load (copy, &errors);
    assert_null (policy);
    bool medium = false, info = false;
    for (size_t i = 0; i < al_policy_errors_count (errors); i++) {
        medium |= strstr (al_policy_errors_at (errors, i), "max_medium") != NULL;
        info |= strstr (al_policy_errors_at (errors, i), "security_scan: unknown key 'max_info'") != NULL;
    }
    assert_true (medium);
    assert_true (info);
    al_policy_errors_destroy (&errors);
    snprintf (command, sizeof command, "rm -rf '%s'", copy);
    assert_int_equal (system (command), 0);
}

//  Store a report with this security_scan section (NULL: none); its digest in digest.
static void
s_put (const char *store, json_t *section, char digest [65])
{
    json_t *report = json_pack ("{s:s, s:b, s:s}", "service", "py", "approved", 1, "artifact_sha256",
                                "0000000000000000000000000000000000000000000000000000000000000000");
    if (section)
        json_object_set_new (report, "security_scan", section);
    char *text = json_dumps (report, JSON_SORT_KEYS);
    char error [512];
    assert_int_equal (al_qa_reports_put (store, text, strlen (text), digest, error, sizeof error), 0);
    free (text);
    json_decref (report);
}

//  Pre-flight's and the approval screen's judgement of a stored report.
static void
test_stored_report (void **state)
{
    (void) state;
    char dir [] = "/tmp/test_scan_store.XXXXXX";
    assert_non_null (mkdtemp (dir));
    char *store = al_qa_reports_dir (dir);
    al_policy_scan_limits_t limits = { 0, 0, 10, AL_POLICY_SCAN_UNLIMITED };
    char summary [512], digest [65];

    //  QA's own judgement, as the agent writes it.
    json_t *section = json_pack ("{s:[]}", "scanners");
    al_qa_scan_totals_t totals = { .critical = 0, .high = 0, .medium = 3, .low = 40 };
    assert_true (al_qa_reports_scan_judge (section, &totals, true, &limits, summary, sizeof summary));
    assert_string_equal (summary, "critical 0, high 0, medium 3, low 40");
    assert_true (json_is_true (json_object_get (section, "within_limits")));
    assert_string_equal (json_string_value (json_object_get (json_object_get (section, "limits"), "max_low")),
                         "unlimited");
    s_put (store, section, digest);
    assert_int_equal (al_qa_reports_scan (store, digest, &limits, summary, sizeof summary), AL_QA_REPORTS_SCAN_WITHIN);
    //  The same report under stricter limits now: over.
    al_policy_scan_limits_t strict = { 0, 0, 2, AL_POLICY_SCAN_UNLIMITED };
    assert_int_equal (al_qa_reports_scan (store, digest, &strict, summary, sizeof summary), AL_QA_REPORTS_SCAN_OVER);
    assert_string_equal (summary, "critical 0, high 0, medium 3, low 40; over quality_rules.yaml security_scan: "
                                  "3 medium (max_medium 2)");

    //  Over the limits: QA said so, and it is judged again.
    section = json_pack ("{s:[]}", "scanners");
    totals = (al_qa_scan_totals_t) { .critical = 1, .high = 2 };
    assert_false (al_qa_reports_scan_judge (section, &totals, true, &limits, summary, sizeof summary));
    assert_string_equal (summary, "critical 1, high 2, medium 0, low 0; over quality_rules.yaml security_scan: "
                                  "1 critical (max_critical 0), 2 high (max_high 0)");
    s_put (store, section, digest);
    assert_int_equal (al_qa_reports_scan (store, digest, &limits, summary, sizeof summary), AL_QA_REPORTS_SCAN_OVER);
    al_policy_scan_limits_t lax = { 5, 5, 5, 5 };
    //  Limits loosened since do not undo QA's verdict.
    assert_int_equal (al_qa_reports_scan (store, digest, &lax, summary, sizeof summary), AL_QA_REPORTS_SCAN_OVER);

    //  A scanner that failed: incomplete, refused whatever the counts.
    section = json_pack ("{s:[]}", "scanners");
    totals = (al_qa_scan_totals_t) { 0 };
    assert_true (al_qa_reports_scan_judge (section, &totals, false, &limits, summary, sizeof summary));
    s_put (store, section, digest);
    assert_int_equal (al_qa_reports_scan (store, digest, &limits, summary, sizeof summary), AL_QA_REPORTS_SCAN_OVER);
    assert_non_null (strstr (summary, "incomplete"));

    //  Totals that are not counts: unreadable.
    s_put (store, json_pack ("{s:{s:s}, s:b, s:b}", "totals", "critical", "none", "within_limits", 1, "complete", 1),
           digest);
    assert_int_equal (al_qa_reports_scan (store, digest, &limits, summary, sizeof summary),
                      AL_QA_REPORTS_SCAN_UNREADABLE);
    assert_non_null (strstr (summary, "security_scan.totals.critical is not a count"));

    //  No scanner configured; a report not kept.
    s_put (store, NULL, digest);
    assert_int_equal (al_qa_reports_scan (store, digest, &limits, summary, sizeof summary), AL_QA_REPORTS_SCAN_NONE);
    assert_int_equal (al_qa_reports_scan (store, "1111111111111111111111111111111111111111111111111111111111111111",
                                          &limits, summary, sizeof summary), AL_QA_REPORTS_SCAN_UNREADABLE);
    char command [300];
    snprintf (command, sizeof command, "chmod -R u+w '%s' && rm -rf '%s'", dir, dir);
    assert_int_equal (system (command), 0);
    free (store);
}

int
main (void)
{
    const char *source = getenv ("AIRLOCK_SOURCE_DIR");
    if (!source) {
        fprintf (stderr, "AIRLOCK_SOURCE_DIR is not set\n");
        return 1;
    }
    snprintf (s_source, sizeof s_source, "%s", source);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_bandit_report),
        cmocka_unit_test (test_sarif_log),
        cmocka_unit_test (test_top_findings),
        cmocka_unit_test (test_malformed),
        cmocka_unit_test (test_services_scanners),
        cmocka_unit_test (test_policy_limits),
        cmocka_unit_test (test_stored_report),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
