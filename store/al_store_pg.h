/*  al_store_pg.h: the PostgreSQL backend of the audit store (ops table "postgres").

    The "path" given to al_store_open is a libpq connection string ("host=db1 port=5432
    dbname=airlock user=airlock passfile=/etc/airlock/pgpass") or URI. The database must
    exist; the backend creates its tables in the connection's current schema. Passwords
    belong in a passfile, never in the connection string: airlock.yaml refuses one there,
    and the backend's messages show the string with any password removed.
*/
#ifndef AL_STORE_PG_H_INCLUDED
#define AL_STORE_PG_H_INCLUDED

#include "store/al_store_ops.h"

#ifdef __cplusplus
extern "C" {
#endif

//  Name of the backend, as airlock.yaml's store.backend spells it.
#define AL_STORE_PG_BACKEND "postgres"

//  The PostgreSQL backend; registered with the built-in ones.
extern const al_store_ops_t al_store_pg_ops;

//  The connection string as messages show it: host, port, dbname and user only (never a
//  password). Caller frees; NULL only when out of memory.
char *al_store_pg_dsn_display (const char *dsn);
//  1 when the connection string holds a password, 0 when not, -1 when it cannot be parsed
//  (error says so without quoting it: a bad string may hold a password).
int al_store_pg_dsn_has_password (const char *dsn, char *error, size_t error_size);

#ifdef __cplusplus
}
#endif

#endif
