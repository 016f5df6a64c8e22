/*  al_migrate.c: migration sets (load, digest, reversibility), applying them to a
    SQLite database, and verified backups with SQLite's online backup API.

    Loading reads every script of the set into memory once, checks the directory
    strictly (names, contiguous numbering from 001, no duplicates, no down without its
    up, size bounds, no NUL bytes, scripts that end with a complete statement, airlock
    directives only where they belong) and hashes it. Nothing is read from the
    directory again: the scripts that run are the bytes that were hashed and signed.

    Each step runs in its own BEGIN IMMEDIATE transaction together with its row in
    _airlock_migrations. While a script runs, an authorizer refuses statements that
    would break that invariant: transaction control (BEGIN, COMMIT, ROLLBACK), ATTACH
    and DETACH, and any change to _airlock_migrations itself. Savepoints stay allowed:
    they nest inside the step's transaction.

    Backups are written to a temporary file next to the target, normalised to a single
    file (journal_mode=DELETE, so no -wal holds part of it), verified, fsynced and only
    then renamed into place. A backup's SHA-256 is the evidence recorded by the caller;
    integrity_check catches structural damage, the SHA-256 catches the rest.

    No global state: every call is independent and thread-safe (see al_migrate.h).
*/
#include "deploy/al_migrate.h"
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
//  The online backup copies this many pages per step, and retries a busy source
//  up to S_BACKUP_MAX_RETRIES times S_BACKUP_RETRY_MS.
#define S_BACKUP_PAGES_PER_STEP 1024
#define S_BACKUP_MAX_RETRIES    500
#define S_BACKUP_RETRY_MS       20

#define S_STATE_TABLE           "_airlock_migrations"
#define S_CANONICAL_HEADER      "airlock migration set v1\n"

typedef struct {
    al_migration_step_t info;       // what callers see; strings point into this struct
    char name [AL_MIGRATION_MAX_NAME_LENGTH + 1];
    char up_sha256 [AL_SHA256_HEX_SIZE];
    char down_sha256 [AL_SHA256_HEX_SIZE];
    char *up_path;                  // for messages: dir/NNN_name.up.sql
    char *down_path;                // NULL when there is no down script
    char *up_sql;
    char *down_sql;
} s_step_t;

struct _al_migration_set_t {
    char *dir;
    s_step_t *steps;                // steps [i] is step number i + 1
    size_t count;
    char *canonical;
    char digest [AL_SHA256_HEX_SIZE];
};

//  --------------------------------------------------------------------------
//  SHA-256

static void
s_to_hex (const unsigned char *bytes, size_t size, char *hex)
{
    static const char digits [] = "0123456789abcdef";
    for (size_t i = 0; i < size; i++) {
        hex [2 * i] = digits [bytes [i] >> 4];
        hex [2 * i + 1] = digits [bytes [i] & 15];
    }
    hex [2 * size] = 0;
}

static int
s_sha256_hex (const void *data, size_t size, char hex [AL_SHA256_HEX_SIZE])
{
    unsigned char md [EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (!EVP_Digest (data, size, md, &length, EVP_sha256 (), NULL) || length != 32)
        return -1;
    s_to_hex (md, length, hex);
    return 0;
}

//  SHA-256 of a file's contents, streamed.
static int
s_sha256_file (const char *path, char hex [AL_SHA256_HEX_SIZE], char *error, size_t error_size)
{
    int rc = -1;
    unsigned char buffer [65536];
    EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf (error, error_size, "%s: %s", path, strerror (errno));
        goto cleanup;
    }
    if (!ctx || !EVP_DigestInit_ex (ctx, EVP_sha256 (), NULL)) {
        snprintf (error, error_size, "%s: SHA-256 is not available", path);
        goto cleanup;
    }
    while (true) {
        ssize_t got = read (fd, buffer, sizeof buffer);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            snprintf (error, error_size, "%s: %s", path, strerror (errno));
            goto cleanup;
        }
        if (got == 0)
            break;
        if (!EVP_DigestUpdate (ctx, buffer, (size_t) got)) {
            snprintf (error, error_size, "%s: SHA-256 failed", path);
            goto cleanup;
        }
    }
    unsigned char md [EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (!EVP_DigestFinal_ex (ctx, md, &length) || length != 32) {
        snprintf (error, error_size, "%s: SHA-256 failed", path);
        goto cleanup;
    }
    s_to_hex (md, length, hex);
    rc = 0;
cleanup:
    if (fd >= 0)
        close (fd);
    EVP_MD_CTX_free (ctx);
    return rc;
}

//  --------------------------------------------------------------------------
//  Loading a set

//  Should this directory entry be a migration script? Hidden files are ignored, and so
//  are files that neither start with a digit nor end in ".sql" (a README, say).
static bool
s_is_candidate (const char *file)
{
    size_t length = strlen (file);
    if (file [0] == '.')
        return false;
    return isdigit ((unsigned char) file [0])
        || (length >= 4 && strcmp (file + length - 4, ".sql") == 0);
}

//  Parses NNN_name.up.sql / NNN_name.down.sql. Returns 0, or -1 with the reason in why.
static int
s_parse_file_name (const char *file, unsigned *number, char *name, bool *is_down,
                   char *why, size_t why_size)
{
    static const char expected [] = "expected NNN_name.up.sql or NNN_name.down.sql "
                                    "(NNN: three digits; name: a-z, 0-9, '_', '-')";
    if (!isdigit ((unsigned char) file [0]) || !isdigit ((unsigned char) file [1])
    ||  !isdigit ((unsigned char) file [2]) || file [3] != '_') {
        snprintf (why, why_size, "not a migration file name: %s", expected);
        return -1;
    }
    *number = (unsigned) ((file [0] - '0') * 100 + (file [1] - '0') * 10 + (file [2] - '0'));
    const char *start = file + 4;
    const char *end = start;
    while ((*end >= 'a' && *end <= 'z') || (*end >= '0' && *end <= '9')
    ||     *end == '_' || *end == '-')
        end++;
    size_t length = (size_t) (end - start);
    if (length == 0 || (*end != '.' && *end != 0)) {
        snprintf (why, why_size, "bad step name: %s", expected);
        return -1;
    }
    if (length > AL_MIGRATION_MAX_NAME_LENGTH) {
        snprintf (why, why_size, "step name longer than %d characters",
                  AL_MIGRATION_MAX_NAME_LENGTH);
        return -1;
    }
    if (strcmp (end, ".up.sql") == 0)
        *is_down = false;
    else
    if (strcmp (end, ".down.sql") == 0)
        *is_down = true;
    else {
        snprintf (why, why_size, "not a migration file name: %s", expected);
        return -1;
    }
    if (*number == 0) {
        snprintf (why, why_size, "step numbers start at 001");
        return -1;
    }
    memcpy (name, start, length);
    name [length] = 0;
    return 0;
}

static unsigned
s_line_of (const char *text, const char *at)
{
    unsigned line = 1;
    for (const char *c = text; c < at; c++)
        if (*c == '\n')
            line++;
    return line;
}

//  Checks "-- airlock: ..." directives: the forward-only mark is allowed only as the
//  first line of an up script, and no other directive exists. A near miss must not be
//  silently ignored, since production would then refuse the set for a reason the
//  author cannot see.
static int
s_check_directives (const char *path, const char *text, bool is_down, bool *forward_only,
                    char *error, size_t error_size)
{
    *forward_only = false;
    unsigned line = 1;
    for (const char *c = text; *c; line++) {
        const char *end = strchr (c, '\n');
        if (!end)
            end = c + strlen (c);
        const char *p = c;
        if (p [0] == '-' && p [1] == '-') {
            p += 2;
            while (p < end && (*p == ' ' || *p == '\t'))
                p++;
            if ((size_t) (end - p) >= 8 && memcmp (p, "airlock:", 8) == 0) {
                p += 8;
                while (p < end && (*p == ' ' || *p == '\t'))
                    p++;
                const char *q = end;
                while (q > p && (q [-1] == ' ' || q [-1] == '\t' || q [-1] == '\r'))
                    q--;
                size_t length = (size_t) (q - p);
                bool is_mark = length == 12 && memcmp (p, "forward-only", 12) == 0;
                if (!is_mark) {
                    snprintf (error, error_size, "%s:%u: unknown airlock directive '%.*s' "
                              "(the only one is '" AL_MIGRATION_FORWARD_ONLY_MARK "')",
                              path, line, (int) (length > 40 ? 40 : length), p);
                    return -1;
                }
                if (is_down || line != 1) {
                    snprintf (error, error_size, "%s:%u: the forward-only mark must be "
                              "the first line of the up script", path, line);
                    return -1;
                }
                *forward_only = true;
            }
        }
        c = *end ? end + 1 : end;
    }
    return 0;
}

//  Reads one script, bounded by the per-script limit and what is left of the set's.
static char *
s_read_script (const char *path, size_t *budget, char *error, size_t error_size)
{
    char *text = NULL;
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf (error, error_size, "%s: %s", path, strerror (errno));
        goto failed;
    }
    struct stat status;
    if (fstat (fd, &status) != 0) {
        snprintf (error, error_size, "%s: %s", path, strerror (errno));
        goto failed;
    }
    if (!S_ISREG (status.st_mode)) {
        snprintf (error, error_size, "%s: not a regular file", path);
        goto failed;
    }
    if ((uintmax_t) status.st_size > AL_MIGRATION_MAX_SCRIPT_SIZE) {
        snprintf (error, error_size, "%s: script larger than %u bytes", path,
                  AL_MIGRATION_MAX_SCRIPT_SIZE);
        goto failed;
    }
    size_t size = (size_t) status.st_size;
    if (size > *budget) {
        snprintf (error, error_size, "%s: the migration set is larger than %u bytes", path,
                  AL_MIGRATION_MAX_SET_SIZE);
        goto failed;
    }
    //  One byte more than expected, to notice a file that grows while we read it.
    text = malloc (size + 2);
    if (!text) {
        snprintf (error, error_size, "%s: out of memory", path);
        goto failed;
    }
    size_t have = 0;
    while (have < size + 1) {
        ssize_t got = read (fd, text + have, size + 1 - have);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            snprintf (error, error_size, "%s: %s", path, strerror (errno));
            goto failed;
        }
        if (got == 0)
            break;
        have += (size_t) got;
    }
    if (have != size) {
        snprintf (error, error_size, "%s: changed while being read", path);
        goto failed;
    }
    text [size] = 0;
    if (memchr (text, 0, size)) {
        snprintf (error, error_size, "%s:%u: NUL byte in script", path,
                  s_line_of (text, text + strlen (text)));
        goto failed;
    }
    if (size == 0) {
        snprintf (error, error_size, "%s: empty script", path);
        goto failed;
    }
    if (!sqlite3_complete (text)) {
        snprintf (error, error_size, "%s: the script does not end with a complete SQL "
                  "statement (missing ';'?)", path);
        goto failed;
    }
    *budget -= size;
    close (fd);
    return text;
failed:
    if (fd >= 0)
        close (fd);
    free (text);
    return NULL;
}

static char *
s_path_join (const char *dir, const char *file)
{
    char *path = NULL;
    if (asprintf (&path, "%s/%s", dir, file) < 0)
        return NULL;
    return path;
}

static int
s_compare_names (const void *a, const void *b)
{
    return strcmp (*(char * const *) a, *(char * const *) b);
}

//  Builds the canonical serialization and the digest (docs/migrations.md).
static int
s_compute_digest (al_migration_set_t *self)
{
    //  Per line: "NNN " + name + " " + 64 + " " + 64 + " " + "1" + "\n".
    size_t capacity = sizeof S_CANONICAL_HEADER
                    + self->count * (4 + AL_MIGRATION_MAX_NAME_LENGTH + 1 + 64 + 1 + 64 + 3);
    self->canonical = malloc (capacity);
    if (!self->canonical)
        return -1;
    size_t used = (size_t) snprintf (self->canonical, capacity, "%s", S_CANONICAL_HEADER);
    for (size_t i = 0; i < self->count; i++) {
        const al_migration_step_t *step = &self->steps [i].info;
        int wrote = snprintf (self->canonical + used, capacity - used, "%03u %s %s %s %d\n",
                              step->number, step->name, step->up_sha256,
                              step->down_sha256 ? step->down_sha256 : "-",
                              step->forward_only ? 1 : 0);
        assert (wrote > 0 && (size_t) wrote < capacity - used);
        used += (size_t) wrote;
    }
    return s_sha256_hex (self->canonical, used, self->digest);
}

al_migration_set_t *
al_migration_set_load (const char *dir, char *error, size_t error_size)
{
    assert (dir);
    assert (error || error_size == 0);
    char **files = NULL;
    size_t file_count = 0;
    char *path = NULL;
    DIR *handle = NULL;
    al_migration_set_t *self = calloc (1, sizeof *self);
    if (!self || !(self->dir = strdup (dir))
    ||  !(self->steps = calloc (AL_MIGRATION_MAX_STEPS, sizeof *self->steps))) {
        snprintf (error, error_size, "%s: out of memory", dir);
        goto failed;
    }
    //  Collect candidate names, then work in sorted order so that errors do not depend
    //  on the order of readdir.
    handle = opendir (dir);
    if (!handle) {
        snprintf (error, error_size, "%s: %s", dir, strerror (errno));
        goto failed;
    }
    size_t file_capacity = 2 * AL_MIGRATION_MAX_STEPS;
    files = calloc (file_capacity, sizeof *files);
    if (!files) {
        snprintf (error, error_size, "%s: out of memory", dir);
        goto failed;
    }
    struct dirent *entry;
    while ((entry = readdir (handle))) {
        if (!s_is_candidate (entry->d_name))
            continue;
        if (file_count == file_capacity) {
            snprintf (error, error_size, "%s: more than %zu migration files", dir,
                      file_capacity);
            goto failed;
        }
        files [file_count] = strdup (entry->d_name);
        if (!files [file_count]) {
            snprintf (error, error_size, "%s: out of memory", dir);
            goto failed;
        }
        file_count++;
    }
    closedir (handle);
    handle = NULL;
    qsort (files, file_count, sizeof *files, s_compare_names);

    //  Pass 0 takes the up scripts, pass 1 the down scripts, so a down script always
    //  finds its up script already in place.
    size_t budget = AL_MIGRATION_MAX_SET_SIZE;
    unsigned highest = 0;
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < file_count; i++) {
            unsigned number;
            char name [AL_MIGRATION_MAX_NAME_LENGTH + 1];
            bool is_down;
            char why [160];
            free (path);
            path = s_path_join (dir, files [i]);
            if (!path) {
                snprintf (error, error_size, "%s: out of memory", dir);
                goto failed;
            }
            if (s_parse_file_name (files [i], &number, name, &is_down, why, sizeof why)) {
                snprintf (error, error_size, "%s: %s", path, why);
                goto failed;
            }
            if (is_down != (pass == 1))
                continue;
            s_step_t *step = &self->steps [number - 1];
            if (!is_down) {
                if (step->up_path) {
                    snprintf (error, error_size, "%s: step number %03u is already used by %s",
                              path, number, step->up_path);
                    goto failed;
                }
                step->up_sql = s_read_script (path, &budget, error, error_size);
                if (!step->up_sql)
                    goto failed;
                if (s_check_directives (path, step->up_sql, false, &step->info.forward_only,
                                        error, error_size))
                    goto failed;
                if (s_sha256_hex (step->up_sql, strlen (step->up_sql), step->up_sha256)) {
                    snprintf (error, error_size, "%s: SHA-256 is not available", path);
                    goto failed;
                }
                step->info.number = number;
                memcpy (step->name, name, sizeof name);
                step->up_path = path;
                path = NULL;
                if (number > highest)
                    highest = number;
            }
            else {
                if (!step->up_path || strcmp (step->name, name) != 0) {
                    snprintf (error, error_size, "%s: no matching %03u_%s.up.sql", path,
                              number, name);
                    goto failed;
                }
                step->down_sql = s_read_script (path, &budget, error, error_size);
                if (!step->down_sql)
                    goto failed;
                bool unused;
                if (s_check_directives (path, step->down_sql, true, &unused, error, error_size))
                    goto failed;
                if (step->info.forward_only) {
                    snprintf (error, error_size, "%s: step %03u_%s is marked forward-only "
                              "but has a down script; keep one or the other", path, number, name);
                    goto failed;
                }
                if (s_sha256_hex (step->down_sql, strlen (step->down_sql), step->down_sha256)) {
                    snprintf (error, error_size, "%s: SHA-256 is not available", path);
                    goto failed;
                }
                step->down_path = path;
                path = NULL;
            }
        }
    free (path);
    path = NULL;
    if (highest == 0) {
        snprintf (error, error_size, "%s: no migration scripts (NNN_name.up.sql)", dir);
        goto failed;
    }
    for (unsigned number = 1; number <= highest; number++)
        if (!self->steps [number - 1].up_path) {
            unsigned next = number + 1;
            while (!self->steps [next - 1].up_path)
                next++;
            snprintf (error, error_size, "%s: step %03u is missing before it (numbering must "
                      "be contiguous from 001)", self->steps [next - 1].up_path, number);
            goto failed;
        }
    self->count = highest;
    for (size_t i = 0; i < self->count; i++) {
        s_step_t *step = &self->steps [i];
        step->info.name = step->name;
        step->info.up_sha256 = step->up_sha256;
        step->info.down_sha256 = step->down_sql ? step->down_sha256 : NULL;
    }
    if (s_compute_digest (self)) {
        snprintf (error, error_size, "%s: out of memory or no SHA-256", dir);
        goto failed;
    }
    for (size_t i = 0; i < file_count; i++)
        free (files [i]);
    free (files);
    if (error_size)
        error [0] = 0;
    return self;
failed:
    if (handle)
        closedir (handle);
    for (size_t i = 0; i < file_count; i++)
        free (files [i]);
    free (files);
    free (path);
    if (self)
        self->count = AL_MIGRATION_MAX_STEPS;     // free every slot loaded so far
    al_migration_set_destroy (&self);
    return NULL;
}

void
al_migration_set_destroy (al_migration_set_t **self_p)
{
    assert (self_p);
    al_migration_set_t *self = *self_p;
    if (!self)
        return;
    if (self->steps)
        for (size_t i = 0; i < self->count; i++) {
            free (self->steps [i].up_path);
            free (self->steps [i].down_path);
            free (self->steps [i].up_sql);
            free (self->steps [i].down_sql);
        }
    free (self->steps);
    free (self->canonical);
    free (self->dir);
    free (self);
    *self_p = NULL;
}

const char *
al_migration_set_digest (const al_migration_set_t *self)
{
    assert (self);
    return self->digest;
}

const char *
al_migration_set_canonical (const al_migration_set_t *self)
{
    assert (self);
    return self->canonical;
}

size_t
al_migration_set_count (const al_migration_set_t *self)
{
    assert (self);
    return self->count;
}

const al_migration_step_t *
al_migration_set_step (const al_migration_set_t *self, size_t index)
{
    assert (self);
    return index < self->count ? &self->steps [index].info : NULL;
}

int
al_migration_set_check_reversible (const al_migration_set_t *self, bool production,
                                   char *error, size_t error_size)
{
    assert (self);
    assert (error || error_size == 0);
    size_t used = 0;
    size_t lacking = 0;
    if (error_size)
        error [0] = 0;
    for (size_t i = 0; i < self->count; i++) {
        const s_step_t *step = &self->steps [i];
        if (step->down_sql || step->info.forward_only)
            continue;
        lacking++;
        if (used < error_size) {
            int wrote = snprintf (error + used, error_size - used,
                                  "%s%03u_%s has neither a down script nor the forward-only "
                                  "mark", lacking > 1 ? "; " : "", step->info.number, step->name);
            if (wrote > 0)
                used += (size_t) wrote;
        }
    }
    if (lacking && production && used < error_size)
        snprintf (error + used, error_size - used, " (refused in production)");
    return lacking && production ? -1 : 0;
}

//  --------------------------------------------------------------------------
//  The state table and running steps

static sqlite3 *
s_db_open (const char *path, int flags, char *error, size_t error_size)
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

static bool
s_file_exists (const char *path)
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
        const s_step_t *step = &set->steps [number - 1];
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
            snprintf (error, error_size, "%s:%u: %s", path, s_line_of (script, at),
                      guard.refused ? guard.refused : sqlite3_errmsg (db));
            goto cleanup;
        }
        if (stmt) {
            int step_rc;
            while ((step_rc = sqlite3_step (stmt)) == SQLITE_ROW)
                ;
            if (step_rc != SQLITE_DONE) {
                snprintf (error, error_size, "%s:%u: %s", path, s_line_of (script, start),
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

static int64_t
s_now_ms (void)
{
    struct timespec now;
    clock_gettime (CLOCK_REALTIME, &now);
    return (int64_t) now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

//  Applies (up) or reverts (down) one step in its own transaction. The database must be
//  at version number - 1 (up) or number (down) when the transaction starts.
static int
s_run_step (sqlite3 *db, const char *db_path, const al_migration_set_t *set,
            unsigned number, bool up, char *error, size_t error_size)
{
    int rc = -1;
    sqlite3_stmt *stmt = NULL;
    const s_step_t *step = &set->steps [number - 1];
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
        sqlite3_bind_int64 (stmt, 4, s_now_ms ());
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
    if (!s_file_exists (db_path))
        return 0;
    sqlite3 *db = s_db_open (db_path, SQLITE_OPEN_READWRITE, error, error_size);
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
    db = s_db_open (db_path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, error, error_size);
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
    if (s_file_exists (db_path)) {
        db = s_db_open (db_path, SQLITE_OPEN_READWRITE, error, error_size);
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
        const s_step_t *step = &set->steps [number - 1];
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
    if (s_sha256_file (path, hex, error, error_size))
        goto cleanup;
    if (expected_sha256 && strcmp (expected_sha256, hex) != 0) {
        snprintf (error, error_size, "%s: SHA-256 %.12s... differs from the recorded %.12s...",
                  path, hex, expected_sha256);
        goto cleanup;
    }
    db = s_db_open (path, SQLITE_OPEN_READONLY, error, error_size);
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
    if (!s_file_exists (db_path)) {
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
    src = s_db_open (db_path, SQLITE_OPEN_READWRITE, error, error_size);
    if (!src)
        goto cleanup;
    dest = s_db_open (temp, SQLITE_OPEN_READWRITE, error, error_size);
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
    src = s_db_open (backup_path, SQLITE_OPEN_READONLY, error, error_size);
    if (!src)
        goto cleanup;
    dest = s_db_open (db_path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, error, error_size);
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
