/*  al_console.c: the web console's HTTP server (see al_console.h for the contract).

    One libmicrohttpd daemon, a thread per connection (so an SSE stream may block its
    own thread waiting for events without holding up anyone else). Published events go
    to a ring of the last `history` events, each already formatted as an SSE record with
    an increasing id; a stream keeps its own cursor into the ring, starting at the
    oldest kept event (or after the browser's Last-Event-ID), so a page opened late still
    draws the whole soak so far. The ring's mutex and condition are the only shared
    state besides the immutable options; the api function is the caller's to make
    thread-safe.
*/
#include "console/al_console.h"

#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define S_COOKIE "airlock_console"
#define S_TOKEN_MIN 16
#define S_KEEPALIVE_S 10

static const char *s_csp =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

typedef struct {
    uint64_t id;
    char *record;               // "id: N\nevent: E\ndata: JSON\n\n"
} s_event_t;

struct _al_console_t {
    struct MHD_Daemon *daemon;
    al_console_api_fn *api;
    void *api_arg;
    bool has_token;
    uint8_t token_hash [crypto_generichash_BYTES];
    uint16_t port;
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    s_event_t *ring;            // capacity entries; event id N at ring [N % capacity]
    size_t capacity;
    uint64_t next_id;           // id of the next published event (first is 1)
    bool stopping;
};

struct _al_console_request_t {
    struct MHD_Connection *connection;
};

typedef struct {
    al_console_t *console;
    uint64_t next_id;           // the next event this stream sends
    char *pending;              // a record being sent
    size_t pending_size, pending_at;
} s_stream_t;

bool
al_console_host_is_loopback (const char *host)
{
    if (!host)
        return false;
    if (strcmp (host, "localhost") == 0 || strcmp (host, "::1") == 0)
        return true;
    struct in_addr address;
    if (inet_pton (AF_INET, host, &address) == 1)
        return (ntohl (address.s_addr) >> 24) == 127;
    return false;
}

const al_console_asset_t *
al_console_asset_find (const char *path)
{
    for (size_t index = 0; index < al_console_asset_count (); index++)
        if (strcmp (al_console_asset_at (index)->path, path) == 0)
            return al_console_asset_at (index);
    return NULL;
}

const char *
al_console_request_arg (const al_console_request_t *request, const char *key)
{
    assert (request);
    return MHD_lookup_connection_value (request->connection, MHD_GET_ARGUMENT_KIND, key);
}

//  ---- responses ------------------------------------------------------------------------

static void
s_security_headers (struct MHD_Response *response)
{
    MHD_add_response_header (response, "Content-Security-Policy", s_csp);
    MHD_add_response_header (response, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header (response, "Referrer-Policy", "no-referrer");
    MHD_add_response_header (response, "X-Frame-Options", "DENY");
    MHD_add_response_header (response, "Cross-Origin-Opener-Policy", "same-origin");
    MHD_add_response_header (response, "Cache-Control", "no-store");
}

static enum MHD_Result
s_send (struct MHD_Connection *connection, unsigned int status, const char *type, const void *data,
        size_t size, enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *response = MHD_create_response_from_buffer (size, (void *) data, mode);
    if (!response)
        return MHD_NO;
    s_security_headers (response);
    MHD_add_response_header (response, "Content-Type", type);
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header (response, "Allow", "GET, HEAD");
    enum MHD_Result result = MHD_queue_response (connection, status, response);
    MHD_destroy_response (response);
    return result;
}

//  {"error": what}, with the status.
static enum MHD_Result
s_send_error (struct MHD_Connection *connection, unsigned int status, const char *what)
{
    json_t *body = json_pack ("{s:s}", "error", what);
    char *text = body? json_dumps (body, JSON_COMPACT): NULL;
    json_decref (body);
    if (!text)
        return s_send (connection, status, "text/plain; charset=utf-8", what, strlen (what),
                       MHD_RESPMEM_MUST_COPY);
    return s_send (connection, status, "application/json", text, strlen (text), MHD_RESPMEM_MUST_FREE);
}

static enum MHD_Result
s_send_json (struct MHD_Connection *connection, unsigned int status, json_t *document)
{
    char *text = json_dumps (document, JSON_COMPACT | JSON_ENSURE_ASCII);
    if (!text)
        return s_send_error (connection, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    return s_send (connection, status, "application/json", text, strlen (text), MHD_RESPMEM_MUST_FREE);
}

//  ---- access ---------------------------------------------------------------------------

static bool
s_token_matches (const al_console_t *self, const char *offered)
{
    if (!offered)
        return false;
    uint8_t hash [crypto_generichash_BYTES];
    crypto_generichash (hash, sizeof hash, (const uint8_t *) offered, strlen (offered), NULL, 0);
    return sodium_memcmp (hash, self->token_hash, sizeof hash) == 0;
}

//  The host part of a Host header ("127.0.0.1:8080", "[::1]:80", "localhost").
static void
s_host_part (const char *header, char *host, size_t size)
{
    host [0] = 0;
    if (!header)
        return;
    if (header [0] == '[') {
        const char *end = strchr (header, ']');
        if (end && (size_t) (end - header - 1) < size)
            snprintf (host, size, "%.*s", (int) (end - header - 1), header + 1);
        return;
    }
    const char *colon = strchr (header, ':');
    size_t length = colon? (size_t) (colon - header): strlen (header);
    if (length < size)
        snprintf (host, size, "%.*s", (int) length, header);
}

//  NULL when the request may go on, else the reason it may not.
static const char *
s_refusal (const al_console_t *self, struct MHD_Connection *connection)
{
    if (self->has_token) {
        const char *authorization = MHD_lookup_connection_value (connection, MHD_HEADER_KIND, "Authorization");
        if (authorization && strncmp (authorization, "Bearer ", 7) == 0
        &&  s_token_matches (self, authorization + 7))
            return NULL;
        if (s_token_matches (self, MHD_lookup_connection_value (connection, MHD_COOKIE_KIND, S_COOKIE)))
            return NULL;
        return "a token is required: Authorization: Bearer TOKEN, or open /login?token=TOKEN once";
    }
    char host [256];
    s_host_part (MHD_lookup_connection_value (connection, MHD_HEADER_KIND, "Host"), host, sizeof host);
    if (!al_console_host_is_loopback (host))
        return "the console answers only requests addressed to a loopback host";
    return NULL;
}

//  GET /login?token=T: sets the cookie (the browser then sends it with every request).
static enum MHD_Result
s_login (al_console_t *self, struct MHD_Connection *connection)
{
    const char *token = MHD_lookup_connection_value (connection, MHD_GET_ARGUMENT_KIND, "token");
    if (!self->has_token || !s_token_matches (self, token))
        return s_send_error (connection, MHD_HTTP_UNAUTHORIZED, "wrong or missing token");
    struct MHD_Response *response = MHD_create_response_from_buffer (0, (void *) "", MHD_RESPMEM_PERSISTENT);
    if (!response)
        return MHD_NO;
    char *cookie = NULL;
    if (asprintf (&cookie, S_COOKIE "=%s; Path=/; HttpOnly; SameSite=Strict", token) < 0) {
        MHD_destroy_response (response);
        return MHD_NO;
    }
    s_security_headers (response);
    MHD_add_response_header (response, "Set-Cookie", cookie);
    MHD_add_response_header (response, "Location", "/");
    free (cookie);
    enum MHD_Result result = MHD_queue_response (connection, MHD_HTTP_SEE_OTHER, response);
    MHD_destroy_response (response);
    return result;
}

//  ---- the event stream -----------------------------------------------------------------

void
al_console_publish (al_console_t *self, const char *event, const json_t *data)
{
    assert (self && event && data);
    char *json = json_dumps (data, JSON_COMPACT | JSON_ENSURE_ASCII);
    if (!json)
        return;
    pthread_mutex_lock (&self->mutex);
    uint64_t id = self->next_id++;
    char *record = NULL;
    if (asprintf (&record, "id: %llu\nevent: %s\ndata: %s\n\n", (unsigned long long) id, event, json) < 0)
        record = NULL;
    s_event_t *slot = &self->ring [id % self->capacity];
    free (slot->record);
    slot->id = record? id: 0;
    slot->record = record;
    pthread_cond_broadcast (&self->cond);
    pthread_mutex_unlock (&self->mutex);
    free (json);
}

static ssize_t
s_stream_read (void *cls, uint64_t position, char *buffer, size_t max)
{
    (void) position;
    s_stream_t *stream = (s_stream_t *) cls;
    al_console_t *self = stream->console;
    if (!stream->pending) {
        pthread_mutex_lock (&self->mutex);
        struct timespec deadline;
        clock_gettime (CLOCK_REALTIME, &deadline);
        deadline.tv_sec += S_KEEPALIVE_S;
        while (!self->stopping && stream->next_id >= self->next_id)
            if (pthread_cond_timedwait (&self->cond, &self->mutex, &deadline) == ETIMEDOUT)
                break;
        if (self->stopping) {
            pthread_mutex_unlock (&self->mutex);
            return MHD_CONTENT_READER_END_OF_STREAM;
        }
        if (stream->next_id < self->next_id) {
            //  Events older than the ring are gone: skip to the oldest kept.
            uint64_t oldest = self->next_id > self->capacity? self->next_id - self->capacity: 1;
            if (stream->next_id < oldest)
                stream->next_id = oldest;
            const s_event_t *slot = &self->ring [stream->next_id % self->capacity];
            stream->pending = slot->id == stream->next_id && slot->record? strdup (slot->record): NULL;
            stream->next_id++;
        }
        pthread_mutex_unlock (&self->mutex);
        if (!stream->pending)
            stream->pending = strdup (": keepalive\n\n");
        if (!stream->pending)
            return MHD_CONTENT_READER_END_WITH_ERROR;
        stream->pending_size = strlen (stream->pending);
        stream->pending_at = 0;
    }
    size_t size = stream->pending_size - stream->pending_at;
    if (size > max)
        size = max;
    memcpy (buffer, stream->pending + stream->pending_at, size);
    stream->pending_at += size;
    if (stream->pending_at == stream->pending_size) {
        free (stream->pending);
        stream->pending = NULL;
    }
    return (ssize_t) size;
}

static void
s_stream_free (void *cls)
{
    s_stream_t *stream = (s_stream_t *) cls;
    free (stream->pending);
    free (stream);
}

static enum MHD_Result
s_stream (al_console_t *self, struct MHD_Connection *connection)
{
    s_stream_t *stream = (s_stream_t *) calloc (1, sizeof *stream);
    if (!stream)
        return MHD_NO;
    stream->console = self;
    stream->next_id = 1;
    const char *last = MHD_lookup_connection_value (connection, MHD_HEADER_KIND, "Last-Event-ID");
    if (last) {
        char *end = NULL;
        unsigned long long value = strtoull (last, &end, 10);
        if (end && !*end && end != last)
            stream->next_id = value + 1;
    }
    struct MHD_Response *response = MHD_create_response_from_callback (MHD_SIZE_UNKNOWN, 4096, s_stream_read,
                                                                       stream, s_stream_free);
    if (!response) {
        free (stream);
        return MHD_NO;
    }
    s_security_headers (response);
    MHD_add_response_header (response, "Content-Type", "text/event-stream");
    enum MHD_Result result = MHD_queue_response (connection, MHD_HTTP_OK, response);
    MHD_destroy_response (response);
    return result;
}

//  ---- routing -------------------------------------------------------------------------

static bool
s_api_name_valid (const char *name)
{
    if (!*name || strlen (name) > 64)
        return false;
    for (const char *c = name; *c; c++)
        if (!(islower ((unsigned char) *c) || isdigit ((unsigned char) *c) || *c == '_' || *c == '-'))
            return false;
    return true;
}

static enum MHD_Result
s_api (al_console_t *self, struct MHD_Connection *connection, const char *name)
{
    if (!s_api_name_valid (name))
        return s_send_error (connection, MHD_HTTP_NOT_FOUND, "no such API");
    al_console_request_t request = { connection };
    int status = MHD_HTTP_OK;
    char error [512] = "";
    json_t *document = self->api (self->api_arg, name, &request, &status, error, sizeof error);
    if (!document) {
        if (status < 400 || status > 599)
            status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        return s_send_error (connection, (unsigned) status, *error? error: "no answer");
    }
    enum MHD_Result result = s_send_json (connection, MHD_HTTP_OK, document);
    json_decref (document);
    return result;
}

static enum MHD_Result
s_handle (void *cls, struct MHD_Connection *connection, const char *url, const char *method,
          const char *version, const char *upload_data, size_t *upload_data_size, void **context)
{
    (void) version;
    (void) upload_data;
    al_console_t *self = (al_console_t *) cls;
    if (strcmp (method, MHD_HTTP_METHOD_GET) != 0 && strcmp (method, MHD_HTTP_METHOD_HEAD) != 0) {
        //  Wait for the (ignored) body to be read before answering.
        if (!*context) {
            *context = (void *) 1;
            return MHD_YES;
        }
        if (*upload_data_size) {
            *upload_data_size = 0;
            return MHD_YES;
        }
        return s_send_error (connection, MHD_HTTP_METHOD_NOT_ALLOWED, "the console is read-only: GET only");
    }
    if (strcmp (url, "/login") == 0)
        return s_login (self, connection);
    const char *refusal = s_refusal (self, connection);
    if (refusal)
        return s_send_error (connection, self->has_token? MHD_HTTP_UNAUTHORIZED: MHD_HTTP_FORBIDDEN, refusal);
    if (strcmp (url, "/api/stream") == 0)
        return s_stream (self, connection);
    if (strncmp (url, "/api/", 5) == 0)
        return s_api (self, connection, url + 5);
    const al_console_asset_t *asset = al_console_asset_find (strcmp (url, "/") == 0? "/index.html": url);
    if (!asset)
        return s_send_error (connection, MHD_HTTP_NOT_FOUND, "no such page");
    return s_send (connection, MHD_HTTP_OK, asset->content_type, asset->data, asset->size,
                   MHD_RESPMEM_PERSISTENT);
}

//  ---- lifecycle -----------------------------------------------------------------------

//  "HOST:PORT" or "[V6]:PORT" into an address. Returns 0, or -1 with the reason.
static int
s_parse_listen (const char *listen, struct sockaddr_storage *address, socklen_t *length, bool *loopback,
                char *error, size_t error_size)
{
    char host [128];
    const char *port_text;
    if (listen [0] == '[') {
        const char *end = strchr (listen, ']');
        if (!end || end [1] != ':' || (size_t) (end - listen - 1) >= sizeof host) {
            snprintf (error, error_size, "--listen %s: expected [IPV6]:PORT", listen);
            return -1;
        }
        snprintf (host, sizeof host, "%.*s", (int) (end - listen - 1), listen + 1);
        port_text = end + 2;
    }
    else {
        const char *colon = strrchr (listen, ':');
        if (!colon || (size_t) (colon - listen) >= sizeof host || colon == listen) {
            snprintf (error, error_size, "--listen %s: expected HOST:PORT (e.g. 127.0.0.1:8080)", listen);
            return -1;
        }
        snprintf (host, sizeof host, "%.*s", (int) (colon - listen), listen);
        port_text = colon + 1;
    }
    char *end = NULL;
    errno = 0;
    unsigned long port = strtoul (port_text, &end, 10);
    if (!*port_text || !end || *end || errno || port > 65535) {
        snprintf (error, error_size, "--listen %s: '%s' is not a port (0..65535)", listen, port_text);
        return -1;
    }
    if (strcmp (host, "localhost") == 0)
        snprintf (host, sizeof host, "127.0.0.1");
    memset (address, 0, sizeof *address);
    struct sockaddr_in *v4 = (struct sockaddr_in *) address;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *) address;
    if (inet_pton (AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons ((uint16_t) port);
        *length = sizeof *v4;
    }
    else
    if (inet_pton (AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons ((uint16_t) port);
        *length = sizeof *v6;
    }
    else {
        snprintf (error, error_size, "--listen %s: '%s' is not an IP address", listen, host);
        return -1;
    }
    *loopback = al_console_host_is_loopback (host);
    return 0;
}

int
al_console_listen_check (const char *listen, bool has_token_file, char *error, size_t error_size)
{
    assert (listen);
    struct sockaddr_storage address;
    socklen_t length = 0;
    bool loopback = false;
    if (s_parse_listen (listen, &address, &length, &loopback, error, error_size) != 0)
        return -1;
    if (!loopback && !has_token_file) {
        snprintf (error, error_size, "--listen %s: not a loopback address: give --token-file FILE "
                  "(refused: the console would be open to the network)", listen);
        return -1;
    }
    return 0;
}

//  The token: the file's first line without surrounding blanks, at least 16 characters.
static int
s_read_token (al_console_t *self, const char *path, char *error, size_t error_size)
{
    FILE *file = fopen (path, "r");
    if (!file) {
        snprintf (error, error_size, "%s: cannot read the token file: %s", path, strerror (errno));
        return -1;
    }
    char line [1024] = "";
    bool read = fgets (line, sizeof line, file) != NULL;
    fclose (file);
    char *start = line;
    while (isspace ((unsigned char) *start))
        start++;
    size_t length = strlen (start);
    while (length && isspace ((unsigned char) start [length - 1]))
        start [--length] = 0;
    if (!read || length < S_TOKEN_MIN) {
        snprintf (error, error_size, "%s:1: the token must be at least %d characters", path, S_TOKEN_MIN);
        sodium_memzero (line, sizeof line);
        return -1;
    }
    crypto_generichash (self->token_hash, sizeof self->token_hash, (const uint8_t *) start, length, NULL, 0);
    self->has_token = true;
    sodium_memzero (line, sizeof line);
    return 0;
}

al_console_t *
al_console_new (const al_console_options_t *options, char *error, size_t error_size)
{
    assert (options && options->listen && options->api);
    if (sodium_init () < 0) {
        snprintf (error, error_size, "console: libsodium does not initialise");
        return NULL;
    }
    al_console_t *self = (al_console_t *) calloc (1, sizeof *self);
    assert (self);
    self->api = options->api;
    self->api_arg = options->api_arg;
    self->capacity = options->history? options->history: 2000;
    self->ring = (s_event_t *) calloc (self->capacity, sizeof *self->ring);
    assert (self->ring);
    self->next_id = 1;
    pthread_mutex_init (&self->mutex, NULL);
    pthread_cond_init (&self->cond, NULL);

    struct sockaddr_storage address;
    socklen_t length = 0;
    bool loopback = false;
    if (s_parse_listen (options->listen, &address, &length, &loopback, error, error_size) != 0)
        goto failed;
    if (options->token_file && s_read_token (self, options->token_file, error, error_size) != 0)
        goto failed;
    if (al_console_listen_check (options->listen, self->has_token, error, error_size) != 0)
        goto failed;
    unsigned int flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD;
    if (address.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    self->daemon = MHD_start_daemon (flags, 0, NULL, NULL, s_handle, self,
                                     MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &address,
                                     MHD_OPTION_CONNECTION_LIMIT, (unsigned int) 64,
                                     MHD_OPTION_END);
    if (!self->daemon) {
        snprintf (error, error_size, "--listen %s: cannot listen there (address in use or not local?)",
                  options->listen);
        goto failed;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info (self->daemon, MHD_DAEMON_INFO_BIND_PORT);
    self->port = info? info->port: 0;
    (void) length;
    return self;
failed:
    al_console_destroy (&self);
    return NULL;
}

void
al_console_destroy (al_console_t **self_p)
{
    assert (self_p);
    al_console_t *self = *self_p;
    if (!self)
        return;
    pthread_mutex_lock (&self->mutex);
    self->stopping = true;
    pthread_cond_broadcast (&self->cond);
    pthread_mutex_unlock (&self->mutex);
    if (self->daemon)
        MHD_stop_daemon (self->daemon);
    for (size_t index = 0; index < self->capacity; index++)
        free (self->ring [index].record);
    free (self->ring);
    pthread_cond_destroy (&self->cond);
    pthread_mutex_destroy (&self->mutex);
    sodium_memzero (self->token_hash, sizeof self->token_hash);
    free (self);
    *self_p = NULL;
}

uint16_t
al_console_port (al_console_t *self)
{
    assert (self);
    return self->port;
}
