/*  al_notify_message.h: one notification, before it is formatted for an endpoint.

    A message has a template name (approval_requested, pre_deployment, post_deployment,
    rollback, escalation, or a Notification's own template), a source key that names
    the event it came from (the notifier's de-duplication key: "event:<audit sequence>"
    or "deployment:<id>:<template>"), a subject, a text of several lines, ordered
    key/value fields, and where it came from: the bus message type, its audit sequence,
    the deployment, environment and service, and the event's time.

    Strings are copied in. Text from the bus is kept as given, except that bytes which
    are not valid UTF-8 are replaced by U+FFFD so every format can carry it. One owner,
    one thread.
*/
#ifndef AL_NOTIFY_MESSAGE_H_INCLUDED
#define AL_NOTIFY_MESSAGE_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _al_notify_message_t al_notify_message_t;

//  Longest source key (longer ones are refused by new).
#define AL_NOTIFY_SOURCE_KEY_MAX 200

//  A message of template_name for source_key (both non-empty). NULL when either is
//  empty or too long.
al_notify_message_t *al_notify_message_new (const char *template_name, const char *source_key);
//  NULL-safe; sets *self_p to NULL.
void al_notify_message_destroy (al_notify_message_t **self_p);

void al_notify_message_set_subject (al_notify_message_t *self, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));
//  Append to the text (no separator is added).
void al_notify_message_append (al_notify_message_t *self, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));
//  Add a field (key non-empty; a NULL or empty value is left out).
void al_notify_message_add_field (al_notify_message_t *self, const char *key, const char *value);
//  Where it came from. Every string may be NULL ("").
void al_notify_message_set_origin (al_notify_message_t *self, const char *event_type, uint64_t audit_sequence,
                                   const char *deployment_id, int environment, const char *service,
                                   uint64_t time_ms);

const char *al_notify_message_template (const al_notify_message_t *self);
const char *al_notify_message_source_key (const al_notify_message_t *self);
const char *al_notify_message_subject (const al_notify_message_t *self);
const char *al_notify_message_text (const al_notify_message_t *self);
size_t al_notify_message_field_count (const al_notify_message_t *self);
const char *al_notify_message_field_key (const al_notify_message_t *self, size_t index);
const char *al_notify_message_field_value (const al_notify_message_t *self, size_t index);
//  The value of the first field named key, or NULL.
const char *al_notify_message_field (const al_notify_message_t *self, const char *key);
const char *al_notify_message_event_type (const al_notify_message_t *self);
uint64_t al_notify_message_audit_sequence (const al_notify_message_t *self);
const char *al_notify_message_deployment_id (const al_notify_message_t *self);
//  Airlock__Environment value, 0 when none.
int al_notify_message_environment (const al_notify_message_t *self);
const char *al_notify_message_service (const al_notify_message_t *self);
uint64_t al_notify_message_time_ms (const al_notify_message_t *self);

//  A copy of text with invalid UTF-8 replaced by U+FFFD (caller frees); NULL is "".
char *al_notify_utf8_clean (const char *text);

#ifdef __cplusplus
}
#endif

#endif
