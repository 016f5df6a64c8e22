/*  al_services.c: load and validate services.yaml.

    The file is read whole (at most S_MAX_FILE_SIZE bytes), parsed into a libyaml
    document and walked against the fixed schema of docs/drivers.md with deploy/al_yaml,
    which records every problem as "path:line:col: field.path: what is wrong" and goes
    on, so one load reports every error of the file, and lets a mapping or list be
    walked once (an alias may stand for a scalar only). A set is returned only when
    there was no error.

    Everything a loaded set points to is allocated from its own pool (blocks freed
    together by destroy), so an al_service_t is plain data with borrowed pointers.
    Immutable after load; no global state.
*/
#include "deploy/al_services.h"
#include "deploy/al_services_int.h"
#include "deploy/al_yaml.h"
#include "proto/al_codec.h"
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define S_MAX_FILE_SIZE     (4u * 1024 * 1024)
#define S_MAX_HTTP_PATH     1024

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

typedef al_services_loader_t s_loader_t;

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
    { "metrics_path", S_BOTH }, { "signals", S_BOTH }, { "resources", S_BOTH }, { "host", S_BOTH }, { "liveness_path", S_BOTH },
    { "readiness_path", S_BOTH }, { "stop_timeout_ms", S_BOTH },
    { "probe_timeout_ms", S_BOTH }, { "secrets", S_BOTH },
    { "command", S_PROCESS }, { "env", S_PROCESS }, { "start_timeout_ms", S_PROCESS },
    { "steps", S_EXEC }, { "endpoint", S_EXEC }, { "step_timeout_ms", S_EXEC },
    { "max_output", S_EXEC },
    { "qa", S_BOTH }, { "soak", S_BOTH },
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
//  Values

static void
s_int_field (s_loader_t *L, yaml_node_t *node, const char *field, long long min, long long max,
             int *out)
{
    long long number;
    if (al_yaml_integer (L->yaml, node, field, min, max, &number))
        *out = (int) number;
}

//  As s_int_field, saying whether it was set.
static bool
s_integer_into_int (s_loader_t *L, yaml_node_t *node, const char *field, long long min, long long max,
                    int *out)
{
    long long number;
    if (!al_yaml_integer (L->yaml, node, field, min, max, &number))
        return false;
    *out = (int) number;
    return true;
}

static void
s_unsigned_field (s_loader_t *L, yaml_node_t *node, const char *field, long long min,
                  long long max, unsigned *out)
{
    long long number;
    if (al_yaml_integer (L->yaml, node, field, min, max, &number))
        *out = (unsigned) number;
}

//  A decimal number (integer or real; no nan, inf or hex).
static bool
s_real (s_loader_t *L, yaml_node_t *node, const char *field, double min, double max, double *out)
{
    const char *value = al_yaml_scalar (node);
    bool ok = value && node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE
           && !al_yaml_is_null (node);
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
        al_yaml_error (L->yaml, node, field, "expected a number, found %s",
                       value && !al_yaml_is_null (node) ? "a string" : al_yaml_kind_name (node));
        return false;
    }
    if (number < min || number > max) {
        al_yaml_error (L->yaml, node, field, "%s is out of range %.15g..%.15g", value, min, max);
        return false;
    }
    *out = number;
    return true;
}

void *
al_services_pool_alloc (al_services_t *self, size_t size)
{
    return s_alloc (self, size);
}

char *
al_services_pool_strdup (al_services_t *self, const char *text)
{
    return s_strdup (self, text);
}

bool
al_services_real (s_loader_t *L, yaml_node_t *node, const char *field, double min, double max,
                  double *out)
{
    return s_real (L, node, field, min, max, out);
}

//  A path, made absolute against the file's directory; pooled.
static const char *
s_path (s_loader_t *L, yaml_node_t *node, const char *field)
{
    char *path = al_yaml_path (L->yaml, node, field);
    const char *copy = path ? s_strdup (L->self, path) : NULL;
    if (path && !copy)
        al_yaml_out_of_memory (L->yaml);
    free (path);
    return copy;
}

//  An HTTP path: starts with '/', printable ASCII without spaces; pooled.
static const char *
s_http_path (s_loader_t *L, yaml_node_t *node, const char *field)
{
    const char *value = al_yaml_string (L->yaml, node, field, false);
    if (!value)
        return NULL;
    bool ok = value [0] == '/' && strlen (value) <= S_MAX_HTTP_PATH;
    for (const char *p = value; ok && *p; p++)
        ok = *p > 0x20 && *p < 0x7f;
    if (!ok) {
        al_yaml_error (L->yaml, node, field, "\"%.64s\" is not an HTTP path (starts with '/', "
                       "no spaces, at most %d bytes)", value, S_MAX_HTTP_PATH);
        return NULL;
    }
    const char *copy = s_strdup (L->self, value);
    if (!copy)
        al_yaml_out_of_memory (L->yaml);
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
    if (!al_yaml_want_list (L->yaml, node, field))
        return NULL;
    size_t count = al_yaml_list_length (node);
    if (count == 0 && is_argv) {
        al_yaml_error (L->yaml, node, field, "must not be empty (argv[0] is the program)");
        return NULL;
    }
    const char **result = s_alloc (L->self, (count + 1) * sizeof *result);
    if (!result) {
        al_yaml_out_of_memory (L->yaml);
        return NULL;
    }
    bool ok = true;
    for (size_t i = 0; i < count; i++) {
        char item_field [AL_YAML_FIELD_SIZE];
        al_yaml_field_index (item_field, field, i);
        const char *value = al_yaml_string (L->yaml, al_yaml_list_at (L->yaml, node, i), item_field,
                                            !(is_argv && i == 0));
        if (!value) {
            ok = false;
            continue;
        }
        if (!(result [i] = s_strdup (L->self, value))) {
            al_yaml_out_of_memory (L->yaml);
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
        if (!al_yaml_integer (L->yaml, node, field, 1, S_MAX_INSTANCES, &number))
            return;
        for (int slot = first; slot <= last; slot++)
            svc->instances [slot] = (unsigned) number;
    }
    else
    if (kind == S_ENV_STRATEGY) {
        const char *value = al_yaml_string (L->yaml, node, field, false);
        if (!value)
            return;
        Airlock__Strategy strategy = AIRLOCK__STRATEGY__STRATEGY_UNSPECIFIED;
        for (int i = 1; i < (int) (sizeof s_strategy_names / sizeof s_strategy_names [0]); i++)
            if (strcmp (s_strategy_names [i], value) == 0)
                strategy = (Airlock__Strategy) i;
        if (strategy == AIRLOCK__STRATEGY__STRATEGY_UNSPECIFIED) {
            al_yaml_error (L->yaml, node, field, "unknown strategy '%.64s' (rolling, canary, "
                           "blue-green)", value);
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
            al_yaml_error (L->yaml, node, field, "expected a value or a mapping of environments, "
                           "found a list");
        else
            s_env_value (L, svc, kind, node, field, 0);
        return;
    }
    if (!al_yaml_want_mapping (L->yaml, node, field))
        return;
    for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
         pair < node->data.mapping.pairs.top; pair++) {
        if (!al_yaml_first_key (L->yaml, node, pair, field))
            continue;
        yaml_node_t *key = al_yaml_node (L->yaml, pair->key);
        const char *name = al_yaml_scalar (key);
        Airlock__Environment env = al_environment_from_name (name);
        if (env <= AIRLOCK__ENVIRONMENT__ENV_UNSPECIFIED || env >= AL_SERVICE_ENV_SLOTS) {
            al_yaml_error (L->yaml, key, field, "unknown environment '%.64s' (development, staging, "
                           "production)", name);
            continue;
        }
        char env_field [AL_YAML_FIELD_SIZE];
        al_yaml_field_key (env_field, field, name);
        s_env_value (L, svc, kind, al_yaml_node (L->yaml, pair->value), env_field, (int) env);
    }
}

//  ---------------------------------------------------------------------------------
//  Sections of a service

static void
s_rolling (s_loader_t *L, al_service_t *svc, yaml_node_t *node, const char *field)
{
    static const char *const allowed [] = { "batch_size", "max_unavailable", "max_surge", NULL };
    if (!al_yaml_check_map (L->yaml, node, field, allowed, NULL))
        return;
    char sub [AL_YAML_FIELD_SIZE];
    yaml_node_t *value;
    if ((value = al_yaml_get (L->yaml, node, "batch_size"))) {
        al_yaml_field_key (sub, field, "batch_size");
        s_unsigned_field (L, value, sub, 1, S_MAX_INSTANCES, &svc->batch_size);
    }
    if ((value = al_yaml_get (L->yaml, node, "max_unavailable"))) {
        al_yaml_field_key (sub, field, "max_unavailable");
        s_unsigned_field (L, value, sub, 0, S_MAX_INSTANCES, &svc->max_unavailable);
    }
    if ((value = al_yaml_get (L->yaml, node, "max_surge"))) {
        al_yaml_field_key (sub, field, "max_surge");
        s_unsigned_field (L, value, sub, 0, S_MAX_INSTANCES, &svc->max_surge);
    }
    if (svc->max_unavailable + svc->max_surge < 1)
        al_yaml_error (L->yaml, node, field, "max_unavailable + max_surge must be at least 1 "
                       "(a rollout must be able to stop or start an instance)");
}

//  soak: {duration_ms, reason}: the production soak shortened below quality_rules.yaml's,
//  never to nothing, and never without a reason a human can read.
static void
s_soak (s_loader_t *L, al_service_t *svc, yaml_node_t *node, const char *field)
{
    static const char *const required [] = { "duration_ms", "reason", NULL };
    if (!al_yaml_check_map (L->yaml, node, field, required, required))
        return;
    char sub [AL_YAML_FIELD_SIZE];
    yaml_node_t *value;
    if ((value = al_yaml_get (L->yaml, node, "duration_ms"))) {
        al_yaml_field_key (sub, field, "duration_ms");
        s_int_field (L, value, sub, 1, S_MAX_SOAK_MS, &svc->soak_shortened_ms);
    }
    if ((value = al_yaml_get (L->yaml, node, "reason"))) {
        al_yaml_field_key (sub, field, "reason");
        const char *reason = al_yaml_string (L->yaml, value, sub, false);
        size_t length = reason? strlen (reason): 0;
        while (reason && length > 0 && (reason [length - 1] == ' ' || reason [length - 1] == '\t'))
            length--;
        if (reason && length < 8)
            al_yaml_error (L->yaml, value, sub, "say why the soak may be shorter (at least 8 characters)");
        else
        if (reason && !(svc->soak_reason = s_strdup (L->self, reason)))
            al_yaml_out_of_memory (L->yaml);
    }
}

static void
s_canary (s_loader_t *L, al_service_t *svc, yaml_node_t *node, const char *field)
{
    static const char *const allowed [] = { "steps", "step_soak_ms", NULL };
    if (!al_yaml_check_map (L->yaml, node, field, allowed, NULL))
        return;
    char sub [AL_YAML_FIELD_SIZE];
    yaml_node_t *value;
    if ((value = al_yaml_get (L->yaml, node, "step_soak_ms"))) {
        al_yaml_field_key (sub, field, "step_soak_ms");
        s_int_field (L, value, sub, 0, S_MAX_DAY_MS, &svc->canary_step_soak_ms);
    }
    if (!(value = al_yaml_get (L->yaml, node, "steps")))
        return;
    al_yaml_field_key (sub, field, "steps");
    if (!al_yaml_want_list (L->yaml, value, sub))
        return;
    size_t count = al_yaml_list_length (value);
    if (count == 0) {
        al_yaml_error (L->yaml, value, sub, "must not be empty (the last step is 100)");
        return;
    }
    unsigned *steps = s_alloc (L->self, count * sizeof *steps);
    if (!steps) {
        al_yaml_out_of_memory (L->yaml);
        return;
    }
    bool ok = true;
    for (size_t i = 0; i < count; i++) {
        char item [AL_YAML_FIELD_SIZE];
        al_yaml_field_index (item, sub, i);
        yaml_node_t *step = al_yaml_list_at (L->yaml, value, i);
        long long percent;
        if (!al_yaml_integer (L->yaml, step, item, 1, 100, &percent)) {
            ok = false;
            continue;
        }
        steps [i] = (unsigned) percent;
        if (i > 0 && ok && steps [i] <= steps [i - 1]) {
            al_yaml_error (L->yaml, step, item, "%u is not above the step before (%u): steps "
                           "must be strictly ascending", steps [i], steps [i - 1]);
            ok = false;
        }
    }
    if (ok && steps [count - 1] != 100) {
        al_yaml_error (L->yaml, value, sub, "must end with 100");
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
    if (!al_yaml_want_mapping (L->yaml, node, field))
        return;
    size_t count = (size_t) (node->data.mapping.pairs.top - node->data.mapping.pairs.start);
    al_driver_step_t *steps = s_alloc (L->self, count * sizeof *steps);
    if (!steps) {
        al_yaml_out_of_memory (L->yaml);
        return;
    }
    size_t used = 0;
    bool ok = true;
    for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
         pair < node->data.mapping.pairs.top; pair++) {
        if (!al_yaml_first_key (L->yaml, node, pair, field)) {
            ok = false;
            continue;
        }
        yaml_node_t *key = al_yaml_node (L->yaml, pair->key);
        const char *name = al_yaml_scalar (key);
        if (!s_is_name (name, 32)) {
            al_yaml_error (L->yaml, key, field, "step name '%.64s' is not 1 to 32 of "
                           "[A-Za-z0-9_.-] (not starting with '-')", name);
            ok = false;
            continue;
        }
        char step_field [AL_YAML_FIELD_SIZE];
        al_yaml_field_key (step_field, field, name);
        yaml_node_t *step = al_yaml_node (L->yaml, pair->value);
        static const char *const allowed [] = { "argv", "timeout_ms", NULL };
        static const char *const required [] = { "argv", NULL };
        if (!al_yaml_check_map (L->yaml, step, step_field, allowed, required)) {
            ok = false;
            continue;
        }
        al_driver_step_t *out = &steps [used++];
        out->name = s_strdup (L->self, name);
        if (!out->name)
            al_yaml_out_of_memory (L->yaml);
        char sub [AL_YAML_FIELD_SIZE];
        yaml_node_t *value;
        if ((value = al_yaml_get (L->yaml, step, "argv"))) {
            al_yaml_field_key (sub, step_field, "argv");
            out->argv = s_strv (L, value, sub, true);
        }
        if ((value = al_yaml_get (L->yaml, step, "timeout_ms"))) {
            al_yaml_field_key (sub, step_field, "timeout_ms");
            s_int_field (L, value, sub, 100, S_MAX_DAY_MS, &out->timeout_ms);
        }
        if (!out->argv)
            ok = false;
    }
    static const char *const needed [] = { "start", "stop" };
    for (size_t i = 0; i < 2; i++) {
        if (!al_yaml_get (L->yaml, node, needed [i])) {
            al_yaml_error (L->yaml, node, field, "step '%s' is required", needed [i]);
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
            char item [AL_YAML_FIELD_SIZE];
            al_yaml_field_index (item, field, i);
            al_yaml_error (L->yaml, al_yaml_list_at (L->yaml, node, i), item,
                           "expected NAME=value with NAME 1 to 127 of [A-Za-z0-9_.-]");
            ok = false;
        }
    }
    if (ok)
        svc->env = env;
}

//  A list of mappings whose keys are as allowed and required (al_yaml_check_map), each
//  read by read_entry into a pooled, zeroed array of elements of size bytes. The array,
//  with its length in *count_p, when every entry was read without error; else NULL.
typedef bool (s_entry_fn) (s_loader_t *L, void *entries, size_t index, yaml_node_t *entry,
                           const char *item);

static void *
s_entry_list (s_loader_t *L, yaml_node_t *node, const char *field, size_t size,
              const char *const *allowed, const char *const *required, s_entry_fn *read_entry,
              size_t *count_p)
{
    if (!al_yaml_want_list (L->yaml, node, field))
        return NULL;
    size_t count = al_yaml_list_length (node);
    void *entries = s_alloc (L->self, count * size);
    if (!entries) {
        al_yaml_out_of_memory (L->yaml);
        return NULL;
    }
    bool ok = true;
    for (size_t i = 0; i < count; i++) {
        char item [AL_YAML_FIELD_SIZE];
        al_yaml_field_index (item, field, i);
        yaml_node_t *entry = al_yaml_list_at (L->yaml, node, i);
        if (!al_yaml_check_map (L->yaml, entry, item, allowed, required)
        ||  !read_entry (L, entries, i, entry, item))
            ok = false;
    }
    *count_p = count;
    return ok ? entries : NULL;
}

//  secrets[index]: one of the secrets (an s_entry_fn).
static bool
s_secret (s_loader_t *L, void *entries, size_t i, yaml_node_t *entry, const char *item)
{
    al_driver_secret_ref_t *secrets = entries;
    bool ok = true;
    al_driver_secret_ref_t *ref = &secrets [i];
    char sub [AL_YAML_FIELD_SIZE];
    yaml_node_t *value;
    if ((value = al_yaml_get (L->yaml, entry, "name"))) {
        al_yaml_field_key (sub, item, "name");
        const char *name = al_yaml_string (L->yaml, value, sub, false);
        if (name && !s_is_name (name, 64))
            al_yaml_error (L->yaml, value, sub, "'%.64s' is not 1 to 64 of [A-Za-z0-9_.-] "
                           "(not starting with '-')", name);
        else
        if (name)
            ref->name = s_strdup (L->self, name);
    }
    yaml_node_t *env = al_yaml_get (L->yaml, entry, "env");
    yaml_node_t *file = al_yaml_get (L->yaml, entry, "file");
    if ((env != NULL) == (file != NULL)) {
        al_yaml_error (L->yaml, entry, item, "give exactly one of env and file");
        ok = false;
    }
    if (env) {
        al_yaml_field_key (sub, item, "env");
        const char *name = al_yaml_string (L->yaml, env, sub, false);
        if (name && !s_is_variable (name))
            al_yaml_error (L->yaml, env, sub, "'%.64s' is not an environment variable name", name);
        else
        if (name)
            ref->env = s_strdup (L->self, name);
        ok = ok && ref->env;
    }
    if (file) {
        al_yaml_field_key (sub, item, "file");
        ref->file = s_path (L, file, sub);
        ok = ok && ref->file;
    }
    if ((value = al_yaml_get (L->yaml, entry, "as"))) {
        al_yaml_field_key (sub, item, "as");
        const char *as = al_yaml_string (L->yaml, value, sub, false);
        if (as && !s_is_variable (as))
            al_yaml_error (L->yaml, value, sub, "'%.64s' is not an environment variable name", as);
        else
        if (as)
            ref->as = s_strdup (L->self, as);
        ok = ok && ref->as;
    }
    //  Without "as", the child's variable is the name, which must then be one.
    if (ref->name && !ref->as && !s_is_variable (ref->name)) {
        al_yaml_error (L->yaml, entry, item, "name '%s' is not an environment variable name: "
                       "give 'as'", ref->name);
        ok = false;
    }
    if (!ref->name)
        return false;
    const char *variable = ref->as ? ref->as : ref->name;
    for (size_t j = 0; j < i; j++) {
        const al_driver_secret_ref_t *prior = &secrets [j];
        if (prior->name && strcmp (prior->name, ref->name) == 0) {
            al_yaml_error (L->yaml, entry, item, "secret '%s' is given twice", ref->name);
            ok = false;
        }
        else
        if (prior->name && strcmp (prior->as ? prior->as : prior->name, variable) == 0) {
            al_yaml_error (L->yaml, entry, item, "variable %s is also set by secret '%s'", variable,
                           prior->name);
            ok = false;
        }
    }
    return ok;
}

static void
s_secrets (s_loader_t *L, al_service_t *svc, yaml_node_t *node, const char *field)
{
    static const char *const allowed [] = { "name", "env", "file", "as", NULL };
    static const char *const required [] = { "name", NULL };
    size_t count;
    al_driver_secret_ref_t *secrets = s_entry_list (L, node, field, sizeof *secrets, allowed,
                                                    required, s_secret, &count);
    if (secrets) {
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
    yaml_node_t *value = al_yaml_get (L->yaml, entry, "name");
    if (!value)
        return NULL;        // al_yaml_check_map reported it missing
    char sub [AL_YAML_FIELD_SIZE];
    al_yaml_field_key (sub, item, "name");
    const char *name = al_yaml_string (L->yaml, value, sub, false);
    if (!name)
        return NULL;
    if (!s_is_qa_name (name)) {
        al_yaml_error (L->yaml, value, sub, "'%.64s' is not 1 to %d of [a-z0-9_-]", name,
                       AL_SERVICE_QA_NAME_MAX);
        return NULL;
    }
    for (size_t i = 0; i < count; i++) {
        const char *prior = name_at (entries, i);
        if (prior && strcmp (prior, name) == 0) {
            al_yaml_error (L->yaml, value, sub, "%s '%s' is given twice", what, name);
            return NULL;
        }
    }
    const char *copy = s_strdup (L->self, name);
    if (!copy)
        al_yaml_out_of_memory (L->yaml);
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

//  qa.smoke[index]: one smoke check (an s_entry_fn).
static bool
s_qa_smoke_check (s_loader_t *L, void *entries, size_t i, yaml_node_t *entry, const char *item)
{
    al_service_smoke_t *checks = entries;
    bool ok = true;
    al_service_smoke_t *check = &checks [i];
    check->status = AL_SERVICE_DEFAULT_QA_STATUS;
    check->name = s_qa_entry_name (L, entry, item, "smoke check", s_smoke_name_at, checks, i);
    char sub [AL_YAML_FIELD_SIZE];
    yaml_node_t *value;
    if ((value = al_yaml_get (L->yaml, entry, "path"))) {
        al_yaml_field_key (sub, item, "path");
        check->path = s_http_path (L, value, sub);
    }
    if ((value = al_yaml_get (L->yaml, entry, "status"))) {
        al_yaml_field_key (sub, item, "status");
        if (!s_integer_into_int (L, value, sub, 100, 599, &check->status))
            ok = false;
    }
    if ((value = al_yaml_get (L->yaml, entry, "body_contains"))) {
        al_yaml_field_key (sub, item, "body_contains");
        const char *text = al_yaml_string (L->yaml, value, sub, false);
        if (text && strlen (text) > S_MAX_BODY_TEXT)
            al_yaml_error (L->yaml, value, sub, "longer than %d bytes", S_MAX_BODY_TEXT);
        else
        if (text && !(check->body_contains = s_strdup (L->self, text)))
            al_yaml_out_of_memory (L->yaml);
        if (!check->body_contains)
            ok = false;
    }
    if (!check->name || !check->path)
        ok = false;
    return ok;
}

static void
s_qa_smoke (s_loader_t *L, al_service_t *svc, yaml_node_t *node, const char *field)
{
    static const char *const allowed [] = { "name", "path", "status", "body_contains", NULL };
    static const char *const required [] = { "name", "path", NULL };
    size_t count;
    al_service_smoke_t *checks = s_entry_list (L, node, field, sizeof *checks, allowed, required,
                                               s_qa_smoke_check, &count);
    if (checks) {
        svc->qa_smoke = checks;
        svc->qa_smoke_count = count;
    }
}

//  qa.suites[index]: one command suite (an s_entry_fn).
static bool
s_qa_suite (s_loader_t *L, void *entries, size_t i, yaml_node_t *entry, const char *item)
{
    al_service_suite_t *suites = entries;
    bool ok = true;
    al_service_suite_t *suite = &suites [i];
    suite->timeout_ms = AL_SERVICE_DEFAULT_QA_SUITE_TIMEOUT_MS;
    suite->name = s_qa_entry_name (L, entry, item, "suite", s_suite_name_at, suites, i);
    char sub [AL_YAML_FIELD_SIZE];
    yaml_node_t *value;
    if ((value = al_yaml_get (L->yaml, entry, "argv"))) {
        al_yaml_field_key (sub, item, "argv");
        suite->argv = s_strv (L, value, sub, true);
    }
    if ((value = al_yaml_get (L->yaml, entry, "junit"))) {
        al_yaml_field_key (sub, item, "junit");
        suite->junit = s_path (L, value, sub);
        //  Two suites writing one report would count each other's tests.
        for (size_t j = 0; suite->junit && j < i; j++)
            if (suites [j].junit && strcmp (suites [j].junit, suite->junit) == 0) {
                al_yaml_error (L->yaml, value, sub, "%s is also the report of suite '%s'",
                               suite->junit, suites [j].name ? suites [j].name : "?");
                suite->junit = NULL;
            }
        if (!suite->junit)
            ok = false;
    }
    if ((value = al_yaml_get (L->yaml, entry, "timeout_ms"))) {
        al_yaml_field_key (sub, item, "timeout_ms");
        if (!s_integer_into_int (L, value, sub, 100, S_MAX_DAY_MS, &suite->timeout_ms))
            ok = false;
    }
    if (!suite->name || !suite->argv)
        ok = false;
    return ok;
}

static void
s_qa_suites (s_loader_t *L, al_service_t *svc, yaml_node_t *node, const char *field)
{
    static const char *const allowed [] = { "name", "argv", "junit", "timeout_ms", NULL };
    static const char *const required [] = { "name", "argv", NULL };
    size_t count;
    al_service_suite_t *suites = s_entry_list (L, node, field, sizeof *suites, allowed, required,
                                               s_qa_suite, &count);
    if (suites) {
        svc->qa_suites = suites;
        svc->qa_suite_count = count;
    }
}

static const char *
s_scanner_name_at (const void *entries, size_t index)
{
    return ((const al_service_scanner_t *) entries) [index].name;
}

//  qa.scanners[index]: one security scanner (an s_entry_fn).
static bool
s_qa_scanner (s_loader_t *L, void *entries, size_t i, yaml_node_t *entry, const char *item)
{
    static const struct { const char *name; al_service_scan_format_t format; } formats [] = {
        { "sarif", AL_SERVICE_SCAN_SARIF }, { "bandit-json", AL_SERVICE_SCAN_BANDIT_JSON }
    };
    al_service_scanner_t *scanners = entries;
    al_service_scanner_t *scanner = &scanners [i];
    bool ok = true;
    scanner->timeout_ms = AL_SERVICE_DEFAULT_QA_SUITE_TIMEOUT_MS;
    scanner->name = s_qa_entry_name (L, entry, item, "scanner", s_scanner_name_at, scanners, i);
    char sub [AL_YAML_FIELD_SIZE];
    yaml_node_t *value;
    if ((value = al_yaml_get (L->yaml, entry, "argv"))) {
        al_yaml_field_key (sub, item, "argv");
        scanner->argv = s_strv (L, value, sub, true);
    }
    if ((value = al_yaml_get (L->yaml, entry, "format"))) {
        al_yaml_field_key (sub, item, "format");
        const char *name = al_yaml_string (L->yaml, value, sub, false);
        for (size_t f = 0; name && !scanner->format_name && f < sizeof formats / sizeof formats [0]; f++)
            if (strcmp (name, formats [f].name) == 0) {
                scanner->format = formats [f].format;
                scanner->format_name = formats [f].name;
            }
        if (name && !scanner->format_name)
            al_yaml_error (L->yaml, value, sub, "'%.64s' is not sarif or bandit-json", name);
    }
    if ((value = al_yaml_get (L->yaml, entry, "output"))) {
        al_yaml_field_key (sub, item, "output");
        scanner->output = s_path (L, value, sub);
        //  Two scanners writing one report would count each other's findings.
        for (size_t j = 0; scanner->output && j < i; j++)
            if (scanners [j].output && strcmp (scanners [j].output, scanner->output) == 0) {
                al_yaml_error (L->yaml, value, sub, "%s is also the report of scanner '%s'",
                               scanner->output, scanners [j].name ? scanners [j].name : "?");
                scanner->output = NULL;
            }
    }
    if ((value = al_yaml_get (L->yaml, entry, "timeout_ms"))) {
        al_yaml_field_key (sub, item, "timeout_ms");
        if (!s_integer_into_int (L, value, sub, 100, S_MAX_DAY_MS, &scanner->timeout_ms))
            ok = false;
    }
    return ok && scanner->name && scanner->argv && scanner->format_name && scanner->output;
}

static void
s_qa_scanners (s_loader_t *L, al_service_t *svc, yaml_node_t *node, const char *field)
{
    static const char *const allowed [] = { "name", "argv", "format", "output", "timeout_ms", NULL };
    static const char *const required [] = { "name", "argv", "format", "output", NULL };
    size_t count;
    al_service_scanner_t *scanners = s_entry_list (L, node, field, sizeof *scanners, allowed, required,
                                                   s_qa_scanner, &count);
    if (scanners) {
        svc->qa_scanners = scanners;
        svc->qa_scanner_count = count;
    }
}

static void
s_qa (s_loader_t *L, al_service_t *svc, yaml_node_t *node, const char *field)
{
    static const char *const allowed [] = { "smoke", "suites", "scanners", "timeout_ms", NULL };
    if (!al_yaml_check_map (L->yaml, node, field, allowed, NULL))
        return;
    char sub [AL_YAML_FIELD_SIZE];
    yaml_node_t *value;
    if ((value = al_yaml_get (L->yaml, node, "timeout_ms"))) {
        al_yaml_field_key (sub, field, "timeout_ms");
        s_int_field (L, value, sub, 10, 600000, &svc->qa_timeout_ms);
    }
    if ((value = al_yaml_get (L->yaml, node, "smoke"))) {
        al_yaml_field_key (sub, field, "smoke");
        s_qa_smoke (L, svc, value, sub);
    }
    if ((value = al_yaml_get (L->yaml, node, "suites"))) {
        al_yaml_field_key (sub, field, "suites");
        s_qa_suites (L, svc, value, sub);
    }
    if ((value = al_yaml_get (L->yaml, node, "scanners"))) {
        al_yaml_field_key (sub, field, "scanners");
        s_qa_scanners (L, svc, value, sub);
        //  A suite's JUnit report read as a scanner's would be counted twice, wrongly.
        for (size_t i = 0; i < svc->qa_scanner_count; i++)
            for (size_t j = 0; j < svc->qa_suite_count; j++)
                if (svc->qa_suites [j].junit && strcmp (svc->qa_suites [j].junit, svc->qa_scanners [i].output) == 0)
                    al_yaml_error (L->yaml, value, sub, "%s is the report of scanner '%s' and of suite '%s'",
                                   svc->qa_scanners [i].output, svc->qa_scanners [i].name, svc->qa_suites [j].name);
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
        al_yaml_out_of_memory (L->yaml);
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
    al_services_signal_defaults (svc);
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
    if (strcmp (name, "soak") == 0)
        s_soak (L, svc, value, field);
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
        const char *mode = al_yaml_string (L->yaml, value, field, false);
        if (mode && strcmp (mode, "down") == 0)
            svc->data_rollback = AL_SERVICE_DATA_ROLLBACK_DOWN;
        else
        if (mode && strcmp (mode, "restore") == 0)
            svc->data_rollback = AL_SERVICE_DATA_ROLLBACK_RESTORE;
        else
        if (mode)
            al_yaml_error (L->yaml, value, field, "unknown mode '%.64s' (down, restore)", mode);
    }
    else
    if (strcmp (name, "signals") == 0)
        al_services_signals (L, svc, value, field);
    else
    if (strcmp (name, "resources") == 0)
        al_services_resources (L, svc, value, field);
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
        const char *host = al_yaml_string (L->yaml, value, field, false);
        struct in_addr address;
        if (host && inet_pton (AF_INET, host, &address) != 1)
            al_yaml_error (L->yaml, value, field, "'%.64s' is not an IPv4 address", host);
        else
        if (host && !(svc->host = s_strdup (L->self, host)))
            al_yaml_out_of_memory (L->yaml);
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
        const char *endpoint = al_yaml_string (L->yaml, value, field, false);
        if (endpoint && !(svc->endpoint = s_strdup (L->self, endpoint)))
            al_yaml_out_of_memory (L->yaml);
    }
    else
    if (strcmp (name, "step_timeout_ms") == 0)
        s_int_field (L, value, field, 100, S_MAX_DAY_MS, &svc->step_timeout_ms);
    else
    if (strcmp (name, "max_output") == 0) {
        long long bytes;
        if (al_yaml_integer (L->yaml, value, field, 1024, 64LL * 1024 * 1024, &bytes))
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
    const char *name = al_yaml_scalar (key);
    assert (name);          // al_yaml_first_key let only scalar keys through
    char field [AL_YAML_FIELD_SIZE];
    snprintf (field, sizeof field, "services.%.64s", name);
    svc->line = (size_t) key->start_mark.line + 1;
    if (!s_is_service_name (name))
        al_yaml_error (L->yaml, key, field, "not a service name: 1 to %d of [a-z0-9-], not "
                       "starting with '-'", AL_SERVICE_NAME_MAX);
    else
    if (!(svc->name = s_strdup (L->self, name)))
        al_yaml_out_of_memory (L->yaml);
    s_defaults (svc);
    if (!al_yaml_want_mapping (L->yaml, node, field))
        return;

    //  The driver decides which keys are allowed: read it first.
    s_owner_t driver = S_BOTH;
    yaml_node_t *value = al_yaml_get (L->yaml, node, "driver");
    char sub [AL_YAML_FIELD_SIZE];
    al_yaml_field_key (sub, field, "driver");
    if (!value)
        al_yaml_error (L->yaml, node, field, "missing key 'driver' (process or exec)");
    else {
        const char *text = al_yaml_string (L->yaml, value, sub, false);
        if (text && strcmp (text, "process") == 0)
            driver = S_PROCESS;
        else
        if (text && strcmp (text, "exec") == 0)
            driver = S_EXEC;
        else
        if (text)
            al_yaml_error (L->yaml, value, sub, "unknown driver '%.64s' (process, exec)", text);
        svc->driver = driver == S_PROCESS ? "process" : driver == S_EXEC ? "exec" : NULL;
    }
    for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
         pair < node->data.mapping.pairs.top; pair++) {
        if (!al_yaml_first_key (L->yaml, node, pair, field))
            continue;
        yaml_node_t *key_node = al_yaml_node (L->yaml, pair->key);
        const char *key_name = al_yaml_scalar (key_node);
        const s_service_key_t *known = s_service_key (key_name);
        if (!known) {
            al_yaml_error (L->yaml, key_node, field, "unknown key '%.64s'", key_name);
            continue;
        }
        al_yaml_field_key (sub, field, key_name);
        if (known->owner != S_BOTH && driver != S_BOTH && known->owner != driver) {
            al_yaml_error (L->yaml, key_node, sub, "a key of the %s driver; this service uses the "
                           "%s driver", known->owner == S_PROCESS ? "process" : "exec", svc->driver);
            continue;
        }
        s_service_value (L, svc, key_name, al_yaml_node (L->yaml, pair->value), sub);
    }

    s_qa_defaults (L, svc);

    //  What each driver needs, and its defaults.
    if (driver == S_PROCESS) {
        if (!al_yaml_get (L->yaml, node, "command"))
            al_yaml_error (L->yaml, node, field, "a process service needs 'command' (the argv of "
                           "an instance)");
        if (!svc->start_timeout_ms)
            svc->start_timeout_ms = AL_DRIVER_DEFAULT_START_TIMEOUT_MS;
    }
    if (driver == S_EXEC) {
        if (!al_yaml_get (L->yaml, node, "steps"))
            al_yaml_error (L->yaml, node, field, "an exec service needs 'steps' with 'start' and "
                           "'stop'");
        if (!svc->step_timeout_ms)
            svc->step_timeout_ms = AL_DRIVER_DEFAULT_STEP_TIMEOUT_MS;
        if (!svc->max_output)
            svc->max_output = AL_DRIVER_DEFAULT_MAX_OUTPUT;
        //  The monitor scrapes the instances the process driver registers; an exec
        //  service's instances are the operator's platform's, so its soak evidence is
        //  the probes unless told otherwise, and "monitor" would fail every soak closed.
        if (!al_yaml_get (L->yaml, node, "signals"))
            svc->signals = AL_SERVICE_SIGNALS_PROBES;
        else
        if (svc->signals == AL_SERVICE_SIGNALS_MONITOR)
            al_yaml_error (L->yaml, al_yaml_get (L->yaml, node, "signals"), field, "signals: "
                           "monitor needs the process driver (the monitor scrapes the instances "
                           "it registers); an exec service uses signals: probes");
    }
    al_services_signals_check (L, svc, node, field);
}

//  ---------------------------------------------------------------------------------
//  The file

static void
s_root (s_loader_t *L, yaml_node_t *root)
{
    static const char *const allowed [] = { "version", "services", NULL };
    static const char *const required [] = { "version", "services", NULL };
    if (!al_yaml_check_map (L->yaml, root, NULL, allowed, required))
        return;
    yaml_node_t *version = al_yaml_get (L->yaml, root, "version");
    long long number;
    if (version && al_yaml_integer (L->yaml, version, "version", 1, 1000000, &number)
    &&  number != 1)
        al_yaml_error (L->yaml, version, "version", "unsupported version %lld (this airlock "
                       "reads 1)", number);
    yaml_node_t *services = al_yaml_get (L->yaml, root, "services");
    if (!services || !al_yaml_want_mapping (L->yaml, services, "services"))
        return;
    size_t count = (size_t) (services->data.mapping.pairs.top - services->data.mapping.pairs.start);
    L->self->services = s_alloc (L->self, count * sizeof (al_service_t));
    if (!L->self->services) {
        al_yaml_out_of_memory (L->yaml);
        return;
    }
    for (yaml_node_pair_t *pair = services->data.mapping.pairs.start;
         pair < services->data.mapping.pairs.top; pair++) {
        if (!al_yaml_first_key (L->yaml, services, pair, "services"))
            continue;
        al_service_t *svc = &L->self->services [L->self->count++];
        s_service (L, svc, al_yaml_node (L->yaml, pair->key), al_yaml_node (L->yaml, pair->value));
    }
}

al_services_t *
al_services_load (const char *path, char *error, size_t error_size)
{
    assert (path);
    s_loader_t loader = { .yaml = al_yaml_new (path, error, error_size) };
    s_loader_t *L = &loader;
    if (!L->yaml)
        return NULL;
    L->self = calloc (1, sizeof (al_services_t));
    if (!L->self || !(L->self->path = strdup (path)))
        al_yaml_out_of_memory (L->yaml);
    else {
        yaml_node_t *root = al_yaml_load (L->yaml, S_MAX_FILE_SIZE,
                                          "empty file: version and services are required");
        if (root) {
            s_root (L, root);
            al_yaml_end (L->yaml, "services.yaml");
        }
    }
    if (al_yaml_report (L->yaml, error, error_size))
        al_services_destroy (&L->self);
    al_yaml_destroy (&L->yaml);
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
