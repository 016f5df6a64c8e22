/*  al_probe.c: HTTP probes with libcurl's easy interface.

    One easy handle per probe: probes are rare (a few per instance per second at most)
    and a fresh handle cannot carry state, such as a kept-alive connection to an
    instance that has since been replaced, from one probe to the next. CURLOPT_NOSIGNAL
    keeps libcurl away from SIGALRM so probes are safe in threaded callers.
*/
#include "deploy/al_probe.h"
#include "base/al_clock.h"
#include <assert.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

//  Bodies beyond this are not read: a probe only needs the status.
#define S_MAX_BODY (64 * 1024)

static pthread_once_t s_curl_once = PTHREAD_ONCE_INIT;
static CURLcode s_curl_init_code = CURLE_OK;

static void
s_curl_init (void)
{
    s_curl_init_code = curl_global_init (CURL_GLOBAL_DEFAULT);
}

//  What the write callback keeps: the size seen, and (when buffer is set) the first
//  S_MAX_BODY bytes.
typedef struct {
    size_t total;
    char *buffer;
} s_body_t;

static size_t
s_discard (char *data, size_t size, size_t count, void *arg)
{
    s_body_t *body = arg;
    size_t bytes = size * count;
    if (body->buffer && body->total < S_MAX_BODY) {
        size_t room = S_MAX_BODY - body->total;
        memcpy (body->buffer + body->total, data, bytes < room ? bytes : room);
    }
    body->total += bytes;
    //  Returning less than given aborts the transfer; the status is already known.
    return body->total > S_MAX_BODY ? 0 : bytes;
}

static bool
s_get (const char *url, int timeout_ms, al_probe_result_t *result, s_body_t *body)
{
    assert (url);
    assert (result);
    memset (result, 0, sizeof (*result));
    if (timeout_ms <= 0)
        timeout_ms = AL_PROBE_DEFAULT_TIMEOUT_MS;
    pthread_once (&s_curl_once, s_curl_init);
    if (s_curl_init_code != CURLE_OK) {
        snprintf (result->detail, sizeof (result->detail), "libcurl: %s",
                  curl_easy_strerror (s_curl_init_code));
        return false;
    }
    CURL *curl = curl_easy_init ();
    if (!curl) {
        snprintf (result->detail, sizeof (result->detail), "libcurl: cannot create a handle");
        return false;
    }
    char curl_error [CURL_ERROR_SIZE] = "";
    curl_easy_setopt (curl, CURLOPT_URL, url);
    curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (curl, CURLOPT_TIMEOUT_MS, (long) timeout_ms);
    curl_easy_setopt (curl, CURLOPT_CONNECTTIMEOUT_MS, (long) timeout_ms);
    curl_easy_setopt (curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt (curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, s_discard);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, body);
    curl_easy_setopt (curl, CURLOPT_ERRORBUFFER, curl_error);
    curl_easy_setopt (curl, CURLOPT_USERAGENT, "airlock-probe");

    double started = al_clock_mono_ms ();
    CURLcode code = curl_easy_perform (curl);
    result->latency_ms = al_clock_mono_ms () - started;
    long status = 0;
    curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &status);
    if (code == CURLE_OK || (code == CURLE_WRITE_ERROR && status > 0)) {
        result->status = status;
        result->ok = status >= 200 && status < 300;
        snprintf (result->detail, sizeof (result->detail), "%ld", status);
    }
    else {
        result->timed_out = code == CURLE_OPERATION_TIMEDOUT;
        if (result->timed_out)
            snprintf (result->detail, sizeof (result->detail), "timeout after %d ms", timeout_ms);
        else
            snprintf (result->detail, sizeof (result->detail), "%.60s: %.180s", curl_easy_strerror (code),
                      *curl_error ? curl_error : "no detail");
    }
    curl_easy_cleanup (curl);
    return result->ok;
}

bool
al_probe_http (const char *url, int timeout_ms, al_probe_result_t *result)
{
    s_body_t body = { 0, NULL };
    return s_get (url, timeout_ms, result, &body);
}

bool
al_probe_http_check (const char *url, int timeout_ms, long expect_status, const char *body_contains,
                     al_probe_result_t *result)
{
    assert (url);
    assert (result);
    char *buffer = body_contains ? (char *) malloc (S_MAX_BODY) : NULL;
    assert (!body_contains || buffer);
    s_body_t body = { 0, buffer };
    s_get (url, timeout_ms, result, &body);
    if (result->status > 0) {
        bool status_ok = expect_status ? result->status == expect_status
                                       : result->status >= 200 && result->status < 300;
        bool body_ok = !body_contains
                    || memmem (buffer, body.total < S_MAX_BODY ? body.total : S_MAX_BODY,
                               body_contains, strlen (body_contains)) != NULL;
        result->ok = status_ok && body_ok;
        if (!status_ok && expect_status)
            snprintf (result->detail, sizeof (result->detail), "status %ld, expected %ld", result->status, expect_status);
        else
        if (!status_ok)
            snprintf (result->detail, sizeof (result->detail), "status %ld, expected 2xx", result->status);
        else
        if (!body_ok)
            snprintf (result->detail, sizeof (result->detail), "status %ld, the body%s lacks the expected text",
                      result->status, body.total > S_MAX_BODY ? " (its first 64 KiB)" : "");
        else
            snprintf (result->detail, sizeof (result->detail), "status %ld%s", result->status,
                      body_contains ? ", body contains the expected text" : "");
    }
    free (buffer);
    return result->ok;
}
