/*  test_notify_sender.c: the sending thread (agents/al_notify_sender) against a local
    receiver, with deliveries put straight into the outbox.

    Shown: every delivery arrives once, oldest first, byte for byte, signed (checked with
    OpenSSL) when the endpoint has a secret; a 503 is retried with the same delivery id
    and body until it is taken; 408 is retried, 400 is not (failed for good, kept, the
    next one goes); a delivery queued longer than give_up_after_ms fails without being
    sent; an endpoint that refuses connections and one that accepts them but never
    answers (timeout) hold up neither each other nor a live endpoint.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include "receiver.h"
#include "agents/al_notify_config.h"
#include "agents/al_notify_format.h"
#include "agents/al_notify_outbox.h"
#include "agents/al_notify_sender.h"
#include <arpa/inet.h>
#include <czmq.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define S_SECRET "sender-test-secret"

typedef struct {
    char dir [64];
    char outbox_path [128];
    receiver_t *receiver;
    al_notify_config_t *config;
    al_notify_outbox_t *outbox;         // the test's own connection
    al_notify_sender_t *sender;
    int counter;
} s_fixture_t;

static uint64_t
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

static int
s_setup (void **state)
{
    s_fixture_t *f = calloc (1, sizeof *f);
    assert_non_null (f);
    snprintf (f->dir, sizeof f->dir, "/tmp/al-notify-sender-XXXXXX");
    assert_non_null (mkdtemp (f->dir));
    snprintf (f->outbox_path, sizeof f->outbox_path, "%s/outbox.db", f->dir);
    f->receiver = receiver_new (0);
    assert_non_null (f->receiver);
    char error [512];
    f->outbox = al_notify_outbox_open (f->outbox_path, error, sizeof error);
    assert_non_null (f->outbox);
    setenv ("AL_TEST_SENDER_SECRET", S_SECRET, 1);
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    s_fixture_t *f = *state;
    al_notify_sender_destroy (&f->sender);
    al_notify_outbox_destroy (&f->outbox);
    al_notify_config_destroy (&f->config);
    receiver_destroy (&f->receiver);
    char command [200];
    snprintf (command, sizeof command, "rm -rf '%s'", f->dir);
    assert_int_equal (system (command), 0);
    free (f);
    return 0;
}

//  Write notifications.yaml with endpoints (YAML list items) and start the sender.
static void
s_start (s_fixture_t *f, const char *endpoints, const char *retry)
{
    char path [200];
    snprintf (path, sizeof path, "%s/notifications.yaml", f->dir);
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fprintf (file, "version: 1\nendpoints:\n%s%s\n", endpoints, retry);
    fclose (file);
    char error [2048];
    f->config = al_notify_config_load (path, error, sizeof error);
    if (!f->config)
        fail_msg ("%s", error);
    f->sender = al_notify_sender_new (f->config, f->outbox_path, error, sizeof error);
    if (!f->sender)
        fail_msg ("%s", error);
}

//  Queue one delivery for endpoint (kind decides the body); returns its delivery id.
static void
s_queue (s_fixture_t *f, const char *endpoint, al_notify_kind_t kind, uint64_t created_ms, char *id)
{
    char key [64];
    snprintf (key, sizeof key, "event:%d", ++f->counter);
    al_notify_message_t *message = al_notify_message_new ("escalation", key);
    al_notify_message_set_subject (message, "escalation number %d", f->counter);
    al_notify_message_append (message, "text of %d", f->counter);
    al_notify_message_set_origin (message, "Notification", (uint64_t) f->counter, "dep", 2, "demo", created_ms);
    al_notify_format_delivery_id (key, endpoint, id);
    al_notify_outbox_entry_t entry = { .endpoint = endpoint, .delivery_id = id, .template_name = "escalation" };
    char *body = al_notify_format_body (kind, message, id, &entry.body_size);
    char *headers = al_notify_format_headers (kind, message, id);
    entry.body = body;
    entry.headers = headers;
    assert_int_equal (al_notify_outbox_enqueue (f->outbox, key, "escalation", &entry, 1, created_ms, NULL), 0);
    free (body);
    free (headers);
    al_notify_message_destroy (&message);
    if (f->sender)
        al_notify_sender_wake (f->sender);
}

static bool
s_wait_accepted (s_fixture_t *f, const char *path, size_t count)
{
    for (int waited = 0; waited < 20000; waited += 20) {
        if (receiver_accepted (f->receiver, path) >= count)
            return true;
        zclock_sleep (20);
    }
    return false;
}

static al_notify_outbox_counts_t
s_counts (s_fixture_t *f, const char *endpoint)
{
    al_notify_outbox_counts_t counts;
    assert_int_equal (al_notify_outbox_counts (f->outbox, endpoint, &counts), 0);
    return counts;
}

static bool
s_wait_settled (s_fixture_t *f, const char *endpoint, uint64_t done, uint64_t failed)
{
    for (int waited = 0; waited < 20000; waited += 20) {
        al_notify_outbox_counts_t counts = s_counts (f, endpoint);
        if (counts.done == done && counts.failed == failed && counts.pending == 0)
            return true;
        zclock_sleep (20);
    }
    return false;
}

static void
s_assert_signed (const receiver_request_t *request)
{
    assert_true (strlen (request->timestamp) > 0);
    char *text = NULL;
    assert_true (asprintf (&text, "%s.%s", request->timestamp, request->body) > 0);
    unsigned char mac [EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    HMAC (EVP_sha256 (), S_SECRET, (int) strlen (S_SECRET), (const unsigned char *) text, strlen (text), mac, &size);
    free (text);
    char expected [80] = "sha256=";
    for (unsigned i = 0; i < size; i++)
        snprintf (expected + 7 + 2 * i, 3, "%02x", mac [i]);
    assert_string_equal (request->signature, expected);
    //  The timestamp is the attempt's: recent.
    long long stamp = atoll (request->timestamp);
    long long now = (long long) (s_now_ms () / 1000);
    assert_true (stamp <= now && stamp > now - 300);
}

static void
test_delivers_once_in_order_signed (void **state)
{
    s_fixture_t *f = *state;
    char hook [200], events [200], endpoints [800];
    receiver_url (f->receiver, "/hook", hook, sizeof hook);
    receiver_url (f->receiver, "/events", events, sizeof events);
    snprintf (endpoints, sizeof endpoints,
              "  - { name: hook, kind: webhook, url: \"%s\", secret: { env: AL_TEST_SENDER_SECRET } }\n"
              "  - { name: bus, kind: cloudevents, url: \"%s\" }\n", hook, events);
    char ids [10][AL_NOTIFY_DELIVERY_ID_SIZE];
    //  Queued before the sender starts: found at start (a restart's backlog).
    for (int i = 0; i < 3; i++)
        s_queue (f, "hook", AL_NOTIFY_WEBHOOK, s_now_ms (), ids [i]);
    s_start (f, endpoints, "retry: { initial_ms: 20, max_ms: 200 }");
    for (int i = 3; i < 6; i++)
        s_queue (f, "hook", AL_NOTIFY_WEBHOOK, s_now_ms (), ids [i]);
    for (int i = 6; i < 10; i++)
        s_queue (f, "bus", AL_NOTIFY_CLOUDEVENTS, s_now_ms (), ids [i]);
    assert_true (s_wait_accepted (f, "/hook", 6));
    assert_true (s_wait_accepted (f, "/events", 4));
    assert_true (s_wait_settled (f, "hook", 6, 0));
    assert_true (s_wait_settled (f, "bus", 4, 0));
    size_t hook_index = 0, bus_index = 6;
    for (size_t i = 0; i < receiver_count (f->receiver); i++) {
        receiver_request_t request;
        receiver_get (f->receiver, i, &request);
        if (strcmp (request.path, "/hook") == 0) {
            assert_string_equal (request.delivery, ids [hook_index]);      // oldest first
            hook_index++;
            assert_string_equal (request.content_type, "application/json; charset=utf-8");
            assert_string_equal (request.event, "escalation");
            s_assert_signed (&request);
            json_t *root = json_loads (request.body, 0, NULL);
            assert_string_equal (json_string_value (json_object_get (root, "id")), request.delivery);
            json_decref (root);
        }
        else {
            assert_string_equal (request.delivery, ids [bus_index]);
            bus_index++;
            assert_string_equal (request.content_type, "application/cloudevents+json; charset=utf-8");
            assert_string_equal (request.signature, "");                    // no secret, no signature
        }
        receiver_request_clear (&request);
    }
    assert_int_equal (hook_index, 6);
    assert_int_equal (bus_index, 10);
    assert_int_equal (receiver_count (f->receiver), 10);
    al_notify_sender_info_t info;
    al_notify_sender_info (f->sender, &info);
    assert_int_equal (info.delivered, 10);
    assert_int_equal (info.retried, 0);
}

static void
test_retried_until_taken (void **state)
{
    s_fixture_t *f = *state;
    char hook [200], endpoints [600];
    receiver_url (f->receiver, "/hook", hook, sizeof hook);
    snprintf (endpoints, sizeof endpoints,
              "  - { name: hook, kind: webhook, url: \"%s\", secret: { env: AL_TEST_SENDER_SECRET } }\n", hook);
    s_start (f, endpoints, "retry: { initial_ms: 20, max_ms: 100 }");
    receiver_set_status (f->receiver, 503);
    char id [AL_NOTIFY_DELIVERY_ID_SIZE];
    s_queue (f, "hook", AL_NOTIFY_WEBHOOK, s_now_ms (), id);
    for (int waited = 0; waited < 20000 && receiver_requests (f->receiver, "/hook") < 3; waited += 20)
        zclock_sleep (20);
    assert_true (receiver_requests (f->receiver, "/hook") >= 3);
    assert_int_equal (s_counts (f, "hook").pending, 1);
    receiver_set_status (f->receiver, 408);         // also retried
    size_t before = receiver_requests (f->receiver, "/hook");
    for (int waited = 0; waited < 20000 && receiver_requests (f->receiver, "/hook") < before + 2; waited += 20)
        zclock_sleep (20);
    receiver_set_status (f->receiver, 200);
    assert_true (s_wait_accepted (f, "/hook", 1));
    assert_true (s_wait_settled (f, "hook", 1, 0));
    //  Every attempt carried the same delivery id and the same body, freshly signed.
    size_t count = receiver_count (f->receiver);
    assert_true (count >= 5);
    receiver_request_t first;
    receiver_get (f->receiver, 0, &first);
    for (size_t i = 0; i < count; i++) {
        receiver_request_t request;
        receiver_get (f->receiver, i, &request);
        assert_string_equal (request.delivery, id);
        assert_string_equal (request.body, first.body);
        s_assert_signed (&request);
        receiver_request_clear (&request);
    }
    receiver_request_clear (&first);
    assert_int_equal (receiver_accepted (f->receiver, "/hook"), 1);
    assert_int_equal (s_counts (f, "hook").attempts, count);
}

static void
test_client_errors_are_final (void **state)
{
    s_fixture_t *f = *state;
    char hook [200], endpoints [600];
    receiver_url (f->receiver, "/hook", hook, sizeof hook);
    snprintf (endpoints, sizeof endpoints, "  - { name: hook, kind: slack, url: \"%s\" }\n", hook);
    s_start (f, endpoints, "retry: { initial_ms: 10, max_ms: 20, give_up_after_ms: 3000 }");
    receiver_set_status (f->receiver, 400);
    char id [AL_NOTIFY_DELIVERY_ID_SIZE];
    s_queue (f, "hook", AL_NOTIFY_SLACK, s_now_ms (), id);
    assert_true (s_wait_settled (f, "hook", 0, 1));
    receiver_set_status (f->receiver, 200);
    //  The next one goes; the failed one is never tried again.
    s_queue (f, "hook", AL_NOTIFY_SLACK, s_now_ms (), id);
    assert_true (s_wait_accepted (f, "/hook", 1));
    assert_true (s_wait_settled (f, "hook", 1, 1));
    //  Queued longer ago than give_up_after_ms: failed without a request.
    s_queue (f, "hook", AL_NOTIFY_SLACK, s_now_ms () - 60000, id);
    assert_true (s_wait_settled (f, "hook", 1, 2));
    assert_int_equal (receiver_requests (f->receiver, "/hook"), 2);
    al_notify_sender_info_t info;
    al_notify_sender_info (f->sender, &info);
    assert_int_equal (info.failed, 2);
    assert_int_equal (info.delivered, 1);
    assert_int_equal (info.retried, 0);
}

//  A TCP port that accepts connections (the kernel completes them) and never answers.
static int
s_silent_port (int *fd_p)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    assert_true (fd >= 0);
    struct sockaddr_in address;
    memset (&address, 0, sizeof address);
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    assert_int_equal (bind (fd, (struct sockaddr *) &address, sizeof address), 0);
    assert_int_equal (listen (fd, 64), 0);
    socklen_t size = sizeof address;
    assert_int_equal (getsockname (fd, (struct sockaddr *) &address, &size), 0);
    *fd_p = fd;
    return ntohs (address.sin_port);
}

static void
test_dead_endpoints_block_nothing (void **state)
{
    s_fixture_t *f = *state;
    receiver_t *dead = receiver_new (0);
    assert_non_null (dead);
    int dead_port = receiver_port (dead);
    receiver_stop (dead);                            // connections refused from now on
    int silent_fd = -1;
    int silent_port = s_silent_port (&silent_fd);
    char live [200], endpoints [900];
    receiver_url (f->receiver, "/live", live, sizeof live);
    snprintf (endpoints, sizeof endpoints,
              "  - { name: dead, kind: cloudevents, url: \"http://127.0.0.1:%d/dead\" }\n"
              "  - { name: silent, kind: cloudevents, url: \"http://127.0.0.1:%d/silent\", timeout_ms: 300 }\n"
              "  - { name: live, kind: cloudevents, url: \"%s\" }\n", dead_port, silent_port, live);
    s_start (f, endpoints, "retry: { initial_ms: 50, max_ms: 400 }");
    char id [AL_NOTIFY_DELIVERY_ID_SIZE];
    for (int i = 0; i < 5; i++) {
        s_queue (f, "dead", AL_NOTIFY_CLOUDEVENTS, s_now_ms (), id);
        s_queue (f, "silent", AL_NOTIFY_CLOUDEVENTS, s_now_ms (), id);
        s_queue (f, "live", AL_NOTIFY_CLOUDEVENTS, s_now_ms (), id);
    }
    assert_true (s_wait_accepted (f, "/live", 5));
    assert_true (s_wait_settled (f, "live", 5, 0));
    //  Both others failed at least once and still hold everything.
    for (int waited = 0; waited < 20000 && (s_counts (f, "dead").attempts == 0 || s_counts (f, "silent").attempts == 0);
         waited += 20)
        zclock_sleep (20);
    assert_true (s_counts (f, "dead").attempts > 0);
    assert_true (s_counts (f, "silent").attempts > 0);
    assert_int_equal (s_counts (f, "dead").pending, 5);
    assert_int_equal (s_counts (f, "silent").pending, 5);
    //  The dead one comes back: it gets its five, once each.
    assert_int_equal (receiver_start (dead), 0);
    assert_int_equal (receiver_port (dead), dead_port);
    for (int waited = 0; waited < 20000 && receiver_accepted (dead, "/dead") < 5; waited += 20)
        zclock_sleep (20);
    assert_true (s_wait_settled (f, "dead", 5, 0));
    assert_int_equal (receiver_accepted (dead, "/dead"), 5);
    assert_int_equal (s_counts (f, "silent").pending, 5);
    close (silent_fd);
    receiver_destroy (&dead);
}

int
main (void)
{
    assert_true (sodium_init () >= 0);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_delivers_once_in_order_signed, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_retried_until_taken, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_client_errors_are_final, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_dead_endpoints_block_nothing, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
