/*  al_notify_sender.c: the sending thread (see al_notify_sender.h).

    The loop: start a request on every idle lane whose wait is over (its next due
    delivery, or nothing), wait in curl_multi_poll until a transfer progresses, a lane's
    wait ends (at most S_IDLE_MS) or al_notify_sender_wake is called, collect finished
    transfers and record their outcome in the outbox. The outbox connection is the
    thread's own; only the stop flag, the wake counter and the counters are shared,
    under the mutex.

    Invariants: a lane is busy exactly when its easy handle is attached to the multi
    handle, and then holds the item being sent; a lane with consecutive failures is in
    backoff and is not woken early by new deliveries (its endpoint is down).
*/
#include "agents/al_notify_sender.h"
#include "base/al_clock.h"
#include "agents/al_notify_format.h"
#include "agents/al_notify_outbox.h"
#include <assert.h>
#include <curl/curl.h>
#include <czmq.h>
#include <pthread.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define S_IDLE_MS 1000              // an idle lane looks at the outbox at least this often
#define S_RESPONSE_KEEP 300         // bytes of a response body kept for error messages

typedef struct {
    const al_notify_endpoint_t *endpoint;
    char *secret;
    size_t secret_size;
    CURL *easy;
    struct curl_slist *headers;
    al_notify_outbox_item_t item;
    bool busy;
    unsigned failures;              // consecutive attempts that will be retried
    uint64_t next_try_ms;           // wall clock: when the lane looks again
    char response [S_RESPONSE_KEEP + 1];
    size_t response_size;
    long retry_after_s;
    char curl_error [CURL_ERROR_SIZE];
} s_lane_t;

struct _al_notify_sender_t {
    const al_notify_config_t *config;
    al_notify_retry_t retry;
    al_notify_outbox_t *outbox;
    CURLM *multi;
    s_lane_t *lanes;
    size_t lane_count;
    pthread_t thread;
    bool started;
    pthread_mutex_t lock;
    bool stop;                      // under lock
    uint64_t wakes;                 // under lock
    al_notify_sender_info_t info;   // under lock
};

static pthread_once_t s_curl_once = PTHREAD_ONCE_INIT;
static CURLcode s_curl_init_code = CURLE_OK;

static void
s_curl_init (void)
{
    s_curl_init_code = curl_global_init (CURL_GLOBAL_DEFAULT);
}

//  The delay after the n-th consecutive failure (n >= 1): initial * 2^(n-1) up to max,
//  then half of it plus a random share of the other half.
static uint64_t
s_backoff (const al_notify_retry_t *retry, unsigned failures, long retry_after_s)
{
    uint64_t delay = (uint64_t) retry->initial_ms;
    for (unsigned i = 1; i < failures && delay < (uint64_t) retry->max_ms; i++)
        delay *= 2;
    if (delay > (uint64_t) retry->max_ms)
        delay = (uint64_t) retry->max_ms;
    uint64_t half = delay / 2;
    delay = half + randombytes_uniform ((uint32_t) (delay - half + 1));
    if (retry_after_s > 0) {
        uint64_t asked = (uint64_t) retry_after_s * 1000;
        if (asked > (uint64_t) retry->max_ms)
            asked = (uint64_t) retry->max_ms;
        if (asked > delay)
            delay = asked;
    }
    return delay;
}

static size_t
s_on_body (char *data, size_t size, size_t count, void *arg)
{
    s_lane_t *lane = (s_lane_t *) arg;
    size_t length = size * count;
    size_t room = S_RESPONSE_KEEP - lane->response_size;
    size_t take = length < room? length: room;
    memcpy (lane->response + lane->response_size, data, take);
    lane->response_size += take;
    lane->response [lane->response_size] = '\0';
    return length;
}

static size_t
s_on_header (char *data, size_t size, size_t count, void *arg)
{
    s_lane_t *lane = (s_lane_t *) arg;
    size_t length = size * count;
    if (length > 12 && strncasecmp (data, "Retry-After:", 12) == 0) {
        char value [32];
        size_t take = length - 12 < sizeof value - 1? length - 12: sizeof value - 1;
        memcpy (value, data + 12, take);
        value [take] = '\0';
        char *end = NULL;
        long seconds = strtol (value, &end, 10);
        //  Seconds only; an HTTP date is left to our own backoff.
        if (end != value && seconds > 0 && seconds < 86400)
            lane->retry_after_s = seconds;
    }
    return length;
}

//  The response excerpt, on one line.
static void
s_excerpt (const s_lane_t *lane, char *out, size_t out_size)
{
    size_t used = 0;
    for (size_t i = 0; i < lane->response_size && used + 1 < out_size && used < 200; i++) {
        unsigned char c = (unsigned char) lane->response [i];
        out [used++] = c < 0x20 || c == 0x7f? ' ': (char) c;
    }
    while (used > 0 && out [used - 1] == ' ')
        used--;
    out [used] = '\0';
}

static void
s_count (al_notify_sender_t *self, uint64_t *counter)
{
    pthread_mutex_lock (&self->lock);
    self->info.attempts++;
    (*counter)++;
    pthread_mutex_unlock (&self->lock);
}

//  Start sending the lane's next due delivery; give up on ones queued too long.
static void
s_lane_start (al_notify_sender_t *self, s_lane_t *lane, uint64_t now)
{
    const char *name = lane->endpoint->name;
    while (true) {
        uint64_t next_due = 0;
        int rc = al_notify_outbox_next (self->outbox, name, now, &lane->item, &next_due);
        if (rc < 0) {
            zsys_error ("notifier: %s: %s", name, al_notify_outbox_error (self->outbox));
            lane->next_try_ms = now + S_IDLE_MS;
            return;
        }
        if (rc == 0) {
            lane->next_try_ms = next_due && next_due < now + S_IDLE_MS? next_due: now + S_IDLE_MS;
            return;
        }
        if ((int64_t) (now - lane->item.created_ms) >= self->retry.give_up_after_ms) {
            char why [200];
            snprintf (why, sizeof why, "gave up after %u attempt(s) in %llu s", lane->item.attempts,
                      (unsigned long long) ((now - lane->item.created_ms) / 1000));
            zsys_error ("notifier: %s: delivery %s: %s (kept in the outbox as failed)", name, lane->item.delivery_id,
                        why);
            if (al_notify_outbox_mark_failed (self->outbox, lane->item.id, 0, why, now) != 0)
                zsys_error ("notifier: %s", al_notify_outbox_error (self->outbox));
            pthread_mutex_lock (&self->lock);
            self->info.failed++;
            pthread_mutex_unlock (&self->lock);
            al_notify_outbox_item_clear (&lane->item);
            continue;
        }
        break;
    }
    //  The stored headers, then this attempt's signature.
    curl_slist_free_all (lane->headers);
    lane->headers = NULL;
    char *lines = strdup (lane->item.headers);
    assert (lines);
    char *save = NULL;
    for (char *line = strtok_r (lines, "\n", &save); line; line = strtok_r (NULL, "\n", &save))
        lane->headers = curl_slist_append (lane->headers, line);
    free (lines);
    lane->headers = curl_slist_append (lane->headers, "Expect:");
    if (lane->secret) {
        uint64_t timestamp = now / 1000;
        char signature [AL_NOTIFY_SIGNATURE_SIZE];
        al_notify_format_sign ((const uint8_t *) lane->secret, lane->secret_size, timestamp, lane->item.body,
                               lane->item.body_size, signature);
        char header [128];
        snprintf (header, sizeof header, "X-Airlock-Timestamp: %llu", (unsigned long long) timestamp);
        lane->headers = curl_slist_append (lane->headers, header);
        snprintf (header, sizeof header, "X-Airlock-Signature-256: %s", signature);
        lane->headers = curl_slist_append (lane->headers, header);
    }
    assert (lane->headers);
    lane->response_size = 0;
    lane->response [0] = '\0';
    lane->retry_after_s = 0;
    lane->curl_error [0] = '\0';
    curl_easy_setopt (lane->easy, CURLOPT_HTTPHEADER, lane->headers);
    curl_easy_setopt (lane->easy, CURLOPT_POSTFIELDS, (const char *) lane->item.body);
    curl_easy_setopt (lane->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) lane->item.body_size);
    CURLMcode code = curl_multi_add_handle (self->multi, lane->easy);
    if (code != CURLM_OK) {
        zsys_error ("notifier: %s: cannot start a request: %s", name, curl_multi_strerror (code));
        al_notify_outbox_item_clear (&lane->item);
        lane->next_try_ms = now + S_IDLE_MS;
        return;
    }
    lane->busy = true;
}

static void
s_lane_finish (al_notify_sender_t *self, s_lane_t *lane, CURLcode result)
{
    const char *name = lane->endpoint->name;
    long status = 0;
    curl_easy_getinfo (lane->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_multi_remove_handle (self->multi, lane->easy);
    lane->busy = false;
    uint64_t now = (uint64_t) al_clock_wall_ms ();
    char excerpt [256];
    s_excerpt (lane, excerpt, sizeof excerpt);
    char why [600];
    int rc = 0;
    if (result == CURLE_OK && status >= 200 && status < 300) {
        if (lane->failures)
            zsys_info ("notifier: %s answers again (HTTP %ld) after %u failed attempt(s)", name, status, lane->failures);
        lane->failures = 0;
        lane->next_try_ms = 0;
        rc = al_notify_outbox_mark_done (self->outbox, lane->item.id, (int) status, now);
        s_count (self, &self->info.delivered);
    }
    else
    if (result == CURLE_OK && status != 408 && status != 429 && status < 500) {
        snprintf (why, sizeof why, "HTTP %ld%s%s: not retried (only 408, 429 and 5xx are)", status,
                  *excerpt? ": ": "", excerpt);
        zsys_error ("notifier: %s: delivery %s failed for good: %s (kept in the outbox as failed)", name,
                    lane->item.delivery_id, why);
        lane->failures = 0;
        lane->next_try_ms = 0;
        rc = al_notify_outbox_mark_failed (self->outbox, lane->item.id, (int) status, why, now);
        s_count (self, &self->info.failed);
    }
    else {
        if (result == CURLE_OK)
            snprintf (why, sizeof why, "HTTP %ld%s%s", status, *excerpt? ": ": "", excerpt);
        else
            snprintf (why, sizeof why, "%s", *lane->curl_error? lane->curl_error: curl_easy_strerror (result));
        lane->failures++;
        uint64_t lane_wait = s_backoff (&self->retry, lane->failures, lane->retry_after_s);
        uint64_t item_wait = s_backoff (&self->retry, lane->item.attempts + 1, lane->retry_after_s);
        lane->next_try_ms = now + lane_wait;
        if (lane->failures == 1)
            zsys_warning ("notifier: %s: delivery %s: %s; retrying in %llu ms", name, lane->item.delivery_id, why,
                          (unsigned long long) lane_wait);
        else
            zsys_info ("notifier: %s: still failing (%u in a row): %s; next try in %llu ms", name, lane->failures,
                       why, (unsigned long long) lane_wait);
        rc = al_notify_outbox_mark_retry (self->outbox, lane->item.id, result == CURLE_OK? (int) status: 0, why,
                                          now + item_wait);
        s_count (self, &self->info.retried);
    }
    if (rc != 0)
        zsys_error ("notifier: %s: %s (the delivery stays pending)", name, al_notify_outbox_error (self->outbox));
    al_notify_outbox_item_clear (&lane->item);
}

static void *
s_run (void *arg)
{
    al_notify_sender_t *self = (al_notify_sender_t *) arg;
    uint64_t wakes_seen = 0;
    while (true) {
        pthread_mutex_lock (&self->lock);
        bool stop = self->stop;
        uint64_t wakes = self->wakes;
        pthread_mutex_unlock (&self->lock);
        if (stop)
            break;
        uint64_t now = (uint64_t) al_clock_wall_ms ();
        bool woken = wakes != wakes_seen;
        wakes_seen = wakes;
        uint64_t wait = S_IDLE_MS;
        for (size_t i = 0; i < self->lane_count; i++) {
            s_lane_t *lane = &self->lanes [i];
            if (lane->busy)
                continue;
            if (woken && lane->failures == 0)
                lane->next_try_ms = 0;          // new deliveries: look now
            if (now >= lane->next_try_ms)
                s_lane_start (self, lane, now);
            if (!lane->busy && lane->next_try_ms > now && lane->next_try_ms - now < wait)
                wait = lane->next_try_ms - now;
        }
        curl_multi_poll (self->multi, NULL, 0, (int) (wait? wait: 1), NULL);
        int running = 0;
        curl_multi_perform (self->multi, &running);
        CURLMsg *message;
        int left = 0;
        while ((message = curl_multi_info_read (self->multi, &left))) {
            if (message->msg != CURLMSG_DONE)
                continue;
            s_lane_t *lane = NULL;
            curl_easy_getinfo (message->easy_handle, CURLINFO_PRIVATE, (char **) &lane);
            assert (lane && lane->easy == message->easy_handle);
            s_lane_finish (self, lane, message->data.result);
        }
    }
    return NULL;
}

al_notify_sender_t *
al_notify_sender_new (const al_notify_config_t *config, const char *outbox_path, char *error, size_t error_size)
{
    assert (config && outbox_path);
    pthread_once (&s_curl_once, s_curl_init);
    if (s_curl_init_code != CURLE_OK) {
        snprintf (error, error_size, "libcurl: %s", curl_easy_strerror (s_curl_init_code));
        return NULL;
    }
    if (sodium_init () < 0) {
        snprintf (error, error_size, "libsodium: cannot initialise");
        return NULL;
    }
    al_notify_sender_t *self = calloc (1, sizeof *self);
    assert (self);
    self->config = config;
    self->retry = *al_notify_config_retry (config);
    pthread_mutex_init (&self->lock, NULL);
    self->lane_count = al_notify_config_count (config);
    self->lanes = calloc (self->lane_count + 1, sizeof *self->lanes);
    assert (self->lanes);
    for (size_t i = 0; i < self->lane_count; i++) {
        s_lane_t *lane = &self->lanes [i];
        lane->endpoint = al_notify_config_at (config, i);
        if (al_notify_endpoint_secret (lane->endpoint, &lane->secret, error, error_size) != 0)
            goto failed;
        lane->secret_size = lane->secret? strlen (lane->secret): 0;
        lane->easy = curl_easy_init ();
        if (!lane->easy) {
            snprintf (error, error_size, "libcurl: cannot create a handle");
            goto failed;
        }
        CURL *easy = lane->easy;
        curl_easy_setopt (easy, CURLOPT_URL, lane->endpoint->url);
        curl_easy_setopt (easy, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt (easy, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt (easy, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt (easy, CURLOPT_TIMEOUT_MS, (long) lane->endpoint->timeout_ms);
        curl_easy_setopt (easy, CURLOPT_CONNECTTIMEOUT_MS, (long) lane->endpoint->timeout_ms);
        curl_easy_setopt (easy, CURLOPT_POST, 1L);
        curl_easy_setopt (easy, CURLOPT_WRITEFUNCTION, s_on_body);
        curl_easy_setopt (easy, CURLOPT_WRITEDATA, lane);
        curl_easy_setopt (easy, CURLOPT_HEADERFUNCTION, s_on_header);
        curl_easy_setopt (easy, CURLOPT_HEADERDATA, lane);
        curl_easy_setopt (easy, CURLOPT_ERRORBUFFER, lane->curl_error);
        curl_easy_setopt (easy, CURLOPT_PRIVATE, lane);
    }
    self->outbox = al_notify_outbox_open (outbox_path, error, error_size);
    if (!self->outbox)
        goto failed;
    self->multi = curl_multi_init ();
    if (!self->multi) {
        snprintf (error, error_size, "libcurl: cannot create a multi handle");
        goto failed;
    }
    if (pthread_create (&self->thread, NULL, s_run, self) != 0) {
        snprintf (error, error_size, "cannot start the sending thread");
        goto failed;
    }
    self->started = true;
    return self;
failed:
    al_notify_sender_destroy (&self);
    return NULL;
}

void
al_notify_sender_destroy (al_notify_sender_t **self_p)
{
    assert (self_p);
    al_notify_sender_t *self = *self_p;
    if (!self)
        return;
    if (self->started) {
        pthread_mutex_lock (&self->lock);
        self->stop = true;
        pthread_mutex_unlock (&self->lock);
        curl_multi_wakeup (self->multi);
        pthread_join (self->thread, NULL);
    }
    for (size_t i = 0; i < self->lane_count; i++) {
        s_lane_t *lane = &self->lanes [i];
        if (lane->busy)
            curl_multi_remove_handle (self->multi, lane->easy);
        if (lane->easy)
            curl_easy_cleanup (lane->easy);
        curl_slist_free_all (lane->headers);
        al_notify_outbox_item_clear (&lane->item);
        if (lane->secret) {
            sodium_memzero (lane->secret, lane->secret_size);
            free (lane->secret);
        }
    }
    if (self->multi)
        curl_multi_cleanup (self->multi);
    free (self->lanes);
    al_notify_outbox_destroy (&self->outbox);
    pthread_mutex_destroy (&self->lock);
    free (self);
    *self_p = NULL;
}

void
al_notify_sender_wake (al_notify_sender_t *self)
{
    assert (self);
    pthread_mutex_lock (&self->lock);
    self->wakes++;
    pthread_mutex_unlock (&self->lock);
    curl_multi_wakeup (self->multi);
}

void
al_notify_sender_info (al_notify_sender_t *self, al_notify_sender_info_t *info)
{
    assert (self && info);
    pthread_mutex_lock (&self->lock);
    *info = self->info;
    pthread_mutex_unlock (&self->lock);
}
