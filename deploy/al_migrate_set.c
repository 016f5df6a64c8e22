/*  al_migrate_set.c: migration sets: loading, the content digest, reversibility
    (see al_migrate.h). al_migrate.c applies a set; al_migrate_backup.c makes backups.

    Loading reads every script of the set into memory once, checks the directory
    strictly (names, contiguous numbering from 001, no duplicates, no down without its
    up, size bounds, no NUL bytes, scripts that end with a complete statement, airlock
    directives only where they belong) and hashes it. Nothing is read from the
    directory again: the scripts that run are the bytes that were hashed and signed.

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


#define S_CANONICAL_HEADER      "airlock migration set v1\n"

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
int
al_migrate_sha256_file (const char *path, char hex [AL_SHA256_HEX_SIZE], char *error, size_t error_size)
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

unsigned
al_migrate_line_of (const char *text, const char *at)
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
                  al_migrate_line_of (text, text + strlen (text)));
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
            al_migrate_step_t *step = &self->steps [number - 1];
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
        al_migrate_step_t *step = &self->steps [i];
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
        const al_migrate_step_t *step = &self->steps [i];
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

