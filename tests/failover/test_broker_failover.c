/*  test_broker_failover.c: two `airlock broker` processes on one PostgreSQL.

    One `airlock init` state directory (one set of keys and one policy, as two brokers of
    one deployment share them), a throwaway PostgreSQL (tests/pg), and three
    airlock.yaml files: broker A's and broker B's (each its own ipc:// endpoints in the
    temporary directory, its checkpoint file, the same store.dsn) and the clients'
    (endpoints.brokers / events: both brokers). Shown:
      - A takes the lease and serves; B waits as a standby and binds nothing;
      - a QaRequest is committed by A and queued for qa (no qa agent is connected);
      - A is paused with SIGSTOP past its lease: B takes over, the client moves to B and
        its next message is committed on the same chain, and the qa agent that connects
        now gets the delivery A queued (B resumed the queue from the store);
      - a client that only knows A posts while A is paused; A is woken: its commit is
        fenced, it acknowledges nothing and exits non-zero, and the message is not in
        the log; the chain verifies;
      - a standby stops on SIGTERM; B stopped writes a signed checkpoint covering A's
        rows and its own.
    And pending approvals survive a failover: a production hotfix request (manager +
    security) holds one approval accepted by A; A is killed; B takes over and rebuilds
    the request and its approval from the store: a replay of the first approval is
    refused as used before, the second completes the quorum, and deploy-manager gets
    exactly one ExecuteDeploy carrying both signed approvals.
    The lease on its own thread: while a session holds the lease row (so that the
    renewal waits for it), the active broker still acknowledges messages, the lease
    stays valid, and the renewal goes through once the row is free. Under systemd
    (a fake $NOTIFY_SOCKET): a standby says READY=1 with STATUS=standby and feeds the
    watchdog while it waits, then says READY=1 with its endpoints once it took over.
    The lease follows the reactor: a reactor hung by a stall point (the process alive)
    stops the renewals, B takes over, and A, resumed, commits nothing and exits; a
    takeover's rebuild slowed past that bound keeps its lease and keeps systemd fed.
    Waits are bounded loops on conditions, never assertions on time.
*/
#include "agents/al_agent.h"
#include "base/al_config.h"
#include "store/al_store.h"
#include "store/al_store_pg.h"
#include "pg_harness.h"
#include "proc_harness.h"
#include "policies/al_approval_sign.h"

#include <czmq.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <libpq-fe.h>
#include <poll.h>
#include <sodium.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <cmocka.h>

typedef struct {
    pg_harness_t *pg;
    char *dsn;
    char dir [128];
    char airlock [400];
    char config_a [256], config_b [256], config_clients [256], config_only_a [256];
    pid_t a, b;
} fixture_t;

//  `airlock broker --config CONFIG`, its stderr in DIR/LOG.log, with the environment
//  settings ENV ("NAME=VALUE", NULL-terminated; NULL: none) added.
static pid_t
s_broker_with (fixture_t *f, const char *config, const char *log, char *const *env)
{
    char path [400];
    snprintf (path, sizeof path, "%s/%s.log", f->dir, log);
    pid_t pid = fork ();
    assert_true (pid >= 0);
    if (pid == 0) {
        for (size_t i = 0; env && env [i]; i++)
            putenv (env [i]);
        FILE *out = freopen (path, "a", stderr);
        (void) out;
        execl (f->airlock, f->airlock, "broker", "--config", config, (char *) NULL);
        _exit (127);
    }
    return pid;
}

static pid_t
s_broker (fixture_t *f, const char *config, const char *log)
{
    return s_broker_with (f, config, log, NULL);
}

//  Exit status of PID within timeout_ms (else killed: -1).
static int
s_wait_exit (pid_t *pid, int timeout_ms)
{
    int status = 0;
    for (int64_t deadline = zclock_mono () + timeout_ms; zclock_mono () < deadline; zclock_sleep (20))
        if (waitpid (*pid, &status, WNOHANG) == *pid) {
            *pid = 0;
            return WIFEXITED (status)? WEXITSTATUS (status): 128 + WTERMSIG (status);
        }
    kill (*pid, SIGKILL);
    waitpid (*pid, NULL, 0);
    *pid = 0;
    return -1;
}

static bool
s_log_has (fixture_t *f, const char *log, const char *text)
{
    return ph_log_has (f->dir, log, text);
}

//  One broker's airlock.yaml: the init one with its own endpoints and checkpoint file
//  and the ha section; ROUTERS / PUBS: what clients connect to.
static void
s_write_config (fixture_t *f, const char *path, const char *name, const char *routers, const char *pubs)
{
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fprintf (file, "state_dir: %s\nendpoints:\n  router: ipc://%s/%s-router.ipc\n  pub: ipc://%s/%s-pub.ipc\n"
                   "  brokers: \"%s\"\n  events: \"%s\"\n"
                   "checkpoint:\n  path: %s/checkpoints/%s.ckpt\n"
                   "store:\n  backend: postgres\n  dsn: \"%s\"\nha:\n  name: %s\n  lease_ms: 3000\n",
             f->dir, f->dir, name, f->dir, name, routers, pubs, f->dir, name, f->dsn, name);
    fclose (file);
}

static int
setup (void **state)
{
    fixture_t *f = calloc (1, sizeof *f);
    assert_non_null (f);
    char error [1024] = "";
    f->pg = pg_harness_new (error, sizeof error);
    if (!f->pg)
        fail_msg ("pg_harness_new: %s", error);
    f->dsn = pg_harness_database_new (f->pg, "failover", error, sizeof error);
    assert_non_null (f->dsn);
    snprintf (f->dir, sizeof f->dir, "/tmp/al-bfail-XXXXXX");
    assert_non_null (mkdtemp (f->dir));
    snprintf (f->airlock, sizeof f->airlock, "%s/airlock", getenv ("AIRLOCK_BINARY_DIR"));
    assert_int_equal (ph_shell ("'%s' init '%s' > /dev/null", f->airlock, f->dir), 0);
    char routers [600], pubs [600], router_a [300], pub_a [300];
    snprintf (routers, sizeof routers, "ipc://%s/a-router.ipc, ipc://%s/b-router.ipc", f->dir, f->dir);
    snprintf (pubs, sizeof pubs, "ipc://%s/a-pub.ipc, ipc://%s/b-pub.ipc", f->dir, f->dir);
    snprintf (router_a, sizeof router_a, "ipc://%s/a-router.ipc", f->dir);
    snprintf (pub_a, sizeof pub_a, "ipc://%s/a-pub.ipc", f->dir);
    snprintf (f->config_a, sizeof f->config_a, "%s/broker-a.yaml", f->dir);
    snprintf (f->config_b, sizeof f->config_b, "%s/broker-b.yaml", f->dir);
    snprintf (f->config_clients, sizeof f->config_clients, "%s/clients.yaml", f->dir);
    snprintf (f->config_only_a, sizeof f->config_only_a, "%s/only-a.yaml", f->dir);
    s_write_config (f, f->config_a, "a", routers, pubs);
    s_write_config (f, f->config_b, "b", routers, pubs);
    s_write_config (f, f->config_clients, "clients", routers, pubs);
    s_write_config (f, f->config_only_a, "only-a", router_a, pub_a);
    *state = f;
    return 0;
}

static int
teardown (void **state)
{
    fixture_t *f = *state;
    if (f->a > 0) {
        kill (f->a, SIGCONT);
        kill (f->a, SIGKILL);
        waitpid (f->a, NULL, 0);
    }
    if (f->b > 0) {
        kill (f->b, SIGKILL);
        waitpid (f->b, NULL, 0);
    }
    //  The brokers' last words, for a failure's diagnosis.
    ph_shell ("tail -n 40 '%s/a.log' '%s/b.log' >&2", f->dir, f->dir);
    ph_shell ("test -f '%s/a-again.log' && tail -n 20 '%s/a-again.log' >&2", f->dir, f->dir);
    ph_shell ("rm -rf '%s'", f->dir);
    free (f->dsn);
    pg_harness_destroy (&f->pg);
    free (f);
    return 0;
}

static al_agent_t *
s_agent (const char *config_path, const char *role, bool deliveries)
{
    char error [1024] = "";
    al_config_t *config = al_config_load (config_path, error, sizeof error);
    if (!config)
        fail_msg ("%s", error);
    al_agent_t *agent = al_agent_new_for_role (config, role, deliveries, error, sizeof error);
    al_config_destroy (&config);
    if (!agent)
        fail_msg ("al_agent_new_for_role %s: %s", role, error);
    return agent;
}

static al_agent_status_t
s_qa_request (al_agent_t *agent, const char *version, int timeout_ms, al_agent_result_t *result, char *posted_id)
{
    al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
    Airlock__QaRequest request = AIRLOCK__QA_REQUEST__INIT;
    request.service = "demo";
    request.version = (char *) version;
    request.artifact_sha256 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    envelope.environment = AIRLOCK__ENVIRONMENT__ENV_STAGING;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_QA_REQUEST;
    envelope.qa_request = &request;
    if (posted_id)
        return al_agent_post (agent, &envelope, timeout_ms, posted_id, NULL, 0);
    return al_agent_send (agent, &envelope, timeout_ms, result);
}

static void
test_paused_broker_is_replaced_and_fenced (void **state)
{
    fixture_t *f = *state;
    f->a = s_broker (f, f->config_a, "a");
    al_agent_t *orchestrator = s_agent (f->config_clients, "orchestrator", false);
    al_agent_result_t result;
    assert_int_equal (s_qa_request (orchestrator, "v1", 60000, &result, NULL), AL_AGENT_ACKED);
    uint64_t first_sequence = result.audit_sequence;
    al_agent_info_t info;
    al_agent_info (orchestrator, &info);
    assert_int_equal (info.endpoint_index, 0);
    //  B: a standby, bound to nothing.
    f->b = s_broker (f, f->config_b, "b");
    for (int64_t deadline = zclock_mono () + 30000; zclock_mono () < deadline; zclock_sleep (50))
        if (s_log_has (f, "b", "is a standby"))
            break;
    assert_true (s_log_has (f, "b", "is a standby"));
    char path [300];
    snprintf (path, sizeof path, "%s/b-router.ipc", f->dir);
    assert_int_not_equal (access (path, F_OK), 0);

    //  A client that knows only A, registered there.
    al_agent_t *only_a = s_agent (f->config_only_a, "orchestrator", false);
    assert_int_equal (al_agent_wait_registered (only_a, 60000), 0);

    //  Pause A past its lease (3 s): B takes over.
    assert_int_equal (kill (f->a, SIGSTOP), 0);
    for (int64_t deadline = zclock_mono () + 60000; zclock_mono () < deadline; zclock_sleep (50))
        if (s_log_has (f, "b", "is active"))
            break;
    assert_true (s_log_has (f, "b", "is active (lease epoch"));
    //  The clients move to B; the chain goes on from A's rows.
    assert_int_equal (s_qa_request (orchestrator, "v2", 60000, &result, NULL), AL_AGENT_ACKED);
    assert_true (result.audit_sequence > first_sequence);
    al_agent_info (orchestrator, &info);
    assert_int_equal (info.endpoint_index, 1);
    //  qa connects now: B delivers what A queued (v1), then v2.
    al_agent_t *qa = s_agent (f->config_clients, "qa", true);
    al_envelope_t *delivery = al_agent_recv (qa, 60000);
    assert_non_null (delivery);
    assert_int_equal (delivery->body_case, AIRLOCK__ENVELOPE__BODY_QA_REQUEST);
    assert_string_equal (delivery->qa_request->version, "v1");
    assert_int_equal (delivery->delivery_id, first_sequence);
    assert_int_equal (al_agent_ack_delivery (qa, delivery->delivery_id), 0);
    al_codec_free (&delivery);

    //  The client that knows only A posts while A is paused; A is woken.
    char stale_id [AL_AGENT_ID_SIZE];
    assert_int_equal (s_qa_request (only_a, "stale", 1000, NULL, stale_id), AL_AGENT_QUEUED);
    zclock_sleep (500);
    assert_int_equal (kill (f->a, SIGCONT), 0);
    int code = s_wait_exit (&f->a, 60000);
    assert_true (code > 0 && code != 128 + SIGKILL);
    assert_true (s_log_has (f, "a", "fenced") || s_log_has (f, "a", "no longer the active broker"));
    assert_int_equal (al_agent_wait (only_a, stale_id, 500, &result), AL_AGENT_TIMEOUT);
    al_agent_destroy (&only_a);

    //  B goes on; stopped, it checkpoints everything, A's rows included; the log verifies.
    assert_int_equal (s_qa_request (orchestrator, "v3", 60000, &result, NULL), AL_AGENT_ACKED);
    uint64_t last_sequence = result.audit_sequence;
    al_agent_destroy (&qa);
    al_agent_destroy (&orchestrator);
    //  A standby stops on SIGTERM (it holds nothing).
    f->a = s_broker (f, f->config_a, "a-again");
    for (int64_t deadline = zclock_mono () + 30000; zclock_mono () < deadline; zclock_sleep (50))
        if (s_log_has (f, "a-again", "is a standby"))
            break;
    assert_true (s_log_has (f, "a-again", "is a standby"));
    kill (f->a, SIGTERM);
    code = s_wait_exit (&f->a, 30000);
    assert_true (code > 0 && code < 128);
    assert_true (s_log_has (f, "a-again", "stopped while standby"));
    kill (f->b, SIGTERM);
    assert_int_equal (s_wait_exit (&f->b, 60000), 0);
    char error [1024] = "";
    al_store_options_t read_only = { .read_only = true };
    al_store_t *store = al_store_open (AL_STORE_PG_BACKEND, f->dsn, &read_only, error, sizeof error);
    if (!store)
        fail_msg ("%s", error);
    assert_true (al_store_row_count (store) >= last_sequence);
    //  The stale message is nowhere in the log.
    bool found = false;
    al_store_iter_t *iter = al_store_iter_new (store, 1);
    assert_non_null (iter);
    al_store_event_t event;
    while (al_store_iter_next (iter, &event) == AL_STORE_OK)
        if (event.message_id && strcmp (event.message_id, stale_id) == 0)
            found = true;
    al_store_iter_destroy (&iter);
    assert_false (found);
    //  The chain verifies, and so does B's checkpoint, which covers every row.
    snprintf (path, sizeof path, "%s/checkpoints/b.ckpt", f->dir);
    al_verify_report_t report;
    assert_int_equal (al_store_verify (store, path, NULL, &report), AL_STORE_OK);
    if (report.result != AL_VERIFY_OK)
        fail_msg ("verify: %s", report.reason);
    assert_true (report.checkpoint_checked);
    assert_true (report.checkpoint_rows >= last_sequence);
    al_store_destroy (&store);
}

//  Replace the file's "calendar:" section with an empty calendar (deploy windows and
//  freezes are tested against injected clocks in tests/gate), and name two approvers:
//  alice (manager) and carol (security), the hotfix quorum of the default policy.
static void
s_approval_policy (fixture_t *f, const uint8_t *alice, const uint8_t *carol)
{
    char path [400], text [16384];
    snprintf (path, sizeof path, "%s/policy/constraints.yaml", f->dir);
    FILE *file = fopen (path, "r");
    assert_non_null (file);
    size_t size = fread (text, 1, sizeof text - 1, file);
    fclose (file);
    text [size] = 0;
    char *calendar = strstr (text, "\ncalendar:");
    assert_non_null (calendar);
    calendar [1] = 0;
    file = fopen (path, "w");
    assert_non_null (file);
    fprintf (file, "%scalendar:\n  timezone: UTC\n  applies_to: [production]\n  windows: []\n"
                   "  freezes:\n    weekdays: []\n    holidays: []\n    month_end: off\n", text);
    fclose (file);
    char alice_hex [65], carol_hex [65];
    sodium_bin2hex (alice_hex, sizeof alice_hex, alice, 32);
    sodium_bin2hex (carol_hex, sizeof carol_hex, carol, 32);
    snprintf (path, sizeof path, "%s/policy/approvers.yaml", f->dir);
    file = fopen (path, "w");
    assert_non_null (file);
    fprintf (file, "approvers:\n"
        "  - name: alice\n    roles: [manager]\n    keys:\n      - {id: a, ed25519: \"%s\"}\n"
        "  - name: carol\n    roles: [security]\n    keys:\n      - {id: c, ed25519: \"%s\"}\n",
        alice_hex, carol_hex);
    fclose (file);
}

static const char s_artifact [] = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

static Airlock__ApprovalRequest
s_hotfix_request (const char *request_id)
{
    Airlock__ApprovalRequest request = AIRLOCK__APPROVAL_REQUEST__INIT;
    request.request_id = (char *) request_id;
    request.deployment_type = AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_HOTFIX;
    request.environment = AIRLOCK__ENVIRONMENT__ENV_PRODUCTION;
    request.service = "demo-service";
    request.version = "v2.0.0";
    request.artifact_uri = "file:///artifacts/demo-service-v2";
    request.artifact_sha256 = (char *) s_artifact;
    request.qa_report_sha256 = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";
    request.requested_by = "orchestrator";
    request.summary = "v2: the checkout fix";
    request.strategy = AIRLOCK__STRATEGY__STRATEGY_ROLLING;
    request.instances = 3;
    return request;
}

static al_approval_signed_t *
s_sign (const Airlock__ApprovalRequest *request, const uint8_t *secret_key)
{
    al_approval_sign_options_t options = {
        .decision = AIRLOCK__DECISION__DECISION_GRANT, .issued_at_ms = (uint64_t) zclock_time (),
        .valid_for_ms = 3600000,
    };
    char error [256] = "";
    al_approval_signed_t *signed_approval = al_approval_sign_with_secret (request, secret_key, &options,
                                                                          error, sizeof error);
    if (!signed_approval)
        fail_msg ("signing: %s", error);
    return signed_approval;
}

static al_agent_status_t
s_send_approval (al_agent_t *approver, const al_approval_signed_t *signed_approval, al_agent_result_t *result)
{
    al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
    envelope.environment = AIRLOCK__ENVIRONMENT__ENV_PRODUCTION;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_SIGNED_APPROVAL;
    envelope.signed_approval = (Airlock__SignedApproval *) al_approval_signed_message (signed_approval);
    return al_agent_send (approver, &envelope, 60000, result);
}

//  Whether a grant's approvals include this one, byte for byte.
static bool
s_grant_holds (const Airlock__ProductionGrant *grant, const al_approval_signed_t *signed_approval)
{
    const Airlock__SignedApproval *wanted = al_approval_signed_message (signed_approval);
    for (size_t i = 0; i < grant->n_approvals; i++) {
        const Airlock__SignedApproval *held = grant->approvals [i];
        if (held->statement.len == wanted->statement.len && held->signature.len == wanted->signature.len
        &&  memcmp (held->statement.data, wanted->statement.data, wanted->statement.len) == 0
        &&  memcmp (held->signature.data, wanted->signature.data, wanted->signature.len) == 0)
            return true;
    }
    return false;
}

static void
test_pending_approval_survives_failover (void **state)
{
    fixture_t *f = *state;
    assert_true (sodium_init () >= 0);
    uint8_t alice_public [32], alice_secret [64], carol_public [32], carol_secret [64];
    crypto_sign_keypair (alice_public, alice_secret);
    crypto_sign_keypair (carol_public, carol_secret);
    s_approval_policy (f, alice_public, carol_public);

    //  A active, B standby.
    f->a = s_broker (f, f->config_a, "a");
    al_agent_t *orchestrator = s_agent (f->config_clients, "orchestrator", false);
    assert_int_equal (al_agent_wait_registered (orchestrator, 60000), 0);
    f->b = s_broker (f, f->config_b, "b");
    for (int64_t deadline = zclock_mono () + 30000; zclock_mono () < deadline; zclock_sleep (50))
        if (s_log_has (f, "b", "is a standby"))
            break;
    assert_true (s_log_has (f, "b", "is a standby"));

    //  The production request, filed with A.
    Airlock__ApprovalRequest request = s_hotfix_request ("req-ha-1");
    al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
    envelope.deployment_id = "req-ha-1";
    envelope.environment = AIRLOCK__ENVIRONMENT__ENV_PRODUCTION;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_APPROVAL_REQUEST;
    envelope.approval_request = &request;
    al_agent_result_t result;
    al_agent_status_t status = al_agent_send (orchestrator, &envelope, 60000, &result);
    if (status != AL_AGENT_ACKED)
        fail_msg ("the request was not filed: %s %s", al_agent_status_name (status), result.reason);

    //  alice (manager) approves through A: counted, security still needed.
    al_agent_t *approver = s_agent (f->config_clients, "approver", false);
    al_approval_signed_t *alice = s_sign (&request, alice_secret);
    status = s_send_approval (approver, alice, &result);
    if (status != AL_AGENT_ACKED)
        fail_msg ("alice's approval: %s %s", al_agent_status_name (status), result.reason);
    if (!strstr (result.reason, "waiting for 1 more approval: security"))
        fail_msg ("alice's approval: '%s'", result.reason);
    al_agent_info_t info;
    al_agent_info (approver, &info);
    assert_int_equal (info.endpoint_index, 0);

    //  A dies; B takes over and rebuilds the pending request from the store.
    assert_int_equal (kill (f->a, SIGKILL), 0);
    assert_int_equal (s_wait_exit (&f->a, 30000), 128 + SIGKILL);
    for (int64_t deadline = zclock_mono () + 60000; zclock_mono () < deadline; zclock_sleep (50))
        if (s_log_has (f, "b", "is active"))
            break;
    assert_true (s_log_has (f, "b", "is active (lease epoch"));
    al_agent_t *deploy_manager = s_agent (f->config_clients, "deploy-manager", true);

    //  A replay of alice's approval, now at B: used before.
    status = s_send_approval (approver, alice, &result);
    if (status != AL_AGENT_DENIED)
        fail_msg ("alice's replay at the new leader: %s %s", al_agent_status_name (status), result.reason);
    assert_int_equal (result.deny_code, AIRLOCK__DENY_CODE__DENY_APPROVAL_INVALID);
    if (!strstr (result.reason, "used before"))
        fail_msg ("alice's replay: '%s'", result.reason);
    al_agent_info (approver, &info);
    assert_int_equal (info.endpoint_index, 1);

    //  carol (security) completes the quorum at B.
    al_approval_signed_t *carol = s_sign (&request, carol_secret);
    status = s_send_approval (approver, carol, &result);
    if (status != AL_AGENT_ACKED)
        fail_msg ("carol's approval: %s %s", al_agent_status_name (status), result.reason);
    if (!strstr (result.reason, "granted"))
        fail_msg ("carol's approval: '%s'", result.reason);

    //  deploy-manager gets the grant from B, with both approvals.
    al_envelope_t *delivery = al_agent_recv (deploy_manager, 60000);
    assert_non_null (delivery);
    assert_int_equal (delivery->body_case, AIRLOCK__ENVELOPE__BODY_EXECUTE_DEPLOY);
    assert_int_equal (delivery->environment, AIRLOCK__ENVIRONMENT__ENV_PRODUCTION);
    assert_string_equal (delivery->sender->identity, "broker");
    const Airlock__ProductionGrant *grant = delivery->execute_deploy->grant;
    assert_non_null (grant);
    assert_string_equal (grant->request_id, "req-ha-1");
    assert_int_equal (grant->n_approvals, 2);
    assert_true (s_grant_holds (grant, alice));
    assert_true (s_grant_holds (grant, carol));
    assert_string_equal (delivery->execute_deploy->request->artifact_sha256, s_artifact);
    assert_int_equal (al_agent_ack_delivery (deploy_manager, delivery->delivery_id), 0);
    al_codec_free (&delivery);

    //  The request is closed now: alice's approval again is refused.
    status = s_send_approval (approver, alice, &result);
    assert_int_equal (status, AL_AGENT_DENIED);
    al_approval_signed_destroy (&alice);
    al_approval_signed_destroy (&carol);
    al_agent_destroy (&deploy_manager);
    al_agent_destroy (&approver);
    al_agent_destroy (&orchestrator);
    kill (f->b, SIGTERM);
    assert_int_equal (s_wait_exit (&f->b, 60000), 0);

    //  The log: exactly one grant for the request, and alice's approval accepted once.
    char error [1024] = "";
    al_store_options_t read_only = { .read_only = true };
    al_store_t *store = al_store_open (AL_STORE_PG_BACKEND, f->dsn, &read_only, error, sizeof error);
    if (!store)
        fail_msg ("%s", error);
    size_t grants = 0, approvals = 0, refusals = 0;
    al_store_iter_t *iter = al_store_iter_new (store, 1);
    assert_non_null (iter);
    al_store_event_t event;
    while (al_store_iter_next (iter, &event) == AL_STORE_OK) {
        if (strcmp (event.type, "ExecuteDeploy") == 0 && strcmp (event.sender, "broker") == 0
        &&  event.decision == AL_STORE_ACCEPTED)
            grants++;
        if (strcmp (event.type, "SignedApproval") == 0)
            event.decision == AL_STORE_ACCEPTED? approvals++: refusals++;
    }
    al_store_iter_destroy (&iter);
    assert_int_equal (grants, 1);
    assert_int_equal (approvals, 2);
    assert_int_equal (refusals, 2);
    al_verify_report_t report;
    assert_int_equal (al_store_verify (store, NULL, NULL, &report), AL_STORE_OK);
    if (report.result != AL_VERIFY_OK)
        fail_msg ("verify: %s", report.reason);
    al_store_destroy (&store);
}

//  The fixture's database name (dbname=... of its dsn).
static void
s_dbname (fixture_t *f, char *dbname, size_t size)
{
    const char *name = strstr (f->dsn, "dbname=");
    assert_non_null (name);
    snprintf (dbname, size, "%.*s", (int) strcspn (name + 7, " "), name + 7);
}

static long
s_count (fixture_t *f, const char *sql)
{
    char dbname [64], error [512] = "";
    s_dbname (f, dbname, sizeof dbname);
    char *value = pg_harness_sql (f->pg, dbname, sql, error, sizeof error);
    long count = value && *value? atol (value): -1;
    free (value);
    return count;
}

//  Sessions waiting for a lock while renewing the lease.
static long
s_renewals_waiting (fixture_t *f)
{
    return s_count (f, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                       " AND query LIKE 'UPDATE airlock_ha.leader%'");
}

//  A slow lease round trip: a session holds the lease row FOR SHARE (as a fence does)
//  for as long as the test likes, so the active broker's renewal (an UPDATE) waits for
//  it. The broker must go on acknowledging meanwhile (its commits' fences do not wait
//  for a share lock), with its lease still valid; once the row is free the renewal goes
//  through, same epoch. With the renewal on the reactor, the message would wait for the
//  renewal (the lease is 30 s, so is its lock_timeout) and the Ack would not come.
static void
test_slow_lease_round_trip_does_not_stall_the_broker (void **state)
{
    fixture_t *f = *state;
    //  A long lease: a renewal may wait that long for the row without risk to the lease.
    assert_int_equal (ph_shell ("sed -i 's/^  lease_ms: 3000$/  lease_ms: 30000/' '%s'", f->config_a), 0);
    f->a = s_broker (f, f->config_a, "a");
    al_agent_t *orchestrator = s_agent (f->config_clients, "orchestrator", false);
    al_agent_result_t result;
    assert_int_equal (s_qa_request (orchestrator, "v1", 60000, &result, NULL), AL_AGENT_ACKED);
    long epoch = s_count (f, "SELECT epoch FROM airlock_ha.leader");
    assert_true (epoch >= 1);
    //  The row's expiry as locked (read apart before the lock, a renewal could move it
    //  in between: the broker renews every second).
    PGconn *holder = PQconnectdb (f->dsn);
    assert_int_equal (PQstatus (holder), CONNECTION_OK);
    PGresult *locked = PQexec (holder, "BEGIN; SELECT expires_at FROM airlock_ha.leader WHERE id = 1 FOR SHARE");
    assert_int_equal (PQresultStatus (locked), PGRES_TUPLES_OK);
    char *before = strdup (PQgetvalue (locked, 0, 0));
    assert_non_null (before);
    PQclear (locked);
    long waiting = 0;
    for (int64_t deadline = zclock_mono () + 30000; zclock_mono () < deadline && waiting != 1; zclock_sleep (50))
        waiting = s_renewals_waiting (f);
    assert_int_equal (waiting, 1);
    //  The broker acknowledges while its renewal waits (within 20 s: less than the
    //  renewal's own lock timeout, so the Ack cannot be one that waited for it).
    assert_int_equal (s_qa_request (orchestrator, "v2", 20000, &result, NULL), AL_AGENT_ACKED);
    assert_int_equal (s_qa_request (orchestrator, "v3", 20000, &result, NULL), AL_AGENT_ACKED);
    //  The same renewal still waits, the row has not moved, and the lease is valid.
    assert_int_equal (s_renewals_waiting (f), 1);
    char sql [512];
    snprintf (sql, sizeof sql, "SELECT count(*) FROM airlock_ha.leader WHERE expires_at = '%s'::timestamptz"
                               " AND expires_at > clock_timestamp() AND epoch = %ld", before, epoch);
    assert_int_equal (s_count (f, sql), 1);
    locked = PQexec (holder, "COMMIT");
    assert_int_equal (PQresultStatus (locked), PGRES_COMMAND_OK);
    PQclear (locked);
    PQfinish (holder);

    //  The renewal goes through: the lease runs on, same epoch, same broker.
    snprintf (sql, sizeof sql, "SELECT count(*) FROM airlock_ha.leader WHERE expires_at > '%s'::timestamptz"
                               " AND epoch = %ld AND holder LIKE 'a-%%'", before, epoch);
    long renewed = 0;
    for (int64_t deadline = zclock_mono () + 30000; zclock_mono () < deadline && renewed != 1; zclock_sleep (50))
        renewed = s_count (f, sql);
    assert_int_equal (renewed, 1);
    free (before);
    assert_int_equal (s_qa_request (orchestrator, "v4", 60000, &result, NULL), AL_AGENT_ACKED);
    al_agent_destroy (&orchestrator);
    int status = 0;
    assert_int_equal (waitpid (f->a, &status, WNOHANG), 0);
    assert_false (s_log_has (f, "a", "no longer the active broker"));
    kill (f->a, SIGTERM);
    assert_int_equal (s_wait_exit (&f->a, 60000), 0);
}

//  `airlock broker` with a fake systemd notification socket and a watchdog (2 s), and
//  the environment settings EXTRA (NULL-terminated; NULL: none).
static pid_t
s_broker_notified (fixture_t *f, const char *config, const char *log, const char *socket_path, char *const *extra)
{
    char notify [400];
    snprintf (notify, sizeof notify, "NOTIFY_SOCKET=%s", socket_path);
    char watchdog [] = "WATCHDOG_USEC=2000000";
    char *env [8] = { notify, watchdog };
    for (size_t i = 0; extra && extra [i] && i < 5; i++)
        env [2 + i] = extra [i];
    return s_broker_with (f, config, log, env);
}

//  The next datagram on fd holding text (others are skipped), within timeout_ms.
static bool
s_notified (int fd, const char *text, int timeout_ms, char *got, size_t got_size)
{
    for (int64_t deadline = zclock_mono () + timeout_ms; zclock_mono () < deadline; ) {
        struct pollfd item = { .fd = fd, .events = POLLIN };
        if (poll (&item, 1, (int) (deadline - zclock_mono ())) != 1)
            break;
        ssize_t length = recv (fd, got, got_size - 1, 0);
        if (length < 0)
            break;
        got [length] = 0;
        if (strstr (got, text))
            return true;
    }
    return false;
}

//  Under systemd (Type=notify, a watchdog): a standby has started, so it says READY=1
//  with STATUS=standby and feeds the watchdog while it waits (else TimeoutStartSec or
//  the watchdog would kill it for waiting its turn); it binds nothing. When it takes
//  over, `airlock broker` says READY=1 with its endpoints and the reactor feeds the
//  watchdog.
static void
test_standby_is_ready_for_systemd (void **state)
{
    fixture_t *f = *state;
    char socket_path [300];
    snprintf (socket_path, sizeof socket_path, "%s/notify.sock", f->dir);
    int fd = socket (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true (fd >= 0);
    struct sockaddr_un address = { .sun_family = AF_UNIX };
    assert_true (strlen (socket_path) < sizeof address.sun_path);
    memcpy (address.sun_path, socket_path, strlen (socket_path) + 1);
    assert_int_equal (bind (fd, (struct sockaddr *) &address, sizeof address), 0);

    f->a = s_broker (f, f->config_a, "a");
    al_agent_t *orchestrator = s_agent (f->config_clients, "orchestrator", false);
    al_agent_result_t result;
    assert_int_equal (s_qa_request (orchestrator, "v1", 60000, &result, NULL), AL_AGENT_ACKED);
    f->b = s_broker_notified (f, f->config_b, "b", socket_path, NULL);
    char got [512] = "";
    if (!s_notified (fd, "READY=1", 30000, got, sizeof got))
        fail_msg ("the standby did not say READY=1 (last: '%s')", got);
    assert_non_null (strstr (got, "STATUS=standby: b-"));
    assert_non_null (strstr (got, "waits for the lease"));
    //  It feeds the watchdog while it waits, and binds nothing.
    for (int i = 0; i < 3; i++)
        if (!s_notified (fd, "WATCHDOG=1", 30000, got, sizeof got))
            fail_msg ("the standby did not feed the watchdog (%d): '%s'", i, got);
    assert_true (s_log_has (f, "b", "is a standby"));
    char path [300];
    snprintf (path, sizeof path, "%s/b-router.ipc", f->dir);
    assert_int_not_equal (access (path, F_OK), 0);

    //  A dies: B takes over, binds and says so.
    assert_int_equal (kill (f->a, SIGKILL), 0);
    assert_int_equal (s_wait_exit (&f->a, 30000), 128 + SIGKILL);
    if (!s_notified (fd, "STATUS=broker listening on", 60000, got, sizeof got))
        fail_msg ("the new leader did not say it listens: '%s'", got);
    assert_non_null (strstr (got, "READY=1"));
    assert_non_null (strstr (got, "b-router.ipc"));
    assert_true (s_notified (fd, "WATCHDOG=1", 30000, got, sizeof got));
    assert_int_equal (s_qa_request (orchestrator, "v2", 60000, &result, NULL), AL_AGENT_ACKED);
    al_agent_destroy (&orchestrator);
    kill (f->b, SIGTERM);
    assert_int_equal (s_wait_exit (&f->b, 60000), 0);
    close (fd);
}

//  A fake systemd: a datagram socket bound at DIR/NAME (its path in socket_path).
static int
s_fake_systemd (fixture_t *f, const char *name, char *socket_path, size_t size)
{
    snprintf (socket_path, size, "%s/%s", f->dir, name);
    int fd = socket (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true (fd >= 0);
    struct sockaddr_un address = { .sun_family = AF_UNIX };
    assert_true (strlen (socket_path) < sizeof address.sun_path);
    memcpy (address.sun_path, socket_path, strlen (socket_path) + 1);
    assert_int_equal (bind (fd, (struct sockaddr *) &address, sizeof address), 0);
    return fd;
}

//  The lease follows the reactor. A's reactor hangs (stall point broker.reactor, 30 s,
//  triggered by the test once A serves) while its process and its lease thread live
//  on: the thread stops renewing and says why, the lease expires and B takes over while
//  A still hangs; clients move to B. A message sent to A meanwhile is never committed:
//  when A's reactor resumes it reads that it lost the lease and exits non-zero. The
//  chain verifies.
static void
test_hung_reactor_loses_the_lease (void **state)
{
    fixture_t *f = *state;
    char stall_dir [300], trigger [400];
    snprintf (stall_dir, sizeof stall_dir, "%s/stall", f->dir);
    assert_int_equal (mkdir (stall_dir, 0700), 0);
    snprintf (trigger, sizeof trigger, "%s/broker.reactor", stall_dir);
    char spec [] = "AIRLOCK_STALLPOINT=broker.reactor:30000";
    char arm [400];
    snprintf (arm, sizeof arm, "AIRLOCK_STALLPOINT_ARM=%s", stall_dir);
    char *env [] = { spec, arm, NULL };
    f->a = s_broker_with (f, f->config_a, "a", env);
    al_agent_t *orchestrator = s_agent (f->config_clients, "orchestrator", false);
    al_agent_result_t result;
    assert_int_equal (s_qa_request (orchestrator, "v1", 60000, &result, NULL), AL_AGENT_ACKED);
    f->b = s_broker (f, f->config_b, "b");
    for (int64_t deadline = zclock_mono () + 30000; zclock_mono () < deadline; zclock_sleep (50))
        if (s_log_has (f, "b", "is a standby"))
            break;
    assert_true (s_log_has (f, "b", "is a standby"));
    al_agent_t *only_a = s_agent (f->config_only_a, "orchestrator", false);
    assert_int_equal (al_agent_wait_registered (only_a, 60000), 0);
    long epoch = s_count (f, "SELECT epoch FROM airlock_ha.leader");
    assert_true (epoch >= 1);

    //  Hang A's reactor at its next heartbeat tick.
    FILE *file = fopen (trigger, "w");
    assert_non_null (file);
    fclose (file);
    for (int64_t deadline = zclock_mono () + 30000; zclock_mono () < deadline; zclock_sleep (20))
        if (s_log_has (f, "a", "stallpoint: broker.reactor"))
            break;
    assert_true (s_log_has (f, "a", "stallpoint: broker.reactor (pass"));
    int64_t hung = zclock_mono ();
    for (int64_t deadline = zclock_mono () + 60000; zclock_mono () < deadline; zclock_sleep (50))
        if (s_log_has (f, "b", "is active"))
            break;
    assert_true (s_log_has (f, "b", "is active (lease epoch"));
    print_message ("    reactor hung -> standby active: %lld ms (lease 3000 ms)\n",
                   (long long) (zclock_mono () - hung));
    //  ... while A is alive and still hung: its lease thread let the lease go.
    int status = 0;
    assert_int_equal (waitpid (f->a, &status, WNOHANG), 0);
    assert_false (s_log_has (f, "a", "stallpoint: broker.reactor (pass [0-9]*): resumed"));
    assert_true (s_log_has (f, "a", "reactor made no progress for [0-9]* ms: lease not renewed, a standby may take over"));
    char sql [256];
    snprintf (sql, sizeof sql, "SELECT count(*) FROM airlock_ha.leader WHERE epoch = %ld AND holder LIKE 'b-%%'",
              epoch + 1);
    assert_int_equal (s_count (f, sql), 1);
    //  A client that knows only A posts to the hung broker; the others move to B.
    char stale_id [AL_AGENT_ID_SIZE];
    assert_int_equal (s_qa_request (only_a, "stale", 1000, NULL, stale_id), AL_AGENT_QUEUED);
    assert_int_equal (s_qa_request (orchestrator, "v2", 60000, &result, NULL), AL_AGENT_ACKED);
    al_agent_info_t info;
    al_agent_info (orchestrator, &info);
    assert_int_equal (info.endpoint_index, 1);
    uint64_t last_sequence = result.audit_sequence;

    //  A's reactor resumes: it learns the lease is gone and stops, committing nothing.
    int code = s_wait_exit (&f->a, 90000);
    assert_true (code > 0 && code != 128 + SIGKILL);
    assert_true (s_log_has (f, "a", "resumed"));
    assert_true (s_log_has (f, "a", "no longer the active broker"));
    assert_true (s_log_has (f, "a", "let the lease of epoch"));
    assert_int_equal (al_agent_wait (only_a, stale_id, 500, &result), AL_AGENT_TIMEOUT);
    al_agent_destroy (&only_a);
    al_agent_destroy (&orchestrator);
    kill (f->b, SIGTERM);
    assert_int_equal (s_wait_exit (&f->b, 60000), 0);
    char error [1024] = "";
    al_store_options_t read_only = { .read_only = true };
    al_store_t *store = al_store_open (AL_STORE_PG_BACKEND, f->dsn, &read_only, error, sizeof error);
    if (!store)
        fail_msg ("%s", error);
    assert_true (al_store_row_count (store) >= last_sequence);
    bool found = false;
    al_store_iter_t *iter = al_store_iter_new (store, 1);
    assert_non_null (iter);
    al_store_event_t event;
    while (al_store_iter_next (iter, &event) == AL_STORE_OK)
        if (event.message_id && strcmp (event.message_id, stale_id) == 0)
            found = true;
    al_store_iter_destroy (&iter);
    assert_false (found);
    al_verify_report_t report;
    assert_int_equal (al_store_verify (store, NULL, NULL, &report), AL_STORE_OK);
    if (report.result != AL_VERIFY_OK)
        fail_msg ("verify: %s", report.reason);
    al_store_destroy (&store);
}

//  A takeover's rebuild slower than the reactor's bound keeps the lease it just took.
//  B (under a fake systemd with a 2 s watchdog) takes over from a killed A and its
//  rebuild stalls 8 s (stall point broker.takeover-rebuild) while A, restarted, waits
//  as a standby ready to take a lapsed lease: B keeps the lease (same epoch, A still a
//  standby), tells systemd meanwhile (EXTEND_TIMEOUT_USEC= with WATCHDOG=1), then
//  serves.
static void
test_slow_takeover_rebuild_keeps_the_lease (void **state)
{
    fixture_t *f = *state;
    char socket_path [300];
    int fd = s_fake_systemd (f, "notify.sock", socket_path, sizeof socket_path);
    f->a = s_broker (f, f->config_a, "a");
    al_agent_t *orchestrator = s_agent (f->config_clients, "orchestrator", false);
    al_agent_result_t result;
    assert_int_equal (s_qa_request (orchestrator, "v1", 60000, &result, NULL), AL_AGENT_ACKED);
    long epoch = s_count (f, "SELECT epoch FROM airlock_ha.leader");
    char spec [] = "AIRLOCK_STALLPOINT=broker.takeover-rebuild:8000";
    char *extra [] = { spec, NULL };
    f->b = s_broker_notified (f, f->config_b, "b", socket_path, extra);
    char got [512] = "";
    if (!s_notified (fd, "STATUS=standby", 30000, got, sizeof got))
        fail_msg ("the standby did not say READY=1 (last: '%s')", got);
    assert_int_equal (kill (f->a, SIGKILL), 0);
    assert_int_equal (s_wait_exit (&f->a, 30000), 128 + SIGKILL);
    //  B takes over and starts its rebuild; A comes back as a standby (started after the
    //  takeover, else it may win the race for A's expired lease).
    for (int64_t deadline = zclock_mono () + 60000; zclock_mono () < deadline; zclock_sleep (50))
        if (s_log_has (f, "b", "is active"))
            break;
    assert_true (s_log_has (f, "b", "is active (lease epoch"));
    f->a = s_broker (f, f->config_a, "a-again");
    //  What B tells systemd from its takeover to its READY=1 with endpoints.
    int extended = 0, fed = 0;
    bool listening = false;
    for (int64_t deadline = zclock_mono () + 90000; zclock_mono () < deadline && !listening; ) {
        if (!s_notified (fd, "=", (int) (deadline - zclock_mono ()), got, sizeof got))
            break;
        if (strstr (got, "STATUS=broker listening on"))
            listening = true;
        else
        if (strstr (got, "EXTEND_TIMEOUT_USEC=")) {
            extended++;
            fed += strstr (got, "WATCHDOG=1") != NULL;
        }
    }
    assert_true (listening);
    assert_true (s_log_has (f, "b", "stallpoint: broker.takeover-rebuild (pass 1): stalling 8000 ms"));
    assert_true (s_log_has (f, "b", "stallpoint: broker.takeover-rebuild (pass 1): resumed"));
    print_message ("    during an 8 s rebuild: %d EXTEND_TIMEOUT_USEC (%d with WATCHDOG=1)\n", extended, fed);
    //  An 8 s stall with a 2 s watchdog and a 1 s heartbeat: fed all along.
    assert_true (extended >= 3);
    assert_int_equal (fed, extended);
    //  B serves, with the lease it took; A waits its turn.
    assert_int_equal (s_qa_request (orchestrator, "v2", 60000, &result, NULL), AL_AGENT_ACKED);
    char sql [256];
    snprintf (sql, sizeof sql, "SELECT count(*) FROM airlock_ha.leader WHERE epoch = %ld AND holder LIKE 'b-%%'",
              epoch + 1);
    assert_int_equal (s_count (f, sql), 1);
    assert_true (s_log_has (f, "a-again", "is a standby"));
    assert_false (s_log_has (f, "a-again", "is active"));
    assert_false (s_log_has (f, "b", "made no progress"));
    assert_false (s_log_has (f, "b", "no longer the active broker"));
    al_agent_destroy (&orchestrator);
    kill (f->b, SIGTERM);
    assert_int_equal (s_wait_exit (&f->b, 60000), 0);
    kill (f->a, SIGTERM);
    int code = s_wait_exit (&f->a, 30000);
    assert_true (code > 0 && code < 128);
    close (fd);
}

//  store.dsn with a password is refused before the lease's connection is made (the
//  harness's server trusts loopback, so a connection would have succeeded).
static void
test_password_in_the_dsn_is_refused (void **state)
{
    fixture_t *f = *state;
    char path [300];
    snprintf (path, sizeof path, "%s/password.yaml", f->dir);
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fprintf (file, "state_dir: %s\nstore:\n  backend: postgres\n  dsn: \"%s password=hunter2secret\"\n"
                   "ha:\n  name: p\n", f->dir, f->dsn);
    fclose (file);
    pid_t pid = s_broker (f, path, "password");
    assert_int_equal (s_wait_exit (&pid, 60000), 2);
    assert_true (s_log_has (f, "password", "store.dsn: holds a password"));
    assert_false (s_log_has (f, "password", "hunter2secret"));
    //  Not even the lease's table was made: nothing connected.
    assert_int_equal (s_count (f, "SELECT count(*) FROM pg_namespace WHERE nspname = 'airlock_ha'"), 0);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_paused_broker_is_replaced_and_fenced, setup, teardown),
        cmocka_unit_test_setup_teardown (test_pending_approval_survives_failover, setup, teardown),
        cmocka_unit_test_setup_teardown (test_slow_lease_round_trip_does_not_stall_the_broker, setup, teardown),
        cmocka_unit_test_setup_teardown (test_standby_is_ready_for_systemd, setup, teardown),
        cmocka_unit_test_setup_teardown (test_hung_reactor_loses_the_lease, setup, teardown),
        cmocka_unit_test_setup_teardown (test_slow_takeover_rebuild_keeps_the_lease, setup, teardown),
        cmocka_unit_test_setup_teardown (test_password_in_the_dsn_is_refused, setup, teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
