/*  al_cloudevents.c: the audit log as CloudEvents, messages as JSON (see al_cloudevents.h).

    The message walker is generic over protobuf-c descriptors, so a field added to
    airlock.proto shows up in the export without a line changed here. It only reads the
    message it is given; a decoded envelope from a row is untrusted but protobuf-c has
    already bounded it (counts and pointers are consistent), and every sub-message
    pointer is checked for NULL before it is followed.
*/
#include "store/al_cloudevents.h"
#include "proto/airlock.pb-c.h"
#include <assert.h>
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

//  A JSON string of size bytes, or "hex:..." when they are not UTF-8 (or hold a NUL).
static json_t *
s_text (const char *text, size_t size)
{
    json_t *value = json_stringn (text, size);
    if (value && !memchr (text, 0, size))
        return value;
    json_decref (value);
    char *hex = malloc (size * 2 + 5);
    if (!hex)
        return NULL;
    memcpy (hex, "hex:", 4);
    sodium_bin2hex (hex + 4, size * 2 + 1, (const unsigned char *) text, size);
    value = json_string (hex);
    free (hex);
    return value;
}

static json_t *
s_base64 (const uint8_t *data, size_t size)
{
    size_t text_size = sodium_base64_ENCODED_LEN (size, sodium_base64_VARIANT_ORIGINAL);
    char *text = malloc (text_size);
    if (!text)
        return NULL;
    sodium_bin2base64 (text, text_size, data, size, sodium_base64_VARIANT_ORIGINAL);
    json_t *value = json_string (text);
    free (text);
    return value;
}

static json_t *
s_real (double value)
{
    if (isnan (value))
        return json_string ("NaN");
    if (isinf (value))
        return json_string (value > 0? "Infinity": "-Infinity");
    return json_real (value);
}

static json_t *
s_u64 (uint64_t value)
{
    if (value <= (uint64_t) INT64_MAX)
        return json_integer ((json_int_t) value);
    char text [24];
    snprintf (text, sizeof text, "%llu", (unsigned long long) value);
    return json_string (text);
}

//  Size of one element of a repeated field of this type.
static size_t
s_element_size (ProtobufCType type)
{
    switch (type) {
        case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
        case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64: case PROTOBUF_C_TYPE_DOUBLE:
            return 8;
        case PROTOBUF_C_TYPE_BOOL:
            return sizeof (protobuf_c_boolean);
        case PROTOBUF_C_TYPE_STRING:
            return sizeof (char *);
        case PROTOBUF_C_TYPE_BYTES:
            return sizeof (ProtobufCBinaryData);
        case PROTOBUF_C_TYPE_MESSAGE:
            return sizeof (ProtobufCMessage *);
        default:
            return 4;
    }
}

//  True when the single value at member is its type's default (proto3: left out).
static bool
s_is_default (const ProtobufCFieldDescriptor *field, const void *member)
{
    switch (field->type) {
        case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
        case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64:
            return *(const uint64_t *) member == 0;
        case PROTOBUF_C_TYPE_DOUBLE:
            return *(const double *) member == 0;
        case PROTOBUF_C_TYPE_FLOAT:
            return *(const float *) member == 0;
        case PROTOBUF_C_TYPE_BOOL:
            return !*(const protobuf_c_boolean *) member;
        case PROTOBUF_C_TYPE_STRING: {
            const char *text = *(char *const *) member;
            return !text || !*text;
        }
        case PROTOBUF_C_TYPE_BYTES:
            return ((const ProtobufCBinaryData *) member)->len == 0;
        case PROTOBUF_C_TYPE_MESSAGE:
            return *(ProtobufCMessage *const *) member == NULL;
        default:
            return *(const uint32_t *) member == 0;
    }
}

static json_t *s_message (const ProtobufCMessage *message, int depth);

//  JSON of the single value at member.
static json_t *
s_value (const ProtobufCFieldDescriptor *field, const void *member, int depth)
{
    switch (field->type) {
        case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32:
            return json_integer (*(const int32_t *) member);
        case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32:
            return json_integer (*(const uint32_t *) member);
        case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
            return json_integer ((json_int_t) *(const int64_t *) member);
        case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64:
            return s_u64 (*(const uint64_t *) member);
        case PROTOBUF_C_TYPE_FLOAT:
            return s_real (*(const float *) member);
        case PROTOBUF_C_TYPE_DOUBLE:
            return s_real (*(const double *) member);
        case PROTOBUF_C_TYPE_BOOL:
            return json_boolean (*(const protobuf_c_boolean *) member);
        case PROTOBUF_C_TYPE_ENUM: {
            int value = *(const int *) member;
            const ProtobufCEnumValue *named = protobuf_c_enum_descriptor_get_value (
                (const ProtobufCEnumDescriptor *) field->descriptor, value);
            return named? json_string (named->name): json_integer (value);
        }
        case PROTOBUF_C_TYPE_STRING: {
            const char *text = *(char *const *) member;
            return s_text (text? text: "", text? strlen (text): 0);
        }
        case PROTOBUF_C_TYPE_BYTES: {
            const ProtobufCBinaryData *data = (const ProtobufCBinaryData *) member;
            return s_base64 (data->data, data->len);
        }
        case PROTOBUF_C_TYPE_MESSAGE: {
            const ProtobufCMessage *message = *(ProtobufCMessage *const *) member;
            return message? s_message (message, depth + 1): json_null ();
        }
    }
    return json_null ();
}

//  A map<K, V> field is a repeated message "...Entry" of exactly key and value.
static bool
s_is_map (const ProtobufCFieldDescriptor *field)
{
    if (field->type != PROTOBUF_C_TYPE_MESSAGE)
        return false;
    const ProtobufCMessageDescriptor *entry = field->descriptor;
    size_t length = strlen (entry->short_name);
    return entry->n_fields == 2 && length > 5 && strcmp (entry->short_name + length - 5, "Entry") == 0
        && strcmp (entry->fields [0].name, "key") == 0 && strcmp (entry->fields [1].name, "value") == 0;
}

static json_t *
s_map (const ProtobufCFieldDescriptor *field, ProtobufCMessage *const *entries, size_t count, int depth)
{
    const ProtobufCMessageDescriptor *entry_descriptor = field->descriptor;
    const ProtobufCFieldDescriptor *key_field = &entry_descriptor->fields [0];
    const ProtobufCFieldDescriptor *value_field = &entry_descriptor->fields [1];
    json_t *object = json_object ();
    for (size_t i = 0; object && i < count; i++) {
        const char *entry = (const char *) entries [i];
        if (!entry)
            continue;
        json_t *key = s_value (key_field, entry + key_field->offset, depth);
        json_t *value = s_value (value_field, entry + value_field->offset, depth);
        char number [32];
        const char *name = json_string_value (key);
        if (!name && json_is_integer (key)) {
            snprintf (number, sizeof number, "%lld", (long long) json_integer_value (key));
            name = number;
        }
        if (name && value)
            json_object_set (object, name, value);
        json_decref (key);
        json_decref (value);
    }
    return object;
}

//  Messages nest only a few levels in airlock.proto; the bound keeps a hostile (or
//  future recursive) message from exhausting the stack.
#define S_MAX_DEPTH 32

static json_t *
s_message (const ProtobufCMessage *message, int depth)
{
    if (depth > S_MAX_DEPTH)
        return json_string ("(nested too deeply)");
    const ProtobufCMessageDescriptor *descriptor = message->descriptor;
    const char *base = (const char *) message;
    json_t *object = json_object ();
    for (unsigned i = 0; object && i < descriptor->n_fields; i++) {
        const ProtobufCFieldDescriptor *field = &descriptor->fields [i];
        const void *member = base + field->offset;
        json_t *value = NULL;
        if (field->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t count = *(const size_t *) (base + field->quantifier_offset);
            if (count == 0)
                continue;
            const char *array = *(char *const *) member;
            if (!array)
                continue;
            if (s_is_map (field))
                value = s_map (field, (ProtobufCMessage *const *) array, count, depth);
            else {
                value = json_array ();
                size_t size = s_element_size (field->type);
                for (size_t index = 0; value && index < count; index++)
                    json_array_append_new (value, s_value (field, array + index * size, depth));
            }
        }
        else
        if (field->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            if (*(const uint32_t *) (base + field->quantifier_offset) != field->id)
                continue;
            value = s_value (field, member, depth);
        }
        else {
            if (field->label == PROTOBUF_C_LABEL_OPTIONAL && field->quantifier_offset
            &&  field->type != PROTOBUF_C_TYPE_MESSAGE && field->type != PROTOBUF_C_TYPE_STRING
            &&  !*(const protobuf_c_boolean *) (base + field->quantifier_offset))
                continue;
            if (field->label == PROTOBUF_C_LABEL_NONE && s_is_default (field, member))
                continue;
            if (field->type == PROTOBUF_C_TYPE_MESSAGE && !*(ProtobufCMessage *const *) member)
                continue;
            value = s_value (field, member, depth);
        }
        if (value)
            json_object_set_new (object, field->name, value);
    }
    //  What a human signed is bytes in the proto (the verifier checks those bytes, never
    //  a re-encoding); an auditor reads it decoded as well, beside the bytes.
    if (object && descriptor == &airlock__signed_approval__descriptor) {
        const Airlock__SignedApproval *approval = (const Airlock__SignedApproval *) message;
        Airlock__ApprovalStatement *statement = approval->statement.len
            ? airlock__approval_statement__unpack (NULL, approval->statement.len, approval->statement.data): NULL;
        if (statement) {
            json_object_set_new (object, "statement_decoded", s_message (&statement->base, depth + 1));
            airlock__approval_statement__free_unpacked (statement, NULL);
        }
    }
    return object;
}

json_t *
al_message_to_json (const ProtobufCMessage *message)
{
    assert (message);
    return s_message (message, 0);
}

json_t *
al_cloudevent_of (const al_store_event_t *event)
{
    assert (event);
    char time_text [48], hash [AL_STORE_HASH_SIZE * 2 + 1], id [24], type [160];
    al_store_format_time (event->time_ms, time_text, sizeof time_text);
    sodium_bin2hex (hash, sizeof hash, event->hash, AL_STORE_HASH_SIZE);
    snprintf (id, sizeof id, "%llu", (unsigned long long) event->sequence);
    snprintf (type, sizeof type, AL_CLOUDEVENTS_TYPE_PREFIX "%s", event->type);

    json_t *data = json_object ();
    json_t *root = json_object ();
    if (!data || !root) {
        json_decref (data);
        json_decref (root);
        return NULL;
    }
    json_object_set_new (data, "sequence", s_u64 (event->sequence));
    json_object_set_new (data, "hash", json_string (hash));
    json_object_set_new (data, "sender", s_text (event->sender, strlen (event->sender)));
    json_object_set_new (data, "role", s_text (event->role, strlen (event->role)));
    json_object_set_new (data, "message_id", s_text (event->message_id, strlen (event->message_id)));
    json_object_set_new (data, "environment", s_text (event->environment, strlen (event->environment)));
    json_object_set_new (data, "decision", json_string (event->decision == AL_STORE_ACCEPTED? "accepted": "denied"));
    json_object_set_new (data, "reason", s_text (event->reason, strlen (event->reason)));
    if (event->envelope_size == 0)
        json_object_set_new (data, "envelope", json_null ());
    else {
        //  Decoded as protobuf only, not validated: a denied row's envelope is shown for
        //  what it is, which is why it was denied.
        Airlock__Envelope *envelope = airlock__envelope__unpack (NULL, event->envelope_size, event->envelope);
        if (envelope) {
            json_object_set_new (data, "envelope", al_message_to_json (&envelope->base));
            airlock__envelope__free_unpacked (envelope, NULL);
        }
        else {
            json_object_set_new (data, "envelope", json_null ());
            json_object_set_new (data, "envelope_base64", s_base64 (event->envelope, event->envelope_size));
        }
    }
    json_object_set_new (root, "specversion", json_string ("1.0"));
    json_object_set_new (root, "id", json_string (id));
    json_object_set_new (root, "source", json_string (AL_CLOUDEVENTS_SOURCE));
    json_object_set_new (root, "type", s_text (type, strlen (type)));
    json_object_set_new (root, "time", json_string (time_text));
    if (*event->deployment_id)
        json_object_set_new (root, "subject", s_text (event->deployment_id, strlen (event->deployment_id)));
    json_object_set_new (root, "datacontenttype", json_string ("application/json"));
    json_object_set_new (root, "data", data);
    return root;
}

al_store_status_t
al_cloudevents_export (al_store_t *store, uint64_t from_sequence, FILE *out, char *error, size_t error_size)
{
    assert (store && out);
    al_store_iter_t *iter = al_store_iter_new (store, from_sequence);
    if (!iter) {
        snprintf (error, error_size, "export: %s", al_store_error (store));
        return AL_STORE_ERR_IO;
    }
    al_store_status_t status;
    al_store_event_t event;
    while ((status = al_store_iter_next (iter, &event)) == AL_STORE_OK) {
        json_t *object = al_cloudevent_of (&event);
        int rc = object? json_dumpf (object, out, JSON_COMPACT | JSON_PRESERVE_ORDER): -1;
        json_decref (object);
        if (rc != 0 || fputc ('\n', out) == EOF) {
            snprintf (error, error_size, "export: cannot write row %llu", (unsigned long long) event.sequence);
            status = AL_STORE_ERR_IO;
            break;
        }
    }
    if (status != AL_STORE_END && status != AL_STORE_ERR_IO)
        snprintf (error, error_size, "export: %s", al_store_error (store));
    al_store_iter_destroy (&iter);
    return status == AL_STORE_END? AL_STORE_OK: status;
}
