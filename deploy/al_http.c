/*  al_http.c: one libcurl transfer into a capped body buffer (see al_http_int.h), the
    setup that the Prometheus query client and the scraper share.

    Invariants: body is never NULL after a successful init and always NUL-terminated at
    size; size <= max_body. Not thread-safe: one owner per transfer.
*/
#include "deploy/al_http_int.h"
#include "base/al_clock.h"
#include <assert.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

//  First allocation of a body buffer; it doubles up to max_body + 1.
#define S_INITIAL_BODY 4096

static pthread_once_t s_curl_once = PTHREAD_ONCE_INIT;
static CURLcode s_curl_init_code = CURLE_OK;

static void
s_curl_init (void)
{
    s_curl_init_code = curl_global_init (CURL_GLOBAL_DEFAULT);
}

CURLcode
al_http_global_init (void)
{
    pthread_once (&s_curl_once, s_curl_init);
    return s_curl_init_code;
}

//  libcurl's write callback: append to the buffer, or abort the transfer (by returning
//  less than given) when the cap would be passed or memory is short.
static size_t
s_write (char *data, size_t size, size_t count, void *arg)
{
    al_http_transfer_t *self = arg;
    size_t length = size * count;
    if (length > self->max_body - self->size) {
        self->too_big = true;
        return 0;
    }
    size_t needed = self->size + length + 1;
    if (needed > self->alloc) {
        size_t alloc = self->alloc;
        while (alloc < needed)
            alloc = alloc > SIZE_MAX / 2 ? SIZE_MAX : alloc * 2;
        if (alloc > self->max_body + 1)
            alloc = self->max_body + 1;
        char *grown = realloc (self->body, alloc);
        if (!grown) {
            self->no_memory = true;
            return 0;
        }
        self->body = grown;
        self->alloc = alloc;
    }
    memcpy (self->body + self->size, data, length);
    self->size += length;
    self->body [self->size] = 0;
    return length;
}

int
al_http_transfer_init (al_http_transfer_t *self, size_t max_body, const char *user_agent,
                       struct curl_slist *headers, void *private_data)
{
    assert (self);
    assert (max_body > 0 && max_body < SIZE_MAX);
    memset (self, 0, sizeof (*self));
    self->max_body = max_body;
    self->alloc = S_INITIAL_BODY < max_body + 1 ? S_INITIAL_BODY : max_body + 1;
    self->body = calloc (1, self->alloc);
    self->easy = curl_easy_init ();
    if (!self->body || !self->easy)
        return -1;
    CURL *easy = self->easy;
    CURLcode code = CURLE_OK;
    //  Each option is checked: a libcurl that refuses one of them (e.g. the protocol
    //  restriction) must not silently fetch with weaker limits.
    if (!code) code = curl_easy_setopt (easy, CURLOPT_NOSIGNAL, 1L);
    if (!code) code = curl_easy_setopt (easy, CURLOPT_FOLLOWLOCATION, 0L);
    if (!code) code = curl_easy_setopt (easy, CURLOPT_PROTOCOLS_STR, "http,https");
    if (!code) code = curl_easy_setopt (easy, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) max_body);
    if (!code) code = curl_easy_setopt (easy, CURLOPT_WRITEFUNCTION, s_write);
    if (!code) code = curl_easy_setopt (easy, CURLOPT_WRITEDATA, self);
    if (!code) code = curl_easy_setopt (easy, CURLOPT_ERRORBUFFER, self->curl_error);
    if (!code) code = curl_easy_setopt (easy, CURLOPT_PRIVATE, private_data);
    if (!code) code = curl_easy_setopt (easy, CURLOPT_USERAGENT, user_agent);
    if (!code) code = curl_easy_setopt (easy, CURLOPT_HTTPHEADER, headers);
    return code ? -1 : 0;
}

void
al_http_transfer_reset (al_http_transfer_t *self)
{
    assert (self && self->body);
    self->size = 0;
    self->body [0] = 0;
    self->too_big = false;
    self->no_memory = false;
    self->curl_error [0] = 0;
}

void
al_http_transfer_clear (al_http_transfer_t *self)
{
    assert (self);
    if (self->easy)
        curl_easy_cleanup (self->easy);
    free (self->body);
    self->easy = NULL;
    self->body = NULL;
}

const char *
al_http_multi_drive (CURLM *multi, size_t *pending, double deadline, al_http_done_fn *done, void *arg)
{
    assert (multi && pending && done);
    //  libcurl ends each transfer at its own timeout; this deadline only keeps the
    //  bound if a transfer overstays (e.g. in a resolver libcurl cannot interrupt).
    while (*pending > 0) {
        int running = 0;
        CURLMcode multi_code = curl_multi_perform (multi, &running);
        if (multi_code)
            return curl_multi_strerror (multi_code);
        CURLMsg *message;
        int queued = 0;
        while ((message = curl_multi_info_read (multi, &queued))) {
            if (message->msg != CURLMSG_DONE)
                continue;
            CURL *easy = message->easy_handle;
            CURLcode code = message->data.result;
            char *private_data = NULL;
            curl_easy_getinfo (easy, CURLINFO_PRIVATE, &private_data);
            done (private_data, easy, code, arg);
            curl_multi_remove_handle (multi, easy);
            assert (*pending > 0);
            (*pending)--;
        }
        if (*pending == 0)
            break;
        double remaining = deadline - al_clock_mono_ms ();
        if (remaining <= 0)
            break;
        multi_code = curl_multi_poll (multi, NULL, 0, (int) remaining + 1, NULL);
        if (multi_code)
            return curl_multi_strerror (multi_code);
    }
    return NULL;
}
