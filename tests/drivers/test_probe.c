/*  test_probe.c: al_probe_http against a real demo service, a closed port (connection
    refused) and a socket that accepts connections but never answers (timeout).

    The demo service is spawned directly (not through a driver) on a free port and
    killed and reaped in the teardown. Nothing asserts timing beyond "the probe came
    back and said it timed out".
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include "deploy/al_probe.h"
#include "driver_test_util.h"

extern char **environ;

typedef struct {
    pid_t pid;
    int port;
    char base [64];
} s_fixture_t;

//  A bound, listening socket on 127.0.0.1 (never accepted from); its port in *port_p.
static int
s_listener (int *port_p)
{
    int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true (fd >= 0);
    struct sockaddr_in address = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    assert_int_equal (bind (fd, (struct sockaddr *) &address, sizeof (address)), 0);
    socklen_t length = sizeof (address);
    assert_int_equal (getsockname (fd, (struct sockaddr *) &address, &length), 0);
    assert_int_equal (listen (fd, 8), 0);
    *port_p = ntohs (address.sin_port);
    return fd;
}

static int
s_setup (void **state)
{
    s_fixture_t *self = calloc (1, sizeof (s_fixture_t));
    assert_non_null (self);
    int fd = s_listener (&self->port);
    close (fd);
    char port [16];
    snprintf (port, sizeof (port), "%d", self->port);
    char *argv [] = { (char *) dt_demo_service (), "--port", port, "--fail-readiness", NULL };
    posix_spawnattr_t attributes;
    posix_spawnattr_init (&attributes);
    posix_spawnattr_setflags (&attributes, POSIX_SPAWN_SETPGROUP);
    assert_int_equal (posix_spawn (&self->pid, argv [0], NULL, &attributes, argv, environ), 0);
    posix_spawnattr_destroy (&attributes);
    snprintf (self->base, sizeof (self->base), "http://127.0.0.1:%d", self->port);
    *state = self;
    //  Wait until it answers (its liveness), at most 20 s.
    char url [128];
    snprintf (url, sizeof (url), "%s/healthz", self->base);
    al_probe_result_t result;
    for (int i = 0; i < 400 && !al_probe_http (url, 500, &result); i++)
        usleep (50000);
    return 0;
}

static int
s_teardown (void **state)
{
    s_fixture_t *self = *state;
    if (self->pid > 0) {
        kill (self->pid, SIGKILL);
        waitpid (self->pid, NULL, 0);
    }
    free (self);
    return 0;
}

static void
test_liveness_and_failed_readiness (void **state)
{
    s_fixture_t *self = *state;
    char url [128];
    al_probe_result_t result;
    snprintf (url, sizeof (url), "%s/healthz", self->base);
    assert_true (al_probe_http (url, 2000, &result));
    assert_true (result.ok);
    assert_int_equal (result.status, 200);
    assert_false (result.timed_out);
    assert_true (result.latency_ms >= 0);
    assert_string_equal (result.detail, "200");
    //  The service runs with --fail-readiness: a 503 is a failed probe, status kept.
    snprintf (url, sizeof (url), "%s/readyz", self->base);
    assert_false (al_probe_http (url, 2000, &result));
    assert_int_equal (result.status, 503);
    assert_string_equal (result.detail, "503");
    snprintf (url, sizeof (url), "%s/no-such-path", self->base);
    assert_false (al_probe_http (url, 2000, &result));
    assert_int_equal (result.status, 404);
    //  /metrics: a body larger than a probe needs is fine.
    snprintf (url, sizeof (url), "%s/metrics", self->base);
    assert_true (al_probe_http (url, 2000, &result));
}

//  Smoke checks (al_probe_http_check): the status expected, the body's text.
static void
test_smoke_check (void **state)
{
    s_fixture_t *self = *state;
    char url [128];
    al_probe_result_t result;
    snprintf (url, sizeof (url), "%s/healthz", self->base);
    assert_true (al_probe_http_check (url, 2000, 200, "ok", &result));
    assert_non_null (strstr (result.detail, "body contains the expected text"));
    assert_false (al_probe_http_check (url, 2000, 200, "no such text in the body", &result));
    assert_non_null (strstr (result.detail, "lacks the expected text"));
    assert_false (al_probe_http_check (url, 2000, 204, NULL, &result));
    assert_string_equal (result.detail, "status 200, expected 204");
    //  Any 2xx without an expected status; a 503 is not one.
    snprintf (url, sizeof (url), "%s/readyz", self->base);
    assert_false (al_probe_http_check (url, 2000, 0, NULL, &result));
    assert_string_equal (result.detail, "status 503, expected 2xx");
    assert_true (al_probe_http_check (url, 2000, 503, NULL, &result));
    //  A body larger than 64 KiB is cut, never read whole.
    snprintf (url, sizeof (url), "%s/metrics", self->base);
    assert_true (al_probe_http_check (url, 2000, 200, "# TYPE", &result));
}

static void
test_connection_refused_is_a_failed_probe (void **state)
{
    (void) state;
    int port;
    int fd = s_listener (&port);
    close (fd);                 // nothing listens there now
    char url [128];
    snprintf (url, sizeof (url), "http://127.0.0.1:%d/healthz", port);
    al_probe_result_t result;
    assert_false (al_probe_http (url, 2000, &result));
    assert_false (result.ok);
    assert_int_equal (result.status, 0);
    assert_false (result.timed_out);
    assert_true (strlen (result.detail) > 0);
    assert_string_not_equal (result.detail, "200");
}

static void
test_silent_server_times_out (void **state)
{
    (void) state;
    int port;
    int fd = s_listener (&port);        // the kernel accepts; nobody answers
    char url [128];
    snprintf (url, sizeof (url), "http://127.0.0.1:%d/readyz", port);
    al_probe_result_t result;
    assert_false (al_probe_http (url, 200, &result));
    assert_true (result.timed_out);
    assert_int_equal (result.status, 0);
    assert_non_null (strstr (result.detail, "timeout"));
    close (fd);
    //  Not an HTTP URL at all.
    assert_false (al_probe_http ("file:///etc/passwd", 200, &result));
    assert_int_equal (result.status, 0);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_liveness_and_failed_readiness, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_smoke_check, s_setup, s_teardown),
        cmocka_unit_test (test_connection_refused_is_a_failed_probe),
        cmocka_unit_test (test_silent_server_times_out),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
