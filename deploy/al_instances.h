/*  al_instances.h: the instance registry, STATE_DIR/deploy/drivers/<service>/<env>/instances.json.

    The process driver records here every instance it runs (id, service, version, set,
    port, pid, process group, start time) so that a new owner can stop what a dead one
    left running, the monitor can scrape and the qa agent can test what runs, and
    `airlock demo load` can send traffic to it. This module is the file's only reader
    and writer: everyone else calls it, nobody spells the path or a JSON key.

    The file, format 1:
      {"format": 1, "driver": "process", "owner_pid": PID,
       "instances": [{"id", "service", "version", "set", "port", "pid", "pgid",
                      "start_time", "instance"}, ...]}
    Beside it, file_sd.json holds the same instances in Prometheus' file_sd format, one
    target group per instance ("HOST:PORT", labels service, environment, version,
    instance_id; [] when none runs), written at the same moments (docs/monitor.md).

    Both files are replaced atomically (temporary file, fsync, rename, fsync of the
    directory): a reader sees the old file or the new one, never half of one.

    Two ways to read, because two uses trust the file differently:
      AL_INSTANCES_TO_STOP   the driver, before signalling what the file names: it must
                             be a regular file of our user that only we can write, and
                             every entry needs a pid and process group >= 2 and a start
                             time (a pid 1 or group 0 would signal init or everything);
      AL_INSTANCES_TO_REACH  everyone who only connects to the instances: every entry
                             needs an id and a port in 1..65535; pid (any, 0 when
                             absent) and version may lack.
    Errors read "file[:line]: what is wrong". Thread-safe (no state).
*/
#ifndef AL_INSTANCES_H_INCLUDED
#define AL_INSTANCES_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include "deploy/al_driver.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AL_INSTANCES_FORMAT 1

typedef enum {
    AL_INSTANCES_TO_STOP,
    AL_INSTANCES_TO_REACH
} al_instances_use_t;

//  One instance in the registry.
typedef struct {
    char id [AL_DRIVER_ID_SIZE];
    char service [AL_DRIVER_NAME_SIZE];
    char version [AL_DRIVER_VERSION_SIZE];
    bool has_version;                       // read: the entry names a version
    char set [AL_DRIVER_SET_SIZE];
    char environment [AL_DRIVER_NAME_SIZE]; // written to file_sd.json only (a label)
    int instance;
    int port;                               // 0 when the entry has none (TO_STOP only)
    int pid;                                // 0 when the entry has none (TO_REACH only)
    int pgid;
    unsigned long long start_time;          // of pid, clock ticks since boot (/proc/PID/stat)
} al_instance_record_t;

//  The registry of (service, env) under deploy_dir (STATE_DIR/deploy): its directory
//  (deploy_dir/drivers/<service>/<env>) or its file. Returns false when it does not fit
//  size or service or env is not a plain name ([A-Za-z0-9._-], not starting with '.').
bool al_instances_dir (const char *deploy_dir, const char *service, const char *env, char *path, size_t size);
bool al_instances_path (const char *deploy_dir, const char *service, const char *env, char *path, size_t size);

//  The same from the state directory (STATE_DIR, whose deploy/ deploy-manager keeps).
bool al_instances_path_in_state (const char *state_dir, const char *service, const char *env,
                                 char *path, size_t size);

//  Read the registry at path into *records_p (caller frees; NULL when none) and
//  *count_p. A missing, empty or blank file holds none (*found_p, MAY be NULL, says
//  whether the file exists). Returns 0, or -1 with error.
int al_instances_read (const char *path, al_instances_use_t use, al_instance_record_t **records_p,
                       size_t *count_p, bool *found_p, char *error, size_t error_size);

//  An owner killed inside al_instances_write, after the temporary file was written and
//  before its rename, leaves "<path>.XXXXXX" (or al_file's "<path>.tmp-XXXXXX"): the only
//  record of the instance it had just spawned. Append to *records_p and *count_p what
//  every such file names, read as AL_INSTANCES_TO_STOP (one that is half-written, not
//  trusted or unreadable adds nothing). Returns 0, or -1 with error (out of memory;
//  what was appended stays: the caller frees *records_p either way).
int al_instances_read_unrenamed (const char *path, al_instance_record_t **records_p, size_t *count_p,
                                 char *error, size_t error_size);

//  Remove those files (once what they name is stopped).
void al_instances_remove_unrenamed (const char *path);

//  Replace the registry at path with records (count may be 0), then file_sd.json beside
//  it (host: the instances' address for Prometheus). Returns 0, or -1 with error.
int al_instances_write (const char *path, const char *host, const al_instance_record_t *records, size_t count,
                        char *error, size_t error_size);

//  The registry alone, renamed into place without the directory's fsync and without
//  file_sd.json (al_file_write_atomic_unsynced): a new owner after a kill finds what it
//  names, a power cut may bring the previous file back. For the process driver's spawn
//  gate, which the child waits on; al_instances_write follows as soon as it runs.
int al_instances_write_unsynced (const char *path, const al_instance_record_t *records, size_t count,
                                 char *error, size_t error_size);

#ifdef __cplusplus
}
#endif

#endif
