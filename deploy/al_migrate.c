/*  al_migrate.c: applying a migration set (al_migrate_set.c loads it) to a SQLite
    database: the applied version, up and down (see al_migrate.h).

    Each step runs in its own BEGIN IMMEDIATE transaction together with its row in
    _airlock_migrations. While a script runs, an authorizer refuses statements that
    would break that invariant: transaction control (BEGIN, COMMIT, ROLLBACK), ATTACH
    and DETACH, and any change to _airlock_migrations itself. Savepoints stay allowed:
    they nest inside the step's transaction.

    Verified backups are al_migrate_backup.c.

    No global state: every call is independent and thread-safe (see al_migrate.h).
*/
#include "deploy/al_migrate.h"
#include "deploy/al_migrate_int.h"
#include "base/al_clock.h"
#include <assert.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

//  How long a migration or backup waits for another connection's lock.
#define S_BUSY_TIMEOUT_MS       10000
#define S_STATE_TABLE           "_airlock_migrations"

//  --------------------------------------------------------------------------
//  The state table and running steps

sqlite3 *
al_migrate_db_open (const char *path, int flags, char *error, size_t error_size)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2 (path, &db, flags, NULL);
    if (rc != SQLITE_OK) {
        snprintf (error, error_size, "%s: %s", path, db ? sqlite3_errmsg (db) : sqlite3_errstr (rc));
        sqlite3_close (db);
        return NULL;
    }
    sqlite3_extended_result_codes (db, 1);
    sqlite3_busy_timeout (db, S_BUSY_TIMEOUT_MS);
    return db;
}

bool
al_migrate_file_exists (const char *path)
{
    struct stat status;
    return stat (path, &status) == 0;
}

//  Reads the applied version and checks every recorded step against the set.
static int
s_applied_version (sqlite3 *db, const char *db_path, const al_migration_set_t *set,
                   unsigned *version, char *error, size_t error_size)
{
    int rc = -1;
    sqlite3_stmt *stmt = NULL;
    *version = 0;
    if (sqlite3_prepare_v2 (db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' "
                            "AND name = '" S_STATE_TABLE "'", -1, &stmt, NULL) != SQLITE_OK
    ||  sqlite3_step (stmt) != SQLITE_ROW) {
        snprintf (error, error_size, "%s: %s", db_path, sqlite3_errmsg (db));
        goto cleanup;
    }
    bool exists = sqlite3_column_int (stmt, 0) > 0;
    sqlite3_finalize (stmt);
    stmt = NULL;
    if (!exists) {
        rc = 0;
        goto cleanup;
    }
    if (sqlite3_prepare_v2 (db, "SELECT number, name, up_sha256 FROM " S_STATE_TABLE
                            " ORDER BY number", -1, &stmt, NULL) != SQLITE_OK) {
        snprintf (error, error_size, "%s: %s: %s", db_path, S_STATE_TABLE, sqlite3_errmsg (db));
        goto cleanup;
    }
    int step_rc;
    unsigned expected = 1;
    while ((step_rc = sqlite3_step (stmt)) == SQLITE_ROW) {
        sqlite3_int64 number = sqlite3_column_int64 (stmt, 0);
        const char *name = (const char *) sqlite3_column_text (stmt, 1);
        const char *sha = (const char *) sqlite3_column_text (stmt, 2);
        if (number != expected) {
            snprintf (error, error_size, "%s: %s records step %lld where step %03u was "
                      "expected (steps are applied in order)", db_path, S_STATE_TABLE,
                      (long long) number, expected);
            goto cleanup;
        }
        if (number > (sqlite3_int64) set->count) {
            snprintf (error, error_size, "%s: step %03lld_%s is applied but the migration "
                      "set ends at %03zu (was the database migrated by a newer release?)",
                      db_path, (long long) number, name ? name : "?", set->count);
            goto cleanup;
        }
        const al_migrate_step_t *step = &set->steps [number - 1];
        if (!name || strcmp (name, step->name) != 0) {
            snprintf (error, error_size, "%s: step %03lld was applied as '%s' but the "
                      "migration set names it '%s'", db_path, (long long) number,
                      name ? name : "", step->name);
            goto cleanup;
        }
        if (!sha || strcmp (sha, step->up_sha256) != 0) {
            snprintf (error, error_size, "%s: applied step %03lld_%s was edited after it was "
                      "applied (recorded up_sha256 %.12s..., %s has %.12s...)", db_path,
                      (long long) number, name, sha ? sha : "", step->up_path, step->up_sha256);
            goto cleanup;
        }
        expected++;
    }
    if (step_rc != SQLITE_DONE) {
        snprintf (error, error_size, "%s: %s: %s", db_path, S_STATE_TABLE, sqlite3_errmsg (db));
        goto cleanup;
    }
    *version = expected - 1;
    rc = 0;
cleanup:
    sqlite3_finalize (stmt);
    return rc;
}

//  What the authorizer refused while a script ran, for the error message.
typedef struct {
    const char *refused;
} s_guard_t;

static int
s_authorize (void *arg, int action, const char *arg1, const char *arg2,
             const char *database, const char *trigger)
{
    (void) database;
    (void) trigger;
    s_guard_t *guard = arg;
    const char *table = NULL;
    switch (action) {
        case SQLITE_TRANSACTION:
            guard->refused = "a migration script may not BEGIN, COMMIT or ROLLBACK: "
                             "airlock runs each step in its own transaction";
            return SQLITE_DENY;
        case SQLITE_ATTACH:
        case SQLITE_DETACH:
            guard->refused = "a migration script may not ATTACH or DETACH databases";
            return SQLITE_DENY;
        case SQLITE_INSERT:
        case SQLITE_UPDATE:
        case SQLITE_DELETE:
        case SQLITE_DROP_TABLE:
            table = arg1;
            break;
        case SQLITE_ALTER_TABLE:
        case SQLITE_CREATE_INDEX:
        case SQLITE_CREATE_TRIGGER:
        case SQLITE_DROP_INDEX:
        case SQLITE_DROP_TRIGGER:
            table = arg2;
            break;
        default:
            break;
    }
    if (table && strcasecmp (table, S_STATE_TABLE) == 0) {
        guard->refused = "a migration script may not change " S_STATE_TABLE;
        return SQLITE_DENY;
    }
    return SQLITE_OK;
}

static const char *
s_skip_space_and_comments (const char *sql)
{
    while (*sql) {
        if (isspace ((unsigned char) *sql))
            sql++;
        else
        if (sql [0] == '-' && sql [1] == '-') {
            while (*sql && *sql != '\n')
                sql++;
        }
        else
        if (sql [0] == '/' && sql [1] == '*') {
            const char *end = strstr (sql + 2, "*/");
            sql = end ? end + 2 : sql + strlen (sql);
        }
        else
            break;
    }
    return sql;
}

//  Runs a script statement by statement so that an error names its line.
static int
s_run_script (sqlite3 *db, const char *path, const char *script, char *error, size_t error_size)
{
    s_guard_t guard = { NULL };
    sqlite3_set_authorizer (db, s_authorize, &guard);
    int rc = -1;
    sqlite3_stmt *stmt = NULL;
    const char *sql = script;
    while (*sql) {
        const char *start = s_skip_space_and_comments (sql);
        const char *tail = NULL;
        if (sqlite3_prepare_v2 (db, sql, -1, &stmt, &tail) != SQLITE_OK) {
            int offset = sqlite3_error_offset (db);
            const char *at = offset >= 0 ? sql + offset : start;
            snprintf (error, error_size, "%s:%u: %s", path, al_migrate_line_of (script, at),
                      guard.refused ? guard.refused : sqlite3_errmsg (db));
            goto cleanup;
        }
        if (stmt) {
            int step_rc;
            while ((step_rc = sqlite3_step (stmt)) == SQLITE_ROW)
                ;
            if (step_rc != SQLITE_DONE) {
                snprintf (error, error_size, "%s:%u: %s", path, al_migrate_line_of (script, start),
                          guard.refused ? guard.refused : sqlite3_errmsg (db));
                goto cleanup;
            }
            sqlite3_finalize (stmt);
            stmt = NULL;
        }
        assert (tail);
        sql = tail;
    }
    rc = 0;
cleanup:
    sqlite3_finalize (stmt);
    sqlite3_set_authorizer (db, NULL, NULL);
    return rc;
}

//  Applies (up) or reverts (down) one step in its own transaction. The database must be
//  at version number - 1 (up) or number (down) when the transaction starts.
static int
s_run_step (sqlite3 *db, const char *db_path, const al_migration_set_t *set,
            unsigned number, bool up, char *error, size_t error_size)
{
    int rc = -1;
    sqlite3_stmt *stmt = NULL;
    const al_migrate_step_t *step = &set->steps [number - 1];
    char *message = NULL;
    if (sqlite3_exec (db, "BEGIN IMMEDIATE", NULL, NULL, &message) != SQLITE_OK
    ||  sqlite3_exec (db, "CREATE TABLE IF NOT EXISTS " S_STATE_TABLE " ("
                          " number INTEGER PRIMARY KEY CHECK (number >= 1),"
                          " name TEXT NOT NULL,"
                          " up_sha256 TEXT NOT NULL,"
                          " applied_at_ms INTEGER NOT NULL)", NULL, NULL, &message) != SQLITE_OK) {
        snprintf (error, error_size, "%s: %s", db_path, message ? message : sqlite3_errmsg (db));
        goto cleanup;
    }
    //  Checked again inside the transaction: another migrator may have run since.
    unsigned version;
    if (s_applied_version (db, db_path, set, &version, error, error_size))
        goto cleanup;
    if (version != (up ? number - 1 : number)) {
        snprintf (error, error_size, "%s: the database moved to version %03u while "
                  "migrating (another migration running?)", db_path, version);
        goto cleanup;
    }
    const char *path = up ? step->up_path : step->down_path;
    assert (path);
    if (s_run_script (db, path, up ? step->up_sql : step->down_sql, error, error_size))
        goto cleanup;
    if (sqlite3_get_autocommit (db)) {
        snprintf (error, error_size, "%s: the script ended the step's transaction", path);
        goto cleanup;
    }
    const char *record = up
        ? "INSERT INTO " S_STATE_TABLE " (number, name, up_sha256, applied_at_ms) VALUES (?1, ?2, ?3, ?4)"
        : "DELETE FROM " S_STATE_TABLE " WHERE number = ?1";
    if (sqlite3_prepare_v2 (db, record, -1, &stmt, NULL) != SQLITE_OK) {
        snprintf (error, error_size, "%s: %s", db_path, sqlite3_errmsg (db));
        goto cleanup;
    }
    sqlite3_bind_int (stmt, 1, (int) number);
    if (up) {
        sqlite3_bind_text (stmt, 2, step->name, -1, SQLITE_STATIC);
        sqlite3_bind_text (stmt, 3, step->up_sha256, -1, SQLITE_STATIC);
        sqlite3_bind_int64 (stmt, 4, al_clock_wall_ms ());
    }
    if (sqlite3_step (stmt) != SQLITE_DONE || sqlite3_changes (db) != 1) {
        snprintf (error, error_size, "%s: recording step %03u_%s: %s", db_path, number,
                  step->name, sqlite3_errmsg (db));
        goto cleanup;
    }
    sqlite3_finalize (stmt);
    stmt = NULL;
    if (sqlite3_exec (db, "COMMIT", NULL, NULL, &message) != SQLITE_OK) {
        snprintf (error, error_size, "%s: committing step %03u_%s: %s", db_path, number,
                  step->name, message ? message : sqlite3_errmsg (db));
        goto cleanup;
    }
    rc = 0;
cleanup:
    sqlite3_finalize (stmt);
    sqlite3_free (message);
    if (rc && !sqlite3_get_autocommit (db))
        sqlite3_exec (db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

int
al_migrate_version (const char *db_path, const al_migration_set_t *set,
                    unsigned *version, char *error, size_t error_size)
{
    assert (db_path && set && version);
    *version = 0;
    if (!al_migrate_file_exists (db_path))
        return 0;
    sqlite3 *db = al_migrate_db_open (db_path, SQLITE_OPEN_READWRITE, error, error_size);
    if (!db)
        return -1;
    int rc = s_applied_version (db, db_path, set, version, error, error_size);
    sqlite3_close (db);
    return rc;
}

int
al_migrate_up (const char *db_path, const al_migration_set_t *set, unsigned target,
               al_migrate_report_t *report, char *error, size_t error_size)
{
    assert (db_path && set);
    al_migrate_report_t scratch;
    if (!report)
        report = &scratch;
    memset (report, 0, sizeof *report);
    int rc = -1;
    sqlite3 *db = NULL;
    if (target == AL_MIGRATE_LATEST)
        target = (unsigned) set->count;
    if (target > set->count) {
        snprintf (error, error_size, "%s: target %03u is beyond the last step of the "
                  "migration set (%03zu)", db_path, target, set->count);
        goto cleanup;
    }
    db = al_migrate_db_open (db_path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, error, error_size);
    if (!db)
        goto cleanup;
    unsigned version;
    if (s_applied_version (db, db_path, set, &version, error, error_size))
        goto cleanup;
    report->from_version = report->to_version = version;
    if (version > target) {
        snprintf (error, error_size, "%s: the database is at step %03u, above target %03u "
                  "(migrate down instead)", db_path, version, target);
        goto cleanup;
    }
    for (unsigned number = version + 1; number <= target; number++) {
        if (s_run_step (db, db_path, set, number, true, error, error_size)) {
            report->failed_step = number;
            goto cleanup;
        }
        report->to_version = number;
        report->steps_run++;
    }
    rc = 0;
cleanup:
    if (db)
        sqlite3_close (db);
    if (rc == 0 && error_size)
        error [0] = 0;
    return rc;
}

int
al_migrate_down (const char *db_path, const al_migration_set_t *set, unsigned target,
                 al_migrate_report_t *report, char *error, size_t error_size)
{
    assert (db_path && set);
    al_migrate_report_t scratch;
    if (!report)
        report = &scratch;
    memset (report, 0, sizeof *report);
    int rc = -1;
    sqlite3 *db = NULL;
    unsigned version = 0;
    if (al_migrate_file_exists (db_path)) {
        db = al_migrate_db_open (db_path, SQLITE_OPEN_READWRITE, error, error_size);
        if (!db || s_applied_version (db, db_path, set, &version, error, error_size))
            goto cleanup;
    }
    report->from_version = report->to_version = version;
    if (target > version) {
        snprintf (error, error_size, "%s: the database is at step %03u, below target %03u "
                  "(migrate up instead)", db_path, version, target);
        goto cleanup;
    }
    //  Refuse before changing anything: stopping half-way would leave the database at a
    //  version no release may expect.
    size_t used = 0;
    for (unsigned number = version; number > target; number--) {
        const al_migrate_step_t *step = &set->steps [number - 1];
        if (step->down_sql)
            continue;
        if (used < error_size) {
            int wrote = snprintf (error + used, error_size - used, "%s%03u_%s",
                                  used ? ", " : "", number, step->name);
            if (wrote > 0)
                used += (size_t) wrote;
        }
    }
    if (used) {
        if (used < error_size)
            snprintf (error + used, error_size - used, ": no down script (forward-only); "
                      "restore the backup taken before the migration instead");
        goto cleanup;
    }
    for (unsigned number = version; number > target; number--) {
        if (s_run_step (db, db_path, set, number, false, error, error_size)) {
            report->failed_step = number;
            goto cleanup;
        }
        report->to_version = number - 1;
        report->steps_run++;
    }
    rc = 0;
cleanup:
    if (db)
        sqlite3_close (db);
    if (rc == 0 && error_size)
        error [0] = 0;
    return rc;
}

