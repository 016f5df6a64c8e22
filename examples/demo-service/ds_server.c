/*  ds_server.c: demo-service's HTTP server on 127.0.0.1 (libmicrohttpd).

    libmicrohttpd calls s_handle on a connection's own thread, so injected latency
    delays only that request. A request's state (s_request_t) lives from the first
    call of s_handle to s_completed, and in_flight counts those: draining waits for it
    to reach zero after the listening socket is closed.

    Outside input is bounded: a body over 4 KiB is refused (413 when announced by
    Content-Length, the connection dropped when it is streamed), query values are
    parsed with range checks (400), unknown paths are 404 and counted under the route
    "other", and URLs are never echoed unescaped.
*/
#include "ds_server.h"
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define S_MAX_BODY 4096
#define S_JSON_TYPE "application/json"
#define S_METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct _ds_server_t {
    ds_faults_t *faults;            //  borrowed
    ds_metrics_t *metrics;          //  borrowed
    char version [DS_VERSION_MAX];
    bool verbose;
    int shutdown_timeout_ms;
    double ready_at;                //  monotonic seconds when the warm-up ends
    struct MHD_Daemon *daemon;
    uint16_t port;
    MHD_socket quiesced;            //  the listening socket once MHD has let go of it
    atomic_int in_flight;
    atomic_bool stopping;           //  cut injected latency short
};

typedef struct {
    double start;
    size_t body_bytes;
} s_request_t;

static double
s_monotonic (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (double) now.tv_sec + now.tv_nsec / 1e9;
}

//  Sleep, in slices, so that a stopping server does not wait out a long fault.
static void
s_sleep_ms (ds_server_t *self, int milliseconds)
{
    double until = s_monotonic () + milliseconds / 1000.0;
    while (!atomic_load (&self->stopping)) {
        double left = until - s_monotonic ();
        if (left <= 0)
            break;
        if (left > 0.05)
            left = 0.05;
        struct timespec slice = { 0, (long) (left * 1e9) };
        nanosleep (&slice, NULL);
    }
}

//  Copy text into out as the inside of a JSON string: quotes, backslashes, controls
//  and non-ASCII bytes cannot break the document.
static void
s_json_text (char *out, size_t out_size, const char *text)
{
    assert (out_size > 0);
    size_t used = 0;
    for (const unsigned char *c = (const unsigned char *) text; *c; c++) {
        char piece [8];
        if (*c == '"' || *c == '\\')
            snprintf (piece, sizeof piece, "\\%c", *c);
        else
        if (*c < 0x20 || *c >= 0x7f)
            snprintf (piece, sizeof piece, "\\u%04x", *c < 0x20 ? *c : '?');
        else
            snprintf (piece, sizeof piece, "%c", *c);
        size_t length = strlen (piece);
        if (used + length + 1 > out_size)
            break;
        memcpy (out + used, piece, length);
        used += length;
    }
    out [used] = 0;
}

static bool
s_ready (ds_server_t *self, const char **reason)
{
    ds_fault_values_t faults;
    ds_faults_get (self->faults, &faults);
    if (faults.fail_readiness) {
        *reason = "fail-readiness fault";
        return false;
    }
    if (s_monotonic () < self->ready_at) {
        *reason = "warming up";
        return false;
    }
    *reason = "";
    return true;
}

//  Queue body (malloc'd, taken) with code, count it and log it.
static enum MHD_Result
s_respond (ds_server_t *self, struct MHD_Connection *connection, s_request_t *request,
           const char *method, const char *url, unsigned code, const char *type,
           char *body, size_t size)
{
    if (!body)
        return MHD_NO;  //  out of memory: drop the connection
    struct MHD_Response *response =
        MHD_create_response_from_buffer (size, body, MHD_RESPMEM_MUST_FREE);
    if (!response) {
        free (body);
        return MHD_NO;
    }
    MHD_add_response_header (response, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (code == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header (response, MHD_HTTP_HEADER_ALLOW,
                                 strcmp (url, "/fault") == 0 ? "GET, HEAD, POST" : "GET, HEAD");
    enum MHD_Result queued = MHD_queue_response (connection, code, response);
    MHD_destroy_response (response);
    double seconds = s_monotonic () - request->start;
    ds_route_t route = ds_metrics_route (url);
    ds_metrics_record (self->metrics, route, method, code, seconds);
    if (self->verbose) {
        char shown [128];
        s_json_text (shown, sizeof shown, url);
        fprintf (stderr, "demo-service: %.8s %s %u %.6fs\n", method, shown, code, seconds);
    }
    return queued;
}

static enum MHD_Result
s_respond_json (ds_server_t *self, struct MHD_Connection *connection, s_request_t *request,
                const char *method, const char *url, unsigned code, const char *format, ...)
    __attribute__ ((format (printf, 7, 8)));

static enum MHD_Result
s_respond_json (ds_server_t *self, struct MHD_Connection *connection, s_request_t *request,
                const char *method, const char *url, unsigned code, const char *format, ...)
{
    char *body = NULL;
    va_list args;
    va_start (args, format);
    int length = vasprintf (&body, format, args);
    va_end (args);
    if (length < 0)
        return MHD_NO;
    return s_respond (self, connection, request, method, url, code, S_JSON_TYPE, body, (size_t) length);
}

static char *
s_faults_json (ds_server_t *self)
{
    ds_fault_values_t values;
    ds_faults_get (self->faults, &values);
    char *json = NULL;
    if (asprintf (&json, "{\"error_rate\":%g,\"latency_ms\":%d,\"jitter_ms\":%d,"
                         "\"cpu_burn\":%d,\"fail_readiness\":%s}\n",
                  values.error_rate, values.latency_ms, values.jitter_ms,
                  values.cpu_burn_percent, values.fail_readiness ? "true" : "false") < 0)
        return NULL;
    return json;
}

//  POST /fault arguments are applied all or none: parse into a copy first.
typedef struct {
    ds_fault_values_t values;
    char error [160];
    bool failed;
} s_fault_update_t;

static enum MHD_Result
s_fault_argument (void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void) kind;
    s_fault_update_t *update = (s_fault_update_t *) cls;
    if (ds_faults_parse (&update->values, key, value, update->error, sizeof update->error)) {
        update->failed = true;
        return MHD_NO;
    }
    return MHD_YES;
}

//  A little CPU work: an FNV-1a chain over the iteration counter.
static unsigned long long
s_work (long iterations)
{
    unsigned long long hash = 1469598103934665603ULL;
    for (long i = 0; i < iterations; i++) {
        hash ^= (unsigned long long) i;
        hash *= 1099511628211ULL;
    }
    return hash;
}

static enum MHD_Result
s_dispatch (ds_server_t *self, struct MHD_Connection *connection, s_request_t *request,
            const char *url, const char *method)
{
    ds_route_t route = ds_metrics_route (url);
    bool reading = strcmp (method, MHD_HTTP_METHOD_GET) == 0 || strcmp (method, MHD_HTTP_METHOD_HEAD) == 0;
    bool posting = strcmp (method, MHD_HTTP_METHOD_POST) == 0;
    if (route == DS_ROUTE_OTHER)
        return s_respond_json (self, connection, request, method, url, MHD_HTTP_NOT_FOUND,
                               "{\"error\":\"not found\"}\n");
    if (!reading && !(posting && route == DS_ROUTE_FAULT))
        return s_respond_json (self, connection, request, method, url, MHD_HTTP_METHOD_NOT_ALLOWED,
                               "{\"error\":\"method not allowed\"}\n");

    switch (route) {
        case DS_ROUTE_HEALTHZ:
            return s_respond_json (self, connection, request, method, url, MHD_HTTP_OK,
                                   "{\"status\":\"ok\",\"version\":\"%s\"}\n", self->version);
        case DS_ROUTE_READYZ: {
            const char *reason = NULL;
            if (s_ready (self, &reason))
                return s_respond_json (self, connection, request, method, url, MHD_HTTP_OK,
                                       "{\"status\":\"ready\",\"version\":\"%s\"}\n", self->version);
            return s_respond_json (self, connection, request, method, url, MHD_HTTP_SERVICE_UNAVAILABLE,
                                   "{\"status\":\"not ready\",\"reason\":\"%s\"}\n", reason);
        }
        case DS_ROUTE_METRICS: {
            const char *reason = NULL;
            size_t size = 0;
            char *text = ds_metrics_render (self->metrics, s_ready (self, &reason),
                                            atomic_load (&self->in_flight), &size);
            return s_respond (self, connection, request, method, url, MHD_HTTP_OK,
                              S_METRICS_TYPE, text, size);
        }
        case DS_ROUTE_WORK: {
            long iterations = 100000;
            const char *n = MHD_lookup_connection_value (connection, MHD_GET_ARGUMENT_KIND, "n");
            if (n) {
                char *end = NULL;
                errno = 0;
                iterations = strtol (n, &end, 10);
                if (errno || end == n || *end || iterations < 1 || iterations > 10000000)
                    return s_respond_json (self, connection, request, method, url, MHD_HTTP_BAD_REQUEST,
                                           "{\"error\":\"n: not an integer in 1..10000000\"}\n");
            }
            bool fail = false;
            int delay_ms = 0;
            ds_faults_draw (self->faults, &fail, &delay_ms);
            if (delay_ms > 0)
                s_sleep_ms (self, delay_ms);
            unsigned long long result = s_work (iterations);
            if (fail)
                return s_respond_json (self, connection, request, method, url, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                       "{\"error\":\"injected fault\",\"version\":\"%s\"}\n", self->version);
            return s_respond_json (self, connection, request, method, url, MHD_HTTP_OK,
                                   "{\"result\":\"%016llx\",\"version\":\"%s\"}\n", result, self->version);
        }
        case DS_ROUTE_FAULT: {
            if (posting) {
                s_fault_update_t update = { .failed = false };
                ds_faults_get (self->faults, &update.values);
                MHD_get_connection_values (connection, MHD_GET_ARGUMENT_KIND, s_fault_argument, &update);
                if (update.failed) {
                    char error [200];
                    s_json_text (error, sizeof error, update.error);
                    return s_respond_json (self, connection, request, method, url, MHD_HTTP_BAD_REQUEST,
                                           "{\"error\":\"%s\"}\n", error);
                }
                ds_faults_set (self->faults, &update.values);
            }
            char *json = s_faults_json (self);
            return s_respond (self, connection, request, method, url, MHD_HTTP_OK, S_JSON_TYPE,
                              json, json ? strlen (json) : 0);
        }
        case DS_ROUTE_OTHER:
        case DS_ROUTES:
            break;
    }
    assert (false);
    return MHD_NO;
}

static enum MHD_Result
s_handle (void *cls, struct MHD_Connection *connection, const char *url, const char *method,
          const char *version, const char *upload_data, size_t *upload_data_size, void **req_cls)
{
    (void) version;
    (void) upload_data;
    ds_server_t *self = (ds_server_t *) cls;
    s_request_t *request = (s_request_t *) *req_cls;
    if (!request) {
        //  First call: only the headers are in.
        request = (s_request_t *) calloc (1, sizeof *request);
        if (!request)
            return MHD_NO;
        request->start = s_monotonic ();
        *req_cls = request;
        atomic_fetch_add (&self->in_flight, 1);
        const char *length = MHD_lookup_connection_value (connection, MHD_HEADER_KIND,
                                                          MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (length) {
            char *end = NULL;
            errno = 0;
            unsigned long long announced = strtoull (length, &end, 10);
            if (errno || end == length || *end || announced > S_MAX_BODY)
                return s_respond_json (self, connection, request, method, url,
                                       MHD_HTTP_CONTENT_TOO_LARGE,
                                       "{\"error\":\"request body over %d bytes\"}\n", S_MAX_BODY);
        }
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        //  Bodies are not used; only their size matters.
        request->body_bytes += *upload_data_size;
        *upload_data_size = 0;
        return request->body_bytes > S_MAX_BODY ? MHD_NO : MHD_YES;
    }
    return s_dispatch (self, connection, request, url ? url : "", method ? method : "");
}

static void
s_completed (void *cls, struct MHD_Connection *connection, void **req_cls,
             enum MHD_RequestTerminationCode code)
{
    (void) connection;
    (void) code;
    ds_server_t *self = (ds_server_t *) cls;
    if (*req_cls) {
        free (*req_cls);
        *req_cls = NULL;
        atomic_fetch_sub (&self->in_flight, 1);
    }
}

ds_server_t *
ds_server_new (const ds_options_t *options, ds_faults_t *faults, ds_metrics_t *metrics,
               char *error, size_t error_size)
{
    assert (options && faults && metrics);
    ds_server_t *self = (ds_server_t *) calloc (1, sizeof *self);
    if (!self) {
        snprintf (error, error_size, "demo-service: out of memory");
        return NULL;
    }
    self->faults = faults;
    self->metrics = metrics;
    snprintf (self->version, sizeof self->version, "%s", options->version);
    self->verbose = options->verbose;
    self->shutdown_timeout_ms = options->shutdown_timeout_ms;
    self->ready_at = s_monotonic () + options->ready_delay_ms / 1000.0;
    self->quiesced = MHD_INVALID_SOCKET;
    atomic_init (&self->in_flight, 0);
    atomic_init (&self->stopping, false);

    struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) options->port) };
    address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    self->daemon = MHD_start_daemon (
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_AUTO
        | MHD_USE_ITC | (options->verbose ? MHD_USE_ERROR_LOG : 0),
        (uint16_t) options->port, NULL, NULL, s_handle, self,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &address,
        MHD_OPTION_NOTIFY_COMPLETED, s_completed, self,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int) 256,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) 30,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) (32 * 1024),
        MHD_OPTION_END);
    if (!self->daemon) {
        snprintf (error, error_size, "127.0.0.1:%d: cannot listen (%s)", options->port, strerror (errno));
        free (self);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info (self->daemon, MHD_DAEMON_INFO_BIND_PORT);
    self->port = info ? info->port : (uint16_t) options->port;
    return self;
}

uint16_t
ds_server_port (ds_server_t *self)
{
    assert (self);
    return self->port;
}

int
ds_server_drain (ds_server_t *self)
{
    assert (self);
    if (self->quiesced == MHD_INVALID_SOCKET) {
        self->quiesced = MHD_quiesce_daemon (self->daemon);
        //  Nobody can connect any more, even before MHD_stop_daemon.
        if (self->quiesced != MHD_INVALID_SOCKET)
            shutdown (self->quiesced, SHUT_RDWR);
    }
    double deadline = s_monotonic () + self->shutdown_timeout_ms / 1000.0;
    while (atomic_load (&self->in_flight) > 0 && s_monotonic () < deadline) {
        struct timespec pause = { 0, 5000000 };
        nanosleep (&pause, NULL);
    }
    return atomic_load (&self->in_flight);
}

void
ds_server_destroy (ds_server_t **self_p)
{
    assert (self_p);
    ds_server_t *self = *self_p;
    if (!self)
        return;
    atomic_store (&self->stopping, true);
    MHD_stop_daemon (self->daemon);
    if (self->quiesced != MHD_INVALID_SOCKET)
        close (self->quiesced);
    free (self);
    *self_p = NULL;
}
