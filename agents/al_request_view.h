/*  al_request_view.h: how a pending production request is shown to a human approver.

    One rendering for every front end (`airlock approve`, `airlock approvals --json`, the
    MCP list_approvals tool), always in two parts that never mix:
      - facts: what airlock itself states about the request: the fields the signature
        binds (request id, environment, service, deployment type, artifact sha256, QA
        report digest, migration set digest), the authenticated requester, the
        structured release fields (version, artifact URI, strategy) and, on the terminal,
        the deploy window and the quorum from the policy as loaded now;
      - agent_text: what the orchestrator wrote (summary, urgency, risk, rollback plan,
        checklist): unverified, every string passed through al_text_escape, and on the
        terminal every line prefixed with AL_REQUEST_VIEW_AGENT_PREFIX, which escaped text can
        never produce at the start of a line (escaped text holds no line feed).
    Stateless; nothing here talks to the broker. The context (window, freeze, quorum,
    soak, scan) is read from the policy, services.yaml and the QA reports as they are on
    disk now (al_request_view_context_load), for `airlock approve` and the web console.
*/
#ifndef AL_REQUEST_VIEW_H_INCLUDED
#define AL_REQUEST_VIEW_H_INCLUDED

#include "base/al_config.h"
#include "proto/al_codec.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

//  Starts every line of agent-written text on the terminal.
#define AL_REQUEST_VIEW_AGENT_PREFIX "  \xe2\x94\x82 "    // "  │ "

//  What airlock adds from the policy as loaded now (each may be NULL: "unknown").
typedef struct {
    const char *window;     // "open: ..." / "closed: ... (required: ...)"
    const char *freeze;     // "none" or what is frozen
    const char *quorum;     // "1 manager + 1 security"
    const char *soak;       // the soak after the rollout and its checkpoints, or why it is
                            // shortened (services.yaml soak: reason); NULL: line not shown
    const char *scan;       // the bound QA report's security scan: "critical 0, high 1, ..."
} al_request_view_context_t;

//  The buffers behind a context that al_request_view_context_load fills.
typedef struct {
    char window [384], freeze [256], quorum [256], soak [640], scan [512];
} al_request_view_context_text_t;

//  What `airlock approve` and the web console add to REQUEST from the policy and
//  services.yaml as loaded now (the deploy window, freeze, quorum, soak and scan):
//  context's strings point into text. False (context all NULL: "unknown") when the
//  policy does not load.
bool al_request_view_context_load (const Airlock__ApprovalRequest *request, const al_config_t *config,
                                   al_request_view_context_text_t *text, al_request_view_context_t *context);

//  Print the request as the approve screen shows it: a heading, the facts block, the
//  agent-written block. context may be NULL.
void al_request_view_print (FILE *out, const Airlock__ApprovalRequest *request,
                           const al_request_view_context_t *context);

//  {"facts": {...}, "agent_text": {...}, "approve_with": "airlock approve ID"}: every
//  string in agent_text is al_text-escaped (JSON escaping alone does not protect a human
//  who prints the value); facts strings are escaped too. NULL only if memory runs out.
json_t *al_request_view_json (const Airlock__ApprovalRequest *request);

#endif
