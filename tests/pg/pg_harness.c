/*  pg_harness.c: a throwaway PostgreSQL server for tests; see pg_harness.h.

    The shell script (PG_HARNESS_SCRIPT, tests/pg/pg_harness.sh) does initdb, pg_ctl and
    the watchdog; this file runs it, remembers the port and talks SQL through libpq.
*/
#include "pg_harness.h"
#include <libpq-fe.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef PG_HARNESS_SCRIPT
#error "PG_HARNESS_SCRIPT must name tests/pg/pg_harness.sh"
#endif

struct _pg_harness_t {
    char *dir;
    char *netns;                // network namespace the server runs in, or NULL (the host's)
    char *address;              // the address it listens on (default 127.0.0.1)
    int port;
    bool running;
    unsigned databases;         // databases made so far (for unique names)
};

//  Runs "pg_harness.sh COMMAND DIR [extra]"; its first output line goes into line.
static int
s_script (pg_harness_t *self, const char *command, const char *extra, char *line, size_t line_size)
{
    char shell [4096];
    snprintf (shell, sizeof shell, "PG_HARNESS_NETNS='%s' PG_HARNESS_ADDRESS='%s' sh '%s' %s '%s' %s 2>&1",
              self->netns? self->netns: "", self->address, PG_HARNESS_SCRIPT, command, self->dir, extra? extra: "");
    FILE *pipe = popen (shell, "r");
    if (!pipe)
        return -1;
    char buffer [1024];
    size_t used = 0;
    if (line && line_size)
        line [0] = 0;
    while (fgets (buffer, sizeof buffer, pipe))
        if (line && used + 1 < line_size) {
            snprintf (line + used, line_size - used, "%s", buffer);
            used = strlen (line);
        }
    int status = pclose (pipe);
    return status == 0? 0: -1;
}

static int
s_remove_entry (const char *path, const struct stat *info, int flag, struct FTW *ftw)
{
    (void) info; (void) flag; (void) ftw;
    remove (path);
    return 0;
}

pg_harness_t *
pg_harness_new (char *error, size_t error_size)
{
    return pg_harness_new_in (NULL, NULL, error, error_size);
}

pg_harness_t *
pg_harness_new_in (const char *netns, const char *address, char *error, size_t error_size)
{
    pg_harness_t *self = calloc (1, sizeof *self);
    const char *tmp = getenv ("TMPDIR");
    char template [4096];
    snprintf (template, sizeof template, "%s/airlock-pg-XXXXXX", tmp && *tmp? tmp: "/tmp");
    if (!self || !mkdtemp (template) || !(self->dir = strdup (template))
    ||  !(self->address = strdup (address? address: "127.0.0.1"))
    ||  (netns && !(self->netns = strdup (netns)))) {
        snprintf (error, error_size, "pg_harness: cannot make a temporary directory");
        if (self) {
            free (self->dir);
            free (self->address);
        }
        free (self);
        return NULL;
    }
    if (pg_harness_start (self, error, error_size) != 0) {
        pg_harness_destroy (&self);
        return NULL;
    }
    return self;
}

void
pg_harness_destroy (pg_harness_t **self_p)
{
    pg_harness_t *self = *self_p;
    if (!self)
        return;
    //  Immediate: the data is deleted next, so the shutdown checkpoint (which syncs every
    //  database the test made) would only cost time.
    if (self->running)
        pg_harness_kill (self);
    if (self->dir)
        nftw (self->dir, s_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free (self->dir);
    free (self->netns);
    free (self->address);
    free (self);
    *self_p = NULL;
}

int
pg_harness_port (pg_harness_t *self)
{
    return self->port;
}

const char *
pg_harness_dir (pg_harness_t *self)
{
    return self->dir;
}

bool
pg_harness_running (pg_harness_t *self)
{
    return self->running;
}

int
pg_harness_start (pg_harness_t *self, char *error, size_t error_size)
{
    char output [4096];
    char owner [32];
    snprintf (owner, sizeof owner, "%ld", (long) getpid ());
    if (s_script (self, "start", owner, output, sizeof output) != 0) {
        snprintf (error, error_size, "pg_harness: %s", output);
        return -1;
    }
    self->port = atoi (output);
    if (self->port <= 0) {
        snprintf (error, error_size, "pg_harness: no port from the script: %s", output);
        return -1;
    }
    self->running = true;
    return 0;
}

int
pg_harness_stop (pg_harness_t *self)
{
    int rc = s_script (self, "stop", NULL, NULL, 0);
    if (rc == 0)
        self->running = false;
    return rc;
}

int
pg_harness_kill (pg_harness_t *self)
{
    int rc = s_script (self, "kill", NULL, NULL, 0);
    if (rc == 0)
        self->running = false;
    return rc;
}

char *
pg_harness_dsn (pg_harness_t *self, const char *dbname)
{
    char *dsn = NULL;
    if (asprintf (&dsn, "host=%s port=%d user=airlock dbname=%s connect_timeout=10",
                  self->address, self->port, dbname) < 0)
        return NULL;
    return dsn;
}

//  Where this process reaches the server: its address, or the socket directory when the
//  server is in another network namespace.
static char *
s_local_dsn (pg_harness_t *self, const char *dbname)
{
    char *dsn = NULL;
    if (!self->netns)
        return pg_harness_dsn (self, dbname);
    if (asprintf (&dsn, "host=%s/sock port=%d user=airlock dbname=%s connect_timeout=10",
                  self->dir, self->port, dbname) < 0)
        return NULL;
    return dsn;
}

char *
pg_harness_sql (pg_harness_t *self, const char *dbname, const char *sql, char *error, size_t error_size)
{
    char *value = NULL;
    char *dsn = s_local_dsn (self, dbname);
    PGconn *conn = dsn? PQconnectdb (dsn): NULL;
    PGresult *result = NULL;
    if (!conn || PQstatus (conn) != CONNECTION_OK) {
        snprintf (error, error_size, "pg_harness: connect %s: %s", dbname,
                  conn? PQerrorMessage (conn): "out of memory");
        goto cleanup;
    }
    result = PQexec (conn, sql);
    ExecStatusType status = PQresultStatus (result);
    if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
        snprintf (error, error_size, "pg_harness: %s: %s", sql, PQerrorMessage (conn));
        goto cleanup;
    }
    value = strdup (status == PGRES_TUPLES_OK && PQntuples (result) > 0 && PQnfields (result) > 0
                    ? PQgetvalue (result, 0, 0): "");
cleanup:
    PQclear (result);
    PQfinish (conn);
    free (dsn);
    return value;
}

char *
pg_harness_database_new (pg_harness_t *self, const char *prefix, char *error, size_t error_size)
{
    char name [128];
    snprintf (name, sizeof name, "%s_%u", prefix, ++self->databases);
    for (char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_'))
            *c = '_';
    char sql [256];
    snprintf (sql, sizeof sql, "CREATE DATABASE %s", name);
    char *done = pg_harness_sql (self, "postgres", sql, error, error_size);
    if (!done)
        return NULL;
    free (done);
    return pg_harness_dsn (self, name);
}
