/*  al_qa_reports.h: the QA report store, reports kept and addressed by their SHA-256.

    The qa agent's verdict reaches production only through its digest: the production
    request carries qa_report_sha256, the approvers sign it, and pre-flight opens the
    report that has it. So the qa agent keeps every report it answers with in
    STATE_DIR/qa/.reports/<64 hex>.json (a dot: no deployment id names it), the hex being the SHA-256 of the exact bytes:
    written to a temporary file, fsynced, renamed into place (then the directory fsynced),
    mode 0400, never overwritten (a file already there under that name is checked to hold
    those bytes; a different content is refused, never replaced).

    Readers (the orchestrator, deploy-manager's pre-flight) never trust a name: they hash
    the bytes they read and parse those same bytes. A report is an approval for an
    artifact only when its digest matches, it parses, it is not a refusal, "approved" is
    true and its "artifact_sha256" is that artifact's digest.

    This module owns the directory and the file format's verdict keys ("approved",
    "artifact_sha256", "refused"); agents/al_qa.c writes the rest of the report
    (docs/qa.md). Threading: no shared state; concurrent writers of the same report race
    only on rename, which leaves one complete file either way.
*/
#ifndef AL_QA_REPORTS_H_INCLUDED
#define AL_QA_REPORTS_H_INCLUDED

#include "policies/al_policy.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

//  STATE_DIR/qa/.reports, freshly allocated (the caller frees it); NULL if out of memory.
char *al_qa_reports_dir (const char *state_dir);

//  Keep bytes as dir/<sha256>.json (dir and its parent created 0700 if missing) and put
//  the 64 lowercase hex digits in digest. Returns 0, or -1 with "path: what is wrong".
int al_qa_reports_put (const char *dir, const void *bytes, size_t size, char digest [65],
                       char *error, size_t error_size);

//  Does the stored report with digest approve artifact_sha256? True, or false with
//  why (naming the file and the field at fault) in reason. Fails closed: a missing,
//  unreadable, altered, unparsable or refusal report is no approval.
bool al_qa_reports_approves (const char *dir, const char *digest, const char *artifact_sha256,
                             char *reason, size_t reason_size);

//  The security scan (docs/qa.md "Security scans"): the report's "security_scan"
//  section holds "totals" (findings per severity over every scanner), the "limits" they
//  were judged by, "within_limits" and "complete" (every scanner ran and its report
//  read); this module owns those keys, the qa agent writes the rest of the section.
typedef struct {
    int64_t critical, high, medium, low, info;
} al_qa_scan_totals_t;

//  Set "totals", "limits", "within_limits" and "complete" in section; returns whether
//  totals are within limits, with "critical N, high N, medium N, low N[; over ...]" in
//  summary.
bool al_qa_reports_scan_judge (json_t *section, const al_qa_scan_totals_t *totals, bool complete,
                               const al_policy_scan_limits_t *limits, char *summary, size_t summary_size);

typedef enum {
    AL_QA_REPORTS_SCAN_NONE,        // the report has no security_scan: no scanner configured
    AL_QA_REPORTS_SCAN_WITHIN,      // complete, within QA's limits and within limits
    AL_QA_REPORTS_SCAN_OVER,        // over limits (now or when QA ran), or incomplete
    AL_QA_REPORTS_SCAN_UNREADABLE   // the report cannot be opened or its totals are not counts
} al_qa_reports_scan_t;

//  The stored report with digest, its scan judged against limits (the policy as loaded
//  now); summary: the counts and why (for pre-flight and the approval screen). Fails
//  closed: anything but NONE and WITHIN is a refusal.
al_qa_reports_scan_t al_qa_reports_scan (const char *dir, const char *digest, const al_policy_scan_limits_t *limits,
                                         char *summary, size_t summary_size);

#ifdef __cplusplus
}
#endif

#endif
