/*  al_policy_load.c: loading a policy directory: the seven files, canonical JSON, digest.

    Part of the policy engine; see policies/al_policy.c for its rules and
    policies/al_policy_int.h for how its files divide the work.
*/
#include "policies/al_policy_int.h"

//  ---------------------------------------------------------------------------------
//  Loading

//  Reads and parses one file into policy->yamls [index] (base/al_yaml: size limit,
//  aliases refused, one document) and returns its root, or NULL with the errors kept
//  by the file's al_yaml_t.
static yaml_node_t *
s_load_document (s_loader_t *L, size_t index)
{
    al_policy_t *self = L->policy;
    self->yamls [index] = al_yaml_new (L->path, NULL, 0);
    L->yaml = self->yamls [index];
    if (!L->yaml)
        return NULL;
    yaml_node_t *root = al_yaml_load (L->yaml, S_MAX_FILE_SIZE, "empty document");
    if (root)
        al_yaml_end (L->yaml, s_file_names [index]);
    self->roots [index] = root;
    return root;
}

//  Moves the errors of the file just walked into the policy's list, one per line.
static void
s_take_errors (s_loader_t *L)
{
    if (!L->yaml) {
        policy_errors_add (L->errors, "out of memory");
        return;
    }
    size_t size = (size_t) AL_YAML_MAX_ERRORS * 1024 + 64;
    char *text = malloc (size);
    if (!text) {
        policy_errors_add (L->errors, "out of memory");
        return;
    }
    if (al_yaml_report (L->yaml, text, size) != 0)
        for (char *line = strtok (text, "\n"); line; line = strtok (NULL, "\n"))
            policy_errors_add (L->errors, line);
    free (text);
}

//  Canonical JSON of a node: see the file header.
static json_t *
s_canonical (al_yaml_t *doc, yaml_node_t *node)
{
    if (node->type == YAML_MAPPING_NODE) {
        json_t *object = json_object ();
        for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
             object && pair < node->data.mapping.pairs.top; pair++) {
            const char *key = policy_scalar (al_yaml_node (doc, pair->key));
            json_t *value = s_canonical (doc, al_yaml_node (doc, pair->value));
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
            json_t *value = s_canonical (doc, al_yaml_node (doc, *item));
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
        if (policy_parse_integer (text, &integer))
            return json_integer (integer);
        if (policy_parse_real (text, &real))
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
        json_t *value = s_canonical (self->yamls [i], self->roots [i]);
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
        policy_parse_roles, policy_parse_identities, policy_parse_approvers, policy_parse_types,
        policy_parse_constraints, policy_parse_dependencies, policy_parse_quality
    };
    for (size_t i = 0; i < AL_POLICY_FILE_COUNT; i++) {
        size_t path_size = strlen (dir) + strlen (s_file_names [i]) + 2;
        L->path = malloc (path_size);
        if (!L->path) {
            policy_errors_add (errors, "out of memory");
            break;
        }
        snprintf (L->path, path_size, "%s/%s", dir, s_file_names [i]);
        size_t errors_before = errors->count;
        yaml_node_t *root = s_load_document (L, i);
        if (root)
            parsers [i] (L, root);
        s_take_errors (L);
        L->yaml = NULL;
        if (i == S_FILE_ROLES)
            L->roles_ok = errors->count == errors_before;
        self->paths [i] = L->path;      // borrowed by the file's al_yaml_t
        L->path = NULL;
    }
    if (errors->count == 0 && !errors->truncated && !s_compute_digest (self))
        policy_errors_add (errors, "cannot compute the policy digest (out of memory)");
    if (errors->truncated)
        policy_errors_push (errors, "too many errors; stopped listing them");
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
    for (size_t i = 0; i < AL_POLICY_FILE_COUNT; i++) {
        al_yaml_destroy (&self->yamls [i]);
        free (self->paths [i]);
    }
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
