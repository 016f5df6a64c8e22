/*  deploy_test_util.h: fixtures shared by the deployer and deploy-manager tests.

    A fixture directory holds: a copy of the default policy with an always-open calendar,
    release artifacts (small shell scripts that exec the demo service with a version and
    faults, so each release has its own digest), and services.yaml.
*/
#ifndef DEPLOY_TEST_UTIL_H_INCLUDED
#define DEPLOY_TEST_UTIL_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

//  Make dir/policy from the default policy, calendar always open.
void dtu_policy (const char *dir, const char *policy_dir);

//  Rewrite policy_dir/constraints.yaml's calendar: no windows, no freezes.
void dtu_open_calendar (const char *policy_dir);

//  Write dir/art/NAME.sh: prints the SERVICE_TOKEN line when set, then execs the demo
//  service with --version VERSION and EXTRA flags. Fills path and its sha256 (hex).
void dtu_artifact (const char *dir, const char *name, const char *version, const char *extra,
                   char *path, size_t path_size, char sha256 [65]);

//  Count running instances of a (service, env) from its driver registry under
//  state_dir/drivers, probing each one's /healthz: how many answer with version, and
//  how many run in all (answering or not).
void dtu_count (const char *deploy_state, const char *service, const char *env, const char *version,
                int *with_version, int *total);

//  Background traffic: GET /work on the running instances of (service, env), round
//  robin, about rps requests per second, until dtu_traffic_stop.
typedef struct _dtu_traffic_t dtu_traffic_t;
dtu_traffic_t *dtu_traffic_start (const char *deploy_state, const char *service, const char *env, int rps);
void dtu_traffic_stop (dtu_traffic_t **self_p);

//  Does any regular file under dir contain needle?
bool dtu_tree_contains (const char *dir, const char *needle);

//  Read a whole file (caller frees), NULL if missing.
char *dtu_read (const char *path);
//  Keep a QA report for artifact_sha256 (approved or not) in the qa agent's report store
//  of state_dir (STATE_DIR/qa/.reports) and put its digest in digest.
void dtu_qa_report (const char *state_dir, const char *artifact_sha256, bool approved, char digest [65]);

void dtu_remove_tree (const char *path);

#endif
