/*  al_migrate_backup.c: verified backups of a SQLite database with SQLite's online
    backup API, their verification and restore (see al_migrate.h).

    Backups are written to a temporary file next to the target, normalised to a single
    file (journal_mode=DELETE, so no -wal holds part of it), verified, fsynced and only
    then renamed into place. A backup's SHA-256 is the evidence recorded by the caller;
    integrity_check catches structural damage, the SHA-256 catches the rest.

    No global state: every call is independent and thread-safe (see al_migrate.h).
*/
#include "deploy/al_migrate.h"
#include "deploy/al_migrate_int.h"
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


//  The online backup copies this many pages per step, and retries a busy source
//  up to S_BACKUP_MAX_RETRIES times S_BACKUP_RETRY_MS.
#define S_BACKUP_PAGES_PER_STEP 1024
#define S_BACKUP_MAX_RETRIES    500
#define S_BACKUP_RETRY_MS       20

//  --------------------------------------------------------------------------
//  Backups

//  Copies src's main database into dest's with the online backup API. The API restarts
//  by itself when another connection writes to the source meanwhile; a busy source is
//  retried for a bounded time.
static int
s_backup_copy (sqlite3 *dest, sqlite3 *src, const char *what, int *pages,
               char *error, size_t error_size)
{
    sqlite3_backup *backup = sqlite3_backup_init (dest, "main", src, "main");
    if (!backup) {
        snprintf (error, error_size, "%s: %s", what, sqlite3_errmsg (dest));
        return -1;
    }
    int rc;
    int retries = 0;
    do {
        rc = sqlite3_backup_step (backup, S_BACKUP_PAGES_PER_STEP);
        if ((rc == SQLITE_BUSY || rc == SQLITE_LOCKED) && retries++ < S_BACKUP_MAX_RETRIES) {
            sqlite3_sleep (S_BACKUP_RETRY_MS);
            rc = SQLITE_OK;
        }
    } while (rc == SQLITE_OK);
    *pages = sqlite3_backup_pagecount (backup);
    int finish_rc = sqlite3_backup_finish (backup);
    if (rc != SQLITE_DONE || finish_rc != SQLITE_OK) {
        snprintf (error, error_size, "%s: %s", what,
                  rc != SQLITE_DONE ? sqlite3_errstr (rc) : sqlite3_errmsg (dest));
        return -1;
    }
    return 0;
}

static int
s_pragma_int (sqlite3 *db, const char *pragma, sqlite3_int64 *value)
{
    sqlite3_stmt *stmt = NULL;
    int rc = -1;
    if (sqlite3_prepare_v2 (db, pragma, -1, &stmt, NULL) == SQLITE_OK
    &&  sqlite3_step (stmt) == SQLITE_ROW) {
        *value = sqlite3_column_int64 (stmt, 0);
        rc = 0;
    }
    sqlite3_finalize (stmt);
    return rc;
}

//  PRAGMA integrity_check must return exactly one row, "ok".
static int
s_integrity_ok (sqlite3 *db, const char *path, char *error, size_t error_size)
{
    sqlite3_stmt *stmt = NULL;
    int rc = -1;
    if (sqlite3_prepare_v2 (db, "PRAGMA integrity_check", -1, &stmt, NULL) != SQLITE_OK) {
        snprintf (error, error_size, "%s: integrity_check: %s", path, sqlite3_errmsg (db));
        goto cleanup;
    }
    int step_rc = sqlite3_step (stmt);
    if (step_rc != SQLITE_ROW) {
        snprintf (error, error_size, "%s: integrity_check: %s", path, sqlite3_errmsg (db));
        goto cleanup;
    }
    const char *first = (const char *) sqlite3_column_text (stmt, 0);
    if (!first || strcmp (first, "ok") != 0) {
        snprintf (error, error_size, "%s: integrity_check: %s", path, first ? first : "(null)");
        goto cleanup;
    }
    if (sqlite3_step (stmt) != SQLITE_DONE) {
        snprintf (error, error_size, "%s: integrity_check returned more than \"ok\"", path);
        goto cleanup;
    }
    rc = 0;
cleanup:
    sqlite3_finalize (stmt);
    return rc;
}

//  Opens a backup file read-only and checks it; expected_pages 0 means "any".
static int
s_verify_backup_file (const char *path, int expected_pages, const char *expected_sha256,
                      int *pages, char sha256 [AL_SHA256_HEX_SIZE], char *error, size_t error_size)
{
    int rc = -1;
    sqlite3 *db = NULL;
    char hex [AL_SHA256_HEX_SIZE];
    struct stat status;
    if (stat (path, &status) != 0) {
        snprintf (error, error_size, "%s: %s", path, strerror (errno));
        goto cleanup;
    }
    if (!S_ISREG (status.st_mode)) {
        snprintf (error, error_size, "%s: not a regular file", path);
        goto cleanup;
    }
    //  Hash first: the bytes that are verified are the bytes whose hash is reported.
    if (al_migrate_sha256_file (path, hex, error, error_size))
        goto cleanup;
    if (expected_sha256 && strcmp (expected_sha256, hex) != 0) {
        snprintf (error, error_size, "%s: SHA-256 %.12s... differs from the recorded %.12s...",
                  path, hex, expected_sha256);
        goto cleanup;
    }
    db = al_migrate_db_open (path, SQLITE_OPEN_READONLY, error, error_size);
    if (!db)
        goto cleanup;
    if (s_integrity_ok (db, path, error, error_size))
        goto cleanup;
    sqlite3_int64 page_count, page_size;
    if (s_pragma_int (db, "PRAGMA page_count", &page_count)
    ||  s_pragma_int (db, "PRAGMA page_size", &page_size)) {
        snprintf (error, error_size, "%s: %s", path, sqlite3_errmsg (db));
        goto cleanup;
    }
    if (page_count * page_size != (sqlite3_int64) status.st_size) {
        snprintf (error, error_size, "%s: %lld pages of %lld bytes but the file has %lld bytes",
                  path, (long long) page_count, (long long) page_size,
                  (long long) status.st_size);
        goto cleanup;
    }
    if (expected_pages && page_count != expected_pages) {
        snprintf (error, error_size, "%s: %lld pages where the source has %d", path,
                  (long long) page_count, expected_pages);
        goto cleanup;
    }
    if (pages)
        *pages = (int) page_count;
    if (sha256)
        memcpy (sha256, hex, AL_SHA256_HEX_SIZE);
    rc = 0;
cleanup:
    if (db)
        sqlite3_close (db);
    return rc;
}

static int
s_fsync_path (const char *path, bool directory)
{
    int fd = open (path, (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync (fd);
    close (fd);
    return rc;
}

//  The directory of path, for fsync after rename ("." when path has no '/').
static char *
s_parent_dir (const char *path)
{
    const char *slash = strrchr (path, '/');
    if (!slash)
        return strdup (".");
    if (slash == path)
        return strdup ("/");
    return strndup (path, (size_t) (slash - path));
}

int
al_backup_create (const char *db_path, const char *backup_path,
                  char sha256 [AL_SHA256_HEX_SIZE], char *error, size_t error_size)
{
    assert (db_path && backup_path);
    int rc = -1;
    sqlite3 *src = NULL;
    sqlite3 *dest = NULL;
    char *temp = NULL;
    char *journal = NULL;
    char *parent = NULL;
    bool temp_exists = false;
    if (!al_migrate_file_exists (db_path)) {
        snprintf (error, error_size, "%s: no such database", db_path);
        goto cleanup;
    }
    if (asprintf (&temp, "%s.tmp-XXXXXX", backup_path) < 0) {
        temp = NULL;
        snprintf (error, error_size, "%s: out of memory", backup_path);
        goto cleanup;
    }
    int fd = mkstemp (temp);
    if (fd < 0) {
        snprintf (error, error_size, "%s: %s", temp, strerror (errno));
        goto cleanup;
    }
    close (fd);
    temp_exists = true;
    if (asprintf (&journal, "%s-journal", temp) < 0) {
        journal = NULL;
        snprintf (error, error_size, "%s: out of memory", backup_path);
        goto cleanup;
    }
    src = al_migrate_db_open (db_path, SQLITE_OPEN_READWRITE, error, error_size);
    if (!src)
        goto cleanup;
    dest = al_migrate_db_open (temp, SQLITE_OPEN_READWRITE, error, error_size);
    if (!dest)
        goto cleanup;
    int pages = 0;
    if (s_backup_copy (dest, src, db_path, &pages, error, error_size))
        goto cleanup;
    sqlite3_close (src);
    src = NULL;
    //  A copy of a WAL database says "WAL" in its header; make the backup one
    //  self-contained file that opens read-only anywhere.
    char *message = NULL;
    if (sqlite3_exec (dest, "PRAGMA journal_mode = DELETE", NULL, NULL, &message) != SQLITE_OK) {
        snprintf (error, error_size, "%s: %s", temp, message ? message : sqlite3_errmsg (dest));
        sqlite3_free (message);
        goto cleanup;
    }
    if (sqlite3_close (dest) != SQLITE_OK) {
        snprintf (error, error_size, "%s: %s", temp, sqlite3_errmsg (dest));
        goto cleanup;
    }
    dest = NULL;
    if (s_verify_backup_file (temp, pages, NULL, NULL, sha256, error, error_size))
        goto cleanup;
    parent = s_parent_dir (backup_path);
    if (!parent) {
        snprintf (error, error_size, "%s: out of memory", backup_path);
        goto cleanup;
    }
    if (s_fsync_path (temp, false) || rename (temp, backup_path) != 0
    ||  s_fsync_path (parent, true)) {
        snprintf (error, error_size, "%s: %s", backup_path, strerror (errno));
        goto cleanup;
    }
    temp_exists = false;
    rc = 0;
cleanup:
    if (src)
        sqlite3_close (src);
    if (dest)
        sqlite3_close (dest);
    if (temp_exists) {
        unlink (temp);
        if (journal)
            unlink (journal);
    }
    free (temp);
    free (journal);
    free (parent);
    if (rc == 0 && error_size)
        error [0] = 0;
    return rc;
}

int
al_backup_verify (const char *backup_path, const char *expected_sha256,
                  char sha256 [AL_SHA256_HEX_SIZE], char *error, size_t error_size)
{
    assert (backup_path);
    int rc = s_verify_backup_file (backup_path, 0, expected_sha256, NULL, sha256,
                                   error, error_size);
    if (rc == 0 && error_size)
        error [0] = 0;
    return rc;
}

int
al_backup_restore (const char *backup_path, const char *expected_sha256,
                   const char *db_path, char *error, size_t error_size)
{
    assert (backup_path && db_path);
    int rc = -1;
    sqlite3 *src = NULL;
    sqlite3 *dest = NULL;
    int backup_pages = 0;
    if (s_verify_backup_file (backup_path, 0, expected_sha256, &backup_pages, NULL,
                              error, error_size))
        goto cleanup;
    src = al_migrate_db_open (backup_path, SQLITE_OPEN_READONLY, error, error_size);
    if (!src)
        goto cleanup;
    dest = al_migrate_db_open (db_path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, error, error_size);
    if (!dest)
        goto cleanup;
    int pages = 0;
    if (s_backup_copy (dest, src, db_path, &pages, error, error_size))
        goto cleanup;
    if (s_integrity_ok (dest, db_path, error, error_size))
        goto cleanup;
    sqlite3_int64 restored_pages;
    if (s_pragma_int (dest, "PRAGMA page_count", &restored_pages)) {
        snprintf (error, error_size, "%s: %s", db_path, sqlite3_errmsg (dest));
        goto cleanup;
    }
    if (restored_pages != backup_pages || pages != backup_pages) {
        snprintf (error, error_size, "%s: %lld pages after restoring a backup of %d",
                  db_path, (long long) restored_pages, backup_pages);
        goto cleanup;
    }
    rc = 0;
cleanup:
    if (src)
        sqlite3_close (src);
    if (dest)
        sqlite3_close (dest);
    if (rc == 0 && error_size)
        error [0] = 0;
    return rc;
}
