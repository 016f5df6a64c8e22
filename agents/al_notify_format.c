/*  al_notify_format.c: slack, webhook and CloudEvents bodies, delivery ids, signatures.

    Bodies are built with jansson (compact, keys in insertion order). Every string of a
    message is valid UTF-8 already (al_notify_message cleans it), so jansson takes it.
    Slack's limits are applied here: header text 150 characters, section text 3000,
    at most 10 fields of 2000; a cut is made at a UTF-8 boundary, never inside an HTML
    entity, and marked with an ellipsis. Slack's mrkdwn needs &, < and > escaped.
*/
#include "agents/al_notify_format.h"
#include "proto/al_codec.h"
#include <assert.h>
#include <jansson.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_SLACK_HEADER_MAX 150
#define S_SLACK_TEXT_MAX 3000
#define S_SLACK_FIELD_MAX 2000
#define S_SLACK_FIELDS_MAX 10
#define S_USER_AGENT "airlock-notifier/0.1"

const char *
al_notify_format_content_type (al_notify_kind_t kind)
{
    return kind == AL_NOTIFY_CLOUDEVENTS? "application/cloudevents+json; charset=utf-8"
                                        : "application/json; charset=utf-8";
}

void
al_notify_format_time (uint64_t time_ms, char text [AL_NOTIFY_TIME_SIZE])
{
    time_t seconds = (time_t) (time_ms / 1000);
    struct tm tm;
    gmtime_r (&seconds, &tm);
    char date [24];
    strftime (date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf (text, AL_NOTIFY_TIME_SIZE, "%s.%03uZ", date, (unsigned) (time_ms % 1000));
}

static void
s_token (const char *in, char *out, size_t out_size)
{
    size_t used = 0;
    for (const char *p = in? in: ""; *p && used + 1 < out_size; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
               || c == '_' || c == '.' || c == '-';
        out [used++] = ok? c: '_';
    }
    out [used] = '\0';
}

void
al_notify_format_event_type (const char *template_name, char *type, size_t type_size)
{
    assert (type && type_size > 16);
    char token [160];
    s_token (template_name, token, sizeof token);
    snprintf (type, type_size, "dev.airlock.%s", token);
}

void
al_notify_format_delivery_id (const char *source_key, const char *endpoint_name,
                              char delivery_id [AL_NOTIFY_DELIVERY_ID_SIZE])
{
    assert (source_key && endpoint_name);
    crypto_hash_sha256_state state;
    crypto_hash_sha256_init (&state);
    crypto_hash_sha256_update (&state, (const unsigned char *) source_key, strlen (source_key) + 1);
    crypto_hash_sha256_update (&state, (const unsigned char *) endpoint_name, strlen (endpoint_name));
    uint8_t digest [crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final (&state, digest);
    memcpy (delivery_id, "ntf-", 4);
    sodium_bin2hex (delivery_id + 4, AL_NOTIFY_DELIVERY_ID_SIZE - 4, digest, 16);
}

void
al_notify_format_sign (const uint8_t *secret, size_t secret_size, uint64_t timestamp_s,
                       const uint8_t *body, size_t body_size, char signature [AL_NOTIFY_SIGNATURE_SIZE])
{
    char prefix [32];
    int length = snprintf (prefix, sizeof prefix, "%llu.", (unsigned long long) timestamp_s);
    crypto_auth_hmacsha256_state state;
    crypto_auth_hmacsha256_init (&state, secret, secret_size);
    crypto_auth_hmacsha256_update (&state, (const unsigned char *) prefix, (unsigned long long) length);
    crypto_auth_hmacsha256_update (&state, body, body_size);
    uint8_t mac [crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_final (&state, mac);
    memcpy (signature, "sha256=", 7);
    sodium_bin2hex (signature + 7, AL_NOTIFY_SIGNATURE_SIZE - 7, mac, sizeof mac);
}

char *
al_notify_format_headers (al_notify_kind_t kind, const al_notify_message_t *message, const char *delivery_id)
{
    char token [160];
    s_token (al_notify_message_template (message), token, sizeof token);
    char *headers = NULL;
    if (asprintf (&headers, "Content-Type: %s\nUser-Agent: %s\nX-Airlock-Delivery: %s\nX-Airlock-Event: %s\n",
                  al_notify_format_content_type (kind), S_USER_AGENT, delivery_id, token) < 0)
        headers = NULL;
    assert (headers);
    return headers;
}

//  ---- slack ---------------------------------------------------------------------------

//  &, <, > as Slack's mrkdwn wants them. Caller frees.
static char *
s_slack_escape (const char *text)
{
    size_t length = 0;
    for (const char *p = text; *p; p++)
        length += *p == '&'? 5: (*p == '<' || *p == '>')? 4: 1;
    char *out = malloc (length + 1);
    assert (out);
    char *q = out;
    for (const char *p = text; *p; p++) {
        if (*p == '&') {
            memcpy (q, "&amp;", 5);
            q += 5;
        }
        else
        if (*p == '<' || *p == '>') {
            memcpy (q, *p == '<'? "&lt;": "&gt;", 4);
            q += 4;
        }
        else
            *q++ = *p;
    }
    *q = '\0';
    return out;
}

//  Cut text in place to at most max bytes (so at most max characters), at a UTF-8
//  boundary and not inside an entity, ending with an ellipsis when cut.
static void
s_cut (char *text, size_t max)
{
    size_t length = strlen (text);
    if (length <= max)
        return;
    assert (max > 3);
    size_t cut = max - 3;               // room for U+2026 (3 bytes, 1 character)
    while (cut > 0 && ((unsigned char) text [cut] & 0xc0) == 0x80)
        cut--;
    for (size_t back = 1; back <= 5 && back <= cut; back++) {
        if (text [cut - back] == ';')
            break;
        if (text [cut - back] == '&') {
            cut -= back;
            break;
        }
    }
    memcpy (text + cut, "\xe2\x80\xa6", 4);
}

static json_t *
s_slack_text (const char *type, const char *text, size_t max, bool escape)
{
    char *copy = escape? s_slack_escape (text): strdup (text);
    assert (copy);
    s_cut (copy, max);
    json_t *object = json_pack ("{s:s, s:s}", "type", type, "text", copy);
    free (copy);
    assert (object);
    return object;
}

static json_t *
s_slack (const al_notify_message_t *message, const char *delivery_id)
{
    const char *subject = al_notify_message_subject (message);
    if (!*subject)
        subject = al_notify_message_template (message);
    const char *text = al_notify_message_text (message);
    json_t *blocks = json_array ();
    json_t *header = json_pack ("{s:s, s:o}", "type", "header",
                                "text", s_slack_text ("plain_text", subject, S_SLACK_HEADER_MAX, false));
    json_array_append_new (blocks, header);
    if (*text)
        json_array_append_new (blocks, json_pack ("{s:s, s:o}", "type", "section",
                                                  "text", s_slack_text ("mrkdwn", text, S_SLACK_TEXT_MAX, true)));
    size_t count = al_notify_message_field_count (message);
    if (count > S_SLACK_FIELDS_MAX)
        count = S_SLACK_FIELDS_MAX;
    if (count) {
        json_t *fields = json_array ();
        for (size_t i = 0; i < count; i++) {
            char *key = s_slack_escape (al_notify_message_field_key (message, i));
            char *value = s_slack_escape (al_notify_message_field_value (message, i));
            char *line = NULL;
            if (asprintf (&line, "*%s*\n%s", key, value) < 0)
                line = NULL;
            assert (line);
            json_array_append_new (fields, s_slack_text ("mrkdwn", line, S_SLACK_FIELD_MAX, false));
            free (line);
            free (key);
            free (value);
        }
        json_array_append_new (blocks, json_pack ("{s:s, s:o}", "type", "section", "fields", fields));
    }
    char context [300];
    char token [160];
    s_token (al_notify_message_template (message), token, sizeof token);
    snprintf (context, sizeof context, "airlock %s | delivery %s", token, delivery_id);
    json_t *elements = json_array ();
    json_array_append_new (elements, s_slack_text ("mrkdwn", context, S_SLACK_FIELD_MAX, true));
    json_array_append_new (blocks, json_pack ("{s:s, s:o}", "type", "context", "elements", elements));
    //  The fallback (notifications, screen readers): subject and text.
    char *fallback = NULL;
    if (asprintf (&fallback, "%s%s%s", subject, *text? "\n": "", text) < 0)
        fallback = NULL;
    assert (fallback);
    json_t *fallback_text = s_slack_text ("mrkdwn", fallback, S_SLACK_TEXT_MAX, true);
    free (fallback);
    json_t *root = json_pack ("{s:O, s:o}", "text", json_object_get (fallback_text, "text"), "blocks", blocks);
    json_decref (fallback_text);
    assert (root);
    return root;
}

//  ---- webhook and cloudevents -----------------------------------------------------------

static json_t *
s_fields (const al_notify_message_t *message)
{
    json_t *fields = json_object ();
    for (size_t i = 0; i < al_notify_message_field_count (message); i++)
        json_object_set_new (fields, al_notify_message_field_key (message, i),
                             json_string (al_notify_message_field_value (message, i)));
    return fields;
}

static json_t *
s_origin (const al_notify_message_t *message)
{
    const char *env = al_environment_name ((Airlock__Environment) al_notify_message_environment (message));
    return json_pack ("{s:s, s:s, s:s, s:{s:s, s:I}}",
                      "deployment_id", al_notify_message_deployment_id (message),
                      "environment", al_notify_message_environment (message) && env? env: "",
                      "service", al_notify_message_service (message),
                      "event", "type", al_notify_message_event_type (message),
                      "audit_sequence", (json_int_t) al_notify_message_audit_sequence (message));
}

static json_t *
s_webhook (const al_notify_message_t *message, const char *delivery_id, const char *time_text)
{
    json_t *root = json_pack ("{s:s, s:s, s:s, s:s, s:s, s:s, s:o}",
                              "id", delivery_id, "type", al_notify_message_template (message),
                              "time", time_text, "source", "airlock",
                              "subject", al_notify_message_subject (message),
                              "text", al_notify_message_text (message),
                              "fields", s_fields (message));
    assert (root);
    json_t *origin = s_origin (message);
    json_object_update (root, origin);
    json_decref (origin);
    return root;
}

static json_t *
s_cloudevent (const al_notify_message_t *message, const char *delivery_id, const char *time_text)
{
    char type [200];
    al_notify_format_event_type (al_notify_message_template (message), type, sizeof type);
    json_t *data = s_origin (message);
    json_object_set_new (data, "template", json_string (al_notify_message_template (message)));
    json_object_set_new (data, "text", json_string (al_notify_message_text (message)));
    json_object_set_new (data, "fields", s_fields (message));
    json_t *root = json_pack ("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o}",
                              "specversion", "1.0", "id", delivery_id, "source", "airlock", "type", type,
                              "time", time_text, "subject", al_notify_message_subject (message),
                              "datacontenttype", "application/json", "data", data);
    assert (root);
    return root;
}

char *
al_notify_format_body (al_notify_kind_t kind, const al_notify_message_t *message, const char *delivery_id,
                       size_t *size_p)
{
    assert (message && delivery_id && size_p);
    char time_text [AL_NOTIFY_TIME_SIZE];
    al_notify_format_time (al_notify_message_time_ms (message), time_text);
    json_t *root = kind == AL_NOTIFY_SLACK? s_slack (message, delivery_id)
                 : kind == AL_NOTIFY_CLOUDEVENTS? s_cloudevent (message, delivery_id, time_text)
                 : s_webhook (message, delivery_id, time_text);
    char *body = json_dumps (root, JSON_COMPACT);
    json_decref (root);
    assert (body);
    *size_p = strlen (body);
    return body;
}
