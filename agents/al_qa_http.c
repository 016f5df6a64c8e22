/*  al_qa_http.c: the qa agent's HTTP client for smoke checks (al_qa_http_get,
    agents/al_qa_int.h): one GET with libcurl, no redirects, a bounded body.
    libcurl's global init runs once (pthread_once); each call has its own handle, so
    calls are thread-safe.
*/
#include "agents/al_qa_int.h"
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static pthread_once_t s_curl_once = PTHREAD_ONCE_INIT;
static CURLcode s_curl_init_code = CURLE_OK;

static void
s_curl_init (void)
{
    s_curl_init_code = curl_global_init (CURL_GLOBAL_DEFAULT);
}

static size_t
s_body_write (char *chunk, size_t size, size_t count, void *arg)
{
    al_qa_body_t *body = (al_qa_body_t *) arg;
    size_t bytes = size * count;
    size_t room = AL_QA_SMOKE_BODY_MAX - body->size;
    if (bytes > room) {
        memcpy (body->data + body->size, chunk, room);
        body->size += room;
        body->cut = true;
        return 0;                   // enough read: stop the transfer
    }
    memcpy (body->data + body->size, chunk, bytes);
    body->size += bytes;
    return bytes;
}

//  GET url within timeout_ms: its status (0 when no response came) and body; detail
//  says why there was no response.
long
al_qa_http_get (const char *url, int timeout_ms, al_qa_body_t *body, char *detail, size_t detail_size)
{
    pthread_once (&s_curl_once, s_curl_init);
    detail [0] = '\0';
    if (s_curl_init_code != CURLE_OK) {
        snprintf (detail, detail_size, "libcurl: %s", curl_easy_strerror (s_curl_init_code));
        return 0;
    }
    CURL *curl = curl_easy_init ();
    if (!curl) {
        snprintf (detail, detail_size, "libcurl: cannot create a handle");
        return 0;
    }
    char curl_error [CURL_ERROR_SIZE] = "";
    curl_easy_setopt (curl, CURLOPT_URL, url);
    curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (curl, CURLOPT_TIMEOUT_MS, (long) timeout_ms);
    curl_easy_setopt (curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, s_body_write);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, body);
    curl_easy_setopt (curl, CURLOPT_ERRORBUFFER, curl_error);
    CURLcode code = curl_easy_perform (curl);
    long status = 0;
    if (code == CURLE_OK || (code == CURLE_WRITE_ERROR && body->cut))
        curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &status);
    else
        snprintf (detail, detail_size, "no response: %s", *curl_error ? curl_error : curl_easy_strerror (code));
    curl_easy_cleanup (curl);
    al_qa_clean (detail);
    return status;
}
