/*  agent_test_env.h: what the agent runtime tests share (tests/agents/test_agent.c and
    tests/failover/test_client_failover.c): a temporary directory with a broker
    certificate and the agent's certificate, czmq's zauth admitting the certificates in
    its keys folder, the options of a test agent named "qa", a QaReport envelope to send,
    and a bounded wait on a condition.

    The fake broker (fake_broker.h) is started by the test itself on an endpoint in
    env.dir. Fails the test (cmocka) on any setup error.
*/
#ifndef AGENT_TEST_ENV_H_INCLUDED
#define AGENT_TEST_ENV_H_INCLUDED

#include "agents/al_agent.h"
#include <czmq.h>

//  Wait until COND holds, for at most TIMEOUT_MS; the caller asserts COND afterwards
//  (a condition that never holds fails the test there, never on time alone).
#define AGENT_TEST_WAIT_UNTIL(cond, timeout_ms) do { \
        int64_t wait_deadline_ = zclock_mono () + (timeout_ms); \
        while (!(cond) && zclock_mono () < wait_deadline_) \
            zclock_sleep (5); \
    } while (0)

typedef struct {
    char dir [128];             // the temporary directory, removed by agent_test_env_fini
    char keys [160];            // dir/keys: the certificates zauth admits
    char agent_cert [200];      // keys/qa.cert: the agent's certificate (public and secret)
    zcert_t *agent;             // the agent's certificate as saved there
    zcert_t *broker_cert;       // the broker's certificate (also saved as dir/broker.cert)
    zactor_t *auth;             // zauth, CURVE over keys
} agent_test_env_t;

//  Make the directory /tmp/<prefix>-XXXXXX, the certificates and zauth.
void agent_test_env_init (agent_test_env_t *env, const char *prefix);
//  Stop zauth, free the certificates, remove the directory and all it holds.
void agent_test_env_fini (agent_test_env_t *env);

//  Remove path and everything below it (a missing path is not an error).
void agent_test_remove_tree (const char *path);

//  Options of agent "qa" on endpoint (one endpoint or a comma-separated list) with env's
//  broker key and certificate, deliveries subscribed, and short heartbeat, retry and
//  reconnect intervals so that tests move fast.
void agent_test_options (const agent_test_env_t *env, const char *endpoint, al_agent_options_t *options);

//  A staging QaReport envelope (an application message) for service demo at version;
//  envelope and report are the caller's, version is borrowed.
void agent_test_qa_report (al_envelope_t *envelope, Airlock__QaReport *report, const char *version);

#endif
