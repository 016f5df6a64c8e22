/*  al_checklist.h: the production request's checklist (seed 001), computed from evidence.

    The orchestrator files every production ApprovalRequest with this checklist; an
    approver reads it before signing. Every box is computed: Tests Passed per suite kind
    from the QA report's JUnit counts ("no suite of that kind ran" is never a tick);
    Database Changes from the migration set itself (its steps, whether the digest the
    request signs is the set services.yaml names, whether its rollback is reversible,
    and that it was not rehearsed); Monitoring from the service's signals source and
    the notification routes that reach production (STATE_DIR/notifications.yaml);
    Dependencies and Breaking Changes as the submitter declared them (ReleaseCandidate),
    said to be declarations, and "not declared" (unticked) when absent.

    A box that does not apply is unticked and its text starts with "not applicable: "
    and the reason (ChecklistItem has no third state; `airlock approve` shows it as n/a).

    Text a submitter wrote (changes, dependencies, breaking changes) is copied as is: the
    codec keeps control characters out of it, and whoever shows it escapes it.
*/
#ifndef AL_CHECKLIST_H_INCLUDED
#define AL_CHECKLIST_H_INCLUDED

#include "deploy/al_services.h"
#include "policies/al_policy.h"
#include "proto/al_codec.h"
#include <jansson.h>
#include <stddef.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

//  The prefix of an item that does not apply.
#define AL_CHECKLIST_NOT_APPLICABLE "not applicable: "

typedef struct _al_checklist_t al_checklist_t;

//  What the checklist is computed from; everything borrowed.
typedef struct {
    const al_policy_t *policy;
    const al_service_t *service;    // the release's service, or NULL when unknown
    const json_t *release;          // the orchestrator's release document (see below)
    const char *state_dir;          // for notifications.yaml, or NULL
    time_t now;                     // for the deployment window
    const char *risk;               // "Low" | "Medium" | "High", as the request says
} al_checklist_input_t;

//  The release document keys read: release_id, type, changes [], migration_set_sha256,
//  window_start_ms, window_end_ms, dependencies_added [], no_dependencies_added,
//  breaking_changes, no_breaking_changes, and qa {passed, failed, skipped,
//  report_sha256, suites [{name, passed, failed, skipped}]}.
al_checklist_t *al_checklist_new (const al_checklist_input_t *input);

//  NULL-safe; sets *self_p to NULL.
void al_checklist_destroy (al_checklist_t **self_p);

//  The items, in order, borrowed from self (for ApprovalRequest.checklist).
size_t al_checklist_size (const al_checklist_t *self);
Airlock__ChecklistItem **al_checklist_items (al_checklist_t *self);

//  The suite results of a QA report as the release document keeps them:
//  [{name, passed, failed, skipped}]. Caller owns it.
json_t *al_checklist_suites_json (const Airlock__QaReport *report);

#ifdef __cplusplus
}
#endif

#endif
