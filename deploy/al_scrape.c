/*  al_scrape.c: concurrent scrapes with one libcurl multi handle.

    The scraper owns one slot per result index it has ever been asked for. A slot holds
    an easy handle, configured once, and a body buffer; round after round the same slot
    serves the same index, so its options, its buffer and (through the multi handle's
    connection cache) its kept-alive connection are reused. Slots are allocated one by
    one and never move: libcurl holds pointers to their buffers.

    Invariants: between rounds no easy handle is attached to the multi handle; a slot's
    body buffer is never NULL and always NUL-terminated at size; size <= max_body.

    Not thread-safe: one owner per scraper.
*/
#include "deploy/al_scrape.h"
#include "deploy/al_http_int.h"
#include "base/al_clock.h"
#include "base/al_error.h"
#include <assert.h>
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

//  What Prometheus itself asks for: the text format, anything else as a fallback.
#define S_ACCEPT "Accept: text/plain;version=0.0.4;q=1,*/*;q=0.1"
#define S_USER_AGENT "airlock-monitor"

typedef struct {
    al_http_transfer_t http;        // easy handle and capped body (al_http_int.h)
    bool attached;                  // added to the multi handle in this round
    bool finished;                  // its result is filled in this round
    size_t index;                   // of the result it serves
} s_slot_t;

struct _al_scraper_t {
    CURLM *multi;
    size_t max_body;
    struct curl_slist *headers;
    s_slot_t **slots;
    size_t slot_count;
};

static void
s_slot_destroy (s_slot_t **slot_p)
{
    assert (slot_p);
    s_slot_t *slot = *slot_p;
    if (!slot)
        return;
    al_http_transfer_clear (&slot->http);
    free (slot);
    *slot_p = NULL;
}

//  A slot with its easy handle configured for scraping; NULL if out of memory.
static s_slot_t *
s_slot_new (al_scraper_t *self)
{
    s_slot_t *slot = calloc (1, sizeof (s_slot_t));
    if (!slot)
        return NULL;
    if (al_http_transfer_init (&slot->http, self->max_body, S_USER_AGENT, self->headers, slot) != 0)
        goto cleanup;
    return slot;

cleanup:
    s_slot_destroy (&slot);
    return NULL;
}

al_scraper_t *
al_scraper_new (size_t max_body_bytes, char *error, size_t error_size)
{
    CURLcode init_code = al_http_global_init ();
    if (init_code != CURLE_OK) {
        al_error_set (error, error_size, "libcurl: %s", curl_easy_strerror (init_code));
        return NULL;
    }
    al_scraper_t *self = calloc (1, sizeof (al_scraper_t));
    if (!self) {
        al_error_set (error, error_size, "out of memory");
        return NULL;
    }
    self->max_body = max_body_bytes? max_body_bytes: AL_SCRAPE_DEFAULT_MAX_BODY;
    //  The body buffer holds max_body + 1 bytes (NUL): keep that sum representable.
    if (self->max_body >= SIZE_MAX / 2)
        self->max_body = SIZE_MAX / 2;
    self->multi = curl_multi_init ();
    self->headers = curl_slist_append (NULL, S_ACCEPT);
    if (!self->multi || !self->headers) {
        al_error_set (error, error_size, "libcurl: cannot create the multi handle");
        al_scraper_destroy (&self);
    }
    return self;
}

void
al_scraper_destroy (al_scraper_t **self_p)
{
    assert (self_p);
    al_scraper_t *self = *self_p;
    if (!self)
        return;
    //  Easy handles leave the multi handle before either is cleaned up (libcurl's rule).
    for (size_t i = 0; i < self->slot_count; i++) {
        if (self->slots [i]->attached)
            curl_multi_remove_handle (self->multi, self->slots [i]->http.easy);
        s_slot_destroy (&self->slots [i]);
    }
    free (self->slots);
    if (self->multi)
        curl_multi_cleanup (self->multi);
    curl_slist_free_all (self->headers);
    free (self);
    *self_p = NULL;
}

//  Make sure slots [0 .. count - 1] exist. Returns 0, or -1 if out of memory.
static int
s_ensure_slots (al_scraper_t *self, size_t count)
{
    if (count <= self->slot_count)
        return 0;
    s_slot_t **slots = realloc (self->slots, count * sizeof (s_slot_t *));
    if (!slots)
        return -1;
    self->slots = slots;
    while (self->slot_count < count) {
        s_slot_t *slot = s_slot_new (self);
        if (!slot)
            return -1;
        slot->index = self->slot_count;
        self->slots [self->slot_count++] = slot;
    }
    return 0;
}

//  Turn a finished transfer into its result.
static void
s_finish (s_slot_t *slot, CURLcode code, int timeout_ms, al_scrape_result_t *result)
{
    long status = 0;
    curl_easy_getinfo (slot->http.easy, CURLINFO_RESPONSE_CODE, &status);
    curl_off_t total_us = 0;
    if (curl_easy_getinfo (slot->http.easy, CURLINFO_TOTAL_TIME_T, &total_us) == CURLE_OK)
        result->duration_ms = (double) total_us / 1e3;
    result->status = status;
    bool success_status = status >= 200 && status < 300;
    if (code == CURLE_OK && success_status) {
        result->ok = true;
        result->body = slot->http.body;
        result->body_size = slot->http.size;
        result->error [0] = 0;
    }
    else
    if (code == CURLE_OK || (status > 0 && !success_status && !slot->http.no_memory))
        //  An answer that is no success is reported as such, even when its error
        //  page was also too long or cut short.
        snprintf (result->error, sizeof result->error, "HTTP %ld", status);
    else
    if (slot->http.too_big || code == CURLE_FILESIZE_EXCEEDED)
        snprintf (result->error, sizeof result->error, "body above %zu bytes", slot->http.max_body);
    else
    if (slot->http.no_memory)
        snprintf (result->error, sizeof result->error, "out of memory receiving the body");
    else
    if (code == CURLE_OPERATION_TIMEDOUT) {
        result->timed_out = true;
        snprintf (result->error, sizeof result->error, "timeout after %d ms", timeout_ms);
    }
    else {
        long os_errno = 0;
        curl_easy_getinfo (slot->http.easy, CURLINFO_OS_ERRNO, &os_errno);
        if (code == CURLE_COULDNT_CONNECT && os_errno == ECONNREFUSED)
            snprintf (result->error, sizeof result->error, "connection refused");
        else
            snprintf (result->error, sizeof result->error, "%.60s: %.180s", curl_easy_strerror (code),
                      slot->http.curl_error [0]? slot->http.curl_error: "no detail");
    }
}

//  What the scrape round's s_done needs.
typedef struct {
    al_scraper_t *self;
    size_t count;
    int timeout_ms;
    al_scrape_result_t *results;
    bool out_of_memory;             // a body could not grow
} s_round_t;

//  A scrape ended (an al_http_done_fn): its result is filled.
static void
s_done (void *private_data, CURL *easy, CURLcode code, void *arg)
{
    s_round_t *round = arg;
    s_slot_t *slot = private_data;
    assert (slot && slot->http.easy == easy && slot->attached);
    assert (slot->index < round->count && round->self->slots [slot->index] == slot);
    s_finish (slot, code, round->timeout_ms, &round->results [slot->index]);
    slot->attached = false;
    slot->finished = true;
    if (slot->http.no_memory)
        round->out_of_memory = true;
}

int
al_scraper_run (al_scraper_t *self, const al_scrape_target_t *targets, size_t count,
                int timeout_ms, al_scrape_result_t *results)
{
    assert (self);
    assert (timeout_ms > 0);
    assert (count == 0 || (targets && results));
    int rc = -1;
    const char *failure = "out of memory";
    size_t pending = 0;
    bool out_of_memory = false;
    bool deadline_reached = false;
    double started = al_clock_mono_ms ();
    for (size_t i = 0; i < count; i++) {
        assert (targets [i].url);
        al_scrape_result_t *result = &results [i];
        memset (result, 0, sizeof (*result));
        result->url = targets [i].url;
        result->user = targets [i].user;
    }
    if (count == 0)
        return 0;
    for (size_t i = 0; i < self->slot_count; i++)
        self->slots [i]->finished = false;
    if (s_ensure_slots (self, count))
        goto cleanup;

    //  Start every transfer; each slot serves the result of the same index.
    for (size_t i = 0; i < count; i++) {
        s_slot_t *slot = self->slots [i];
        al_http_transfer_reset (&slot->http);
        CURLcode code = curl_easy_setopt (slot->http.easy, CURLOPT_URL, targets [i].url);
        if (!code) code = curl_easy_setopt (slot->http.easy, CURLOPT_TIMEOUT_MS, (long) timeout_ms);
        if (!code) code = curl_easy_setopt (slot->http.easy, CURLOPT_CONNECTTIMEOUT_MS, (long) timeout_ms);
        if (code) {
            failure = curl_easy_strerror (code);
            goto cleanup;
        }
        CURLMcode multi_code = curl_multi_add_handle (self->multi, slot->http.easy);
        if (multi_code) {
            failure = curl_multi_strerror (multi_code);
            goto cleanup;
        }
        slot->attached = true;
        pending++;
    }

    //  Drive them until all have ended or the round's deadline has passed.
    s_round_t round = { .self = self, .count = count, .timeout_ms = timeout_ms, .results = results };
    const char *drive_failure = al_http_multi_drive (self->multi, &pending, started + timeout_ms,
                                                     s_done, &round);
    out_of_memory = round.out_of_memory;
    if (drive_failure) {
        failure = drive_failure;
        goto cleanup;
    }
    deadline_reached = pending > 0;
    //  A body that could not grow is a system error, though the others finished.
    rc = out_of_memory? -1: 0;

cleanup:
    //  A transfer not finished has overstayed the deadline (the loop ended normally)
    //  or was never started or cut short by a system error; it leaves the multi handle.
    for (size_t i = 0; i < count; i++) {
        s_slot_t *slot = i < self->slot_count? self->slots [i]: NULL;
        al_scrape_result_t *result = &results [i];
        if (slot && slot->finished)
            continue;
        if (slot && slot->attached) {
            curl_multi_remove_handle (self->multi, slot->http.easy);
            slot->attached = false;
            result->duration_ms = al_clock_mono_ms () - started;
            if (deadline_reached) {
                result->timed_out = true;
                snprintf (result->error, sizeof result->error, "timeout after %d ms", timeout_ms);
                continue;
            }
        }
        snprintf (result->error, sizeof result->error, "scraper: %.200s", failure);
    }
    return rc;
}
