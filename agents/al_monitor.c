/*  al_monitor.c: the monitor agent (see al_monitor.h).

    One loop, one thread: refresh the instance registries, scrape every target in one
    concurrent round, sample each group, send its SoakSignal, evaluate the rules of the
    groups under deployment, read deployment events from the PUB socket, sleep until
    the next tick. Sends are posted (the runtime retransmits them) and their outcomes
    drained without waiting, so a slow broker never delays a scrape.

    What is read from each instance's /metrics is the service's services.yaml mapping
    (signals:), by default the names of the official Prometheus client libraries (see
    deploy/al_signals.h); CPU and memory are judged against resources: when set, memory
    else against the instance's cgroup limit (its pid is in the driver's registry) or
    the machine. A service whose signals are probes is neither scraped nor judged (no
    rules, no RollbackTrigger); one whose source is Prometheus is not scraped: its
    samples are its queries' answers (deploy/al_promql), judged by the same rules.

    The baseline of a rollout is the group's latest samples before it, except those of a
    watched release that failed (a rollback must not lower the bar for the next one).

    A group is one (service, environment). Its instance names are the driver's
    instance ids; a registry that disappears or empties removes them, and a group with
    no instance sends nothing (there is nothing to measure) but keeps evaluating a
    running deployment's rules, whose silence then becomes missing evidence.
*/
#include "agents/al_monitor.h"
#include "broker/al_telemetry.h"
#include "agents/al_agent.h"
#include "agents/al_subscriber.h"
#include "base/al_clock.h"
#include "deploy/al_canary.h"
#include "deploy/al_instances.h"
#include "deploy/al_metrics.h"
#include "deploy/al_promql.h"
#include "deploy/al_rules.h"
#include "deploy/al_scrape.h"
#include "deploy/al_services.h"
#include "deploy/al_signals.h"
#include "policies/al_policy.h"
#include <assert.h>
#include <czmq.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define S_ENV_SLOTS 4
#define S_MAX_INSTANCES 256
#define S_RECENT 32                 // samples kept per group (baseline, trigger evidence)
#define S_TRIGGER_SAMPLES 5
#define S_PATH_SIZE 1024
#define S_STATE_DIR_SIZE 600
//  How long the rules of a Prometheus-source deployment wait for its version to have data.
#define S_PROMETHEUS_FIRST_DATA_MS 30000        // every path built below it then fits S_PATH_SIZE

typedef struct {
    char id [64];
    char url [300];
    char version [128];             // what the registry says it runs ("" if unknown)
    int pid;                        // its process (0 if unknown): whose cgroup limits memory
} s_target_t;

typedef struct {
    const al_service_t *svc;
    Airlock__Environment env;
    char registry [S_PATH_SIZE];
    struct timespec registry_mtime;
    bool registry_seen;
    al_signals_t *signals;
    s_target_t targets [S_MAX_INSTANCES];
    size_t target_count;
    //  The latest samples, oldest first (a ring).
    Airlock__SoakSignal recent [S_RECENT];
    size_t recent_count;
    size_t recent_next;
    //  Per slot: the watch it was published under (0: none), and whether that watch's
    //  release failed (its samples never make a later baseline).
    uint32_t recent_watch [S_RECENT];
    bool recent_failed [S_RECENT];
    uint32_t watch_serial;          // bumped by every s_watch_start
    //  The deployment being watched.
    char deployment_id [72];
    char version [128];             // the version it brings ("" if not known)
    bool version_up;                // an instance of that version has been up
    al_rules_t *rules;
    bool triggered;
    bool investigated;
    uint64_t watched_since_ms;
    //  Canary against stable (services.yaml signals.compare_to_stable), during a canary
    //  rollout while both versions serve; NULL otherwise.
    al_canary_t *canary;
    //  signals: prometheus: the provider instead of scraping (signals is then NULL).
    al_promql_t *prometheus;
    uint64_t prometheus_sequence;   // the group's own SoakSignal sequence
    char prometheus_error [512];    // the provider's latest failure ("" after a good round)
    uint64_t prometheus_failures;   // rounds with a failure, for rate-limited logging
    bool judging;                   // a Prometheus group judges once its version has data
} s_group_t;

typedef struct {
    al_monitor_options_t options;
    const al_config_t *config;
    al_policy_t *policy;
    al_services_t *services;
    al_agent_t *agent;
    al_subscriber_t *events;
    al_scraper_t *scraper;
    s_group_t *groups;
    size_t group_count;
    char state_dir [S_STATE_DIR_SIZE];
    uint64_t sent;
    uint64_t dropped;
} s_monitor_t;

void
al_monitor_options_defaults (al_monitor_options_t *options)
{
    memset (options, 0, sizeof *options);
    options->interval_ms = AL_MONITOR_DEFAULT_INTERVAL_MS;
    options->baseline_samples = AL_MONITOR_DEFAULT_BASELINE;
}

//  ---- instances ------------------------------------------------------------------------

//  Re-read the group's registry when it changed; keep al_signals' instances in step.
static void
s_refresh (s_group_t *group)
{
    struct stat info;
    bool exists = stat (group->registry, &info) == 0;
    if (exists && group->registry_seen
    &&  info.st_mtim.tv_sec == group->registry_mtime.tv_sec && info.st_mtim.tv_nsec == group->registry_mtime.tv_nsec)
        return;
    s_target_t fresh [S_MAX_INSTANCES];
    size_t count = 0;
    if (exists) {
        group->registry_seen = true;
        group->registry_mtime = info.st_mtim;
        al_instance_record_t *records = NULL;
        size_t record_count = 0;
        char error [512];
        if (al_instances_read (group->registry, AL_INSTANCES_TO_REACH, &records, &record_count, NULL,
                               error, sizeof error) != 0)
            zsys_warning ("monitor: %s", error);
        const char *host = group->svc->host? group->svc->host: "127.0.0.1";
        for (size_t i = 0; i < record_count && count < S_MAX_INSTANCES; i++) {
            snprintf (fresh [count].id, sizeof fresh [count].id, "%s", records [i].id);
            snprintf (fresh [count].url, sizeof fresh [count].url, "http://%s:%d%s", host, records [i].port,
                      group->svc->metrics_path);
            snprintf (fresh [count].version, sizeof fresh [count].version, "%s", records [i].version);
            fresh [count].pid = records [i].pid;
            count++;
        }
        free (records);
        //  A registry being rewritten (rename in progress) reads as it was or as it
        //  is: both are whole files.
    }
    //  Remove what went away, add what came.
    for (size_t i = 0; i < group->target_count; i++) {
        bool kept = false;
        for (size_t j = 0; j < count && !kept; j++)
            kept = strcmp (group->targets [i].id, fresh [j].id) == 0;
        if (!kept && group->signals)
            al_signals_remove_instance (group->signals, group->targets [i].id);
    }
    for (size_t j = 0; j < count; j++) {
        bool known = false;
        for (size_t i = 0; i < group->target_count && !known; i++)
            known = strcmp (group->targets [i].id, fresh [j].id) == 0;
        if (!known && group->signals)
            al_signals_add_instance (group->signals, fresh [j].id);
    }
    //  Memory in bytes without resources.memory is a share of the instance's cgroup
    //  limit (memory.max), else of the machine: read it for every instance the registry
    //  names (a restarted instance has a new process).
    if (group->signals && group->svc->signal_map.memory_kind == AL_SERVICE_MEMORY_BYTES
    &&  !group->svc->memory_limit_bytes)
        for (size_t j = 0; j < count; j++)
            al_signals_set_memory_limit (group->signals, fresh [j].id,
                                         al_signals_cgroup_memory_limit (fresh [j].pid), "cgroup");
    memcpy (group->targets, fresh, count * sizeof fresh [0]);
    group->target_count = count;
}

//  What al_signals reads for svc: its services.yaml mapping and limits (the standard
//  Prometheus names when it configures none).
static void
s_signals_config (const al_service_t *svc, int64_t stale_after_ms, al_signals_config_t *config)
{
    const al_service_signal_map_t *map = &svc->signal_map;
    al_signals_config_default (config);
    config->stale_after_ms = stale_after_ms;
    config->requests_metric = map->requests_metric;
    config->status_label = map->status_label;
    config->error_statuses = map->error_statuses;
    config->latency_metric = map->latency_metric;
    config->latency_to_ms = map->latency_to_ms;
    config->cpu_metric = map->cpu_metric;
    config->cpu_kind = map->cpu_kind == AL_SERVICE_CPU_PERCENT_GAUGE? AL_SIGNALS_CPU_PERCENT_GAUGE
                                                                      : AL_SIGNALS_CPU_SECONDS;
    config->memory_metric = map->memory_metric;
    config->memory_kind = map->memory_kind == AL_SERVICE_MEMORY_PERCENT_GAUGE? AL_SIGNALS_MEMORY_PERCENT_GAUGE
                                                                               : AL_SIGNALS_MEMORY_BYTES;
    config->cpu_limit_cores = svc->cpu_limit_cores;
    config->memory_limit_bytes = svc->memory_limit_bytes;
    config->not_required = (map->requests_required? 0: AL_SIGNALS_NO_TRAFFIC)
                         | (map->latency_required? 0: AL_SIGNALS_NO_LATENCY)
                         | (map->cpu_required? 0: AL_SIGNALS_NO_CPU)
                         | (map->memory_required? 0: AL_SIGNALS_NO_MEMORY);
}

//  ---- sending ----------------------------------------------------------------------------

static void
s_drain (s_monitor_t *self)
{
    al_agent_result_t result;
    while (al_agent_next_result (self->agent, 0, &result) != AL_AGENT_TIMEOUT) {
        if (result.status == AL_AGENT_DENIED)
            zsys_warning ("monitor: the broker refused %s: %s", result.message_id, result.reason);
    }
}

static void
s_post (s_monitor_t *self, const al_envelope_t *envelope)
{
    char error [256];
    al_agent_status_t status = al_agent_post (self->agent, envelope, 0, NULL, error, sizeof error);
    if (status == AL_AGENT_QUEUED)
        self->sent++;
    else {
        self->dropped++;
        if (self->dropped == 1 || self->dropped % 100 == 0)
            zsys_warning ("monitor: %" PRIu64 " message(s) not sent (%s%s%s)", self->dropped,
                          al_agent_status_name (status), *error? ": ": "", error);
    }
}

//  Do the registry's instances run more than one version? Outside a watch that is a
//  rollout whose start has not reached the monitor yet: such a sample may hold the new
//  version's numbers and is unfit for its baseline.
static bool
s_mixed_versions (const s_group_t *group)
{
    const char *seen = NULL;
    for (size_t i = 0; i < group->target_count; i++) {
        const char *version = group->targets [i].version;
        if (!*version)
            continue;
        if (seen && strcmp (seen, version) != 0)
            return true;
        seen = version;
    }
    return false;
}

static void
s_remember (s_group_t *group, const Airlock__SoakSignal *sample)
{
    group->recent [group->recent_next] = *sample;
    group->recent [group->recent_next].service = (char *) group->svc->name;
    group->recent [group->recent_next].base.unknown_fields = NULL;
    group->recent_watch [group->recent_next] = group->rules? group->watch_serial: 0;
    group->recent_failed [group->recent_next] = (group->rules && group->triggered)
                                              || (!group->rules && s_mixed_versions (group));
    group->recent_next = (group->recent_next + 1) % S_RECENT;
    if (group->recent_count < S_RECENT)
        group->recent_count++;
}

//  The last count samples, oldest first, into list (pointers into the ring).
static size_t
s_last (s_group_t *group, size_t count, const Airlock__SoakSignal **list)
{
    if (count > group->recent_count)
        count = group->recent_count;
    for (size_t i = 0; i < count; i++) {
        size_t index = (group->recent_next + S_RECENT - count + i) % S_RECENT;
        list [i] = &group->recent [index];
    }
    return count;
}

//  The last count samples fit for a baseline, oldest first, into list: not those of a
//  watched release that failed. After a rollback the latest samples are the broken
//  release's; a baseline made of them would raise the next release's error limit by
//  the broken release's error rate (and its latency limit by its latency).
static size_t
s_last_baseline (s_group_t *group, size_t count, const Airlock__SoakSignal **list)
{
    size_t found = 0;
    for (size_t back = 1; back <= group->recent_count && found < count; back++) {
        size_t index = (group->recent_next + S_RECENT - back) % S_RECENT;
        if (!group->recent_failed [index])
            list [found++] = &group->recent [index];
    }
    for (size_t i = 0; i < found / 2; i++) {
        const Airlock__SoakSignal *swap = list [i];
        list [i] = list [found - 1 - i];
        list [found - 1 - i] = swap;
    }
    return found;
}

//  The current watch's release failed: none of its samples may make a baseline.
static void
s_forget_watch (s_group_t *group)
{
    for (size_t i = 0; group->watch_serial && i < S_RECENT; i++)
        if (group->recent_watch [i] == group->watch_serial)
            group->recent_failed [i] = true;
}

static void
s_trigger (s_monitor_t *self, s_group_t *group, const al_rules_result_t *verdict)
{
    const Airlock__SoakSignal *samples [S_TRIGGER_SAMPLES];
    size_t count = s_last (group, S_TRIGGER_SAMPLES, samples);
    Airlock__RollbackTrigger trigger = AIRLOCK__ROLLBACK_TRIGGER__INIT;
    trigger.service = (char *) group->svc->name;
    trigger.rule = (char *) verdict->rule;
    trigger.detail = (char *) verdict->detail;
    //  Evidence missing because the provider failed: the reason names it.
    char detail [sizeof verdict->detail + sizeof group->prometheus_error + 8];
    if (group->prometheus && group->prometheus_error [0] && strcmp (verdict->rule, "missing_evidence") == 0) {
        snprintf (detail, sizeof detail, "%s (%s)", verdict->detail, group->prometheus_error);
        trigger.detail = detail;
    }
    trigger.n_samples = count;
    trigger.samples = (Airlock__SoakSignal **) samples;
    al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
    envelope.deployment_id = group->deployment_id;
    envelope.environment = group->env;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_ROLLBACK_TRIGGER;
    envelope.rollback_trigger = &trigger;
    s_post (self, &envelope);
    zsys_warning ("monitor: %s/%s: %s breached (%s): RollbackTrigger sent for %s", group->svc->name,
                  al_environment_name (group->env), verdict->rule, trigger.detail, group->deployment_id);
}

static void
s_investigate (s_monitor_t *self, s_group_t *group, const al_rules_result_t *verdict)
{
    Airlock__Notification note = AIRLOCK__NOTIFICATION__INIT;
    char subject [200];
    snprintf (subject, sizeof subject, "investigate %s in %s: %s", group->svc->name,
              al_environment_name (group->env), verdict->rule);
    note.template_ = (char *) "escalation";
    note.subject = subject;
    note.text = (char *) verdict->detail;
    al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
    envelope.deployment_id = group->deployment_id;
    envelope.environment = group->env;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_NOTIFICATION;
    envelope.notification = &note;
    s_post (self, &envelope);
}

//  ---- deployments ------------------------------------------------------------------------

static s_group_t *
s_group_find (s_monitor_t *self, const char *service, Airlock__Environment env)
{
    for (size_t i = 0; i < self->group_count; i++)
        if (self->groups [i].env == env && strcmp (self->groups [i].svc->name, service) == 0)
            return &self->groups [i];
    return NULL;
}

static void
s_watch_stop (s_group_t *group)
{
    if (group->triggered)
        s_forget_watch (group);
    al_rules_destroy (&group->rules);
    al_canary_destroy (&group->canary);
    group->judging = false;
    group->deployment_id [0] = 0;
    group->version [0] = 0;
    group->version_up = false;
    group->triggered = false;
    group->investigated = false;
}

//  A rollout of this group starts: baseline from the samples before it, then rules.
static void
s_watch_start (s_monitor_t *self, s_group_t *group, const char *deployment_id, const char *version)
{
    s_watch_stop (group);
    group->watch_serial++;
    snprintf (group->deployment_id, sizeof group->deployment_id, "%s", deployment_id);
    snprintf (group->version, sizeof group->version, "%s", version? version: "");
    const Airlock__SoakSignal *samples [S_RECENT];
    size_t count = s_last_baseline (group, (size_t) self->options.baseline_samples, samples);
    al_baseline_t baseline;
    al_baseline_from (samples, count, &baseline);
    group->rules = al_rules_new (al_policy_thresholds (self->policy), &baseline, self->options.evidence_grace_ms);
    group->watched_since_ms = al_clock_mono_ms ();
    //  A canary rollout is also judged against the stable version serving beside it.
    const al_service_canary_judge_t *judge = &group->svc->canary_judge;
    if (judge->enabled && group->signals && group->version [0]
    &&  al_service_strategy (group->svc, group->env) == AIRLOCK__STRATEGY__STRATEGY_CANARY) {
        al_canary_config_t config = {
            .enabled = judge->enabled, .alpha = judge->alpha, .min_samples = judge->min_samples,
            .min_latency_increase_percent = judge->min_latency_increase_percent,
            .min_error_increase_points = judge->min_error_increase_points };
        char error [256];
        group->canary = al_canary_new (&config, 0, error, sizeof error);
        if (!group->canary) {
            //  A judge the service asked for and cannot have: fail closed.
            al_rules_result_t verdict = { .verdict = AL_RULES_BREACH };
            snprintf (verdict.rule, sizeof verdict.rule, "canary_config");
            snprintf (verdict.detail, sizeof verdict.detail, "the canary judge cannot start: %.200s", error);
            group->triggered = true;
            s_trigger (self, group, &verdict);
        }
    }
    //  Stored, for the record (seed 003's performance baseline).
    char dir [S_PATH_SIZE];
    snprintf (dir, sizeof dir, "%s/monitor/baselines", self->state_dir);
    char path [S_PATH_SIZE + 80];
    snprintf (path, sizeof path, "%s/%.70s.json", dir, deployment_id);
    char command_dir [S_PATH_SIZE];
    snprintf (command_dir, sizeof command_dir, "%s/monitor", self->state_dir);
    mkdir (command_dir, 0700);
    mkdir (dir, 0700);
    json_t *list = json_array ();
    for (size_t i = 0; i < count; i++)
        json_array_append_new (list, json_pack ("{s:I, s:f, s:f, s:f, s:f, s:f, s:i}",
                               "sequence", (json_int_t) samples [i]->sequence,
                               "requests_per_second", samples [i]->requests_per_second,
                               "error_ratio", samples [i]->error_ratio,
                               "latency_p99_ms", samples [i]->latency_p99_ms,
                               "cpu_percent", samples [i]->cpu_percent,
                               "memory_percent", samples [i]->memory_percent,
                               "no_evidence", (int) samples [i]->no_evidence));
    json_t *root = json_pack ("{s:s, s:s, s:s, s:I, s:i, s:f, s:o, s:o}", "deployment_id", deployment_id,
                              "service", group->svc->name, "environment", al_environment_name (group->env),
                              "time_ms", (json_int_t) al_clock_wall_ms (), "samples_with_traffic", (int) baseline.samples,
                              "error_ratio", baseline.error_ratio,
                              "latency_p99_ms", isfinite (baseline.latency_p99_ms)? json_real (baseline.latency_p99_ms): json_null (),
                              "samples", list);
    if (root && json_dump_file (root, path, JSON_INDENT (2)) != 0)
        zsys_warning ("monitor: %s: cannot write the baseline", path);
    json_decref (root);
    zsys_info ("monitor: %s/%s: watching %s (baseline: %zu sample(s), error %.2f%%, p99 %.1f ms)",
               group->svc->name, al_environment_name (group->env), deployment_id, baseline.samples,
               baseline.error_ratio * 100, baseline.latency_p99_ms);
}

static void
s_event (s_monitor_t *self, const al_envelope_t *envelope, uint64_t missed)
{
    if (missed)
        zsys_warning ("monitor: missed %" PRIu64 " deployment event(s): evidence gap", missed);
    if (envelope->body_case != AIRLOCK__ENVELOPE__BODY_DEPLOY_PROGRESS || !envelope->deploy_progress->service)
        return;
    const Airlock__DeployProgress *progress = envelope->deploy_progress;
    s_group_t *group = s_group_find (self, progress->service, envelope->environment);
    if (!group || !envelope->deployment_id || !*envelope->deployment_id)
        return;
    bool same = strcmp (group->deployment_id, envelope->deployment_id) == 0;
    bool rollout_or_soak = progress->step == AIRLOCK__STEP__STEP_ROLLOUT || progress->step == AIRLOCK__STEP__STEP_SOAK;
    if (progress->step == AIRLOCK__STEP__STEP_ROLLOUT && progress->journal
    &&  progress->outcome == AIRLOCK__OUTCOME__OUTCOME_STARTED)
        s_watch_start (self, group, envelope->deployment_id, progress->version);
    else
    if (!same && rollout_or_soak && progress->outcome == AIRLOCK__OUTCOME__OUTCOME_STARTED)
        s_watch_start (self, group, envelope->deployment_id, progress->version);       // we missed its start
    else
    if (same && progress->journal
    &&  (progress->step == AIRLOCK__STEP__STEP_ROLLBACK || progress->step == AIRLOCK__STEP__STEP_RECEIPT
         || (progress->step == AIRLOCK__STEP__STEP_SOAK && progress->outcome != AIRLOCK__OUTCOME__OUTCOME_STARTED)
         || (progress->outcome == AIRLOCK__OUTCOME__OUTCOME_FAILED))) {
        zsys_info ("monitor: %s/%s: %s reached %s %s: watch ends", group->svc->name,
                   al_environment_name (group->env), group->deployment_id, al_step_name (progress->step),
                   al_outcome_name (progress->outcome));
        if (progress->outcome == AIRLOCK__OUTCOME__OUTCOME_FAILED)
            s_forget_watch (group);
        s_watch_stop (group);
    }
}

//  ---- samples -------------------------------------------------------------------------------

//  Keep a sample of the group and publish it (soak.<env>.<service>).
static void
s_publish (s_monitor_t *self, s_group_t *group, Airlock__SoakSignal *message)
{
    message->service = (char *) group->svc->name;
    s_remember (group, message);
    al_telemetry_touch (al_telemetry_series (al_telemetry_process (), AL_TELEMETRY_AGE, "airlock_monitor_soak_signal_age_seconds",
                                       "Seconds since the monitor last published a SoakSignal, by service and environment",
                                       "service", group->svc->name, "environment", al_environment_name (group->env)));
    al_telemetry_set (al_telemetry_series (al_telemetry_process (), AL_TELEMETRY_GAUGE, "airlock_monitor_watched",
                                           "1 while a deployment of the service in the environment is watched (rules evaluated)",
                                           "service", group->svc->name, "environment", al_environment_name (group->env)),
                      group->rules? 1: 0);
    al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
    envelope.deployment_id = group->rules? group->deployment_id: (char *) "";
    envelope.environment = group->env;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_SOAK_SIGNAL;
    envelope.soak_signal = message;
    s_post (self, &envelope);
}

//  Feed a published sample of a watched deployment to its rules; act on the verdict.
static void
s_judge (s_monitor_t *self, s_group_t *group, const Airlock__SoakSignal *message, int64_t now)
{
    if (!group->rules || group->triggered)
        return;
    al_rules_result_t verdict = al_rules_feed (group->rules, message, 0, now);
    if (verdict.verdict == AL_RULES_BREACH) {
        group->triggered = true;
        s_trigger (self, group, &verdict);
    }
    else
    if (verdict.verdict == AL_RULES_INVESTIGATE && !group->investigated) {
        group->investigated = true;
        s_investigate (self, group, &verdict);
    }
}

//  Canary against stable: the new version's instances (ids) and the other versions'
//  instances, measured over the same scrapes, fed to the group's judge while both serve.
//  The stable side is measured, not published: the stream's sequence does not move.
static void
s_canary (s_monitor_t *self, s_group_t *group, int64_t now, const char *const *ids, size_t id_count)
{
    if (!group->canary || group->triggered || id_count == 0)
        return;
    const char *stable_ids [S_MAX_INSTANCES];
    size_t stable_count = 0;
    for (size_t i = 0; i < group->target_count; i++)
        if (group->targets [i].version [0] && strcmp (group->targets [i].version, group->version) != 0)
            stable_ids [stable_count++] = group->targets [i].id;
    if (stable_count == 0)
        return;                     // the last step: nothing left to compare with
    al_signals_sample_t canary, stable;
    al_signals_measure_of (group->signals, now, ids, id_count, &canary);
    al_signals_measure_of (group->signals, now, stable_ids, stable_count, &stable);
    if (canary.instances_up == 0 || stable.instances_up == 0)
        return;
    al_canary_observation_t canary_seen = {
        .requests_per_second = canary.requests_per_second, .error_ratio = canary.error_ratio,
        .latency_p50_ms = canary.latency_p50_ms, .latency_p99_ms = canary.latency_p99_ms };
    al_canary_observation_t stable_seen = {
        .requests_per_second = stable.requests_per_second, .error_ratio = stable.error_ratio,
        .latency_p50_ms = stable.latency_p50_ms, .latency_p99_ms = stable.latency_p99_ms };
    al_canary_result_t result = al_canary_feed (group->canary, now, &canary_seen, &stable_seen);
    if (result.verdict != AL_CANARY_FAIL)
        return;
    al_rules_result_t verdict = { .verdict = AL_RULES_BREACH };
    snprintf (verdict.rule, sizeof verdict.rule, "%s", result.rule);
    snprintf (verdict.detail, sizeof verdict.detail, "%.250s", result.detail);
    group->triggered = true;
    s_trigger (self, group, &verdict);
}

//  Signals a service declares not required, as SoakSignal bits.
static uint32_t
s_not_required (const al_service_t *svc)
{
    const al_service_signal_map_t *map = &svc->signal_map;
    return (map->requests_required? 0: AL_SIGNALS_NO_TRAFFIC) | (map->latency_required? 0: AL_SIGNALS_NO_LATENCY)
         | (map->cpu_required? 0: AL_SIGNALS_NO_CPU) | (map->memory_required? 0: AL_SIGNALS_NO_MEMORY);
}

//  A provider's answer as a SoakSignal number: NaN (no data, an error) and negative
//  values are no evidence.
static bool
s_evidence (double value)
{
    return isfinite (value) && value >= 0;
}

//  signals: prometheus. One round of the service's queries (concurrent, bounded by the
//  provider's timeout) makes the group's sample. No data is missing evidence, never zero;
//  a failed query leaves no instance "up", which the rules read as missing evidence (fail
//  closed), and the trigger's detail then names the provider. While a deployment is
//  watched the queries are expanded with its version, and its rules wait until the
//  provider has data for that version (Prometheus must first scrape a new instance),
//  at most S_PROMETHEUS_FIRST_DATA_MS; a provider failure is judged at once.
static void
s_prometheus_tick (s_monitor_t *self, s_group_t *group, int64_t now)
{
    const al_service_t *svc = group->svc;
    if (!group->rules && group->target_count == 0)
        return;                     // nothing runs and nothing is watched
    //  Watched: the version the deployment brings. Otherwise the one version the
    //  registry's instances run; while they run several (a rollout whose start has not
    //  reached us yet) a sample could be the new version's and make its own baseline:
    //  none is taken.
    const char *version = group->version [0]? group->version: NULL;
    for (size_t i = 0; i < group->target_count && !group->version [0]; i++) {
        const char *running = group->targets [i].version;
        if (!*running)
            continue;
        if (version && strcmp (version, running) != 0)
            return;
        version = running;
    }
    al_promql_labels_t labels = { svc->name, al_environment_name (group->env), version, NULL };
    double values [AL_PROMQL_SIGNALS];
    al_promql_status_t statuses [AL_PROMQL_SIGNALS];
    char error [512] = "";
    int failed = al_promql_sample (group->prometheus, svc->prometheus.queries, &labels, values, statuses,
                                   error, sizeof error);
    if (failed) {
        snprintf (group->prometheus_error, sizeof group->prometheus_error, "%s", error);
        if (group->prometheus_failures++ % 100 == 0)
            zsys_warning ("monitor: %s/%s: %d quer%s failed: %s", svc->name, al_environment_name (group->env),
                          failed, failed == 1? "y": "ies", error);
    }
    else
        group->prometheus_error [0] = 0;

    Airlock__SoakSignal message = AIRLOCK__SOAK_SIGNAL__INIT;
    message.baseline = group->rules == NULL;
    message.source = (char *) "prometheus";
    message.memory_basis = (char *) "query";
    message.version = (char *) (version? version: "");
    message.not_required = s_not_required (svc);
    double rps = values [AL_SIGNAL_REQUESTS_PER_SECOND], ratio = values [AL_SIGNAL_ERROR_RATIO];
    message.requests_per_second = s_evidence (rps)? rps: 0;
    if (!s_evidence (rps) || (rps > 0 && !s_evidence (ratio)))
        message.no_evidence |= AL_SIGNALS_NO_TRAFFIC;
    message.error_ratio = s_evidence (ratio)? (ratio > 1? 1: ratio): 0;
    double p50 = values [AL_SIGNAL_LATENCY_P50_MS], p99 = values [AL_SIGNAL_LATENCY_P99_MS];
    if (s_evidence (p50) && s_evidence (p99)) {
        message.latency_p50_ms = p50;
        message.latency_p99_ms = p99;
    }
    else
        message.no_evidence |= AL_SIGNALS_NO_LATENCY;
    double cpu = values [AL_SIGNAL_CPU_PERCENT], memory = values [AL_SIGNAL_MEMORY_PERCENT];
    message.cpu_percent = s_evidence (cpu)? cpu: 0;
    if (!s_evidence (cpu))
        message.no_evidence |= AL_SIGNALS_NO_CPU;
    message.memory_percent = s_evidence (memory)? memory: 0;
    if (!s_evidence (memory))
        message.no_evidence |= AL_SIGNALS_NO_MEMORY;
    //  The provider speaks for the service as a whole: its instances are the registry's
    //  (one when the driver keeps none), all up when every query answered.
    message.instances_total = group->target_count? (uint32_t) group->target_count: 1;
    message.instances_up = failed? 0: message.instances_total;
    if (group->rules && !group->judging)
        group->judging = failed > 0 || statuses [AL_SIGNAL_REQUESTS_PER_SECOND] == AL_PROMQL_OK
                      || al_clock_mono_ms () - group->watched_since_ms > S_PROMETHEUS_FIRST_DATA_MS;
    //  While a deployment waits for its version's first data nothing is published for
    //  it: deploy-manager takes every published sample of the soak as judged evidence,
    //  so a soak that ends before Prometheus has scraped the new version must end with
    //  no sample (a missing_evidence rollback), never pass unjudged.
    if (group->rules && !group->judging)
        return;
    message.sequence = ++group->prometheus_sequence;
    s_publish (self, group, &message);
    if (group->judging)
        s_judge (self, group, &message, now);
}

//  ---- one tick -----------------------------------------------------------------------------

static void
s_tick (s_monitor_t *self)
{
    //  1. Instances.
    size_t total = 0;
    for (size_t g = 0; g < self->group_count; g++) {
        s_refresh (&self->groups [g]);
        if (self->groups [g].signals)
            total += self->groups [g].target_count;     // Prometheus groups are not scraped
    }
    //  2. One concurrent round over every target.
    al_scrape_target_t *targets = (al_scrape_target_t *) calloc (total + 1, sizeof *targets);
    al_scrape_result_t *results = (al_scrape_result_t *) calloc (total + 1, sizeof *results);
    assert (targets && results);
    size_t index = 0;
    for (size_t g = 0; g < self->group_count; g++)
        for (size_t i = 0; self->groups [g].signals && i < self->groups [g].target_count; i++) {
            targets [index].url = self->groups [g].targets [i].url;
            targets [index].user = &self->groups [g].targets [i];
            index++;
        }
    if (total)
        al_scraper_run (self->scraper, targets, total, self->options.scrape_timeout_ms, results);
    int64_t now = al_clock_wall_ms ();
    index = 0;
    for (size_t g = 0; g < self->group_count; g++) {
        s_group_t *group = &self->groups [g];
        for (size_t i = 0; group->signals && i < group->target_count; i++, index++) {
            const al_scrape_result_t *result = &results [index];
            char error [512];
            if (result->ok) {
                al_metrics_t *metrics = al_metrics_parse (result->body, result->body_size, NULL, error, sizeof error);
                if (metrics) {
                    al_signals_scrape_ok (group->signals, group->targets [i].id, now, &metrics, error, sizeof error);
                    continue;
                }
                char reason [600];
                snprintf (reason, sizeof reason, "unparsable /metrics: %.500s", error);
                al_signals_scrape_failed (group->signals, group->targets [i].id, now, reason, error, sizeof error);
            }
            else
                al_signals_scrape_failed (group->signals, group->targets [i].id, now, result->error, error, sizeof error);
        }
    }
    free (targets);
    free (results);

    //  3. Sample, send, evaluate.
    for (size_t g = 0; g < self->group_count; g++) {
        s_group_t *group = &self->groups [g];
        if (group->prometheus) {
            s_prometheus_tick (self, group, now);
            continue;
        }
        if (group->target_count > 0) {
            //  Under deployment, the version it brings is judged on its own instances: the
            //  errors of the instances it replaces are not its own. Until one of them has
            //  been up (deploy-manager's readiness timeout guards a start that never
            //  comes), the service's sample is published and the rules wait.
            const char *ids [S_MAX_INSTANCES];
            size_t id_count = 0;
            bool scoped = false;
            if (group->rules && group->version [0]) {
                for (size_t i = 0; i < group->target_count; i++)
                    if (strcmp (group->targets [i].version, group->version) == 0)
                        ids [id_count++] = group->targets [i].id;
                for (size_t i = 0; i < al_signals_instance_count (group->signals) && !group->version_up; i++) {
                    al_signals_instance_t instance;
                    if (!al_signals_instance_at (group->signals, i, now, &instance) || !instance.up)
                        continue;
                    for (size_t j = 0; j < id_count && !group->version_up; j++)
                        group->version_up = strcmp (ids [j], instance.name) == 0;
                }
                scoped = group->version_up;
            }
            bool judged = group->rules && (!group->version [0] || scoped);
            al_signals_sample_t sample;
            if (scoped)
                al_signals_sample_of (group->signals, now, false, ids, id_count, &sample);
            else
                al_signals_sample (group->signals, now, group->rules == NULL, &sample);
            Airlock__SoakSignal message = AIRLOCK__SOAK_SIGNAL__INIT;
            al_signals_to_proto (&sample, &message);
            message.version = scoped? group->version: (char *) "";
            s_publish (self, group, &message);
            if (judged)
                s_judge (self, group, &message, now);
            if (scoped)
                s_canary (self, group, now, ids, id_count);
        }
        else
        if (group->rules && !group->triggered) {
            al_rules_result_t verdict = al_rules_tick (group->rules, now);
            if (verdict.verdict == AL_RULES_BREACH) {
                group->triggered = true;
                s_trigger (self, group, &verdict);
            }
        }
    }
    s_drain (self);
}

int
al_monitor_run (const al_config_t *config, const al_monitor_options_t *options, char *error, size_t error_size)
{
    int rc = 2;
    s_monitor_t self;
    memset (&self, 0, sizeof self);
    self.config = config;
    if (options)
        self.options = *options;
    else
        al_monitor_options_defaults (&self.options);
    if (self.options.interval_ms < 50)
        self.options.interval_ms = 50;
    if (self.options.scrape_timeout_ms <= 0) {
        self.options.scrape_timeout_ms = self.options.interval_ms * 8 / 10;
        if (self.options.scrape_timeout_ms > 2000)
            self.options.scrape_timeout_ms = 2000;
    }
    if (self.options.baseline_samples <= 0)
        self.options.baseline_samples = AL_MONITOR_DEFAULT_BASELINE;
    if (self.options.evidence_grace_ms <= 0)
        self.options.evidence_grace_ms = self.options.interval_ms * 3 < 1000? 1000: self.options.interval_ms * 3;
    if (strlen (al_config_state_dir (config)) >= sizeof self.state_dir) {
        snprintf (error, error_size, "%s: the state directory's path is longer than %zu characters",
                  al_config_state_dir (config), sizeof self.state_dir - 1);
        return 2;
    }
    snprintf (self.state_dir, sizeof self.state_dir, "%s", al_config_state_dir (config));

    al_policy_errors_t *errors = NULL;
    self.policy = al_policy_load (al_config_policy_dir (config), &errors);
    if (!self.policy) {
        snprintf (error, error_size, "%s", errors && al_policy_errors_count (errors)?
                  al_policy_errors_at (errors, 0): "policy: cannot load");
        goto cleanup;
    }
    self.services = al_services_load (al_config_services_path (config), error, error_size);
    if (!self.services)
        goto cleanup;
    self.scraper = al_scraper_new (0, error, error_size);
    if (!self.scraper)
        goto cleanup;
    size_t count = al_services_count (self.services);
    self.groups = (s_group_t *) calloc (count * 3 + 1, sizeof *self.groups);
    assert (self.groups);
    for (size_t i = 0; i < count; i++) {
        const al_service_t *svc = al_services_at (self.services, i);
        //  A Prometheus source is read through its queries (whatever the driver), not by
        //  scraping. Probes only: nothing to scrape, nothing to judge (deploy-manager's
        //  probes are the evidence). Exec services run on a platform with its own
        //  monitoring.
        if (svc->signals == AL_SERVICE_SIGNALS_PROMETHEUS) {
            for (int env = 1; env < S_ENV_SLOTS; env++) {
                s_group_t *group = &self.groups [self.group_count++];
                group->svc = svc;
                group->env = (Airlock__Environment) env;
                //  The process driver's registry, when there is one: the version running
                //  before a rollout (the baseline's label) and the instance count.
                al_instances_path_in_state (self.state_dir, svc->name, al_environment_name (group->env),
                                            group->registry, sizeof group->registry);
                group->prometheus = al_promql_new (svc->prometheus.url, svc->prometheus.timeout_ms, error, error_size);
                if (!group->prometheus)
                    goto cleanup;
            }
            zsys_info ("monitor: %s: signals: prometheus: read through its queries at %s", svc->name,
                       svc->prometheus.url);
            continue;
        }
        if (strcmp (svc->driver, "process") != 0)
            continue;
        if (svc->signals == AL_SERVICE_SIGNALS_PROBES) {
            zsys_info ("monitor: %s: signals: probes: not scraped, not judged by the monitor's rules", svc->name);
            continue;
        }
        al_signals_config_t signals_config;
        s_signals_config (svc, self.options.evidence_grace_ms, &signals_config);
        if (signals_config.not_required)
            zsys_info ("monitor: %s: not required (services.yaml), judged without:%s%s%s%s", svc->name,
                       signals_config.not_required & AL_SIGNALS_NO_TRAFFIC? " requests": "",
                       signals_config.not_required & AL_SIGNALS_NO_LATENCY? " latency": "",
                       signals_config.not_required & AL_SIGNALS_NO_CPU? " cpu": "",
                       signals_config.not_required & AL_SIGNALS_NO_MEMORY? " memory": "");
        for (int env = 1; env < S_ENV_SLOTS; env++) {
            s_group_t *group = &self.groups [self.group_count++];
            group->svc = svc;
            group->env = (Airlock__Environment) env;
            al_instances_path_in_state (self.state_dir, svc->name, al_environment_name (group->env),
                                        group->registry, sizeof group->registry);
            group->signals = al_signals_new (svc->name, al_environment_name (group->env), &signals_config);
            assert (group->signals);
        }
    }
    self.agent = al_agent_new_for_role (config, "monitor", false, error, error_size);
    if (!self.agent)
        goto cleanup;
    self.events = al_subscriber_new (config, "monitor", error, error_size);
    if (!self.events)
        goto cleanup;
    al_subscriber_subscribe (self.events, "event.DeployProgress");
    zsys_info ("monitor: ready (%zu group(s), every %d ms, scrape timeout %d ms, grace %d ms)", self.group_count,
               self.options.interval_ms, self.options.scrape_timeout_ms, self.options.evidence_grace_ms);
    rc = 0;
    int64_t next = al_clock_mono_ms ();
    while (!al_agent_interrupted ()) {
        s_tick (&self);
        next += self.options.interval_ms;
        int64_t now = al_clock_mono_ms ();
        if (next < now)
            next = now;                 // a slow round: no burst to catch up
        //  Until the next tick: deployment events.
        do {
            int64_t wait = next - al_clock_mono_ms ();
            if (wait <= 0)
                break;
            uint64_t missed = 0;
            al_envelope_t *event = al_subscriber_recv (self.events, (int) wait, NULL, 0, NULL, &missed, NULL);
            if (event) {
                s_event (&self, event, missed);
                al_codec_free (&event);
            }
        } while (!al_agent_interrupted () && al_clock_mono_ms () < next);
    }
    al_agent_flush (self.agent, 2000);
cleanup:
    for (size_t g = 0; g < self.group_count; g++) {
        al_signals_destroy (&self.groups [g].signals);
        al_rules_destroy (&self.groups [g].rules);
        al_canary_destroy (&self.groups [g].canary);
        al_promql_destroy (&self.groups [g].prometheus);
    }
    free (self.groups);
    al_subscriber_destroy (&self.events);
    al_agent_destroy (&self.agent);
    al_scraper_destroy (&self.scraper);
    al_services_destroy (&self.services);
    al_policy_errors_destroy (&errors);
    al_policy_destroy (&self.policy);
    return rc;
}
