/*  al_driver_process.c: the "process" driver, airlock's embedded default.

    Each instance is a child process of this handle: the configured argv template,
    expanded for the instance, run with PORT (and AIRLOCK_PORT, AIRLOCK_VERSION, ...)
    in its environment, in its own process group, with stdout and stderr on a pipe that
    a log thread (the pump, one per handle) copies, redacted of the secrets, to
    EVIDENCE_DIR/<id>.log. A port of 0 in the spec means "pick one": the driver binds
    port 0 on the host to learn a free port and passes it explicitly (a small race with
    other programs remains; the instance then fails to listen and its start fails with
    its log tail).

    start_instance returns once the instance answers its liveness path, or fails when
    the child exits first (crash at start: its exit code and the redacted tail of its
    log are in the error) or the start timeout passes (the group is killed). Children
    are reaped with waitpid on their own pid only, never -1, so the host's other
    children are left alone; every call first reaps instances that exited.

    There is no load balancer in the embedded default: switch_active records which set
    receives traffic, a label that list_instances reports (active) and the monitor and
    tests read. Instances cannot outlive the handle: close stops every running one.

    The instance registry (config state_file, optional) covers the owner that dies
    without close (SIGKILL, a crash): its instances are orphaned, still listening, their
    log pipe gone. The registry is rewritten atomically (temp file, fsync, rename, fsync
    of the directory) whenever an instance starts (between the fork and the execve: the
    child waits for it, al_child_spawn_recorded, so no window leaves a program running
    unrecorded; the open also reads a rewrite killed before its rename) or stops, with each running
    instance's pid, process group and start time (field 22 of /proc/PID/stat). The next
    open stops every recorded instance whose pid still runs with the same start time,
    is not a zombie and belongs to our user: SIGTERM to its group, polling /proc up to
    stop_timeout_ms, then SIGKILL. The start time is what makes this safe: a pid reused
    by another program has another start time and is left alone. A group is signalled
    only while its leader is verified or while members still hold its id (a pgid in
    use cannot be handed out again). A registry that does not parse, or a leftover that
    survives SIGKILL, fails the open (we cannot know, or cannot stop, what runs) and
    the file is left as it was.

    Beside the registry, file_sd.json is rewritten the same way and at the same moments:
    the running instances in Prometheus' file_sd format, one target group per instance
    ("HOST:PORT", labels service, environment, version, instance_id; [] when none runs),
    so a Prometheus scrapes exactly what runs (docs/monitor.md, the Prometheus provider).

    Threading: one user at a time (al_driver.h); the pump thread touches only the
    streams, under their lock.
*/
#include "deploy/al_driver_int.h"
#include <assert.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_LOG_TAIL 600
#define S_START_PROBE_TIMEOUT_MS 1000
#define S_REGISTRY_FORMAT 1
#define S_REGISTRY_MAX_SIZE (16u * 1024 * 1024)
#define S_KILL_WAIT_MS 5000         // after SIGKILL, how long a leftover may take to go
#define S_POLL_MS 20

//  --------------------------------------------------------------------------
//  The log pump: one thread per handle copies every instance's stdout and stderr
//  (one pipe per instance) into its log file, redacted. A chunk's tail that could be
//  the head of a secret waits for the next chunk, so a secret split across two reads
//  is still redacted. The main thread only adds streams; the pump closes them at EOF.

typedef struct {
    char id [AL_DRIVER_ID_SIZE];
    int fd;                         // read end of the instance's pipe, -1 at EOF
    int log_fd;
    char *pending;                  // bytes not yet written (a possible secret head)
    size_t pending_size;
    size_t capacity;
} s_stream_t;

typedef struct {
    pthread_t thread;
    bool initialized;               // lock, cond and wake pipe exist
    bool started;
    pthread_mutex_t lock;
    pthread_cond_t changed;         // a stream reached EOF
    int wake [2];                   // the main thread writes a byte here to wake the pump
    bool stopping;
    s_stream_t *streams;
    size_t count;
    const al_redact_t *redact;
} s_pump_t;

//  Redact and write what is pending; keep a possible secret head unless final.
static void
s_stream_flush (s_stream_t *stream, const al_redact_t *redact, bool final)
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
s_stream_close (s_stream_t *stream, const al_redact_t *redact)
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
s_stream_read (s_stream_t *stream, const al_redact_t *redact)
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
    s_pump_t *self = arg;
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
            al_sleep_ms (10);
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
s_pump_wake (s_pump_t *self)
{
    char byte = 1;
    (void) !write (self->wake [1], &byte, 1);
}

static int
s_pump_start (s_pump_t *self, const al_redact_t *redact, char *error, size_t error_size)
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
//  started (open failed before or during s_pump_start).
static void
s_pump_stop (s_pump_t *self)
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
static int
s_pump_add (s_pump_t *self, const char *id, int fd, int log_fd)
{
    size_t capacity = 4096 + al_redact_longest (self->redact);
    char *pending = malloc (capacity);
    pthread_mutex_lock (&self->lock);
    s_stream_t *grown = pending ? realloc (self->streams, (self->count + 1) * sizeof (s_stream_t)) : NULL;
    if (grown) {
        self->streams = grown;
        s_stream_t *stream = &self->streams [self->count++];
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
static void
s_pump_wait_eof (s_pump_t *self, const char *id, int timeout_ms)
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

typedef struct {
    al_driver_instance_t info;
    char *log_path;
    char *environment;              // the spec's env ("" when none): a file_sd label
    unsigned long long start_time;  // of info.pid, clock ticks since boot (/proc/PID/stat)
} s_instance_t;

typedef struct {
    char **command;
    char **env;                     // "NAME=template"
    char *host;
    char *liveness_path;
    char *readiness_path;
    char *evidence_dir;
    int start_timeout_ms;
    int stop_timeout_ms;
    int probe_timeout_ms;
    const al_driver_secrets_t *secrets;
    s_instance_t *instances;
    size_t count;
    unsigned sequence;
    char active [AL_DRIVER_SET_SIZE];
    s_pump_t pump;
    char *state_file;               // the instance registry, or NULL
    char *state_dir;                // its directory (fsynced after each rename)
    char *file_sd;                  // STATE_DIR/file_sd.json, rewritten with the registry
    bool registry_ready;            // leftovers handled: we own the file from now
    size_t stale_stopped;
} s_process_t;

//  --------------------------------------------------------------------------
//  The instance registry (see the top of the file).

//  What /proc/PID/stat says of pid. False if it does not exist (or cannot be parsed).
typedef struct {
    char state;                     // 'R', 'S', 'Z', ...
    pid_t pgid;
    unsigned long long start_time;  // field 22, clock ticks since boot
} s_proc_stat_t;

static bool
s_proc_stat (pid_t pid, s_proc_stat_t *stat_p)
{
    char path [64], line [1024];
    snprintf (path, sizeof (path), "/proc/%d/stat", (int) pid);
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t got;
    do
        got = read (fd, line, sizeof (line) - 1);
    while (got < 0 && errno == EINTR);
    close (fd);
    if (got <= 0)
        return false;
    line [got] = 0;
    //  The command name (field 2) may hold spaces and parentheses: fields restart after
    //  the last ')'.
    const char *rest = strrchr (line, ')');
    int pgid;
    if (!rest || sscanf (rest + 1, " %c %*d %d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d"
                                   " %*d %*d %*d %*d %llu",
                         &stat_p->state, &pgid, &stat_p->start_time) != 3)
        return false;
    stat_p->pgid = (pid_t) pgid;
    return true;
}

static bool
s_proc_gone (char state)
{
    return state == 'Z' || state == 'X' || state == 'x';
}

//  Is pid the process the registry recorded: same start time, not a zombie, our user?
static bool
s_proc_matches (pid_t pid, unsigned long long start_time, s_proc_stat_t *stat_p)
{
    char path [64];
    struct stat owner;
    snprintf (path, sizeof (path), "/proc/%d", (int) pid);
    return s_proc_stat (pid, stat_p) && stat_p->start_time == start_time && !s_proc_gone (stat_p->state)
        && stat (path, &owner) == 0 && owner.st_uid == geteuid ();
}

//  Does any live (non-zombie) process belong to group pgid?
static bool
s_group_alive (pid_t pgid)
{
    DIR *proc = opendir ("/proc");
    if (!proc)
        return false;
    bool alive = false;
    struct dirent *entry;
    while (!alive && (entry = readdir (proc)) != NULL) {
        if (!isdigit ((unsigned char) entry->d_name [0]))
            continue;
        s_proc_stat_t stat;
        alive = s_proc_stat ((pid_t) atoi (entry->d_name), &stat) && stat.pgid == pgid
             && !s_proc_gone (stat.state);
    }
    closedir (proc);
    return alive;
}

//  One leftover named by the registry.
typedef struct {
    char id [AL_DRIVER_ID_SIZE];
    pid_t pid;
    pid_t pgid;
    unsigned long long start_time;
    bool target;                    // verified alive: we stop it
    bool group;                     // signal its group (the leader is still in it)
} s_leftover_t;

//  Is the leftover still there? Its leader verified, or its group still has members
//  (only then is the group id still reserved, so signalling it reaches no stranger).
static bool
s_leftover_alive (const s_leftover_t *leftover)
{
    s_proc_stat_t stat;
    if (s_proc_matches (leftover->pid, leftover->start_time, &stat))
        return true;
    return leftover->group && s_group_alive (leftover->pgid);
}

static void
s_leftover_signal (const s_leftover_t *leftover, int signal_number)
{
    kill (leftover->group ? -leftover->pgid : leftover->pid, signal_number);
}

//  Wait until no target is alive or deadline_ms (monotonic) passes. True when all gone.
static bool
s_leftovers_wait (s_leftover_t *leftovers, size_t count, double deadline_ms)
{
    while (true) {
        bool any = false;
        for (size_t i = 0; i < count && !any; i++)
            any = leftovers [i].target && s_leftover_alive (&leftovers [i]);
        if (!any)
            return true;
        if (al_now_ms () >= deadline_ms)
            return false;
        al_sleep_ms (S_POLL_MS);
    }
}

//  A member of one registry entry, checked: an integer in [min, max].
static bool
s_json_int (json_t *object, const char *key, long long min, long long max, long long *value_p,
            const char *file, size_t index, char *error, size_t error_size)
{
    json_t *value = json_object_get (object, key);
    if (!json_is_integer (value) || json_integer_value (value) < min || json_integer_value (value) > max) {
        snprintf (error, error_size, "%s: instances[%zu].%s: not an integer in %lld..%lld",
                  file, index, key, min, max);
        return false;
    }
    *value_p = json_integer_value (value);
    return true;
}

//  Read and check the registry into leftovers (caller frees). A missing or empty file
//  holds none. Returns 0, or -1 with "file[:line]: what is wrong".
static int
s_registry_read (const char *file, s_leftover_t **leftovers_p, size_t *count_p,
                 char *error, size_t error_size)
{
    *leftovers_p = NULL;
    *count_p = 0;
    int rc = -1;
    char *text = NULL;
    json_t *root = NULL;
    int fd = open (file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno == ENOENT)
        return 0;
    struct stat info;
    if (fd < 0 || fstat (fd, &info) != 0) {
        snprintf (error, error_size, "%s: %s", file, strerror (errno));
        goto cleanup;
    }
    //  The registry says which processes to kill: only our own file may say so.
    if (!S_ISREG (info.st_mode) || info.st_uid != geteuid () || (info.st_mode & 022)) {
        snprintf (error, error_size, "%s: not a regular file of ours that only we can write "
                  "(owner %u, mode %03o); refusing to act on it",
                  file, (unsigned) info.st_uid, (unsigned) (info.st_mode & 0777));
        goto cleanup;
    }
    if ((unsigned long long) info.st_size > S_REGISTRY_MAX_SIZE) {
        snprintf (error, error_size, "%s: %lld bytes, larger than a registry can be", file,
                  (long long) info.st_size);
        goto cleanup;
    }
    size_t size = 0;
    text = malloc ((size_t) info.st_size + 1);
    while (text && size < (size_t) info.st_size) {
        ssize_t got = read (fd, text + size, (size_t) info.st_size - size);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        size += (size_t) got;
    }
    if (!text || size != (size_t) info.st_size) {
        snprintf (error, error_size, "%s: cannot read: %s", file, text ? strerror (errno) : "out of memory");
        goto cleanup;
    }
    bool blank = true;
    for (size_t i = 0; i < size && blank; i++)
        blank = isspace ((unsigned char) text [i]);
    if (blank) {
        rc = 0;
        goto cleanup;
    }
    json_error_t parse_error;
    root = json_loadb (text, size, JSON_REJECT_DUPLICATES, &parse_error);
    if (!root) {
        snprintf (error, error_size, "%s:%d: %s", file, parse_error.line, parse_error.text);
        goto cleanup;
    }
    json_t *instances = json_object_get (root, "instances");
    json_t *format = json_object_get (root, "format");
    if (!json_is_object (root) || !json_is_integer (format)
    ||  json_integer_value (format) != S_REGISTRY_FORMAT || !json_is_array (instances)) {
        snprintf (error, error_size, "%s: not an instance registry (an object with "
                  "\"format\": %d and an \"instances\" array)", file, S_REGISTRY_FORMAT);
        goto cleanup;
    }
    size_t count = json_array_size (instances);
    *leftovers_p = calloc (count ? count : 1, sizeof (s_leftover_t));
    if (!*leftovers_p) {
        snprintf (error, error_size, "%s: out of memory", file);
        goto cleanup;
    }
    for (size_t i = 0; i < count; i++) {
        json_t *entry = json_array_get (instances, i);
        json_t *id = json_object_get (entry, "id");
        long long pid, pgid, start_time;
        if (!json_is_object (entry) || !json_is_string (id)) {
            snprintf (error, error_size, "%s: instances[%zu]: not an object with a string id", file, i);
            goto cleanup;
        }
        //  pid 1 and group 0 or 1 would signal init or every process we may signal.
        if (!s_json_int (entry, "pid", 2, INT_MAX, &pid, file, i, error, error_size)
        ||  !s_json_int (entry, "pgid", 2, INT_MAX, &pgid, file, i, error, error_size)
        ||  !s_json_int (entry, "start_time", 0, LLONG_MAX, &start_time, file, i, error, error_size))
            goto cleanup;
        s_leftover_t *leftover = &(*leftovers_p) [i];
        snprintf (leftover->id, sizeof (leftover->id), "%s", json_string_value (id));
        leftover->pid = (pid_t) pid;
        leftover->pgid = (pid_t) pgid;
        leftover->start_time = (unsigned long long) start_time;
    }
    *count_p = count;
    rc = 0;

cleanup:
    if (rc != 0) {
        free (*leftovers_p);
        *leftovers_p = NULL;
    }
    json_decref (root);
    free (text);
    if (fd >= 0)
        close (fd);
    return rc;
}

static json_t *
s_registry_entry (const al_driver_instance_t *info, unsigned long long start_time)
{
    return json_pack ("{s:s, s:s, s:s, s:s, s:i, s:I, s:I, s:I, s:i}",
                      "id", info->id, "service", info->service, "version", info->version,
                      "set", info->set, "port", info->port, "pid", (json_int_t) info->pid,
                      "pgid", (json_int_t) info->pid, "start_time", (json_int_t) start_time,
                      "instance", info->instance);
}

//  One target group of the Prometheus file_sd file: the instance's address and the
//  labels its series get, which the provider's query templates select on.
static json_t *
s_file_sd_entry (const s_process_t *self, const s_instance_t *instance)
{
    char target [AL_DRIVER_ENDPOINT_SIZE];
    snprintf (target, sizeof (target), "%s:%d", self->host, instance->info.port);
    return json_pack ("{s:[s], s:{s:s, s:s, s:s, s:s}}", "targets", target, "labels",
                      "service", instance->info.service, "environment", instance->environment,
                      "version", instance->info.version, "instance_id", instance->info.id);
}

//  Write text (plus a newline) to path atomically: a temporary file beside it, fsync,
//  rename, fsync of the directory. A crash leaves the old file or the new one, never
//  half. Returns 0, or -1 with error.
static int
s_write_atomic (s_process_t *self, const char *path, const char *text, bool sync_dir, char *error, size_t error_size)
{
    int rc = -1;
    char *temp = NULL;
    int fd = -1;
    if (asprintf (&temp, "%s.XXXXXX", path) < 0) {
        temp = NULL;
        snprintf (error, error_size, "%s: out of memory", path);
        goto cleanup;
    }
    fd = mkostemp (temp, O_CLOEXEC);
    if (fd < 0) {
        snprintf (error, error_size, "%s: %s", temp, strerror (errno));
        free (temp);
        temp = NULL;
        goto cleanup;
    }
    size_t size = strlen (text), done = 0;
    while (done < size) {
        ssize_t wrote = write (fd, text + done, size - done);
        if (wrote < 0 && errno == EINTR)
            continue;
        if (wrote <= 0)
            break;
        done += (size_t) wrote;
    }
    if (done != size || write (fd, "\n", 1) != 1 || fsync (fd) != 0) {
        snprintf (error, error_size, "%s: cannot write: %s", temp, strerror (errno));
        goto cleanup;
    }
    int closed = close (fd);
    fd = -1;
    if (closed != 0 || rename (temp, path) != 0) {
        snprintf (error, error_size, "%s: cannot replace: %s", path, strerror (errno));
        goto cleanup;
    }
    free (temp);
    temp = NULL;
    //  The rename is durable only once the directory is (sync_dir false: the caller
    //  syncs it by a second write soon; the rename is visible to the next owner now).
    if (sync_dir) {
        int dir_fd = open (self->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd < 0 || fsync (dir_fd) != 0) {
            snprintf (error, error_size, "%s: cannot sync: %s", self->state_dir, strerror (errno));
            if (dir_fd >= 0)
                close (dir_fd);
            goto cleanup;
        }
        close (dir_fd);
    }
    rc = 0;

cleanup:
    if (fd >= 0)
        close (fd);
    if (temp) {
        unlink (temp);
        free (temp);
    }
    return rc;
}

//  Rewrite the registry, then the file_sd file beside it: every running instance,
//  plus starting (MAY be NULL), one that was just spawned. Each file is replaced
//  atomically. Returns 0, or -1 with error.
static int
s_registry_write_files (s_process_t *self, const s_instance_t *starting, bool registry_only,
                        char *error, size_t error_size)
{
    if (!self->state_file)
        return 0;
    assert (self->registry_ready);
    int rc = -1;
    char *text = NULL;
    char *targets_text = NULL;
    json_t *instances = json_array ();
    json_t *targets = json_array ();
    json_t *root = json_pack ("{s:i, s:s, s:I, s:o}", "format", S_REGISTRY_FORMAT, "driver", "process",
                              "owner_pid", (json_int_t) getpid (), "instances", instances);
    bool built = root != NULL && targets != NULL;
    for (size_t i = 0; built && i < self->count; i++)
        if (self->instances [i].info.running)
            built = json_array_append_new (instances, s_registry_entry (&self->instances [i].info,
                                                                         self->instances [i].start_time)) == 0
                 && json_array_append_new (targets, s_file_sd_entry (self, &self->instances [i])) == 0;
    if (built && starting)
        built = json_array_append_new (instances, s_registry_entry (&starting->info, starting->start_time)) == 0
             && json_array_append_new (targets, s_file_sd_entry (self, starting)) == 0;
    text = built ? json_dumps (root, JSON_INDENT (2)) : NULL;
    targets_text = built ? json_dumps (targets, JSON_INDENT (2)) : NULL;
    if (!text || !targets_text) {
        snprintf (error, error_size, "%s: out of memory", self->state_file);
        goto cleanup;
    }
    if (s_write_atomic (self, self->state_file, text, !registry_only, error, error_size) != 0
    ||  (!registry_only && s_write_atomic (self, self->file_sd, targets_text, true, error, error_size) != 0))
        goto cleanup;
    rc = 0;

cleanup:
    free (text);
    free (targets_text);
    json_decref (root);
    json_decref (targets);
    return rc;
}

static int
s_registry_write (s_process_t *self, const s_instance_t *starting, char *error, size_t error_size)
{
    return s_registry_write_files (self, starting, false, error, error_size);
}

//  The spawn's record callback (al_child_spawn_recorded): the child exists, its program
//  does not run yet; write the registry with it, or refuse (the child then exits).
typedef struct {
    s_process_t *self;
    s_instance_t *starting;
} s_spawn_record_t;

static int
s_record_spawned (pid_t pid, void *arg, char *error, size_t error_size)
{
    s_spawn_record_t *record = (s_spawn_record_t *) arg;
    //  Our own unreaped child: its /proc entry exists until we wait for it.
    s_proc_stat_t stat;
    if (!s_proc_stat (pid, &stat)) {
        snprintf (error, error_size, "not started: cannot read /proc/%d/stat", (int) pid);
        return -1;
    }
    record->starting->info.pid = pid;
    record->starting->start_time = stat.start_time;
    char why [400];
    //  Only what the next owner needs (the registry renamed into place): the child waits
    //  for it. The directory's fsync and file_sd follow once it runs (s_process_start_instance).
    if (s_registry_write_files (record->self, record->starting, true, why, sizeof (why)) != 0) {
        snprintf (error, error_size, "not started: registry %s", why);
        return -1;
    }
    return 0;
}

//  An owner killed while rewriting the registry (between the spawn's write of the
//  temporary file and its rename: the fsync takes milliseconds) leaves that temporary
//  file, which alone names the instance it just spawned (found by the chaos harness,
//  docs/chaos.md). Add what every complete one names to leftovers and unlink them all
//  (a half-written one parses as nothing: nothing to add). Never fails: a temporary
//  that cannot be read adds nothing, as before.
static void
s_registry_temporaries (s_process_t *self, s_leftover_t **leftovers_p, size_t *count_p)
{
    const char *base = strrchr (self->state_file, '/');
    base = base ? base + 1 : self->state_file;
    size_t base_length = strlen (base);
    DIR *dir = opendir (self->state_dir);
    if (!dir)
        return;
    struct dirent *entry;
    while ((entry = readdir (dir)) != NULL) {
        //  s_write_atomic's names: "<registry>.XXXXXX" (mkostemp's six characters).
        if (strncmp (entry->d_name, base, base_length) != 0 || entry->d_name [base_length] != '.'
        ||  strlen (entry->d_name) != base_length + 7)
            continue;
        char path [PATH_MAX], ignored [512];
        if (snprintf (path, sizeof (path), "%s/%s", self->state_dir, entry->d_name) >= (int) sizeof (path))
            continue;
        s_leftover_t *more = NULL;
        size_t more_count = 0;
        if (s_registry_read (path, &more, &more_count, ignored, sizeof (ignored)) == 0 && more_count > 0) {
            s_leftover_t *all = realloc (*leftovers_p, (*count_p + more_count) * sizeof (s_leftover_t));
            if (all) {
                memcpy (all + *count_p, more, more_count * sizeof (s_leftover_t));
                *leftovers_p = all;
                *count_p += more_count;
            }
        }
        free (more);
        unlink (path);
    }
    closedir (dir);
}

//  At open: stop what the registry of a dead owner names (and its unrenamed rewrites),
//  then take the file over (rewrite it empty). Returns 0, or -1 with error (the file is
//  then left untouched).
static int
s_registry_recover (s_process_t *self, char *error, size_t error_size)
{
    s_leftover_t *leftovers;
    size_t count;
    if (s_registry_read (self->state_file, &leftovers, &count, error, error_size) != 0)
        return -1;
    s_registry_temporaries (self, &leftovers, &count);
    size_t targets = 0;
    for (size_t i = 0; i < count; i++) {
        s_leftover_t *leftover = &leftovers [i];
        s_proc_stat_t stat;
        //  Anything else (gone, a zombie, a reused pid, another user's) is not ours.
        if (!s_proc_matches (leftover->pid, leftover->start_time, &stat))
            continue;
        leftover->target = true;
        leftover->group = stat.pgid == leftover->pgid;
        targets++;
        s_leftover_signal (leftover, SIGTERM);
    }
    int rc = 0;
    if (targets > 0
    &&  !s_leftovers_wait (leftovers, count, al_now_ms () + self->stop_timeout_ms)) {
        for (size_t i = 0; i < count; i++)
            if (leftovers [i].target && s_leftover_alive (&leftovers [i]))
                s_leftover_signal (&leftovers [i], SIGKILL);
        if (!s_leftovers_wait (leftovers, count, al_now_ms () + S_KILL_WAIT_MS)) {
            for (size_t i = 0; i < count && rc == 0; i++)
                if (leftovers [i].target && s_leftover_alive (&leftovers [i])) {
                    snprintf (error, error_size, "%s: leftover instance %s (pid %d) survived SIGKILL",
                              self->state_file, leftovers [i].id, (int) leftovers [i].pid);
                    rc = -1;
                }
        }
    }
    free (leftovers);
    if (rc != 0)
        return -1;
    self->stale_stopped = targets;
    self->registry_ready = true;
    return s_registry_write (self, NULL, error, error_size);
}

size_t
al_driver_process_stale_stopped (void *handle)
{
    s_process_t *self = handle;
    assert (self);
    return self->stale_stopped;
}

static void
s_process_close (void *handle)
{
    s_process_t *self = handle;
    if (!self)
        return;
    for (size_t i = 0; i < self->count; i++) {
        s_instance_t *instance = &self->instances [i];
        if (instance->info.running)
            al_child_stop (instance->info.pid, self->stop_timeout_ms, NULL, NULL);
        instance->info.running = false;
        free (instance->log_path);
        free (instance->environment);
    }
    //  Nothing runs any more. Only once we own the registry: an open that failed on it
    //  leaves it as it was. A failed write here is harmless: the pids it still names
    //  are gone, and the start times keep their reuse from being mistaken for ours.
    char ignored [256];
    if (self->registry_ready)
        s_registry_write (self, NULL, ignored, sizeof (ignored));
    s_pump_stop (&self->pump);
    free (self->instances);
    al_strv_free (&self->command);
    al_strv_free (&self->env);
    free (self->host);
    free (self->liveness_path);
    free (self->readiness_path);
    free (self->evidence_dir);
    free (self->state_file);
    free (self->state_dir);
    free (self->file_sd);
    free (self);
}

static void *
s_process_open (const al_driver_config_t *config, const al_driver_secrets_t *secrets,
                char *error, size_t error_size)
{
    assert (config && secrets);
    if (!config->evidence_dir || !*config->evidence_dir) {
        snprintf (error, error_size, "evidence_dir: required");
        return NULL;
    }
    if (!config->command || !config->command [0]) {
        snprintf (error, error_size, "command: required (the argv template of an instance)");
        return NULL;
    }
    char where [64];
    if (!al_template_check_argv (config->command, "command", error, error_size))
        return NULL;
    for (size_t i = 0; config->env && config->env [i]; i++) {
        snprintf (where, sizeof (where), "env[%zu]", i);
        const char *equal = strchr (config->env [i], '=');
        char name [128];
        snprintf (name, sizeof (name), "%.*s", equal ? (int) (equal - config->env [i]) : 0,
                  config->env [i]);
        if (!equal || !al_check_name (name, 127, where, error, error_size)
        ||  !al_template_check (equal + 1, where, error, error_size)) {
            if (!equal)
                snprintf (error, error_size, "%s: not NAME=value", where);
            return NULL;
        }
    }
    s_process_t *self = calloc (1, sizeof (s_process_t));
    if (!self) {
        snprintf (error, error_size, "out of memory");
        return NULL;
    }
    self->secrets = secrets;
    self->command = al_strv_dup (config->command);
    self->env = config->env ? al_strv_dup (config->env) : calloc (1, sizeof (char *));
    self->host = strdup (config->host ? config->host : AL_DRIVER_DEFAULT_HOST);
    self->liveness_path = strdup (config->liveness_path ? config->liveness_path
                                                       : AL_DRIVER_DEFAULT_LIVENESS_PATH);
    self->readiness_path = strdup (config->readiness_path ? config->readiness_path
                                                         : AL_DRIVER_DEFAULT_READINESS_PATH);
    self->evidence_dir = strdup (config->evidence_dir);
    self->start_timeout_ms = config->start_timeout_ms > 0 ? config->start_timeout_ms
                                                          : AL_DRIVER_DEFAULT_START_TIMEOUT_MS;
    self->stop_timeout_ms = config->stop_timeout_ms > 0 ? config->stop_timeout_ms
                                                        : AL_DRIVER_DEFAULT_STOP_TIMEOUT_MS;
    self->probe_timeout_ms = config->probe_timeout_ms > 0 ? config->probe_timeout_ms
                                                          : AL_PROBE_DEFAULT_TIMEOUT_MS;
    snprintf (self->active, sizeof (self->active), "%s", AL_DRIVER_DEFAULT_SET);
    if (config->state_file) {
        self->state_file = strdup (config->state_file);
        char *copy = strdup (config->state_file);
        self->state_dir = copy ? strdup (dirname (copy)) : NULL;
        free (copy);
        if (self->state_dir && asprintf (&self->file_sd, "%s/file_sd.json", self->state_dir) < 0)
            self->file_sd = NULL;
    }
    if (!self->command || !self->env || !self->host || !self->liveness_path
    ||  !self->readiness_path || !self->evidence_dir
    ||  (config->state_file && (!self->state_file || !self->state_dir || !self->file_sd))) {
        snprintf (error, error_size, "out of memory");
        goto cleanup;
    }
    if (self->state_file && (!*self->state_file || self->state_file [strlen (self->state_file) - 1] == '/')) {
        snprintf (error, error_size, "state_file: \"%s\" is not a file name", self->state_file);
        goto cleanup;
    }
    char probe_error [128];
    if (al_free_port (self->host, probe_error, sizeof (probe_error)) < 0) {
        snprintf (error, error_size, "host: %s", probe_error);
        goto cleanup;
    }
    if (al_mkdir_p (self->evidence_dir, error, error_size) != 0
    ||  (self->state_file && al_mkdir_p (self->state_dir, error, error_size) != 0)
    ||  (self->state_file && s_registry_recover (self, error, error_size) != 0)
    ||  s_pump_start (&self->pump, secrets->redact, error, error_size) != 0)
        goto cleanup;
    return self;

cleanup:
    s_process_close (self);
    return NULL;
}

//  Mark instances that exited since the last call, reaping them. Returns how many.
static size_t
s_reap (s_process_t *self)
{
    size_t exited = 0;
    for (size_t i = 0; i < self->count; i++) {
        al_driver_instance_t *info = &self->instances [i].info;
        if (info->running && al_child_wait (info->pid, 0, true, &info->exit_code)) {
            info->running = false;
            exited++;
        }
    }
    return exited;
}

//  Reap, and drop what exited from the registry. For the calls that do not rewrite the
//  registry themselves (probe, list, switch): a failed write is not their failure, and
//  an entry left behind is harmless (its start time no longer matches once reused).
static void
s_reap_and_record (s_process_t *self)
{
    char ignored [256];
    if (s_reap (self) > 0 && self->state_file)
        s_registry_write (self, NULL, ignored, sizeof (ignored));
}

static s_instance_t *
s_find (s_process_t *self, const char *id)
{
    for (size_t i = 0; i < self->count; i++)
        if (strcmp (self->instances [i].info.id, id) == 0)
            return &self->instances [i];
    return NULL;
}

static al_driver_status_t
s_process_prerequisites (void *handle, const al_driver_vars_t *vars, al_driver_report_t *report,
                         char *error, size_t error_size)
{
    s_process_t *self = handle;
    al_tvars_t tvars = { { NULL } };
    al_tvars_from_vars (&tvars, vars);
    bool templated = false;
    for (int var = 0; var < AL_TVAR_COUNT; var++)
        templated |= al_template_uses (self->command [0], (al_tvar_t) var);
    if (templated && !vars)
        al_driver_report_add (report, "program", false,
                              "%s depends on the deployment's variables, none were given",
                              self->command [0]);
    else {
        char *program = al_template_expand (self->command [0], &tvars);
        char path [PATH_MAX];
        char why [512] = "";
        bool found = program && al_program_resolve (program, path, sizeof (path), why, sizeof (why));
        al_driver_report_add (report, "program", found, "%s", found ? path : why);
        free (program);
    }
    char why [256];
    int port = al_free_port (self->host, why, sizeof (why));
    if (port > 0)
        al_driver_report_add (report, "ports", true, "free ports on %s (e.g. %d)", self->host, port);
    else
        al_driver_report_add (report, "ports", false, "%s", why);
    bool writable = access (self->evidence_dir, W_OK | X_OK) == 0;
    al_driver_report_add (report, "evidence_dir", writable, "%s%s", self->evidence_dir,
                          writable ? " is writable" : ": not writable");
    if (al_driver_report_failures (report) > 0) {
        snprintf (error, error_size, "%zu prerequisite(s) failed", al_driver_report_failures (report));
        return AL_DRIVER_ERR_FAILED;
    }
    return AL_DRIVER_OK;
}

static al_driver_status_t
s_process_start_instance (void *handle, const al_driver_spec_t *spec, al_driver_instance_t *info,
                          char *error, size_t error_size)
{
    s_process_t *self = handle;
    const al_redact_t *redact = self->secrets->redact;
    s_reap_and_record (self);
    if (!al_check_spec (spec, error, error_size))
        return AL_DRIVER_ERR_CONFIG;
    al_driver_status_t status = AL_DRIVER_ERR_SYSTEM;
    char **argv = NULL;
    al_env_t *env = NULL;
    char *log_path = NULL;
    char *tail = NULL;
    char *environment = NULL;
    int log_fd = -1;
    pid_t pid = -1;
    bool registered = false;

    int port = spec->port;
    if (port == 0 && (port = al_free_port (self->host, error, error_size)) < 0)
        goto cleanup;
    const char *set = spec->set ? spec->set : AL_DRIVER_DEFAULT_SET;
    char id [AL_DRIVER_ID_SIZE], port_text [16], instance_text [16];
    snprintf (id, sizeof (id), "%s-%d.%u", spec->vars.service, spec->instance, ++self->sequence);
    snprintf (port_text, sizeof (port_text), "%d", port);
    snprintf (instance_text, sizeof (instance_text), "%d", spec->instance);
    al_tvars_t tvars = { { NULL } };
    al_tvars_from_vars (&tvars, &spec->vars);
    tvars.values [AL_TVAR_INSTANCE] = instance_text;
    tvars.values [AL_TVAR_PORT] = port_text;
    tvars.values [AL_TVAR_SET] = set;
    tvars.values [AL_TVAR_ID] = id;
    tvars.values [AL_TVAR_STEP] = "start";
    tvars.values [AL_TVAR_EVIDENCE_DIR] = self->evidence_dir;

    argv = al_template_expand_argv ((const char *const *) self->command, &tvars);
    env = al_env_new ();
    environment = strdup (spec->vars.env ? spec->vars.env : "");
    if (!argv || !env || !environment || asprintf (&log_path, "%s/%s.log", self->evidence_dir, id) < 0) {
        log_path = NULL;
        snprintf (error, error_size, "out of memory");
        goto cleanup;
    }
    bool env_ok = true;
    for (size_t i = 0; self->env [i]; i++) {
        char *assignment = al_template_expand (self->env [i], &tvars);
        env_ok = env_ok && assignment && al_env_put (env, assignment);
        free (assignment);
    }
    env_ok = env_ok && al_env_put_tvars (env, &tvars) && al_env_set (env, "PORT", port_text)
          && al_env_put_all (env, spec->extra_env) && al_env_put_all (env, self->secrets->env);
    if (!env_ok) {
        snprintf (error, error_size, "out of memory");
        goto cleanup;
    }
    log_fd = open (log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (log_fd < 0) {
        al_error_set (error, error_size, redact, "%s: %s", log_path, strerror (errno));
        goto cleanup;
    }
    int output [2];
    if (pipe2 (output, O_CLOEXEC) != 0) {
        snprintf (error, error_size, "pipe: %s", strerror (errno));
        goto cleanup;
    }
    char endpoint [AL_DRIVER_ENDPOINT_SIZE], url [AL_DRIVER_ENDPOINT_SIZE + 256];
    snprintf (endpoint, sizeof (endpoint), "http://%s:%d", self->host, port);
    //  The record, complete but for the pid and the log path: the spawn has the registry
    //  name the child before its program runs (s_record_spawned), so an owner killed at
    //  any moment, during the spawn or the liveness wait, leaves nothing unknown.
    s_instance_t starting = { .info = { .instance = spec->instance, .port = port, .running = true },
                              .environment = environment };
    snprintf (starting.info.id, sizeof (starting.info.id), "%s", id);
    snprintf (starting.info.service, sizeof (starting.info.service), "%s", spec->vars.service);
    snprintf (starting.info.version, sizeof (starting.info.version), "%s", spec->vars.version);
    snprintf (starting.info.set, sizeof (starting.info.set), "%s", set);
    snprintf (starting.info.endpoint, sizeof (starting.info.endpoint), "%s", endpoint);
    s_spawn_record_t record = { self, &starting };
    char spawn_error [512];
    pid = al_child_spawn_recorded (argv, al_env_array (env), output [1], output [1],
                                   self->state_file ? s_record_spawned : NULL, &record,
                                   spawn_error, sizeof (spawn_error));
    close (output [1]);
    //  The pump owns the read end and the log descriptor from here.
    int pumped = s_pump_add (&self->pump, id, output [0], log_fd);
    log_fd = -1;
    if (pumped != 0 && pid > 0) {
        snprintf (error, error_size, "out of memory");
        goto cleanup;
    }
    if (pid < 0) {
        al_error_set (error, error_size, redact, "instance %s: %s", id, spawn_error);
        status = AL_DRIVER_ERR_FAILED;
        goto cleanup;
    }
    starting.info.pid = pid;
    registered = self->state_file != NULL;
    if (registered) {
        char why [512];
        if (s_registry_write (self, &starting, why, sizeof (why)) != 0) {
            al_error_set (error, error_size, redact, "instance %s not started: registry %s", id, why);
            goto cleanup;
        }
    }
    snprintf (url, sizeof (url), "%s%s", endpoint, self->liveness_path);
    double deadline = al_now_ms () + self->start_timeout_ms;
    bool alive = false;
    while (!alive) {
        int exit_code;
        if (al_child_wait (pid, 0, true, &exit_code)) {
            pid = -1;
            s_pump_wait_eof (&self->pump, id, 2000);
            tail = al_file_tail (log_path, S_LOG_TAIL, redact);
            al_error_set (error, error_size, redact,
                          "instance %s exited during start with exit code %d; log %s ends: %s",
                          id, exit_code, log_path, tail);
            status = AL_DRIVER_ERR_FAILED;
            goto cleanup;
        }
        if (al_now_ms () >= deadline) {
            tail = al_file_tail (log_path, S_LOG_TAIL, redact);
            al_error_set (error, error_size, redact,
                          "instance %s did not answer %s within %d ms (killed); log %s ends: %s",
                          id, url, self->start_timeout_ms, log_path, tail);
            status = AL_DRIVER_ERR_TIMEOUT;
            goto cleanup;
        }
        al_probe_result_t probe;
        int timeout = self->probe_timeout_ms < S_START_PROBE_TIMEOUT_MS ? self->probe_timeout_ms
                                                                         : S_START_PROBE_TIMEOUT_MS;
        alive = al_probe_http (url, timeout, &probe);
        if (!alive)
            al_sleep_ms (20);
    }
    s_instance_t *grown = realloc (self->instances, (self->count + 1) * sizeof (s_instance_t));
    if (!grown) {
        snprintf (error, error_size, "out of memory");
        goto cleanup;
    }
    self->instances = grown;
    s_instance_t *instance = &self->instances [self->count++];
    *instance = starting;
    instance->log_path = log_path;
    log_path = NULL;
    environment = NULL;
    pid = -1;
    //  The registry already names it (written with starting above).
    registered = false;
    *info = instance->info;
    info->active = strcmp (instance->info.set, self->active) == 0;
    status = AL_DRIVER_OK;

cleanup:
    if (pid > 0)
        al_child_stop (pid, 0, NULL, NULL);
    if (registered) {
        //  It is stopped and reaped; an entry left behind by a failed write no longer
        //  matches anything once its pid is reused (start time).
        char ignored [256];
        s_registry_write (self, NULL, ignored, sizeof (ignored));
    }
    if (log_fd >= 0)
        close (log_fd);
    free (tail);
    free (log_path);
    free (environment);
    al_env_destroy (&env);
    al_strv_free (&argv);
    return status;
}

static al_driver_status_t
s_process_stop_instance (void *handle, const char *id, int grace_ms, al_driver_stop_t *result,
                         char *error, size_t error_size)
{
    s_process_t *self = handle;
    s_reap (self);
    s_instance_t *instance = s_find (self, id);
    if (!instance) {
        snprintf (error, error_size, "instance %.64s: not found", id);
        return AL_DRIVER_ERR_NOT_FOUND;
    }
    al_driver_instance_t *info = &instance->info;
    if (info->running) {
        al_child_stop (info->pid, grace_ms > 0 ? grace_ms : self->stop_timeout_ms,
                       &result->forced, &info->exit_code);
        info->running = false;
    }
    result->exit_code = info->exit_code;
    //  Also after s_reap found it exited: that stop is recorded here too.
    char why [512];
    if (self->state_file && s_registry_write (self, NULL, why, sizeof (why)) != 0) {
        al_error_set (error, error_size, self->secrets->redact,
                      "instance %s stopped, but the registry was not updated: %s", id, why);
        return AL_DRIVER_ERR_SYSTEM;
    }
    return AL_DRIVER_OK;
}

static al_driver_status_t
s_process_probe (void *handle, const char *id, al_driver_probe_kind_t kind, al_probe_result_t *result,
                 char *error, size_t error_size)
{
    s_process_t *self = handle;
    s_reap_and_record (self);
    s_instance_t *instance = s_find (self, id);
    if (!instance) {
        snprintf (error, error_size, "instance %.64s: not found", id);
        return AL_DRIVER_ERR_NOT_FOUND;
    }
    if (!instance->info.running) {
        memset (result, 0, sizeof (*result));
        snprintf (result->detail, sizeof (result->detail), "instance exited with exit code %d",
                  instance->info.exit_code);
        return AL_DRIVER_OK;
    }
    al_driver_probe_endpoint (instance->info.endpoint, kind, self->liveness_path, self->readiness_path,
                              self->probe_timeout_ms, result);
    return AL_DRIVER_OK;
}

static al_driver_status_t
s_process_list_instances (void *handle, al_driver_instance_t *instances, size_t max, size_t *count_p,
                          char *error, size_t error_size)
{
    (void) error;
    (void) error_size;
    s_process_t *self = handle;
    s_reap_and_record (self);
    for (size_t i = 0; i < self->count && i < max; i++) {
        instances [i] = self->instances [i].info;
        instances [i].active = strcmp (instances [i].set, self->active) == 0;
    }
    *count_p = self->count;
    return AL_DRIVER_OK;
}

static al_driver_status_t
s_process_switch_active (void *handle, const char *set, char *error, size_t error_size)
{
    s_process_t *self = handle;
    s_reap_and_record (self);
    //  Moving traffic to a set with nothing running would be an outage.
    bool any = false;
    for (size_t i = 0; i < self->count && !any; i++)
        any = self->instances [i].info.running && strcmp (self->instances [i].info.set, set) == 0;
    if (!any) {
        snprintf (error, error_size, "set %s: no running instance to switch traffic to", set);
        return AL_DRIVER_ERR_FAILED;
    }
    snprintf (self->active, sizeof (self->active), "%s", set);
    return AL_DRIVER_OK;
}

const al_driver_ops_t al_driver_process_ops = {
    .name = "process",
    .version = AL_DRIVER_OPS_VERSION,
    .open = s_process_open,
    .close = s_process_close,
    .prerequisites = s_process_prerequisites,
    .start_instance = s_process_start_instance,
    .stop_instance = s_process_stop_instance,
    .probe = s_process_probe,
    .list_instances = s_process_list_instances,
    .switch_active = s_process_switch_active,
};
