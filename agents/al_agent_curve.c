/*  al_agent_curve.c: what the agent runtime and the subscriber share as CURVE clients
    of the broker.

    Both read ROLE's identity from airlock.yaml the same way, load a certificate whose
    secret half must be private, and watch their socket's handshakes through a monitor.
    One copy here, so the two clients cannot drift apart. Pure functions apart from the
    monitor counter (atomic): any thread.
*/
#include "agents/al_agent_int.h"
#include "base/al_error.h"

//  Names the inproc endpoint of each socket monitor (unique in the process: an old
//  monitor's endpoint may still be registered for a moment after its socket closed).
static atomic_uint_fast64_t s_monitor_count = 0;

int
al_agent__copy (char *target, size_t target_size, const char *value, const char *what,
                char *error, size_t error_size)
{
    if (strlen (value) >= target_size) {
        al_error_set (error, error_size, "%s: longer than %zu characters", what, target_size - 1);
        return -1;
    }
    strcpy (target, value);
    return 0;
}

int
al_agent__identity_from_config (const al_config_t *config, const char *role,
                                const char *endpoints, const char *field, char *endpoint,
                                char *broker_key, char *cert_path,
                                char *error, size_t error_size)
{
    assert (config);
    assert (role);
    assert (endpoints && field);
    int rc = -1;
    char *role_cert_path = al_config_agent_cert (config, role);
    zcert_t *broker_cert = NULL;
    if (!role_cert_path) {
        al_error_set (error, error_size, "role '%s': not a valid role name", role);
        goto cleanup;
    }
    broker_cert = zcert_load (al_config_broker_cert (config));
    if (!broker_cert) {
        al_error_set (error, error_size, "%s: cannot read the broker's certificate",
                  al_config_broker_cert (config));
        goto cleanup;
    }
    if (al_agent__copy (endpoint, AL_AGENT_PATH_SIZE, endpoints, field, error, error_size)
    ||  al_agent__copy (broker_key, 41, zcert_public_txt (broker_cert), "broker key",
                        error, error_size)
    ||  al_agent__copy (cert_path, AL_AGENT_PATH_SIZE, role_cert_path, "certificate path",
                        error, error_size))
        goto cleanup;
    rc = 0;
cleanup:
    zcert_destroy (&broker_cert);
    free (role_cert_path);
    return rc;
}

zcert_t *
al_agent__cert_load (const char *cert_path, char *error, size_t error_size)
{
    assert (cert_path);
    zcert_t *cert = zcert_load (cert_path);
    if (!cert) {
        al_error_set (error, error_size, "%s: cannot read the certificate", cert_path);
        return NULL;
    }
    uint8_t zero [32] = { 0 };
    if (memcmp (zcert_secret_key (cert), zero, 32) == 0) {
        al_error_set (error, error_size, "%s_secret: no secret key (missing or unreadable)",
                  cert_path);
        zcert_destroy (&cert);
        return NULL;
    }
    //  The secret half must be its owner's alone: a key others can read is no identity.
    char secret_path [AL_AGENT_PATH_SIZE + 8];
    snprintf (secret_path, sizeof secret_path, "%s_secret", cert_path);
    if (!al_secret_file_private (access (secret_path, F_OK) == 0 ? secret_path : cert_path, -1,
                                 error, error_size))
        zcert_destroy (&cert);
    return cert;
}

int
al_agent__socket_monitor (zsock_t *socket, const char *name, zsock_t **monitor,
                          char *error, size_t error_size)
{
    assert (socket);
    assert (name);
    assert (monitor && !*monitor);
    char monitor_endpoint [128];
    snprintf (monitor_endpoint, sizeof monitor_endpoint, "inproc://al-%s-monitor-%d-%" PRIuFAST64,
              name, (int) getpid (), atomic_fetch_add (&s_monitor_count, 1) + 1);
    if (zmq_socket_monitor (zsock_resolve (socket), monitor_endpoint,
                            ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED
                          | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
                          | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) != 0) {
        al_error_set (error, error_size, "cannot monitor the socket: %s", zmq_strerror (zmq_errno ()));
        return -1;
    }
    *monitor = zsock_new (ZMQ_PAIR);
    if (!*monitor || zsock_connect (*monitor, "%s", monitor_endpoint) != 0) {
        al_error_set (error, error_size, "cannot connect the socket monitor: %s",
                  zmq_strerror (zmq_errno ()));
        return -1;
    }
    return 0;
}

bool
al_agent__monitor_event (zsock_t *monitor, uint16_t *event, char *address, size_t address_size)
{
    assert (monitor && event && address && address_size > 0);
    void *socket = zsock_resolve (monitor);
    zmq_msg_t msg;
    zmq_msg_init (&msg);
    if (zmq_msg_recv (&msg, socket, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close (&msg);
        return false;
    }
    *event = 0;
    if (zmq_msg_size (&msg) >= 6)
        memcpy (event, zmq_msg_data (&msg), 2);
    bool more = zmq_msg_more (&msg);
    zmq_msg_close (&msg);
    //  The second frame is the endpoint the event is about: with several brokers,
    //  which one answered.
    *address = 0;
    while (more) {
        zmq_msg_init (&msg);
        bool received = zmq_msg_recv (&msg, socket, ZMQ_DONTWAIT) >= 0;
        if (received && !*address && zmq_msg_size (&msg) < address_size) {
            memcpy (address, zmq_msg_data (&msg), zmq_msg_size (&msg));
            address [zmq_msg_size (&msg)] = 0;
        }
        more = received && zmq_msg_more (&msg);
        zmq_msg_close (&msg);
    }
    return true;
}

bool
al_agent__handshake_failure (uint16_t event, const char *endpoint, const char *own_key,
                             const char *broker_key, char *error, size_t error_size)
{
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
        al_error_set (error, error_size,
                  "handshake with %s failed: the broker refused this key (%s is not in "
                  "identities.yaml, or the broker key is wrong)", endpoint, own_key);
    else
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL || event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL)
        al_error_set (error, error_size,
                  "handshake with %s failed (wrong broker key %s, or not an airlock broker)",
                  endpoint, broker_key);
    else
        return false;
    return true;
}
