/*  cmd_keygen.c: `airlock keygen`: make an approver's Ed25519 key pair.

    The secret key file is written with mode 0600 and never overwritten; the command
    prints the entry to paste into approvers.yaml. People who prefer their existing
    OpenSSH ed25519 key list it as `ssh: "ssh-ed25519 AAAA..."` instead (docs/approvals.md).
*/
#include "cli/cli.h"
#include "proto/al_signature.h"

#include <getopt.h>
#include <jansson.h>
#include <sodium.h>
#include <string.h>

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: airlock keygen --name NAME [--out FILE] [--role ROLE] [--json]\n\n"
        "Make an Ed25519 key pair for a human approver. The secret key goes to FILE\n"
        "(default ./NAME.key, mode 0600, never overwritten), the public key to FILE.pub.\n"
        "Prints the approvers.yaml entry to add (ROLE: manager, security or devops;\n"
        "default manager). --json prints {name, key_id, public_key, secret_key_file}.\n");
}

int
al_cmd_keygen (int argc, char **argv)
{
    const char *name = NULL, *out = NULL, *role = "manager";
    bool json = false;
    static const struct option options [] = {
        { "name", required_argument, NULL, 'n' },
        { "out", required_argument, NULL, 'o' },
        { "role", required_argument, NULL, 'r' },
        { "json", no_argument, NULL, 'j' },
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
            case 'j': json = true; break;
            case 'h': s_usage (stdout); return AL_EXIT_OK;
            default: s_usage (stderr); return AL_EXIT_USAGE;
        }
    }
    if (!name || optind != argc) {
        s_usage (stderr);
        return AL_EXIT_USAGE;
    }
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
