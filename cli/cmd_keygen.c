/*  cmd_keygen.c: `airlock keygen`: make an approver's Ed25519 key pair.

    The secret key file is written with mode 0600 and never overwritten; the command
    prints the entry to paste into approvers.yaml. The role must be a human role of the
    state directory's policy, so the entry printed is one the policy loader accepts. People who prefer their existing
    OpenSSH ed25519 key list it as `ssh: "ssh-ed25519 AAAA..."` instead (docs/approvals.md).
*/
#include "cli/cli.h"
#include "agents/al_init.h"
#include "base/al_config.h"
#include "policies/al_policy.h"
#include "proto/al_signature.h"

#include <getopt.h>
#include <limits.h>
#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: airlock keygen --name NAME [--out FILE] [--role ROLE] [--state DIR | --config FILE]\n"
        "                      [--json]\n\n"
        "Make an Ed25519 key pair for a human approver. The secret key goes to FILE\n"
        "(default ./NAME.key, mode 0600, never overwritten), the public key to FILE.pub.\n"
        "Prints the approvers.yaml entry to add. ROLE must be a human role of the policy\n"
        "(kind: human in roles.yaml, e.g. manager, security, devops; default manager): the\n"
        "state directory's policy (--state DIR, --config FILE, $AIRLOCK_CONFIG, else\n"
        "./airlock-state/airlock.yaml); on a machine without a state directory, the policy\n"
        "`airlock init` installs ($AIRLOCK_POLICY_DIR, else the shipped default).\n"
        "--json prints {name, role, key_id, public_key, secret_key_file}.\n\n"
        "exit codes: 0 key pair written, 2 usage error, a role the policy does not know as\n"
        "human (the known ones are listed), a policy that cannot be read, or the key file\n"
        "exists or cannot be written\n");
}

//  Is role a human role of the policy? The state directory's policy when there is a
//  configuration (--state, --config, $AIRLOCK_CONFIG, ./airlock-state/airlock.yaml), else,
//  on an approver's own machine, the policy `airlock init` installs ($AIRLOCK_POLICY_DIR,
//  else the shipped default). 0 yes; an exit code (printed) when not, or when the policy
//  named cannot be read.
static int
s_check_role (const char *role, const char *config_option, const char *state_option)
{
    char buffer [2048], error [1024] = "";
    const char *config_path = al_cli_config_path (config_option, state_option, buffer, sizeof buffer);
    if (!config_path) {
        fprintf (stderr, "airlock keygen: --state: path too long\n");
        return AL_EXIT_USAGE;
    }
    al_config_t *config = NULL;
    char *dir = NULL;
    struct stat info;
    if (config_option || state_option || getenv ("AIRLOCK_CONFIG") || stat (config_path, &info) == 0) {
        config = al_config_load (config_path, error, sizeof error);
        if (!config) {
            fprintf (stderr, "airlock keygen: --role %s: cannot read the policy to check it: %s\n", role, error);
            return AL_EXIT_USAGE;
        }
        dir = strdup (al_config_policy_dir (config));
    }
    else {
        char default_dir [PATH_MAX];
        dir = strdup (al_init_default_policy_dir (default_dir, sizeof default_dir));
    }
    al_policy_errors_t *errors = NULL;
    al_policy_t *policy = dir? al_policy_load (dir, &errors): NULL;
    int exit_code = AL_EXIT_OK;
    if (!policy) {
        fprintf (stderr, "airlock keygen: --role %s: the policy %s does not load: %s\n", role, dir? dir: "?",
                 al_policy_errors_count (errors)? al_policy_errors_at (errors, 0): "out of memory");
        exit_code = AL_EXIT_USAGE;
        goto cleanup;
    }
    const char *kind = al_policy_role_kind (policy, role);
    if (!kind || strcmp (kind, "human") != 0) {
        fprintf (stderr, "airlock keygen: --role %s: %s in %s; human roles:", role,
                 kind? "not a human role": "no such role", dir);
        for (size_t i = 0; i < al_policy_role_count (policy); i++) {
            const char *name = al_policy_role_at (policy, i);
            const char *its_kind = al_policy_role_kind (policy, name);
            if (its_kind && strcmp (its_kind, "human") == 0)
                fprintf (stderr, " %s", name);
        }
        fprintf (stderr, "\n");
        exit_code = AL_EXIT_USAGE;
    }
cleanup:
    al_policy_errors_destroy (&errors);
    al_policy_destroy (&policy);
    al_config_destroy (&config);
    free (dir);
    return exit_code;
}

int
al_cmd_keygen (int argc, char **argv)
{
    const char *name = NULL, *out = NULL, *role = "manager";
    const char *config_option = NULL, *state_option = NULL;
    bool json = false;
    static const struct option options [] = {
        { "name", required_argument, NULL, 'n' },
        { "out", required_argument, NULL, 'o' },
        { "role", required_argument, NULL, 'r' },
        { "json", no_argument, NULL, 'j' },
        { "config", required_argument, NULL, 'c' },
        { "state", required_argument, NULL, 's' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    int option;
    optind = 1;
    while ((option = getopt_long (argc, argv, "h", options, NULL)) != -1) {
        switch (option) {
            case 'n': name = optarg; break;
            case 'o': out = optarg; break;
            case 'r': role = optarg; break;
            case 'c': config_option = optarg; break;
            case 's': state_option = optarg; break;
            case 'j': json = true; break;
            case 'h': s_usage (stdout); return AL_EXIT_OK;
            default: s_usage (stderr); return AL_EXIT_USAGE;
        }
    }
    if (!name || optind != argc) {
        s_usage (stderr);
        return AL_EXIT_USAGE;
    }
    int role_check = s_check_role (role, config_option, state_option);
    if (role_check != AL_EXIT_OK)
        return role_check;
    if (sodium_init () < 0) {
        fprintf (stderr, "airlock keygen: libsodium failed to initialise\n");
        return AL_EXIT_USAGE;
    }
    char default_out [512];
    if (!out) {
        snprintf (default_out, sizeof default_out, "%s.key", name);
        out = default_out;
    }
    uint8_t public_key [AL_ED25519_PUBLIC_KEY_SIZE], secret_key [AL_ED25519_SECRET_KEY_SIZE];
    crypto_sign_keypair (public_key, secret_key);
    char error [512];
    al_sig_status_t status = al_key_file_write (out, name, secret_key, error, sizeof error);
    sodium_memzero (secret_key, sizeof secret_key);
    if (status != AL_SIG_OK) {
        fprintf (stderr, "airlock keygen: %s\n", error);
        return AL_EXIT_USAGE;
    }
    char hex [AL_ED25519_PUBLIC_KEY_SIZE * 2 + 1], key_id [32];
    sodium_bin2hex (hex, sizeof hex, public_key, sizeof public_key);
    al_key_id (public_key, key_id);
    if (json) {
        json_t *object = json_pack ("{s:s, s:s, s:s, s:s, s:s}", "name", name, "role", role,
                                    "key_id", key_id, "public_key", hex, "secret_key_file", out);
        char *text = object ? json_dumps (object, JSON_COMPACT) : NULL;
        if (text)
            printf ("%s\n", text);
        free (text);
        json_decref (object);
        return text ? AL_EXIT_OK : AL_EXIT_USAGE;
    }
    printf ("Secret key: %s (mode 0600; keep it private)\n"
            "Public key: %s.pub (%s)\n\n"
            "Add this approver to approvers.yaml:\n\n"
            "  - name: %s\n"
            "    roles: [%s]\n"
            "    keys:\n"
            "      - id: %s\n"
            "        ed25519: \"%s\"\n",
            out, out, key_id, name, role, key_id, hex);
    return AL_EXIT_OK;
}
