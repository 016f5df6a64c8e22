/*  test_metrics_endpoints.c: every process's GET /metrics under `airlock up`.

    A state directory from `airlock init` (plus a services.yaml the agents accept) gets a
    metrics section naming 127.0.0.1:0 for the broker and each of the five agents;
    `airlock up` runs them all as real processes. Shown here: each process writes the
    port it bound to STATE/run/metrics-NAME.address; each endpoint's exposition passes
    `promtool check metrics`; the values are live: each agent reports
    airlock_agent_connected 1 and the broker airlock_broker_connected_agents 1 for every
    role. SIGTERM stops up and every endpoint's address file goes with its process.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <czmq.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define S_NAMES 6
#define S_DEADLINE_MS 60000
static const char *s_names [S_NAMES] = { "broker", "orchestrator", "qa", "deploy-manager", "monitor", "notifier" };

typedef struct {
    char dir [256];
    char airlock [400];
    pid_t up;
} s_fixture_t;

typedef struct {
    char *data;
    size_t size;
} s_buffer_t;

static size_t
s_collect (char *data, size_t size, size_t count, void *arg)
{
    s_buffer_t *buffer = (s_buffer_t *) arg;
    char *grown = realloc (buffer->data, buffer->size + size * count + 1);
    if (!grown)
        return 0;
    memcpy (grown + buffer->size, data, size * count);
    buffer->data = grown;
    buffer->size += size * count;
    buffer->data [buffer->size] = '\0';
    return size * count;
}

//  GET http://address/metrics; the body (caller frees) or NULL unless 200.
static char *
s_scrape (const char *address)
{
    char url [300];
    snprintf (url, sizeof url, "http://%s/metrics", address);
    s_buffer_t buffer = { calloc (1, 1), 0 };
    CURL *curl = curl_easy_init ();
    assert_non_null (curl);
    curl_easy_setopt (curl, CURLOPT_URL, url);
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, s_collect);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, &buffer);
    curl_easy_setopt (curl, CURLOPT_TIMEOUT, 20L);
    long status = 0;
    CURLcode code = curl_easy_perform (curl);
    curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup (curl);
    if (code != CURLE_OK || status != 200) {
        free (buffer.data);
        return NULL;
    }
    return buffer.data;
}

static double
s_sample (const char *text, const char *series)
{
    size_t length = strlen (series);
    for (const char *line = text; line && *line; line = strchr (line, '\n'), line = line? line + 1: NULL)
        if (strncmp (line, series, length) == 0 && line [length] == ' ')
            return strtod (line + length + 1, NULL);
    return NAN;
}

static bool
s_read_address (s_fixture_t *f, const char *name, char *address, size_t size)
{
    char path [400];
    snprintf (path, sizeof path, "%s/run/metrics-%s.address", f->dir, name);
    FILE *file = fopen (path, "r");
    if (!file)
        return false;
    bool ok = fgets (address, (int) size, file) != NULL;
    fclose (file);
    address [strcspn (address, "\n")] = '\0';
    return ok && *address;
}

static int
s_setup (void **state)
{
    s_fixture_t *f = calloc (1, sizeof *f);
    assert_non_null (f);
    snprintf (f->dir, sizeof f->dir, "/tmp/al-metrics-XXXXXX");
    assert_non_null (mkdtemp (f->dir));
    snprintf (f->airlock, sizeof f->airlock, "%s/airlock", getenv ("AIRLOCK_BINARY_DIR"));
    char command [1200];
    snprintf (command, sizeof command, "'%s' init '%s' > '%s/init.out' 2>&1", f->airlock, f->dir, f->dir);
    assert_int_equal (system (command), 0);
    char path [400];
    snprintf (path, sizeof path, "%s/services.yaml", f->dir);
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fprintf (file, "version: 1\nservices:\n  demo:\n    driver: process\n    instances: 1\n"
                   "    command: [\"/bin/true\"]\n");
    fclose (file);
    snprintf (path, sizeof path, "%s/airlock.yaml", f->dir);
    file = fopen (path, "a");
    assert_non_null (file);
    fprintf (file, "metrics:\n");
    for (size_t i = 0; i < S_NAMES; i++)
        fprintf (file, "  %s: 127.0.0.1:0\n", s_names [i]);
    fclose (file);
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    s_fixture_t *f = *state;
    if (f->up > 0) {
        kill (-f->up, SIGKILL);         // up's process group: up, the broker, the agents
        waitpid (f->up, NULL, 0);
    }
    char command [400];
    snprintf (command, sizeof command, "rm -rf '%s'", f->dir);
    if (system (command) != 0)
        fprintf (stderr, "could not remove %s\n", f->dir);
    free (f);
    return 0;
}

static void
test_every_endpoint (void **state)
{
    s_fixture_t *f = *state;
    char out [400];
    snprintf (out, sizeof out, "%s/up.out", f->dir);
    f->up = fork ();
    assert_true (f->up >= 0);
    if (f->up == 0) {
        setpgid (0, 0);
        if (!freopen (out, "a", stderr) || !freopen (out, "a", stdout))
            _exit (126);
        execl (f->airlock, "airlock", "up", "--state", f->dir, (char *) NULL);
        _exit (127);
    }
    setpgid (f->up, f->up);

    for (size_t i = 0; i < S_NAMES; i++) {
        const char *name = s_names [i];
        char address [64] = "", series [128];
        int64_t deadline = zclock_mono () + S_DEADLINE_MS;
        while (!s_read_address (f, name, address, sizeof address) && zclock_mono () < deadline)
            zclock_sleep (50);
        assert_true (*address);
        //  Live values: the agent connected to the broker; the broker sees each role.
        if (i == 0)
            snprintf (series, sizeof series, "airlock_broker_connected_agents{role=\"notifier\"}");
        else
            snprintf (series, sizeof series, "airlock_agent_connected");
        char *text = NULL;
        while (true) {
            free (text);
            text = s_scrape (address);
            if ((text && s_sample (text, series) == 1) || zclock_mono () > deadline)
                break;
            zclock_sleep (100);
        }
        if (!text || s_sample (text, series) != 1)
            fprintf (stderr, "%s at %s: no %s 1 in:\n%s\n", name, address, series, text? text: "(no answer)");
        assert_non_null (text);
        assert_true (s_sample (text, series) == 1);
        if (i == 0) {
            //  Every agent has registered by the time the last one to start has.
            for (size_t j = 1; j < S_NAMES; j++) {
                snprintf (series, sizeof series, "airlock_broker_connected_agents{role=\"%s\"}", s_names [j]);
                while (s_sample (text, series) != 1 && zclock_mono () < deadline) {
                    zclock_sleep (100);
                    char *again = s_scrape (address);
                    if (again) {
                        free (text);
                        text = again;
                    }
                }
                assert_true (s_sample (text, series) == 1);
            }
            assert_true (s_sample (text, "airlock_broker_messages_accepted_total{type=\"Register\"}") >= 5);
        }
        char path [400], command [900];
        snprintf (path, sizeof path, "%s/%s.prom", f->dir, name);
        FILE *file = fopen (path, "w");
        assert_non_null (file);
        fputs (text, file);
        fclose (file);
        free (text);
        snprintf (command, sizeof command, "promtool check metrics < '%s'", path);
        int rc = system (command);
        if (!WIFEXITED (rc) || WEXITSTATUS (rc) != 0)
            fprintf (stderr, "promtool refused the metrics of %s (%s)\n", name, path);
        assert_true (WIFEXITED (rc) && WEXITSTATUS (rc) == 0);
    }

    kill (f->up, SIGTERM);
    int status = 0;
    bool exited = false;
    for (int waited = 0; waited < S_DEADLINE_MS && !exited; waited += 50) {
        exited = waitpid (f->up, &status, WNOHANG) == f->up;
        if (!exited)
            zclock_sleep (50);
    }
    assert_true (exited);
    f->up = 0;
    assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 0);
    for (size_t i = 0; i < S_NAMES; i++) {
        char address [64] = "";
        assert_false (s_read_address (f, s_names [i], address, sizeof address));
    }
}

int
main (void)
{
    curl_global_init (CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_every_endpoint, s_setup, s_teardown),
    };
    int rc = cmocka_run_group_tests (tests, NULL, NULL);
    curl_global_cleanup ();
    return rc;
}
