/*  agents_test_util.h: the real agents around a broker, for end-to-end soak tests.

    A fixture is the broker harness (tests/broker/harness.h) with the certificates of
    deploy-manager and the monitor saved under keys/, an always-open calendar, an
    orchestrator client registered with the broker, and deploy-manager and the monitor
    (`airlock agent ...`) as child processes logging to DIR/<role>.log. The caller writes
    DIR/services.yaml (and edits DIR/policy) between atu_new and atu_start: the agents
    read them when they start.

    atu_deploy sends a DeployRequest for a demo-service release to staging and waits for
    its receipt; a callback runs once deploy-manager has journaled the soak as started
    (to break something in the middle of a soak). On a missing receipt it fails with the
    agents' logs. atu_destroy stops the agents (SIGTERM, reaped), then the broker, and
    removes the directory; it is safe after a failed assertion.
*/
#ifndef AGENTS_TEST_UTIL_H_INCLUDED
#define AGENTS_TEST_UTIL_H_INCLUDED

#include "../broker/harness.h"
#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

typedef struct {
    harness_t *harness;
    pid_t deploy_manager;
    pid_t monitor;
    int counter;
    char deploy_state [400];        // DIR/deploy: the drivers' registries and the receipts
    char services_path [400];       // DIR/services.yaml
    zsock_t *orchestrator;
} atu_fixture_t;

//  The harness with orchestrator, deploy-manager, monitor and auditor identities.
atu_fixture_t *atu_new (void);
//  The broker, the orchestrator's registration, deploy-manager and the monitor (every
//  monitor_interval_ms), and both registered with the broker.
void atu_start (atu_fixture_t *self, int monitor_interval_ms);
void atu_destroy (atu_fixture_t **self_p);
//  SIGTERM one agent and reap it (pid set to 0); nothing if not running.
void atu_stop (pid_t *pid);

//  Send envelope from client (message id set here) and return the broker's Ack or Denied
//  for it (caller frees); fails the test without one.
al_envelope_t *atu_roundtrip (atu_fixture_t *self, zsock_t *client, al_envelope_t *envelope);

typedef void (atu_soak_fn) (atu_fixture_t *self, void *arg);
//  Deploy demo-service VERSION (with faults: demo-service flags, may be NULL) as service
//  to staging; returns the receipt (caller decrefs). on_soak, when set, runs once the
//  soak has started.
json_t *atu_deploy (atu_fixture_t *self, const char *service, const char *deployment_id, const char *version,
                    const char *faults, atu_soak_fn *on_soak, void *arg);
//  The receipt says outcome and rule ("" for none); with a rule, its trigger carries the
//  rule and at least one sample. Fails with the receipt's detail otherwise.
void atu_expect (json_t *receipt, const char *outcome, const char *rule);
//  Has deploy-manager journaled deployment_id's soak as started?
bool atu_soak_started (atu_fixture_t *self, const char *deployment_id);
//  SoakSignals of deployment_id in the audit log from source ("scrape", "prometheus")
//  about version with complete evidence and traffic: what the soak was judged on. When
//  set, *mean_rps and *max_error_ratio describe those samples.
int atu_complete_samples (atu_fixture_t *self, const char *deployment_id, const char *source, const char *version,
                          double *mean_rps, double *max_error_ratio);
//  The monitor's log (caller frees), "" when there is none.
char *atu_monitor_log (atu_fixture_t *self);

#endif
