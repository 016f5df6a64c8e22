/*  al_signature.h: verify the signature of a signed approval, in either of the two
    formats a human can produce: raw Ed25519 (airlock keygen keys, libsodium) or OpenSSH's
    SSHSIG (`ssh-keygen -Y sign -n airlock-approval`, ed25519 keys only).

    What is signed is always the domain-separated signing bytes of the approval statement
    (al_codec_signing_bytes (AL_SIGN_APPROVAL_STATEMENT, statement bytes)): the statement
    bytes carried in the SignedApproval, never a re-encoding. For SSHSIG those bytes are
    the "message" that ssh-keygen hashes; the SSHSIG namespace must be exactly
    "airlock-approval", so an SSH signature made for git or for file signing never counts.

    Verification answers WHICH Ed25519 key signed; whether that key belongs to an approver,
    and whether the statement matches a request, is the policy's business (al_policy).
    Pure functions: thread-safe. All input is treated as hostile.
*/
#ifndef AL_SIGNATURE_H_INCLUDED
#define AL_SIGNATURE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "proto/airlock.pb-c.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AL_ED25519_PUBLIC_KEY_SIZE 32
#define AL_ED25519_SECRET_KEY_SIZE 64
#define AL_ED25519_SIGNATURE_SIZE 64
//  The SSHSIG namespace of airlock approvals.
#define AL_SSHSIG_NAMESPACE "airlock-approval"
//  Largest SSHSIG blob (armored or raw) accepted.
#define AL_SSHSIG_MAX_SIZE 4096
//  An approval id is 16 random bytes.
#define AL_APPROVAL_ID_SIZE 16

typedef enum {
    AL_SIG_OK = 0,
    AL_SIG_ERR_FORMAT,          // unknown format, or a malformed blob (SSHSIG parse error)
    AL_SIG_ERR_KEY,             // public key missing, of the wrong type or size, or not the one in the blob
    AL_SIG_ERR_NAMESPACE,       // SSHSIG namespace is not "airlock-approval"
    AL_SIG_ERR_BAD_SIGNATURE,   // the signature does not verify
    AL_SIG_ERR_STATEMENT,       // the statement bytes are not a valid ApprovalStatement
    AL_SIG_ERR_NOMEM
} al_sig_status_t;

const char *al_sig_strerror (al_sig_status_t status);

//  Verify approval->signature over the signing bytes of approval->statement. On AL_SIG_OK
//  public_key receives the 32-byte Ed25519 key that signed (for SSHSIG, the key inside
//  the blob, which must equal approval->public_key when that is set). error gets
//  "signed_approval.FIELD: what is wrong" on failure.
al_sig_status_t al_signature_verify_approval (const Airlock__SignedApproval *approval,
                                              uint8_t public_key [AL_ED25519_PUBLIC_KEY_SIZE],
                                              char *error, size_t error_size);

//  Verify an SSHSIG blob (armored "-----BEGIN SSH SIGNATURE-----" text or the raw binary
//  blob) over message with namespace. On success public_key gets the ed25519 key.
al_sig_status_t al_sshsig_verify (const uint8_t *blob, size_t blob_size,
                                  const uint8_t *message, size_t message_size,
                                  const char *namespace_,
                                  uint8_t public_key [AL_ED25519_PUBLIC_KEY_SIZE],
                                  char *error, size_t error_size);

//  Unpack statement bytes into an ApprovalStatement and check that it is complete: request
//  id, deployment type, environment, service, artifact digest, QA report digest, key id,
//  issued/expires (expires after issued), a 16-byte approval id, decision GRANT or DENY.
//  On success *statement_p must be freed with airlock__approval_statement__free_unpacked.
al_sig_status_t al_statement_unpack (const uint8_t *bytes, size_t size,
                                     Airlock__ApprovalStatement **statement_p,
                                     char *error, size_t error_size);

//  Key id of a public key: "ed25519:" + hex of its first 8 bytes (stable, short, printable).
void al_key_id (const uint8_t public_key [AL_ED25519_PUBLIC_KEY_SIZE], char key_id [32]);

//  Parse an OpenSSH public key line "ssh-ed25519 AAAA... [comment]" into a 32-byte key.
bool al_ssh_ed25519_public_key_parse (const char *line, uint8_t public_key [AL_ED25519_PUBLIC_KEY_SIZE]);

//  Approver key files made by `airlock keygen`. The secret file is one line,
//      airlock-ed25519-secret-v1 <base64 of the 64-byte libsodium secret key> <name>
//  written with mode 0600 (never overwritten: AL_SIG_ERR_KEY if it exists); the public
//  file (path + ".pub") is
//      airlock-ed25519 <hex of the 32-byte public key> <name>
//  Returns AL_SIG_OK, or an error with "path: what is wrong".
al_sig_status_t al_key_file_write (const char *path, const char *name,
                                   const uint8_t secret_key [AL_ED25519_SECRET_KEY_SIZE],
                                   char *error, size_t error_size);
//  A secret key file (approver key, CURVE *.cert_secret, checkpoint.key) must be readable
//  by its owner only. True if path's mode grants nothing to group or others; else false
//  with "PATH: mode 0644: a secret key must be readable by its owner only (chmod 600
//  PATH)" (or "PATH: cannot stat: ...") in error. fd >= 0: check that open file instead
//  (no race between the check and the read); path then only names it.
bool al_secret_file_private (const char *path, int fd, char *error, size_t error_size);

//  Read a secret key file; refuses a file readable by group or others.
al_sig_status_t al_key_file_read (const char *path, uint8_t secret_key [AL_ED25519_SECRET_KEY_SIZE],
                                  char *name, size_t name_size, char *error, size_t error_size);

//  Can PATH sign: a private key of the kind asked for (SSH: an OpenSSH private key for
//  `ssh-keygen -Y sign`; else an airlock secret key file, read whole), a regular file
//  readable by its owner only? Checked before a human is shown what to sign. False with
//  "PATH: what is wrong" in error: the public half given instead (naming the private
//  file for a ".pub"), the other kind of key (which option takes it), not a regular
//  file, a mode others can read, a corrupted airlock key.
bool al_key_file_check_signing (const char *path, bool ssh, char *error, size_t error_size);

#ifdef __cplusplus
}
#endif

#endif
