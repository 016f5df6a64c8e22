/*  al_yaml.c: the strict YAML walk that every configuration loader shares.

    The file is read whole (at most the loader's limit), scanned once as events to
    refuse aliases at their own position (the document API resolves them and keeps no
    mark of where they were written), then parsed into a libyaml document and handed
    to the loader's walker node by node; see al_yaml.h for the rules. The error list
    is bounded (AL_YAML_MAX_ERRORS), so hostile input cannot make us collect without
    end. The walked[] flags (one per node) stop a walker from walking a mapping or
    list twice; with aliases refused that cannot happen, and they stay as the check of
    that invariant.
*/
#include "base/al_yaml.h"
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct _al_yaml_t {
    const char *path;           // as given, for messages
    char *base_dir;             // absolute directory of the file
    int key_quote_max;          // bytes of a key quoted in key errors
    unsigned char *data;        // the file, which the parser reads
    yaml_parser_t parser;
    bool parser_ready;
    yaml_document_t doc;
    bool doc_ready;
    uint8_t *walked;            // per node: a mapping or list already walked
    size_t node_count;
    char **errors;
    size_t error_count;
    size_t error_capacity;
    size_t errors_dropped;      // beyond AL_YAML_MAX_ERRORS
    bool nomem;
};

//  Names and values from the file are quoted in messages: keep one error per line.
static void
s_one_line (char *text)
{
    for (char *p = text; *p; p++)
        if ((unsigned char) *p < 0x20 || *p == 0x7f)
            *p = '?';
}

al_yaml_t *
al_yaml_new (const char *path, char *error, size_t error_size)
{
    assert (path);
    al_yaml_t *self = calloc (1, sizeof *self);
    if (!self) {
        if (error && error_size) {
            snprintf (error, error_size, "%s: out of memory", path);
            s_one_line (error);
        }
        return NULL;
    }
    self->path = path;
    self->key_quote_max = INT_MAX;
    return self;
}

void
al_yaml_destroy (al_yaml_t **self_p)
{
    assert (self_p);
    al_yaml_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->error_count; i++)
        free (self->errors [i]);
    free (self->errors);
    free (self->walked);
    free (self->base_dir);
    if (self->doc_ready)
        yaml_document_delete (&self->doc);
    if (self->parser_ready)
        yaml_parser_delete (&self->parser);
    free (self->data);
    free (self);
    *self_p = NULL;
}

void
al_yaml_set_key_quote_max (al_yaml_t *self, int max)
{
    assert (self);
    assert (max >= 0);
    self->key_quote_max = max;
}

//  ---------------------------------------------------------------------------------
//  Errors

static void
s_add_error (al_yaml_t *self, const char *text)
{
    if (self->error_count >= AL_YAML_MAX_ERRORS) {
        self->errors_dropped++;
        return;
    }
    if (self->error_count == self->error_capacity) {
        size_t capacity = self->error_capacity ? self->error_capacity * 2 : 16;
        char **errors = realloc (self->errors, capacity * sizeof *errors);
        if (!errors) {
            self->nomem = true;
            return;
        }
        self->errors = errors;
        self->error_capacity = capacity;
    }
    char *copy = strdup (text);
    if (!copy) {
        self->nomem = true;
        return;
    }
    s_one_line (copy);
    self->errors [self->error_count++] = copy;
}

void
al_yaml_error (al_yaml_t *self, const yaml_node_t *node, const char *field,
               const char *format, ...)
{
    assert (self);
    char what [640];
    va_list args;
    va_start (args, format);
    vsnprintf (what, sizeof what, format, args);
    va_end (args);
    char text [1024];
    int at = node
        ? snprintf (text, sizeof text, "%s:%zu:%zu: ", self->path,
                    (size_t) node->start_mark.line + 1, (size_t) node->start_mark.column + 1)
        : snprintf (text, sizeof text, "%s: ", self->path);
    if (at < 0 || (size_t) at >= sizeof text)
        at = 0;
    if (field)
        snprintf (text + at, sizeof text - (size_t) at, "%s: %s", field, what);
    else
        snprintf (text + at, sizeof text - (size_t) at, "%s", what);
    s_add_error (self, text);
}

void
al_yaml_out_of_memory (al_yaml_t *self)
{
    assert (self);
    self->nomem = true;
}

//  Join the errors, one per line, into error; if they do not all fit, end with a line
//  saying how many were left out.
static void
s_report_errors (al_yaml_t *self, char *error, size_t error_size)
{
    if (!error || error_size == 0)
        return;
    error [0] = '\0';
    size_t used = 0;
    size_t total = self->error_count + self->errors_dropped;
    for (size_t i = 0; i < self->error_count; i++) {
        size_t length = strlen (self->errors [i]);
        char tail [64];
        snprintf (tail, sizeof tail, "(%zu more errors)", total - i - 1);
        //  Room for this line, and for the tail line if more are to come.
        size_t need = (used ? 1 : 0) + length + (i + 1 < total ? 1 + strlen (tail) : 0);
        if (used + need >= error_size) {
            snprintf (tail, sizeof tail, "(%zu more errors)", total - i);
            if (i == 0)
                snprintf (error, error_size, "%s", self->errors [0]);
            else
                snprintf (error + used, error_size - used, "\n%s", tail);
            return;
        }
        used += (size_t) snprintf (error + used, error_size - used, "%s%s", used ? "\n" : "",
                                   self->errors [i]);
    }
    if (self->errors_dropped)
        snprintf (error + used, error_size - used, "%s(%zu more errors)", used ? "\n" : "",
                  self->errors_dropped);
}

int
al_yaml_report (al_yaml_t *self, char *error, size_t error_size)
{
    assert (self);
    if (self->nomem)
        al_yaml_error (self, NULL, NULL, "out of memory");
    if (!self->error_count && !self->errors_dropped)
        return 0;
    s_report_errors (self, error, error_size);
    return -1;
}

//  ---------------------------------------------------------------------------------
//  The file

//  The whole file, at most max_size bytes, into self->data; false with an error.
static bool
s_read_file (al_yaml_t *self, size_t max_size, size_t *size_p)
{
    unsigned char *data = NULL;
    FILE *file = fopen (self->path, "rb");
    if (!file) {
        al_yaml_error (self, NULL, NULL, "cannot open: %s", strerror (errno));
        goto cleanup;
    }
    //  Grow as the file proves longer, up to one byte past the limit (to detect it).
    size_t size = 0, capacity = 0;
    while (true) {
        if (size == capacity) {
            if (capacity > max_size) {
                al_yaml_error (self, NULL, NULL, "larger than %zu bytes", max_size);
                break;
            }
            capacity = capacity ? capacity * 4 : 16384;
            if (capacity > max_size + 1)
                capacity = max_size + 1;
            unsigned char *grown = realloc (data, capacity);
            if (!grown) {
                self->nomem = true;
                break;
            }
            data = grown;
        }
        size_t got = fread (data + size, 1, capacity - size, file);
        size += got;
        if (got == 0) {
            if (!ferror (file)) {
                *size_p = size;
                goto cleanup;
            }
            al_yaml_error (self, NULL, NULL, "cannot read: %s", strerror (errno));
            break;
        }
    }
    free (data);
    data = NULL;
cleanup:
    if (file)
        fclose (file);
    self->data = data;
    return data != NULL;
}

static void
s_parse_error (al_yaml_t *self)
{
    yaml_parser_t *parser = &self->parser;
    char text [1024];
    snprintf (text, sizeof text, "%s:%zu:%zu: %s%s%s", self->path,
              (size_t) parser->problem_mark.line + 1, (size_t) parser->problem_mark.column + 1,
              parser->problem ? parser->problem : "invalid YAML",
              parser->context ? " " : "", parser->context ? parser->context : "");
    s_add_error (self, text);
}

#define S_ALIAS_MESSAGE "an alias (*%.64s): aliases are not allowed; write the value out"

//  Each alias of the first document of text, to fn (until it returns false).
typedef bool (s_alias_fn) (void *arg, const yaml_mark_t *mark, const char *anchor);
static bool
s_each_alias (const unsigned char *text, size_t size, s_alias_fn *fn, void *arg, bool *nomem)
{
    yaml_parser_t scanner;
    if (!yaml_parser_initialize (&scanner)) {
        *nomem = true;
        return false;
    }
    yaml_parser_set_input_string (&scanner, text, size);
    bool found = false;
    while (true) {
        yaml_event_t event;
        if (!yaml_parser_parse (&scanner, &event))
            break;
        yaml_event_type_t type = event.type;
        bool go_on = true;
        if (type == YAML_ALIAS_EVENT) {
            found = true;
            go_on = fn (arg, &event.start_mark, (const char *) event.data.alias.anchor);
        }
        yaml_event_delete (&event);
        if (!go_on || type == YAML_DOCUMENT_END_EVENT || type == YAML_STREAM_END_EVENT)
            break;
    }
    yaml_parser_delete (&scanner);
    return found;
}

static bool
s_record_alias (void *arg, const yaml_mark_t *mark, const char *anchor)
{
    al_yaml_t *self = (al_yaml_t *) arg;
    char text [512];
    snprintf (text, sizeof text, "%s:%zu:%zu: " S_ALIAS_MESSAGE, self->path,
              (size_t) mark->line + 1, (size_t) mark->column + 1, anchor);
    s_add_error (self, text);
    return true;
}

typedef struct {
    size_t line, column;
    char *message;
    size_t message_size;
} s_first_alias_t;

static bool
s_first_alias (void *arg, const yaml_mark_t *mark, const char *anchor)
{
    s_first_alias_t *first = (s_first_alias_t *) arg;
    first->line = (size_t) mark->line + 1;
    first->column = (size_t) mark->column + 1;
    if (first->message && first->message_size)
        snprintf (first->message, first->message_size, S_ALIAS_MESSAGE, anchor);
    return false;
}

bool
al_yaml_find_alias (const unsigned char *text, size_t size, size_t *line, size_t *column,
                    char *message, size_t message_size)
{
    assert (text || size == 0);
    s_first_alias_t first = { 0, 0, message, message_size };
    bool nomem = false;
    bool found = s_each_alias (text, size, s_first_alias, &first, &nomem);
    if (line)
        *line = first.line;
    if (column)
        *column = first.column;
    return found;
}

//  The one alias rule of airlock's files: none. Every alias of the first document is
//  an error at its own line and column. False when there was one (or memory ran out);
//  a syntax error is left to the document parser, which reports it.
static bool
s_refuse_aliases (al_yaml_t *self, size_t size)
{
    bool nomem = false;
    bool found = s_each_alias (self->data, size, s_record_alias, self, &nomem);
    if (nomem)
        self->nomem = true;
    return !found && !nomem;
}

yaml_node_t *
al_yaml_load (al_yaml_t *self, size_t max_size, const char *empty_error)
{
    assert (self);
    assert (!self->data);       // one load per object
    size_t size = 0;
    if (!s_read_file (self, max_size, &size))
        return NULL;
    //  The directory relative paths are resolved against.
    char *absolute = realpath (self->path, NULL);
    if (!absolute) {
        al_yaml_error (self, NULL, NULL, "cannot resolve: %s", strerror (errno));
        return NULL;
    }
    char *slash = strrchr (absolute, '/');
    assert (slash);
    if (slash == absolute)
        slash [1] = '\0';
    else
        *slash = '\0';
    self->base_dir = absolute;

    if (!yaml_parser_initialize (&self->parser)) {
        self->nomem = true;
        return NULL;
    }
    self->parser_ready = true;
    if (!s_refuse_aliases (self, size))
        return NULL;
    yaml_parser_set_input_string (&self->parser, self->data, size);
    if (!yaml_parser_load (&self->parser, &self->doc)) {
        s_parse_error (self);
        return NULL;
    }
    self->doc_ready = true;
    yaml_node_t *root = yaml_document_get_root_node (&self->doc);
    if (!root) {
        al_yaml_error (self, NULL, NULL, "%s", empty_error);
        return NULL;
    }
    self->node_count = (size_t) (self->doc.nodes.top - self->doc.nodes.start);
    self->walked = calloc (self->node_count, 1);
    if (!self->walked) {
        self->nomem = true;
        return NULL;
    }
    return root;
}

void
al_yaml_end (al_yaml_t *self, const char *name)
{
    assert (self);
    assert (self->walked);      // al_yaml_load returned a root
    //  One document only: a second one would be silently ignored otherwise.
    yaml_document_t next;
    if (!yaml_parser_load (&self->parser, &next))
        s_parse_error (self);
    else {
        yaml_node_t *next_root = yaml_document_get_root_node (&next);
        if (next_root)
            al_yaml_error (self, next_root, NULL, "a second YAML document; %s holds one", name);
        yaml_document_delete (&next);
    }
}

//  ---------------------------------------------------------------------------------
//  Field paths

//  Copied by hand: snprintf here makes gcc's truncation warning fire for every caller.
void
al_yaml_field_join (char *out, const char *parent, const char *separator, const char *child)
{
    const char *parts [] = { parent, separator, child };
    size_t used = 0;
    for (size_t i = 0; i < 3; i++)
        for (const char *p = parts [i]; *p && used < AL_YAML_FIELD_SIZE - 1; p++)
            out [used++] = *p;
    out [used] = '\0';
}

void
al_yaml_field_key (char *out, const char *parent, const char *child)
{
    al_yaml_field_join (out, parent, ".", child);
}

void
al_yaml_field_index (char *out, const char *parent, size_t index)
{
    char suffix [32];
    snprintf (suffix, sizeof suffix, "[%zu]", index);
    al_yaml_field_join (out, parent, "", suffix);
}

//  ---------------------------------------------------------------------------------
//  Nodes

yaml_node_t *
al_yaml_node (al_yaml_t *self, int index)
{
    assert (self && self->doc_ready);
    return yaml_document_get_node (&self->doc, index);
}

const char *
al_yaml_scalar (const yaml_node_t *node)
{
    return node && node->type == YAML_SCALAR_NODE ? (const char *) node->data.scalar.value : NULL;
}

bool
al_yaml_is_null (const yaml_node_t *node)
{
    const char *value = al_yaml_scalar (node);
    if (!value || node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    return !*value || strcmp (value, "~") == 0 || strcmp (value, "null") == 0
        || strcmp (value, "Null") == 0 || strcmp (value, "NULL") == 0;
}

const char *
al_yaml_kind_name (const yaml_node_t *node)
{
    switch (node->type) {
        case YAML_MAPPING_NODE: return "a mapping";
        case YAML_SEQUENCE_NODE: return "a list";
        default: return al_yaml_is_null (node) ? "nothing" : "a scalar";
    }
}

//  Mark a mapping or list walked; false (with an error) if it already was: it is the
//  target of an alias seen before.
static bool
s_enter (al_yaml_t *self, yaml_node_t *node, const char *field)
{
    size_t index = (size_t) (node - self->doc.nodes.start);
    assert (index < self->node_count);
    if (self->walked [index]) {
        al_yaml_error (self, node, field, "reuses the mapping or list anchored here; an alias "
                       "may only stand for a scalar");
        return false;
    }
    self->walked [index] = 1;
    return true;
}

bool
al_yaml_want_mapping (al_yaml_t *self, yaml_node_t *node, const char *field)
{
    if (node->type != YAML_MAPPING_NODE) {
        al_yaml_error (self, node, field, "expected a mapping, found %s", al_yaml_kind_name (node));
        return false;
    }
    if (node->data.mapping.pairs.top - node->data.mapping.pairs.start > AL_YAML_MAX_ENTRIES) {
        al_yaml_error (self, node, field, "more than %d keys", AL_YAML_MAX_ENTRIES);
        return false;
    }
    return s_enter (self, node, field);
}

bool
al_yaml_want_list (al_yaml_t *self, yaml_node_t *node, const char *field)
{
    if (node->type != YAML_SEQUENCE_NODE) {
        al_yaml_error (self, node, field, "expected a list, found %s", al_yaml_kind_name (node));
        return false;
    }
    if (node->data.sequence.items.top - node->data.sequence.items.start > AL_YAML_MAX_ITEMS) {
        al_yaml_error (self, node, field, "more than %d items", AL_YAML_MAX_ITEMS);
        return false;
    }
    return s_enter (self, node, field);
}

size_t
al_yaml_list_length (const yaml_node_t *list)
{
    return (size_t) (list->data.sequence.items.top - list->data.sequence.items.start);
}

yaml_node_t *
al_yaml_list_at (al_yaml_t *self, const yaml_node_t *list, size_t index)
{
    return al_yaml_node (self, list->data.sequence.items.start [index]);
}

bool
al_yaml_first_key (al_yaml_t *self, yaml_node_t *mapping, yaml_node_pair_t *pair,
                   const char *field)
{
    yaml_node_t *key = al_yaml_node (self, pair->key);
    const char *name = al_yaml_scalar (key);
    if (!name) {
        al_yaml_error (self, key, field, "keys must be scalars, found %s", al_yaml_kind_name (key));
        return false;
    }
    for (yaml_node_pair_t *prior = mapping->data.mapping.pairs.start; prior < pair; prior++) {
        const char *prior_name = al_yaml_scalar (al_yaml_node (self, prior->key));
        if (prior_name && strcmp (prior_name, name) == 0) {
            al_yaml_error (self, key, field, "duplicate key '%.*s' (first at line %zu)",
                           self->key_quote_max, name,
                           (size_t) al_yaml_node (self, prior->key)->start_mark.line + 1);
            return false;
        }
    }
    return true;
}

bool
al_yaml_check_map (al_yaml_t *self, yaml_node_t *node, const char *field,
                   const char *const *allowed, const char *const *required)
{
    if (!al_yaml_want_mapping (self, node, field))
        return false;
    for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
         pair < node->data.mapping.pairs.top; pair++) {
        if (!al_yaml_first_key (self, node, pair, field))
            continue;
        const char *name = al_yaml_scalar (al_yaml_node (self, pair->key));
        bool known = false;
        for (size_t i = 0; allowed [i]; i++)
            if (strcmp (allowed [i], name) == 0)
                known = true;
        if (!known)
            al_yaml_error (self, al_yaml_node (self, pair->key), field, "unknown key '%.*s'",
                           self->key_quote_max, name);
    }
    for (size_t i = 0; required && required [i]; i++) {
        bool found = false;
        for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
             pair < node->data.mapping.pairs.top; pair++) {
            const char *name = al_yaml_scalar (al_yaml_node (self, pair->key));
            if (name && strcmp (name, required [i]) == 0)
                found = true;
        }
        if (!found)
            al_yaml_error (self, node, field, "missing key '%s'", required [i]);
    }
    return true;
}

yaml_node_t *
al_yaml_get (al_yaml_t *self, yaml_node_t *mapping, const char *key)
{
    for (yaml_node_pair_t *pair = mapping->data.mapping.pairs.start;
         pair < mapping->data.mapping.pairs.top; pair++) {
        const char *name = al_yaml_scalar (al_yaml_node (self, pair->key));
        if (name && strcmp (name, key) == 0)
            return al_yaml_node (self, pair->value);
    }
    return NULL;
}

//  ---------------------------------------------------------------------------------
//  Values

const char *
al_yaml_string (al_yaml_t *self, yaml_node_t *node, const char *field, bool allow_empty)
{
    const char *value = al_yaml_scalar (node);
    if (!value || al_yaml_is_null (node)) {
        al_yaml_error (self, node, field, "expected a string, found %s", al_yaml_kind_name (node));
        return NULL;
    }
    if (strlen (value) != node->data.scalar.length) {
        al_yaml_error (self, node, field, "contains a NUL byte");
        return NULL;
    }
    if (!*value && !allow_empty) {
        al_yaml_error (self, node, field, "must not be empty");
        return NULL;
    }
    return value;
}

bool
al_yaml_integer (al_yaml_t *self, yaml_node_t *node, const char *field, long long min,
                 long long max, long long *out)
{
    const char *value = al_yaml_scalar (node);
    bool ok = value && node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !al_yaml_is_null (node)
           && (value [0] == '-' || (value [0] >= '0' && value [0] <= '9'));
    long long number = 0;
    if (ok) {
        char *end = NULL;
        errno = 0;
        number = strtoll (value, &end, 10);
        ok = errno == 0 && *end == '\0';
    }
    if (!ok) {
        al_yaml_error (self, node, field, "expected an integer, found %s",
                       value && !al_yaml_is_null (node) ? "a string" : al_yaml_kind_name (node));
        return false;
    }
    if (number < min || number > max) {
        al_yaml_error (self, node, field, "%lld is out of range %lld..%lld", number, min, max);
        return false;
    }
    *out = number;
    return true;
}

char *
al_yaml_path (al_yaml_t *self, yaml_node_t *node, const char *field)
{
    const char *value = al_yaml_string (self, node, field, false);
    if (!value)
        return NULL;
    if (strlen (value) > AL_YAML_MAX_PATH) {
        al_yaml_error (self, node, field, "longer than %d bytes", AL_YAML_MAX_PATH);
        return NULL;
    }
    char *result = NULL;
    if (value [0] == '/')
        result = strdup (value);
    else {
        size_t size = strlen (self->base_dir) + 1 + strlen (value) + 1;
        result = malloc (size);
        if (result)
            snprintf (result, size, "%s/%s", self->base_dir, value);
    }
    if (!result)
        self->nomem = true;
    return result;
}
