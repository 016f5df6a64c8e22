/*  al_console_data.h: the web console's data: the JSON its API answers and the events it
    streams to the browsers, from what airlock already offers, read-only.

    `airlock console` (cli/cmd_console.c) starts the HTTP server (console/al_console.h),
    hands it al_console_data_api as its API, and passes every envelope of the event bus
    to al_console_data_event, publishing what comes back. The API names:
      agents     the broker's StatusQuery "agents", and for each process `airlock up`
                 runs its restarts and the last error line of its log (al_process_logs)
      releases   the orchestrator's release files with their deploy journals and whether
                 each waits for approval (al_releases), plus the live progress seen on
                 the bus (DeployProgress: step, percent)
      approvals  each pending production request as `airlock approve` shows it
                 (al_request_view: facts, escaped agent text, window, freeze, quorum)
                 with the signatures the audit log holds for it so far (store/al_replay)
      audit      the audit log filtered (type, sender, denied only, release, text),
                 newest first, a page at a time (limit, before: a sequence);
      audit_row  one row with its hash, the previous row's hash and whether the link
                 holds; verify  the chain against the latest signed checkpoint;
      history    seed 001's deployment history table (al_replay_history_row) of the
                 deployments `airlock audit history` lists (al_audit_history_listed)
      soak_rules the quality rules' thresholds and the soak's checkpoints
    The events: the soak signals of every service, each judged by the monitor's rules
    (deploy/al_rules: the limit and status of every rule, the baseline), the rollback
    triggers, deploy progress and receipts.

    audit, history and approvals answer from a view of the log kept in the object
    (agents/al_console_log: a replay and a bounded window of the newest rows) and
    advanced over the new rows at each request (built anew only when the log was
    replaced or truncated); older rows are read from the store when a page needs them.

    Threading: al_console_data_api may be called from several threads at once (the
    agent runtime is thread-safe, the store is opened read-only per request, the live
    progress and the log view are under mutexes); al_console_data_event from one
    thread only.
*/
#ifndef AL_CONSOLE_DATA_H_INCLUDED
#define AL_CONSOLE_DATA_H_INCLUDED

#include "agents/al_agent.h"
#include "agents/al_console_log.h"
#include "base/al_config.h"
#include "proto/al_codec.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct _al_console_data_t al_console_data_t;

//  A query parameter of request by name, or NULL when absent (the HTTP server's own).
typedef const char *(al_console_data_arg_fn) (const void *request, const char *key);

//  The data of the console over config and agent (both borrowed: they must outlive
//  it); timeout_ms bounds each wait for the broker. Loads the policy for the soak
//  judgement (al_console_data_judges says whether it loaded). NULL if memory runs out.
al_console_data_t *al_console_data_new (const al_config_t *config, al_agent_t *agent, int timeout_ms);
void al_console_data_destroy (al_console_data_t **self_p);

//  False when the policy did not load: soak samples are streamed unjudged.
bool al_console_data_judges (const al_console_data_t *self);

//  The JSON of API name for request (its parameters read through arg), or NULL with
//  *status (404 no such API, 400 a bad parameter, 503 the broker or store is not
//  there) and error set. The caller owns the result.
json_t *al_console_data_api (al_console_data_t *self, const char *name, al_console_data_arg_fn *arg, const void *request,
                             int *status, char *error, size_t error_size);

//  What the log view cost so far (for tests and diagnostics): al_console_log_stats.
typedef al_console_log_stats_t al_console_data_log_stats_t;

void al_console_data_log_stats (al_console_data_t *self, al_console_data_log_stats_t *stats);

//  Keep the newest ROWS rows in memory instead of AL_CONSOLE_LOG_WINDOW_ROWS (the view
//  starts over). False if memory runs out (the view is unchanged).
bool al_console_data_set_window (al_console_data_t *self, size_t rows);

//  What to stream for an envelope received on topic (missed: how many the subscriber
//  lost before it): the JSON with *event_p its event name ("soak", "rollback",
//  "progress", "receipt"), or NULL (*event_p NULL) for nothing. The caller owns it.
json_t *al_console_data_event (al_console_data_t *self, const char *topic, const al_envelope_t *envelope,
                               uint64_t missed, const char **event_p);

#endif
