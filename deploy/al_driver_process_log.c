/*  al_driver_process_log.c: the process driver's log pump.

    One thread per driver handle copies every instance's stdout and stderr (one pipe
    per instance, which al_child gives the instance as its 1 and 2) into the instance's
    log file, EVIDENCE_DIR/<id>.log, redacted of the secrets. A chunk's tail that could
    be the head of a secret waits for the next chunk, so a secret split across two reads
    is still redacted. A full disk loses log lines, never the instance.

    Threading: the driver's thread only adds streams and waits for one's end of file;
    the pump thread reads, writes and closes them at EOF; both under the pump's lock.
*/
#include "deploy/al_driver_process_int.h"
#include "base/al_clock.h"
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

//  Redact and write what is pending; keep a possible secret head unless final.
static void
s_stream_flush (al_process_stream_t *stream, const al_redact_t *redact, bool final)
{
    size_t keep = final ? 0 : al_redact_partial_suffix (redact, stream->pending, stream->pending_size);
    size_t size = stream->pending_size - keep;
    size_t out_size = 0;
    char *out = al_redact_text (redact, stream->pending, size, &out_size);
    for (size_t done = 0; out && done < out_size; ) {
        ssize_t wrote = write (stream->log_fd, out + done, out_size - done);
        if (wrote < 0 && errno == EINTR)
            continue;
        if (wrote <= 0)
            break;                  // a full disk loses log lines, never the instance
        done += (size_t) wrote;
    }
    free (out);
    memmove (stream->pending, stream->pending + size, keep);
    stream->pending_size = keep;
}

static void
s_stream_close (al_process_stream_t *stream, const al_redact_t *redact)
{
    if (stream->fd < 0)
        return;
    s_stream_flush (stream, redact, true);
    close (stream->fd);
    close (stream->log_fd);
    stream->fd = -1;
    stream->log_fd = -1;
}

//  Read what is there from one stream (non-blocking). Lock held.
static void
s_stream_read (al_process_stream_t *stream, const al_redact_t *redact)
{
    while (stream->fd >= 0) {
        size_t room = stream->capacity - stream->pending_size;
        if (room == 0) {
            s_stream_flush (stream, redact, false);
            room = stream->capacity - stream->pending_size;
            assert (room > 0);
        }
        ssize_t got = read (stream->fd, stream->pending + stream->pending_size, room);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0 && errno == EAGAIN) {
            s_stream_flush (stream, redact, false);
            return;
        }
        if (got <= 0) {
            s_stream_close (stream, redact);
            return;
        }
        stream->pending_size += (size_t) got;
    }
}

static void *
s_pump_run (void *arg)
{
    al_process_pump_t *self = arg;
    struct pollfd *fds = NULL;
    size_t fds_capacity = 0;
    pthread_mutex_lock (&self->lock);
    while (true) {
        if (fds_capacity < self->count + 1) {
            struct pollfd *grown = realloc (fds, (self->count + 1) * sizeof (struct pollfd));
            if (grown) {
                fds = grown;
                fds_capacity = self->count + 1;
            }
        }
        nfds_t count = 0;
        if (fds) {
            fds [count++] = (struct pollfd) { .fd = self->wake [0], .events = POLLIN };
            for (size_t i = 0; i < self->count && count < fds_capacity; i++)
                fds [count++] = (struct pollfd) { .fd = self->streams [i].fd, .events = POLLIN };
        }
        bool stopping = self->stopping;
        pthread_mutex_unlock (&self->lock);
        if (count > 0)
            poll (fds, count, stopping ? 0 : 1000);
        else
            al_clock_sleep_ms (10);
        char drain [64];
        while (read (self->wake [0], drain, sizeof (drain)) > 0)
            ;
        pthread_mutex_lock (&self->lock);
        for (size_t i = 0; i < self->count; i++)
            if (self->streams [i].fd >= 0) {
                s_stream_read (&self->streams [i], self->redact);
                if (self->streams [i].fd < 0)
                    pthread_cond_broadcast (&self->changed);
            }
        if (stopping)
            break;
    }
    for (size_t i = 0; i < self->count; i++)
        s_stream_close (&self->streams [i], self->redact);
    pthread_cond_broadcast (&self->changed);
    pthread_mutex_unlock (&self->lock);
    free (fds);
    return NULL;
}

static void
s_pump_wake (al_process_pump_t *self)
{
    char byte = 1;
    (void) !write (self->wake [1], &byte, 1);
}

int
al_process_pump_start (al_process_pump_t *self, const al_redact_t *redact, char *error, size_t error_size)
{
    self->redact = redact;
    self->wake [0] = self->wake [1] = -1;
    pthread_mutex_init (&self->lock, NULL);
    pthread_cond_init (&self->changed, NULL);
    self->initialized = true;
    if (pipe2 (self->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        snprintf (error, error_size, "pipe: %s", strerror (errno));
        return -1;
    }
    if (pthread_create (&self->thread, NULL, s_pump_run, self) != 0) {
        snprintf (error, error_size, "cannot start the log thread");
        return -1;
    }
    self->started = true;
    return 0;
}

//  Stop the thread after a last drain; close every stream. Safe on a pump never
//  started (open failed before or during al_process_pump_start).
void
al_process_pump_stop (al_process_pump_t *self)
{
    if (!self->initialized)
        return;
    if (self->started) {
        pthread_mutex_lock (&self->lock);
        self->stopping = true;
        pthread_mutex_unlock (&self->lock);
        s_pump_wake (self);
        pthread_join (self->thread, NULL);
        self->started = false;
    }
    for (size_t i = 0; i < self->count; i++) {
        s_stream_close (&self->streams [i], self->redact);
        free (self->streams [i].pending);
    }
    free (self->streams);
    self->streams = NULL;
    self->count = 0;
    for (int end = 0; end < 2; end++)
        if (self->wake [end] >= 0)
            close (self->wake [end]);
    pthread_mutex_destroy (&self->lock);
    pthread_cond_destroy (&self->changed);
    self->initialized = false;
}

//  Hand a pipe's read end and a log descriptor to the pump (both owned by it from now,
//  also on failure).
int
al_process_pump_add (al_process_pump_t *self, const char *id, int fd, int log_fd)
{
    size_t capacity = 4096 + al_redact_longest (self->redact);
    char *pending = malloc (capacity);
    pthread_mutex_lock (&self->lock);
    al_process_stream_t *grown = pending ? realloc (self->streams, (self->count + 1) * sizeof (al_process_stream_t)) : NULL;
    if (grown) {
        self->streams = grown;
        al_process_stream_t *stream = &self->streams [self->count++];
        memset (stream, 0, sizeof (*stream));
        snprintf (stream->id, sizeof (stream->id), "%s", id);
        stream->fd = fd;
        stream->log_fd = log_fd;
        stream->pending = pending;
        stream->capacity = capacity;
        fcntl (fd, F_SETFL, O_NONBLOCK);
    }
    pthread_mutex_unlock (&self->lock);
    if (!grown) {
        free (pending);
        close (fd);
        close (log_fd);
        return -1;
    }
    s_pump_wake (self);
    return 0;
}

//  Wait up to timeout_ms until the stream of id reached EOF (its output is all in
//  the log).
void
al_process_pump_wait_eof (al_process_pump_t *self, const char *id, int timeout_ms)
{
    struct timespec deadline;
    clock_gettime (CLOCK_REALTIME, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long) (timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock (&self->lock);
    while (true) {
        bool open = false;
        for (size_t i = 0; i < self->count; i++)
            if (strcmp (self->streams [i].id, id) == 0)
                open = self->streams [i].fd >= 0;
        if (!open || pthread_cond_timedwait (&self->changed, &self->lock, &deadline) != 0)
            break;
    }
    pthread_mutex_unlock (&self->lock);
}
