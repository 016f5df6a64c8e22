/*  al_services_values.c: the typed values of services.yaml: the set's pool (every
    pointer of an al_service_t comes from it), integers and reals in range, paths
    (absolute against the file's directory), HTTP paths, names and variables, lists
    of strings, and values given per environment (instances, strategy, database).
    Errors are recorded in the loader's al_yaml_t and the walk goes on.
*/
#include "deploy/al_services_int.h"
#include "base/al_yaml.h"
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

typedef al_services_loader_t s_loader_t;

#define S_MAX_HTTP_PATH     1024

//  ---------------------------------------------------------------------------------
//  The pool

//  Zeroed memory owned by self; NULL when out of memory.
void *
al_services_pool_alloc (al_services_t *self, size_t size)
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

char *
al_services_pool_strdup (al_services_t *self, const char *text)
{
    size_t size = strlen (text) + 1;
    char *copy = al_services_pool_alloc (self, size);
    if (copy)
        memcpy (copy, text, size);
    return copy;
}

//  ---------------------------------------------------------------------------------
//  Values

void
al_services_int_field (s_loader_t *L, yaml_node_t *node, const char *field, long long min,
                       long long max, int *out)
{
    long long number;
    if (al_yaml_integer (L->yaml, node, field, min, max, &number))
        *out = (int) number;
}

//  As al_services_int_field, saying whether it was set.
bool
al_services_integer_into_int (s_loader_t *L, yaml_node_t *node, const char *field, long long min,
                              long long max, int *out)
{
    long long number;
    if (!al_yaml_integer (L->yaml, node, field, min, max, &number))
        return false;
    *out = (int) number;
    return true;
}

void
al_services_unsigned_field (s_loader_t *L, yaml_node_t *node, const char *field, long long min,
                            long long max, unsigned *out)
{
    long long number;
    if (al_yaml_integer (L->yaml, node, field, min, max, &number))
        *out = (unsigned) number;
}

//  A decimal number (integer or real; no nan, inf or hex).
bool
al_services_real (s_loader_t *L, yaml_node_t *node, const char *field, double min, double max,
                  double *out)
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

//  A path, made absolute against the file's directory; pooled.
const char *
al_services_abs_path (s_loader_t *L, yaml_node_t *node, const char *field)
{
    char *path = al_yaml_path (L->yaml, node, field);
    const char *copy = path ? al_services_pool_strdup (L->self, path) : NULL;
    if (path && !copy)
        al_yaml_out_of_memory (L->yaml);
    free (path);
    return copy;
}

//  An HTTP path: starts with '/', printable ASCII without spaces; pooled.
const char *
al_services_http_path (s_loader_t *L, yaml_node_t *node, const char *field)
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
    const char *copy = al_services_pool_strdup (L->self, value);
    if (!copy)
        al_yaml_out_of_memory (L->yaml);
    return copy;
}

//  1 to max of [A-Za-z0-9_.-], not starting with '-' (the drivers' names).
bool
al_services_is_name (const char *value, size_t max)
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
bool
al_services_is_variable (const char *value)
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
bool
al_services_is_service_name (const char *value)
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
const char *const *
al_services_strv (s_loader_t *L, yaml_node_t *node, const char *field, bool is_argv)
{
    if (!al_yaml_want_list (L->yaml, node, field))
        return NULL;
    size_t count = al_yaml_list_length (node);
    if (count == 0 && is_argv) {
        al_yaml_error (L->yaml, node, field, "must not be empty (argv[0] is the program)");
        return NULL;
    }
    const char **result = al_services_pool_alloc (L->self, (count + 1) * sizeof *result);
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
        if (!(result [i] = al_services_pool_strdup (L->self, value))) {
            al_yaml_out_of_memory (L->yaml);
            return NULL;
        }
    }
    return ok ? result : NULL;
}

//  ---------------------------------------------------------------------------------
//  Per-environment values


static const char *s_strategy_names [] = {
    [AIRLOCK__STRATEGY__STRATEGY_ROLLING] = "rolling",
    [AIRLOCK__STRATEGY__STRATEGY_CANARY] = "canary",
    [AIRLOCK__STRATEGY__STRATEGY_BLUE_GREEN] = "blue-green",
};

//  One value for one environment slot of svc (or every slot when env is 0).
static void
s_env_value (s_loader_t *L, al_service_t *svc, al_services_env_kind_t kind, yaml_node_t *node,
             const char *field, int env)
{
    int first = env ? env : 1, last = env ? env : AL_SERVICE_ENV_SLOTS - 1;
    if (kind == AL_SERVICES_ENV_UNSIGNED) {
        long long number;
        if (!al_yaml_integer (L->yaml, node, field, 1, AL_SERVICES_MAX_INSTANCES, &number))
            return;
        for (int slot = first; slot <= last; slot++)
            svc->instances [slot] = (unsigned) number;
    }
    else
    if (kind == AL_SERVICES_ENV_STRATEGY) {
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
        const char *path = al_services_abs_path (L, node, field);
        if (path)
            svc->database [env] = path;
    }
}

//  A value per environment: one scalar for all (unless kind is AL_SERVICES_ENV_PATH), or a
//  mapping from environment names to values.
void
al_services_per_env (s_loader_t *L, al_service_t *svc, al_services_env_kind_t kind,
                     yaml_node_t *node, const char *field)
{
    if (node->type != YAML_MAPPING_NODE && kind != AL_SERVICES_ENV_PATH) {
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

