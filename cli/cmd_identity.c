/*  cmd_identity.c: `airlock identity add NAME --role ROLE [--person PERSON]`: give a
    client (one AI agent, one CI pipeline) its own CURVE key pair and identity.

    A thin wrapper over al_init_identity_add (agents/al_init.h): the key pair goes to
    the keys directory, the entry is appended to identities.yaml (nothing else in the
    file changes), and the operator is told how the broker learns it.
*/
#include "cli/cli.h"
#include "agents/al_init.h"
#include "base/al_config.h"

#include <stdlib.h>
#include <string.h>

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: airlock identity add NAME --role ROLE [--person PERSON] [--state DIR | --config FILE]\n\n"
        "Make a CURVE key pair for a new client identity (KEYS/NAME.cert and its _secret\n"
        "half, mode 0600) and append {key, identity: NAME, role: ROLE, person: PERSON} to\n"
        "the policy's identities.yaml; every other entry and comment stays as it is. Give each\n"
        "AI agent its own identity (e.g. backend-1 --role backend-specialist) so it acts\n"
        "under its own role with its own audit trail; connect with `airlock mcp --identity\n"
        "NAME` or the Python client's --identity NAME.\n\n"
        "PERSON is the human behind the identity, as approvers.yaml names them: the approval\n"
        "gate refuses their approval of a release submitted through NAME (four eyes).\n\n"
        "Refuses an invalid or taken name, an unknown role and a policy that does not load.\n"
        "The broker reads identities.yaml at start and on SIGHUP: reload it afterwards.\n\n"
        "options:\n"
        "  --role ROLE      a role from roles.yaml (required)\n"
        "  --person PERSON  the human behind this identity (optional)\n"
        "  --state DIR      the state directory (reads DIR/airlock.yaml)\n"
        "  --config FILE    airlock.yaml (default $AIRLOCK_CONFIG, else ./airlock-state/airlock.yaml)\n\n"
        "exit codes: 0 added, 1 refused, 2 usage error or unusable configuration\n");
}

static void
s_note (void *arg, const char *action, const char *path)
{
    (void) arg;
    if (strcmp (action, "warning") == 0)
        fprintf (stderr, "airlock identity: warning: %s\n", path);
    else
        printf ("%-9s %s\n", action, path);
}

int
al_cmd_identity (int argc, char **argv)
{
    if (al_cli_wants_help (argc, argv)) {
        s_usage (stdout);
        return AL_EXIT_OK;
    }
    if (argc < 2 || strcmp (argv [1], "add") != 0) {
        fprintf (stderr, "airlock identity: expected 'add'\n\n");
        s_usage (stderr);
        return AL_EXIT_USAGE;
    }
    const char *name = NULL, *role = NULL, *person = NULL;
    const al_cli_option_t options [] = {
        { "--role", .value = &role }, { "--person", .value = &person }, { .name = NULL }
    };
    const al_cli_parser_t parser = { "identity", s_usage, .config = true, .options = options,
                                     .arguments = &name, .arguments_max = 1 };
    al_cli_common_t common;
    //  argv [1] is "add": the options follow it.
    if (al_cli_parse (&parser, argc - 1, argv + 1, &common) != 0)
        return AL_EXIT_USAGE;
    if (!name || !role) {
        fprintf (stderr, "airlock identity add: NAME and --role ROLE are required\n\n");
        s_usage (stderr);
        return AL_EXIT_USAGE;
    }
    const char *config_path = common.config_path;
    char error [1024];
    al_config_t *config = al_config_load (config_path, error, sizeof error);
    if (!config) {
        fprintf (stderr, "airlock identity: %s\n", error);
        return AL_EXIT_USAGE;
    }
    int exit_code = AL_EXIT_OK;
    if (al_init_identity_add (config, name, role, person, s_note, NULL, error, sizeof error) != 0) {
        fprintf (stderr, "airlock identity add: %s\n", error);
        exit_code = AL_EXIT_BAD;
    }
    else
        printf ("\nidentity %s (role %s%s%s) added. The broker reads identities.yaml at start and on SIGHUP:\n"
                "reload it (kill -HUP <broker pid>, or restart `airlock up`) before %s connects, e.g. with\n"
                "  airlock mcp --identity %s --config %s\n",
                name, role, person ? ", person " : "", person ? person : "", name, name, config_path);
    al_config_destroy (&config);
    return exit_code;
}
