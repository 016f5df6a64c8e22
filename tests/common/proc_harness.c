/*  proc_harness.c: airlock as separate processes for integration tests and benches.
    See proc_harness.h.
*/
#include "proc_harness.h"
#include "base/al_clock.h"
#include "base/al_error.h"
#include "base/al_file.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define S_READ_MAX  (64 * 1024 * 1024)
#define S_IP        "/usr/sbin/ip"

int
ph_shell (const char *format, ...)
{
    char command [8192];
    va_list args;
    va_start (args, format);
    int length = vsnprintf (command, sizeof command, format, args);
    va_end (args);
    //  Our own invariant: a command cut short would run something else.
    assert (length >= 0 && (size_t) length < sizeof command);
    int rc = system (command);
    return WIFEXITED (rc)? WEXITSTATUS (rc): -1;
}

//  A whole file, NULL if it cannot be read.
static char *
s_read (const char *path)
{
    return al_file_read (path, S_READ_MAX, NULL, NULL, 0);
}

//  Write TEXT to PATH (printf FORMAT). 0 or -1.
static int
s_write (const char *path, char *error, size_t error_size, const char *format, ...)
    __attribute__ ((format (printf, 4, 5)));

static int
s_write (const char *path, char *error, size_t error_size, const char *format, ...)
{
    FILE *file = fopen (path, "w");
    if (!file) {
        al_error_set (error, error_size, "%s: %s", path, strerror (errno));
        return -1;
    }
    va_list args;
    va_start (args, format);
    vfprintf (file, format, args);
    va_end (args);
    if (fclose (file) != 0) {
        al_error_set (error, error_size, "%s: %s", path, strerror (errno));
        return -1;
    }
    return 0;
}

//  ---- a state directory ---------------------------------------------------------------

int
ph_init (const char *airlock, const char *dir, const char *const *keys, size_t count,
         char *error, size_t error_size)
{
    if (ph_shell ("'%s' init '%s' > '%s/init.out' 2>&1", airlock, dir, dir) != 0) {
        al_error_set (error, error_size, "airlock init %s failed (%s/init.out)", dir, dir);
        return -1;
    }
    for (size_t i = 0; i < count; i++)
        if (ph_shell ("'%s' keygen --name '%s' --out '%s/%s.key' >> '%s/init.out' 2>&1", airlock, keys [i], dir,
                      keys [i], dir) != 0) {
            al_error_set (error, error_size, "airlock keygen --name %s failed (%s/init.out)", keys [i], dir);
            return -1;
        }
    return 0;
}

int
ph_open_calendar (const char *policy_dir, char *error, size_t error_size)
{
    char path [1024];
    snprintf (path, sizeof path, "%s/constraints.yaml", policy_dir);
    char *text = s_read (path);
    char *calendar = text? strstr (text, "\ncalendar:"): NULL;
    if (!calendar) {
        free (text);
        al_error_set (error, error_size, "%s: no calendar section", path);
        return -1;
    }
    calendar [1] = 0;
    int rc = s_write (path, error, error_size, "%scalendar:\n  timezone: UTC\n  applies_to: [production]\n"
                      "  windows: []\n  freezes:\n    weekdays: []\n    holidays: []\n    month_end: off\n", text);
    free (text);
    return rc;
}

int
ph_write_approvers (const char *dir, const char *const *names, const char *const *roles, size_t count,
                    char *error, size_t error_size)
{
    char path [1024];
    snprintf (path, sizeof path, "%s/policy/approvers.yaml", dir);
    FILE *file = fopen (path, "w");
    if (!file) {
        al_error_set (error, error_size, "%s: %s", path, strerror (errno));
        return -1;
    }
    fprintf (file, "approvers:\n");
    int rc = 0;
    for (size_t i = 0; i < count && rc == 0; i++) {
        char key_path [1024], hex [65] = "";
        snprintf (key_path, sizeof key_path, "%s/%s.key.pub", dir, names [i]);
        char *public_line = s_read (key_path);
        if (!public_line || sscanf (public_line, "airlock-ed25519 %64s", hex) != 1) {
            al_error_set (error, error_size, "%s: not an airlock public key", key_path);
            rc = -1;
        }
        else
            fprintf (file, "  - name: %s\n    roles: [%s]\n    keys:\n      - {id: %s, ed25519: \"%s\"}\n", names [i],
                     roles [i], names [i], hex);
        free (public_line);
    }
    if (fclose (file) != 0 && rc == 0) {
        al_error_set (error, error_size, "%s: %s", path, strerror (errno));
        rc = -1;
    }
    return rc;
}

int
ph_write_demo_services (const char *dir, int staging_soak_ms, const char *extra_smoke, char *error, size_t error_size)
{
    char path [1024];
    snprintf (path, sizeof path, "%s/services.yaml", dir);
    return s_write (path, error, error_size,
                    "version: 1\nservices:\n  demo:\n    driver: process\n    instances: 2\n    strategy: rolling\n"
                    "    soak_ms: %d\n    soak: { duration_ms: 1500, reason: \"test: 1.5 s of production soak suffice\" }\n"
                    "    probe_interval_ms: 100\n    ready_timeout_ms: 10000\n"
                    "    stop_timeout_ms: 2000\n    command: [\"{{artifact}}\"]\n"
                    "    qa:\n      smoke:\n        - { name: health, path: /healthz, status: 200, body_contains: ok }\n%s",
                    staging_soak_ms, extra_smoke? extra_smoke: "");
}

int
ph_prepare_demo (const char *dir, const char *const *names, const char *const *roles, size_t count,
                 int staging_soak_ms, const char *extra_smoke, char *error, size_t error_size)
{
    char policy [1024];
    snprintf (policy, sizeof policy, "%s/policy", dir);
    if (ph_open_calendar (policy, error, error_size) != 0
    ||  ph_write_approvers (dir, names, roles, count, error, error_size) != 0
    ||  ph_write_demo_services (dir, staging_soak_ms, extra_smoke, error, error_size) != 0)
        return -1;
    return 0;
}

int
ph_write_config (const char *path, const char *init_text, const char *dir, const ph_endpoints_t *endpoints,
                 char *error, size_t error_size)
{
    const char *at_endpoints = strstr (init_text, "endpoints:\n"), *at_keys = strstr (init_text, "keys:\n"),
               *at_checkpoint = strstr (init_text, "checkpoint:\n");
    if (!at_endpoints || !at_keys || !at_checkpoint || !(at_endpoints < at_keys && at_keys < at_checkpoint)) {
        al_error_set (error, error_size, "%s/airlock.yaml: not the layout `airlock init` writes", dir);
        return -1;
    }
    FILE *file = fopen (path, "w");
    if (!file) {
        al_error_set (error, error_size, "%s: %s", path, strerror (errno));
        return -1;
    }
    fprintf (file, "%.*s", (int) (at_endpoints - init_text), init_text);
    fprintf (file, "endpoints:\n  router: \"%s\"\n  pub: \"%s\"\n", endpoints->router, endpoints->pub);
    if (endpoints->brokers)
        fprintf (file, "  brokers: \"%s\"\n", endpoints->brokers);
    if (endpoints->events)
        fprintf (file, "  events: \"%s\"\n", endpoints->events);
    if (endpoints->checkpoint) {
        fprintf (file, "%.*s", (int) (at_checkpoint - at_keys), at_keys);
        fprintf (file, "checkpoint:\n  every_events: 1000\n  every_seconds: 60\n  path: \"%s/checkpoints/%s.ckpt\"\n",
                 dir, endpoints->checkpoint);
    }
    else
        fprintf (file, "%s", at_keys);
    //  The one place that spells the HA syntax: the shared log and the lease in the
    //  PostgreSQL database at store.dsn.
    if (endpoints->dsn)
        fprintf (file, "store:\n  backend: postgres\n  dsn: \"%s\"\nha:\n  name: %s\n  lease_ms: 3000\n", endpoints->dsn,
                 endpoints->ha_name);
    if (fclose (file) != 0) {
        al_error_set (error, error_size, "%s: %s", path, strerror (errno));
        return -1;
    }
    return 0;
}

//  ---- processes -----------------------------------------------------------------------

al_child_t *
ph_spawn (const char *dir, const char *log, const char *netns, const char *const *argv,
          char *error, size_t error_size)
{
    char path [1024];
    snprintf (path, sizeof path, "%s/%s.log", dir, log);
    const char *full [32] = { S_IP, "netns", "exec", netns };
    size_t count = netns? 4: 0;
    for (size_t i = 0; argv [i]; i++) {
        assert (count < sizeof full / sizeof full [0] - 1);
        full [count++] = argv [i];
    }
    full [count] = NULL;
    int log_fd = open (path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (log_fd < 0) {
        al_error_set (error, error_size, "%s: %s", path, strerror (errno));
        return NULL;
    }
    al_child_options_t options = { .out = AL_CHILD_FD, .out_fd = log_fd, .err = AL_CHILD_TO_STDOUT };
    fflush (stdout);
    fflush (stderr);
    al_child_t *child = al_child_start ((char *const *) full, &options, error, error_size);
    close (log_fd);
    return child;
}

void
ph_stop (al_child_t **child_p, int signum)
{
    assert (child_p);
    if (!*child_p)
        return;
    if (signum == SIGKILL && !al_child_exited (*child_p)) {
        kill (-al_child_pid (*child_p), SIGKILL);
        al_child_wait (*child_p, -1);
    }
    else
        al_child_kill (*child_p, 30000);
    al_child_destroy (child_p);
}

al_child_t *
ph_start_broker (const ph_cli_t *cli, const char *config, const char *log, char *error, size_t error_size)
{
    const char *argv [] = { cli->airlock, "broker", "--config", config, NULL };
    return ph_spawn (cli->dir, log, cli->netns, argv, error, error_size);
}

al_child_t *
ph_start_agent (const ph_cli_t *cli, const char *role, char *error, size_t error_size)
{
    bool monitor = strcmp (role, "monitor") == 0;
    const char *argv [] = { cli->airlock, "agent", role, "--config", cli->config, monitor? "--interval-ms": NULL,
                            "250", NULL };
    return ph_spawn (cli->dir, role, cli->netns, argv, error, error_size);
}

int
ph_start_agents (const ph_cli_t *cli, const char *const *roles, int count, al_child_t **agents, int timeout_ms,
                 char *error, size_t error_size)
{
    for (int i = 0; i < count; i++)
        if (!(agents [i] = ph_start_agent (cli, roles [i], error, error_size)))
            return -1;
    if (ph_wait_registered (cli, roles, count, timeout_ms))
        return count;
    int registered = ph_registered (cli, roles, count);
    al_error_set (error, error_size, "only %d of the %d agents registered within %d ms", registered, count, timeout_ms);
    return registered;
}

void
ph_stop_all (al_child_t **children, int count, int signum)
{
    for (int i = 0; i < count; i++)
        ph_stop (&children [i], signum);
}

int
ph_registered (const ph_cli_t *cli, const char *const *roles, int count)
{
    if (ph_airlock (cli, "agents", "status --json") != 0)
        return 0;
    char *agents = ph_stdout (cli, "agents");
    int alive = 0;
    for (int i = 0; i < count; i++) {
        char needle [128];
        snprintf (needle, sizeof needle, "\"role\": \"%s\"", roles [i]);
        alive += agents && strstr (agents, needle) != NULL;
    }
    free (agents);
    return alive;
}

bool
ph_wait_registered (const ph_cli_t *cli, const char *const *roles, int count, int timeout_ms)
{
    for (int64_t deadline = al_clock_deadline_ms (timeout_ms); al_clock_remaining_ms (deadline) > 0; al_clock_sleep_ms (250))
        if (ph_registered (cli, roles, count) == count)
            return true;
    return false;
}

bool
ph_log_has (const char *dir, const char *log, const char *text)
{
    return ph_shell ("grep -q -- '%s' '%s/%s.log'", text, dir, log) == 0;
}

bool
ph_wait_log (const char *dir, const char *log, const char *text, int timeout_ms)
{
    for (int64_t deadline = al_clock_deadline_ms (timeout_ms); al_clock_remaining_ms (deadline) > 0; al_clock_sleep_ms (100))
        if (ph_log_has (dir, log, text))
            return true;
    return ph_log_has (dir, log, text);
}

void
ph_dump_logs (const char *dir, const char *const *logs, size_t count, size_t tail)
{
    for (size_t i = 0; i < count; i++) {
        char path [1024];
        snprintf (path, sizeof path, "%s/%s.log", dir, logs [i]);
        char *text = s_read (path);
        size_t length = text? strlen (text): 0;
        fprintf (stderr, "---- %s (last %zu bytes)\n%s\n", logs [i], tail,
                 text? text + (length > tail? length - tail: 0): "");
        free (text);
    }
}

//  ---- the CLI ---------------------------------------------------------------------------

int
ph_airlock (const ph_cli_t *cli, const char *name, const char *arguments)
{
    //  stderr apart: JSON is read from stdout alone (a client that first tries a standby
    //  broker warns on stderr before it moves).
    if (cli->netns)
        return ph_shell ("%s netns exec %s '%s' %s --config '%s' > '%s/%s.out' 2> '%s/%s.err'", S_IP, cli->netns,
                         cli->airlock, arguments, cli->config, cli->dir, name, cli->dir, name);
    return ph_shell ("'%s' %s --config '%s' > '%s/%s.out' 2> '%s/%s.err'", cli->airlock, arguments, cli->config,
                     cli->dir, name, cli->dir, name);
}

char *
ph_stdout (const ph_cli_t *cli, const char *name)
{
    char path [1024];
    snprintf (path, sizeof path, "%s/%s.out", cli->dir, name);
    return s_read (path);
}

char *
ph_output (const ph_cli_t *cli, const char *name)
{
    char path [1024];
    snprintf (path, sizeof path, "%s/%s.err", cli->dir, name);
    char *out = ph_stdout (cli, name), *err = s_read (path);
    char *both = NULL;
    if (asprintf (&both, "%s%s", out? out: "", err? err: "") < 0)
        both = NULL;
    free (out);
    free (err);
    return both;
}

int
ph_submit (const ph_cli_t *cli, const char *service, const char *release, const char *version,
           const char *artifact, const char *sha256, const char *changes, const char *extra,
           char *error, size_t error_size)
{
    char path [1024];
    snprintf (path, sizeof path, "%s/changes-%s.txt", cli->dir, release);
    if (s_write (path, error, error_size, "%s", changes) != 0)
        return -1;
    char arguments [4096];
    snprintf (arguments, sizeof arguments, "submit --service '%s' --version '%s' --artifact '%s' --digest sha256:%s "
              "--changes '%s' --summary 'release %s' --id '%s' %s", service, version, artifact, sha256, path, version,
              release, extra? extra: "");
    if (ph_airlock (cli, "submit", arguments) != 0) {
        char *output = ph_output (cli, "submit");
        al_error_set (error, error_size, "airlock submit %s: %s", release, output? output: "(no output)");
        free (output);
        return -1;
    }
    return 0;
}

int
ph_approve (const ph_cli_t *cli, const char *request, const char *key, char **output_p)
{
    char arguments [2048];
    snprintf (arguments, sizeof arguments, "approve '%s' --yes --key '%s/%s.key'", request, cli->dir, key);
    int rc = ph_airlock (cli, "approve", arguments);
    *output_p = ph_output (cli, "approve");
    return rc;
}

int
ph_answering (const char *dir, const char *service, const char *env, const char *version, const char *netns)
{
    char path [1024];
    snprintf (path, sizeof path, "%s/deploy/drivers/%s/%s/instances.json", dir, service, env);
    json_t *root = json_load_file (path, 0, NULL);
    if (!root)
        return -1;
    char prefix [128] = "";
    if (netns)
        snprintf (prefix, sizeof prefix, S_IP " netns exec %s ", netns);
    int answering = 0;
    size_t index;
    json_t *instance;
    json_array_foreach (json_object_get (root, "instances"), index, instance) {
        const char *running = json_string_value (json_object_get (instance, "version"));
        int port = (int) json_integer_value (json_object_get (instance, "port"));
        if (running && strcmp (running, version) == 0
        &&  ph_shell ("%scurl -sf --max-time 10 -o /dev/null http://127.0.0.1:%d/healthz", prefix, port) == 0)
            answering++;
    }
    json_decref (root);
    return answering;
}

char *
ph_state (const ph_cli_t *cli, const char *release)
{
    char arguments [512];
    snprintf (arguments, sizeof arguments, "status '%s' --json", release);
    if (ph_airlock (cli, "status", arguments) != 0)
        return NULL;
    char *text = ph_stdout (cli, "status");
    json_t *root = text? json_loads (text, 0, NULL): NULL;
    free (text);
    const char *state = json_string_value (json_object_get (json_object_get (root, "release"), "state"));
    char *copy = state? strdup (state): NULL;
    json_decref (root);
    return copy;
}

char *
ph_wait_state (const ph_cli_t *cli, const char *release, const char *want, int timeout_ms)
{
    char *state = NULL;
    for (int64_t deadline = al_clock_deadline_ms (timeout_ms); al_clock_remaining_ms (deadline) > 0; ) {
        char *now = ph_state (cli, release);
        if (now) {
            free (state);
            state = now;
            if (strcmp (state, want) == 0 || strcmp (state, "FAILED") == 0 || strcmp (state, "DONE") == 0
            ||  strcmp (state, "ROLLED_BACK") == 0)
                break;
        }
        al_clock_sleep_ms (250);
    }
    return state;
}
