/*  test_netns.c: agents on another host, over tcp with CURVE, surviving a cut link.

    Two network namespaces made for this run (unique names: the test's pid), joined by
    one veth pair and nothing else: no default route, no bridge to the host, so no
    traffic leaves them (asserted: each namespace's routing table holds only the link's
    own subnet). The broker runs in the first (10.99.0.1), the agents (orchestrator,
    deploy-manager, monitor, qa) and every CLI command in the second (10.99.0.2); the
    state directory is shared (one host's file system) but both of the broker's
    endpoints are tcp:// on the link, so every bus message crosses it, with CURVE. A
    release goes end to end (submit, staging, QA, signed approval, production, DONE)
    while the link is cut (`ip link set down`) long enough for every agent to declare
    the broker dead, and restored. The namespaces are deleted at the end, also when an
    assertion fails (the teardown runs; a stale one from a killed run has another pid).

    The addresses and ports are fixed: each namespace has its own network stack, so they
    can collide with nothing outside. Where namespaces cannot be made (not root, no
    iproute2), the test prints why and exits 77, which ctest reports as skipped.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include "../deploy/deploy_test_util.h"
#include <czmq.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define S_AGENTS 4
#define S_BROKER_ADDRESS "10.99.0.1"
#define S_AGENTS_ADDRESS "10.99.0.2"

typedef struct {
    char dir [256];
    char config [300];
    char airlock [400];
    char ns_broker [64];
    char ns_agents [64];
    char veth_broker [16];
    char veth_agents [16];
    bool namespaces_made;
    pid_t broker;
    pid_t agents [S_AGENTS];
} s_fixture_t;

static const char *s_roles [S_AGENTS] = { "orchestrator", "deploy-manager", "monitor", "qa" };

//  Run a shell command; its exit code (-1 if it did not exit).
static int
s_shell (const char *format, ...)
{
    char command [4096];
    va_list args;
    va_start (args, format);
    vsnprintf (command, sizeof command, format, args);
    va_end (args);
    int rc = system (command);
    return WIFEXITED (rc)? WEXITSTATUS (rc): -1;
}

//  Start ARGV inside namespace NS (`ip netns exec` execs it: the pid is the program's).
static pid_t
s_spawn (s_fixture_t *f, const char *ns, const char *log, const char *const *argv)
{
    char path [400];
    snprintf (path, sizeof path, "%s/%s.log", f->dir, log);
    const char *full [16] = { "/usr/sbin/ip", "netns", "exec", ns };
    size_t count = 4;
    for (size_t i = 0; argv [i] && count < 15; i++)
        full [count++] = argv [i];
    full [count] = NULL;
    pid_t pid = fork ();
    assert_true (pid >= 0);
    if (pid == 0) {
        FILE *out = freopen (path, "a", stderr);
        out = freopen (path, "a", stdout);
        (void) out;
        execv (full [0], (char *const *) full);
        _exit (127);
    }
    return pid;
}

static void
s_kill (pid_t *pid, int signum)
{
    if (*pid > 0) {
        kill (*pid, signum);
        waitpid (*pid, NULL, 0);
        *pid = 0;
    }
}

//  An airlock command in the agents' namespace, output in dir/NAME.out and NAME.err; its exit code.
static int
s_airlock (s_fixture_t *f, const char *name, const char *arguments)
{
    return s_shell ("ip netns exec %s '%s' %s --config '%s' > '%s/%s.out' 2> '%s/%s.err'", f->ns_agents, f->airlock,
                    arguments, f->config, f->dir, name, f->dir, name);
}

//  What the command NAME printed on its standard output (JSON is parsed from this alone).
static char *
s_stdout (s_fixture_t *f, const char *name)
{
    char path [400];
    snprintf (path, sizeof path, "%s/%s.out", f->dir, name);
    return dtu_read (path);
}

//  What the command NAME printed, standard output then standard error.
static char *
s_output (s_fixture_t *f, const char *name)
{
    char path [400];
    snprintf (path, sizeof path, "%s/%s.err", f->dir, name);
    char *out = s_stdout (f, name), *err = dtu_read (path);
    char *both = NULL;
    if (asprintf (&both, "%s%s", out? out: "", err? err: "") < 0)
        both = NULL;
    free (out);
    free (err);
    return both;
}

static void
s_dump_logs (s_fixture_t *f)
{
    const char *logs [] = { "broker", "orchestrator", "deploy-manager", "monitor", "qa" };
    for (size_t i = 0; i < sizeof logs / sizeof logs [0]; i++) {
        char path [400];
        snprintf (path, sizeof path, "%s/%s.log", f->dir, logs [i]);
        char *text = dtu_read (path);
        size_t length = text? strlen (text): 0;
        fprintf (stderr, "---- %s (last 3000 bytes)\n%s\n", logs [i], text? text + (length > 3000? length - 3000: 0): "");
        free (text);
    }
}

static char *
s_state (s_fixture_t *f, const char *release)
{
    char arguments [256];
    snprintf (arguments, sizeof arguments, "status %s --json", release);
    if (s_airlock (f, "status", arguments) != 0)
        return NULL;
    char *text = s_stdout (f, "status");
    json_t *root = text? json_loads (text, 0, NULL): NULL;
    free (text);
    const char *state = json_string_value (json_object_get (json_object_get (root, "release"), "state"));
    char *copy = state? strdup (state): NULL;
    json_decref (root);
    return copy;
}

static void
s_wait_state (s_fixture_t *f, const char *release, const char *want, int timeout_ms)
{
    char *state = NULL;
    for (int64_t deadline = zclock_mono () + timeout_ms; zclock_mono () < deadline; ) {
        free (state);
        state = s_state (f, release);
        if (state && (strcmp (state, want) == 0 || strcmp (state, "FAILED") == 0
                      || strcmp (state, "DONE") == 0 || strcmp (state, "ROLLED_BACK") == 0))
            break;
        zclock_sleep (250);
    }
    if (!state || strcmp (state, want) != 0) {
        s_dump_logs (f);
        fail_msg ("%s: state %s, expected %s", release, state? state: "(none)", want);
    }
    free (state);
}

//  Delete what this run made in the kernel (idempotent; also after a failed setup).
static void
s_namespaces_delete (s_fixture_t *f)
{
    s_shell ("ip netns del %s 2>/dev/null", f->ns_broker);
    s_shell ("ip netns del %s 2>/dev/null", f->ns_agents);
}

//  The two namespaces and the veth link between them. False (with the reason printed)
//  where namespaces cannot be made here.
static bool
s_namespaces_make (s_fixture_t *f)
{
    int pid = (int) getpid ();
    snprintf (f->ns_broker, sizeof f->ns_broker, "al-test-broker-%d", pid);
    snprintf (f->ns_agents, sizeof f->ns_agents, "al-test-agents-%d", pid);
    snprintf (f->veth_broker, sizeof f->veth_broker, "alb%d", pid % 1000000);
    snprintf (f->veth_agents, sizeof f->veth_agents, "ala%d", pid % 1000000);
    if (geteuid () != 0 || access ("/usr/sbin/ip", X_OK) != 0) {
        fprintf (stderr, "test_netns: SKIPPED: network namespaces need root and iproute2 (/usr/sbin/ip)\n");
        return false;
    }
    if (s_shell ("ip netns add %s", f->ns_broker) != 0) {
        fprintf (stderr, "test_netns: SKIPPED: `ip netns add` failed: this system cannot make network namespaces\n");
        return false;
    }
    f->namespaces_made = true;
    int rc = s_shell ("ip netns add %s", f->ns_agents)
          || s_shell ("ip link add %s netns %s type veth peer name %s netns %s", f->veth_broker, f->ns_broker,
                      f->veth_agents, f->ns_agents)
          || s_shell ("ip -n %s link set lo up && ip -n %s link set lo up", f->ns_broker, f->ns_agents)
          || s_shell ("ip -n %s addr add " S_BROKER_ADDRESS "/24 dev %s && ip -n %s link set %s up", f->ns_broker,
                      f->veth_broker, f->ns_broker, f->veth_broker)
          || s_shell ("ip -n %s addr add " S_AGENTS_ADDRESS "/24 dev %s && ip -n %s link set %s up", f->ns_agents,
                      f->veth_agents, f->ns_agents, f->veth_agents);
    assert_int_equal (rc, 0);
    //  The link works both ways before anything starts (ping is not needed: a tcp probe
    //  would need a listener; the kernel's neighbour table fills on the first packet).
    return true;
}

static int
s_setup (void **state)
{
    s_fixture_t *f = calloc (1, sizeof *f);
    assert_non_null (f);
    *state = f;
    if (!s_namespaces_make (f)) {
        if (f->namespaces_made)
            s_namespaces_delete (f);
        free (f);
        exit (77);
    }
    snprintf (f->dir, sizeof f->dir, "/tmp/al-netns-XXXXXX");
    assert_non_null (mkdtemp (f->dir));
    snprintf (f->config, sizeof f->config, "%s/airlock.yaml", f->dir);
    snprintf (f->airlock, sizeof f->airlock, "%s/airlock", getenv ("AIRLOCK_BINARY_DIR"));
    assert_int_equal (s_shell ("'%s' init '%s' > /dev/null && '%s' keygen --name alice --out '%s/alice.key' > /dev/null",
                               f->airlock, f->dir, f->airlock, f->dir), 0);
    //  Both broker endpoints on the link: nothing of the bus goes through ipc:// files.
    char *text = dtu_read (f->config);
    assert_non_null (text);
    char router [300], pub [300];
    snprintf (router, sizeof router, "  router: \"ipc://%s/broker.ipc\"\n", f->dir);
    snprintf (pub, sizeof pub, "  pub: \"ipc://%s/events.ipc\"\n", f->dir);
    char *at_router = strstr (text, router), *at_pub = strstr (text, pub);
    assert_non_null (at_router);
    assert_true (at_pub == at_router + strlen (router));
    *at_router = 0;
    FILE *file = fopen (f->config, "w");
    assert_non_null (file);
    fprintf (file, "%s  router: \"tcp://" S_BROKER_ADDRESS ":7101\"\n  pub: \"tcp://" S_BROKER_ADDRESS ":7102\"\n%s",
             text, at_pub + strlen (pub));
    fclose (file);
    free (text);

    char path [400];
    snprintf (path, sizeof path, "%s/policy", f->dir);
    dtu_open_calendar (path);
    snprintf (path, sizeof path, "%s/alice.key.pub", f->dir);
    char *public_line = dtu_read (path);
    assert_non_null (public_line);
    char hex [65];
    assert_int_equal (sscanf (public_line, "airlock-ed25519 %64s", hex), 1);
    free (public_line);
    snprintf (path, sizeof path, "%s/policy/approvers.yaml", f->dir);
    file = fopen (path, "w");
    assert_non_null (file);
    fprintf (file, "approvers:\n  - name: alice\n    roles: [manager]\n    keys:\n      - {id: alice, ed25519: \"%s\"}\n", hex);
    fclose (file);
    snprintf (path, sizeof path, "%s/services.yaml", f->dir);
    file = fopen (path, "w");
    assert_non_null (file);
    fprintf (file, "version: 1\nservices:\n  demo:\n    driver: process\n    instances: 2\n    strategy: rolling\n"
                   "    soak_ms: 1500\n    soak: { duration_ms: 1500, reason: \"test: 1.5 s of production soak suffice\" }\n"
                   "    probe_interval_ms: 100\n    ready_timeout_ms: 10000\n"
                   "    stop_timeout_ms: 2000\n    command: [\"{{artifact}}\"]\n"
                   "    qa:\n      smoke:\n        - { name: health, path: /healthz, status: 200, body_contains: ok }\n");
    fclose (file);

    const char *broker [] = { f->airlock, "broker", "--config", f->config, NULL };
    f->broker = s_spawn (f, f->ns_broker, "broker", broker);
    for (int i = 0; i < S_AGENTS; i++) {
        const char *argv [] = { f->airlock, "agent", s_roles [i], "--config", f->config,
                                i == 2? "--interval-ms": NULL, "250", NULL };
        f->agents [i] = s_spawn (f, f->ns_agents, s_roles [i], argv);
    }
    //  Everyone registered, over the link.
    bool all = false;
    for (int64_t deadline = zclock_mono () + 60000; !all && zclock_mono () < deadline; ) {
        if (s_airlock (f, "agents", "status --json") == 0) {
            char *agents = s_stdout (f, "agents");
            int alive = 0;
            for (int i = 0; i < S_AGENTS; i++) {
                char needle [64];
                snprintf (needle, sizeof needle, "\"role\": \"%s\"", s_roles [i]);
                alive += agents && strstr (agents, needle) != NULL;
            }
            free (agents);
            all = alive == S_AGENTS;
        }
        if (!all)
            zclock_sleep (250);
    }
    if (!all) {
        s_dump_logs (f);
        fail_msg ("the agents did not all register with the broker across the link");
    }
    return 0;
}

static int
s_teardown (void **state)
{
    s_fixture_t *f = *state;
    for (int i = 0; i < S_AGENTS; i++)
        s_kill (&f->agents [i], SIGTERM);
    s_kill (&f->broker, SIGTERM);
    //  The demo service instances deploy-manager started live in the agents' namespace:
    //  deleting it does not stop them, so stop what still runs there first.
    s_shell ("ip netns pids %s 2>/dev/null | xargs -r kill -9 2>/dev/null", f->ns_agents);
    s_namespaces_delete (f);
    //  Nothing of this run is left in the kernel.
    assert_int_not_equal (s_shell ("ip netns list | grep -q -e '%s' -e '%s'", f->ns_broker, f->ns_agents), 0);
    dtu_remove_tree (f->dir);
    free (f);
    return 0;
}

static void
test_release_across_a_cut_link (void **state)
{
    s_fixture_t *f = *state;
    //  The namespaces route only their own link: nothing can leave them.
    assert_int_equal (s_shell ("test \"$(ip -n %s route show | grep -v '^10.99.0.0/24 ')\" = ''", f->ns_broker), 0);
    assert_int_equal (s_shell ("test \"$(ip -n %s route show | grep -v '^10.99.0.0/24 ')\" = ''", f->ns_agents), 0);
    //  The broker listens on the link address, not on ipc: its sockets are tcp.
    assert_int_equal (s_shell ("ip netns exec %s ss -Htln | grep -q '" S_BROKER_ADDRESS ":7101'", f->ns_broker), 0);
    //  The agents' connections are established tcp from the other namespace.
    assert_int_equal (s_shell ("test $(ip netns exec %s ss -Htn state established dst " S_BROKER_ADDRESS
                               " | wc -l) -ge %d", f->ns_agents, S_AGENTS), 0);

    char artifact [1024], sha [65], arguments [2048];
    dtu_artifact (f->dir, "demo-v1", "v1", NULL, artifact, sizeof artifact, sha);
    char changes [400];
    snprintf (changes, sizeof changes, "%s/changes.txt", f->dir);
    FILE *file = fopen (changes, "w");
    assert_non_null (file);
    fprintf (file, "faster checkout\n");
    fclose (file);
    snprintf (arguments, sizeof arguments, "submit --service demo --version v1 --artifact '%s' --digest sha256:%s "
              "--changes '%s' --summary 'release v1' --id rel-net", artifact, sha, changes);
    if (s_airlock (f, "submit", arguments) != 0) {
        char *text = s_output (f, "submit");
        fail_msg ("airlock submit failed: %s", text? text: "");
    }

    //  Cut the link in the middle of the release, while it waits for the approval (a
    //  cut during a soak fails the release closed: the monitor's evidence cannot reach
    //  deploy-manager), long enough (5 s: 5 heartbeat intervals) for every agent to
    //  declare the broker dead; the broker cannot be reached meanwhile (a status query
    //  times out), then the link comes back.
    s_wait_state (f, "rel-net", "APPROVE", 120000);
    assert_int_equal (s_shell ("ip -n %s link set %s down", f->ns_agents, f->veth_agents), 0);
    int64_t cut_at = zclock_mono ();
    assert_int_not_equal (s_airlock (f, "cut", "status --timeout 2"), 0);
    char *cut = s_output (f, "cut");
    assert_non_null (cut);
    assert_non_null (strstr (cut, "no answer from the broker"));
    free (cut);
    while (zclock_mono () - cut_at < 5000)
        zclock_sleep (100);
    assert_int_equal (s_shell ("ip -n %s link set %s up", f->ns_agents, f->veth_agents), 0);

    snprintf (arguments, sizeof arguments, "approve rel-net-prod --yes --key '%s/alice.key'", f->dir);
    int rc = s_airlock (f, "approve", arguments);
    char *text = s_output (f, "approve");
    if (rc != 0 || !text || !strstr (text, "granted"))
        fail_msg ("airlock approve: exit %d:\n%s", rc, text? text: "");
    free (text);
    s_wait_state (f, "rel-net", "DONE", 120000);

    //  Production runs the new version on both instances, answering in the agents'
    //  namespace (where deploy-manager started them).
    char path [600];
    snprintf (path, sizeof path, "%s/deploy/drivers/demo/production/instances.json", f->dir);
    json_t *root = json_load_file (path, 0, NULL);
    assert_non_null (root);
    int answering = 0;
    size_t index;
    json_t *instance;
    json_array_foreach (json_object_get (root, "instances"), index, instance) {
        const char *version = json_string_value (json_object_get (instance, "version"));
        int port = (int) json_integer_value (json_object_get (instance, "port"));
        if (version && strcmp (version, "v1") == 0
        &&  s_shell ("ip netns exec %s curl -sf --max-time 10 -o /dev/null http://127.0.0.1:%d/healthz",
                     f->ns_agents, port) == 0)
            answering++;
    }
    json_decref (root);
    assert_int_equal (answering, 2);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_release_across_a_cut_link, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
