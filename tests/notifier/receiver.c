/*  receiver.c: a recording webhook receiver on libmicrohttpd (see receiver.h).

    MHD calls the handler at least twice per request: first with no upload (we attach a
    context), then with each chunk of the body, then once more with none left, when we
    record the request and answer. The listening socket is bound with address reuse so
    that a stop and start keeps the port.
*/
#include "receiver.h"
#include <arpa/inet.h>
#include <assert.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *body;
    size_t size;
} s_upload_t;

struct _receiver_t {
    struct MHD_Daemon *daemon;
    int port;
    pthread_mutex_t lock;
    int status;
    receiver_request_t *requests;
    size_t count;
    size_t capacity;
};

static void
s_copy_header (struct MHD_Connection *connection, const char *name, char *out, size_t out_size)
{
    const char *value = MHD_lookup_connection_value (connection, MHD_HEADER_KIND, name);
    snprintf (out, out_size, "%s", value? value: "");
}

static enum MHD_Result
s_handle (void *cls, struct MHD_Connection *connection, const char *url, const char *method,
          const char *version, const char *upload_data, size_t *upload_data_size, void **context)
{
    (void) version;
    receiver_t *self = (receiver_t *) cls;
    s_upload_t *upload = (s_upload_t *) *context;
    if (!upload) {
        upload = calloc (1, sizeof *upload);
        assert (upload);
        *context = upload;
        return MHD_YES;
    }
    if (*upload_data_size) {
        char *grown = realloc (upload->body, upload->size + *upload_data_size + 1);
        assert (grown);
        memcpy (grown + upload->size, upload_data, *upload_data_size);
        upload->body = grown;
        upload->size += *upload_data_size;
        upload->body [upload->size] = '\0';
        *upload_data_size = 0;
        return MHD_YES;
    }
    receiver_request_t request;
    memset (&request, 0, sizeof request);
    snprintf (request.path, sizeof request.path, "%s", url);
    s_copy_header (connection, "Content-Type", request.content_type, sizeof request.content_type);
    s_copy_header (connection, "X-Airlock-Delivery", request.delivery, sizeof request.delivery);
    s_copy_header (connection, "X-Airlock-Event", request.event, sizeof request.event);
    s_copy_header (connection, "X-Airlock-Timestamp", request.timestamp, sizeof request.timestamp);
    s_copy_header (connection, "X-Airlock-Signature-256", request.signature, sizeof request.signature);
    request.body = upload->body? upload->body: strdup ("");
    assert (request.body);
    request.body_size = upload->size;
    upload->body = NULL;
    pthread_mutex_lock (&self->lock);
    request.status = strcmp (method, "POST") == 0? self->status: 405;
    if (self->count == self->capacity) {
        self->capacity = self->capacity? self->capacity * 2: 64;
        self->requests = realloc (self->requests, self->capacity * sizeof *self->requests);
        assert (self->requests);
    }
    self->requests [self->count++] = request;
    int status = request.status;
    pthread_mutex_unlock (&self->lock);
    static const char answer [] = "recorded\n";
    struct MHD_Response *response = MHD_create_response_from_buffer (sizeof answer - 1, (void *) answer,
                                                                      MHD_RESPMEM_PERSISTENT);
    enum MHD_Result queued = MHD_queue_response (connection, (unsigned int) status, response);
    MHD_destroy_response (response);
    return queued;
}

static void
s_completed (void *cls, struct MHD_Connection *connection, void **context, enum MHD_RequestTerminationCode code)
{
    (void) cls;
    (void) connection;
    (void) code;
    s_upload_t *upload = (s_upload_t *) *context;
    if (upload) {
        free (upload->body);
        free (upload);
    }
    *context = NULL;
}

int
receiver_start (receiver_t *self)
{
    assert (!self->daemon);
    struct sockaddr_in address;
    memset (&address, 0, sizeof address);
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    address.sin_port = htons ((uint16_t) self->port);
    self->daemon = MHD_start_daemon (MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO, (uint16_t) self->port, NULL, NULL,
                                     s_handle, self, MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &address,
                                     MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned int) 1,
                                     MHD_OPTION_NOTIFY_COMPLETED, s_completed, self,
                                     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) 10, MHD_OPTION_END);
    if (!self->daemon)
        return -1;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info (self->daemon, MHD_DAEMON_INFO_BIND_PORT);
    if (info && info->port)
        self->port = info->port;
    return 0;
}

int
receiver_stop (receiver_t *self)
{
    if (!self->daemon)
        return -1;
    MHD_stop_daemon (self->daemon);
    self->daemon = NULL;
    return 0;
}

receiver_t *
receiver_new (int port)
{
    receiver_t *self = calloc (1, sizeof *self);
    assert (self);
    pthread_mutex_init (&self->lock, NULL);
    self->status = 200;
    self->port = port;
    if (receiver_start (self) != 0) {
        receiver_destroy (&self);
        return NULL;
    }
    return self;
}

void
receiver_destroy (receiver_t **self_p)
{
    receiver_t *self = *self_p;
    if (!self)
        return;
    if (self->daemon)
        MHD_stop_daemon (self->daemon);
    for (size_t i = 0; i < self->count; i++)
        free (self->requests [i].body);
    free (self->requests);
    pthread_mutex_destroy (&self->lock);
    free (self);
    *self_p = NULL;
}

int
receiver_port (receiver_t *self)
{
    return self->port;
}

void
receiver_url (receiver_t *self, const char *path, char *url, size_t url_size)
{
    snprintf (url, url_size, "http://127.0.0.1:%d%s", self->port, path);
}

void
receiver_set_status (receiver_t *self, int status)
{
    pthread_mutex_lock (&self->lock);
    self->status = status;
    pthread_mutex_unlock (&self->lock);
}

size_t
receiver_count (receiver_t *self)
{
    pthread_mutex_lock (&self->lock);
    size_t count = self->count;
    pthread_mutex_unlock (&self->lock);
    return count;
}

void
receiver_get (receiver_t *self, size_t index, receiver_request_t *request)
{
    pthread_mutex_lock (&self->lock);
    assert (index < self->count);
    *request = self->requests [index];
    request->body = malloc (request->body_size + 1);
    assert (request->body);
    memcpy (request->body, self->requests [index].body, request->body_size + 1);
    pthread_mutex_unlock (&self->lock);
}

void
receiver_request_clear (receiver_request_t *request)
{
    free (request->body);
    memset (request, 0, sizeof *request);
}

static size_t
s_count (receiver_t *self, const char *path, bool accepted_only)
{
    pthread_mutex_lock (&self->lock);
    size_t count = 0;
    for (size_t i = 0; i < self->count; i++)
        if (strcmp (self->requests [i].path, path) == 0
        &&  (!accepted_only || (self->requests [i].status >= 200 && self->requests [i].status < 300)))
            count++;
    pthread_mutex_unlock (&self->lock);
    return count;
}

size_t
receiver_accepted (receiver_t *self, const char *path)
{
    return s_count (self, path, true);
}

size_t
receiver_requests (receiver_t *self, const char *path)
{
    return s_count (self, path, false);
}
