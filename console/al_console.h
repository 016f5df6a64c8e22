/*  al_console.h: the web console's HTTP server (libmicrohttpd): pages, JSON API, SSE.

    Serves the pages embedded in the binary (console/web/, turned into C at build time:
    no CDN, no run-time build step, no third-party asset), answers GET /api/NAME with the
    JSON document the caller's api function returns, and streams events the caller
    publishes (the soak signals) to every browser on GET /api/stream as server-sent
    events. The server knows nothing of airlock's data: what each API name means is the
    caller's (cli/cmd_console.c); this file owns HTTP, access and the headers.

    Access: a loopback address by default. Any other address needs a token file
    (refused otherwise: al_console_new fails). With a token, every request must carry it:
    "Authorization: Bearer TOKEN", or the cookie that GET /login?token=TOKEN sets
    (HttpOnly, SameSite=Strict); compared in constant time. Without a token the Host
    header must name a loopback host (a web page elsewhere cannot reach the console
    through DNS rebinding). Only GET and HEAD exist: the console changes nothing.

    Every response carries the security headers: a Content-Security-Policy without
    'unsafe-inline' (default-src 'none', scripts, styles and fetches from 'self' only,
    frame-ancestors 'none'), X-Content-Type-Options: nosniff, Referrer-Policy:
    no-referrer, X-Frame-Options: DENY, Cache-Control: no-store.

    Threading: one thread per connection (MHD); the api function is called from those
    threads, concurrently: it must be thread-safe. al_console_publish may be called from
    any thread.
*/
#ifndef AL_CONSOLE_H_INCLUDED
#define AL_CONSOLE_H_INCLUDED

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _al_console_t al_console_t;
typedef struct _al_console_request_t al_console_request_t;

//  The JSON answer to GET /api/NAME (NAME: [a-z0-9_-]+), or NULL with *status set (404
//  for an unknown name, 400 with "what is wrong" in error, 503 when a source does not
//  answer). The returned document is the caller's, the server decrefs it.
typedef json_t *(al_console_api_fn) (void *arg, const char *name, const al_console_request_t *request,
                                     int *status, char *error, size_t error_size);

typedef struct {
    const char *listen;         // "HOST:PORT" (IPv4 or [IPv6]); PORT 0 lets the kernel choose
    const char *token_file;     // NULL: no token (loopback only)
    al_console_api_fn *api;     // required
    void *api_arg;
    size_t history;             // published events kept for new streams (default 2000)
} al_console_options_t;

//  Start the server. NULL with "what is wrong" in error: a bad listen address, a
//  non-loopback address without a token file, an unreadable or empty token file, a
//  port in use.
al_console_t *al_console_new (const al_console_options_t *options, char *error, size_t error_size);

//  Whether al_console_new would accept LISTEN with (or without) a token file, without
//  listening: 0, or -1 with the reason in error (a bad address, or a non-loopback address
//  without a token). What `airlock up` checks before it supervises a console.
int al_console_listen_check (const char *listen, bool has_token_file, char *error, size_t error_size);

//  Stop the server (ends the streams, waits for the connection threads). NULL-safe.
void al_console_destroy (al_console_t **self_p);

//  The port the server listens on (the kernel's choice for port 0).
uint16_t al_console_port (al_console_t *self);

//  Send EVENT (an SSE event name, [a-z_]+) with DATA (serialised compactly; borrowed)
//  to every open stream, and keep it for streams opened later (the last `history`).
void al_console_publish (al_console_t *self, const char *event, const json_t *data);

//  A query argument of the request (?key=value, URL-decoded), or NULL.
const char *al_console_request_arg (const al_console_request_t *request, const char *key);

//  True when HOST ("127.0.0.1", "::1", "localhost", "127.x.y.z") is a loopback host.
bool al_console_host_is_loopback (const char *host);

//  One embedded page or asset, by its path ("/index.html"); NULL if none.
typedef struct {
    const char *path;
    const char *content_type;
    const unsigned char *data;
    size_t size;
} al_console_asset_t;

const al_console_asset_t *al_console_asset_find (const char *path);
size_t al_console_asset_count (void);
const al_console_asset_t *al_console_asset_at (size_t index);

#endif
