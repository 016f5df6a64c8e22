/*  al_codec.h: the envelope codec: pack, unpack with a size limit, validate per type,
    and the domain-separated bytes that get signed.

    The codec is the only place that turns bytes from outside into an Envelope. unpack
    never trusts its input: a size limit is checked before protobuf-c runs, and every
    decoded envelope is validated (required fields, enum ranges, string and list
    lengths) before it is handed back. Errors are codes a caller can act on plus a
    message naming the field at fault.

    No sockets, no threads, no global state: safe to call from any thread.
*/
#ifndef AL_CODEC_H_INCLUDED
#define AL_CODEC_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "proto/airlock.pb-c.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef Airlock__Envelope al_envelope_t;

//  Default maximum packed envelope size (bytes); the broker's limit is configurable.
#define AL_CODEC_DEFAULT_MAX_SIZE (256 * 1024)
//  Limits enforced by validation.
#define AL_CODEC_MAX_ID_LEN      64      // message_id, correlation_id, deployment_id, request_id
#define AL_CODEC_MAX_NAME_LEN    128     // service, version, identity, role, rule names
#define AL_CODEC_MAX_TEXT_LEN    8192    // free text: summaries, reasons, details
#define AL_CODEC_MAX_URI_LEN     2048
#define AL_CODEC_MAX_LIST_LEN    1024    // repeated fields
#define AL_CODEC_MAX_SERVICE_LEN 63      // service names: [a-z0-9-]{1,63}
#define AL_CODEC_MAX_BYTES_LEN   16384   // bytes fields without an exact size (statement, SSHSIG)
#define AL_CODEC_DIGEST_HEX_LEN  64      // SHA-256 digests: bare lowercase hex, no "sha256:" prefix
#define AL_CODEC_MIN_HEARTBEAT_MS 100    // Register.heartbeat_interval_ms: 0 or in this range
#define AL_CODEC_MAX_HEARTBEAT_MS 3600000
#define AL_CODEC_MAX_DELIVERY_ACK_IDS 1024  // DeliveryAck: delivery_id plus more_delivery_ids

typedef enum {
    AL_CODEC_OK = 0,
    AL_CODEC_ERR_TOO_LARGE,       // input above the size limit: the peer should be dropped
    AL_CODEC_ERR_DECODE,          // not a valid protobuf Envelope (truncated, garbage)
    AL_CODEC_ERR_NO_BODY,         // no body set
    AL_CODEC_ERR_MISSING_FIELD,   // a required field is empty
    AL_CODEC_ERR_BAD_ENUM,        // an enum value outside its declared range
    AL_CODEC_ERR_BAD_LENGTH,      // a string, bytes or list too long (or bytes of wrong size)
    AL_CODEC_ERR_BAD_VALUE,       // a value of the right type but impossible (bad digest, ...)
    AL_CODEC_ERR_NOMEM
} al_codec_status_t;

//  Message types: the Envelope body cases. Names are the proto message names
//  ("DeployRequest") and are what policies/roles.yaml refers to.
typedef Airlock__Envelope__BodyCase al_msg_type_t;
#define AL_MSG_NONE AIRLOCK__ENVELOPE__BODY__NOT_SET

//  The deliveries one DeliveryAck acknowledges: delivery_id, then more_delivery_ids.
//  A validated DeliveryAck lists 1..AL_CODEC_MAX_DELIVERY_ACK_IDS ids, none 0.
static inline size_t
al_delivery_ack_count (const Airlock__DeliveryAck *ack)
{
    return 1 + ack->n_more_delivery_ids;
}

static inline uint64_t
al_delivery_ack_id (const Airlock__DeliveryAck *ack, size_t index)
{
    return index == 0? ack->delivery_id: ack->more_delivery_ids [index - 1];
}

//  Name of a body case ("DeployRequest"), or NULL if not a known case.
const char *al_msg_type_name (al_msg_type_t type);
//  Body case for a name ("DeployRequest"), or AL_MSG_NONE if unknown. Exact match.
al_msg_type_t al_msg_type_from_name (const char *name);
//  Number of known message types, and the i-th (0-based) for iteration.
size_t al_msg_type_count (void);
al_msg_type_t al_msg_type_at (size_t index);

//  Environment names as used in policies and the CLI: "development", "staging",
//  "production". from_name returns AIRLOCK__ENVIRONMENT__ENV_UNSPECIFIED if unknown.
const char *al_environment_name (Airlock__Environment env);
Airlock__Environment al_environment_from_name (const char *name);
//  Deployment type names: "standard", "hotfix", "rollback", "scheduled", "emergency".
const char *al_deployment_type_name (Airlock__DeploymentType type);
Airlock__DeploymentType al_deployment_type_from_name (const char *name);
//  Strategy names as in constraints.yaml: "rolling", "canary", "blue-green".
const char *al_strategy_name (Airlock__Strategy strategy);
Airlock__Strategy al_strategy_from_name (const char *name);
//  Critical-path step names as in dependencies.yaml and the deploy journal: "preflight",
//  "backup", "migrate", "rollout", "soak", "receipt", "rollback".
const char *al_step_name (Airlock__Step step);
Airlock__Step al_step_from_name (const char *name);
//  Outcome names: "started", "succeeded", "failed", "rolled_back", "skipped".
const char *al_outcome_name (Airlock__Outcome outcome);
Airlock__Outcome al_outcome_from_name (const char *name);

//  Human-readable text for a status.
const char *al_codec_strerror (al_codec_status_t status);

//  Pack an envelope into a freshly allocated buffer (*data_p, caller frees with free()).
//  The envelope is validated first; an invalid one is not packed.
al_codec_status_t al_codec_pack (const al_envelope_t *envelope, uint8_t **data_p, size_t *size_p,
                                 char *error, size_t error_size);

//  Unpack and validate. On success *envelope_p is set and must be released with
//  al_codec_free. On failure *envelope_p is NULL and error holds "field: what is wrong".
//  size above max_size fails with AL_CODEC_ERR_TOO_LARGE before decoding; max_size 0
//  means AL_CODEC_DEFAULT_MAX_SIZE.
al_codec_status_t al_codec_unpack (const uint8_t *data, size_t size, size_t max_size,
                                   al_envelope_t **envelope_p, char *error, size_t error_size);

//  Validate an envelope already in memory (used by pack and unpack).
al_codec_status_t al_codec_validate (const al_envelope_t *envelope, char *error, size_t error_size);

//  Validate any airlock message with the same rules (generic field checks plus its
//  type's required fields), e.g. an ApprovalStatement decoded from SignedApproval.statement.
//  Errors read "ApprovalStatement.field: what is wrong". An Envelope is validated as by
//  al_codec_validate; a nested ExecuteDeploy is checked without its envelope's environment.
al_codec_status_t al_codec_validate_message (const ProtobufCMessage *message, char *error,
                                             size_t error_size);

//  Free an unpacked envelope; NULL-safe, sets *envelope_p to NULL.
void al_codec_free (al_envelope_t **envelope_p);

//  Domains of signed bytes. Each has a fixed context string that prefixes the packed
//  payload, so a signature made for one purpose can never verify for another.
typedef enum {
    AL_SIGN_APPROVAL_STATEMENT = 1,   // "airlock-approval-statement-v1\0" + packed ApprovalStatement
    AL_SIGN_CHECKPOINT = 2            // "airlock-checkpoint-v1\0" + packed Checkpoint (signature empty)
} al_sign_domain_t;

//  Build the exact bytes to sign or verify: context string (with its NUL) followed by
//  payload. Returns a malloc'd buffer (caller frees) and its size, or NULL on bad domain.
uint8_t *al_codec_signing_bytes (al_sign_domain_t domain, const uint8_t *payload, size_t payload_size,
                                 size_t *size_p);

//  Convenience for checkpoints: the signing bytes of a Checkpoint with its signature
//  field cleared (the other fields packed as given).
uint8_t *al_codec_checkpoint_signing_bytes (const Airlock__Checkpoint *checkpoint, size_t *size_p);

#ifdef __cplusplus
}
#endif

#endif
