/*  al_qa_int.h: what the qa agent's files share (al_qa.c the agent, al_qa_check.c
    the QA run of one request and its report, al_qa_util.c small file and text helpers,
    al_qa_runner.c the suite runner, al_qa_http.c the smoke checks' HTTP client,
    al_qa_junit.c the JUnit counter). Internal to agents/, never installed.
*/
#ifndef AL_QA_INT_H_INCLUDED
#define AL_QA_INT_H_INCLUDED

#include "agents/al_qa.h"
#include "agents/al_agent.h"
#include "deploy/al_services.h"
#include "proto/al_codec.h"
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

//  The largest smoke-check body kept (the rest is read and dropped: cut).
#define AL_QA_SMOKE_BODY_MAX (1024 * 1024)

//  A formatted string the caller frees (asserts on out of memory).
char *al_qa_printf (const char *format, ...) __attribute__ ((format (printf, 1, 2)));

//  Make outside text fit a report line: valid UTF-8 without control characters; each
//  byte of a control character or of an invalid or cut sequence becomes '?'.
void al_qa_clean (char *text);

//  Read a regular file of at most max bytes into *data_p (NUL-terminated; caller frees).
//  Returns 0, or -1 with "path: reason"; *missing_p (MAY be NULL) says it did not exist.
int al_qa_read_regular (const char *path, size_t max, char **data_p, size_t *size_p, bool *missing_p,
                        char *error, size_t error_size);

//  Write a file (0600, truncated, not through a symlink). Returns 0 or -1.
int al_qa_write_file (const char *path, const char *data, size_t size);

//  What one suite run did.
typedef struct {
    bool started;                   // the program was executed
    int exit_code;                  // exit status, or -signal
    bool timed_out;
    bool interrupted;               // stopped for a shutdown
    double duration_ms;
    size_t kept;                    // output bytes kept
    size_t dropped;                 // output bytes read past AL_QA_EVIDENCE_MAX_SIZE
    char error [512];               // why it did not start
} al_qa_run_t;

//  Run suite in cwd with envp; its output, with what happened, into evidence_path.
void al_qa_run_suite (const al_service_suite_t *suite, const char *cwd, char *const *envp,
                      const char *evidence_path, al_qa_run_t *run);

//  A smoke check's response body.
typedef struct {
    char *data;
    size_t size;
    bool cut;                       // the body was longer than AL_QA_SMOKE_BODY_MAX
} al_qa_body_t;

//  GET url within timeout_ms: its status (0 when no response came) and body; detail
//  says why there was no response.
long al_qa_http_get (const char *url, int timeout_ms, al_qa_body_t *body, char *detail, size_t detail_size);

//  The qa agent.
typedef struct {
    const al_config_t *config;
    al_agent_t *agent;
    al_services_t *services;
    char *qa_dir;                   // STATE_DIR/qa
    char *deploy_dir;               // STATE_DIR/deploy (the driver registries)
    char *suite_dir;                // the directory of services.yaml: where suites run
    char **hidden;                  // variables a suite does not inherit (secret sources)
    size_t hidden_count;
} al_qa_state_t;

//  What one QA run found, as it builds the report.
typedef struct {
    json_t *checks;
    json_t *suites;
    json_t *issues;
    size_t issues_dropped;
    json_t *security_scan;          // NULL: no scanner configured
} al_qa_findings_t;

//  Add an issue to the findings (cleaned, cut to a bound; past a maximum only counted).
void al_qa_issue (al_qa_findings_t *findings, const char *format, ...) __attribute__ ((format (printf, 2, 3)));

//  "staging", ...; "unspecified" for an environment without a name.
const char *al_qa_env_name (Airlock__Environment env);

//  The report's fixed part: what the request was about.
json_t *al_qa_report_new (const al_envelope_t *envelope);

//  Seal a report: issues, recommendation, approval (takes the findings' arrays).
void al_qa_report_seal (json_t *report, al_qa_findings_t *findings);

//  Run the whole QA of a request in dir. Returns the report, or NULL when a shutdown
//  stopped it.
json_t *al_qa_run_checks (al_qa_state_t *self, const al_envelope_t *envelope, const char *dir);

#endif
