/*  al_qa.h: the qa agent: validates what runs in staging and answers a QA report.

    It connects to the broker as the qa role and takes the QaRequests routed to it (the
    orchestrator asks once a release runs in staging). For each one it checks, for the
    service of services.yaml the request names (its `qa:` key, docs/drivers.md):
      - connectivity and health: every instance of (service, environment) in the process
        driver's registry (STATE_DIR/deploy/drivers/<service>/<env>/instances.json) runs
        the requested version and answers liveness and readiness; no instance at all is
        a failure;
      - the smoke checks, on every instance: the status code expected, the body text;
      - the command suites (test runners), each once, in its own process group, killed
        after its timeout; counts from its JUnit XML report, or one test by exit code.
    It writes STATE_DIR/qa/<deployment_id>/qa_report.json (and each suite's captured
    output as evidence beside it), answers a QaReport whose report_sha256 is the SHA-256
    of that file, waits until the broker has recorded it, and only then acknowledges the
    delivery. A release is approved only when nothing at all was found.

    Security: the commands come from services.yaml (the operator's file), never from the
    message; a request's `suites` only selects configured suites by name. Values from
    the message reach a suite as environment variables, never as argv or shell text.

    Idempotent: a request for a deployment that already has a report is answered with
    that report again (same file, same digest) without running anything; a redelivered
    request is answered with the same message (same id and bytes), which the broker
    recognises. A request for production, an unknown environment, a malformed deployment
    id, or a deployment id already used for another release or environment is refused:
    a QaReport approved=false naming why, kept in STATE_DIR/qa/.refused/<delivery>/.
    docs/qa.md is the whole contract.

    Threading: al_qa_run runs on the calling thread until interrupted (SIGTERM/SIGINT
    through al_agent_catch_signals, or al_agent_set_interrupted). The JUnit counter has
    no state and may be called from any thread.
*/
#ifndef AL_QA_H_INCLUDED
#define AL_QA_H_INCLUDED

#include <stddef.h>
#include "base/al_config.h"

#ifdef __cplusplus
extern "C" {
#endif

//  Largest JUnit XML report read.
#define AL_QA_JUNIT_MAX_SIZE        (16u * 1024 * 1024)
//  Output of a suite kept as evidence (the rest is read and counted, not kept).
#define AL_QA_EVIDENCE_MAX_SIZE     (1u * 1024 * 1024)
//  Elements nested deeper than this in a JUnit report are refused.
#define AL_QA_JUNIT_MAX_DEPTH       256

//  Run the qa agent with a loaded airlock.yaml until interrupted. Returns 0 after a
//  clean shutdown, 2 when it cannot start (error says why: services.yaml, certificate,
//  state directory).
int al_qa_run (const al_config_t *config, char *error, size_t error_size);

//  What a JUnit report says. passed + failed + skipped == tests.
typedef struct {
    unsigned tests;                 // <testcase> elements (plus suite-level failures, below)
    unsigned passed;
    unsigned failed;                // with a <failure> or <error> child
    unsigned skipped;               // with a <skipped> child and no failure or error
} al_qa_junit_t;

//  Count the test cases of a JUnit XML report of size bytes (at most
//  AL_QA_JUNIT_MAX_SIZE). The root is <testsuites> or <testsuite>; <testsuite> nests in
//  either, <testcase> sits in a <testsuite>. A <failure> or <error> directly in a
//  <testsuite> (a suite that failed outside its cases) counts as one failed test. The
//  attributes (tests=, failures=) are not trusted: the elements are counted. The XML
//  must be well-formed (matching tags, quoted attributes, known entities, no control
//  characters, no DOCTYPE). Returns 0, or -1 with "NAME:LINE: what is wrong" in error
//  (name labels the input in messages) and counts zeroed.
int al_qa_junit_count (const char *name, const char *data, size_t size, al_qa_junit_t *counts,
                       char *error, size_t error_size);

//  The same for a file (a regular file, at most AL_QA_JUNIT_MAX_SIZE bytes); errors read
//  "PATH:LINE: what is wrong" or "PATH: cannot open: reason".
int al_qa_junit_count_file (const char *path, al_qa_junit_t *counts, char *error, size_t error_size);

#ifdef __cplusplus
}
#endif

#endif
