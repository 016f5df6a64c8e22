/*  cmd_runbook.c: `airlock runbook SERVICE [--config FILE] [--out FILE] [--env ENV]`.

    Argument parsing and printing: it loads airlock.yaml, the policy and services.yaml,
    and prints what agents/al_runbook writes (seed 002's runbook.md for one service,
    from the live configuration only; al_runbook.h says what it holds and promises):
    on stdout, into --out FILE (atomically), or inside a --json document with the
    configuration warnings.
*/
#include "cli/cli.h"
#include "agents/al_runbook.h"
#include "base/al_config.h"
#include "deploy/al_services.h"
#include "policies/al_policy.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: airlock runbook SERVICE [--state DIR | --config FILE] [--out FILE] [--env ENV] [--json]\n\n"
        "Write seed 002's runbook.md for SERVICE from the live configuration: airlock.yaml,\n"
        "its policy directory (quorums, approvers, windows and freezes, rollback triggers,\n"
        "soak), services.yaml (driver, strategy and instances per environment, health\n"
        "endpoints, QA checks, data rollback), the migration set and notifications.yaml.\n"
        "Sections: Deployment, Operations, Monitoring, Rollback, QA checks,\n"
        "Troubleshooting, Escalation; problems of the configuration are listed first.\n"
        "The output depends on the files only: regenerate it after changing them.\n\n"
        "options:\n"
        "  --state DIR    the state directory (reads DIR/airlock.yaml)\n"
        "  --config FILE  airlock.yaml (default $AIRLOCK_CONFIG, else\n"
        "                 ./airlock-state/airlock.yaml)\n"
        "  --out FILE     write the runbook to FILE (atomically) and print its path;\n"
        "                 default: standard output\n"
        "  --env ENV      the environment the Operations, Monitoring and automatic\n"
        "                 rollback sections focus on: development, staging or\n"
        "                 production (default production)\n"
        "  --json         print {\"service\", \"environment\", \"configuration\", \"warnings\",\n"
        "                 and \"out\" (with --out) or \"markdown\": the runbook}\n\n"
        "exit codes: 0 written, 1 a configuration file is invalid (the error names the\n"
        "file, line and field), 2 usage error, unknown service (the configured ones are\n"
        "listed), unreadable configuration or the output could not be written\n");
}

//  An exit code for a file that did not load: 2 when it cannot be read, 1 when invalid.
static int
s_load_failure (const char *path)
{
    return access (path, R_OK) == 0? AL_EXIT_BAD: AL_EXIT_USAGE;
}

//  --json: {"service", "environment", "configuration", "warnings": [...], and "out": FILE
//  (the runbook written there) or "markdown": the runbook itself}. Returns the exit code.
static int
s_print_json (const al_runbook_t *runbook, const al_config_t *config, const char *service, const char *env,
              const char *out_path)
{
    char *markdown = NULL;
    size_t size = 0;
    if (out_path) {
        char error [2048];
        if (al_runbook_write (runbook, out_path, error, sizeof error) != 0) {
            fprintf (stderr, "airlock runbook: %s\n", error);
            return AL_EXIT_USAGE;
        }
    }
    else {
        FILE *memory = open_memstream (&markdown, &size);
        bool rendered = memory && al_runbook_render (runbook, memory) == 0;
        if (memory)
            fclose (memory);
        if (!rendered) {
            fprintf (stderr, "airlock runbook: cannot render the runbook\n");
            free (markdown);
            return AL_EXIT_USAGE;
        }
    }
    json_t *warnings = json_array ();
    for (size_t i = 0; i < al_runbook_warning_count (runbook); i++)
        json_array_append_new (warnings, json_string (al_runbook_warning_at (runbook, i)));
    json_t *root = json_pack ("{s:s, s:s, s:s, s:o}", "service", service, "environment", env,
                              "configuration", al_config_path (config), "warnings", warnings);
    if (root && out_path)
        json_object_set_new (root, "out", json_string (out_path));
    else
    if (root)
        json_object_set_new (root, "markdown", json_string (markdown));
    free (markdown);
    int rc = root && json_dumpf (root, stdout, JSON_INDENT (2) | JSON_PRESERVE_ORDER) == 0? AL_EXIT_OK: AL_EXIT_USAGE;
    printf ("\n");
    json_decref (root);
    return rc;
}

int
al_cmd_runbook (int argc, char **argv)
{
    if (al_cli_wants_help (argc, argv)) {
        s_usage (stdout);
        return AL_EXIT_OK;
    }
    const char *service = NULL, *out_path = NULL, *env_name = "production";
    const al_cli_option_t options [] = {
        { "--out", .value = &out_path }, { "--env", .value = &env_name }, { .name = NULL }
    };
    const al_cli_parser_t parser = { "runbook", s_usage, .config = true, .json = true, .options = options,
                                     .arguments = &service, .arguments_max = 1 };
    al_cli_common_t common;
    if (al_cli_parse (&parser, argc, argv, &common) != 0)
        return AL_EXIT_USAGE;
    bool json = common.json;
    if (!service) {
        fprintf (stderr, "airlock runbook: which service? (SERVICE is required)\n\n");
        s_usage (stderr);
        return AL_EXIT_USAGE;
    }
    const char *config_path = common.config_path;
    Airlock__Environment env = al_environment_from_name (env_name);
    if (env == AIRLOCK__ENVIRONMENT__ENV_UNSPECIFIED) {
        fprintf (stderr, "airlock runbook: --env: unknown environment '%s' (development, staging, production)\n", env_name);
        return AL_EXIT_USAGE;
    }

    int exit_code = AL_EXIT_USAGE;
    char error [8192];
    al_config_t *config = NULL;
    al_policy_t *policy = NULL;
    al_policy_errors_t *errors = NULL;
    al_services_t *services = NULL;
    al_runbook_t *runbook = NULL;
    config = al_config_load (config_path, error, sizeof error);
    if (!config) {
        fprintf (stderr, "airlock runbook: %s\n", error);
        exit_code = s_load_failure (config_path);
        goto cleanup;
    }
    policy = al_policy_load (al_config_policy_dir (config), &errors);
    if (!policy) {
        fprintf (stderr, "airlock runbook: the policy %s does not load:\n", al_config_policy_dir (config));
        for (size_t i = 0; i < al_policy_errors_count (errors); i++)
            fprintf (stderr, "%s\n", al_policy_errors_at (errors, i));
        exit_code = s_load_failure (al_config_policy_dir (config));
        goto cleanup;
    }
    const char *services_path = al_config_services_path (config);
    services = al_services_load (services_path, error, sizeof error);
    if (!services) {
        fprintf (stderr, "airlock runbook: %s\n", error);
        exit_code = s_load_failure (services_path);
        goto cleanup;
    }
    const al_service_t *svc = al_services_find (services, service);
    if (!svc) {
        fprintf (stderr, "airlock runbook: no service '%s' in %s; configured services:", service, services_path);
        for (size_t i = 0; i < al_services_count (services); i++)
            fprintf (stderr, "%s %s", i? ",": "", al_services_at (services, i)->name);
        fprintf (stderr, "%s\n", al_services_count (services)? "": " none");
        exit_code = AL_EXIT_USAGE;
        goto cleanup;
    }
    runbook = al_runbook_new (config, policy, services, svc, env, error, sizeof error);
    if (!runbook) {
        fprintf (stderr, "airlock runbook: %s\n", error);
        exit_code = AL_EXIT_BAD;
        goto cleanup;
    }
    if (al_runbook_notify_error (runbook))
        fprintf (stderr, "airlock runbook: warning: %s\n", al_runbook_notify_error (runbook));
    if (json) {
        exit_code = s_print_json (runbook, config, service, al_environment_name (env), out_path);
        goto cleanup;
    }
    if (out_path) {
        if (al_runbook_write (runbook, out_path, error, sizeof error) != 0) {
            fprintf (stderr, "airlock runbook: %s\n", error);
            exit_code = AL_EXIT_USAGE;
            goto cleanup;
        }
        printf ("%s\n", out_path);
    }
    else
    if (al_runbook_render (runbook, stdout) != 0 || fflush (stdout) != 0) {
        fprintf (stderr, "airlock runbook: standard output: %s\n", strerror (errno));
        exit_code = AL_EXIT_USAGE;
        goto cleanup;
    }
    exit_code = AL_EXIT_OK;
cleanup:
    al_runbook_destroy (&runbook);
    al_services_destroy (&services);
    al_policy_errors_destroy (&errors);
    al_policy_destroy (&policy);
    al_config_destroy (&config);
    return exit_code;
}
