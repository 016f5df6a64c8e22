/*  al_policy.c: the policy engine: loads a policy directory, validates it, answers queries.

    Loading parses each YAML file with libyaml's document API and keeps the documents:
    the policy's strings point into them, so a loaded policy owns its documents and no
    string is copied. Validation never stops at the first error: every
    check reports "path:line:column: what is wrong" into an error list and carries on,
    so `airlock policy check` lists all of them. A policy is returned only when that
    list is empty. After al_policy_load returns, nothing in the policy changes: queries
    take a const pointer and are safe from any number of threads.

    Time: the calendar's days and hours are local time in an IANA zone. Local time is
    computed with the C library (setenv TZ + tzset + localtime_r) under one process-wide
    mutex that also restores the previous TZ, because glibc keeps one zone per process.
    Code elsewhere in airlock uses UTC only (gmtime_r, time()); any code that called
    localtime, mktime or getenv ("TZ") from another thread at the same time would race
    with this, which is why airlock does not.

    The digest is SHA-256 of a canonical JSON form of the seven documents (an object
    keyed by file name, keys sorted, compact; plain scalars typed as YAML core schema:
    integers, reals, true/false, null; everything else a string), so comments, layout,
    key order and the quoting of strings never change it.
*/
#include "policies/al_policy.h"
#include <assert.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#define S_MAX_FILE_SIZE     (1024 * 1024)
#define S_MAX_ERRORS        500
#define S_MAX_TYPE_ID       64        // message type ids are proto field numbers < 64
#define S_ENV_COUNT         4         // bus (unspecified), development, staging, production
#define S_TYPE_COUNT        6         // deployment types 1..5
#define S_NAME_MAX          63

//  roles.yaml is loaded first: the other files refer to its roles.
#define S_FILE_ROLES        0

static const char *s_file_names [AL_POLICY_FILE_COUNT] = {
    "roles.yaml", "identities.yaml", "approvers.yaml", "deployment_types.yaml",
    "constraints.yaml", "dependencies.yaml", "quality_rules.yaml"
};

static const char *s_env_names [S_ENV_COUNT] = { "bus", "development", "staging", "production" };
static const char *s_day_names [7] = {
    "sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"
};

//  Seed 001 capability cells: the allowed (✅) ones, then the denied (❌/N/A) ones.
static const char *s_caps_allowed [] = {
    "write_code", "create_migrations", "write_tests", "run_tests", "write_docs",
    "coordinate", "request_deploy", NULL
};
static const char *s_caps_denied [] = {
    "cannot_deploy", "cannot_run", "cannot_execute", "forbidden", "not_applicable", NULL
};

struct al_policy_errors_t {
    char **items;
    size_t count;
    size_t capacity;
    bool truncated;
};

typedef struct {
    unsigned line, column;      // 1-based position of the grant; line 0 = not granted
} s_grant_t;

typedef struct {
    const char *name;
    const char *kind;
    const char *capability [S_ENV_COUNT];
    bool capability_allowed [S_ENV_COUNT];
    s_grant_t grant [S_MAX_TYPE_ID][S_ENV_COUNT];
} s_role_t;

typedef struct {
    const char *key;
    const char *identity;
    const char *role;
    const char *person;             // the human behind it (approvers.yaml name), or NULL
} s_identity_t;

typedef struct {
    const char *name;
    const char **roles;
    size_t role_count;
} s_approver_t;

typedef struct {
    uint8_t bytes [32];
    const char *id;
    size_t approver;
    bool revoked;
} s_key_t;

typedef struct {
    al_policy_quorum_entry_t *entries;
    size_t count;
} s_quorum_t;

typedef struct {
    bool present;
    const char *description;
    s_quorum_t quorum;
    s_quorum_t skip_staging;
    bool requires_window;
    bool requires_staging;
} s_type_t;

typedef struct {
    unsigned days;              // bit per tm_wday
    int start_min, end_min;     // minutes since local midnight, end exclusive
    unsigned line;
} s_window_t;

typedef struct {
    int year, month, day;
    unsigned line;
} s_date_t;

typedef enum { S_MONTH_END_OFF, S_MONTH_END_FLAG, S_MONTH_END_FREEZE } s_month_end_t;

struct al_policy_t {
    char *dir;
    yaml_document_t docs [AL_POLICY_FILE_COUNT];
    bool doc_loaded [AL_POLICY_FILE_COUNT];

    //  roles.yaml
    s_role_t *roles;
    size_t role_count;
    s_grant_t common [S_MAX_TYPE_ID][S_ENV_COUNT];
    const char *qa_authority;       // the role whose QaReport is a release's verdict; NULL = none
    //  identities.yaml
    s_identity_t *identities;
    size_t identity_count;
    //  approvers.yaml
    s_approver_t *approvers;
    size_t approver_count;
    s_key_t *keys;
    size_t key_count;
    //  deployment_types.yaml
    s_type_t types [S_TYPE_COUNT];
    s_quorum_t break_glass;
    int64_t approval_expiry_s;
    bool self_approval_forbidden;
    //  constraints.yaml
    unsigned strategies [S_ENV_COUNT];      // bit per Airlock__Strategy
    unsigned max_instances [S_ENV_COUNT];
    double budget [S_ENV_COUNT];
    double budget_alert_percent [S_ENV_COUNT];
    const char *timezone;
    unsigned calendar_envs;                 // bit per environment
    s_window_t *windows;
    size_t window_count;
    unsigned freeze_days;
    unsigned freeze_days_line;
    s_date_t *holidays;
    size_t holiday_count;
    s_month_end_t month_end;
    //  dependencies.yaml
    Airlock__Step steps [8];
    size_t step_count;
    int64_t qa_max_age_s;
    int64_t signal_max_age_s;
    //  quality_rules.yaml
    al_policy_thresholds_t thresholds;
    al_policy_scan_limits_t scan_limits;
    al_policy_soak_t soak;
    int64_t *checkpoints;
    const char **done_ids;
    const char **done_texts;
    size_t done_count;
    //  digest
    char *canonical;
    uint8_t digest [32];
    char digest_hex [65];
};

typedef struct {
    al_policy_t *policy;
    al_policy_errors_t *errors;
    char *path;                 // its path, for messages
    yaml_document_t *doc;
    bool roles_ok;              // roles.yaml loaded: role references can be checked
} s_loader_t;

//  ---------------------------------------------------------------------------------
//  Errors

static void
s_errors_push (al_policy_errors_t *errors, const char *text)
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
static void
s_errors_add (al_policy_errors_t *errors, const char *text)
{
    if (errors->count >= S_MAX_ERRORS)
        errors->truncated = true;
    else
        s_errors_push (errors, text);
}

static void
s_error_at (s_loader_t *L, const char *path, unsigned line, unsigned column, const char *format, ...)
{
    char message [512];
    va_list args;
    va_start (args, format);
    vsnprintf (message, sizeof message, format, args);
    va_end (args);
    char text [1024];
    if (line)
        snprintf (text, sizeof text, "%s:%u:%u: %s", path, line, column, message);
    else
        snprintf (text, sizeof text, "%s: %s", path, message);
    s_errors_add (L->errors, text);
}

#define s_line(node) ((unsigned) (node)->start_mark.line + 1)
#define s_col(node) ((unsigned) (node)->start_mark.column + 1)
#define s_error(L, node, ...) \
    s_error_at ((L), (L)->path, s_line (node), s_col (node), __VA_ARGS__)

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
//  YAML node access

static yaml_node_t *
s_node (s_loader_t *L, int index)
{
    return yaml_document_get_node (L->doc, index);
}

static const char *
s_kind_name (yaml_node_t *node)
{
    switch (node->type) {
        case YAML_MAPPING_NODE: return "a mapping";
        case YAML_SEQUENCE_NODE: return "a list";
        default: return "a scalar";
    }
}

static const char *
s_scalar (yaml_node_t *node)
{
    return node && node->type == YAML_SCALAR_NODE ? (const char *) node->data.scalar.value : NULL;
}

static bool
s_is_plain (yaml_node_t *node)
{
    return node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

//  Checks that node is a mapping with only allowed keys, no duplicates, and every
//  required key. allowed and required are NULL-terminated; allowed NULL means any key
//  (a map keyed by names), required may be NULL.
static bool
s_check_map (s_loader_t *L, yaml_node_t *node, const char *what,
             const char *const *allowed, const char *const *required)
{
    if (node->type != YAML_MAPPING_NODE) {
        s_error (L, node, "%s: expected a mapping, found %s", what, s_kind_name (node));
        return false;
    }
    for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
         pair < node->data.mapping.pairs.top; pair++) {
        yaml_node_t *key = s_node (L, pair->key);
        const char *name = s_scalar (key);
        if (!name) {
            s_error (L, key, "%s: keys must be scalars", what);
            continue;
        }
        bool known = !allowed;
        for (size_t i = 0; allowed && allowed [i]; i++)
            if (strcmp (allowed [i], name) == 0)
                known = true;
        if (!known)
            s_error (L, key, "unknown key '%s' in %s", name, what);
        for (yaml_node_pair_t *prior = node->data.mapping.pairs.start; prior < pair; prior++) {
            const char *prior_name = s_scalar (s_node (L, prior->key));
            if (prior_name && strcmp (prior_name, name) == 0) {
                s_error (L, key, "duplicate key '%s' in %s (first at line %u)", name, what,
                         s_line (s_node (L, prior->key)));
                break;
            }
        }
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
            s_error (L, node, "missing key '%s' in %s", required [i], what);
    }
    return true;
}

//  The value of key in a mapping (first occurrence), or NULL.
static yaml_node_t *
s_get (s_loader_t *L, yaml_node_t *map, const char *key)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *pair = map->data.mapping.pairs.start;
         pair < map->data.mapping.pairs.top; pair++) {
        const char *name = s_scalar (s_node (L, pair->key));
        if (name && strcmp (name, key) == 0)
            return s_node (L, pair->value);
    }
    return NULL;
}

static bool
s_want_list (s_loader_t *L, yaml_node_t *node, const char *what)
{
    if (node->type != YAML_SEQUENCE_NODE) {
        s_error (L, node, "%s: expected a list, found %s", what, s_kind_name (node));
        return false;
    }
    return true;
}

#define S_FOR_ITEMS(L, list, item) \
    for (yaml_node_item_t *item##_it = (list)->data.sequence.items.start; \
         item##_it < (list)->data.sequence.items.top; item##_it++) \
        for (yaml_node_t *item = s_node ((L), *item##_it); item; item = NULL)

static size_t
s_list_length (yaml_node_t *list)
{
    return (size_t) (list->data.sequence.items.top - list->data.sequence.items.start);
}

//  A string value (any scalar style, no NUL bytes, not empty).
static const char *
s_string (s_loader_t *L, yaml_node_t *node, const char *what)
{
    const char *value = s_scalar (node);
    if (!value) {
        s_error (L, node, "%s: expected a string, found %s", what, s_kind_name (node));
        return NULL;
    }
    if (strlen (value) != node->data.scalar.length) {
        s_error (L, node, "%s: contains a NUL byte", what);
        return NULL;
    }
    if (!*value) {
        s_error (L, node, "%s: must not be empty", what);
        return NULL;
    }
    return value;
}

static bool
s_bool (s_loader_t *L, yaml_node_t *node, const char *what, bool *out)
{
    const char *value = s_scalar (node);
    if (value && s_is_plain (node) && strcmp (value, "true") == 0)
        *out = true;
    else
    if (value && s_is_plain (node) && strcmp (value, "false") == 0)
        *out = false;
    else {
        s_error (L, node, "%s: expected true or false", what);
        return false;
    }
    return true;
}

static bool
s_parse_integer (const char *text, long long *out)
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

static bool
s_parse_real (const char *text, double *out)
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

static bool
s_integer (s_loader_t *L, yaml_node_t *node, const char *what, long long min, long long max,
           long long *out)
{
    const char *value = s_scalar (node);
    long long number;
    if (!value || !s_is_plain (node) || !s_parse_integer (value, &number)) {
        s_error (L, node, "%s: expected an integer", what);
        return false;
    }
    if (number < min || number > max) {
        s_error (L, node, "%s: %lld is out of range %lld..%lld", what, number, min, max);
        return false;
    }
    *out = number;
    return true;
}

//  A number (integer or real). min_exclusive: the value must be strictly above min.
static bool
s_number (s_loader_t *L, yaml_node_t *node, const char *what, double min, bool min_exclusive,
          double max, double *out)
{
    const char *value = s_scalar (node);
    double number;
    if (!value || !s_is_plain (node) || !s_parse_real (value, &number)) {
        s_error (L, node, "%s: expected a number", what);
        return false;
    }
    if (number < min || (min_exclusive && number == min) || number > max) {
        if (min_exclusive)
            s_error (L, node, "%s: %s is out of range (above %g, at most %g)", what, value, min, max);
        else
            s_error (L, node, "%s: %s is out of range %g..%g", what, value, min, max);
        return false;
    }
    *out = number;
    return true;
}

//  A duration such as 90s, 30m, 4h, 1d, 1h30m, 500ms, in milliseconds.
static bool
s_duration (s_loader_t *L, yaml_node_t *node, const char *what, int64_t min_ms, int64_t max_ms,
            int64_t *out_ms)
{
    const char *text = s_scalar (node);
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
        s_error (L, node, "%s: expected a duration such as 90s, 30m, 4h or 1h30m", what);
        return false;
    }
    if (total < min_ms || total > max_ms) {
        s_error (L, node, "%s: %s is out of range", what, text);
        return false;
    }
    *out_ms = total;
    return true;
}

//  Index of value in a NULL-terminated name table, or -1.
static int
s_lookup (const char *const *names, size_t count, const char *value)
{
    for (size_t i = 0; i < count && names [i]; i++)
        if (strcmp (names [i], value) == 0)
            return (int) i;
    return -1;
}

static bool
s_valid_name (const char *name)
{
    size_t length = strlen (name);
    if (length == 0 || length > S_NAME_MAX)
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
            return false;
    return name [0] != '-';
}

//  ---------------------------------------------------------------------------------
//  roles.yaml

static s_role_t *
s_role_find (const al_policy_t *self, const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < self->role_count; i++)
        if (strcmp (self->roles [i].name, name) == 0)
            return &self->roles [i];
    return NULL;
}

//  True for message types only the broker produces: never grantable.
static bool
s_broker_only (al_msg_type_t type)
{
    const char *name = al_msg_type_name (type);
    return name && (strcmp (name, "ExecuteDeploy") == 0 || strcmp (name, "ProductionGrant") == 0
                ||  strcmp (name, "Ack") == 0 || strcmp (name, "Denied") == 0
                ||  strcmp (name, "Checkpoint") == 0);
}

static bool
s_is_type (al_msg_type_t type, const char *name)
{
    const char *type_name = al_msg_type_name (type);
    return type_name && strcmp (type_name, name) == 0;
}

//  Parses a list of grants {types, environments} into table; role is NULL for common.
static void
s_parse_grants (s_loader_t *L, yaml_node_t *list, const char *role,
                s_grant_t table [S_MAX_TYPE_ID][S_ENV_COUNT])
{
    const char *who = role ? role : "common";
    char what [128];
    snprintf (what, sizeof what, "%s: send", who);
    if (!s_want_list (L, list, what))
        return;
    static const char *const keys [] = { "types", "environments", NULL };
    S_FOR_ITEMS (L, list, grant) {
        if (!s_check_map (L, grant, what, keys, keys))
            continue;
        yaml_node_t *types = s_get (L, grant, "types");
        yaml_node_t *envs = s_get (L, grant, "environments");
        if (!types || !envs || !s_want_list (L, types, "types") || !s_want_list (L, envs, "environments"))
            continue;
        if (s_list_length (types) == 0)
            s_error (L, types, "%s: a grant needs at least one message type", who);
        if (s_list_length (envs) == 0)
            s_error (L, envs, "%s: a grant needs at least one environment", who);
        S_FOR_ITEMS (L, types, type_node) {
            const char *type_name = s_string (L, type_node, "message type");
            if (!type_name)
                continue;
            al_msg_type_t type = al_msg_type_from_name (type_name);
            if (type == AL_MSG_NONE) {
                s_error (L, type_node, "unknown message type '%s'", type_name);
                continue;
            }
            assert ((int) type > 0 && (int) type < S_MAX_TYPE_ID);
            if (s_broker_only (type)) {
                s_error (L, type_node, "%s: %s is sent only by the broker and may not be granted",
                         who, type_name);
                continue;
            }
            S_FOR_ITEMS (L, envs, env_node) {
                const char *env_name = s_string (L, env_node, "environment");
                if (!env_name)
                    continue;
                int env = s_lookup (s_env_names, S_ENV_COUNT, env_name);
                if (env < 0) {
                    s_error (L, env_node, "unknown environment '%s' (expected development, "
                             "staging, production or bus)", env_name);
                    continue;
                }
                if (env == AIRLOCK__ENVIRONMENT__ENV_PRODUCTION && s_is_type (type, "DeployRequest")) {
                    s_error (L, type_node, "%s: granting DeployRequest in production would let it "
                             "send a production deploy; only the broker's approval gate can", who);
                    continue;
                }
                s_grant_t *cell = &table [type][env];
                if (cell->line) {
                    s_error (L, type_node, "%s: duplicate grant of %s in %s (first at line %u)",
                             who, type_name, env_name, cell->line);
                    continue;
                }
                cell->line = s_line (type_node);
                cell->column = s_col (type_node);
            }
        }
    }
}

static void
s_check_capability (s_loader_t *L, yaml_node_t *node, s_role_t *role, int env)
{
    const char *cap = role->capability [env];
    const char *env_name = s_env_names [env];
    al_msg_type_t deploy = al_msg_type_from_name ("DeployRequest");
    al_msg_type_t report = al_msg_type_from_name ("QaReport");
    if (strcmp (cap, "forbidden") == 0 || strcmp (cap, "not_applicable") == 0) {
        for (int type = 0; type < S_MAX_TYPE_ID; type++)
            if (role->grant [type][env].line)
                s_error (L, node, "role '%s' is %s in %s but line %u grants %s there",
                         role->name, cap, env_name, role->grant [type][env].line,
                         al_msg_type_name ((al_msg_type_t) type));
    }
    else
    if ((strcmp (cap, "cannot_deploy") == 0 || strcmp (cap, "cannot_execute") == 0
    ||   strcmp (cap, "cannot_run") == 0) && role->grant [deploy][env].line)
        s_error (L, node, "role '%s' is %s in %s but line %u grants DeployRequest there",
                 role->name, cap, env_name, role->grant [deploy][env].line);
    else
    if (strcmp (cap, "cannot_run") == 0 && role->grant [report][env].line)
        s_error (L, node, "role '%s' is %s in %s but line %u grants QaReport there",
                 role->name, cap, env_name, role->grant [report][env].line);
    else
    if (strcmp (cap, "request_deploy") == 0 && !role->grant [deploy][env].line)
        s_error (L, node, "role '%s' may request_deploy in %s but no grant of DeployRequest "
                 "there", role->name, env_name);
    else
    if (strcmp (cap, "run_tests") == 0 && !role->grant [report][env].line)
        s_error (L, node, "role '%s' may run_tests in %s but no grant of QaReport there",
                 role->name, env_name);
}

static void
s_parse_roles (s_loader_t *L, yaml_node_t *root)
{
    al_policy_t *self = L->policy;
    static const char *const keys [] = { "version", "default", "common", "qa_authority", "roles", NULL };
    static const char *const required [] = { "version", "default", "roles", NULL };
    if (!s_check_map (L, root, "roles.yaml", keys, required))
        return;
    yaml_node_t *node;
    long long version;
    if ((node = s_get (L, root, "version")) && s_integer (L, node, "version", 1, 1000, &version)
    &&  version != 1)
        s_error (L, node, "version: unsupported version %lld (expected 1)", version);
    if ((node = s_get (L, root, "default"))) {
        const char *value = s_string (L, node, "default");
        if (value && strcmp (value, "deny") != 0)
            s_error (L, node, "default: must be 'deny' (anything not granted is denied)");
    }
    if ((node = s_get (L, root, "common")))
        s_parse_grants (L, node, NULL, self->common);


    yaml_node_t *roles = s_get (L, root, "roles");
    if (!roles || !s_check_map (L, roles, "roles", NULL, NULL))
        return;
    size_t count = (size_t) (roles->data.mapping.pairs.top - roles->data.mapping.pairs.start);
    self->roles = calloc (count ? count : 1, sizeof *self->roles);
    if (!self->roles) {
        s_error (L, roles, "out of memory");
        return;
    }
    static const char *const role_keys [] = { "kind", "description", "capabilities", "send", NULL };
    static const char *const role_required [] = { "kind", "send", NULL };
    static const char *const kinds [] = { "bus-agent", "ai-agent", "human", NULL };
    static const char *const env_keys [] = { "development", "staging", "production", NULL };
    for (yaml_node_pair_t *pair = roles->data.mapping.pairs.start;
         pair < roles->data.mapping.pairs.top; pair++) {
        yaml_node_t *key = s_node (L, pair->key);
        yaml_node_t *body = s_node (L, pair->value);
        const char *name = s_scalar (key);
        if (!name)
            continue;
        if (!s_valid_name (name)) {
            s_error (L, key, "role name '%s': use 1-63 characters a-z, 0-9, '-', '_'", name);
            continue;
        }
        if (s_role_find (self, name))
            continue;           // duplicate, already reported by s_check_map
        char what [96];
        snprintf (what, sizeof what, "role '%s'", name);
        if (!s_check_map (L, body, what, role_keys, role_required))
            continue;
        s_role_t *role = &self->roles [self->role_count++];
        role->name = name;
        if ((node = s_get (L, body, "kind"))) {
            role->kind = s_string (L, node, "kind");
            if (role->kind && s_lookup (kinds, 3, role->kind) < 0) {
                s_error (L, node, "%s: unknown kind '%s' (expected bus-agent, ai-agent or human)",
                         what, role->kind);
                role->kind = NULL;
            }
        }
        if ((node = s_get (L, body, "description")))
            s_string (L, node, "description");
        if ((node = s_get (L, body, "send")))
            s_parse_grants (L, node, name, role->grant);
        yaml_node_t *caps = s_get (L, body, "capabilities");
        if (caps && s_check_map (L, caps, "capabilities", env_keys, env_keys)) {
            for (int env = 1; env < S_ENV_COUNT; env++) {
                yaml_node_t *cell = s_get (L, caps, s_env_names [env]);
                const char *cap = cell ? s_string (L, cell, "capability") : NULL;
                if (!cap)
                    continue;
                if (s_lookup (s_caps_allowed, 99, cap) >= 0)
                    role->capability_allowed [env] = true;
                else
                if (s_lookup (s_caps_denied, 99, cap) < 0) {
                    s_error (L, cell, "unknown capability '%s'", cap);
                    continue;
                }
                role->capability [env] = cap;
                s_check_capability (L, cell, role, env);
            }
        }
    }
    //  The QA authority: a bus agent (never an AI agent nor a human's client) that may
    //  send QaReport in staging, where releases are validated.
    if ((node = s_get (L, root, "qa_authority"))) {
        const char *name = s_string (L, node, "qa_authority");
        const s_role_t *found = name ? s_role_find (self, name) : NULL;
        al_msg_type_t report = al_msg_type_from_name ("QaReport");
        if (name && !found)
            s_error (L, node, "qa_authority: unknown role '%s' (not in roles)", name);
        else
        if (found && (!found->kind || strcmp (found->kind, "bus-agent") != 0))
            s_error (L, node, "qa_authority: role '%s' is %s: the QA verdict comes from a bus agent (kind: "
                     "bus-agent), never from an AI agent or a human's client", name, found->kind ? found->kind : "of no kind");
        else
        if (found && !found->grant [report][AIRLOCK__ENVIRONMENT__ENV_STAGING].line)
            s_error (L, node, "qa_authority: role '%s' is not granted QaReport in staging", name);
        else
            self->qa_authority = name;
    }
}

//  ---------------------------------------------------------------------------------
//  identities.yaml

static bool
s_valid_z85_key (const char *key)
{
    static const char alphabet [] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                    ".-:+=^!/*?&<>()[]{}@%$#";
    if (strlen (key) != 40)
        return false;
    for (const char *p = key; *p; p++)
        if (!strchr (alphabet, *p))
            return false;
    return true;
}

//  Reports a reference to a role that does not exist (or is not human, if required).
static void
s_check_role_ref (s_loader_t *L, yaml_node_t *node, const char *role, bool human)
{
    if (!L->roles_ok)
        return;             // roles.yaml failed: its errors say why; do not pile on
    s_role_t *found = s_role_find (L->policy, role);
    if (!found)
        s_error (L, node, "unknown role '%s' (not in roles.yaml)", role);
    else
    if (human && (!found->kind || strcmp (found->kind, "human") != 0))
        s_error (L, node, "role '%s' is not a human role (kind: human in roles.yaml)", role);
}

static void
s_parse_identities (s_loader_t *L, yaml_node_t *root)
{
    al_policy_t *self = L->policy;
    static const char *const keys [] = { "identities", NULL };
    if (!s_check_map (L, root, "identities.yaml", keys, keys))
        return;
    yaml_node_t *list = s_get (L, root, "identities");
    if (!list || !s_want_list (L, list, "identities"))
        return;
    self->identities = calloc (s_list_length (list) + 1, sizeof *self->identities);
    if (!self->identities)
        return;
    static const char *const entry_keys [] = { "key", "identity", "role", "person", NULL };
    static const char *const required_keys [] = { "key", "identity", "role", NULL };
    S_FOR_ITEMS (L, list, entry) {
        if (!s_check_map (L, entry, "identity", entry_keys, required_keys))
            continue;
        yaml_node_t *key_node = s_get (L, entry, "key");
        yaml_node_t *name_node = s_get (L, entry, "identity");
        yaml_node_t *role_node = s_get (L, entry, "role");
        yaml_node_t *person_node = s_get (L, entry, "person");
        const char *key = key_node ? s_string (L, key_node, "key") : NULL;
        const char *name = name_node ? s_string (L, name_node, "identity") : NULL;
        const char *role = role_node ? s_string (L, role_node, "role") : NULL;
        //  The person behind an agent or ci identity: the name they have in approvers.yaml,
        //  so the gate can refuse their approval of a release they submitted (four eyes).
        const char *person = person_node ? s_string (L, person_node, "person") : NULL;
        bool valid = key && name && role && (!person_node || person);
        if (person && (!*person || strlen (person) > 127)) {
            s_error (L, person_node, "person: expected 1-127 characters (the person's name as "
                     "approvers.yaml spells it)");
            valid = false;
        }
        if (key && !s_valid_z85_key (key)) {
            s_error (L, key_node, "key: expected a Z85 CURVE public key of 40 characters");
            valid = false;
        }
        if (name && !s_valid_name (name)) {
            s_error (L, name_node, "identity '%s': use 1-63 characters a-z, 0-9, '-', '_'", name);
            valid = false;
        }
        else
        if (name && strcmp (name, "broker") == 0) {
            //  The name the broker signs its own rows and grants with: deploy-manager
            //  takes an ExecuteDeploy from it alone.
            s_error (L, name_node, "identity 'broker' is reserved for the broker itself");
            valid = false;
        }
        if (role)
            s_check_role_ref (L, role_node, role, false);
        for (size_t i = 0; valid && i < self->identity_count; i++) {
            if (strcmp (self->identities [i].key, key) == 0) {
                s_error (L, key_node, "duplicate key (also identity '%s')", self->identities [i].identity);
                valid = false;
            }
            else
            if (strcmp (self->identities [i].identity, name) == 0) {
                s_error (L, name_node, "duplicate identity '%s'", name);
                valid = false;
            }
        }
        if (valid)
            self->identities [self->identity_count++] = (s_identity_t) { key, name, role, person };
    }
}

//  ---------------------------------------------------------------------------------
//  approvers.yaml

static bool
s_decode_hex32 (const char *text, uint8_t out [32])
{
    size_t length;
    return strlen (text) == 64
        && sodium_hex2bin (out, 32, text, 64, NULL, &length, NULL) == 0 && length == 32;
}

static bool
s_decode_base64 (const char *text, uint8_t *out, size_t max, size_t *length_p)
{
    return sodium_base642bin (out, max, text, strlen (text), NULL, length_p, NULL,
                              sodium_base64_VARIANT_ORIGINAL) == 0;
}

static uint32_t
s_get_u32 (const uint8_t *p)
{
    return (uint32_t) p [0] << 24 | (uint32_t) p [1] << 16 | (uint32_t) p [2] << 8 | p [3];
}

//  "ssh-ed25519 AAAA... comment": the 32-byte key inside the OpenSSH wire blob.
static bool
s_decode_ssh (const char *text, uint8_t out [32])
{
    if (strncmp (text, "ssh-ed25519 ", 12) != 0)
        return false;
    const char *start = text + 12;
    const char *end = strchr (start, ' ');
    size_t b64_length = end ? (size_t) (end - start) : strlen (start);
    if (b64_length == 0 || b64_length > 200)
        return false;
    char b64 [201];
    memcpy (b64, start, b64_length);
    b64 [b64_length] = 0;
    uint8_t blob [160];
    size_t length;
    if (!s_decode_base64 (b64, blob, sizeof blob, &length))
        return false;
    //  string "ssh-ed25519", string key(32)
    if (length != 4 + 11 + 4 + 32 || s_get_u32 (blob) != 11 || memcmp (blob + 4, "ssh-ed25519", 11) != 0
    ||  s_get_u32 (blob + 15) != 32)
        return false;
    memcpy (out, blob + 19, 32);
    return true;
}

static void
s_parse_keys (s_loader_t *L, yaml_node_t *list, size_t approver, bool revoked)
{
    al_policy_t *self = L->policy;
    const char *what = revoked ? "revoked_keys" : "keys";
    if (!s_want_list (L, list, what))
        return;
    s_key_t *keys = realloc (self->keys, (self->key_count + s_list_length (list) + 1) * sizeof *keys);
    if (!keys)
        return;
    self->keys = keys;
    static const char *const key_keys [] = { "id", "ed25519", "ssh", NULL };
    S_FOR_ITEMS (L, list, entry) {
        if (!s_check_map (L, entry, what, key_keys, NULL))
            continue;
        yaml_node_t *id_node = s_get (L, entry, "id");
        yaml_node_t *raw_node = s_get (L, entry, "ed25519");
        yaml_node_t *ssh_node = s_get (L, entry, "ssh");
        s_key_t key = { .approver = approver, .revoked = revoked, .id = "" };
        if (id_node && !(key.id = s_string (L, id_node, "id")))
            continue;
        if (!!raw_node == !!ssh_node) {
            s_error (L, entry, "%s: each key needs exactly one of 'ed25519' or 'ssh'", what);
            continue;
        }
        yaml_node_t *value_node = raw_node ? raw_node : ssh_node;
        const char *value = s_string (L, value_node, raw_node ? "ed25519" : "ssh");
        if (!value)
            continue;
        size_t length = 0;
        bool decoded = raw_node
            ? s_decode_hex32 (value, key.bytes)
              || (s_decode_base64 (value, key.bytes, 32, &length) && length == 32)
            : s_decode_ssh (value, key.bytes);
        if (!decoded) {
            s_error (L, value_node, raw_node
                     ? "ed25519: expected a 32-byte public key in hex (64 characters) or base64"
                     : "ssh: expected an OpenSSH line 'ssh-ed25519 AAAA... [comment]'");
            continue;
        }
        if (!crypto_core_ed25519_is_valid_point (key.bytes)) {
            s_error (L, value_node, "%s: not a valid Ed25519 public key", what);
            continue;
        }
        bool duplicate = false;
        for (size_t i = 0; i < self->key_count && !duplicate; i++)
            if (memcmp (self->keys [i].bytes, key.bytes, 32) == 0) {
                s_error (L, value_node, "duplicate key (already listed for approver '%s')",
                         self->approvers [self->keys [i].approver].name);
                duplicate = true;
            }
        if (!duplicate)
            self->keys [self->key_count++] = key;
    }
}

static void
s_parse_approvers (s_loader_t *L, yaml_node_t *root)
{
    al_policy_t *self = L->policy;
    static const char *const keys [] = { "approvers", NULL };
    if (!s_check_map (L, root, "approvers.yaml", keys, keys))
        return;
    yaml_node_t *list = s_get (L, root, "approvers");
    if (!list || !s_want_list (L, list, "approvers"))
        return;
    self->approvers = calloc (s_list_length (list) + 1, sizeof *self->approvers);
    if (!self->approvers)
        return;
    static const char *const entry_keys [] = { "name", "roles", "keys", "revoked_keys", NULL };
    static const char *const entry_required [] = { "name", "roles", "keys", NULL };
    S_FOR_ITEMS (L, list, entry) {
        if (!s_check_map (L, entry, "approver", entry_keys, entry_required))
            continue;
        yaml_node_t *name_node = s_get (L, entry, "name");
        const char *name = name_node ? s_string (L, name_node, "name") : NULL;
        if (!name)
            continue;
        bool duplicate = false;
        for (size_t i = 0; i < self->approver_count; i++)
            if (strcmp (self->approvers [i].name, name) == 0)
                duplicate = true;
        if (duplicate) {
            s_error (L, name_node, "duplicate approver '%s'", name);
            continue;
        }
        s_approver_t *approver = &self->approvers [self->approver_count];
        approver->name = name;
        yaml_node_t *roles = s_get (L, entry, "roles");
        if (roles && s_want_list (L, roles, "roles")) {
            approver->roles = calloc (s_list_length (roles) + 1, sizeof *approver->roles);
            if (!approver->roles)
                continue;
            if (s_list_length (roles) == 0)
                s_error (L, roles, "approver '%s' has no roles", name);
            S_FOR_ITEMS (L, roles, role_node) {
                const char *role = s_string (L, role_node, "role");
                if (!role)
                    continue;
                s_check_role_ref (L, role_node, role, true);
                approver->roles [approver->role_count++] = role;
            }
        }
        self->approver_count++;
        yaml_node_t *key_list = s_get (L, entry, "keys");
        if (key_list)
            s_parse_keys (L, key_list, self->approver_count - 1, false);
        if ((key_list = s_get (L, entry, "revoked_keys")))
            s_parse_keys (L, key_list, self->approver_count - 1, true);
    }
}

//  ---------------------------------------------------------------------------------
//  deployment_types.yaml

static void
s_parse_quorum (s_loader_t *L, yaml_node_t *list, const char *what, s_quorum_t *quorum)
{
    if (!s_want_list (L, list, what))
        return;
    if (s_list_length (list) == 0) {
        s_error (L, list, "%s: needs at least one {role, count}", what);
        return;
    }
    quorum->entries = calloc (s_list_length (list), sizeof *quorum->entries);
    if (!quorum->entries)
        return;
    static const char *const keys [] = { "role", "count", NULL };
    S_FOR_ITEMS (L, list, entry) {
        if (!s_check_map (L, entry, what, keys, keys))
            continue;
        yaml_node_t *role_node = s_get (L, entry, "role");
        yaml_node_t *count_node = s_get (L, entry, "count");
        const char *role = role_node ? s_string (L, role_node, "role") : NULL;
        long long count;
        if (!role || !count_node || !s_integer (L, count_node, "count", 1, 100, &count))
            continue;
        s_check_role_ref (L, role_node, role, true);
        //  A quorum no signature could ever meet is a policy that locks production
        //  forever: the role must be allowed to send SignedApproval in production.
        const s_role_t *found = L->roles_ok ? s_role_find (L->policy, role) : NULL;
        al_msg_type_t approval = al_msg_type_from_name ("SignedApproval");
        if (found && found->kind && strcmp (found->kind, "human") == 0
        &&  !found->grant [approval][AIRLOCK__ENVIRONMENT__ENV_PRODUCTION].line)
            s_error (L, role_node, "%s: role '%s' may not send SignedApproval in production "
                     "(roles.yaml), so it can never approve", what, role);
        bool duplicate = false;
        for (size_t i = 0; i < quorum->count; i++)
            if (strcmp (quorum->entries [i].role, role) == 0)
                duplicate = true;
        if (duplicate) {
            s_error (L, role_node, "%s: role '%s' listed twice", what, role);
            continue;
        }
        quorum->entries [quorum->count++] = (al_policy_quorum_entry_t) { role, (unsigned) count };
    }
}

static void
s_parse_types (s_loader_t *L, yaml_node_t *root)
{
    al_policy_t *self = L->policy;
    static const char *const keys [] = {
        "approval_expiry", "self_approval", "break_glass", "types", NULL
    };
    if (!s_check_map (L, root, "deployment_types.yaml", keys, keys))
        return;
    yaml_node_t *node;
    int64_t ms;
    if ((node = s_get (L, root, "approval_expiry"))
    &&  s_duration (L, node, "approval_expiry", 60000, INT64_C (7) * 86400000, &ms))
        self->approval_expiry_s = ms / 1000;
    if ((node = s_get (L, root, "self_approval"))) {
        const char *value = s_string (L, node, "self_approval");
        if (value && strcmp (value, "forbidden") != 0)
            s_error (L, node, "self_approval: must be 'forbidden'");
        self->self_approval_forbidden = true;
    }
    if ((node = s_get (L, root, "break_glass")))
        s_parse_quorum (L, node, "break_glass", &self->break_glass);

    yaml_node_t *types = s_get (L, root, "types");
    if (!types || !s_check_map (L, types, "types", NULL, NULL))
        return;
    static const char *const type_keys [] = {
        "description", "quorum", "requires_window", "requires_staging", "skip_staging_quorum", NULL
    };
    static const char *const type_required [] = {
        "quorum", "requires_window", "requires_staging", NULL
    };
    for (yaml_node_pair_t *pair = types->data.mapping.pairs.start;
         pair < types->data.mapping.pairs.top; pair++) {
        yaml_node_t *key = s_node (L, pair->key);
        const char *name = s_scalar (key);
        if (!name)
            continue;
        int type = (int) al_deployment_type_from_name (name);
        if (type <= 0 || type >= S_TYPE_COUNT) {
            s_error (L, key, "unknown deployment type '%s' (expected standard, hotfix, rollback, "
                     "scheduled or emergency)", name);
            continue;
        }
        s_type_t *entry = &self->types [type];
        if (entry->present)
            continue;   // duplicate key, reported
        yaml_node_t *body = s_node (L, pair->value);
        char what [64];
        snprintf (what, sizeof what, "type '%s'", name);
        if (!s_check_map (L, body, what, type_keys, type_required))
            continue;
        entry->present = true;
        if ((node = s_get (L, body, "description")))
            entry->description = s_string (L, node, "description");
        if ((node = s_get (L, body, "quorum")))
            s_parse_quorum (L, node, "quorum", &entry->quorum);
        if ((node = s_get (L, body, "requires_window")))
            s_bool (L, node, "requires_window", &entry->requires_window);
        if ((node = s_get (L, body, "requires_staging")))
            s_bool (L, node, "requires_staging", &entry->requires_staging);
        if ((node = s_get (L, body, "skip_staging_quorum"))) {
            if (!entry->requires_staging)
                s_error (L, node, "%s: skip_staging_quorum needs requires_staging: true", what);
            else
                s_parse_quorum (L, node, "skip_staging_quorum", &entry->skip_staging);
        }
        //  The gate seats every signature it needs at once: quorum, skip-staging and
        //  break-glass together must fit its table (it refuses, never truncates).
        unsigned total = 0;
        const s_quorum_t *parts [3] = { &entry->quorum, &entry->skip_staging, &self->break_glass };
        for (int part = 0; part < 3; part++)
            for (size_t i = 0; i < parts [part]->count; i++)
                total += parts [part]->entries [i].count;
        if (total > AL_POLICY_MAX_APPROVAL_SLOTS)
            s_error (L, body, "%s: quorum, skip_staging_quorum and break_glass ask for %u signatures together; "
                     "at most %d", what, total, AL_POLICY_MAX_APPROVAL_SLOTS);
    }
    for (int type = 1; type < S_TYPE_COUNT; type++)
        if (!self->types [type].present)
            s_error (L, types, "missing deployment type '%s'",
                     al_deployment_type_name ((Airlock__DeploymentType) type));
}

//  ---------------------------------------------------------------------------------
//  constraints.yaml

static bool
s_valid_timezone (const char *name)
{
    if (!*name || strlen (name) > 64 || name [0] == '/' || strstr (name, ".."))
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')
        ||    strchr ("/_+-", *p)))
            return false;
    const char *tzdir = getenv ("TZDIR");
    char path [512];
    snprintf (path, sizeof path, "%s/%s", tzdir && *tzdir ? tzdir : "/usr/share/zoneinfo", name);
    FILE *file = fopen (path, "rb");
    if (!file)
        return false;
    char magic [4] = { 0 };
    size_t read = fread (magic, 1, 4, file);
    fclose (file);
    return read == 4 && memcmp (magic, "TZif", 4) == 0;
}

//  "HH:MM" (00:00..24:00) to minutes since midnight, or -1.
static int
s_parse_clock (const char *text)
{
    if (strlen (text) != 5 || text [2] != ':')
        return -1;
    for (int i = 0; i < 5; i++)
        if (i != 2 && (text [i] < '0' || text [i] > '9'))
            return -1;
    int hours = (text [0] - '0') * 10 + (text [1] - '0');
    int minutes = (text [3] - '0') * 10 + (text [4] - '0');
    if (hours > 24 || minutes > 59 || (hours == 24 && minutes))
        return -1;
    return hours * 60 + minutes;
}

static int
s_days_in_month (int year, int month)
{
    static const int days [] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month == 2 && leap ? 29 : days [month - 1];
}

//  Day of week (0 = Sunday) of a Gregorian date (Sakamoto's method).
static int
s_weekday (int year, int month, int day)
{
    static const int offsets [] = { 0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4 };
    if (month < 3)
        year -= 1;
    return (year + year / 4 - year / 100 + year / 400 + offsets [month - 1] + day) % 7;
}

static unsigned
s_parse_days (s_loader_t *L, yaml_node_t *list, const char *what)
{
    unsigned days = 0;
    if (!s_want_list (L, list, what))
        return 0;
    S_FOR_ITEMS (L, list, day_node) {
        const char *day = s_string (L, day_node, "day");
        if (!day)
            continue;
        int index = s_lookup (s_day_names, 7, day);
        if (index < 0)
            s_error (L, day_node, "unknown weekday '%s' (expected monday..sunday)", day);
        else
        if (days & (1u << index))
            s_error (L, day_node, "%s: '%s' listed twice", what, day);
        else
            days |= 1u << index;
    }
    return days;
}

static void
s_parse_calendar (s_loader_t *L, yaml_node_t *calendar)
{
    al_policy_t *self = L->policy;
    static const char *const keys [] = { "timezone", "applies_to", "windows", "freezes", NULL };
    if (!s_check_map (L, calendar, "calendar", keys, keys))
        return;
    yaml_node_t *node;
    if ((node = s_get (L, calendar, "timezone"))) {
        const char *zone = s_string (L, node, "timezone");
        if (zone && !s_valid_timezone (zone))
            s_error (L, node, "timezone: unknown time zone '%s' (not in the tz database)", zone);
        else
            self->timezone = zone;
    }
    if ((node = s_get (L, calendar, "applies_to")) && s_want_list (L, node, "applies_to")) {
        S_FOR_ITEMS (L, node, env_node) {
            const char *env_name = s_string (L, env_node, "environment");
            Airlock__Environment env = env_name ? al_environment_from_name (env_name)
                                                : AIRLOCK__ENVIRONMENT__ENV_UNSPECIFIED;
            if (env_name && env == AIRLOCK__ENVIRONMENT__ENV_UNSPECIFIED)
                s_error (L, env_node, "unknown environment '%s'", env_name);
            self->calendar_envs |= 1u << env;
        }
    }
    yaml_node_t *windows = s_get (L, calendar, "windows");
    if (windows && s_want_list (L, windows, "windows")) {
        self->windows = calloc (s_list_length (windows) + 1, sizeof *self->windows);
        static const char *const window_keys [] = { "days", "start", "end", NULL };
        S_FOR_ITEMS (L, windows, window) {
            if (!self->windows || !s_check_map (L, window, "window", window_keys, window_keys))
                continue;
            s_window_t entry = { .line = s_line (window) };
            yaml_node_t *start = s_get (L, window, "start");
            yaml_node_t *end = s_get (L, window, "end");
            if ((node = s_get (L, window, "days")))
                entry.days = s_parse_days (L, node, "days");
            const char *start_text = start ? s_string (L, start, "start") : NULL;
            const char *end_text = end ? s_string (L, end, "end") : NULL;
            if (!start_text || !end_text)
                continue;
            entry.start_min = s_parse_clock (start_text);
            entry.end_min = s_parse_clock (end_text);
            if (entry.start_min < 0)
                s_error (L, start, "start: '%s' is not a time of day HH:MM (00:00..24:00)", start_text);
            if (entry.end_min < 0)
                s_error (L, end, "end: '%s' is not a time of day HH:MM (00:00..24:00)", end_text);
            if (entry.start_min < 0 || entry.end_min < 0)
                continue;
            if (entry.start_min >= entry.end_min) {
                s_error (L, end, "end: %s is not after start %s", end_text, start_text);
                continue;
            }
            if (entry.days)
                self->windows [self->window_count++] = entry;
        }
    }
    yaml_node_t *freezes = s_get (L, calendar, "freezes");
    static const char *const freeze_keys [] = { "weekdays", "holidays", "month_end", NULL };
    if (!freezes || !s_check_map (L, freezes, "freezes", freeze_keys, freeze_keys))
        return;
    if ((node = s_get (L, freezes, "weekdays"))) {
        self->freeze_days = s_parse_days (L, node, "weekdays");
        self->freeze_days_line = s_line (node);
    }
    if ((node = s_get (L, freezes, "month_end"))) {
        static const char *const modes [] = { "off", "flag", "freeze", NULL };
        const char *mode = s_string (L, node, "month_end");
        int index = mode ? s_lookup (modes, 3, mode) : -1;
        if (mode && index < 0)
            s_error (L, node, "month_end: expected flag, freeze or off");
        self->month_end = index < 0 ? S_MONTH_END_FLAG : (s_month_end_t) index;
    }
    yaml_node_t *holidays = s_get (L, freezes, "holidays");
    if (!holidays || !s_want_list (L, holidays, "holidays"))
        return;
    self->holidays = calloc (s_list_length (holidays) + 1, sizeof *self->holidays);
    S_FOR_ITEMS (L, holidays, date_node) {
        const char *text = s_string (L, date_node, "holiday");
        if (!text || !self->holidays)
            continue;
        s_date_t date = { .line = s_line (date_node) };
        char tail;
        if (strlen (text) != 10 || sscanf (text, "%4d-%2d-%2d%c", &date.year, &date.month, &date.day, &tail) != 3
        ||  text [4] != '-' || text [7] != '-' || date.year < 1970 || date.year > 9999
        ||  date.month < 1 || date.month > 12 || date.day < 1
        ||  date.day > s_days_in_month (date.year, date.month)) {
            s_error (L, date_node, "holiday: '%s' is not a date YYYY-MM-DD", text);
            continue;
        }
        bool duplicate = false;
        for (size_t i = 0; i < self->holiday_count; i++)
            if (self->holidays [i].year == date.year && self->holidays [i].month == date.month
            &&  self->holidays [i].day == date.day)
                duplicate = true;
        if (duplicate)
            s_error (L, date_node, "holiday '%s' listed twice", text);
        else
            self->holidays [self->holiday_count++] = date;
    }
}

static void
s_parse_constraints (s_loader_t *L, yaml_node_t *root)
{
    al_policy_t *self = L->policy;
    static const char *const keys [] = { "environments", "calendar", NULL };
    if (!s_check_map (L, root, "constraints.yaml", keys, keys))
        return;
    yaml_node_t *node;
    if ((node = s_get (L, root, "calendar")))
        s_parse_calendar (L, node);
    yaml_node_t *envs = s_get (L, root, "environments");
    static const char *const env_keys [] = { "development", "staging", "production", NULL };
    if (!envs || !s_check_map (L, envs, "environments", env_keys, env_keys))
        return;
    static const char *const entry_keys [] = { "strategies", "max_instances", "monthly_budget_usd",
                                                "budget_alert_percent", NULL };
    static const char *const required_keys [] = { "strategies", "max_instances", "monthly_budget_usd", NULL };
    static const char *const strategies [] = { "", "rolling", "canary", "blue-green", NULL };
    for (int env = 1; env < S_ENV_COUNT; env++) {
        self->budget_alert_percent [env] = AL_POLICY_DEFAULT_BUDGET_ALERT_PERCENT;
        yaml_node_t *entry = s_get (L, envs, s_env_names [env]);
        if (!entry || !s_check_map (L, entry, s_env_names [env], entry_keys, required_keys))
            continue;
        yaml_node_t *list = s_get (L, entry, "strategies");
        if (list && s_want_list (L, list, "strategies")) {
            if (s_list_length (list) == 0)
                s_error (L, list, "strategies: %s needs at least one strategy", s_env_names [env]);
            S_FOR_ITEMS (L, list, item) {
                const char *name = s_string (L, item, "strategy");
                int index = name ? s_lookup (strategies, 4, name) : -1;
                if (name && index <= 0)
                    s_error (L, item, "unknown strategy '%s' (expected rolling, canary or blue-green)", name);
                else
                if (name && (self->strategies [env] & (1u << index)))
                    s_error (L, item, "strategy '%s' listed twice", name);
                else
                if (name)
                    self->strategies [env] |= 1u << index;
            }
        }
        long long instances;
        if ((node = s_get (L, entry, "max_instances"))
        &&  s_integer (L, node, "max_instances", 1, 10000, &instances))
            self->max_instances [env] = (unsigned) instances;
        if ((node = s_get (L, entry, "monthly_budget_usd")))
            s_number (L, node, "monthly_budget_usd", 0, false, 1e12, &self->budget [env]);
        if ((node = s_get (L, entry, "budget_alert_percent")))
            s_number (L, node, "budget_alert_percent", 1, false, 100, &self->budget_alert_percent [env]);
    }
}

//  ---------------------------------------------------------------------------------
//  dependencies.yaml

static void
s_require_true (s_loader_t *L, yaml_node_t *map, const char *key, const char *why)
{
    yaml_node_t *node = s_get (L, map, key);
    bool value;
    if (node && s_bool (L, node, key, &value) && !value && why)
        s_error (L, node, "%s: must be true (%s)", key, why);
}

static void
s_parse_dependencies (s_loader_t *L, yaml_node_t *root)
{
    al_policy_t *self = L->policy;
    static const char *const keys [] = {
        "critical_path", "qa_handoff", "rollback_prerequisites", "observability_prerequisites", NULL
    };
    if (!s_check_map (L, root, "dependencies.yaml", keys, keys))
        return;
    yaml_node_t *path = s_get (L, root, "critical_path");
    static const char *const steps [] = {
        "", "preflight", "backup", "migrate", "rollout", "soak", "receipt", NULL
    };
    if (path && s_want_list (L, path, "critical_path")) {
        int position [7] = { 0 };           // 1-based place of each step; 0 = absent
        yaml_node_t *nodes [7] = { NULL };
        S_FOR_ITEMS (L, path, item) {
            const char *name = s_string (L, item, "step");
            if (!name)
                continue;
            int step = s_lookup (steps, 7, name);
            if (step <= 0) {
                s_error (L, item, "critical_path: unknown step '%s' (expected preflight, backup, "
                         "migrate, rollout, soak, receipt)", name);
                continue;
            }
            if (position [step]) {
                s_error (L, item, "critical_path: step '%s' listed twice", name);
                continue;
            }
            assert (self->step_count < 6);  // six known steps, each at most once
            self->steps [self->step_count++] = (Airlock__Step) step;
            position [step] = (int) self->step_count;
            nodes [step] = item;
        }
        //  The fixed order: preflight first, backup -> migrate -> rollout -> soak,
        //  receipt last. Report each step placed before one that must precede it.
        for (int step = 1; step < 7; step++) {
            if (!position [step]) {
                s_error (L, path, "critical_path: missing step '%s'", steps [step]);
                continue;
            }
            for (int before = 1; before < step; before++)
                if (position [before] > position [step]) {
                    s_error (L, nodes [step], "critical_path: '%s' must come after '%s'",
                             steps [step], steps [before]);
                    break;
                }
        }
    }
    yaml_node_t *node;
    int64_t ms;
    static const char *const qa_keys [] = {
        "requires_approved_qa_report", "requires_human_approval", "report_max_age", NULL
    };
    if ((node = s_get (L, root, "qa_handoff")) && s_check_map (L, node, "qa_handoff", qa_keys, qa_keys)) {
        s_require_true (L, node, "requires_approved_qa_report",
                        "seed 000: only an approved QA report is handed to a deploy");
        s_require_true (L, node, "requires_human_approval",
                        "airlock never deploys to production without a signed human approval");
        yaml_node_t *age = s_get (L, node, "report_max_age");
        if (age && s_duration (L, age, "report_max_age", 60000, INT64_C (30) * 86400000, &ms))
            self->qa_max_age_s = ms / 1000;
    }
    static const char *const rollback_keys [] = {
        "immutable_artifact_digest", "backward_compatible_migrations", "previous_version_retained",
        "verified_backup", NULL
    };
    if ((node = s_get (L, root, "rollback_prerequisites"))
    &&  s_check_map (L, node, "rollback_prerequisites", rollback_keys, rollback_keys)) {
        s_require_true (L, node, "immutable_artifact_digest",
                        "a grant binds an artifact digest; a mutable artifact would void it");
        s_require_true (L, node, "backward_compatible_migrations", NULL);
        s_require_true (L, node, "previous_version_retained", NULL);
        s_require_true (L, node, "verified_backup", NULL);
    }
    static const char *const observability_keys [] = {
        "golden_signals", "signal_max_age", "centralized_logging", NULL
    };
    if ((node = s_get (L, root, "observability_prerequisites"))
    &&  s_check_map (L, node, "observability_prerequisites", observability_keys, observability_keys)) {
        static const char *const signals [] = { "latency", "traffic", "errors", "saturation", NULL };
        yaml_node_t *list = s_get (L, node, "golden_signals");
        unsigned seen = 0;
        if (list && s_want_list (L, list, "golden_signals")) {
            S_FOR_ITEMS (L, list, item) {
                const char *name = s_string (L, item, "signal");
                int index = name ? s_lookup (signals, 4, name) : -1;
                if (name && index < 0)
                    s_error (L, item, "unknown golden signal '%s' (expected latency, traffic, errors, "
                             "saturation)", name);
                else
                if (name && (seen & (1u << index)))
                    s_error (L, item, "golden signal '%s' listed twice", name);
                else
                if (name)
                    seen |= 1u << index;
            }
            if (s_list_length (list) == 0)
                s_error (L, list, "golden_signals: needs at least one signal");
        }
        yaml_node_t *age = s_get (L, node, "signal_max_age");
        if (age && s_duration (L, age, "signal_max_age", 100, 3600000, &ms))
            self->signal_max_age_s = ms / 1000;
        s_require_true (L, node, "centralized_logging", NULL);
    }
}

//  ---------------------------------------------------------------------------------
//  quality_rules.yaml

static void
s_parse_quality (s_loader_t *L, yaml_node_t *root)
{
    al_policy_t *self = L->policy;
    al_policy_thresholds_t *t = &self->thresholds;
    static const char *const keys [] = {
        "definition_of_done", "health_checks", "rollback_triggers", "investigate", "soak", NULL
    };
    static const char *const allowed [] = {
        "definition_of_done", "health_checks", "rollback_triggers", "investigate", "soak", "security_scan", NULL
    };
    if (!s_check_map (L, root, "quality_rules.yaml", allowed, keys))
        return;
    yaml_node_t *node;
    yaml_node_t *done = s_get (L, root, "definition_of_done");
    if (done && s_want_list (L, done, "definition_of_done")) {
        size_t length = s_list_length (done);
        self->done_ids = calloc (length + 1, sizeof *self->done_ids);
        self->done_texts = calloc (length + 1, sizeof *self->done_texts);
        static const char *const done_keys [] = { "id", "text", NULL };
        S_FOR_ITEMS (L, done, item) {
            if (!self->done_ids || !self->done_texts
            ||  !s_check_map (L, item, "definition_of_done", done_keys, done_keys))
                continue;
            yaml_node_t *id_node = s_get (L, item, "id");
            yaml_node_t *text_node = s_get (L, item, "text");
            const char *id = id_node ? s_string (L, id_node, "id") : NULL;
            const char *text = text_node ? s_string (L, text_node, "text") : NULL;
            if (!id || !text)
                continue;
            bool duplicate = false;
            for (size_t i = 0; i < self->done_count; i++)
                if (strcmp (self->done_ids [i], id) == 0)
                    duplicate = true;
            if (duplicate) {
                s_error (L, id_node, "definition_of_done: id '%s' listed twice", id);
                continue;
            }
            self->done_ids [self->done_count] = id;
            self->done_texts [self->done_count++] = text;
        }
        if (length == 0)
            s_error (L, done, "definition_of_done: needs at least one point");
    }
    static const char *const health_keys [] = {
        "liveness_path", "readiness_path", "interval", "timeout", NULL
    };
    yaml_node_t *health = s_get (L, root, "health_checks");
    if (health && s_check_map (L, health, "health_checks", health_keys, health_keys)) {
        const char *names [2] = { "liveness_path", "readiness_path" };
        const char **targets [2] = { &t->liveness_path, &t->readiness_path };
        for (int i = 0; i < 2; i++) {
            node = s_get (L, health, names [i]);
            const char *value = node ? s_string (L, node, names [i]) : NULL;
            if (value && (value [0] != '/' || strpbrk (value, " \t\r\n?#")))
                s_error (L, node, "%s: '%s' is not an absolute HTTP path", names [i], value);
            else
                *targets [i] = value;
        }
        if ((node = s_get (L, health, "interval")))
            s_duration (L, node, "interval", 100, 3600000, &t->health_interval_ms);
        if ((node = s_get (L, health, "timeout"))
        &&  s_duration (L, node, "timeout", 10, 3600000, &t->health_timeout_ms)
        &&  t->health_interval_ms && t->health_timeout_ms >= t->health_interval_ms)
            s_error (L, node, "timeout: must be shorter than interval");
    }
    static const char *const trigger_keys [] = {
        "health_check_failures_more_than", "error_rate_increase_more_than_points",
        "latency_p99_more_than_baseline_factor", "cpu_percent_more_than", "memory_percent_more_than", NULL
    };
    static const char *const trigger_allowed [] = {
        "health_check_failures_more_than", "error_rate_increase_more_than_points",
        "latency_p99_more_than_baseline_factor", "latency_p99_floor_ms", "cpu_percent_more_than",
        "memory_percent_more_than", NULL
    };
    yaml_node_t *triggers = s_get (L, root, "rollback_triggers");
    if (triggers && s_check_map (L, triggers, "rollback_triggers", trigger_allowed, trigger_keys)) {
        if ((node = s_get (L, triggers, "latency_p99_floor_ms")))
            s_number (L, node, "latency_p99_floor_ms", 0, true, 600000, &t->latency_p99_floor_ms);
        long long failures;
        if ((node = s_get (L, triggers, "health_check_failures_more_than"))
        &&  s_integer (L, node, "health_check_failures_more_than", 0, 1000, &failures))
            t->health_check_failures_more_than = (unsigned) failures;
        if ((node = s_get (L, triggers, "error_rate_increase_more_than_points")))
            s_number (L, node, "error_rate_increase_more_than_points", 0, true, 100,
                      &t->error_rate_increase_more_than_points);
        if ((node = s_get (L, triggers, "latency_p99_more_than_baseline_factor")))
            s_number (L, node, "latency_p99_more_than_baseline_factor", 1, true, 1000,
                      &t->latency_p99_more_than_baseline_factor);
        if ((node = s_get (L, triggers, "cpu_percent_more_than")))
            s_number (L, node, "cpu_percent_more_than", 0, true, 100, &t->cpu_percent_more_than);
        if ((node = s_get (L, triggers, "memory_percent_more_than")))
            s_number (L, node, "memory_percent_more_than", 0, true, 100, &t->memory_percent_more_than);
    }
    static const char *const investigate_keys [] = { "error_rate_percent_more_than", NULL };
    yaml_node_t *investigate = s_get (L, root, "investigate");
    if (investigate && s_check_map (L, investigate, "investigate", investigate_keys, investigate_keys)
    &&  (node = s_get (L, investigate, "error_rate_percent_more_than")))
        s_number (L, node, "error_rate_percent_more_than", 0, true, 100,
                  &t->investigate_error_rate_percent_more_than);

    //  security_scan: optional, each limit optional; "unlimited" or a count.
    self->scan_limits = (al_policy_scan_limits_t) { 0, 0, AL_POLICY_SCAN_UNLIMITED, AL_POLICY_SCAN_UNLIMITED };
    static const char *const scan_keys [] = { "max_critical", "max_high", "max_medium", "max_low", NULL };
    int64_t *scan_targets [] = { &self->scan_limits.max_critical, &self->scan_limits.max_high,
                                 &self->scan_limits.max_medium, &self->scan_limits.max_low };
    yaml_node_t *scan = s_get (L, root, "security_scan");
    if (scan && s_check_map (L, scan, "security_scan", scan_keys, NULL))
        for (size_t i = 0; scan_keys [i]; i++) {
            long long limit;
            if (!(node = s_get (L, scan, scan_keys [i])))
                continue;
            if (s_scalar (node) && strcmp (s_scalar (node), "unlimited") == 0)
                *scan_targets [i] = AL_POLICY_SCAN_UNLIMITED;
            else
            if (s_integer (L, node, scan_keys [i], 0, 1000000, &limit))
                *scan_targets [i] = limit;
        }

    static const char *const soak_keys [] = { "duration", "checkpoints", "time_scale", NULL };
    yaml_node_t *soak = s_get (L, root, "soak");
    if (!soak || !s_check_map (L, soak, "soak", soak_keys, soak_keys))
        return;
    int64_t duration = 0;
    double scale = 1;
    if ((node = s_get (L, soak, "duration")))
        s_duration (L, node, "duration", 1000, INT64_C (7) * 86400000, &duration);
    if ((node = s_get (L, soak, "time_scale")))
        s_number (L, node, "time_scale", 0, true, 1, &scale);
    self->soak.time_scale = scale;
    self->soak.duration_ms = (int64_t) llround ((double) duration * scale);
    yaml_node_t *list = s_get (L, soak, "checkpoints");
    if (!list || !s_want_list (L, list, "checkpoints"))
        return;
    self->checkpoints = calloc (s_list_length (list) + 1, sizeof *self->checkpoints);
    if (!self->checkpoints)
        return;
    int64_t previous = 0;
    yaml_node_t *last = NULL;
    S_FOR_ITEMS (L, list, item) {
        int64_t ms;
        if (!s_duration (L, item, "checkpoint", 1, INT64_C (7) * 86400000, &ms))
            continue;
        last = item;
        if (ms <= previous) {
            s_error (L, item, "checkpoints: must be increasing");
            continue;
        }
        if (duration && ms > duration) {
            s_error (L, item, "checkpoints: %s is after the end of the soak", s_scalar (item));
            continue;
        }
        previous = ms;
        self->checkpoints [self->soak.checkpoint_count++] = (int64_t) llround ((double) ms * scale);
    }
    if (s_list_length (list) == 0)
        s_error (L, list, "checkpoints: needs at least one checkpoint");
    else
    if (last && duration && previous != duration)
        s_error (L, last, "checkpoints: the last checkpoint must equal the soak duration");
    self->soak.checkpoints_ms = self->checkpoints;
}

//  ---------------------------------------------------------------------------------
//  Loading

//  Reads and parses one file into policy->docs [index]; false (with errors) if it fails.
static bool
s_load_document (s_loader_t *L, size_t index)
{
    al_policy_t *self = L->policy;
    bool ok = false;
    char *text = NULL;
    yaml_parser_t parser;
    bool parser_ready = false;
    FILE *file = fopen (L->path, "rb");
    if (!file) {
        s_error_at (L, L->path, 0, 0, "cannot read: %s", strerror (errno));
        goto cleanup;
    }
    //  Read up to one byte past the limit, in a buffer that grows as needed.
    size_t size = 0, capacity = 0;
    while (true) {
        if (size == capacity) {
            capacity = capacity ? capacity * 2 : 16384;
            if (capacity > S_MAX_FILE_SIZE + 1)
                capacity = S_MAX_FILE_SIZE + 1;
            char *bigger = realloc (text, capacity);
            if (!bigger)
                goto cleanup;
            text = bigger;
        }
        size_t got = fread (text + size, 1, capacity - size, file);
        size += got;
        if (got == 0 || size > S_MAX_FILE_SIZE)
            break;
    }
    if (ferror (file)) {
        s_error_at (L, L->path, 0, 0, "cannot read: %s", strerror (errno));
        goto cleanup;
    }
    if (size > S_MAX_FILE_SIZE) {
        s_error_at (L, L->path, 0, 0, "larger than %d bytes", S_MAX_FILE_SIZE);
        goto cleanup;
    }
    if (!yaml_parser_initialize (&parser))
        goto cleanup;
    parser_ready = true;
    yaml_parser_set_input_string (&parser, (const unsigned char *) text, size);
    if (!yaml_parser_load (&parser, &self->docs [index])) {
        s_error_at (L, L->path, (unsigned) parser.problem_mark.line + 1,
                    (unsigned) parser.problem_mark.column + 1, "YAML syntax error: %s%s%s",
                    parser.problem ? parser.problem : "unknown problem",
                    parser.context ? " " : "", parser.context ? parser.context : "");
        goto cleanup;
    }
    self->doc_loaded [index] = true;
    L->doc = &self->docs [index];
    yaml_node_t *root = yaml_document_get_root_node (L->doc);
    if (!root) {
        s_error_at (L, L->path, 1, 1, "empty document");
        goto cleanup;
    }
    //  One document per file: a second one would be silently ignored otherwise.
    yaml_document_t extra;
    if (!yaml_parser_load (&parser, &extra)) {
        s_error_at (L, L->path, (unsigned) parser.problem_mark.line + 1,
                    (unsigned) parser.problem_mark.column + 1, "YAML syntax error: %s",
                    parser.problem ? parser.problem : "unknown problem");
        goto cleanup;
    }
    bool second = yaml_document_get_root_node (&extra) != NULL;
    unsigned second_line = second ? (unsigned) yaml_document_get_root_node (&extra)->start_mark.line + 1 : 0;
    yaml_document_delete (&extra);
    if (second) {
        s_error_at (L, L->path, second_line, 1, "more than one YAML document");
        goto cleanup;
    }
    //  Aliases make one node the child of several: refuse them (policies are plain
    //  data, and expanding aliases is how small inputs become huge).
    size_t node_count = (size_t) (L->doc->nodes.top - L->doc->nodes.start);
    unsigned char *seen = calloc (node_count + 1, 1);
    if (!seen)
        goto cleanup;
    bool alias = false;
    for (yaml_node_t *node = L->doc->nodes.start; node < L->doc->nodes.top && !alias; node++) {
        int children [2];
        if (node->type == YAML_SEQUENCE_NODE) {
            for (yaml_node_item_t *item = node->data.sequence.items.start;
                 item < node->data.sequence.items.top && !alias; item++)
                if (seen [*item]++)
                    alias = true;
        }
        else
        if (node->type == YAML_MAPPING_NODE) {
            for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
                 pair < node->data.mapping.pairs.top && !alias; pair++) {
                children [0] = pair->key;
                children [1] = pair->value;
                for (int i = 0; i < 2 && !alias; i++)
                    if (seen [children [i]]++ || children [i] == 1)
                        alias = true;
            }
        }
        if (alias)
            s_error (L, node, "YAML aliases (*name) are not allowed in a policy");
    }
    free (seen);
    ok = !alias;

cleanup:
    if (parser_ready)
        yaml_parser_delete (&parser);
    if (file)
        fclose (file);
    free (text);
    return ok;
}

//  Canonical JSON of a node: see the file header.
static json_t *
s_canonical (yaml_document_t *doc, yaml_node_t *node)
{
    if (node->type == YAML_MAPPING_NODE) {
        json_t *object = json_object ();
        for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
             object && pair < node->data.mapping.pairs.top; pair++) {
            const char *key = s_scalar (yaml_document_get_node (doc, pair->key));
            json_t *value = s_canonical (doc, yaml_document_get_node (doc, pair->value));
            if (!key || !value || json_object_set_new (object, key, value) != 0) {
                json_decref (object);
                object = NULL;
            }
        }
        return object;
    }
    if (node->type == YAML_SEQUENCE_NODE) {
        json_t *array = json_array ();
        for (yaml_node_item_t *item = node->data.sequence.items.start;
             array && item < node->data.sequence.items.top; item++) {
            json_t *value = s_canonical (doc, yaml_document_get_node (doc, *item));
            if (!value || json_array_append_new (array, value) != 0) {
                json_decref (array);
                array = NULL;
            }
        }
        return array;
    }
    const char *text = (const char *) node->data.scalar.value;
    if (node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
        long long integer;
        double real;
        if (strcmp (text, "true") == 0)
            return json_true ();
        if (strcmp (text, "false") == 0)
            return json_false ();
        if (strcmp (text, "null") == 0 || strcmp (text, "~") == 0 || !*text)
            return json_null ();
        if (s_parse_integer (text, &integer))
            return json_integer (integer);
        if (s_parse_real (text, &real))
            return json_real (real);
    }
    return json_stringn (text, node->data.scalar.length);
}

static bool
s_compute_digest (al_policy_t *self)
{
    json_t *all = json_object ();
    bool ok = all != NULL;
    for (size_t i = 0; ok && i < AL_POLICY_FILE_COUNT; i++) {
        json_t *value = s_canonical (&self->docs [i], yaml_document_get_root_node (&self->docs [i]));
        ok = value && json_object_set_new (all, s_file_names [i], value) == 0;
    }
    if (ok)
        self->canonical = json_dumps (all, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
    json_decref (all);
    if (!self->canonical)
        return false;
    crypto_hash_sha256 (self->digest, (const unsigned char *) self->canonical, strlen (self->canonical));
    sodium_bin2hex (self->digest_hex, sizeof self->digest_hex, self->digest, sizeof self->digest);
    return true;
}

al_policy_t *
al_policy_load (const char *dir, al_policy_errors_t **errors_p)
{
    assert (dir);
    if (errors_p)
        *errors_p = NULL;
    if (sodium_init () < 0)
        return NULL;
    al_policy_errors_t *errors = calloc (1, sizeof *errors);
    al_policy_t *self = calloc (1, sizeof *self);
    if (!errors || !self || !(self->dir = strdup (dir))) {
        free (errors);
        if (self)
            free (self->dir);
        free (self);
        return NULL;
    }
    s_loader_t loader = { .policy = self, .errors = errors };
    s_loader_t *L = &loader;
    static void (*parsers [AL_POLICY_FILE_COUNT]) (s_loader_t *, yaml_node_t *) = {
        s_parse_roles, s_parse_identities, s_parse_approvers, s_parse_types,
        s_parse_constraints, s_parse_dependencies, s_parse_quality
    };
    for (size_t i = 0; i < AL_POLICY_FILE_COUNT; i++) {
        size_t path_size = strlen (dir) + strlen (s_file_names [i]) + 2;
        L->path = malloc (path_size);
        if (!L->path) {
            s_errors_add (errors, "out of memory");
            break;
        }
        snprintf (L->path, path_size, "%s/%s", dir, s_file_names [i]);
        size_t errors_before = errors->count;
        if (s_load_document (L, i))
            parsers [i] (L, yaml_document_get_root_node (L->doc));
        if (i == S_FILE_ROLES)
            L->roles_ok = errors->count == errors_before;
        free (L->path);
        L->path = NULL;
    }
    if (errors->count == 0 && !errors->truncated && !s_compute_digest (self))
        s_errors_add (errors, "cannot compute the policy digest (out of memory)");
    if (errors->truncated)
        s_errors_push (errors, "too many errors; stopped listing them");
    if (errors->count == 0) {
        al_policy_errors_destroy (&errors);
        return self;
    }
    al_policy_destroy (&self);
    if (errors_p)
        *errors_p = errors;
    else
        al_policy_errors_destroy (&errors);
    return NULL;
}

void
al_policy_destroy (al_policy_t **self_p)
{
    assert (self_p);
    al_policy_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < AL_POLICY_FILE_COUNT; i++)
        if (self->doc_loaded [i])
            yaml_document_delete (&self->docs [i]);
    free (self->roles);
    free (self->identities);
    for (size_t i = 0; i < self->approver_count; i++)
        free (self->approvers [i].roles);
    free (self->approvers);
    free (self->keys);
    for (int type = 0; type < S_TYPE_COUNT; type++) {
        free (self->types [type].quorum.entries);
        free (self->types [type].skip_staging.entries);
    }
    free (self->break_glass.entries);
    free (self->windows);
    free (self->holidays);
    free (self->checkpoints);
    free (self->done_ids);
    free (self->done_texts);
    free (self->canonical);
    free (self->dir);
    free (self);
    *self_p = NULL;
}

//  ---------------------------------------------------------------------------------
//  Queries

const uint8_t *
al_policy_digest (const al_policy_t *self)
{
    assert (self);
    return self->digest;
}

const char *
al_policy_digest_hex (const al_policy_t *self)
{
    assert (self);
    return self->digest_hex;
}

const char *
al_policy_canonical_json (const al_policy_t *self)
{
    assert (self);
    return self->canonical;
}

const char *
al_policy_dir (const al_policy_t *self)
{
    assert (self);
    return self->dir;
}

size_t
al_policy_role_count (const al_policy_t *self)
{
    assert (self);
    return self->role_count;
}

const char *
al_policy_role_at (const al_policy_t *self, size_t index)
{
    assert (self);
    return index < self->role_count ? self->roles [index].name : NULL;
}

bool
al_policy_role_exists (const al_policy_t *self, const char *role)
{
    assert (self);
    return s_role_find (self, role) != NULL;
}

const char *
al_policy_qa_authority (const al_policy_t *self)
{
    assert (self);
    return self->qa_authority;
}

const char *
al_policy_role_kind (const al_policy_t *self, const char *role)
{
    assert (self);
    const s_role_t *found = s_role_find (self, role);
    return found ? found->kind : NULL;
}

static int
s_env_index (Airlock__Environment env)
{
    return (int) env >= 0 && (int) env < S_ENV_COUNT ? (int) env : -1;
}

bool
al_policy_may_send (const al_policy_t *self, const char *role, al_msg_type_t type,
                    Airlock__Environment env, char *rule, size_t rule_size)
{
    assert (self);
    char scratch [8];
    if (!rule) {
        rule = scratch;
        rule_size = sizeof scratch;
    }
    const char *type_name = al_msg_type_name (type);
    int env_index = s_env_index (env);
    const s_role_t *found = s_role_find (self, role);
    if (!found) {
        snprintf (rule, rule_size, "unknown role '%s': default deny", role ? role : "(none)");
        return false;
    }
    if (!type_name || (int) type <= 0 || (int) type >= S_MAX_TYPE_ID) {
        snprintf (rule, rule_size, "unknown message type: default deny");
        return false;
    }
    if (env_index < 0) {
        snprintf (rule, rule_size, "unknown environment: default deny");
        return false;
    }
    const char *env_name = s_env_names [env_index];
    if (s_broker_only (type)) {
        snprintf (rule, rule_size, "%s is sent only by the broker: no role may send it", type_name);
        return false;
    }
    if (env == AIRLOCK__ENVIRONMENT__ENV_PRODUCTION && s_is_type (type, "DeployRequest")) {
        //  Callers prefix who may not send what where (the broker: "qa may not send
        //  DeployRequest in production: "): the rule says only why.
        snprintf (rule, rule_size, "only the broker's approval gate deploys to production");
        return false;
    }
    const s_grant_t *grant = &found->grant [type][env_index];
    if (grant->line) {
        snprintf (rule, rule_size, "roles.yaml:%u:%u: %s may send %s in %s", grant->line,
                  grant->column, found->name, type_name, env_name);
        return true;
    }
    grant = &self->common [type][env_index];
    if (grant->line) {
        snprintf (rule, rule_size, "roles.yaml:%u:%u: every role (common) may send %s in %s",
                  grant->line, grant->column, type_name, env_name);
        return true;
    }
    snprintf (rule, rule_size, "no rule grants %s %s in %s: default deny (roles.yaml)",
              found->name, type_name, env_name);
    return false;
}

const char *
al_policy_capability (const al_policy_t *self, const char *role, Airlock__Environment env,
                      bool *allowed_p)
{
    assert (self);
    const s_role_t *found = s_role_find (self, role);
    int env_index = s_env_index (env);
    if (!found || env_index <= 0 || !found->capability [env_index]) {
        if (allowed_p)
            *allowed_p = false;
        return NULL;
    }
    if (allowed_p)
        *allowed_p = found->capability_allowed [env_index];
    return found->capability [env_index];
}

bool
al_policy_identity_for_key (const al_policy_t *self, const char *z85_key,
                            const char **identity_p, const char **role_p)
{
    assert (self);
    for (size_t i = 0; z85_key && i < self->identity_count; i++)
        if (strcmp (self->identities [i].key, z85_key) == 0) {
            if (identity_p)
                *identity_p = self->identities [i].identity;
            if (role_p)
                *role_p = self->identities [i].role;
            return true;
        }
    return false;
}

bool
al_policy_identity_by_name (const al_policy_t *self, const char *identity,
                            const char **key_p, const char **role_p, const char **person_p)
{
    assert (self);
    for (size_t i = 0; identity && i < self->identity_count; i++)
        if (strcmp (self->identities [i].identity, identity) == 0) {
            if (key_p)
                *key_p = self->identities [i].key;
            if (role_p)
                *role_p = self->identities [i].role;
            if (person_p)
                *person_p = self->identities [i].person;
            return true;
        }
    return false;
}

bool
al_policy_approver_for_key (const al_policy_t *self, const uint8_t public_key [32],
                            al_policy_approver_t *approver)
{
    assert (self);
    assert (public_key);
    for (size_t i = 0; i < self->key_count; i++)
        if (sodium_memcmp (self->keys [i].bytes, public_key, 32) == 0) {
            const s_approver_t *owner = &self->approvers [self->keys [i].approver];
            if (approver)
                *approver = (al_policy_approver_t) {
                    .name = owner->name, .key_id = self->keys [i].id,
                    .roles = owner->roles, .role_count = owner->role_count,
                    .revoked = self->keys [i].revoked
                };
            return true;
        }
    return false;
}

size_t
al_policy_approver_count (const al_policy_t *self)
{
    assert (self);
    return self->approver_count;
}

static const s_type_t *
s_type (const al_policy_t *self, Airlock__DeploymentType type)
{
    return (int) type > 0 && (int) type < S_TYPE_COUNT ? &self->types [type] : NULL;
}

al_policy_quorum_t
al_policy_quorum (const al_policy_t *self, Airlock__DeploymentType type)
{
    assert (self);
    const s_type_t *entry = s_type (self, type);
    return entry ? (al_policy_quorum_t) { entry->quorum.entries, entry->quorum.count }
                 : (al_policy_quorum_t) { NULL, 0 };
}

al_policy_quorum_t
al_policy_break_glass (const al_policy_t *self)
{
    assert (self);
    return (al_policy_quorum_t) { self->break_glass.entries, self->break_glass.count };
}

al_policy_quorum_t
al_policy_skip_staging_quorum (const al_policy_t *self, Airlock__DeploymentType type)
{
    assert (self);
    const s_type_t *entry = s_type (self, type);
    return entry ? (al_policy_quorum_t) { entry->skip_staging.entries, entry->skip_staging.count }
                 : (al_policy_quorum_t) { NULL, 0 };
}

bool
al_policy_requires_window (const al_policy_t *self, Airlock__DeploymentType type)
{
    assert (self);
    const s_type_t *entry = s_type (self, type);
    return entry && entry->requires_window;
}

bool
al_policy_requires_staging (const al_policy_t *self, Airlock__DeploymentType type)
{
    assert (self);
    const s_type_t *entry = s_type (self, type);
    //  An unknown type gets the safe answer.
    return !entry || entry->requires_staging;
}

int64_t
al_policy_approval_expiry_s (const al_policy_t *self)
{
    assert (self);
    return self->approval_expiry_s;
}

bool
al_policy_self_approval_forbidden (const al_policy_t *self)
{
    assert (self);
    return self->self_approval_forbidden;
}

bool
al_policy_strategy_allowed (const al_policy_t *self, Airlock__Environment env, Airlock__Strategy strategy)
{
    assert (self);
    int env_index = s_env_index (env);
    if (env_index <= 0 || (int) strategy <= 0 || (int) strategy > 3)
        return false;
    return (self->strategies [env_index] & (1u << strategy)) != 0;
}

unsigned
al_policy_max_instances (const al_policy_t *self, Airlock__Environment env)
{
    assert (self);
    int env_index = s_env_index (env);
    return env_index > 0 ? self->max_instances [env_index] : 0;
}

double
al_policy_monthly_budget_usd (const al_policy_t *self, Airlock__Environment env)
{
    assert (self);
    int env_index = s_env_index (env);
    return env_index > 0 ? self->budget [env_index] : 0;
}

double
al_policy_budget_alert_percent (const al_policy_t *self, Airlock__Environment env)
{
    assert (self);
    int env_index = s_env_index (env);
    return env_index > 0 ? self->budget_alert_percent [env_index] : AL_POLICY_DEFAULT_BUDGET_ALERT_PERCENT;
}

const char *
al_policy_timezone (const al_policy_t *self)
{
    assert (self);
    return self->timezone;
}

//  Local time of now in zone. glibc keeps one zone per process, so TZ is switched and
//  restored under a mutex (see the file header).
static pthread_mutex_t s_tz_mutex = PTHREAD_MUTEX_INITIALIZER;

static bool
s_local_time (const char *zone, time_t now, struct tm *local)
{
    pthread_mutex_lock (&s_tz_mutex);
    const char *previous = getenv ("TZ");
    char *saved = previous ? strdup (previous) : NULL;
    //  The leading ':' makes glibc read the zone file, never parse the name as a POSIX
    //  TZ rule, so the zone used is the one s_valid_timezone checked.
    char value [80];
    snprintf (value, sizeof value, ":%s", zone);
    bool ok = setenv ("TZ", value, 1) == 0;
    tzset ();
    ok = ok && localtime_r (&now, local) != NULL;
    if (saved) {
        setenv ("TZ", saved, 1);
        free (saved);
    }
    else
        unsetenv ("TZ");
    tzset ();
    pthread_mutex_unlock (&s_tz_mutex);
    return ok;
}

static bool
s_calendar_applies (const al_policy_t *self, Airlock__Environment env)
{
    int env_index = s_env_index (env);
    return env_index >= 0 && (self->calendar_envs & (1u << env_index));
}

static void
s_describe_local (const struct tm *local, const char *zone, char *text, size_t size)
{
    snprintf (text, size, "%s %04d-%02d-%02d %02d:%02d %s", s_day_names [local->tm_wday],
              local->tm_year + 1900, local->tm_mon + 1, local->tm_mday, local->tm_hour,
              local->tm_min, zone);
}

bool
al_policy_window_open (const al_policy_t *self, Airlock__Environment env, time_t now,
                       char *explanation, size_t explanation_size)
{
    assert (self);
    char scratch [8];
    if (!explanation) {
        explanation = scratch;
        explanation_size = sizeof scratch;
    }
    if (!s_calendar_applies (self, env)) {
        snprintf (explanation, explanation_size, "no deploy window applies to %s",
                  al_environment_name (env) ? al_environment_name (env) : "this environment");
        return true;
    }
    struct tm local;
    if (!s_local_time (self->timezone, now, &local)) {
        snprintf (explanation, explanation_size, "cannot compute local time in %s", self->timezone);
        return false;
    }
    char when [96];
    s_describe_local (&local, self->timezone, when, sizeof when);
    int minute = local.tm_hour * 60 + local.tm_min;
    for (size_t i = 0; i < self->window_count; i++) {
        const s_window_t *window = &self->windows [i];
        if ((window->days & (1u << local.tm_wday)) && minute >= window->start_min
        &&  minute < window->end_min) {
            snprintf (explanation, explanation_size,
                      "constraints.yaml:%u: window %02d:%02d-%02d:%02d is open (%s)", window->line,
                      window->start_min / 60, window->start_min % 60, window->end_min / 60,
                      window->end_min % 60, when);
            return true;
        }
    }
    snprintf (explanation, explanation_size, "outside every deploy window (%s)", when);
    return false;
}

static bool
s_is_holiday (const al_policy_t *self, int year, int month, int day, unsigned *line_p)
{
    for (size_t i = 0; i < self->holiday_count; i++)
        if (self->holidays [i].year == year && self->holidays [i].month == month
        &&  self->holidays [i].day == day) {
            if (line_p)
                *line_p = self->holidays [i].line;
            return true;
        }
    return false;
}

al_policy_freeze_t
al_policy_freeze_check (const al_policy_t *self, Airlock__Environment env, time_t now,
                        char *explanation, size_t explanation_size)
{
    assert (self);
    char scratch [8];
    if (!explanation) {
        explanation = scratch;
        explanation_size = sizeof scratch;
    }
    if (!s_calendar_applies (self, env)) {
        snprintf (explanation, explanation_size, "no freeze applies to %s",
                  al_environment_name (env) ? al_environment_name (env) : "this environment");
        return AL_POLICY_FREEZE_NONE;
    }
    struct tm local;
    if (!s_local_time (self->timezone, now, &local)) {
        //  Fail closed: no local time, no deploy.
        snprintf (explanation, explanation_size, "cannot compute local time in %s", self->timezone);
        return AL_POLICY_FREEZE_ACTIVE;
    }
    char when [96];
    s_describe_local (&local, self->timezone, when, sizeof when);
    int year = local.tm_year + 1900, month = local.tm_mon + 1, day = local.tm_mday;
    unsigned line;
    if (self->freeze_days & (1u << local.tm_wday)) {
        snprintf (explanation, explanation_size, "constraints.yaml:%u: %s freeze (%s)",
                  self->freeze_days_line, s_day_names [local.tm_wday], when);
        return AL_POLICY_FREEZE_ACTIVE;
    }
    if (s_is_holiday (self, year, month, day, &line)) {
        snprintf (explanation, explanation_size, "constraints.yaml:%u: holiday freeze (%s)", line, when);
        return AL_POLICY_FREEZE_ACTIVE;
    }
    if (self->month_end != S_MONTH_END_OFF) {
        //  The last business day: going back from the month's last day over weekends
        //  and holidays.
        int last = s_days_in_month (year, month);
        while (last > 1 && (s_weekday (year, month, last) == 0 || s_weekday (year, month, last) == 6
        ||                  s_is_holiday (self, year, month, last, NULL)))
            last--;
        if (day == last) {
            bool freeze = self->month_end == S_MONTH_END_FREEZE;
            snprintf (explanation, explanation_size, "month end: last business day of the month, %s (%s)",
                      freeze ? "frozen" : "flagged", when);
            return freeze ? AL_POLICY_FREEZE_ACTIVE : AL_POLICY_FREEZE_FLAGGED;
        }
    }
    snprintf (explanation, explanation_size, "no freeze (%s)", when);
    return AL_POLICY_FREEZE_NONE;
}

size_t
al_policy_critical_path (const al_policy_t *self, const Airlock__Step **steps_p)
{
    assert (self);
    if (steps_p)
        *steps_p = self->steps;
    return self->step_count;
}

int64_t
al_policy_qa_report_max_age_s (const al_policy_t *self)
{
    assert (self);
    return self->qa_max_age_s;
}

int64_t
al_policy_signal_max_age_s (const al_policy_t *self)
{
    assert (self);
    return self->signal_max_age_s;
}

const al_policy_scan_limits_t *
al_policy_scan_limits (const al_policy_t *self)
{
    assert (self);
    return &self->scan_limits;
}

const al_policy_thresholds_t *
al_policy_thresholds (const al_policy_t *self)
{
    assert (self);
    return &self->thresholds;
}

const al_policy_soak_t *
al_policy_soak (const al_policy_t *self)
{
    assert (self);
    return &self->soak;
}

size_t
al_policy_done_count (const al_policy_t *self)
{
    assert (self);
    return self->done_count;
}

const char *
al_policy_done_id (const al_policy_t *self, size_t index)
{
    assert (self);
    return index < self->done_count ? self->done_ids [index] : NULL;
}

const char *
al_policy_done_text (const al_policy_t *self, size_t index)
{
    assert (self);
    return index < self->done_count ? self->done_texts [index] : NULL;
}
