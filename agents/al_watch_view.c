/*  al_watch_view.c: what `airlock watch` shows, derived from the audit log and the event bus.

    The lines and JSON objects of a deployment watch (progress, receipt, the log's
    receipt) and of a signals watch (each sample judged by deploy/al_rules). Moved out of
    cli/cmd_watch.c so that the CLI only parses and prints (docs/design.md, "Rules in the
    CLI"); the text and the JSON keys are unchanged (docs/cli.md, tests/agents/test_watch.c).
    See al_watch_view.h.
*/
#include "agents/al_watch_view.h"
#include "agents/al_releases.h"
#include "base/al_clock.h"
#include "base/al_id.h"
#include "store/al_replay.h"
#include "store/al_store.h"

#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct _al_watch_view_t {
    char deployment [AL_CODEC_MAX_ID_LEN + 1];  // "" for a signals watch
    char service [AL_CODEC_MAX_SERVICE_LEN + 1];
    char environment [32];
    char topics [2][AL_WATCH_TOPIC_SIZE];
    size_t topic_count;
    al_rules_stream_t *rules;                   // signals watch: judges the samples
};

al_watch_view_t *
al_watch_view_new_deployment (const char *deployment)
{
    assert (deployment && strlen (deployment) <= AL_CODEC_MAX_ID_LEN);
    al_watch_view_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    snprintf (self->deployment, sizeof self->deployment, "%s", deployment);
    snprintf (self->topics [self->topic_count++], AL_WATCH_TOPIC_SIZE, "event.DeployProgress");
    snprintf (self->topics [self->topic_count++], AL_WATCH_TOPIC_SIZE, "event.DeployReceipt");
    return self;
}

al_watch_view_t *
al_watch_view_new_signals (const char *service, const char *environment, const al_policy_thresholds_t *thresholds)
{
    assert (service && environment && thresholds);
    assert (strlen (service) <= AL_CODEC_MAX_SERVICE_LEN && strlen (environment) < 32);
    al_watch_view_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    snprintf (self->service, sizeof self->service, "%s", service);
    snprintf (self->environment, sizeof self->environment, "%s", environment);
    snprintf (self->topics [self->topic_count++], AL_WATCH_TOPIC_SIZE, "soak.%s.%s", environment, service);
    //  Grace 0: a watch judges the samples it sees, and missing evidence in one of them
    //  counts at once (the monitor, which also sees the silences, waits its grace period
    //  before it rolls back).
    self->rules = al_rules_stream_new (thresholds, 0);
    if (!self->rules)
        al_watch_view_destroy (&self);
    return self;
}

void
al_watch_view_destroy (al_watch_view_t **self_p)
{
    assert (self_p);
    al_watch_view_t *self = *self_p;
    if (!self)
        return;
    al_rules_stream_destroy (&self->rules);
    free (self);
    *self_p = NULL;
}

size_t
al_watch_view_topic_count (const al_watch_view_t *self)
{
    assert (self);
    return self->topic_count;
}

const char *
al_watch_view_topic (const al_watch_view_t *self, size_t index)
{
    assert (self);
    assert (index < self->topic_count);
    return self->topics [index];
}

bool
al_watch_view_is_ours (const al_watch_view_t *self, const char *topic)
{
    assert (self && topic);
    for (size_t index = 0; index < self->topic_count; index++)
        if (strcmp (topic, self->topics [index]) == 0)
            return true;
    return false;
}

bool
al_watch_view_breached (const al_watch_view_t *self)
{
    assert (self);
    return self->rules && al_rules_stream_breached (self->rules);
}

//  ---- text and JSON helpers ------------------------------------------------------------

//  ISO 8601 UTC of a wall-clock time in ms; "" for 0 (JSON: null).
static void
s_iso_time (uint64_t ms, char *text, size_t size)
{
    if (ms == 0)
        snprintf (text, size, "%s", "");
    else
        al_clock_wall_iso8601 ((int64_t) (ms > INT64_MAX? INT64_MAX: ms), text, size);
}

//  "12:00:01" local time of a wall-clock ms, for the human lines; "--:--:--" for 0.
static void
s_clock_time (uint64_t ms, char *text, size_t size)
{
    if (ms == 0) {
        snprintf (text, size, "--:--:--");
        return;
    }
    time_t seconds = (time_t) (ms / 1000);
    struct tm tm;
    if (!localtime_r (&seconds, &tm) || strftime (text, size, "%H:%M:%S", &tm) == 0)
        snprintf (text, size, "--:--:--");
}

//  A real, or null for NaN/infinity (JSON has no NaN; jansson refuses it).
static json_t *
s_json_number (double value)
{
    return isfinite (value)? json_real (value): json_null ();
}

static const char *
s_outcome_word (Airlock__Outcome outcome, bool instance)
{
    switch (outcome) {
        case AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED:   return instance? "ready": "succeeded";
        case AIRLOCK__OUTCOME__OUTCOME_ROLLED_BACK: return "rolled back";
        default: {
            const char *name = al_outcome_name (outcome);
            return name? name: "unknown";
        }
    }
}

static json_t *
s_envelope_json (const al_envelope_t *envelope, const char *type, uint64_t sequence)
{
    char stamp [AL_CLOCK_ISO8601_SIZE];
    s_iso_time (envelope->timestamp_ms, stamp, sizeof stamp);
    json_t *object = json_pack ("{s:s, s:s}", "deployment", envelope->deployment_id, "type", type);
    json_object_set_new (object, "sequence", json_integer ((json_int_t) sequence));
    json_object_set_new (object, "time", *stamp? json_string (stamp): json_null ());
    if (envelope->sender && *envelope->sender->identity)
        json_object_set_new (object, "sender", json_string (envelope->sender->identity));
    return object;
}

//  ---- deployment watch ------------------------------------------------------------------

//  "[rollout] instance 2/3 ready  67%  detail". A step's progress after its start says
//  "running" ("[soak] running  56%  ..."), not "started" again; an instance's progress
//  within a running step says what happened in its detail ("ready: 200"), no word.
static void
s_progress (const al_envelope_t *envelope, uint64_t sequence, al_watch_item_t *item)
{
    const Airlock__DeployProgress *progress = envelope->deploy_progress;
    const char *step = al_step_name (progress->step);
    const char *outcome = al_outcome_name (progress->outcome);
    item->show = AL_WATCH_SHOW_PROGRESS;
    item->json = s_envelope_json (envelope, "DeployProgress", sequence);
    json_object_set_new (item->json, "step", json_string (step? step: "unknown"));
    json_object_set_new (item->json, "outcome", json_string (outcome? outcome: "unknown"));
    json_object_set_new (item->json, "instance", json_integer (progress->instance));
    json_object_set_new (item->json, "instances", json_integer (progress->instances));
    json_object_set_new (item->json, "percent", json_integer (progress->percent));
    json_object_set_new (item->json, "detail", json_string (progress->detail));

    char clock [16], where [64] = "", percent [16] = "";
    s_clock_time (envelope->timestamp_ms, clock, sizeof clock);
    if (progress->instance)
        snprintf (where, sizeof where, "instance %u/%u", progress->instance, progress->instances);
    if (progress->percent)
        snprintf (percent, sizeof percent, "  %u%%", progress->percent);
    const char *word = s_outcome_word (progress->outcome, progress->instance > 0);
    if (progress->outcome == AIRLOCK__OUTCOME__OUTCOME_STARTED) {
        if (progress->instance && *progress->detail)
            word = "";
        else
        if (!progress->instance && progress->percent)
            word = "running";
    }
    snprintf (item->line, sizeof item->line, "%s [%s] %s%s%s%s%s%s", clock, step? step: "?", where,
              *where && *word? " ": "", word, percent, *progress->detail? "  ": "", progress->detail);
    //  A step-level result is history; everything in between (a step starting, instance
    //  by instance) is the one live line.
    item->live = !(progress->instance == 0 && progress->outcome != AIRLOCK__OUTCOME__OUTCOME_STARTED);
}

static void
s_receipt (const al_envelope_t *envelope, uint64_t sequence, al_watch_item_t *item)
{
    const Airlock__DeployReceipt *receipt = envelope->deploy_receipt;
    const char *outcome = al_outcome_name (receipt->outcome);
    item->show = AL_WATCH_SHOW_RECEIPT;
    item->succeeded = receipt->outcome == AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED;
    item->json = s_envelope_json (envelope, "DeployReceipt", sequence);
    json_object_set_new (item->json, "step", json_string ("receipt"));
    json_object_set_new (item->json, "outcome", json_string (outcome? outcome: "unknown"));
    json_object_set_new (item->json, "service", json_string (receipt->service));
    json_object_set_new (item->json, "version", json_string (receipt->version));
    json_object_set_new (item->json, "artifact_sha256", json_string (receipt->artifact_sha256));
    json_object_set_new (item->json, "receipt_sha256", json_string (receipt->receipt_sha256));
    if (*receipt->rollback_rule)
        json_object_set_new (item->json, "rollback_rule", json_string (receipt->rollback_rule));
    if (*receipt->previous_version)
        json_object_set_new (item->json, "previous_version", json_string (receipt->previous_version));
    json_t *steps = json_array ();
    for (size_t index = 0; index < receipt->n_steps; index++) {
        const Airlock__StepRecord *record = receipt->steps [index];
        const char *step = al_step_name (record->step);
        const char *result = al_outcome_name (record->outcome);
        json_array_append_new (steps, json_pack ("{s:s, s:s, s:I, s:I, s:s}",
            "step", step? step: "unknown", "outcome", result? result: "unknown",
            "started_ms", (json_int_t) record->started_ms, "ended_ms", (json_int_t) record->ended_ms,
            "detail", record->detail));
    }
    json_object_set_new (item->json, "steps", steps);

    char clock [16], rule [300] = "", previous [200] = "";
    s_clock_time (envelope->timestamp_ms, clock, sizeof clock);
    if (*receipt->rollback_rule)
        snprintf (rule, sizeof rule, ", rule %s", receipt->rollback_rule);
    if (*receipt->previous_version)
        snprintf (previous, sizeof previous, ", previous version %s", receipt->previous_version);
    snprintf (item->line, sizeof item->line, "%s [receipt] %s %s %s%s%s (receipt sha256 %s)", clock,
              receipt->service, receipt->version, s_outcome_word (receipt->outcome, false), rule, previous,
              receipt->receipt_sha256);
}

//  The receipt of a finished deployment, as the audit log recorded it.
static void
s_logged_receipt (const al_replay_deployment_t *deployment, al_watch_item_t *item)
{
    const char *outcome = *deployment->receipt_outcome? deployment->receipt_outcome
                        : al_replay_state_name (deployment->state);
    char stamp [AL_CLOCK_ISO8601_SIZE];
    s_iso_time (deployment->finished_ms, stamp, sizeof stamp);
    bool previous = deployment->previous_version && *deployment->previous_version;
    item->show = AL_WATCH_SHOW_RECEIPT;
    item->succeeded = deployment->state == AL_REPLAY_SUCCEEDED;
    item->json = json_pack ("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "deployment", deployment->id,
                            "type", deployment->receipt_sequence? "DeployReceipt": "DeployProgress",
                            "source", "audit log", "step", "receipt", "outcome", outcome,
                            "service", deployment->service, "version", deployment->version,
                            "artifact_sha256", deployment->artifact_sha256,
                            "receipt_sha256", deployment->receipt_sha256? deployment->receipt_sha256: "");
    json_object_set_new (item->json, "sequence", json_integer ((json_int_t) deployment->receipt_sequence));
    json_object_set_new (item->json, "time", *stamp? json_string (stamp): json_null ());
    if (deployment->rollback_rule && *deployment->rollback_rule)
        json_object_set_new (item->json, "rollback_rule", json_string (deployment->rollback_rule));
    if (previous)
        json_object_set_new (item->json, "previous_version", json_string (deployment->previous_version));
    if (*deployment->detail)
        json_object_set_new (item->json, "detail", json_string (deployment->detail));
    snprintf (item->line, sizeof item->line,
              "%s [receipt] %s %s %s%s%s%s%s (receipt sha256 %s; finished %s, audit row #%llu)",
              deployment->id, deployment->service, deployment->version, outcome,
              *deployment->detail? ": ": "", deployment->detail,
              previous? ", previous version ": "", previous? deployment->previous_version: "",
              deployment->receipt_sha256 && *deployment->receipt_sha256? deployment->receipt_sha256: "none",
              *stamp? stamp: "?", (unsigned long long) deployment->receipt_sequence);
}

al_watch_log_t
al_watch_view_ask_log (const al_config_t *config, const char *id, al_watch_item_t *item, char *message,
                       size_t message_size)
{
    assert (config && id && item && message && message_size);
    memset (item, 0, sizeof *item);
    *message = 0;
    char error [1024] = "";
    al_store_options_t options = { .read_only = true };
    al_store_t *store = al_store_open (al_config_store_backend (config), al_config_store_location (config), &options,
                                       error, sizeof error);
    al_replay_t *replay = store? al_replay_new (store, 0, error, sizeof error): NULL;
    if (!replay) {
        //  No log to ask (a broker that never ran, a log we cannot read): watch live; the
        //  broker decides what we may see.
        snprintf (message, message_size, "cannot read the audit log (%s): watching live", error);
        al_store_destroy (&store);
        return AL_WATCH_LOG_UNREADABLE;
    }
    al_watch_log_t answer = AL_WATCH_LOG_LIVE;
    const al_replay_deployment_t *deployment = al_replay_find (replay, id);
    if (deployment && (deployment->state == AL_REPLAY_SUCCEEDED || deployment->state == AL_REPLAY_ROLLED_BACK
                   ||  deployment->state == AL_REPLAY_FAILED)) {
        s_logged_receipt (deployment, item);
        answer = AL_WATCH_LOG_FINISHED;
    }
    else
    if (deployment && deployment->state == AL_REPLAY_REFUSED) {
        snprintf (message, message_size, "deployment %s is over: it never ran: %s", id, deployment->detail);
        answer = AL_WATCH_LOG_REFUSED;
    }
    else
    if (!deployment) {
        //  The log has never heard of it: a deployment of a release the orchestrator holds
        //  ("<release>-stg", or the production request "<release>-prod") may not have
        //  started yet; anything else is unknown.
        char release [AL_ID_SIZE];
        al_id_release_of (id, release, sizeof release);
        json_t *file = *release? al_releases_load (config, release, error, sizeof error): NULL;
        json_t *itself = file? NULL: al_releases_load (config, id, error, sizeof error);
        if (file) {
            const char *state = json_string_value (json_object_get (file, "state"));
            snprintf (message, message_size, "%s has not started yet (release %s is %s): waiting for it", id,
                      release, state? state: "?");
        }
        else
        if (itself) {
            //  itself loaded: id is a valid release id.
            char staging [AL_ID_SIZE], production [AL_ID_SIZE];
            al_id_deployment (id, AL_ID_PART_STAGING, staging, sizeof staging);
            al_id_deployment (id, AL_ID_PART_PRODUCTION, production, sizeof production);
            snprintf (message, message_size, "no such deployment: %s (it is a release: watch %s for staging or %s "
                      "for production)", id, staging, production);
            answer = AL_WATCH_LOG_IS_RELEASE;
        }
        else {
            snprintf (message, message_size, "no such deployment: %s (not in the audit log %s, and no release of "
                      "the orchestrator)", id, al_config_database (config));
            answer = AL_WATCH_LOG_UNKNOWN;
        }
        json_decref (file);
        json_decref (itself);
    }
    al_replay_destroy (&replay);
    al_store_destroy (&store);
    return answer;
}

//  ---- signals watch -------------------------------------------------------------------
//  Every verdict is deploy/al_rules' (al_rules_stream_t: baseline runs, then the soak,
//  as the monitor judges them): this part only words the rows it returns.

//  "1.25%", "150.0 ms", "3"; "-" for no number.
static void
s_row_number (const al_rules_row_t *row, double value, char *text, size_t size)
{
    if (!isfinite (value))
        snprintf (text, size, "-");
    else
    if (strcmp (row->unit, "%") == 0)
        snprintf (text, size, "%.2f%%", value);
    else
    if (strcmp (row->unit, "ms") == 0)
        snprintf (text, size, "%.1f ms", value);
    else
        snprintf (text, size, "%.0f", value);
}

void
al_watch_row_value (const al_rules_row_t *row, char *text, size_t size)
{
    assert (row && text && size);
    if (row->status == AL_RULES_ROW_MISSING)
        snprintf (text, size, "missing");
    else
        s_row_number (row, row->value, text, size);
}

void
al_watch_row_limit (const al_rules_row_t *row, char *text, size_t size)
{
    assert (row && text && size);
    s_row_number (row, row->limit, text, size);
}

//  Does the row count against the sample (a breach, or missing evidence: fail closed)?
static bool
s_row_counts (const al_rules_row_t *row)
{
    return row->status == AL_RULES_ROW_BREACH || row->status == AL_RULES_ROW_MISSING;
}

//  The names of the AL_RULES_SIGNAL_* bits set in bits.
static json_t *
s_signal_list (uint32_t bits)
{
    json_t *list = json_array ();
    for (uint32_t bit = 1; bit & AL_RULES_SIGNAL_ALL; bit <<= 1)
        if (bits & bit)
            json_array_append_new (list, json_string (al_rules_signal_name (bit)));
    return list;
}

//  A number of the sample, or null when its evidence bit says it is absent.
static json_t *
s_json_evidence (const Airlock__SoakSignal *signal, uint32_t bit, double value)
{
    return signal->no_evidence & bit? json_null (): s_json_number (value);
}

static json_t *
s_signal_json (const al_watch_view_t *self, const al_envelope_t *envelope, uint64_t sequence,
               const al_rules_row_t rows [AL_RULES_ROWS], bool judged, const al_rules_result_t *verdict)
{
    const Airlock__SoakSignal *signal = envelope->soak_signal;
    char stamp [AL_CLOCK_ISO8601_SIZE];
    s_iso_time (envelope->timestamp_ms, stamp, sizeof stamp);
    json_t *object = json_pack ("{s:s, s:s}", "service", signal->service, "environment", self->environment);
    json_object_set_new (object, "sequence", json_integer ((json_int_t) sequence));
    json_object_set_new (object, "signal_sequence", json_integer ((json_int_t) signal->sequence));
    json_object_set_new (object, "time", *stamp? json_string (stamp): json_null ());
    json_object_set_new (object, "baseline", json_boolean (signal->baseline));
    json_object_set_new (object, "judged", json_boolean (judged));
    json_object_set_new (object, "requests_per_second",
                         s_json_evidence (signal, AL_RULES_SIGNAL_TRAFFIC, signal->requests_per_second));
    json_object_set_new (object, "latency_p50_ms",
                         s_json_evidence (signal, AL_RULES_SIGNAL_LATENCY, signal->latency_p50_ms));
    json_object_set_new (object, "instances_up", json_integer (signal->instances_up));
    json_object_set_new (object, "instances_total", json_integer (signal->instances_total));
    json_object_set_new (object, "instances_missing", json_integer (signal->instances_missing));
    json_object_set_new (object, "missing", s_signal_list (al_rules_missing_signals (signal)));
    json_object_set_new (object, "not_required", s_signal_list (signal->not_required & AL_RULES_SIGNAL_ALL));
    json_t *checks = json_object ();
    json_t *breaches = json_array ();
    for (int index = 0; index < AL_RULES_ROWS; index++) {
        const al_rules_row_t *row = &rows [index];
        json_t *check = json_pack ("{s:o, s:o, s:s}", "value", s_json_number (row->value),
                                   "limit", s_json_number (row->limit),
                                   "status", al_rules_row_status_name (row->status));
        if (*row->detail)
            json_object_set_new (check, "detail", json_string (row->detail));
        if (row->in_a_row)
            json_object_set_new (check, "in_a_row", json_integer (row->in_a_row));
        json_object_set_new (checks, row->rule, check);
        if (judged && s_row_counts (row))
            json_array_append_new (breaches, json_string (row->rule));
    }
    json_object_set_new (object, "checks", checks);
    json_object_set_new (object, "breaches", breaches);
    json_object_set_new (object, "breach", json_boolean (judged && verdict->verdict == AL_RULES_BREACH));
    if (judged)
        json_object_set_new (object, "verdict", json_pack ("{s:s, s:s, s:s}",
            "verdict", al_rules_verdict_name (verdict->verdict), "rule", verdict->rule,
            "detail", verdict->detail));
    return object;
}

static void
s_signal (al_watch_view_t *self, const al_envelope_t *envelope, uint64_t sequence, int64_t now_ms,
          al_watch_item_t *item)
{
    const Airlock__SoakSignal *signal = envelope->soak_signal;
    //  The watch's own clock: only its order matters (grace 0).
    al_rules_row_t rows [AL_RULES_ROWS];
    bool judged = false;
    al_rules_result_t verdict = al_rules_stream_feed (self->rules, signal, now_ms, rows, AL_RULES_ROWS, &judged);
    //  The soak's verdict, as the monitor decides it: sticky, so a sample after a breach
    //  still says so (the rollback is under way). "breaches" lists this sample's own.
    item->show = AL_WATCH_SHOW_SIGNAL;
    item->breach = judged && verdict.verdict == AL_RULES_BREACH;
    item->json = s_signal_json (self, envelope, sequence, rows, judged, &verdict);

    char clock [16], rps [32];
    s_clock_time (envelope->timestamp_ms, clock, sizeof clock);
    if (signal->no_evidence & AL_RULES_SIGNAL_TRAFFIC)
        snprintf (rps, sizeof rps, "%s", al_rules_missing_signals (signal) & AL_RULES_SIGNAL_TRAFFIC? "missing": "-");
    else
        snprintf (rps, sizeof rps, "%.1f", signal->requests_per_second);
    char verdict_text [400];
    if (judged)
        snprintf (verdict_text, sizeof verdict_text, "%s%s%s%s%s", al_rules_verdict_name (verdict.verdict),
                  *verdict.rule? " ": "", verdict.rule, *verdict.detail? ": ": "", verdict.detail);
    else
        snprintf (verdict_text, sizeof verdict_text, "not judged (a baseline sample)");

    //  The plain line.
    char *line = item->line;
    size_t size = sizeof item->line;
    int used = snprintf (line, size, "%s %s #%" PRIu64 "%s  rps %s  up %u/%u", clock, signal->service,
                         signal->sequence, signal->baseline? " baseline": "", rps, signal->instances_up,
                         signal->instances_total);
    for (int index = 0; index < AL_RULES_ROWS && used > 0 && (size_t) used < size; index++) {
        const al_rules_row_t *row = &rows [index];
        char value [32], limit [32];
        al_watch_row_value (row, value, sizeof value);
        al_watch_row_limit (row, limit, sizeof limit);
        bool say_why = *row->detail && row->status != AL_RULES_ROW_OK;
        used += snprintf (line + used, size - (size_t) used, "  %s %s (max %s) %s%s%s%s", row->rule, value, limit,
                          al_rules_row_status_name (row->status), say_why? " (": "", say_why? row->detail: "",
                          say_why? ")": "");
    }
    if (used > 0 && (size_t) used < size)
        snprintf (line + used, size - (size_t) used, "  => %s", verdict_text);

    //  The table of a terminal.
    size_t table_size = sizeof item->table [0];
    snprintf (item->table [0], table_size, "%s %s in %s: sample #%" PRIu64 "%s at %s, %s req/s, %u/%u instances up",
              item->breach? "BREACH": signal->baseline? "baseline": "ok", signal->service, self->environment,
              signal->sequence, signal->baseline? " (baseline)": "", clock, rps, signal->instances_up,
              signal->instances_total);
    snprintf (item->table [1], table_size, "  %-24s %12s %12s  %s", "rule", "value", "limit", "status");
    for (int index = 0; index < AL_RULES_ROWS; index++) {
        const al_rules_row_t *row = &rows [index];
        char value [32], limit [32];
        al_watch_row_value (row, value, sizeof value);
        al_watch_row_limit (row, limit, sizeof limit);
        snprintf (item->table [2 + index], table_size, "  %-24s %12s %12s  %s%s%s", row->rule, value, limit,
                  al_rules_row_status_name (row->status), *row->detail? ": ": "", row->detail);
    }
    snprintf (item->table [2 + AL_RULES_ROWS], table_size, "  verdict: %s", verdict_text);
}

void
al_watch_view_feed (al_watch_view_t *self, const char *topic, const al_envelope_t *envelope, uint64_t sequence,
                    int64_t now_ms, al_watch_item_t *item)
{
    assert (self && topic && envelope && item);
    memset (item, 0, sizeof *item);
    if (!al_watch_view_is_ours (self, topic))
        return;
    if (*self->deployment) {
        if (strcmp (envelope->deployment_id, self->deployment) != 0)
            return;
        if (envelope->body_case == AIRLOCK__ENVELOPE__BODY_DEPLOY_PROGRESS)
            s_progress (envelope, sequence, item);
        else
        if (envelope->body_case == AIRLOCK__ENVELOPE__BODY_DEPLOY_RECEIPT)
            s_receipt (envelope, sequence, item);
    }
    else
    if (envelope->body_case == AIRLOCK__ENVELOPE__BODY_SOAK_SIGNAL)
        s_signal (self, envelope, sequence, now_ms, item);
}
