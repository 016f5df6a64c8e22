/*  cmd_store.c: `airlock store copy|compare`: move an audit log from SQLite to
    PostgreSQL and prove the copy holds exactly the source.

    A thin client of store/al_store_pg_copy.h. copy writes everything in one transaction
    into an empty PostgreSQL log and compares what was committed; compare can be re-run
    at any time (before switching airlock.yaml to store.backend postgres, or after).
    The connection string is taken from the command line, so it must not hold a
    password (every user can read a command line): libpq's passfile holds it.

    Exit codes: 0 copied and equal / equal; 1 the source's chain is broken or the copy
    differs; 2 usage, I/O or database error.
*/
#include "cli/cli.h"
#include "store/al_store_pg.h"
#include "store/al_store_pg_copy.h"
#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: airlock store copy    --db FILE --postgres DSN [--json]\n"
        "       airlock store compare --db FILE --postgres DSN [--json]\n\n"
        "  copy     copy the SQLite audit log FILE (events, deliveries, outbox, consumed\n"
        "           approvals, journal) into the empty PostgreSQL log DSN, in one\n"
        "           transaction, refusing a source whose hash chain is broken; then compare.\n"
        "           Stop the broker first. Afterwards set store: {backend: postgres,\n"
        "           dsn: DSN} in airlock.yaml.\n"
        "  compare  check that DSN holds exactly FILE: every event byte for byte with its\n"
        "           hash, every side-table row, and a chain that verifies on its own;\n"
        "           names the first difference\n\n"
        "  --db FILE       the SQLite audit database\n"
        "  --postgres DSN  a libpq connection string (\"host=db1 dbname=airlock user=airlock\n"
        "                  passfile=/etc/airlock/pgpass\"); never a password in it\n"
        "  --json          print the result as JSON\n"
        "exit 0 equal, 1 broken source or a copy that differs, 2 usage, I/O or database error\n");
}

static void
s_print (const char *command, al_store_status_t status, const al_store_copy_report_t *report,
         const char *db, const char *shown, bool json)
{
    char head [AL_STORE_HASH_SIZE * 2 + 1];
    sodium_bin2hex (head, sizeof head, report->head_hash, AL_STORE_HASH_SIZE);
    bool ok = status == AL_STORE_OK && report->equal;
    if (json) {
        json_t *root = json_pack ("{s:s, s:b, s:s, s:s, s:I, s:s, s:I, s:I, s:I, s:I, s:I, s:s}",
                                  "command", command, "equal", ok, "source", db, "target", shown,
                                  "rows", (json_int_t) report->rows, "head_hash", head,
                                  "deliveries", (json_int_t) report->deliveries,
                                  "outbox", (json_int_t) report->outbox,
                                  "approvals", (json_int_t) report->approvals,
                                  "journal", (json_int_t) report->journal,
                                  "first_bad_sequence", (json_int_t) report->first_bad_sequence,
                                  "reason", ok? "": report->reason);
        if (root) {
            char *text = json_dumps (root, JSON_SORT_KEYS);
            if (text)
                printf ("%s\n", text);
            free (text);
            json_decref (root);
        }
        return;
    }
    if (ok)
        printf ("store %s: OK: %s and %s hold the same %llu rows (head %s), %llu deliveries, "
                "%llu outbox items, %llu consumed approvals, %llu journal entries\n",
                command, db, shown, (unsigned long long) report->rows, head,
                (unsigned long long) report->deliveries, (unsigned long long) report->outbox,
                (unsigned long long) report->approvals, (unsigned long long) report->journal);
    else
    if (status == AL_STORE_OK || status == AL_STORE_ERR_HEAD_MISMATCH)
        printf ("store %s: DIFFERENT: %s\n", command, report->reason);
    else
        fprintf (stderr, "airlock store %s: %s\n", command, report->reason);
}

int
al_cmd_store (int argc, char **argv)
{
    if (al_cli_wants_help (argc, argv)) {
        s_usage (stdout);
        return AL_EXIT_OK;
    }
    if (argc < 2 || (strcmp (argv [1], "copy") != 0 && strcmp (argv [1], "compare") != 0)) {
        s_usage (stderr);
        return AL_EXIT_USAGE;
    }
    const char *command = argv [1];
    const char *db = NULL, *dsn = NULL;
    const al_cli_option_t options [] = {
        { "--db", .value = &db }, { "--postgres", .value = &dsn }, { .name = NULL }
    };
    char name [32];
    snprintf (name, sizeof name, "store %s", command);
    const al_cli_parser_t parser = { name, s_usage, .json = true, .options = options };
    al_cli_common_t common;
    //  argv [1] is copy or compare: the options follow it.
    if (al_cli_parse (&parser, argc - 1, argv + 1, &common) != 0)
        return AL_EXIT_USAGE;
    bool json = common.json;
    if (!db || !dsn) {
        fprintf (stderr, "airlock store %s: --db FILE and --postgres DSN are both required\n", command);
        return AL_EXIT_USAGE;
    }
    char why [256];
    int password = al_store_pg_dsn_has_password (dsn, why, sizeof why);
    if (password != 0) {
        fprintf (stderr, "airlock store %s: --postgres: %s\n", command,
                 password < 0? why: "holds a password, which every user can read on a command line; "
                                    "use a passfile (passfile=FILE)");
        return AL_EXIT_USAGE;
    }
    char *shown = al_store_pg_dsn_display (dsn);
    if (!shown) {
        fprintf (stderr, "airlock store %s: out of memory\n", command);
        return AL_EXIT_USAGE;
    }
    al_store_copy_report_t report;
    al_store_status_t status = strcmp (command, "copy") == 0
                             ? al_store_pg_copy_from_sqlite (db, dsn, &report)
                             : al_store_pg_compare_with_sqlite (db, dsn, &report);
    s_print (command, status, &report, db, shown, json);
    free (shown);
    if (status == AL_STORE_OK && report.equal)
        return AL_EXIT_OK;
    if (status == AL_STORE_OK || status == AL_STORE_ERR_HEAD_MISMATCH)
        return AL_EXIT_BAD;
    return AL_EXIT_USAGE;
}
