/*  al_leader.h: which broker is active, by a lease in PostgreSQL, and the fence that
    keeps a stale one from committing.

    Several brokers share one PostgreSQL database (docs/ha.md). Exactly one is active:
    the holder of the lease row of table airlock_ha.leader (its own schema,
    beside the audit store's tables). The lease has an epoch that
    grows by one at every takeover; a broker takes the lease only when it expired (by
    the database's clock, so the brokers' clocks never matter) and keeps it by renewing
    it well within its length. A broker that was paused (SIGSTOP, a VM migration, a long
    GC-like stall) past its lease may still believe it is active when it wakes: the
    fence stops it. Every commit of the audit log runs al_leader_fence as the last
    statement of its transaction: it locks the lease row (FOR SHARE) and fails unless
    the epoch is the caller's. A takeover (an UPDATE of that row) therefore either
    happened before the check (the stale commit fails and is rolled back) or waits
    until that commit is done (the commit was still the leader's). So a stale leader
    can never commit, whatever the timing. Sessions that hold the lock and then stall
    are ended by the server (idle_in_transaction_session_timeout = the lease), so a
    paused leader cannot block the takeover either.

    Two ways to drive it. Synchronously (al_leader_tick, al_leader_wait_active): each
    call is a round trip on the caller's thread. Or on a thread of its own
    (al_leader_start): from then on only that thread touches the lease's connection; it
    takes the lease (a standby polls every lease/4) and renews it every renew_ms, and
    the owner only reads what it learned (al_leader_state, al_leader_wait, never a round
    trip), so a slow or locked lease row never stalls the owner (the broker's reactor).
    Fencing does not depend on the thread: every commit runs the fence in its own
    transaction, so a stale leader never commits whatever the thread knows or not yet.

    The thread renews for an owner that works: with al_leader_require_progress, it
    renews only while the owner stamped its progress recently (al_leader_progress), so
    an owner that hangs loses the lease by expiry and a standby takes over; a takeover's
    rebuild has a bounded grace.

    Threading: without al_leader_start an al_leader_t is used by one thread. After it,
    the owner's thread may call al_leader_state, al_leader_wait, al_leader_check,
    al_leader_epoch and al_leader_destroy (which stops the thread), any thread
    al_leader_progress; al_leader_tick, al_leader_wait_active and
    al_leader_require_progress are then a programming error (asserted). al_leader_fence
    takes any libpq connection in a transaction.
*/
#ifndef AL_LEADER_H_INCLUDED
#define AL_LEADER_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _al_leader_t al_leader_t;

typedef enum {
    AL_LEADER_STANDBY = 0,      // another broker holds a lease that has not expired
    AL_LEADER_ACTIVE,           // this broker holds the lease (al_leader_epoch)
    AL_LEADER_LOST,             // this broker held it and does no longer: stop serving
    AL_LEADER_ERROR             // the database did not answer (error says why)
} al_leader_state_t;

//  Connect to the database CONNINFO (a libpq connection string or URI) and make the
//  lease table and the fence function if missing. NAME identifies this broker in the
//  lease row (the host name is a good one; a random suffix is added so two processes
//  never share a name). LEASE_MS (100 .. 600000): how long a lease lasts unrenewed.
//  Returns NULL with "leader: what is wrong" in error.
al_leader_t *al_leader_new (const char *conninfo, const char *name, int lease_ms,
                            char *error, size_t error_size);
void al_leader_destroy (al_leader_t **self_p);

//  One round: a standby takes the lease if it expired (epoch + 1), the active broker
//  renews it. Call it at least every lease_ms / 3. Returns the state; AL_LEADER_LOST is
//  returned once, then STANDBY. A renewal that fails for want of an answer is ERROR
//  while the lease may still run, LOST once it cannot have (by this host's clock).
al_leader_state_t al_leader_tick (al_leader_t *self, char *error, size_t error_size);

//  Tick until active (returns 0), or until *stop becomes true or the deadline passes
//  (timeout_ms, -1: none) (returns -1). Between ticks it sleeps lease_ms / 4.
int al_leader_wait_active (al_leader_t *self, volatile int *stop, int timeout_ms,
                           char *error, size_t error_size);

//  Hand the lease to a thread of its own (see the top of this file): it ticks at once,
//  then every lease_ms / 4 while standby and every RENEW_MS (1 .. lease_ms / 2) while
//  active; once it reports AL_LEADER_LOST it stops ticking (the owner is expected to
//  stop serving: a new process comes back as a standby). 0, or -1 with error.
int al_leader_start (al_leader_t *self, int renew_ms, char *error, size_t error_size);

//  Renew only while the owner makes progress (docs/ha.md: a broker whose reactor hangs
//  must not keep the lease). Call before al_leader_start. From then on the active
//  thread renews only while the owner called al_leader_progress within the last
//  STALE_MS (1 .. lease_ms - 1; the broker uses half the lease); past that it skips
//  renewals and logs once why ("reactor made no progress for N ms: lease not renewed,
//  a standby may take over"), resumes them if the owner stamps again while the lease
//  runs, and reports AL_LEADER_LOST once a whole lease passed since the last renewal.
//  A takeover starts a grace of GRACE_MS (0: none) in which the thread renews without
//  stamps, for the owner's rebuild from the log, and feeds systemd for it
//  (EXTEND_TIMEOUT_USEC=, and WATCHDOG=1 under a watchdog); the owner's first stamp
//  ends it. 0, or -1 with error.
int al_leader_require_progress (al_leader_t *self, int stale_ms, int grace_ms, char *error, size_t error_size);

//  The owner made progress (any thread, no lock, no round trip: one atomic store).
void al_leader_progress (al_leader_t *self);

//  What the thread last learned, without a round trip: AL_LEADER_STANDBY (also before
//  its first round), AL_LEADER_ACTIVE, AL_LEADER_LOST (error says why; it stays LOST),
//  or AL_LEADER_ERROR once per round that got no answer while the lease may still run
//  (error says why; whether this broker is active is then al_leader_epoch () != 0).
al_leader_state_t al_leader_state (al_leader_t *self, char *error, size_t error_size);

//  Block until the thread reports ACTIVE or LOST, or timeout_ms (-1: none) passes;
//  returns the state then (STANDBY on timeout; error filled for LOST).
al_leader_state_t al_leader_wait (al_leader_t *self, int timeout_ms, char *error, size_t error_size);

//  Ask the thread for a round now and wait for its outcome (at most about two leases:
//  the round's statements time out after one). For the rare moment the owner must know
//  before going on (the log grew under it: a failover or tampering?). The state after
//  that round, as al_leader_state returns it (ERROR: still no answer).
al_leader_state_t al_leader_check (al_leader_t *self, char *error, size_t error_size);

//  The monotonic time (al_clock_mono_ms) at which the thread finished its last round,
//  whatever its outcome (0: none yet): proof that it is alive (a standby's watchdog).
int64_t al_leader_last_round_ms (al_leader_t *self);

//  The epoch of this broker's lease (0 unless active), its name, the lease length.
uint64_t al_leader_epoch (al_leader_t *self);
const char *al_leader_name (al_leader_t *self);
int al_leader_lease_ms (al_leader_t *self);

//  The fence. CONNECTION is a PGconn * inside the transaction about to commit. Locks
//  the lease row and checks that EPOCH is the current one; 0, or -1 with "fenced: ..."
//  (or the server's message) in error, after which the caller must roll back.
int al_leader_fence (void *connection, uint64_t epoch, char *error, size_t error_size);

//  The SQL that makes the lease table and the fence function (idempotent); a store
//  backend that creates its schema may run it too.
const char *al_leader_schema_sql (void);

#ifdef __cplusplus
}
#endif

#endif
