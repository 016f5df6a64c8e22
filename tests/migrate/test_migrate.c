/*  test_migrate.c: tests of migration sets, up/down migrations and SQLite backups.

    Every test works in its own temporary directory (removed in teardown). The demo
    service's real migration set is loaded from $AIRLOCK_SOURCE_DIR; the digest is
    recomputed here independently from the documented serialization. Invalid sets are
    written one rule at a time and each must be refused with its message. Databases
    are inspected with plain SQLite queries, never through the code under test.
*/
#include "deploy/al_migrate.h"
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <openssl/evp.h>
#include <setjmp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

typedef struct {
    char dir [64];              // the test's temporary directory
    char set_dir [128];         // dir/set: a migration set
    char db [128];              // dir/service.db
    char backup [128];          // dir/service.backup
} fixture_t;

static int
s_remove_entry (const char *path, const struct stat *status, int flag, struct FTW *ftw)
{
    (void) status;
    (void) flag;
    (void) ftw;
    return remove (path);
}

static int
s_setup (void **state)
{
    fixture_t *f = calloc (1, sizeof *f);
    assert_non_null (f);
    snprintf (f->dir, sizeof f->dir, "/tmp/al_migrate_XXXXXX");
    assert_non_null (mkdtemp (f->dir));
    snprintf (f->set_dir, sizeof f->set_dir, "%s/set", f->dir);
    snprintf (f->db, sizeof f->db, "%s/service.db", f->dir);
    snprintf (f->backup, sizeof f->backup, "%s/service.backup", f->dir);
    assert_int_equal (mkdir (f->set_dir, 0700), 0);
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    fixture_t *f = *state;
    nftw (f->dir, s_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free (f);
    return 0;
}

static void
s_write_bytes (const char *dir, const char *file, const void *data, size_t size)
{
    char path [512];
    snprintf (path, sizeof path, "%s/%s", dir, file);
    FILE *out = fopen (path, "wb");
    assert_non_null (out);
    assert_int_equal (fwrite (data, 1, size, out), size);
    assert_int_equal (fclose (out), 0);
}

static void
s_write (const char *dir, const char *file, const char *text)
{
    s_write_bytes (dir, file, text, strlen (text));
}

static char *
s_read (const char *path, size_t *size)
{
    FILE *in = fopen (path, "rb");
    assert_non_null (in);
    assert_int_equal (fseek (in, 0, SEEK_END), 0);
    long length = ftell (in);
    assert_true (length >= 0);
    rewind (in);
    char *data = malloc ((size_t) length + 1);
    assert_non_null (data);
    assert_int_equal (fread (data, 1, (size_t) length, in), (size_t) length);
    fclose (in);
    data [length] = 0;
    *size = (size_t) length;
    return data;
}

static void
s_sha256_hex (const void *data, size_t size, char hex [AL_SHA256_HEX_SIZE])
{
    unsigned char md [32];
    unsigned int length = 0;
    assert_true (EVP_Digest (data, size, md, &length, EVP_sha256 (), NULL));
    assert_int_equal (length, 32);
    for (unsigned i = 0; i < 32; i++)
        snprintf (hex + 2 * i, 3, "%02x", md [i]);
}

static void
s_sha256_file (const char *path, char hex [AL_SHA256_HEX_SIZE])
{
    size_t size;
    char *data = s_read (path, &size);
    s_sha256_hex (data, size, hex);
    free (data);
}

static const char *
s_demo_dir (char *buffer, size_t size)
{
    const char *source = getenv ("AIRLOCK_SOURCE_DIR");
    assert_non_null (source);
    snprintf (buffer, size, "%s/examples/demo-service/migrations", source);
    return buffer;
}

//  Copies the demo service's migration set into dir.
static void
s_copy_demo (const char *dir)
{
    static const char *files [] = {
        "001_create_items.up.sql", "001_create_items.down.sql",
        "002_add_price.up.sql", "002_add_price.down.sql"
    };
    char demo [512];
    s_demo_dir (demo, sizeof demo);
    for (size_t i = 0; i < sizeof files / sizeof files [0]; i++) {
        char path [640];
        snprintf (path, sizeof path, "%s/%s", demo, files [i]);
        size_t size;
        char *data = s_read (path, &size);
        s_write_bytes (dir, files [i], data, size);
        free (data);
    }
}

static al_migration_set_t *
s_load_ok (const char *dir)
{
    char error [512] = "";
    al_migration_set_t *set = al_migration_set_load (dir, error, sizeof error);
    if (!set)
        fail_msg ("unexpected load error: %s", error);
    assert_string_equal (error, "");
    return set;
}

static void
s_exec (const char *db_path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal (sqlite3_open (db_path, &db), SQLITE_OK);
    char *message = NULL;
    int rc = sqlite3_exec (db, sql, NULL, NULL, &message);
    if (rc != SQLITE_OK)
        fail_msg ("%s: %s", sql, message);
    sqlite3_close (db);
}

//  The integer result of a one-value query, or -1 when the query fails.
static long long
s_query (const char *db_path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = NULL;
    long long value = -1;
    assert_int_equal (sqlite3_open_v2 (db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    if (sqlite3_prepare_v2 (db, sql, -1, &stmt, NULL) == SQLITE_OK
    &&  sqlite3_step (stmt) == SQLITE_ROW)
        value = sqlite3_column_int64 (stmt, 0);
    sqlite3_finalize (stmt);
    sqlite3_close (db);
    return value;
}

//  The text result of a one-value query.
static void
s_query_text (const char *db_path, const char *sql, char *text, size_t size)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = NULL;
    assert_int_equal (sqlite3_open_v2 (db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal (sqlite3_prepare_v2 (db, sql, -1, &stmt, NULL), SQLITE_OK);
    assert_int_equal (sqlite3_step (stmt), SQLITE_ROW);
    snprintf (text, size, "%s", (const char *) sqlite3_column_text (stmt, 0));
    sqlite3_finalize (stmt);
    sqlite3_close (db);
}

//  How many entries of dir start with prefix.
static int
s_count_prefixed (const char *dir, const char *prefix)
{
    DIR *handle = opendir (dir);
    assert_non_null (handle);
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir (handle)))
        if (strncmp (entry->d_name, prefix, strlen (prefix)) == 0)
            count++;
    closedir (handle);
    return count;
}

static unsigned
s_version (const char *db_path, const al_migration_set_t *set)
{
    char error [512] = "";
    unsigned version = 999;
    if (al_migrate_version (db_path, set, &version, error, sizeof error))
        fail_msg ("al_migrate_version: %s", error);
    return version;
}

static void
s_assert_contains (const char *text, const char *part)
{
    if (!strstr (text, part))
        fail_msg ("expected \"%s\" in \"%s\"", part, text);
}

//  --------------------------------------------------------------------------

static void
test_demo_set_and_digest (void **state)
{
    fixture_t *f = *state;
    char demo [512];
    al_migration_set_t *set = s_load_ok (s_demo_dir (demo, sizeof demo));
    assert_int_equal (al_migration_set_count (set), 2);
    const al_migration_step_t *step = al_migration_set_step (set, 0);
    assert_int_equal (step->number, 1);
    assert_string_equal (step->name, "create_items");
    assert_non_null (step->down_sha256);
    assert_false (step->forward_only);
    step = al_migration_set_step (set, 1);
    assert_int_equal (step->number, 2);
    assert_string_equal (step->name, "add_price");
    assert_null (al_migration_set_step (set, 2));

    //  The canonical serialization, rebuilt here from the files and docs/migrations.md.
    char expected [2048];
    size_t used = (size_t) snprintf (expected, sizeof expected, "airlock migration set v1\n");
    static const char *names [] = { "001_create_items", "002_add_price" };
    for (int i = 0; i < 2; i++) {
        char path [640], up [AL_SHA256_HEX_SIZE], down [AL_SHA256_HEX_SIZE];
        snprintf (path, sizeof path, "%s/%s.up.sql", demo, names [i]);
        s_sha256_file (path, up);
        snprintf (path, sizeof path, "%s/%s.down.sql", demo, names [i]);
        s_sha256_file (path, down);
        assert_string_equal (al_migration_set_step (set, (size_t) i)->up_sha256, up);
        used += (size_t) snprintf (expected + used, sizeof expected - used, "%s %s %s 0\n",
                                   names [i], up, down);
    }
    //  "001_create_items" → "001 create_items": the number and name are separate fields.
    expected [strlen ("airlock migration set v1\n") + 3] = ' ';
    char *second = strstr (expected, "002_add_price");
    assert_non_null (second);
    second [3] = ' ';
    assert_string_equal (al_migration_set_canonical (set), expected);
    char digest [AL_SHA256_HEX_SIZE];
    s_sha256_hex (expected, strlen (expected), digest);
    assert_string_equal (al_migration_set_digest (set), digest);
    assert_int_equal (strspn (digest, "0123456789abcdef"), 64);

    //  Stable across loads and across directories (only content counts).
    s_copy_demo (f->set_dir);
    al_migration_set_t *again = s_load_ok (f->set_dir);
    assert_string_equal (al_migration_set_digest (again), digest);
    al_migration_set_destroy (&again);
    assert_null (again);

    //  One byte of one script changes the digest; putting it back restores it.
    char path [640];
    snprintf (path, sizeof path, "%s/002_add_price.down.sql", f->set_dir);
    size_t size;
    char *data = s_read (path, &size);
    data [10] ^= 1;
    s_write_bytes (f->set_dir, "002_add_price.down.sql", data, size);
    again = s_load_ok (f->set_dir);
    assert_string_not_equal (al_migration_set_digest (again), digest);
    al_migration_set_destroy (&again);
    data [10] ^= 1;
    s_write_bytes (f->set_dir, "002_add_price.down.sql", data, size);
    free (data);
    again = s_load_ok (f->set_dir);
    assert_string_equal (al_migration_set_digest (again), digest);
    al_migration_set_destroy (&again);

    //  Files that are not migrations by name are ignored; the digest does not change.
    s_write (f->set_dir, "README.md", "notes\n");
    s_write (f->set_dir, ".hidden.sql", "junk");
    again = s_load_ok (f->set_dir);
    assert_string_equal (al_migration_set_digest (again), digest);
    al_migration_set_destroy (&again);
    al_migration_set_destroy (&set);
    al_migration_set_destroy (&set);
}

typedef struct {
    const char *files [4];      // "name=content"; NULL ends
    const char *expected [2];   // substrings of the error
} invalid_case_t;

static void
test_invalid_sets (void **state)
{
    fixture_t *f = *state;
    static const invalid_case_t cases [] = {
        { { "001_a.up.sql=SELECT 1;", "003_c.up.sql=SELECT 3;" },
          { "003_c.up.sql: step 002 is missing", "contiguous from 001" } },
        { { "001_a.up.sql=SELECT 1;", "001_b.up.sql=SELECT 2;" },
          { "001_b.up.sql: step number 001 is already used by", "001_a.up.sql" } },
        { { "001_a.up.sql=SELECT 1;", "002_b.down.sql=SELECT 2;" },
          { "002_b.down.sql: no matching 002_b.up.sql" } },
        { { "001_a.up.sql=SELECT 1;", "001_b.down.sql=SELECT 2;" },
          { "001_b.down.sql: no matching 001_b.up.sql" } },
        { { "001_a.up.sql=SELECT 1;", "002-b.up.sql=SELECT 2;" },
          { "002-b.up.sql: not a migration file name" } },
        { { "001_a.up.sql=SELECT 1;", "002_Add.up.sql=SELECT 2;" },
          { "002_Add.up.sql: bad step name" } },
        { { "001_a.up.sql=SELECT 1;", "002_b.sql=SELECT 2;" },
          { "002_b.sql: not a migration file name" } },
        { { "001_a.up.sql=SELECT 1;", "002_b.up.sql.orig=SELECT 2;" },
          { "002_b.up.sql.orig: not a migration file name" } },
        { { "001_a.up.sql=SELECT 1;", "create_b.up.sql=SELECT 2;" },
          { "create_b.up.sql: not a migration file name" } },
        { { "000_a.up.sql=SELECT 1;" }, { "000_a.up.sql: step numbers start at 001" } },
        { { "README.md=nothing here" }, { "no migration scripts" } },
        { { "001_a.up.sql=-- airlock: forward-only\nSELECT 1;", "001_a.down.sql=SELECT 2;" },
          { "001_a.down.sql: step 001_a is marked forward-only but has a down script" } },
        { { "001_a.up.sql=-- about a\n-- airlock: forward-only\nSELECT 1;" },
          { "001_a.up.sql:2: the forward-only mark must be the first line" } },
        { { "001_a.up.sql=SELECT 1;", "001_a.down.sql=-- airlock: forward-only\nSELECT 2;" },
          { "001_a.down.sql:1: the forward-only mark must be the first line" } },
        { { "001_a.up.sql=--airlock: forward_only\nSELECT 1;" },
          { "001_a.up.sql:1: unknown airlock directive 'forward_only'" } },
        { { "001_a.up.sql=CREATE TABLE t (x)" },
          { "001_a.up.sql: the script does not end with a complete SQL statement" } },
        { { "001_a.up.sql=" }, { "001_a.up.sql: empty script" } },
        { { "001_a.up.sql=-- only a comment\n" },
          { "001_a.up.sql: the script does not end with a complete SQL statement" } },
        { { "001_abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcde.up.sql=SELECT 1;" },
          { "step name longer than 64 characters" } },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        char dir [256];
        snprintf (dir, sizeof dir, "%s/case%zu", f->dir, i);
        assert_int_equal (mkdir (dir, 0700), 0);
        for (int j = 0; j < 4 && cases [i].files [j]; j++) {
            char name [256];
            const char *equals = strchr (cases [i].files [j], '=');
            assert_non_null (equals);
            snprintf (name, sizeof name, "%.*s", (int) (equals - cases [i].files [j]),
                      cases [i].files [j]);
            s_write (dir, name, equals + 1);
        }
        char error [512] = "";
        al_migration_set_t *set = al_migration_set_load (dir, error, sizeof error);
        if (set)
            fail_msg ("case %zu: loaded, expected \"%s\"", i, cases [i].expected [0]);
        for (int j = 0; j < 2 && cases [i].expected [j]; j++)
            s_assert_contains (error, cases [i].expected [j]);
        //  The error names the file by its path inside the set's directory.
        if (strstr (cases [i].expected [0], ".sql"))
            s_assert_contains (error, dir);
    }

    //  A NUL byte would silently cut the script short when handed to SQLite.
    s_write_bytes (f->set_dir, "001_a.up.sql", "SELECT 1;\n\0DROP TABLE x;", 25);
    char error [512] = "";
    assert_null (al_migration_set_load (f->set_dir, error, sizeof error));
    s_assert_contains (error, "001_a.up.sql:2: NUL byte in script");

    //  A script above the size bound.
    size_t size = AL_MIGRATION_MAX_SCRIPT_SIZE + 1;
    char *big = malloc (size);
    assert_non_null (big);
    memset (big, ' ', size);
    memcpy (big, "SELECT 1;", 9);
    s_write_bytes (f->set_dir, "001_a.up.sql", big, size);
    free (big);
    assert_null (al_migration_set_load (f->set_dir, error, sizeof error));
    s_assert_contains (error, "001_a.up.sql: script larger than 4194304 bytes");

    //  A directory that does not exist.
    char missing [256];
    snprintf (missing, sizeof missing, "%s/nowhere", f->dir);
    assert_null (al_migration_set_load (missing, error, sizeof error));
    s_assert_contains (error, "nowhere: No such file or directory");
}

static void
test_production_rule (void **state)
{
    fixture_t *f = *state;
    s_write (f->set_dir, "001_a.up.sql", "CREATE TABLE a (x);\n");
    s_write (f->set_dir, "001_a.down.sql", "DROP TABLE a;\n");
    s_write (f->set_dir, "002_b.up.sql", "CREATE TABLE b (x);\n");
    s_write (f->set_dir, "003_c.up.sql", "CREATE TABLE c (x);\n");
    al_migration_set_t *set = s_load_ok (f->set_dir);
    char error [512] = "";
    assert_int_equal (al_migration_set_check_reversible (set, true, error, sizeof error), -1);
    s_assert_contains (error, "002_b has neither a down script nor the forward-only mark");
    s_assert_contains (error, "003_c has neither");
    s_assert_contains (error, "refused in production");
    assert_null (strstr (error, "001_a"));
    //  Elsewhere the same set is allowed; the message stays as a warning.
    assert_int_equal (al_migration_set_check_reversible (set, false, error, sizeof error), 0);
    s_assert_contains (error, "002_b has neither");
    assert_null (strstr (error, "refused"));
    char unmarked [AL_SHA256_HEX_SIZE];
    strcpy (unmarked, al_migration_set_digest (set));
    al_migration_set_destroy (&set);

    //  With the mark (and any line ending) production accepts it, and the digest says so.
    s_write (f->set_dir, "002_b.up.sql", "-- airlock: forward-only\nCREATE TABLE b (x);\n");
    s_write (f->set_dir, "003_c.up.sql", "--  airlock:forward-only \r\nCREATE TABLE c (x);\n");
    set = s_load_ok (f->set_dir);
    assert_true (al_migration_set_step (set, 1)->forward_only);
    assert_true (al_migration_set_step (set, 2)->forward_only);
    assert_null (al_migration_set_step (set, 2)->down_sha256);
    assert_int_equal (al_migration_set_check_reversible (set, true, error, sizeof error), 0);
    assert_string_equal (error, "");
    assert_string_not_equal (al_migration_set_digest (set), unmarked);
    s_assert_contains (al_migration_set_canonical (set), "\n002 b ");
    s_assert_contains (al_migration_set_canonical (set), " - 1\n003 c ");
    al_migration_set_destroy (&set);
}

static void
test_up_down_up (void **state)
{
    fixture_t *f = *state;
    s_copy_demo (f->set_dir);
    al_migration_set_t *set = s_load_ok (f->set_dir);
    char error [512] = "";
    al_migrate_report_t report;
    assert_int_equal (s_version (f->db, set), 0);

    //  Up to 001 only, then to the end.
    struct timespec now;
    clock_gettime (CLOCK_REALTIME, &now);
    long long before_ms = (long long) now.tv_sec * 1000 + now.tv_nsec / 1000000;
    assert_int_equal (al_migrate_up (f->db, set, 1, &report, error, sizeof error), 0);
    assert_int_equal (report.from_version, 0);
    assert_int_equal (report.to_version, 1);
    assert_int_equal (report.steps_run, 1);
    assert_int_equal (s_query (f->db, "PRAGMA user_version"), 1);
    s_exec (f->db, "INSERT INTO items (name) VALUES ('a'), ('b')");
    assert_int_equal (al_migrate_up (f->db, set, AL_MIGRATE_LATEST, &report, error, sizeof error), 0);
    assert_string_equal (error, "");
    assert_int_equal (report.from_version, 1);
    assert_int_equal (report.to_version, 2);
    assert_int_equal (report.steps_run, 1);
    assert_int_equal (report.failed_step, 0);
    clock_gettime (CLOCK_REALTIME, &now);
    long long after_ms = (long long) now.tv_sec * 1000 + now.tv_nsec / 1000000;
    assert_int_equal (s_version (f->db, set), 2);
    assert_int_equal (s_query (f->db, "PRAGMA user_version"), 2);
    assert_int_equal (s_query (f->db, "SELECT count(*) FROM items WHERE price_cents = 0"), 2);
    s_exec (f->db, "UPDATE items SET price_cents = 250 WHERE name = 'a'");

    //  The state table: one row per step, with the up script's digest and a time.
    assert_int_equal (s_query (f->db, "SELECT count(*) FROM _airlock_migrations"), 2);
    char sql [256];
    snprintf (sql, sizeof sql, "SELECT count(*) FROM _airlock_migrations WHERE number = 2 "
              "AND name = 'add_price' AND up_sha256 = '%s'", al_migration_set_step (set, 1)->up_sha256);
    assert_int_equal (s_query (f->db, sql), 1);
    assert_true (s_query (f->db, "SELECT min(applied_at_ms) FROM _airlock_migrations") >= before_ms);
    assert_true (s_query (f->db, "SELECT max(applied_at_ms) FROM _airlock_migrations") <= after_ms);

    //  Up again is a no-op; a target beyond the set or below the database is refused.
    assert_int_equal (al_migrate_up (f->db, set, AL_MIGRATE_LATEST, &report, error, sizeof error), 0);
    assert_int_equal (report.steps_run, 0);
    assert_int_equal (al_migrate_up (f->db, set, 3, &report, error, sizeof error), -1);
    s_assert_contains (error, "target 003 is beyond the last step");
    assert_int_equal (al_migrate_up (f->db, set, 1, &report, error, sizeof error), -1);
    s_assert_contains (error, "above target 001 (migrate down instead)");
    assert_int_equal (al_migrate_down (f->db, set, 3, &report, error, sizeof error), -1);
    s_assert_contains (error, "below target 003");
    assert_int_equal (s_version (f->db, set), 2);

    //  Down to 001: the price column goes, the rows stay.
    assert_int_equal (al_migrate_down (f->db, set, 1, &report, error, sizeof error), 0);
    assert_int_equal (report.from_version, 2);
    assert_int_equal (report.to_version, 1);
    assert_int_equal (report.steps_run, 1);
    assert_int_equal (s_query (f->db, "SELECT count(*) FROM pragma_table_info('items') "
                              "WHERE name = 'price_cents'"), 0);
    assert_int_equal (s_query (f->db, "SELECT count(*) FROM items"), 2);
    assert_int_equal (s_query (f->db, "PRAGMA user_version"), 1);
    assert_int_equal (s_version (f->db, set), 1);

    //  Down to 0: nothing of the schema is left but the (empty) state table.
    assert_int_equal (al_migrate_down (f->db, set, 0, &report, error, sizeof error), 0);
    assert_int_equal (report.to_version, 0);
    assert_int_equal (s_query (f->db, "SELECT count(*) FROM sqlite_master WHERE name = 'items'"), 0);
    assert_int_equal (s_query (f->db, "SELECT count(*) FROM _airlock_migrations"), 0);
    assert_int_equal (s_query (f->db, "PRAGMA user_version"), 0);
    assert_int_equal (s_version (f->db, set), 0);

    //  Up again from scratch: a fresh, empty schema at 002.
    assert_int_equal (al_migrate_up (f->db, set, AL_MIGRATE_LATEST, &report, error, sizeof error), 0);
    assert_int_equal (report.steps_run, 2);
    assert_int_equal (s_query (f->db, "SELECT count(*) FROM items"), 0);
    s_exec (f->db, "INSERT INTO items (name, price_cents) VALUES ('c', 99)");
    assert_int_equal (s_query (f->db, "SELECT price_cents FROM items WHERE name = 'c'"), 99);
    assert_int_equal (s_version (f->db, set), 2);

    //  Down on a database that does not exist: version 0, nothing to do.
    char nowhere [256];
    snprintf (nowhere, sizeof nowhere, "%s/none.db", f->dir);
    assert_int_equal (al_migrate_down (nowhere, set, 0, &report, error, sizeof error), 0);
    assert_int_equal (access (nowhere, F_OK), -1);
    al_migration_set_destroy (&set);
}

static void
test_failing_step_rolls_back_only_itself (void **state)
{
    fixture_t *f = *state;
    s_write (f->set_dir, "001_first.up.sql",
             "CREATE TABLE t1 (x INTEGER);\nINSERT INTO t1 VALUES (1);\nPRAGMA user_version = 1;\n");
    s_write (f->set_dir, "001_first.down.sql", "DROP TABLE t1;\nPRAGMA user_version = 0;\n");
    s_write (f->set_dir, "002_broken.up.sql",
             "CREATE TABLE t2 (x INTEGER);\nINSERT INTO t2 VALUES (2);\n"
             "PRAGMA user_version = 2;\nCREAT TABLE oops (x);\n");
    s_write (f->set_dir, "002_broken.down.sql", "DROP TABLE t2;\n");
    al_migration_set_t *set = s_load_ok (f->set_dir);
    char error [512] = "";
    al_migrate_report_t report;
    assert_int_equal (al_migrate_up (f->db, set, AL_MIGRATE_LATEST, &report, error, sizeof error), -1);
    s_assert_contains (error, "002_broken.up.sql:4: ");
    s_assert_contains (error, "syntax error");
    assert_int_equal (report.from_version, 0);
    assert_int_equal (report.to_version, 1);
    assert_int_equal (report.steps_run, 1);
    assert_int_equal (report.failed_step, 2);
    assert_int_equal (s_version (f->db, set), 1);
    assert_int_equal (s_query (f->db, "PRAGMA user_version"), 1);
    assert_int_equal (s_query (f->db, "SELECT x FROM t1"), 1);
    assert_int_equal (s_query (f->db, "SELECT count(*) FROM sqlite_master WHERE name = 't2'"), 0);

    //  A runtime error (not a parse error) names its statement's line too.
    s_write (f->set_dir, "002_broken.up.sql",
             "CREATE TABLE t2 (x INTEGER UNIQUE);\n\n-- two rows, one value\n"
             "INSERT INTO t2 VALUES (2);\nINSERT INTO t2 VALUES (2);\n");
    al_migration_set_destroy (&set);
    set = s_load_ok (f->set_dir);
    assert_int_equal (al_migrate_up (f->db, set, AL_MIGRATE_LATEST, &report, error, sizeof error), -1);
    s_assert_contains (error, "002_broken.up.sql:5: UNIQUE constraint failed: t2.x");
    assert_int_equal (report.steps_run, 0);
    assert_int_equal (report.failed_step, 2);
    assert_int_equal (s_version (f->db, set), 1);
    assert_int_equal (s_query (f->db, "SELECT count(*) FROM sqlite_master WHERE name = 't2'"), 0);
    al_migration_set_destroy (&set);
}

static void
test_script_cannot_escape_its_transaction (void **state)
{
    fixture_t *f = *state;
    static const struct {
        const char *script;
        const char *expected;
    } cases [] = {
        { "CREATE TABLE t2 (x);\nCOMMIT;\nDROP TABLE t1;\n",
          "002_b.up.sql:2: a migration script may not BEGIN, COMMIT or ROLLBACK" },
        { "CREATE TABLE t2 (x);\nROLLBACK;\n", "002_b.up.sql:2: a migration script may not BEGIN" },
        { "CREATE TABLE t2 (x);\nDELETE FROM _airlock_migrations;\n",
          "002_b.up.sql:2: a migration script may not change _airlock_migrations" },
        { "CREATE TABLE t2 (x);\nDROP TABLE _Airlock_Migrations;\n",
          "may not change _airlock_migrations" },
        { "ATTACH ':memory:' AS other;\n", "002_b.up.sql:1: a migration script may not ATTACH" },
    };
    s_write (f->set_dir, "001_a.up.sql", "CREATE TABLE t1 (x);\n");
    s_write (f->set_dir, "001_a.down.sql", "DROP TABLE t1;\n");
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        s_write (f->set_dir, "002_b.up.sql", cases [i].script);
        al_migration_set_t *set = s_load_ok (f->set_dir);
        char error [512] = "";
        assert_int_equal (al_migrate_up (f->db, set, AL_MIGRATE_LATEST, NULL, error, sizeof error), -1);
        s_assert_contains (error, cases [i].expected);
        assert_int_equal (s_version (f->db, set), 1);
        assert_int_equal (s_query (f->db, "SELECT count(*) FROM sqlite_master WHERE name = 't1'"), 1);
        assert_int_equal (s_query (f->db, "SELECT count(*) FROM sqlite_master WHERE name = 't2'"), 0);
        al_migration_set_destroy (&set);
    }
}

static void
test_edited_applied_step_is_refused (void **state)
{
    fixture_t *f = *state;
    s_copy_demo (f->set_dir);
    al_migration_set_t *set = s_load_ok (f->set_dir);
    char error [512] = "";
    assert_int_equal (al_migrate_up (f->db, set, AL_MIGRATE_LATEST, NULL, error, sizeof error), 0);
    al_migration_set_destroy (&set);

    //  Editing a down script is fine: only what ran (the up script) is recorded.
    char path [256];
    snprintf (path, sizeof path, "%s/002_add_price.down.sql", f->set_dir);
    size_t size;
    char *down = s_read (path, &size);
    s_write (f->set_dir, "002_add_price.down.sql", "-- reviewed again\n");
    FILE *out = fopen (path, "ab");
    assert_non_null (out);
    assert_int_equal (fwrite (down, 1, size, out), size);
    fclose (out);
    free (down);
    set = s_load_ok (f->set_dir);
    assert_int_equal (s_version (f->db, set), 2);
    al_migration_set_destroy (&set);

    //  One byte appended to an applied up script: everything refuses to run.
    snprintf (path, sizeof path, "%s/001_create_items.up.sql", f->set_dir);
    out = fopen (path, "ab");
    assert_non_null (out);
    fputs ("-- edited\n", out);
    fclose (out);
    set = s_load_ok (f->set_dir);
    unsigned version = 7;
    assert_int_equal (al_migrate_version (f->db, set, &version, error, sizeof error), -1);
    s_assert_contains (error, "applied step 001_create_items was edited after it was applied");
    s_assert_contains (error, "001_create_items.up.sql has");
    assert_int_equal (al_migrate_up (f->db, set, AL_MIGRATE_LATEST, NULL, error, sizeof error), -1);
    s_assert_contains (error, "001_create_items was edited");
    assert_int_equal (al_migrate_down (f->db, set, 0, NULL, error, sizeof error), -1);
    s_assert_contains (error, "001_create_items was edited");
    assert_int_equal (s_query (f->db, "SELECT count(*) FROM _airlock_migrations"), 2);
    assert_int_equal (s_query (f->db, "SELECT count(*) FROM pragma_table_info('items') "
                              "WHERE name = 'price_cents'"), 1);
    al_migration_set_destroy (&set);

    //  A database migrated by a newer set than the one at hand is refused too.
    char older [128], newer [128];
    snprintf (older, sizeof older, "%s/older", f->dir);
    snprintf (newer, sizeof newer, "%s/newer", f->dir);
    assert_int_equal (mkdir (older, 0700), 0);
    assert_int_equal (mkdir (newer, 0700), 0);
    s_copy_demo (older);
    s_copy_demo (newer);
    snprintf (path, sizeof path, "%s/002_add_price.up.sql", older);
    unlink (path);
    snprintf (path, sizeof path, "%s/002_add_price.down.sql", older);
    unlink (path);
    snprintf (path, sizeof path, "%s/fresh.db", f->dir);
    al_migration_set_t *full = s_load_ok (newer);
    al_migration_set_t *old = s_load_ok (older);
    assert_int_equal (al_migrate_up (path, full, AL_MIGRATE_LATEST, NULL, error, sizeof error), 0);
    assert_int_equal (al_migrate_up (path, old, AL_MIGRATE_LATEST, NULL, error, sizeof error), -1);
    s_assert_contains (error, "step 002_add_price is applied but the migration set ends at 001");
    al_migration_set_destroy (&full);
    al_migration_set_destroy (&old);
}

static void
test_down_needs_every_down_script (void **state)
{
    fixture_t *f = *state;
    s_write (f->set_dir, "001_a.up.sql", "-- airlock: forward-only\nCREATE TABLE a (x);\n");
    s_write (f->set_dir, "002_b.up.sql", "CREATE TABLE b (x);\n");
    s_write (f->set_dir, "002_b.down.sql", "DROP TABLE b;\n");
    s_write (f->set_dir, "003_c.up.sql", "-- airlock: forward-only\nCREATE TABLE c (x);\n");
    s_write (f->set_dir, "004_d.up.sql", "CREATE TABLE d (x);\n");
    s_write (f->set_dir, "004_d.down.sql", "DROP TABLE d;\n");
    al_migration_set_t *set = s_load_ok (f->set_dir);
    char error [512] = "";
    al_migrate_report_t report;
    assert_int_equal (al_migrate_up (f->db, set, AL_MIGRATE_LATEST, NULL, error, sizeof error), 0);
    //  Down to 0 would need 003 and 001: refused before 004 is touched.
    assert_int_equal (al_migrate_down (f->db, set, 0, &report, error, sizeof error), -1);
    s_assert_contains (error, "003_c, 001_a: no down script (forward-only); restore the backup");
    assert_int_equal (report.steps_run, 0);
    assert_int_equal (s_version (f->db, set), 4);
    assert_int_equal (s_query (f->db, "SELECT count(*) FROM sqlite_master WHERE name = 'd'"), 1);
    //  Down to 003 only needs 004's down script.
    assert_int_equal (al_migrate_down (f->db, set, 3, &report, error, sizeof error), 0);
    assert_int_equal (report.steps_run, 1);
    assert_int_equal (s_version (f->db, set), 3);
    assert_int_equal (s_query (f->db, "SELECT count(*) FROM sqlite_master WHERE name = 'd'"), 0);
    al_migration_set_destroy (&set);
}

//  Puts the demo schema with three items into f->db, in WAL mode like a live service.
static al_migration_set_t *
s_demo_database (fixture_t *f)
{
    s_copy_demo (f->set_dir);
    al_migration_set_t *set = s_load_ok (f->set_dir);
    char error [512] = "";
    s_exec (f->db, "PRAGMA journal_mode = WAL");
    assert_int_equal (al_migrate_up (f->db, set, AL_MIGRATE_LATEST, NULL, error, sizeof error), 0);
    s_exec (f->db, "INSERT INTO items (name, price_cents) VALUES "
                   "('widget-one', 100), ('widget-two', 200), ('widget-three', 300)");
    //  created_at has no index: damage there is invisible to integrity_check.
    s_exec (f->db, "UPDATE items SET created_at = 'stamp-unindexed' WHERE name = 'widget-one'");
    return set;
}

static void
test_backup_and_restore (void **state)
{
    fixture_t *f = *state;
    al_migration_set_t *set = s_demo_database (f);
    char error [512] = "";
    char text [64];
    char sha [AL_SHA256_HEX_SIZE] = "";
    assert_int_equal (al_backup_create (f->db, f->backup, sha, error, sizeof error), 0);
    assert_string_equal (error, "");
    char expected [AL_SHA256_HEX_SIZE];
    s_sha256_file (f->backup, expected);
    assert_string_equal (sha, expected);
    //  One self-contained file (rollback-journal mode in its header), no temporary left.
    size_t size;
    char *bytes = s_read (f->backup, &size);
    assert_true (size >= 4096);
    assert_int_equal (bytes [18], 1);
    assert_int_equal (bytes [19], 1);
    free (bytes);
    assert_int_equal (s_count_prefixed (f->dir, "service.backup.tmp-"), 0);
    assert_int_equal (s_query (f->backup, "SELECT sum(price_cents) FROM items"), 600);
    char again [AL_SHA256_HEX_SIZE] = "";
    assert_int_equal (al_backup_verify (f->backup, sha, again, error, sizeof error), 0);
    assert_string_equal (again, sha);

    //  The service keeps a connection open while its database is damaged and restored.
    sqlite3 *service = NULL;
    assert_int_equal (sqlite3_open (f->db, &service), SQLITE_OK);
    s_exec (f->db, "DROP TABLE items");
    assert_int_equal (s_query (f->db, "SELECT count(*) FROM sqlite_master WHERE name = 'items'"), 0);
    assert_int_equal (al_backup_restore (f->backup, sha, f->db, error, sizeof error), 0);
    assert_string_equal (error, "");
    assert_int_equal (s_query (f->db, "SELECT sum(price_cents) FROM items"), 600);
    s_query_text (f->db, "PRAGMA journal_mode", text, sizeof text);
    assert_string_equal (text, "wal");
    assert_int_equal (s_version (f->db, set), 2);
    sqlite3_stmt *stmt = NULL;
    assert_int_equal (sqlite3_prepare_v2 (service, "SELECT count(*) FROM items", -1, &stmt, NULL),
                      SQLITE_OK);
    assert_int_equal (sqlite3_step (stmt), SQLITE_ROW);
    assert_int_equal (sqlite3_column_int (stmt, 0), 3);
    sqlite3_finalize (stmt);
    assert_int_equal (sqlite3_prepare_v2 (service, "PRAGMA integrity_check", -1, &stmt, NULL),
                      SQLITE_OK);
    assert_int_equal (sqlite3_step (stmt), SQLITE_ROW);
    assert_string_equal ((const char *) sqlite3_column_text (stmt, 0), "ok");
    sqlite3_finalize (stmt);
    assert_int_equal (sqlite3_close (service), SQLITE_OK);

    //  Restoring into a database that is gone recreates it.
    char fresh [256];
    snprintf (fresh, sizeof fresh, "%s/fresh.db", f->dir);
    assert_int_equal (al_backup_restore (f->backup, NULL, fresh, error, sizeof error), 0);
    assert_int_equal (s_query (fresh, "SELECT count(*) FROM items"), 3);

    //  Backing up what does not exist fails and leaves nothing behind.
    char missing [256], target [256];
    snprintf (missing, sizeof missing, "%s/missing.db", f->dir);
    snprintf (target, sizeof target, "%s/missing.backup", f->dir);
    assert_int_equal (al_backup_create (missing, target, sha, error, sizeof error), -1);
    s_assert_contains (error, "missing.db: no such database");
    assert_int_equal (access (target, F_OK), -1);
    al_migration_set_destroy (&set);
}

//  Writes a copy of the backup with one byte changed at offset (or cut to size).
static void
s_damaged_copy (const char *backup, const char *copy, long offset, size_t cut_to)
{
    size_t size;
    char *bytes = s_read (backup, &size);
    assert_true (offset < (long) size);
    if (offset >= 0)
        bytes [offset] ^= 0x5a;
    FILE *out = fopen (copy, "wb");
    assert_non_null (out);
    size_t keep = cut_to ? cut_to : size;
    assert_int_equal (fwrite (bytes, 1, keep, out), keep);
    fclose (out);
    free (bytes);
}

static long
s_offset_of (const char *path, const char *needle)
{
    size_t size;
    char *bytes = s_read (path, &size);
    long offset = -1;
    size_t length = strlen (needle);
    for (size_t i = 0; i + length <= size; i++)
        if (memcmp (bytes + i, needle, length) == 0) {
            offset = (long) i;
            break;
        }
    free (bytes);
    assert_true (offset >= 0);
    return offset;
}

static void
test_corrupted_backup_is_refused (void **state)
{
    fixture_t *f = *state;
    al_migration_set_t *set = s_demo_database (f);
    char error [512] = "";
    char sha [AL_SHA256_HEX_SIZE];
    assert_int_equal (al_backup_create (f->db, f->backup, sha, error, sizeof error), 0);
    char copy [256];
    snprintf (copy, sizeof copy, "%s/damaged.backup", f->dir);

    //  The schema page's b-tree header (page 1, offset 100): structural damage.
    s_damaged_copy (f->backup, copy, 100, 0);
    assert_int_equal (al_backup_verify (copy, NULL, NULL, error, sizeof error), -1);
    s_assert_contains (error, "damaged.backup: integrity_check: ");
    //  The magic string: not a database at all.
    s_damaged_copy (f->backup, copy, 3, 0);
    assert_int_equal (al_backup_verify (copy, NULL, NULL, error, sizeof error), -1);
    s_assert_contains (error, "damaged.backup: integrity_check: file is not a database");
    //  The last page cut off.
    size_t size;
    free (s_read (f->backup, &size));
    s_damaged_copy (f->backup, copy, -1, size - 4096);
    assert_int_equal (al_backup_verify (copy, NULL, NULL, error, sizeof error), -1);
    s_assert_contains (error, "damaged.backup: integrity_check: ");
    //  An indexed value in the table: table and index disagree.
    s_damaged_copy (f->backup, copy, s_offset_of (f->backup, "widget-two"), 0);
    assert_int_equal (al_backup_verify (copy, NULL, NULL, error, sizeof error), -1);
    s_assert_contains (error, "integrity_check: row ");
    s_assert_contains (error, "missing from index items_by_name");
    //  A byte of unindexed text: a valid database, only the recorded SHA-256 can tell.
    s_damaged_copy (f->backup, copy, s_offset_of (f->backup, "stamp-unindexed"), 0);
    char damaged_sha [AL_SHA256_HEX_SIZE];
    assert_int_equal (al_backup_verify (copy, NULL, damaged_sha, error, sizeof error), 0);
    assert_string_not_equal (damaged_sha, sha);
    assert_int_equal (al_backup_verify (copy, sha, NULL, error, sizeof error), -1);
    s_assert_contains (error, "damaged.backup: SHA-256 ");
    s_assert_contains (error, "differs from the recorded");

    //  Restoring a damaged backup fails before the live database is touched.
    s_damaged_copy (f->backup, copy, 100, 0);
    assert_int_equal (al_backup_restore (copy, NULL, f->db, error, sizeof error), -1);
    s_assert_contains (error, "integrity_check: ");
    s_damaged_copy (f->backup, copy, s_offset_of (f->backup, "stamp-unindexed"), 0);
    assert_int_equal (al_backup_restore (copy, sha, f->db, error, sizeof error), -1);
    s_assert_contains (error, "differs from the recorded");
    s_exec (f->db, "INSERT INTO items (name) VALUES ('after-backup')");
    assert_int_equal (s_query (f->db, "SELECT count(*) FROM items"), 4);
    char text [64];
    s_query_text (f->db, "PRAGMA integrity_check", text, sizeof text);
    assert_string_equal (text, "ok");
    assert_int_equal (s_version (f->db, set), 2);
    al_migration_set_destroy (&set);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_demo_set_and_digest, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_invalid_sets, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_production_rule, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_up_down_up, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_failing_step_rolls_back_only_itself, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_script_cannot_escape_its_transaction, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_edited_applied_step_is_refused, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_down_needs_every_down_script, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_backup_and_restore, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_corrupted_backup_is_refused, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
