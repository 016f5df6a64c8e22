/*  al_http_int.h: one libcurl transfer into a capped body buffer, shared by the
    Prometheus query client (al_promql.c) and the scraper (al_scrape.c).

    A transfer is an easy handle configured once with the limits both need (no signals,
    no redirects, http and https only, a body cap enforced both by libcurl and by the
    write callback) and a body buffer that is never NULL and always NUL-terminated at
    size, with size <= max_body. The owner attaches the easy handle to its multi handle,
    sets the URL and its timeouts, and reads the outcome flags after the transfer.

    Not installed; only deploy/ includes it. Not thread-safe: one owner per transfer.
*/
#ifndef AL_HTTP_INT_H_INCLUDED
#define AL_HTTP_INT_H_INCLUDED

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct {
    CURL *easy;
    char *body;
    size_t size;
    size_t alloc;
    size_t max_body;
    bool too_big;                   // the body grew past max_body: transfer aborted
    bool no_memory;                 // the body could not grow: transfer aborted
    char curl_error [CURL_ERROR_SIZE];
} al_http_transfer_t;

//  curl_global_init, once per process; its result (CURLE_OK when usable).
CURLcode al_http_global_init (void);

//  Allocate the body and configure a new easy handle (CURLOPT_PRIVATE is private_data,
//  headers stay the caller's and must outlive the transfer). 0, or -1 when out of
//  memory or libcurl refuses an option (a transfer with weaker limits must not run);
//  the caller then calls al_http_transfer_clear.
int al_http_transfer_init (al_http_transfer_t *self, size_t max_body, const char *user_agent,
                           struct curl_slist *headers, void *private_data);

//  Empty the body and the outcome flags before the next transfer.
void al_http_transfer_reset (al_http_transfer_t *self);

//  Free the easy handle and the body (NULL-safe members; the handle must already be
//  detached from any multi handle).
void al_http_transfer_clear (al_http_transfer_t *self);

//  A transfer that multi reports done: the owner records its outcome (code is libcurl's
//  result; easy is still attached, so curl_easy_getinfo works). private_data is its
//  CURLOPT_PRIVATE.
typedef void (al_http_done_fn) (void *private_data, CURL *easy, CURLcode code, void *arg);

//  Drive the transfers attached to multi until *pending is 0, the monotonic deadline
//  (al_clock_mono_ms) has passed, or libcurl fails. Each transfer done: done() is
//  called, then it is removed from multi and *pending decremented. NULL, or libcurl's
//  text for its failure (the transfers still attached are the caller's to remove).
const char *al_http_multi_drive (CURLM *multi, size_t *pending, double deadline,
                                 al_http_done_fn *done, void *arg);

#endif
