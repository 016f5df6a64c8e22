/*  al_metrics_int.h: what the files of the /metrics parser share (al_metrics.c,
    al_metrics_parse.c, al_metrics_lines.c, al_metrics_index.c): the object's layout,
    the parser's state, the arena and hash indexes. Never installed; not an API.
    The invariants are described at the top of al_metrics.c.
*/
#ifndef AL_METRICS_INT_H_INCLUDED
#define AL_METRICS_INT_H_INCLUDED

#include "deploy/al_metrics.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AL_METRICS_BLOCK_SIZE (64 * 1024)
#define AL_METRICS_MAX_NUMBER_LEN 63
//  Table values are stored as index + 1 in 32 bits.
#define AL_METRICS_MAX_INDEX (UINT32_MAX - 2)

//  Arena of strings and label arrays; freed as a whole.
typedef struct al_metrics_block {
    struct al_metrics_block *next;
    size_t used;
    size_t size;
    max_align_t data [];
} al_metrics_block_t;

//  Open-addressing hash index from a 32-bit hash to an index (stored + 1; 0 = empty).
typedef struct {
    uint32_t hash;
    uint32_t value;
} al_metrics_slot_t;

typedef struct {
    al_metrics_slot_t *slots;
    size_t capacity;                // 0 or a power of two
    size_t count;
} al_metrics_table_t;

typedef bool (al_metrics_same_fn) (const void *ctx, size_t index, const void *key);

typedef struct {
    al_metric_family_t pub;
    size_t first_sample;            // index into self->samples
    bool has_type;
    bool has_help;
    bool closed;                    // another family's line came after this one's
} al_metrics_fam_t;

struct _al_metrics_t {
    al_metrics_block_t *blocks;
    al_metrics_fam_t *families;
    size_t family_count;
    size_t family_alloc;
    al_metric_sample_t *samples;
    size_t sample_count;
    size_t sample_alloc;
    al_metrics_table_t family_index;         // family name -> family
    al_metrics_table_t series_index;         // sample name + labels -> sample
};

typedef struct {
    const char *p;
    const char *end;
} al_metrics_cursor_t;

typedef struct {
    al_metrics_t *self;
    al_metrics_limits_t limits;
    size_t line;
    size_t current;                 // index of the current family, SIZE_MAX for none
    al_metric_label_t *scratch;     // labels of the sample line being parsed
    size_t scratch_alloc;
    char *error;
    size_t error_size;
} al_metrics_parser_t;

//  The key al_metrics_same_series compares a sample with.
typedef struct {
    const char *name;
    const al_metric_label_t *labels;
    size_t label_count;
} al_metrics_series_key_t;

//  "untyped", "counter", ... indexed by al_metric_type_t.
extern const char *al_metrics_type_names [];
//  The sample suffixes of histograms and summaries: _bucket, _sum, _count.
extern const char *al_metrics_suffixes [3];

//  al_metrics_index.c: the arena, the hash indexes, names and lookups.
void *al_metrics_arena_alloc (al_metrics_t *self, size_t size);
char *al_metrics_arena_strndup (al_metrics_t *self, const char *text, size_t length);
al_metrics_fam_t *al_metrics_family_of_sample (const al_metrics_t *self, const char *name);
al_metrics_fam_t *al_metrics_find_family (const al_metrics_t *self, const char *name);
al_metrics_fam_t *al_metrics_find_family_parts (const al_metrics_t *self, const char *text,
                                                size_t length, const char *suffix);
al_metrics_fam_t *al_metrics_find_owner_by_suffix (const al_metrics_t *self, const char *name);
bool al_metrics_is_name_char (int c, bool metric);
bool al_metrics_is_name_start (int c, bool metric);
bool al_metrics_labels_equal (const al_metric_label_t *a, size_t a_count, const al_metric_label_t *b,
                              size_t b_count, const char *exclude);
uint32_t al_metrics_labels_hash (const char *name, const al_metric_label_t *labels, size_t count,
                                 const char *exclude);
uint32_t al_metrics_name_hash (const char *text, size_t length, const char *suffix);
bool al_metrics_same_series (const void *ctx, size_t index, const void *key);
size_t al_metrics_table_find (const al_metrics_table_t *table, uint32_t hash, al_metrics_same_fn *same,
                              const void *ctx, const void *key);
void al_metrics_table_free (al_metrics_table_t *table);
int al_metrics_table_insert (al_metrics_table_t *table, uint32_t hash, size_t index);
bool al_metrics_type_has_suffix (al_metric_type_t type, const char *suffix);

//  al_metrics_lines.c: numbers, text checks, comment and sample lines.
int al_metrics_check_text (al_metrics_parser_t *parser, const char *text, size_t length);
const char *al_metrics_find_label (const al_metric_label_t *labels, size_t count, const char *name);
bool al_metrics_has_suffix (const char *name, const char *base, const char *suffix);
int al_metrics_parse_comment (al_metrics_parser_t *parser, al_metrics_cursor_t *cursor);
bool al_metrics_parse_number (const char *text, size_t length, double *value_p);
int al_metrics_parse_sample (al_metrics_parser_t *parser, al_metrics_cursor_t *cursor);
void al_metrics_skip_blanks (al_metrics_cursor_t *cursor);

//  al_metrics_parse.c: errors ("line N: what", -1 returned), the whole-input checks.
int al_metrics_fail (al_metrics_parser_t *parser, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));
int al_metrics_fail_escape (al_metrics_parser_t *parser, char escaped, const char *where, const char *name);
int al_metrics_fail_nomem (al_metrics_parser_t *parser);

#endif
