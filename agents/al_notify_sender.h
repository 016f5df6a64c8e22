/*  al_notify_sender.h: the notifier's sending thread: outbox → HTTP, with retries.

    One thread, one libcurl multi handle, one lane per configured endpoint. A lane sends
    its endpoint's pending deliveries oldest first, one request at a time, each bounded
    by the endpoint's timeout_ms. Outcomes:
      2xx                          done;
      408, 429, 5xx, no answer     retried: the delivery waits its own backoff and the
                                   lane waits the endpoint's (exponential from
                                   retry.initial_ms up to retry.max_ms, with jitter:
                                   half the delay plus a random share of the other half;
                                   a Retry-After in seconds is honoured up to max_ms);
      any other status (4xx, 3xx)  failed for good: logged and kept, the lane goes on;
      queued longer than retry.give_up_after_ms: failed ("gave up"), logged and kept.
    Lanes are independent: a dead or slow endpoint holds up its own deliveries only,
    and the thread that receives events never waits on any of it. The body and delivery
    id are the stored ones; the X-Airlock-Timestamp and X-Airlock-Signature-256 headers
    (endpoints with a secret) are made for each attempt.

    Threading: al_notify_sender_new starts the thread; al_notify_sender_wake (any
    thread) says new deliveries were queued; al_notify_sender_destroy stops it. A request
    in flight at stop is abandoned: its delivery stays pending and is sent again, with
    the same delivery id, after a restart.
*/
#ifndef AL_NOTIFY_SENDER_H_INCLUDED
#define AL_NOTIFY_SENDER_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include "agents/al_notify_config.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _al_notify_sender_t al_notify_sender_t;

//  Read every endpoint's secret, open the outbox at outbox_path and start the thread.
//  config is borrowed and must outlive the sender. NULL with the reason in error.
al_notify_sender_t *al_notify_sender_new (const al_notify_config_t *config, const char *outbox_path,
                                          char *error, size_t error_size);

//  Stop the thread (bounded: in-flight requests are abandoned). NULL-safe; sets *self_p
//  to NULL.
void al_notify_sender_destroy (al_notify_sender_t **self_p);

//  New deliveries are in the outbox: look now rather than at the next periodic check.
void al_notify_sender_wake (al_notify_sender_t *self);

typedef struct {
    uint64_t attempts;          // requests completed (any outcome)
    uint64_t delivered;         // 2xx
    uint64_t retried;           // attempts that will be retried
    uint64_t failed;            // permanent failures, give-ups included
} al_notify_sender_info_t;

void al_notify_sender_info (al_notify_sender_t *self, al_notify_sender_info_t *info);

#ifdef __cplusplus
}
#endif

#endif
