/*  test_console.c: the web console's HTTP server (console/al_console.h), over real HTTP.

    Each test starts a server on 127.0.0.1 with a port from the kernel and an api
    function of its own, and talks to it with libcurl. Shown:
      - pages: every embedded asset is served with its content type; "/" is the agents
        page; an unknown path is 404;
      - headers: every response (pages, API, errors) carries a CSP without
        'unsafe-inline' and with frame-ancestors 'none', nosniff, no-referrer;
      - the JSON API: a hostile value (HTML, script, quotes, control characters) comes
        back as the exact string inside application/json, never as markup; an unknown or
        malformed name is 404; a failing source gives its status and error;
      - read-only: POST is 405;
      - access: a non-loopback address without a token is refused at start; bad listen
        addresses and short token files are refused with the field named; with a token,
        no credentials or a wrong one is 401 and the Bearer token or the cookie that
        /login sets is let in; without a token a Host header that is not loopback is 403;
      - the event stream: published events arrive in order as SSE records, a new stream
        gets the kept history, Last-Event-ID resumes after it;
      - the pages' code: no innerHTML, no eval, no inline script, handler or style, no
        address outside the console (no CDN).
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "console/al_console.h"
#include "agents/al_init.h"
#include "policies/al_policy.h"
#include "proto/al_codec.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_HOSTILE "<img src=x onerror=alert(1)><script>alert(\"x\")</script>'\x01\n</pre>"

typedef struct {
    char *body;
    size_t size;
    char *headers;
    size_t headers_size;
    long status;
    size_t stop_after_records;  // stream: stop after this many "\n\n" records (0: never)
} s_reply_t;

static size_t
s_append (char **buffer, size_t *size, const char *data, size_t length)
{
    char *grown = (char *) realloc (*buffer, *size + length + 1);
    assert_non_null (grown);
    memcpy (grown + *size, data, length);
    *size += length;
    grown [*size] = 0;
    *buffer = grown;
    return length;
}

static size_t
s_on_body (char *data, size_t size, size_t count, void *arg)
{
    s_reply_t *reply = (s_reply_t *) arg;
    s_append (&reply->body, &reply->size, data, size * count);
    if (reply->stop_after_records) {
        size_t records = 0;
        for (const char *at = reply->body; (at = strstr (at, "\n\n")); at += 2)
            if (at [-1] != '\n')
                records++;
        //  Keepalive comments count too; tests publish before connecting.
        if (records >= reply->stop_after_records)
            return 0;           // abort the transfer: we have what we wanted
    }
    return size * count;
}

static size_t
s_on_header (char *data, size_t size, size_t count, void *arg)
{
    s_reply_t *reply = (s_reply_t *) arg;
    return s_append (&reply->headers, &reply->headers_size, data, size * count);
}

static void
s_reply_free (s_reply_t *reply)
{
    free (reply->body);
    free (reply->headers);
    memset (reply, 0, sizeof *reply);
}

//  GET (or METHOD) base + path with extra headers (NULL-terminated list, may be NULL).
static void
s_request (uint16_t port, const char *method, const char *path, const char *const *headers, s_reply_t *reply)
{
    char url [512];
    snprintf (url, sizeof url, "http://127.0.0.1:%u%s", (unsigned) port, path);
    CURL *curl = curl_easy_init ();
    assert_non_null (curl);
    struct curl_slist *list = NULL;
    for (size_t index = 0; headers && headers [index]; index++)
        list = curl_slist_append (list, headers [index]);
    curl_easy_setopt (curl, CURLOPT_URL, url);
    curl_easy_setopt (curl, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, s_on_body);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, reply);
    curl_easy_setopt (curl, CURLOPT_HEADERFUNCTION, s_on_header);
    curl_easy_setopt (curl, CURLOPT_HEADERDATA, reply);
    curl_easy_setopt (curl, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt (curl, CURLOPT_NOPROXY, "*");
    if (strcmp (method, "POST") == 0)
        curl_easy_setopt (curl, CURLOPT_POSTFIELDS, "x=1");
    CURLcode code = curl_easy_perform (curl);
    if (!reply->stop_after_records)
        assert_int_equal (code, CURLE_OK);
    curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &reply->status);
    curl_slist_free_all (list);
    curl_easy_cleanup (curl);
    if (!reply->body)
        s_append (&reply->body, &reply->size, "", 0);
    if (!reply->headers)
        s_append (&reply->headers, &reply->headers_size, "", 0);
}

//  The value of header NAME (case-insensitive) in reply, copied into value ("" if none).
static void
s_header (const s_reply_t *reply, const char *name, char *value, size_t size)
{
    value [0] = 0;
    size_t length = strlen (name);
    for (const char *line = reply->headers; line && *line; ) {
        const char *end = strstr (line, "\r\n");
        if (!end)
            break;
        if (strncasecmp (line, name, length) == 0 && line [length] == ':') {
            const char *start = line + length + 1;
            while (*start == ' ')
                start++;
            snprintf (value, size, "%.*s", (int) (end - start), start);
            return;
        }
        line = end + 2;
    }
}

static void
s_assert_security_headers (const s_reply_t *reply)
{
    char value [1024];
    s_header (reply, "Content-Security-Policy", value, sizeof value);
    assert_non_null (strstr (value, "frame-ancestors 'none'"));
    assert_non_null (strstr (value, "script-src 'self'"));
    assert_non_null (strstr (value, "default-src 'none'"));
    assert_null (strstr (value, "unsafe-inline"));
    assert_null (strstr (value, "unsafe-eval"));
    s_header (reply, "X-Content-Type-Options", value, sizeof value);
    assert_string_equal (value, "nosniff");
    s_header (reply, "Referrer-Policy", value, sizeof value);
    assert_string_equal (value, "no-referrer");
    s_header (reply, "X-Frame-Options", value, sizeof value);
    assert_string_equal (value, "DENY");
}

//  The test's api: "hostile" returns hostile strings, "broken" fails with 503.
static json_t *
s_api (void *arg, const char *name, const al_console_request_t *request, int *status, char *error,
       size_t error_size)
{
    int *calls = (int *) arg;
    (*calls)++;
    if (strcmp (name, "hostile") == 0) {
        const char *echo = al_console_request_arg (request, "echo");
        return json_pack ("{s:s, s:s, s:s?}", "summary", S_HOSTILE, "service", "<svg onload=alert(2)>",
                          "echo", echo);
    }
    if (strcmp (name, "broken") == 0) {
        *status = 503;
        snprintf (error, error_size, "no answer from the broker <b>");
        return NULL;
    }
    *status = 404;
    snprintf (error, error_size, "no API %s", name);
    return NULL;
}

typedef struct {
    al_console_t *console;
    int calls;
    char token_path [128];
} s_fixture_t;

static int
s_setup (void **state)
{
    s_fixture_t *f = (s_fixture_t *) calloc (1, sizeof *f);
    assert_non_null (f);
    al_console_options_t options = { .listen = "127.0.0.1:0", .api = s_api, .api_arg = &f->calls };
    char error [512] = "";
    f->console = al_console_new (&options, error, sizeof error);
    if (!f->console)
        fail_msg ("al_console_new: %s", error);
    assert_true (al_console_port (f->console) > 0);
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    s_fixture_t *f = (s_fixture_t *) *state;
    al_console_destroy (&f->console);
    assert_null (f->console);
    if (f->token_path [0])
        unlink (f->token_path);
    free (f);
    return 0;
}

static void
test_pages_and_headers (void **state)
{
    s_fixture_t *f = (s_fixture_t *) *state;
    uint16_t port = al_console_port (f->console);
    assert_true (al_console_asset_count () >= 8);
    const char *pages [] = { "/index.html", "/releases.html", "/approvals.html", "/soak.html", "/audit.html" };
    for (size_t index = 0; index < sizeof pages / sizeof pages [0]; index++)
        assert_non_null (al_console_asset_find (pages [index]));
    for (size_t index = 0; index < al_console_asset_count (); index++) {
        const al_console_asset_t *asset = al_console_asset_at (index);
        s_reply_t reply = { 0 };
        s_request (port, "GET", asset->path, NULL, &reply);
        assert_int_equal (reply.status, 200);
        assert_int_equal (reply.size, asset->size);
        assert_memory_equal (reply.body, asset->data, asset->size);
        char type [128];
        s_header (&reply, "Content-Type", type, sizeof type);
        assert_string_equal (type, asset->content_type);
        s_assert_security_headers (&reply);
        s_reply_free (&reply);
    }
    s_reply_t reply = { 0 };
    s_request (port, "GET", "/", NULL, &reply);
    assert_int_equal (reply.status, 200);
    assert_non_null (strstr (reply.body, "<title>airlock console: agents</title>"));
    s_reply_free (&reply);
    s_request (port, "GET", "/nosuch.html", NULL, &reply);
    assert_int_equal (reply.status, 404);
    s_assert_security_headers (&reply);
    s_reply_free (&reply);
    s_request (port, "GET", "/../CMakeLists.txt", NULL, &reply);
    assert_int_equal (reply.status, 404);
    s_reply_free (&reply);
    //  Read-only: no other method.
    s_request (port, "POST", "/api/hostile", NULL, &reply);
    assert_int_equal (reply.status, 405);
    s_assert_security_headers (&reply);
    s_reply_free (&reply);
    assert_int_equal (f->calls, 0);
}

static void
test_api_hostile_values_stay_data (void **state)
{
    s_fixture_t *f = (s_fixture_t *) *state;
    uint16_t port = al_console_port (f->console);
    s_reply_t reply = { 0 };
    s_request (port, "GET", "/api/hostile?echo=%3Cscript%3Ealert(3)%3C%2Fscript%3E", NULL, &reply);
    assert_int_equal (reply.status, 200);
    s_assert_security_headers (&reply);
    char type [128];
    s_header (&reply, "Content-Type", type, sizeof type);
    assert_string_equal (type, "application/json");
    json_error_t error;
    json_t *body = json_loads (reply.body, 0, &error);
    assert_non_null (body);
    assert_string_equal (json_string_value (json_object_get (body, "summary")), S_HOSTILE);
    assert_string_equal (json_string_value (json_object_get (body, "service")), "<svg onload=alert(2)>");
    assert_string_equal (json_string_value (json_object_get (body, "echo")), "<script>alert(3)</script>");
    json_decref (body);
    //  Control characters are escaped in the JSON text itself.
    assert_null (strchr (reply.body, '\x01'));
    s_reply_free (&reply);

    s_request (port, "GET", "/api/broken", NULL, &reply);
    assert_int_equal (reply.status, 503);
    s_assert_security_headers (&reply);
    body = json_loads (reply.body, 0, &error);
    assert_non_null (body);
    assert_string_equal (json_string_value (json_object_get (body, "error")), "no answer from the broker <b>");
    json_decref (body);
    s_reply_free (&reply);
    s_request (port, "GET", "/api/nosuch", NULL, &reply);
    assert_int_equal (reply.status, 404);
    s_reply_free (&reply);
    int before = f->calls;
    s_request (port, "GET", "/api/Bad%20Name", NULL, &reply);
    assert_int_equal (reply.status, 404);
    assert_int_equal (f->calls, before);   // a malformed name never reaches the api
    s_reply_free (&reply);
}

static void
test_host_header_must_be_loopback (void **state)
{
    s_fixture_t *f = (s_fixture_t *) *state;
    uint16_t port = al_console_port (f->console);
    const char *evil [] = { "Host: attacker.example", NULL };
    s_reply_t reply = { 0 };
    s_request (port, "GET", "/api/hostile", evil, &reply);
    assert_int_equal (reply.status, 403);
    assert_non_null (strstr (reply.body, "loopback"));
    s_reply_free (&reply);
    const char *local [] = { "Host: localhost:1234", NULL };
    s_request (port, "GET", "/index.html", local, &reply);
    assert_int_equal (reply.status, 200);
    s_reply_free (&reply);
    assert_true (al_console_host_is_loopback ("127.0.0.1"));
    assert_true (al_console_host_is_loopback ("127.1.2.3"));
    assert_true (al_console_host_is_loopback ("::1"));
    assert_true (al_console_host_is_loopback ("localhost"));
    assert_false (al_console_host_is_loopback ("0.0.0.0"));
    assert_false (al_console_host_is_loopback ("10.0.0.1"));
    assert_false (al_console_host_is_loopback ("127.0.0.1.attacker.example"));
    assert_false (al_console_host_is_loopback (""));
    assert_false (al_console_host_is_loopback (NULL));
}

static void
s_write_file (const char *path, const char *text)
{
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fputs (text, file);
    fclose (file);
}

static void
test_start_refusals (void **state)
{
    (void) state;
    int calls = 0;
    char error [512];
    struct { const char *listen, *token, *needle; } cases [] = {
        { "0.0.0.0:0", NULL, "not a loopback address: give --token-file" },
        { "10.1.2.3:0", NULL, "not a loopback address" },
        { "127.0.0.1", NULL, "expected HOST:PORT" },
        { "127.0.0.1:99999", NULL, "is not a port" },
        { "127.0.0.1:http", NULL, "is not a port" },
        { "example.com:80", NULL, "is not an IP address" },
        { "[::1:80", NULL, "expected [IPV6]:PORT" },
        { "127.0.0.1:0", "/nonexistent/token", "/nonexistent/token: cannot read the token file" },
    };
    for (size_t index = 0; index < sizeof cases / sizeof cases [0]; index++) {
        al_console_options_t options = { .listen = cases [index].listen, .token_file = cases [index].token,
                                         .api = s_api, .api_arg = &calls };
        error [0] = 0;
        al_console_t *console = al_console_new (&options, error, sizeof error);
        if (console)
            fail_msg ("%s started", cases [index].listen);
        if (!strstr (error, cases [index].needle))
            fail_msg ("%s: error '%s' lacks '%s'", cases [index].listen, error, cases [index].needle);
    }
    //  What `airlock up` checks before supervising a console.
    assert_int_equal (al_console_listen_check ("127.0.0.1:8470", false, error, sizeof error), 0);
    assert_int_equal (al_console_listen_check ("[::1]:0", false, error, sizeof error), 0);
    assert_int_equal (al_console_listen_check ("0.0.0.0:8470", true, error, sizeof error), 0);
    assert_int_equal (al_console_listen_check ("0.0.0.0:8470", false, error, sizeof error), -1);
    assert_non_null (strstr (error, "not a loopback address"));
    assert_int_equal (al_console_listen_check ("nonsense", true, error, sizeof error), -1);
    assert_non_null (strstr (error, "expected HOST:PORT"));
    char path [] = "/tmp/al-console-token-XXXXXX";
    int fd = mkstemp (path);
    assert_true (fd >= 0);
    close (fd);
    s_write_file (path, "  short\n");
    al_console_options_t options = { .listen = "127.0.0.1:0", .token_file = path, .api = s_api, .api_arg = &calls };
    assert_null (al_console_new (&options, error, sizeof error));
    assert_non_null (strstr (error, ":1: the token must be at least 16 characters"));
    assert_non_null (strstr (error, path));
    //  A non-loopback address with a token file starts.
    s_write_file (path, "0123456789abcdef-long-enough\n");
    options.listen = "0.0.0.0:0";
    al_console_t *console = al_console_new (&options, error, sizeof error);
    if (!console)
        fail_msg ("0.0.0.0 with a token: %s", error);
    al_console_destroy (&console);
    unlink (path);
    assert_int_equal (calls, 0);
}

static void
test_token (void **state)
{
    (void) state;
    int calls = 0;
    char path [] = "/tmp/al-console-token-XXXXXX";
    int fd = mkstemp (path);
    assert_true (fd >= 0);
    close (fd);
    s_write_file (path, "  s3cret-token-0123456789  \n");
    al_console_options_t options = { .listen = "127.0.0.1:0", .token_file = path, .api = s_api, .api_arg = &calls };
    char error [512];
    al_console_t *console = al_console_new (&options, error, sizeof error);
    if (!console)
        fail_msg ("%s", error);
    uint16_t port = al_console_port (console);
    s_reply_t reply = { 0 };
    s_request (port, "GET", "/index.html", NULL, &reply);
    assert_int_equal (reply.status, 401);
    s_assert_security_headers (&reply);
    s_reply_free (&reply);
    const char *wrong [] = { "Authorization: Bearer s3cret-token-012345678", NULL };
    s_request (port, "GET", "/api/hostile", wrong, &reply);
    assert_int_equal (reply.status, 401);
    s_reply_free (&reply);
    assert_int_equal (calls, 0);
    const char *right [] = { "Authorization: Bearer s3cret-token-0123456789", NULL };
    s_request (port, "GET", "/api/hostile", right, &reply);
    assert_int_equal (reply.status, 200);
    s_reply_free (&reply);
    assert_int_equal (calls, 1);
    //  /login sets the cookie; the cookie lets the browser in.
    s_request (port, "GET", "/login?token=wrong-token-000000000", NULL, &reply);
    assert_int_equal (reply.status, 401);
    s_reply_free (&reply);
    s_request (port, "GET", "/login?token=s3cret-token-0123456789", NULL, &reply);
    assert_int_equal (reply.status, 303);
    char cookie [256];
    s_header (&reply, "Set-Cookie", cookie, sizeof cookie);
    assert_non_null (strstr (cookie, "airlock_console=s3cret-token-0123456789"));
    assert_non_null (strstr (cookie, "HttpOnly"));
    assert_non_null (strstr (cookie, "SameSite=Strict"));
    s_reply_free (&reply);
    const char *with_cookie [] = { "Cookie: airlock_console=s3cret-token-0123456789", NULL };
    s_request (port, "GET", "/index.html", with_cookie, &reply);
    assert_int_equal (reply.status, 200);
    s_reply_free (&reply);
    const char *bad_cookie [] = { "Cookie: airlock_console=nope", NULL };
    s_request (port, "GET", "/index.html", bad_cookie, &reply);
    assert_int_equal (reply.status, 401);
    s_reply_free (&reply);
    al_console_destroy (&console);
    unlink (path);
}

static void
test_event_stream (void **state)
{
    s_fixture_t *f = (s_fixture_t *) *state;
    uint16_t port = al_console_port (f->console);
    for (int index = 1; index <= 3; index++) {
        json_t *data = json_pack ("{s:i, s:s}", "n", index, "service", "<b>x</b>");
        al_console_publish (f->console, "soak", data);
        json_decref (data);
    }
    s_reply_t reply = { .stop_after_records = 3 };
    s_request (port, "GET", "/api/stream", NULL, &reply);
    assert_int_equal (reply.status, 200);
    char type [128];
    s_header (&reply, "Content-Type", type, sizeof type);
    assert_string_equal (type, "text/event-stream");
    s_assert_security_headers (&reply);
    const char *one = strstr (reply.body, "id: 1\nevent: soak\ndata: {\"n\":1,\"service\":\"<b>x</b>\"}\n\n");
    const char *two = strstr (reply.body, "id: 2\nevent: soak\ndata: {\"n\":2,");
    const char *three = strstr (reply.body, "id: 3\nevent: soak\ndata: {\"n\":3,");
    if (!one || !two || !three || !(one < two && two < three))
        fail_msg ("stream: %s", reply.body);
    s_reply_free (&reply);
    //  Resuming after event 2 gets only event 3 (and later ones).
    json_t *data = json_pack ("{s:i}", "n", 4);
    al_console_publish (f->console, "rollback", data);
    json_decref (data);
    const char *resume [] = { "Last-Event-ID: 2", NULL };
    reply = (s_reply_t) { .stop_after_records = 2 };
    s_request (port, "GET", "/api/stream", resume, &reply);
    assert_null (strstr (reply.body, "id: 1\n"));
    assert_null (strstr (reply.body, "id: 2\n"));
    assert_non_null (strstr (reply.body, "id: 3\nevent: soak\n"));
    assert_non_null (strstr (reply.body, "id: 4\nevent: rollback\ndata: {\"n\":4}\n\n"));
    s_reply_free (&reply);
}

//  The history is a ring: a stream opened late starts at the oldest kept event.
static void
test_event_history_is_bounded (void **state)
{
    (void) state;
    int calls = 0;
    al_console_options_t options = { .listen = "127.0.0.1:0", .api = s_api, .api_arg = &calls, .history = 4 };
    char error [512];
    al_console_t *console = al_console_new (&options, error, sizeof error);
    assert_non_null (console);
    for (int index = 1; index <= 10; index++) {
        json_t *data = json_pack ("{s:i}", "n", index);
        al_console_publish (console, "soak", data);
        json_decref (data);
    }
    s_reply_t reply = { .stop_after_records = 4 };
    s_request (al_console_port (console), "GET", "/api/stream", NULL, &reply);
    assert_null (strstr (reply.body, "id: 6\n"));
    assert_non_null (strstr (reply.body, "id: 7\n"));
    assert_non_null (strstr (reply.body, "id: 10\nevent: soak\ndata: {\"n\":10}\n\n"));
    s_reply_free (&reply);
    al_console_destroy (&console);
}

//  The pages' own code: nothing that would need 'unsafe-inline' or could turn data into
//  markup, and nothing fetched from elsewhere.
static void
test_pages_code (void **state)
{
    (void) state;
    const char *forbidden [] = { "innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                                 "new Function", " onclick=", " onload=", " onerror=", " style=\"", "https://",
                                 "<script>", "javascript:" };
    for (size_t index = 0; index < al_console_asset_count (); index++) {
        const al_console_asset_t *asset = al_console_asset_at (index);
        char *text = strndup ((const char *) asset->data, asset->size);
        assert_non_null (text);
        for (size_t at = 0; at < sizeof forbidden / sizeof forbidden [0]; at++)
            if (strstr (text, forbidden [at]))
                fail_msg ("%s contains '%s'", asset->path, forbidden [at]);
        //  The only http:// allowed is the SVG namespace.
        for (const char *hit = text; (hit = strstr (hit, "http://")); hit++)
            if (strncmp (hit, "http://www.w3.org/2000/svg", 26) != 0)
                fail_msg ("%s refers to an outside address: %.40s", asset->path, hit);
        free (text);
    }
}

//  The console's role in the default policy is read-only: the common grants, nothing else.
static void
test_console_role_is_read_only (void **state)
{
    (void) state;
    al_policy_t *policy = al_policy_load (AIRLOCK_DEFAULT_POLICY_DIR, NULL);
    assert_non_null (policy);
    assert_string_equal (al_policy_role_kind (policy, "console"), "bus-agent");
    const Airlock__Environment environments [] = { AIRLOCK__ENVIRONMENT__ENV_DEVELOPMENT,
        AIRLOCK__ENVIRONMENT__ENV_STAGING, AIRLOCK__ENVIRONMENT__ENV_PRODUCTION, AL_POLICY_ENV_BUS };
    const char *common [] = { "Register", "Heartbeat", "DeliveryAck", "StatusQuery" };
    size_t allowed = 0;
    for (size_t type = 0; type < al_msg_type_count (); type++)
        for (size_t env = 0; env < 4; env++) {
            if (!al_policy_may_send (policy, "console", al_msg_type_at (type), environments [env], NULL, 0))
                continue;
            bool is_common = false;
            for (size_t at = 0; at < 4; at++)
                is_common |= al_msg_type_at (type) == al_msg_type_from_name (common [at]);
            if (!is_common || environments [env] != AL_POLICY_ENV_BUS)
                fail_msg ("console may send %s", al_msg_type_name (al_msg_type_at (type)));
            allowed++;
        }
    assert_int_equal (allowed, 4);
    al_policy_destroy (&policy);
}

static char *
s_read_all (const char *path)
{
    FILE *file = fopen (path, "r");
    assert_non_null (file);
    char *text = (char *) calloc (1, 1 << 20);
    assert_non_null (text);
    size_t size = fread (text, 1, (1 << 20) - 1, file);
    text [size] = 0;
    fclose (file);
    return text;
}

//  A state directory whose policy was copied before the console role existed: running
//  `airlock init` on it again must not list a console identity its roles.yaml does not
//  define (the broker would refuse the whole identities.yaml), and the policy still loads.
static void
test_init_keeps_an_older_policy_loadable (void **state)
{
    (void) state;
    char dir [] = "/tmp/al-console-state-XXXXXX";
    assert_non_null (mkdtemp (dir));
    char error [1024];
    al_init_options_t options = { .policy_source = NULL };
    if (al_init_state_dir (dir, &options, NULL, NULL, error, sizeof error) != 0)
        fail_msg ("init: %s", error);
    char path [512], identities [512], command [1200];
    snprintf (path, sizeof path, "%s/policy/roles.yaml", dir);
    snprintf (identities, sizeof identities, "%s/policy/identities.yaml", dir);
    //  Make it an older state: no console role, certificate or identity.
    char *roles = s_read_all (path);
    char *start = strstr (roles, "  # The web console");
    char *end = start? strstr (start, "  # ---- seed 001"): NULL;
    assert_non_null (end);
    memmove (start, end, strlen (end) + 1);
    s_write_file (path, roles);
    free (roles);
    char *listed = s_read_all (identities);
    char *entry = strstr (listed, "identity: console");
    assert_non_null (entry);
    char *line = entry;
    while (line > listed && !(line [-1] == '\n' && strncmp (line, "  - key:", 8) == 0))
        line--;
    char *after = strstr (entry, "role: console\n");
    assert_non_null (after);
    after += strlen ("role: console\n");
    memmove (line, after, strlen (after) + 1);
    s_write_file (identities, listed);
    free (listed);
    snprintf (command, sizeof command, "%s/keys/console.cert", dir);
    assert_int_equal (unlink (command), 0);
    snprintf (command, sizeof command, "%s/keys/console.cert_secret", dir);
    assert_int_equal (unlink (command), 0);
    snprintf (command, sizeof command, "%s/policy", dir);
    al_policy_t *policy = al_policy_load (command, NULL);
    assert_non_null (policy);
    assert_false (al_policy_role_exists (policy, "console"));
    al_policy_destroy (&policy);
    //  init again: the certificate is made, no entry is appended, the policy loads.
    if (al_init_state_dir (dir, &options, NULL, NULL, error, sizeof error) != 0)
        fail_msg ("init again: %s", error);
    listed = s_read_all (identities);
    assert_null (strstr (listed, "role: console"));
    free (listed);
    policy = al_policy_load (command, NULL);
    assert_non_null (policy);
    al_policy_destroy (&policy);
    snprintf (command, sizeof command, "rm -rf '%s'", dir);
    assert_int_equal (system (command), 0);
}

int
main (void)
{
    curl_global_init (CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_pages_and_headers, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_api_hostile_values_stay_data, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_host_header_must_be_loopback, s_setup, s_teardown),
        cmocka_unit_test (test_start_refusals),
        cmocka_unit_test (test_token),
        cmocka_unit_test_setup_teardown (test_event_stream, s_setup, s_teardown),
        cmocka_unit_test (test_event_history_is_bounded),
        cmocka_unit_test (test_pages_code),
        cmocka_unit_test (test_console_role_is_read_only),
        cmocka_unit_test (test_init_keeps_an_older_policy_loadable),
    };
    int failed = cmocka_run_group_tests (tests, NULL, NULL);
    curl_global_cleanup ();
    return failed;
}
