/*  al_redact.c: replaces secret values in text by "[REDACTED:NAME]".

    Values are kept sorted by length, longest first, so the first value that matches
    at a position is the longest one there. Matching is a plain scan (texts are
    bounded captures and error lines; secrets are few): at each position, compare the
    first byte, then the value.

    Invariant: every held value is at least AL_REDACT_MIN_VALUE bytes long.
    Read-only after filling: concurrent redaction is safe.
*/
#include "deploy/al_redact.h"
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *name;
    char *value;
    size_t length;
} s_secret_t;

struct _al_redact_t {
    s_secret_t *secrets;            // longest value first
    size_t count;
};

al_redact_t *
al_redact_new (void)
{
    return calloc (1, sizeof (al_redact_t));
}

void
al_redact_destroy (al_redact_t **self_p)
{
    assert (self_p);
    al_redact_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->count; i++) {
        explicit_bzero (self->secrets [i].value, self->secrets [i].length);
        free (self->secrets [i].value);
        free (self->secrets [i].name);
    }
    free (self->secrets);
    free (self);
    *self_p = NULL;
}

static bool
s_valid_name (const char *name)
{
    size_t length = strlen (name);
    if (length == 0 || length > 64)
        return false;
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')
              || *c == '_' || *c == '.' || *c == '-'))
            return false;
    return true;
}

int
al_redact_add (al_redact_t *self, const char *name, const char *value,
               char *error, size_t error_size)
{
    assert (self);
    assert (name);
    assert (value);
    if (!s_valid_name (name)) {
        snprintf (error, error_size, "%s: a secret name is 1 to 64 of [A-Za-z0-9_.-]", name);
        return -1;
    }
    size_t length = strlen (value);
    if (length < AL_REDACT_MIN_VALUE) {
        snprintf (error, error_size, "%s: the secret's value is shorter than %d bytes, "
                  "too short to redact safely", name, AL_REDACT_MIN_VALUE);
        return -1;
    }
    s_secret_t *grown = realloc (self->secrets, (self->count + 1) * sizeof (s_secret_t));
    if (!grown) {
        snprintf (error, error_size, "%s: out of memory", name);
        return -1;
    }
    self->secrets = grown;
    s_secret_t secret = { strdup (name), strdup (value), length };
    if (!secret.name || !secret.value) {
        free (secret.name);
        if (secret.value)
            explicit_bzero (secret.value, length);
        free (secret.value);
        snprintf (error, error_size, "%s: out of memory", name);
        return -1;
    }
    //  Insert keeping longest first.
    size_t at = 0;
    while (at < self->count && self->secrets [at].length >= length)
        at++;
    memmove (self->secrets + at + 1, self->secrets + at, (self->count - at) * sizeof (s_secret_t));
    self->secrets [at] = secret;
    self->count++;
    return 0;
}

size_t
al_redact_size (const al_redact_t *self)
{
    return self ? self->count : 0;
}

size_t
al_redact_longest (const al_redact_t *self)
{
    return self && self->count ? self->secrets [0].length : 0;
}

//  The secret whose value starts at text[at], or NULL.
static const s_secret_t *
s_match (const al_redact_t *self, const char *text, size_t size, size_t at)
{
    for (size_t i = 0; i < self->count; i++) {
        const s_secret_t *secret = &self->secrets [i];
        if (secret->length <= size - at && text [at] == secret->value [0]
        &&  memcmp (text + at, secret->value, secret->length) == 0)
            return secret;
    }
    return NULL;
}

char *
al_redact_text (const al_redact_t *self, const char *text, size_t size, size_t *out_size)
{
    assert (text || size == 0);
    //  First pass: the length of the result.
    size_t length = 0;
    for (size_t at = 0; at < size; ) {
        const s_secret_t *secret = self ? s_match (self, text, size, at) : NULL;
        if (secret) {
            length += strlen ("[REDACTED:]") + strlen (secret->name);
            at += secret->length;
        }
        else {
            length++;
            at++;
        }
    }
    char *result = malloc (length + 1);
    if (!result)
        return NULL;
    char *out = result;
    for (size_t at = 0; at < size; ) {
        const s_secret_t *secret = self ? s_match (self, text, size, at) : NULL;
        if (secret) {
            out += sprintf (out, "[REDACTED:%s]", secret->name);
            at += secret->length;
        }
        else
            *out++ = text [at++];
    }
    *out = 0;
    assert ((size_t) (out - result) == length);
    if (out_size)
        *out_size = length;
    return result;
}

bool
al_redact_buffer (const al_redact_t *self, char *buffer, size_t buffer_size)
{
    if (!self || self->count == 0 || !buffer || buffer_size == 0)
        return false;
    size_t size = strnlen (buffer, buffer_size - 1);
    size_t redacted_size;
    char *redacted = al_redact_text (self, buffer, size, &redacted_size);
    if (!redacted) {
        //  Out of memory: losing the message is better than leaking a secret.
        snprintf (buffer, buffer_size, "[error text withheld: out of memory while redacting]");
        return true;
    }
    bool changed = redacted_size != size || memcmp (redacted, buffer, size) != 0;
    snprintf (buffer, buffer_size, "%s", redacted);
    free (redacted);
    return changed;
}

size_t
al_redact_partial_suffix (const al_redact_t *self, const char *text, size_t size)
{
    size_t longest = 0;
    for (size_t i = 0; self && i < self->count; i++) {
        const s_secret_t *secret = &self->secrets [i];
        //  Proper prefixes only: a whole value is redacted by the normal scan.
        for (size_t length = secret->length - 1; length > longest; length--)
            if (length <= size && memcmp (text + size - length, secret->value, length) == 0) {
                longest = length;
                break;
            }
    }
    return longest;
}
