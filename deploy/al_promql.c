/*  al_promql.c: PromQL instant queries over the Prometheus HTTP API (libcurl, jansson).

    The client owns one slot per concurrent query (AL_PROMQL_SIGNALS of them): an easy
    handle configured once and a body buffer, reused from call to call so that the
    multi handle's connection cache keeps one connection per slot alive. Between calls
    no easy handle is attached to the multi handle; a slot's buffer is never NULL and
    is NUL-terminated at size, size <= AL_PROMQL_MAX_BODY.

    Why not al_scrape: a scrape that is not a 2xx has no body by design, but the API
    explains a failed query in the body of its 400/422/503 ({"status":"error",...}),
    and that explanation is what an operator needs to fix a query template.

    The template expander carries a small PromQL lexer (string literals, comments) so
    that a label value is only ever placed inside a string literal, escaped for it.

    Not thread-safe: one owner per client.
*/
#include "base/al_error.h"
#include "deploy/al_promql.h"
#include "deploy/al_http_int.h"
#include "base/al_clock.h"
#include <assert.h>
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_USER_AGENT "airlock-monitor"
//  Bytes of a server's own error text kept in ours.
#define S_SERVER_TEXT 300

static const char *s_signal_names [AL_PROMQL_SIGNALS] = {
    "requests_per_second", "error_ratio", "latency_p50_ms", "latency_p99_ms",
    "cpu_percent", "memory_percent"
};

typedef struct {
    al_http_transfer_t http;        // easy handle and capped body (al_http_int.h)
    bool attached;                  // added to the multi handle in this round
    bool finished;                  // its outcome is filled in this round
    //  Outcome of the round
    al_promql_status_t status;
    double value;
    char error [512];
} s_slot_t;

struct _al_promql_t {
    char *base_url;                 // without trailing slash
    int timeout_ms;
    CURLM *multi;
    struct curl_slist *headers;
    s_slot_t slots [AL_PROMQL_SIGNALS];
};

const char *
al_promql_signal_name (int signal)
{
    return signal >= 0 && signal < AL_PROMQL_SIGNALS ? s_signal_names [signal] : NULL;
}

//  --------------------------------------------------------------------------
//  A growing string

typedef struct {
    char *data;
    size_t size;
    size_t alloc;
    bool failed;                    // out of memory: data is NULL
} s_text_t;

static void
s_text_append (s_text_t *text, const char *data, size_t size)
{
    if (text->failed)
        return;
    if (text->size + size + 1 > text->alloc) {
        size_t alloc = text->alloc ? text->alloc : 256;
        while (alloc < text->size + size + 1)
            alloc *= 2;
        char *grown = realloc (text->data, alloc);
        if (!grown) {
            free (text->data);
            *text = (s_text_t) { .failed = true };
            return;
        }
        text->data = grown;
        text->alloc = alloc;
    }
    memcpy (text->data + text->size, data, size);
    text->size += size;
    text->data [text->size] = 0;
}

//  --------------------------------------------------------------------------
//  Template expansion

typedef enum { S_CODE, S_DOUBLE_QUOTED, S_SINGLE_QUOTED, S_RAW, S_COMMENT } s_lex_state_t;

//  Append value escaped for a literal of the given kind. False if it cannot be (a
//  backquote in a raw string).
static bool
s_append_escaped (s_text_t *out, const char *value, s_lex_state_t state)
{
    if (state == S_RAW) {
        if (strchr (value, '`'))
            return false;
        s_text_append (out, value, strlen (value));
        return true;
    }
    char quote = state == S_DOUBLE_QUOTED ? '"' : '\'';
    for (const char *at = value; *at; at++) {
        unsigned char c = (unsigned char) *at;
        char escaped [8];
        if (c == '\\' || c == (unsigned char) quote)
            snprintf (escaped, sizeof escaped, "\\%c", c);
        else
        if (c == '\n')
            snprintf (escaped, sizeof escaped, "\\n");
        else
        if (c < 0x20 || c == 0x7f)
            snprintf (escaped, sizeof escaped, "\\x%02x", c);
        else {
            escaped [0] = (char) c;
            escaped [1] = 0;
        }
        s_text_append (out, escaped, strlen (escaped));
    }
    return true;
}

char *
al_promql_expand (const char *template_text, const al_promql_labels_t *labels,
                  char *error, size_t error_size)
{
    assert (template_text);
    assert (labels);
    const char *names [] = { "service", "environment", "version", "instance" };
    const char *values [] = { labels->service, labels->environment, labels->version, labels->instance };
    s_text_t out = { 0 };
    s_lex_state_t state = S_CODE;
    s_text_append (&out, "", 0);
    const char *at = template_text;
    while (*at) {
        size_t offset = (size_t) (at - template_text);
        if (at [0] == '{' && at [1] == '{' && state != S_COMMENT) {
            const char *close = strstr (at + 2, "}}");
            if (!close) {
                al_error_set (error, error_size, "offset %zu: unclosed {{", offset);
                goto cleanup;
            }
            size_t length = (size_t) (close - at - 2);
            int found = -1;
            for (int i = 0; i < 4; i++)
                if (strlen (names [i]) == length && memcmp (names [i], at + 2, length) == 0)
                    found = i;
            if (found < 0) {
                al_error_set (error, error_size, "offset %zu: unknown {{%.*s}} (known: {{service}}, "
                             "{{environment}}, {{version}}, {{instance}})", offset,
                             length > 40 ? 40 : (int) length, at + 2);
                goto cleanup;
            }
            if (state == S_CODE) {
                al_error_set (error, error_size, "offset %zu: {{%s}} outside a string literal: "
                             "write it inside quotes, e.g. service=\"{{%s}}\"", offset,
                             names [found], names [found]);
                goto cleanup;
            }
            if (!values [found]) {
                al_error_set (error, error_size, "offset %zu: {{%s}} has no value here", offset,
                             names [found]);
                goto cleanup;
            }
            if (!s_append_escaped (&out, values [found], state)) {
                al_error_set (error, error_size, "offset %zu: the value of {{%s}} holds a backquote, "
                             "which a `raw` string cannot hold: use double quotes", offset, names [found]);
                goto cleanup;
            }
            at = close + 2;
            continue;
        }
        char c = *at;
        size_t take = 1;
        switch (state) {
            case S_CODE:
                if (c == '"') state = S_DOUBLE_QUOTED;
                else if (c == '\'') state = S_SINGLE_QUOTED;
                else if (c == '`') state = S_RAW;
                else if (c == '#') state = S_COMMENT;
                break;
            case S_DOUBLE_QUOTED:
            case S_SINGLE_QUOTED:
                if (c == '\\' && at [1])
                    take = 2;       // an escape: the next byte cannot close the literal
                else
                if (c == (state == S_DOUBLE_QUOTED ? '"' : '\''))
                    state = S_CODE;
                break;
            case S_RAW:
                if (c == '`') state = S_CODE;
                break;
            case S_COMMENT:
                if (c == '\n') state = S_CODE;
                break;
        }
        s_text_append (&out, at, take);
        at += take;
    }
    if (out.failed)
        al_error_set (error, error_size, "out of memory");
    return out.data;                // NULL when out of memory

cleanup:
    free (out.data);
    return NULL;
}

//  --------------------------------------------------------------------------
//  Response parsing

//  Copy a server's text into ours, control bytes shown as '?', at most S_SERVER_TEXT.
static void
s_server_text (char *to, size_t to_size, const char *from)
{
    size_t i = 0;
    for (; from && from [i] && i + 1 < to_size && i < S_SERVER_TEXT; i++) {
        unsigned char c = (unsigned char) from [i];
        to [i] = c < 0x20 || c == 0x7f ? '?' : (char) c;
    }
    to [i] = 0;
}

//  A sample value, [ <unix time>, "<number>" ]. OK, NO_DATA (NaN, ±Inf) or ERROR.
static al_promql_status_t
s_parse_sample (json_t *sample, double *value, char *error, size_t error_size)
{
    if (!json_is_array (sample) || json_array_size (sample) != 2
    ||  !json_is_number (json_array_get (sample, 0)) || !json_is_string (json_array_get (sample, 1))) {
        al_error_set (error, error_size, "value: not [ <time>, \"<number>\" ]");
        return AL_PROMQL_ERROR;
    }
    const char *text = json_string_value (json_array_get (sample, 1));
    char *end = NULL;
    errno = 0;
    double number = *text && !isspace ((unsigned char) *text) ? strtod (text, &end) : 0;
    if (!end || end == text || *end || (errno == ERANGE && !isinf (number))) {
        char shown [64];
        s_server_text (shown, sizeof shown, text);
        al_error_set (error, error_size, "value: \"%s\" is not a number", shown);
        return AL_PROMQL_ERROR;
    }
    if (isnan (number) || isinf (number))
        return AL_PROMQL_NO_DATA;
    *value = number;
    return AL_PROMQL_OK;
}

al_promql_status_t
al_promql_parse_response (const char *body, size_t size, double *value, char *error, size_t error_size)
{
    assert (value);
    *value = NAN;
    if (!body) {
        al_error_set (error, error_size, "no body");
        return AL_PROMQL_ERROR;
    }
    al_promql_status_t status = AL_PROMQL_ERROR;
    json_error_t parse_error;
    json_t *root = json_loadb (body, size, JSON_REJECT_DUPLICATES, &parse_error);
    if (!root) {
        char shown [128];
        s_server_text (shown, sizeof shown, parse_error.text);
        al_error_set (error, error_size, "not JSON: %s (byte %d)", shown, parse_error.position);
        return AL_PROMQL_ERROR;
    }
    const char *state = json_string_value (json_object_get (root, "status"));
    if (!json_is_object (root) || !state) {
        al_error_set (error, error_size, "not an API response (no \"status\")");
        goto cleanup;
    }
    if (strcmp (state, "error") == 0) {
        char type [64], text [S_SERVER_TEXT + 1];
        s_server_text (type, sizeof type, json_string_value (json_object_get (root, "errorType")));
        s_server_text (text, sizeof text, json_string_value (json_object_get (root, "error")));
        al_error_set (error, error_size, "status error: %s: %s", *type ? type : "unknown",
                     *text ? text : "no reason given");
        goto cleanup;
    }
    if (strcmp (state, "success") != 0) {
        char shown [64];
        s_server_text (shown, sizeof shown, state);
        al_error_set (error, error_size, "status \"%s\" (neither success nor error)", shown);
        goto cleanup;
    }
    //  A warning means the answer may be partial or wrong (a partial response of a
    //  federated store, histogram buckets without a usable "le"): not evidence.
    json_t *warnings = json_object_get (root, "warnings");
    if (json_is_array (warnings) && json_array_size (warnings) > 0) {
        char text [S_SERVER_TEXT + 1];
        s_server_text (text, sizeof text, json_string_value (json_array_get (warnings, 0)));
        al_error_set (error, error_size, "warning: %s", *text ? text : "(not a string)");
        goto cleanup;
    }
    json_t *data = json_object_get (root, "data");
    const char *type = json_string_value (json_object_get (data, "resultType"));
    json_t *result = json_object_get (data, "result");
    if (!json_is_object (data) || !type || !result) {
        al_error_set (error, error_size, "data: no resultType and result");
        goto cleanup;
    }
    if (strcmp (type, "scalar") == 0)
        status = s_parse_sample (result, value, error, error_size);
    else
    if (strcmp (type, "vector") == 0) {
        if (!json_is_array (result))
            al_error_set (error, error_size, "vector: result is not an array");
        else
        if (json_array_size (result) == 0)
            status = AL_PROMQL_NO_DATA;
        else
        if (json_array_size (result) > 1)
            al_error_set (error, error_size, "%zu series: aggregate the query to one (sum, max, ...)",
                         json_array_size (result));
        else
        if (!json_is_object (json_array_get (result, 0)))
            al_error_set (error, error_size, "vector: its element is not an object");
        else
            status = s_parse_sample (json_object_get (json_array_get (result, 0), "value"), value,
                                     error, error_size);
    }
    else {
        char shown [64];
        s_server_text (shown, sizeof shown, type);
        al_error_set (error, error_size, "resultType %s: an instant query must give a vector or a scalar",
                     shown);
    }

cleanup:
    json_decref (root);
    if (status != AL_PROMQL_OK)
        *value = NAN;
    return status;
}

//  --------------------------------------------------------------------------
//  The client

static int
s_slot_init (al_promql_t *self, s_slot_t *slot)
{
    if (al_http_transfer_init (&slot->http, AL_PROMQL_MAX_BODY, S_USER_AGENT, self->headers, slot) != 0)
        return -1;
    CURL *easy = slot->http.easy;
    CURLcode code = curl_easy_setopt (easy, CURLOPT_TIMEOUT_MS, (long) self->timeout_ms);
    if (!code) code = curl_easy_setopt (easy, CURLOPT_CONNECTTIMEOUT_MS, (long) self->timeout_ms);
    return code ? -1 : 0;
}

al_promql_t *
al_promql_new (const char *base_url, int timeout_ms, char *error, size_t error_size)
{
    assert (base_url);
    assert (timeout_ms > 0);
    size_t length = strlen (base_url);
    const char *authority = strncmp (base_url, "http://", 7) == 0 ? base_url + 7
                          : strncmp (base_url, "https://", 8) == 0 ? base_url + 8 : NULL;
    if (!authority) {
        al_error_set (error, error_size, "prometheus url \"%.100s\": not http:// or https://", base_url);
        return NULL;
    }
    size_t authority_length = strcspn (authority, "/");
    if (length > AL_PROMQL_MAX_URL || authority_length == 0
    ||  strcspn (base_url, "?# \t\r\n") != length) {
        al_error_set (error, error_size, "prometheus url \"%.100s\": needs a host, and no query, "
                     "fragment or blanks", base_url);
        return NULL;
    }
    if (memchr (authority, '@', authority_length)) {
        //  Not even echoed: it holds a password.
        al_error_set (error, error_size, "prometheus url: credentials in the URL are not supported "
                     "(they would appear in error texts)");
        return NULL;
    }
    CURLcode init_code = al_http_global_init ();
    if (init_code != CURLE_OK) {
        al_error_set (error, error_size, "libcurl: %s", curl_easy_strerror (init_code));
        return NULL;
    }
    al_promql_t *self = calloc (1, sizeof (al_promql_t));
    if (!self) {
        al_error_set (error, error_size, "out of memory");
        return NULL;
    }
    self->timeout_ms = timeout_ms;
    self->base_url = strndup (base_url, length);
    while (self->base_url && strlen (self->base_url) > (size_t) (authority - base_url) + authority_length
       &&  self->base_url [strlen (self->base_url) - 1] == '/')
        self->base_url [strlen (self->base_url) - 1] = 0;
    self->multi = curl_multi_init ();
    self->headers = curl_slist_append (NULL, "Accept: application/json");
    bool ok = self->base_url && self->multi && self->headers;
    for (int i = 0; ok && i < AL_PROMQL_SIGNALS; i++)
        ok = s_slot_init (self, &self->slots [i]) == 0;
    if (!ok) {
        al_error_set (error, error_size, "libcurl: cannot create the client (out of memory?)");
        al_promql_destroy (&self);
    }
    return self;
}

void
al_promql_destroy (al_promql_t **self_p)
{
    assert (self_p);
    al_promql_t *self = *self_p;
    if (!self)
        return;
    //  Easy handles leave the multi handle before either is cleaned up (libcurl's rule).
    for (int i = 0; i < AL_PROMQL_SIGNALS; i++) {
        s_slot_t *slot = &self->slots [i];
        if (slot->attached)
            curl_multi_remove_handle (self->multi, slot->http.easy);
        al_http_transfer_clear (&slot->http);
    }
    if (self->multi)
        curl_multi_cleanup (self->multi);
    curl_slist_free_all (self->headers);
    free (self->base_url);
    free (self);
    *self_p = NULL;
}

const char *
al_promql_url (const al_promql_t *self)
{
    assert (self);
    return self->base_url;
}

//  base/api/v1/query?query=<percent-encoded>&timeout=<seconds>. NULL if out of memory.
static char *
s_query_url (al_promql_t *self, const char *query)
{
    s_text_t url = { 0 };
    s_text_append (&url, self->base_url, strlen (self->base_url));
    s_text_append (&url, "/api/v1/query?query=", 20);
    for (const char *at = query; *at; at++) {
        unsigned char c = (unsigned char) *at;
        char encoded [4];
        if (isalnum (c) || c == '-' || c == '.' || c == '_' || c == '~') {
            encoded [0] = (char) c;
            encoded [1] = 0;
        }
        else
            snprintf (encoded, sizeof encoded, "%%%02X", c);
        s_text_append (&url, encoded, strlen (encoded));
    }
    char timeout [48];
    snprintf (timeout, sizeof timeout, "&timeout=%.3f", self->timeout_ms / 1000.0);
    s_text_append (&url, timeout, strlen (timeout));
    return url.data;
}

//  Turn a finished transfer into the slot's outcome.
static void
s_finish (al_promql_t *self, s_slot_t *slot, CURLcode code)
{
    long http = 0;
    curl_easy_getinfo (slot->http.easy, CURLINFO_RESPONSE_CODE, &http);
    slot->value = NAN;
    slot->status = AL_PROMQL_ERROR;
    bool success = http >= 200 && http < 300;
    if (code == CURLE_OK && success)
        slot->status = al_promql_parse_response (slot->http.body, slot->http.size, &slot->value,
                                                 slot->error, sizeof slot->error);
    else
    if (http > 0 && !success) {
        //  The API explains a failed query in the body; show it when it is there.
        char reason [400] = "";
        double ignored;
        if (code == CURLE_OK
        &&  al_promql_parse_response (slot->http.body, slot->http.size, &ignored, reason, sizeof reason) == AL_PROMQL_ERROR
        &&  strncmp (reason, "status error: ", 14) == 0)
            snprintf (slot->error, sizeof slot->error, "HTTP %ld: %s", http, reason + 14);
        else
            snprintf (slot->error, sizeof slot->error, "HTTP %ld", http);
    }
    else
    if (slot->http.too_big || code == CURLE_FILESIZE_EXCEEDED)
        snprintf (slot->error, sizeof slot->error, "response above %u bytes", AL_PROMQL_MAX_BODY);
    else
    if (slot->http.no_memory)
        snprintf (slot->error, sizeof slot->error, "out of memory receiving the response");
    else
    if (code == CURLE_OPERATION_TIMEDOUT)
        snprintf (slot->error, sizeof slot->error, "timeout after %d ms", self->timeout_ms);
    else {
        long os_errno = 0;
        curl_easy_getinfo (slot->http.easy, CURLINFO_OS_ERRNO, &os_errno);
        if (code == CURLE_COULDNT_CONNECT && os_errno == ECONNREFUSED)
            snprintf (slot->error, sizeof slot->error, "connection refused");
        else
            snprintf (slot->error, sizeof slot->error, "%.60s: %.200s", curl_easy_strerror (code),
                      slot->http.curl_error [0] ? slot->http.curl_error : "no detail");
    }
}

//  A query's transfer ended (an al_http_done_fn): its outcome goes into its slot.
static void
s_done (void *private_data, CURL *easy, CURLcode code, void *arg)
{
    al_promql_t *self = arg;
    s_slot_t *slot = private_data;
    assert (slot && slot->http.easy == easy && slot->attached);
    s_finish (self, slot, code);
    slot->attached = false;
    slot->finished = true;
}

//  Run queries [i] in slot i for every i < AL_PROMQL_SIGNALS with queries [i] set, all
//  at once, until every transfer has ended or timeout_ms has passed. Each started
//  slot's status, value and error are filled.
static void
s_run (al_promql_t *self, const char *const queries [AL_PROMQL_SIGNALS])
{
    size_t pending = 0;
    const char *failure = NULL;
    double started = al_clock_mono_ms ();
    for (int i = 0; i < AL_PROMQL_SIGNALS; i++) {
        s_slot_t *slot = &self->slots [i];
        slot->finished = true;
        if (!queries [i])
            continue;
        slot->finished = false;
        al_http_transfer_reset (&slot->http);
        slot->status = AL_PROMQL_ERROR;
        slot->value = NAN;
        snprintf (slot->error, sizeof slot->error, "not run");
        char *url = s_query_url (self, queries [i]);
        //  libcurl copies the URL string.
        CURLcode code = url ? curl_easy_setopt (slot->http.easy, CURLOPT_URL, url) : CURLE_OUT_OF_MEMORY;
        free (url);
        if (code) {
            snprintf (slot->error, sizeof slot->error, "%s", curl_easy_strerror (code));
            slot->finished = true;
            continue;
        }
        CURLMcode multi_code = curl_multi_add_handle (self->multi, slot->http.easy);
        if (multi_code) {
            snprintf (slot->error, sizeof slot->error, "%s", curl_multi_strerror (multi_code));
            slot->finished = true;
            continue;
        }
        slot->attached = true;
        pending++;
    }
    failure = al_http_multi_drive (self->multi, &pending, started + self->timeout_ms, s_done, self);
    for (int i = 0; i < AL_PROMQL_SIGNALS; i++) {
        s_slot_t *slot = &self->slots [i];
        if (slot->finished)
            continue;
        if (slot->attached) {
            curl_multi_remove_handle (self->multi, slot->http.easy);
            slot->attached = false;
        }
        slot->status = AL_PROMQL_ERROR;
        slot->value = NAN;
        if (failure)
            snprintf (slot->error, sizeof slot->error, "libcurl: %.200s", failure);
        else
            snprintf (slot->error, sizeof slot->error, "timeout after %d ms", self->timeout_ms);
        slot->finished = true;
    }
}

al_promql_status_t
al_promql_query (al_promql_t *self, const char *query, double *value, char *error, size_t error_size)
{
    assert (self);
    assert (query);
    assert (value);
    const char *queries [AL_PROMQL_SIGNALS] = { query };
    s_run (self, queries);
    s_slot_t *slot = &self->slots [0];
    *value = slot->status == AL_PROMQL_OK ? slot->value : NAN;
    if (slot->status == AL_PROMQL_ERROR)
        al_error_set (error, error_size, "prometheus %s: %s", self->base_url, slot->error);
    return slot->status;
}

int
al_promql_sample (al_promql_t *self, const char *const queries [AL_PROMQL_SIGNALS],
                  const al_promql_labels_t *labels, double values [AL_PROMQL_SIGNALS],
                  al_promql_status_t statuses [AL_PROMQL_SIGNALS], char *error, size_t error_size)
{
    assert (self);
    assert (queries);
    assert (labels);
    assert (values);
    char *expanded [AL_PROMQL_SIGNALS] = { NULL };
    al_promql_status_t status [AL_PROMQL_SIGNALS];
    char expand_error [AL_PROMQL_SIGNALS][256];
    int failed = 0;
    bool reported = false;
    for (int i = 0; i < AL_PROMQL_SIGNALS; i++) {
        values [i] = NAN;
        status [i] = AL_PROMQL_NO_DATA;
        expand_error [i][0] = 0;
        if (queries [i] && !(expanded [i] = al_promql_expand (queries [i], labels, expand_error [i],
                                                              sizeof expand_error [i])))
            status [i] = AL_PROMQL_ERROR;
    }
    s_run (self, (const char *const *) expanded);
    for (int i = 0; i < AL_PROMQL_SIGNALS; i++) {
        const char *why = NULL;
        if (status [i] == AL_PROMQL_ERROR)
            why = expand_error [i];
        else
        if (expanded [i]) {
            status [i] = self->slots [i].status;
            if (status [i] == AL_PROMQL_OK)
                values [i] = self->slots [i].value;
            else
            if (status [i] == AL_PROMQL_ERROR)
                why = self->slots [i].error;
        }
        if (why) {
            failed++;
            if (!reported)
                al_error_set (error, error_size, "prometheus %s: %s: %s%s", self->base_url,
                             s_signal_names [i], why, expanded [i] ? "" : " (query template)");
            reported = true;
        }
        if (statuses)
            statuses [i] = status [i];
        free (expanded [i]);
    }
    return failed;
}
