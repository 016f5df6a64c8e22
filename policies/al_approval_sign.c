/*  al_approval_sign.c: build and sign approval statements (the approver's side).

    The statement is packed once; those exact bytes are what gets signed and what
    travels in SignedApproval.statement (the verifier never re-encodes).
    Running ssh-keygen: base/al_child with an argument vector (no shell), in a private
    temporary directory removed afterwards; its stdin and stderr are the terminal and
    it stays in our process group, so a passphrase prompt reaches the person at the
    terminal. (This is the approver's side, run by `airlock approve`; nothing on the
    broker's decision path signs or runs a program.)
*/
#include "policies/al_approval_sign.h"
#include "base/al_child.h"
#include "base/al_error.h"
#include "base/al_file.h"
#include "proto/al_codec.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct al_approval_signed_t {
    uint8_t *statement;
    size_t statement_size;
    uint8_t *signature;
    size_t signature_size;
    uint8_t public_key [AL_ED25519_PUBLIC_KEY_SIZE];
    uint8_t approval_id [AL_APPROVAL_ID_SIZE];
    char key_id [32];
    Airlock__SignedApproval message;
};

void
al_approval_signed_destroy (al_approval_signed_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    al_approval_signed_t *self = *self_p;
    free (self->statement);
    free (self->signature);
    free (self);
    *self_p = NULL;
}

//  A new object holding the packed statement for request, signed later by the caller.
static al_approval_signed_t *
s_new_statement (const Airlock__ApprovalRequest *request, const uint8_t public_key [32],
                 const al_approval_sign_options_t *options, char *error, size_t error_size)
{
    if (sodium_init () < 0)
        return NULL;
    if (options->decision != AIRLOCK__DECISION__DECISION_GRANT
    &&  options->decision != AIRLOCK__DECISION__DECISION_DENY) {
        al_error_set (error, error_size, "decision must be GRANT or DENY");
        return NULL;
    }
    if (options->valid_for_ms == 0) {
        al_error_set (error, error_size, "an approval must be valid for some time");
        return NULL;
    }
    al_approval_signed_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    memcpy (self->public_key, public_key, AL_ED25519_PUBLIC_KEY_SIZE);
    al_key_id (public_key, self->key_id);
    randombytes_buf (self->approval_id, sizeof self->approval_id);

    Airlock__ApprovalStatement statement = AIRLOCK__APPROVAL_STATEMENT__INIT;
    statement.request_id = request->request_id;
    statement.deployment_type = request->deployment_type;
    statement.environment = request->environment;
    statement.service = request->service;
    statement.artifact_sha256 = request->artifact_sha256;
    statement.qa_report_sha256 = request->qa_report_sha256;
    statement.migration_set_sha256 = request->migration_set_sha256;
    statement.approver_key_id = self->key_id;
    statement.issued_at_ms = options->issued_at_ms;
    statement.expires_at_ms = options->issued_at_ms + options->valid_for_ms;
    statement.approval_id.data = self->approval_id;
    statement.approval_id.len = sizeof self->approval_id;
    statement.decision = options->decision;
    statement.reason = (char *) (options->reason ? options->reason : "");
    statement.break_glass = options->break_glass;
    //  Who submitted the release is part of what the human signs (four eyes).
    statement.submitted_by = request->submitted_by;
    self->statement_size = airlock__approval_statement__get_packed_size (&statement);
    self->statement = malloc (self->statement_size + 1);
    if (!self->statement) {
        al_approval_signed_destroy (&self);
        return NULL;
    }
    airlock__approval_statement__pack (&statement, self->statement);
    //  Refuse to sign what the verifier would refuse to read.
    Airlock__ApprovalStatement *check = NULL;
    if (al_statement_unpack (self->statement, self->statement_size, &check, error, error_size) != AL_SIG_OK) {
        al_approval_signed_destroy (&self);
        return NULL;
    }
    airlock__approval_statement__free_unpacked (check, NULL);
    return self;
}

static void
s_finish (al_approval_signed_t *self, Airlock__SignatureFormat format)
{
    Airlock__SignedApproval message = AIRLOCK__SIGNED_APPROVAL__INIT;
    message.statement.data = self->statement;
    message.statement.len = self->statement_size;
    message.signature.data = self->signature;
    message.signature.len = self->signature_size;
    message.format = format;
    message.public_key.data = self->public_key;
    message.public_key.len = AL_ED25519_PUBLIC_KEY_SIZE;
    self->message = message;
}

al_approval_signed_t *
al_approval_sign_with_secret (const Airlock__ApprovalRequest *request,
                              const uint8_t secret_key [AL_ED25519_SECRET_KEY_SIZE],
                              const al_approval_sign_options_t *options, char *error, size_t error_size)
{
    uint8_t public_key [AL_ED25519_PUBLIC_KEY_SIZE];
    crypto_sign_ed25519_sk_to_pk (public_key, secret_key);
    al_approval_signed_t *self = s_new_statement (request, public_key, options, error, error_size);
    if (!self)
        return NULL;
    size_t bytes_size;
    uint8_t *bytes = al_codec_signing_bytes (AL_SIGN_APPROVAL_STATEMENT, self->statement,
                                             self->statement_size, &bytes_size);
    self->signature = malloc (AL_ED25519_SIGNATURE_SIZE);
    if (!bytes || !self->signature) {
        free (bytes);
        al_approval_signed_destroy (&self);
        return NULL;
    }
    crypto_sign_detached (self->signature, NULL, bytes, bytes_size, secret_key);
    self->signature_size = AL_ED25519_SIGNATURE_SIZE;
    free (bytes);
    s_finish (self, AIRLOCK__SIGNATURE_FORMAT__SIG_ED25519);
    return self;
}

al_approval_signed_t *
al_approval_sign_with_key_file (const Airlock__ApprovalRequest *request, const char *key_path,
                                const al_approval_sign_options_t *options, char *error, size_t error_size)
{
    uint8_t secret_key [AL_ED25519_SECRET_KEY_SIZE];
    if (al_key_file_read (key_path, secret_key, NULL, 0, error, error_size) != AL_SIG_OK)
        return NULL;
    al_approval_signed_t *self = al_approval_sign_with_secret (request, secret_key, options, error, error_size);
    sodium_memzero (secret_key, sizeof secret_key);
    return self;
}

//  A new file (never an existing one: the directory is ours alone), 0600.
static bool
s_write_all (const char *path, const uint8_t *data, size_t size)
{
    int fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return false;
    bool ok = write (fd, data, size) == (ssize_t) size;
    return (close (fd) == 0) && ok;
}

//  A non-empty file of fewer than max bytes, or NULL.
static uint8_t *
s_read_all (const char *path, size_t max, size_t *size_p)
{
    size_t size = 0;
    char *data = al_file_read (path, max - 1, &size, NULL, 0);
    if (data && size == 0) {
        free (data);
        data = NULL;
    }
    if (data)
        *size_p = size;
    return (uint8_t *) data;
}

al_approval_signed_t *
al_approval_sign_with_ssh_key (const Airlock__ApprovalRequest *request, const char *key_path,
                               const al_approval_sign_options_t *options, char *error, size_t error_size)
{
    char public_path [4096];
    snprintf (public_path, sizeof public_path, "%s.pub", key_path);
    size_t line_size = 0;
    uint8_t *line = s_read_all (public_path, 4096, &line_size);
    uint8_t public_key [AL_ED25519_PUBLIC_KEY_SIZE];
    bool parsed = false;
    if (line) {
        line [line_size < 4095 ? line_size : 4095] = 0;
        parsed = al_ssh_ed25519_public_key_parse ((char *) line, public_key);
        free (line);
    }
    if (!parsed) {
        al_error_set (error, error_size, "%s: not an ssh-ed25519 public key (airlock verifies ed25519 SSH keys only)",
                      public_path);
        return NULL;
    }
    al_approval_signed_t *self = s_new_statement (request, public_key, options, error, error_size);
    if (!self)
        return NULL;
    char dir [] = "/tmp/airlock-sign-XXXXXX", message_path [64], signature_path [80];
    uint8_t *bytes = NULL;
    if (!mkdtemp (dir)) {
        al_error_set (error, error_size, "cannot create a temporary directory");
        al_approval_signed_destroy (&self);
        return NULL;
    }
    snprintf (message_path, sizeof message_path, "%s/statement", dir);
    snprintf (signature_path, sizeof signature_path, "%s/statement.sig", dir);
    size_t bytes_size;
    bytes = al_codec_signing_bytes (AL_SIGN_APPROVAL_STATEMENT, self->statement, self->statement_size, &bytes_size);
    if (!bytes || !s_write_all (message_path, bytes, bytes_size)) {
        al_error_set (error, error_size, "cannot write the statement for ssh-keygen");
        goto failed;
    }
    //  ssh-keygen prints "Signing file ..." on stderr and may ask for a passphrase: its
    //  stdin and stderr stay the terminal, in our process group (a group of its own
    //  would be stopped when it reads the terminal). No deadline: a person is typing.
    char *argv [] = { "ssh-keygen", "-q", "-Y", "sign", "-f", (char *) key_path,
                      "-n", (char *) AL_SSHSIG_NAMESPACE, message_path, NULL };
    al_child_options_t child_options = {
        .in = AL_CHILD_INHERIT, .out = AL_CHILD_DEVNULL, .err = AL_CHILD_INHERIT, .same_group = true
    };
    al_child_t *child = al_child_run (argv, &child_options, -1, NULL, error, error_size);
    if (!child)
        goto failed;
    if (al_child_exit_code (child) != 0) {
        al_error_set (error, error_size, "ssh-keygen -Y sign -f %s failed (%s)", key_path,
                      al_child_status_text (child));
        al_child_destroy (&child);
        goto failed;
    }
    al_child_destroy (&child);
    self->signature = s_read_all (signature_path, AL_SSHSIG_MAX_SIZE, &self->signature_size);
    if (!self->signature) {
        al_error_set (error, error_size, "ssh-keygen wrote no signature");
        goto failed;
    }
    s_finish (self, AIRLOCK__SIGNATURE_FORMAT__SIG_SSHSIG);
    //  Check our own work before it leaves: the signature must verify as the broker will.
    uint8_t signer [AL_ED25519_PUBLIC_KEY_SIZE];
    if (al_signature_verify_approval (&self->message, signer, error, error_size) != AL_SIG_OK)
        goto failed;
    unlink (signature_path);
    unlink (message_path);
    rmdir (dir);
    free (bytes);
    return self;

failed:
    unlink (signature_path);
    unlink (message_path);
    rmdir (dir);
    free (bytes);
    al_approval_signed_destroy (&self);
    return NULL;
}

const Airlock__SignedApproval *
al_approval_signed_message (const al_approval_signed_t *self)
{
    return &self->message;
}

const uint8_t *
al_approval_signed_id (const al_approval_signed_t *self)
{
    return self->approval_id;
}

const char *
al_approval_signed_key_id (const al_approval_signed_t *self)
{
    return self->key_id;
}
