/*  bus.h: a real bus for the subscriber and `airlock watch` tests: a state directory made
    by `airlock init` (al_init_state_dir) in a temporary directory, with our own limits in
    airlock.yaml, and the broker as a child process (tests/broker's broker_under_test).

    Test-only code; not part of libairlock. bus_destroy kills the broker and removes the
    directory.
*/
#ifndef BUS_H_INCLUDED
#define BUS_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "agents/al_agent.h"
#include "base/al_config.h"

typedef struct {
    char dir [256];             // the state directory
    char config_path [300];     // dir/airlock.yaml
    al_config_t *config;        // loaded after init
    pid_t broker_pid;
} bus_t;

//  A state directory with `limits_yaml` (lines under "limits:", may be NULL) in
//  airlock.yaml, heartbeats every 200 ms. NULL (with a message on stderr) on failure.
bus_t *bus_new (const char *limits_yaml);
void bus_destroy (bus_t **self_p);

//  Start the broker and wait for it to be ready. Returns 0 or -1.
int bus_broker_start (bus_t *self);
//  SIGTERM the broker and wait for it; returns its exit status, or -1.
int bus_broker_stop (bus_t *self);

//  A client of ROLE (no deliveries), registered. NULL on failure.
al_agent_t *bus_agent (bus_t *self, const char *role);

//  Send a DeployProgress / DeployReceipt / SoakSignal and wait for the broker's Ack.
//  Returns 0 when acknowledged.
int bus_send_progress (al_agent_t *agent, const char *deployment, Airlock__Step step,
                       Airlock__Outcome outcome, uint32_t instance, uint32_t instances,
                       uint32_t percent, const char *detail);
//  A deploy-journal record (DeployProgress with journal set): what makes a deployment
//  exist in the audit log's replay.
int bus_send_journal (al_agent_t *agent, const char *deployment, Airlock__Step step, Airlock__Outcome outcome,
                      const char *detail);
int bus_send_receipt (al_agent_t *agent, const char *deployment, Airlock__Outcome outcome);
int bus_send_signal (al_agent_t *agent, const char *service, Airlock__Environment environment,
                     const Airlock__SoakSignal *signal);

#endif
