/*  fake_broker.h: a small broker for testing the agent runtime.

    A ROUTER with CURVE (server) and czmq's zauth as the ZAP handler, bound on an ipc://
    endpoint, running in its own actor. It follows the bus contract closely enough for the
    runtime: Acks Register and application messages (answering a retransmission with the
    original sequence and duplicate = true), heartbeats registered peers, answers
    StatusQuery with a StatusReply correlated by message id, and records everything it
    receives. Behaviour switches make it drop the first copy of each message, deny one
    message type, or go silent. It can be stopped and started again on the same endpoint
    (its log and dedup table survive; each start is a new generation).

    Threading: the test thread calls these functions; the actor runs the socket. The log
    and the switches are shared under a mutex.
*/
#ifndef FAKE_BROKER_H_INCLUDED
#define FAKE_BROKER_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct _fake_broker_t fake_broker_t;

//  One frame the fake broker received.
typedef struct {
    char type [40];              // body type name ("Register", "Heartbeat", ...)
    char message_id [72];
    char user_id [48];           // ZAP User-Id of the frame (the client's Z85 key)
    char routing_id [64];        // hex of the ROUTER routing id
    int generation;              // which start of the broker saw it (1, 2, ...)
    uint64_t delivery_id;        // DeliveryAck: the first acknowledged delivery
    size_t delivery_id_count;    // DeliveryAck: how many deliveries it lists
    bool subscribe_deliveries;   // Register
    char agent_name [64];        // Register
    char detail [256];           // DeployProgress
} fake_record_t;

fake_broker_t *fake_broker_new (const char *endpoint, zcert_t *broker_cert, int heartbeat_ms);
void fake_broker_destroy (fake_broker_t **self_p);

//  Start (bind) and stop (unbind) the broker actor.
void fake_broker_start (fake_broker_t *self);
void fake_broker_stop (fake_broker_t *self);

//  Behaviour switches.
void fake_broker_set_drop_first (fake_broker_t *self, bool drop_first);
void fake_broker_set_mute (fake_broker_t *self, bool mute);
void fake_broker_set_deny_type (fake_broker_t *self, const char *type_name);

//  Send ENVELOPE (packed) to the most recently registered peer. Returns 0, -1 if none.
int fake_broker_deliver (fake_broker_t *self, const uint8_t *data, size_t size);

//  Log access: number of records, and a copy of the index-th.
size_t fake_broker_log_size (fake_broker_t *self);
bool fake_broker_log_at (fake_broker_t *self, size_t index, fake_record_t *record);
//  Number of records of TYPE (NULL: any) in GENERATION (0: any).
size_t fake_broker_count (fake_broker_t *self, const char *type, int generation);
//  Number of records with MESSAGE_ID.
size_t fake_broker_count_id (fake_broker_t *self, const char *message_id);
//  How many times DELIVERY_ID was listed in the DeliveryAcks received (any frame, any
//  position in its list).
size_t fake_broker_acks_of (fake_broker_t *self, uint64_t delivery_id);

#endif
