/*  al_store_sqlite_checkpointer.h: the SQLite backend's WAL checkpointer thread.

    SQLite's default auto-checkpoint runs inside whichever COMMIT crosses 1,000 WAL pages,
    copying pages and fsyncing the database file on the writer's path, so one commit in a
    few hundred paid milliseconds (the broker's p99). A writable handle instead turns the
    auto-checkpoint over to a checkpointer thread with its own connection: the WAL hook
    (called after each commit with the WAL's size) wakes it once per
    AL_STORE_SQLITE_WAL_CHECKPOINT_PAGES of growth, and it runs a PASSIVE checkpoint (never
    blocks the writer; synchronous=FULL there too, so what it copies is fsynced; a 16-page
    cache, since it reads nothing for itself). Durability is unchanged: a commit is
    durable once its WAL frames are fsynced, which COMMIT still does. Should the WAL reach
    AL_STORE_SQLITE_WAL_INLINE_PAGES anyway (the thread starved under sustained writes,
    since a WAL is restarted only once wholly copied), the writer checkpoints inline as
    SQLite would, so the WAL stays bounded. Without a thread (no memory, no thread), the
    writer checkpoints inline past AL_STORE_SQLITE_WAL_CHECKPOINT_PAGES, as SQLite's
    default does.

    Threading: start and stop are called by the writer's thread; the hook runs in it.
*/
#ifndef AL_STORE_SQLITE_CHECKPOINTER_H_INCLUDED
#define AL_STORE_SQLITE_CHECKPOINTER_H_INCLUDED

#include <sqlite3.h>

#define AL_STORE_SQLITE_WAL_CHECKPOINT_PAGES 1000
#define AL_STORE_SQLITE_WAL_INLINE_PAGES 16000

typedef struct al_store_sqlite_checkpointer_t al_store_sqlite_checkpointer_t;

//  Installs the WAL hook on the writer connection and starts the thread; NULL when no
//  thread could start (the hook then checkpoints inline, see above). The hook replaces
//  SQLite's auto-checkpoint on that connection.
al_store_sqlite_checkpointer_t *al_store_sqlite_checkpointer_start (sqlite3 *writer);

//  Stops and joins the thread, closes its connection and leaves the writer checkpointing
//  inline. Safe with *self_p NULL.
void al_store_sqlite_checkpointer_stop (sqlite3 *writer, al_store_sqlite_checkpointer_t **self_p);

#endif
