/*  al_approval_sign.h: the approver's side: build the statement for a request and sign it.

    The statement copies every field the gate compares from the request (so a human
    signs exactly what they were shown), adds the signing key's id, issued/expires
    times, a fresh random approval id and the decision. Two ways to sign:
    - an airlock key file (`airlock keygen`): raw Ed25519 with libsodium;
    - an OpenSSH ed25519 private key: `ssh-keygen -Y sign -n airlock-approval` is run on
      the signing bytes (so an agent or passphrase prompt works as the person is used
      to), and the resulting SSHSIG blob is carried as is.
    The result is a SignedApproval ready to put in an Envelope.

    Where this sits in the approval decision (docs/design.md): 1. policies/al_approval_sign,
    the approver signs; 2. broker/al_approval_desk, the broker's desk collects; 3.
    policies/al_approval_gate, the decision the desk (and deploy-manager again) asks for.
*/
#ifndef AL_APPROVAL_H_INCLUDED
#define AL_APPROVAL_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "proto/al_signature.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    Airlock__Decision decision;     // GRANT or DENY
    const char *reason;             // for a DENY (may be NULL)
    bool break_glass;               // consciously override an active freeze / closed window
    uint64_t issued_at_ms;          // the caller's clock reading
    uint64_t valid_for_ms;          // expires_at = issued_at + valid_for
} al_approval_sign_options_t;

//  A signed approval: owns its buffers; free with al_approval_signed_destroy.
typedef struct al_approval_signed_t al_approval_signed_t;

//  Sign with an airlock key file (raw Ed25519).
al_approval_signed_t *al_approval_sign_with_key_file (const Airlock__ApprovalRequest *request,
                                                      const char *key_path,
                                                      const al_approval_sign_options_t *options,
                                                      char *error, size_t error_size);
//  Sign with an OpenSSH ed25519 private key through ssh-keygen -Y sign (its public key
//  is read from key_path + ".pub").
al_approval_signed_t *al_approval_sign_with_ssh_key (const Airlock__ApprovalRequest *request,
                                                     const char *key_path,
                                                     const al_approval_sign_options_t *options,
                                                     char *error, size_t error_size);
//  Sign with a secret key in memory (tests, the demo's approver).
al_approval_signed_t *al_approval_sign_with_secret (const Airlock__ApprovalRequest *request,
                                                    const uint8_t secret_key [AL_ED25519_SECRET_KEY_SIZE],
                                                    const al_approval_sign_options_t *options,
                                                    char *error, size_t error_size);

//  The SignedApproval message (borrowed; valid while the object lives).
const Airlock__SignedApproval *al_approval_signed_message (const al_approval_signed_t *self);
//  The 16-byte approval id, and the signing key's id.
const uint8_t *al_approval_signed_id (const al_approval_signed_t *self);
const char *al_approval_signed_key_id (const al_approval_signed_t *self);
void al_approval_signed_destroy (al_approval_signed_t **self_p);

#ifdef __cplusplus
}
#endif

#endif
