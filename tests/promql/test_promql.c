/*  test_promql.c: the Prometheus provider (deploy/al_promql) without a Prometheus.

    Template expansion (escaping per kind of string literal, variables refused outside
    literals, unknown and unclosed names), the response parser on every result type
    and on hostile bodies, and the client against a scripted HTTP server
    (libmicrohttpd on a loopback port the kernel picks) that answers by query text:
    the query arrives intact (percent-encoding), six queries of one sample are in
    flight at once, HTTP errors carry the API's own reason, and timeouts, refused
    connections, oversized bodies and redirects are errors naming the provider.
*/
#include "deploy/al_promql.h"
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

//  --------------------------------------------------------------------------
//  Expansion

static const al_promql_labels_t s_labels = { "checkout", "production", "1.2.3", "checkout-0.1" };

static char *
s_expand (const char *template_text, const al_promql_labels_t *labels, char *error, size_t error_size)
{
    error [0] = 0;
    return al_promql_expand (template_text, labels, error, error_size);
}

static void
test_expand_plain (void **state)
{
    (void) state;
    char error [256];
    char *out = s_expand ("sum(rate(http_requests_total{service=\"{{service}}\",environment=\"{{environment}}\","
                          "version=\"{{version}}\",instance_id='{{instance}}'}[1m]))", &s_labels,
                          error, sizeof error);
    assert_non_null (out);
    assert_string_equal (out, "sum(rate(http_requests_total{service=\"checkout\",environment=\"production\","
                              "version=\"1.2.3\",instance_id='checkout-0.1'}[1m]))");
    free (out);
    //  No variables: unchanged. Raw strings take values as they are.
    out = s_expand ("up", &s_labels, error, sizeof error);
    assert_string_equal (out, "up");
    free (out);
    out = s_expand ("x{a=~`{{service}}.*`}", &s_labels, error, sizeof error);
    assert_string_equal (out, "x{a=~`checkout.*`}");
    free (out);
}

static void
test_expand_escapes (void **state)
{
    (void) state;
    char error [256];
    al_promql_labels_t hostile = { "a\"b\\c\nd'e\tf", "env", "v", NULL };
    char *out = s_expand ("x{s=\"{{service}}\"}", &hostile, error, sizeof error);
    assert_non_null (out);
    assert_string_equal (out, "x{s=\"a\\\"b\\\\c\\nd'e\\x09f\"}");
    free (out);
    out = s_expand ("x{s='{{service}}'}", &hostile, error, sizeof error);
    assert_string_equal (out, "x{s='a\"b\\\\c\\nd\\'e\\x09f'}");
    free (out);
    //  A value that tries to close the literal and add a matcher stays one value.
    al_promql_labels_t injection = { "x\"} or vector(0) #", "e", "v", "i" };
    out = s_expand ("sum(up{service=\"{{service}}\"})", &injection, error, sizeof error);
    assert_string_equal (out, "sum(up{service=\"x\\\"} or vector(0) #\"})");
    free (out);
    //  An escaped quote in the template does not end its literal.
    out = s_expand ("x{a=\"q\\\"{{version}}\"}", &s_labels, error, sizeof error);
    assert_string_equal (out, "x{a=\"q\\\"1.2.3\"}");
    free (out);
    //  A comment is copied as it is, braces included.
    out = s_expand ("up # {{nonsense\n", &s_labels, error, sizeof error);
    assert_string_equal (out, "up # {{nonsense\n");
    free (out);
}

static void
test_expand_errors (void **state)
{
    (void) state;
    char error [256];
    assert_null (s_expand ("x{a=\"{{servce}}\"}", &s_labels, error, sizeof error));
    assert_non_null (strstr (error, "offset 5: unknown {{servce}}"));
    assert_null (s_expand ("x{a=\"{{service\"}", &s_labels, error, sizeof error));
    assert_non_null (strstr (error, "unclosed {{"));
    assert_null (s_expand ("x{a=\"\"} + {{version}}", &s_labels, error, sizeof error));
    assert_non_null (strstr (error, "{{version}} outside a string literal"));
    al_promql_labels_t partial = { "svc", "env", "v", NULL };
    assert_null (s_expand ("x{a=\"{{instance}}\"}", &partial, error, sizeof error));
    assert_non_null (strstr (error, "{{instance}} has no value"));
    al_promql_labels_t tick = { "a`b", "env", "v", NULL };
    assert_null (s_expand ("x{a=`{{service}}`}", &tick, error, sizeof error));
    assert_non_null (strstr (error, "backquote"));
}

//  --------------------------------------------------------------------------
//  Parsing

static al_promql_status_t
s_parse (const char *body, double *value, char *error, size_t error_size)
{
    error [0] = 0;
    return al_promql_parse_response (body, strlen (body), value, error, error_size);
}

static void
test_parse_results (void **state)
{
    (void) state;
    char error [256];
    double value = 0;
    assert_int_equal (s_parse ("{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":"
                               "[{\"metric\":{\"job\":\"x\"},\"value\":[1700000000.123,\"1.5\"]}]}}",
                               &value, error, sizeof error), AL_PROMQL_OK);
    assert_true (value == 1.5);
    assert_int_equal (s_parse ("{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":"
                               "[1700000000,\"-2e3\"]},\"warnings\":[]}", &value, error, sizeof error),
                      AL_PROMQL_OK);
    assert_true (value == -2000);
    assert_int_equal (s_parse ("{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[]}}",
                               &value, error, sizeof error), AL_PROMQL_NO_DATA);
    assert_true (isnan (value));
    const char *no_data [] = { "NaN", "+Inf", "-Inf" };
    for (size_t i = 0; i < 3; i++) {
        char body [256];
        snprintf (body, sizeof body, "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":"
                  "[{\"metric\":{},\"value\":[1,\"%s\"]}]}}", no_data [i]);
        value = 0;
        assert_int_equal (s_parse (body, &value, error, sizeof error), AL_PROMQL_NO_DATA);
        assert_true (isnan (value));
    }
}

static void
test_parse_errors (void **state)
{
    (void) state;
    struct { const char *body; const char *reason; } cases [] = {
        { "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"parse error: unexpected \\n\"}",
          "status error: bad_data: parse error: unexpected ?" },
        { "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[{\"metric\":{},\"value\":[1,\"1\"]},"
          "{\"metric\":{},\"value\":[1,\"2\"]}]}}", "2 series: aggregate the query to one" },
        { "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[]}}", "resultType matrix" },
        { "{\"status\":\"success\",\"data\":{\"resultType\":\"string\",\"result\":[1,\"x\"]}}", "resultType string" },
        { "{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":[1,\"abc\"]}}",
          "value: \"abc\" is not a number" },
        { "{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":[1,\" 1\"]}}", "is not a number" },
        { "{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":[1,\"\"]}}", "is not a number" },
        { "{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":[1,1.5]}}", "value: not [" },
        { "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[{\"metric\":{}}]}}", "value: not [" },
        { "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[3]}}", "not an object" },
        { "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":{}}}", "not an array" },
        { "{\"status\":\"success\",\"data\":{}}", "no resultType" },
        { "{\"status\":\"success\"}", "no resultType" },
        { "{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":[1,\"1\"]},"
          "\"warnings\":[\"PromQL warning: bucket label \\\"le\\\" is missing\"]}",
          "warning: PromQL warning: bucket label \"le\" is missing" },
        { "{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":[1,\"1\"]},"
          "\"warnings\":[3]}", "warning: (not a string)" },
        { "{\"status\":\"pending\"}", "neither success nor error" },
        { "{\"data\":{}}", "no \"status\"" },
        { "[1,2]", "no \"status\"" },
        { "<html>503</html>", "not JSON" },
        { "", "not JSON" },
        { "{\"status\":\"success\",\"status\":\"error\"}", "not JSON" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        char error [256];
        double value = 7;
        if (s_parse (cases [i].body, &value, error, sizeof error) != AL_PROMQL_ERROR
        ||  !strstr (error, cases [i].reason) || !isnan (value))
            fail_msg ("case %zu: %s gave \"%s\" (wanted \"%s\")", i, cases [i].body, error, cases [i].reason);
    }
    //  Bytes that are not text, and a NUL in the middle.
    char error [256];
    double value;
    const char binary [] = { '{', 0, '}', (char) 0xff };
    assert_int_equal (al_promql_parse_response (binary, sizeof binary, &value, error, sizeof error),
                      AL_PROMQL_ERROR);
    assert_int_equal (al_promql_parse_response (NULL, 0, &value, error, sizeof error), AL_PROMQL_ERROR);
}

//  --------------------------------------------------------------------------
//  A scripted Prometheus: the answer depends on the query text.

typedef struct {
    struct MHD_Daemon *daemon;
    int port;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int in_flight;
    int max_in_flight;
    int barrier;                    // "wait" queries hold until this many are in flight
    bool released;                  // the barrier was reached once
    int requests;
    bool stopping;
    char last_timeout [32];
} s_server_t;

static const char *s_one_query = "sum(rate(x{service=\"a b\",code=~\"5..\"}[1m])) / 2 + 1 & # ?%";

static enum MHD_Result
s_reply (struct MHD_Connection *connection, unsigned status, const char *body, const char *location)
{
    struct MHD_Response *response = MHD_create_response_from_buffer (strlen (body), (void *) body,
                                                                     MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header (response, "Content-Type", "application/json");
    if (location)
        MHD_add_response_header (response, "Location", location);
    enum MHD_Result result = MHD_queue_response (connection, status, response);
    MHD_destroy_response (response);
    return result;
}

static const char *
s_vector (double value, char *buffer, size_t size)
{
    snprintf (buffer, size, "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":"
              "[{\"metric\":{},\"value\":[1700000000.5,\"%g\"]}]}}", value);
    return buffer;
}

static enum MHD_Result
s_handle (void *arg, struct MHD_Connection *connection, const char *url, const char *method,
          const char *version, const char *upload_data, size_t *upload_data_size, void **context)
{
    (void) method; (void) version; (void) upload_data; (void) upload_data_size; (void) context;
    s_server_t *self = arg;
    const char *query = MHD_lookup_connection_value (connection, MHD_GET_ARGUMENT_KIND, "query");
    const char *timeout = MHD_lookup_connection_value (connection, MHD_GET_ARGUMENT_KIND, "timeout");
    char body [512];
    pthread_mutex_lock (&self->lock);
    self->requests++;
    snprintf (self->last_timeout, sizeof self->last_timeout, "%s", timeout ? timeout : "");
    pthread_mutex_unlock (&self->lock);
    if (strcmp (url, "/api/v1/query") != 0 || !query)
        return s_reply (connection, 404, "not found", NULL);
    if (strcmp (query, s_one_query) == 0)
        return s_reply (connection, 200, s_vector (1.5, body, sizeof body), NULL);
    if (strncmp (query, "value ", 6) == 0)
        return s_reply (connection, 200, s_vector (atof (query + 6), body, sizeof body), NULL);
    if (strcmp (query, "empty") == 0)
        return s_reply (connection, 200, "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[]}}", NULL);
    if (strcmp (query, "bad") == 0)
        return s_reply (connection, 400, "{\"status\":\"error\",\"errorType\":\"bad_data\","
                        "\"error\":\"1:1: parse error: unexpected identifier\"}", NULL);
    if (strcmp (query, "unavailable") == 0)
        return s_reply (connection, 503, "<html>down for maintenance</html>", NULL);
    if (strcmp (query, "redirect") == 0)
        return s_reply (connection, 302, "", "http://127.0.0.1:1/api/v1/query?query=up");
    if (strcmp (query, "big") == 0) {
        size_t size = 2 * AL_PROMQL_MAX_BODY;
        char *huge = malloc (size);
        memset (huge, ' ', size);
        struct MHD_Response *response = MHD_create_response_from_buffer (size, huge, MHD_RESPMEM_MUST_FREE);
        enum MHD_Result result = MHD_queue_response (connection, 200, response);
        MHD_destroy_response (response);
        return result;
    }
    if (strncmp (query, "wait ", 5) == 0 || strcmp (query, "slow") == 0) {
        //  "wait N": hold until barrier queries are in flight at once (or 10 s), then
        //  answer N. "slow": hold until the server stops, answer nothing useful.
        struct timespec deadline;
        clock_gettime (CLOCK_REALTIME, &deadline);
        deadline.tv_sec += 10;
        pthread_mutex_lock (&self->lock);
        self->in_flight++;
        if (self->in_flight > self->max_in_flight)
            self->max_in_flight = self->in_flight;
        if (self->in_flight >= self->barrier)
            self->released = true;
        pthread_cond_broadcast (&self->changed);
        bool slow = strcmp (query, "slow") == 0;
        while (!self->stopping && (slow || !self->released)
           &&  pthread_cond_timedwait (&self->changed, &self->lock, &deadline) == 0)
            ;
        pthread_mutex_unlock (&self->lock);
        enum MHD_Result result = s_reply (connection, 200, s_vector (slow ? 0 : atof (query + 5), body, sizeof body),
                                          NULL);
        pthread_mutex_lock (&self->lock);
        self->in_flight--;
        pthread_mutex_unlock (&self->lock);
        return result;
    }
    return s_reply (connection, 200, "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":"
                    "[{\"metric\":{},\"value\":[1,\"0\"]}]}}", NULL);
}

static s_server_t *
s_server_start (void)
{
    s_server_t *self = calloc (1, sizeof (s_server_t));
    assert_non_null (self);
    pthread_mutex_init (&self->lock, NULL);
    pthread_cond_init (&self->changed, NULL);
    struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = 0,
                                   .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    self->daemon = MHD_start_daemon (MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD
                                   | MHD_USE_AUTO, 0, NULL, NULL, s_handle, self,
                                     MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &address, MHD_OPTION_END);
    assert_non_null (self->daemon);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info (self->daemon, MHD_DAEMON_INFO_BIND_PORT);
    assert_true (info && info->port > 0);
    self->port = info->port;
    return self;
}

static void
s_server_stop (s_server_t **self_p)
{
    s_server_t *self = *self_p;
    if (!self)
        return;
    pthread_mutex_lock (&self->lock);
    self->stopping = true;
    pthread_cond_broadcast (&self->changed);
    pthread_mutex_unlock (&self->lock);
    MHD_stop_daemon (self->daemon);
    pthread_cond_destroy (&self->changed);
    pthread_mutex_destroy (&self->lock);
    free (self);
    *self_p = NULL;
}

//  A loopback port nobody listens on.
static int
s_closed_port (void)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    socklen_t length = sizeof address;
    assert_int_equal (bind (fd, (struct sockaddr *) &address, sizeof address), 0);
    assert_int_equal (getsockname (fd, (struct sockaddr *) &address, &length), 0);
    close (fd);
    return ntohs (address.sin_port);
}

static al_promql_t *
s_client (int port, int timeout_ms, char *url, size_t url_size)
{
    char error [256] = "";
    snprintf (url, url_size, "http://127.0.0.1:%d", port);
    al_promql_t *client = al_promql_new (url, timeout_ms, error, sizeof error);
    if (!client)
        fail_msg ("al_promql_new: %s", error);
    return client;
}

//  --------------------------------------------------------------------------
//  The client

static void
test_new_checks_url (void **state)
{
    (void) state;
    char error [256];
    const char *refused [] = { "ftp://127.0.0.1:9090", "127.0.0.1:9090", "http://", "http:///x",
                               "http://127.0.0.1:9090/?x=1", "http://127.0.0.1:9090/#x",
                               "http://127.0.0.1 :9090" };
    for (size_t i = 0; i < sizeof refused / sizeof refused [0]; i++) {
        error [0] = 0;
        al_promql_t *client = al_promql_new (refused [i], 1000, error, sizeof error);
        if (client || !strstr (error, "prometheus url"))
            fail_msg ("%s: accepted or no reason (%s)", refused [i], error);
    }
    error [0] = 0;
    assert_null (al_promql_new ("http://admin:secret@127.0.0.1:9090", 1000, error, sizeof error));
    assert_non_null (strstr (error, "credentials"));
    assert_null (strstr (error, "secret"));
    al_promql_t *client = al_promql_new ("https://example.org/prometheus//", 1000, error, sizeof error);
    assert_non_null (client);
    assert_string_equal (al_promql_url (client), "https://example.org/prometheus");
    al_promql_destroy (&client);
    assert_null (client);
    al_promql_destroy (&client);
    assert_string_equal (al_promql_signal_name (0), "requests_per_second");
    assert_string_equal (al_promql_signal_name (5), "memory_percent");
    assert_null (al_promql_signal_name (6));
    assert_null (al_promql_signal_name (-1));
}

static void
test_query (void **state)
{
    (void) state;
    s_server_t *server = s_server_start ();
    char url [64], error [512];
    al_promql_t *client = s_client (server->port, 5000, url, sizeof url);
    double value = 0;
    //  The query text arrives exactly as written (spaces, quotes, braces, &, #, ?, %).
    error [0] = 0;
    assert_int_equal (al_promql_query (client, s_one_query, &value, error, sizeof error), AL_PROMQL_OK);
    assert_true (value == 1.5);
    assert_string_equal (server->last_timeout, "5.000");
    assert_int_equal (al_promql_query (client, "empty", &value, error, sizeof error), AL_PROMQL_NO_DATA);
    assert_true (isnan (value));

    struct { const char *query; const char *reason; } failures [] = {
        { "bad", "HTTP 400: bad_data: 1:1: parse error: unexpected identifier" },
        { "unavailable", "HTTP 503" },
        { "redirect", "HTTP 302" },
        { "big", "response above 1048576 bytes" },
    };
    for (size_t i = 0; i < sizeof failures / sizeof failures [0]; i++) {
        char wanted [256];
        snprintf (wanted, sizeof wanted, "prometheus %s: %s", url, failures [i].reason);
        value = 0;
        error [0] = 0;
        if (al_promql_query (client, failures [i].query, &value, error, sizeof error) != AL_PROMQL_ERROR
        ||  strncmp (error, wanted, strlen (wanted)) != 0 || !isnan (value))
            fail_msg ("%s: \"%s\", wanted \"%s\"", failures [i].query, error, wanted);
    }
    //  Still usable after failures.
    assert_int_equal (al_promql_query (client, "value 3", &value, error, sizeof error), AL_PROMQL_OK);
    assert_true (value == 3);
    al_promql_destroy (&client);
    s_server_stop (&server);
}

static void
test_query_timeout_and_refused (void **state)
{
    (void) state;
    s_server_t *server = s_server_start ();
    char url [64], error [512], wanted [256];
    al_promql_t *client = s_client (server->port, 300, url, sizeof url);
    double value = 0;
    assert_int_equal (al_promql_query (client, "slow", &value, error, sizeof error), AL_PROMQL_ERROR);
    snprintf (wanted, sizeof wanted, "prometheus %s: timeout after 300 ms", url);
    assert_string_equal (error, wanted);
    assert_true (isnan (value));
    al_promql_destroy (&client);
    s_server_stop (&server);

    client = s_client (s_closed_port (), 2000, url, sizeof url);
    value = 0;
    assert_int_equal (al_promql_query (client, "up", &value, error, sizeof error), AL_PROMQL_ERROR);
    snprintf (wanted, sizeof wanted, "prometheus %s: connection refused", url);
    assert_string_equal (error, wanted);
    assert_true (isnan (value));
    //  A sample against nobody: every configured signal fails, none is zero.
    const char *queries [AL_PROMQL_SIGNALS] = { "a", "b", NULL, "d", "e", "f" };
    double values [AL_PROMQL_SIGNALS];
    al_promql_status_t statuses [AL_PROMQL_SIGNALS];
    assert_int_equal (al_promql_sample (client, queries, &s_labels, values, statuses, error, sizeof error), 5);
    snprintf (wanted, sizeof wanted, "prometheus %s: requests_per_second: connection refused", url);
    assert_string_equal (error, wanted);
    for (int i = 0; i < AL_PROMQL_SIGNALS; i++) {
        assert_true (isnan (values [i]));
        assert_int_equal (statuses [i], i == 2 ? AL_PROMQL_NO_DATA : AL_PROMQL_ERROR);
    }
    al_promql_destroy (&client);
}

static void
test_sample_concurrent (void **state)
{
    (void) state;
    s_server_t *server = s_server_start ();
    server->barrier = 5;
    char url [64], error [512] = "";
    al_promql_t *client = s_client (server->port, 20000, url, sizeof url);
    //  Five queries that each hold until all five are in flight: they can only all
    //  answer promptly if they run at once. The sixth is not configured.
    const char *queries [AL_PROMQL_SIGNALS] = {
        "wait 10", "wait 0.25", NULL, "wait 400", "wait 37.5", "wait 51"
    };
    double values [AL_PROMQL_SIGNALS];
    al_promql_status_t statuses [AL_PROMQL_SIGNALS];
    assert_int_equal (al_promql_sample (client, queries, &s_labels, values, statuses, error, sizeof error), 0);
    assert_int_equal (server->max_in_flight, 5);
    double wanted [] = { 10, 0.25, NAN, 400, 37.5, 51 };
    for (int i = 0; i < AL_PROMQL_SIGNALS; i++) {
        if (i == 2) {
            assert_true (isnan (values [i]));
            assert_int_equal (statuses [i], AL_PROMQL_NO_DATA);
        }
        else {
            assert_int_equal (statuses [i], AL_PROMQL_OK);
            assert_true (values [i] == wanted [i]);
        }
    }
    //  Mixed outcomes, templates expanded: a template error is reported before the
    //  query errors and fails only its own signal; requests_per_second is expanded.
    server->barrier = 0;
    char expected_query [160];
    const char *mixed [AL_PROMQL_SIGNALS] = {
        "value {{nope}}", "empty", "bad", "value 7", "value 42 # \"{{service}}\"", "value NaN"
    };
    int failed = al_promql_sample (client, mixed, &s_labels, values, statuses, error, sizeof error);
    assert_int_equal (failed, 2);
    snprintf (expected_query, sizeof expected_query, "prometheus %s: requests_per_second: offset 6: unknown "
              "{{nope}}", url);
    assert_non_null (strstr (error, expected_query));
    assert_non_null (strstr (error, "(query template)"));
    al_promql_status_t wanted_status [] = { AL_PROMQL_ERROR, AL_PROMQL_NO_DATA, AL_PROMQL_ERROR,
                                            AL_PROMQL_OK, AL_PROMQL_OK, AL_PROMQL_NO_DATA };
    for (int i = 0; i < AL_PROMQL_SIGNALS; i++)
        assert_int_equal (statuses [i], wanted_status [i]);
    assert_true (values [3] == 7 && values [4] == 42);
    assert_true (isnan (values [0]) && isnan (values [1]) && isnan (values [2]) && isnan (values [5]));
    //  Without the template error, the first failure is the server's reason.
    mixed [0] = "value 1";
    assert_int_equal (al_promql_sample (client, mixed, &s_labels, values, NULL, error, sizeof error), 1);
    char wanted_error [256];
    snprintf (wanted_error, sizeof wanted_error, "prometheus %s: latency_p50_ms: HTTP 400: bad_data", url);
    assert_non_null (strstr (error, wanted_error));
    assert_true (values [0] == 1);
    al_promql_destroy (&client);
    s_server_stop (&server);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_expand_plain),
        cmocka_unit_test (test_expand_escapes),
        cmocka_unit_test (test_expand_errors),
        cmocka_unit_test (test_parse_results),
        cmocka_unit_test (test_parse_errors),
        cmocka_unit_test (test_new_checks_url),
        cmocka_unit_test (test_query),
        cmocka_unit_test (test_query_timeout_and_refused),
        cmocka_unit_test (test_sample_concurrent),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
