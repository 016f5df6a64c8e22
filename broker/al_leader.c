/*  al_leader.c: the lease and the fence in PostgreSQL (see al_leader.h for the contract).

    The lease is one row (id = 1) of airlock_ha.leader: holder, epoch, expires_at and the
    lease length. Every time comparison is the server's clock_timestamp(), so only one
    clock decides who may take over. Taking over and renewing are single UPDATEs whose
    WHERE clause is the whole rule (expired; or still ours with our epoch), so two
    standbys racing for an expired lease cannot both win: the second UPDATE re-reads
    the row the first wrote and no longer matches. The fence is a PL/pgSQL function,
    so it is one round trip inside the caller's transaction.

    Our own clock only says when to give up: a renewal that did not get through for a
    whole lease (measured from the start of the last one that did) means another broker
    may have taken over, so we report LOST even if the database never said so.
*/
#include "broker/al_leader.h"
#include "base/al_clock.h"

#include <assert.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct _al_leader_t {
    PGconn *connection;
    char conninfo [1024];
    char name [160];
    int lease_ms;
    uint64_t epoch;                 // 0 unless active
    int64_t renewed_mono_ms;        // start of the last renewal that got through
};

static const char s_schema_sql [] =
    "SELECT pg_advisory_xact_lock(7360411);"
    "CREATE SCHEMA IF NOT EXISTS airlock_ha;"
    "CREATE TABLE IF NOT EXISTS airlock_ha.leader ("
    "  id integer PRIMARY KEY CHECK (id = 1),"
    "  holder text NOT NULL,"
    "  epoch bigint NOT NULL,"
    "  expires_at timestamptz NOT NULL,"
    "  lease_ms integer NOT NULL);"
    "INSERT INTO airlock_ha.leader VALUES (1, '', 0, '-infinity', 1000) ON CONFLICT (id) DO NOTHING;"
    "CREATE OR REPLACE FUNCTION airlock_ha.fence(expected bigint) RETURNS void LANGUAGE plpgsql AS $fence$"
    " DECLARE current_epoch bigint; current_holder text; lease integer;"
    " BEGIN"
    "  SELECT epoch, holder, lease_ms INTO current_epoch, current_holder, lease"
    "    FROM airlock_ha.leader WHERE id = 1 FOR SHARE;"
    "  IF current_epoch IS DISTINCT FROM expected THEN"
    "    RAISE EXCEPTION 'fenced: epoch % is not the lease''s epoch % (held by %): another broker took over',"
    "      expected, current_epoch, current_holder USING ERRCODE = 'P0001';"
    "  END IF;"
    //  The row stays locked until COMMIT: a session that stalls now must not block a
    //  takeover for longer than a lease.
    "  PERFORM set_config('idle_in_transaction_session_timeout', lease::text, true);"
    " END $fence$;";

//  The server's message without its trailing newline.
static void
s_pg_error (char *error, size_t error_size, const char *what, const char *message)
{
    size_t length = strlen (message);
    while (length && (message [length - 1] == '\n' || message [length - 1] == ' '))
        length--;
    snprintf (error, error_size, "leader: %s: %.*s", what, (int) length, message);
}

//  (Re)connect and set the session's timeouts. 0, or -1 with the reason.
static int
s_connect (al_leader_t *self, char *error, size_t error_size)
{
    if (self->connection && PQstatus (self->connection) == CONNECTION_OK)
        return 0;
    PQfinish (self->connection);
    self->connection = PQconnectdb (self->conninfo);
    if (!self->connection || PQstatus (self->connection) != CONNECTION_OK) {
        s_pg_error (error, error_size, "cannot connect to the database",
                    self->connection ? PQerrorMessage (self->connection) : "out of memory");
        PQfinish (self->connection);
        self->connection = NULL;
        return -1;
    }
    //  A tick never waits longer than a lease for a lock or an answer.
    char sql [256];
    snprintf (sql, sizeof sql, "SET lock_timeout = %d; SET statement_timeout = %d; SET client_min_messages = warning;",
              self->lease_ms, self->lease_ms);
    PGresult *result = PQexec (self->connection, sql);
    int rc = PQresultStatus (result) == PGRES_COMMAND_OK ? 0 : -1;
    if (rc)
        s_pg_error (error, error_size, "cannot set the session's timeouts", PQerrorMessage (self->connection));
    PQclear (result);
    return rc;
}

const char *
al_leader_schema_sql (void)
{
    return s_schema_sql;
}

al_leader_t *
al_leader_new (const char *conninfo, const char *name, int lease_ms, char *error, size_t error_size)
{
    assert (conninfo);
    assert (name);
    al_leader_t *self = NULL;
    PGresult *result = NULL;
    if (lease_ms < 100 || lease_ms > 600000) {
        snprintf (error, error_size, "leader: lease %d ms is outside 100..600000", lease_ms);
        goto failed;
    }
    if (strlen (conninfo) >= sizeof self->conninfo || strlen (name) > 100 || !*name) {
        snprintf (error, error_size, "leader: the connection string or the name '%s' is empty or too long", name);
        goto failed;
    }
    if (sodium_init () < 0) {
        snprintf (error, error_size, "leader: libsodium failed to initialise");
        goto failed;
    }
    self = calloc (1, sizeof *self);
    assert (self);
    self->lease_ms = lease_ms;
    snprintf (self->conninfo, sizeof self->conninfo, "%s", conninfo);
    snprintf (self->name, sizeof self->name, "%s-%d-%08" PRIx32, name, (int) getpid (), randombytes_random ());
    if (s_connect (self, error, error_size))
        goto failed;
    result = PQexec (self->connection, "BEGIN");
    PQclear (result);
    result = PQexec (self->connection, s_schema_sql);
    if (PQresultStatus (result) != PGRES_COMMAND_OK) {
        s_pg_error (error, error_size, "cannot make the lease table", PQerrorMessage (self->connection));
        PQclear (result);
        result = PQexec (self->connection, "ROLLBACK");
        goto failed;
    }
    PQclear (result);
    result = PQexec (self->connection, "COMMIT");
    if (PQresultStatus (result) != PGRES_COMMAND_OK) {
        s_pg_error (error, error_size, "cannot make the lease table", PQerrorMessage (self->connection));
        goto failed;
    }
    PQclear (result);
    return self;
failed:
    PQclear (result);
    al_leader_destroy (&self);
    return NULL;
}

void
al_leader_destroy (al_leader_t **self_p)
{
    assert (self_p);
    al_leader_t *self = *self_p;
    if (!self)
        return;
    PQfinish (self->connection);
    free (self);
    *self_p = NULL;
}

//  Run one UPDATE ... RETURNING epoch. Returns 1 with *epoch_p (a row matched), 0 (no
//  row), -1 (no answer; error says why).
static int
s_update (al_leader_t *self, const char *sql, int count, const char *const *values, uint64_t *epoch_p,
          char *error, size_t error_size)
{
    if (s_connect (self, error, error_size))
        return -1;
    PGresult *result = PQexecParams (self->connection, sql, count, NULL, values, NULL, NULL, 0);
    int rc = -1;
    if (PQresultStatus (result) != PGRES_TUPLES_OK)
        s_pg_error (error, error_size, "the lease", PQerrorMessage (self->connection));
    else
    if (PQntuples (result) == 1) {
        *epoch_p = strtoull (PQgetvalue (result, 0, 0), NULL, 10);
        rc = 1;
    }
    else
        rc = 0;
    PQclear (result);
    return rc;
}

al_leader_state_t
al_leader_tick (al_leader_t *self, char *error, size_t error_size)
{
    assert (self);
    char lease [16], epoch [24];
    snprintf (lease, sizeof lease, "%d", self->lease_ms);
    int64_t started = al_clock_mono_ms ();
    uint64_t got = 0;
    if (self->epoch == 0) {
        const char *values [] = { self->name, lease };
        int rc = s_update (self,
            "UPDATE airlock_ha.leader SET holder = $1, epoch = epoch + 1, lease_ms = $2::integer,"
            " expires_at = clock_timestamp() + make_interval(secs => $2::integer / 1000.0)"
            " WHERE id = 1 AND expires_at < clock_timestamp() RETURNING epoch",
            2, values, &got, error, error_size);
        if (rc < 0)
            return AL_LEADER_ERROR;
        if (rc == 0)
            return AL_LEADER_STANDBY;
        self->epoch = got;
        self->renewed_mono_ms = started;
        return AL_LEADER_ACTIVE;
    }
    snprintf (epoch, sizeof epoch, "%" PRIu64, self->epoch);
    const char *values [] = { self->name, epoch, lease };
    int rc = s_update (self,
        "UPDATE airlock_ha.leader SET lease_ms = $3::integer,"
        " expires_at = clock_timestamp() + make_interval(secs => $3::integer / 1000.0)"
        " WHERE id = 1 AND holder = $1 AND epoch = $2::bigint RETURNING epoch",
        3, values, &got, error, error_size);
    if (rc == 1) {
        self->renewed_mono_ms = started;
        return AL_LEADER_ACTIVE;
    }
    if (rc < 0 && al_clock_mono_ms () - self->renewed_mono_ms < self->lease_ms)
        return AL_LEADER_ERROR;     // the lease may still run: try again
    if (rc == 0)
        snprintf (error, error_size, "leader: %s lost the lease of epoch %" PRIu64 ": another broker took over",
                  self->name, self->epoch);
    self->epoch = 0;
    return AL_LEADER_LOST;
}

int
al_leader_wait_active (al_leader_t *self, volatile int *stop, int timeout_ms, char *error, size_t error_size)
{
    assert (self);
    if (error_size)
        *error = 0;
    int64_t deadline = timeout_ms < 0 ? -1 : al_clock_mono_ms () + timeout_ms;
    while (!(stop && *stop)) {
        al_leader_state_t state = al_leader_tick (self, error, error_size);
        if (state == AL_LEADER_ACTIVE)
            return 0;
        if (deadline >= 0 && al_clock_mono_ms () >= deadline)
            break;
        usleep ((useconds_t) self->lease_ms / 4 * 1000);
    }
    if (error_size && !*error)
        snprintf (error, error_size, "leader: %s", stop && *stop ? "stopped while standby" : "still standby");
    return -1;
}

uint64_t al_leader_epoch (al_leader_t *self) { assert (self); return self->epoch; }
const char *al_leader_name (al_leader_t *self) { assert (self); return self->name; }
int al_leader_lease_ms (al_leader_t *self) { assert (self); return self->lease_ms; }

int
al_leader_fence (void *connection, uint64_t epoch, char *error, size_t error_size)
{
    assert (connection);
    char text [24];
    snprintf (text, sizeof text, "%" PRIu64, epoch);
    const char *values [] = { text };
    PGresult *result = PQexecParams ((PGconn *) connection, "SELECT airlock_ha.fence($1::bigint)", 1, NULL,
                                     values, NULL, NULL, 0);
    int rc = 0;
    if (PQresultStatus (result) != PGRES_TUPLES_OK) {
        const char *message = PQresultErrorField (result, PG_DIAG_MESSAGE_PRIMARY);
        s_pg_error (error, error_size, "commit refused",
                    message ? message : PQerrorMessage ((PGconn *) connection));
        rc = -1;
    }
    PQclear (result);
    return rc;
}
