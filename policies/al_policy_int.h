/*  al_policy_int.h: what the files of the policy engine share (never installed).

    The engine is split by concern: al_policy_yaml.c (error list, YAML node access and
    scalar values), al_policy_roles.c (roles.yaml, identities.yaml),
    al_policy_approvers.c (approvers.yaml, deployment_types.yaml), al_policy_rules.c
    (constraints.yaml, dependencies.yaml, quality_rules.yaml), al_policy_load.c
    (reading the seven files, canonical JSON, digest, load and destroy) and
    al_policy.c (the queries). The struct of a loaded policy and the loader's state
    live here; functions shared across those files carry the policy_ prefix (internal,
    unlike the public al_policy_ ones). See policies/al_policy.h for the rules.
*/
#ifndef AL_POLICY_INT_H_INCLUDED
#define AL_POLICY_INT_H_INCLUDED

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
#include "base/al_yaml.h"

#define S_MAX_FILE_SIZE     (1024 * 1024)
#define S_MAX_ERRORS        500
#define S_MAX_TYPE_ID       64        // message type ids are proto field numbers < 64
#define S_ENV_COUNT         4         // bus (unspecified), development, staging, production
#define S_TYPE_COUNT        6         // deployment types 1..5
#define S_NAME_MAX          63

//  roles.yaml is loaded first: the other files refer to its roles.
#define S_FILE_ROLES        0

static const char *const s_file_names [AL_POLICY_FILE_COUNT] = {
    "roles.yaml", "identities.yaml", "approvers.yaml", "deployment_types.yaml",
    "constraints.yaml", "dependencies.yaml", "quality_rules.yaml"
};

static const char *const s_env_names [S_ENV_COUNT] = { "bus", "development", "staging", "production" };
static const char *const s_day_names [7] = {
    "sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"
};

//  Seed 001 capability cells: the allowed (✅) ones, then the denied (❌/N/A) ones.
static const char *const s_caps_allowed [] = {
    "write_code", "create_migrations", "write_tests", "run_tests", "write_docs",
    "coordinate", "request_deploy", NULL
};
static const char *const s_caps_denied [] = {
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
    //  Each file's walk (base/al_yaml): the names the policy holds are borrowed from
    //  these documents, so they live as long as the policy.
    al_yaml_t *yamls [AL_POLICY_FILE_COUNT];
    yaml_node_t *roots [AL_POLICY_FILE_COUNT];
    char *paths [AL_POLICY_FILE_COUNT];     // the files' paths, which the walks borrow

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
    al_yaml_t *yaml;            // the walk of that file: its document and its errors
    bool roles_ok;              // roles.yaml loaded: role references can be checked
} s_loader_t;


//  Errors at a node of the document being loaded ("path:line:column: what"), kept by
//  the file's al_yaml_t in the order they are found (base/al_yaml.h).
#define policy_line(node) ((unsigned) (node)->start_mark.line + 1)
#define policy_col(node) ((unsigned) (node)->start_mark.column + 1)
#define policy_error(L, node, ...) al_yaml_error ((L)->yaml, (node), NULL, __VA_ARGS__)

//  Each item of a list (a node), as item.
#define S_FOR_ITEMS(L, list, item) \
    for (yaml_node_item_t *item##_it = (list)->data.sequence.items.start; \
         item##_it < (list)->data.sequence.items.top; item##_it++) \
        for (yaml_node_t *item = policy_node ((L), *item##_it); item; item = NULL)

//  al_policy_yaml.c
void policy_errors_push (al_policy_errors_t *errors, const char *text);

void policy_errors_add (al_policy_errors_t *errors, const char *text);

yaml_node_t *policy_node (s_loader_t *L, int index);

const char *policy_scalar (yaml_node_t *node);

bool policy_check_map (s_loader_t *L, yaml_node_t *node, const char *what, const char *const *allowed, const char *const *required);

yaml_node_t *policy_get (s_loader_t *L, yaml_node_t *map, const char *key);

bool policy_want_list (s_loader_t *L, yaml_node_t *node, const char *what);

size_t policy_list_length (yaml_node_t *list);

const char *policy_string (s_loader_t *L, yaml_node_t *node, const char *what);

bool policy_bool (s_loader_t *L, yaml_node_t *node, const char *what, bool *out);

bool policy_parse_integer (const char *text, long long *out);

bool policy_parse_real (const char *text, double *out);

bool policy_integer (s_loader_t *L, yaml_node_t *node, const char *what, long long min, long long max, long long *out);

bool policy_number (s_loader_t *L, yaml_node_t *node, const char *what, double min, bool min_exclusive, double max, double *out);

bool policy_duration (s_loader_t *L, yaml_node_t *node, const char *what, int64_t min_ms, int64_t max_ms, int64_t *out_ms);

int policy_lookup (const char *const *names, size_t count, const char *value);

bool policy_valid_name (const char *name);

//  al_policy_roles.c
s_role_t *policy_role_find (const al_policy_t *self, const char *name);

bool policy_broker_only (al_msg_type_t type);

bool policy_is_type (al_msg_type_t type, const char *name);

void policy_parse_roles (s_loader_t *L, yaml_node_t *root);

void policy_check_role_ref (s_loader_t *L, yaml_node_t *node, const char *role, bool human);

void policy_parse_identities (s_loader_t *L, yaml_node_t *root);

//  al_policy_approvers.c
void policy_parse_approvers (s_loader_t *L, yaml_node_t *root);

void policy_parse_types (s_loader_t *L, yaml_node_t *root);

//  al_policy_rules.c
bool policy_valid_timezone (const char *name);

int policy_days_in_month (int year, int month);

int policy_weekday (int year, int month, int day);

void policy_parse_constraints (s_loader_t *L, yaml_node_t *root);

void policy_parse_dependencies (s_loader_t *L, yaml_node_t *root);

void policy_parse_quality (s_loader_t *L, yaml_node_t *root);

#endif
