/*  al_qa_scan.h: reads a security scanner's report (SARIF 2.1.0 or bandit's JSON) into
    counts per severity and the most severe findings (see docs/qa.md, "Security scans").

    Pure: bytes in, a result out; nothing is read from disk or run, so it is fuzzed as
    is (tests/qa/fuzz_scan.c). Everything taken from the report (tool name, rule, file,
    message) is escaped with al_text_escape and bounded before it lands in the result,
    so a finding can be shown to a human as it is. A report that is not what its format
    says is an error, never "no findings". Stateless; thread-safe.
*/
#ifndef AL_QA_SCAN_H_INCLUDED
#define AL_QA_SCAN_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

//  Largest report read.
#define AL_QA_SCAN_MAX_SIZE (16u * 1024 * 1024)
//  Findings kept in a result (the most severe first, then in report order).
#define AL_QA_SCAN_TOP 10

typedef enum {
    AL_QA_SCAN_SARIF,           // SARIF 2.1.0
    AL_QA_SCAN_BANDIT_JSON      // bandit -f json
} al_qa_scan_format_t;

//  Severities, the most severe first. Info (SARIF level "none") is counted, never
//  held against a release.
typedef enum {
    AL_QA_SCAN_CRITICAL,
    AL_QA_SCAN_HIGH,
    AL_QA_SCAN_MEDIUM,
    AL_QA_SCAN_LOW,
    AL_QA_SCAN_INFO,
    AL_QA_SCAN_SEVERITIES
} al_qa_scan_severity_t;

typedef struct {
    al_qa_scan_severity_t severity;
    char rule [96];             // escaped, possibly cut
    char file [256];            // escaped, possibly cut; "" when the report gives none
    unsigned line;              // 0 when the report gives none
    char message [256];         // escaped, possibly cut
} al_qa_scan_finding_t;

typedef struct {
    char tool [64];             // escaped: SARIF runs[0].tool.driver.name, or "bandit"
    unsigned counts [AL_QA_SCAN_SEVERITIES];
    unsigned tool_errors;       // files the tool says it could not scan (bandit "errors")
    al_qa_scan_finding_t top [AL_QA_SCAN_TOP];
    size_t top_count;
} al_qa_scan_result_t;

//  "critical", "high", "medium", "low", "info".
const char *al_qa_scan_severity_name (al_qa_scan_severity_t severity);

//  Read size bytes of a report in format into result. Returns 0, or -1 with
//  "name: what is wrong" (name: the report's path, for messages) in error.
int al_qa_scan_read (const char *name, const char *data, size_t size, al_qa_scan_format_t format,
                     al_qa_scan_result_t *result, char *error, size_t error_size);

#ifdef __cplusplus
}
#endif

#endif
