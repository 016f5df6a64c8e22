/*  al_deployer_int.h: internals shared by the files of the deployer (al_deployer*.c).

    The deployer object, the state of one run (al_deployer_run_t) and the functions one
    file of the critical path calls in another. Not installed; only deploy/al_deployer*.c
    include it. The contract is al_deployer.h.
*/
#ifndef AL_DEPLOYER_INT_H_INCLUDED
#define AL_DEPLOYER_INT_H_INCLUDED

#include "deploy/al_deployer.h"
#include "base/al_clock.h"
#include "base/al_error.h"
#include "base/al_file.h"
#include "base/al_text.h"
#include "deploy/al_artifacts.h"
#include "deploy/al_done.h"
#include "deploy/al_driver.h"
#include "deploy/al_instances.h"
#include "deploy/al_migrate.h"
#include "deploy/al_preflight.h"
#include "deploy/al_release_record.h"
#include "deploy/al_probe.h"
#include "deploy/al_rollout.h"
#include "policies/al_approval_gate.h"
#include "proto/al_signature.h"
#include <czmq.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define AL_DEPLOYER_PATH_SIZE 1024
#define AL_DEPLOYER_ENV_SLOTS 4
#define AL_DEPLOYER_STEP_SLOTS 8    // Airlock__Step values 0..7
#define AL_DEPLOYER_MAX_INSTANCES 1024

struct _al_deployer_t {
    const al_policy_t *policy;
    const al_services_t *services;
    char state_dir [AL_DEPLOYER_PATH_SIZE];
    char qa_reports [AL_DEPLOYER_PATH_SIZE]; // the qa agent's reports by digest; "" = none
    al_artifacts_t *artifacts;
    //  One driver per (service, environment), opened on first use.
    al_driver_t **drivers;          // services count × AL_DEPLOYER_ENV_SLOTS
    size_t service_count;
};

//  ---- one run ------------------------------------------------------------------------

typedef struct {
    al_deployer_t *self;
    const al_deploy_job_t *job;
    const al_deployer_hooks_t *hooks;
    al_deploy_result_t *result;
    const al_service_t *svc;
    const Airlock__DeployRequest *request;
    al_driver_t *driver;
    al_release_record_t record;             // as loaded at the start: current = what runs now
    char evidence_dir [AL_DEPLOYER_PATH_SIZE];
    unsigned instances;
    Airlock__Strategy strategy;
    //  The new release and the recorded one.
    char digest_ref [80];                   // "sha256:<hex>"
    char artifact_path [AL_DEPLOYER_PATH_SIZE];
    al_driver_vars_t to;
    bool has_from;
    char from_digest_ref [80];
    char from_artifact_path [AL_DEPLOYER_PATH_SIZE];
    al_driver_vars_t from;
    al_migration_set_t *set;
    char backup_path [AL_DEPLOYER_PATH_SIZE];
    //  Journal analysis.
    bool started [AL_DEPLOYER_STEP_SLOTS];
    bool finished [AL_DEPLOYER_STEP_SLOTS];
    Airlock__Outcome outcome [AL_DEPLOYER_STEP_SLOTS];
    //  Outcome.
    bool unrecorded;
    char failure [AL_DEPLOYER_DETAIL_SIZE];
    char rule [64];
    unsigned probes_run;
    unsigned probes_failed;
    double probe_latency_max_ms;
    json_t *soak_samples;                   // the soak's probe rounds (smoke-test results)
    json_t *smoke;                          // production smoke checks after the rollout, or NULL
    unsigned checkpoints_passed;            // the policy's soak checkpoints passed
    json_t *checkpoints;                    // each checkpoint judged: {at_ms, check, passed, detail}
    unsigned round_seen;                    // the latest probe round: instances of the new release
    unsigned round_failed;                  //   and how many of them failed
    unsigned hotfix_steps [2];              // a hotfix's canary ramp (first step, 100)
    char expedited [256];                   // what a hotfix shortened, "" otherwise
    bool grant_break_glass;                 // the verified grant fills the break_glass quorum
} al_deployer_run_t;

//  al_deployer.c
al_driver_t *
al_deployer_driver (al_deployer_t *self, const al_service_t *svc, Airlock__Environment env,
                    char *error, size_t error_size);
const char *
al_deployer_env_name (Airlock__Environment env);
int
al_deployer_make_dirs (const char *path, mode_t mode);
int
al_deployer_record_load (const al_deployer_t *self, const char *service, Airlock__Environment env,
                         al_release_record_t *record, char *error, size_t error_size);
int
al_deployer_record_save (const al_deployer_t *self, const char *service, Airlock__Environment env,
                         const al_release_record_t *record, char *error, size_t error_size);
const char *
al_deployer_step_name (Airlock__Step step);
int
al_deployer_write_json (const char *dir, const char *name, json_t *root, char sha256 [65],
                        char *error, size_t error_size);

//  al_deployer_run.c
void
al_deployer_fail (al_deployer_run_t *run, const char *format, ...) __attribute__ ((format (printf, 2, 3)));
int
al_deployer_journal (al_deployer_run_t *run, Airlock__Step step, Airlock__Outcome outcome, const char *detail);
uint64_t
al_deployer_now (const al_deployer_run_t *run);
void
al_deployer_progress (al_deployer_run_t *run, Airlock__Step step, Airlock__Outcome outcome, unsigned instance,
                      unsigned instances, unsigned percent, const char *format, ...) __attribute__ ((format (printf, 7, 8)));
bool
al_deployer_trigger (al_deployer_run_t *run);

//  al_deployer_soak.c
int
al_deployer_canary_soak (void *arg, unsigned percent, char *reason, size_t reason_size);
int
al_deployer_health_report (al_deployer_run_t *run, const char *name);
int
al_deployer_step_soak (al_deployer_run_t *run);

//  al_deployer_steps.c
int
al_deployer_artifact (al_deployer_run_t *run, const char *uri, const char *digest, bool keep, char *path, size_t path_size);
bool
al_deployer_has_database (const al_deployer_run_t *run, const char **db_p);
void
al_deployer_performance_at_soak_end (al_deployer_run_t *run);
void
al_deployer_plan_init (al_deployer_run_t *run, al_rollout_plan_t *plan);
int
al_deployer_rollback (al_deployer_run_t *run);
int
al_deployer_step_backup (al_deployer_run_t *run, bool *skipped);
int
al_deployer_step_migrate (al_deployer_run_t *run, bool *skipped);
int
al_deployer_step_preflight (al_deployer_run_t *run);
int
al_deployer_step_rollout (al_deployer_run_t *run);
void
al_deployer_vars (al_driver_vars_t *vars, const al_service_t *svc, const char *version, const char *artifact,
                  const char *digest_ref, Airlock__Environment env);

//  al_deployer_receipt.c
int
al_deployer_receipt (al_deployer_run_t *run, Airlock__Outcome outcome);

#endif
