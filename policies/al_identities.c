/*  al_identities.c: append one entry to identities.yaml (see al_identities.h).

    The file is read whole (it is small: bounded at 1 MiB), parsed with libyaml to find
    the `identities` list, its entries and where its items start, and the new entry is
    written in the same indentation after the last byte of the file (or, for an empty
    flow list `[]`, in place of those two characters). The result is parsed again and
    compared entry by entry before it replaces the file.
*/
#include "policies/al_identities.h"
#include "base/al_error.h"
#include "base/al_file.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#define S_MAX_FILE (1024 * 1024)

bool
al_identities_valid_name (const char *identity)
{
    size_t length = identity ? strlen (identity) : 0;
    if (length == 0 || length > 63 || identity [0] == '-' || strcmp (identity, "broker") == 0)
        return false;
    for (const char *p = identity; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
            return false;
    return true;
}

//  The entries of a parsed file, as strings (NULL where absent).
typedef struct {
    char *key, *identity, *role, *person;
} s_entry_t;

typedef struct {
    s_entry_t *entries;
    size_t count;
    bool flow;                      // the list is a flow sequence ([...])
    size_t list_start, list_end;    // byte offsets of the list node
    size_t item_column;             // column of the first item's content (block lists)
    size_t dash_column;             // column of the first item's '-'
} s_list_t;

static void
s_list_free (s_list_t *list)
{
    for (size_t i = 0; i < list->count; i++) {
        free (list->entries [i].key);
        free (list->entries [i].identity);
        free (list->entries [i].role);
        free (list->entries [i].person);
    }
    free (list->entries);
    memset (list, 0, sizeof *list);
}

static yaml_node_t *
s_mapping_get (yaml_document_t *document, yaml_node_t *mapping, const char *name)
{
    if (!mapping || mapping->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *pair = mapping->data.mapping.pairs.start; pair < mapping->data.mapping.pairs.top; pair++) {
        yaml_node_t *key = yaml_document_get_node (document, pair->key);
        if (key && key->type == YAML_SCALAR_NODE && strcmp ((char *) key->data.scalar.value, name) == 0)
            return yaml_document_get_node (document, pair->value);
    }
    return NULL;
}

static char *
s_scalar_copy (yaml_document_t *document, yaml_node_t *mapping, const char *name)
{
    yaml_node_t *node = s_mapping_get (document, mapping, name);
    if (!node || node->type != YAML_SCALAR_NODE)
        return NULL;
    return strdup ((char *) node->data.scalar.value);
}

//  Parse text; fill list. Returns 0 or -1 with "path:line: what" in error.
static int
s_parse (const char *path, const char *text, size_t size, s_list_t *list, char *error, size_t error_size)
{
    memset (list, 0, sizeof *list);
    yaml_parser_t parser;
    yaml_document_t document;
    if (!yaml_parser_initialize (&parser)) {
        al_error_set (error, error_size, "%s: out of memory", path);
        return -1;
    }
    yaml_parser_set_input_string (&parser, (const unsigned char *) text, size);
    if (!yaml_parser_load (&parser, &document)) {
        al_error_set (error, error_size, "%s:%zu: not valid YAML: %s", path, parser.problem_mark.line + 1,
                      parser.problem ? parser.problem : "parse error");
        yaml_parser_delete (&parser);
        return -1;
    }
    int rc = -1;
    yaml_node_t *root = yaml_document_get_root_node (&document);
    yaml_node_t *items = s_mapping_get (&document, root, "identities");
    if (!items || items->type != YAML_SEQUENCE_NODE) {
        al_error_set (error, error_size, "%s: expected a mapping with an `identities:` list", path);
        goto cleanup;
    }
    size_t count = (size_t) (items->data.sequence.items.top - items->data.sequence.items.start);
    list->entries = calloc (count + 1, sizeof *list->entries);
    if (!list->entries) {
        al_error_set (error, error_size, "%s: out of memory", path);
        goto cleanup;
    }
    list->flow = items->data.sequence.style == YAML_FLOW_SEQUENCE_STYLE;
    list->list_start = items->start_mark.index;
    list->list_end = items->end_mark.index;
    list->dash_column = items->start_mark.column;
    list->item_column = items->start_mark.column + 2;
    for (yaml_node_item_t *item = items->data.sequence.items.start; item < items->data.sequence.items.top; item++) {
        yaml_node_t *entry = yaml_document_get_node (&document, *item);
        if (!entry || entry->type != YAML_MAPPING_NODE) {
            al_error_set (error, error_size, "%s:%zu: an identity entry must be a mapping", path,
                          entry ? entry->start_mark.line + 1 : 0);
            goto cleanup;
        }
        if (item == items->data.sequence.items.start)
            list->item_column = entry->start_mark.column;
        s_entry_t *copy = &list->entries [list->count++];
        copy->key = s_scalar_copy (&document, entry, "key");
        copy->identity = s_scalar_copy (&document, entry, "identity");
        copy->role = s_scalar_copy (&document, entry, "role");
        copy->person = s_scalar_copy (&document, entry, "person");
    }
    rc = 0;
cleanup:
    if (rc != 0)
        s_list_free (list);
    yaml_document_delete (&document);
    yaml_parser_delete (&parser);
    return rc;
}

//  Read path (NULL and *missing set when it does not exist). Caller frees.
static char *
s_read (const char *path, size_t *size_p, bool *missing, char *error, size_t error_size)
{
    *missing = false;
    size_t size = 0;
    char *text = al_file_read (path, S_MAX_FILE, &size, error, error_size);
    if (!text) {
        *missing = errno == ENOENT;
        return NULL;
    }
    if (strlen (text) != size) {
        free (text);
        al_error_set (error, error_size, "%s: contains a NUL byte", path);
        return NULL;
    }
    *size_p = size;
    return text;
}

static bool
s_same (const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp (a, b) == 0);
}

int
al_identities_lookup (const char *path, const char *key, const char *identity,
                      bool *listed_key, bool *listed_name, char *error, size_t error_size)
{
    if (listed_key)
        *listed_key = false;
    if (listed_name)
        *listed_name = false;
    size_t size = 0;
    bool missing = false;
    char *text = s_read (path, &size, &missing, error, error_size);
    if (!text)
        return missing ? 0 : -1;
    s_list_t list;
    int rc = s_parse (path, text, size, &list, error, error_size);
    free (text);
    if (rc != 0)
        return -1;
    for (size_t i = 0; i < list.count; i++) {
        if (listed_key && key && s_same (list.entries [i].key, key))
            *listed_key = true;
        if (listed_name && identity && s_same (list.entries [i].identity, identity))
            *listed_name = true;
    }
    s_list_free (&list);
    return 0;
}

//  A person's name as a double-quoted YAML scalar; false if it holds characters that
//  have no place in a name (control characters, quotes, backslashes).
static bool
s_person_ok (const char *person)
{
    if (!*person || strlen (person) > 127)
        return false;
    for (const unsigned char *p = (const unsigned char *) person; *p; p++)
        if (*p < 0x20 || *p == 0x7f || *p == '"' || *p == '\\')
            return false;
    return true;
}

//  Write data to path atomically, with mode.
static int
s_replace (const char *path, const char *data, size_t size, mode_t mode, char *error, size_t error_size)
{
    return al_file_write_atomic (path, data, size, mode, error, error_size);
}

int
al_identities_append (const char *path, const al_identity_entry_t *entry, char *error, size_t error_size)
{
    if (!entry->key || strlen (entry->key) != 40 || strpbrk (entry->key, "\"\\ ")) {
        al_error_set (error, error_size, "%s: the key must be a Z85 CURVE public key of 40 characters", path);
        return -1;
    }
    if (!al_identities_valid_name (entry->identity)) {
        al_error_set (error, error_size, "identity '%s': use 1-63 characters a-z, 0-9, '-', '_' (and not 'broker')",
                      entry->identity ? entry->identity : "");
        return -1;
    }
    if (!entry->role || !al_identities_valid_name (entry->role)) {
        al_error_set (error, error_size, "role '%s' is not a role name", entry->role ? entry->role : "");
        return -1;
    }
    if (entry->person && !s_person_ok (entry->person)) {
        al_error_set (error, error_size, "person '%s': 1-127 characters, no quotes, backslashes or control characters",
                      entry->person);
        return -1;
    }
    size_t size = 0;
    bool missing = false;
    char *old_text = s_read (path, &size, &missing, error, error_size);
    if (!old_text && !missing)
        return -1;
    if (missing) {
        old_text = strdup ("# identities.yaml: CURVE public key -> identity name -> role (see docs/policies.md).\n"
                           "identities:\n");
        if (!old_text) {
            al_error_set (error, error_size, "out of memory");
            return -1;
        }
        size = strlen (old_text);
    }
    int rc = -1;
    char *new_text = NULL;
    s_list_t old_list = { 0 }, new_list = { 0 };
    mode_t mode = 0644;
    struct stat st;
    if (!missing && stat (path, &st) == 0)
        mode = st.st_mode & 0777;
    bool empty_block = missing;     // "identities:" followed by nothing yet (a new file)
    if (!missing && s_parse (path, old_text, size, &old_list, error, error_size) != 0)
        goto cleanup;
    for (size_t i = 0; i < old_list.count; i++) {
        if (s_same (old_list.entries [i].identity, entry->identity)) {
            al_error_set (error, error_size, "%s: identity '%s' is taken (entry %zu)", path, entry->identity, i + 1);
            goto cleanup;
        }
        if (s_same (old_list.entries [i].key, entry->key)) {
            al_error_set (error, error_size, "%s: the key is already listed for identity '%s'", path,
                          old_list.entries [i].identity ? old_list.entries [i].identity : "?");
            goto cleanup;
        }
    }
    //  The entry, in the list's own indentation.
    size_t dash = empty_block ? 2 : old_list.dash_column;
    size_t column = empty_block ? 4 : old_list.item_column;
    if (!empty_block && (old_list.flow || old_list.count == 0)) {
        dash = 2;
        column = 4;
    }
    if (column <= dash || column > 64) {
        al_error_set (error, error_size, "%s: unusual indentation of the identities list: add the entry by hand", path);
        goto cleanup;
    }
    char lines [1024];
    int length = snprintf (lines, sizeof lines, "%*s- %*skey: \"%s\"\n%*sidentity: %s\n%*srole: %s\n",
                           (int) dash, "", (int) (column - dash - 2), "", entry->key, (int) column, "",
                           entry->identity, (int) column, "", entry->role);
    if (entry->person)
        length += snprintf (lines + length, sizeof lines - (size_t) length, "%*sperson: \"%s\"\n",
                            (int) column, "", entry->person);
    if (length <= 0 || (size_t) length >= sizeof lines) {
        al_error_set (error, error_size, "%s: entry too long", path);
        goto cleanup;
    }
    new_text = malloc (size + (size_t) length + 2);
    if (!new_text) {
        al_error_set (error, error_size, "out of memory");
        goto cleanup;
    }
    if (!empty_block && old_list.flow) {
        //  Only an empty flow list, `identities: []`, is replaced (by a block list).
        if (old_list.count != 0) {
            al_error_set (error, error_size, "%s: the identities list is written in flow style ([...]): add the entry "
                          "by hand", path);
            goto cleanup;
        }
        snprintf (new_text, size + (size_t) length + 2, "%.*s\n%s%s", (int) old_list.list_start, old_text, lines,
                  old_text + old_list.list_end);
    }
    else
        snprintf (new_text, size + (size_t) length + 2, "%s%s%s", old_text,
                  size && old_text [size - 1] != '\n' ? "\n" : "", lines);
    //  Parsed again, the file must hold the old entries unchanged and ours last.
    char check [512];
    bool same = s_parse (path, new_text, strlen (new_text), &new_list, check, sizeof check) == 0
             && new_list.count == old_list.count + 1;
    for (size_t i = 0; same && i < old_list.count; i++)
        same = s_same (old_list.entries [i].key, new_list.entries [i].key)
            && s_same (old_list.entries [i].identity, new_list.entries [i].identity)
            && s_same (old_list.entries [i].role, new_list.entries [i].role)
            && s_same (old_list.entries [i].person, new_list.entries [i].person);
    if (same) {
        const s_entry_t *last = &new_list.entries [old_list.count];
        same = s_same (last->key, entry->key) && s_same (last->identity, entry->identity)
            && s_same (last->role, entry->role) && s_same (last->person, entry->person);
    }
    if (!same) {
        al_error_set (error, error_size, "%s: cannot append safely (the identities list is not the last thing in the "
                      "file?); nothing changed. Add this entry by hand:\n%s", path, lines);
        goto cleanup;
    }
    rc = s_replace (path, new_text, strlen (new_text), mode, error, error_size);
cleanup:
    s_list_free (&old_list);
    s_list_free (&new_list);
    free (old_text);
    free (new_text);
    return rc;
}
