/*  al_driver_process_int.h: what the three files of the "process" driver share.

    al_driver_process.c           the ops: open and close, starting and stopping
                                  instances (each an al_child), probes, the active set;
    al_driver_process_log.c       the log pump, one thread copying every instance's
                                  output, redacted, into its log file;
    al_driver_process_registry.c  the instance registry: naming a spawned child before
                                  its program runs, rewriting it, and stopping at open
                                  what a dead owner left running.
    Not installed; only these three files include it. Threading as al_driver_process.c says.
*/
#ifndef AL_DRIVER_PROCESS_INT_H_INCLUDED
#define AL_DRIVER_PROCESS_INT_H_INCLUDED

#include "deploy/al_driver_int.h"
#include "base/al_child.h"
#include <pthread.h>

//  One instance's output on its way to its log file.
typedef struct {
    char id [AL_DRIVER_ID_SIZE];
    int fd;                         // read end of the instance's pipe, -1 at EOF
    int log_fd;
    char *pending;                  // bytes not yet written (a possible secret head)
    size_t pending_size;
    size_t capacity;
} al_process_stream_t;

//  The log pump of one driver handle.
typedef struct {
    pthread_t thread;
    bool initialized;               // lock, cond and wake pipe exist
    bool started;
    pthread_mutex_t lock;
    pthread_cond_t changed;         // a stream reached EOF
    int wake [2];                   // the main thread writes a byte here to wake the pump
    bool stopping;
    al_process_stream_t *streams;
    size_t count;
    const al_redact_t *redact;
} al_process_pump_t;

//  One instance of the handle.
typedef struct {
    al_driver_instance_t info;
    al_child_t *child;              // NULL once stopped and destroyed
    char *log_path;
    char *environment;              // the spec's env ("" when none): a file_sd label
    unsigned long long start_time;  // of info.pid, clock ticks since boot (/proc/PID/stat)
} al_process_instance_t;

//  A "process" driver handle.
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
    al_process_instance_t *instances;
    size_t count;
    unsigned sequence;
    char active [AL_DRIVER_SET_SIZE];
    al_process_pump_t pump;
    char *state_file;               // the instance registry, or NULL
    char *state_dir;                // its directory
    bool registry_ready;            // leftovers handled: we own the file from now
    size_t stale_stopped;
} al_process_driver_t;

//  ---- the log pump (al_driver_process_log.c) ---------------------------------------

//  Start the pump's thread. 0, or -1 with error (al_process_pump_stop still cleans up).
int al_process_pump_start (al_process_pump_t *self, const al_redact_t *redact, char *error, size_t error_size);
//  Stop the thread after a last drain; close every stream. Safe on a pump never started.
void al_process_pump_stop (al_process_pump_t *self);
//  Hand a pipe's read end and a log descriptor to the pump (both owned by it from now,
//  also on failure). 0, or -1 when out of memory.
int al_process_pump_add (al_process_pump_t *self, const char *id, int fd, int log_fd);
//  Wait up to timeout_ms until the stream of id reached EOF (its output is all in the log).
void al_process_pump_wait_eof (al_process_pump_t *self, const char *id, int timeout_ms);

//  ---- the instance registry (al_driver_process_registry.c) -------------------------

//  At open: stop what the registry of a dead owner names, then take the file over.
//  0, or -1 with error (the file is then left untouched).
int al_process_registry_recover (al_process_driver_t *self, char *error, size_t error_size);
//  Rewrite the registry (and file_sd.json, durably): every running instance, plus
//  starting (MAY be NULL). 0 (also without a state_file), or -1 with error.
int al_process_registry_write (al_process_driver_t *self, const al_process_instance_t *starting,
                               char *error, size_t error_size);
//  Name starting, a child held at its gate (pid), in the registry before its program
//  runs: its start time from /proc, then the registry renamed into place (only that:
//  the child waits for it; al_process_registry_write follows once it runs). 0, or -1
//  with error (the caller refuses the child).
int al_process_registry_name_held (al_process_driver_t *self, al_process_instance_t *starting,
                                   pid_t pid, char *error, size_t error_size);

#endif
