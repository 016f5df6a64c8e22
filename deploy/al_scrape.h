/*  al_scrape.h: concurrent HTTP GETs of many /metrics endpoints, with libcurl's multi
    interface.

    The monitor scrapes every instance of every service it watches once per interval.
    al_scraper_run starts one GET per target at once and returns when all have ended,
    each bounded by the same timeout, so a round takes about as long as its slowest
    target (never much more than the timeout), not the sum of them.

    A scrape is ok only for a 2xx answer whose whole body arrived within the size cap
    and the timeout. Everything else fails it and says why in error: "timeout after
    200 ms", "connection refused", "body above 4194304 bytes", "HTTP 503", or libcurl's
    own words for anything else (DNS, reset, TLS, an unsupported scheme). A failed
    scrape has no body: a 5xx page or a truncated exposition is never parsed.

    Limits and choices:
    - Only http:// and https:// URLs; other schemes fail without any I/O.
    - Redirects are not followed: a 3xx is a failed scrape ("HTTP 302"). A metrics
      endpoint that moves is a configuration error to fix, not to chase.
    - The size cap is enforced while receiving: a Content-Length above it is refused
      before the body is read, and a body without one is aborted the moment it grows
      past the cap. The cap counts body bytes as delivered; no compression is asked for,
      so the cap also bounds what the parser sees.
    - Easy handles are kept per result slot and reused from round to round, and the
      multi handle keeps their connections alive: a steady monitor holds one open
      connection per instance instead of a TCP handshake per scrape.
    - No signals (CURLOPT_NOSIGNAL); the hard deadline of a round is enforced by the
      round's own poll loop as well as by libcurl's per-transfer timeout.

    Threading: one owner calls al_scraper_run; different scrapers may run in different
    threads at once. libcurl's global init runs once per process (pthread_once).
*/
#ifndef AL_SCRAPE_H_INCLUDED
#define AL_SCRAPE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

//  The body cap when al_scraper_new gets 0.
#define AL_SCRAPE_DEFAULT_MAX_BODY (4u * 1024 * 1024)

typedef struct {
    const char *url;                // http:// or https://
    void *user;                     // the caller's, copied into the result
} al_scrape_target_t;

typedef struct {
    const char *url;                // borrowed from the target
    void *user;                     // the target's
    bool ok;                        // a 2xx with a body within limits and time
    long status;                    // HTTP status, 0 when none arrived
    bool timed_out;                 // the round's timeout ended this transfer
    double duration_ms;             // how long the transfer took (libcurl's total time)
    char *body;                     // NUL-terminated, NULL when !ok; owned by the
    size_t body_size;               // scraper until its next run or destroy
    char error [256];               // "" when ok, otherwise why not
} al_scrape_result_t;

typedef struct _al_scraper_t al_scraper_t;

//  New scraper whose bodies may hold up to max_body_bytes (0: AL_SCRAPE_DEFAULT_MAX_BODY).
//  NULL with the reason in error if libcurl cannot be initialised or memory is short.
al_scraper_t *al_scraper_new (size_t max_body_bytes, char *error, size_t error_size);
//  NULL-safe; sets *self_p to NULL. Closes the kept-alive connections.
void al_scraper_destroy (al_scraper_t **self_p);

//  Scrape every target at once, each bounded by timeout_ms (> 0), and fill results
//  [0 .. count - 1] in target order. Returns when every transfer has ended, never much
//  later than timeout_ms after the call. Bodies of the previous round are released.
//  Returns 0, or -1 on a system error (out of memory, libcurl's multi interface
//  failing): then every result not yet finished is a failed scrape with the reason.
int al_scraper_run (al_scraper_t *self, const al_scrape_target_t *targets, size_t count,
                    int timeout_ms, al_scrape_result_t *results);

#ifdef __cplusplus
}
#endif

#endif
