/*  al_metrics_lines.c: one line of the text exposition format at a time: numbers and
    timestamps as Prometheus reads them, the text checks (UTF-8, controls), comment
    lines (# HELP, # TYPE) and sample lines (name, labels, value, timestamp) with the
    per-family and per-type rules. See al_metrics.c for the invariants.
*/
#include "deploy/al_metrics_int.h"
#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  --------------------------------------------------------------------------
//  Numbers and text

static bool
s_equal_nocase (const char *text, size_t length, const char *word)
{
    return strlen (word) == length && strncasecmp (text, word, length) == 0;
}

//  A float as Go's strconv.ParseFloat reads it in the text format, restricted to
//  decimal notation: [+-]digits[.digits][e[+-]digits], NaN, [+-]Inf, [+-]Infinity.
bool
al_metrics_parse_number (const char *text, size_t length, double *value_p)
{
    if (length == 0 || length > AL_METRICS_MAX_NUMBER_LEN)
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
    char buffer [AL_METRICS_MAX_NUMBER_LEN + 1];
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
int
al_metrics_check_text (al_metrics_parser_t *parser, const char *text, size_t length)
{
    const unsigned char *p = (const unsigned char *) text, *end = p + length;
    while (p < end) {
        unsigned char c = *p;
        if (c < 0x80) {
            if (c == '\r')
                return al_metrics_fail (parser, "carriage return (lines must end with \\n only)");
            if ((c < 0x20 && c != '\t') || c == 0x7f)
                return al_metrics_fail (parser, "control character 0x%02x", c);
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
            return al_metrics_fail (parser, "invalid UTF-8 byte 0x%02x", c);
        if ((size_t) (end - p) <= extra)
            return al_metrics_fail (parser, "truncated UTF-8 sequence");
        for (size_t i = 1; i <= extra; i++) {
            if ((p [i] & 0xc0) != 0x80)
                return al_metrics_fail (parser, "invalid UTF-8 byte 0x%02x", p [i]);
            code = (code << 6) | (p [i] & 0x3f);
        }
        if ((extra == 2 && code < 0x800) || (extra == 3 && code < 0x10000)
        ||  (code >= 0xd800 && code <= 0xdfff) || code > 0x10ffff)
            return al_metrics_fail (parser, "invalid UTF-8 sequence");
        p += extra + 1;
    }
    return 0;
}

static bool
s_is_blank (char c)
{
    return c == ' ' || c == '\t';
}

void
al_metrics_skip_blanks (al_metrics_cursor_t *cursor)
{
    while (cursor->p < cursor->end && s_is_blank (*cursor->p))
        cursor->p++;
}

//  The next run of non-blank characters.
static size_t
s_token (al_metrics_cursor_t *cursor, const char **token_p)
{
    *token_p = cursor->p;
    while (cursor->p < cursor->end && !s_is_blank (*cursor->p))
        cursor->p++;
    return (size_t) (cursor->p - *token_p);
}

static bool
s_valid_metric_name (const char *text, size_t length)
{
    if (length == 0 || !al_metrics_is_name_start ((unsigned char) text [0], true))
        return false;
    for (size_t i = 1; i < length; i++)
        if (!al_metrics_is_name_char ((unsigned char) text [i], true))
            return false;
    return true;
}

//  --------------------------------------------------------------------------
//  Families

static int
s_check_collision (al_metrics_parser_t *parser, const char *name, al_metric_type_t type)
{
    al_metrics_t *self = parser->self;
    //  A histogram/summary named name must not meet families named name_sum etc.
    for (size_t i = 0; i < sizeof al_metrics_suffixes / sizeof al_metrics_suffixes [0]; i++) {
        if (!al_metrics_type_has_suffix (type, al_metrics_suffixes [i]))
            continue;
        if (al_metrics_find_family_parts (self, name, strlen (name), al_metrics_suffixes [i]))
            return al_metrics_fail (parser, "%s %s collides with metric family %s%s",
                           al_metrics_type_names [type], name, name, al_metrics_suffixes [i]);
    }
    //  ... and a family named x_count must not meet a histogram/summary x.
    al_metrics_fam_t *owner = al_metrics_find_owner_by_suffix (self, name);
    if (owner)
        return al_metrics_fail (parser, "metric family %s collides with %s %s",
                       name, al_metrics_type_names [owner->pub.type], owner->pub.name);
    return 0;
}

//  Make family index current, closing the previous current family.
static int
s_switch_to (al_metrics_parser_t *parser, size_t index)
{
    al_metrics_fam_t *family = &parser->self->families [index];
    if (parser->current == index)
        return 0;
    if (family->closed)
        return al_metrics_fail (parser, "lines of metric family %s are not grouped together",
                       family->pub.name);
    if (parser->current != SIZE_MAX)
        parser->self->families [parser->current].closed = true;
    parser->current = index;
    return 0;
}

//  A new untyped family, made current.
static int
s_new_family (al_metrics_parser_t *parser, const char *name, size_t length,
              al_metrics_fam_t **family_p)
{
    al_metrics_t *self = parser->self;
    if (self->family_count >= AL_METRICS_MAX_INDEX)
        return al_metrics_fail (parser, "too many metric families");
    if (self->family_count == self->family_alloc) {
        size_t alloc = self->family_alloc ? self->family_alloc * 2 : 16;
        al_metrics_fam_t *families = realloc (self->families, alloc * sizeof *families);
        if (!families)
            return al_metrics_fail_nomem (parser);
        self->families = families;
        self->family_alloc = alloc;
    }
    char *copy = al_metrics_arena_strndup (self, name, length);
    if (!copy)
        return al_metrics_fail_nomem (parser);
    if (s_check_collision (parser, copy, AL_METRIC_UNTYPED))
        return -1;
    size_t index = self->family_count;
    if (al_metrics_table_insert (&self->family_index, al_metrics_name_hash (copy, length, ""), index))
        return al_metrics_fail_nomem (parser);
    al_metrics_fam_t *family = &self->families [index];
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
s_metadata_family (al_metrics_parser_t *parser, const char *keyword, const char *name,
                   size_t length, al_metrics_fam_t **family_p)
{
    al_metrics_t *self = parser->self;
    al_metrics_fam_t *family = al_metrics_find_family_parts (self, name, length, "");
    if (!family)
        return s_new_family (parser, name, length, family_p);
    if (s_switch_to (parser, (size_t) (family - self->families)))
        return -1;
    if ((strcmp (keyword, "TYPE") == 0 && family->has_type)
    ||  (strcmp (keyword, "HELP") == 0 && family->has_help))
        return al_metrics_fail (parser, "duplicate %s line for %s", keyword, family->pub.name);
    if (family->pub.sample_count > 0)
        return al_metrics_fail (parser, "%s line for %s after its samples", keyword, family->pub.name);
    *family_p = family;
    return 0;
}

//  --------------------------------------------------------------------------
//  Comment lines: # HELP name docstring, # TYPE name type, anything else ignored.

int
al_metrics_parse_comment (al_metrics_parser_t *parser, al_metrics_cursor_t *cursor)
{
    al_metrics_t *self = parser->self;
    cursor->p++;                    // '#'
    al_metrics_skip_blanks (cursor);
    const char *keyword;
    size_t keyword_length = s_token (cursor, &keyword);
    bool is_help = keyword_length == 4 && memcmp (keyword, "HELP", 4) == 0;
    bool is_type = keyword_length == 4 && memcmp (keyword, "TYPE", 4) == 0;
    if (!is_help && !is_type)
        return 0;
    al_metrics_skip_blanks (cursor);
    const char *name;
    size_t name_length = s_token (cursor, &name);
    if (name_length == 0)
        return al_metrics_fail (parser, "%s line without a metric name", is_help ? "HELP" : "TYPE");
    if (!s_valid_metric_name (name, name_length))
        return al_metrics_fail (parser, "invalid metric name in %s line", is_help ? "HELP" : "TYPE");
    al_metrics_fam_t *family;
    if (s_metadata_family (parser, is_help ? "HELP" : "TYPE", name, name_length, &family))
        return -1;
    al_metrics_skip_blanks (cursor);
    if (is_type) {
        const char *type;
        size_t type_length = s_token (cursor, &type);
        if (type_length == 0)
            return al_metrics_fail (parser, "TYPE line for %s without a type", family->pub.name);
        al_metric_type_t found = AL_METRIC_UNTYPED;
        bool known = false;
        for (int i = AL_METRIC_UNTYPED; i <= AL_METRIC_SUMMARY; i++)
            if (strlen (al_metrics_type_names [i]) == type_length
            &&  memcmp (al_metrics_type_names [i], type, type_length) == 0) {
                found = (al_metric_type_t) i;
                known = true;
            }
        if (!known)
            return al_metrics_fail (parser, "unknown metric type in TYPE line for %s", family->pub.name);
        al_metrics_skip_blanks (cursor);
        if (cursor->p != cursor->end)
            return al_metrics_fail (parser, "unexpected text after the type in TYPE line for %s",
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
    char *help = al_metrics_arena_alloc (self, (size_t) (end - cursor->p) + 1);
    if (!help)
        return al_metrics_fail_nomem (parser);
    char *out = help;
    for (const char *p = cursor->p; p < end; p++) {
        if (*p != '\\') {
            *out++ = *p;
            continue;
        }
        if (p + 1 == end)
            return al_metrics_fail (parser, "HELP text of %s ends with a lone backslash", family->pub.name);
        p++;
        if (*p == '\\')
            *out++ = '\\';
        else
        if (*p == 'n')
            *out++ = '\n';
        else
            return al_metrics_fail_escape (parser, *p, "HELP text of", family->pub.name);
    }
    *out = '\0';
    family->pub.help = help;
    family->has_help = true;
    return 0;
}

//  --------------------------------------------------------------------------
//  Sample lines: name [{labels}] value [timestamp]

static int
s_scratch_reserve (al_metrics_parser_t *parser, size_t count)
{
    if (count < parser->scratch_alloc)
        return 0;
    size_t alloc = parser->scratch_alloc ? parser->scratch_alloc * 2 : 8;
    al_metric_label_t *scratch = realloc (parser->scratch, alloc * sizeof *scratch);
    if (!scratch)
        return al_metrics_fail_nomem (parser);
    parser->scratch = scratch;
    parser->scratch_alloc = alloc;
    return 0;
}

//  One quoted label value, cursor on the opening quote; unescaped into the arena.
static int
s_parse_label_value (al_metrics_parser_t *parser, al_metrics_cursor_t *cursor, const char *label,
                     const char **value_p)
{
    cursor->p++;                    // '"'
    //  Find the closing quote first so the copy is no larger than the value.
    const char *start = cursor->p, *close = start;
    while (close < cursor->end && *close != '"')
        close += (*close == '\\' && close + 1 < cursor->end) ? 2 : 1;
    if (close >= cursor->end)
        return al_metrics_fail (parser, "unterminated value of label %s", label);
    char *value = al_metrics_arena_alloc (parser->self, (size_t) (close - start) + 1);
    if (!value)
        return al_metrics_fail_nomem (parser);
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
            return al_metrics_fail_escape (parser, *p, "value of label", label);
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
s_parse_labels (al_metrics_parser_t *parser, al_metrics_cursor_t *cursor, const char *metric,
                size_t *count_p)
{
    size_t count = 0;
    cursor->p++;                    // '{'
    while (true) {
        al_metrics_skip_blanks (cursor);
        if (cursor->p == cursor->end)
            return al_metrics_fail (parser, "unterminated label set of %s", metric);
        if (*cursor->p == '}') {
            cursor->p++;
            break;
        }
        if (count == parser->limits.max_labels_per_sample)
            return al_metrics_fail (parser, "more than %zu labels on %s",
                           parser->limits.max_labels_per_sample, metric);
        const char *name = cursor->p;
        if (!al_metrics_is_name_start ((unsigned char) *cursor->p, false))
            return al_metrics_fail (parser, "invalid label name on %s (character 0x%02x)", metric,
                           (unsigned char) *cursor->p);
        while (cursor->p < cursor->end && al_metrics_is_name_char ((unsigned char) *cursor->p, false))
            cursor->p++;
        size_t name_length = (size_t) (cursor->p - name);
        if (name_length >= 2 && name [0] == '_' && name [1] == '_')
            return al_metrics_fail (parser, "label name %.*s on %s is reserved (starts with __)",
                           (int) (name_length > 64 ? 64 : name_length), name, metric);
        char *label = al_metrics_arena_strndup (parser->self, name, name_length);
        if (!label)
            return al_metrics_fail_nomem (parser);
        al_metrics_skip_blanks (cursor);
        if (cursor->p == cursor->end || *cursor->p != '=')
            return al_metrics_fail (parser, "expected '=' after label name %s on %s", label, metric);
        cursor->p++;
        al_metrics_skip_blanks (cursor);
        if (cursor->p == cursor->end || *cursor->p != '"')
            return al_metrics_fail (parser, "value of label %s on %s is not quoted", label, metric);
        const char *value = NULL;
        if (s_parse_label_value (parser, cursor, label, &value))
            return -1;
        if (s_scratch_reserve (parser, count))
            return -1;
        parser->scratch [count].name = label;
        parser->scratch [count].value = value;
        count++;
        al_metrics_skip_blanks (cursor);
        if (cursor->p < cursor->end && *cursor->p == ',') {
            cursor->p++;
            continue;
        }
        if (cursor->p < cursor->end && *cursor->p == '}') {
            cursor->p++;
            break;
        }
        return al_metrics_fail (parser, "expected ',' or '}' after label %s on %s", label, metric);
    }
    //  Sorted order makes label sets comparable; duplicates end up adjacent.
    if (count > 1)
        qsort (parser->scratch, count, sizeof parser->scratch [0], s_compare_labels);
    for (size_t i = 1; i < count; i++)
        if (strcmp (parser->scratch [i - 1].name, parser->scratch [i].name) == 0)
            return al_metrics_fail (parser, "duplicate label name %s on %s", parser->scratch [i].name, metric);
    *count_p = count;
    return 0;
}

const char *
al_metrics_find_label (const al_metric_label_t *labels, size_t count, const char *name)
{
    for (size_t i = 0; i < count; i++)
        if (strcmp (labels [i].name, name) == 0)
            return labels [i].value;
    return NULL;
}

bool
al_metrics_has_suffix (const char *name, const char *base, const char *suffix)
{
    size_t base_length = strlen (base);
    return strncmp (name, base, base_length) == 0 && strcmp (name + base_length, suffix) == 0;
}

//  Per-type rules for one sample of family.
static int
s_check_sample_kind (al_metrics_parser_t *parser, const al_metrics_fam_t *family, const char *name,
                     const al_metric_label_t *labels, size_t count, double value)
{
    const char *base = family->pub.name;
    double number;
    if (family->pub.type == AL_METRIC_HISTOGRAM) {
        const char *le = al_metrics_find_label (labels, count, "le");
        if (al_metrics_has_suffix (name, base, "_bucket")) {
            if (!le)
                return al_metrics_fail (parser, "%s without le label", name);
            if (!al_metrics_parse_number (le, strlen (le), &number) || isnan (number))
                return al_metrics_fail (parser, "le label of %s is not a number", name);
            if (isnan (value) || value < 0)
                return al_metrics_fail (parser, "bucket count of %s is negative or NaN", name);
            return 0;
        }
        if (al_metrics_has_suffix (name, base, "_sum") || al_metrics_has_suffix (name, base, "_count")) {
            if (le)
                return al_metrics_fail (parser, "le label on %s", name);
            return 0;
        }
        return al_metrics_fail (parser, "histogram %s: sample %s needs a _bucket, _sum or _count suffix",
                       base, name);
    }
    if (family->pub.type == AL_METRIC_SUMMARY) {
        const char *quantile = al_metrics_find_label (labels, count, "quantile");
        if (strcmp (name, base) == 0) {
            if (!quantile)
                return al_metrics_fail (parser, "summary %s without quantile label", name);
            if (!al_metrics_parse_number (quantile, strlen (quantile), &number)
            ||  !(number >= 0 && number <= 1))
                return al_metrics_fail (parser, "quantile label of %s is not a number in [0, 1]", name);
            return 0;
        }
        if (quantile)
            return al_metrics_fail (parser, "quantile label on %s", name);
        return 0;
    }
    return 0;
}

int
al_metrics_parse_sample (al_metrics_parser_t *parser, al_metrics_cursor_t *cursor)
{
    al_metrics_t *self = parser->self;
    const char *name_start = cursor->p;
    if (!al_metrics_is_name_start ((unsigned char) *cursor->p, true))
        return al_metrics_fail (parser, "invalid metric name (character 0x%02x)", (unsigned char) *cursor->p);
    while (cursor->p < cursor->end && al_metrics_is_name_char ((unsigned char) *cursor->p, true))
        cursor->p++;
    if (cursor->p < cursor->end && !s_is_blank (*cursor->p) && *cursor->p != '{')
        return al_metrics_fail (parser, "invalid character 0x%02x in metric name",
                       (unsigned char) *cursor->p);
    char *name = al_metrics_arena_strndup (self, name_start, (size_t) (cursor->p - name_start));
    if (!name)
        return al_metrics_fail_nomem (parser);
    al_metrics_skip_blanks (cursor);
    size_t label_count = 0;
    if (cursor->p < cursor->end && *cursor->p == '{') {
        if (s_parse_labels (parser, cursor, name, &label_count))
            return -1;
        al_metrics_skip_blanks (cursor);
    }
    const char *token;
    size_t token_length = s_token (cursor, &token);
    if (token_length == 0)
        return al_metrics_fail (parser, "sample %s without a value", name);
    double value;
    if (!al_metrics_parse_number (token, token_length, &value))
        return al_metrics_fail (parser, "value of %s is not a number", name);
    al_metrics_skip_blanks (cursor);
    bool has_timestamp = false;
    int64_t timestamp = 0;
    if (cursor->p < cursor->end) {
        token_length = s_token (cursor, &token);
        if (!s_parse_timestamp (token, token_length, &timestamp))
            return al_metrics_fail (parser, "timestamp of %s is not an integer (milliseconds)", name);
        has_timestamp = true;
        al_metrics_skip_blanks (cursor);
        if (cursor->p < cursor->end)
            return al_metrics_fail (parser, "unexpected text after the timestamp of %s", name);
    }
    if (self->sample_count >= parser->limits.max_samples)
        return al_metrics_fail (parser, "more than %zu samples", parser->limits.max_samples);

    //  Which family, and is it the current one?
    al_metrics_fam_t *family = al_metrics_family_of_sample (self, name);
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
    al_metrics_series_key_t key = { name, parser->scratch, label_count };
    uint32_t hash = al_metrics_labels_hash (name, parser->scratch, label_count, NULL);
    size_t found = al_metrics_table_find (&self->series_index, hash, al_metrics_same_series, self, &key);
    if (found)
        return al_metrics_fail (parser, "duplicate sample %s (same labels as line %zu)", name,
                       self->samples [found - 1].line);

    al_metric_label_t *labels = NULL;
    if (label_count > 0) {
        labels = al_metrics_arena_alloc (self, label_count * sizeof *labels);
        if (!labels)
            return al_metrics_fail_nomem (parser);
        memcpy (labels, parser->scratch, label_count * sizeof *labels);
    }
    if (self->sample_count == self->sample_alloc) {
        size_t alloc = self->sample_alloc ? self->sample_alloc * 2 : 64;
        al_metric_sample_t *samples = realloc (self->samples, alloc * sizeof *samples);
        if (!samples)
            return al_metrics_fail_nomem (parser);
        self->samples = samples;
        self->sample_alloc = alloc;
    }
    size_t index = self->sample_count;
    if (al_metrics_table_insert (&self->series_index, hash, index))
        return al_metrics_fail_nomem (parser);
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

