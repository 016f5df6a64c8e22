/*  al_names.c: names of message types and enums, and the domain-separated signing bytes.

    Names are derived from the protobuf-c descriptors generated from airlock.proto, so a
    message type added to the proto is known here (and to policies) without a second
    list to keep in sync. The Envelope's body oneof holds every field numbered >= 10;
    its message type name ("DeployRequest") is the policy's name for the body case.

    Pure functions over constant data: thread-safe.
*/
#include "proto/al_codec.h"
#include <assert.h>
#include <stdlib.h>
#include <string.h>

//  First field number of the body oneof in Envelope (see airlock.proto).
#define S_FIRST_BODY_FIELD 10

static const ProtobufCFieldDescriptor *
s_body_field (size_t index)
{
    const ProtobufCMessageDescriptor *desc = &airlock__envelope__descriptor;
    size_t seen = 0;
    for (unsigned i = 0; i < desc->n_fields; i++) {
        const ProtobufCFieldDescriptor *field = &desc->fields [i];
        if (field->id < S_FIRST_BODY_FIELD)
            continue;
        assert (field->flags & PROTOBUF_C_FIELD_FLAG_ONEOF);
        assert (field->type == PROTOBUF_C_TYPE_MESSAGE);
        if (seen++ == index)
            return field;
    }
    return NULL;
}

size_t
al_msg_type_count (void)
{
    size_t count = 0;
    while (s_body_field (count))
        count++;
    return count;
}

al_msg_type_t
al_msg_type_at (size_t index)
{
    const ProtobufCFieldDescriptor *field = s_body_field (index);
    return field ? (al_msg_type_t) field->id : AL_MSG_NONE;
}

const char *
al_msg_type_name (al_msg_type_t type)
{
    const ProtobufCFieldDescriptor *field =
        protobuf_c_message_descriptor_get_field (&airlock__envelope__descriptor, (unsigned) type);
    if (!field || field->id < S_FIRST_BODY_FIELD)
        return NULL;
    return ((const ProtobufCMessageDescriptor *) field->descriptor)->short_name;
}

al_msg_type_t
al_msg_type_from_name (const char *name)
{
    if (!name)
        return AL_MSG_NONE;
    for (size_t i = 0;; i++) {
        const ProtobufCFieldDescriptor *field = s_body_field (i);
        if (!field)
            return AL_MSG_NONE;
        const ProtobufCMessageDescriptor *desc = field->descriptor;
        if (strcmp (desc->short_name, name) == 0)
            return (al_msg_type_t) field->id;
    }
}

static const char *s_environment_names [] = {
    [AIRLOCK__ENVIRONMENT__ENV_DEVELOPMENT] = "development",
    [AIRLOCK__ENVIRONMENT__ENV_STAGING] = "staging",
    [AIRLOCK__ENVIRONMENT__ENV_PRODUCTION] = "production",
};

static const char *s_deployment_type_names [] = {
    [AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD] = "standard",
    [AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_HOTFIX] = "hotfix",
    [AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_ROLLBACK] = "rollback",
    [AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_SCHEDULED] = "scheduled",
    [AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_EMERGENCY] = "emergency",
};

static const char *s_strategy_names [] = {
    [AIRLOCK__STRATEGY__STRATEGY_ROLLING] = "rolling",
    [AIRLOCK__STRATEGY__STRATEGY_CANARY] = "canary",
    [AIRLOCK__STRATEGY__STRATEGY_BLUE_GREEN] = "blue-green",
};

static const char *s_step_names [] = {
    [AIRLOCK__STEP__STEP_PREFLIGHT] = "preflight",
    [AIRLOCK__STEP__STEP_BACKUP] = "backup",
    [AIRLOCK__STEP__STEP_MIGRATE] = "migrate",
    [AIRLOCK__STEP__STEP_ROLLOUT] = "rollout",
    [AIRLOCK__STEP__STEP_SOAK] = "soak",
    [AIRLOCK__STEP__STEP_RECEIPT] = "receipt",
    [AIRLOCK__STEP__STEP_ROLLBACK] = "rollback",
};

static const char *s_outcome_names [] = {
    [AIRLOCK__OUTCOME__OUTCOME_STARTED] = "started",
    [AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED] = "succeeded",
    [AIRLOCK__OUTCOME__OUTCOME_FAILED] = "failed",
    [AIRLOCK__OUTCOME__OUTCOME_ROLLED_BACK] = "rolled_back",
    [AIRLOCK__OUTCOME__OUTCOME_SKIPPED] = "skipped",
};

#define S_COUNT(array) (sizeof (array) / sizeof ((array) [0]))

static const char *
s_name_of (const char **names, size_t count, int value)
{
    if (value <= 0 || (size_t) value >= count)
        return NULL;
    return names [value];
}

static int
s_value_of (const char **names, size_t count, const char *name)
{
    if (!name)
        return 0;
    for (size_t i = 1; i < count; i++)
        if (names [i] && strcmp (names [i], name) == 0)
            return (int) i;
    return 0;
}

const char *
al_environment_name (Airlock__Environment env)
{
    return s_name_of (s_environment_names, S_COUNT (s_environment_names), (int) env);
}

Airlock__Environment
al_environment_from_name (const char *name)
{
    return (Airlock__Environment)
        s_value_of (s_environment_names, S_COUNT (s_environment_names), name);
}

const char *
al_deployment_type_name (Airlock__DeploymentType type)
{
    return s_name_of (s_deployment_type_names, S_COUNT (s_deployment_type_names), (int) type);
}

Airlock__DeploymentType
al_deployment_type_from_name (const char *name)
{
    return (Airlock__DeploymentType)
        s_value_of (s_deployment_type_names, S_COUNT (s_deployment_type_names), name);
}

const char *
al_strategy_name (Airlock__Strategy strategy)
{
    return s_name_of (s_strategy_names, S_COUNT (s_strategy_names), (int) strategy);
}

Airlock__Strategy
al_strategy_from_name (const char *name)
{
    return (Airlock__Strategy) s_value_of (s_strategy_names, S_COUNT (s_strategy_names), name);
}

const char *
al_step_name (Airlock__Step step)
{
    return s_name_of (s_step_names, S_COUNT (s_step_names), (int) step);
}

Airlock__Step
al_step_from_name (const char *name)
{
    return (Airlock__Step) s_value_of (s_step_names, S_COUNT (s_step_names), name);
}

const char *
al_outcome_name (Airlock__Outcome outcome)
{
    return s_name_of (s_outcome_names, S_COUNT (s_outcome_names), (int) outcome);
}

Airlock__Outcome
al_outcome_from_name (const char *name)
{
    return (Airlock__Outcome) s_value_of (s_outcome_names, S_COUNT (s_outcome_names), name);
}

//  Context strings, NUL included in what is signed: a signature over one domain can
//  never be replayed as a signature over another, whatever the payload bytes are.
static const char s_context_approval [] = "airlock-approval-statement-v1";
static const char s_context_checkpoint [] = "airlock-checkpoint-v1";

uint8_t *
al_codec_signing_bytes (al_sign_domain_t domain, const uint8_t *payload, size_t payload_size,
                        size_t *size_p)
{
    assert (size_p);
    assert (payload || payload_size == 0);
    const char *context;
    size_t context_size;
    switch (domain) {
        case AL_SIGN_APPROVAL_STATEMENT:
            context = s_context_approval;
            context_size = sizeof s_context_approval;
            break;
        case AL_SIGN_CHECKPOINT:
            context = s_context_checkpoint;
            context_size = sizeof s_context_checkpoint;
            break;
        default:
            return NULL;
    }
    uint8_t *bytes = malloc (context_size + payload_size + 1);
    if (!bytes)
        return NULL;
    memcpy (bytes, context, context_size);
    if (payload_size)
        memcpy (bytes + context_size, payload, payload_size);
    *size_p = context_size + payload_size;
    return bytes;
}

uint8_t *
al_codec_checkpoint_signing_bytes (const Airlock__Checkpoint *checkpoint, size_t *size_p)
{
    assert (checkpoint);
    Airlock__Checkpoint unsigned_copy = *checkpoint;
    unsigned_copy.signature.data = NULL;
    unsigned_copy.signature.len = 0;
    size_t packed_size = airlock__checkpoint__get_packed_size (&unsigned_copy);
    uint8_t *packed = malloc (packed_size + 1);
    if (!packed)
        return NULL;
    airlock__checkpoint__pack (&unsigned_copy, packed);
    uint8_t *bytes = al_codec_signing_bytes (AL_SIGN_CHECKPOINT, packed, packed_size, size_p);
    free (packed);
    return bytes;
}
