/*  al_broker_status.c: the broker's status server: the answer to a StatusQuery.

    A StatusQuery is audited like any message, then answered with a StatusReply:
    "agents" (authenticated connections and their liveness), "approvals" (production
    requests waiting for approvers) or "journal" (deploy-manager's step journal of one
    deployment, as JSON). An unknown query is answered with an error naming the known ones.

    Threading: the reactor thread only.
*/
#include "broker/al_broker_int.h"
#include <assert.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
s_journal_add_json (const al_store_journal_entry_t *entry, void *arg)
{
    json_t *entries = (json_t *) arg;
    json_t *object = json_pack ("{s:I, s:I, s:s, s:s, s:s, s:s}",
                                "sequence", (json_int_t) entry->sequence, "time_ms", (json_int_t) entry->time_ms,
                                "step", entry->step? entry->step: "", "phase", entry->phase? entry->phase: "",
                                "status", entry->status? entry->status: "", "detail", entry->detail? entry->detail: "");
    return object? json_array_append_new (entries, object): -1;
}

//  The step journal of one deployment as {"deployment_id": ID, "entries": [...]}, or NULL
//  when the store cannot be read (the caller answers an error: never an empty journal,
//  which would tell deploy-manager that nothing ran).
static char *
s_journal_json (al_broker_t *self, const char *deployment_id)
{
    json_t *entries = json_array ();
    json_t *root = json_pack ("{s:s, s:o}", "deployment_id", deployment_id? deployment_id: "", "entries", entries);
    char *text = NULL;
    if (root && deployment_id && *deployment_id
    &&  al_store_journal_list (self->store, deployment_id, s_journal_add_json, entries) == AL_STORE_OK)
        text = json_dumps (root, JSON_COMPACT);
    json_decref (root);
    return text;
}

void
al_broker_reply_status (al_broker_t *self, al_broker_peer_t *peer, const al_envelope_t *query)
{
    char id [48];
    al_envelope_t envelope;
    al_broker_envelope_init (self, &envelope, id, sizeof id, "status");
    Airlock__StatusReply reply = AIRLOCK__STATUS_REPLY__INIT;
    size_t count = zhashx_size (self->peers), index = 0;
    Airlock__AgentStatus *agents = NULL;
    Airlock__AgentStatus **agent_list = NULL;
    const Airlock__ApprovalRequest **approvals = NULL;
    char *json = NULL;
    if (strcmp (query->status_query->what, "agents") == 0) {
        agents = (Airlock__AgentStatus *) calloc (count + 1, sizeof *agents);
        agent_list = (Airlock__AgentStatus **) calloc (count + 1, sizeof *agent_list);
        assert (agents && agent_list);
        uint64_t now = al_broker_mono_ms ();
        for (al_broker_peer_t *other = (al_broker_peer_t *) zhashx_first (self->peers); other;
             other = (al_broker_peer_t *) zhashx_next (self->peers)) {
            if (!other->identity [0])
                continue;
            airlock__agent_status__init (&agents [index]);
            agents [index].identity = other->identity;
            agents [index].role = other->role;
            agents [index].last_heartbeat_ms = other->last_seen_ms;
            agents [index].alive = now - other->last_seen_mono <= other->dead_after_ms;
            agent_list [index] = &agents [index];
            index++;
        }
        reply.n_agents = index;
        reply.agents = agent_list;
    }
    else
    if (strcmp (query->status_query->what, "approvals") == 0) {
        size_t pending = al_approval_desk_pending (self->approvals, NULL, 0);
        approvals = (const Airlock__ApprovalRequest **) calloc (pending + 1, sizeof *approvals);
        assert (approvals);
        reply.n_approvals = al_approval_desk_pending (self->approvals, approvals, pending);
        reply.approvals = (Airlock__ApprovalRequest **) approvals;
    }
    else
    if (strcmp (query->status_query->what, "journal") == 0) {
        json = s_journal_json (self, query->status_query->filter);
        reply.json = json? json: (char *) "{\"error\":\"journal: cannot read the store\"}";
    }
    else {
        if (asprintf (&json, "{\"error\":\"unknown query '%s'; this broker answers: agents, approvals, journal\"}",
                      query->status_query->what) < 0)
            json = NULL;
        reply.json = json? json: (char *) "{}";
    }
    envelope.correlation_id = query->message_id;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_STATUS_REPLY;
    envelope.status_reply = &reply;
    size_t size = al_broker_pack (self, &envelope);
    al_broker_send_to (self, peer, self->pack_buffer, size);
    free (agents);
    free (agent_list);
    free (approvals);
    free (json);
}
