/*  al_status_view.c: what `airlock status` derives from the broker's StatusReply.
    See al_status_view.h. Moved from cli/cmd_status.c (the CLI parses, calls, prints).
*/
#include "agents/al_status_view.h"
#include "agents/al_process_logs.h"

#include <assert.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_t *
al_status_view_agents (const Airlock__StatusReply *reply, uint64_t now_ms)
{
    assert (reply);
    json_t *agents = json_array ();
    for (size_t index = 0; index < reply->n_agents; index++) {
        const Airlock__AgentStatus *agent = reply->agents [index];
        json_t *item = json_pack ("{s:s, s:s, s:b, s:I}", "identity", agent->identity, "role", agent->role,
                                  "alive", agent->alive, "last_heartbeat_ms", (json_int_t) agent->last_heartbeat_ms);
        if (agent->last_heartbeat_ms && agent->last_heartbeat_ms <= now_ms)
            json_object_set_new (item, "age_seconds", json_real ((double) (now_ms - agent->last_heartbeat_ms) / 1000.0));
        else
            json_object_set_new (item, "age_seconds", json_null ());
        json_array_append_new (agents, item);
    }
    return agents;
}

json_t *
al_status_view_not_connected (const al_config_t *config, const Airlock__StatusReply *reply)
{
    assert (config && reply);
    json_t *silent = json_array ();
    for (size_t index = 0; index < al_process_logs_agent_count (); index++) {
        const char *name = al_process_logs_agent_at (index);
        bool alive = false;
        for (size_t at = 0; at < reply->n_agents; at++)
            alive |= reply->agents [at]->alive && strcmp (reply->agents [at]->role, name) == 0;
        char *log = alive? NULL: al_process_logs_path (config, name);
        char line [512];
        if (log && al_process_logs_last_error (log, line, sizeof line))
            json_array_append_new (silent, json_pack ("{s:s, s:s, s:s}", "agent", name, "log", log, "last_line", line));
        free (log);
    }
    return silent;
}

void
al_status_view_age_text (uint64_t last_heartbeat_ms, uint64_t now_ms, char *text, size_t size)
{
    assert (text && size);
    if (last_heartbeat_ms == 0)
        snprintf (text, size, "never");
    else
    if (last_heartbeat_ms > now_ms)
        snprintf (text, size, "just now");
    else
        snprintf (text, size, "%.1f s ago", (double) (now_ms - last_heartbeat_ms) / 1000.0);
}
