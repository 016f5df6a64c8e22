/*  al_store_pg_int.h: the PostgreSQL backend's connection, for the copy tool in store/
    (al_store_pg_copy.c) that writes side tables in the backend's own transaction. Never
    included outside store/.
*/
#ifndef AL_STORE_PG_INT_H_INCLUDED
#define AL_STORE_PG_INT_H_INCLUDED

#include <libpq-fe.h>

//  The connection of a handle returned by al_store_pg_ops.open (borrowed).
PGconn *al_store_pg_connection (void *handle);

#endif
