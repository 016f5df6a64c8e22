/*  al_store_sqlite_checkpointer.c: the SQLite backend's WAL checkpointer thread (the policy
    is in al_store_sqlite_checkpointer.h).
*/
#include "store/al_store_sqlite_checkpointer.h"
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

struct al_store_sqlite_checkpointer_t {
    sqlite3 *db;                        // its own connection to the writer's file
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool requested;
    bool stop;
    int wal_pages_woken;                // WAL size when the thread was last woken (writer's thread)
};

static void *
s_run (void *arg)
{
    al_store_sqlite_checkpointer_t *self = (al_store_sqlite_checkpointer_t *) arg;
    pthread_mutex_lock (&self->lock);
    while (true) {
        while (!self->requested && !self->stop)
            pthread_cond_wait (&self->wake, &self->lock);
        if (self->stop)
            break;
        self->requested = false;
        pthread_mutex_unlock (&self->lock);
        //  A failure (busy, I/O) leaves the pages in the WAL: the next wake-up or the
        //  writer's inline checkpoint copies them.
        sqlite3_wal_checkpoint_v2 (self->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        pthread_mutex_lock (&self->lock);
    }
    pthread_mutex_unlock (&self->lock);
    return NULL;
}

//  After each commit of the writer, with the WAL's size in pages; arg is the checkpointer
//  or NULL (inline only).
static int
s_wal_hook (void *arg, sqlite3 *db, const char *name, int pages)
{
    al_store_sqlite_checkpointer_t *self = (al_store_sqlite_checkpointer_t *) arg;
    if (pages >= AL_STORE_SQLITE_WAL_INLINE_PAGES || !self) {
        if (pages >= AL_STORE_SQLITE_WAL_CHECKPOINT_PAGES)
            sqlite3_wal_checkpoint_v2 (db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        return SQLITE_OK;
    }
    //  Woken once per AL_STORE_SQLITE_WAL_CHECKPOINT_PAGES of growth (or again after the
    //  WAL restarted), not after every commit: each checkpoint fsyncs twice, and a WAL
    //  that keeps being written is never wholly copied.
    if (pages >= AL_STORE_SQLITE_WAL_CHECKPOINT_PAGES
    &&  (pages < self->wal_pages_woken || pages - self->wal_pages_woken >= AL_STORE_SQLITE_WAL_CHECKPOINT_PAGES)) {
        self->wal_pages_woken = pages;
        pthread_mutex_lock (&self->lock);
        self->requested = true;
        pthread_cond_signal (&self->wake);
        pthread_mutex_unlock (&self->lock);
    }
    return SQLITE_OK;
}

al_store_sqlite_checkpointer_t *
al_store_sqlite_checkpointer_start (sqlite3 *writer)
{
    sqlite3_wal_hook (writer, s_wal_hook, NULL);
    al_store_sqlite_checkpointer_t *self = (al_store_sqlite_checkpointer_t *) calloc (1, sizeof *self);
    if (!self)
        return NULL;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2 (sqlite3_db_filename (writer, "main"), &self->db, flags, NULL) != SQLITE_OK
    ||  sqlite3_exec (self->db, "PRAGMA synchronous = FULL; PRAGMA cache_size = 16", NULL, NULL, NULL) != SQLITE_OK) {
        sqlite3_close_v2 (self->db);
        free (self);
        return NULL;
    }
    sqlite3_busy_timeout (self->db, 1000);
    pthread_mutex_init (&self->lock, NULL);
    pthread_cond_init (&self->wake, NULL);
    if (pthread_create (&self->thread, NULL, s_run, self) != 0) {
        pthread_mutex_destroy (&self->lock);
        pthread_cond_destroy (&self->wake);
        sqlite3_close_v2 (self->db);
        free (self);
        return NULL;
    }
    sqlite3_wal_hook (writer, s_wal_hook, self);
    return self;
}

void
al_store_sqlite_checkpointer_stop (sqlite3 *writer, al_store_sqlite_checkpointer_t **self_p)
{
    al_store_sqlite_checkpointer_t *self = *self_p;
    if (!self)
        return;
    if (writer)
        sqlite3_wal_hook (writer, s_wal_hook, NULL);
    pthread_mutex_lock (&self->lock);
    self->stop = true;
    pthread_cond_signal (&self->wake);
    pthread_mutex_unlock (&self->lock);
    pthread_join (self->thread, NULL);
    pthread_mutex_destroy (&self->lock);
    pthread_cond_destroy (&self->wake);
    sqlite3_close_v2 (self->db);
    free (self);
    *self_p = NULL;
}
