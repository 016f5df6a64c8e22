/*  al_notify_config.h: notifications.yaml, the notifier's endpoints and retry policy.

    The file lives at STATE_DIR/notifications.yaml (format in docs/notifications.md). It
    names the endpoints notifications go to (kind slack, webhook or cloudevents, a URL,
    which templates and environments they want, a secret BY REFERENCE: an environment
    variable or a file, never the secret itself) and how failed deliveries are retried.
    Loading is strict, in the style of services.yaml: an unknown or duplicate key, a
    wrong type, a number out of range, an unknown template name, a URL that is not
    http(s) or a secret written inline is an error "path:line:col: field: what is wrong";
    every error of the file is reported, one per line, and no configuration is returned.

    Immutable after load; any number of threads may read one.
*/
#ifndef AL_NOTIFY_CONFIG_H_INCLUDED
#define AL_NOTIFY_CONFIG_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _al_notify_config_t al_notify_config_t;

//  How an endpoint wants its notifications (docs/notifications.md, "Formats").
typedef enum {
    AL_NOTIFY_SLACK = 1,            // Slack incoming webhook: {"text", "blocks"}
    AL_NOTIFY_WEBHOOK = 2,          // generic JSON, HMAC-signed (a secret is required)
    AL_NOTIFY_CLOUDEVENTS = 3       // CloudEvents 1.0, structured mode
} al_notify_kind_t;

//  The templates an endpoint may ask for in `events`. "other" stands for every template
//  that is none of the five (a Notification message's own template name).
#define AL_NOTIFY_TEMPLATE_COUNT 6
#define AL_NOTIFY_ALL_TEMPLATES ((1u << AL_NOTIFY_TEMPLATE_COUNT) - 1)

//  Defaults of the optional keys.
#define AL_NOTIFY_DEFAULT_TIMEOUT_MS       10000
#define AL_NOTIFY_DEFAULT_INITIAL_MS       500
#define AL_NOTIFY_DEFAULT_MAX_MS           60000
#define AL_NOTIFY_DEFAULT_GIVE_UP_MS       86400000LL

typedef struct {
    const char *name;               // [A-Za-z0-9_.-]{1,64}, unique in the file
    al_notify_kind_t kind;
    const char *url;                // http:// or https://, with a host
    uint32_t templates;             // bit al_notify_template_index(name) per wanted template
    uint32_t environments;          // bit per Airlock__Environment value wanted (1..3);
                                    // messages without an environment always pass
    const char *secret_env;         // the secret's environment variable, or NULL
    const char *secret_file;        // the secret's file (absolute), or NULL
    int timeout_ms;                 // one HTTP attempt, connect included
} al_notify_endpoint_t;

typedef struct {
    int initial_ms;                 // first retry delay
    int max_ms;                     // retry delay ceiling
    int64_t give_up_after_ms;       // a delivery not done this long after it was queued fails
} al_notify_retry_t;

//  Load and validate path. NULL with the errors in error (one per line) when the file
//  cannot be read or is invalid.
al_notify_config_t *al_notify_config_load (const char *path, char *error, size_t error_size);

//  A configuration without endpoints and with the default retry policy (what a missing
//  notifications.yaml means).
al_notify_config_t *al_notify_config_new_empty (void);

//  NULL-safe; sets *self_p to NULL.
void al_notify_config_destroy (al_notify_config_t **self_p);

//  Endpoints, in file order.
size_t al_notify_config_count (const al_notify_config_t *self);
const al_notify_endpoint_t *al_notify_config_at (const al_notify_config_t *self, size_t index);
//  The endpoint named name, or NULL.
const al_notify_endpoint_t *al_notify_config_find (const al_notify_config_t *self, const char *name);
const al_notify_retry_t *al_notify_config_retry (const al_notify_config_t *self);

//  "slack", "webhook", "cloudevents".
const char *al_notify_kind_name (al_notify_kind_t kind);

//  The filter index of a template name: 0..4 for approval_requested, pre_deployment,
//  post_deployment, rollback, escalation; 5 ("other") for anything else.
unsigned al_notify_template_index (const char *template_name);
//  The i-th filter name (i < AL_NOTIFY_TEMPLATE_COUNT).
const char *al_notify_template_name (unsigned index);

//  Does endpoint want a notification of this template about this environment (0 = none)?
bool al_notify_endpoint_wants (const al_notify_endpoint_t *endpoint, const char *template_name,
                               int environment);

//  Read the endpoint's secret: the variable's value, or the file's content without its
//  trailing line break. *secret_p is a malloc'd string (caller frees), NULL when the
//  endpoint has no secret. Returns 0, or -1 with "endpoint NAME: secret: what is wrong"
//  in error (variable unset or empty, file unreadable or empty).
int al_notify_endpoint_secret (const al_notify_endpoint_t *endpoint, char **secret_p,
                               char *error, size_t error_size);

#ifdef __cplusplus
}
#endif

#endif
