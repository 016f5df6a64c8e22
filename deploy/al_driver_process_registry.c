/*  al_driver_process_registry.c: the process driver's instance registry (config
    state_file, optional).

    The registry covers the owner that dies without close (SIGKILL, a crash): its
    instances are orphaned, still listening, their log pipe gone. Its format, reading
    and atomic writing belong to al_instances; this file decides what it holds and when:
    - a spawned instance is named before its program runs: al_child holds the child at
      its gate while al_process_registry_name_held renames a registry that names it
      into place (only that, so the start is not delayed by fsyncs the next owner does
      not need), so an owner killed at any moment leaves no program it never recorded;
      the durable rewrite, with file_sd.json, follows once the child runs;
    - it is rewritten whenever an instance starts or stops, with each running instance's
      pid, process group and start time (field 22 of /proc/PID/stat);
    - at open (al_process_registry_recover) every recorded instance whose pid still runs
      with the same start time, is not a zombie and belongs to our user is stopped, and
      so is what a rewrite killed before its rename names: SIGTERM to its group, polling
      /proc up to stop_timeout_ms, then SIGKILL. The start time is what makes this
      safe: a pid reused by another program has another start time and is left alone.
      A group is signalled only while its leader is verified or while members still
      hold its id (a pgid in use cannot be handed out again). A registry that does not
      parse, or a leftover that survives SIGKILL, fails the open (we cannot know, or
      cannot stop, what runs) and the file is left as it was.
    al_instances writes file_sd.json beside the registry: the running instances in
    Prometheus' file_sd format (docs/monitor.md, the Prometheus provider).

    Threading: the driver's, one user at a time.
*/
#include "deploy/al_driver_process_int.h"
#include "deploy/al_instances.h"
#include "base/al_clock.h"
#include <assert.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_KILL_WAIT_MS 5000         // after SIGKILL, how long a leftover may take to go
#define S_POLL_MS 20

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

//  Wait until no target is alive or deadline (al_clock) passes. True when all gone.
static bool
s_leftovers_wait (s_leftover_t *leftovers, size_t count, int64_t deadline)
{
    while (true) {
        bool any = false;
        for (size_t i = 0; i < count && !any; i++)
            any = leftovers [i].target && s_leftover_alive (&leftovers [i]);
        if (!any)
            return true;
        if (al_clock_remaining_ms (deadline) == 0)
            return false;
        al_clock_sleep_ms (S_POLL_MS);
    }
}

//  The registry entry of one instance.
static void
s_record (const al_process_instance_t *instance, al_instance_record_t *record)
{
    memset (record, 0, sizeof *record);
    const al_driver_instance_t *info = &instance->info;
    snprintf (record->id, sizeof record->id, "%s", info->id);
    snprintf (record->service, sizeof record->service, "%s", info->service);
    snprintf (record->version, sizeof record->version, "%s", info->version);
    snprintf (record->set, sizeof record->set, "%s", info->set);
    snprintf (record->environment, sizeof record->environment, "%s", instance->environment? instance->environment: "");
    record->instance = info->instance;
    record->port = info->port;
    record->pid = (int) info->pid;
    record->pgid = (int) info->pid;             // each instance leads its own group
    record->start_time = instance->start_time;
}

//  The entries of every running instance, then starting (MAY be NULL), into records
//  (room for self->count + 1). Returns how many.
static size_t
s_records (const al_process_driver_t *self, const al_process_instance_t *starting, al_instance_record_t *records)
{
    size_t count = 0;
    for (size_t i = 0; i < self->count; i++)
        if (self->instances [i].info.running)
            s_record (&self->instances [i], &records [count++]);
    if (starting)
        s_record (starting, &records [count++]);
    return count;
}

//  Rewrite the registry (and file_sd.json beside it, al_instances): every running
//  instance, plus starting (MAY be NULL), one that was just spawned. Returns 0, or -1
//  with error.
int
al_process_registry_write (al_process_driver_t *self, const al_process_instance_t *starting, char *error, size_t error_size)
{
    if (!self->state_file)
        return 0;
    assert (self->registry_ready);
    al_instance_record_t *records = calloc (self->count + 1, sizeof *records);
    if (!records) {
        snprintf (error, error_size, "%s: out of memory", self->state_file);
        return -1;
    }
    size_t count = s_records (self, starting, records);
    int rc = al_instances_write (self->state_file, self->host, records, count, error, error_size);
    free (records);
    return rc;
}

int
al_process_registry_name_held (al_process_driver_t *self, al_process_instance_t *starting, pid_t pid,
                               char *error, size_t error_size)
{
    assert (self->state_file && self->registry_ready);
    //  Our own unreaped child: its /proc entry exists until we wait for it.
    s_proc_stat_t stat;
    if (!s_proc_stat (pid, &stat)) {
        snprintf (error, error_size, "cannot read /proc/%d/stat", (int) pid);
        return -1;
    }
    starting->info.pid = pid;
    starting->start_time = stat.start_time;
    //  Only what the next owner needs, the registry renamed into place: the child waits
    //  for it. The directory's fsync and file_sd.json follow once it runs.
    al_instance_record_t *records = calloc (self->count + 1, sizeof *records);
    if (!records) {
        snprintf (error, error_size, "registry %s: out of memory", self->state_file);
        return -1;
    }
    size_t count = s_records (self, starting, records);
    char why [400];
    int rc = al_instances_write_unsynced (self->state_file, records, count, why, sizeof why);
    if (rc != 0)
        snprintf (error, error_size, "registry %s", why);
    free (records);
    return rc;
}

//  At open: stop what the registry of a dead owner names, and what its rewrites killed
//  before their rename name (al_instances_read_unrenamed), then take the file over
//  (rewrite it empty). Returns 0, or -1 with error (the file is then left untouched).
int
al_process_registry_recover (al_process_driver_t *self, char *error, size_t error_size)
{
    al_instance_record_t *records;
    size_t count;
    if (al_instances_read (self->state_file, AL_INSTANCES_TO_STOP, &records, &count, NULL, error, error_size) != 0)
        return -1;
    if (al_instances_read_unrenamed (self->state_file, &records, &count, error, error_size) != 0) {
        free (records);
        return -1;
    }
    s_leftover_t *leftovers = calloc (count? count: 1, sizeof *leftovers);
    if (!leftovers) {
        free (records);
        snprintf (error, error_size, "%s: out of memory", self->state_file);
        return -1;
    }
    for (size_t i = 0; i < count; i++) {
        snprintf (leftovers [i].id, sizeof leftovers [i].id, "%s", records [i].id);
        leftovers [i].pid = (pid_t) records [i].pid;
        leftovers [i].pgid = (pid_t) records [i].pgid;
        leftovers [i].start_time = records [i].start_time;
    }
    free (records);
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
    &&  !s_leftovers_wait (leftovers, count, al_clock_deadline_ms (self->stop_timeout_ms))) {
        for (size_t i = 0; i < count; i++)
            if (leftovers [i].target && s_leftover_alive (&leftovers [i]))
                s_leftover_signal (&leftovers [i], SIGKILL);
        if (!s_leftovers_wait (leftovers, count, al_clock_deadline_ms (S_KILL_WAIT_MS))) {
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
    al_instances_remove_unrenamed (self->state_file);
    return al_process_registry_write (self, NULL, error, error_size);
}
