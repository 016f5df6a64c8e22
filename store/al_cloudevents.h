/*  al_cloudevents.h: the audit log as CloudEvents 1.0 (JSON, one event per line), and
    any airlock protobuf message as JSON.

    Each row becomes {"specversion": "1.0", "id": "<sequence>", "source": "airlock/audit",
    "type": "dev.airlock.<MessageType>", "time": RFC 3339 UTC with ms (the broker's clock
    when the row was recorded), "subject": the deployment id (left out when the row has
    none), "datacontenttype": "application/json", "data": {sequence, hash, sender, role,
    message_id, environment, decision, reason, envelope}}. data.envelope is the envelope
    decoded to JSON when its bytes decode as an Envelope, null for the broker's own rows
    (which carry no envelope); bytes that do not decode are kept as data.envelope_base64.

    Message JSON follows the proto3 JSON mapping with the proto's own field names
    (snake_case): fields at their default value are left out, enums are their value
    names ("OUTCOME_SUCCEEDED"), bytes are base64, maps are objects, 64-bit integers are
    JSON numbers (airlock's are times in ms and counters, far below 2^53). Text that is
    not UTF-8 (only in a damaged log) becomes "hex:<hex of its bytes>". A SignedApproval
    also shows what was signed, decoded, as "statement_decoded" next to the bytes.

    Pure functions of their input; the export reads the store in the caller's thread.
*/
#ifndef AL_CLOUDEVENTS_H_INCLUDED
#define AL_CLOUDEVENTS_H_INCLUDED

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>
#include <stdio.h>
#include "store/al_store.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AL_CLOUDEVENTS_SOURCE "airlock/audit"
#define AL_CLOUDEVENTS_TYPE_PREFIX "dev.airlock."

//  A new JSON object for message (caller decrefs), or NULL when out of memory.
json_t *al_message_to_json (const ProtobufCMessage *message);

//  The CloudEvent of one row (caller decrefs), or NULL when out of memory.
json_t *al_cloudevent_of (const al_store_event_t *event);

//  Write every row from from_sequence as one CloudEvent per line. AL_STORE_OK, or an
//  error with the reason in al_store_error (store) (read) or "export: ..." (write).
al_store_status_t al_cloudevents_export (al_store_t *store, uint64_t from_sequence, FILE *out,
                                         char *error, size_t error_size);

#ifdef __cplusplus
}
#endif

#endif
