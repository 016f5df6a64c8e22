/*  al_metrics.c: strict Prometheus text exposition (0.0.4) parser, queries, quantiles.

    The parser reads the buffer line by line. Every string and label array of the
    result lives in an arena owned by the al_metrics_t, so a failed parse (any line,
    any check) frees everything by destroying the half-built object: there is one
    cleanup path, and it cannot leak. Names are looked up through two hash indexes
    (family name -> family, series name+labels -> sample) so hostile inputs with many
    names stay linear.

    Invariants after a successful parse: samples of one family are contiguous in the
    sample vector (the grouping rule guarantees it); labels of a sample are sorted and
    unique; no two samples share name and labels; histogram and summary families are
    well formed (checked once all lines are read). Every family but the current one is
    "closed": a later line for it is an error.

    al_histogram_quantile follows Prometheus' promql/quantile.go (bucketQuantile,
    with coalesceBuckets, correctPrecisionErrors and ensureMonotonic) step by step,
    including its binary search, so results match histogram_quantile() exactly.

    No global state: parse from any thread; a parsed object is immutable.
*/
#include "deploy/al_metrics.h"
#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_BLOCK_SIZE (64 * 1024)
#define S_MAX_NUMBER_LEN 63
//  Table values are stored as index + 1 in 32 bits.
#define S_MAX_INDEX (UINT32_MAX - 2)

//  Arena of strings and label arrays; freed as a whole.
typedef struct s_block {
    struct s_block *next;
    size_t used;
    size_t size;
    max_align_t data [];
} s_block_t;

//  Open-addressing hash index from a 32-bit hash to an index (stored + 1; 0 = empty).
typedef struct {
    uint32_t hash;
    uint32_t value;
} s_slot_t;

typedef struct {
    s_slot_t *slots;
    size_t capacity;                // 0 or a power of two
    size_t count;
} s_table_t;

typedef bool (s_same_fn) (const void *ctx, size_t index, const void *key);

typedef struct {
    al_metric_family_t pub;
    size_t first_sample;            // index into self->samples
    bool has_type;
    bool has_help;
    bool closed;                    // another family's line came after this one's
} s_family_t;

struct _al_metrics_t {
    s_block_t *blocks;
    s_family_t *families;
    size_t family_count;
    size_t family_alloc;
    al_metric_sample_t *samples;
    size_t sample_count;
    size_t sample_alloc;
    s_table_t family_index;         // family name -> family
    s_table_t series_index;         // sample name + labels -> sample
};

typedef struct {
    const char *p;
    const char *end;
} s_cursor_t;

typedef struct {
    al_metrics_t *self;
    al_metrics_limits_t limits;
    size_t line;
    size_t current;                 // index of the current family, SIZE_MAX for none
    al_metric_label_t *scratch;     // labels of the sample line being parsed
    size_t scratch_alloc;
    char *error;
    size_t error_size;
} s_parser_t;

static const char *s_type_names [] = {
    [AL_METRIC_UNTYPED] = "untyped",
    [AL_METRIC_COUNTER] = "counter",
    [AL_METRIC_GAUGE] = "gauge",
    [AL_METRIC_HISTOGRAM] = "histogram",
    [AL_METRIC_SUMMARY] = "summary",
};

static void
s_set_error (char *error, size_t error_size, const char *format, ...)
{
    if (!error || error_size == 0)
        return;
    va_list args;
    va_start (args, format);
    vsnprintf (error, error_size, format, args);
    va_end (args);
}

//  Fill the error buffer with "line N: ..." and return -1.
static int
s_fail (s_parser_t *parser, const char *format, ...)
{
    if (!parser->error || parser->error_size == 0)
        return -1;
    int prefix = snprintf (parser->error, parser->error_size, "line %zu: ", parser->line);
    if (prefix > 0 && (size_t) prefix < parser->error_size) {
        va_list args;
        va_start (args, format);
        vsnprintf (parser->error + prefix, parser->error_size - (size_t) prefix, format, args);
        va_end (args);
    }
    return -1;
}

static int
s_fail_nomem (s_parser_t *parser)
{
    return s_fail (parser, "out of memory");
}

//  An invalid escape; the byte after the backslash is shown as is only if printable
//  ASCII, so the message stays valid text.
static int
s_fail_escape (s_parser_t *parser, char escaped, const char *where, const char *name)
{
    unsigned char c = (unsigned char) escaped;
    if (c > 0x20 && c < 0x7f)
        return s_fail (parser, "invalid escape \\%c in %s %s", c, where, name);
    return s_fail (parser, "invalid escape (backslash, byte 0x%02x) in %s %s", c, where, name);
}

//  --------------------------------------------------------------------------
//  Arena

static void *
s_arena_alloc (al_metrics_t *self, size_t size)
{
    size = (size + sizeof (max_align_t) - 1) / sizeof (max_align_t) * sizeof (max_align_t);
    if (size == 0)
        size = sizeof (max_align_t);
    s_block_t *block = self->blocks;
    if (!block || block->size - block->used < size) {
        size_t block_size = size > S_BLOCK_SIZE ? size : S_BLOCK_SIZE;
        block = malloc (sizeof (s_block_t) + block_size);
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

static char *
s_arena_strndup (al_metrics_t *self, const char *text, size_t length)
{
    char *copy = s_arena_alloc (self, length + 1);
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
static uint32_t
s_name_hash (const char *text, size_t length, const char *suffix)
{
    uint64_t hash = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < length; i++)
        hash = s_hash_byte (hash, (unsigned char) text [i]);
    hash = s_hash_bytes (hash, suffix);
    return (uint32_t) (hash ^ (hash >> 32));
}

//  Hash of an optional name and a label list, skipping label exclude (if not NULL).
static uint32_t
s_labels_hash (const char *name, const al_metric_label_t *labels, size_t count, const char *exclude)
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
static bool
s_labels_equal (const al_metric_label_t *a, size_t a_count, const al_metric_label_t *b,
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

static size_t
s_table_find (const s_table_t *table, uint32_t hash, s_same_fn *same, const void *ctx,
              const void *key)
{
    if (table->capacity == 0)
        return 0;
    size_t mask = table->capacity - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        const s_slot_t *slot = &table->slots [i];
        if (slot->value == 0)
            return 0;
        if (slot->hash == hash && same (ctx, slot->value - 1, key))
            return slot->value;
    }
}

static void
s_table_put (s_slot_t *slots, size_t capacity, uint32_t hash, uint32_t value)
{
    size_t mask = capacity - 1;
    size_t i = hash & mask;
    while (slots [i].value != 0)
        i = (i + 1) & mask;
    slots [i].hash = hash;
    slots [i].value = value;
}

//  Insert index (not yet present). Returns 0, or -1 when out of memory.
static int
s_table_insert (s_table_t *table, uint32_t hash, size_t index)
{
    assert (index <= S_MAX_INDEX);
    if ((table->count + 1) * 2 > table->capacity) {
        size_t capacity = table->capacity ? table->capacity * 2 : 16;
        s_slot_t *slots = calloc (capacity, sizeof (s_slot_t));
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

static void
s_table_free (s_table_t *table)
{
    free (table->slots);
    memset (table, 0, sizeof *table);
}

//  --------------------------------------------------------------------------
//  Names and lookups

static bool
s_is_name_start (int c, bool metric)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (metric && c == ':');
}

static bool
s_is_name_char (int c, bool metric)
{
    return s_is_name_start (c, metric) || (c >= '0' && c <= '9');
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
static s_family_t *
s_find_family_parts (const al_metrics_t *self, const char *text, size_t length, const char *suffix)
{
    s_name_key_t key = { text, length, suffix };
    size_t found = s_table_find (&self->family_index, s_name_hash (text, length, suffix),
                                 s_same_family, self, &key);
    return found ? &self->families [found - 1] : NULL;
}

static s_family_t *
s_find_family (const al_metrics_t *self, const char *name)
{
    return s_find_family_parts (self, name, strlen (name), "");
}

static const char *s_suffixes [] = { "_bucket", "_sum", "_count" };

//  Does a family of type own samples called base + suffix?
static bool
s_type_has_suffix (al_metric_type_t type, const char *suffix)
{
    if (type == AL_METRIC_HISTOGRAM)
        return true;
    return type == AL_METRIC_SUMMARY && strcmp (suffix, "_bucket") != 0;
}

//  The histogram or summary family that owns sample name name through a suffix, or NULL.
static s_family_t *
s_find_owner_by_suffix (const al_metrics_t *self, const char *name)
{
    size_t length = strlen (name);
    for (size_t i = 0; i < sizeof s_suffixes / sizeof s_suffixes [0]; i++) {
        size_t suffix_length = strlen (s_suffixes [i]);
        if (length <= suffix_length || strcmp (name + length - suffix_length, s_suffixes [i]) != 0)
            continue;
        s_family_t *family = s_find_family_parts (self, name, length - suffix_length, "");
        if (family && s_type_has_suffix (family->pub.type, s_suffixes [i]))
            return family;
    }
    return NULL;
}

//  The family a sample called name belongs to: the family of that exact name, else the
//  histogram/summary it is a _bucket/_sum/_count of. NULL if none.
static s_family_t *
s_family_of_sample (const al_metrics_t *self, const char *name)
{
    s_family_t *family = s_find_family (self, name);
    return family ? family : s_find_owner_by_suffix (self, name);
}

typedef struct {
    const char *name;
    const al_metric_label_t *labels;
    size_t label_count;
} s_series_key_t;

static bool
s_same_series (const void *ctx, size_t index, const void *key)
{
    const al_metrics_t *self = ctx;
    const s_series_key_t *series = key;
    const al_metric_sample_t *sample = &self->samples [index];
    return strcmp (sample->name, series->name) == 0
        && s_labels_equal (sample->labels, sample->label_count, series->labels,
                           series->label_count, NULL);
}

//  --------------------------------------------------------------------------
//  Numbers and text

static bool
s_equal_nocase (const char *text, size_t length, const char *word)
{
    return strlen (word) == length && strncasecmp (text, word, length) == 0;
}

//  A float as Go's strconv.ParseFloat reads it in the text format, restricted to
//  decimal notation: [+-]digits[.digits][e[+-]digits], NaN, [+-]Inf, [+-]Infinity.
static bool
s_parse_number (const char *text, size_t length, double *value_p)
{
    if (length == 0 || length > S_MAX_NUMBER_LEN)
        return false;
    if (s_equal_nocase (text, length, "nan")) {
        *value_p = NAN;
        return true;
    }
    const char *p = text, *end = text + length;
    bool negative = false;
    if (*p == '+' || *p == '-') {
        negative = *p == '-';
        p++;
    }
    if (s_equal_nocase (p, (size_t) (end - p), "inf")
    ||  s_equal_nocase (p, (size_t) (end - p), "infinity")) {
        *value_p = negative ? -INFINITY : INFINITY;
        return true;
    }
    size_t digits = 0;
    while (p < end && *p >= '0' && *p <= '9') {
        p++;
        digits++;
    }
    if (p < end && *p == '.') {
        p++;
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
            digits++;
        }
    }
    if (digits == 0)
        return false;
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        size_t exponent_digits = 0;
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
            exponent_digits++;
        }
        if (exponent_digits == 0)
            return false;
    }
    if (p != end)
        return false;
    //  The grammar is checked; strtod does the rounding. A locale whose decimal
    //  point is not '.' makes strtod stop early, which is refused, never misread.
    char buffer [S_MAX_NUMBER_LEN + 1];
    memcpy (buffer, text, length);
    buffer [length] = '\0';
    char *stop = NULL;
    errno = 0;
    double value = strtod (buffer, &stop);
    if (stop != buffer + length || (errno == ERANGE && isinf (value)))
        return false;
    *value_p = value;
    return true;
}

static bool
s_parse_timestamp (const char *text, size_t length, int64_t *value_p)
{
    if (length == 0 || length > 20)
        return false;
    size_t i = (text [0] == '+' || text [0] == '-') ? 1 : 0;
    if (i == length)
        return false;
    for (size_t j = i; j < length; j++)
        if (text [j] < '0' || text [j] > '9')
            return false;
    char buffer [24];
    memcpy (buffer, text, length);
    buffer [length] = '\0';
    errno = 0;
    long long value = strtoll (buffer, NULL, 10);
    if (errno == ERANGE)
        return false;
    *value_p = (int64_t) value;
    return true;
}

//  Check one line: valid UTF-8, no NUL, no control character but tab.
static int
s_check_text (s_parser_t *parser, const char *text, size_t length)
{
    const unsigned char *p = (const unsigned char *) text, *end = p + length;
    while (p < end) {
        unsigned char c = *p;
        if (c < 0x80) {
            if (c == '\r')
                return s_fail (parser, "carriage return (lines must end with \\n only)");
            if ((c < 0x20 && c != '\t') || c == 0x7f)
                return s_fail (parser, "control character 0x%02x", c);
            p++;
            continue;
        }
        size_t extra;
        uint32_t code;
        if (c >= 0xc2 && c <= 0xdf) {
            extra = 1;
            code = c & 0x1f;
        }
        else
        if (c >= 0xe0 && c <= 0xef) {
            extra = 2;
            code = c & 0x0f;
        }
        else
        if (c >= 0xf0 && c <= 0xf4) {
            extra = 3;
            code = c & 0x07;
        }
        else
            return s_fail (parser, "invalid UTF-8 byte 0x%02x", c);
        if ((size_t) (end - p) <= extra)
            return s_fail (parser, "truncated UTF-8 sequence");
        for (size_t i = 1; i <= extra; i++) {
            if ((p [i] & 0xc0) != 0x80)
                return s_fail (parser, "invalid UTF-8 byte 0x%02x", p [i]);
            code = (code << 6) | (p [i] & 0x3f);
        }
        if ((extra == 2 && code < 0x800) || (extra == 3 && code < 0x10000)
        ||  (code >= 0xd800 && code <= 0xdfff) || code > 0x10ffff)
            return s_fail (parser, "invalid UTF-8 sequence");
        p += extra + 1;
    }
    return 0;
}

static bool
s_is_blank (char c)
{
    return c == ' ' || c == '\t';
}

static void
s_skip_blanks (s_cursor_t *cursor)
{
    while (cursor->p < cursor->end && s_is_blank (*cursor->p))
        cursor->p++;
}

//  The next run of non-blank characters.
static size_t
s_token (s_cursor_t *cursor, const char **token_p)
{
    *token_p = cursor->p;
    while (cursor->p < cursor->end && !s_is_blank (*cursor->p))
        cursor->p++;
    return (size_t) (cursor->p - *token_p);
}

static bool
s_valid_metric_name (const char *text, size_t length)
{
    if (length == 0 || !s_is_name_start ((unsigned char) text [0], true))
        return false;
    for (size_t i = 1; i < length; i++)
        if (!s_is_name_char ((unsigned char) text [i], true))
            return false;
    return true;
}

//  --------------------------------------------------------------------------
//  Families

static int
s_check_collision (s_parser_t *parser, const char *name, al_metric_type_t type)
{
    al_metrics_t *self = parser->self;
    //  A histogram/summary named name must not meet families named name_sum etc.
    for (size_t i = 0; i < sizeof s_suffixes / sizeof s_suffixes [0]; i++) {
        if (!s_type_has_suffix (type, s_suffixes [i]))
            continue;
        if (s_find_family_parts (self, name, strlen (name), s_suffixes [i]))
            return s_fail (parser, "%s %s collides with metric family %s%s",
                           s_type_names [type], name, name, s_suffixes [i]);
    }
    //  ... and a family named x_count must not meet a histogram/summary x.
    s_family_t *owner = s_find_owner_by_suffix (self, name);
    if (owner)
        return s_fail (parser, "metric family %s collides with %s %s",
                       name, s_type_names [owner->pub.type], owner->pub.name);
    return 0;
}

//  Make family index current, closing the previous current family.
static int
s_switch_to (s_parser_t *parser, size_t index)
{
    s_family_t *family = &parser->self->families [index];
    if (parser->current == index)
        return 0;
    if (family->closed)
        return s_fail (parser, "lines of metric family %s are not grouped together",
                       family->pub.name);
    if (parser->current != SIZE_MAX)
        parser->self->families [parser->current].closed = true;
    parser->current = index;
    return 0;
}

//  A new untyped family, made current.
static int
s_new_family (s_parser_t *parser, const char *name, size_t length, s_family_t **family_p)
{
    al_metrics_t *self = parser->self;
    if (self->family_count >= S_MAX_INDEX)
        return s_fail (parser, "too many metric families");
    if (self->family_count == self->family_alloc) {
        size_t alloc = self->family_alloc ? self->family_alloc * 2 : 16;
        s_family_t *families = realloc (self->families, alloc * sizeof *families);
        if (!families)
            return s_fail_nomem (parser);
        self->families = families;
        self->family_alloc = alloc;
    }
    char *copy = s_arena_strndup (self, name, length);
    if (!copy)
        return s_fail_nomem (parser);
    if (s_check_collision (parser, copy, AL_METRIC_UNTYPED))
        return -1;
    size_t index = self->family_count;
    if (s_table_insert (&self->family_index, s_name_hash (copy, length, ""), index))
        return s_fail_nomem (parser);
    s_family_t *family = &self->families [index];
    memset (family, 0, sizeof *family);
    family->pub.name = copy;
    family->pub.type = AL_METRIC_UNTYPED;
    family->first_sample = self->sample_count;
    self->family_count++;
    if (s_switch_to (parser, index))
        return -1;
    *family_p = family;
    return 0;
}

//  The family a HELP or TYPE line talks about, created if new, made current.
static int
s_metadata_family (s_parser_t *parser, const char *keyword, const char *name, size_t length,
                   s_family_t **family_p)
{
    al_metrics_t *self = parser->self;
    s_family_t *family = s_find_family_parts (self, name, length, "");
    if (!family)
        return s_new_family (parser, name, length, family_p);
    if (s_switch_to (parser, (size_t) (family - self->families)))
        return -1;
    if ((strcmp (keyword, "TYPE") == 0 && family->has_type)
    ||  (strcmp (keyword, "HELP") == 0 && family->has_help))
        return s_fail (parser, "duplicate %s line for %s", keyword, family->pub.name);
    if (family->pub.sample_count > 0)
        return s_fail (parser, "%s line for %s after its samples", keyword, family->pub.name);
    *family_p = family;
    return 0;
}

//  --------------------------------------------------------------------------
//  Comment lines: # HELP name docstring, # TYPE name type, anything else ignored.

static int
s_parse_comment (s_parser_t *parser, s_cursor_t *cursor)
{
    al_metrics_t *self = parser->self;
    cursor->p++;                    // '#'
    s_skip_blanks (cursor);
    const char *keyword;
    size_t keyword_length = s_token (cursor, &keyword);
    bool is_help = keyword_length == 4 && memcmp (keyword, "HELP", 4) == 0;
    bool is_type = keyword_length == 4 && memcmp (keyword, "TYPE", 4) == 0;
    if (!is_help && !is_type)
        return 0;
    s_skip_blanks (cursor);
    const char *name;
    size_t name_length = s_token (cursor, &name);
    if (name_length == 0)
        return s_fail (parser, "%s line without a metric name", is_help ? "HELP" : "TYPE");
    if (!s_valid_metric_name (name, name_length))
        return s_fail (parser, "invalid metric name in %s line", is_help ? "HELP" : "TYPE");
    s_family_t *family;
    if (s_metadata_family (parser, is_help ? "HELP" : "TYPE", name, name_length, &family))
        return -1;
    s_skip_blanks (cursor);
    if (is_type) {
        const char *type;
        size_t type_length = s_token (cursor, &type);
        if (type_length == 0)
            return s_fail (parser, "TYPE line for %s without a type", family->pub.name);
        al_metric_type_t found = AL_METRIC_UNTYPED;
        bool known = false;
        for (int i = AL_METRIC_UNTYPED; i <= AL_METRIC_SUMMARY; i++)
            if (strlen (s_type_names [i]) == type_length
            &&  memcmp (s_type_names [i], type, type_length) == 0) {
                found = (al_metric_type_t) i;
                known = true;
            }
        if (!known)
            return s_fail (parser, "unknown metric type in TYPE line for %s", family->pub.name);
        s_skip_blanks (cursor);
        if (cursor->p != cursor->end)
            return s_fail (parser, "unexpected text after the type in TYPE line for %s",
                           family->pub.name);
        if (s_check_collision (parser, family->pub.name, found))
            return -1;
        family->pub.type = found;
        family->has_type = true;
        return 0;
    }
    //  HELP: the rest of the line, trailing blanks dropped, \\ and \n unescaped.
    const char *end = cursor->end;
    while (end > cursor->p && s_is_blank (end [-1]))
        end--;
    char *help = s_arena_alloc (self, (size_t) (end - cursor->p) + 1);
    if (!help)
        return s_fail_nomem (parser);
    char *out = help;
    for (const char *p = cursor->p; p < end; p++) {
        if (*p != '\\') {
            *out++ = *p;
            continue;
        }
        if (p + 1 == end)
            return s_fail (parser, "HELP text of %s ends with a lone backslash", family->pub.name);
        p++;
        if (*p == '\\')
            *out++ = '\\';
        else
        if (*p == 'n')
            *out++ = '\n';
        else
            return s_fail_escape (parser, *p, "HELP text of", family->pub.name);
    }
    *out = '\0';
    family->pub.help = help;
    family->has_help = true;
    return 0;
}

//  --------------------------------------------------------------------------
//  Sample lines: name [{labels}] value [timestamp]

static int
s_scratch_reserve (s_parser_t *parser, size_t count)
{
    if (count < parser->scratch_alloc)
        return 0;
    size_t alloc = parser->scratch_alloc ? parser->scratch_alloc * 2 : 8;
    al_metric_label_t *scratch = realloc (parser->scratch, alloc * sizeof *scratch);
    if (!scratch)
        return s_fail_nomem (parser);
    parser->scratch = scratch;
    parser->scratch_alloc = alloc;
    return 0;
}

//  One quoted label value, cursor on the opening quote; unescaped into the arena.
static int
s_parse_label_value (s_parser_t *parser, s_cursor_t *cursor, const char *label, const char **value_p)
{
    cursor->p++;                    // '"'
    //  Find the closing quote first so the copy is no larger than the value.
    const char *start = cursor->p, *close = start;
    while (close < cursor->end && *close != '"')
        close += (*close == '\\' && close + 1 < cursor->end) ? 2 : 1;
    if (close >= cursor->end)
        return s_fail (parser, "unterminated value of label %s", label);
    char *value = s_arena_alloc (parser->self, (size_t) (close - start) + 1);
    if (!value)
        return s_fail_nomem (parser);
    char *out = value;
    for (const char *p = start; p < close; p++) {
        if (*p != '\\') {
            *out++ = *p;
            continue;
        }
        p++;
        if (*p == '\\' || *p == '"')
            *out++ = *p;
        else
        if (*p == 'n')
            *out++ = '\n';
        else
            return s_fail_escape (parser, *p, "value of label", label);
    }
    *out = '\0';
    cursor->p = close + 1;
    *value_p = value;
    return 0;
}

static int
s_compare_labels (const void *a, const void *b)
{
    return strcmp (((const al_metric_label_t *) a)->name, ((const al_metric_label_t *) b)->name);
}

//  {name="value",...}, cursor on '{'. Labels land in parser->scratch.
static int
s_parse_labels (s_parser_t *parser, s_cursor_t *cursor, const char *metric, size_t *count_p)
{
    size_t count = 0;
    cursor->p++;                    // '{'
    while (true) {
        s_skip_blanks (cursor);
        if (cursor->p == cursor->end)
            return s_fail (parser, "unterminated label set of %s", metric);
        if (*cursor->p == '}') {
            cursor->p++;
            break;
        }
        if (count == parser->limits.max_labels_per_sample)
            return s_fail (parser, "more than %zu labels on %s",
                           parser->limits.max_labels_per_sample, metric);
        const char *name = cursor->p;
        if (!s_is_name_start ((unsigned char) *cursor->p, false))
            return s_fail (parser, "invalid label name on %s (character 0x%02x)", metric,
                           (unsigned char) *cursor->p);
        while (cursor->p < cursor->end && s_is_name_char ((unsigned char) *cursor->p, false))
            cursor->p++;
        size_t name_length = (size_t) (cursor->p - name);
        if (name_length >= 2 && name [0] == '_' && name [1] == '_')
            return s_fail (parser, "label name %.*s on %s is reserved (starts with __)",
                           (int) (name_length > 64 ? 64 : name_length), name, metric);
        char *label = s_arena_strndup (parser->self, name, name_length);
        if (!label)
            return s_fail_nomem (parser);
        s_skip_blanks (cursor);
        if (cursor->p == cursor->end || *cursor->p != '=')
            return s_fail (parser, "expected '=' after label name %s on %s", label, metric);
        cursor->p++;
        s_skip_blanks (cursor);
        if (cursor->p == cursor->end || *cursor->p != '"')
            return s_fail (parser, "value of label %s on %s is not quoted", label, metric);
        const char *value = NULL;
        if (s_parse_label_value (parser, cursor, label, &value))
            return -1;
        if (s_scratch_reserve (parser, count))
            return -1;
        parser->scratch [count].name = label;
        parser->scratch [count].value = value;
        count++;
        s_skip_blanks (cursor);
        if (cursor->p < cursor->end && *cursor->p == ',') {
            cursor->p++;
            continue;
        }
        if (cursor->p < cursor->end && *cursor->p == '}') {
            cursor->p++;
            break;
        }
        return s_fail (parser, "expected ',' or '}' after label %s on %s", label, metric);
    }
    //  Sorted order makes label sets comparable; duplicates end up adjacent.
    if (count > 1)
        qsort (parser->scratch, count, sizeof parser->scratch [0], s_compare_labels);
    for (size_t i = 1; i < count; i++)
        if (strcmp (parser->scratch [i - 1].name, parser->scratch [i].name) == 0)
            return s_fail (parser, "duplicate label name %s on %s", parser->scratch [i].name, metric);
    *count_p = count;
    return 0;
}

static const char *
s_find_label (const al_metric_label_t *labels, size_t count, const char *name)
{
    for (size_t i = 0; i < count; i++)
        if (strcmp (labels [i].name, name) == 0)
            return labels [i].value;
    return NULL;
}

static bool
s_has_suffix (const char *name, const char *base, const char *suffix)
{
    size_t base_length = strlen (base);
    return strncmp (name, base, base_length) == 0 && strcmp (name + base_length, suffix) == 0;
}

//  Per-type rules for one sample of family.
static int
s_check_sample_kind (s_parser_t *parser, const s_family_t *family, const char *name,
                     const al_metric_label_t *labels, size_t count, double value)
{
    const char *base = family->pub.name;
    double number;
    if (family->pub.type == AL_METRIC_HISTOGRAM) {
        const char *le = s_find_label (labels, count, "le");
        if (s_has_suffix (name, base, "_bucket")) {
            if (!le)
                return s_fail (parser, "%s without le label", name);
            if (!s_parse_number (le, strlen (le), &number) || isnan (number))
                return s_fail (parser, "le label of %s is not a number", name);
            if (isnan (value) || value < 0)
                return s_fail (parser, "bucket count of %s is negative or NaN", name);
            return 0;
        }
        if (s_has_suffix (name, base, "_sum") || s_has_suffix (name, base, "_count")) {
            if (le)
                return s_fail (parser, "le label on %s", name);
            return 0;
        }
        return s_fail (parser, "histogram %s: sample %s needs a _bucket, _sum or _count suffix",
                       base, name);
    }
    if (family->pub.type == AL_METRIC_SUMMARY) {
        const char *quantile = s_find_label (labels, count, "quantile");
        if (strcmp (name, base) == 0) {
            if (!quantile)
                return s_fail (parser, "summary %s without quantile label", name);
            if (!s_parse_number (quantile, strlen (quantile), &number)
            ||  !(number >= 0 && number <= 1))
                return s_fail (parser, "quantile label of %s is not a number in [0, 1]", name);
            return 0;
        }
        if (quantile)
            return s_fail (parser, "quantile label on %s", name);
        return 0;
    }
    return 0;
}

static int
s_parse_sample (s_parser_t *parser, s_cursor_t *cursor)
{
    al_metrics_t *self = parser->self;
    const char *name_start = cursor->p;
    if (!s_is_name_start ((unsigned char) *cursor->p, true))
        return s_fail (parser, "invalid metric name (character 0x%02x)", (unsigned char) *cursor->p);
    while (cursor->p < cursor->end && s_is_name_char ((unsigned char) *cursor->p, true))
        cursor->p++;
    if (cursor->p < cursor->end && !s_is_blank (*cursor->p) && *cursor->p != '{')
        return s_fail (parser, "invalid character 0x%02x in metric name",
                       (unsigned char) *cursor->p);
    char *name = s_arena_strndup (self, name_start, (size_t) (cursor->p - name_start));
    if (!name)
        return s_fail_nomem (parser);
    s_skip_blanks (cursor);
    size_t label_count = 0;
    if (cursor->p < cursor->end && *cursor->p == '{') {
        if (s_parse_labels (parser, cursor, name, &label_count))
            return -1;
        s_skip_blanks (cursor);
    }
    const char *token;
    size_t token_length = s_token (cursor, &token);
    if (token_length == 0)
        return s_fail (parser, "sample %s without a value", name);
    double value;
    if (!s_parse_number (token, token_length, &value))
        return s_fail (parser, "value of %s is not a number", name);
    s_skip_blanks (cursor);
    bool has_timestamp = false;
    int64_t timestamp = 0;
    if (cursor->p < cursor->end) {
        token_length = s_token (cursor, &token);
        if (!s_parse_timestamp (token, token_length, &timestamp))
            return s_fail (parser, "timestamp of %s is not an integer (milliseconds)", name);
        has_timestamp = true;
        s_skip_blanks (cursor);
        if (cursor->p < cursor->end)
            return s_fail (parser, "unexpected text after the timestamp of %s", name);
    }
    if (self->sample_count >= parser->limits.max_samples)
        return s_fail (parser, "more than %zu samples", parser->limits.max_samples);

    //  Which family, and is it the current one?
    s_family_t *family = s_family_of_sample (self, name);
    if (!family) {
        if (s_new_family (parser, name, strlen (name), &family))
            return -1;
    }
    else
    if (s_switch_to (parser, (size_t) (family - self->families)))
        return -1;
    if (s_check_sample_kind (parser, family, name, parser->scratch, label_count, value))
        return -1;

    //  One sample per series.
    s_series_key_t key = { name, parser->scratch, label_count };
    uint32_t hash = s_labels_hash (name, parser->scratch, label_count, NULL);
    size_t found = s_table_find (&self->series_index, hash, s_same_series, self, &key);
    if (found)
        return s_fail (parser, "duplicate sample %s (same labels as line %zu)", name,
                       self->samples [found - 1].line);

    al_metric_label_t *labels = NULL;
    if (label_count > 0) {
        labels = s_arena_alloc (self, label_count * sizeof *labels);
        if (!labels)
            return s_fail_nomem (parser);
        memcpy (labels, parser->scratch, label_count * sizeof *labels);
    }
    if (self->sample_count == self->sample_alloc) {
        size_t alloc = self->sample_alloc ? self->sample_alloc * 2 : 64;
        al_metric_sample_t *samples = realloc (self->samples, alloc * sizeof *samples);
        if (!samples)
            return s_fail_nomem (parser);
        self->samples = samples;
        self->sample_alloc = alloc;
    }
    size_t index = self->sample_count;
    if (s_table_insert (&self->series_index, hash, index))
        return s_fail_nomem (parser);
    //  Grouping keeps a family's samples contiguous.
    assert (family->pub.sample_count == 0
            || family->first_sample + family->pub.sample_count == index);
    if (family->pub.sample_count == 0)
        family->first_sample = index;
    self->samples [index] = (al_metric_sample_t) {
        .name = name, .labels = labels, .label_count = label_count, .value = value,
        .has_timestamp = has_timestamp, .timestamp_ms = timestamp, .line = parser->line
    };
    self->sample_count++;
    family->pub.sample_count++;
    return 0;
}

//  --------------------------------------------------------------------------
//  Histogram and summary checks, once all lines are read.

typedef struct {
    const al_metric_sample_t *first;
    size_t last_line;
    double last_bound;
    double last_count;
    double inf_count;
    double count;
    size_t count_line;
    bool has_bucket;
    bool has_inf;
    bool has_count;
} s_group_t;

typedef struct {
    const s_group_t *groups;
    const char *exclude;
} s_group_ctx_t;

static bool
s_same_group (const void *ctx, size_t index, const void *key)
{
    const s_group_ctx_t *group_ctx = ctx;
    const al_metric_sample_t *a = group_ctx->groups [index].first, *b = key;
    return s_labels_equal (a->labels, a->label_count, b->labels, b->label_count, group_ctx->exclude);
}

//  Histograms: per label set (without le) buckets ascending, counts cumulative, an
//  +Inf bucket equal to _count. Summaries: quantiles ascending per label set.
static int
s_check_family (s_parser_t *parser, const s_family_t *family)
{
    al_metrics_t *self = parser->self;
    bool histogram = family->pub.type == AL_METRIC_HISTOGRAM;
    const char *exclude = histogram ? "le" : "quantile";
    const char *base = family->pub.name;
    int rc = -1;
    s_table_t table = { 0 };
    size_t group_count = 0;
    s_group_t *groups = calloc (family->pub.sample_count, sizeof *groups);
    if (!groups) {
        s_fail_nomem (parser);
        goto cleanup;
    }
    s_group_ctx_t ctx = { groups, exclude };
    for (size_t i = 0; i < family->pub.sample_count; i++) {
        const al_metric_sample_t *sample = &self->samples [family->first_sample + i];
        parser->line = sample->line;
        uint32_t hash = s_labels_hash (NULL, sample->labels, sample->label_count, exclude);
        size_t found = s_table_find (&table, hash, s_same_group, &ctx, sample);
        s_group_t *group;
        if (found)
            group = &groups [found - 1];
        else {
            if (s_table_insert (&table, hash, group_count)) {
                s_fail_nomem (parser);
                goto cleanup;
            }
            group = &groups [group_count++];
            group->first = sample;
        }
        group->last_line = sample->line;
        const char *bound_text = s_find_label (sample->labels, sample->label_count, exclude);
        bool is_bound = histogram ? s_has_suffix (sample->name, base, "_bucket")
                                  : strcmp (sample->name, base) == 0;
        if (is_bound) {
            double bound = 0;
            bool parsed = s_parse_number (bound_text, strlen (bound_text), &bound);
            assert (parsed);        // checked when the line was read
            if (group->has_bucket && !(bound > group->last_bound)) {
                s_fail (parser, "%s %s=\"%s\" of %s is not above the previous one",
                        histogram ? "bucket" : "quantile", exclude, bound_text, base);
                goto cleanup;
            }
            if (histogram && group->has_bucket && sample->value < group->last_count) {
                s_fail (parser, "bucket counts of %s are not cumulative (le=\"%s\" has %g, "
                        "less than the previous bucket)", base, bound_text, sample->value);
                goto cleanup;
            }
            group->has_bucket = true;
            group->last_bound = bound;
            group->last_count = sample->value;
            if (isinf (bound) && bound > 0) {
                group->has_inf = true;
                group->inf_count = sample->value;
            }
        }
        else
        if (s_has_suffix (sample->name, base, "_count")) {
            group->has_count = true;
            group->count = sample->value;
            group->count_line = sample->line;
        }
    }
    if (histogram) {
        for (size_t i = 0; i < group_count; i++) {
            s_group_t *group = &groups [i];
            parser->line = group->last_line;
            if (!group->has_inf) {
                s_fail (parser, "histogram %s has no le=\"+Inf\" bucket", base);
                goto cleanup;
            }
            if (!group->has_count) {
                s_fail (parser, "histogram %s has no %s_count", base, base);
                goto cleanup;
            }
            if (group->inf_count != group->count) {
                parser->line = group->count_line;
                s_fail (parser, "%s_count (%g) differs from its +Inf bucket (%g)", base,
                        group->count, group->inf_count);
                goto cleanup;
            }
        }
    }
    rc = 0;
cleanup:
    s_table_free (&table);
    free (groups);
    return rc;
}

//  --------------------------------------------------------------------------
//  Parse

void
al_metrics_limits_default (al_metrics_limits_t *limits)
{
    assert (limits);
    limits->max_input_size = AL_METRICS_DEFAULT_MAX_INPUT_SIZE;
    limits->max_line_length = AL_METRICS_DEFAULT_MAX_LINE_LENGTH;
    limits->max_labels_per_sample = AL_METRICS_DEFAULT_MAX_LABELS;
    limits->max_samples = AL_METRICS_DEFAULT_MAX_SAMPLES;
}

static int
s_parse_line (s_parser_t *parser, const char *line, size_t length)
{
    if (s_check_text (parser, line, length))
        return -1;
    s_cursor_t cursor = { line, line + length };
    s_skip_blanks (&cursor);
    if (cursor.p == cursor.end)
        return 0;
    if (*cursor.p == '#')
        return s_parse_comment (parser, &cursor);
    return s_parse_sample (parser, &cursor);
}

al_metrics_t *
al_metrics_parse (const char *data, size_t size, const al_metrics_limits_t *limits,
                  char *error, size_t error_size)
{
    assert (data || size == 0);
    s_parser_t parser = { .current = SIZE_MAX, .error = error, .error_size = error_size };
    al_metrics_limits_default (&parser.limits);
    if (limits) {
        if (limits->max_input_size)
            parser.limits.max_input_size = limits->max_input_size;
        if (limits->max_line_length)
            parser.limits.max_line_length = limits->max_line_length;
        if (limits->max_labels_per_sample)
            parser.limits.max_labels_per_sample = limits->max_labels_per_sample;
        if (limits->max_samples)
            parser.limits.max_samples = limits->max_samples;
    }
    if (parser.limits.max_samples > S_MAX_INDEX)
        parser.limits.max_samples = S_MAX_INDEX;
    if (error && error_size)
        error [0] = '\0';
    if (size > parser.limits.max_input_size) {
        s_set_error (error, error_size, "input: %zu bytes, more than the limit of %zu",
                     size, parser.limits.max_input_size);
        return NULL;
    }
    al_metrics_t *self = calloc (1, sizeof *self);
    if (!self) {
        s_set_error (error, error_size, "input: out of memory");
        return NULL;
    }
    parser.self = self;
    const char *p = data, *end = size ? data + size : data;
    while (p < end) {
        parser.line++;
        const char *newline = memchr (p, '\n', (size_t) (end - p));
        const char *line_end = newline ? newline : end;
        if ((size_t) (line_end - p) > parser.limits.max_line_length) {
            s_fail (&parser, "line longer than %zu bytes", parser.limits.max_line_length);
            goto failed;
        }
        if (!newline) {
            //  A truncated body would otherwise parse as a shorter, valid one.
            s_fail (&parser, "last line does not end with a newline (truncated input?)");
            goto failed;
        }
        if (s_parse_line (&parser, p, (size_t) (line_end - p)))
            goto failed;
        p = newline + 1;
    }
    for (size_t i = 0; i < self->family_count; i++) {
        s_family_t *family = &self->families [i];
        family->pub.samples = family->pub.sample_count ? &self->samples [family->first_sample] : NULL;
        if ((family->pub.type == AL_METRIC_HISTOGRAM || family->pub.type == AL_METRIC_SUMMARY)
        &&  family->pub.sample_count > 0 && s_check_family (&parser, family))
            goto failed;
    }
    free (parser.scratch);
    return self;
failed:
    free (parser.scratch);
    al_metrics_destroy (&self);
    return NULL;
}

void
al_metrics_destroy (al_metrics_t **self_p)
{
    assert (self_p);
    al_metrics_t *self = *self_p;
    if (!self)
        return;
    while (self->blocks) {
        s_block_t *next = self->blocks->next;
        free (self->blocks);
        self->blocks = next;
    }
    free (self->families);
    free (self->samples);
    s_table_free (&self->family_index);
    s_table_free (&self->series_index);
    free (self);
    *self_p = NULL;
}

//  --------------------------------------------------------------------------
//  Queries

size_t
al_metrics_family_count (const al_metrics_t *self)
{
    assert (self);
    return self->family_count;
}

const al_metric_family_t *
al_metrics_family_at (const al_metrics_t *self, size_t index)
{
    assert (self);
    return index < self->family_count ? &self->families [index].pub : NULL;
}

const al_metric_family_t *
al_metrics_find (const al_metrics_t *self, const char *name)
{
    assert (self);
    assert (name);
    s_family_t *family = s_find_family (self, name);
    return family ? &family->pub : NULL;
}

size_t
al_metrics_sample_count (const al_metrics_t *self)
{
    assert (self);
    return self->sample_count;
}

const al_metric_sample_t *
al_metrics_lookup (const al_metrics_t *self, const al_metric_sample_t *sample)
{
    assert (self);
    assert (sample);
    s_series_key_t key = { sample->name, sample->labels, sample->label_count };
    uint32_t hash = s_labels_hash (sample->name, sample->labels, sample->label_count, NULL);
    size_t found = s_table_find (&self->series_index, hash, s_same_series, self, &key);
    return found ? &self->samples [found - 1] : NULL;
}

const char *
al_metric_sample_label (const al_metric_sample_t *sample, const char *name)
{
    assert (sample);
    assert (name);
    //  Labels are sorted: binary search.
    size_t low = 0, high = sample->label_count;
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        int order = strcmp (sample->labels [middle].name, name);
        if (order == 0)
            return sample->labels [middle].value;
        if (order < 0)
            low = middle + 1;
        else
            high = middle;
    }
    return NULL;
}

bool
al_metric_sample_matches (const al_metric_sample_t *sample, const al_metric_matcher_t *matchers,
                          size_t count)
{
    assert (sample);
    assert (matchers || count == 0);
    for (size_t i = 0; i < count; i++) {
        assert (matchers [i].name && matchers [i].value);
        const char *value = al_metric_sample_label (sample, matchers [i].name);
        if (!value)
            value = "";
        bool match;
        switch (matchers [i].op) {
            case AL_MATCH_EQUAL:
            case AL_MATCH_NOT_EQUAL:
                match = strcmp (value, matchers [i].value) == 0;
                break;
            case AL_MATCH_PREFIX:
            case AL_MATCH_NOT_PREFIX:
                match = strncmp (value, matchers [i].value, strlen (matchers [i].value)) == 0;
                break;
            default:
                assert (false);
                return false;
        }
        if (matchers [i].op == AL_MATCH_NOT_EQUAL || matchers [i].op == AL_MATCH_NOT_PREFIX)
            match = !match;
        if (!match)
            return false;
    }
    return true;
}

size_t
al_metrics_sum_if (const al_metrics_t *self, const char *sample_name,
                   al_metric_predicate_fn *predicate, void *arg, double *sum_p)
{
    assert (self);
    assert (sample_name);
    assert (sum_p);
    *sum_p = 0;
    const s_family_t *family = s_family_of_sample (self, sample_name);
    if (!family)
        return 0;
    size_t matched = 0;
    for (size_t i = 0; i < family->pub.sample_count; i++) {
        const al_metric_sample_t *sample = &family->pub.samples [i];
        if (strcmp (sample->name, sample_name) != 0)
            continue;
        if (predicate && !predicate (sample, arg))
            continue;
        *sum_p += sample->value;
        matched++;
    }
    return matched;
}

typedef struct {
    const al_metric_matcher_t *matchers;
    size_t count;
} s_matcher_list_t;

static bool
s_matches_list (const al_metric_sample_t *sample, void *arg)
{
    const s_matcher_list_t *list = arg;
    return al_metric_sample_matches (sample, list->matchers, list->count);
}

size_t
al_metrics_sum (const al_metrics_t *self, const char *sample_name,
                const al_metric_matcher_t *matchers, size_t count, double *sum_p)
{
    s_matcher_list_t list = { matchers, count };
    return al_metrics_sum_if (self, sample_name, s_matches_list, &list, sum_p);
}

//  Sort by upper bound; NaN bounds (never from the parser) sort last so the order is
//  total and qsort stays well defined.
static int
s_compare_buckets (const void *a, const void *b)
{
    double x = ((const al_metric_bucket_t *) a)->upper_bound;
    double y = ((const al_metric_bucket_t *) b)->upper_bound;
    if (isnan (x) || isnan (y))
        return isnan (x) - isnan (y);
    return (x > y) - (x < y);
}

int
al_metrics_histogram (const al_metrics_t *self, const char *name,
                      const al_metric_matcher_t *matchers, size_t count,
                      al_metric_bucket_t **buckets_p, size_t *count_p)
{
    assert (self);
    assert (name);
    assert (buckets_p && count_p);
    *buckets_p = NULL;
    *count_p = 0;
    const s_family_t *family = s_find_family (self, name);
    if (!family || family->pub.type != AL_METRIC_HISTOGRAM || family->pub.sample_count == 0)
        return 0;
    al_metric_bucket_t *buckets = malloc (family->pub.sample_count * sizeof *buckets);
    if (!buckets)
        return -1;
    size_t used = 0;
    for (size_t i = 0; i < family->pub.sample_count; i++) {
        const al_metric_sample_t *sample = &family->pub.samples [i];
        if (!s_has_suffix (sample->name, name, "_bucket")
        ||  !al_metric_sample_matches (sample, matchers, count))
            continue;
        const char *le = al_metric_sample_label (sample, "le");
        assert (le);
        bool parsed = s_parse_number (le, strlen (le), &buckets [used].upper_bound);
        assert (parsed);
        buckets [used++].count = sample->value;
    }
    if (used == 0) {
        free (buckets);
        return 0;
    }
    qsort (buckets, used, sizeof *buckets, s_compare_buckets);
    size_t merged = 0;
    for (size_t i = 0; i < used; i++) {
        if (merged > 0 && buckets [merged - 1].upper_bound == buckets [i].upper_bound)
            buckets [merged - 1].count += buckets [i].count;
        else
            buckets [merged++] = buckets [i];
    }
    *buckets_p = buckets;
    *count_p = merged;
    return 0;
}

//  --------------------------------------------------------------------------
//  histogram_quantile, after promql/quantile.go

//  coalesceBuckets: merge buckets with the same upper bound (input sorted).
static size_t
s_coalesce (al_metric_bucket_t *buckets, size_t count)
{
    al_metric_bucket_t last = buckets [0];
    size_t i = 0;
    for (size_t j = 1; j < count; j++) {
        if (buckets [j].upper_bound == last.upper_bound)
            last.count += buckets [j].count;
        else {
            buckets [i++] = last;
            last = buckets [j];
        }
    }
    buckets [i] = last;
    return i + 1;
}

//  correctPrecisionErrors with tolerance 1e-12.
static void
s_correct_precision (al_metric_bucket_t *buckets, size_t count)
{
    double previous = buckets [0].count;
    for (size_t i = 1; i < count; i++) {
        double current = buckets [i].count;
        double delta = fabs (current - previous);
        if (delta == 0)
            continue;
        if (delta / current <= 1e-12)
            buckets [i].count = previous;
        else
            previous = current;
    }
}

//  ensureMonotonic: remove decreases between successive buckets.
static void
s_ensure_monotonic (al_metric_bucket_t *buckets, size_t count)
{
    double max = buckets [0].count;
    for (size_t i = 1; i < count; i++) {
        if (buckets [i].count > max)
            max = buckets [i].count;
        else
        if (buckets [i].count < max)
            buckets [i].count = max;
    }
}

double
al_histogram_quantile (double q, const al_metric_bucket_t *input, size_t count)
{
    assert (input || count == 0);
    if (isnan (q))
        return NAN;
    if (q < 0)
        return -INFINITY;
    if (q > 1)
        return INFINITY;
    if (count == 0)
        return NAN;
    al_metric_bucket_t *buckets = malloc (count * sizeof *buckets);
    if (!buckets)
        return NAN;
    memcpy (buckets, input, count * sizeof *buckets);
    qsort (buckets, count, sizeof *buckets, s_compare_buckets);
    double result = NAN;
    double highest = buckets [count - 1].upper_bound;
    if (!(isinf (highest) && highest > 0))
        goto cleanup;
    count = s_coalesce (buckets, count);
    s_correct_precision (buckets, count);
    s_ensure_monotonic (buckets, count);
    if (count < 2)
        goto cleanup;
    double observations = buckets [count - 1].count;
    if (observations == 0)
        goto cleanup;
    double rank = q * observations;
    //  sort.Search (len - 1, count >= rank): the smallest index whose count reaches rank.
    size_t low = 0, high = count - 1;
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        if (!(buckets [middle].count >= rank))
            low = middle + 1;
        else
            high = middle;
    }
    size_t b = low;
    if (b == count - 1) {
        result = buckets [count - 2].upper_bound;
        goto cleanup;
    }
    if (b == 0 && buckets [0].upper_bound <= 0) {
        result = buckets [0].upper_bound;
        goto cleanup;
    }
    double bucket_start = 0;
    double bucket_end = buckets [b].upper_bound;
    double bucket_count = buckets [b].count;
    if (b > 0) {
        bucket_start = buckets [b - 1].upper_bound;
        bucket_count -= buckets [b - 1].count;
        rank -= buckets [b - 1].count;
    }
    result = bucket_start + (bucket_end - bucket_start) * (rank / bucket_count);
cleanup:
    free (buckets);
    return result;
}

bool
al_metric_parse_value (const char *text, double *value_p)
{
    assert (text);
    assert (value_p);
    return s_parse_number (text, strlen (text), value_p);
}

const char *
al_metric_type_name (al_metric_type_t type)
{
    if ((int) type < AL_METRIC_UNTYPED || type > AL_METRIC_SUMMARY)
        return NULL;
    return s_type_names [type];
}
