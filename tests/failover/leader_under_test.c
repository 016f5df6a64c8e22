/*  leader_under_test.c: a process that commits only while it holds the lease.

    leader_under_test CONNINFO NAME LEASE_MS: hands the lease to its thread (as the
    broker does: al_leader_start, renewing every lease/3), waits as standby until the
    thread reports the lease taken (prints "active EPOCH"), then commits one row
    (holder, epoch) into fenced_commits every 20 ms, each transaction fenced
    (al_leader_fence as its last statement), and looks at what the thread learned after
    each commit. Exit codes: 3 a commit was fenced (prints "fenced: ..."), 4 the thread
    reported the lease lost, 5 the database failed otherwise, 0 on SIGTERM. test_leader
    pauses it with SIGSTOP past its lease and wakes it.
*/
#include "broker/al_leader.h"

#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile int s_stop = 0;

static void
s_on_term (int signum)
{
    (void) signum;
    s_stop = 1;
}

static int
s_exec (PGconn *connection, const char *sql)
{
    PGresult *result = PQexec (connection, sql);
    int rc = PQresultStatus (result) == PGRES_COMMAND_OK ? 0 : -1;
    if (rc)
        printf ("database: %s", PQerrorMessage (connection));
    PQclear (result);
    return rc;
}

int
main (int argc, char *argv [])
{
    if (argc != 4) {
        fprintf (stderr, "usage: leader_under_test CONNINFO NAME LEASE_MS\n");
        return 2;
    }
    setvbuf (stdout, NULL, _IOLBF, 0);
    signal (SIGTERM, s_on_term);
    int lease_ms = atoi (argv [3]);
    char error [512] = "";
    al_leader_t *leader = al_leader_new (argv [1], argv [2], lease_ms, error, sizeof error);
    PGconn *connection = PQconnectdb (argv [1]);
    if (!leader || PQstatus (connection) != CONNECTION_OK) {
        printf ("start: %s %s", error, PQerrorMessage (connection));
        return 5;
    }
    int code = 5;
    al_leader_state_t state = AL_LEADER_STANDBY;
    if (s_exec (connection, "CREATE TABLE IF NOT EXISTS fenced_commits (seq bigserial PRIMARY KEY,"
                            " holder text NOT NULL, epoch bigint NOT NULL)") == 0
    &&  al_leader_start (leader, lease_ms / 3, error, sizeof error) == 0)
        while (!s_stop && (state = al_leader_wait (leader, 100, error, sizeof error)) == AL_LEADER_STANDBY)
            ;
    if (state == AL_LEADER_ACTIVE) {
        printf ("active %llu\n", (unsigned long long) al_leader_epoch (leader));
        code = 0;
        while (!s_stop) {
            usleep (20 * 1000);
            char epoch [24];
            snprintf (epoch, sizeof epoch, "%llu", (unsigned long long) al_leader_epoch (leader));
            const char *values [] = { argv [2], epoch };
            if (s_exec (connection, "BEGIN")) {
                code = 5;
                break;
            }
            PGresult *result = PQexecParams (connection, "INSERT INTO fenced_commits (holder, epoch) VALUES ($1, $2::bigint)",
                                             2, NULL, values, NULL, NULL, 0);
            bool inserted = PQresultStatus (result) == PGRES_COMMAND_OK;
            PQclear (result);
            if (!inserted) {
                code = 5;
                break;
            }
            if (al_leader_fence (connection, al_leader_epoch (leader), error, sizeof error)) {
                printf ("%s\n", error);
                s_exec (connection, "ROLLBACK");
                code = 3;
                break;
            }
            if (s_exec (connection, "COMMIT")) {
                code = 5;
                break;
            }
            if (al_leader_state (leader, error, sizeof error) == AL_LEADER_LOST) {
                printf ("lost: %s\n", error);
                code = 4;
                break;
            }
        }
    }
    PQfinish (connection);
    al_leader_destroy (&leader);
    return code;
}
