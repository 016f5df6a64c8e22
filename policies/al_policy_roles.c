/*  al_policy_roles.c: parsing roles.yaml (grants, capabilities) and identities.yaml.

    Part of the policy engine; see policies/al_policy.c for its rules and
    policies/al_policy_int.h for how its files divide the work.
*/
#include "policies/al_policy_int.h"

//  ---------------------------------------------------------------------------------
//  roles.yaml

s_role_t *
policy_role_find (const al_policy_t *self, const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < self->role_count; i++)
        if (strcmp (self->roles [i].name, name) == 0)
            return &self->roles [i];
    return NULL;
}

//  True for message types only the broker produces: never grantable.
bool
policy_broker_only (al_msg_type_t type)
{
    const char *name = al_msg_type_name (type);
    return name && (strcmp (name, "ExecuteDeploy") == 0 || strcmp (name, "ProductionGrant") == 0
                ||  strcmp (name, "Ack") == 0 || strcmp (name, "Denied") == 0
                ||  strcmp (name, "Checkpoint") == 0);
}

bool
policy_is_type (al_msg_type_t type, const char *name)
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
    if (!policy_want_list (L, list, what))
        return;
    static const char *const keys [] = { "types", "environments", NULL };
    S_FOR_ITEMS (L, list, grant) {
        if (!policy_check_map (L, grant, what, keys, keys))
            continue;
        yaml_node_t *types = policy_get (L, grant, "types");
        yaml_node_t *envs = policy_get (L, grant, "environments");
        if (!types || !envs || !policy_want_list (L, types, "types") || !policy_want_list (L, envs, "environments"))
            continue;
        if (policy_list_length (types) == 0)
            policy_error (L, types, "%s: a grant needs at least one message type", who);
        if (policy_list_length (envs) == 0)
            policy_error (L, envs, "%s: a grant needs at least one environment", who);
        S_FOR_ITEMS (L, types, type_node) {
            const char *type_name = policy_string (L, type_node, "message type");
            if (!type_name)
                continue;
            al_msg_type_t type = al_msg_type_from_name (type_name);
            if (type == AL_MSG_NONE) {
                policy_error (L, type_node, "unknown message type '%s'", type_name);
                continue;
            }
            assert ((int) type > 0 && (int) type < S_MAX_TYPE_ID);
            if (policy_broker_only (type)) {
                policy_error (L, type_node, "%s: %s is sent only by the broker and may not be granted",
                         who, type_name);
                continue;
            }
            S_FOR_ITEMS (L, envs, env_node) {
                const char *env_name = policy_string (L, env_node, "environment");
                if (!env_name)
                    continue;
                int env = policy_lookup (s_env_names, S_ENV_COUNT, env_name);
                if (env < 0) {
                    policy_error (L, env_node, "unknown environment '%s' (expected development, "
                             "staging, production or bus)", env_name);
                    continue;
                }
                if (env == AIRLOCK__ENVIRONMENT__ENV_PRODUCTION && policy_is_type (type, "DeployRequest")) {
                    policy_error (L, type_node, "%s: granting DeployRequest in production would let it "
                             "send a production deploy; only the broker's approval gate can", who);
                    continue;
                }
                s_grant_t *cell = &table [type][env];
                if (cell->line) {
                    policy_error (L, type_node, "%s: duplicate grant of %s in %s (first at line %u)",
                             who, type_name, env_name, cell->line);
                    continue;
                }
                cell->line = policy_line (type_node);
                cell->column = policy_col (type_node);
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
                policy_error (L, node, "role '%s' is %s in %s but line %u grants %s there",
                         role->name, cap, env_name, role->grant [type][env].line,
                         al_msg_type_name ((al_msg_type_t) type));
    }
    else
    if ((strcmp (cap, "cannot_deploy") == 0 || strcmp (cap, "cannot_execute") == 0
    ||   strcmp (cap, "cannot_run") == 0) && role->grant [deploy][env].line)
        policy_error (L, node, "role '%s' is %s in %s but line %u grants DeployRequest there",
                 role->name, cap, env_name, role->grant [deploy][env].line);
    else
    if (strcmp (cap, "cannot_run") == 0 && role->grant [report][env].line)
        policy_error (L, node, "role '%s' is %s in %s but line %u grants QaReport there",
                 role->name, cap, env_name, role->grant [report][env].line);
    else
    if (strcmp (cap, "request_deploy") == 0 && !role->grant [deploy][env].line)
        policy_error (L, node, "role '%s' may request_deploy in %s but no grant of DeployRequest "
                 "there", role->name, env_name);
    else
    if (strcmp (cap, "run_tests") == 0 && !role->grant [report][env].line)
        policy_error (L, node, "role '%s' may run_tests in %s but no grant of QaReport there",
                 role->name, env_name);
}

void
policy_parse_roles (s_loader_t *L, yaml_node_t *root)
{
    al_policy_t *self = L->policy;
    static const char *const keys [] = { "version", "default", "common", "qa_authority", "roles", NULL };
    static const char *const required [] = { "version", "default", "roles", NULL };
    if (!policy_check_map (L, root, "roles.yaml", keys, required))
        return;
    yaml_node_t *node;
    long long version;
    if ((node = policy_get (L, root, "version")) && policy_integer (L, node, "version", 1, 1000, &version)
    &&  version != 1)
        policy_error (L, node, "version: unsupported version %lld (expected 1)", version);
    if ((node = policy_get (L, root, "default"))) {
        const char *value = policy_string (L, node, "default");
        if (value && strcmp (value, "deny") != 0)
            policy_error (L, node, "default: must be 'deny' (anything not granted is denied)");
    }
    if ((node = policy_get (L, root, "common")))
        s_parse_grants (L, node, NULL, self->common);


    yaml_node_t *roles = policy_get (L, root, "roles");
    if (!roles || !policy_check_map (L, roles, "roles", NULL, NULL))
        return;
    size_t count = (size_t) (roles->data.mapping.pairs.top - roles->data.mapping.pairs.start);
    self->roles = calloc (count ? count : 1, sizeof *self->roles);
    if (!self->roles) {
        policy_error (L, roles, "out of memory");
        return;
    }
    static const char *const role_keys [] = { "kind", "description", "capabilities", "send", NULL };
    static const char *const role_required [] = { "kind", "send", NULL };
    static const char *const kinds [] = { "bus-agent", "ai-agent", "human", NULL };
    static const char *const env_keys [] = { "development", "staging", "production", NULL };
    for (yaml_node_pair_t *pair = roles->data.mapping.pairs.start;
         pair < roles->data.mapping.pairs.top; pair++) {
        yaml_node_t *key = policy_node (L, pair->key);
        yaml_node_t *body = policy_node (L, pair->value);
        const char *name = policy_scalar (key);
        if (!name)
            continue;
        if (!policy_valid_name (name)) {
            policy_error (L, key, "role name '%s': use 1-63 characters a-z, 0-9, '-', '_'", name);
            continue;
        }
        if (policy_role_find (self, name))
            continue;           // duplicate, already reported by policy_check_map
        char what [96];
        snprintf (what, sizeof what, "role '%s'", name);
        if (!policy_check_map (L, body, what, role_keys, role_required))
            continue;
        s_role_t *role = &self->roles [self->role_count++];
        role->name = name;
        if ((node = policy_get (L, body, "kind"))) {
            role->kind = policy_string (L, node, "kind");
            if (role->kind && policy_lookup (kinds, 3, role->kind) < 0) {
                policy_error (L, node, "%s: unknown kind '%s' (expected bus-agent, ai-agent or human)",
                         what, role->kind);
                role->kind = NULL;
            }
        }
        if ((node = policy_get (L, body, "description")))
            policy_string (L, node, "description");
        if ((node = policy_get (L, body, "send")))
            s_parse_grants (L, node, name, role->grant);
        yaml_node_t *caps = policy_get (L, body, "capabilities");
        if (caps && policy_check_map (L, caps, "capabilities", env_keys, env_keys)) {
            for (int env = 1; env < S_ENV_COUNT; env++) {
                yaml_node_t *cell = policy_get (L, caps, s_env_names [env]);
                const char *cap = cell ? policy_string (L, cell, "capability") : NULL;
                if (!cap)
                    continue;
                if (policy_lookup (s_caps_allowed, 99, cap) >= 0)
                    role->capability_allowed [env] = true;
                else
                if (policy_lookup (s_caps_denied, 99, cap) < 0) {
                    policy_error (L, cell, "unknown capability '%s'", cap);
                    continue;
                }
                role->capability [env] = cap;
                s_check_capability (L, cell, role, env);
            }
        }
    }
    //  The QA authority: a bus agent (never an AI agent nor a human's client) that may
    //  send QaReport in staging, where releases are validated.
    if ((node = policy_get (L, root, "qa_authority"))) {
        const char *name = policy_string (L, node, "qa_authority");
        const s_role_t *found = name ? policy_role_find (self, name) : NULL;
        al_msg_type_t report = al_msg_type_from_name ("QaReport");
        if (name && !found)
            policy_error (L, node, "qa_authority: unknown role '%s' (not in roles)", name);
        else
        if (found && (!found->kind || strcmp (found->kind, "bus-agent") != 0))
            policy_error (L, node, "qa_authority: role '%s' is %s: the QA verdict comes from a bus agent (kind: "
                     "bus-agent), never from an AI agent or a human's client", name, found->kind ? found->kind : "of no kind");
        else
        if (found && !found->grant [report][AIRLOCK__ENVIRONMENT__ENV_STAGING].line)
            policy_error (L, node, "qa_authority: role '%s' is not granted QaReport in staging", name);
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
void
policy_check_role_ref (s_loader_t *L, yaml_node_t *node, const char *role, bool human)
{
    if (!L->roles_ok)
        return;             // roles.yaml failed: its errors say why; do not pile on
    s_role_t *found = policy_role_find (L->policy, role);
    if (!found)
        policy_error (L, node, "unknown role '%s' (not in roles.yaml)", role);
    else
    if (human && (!found->kind || strcmp (found->kind, "human") != 0))
        policy_error (L, node, "role '%s' is not a human role (kind: human in roles.yaml)", role);
}

void
policy_parse_identities (s_loader_t *L, yaml_node_t *root)
{
    al_policy_t *self = L->policy;
    static const char *const keys [] = { "identities", NULL };
    if (!policy_check_map (L, root, "identities.yaml", keys, keys))
        return;
    yaml_node_t *list = policy_get (L, root, "identities");
    if (!list || !policy_want_list (L, list, "identities"))
        return;
    self->identities = calloc (policy_list_length (list) + 1, sizeof *self->identities);
    if (!self->identities)
        return;
    static const char *const entry_keys [] = { "key", "identity", "role", "person", NULL };
    static const char *const required_keys [] = { "key", "identity", "role", NULL };
    S_FOR_ITEMS (L, list, entry) {
        if (!policy_check_map (L, entry, "identity", entry_keys, required_keys))
            continue;
        yaml_node_t *key_node = policy_get (L, entry, "key");
        yaml_node_t *name_node = policy_get (L, entry, "identity");
        yaml_node_t *role_node = policy_get (L, entry, "role");
        yaml_node_t *person_node = policy_get (L, entry, "person");
        const char *key = key_node ? policy_string (L, key_node, "key") : NULL;
        const char *name = name_node ? policy_string (L, name_node, "identity") : NULL;
        const char *role = role_node ? policy_string (L, role_node, "role") : NULL;
        //  The person behind an agent or ci identity: the name they have in approvers.yaml,
        //  so the gate can refuse their approval of a release they submitted (four eyes).
        const char *person = person_node ? policy_string (L, person_node, "person") : NULL;
        bool valid = key && name && role && (!person_node || person);
        if (person && (!*person || strlen (person) > 127)) {
            policy_error (L, person_node, "person: expected 1-127 characters (the person's name as "
                     "approvers.yaml spells it)");
            valid = false;
        }
        if (key && !s_valid_z85_key (key)) {
            policy_error (L, key_node, "key: expected a Z85 CURVE public key of 40 characters");
            valid = false;
        }
        if (name && !policy_valid_name (name)) {
            policy_error (L, name_node, "identity '%s': use 1-63 characters a-z, 0-9, '-', '_'", name);
            valid = false;
        }
        else
        if (name && strcmp (name, "broker") == 0) {
            //  The name the broker signs its own rows and grants with: deploy-manager
            //  takes an ExecuteDeploy from it alone.
            policy_error (L, name_node, "identity 'broker' is reserved for the broker itself");
            valid = false;
        }
        if (role)
            policy_check_role_ref (L, role_node, role, false);
        for (size_t i = 0; valid && i < self->identity_count; i++) {
            if (strcmp (self->identities [i].key, key) == 0) {
                policy_error (L, key_node, "duplicate key (also identity '%s')", self->identities [i].identity);
                valid = false;
            }
            else
            if (strcmp (self->identities [i].identity, name) == 0) {
                policy_error (L, name_node, "duplicate identity '%s'", name);
                valid = false;
            }
        }
        if (valid)
            self->identities [self->identity_count++] = (s_identity_t) { key, name, role, person };
    }
}
