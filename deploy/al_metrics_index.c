/*  al_metrics_index.c: the storage of a parsed /metrics result: the arena every
    string and label array lives in, the open-addressing hash indexes (family name ->
    family, series name + labels -> sample) and the name lookups built on them.
*/
#include "deploy/al_metrics_int.h"
#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *al_metrics_type_names [] = {
    [AL_METRIC_UNTYPED] = "untyped",
    [AL_METRIC_COUNTER] = "counter",
    [AL_METRIC_GAUGE] = "gauge",
    [AL_METRIC_HISTOGRAM] = "histogram",
    [AL_METRIC_SUMMARY] = "summary",
};
//  --------------------------------------------------------------------------
//  Arena

void *
al_metrics_arena_alloc (al_metrics_t *self, size_t size)
{
    size = (size + sizeof (max_align_t) - 1) / sizeof (max_align_t) * sizeof (max_align_t);
    if (size == 0)
        size = sizeof (max_align_t);
    al_metrics_block_t *block = self->blocks;
    if (!block || block->size - block->used < size) {
        size_t block_size = size > AL_METRICS_BLOCK_SIZE ? size : AL_METRICS_BLOCK_SIZE;
        block = malloc (sizeof (al_metrics_block_t) + block_size);
        if (!block)
            return NULL;
        block->size = block_size;
        block->used = 0;
        block->next = self->blocks;
        self->blocks = block;
    }
    void *result = (char *) block->data + block->used;
    block->used += size;
    return result;
}

char *
al_metrics_arena_strndup (al_metrics_t *self, const char *text, size_t length)
{
    char *copy = al_metrics_arena_alloc (self, length + 1);
    if (copy) {
        memcpy (copy, text, length);
        copy [length] = '\0';
    }
    return copy;
}

//  --------------------------------------------------------------------------
//  Hash index

//  FNV-1a; fields are separated by bytes that never occur in valid UTF-8 (0xfe, 0xff)
//  so ("ab","c") and ("a","bc") hash differently.
static uint64_t
s_hash_bytes (uint64_t hash, const char *text)
{
    for (const unsigned char *p = (const unsigned char *) text; *p; p++) {
        hash ^= *p;
        hash *= 0x100000001b3ULL;
    }
    return hash;
}

static uint64_t
s_hash_byte (uint64_t hash, unsigned char byte)
{
    return (hash ^ byte) * 0x100000001b3ULL;
}

//  Hash of the name made of text [0, length) followed by suffix.
uint32_t
al_metrics_name_hash (const char *text, size_t length, const char *suffix)
{
    uint64_t hash = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < length; i++)
        hash = s_hash_byte (hash, (unsigned char) text [i]);
    hash = s_hash_bytes (hash, suffix);
    return (uint32_t) (hash ^ (hash >> 32));
}

//  Hash of an optional name and a label list, skipping label exclude (if not NULL).
uint32_t
al_metrics_labels_hash (const char *name, const al_metric_label_t *labels, size_t count,
                        const char *exclude)
{
    uint64_t hash = 0xcbf29ce484222325ULL;
    if (name)
        hash = s_hash_bytes (hash, name);
    for (size_t i = 0; i < count; i++) {
        if (exclude && strcmp (labels [i].name, exclude) == 0)
            continue;
        hash = s_hash_byte (hash, 0xff);
        hash = s_hash_bytes (hash, labels [i].name);
        hash = s_hash_byte (hash, 0xfe);
        hash = s_hash_bytes (hash, labels [i].value);
    }
    return (uint32_t) (hash ^ (hash >> 32));
}

//  Equal label lists (both sorted), ignoring label exclude (if not NULL).
bool
al_metrics_labels_equal (const al_metric_label_t *a, size_t a_count, const al_metric_label_t *b,
                         size_t b_count, const char *exclude)
{
    size_t i = 0, j = 0;
    while (true) {
        while (i < a_count && exclude && strcmp (a [i].name, exclude) == 0)
            i++;
        while (j < b_count && exclude && strcmp (b [j].name, exclude) == 0)
            j++;
        if (i == a_count || j == b_count)
            return i == a_count && j == b_count;
        if (strcmp (a [i].name, b [j].name) != 0 || strcmp (a [i].value, b [j].value) != 0)
            return false;
        i++;
        j++;
    }
}

size_t
al_metrics_table_find (const al_metrics_table_t *table, uint32_t hash, al_metrics_same_fn *same,
                       const void *ctx, const void *key)
{
    if (table->capacity == 0)
        return 0;
    size_t mask = table->capacity - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        const al_metrics_slot_t *slot = &table->slots [i];
        if (slot->value == 0)
            return 0;
        if (slot->hash == hash && same (ctx, slot->value - 1, key))
            return slot->value;
    }
}

static void
s_table_put (al_metrics_slot_t *slots, size_t capacity, uint32_t hash, uint32_t value)
{
    size_t mask = capacity - 1;
    size_t i = hash & mask;
    while (slots [i].value != 0)
        i = (i + 1) & mask;
    slots [i].hash = hash;
    slots [i].value = value;
}

//  Insert index (not yet present). Returns 0, or -1 when out of memory.
int
al_metrics_table_insert (al_metrics_table_t *table, uint32_t hash, size_t index)
{
    assert (index <= AL_METRICS_MAX_INDEX);
    if ((table->count + 1) * 2 > table->capacity) {
        size_t capacity = table->capacity ? table->capacity * 2 : 16;
        al_metrics_slot_t *slots = calloc (capacity, sizeof (al_metrics_slot_t));
        if (!slots)
            return -1;
        for (size_t i = 0; i < table->capacity; i++)
            if (table->slots [i].value)
                s_table_put (slots, capacity, table->slots [i].hash, table->slots [i].value);
        free (table->slots);
        table->slots = slots;
        table->capacity = capacity;
    }
    s_table_put (table->slots, table->capacity, hash, (uint32_t) index + 1);
    table->count++;
    return 0;
}

void
al_metrics_table_free (al_metrics_table_t *table)
{
    free (table->slots);
    memset (table, 0, sizeof *table);
}

//  --------------------------------------------------------------------------
//  Names and lookups

bool
al_metrics_is_name_start (int c, bool metric)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (metric && c == ':');
}

bool
al_metrics_is_name_char (int c, bool metric)
{
    return al_metrics_is_name_start (c, metric) || (c >= '0' && c <= '9');
}

typedef struct {
    const char *text;               // the name is text [0, length) + suffix
    size_t length;
    const char *suffix;
} s_name_key_t;

static bool
s_same_family (const void *ctx, size_t index, const void *key)
{
    const al_metrics_t *self = ctx;
    const s_name_key_t *name = key;
    const char *candidate = self->families [index].pub.name;
    return strncmp (candidate, name->text, name->length) == 0
        && strlen (candidate) == name->length + strlen (name->suffix)
        && strcmp (candidate + name->length, name->suffix) == 0;
}

//  The family named text [0, length) + suffix, or NULL.
al_metrics_fam_t *
al_metrics_find_family_parts (const al_metrics_t *self, const char *text, size_t length,
                              const char *suffix)
{
    s_name_key_t key = { text, length, suffix };
    size_t found = al_metrics_table_find (&self->family_index, al_metrics_name_hash (text, length, suffix),
                                 s_same_family, self, &key);
    return found ? &self->families [found - 1] : NULL;
}

al_metrics_fam_t *
al_metrics_find_family (const al_metrics_t *self, const char *name)
{
    return al_metrics_find_family_parts (self, name, strlen (name), "");
}

const char *al_metrics_suffixes [3] = { "_bucket", "_sum", "_count" };

//  Does a family of type own samples called base + suffix?
bool
al_metrics_type_has_suffix (al_metric_type_t type, const char *suffix)
{
    if (type == AL_METRIC_HISTOGRAM)
        return true;
    return type == AL_METRIC_SUMMARY && strcmp (suffix, "_bucket") != 0;
}

//  The histogram or summary family that owns sample name name through a suffix, or NULL.
al_metrics_fam_t *
al_metrics_find_owner_by_suffix (const al_metrics_t *self, const char *name)
{
    size_t length = strlen (name);
    for (size_t i = 0; i < sizeof al_metrics_suffixes / sizeof al_metrics_suffixes [0]; i++) {
        size_t suffix_length = strlen (al_metrics_suffixes [i]);
        if (length <= suffix_length || strcmp (name + length - suffix_length, al_metrics_suffixes [i]) != 0)
            continue;
        al_metrics_fam_t *family = al_metrics_find_family_parts (self, name, length - suffix_length, "");
        if (family && al_metrics_type_has_suffix (family->pub.type, al_metrics_suffixes [i]))
            return family;
    }
    return NULL;
}

//  The family a sample called name belongs to: the family of that exact name, else the
//  histogram/summary it is a _bucket/_sum/_count of. NULL if none.
al_metrics_fam_t *
al_metrics_family_of_sample (const al_metrics_t *self, const char *name)
{
    al_metrics_fam_t *family = al_metrics_find_family (self, name);
    return family ? family : al_metrics_find_owner_by_suffix (self, name);
}

bool
al_metrics_same_series (const void *ctx, size_t index, const void *key)
{
    const al_metrics_t *self = ctx;
    const al_metrics_series_key_t *series = key;
    const al_metric_sample_t *sample = &self->samples [index];
    return strcmp (sample->name, series->name) == 0
        && al_metrics_labels_equal (sample->labels, sample->label_count, series->labels,
                           series->label_count, NULL);
}

