/*  al_orchestrator.h: the orchestrator agent: one state machine per release.

        PREPARE -> STAGING -> VALIDATE -> APPROVE -> DEPLOY -> MONITOR -> DONE
                                                            \-> ROLLED_BACK | FAILED

    A release starts with a ReleaseCandidate (from `airlock submit`, CI or an AI agent's
    client, role ci). The orchestrator deploys it to staging (DeployRequest to
    deploy-manager), asks qa to validate it there (QaRequest), and, with an approved QA
    report, files the production deployment request (ApprovalRequest) built from real
    data after seed 001's template: changes, tests passed x/y, database changes and
    rollback, breaking changes, rollback plan with its command and estimate, monitoring,
    risk, deploy window. Then it only follows: the broker's gate and deploy-manager do the
    rest, and their DeployProgress / DeployReceipt tell it where the release is. It can
    never execute anything in production (the permission table has no such action for it).

    Deployment types (deployment_types.yaml): those that require staging go through it;
    rollback goes straight to approval (the artifact ran before); emergency skips staging
    only when the candidate asks for it, and then the broker's gate needs the policy's
    extra signatures. A QA failure ends the release before any approval is asked.

    Every release is persisted (STATE_DIR/orchestrator/releases/<id>.json, atomic writes,
    through agents/al_orchestrator_release) before the delivery that moved it is
    acknowledged, so a restarted orchestrator resumes: the broker redelivers what was not
    acknowledged and every step is idempotent. Everyone else reads these files through
    agents/al_orchestrator_release too.
*/
#ifndef AL_ORCHESTRATOR_H_INCLUDED
#define AL_ORCHESTRATOR_H_INCLUDED

#include <stddef.h>
#include "base/al_config.h"

#ifdef __cplusplus
extern "C" {
#endif

//  Run the orchestrator until interrupted. 0 after a clean shutdown, 2 when it cannot start.
int al_orchestrator_run (const al_config_t *config, char *error, size_t error_size);

#ifdef __cplusplus
}
#endif

#endif
