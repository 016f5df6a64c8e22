/*  al_broker_leader.c: the broker's side of failover (docs/ha.md): serve only while
    holding the lease.

    With an ha section (its database is store.dsn), al_broker_new calls al_broker_leader_start before it opens
    anything: the broker waits there as a standby (it binds nothing, so clients with
    several endpoints move on to the active one) until it takes the lease, then opens
    the shared PostgreSQL store with the lease's epoch as its fence, and builds its
    state from the store as any broker start does: the delivery queue, the pending
    approvals and the chain head come from the log, so the new leader resumes where
    the old one committed. Once per heartbeat interval al_broker_leader_tick renews the
    lease; a lost lease stops the broker (al_broker_run returns -1: the process exits
    and its supervisor starts it again, as a standby). A commit after the lease was lost
    fails at the fence and stops the broker the same way, acknowledging nothing.

    Threading: the broker's thread only.
*/
#include "broker/al_broker_int.h"
#include "broker/al_leader.h"
#include "store/al_store_pg.h"

#include <unistd.h>

int
al_broker_leader_start (al_broker_t *self, char *error, size_t error_size)
{
    const al_config_t *config = self->config;
    const char *database = al_config_ha_database (config);
    assert (database);
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
    zsys_info ("broker: %s is a standby until it holds the lease", al_leader_name (self->leader));
    //  A standby holds nothing: SIGTERM or SIGINT (czmq's handler sets zsys_interrupted)
    //  ends the wait, and al_broker_new fails with "stopped while standby".
    if (al_leader_wait_active (self->leader, &zsys_interrupted, -1, error, error_size))
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
    if (al_store_set_fence (self->store, al_leader_epoch (self->leader)) != AL_STORE_OK) {
        snprintf (error, error_size, "store.dsn: cannot fence the store: %s", al_store_error (self->store));
        return -1;
    }
    return 0;
}

int
al_broker_leader_tick (al_broker_t *self)
{
    if (!self->leader)
        return 0;
    char error [512] = "";
    al_leader_state_t state = al_leader_tick (self->leader, error, sizeof error);
    if (state == AL_LEADER_ACTIVE)
        return 0;
    if (state == AL_LEADER_ERROR) {
        zsys_warning ("broker: cannot renew the lease (will retry): %s", error);
        return 0;
    }
    zsys_error ("broker: stopping: no longer the active broker: %s", error);
    return -1;
}

bool
al_broker_leader_superseded (al_broker_t *self)
{
    //  Only a log that grew under us needs the round trip: the head check that follows
    //  would call a newer leader's rows tampering.
    if (!self->leader || al_store_row_count (self->store) == self->own_rows)
        return false;
    if (al_broker_leader_tick (self) == 0)
        return false;
    self->leadership_lost = true;
    return true;
}
