/*  external_agent.c: an agent built outside the airlock tree, against an installed prefix.

    test_install.sh compiles it twice, with pkg-config (airlock.pc) and with CMake
    (find_package(airlock), consumer/CMakeLists.txt), using nothing but the installed
    headers and libairlock.so. It connects to a running broker as the auditor role from
    the state directory's airlock.yaml, waits for its Register to be acknowledged, asks
    StatusQuery{what: "agents"} and checks that the broker's answer lists this very
    connection. Prints "registered" and "status: IDENTITY ROLE" lines; exits 0 only if
    the reply came and named the auditor.

    usage: external_agent AIRLOCK.YAML
*/
#include "agents/al_agent.h"
#include "base/al_config.h"
#include "proto/al_codec.h"
#include "proto/airlock.pb-c.h"

#include <stdio.h>
#include <string.h>

int
main (int argc, char **argv)
{
    if (argc != 2) {
        fprintf (stderr, "usage: external_agent AIRLOCK.YAML\n");
        return 2;
    }
    int exit_code = 1;
    char error [512] = "";
    al_agent_t *agent = NULL;
    al_envelope_t *reply = NULL;
    al_config_t *config = al_config_load (argv [1], error, sizeof error);
    if (!config) {
        fprintf (stderr, "external_agent: %s\n", error);
        goto cleanup;
    }
    agent = al_agent_new_for_role (config, "auditor", false, error, sizeof error);
    if (!agent) {
        fprintf (stderr, "external_agent: %s\n", error);
        goto cleanup;
    }
    //  Generous: the machine is shared; the broker may still be starting.
    if (al_agent_wait_registered (agent, 60000) != 0) {
        al_agent_last_error (agent, error, sizeof error);
        fprintf (stderr, "external_agent: not registered within 60 s: %s\n", error);
        goto cleanup;
    }
    printf ("registered\n");
    al_agent_result_t result;
    reply = al_agent_status_query (agent, "agents", NULL, 0, 60000, &result);
    if (!reply) {
        fprintf (stderr, "external_agent: no StatusReply: %s %s\n",
                 al_agent_status_name (result.status), result.reason);
        goto cleanup;
    }
    if (reply->body_case != AIRLOCK__ENVELOPE__BODY_STATUS_REPLY) {
        fprintf (stderr, "external_agent: the answer is not a StatusReply\n");
        goto cleanup;
    }
    for (size_t index = 0; index < reply->status_reply->n_agents; index++) {
        const Airlock__AgentStatus *status = reply->status_reply->agents [index];
        printf ("status: %s %s\n", status->identity, status->role);
        if (strcmp (status->role, "auditor") == 0)
            exit_code = 0;
    }
    if (exit_code != 0)
        fprintf (stderr, "external_agent: the StatusReply does not list the auditor\n");
cleanup:
    al_codec_free (&reply);
    al_agent_destroy (&agent);
    al_config_destroy (&config);
    return exit_code;
}
