/*  al_runbook.h: seed 002's runbook.md for one service, written from the live
    configuration (the library behind `airlock runbook`).

    Sections: deployment, operations, monitoring, rollback, QA, troubleshooting,
    escalation, from airlock.yaml, the policy (through the policy engine, so only a
    policy that validates is described), services.yaml, the service's migration set and
    notifications.yaml. Every number, path, role and name is read from those files;
    nothing is a placeholder except what only exists at release time (VERSION, RELEASE,
    the artifact), written in capitals.

    The output depends on the configuration alone, never on the clock or on what runs
    now: the same files give the same runbook byte for byte, so it can be committed and
    diffed. What is wrong with the configuration is listed under "Configuration warnings"
    at the top: pre-flight's own checks (deploy/al_preflight: strategy, instances,
    budget, observability, migrations), so the runbook warns about exactly what
    pre-flight would refuse; quorums no approver can meet; a soak shorter than its
    checkpoints; notifications nobody receives.

    Approver names, roles and key ids, the deploy windows and the freezes come from the
    policy's canonical JSON (al_policy_canonical_json), the validated form the digest
    covers; key material is never printed, only key ids. Not thread-safe: one owner.
*/
#ifndef AL_RUNBOOK_H_INCLUDED
#define AL_RUNBOOK_H_INCLUDED

#include <stddef.h>
#include <stdio.h>
#include "base/al_config.h"
#include "deploy/al_services.h"
#include "policies/al_policy.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _al_runbook_t al_runbook_t;

//  The runbook of svc (one of services) in focus on env (the Operations, Monitoring and
//  automatic rollback sections). config, policy and services are borrowed and must
//  outlive it. Loads notifications.yaml and the migration set and runs the checks.
//  NULL with error filled when the policy's canonical form cannot be read.
al_runbook_t *al_runbook_new (const al_config_t *config, const al_policy_t *policy, const al_services_t *services,
                              const al_service_t *svc, Airlock__Environment env, char *error, size_t size);
//  NULL-safe; sets *self_p to NULL.
void al_runbook_destroy (al_runbook_t **self_p);

//  The configuration warnings, in the order the runbook lists them.
size_t al_runbook_warning_count (const al_runbook_t *self);
const char *al_runbook_warning_at (const al_runbook_t *self, size_t index);
//  notifications.yaml exists but does not load: its error; NULL otherwise.
const char *al_runbook_notify_error (const al_runbook_t *self);

//  Write the runbook (Markdown) to out. 0, or -1 when out failed.
int al_runbook_render (const al_runbook_t *self, FILE *out);
//  Write it to path through a temporary file and a rename (a reader never sees half a
//  runbook), mode 0644. 0, or -1 with "PATH: what failed" in error.
int al_runbook_write (const al_runbook_t *self, const char *path, char *error, size_t size);

#ifdef __cplusplus
}
#endif

#endif
