/*  al_broker_auth.c: who may talk to the broker: ZAP, CURVE options, handshake auditing.

    Why our own ZAP handler instead of czmq's zauth actor: zauth admits keys from a
    certificate directory, while airlock's keys live in the policy (identities.yaml), and
    zauth's User-Id is whatever its cert store says. Answering ZAP (RFC 27) here, in the
    reactor thread, gives exact control: a key is admitted iff the CURRENT policy maps
    it, User-Id is always the Z85 key, and a SIGHUP reload swaps the key set atomically
    between two ZAP requests with no lock and no second thread. The handler is bound to
    inproc://zeromq.zap.01 before any endpoint is bound, and ZMQ_ZAP_ENFORCE_DOMAIN is
    set and read back on both sockets, so libzmq never falls back to "no handler: accept".

    Renewing the handler: libzmq opens a pipe pair from each connection to the ZAP
    handler for its handshake and keeps it until the connection ends (session_base's
    _zap_pipe; ~10 KB resident each, 10 MB at 1,000 agents), although CURVE never uses
    it again. Only the handler's side can end those pipes, by closing its socket. So
    after AL_BROKER_ZAP_RENEW_AFTER answered requests the reactor binds a fresh REP
    socket to the ZAP endpoint and keeps the old one, unbound, polled and answering,
    until it was quiet for AL_BROKER_ZAP_RETIRE_MS; then it closes it (linger 0), which
    releases the pipes of every handshake it answered. Authentication is unchanged:
    every handshake still goes through one of the two sockets, each answer comes from
    the current policy. Two races, both fail closed under ZMQ_ZAP_ENFORCE_DOMAIN: a
    handshake that looks the endpoint up between the unbind and the bind finds no
    handler and is refused (the client connects again), and a request that reached the
    old socket only after it was closed is never answered (the handshake times out
    after handshake_ms and the client connects again). The second needs an I/O thread
    stalled for AL_BROKER_ZAP_RETIRE_MS between finding the endpoint and sending.

    Handshake failures (NULL mechanism, garbage, timeouts) come from socket monitors and
    ZAP refusals from the handler; both are audited through a token bucket, because
    unauthenticated peers must not be able to fill the disk. A known peer's disconnect,
    also reported by the monitor, forgets it (al_broker_peers.c).

    Threading: the reactor thread only.
*/
#include "broker/al_broker_int.h"
#include "base/al_crashpoint.h"
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Draft libzmq option, set by number (not in stable headers).
#define S_ZMQ_ZAP_ENFORCE_DOMAIN 93
#define S_ZAP_DOMAIN "airlock"
//  Unauthenticated events (handshake failures, refused keys) audited per second / burst.
#define S_UNAUTH_RATE 20.0
#define S_UNAUTH_BURST 100.0

bool
al_broker_bucket_take (al_broker_bucket_t *bucket, double rate, double burst, uint64_t now_mono)
{
    if (bucket->last_mono == 0)
        bucket->tokens = burst;
    else
        bucket->tokens += (double) (now_mono - bucket->last_mono) * rate / 1000.0;
    if (bucket->tokens > burst)
        bucket->tokens = burst;
    bucket->last_mono = now_mono;
    if (bucket->tokens < 1.0)
        return false;
    bucket->tokens -= 1.0;
    return true;
}

//  An event about an unauthenticated peer: audited within a budget.
static void
s_unauth_event (al_broker_t *self, const char *type, const char *reason)
{
    if (!al_broker_bucket_take (&self->unauth_bucket, S_UNAUTH_RATE, S_UNAUTH_BURST, al_broker_mono_ms ())) {
        self->unauth_suppressed++;
        return;
    }
    if (self->unauth_suppressed)
        al_broker_event_queue (self, type, "", "", "%s (and %llu similar events not recorded: audit budget)",
                       reason, (unsigned long long) self->unauth_suppressed);
    else
        al_broker_event_queue (self, type, "", "", "%s", reason);
    self->unauth_suppressed = 0;
}

//  ---- ZAP handler (RFC 27) -----------------------------------------------------------

void
al_broker_zap_handle (al_broker_t *self, zsock_t *zap)
{
    zmsg_t *request = zmsg_recv (zap);
    if (!request)
        return;
    al_crashpoint ("broker.zap");       // tests: die while a client's handshake waits on us
    char *version = zmsg_popstr (request);
    zframe_t *request_id = zmsg_pop (request);
    char *domain = zmsg_popstr (request);
    char *address = zmsg_popstr (request);
    zframe_t *routing_id = zmsg_pop (request);
    char *mechanism = zmsg_popstr (request);
    zframe_t *credentials = zmsg_pop (request);

    const char *code = "400", *text = "denied";
    char user_id [41] = "";
    char reason [300] = "";
    if (!version || strcmp (version, "1.0") != 0 || !request_id)
        snprintf (reason, sizeof reason, "ZAP request of unknown version");
    else
    if (!domain || strcmp (domain, S_ZAP_DOMAIN) != 0)
        snprintf (reason, sizeof reason, "ZAP domain '%s' is not '%s'", domain? domain: "", S_ZAP_DOMAIN);
    else
    if (!mechanism || strcmp (mechanism, "CURVE") != 0)
        snprintf (reason, sizeof reason, "mechanism %s refused from %s: only CURVE is allowed",
                  mechanism? mechanism: "?", address? address: "?");
    else
    if (!credentials || zframe_size (credentials) != 32)
        snprintf (reason, sizeof reason, "CURVE credentials of wrong size from %s", address? address: "?");
    else {
        zmq_z85_encode (user_id, zframe_data (credentials), 32);
        const char *identity = NULL, *role = NULL;
        if (al_policy_identity_for_key (self->policy, user_id, &identity, &role)) {
            code = "200";
            text = "OK";
        }
        else
            snprintf (reason, sizeof reason, "unknown CURVE key %s from %s refused", user_id,
                      address && *address? address: "a local peer");
    }
    if (strcmp (code, "200") != 0) {
        user_id [0] = '\0';
        s_unauth_event (self, "HandshakeRefused", reason);
    }
    zmsg_t *reply = zmsg_new ();
    zmsg_addstr (reply, "1.0");
    if (request_id)
        zmsg_append (reply, &request_id);
    else
        zmsg_addstr (reply, "");
    zmsg_addstr (reply, code);
    zmsg_addstr (reply, text);
    zmsg_addstr (reply, user_id);
    zmsg_addmem (reply, "", 0);
    zmsg_send (&reply, zap);
    if (zap == self->zap)
        self->zap_answered++;
    else {
        self->zap_retiring_answered++;
        self->zap_retire_mono = al_broker_mono_ms () + AL_BROKER_ZAP_RETIRE_MS;   // not quiet yet
    }

    zstr_free (&version);
    zframe_destroy (&request_id);
    zstr_free (&domain);
    zstr_free (&address);
    zframe_destroy (&routing_id);
    zstr_free (&mechanism);
    zframe_destroy (&credentials);
    zmsg_destroy (&request);
}

//  A ZAP handler socket, not bound yet. Linger 0: when it is closed, a reply it still
//  holds is for a handshake that waited longer than AL_BROKER_ZAP_RETIRE_MS.
static zsock_t *
s_zap_socket (void)
{
    zsock_t *zap = zsock_new (ZMQ_REP);
    if (zap)
        zsock_set_linger (zap, 0);
    return zap;
}

int
al_broker_zap_start (al_broker_t *self, char *error, size_t error_size)
{
    assert (!self->zap);
    self->zap_renew_after = AL_BROKER_ZAP_RENEW_AFTER;
    self->zap = s_zap_socket ();
    if (!self->zap || zsock_bind (self->zap, AL_BROKER_ZAP_ENDPOINT) == -1) {
        snprintf (error, error_size, "%s: cannot bind the ZAP handler (another one in this process?): "
                  "refusing to start", AL_BROKER_ZAP_ENDPOINT);
        return -1;
    }
    return 0;
}

void
al_broker_zap_renew (al_broker_t *self, uint64_t now_mono)
{
    if (self->zap_retiring) {
        if (now_mono < self->zap_retire_mono)
            return;
        //  Answer what arrived since it was last read; close it only after a quiet period.
        while (zsock_events (self->zap_retiring) & ZMQ_POLLIN)
            al_broker_zap_handle (self, self->zap_retiring);
        if (now_mono < self->zap_retire_mono)
            return;
        zsock_destroy (&self->zap_retiring);
        self->zap_retired++;
        self->zap_released += self->zap_retiring_answered;    // the next tick trims the heap
        self->zap_retiring_answered = 0;
        return;
    }
    if (self->zap_answered < self->zap_renew_after)
        return;
    //  The fresh socket first: if it cannot be made (no descriptor left), keep the old.
    zsock_t *fresh = s_zap_socket ();
    if (!fresh)
        return;
    //  Fails only if the old one is not bound (a renewal whose binds both failed).
    void *handle = zsock_resolve (self->zap);
    zmq_unbind (handle, AL_BROKER_ZAP_ENDPOINT);
    if (zsock_bind (fresh, AL_BROKER_ZAP_ENDPOINT) == -1) {
        //  Keep the old handler. Should it fail too, no handler is bound: libzmq then
        //  refuses every handshake (ZMQ_ZAP_ENFORCE_DOMAIN) until a later turn binds one.
        zsock_destroy (&fresh);
        if (zmq_bind (handle, AL_BROKER_ZAP_ENDPOINT) == -1 && zmq_errno () != EADDRINUSE)
            zsys_error ("broker: the ZAP handler could not be bound again (%s): handshakes are refused",
                        zmq_strerror (zmq_errno ()));
        return;
    }
    self->zap_retiring = self->zap;
    self->zap = fresh;
    self->zap_retiring_answered = self->zap_answered;
    self->zap_answered = 0;
    self->zap_retire_mono = now_mono + AL_BROKER_ZAP_RETIRE_MS;
}

//  ---- socket monitors ----------------------------------------------------------------

void
al_broker_monitor_handle (al_broker_t *self, zsock_t *monitor, const char *socket_name)
{
    zmsg_t *msg = zmsg_recv (monitor);
    if (!msg)
        return;
    zframe_t *head = zmsg_first (msg);
    zframe_t *where = zmsg_next (msg);
    if (!head || zframe_size (head) < 6) {
        zmsg_destroy (&msg);
        return;
    }
    uint16_t event;
    uint32_t value;
    memcpy (&event, zframe_data (head), 2);
    memcpy (&value, zframe_data (head) + 2, 4);
    char *endpoint = where? zframe_strdup (where): NULL;
    const char *on = endpoint? endpoint: "?";
    switch (event) {
        case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL: {
            char reason [300];
            snprintf (reason, sizeof reason, "%s %s: ZMTP protocol error 0x%x (garbage, wrong "
                      "mechanism such as NULL, or a malformed handshake)", socket_name, on, value);
            s_unauth_event (self, "HandshakeFailed", reason);
            break;
        }
        case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL: {
            char reason [300];
            //  EFAULT: libzmq found no ZAP handler bound, which happens only in the instant
            //  a renewal swaps handlers (al_broker_zap_renew). Refused all the same; the
            //  client's libzmq connects again at once.
            if (value == EFAULT)
                snprintf (reason, sizeof reason, "%s %s: handshake failed: it started in the instant "
                          "the broker renewed its ZAP handler (no handler bound); not admitted, the "
                          "client connects again", socket_name, on);
            else
                snprintf (reason, sizeof reason, "%s %s: handshake failed (%s), e.g. not completed "
                          "within handshake_ms", socket_name, on, strerror ((int) value));
            s_unauth_event (self, "HandshakeFailed", reason);
            break;
        }
        case ZMQ_EVENT_DISCONNECTED: {
            //  A known peer whose connection ended (closed by it, or by libzmq for a frame
            //  above the hard size cap): forget it now rather than after 3 heartbeats.
            //  The event arrives late, and its descriptor number may already serve a new
            //  connection: a peer whose socket is still open under that number (same
            //  inode) is either that new connection or one libzmq is about to close, so
            //  the next tick looks again.
            zlistx_t *gone = zlistx_new ();
            assert (gone);
            zlistx_set_duplicator (gone, (czmq_duplicator *) strdup);
            zlistx_set_destructor (gone, (czmq_destructor *) zstr_free);
            for (al_broker_peer_t *peer = (al_broker_peer_t *) zhashx_first (self->peers); peer;
                 peer = (al_broker_peer_t *) zhashx_next (self->peers)) {
                if (peer->fd != (int) value)
                    continue;
                if (!al_broker_socket_gone (peer)) {
                    peer->disconnect_reported = true;
                    continue;
                }
                if (!peer->closing)
                    al_broker_event_queue (self, "PeerDisconnected", peer->identity, peer->role,
                                   "connection closed (by the peer, or by the transport for a frame "
                                   "above %zu bytes)", 2 * self->max_message);
                zlistx_add_end (gone, peer->key);
            }
            for (char *key = (char *) zlistx_first (gone); key; key = (char *) zlistx_next (gone))
                al_broker_peer_forget (self, key);
            zlistx_destroy (&gone);
            break;
        }
        default:
            break;
    }
    free (endpoint);
    zmsg_destroy (&msg);
}

zsock_t *
al_broker_monitor_start (al_broker_t *self, zsock_t *socket, const char *name, char *error, size_t error_size)
{
    char endpoint [128];
    snprintf (endpoint, sizeof endpoint, "inproc://airlock-monitor-%s-%p", name, (void *) self);
    int events = ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL
               | ZMQ_EVENT_DISCONNECTED;
    if (zmq_socket_monitor (zsock_resolve (socket), endpoint, events) == -1) {
        snprintf (error, error_size, "%s: socket monitor: %s", name, zmq_strerror (zmq_errno ()));
        return NULL;
    }
    zsock_t *monitor = zsock_new (ZMQ_PAIR);
    if (!monitor || zsock_connect (monitor, "%s", endpoint) == -1) {
        snprintf (error, error_size, "%s: socket monitor: cannot connect", name);
        zsock_destroy (&monitor);
        return NULL;
    }
    return monitor;
}

//  CURVE server with our ZAP domain and domain enforcement read back as on.
int
al_broker_secure_socket (al_broker_t *self, zsock_t *socket, const char *name, char *error, size_t error_size)
{
    zsock_set_zap_domain (socket, S_ZAP_DOMAIN);
    int on = 1, value = 0;
    size_t value_size = sizeof value;
    void *handle = zsock_resolve (socket);
    if (zmq_setsockopt (handle, S_ZMQ_ZAP_ENFORCE_DOMAIN, &on, sizeof on) == -1
    ||  zmq_getsockopt (handle, S_ZMQ_ZAP_ENFORCE_DOMAIN, &value, &value_size) == -1 || value != 1) {
        snprintf (error, error_size, "%s: ZMQ_ZAP_ENFORCE_DOMAIN could not be turned on: refusing to start",
                  name);
        return -1;
    }
    zcert_apply (self->cert, socket);
    zsock_set_curve_server (socket, 1);
    if (zsock_curve_server (socket) != 1) {
        snprintf (error, error_size, "%s: CURVE server could not be enabled: refusing to start", name);
        return -1;
    }
    char *domain = zsock_zap_domain (socket);
    bool domain_ok = domain && strcmp (domain, S_ZAP_DOMAIN) == 0;
    zstr_free (&domain);
    if (!domain_ok) {
        snprintf (error, error_size, "%s: ZAP domain could not be set: refusing to start", name);
        return -1;
    }
    zsock_set_handshake_ivl (socket, al_config_handshake_ms (self->config));
    zsock_set_sndhwm (socket, al_config_sndhwm (self->config));
    zsock_set_rcvhwm (socket, al_config_rcvhwm (self->config));
    zsock_set_maxmsgsize (socket, (int) (2 * self->max_message));
    zsock_set_linger (socket, 1000);
    return 0;
}
