/*  al_child.h: running another program (a driver, a test suite, ssh-keygen, an agent).

    The one fork/exec of airlock. A child:
    - is started from an argument vector, never through a shell; argv[0] is a path (with
      a '/') or a name looked up in PATH (the caller's, or /usr/local/bin:/usr/bin:/bin);
    - runs in its own process group (its pid is the group id), so stopping it stops
      what it started (servers, sub-shells) too; except with same_group, for a program
      that must read the terminal (ssh-keygen asking for a passphrase);
    - starts with every signal at its default disposition and none blocked, and with
      no descriptor of ours open but 0, 1, 2 (the caller may hold sockets and databases
      that are not close-on-exec);
    - gets stdin from /dev/null (default), the caller's stdin, a descriptor, or a buffer
      written to it; stdout and stderr go to /dev/null (default), the caller's, a
      descriptor, or are captured into memory up to a byte limit each (what is beyond
      the limit is read and counted, never blocks the child); stderr may also be merged
      into stdout;
    - optionally starts in a working directory and with variables added to (or replacing
      ones of) the environment;
    - optionally executes a program other than argv[0] (a path resolved as argv[0]
      would be), argv[0] then being only the name the child sees.
    A failure to resolve, enter the directory or execute is reported by al_child_start
    itself ("cannot execute /x/y: Permission denied"), not as an exit code 127.

    With hold, the child is created (its pid known, its descriptors, directory and
    group in place) but waits at a gate before execve: the caller first records what it
    must know of the child (an instance registry on disk), then al_child_release lets it
    run (and reports a failure to execute, as al_child_start would). The program never
    runs unless released: al_child_refuse closes the gate (the child exits 127), and so
    do al_child_destroy and the death of the caller, at any moment (the gate is a socket
    whose only writer is the caller; the child, a copy of the caller until execve, holds
    no other descriptor of ours while it waits).

    al_child_wait waits up to a deadline while it pumps the pipes; al_child_kill sends
    SIGTERM to the whole group, waits up to a grace period, then SIGKILL. When the leader
    has exited, whatever it left in its group is killed with SIGKILL (unless
    keep_leftovers, which a kill overrides: a killed child takes its group along) before
    the leader is reaped: while the leader is a zombie its pid, the group id, cannot be
    reused, so the signal never reaches a stranger. Its output is then still read for
    drain_ms (a program it left running may hold the pipes: it is not waited for longer).
    Captured bytes (they may hold secrets) are wiped before their memory is freed.
    al_child_status_text decodes the end: "exited 0", "exited 3", "killed by signal 9".

    An al_child_t belongs to one thread. Between fork and execve the child makes only
    async-signal-safe calls; everything it needs is prepared before the fork.
*/
#ifndef AL_CHILD_H_INCLUDED
#define AL_CHILD_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    AL_CHILD_DEVNULL = 0,   // /dev/null (the default)
    AL_CHILD_PIPE,          // stdin: the input buffer; stdout/stderr: captured
    AL_CHILD_INHERIT,       // the caller's own descriptor (a terminal for prompts)
    AL_CHILD_FD,            // the descriptor given in the options
    AL_CHILD_TO_STDOUT      // stderr only: wherever stdout goes
} al_child_stream_t;

typedef struct {
    const char *cwd;                //  MAY be NULL: the caller's directory
    const char *program;            //  MAY be NULL: argv[0]; else what is executed (a
                                    //  relative path is relative to the caller's
                                    //  directory, not to cwd), argv[0] left as given
    char *const *environment;       //  "NAME=value" list, NULL-terminated; NULL: the caller's
    char *const *environment_add;   //  MAY be NULL: set (or replace) these
    al_child_stream_t in, out, err;
    int in_fd, out_fd, err_fd;      //  for AL_CHILD_FD (not closed; the child gets a copy)
    const void *input;              //  for in = AL_CHILD_PIPE: written to stdin, then closed
    size_t input_size;
    size_t out_max, err_max;        //  for AL_CHILD_PIPE: bytes kept (0: AL_CHILD_DEFAULT_MAX)
    bool keep_leftovers;            //  do not kill the group when the leader has exited
                                    //  (al_child_kill still does)
    int64_t drain_ms;               //  after the leader exited, how long its captured
                                    //  output is still read (0: AL_CHILD_DEFAULT_DRAIN_MS)
    bool hold;                      //  wait at the gate before execve until
                                    //  al_child_release (see above)
    bool same_group;                //  stay in the caller's process group (a program that
                                    //  prompts on the terminal: in a group of its own it
                                    //  would be stopped by SIGTTIN); signals then reach
                                    //  the child only, and leftovers are not killed
} al_child_options_t;

#define AL_CHILD_DEFAULT_MAX        (1024 * 1024)
#define AL_CHILD_DEFAULT_DRAIN_MS   2000

typedef struct _al_child_t al_child_t;

//  Start argv (argv[0] the program) with options (MAY be NULL: all defaults). NULL with
//  the reason in error when it could not be started.
al_child_t *al_child_start (char *const *argv, const al_child_options_t *options,
                            char *error, size_t error_size);

//  A child started with hold: open its gate and wait until it executed its program.
//  False (the child exited and was reaped) with why in error when it reported a failure
//  to set up, enter its directory or execute ("cannot execute /x/y: reason"); true
//  otherwise (a child killed at its gate is reported by the next wait).
bool al_child_release (al_child_t *self, char *error, size_t error_size);

//  A child started with hold: close its gate without releasing it. The child exits 127
//  without ever executing its program; it is reaped before this returns.
void al_child_refuse (al_child_t *self);

//  True while a child started with hold waits at its gate (neither released nor refused).
bool al_child_held (const al_child_t *self);

//  Wait until the child has exited, or timeout_ms passed (< 0: no limit), pumping its
//  input and output meanwhile. True when it has exited (and was reaped).
bool al_child_wait (al_child_t *self, int64_t timeout_ms);

//  SIGTERM to the group; after grace_ms, SIGKILL; then reap. True when SIGKILL was
//  needed. Nothing happens (false) if the child has already been reaped.
bool al_child_kill (al_child_t *self, int64_t grace_ms);

//  Kill (grace 0) and reap the child if it still runs (a held child is refused first),
//  close the pipes, free. NULL-safe; sets *self_p to NULL.
void al_child_destroy (al_child_t **self_p);

//  The child's pid (its process group id).
pid_t al_child_pid (const al_child_t *self);

//  True once the child has been reaped.
bool al_child_exited (const al_child_t *self);

//  After it exited: the exit code, or -signal when a signal killed it.
int al_child_exit_code (const al_child_t *self);

//  After it exited: "exited N" or "killed by signal N"; "running" before.
const char *al_child_status_text (const al_child_t *self);

//  Captured stdout / stderr (NUL-terminated; size in *size_p, MAY be NULL), borrowed
//  from the child. Empty when not captured.
const char *al_child_out (const al_child_t *self, size_t *size_p);
const char *al_child_err (const al_child_t *self, size_t *size_p);

//  Bytes read beyond out_max / err_max and dropped.
size_t al_child_out_dropped (const al_child_t *self);
size_t al_child_err_dropped (const al_child_t *self);

//  A wait status (from waitpid) in words, into out: "exited 3", "killed by signal 9",
//  "stopped by signal 19". Returns out.
const char *al_child_describe_status (int status, char *out, size_t out_size);

//  Resolve program as al_child_start does (a path with '/', else a PATH lookup) into
//  path. False with "program: not found in PATH" (or why) in error.
bool al_child_resolve (const char *program, char *path, size_t path_size,
                       char *error, size_t error_size);

//  Run argv (options MUST NOT hold) to its end: start, wait up to timeout_ms (< 0: no limit), kill the group
//  (grace 1 s) if it did not end. Returns the child (exited; the caller reads and
//  destroys it), or NULL with why in error when it could not start. *timed_out_p
//  (MAY be NULL) says whether it had to be killed.
al_child_t *al_child_run (char *const *argv, const al_child_options_t *options,
                          int64_t timeout_ms, bool *timed_out_p,
                          char *error, size_t error_size);

#ifdef __cplusplus
}
#endif

#endif
