/*  al_broker_checkpoint.c: signed checkpoints of the audit log, the check that the log
    still holds the broker's own head, and the incident file when it does not.

    The broker trusts only the head it wrote. It is the log's only writer (the flock on
    DATABASE.lock), so it keeps in memory the row count and head hash its own last
    commit left (own_rows, own_head). Before appending a batch, inside the write lock,
    the store re-reads the head (one indexed SELECT of the last row, which al_store_begin
    does anyway) and al_broker_head_is_ours compares it with ours; a checkpoint signs our
    head, never the file's, and only if the file still holds it
    (al_store_checkpoint_write_head). A mismatch means the file was changed under the
    running broker, e.g. a row rewritten and the chain recomputed so that verify alone
    passes. No row can be chained safely then: appending one would extend the forged
    chain with the broker's own rows, and a row the forger can rewrite proves nothing. So
    the broker writes a plain-text incident file beside the database
    (al_broker_incident_path) and an error to its log, answers nothing more, signs
    nothing more, and al_broker_run returns -1 (non-zero exit).

    Threading: the checkpoint writer is a second thread with its own read-only store
    handle; it signs and writes the checkpoint file when the reactor asks (mutex +
    condition variable), so its fsyncs never delay an Ack. al_broker_incident may run in
    either thread (it sets the atomic `tampered` flag and writes only its own file).
*/
#include "broker/al_broker_int.h"
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *
al_broker_incident_path (const al_config_t *config)
{
    assert (config);
    char *path = NULL;
    if (asprintf (&path, "%s.incident", al_config_database (config)) < 0)
        return NULL;
    return path;
}

//  The log was changed under the broker (see the comment at the top): say so where it cannot
//  be chained away, a plain-text file beside the database (appended, fsynced) and the
//  log, and stop. Called by the reactor or the checkpoint thread.
void
al_broker_incident (al_broker_t *self, const char *where, const char *what)
{
    atomic_store (&self->tampered, true);
    char *path = al_broker_incident_path (self->config);
    char stamp [40];
    al_store_format_time (al_broker_wall_ms (), stamp, sizeof stamp);
    char text [2048];
    int length = snprintf (text, sizeof text,
                           "%s airlock broker (pid %d): AUDIT LOG CHANGED UNDER THE BROKER, found %s: %s. "
                           "No row was chained onto the changed log, no checkpoint was signed for it, "
                           "nothing more was acknowledged; the broker stopped. The last checkpoint "
                           "vouches for the log as the broker wrote it: airlock audit verify "
                           "--checkpoint FILE names the first changed row.\n",
                           stamp, (int) getpid (), where, what);
    if (length < 0 || length >= (int) sizeof text)
        length = (int) strlen (text);
    zsys_error ("broker: AUDIT LOG CHANGED UNDER THE BROKER (found %s): %s; stopping; incident written to %s",
                where, what, path? path: "(no memory for the path)");
    int fd = path? open (path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600): -1;
    if (fd < 0 || write (fd, text, (size_t) length) != length || fsync (fd) != 0)
        zsys_error ("broker: %s: cannot write the incident: %s", path? path: "incident", strerror (errno));
    if (fd >= 0)
        close (fd);
    free (path);
}

//  Inside the batch's transaction: is the head the store just re-read the one our last
//  commit left? If not, the incident is recorded and the caller appends nothing.
bool
al_broker_head_is_ours (al_broker_t *self)
{
    uint8_t head [AL_STORE_HASH_SIZE];
    al_store_head_hash (self->store, head);
    uint64_t rows = al_store_row_count (self->store);
    if (rows == self->own_rows && sodium_memcmp (head, self->own_head, AL_STORE_HASH_SIZE) == 0)
        return true;
    char found [AL_STORE_HASH_SIZE * 2 + 1], own [AL_STORE_HASH_SIZE * 2 + 1], what [1024];
    al_broker_hex (head, AL_STORE_HASH_SIZE, found);
    al_broker_hex (self->own_head, AL_STORE_HASH_SIZE, own);
    snprintf (what, sizeof what, "%.600s: the log's head is row %llu with hash %s, but this broker's last "
              "commit left row %llu with hash %s", al_config_database (self->config), (unsigned long long) rows,
              found, (unsigned long long) self->own_rows, own);
    al_broker_incident (self, "before appending a batch", what);
    return false;
}

//  The checkpoint thread: signs the head the reactor committed, when asked, if the file
//  still holds it.
void *
al_broker_checkpoint_run (void *arg)
{
    al_broker_t *self = (al_broker_t *) arg;
    pthread_mutex_lock (&self->checkpoint_lock);
    while (true) {
        while (!self->checkpoint_requested && !self->checkpoint_stop)
            pthread_cond_wait (&self->checkpoint_wake, &self->checkpoint_lock);
        if (!self->checkpoint_requested)
            break;
        self->checkpoint_requested = false;
        uint64_t rows = self->checkpoint_want_rows;
        uint8_t head [AL_STORE_HASH_SIZE];
        memcpy (head, self->checkpoint_want_head, AL_STORE_HASH_SIZE);
        pthread_mutex_unlock (&self->checkpoint_lock);
        char error [1024] = "";
        double started = al_broker_mono_seconds ();
        al_store_status_t status = al_store_checkpoint_write_head (self->checkpoint_store, self->checkpoint_key,
                                                                   al_config_checkpoint_path (self->config),
                                                                   rows, head, error, sizeof error);
        if (status == AL_STORE_OK) {
            al_telemetry_observe (self->metric_checkpoint_seconds, al_broker_mono_seconds () - started);
            atomic_store (&self->checkpoint_written_rows, rows);
            al_telemetry_touch (self->metric_checkpoint_age);
        }
        if (status == AL_STORE_ERR_HEAD_MISMATCH)
            al_broker_incident (self, "before signing a checkpoint", error);
        else
        if (status != AL_STORE_OK)
            zsys_error ("broker: checkpoint: %s", error);
        pthread_mutex_lock (&self->checkpoint_lock);
    }
    pthread_mutex_unlock (&self->checkpoint_lock);
    return NULL;
}

//  Ask for a checkpoint when one is due (every N rows or S seconds; force: now).
void
al_broker_checkpoint (al_broker_t *self, bool force)
{
    uint64_t rows = self->own_rows;
    if (rows == self->checkpoint_rows || atomic_load (&self->tampered))
        return;
    uint64_t now = al_broker_mono_ms ();
    bool due = force
            || rows - self->checkpoint_rows >= al_config_checkpoint_every_events (self->config)
            || now - self->checkpoint_mono >= 1000ull * al_config_checkpoint_every_seconds (self->config);
    if (!due)
        return;
    pthread_mutex_lock (&self->checkpoint_lock);
    self->checkpoint_requested = true;
    self->checkpoint_want_rows = self->own_rows;
    memcpy (self->checkpoint_want_head, self->own_head, AL_STORE_HASH_SIZE);
    pthread_cond_signal (&self->checkpoint_wake);
    pthread_mutex_unlock (&self->checkpoint_lock);
    self->checkpoint_rows = rows;
    self->checkpoint_mono = now;
}
