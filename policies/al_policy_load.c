/*  al_policy_load.c: loading a policy directory: the seven files, canonical JSON, digest.

    Part of the policy engine; see policies/al_policy.c for its rules and
    policies/al_policy_int.h for how its files divide the work.
*/
#include "policies/al_policy_int.h"
#include "base/al_yaml.h"

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
        policy_error_at (L, L->path, 0, 0, "cannot read: %s", strerror (errno));
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
        policy_error_at (L, L->path, 0, 0, "cannot read: %s", strerror (errno));
        goto cleanup;
    }
    if (size > S_MAX_FILE_SIZE) {
        policy_error_at (L, L->path, 0, 0, "larger than %d bytes", S_MAX_FILE_SIZE);
        goto cleanup;
    }
    //  Aliases make one node the child of several: refused, like in every airlock file
    //  (base/al_yaml.h): policies are plain data a human reviews, and expanding aliases
    //  is how small inputs become huge.
    size_t alias_line = 0, alias_column = 0;
    char alias_message [160];
    if (al_yaml_find_alias ((const unsigned char *) text, size, &alias_line, &alias_column,
                            alias_message, sizeof alias_message)) {
        policy_error_at (L, L->path, (unsigned) alias_line, (unsigned) alias_column, "%s", alias_message);
        goto cleanup;
    }
    if (!yaml_parser_initialize (&parser))
        goto cleanup;
    parser_ready = true;
    yaml_parser_set_input_string (&parser, (const unsigned char *) text, size);
    if (!yaml_parser_load (&parser, &self->docs [index])) {
        policy_error_at (L, L->path, (unsigned) parser.problem_mark.line + 1,
                    (unsigned) parser.problem_mark.column + 1, "YAML syntax error: %s%s%s",
                    parser.problem ? parser.problem : "unknown problem",
                    parser.context ? " " : "", parser.context ? parser.context : "");
        goto cleanup;
    }
    self->doc_loaded [index] = true;
    L->doc = &self->docs [index];
    yaml_node_t *root = yaml_document_get_root_node (L->doc);
    if (!root) {
        policy_error_at (L, L->path, 1, 1, "empty document");
        goto cleanup;
    }
    //  One document per file: a second one would be silently ignored otherwise.
    yaml_document_t extra;
    if (!yaml_parser_load (&parser, &extra)) {
        policy_error_at (L, L->path, (unsigned) parser.problem_mark.line + 1,
                    (unsigned) parser.problem_mark.column + 1, "YAML syntax error: %s",
                    parser.problem ? parser.problem : "unknown problem");
        goto cleanup;
    }
    bool second = yaml_document_get_root_node (&extra) != NULL;
    unsigned second_line = second ? (unsigned) yaml_document_get_root_node (&extra)->start_mark.line + 1 : 0;
    yaml_document_delete (&extra);
    if (second) {
        policy_error_at (L, L->path, second_line, 1, "more than one YAML document");
        goto cleanup;
    }
    ok = true;

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
            const char *key = policy_scalar (yaml_document_get_node (doc, pair->key));
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
        if (s_load_document (L, i))
            parsers [i] (L, yaml_document_get_root_node (L->doc));
        if (i == S_FILE_ROLES)
            L->roles_ok = errors->count == errors_before;
        free (L->path);
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
