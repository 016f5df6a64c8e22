/*  pg_harness.h: a throwaway PostgreSQL server for tests (tests/pg/pg_harness.sh behind a
    C API).

    pg_harness_new runs initdb in a new temporary directory and starts a server on
    127.0.0.1 at a port the kernel chose (the socket directory is private to the test),
    as an unprivileged user; pg_harness_destroy stops it and deletes the directory. If the
    test process dies first, the script's watchdog stops the server and deletes the
    directory. The superuser is "airlock" with trust authentication (loopback only).
    Startup takes a few seconds (initdb): start one server per test executable and give
    each test case its own database (pg_harness_database_new).

    PostgreSQL missing is an error (the test fails): scripts/install-deps installs it.

    Threading: one thread at a time per harness.
*/
#ifndef PG_HARNESS_H_INCLUDED
#define PG_HARNESS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

typedef struct _pg_harness_t pg_harness_t;

//  Starts a server; NULL with "what went wrong" (initdb's or the server's log) in error.
pg_harness_t *pg_harness_new (char *error, size_t error_size);
//  The same, the server inside network namespace NETNS (NULL: the host's; needs root and
//  iproute2) listening on ADDRESS (NULL: 127.0.0.1), which pg_harness_dsn then names;
//  clients in namespaces linked to NETNS are trusted ("samenet"). pg_harness_sql reaches
//  it through the socket directory.
pg_harness_t *pg_harness_new_in (const char *netns, const char *address, char *error, size_t error_size);
//  Stops the server (immediate shutdown) and deletes its directory. NULL-safe.
void pg_harness_destroy (pg_harness_t **self_p);

//  The TCP port (on its address) and the temporary directory (data/, sock/, server.log).
int pg_harness_port (pg_harness_t *self);
const char *pg_harness_dir (pg_harness_t *self);

//  A libpq connection string for database dbname: "host=ADDRESS port=N user=airlock
//  dbname=DBNAME connect_timeout=10". Caller frees.
char *pg_harness_dsn (pg_harness_t *self, const char *dbname);
//  Creates a new empty database named prefix_N (N unique in this harness) and returns its
//  connection string (caller frees), or NULL with error.
char *pg_harness_database_new (pg_harness_t *self, const char *prefix, char *error, size_t error_size);

//  Runs SQL (one or more statements) on database dbname as the superuser. Returns the
//  first column of the first row of the last statement (malloc'd; "" when it returns no
//  row), or NULL with the server's message in error.
char *pg_harness_sql (pg_harness_t *self, const char *dbname, const char *sql, char *error, size_t error_size);

//  Stop (fast), crash (immediate shutdown) or start again the same server on the same
//  port and data directory. 0 on success.
int pg_harness_stop (pg_harness_t *self);
int pg_harness_kill (pg_harness_t *self);
int pg_harness_start (pg_harness_t *self, char *error, size_t error_size);
bool pg_harness_running (pg_harness_t *self);

#endif
