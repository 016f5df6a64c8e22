/*  al_notifier.c: the notifier agent's receiving loop (see al_notifier.h).

    One thread alternates between the agent's deliveries (taken without waiting) and the
    PUB subscription (waited on for up to S_POLL_MS). Every event goes through s_handle:
    learn what it says about a deployment, map it to a notification, skip it if its
    source key is already recorded, render it for each endpoint that wants it and queue
    the lot in one outbox transaction, then wake the sender. A delivery is acknowledged
    only after that transaction committed (or found the source already recorded). When
    the outbox cannot be written, the event is held and tried again every second; a held
    delivery stays unacknowledged meanwhile, so the broker keeps it.
*/
#include "agents/al_notifier.h"
#include "base/al_clock.h"
#include "base/al_paths.h"
#include "agents/al_agent.h"
#include "agents/al_notify_config.h"
#include "agents/al_notify_format.h"
#include "agents/al_notify_outbox.h"
#include "agents/al_notify_sender.h"
#include "agents/al_notify_templates.h"
#include "agents/al_subscriber.h"
#include "deploy/al_services.h"
#include "policies/al_policy.h"
#include "broker/al_telemetry.h"
#include <assert.h>
#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define S_POLL_MS 100
#define S_HELD_RETRY_MS 1000
#define S_HELD_MAX 10000                // held PUB events beyond this are dropped (logged)
#define S_PATH_SIZE 1200

static const char *const s_topics [] = {
    "event.ApprovalRequest", "event.Notification", "event.DeployProgress", "event.DeployReceipt",
    "event.RollbackTrigger", "event.DeployRequest", "event.ReleaseCandidate"
};

typedef struct {
    al_envelope_t *envelope;
    bool delivery;                  // from al_agent_recv: acknowledge once stored
} s_held_t;

typedef struct {
    const al_config_t *config;
    al_notify_config_t *notify;
    al_notify_outbox_t *outbox;
    al_notify_sender_t *sender;
    al_agent_t *agent;
    al_subscriber_t *events;
    zlistx_t *held;
    uint64_t held_retry_ms;
    size_t held_events;             // held PUB events (not deliveries)
    uint64_t queued;                // notifications queued by this run
    uint64_t duplicates;            // events seen again
    //  For the budget alert (NULL when they do not load: no budget alerts, said once).
    al_policy_t *policy;
    al_services_t *services;
} s_notifier_t;

static void
s_held_destructor (void **item)
{
    s_held_t *held = (s_held_t *) *item;
    if (held) {
        al_codec_free (&held->envelope);
        free (held);
    }
    *item = NULL;
}

//  Strings from the bus become JSON: cleaned first (jansson takes UTF-8 only).
static void
s_set (json_t *info, const char *key, const char *value)
{
    if (value && *value) {
        char *clean = al_notify_utf8_clean (value);
        json_object_set_new (info, key, json_string (clean));
        free (clean);
    }
}

//  What an event tells about a deployment or a release, remembered for later events.
static int
s_learn (s_notifier_t *self, const al_envelope_t *envelope, uint64_t now)
{
    const char *deployment_id = envelope->deployment_id && *envelope->deployment_id? envelope->deployment_id: NULL;
    const char *env = al_environment_name (envelope->environment);
    json_t *info = json_object ();
    int rc = 0;
    if (envelope->body_case == AIRLOCK__ENVELOPE__BODY_DEPLOY_REQUEST && deployment_id) {
        const Airlock__DeployRequest *request = envelope->deploy_request;
        s_set (info, "service", request->service);
        s_set (info, "version", request->version);
        s_set (info, "environment", envelope->environment? env: NULL);
        s_set (info, "deployment_type", al_deployment_type_name (request->deployment_type));
        rc = al_notify_outbox_remember_deployment (self->outbox, deployment_id, info, now);
    }
    else
    if (envelope->body_case == AIRLOCK__ENVELOPE__BODY_APPROVAL_REQUEST) {
        //  A production deployment's id is its request id (the grant's ExecuteDeploy).
        const Airlock__ApprovalRequest *request = envelope->approval_request;
        s_set (info, "service", request->service);
        s_set (info, "version", request->version);
        s_set (info, "environment", "production");
        s_set (info, "deployment_type", al_deployment_type_name (request->deployment_type));
        s_set (info, "summary", request->summary);
        s_set (info, "risk_impact", request->risk_impact);
        if (deployment_id)
            rc = al_notify_outbox_remember_deployment (self->outbox, deployment_id, info, now);
        if (rc == 0 && request->request_id && *request->request_id
        &&  (!deployment_id || strcmp (request->request_id, deployment_id) != 0))
            rc = al_notify_outbox_remember_deployment (self->outbox, request->request_id, info, now);
    }
    else
    if (envelope->body_case == AIRLOCK__ENVELOPE__BODY_RELEASE_CANDIDATE) {
        const Airlock__ReleaseCandidate *candidate = envelope->release_candidate;
        if (candidate->service && *candidate->service && candidate->version && *candidate->version) {
            s_set (info, "summary", candidate->summary);
            json_t *changes = json_array ();
            for (size_t i = 0; i < candidate->n_changes; i++) {
                char *clean = al_notify_utf8_clean (candidate->changes [i]);
                json_array_append_new (changes, json_string (clean));
                free (clean);
            }
            json_object_set_new (info, "changes", changes);
            rc = al_notify_outbox_remember_release (self->outbox, candidate->service, candidate->version, info, now);
        }
    }
    json_decref (info);
    if (rc != 0)
        zsys_error ("notifier: %s", al_notify_outbox_error (self->outbox));
    return rc;
}

//  Queue one notification (takes it) for every endpoint that wants it. 0: queued, or
//  nothing to do, or seen before; -1: the outbox failed.
static int
s_queue (s_notifier_t *self, al_notify_message_t **message_p, uint64_t now)
{
    al_notify_message_t *message = *message_p;
    *message_p = NULL;
    if (!message)
        return 0;
    int rc = -1;
    const char *key = al_notify_message_source_key (message);
    const char *template_name = al_notify_message_template (message);
    size_t count = al_notify_config_count (self->notify);
    al_notify_outbox_entry_t *entries = calloc (count + 1, sizeof *entries);
    char (*ids) [AL_NOTIFY_DELIVERY_ID_SIZE] = calloc (count + 1, sizeof *ids);
    assert (entries && ids);
    size_t used = 0;
    int seen = al_notify_outbox_has_source (self->outbox, key);
    if (seen < 0) {
        zsys_error ("notifier: %s", al_notify_outbox_error (self->outbox));
        goto cleanup;
    }
    if (seen) {
        self->duplicates++;
        rc = 0;
        goto cleanup;
    }
    for (size_t i = 0; i < count; i++) {
        const al_notify_endpoint_t *endpoint = al_notify_config_at (self->notify, i);
        if (!al_notify_endpoint_wants (endpoint, template_name, al_notify_message_environment (message)))
            continue;
        al_notify_format_delivery_id (key, endpoint->name, ids [used]);
        al_notify_outbox_entry_t *entry = &entries [used++];
        entry->endpoint = endpoint->name;
        entry->delivery_id = ids [used - 1];
        entry->template_name = template_name;
        entry->body = al_notify_format_body (endpoint->kind, message, entry->delivery_id, &entry->body_size);
        entry->headers = al_notify_format_headers (endpoint->kind, message, entry->delivery_id);
    }
    bool duplicate = false;
    if (al_notify_outbox_enqueue (self->outbox, key, template_name, entries, used, now, &duplicate) != 0) {
        zsys_error ("notifier: %s: %s", key, al_notify_outbox_error (self->outbox));
        goto cleanup;
    }
    rc = 0;
    if (duplicate) {
        self->duplicates++;
        goto cleanup;
    }
    self->queued++;
    zsys_info ("notifier: %s (%s): \"%s\" queued for %zu endpoint(s)", template_name, key,
               al_notify_message_subject (message), used);
    if (used && self->sender)
        al_notify_sender_wake (self->sender);
cleanup:
    for (size_t i = 0; i < used; i++) {
        free ((char *) entries [i].body);
        free ((char *) entries [i].headers);
    }
    free (entries);
    free (ids);
    al_notify_message_destroy (&message);
    return rc;
}

//  Turn one event into queued notifications: the one it maps to, and seed 002's budget
//  alert when it is a deploy whose projected cost passes the alert share. 0: done with
//  it (queued, nothing to do, or seen before); -1: the outbox failed, keep the event and
//  try again (what was queued is then found by its source key and not queued twice).
static int
s_handle (s_notifier_t *self, const al_envelope_t *envelope)
{
    uint64_t now = (uint64_t) al_clock_wall_ms ();
    if (s_learn (self, envelope, now) != 0)
        return -1;
    json_t *known = al_notify_outbox_recall (self->outbox, envelope->deployment_id);
    al_notify_message_t *message = al_notify_templates_map (envelope, known, now);
    json_decref (known);
    al_notify_message_t *budget = al_notify_templates_budget_alert (envelope, self->policy, self->services, now);
    int rc = s_queue (self, &message, now);
    if (rc == 0)
        rc = s_queue (self, &budget, now);
    al_notify_message_destroy (&budget);
    return rc;
}

static void
s_hold (s_notifier_t *self, al_envelope_t **envelope_p, bool delivery)
{
    if (!delivery && self->held_events >= S_HELD_MAX) {
        zsys_error ("notifier: the outbox has been failing for a while and %d events wait: event %" PRIu64
                    " is dropped", S_HELD_MAX, (*envelope_p)->delivery_id);
        al_codec_free (envelope_p);
        return;
    }
    s_held_t *held = calloc (1, sizeof *held);
    assert (held);
    held->envelope = *envelope_p;
    held->delivery = delivery;
    *envelope_p = NULL;
    if (!delivery)
        self->held_events++;
    zlistx_add_end (self->held, held);
}

//  Handle an event now, or hold it. delivery: acknowledge it once handled.
static void
s_take (s_notifier_t *self, al_envelope_t *envelope, bool delivery)
{
    if (zlistx_size (self->held) == 0 && s_handle (self, envelope) == 0) {
        if (delivery && envelope->delivery_id)
            al_agent_ack_delivery (self->agent, envelope->delivery_id);
        al_codec_free (&envelope);
        return;
    }
    //  Keep the order: behind what is already held.
    s_hold (self, &envelope, delivery);
}

static void
s_retry_held (s_notifier_t *self)
{
    uint64_t now = (uint64_t) al_clock_wall_ms ();
    if (zlistx_size (self->held) == 0 || now < self->held_retry_ms)
        return;
    self->held_retry_ms = now + S_HELD_RETRY_MS;
    s_held_t *held;
    while ((held = (s_held_t *) zlistx_first (self->held))) {
        if (s_handle (self, held->envelope) != 0)
            return;
        if (!held->delivery)
            self->held_events--;
        else
        if (held->envelope->delivery_id)
            al_agent_ack_delivery (self->agent, held->envelope->delivery_id);
        zlistx_delete (self->held, zlistx_cursor (self->held));
    }
    zsys_info ("notifier: the outbox takes events again");
}

static int
s_log_pending (const char *endpoint, uint64_t pending, void *arg)
{
    s_notifier_t *self = (s_notifier_t *) arg;
    if (!al_notify_config_find (self->notify, endpoint))
        zsys_warning ("notifier: %" PRIu64 " pending delivery(ies) for endpoint %s, which notifications.yaml no "
                      "longer names: kept, not sent", pending, endpoint);
    else
        zsys_info ("notifier: %" PRIu64 " pending delivery(ies) for %s from before: sending", pending, endpoint);
    return 0;
}

char *
al_notifier_config_path (const al_config_t *config)
{
    return al_paths_dup (al_config_state_dir (config), AL_PATH_NOTIFICATIONS_YAML, NULL, 0);
}

//  notifications.yaml, or no endpoints when there is none.
static al_notify_config_t *
s_load_config (const al_config_t *config, char *error, size_t error_size)
{
    char *path = al_notifier_config_path (config);
    if (!path) {
        snprintf (error, error_size, "notifier: out of memory");
        return NULL;
    }
    al_notify_config_t *notify = NULL;
    struct stat info;
    if (stat (path, &info) != 0 && errno == ENOENT) {
        zsys_info ("notifier: no %s: no endpoints, nothing to send (events are still recorded)", path);
        notify = al_notify_config_new_empty ();
    }
    else
        notify = al_notify_config_load (path, error, error_size);
    free (path);
    return notify;
}

int
al_notifier_run (const al_config_t *config, char *error, size_t error_size)
{
    assert (config);
    int rc = 2;
    int lock_fd = -1;
    s_notifier_t self;
    memset (&self, 0, sizeof self);
    self.config = config;
    self.held = zlistx_new ();
    zlistx_set_destructor (self.held, s_held_destructor);
    const char *state_dir = al_config_state_dir (config);
    char dir [S_PATH_SIZE], path [S_PATH_SIZE + 32];
    if (strlen (state_dir) > S_PATH_SIZE - 64) {
        snprintf (error, error_size, "%s: the state directory's path is too long", state_dir);
        goto cleanup;
    }
    if (al_paths_get (state_dir, AL_PATH_NOTIFIER_DIR, dir, sizeof dir, error, error_size) != 0)
        goto cleanup;
    if (mkdir (dir, 0700) != 0 && errno != EEXIST) {
        snprintf (error, error_size, "%s: cannot create: %s", dir, strerror (errno));
        goto cleanup;
    }
    if (al_paths_get (state_dir, AL_PATH_NOTIFIER_LOCK, path, sizeof path, error, error_size) != 0)
        goto cleanup;
    lock_fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock_fd < 0 || flock (lock_fd, LOCK_EX | LOCK_NB) != 0) {
        snprintf (error, error_size, "%s: %s", path, lock_fd < 0? strerror (errno)
                  : "another notifier runs on this state directory");
        goto cleanup;
    }
    self.notify = s_load_config (config, error, error_size);
    if (!self.notify)
        goto cleanup;
    //  The budget alert's inputs: optional, the notifier's job is the other events.
    self.policy = al_policy_load (al_config_policy_dir (config), NULL);
    char services_error [512] = "";
    if (self.policy)
        self.services = al_services_load (al_config_services_path (config), services_error, sizeof services_error);
    if (!self.policy || !self.services)
        zsys_warning ("notifier: no budget alerts: %s", self.policy? services_error: "the policy does not load");
    if (al_paths_get (state_dir, AL_PATH_NOTIFIER_OUTBOX, path, sizeof path, error, error_size) != 0)
        goto cleanup;
    self.outbox = al_notify_outbox_open (path, error, error_size);
    if (!self.outbox)
        goto cleanup;
    size_t count = al_notify_config_count (self.notify);
    if (count) {
        self.sender = al_notify_sender_new (self.notify, path, error, error_size);
        if (!self.sender)
            goto cleanup;
    }
    if (al_notify_outbox_pending_endpoints (self.outbox, s_log_pending, &self) != 0)
        zsys_warning ("notifier: %s", al_notify_outbox_error (self.outbox));
    self.agent = al_agent_new_for_role (config, "notifier", true, error, error_size);
    if (!self.agent)
        goto cleanup;
    self.events = al_subscriber_new (config, "notifier", error, error_size);
    if (!self.events)
        goto cleanup;
    for (size_t i = 0; i < sizeof s_topics / sizeof s_topics [0]; i++)
        al_subscriber_subscribe (self.events, s_topics [i]);
    for (size_t i = 0; i < count; i++) {
        const al_notify_endpoint_t *endpoint = al_notify_config_at (self.notify, i);
        //  Scheme and host only: a Slack webhook's path is its credential, and a URL may
        //  carry user:password.
        const char *url = endpoint->url? endpoint->url: "";
        const char *host = strstr (url, "://");
        host = host? host + 3: url;
        const char *at = strchr (host, '@'), *end = host + strcspn (host, "/?#");
        if (at && at < end)
            host = at + 1;
        int scheme_length = (int) (strstr (url, "://")? strstr (url, "://") - url: 0);
        zsys_info ("notifier: endpoint %s (%s) %.*s%s%.*s/...%s", endpoint->name, al_notify_kind_name (endpoint->kind),
                   scheme_length, url, scheme_length? "://": "", (int) (end - host), host,
                   endpoint->secret_env || endpoint->secret_file? ", signed": "");
    }
    zsys_info ("notifier: ready (%zu endpoint(s), outbox %s)", count, path);
    rc = 0;
    int64_t metrics_due = 0;
    while (!al_agent_interrupted ()) {
        s_retry_held (&self);
        if (al_clock_mono_ms () >= metrics_due) {
            metrics_due = al_clock_mono_ms () + 1000;
            al_notify_outbox_counts_t counts;
            if (al_notify_outbox_counts (self.outbox, NULL, &counts) == 0)
                al_telemetry_set (al_telemetry_series (al_telemetry_process (), AL_TELEMETRY_GAUGE, "airlock_notifier_outbox_depth",
                                                 "Notification deliveries waiting in the outbox", NULL, NULL, NULL, NULL),
                               (double) counts.pending);
        }
        al_envelope_t *envelope;
        while (!al_agent_interrupted () && (envelope = al_agent_recv (self.agent, 0)))
            s_take (&self, envelope, true);
        char topic [128] = "";
        uint64_t missed = 0;
        bool restarted = false;
        envelope = al_subscriber_recv (self.events, S_POLL_MS, topic, sizeof topic, NULL, &missed, &restarted);
        if (missed)
            zsys_warning ("notifier: %" PRIu64 " event(s) on %s were missed%s (PUB is not durable): "
                          "their notifications are lost", missed, topic,
                          restarted? " around a broker restart": "");
        if (envelope)
            s_take (&self, envelope, false);
    }
    al_agent_flush (self.agent, 2000);
    zsys_info ("notifier: stopping (%" PRIu64 " notification(s) queued, %" PRIu64 " event(s) seen again, "
               "%zu held)", self.queued, self.duplicates, zlistx_size (self.held));
cleanup:
    //  Held deliveries are not acknowledged: the broker gives them to the next notifier.
    al_notify_sender_destroy (&self.sender);
    al_subscriber_destroy (&self.events);
    al_agent_destroy (&self.agent);
    al_notify_outbox_destroy (&self.outbox);
    al_notify_config_destroy (&self.notify);
    al_services_destroy (&self.services);
    al_policy_destroy (&self.policy);
    zlistx_destroy (&self.held);
    if (lock_fd >= 0)
        close (lock_fd);
    return rc;
}
