/*  al_broker_peers.c: the broker's connections: the peer table, sending, heartbeats,
    and the closing of a peer that sent an oversized frame.

    A peer is one ROUTER connection, known by its routing id (hex, the table's key) and
    the ZAP User-Id of its frames; its identity and role are resolved through the current
    policy and again after a reload.

    Oversized messages: ZMQ_MAXMSGSIZE is a hard cap at twice max_message_bytes, so
    libzmq itself drops a connection that announces a bigger frame before buffering it
    (memory stays bounded; the monitor's disconnect of a known peer is audited). A frame
    between the configured limit and the cap reaches us: it is audited as "Oversized"
    with the sender's identity, answered Denied(TOO_LARGE), and the connection is
    dropped by shutdown(2) of its descriptor (ZMQ_SRCFD of the frame): libzmq sees the
    connection end and closes it; the ROUTER API has no per-peer close.
    The drop waits for the answer. zmq_send only queues the Denied in the peer's pipe;
    libzmq's I/O thread writes it to the kernel later, and a ROUTER never says when a
    frame left. Cutting the descriptor at once lost the answer most of the time, and a
    client that retransmits until answered would loop forever. So the peer enters a
    closing state when its oversized frame is read: what it sends afterwards is dropped
    unread (not audited, not answered), it gets no heartbeats or deliveries, and
    al_broker_close_due cuts it once (a) S_CLOSE_GRACE_MS have passed since the Denied
    was queued, time for the I/O thread to write it, and (b) the kernel's send queue of
    that descriptor is empty (SIOCOUTQ: on TCP every byte acknowledged by the peer's
    kernel, on ipc every byte read by the peer), so the reset that follows the close
    cannot discard the answer. A peer that does not read is cut after
    AL_BROKER_CLOSE_LIMIT_MS anyway. Before cutting, the descriptor's socket inode is
    compared with the one seen with the peer's first frame, so a descriptor number reused
    by a new connection is never cut. Frames of a dropped closing peer can still sit in
    the ROUTER's queue after its connection ended: its routing id stays in `closed` for
    AL_BROKER_CLOSE_LIMIT_MS, and such frames are dropped too (a client that picks its
    own routing id and reconnects at once is not answered until then; it retransmits).

    Threading: the reactor thread only.
*/
#include "broker/al_broker_int.h"
#include <assert.h>
#include <linux/sockios.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>

//  A peer that sent an oversized frame is cut this long after its Denied was queued, once
//  the kernel has sent it on (see the comment at the top), or after the limit regardless.
#define S_CLOSE_GRACE_MS 200

//  ---- packing and sending ----------------------------------------------------------------

//  Pack into the broker's reusable buffer; returns its size.
size_t
al_broker_pack (al_broker_t *self, const al_envelope_t *envelope)
{
    size_t size = airlock__envelope__get_packed_size (envelope);
    if (size > self->pack_capacity) {
        uint8_t *buffer = (uint8_t *) realloc (self->pack_buffer, size);
        assert (buffer);
        self->pack_buffer = buffer;
        self->pack_capacity = size;
    }
    size_t packed = airlock__envelope__pack (envelope, self->pack_buffer);
    assert (packed == size);
    return size;
}

//  Send [routing id][data] without blocking. Returns 0 or -1 (peer gone, or its queue
//  at the high-water mark: counted, and audited at the next tick).
int
al_broker_send_to (al_broker_t *self, al_broker_peer_t *peer, const uint8_t *data, size_t size)
{
    void *router = zsock_resolve (self->router);
    if (zmq_send (router, peer->routing_id, peer->routing_id_size, ZMQ_SNDMORE | ZMQ_DONTWAIT) == -1
    ||  zmq_send (router, data, size, ZMQ_DONTWAIT) == -1) {
        if (zmq_errno () == EAGAIN)
            peer->unsent++;
        return -1;
    }
    return 0;
}

void
al_broker_envelope_init (al_broker_t *self, al_envelope_t *envelope, char *id_buffer, size_t id_size,
                         const char *prefix)
{
    airlock__envelope__init (envelope);
    snprintf (id_buffer, id_size, "%s-%llu", prefix, (unsigned long long) ++self->message_counter);
    envelope->message_id = id_buffer;
    envelope->timestamp_ms = al_broker_wall_ms ();
}

//  ---- peers --------------------------------------------------------------------------

//  A heartbeat to one peer. Its sequence restarts at 1 for every connection a broker
//  run sees, so a client that sees it go back knows the broker restarted and registers
//  again (the new broker does not know it takes deliveries).
void
al_broker_send_heartbeat (al_broker_t *self, al_broker_peer_t *peer)
{
    char id [48];
    al_envelope_t envelope;
    al_broker_envelope_init (self, &envelope, id, sizeof id, "hb");
    Airlock__Heartbeat heartbeat = AIRLOCK__HEARTBEAT__INIT;
    heartbeat.sequence = ++peer->heartbeat_sequence;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_HEARTBEAT;
    envelope.heartbeat = &heartbeat;
    size_t size = al_broker_pack (self, &envelope);
    al_broker_send_to (self, peer, self->pack_buffer, size);
}


void
al_broker_peer_free (void **item_p)
{
    free (*item_p);
    *item_p = NULL;
}

//  Resolve (or re-resolve after a reload) a peer's identity from its ZAP User-Id.
static void
s_peer_resolve (al_broker_t *self, al_broker_peer_t *peer)
{
    const char *identity = NULL, *role = NULL;
    if (al_policy_identity_for_key (self->policy, peer->user_id, &identity, &role)) {
        snprintf (peer->identity, sizeof peer->identity, "%s", identity);
        snprintf (peer->role, sizeof peer->role, "%s", role);
    }
    else {
        peer->identity [0] = '\0';
        peer->role [0] = '\0';
        peer->takes_deliveries = false;
    }
    peer->policy_generation = self->policy_generation;
}

//  The peer a frame came from, created on first sight; NULL only without a User-Id.
al_broker_peer_t *
al_broker_peer_touch (al_broker_t *self, const zmq_msg_t *routing_id, zmq_msg_t *body, char *key_out)
{
    const char *user_id = zmq_msg_gets (body, "User-Id");
    size_t id_size = zmq_msg_size ((zmq_msg_t *) routing_id);
    if (!user_id || id_size == 0 || id_size > 255)
        return NULL;
    al_broker_hex ((const uint8_t *) zmq_msg_data ((zmq_msg_t *) routing_id), id_size, key_out);
    al_broker_peer_t *peer = (al_broker_peer_t *) zhashx_lookup (self->peers, key_out);
    if (peer && strcmp (peer->user_id, user_id) != 0) {
        //  A new connection reusing a routing id: forget the old one.
        zhashx_delete (self->peers, key_out);
        peer = NULL;
    }
    if (!peer) {
        peer = (al_broker_peer_t *) calloc (1, sizeof *peer + id_size + 2 * id_size + 1);
        assert (peer);
        peer->routing_id = (uint8_t *) peer->storage;
        peer->key = peer->storage + id_size;
        memcpy (peer->routing_id, zmq_msg_data ((zmq_msg_t *) routing_id), id_size);
        memcpy (peer->key, key_out, 2 * id_size + 1);
        peer->routing_id_size = id_size;
        snprintf (peer->user_id, sizeof peer->user_id, "%s", user_id);
        struct stat status;
        int fd = zmq_msg_get (body, ZMQ_SRCFD);
        peer->socket_inode = fd >= 0 && fstat (fd, &status) == 0? status.st_ino: 0;
        peer->dead_after_ms = (uint64_t) AL_BROKER_MISSED_HEARTBEATS * (uint64_t) al_config_heartbeat_ms (self->config);
        s_peer_resolve (self, peer);
        zhashx_insert (self->peers, key_out, peer);
        al_broker_send_heartbeat (self, peer);
    }
    else
    if (peer->policy_generation != self->policy_generation)
        s_peer_resolve (self, peer);
    peer->fd = zmq_msg_get (body, ZMQ_SRCFD);
    peer->last_seen_mono = al_broker_mono_ms ();
    peer->last_seen_ms = al_broker_wall_ms ();
    return peer;
}

//  Is the peer's connection closed: its descriptor closed, or its number now serving
//  another socket?
bool
al_broker_socket_gone (const al_broker_peer_t *peer)
{
    struct stat status;
    return peer->fd < 0 || fstat (peer->fd, &status) != 0 || status.st_ino != peer->socket_inode;
}

//  Forget a peer; deliveries it held go back to the queue (the next sweep resends them).
void
al_broker_peer_forget (al_broker_t *self, const char *key)
{
    zlistx_t *released = zlistx_new ();
    assert (released);
    for (char *holder = (char *) zhashx_first (self->inflight); holder;
         holder = (char *) zhashx_next (self->inflight))
        if (strcmp (holder, key) == 0)
            zlistx_add_end (released, (void *) zhashx_cursor (self->inflight));
    for (void *sequence = zlistx_first (released); sequence; sequence = zlistx_next (released))
        zhashx_delete (self->inflight, sequence);
    zlistx_destroy (&released);
    al_broker_peer_t *peer = (al_broker_peer_t *) zhashx_lookup (self->peers, key);
    if (peer && peer->closing) {
        uint64_t *expiry = (uint64_t *) malloc (sizeof *expiry);
        assert (expiry);
        *expiry = al_broker_mono_ms () + AL_BROKER_CLOSE_LIMIT_MS;
        zhashx_update (self->closed, key, expiry);
    }
    zhashx_delete (self->peers, key);
    self->forgotten_peers++;
}

//  Did this frame come from a closing peer dropped a moment ago (see the comment at the top)?
bool
al_broker_closed_recently (al_broker_t *self, zmq_msg_t *routing_id)
{
    size_t size = zmq_msg_size (routing_id);
    if (zhashx_size (self->closed) == 0 || size == 0 || size > 255)
        return false;
    char key [512];
    al_broker_hex ((const uint8_t *) zmq_msg_data (routing_id), size, key);
    uint64_t *expiry = (uint64_t *) zhashx_lookup (self->closed, key);
    if (!expiry)
        return false;
    if (al_broker_mono_ms () < *expiry)
        return true;
    zhashx_delete (self->closed, key);
    return false;
}

//  Forget the routing ids of dropped closing peers once their time is up.
void
al_broker_closed_purge (al_broker_t *self)
{
    uint64_t now = al_broker_mono_ms ();
    zlistx_t *expired = zlistx_new ();
    assert (expired);
    for (uint64_t *expiry = (uint64_t *) zhashx_first (self->closed); expiry;
         expiry = (uint64_t *) zhashx_next (self->closed))
        if (now >= *expiry)
            zlistx_add_end (expired, (void *) zhashx_cursor (self->closed));
    for (const char *key = (const char *) zlistx_first (expired); key; key = (const char *) zlistx_next (expired))
        zhashx_delete (self->closed, key);
    zlistx_destroy (&expired);
}

//  The peer sent an oversized frame: from now on it is closing (see the comment at the top).
void
al_broker_peer_closing_begin (al_broker_t *self, al_broker_peer_t *peer)
{
    if (peer->closing)
        return;
    peer->closing = true;
    peer->takes_deliveries = false;
    peer->closing_mono = al_broker_mono_ms ();
    peer->answered_mono = 0;
    self->closing_peers++;
}

//  Bytes the kernel still holds for the peer (0 when unknown: then only time counts).
static int
s_unsent_bytes (int fd)
{
    int queued = 0;
    if (fd < 0 || ioctl (fd, SIOCOUTQ, &queued) != 0)
        return 0;
    return queued;
}

//  Cut the closing peers whose answer has left (see the comment at the top).
void
al_broker_close_due (al_broker_t *self)
{
    if (self->closing_peers == 0)
        return;
    uint64_t now = al_broker_mono_ms ();
    size_t closing = 0;
    zlistx_t *due = zlistx_new ();
    assert (due);
    zlistx_set_duplicator (due, (czmq_duplicator *) strdup);
    zlistx_set_destructor (due, (czmq_destructor *) zstr_free);
    for (al_broker_peer_t *peer = (al_broker_peer_t *) zhashx_first (self->peers); peer;
         peer = (al_broker_peer_t *) zhashx_next (self->peers)) {
        if (!peer->closing)
            continue;
        closing++;
        //  Not answered (yet): only the limit applies, so that no peer stays closing for
        //  ever should its answer never be sent.
        if (peer->answered_mono == 0) {
            if (now - peer->closing_mono >= AL_BROKER_CLOSE_LIMIT_MS)
                zlistx_add_end (due, peer->key);
            continue;
        }
        uint64_t waited = now - peer->answered_mono;
        if (waited < S_CLOSE_GRACE_MS
        ||  (waited < AL_BROKER_CLOSE_LIMIT_MS && s_unsent_bytes (peer->fd) > 0))
            continue;
        zlistx_add_end (due, peer->key);
    }
    for (char *key = (char *) zlistx_first (due); key; key = (char *) zlistx_next (due)) {
        al_broker_peer_t *peer = (al_broker_peer_t *) zhashx_lookup (self->peers, key);
        //  The ROUTER has no per-peer close: end the connection under libzmq, which then
        //  closes it. A descriptor whose socket changed belongs to another connection
        //  now (ours already ended): it is left alone.
        if (!al_broker_socket_gone (peer))
            shutdown (peer->fd, SHUT_RDWR);
        al_broker_peer_forget (self, key);
        closing--;
    }
    zlistx_destroy (&due);
    self->closing_peers = closing;
}
