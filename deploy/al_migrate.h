/*  al_migrate.h: SQL migration sets and SQLite backups for the embedded default.

    A migration set is a directory of NNN_name.up.sql scripts (one per step, numbered
    contiguously from 001), optional NNN_name.down.sql scripts, and an optional
    forward-only mark (the first line of an up script is exactly
    "-- airlock: forward-only"). al_migration_set_load reads and checks the whole set
    once; the loaded set is immutable and holds the scripts it was loaded with, so what
    runs is what was hashed. Its digest (SHA-256 over a canonical serialization,
    docs/migrations.md) is part of a deploy request and of what approvers sign.

    al_migrate_up / al_migrate_down apply a loaded set to a service's SQLite database.
    The applied steps are recorded in the table _airlock_migrations inside that
    database, in the same transaction as the step; PRAGMA user_version is never
    trusted. Before anything runs, the recorded steps are compared with the set: an
    applied step whose up script changed since, or a step the set does not contain,
    refuses the whole call.

    al_backup_create / al_backup_restore copy a database with SQLite's online backup
    API and verify the copy (integrity_check, page count, SHA-256) before trusting it.

    Threading: a loaded set is read-only and may be shared by threads. Every other
    call opens its own connections and may run from any thread; two migrations of the
    same database at once serialise on SQLite's write lock (BEGIN IMMEDIATE).
*/
#ifndef AL_MIGRATE_H_INCLUDED
#define AL_MIGRATE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

//  Bounds on a migration set; a set above any of them is refused at load.
#define AL_MIGRATION_MAX_STEPS          999     // NNN has three digits
#define AL_MIGRATION_MAX_NAME_LENGTH    64      // the name part of NNN_name
#define AL_MIGRATION_MAX_SCRIPT_SIZE    (4u * 1024 * 1024)
#define AL_MIGRATION_MAX_SET_SIZE       (64u * 1024 * 1024)

//  The forward-only mark: the exact first line of an up script.
#define AL_MIGRATION_FORWARD_ONLY_MARK  "-- airlock: forward-only"

//  A SHA-256 as 64 lowercase hex digits and a terminating NUL.
#define AL_SHA256_HEX_SIZE              65

//  al_migrate_up's target meaning "every step of the set".
#define AL_MIGRATE_LATEST               ((unsigned) -1)

typedef struct _al_migration_set_t al_migration_set_t;

//  One step of a loaded set; strings are borrowed from the set.
typedef struct {
    unsigned number;            // 1-based; equals index + 1 (numbering is contiguous)
    const char *name;           // the name part of NNN_name
    const char *up_sha256;      // 64 lowercase hex of the up script's bytes
    const char *down_sha256;    // same for the down script, or NULL when there is none
    bool forward_only;          // the up script starts with the forward-only mark
} al_migration_step_t;

//  What al_migrate_up / al_migrate_down did, filled even when they fail.
typedef struct {
    unsigned from_version;      // highest applied step before the call (0: none)
    unsigned to_version;        // highest applied step after the call
    unsigned steps_run;         // steps applied (up) or reverted (down)
    unsigned failed_step;       // the step that failed, or 0
} al_migrate_report_t;

//  Loads and checks the migration set in directory dir. Returns NULL on any error with
//  "path: what is wrong" in error (the offending file's path when there is one).
al_migration_set_t *
    al_migration_set_load (const char *dir, char *error, size_t error_size);

void
    al_migration_set_destroy (al_migration_set_t **self_p);

//  The set's digest: 64 lowercase hex digits, borrowed.
const char *
    al_migration_set_digest (const al_migration_set_t *self);

//  The exact bytes the digest is computed over (docs/migrations.md), borrowed.
const char *
    al_migration_set_canonical (const al_migration_set_t *self);

//  Number of steps (the highest step number).
size_t
    al_migration_set_count (const al_migration_set_t *self);

//  The step at index (0-based), borrowed; NULL when index >= count.
const al_migration_step_t *
    al_migration_set_step (const al_migration_set_t *self, size_t index);

//  Is every step reversible, i.e. does it have a down script or the forward-only mark?
//  Lists each step that has neither in error ("" when there is none). Returns -1 when
//  such a step exists and production is true (the set is refused), else 0.
int
    al_migration_set_check_reversible (const al_migration_set_t *self, bool production,
                                       char *error, size_t error_size);

//  Reads the database's applied version from _airlock_migrations and checks every
//  recorded step against the set. A missing database or table is version 0.
int
    al_migrate_version (const char *db_path, const al_migration_set_t *set,
                        unsigned *version, char *error, size_t error_size);

//  Applies every pending step up to target (AL_MIGRATE_LATEST: the whole set), each in
//  its own transaction; stops at the first failure, leaving the database at the last
//  step that committed. Creates the database when it does not exist. A database above
//  target is refused (use al_migrate_down). report may be NULL. Returns 0 or -1.
int
    al_migrate_up (const char *db_path, const al_migration_set_t *set, unsigned target,
                   al_migrate_report_t *report, char *error, size_t error_size);

//  Reverts applied steps above target, newest first, each in its own transaction with
//  its down script. Refused without changing anything when one of those steps has no
//  down script (the error says to restore a backup instead). report may be NULL.
int
    al_migrate_down (const char *db_path, const al_migration_set_t *set, unsigned target,
                     al_migrate_report_t *report, char *error, size_t error_size);

//  Copies the database at db_path to backup_path with the online backup API (through
//  a temporary file renamed into place), after verifying the copy: it opens read-only,
//  PRAGMA integrity_check says "ok" and its page count equals the source's. Writes the
//  backup file's SHA-256 to sha256 (may be NULL). Returns 0 or -1.
int
    al_backup_create (const char *db_path, const char *backup_path,
                      char sha256 [AL_SHA256_HEX_SIZE], char *error, size_t error_size);

//  Verifies a backup file: opens read-only, integrity_check "ok", page count times page
//  size equals the file size, and, when expected_sha256 is not NULL, the file's SHA-256
//  equals it. Writes the file's SHA-256 to sha256 (may be NULL). Returns 0 or -1.
int
    al_backup_verify (const char *backup_path, const char *expected_sha256,
                      char sha256 [AL_SHA256_HEX_SIZE], char *error, size_t error_size);

//  Verifies the backup (as al_backup_verify) then copies it over the live database at
//  db_path with the online backup API, and checks the result (integrity_check "ok",
//  same page count as the backup). Returns 0 or -1.
int
    al_backup_restore (const char *backup_path, const char *expected_sha256,
                       const char *db_path, char *error, size_t error_size);

#ifdef __cplusplus
}
#endif

#endif
