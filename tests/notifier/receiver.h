/*  receiver.h: the notifier tests' webhook receiver: libmicrohttpd on 127.0.0.1.

    It records every POST it gets (path, the X-Airlock-* headers, Content-Type, body, the
    status it answered) and answers every request with the status set by the test (200
    unless told otherwise). It can stop listening (connections are then refused) and
    listen again on the same port. Test-only code; thread-safe (MHD answers on its own
    thread, the test reads under the same mutex).
*/
#ifndef RECEIVER_H_INCLUDED
#define RECEIVER_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

typedef struct _receiver_t receiver_t;

typedef struct {
    char path [64];
    char content_type [128];
    char delivery [80];         // X-Airlock-Delivery
    char event [80];            // X-Airlock-Event
    char timestamp [32];        // X-Airlock-Timestamp
    char signature [100];       // X-Airlock-Signature-256
    char *body;                 // NUL-terminated copy
    size_t body_size;
    int status;                 // what was answered
} receiver_request_t;

//  Listen on 127.0.0.1:port (0: any free port). NULL if it cannot.
receiver_t *receiver_new (int port);
void receiver_destroy (receiver_t **self_p);
int receiver_port (receiver_t *self);
//  The URL of path on this receiver ("http://127.0.0.1:PORT/path").
void receiver_url (receiver_t *self, const char *path, char *url, size_t url_size);

//  Answer every request from now on with status.
void receiver_set_status (receiver_t *self, int status);
//  Stop listening / listen again on the same port. 0 or -1.
int receiver_stop (receiver_t *self);
int receiver_start (receiver_t *self);

//  Requests recorded so far, and a copy of the index-th (receiver_request_clear frees it).
size_t receiver_count (receiver_t *self);
void receiver_get (receiver_t *self, size_t index, receiver_request_t *request);
void receiver_request_clear (receiver_request_t *request);
//  Requests on path answered with a 2xx.
size_t receiver_accepted (receiver_t *self, const char *path);
//  Requests on path (any answer).
size_t receiver_requests (receiver_t *self, const char *path);

#endif
