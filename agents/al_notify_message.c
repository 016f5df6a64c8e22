/*  al_notify_message.c: one notification before formatting (see al_notify_message.h).

    Every string held is valid UTF-8 (cleaned on the way in), so the formats can hand
    them to jansson, which refuses anything else. The text grows by appending; fields
    are a growing array of owned pairs.
*/
#include "agents/al_notify_message.h"
#include <assert.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *key;
    char *value;
} s_field_t;

struct _al_notify_message_t {
    char *template_name;
    char *source_key;
    char *subject;
    char *text;
    size_t text_size;
    s_field_t *fields;
    size_t field_count;
    size_t field_capacity;
    char *event_type;
    uint64_t audit_sequence;
    char *deployment_id;
    int environment;
    char *service;
    uint64_t time_ms;
};

//  Length of the valid UTF-8 sequence at text (1..4), or 0 if it is not one.
static size_t
s_utf8_sequence (const unsigned char *text)
{
    unsigned char c = text [0];
    if (c < 0x80)
        return 1;
    size_t length;
    uint32_t code;
    if (c >= 0xc2 && c <= 0xdf) {
        length = 2;
        code = c & 0x1f;
    }
    else
    if (c >= 0xe0 && c <= 0xef) {
        length = 3;
        code = c & 0x0f;
    }
    else
    if (c >= 0xf0 && c <= 0xf4) {
        length = 4;
        code = c & 0x07;
    }
    else
        return 0;
    for (size_t i = 1; i < length; i++) {
        if ((text [i] & 0xc0) != 0x80)
            return 0;
        code = (code << 6) | (text [i] & 0x3f);
    }
    //  Overlong forms, surrogates and values above U+10FFFF are not UTF-8.
    if ((length == 3 && code < 0x800) || (length == 4 && (code < 0x10000 || code > 0x10ffff))
    ||  (code >= 0xd800 && code <= 0xdfff))
        return 0;
    return length;
}

char *
al_notify_utf8_clean (const char *text)
{
    if (!text)
        text = "";
    size_t length = strlen (text);
    //  Each bad byte becomes 3 bytes at most.
    char *clean = malloc (length * 3 + 1);
    assert (clean);
    const unsigned char *in = (const unsigned char *) text;
    size_t out = 0;
    while (*in) {
        size_t size = s_utf8_sequence (in);
        if (size == 0) {
            memcpy (clean + out, "\xef\xbf\xbd", 3);
            out += 3;
            in++;
            continue;
        }
        memcpy (clean + out, in, size);
        out += size;
        in += size;
    }
    clean [out] = '\0';
    return clean;
}

al_notify_message_t *
al_notify_message_new (const char *template_name, const char *source_key)
{
    if (!template_name || !*template_name || !source_key || !*source_key
    ||  strlen (source_key) > AL_NOTIFY_SOURCE_KEY_MAX || strlen (template_name) > 128)
        return NULL;
    al_notify_message_t *self = calloc (1, sizeof *self);
    assert (self);
    self->template_name = al_notify_utf8_clean (template_name);
    self->source_key = al_notify_utf8_clean (source_key);
    self->subject = strdup ("");
    self->text = strdup ("");
    self->event_type = strdup ("");
    self->deployment_id = strdup ("");
    self->service = strdup ("");
    assert (self->subject && self->text && self->event_type && self->deployment_id && self->service);
    return self;
}

void
al_notify_message_destroy (al_notify_message_t **self_p)
{
    assert (self_p);
    al_notify_message_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->field_count; i++) {
        free (self->fields [i].key);
        free (self->fields [i].value);
    }
    free (self->fields);
    free (self->template_name);
    free (self->source_key);
    free (self->subject);
    free (self->text);
    free (self->event_type);
    free (self->deployment_id);
    free (self->service);
    free (self);
    *self_p = NULL;
}

static char *
s_vformat (const char *format, va_list args)
{
    char *raw = NULL;
    if (vasprintf (&raw, format, args) < 0)
        raw = NULL;
    assert (raw);
    char *clean = al_notify_utf8_clean (raw);
    free (raw);
    return clean;
}

void
al_notify_message_set_subject (al_notify_message_t *self, const char *format, ...)
{
    assert (self && format);
    va_list args;
    va_start (args, format);
    char *subject = s_vformat (format, args);
    va_end (args);
    free (self->subject);
    self->subject = subject;
}

void
al_notify_message_append (al_notify_message_t *self, const char *format, ...)
{
    assert (self && format);
    va_list args;
    va_start (args, format);
    char *more = s_vformat (format, args);
    va_end (args);
    size_t length = strlen (more);
    char *text = realloc (self->text, self->text_size + length + 1);
    assert (text);
    memcpy (text + self->text_size, more, length + 1);
    self->text = text;
    self->text_size += length;
    free (more);
}

void
al_notify_message_add_field (al_notify_message_t *self, const char *key, const char *value)
{
    assert (self && key && *key);
    if (!value || !*value)
        return;
    if (self->field_count == self->field_capacity) {
        size_t capacity = self->field_capacity? self->field_capacity * 2: 8;
        s_field_t *fields = realloc (self->fields, capacity * sizeof *fields);
        assert (fields);
        self->fields = fields;
        self->field_capacity = capacity;
    }
    self->fields [self->field_count].key = al_notify_utf8_clean (key);
    self->fields [self->field_count].value = al_notify_utf8_clean (value);
    self->field_count++;
}

void
al_notify_message_set_origin (al_notify_message_t *self, const char *event_type, uint64_t audit_sequence,
                              const char *deployment_id, int environment, const char *service, uint64_t time_ms)
{
    assert (self);
    free (self->event_type);
    free (self->deployment_id);
    free (self->service);
    self->event_type = al_notify_utf8_clean (event_type);
    self->deployment_id = al_notify_utf8_clean (deployment_id);
    self->service = al_notify_utf8_clean (service);
    self->audit_sequence = audit_sequence;
    self->environment = environment;
    self->time_ms = time_ms;
}

const char *
al_notify_message_template (const al_notify_message_t *self)
{
    assert (self);
    return self->template_name;
}

const char *
al_notify_message_source_key (const al_notify_message_t *self)
{
    assert (self);
    return self->source_key;
}

const char *
al_notify_message_subject (const al_notify_message_t *self)
{
    assert (self);
    return self->subject;
}

const char *
al_notify_message_text (const al_notify_message_t *self)
{
    assert (self);
    return self->text;
}

size_t
al_notify_message_field_count (const al_notify_message_t *self)
{
    assert (self);
    return self->field_count;
}

const char *
al_notify_message_field_key (const al_notify_message_t *self, size_t index)
{
    assert (self && index < self->field_count);
    return self->fields [index].key;
}

const char *
al_notify_message_field_value (const al_notify_message_t *self, size_t index)
{
    assert (self && index < self->field_count);
    return self->fields [index].value;
}

const char *
al_notify_message_field (const al_notify_message_t *self, const char *key)
{
    assert (self && key);
    for (size_t i = 0; i < self->field_count; i++)
        if (strcmp (self->fields [i].key, key) == 0)
            return self->fields [i].value;
    return NULL;
}

const char *
al_notify_message_event_type (const al_notify_message_t *self)
{
    assert (self);
    return self->event_type;
}

uint64_t
al_notify_message_audit_sequence (const al_notify_message_t *self)
{
    assert (self);
    return self->audit_sequence;
}

const char *
al_notify_message_deployment_id (const al_notify_message_t *self)
{
    assert (self);
    return self->deployment_id;
}

int
al_notify_message_environment (const al_notify_message_t *self)
{
    assert (self);
    return self->environment;
}

const char *
al_notify_message_service (const al_notify_message_t *self)
{
    assert (self);
    return self->service;
}

uint64_t
al_notify_message_time_ms (const al_notify_message_t *self)
{
    assert (self);
    return self->time_ms;
}
