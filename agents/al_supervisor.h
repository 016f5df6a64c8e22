/*  al_supervisor.h: runs a list of child programs and starts again whichever exits,
    after a bounded backoff; the engine behind `airlock up`.

    Each child is a program (argv, argv[0] the path to run) with its own log
    (LOGS/<name>.log, appended; each start adds "airlock up: NAME started (pid N,
    restart K)" before the program's own output) and, while it runs, its pid in
    RUN/<name>.pid (written through a rename). A child that exits is started again after
    its backoff: first_ms, doubling on each crash up to max_ms, and back to first_ms once
    the child had run healthy_ms. The cap is what bounds an outage: the broker's
    (al_supervisor_broker_backoff) is 1 s, so after a crash the bus is down for at most
    about a second plus the broker's start, however many times it crashed before
    (issue 19: a doubling without a small cap kept the bus down for 16 s).

    The child list is data: al_supervisor_add appends one, in start order; each has a
    stop rank (children of the lowest rank are stopped first, all at once, then the next
    rank), so the broker (rank 1) stops after the agents (rank 0) have flushed what they
    send. al_supervisor_add_bus adds airlock's bus (the broker and the five agents) from
    one table; another supervised process (a console) is one more al_supervisor_add.

    Invariants (kept from `airlock up`):
      - Each child runs in its own process group (a Ctrl-C at a terminal reaches only the
        supervisor, which stops the children in order) and gets SIGTERM when the
        supervisor dies, however it dies (PR_SET_PDEATHSIG).
      - Signals SIGINT, SIGTERM and SIGHUP stay blocked from fork until the child has
        reset their handlers, so a SIGTERM sent to a new pid at once kills it.
      - Only children with systemd_notify keep NOTIFY_SOCKET (al_sd_notify.h).
      - Only the supervisor's own children are waited for (waitpid on their pids).
      - One supervisor per run directory: al_supervisor_lock holds an exclusive flock on
        RUN/up.lock (which holds its pid) until destroyed.

    Reports (exits, restarts, stops) are lines on the report stream given to
    al_supervisor_new, prefixed "airlock up: ". Not thread-safe: one owner, which may
    call al_supervisor_run from its main thread with a signal handler setting *stop.
    Times are monotonic milliseconds (zclock_mono).
*/
#ifndef AL_SUPERVISOR_H_INCLUDED
#define AL_SUPERVISOR_H_INCLUDED

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int first_ms;                   // delay before the first restart (> 0)
    int max_ms;                     // the doubling stops here (>= first_ms)
    int healthy_ms;                 // a child that ran this long restarts after first_ms again
} al_supervisor_backoff_t;

//  The broker: 0.5 s, then 1 s at most. The bus is never down for longer than that
//  plus the broker's own start after a crash.
extern const al_supervisor_backoff_t al_supervisor_broker_backoff;
//  An agent: 0.5 s doubling to 5 s at most (an agent down stops only its own role).
extern const al_supervisor_backoff_t al_supervisor_agent_backoff;

typedef struct {
    const char *name;               // log and pid file name: [A-Za-z0-9._-]+; copied
    const char *const *argv;        // NULL-terminated; argv[0] the program's path; copied
    al_supervisor_backoff_t backoff;
    int stop_rank;                  // lower ranks stop first (agents 0, broker 1)
    int settle_ms;                  // after its first start, wait this long before starting the next child
    bool systemd_notify;            // keeps NOTIFY_SOCKET (only the broker speaks to systemd)
} al_supervisor_child_t;

typedef struct _al_supervisor_t al_supervisor_t;

//  New supervisor writing logs into logs_dir and pid files into run_dir (both must
//  exist; made by the caller). report: where exits and restarts are told (stderr for
//  `airlock up`); borrowed. NULL if out of memory.
al_supervisor_t *al_supervisor_new (const char *logs_dir, const char *run_dir, FILE *report);
//  Stops the children still running (al_supervisor_stop), releases the lock. NULL-safe;
//  sets *self_p to NULL.
void al_supervisor_destroy (al_supervisor_t **self_p);

//  Add a child, started after those added before it. Returns 0, or -1 with error filled
//  ("child 'x': what is wrong") for a bad name, an empty argv, a bad backoff or a name
//  already used.
int al_supervisor_add (al_supervisor_t *self, const al_supervisor_child_t *child, char *error, size_t size);

//  What al_supervisor_add_bus starts.
typedef struct {
    const char *executable;         // the airlock binary (absolute path)
    const char *config_path;        // airlock.yaml, passed as --config
    const char *interval_ms;        // the monitor's --interval-ms; NULL: its default
    const char *log_format;         // --log-format for every child ("text", "json"); NULL: none
} al_supervisor_bus_t;

//  Add `airlock broker` and `airlock agent ROLE` for orchestrator, qa, deploy-manager,
//  monitor and notifier, with the broker's and the agents' backoffs; the broker is
//  given 300 ms to bind before the agents start. 0, or -1 with error filled.
int al_supervisor_add_bus (al_supervisor_t *self, const al_supervisor_bus_t *bus, char *error, size_t size);

//  Lock RUN/up.lock for the supervisor's life and write our pid in it. 0; -1 on an I/O
//  error, -2 if another process holds it (its pid in error); error filled.
int al_supervisor_lock (al_supervisor_t *self, char *error, size_t size);

//  Called after a child exited and before its restart is scheduled, with the path of
//  its log (`airlock up` shows the log's last error line).
typedef void (al_supervisor_exit_fn) (void *arg, const char *name, const char *log_path);
void al_supervisor_on_exit (al_supervisor_t *self, al_supervisor_exit_fn *handler, void *arg);

//  Start every child, in order, each child's settle_ms after it. Stops early when stop
//  is set (stop may be NULL).
void al_supervisor_start (al_supervisor_t *self, volatile sig_atomic_t *stop);
//  Reap the children that exited (scheduling their restart) and start those whose
//  restart is due. Never blocks.
void al_supervisor_poll (al_supervisor_t *self);
//  al_supervisor_start, then al_supervisor_poll every 100 ms (or sooner, when a signal
//  arrives) until *stop, then al_supervisor_stop.
void al_supervisor_run (al_supervisor_t *self, volatile sig_atomic_t *stop);
//  Stop every child, rank by rank: SIGTERM to each of a rank, wait up to 10 s for all of
//  them, SIGKILL whoever is left. No restart is pending afterwards.
void al_supervisor_stop (al_supervisor_t *self);

//  The running pid of child name; 0 when it is not running or unknown.
pid_t al_supervisor_pid (const al_supervisor_t *self, const char *name);
//  How many times child name was restarted.
unsigned al_supervisor_restarts (const al_supervisor_t *self, const char *name);
//  The delay scheduled after child name's latest exit, in ms; -1 if it never exited.
int al_supervisor_last_delay_ms (const al_supervisor_t *self, const char *name);

#ifdef __cplusplus
}
#endif

#endif
