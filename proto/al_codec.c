/*  al_codec.c: the envelope codec: pack, unpack with a size limit, and validation.

    Validation is one walk over the protobuf-c descriptors. Generic checks apply to every
    field of every message: an enum value must be one its descriptor declares (protobuf-c
    passes unknown proto3 enum values through), a string must be valid UTF-8 within the
    length and character set of its kind (s_string_kinds), a digest is 64 lowercase hex,
    bytes and lists are bounded, doubles are finite and non-negative. Then the per-type
    rule of the message, looked up by its descriptor (s_rules), checks required fields,
    exact sizes and cross-field sanity. Because rules hang off descriptors, a nested
    message (ProductionGrant.request, RollbackTrigger.samples[i]) is checked exactly like
    a top-level body, and a field added to the proto gets the generic checks at once.

    The first failure wins; its message is "field.path: what is wrong", e.g.
    "execute_deploy.grant.approvals[0].signature: is 12 bytes, an Ed25519 signature is 64".

    No global state: thread-safe.
*/
#include "proto/al_codec.h"
#include "base/al_error.h"
#include "base/al_text.h"
#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Kinds of strings; the field name decides the kind (s_string_kind).
typedef enum {
    S_KIND_TEXT,        // free text: UTF-8, no control characters but tab and LF, no bidi controls
    S_KIND_ID,          // identifiers: visible ASCII, no spaces
    S_KIND_NAME,        // names and short labels: UTF-8, no control or bidi characters
    S_KIND_SERVICE,     // service names: [a-z0-9-], starting with a letter or digit
    S_KIND_URI,         // URIs: visible ASCII
    S_KIND_DIGEST,      // SHA-256 digests: empty or exactly 64 lowercase hex digits
    S_KIND_DOCUMENT     // embedded documents (StatusReply.json): text bounded only by the size limit
} s_kind_t;

static const struct {
    const char *field;
    s_kind_t kind;
} s_string_kinds [] = {
    { "message_id", S_KIND_ID }, { "correlation_id", S_KIND_ID },
    { "deployment_id", S_KIND_ID }, { "request_id", S_KIND_ID },
    { "acked_message_id", S_KIND_ID }, { "denied_message_id", S_KIND_ID },
    { "service", S_KIND_SERVICE },
    { "identity", S_KIND_NAME }, { "role", S_KIND_NAME }, { "agent_name", S_KIND_NAME },
    { "software_version", S_KIND_NAME }, { "version", S_KIND_NAME },
    { "previous_version", S_KIND_NAME }, { "name", S_KIND_NAME }, { "section", S_KIND_NAME },
    { "urgency", S_KIND_NAME }, { "risk_level", S_KIND_NAME }, { "requested_by", S_KIND_NAME },
    { "submitted_by", S_KIND_NAME },
    { "approver_key_id", S_KIND_NAME }, { "rule", S_KIND_NAME }, { "rollback_rule", S_KIND_NAME },
    { "template", S_KIND_NAME }, { "what", S_KIND_NAME }, { "key", S_KIND_NAME },
    { "suites", S_KIND_NAME },
    { "json", S_KIND_DOCUMENT },
};

static bool
s_ends_with (const char *string, size_t length, const char *suffix, size_t suffix_length)
{
    return length >= suffix_length && memcmp (string + length - suffix_length, suffix, suffix_length) == 0;
}

//  Kind of a string field by its name; anything not listed is free text, the safe default
//  for a field added later. Runs for every string of every message: the first letter
//  rules out most of the table before any strcmp.
static s_kind_t
s_string_kind (const char *field_name)
{
    for (size_t i = 0; i < sizeof s_string_kinds / sizeof s_string_kinds [0]; i++)
        if (s_string_kinds [i].field [0] == field_name [0]
        &&  strcmp (s_string_kinds [i].field, field_name) == 0)
            return s_string_kinds [i].kind;
    size_t length = strlen (field_name);
    if (s_ends_with (field_name, length, "_sha256", 7))
        return S_KIND_DIGEST;
    if (s_ends_with (field_name, length, "_uri", 4))
        return S_KIND_URI;
    return S_KIND_TEXT;
}

//  One step of the path to the field being checked: a field name, or a list index.
typedef struct {
    const char *name;               // NULL: the index of a list element
    size_t index;
} s_step_t;

//  Deeper than airlock.proto ever nests; steps beyond it are counted, not kept.
#define S_PATH_STEPS 32

//  State of one validation: where we are and the first error. The path is kept as steps
//  (pointers into the descriptors) and spelled out only when a failure is reported: a
//  valid message never pays for the text.
typedef struct {
    const al_envelope_t *envelope;
    al_codec_status_t status;
    char *error;
    size_t error_size;
    s_step_t steps [S_PATH_STEPS];
    size_t depth;
} s_check_t;

//  Append text to path (of length *length_p in a buffer of size bytes); text that does
//  not fit is cut.
static void
s_path_append (char *path, size_t size, size_t *length_p, const char *text)
{
    size_t room = size - *length_p;
    int added = snprintf (path + *length_p, room, "%s", text);
    *length_p = added < 0 ? *length_p
              : (size_t) added >= room ? size - 1
              : *length_p + (size_t) added;
}

//  The current path as text, "execute_deploy.grant.approvals[0]"; returns its length. A
//  path longer than the buffer is cut; the nesting of airlock.proto never gets there.
static size_t
s_path_text (const s_check_t *check, char *path, size_t size)
{
    size_t length = 0;
    path [0] = '\0';
    size_t kept = check->depth < S_PATH_STEPS ? check->depth : S_PATH_STEPS;
    for (size_t i = 0; i < kept; i++) {
        const s_step_t *step = &check->steps [i];
        if (step->name) {
            s_path_append (path, size, &length, length ? "." : "");
            s_path_append (path, size, &length, step->name);
        }
        else {
            char text [32];
            snprintf (text, sizeof text, "[%zu]", step->index);
            s_path_append (path, size, &length, text);
        }
    }
    return length;
}

//  Record a failure at the current path (plus field, if given). First failure wins.
static void
s_fail (s_check_t *check, al_codec_status_t status, const char *field, const char *format, ...)
{
    if (check->status != AL_CODEC_OK)
        return;
    check->status = status;
    if (!check->error || check->error_size == 0)
        return;
    char text [256];
    size_t path_length = s_path_text (check, text, sizeof text);
    const char *path = path_length ? text : (field ? "" : "envelope");
    int used = snprintf (check->error, check->error_size, "%s%s%s: ", path,
                         path_length && field ? "." : "", field ? field : "");
    if (used < 0 || (size_t) used >= check->error_size)
        return;
    va_list args;
    va_start (args, format);
    vsnprintf (check->error + used, check->error_size - (size_t) used, format, args);
    va_end (args);
}

//  Enter a field or a list element; returns the depth to restore with s_path_pop.
static size_t
s_path_push_step (s_check_t *check, const char *name, size_t index)
{
    size_t saved = check->depth;
    if (saved < S_PATH_STEPS)
        check->steps [saved] = (s_step_t) { .name = name, .index = index };
    check->depth = saved + 1;
    return saved;
}

static size_t
s_path_push (s_check_t *check, const char *name)
{
    return s_path_push_step (check, name, 0);
}

static size_t
s_path_push_index (s_check_t *check, size_t index)
{
    return s_path_push_step (check, NULL, index);
}

static void
s_path_pop (s_check_t *check, size_t saved)
{
    check->depth = saved;
}

//  Check a string against its kind; fails at the current path.
static void
s_check_string (s_check_t *check, const char *field_name, const char *value)
{
    if (!value)
        return;     // a NULL proto3 string packs as empty
    s_kind_t kind = s_string_kind (field_name);
    size_t length = strlen (value);
    size_t limit = kind == S_KIND_ID ? AL_CODEC_MAX_ID_LEN
                 : kind == S_KIND_NAME ? AL_CODEC_MAX_NAME_LEN
                 : kind == S_KIND_SERVICE ? AL_CODEC_MAX_SERVICE_LEN
                 : kind == S_KIND_URI ? AL_CODEC_MAX_URI_LEN
                 : kind == S_KIND_TEXT ? AL_CODEC_MAX_TEXT_LEN
                 : SIZE_MAX;    // digests: any wrong form is BAD_VALUE, checked below
    if (length > limit) {
        s_fail (check, AL_CODEC_ERR_BAD_LENGTH, NULL, "is %zu bytes, the limit is %zu", length, limit);
        return;
    }
    //  First the plain prefix, nearly always the whole string: ASCII bytes the kind
    //  allows, one comparison or two each. From the first other byte on, each character
    //  is decoded and judged below (which also words the error).
    const unsigned char *cursor = (const unsigned char *) value;
    switch (kind) {
        case S_KIND_ID:
        case S_KIND_URI:
            while (*cursor > 0x20 && *cursor < 0x7F)
                cursor++;
            break;
        case S_KIND_SERVICE:
            if (*cursor != '-')
                while ((*cursor >= 'a' && *cursor <= 'z') || (*cursor >= '0' && *cursor <= '9') || *cursor == '-')
                    cursor++;
            break;
        case S_KIND_DIGEST:
            while ((*cursor >= 'a' && *cursor <= 'f') || (*cursor >= '0' && *cursor <= '9'))
                cursor++;
            break;
        case S_KIND_NAME:
            while (*cursor >= 0x20 && *cursor < 0x7F)
                cursor++;
            break;
        default:    // text and documents; CR only in a document, checked below
            while ((*cursor >= 0x20 && *cursor < 0x7F) || *cursor == '\t' || *cursor == '\n')
                cursor++;
            break;
    }
    while (*cursor) {
        //  ASCII, nearly every byte on the bus, needs no decoding.
        uint32_t code_point = *cursor;
        size_t step = code_point < 0x80? 1: al_text_utf8_next (cursor, &code_point);
        if (step == 0) {
            s_fail (check, AL_CODEC_ERR_BAD_VALUE, NULL, "is not valid UTF-8 (byte %zu)",
                    (size_t) (cursor - (const unsigned char *) value));
            return;
        }
        bool allowed;
        switch (kind) {
            case S_KIND_ID:
            case S_KIND_URI:
                allowed = code_point > 0x20 && code_point < 0x7F;
                break;
            case S_KIND_SERVICE:
                allowed = (code_point >= 'a' && code_point <= 'z')
                       || (code_point >= '0' && code_point <= '9')
                       || (code_point == '-' && cursor != (const unsigned char *) value);
                break;
            case S_KIND_DIGEST:
                allowed = (code_point >= 'a' && code_point <= 'f')
                       || (code_point >= '0' && code_point <= '9');
                break;
            case S_KIND_NAME:
                allowed = code_point < 0x80? code_point >= 0x20 && code_point != 0x7F
                        : !al_text_is_control (code_point) && !al_text_is_bidi_control (code_point);
                break;
            case S_KIND_TEXT:
                //  Free text reaches a human's terminal: TAB and LF only (al_text shows
                //  them escaped), never CR (it overwrites the line), DEL, C1 or bidi.
                allowed = code_point < 0x80
                        ? (code_point >= 0x20 && code_point != 0x7F) || code_point == '\t' || code_point == '\n'
                        : !al_text_is_control (code_point) && !al_text_is_bidi_control (code_point);
                break;
            default:
                //  A JSON document: its whitespace may include CR; its readers escape
                //  the strings inside it when they show them.
                allowed = !al_text_is_control (code_point)
                       || code_point == '\t' || code_point == '\n' || code_point == '\r';
                break;
        }
        if (!allowed) {
            const char *expected = kind == S_KIND_ID ? "an id of visible ASCII characters"
                : kind == S_KIND_URI ? "a URI of visible ASCII characters"
                : kind == S_KIND_SERVICE ? "a service name of [a-z0-9-], not starting with '-'"
                : kind == S_KIND_DIGEST ? "a SHA-256 digest as 64 lowercase hex digits, no prefix"
                : kind == S_KIND_TEXT ? "text without control or bidi characters (tab and LF only)"
                : kind == S_KIND_NAME ? "a name without control or bidi characters"
                : "text without control characters";
            s_fail (check, AL_CODEC_ERR_BAD_VALUE, NULL, "character %zu is not allowed in %s",
                    (size_t) (cursor - (const unsigned char *) value), expected);
            return;
        }
        cursor += step;
    }
    if (kind == S_KIND_DIGEST && length != 0 && length != AL_CODEC_DIGEST_HEX_LEN)
        s_fail (check, AL_CODEC_ERR_BAD_VALUE, NULL,
                "is %zu hex digits, a SHA-256 digest is 64", length);
}

static void s_check_message (s_check_t *check, const ProtobufCMessage *message);

//  Generic checks of one value of a field (one element, for repeated fields).
static void
s_check_value (s_check_t *check, const ProtobufCFieldDescriptor *field, const void *member)
{
    switch (field->type) {
        case PROTOBUF_C_TYPE_ENUM: {
            int value = *(const int *) member;
            const ProtobufCEnumDescriptor *enum_desc = field->descriptor;
            if (!protobuf_c_enum_descriptor_get_value (enum_desc, value))
                s_fail (check, AL_CODEC_ERR_BAD_ENUM, NULL, "%d is not a valid %s",
                        value, enum_desc->short_name);
            break;
        }
        case PROTOBUF_C_TYPE_STRING:
            s_check_string (check, field->name, *(char * const *) member);
            break;
        case PROTOBUF_C_TYPE_BYTES: {
            const ProtobufCBinaryData *bytes = member;
            if (bytes->len > AL_CODEC_MAX_BYTES_LEN)
                s_fail (check, AL_CODEC_ERR_BAD_LENGTH, NULL, "is %zu bytes, the limit is %d",
                        bytes->len, AL_CODEC_MAX_BYTES_LEN);
            else
            if (bytes->len && !bytes->data)
                s_fail (check, AL_CODEC_ERR_BAD_VALUE, NULL, "has a length but no data");
            break;
        }
        case PROTOBUF_C_TYPE_DOUBLE:
        case PROTOBUF_C_TYPE_FLOAT: {
            // Every floating-point field on the wire is a measurement: finite, >= 0.
            double value = field->type == PROTOBUF_C_TYPE_DOUBLE
                         ? *(const double *) member : (double) *(const float *) member;
            if (!isfinite (value) || value < 0)
                s_fail (check, AL_CODEC_ERR_BAD_VALUE, NULL,
                        "%g is not a finite, non-negative number", value);
            break;
        }
        case PROTOBUF_C_TYPE_MESSAGE: {
            const ProtobufCMessage *sub = *(ProtobufCMessage * const *) member;
            if (sub)
                s_check_message (check, sub);
            else
            if (field->label == PROTOBUF_C_LABEL_REPEATED)
                s_fail (check, AL_CODEC_ERR_BAD_VALUE, NULL, "is a NULL list element");
            break;
        }
        default:
            break;      // integers and booleans: any value is representable
    }
}

//  Size of one element of a repeated field's array, as protobuf-c lays it out.
static size_t
s_element_size (ProtobufCType type)
{
    switch (type) {
        case PROTOBUF_C_TYPE_STRING:   return sizeof (char *);
        case PROTOBUF_C_TYPE_MESSAGE:  return sizeof (ProtobufCMessage *);
        case PROTOBUF_C_TYPE_BYTES:    return sizeof (ProtobufCBinaryData);
        case PROTOBUF_C_TYPE_BOOL:     return sizeof (protobuf_c_boolean);
        case PROTOBUF_C_TYPE_DOUBLE:
        case PROTOBUF_C_TYPE_INT64:
        case PROTOBUF_C_TYPE_UINT64:
        case PROTOBUF_C_TYPE_SINT64:
        case PROTOBUF_C_TYPE_FIXED64:
        case PROTOBUF_C_TYPE_SFIXED64: return 8;
        default:                       return 4;     // 32-bit integers, float, enum
    }
}

static void
s_check_fields (s_check_t *check, const ProtobufCMessage *message)
{
    const ProtobufCMessageDescriptor *desc = message->descriptor;
    const uint8_t *base = (const uint8_t *) message;
    // Unknown fields are kept (a newer peer may send fields we do not know) but field
    // number 0 is not a field: protobuf-c 1.4 accepts it when the tag is spelled in two
    // bytes (0x80 0x00), then packs it as 0x00, which it refuses to decode.
    for (unsigned i = 0; i < message->n_unknown_fields; i++)
        if (message->unknown_fields [i].tag == 0)
            s_fail (check, AL_CODEC_ERR_DECODE, NULL, "has a field numbered 0");
    for (unsigned i = 0; i < desc->n_fields && check->status == AL_CODEC_OK; i++) {
        const ProtobufCFieldDescriptor *field = &desc->fields [i];
        if ((field->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        &&  *(const uint32_t *) (base + field->quantifier_offset) != field->id)
            continue;
        size_t saved = s_path_push (check, field->name);
        if (field->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t count = *(const size_t *) (base + field->quantifier_offset);
            const uint8_t *array = *(const uint8_t * const *) (base + field->offset);
            size_t element_size = s_element_size (field->type);
            if (count > AL_CODEC_MAX_LIST_LEN)
                s_fail (check, AL_CODEC_ERR_BAD_LENGTH, NULL, "has %zu elements, the limit is %d",
                        count, AL_CODEC_MAX_LIST_LEN);
            else
            if (count && !array)
                s_fail (check, AL_CODEC_ERR_BAD_VALUE, NULL, "has a count but no elements");
            for (size_t j = 0; j < count && array && check->status == AL_CODEC_OK; j++) {
                size_t element_saved = s_path_push_index (check, j);
                s_check_value (check, field, array + j * element_size);
                s_path_pop (check, element_saved);
            }
        }
        else
            s_check_value (check, field, base + field->offset);
        s_path_pop (check, saved);
    }
}

//  Helpers for the per-type rules; field names are relative to the current message.

static bool
s_empty (const char *value)
{
    return !value || !*value;
}

static void
s_need_string (s_check_t *check, const char *value, const char *field)
{
    if (s_empty (value))
        s_fail (check, AL_CODEC_ERR_MISSING_FIELD, field, "is required");
}

static void
s_need_enum (s_check_t *check, int value, const char *field)
{
    if (value == 0)
        s_fail (check, AL_CODEC_ERR_MISSING_FIELD, field, "is required (UNSPECIFIED is not allowed)");
}

static void
s_need_present (s_check_t *check, const void *value, const char *field)
{
    if (!value)
        s_fail (check, AL_CODEC_ERR_MISSING_FIELD, field, "is required");
}

static void
s_need_nonzero (s_check_t *check, uint64_t value, const char *field)
{
    if (value == 0)
        s_fail (check, AL_CODEC_ERR_MISSING_FIELD, field, "is required (must not be 0)");
}

//  Bytes of an exact size; empty is MISSING_FIELD unless optional.
static void
s_need_bytes (s_check_t *check, ProtobufCBinaryData bytes, size_t size, bool optional,
              const char *field, const char *what)
{
    if (bytes.len == 0 && !optional)
        s_fail (check, AL_CODEC_ERR_MISSING_FIELD, field, "is required (%s, %zu bytes)", what, size);
    else
    if (bytes.len != 0 && bytes.len != size)
        s_fail (check, AL_CODEC_ERR_BAD_LENGTH, field, "is %zu bytes, %s is %zu",
                bytes.len, what, size);
}

//  Per-type rules. Each runs after the generic checks of its message passed.

static void
s_rule_envelope (s_check_t *check, const void *message)
{
    const Airlock__Envelope *self = message;
    s_need_string (check, self->message_id, "message_id");
    // The environment decides the permission and whether a grant is needed.
    if (self->body_case == AIRLOCK__ENVELOPE__BODY_DEPLOY_REQUEST
    ||  self->body_case == AIRLOCK__ENVELOPE__BODY_EXECUTE_DEPLOY)
        s_need_enum (check, self->environment, "environment");
}

static void
s_rule_sender (s_check_t *check, const void *message)
{
    const Airlock__Sender *self = message;
    s_need_string (check, self->identity, "identity");
    s_need_string (check, self->role, "role");
}

static void
s_rule_register (s_check_t *check, const void *message)
{
    const Airlock__Register *self = message;
    s_need_string (check, self->agent_name, "agent_name");
    if (self->heartbeat_interval_ms != 0
    && (self->heartbeat_interval_ms < AL_CODEC_MIN_HEARTBEAT_MS
    ||  self->heartbeat_interval_ms > AL_CODEC_MAX_HEARTBEAT_MS))
        s_fail (check, AL_CODEC_ERR_BAD_VALUE, "heartbeat_interval_ms",
                "%u is outside %d..%d (or 0 for the broker's default)",
                self->heartbeat_interval_ms, AL_CODEC_MIN_HEARTBEAT_MS, AL_CODEC_MAX_HEARTBEAT_MS);
}

static void
s_rule_ack (s_check_t *check, const void *message)
{
    const Airlock__Ack *self = message;
    s_need_string (check, self->acked_message_id, "acked_message_id");
    s_need_bytes (check, self->audit_hash, 32, true, "audit_hash", "a SHA-256 hash");
}

static void
s_rule_denied (s_check_t *check, const void *message)
{
    // denied_message_id stays optional: a frame that did not decode has none.
    const Airlock__Denied *self = message;
    s_need_enum (check, self->code, "code");
    s_need_string (check, self->reason, "reason");
}

static void
s_rule_delivery_ack (s_check_t *check, const void *message)
{
    const Airlock__DeliveryAck *self = message;
    s_need_nonzero (check, self->delivery_id, "delivery_id");
    //  One frame and one audit row for many deliveries, but never unbounded work: the
    //  broker deletes one queue row per id.
    if (self->n_more_delivery_ids > AL_CODEC_MAX_DELIVERY_ACK_IDS - 1)
        s_fail (check, AL_CODEC_ERR_BAD_LENGTH, "more_delivery_ids",
                "lists %zu ids, with delivery_id %zu, the limit is %d", self->n_more_delivery_ids,
                self->n_more_delivery_ids + 1, AL_CODEC_MAX_DELIVERY_ACK_IDS);
    for (size_t i = 0; i < self->n_more_delivery_ids && check->status == AL_CODEC_OK; i++)
        if (self->more_delivery_ids [i] == 0) {
            char field [48];
            snprintf (field, sizeof field, "more_delivery_ids[%zu]", i);
            s_fail (check, AL_CODEC_ERR_MISSING_FIELD, field, "is 0 (a delivery id is never 0)");
        }
}

static void
s_rule_release_candidate (s_check_t *check, const void *message)
{
    const Airlock__ReleaseCandidate *self = message;
    s_need_string (check, self->service, "service");
    s_need_string (check, self->version, "version");
    s_need_string (check, self->artifact_uri, "artifact_uri");
    s_need_string (check, self->artifact_sha256, "artifact_sha256");
    s_need_enum (check, self->deployment_type, "deployment_type");
    if (self->skip_staging && self->deployment_type != AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_EMERGENCY)
        s_fail (check, AL_CODEC_ERR_BAD_VALUE, "skip_staging", "only an emergency may skip staging");
    if ((self->window_start_ms || self->window_end_ms)
    &&  self->window_start_ms >= self->window_end_ms)
        s_fail (check, AL_CODEC_ERR_BAD_VALUE, "window_end_ms", "must be after window_start_ms");
}

static void
s_rule_deploy_request (s_check_t *check, const void *message)
{
    const Airlock__DeployRequest *self = message;
    s_need_string (check, self->service, "service");
    s_need_string (check, self->version, "version");
    s_need_string (check, self->artifact_sha256, "artifact_sha256");
}

static void
s_rule_qa_request (s_check_t *check, const void *message)
{
    const Airlock__QaRequest *self = message;
    s_need_string (check, self->service, "service");
    s_need_string (check, self->version, "version");
    s_need_string (check, self->artifact_sha256, "artifact_sha256");
}

static void
s_rule_suite_result (s_check_t *check, const void *message)
{
    const Airlock__SuiteResult *self = message;
    s_need_string (check, self->name, "name");
}

static void
s_rule_qa_report (s_check_t *check, const void *message)
{
    const Airlock__QaReport *self = message;
    s_need_string (check, self->service, "service");
    s_need_string (check, self->version, "version");
    s_need_string (check, self->artifact_sha256, "artifact_sha256");
    s_need_string (check, self->report_sha256, "report_sha256");
}

static void
s_rule_checklist_item (s_check_t *check, const void *message)
{
    const Airlock__ChecklistItem *self = message;
    s_need_string (check, self->text, "text");
}

static void
s_rule_approval_request (s_check_t *check, const void *message)
{
    const Airlock__ApprovalRequest *self = message;
    s_need_string (check, self->request_id, "request_id");
    s_need_enum (check, self->deployment_type, "deployment_type");
    s_need_enum (check, self->environment, "environment");
    s_need_string (check, self->service, "service");
    s_need_string (check, self->artifact_sha256, "artifact_sha256");
    s_need_string (check, self->qa_report_sha256, "qa_report_sha256");
    if (self->deployment_type == AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_SCHEDULED) {
        s_need_nonzero (check, self->window_start_ms, "window_start_ms");
        s_need_nonzero (check, self->window_end_ms, "window_end_ms");
    }
    if ((self->window_start_ms || self->window_end_ms)
    &&  self->window_start_ms >= self->window_end_ms)
        s_fail (check, AL_CODEC_ERR_BAD_VALUE, "window_end_ms", "must be after window_start_ms");
}

static void
s_rule_signed_approval (s_check_t *check, const void *message)
{
    const Airlock__SignedApproval *self = message;
    if (self->statement.len == 0)
        s_fail (check, AL_CODEC_ERR_MISSING_FIELD, "statement", "is required");
    s_need_enum (check, self->format, "format");
    if (self->format == AIRLOCK__SIGNATURE_FORMAT__SIG_ED25519)
        s_need_bytes (check, self->signature, 64, false, "signature", "an Ed25519 signature");
    else
    if (self->signature.len == 0)
        s_fail (check, AL_CODEC_ERR_MISSING_FIELD, "signature", "is required");
    s_need_bytes (check, self->public_key, 32, false, "public_key", "an Ed25519 public key");
}

static void
s_rule_approval_statement (s_check_t *check, const void *message)
{
    const Airlock__ApprovalStatement *self = message;
    s_need_string (check, self->request_id, "request_id");
    s_need_enum (check, self->deployment_type, "deployment_type");
    s_need_enum (check, self->environment, "environment");
    s_need_string (check, self->service, "service");
    s_need_string (check, self->artifact_sha256, "artifact_sha256");
    s_need_string (check, self->qa_report_sha256, "qa_report_sha256");
    s_need_string (check, self->approver_key_id, "approver_key_id");
    s_need_nonzero (check, self->issued_at_ms, "issued_at_ms");
    if (self->expires_at_ms <= self->issued_at_ms)
        s_fail (check, AL_CODEC_ERR_BAD_VALUE, "expires_at_ms", "must be after issued_at_ms");
    s_need_bytes (check, self->approval_id, 16, false, "approval_id", "an approval id");
    s_need_enum (check, self->decision, "decision");
}

static void
s_rule_production_grant (s_check_t *check, const void *message)
{
    const Airlock__ProductionGrant *self = message;
    s_need_string (check, self->request_id, "request_id");
    s_need_present (check, self->request, "request");
    if (self->n_approvals == 0)
        s_fail (check, AL_CODEC_ERR_MISSING_FIELD, "approvals", "needs at least one signed approval");
    if (self->request && strcmp (self->request->request_id ? self->request->request_id : "",
                                 self->request_id ? self->request_id : "") != 0)
        s_fail (check, AL_CODEC_ERR_BAD_VALUE, "request_id", "differs from request.request_id");
}

static void
s_rule_execute_deploy (s_check_t *check, const void *message)
{
    const Airlock__ExecuteDeploy *self = message;
    s_need_present (check, self->request, "request");
    // Outside an envelope (al_codec_validate_message) the environment is unknown.
    if (check->envelope && check->envelope->environment == AIRLOCK__ENVIRONMENT__ENV_PRODUCTION
    &&  !self->grant)
        s_fail (check, AL_CODEC_ERR_MISSING_FIELD, "grant", "is required for production");
}

static void
s_rule_deploy_progress (s_check_t *check, const void *message)
{
    const Airlock__DeployProgress *self = message;
    s_need_enum (check, self->step, "step");
    s_need_enum (check, self->outcome, "outcome");
    if (self->percent > 100)
        s_fail (check, AL_CODEC_ERR_BAD_VALUE, "percent", "%u is above 100", self->percent);
    if (self->instances && self->instance > self->instances)
        s_fail (check, AL_CODEC_ERR_BAD_VALUE, "instance", "%u is above instances (%u)",
                self->instance, self->instances);
}

static void
s_rule_step_record (s_check_t *check, const void *message)
{
    const Airlock__StepRecord *self = message;
    s_need_enum (check, self->step, "step");
    s_need_enum (check, self->outcome, "outcome");
    if (self->ended_ms && self->ended_ms < self->started_ms)
        s_fail (check, AL_CODEC_ERR_BAD_VALUE, "ended_ms", "is before started_ms");
}

static void
s_rule_deploy_receipt (s_check_t *check, const void *message)
{
    const Airlock__DeployReceipt *self = message;
    s_need_string (check, self->service, "service");
    s_need_string (check, self->version, "version");
    s_need_string (check, self->artifact_sha256, "artifact_sha256");
    s_need_enum (check, self->outcome, "outcome");
    s_need_string (check, self->receipt_sha256, "receipt_sha256");
}

static void
s_rule_soak_signal (s_check_t *check, const void *message)
{
    const Airlock__SoakSignal *self = message;
    s_need_string (check, self->service, "service");
    if (self->error_ratio > 1)
        s_fail (check, AL_CODEC_ERR_BAD_VALUE, "error_ratio", "%g is above 1", self->error_ratio);
    if (self->instances_up > self->instances_total)
        s_fail (check, AL_CODEC_ERR_BAD_VALUE, "instances_up", "%u is above instances_total (%u)",
                self->instances_up, self->instances_total);
}

static void
s_rule_rollback_trigger (s_check_t *check, const void *message)
{
    // samples may be empty: missing evidence is itself a reason to roll back.
    const Airlock__RollbackTrigger *self = message;
    s_need_string (check, self->service, "service");
    s_need_string (check, self->rule, "rule");
}

static void
s_rule_notification (s_check_t *check, const void *message)
{
    const Airlock__Notification *self = message;
    s_need_string (check, self->template_, "template");
}

static void
s_rule_notification_field (s_check_t *check, const void *message)
{
    const Airlock__Notification__FieldsEntry *self = message;
    s_need_string (check, self->key, "key");
}

static void
s_rule_status_query (s_check_t *check, const void *message)
{
    const Airlock__StatusQuery *self = message;
    s_need_string (check, self->what, "what");
}

static void
s_rule_agent_status (s_check_t *check, const void *message)
{
    const Airlock__AgentStatus *self = message;
    s_need_string (check, self->identity, "identity");
}

static void
s_rule_checkpoint (s_check_t *check, const void *message)
{
    const Airlock__Checkpoint *self = message;
    s_need_bytes (check, self->head_hash, 32, false, "head_hash", "a SHA-256 hash");
    s_need_bytes (check, self->public_key, 32, false, "public_key", "an Ed25519 public key");
    s_need_bytes (check, self->signature, 64, false, "signature", "an Ed25519 signature");
}

//  Messages without an entry (Heartbeat, StatusReply) have no required fields.
static const struct {
    const ProtobufCMessageDescriptor *descriptor;
    void (*rule) (s_check_t *check, const void *message);
} s_rules [] = {
    { &airlock__envelope__descriptor, s_rule_envelope },
    { &airlock__sender__descriptor, s_rule_sender },
    { &airlock__register__descriptor, s_rule_register },
    { &airlock__ack__descriptor, s_rule_ack },
    { &airlock__denied__descriptor, s_rule_denied },
    { &airlock__delivery_ack__descriptor, s_rule_delivery_ack },
    { &airlock__release_candidate__descriptor, s_rule_release_candidate },
    { &airlock__deploy_request__descriptor, s_rule_deploy_request },
    { &airlock__qa_request__descriptor, s_rule_qa_request },
    { &airlock__suite_result__descriptor, s_rule_suite_result },
    { &airlock__qa_report__descriptor, s_rule_qa_report },
    { &airlock__checklist_item__descriptor, s_rule_checklist_item },
    { &airlock__approval_request__descriptor, s_rule_approval_request },
    { &airlock__approval_statement__descriptor, s_rule_approval_statement },
    { &airlock__signed_approval__descriptor, s_rule_signed_approval },
    { &airlock__production_grant__descriptor, s_rule_production_grant },
    { &airlock__execute_deploy__descriptor, s_rule_execute_deploy },
    { &airlock__deploy_progress__descriptor, s_rule_deploy_progress },
    { &airlock__step_record__descriptor, s_rule_step_record },
    { &airlock__deploy_receipt__descriptor, s_rule_deploy_receipt },
    { &airlock__soak_signal__descriptor, s_rule_soak_signal },
    { &airlock__rollback_trigger__descriptor, s_rule_rollback_trigger },
    { &airlock__notification__descriptor, s_rule_notification },
    { &airlock__notification__fields_entry__descriptor, s_rule_notification_field },
    { &airlock__status_query__descriptor, s_rule_status_query },
    { &airlock__agent_status__descriptor, s_rule_agent_status },
    { &airlock__checkpoint__descriptor, s_rule_checkpoint },
};

static void
s_check_message (s_check_t *check, const ProtobufCMessage *message)
{
    s_check_fields (check, message);
    for (size_t i = 0; i < sizeof s_rules / sizeof s_rules [0]; i++)
        if (s_rules [i].descriptor == message->descriptor) {
            if (check->status == AL_CODEC_OK)
                s_rules [i].rule (check, message);
            break;      // one rule per descriptor
        }
}

al_codec_status_t
al_codec_validate (const al_envelope_t *envelope, char *error, size_t error_size)
{
    assert (envelope);
    assert (envelope->base.descriptor == &airlock__envelope__descriptor);
    s_check_t check = { .envelope = envelope, .status = AL_CODEC_OK,
                        .error = error, .error_size = error_size };
    if (error && error_size)
        error [0] = '\0';              // no formatting on the per-message path
    // body_case is the union's tag; any member reads the one pointer stored.
    if (!al_msg_type_name (envelope->body_case) || !envelope->register_) {
        s_fail (&check, AL_CODEC_ERR_NO_BODY, "body", "no message body is set");
        return check.status;
    }
    s_check_message (&check, &envelope->base);
    return check.status;
}

al_codec_status_t
al_codec_validate_message (const ProtobufCMessage *message, char *error, size_t error_size)
{
    assert (message);
    s_check_t check = { .status = AL_CODEC_OK, .error = error, .error_size = error_size };
    al_error_set (error, error_size, "%s", "");
    if (message->descriptor == &airlock__envelope__descriptor)
        return al_codec_validate ((const al_envelope_t *) message, error, error_size);
    // Paths start at the message's type name: "ApprovalStatement.request_id".
    s_path_push (&check, message->descriptor->short_name);
    s_check_message (&check, message);
    return check.status;
}

al_codec_status_t
al_codec_pack (const al_envelope_t *envelope, uint8_t **data_p, size_t *size_p,
               char *error, size_t error_size)
{
    assert (envelope);
    assert (data_p);
    assert (size_p);
    *data_p = NULL;
    *size_p = 0;
    al_codec_status_t status = al_codec_validate (envelope, error, error_size);
    if (status != AL_CODEC_OK)
        return status;
    size_t size = airlock__envelope__get_packed_size (envelope);
    uint8_t *data = malloc (size ? size : 1);
    if (!data) {
        al_error_set (error, error_size, "envelope: out of memory packing %zu bytes", size);
        return AL_CODEC_ERR_NOMEM;
    }
    size_t packed = airlock__envelope__pack (envelope, data);
    assert (packed == size);
    *data_p = data;
    *size_p = size;
    return AL_CODEC_OK;
}

al_codec_status_t
al_codec_unpack (const uint8_t *data, size_t size, size_t max_size,
                 al_envelope_t **envelope_p, char *error, size_t error_size)
{
    assert (envelope_p);
    assert (data || size == 0);
    *envelope_p = NULL;
    if (max_size == 0)
        max_size = AL_CODEC_DEFAULT_MAX_SIZE;
    // The limit is checked before protobuf-c allocates anything for the input.
    if (size > max_size) {
        al_error_set (error, error_size, "envelope: %zu bytes exceeds the limit of %zu bytes",
                      size, max_size);
        return AL_CODEC_ERR_TOO_LARGE;
    }
    static const uint8_t s_nothing [1] = { 0 };
    al_envelope_t *envelope = airlock__envelope__unpack (NULL, size, data ? data : s_nothing);
    if (!envelope) {
        al_error_set (error, error_size,
                      "envelope: not a valid protobuf Envelope (truncated or malformed, %zu bytes)",
                      size);
        return AL_CODEC_ERR_DECODE;
    }
    al_codec_status_t status = al_codec_validate (envelope, error, error_size);
    if (status != AL_CODEC_OK) {
        al_codec_free (&envelope);
        return status;
    }
    *envelope_p = envelope;
    return AL_CODEC_OK;
}

void
al_codec_free (al_envelope_t **envelope_p)
{
    assert (envelope_p);
    if (*envelope_p) {
        airlock__envelope__free_unpacked (*envelope_p, NULL);
        *envelope_p = NULL;
    }
}

const char *
al_codec_strerror (al_codec_status_t status)
{
    switch (status) {
        case AL_CODEC_OK:                return "ok";
        case AL_CODEC_ERR_TOO_LARGE:     return "message too large";
        case AL_CODEC_ERR_DECODE:        return "not a valid protobuf envelope";
        case AL_CODEC_ERR_NO_BODY:       return "no message body";
        case AL_CODEC_ERR_MISSING_FIELD: return "required field missing";
        case AL_CODEC_ERR_BAD_ENUM:      return "enum value out of range";
        case AL_CODEC_ERR_BAD_LENGTH:    return "string, bytes or list of wrong length";
        case AL_CODEC_ERR_BAD_VALUE:     return "invalid field value";
        case AL_CODEC_ERR_NOMEM:         return "out of memory";
    }
    return "unknown codec status";
}
