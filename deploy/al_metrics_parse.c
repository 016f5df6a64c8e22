/*  al_metrics_parse.c: the /metrics parser's entry point (al_metrics_parse,
    al_metrics_destroy): limits, the input split into lines, the "line N: what" errors,
    and the histogram and summary checks made once all lines are read.
    See al_metrics.c for the invariants.
*/
#include "deploy/al_metrics_int.h"
#include "base/al_error.h"
#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Fill the error buffer with "line N: ..." and return -1.
int
al_metrics_fail (al_metrics_parser_t *parser, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    al_error_vset (parser->error, parser->error_size, format, args);
    va_end (args);
    al_error_prefix (parser->error, parser->error_size, "line %zu", parser->line);
    return -1;
}

int
al_metrics_fail_nomem (al_metrics_parser_t *parser)
{
    return al_metrics_fail (parser, "out of memory");
}

//  An invalid escape; the byte after the backslash is shown as is only if printable
//  ASCII, so the message stays valid text.
int
al_metrics_fail_escape (al_metrics_parser_t *parser, char escaped, const char *where,
                        const char *name)
{
    unsigned char c = (unsigned char) escaped;
    if (c > 0x20 && c < 0x7f)
        return al_metrics_fail (parser, "invalid escape \\%c in %s %s", c, where, name);
    return al_metrics_fail (parser, "invalid escape (backslash, byte 0x%02x) in %s %s", c, where, name);
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
    return al_metrics_labels_equal (a->labels, a->label_count, b->labels, b->label_count, group_ctx->exclude);
}

//  Histograms: per label set (without le) buckets ascending, counts cumulative, an
//  +Inf bucket equal to _count. Summaries: quantiles ascending per label set.
static int
s_check_family (al_metrics_parser_t *parser, const al_metrics_fam_t *family)
{
    al_metrics_t *self = parser->self;
    bool histogram = family->pub.type == AL_METRIC_HISTOGRAM;
    const char *exclude = histogram ? "le" : "quantile";
    const char *base = family->pub.name;
    int rc = -1;
    al_metrics_table_t table = { 0 };
    size_t group_count = 0;
    s_group_t *groups = calloc (family->pub.sample_count, sizeof *groups);
    if (!groups) {
        al_metrics_fail_nomem (parser);
        goto cleanup;
    }
    s_group_ctx_t ctx = { groups, exclude };
    for (size_t i = 0; i < family->pub.sample_count; i++) {
        const al_metric_sample_t *sample = &self->samples [family->first_sample + i];
        parser->line = sample->line;
        uint32_t hash = al_metrics_labels_hash (NULL, sample->labels, sample->label_count, exclude);
        size_t found = al_metrics_table_find (&table, hash, s_same_group, &ctx, sample);
        s_group_t *group;
        if (found)
            group = &groups [found - 1];
        else {
            if (al_metrics_table_insert (&table, hash, group_count)) {
                al_metrics_fail_nomem (parser);
                goto cleanup;
            }
            group = &groups [group_count++];
            group->first = sample;
        }
        group->last_line = sample->line;
        const char *bound_text = al_metrics_find_label (sample->labels, sample->label_count, exclude);
        bool is_bound = histogram ? al_metrics_has_suffix (sample->name, base, "_bucket")
                                  : strcmp (sample->name, base) == 0;
        if (is_bound) {
            double bound = 0;
            bool parsed = al_metrics_parse_number (bound_text, strlen (bound_text), &bound);
            assert (parsed);        // checked when the line was read
            if (group->has_bucket && !(bound > group->last_bound)) {
                al_metrics_fail (parser, "%s %s=\"%s\" of %s is not above the previous one",
                        histogram ? "bucket" : "quantile", exclude, bound_text, base);
                goto cleanup;
            }
            if (histogram && group->has_bucket && sample->value < group->last_count) {
                al_metrics_fail (parser, "bucket counts of %s are not cumulative (le=\"%s\" has %g, "
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
        if (al_metrics_has_suffix (sample->name, base, "_count")) {
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
                al_metrics_fail (parser, "histogram %s has no le=\"+Inf\" bucket", base);
                goto cleanup;
            }
            if (!group->has_count) {
                al_metrics_fail (parser, "histogram %s has no %s_count", base, base);
                goto cleanup;
            }
            if (group->inf_count != group->count) {
                parser->line = group->count_line;
                al_metrics_fail (parser, "%s_count (%g) differs from its +Inf bucket (%g)", base,
                        group->count, group->inf_count);
                goto cleanup;
            }
        }
    }
    rc = 0;
cleanup:
    al_metrics_table_free (&table);
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
s_parse_line (al_metrics_parser_t *parser, const char *line, size_t length)
{
    if (al_metrics_check_text (parser, line, length))
        return -1;
    al_metrics_cursor_t cursor = { line, line + length };
    al_metrics_skip_blanks (&cursor);
    if (cursor.p == cursor.end)
        return 0;
    if (*cursor.p == '#')
        return al_metrics_parse_comment (parser, &cursor);
    return al_metrics_parse_sample (parser, &cursor);
}

al_metrics_t *
al_metrics_parse (const char *data, size_t size, const al_metrics_limits_t *limits, char *error,
                  size_t error_size)
{
    assert (data || size == 0);
    al_metrics_parser_t parser = { .current = SIZE_MAX, .error = error, .error_size = error_size };
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
    if (parser.limits.max_samples > AL_METRICS_MAX_INDEX)
        parser.limits.max_samples = AL_METRICS_MAX_INDEX;
    if (error && error_size)
        error [0] = '\0';
    if (size > parser.limits.max_input_size) {
        al_error_set (error, error_size, "input: %zu bytes, more than the limit of %zu",
                     size, parser.limits.max_input_size);
        return NULL;
    }
    al_metrics_t *self = calloc (1, sizeof *self);
    if (!self) {
        al_error_set (error, error_size, "input: out of memory");
        return NULL;
    }
    parser.self = self;
    const char *p = data, *end = size ? data + size : data;
    while (p < end) {
        parser.line++;
        const char *newline = memchr (p, '\n', (size_t) (end - p));
        const char *line_end = newline ? newline : end;
        if ((size_t) (line_end - p) > parser.limits.max_line_length) {
            al_metrics_fail (&parser, "line longer than %zu bytes", parser.limits.max_line_length);
            goto failed;
        }
        if (!newline) {
            //  A truncated body would otherwise parse as a shorter, valid one.
            al_metrics_fail (&parser, "last line does not end with a newline (truncated input?)");
            goto failed;
        }
        if (s_parse_line (&parser, p, (size_t) (line_end - p)))
            goto failed;
        p = newline + 1;
    }
    for (size_t i = 0; i < self->family_count; i++) {
        al_metrics_fam_t *family = &self->families [i];
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
        al_metrics_block_t *next = self->blocks->next;
        free (self->blocks);
        self->blocks = next;
    }
    free (self->families);
    free (self->samples);
    al_metrics_table_free (&self->family_index);
    al_metrics_table_free (&self->series_index);
    free (self);
    *self_p = NULL;
}

