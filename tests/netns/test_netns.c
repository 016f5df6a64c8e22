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
#include "netns_harness.h"
#include "proc_harness.h"
#include <czmq.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_AGENTS 4
#define S_BROKER_ADDRESS "10.99.0.1"
#define S_AGENTS_ADDRESS "10.99.0.2"

//  Namespaces by index; the one link joins them (subnet 10.99.0.0/24, the broker's end .1).
enum { S_NS_BROKER, S_NS_AGENTS };
static const char *s_ns_names [] = { "broker", "agents" };
static const nh_link_t s_links [] = { { S_NS_BROKER, S_NS_AGENTS, 0 } };

typedef struct {
    char dir [256];
    char config [300];
    char airlock [400];
    nh_net_t *net;
    ph_cli_t cli;                   // in the agents' namespace
    al_child_t *broker;
    al_child_t *agents [S_AGENTS];
} s_fixture_t;

static const char *s_roles [S_AGENTS] = { "orchestrator", "deploy-manager", "monitor", "qa" };
static const char *s_logs [] = { "broker", "orchestrator", "deploy-manager", "monitor", "qa" };

static void
s_dump_logs (s_fixture_t *f)
{
    ph_dump_logs (f->dir, s_logs, sizeof s_logs / sizeof s_logs [0], 3000);
}

static void
s_wait_state (s_fixture_t *f, const char *release, const char *want, int timeout_ms)
{
    char *state = ph_wait_state (&f->cli, release, want, timeout_ms);
    if (!state || strcmp (state, want) != 0) {
        s_dump_logs (f);
        fail_msg ("%s: state %s, expected %s", release, state? state: "(none)", want);
    }
    free (state);
}

static int
s_setup (void **state)
{
    s_fixture_t *f = calloc (1, sizeof *f);
    assert_non_null (f);
    *state = f;
    bool unsupported = false;
    char error [1024] = "";
    f->net = nh_new (s_ns_names, 2, s_links, 1, &unsupported, error, sizeof error);
    if (!f->net && unsupported) {
        fprintf (stderr, "test_netns: SKIPPED: %s\n", error);
        free (f);
        exit (77);
    }
    if (!f->net)
        fail_msg ("%s", error);
    snprintf (f->dir, sizeof f->dir, "/tmp/al-netns-XXXXXX");
    assert_non_null (mkdtemp (f->dir));
    snprintf (f->config, sizeof f->config, "%s/airlock.yaml", f->dir);
    snprintf (f->airlock, sizeof f->airlock, "%s/airlock", getenv ("AIRLOCK_BINARY_DIR"));
    f->cli = (ph_cli_t) { .airlock = f->airlock, .config = f->config, .dir = f->dir,
                          .netns = nh_ns (f->net, S_NS_AGENTS) };
    const char *keys [] = { "alice" }, *roles [] = { "manager" };
    if (ph_init (f->airlock, f->dir, keys, 1, error, sizeof error) != 0)
        fail_msg ("%s", error);
    //  Both broker endpoints on the link: nothing of the bus goes through ipc:// files.
    char *text = dtu_read (f->config);
    assert_non_null (text);
    ph_endpoints_t endpoints = { .router = "tcp://" S_BROKER_ADDRESS ":7101", .pub = "tcp://" S_BROKER_ADDRESS ":7102" };
    int rc = ph_write_config (f->config, text, f->dir, &endpoints, error, sizeof error);
    free (text);
    if (rc != 0 || ph_prepare_demo (f->dir, keys, roles, 1, 1500, NULL, error, sizeof error) != 0)
        fail_msg ("%s", error);

    ph_cli_t broker_side = f->cli;
    broker_side.netns = nh_ns (f->net, S_NS_BROKER);
    f->broker = ph_start_broker (&broker_side, f->config, "broker", error, sizeof error);
    if (!f->broker)
        fail_msg ("%s", error);
    //  Everyone registered, over the link.
    if (ph_start_agents (&f->cli, s_roles, S_AGENTS, f->agents, 60000, error, sizeof error) != S_AGENTS) {
        s_dump_logs (f);
        fail_msg ("the agents did not all register with the broker across the link: %s", error);
    }
    return 0;
}

static int
s_teardown (void **state)
{
    s_fixture_t *f = *state;
    ph_stop_all (f->agents, S_AGENTS, SIGTERM);
    ph_stop (&f->broker, SIGTERM);
    //  The demo service instances deploy-manager started live in the agents' namespace:
    //  nh_delete stops them before it deletes the namespaces.
    int left = f->net? nh_delete (f->net): 0;
    nh_destroy (&f->net);
    dtu_remove_tree (f->dir);
    free (f);
    //  Nothing of this run is left in the kernel.
    assert_int_equal (left, 0);
    return 0;
}

static void
test_release_across_a_cut_link (void **state)
{
    s_fixture_t *f = *state;
    const char *ns_broker = nh_ns (f->net, S_NS_BROKER), *ns_agents = nh_ns (f->net, S_NS_AGENTS);
    //  The namespaces route only their own link: nothing can leave them.
    assert_int_equal (ph_shell ("test \"$(ip -n %s route show | grep -v '^10.99.0.0/24 ')\" = ''", ns_broker), 0);
    assert_int_equal (ph_shell ("test \"$(ip -n %s route show | grep -v '^10.99.0.0/24 ')\" = ''", ns_agents), 0);
    //  The broker listens on the link address, not on ipc: its sockets are tcp.
    assert_int_equal (ph_shell ("ip netns exec %s ss -Htln | grep -q '" S_BROKER_ADDRESS ":7101'", ns_broker), 0);
    //  The agents' connections are established tcp from the other namespace.
    assert_int_equal (ph_shell ("test $(ip netns exec %s ss -Htn state established dst " S_BROKER_ADDRESS
                               " | wc -l) -ge %d", ns_agents, S_AGENTS), 0);

    char artifact [1024], sha [65], error [4096] = "";
    dtu_artifact (f->dir, "demo-v1", "v1", NULL, artifact, sizeof artifact, sha);
    if (ph_submit (&f->cli, "demo", "rel-net", "v1", artifact, sha, "faster checkout\n", NULL, error, sizeof error) != 0)
        fail_msg ("%s", error);

    //  Cut the link in the middle of the release, while it waits for the approval (a
    //  cut during a soak fails the release closed: the monitor's evidence cannot reach
    //  deploy-manager), long enough (5 s: 5 heartbeat intervals) for every agent to
    //  declare the broker dead; the broker cannot be reached meanwhile (a status query
    //  times out), then the link comes back.
    s_wait_state (f, "rel-net", "APPROVE", 120000);
    assert_int_equal (ph_shell ("ip -n %s link set %s down", ns_agents, nh_veth (f->net, 0, 1)), 0);
    int64_t cut_at = zclock_mono ();
    assert_int_not_equal (ph_airlock (&f->cli, "cut", "status --timeout 2"), 0);
    char *cut = ph_output (&f->cli, "cut");
    assert_non_null (cut);
    assert_non_null (strstr (cut, "no answer from the broker"));
    free (cut);
    while (zclock_mono () - cut_at < 5000)
        zclock_sleep (100);
    assert_int_equal (ph_shell ("ip -n %s link set %s up", ns_agents, nh_veth (f->net, 0, 1)), 0);

    char *text = NULL;
    int rc = ph_approve (&f->cli, "rel-net-prod", "alice", &text);
    if (rc != 0 || !text || !strstr (text, "granted"))
        fail_msg ("airlock approve: exit %d:\n%s", rc, text? text: "");
    free (text);
    s_wait_state (f, "rel-net", "DONE", 120000);

    //  Production runs the new version on both instances, answering in the agents'
    //  namespace (where deploy-manager started them).
    assert_int_equal (ph_answering (f->dir, "demo", "production", "v1", ns_agents), 2);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_release_across_a_cut_link, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
