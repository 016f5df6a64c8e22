/*  al_notify_outbox.h: the notifier's own database (STATE_DIR/notifier/outbox.db).

    Three things live in it, all in one SQLite file in WAL mode with synchronous=FULL
    (both read back at open: a database that does not give that durability is refused):
      sources      every event already turned into notifications, by source key
                   (al_notify_templates.h): an event seen again, by another path or
                   after a restart, is recognised and makes nothing new;
      deliveries   the outbox: one row per (notification, endpoint) with its delivery
                   id, the headers and the body exactly as they are sent, its state
                   (pending, done, failed), attempts, next attempt time, last HTTP
                   status and error. Done and failed rows are kept, for the record;
      deployments  what the notifier learned of a deployment (service, version,
      releases     environment, summary) and of a release (its change list) from the
                   events that carry it, so later events that do not can be worded.
    A source and its deliveries are written in ONE transaction: after a crash either
    both are there or neither, so the event it came from is acknowledged only once its
    notifications are durable, and a redelivered event finds its source and stops.

    The store's own notification outbox (store/al_store.h) is the broker's: tied to audit
    rows in the broker's database and without source de-duplication, per-endpoint state
    or permanent failures. This is the notifier-local equivalent.

    Threading: an al_notify_outbox_t belongs to one thread. The receiving loop and the
    sender each open their own on the same file (SQLite locking; writers wait up to 5 s).
*/
#ifndef AL_NOTIFY_OUTBOX_H_INCLUDED
#define AL_NOTIFY_OUTBOX_H_INCLUDED

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _al_notify_outbox_t al_notify_outbox_t;

//  Open (creating it and its schema if missing). NULL with "path: what is wrong".
al_notify_outbox_t *al_notify_outbox_open (const char *path, char *error, size_t error_size);
//  NULL-safe; sets *self_p to NULL.
void al_notify_outbox_destroy (al_notify_outbox_t **self_p);
//  The last error ("" if none).
const char *al_notify_outbox_error (al_notify_outbox_t *self);

//  One outgoing notification for one endpoint. Strings borrowed.
typedef struct {
    const char *endpoint;
    const char *delivery_id;
    const char *template_name;
    const char *headers;        // "Name: value\n" lines
    const char *body;
    size_t body_size;
} al_notify_outbox_entry_t;

//  Is source_key recorded? 1 yes, 0 no, -1 error.
int al_notify_outbox_has_source (al_notify_outbox_t *self, const char *source_key);

//  Record source_key and queue entries (due at once), in one transaction. When the
//  source was recorded before, nothing is written and *duplicate_p is true (MAY be
//  NULL). Returns 0, or -1 (nothing written; al_notify_outbox_error says why).
int al_notify_outbox_enqueue (al_notify_outbox_t *self, const char *source_key, const char *template_name,
                              const al_notify_outbox_entry_t *entries, size_t count, uint64_t now_ms,
                              bool *duplicate_p);

//  A pending delivery, copied out (al_notify_outbox_item_clear frees it).
typedef struct {
    int64_t id;
    char delivery_id [64];
    char endpoint [72];
    char *headers;
    uint8_t *body;
    size_t body_size;
    uint32_t attempts;          // made so far
    uint64_t created_ms;
    uint64_t next_attempt_ms;
} al_notify_outbox_item_t;

void al_notify_outbox_item_clear (al_notify_outbox_item_t *item);

//  The oldest pending delivery of endpoint due at now_ms. Returns 1 (item filled), 0
//  when none is due (*next_due_ms_p, MAY be NULL: the earliest next attempt of the
//  endpoint's pending deliveries, 0 if there are none), or -1 on error.
int al_notify_outbox_next (al_notify_outbox_t *self, const char *endpoint, uint64_t now_ms,
                           al_notify_outbox_item_t *item, uint64_t *next_due_ms_p);

//  The outcome of an attempt. done: a 2xx. retry: counted, tried again at
//  next_attempt_ms. failed: permanent (kept, never sent again). 0 or -1.
int al_notify_outbox_mark_done (al_notify_outbox_t *self, int64_t id, int http_status, uint64_t now_ms);
int al_notify_outbox_mark_retry (al_notify_outbox_t *self, int64_t id, int http_status, const char *error,
                                 uint64_t next_attempt_ms);
int al_notify_outbox_mark_failed (al_notify_outbox_t *self, int64_t id, int http_status, const char *error,
                                  uint64_t now_ms);

typedef struct {
    uint64_t sources;           // events recorded (all endpoints)
    uint64_t pending;
    uint64_t done;
    uint64_t failed;
    uint64_t attempts;          // over all deliveries counted
} al_notify_outbox_counts_t;

//  Counts for one endpoint (NULL: all). 0 or -1.
int al_notify_outbox_counts (al_notify_outbox_t *self, const char *endpoint, al_notify_outbox_counts_t *counts);

//  Calls fn for each endpoint with pending deliveries (in name order); fn returns
//  non-zero to stop. 0 or -1.
typedef int (al_notify_outbox_endpoint_fn) (const char *endpoint, uint64_t pending, void *arg);
int al_notify_outbox_pending_endpoints (al_notify_outbox_t *self, al_notify_outbox_endpoint_fn *fn, void *arg);

//  Merge info's keys into what is remembered of deployment_id / of release (service,
//  version). 0 or -1.
int al_notify_outbox_remember_deployment (al_notify_outbox_t *self, const char *deployment_id, const json_t *info,
                                          uint64_t now_ms);
int al_notify_outbox_remember_release (al_notify_outbox_t *self, const char *service, const char *version,
                                       const json_t *info, uint64_t now_ms);
//  What is remembered of a deployment, with its release's keys added where the
//  deployment has none (new reference; NULL if nothing is known or on error).
json_t *al_notify_outbox_recall (al_notify_outbox_t *self, const char *deployment_id);

#ifdef __cplusplus
}
#endif

#endif
