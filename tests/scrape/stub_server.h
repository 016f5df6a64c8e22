/*  stub_server.h: a scripted HTTP/1.1 server on 127.0.0.1 for the scrape tests.

    One thread per server, one connection at a time, keep-alive: it reads a request
    (up to the blank line), waits delay_ms, then answers with the configured status and
    a body of body_size bytes ('m' repeated), announced by Content-Length or, without
    it, delimited by closing the connection. It counts connections and requests, so a
    test can prove that a transfer never reached it or that a connection was reused.
    Every wait polls the stop flag: stub_server_stop returns within ~50 ms.
*/
#ifndef STUB_SERVER_H_INCLUDED
#define STUB_SERVER_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    int status;                     // e.g. 200
    int delay_ms;                   // before answering each request
    size_t body_size;
    bool content_length;            // false: no Content-Length, close after the body
    const char *extra_header;       // one "Name: value" line without CRLF, or NULL
} stub_config_t;

typedef struct _stub_server_t stub_server_t;

//  Start a server on a free loopback port; NULL if the socket or thread fails.
stub_server_t *stub_server_start (const stub_config_t *config);
//  Stop it, join its thread, free it; NULL-safe; sets *self_p to NULL.
void stub_server_stop (stub_server_t **self_p);
int stub_server_port (const stub_server_t *self);
int stub_server_connections (const stub_server_t *self);
int stub_server_requests (const stub_server_t *self);

//  A socket that listens on a free port but never accepts: connections complete in the
//  kernel's backlog and requests are never answered. Returns the fd (close it), sets *port.
int stub_silent_listener (int *port);
//  A loopback port nobody listens on (bound, read, closed).
int stub_closed_port (void);

#endif
