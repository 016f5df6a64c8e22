/*  test_signature.c: approval signature verification, raw Ed25519 and OpenSSH SSHSIG.

    SSHSIG signatures are made by the real `ssh-keygen -Y sign` (openssh-client is in
    scripts/install-deps), so the verifier is tested against the format as OpenSSH
    writes it, not as we think it does.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "proto/al_codec.h"
#include "proto/al_signature.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char s_digest_a [] = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
static const char s_digest_b [] = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752";

//  A valid packed statement in a malloc'd buffer.
static uint8_t *
s_statement (size_t *size_p, Airlock__Decision decision)
{
    static uint8_t approval_id [AL_APPROVAL_ID_SIZE] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
    Airlock__ApprovalStatement statement = AIRLOCK__APPROVAL_STATEMENT__INIT;
    statement.request_id = "req-0001";
    statement.deployment_type = AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD;
    statement.environment = AIRLOCK__ENVIRONMENT__ENV_PRODUCTION;
    statement.service = "demo-service";
    statement.artifact_sha256 = (char *) s_digest_a;
    statement.qa_report_sha256 = (char *) s_digest_b;
    statement.approver_key_id = "ed25519:0011223344556677";
    statement.issued_at_ms = 1790000000000ULL;
    statement.expires_at_ms = 1790000000000ULL + 3600 * 1000;
    statement.approval_id.data = approval_id;
    statement.approval_id.len = sizeof approval_id;
    statement.decision = decision;
    *size_p = airlock__approval_statement__get_packed_size (&statement);
    uint8_t *bytes = malloc (*size_p);
    assert_non_null (bytes);
    airlock__approval_statement__pack (&statement, bytes);
    return bytes;
}

static void
test_ed25519_valid_and_every_bit_flip (void **state)
{
    (void) state;
    assert_true (sodium_init () >= 0);
    uint8_t public_key [32], secret_key [64], signature [64];
    crypto_sign_keypair (public_key, secret_key);
    size_t statement_size;
    uint8_t *statement = s_statement (&statement_size, AIRLOCK__DECISION__DECISION_GRANT);
    size_t signing_size;
    uint8_t *signing = al_codec_signing_bytes (AL_SIGN_APPROVAL_STATEMENT, statement, statement_size, &signing_size);
    crypto_sign_detached (signature, NULL, signing, signing_size, secret_key);

    Airlock__SignedApproval approval = AIRLOCK__SIGNED_APPROVAL__INIT;
    approval.statement.data = statement;
    approval.statement.len = statement_size;
    approval.signature.data = signature;
    approval.signature.len = sizeof signature;
    approval.format = AIRLOCK__SIGNATURE_FORMAT__SIG_ED25519;
    approval.public_key.data = public_key;
    approval.public_key.len = sizeof public_key;

    uint8_t signer [32];
    char error [256];
    assert_int_equal (al_signature_verify_approval (&approval, signer, error, sizeof error), AL_SIG_OK);
    assert_memory_equal (signer, public_key, 32);

    //  Every single-bit flip of the statement and of the signature must fail.
    size_t attempts = 0, accepted = 0;
    uint8_t *buffers [] = { statement, signature };
    size_t sizes [] = { statement_size, sizeof signature };
    for (size_t b = 0; b < 2; b++)
        for (size_t bit = 0; bit < sizes [b] * 8; bit++) {
            buffers [b][bit / 8] ^= (uint8_t) (1u << (bit % 8));
            attempts++;
            if (al_signature_verify_approval (&approval, signer, error, sizeof error) == AL_SIG_OK)
                accepted++;
            buffers [b][bit / 8] ^= (uint8_t) (1u << (bit % 8));
        }
    assert_int_equal (accepted, 0);
    assert_true (attempts == (statement_size + 64) * 8);

    //  Another key: the signature does not verify.
    uint8_t other_public [32], other_secret [64];
    crypto_sign_keypair (other_public, other_secret);
    approval.public_key.data = other_public;
    assert_int_equal (al_signature_verify_approval (&approval, signer, error, sizeof error), AL_SIG_ERR_BAD_SIGNATURE);

    //  A signature over the raw statement (no domain prefix) does not verify.
    crypto_sign_detached (signature, NULL, statement, statement_size, secret_key);
    approval.public_key.data = public_key;
    assert_int_equal (al_signature_verify_approval (&approval, signer, error, sizeof error), AL_SIG_ERR_BAD_SIGNATURE);

    //  Wrong sizes and unknown formats are format errors, not crashes.
    approval.signature.len = 63;
    assert_int_equal (al_signature_verify_approval (&approval, signer, error, sizeof error), AL_SIG_ERR_FORMAT);
    approval.signature.len = 64;
    approval.format = 7;
    assert_int_equal (al_signature_verify_approval (&approval, signer, error, sizeof error), AL_SIG_ERR_FORMAT);
    free (signing);
    free (statement);
}

static void
s_run (const char *command)
{
    int rc = system (command);
    if (rc != 0)
        fail_msg ("command failed (%d): %s", rc, command);
}

static uint8_t *
s_read_file (const char *path, size_t *size_p)
{
    FILE *file = fopen (path, "rb");
    assert_non_null (file);
    fseek (file, 0, SEEK_END);
    long size = ftell (file);
    fseek (file, 0, SEEK_SET);
    uint8_t *data = malloc ((size_t) size + 1);
    assert_non_null (data);
    assert_int_equal (fread (data, 1, (size_t) size, file), (size_t) size);
    data [size] = 0;
    fclose (file);
    *size_p = (size_t) size;
    return data;
}

static void
s_write_file (const char *path, const uint8_t *data, size_t size)
{
    FILE *file = fopen (path, "wb");
    assert_non_null (file);
    assert_int_equal (fwrite (data, 1, size, file), size);
    fclose (file);
}

static void
test_sshsig_from_ssh_keygen (void **state)
{
    (void) state;
    char dir [] = "/tmp/airlock-sshsig-XXXXXX";
    assert_non_null (mkdtemp (dir));
    char command [1024], path [512];

    snprintf (command, sizeof command, "ssh-keygen -q -t ed25519 -N '' -C alice@example -f %s/alice", dir);
    s_run (command);
    snprintf (command, sizeof command, "ssh-keygen -q -t ed25519 -N '' -C mallory -f %s/mallory", dir);
    s_run (command);

    size_t statement_size;
    uint8_t *statement = s_statement (&statement_size, AIRLOCK__DECISION__DECISION_GRANT);
    size_t signing_size;
    uint8_t *signing = al_codec_signing_bytes (AL_SIGN_APPROVAL_STATEMENT, statement, statement_size, &signing_size);
    snprintf (path, sizeof path, "%s/statement.bin", dir);
    s_write_file (path, signing, signing_size);

    //  The approver's signature, and two that must never count.
    snprintf (command, sizeof command,
              "ssh-keygen -q -Y sign -f %s/alice -n airlock-approval %s/statement.bin >/dev/null 2>&1 && "
              "mv %s/statement.bin.sig %s/good.sig && "
              "ssh-keygen -q -Y sign -f %s/alice -n git %s/statement.bin >/dev/null 2>&1 && "
              "mv %s/statement.bin.sig %s/git.sig",
              dir, dir, dir, dir, dir, dir, dir, dir);
    s_run (command);

    size_t pub_size, sig_size, git_size;
    snprintf (path, sizeof path, "%s/alice.pub", dir);
    char *pub_line = (char *) s_read_file (path, &pub_size);
    uint8_t alice [32];
    assert_true (al_ssh_ed25519_public_key_parse (pub_line, alice));
    snprintf (path, sizeof path, "%s/good.sig", dir);
    uint8_t *sig = s_read_file (path, &sig_size);
    snprintf (path, sizeof path, "%s/git.sig", dir);
    uint8_t *git_sig = s_read_file (path, &git_size);

    Airlock__SignedApproval approval = AIRLOCK__SIGNED_APPROVAL__INIT;
    approval.statement.data = statement;
    approval.statement.len = statement_size;
    approval.signature.data = sig;
    approval.signature.len = sig_size;
    approval.format = AIRLOCK__SIGNATURE_FORMAT__SIG_SSHSIG;

    uint8_t signer [32];
    char error [256];
    assert_int_equal (al_signature_verify_approval (&approval, signer, error, sizeof error), AL_SIG_OK);
    assert_memory_equal (signer, alice, 32);

    //  With the public key given: it must be the key inside the blob.
    approval.public_key.data = alice;
    approval.public_key.len = 32;
    assert_int_equal (al_signature_verify_approval (&approval, signer, error, sizeof error), AL_SIG_OK);
    snprintf (path, sizeof path, "%s/mallory.pub", dir);
    size_t mallory_size;
    char *mallory_line = (char *) s_read_file (path, &mallory_size);
    uint8_t mallory [32];
    assert_true (al_ssh_ed25519_public_key_parse (mallory_line, mallory));
    approval.public_key.data = mallory;
    assert_int_equal (al_signature_verify_approval (&approval, signer, error, sizeof error), AL_SIG_ERR_KEY);
    approval.public_key.len = 0;

    //  A git-namespace signature of the very same bytes never counts.
    approval.signature.data = git_sig;
    approval.signature.len = git_size;
    assert_int_equal (al_signature_verify_approval (&approval, signer, error, sizeof error), AL_SIG_ERR_NAMESPACE);

    //  Another statement (a different artifact) with alice's signature: rejected.
    approval.signature.data = sig;
    approval.signature.len = sig_size;
    statement [statement_size / 2] ^= 0x01;
    assert_int_equal (al_signature_verify_approval (&approval, signer, error, sizeof error), AL_SIG_ERR_BAD_SIGNATURE);
    statement [statement_size / 2] ^= 0x01;

    //  Every truncation of the armored blob fails cleanly.
    for (size_t cut = 0; cut < sig_size - 30; cut++) {
        approval.signature.len = cut;
        assert_int_not_equal (al_signature_verify_approval (&approval, signer, error, sizeof error), AL_SIG_OK);
    }

    free (mallory_line);
    free (git_sig);
    free (sig);
    free (pub_line);
    free (signing);
    free (statement);
    snprintf (command, sizeof command, "rm -rf %s", dir);
    s_run (command);
}

static void
test_statement_validation (void **state)
{
    (void) state;
    size_t size;
    uint8_t *bytes = s_statement (&size, AIRLOCK__DECISION__DECISION_GRANT);
    Airlock__ApprovalStatement *statement = NULL;
    char error [256];
    assert_int_equal (al_statement_unpack (bytes, size, &statement, error, sizeof error), AL_SIG_OK);
    assert_string_equal (statement->request_id, "req-0001");
    assert_string_equal (statement->artifact_sha256, s_digest_a);

    //  Each required field removed in turn gives an error naming it.
    struct { const char *field; void (*clear) (Airlock__ApprovalStatement *); } cases [] = {
        { "request_id", NULL }, { "artifact_sha256", NULL }, { "qa_report_sha256", NULL },
        { "approval_id", NULL }, { "decision", NULL }, { "expires_at_ms", NULL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        Airlock__ApprovalStatement copy = *statement;
        if (strcmp (cases [i].field, "request_id") == 0) copy.request_id = "";
        if (strcmp (cases [i].field, "artifact_sha256") == 0) copy.artifact_sha256 = "abc";
        if (strcmp (cases [i].field, "qa_report_sha256") == 0) copy.qa_report_sha256 = "";
        if (strcmp (cases [i].field, "approval_id") == 0) copy.approval_id.len = 8;
        if (strcmp (cases [i].field, "decision") == 0) copy.decision = 9;
        if (strcmp (cases [i].field, "expires_at_ms") == 0) copy.expires_at_ms = copy.issued_at_ms;
        size_t packed_size = airlock__approval_statement__get_packed_size (&copy);
        uint8_t *packed = malloc (packed_size + 1);
        airlock__approval_statement__pack (&copy, packed);
        Airlock__ApprovalStatement *bad = NULL;
        assert_int_equal (al_statement_unpack (packed, packed_size, &bad, error, sizeof error), AL_SIG_ERR_STATEMENT);
        assert_null (bad);
        assert_non_null (strstr (error, cases [i].field));
        free (packed);
    }
    airlock__approval_statement__free_unpacked (statement, NULL);

    //  Garbage and empty input.
    assert_int_equal (al_statement_unpack ((const uint8_t *) "\xff\xff\xff", 3, &statement, error, sizeof error),
                      AL_SIG_ERR_STATEMENT);
    assert_int_equal (al_statement_unpack (bytes, 0, &statement, error, sizeof error), AL_SIG_ERR_STATEMENT);
    free (bytes);
}

static void
test_key_helpers (void **state)
{
    (void) state;
    uint8_t key [32];
    for (int i = 0; i < 32; i++)
        key [i] = (uint8_t) i;
    char key_id [32];
    al_key_id (key, key_id);
    assert_string_equal (key_id, "ed25519:0001020304050607");
    assert_false (al_ssh_ed25519_public_key_parse ("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ== x", key));
    assert_false (al_ssh_ed25519_public_key_parse ("ssh-ed25519 !!!notbase64", key));
    assert_false (al_ssh_ed25519_public_key_parse ("", key));
    //  A well-formed blob of the wrong key type inside an ssh-ed25519 line.
    assert_false (al_ssh_ed25519_public_key_parse ("ssh-ed25519 AAAAB3NzaC1yc2EAAAADAQAB", key));
}

static void
test_key_file (void **state)
{
    (void) state;
    assert_true (sodium_init () >= 0);
    char dir [] = "/tmp/airlock-keyfile-XXXXXX";
    assert_non_null (mkdtemp (dir));
    char path [512], public_path [600], error [512], name [80];
    snprintf (path, sizeof path, "%s/alice.key", dir);
    snprintf (public_path, sizeof public_path, "%s.pub", path);
    uint8_t public_key [32], secret_key [64], read_back [64];
    crypto_sign_keypair (public_key, secret_key);

    assert_int_equal (al_key_file_write (path, "alice", secret_key, error, sizeof error), AL_SIG_OK);
    struct stat st;
    assert_int_equal (stat (path, &st), 0);
    assert_int_equal (st.st_mode & 0777, 0600);
    assert_int_equal (al_key_file_read (path, read_back, name, sizeof name, error, sizeof error), AL_SIG_OK);
    assert_memory_equal (read_back, secret_key, 64);
    assert_string_equal (name, "alice");

    //  The public file holds the hex public key.
    size_t size;
    char *public_text = (char *) s_read_file (public_path, &size);
    char hex [65];
    sodium_bin2hex (hex, sizeof hex, public_key, 32);
    assert_non_null (strstr (public_text, hex));
    free (public_text);

    //  Never overwritten.
    uint8_t other_public [32], other_secret [64];
    crypto_sign_keypair (other_public, other_secret);
    assert_int_equal (al_key_file_write (path, "alice", other_secret, error, sizeof error), AL_SIG_ERR_KEY);
    assert_non_null (strstr (error, "already exists"));
    assert_int_equal (al_key_file_read (path, read_back, NULL, 0, error, sizeof error), AL_SIG_OK);
    assert_memory_equal (read_back, secret_key, 64);

    //  Readable by others: refused.
    assert_int_equal (chmod (path, 0644), 0);
    assert_int_equal (al_key_file_read (path, read_back, NULL, 0, error, sizeof error), AL_SIG_ERR_KEY);
    assert_non_null (strstr (error, "mode 0644: a secret key must be readable by its owner only (chmod 600 "));

    //  A corrupted key (public half altered) is refused.
    secret_key [40] ^= 0x01;
    snprintf (path, sizeof path, "%s/bad.key", dir);
    assert_int_equal (al_key_file_write (path, "bad", secret_key, error, sizeof error), AL_SIG_OK);
    assert_int_equal (al_key_file_read (path, read_back, NULL, 0, error, sizeof error), AL_SIG_ERR_KEY);
    assert_non_null (strstr (error, "corrupted"));

    char command [600];
    snprintf (command, sizeof command, "rm -rf %s", dir);
    s_run (command);
}

//  What `airlock approve` checks before it shows a request: a private key of the kind
//  asked for, its owner's alone.
static void
test_key_file_check_signing (void **state)
{
    (void) state;
    assert_true (sodium_init () >= 0);
    char dir [] = "/tmp/airlock-keycheck-XXXXXX";
    assert_non_null (mkdtemp (dir));
    char path [512], public_path [600], error [512] = "", command [1200];
    snprintf (path, sizeof path, "%s/alice.key", dir);
    snprintf (public_path, sizeof public_path, "%s.pub", path);
    uint8_t public_key [32], secret_key [64];
    crypto_sign_keypair (public_key, secret_key);
    assert_int_equal (al_key_file_write (path, "alice", secret_key, error, sizeof error), AL_SIG_OK);
    assert_true (al_key_file_check_signing (path, false, error, sizeof error));

    //  The public half, named .pub: the private file is named.
    assert_false (al_key_file_check_signing (public_path, false, error, sizeof error));
    assert_non_null (strstr (error, "this is the public half of a key; give the private key file ("));
    assert_non_null (strstr (error, path));
    //  An airlock key given as an SSH key, and the other way round.
    assert_false (al_key_file_check_signing (path, true, error, sizeof error));
    assert_non_null (strstr (error, "it is an airlock key: use --key"));
    char ssh_path [600];
    snprintf (ssh_path, sizeof ssh_path, "%s/id", dir);
    snprintf (command, sizeof command, "ssh-keygen -q -t ed25519 -N '' -C bob -f %s", ssh_path);
    s_run (command);
    assert_true (al_key_file_check_signing (ssh_path, true, error, sizeof error));
    assert_false (al_key_file_check_signing (ssh_path, false, error, sizeof error));
    assert_non_null (strstr (error, "it is an OpenSSH key: use --ssh-key"));
    //  Readable by others: refused before anything is shown.
    assert_int_equal (chmod (path, 0640), 0);
    assert_false (al_key_file_check_signing (path, false, error, sizeof error));
    assert_non_null (strstr (error, "mode 0640"));
    //  Missing, a directory, an empty file.
    snprintf (command, sizeof command, "%s/missing", dir);
    assert_false (al_key_file_check_signing (command, false, error, sizeof error));
    assert_non_null (strstr (error, "cannot open"));
    assert_false (al_key_file_check_signing (dir, false, error, sizeof error));
    assert_non_null (strstr (error, "not a regular file"));
    snprintf (command, sizeof command, "%s/empty", dir);
    FILE *empty = fopen (command, "w");
    assert_non_null (empty);
    fclose (empty);
    assert_false (al_key_file_check_signing (command, false, error, sizeof error));
    assert_non_null (strstr (error, "make one with `airlock keygen`"));

    snprintf (command, sizeof command, "rm -rf %s", dir);
    s_run (command);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_ed25519_valid_and_every_bit_flip),
        cmocka_unit_test (test_sshsig_from_ssh_keygen),
        cmocka_unit_test (test_statement_validation),
        cmocka_unit_test (test_key_helpers),
        cmocka_unit_test (test_key_file),
        cmocka_unit_test (test_key_file_check_signing),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
