/*  cmd_approve.c: the human approver's client: `airlock approvals`, `airlock approve`,
    `airlock deny`.

    It connects with the state directory's `approver` certificate (transport only), asks
    the broker for the pending production requests, shows the chosen one the way seed
    001's "Production Deployment Request" reads, asks for confirmation, signs the
    statement with the human's own key (an airlock key file or an OpenSSH ed25519 key),
    submits it, and prints what the gate decided. The statement is built from the request
    exactly as the broker holds it, so what is shown is what is signed.
*/
#include "cli/cli.h"
#include "agents/al_agent.h"
#include "broker/al_config.h"
#include "policies/al_approval.h"
#include "policies/al_gate.h"
#include "policies/al_policy.h"

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
            "List the production requests awaiting human approval.\n");
    else
        fprintf (out,
            "usage: airlock approve REQUEST_ID (--key FILE | --ssh-key FILE) [--yes] [--break-glass]\n"
            "                      [--valid-for DURATION] [--config FILE]\n"
            "       airlock deny REQUEST_ID --reason TEXT (--key FILE | --ssh-key FILE) [--config FILE]\n\n"
            "Show a pending production request, ask for confirmation (unless --yes), sign\n"
            "the approval statement with your own key and submit it.\n"
            "  --key FILE        an airlock key from `airlock keygen` (or $AIRLOCK_KEY)\n"
            "  --ssh-key FILE    an OpenSSH ed25519 private key (signs with ssh-keygen -Y sign)\n"
            "  --break-glass     consciously override an active freeze or closed window\n"
            "  --valid-for D     how long the approval stays valid (default 1h; e.g. 30m, 2h)\n"
            "  --config FILE     airlock.yaml (default $AIRLOCK_CONFIG, else ./airlock-state/airlock.yaml)\n"
            "Exit codes: 0 granted or recorded, 1 refused by the gate, 2 usage or I/O error.\n");
}

static uint64_t
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
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
    if (options->config_path)
        return options->config_path;
    const char *env = getenv ("AIRLOCK_CONFIG");
    return env && *env ? env : "./airlock-state/airlock.yaml";
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
s_fetch_pending (al_agent_t *agent)
{
    al_agent_result_t result;
    al_envelope_t *reply = al_agent_status_query (agent, "approvals", NULL, 0, S_TIMEOUT_MS, &result);
    if (!reply) {
        char last [256] = "";
        al_agent_last_error (agent, last, sizeof last);
        fprintf (stderr, "airlock: the broker did not list approvals: %s%s%s\n",
                 result.status == AL_AGENT_DENIED ? result.reason : al_agent_status_name (result.status),
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

static json_t *
s_request_json (const Airlock__ApprovalRequest *request)
{
    json_t *checklist = json_array ();
    for (size_t i = 0; i < request->n_checklist; i++)
        json_array_append_new (checklist, json_pack ("{s:s, s:s, s:b}", "section", request->checklist [i]->section,
                                                     "text", request->checklist [i]->text,
                                                     "checked", request->checklist [i]->checked));
    return json_pack ("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o}",
                      "request_id", request->request_id,
                      "deployment_type", s_type_name (request->deployment_type),
                      "service", request->service, "version", request->version,
                      "artifact_uri", request->artifact_uri, "artifact_sha256", request->artifact_sha256,
                      "qa_report_sha256", request->qa_report_sha256,
                      "migration_set_sha256", request->migration_set_sha256,
                      "requested_by", request->requested_by, "risk_level", request->risk_level,
                      "summary", request->summary, "checklist", checklist);
}

static int
s_list (const s_options_t *options)
{
    al_config_t *config = NULL;
    al_agent_t *agent = s_connect (options, &config);
    int rc = AL_EXIT_USAGE;
    al_envelope_t *reply = agent ? s_fetch_pending (agent) : NULL;
    if (reply) {
        const Airlock__StatusReply *status = reply->status_reply;
        if (options->json) {
            json_t *array = json_array ();
            for (size_t i = 0; i < status->n_approvals; i++)
                json_array_append_new (array, s_request_json (status->approvals [i]));
            char *text = json_dumps (array, JSON_INDENT (2));
            printf ("%s\n", text ? text : "[]");
            free (text);
            json_decref (array);
        }
        else
        if (status->n_approvals == 0)
            printf ("No production request is awaiting approval.\n");
        else {
            printf ("%-20s %-10s %-20s %-12s %-14s %s\n", "REQUEST", "TYPE", "SERVICE", "VERSION", "ARTIFACT", "REQUESTED BY");
            for (size_t i = 0; i < status->n_approvals; i++) {
                const Airlock__ApprovalRequest *request = status->approvals [i];
                printf ("%-20s %-10s %-20s %-12s %.12s.. %s\n", request->request_id,
                        s_type_name (request->deployment_type), request->service, request->version,
                        request->artifact_sha256, request->requested_by);
            }
        }
        rc = AL_EXIT_OK;
    }
    al_codec_free (&reply);
    al_agent_destroy (&agent);
    al_config_destroy (&config);
    return rc;
}

//  Seed 001's "Production Deployment Request", from the request as filed.
static void
s_show (const Airlock__ApprovalRequest *request, const al_config_t *config)
{
    printf ("## Production Deployment Request\n\n");
    printf ("**Status**: AWAITING HUMAN APPROVAL\n");
    printf ("**Request**: %s (%s deployment)\n", request->request_id, s_type_name (request->deployment_type));
    printf ("**Urgency**: %s\n", *request->urgency ? request->urgency : "Routine");
    printf ("**Requested By**: %s\n\n", request->requested_by);
    printf ("### Summary\n%s\n\n", *request->summary ? request->summary : "(none given)");
    printf ("### What would be deployed\n");
    printf ("- Service: %s, version %s\n", request->service, request->version);
    printf ("- Artifact: %s\n- Artifact sha256: %s\n", request->artifact_uri, request->artifact_sha256);
    if (al_gate_no_qa_report (request))
        printf ("- QA report: NONE (no staging run: see Tests Passed below)\n");
    else
        printf ("- QA report sha256: %s\n", request->qa_report_sha256);
    printf ("- Database changes: %s\n", *request->migration_set_sha256 ? request->migration_set_sha256
                                                                         : "none (no migration set)");
    printf ("- Strategy: %s, %u instance(s)\n\n",
            request->strategy == AIRLOCK__STRATEGY__STRATEGY_CANARY ? "canary"
          : request->strategy == AIRLOCK__STRATEGY__STRATEGY_BLUE_GREEN ? "blue-green" : "rolling",
            request->instances);
    printf ("### Risk Assessment\n- Risk Level: %s\n- Impact if failure: %s\n- Mitigation: %s\n\n",
            *request->risk_level ? request->risk_level : "(not given)",
            *request->risk_impact ? request->risk_impact : "(not given)",
            *request->risk_mitigation ? request->risk_mitigation : "(not given)");
    printf ("### Rollback Plan\n- Rollback command: %s\n- Database rollback: %s\n- Estimated rollback time: %u min\n\n",
            *request->rollback_command ? request->rollback_command : "(not given)",
            *request->rollback_migration ? request->rollback_migration : "(none)",
            request->rollback_estimate_minutes);
    if (request->n_checklist) {
        printf ("### Checklist\n");
        const char *section = "";
        for (size_t i = 0; i < request->n_checklist; i++) {
            const Airlock__ChecklistItem *item = request->checklist [i];
            if (strcmp (item->section, section) != 0) {
                printf ("%s:\n", item->section);
                section = item->section;
            }
            printf ("  - [%c] %s\n", item->checked ? 'x' : ' ', item->text);
        }
        printf ("\n");
    }
    //  The deploy window as the broker's policy sees it now.
    al_policy_t *policy = al_policy_load (al_config_policy_dir (config), NULL);
    if (policy) {
        char window [256] = "", freeze [256] = "";
        time_t now = time (NULL);
        bool open = al_policy_window_open (policy, request->environment, now, window, sizeof window);
        al_policy_freeze_t frozen = al_policy_freeze_check (policy, request->environment, now, freeze, sizeof freeze);
        bool required = al_policy_requires_window (policy, request->deployment_type);
        printf ("### Deployment Window\n- %s: %s%s\n- Freeze: %s\n\n", open ? "open" : "closed", window,
                open ? "" : required ? " (required: the gate refuses this deployment type outside a window)"
                                     : " (not required for this deployment type)",
                frozen == AL_POLICY_FREEZE_ACTIVE ? freeze : frozen == AL_POLICY_FREEZE_FLAGGED ? freeze : "none");
        al_policy_destroy (&policy);
    }
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
    al_config_t *config = NULL;
    al_agent_t *agent = s_connect (options, &config);
    al_envelope_t *reply = agent ? s_fetch_pending (agent) : NULL;
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
        char answer [16] = "";
        if (!fgets (answer, sizeof answer, stdin) || strncmp (answer, "yes", 3) != 0) {
            printf ("Not signed.\n");
            rc = AL_EXIT_BAD;
            goto cleanup;
        }
    }
    al_approval_options_t sign_options = {
        .decision = decision, .reason = options->reason, .break_glass = options->break_glass,
        .issued_at_ms = s_now_ms (), .valid_for_ms = valid_for,
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
    else
        fprintf (stderr, "airlock: no answer from the broker: %s\n", al_agent_status_name (status));

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
