/*  cmd_approve.c: the human approver's client: `airlock approvals`, `airlock approve`,
    `airlock deny`.

    It checks the human's key file first (a public half, a wrong format or a file others
    can read is refused before anything is shown), connects with the state directory's
    `approver` certificate (transport only), asks the broker for the pending production
    requests, shows the chosen one (agents/al_request_view.c: what airlock states apart from
    what the agent wrote, the latter escaped), asks for confirmation (only the answer
    `yes` signs), signs the statement with the human's own key (an airlock key file or
    an OpenSSH ed25519 key), submits it, and prints what the gate decided. The statement
    is built from the request exactly as the broker holds it, so what is shown is what
    is signed.
*/
#include "cli/cli.h"
#include "base/al_clock.h"
#include "agents/al_request_view.h"
#include "agents/al_agent.h"
#include "base/al_config.h"
#include "policies/al_approval.h"
#include "policies/al_gate.h"
#include "policies/al_policy.h"
#include "base/al_text.h"
#include "base/al_crashpoint.h"
#include "proto/al_signature.h"

#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define S_TIMEOUT_MS 10000

typedef struct {
    const char *config_path;
    const char *key_path;
    const char *ssh_key_path;
    const char *reason;
    const char *valid_for;
    bool yes;
    bool json;
    bool break_glass;
} s_options_t;

static void
s_usage (FILE *out, const char *command)
{
    if (strcmp (command, "approvals") == 0)
        fprintf (out,
            "usage: airlock approvals [--config FILE] [--json]\n\n"
            "List the production requests awaiting human approval.\n"
            "  --json            one object per request: \"facts\" (what airlock states) apart from\n"
            "                    \"agent_text\" (what the orchestrator wrote, escaped)\n"
            "  --config FILE     airlock.yaml (default $AIRLOCK_CONFIG, else ./airlock-state/airlock.yaml)\n"
            "Exit codes: 0 listed (also when none is waiting), 2 usage error, or no answer from the broker.\n");
    else
    if (strcmp (command, "deny") == 0)
        fprintf (out,
            "usage: airlock deny REQUEST_ID --reason TEXT (--key FILE | --ssh-key FILE) [--config FILE]\n\n"
            "Show a pending production request and sign a DENY of it with your own key, at once\n"
            "(no confirmation: the command is the decision). A DENY from a role the quorum needs\n"
            "closes the request.\n"
            "  --reason TEXT     why (required; recorded in the audit log and told to the orchestrator)\n"
            "  --key FILE        an airlock key from `airlock keygen` (or $AIRLOCK_KEY)\n"
            "  --ssh-key FILE    an OpenSSH ed25519 private key (signs with ssh-keygen -Y sign)\n"
            "  --config FILE     airlock.yaml (default $AIRLOCK_CONFIG, else ./airlock-state/airlock.yaml)\n"
            "Exit codes: 0 recorded, 1 refused by the gate, 2 usage, key or I/O error.\n");
    else
        fprintf (out,
            "usage: airlock approve REQUEST_ID (--key FILE | --ssh-key FILE) [--yes] [--break-glass]\n"
            "                      [--valid-for DURATION] [--config FILE]\n\n"
            "Show a pending production request, ask for confirmation (unless --yes), sign\n"
            "the approval statement with your own key and submit it. Only the answer `yes`\n"
            "signs (spaces around it are ignored; `y`, `YES`, `yes, but` do not sign).\n"
            "  --key FILE        an airlock key from `airlock keygen` (or $AIRLOCK_KEY)\n"
            "  --ssh-key FILE    an OpenSSH ed25519 private key (signs with ssh-keygen -Y sign)\n"
            "  --yes             sign without asking (a runbook that already showed the request)\n"
            "  --break-glass     consciously override an active freeze or closed window\n"
            "  --valid-for D     how long the approval stays valid (default 1h; e.g. 30m, 2h)\n"
            "  --config FILE     airlock.yaml (default $AIRLOCK_CONFIG, else ./airlock-state/airlock.yaml)\n"
            "Exit codes: 0 granted or recorded, 1 not signed or refused by the gate, 2 usage, key or\n"
            "I/O error.\n");
}

//  "90s", "30m", "2h": milliseconds, or 0 if malformed.
static uint64_t
s_duration_ms (const char *text)
{
    char *end = NULL;
    unsigned long long value = strtoull (text, &end, 10);
    if (!end || end == text || value == 0 || value > 7 * 24 * 3600)
        return 0;
    if (strcmp (end, "s") == 0)
        return value * 1000ULL;
    if (strcmp (end, "m") == 0)
        return value * 60000ULL;
    if (strcmp (end, "h") == 0)
        return value * 3600000ULL;
    return 0;
}

static const char *
s_config_path (const s_options_t *options)
{
    //  --config only (the approval client takes no --state): the one lookup rule.
    return al_cli_config_path (options->config_path, NULL, NULL, 0);
}

//  Connect as the approver client. Returns NULL with the reason printed.
static al_agent_t *
s_connect (const s_options_t *options, al_config_t **config_p)
{
    char error [512];
    const char *path = s_config_path (options);
    *config_p = al_config_load (path, error, sizeof error);
    if (!*config_p) {
        fprintf (stderr, "airlock: %s\n", error);
        return NULL;
    }
    al_agent_t *agent = al_agent_new_for_role (*config_p, "approver", false, error, sizeof error);
    if (!agent)
        fprintf (stderr, "airlock: %s (`airlock init` makes the approver certificate)\n", error);
    return agent;
}

//  The pending requests (caller frees the reply with al_codec_free), or NULL.
static al_envelope_t *
s_fetch_pending (al_agent_t *agent, const al_config_t *config)
{
    al_agent_result_t result;
    al_envelope_t *reply = al_agent_status_query (agent, "approvals", NULL, 0, S_TIMEOUT_MS, &result);
    if (!reply) {
        char last [256] = "", brokers [AL_AGENT_ENDPOINTS_TEXT_SIZE];
        al_agent_last_error (agent, last, sizeof last);
        if (result.status == AL_AGENT_DENIED)
            fprintf (stderr, "airlock: the broker did not list approvals: %s\n", result.reason);
        else
            fprintf (stderr, "airlock: the broker did not list approvals: %s (no answer from %s)%s%s\n",
                     al_agent_status_name (result.status),
                     al_agent_endpoints_describe (al_config_broker_endpoints (config), brokers, sizeof brokers),
                     *last ? ": " : "", last);
    }
    return reply;
}

static const char *
s_type_name (Airlock__DeploymentType type)
{
    const char *name = al_deployment_type_name (type);
    return name ? name : "unknown";
}

//  Display width of UTF-8 text, counting code points (escaped text holds no controls).
static int
s_width (const char *text)
{
    int width = 0;
    for (const unsigned char *c = (const unsigned char *) text; *c; c++)
        width += (*c & 0xC0) != 0x80;
    return width;
}

//  The pending requests as a table whose columns are as wide as their longest value, so
//  a long request id never pushes the row out of line. Every cell is al_text-escaped.
static void
s_print_table (const Airlock__StatusReply *status)
{
    enum { S_COLUMNS = 6 };
    static const char *headers [S_COLUMNS] = { "REQUEST", "TYPE", "SERVICE", "VERSION", "ARTIFACT", "REQUESTED BY" };
    size_t rows = status->n_approvals;
    char **cells = calloc ((rows + 1) * S_COLUMNS, sizeof *cells);
    int widths [S_COLUMNS] = { 0 };
    if (!cells) {
        fprintf (stderr, "airlock: out of memory\n");
        return;
    }
    for (size_t column = 0; column < S_COLUMNS; column++)
        cells [column] = strdup (headers [column]);
    for (size_t i = 0; i < rows; i++) {
        const Airlock__ApprovalRequest *request = status->approvals [i];
        char artifact [20];
        snprintf (artifact, sizeof artifact, "%.12s..", request->artifact_sha256);
        const char *values [S_COLUMNS] = { request->request_id, s_type_name (request->deployment_type),
                                           request->service, request->version, artifact, request->requested_by };
        for (size_t column = 0; column < S_COLUMNS; column++)
            cells [(i + 1) * S_COLUMNS + column] = al_text_escape (values [column]);
    }
    for (size_t cell = 0; cell < (rows + 1) * S_COLUMNS; cell++) {
        if (!cells [cell])
            cells [cell] = strdup ("?");
        int width = cells [cell] ? s_width (cells [cell]) : 1;
        if (width > widths [cell % S_COLUMNS])
            widths [cell % S_COLUMNS] = width;
    }
    for (size_t row = 0; row <= rows; row++) {
        for (size_t column = 0; column < S_COLUMNS; column++) {
            const char *cell = cells [row * S_COLUMNS + column] ? cells [row * S_COLUMNS + column] : "?";
            if (column + 1 == S_COLUMNS)
                printf ("%s\n", cell);
            else
                printf ("%s%*s  ", cell, widths [column] - s_width (cell), "");
        }
    }
    for (size_t cell = 0; cell < (rows + 1) * S_COLUMNS; cell++)
        free (cells [cell]);
    free (cells);
}

static int
s_list (const s_options_t *options)
{
    al_config_t *config = NULL;
    al_agent_t *agent = s_connect (options, &config);
    int rc = AL_EXIT_USAGE;
    al_envelope_t *reply = agent ? s_fetch_pending (agent, config) : NULL;
    if (reply) {
        const Airlock__StatusReply *status = reply->status_reply;
        if (options->json) {
            json_t *array = json_array ();
            for (size_t i = 0; i < status->n_approvals; i++)
                json_array_append_new (array, al_request_view_json (status->approvals [i]));
            char *text = json_dumps (array, JSON_INDENT (2));
            printf ("%s\n", text ? text : "[]");
            free (text);
            json_decref (array);
        }
        else
        if (status->n_approvals == 0)
            printf ("No production request is awaiting approval.\n");
        else
            s_print_table (status);
        rc = AL_EXIT_OK;
    }
    al_codec_free (&reply);
    al_agent_destroy (&agent);
    al_config_destroy (&config);
    return rc;
}

//  The request as filed, with the deploy window, freeze and quorum as the broker's
//  policy sees them now.
static void
s_show (const Airlock__ApprovalRequest *request, const al_config_t *config)
{
    al_request_view_context_text_t text;
    al_request_view_context_t context;
    al_request_view_context_load (request, config, &text, &context);
    al_request_view_print (stdout, request, &context);
}

//  Read the confirmation: true only for a line that is exactly "yes" once its line end
//  (LF or CRLF) and surrounding spaces and tabs are removed. Says why nothing is signed.
static bool
s_confirmed (FILE *in)
{
    char *line = NULL;
    size_t capacity = 0;
    ssize_t length = getline (&line, &capacity, in);
    bool yes = false;
    if (length < 0)
        printf ("\nNot signed: no answer (end of input).\n");
    else {
        char *start = line, *end = line + length;
        while (end > start && (end [-1] == '\n' || end [-1] == '\r' || end [-1] == ' ' || end [-1] == '\t'))
            end--;
        while (start < end && (*start == ' ' || *start == '\t'))
            start++;
        yes = end - start == 3 && memcmp (start, "yes", 3) == 0;
        if (!yes)
            printf ("Not signed: only the answer `yes` signs.\n");
    }
    free (line);
    return yes;
}

static int
s_decide (const char *request_id, const s_options_t *options, Airlock__Decision decision)
{
    const char *key_path = options->key_path ? options->key_path : getenv ("AIRLOCK_KEY");
    if (!key_path && !options->ssh_key_path) {
        fprintf (stderr, "airlock: a key is required: --key FILE (airlock keygen) or --ssh-key FILE\n");
        return AL_EXIT_USAGE;
    }
    uint64_t valid_for = s_duration_ms (options->valid_for ? options->valid_for : "1h");
    if (!valid_for) {
        fprintf (stderr, "airlock: --valid-for: expected a duration such as 30m or 2h\n");
        return AL_EXIT_USAGE;
    }
    char key_error [512];
    if (!al_key_file_check_signing (options->ssh_key_path ? options->ssh_key_path : key_path, options->ssh_key_path != NULL,
                           key_error, sizeof key_error)) {
        fprintf (stderr, "airlock: %s\n", key_error);
        return AL_EXIT_USAGE;
    }
    al_config_t *config = NULL;
    al_agent_t *agent = s_connect (options, &config);
    al_envelope_t *reply = agent ? s_fetch_pending (agent, config) : NULL;
    al_approval_signed_t *signed_approval = NULL;
    int rc = AL_EXIT_USAGE;
    if (!reply)
        goto cleanup;
    const Airlock__ApprovalRequest *request = NULL;
    for (size_t i = 0; i < reply->status_reply->n_approvals; i++)
        if (strcmp (reply->status_reply->approvals [i]->request_id, request_id) == 0)
            request = reply->status_reply->approvals [i];
    if (!request) {
        fprintf (stderr, "airlock: no pending production request '%s' (see `airlock approvals`)\n", request_id);
        goto cleanup;
    }
    s_show (request, config);
    if (!options->yes) {
        printf ("%s (yes/no) ", decision == AIRLOCK__DECISION__DECISION_GRANT
                                ? "Proceed with production deployment?" : "Deny this production deployment?");
        fflush (stdout);
        if (!s_confirmed (stdin)) {
            rc = AL_EXIT_BAD;
            goto cleanup;
        }
    }
    al_approval_options_t sign_options = {
        .decision = decision, .reason = options->reason, .break_glass = options->break_glass,
        .issued_at_ms = (uint64_t) al_clock_wall_ms (), .valid_for_ms = valid_for,
    };
    char error [512];
    signed_approval = options->ssh_key_path
        ? al_approval_sign_with_ssh_key (request, options->ssh_key_path, &sign_options, error, sizeof error)
        : al_approval_sign_with_key_file (request, key_path, &sign_options, error, sizeof error);
    if (!signed_approval) {
        fprintf (stderr, "airlock: signing failed: %s\n", error);
        goto cleanup;
    }
    Airlock__Envelope envelope = AIRLOCK__ENVELOPE__INIT;
    envelope.deployment_id = request->request_id;
    envelope.environment = request->environment;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_SIGNED_APPROVAL;
    envelope.signed_approval = (Airlock__SignedApproval *) al_approval_signed_message (signed_approval);
    al_agent_result_t result;
    al_agent_status_t status = al_agent_send (agent, &envelope, S_TIMEOUT_MS, &result);
    al_crashpoint ("approve.after-send");     // chaos: the signature left, the answer is not printed
    if (status == AL_AGENT_ACKED) {
        printf ("Signed with %s; recorded as audit row %llu.\n%s\n", al_approval_signed_key_id (signed_approval),
                (unsigned long long) result.audit_sequence, *result.reason ? result.reason : "recorded");
        rc = AL_EXIT_OK;
    }
    else
    if (status == AL_AGENT_DENIED) {
        printf ("Refused by the approval gate (audit row %llu): %s\n", (unsigned long long) result.audit_sequence,
                result.reason);
        rc = AL_EXIT_BAD;
    }
    else {
        char brokers [AL_AGENT_ENDPOINTS_TEXT_SIZE];
        fprintf (stderr, "airlock: no answer from the broker at %s: %s\n",
                 al_agent_endpoints_describe (al_config_broker_endpoints (config), brokers, sizeof brokers),
                 al_agent_status_name (status));
    }

cleanup:
    al_approval_signed_destroy (&signed_approval);
    al_codec_free (&reply);
    al_agent_destroy (&agent);
    al_config_destroy (&config);
    return rc;
}

static int
s_run (int argc, char **argv, const char *command)
{
    s_options_t options = { 0 };
    static const struct option long_options [] = {
        { "config", required_argument, NULL, 'c' },
        { "key", required_argument, NULL, 'k' },
        { "ssh-key", required_argument, NULL, 's' },
        { "reason", required_argument, NULL, 'r' },
        { "valid-for", required_argument, NULL, 'v' },
        { "break-glass", no_argument, NULL, 'b' },
        { "yes", no_argument, NULL, 'y' },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    int option;
    optind = 1;
    while ((option = getopt_long (argc, argv, "h", long_options, NULL)) != -1) {
        switch (option) {
            case 'c': options.config_path = optarg; break;
            case 'k': options.key_path = optarg; break;
            case 's': options.ssh_key_path = optarg; break;
            case 'r': options.reason = optarg; break;
            case 'v': options.valid_for = optarg; break;
            case 'b': options.break_glass = true; break;
            case 'y': options.yes = true; break;
            case 'j': options.json = true; break;
            case 'h': s_usage (stdout, command); return AL_EXIT_OK;
            default: s_usage (stderr, command); return AL_EXIT_USAGE;
        }
    }
    if (strcmp (command, "approvals") == 0) {
        if (optind != argc) {
            s_usage (stderr, command);
            return AL_EXIT_USAGE;
        }
        return s_list (&options);
    }
    if (optind + 1 != argc) {
        s_usage (stderr, command);
        return AL_EXIT_USAGE;
    }
    if (strcmp (command, "deny") == 0) {
        if (!options.reason || !*options.reason) {
            fprintf (stderr, "airlock deny: --reason TEXT is required\n");
            return AL_EXIT_USAGE;
        }
        //  A denial is an explicit decision: no confirmation prompt.
        options.yes = true;
        return s_decide (argv [optind], &options, AIRLOCK__DECISION__DECISION_DENY);
    }
    return s_decide (argv [optind], &options, AIRLOCK__DECISION__DECISION_GRANT);
}

int
al_cmd_approvals (int argc, char **argv)
{
    return s_run (argc, argv, "approvals");
}

int
al_cmd_approve (int argc, char **argv)
{
    return s_run (argc, argv, "approve");
}

int
al_cmd_deny (int argc, char **argv)
{
    return s_run (argc, argv, "deny");
}
