/*  al_watch_view.h: what `airlock watch` shows, derived from the audit log and the event bus.

    `airlock watch` (cli/cmd_watch.c) parses its arguments, subscribes and prints; this
    module decides what there is to print, so that the decisions are tested without the
    binary and no rule lives in the CLI:

    - before watching a deployment live, the audit log is asked about it
      (al_watch_view_ask_log): a finished deployment is answered from its logged receipt,
      one that never ran or that nobody knows ends the watch, one of a release the
      orchestrator holds is waited for;
    - each envelope the subscriber returns is fed to the view (al_watch_view_feed): only
      the watch's own topics and deployment count; a DeployProgress becomes a progress
      line (live, or history once its step finished), a DeployReceipt the final line and
      the outcome, a SoakSignal is judged by deploy/al_rules (al_rules_stream_t, grace 0),
      never here, and becomes a line and a table of each rule's value, limit and status;
    - every item also comes as the JSON object of `--json` (one per line).

    Missing evidence is shown as missing ("missing", null in JSON, a "missing" list),
    never as a 0 that passes. Text that agents wrote (details, versions) is shown as
    received: the watch's lines are for an operator's terminal and JSON consumers, as
    before this module existed.

    Threading: one al_watch_view_t is used by one thread.
*/
#ifndef AL_WATCH_VIEW_H_INCLUDED
#define AL_WATCH_VIEW_H_INCLUDED

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "base/al_config.h"
#include "deploy/al_rules.h"
#include "policies/al_policy.h"
#include "proto/al_codec.h"

#ifdef __cplusplus
extern "C" {
#endif

//  Longest topic a view watches (the subscriber's limit).
#define AL_WATCH_TOPIC_SIZE 256
//  Size of each line of text an item carries.
#define AL_WATCH_LINE_SIZE 2048
//  Lines of the signals table: a headline, the column titles, a row per rule, the verdict.
#define AL_WATCH_TABLE_LINES (3 + AL_RULES_ROWS)

typedef struct _al_watch_view_t al_watch_view_t;

//  A deployment watch: topics event.DeployProgress and event.DeployReceipt, envelopes of
//  DEPLOYMENT (at most AL_CODEC_MAX_ID_LEN characters) only. NULL if out of memory.
al_watch_view_t *al_watch_view_new_deployment (const char *deployment);

//  A signals watch of SERVICE (at most AL_CODEC_MAX_SERVICE_LEN characters) in
//  ENVIRONMENT (a name of al_environment_from_name): topic soak.ENVIRONMENT.SERVICE, samples
//  judged by deploy/al_rules with the policy's thresholds and grace 0 (the watch judges
//  the samples it sees; missing evidence counts at once). NULL if out of memory.
al_watch_view_t *al_watch_view_new_signals (const char *service, const char *environment,
                                            const al_policy_thresholds_t *thresholds);

//  NULL-safe; sets *self_p to NULL.
void al_watch_view_destroy (al_watch_view_t **self_p);

//  The topics to subscribe to, in order (index < al_watch_view_topic_count).
size_t al_watch_view_topic_count (const al_watch_view_t *self);
const char *al_watch_view_topic (const al_watch_view_t *self, size_t index);

//  Is TOPIC exactly one of the view's topics? A prefix subscription also delivers longer
//  topics (soak.production.api-v2 for soak.production.api); only exact ones count, for
//  gaps too.
bool al_watch_view_is_ours (const al_watch_view_t *self, const char *topic);

//  Did a rule of the signals watch breach (missing evidence included)? False for a
//  deployment watch.
bool al_watch_view_breached (const al_watch_view_t *self);

typedef enum {
    AL_WATCH_SHOW_NOTHING = 0,      // not for this watch
    AL_WATCH_SHOW_PROGRESS,         // a DeployProgress of the deployment
    AL_WATCH_SHOW_RECEIPT,          // its DeployReceipt (live or from the log): the end
    AL_WATCH_SHOW_SIGNAL            // a SoakSignal of the service, judged or baseline
} al_watch_show_t;

//  What one envelope (or the log's receipt) shows.
typedef struct {
    al_watch_show_t show;
    json_t *json;                   // the --json object; the caller's (json_decref); NULL
                                    // for NOTHING
    char line [AL_WATCH_LINE_SIZE]; // the plain line (progress, receipt, a signal sample)
    bool live;                      // PROGRESS: a step in progress (the one line redrawn
                                    // in place on a terminal); false: history
    bool succeeded;                 // RECEIPT: the outcome is SUCCEEDED
    bool breach;                    // SIGNAL: the soak's verdict is a breach (sticky)
    char table [AL_WATCH_TABLE_LINES][AL_WATCH_LINE_SIZE / 4];
                                    // SIGNAL: the table shown on a terminal, line by line
} al_watch_item_t;

//  What ENVELOPE, received on TOPIC as event SEQUENCE at NOW_MS (monotonic), shows.
//  Fills item (show NOTHING when it is not for this view). The caller frees item->json.
void al_watch_view_feed (al_watch_view_t *self, const char *topic, const al_envelope_t *envelope,
                         uint64_t sequence, int64_t now_ms, al_watch_item_t *item);

//  The audit log's answer about a deployment, before watching it live.
typedef enum {
    AL_WATCH_LOG_LIVE = 0,          // not finished, or not started and its release is
                                    // known (message says so): watch live
    AL_WATCH_LOG_UNREADABLE,        // no log to ask (message says why): watch live
    AL_WATCH_LOG_FINISHED,          // finished: item holds the logged receipt
    AL_WATCH_LOG_REFUSED,           // it never ran (message: why)
    AL_WATCH_LOG_IS_RELEASE,        // the id is a release's (message: the deployments')
    AL_WATCH_LOG_UNKNOWN            // neither the log nor the orchestrator knows it
} al_watch_log_t;

//  Ask the audit log of CONFIG (read only) and, for an id it does not hold, the
//  orchestrator's releases. Fills message with what to tell the operator ("" when there
//  is nothing to say) and, for FINISHED, item (its json is the caller's).
al_watch_log_t al_watch_view_ask_log (const al_config_t *config, const char *deployment,
                                      al_watch_item_t *item, char *message, size_t message_size);

//  A rule row's value as shown: "1.25%", "150.0 ms", "3"; "missing" when its evidence
//  is; "-" for no number. And its limit, "-" when none.
void al_watch_row_value (const al_rules_row_t *row, char *text, size_t size);
void al_watch_row_limit (const al_rules_row_t *row, char *text, size_t size);

#ifdef __cplusplus
}
#endif

#endif
