/*  al_redact.h: removes secret values from text before it leaves a driver.

    A redactor holds (name, value) pairs. al_redact_text returns a copy of a text in
    which every occurrence of every value is replaced by "[REDACTED:NAME]". Where two
    values could match at the same place, the longer wins, so a secret that contains
    another is never half-redacted. Values shorter than AL_REDACT_MIN_VALUE are refused
    by al_redact_add: redacting "a" would destroy every text and protect nothing.

    The redactor keeps copies of the values and wipes them (explicit_bzero) when
    destroyed. Once filled, a redactor is read-only: any number of threads may redact
    with it at once; adding needs one owner.
*/
#ifndef AL_REDACT_H_INCLUDED
#define AL_REDACT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AL_REDACT_MIN_VALUE 4

typedef struct _al_redact_t al_redact_t;

//  An empty redactor, or NULL when out of memory.
al_redact_t *al_redact_new (void);

//  NULL-safe; wipes the values; sets *self_p to NULL.
void al_redact_destroy (al_redact_t **self_p);

//  Add a secret. name: [A-Za-z0-9_.-]{1,64}; value: at least AL_REDACT_MIN_VALUE bytes.
//  Returns 0, or -1 with "name: what is wrong" in error (never the value).
int al_redact_add (al_redact_t *self, const char *name, const char *value,
                   char *error, size_t error_size);

//  Number of secrets held.
size_t al_redact_size (const al_redact_t *self);

//  Longest value held, in bytes (0 if none).
size_t al_redact_longest (const al_redact_t *self);

//  A redacted copy of size bytes of text (which may hold NUL bytes), NUL-terminated;
//  its length (without the NUL) in *out_size if out_size is not NULL. Caller frees.
//  NULL when out of memory. self may be NULL (plain copy).
char *al_redact_text (const al_redact_t *self, const char *text, size_t size, size_t *out_size);

//  Redact a NUL-terminated string in place, truncating to buffer_size - 1 bytes if the
//  result grew. Used for error texts. Returns true if anything was replaced.
bool al_redact_buffer (const al_redact_t *self, char *buffer, size_t buffer_size);

//  Length of the longest suffix of text[0..size) that is a proper prefix of a held
//  value (0 if none). Output cut at a size bound must drop that suffix before being
//  redacted, or the head of a secret split by the cut would leak.
size_t al_redact_partial_suffix (const al_redact_t *self, const char *text, size_t size);

#ifdef __cplusplus
}
#endif

#endif
