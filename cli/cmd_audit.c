/*  cmd_audit.c: `airlock audit verify|export`: the auditor's read-only view of the log.

    A thin client of store/al_store.h. Both subcommands open the database read-only, so
    they run against a live broker's log or a copy. verify exits 0 when the chain (and
    the checkpoint, if given) holds, 1 when it does not (tampered, truncated, a bad
    checkpoint), 2 on usage or I/O errors; export prints one JSON object per event.
*/
#include "cli/cli.h"
#include "store/al_store.h"
#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define S_DEFAULT_DB "./airlock-audit.db"

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: airlock audit verify [--db FILE] [--checkpoint FILE [--key KEY]] [--json]\n"
        "       airlock audit export [--db FILE] [--from SEQ]\n\n"
        "  verify  recompute the whole hash chain; report the first bad row. With a\n"
        "          signed checkpoint, also detect truncation and rewrites up to it.\n"
        "          exit 0 intact, 1 tampered (or bad checkpoint), 2 usage or I/O error\n"
        "  export  print every event as one JSON object per line\n\n"
        "  --db FILE          the audit database (default " S_DEFAULT_DB ")\n"
        "  --checkpoint FILE  a checkpoint written by the broker (JSON)\n"
        "  --key KEY          the broker's Ed25519 public key, 64 hex digits or a file\n"
        "                     holding them; without it the checkpoint's own key is trusted\n"
        "  --json             print the verdict as JSON\n"
        "  --from SEQ         export from this sequence number (default 1)\n");
}

//  Option value after argv[*index], or NULL (usage error printed).
static const char *
s_value (int argc, char **argv, int *index)
{
    if (*index + 1 >= argc) {
        fprintf (stderr, "airlock audit: %s needs a value\n", argv [*index]);
        return NULL;
    }
    return argv [++*index];
}

//  Reads a public key given as hex or as a file holding hex. 0 on success.
static int
s_read_key (const char *text, uint8_t key [32])
{
    char buffer [256];
    size_t length = 0;
    if (strlen (text) != 64) {
        FILE *file = fopen (text, "r");
        if (!file) {
            fprintf (stderr, "airlock audit: --key %s: not 64 hex digits and not a readable file\n", text);
            return -1;
        }
        size_t got = fread (buffer, 1, sizeof buffer - 1, file);
        fclose (file);
        buffer [got] = '\0';
        buffer [strcspn (buffer, " \t\r\n")] = '\0';
        text = buffer;
    }
    if (sodium_hex2bin (key, 32, text, strlen (text), NULL, &length, NULL) != 0 || length != 32
    ||  strlen (text) != 64) {
        fprintf (stderr, "airlock audit: --key: not an Ed25519 public key (64 hex digits)\n");
        return -1;
    }
    return 0;
}

static void
s_print_json (const al_verify_report_t *report, const char *db, const char *checkpoint)
{
    bool ok = report->result == AL_VERIFY_OK;
    char head [AL_STORE_HASH_SIZE * 2 + 1];
    sodium_bin2hex (head, sizeof head, report->head_hash, AL_STORE_HASH_SIZE);
    json_t *checkpoint_json = json_null ();
    if (checkpoint) {
        char key [65];
        sodium_bin2hex (key, sizeof key, report->checkpoint_key, sizeof report->checkpoint_key);
        checkpoint_json = json_pack ("{s:s, s:b, s:I, s:s}", "path", checkpoint,
                                     "holds", report->checkpoint_checked,
                                     "row_count", (json_int_t) report->checkpoint_rows,
                                     "public_key", key);
    }
    json_t *root = json_pack ("{s:b, s:s, s:s, s:I, s:o, s:s, s:s, s:o}",
                              "ok", ok, "db", db, "result", al_verify_result_name (report->result),
                              "rows", (json_int_t) report->rows,
                              "first_bad_sequence", report->first_bad_sequence
                                  ? json_integer ((json_int_t) report->first_bad_sequence): json_null (),
                              "reason", report->reason, "head_hash", head,
                              "checkpoint", checkpoint_json? checkpoint_json: json_null ());
    if (root)
        json_dumpf (root, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
    printf ("\n");
    json_decref (root);
}

static int
s_verify (int argc, char **argv)
{
    const char *db = S_DEFAULT_DB;
    const char *checkpoint = NULL;
    const char *key_text = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp (argv [i], "--db") == 0) {
            if (!(db = s_value (argc, argv, &i)))
                return AL_EXIT_USAGE;
        }
        else
        if (strcmp (argv [i], "--checkpoint") == 0) {
            if (!(checkpoint = s_value (argc, argv, &i)))
                return AL_EXIT_USAGE;
        }
        else
        if (strcmp (argv [i], "--key") == 0) {
            if (!(key_text = s_value (argc, argv, &i)))
                return AL_EXIT_USAGE;
        }
        else
        if (strcmp (argv [i], "--json") == 0)
            json = true;
        else {
            fprintf (stderr, "airlock audit verify: unexpected argument '%s'\n", argv [i]);
            s_usage (stderr);
            return AL_EXIT_USAGE;
        }
    }
    if (key_text && !checkpoint) {
        fprintf (stderr, "airlock audit verify: --key needs --checkpoint\n");
        return AL_EXIT_USAGE;
    }
    uint8_t key [32];
    if (key_text && s_read_key (key_text, key) != 0)
        return AL_EXIT_USAGE;
    al_verify_report_t report;
    al_store_status_t status = al_store_verify_path (NULL, db, checkpoint, key_text? key: NULL, &report);
    if (json)
        s_print_json (&report, db, checkpoint);
    if (status != AL_STORE_OK) {
        fprintf (stderr, "airlock audit verify: %s\n", report.reason);
        return AL_EXIT_USAGE;
    }
    if (!json) {
        if (report.result == AL_VERIFY_OK)
            printf ("audit verify: OK: %s: %s\n", db, report.reason);
        else
        if (report.first_bad_sequence)
            printf ("audit verify: TAMPERED: %s: %s at row %llu: %s\n", db, al_verify_result_name (report.result),
                    (unsigned long long) report.first_bad_sequence, report.reason);
        else
            printf ("audit verify: TAMPERED: %s: %s: %s\n", db, al_verify_result_name (report.result),
                    report.reason);
    }
    return report.result == AL_VERIFY_OK? AL_EXIT_OK: AL_EXIT_BAD;
}

static int
s_export (int argc, char **argv)
{
    const char *db = S_DEFAULT_DB;
    uint64_t from = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp (argv [i], "--db") == 0) {
            if (!(db = s_value (argc, argv, &i)))
                return AL_EXIT_USAGE;
        }
        else
        if (strcmp (argv [i], "--from") == 0) {
            const char *value = s_value (argc, argv, &i);
            char *end = NULL;
            if (!value || (from = strtoull (value, &end, 10), *end) || from == 0) {
                fprintf (stderr, "airlock audit export: --from needs a sequence number >= 1\n");
                return AL_EXIT_USAGE;
            }
        }
        else {
            fprintf (stderr, "airlock audit export: unexpected argument '%s'\n", argv [i]);
            s_usage (stderr);
            return AL_EXIT_USAGE;
        }
    }
    char error [512];
    al_store_options_t options = { .read_only = true };
    al_store_t *store = al_store_open (NULL, db, &options, error, sizeof error);
    if (!store) {
        fprintf (stderr, "airlock audit export: %s\n", error);
        return AL_EXIT_USAGE;
    }
    int rc = AL_EXIT_OK;
    if (al_store_export_json (store, from, stdout) != AL_STORE_OK || fflush (stdout) != 0) {
        fprintf (stderr, "airlock audit export: %s\n", al_store_error (store));
        rc = AL_EXIT_USAGE;
    }
    al_store_destroy (&store);
    return rc;
}

int
al_cmd_audit (int argc, char **argv)
{
    if (argc < 2) {
        s_usage (stderr);
        return AL_EXIT_USAGE;
    }
    if (al_cli_wants_help (argc, argv) || strcmp (argv [1], "help") == 0) {
        s_usage (stdout);
        return AL_EXIT_OK;
    }
    if (strcmp (argv [1], "verify") == 0)
        return s_verify (argc - 1, argv + 1);
    if (strcmp (argv [1], "export") == 0)
        return s_export (argc - 1, argv + 1);
    fprintf (stderr, "airlock audit: unknown subcommand '%s'\n", argv [1]);
    s_usage (stderr);
    return AL_EXIT_USAGE;
}
