/*  al_status_view.h: what `airlock status` derives from the broker's StatusReply.

    The agents the broker sees, each with the age of its last heartbeat, and the agents
    `airlock up` runs that the broker does not see alive, each with the line of its log
    that says why (agents/al_process_logs). cli/cmd_status.c parses its arguments,
    asks the broker and prints these; the decisions live here, tested without the
    binary (tests/agents/test_status_view.c).

    Pure functions of their inputs (the reply, the clock given, the logs on disk);
    thread-safe.
*/
#ifndef AL_STATUS_VIEW_H_INCLUDED
#define AL_STATUS_VIEW_H_INCLUDED

#include <jansson.h>
#include <stdint.h>
#include "base/al_config.h"
#include "proto/al_codec.h"

#ifdef __cplusplus
extern "C" {
#endif

//  The agents of REPLY at wall-clock NOW_MS: [{"identity", "role", "alive",
//  "last_heartbeat_ms", "age_seconds"}], age_seconds null when the agent never sent a
//  heartbeat or its clock is ahead of ours. The caller owns the array.
json_t *al_status_view_agents (const Airlock__StatusReply *reply, uint64_t now_ms);

//  The bus agents `airlock up` runs (al_process_logs_agent_at) that REPLY shows no live
//  instance of, each with the last error line of its log: [{"agent", "log",
//  "last_line"}]. An agent without a log (never started by `airlock up`) is not listed.
//  The caller owns the array.
json_t *al_status_view_not_connected (const al_config_t *config, const Airlock__StatusReply *reply);

//  "never", "just now" (a heartbeat ahead of our clock) or "12.5 s ago", for a human.
void al_status_view_age_text (uint64_t last_heartbeat_ms, uint64_t now_ms, char *text, size_t size);

#ifdef __cplusplus
}
#endif

#endif
