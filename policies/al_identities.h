/*  al_identities.h: the one writer of identities.yaml besides a human's editor: append
    one identity entry, keeping every byte already in the file.

    identities.yaml is read by the policy loader (al_policy.c); operators edit it by hand
    (comments, extra instances, `person:` keys) and `airlock init` / `airlock identity
    add` append to it. Appending, never regenerating, is the invariant: what an operator
    wrote stays exactly as written. The new text is checked before it replaces the file:
    parsed again, it must hold the old entries unchanged plus the new one last; else the
    file is left alone and the error says to add the entry by hand (a flow-style list or
    text after the list cannot be appended to). The replacement is atomic (temporary
    file, fsync, rename, fsync of the directory) and keeps the file's mode.

    Callers serialise writers (al_init takes a lock on the policy directory).
*/
#ifndef AL_IDENTITIES_H_INCLUDED
#define AL_IDENTITIES_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

//  One entry: Z85 key (40 characters), identity name, role, and person (NULL: none).
typedef struct {
    const char *key;
    const char *identity;
    const char *role;
    const char *person;
} al_identity_entry_t;

//  True if identity is a valid identity name (1-63 of a-z, 0-9, '-', '_', not starting
//  with '-', and not the reserved "broker"), the loader's rule.
bool al_identities_valid_name (const char *identity);

//  Does identities.yaml at path list this key or this identity name? Fills *listed_key
//  and *listed_name (either may be NULL). Returns 0, or -1 with "path: what" in error
//  when the file cannot be read or parsed. A missing file lists nothing (returns 0).
int al_identities_lookup (const char *path, const char *key, const char *identity,
                          bool *listed_key, bool *listed_name, char *error, size_t error_size);

//  Append entry to identities.yaml at path (created with an `identities:` list if
//  missing). Refuses (-1, error) a key or identity already listed, an invalid name, a
//  file it cannot append to safely (see above), or an I/O failure. 0 on success.
int al_identities_append (const char *path, const al_identity_entry_t *entry, char *error, size_t error_size);

#ifdef __cplusplus
}
#endif

#endif
