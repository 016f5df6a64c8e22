/*  cmd_check.c: `airlock check`: validate a whole state directory before anything starts.

    Runs the same loaders the broker and the agents run at start-up (al_config_load,
    al_policy_load, al_services_load, al_notify_config_load and the notifier's secrets,
    the key files), collects every error they report and prints them all, so an invalid
    file is found by a person at the terminal instead of by an agent that crash-loops
    under `airlock up` with the cause only in its log. `airlock up` runs the same check
    first (al_cli_check_state) and refuses to start anything when it fails.

    Nothing is written and nothing is started; the check may run while airlock runs.
*/
#include "cli/cli.h"
#include "base/al_error.h"
#include "agents/al_init.h"
#include "agents/al_notifier.h"
#include "agents/al_notify_config.h"
#include "base/al_config.h"
#include "deploy/al_services.h"
#include "policies/al_policy.h"

#include <assert.h>
#include <czmq.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: airlock check [--state DIR | --config FILE] [--json]\n\n"
        "Validate a state directory the way the broker and the agents will load it, before\n"
        "anything starts, and print EVERY error found as file:line:column: what is wrong:\n"
        "  - airlock.yaml;\n"
        "  - the policy directory it names (every file, through the policy loader);\n"
        "  - services.yaml (required: deploy-manager, qa, monitor and the orchestrator read it);\n"
        "  - notifications.yaml, when present, and the secrets its endpoints reference;\n"
        "  - the key files: the broker's certificate, the checkpoint key, and each role's\n"
        "    certificate (orchestrator, qa, deploy-manager, monitor, notifier, auditor,\n"
        "    approver, ci), each listed for its role in the policy's identities.yaml.\n"
        "`airlock up` runs this check first and refuses to start when it fails.\n\n"
        "options:\n"
        "  --state DIR    the state directory (reads DIR/airlock.yaml)\n"
        "  --config FILE  airlock.yaml (default $AIRLOCK_CONFIG, else ./airlock-state/airlock.yaml)\n"
        "  --json         print {\"ok\": bool, \"config\": FILE, \"errors\": [...]}\n\n"
        "exit codes: 0 valid, 1 invalid (every error listed), 2 usage error or airlock.yaml\n"
        "cannot be read\n");
}

static void
s_add (json_t *errors, const char *format, ...) __attribute__ ((format (printf, 2, 3)));

static void
s_add (json_t *errors, const char *format, ...)
{
    char text [2048];
    va_list args;
    va_start (args, format);
    al_error_vset (text, sizeof text, format, args);
    va_end (args);
    json_array_append_new (errors, json_string (text));
}

//  A loader's error buffer holds one error per line: one entry each.
static void
s_add_lines (json_t *errors, const char *text)
{
    const char *at = text;
    while (at && *at) {
        const char *end = strchr (at, '\n');
        size_t length = end? (size_t) (end - at): strlen (at);
        if (length > 0)
            s_add (errors, "%.*s", (int) length, at);
        at = end? end + 1: NULL;
    }
}

static void
s_check_policy (const al_config_t *config, json_t *errors, al_policy_t **policy_p)
{
    al_policy_errors_t *policy_errors = NULL;
    *policy_p = al_policy_load (al_config_policy_dir (config), &policy_errors);
    size_t count = al_policy_errors_count (policy_errors);
    for (size_t i = 0; i < count; i++)
        s_add (errors, "%s", al_policy_errors_at (policy_errors, i));
    if (!*policy_p && count == 0)
        s_add (errors, "%s: the policy does not load", al_config_policy_dir (config));
    al_policy_errors_destroy (&policy_errors);
}

static void
s_check_services (const al_config_t *config, json_t *errors)
{
    const char *path = al_config_services_path (config);
    struct stat info;
    if (stat (path, &info) != 0) {
        s_add (errors, "%s: %s (deploy-manager, qa, monitor and the orchestrator need it: docs/deploying.md)",
               path, strerror (errno));
        return;
    }
    char error [8192] = "";
    al_services_t *services = al_services_load (path, error, sizeof error);
    if (!services)
        s_add_lines (errors, *error? error: "services.yaml: invalid");
    al_services_destroy (&services);
}

static void
s_check_notifications (const al_config_t *config, json_t *errors)
{
    char *path = al_notifier_config_path (config);
    struct stat info;
    if (!path || (stat (path, &info) != 0 && errno == ENOENT)) {
        free (path);
        return;                     // optional: no endpoints
    }
    char error [8192] = "";
    al_notify_config_t *notify = al_notify_config_load (path, error, sizeof error);
    if (!notify)
        s_add_lines (errors, *error? error: "notifications.yaml: invalid");
    for (size_t i = 0; notify && i < al_notify_config_count (notify); i++) {
        char *secret = NULL;
        if (al_notify_endpoint_secret (al_notify_config_at (notify, i), &secret, error, sizeof error) != 0)
            s_add (errors, "%s: %s", path, error);
        if (secret) {
            memset (secret, 0, strlen (secret));
            free (secret);
        }
    }
    al_notify_config_destroy (&notify);
    free (path);
}

//  A czmq certificate pair: the public file and its _secret part, both loadable.
static void
s_check_certificate (const char *path, const char *role, const al_policy_t *policy, json_t *errors)
{
    char secret [2048];
    snprintf (secret, sizeof secret, "%s_secret", path);
    if (access (path, R_OK) != 0 || access (secret, R_OK) != 0) {
        const char *missing = access (path, R_OK) != 0? path: secret;
        s_add (errors, "%s: %s (`airlock init STATE_DIR` makes the missing keys)", missing, strerror (errno));
        return;
    }
    zcert_t *cert = zcert_load (path);
    if (!cert) {
        s_add (errors, "%s: not a readable CURVE certificate", path);
        return;
    }
    const char *identity = NULL, *listed_role = NULL;
    if (role && policy && (!al_policy_identity_for_key (policy, zcert_public_txt (cert), &identity, &listed_role)
                       ||  strcmp (listed_role, role) != 0))
        s_add (errors, "%s: its key is not listed for role %s in the policy's identities.yaml (%s)%s", path,
               role, listed_role? listed_role: "not listed at all",
               " (`airlock init STATE_DIR` rewrites identities.yaml from the keys)");
    zcert_destroy (&cert);
}

static void
s_check_keys (const al_config_t *config, const al_policy_t *policy, json_t *errors)
{
    s_check_certificate (al_config_broker_cert (config), NULL, policy, errors);
    const char *checkpoint = al_config_checkpoint_key (config);
    if (access (checkpoint, R_OK) != 0)
        s_add (errors, "%s: %s (the broker signs checkpoints with it; `airlock init STATE_DIR` makes it)",
               checkpoint, strerror (errno));
    for (size_t i = 0; i < al_init_role_count (); i++) {
        //  A role the state's policy does not define (a state directory made before the
        //  role existed, e.g. console) needs no key.
        if (policy && !al_policy_role_exists (policy, al_init_role_at (i)))
            continue;
        char *path = al_config_agent_cert (config, al_init_role_at (i));
        if (path)
            s_check_certificate (path, al_init_role_at (i), policy, errors);
        free (path);
    }
}

int
al_cli_check_state (const char *config_path, json_t *errors)
{
    assert (config_path && errors);
    struct stat info;
    if (stat (config_path, &info) != 0) {
        s_add (errors, "%s: %s (`airlock init DIR` makes a state directory)", config_path, strerror (errno));
        return -1;
    }
    char error [2048] = "";
    al_config_t *config = al_config_load (config_path, error, sizeof error);
    if (!config) {
        s_add_lines (errors, error);
        return (int) json_array_size (errors);
    }
    al_policy_t *policy = NULL;
    size_t before = json_array_size (errors);
    s_check_policy (config, errors, &policy);
    s_check_services (config, errors);
    s_check_notifications (config, errors);
    s_check_keys (config, policy, errors);
    al_policy_destroy (&policy);
    al_config_destroy (&config);
    return (int) (json_array_size (errors) - before);
}

int
al_cmd_check (int argc, char **argv)
{
    if (al_cli_wants_help (argc, argv)) {
        s_usage (stdout);
        return AL_EXIT_OK;
    }
    const al_cli_parser_t parser = { "check", s_usage, .config = true, .json = true };
    al_cli_common_t common;
    if (al_cli_parse (&parser, argc, argv, &common) != 0)
        return AL_EXIT_USAGE;
    bool json = common.json;
    const char *config_path = common.config_path;
    json_t *errors = json_array ();
    int count = al_cli_check_state (config_path, errors);
    int exit_code = count < 0? AL_EXIT_USAGE: count > 0? AL_EXIT_BAD: AL_EXIT_OK;
    if (json) {
        json_t *root = json_pack ("{s:b, s:s, s:O}", "ok", count == 0, "config", config_path, "errors", errors);
        if (root)
            json_dumpf (root, stdout, JSON_INDENT (2) | JSON_PRESERVE_ORDER);
        printf ("\n");
        json_decref (root);
    }
    else {
        size_t index;
        json_t *error;
        json_array_foreach (errors, index, error)
            fprintf (stderr, "%s\n", json_string_value (error));
        if (count == 0)
            printf ("%s: valid (airlock.yaml, policy, services.yaml, notifications, keys)\n", config_path);
        else
        if (count > 0)
            fprintf (stderr, "airlock check: %s: %d error%s\n", config_path, count, count == 1? "": "s");
    }
    json_decref (errors);
    return exit_code;
}
