/*  al_policy_approvers.c: parsing approvers.yaml (keys) and deployment_types.yaml (quorums).

    Part of the policy engine; see policies/al_policy.c for its rules and
    policies/al_policy_int.h for how its files divide the work.
*/
#include "policies/al_policy_int.h"

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
    if (!policy_want_list (L, list, what))
        return;
    s_key_t *keys = realloc (self->keys, (self->key_count + policy_list_length (list) + 1) * sizeof *keys);
    if (!keys)
        return;
    self->keys = keys;
    static const char *const key_keys [] = { "id", "ed25519", "ssh", NULL };
    S_FOR_ITEMS (L, list, entry) {
        if (!policy_check_map (L, entry, what, key_keys, NULL))
            continue;
        yaml_node_t *id_node = policy_get (L, entry, "id");
        yaml_node_t *raw_node = policy_get (L, entry, "ed25519");
        yaml_node_t *ssh_node = policy_get (L, entry, "ssh");
        s_key_t key = { .approver = approver, .revoked = revoked, .id = "" };
        if (id_node && !(key.id = policy_string (L, id_node, "id")))
            continue;
        if (!!raw_node == !!ssh_node) {
            policy_error (L, entry, "%s: each key needs exactly one of 'ed25519' or 'ssh'", what);
            continue;
        }
        yaml_node_t *value_node = raw_node ? raw_node : ssh_node;
        const char *value = policy_string (L, value_node, raw_node ? "ed25519" : "ssh");
        if (!value)
            continue;
        size_t length = 0;
        bool decoded = raw_node
            ? s_decode_hex32 (value, key.bytes)
              || (s_decode_base64 (value, key.bytes, 32, &length) && length == 32)
            : s_decode_ssh (value, key.bytes);
        if (!decoded) {
            policy_error (L, value_node, raw_node
                     ? "ed25519: expected a 32-byte public key in hex (64 characters) or base64"
                     : "ssh: expected an OpenSSH line 'ssh-ed25519 AAAA... [comment]'");
            continue;
        }
        if (!crypto_core_ed25519_is_valid_point (key.bytes)) {
            policy_error (L, value_node, "%s: not a valid Ed25519 public key", what);
            continue;
        }
        bool duplicate = false;
        for (size_t i = 0; i < self->key_count && !duplicate; i++)
            if (memcmp (self->keys [i].bytes, key.bytes, 32) == 0) {
                policy_error (L, value_node, "duplicate key (already listed for approver '%s')",
                         self->approvers [self->keys [i].approver].name);
                duplicate = true;
            }
        if (!duplicate)
            self->keys [self->key_count++] = key;
    }
}

void
policy_parse_approvers (s_loader_t *L, yaml_node_t *root)
{
    al_policy_t *self = L->policy;
    static const char *const keys [] = { "approvers", NULL };
    if (!policy_check_map (L, root, "approvers.yaml", keys, keys))
        return;
    yaml_node_t *list = policy_get (L, root, "approvers");
    if (!list || !policy_want_list (L, list, "approvers"))
        return;
    self->approvers = calloc (policy_list_length (list) + 1, sizeof *self->approvers);
    if (!self->approvers)
        return;
    static const char *const entry_keys [] = { "name", "roles", "keys", "revoked_keys", NULL };
    static const char *const entry_required [] = { "name", "roles", "keys", NULL };
    S_FOR_ITEMS (L, list, entry) {
        if (!policy_check_map (L, entry, "approver", entry_keys, entry_required))
            continue;
        yaml_node_t *name_node = policy_get (L, entry, "name");
        const char *name = name_node ? policy_string (L, name_node, "name") : NULL;
        if (!name)
            continue;
        bool duplicate = false;
        for (size_t i = 0; i < self->approver_count; i++)
            if (strcmp (self->approvers [i].name, name) == 0)
                duplicate = true;
        if (duplicate) {
            policy_error (L, name_node, "duplicate approver '%s'", name);
            continue;
        }
        s_approver_t *approver = &self->approvers [self->approver_count];
        approver->name = name;
        yaml_node_t *roles = policy_get (L, entry, "roles");
        if (roles && policy_want_list (L, roles, "roles")) {
            approver->roles = calloc (policy_list_length (roles) + 1, sizeof *approver->roles);
            if (!approver->roles)
                continue;
            if (policy_list_length (roles) == 0)
                policy_error (L, roles, "approver '%s' has no roles", name);
            S_FOR_ITEMS (L, roles, role_node) {
                const char *role = policy_string (L, role_node, "role");
                if (!role)
                    continue;
                policy_check_role_ref (L, role_node, role, true);
                approver->roles [approver->role_count++] = role;
            }
        }
        self->approver_count++;
        yaml_node_t *key_list = policy_get (L, entry, "keys");
        if (key_list)
            s_parse_keys (L, key_list, self->approver_count - 1, false);
        if ((key_list = policy_get (L, entry, "revoked_keys")))
            s_parse_keys (L, key_list, self->approver_count - 1, true);
    }
}

//  ---------------------------------------------------------------------------------
//  deployment_types.yaml

static void
s_parse_quorum (s_loader_t *L, yaml_node_t *list, const char *what, s_quorum_t *quorum)
{
    if (!policy_want_list (L, list, what))
        return;
    if (policy_list_length (list) == 0) {
        policy_error (L, list, "%s: needs at least one {role, count}", what);
        return;
    }
    quorum->entries = calloc (policy_list_length (list), sizeof *quorum->entries);
    if (!quorum->entries)
        return;
    static const char *const keys [] = { "role", "count", NULL };
    S_FOR_ITEMS (L, list, entry) {
        if (!policy_check_map (L, entry, what, keys, keys))
            continue;
        yaml_node_t *role_node = policy_get (L, entry, "role");
        yaml_node_t *count_node = policy_get (L, entry, "count");
        const char *role = role_node ? policy_string (L, role_node, "role") : NULL;
        long long count;
        if (!role || !count_node || !policy_integer (L, count_node, "count", 1, 100, &count))
            continue;
        policy_check_role_ref (L, role_node, role, true);
        //  A quorum no signature could ever meet is a policy that locks production
        //  forever: the role must be allowed to send SignedApproval in production.
        const s_role_t *found = L->roles_ok ? policy_role_find (L->policy, role) : NULL;
        al_msg_type_t approval = al_msg_type_from_name ("SignedApproval");
        if (found && found->kind && strcmp (found->kind, "human") == 0
        &&  !found->grant [approval][AIRLOCK__ENVIRONMENT__ENV_PRODUCTION].line)
            policy_error (L, role_node, "%s: role '%s' may not send SignedApproval in production "
                     "(roles.yaml), so it can never approve", what, role);
        bool duplicate = false;
        for (size_t i = 0; i < quorum->count; i++)
            if (strcmp (quorum->entries [i].role, role) == 0)
                duplicate = true;
        if (duplicate) {
            policy_error (L, role_node, "%s: role '%s' listed twice", what, role);
            continue;
        }
        quorum->entries [quorum->count++] = (al_policy_quorum_entry_t) { role, (unsigned) count };
    }
}

void
policy_parse_types (s_loader_t *L, yaml_node_t *root)
{
    al_policy_t *self = L->policy;
    static const char *const keys [] = {
        "approval_expiry", "self_approval", "break_glass", "types", NULL
    };
    if (!policy_check_map (L, root, "deployment_types.yaml", keys, keys))
        return;
    yaml_node_t *node;
    int64_t ms;
    if ((node = policy_get (L, root, "approval_expiry"))
    &&  policy_duration (L, node, "approval_expiry", 60000, INT64_C (7) * 86400000, &ms))
        self->approval_expiry_s = ms / 1000;
    if ((node = policy_get (L, root, "self_approval"))) {
        const char *value = policy_string (L, node, "self_approval");
        if (value && strcmp (value, "forbidden") != 0)
            policy_error (L, node, "self_approval: must be 'forbidden'");
        self->self_approval_forbidden = true;
    }
    if ((node = policy_get (L, root, "break_glass")))
        s_parse_quorum (L, node, "break_glass", &self->break_glass);

    yaml_node_t *types = policy_get (L, root, "types");
    if (!types || !policy_check_map (L, types, "types", NULL, NULL))
        return;
    static const char *const type_keys [] = {
        "description", "quorum", "requires_window", "requires_staging", "skip_staging_quorum", NULL
    };
    static const char *const type_required [] = {
        "quorum", "requires_window", "requires_staging", NULL
    };
    for (yaml_node_pair_t *pair = types->data.mapping.pairs.start;
         pair < types->data.mapping.pairs.top; pair++) {
        yaml_node_t *key = policy_node (L, pair->key);
        const char *name = policy_scalar (key);
        if (!name)
            continue;
        int type = (int) al_deployment_type_from_name (name);
        if (type <= 0 || type >= S_TYPE_COUNT) {
            policy_error (L, key, "unknown deployment type '%s' (expected standard, hotfix, rollback, "
                     "scheduled or emergency)", name);
            continue;
        }
        s_type_t *entry = &self->types [type];
        if (entry->present)
            continue;   // duplicate key, reported
        yaml_node_t *body = policy_node (L, pair->value);
        char what [64];
        snprintf (what, sizeof what, "type '%s'", name);
        if (!policy_check_map (L, body, what, type_keys, type_required))
            continue;
        entry->present = true;
        if ((node = policy_get (L, body, "description")))
            entry->description = policy_string (L, node, "description");
        if ((node = policy_get (L, body, "quorum")))
            s_parse_quorum (L, node, "quorum", &entry->quorum);
        if ((node = policy_get (L, body, "requires_window")))
            policy_bool (L, node, "requires_window", &entry->requires_window);
        if ((node = policy_get (L, body, "requires_staging")))
            policy_bool (L, node, "requires_staging", &entry->requires_staging);
        if ((node = policy_get (L, body, "skip_staging_quorum"))) {
            if (!entry->requires_staging)
                policy_error (L, node, "%s: skip_staging_quorum needs requires_staging: true", what);
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
            policy_error (L, body, "%s: quorum, skip_staging_quorum and break_glass ask for %u signatures together; "
                     "at most %d", what, total, AL_POLICY_MAX_APPROVAL_SLOTS);
    }
    for (int type = 1; type < S_TYPE_COUNT; type++)
        if (!self->types [type].present)
            policy_error (L, types, "missing deployment type '%s'",
                     al_deployment_type_name ((Airlock__DeploymentType) type));
}
