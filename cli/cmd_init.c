/*  cmd_init.c: `airlock init [DIR] [--force-config] [--json]`: create a state directory.

    A thin wrapper over al_init_state_dir (agents/al_init.h), which does the work and
    keeps its promises: keys are never overwritten, identities.yaml is never rewritten,
    a re-run completes and reuses.
*/
#include "cli/cli.h"
#include "base/al_paths.h"
#include "agents/al_init.h"

#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: airlock init [DIR] [--force-config] [--json]\n\n"
        "Create (or complete) the state directory DIR (default ./airlock-state): CURVE\n"
        "certificates for the broker and each agent role (orchestrator, qa, deploy-manager,\n"
        "monitor, notifier, auditor) in DIR/keys (0700, secrets 0600), the broker's Ed25519\n"
        "checkpoint key, a copy of the default policy with identities.yaml mapping each\n"
        "certificate to its role, DIR/checkpoints and DIR/airlock.yaml.\n\n"
        "Re-running it never replaces a key and never rewrites identities.yaml: existing keys\n"
        "are reused, identities an operator added (airlock identity add) stay as written, and\n"
        "only a certificate init had to create is appended. The default policy comes from\n"
        "$AIRLOCK_POLICY_DIR, else the copy installed with airlock\n"
        "(BINDIR/../share/airlock/policies/default), else the source tree's policies/default.\n\n"
        "options:\n"
        "  --force-config  write a fresh airlock.yaml even if one exists\n"
        "  --json          print what was created or kept as JSON\n\n"
        "exit codes: 0 ok, 2 usage or I/O error\n");
}

typedef struct {
    bool json;
    json_t *files;
    json_t *warnings;
} s_output_t;

static void
s_note (void *arg, const char *action, const char *path)
{
    s_output_t *output = arg;
    if (output->json) {
        if (strcmp (action, "warning") == 0)
            json_array_append_new (output->warnings, json_string (path));
        else
            json_array_append_new (output->files,
                                   json_pack ("{s:s, s:s}", "action", action, "path", path));
    }
    else
    if (strcmp (action, "warning") == 0)
        fprintf (stderr, "airlock init: warning: %s\n", path);
    else
        printf ("%-9s %s\n", action, path);
}

int
al_cmd_init (int argc, char **argv)
{
    if (al_cli_wants_help (argc, argv)) {
        s_usage (stdout);
        return AL_EXIT_OK;
    }
    al_init_options_t options = { NULL, false };
    s_output_t output = { false, NULL, NULL };
    const char *dirs [2] = { NULL, NULL };
    const al_cli_option_t table [] = { { "--force-config", .flag = &options.force_config }, { .name = NULL } };
    const al_cli_parser_t parser = { "init", s_usage, .json = true, .options = table, .arguments = dirs,
                                     .arguments_max = 2 };
    al_cli_common_t common;
    if (al_cli_parse (&parser, argc, argv, &common) != 0)
        return AL_EXIT_USAGE;
    output.json = common.json;
    if (dirs [1]) {
        fprintf (stderr, "airlock init: more than one DIR given ('%s' and '%s')\n\n", dirs [0], dirs [1]);
        s_usage (stderr);
        return AL_EXIT_USAGE;
    }
    const char *dir = dirs [0];
    if (!dir)
        dir = "./airlock-state";
    if (output.json) {
        output.files = json_array ();
        output.warnings = json_array ();
    }
    char error [1024] = "";
    int rc = al_init_state_dir (dir, &options, s_note, &output, error, sizeof error);
    int exit_code = AL_EXIT_OK;
    char state_dir [PATH_MAX];
    if (rc != 0) {
        fprintf (stderr, "airlock init: %s\n", error);
        exit_code = AL_EXIT_USAGE;
    }
    else
    if (!realpath (dir, state_dir)) {
        fprintf (stderr, "airlock init: %s: cannot resolve the path\n", dir);
        exit_code = AL_EXIT_USAGE;
    }
    else
    if (output.json) {
        char config [PATH_MAX + 16], error [256];
        if (al_paths_get (state_dir, AL_PATH_AIRLOCK_YAML, config, sizeof config, error, sizeof error) != 0)
            snprintf (config, sizeof config, "%s", error);
        json_t *root = json_pack ("{s:s, s:s, s:O, s:O}", "state_dir", state_dir,
                                  "config", config, "files", output.files,
                                  "warnings", output.warnings);
        json_dumpf (root, stdout, JSON_INDENT (2));
        printf ("\n");
        json_decref (root);
    }
    else {
        char config [PATH_MAX + 16], error [256];
        if (al_paths_get (state_dir, AL_PATH_AIRLOCK_YAML, config, sizeof config, error, sizeof error) != 0)
            snprintf (config, sizeof config, "%s", error);
        printf ("\nstate directory %s is ready; configuration: %s\n", state_dir, config);
    }
    if (rc != 0 && output.json) {
        json_t *root = json_pack ("{s:s, s:O}", "error", error, "files", output.files);
        json_dumpf (root, stdout, JSON_INDENT (2));
        printf ("\n");
        json_decref (root);
    }
    json_decref (output.files);
    json_decref (output.warnings);
    return exit_code;
}
