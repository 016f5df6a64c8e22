/*  test_demo_service.c: the demo service, as airlock's deploy path and monitor see it.

    Every test starts real demo-service processes ($AIRLOCK_BINARY_DIR/demo-service) on
    127.0.0.1. Most ask for port 0 and read the port the service prints on its first
    stdout line, so no two runs race for a port; one test finds a free port itself and
    passes it through PORT. Requests go through libcurl. Every child is registered as it
    starts and killed in the teardown, whether or not the test failed.

    Nothing here asserts timing: waits are for an outcome, with generous deadlines that
    only a broken service reaches.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define S_MAX_CHILDREN 16
#define S_START_DEADLINE_S 20.0
#define S_EXIT_DEADLINE_S 30.0

//  A started demo-service.
typedef struct {
    pid_t pid;
    int port;
} s_service_t;

//  Children not yet reaped; the teardown kills and reaps whatever is left here.
static pid_t s_children [S_MAX_CHILDREN];
static size_t s_child_count;

static double
s_now (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (double) now.tv_sec + now.tv_nsec / 1e9;
}

static void
s_pause_ms (long milliseconds)
{
    struct timespec pause = { milliseconds / 1000, (milliseconds % 1000) * 1000000L };
    nanosleep (&pause, NULL);
}

static void
s_forget_child (pid_t pid)
{
    for (size_t i = 0; i < s_child_count; i++)
        if (s_children [i] == pid) {
            s_children [i] = s_children [--s_child_count];
            return;
        }
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

static char *
s_binary (void)
{
    const char *dir = getenv ("AIRLOCK_BINARY_DIR");
    assert_non_null (dir);
    char *path = NULL;
    assert_true (asprintf (&path, "%s/demo-service", dir) > 0);
    assert_int_equal (access (path, X_OK), 0);
    return path;
}

//  Fork and exec demo-service with args (NULL-terminated, without argv [0]) and
//  "NAME=value" environment settings (NULL-terminated, may be NULL). The child's
//  stdout comes back on *stdout_fd; its stderr is the test's.
static pid_t
s_spawn (const char **args, const char **env, int *stdout_fd)
{
    char *binary = s_binary ();
    const char *argv [32] = { binary };
    size_t argc = 1;
    for (; args && args [argc - 1]; argc++) {
        assert_true (argc < 31);
        argv [argc] = args [argc - 1];
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
        //  The service's settings come only from this test.
        const char *names [] = { "PORT", "VERSION", "ERROR_RATE", "LATENCY_MS", "LATENCY_JITTER_MS",
                                 "CPU_BURN", "FAIL_READINESS", "READY_DELAY_MS", "CRASH_AT_START",
                                 "MEMORY_LIMIT_MB", "SHUTDOWN_TIMEOUT_MS", "DB_PATH", "VERBOSE" };
        for (size_t i = 0; i < sizeof names / sizeof names [0]; i++)
            unsetenv (names [i]);
        for (size_t i = 0; env && env [i]; i++)
            putenv ((char *) env [i]);
        execv (binary, (char **) argv);
        _exit (127);
    }
    s_children [s_child_count++] = pid;
    close (fds [1]);
    free (binary);
    *stdout_fd = fds [0];
    return pid;
}

//  Start a service and wait for its "listening on 127.0.0.1:PORT" line.
static s_service_t
s_start (const char **args, const char **env)
{
    int out = -1;
    s_service_t service = { s_spawn (args, env, &out), 0 };
    char line [256];
    size_t used = 0;
    double deadline = s_now () + S_START_DEADLINE_S;
    while (used < sizeof line - 1 && !memchr (line, '\n', used)) {
        struct pollfd readable = { out, POLLIN, 0 };
        int wait_ms = (int) ((deadline - s_now ()) * 1000);
        if (wait_ms <= 0 || poll (&readable, 1, wait_ms) <= 0)
            break;
        ssize_t got = read (out, line + used, sizeof line - 1 - used);
        if (got <= 0)
            break;
        used += (size_t) got;
    }
    close (out);
    line [used] = 0;
    const char *colon = strstr (line, "listening on 127.0.0.1:");
    if (!colon)
        fail_msg ("demo-service did not report listening; stdout was '%s'", line);
    service.port = atoi (colon + strlen ("listening on 127.0.0.1:"));
    assert_true (service.port > 0 && service.port < 65536);
    return service;
}

//  Wait for the child to exit (SIGKILL after the deadline, which fails the test);
//  returns its exit status.
static int
s_wait_exit (pid_t pid)
{
    int status = 0;
    double deadline = s_now () + S_EXIT_DEADLINE_S;
    for (;;) {
        pid_t done = waitpid (pid, &status, WNOHANG);
        assert_true (done >= 0);
        if (done == pid)
            break;
        if (s_now () > deadline)
            fail_msg ("demo-service pid %d did not exit", (int) pid);
        s_pause_ms (10);
    }
    s_forget_child (pid);
    if (!WIFEXITED (status))
        fail_msg ("demo-service did not exit normally (status 0x%x)", status);
    return WEXITSTATUS (status);
}

static void
s_stop (s_service_t *service)
{
    assert_int_equal (kill (service->pid, SIGTERM), 0);
    assert_int_equal (s_wait_exit (service->pid), 0);
}

//  A growing buffer for response bodies.
typedef struct {
    char *data;
    size_t size;
} s_body_t;

static size_t
s_collect (char *data, size_t size, size_t count, void *arg)
{
    s_body_t *body = (s_body_t *) arg;
    size_t length = size * count;
    char *grown = realloc (body->data, body->size + length + 1);
    if (!grown)
        return 0;
    memcpy (grown + body->size, data, length);
    body->data = grown;
    body->size += length;
    body->data [body->size] = 0;
    return length;
}

//  Perform method on http://127.0.0.1:port/path with an optional body; returns the
//  status code (0 if no answer) and the body in *text (the caller frees; may be NULL).
static long
s_request (const char *method, int port, const char *path, const char *payload,
           size_t payload_size, char **text)
{
    CURL *curl = curl_easy_init ();
    if (!curl)
        return 0;
    char url [512];
    snprintf (url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    s_body_t body = { calloc (1, 1), 0 };
    curl_easy_setopt (curl, CURLOPT_URL, url);
    curl_easy_setopt (curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt (curl, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, s_collect);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, &body);
    if (payload) {
        curl_easy_setopt (curl, CURLOPT_POSTFIELDS, payload);
        curl_easy_setopt (curl, CURLOPT_POSTFIELDSIZE, (long) payload_size);
    }
    long code = 0;
    if (curl_easy_perform (curl) == CURLE_OK)
        curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup (curl);
    if (text)
        *text = body.data;
    else
        free (body.data);
    return code;
}

static long
s_get (int port, const char *path, char **text)
{
    return s_request ("GET", port, path, NULL, 0, text);
}

static long
s_post (int port, const char *path, char **text)
{
    return s_request ("POST", port, path, "", 0, text);
}

//  The value of the sample whose name and labels are exactly series ("name" or
//  "name{a=\"b\"}") in a Prometheus text exposition; NAN when absent.
static double
s_sample (const char *exposition, const char *series)
{
    size_t length = strlen (series);
    for (const char *line = exposition; line && *line; ) {
        const char *end = strchr (line, '\n');
        if (strncmp (line, series, length) == 0 && line [length] == ' ')
            return strtod (line + length + 1, NULL);
        line = end ? end + 1 : NULL;
    }
    return NAN;
}

//  Sum of every sample of metric name whose labels contain label (e.g. path="/work").
static double
s_sum_samples (const char *exposition, const char *name, const char *label)
{
    double sum = 0;
    size_t length = strlen (name);
    for (const char *line = exposition; line && *line; ) {
        const char *end = strchr (line, '\n');
        size_t line_length = end ? (size_t) (end - line) : strlen (line);
        if (strncmp (line, name, length) == 0 && line [length] == '{') {
            const char *close = memchr (line, '}', line_length);
            assert_non_null (close);
            char labels [256];
            size_t label_length = (size_t) (close - line);
            assert_true (label_length < sizeof labels);
            memcpy (labels, line, label_length);
            labels [label_length] = 0;
            if (strstr (labels, label))
                sum += strtod (close + 2, NULL);
        }
        line = end ? end + 1 : NULL;
    }
    return sum;
}

//  Every line is a comment ("# HELP name text" / "# TYPE name kind") or a sample
//  "name[{labels}] number"; every sample's metric has a TYPE line before it.
static void
s_assert_exposition_well_formed (const char *exposition)
{
    char typed [64][80];
    size_t typed_count = 0;
    assert_true (strlen (exposition) > 0);
    assert_int_equal (exposition [strlen (exposition) - 1], '\n');
    for (const char *line = exposition; *line; ) {
        const char *end = strchr (line, '\n');
        assert_non_null (end);
        char text [512];
        size_t length = (size_t) (end - line);
        assert_true (length > 0 && length < sizeof text);
        memcpy (text, line, length);
        text [length] = 0;
        if (text [0] == '#') {
            char kind [16], name [80], type [32];
            assert_int_equal (sscanf (text, "# %15s %79s %31s", kind, name, type), 3);
            assert_true (strcmp (kind, "HELP") == 0 || strcmp (kind, "TYPE") == 0);
            if (strcmp (kind, "TYPE") == 0) {
                assert_true (strcmp (type, "counter") == 0 || strcmp (type, "gauge") == 0
                          || strcmp (type, "histogram") == 0);
                assert_true (typed_count < 64);
                snprintf (typed [typed_count++], sizeof typed [0], "%s", name);
            }
        }
        else {
            size_t name_length = strcspn (text, "{ ");
            assert_true (name_length > 0);
            for (size_t i = 0; i < name_length; i++)
                assert_true (text [i] == '_' || (text [i] >= 'a' && text [i] <= 'z')
                          || (i > 0 && text [i] >= '0' && text [i] <= '9'));
            const char *value = text + name_length;
            if (*value == '{') {
                value = strchr (value, '}');
                assert_non_null (value);
                value++;
            }
            assert_int_equal (*value, ' ');
            char *number_end = NULL;
            double number = strtod (value + 1, &number_end);
            assert_true (number_end != value + 1 && *number_end == 0);
            assert_false (isnan (number));
            //  Its family (histogram samples drop their suffix) was typed before.
            bool known = false;
            for (size_t i = 0; i < typed_count && !known; i++) {
                size_t family = strlen (typed [i]);
                known = strncmp (text, typed [i], family) == 0
                     && (family == name_length
                     ||  strncmp (text + family, "_bucket", 7) == 0
                     ||  strncmp (text + family, "_sum", 4) == 0
                     ||  strncmp (text + family, "_count", 6) == 0);
            }
            if (!known)
                fail_msg ("sample before its TYPE line: %s", text);
        }
        line = end + 1;
    }
}

//  A port nobody listens on now: bind port 0, read it, close.
static int
s_free_port (void)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    assert_true (fd >= 0);
    struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = 0 };
    address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    assert_int_equal (bind (fd, (struct sockaddr *) &address, sizeof address), 0);
    socklen_t size = sizeof address;
    assert_int_equal (getsockname (fd, (struct sockaddr *) &address, &size), 0);
    close (fd);
    return ntohs (address.sin_port);
}

//  --- Tests -----------------------------------------------------------------------

static void
test_healthz_reports_version (void **state)
{
    (void) state;
    const char *args [] = { "--port", "0", "--version", "3.1.4", NULL };
    s_service_t service = s_start (args, NULL);
    char *body = NULL;
    assert_int_equal (s_get (service.port, "/healthz", &body), 200);
    assert_non_null (strstr (body, "\"status\":\"ok\""));
    assert_non_null (strstr (body, "\"version\":\"3.1.4\""));
    free (body);
    s_stop (&service);
}

static void
test_environment_sets_port_and_version (void **state)
{
    (void) state;
    //  Another process may take the port between s_free_port and the bind: retry.
    for (int attempt = 0; attempt < 5; attempt++) {
        int port = s_free_port ();
        char port_setting [32];
        snprintf (port_setting, sizeof port_setting, "PORT=%d", port);
        const char *env [] = { port_setting, "VERSION=4.0.0-rc1", NULL };
        int out = -1;
        pid_t pid = s_spawn (NULL, env, &out);
        char line [128] = "";
        FILE *stream = fdopen (out, "r");
        assert_non_null (stream);
        char *got = fgets (line, sizeof line, stream);
        fclose (stream);
        if (!got) {
            assert_int_equal (s_wait_exit (pid), 1);    //  could not listen
            continue;
        }
        char expected [96];
        snprintf (expected, sizeof expected, "demo-service 4.0.0-rc1 listening on 127.0.0.1:%d\n", port);
        assert_string_equal (line, expected);
        char *body = NULL;
        assert_int_equal (s_get (port, "/healthz", &body), 200);
        assert_non_null (strstr (body, "\"version\":\"4.0.0-rc1\""));
        free (body);
        s_service_t service = { pid, port };
        s_stop (&service);
        return;
    }
    fail_msg ("no free port in 5 attempts");
}

static void
test_readiness_faults (void **state)
{
    (void) state;
    const char *healthy_args [] = { "--port", "0", NULL };
    s_service_t healthy = s_start (healthy_args, NULL);
    const char *failing_args [] = { "--port", "0", "--fail-readiness", NULL };
    s_service_t failing = s_start (failing_args, NULL);
    const char *failing_env [] = { "FAIL_READINESS=1", NULL };
    s_service_t failing_by_env = s_start (healthy_args, failing_env);
    //  A warm-up far longer than this test: not ready for all of it.
    const char *warming_args [] = { "--port", "0", "--ready-delay-ms", "3600000", NULL };
    s_service_t warming = s_start (warming_args, NULL);

    char *body = NULL;
    assert_int_equal (s_get (healthy.port, "/readyz", NULL), 200);
    assert_int_equal (s_get (failing.port, "/readyz", &body), 503);
    assert_non_null (strstr (body, "fail-readiness"));
    free (body);
    assert_int_equal (s_get (failing_by_env.port, "/readyz", NULL), 503);
    assert_int_equal (s_get (warming.port, "/readyz", &body), 503);
    assert_non_null (strstr (body, "warming up"));
    free (body);
    //  Liveness is not readiness.
    assert_int_equal (s_get (failing.port, "/healthz", NULL), 200);
    assert_int_equal (s_get (warming.port, "/healthz", NULL), 200);

    //  Readiness toggled at run time, and reflected in the metrics.
    assert_int_equal (s_post (healthy.port, "/fault?fail_readiness=1", NULL), 200);
    assert_int_equal (s_get (healthy.port, "/readyz", NULL), 503);
    assert_int_equal (s_get (healthy.port, "/metrics", &body), 200);
    assert_true (s_sample (body, "demo_service_ready") == 0);
    free (body);
    assert_int_equal (s_post (healthy.port, "/fault?fail_readiness=0", NULL), 200);
    assert_int_equal (s_get (healthy.port, "/readyz", NULL), 200);
    assert_int_equal (s_get (healthy.port, "/metrics", &body), 200);
    assert_true (s_sample (body, "demo_service_ready") == 1);
    free (body);

    s_stop (&healthy);
    s_stop (&failing);
    s_stop (&failing_by_env);
    s_stop (&warming);
}

static void
test_metrics_exposition (void **state)
{
    (void) state;
    const char *args [] = { "--port", "0", "--version", "2.0.0", "--memory-limit-mb", "64", NULL };
    s_service_t service = s_start (args, NULL);
    const int calls = 25;
    for (int i = 0; i < calls; i++)
        assert_int_equal (s_get (service.port, "/work", NULL), 200);
    assert_int_equal (s_get (service.port, "/healthz", NULL), 200);
    assert_int_equal (s_get (service.port, "/nowhere", NULL), 404);

    char *text = NULL;
    assert_int_equal (s_get (service.port, "/metrics", &text), 200);
    s_assert_exposition_well_formed (text);

    const char *families [] = {
        "# TYPE http_requests_total counter\n",
        "# TYPE http_request_duration_seconds histogram\n",
        "# TYPE process_cpu_seconds_total counter\n",
        "# TYPE process_resident_memory_bytes gauge\n",
        "# TYPE demo_service_cpu_percent gauge\n",
        "# TYPE demo_service_memory_percent gauge\n",
        "# TYPE demo_service_info gauge\n",
        "# HELP http_request_duration_seconds ",
    };
    for (size_t i = 0; i < sizeof families / sizeof families [0]; i++)
        if (!strstr (text, families [i]))
            fail_msg ("missing from /metrics: %s", families [i]);

    assert_true (s_sample (text, "demo_service_info{version=\"2.0.0\"}") == 1);
    assert_true (s_sample (text, "http_requests_total{code=\"200\",method=\"GET\",path=\"/work\"}") == calls);
    assert_true (s_sum_samples (text, "http_requests_total", "path=\"/work\"") == calls);
    //  Probes are counted apart: they are not traffic, and a warming /readyz is no error.
    assert_true (s_sample (text, "demo_service_probe_requests_total{code=\"200\",path=\"/healthz\"}") == 1);
    assert_true (strstr (text, "method=\"GET\",path=\"/healthz\"") == NULL);
    assert_true (s_sample (text, "http_requests_total{code=\"404\",method=\"GET\",path=\"other\"}") == 1);

    //  The histogram: count equals the /work calls, buckets are cumulative up to +Inf.
    assert_true (s_sample (text, "http_request_duration_seconds_count{path=\"/work\"}") == calls);
    assert_true (s_sample (text, "http_request_duration_seconds_bucket{path=\"/work\",le=\"+Inf\"}") == calls);
    double sum = s_sample (text, "http_request_duration_seconds_sum{path=\"/work\"}");
    assert_true (sum > 0);
    const char *bounds [] = { "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
                              "0.25", "0.5", "1", "2.5", "5", "10", "+Inf" };
    double previous = 0;
    for (size_t i = 0; i < sizeof bounds / sizeof bounds [0]; i++) {
        char series [96];
        snprintf (series, sizeof series, "http_request_duration_seconds_bucket{path=\"/work\",le=\"%s\"}", bounds [i]);
        double value = s_sample (text, series);
        assert_false (isnan (value));
        assert_true (value >= previous);
        previous = value;
    }

    //  Process figures, and memory percent computed from the same resident size.
    double resident = s_sample (text, "process_resident_memory_bytes");
    assert_true (resident > 0);
    double memory_percent = s_sample (text, "demo_service_memory_percent");
    assert_true (fabs (memory_percent - 100.0 * resident / (64.0 * 1024 * 1024)) < 0.01);
    assert_true (s_sample (text, "process_cpu_seconds_total") >= 0);
    double cpu_percent = s_sample (text, "demo_service_cpu_percent");
    assert_true (cpu_percent >= 0);
    free (text);
    s_stop (&service);
}

//  Count how many of calls /work requests answer 500; fail on anything but 200/500.
static int
s_count_errors (int port, int calls)
{
    int errors = 0;
    for (int i = 0; i < calls; i++) {
        long code = s_get (port, "/work", NULL);
        if (code == 500)
            errors++;
        else
        if (code != 200)
            fail_msg ("/work answered %ld", code);
    }
    return errors;
}

static void
test_error_injection (void **state)
{
    (void) state;
    const char *args [] = { "--port", "0", NULL };
    s_service_t service = s_start (args, NULL);
    char *body = NULL;
    assert_int_equal (s_count_errors (service.port, 10), 0);

    assert_int_equal (s_post (service.port, "/fault?error_rate=1.0", &body), 200);
    assert_non_null (strstr (body, "\"error_rate\":1"));
    free (body);
    assert_int_equal (s_count_errors (service.port, 20), 20);

    assert_int_equal (s_post (service.port, "/fault?error_rate=0", NULL), 200);
    assert_int_equal (s_count_errors (service.port, 20), 0);

    //  400 draws at 0.5: the 500s are Binomial(400, 0.5), sd 10; [100, 300] is ten sd.
    assert_int_equal (s_post (service.port, "/fault?error_rate=0.5", NULL), 200);
    int errors = s_count_errors (service.port, 400);
    assert_in_range (errors, 100, 300);

    //  A bad fault changes nothing.
    assert_int_equal (s_post (service.port, "/fault?error_rate=0&latency_ms=-5", &body), 400);
    assert_non_null (strstr (body, "latency_ms"));
    free (body);
    assert_int_equal (s_post (service.port, "/fault?nonsense=1", NULL), 400);
    assert_int_equal (s_get (service.port, "/fault", &body), 200);
    assert_non_null (strstr (body, "\"error_rate\":0.5"));
    assert_non_null (strstr (body, "\"latency_ms\":0"));
    free (body);

    //  The metrics count exactly the 500s the clients saw.
    assert_int_equal (s_get (service.port, "/metrics", &body), 200);
    assert_true (s_sample (body, "http_requests_total{code=\"500\",method=\"GET\",path=\"/work\"}") == 20 + errors);
    assert_true (s_sample (body, "http_request_duration_seconds_count{path=\"/work\"}") == 450);
    free (body);
    s_stop (&service);

    //  The same fault from the flag and from the environment.
    const char *flag_args [] = { "--port", "0", "--error-rate", "1", NULL };
    s_service_t flagged = s_start (flag_args, NULL);
    assert_int_equal (s_count_errors (flagged.port, 5), 5);
    s_stop (&flagged);
    const char *env [] = { "ERROR_RATE=1", NULL };
    s_service_t by_env = s_start (args, env);
    assert_int_equal (s_count_errors (by_env.port, 5), 5);
    s_stop (&by_env);
}

static void
test_crash_at_start_exits_3 (void **state)
{
    (void) state;
    const char *args [] = { "--port", "0", "--crash-at-start", NULL };
    const char *env [] = { "CRASH_AT_START=1", NULL };
    const char *plain [] = { "--port", "0", NULL };
    for (int variant = 0; variant < 2; variant++) {
        int out = -1;
        pid_t pid = variant == 0 ? s_spawn (args, NULL, &out) : s_spawn (plain, env, &out);
        char buffer [64];
        //  It exits without ever saying it listens.
        assert_int_equal (read (out, buffer, sizeof buffer), 0);
        close (out);
        assert_int_equal (s_wait_exit (pid), 3);
    }
}

static void
test_bad_options_exit_2 (void **state)
{
    (void) state;
    const char *cases [][4] = {
        { "--error-rate", "1.5", NULL },
        { "--port", "70000", NULL },
        { "--cpu-burn", "x", NULL },
        { "--no-such-flag", NULL },
        { "--latency-ms", NULL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        int out = -1;
        pid_t pid = s_spawn (cases [i], NULL, &out);
        close (out);
        assert_int_equal (s_wait_exit (pid), 2);
    }
    const char *env [] = { "LATENCY_MS=-1", NULL };
    int out = -1;
    pid_t pid = s_spawn (NULL, env, &out);
    close (out);
    assert_int_equal (s_wait_exit (pid), 2);
}

static void
test_port_in_use_exits_1 (void **state)
{
    (void) state;
    const char *args [] = { "--port", "0", NULL };
    s_service_t first = s_start (args, NULL);
    char port [16];
    snprintf (port, sizeof port, "%d", first.port);
    const char *same_port [] = { "--port", port, NULL };
    int out = -1;
    pid_t second = s_spawn (same_port, NULL, &out);
    close (out);
    assert_int_equal (s_wait_exit (second), 1);
    //  The first one is unharmed.
    assert_int_equal (s_get (first.port, "/healthz", NULL), 200);
    s_stop (&first);
}

//  A /work request running in its own thread while the service is told to stop.
typedef struct {
    int port;
    long code;
} s_slow_call_t;

static void *
s_slow_call (void *arg)
{
    s_slow_call_t *call = (s_slow_call_t *) arg;
    call->code = s_get (call->port, "/work", NULL);
    return NULL;
}

static void
test_sigterm_finishes_in_flight_and_exits_0 (void **state)
{
    (void) state;
    const char *args [] = { "--port", "0", "--latency-ms", "1500", NULL };
    s_service_t service = s_start (args, NULL);
    s_slow_call_t call = { service.port, 0 };
    pthread_t thread;
    assert_int_equal (pthread_create (&thread, NULL, s_slow_call, &call), 0);
    //  Wait until the service has the slow request (the scrape counts itself too).
    double deadline = s_now () + S_START_DEADLINE_S;
    double in_flight = 0;
    while (in_flight < 2 && s_now () < deadline) {
        char *text = NULL;
        if (s_get (service.port, "/metrics", &text) == 200)
            in_flight = s_sample (text, "demo_service_requests_in_flight");
        free (text);
        if (in_flight < 2)
            s_pause_ms (5);
    }
    if (in_flight < 2) {
        pthread_join (thread, NULL);
        fail_msg ("the slow /work never showed as in flight");
    }
    assert_int_equal (kill (service.pid, SIGTERM), 0);
    pthread_join (thread, NULL);
    assert_int_equal (call.code, 200);
    assert_int_equal (s_wait_exit (service.pid), 0);

    //  An idle service stops too, on SIGINT as well.
    s_service_t idle = s_start (args, NULL);
    assert_int_equal (kill (idle.pid, SIGINT), 0);
    assert_int_equal (s_wait_exit (idle.pid), 0);
}

//  Send raw bytes on a new connection and return the status line's code (0: none).
static int
s_raw_status (int port, const char *request, size_t size)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    assert_true (fd >= 0);
    struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) port) };
    address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    assert_int_equal (connect (fd, (struct sockaddr *) &address, sizeof address), 0);
    struct timeval timeout = { 10, 0 };
    setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    ssize_t sent = send (fd, request, size, MSG_NOSIGNAL);
    char reply [64] = "";
    ssize_t got = sent > 0 ? recv (fd, reply, sizeof reply - 1, 0) : -1;
    close (fd);
    int code = 0;
    if (got > 0) {
        reply [got] = 0;
        sscanf (reply, "HTTP/1.%*d %d", &code);
    }
    return code;
}

static void
test_hostile_input_is_refused (void **state)
{
    (void) state;
    const char *args [] = { "--port", "0", NULL };
    s_service_t service = s_start (args, NULL);
    //  Bodies: 4 KiB accepted, one byte more refused.
    char *large = calloc (1, 4097);
    assert_non_null (large);
    memset (large, 'x', 4097);
    assert_int_equal (s_request ("POST", service.port, "/fault", large, 4096, NULL), 200);
    assert_int_equal (s_request ("POST", service.port, "/fault", large, 4097, NULL), 413);
    free (large);
    //  Methods, paths and query values.
    assert_int_equal (s_request ("DELETE", service.port, "/work", NULL, 0, NULL), 405);
    assert_int_equal (s_post (service.port, "/healthz", NULL), 405);
    assert_int_equal (s_get (service.port, "/work?n=abc", NULL), 400);
    assert_int_equal (s_get (service.port, "/work?n=7", NULL), 200);
    assert_int_equal (s_get (service.port, "/%00%ff/../..//x?%%%=&&=", NULL), 404);
    const char *odd [] = {
        "GET /%00%ff?%%%=& HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET work HTTP/1.1\r\nHost: x\r\n\r\n",
        "POST /fault?error_rate HTTP/1.0\r\n\r\n",
        "POST /fault?=&&=1 HTTP/1.0\r\n\r\n",
        "GET /healthz HTTP/1.0\r\nContent-Length: -1\r\n\r\n",
        "GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    };
    for (size_t i = 0; i < sizeof odd / sizeof odd [0]; i++) {
        int code = s_raw_status (service.port, odd [i], strlen (odd [i]));
        if (code < 400 || code > 499)
            fail_msg ("'%s' answered %d, not 4xx", odd [i], code);
    }
    //  A streamed body over the bound drops the connection; the service lives on.
    char streamed [8192];
    int header = snprintf (streamed, sizeof streamed,
                           "POST /fault HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n", 6000);
    memset (streamed + header, 'y', 6000);
    memcpy (streamed + header + 6000, "\r\n0\r\n\r\n", 7);
    assert_int_equal (s_raw_status (service.port, streamed, (size_t) header + 6007), 0);
    char *body = NULL;
    assert_int_equal (s_get (service.port, "/healthz", NULL), 200);
    //  None of it changed the faults.
    assert_int_equal (s_get (service.port, "/fault", &body), 200);
    assert_non_null (strstr (body, "\"error_rate\":0,"));
    free (body);
    s_stop (&service);
}

//  Run one migration file from the source tree on db.
static void
s_migrate (sqlite3 *db, const char *name)
{
    const char *source = getenv ("AIRLOCK_SOURCE_DIR");
    assert_non_null (source);
    char path [1024];
    snprintf (path, sizeof path, "%s/examples/demo-service/migrations/%s", source, name);
    FILE *file = fopen (path, "r");
    if (!file)
        fail_msg ("%s: %s", path, strerror (errno));
    char sql [4096];
    size_t length = fread (sql, 1, sizeof sql - 1, file);
    fclose (file);
    sql [length] = 0;
    char *error = NULL;
    if (sqlite3_exec (db, sql, NULL, NULL, &error) != SQLITE_OK) {
        char message [512];
        snprintf (message, sizeof message, "%s", error ? error : "?");
        sqlite3_free (error);
        fail_msg ("%s: %s", name, message);
    }
}

static double
s_schema_metric (int port)
{
    char *text = NULL;
    assert_int_equal (s_get (port, "/metrics", &text), 200);
    double version = s_sample (text, "demo_service_schema_version");
    free (text);
    return version;
}

static void
test_migrations_and_schema_version (void **state)
{
    (void) state;
    char dir [] = "/tmp/test_demo_service_XXXXXX";
    assert_non_null (mkdtemp (dir));
    char path [256];
    snprintf (path, sizeof path, "%s/demo.db", dir);
    sqlite3 *db = NULL;
    assert_int_equal (sqlite3_open (path, &db), SQLITE_OK);

    const char *args [] = { "--port", "0", "--db", path, NULL };
    s_service_t service = s_start (args, NULL);
    assert_true (s_schema_metric (service.port) == 0);
    s_migrate (db, "001_create_items.up.sql");
    assert_true (s_schema_metric (service.port) == 1);
    assert_int_equal (sqlite3_exec (db, "INSERT INTO items (name) VALUES ('before')", NULL, NULL, NULL), SQLITE_OK);
    s_migrate (db, "002_add_price.up.sql");
    assert_true (s_schema_metric (service.port) == 2);
    //  Version 1's insert still works on schema 2 (backward-compatible), and the
    //  new column refuses negative prices.
    assert_int_equal (sqlite3_exec (db, "INSERT INTO items (name) VALUES ('old writer')", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal (sqlite3_exec (db, "INSERT INTO items (name, price_cents) VALUES ('new', 250)", NULL, NULL, NULL), SQLITE_OK);
    assert_int_not_equal (sqlite3_exec (db, "INSERT INTO items (name, price_cents) VALUES ('bad', -1)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_stmt *stmt = NULL;
    assert_int_equal (sqlite3_prepare_v2 (db, "SELECT count(*), sum(price_cents) FROM items", -1, &stmt, NULL), SQLITE_OK);
    assert_int_equal (sqlite3_step (stmt), SQLITE_ROW);
    assert_int_equal (sqlite3_column_int (stmt, 0), 3);
    assert_int_equal (sqlite3_column_int (stmt, 1), 250);
    sqlite3_finalize (stmt);

    //  Down again: rows survive 002's down, 001's down empties the schema.
    s_migrate (db, "002_add_price.down.sql");
    assert_true (s_schema_metric (service.port) == 1);
    assert_int_equal (sqlite3_prepare_v2 (db, "SELECT count(*) FROM items", -1, &stmt, NULL), SQLITE_OK);
    assert_int_equal (sqlite3_step (stmt), SQLITE_ROW);
    assert_int_equal (sqlite3_column_int (stmt, 0), 3);
    sqlite3_finalize (stmt);
    assert_int_not_equal (sqlite3_exec (db, "SELECT price_cents FROM items", NULL, NULL, NULL), SQLITE_OK);
    s_migrate (db, "001_create_items.down.sql");
    assert_true (s_schema_metric (service.port) == 0);
    assert_int_not_equal (sqlite3_exec (db, "SELECT * FROM items", NULL, NULL, NULL), SQLITE_OK);
    //  And up once more: the set replays from scratch.
    s_migrate (db, "001_create_items.up.sql");
    s_migrate (db, "002_add_price.up.sql");
    assert_true (s_schema_metric (service.port) == 2);
    sqlite3_close (db);

    //  An unreadable database is reported, not fatal.
    unlink (path);
    rmdir (dir);
    assert_true (s_schema_metric (service.port) == -1);
    assert_int_equal (s_get (service.port, "/healthz", NULL), 200);
    s_stop (&service);
}

static void
test_cpu_burn_uses_cpu (void **state)
{
    (void) state;
    const char *args [] = { "--port", "0", "--cpu-burn", "100", NULL };
    s_service_t service = s_start (args, NULL);
    char *text = NULL;
    assert_int_equal (s_get (service.port, "/fault", &text), 200);
    assert_non_null (strstr (text, "\"cpu_burn\":100"));
    free (text);
    //  An idle service uses almost no CPU; a burning one reaches a third of a second
    //  of CPU time soon. The deadline is only a safety net, not a speed check.
    double deadline = s_now () + 60;
    double cpu = 0;
    while (cpu < 0.3 && s_now () < deadline) {
        assert_int_equal (s_get (service.port, "/metrics", &text), 200);
        cpu = s_sample (text, "process_cpu_seconds_total");
        free (text);
        if (cpu < 0.3)
            s_pause_ms (50);
    }
    assert_true (cpu >= 0.3);
    //  Turned off at run time: the fault reads back as 0.
    assert_int_equal (s_post (service.port, "/fault?cpu_burn=0", &text), 200);
    assert_non_null (strstr (text, "\"cpu_burn\":0"));
    free (text);
    s_stop (&service);
}

static void
test_help_exits_0 (void **state)
{
    (void) state;
    const char *args [] = { "--help", NULL };
    int out = -1;
    pid_t pid = s_spawn (args, NULL, &out);
    char text [8192];
    size_t used = 0;
    ssize_t got;
    while (used < sizeof text - 1 && (got = read (out, text + used, sizeof text - 1 - used)) > 0)
        used += (size_t) got;
    close (out);
    text [used] = 0;
    assert_int_equal (s_wait_exit (pid), 0);
    assert_non_null (strstr (text, "usage: demo-service"));
    assert_non_null (strstr (text, "--error-rate"));
    assert_non_null (strstr (text, "CRASH_AT_START"));
}

int
main (void)
{
    signal (SIGPIPE, SIG_IGN);
    curl_global_init (CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_healthz_reports_version, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_environment_sets_port_and_version, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_readiness_faults, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_metrics_exposition, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_error_injection, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_crash_at_start_exits_3, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_bad_options_exit_2, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_port_in_use_exits_1, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_sigterm_finishes_in_flight_and_exits_0, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_hostile_input_is_refused, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_migrations_and_schema_version, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_cpu_burn_uses_cpu, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_help_exits_0, s_setup, s_teardown),
    };
    int failed = cmocka_run_group_tests (tests, NULL, NULL);
    curl_global_cleanup ();
    return failed;
}
