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
#include "netns_harness.h"
#include "pg_harness.h"
#include "proc_harness.h"
#include <czmq.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_AGENTS 4
#define S_NAMESPACES 4
#define S_LINKS 4

//  Namespaces by index.
enum { S_NS_AGENTS, S_NS_BROKER_1, S_NS_BROKER_2, S_NS_PG };
static const char *s_ns_names [S_NAMESPACES] = { "agents", "broker1", "broker2", "pg" };

//  Link L joins namespaces s_links [L].a (address 10.99.L+1.1) and .b (10.99.L+1.2).
static const nh_link_t s_links [S_LINKS] = {
    { S_NS_BROKER_1, S_NS_AGENTS, 1 }, { S_NS_BROKER_2, S_NS_AGENTS, 2 },
    { S_NS_BROKER_1, S_NS_PG, 3 }, { S_NS_BROKER_2, S_NS_PG, 4 }
};

typedef struct {
    char dir [256];
    char config_agents [300];
    char config_broker [2][300];
    char airlock [400];
    nh_net_t *net;
    ph_cli_t cli;                   // in the agents' namespace
    pg_harness_t *pg;
    char *dsn;
    al_child_t *broker [2];
    al_child_t *agents [S_AGENTS];
} s_fixture_t;

static const char *s_roles [S_AGENTS] = { "orchestrator", "deploy-manager", "monitor", "qa" };
static const char *s_logs [] = { "broker-1", "broker-2", "orchestrator", "deploy-manager", "monitor", "qa" };

static void
s_dump_logs (s_fixture_t *f)
{
    ph_dump_logs (f->dir, s_logs, sizeof s_logs / sizeof s_logs [0], 3000);
    if (f->pg)
        ph_shell ("tail -n 20 '%s/server.log' >&2", pg_harness_dir (f->pg));
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

//  Wait (60 s at most) until LOG says TEXT.
static void
s_wait_log (s_fixture_t *f, const char *log, const char *text)
{
    if (!ph_wait_log (f->dir, log, text, 60000)) {
        s_dump_logs (f);
        fail_msg ("%s never logged \"%s\"", log, text);
    }
}

//  broker-1 or broker-2 in its own namespace, with its own config.
static void
s_start_broker (s_fixture_t *f, int index)
{
    char log [32], error [1024] = "";
    snprintf (log, sizeof log, "broker-%d", index + 1);
    ph_cli_t broker_side = f->cli;
    broker_side.netns = nh_ns (f->net, index == 0? S_NS_BROKER_1: S_NS_BROKER_2);
    f->broker [index] = ph_start_broker (&broker_side, f->config_broker [index], log, error, sizeof error);
    if (!f->broker [index])
        fail_msg ("%s", error);
}

static int
s_setup (void **state)
{
    s_fixture_t *f = calloc (1, sizeof *f);
    assert_non_null (f);
    *state = f;
    bool unsupported = false;
    char error [1024] = "";
    f->net = nh_new (s_ns_names, S_NAMESPACES, s_links, S_LINKS, &unsupported, error, sizeof error);
    if (!f->net && unsupported) {
        fprintf (stderr, "test_netns_pg: SKIPPED: %s\n", error);
        free (f);
        exit (77);
    }
    if (!f->net)
        fail_msg ("%s", error);
    snprintf (f->dir, sizeof f->dir, "/tmp/al-netnspg-XXXXXX");
    assert_non_null (mkdtemp (f->dir));
    snprintf (f->airlock, sizeof f->airlock, "%s/airlock", getenv ("AIRLOCK_BINARY_DIR"));
    snprintf (f->config_agents, sizeof f->config_agents, "%s/agents.yaml", f->dir);
    f->cli = (ph_cli_t) { .airlock = f->airlock, .config = f->config_agents, .dir = f->dir,
                          .netns = nh_ns (f->net, S_NS_AGENTS) };

    //  PostgreSQL in its own namespace, on both of its links.
    f->pg = pg_harness_new_in (nh_ns (f->net, S_NS_PG), "10.99.3.2,10.99.4.2", error, sizeof error);
    if (!f->pg)
        fail_msg ("pg_harness_new_in: %s", error);
    f->dsn = pg_harness_database_new (f->pg, "netns", error, sizeof error);
    if (!f->dsn)
        fail_msg ("pg_harness_database_new: %s", error);

    const char *keys [] = { "alice" }, *roles [] = { "manager" };
    if (ph_init (f->airlock, f->dir, keys, 1, error, sizeof error) != 0)
        fail_msg ("%s", error);
    char path [400];
    snprintf (path, sizeof path, "%s/airlock.yaml", f->dir);
    char *text = dtu_read (path);
    assert_non_null (text);
    snprintf (f->config_broker [0], sizeof f->config_broker [0], "%s/broker-1.yaml", f->dir);
    snprintf (f->config_broker [1], sizeof f->config_broker [1], "%s/broker-2.yaml", f->dir);
    //  Every process names both brokers; each broker binds its own link address and
    //  keeps its own checkpoint file; only the brokers hold the store and the lease.
    const char *brokers = "tcp://10.99.1.1:7101, tcp://10.99.2.1:7101",
               *events = "tcp://10.99.1.1:7102, tcp://10.99.2.1:7102";
    ph_endpoints_t agents = { "tcp://10.99.1.1:7101", "tcp://10.99.1.1:7102", brokers, events, "agents", NULL, NULL };
    ph_endpoints_t broker_1 = { "tcp://10.99.1.1:7101", "tcp://10.99.1.1:7102", brokers, events, "broker-1", f->dsn,
                                "broker-1" };
    ph_endpoints_t broker_2 = { "tcp://10.99.2.1:7101", "tcp://10.99.2.1:7102", brokers, events, "broker-2", f->dsn,
                                "broker-2" };
    int rc = ph_write_config (f->config_agents, text, f->dir, &agents, error, sizeof error);
    if (rc == 0)
        rc = ph_write_config (f->config_broker [0], text, f->dir, &broker_1, error, sizeof error);
    if (rc == 0)
        rc = ph_write_config (f->config_broker [1], text, f->dir, &broker_2, error, sizeof error);
    free (text);
    if (rc != 0 || ph_prepare_demo (f->dir, keys, roles, 1, 1500, NULL, error, sizeof error) != 0)
        fail_msg ("%s", error);

    //  broker-1 first: it takes the lease; then broker-2, a standby.
    s_start_broker (f, 0);
    s_wait_log (f, "broker-1", "is active (lease epoch");
    s_start_broker (f, 1);
    s_wait_log (f, "broker-2", "is a standby until it holds the lease");

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
    ph_stop_all (f->broker, 2, SIGTERM);
    pg_harness_destroy (&f->pg);
    free (f->dsn);
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
    //  The namespaces route only their own links: nothing can leave them.
    for (int i = 0; i < S_NAMESPACES; i++)
        assert_int_equal (ph_shell ("test \"$(ip -n %s route show | grep -v '^10\\.99\\.[1-4]\\.0/24 ')\" = ''",
                                   nh_ns (f->net, i)), 0);
    //  PostgreSQL listens only on its links; broker-1 holds the lease over its link
    //  (the lease row names it) and its connections are tcp from 10.99.3.1.
    assert_int_equal (ph_shell ("test \"$(ip netns exec %s ss -Htln | awk '{print $4}' | grep -v -e '^10.99.3.2:' "
                               "-e '^10.99.4.2:')\" = ''", nh_ns (f->net, S_NS_PG)), 0);
    char error [4096] = "";
    char *dbname = strstr (f->dsn, "dbname=") + strlen ("dbname=");
    char name [64];
    assert_int_equal (sscanf (dbname, "%63s", name), 1);
    char *holder = pg_harness_sql (f->pg, name, "SELECT holder FROM airlock_ha.leader", error, sizeof error);
    if (!holder)
        fail_msg ("%s", error);
    if (strncmp (holder, "broker-1-", 9) != 0)       // name-pid-random
        fail_msg ("the lease is held by %s, not broker-1", holder);
    free (holder);
    assert_int_equal (ph_shell ("ip netns exec %s ss -Htn state established dst 10.99.3.2 | grep -q .",
                               nh_ns (f->net, S_NS_BROKER_1)), 0);
    //  The standby binds nothing; the active broker listens on its link address.
    assert_int_not_equal (ph_shell ("ip netns exec %s ss -Htln | grep -q ':7101'", nh_ns (f->net, S_NS_BROKER_2)), 0);
    assert_int_equal (ph_shell ("ip netns exec %s ss -Htln | grep -q '10.99.1.1:7101'", nh_ns (f->net, S_NS_BROKER_1)), 0);
    //  The agents' connections are established tcp from their namespace.
    assert_int_equal (ph_shell ("test $(ip netns exec %s ss -Htn state established dst 10.99.1.1"
                               " | wc -l) -ge %d", nh_ns (f->net, S_NS_AGENTS), S_AGENTS), 0);

    char artifact [1024], sha [65];
    dtu_artifact (f->dir, "demo-v1", "v1", NULL, artifact, sizeof artifact, sha);
    if (ph_submit (&f->cli, "demo", "rel-net", "v1", artifact, sha, "faster checkout\n", NULL, error, sizeof error) != 0)
        fail_msg ("%s", error);

    s_wait_state (f, "rel-net", "APPROVE", 120000);
    //  Cut the link between the agents and the active broker in the middle of the
    //  release, while it waits for the approval (a cut during a soak fails the release
    //  closed: the monitor's evidence cannot reach deploy-manager), long enough (5 s:
    //  5 heartbeat intervals) for every agent to declare it dead (the standby does not
    //  answer: it holds no lease); then restore it.
    assert_int_equal (ph_shell ("ip -n %s link set %s down", nh_ns (f->net, S_NS_AGENTS), nh_veth (f->net, 0, 1)), 0);
    int64_t cut_at = zclock_mono ();
    assert_int_not_equal (ph_airlock (&f->cli, "cut", "status --timeout 2"), 0);
    while (zclock_mono () - cut_at < 5000)
        zclock_sleep (100);
    assert_int_equal (ph_shell ("ip -n %s link set %s up", nh_ns (f->net, S_NS_AGENTS), nh_veth (f->net, 0, 1)), 0);

    char *text = NULL;
    int rc = ph_approve (&f->cli, "rel-net-prod", "alice", &text);
    if (rc != 0 || !text || !strstr (text, "granted"))
        fail_msg ("airlock approve: exit %d:\n%s", rc, text? text: "");
    free (text);
    s_wait_state (f, "rel-net", "DONE", 120000);

    //  Production runs the new version on both instances, answering in the agents'
    //  namespace (where deploy-manager started them).
    assert_int_equal (ph_answering (f->dir, "demo", "production", "v1", nh_ns (f->net, S_NS_AGENTS)), 2);
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
