/*  al_notify_format.h: a notification as an endpoint receives it (docs/notifications.md).

    Three formats:
      slack        Slack incoming-webhook JSON: {"text": fallback, "blocks": [header,
                   section, fields, context]} within Slack's limits, mrkdwn escaped;
      webhook      {"id", "type", "time", "source", "subject", "text", "fields",
                   "deployment_id", "environment", "service", "event"};
      cloudevents  CloudEvents 1.0 structured mode (application/cloudevents+json):
                   specversion, id, source "airlock", type "dev.airlock.<template>",
                   time, subject, datacontenttype "application/json", data.
    The body is rendered once, when the notification is queued, and sent byte for byte
    on every attempt; its id is the delivery id, derived from the event's source key
    and the endpoint name, so it is the same across retries and restarts and receivers
    can de-duplicate on it. Requests to an endpoint with a secret carry
    X-Airlock-Timestamp (Unix seconds of the attempt) and X-Airlock-Signature-256:
    sha256=<hex of HMAC-SHA256(secret, "<timestamp>.<body>")>, computed per attempt.

    Pure functions: thread-safe.
*/
#ifndef AL_NOTIFY_FORMAT_H_INCLUDED
#define AL_NOTIFY_FORMAT_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include "agents/al_notify_config.h"
#include "agents/al_notify_message.h"

#ifdef __cplusplus
extern "C" {
#endif

//  "ntf-" + 32 lowercase hex digits, and its NUL.
#define AL_NOTIFY_DELIVERY_ID_SIZE 37
//  "sha256=" + 64 lowercase hex digits, and its NUL.
#define AL_NOTIFY_SIGNATURE_SIZE 72
//  "2026-01-30T10:15:00.123Z" and its NUL, with room.
#define AL_NOTIFY_TIME_SIZE 32

//  The body for an endpoint of this kind (malloc'd, NUL-terminated; *size_p without the
//  NUL). Never NULL.
char *al_notify_format_body (al_notify_kind_t kind, const al_notify_message_t *message,
                             const char *delivery_id, size_t *size_p);

//  Content-Type of the body.
const char *al_notify_format_content_type (al_notify_kind_t kind);

//  The request headers stored with a queued delivery, one "Name: value" per line, each
//  line ending in "\n": Content-Type, User-Agent, X-Airlock-Delivery, X-Airlock-Event
//  (the template, reduced to [A-Za-z0-9_.-]). Caller frees.
char *al_notify_format_headers (al_notify_kind_t kind, const al_notify_message_t *message,
                                const char *delivery_id);

//  The delivery id of the notification from source_key for endpoint_name:
//  "ntf-" + the first 16 bytes, in hex, of SHA-256(source_key NUL endpoint_name).
void al_notify_format_delivery_id (const char *source_key, const char *endpoint_name,
                                   char delivery_id [AL_NOTIFY_DELIVERY_ID_SIZE]);

//  "sha256=" + hex HMAC-SHA256 keyed with secret over "<timestamp>.<body>".
void al_notify_format_sign (const uint8_t *secret, size_t secret_size, uint64_t timestamp_s,
                            const uint8_t *body, size_t body_size, char signature [AL_NOTIFY_SIGNATURE_SIZE]);

//  RFC 3339 UTC with milliseconds.
void al_notify_format_time (uint64_t time_ms, char text [AL_NOTIFY_TIME_SIZE]);

//  The CloudEvents type of a template: "dev.airlock." + the template reduced to
//  [A-Za-z0-9_.-] (other bytes become '_').
void al_notify_format_event_type (const char *template_name, char *type, size_t type_size);

#ifdef __cplusplus
}
#endif

#endif
