/*  al_policy_yaml.c: the policy loader's error list, its walk over base/al_yaml (the
    product's one YAML walker) and the value types only policies have (flags, numbers,
    durations).

    Part of the policy engine; see policies/al_policy.c for its rules and
    policies/al_policy_int.h for how its files divide the work.
*/
#include "policies/al_policy_int.h"

//  ---------------------------------------------------------------------------------
//  Errors

void
policy_errors_push (al_policy_errors_t *errors, const char *text)
{
    if (errors->count == errors->capacity) {
        size_t capacity = errors->capacity ? errors->capacity * 2 : 16;
        char **items = realloc (errors->items, capacity * sizeof *items);
        if (!items)
            return;
        errors->items = items;
        errors->capacity = capacity;
    }
    char *copy = strdup (text);
    if (copy)
        errors->items [errors->count++] = copy;
}

//  Adds an error unless S_MAX_ERRORS were already collected (hostile input can make
//  arbitrarily many).
void
policy_errors_add (al_policy_errors_t *errors, const char *text)
{
    if (errors->count >= S_MAX_ERRORS)
        errors->truncated = true;
    else
        policy_errors_push (errors, text);
}

size_t
al_policy_errors_count (const al_policy_errors_t *errors)
{
    return errors ? errors->count : 0;
}

const char *
al_policy_errors_at (const al_policy_errors_t *errors, size_t index)
{
    assert (errors);
    assert (index < errors->count);
    return errors->items [index];
}

void
al_policy_errors_destroy (al_policy_errors_t **errors_p)
{
    assert (errors_p);
    al_policy_errors_t *errors = *errors_p;
    if (!errors)
        return;
    for (size_t i = 0; i < errors->count; i++)
        free (errors->items [i]);
    free (errors->items);
    free (errors);
    *errors_p = NULL;
}

const char *
al_policy_file_name (size_t index)
{
    return index < AL_POLICY_FILE_COUNT ? s_file_names [index] : NULL;
}

//  ---------------------------------------------------------------------------------
//  YAML node access: the product's one walker, base/al_yaml, with the policy files'
//  field names ("roles.deployer.grants") in its messages.

yaml_node_t *
policy_node (s_loader_t *L, int index)
{
    return al_yaml_node (L->yaml, index);
}

const char *
policy_scalar (yaml_node_t *node)
{
    return al_yaml_scalar (node);
}

static bool
s_is_plain (yaml_node_t *node)
{
    return node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

//  Checks that node is a mapping with only allowed keys, no duplicates, and every
//  required key. allowed and required are NULL-terminated; allowed NULL means any key
//  (a map keyed by names), required may be NULL.
bool
policy_check_map (s_loader_t *L, yaml_node_t *node, const char *what,
                  const char *const *allowed, const char *const *required)
{
    if (allowed)
        return al_yaml_check_map (L->yaml, node, what, allowed, required);
    //  Keyed by names: the keys are the loader's to check, once each.
    assert (!required);
    if (!al_yaml_want_mapping (L->yaml, node, what))
        return false;
    for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
         pair < node->data.mapping.pairs.top; pair++)
        al_yaml_first_key (L->yaml, node, pair, what);
    return true;
}

//  The value of key in a mapping (first occurrence), or NULL.
yaml_node_t *
policy_get (s_loader_t *L, yaml_node_t *map, const char *key)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return NULL;
    return al_yaml_get (L->yaml, map, key);
}

bool
policy_want_list (s_loader_t *L, yaml_node_t *node, const char *what)
{
    return al_yaml_want_list (L->yaml, node, what);
}

size_t
policy_list_length (yaml_node_t *list)
{
    return al_yaml_list_length (list);
}

//  A string value (any scalar style, no NUL bytes, not empty).
const char *
policy_string (s_loader_t *L, yaml_node_t *node, const char *what)
{
    return al_yaml_string (L->yaml, node, what, false);
}

bool
policy_bool (s_loader_t *L, yaml_node_t *node, const char *what, bool *out)
{
    const char *value = policy_scalar (node);
    if (value && s_is_plain (node) && strcmp (value, "true") == 0)
        *out = true;
    else
    if (value && s_is_plain (node) && strcmp (value, "false") == 0)
        *out = false;
    else {
        policy_error (L, node, "%s: expected true or false", what);
        return false;
    }
    return true;
}

bool
policy_parse_integer (const char *text, long long *out)
{
    if (!*text)
        return false;
    char *end;
    errno = 0;
    long long value = strtoll (text, &end, 10);
    if (errno || *end || !(text [0] == '-' || text [0] == '+' || (text [0] >= '0' && text [0] <= '9')))
        return false;
    *out = value;
    return true;
}

bool
policy_parse_real (const char *text, double *out)
{
    if (!*text)
        return false;
    char *end;
    errno = 0;
    double value = strtod (text, &end);
    if (errno || *end || !isfinite (value))
        return false;
    //  Only decimal notation: no "nan", "inf", hex floats.
    for (const char *p = text; *p; p++)
        if (!strchr ("0123456789+-.eE", *p))
            return false;
    *out = value;
    return true;
}

bool
policy_integer (s_loader_t *L, yaml_node_t *node, const char *what, long long min, long long max,
                long long *out)
{
    return al_yaml_integer (L->yaml, node, what, min, max, out);
}

//  A number (integer or real). min_exclusive: the value must be strictly above min.
bool
policy_number (s_loader_t *L, yaml_node_t *node, const char *what, double min, bool min_exclusive,
               double max, double *out)
{
    const char *value = policy_scalar (node);
    double number;
    if (!value || !s_is_plain (node) || !policy_parse_real (value, &number)) {
        policy_error (L, node, "%s: expected a number", what);
        return false;
    }
    if (number < min || (min_exclusive && number == min) || number > max) {
        if (min_exclusive)
            policy_error (L, node, "%s: %s is out of range (above %g, at most %g)", what, value, min, max);
        else
            policy_error (L, node, "%s: %s is out of range %g..%g", what, value, min, max);
        return false;
    }
    *out = number;
    return true;
}

//  A duration such as 90s, 30m, 4h, 1d, 1h30m, 500ms, in milliseconds.
bool
policy_duration (s_loader_t *L, yaml_node_t *node, const char *what, int64_t min_ms, int64_t max_ms,
                 int64_t *out_ms)
{
    const char *text = policy_scalar (node);
    bool valid = text && *text;
    int64_t total = 0;
    const char *p = text;
    while (valid && *p) {
        if (*p < '0' || *p > '9') {
            valid = false;
            break;
        }
        int64_t number = 0;
        while (*p >= '0' && *p <= '9' && number < INT64_C (1000000000))
            number = number * 10 + (*p++ - '0');
        int64_t unit;
        if (strncmp (p, "ms", 2) == 0) {
            unit = 1;
            p += 2;
        }
        else
        if (*p == 's') { unit = 1000; p++; }
        else
        if (*p == 'm') { unit = 60000; p++; }
        else
        if (*p == 'h') { unit = 3600000; p++; }
        else
        if (*p == 'd') { unit = 86400000; p++; }
        else {
            valid = false;
            break;
        }
        //  Bounded so that no number of components can overflow.
        if (number >= INT64_C (1000000000) || total > INT64_C (1) << 60) {
            valid = false;
            break;
        }
        total += number * unit;
    }
    if (!valid) {
        policy_error (L, node, "%s: expected a duration such as 90s, 30m, 4h or 1h30m", what);
        return false;
    }
    if (total < min_ms || total > max_ms) {
        policy_error (L, node, "%s: %s is out of range", what, text);
        return false;
    }
    *out_ms = total;
    return true;
}

//  Index of value in a NULL-terminated name table, or -1.
int
policy_lookup (const char *const *names, size_t count, const char *value)
{
    for (size_t i = 0; i < count && names [i]; i++)
        if (strcmp (names [i], value) == 0)
            return (int) i;
    return -1;
}

bool
policy_valid_name (const char *name)
{
    size_t length = strlen (name);
    if (length == 0 || length > S_NAME_MAX)
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
            return false;
    return name [0] != '-';
}
