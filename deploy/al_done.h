/*  al_done.h: the Definition of Done of one deployment, computed point by point from
    its evidence.

    quality_rules.yaml lists the points (definition_of_done: {id, text}); this module
    says, for each, "true", "false" or "not_applicable" and why, from what the critical
    path actually did: the steps the journal recorded and their details, pre-flight's
    checks (connectivity-report.json), the QA report digest the grant carries, the
    rollback rule. Nothing is ticked from the outcome alone, and a point airlock does not
    know how to evaluate is "false" (fail closed): a policy cannot add a tick airlock
    never checked.

    Pure: no I/O, no clock; the deployer gathers the evidence and writes the result into
    deploy_receipt.json.
*/
#ifndef AL_DONE_H_INCLUDED
#define AL_DONE_H_INCLUDED

#include "policies/al_policy.h"
#include "proto/al_codec.h"
#include <stddef.h>
#include <jansson.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    AL_DONE_FALSE = 0,
    AL_DONE_TRUE,
    AL_DONE_NOT_APPLICABLE
} al_done_status_t;

//  How one step of the critical path ended, as the journal recorded it.
typedef struct {
    bool finished;                      // the journal holds its end
    Airlock__Outcome outcome;           // SUCCEEDED, SKIPPED or FAILED when finished
    const char *detail;                 // its journal detail, or NULL
} al_done_step_t;

#define AL_DONE_STEP_SLOTS 8            // Airlock__Step values 0..7

//  Everything the points are computed from; every pointer is borrowed and may be NULL.
typedef struct {
    Airlock__Environment environment;
    Airlock__DeploymentType deployment_type;
    Airlock__Outcome outcome;           // the deployment's: SUCCEEDED, ROLLED_BACK or FAILED
    const char *failure;                // why it did not succeed, or NULL
    al_done_step_t steps [AL_DONE_STEP_SLOTS];  // by Airlock__Step
    const json_t *preflight_checks;     // connectivity-report.json's "checks" array, or NULL
    const char *qa_report_sha256;       // the granted request's QA report digest (production)
    const char *rule;                   // the rollback rule, or NULL / ""
    bool has_database;                  // services.yaml names a database in this environment
    bool has_migrations;                // services.yaml names a migration set
    bool recorded;                      // the journal took every record of this deployment
} al_done_evidence_t;

//  The policy's points in its order, each {"id", "text", "status", "reason"} with status
//  "true" | "false" | "not_applicable". *done is true only when the deployment
//  succeeded and every applicable point is true; why (why_size bytes) says so, or names
//  the first thing that stops it. The caller owns the array.
json_t *al_done_evaluate (const al_policy_t *policy, const al_done_evidence_t *evidence,
                          bool *done, char *why, size_t why_size);

//  "true", "false", "not_applicable".
const char *al_done_status_name (al_done_status_t status);

#ifdef __cplusplus
}
#endif

#endif
