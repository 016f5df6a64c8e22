/*  al_broker_leader.c: the broker's side of failover (docs/ha.md): serve only while
    holding the lease.

    With an ha section (its database is store.dsn), al_broker_new calls
    al_broker_leader_start before it opens anything: the lease goes to a thread of its
    own (al_leader_start: its own libpq connection; it takes the lease, then renews it
    once per heartbeat interval), and the broker waits there as a standby (it binds
    nothing, so clients with several endpoints move on to the active one) until that
    thread reports leadership. Then it opens the shared PostgreSQL store with the lease's
    epoch as its fence, and builds its state from the store as any broker start does:
    the delivery queue, the pending approvals and the chain head come from the log, so
    the new leader resumes where the old one committed.

    The reactor never waits for the lease's round trips: al_broker_leader_tick (once per
    heartbeat) and al_broker_leader_superseded (before every batch) read what the thread
    last learned. A lost lease stops the broker (al_broker_run returns -1: the process
    exits and its supervisor starts it again, as a standby), at the first batch or tick
    after the thread learned it. Whatever the thread knows, a commit after the lease was
    lost fails at the fence (the commit's own transaction) and stops the broker the same
    way, acknowledging nothing.

    Under systemd (Type=notify) a standby is a service that started: it sends READY=1
    with STATUS=standby once its thread has made its first round, and WATCHDOG=1 while
    the thread keeps making rounds, so neither TimeoutStartSec nor the watchdog kills a
    broker for waiting its turn (packaging/airlock.service.in says why this and not an
    infinite start timeout). `airlock broker` sends READY=1 again with its endpoints once
    it is active and bound.

    The lease follows the reactor: al_broker_run stamps its progress once per loop pass
    (al_leader_progress) and the lease's thread renews only while that stamp is younger
    than half the lease (al_leader_require_progress). A reactor that hangs (a deadlock, a
    blocking call) therefore stops renewing: the thread logs once why, the lease expires,
    a standby takes over, and when the reactor comes back it reads LOST and stops as for
    any lost lease (a commit meanwhile would be fenced). A takeover's rebuild (opening
    the store, reading the log for the pending approvals, the first batch) runs before
    the reactor's first pass: the thread renews without stamps for it, up to
    S_TAKEOVER_GRACE_MS, and feeds systemd meanwhile (EXTEND_TIMEOUT_USEC=, WATCHDOG=1).

    Test hooks (base/al_stallpoint): "broker.reactor" hangs the reactor in its
    heartbeat tick, "broker.takeover-rebuild" slows the rebuild just after the store
    opened; neither does anything unless AIRLOCK_STALLPOINT names it.

    Threading: the broker's thread; the lease's own thread lives in al_leader.c.
*/
#include "broker/al_broker_int.h"
#include "broker/al_leader.h"
#include "base/al_clock.h"
#include "base/al_sd_notify.h"
#include "base/al_stallpoint.h"
#include "store/al_store_pg.h"

#include <unistd.h>

//  How often a standby looks up from its wait (stop flag, systemd's watchdog).
#define S_STANDBY_SLICE_MS 250

//  How long a takeover's rebuild may hold the lease before the reactor's first pass.
//  The rebuild reads the whole log (the pending approvals): generous, so that a large
//  log does not make every takeover lose the lease it just took (and the next broker
//  the same); bounded, so that a rebuild that hangs gives the lease up.
#define S_TAKEOVER_GRACE_MS 600000

//  A standby's wait for the lease. 0 once active; -1 with error (stopped, lost).
static int
s_wait_standby (al_broker_t *self, char *error, size_t error_size)
{
    uint64_t watchdog_ms = al_sd_watchdog_usec () / 2000;
    int64_t next_watchdog = 0;
    bool ready_sent = false;
    int lease_ms = al_leader_lease_ms (self->leader);
    while (!zsys_interrupted) {
        char why [512] = "";
        al_leader_state_t state = al_leader_wait (self->leader, S_STANDBY_SLICE_MS, why, sizeof why);
        if (state == AL_LEADER_ACTIVE) {
            //  systemd's watchdog runs since the standby's READY=1: a full interval for
            //  opening the store and rebuilding from it, before the reactor pings.
            if (ready_sent && watchdog_ms)
                al_sd_notify ("WATCHDOG=1\nSTATUS=taking over: opening the store");
            return 0;
        }
        if (state == AL_LEADER_LOST) {
            snprintf (error, error_size, "%s", why);
            return -1;
        }
        int64_t last_round = al_leader_last_round_ms (self->leader);
        if (!ready_sent && last_round) {
            //  Up and waiting its turn: that is what a standby is for.
            char status [256];
            snprintf (status, sizeof status, "READY=1\nSTATUS=standby: %s waits for the lease",
                      al_leader_name (self->leader));
            if (al_sd_notify (status) < 0)
                zsys_warning ("broker: cannot notify systemd at $NOTIFY_SOCKET");
            ready_sent = true;
        }
        //  The watchdog is fed while the lease's thread is alive: it finished a round
        //  within two leases (a round's statements time out after one).
        if (watchdog_ms && last_round && al_clock_mono_ms () - last_round <= 2 * (int64_t) lease_ms
        &&  al_clock_mono_ms () >= next_watchdog) {
            al_sd_notify ("WATCHDOG=1");
            next_watchdog = al_clock_mono_ms () + (int64_t) watchdog_ms;
        }
    }
    //  SIGTERM or SIGINT (czmq's handler sets zsys_interrupted): a standby holds nothing.
    snprintf (error, error_size, "leader: stopped while standby");
    return -1;
}

int
al_broker_leader_start (al_broker_t *self, char *error, size_t error_size)
{
    const al_config_t *config = self->config;
    const char *database = al_config_ha_database (config);
    assert (database);
    //  The lease's connection is made before the store's: the dsn is checked here too.
    char why [256] = "";
    int has_password = al_store_pg_dsn_has_password (database, why, sizeof why);
    if (has_password != 0) {
        snprintf (error, error_size, "store.dsn: %s", has_password > 0
                  ? "holds a password: put it in a passfile (passfile=FILE in the dsn, or PGPASSFILE), never in airlock.yaml" : why);
        return -1;
    }
    if (al_config_ha_lease_ms (config) < 3 * al_config_heartbeat_ms (config)) {
        snprintf (error, error_size, "ha.lease_ms: %d is shorter than 3 heartbeat intervals (%d ms): "
                  "the lease is renewed once per interval", al_config_ha_lease_ms (config),
                  3 * al_config_heartbeat_ms (config));
        return -1;
    }
    char host [256] = "broker";
    if (!al_config_ha_name (config) && gethostname (host, sizeof host - 1) != 0)
        snprintf (host, sizeof host, "broker");
    const char *name = al_config_ha_name (config) ? al_config_ha_name (config) : host;
    self->leader = al_leader_new (database, name, al_config_ha_lease_ms (config), error, error_size);
    if (!self->leader)
        return -1;
    //  Renewed while the reactor stamped within half a lease: an idle reactor stamps at
    //  least once per heartbeat interval (a third of the lease at most).
    if (al_leader_require_progress (self->leader, al_config_ha_lease_ms (config) / 2, S_TAKEOVER_GRACE_MS,
                                    error, error_size)
    ||  al_leader_start (self->leader, al_config_heartbeat_ms (config), error, error_size))
        return -1;
    zsys_info ("broker: %s is a standby until it holds the lease", al_leader_name (self->leader));
    //  On failure al_broker_new fails: "stopped while standby" on SIGTERM.
    if (s_wait_standby (self, error, error_size))
        return -1;
    zsys_info ("broker: %s is active (lease epoch %llu)", al_leader_name (self->leader),
               (unsigned long long) al_leader_epoch (self->leader));
    return 0;
}

int
al_broker_leader_fence (al_broker_t *self, char *error, size_t error_size)
{
    if (!self->leader)
        return 0;
    al_stallpoint ("broker.takeover-rebuild");
    if (al_store_set_fence (self->store, al_leader_epoch (self->leader)) != AL_STORE_OK) {
        snprintf (error, error_size, "store.dsn: cannot fence the store: %s", al_store_error (self->store));
        return -1;
    }
    return 0;
}

//  What the lease's thread learned, as the reactor acts on it: 0 go on, -1 stop.
static int
s_act_on (al_leader_state_t state, const char *error)
{
    if (state == AL_LEADER_ACTIVE)
        return 0;
    if (state == AL_LEADER_ERROR) {
        zsys_warning ("broker: cannot renew the lease (will retry): %s", error);
        return 0;
    }
    zsys_error ("broker: stopping: no longer the active broker: %s", error);
    return -1;
}

int
al_broker_leader_tick (al_broker_t *self)
{
    if (!self->leader)
        return 0;
    al_stallpoint ("broker.reactor");
    char error [512] = "";
    return s_act_on (al_leader_state (self->leader, error, sizeof error), error);
}

bool
al_broker_leader_superseded (al_broker_t *self)
{
    if (!self->leader)
        return false;
    char error [512] = "";
    al_leader_state_t state = al_leader_state (self->leader, error, sizeof error);
    //  Only a log that grew under us needs an answer now: the head check that follows
    //  would call a newer leader's rows tampering. That is a failover's first batch at
    //  most, so the reactor may wait for one round there.
    if (state != AL_LEADER_LOST && al_store_row_count (self->store) != self->own_rows)
        state = al_leader_check (self->leader, error, sizeof error);
    if (s_act_on (state, error) == 0)
        return false;
    self->leadership_lost = true;
    return true;
}
