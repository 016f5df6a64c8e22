/*  al_calendar.h: the one window decision: may a deploy start now, as far as deploy
    windows, freezes, the request's own scheduled window and break-glass are concerned?

    Both the approval gate (al_approval_gate_evaluate, at the grant) and deploy-manager's
    pre-flight (at the start of the deploy) call al_calendar_decide, so they cannot
    disagree on the same facts. The rules:

    - a freeze (constraints.yaml calendar.freezes) stands in the way of every type;
      month end in `flag` mode only flags;
    - a closed deploy window stands in the way of a type with requires_window;
    - both are overridden by break-glass: the verified approvals fill the policy's
      break_glass quorum with yet other people (al_approval_gate decides that by matching people
      to slots; this function takes the answer as a flag);
    - the request's own scheduled window (window_start_ms..window_end_ms) is never
      overridden: it is what the requester asked for and what the approvers were shown;
      a deploy outside it is not the deploy that was approved.

    Pure: the time is a parameter; thread-safe like every policy query.
*/
#ifndef AL_CALENDAR_H_INCLUDED
#define AL_CALENDAR_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include "policies/al_policy.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    Airlock__Environment environment;
    Airlock__DeploymentType deployment_type;
    uint64_t window_start_ms;       // the request's scheduled window; both 0: none
    uint64_t window_end_ms;
    uint64_t now_ms;                // wall clock, ms since the epoch
    bool break_glass;               // the verified approvals fill the policy's break_glass quorum
} al_calendar_query_t;

typedef struct {
    bool allowed;                   // the deploy may start as far as the calendar goes
    bool break_glass_needed;        // a freeze or a closed window stands: break-glass would lift it
    bool break_glass_used;          // allowed only because break-glass lifted an obstacle
    al_policy_freeze_t freeze;      // what the freezes say (FLAGGED: allowed, but say so)
    bool window_closed;             // the type requires a window and none is open
    bool window_required;
    bool outside_scheduled;         // outside the request's own window: never overridden
    char freeze_text [256];         // "constraints.yaml:45: friday freeze (...)" / "no freeze (...)"
    char window_text [256];         // which window is open, why none is, or "not required"
    char scheduled_text [224];      // the request's window, or "no scheduled window"
    char explanation [768];         // one line: the verdict and why
} al_calendar_decision_t;

//  Decide for query under policy; fills every field of *decision. Returns decision->allowed.
bool al_calendar_decide (const al_policy_t *policy, const al_calendar_query_t *query,
                         al_calendar_decision_t *decision);

#ifdef __cplusplus
}
#endif

#endif
