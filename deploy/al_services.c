/*  al_services.c: load and validate services.yaml.

    The file is read whole (at most S_MAX_FILE_SIZE bytes), parsed into a libyaml
    document and walked against the fixed schema of docs/drivers.md. Every problem is
    recorded as "path:line:col: field.path: what is wrong" (libyaml marks are 0-based;
    messages are 1-based) and the walk goes on, so one load reports every error of the
    file; S_MAX_ERRORS bounds what hostile input can make us collect. A set is returned
    only when there was no error.

    Aliases: the document API resolves an alias to the node it names, so a walker that
    follows them can be made to visit one list millions of times (the "billion laughs").
    A mapping or list is therefore walked at most once; a second visit is an error.
    Scalars may be aliased freely.

    Everything a loaded set points to is allocated from its own pool (blocks freed
    together by destroy), so an al_service_t is plain data with borrowed pointers.
    Immutable after load; no global state.
*/
#include "deploy/al_services.h"
#include "proto/al_codec.h"
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define S_MAX_FILE_SIZE     (4u * 1024 * 1024)
#define S_MAX_ERRORS        100
#define S_MAX_ENTRIES       1000    // keys of a mapping, items of a list: keeps the
                                    // duplicate checks (quadratic) cheap on any input
#define S_MAX_PATH_LENGTH   4096
#define S_MAX_HTTP_PATH     1024
#define S_FIELD_SIZE        256     // a field path in a message ("services.demo.canary.steps")

//  Ranges of the numbers (inclusive).
#define S_MAX_INSTANCES     1000
#define S_MAX_DAY_MS        86400000
#define S_MAX_HOUR_MS       3600000
#define S_MAX_SOAK_MS       (7 * S_MAX_DAY_MS)
#define S_MAX_BODY_TEXT     1024    // qa smoke body_contains

static const unsigned s_default_canary_steps [] = { 5, 25, 50, 100 };

struct _al_services_t {
    char *path;
    al_service_t *services;
    size_t count;
    void **blocks;              // the pool: everything the services point to
    size_t block_count;
    size_t block_capacity;
};

typedef struct {
    al_services_t *self;
    const char *path;           // as given, for messages
    char *base_dir;             // absolute directory of the file
    yaml_document_t *doc;
    uint8_t *walked;            // per node: a mapping or list already walked
    size_t node_count;
    char **errors;
    size_t error_count;
    size_t error_capacity;
    size_t errors_dropped;      // beyond S_MAX_ERRORS
    bool nomem;
} s_loader_t;

//  The keys of a service and which driver owns each.
typedef enum { S_BOTH, S_PROCESS, S_EXEC } s_owner_t;

typedef struct {
    const char *name;
    s_owner_t owner;
} s_service_key_t;

static const s_service_key_t s_service_keys [] = {
    { "driver", S_BOTH }, { "instances", S_BOTH }, { "strategy", S_BOTH },
    { "rolling", S_BOTH }, { "canary", S_BOTH }, { "soak_ms", S_BOTH },
    { "probe_interval_ms", S_BOTH }, { "ready_timeout_ms", S_BOTH },
    { "health_failures", S_BOTH }, { "cost_per_instance_usd_month", S_BOTH },
    { "database", S_BOTH }, { "migrations", S_BOTH }, { "data_rollback", S_BOTH },
    { "metrics_path", S_BOTH }, { "signals", S_BOTH }, { "host", S_BOTH }, { "liveness_path", S_BOTH },
    { "readiness_path", S_BOTH }, { "stop_timeout_ms", S_BOTH },
    { "probe_timeout_ms", S_BOTH }, { "secrets", S_BOTH },
    { "command", S_PROCESS }, { "env", S_PROCESS }, { "start_timeout_ms", S_PROCESS },
    { "steps", S_EXEC }, { "endpoint", S_EXEC }, { "step_timeout_ms", S_EXEC },
    { "max_output", S_EXEC },
    { "qa", S_BOTH },
};
#define S_SERVICE_KEY_COUNT (sizeof s_service_keys / sizeof s_service_keys [0])

//  ---------------------------------------------------------------------------------
//  The pool

//  Zeroed memory owned by self; NULL when out of memory.
static void *
s_alloc (al_services_t *self, size_t size)
{
    if (self->block_count == self->block_capacity) {
        size_t capacity = self->block_capacity ? self->block_capacity * 2 : 64;
        void **blocks = realloc (self->blocks, capacity * sizeof *blocks);
        if (!blocks)
            return NULL;
        self->blocks = blocks;
        self->block_capacity = capacity;
    }
    void *block = calloc (1, size ? size : 1);
    if (block)
        self->blocks [self->block_count++] = block;
    return block;
}

static char *
s_strdup (al_services_t *self, const char *text)
{
    size_t size = strlen (text) + 1;
    char *copy = s_alloc (self, size);
    if (copy)
        memcpy (copy, text, size);
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
        size_t capacity = L->error_capacity ? L->error_capacity * 2 : 16;
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
    //  Names and values from the file are quoted in messages: keep one error per line.
    for (char *p = copy; *p; p++)
        if ((unsigned char) *p < 0x20 || *p == 0x7f)
            *p = '?';
    L->errors [L->error_count++] = copy;
}

//  "path:line:col: field: what" at node (field MAY be NULL; node NULL: "path: what").
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

//  Join the errors, one per line, into error; if they do not all fit, end with a line
//  saying how many were left out.
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
        //  Room for this line, and for the tail line if more are to come.
        size_t need = (used ? 1 : 0) + length + (i + 1 < total ? 1 + strlen (tail) : 0);
        if (used + need >= error_size) {
            snprintf (tail, sizeof tail, "(%zu more errors)", total - i);
            if (i == 0)
                snprintf (error, error_size, "%s", L->errors [0]);
            else
                snprintf (error + used, error_size - used, "\n%s", tail);
            return;
        }
        used += (size_t) snprintf (error + used, error_size - used, "%s%s", used ? "\n" : "",
                                   L->errors [i]);
    }
    if (L->errors_dropped)
        snprintf (error + used, error_size - used, "%s(%zu more errors)", used ? "\n" : "",
                  L->errors_dropped);
}

//  parent.child and parent[index] into out (S_FIELD_SIZE bytes): the path of a value
//  in messages. A path cut short still names the service and the section. (Copied by
//  hand: snprintf here makes gcc's truncation warning fire for every inlined caller.)
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
s_field_key (char *out, const char *parent, const char *child)
{
    s_field_join (out, parent, ".", child);
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
    return node && node->type == YAML_SCALAR_NODE ? (const char *) node->data.scalar.value : NULL;
}

//  A plain scalar that YAML reads as null: "key:" with no value, "~", "null".
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
        default: return s_is_null (node) ? "nothing" : "a scalar";
    }
}

//  Mark a mapping or list walked; false (with an error) if it already was: it is the
//  target of an alias seen before.
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

//  Report pairs of mapping whose key is not a scalar or was given before. Returns true
//  when pair is the first occurrence of a scalar key (the one that counts).
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
            s_error (L, key, field, "duplicate key '%s' (first at line %zu)", name,
                     (size_t) s_node (L, prior->key)->start_mark.line + 1);
            return false;
        }
    }
    return true;
}

//  Check a mapping's keys against allowed (NULL-terminated) and required (MAY be
//  NULL). Returns false if node is not a mapping that may be walked.
static bool
s_check_map (s_loader_t *L, yaml_node_t *node, const char *field,
             const char *const *allowed, const char *const *required)
{
    if (!s_want_mapping (L, node, field))
        return false;
    for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
         pair < node->data.mapping.pairs.top; pair++) {
        if (!s_first_key (L, node, pair, field))
            continue;
        const char *name = s_scalar (s_node (L, pair->key));
        bool known = false;
        for (size_t i = 0; allowed [i]; i++)
            if (strcmp (allowed [i], name) == 0)
                known = true;
        if (!known)
            s_error (L, s_node (L, pair->key), field, "unknown key '%s'", name);
    }
    for (size_t i = 0; required && required [i]; i++) {
        bool found = false;
        for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
             pair < node->data.mapping.pairs.top; pair++) {
            const char *name = s_scalar (s_node (L, pair->key));
            if (name && strcmp (name, required [i]) == 0)
                found = true;
        }
        if (!found)
            s_error (L, node, field, "missing key '%s'", required [i]);
    }
    return true;
}

//  The value of key in mapping (first occurrence), or NULL.
static yaml_node_t *
s_get (s_loader_t *L, yaml_node_t *mapping, const char *key)
{
    for (yaml_node_pair_t *pair = mapping->data.mapping.pairs.start;
         pair < mapping->data.mapping.pairs.top; pair++) {
        const char *name = s_scalar (s_node (L, pair->key));
        if (name && strcmp (name, key) == 0)
            return s_node (L, pair->value);
    }
    return NULL;
}

//  ---------------------------------------------------------------------------------
//  Values

//  A string of any scalar style: no NUL byte; empty only if allow_empty.
static const char *
s_string (s_loader_t *L, yaml_node_t *node, const char *field, bool allow_empty)
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
    if (!*value && !allow_empty) {
        s_error (L, node, field, "must not be empty");
        return NULL;
    }
    return value;
}

static bool
s_integer (s_loader_t *L, yaml_node_t *node, const char *field, long long min, long long max,
           long long *out)
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
                 value && !s_is_null (node) ? "a string" : s_kind_name (node));
        return false;
    }
    if (number < min || number > max) {
        s_error (L, node, field, "%lld is out of range %lld..%lld", number, min, max);
        return false;
    }
    *out = number;
    return true;
}

static void
s_int_field (s_loader_t *L, yaml_node_t *node, const char *field, long long min, long long max,
             int *out)
{
    long long number;
    if (s_integer (L, node, field, min, max, &number))
        *out = (int) number;
}

//  As s_int_field, saying whether it was set.
static bool
s_integer_into_int (s_loader_t *L, yaml_node_t *node, const char *field, long long min, long long max,
                    int *out)
{
    long long number;
    if (!s_integer (L, node, field, min, max, &number))
        return false;
    *out = (int) number;
    return true;
}

static void
s_unsigned_field (s_loader_t *L, yaml_node_t *node, const char *field, long long min,
                  long long max, unsigned *out)
{
    long long number;
    if (s_integer (L, node, field, min, max, &number))
        *out = (unsigned) number;
}

//  A decimal number (integer or real; no nan, inf or hex).
static bool
s_real (s_loader_t *L, yaml_node_t *node, const char *field, double min, double max, double *out)
{
    const char *value = s_scalar (node);
    bool ok = value && node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !s_is_null (node);
    for (const char *p = value; ok && *p; p++)
        ok = strchr ("0123456789+-.eE", *p) != NULL;
    double number = 0;
    if (ok) {
        char *end = NULL;
        errno = 0;
        number = strtod (value, &end);
        ok = errno == 0 && *end == '\0' && isfinite (number);
    }
    if (!ok) {
        s_error (L, node, field, "expected a number, found %s",
                 value && !s_is_null (node) ? "a string" : s_kind_name (node));
        return false;
    }
    if (number < min || number > max) {
        s_error (L, node, field, "%s is out of range %.15g..%.15g", value, min, max);
        return false;
    }
    *out = number;
    return true;
}

//  A path, made absolute against the file's directory; pooled.
static const char *
s_path (s_loader_t *L, yaml_node_t *node, const char *field)
{
    const char *value = s_string (L, node, field, false);
    if (!value)
        return NULL;
    if (strlen (value) > S_MAX_PATH_LENGTH) {
        s_error (L, node, field, "longer than %d bytes", S_MAX_PATH_LENGTH);
        return NULL;
    }
    char *result = NULL;
    if (value [0] == '/')
        result = s_strdup (L->self, value);
    else {
        size_t size = strlen (L->base_dir) + 1 + strlen (value) + 1;
        result = s_alloc (L->self, size);
        if (result)
            snprintf (result, size, "%s/%s", L->base_dir, value);
    }
    if (!result)
        L->nomem = true;
    return result;
}

//  An HTTP path: starts with '/', printable ASCII without spaces; pooled.
static const char *
s_http_path (s_loader_t *L, yaml_node_t *node, const char *field)
{
    const char *value = s_string (L, node, field, false);
    if (!value)
        return NULL;
    bool ok = value [0] == '/' && strlen (value) <= S_MAX_HTTP_PATH;
    for (const char *p = value; ok && *p; p++)
        ok = *p > 0x20 && *p < 0x7f;
    if (!ok) {
        s_error (L, node, field, "\"%.64s\" is not an HTTP path (starts with '/', no spaces, "
                 "at most %d bytes)", value, S_MAX_HTTP_PATH);
        return NULL;
    }
    const char *copy = s_strdup (L->self, value);
    if (!copy)
        L->nomem = true;
    return copy;
}

//  1 to max of [A-Za-z0-9_.-], not starting with '-' (the drivers' names).
static bool
s_is_name (const char *value, size_t max)
{
    size_t length = strlen (value);
    if (length == 0 || length > max || value [0] == '-')
        return false;
    for (size_t i = 0; i < length; i++) {
        char c = value [i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
           || c == '_' || c == '.' || c == '-'))
            return false;
    }
    return true;
}

//  An environment variable name: [A-Za-z_][A-Za-z0-9_]{0,127}.
static bool
s_is_variable (const char *value)
{
    size_t length = strlen (value);
    if (length == 0 || length > 128 || (value [0] >= '0' && value [0] <= '9'))
        return false;
    for (size_t i = 0; i < length; i++) {
        char c = value [i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    return true;
}

//  A service name: [a-z0-9-]{1,32}, not starting with '-'.
static bool
s_is_service_name (const char *value)
{
    size_t length = strlen (value);
    if (length == 0 || length > AL_SERVICE_NAME_MAX || value [0] == '-')
        return false;
    for (size_t i = 0; i < length; i++) {
        char c = value [i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return false;
    }
    return true;
}

//  A list of strings as a pooled NULL-terminated array; a non-empty list whose first
//  element is not empty (an argv) when is_argv.
static const char *const *
s_strv (s_loader_t *L, yaml_node_t *node, const char *field, bool is_argv)
{
    if (!s_want_list (L, node, field))
        return NULL;
    size_t count = s_list_length (node);
    if (count == 0 && is_argv) {
        s_error (L, node, field, "must not be empty (argv[0] is the program)");
        return NULL;
    }
    const char **result = s_alloc (L->self, (count + 1) * sizeof *result);
    if (!result) {
        L->nomem = true;
        return NULL;
    }
    bool ok = true;
    for (size_t i = 0; i < count; i++) {
        char item_field [S_FIELD_SIZE];
        s_field_index (item_field, field, i);
        const char *value = s_string (L, s_list_at (L, node, i), item_field, !(is_argv && i == 0));
        if (!value) {
            ok = false;
            continue;
        }
        if (!(result [i] = s_strdup (L->self, value))) {
            L->nomem = true;
            return NULL;
        }
    }
    return ok ? result : NULL;
}

//  ---------------------------------------------------------------------------------
//  Per-environment values

typedef enum { S_ENV_UNSIGNED, S_ENV_STRATEGY, S_ENV_PATH } s_env_kind_t;

static const char *s_strategy_names [] = {
    [AIRLOCK__STRATEGY__STRATEGY_ROLLING] = "rolling",
    [AIRLOCK__STRATEGY__STRATEGY_CANARY] = "canary",
    [AIRLOCK__STRATEGY__STRATEGY_BLUE_GREEN] = "blue-green",
};

//  One value for one environment slot of svc (or every slot when env is 0).
static void
s_env_value (s_loader_t *L, al_service_t *svc, s_env_kind_t kind, yaml_node_t *node,
             const char *field, int env)
{
    int first = env ? env : 1, last = env ? env : AL_SERVICE_ENV_SLOTS - 1;
    if (kind == S_ENV_UNSIGNED) {
        long long number;
        if (!s_integer (L, node, field, 1, S_MAX_INSTANCES, &number))
            return;
        for (int slot = first; slot <= last; slot++)
            svc->instances [slot] = (unsigned) number;
    }
    else
    if (kind == S_ENV_STRATEGY) {
        const char *value = s_string (L, node, field, false);
        if (!value)
            return;
        Airlock__Strategy strategy = AIRLOCK__STRATEGY__STRATEGY_UNSPECIFIED;
        for (int i = 1; i < (int) (sizeof s_strategy_names / sizeof s_strategy_names [0]); i++)
            if (strcmp (s_strategy_names [i], value) == 0)
                strategy = (Airlock__Strategy) i;
        if (strategy == AIRLOCK__STRATEGY__STRATEGY_UNSPECIFIED) {
            s_error (L, node, field, "unknown strategy '%.64s' (rolling, canary, blue-green)", value);
            return;
        }
        for (int slot = first; slot <= last; slot++)
            svc->strategy [slot] = strategy;
    }
    else {
        const char *path = s_path (L, node, field);
        if (path)
            svc->database [env] = path;
    }
}

//  A value per environment: one scalar for all (unless kind is S_ENV_PATH), or a
//  mapping from environment names to values.
static void
s_per_env (s_loader_t *L, al_service_t *svc, s_env_kind_t kind, yaml_node_t *node,
           const char *field)
{
    if (node->type != YAML_MAPPING_NODE && kind != S_ENV_PATH) {
        if (node->type == YAML_SEQUENCE_NODE)
            s_error (L, node, field, "expected a value or a mapping of environments, found a list");
        else
            s_env_value (L, svc, kind, node, field, 0);
        return;
    }
    if (!s_want_mapping (L, node, field))
        return;
    for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
         pair < node->data.mapping.pairs.top; pair++) {
        if (!s_first_key (L, node, pair, field))
            continue;
        yaml_node_t *key = s_node (L, pair->key);
        const char *name = s_scalar (key);
        Airlock__Environment env = al_environment_from_name (name);
        if (env <= AIRLOCK__ENVIRONMENT__ENV_UNSPECIFIED || env >= AL_SERVICE_ENV_SLOTS) {
            s_error (L, key, field, "unknown environment '%.64s' (development, staging, production)",
                     name);
            continue;
        }
        char env_field [S_FIELD_SIZE];
        s_field_key (env_field, field, name);
        s_env_value (L, svc, kind, s_node (L, pair->value), env_field, (int) env);
    }
}

//  ---------------------------------------------------------------------------------
//  Sections of a service

static void
s_rolling (s_loader_t *L, al_service_t *svc, yaml_node_t *node, const char *field)
{
    static const char *const allowed [] = { "batch_size", "max_unavailable", "max_surge", NULL };
    if (!s_check_map (L, node, field, allowed, NULL))
        return;
    char sub [S_FIELD_SIZE];
    yaml_node_t *value;
    if ((value = s_get (L, node, "batch_size"))) {
        s_field_key (sub, field, "batch_size");
        s_unsigned_field (L, value, sub, 1, S_MAX_INSTANCES, &svc->batch_size);
    }
    if ((value = s_get (L, node, "max_unavailable"))) {
        s_field_key (sub, field, "max_unavailable");
        s_unsigned_field (L, value, sub, 0, S_MAX_INSTANCES, &svc->max_unavailable);
    }
    if ((value = s_get (L, node, "max_surge"))) {
        s_field_key (sub, field, "max_surge");
        s_unsigned_field (L, value, sub, 0, S_MAX_INSTANCES, &svc->max_surge);
    }
    if (svc->max_unavailable + svc->max_surge < 1)
        s_error (L, node, field, "max_unavailable + max_surge must be at least 1 "
                 "(a rollout must be able to stop or start an instance)");
}

static void
s_canary (s_loader_t *L, al_service_t *svc, yaml_node_t *node, const char *field)
{
    static const char *const allowed [] = { "steps", "step_soak_ms", NULL };
    if (!s_check_map (L, node, field, allowed, NULL))
        return;
    char sub [S_FIELD_SIZE];
    yaml_node_t *value;
    if ((value = s_get (L, node, "step_soak_ms"))) {
        s_field_key (sub, field, "step_soak_ms");
        s_int_field (L, value, sub, 0, S_MAX_DAY_MS, &svc->canary_step_soak_ms);
    }
    if (!(value = s_get (L, node, "steps")))
        return;
    s_field_key (sub, field, "steps");
    if (!s_want_list (L, value, sub))
        return;
    size_t count = s_list_length (value);
    if (count == 0) {
        s_error (L, value, sub, "must not be empty (the last step is 100)");
        return;
    }
    unsigned *steps = s_alloc (L->self, count * sizeof *steps);
    if (!steps) {
        L->nomem = true;
        return;
    }
    bool ok = true;
    for (size_t i = 0; i < count; i++) {
        char item [S_FIELD_SIZE];
        s_field_index (item, sub, i);
        yaml_node_t *step = s_list_at (L, value, i);
        long long percent;
        if (!s_integer (L, step, item, 1, 100, &percent)) {
            ok = false;
            continue;
        }
        steps [i] = (unsigned) percent;
        if (i > 0 && ok && steps [i] <= steps [i - 1]) {
            s_error (L, step, item, "%u is not above the step before (%u): steps must be "
                     "strictly ascending", steps [i], steps [i - 1]);
            ok = false;
        }
    }
    if (ok && steps [count - 1] != 100) {
        s_error (L, value, sub, "must end with 100");
        ok = false;
    }
    if (ok) {
        svc->canary_steps = steps;
        svc->canary_step_count = count;
    }
}

static void
s_steps (s_loader_t *L, al_service_t *svc, yaml_node_t *node, const char *field)
{
    if (!s_want_mapping (L, node, field))
        return;
    size_t count = (size_t) (node->data.mapping.pairs.top - node->data.mapping.pairs.start);
    al_driver_step_t *steps = s_alloc (L->self, count * sizeof *steps);
    if (!steps) {
        L->nomem = true;
        return;
    }
    size_t used = 0;
    bool ok = true;
    for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
         pair < node->data.mapping.pairs.top; pair++) {
        if (!s_first_key (L, node, pair, field)) {
            ok = false;
            continue;
        }
        yaml_node_t *key = s_node (L, pair->key);
        const char *name = s_scalar (key);
        if (!s_is_name (name, 32)) {
            s_error (L, key, field, "step name '%.64s' is not 1 to 32 of [A-Za-z0-9_.-] "
                     "(not starting with '-')", name);
            ok = false;
            continue;
        }
        char step_field [S_FIELD_SIZE];
        s_field_key (step_field, field, name);
        yaml_node_t *step = s_node (L, pair->value);
        static const char *const allowed [] = { "argv", "timeout_ms", NULL };
        static const char *const required [] = { "argv", NULL };
        if (!s_check_map (L, step, step_field, allowed, required)) {
            ok = false;
            continue;
        }
        al_driver_step_t *out = &steps [used++];
        out->name = s_strdup (L->self, name);
        if (!out->name)
            L->nomem = true;
        char sub [S_FIELD_SIZE];
        yaml_node_t *value;
        if ((value = s_get (L, step, "argv"))) {
            s_field_key (sub, step_field, "argv");
            out->argv = s_strv (L, value, sub, true);
        }
        if ((value = s_get (L, step, "timeout_ms"))) {
            s_field_key (sub, step_field, "timeout_ms");
            s_int_field (L, value, sub, 100, S_MAX_DAY_MS, &out->timeout_ms);
        }
        if (!out->argv)
            ok = false;
    }
    static const char *const needed [] = { "start", "stop" };
    for (size_t i = 0; i < 2; i++) {
        if (!s_get (L, node, needed [i])) {
            s_error (L, node, field, "step '%s' is required", needed [i]);
            ok = false;
        }
    }
    if (ok) {
        svc->steps = steps;
        svc->step_count = used;
    }
}

static void
s_env_list (s_loader_t *L, al_service_t *svc, yaml_node_t *node, const char *field)
{
    const char *const *env = s_strv (L, node, field, false);
    if (!env)
        return;
    bool ok = true;
    for (size_t i = 0; env [i]; i++) {
        const char *equal = strchr (env [i], '=');
        char name [160] = "";
        if (equal && (size_t) (equal - env [i]) < sizeof name)
            snprintf (name, sizeof name, "%.*s", (int) (equal - env [i]), env [i]);
        if (!equal || !s_is_name (name, 127)) {
            char item [S_FIELD_SIZE];
            s_field_index (item, field, i);
            s_error (L, s_list_at (L, node, i), item, "expected NAME=value with NAME 1 to 127 "
                     "of [A-Za-z0-9_.-]");
            ok = false;
        }
    }
    if (ok)
        svc->env = env;
}

static void
s_secrets (s_loader_t *L, al_service_t *svc, yaml_node_t *node, const char *field)
{
    if (!s_want_list (L, node, field))
        return;
    size_t count = s_list_length (node);
    al_driver_secret_ref_t *secrets = s_alloc (L->self, count * sizeof *secrets);
    if (!secrets) {
        L->nomem = true;
        return;
    }
    bool ok = true;
    for (size_t i = 0; i < count; i++) {
        char item [S_FIELD_SIZE];
        s_field_index (item, field, i);
        yaml_node_t *entry = s_list_at (L, node, i);
        static const char *const allowed [] = { "name", "env", "file", "as", NULL };
        static const char *const required [] = { "name", NULL };
        if (!s_check_map (L, entry, item, allowed, required)) {
            ok = false;
            continue;
        }
        al_driver_secret_ref_t *ref = &secrets [i];
        char sub [S_FIELD_SIZE];
        yaml_node_t *value;
        if ((value = s_get (L, entry, "name"))) {
            s_field_key (sub, item, "name");
            const char *name = s_string (L, value, sub, false);
            if (name && !s_is_name (name, 64))
                s_error (L, value, sub, "'%.64s' is not 1 to 64 of [A-Za-z0-9_.-] "
                         "(not starting with '-')", name);
            else
            if (name)
                ref->name = s_strdup (L->self, name);
        }
        yaml_node_t *env = s_get (L, entry, "env");
        yaml_node_t *file = s_get (L, entry, "file");
        if ((env != NULL) == (file != NULL)) {
            s_error (L, entry, item, "give exactly one of env and file");
            ok = false;
        }
        if (env) {
            s_field_key (sub, item, "env");
            const char *name = s_string (L, env, sub, false);
            if (name && !s_is_variable (name))
                s_error (L, env, sub, "'%.64s' is not an environment variable name", name);
            else
            if (name)
                ref->env = s_strdup (L->self, name);
            ok = ok && ref->env;
        }
        if (file) {
            s_field_key (sub, item, "file");
            ref->file = s_path (L, file, sub);
            ok = ok && ref->file;
        }
        if ((value = s_get (L, entry, "as"))) {
            s_field_key (sub, item, "as");
            const char *as = s_string (L, value, sub, false);
            if (as && !s_is_variable (as))
                s_error (L, value, sub, "'%.64s' is not an environment variable name", as);
            else
            if (as)
                ref->as = s_strdup (L->self, as);
            ok = ok && ref->as;
        }
        //  Without "as", the child's variable is the name, which must then be one.
        if (ref->name && !ref->as && !s_is_variable (ref->name)) {
            s_error (L, entry, item, "name '%s' is not an environment variable name: give 'as'",
                     ref->name);
            ok = false;
        }
        if (!ref->name) {
            ok = false;
            continue;
        }
        const char *variable = ref->as ? ref->as : ref->name;
        for (size_t j = 0; j < i; j++) {
            const al_driver_secret_ref_t *prior = &secrets [j];
            if (prior->name && strcmp (prior->name, ref->name) == 0) {
                s_error (L, entry, item, "secret '%s' is given twice", ref->name);
                ok = false;
            }
            else
            if (prior->name && strcmp (prior->as ? prior->as : prior->name, variable) == 0) {
                s_error (L, entry, item, "variable %s is also set by secret '%s'", variable,
                         prior->name);
                ok = false;
            }
        }
    }
    if (ok) {
        svc->secrets = secrets;
        svc->secret_count = count;
    }
}

//  ---------------------------------------------------------------------------------
//  QA: smoke checks and command suites

//  A smoke check or suite name: [a-z0-9_-]{1,32}.
static bool
s_is_qa_name (const char *value)
{
    size_t length = strlen (value);
    if (length == 0 || length > AL_SERVICE_QA_NAME_MAX)
        return false;
    for (size_t i = 0; i < length; i++) {
        char c = value [i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return true;
}

//  The name key of a smoke check or suite entry, pooled; NULL (with an error) when it
//  is not a name or repeats one of the count entries before it (read with name_at).
static const char *
s_qa_entry_name (s_loader_t *L, yaml_node_t *entry, const char *item, const char *what,
                 const char *(*name_at) (const void *, size_t), const void *entries, size_t count)
{
    yaml_node_t *value = s_get (L, entry, "name");
    if (!value)
        return NULL;        // s_check_map reported it missing
    char sub [S_FIELD_SIZE];
    s_field_key (sub, item, "name");
    const char *name = s_string (L, value, sub, false);
    if (!name)
        return NULL;
    if (!s_is_qa_name (name)) {
        s_error (L, value, sub, "'%.64s' is not 1 to %d of [a-z0-9_-]", name, AL_SERVICE_QA_NAME_MAX);
        return NULL;
    }
    for (size_t i = 0; i < count; i++) {
        const char *prior = name_at (entries, i);
        if (prior && strcmp (prior, name) == 0) {
            s_error (L, value, sub, "%s '%s' is given twice", what, name);
            return NULL;
        }
    }
    const char *copy = s_strdup (L->self, name);
    if (!copy)
        L->nomem = true;
    return copy;
}

static const char *
s_smoke_name_at (const void *entries, size_t index)
{
    return ((const al_service_smoke_t *) entries) [index].name;
}

static const char *
s_suite_name_at (const void *entries, size_t index)
{
    return ((const al_service_suite_t *) entries) [index].name;
}

static void
s_qa_smoke (s_loader_t *L, al_service_t *svc, yaml_node_t *node, const char *field)
{
    if (!s_want_list (L, node, field))
        return;
    size_t count = s_list_length (node);
    al_service_smoke_t *checks = s_alloc (L->self, count * sizeof *checks);
    if (!checks) {
        L->nomem = true;
        return;
    }
    bool ok = true;
    for (size_t i = 0; i < count; i++) {
        char item [S_FIELD_SIZE];
        s_field_index (item, field, i);
        yaml_node_t *entry = s_list_at (L, node, i);
        static const char *const allowed [] = { "name", "path", "status", "body_contains", NULL };
        static const char *const required [] = { "name", "path", NULL };
        if (!s_check_map (L, entry, item, allowed, required)) {
            ok = false;
            continue;
        }
        al_service_smoke_t *check = &checks [i];
        check->status = AL_SERVICE_DEFAULT_QA_STATUS;
        check->name = s_qa_entry_name (L, entry, item, "smoke check", s_smoke_name_at, checks, i);
        char sub [S_FIELD_SIZE];
        yaml_node_t *value;
        if ((value = s_get (L, entry, "path"))) {
            s_field_key (sub, item, "path");
            check->path = s_http_path (L, value, sub);
        }
        if ((value = s_get (L, entry, "status"))) {
            s_field_key (sub, item, "status");
            if (!s_integer_into_int (L, value, sub, 100, 599, &check->status))
                ok = false;
        }
        if ((value = s_get (L, entry, "body_contains"))) {
            s_field_key (sub, item, "body_contains");
            const char *text = s_string (L, value, sub, false);
            if (text && strlen (text) > S_MAX_BODY_TEXT)
                s_error (L, value, sub, "longer than %d bytes", S_MAX_BODY_TEXT);
            else
            if (text && !(check->body_contains = s_strdup (L->self, text)))
                L->nomem = true;
            if (!check->body_contains)
                ok = false;
        }
        if (!check->name || !check->path)
            ok = false;
    }
    if (ok) {
        svc->qa_smoke = checks;
        svc->qa_smoke_count = count;
    }
}

static void
s_qa_suites (s_loader_t *L, al_service_t *svc, yaml_node_t *node, const char *field)
{
    if (!s_want_list (L, node, field))
        return;
    size_t count = s_list_length (node);
    al_service_suite_t *suites = s_alloc (L->self, count * sizeof *suites);
    if (!suites) {
        L->nomem = true;
        return;
    }
    bool ok = true;
    for (size_t i = 0; i < count; i++) {
        char item [S_FIELD_SIZE];
        s_field_index (item, field, i);
        yaml_node_t *entry = s_list_at (L, node, i);
        static const char *const allowed [] = { "name", "argv", "junit", "timeout_ms", NULL };
        static const char *const required [] = { "name", "argv", NULL };
        if (!s_check_map (L, entry, item, allowed, required)) {
            ok = false;
            continue;
        }
        al_service_suite_t *suite = &suites [i];
        suite->timeout_ms = AL_SERVICE_DEFAULT_QA_SUITE_TIMEOUT_MS;
        suite->name = s_qa_entry_name (L, entry, item, "suite", s_suite_name_at, suites, i);
        char sub [S_FIELD_SIZE];
        yaml_node_t *value;
        if ((value = s_get (L, entry, "argv"))) {
            s_field_key (sub, item, "argv");
            suite->argv = s_strv (L, value, sub, true);
        }
        if ((value = s_get (L, entry, "junit"))) {
            s_field_key (sub, item, "junit");
            suite->junit = s_path (L, value, sub);
            //  Two suites writing one report would count each other's tests.
            for (size_t j = 0; suite->junit && j < i; j++)
                if (suites [j].junit && strcmp (suites [j].junit, suite->junit) == 0) {
                    s_error (L, value, sub, "%s is also the report of suite '%s'", suite->junit,
                             suites [j].name ? suites [j].name : "?");
                    suite->junit = NULL;
                }
            if (!suite->junit)
                ok = false;
        }
        if ((value = s_get (L, entry, "timeout_ms"))) {
            s_field_key (sub, item, "timeout_ms");
            if (!s_integer_into_int (L, value, sub, 100, S_MAX_DAY_MS, &suite->timeout_ms))
                ok = false;
        }
        if (!suite->name || !suite->argv)
            ok = false;
    }
    if (ok) {
        svc->qa_suites = suites;
        svc->qa_suite_count = count;
    }
}

static void
s_qa (s_loader_t *L, al_service_t *svc, yaml_node_t *node, const char *field)
{
    static const char *const allowed [] = { "smoke", "suites", "timeout_ms", NULL };
    if (!s_check_map (L, node, field, allowed, NULL))
        return;
    char sub [S_FIELD_SIZE];
    yaml_node_t *value;
    if ((value = s_get (L, node, "timeout_ms"))) {
        s_field_key (sub, field, "timeout_ms");
        s_int_field (L, value, sub, 10, 600000, &svc->qa_timeout_ms);
    }
    if ((value = s_get (L, node, "smoke"))) {
        s_field_key (sub, field, "smoke");
        s_qa_smoke (L, svc, value, sub);
    }
    if ((value = s_get (L, node, "suites"))) {
        s_field_key (sub, field, "suites");
        s_qa_suites (L, svc, value, sub);
    }
}

//  Without qa.smoke, one liveness check (after the walk: liveness_path is known then).
static void
s_qa_defaults (s_loader_t *L, al_service_t *svc)
{
    if (svc->qa_smoke)
        return;
    al_service_smoke_t *check = s_alloc (L->self, sizeof *check);
    if (!check) {
        L->nomem = true;
        return;
    }
    check->name = "liveness";
    check->path = svc->liveness_path;
    check->status = 0;
    svc->qa_smoke = check;
    svc->qa_smoke_count = 1;
}

//  ---------------------------------------------------------------------------------
//  A service

static const s_service_key_t *
s_service_key (const char *name)
{
    for (size_t i = 0; i < S_SERVICE_KEY_COUNT; i++)
        if (strcmp (s_service_keys [i].name, name) == 0)
            return &s_service_keys [i];
    return NULL;
}

static void
s_defaults (al_service_t *svc)
{
    for (int env = 1; env < AL_SERVICE_ENV_SLOTS; env++) {
        svc->instances [env] = AL_SERVICE_DEFAULT_INSTANCES;
        svc->strategy [env] = AIRLOCK__STRATEGY__STRATEGY_ROLLING;
    }
    svc->batch_size = AL_SERVICE_DEFAULT_BATCH_SIZE;
    svc->max_unavailable = AL_SERVICE_DEFAULT_MAX_UNAVAILABLE;
    svc->max_surge = AL_SERVICE_DEFAULT_MAX_SURGE;
    svc->canary_steps = s_default_canary_steps;
    svc->canary_step_count = sizeof s_default_canary_steps / sizeof s_default_canary_steps [0];
    svc->canary_step_soak_ms = AL_SERVICE_DEFAULT_CANARY_SOAK_MS;
    svc->soak_ms = AL_SERVICE_DEFAULT_SOAK_MS;
    svc->probe_interval_ms = AL_SERVICE_DEFAULT_PROBE_INTERVAL_MS;
    svc->ready_timeout_ms = AL_SERVICE_DEFAULT_READY_TIMEOUT_MS;
    svc->health_failures = AL_SERVICE_DEFAULT_HEALTH_FAILURES;
    svc->data_rollback = AL_SERVICE_DATA_ROLLBACK_DOWN;
    svc->signals = AL_SERVICE_SIGNALS_MONITOR;
    svc->metrics_path = AL_SERVICE_DEFAULT_METRICS_PATH;
    svc->host = AL_DRIVER_DEFAULT_HOST;
    svc->liveness_path = AL_DRIVER_DEFAULT_LIVENESS_PATH;
    svc->readiness_path = AL_DRIVER_DEFAULT_READINESS_PATH;
    svc->stop_timeout_ms = AL_DRIVER_DEFAULT_STOP_TIMEOUT_MS;
    svc->probe_timeout_ms = AL_PROBE_DEFAULT_TIMEOUT_MS;
    svc->qa_timeout_ms = AL_SERVICE_DEFAULT_QA_TIMEOUT_MS;
}

//  One key of a service whose driver allows it.
static void
s_service_value (s_loader_t *L, al_service_t *svc, const char *name, yaml_node_t *value,
                 const char *field)
{
    if (strcmp (name, "driver") == 0)
        ;   // read before the walk
    else
    if (strcmp (name, "instances") == 0)
        s_per_env (L, svc, S_ENV_UNSIGNED, value, field);
    else
    if (strcmp (name, "strategy") == 0)
        s_per_env (L, svc, S_ENV_STRATEGY, value, field);
    else
    if (strcmp (name, "database") == 0)
        s_per_env (L, svc, S_ENV_PATH, value, field);
    else
    if (strcmp (name, "rolling") == 0)
        s_rolling (L, svc, value, field);
    else
    if (strcmp (name, "canary") == 0)
        s_canary (L, svc, value, field);
    else
    if (strcmp (name, "soak_ms") == 0)
        s_int_field (L, value, field, 0, S_MAX_SOAK_MS, &svc->soak_ms);
    else
    if (strcmp (name, "probe_interval_ms") == 0)
        s_int_field (L, value, field, 50, 600000, &svc->probe_interval_ms);
    else
    if (strcmp (name, "ready_timeout_ms") == 0)
        s_int_field (L, value, field, 100, S_MAX_HOUR_MS, &svc->ready_timeout_ms);
    else
    if (strcmp (name, "health_failures") == 0)
        s_unsigned_field (L, value, field, 1, 1000, &svc->health_failures);
    else
    if (strcmp (name, "cost_per_instance_usd_month") == 0)
        s_real (L, value, field, 0, 1e9, &svc->cost_per_instance_usd_month);
    else
    if (strcmp (name, "migrations") == 0)
        svc->migrations = s_path (L, value, field);
    else
    if (strcmp (name, "data_rollback") == 0) {
        const char *mode = s_string (L, value, field, false);
        if (mode && strcmp (mode, "down") == 0)
            svc->data_rollback = AL_SERVICE_DATA_ROLLBACK_DOWN;
        else
        if (mode && strcmp (mode, "restore") == 0)
            svc->data_rollback = AL_SERVICE_DATA_ROLLBACK_RESTORE;
        else
        if (mode)
            s_error (L, value, field, "unknown mode '%.64s' (down, restore)", mode);
    }
    else
    if (strcmp (name, "signals") == 0) {
        const char *mode = s_string (L, value, field, false);
        if (mode && strcmp (mode, "monitor") == 0)
            svc->signals = AL_SERVICE_SIGNALS_MONITOR;
        else
        if (mode && strcmp (mode, "probes") == 0)
            svc->signals = AL_SERVICE_SIGNALS_PROBES;
        else
        if (mode)
            s_error (L, value, field, "unknown source '%.64s' (monitor, probes)", mode);
    }
    else
    if (strcmp (name, "metrics_path") == 0 || strcmp (name, "liveness_path") == 0
    ||  strcmp (name, "readiness_path") == 0) {
        const char *path = s_http_path (L, value, field);
        const char **out = name [0] == 'm' ? &svc->metrics_path
                         : name [0] == 'l' ? &svc->liveness_path : &svc->readiness_path;
        if (path)
            *out = path;
    }
    else
    if (strcmp (name, "host") == 0) {
        const char *host = s_string (L, value, field, false);
        struct in_addr address;
        if (host && inet_pton (AF_INET, host, &address) != 1)
            s_error (L, value, field, "'%.64s' is not an IPv4 address", host);
        else
        if (host && !(svc->host = s_strdup (L->self, host)))
            L->nomem = true;
    }
    else
    if (strcmp (name, "stop_timeout_ms") == 0)
        s_int_field (L, value, field, 1, S_MAX_HOUR_MS, &svc->stop_timeout_ms);
    else
    if (strcmp (name, "probe_timeout_ms") == 0)
        s_int_field (L, value, field, 10, 600000, &svc->probe_timeout_ms);
    else
    if (strcmp (name, "secrets") == 0)
        s_secrets (L, svc, value, field);
    else
    if (strcmp (name, "command") == 0)
        svc->command = s_strv (L, value, field, true);
    else
    if (strcmp (name, "env") == 0)
        s_env_list (L, svc, value, field);
    else
    if (strcmp (name, "start_timeout_ms") == 0)
        s_int_field (L, value, field, 100, S_MAX_HOUR_MS, &svc->start_timeout_ms);
    else
    if (strcmp (name, "steps") == 0)
        s_steps (L, svc, value, field);
    else
    if (strcmp (name, "endpoint") == 0) {
        const char *endpoint = s_string (L, value, field, false);
        if (endpoint && !(svc->endpoint = s_strdup (L->self, endpoint)))
            L->nomem = true;
    }
    else
    if (strcmp (name, "step_timeout_ms") == 0)
        s_int_field (L, value, field, 100, S_MAX_DAY_MS, &svc->step_timeout_ms);
    else
    if (strcmp (name, "max_output") == 0) {
        long long bytes;
        if (s_integer (L, value, field, 1024, 64LL * 1024 * 1024, &bytes))
            svc->max_output = (size_t) bytes;
    }
    else
    if (strcmp (name, "qa") == 0)
        s_qa (L, svc, value, field);
    else
        assert (false);     // every key of s_service_keys is handled above
}

static void
s_service (s_loader_t *L, al_service_t *svc, yaml_node_t *key, yaml_node_t *node)
{
    const char *name = s_scalar (key);
    assert (name);          // s_first_key let only scalar keys through
    char field [S_FIELD_SIZE];
    snprintf (field, sizeof field, "services.%.64s", name);
    svc->line = (size_t) key->start_mark.line + 1;
    if (!s_is_service_name (name))
        s_error (L, key, field, "not a service name: 1 to %d of [a-z0-9-], not starting with '-'",
                 AL_SERVICE_NAME_MAX);
    else
    if (!(svc->name = s_strdup (L->self, name)))
        L->nomem = true;
    s_defaults (svc);
    if (!s_want_mapping (L, node, field))
        return;

    //  The driver decides which keys are allowed: read it first.
    s_owner_t driver = S_BOTH;
    yaml_node_t *value = s_get (L, node, "driver");
    char sub [S_FIELD_SIZE];
    s_field_key (sub, field, "driver");
    if (!value)
        s_error (L, node, field, "missing key 'driver' (process or exec)");
    else {
        const char *text = s_string (L, value, sub, false);
        if (text && strcmp (text, "process") == 0)
            driver = S_PROCESS;
        else
        if (text && strcmp (text, "exec") == 0)
            driver = S_EXEC;
        else
        if (text)
            s_error (L, value, sub, "unknown driver '%.64s' (process, exec)", text);
        svc->driver = driver == S_PROCESS ? "process" : driver == S_EXEC ? "exec" : NULL;
    }
    for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
         pair < node->data.mapping.pairs.top; pair++) {
        if (!s_first_key (L, node, pair, field))
            continue;
        yaml_node_t *key_node = s_node (L, pair->key);
        const char *key_name = s_scalar (key_node);
        const s_service_key_t *known = s_service_key (key_name);
        if (!known) {
            s_error (L, key_node, field, "unknown key '%.64s'", key_name);
            continue;
        }
        s_field_key (sub, field, key_name);
        if (known->owner != S_BOTH && driver != S_BOTH && known->owner != driver) {
            s_error (L, key_node, sub, "a key of the %s driver; this service uses the %s driver",
                     known->owner == S_PROCESS ? "process" : "exec", svc->driver);
            continue;
        }
        s_service_value (L, svc, key_name, s_node (L, pair->value), sub);
    }

    s_qa_defaults (L, svc);

    //  What each driver needs, and its defaults.
    if (driver == S_PROCESS) {
        if (!s_get (L, node, "command"))
            s_error (L, node, field, "a process service needs 'command' (the argv of an instance)");
        if (!svc->start_timeout_ms)
            svc->start_timeout_ms = AL_DRIVER_DEFAULT_START_TIMEOUT_MS;
    }
    if (driver == S_EXEC) {
        if (!s_get (L, node, "steps"))
            s_error (L, node, field, "an exec service needs 'steps' with 'start' and 'stop'");
        if (!svc->step_timeout_ms)
            svc->step_timeout_ms = AL_DRIVER_DEFAULT_STEP_TIMEOUT_MS;
        if (!svc->max_output)
            svc->max_output = AL_DRIVER_DEFAULT_MAX_OUTPUT;
        //  The monitor scrapes the instances the process driver registers; an exec
        //  service's instances are the operator's platform's, so its soak evidence is
        //  the probes unless told otherwise, and "monitor" would fail every soak closed.
        if (!s_get (L, node, "signals"))
            svc->signals = AL_SERVICE_SIGNALS_PROBES;
        else
        if (svc->signals == AL_SERVICE_SIGNALS_MONITOR)
            s_error (L, s_get (L, node, "signals"), field, "signals: monitor needs the process driver (the monitor "
                     "scrapes the instances it registers); an exec service uses signals: probes");
    }
}

//  ---------------------------------------------------------------------------------
//  The file

static void
s_root (s_loader_t *L, yaml_node_t *root)
{
    static const char *const allowed [] = { "version", "services", NULL };
    static const char *const required [] = { "version", "services", NULL };
    if (!s_check_map (L, root, NULL, allowed, required))
        return;
    yaml_node_t *version = s_get (L, root, "version");
    long long number;
    if (version && s_integer (L, version, "version", 1, 1000000, &number) && number != 1)
        s_error (L, version, "version", "unsupported version %lld (this airlock reads 1)", number);
    yaml_node_t *services = s_get (L, root, "services");
    if (!services || !s_want_mapping (L, services, "services"))
        return;
    size_t count = (size_t) (services->data.mapping.pairs.top - services->data.mapping.pairs.start);
    L->self->services = s_alloc (L->self, count * sizeof (al_service_t));
    if (!L->self->services) {
        L->nomem = true;
        return;
    }
    for (yaml_node_pair_t *pair = services->data.mapping.pairs.start;
         pair < services->data.mapping.pairs.top; pair++) {
        if (!s_first_key (L, services, pair, "services"))
            continue;
        al_service_t *svc = &L->self->services [L->self->count++];
        s_service (L, svc, s_node (L, pair->key), s_node (L, pair->value));
    }
}

//  The whole file, at most S_MAX_FILE_SIZE bytes; NULL with an error.
static unsigned char *
s_read_file (s_loader_t *L, size_t *size_p)
{
    unsigned char *data = NULL;
    FILE *file = fopen (L->path, "rb");
    if (!file) {
        s_error (L, NULL, NULL, "cannot open: %s", strerror (errno));
        goto cleanup;
    }
    //  Grow as the file proves longer, up to one byte past the limit (to detect it).
    size_t size = 0, capacity = 0;
    while (true) {
        if (size == capacity) {
            if (capacity > S_MAX_FILE_SIZE) {
                s_error (L, NULL, NULL, "larger than %u bytes", S_MAX_FILE_SIZE);
                break;
            }
            capacity = capacity ? capacity * 4 : 16384;
            if (capacity > S_MAX_FILE_SIZE + 1)
                capacity = S_MAX_FILE_SIZE + 1;
            unsigned char *grown = realloc (data, capacity);
            if (!grown) {
                L->nomem = true;
                break;
            }
            data = grown;
        }
        size_t got = fread (data + size, 1, capacity - size, file);
        size += got;
        if (got == 0) {
            if (!ferror (file)) {
                *size_p = size;
                goto cleanup;
            }
            s_error (L, NULL, NULL, "cannot read: %s", strerror (errno));
            break;
        }
    }
    free (data);
    data = NULL;
cleanup:
    if (file)
        fclose (file);
    return data;
}

static void
s_parse_error (s_loader_t *L, yaml_parser_t *parser)
{
    char text [1024];
    snprintf (text, sizeof text, "%s:%zu:%zu: %s%s%s", L->path,
              (size_t) parser->problem_mark.line + 1, (size_t) parser->problem_mark.column + 1,
              parser->problem ? parser->problem : "invalid YAML",
              parser->context ? " " : "", parser->context ? parser->context : "");
    s_add_error (L, text);
}

al_services_t *
al_services_load (const char *path, char *error, size_t error_size)
{
    assert (path);
    s_loader_t loader = { .path = path };
    s_loader_t *L = &loader;
    unsigned char *data = NULL;
    bool parser_ready = false, doc_ready = false;
    yaml_parser_t parser;
    yaml_document_t doc;

    L->self = calloc (1, sizeof (al_services_t));
    if (!L->self || !(L->self->path = strdup (path))) {
        L->nomem = true;
        goto cleanup;
    }
    size_t size = 0;
    if (!(data = s_read_file (L, &size)))
        goto cleanup;
    //  The directory relative paths are resolved against.
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
        s_error (L, NULL, NULL, "empty file: version and services are required");
        goto cleanup;
    }
    L->node_count = (size_t) (doc.nodes.top - doc.nodes.start);
    L->walked = calloc (L->node_count, 1);
    if (!L->walked) {
        L->nomem = true;
        goto cleanup;
    }
    s_root (L, root);

    //  One document only: a second one would be silently ignored otherwise.
    yaml_document_t next;
    if (!yaml_parser_load (&parser, &next))
        s_parse_error (L, &parser);
    else {
        yaml_node_t *next_root = yaml_document_get_root_node (&next);
        if (next_root)
            s_error (L, next_root, NULL, "a second YAML document; services.yaml holds one");
        yaml_document_delete (&next);
    }

cleanup:
    if (L->nomem)
        s_error (L, NULL, NULL, "out of memory");
    if (L->error_count || L->errors_dropped) {
        s_report_errors (L, error, error_size);
        al_services_destroy (&L->self);
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
al_services_destroy (al_services_t **self_p)
{
    assert (self_p);
    al_services_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->block_count; i++)
        free (self->blocks [i]);
    free (self->blocks);
    free (self->path);
    free (self);
    *self_p = NULL;
}

const char *
al_services_path (const al_services_t *self)
{
    assert (self);
    return self->path;
}

size_t
al_services_count (const al_services_t *self)
{
    assert (self);
    return self->count;
}

const al_service_t *
al_services_at (const al_services_t *self, size_t index)
{
    assert (self);
    return index < self->count ? &self->services [index] : NULL;
}

const al_service_t *
al_services_find (const al_services_t *self, const char *name)
{
    assert (self);
    if (!name)
        return NULL;
    for (size_t i = 0; i < self->count; i++)
        if (strcmp (self->services [i].name, name) == 0)
            return &self->services [i];
    return NULL;
}

static bool
s_env_ok (Airlock__Environment env)
{
    return env > AIRLOCK__ENVIRONMENT__ENV_UNSPECIFIED && (int) env < AL_SERVICE_ENV_SLOTS;
}

unsigned
al_service_instances (const al_service_t *svc, Airlock__Environment env)
{
    assert (svc);
    return s_env_ok (env) ? svc->instances [env] : 0;
}

Airlock__Strategy
al_service_strategy (const al_service_t *svc, Airlock__Environment env)
{
    assert (svc);
    return s_env_ok (env) ? svc->strategy [env] : AIRLOCK__STRATEGY__STRATEGY_UNSPECIFIED;
}

const char *
al_service_database (const al_service_t *svc, Airlock__Environment env)
{
    assert (svc);
    return s_env_ok (env) ? svc->database [env] : NULL;
}

void
al_service_driver_config (const al_service_t *svc, const char *evidence_dir,
                          al_driver_config_t *config)
{
    assert (svc);
    assert (config);
    memset (config, 0, sizeof *config);
    config->evidence_dir = evidence_dir;
    config->command = svc->command;
    config->env = svc->env;
    config->host = svc->host;
    config->liveness_path = svc->liveness_path;
    config->readiness_path = svc->readiness_path;
    config->start_timeout_ms = svc->start_timeout_ms;
    config->stop_timeout_ms = svc->stop_timeout_ms;
    config->probe_timeout_ms = svc->probe_timeout_ms;
    config->steps = svc->steps;
    config->step_count = svc->step_count;
    config->endpoint = svc->endpoint;
    config->step_timeout_ms = svc->step_timeout_ms;
    config->max_output = svc->max_output;
    config->secrets = svc->secrets;
    config->secret_count = svc->secret_count;
}
