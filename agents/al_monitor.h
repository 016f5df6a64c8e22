/*  al_monitor.h: the monitor agent: golden signals, soak rules, automatic rollback.

    Every interval the monitor scrapes the /metrics of every instance of every service in
    services.yaml (all at once, libcurl's multi interface, each bounded by a timeout),
    turns the scrapes into golden signals per (service, environment) (al_signals),
    and sends one SoakSignal per group to the broker: the broker records it, publishes
    it on its PUB socket (topic soak.<env>.<service>) and hands it to deploy-manager.

    Instances: the monitor reads the process driver's instance registries that
    deploy-manager keeps (STATE_DIR/deploy/drivers/<service>/<env>/instances.json), so it
    follows every start and stop without being told. Services run by the exec driver are
    not scraped by this monitor (their platform has its own).

    Deployments: the monitor subscribes to event.DeployProgress. When a rollout starts
    (or, if it missed that, when it first sees progress of a rollout or soak), it takes
    the baseline from the samples just before (seed 003's performance baseline; written
    to STATE_DIR/monitor/baselines/<deployment>.json and flagged baseline=true on the wire)
    and evaluates quality_rules.yaml on every sample until the soak ends (al_rules). A
    breach sends RollbackTrigger{rule, detail, the samples that broke it} to
    deploy-manager, once per deployment; "investigate" sends a Notification. Missing or
    stale evidence (failed scrapes, no instance up, silence) fails closed: a
    "missing_evidence" breach after the grace period.

    Threading: runs on the calling thread until interrupted (al_agent_interrupted).
*/
#ifndef AL_MONITOR_H_INCLUDED
#define AL_MONITOR_H_INCLUDED

#include <stddef.h>
#include "base/al_config.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AL_MONITOR_DEFAULT_INTERVAL_MS    1000
#define AL_MONITOR_DEFAULT_BASELINE       5

typedef struct {
    int interval_ms;                // scrape interval (default 1000; the demo uses 250)
    int scrape_timeout_ms;          // 0: 80% of the interval, at most 2000
    int baseline_samples;           // samples before a rollout that make its baseline (default 5)
    int evidence_grace_ms;          // 0: 3 intervals, at least 1000
} al_monitor_options_t;

void al_monitor_options_defaults (al_monitor_options_t *options);

//  Run the monitor with a loaded airlock.yaml until interrupted. Returns 0 after a clean
//  shutdown, 2 when it cannot start (error says why).
int al_monitor_run (const al_config_t *config, const al_monitor_options_t *options,
                    char *error, size_t error_size);

#ifdef __cplusplus
}
#endif

#endif
