/*  al_mcp_server.h: a Model Context Protocol server (JSON-RPC 2.0 over a byte stream)
    for AI agents: the library behind `airlock mcp`.

    One message per line (the stdio transport); MCP revisions 2025-11-25, 2025-06-18,
    2025-03-26 and 2024-11-05 (initialize picks the client's, else the newest). Five
    tools: submit_release, get_status, list_approvals, request_rollback,
    recent_signals. A tool answers MCP content: one text item holding a JSON document,
    isError when it failed (and from 2025-06-18 the same document as structuredContent,
    with each tool's outputSchema and annotations in tools/list).

    Invariants:
    - The server acts with the agent it is given (`airlock mcp` connects with the ci
      certificate or an ai-agent identity's): the broker's permission table lets those
      send a ReleaseCandidate and status queries, never a deploy, never an approval.
      There is no approve tool; a tools/call of "approve" (or any unknown tool) is an
      error result that says a human approves.
    - Notifications (messages without an id) are never answered; every request gets
      exactly one answer, in order. Protocol errors are JSON-RPC errors (-32700 parse,
      -32600 invalid request, -32601 method not found, -32602 invalid params); a tool
      that fails (bad arguments, refused by the broker, unknown release) is a result
      with isError, which the model reads. A line above 4 MiB is one parse error and
      is dropped.
    - recent_signals listens on the broker's PUB socket for up to 2 s: samples published
      while it listens, each judged by deploy/al_rules; absent values are null.

    Threading: one owner thread; the agent runtime heartbeats in its own actor.
*/
#ifndef AL_MCP_SERVER_H_INCLUDED
#define AL_MCP_SERVER_H_INCLUDED

#include <stddef.h>
#include "agents/al_agent.h"
#include "base/al_config.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _al_mcp_server_t al_mcp_server_t;

//  A server acting through agent (registered or not) with config's policy and state
//  directory. Both are borrowed and must outlive the server. NULL if out of memory.
al_mcp_server_t *al_mcp_server_new (al_config_t *config, al_agent_t *agent);
//  NULL-safe; sets *self_p to NULL.
void al_mcp_server_destroy (al_mcp_server_t **self_p);

//  One line (a message or a batch, without its newline): the answer as compact JSON
//  (the caller frees it), or NULL when there is nothing to answer (notifications).
char *al_mcp_server_handle (al_mcp_server_t *self, const char *line, size_t length);

//  Read lines from input and write each answer, one line, to output, until input
//  ends or al_agent_interrupted(). 0; -1 when output broke.
int al_mcp_server_serve (al_mcp_server_t *self, int input, int output);

//  The revision negotiated at initialize ("2024-11-05" before it).
const char *al_mcp_server_protocol (const al_mcp_server_t *self);

#ifdef __cplusplus
}
#endif

#endif
