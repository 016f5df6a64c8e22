/*  cmd_audit.c: `airlock audit verify|replay|history|export`: the auditor's read-only view
    of the log, on either store backend.

    A thin client of store/ (al_store.h, al_replay.h, al_signature_audit.h,
    al_cloudevents.h) and of agents/al_audit_view.h (approver names, the signers that
    counted, the live state read through its owners): it parses and prints. Every subcommand opens the database read-only, so it runs
    against a live broker's log or a copy. The log is --db FILE (SQLite), --postgres DSN
    (PostgreSQL, no password in it), else the one airlock.yaml's store section names
    (--config FILE, --state DIR, $AIRLOCK_CONFIG, else ./airlock-state/airlock.yaml: the
    lookup of every command). A configuration also
    gives the policy directory (approver names) and the state directory (the live state
    replay compares itself with).

    Exit codes: 0 the log holds (verify), the replay agrees with the live state
    (replay), the output was written (history, export); 1 tampered, a signature that
    does not verify, a disagreement, a deployment not in the log; 2 usage or I/O error.
*/
#include "cli/cli.h"
#include "agents/al_audit_view.h"
#include "base/al_config.h"
#include "policies/al_policy.h"
#include "store/al_cloudevents.h"
#include "store/al_replay.h"
#include "store/al_signature_audit.h"
#include "store/al_store.h"
#include "store/al_store_pg.h"
#include <assert.h>
#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: airlock audit verify  [SOURCE] [--checkpoint FILE [--key KEY]] [--json]\n"
        "       airlock audit replay  [SOURCE] [--deployment ID] [--as-of TIME] [--json]\n"
        "       airlock audit history [SOURCE] [--service S] [--policy DIR] [--json]\n"
        "       airlock audit export  [SOURCE] [--format jsonl|cloudevents] [--from SEQ]\n\n"
        "  verify   recompute the whole hash chain and report the first bad row; with a\n"
        "           signed checkpoint, also detect truncation and rewrites up to it. Then\n"
        "           verify again every approval signature the log relies on (accepted\n"
        "           SignedApproval rows and the approvals inside each grant).\n"
        "           The last line is the verdict: OK, TAMPERED or SIGNATURES FAILED.\n"
        "           exit 0 intact, 1 tampered / a checkpoint that does not verify / bad\n"
        "           signature, 2 usage or I/O error or a file that is not a checkpoint\n"
        "  replay   re-derive every deployment's state and timeline from the events alone\n"
        "           (request, denials, approvals, grant, journal, receipt). With a configuration\n"
        "           and no --as-of, compare with the live state (deploy-manager's receipts,\n"
        "           the orchestrator's release files): exit 1 on any disagreement\n"
        "  history  seed 001's deployment history table, one row per deployment\n"
        "  export   every event, one JSON object per line (jsonl, the default) or one\n"
        "           CloudEvents 1.0 event per line (cloudevents)\n\n"
        "  SOURCE is --db FILE (the audit database; alone, only that file is read) or\n"
        "  --postgres DSN (a log on PostgreSQL: a libpq connection string, no password) and/or\n"
        "  --state DIR | --config FILE (airlock.yaml: its database, policy and state\n"
        "  directories); default: $AIRLOCK_CONFIG, else ./airlock-state/airlock.yaml\n"
        "  --checkpoint FILE  a checkpoint written by the broker (JSON)\n"
        "  --key KEY          the broker's Ed25519 public key, 64 hex digits or a file\n"
        "                     holding them; without it the checkpoint's own key is trusted\n"
        "  --deployment ID    only this deployment (e.g. rel-api-1-prod)\n"
        "  --as-of TIME       replay only the rows recorded up to TIME: RFC 3339\n"
        "                     (2026-02-01T10:00:00Z) or epoch milliseconds\n"
        "  --service S        only this service's deployments\n"
        "  --policy DIR       the policy directory, for approver names (default: the\n"
        "                     configuration's)\n"
        "  --from SEQ         export from this sequence number (default 1)\n"
        "  --json             print the result as JSON\n");
}

//  Where the log is, and the configuration when one was given.
typedef struct {
    const char *db_option;
    const char *config_path;        // --config
    const char *state_path;         // --state
    char config_buffer [2048];
    al_config_t *config;
    const char *db;                 // resolved: the file, or the connection string
    const char *pg_option;          // --postgres DSN
    const char *backend;            // resolved: "sqlite" or "postgres"
} s_source_t;

//  Reads argv into SOURCE (--db, --postgres, --config, --state) and OPTIONS (ended by a
//  { NULL } row) with al_cli_parse, the same way for every subcommand. 0, or -1 after
//  saying what is wrong on stderr.
static int
s_parse (int argc, char **argv, const char *command, s_source_t *source,
         const al_cli_option_t *options)
{
    al_cli_option_t table [16] = {
        { "--db", .value = &source->db_option }, { "--postgres", .value = &source->pg_option }
    };
    size_t count = 2;
    for (const al_cli_option_t *option = options; option->name; option++) {
        assert (count + 1 < sizeof table / sizeof table [0]);
        table [count++] = *option;
    }
    char name [32];
    snprintf (name, sizeof name, "audit %s", command);
    const al_cli_parser_t parser = { name, s_usage, .config = true, .options = table };
    al_cli_common_t common;
    if (al_cli_parse (&parser, argc, argv, &common) != 0)
        return -1;
    source->config_path = common.config_option;
    source->state_path = common.state_option;
    return 0;
}

static int
s_source_open (s_source_t *source, const char *command)
{
    if (source->db_option && source->pg_option) {
        fprintf (stderr, "airlock audit %s: --db and --postgres name two logs: give one\n", command);
        return -1;
    }
    if (source->pg_option) {
        //  The connection string is printed with the results: it must not hold a password.
        char why [256];
        int password = al_store_pg_dsn_has_password (source->pg_option, why, sizeof why);
        if (password != 0) {
            fprintf (stderr, "airlock audit %s: --postgres: %s\n", command,
                     password < 0? why: "holds a password; use a passfile (passfile=FILE)");
            return -1;
        }
    }
    const char *direct = source->db_option? source->db_option: source->pg_option;
    if (!direct || source->config_path || source->state_path) {
        source->config_path = al_cli_config_path (source->config_path, source->state_path, source->config_buffer,
                                                  sizeof source->config_buffer);
        if (!source->config_path) {
            fprintf (stderr, "airlock audit %s: --state: path too long\n", command);
            return -1;
        }
        char error [512];
        source->config = al_config_load (source->config_path, error, sizeof error);
        if (!source->config) {
            fprintf (stderr, "airlock audit %s: %s\n", command, error);
            return -1;
        }
    }
    if (direct) {
        source->db = direct;
        source->backend = source->pg_option? AL_STORE_PG_BACKEND: "sqlite";
    }
    else {
        source->db = al_config_store_location (source->config);
        source->backend = al_config_store_backend (source->config);
    }
    return 0;
}

static al_store_t *
s_store_open (const s_source_t *source, const char *command)
{
    char error [512];
    al_store_options_t options = { .read_only = true };
    al_store_t *store = al_store_open (source->backend, source->db, &options, error, sizeof error);
    if (!store)
        fprintf (stderr, "airlock audit %s: %s\n", command, error);
    return store;
}

//  The policy for approver names: --policy DIR, else the configuration's; NULL (with a
//  note on stderr) when it cannot be loaded: names are a convenience, key ids suffice.
static al_policy_t *
s_policy_open (const char *dir, const s_source_t *source, const char *command)
{
    if (!dir && source->config)
        dir = al_config_policy_dir (source->config);
    if (!dir)
        return NULL;
    al_policy_errors_t *errors = NULL;
    al_policy_t *policy = al_policy_load (dir, &errors);
    if (!policy)
        fprintf (stderr, "airlock audit %s: note: approver names unknown: %s\n", command,
                 errors && al_policy_errors_count (errors)? al_policy_errors_at (errors, 0): dir);
    al_policy_errors_destroy (&errors);
    return policy;
}

//  A time, or "-" when there is none.
static void
s_format_time (uint64_t time_ms, char *out, size_t size)
{
    if (!time_ms)
        snprintf (out, size, "-");
    else
        al_store_format_time (time_ms, out, size);
}

static void
s_format_duration (uint64_t ms, char *out, size_t size)
{
    if (ms < 60000)
        snprintf (out, size, "%.1fs", (double) ms / 1000.0);
    else
    if (ms < 3600000)
        snprintf (out, size, "%llum %02llus", (unsigned long long) (ms / 60000),
                  (unsigned long long) (ms / 1000 % 60));
    else
        snprintf (out, size, "%lluh %02llum", (unsigned long long) (ms / 3600000),
                  (unsigned long long) (ms / 60000 % 60));
}

//  ---- verify -------------------------------------------------------------------------------

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

//  Signature failures, kept for the report.
typedef struct {
    json_t *failures;               // [{sequence, what}]
    bool json;
} s_sig_failures_t;

static void
s_on_bad_signature (uint64_t sequence, const char *what, void *arg)
{
    s_sig_failures_t *failures = (s_sig_failures_t *) arg;
    if (!failures->json)
        printf ("audit verify: BAD SIGNATURE at row %llu: %s\n", (unsigned long long) sequence, what);
    json_array_append_new (failures->failures, json_pack ("{s:I, s:s}", "sequence", (json_int_t) sequence,
                                                          "what", what));
}

static void
s_print_json (const al_verify_report_t *report, const char *db, const char *checkpoint,
              const al_signature_audit_t *signatures, json_t *failures)
{
    bool ok = report->result == AL_VERIFY_OK && signatures && signatures->failures == 0;
    char head [AL_STORE_HASH_SIZE * 2 + 1];
    sodium_bin2hex (head, sizeof head, report->head_hash, AL_STORE_HASH_SIZE);
    json_t *checkpoint_json = json_null ();
    if (checkpoint) {
        char key [65];
        sodium_bin2hex (key, sizeof key, report->checkpoint_key, sizeof report->checkpoint_key);
        checkpoint_json = json_pack ("{s:s, s:b, s:b, s:I, s:s}", "path", checkpoint,
                                     "holds", report->checkpoint_checked,
                                     "malformed", report->checkpoint_malformed,
                                     "row_count", (json_int_t) report->checkpoint_rows,
                                     "public_key", key);
    }
    json_t *signatures_json = signatures
        ? json_pack ("{s:I, s:I, s:I, s:I, s:O}", "approvals", (json_int_t) signatures->approvals,
                     "grants", (json_int_t) signatures->grants,
                     "grant_approvals", (json_int_t) signatures->grant_approvals,
                     "failed", (json_int_t) signatures->failures, "failures", failures)
        : json_null ();
    json_t *root = json_pack ("{s:b, s:s, s:s, s:I, s:o, s:s, s:s, s:o, s:o}",
                              "ok", ok, "db", db, "result", al_verify_result_name (report->result),
                              "rows", (json_int_t) report->rows,
                              "first_bad_sequence", report->first_bad_sequence
                                  ? json_integer ((json_int_t) report->first_bad_sequence): json_null (),
                              "reason", report->reason, "head_hash", head,
                              "checkpoint", checkpoint_json? checkpoint_json: json_null (),
                              "signatures", signatures_json? signatures_json: json_null ());
    if (root)
        json_dumpf (root, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
    printf ("\n");
    json_decref (root);
}

static int
s_verify (int argc, char **argv)
{
    s_source_t source = { 0 };
    const char *checkpoint = NULL;
    const char *key_text = NULL;
    bool json = false;
    const al_cli_option_t options [] = {
        { "--checkpoint", .value = &checkpoint }, { "--key", .value = &key_text },
        { "--json", .flag = &json }, { .name = NULL }
    };
    if (s_parse (argc, argv, "verify", &source, options) != 0)
        return AL_EXIT_USAGE;
    if (key_text && !checkpoint) {
        fprintf (stderr, "airlock audit verify: --key needs --checkpoint\n");
        return AL_EXIT_USAGE;
    }
    uint8_t key [32];
    if (key_text && s_read_key (key_text, key) != 0)
        return AL_EXIT_USAGE;
    if (s_source_open (&source, "verify") != 0)
        return AL_EXIT_USAGE;
    int rc = AL_EXIT_USAGE;
    al_store_t *store = NULL;
    s_sig_failures_t failures = { .failures = json_array (), .json = json };
    al_verify_report_t report;
    al_store_status_t status = al_store_verify_path (source.backend, source.db, checkpoint, key_text? key: NULL, &report);
    if (status != AL_STORE_OK) {
        if (json)
            s_print_json (&report, source.db, checkpoint, NULL, failures.failures);
        fprintf (stderr, "airlock audit verify: %s\n", report.reason);
        goto cleanup;
    }
    //  A file that is not a checkpoint at all is a usage error, not evidence of tampering;
    //  a well-formed checkpoint that does not verify is (below). A broken chain comes first.
    if (report.result == AL_VERIFY_BAD_CHECKPOINT && report.checkpoint_malformed) {
        if (json)
            s_print_json (&report, source.db, checkpoint, NULL, failures.failures);
        fprintf (stderr, "airlock audit verify: not a checkpoint file: %s\n", report.reason);
        goto cleanup;
    }
    if (!json) {
        if (report.result == AL_VERIFY_OK)
            printf ("audit verify: OK: %s: %s\n", source.db, report.reason);
        else
        if (report.first_bad_sequence)
            printf ("audit verify: TAMPERED: %s: %s at row %llu: %s\n", source.db,
                    al_verify_result_name (report.result), (unsigned long long) report.first_bad_sequence,
                    report.reason);
        else
            printf ("audit verify: TAMPERED: %s: %s: %s\n", source.db, al_verify_result_name (report.result),
                    report.reason);
    }
    //  The chain says the rows are as written; the signatures say the approvals in them
    //  are genuine. Checked even when the chain failed: both findings belong in the report.
    //  A log that failed the chain stays exit 1 if the signatures cannot be read.
    al_signature_audit_t signatures;
    rc = report.result == AL_VERIFY_OK? AL_EXIT_USAGE: AL_EXIT_BAD;
    store = s_store_open (&source, "verify");
    if (!store)
        goto cleanup;
    if (al_signature_audit_run (store, s_on_bad_signature, &failures, &signatures) != AL_STORE_OK) {
        fprintf (stderr, "airlock audit verify: signatures: %s\n", al_store_error (store));
        goto cleanup;
    }
    if (json)
        s_print_json (&report, source.db, checkpoint, &signatures, failures.failures);
    else
    if (signatures.failures == 0 && report.result != AL_VERIFY_OK)
        //  Never "OK" next to TAMPERED: signatures over rows the chain does not hold prove
        //  nothing about those rows.
        printf ("audit verify: signatures not trusted: %llu approval(s) and %llu grant(s) verify over their "
                "statement bytes, but the log is TAMPERED\n", (unsigned long long) signatures.approvals,
                (unsigned long long) signatures.grants);
    else
    if (signatures.failures == 0)
        printf ("audit verify: signatures OK: %llu approval(s) and %llu grant(s) holding %llu approval(s) "
                "verify over their statement bytes\n", (unsigned long long) signatures.approvals,
                (unsigned long long) signatures.grants, (unsigned long long) signatures.grant_approvals);
    else
        printf ("audit verify: SIGNATURES FAILED: %llu row(s) of %llu approval(s) and %llu grant(s); first at "
                "row %llu\n", (unsigned long long) signatures.failures, (unsigned long long) signatures.approvals,
                (unsigned long long) signatures.grants, (unsigned long long) signatures.first_bad_sequence);
    rc = report.result == AL_VERIFY_OK && signatures.failures == 0? AL_EXIT_OK: AL_EXIT_BAD;
    if (!json)
        printf ("audit verify: verdict: %s\n", report.result != AL_VERIFY_OK? "TAMPERED"
                : signatures.failures? "SIGNATURES FAILED": "OK");
cleanup:
    json_decref (failures.failures);
    al_store_destroy (&store);
    al_config_destroy (&source.config);
    return rc;
}

//  ---- replay -------------------------------------------------------------------------------

typedef struct {
    json_t *list;                   // [{subject, what}]
    bool json;
} s_disagreements_t;

static void
s_on_disagreement (const char *subject, const char *what, void *arg)
{
    s_disagreements_t *disagreements = (s_disagreements_t *) arg;
    json_array_append_new (disagreements->list, json_pack ("{s:s, s:s}", "subject", subject, "what", what));
}

static void
s_print_deployment (const al_replay_deployment_t *d, const al_policy_t *policy)
{
    char state [160], when [48], duration [32];
    al_replay_state_text (d, state, sizeof state);
    printf ("%s  %s  %s%s%s%s%s%s  state: %s%s%s\n", d->id, *d->environment? d->environment: "(no environment)",
            *d->service? d->service: "(no request in the log)", *d->version? " ": "", d->version,
            *d->deployment_type? " (": "", d->deployment_type, *d->deployment_type? ")": "", state,
            *d->detail? ": ": "", d->detail);
    if (d->requested_ms) {
        s_format_time (d->requested_ms, when, sizeof when);
        printf ("  requested by %s at %s (row %llu)%s%s\n", d->requested_by, when,
                (unsigned long long) d->request_sequence, *d->artifact_sha256? ", artifact sha256 ": "",
                d->artifact_sha256);
    }
    for (size_t i = 0; i < d->approval_count; i++) {
        const al_replay_approval_t *a = &d->approvals [i];
        const char *name = al_audit_approver_name (policy, a->public_key);
        printf ("  approval: %s by %s%s%s%s via %s, row %llu%s%s%s\n", a->decision, a->key_id,
                name? " (": "", name? name: "", name? ")": "", a->sender, (unsigned long long) a->sequence,
                a->in_grant? ", in the grant": "", a->break_glass? ", break-glass": "",
                a->signature_valid? "": ", SIGNATURE DOES NOT VERIFY");
    }
    if (d->receipt_sequence) {
        printf ("  receipt: %s%s%s, sha256 %s (row %llu)\n", d->receipt_outcome, *d->rollback_rule? ", rule ": "",
                d->rollback_rule, d->receipt_sha256, (unsigned long long) d->receipt_sequence);
    }
    if (d->started_ms && d->finished_ms >= d->started_ms) {
        s_format_duration (d->finished_ms - d->started_ms, duration, sizeof duration);
        printf ("  ran for %s\n", duration);
    }
    for (size_t i = 0; i < d->entry_count; i++) {
        const al_replay_entry_t *e = &d->entries [i];
        s_format_time (e->time_ms, when, sizeof when);
        printf ("  %6llu  %s  %-8s  %s\n", (unsigned long long) e->sequence, when, al_replay_kind_name (e->kind),
                e->text);
    }
    printf ("\n");
}

static int
s_replay (int argc, char **argv)
{
    s_source_t source = { 0 };
    const char *only = NULL, *as_of_text = NULL, *policy_dir = NULL;
    uint64_t as_of = 0;
    bool json = false;
    const al_cli_option_t options [] = {
        { "--deployment", .value = &only }, { "--as-of", .value = &as_of_text },
        { "--policy", .value = &policy_dir }, { "--json", .flag = &json }, { .name = NULL }
    };
    if (s_parse (argc, argv, "replay", &source, options) != 0)
        return AL_EXIT_USAGE;
    if (as_of_text && !al_replay_parse_time (as_of_text, &as_of)) {
        fprintf (stderr, "airlock audit replay: --as-of '%s': not an RFC 3339 time "
                 "(2026-02-01T10:00:00Z) nor epoch milliseconds\n", as_of_text);
        return AL_EXIT_USAGE;
    }
    if (s_source_open (&source, "replay") != 0)
        return AL_EXIT_USAGE;
    int rc = AL_EXIT_USAGE;
    char error [512];
    al_replay_t *replay = NULL;
    al_policy_t *policy = NULL;
    s_disagreements_t disagreements = { .list = json_array (), .json = json };
    json_t *root = NULL;
    al_store_t *store = s_store_open (&source, "replay");
    if (!store)
        goto cleanup;
    replay = al_replay_new (store, as_of, error, sizeof error);
    if (!replay) {
        fprintf (stderr, "airlock audit replay: %s\n", error);
        goto cleanup;
    }
    policy = s_policy_open (policy_dir, &source, "replay");
    if (only && !al_replay_find (replay, only)) {
        fprintf (stderr, "airlock audit replay: no deployment %s in %s (%llu rows replayed)\n", only, source.db,
                 (unsigned long long) al_replay_rows (replay));
        rc = AL_EXIT_BAD;
        goto cleanup;
    }
    //  The live state is now: it can only be compared with a replay of the whole log.
    bool compare = source.config && !as_of;
    al_replay_live_t live = { 0 };
    if (compare) {
        al_replay_live_source_t live_source;
        al_audit_live_source (al_config_state_dir (source.config), &live_source);
        al_replay_compare_live (replay, &live_source, s_on_disagreement, &disagreements, &live);
    }
    char as_of_when [48];
    s_format_time (as_of, as_of_when, sizeof as_of_when);
    if (json) {
        json_t *deployments = json_array ();
        for (size_t i = 0; i < al_replay_count (replay); i++) {
            const al_replay_deployment_t *d = al_replay_at (replay, i);
            if (!only || strcmp (d->id, only) == 0)
                json_array_append_new (deployments, al_audit_deployment_json (d, policy));
        }
        root = json_pack ("{s:s, s:o, s:I, s:o, s:o}", "db", source.db,
                          "as_of", as_of? json_string (as_of_when): json_null (),
                          "rows", (json_int_t) al_replay_rows (replay), "deployments", deployments,
                          "live", compare? json_pack ("{s:b, s:I, s:I, s:O}", "agrees", live.disagreements == 0,
                                                      "receipts", (json_int_t) live.receipts,
                                                      "releases", (json_int_t) live.releases,
                                                      "disagreements", disagreements.list)
                                         : json_null ());
        if (root)
            json_dumpf (root, stdout, JSON_INDENT (2) | JSON_PRESERVE_ORDER);
        printf ("\n");
    }
    else {
        for (size_t i = 0; i < al_replay_count (replay); i++) {
            const al_replay_deployment_t *d = al_replay_at (replay, i);
            if (!only || strcmp (d->id, only) == 0)
                s_print_deployment (d, policy);
        }
        printf ("replay: %llu rows, %zu deployment(s)%s%s\n", (unsigned long long) al_replay_rows (replay),
                al_replay_count (replay), as_of? ", as of ": "", as_of? as_of_when: "");
        if (compare && live.disagreements == 0)
            printf ("replay agrees with live state: %zu receipt(s) match deploy-manager's evidence, "
                    "%zu release file(s) match the log\n", live.receipts, live.releases);
        else
        if (compare) {
            printf ("replay DISAGREES with live state: %zu disagreement(s) (%zu receipt(s), %zu release file(s) "
                    "compared)\n", live.disagreements, live.receipts, live.releases);
            for (size_t i = 0; i < json_array_size (disagreements.list); i++) {
                json_t *item = json_array_get (disagreements.list, i);
                printf ("  %s: %s\n", json_string_value (json_object_get (item, "subject")),
                        json_string_value (json_object_get (item, "what")));
            }
        }
        else
        if (source.config && as_of)
            printf ("live state not compared: it is now, the replay is as of %s\n", as_of_when);
    }
    rc = live.disagreements? AL_EXIT_BAD: AL_EXIT_OK;
cleanup:
    json_decref (root);
    json_decref (disagreements.list);
    al_policy_destroy (&policy);
    al_replay_destroy (&replay);
    al_store_destroy (&store);
    al_config_destroy (&source.config);
    return rc;
}

//  ---- history ------------------------------------------------------------------------------

//  A table cell: '|' escaped, line breaks as spaces.
static void
s_cell (const char *text, char *out, size_t size)
{
    size_t used = 0;
    for (; *text && used + 3 < size; text++) {
        if (*text == '|')
            out [used++] = '\\';
        out [used++] = *text == '\n' || *text == '\r'? ' ': *text;
    }
    out [used] = '\0';
}

static int
s_history (int argc, char **argv)
{
    s_source_t source = { 0 };
    const char *service = NULL, *policy_dir = NULL;
    bool json = false;
    const al_cli_option_t options [] = {
        { "--service", .value = &service }, { "--policy", .value = &policy_dir },
        { "--json", .flag = &json }, { .name = NULL }
    };
    if (s_parse (argc, argv, "history", &source, options) != 0)
        return AL_EXIT_USAGE;
    if (s_source_open (&source, "history") != 0)
        return AL_EXIT_USAGE;
    int rc = AL_EXIT_USAGE;
    char error [512];
    al_replay_t *replay = NULL;
    al_policy_t *policy = NULL;
    json_t *rows = json_array ();
    al_store_t *store = s_store_open (&source, "history");
    if (!store)
        goto cleanup;
    replay = al_replay_new (store, 0, error, sizeof error);
    if (!replay) {
        fprintf (stderr, "airlock audit history: %s\n", error);
        goto cleanup;
    }
    policy = s_policy_open (policy_dir, &source, "history");
    if (!json)
        printf ("| Date | Service | Version | Type | Environment | Approved by | Status | Duration | Rollback "
                "| Notes |\n|------|---------|---------|------|-------------|-------------|--------|----------"
                "|----------|-------|\n");
    for (size_t i = 0; i < al_replay_count (replay); i++) {
        const al_replay_deployment_t *d = al_replay_at (replay, i);
        if (!al_audit_history_listed (d, service))
            continue;
        //  Only the signatures that counted (al_audit_history_approvers). Without the
        //  policy they cannot be judged: the grant's signers are listed as "unverified".
        char approved [600] = "", duration [32] = "-", why [400];
        bool verified = false;
        json_t *entry = al_audit_history_entry (store, policy, d, &verified, why, sizeof why);
        if (*why)
            fprintf (stderr, "airlock audit history: %s: %s\n", d->id, why);
        if (!entry) {
            fprintf (stderr, "airlock audit history: out of memory\n");
            goto cleanup;
        }
        json_array_append_new (rows, entry);
        json_t *approvers = json_object_get (entry, "approved_by");
        for (size_t k = 0; k < json_array_size (approvers); k++) {
            json_t *approver = json_array_get (approvers, k);
            const char *name = json_string_value (json_object_get (approver, "approver"));
            size_t used = strlen (approved);
            snprintf (approved + used, sizeof approved - used, "%s%s", used? ", ": verified? "": "unverified: ",
                      name? name: json_string_value (json_object_get (approver, "key_id")));
        }
        json_int_t duration_ms = json_integer_value (json_object_get (entry, "duration_ms"));
        if (duration_ms)
            s_format_duration ((uint64_t) duration_ms, duration, sizeof duration);
        if (!json) {
            char cells [6][640];
            s_cell (d->service, cells [0], sizeof cells [0]);
            s_cell (d->version, cells [1], sizeof cells [1]);
            s_cell (d->environment, cells [2], sizeof cells [2]);
            s_cell (*approved? approved: "-", cells [3], sizeof cells [3]);
            s_cell (json_string_value (json_object_get (entry, "notes")), cells [4], sizeof cells [4]);
            s_cell (json_string_value (json_object_get (entry, "type")), cells [5], sizeof cells [5]);
            printf ("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
                    json_string_value (json_object_get (entry, "date")), cells [0], cells [1], cells [5], cells [2],
                    cells [3], json_string_value (json_object_get (entry, "status")), duration,
                    json_string_value (json_object_get (entry, "rollback")), cells [4]);
        }
    }
    if (json) {
        json_t *root = json_pack ("{s:s, s:O}", "db", source.db, "deployments", rows);
        if (root)
            json_dumpf (root, stdout, JSON_INDENT (2) | JSON_PRESERVE_ORDER);
        printf ("\n");
        json_decref (root);
    }
    rc = fflush (stdout) == 0? AL_EXIT_OK: AL_EXIT_USAGE;
cleanup:
    json_decref (rows);
    al_policy_destroy (&policy);
    al_replay_destroy (&replay);
    al_store_destroy (&store);
    al_config_destroy (&source.config);
    return rc;
}

//  ---- export -------------------------------------------------------------------------------

static int
s_export (int argc, char **argv)
{
    s_source_t source = { 0 };
    const char *format = "jsonl";
    const char *from_text = NULL;
    uint64_t from = 1;
    const al_cli_option_t options [] = {
        { "--from", .value = &from_text }, { "--format", .value = &format }, { .name = NULL }
    };
    if (s_parse (argc, argv, "export", &source, options) != 0)
        return AL_EXIT_USAGE;
    char *end = NULL;
    if (from_text && ((from = strtoull (from_text, &end, 10), *end) || from == 0)) {
        fprintf (stderr, "airlock audit export: --from needs a sequence number >= 1\n");
        return AL_EXIT_USAGE;
    }
    if (strcmp (format, "jsonl") != 0 && strcmp (format, "cloudevents") != 0) {
        fprintf (stderr, "airlock audit export: --format '%s': use jsonl or cloudevents\n", format);
        return AL_EXIT_USAGE;
    }
    if (s_source_open (&source, "export") != 0)
        return AL_EXIT_USAGE;
    int rc = AL_EXIT_USAGE;
    al_store_t *store = s_store_open (&source, "export");
    if (!store)
        goto cleanup;
    char error [512] = "";
    al_store_status_t status;
    if (strcmp (format, "cloudevents") == 0)
        status = al_cloudevents_export (store, from, stdout, error, sizeof error);
    else {
        status = al_store_export_json (store, from, stdout);
        if (status != AL_STORE_OK)
            snprintf (error, sizeof error, "%s", al_store_error (store));
    }
    if (status != AL_STORE_OK || fflush (stdout) != 0) {
        fprintf (stderr, "airlock audit export: %s\n", *error? error: "cannot write the output");
        goto cleanup;
    }
    rc = AL_EXIT_OK;
cleanup:
    al_store_destroy (&store);
    al_config_destroy (&source.config);
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
    if (sodium_init () < 0) {
        fprintf (stderr, "airlock audit: libsodium failed to initialise\n");
        return AL_EXIT_USAGE;
    }
    if (strcmp (argv [1], "verify") == 0)
        return s_verify (argc - 1, argv + 1);
    if (strcmp (argv [1], "replay") == 0)
        return s_replay (argc - 1, argv + 1);
    if (strcmp (argv [1], "history") == 0)
        return s_history (argc - 1, argv + 1);
    if (strcmp (argv [1], "export") == 0)
        return s_export (argc - 1, argv + 1);
    fprintf (stderr, "airlock audit: unknown subcommand '%s'\n", argv [1]);
    s_usage (stderr);
    return AL_EXIT_USAGE;
}
