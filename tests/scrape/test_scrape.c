/*  test_scrape.c: concurrent scrapes (deploy/al_scrape) as the monitor will run them.

    Targets are real demo-service processes ($AIRLOCK_BINARY_DIR/demo-service on port 0,
    killed in every teardown) and scripted stub servers (stub_server.c) for what a demo
    service will not do on demand: answer late, answer too much, redirect, or count the
    connections it accepted.

    Only one test looks at a clock, and only as a structural check that transfers run
    at once: four targets that each wait 300 ms must finish in one round well under the
    1200 ms their sum would take. Nothing else asserts timing.
*/
#include "deploy/al_metrics.h"
#include "deploy/al_scrape.h"
#include "stub_server.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define S_MAX_CHILDREN 8
#define S_START_DEADLINE_MS 20000

static pid_t s_children [S_MAX_CHILDREN];
static size_t s_child_count;

static double
s_now_ms (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (double) now.tv_sec * 1e3 + now.tv_nsec / 1e6;
}

static int
s_setup (void **state)
{
    (void) state;
    s_child_count = 0;
    return 0;
}

static int
s_teardown (void **state)
{
    (void) state;
    for (size_t i = 0; i < s_child_count; i++) {
        kill (s_children [i], SIGKILL);
        waitpid (s_children [i], NULL, 0);
    }
    s_child_count = 0;
    return 0;
}

//  Start demo-service with extra args (NULL-terminated, may be NULL) on a free port;
//  returns the port it reports on its first stdout line.
static int
s_demo_start (const char *version, const char **args)
{
    const char *dir = getenv ("AIRLOCK_BINARY_DIR");
    assert_non_null (dir);
    char binary [1024];
    snprintf (binary, sizeof binary, "%s/demo-service", dir);
    assert_int_equal (access (binary, X_OK), 0);
    const char *argv [16] = { binary, "--port", "0", "--version", version };
    size_t argc = 5;
    for (size_t i = 0; args && args [i]; i++) {
        assert_true (argc < 15);
        argv [argc++] = args [i];
    }
    argv [argc] = NULL;
    int fds [2];
    assert_int_equal (pipe (fds), 0);
    assert_true (s_child_count < S_MAX_CHILDREN);
    fflush (NULL);
    pid_t pid = fork ();
    assert_true (pid >= 0);
    if (pid == 0) {
        dup2 (fds [1], STDOUT_FILENO);
        close (fds [0]);
        close (fds [1]);
        const char *names [] = { "PORT", "VERSION", "ERROR_RATE", "LATENCY_MS", "LATENCY_JITTER_MS",
                                 "CPU_BURN", "FAIL_READINESS", "READY_DELAY_MS", "CRASH_AT_START",
                                 "MEMORY_LIMIT_MB", "SHUTDOWN_TIMEOUT_MS", "DB_PATH", "VERBOSE" };
        for (size_t i = 0; i < sizeof names / sizeof names [0]; i++)
            unsetenv (names [i]);
        execv (binary, (char **) argv);
        _exit (127);
    }
    s_children [s_child_count++] = pid;
    close (fds [1]);
    char line [256];
    size_t used = 0;
    double deadline = s_now_ms () + S_START_DEADLINE_MS;
    while (used < sizeof line - 1 && !memchr (line, '\n', used)) {
        struct pollfd readable = { fds [0], POLLIN, 0 };
        int wait_ms = (int) (deadline - s_now_ms ());
        if (wait_ms <= 0 || poll (&readable, 1, wait_ms) <= 0)
            break;
        ssize_t got = read (fds [0], line + used, sizeof line - 1 - used);
        if (got <= 0)
            break;
        used += (size_t) got;
    }
    close (fds [0]);
    line [used] = 0;
    const char *at = strstr (line, "listening on 127.0.0.1:");
    if (!at)
        fail_msg ("demo-service did not report listening; stdout was '%s'", line);
    int port = atoi (at + strlen ("listening on 127.0.0.1:"));
    assert_true (port > 0 && port < 65536);
    return port;
}

static void
s_url (char *url, size_t size, int port, const char *path)
{
    snprintf (url, size, "http://127.0.0.1:%d%s", port, path);
}

static stub_server_t *
s_stub (int status, int delay_ms, size_t body_size, bool content_length)
{
    stub_config_t config = { status, delay_ms, body_size, content_length, NULL };
    stub_server_t *server = stub_server_start (&config);
    assert_non_null (server);
    return server;
}

static al_scraper_t *
s_scraper (size_t max_body)
{
    char error [256] = "";
    al_scraper_t *scraper = al_scraper_new (max_body, error, sizeof error);
    if (!scraper)
        fail_msg ("al_scraper_new: %s", error);
    return scraper;
}

static void
s_assert_failed (const al_scrape_result_t *result, long status, const char *error)
{
    if (result->ok || strcmp (result->error, error) != 0)
        fail_msg ("%s: expected a failed scrape '%s', got ok=%d error='%s'",
                  result->url, error, result->ok, result->error);
    assert_int_equal (result->status, status);
    assert_null (result->body);
    assert_int_equal (result->body_size, 0);
}

static void
s_assert_ok (const al_scrape_result_t *result, size_t body_size)
{
    if (!result->ok)
        fail_msg ("%s: expected ok, got status %ld error '%s'", result->url, result->status, result->error);
    assert_int_equal (result->status, 200);
    assert_false (result->timed_out);
    assert_string_equal (result->error, "");
    assert_non_null (result->body);
    assert_int_equal (result->body_size, body_size);
    assert_int_equal (result->body [body_size], 0);
    assert_int_equal (strlen (result->body), body_size);
}

//  --- Tests -----------------------------------------------------------------------

//  Three real instances in one round: each body is that instance's exposition, in
//  target order, and parses.
static void
test_demo_instances (void **state)
{
    (void) state;
    const char *versions [3] = { "1.0.0", "1.0.1", "1.0.2" };
    char urls [3][128];
    al_scrape_target_t targets [3];
    for (int i = 0; i < 3; i++) {
        s_url (urls [i], sizeof urls [i], s_demo_start (versions [i], NULL), "/metrics");
        targets [i] = (al_scrape_target_t) { urls [i], (void *) versions [i] };
    }
    al_scraper_t *scraper = s_scraper (0);
    al_scrape_result_t results [3];
    assert_int_equal (al_scraper_run (scraper, targets, 3, 5000, results), 0);
    for (int i = 0; i < 3; i++) {
        s_assert_ok (&results [i], results [i].body_size);
        assert_true (results [i].body_size > 0);
        assert_ptr_equal (results [i].url, urls [i]);
        assert_ptr_equal (results [i].user, versions [i]);
        assert_true (results [i].duration_ms >= 0);
        char error [256] = "";
        al_metrics_t *metrics = al_metrics_parse (results [i].body, results [i].body_size, NULL,
                                                  error, sizeof error);
        if (!metrics)
            fail_msg ("instance %d: %s", i, error);
        const al_metric_family_t *info = al_metrics_find (metrics, "demo_service_info");
        assert_non_null (info);
        assert_int_equal (info->sample_count, 1);
        assert_string_equal (al_metric_sample_label (&info->samples [0], "version"), versions [i]);
        al_metrics_destroy (&metrics);
    }
    al_scraper_destroy (&scraper);
    assert_null (scraper);
    al_scraper_destroy (&scraper);
}

//  Four targets that each wait 300 ms before answering: one round, all ok, and the
//  round ends well before the 1200 ms that one-after-another would take.
static void
test_targets_run_at_once (void **state)
{
    (void) state;
    stub_server_t *servers [4];
    char urls [4][128];
    al_scrape_target_t targets [4];
    for (int i = 0; i < 4; i++) {
        servers [i] = s_stub (200, 300, 64, true);
        s_url (urls [i], sizeof urls [i], stub_server_port (servers [i]), "/metrics");
        targets [i] = (al_scrape_target_t) { urls [i], NULL };
    }
    al_scraper_t *scraper = s_scraper (0);
    al_scrape_result_t results [4];
    double started = s_now_ms ();
    assert_int_equal (al_scraper_run (scraper, targets, 4, 2000, results), 0);
    double elapsed = s_now_ms () - started;
    for (int i = 0; i < 4; i++) {
        s_assert_ok (&results [i], 64);
        assert_int_equal (stub_server_requests (servers [i]), 1);
    }
    if (elapsed >= 1200)
        fail_msg ("4 targets of 300 ms took %.0f ms: not concurrent", elapsed);
    al_scraper_destroy (&scraper);
    for (int i = 0; i < 4; i++)
        stub_server_stop (&servers [i]);
}

//  A target that never answers and one that answers too late both time out; the
//  prompt one in the same round is unaffected.
static void
test_timeout (void **state)
{
    (void) state;
    int silent_port = 0;
    int silent = stub_silent_listener (&silent_port);
    assert_true (silent >= 0);
    stub_server_t *late = s_stub (200, 10000, 10, true);
    stub_server_t *prompt = s_stub (200, 0, 10, true);
    char urls [3][128];
    s_url (urls [0], sizeof urls [0], silent_port, "/metrics");
    s_url (urls [1], sizeof urls [1], stub_server_port (late), "/metrics");
    s_url (urls [2], sizeof urls [2], stub_server_port (prompt), "/metrics");
    al_scrape_target_t targets [3] = { { urls [0], NULL }, { urls [1], NULL }, { urls [2], NULL } };
    al_scraper_t *scraper = s_scraper (0);
    al_scrape_result_t results [3];
    assert_int_equal (al_scraper_run (scraper, targets, 3, 300, results), 0);
    for (int i = 0; i < 2; i++) {
        s_assert_failed (&results [i], 0, "timeout after 300 ms");
        assert_true (results [i].timed_out);
    }
    s_assert_ok (&results [2], 10);
    assert_int_equal (stub_server_requests (late), 1);

    //  The scraper is usable after transfers were cut short.
    assert_int_equal (al_scraper_run (scraper, &targets [2], 1, 300, results), 0);
    s_assert_ok (&results [0], 10);
    al_scraper_destroy (&scraper);
    stub_server_stop (&late);
    stub_server_stop (&prompt);
    close (silent);
}

static void
test_connection_refused (void **state)
{
    (void) state;
    int port = stub_closed_port ();
    assert_true (port > 0);
    char url [128];
    s_url (url, sizeof url, port, "/metrics");
    al_scrape_target_t target = { url, NULL };
    al_scraper_t *scraper = s_scraper (0);
    al_scrape_result_t result;
    assert_int_equal (al_scraper_run (scraper, &target, 1, 2000, &result), 0);
    s_assert_failed (&result, 0, "connection refused");
    assert_false (result.timed_out);
    al_scraper_destroy (&scraper);
}

//  The cap holds at its exact size, announced or not, and one byte more fails.
static void
test_body_cap (void **state)
{
    (void) state;
    stub_server_t *servers [4] = {
        s_stub (200, 0, 1000, true),        //  at the cap, Content-Length
        s_stub (200, 0, 1001, true),        //  above it, refused from the header
        s_stub (200, 0, 1000, false),       //  at the cap, close-delimited
        s_stub (200, 0, 1001, false),       //  above it, aborted while receiving
    };
    char urls [4][128];
    al_scrape_target_t targets [4];
    for (int i = 0; i < 4; i++) {
        s_url (urls [i], sizeof urls [i], stub_server_port (servers [i]), "/metrics");
        targets [i] = (al_scrape_target_t) { urls [i], NULL };
    }
    al_scraper_t *scraper = s_scraper (1000);
    al_scrape_result_t results [4];
    assert_int_equal (al_scraper_run (scraper, targets, 4, 5000, results), 0);
    s_assert_ok (&results [0], 1000);
    assert_int_equal (results [0].body [999], 'm');
    s_assert_failed (&results [1], 200, "body above 1000 bytes");
    s_assert_ok (&results [2], 1000);
    s_assert_failed (&results [3], 200, "body above 1000 bytes");
    al_scraper_destroy (&scraper);
    for (int i = 0; i < 4; i++)
        stub_server_stop (&servers [i]);
}

//  The default cap is 4 MiB: a streamed body one byte above it is cut off.
static void
test_default_body_cap (void **state)
{
    (void) state;
    stub_server_t *exact = s_stub (200, 0, AL_SCRAPE_DEFAULT_MAX_BODY, false);
    stub_server_t *above = s_stub (200, 0, AL_SCRAPE_DEFAULT_MAX_BODY + 1, false);
    char urls [2][128];
    s_url (urls [0], sizeof urls [0], stub_server_port (exact), "/metrics");
    s_url (urls [1], sizeof urls [1], stub_server_port (above), "/metrics");
    al_scrape_target_t targets [2] = { { urls [0], NULL }, { urls [1], NULL } };
    al_scraper_t *scraper = s_scraper (0);
    al_scrape_result_t results [2];
    assert_int_equal (al_scraper_run (scraper, targets, 2, 20000, results), 0);
    s_assert_ok (&results [0], AL_SCRAPE_DEFAULT_MAX_BODY);
    s_assert_failed (&results [1], 200, "body above 4194304 bytes");
    al_scraper_destroy (&scraper);
    stub_server_stop (&exact);
    stub_server_stop (&above);
}

//  Non-2xx answers fail with their status, and their error pages are not handed out.
static void
test_http_errors (void **state)
{
    (void) state;
    const char *failing [] = { "--error-rate", "1", NULL };
    int demo = s_demo_start ("2.0.0", failing);
    stub_server_t *unavailable = s_stub (503, 0, 20, true);
    stub_server_t *empty = s_stub (200, 0, 0, true);
    char urls [4][128];
    s_url (urls [0], sizeof urls [0], demo, "/work?n=1");
    s_url (urls [1], sizeof urls [1], demo, "/no-such-path");
    s_url (urls [2], sizeof urls [2], stub_server_port (unavailable), "/metrics");
    s_url (urls [3], sizeof urls [3], stub_server_port (empty), "/metrics");
    al_scrape_target_t targets [4];
    for (int i = 0; i < 4; i++)
        targets [i] = (al_scrape_target_t) { urls [i], NULL };
    al_scraper_t *scraper = s_scraper (0);
    al_scrape_result_t results [4];
    assert_int_equal (al_scraper_run (scraper, targets, 4, 5000, results), 0);
    s_assert_failed (&results [0], 500, "HTTP 500");
    s_assert_failed (&results [1], 404, "HTTP 404");
    s_assert_failed (&results [2], 503, "HTTP 503");
    assert_false (results [2].timed_out);
    //  An empty 200 is a good scrape with an empty body (the parser decides about it).
    s_assert_ok (&results [3], 0);
    assert_string_equal (results [3].body, "");
    al_scraper_destroy (&scraper);
    stub_server_stop (&unavailable);
    stub_server_stop (&empty);
}

//  A redirect is a failed scrape; its target is never contacted.
static void
test_no_redirect (void **state)
{
    (void) state;
    stub_server_t *elsewhere = s_stub (200, 0, 10, true);
    char location [160];
    snprintf (location, sizeof location, "Location: http://127.0.0.1:%d/metrics",
              stub_server_port (elsewhere));
    stub_config_t config = { 302, 0, 0, true, location };
    stub_server_t *moved = stub_server_start (&config);
    assert_non_null (moved);
    char url [128];
    s_url (url, sizeof url, stub_server_port (moved), "/metrics");
    al_scrape_target_t target = { url, NULL };
    al_scraper_t *scraper = s_scraper (0);
    al_scrape_result_t result;
    assert_int_equal (al_scraper_run (scraper, &target, 1, 2000, &result), 0);
    s_assert_failed (&result, 302, "HTTP 302");
    assert_int_equal (stub_server_requests (moved), 1);
    assert_int_equal (stub_server_connections (elsewhere), 0);
    al_scraper_destroy (&scraper);
    stub_server_stop (&moved);
    stub_server_stop (&elsewhere);
}

//  Only http and https: other schemes fail before any I/O, even to a live server.
static void
test_other_schemes_refused (void **state)
{
    (void) state;
    stub_server_t *server = s_stub (200, 0, 10, true);
    char urls [3][128];
    snprintf (urls [0], sizeof urls [0], "ftp://127.0.0.1:%d/metrics", stub_server_port (server));
    snprintf (urls [1], sizeof urls [1], "file:///etc/hostname");
    snprintf (urls [2], sizeof urls [2], "gopher://127.0.0.1:%d/", stub_server_port (server));
    al_scrape_target_t targets [3];
    for (int i = 0; i < 3; i++)
        targets [i] = (al_scrape_target_t) { urls [i], NULL };
    al_scraper_t *scraper = s_scraper (0);
    al_scrape_result_t results [3];
    assert_int_equal (al_scraper_run (scraper, targets, 3, 2000, results), 0);
    for (int i = 0; i < 3; i++) {
        assert_false (results [i].ok);
        assert_false (results [i].timed_out);
        assert_int_equal (results [i].status, 0);
        assert_null (results [i].body);
        if (!strstr (results [i].error, "protocol"))
            fail_msg ("%s: unexpected error '%s'", urls [i], results [i].error);
    }
    assert_int_equal (stub_server_connections (server), 0);
    al_scraper_destroy (&scraper);
    stub_server_stop (&server);
}

//  50 rounds on one scraper, the number of targets changing between rounds: every
//  round is right, bodies are the latest ones, and the stub's one connection was kept
//  alive throughout (handles and connections reused). ASan checks for leaks.
static void
test_reuse_across_rounds (void **state)
{
    (void) state;
    stub_server_t *stub = s_stub (200, 0, 100, true);
    int demo = s_demo_start ("3.0.0", NULL);
    char urls [3][128];
    s_url (urls [0], sizeof urls [0], stub_server_port (stub), "/metrics");
    s_url (urls [1], sizeof urls [1], demo, "/metrics");
    s_url (urls [2], sizeof urls [2], demo, "/healthz");
    al_scrape_target_t targets [3];
    for (int i = 0; i < 3; i++)
        targets [i] = (al_scrape_target_t) { urls [i], NULL };
    al_scraper_t *scraper = s_scraper (0);
    const int rounds = 50;
    for (int round = 0; round < rounds; round++) {
        size_t count = 1 + (size_t) round % 3;
        al_scrape_result_t results [3];
        assert_int_equal (al_scraper_run (scraper, targets, count, 5000, results), 0);
        s_assert_ok (&results [0], 100);
        if (count > 1) {
            s_assert_ok (&results [1], results [1].body_size);
            assert_non_null (strstr (results [1].body, "demo_service_info{version=\"3.0.0\"} 1"));
        }
        if (count > 2) {
            s_assert_ok (&results [2], results [2].body_size);
            assert_non_null (strstr (results [2].body, "\"status\":\"ok\""));
        }
    }
    assert_int_equal (stub_server_requests (stub), rounds);
    assert_int_equal (stub_server_connections (stub), 1);
    //  An empty round is allowed and does nothing.
    assert_int_equal (al_scraper_run (scraper, NULL, 0, 100, NULL), 0);
    assert_int_equal (stub_server_requests (stub), rounds);
    al_scraper_destroy (&scraper);
    stub_server_stop (&stub);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_demo_instances, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_targets_run_at_once, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_timeout, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_connection_refused, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_body_cap, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_default_body_cap, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_http_errors, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_no_redirect, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_other_schemes_refused, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_reuse_across_rounds, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
