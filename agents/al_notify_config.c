/*  al_notify_config.c: load and validate notifications.yaml.

    The same strict walk as deploy/al_services.c: the file is read whole (at most
    S_MAX_FILE_SIZE bytes), parsed into a libyaml document and walked against the fixed
    schema of docs/notifications.md. Every problem is recorded as "path:line:col:
    field: what is wrong" (libyaml marks are 0-based; messages are 1-based) and the walk
    goes on, so one load reports every error; S_MAX_ERRORS bounds what hostile input can
    make us collect. A configuration is returned only when there was no error.

    Aliases: a mapping or list is walked at most once (a second visit, through an alias,
    is an error), so no input can make the walk revisit a list millions of times.

    Secrets are references only: `secret: { env: NAME }` or `secret: { file: PATH }`.
    A scalar there is refused without echoing it, so a secret pasted into the file does
    not end up in a log line. Everything a loaded configuration points to is allocated
    from its own pool, freed together by destroy.
*/
#include "agents/al_notify_config.h"
#include "proto/al_codec.h"
#include <assert.h>
#include <curl/curl.h>
#include <errno.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define S_MAX_FILE_SIZE     (1024u * 1024)
#define S_MAX_ERRORS        100
#define S_MAX_ENTRIES       1000    // keys of a mapping, items of a list
#define S_MAX_ENDPOINTS     64
#define S_MAX_URL           2048
#define S_MAX_PATH_LENGTH   4096
#define S_FIELD_SIZE        256
#define S_MAX_SECRET_SIZE   4096

static const char *const s_templates [AL_NOTIFY_TEMPLATE_COUNT] = {
    "approval_requested", "pre_deployment", "post_deployment", "rollback", "escalation", "other"
};

struct _al_notify_config_t {
    al_notify_endpoint_t *endpoints;
    size_t count;
    al_notify_retry_t retry;
    void **blocks;              // the pool
    size_t block_count;
    size_t block_capacity;
};

typedef struct {
    al_notify_config_t *self;
    const char *path;
    char *base_dir;             // absolute directory of the file (relative secret files)
    yaml_document_t *doc;
    uint8_t *walked;
    size_t node_count;
    char **errors;
    size_t error_count;
    size_t error_capacity;
    size_t errors_dropped;
    bool nomem;
} s_loader_t;

//  ---------------------------------------------------------------------------------
//  The pool

static void *
s_alloc (al_notify_config_t *self, size_t size)
{
    if (self->block_count == self->block_capacity) {
        size_t capacity = self->block_capacity? self->block_capacity * 2: 32;
        void **blocks = realloc (self->blocks, capacity * sizeof *blocks);
        if (!blocks)
            return NULL;
        self->blocks = blocks;
        self->block_capacity = capacity;
    }
    void *block = calloc (1, size? size: 1);
    if (block)
        self->blocks [self->block_count++] = block;
    return block;
}

static char *
s_strdup (s_loader_t *L, const char *text)
{
    size_t size = strlen (text) + 1;
    char *copy = s_alloc (L->self, size);
    if (copy)
        memcpy (copy, text, size);
    else
        L->nomem = true;
    return copy;
}

//  ---------------------------------------------------------------------------------
//  Errors

static void
s_add_error (s_loader_t *L, const char *text)
{
    if (L->error_count >= S_MAX_ERRORS) {
        L->errors_dropped++;
        return;
    }
    if (L->error_count == L->error_capacity) {
        size_t capacity = L->error_capacity? L->error_capacity * 2: 16;
        char **errors = realloc (L->errors, capacity * sizeof *errors);
        if (!errors) {
            L->nomem = true;
            return;
        }
        L->errors = errors;
        L->error_capacity = capacity;
    }
    char *copy = strdup (text);
    if (!copy) {
        L->nomem = true;
        return;
    }
    //  One error per line, whatever the file holds.
    for (char *p = copy; *p; p++)
        if ((unsigned char) *p < 0x20 || *p == 0x7f)
            *p = '?';
    L->errors [L->error_count++] = copy;
}

static void
s_error (s_loader_t *L, const yaml_node_t *node, const char *field, const char *format, ...)
    __attribute__ ((format (printf, 4, 5)));

static void
s_error (s_loader_t *L, const yaml_node_t *node, const char *field, const char *format, ...)
{
    char what [640];
    va_list args;
    va_start (args, format);
    vsnprintf (what, sizeof what, format, args);
    va_end (args);
    char text [1024];
    int at = node
        ? snprintf (text, sizeof text, "%s:%zu:%zu: ", L->path,
                    (size_t) node->start_mark.line + 1, (size_t) node->start_mark.column + 1)
        : snprintf (text, sizeof text, "%s: ", L->path);
    if (at < 0 || (size_t) at >= sizeof text)
        at = 0;
    if (field)
        snprintf (text + at, sizeof text - (size_t) at, "%s: %s", field, what);
    else
        snprintf (text + at, sizeof text - (size_t) at, "%s", what);
    s_add_error (L, text);
}

//  The errors, one per line, into error; a last line counts what did not fit.
static void
s_report_errors (s_loader_t *L, char *error, size_t error_size)
{
    if (!error || error_size == 0)
        return;
    error [0] = '\0';
    size_t used = 0;
    size_t total = L->error_count + L->errors_dropped;
    for (size_t i = 0; i < L->error_count; i++) {
        size_t length = strlen (L->errors [i]);
        char tail [64];
        snprintf (tail, sizeof tail, "(%zu more errors)", total - i - 1);
        size_t need = (used? 1: 0) + length + (i + 1 < total? 1 + strlen (tail): 0);
        if (used + need >= error_size) {
            snprintf (tail, sizeof tail, "(%zu more errors)", total - i);
            if (i == 0)
                snprintf (error, error_size, "%s", L->errors [0]);
            else
                snprintf (error + used, error_size - used, "\n%s", tail);
            return;
        }
        used += (size_t) snprintf (error + used, error_size - used, "%s%s", used? "\n": "", L->errors [i]);
    }
    if (L->errors_dropped)
        snprintf (error + used, error_size - used, "%s(%zu more errors)", used? "\n": "", L->errors_dropped);
}

//  parent.child / parent[index], cut at S_FIELD_SIZE - 1 (by hand: see al_services.c).
static void
s_field_join (char *out, const char *parent, const char *separator, const char *child)
{
    const char *parts [] = { parent, separator, child };
    size_t used = 0;
    for (size_t i = 0; i < 3; i++)
        for (const char *p = parts [i]; *p && used < S_FIELD_SIZE - 1; p++)
            out [used++] = *p;
    out [used] = '\0';
}

static void
s_field_index (char *out, const char *parent, size_t index)
{
    char suffix [32];
    snprintf (suffix, sizeof suffix, "[%zu]", index);
    s_field_join (out, parent, "", suffix);
}

//  ---------------------------------------------------------------------------------
//  YAML node access

static yaml_node_t *
s_node (s_loader_t *L, int index)
{
    return yaml_document_get_node (L->doc, index);
}

static const char *
s_scalar (const yaml_node_t *node)
{
    return node && node->type == YAML_SCALAR_NODE? (const char *) node->data.scalar.value: NULL;
}

static bool
s_is_null (const yaml_node_t *node)
{
    const char *value = s_scalar (node);
    if (!value || node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    return !*value || strcmp (value, "~") == 0 || strcmp (value, "null") == 0
        || strcmp (value, "Null") == 0 || strcmp (value, "NULL") == 0;
}

static const char *
s_kind_name (const yaml_node_t *node)
{
    switch (node->type) {
        case YAML_MAPPING_NODE: return "a mapping";
        case YAML_SEQUENCE_NODE: return "a list";
        default: return s_is_null (node)? "nothing": "a scalar";
    }
}

static bool
s_enter (s_loader_t *L, yaml_node_t *node, const char *field)
{
    size_t index = (size_t) (node - L->doc->nodes.start);
    assert (index < L->node_count);
    if (L->walked [index]) {
        s_error (L, node, field, "reuses the mapping or list anchored here; an alias may only "
                 "stand for a scalar");
        return false;
    }
    L->walked [index] = 1;
    return true;
}

static bool
s_want_mapping (s_loader_t *L, yaml_node_t *node, const char *field)
{
    if (node->type != YAML_MAPPING_NODE) {
        s_error (L, node, field, "expected a mapping, found %s", s_kind_name (node));
        return false;
    }
    if (node->data.mapping.pairs.top - node->data.mapping.pairs.start > S_MAX_ENTRIES) {
        s_error (L, node, field, "more than %d keys", S_MAX_ENTRIES);
        return false;
    }
    return s_enter (L, node, field);
}

static bool
s_want_list (s_loader_t *L, yaml_node_t *node, const char *field)
{
    if (node->type != YAML_SEQUENCE_NODE) {
        s_error (L, node, field, "expected a list, found %s", s_kind_name (node));
        return false;
    }
    if (node->data.sequence.items.top - node->data.sequence.items.start > S_MAX_ENTRIES) {
        s_error (L, node, field, "more than %d items", S_MAX_ENTRIES);
        return false;
    }
    return s_enter (L, node, field);
}

static size_t
s_list_length (const yaml_node_t *list)
{
    return (size_t) (list->data.sequence.items.top - list->data.sequence.items.start);
}

static yaml_node_t *
s_list_at (s_loader_t *L, const yaml_node_t *list, size_t index)
{
    return s_node (L, list->data.sequence.items.start [index]);
}

static bool
s_first_key (s_loader_t *L, yaml_node_t *mapping, yaml_node_pair_t *pair, const char *field)
{
    yaml_node_t *key = s_node (L, pair->key);
    const char *name = s_scalar (key);
    if (!name) {
        s_error (L, key, field, "keys must be scalars, found %s", s_kind_name (key));
        return false;
    }
    for (yaml_node_pair_t *prior = mapping->data.mapping.pairs.start; prior < pair; prior++) {
        const char *prior_name = s_scalar (s_node (L, prior->key));
        if (prior_name && strcmp (prior_name, name) == 0) {
            s_error (L, key, field, "duplicate key '%.64s' (first at line %zu)", name,
                     (size_t) s_node (L, prior->key)->start_mark.line + 1);
            return false;
        }
    }
    return true;
}

//  Check a mapping's keys against allowed and required (NULL-terminated; required MAY
//  be NULL). False if node is not a mapping that may be walked.
static bool
s_check_map (s_loader_t *L, yaml_node_t *node, const char *field,
             const char *const *allowed, const char *const *required)
{
    if (!s_want_mapping (L, node, field))
        return false;
    for (yaml_node_pair_t *pair = node->data.mapping.pairs.start; pair < node->data.mapping.pairs.top; pair++) {
        if (!s_first_key (L, node, pair, field))
            continue;
        const char *name = s_scalar (s_node (L, pair->key));
        bool known = false;
        for (size_t i = 0; allowed [i]; i++)
            if (strcmp (allowed [i], name) == 0)
                known = true;
        if (!known)
            s_error (L, s_node (L, pair->key), field, "unknown key '%.64s'", name);
    }
    for (size_t i = 0; required && required [i]; i++) {
        bool found = false;
        for (yaml_node_pair_t *pair = node->data.mapping.pairs.start; pair < node->data.mapping.pairs.top; pair++) {
            const char *name = s_scalar (s_node (L, pair->key));
            if (name && strcmp (name, required [i]) == 0)
                found = true;
        }
        if (!found)
            s_error (L, node, field, "missing key '%s'", required [i]);
    }
    return true;
}

static yaml_node_t *
s_get (s_loader_t *L, yaml_node_t *mapping, const char *key)
{
    for (yaml_node_pair_t *pair = mapping->data.mapping.pairs.start; pair < mapping->data.mapping.pairs.top; pair++) {
        const char *name = s_scalar (s_node (L, pair->key));
        if (name && strcmp (name, key) == 0)
            return s_node (L, pair->value);
    }
    return NULL;
}

//  ---------------------------------------------------------------------------------
//  Values

static const char *
s_string (s_loader_t *L, yaml_node_t *node, const char *field)
{
    const char *value = s_scalar (node);
    if (!value || s_is_null (node)) {
        s_error (L, node, field, "expected a string, found %s", s_kind_name (node));
        return NULL;
    }
    if (strlen (value) != node->data.scalar.length) {
        s_error (L, node, field, "contains a NUL byte");
        return NULL;
    }
    if (!*value) {
        s_error (L, node, field, "must not be empty");
        return NULL;
    }
    return value;
}

static bool
s_integer (s_loader_t *L, yaml_node_t *node, const char *field, long long min, long long max, long long *out)
{
    const char *value = s_scalar (node);
    bool ok = value && node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !s_is_null (node)
           && (value [0] == '-' || (value [0] >= '0' && value [0] <= '9'));
    long long number = 0;
    if (ok) {
        char *end = NULL;
        errno = 0;
        number = strtoll (value, &end, 10);
        ok = errno == 0 && *end == '\0';
    }
    if (!ok) {
        s_error (L, node, field, "expected an integer, found %s",
                 value && !s_is_null (node)? "a string": s_kind_name (node));
        return false;
    }
    if (number < min || number > max) {
        s_error (L, node, field, "%lld is out of range %lld..%lld", number, min, max);
        return false;
    }
    *out = number;
    return true;
}

static bool
s_is_name (const char *name, size_t max)
{
    size_t length = strlen (name);
    if (length == 0 || length > max || name [0] == '-')
        return false;
    for (const char *p = name; *p; p++)
        if (!(*p >= 'a' && *p <= 'z') && !(*p >= 'A' && *p <= 'Z') && !(*p >= '0' && *p <= '9')
        &&  *p != '_' && *p != '.' && *p != '-')
            return false;
    return true;
}

static bool
s_is_variable (const char *name)
{
    size_t length = strlen (name);
    if (length == 0 || length > 127 || (name [0] >= '0' && name [0] <= '9'))
        return false;
    for (const char *p = name; *p; p++)
        if (!(*p >= 'a' && *p <= 'z') && !(*p >= 'A' && *p <= 'Z') && !(*p >= '0' && *p <= '9') && *p != '_')
            return false;
    return true;
}

//  An http(s) URL with a host, no whitespace or control characters (curl's parser
//  decides the rest). Returns the pooled copy or NULL.
static const char *
s_url (s_loader_t *L, yaml_node_t *node, const char *field)
{
    const char *value = s_string (L, node, field);
    if (!value)
        return NULL;
    if (strlen (value) > S_MAX_URL) {
        s_error (L, node, field, "longer than %d bytes", S_MAX_URL);
        return NULL;
    }
    for (const char *p = value; *p; p++)
        if ((unsigned char) *p <= 0x20 || *p == 0x7f) {
            s_error (L, node, field, "contains whitespace or a control character");
            return NULL;
        }
    if (strncmp (value, "http://", 7) != 0 && strncmp (value, "https://", 8) != 0) {
        s_error (L, node, field, "must start with http:// or https://");
        return NULL;
    }
    CURLU *url = curl_url ();
    if (!url) {
        L->nomem = true;
        return NULL;
    }
    char *host = NULL;
    CURLUcode rc = curl_url_set (url, CURLUPART_URL, value, 0);
    if (rc == CURLUE_OK)
        rc = curl_url_get (url, CURLUPART_HOST, &host, 0);
    bool ok = rc == CURLUE_OK && host && *host;
    if (!ok)
        s_error (L, node, field, "not a valid URL: %s", rc != CURLUE_OK? curl_url_strerror (rc): "no host");
    curl_free (host);
    curl_url_cleanup (url);
    return ok? s_strdup (L, value): NULL;
}

static const char *
s_path (s_loader_t *L, yaml_node_t *node, const char *field)
{
    const char *value = s_string (L, node, field);
    if (!value)
        return NULL;
    if (strlen (value) > S_MAX_PATH_LENGTH) {
        s_error (L, node, field, "longer than %d bytes", S_MAX_PATH_LENGTH);
        return NULL;
    }
    if (value [0] == '/')
        return s_strdup (L, value);
    size_t size = strlen (L->base_dir) + 1 + strlen (value) + 1;
    char *result = s_alloc (L->self, size);
    if (!result) {
        L->nomem = true;
        return NULL;
    }
    snprintf (result, size, "%s/%s", L->base_dir, value);
    return result;
}

//  ---------------------------------------------------------------------------------
//  The schema

//  events: [names]: a bit per template; each name once.
static void
s_events (s_loader_t *L, al_notify_endpoint_t *endpoint, yaml_node_t *node, const char *field)
{
    if (!s_want_list (L, node, field))
        return;
    size_t count = s_list_length (node);
    if (count == 0) {
        s_error (L, node, field, "must name at least one template (leave the key out for all)");
        return;
    }
    uint32_t bits = 0;
    bool ok = true;
    for (size_t i = 0; i < count; i++) {
        char item [S_FIELD_SIZE];
        s_field_index (item, field, i);
        yaml_node_t *entry = s_list_at (L, node, i);
        const char *name = s_string (L, entry, item);
        if (!name) {
            ok = false;
            continue;
        }
        unsigned index = AL_NOTIFY_TEMPLATE_COUNT;
        for (unsigned t = 0; t < AL_NOTIFY_TEMPLATE_COUNT; t++)
            if (strcmp (s_templates [t], name) == 0)
                index = t;
        if (index == AL_NOTIFY_TEMPLATE_COUNT) {
            s_error (L, entry, item, "unknown template '%.64s' (known: approval_requested, pre_deployment, "
                     "post_deployment, rollback, escalation, other)", name);
            ok = false;
            continue;
        }
        if (bits & (1u << index)) {
            s_error (L, entry, item, "'%s' is given twice", name);
            ok = false;
        }
        bits |= 1u << index;
    }
    if (ok)
        endpoint->templates = bits;
}

static void
s_environments (s_loader_t *L, al_notify_endpoint_t *endpoint, yaml_node_t *node, const char *field)
{
    if (!s_want_list (L, node, field))
        return;
    size_t count = s_list_length (node);
    if (count == 0) {
        s_error (L, node, field, "must name at least one environment (leave the key out for all)");
        return;
    }
    uint32_t bits = 0;
    bool ok = true;
    for (size_t i = 0; i < count; i++) {
        char item [S_FIELD_SIZE];
        s_field_index (item, field, i);
        yaml_node_t *entry = s_list_at (L, node, i);
        const char *name = s_string (L, entry, item);
        Airlock__Environment env = name? al_environment_from_name (name): AIRLOCK__ENVIRONMENT__ENV_UNSPECIFIED;
        if (name && env == AIRLOCK__ENVIRONMENT__ENV_UNSPECIFIED)
            s_error (L, entry, item, "unknown environment '%.64s' (known: development, staging, production)", name);
        else
        if (name && (bits & (1u << env)))
            s_error (L, entry, item, "'%s' is given twice", name);
        if (!name || env == AIRLOCK__ENVIRONMENT__ENV_UNSPECIFIED || (bits & (1u << env))) {
            ok = false;
            continue;
        }
        bits |= 1u << env;
    }
    if (ok)
        endpoint->environments = bits;
}

static void
s_secret (s_loader_t *L, al_notify_endpoint_t *endpoint, yaml_node_t *node, const char *field)
{
    if (node->type == YAML_SCALAR_NODE) {
        //  The value is not quoted back: it may be the secret itself.
        s_error (L, node, field, "give a reference, { env: VARIABLE } or { file: PATH }; "
                 "a secret is never written in this file");
        return;
    }
    static const char *const allowed [] = { "env", "file", NULL };
    if (!s_check_map (L, node, field, allowed, NULL))
        return;
    yaml_node_t *env = s_get (L, node, "env");
    yaml_node_t *file = s_get (L, node, "file");
    if ((env != NULL) == (file != NULL)) {
        s_error (L, node, field, "give exactly one of env and file");
        return;
    }
    char sub [S_FIELD_SIZE];
    if (env) {
        s_field_join (sub, field, ".", "env");
        const char *name = s_string (L, env, sub);
        if (name && !s_is_variable (name))
            s_error (L, env, sub, "'%.64s' is not an environment variable name", name);
        else
        if (name)
            endpoint->secret_env = s_strdup (L, name);
    }
    else {
        s_field_join (sub, field, ".", "file");
        endpoint->secret_file = s_path (L, file, sub);
    }
}

static void
s_endpoint (s_loader_t *L, al_notify_endpoint_t *endpoint, yaml_node_t *node, const char *field)
{
    static const char *const allowed [] = { "name", "kind", "url", "events", "environments", "secret",
                                            "timeout_ms", NULL };
    static const char *const required [] = { "name", "kind", "url", NULL };
    endpoint->templates = AL_NOTIFY_ALL_TEMPLATES;
    endpoint->environments = 0xe;       // development, staging, production
    endpoint->timeout_ms = AL_NOTIFY_DEFAULT_TIMEOUT_MS;
    if (!s_check_map (L, node, field, allowed, required))
        return;
    char sub [S_FIELD_SIZE];
    yaml_node_t *value;
    if ((value = s_get (L, node, "name"))) {
        s_field_join (sub, field, ".", "name");
        const char *name = s_string (L, value, sub);
        if (name && !s_is_name (name, 64))
            s_error (L, value, sub, "'%.64s' is not 1 to 64 of [A-Za-z0-9_.-] (not starting with '-')", name);
        else
        if (name)
            endpoint->name = s_strdup (L, name);
    }
    if ((value = s_get (L, node, "kind"))) {
        s_field_join (sub, field, ".", "kind");
        const char *kind = s_string (L, value, sub);
        if (kind && strcmp (kind, "slack") == 0)
            endpoint->kind = AL_NOTIFY_SLACK;
        else
        if (kind && strcmp (kind, "webhook") == 0)
            endpoint->kind = AL_NOTIFY_WEBHOOK;
        else
        if (kind && strcmp (kind, "cloudevents") == 0)
            endpoint->kind = AL_NOTIFY_CLOUDEVENTS;
        else
        if (kind)
            s_error (L, value, sub, "unknown kind '%.64s' (known: slack, webhook, cloudevents)", kind);
    }
    if ((value = s_get (L, node, "url"))) {
        s_field_join (sub, field, ".", "url");
        endpoint->url = s_url (L, value, sub);
    }
    if ((value = s_get (L, node, "events"))) {
        s_field_join (sub, field, ".", "events");
        s_events (L, endpoint, value, sub);
    }
    if ((value = s_get (L, node, "environments"))) {
        s_field_join (sub, field, ".", "environments");
        s_environments (L, endpoint, value, sub);
    }
    if ((value = s_get (L, node, "secret"))) {
        s_field_join (sub, field, ".", "secret");
        s_secret (L, endpoint, value, sub);
    }
    if ((value = s_get (L, node, "timeout_ms"))) {
        s_field_join (sub, field, ".", "timeout_ms");
        long long number;
        if (s_integer (L, value, sub, 100, 300000, &number))
            endpoint->timeout_ms = (int) number;
    }
    if (endpoint->kind == AL_NOTIFY_WEBHOOK && !s_get (L, node, "secret"))
        s_error (L, node, field, "a webhook endpoint needs a secret (its deliveries are signed): "
                 "secret: { env: VARIABLE } or { file: PATH }");
}

static void
s_retry (s_loader_t *L, yaml_node_t *node)
{
    static const char *const allowed [] = { "initial_ms", "max_ms", "give_up_after_ms", NULL };
    if (!s_check_map (L, node, "retry", allowed, NULL))
        return;
    al_notify_retry_t *retry = &L->self->retry;
    long long number;
    yaml_node_t *value;
    if ((value = s_get (L, node, "initial_ms")) && s_integer (L, value, "retry.initial_ms", 10, 3600000, &number))
        retry->initial_ms = (int) number;
    if ((value = s_get (L, node, "max_ms")) && s_integer (L, value, "retry.max_ms", 10, 86400000, &number))
        retry->max_ms = (int) number;
    if ((value = s_get (L, node, "give_up_after_ms"))
    &&  s_integer (L, value, "retry.give_up_after_ms", 1000, 30LL * 86400000, &number))
        retry->give_up_after_ms = number;
    if (retry->max_ms < retry->initial_ms)
        s_error (L, node, "retry", "max_ms (%d) is below initial_ms (%d)", retry->max_ms, retry->initial_ms);
}

static void
s_root (s_loader_t *L, yaml_node_t *root)
{
    static const char *const allowed [] = { "version", "endpoints", "retry", NULL };
    static const char *const required [] = { "version", "endpoints", NULL };
    if (!s_check_map (L, root, NULL, allowed, required))
        return;
    yaml_node_t *version = s_get (L, root, "version");
    long long number;
    if (version && s_integer (L, version, "version", 1, 1000000, &number) && number != 1)
        s_error (L, version, "version", "unsupported version %lld (this airlock reads 1)", number);
    yaml_node_t *retry = s_get (L, root, "retry");
    if (retry)
        s_retry (L, retry);
    yaml_node_t *endpoints = s_get (L, root, "endpoints");
    if (!endpoints || !s_want_list (L, endpoints, "endpoints"))
        return;
    size_t count = s_list_length (endpoints);
    if (count > S_MAX_ENDPOINTS) {
        s_error (L, endpoints, "endpoints", "more than %d endpoints", S_MAX_ENDPOINTS);
        return;
    }
    L->self->endpoints = s_alloc (L->self, count * sizeof (al_notify_endpoint_t));
    if (!L->self->endpoints) {
        L->nomem = true;
        return;
    }
    for (size_t i = 0; i < count; i++) {
        char item [S_FIELD_SIZE];
        s_field_index (item, "endpoints", i);
        yaml_node_t *node = s_list_at (L, endpoints, i);
        al_notify_endpoint_t *endpoint = &L->self->endpoints [L->self->count++];
        s_endpoint (L, endpoint, node, item);
        for (size_t j = 0; endpoint->name && j + 1 < L->self->count; j++)
            if (L->self->endpoints [j].name && strcmp (L->self->endpoints [j].name, endpoint->name) == 0)
                s_error (L, node, item, "endpoint name '%s' is also used by endpoints[%zu]", endpoint->name, j);
    }
}

static unsigned char *
s_read_file (s_loader_t *L, size_t *size_p)
{
    unsigned char *data = NULL;
    FILE *file = fopen (L->path, "rb");
    if (!file) {
        s_error (L, NULL, NULL, "cannot open: %s", strerror (errno));
        return NULL;
    }
    data = malloc (S_MAX_FILE_SIZE + 1);
    if (!data) {
        L->nomem = true;
        goto cleanup;
    }
    size_t size = fread (data, 1, S_MAX_FILE_SIZE + 1, file);
    if (ferror (file)) {
        s_error (L, NULL, NULL, "cannot read: %s", strerror (errno));
        free (data);
        data = NULL;
    }
    else
    if (size > S_MAX_FILE_SIZE) {
        s_error (L, NULL, NULL, "larger than %u bytes", S_MAX_FILE_SIZE);
        free (data);
        data = NULL;
    }
    else
        *size_p = size;
cleanup:
    fclose (file);
    return data;
}

static void
s_parse_error (s_loader_t *L, yaml_parser_t *parser)
{
    char text [1024];
    snprintf (text, sizeof text, "%s:%zu:%zu: %s%s%s", L->path,
              (size_t) parser->problem_mark.line + 1, (size_t) parser->problem_mark.column + 1,
              parser->problem? parser->problem: "invalid YAML",
              parser->context? " ": "", parser->context? parser->context: "");
    s_add_error (L, text);
}

static void
s_defaults (al_notify_config_t *self)
{
    self->retry.initial_ms = AL_NOTIFY_DEFAULT_INITIAL_MS;
    self->retry.max_ms = AL_NOTIFY_DEFAULT_MAX_MS;
    self->retry.give_up_after_ms = AL_NOTIFY_DEFAULT_GIVE_UP_MS;
}

al_notify_config_t *
al_notify_config_new_empty (void)
{
    al_notify_config_t *self = calloc (1, sizeof *self);
    if (self)
        s_defaults (self);
    return self;
}

al_notify_config_t *
al_notify_config_load (const char *path, char *error, size_t error_size)
{
    assert (path);
    s_loader_t loader = { .path = path };
    s_loader_t *L = &loader;
    unsigned char *data = NULL;
    bool parser_ready = false, doc_ready = false;
    yaml_parser_t parser;
    yaml_document_t doc;

    L->self = al_notify_config_new_empty ();
    if (!L->self) {
        L->nomem = true;
        goto cleanup;
    }
    size_t size = 0;
    if (!(data = s_read_file (L, &size)))
        goto cleanup;
    char *absolute = realpath (path, NULL);
    if (!absolute) {
        s_error (L, NULL, NULL, "cannot resolve: %s", strerror (errno));
        goto cleanup;
    }
    char *slash = strrchr (absolute, '/');
    assert (slash);
    if (slash == absolute)
        slash [1] = '\0';
    else
        *slash = '\0';
    L->base_dir = absolute;

    if (!yaml_parser_initialize (&parser)) {
        L->nomem = true;
        goto cleanup;
    }
    parser_ready = true;
    yaml_parser_set_input_string (&parser, data, size);
    if (!yaml_parser_load (&parser, &doc)) {
        s_parse_error (L, &parser);
        goto cleanup;
    }
    doc_ready = true;
    L->doc = &doc;
    yaml_node_t *root = yaml_document_get_root_node (&doc);
    if (!root) {
        s_error (L, NULL, NULL, "empty file: version and endpoints are required");
        goto cleanup;
    }
    L->node_count = (size_t) (doc.nodes.top - doc.nodes.start);
    L->walked = calloc (L->node_count, 1);
    if (!L->walked) {
        L->nomem = true;
        goto cleanup;
    }
    s_root (L, root);

    yaml_document_t next;
    if (!yaml_parser_load (&parser, &next))
        s_parse_error (L, &parser);
    else {
        yaml_node_t *next_root = yaml_document_get_root_node (&next);
        if (next_root)
            s_error (L, next_root, NULL, "a second YAML document; notifications.yaml holds one");
        yaml_document_delete (&next);
    }

cleanup:
    if (L->nomem)
        s_error (L, NULL, NULL, "out of memory");
    if (L->error_count || L->errors_dropped) {
        s_report_errors (L, error, error_size);
        al_notify_config_destroy (&L->self);
    }
    for (size_t i = 0; i < L->error_count; i++)
        free (L->errors [i]);
    free (L->errors);
    free (L->walked);
    free (L->base_dir);
    if (doc_ready)
        yaml_document_delete (&doc);
    if (parser_ready)
        yaml_parser_delete (&parser);
    free (data);
    return L->self;
}

void
al_notify_config_destroy (al_notify_config_t **self_p)
{
    assert (self_p);
    al_notify_config_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->block_count; i++)
        free (self->blocks [i]);
    free (self->blocks);
    free (self);
    *self_p = NULL;
}

size_t
al_notify_config_count (const al_notify_config_t *self)
{
    assert (self);
    return self->count;
}

const al_notify_endpoint_t *
al_notify_config_at (const al_notify_config_t *self, size_t index)
{
    assert (self);
    return index < self->count? &self->endpoints [index]: NULL;
}

const al_notify_endpoint_t *
al_notify_config_find (const al_notify_config_t *self, const char *name)
{
    assert (self);
    for (size_t i = 0; name && i < self->count; i++)
        if (strcmp (self->endpoints [i].name, name) == 0)
            return &self->endpoints [i];
    return NULL;
}

const al_notify_retry_t *
al_notify_config_retry (const al_notify_config_t *self)
{
    assert (self);
    return &self->retry;
}

const char *
al_notify_kind_name (al_notify_kind_t kind)
{
    switch (kind) {
        case AL_NOTIFY_SLACK: return "slack";
        case AL_NOTIFY_WEBHOOK: return "webhook";
        case AL_NOTIFY_CLOUDEVENTS: return "cloudevents";
    }
    return "unknown";
}

unsigned
al_notify_template_index (const char *template_name)
{
    for (unsigned t = 0; template_name && t + 1 < AL_NOTIFY_TEMPLATE_COUNT; t++)
        if (strcmp (s_templates [t], template_name) == 0)
            return t;
    return AL_NOTIFY_TEMPLATE_COUNT - 1;
}

const char *
al_notify_template_name (unsigned index)
{
    assert (index < AL_NOTIFY_TEMPLATE_COUNT);
    return s_templates [index];
}

bool
al_notify_endpoint_wants (const al_notify_endpoint_t *endpoint, const char *template_name, int environment)
{
    assert (endpoint);
    if (!(endpoint->templates & (1u << al_notify_template_index (template_name))))
        return false;
    if (environment <= 0 || environment > 31)
        return true;
    return (endpoint->environments & (1u << environment)) != 0;
}

int
al_notify_endpoint_secret (const al_notify_endpoint_t *endpoint, char **secret_p, char *error, size_t error_size)
{
    assert (endpoint && secret_p);
    *secret_p = NULL;
    if (endpoint->secret_env) {
        const char *value = getenv (endpoint->secret_env);
        if (!value || !*value) {
            snprintf (error, error_size, "endpoint %s: secret: environment variable %s is not set or empty",
                      endpoint->name, endpoint->secret_env);
            return -1;
        }
        *secret_p = strdup (value);
        assert (*secret_p);
        return 0;
    }
    if (!endpoint->secret_file)
        return 0;
    FILE *file = fopen (endpoint->secret_file, "rb");
    if (!file) {
        snprintf (error, error_size, "endpoint %s: secret: %s: %s", endpoint->name, endpoint->secret_file,
                  strerror (errno));
        return -1;
    }
    char *secret = calloc (1, S_MAX_SECRET_SIZE + 2);
    assert (secret);
    size_t size = fread (secret, 1, S_MAX_SECRET_SIZE + 1, file);
    fclose (file);
    while (size > 0 && (secret [size - 1] == '\n' || secret [size - 1] == '\r'))
        secret [--size] = '\0';
    const char *problem = size == 0? "is empty"
                        : size > S_MAX_SECRET_SIZE? "is larger than 4096 bytes"
                        : strlen (secret) != size? "contains a NUL byte": NULL;
    if (problem) {
        snprintf (error, error_size, "endpoint %s: secret: %s %s", endpoint->name, endpoint->secret_file, problem);
        sodium_memzero (secret, S_MAX_SECRET_SIZE + 2);
        free (secret);
        return -1;
    }
    *secret_p = secret;
    return 0;
}
