/*  fuzz_sshsig.c: libFuzzer target for the approval signature parsers: SSHSIG blobs
    (armored and raw), approval statements, and OpenSSH public key lines. None may crash,
    leak or accept: a random input never verifies against a fixed message.
*/
#include "proto/al_signature.h"
#include <stdlib.h>
#include <string.h>

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    //  Not the message the seed corpus signed ("airlock fuzz message"), so a seed
    //  parses all the way to the signature check and fails only there.
    static const uint8_t message [] = "airlock fuzz target message";
    uint8_t key [AL_ED25519_PUBLIC_KEY_SIZE];
    char error [256];
    if (al_sshsig_verify (data, size, message, sizeof message, AL_SSHSIG_NAMESPACE, key,
                          error, sizeof error) == AL_SIG_OK)
        abort ();   // a forged signature verified
    Airlock__ApprovalStatement *statement = NULL;
    if (al_statement_unpack (data, size, &statement, error, sizeof error) == AL_SIG_OK)
        airlock__approval_statement__free_unpacked (statement, NULL);
    char *line = malloc (size + 1);
    if (line) {
        memcpy (line, data, size);
        line [size] = 0;
        al_ssh_ed25519_public_key_parse (line, key);
        free (line);
    }
    return 0;
}
