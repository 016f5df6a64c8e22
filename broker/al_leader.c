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

    The thread (al_leader_start): s_keeper runs the same al_leader_tick in a loop and
    publishes each outcome under lock (state, epoch, error, round count, time), signalling
    `changed`; the owner reads those, never the connection. The thread holds the lock
    only to publish and to sleep (a condition variable on the monotonic clock, woken
    early by al_leader_check and by destroy), never across a round trip. Destroy asks the
    server to cancel a round in flight (PQcancel on the connection's cancel handle, kept
    under the lock) so that a stop does not wait for a blocked renewal's timeout.

    The owner's progress (al_leader_require_progress): the owner stamps an atomic
    monotonic time (al_leader_progress, no lock: the reactor does it once per loop pass);
    before each renewal the thread reads it and renews only while it is younger than
    stale_ms. A renewal so skipped is not a failed round: the lease still runs, and the
    thread says once, on its own (the owner is the one that hangs), that it let it run
    out; if the owner stamps again before the lease expired, renewals resume; once a
    whole lease passed since the last renewal that got through, the thread reports LOST,
    exactly as for a renewal the database never answered. A takeover starts a bounded
    grace (grace_ms): the owner then rebuilds its state from the log before it stamps,
    so the thread renews without stamps and, since the owner's thread cannot, feeds
    systemd's watchdog and extends its timeouts (al_sd_notify: nothing without
    $NOTIFY_SOCKET). The owner's first stamp ends the grace.
*/
#include "broker/al_leader.h"
#include "base/al_clock.h"
#include "base/al_sd_notify.h"
#include "store/al_store_pg.h"

#include <czmq.h>

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdatomic.h>
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
    uint64_t epoch;                 // 0 unless active (the ticking thread's)
    int64_t renewed_mono_ms;        // start of the last renewal that got through
    //  The owner's progress (al_leader_require_progress); 0: not watched.
    int stale_ms;                   // renew only while the owner stamped this recently
    int grace_ms;                   // after a takeover, renew without stamps this long
    atomic_int_fast64_t progress_mono_ms;   // the owner's last stamp (any thread writes)
    atomic_int_fast64_t grace_until_mono_ms;    // 0 once the owner stamped after a takeover
    bool rebuilding;                // the ticking thread's: in a takeover's grace
    bool stalled;                   // the ticking thread's: renewals skipped, said once
    int64_t watched_from_mono_ms;   // the ticking thread's: it looks since then (no pause)
    //  The thread (al_leader_start); everything below is under lock once it runs.
    bool threaded;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t changed;         // a round's outcome was published
    pthread_cond_t wake;            // to the thread: a check was asked for, or stop
    int renew_ms;
    bool stop;
    uint64_t checks_asked;          // al_leader_check calls so far
    uint64_t checks_seen;           // checks_asked when the current round started
    uint64_t checks_answered;       // checks_seen of the last round completed
    PGcancel *cancel;               // the current connection's, for destroy
    al_leader_state_t published;    // STANDBY, ACTIVE or LOST (sticky)
    uint64_t published_epoch;
    uint64_t rounds;                // rounds completed
    uint64_t failed_rounds;         // of which got no answer
    uint64_t failed_reported;       // failed rounds al_leader_state has reported
    int64_t last_round_mono_ms;
    char last_error [512];
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
    if (self->threaded) {
        //  destroy may cancel a round of the new connection from now on.
        PGcancel *cancel = self->connection && PQstatus (self->connection) == CONNECTION_OK
                         ? PQgetCancel (self->connection) : NULL;
        pthread_mutex_lock (&self->lock);
        PQfreeCancel (self->cancel);
        self->cancel = cancel;
        pthread_mutex_unlock (&self->lock);
    }
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
    //  A password in airlock.yaml is readable by whoever reads the file: refused
    //  (without echoing it), as for the store's connections.
    char why [256] = "";
    int has_password = al_store_pg_dsn_has_password (conninfo, why, sizeof why);
    if (has_password != 0) {
        snprintf (error, error_size, "leader: the connection string %s", has_password > 0
                  ? "holds a password: put it in a passfile (passfile=FILE, or PGPASSFILE)" : why);
        goto failed;
    }
    if (sodium_init () < 0) {
        snprintf (error, error_size, "leader: libsodium failed to initialise");
        goto failed;
    }
    self = calloc (1, sizeof *self);
    assert (self);
    atomic_init (&self->progress_mono_ms, 0);
    atomic_init (&self->grace_until_mono_ms, 0);
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
    if (self->threaded) {
        pthread_mutex_lock (&self->lock);
        self->stop = true;
        if (self->cancel) {
            char ignored [256];
            PQcancel (self->cancel, ignored, sizeof ignored);
        }
        pthread_cond_broadcast (&self->wake);
        pthread_mutex_unlock (&self->lock);
        pthread_join (self->thread, NULL);
        PQfreeCancel (self->cancel);
        pthread_cond_destroy (&self->wake);
        pthread_cond_destroy (&self->changed);
        pthread_mutex_destroy (&self->lock);
    }
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

//  During a takeover's grace: tell systemd the broker is alive and may take a while
//  longer (the owner's thread, which normally does it, is busy rebuilding).
static void
s_feed_systemd (al_leader_t *self)
{
    char state [128];
    //  Within that time the next message comes (one per round; a round waits at most a
    //  lease for its statements).
    snprintf (state, sizeof state, "EXTEND_TIMEOUT_USEC=%" PRIu64 "%s",
              (uint64_t) (2 * self->lease_ms + self->renew_ms) * 1000,
              al_sd_watchdog_usec ()? "\nWATCHDOG=1": "");
    al_sd_notify (state);
}

//  Before a renewal, with the owner's progress watched: 0 renew; 1 skip it (the owner
//  is silent, the lease still runs); -1 the lease ran out unrenewed (error says why).
static int
s_owner_gate (al_leader_t *self, char *error, size_t error_size)
{
    int64_t now = al_clock_mono_ms ();
    if (self->rebuilding) {
        int64_t grace_until = atomic_load (&self->grace_until_mono_ms);
        if (grace_until == 0)
            self->rebuilding = false;   // the owner stamped: it serves
        else
        if (now < grace_until) {
            s_feed_systemd (self);
            return 0;
        }
    }
    //  A thread that overslept by more than the bound was frozen with its owner (SIGSTOP,
    //  a VM pause): the owner's silence counts only from when the thread looks again,
    //  and the renewal says whether the lease is still ours.
    if (self->threaded && now - self->last_round_mono_ms > self->renew_ms + self->stale_ms)
        self->watched_from_mono_ms = now;
    int64_t stamp = atomic_load (&self->progress_mono_ms);
    int64_t silent = now - (stamp > self->watched_from_mono_ms? stamp: self->watched_from_mono_ms);
    if (silent < self->stale_ms) {
        if (self->stalled)
            zsys_info ("leader: %s: the reactor made progress again: renewing the lease (epoch %" PRIu64 ")",
                       self->name, self->epoch);
        self->stalled = false;
        return 0;
    }
    if (!self->stalled) {
        if (self->rebuilding)
            zsys_warning ("leader: %s: the takeover's rebuild went on past its bound of %d ms: lease not "
                          "renewed, a standby may take over", self->name, self->grace_ms);
        else
            zsys_warning ("leader: %s: reactor made no progress for %" PRId64 " ms: lease not renewed, "
                          "a standby may take over", self->name, silent);
        self->stalled = true;
    }
    if (now - self->renewed_mono_ms < self->lease_ms)
        return 1;
    snprintf (error, error_size, "leader: %s let the lease of epoch %" PRIu64 " expire: the %s made no progress "
              "for %" PRId64 " ms (a standby may have taken over)", self->name, self->epoch,
              self->rebuilding? "takeover's rebuild": "reactor", silent);
    return -1;
}

//  One round, on whichever thread drives the lease.
static al_leader_state_t
s_tick (al_leader_t *self, char *error, size_t error_size)
{
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
        if (self->stale_ms) {
            //  The owner builds its state before it stamps: a bounded grace for that.
            atomic_store (&self->progress_mono_ms, started);
            atomic_store (&self->grace_until_mono_ms, self->grace_ms? started + self->grace_ms: 0);
            self->rebuilding = self->grace_ms > 0;
            self->stalled = false;
        }
        return AL_LEADER_ACTIVE;
    }
    if (self->stale_ms) {
        int gate = s_owner_gate (self, error, error_size);
        if (gate > 0)
            return AL_LEADER_ACTIVE;    // not renewed; the lease still runs
        if (gate < 0) {
            self->epoch = 0;
            return AL_LEADER_LOST;
        }
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

al_leader_state_t
al_leader_tick (al_leader_t *self, char *error, size_t error_size)
{
    assert (self);
    assert (!self->threaded);
    return s_tick (self, error, error_size);
}

int
al_leader_wait_active (al_leader_t *self, volatile int *stop, int timeout_ms, char *error, size_t error_size)
{
    assert (self);
    assert (!self->threaded);
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

//  A deadline on the monotonic clock, for pthread_cond_timedwait (the conditions are
//  made with CLOCK_MONOTONIC).
static struct timespec
s_deadline (int64_t timeout_ms)
{
    struct timespec deadline;
    clock_gettime (CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long) (timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    return deadline;
}

static void *
s_keeper (void *argument)
{
    al_leader_t *self = (al_leader_t *) argument;
    pthread_mutex_lock (&self->lock);
    while (!self->stop) {
        self->checks_seen = self->checks_asked;
        pthread_mutex_unlock (&self->lock);
        char error [512] = "";
        al_leader_state_t state = s_tick (self, error, sizeof error);
        pthread_mutex_lock (&self->lock);
        self->rounds++;
        self->checks_answered = self->checks_seen;
        self->last_round_mono_ms = al_clock_mono_ms ();
        if (state == AL_LEADER_ERROR)
            self->failed_rounds++;      // the lease may still run: what was published holds
        else
            self->published = state;
        self->published_epoch = self->epoch;
        if (*error || state != AL_LEADER_ERROR)
            snprintf (self->last_error, sizeof self->last_error, "%s", error);
        pthread_cond_broadcast (&self->changed);
        if (state == AL_LEADER_LOST)
            break;                      // the owner stops serving; nothing more to do
        int64_t pause_ms = self->published == AL_LEADER_ACTIVE ? self->renew_ms : self->lease_ms / 4;
        struct timespec deadline = s_deadline (pause_ms);
        while (!self->stop && self->checks_asked == self->checks_seen)
            if (pthread_cond_timedwait (&self->wake, &self->lock, &deadline) == ETIMEDOUT)
                break;
    }
    pthread_mutex_unlock (&self->lock);
    return NULL;
}

int
al_leader_start (al_leader_t *self, int renew_ms, char *error, size_t error_size)
{
    assert (self);
    assert (!self->threaded);
    if (renew_ms < 1 || renew_ms > self->lease_ms / 2) {
        snprintf (error, error_size, "leader: renewing every %d ms is outside 1..%d (half the lease)",
                  renew_ms, self->lease_ms / 2);
        return -1;
    }
    pthread_condattr_t attributes;
    pthread_condattr_init (&attributes);
    pthread_condattr_setclock (&attributes, CLOCK_MONOTONIC);
    pthread_mutex_init (&self->lock, NULL);
    pthread_cond_init (&self->changed, &attributes);
    pthread_cond_init (&self->wake, &attributes);
    pthread_condattr_destroy (&attributes);
    self->renew_ms = renew_ms;
    self->published = self->epoch ? AL_LEADER_ACTIVE : AL_LEADER_STANDBY;
    self->published_epoch = self->epoch;
    if (self->connection && PQstatus (self->connection) == CONNECTION_OK)
        self->cancel = PQgetCancel (self->connection);
    self->threaded = true;
    //  The thread takes no signal (it inherits this mask): a SIGTERM or SIGHUP for the
    //  process goes to a thread that acts on it (the broker's reactor), not to a libpq
    //  call that would only retry.
    sigset_t all, previous;
    sigfillset (&all);
    pthread_sigmask (SIG_SETMASK, &all, &previous);
    int created = pthread_create (&self->thread, NULL, s_keeper, self);
    pthread_sigmask (SIG_SETMASK, &previous, NULL);
    if (created != 0) {
        self->threaded = false;
        PQfreeCancel (self->cancel);
        self->cancel = NULL;
        pthread_cond_destroy (&self->wake);
        pthread_cond_destroy (&self->changed);
        pthread_mutex_destroy (&self->lock);
        snprintf (error, error_size, "leader: cannot start the lease's thread");
        return -1;
    }
    return 0;
}

//  Under lock: the published state as al_leader_state reports it.
static al_leader_state_t
s_published (al_leader_t *self, char *error, size_t error_size)
{
    if (self->published == AL_LEADER_LOST) {
        snprintf (error, error_size, "%s", self->last_error);
        return AL_LEADER_LOST;
    }
    if (self->failed_rounds > self->failed_reported) {
        self->failed_reported = self->failed_rounds;
        snprintf (error, error_size, "%s", self->last_error);
        return AL_LEADER_ERROR;
    }
    return self->published;
}

al_leader_state_t
al_leader_state (al_leader_t *self, char *error, size_t error_size)
{
    assert (self);
    assert (self->threaded);
    pthread_mutex_lock (&self->lock);
    al_leader_state_t state = s_published (self, error, error_size);
    pthread_mutex_unlock (&self->lock);
    return state;
}

al_leader_state_t
al_leader_wait (al_leader_t *self, int timeout_ms, char *error, size_t error_size)
{
    assert (self);
    assert (self->threaded);
    struct timespec deadline = s_deadline (timeout_ms < 0 ? 0 : timeout_ms);
    pthread_mutex_lock (&self->lock);
    while (self->published == AL_LEADER_STANDBY)
        if (timeout_ms < 0)
            pthread_cond_wait (&self->changed, &self->lock);
        else
        if (pthread_cond_timedwait (&self->changed, &self->lock, &deadline) == ETIMEDOUT)
            break;
    al_leader_state_t state = self->published;
    if (state == AL_LEADER_LOST)
        snprintf (error, error_size, "%s", self->last_error);
    pthread_mutex_unlock (&self->lock);
    return state;
}

al_leader_state_t
al_leader_check (al_leader_t *self, char *error, size_t error_size)
{
    assert (self);
    assert (self->threaded);
    pthread_mutex_lock (&self->lock);
    //  A round in flight may have started before the question: wait for one that
    //  started after it.
    uint64_t ticket = ++self->checks_asked;
    pthread_cond_broadcast (&self->wake);
    struct timespec deadline = s_deadline (3 * (int64_t) self->lease_ms + 10000);
    while (self->checks_answered < ticket && self->published != AL_LEADER_LOST)
        if (pthread_cond_timedwait (&self->changed, &self->lock, &deadline) == ETIMEDOUT)
            break;
    al_leader_state_t state = s_published (self, error, error_size);
    pthread_mutex_unlock (&self->lock);
    return state;
}

int64_t
al_leader_last_round_ms (al_leader_t *self)
{
    assert (self);
    assert (self->threaded);
    pthread_mutex_lock (&self->lock);
    int64_t last = self->last_round_mono_ms;
    pthread_mutex_unlock (&self->lock);
    return last;
}

uint64_t
al_leader_epoch (al_leader_t *self)
{
    assert (self);
    if (!self->threaded)
        return self->epoch;
    pthread_mutex_lock (&self->lock);
    uint64_t epoch = self->published_epoch;
    pthread_mutex_unlock (&self->lock);
    return epoch;
}

int
al_leader_require_progress (al_leader_t *self, int stale_ms, int grace_ms, char *error, size_t error_size)
{
    assert (self);
    assert (!self->threaded);
    if (stale_ms < 1 || stale_ms >= self->lease_ms || grace_ms < 0) {
        snprintf (error, error_size, "leader: a silence of %d ms (or a grace of %d ms) is outside 1..%d (the lease)",
                  stale_ms, grace_ms, self->lease_ms - 1);
        return -1;
    }
    self->stale_ms = stale_ms;
    self->grace_ms = grace_ms;
    atomic_store (&self->progress_mono_ms, al_clock_mono_ms ());
    atomic_store (&self->grace_until_mono_ms, 0);
    return 0;
}

void
al_leader_progress (al_leader_t *self)
{
    assert (self);
    atomic_store (&self->progress_mono_ms, al_clock_mono_ms ());
    if (atomic_load (&self->grace_until_mono_ms))
        atomic_store (&self->grace_until_mono_ms, 0);
}

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
