/*  al_yaml.h: the strict YAML walk that every configuration loader shares.

    A loader (services.yaml in deploy/al_services, notifications.yaml in
    agents/al_notify_config, the policy files in policies/, airlock.yaml)
    makes one al_yaml_t per load, reads the file with al_yaml_load, walks the document
    against its own schema with the functions below and ends with al_yaml_end and
    al_yaml_report. The schema, the defaults and what a value means stay the loader's;
    this module owns the document, the errors and the rules every loader keeps alike:

    - Every problem is recorded as "path:line:col: field: what is wrong" (libyaml marks
      are 0-based; messages are 1-based; control characters become '?', one error per
      line) and the walk goes on, so one load reports every error of the file. At most
      AL_YAML_MAX_ERRORS are kept; the report counts the others.
    - Aliases: refused, every one, in every airlock file: "path:line:col: an alias
      (*name): aliases are not allowed; write the value out", at the alias itself, and
      the load fails before any walk. This is the one alias rule of the product: the
      files are plain data a human reviews, an alias makes one value appear in places
      the reader does not see, and expanding aliases is how a small input becomes huge
      (the "billion laughs"). Anchors without aliases are harmless and ignored.
      al_yaml_want_mapping and al_yaml_want_list still refuse to walk a node twice, as
      the check of that invariant.
    - A mapping holds at most AL_YAML_MAX_ENTRIES keys, which keeps the duplicate-key
      check (quadratic) cheap on any input; a list holds at most AL_YAML_MAX_ITEMS items
      (identities.yaml lists one entry per agent key: thousands are normal).
    - Out of memory is a flag, reported once, as the last error.

    Field paths ("services.demo.canary.steps[2]") are built in caller buffers of
    AL_YAML_FIELD_SIZE bytes and cut short when longer. Nodes are borrowed from the
    document and live as long as the al_yaml_t. One thread; no global state.
*/
#ifndef AL_YAML_H_INCLUDED
#define AL_YAML_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <yaml.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AL_YAML_MAX_ERRORS      100
#define AL_YAML_MAX_ENTRIES     1000
#define AL_YAML_MAX_ITEMS       10000
#define AL_YAML_MAX_PATH        4096    // al_yaml_path: bytes of a path as written
#define AL_YAML_FIELD_SIZE      256     // a field path in a message

typedef struct _al_yaml_t al_yaml_t;

//  A loader for the file at path (borrowed: it must outlive the object; messages name it
//  as given). NULL when out of memory, said in error as the load would have said it.
al_yaml_t *al_yaml_new (const char *path, char *error, size_t error_size);

//  Free the document, the parser and the errors. NULL-safe; sets *self_p to NULL.
void al_yaml_destroy (al_yaml_t **self_p);

//  Keys quoted in "unknown key" and "duplicate key" errors are cut at max bytes
//  (default: quoted whole).
void al_yaml_set_key_quote_max (al_yaml_t *self, int max);

//  Read the file (at most max_size bytes), resolve its directory (al_yaml_path) and
//  parse its first document. Returns its root node, or NULL with an error recorded:
//  the file could not be read or parsed, or holds no document (empty_error, e.g.
//  "empty file: version and services are required").
yaml_node_t *al_yaml_load (al_yaml_t *self, size_t max_size, const char *empty_error);

//  After the walk of a root al_yaml_load returned: a second document in the file is an
//  error ("a second YAML document; NAME holds one"), as is YAML that does not parse
//  after the first.
void al_yaml_end (al_yaml_t *self, const char *name);

//  End the load: 0 when no error was recorded; else -1 with the errors, one per line,
//  in error (and, if they do not all fit, a last line "(N more errors)"). Out of
//  memory is added as the last error first. error MAY be NULL.
int al_yaml_report (al_yaml_t *self, char *error, size_t error_size);

//  The alias rule for a loader that parses YAML itself (airlock.yaml, the policy
//  files): the first alias in the first document of text (size bytes). True when there
//  is one, with its 1-based line and column and "an alias (*NAME): aliases are not
//  allowed; write the value out" in message. False when there is none (or the text
//  does not parse: the loader's own parse reports that).
bool al_yaml_find_alias (const unsigned char *text, size_t size, size_t *line, size_t *column,
                         char *message, size_t message_size);

//  ---------------------------------------------------------------------------------
//  Errors

//  Record "path:line:col: field: what" at node (field MAY be NULL; node NULL:
//  "path: what").
void al_yaml_error (al_yaml_t *self, const yaml_node_t *node, const char *field,
                    const char *format, ...) __attribute__ ((format (printf, 4, 5)));

//  Record that memory ran out (the load fails).
void al_yaml_out_of_memory (al_yaml_t *self);

//  ---------------------------------------------------------------------------------
//  Field paths (out: AL_YAML_FIELD_SIZE bytes; a path cut short still names its start)

//  parent + separator + child.
void al_yaml_field_join (char *out, const char *parent, const char *separator,
                         const char *child);
//  parent.child
void al_yaml_field_key (char *out, const char *parent, const char *child);
//  parent[index]
void al_yaml_field_index (char *out, const char *parent, size_t index);

//  ---------------------------------------------------------------------------------
//  Nodes

//  The node of the document with this index (a pair's key or value, a list's item).
yaml_node_t *al_yaml_node (al_yaml_t *self, int index);

//  The value of a scalar node, or NULL when node is NULL or not a scalar.
const char *al_yaml_scalar (const yaml_node_t *node);

//  A plain scalar that YAML reads as null: "key:" with no value, "~", "null".
bool al_yaml_is_null (const yaml_node_t *node);

//  "a mapping", "a list", "nothing" (null) or "a scalar": what was found, in messages.
const char *al_yaml_kind_name (const yaml_node_t *node);

//  True when node is a mapping (a list) that may be walked now: of at most
//  AL_YAML_MAX_ENTRIES keys (items), not walked before. Else false with an error.
bool al_yaml_want_mapping (al_yaml_t *self, yaml_node_t *node, const char *field);
bool al_yaml_want_list (al_yaml_t *self, yaml_node_t *node, const char *field);

//  The items of a list.
size_t al_yaml_list_length (const yaml_node_t *list);
yaml_node_t *al_yaml_list_at (al_yaml_t *self, const yaml_node_t *list, size_t index);

//  Report pair of mapping if its key is not a scalar or was given before. True when
//  pair is the first occurrence of a scalar key (the one that counts).
bool al_yaml_first_key (al_yaml_t *self, yaml_node_t *mapping, yaml_node_pair_t *pair,
                        const char *field);

//  Check a mapping's keys against allowed (NULL-terminated) and required (MAY be NULL):
//  non-scalar, duplicate, unknown and missing keys are errors. False if node is not a
//  mapping that may be walked.
bool al_yaml_check_map (al_yaml_t *self, yaml_node_t *node, const char *field,
                        const char *const *allowed, const char *const *required);

//  The value of key in mapping (its first occurrence), or NULL.
yaml_node_t *al_yaml_get (al_yaml_t *self, yaml_node_t *mapping, const char *key);

//  ---------------------------------------------------------------------------------
//  Values: NULL or false with an error when the node does not hold one

//  A string of any scalar style: no NUL byte; empty only if allow_empty. Borrowed
//  from the document.
const char *al_yaml_string (al_yaml_t *self, yaml_node_t *node, const char *field,
                            bool allow_empty);

//  A decimal integer (plain scalar) in min..max.
bool al_yaml_integer (al_yaml_t *self, yaml_node_t *node, const char *field,
                      long long min, long long max, long long *out);

//  A path of at most AL_YAML_MAX_PATH bytes, made absolute against the file's
//  directory. A fresh string, the caller's; NULL after an error or out of memory.
char *al_yaml_path (al_yaml_t *self, yaml_node_t *node, const char *field);

#ifdef __cplusplus
}
#endif

#endif
