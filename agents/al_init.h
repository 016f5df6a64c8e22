/*  al_init.h: `airlock init`: create or complete a state directory.

    A state directory holds everything a broker and its agents need:

        DIR/airlock.yaml             configuration (base/al_config.h), absolute paths
        DIR/keys/                    mode 0700
            broker.cert(_secret)     the broker's CURVE certificate (czmq format)
            <role>.cert(_secret)     one per agent role (al_init_role_at), secret 0600
            checkpoint.key           the broker's Ed25519 secret key, 128 hex digits, 0600
            checkpoint.pub           its public key, 64 hex digits
        DIR/policy/                  a copy of the default policy directory, with
            identities.yaml          written once: each role's key -> identity (= role) -> role
        DIR/checkpoints/             signed checkpoints of the audit log

    Invariants: keys are never overwritten. Existing certificates and the checkpoint key
    are reused as they are (a half-present certificate is an error, never a reason to make
    a new one); identities.yaml is written when missing and never rewritten after (an
    operator's entries and comments stay byte for byte; a certificate init had to create
    is appended, one that existed unlisted is reported); policy files already in
    DIR/policy are kept; airlock.yaml is kept unless force_config.

    Not thread-safe with itself on the same directory (one `airlock init` at a time).
*/
#ifndef AL_INIT_H_INCLUDED
#define AL_INIT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include "base/al_config.h"

#ifdef __cplusplus
extern "C" {
#endif

//  The certificate roles init makes besides the broker: the five bus agents and
//  "auditor" (read-only CLI commands such as `airlock status`).
size_t al_init_role_count (void);
const char *al_init_role_at (size_t index);

typedef struct {
    const char *policy_source;  // directory to copy; NULL: al_init_default_policy_dir
    bool force_config;          // write airlock.yaml even if one exists
} al_init_options_t;

//  The default policy directory, in this order: $AIRLOCK_POLICY_DIR when set (even if it
//  does not exist, so that the error names it); else the installed copy beside the running
//  binary, <dir of /proc/self/exe>/../share/airlock/policies/default (the relative path
//  follows the build's GNUInstallDirs), when it is a directory; else the policies/default
//  of the source tree the library was built from (compiled in). Writes it into path (a
//  buffer of size bytes) and returns path.
const char *al_init_default_policy_dir (char *path, size_t size);

//  Called once per file or directory: action is "created", "kept", "rewritten", "appended" or
//  "warning" (then path is the message).
typedef void (al_init_note_fn) (void *arg, const char *action, const char *path);

//  Create or complete the state directory DIR (made if missing, parents too). note may be
//  NULL. Returns 0, or -1 with "path: what is wrong" in error; on error what was made so
//  far stays (a re-run completes it).
int al_init_state_dir (const char *dir, const al_init_options_t *options,
                       al_init_note_fn *note, void *note_arg, char *error, size_t error_size);

//  `airlock identity add NAME --role ROLE [--person PERSON]`: make the key pair
//  KEYS/NAME.cert(_secret) (secret 0600) and append {key, identity: NAME, role, person}
//  to the policy's identities.yaml, under a lock on the policy directory. Refuses a name
//  that is invalid or taken (in identities.yaml or by a key file), an unknown role, a
//  policy that does not load before or after; on failure nothing stays (the key files
//  made are removed, identities.yaml is put back). The broker learns the identity at its
//  next start or SIGHUP. Returns 0, or -1 with "path: what" in error.
int al_init_identity_add (const al_config_t *config, const char *name, const char *role, const char *person,
                          al_init_note_fn *note, void *note_arg, char *error, size_t error_size);

//  Check that a client (the MCP server, an AI agent) may connect as identity NAME: the
//  policy loads, identities.yaml lists NAME, its role is not a human one, and
//  KEYS/NAME.cert holds the listed key. Fills role. Returns 0, or -1 with error.
int al_init_client_identity (const al_config_t *config, const char *name, char *role, size_t role_size,
                             char *error, size_t error_size);

#ifdef __cplusplus
}
#endif

#endif
