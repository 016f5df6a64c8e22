/*  test_netns_pg.c: two brokers leader-elected through PostgreSQL, the agents on another
    host, all over tcp links between network namespaces, surviving a cut link.

    Four network namespaces made for this run (unique names: the test's pid), joined by
    four veth pairs and nothing else (no default route, no bridge to the host, so no
    traffic leaves them: asserted, each namespace's routing table holds only its own
    links' subnets):

        agents ── 10.99.1.0/24 ── broker-1 ── 10.99.3.0/24 ──┐
               └─ 10.99.2.0/24 ── broker-2 ── 10.99.4.0/24 ──┴─ pg

    PostgreSQL (tests/pg, pg_harness_new_in) runs in "pg" and listens on both of its
    link addresses; each broker's store.dsn names both (libpq tries them in order, the
    one without a route fails at once), so the lease and the audit log cross a link.
    broker-1 starts first and takes the lease; broker-2 is a standby. The agents
    (orchestrator, deploy-manager, monitor, qa) and every CLI command run in "agents"
    with endpoints.brokers / events naming both brokers. A release goes end to end
    (submit, staging, QA, signed approval, production, DONE); while it waits for the
    approval, the link between the agents and the active broker is cut (`ip link set down`) long enough for every agent
    to declare it dead, and restored. The namespaces are deleted at the end, also when
    an assertion fails.

    The addresses and ports are fixed: each namespace has its own network stack. Where
    namespaces cannot be made (not root, no iproute2) the test prints why and exits 77
    (ctest: skipped). PostgreSQL missing is a failure (scripts/install-deps installs it).
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include "../deploy/deploy_test_util.h"
#include "pg_harness.h"
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
#define S_NAMESPACES 4
#define S_LINKS 4

//  Namespaces by index.
enum { S_NS_AGENTS, S_NS_BROKER_1, S_NS_BROKER_2, S_NS_PG };
static const char *s_ns_names [S_NAMESPACES] = { "agents", "broker1", "broker2", "pg" };

//  Link L joins namespaces s_links [L].a (address 10.99.L+1.1) and .b (10.99.L+1.2).
static const struct { int a, b; } s_links [S_LINKS] = {
    { S_NS_BROKER_1, S_NS_AGENTS }, { S_NS_BROKER_2, S_NS_AGENTS },
    { S_NS_BROKER_1, S_NS_PG }, { S_NS_BROKER_2, S_NS_PG }
};

typedef struct {
    char dir [256];
    char config_agents [300];
    char config_broker [2][300];
    char airlock [400];
    char ns [S_NAMESPACES][64];
    char veth [S_LINKS][2][16];
    bool namespaces_made;
    pg_harness_t *pg;
    char *dsn;
    pid_t broker [2];
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
    return s_shell ("ip netns exec %s '%s' %s --config '%s' > '%s/%s.out' 2> '%s/%s.err'", f->ns [S_NS_AGENTS], f->airlock,
                    arguments, f->config_agents, f->dir, name, f->dir, name);
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

static bool
s_log_has (s_fixture_t *f, const char *log, const char *text)
{
    char path [400];
    snprintf (path, sizeof path, "%s/%s.log", f->dir, log);
    return s_shell ("grep -q -- '%s' '%s'", text, path) == 0;
}

static void
s_dump_logs (s_fixture_t *f)
{
    const char *logs [] = { "broker-1", "broker-2", "orchestrator", "deploy-manager", "monitor", "qa" };
    for (size_t i = 0; i < sizeof logs / sizeof logs [0]; i++) {
        char path [400];
        snprintf (path, sizeof path, "%s/%s.log", f->dir, logs [i]);
        char *text = dtu_read (path);
        size_t length = text? strlen (text): 0;
        fprintf (stderr, "---- %s (last 3000 bytes)\n%s\n", logs [i], text? text + (length > 3000? length - 3000: 0): "");
        free (text);
    }
    if (f->pg)
        s_shell ("tail -n 20 '%s/server.log' >&2", pg_harness_dir (f->pg));
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

//  Wait (60 s at most) until LOG says TEXT.
static void
s_wait_log (s_fixture_t *f, const char *log, const char *text)
{
    for (int64_t deadline = zclock_mono () + 60000; zclock_mono () < deadline && !s_log_has (f, log, text); )
        zclock_sleep (100);
    if (!s_log_has (f, log, text)) {
        s_dump_logs (f);
        fail_msg ("%s never logged \"%s\"", log, text);
    }
}

//  Delete what this run made in the kernel (idempotent; also after a failed setup).
static void
s_namespaces_delete (s_fixture_t *f)
{
    for (int i = 0; i < S_NAMESPACES; i++)
        if (*f->ns [i])
            s_shell ("ip netns del %s 2>/dev/null", f->ns [i]);
}

//  The namespaces and their links. False (with the reason printed) where namespaces
//  cannot be made here.
static bool
s_namespaces_make (s_fixture_t *f)
{
    int pid = (int) getpid ();
    for (int i = 0; i < S_NAMESPACES; i++)
        snprintf (f->ns [i], sizeof f->ns [i], "al-test-%s-%d", s_ns_names [i], pid);
    for (int l = 0; l < S_LINKS; l++)
        for (int side = 0; side < 2; side++)
            snprintf (f->veth [l][side], sizeof f->veth [l][side], "al%d%c%d", l, side? 'b': 'a', pid % 1000000);
    if (geteuid () != 0 || access ("/usr/sbin/ip", X_OK) != 0) {
        fprintf (stderr, "test_netns_pg: SKIPPED: network namespaces need root and iproute2 (/usr/sbin/ip)\n");
        return false;
    }
    if (s_shell ("ip netns add %s", f->ns [0]) != 0) {
        fprintf (stderr, "test_netns_pg: SKIPPED: `ip netns add` failed: this system cannot make network namespaces\n");
        return false;
    }
    f->namespaces_made = true;
    for (int i = 1; i < S_NAMESPACES; i++)
        assert_int_equal (s_shell ("ip netns add %s", f->ns [i]), 0);
    for (int i = 0; i < S_NAMESPACES; i++)
        assert_int_equal (s_shell ("ip -n %s link set lo up", f->ns [i]), 0);
    for (int l = 0; l < S_LINKS; l++) {
        const char *ns_a = f->ns [s_links [l].a], *ns_b = f->ns [s_links [l].b];
        assert_int_equal (s_shell ("ip link add %s netns %s type veth peer name %s netns %s",
                                   f->veth [l][0], ns_a, f->veth [l][1], ns_b), 0);
        assert_int_equal (s_shell ("ip -n %s addr add 10.99.%d.1/24 dev %s && ip -n %s link set %s up",
                                   ns_a, l + 1, f->veth [l][0], ns_a, f->veth [l][0]), 0);
        assert_int_equal (s_shell ("ip -n %s addr add 10.99.%d.2/24 dev %s && ip -n %s link set %s up",
                                   ns_b, l + 1, f->veth [l][1], ns_b, f->veth [l][1]), 0);
    }
    return true;
}

//  An airlock.yaml from the init one (TEXT): its endpoints replaced, its own checkpoint
//  file, and the ha section (brokers only).
static void
s_write_config (s_fixture_t *f, const char *path, const char *text, const char *name, const char *router,
                const char *pub, bool ha)
{
    const char *endpoints = strstr (text, "endpoints:\n"), *keys = strstr (text, "keys:\n"),
               *checkpoint = strstr (text, "checkpoint:\n");
    assert_non_null (endpoints);
    assert_non_null (keys);
    assert_non_null (checkpoint);
    assert_true (endpoints < keys && keys < checkpoint);
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fprintf (file, "%.*s", (int) (endpoints - text), text);
    fprintf (file, "endpoints:\n  router: \"%s\"\n  pub: \"%s\"\n"
                   "  brokers: \"tcp://10.99.1.1:7101, tcp://10.99.2.1:7101\"\n"
                   "  events: \"tcp://10.99.1.1:7102, tcp://10.99.2.1:7102\"\n", router, pub);
    fprintf (file, "%.*s", (int) (checkpoint - keys), keys);
    fprintf (file, "checkpoint:\n  every_events: 1000\n  every_seconds: 60\n  path: \"%s/checkpoints/%s.ckpt\"\n",
             f->dir, name);
    if (ha)
        fprintf (file, "store:\n  backend: postgres\n  dsn: \"%s\"\nha:\n  name: %s\n  lease_ms: 3000\n", f->dsn, name);
    fclose (file);
}

static void
s_start_broker (s_fixture_t *f, int index)
{
    char log [32];
    snprintf (log, sizeof log, "broker-%d", index + 1);
    const char *argv [] = { f->airlock, "broker", "--config", f->config_broker [index], NULL };
    f->broker [index] = s_spawn (f, f->ns [index == 0? S_NS_BROKER_1: S_NS_BROKER_2], log, argv);
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
    snprintf (f->dir, sizeof f->dir, "/tmp/al-netnspg-XXXXXX");
    assert_non_null (mkdtemp (f->dir));
    snprintf (f->airlock, sizeof f->airlock, "%s/airlock", getenv ("AIRLOCK_BINARY_DIR"));

    //  PostgreSQL in its own namespace, on both of its links.
    char error [1024] = "";
    f->pg = pg_harness_new_in (f->ns [S_NS_PG], "10.99.3.2,10.99.4.2", error, sizeof error);
    if (!f->pg)
        fail_msg ("pg_harness_new_in: %s", error);
    f->dsn = pg_harness_database_new (f->pg, "netns", error, sizeof error);
    if (!f->dsn)
        fail_msg ("pg_harness_database_new: %s", error);

    assert_int_equal (s_shell ("'%s' init '%s' > /dev/null && '%s' keygen --name alice --out '%s/alice.key' > /dev/null",
                               f->airlock, f->dir, f->airlock, f->dir), 0);
    char path [400];
    snprintf (path, sizeof path, "%s/airlock.yaml", f->dir);
    char *text = dtu_read (path);
    assert_non_null (text);
    snprintf (f->config_agents, sizeof f->config_agents, "%s/agents.yaml", f->dir);
    snprintf (f->config_broker [0], sizeof f->config_broker [0], "%s/broker-1.yaml", f->dir);
    snprintf (f->config_broker [1], sizeof f->config_broker [1], "%s/broker-2.yaml", f->dir);
    s_write_config (f, f->config_agents, text, "agents", "tcp://10.99.1.1:7101", "tcp://10.99.1.1:7102", false);
    s_write_config (f, f->config_broker [0], text, "broker-1", "tcp://10.99.1.1:7101", "tcp://10.99.1.1:7102", true);
    s_write_config (f, f->config_broker [1], text, "broker-2", "tcp://10.99.2.1:7101", "tcp://10.99.2.1:7102", true);
    free (text);

    snprintf (path, sizeof path, "%s/policy", f->dir);
    dtu_open_calendar (path);
    snprintf (path, sizeof path, "%s/alice.key.pub", f->dir);
    char *public_line = dtu_read (path);
    assert_non_null (public_line);
    char hex [65];
    assert_int_equal (sscanf (public_line, "airlock-ed25519 %64s", hex), 1);
    free (public_line);
    snprintf (path, sizeof path, "%s/policy/approvers.yaml", f->dir);
    FILE *file = fopen (path, "w");
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

    //  broker-1 first: it takes the lease; then broker-2, a standby.
    s_start_broker (f, 0);
    s_wait_log (f, "broker-1", "is active (lease epoch");
    s_start_broker (f, 1);
    s_wait_log (f, "broker-2", "is a standby until it holds the lease");

    for (int i = 0; i < S_AGENTS; i++) {
        const char *argv [] = { f->airlock, "agent", s_roles [i], "--config", f->config_agents,
                                i == 2? "--interval-ms": NULL, "250", NULL };
        f->agents [i] = s_spawn (f, f->ns [S_NS_AGENTS], s_roles [i], argv);
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
    s_kill (&f->broker [0], SIGTERM);
    s_kill (&f->broker [1], SIGTERM);
    pg_harness_destroy (&f->pg);
    free (f->dsn);
    //  The demo service instances deploy-manager started live in the agents' namespace:
    //  deleting it does not stop them, so stop what still runs there first.
    for (int i = 0; i < S_NAMESPACES; i++)
        s_shell ("ip netns pids %s 2>/dev/null | xargs -r kill -9 2>/dev/null", f->ns [i]);
    s_namespaces_delete (f);
    //  Nothing of this run is left in the kernel.
    for (int i = 0; i < S_NAMESPACES; i++)
        assert_int_not_equal (s_shell ("ip netns list | grep -q -e '%s'", f->ns [i]), 0);
    dtu_remove_tree (f->dir);
    free (f);
    return 0;
}

static void
test_release_across_a_cut_link (void **state)
{
    s_fixture_t *f = *state;
    //  The namespaces route only their own links: nothing can leave them.
    for (int i = 0; i < S_NAMESPACES; i++)
        assert_int_equal (s_shell ("test \"$(ip -n %s route show | grep -v '^10\\.99\\.[1-4]\\.0/24 ')\" = ''",
                                   f->ns [i]), 0);
    //  PostgreSQL listens only on its links; broker-1 holds the lease over its link
    //  (the lease row names it) and its connections are tcp from 10.99.3.1.
    assert_int_equal (s_shell ("test \"$(ip netns exec %s ss -Htln | awk '{print $4}' | grep -v -e '^10.99.3.2:' "
                               "-e '^10.99.4.2:')\" = ''", f->ns [S_NS_PG]), 0);
    char error [1024] = "";
    char *dbname = strstr (f->dsn, "dbname=") + strlen ("dbname=");
    char name [64];
    assert_int_equal (sscanf (dbname, "%63s", name), 1);
    char *holder = pg_harness_sql (f->pg, name, "SELECT holder FROM airlock_ha.leader", error, sizeof error);
    if (!holder)
        fail_msg ("%s", error);
    if (strncmp (holder, "broker-1-", 9) != 0)       // name-pid-random
        fail_msg ("the lease is held by %s, not broker-1", holder);
    free (holder);
    assert_int_equal (s_shell ("ip netns exec %s ss -Htn state established dst 10.99.3.2 | grep -q .",
                               f->ns [S_NS_BROKER_1]), 0);
    //  The standby binds nothing; the active broker listens on its link address.
    assert_int_not_equal (s_shell ("ip netns exec %s ss -Htln | grep -q ':7101'", f->ns [S_NS_BROKER_2]), 0);
    assert_int_equal (s_shell ("ip netns exec %s ss -Htln | grep -q '10.99.1.1:7101'", f->ns [S_NS_BROKER_1]), 0);
    //  The agents' connections are established tcp from their namespace.
    assert_int_equal (s_shell ("test $(ip netns exec %s ss -Htn state established dst 10.99.1.1"
                               " | wc -l) -ge %d", f->ns [S_NS_AGENTS], S_AGENTS), 0);

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

    s_wait_state (f, "rel-net", "APPROVE", 120000);
    //  Cut the link between the agents and the active broker in the middle of the
    //  release, while it waits for the approval (a cut during a soak fails the release
    //  closed: the monitor's evidence cannot reach deploy-manager), long enough (5 s:
    //  5 heartbeat intervals) for every agent to declare it dead (the standby does not
    //  answer: it holds no lease); then restore it.
    assert_int_equal (s_shell ("ip -n %s link set %s down", f->ns [S_NS_AGENTS], f->veth [0][1]), 0);
    int64_t cut_at = zclock_mono ();
    assert_int_not_equal (s_airlock (f, "cut", "status --timeout 2"), 0);
    while (zclock_mono () - cut_at < 5000)
        zclock_sleep (100);
    assert_int_equal (s_shell ("ip -n %s link set %s up", f->ns [S_NS_AGENTS], f->veth [0][1]), 0);

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
                     f->ns [S_NS_AGENTS], port) == 0)
            answering++;
    }
    json_decref (root);
    assert_int_equal (answering, 2);
    //  The release's messages are in PostgreSQL's audit log, written across the link.
    char *count = pg_harness_sql (f->pg, name, "SELECT count(*) FROM information_schema.tables "
                                  "WHERE table_schema NOT IN ('pg_catalog', 'information_schema', 'airlock_ha')",
                                  error, sizeof error);
    assert_non_null (count);
    assert_true (atoi (count) > 0);
    free (count);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_release_across_a_cut_link, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
