/*  al_notify_config.c: load and validate notifications.yaml.

    The same strict walk as deploy/al_services.c, with base/al_yaml: the file is read
    whole (at most S_MAX_FILE_SIZE bytes), parsed into a libyaml document and walked
    against the fixed schema of docs/notifications.md. Every problem is recorded as
    "path:line:col: field: what is wrong" and the walk goes on, so one load reports
    every error; a mapping or list is walked at most once (a second visit, through an
    alias, is an error). A configuration is returned only when there was no error.

    Secrets are references only: `secret: { env: NAME }` or `secret: { file: PATH }`.
    A scalar there is refused without echoing it, so a secret pasted into the file does
    not end up in a log line. Everything a loaded configuration points to is allocated
    from its own pool, freed together by destroy.
*/
#include "agents/al_notify_config.h"
#include "base/al_yaml.h"
#include "proto/al_codec.h"
#include <assert.h>
#include <curl/curl.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define S_MAX_FILE_SIZE     (1024u * 1024)
#define S_MAX_ENDPOINTS     64
#define S_MAX_URL           2048
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
    al_yaml_t *yaml;            // the document, the errors
    al_notify_config_t *self;
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
        al_yaml_out_of_memory (L->yaml);
    return copy;
}

//  ---------------------------------------------------------------------------------
//  Values

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
    const char *value = al_yaml_string (L->yaml, node, field, false);
    if (!value)
        return NULL;
    if (strlen (value) > S_MAX_URL) {
        al_yaml_error (L->yaml, node, field, "longer than %d bytes", S_MAX_URL);
        return NULL;
    }
    for (const char *p = value; *p; p++)
        if ((unsigned char) *p <= 0x20 || *p == 0x7f) {
            al_yaml_error (L->yaml, node, field, "contains whitespace or a control character");
            return NULL;
        }
    if (strncmp (value, "http://", 7) != 0 && strncmp (value, "https://", 8) != 0) {
        al_yaml_error (L->yaml, node, field, "must start with http:// or https://");
        return NULL;
    }
    CURLU *url = curl_url ();
    if (!url) {
        al_yaml_out_of_memory (L->yaml);
        return NULL;
    }
    char *host = NULL;
    CURLUcode rc = curl_url_set (url, CURLUPART_URL, value, 0);
    if (rc == CURLUE_OK)
        rc = curl_url_get (url, CURLUPART_HOST, &host, 0);
    bool ok = rc == CURLUE_OK && host && *host;
    if (!ok)
        al_yaml_error (L->yaml, node, field, "not a valid URL: %s",
                       rc != CURLUE_OK? curl_url_strerror (rc): "no host");
    curl_free (host);
    curl_url_cleanup (url);
    return ok? s_strdup (L, value): NULL;
}

//  A path, made absolute against the file's directory; pooled.
static const char *
s_path (s_loader_t *L, yaml_node_t *node, const char *field)
{
    char *path = al_yaml_path (L->yaml, node, field);
    const char *copy = path? s_strdup (L, path): NULL;
    free (path);
    return copy;
}

//  ---------------------------------------------------------------------------------
//  The schema

//  A list of names from a fixed set (names [i], NULL for none), as a bit per name: at
//  least one, each once. *bits_p is set only when every item is known ("events" and
//  "environments" of an endpoint).
static void
s_name_set (s_loader_t *L, yaml_node_t *node, const char *field, const char *what,
            const char *const *names, unsigned count, const char *known, uint32_t *bits_p)
{
    if (!al_yaml_want_list (L->yaml, node, field))
        return;
    size_t length = al_yaml_list_length (node);
    if (length == 0) {
        al_yaml_error (L->yaml, node, field, "must name at least one %s (leave the key out for all)", what);
        return;
    }
    uint32_t bits = 0;
    bool ok = true;
    for (size_t i = 0; i < length; i++) {
        char item [AL_YAML_FIELD_SIZE];
        al_yaml_field_index (item, field, i);
        yaml_node_t *entry = al_yaml_list_at (L->yaml, node, i);
        const char *name = al_yaml_string (L->yaml, entry, item, false);
        if (!name) {
            ok = false;
            continue;
        }
        unsigned index = count;
        for (unsigned n = 0; n < count; n++)
            if (names [n] && strcmp (names [n], name) == 0)
                index = n;
        if (index == count) {
            al_yaml_error (L->yaml, entry, item, "unknown %s '%.64s' (known: %s)", what, name, known);
            ok = false;
            continue;
        }
        if (bits & (1u << index)) {
            al_yaml_error (L->yaml, entry, item, "'%s' is given twice", name);
            ok = false;
        }
        bits |= 1u << index;
    }
    if (ok)
        *bits_p = bits;
}

static void
s_secret (s_loader_t *L, al_notify_endpoint_t *endpoint, yaml_node_t *node, const char *field)
{
    if (node->type == YAML_SCALAR_NODE) {
        //  The value is not quoted back: it may be the secret itself.
        al_yaml_error (L->yaml, node, field, "give a reference, { env: VARIABLE } or { file: PATH }; "
                       "a secret is never written in this file");
        return;
    }
    static const char *const allowed [] = { "env", "file", NULL };
    if (!al_yaml_check_map (L->yaml, node, field, allowed, NULL))
        return;
    yaml_node_t *env = al_yaml_get (L->yaml, node, "env");
    yaml_node_t *file = al_yaml_get (L->yaml, node, "file");
    if ((env != NULL) == (file != NULL)) {
        al_yaml_error (L->yaml, node, field, "give exactly one of env and file");
        return;
    }
    char sub [AL_YAML_FIELD_SIZE];
    if (env) {
        al_yaml_field_key (sub, field, "env");
        const char *name = al_yaml_string (L->yaml, env, sub, false);
        if (name && !s_is_variable (name))
            al_yaml_error (L->yaml, env, sub, "'%.64s' is not an environment variable name", name);
        else
        if (name)
            endpoint->secret_env = s_strdup (L, name);
    }
    else {
        al_yaml_field_key (sub, field, "file");
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
    if (!al_yaml_check_map (L->yaml, node, field, allowed, required))
        return;
    char sub [AL_YAML_FIELD_SIZE];
    yaml_node_t *value;
    if ((value = al_yaml_get (L->yaml, node, "name"))) {
        al_yaml_field_key (sub, field, "name");
        const char *name = al_yaml_string (L->yaml, value, sub, false);
        if (name && !s_is_name (name, 64))
            al_yaml_error (L->yaml, value, sub, "'%.64s' is not 1 to 64 of [A-Za-z0-9_.-] (not "
                           "starting with '-')", name);
        else
        if (name)
            endpoint->name = s_strdup (L, name);
    }
    if ((value = al_yaml_get (L->yaml, node, "kind"))) {
        al_yaml_field_key (sub, field, "kind");
        const char *kind = al_yaml_string (L->yaml, value, sub, false);
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
            al_yaml_error (L->yaml, value, sub, "unknown kind '%.64s' (known: slack, webhook, "
                           "cloudevents)", kind);
    }
    if ((value = al_yaml_get (L->yaml, node, "url"))) {
        al_yaml_field_key (sub, field, "url");
        endpoint->url = s_url (L, value, sub);
    }
    if ((value = al_yaml_get (L->yaml, node, "events"))) {
        al_yaml_field_key (sub, field, "events");
        s_name_set (L, value, sub, "template", s_templates, AL_NOTIFY_TEMPLATE_COUNT, "approval_requested, "
                    "pre_deployment, post_deployment, rollback, escalation, other", &endpoint->templates);
    }
    if ((value = al_yaml_get (L->yaml, node, "environments"))) {
        al_yaml_field_key (sub, field, "environments");
        //  Bit i: the environment whose enum value is i.
        const char *environments [] = { NULL, al_environment_name (AIRLOCK__ENVIRONMENT__ENV_DEVELOPMENT),
                                        al_environment_name (AIRLOCK__ENVIRONMENT__ENV_STAGING),
                                        al_environment_name (AIRLOCK__ENVIRONMENT__ENV_PRODUCTION) };
        s_name_set (L, value, sub, "environment", environments, 4, "development, staging, production",
                    &endpoint->environments);
    }
    if ((value = al_yaml_get (L->yaml, node, "secret"))) {
        al_yaml_field_key (sub, field, "secret");
        s_secret (L, endpoint, value, sub);
    }
    if ((value = al_yaml_get (L->yaml, node, "timeout_ms"))) {
        al_yaml_field_key (sub, field, "timeout_ms");
        long long number;
        if (al_yaml_integer (L->yaml, value, sub, 100, 300000, &number))
            endpoint->timeout_ms = (int) number;
    }
    if (endpoint->kind == AL_NOTIFY_WEBHOOK && !al_yaml_get (L->yaml, node, "secret"))
        al_yaml_error (L->yaml, node, field, "a webhook endpoint needs a secret (its deliveries are signed): "
                       "secret: { env: VARIABLE } or { file: PATH }");
}

static void
s_retry (s_loader_t *L, yaml_node_t *node)
{
    static const char *const allowed [] = { "initial_ms", "max_ms", "give_up_after_ms", NULL };
    if (!al_yaml_check_map (L->yaml, node, "retry", allowed, NULL))
        return;
    al_notify_retry_t *retry = &L->self->retry;
    long long number;
    yaml_node_t *value;
    if ((value = al_yaml_get (L->yaml, node, "initial_ms"))
    &&  al_yaml_integer (L->yaml, value, "retry.initial_ms", 10, 3600000, &number))
        retry->initial_ms = (int) number;
    if ((value = al_yaml_get (L->yaml, node, "max_ms"))
    &&  al_yaml_integer (L->yaml, value, "retry.max_ms", 10, 86400000, &number))
        retry->max_ms = (int) number;
    if ((value = al_yaml_get (L->yaml, node, "give_up_after_ms"))
    &&  al_yaml_integer (L->yaml, value, "retry.give_up_after_ms", 1000, 30LL * 86400000, &number))
        retry->give_up_after_ms = number;
    if (retry->max_ms < retry->initial_ms)
        al_yaml_error (L->yaml, node, "retry", "max_ms (%d) is below initial_ms (%d)", retry->max_ms,
                       retry->initial_ms);
}

static void
s_root (s_loader_t *L, yaml_node_t *root)
{
    static const char *const allowed [] = { "version", "endpoints", "retry", NULL };
    static const char *const required [] = { "version", "endpoints", NULL };
    if (!al_yaml_check_map (L->yaml, root, NULL, allowed, required))
        return;
    yaml_node_t *version = al_yaml_get (L->yaml, root, "version");
    long long number;
    if (version && al_yaml_integer (L->yaml, version, "version", 1, 1000000, &number) && number != 1)
        al_yaml_error (L->yaml, version, "version", "unsupported version %lld (this airlock reads 1)",
                       number);
    yaml_node_t *retry = al_yaml_get (L->yaml, root, "retry");
    if (retry)
        s_retry (L, retry);
    yaml_node_t *endpoints = al_yaml_get (L->yaml, root, "endpoints");
    if (!endpoints || !al_yaml_want_list (L->yaml, endpoints, "endpoints"))
        return;
    size_t count = al_yaml_list_length (endpoints);
    if (count > S_MAX_ENDPOINTS) {
        al_yaml_error (L->yaml, endpoints, "endpoints", "more than %d endpoints", S_MAX_ENDPOINTS);
        return;
    }
    L->self->endpoints = s_alloc (L->self, count * sizeof (al_notify_endpoint_t));
    if (!L->self->endpoints) {
        al_yaml_out_of_memory (L->yaml);
        return;
    }
    for (size_t i = 0; i < count; i++) {
        char item [AL_YAML_FIELD_SIZE];
        al_yaml_field_index (item, "endpoints", i);
        yaml_node_t *node = al_yaml_list_at (L->yaml, endpoints, i);
        al_notify_endpoint_t *endpoint = &L->self->endpoints [L->self->count++];
        s_endpoint (L, endpoint, node, item);
        for (size_t j = 0; endpoint->name && j + 1 < L->self->count; j++)
            if (L->self->endpoints [j].name && strcmp (L->self->endpoints [j].name, endpoint->name) == 0)
                al_yaml_error (L->yaml, node, item, "endpoint name '%s' is also used by endpoints[%zu]",
                               endpoint->name, j);
    }
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
    s_loader_t loader = { .yaml = al_yaml_new (path, error, error_size) };
    s_loader_t *L = &loader;
    if (!L->yaml)
        return NULL;
    al_yaml_set_key_quote_max (L->yaml, 64);
    L->self = al_notify_config_new_empty ();
    if (!L->self)
        al_yaml_out_of_memory (L->yaml);
    else {
        yaml_node_t *root = al_yaml_load (L->yaml, S_MAX_FILE_SIZE,
                                          "empty file: version and endpoints are required");
        if (root) {
            s_root (L, root);
            al_yaml_end (L->yaml, "notifications.yaml");
        }
    }
    if (al_yaml_report (L->yaml, error, error_size))
        al_notify_config_destroy (&L->self);
    al_yaml_destroy (&L->yaml);
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
