/*  al_migrate_int.h: what the migration files share (al_migrate_set.c loads and
    hashes a set, al_migrate.c applies it to a database, al_migrate_backup.c makes and
    restores verified backups). Internal to deploy/, never installed.
*/
#ifndef AL_MIGRATE_INT_H_INCLUDED
#define AL_MIGRATE_INT_H_INCLUDED

#include "deploy/al_migrate.h"
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>

//  One step as loaded (al_migration_step_t info is the part callers see).
typedef struct {
    al_migration_step_t info;       // what callers see; strings point into this struct
    char name [AL_MIGRATION_MAX_NAME_LENGTH + 1];
    char up_sha256 [AL_SHA256_HEX_SIZE];
    char down_sha256 [AL_SHA256_HEX_SIZE];
    char *up_path;                  // for messages: dir/NNN_name.up.sql
    char *down_path;                // NULL when there is no down script
    char *up_sql;
    char *down_sql;
} al_migrate_step_t;

struct _al_migration_set_t {
    char *dir;
    al_migrate_step_t *steps;       // steps [i] is step number i + 1
    size_t count;
    char *canonical;
    char digest [AL_SHA256_HEX_SIZE];
};

//  The 1-based line of at in text (for "path:line: what").
unsigned al_migrate_line_of (const char *text, const char *at);

//  SHA-256 of a file's contents, streamed, as lowercase hex. Returns 0 or -1 with
//  "path: reason".
int al_migrate_sha256_file (const char *path, char hex [AL_SHA256_HEX_SIZE],
                            char *error, size_t error_size);

//  Open a database with extended result codes and the busy timeout. Returns NULL with
//  "path: reason".
sqlite3 *al_migrate_db_open (const char *path, int flags, char *error, size_t error_size);

//  Does path exist?
bool al_migrate_file_exists (const char *path);

#endif
