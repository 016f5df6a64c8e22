/*  al_deploy_manager.h: the deploy-manager agent, the only actor that changes an environment.

    It connects to the broker as the deploy-manager role and takes the deliveries routed
    to it:
      - DeployRequest (development, staging) from the orchestrator: run it;
      - ExecuteDeploy (production) from the broker's approval gate: verify the grant again
        itself (al_approval_gate_verify_grant) and run it;
      - anything else that asks for a production change (a production DeployRequest, an
        ExecuteDeploy not from the broker, without a grant, or with a grant that does not
        verify) is refused: the refusal is reported to the broker as a DeployProgress
        "refused: why" (pre-flight, failed), so it is an audit row, and the orchestrator
        ends the release FAILED with it; nothing runs, so there is no receipt;
      - RollbackTrigger (the monitor) during a rollout or soak of that service: roll back.
    A delivery is acknowledged only once its deployment reached an end, so a deploy-manager
    killed mid-way gets it again on restart and resumes it from the broker's journal
    (StatusQuery "journal"); see al_deployer.h for the resume rules.

    Threading: runs on the calling thread until interrupted (SIGTERM/SIGINT through
    al_agent_catch_signals, or al_agent_set_interrupted).
*/
#ifndef AL_DEPLOY_MANAGER_H_INCLUDED
#define AL_DEPLOY_MANAGER_H_INCLUDED

#include <stddef.h>
#include "base/al_config.h"

#ifdef __cplusplus
extern "C" {
#endif

//  How long pre-flight waits for a monitor to register before it refuses a service whose
//  soak needs golden signals (a broker restart makes every agent register again).
#define AL_DEPLOY_MANAGER_MONITOR_WAIT_MS 20000

//  Run deploy-manager with a loaded airlock.yaml until interrupted. Returns 0 after a
//  clean shutdown, 2 when it cannot start (error says why: policy, services.yaml,
//  certificate, state directory).
int al_deploy_manager_run (const al_config_t *config, char *error, size_t error_size);

#ifdef __cplusplus
}
#endif

#endif
