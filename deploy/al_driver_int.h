/*  al_driver_int.h: internals shared by the dispatcher and the built-in drivers.

    Templates, child processes, environments, ports and evidence files. Not installed;
    only deploy/al_driver*.c include it. Functions that run between fork and execve
    are async-signal-safe; everything they need is prepared before the fork.
*/
#ifndef AL_DRIVER_INT_H_INCLUDED
#define AL_DRIVER_INT_H_INCLUDED

#include "deploy/al_driver.h"
#include <stdarg.h>

//  base/ now defines al_error_set (al_error.h) and al_child_wait (al_child.h) for the whole
//  product; until the drivers adopt them, their own helpers of those names link under
//  driver-private names.
#define al_error_set    al_driver_error_set
#define al_child_wait   al_driver_child_wait

//  Template variables, in the order of al_tvars_t.values.
typedef enum {
    AL_TVAR_SERVICE, AL_TVAR_VERSION, AL_TVAR_ARTIFACT, AL_TVAR_DIGEST, AL_TVAR_ENV,
    AL_TVAR_INSTANCE, AL_TVAR_PORT, AL_TVAR_SET, AL_TVAR_ID, AL_TVAR_PID, AL_TVAR_ENDPOINT,
    AL_TVAR_GRACE_MS, AL_TVAR_PROBE, AL_TVAR_STEP, AL_TVAR_EVIDENCE_DIR,
    AL_TVAR_COUNT
} al_tvar_t;

typedef struct {
    const char *values [AL_TVAR_COUNT];     // NULL is expanded as ""
} al_tvars_t;

//  "service", ...; the environment name is "AIRLOCK_" + upper case.
const char *al_tvar_name (al_tvar_t var);
//  Fill the deployment variables of tvars from vars (NULL-safe).
void al_tvars_from_vars (al_tvars_t *tvars, const al_driver_vars_t *vars);
//  Check a template: every {{name}} known, every {{ closed. where names it in error.
bool al_template_check (const char *template_text, const char *where, char *error, size_t error_size);
//  Check every element of an argv template (where names it: "steps.start.argv"), and
//  refuse a {{variable}} inside the script of a shell's -c option.
bool al_template_check_argv (const char *const *argv, const char *where, char *error, size_t error_size);
//  Does the template use variable var?
bool al_template_uses (const char *template_text, al_tvar_t var);
//  Expand a checked template. Caller frees; NULL when out of memory.
char *al_template_expand (const char *template_text, const al_tvars_t *tvars);
//  Expand a NULL-terminated argv template. Caller frees with al_strv_free.
char **al_template_expand_argv (const char *const *argv, const al_tvars_t *tvars);
//  Copy of a NULL-terminated string vector (NULL for NULL). Caller frees.
char **al_strv_dup (const char *const *strv);
void al_strv_free (char ***strv_p);
size_t al_strv_size (const char *const *strv);

//  A child environment: airlock's environ plus overrides, as "NAME=value" strings.
typedef struct _al_env_t al_env_t;
al_env_t *al_env_new (void);                    // a copy of environ
void al_env_destroy (al_env_t **self_p);
bool al_env_set (al_env_t *self, const char *name, const char *value);
bool al_env_put (al_env_t *self, const char *assignment);      // "NAME=value"
bool al_env_put_all (al_env_t *self, const char *const *assignments);   // NULL-safe
//  AIRLOCK_SERVICE... for every non-NULL value of tvars.
bool al_env_put_tvars (al_env_t *self, const al_tvars_t *tvars);
char *const *al_env_array (const al_env_t *self);

//  Resolve program like execvp would (PATH when it has no '/'), into path. True when
//  found and executable; otherwise error says why.
bool al_program_resolve (const char *program, char *path, size_t path_size,
                         char *error, size_t error_size);

//  fork and execve argv with envp in a new process group (pgid = pid), stdin from
//  /dev/null, stdout and stderr to out_fd and err_fd, other descriptors closed, signal
//  dispositions and mask reset. Returns the pid, or -1 with error (including "cannot
//  execute PATH: reason", reported by the child before it exits 127).
pid_t al_child_spawn (char *const *argv, char *const *envp, int out_fd, int err_fd,
                      char *error, size_t error_size);
//  al_child_spawn, but the child does not execve until record (pid, arg) returned 0 in
//  the parent: what an owner must know of the child (its registry entry) is on disk
//  before the program runs, so an owner killed at any moment leaves no program it never
//  recorded (the child, still a copy of the owner, exits 127 when the owner dies first:
//  it sees its gate pipe close). record returning -1 (error filled) stops the child
//  before its execve; the spawn reaps it and returns -1 with that error.
typedef int (al_child_record_fn) (pid_t pid, void *arg, char *error, size_t error_size);
pid_t al_child_spawn_recorded (char *const *argv, char *const *envp, int out_fd, int err_fd,
                               al_child_record_fn *record, void *arg, char *error, size_t error_size);
//  Wait for pid for up to timeout_ms (0: just check). True with the exit code
//  (status, or -signal) when it was reaped. kill_leftovers: SIGKILL what the child left
//  in its process group, before reaping it (so its pid, the group id, is not reused).
bool al_child_wait (pid_t pid, int timeout_ms, bool kill_leftovers, int *exit_code_p);
//  SIGTERM the child's group, wait up to grace_ms, then SIGKILL the group; reap.
void al_child_stop (pid_t pid, int grace_ms, bool *forced_p, int *exit_code_p);

//  A TCP port on host that was free a moment ago (bind to port 0), or -1 with error.
int al_free_port (const char *host, char *error, size_t error_size);

//  mkdir -p with mode 0700. Returns 0 or -1 with "path: reason".
int al_mkdir_p (const char *path, char *error, size_t error_size);
//  The last max bytes of a file, redacted, NUL-terminated. Caller frees; "" if unreadable.
char *al_file_tail (const char *path, size_t max, const al_redact_t *redact);
//  Write size bytes to path (0600, truncating). Returns 0 or -1.
int al_file_write (const char *path, const char *data, size_t size);

//  snprintf into error, then redact it in place.
void al_error_set (char *error, size_t error_size, const al_redact_t *redact,
                   const char *format, ...) __attribute__ ((format (printf, 4, 5)));

//  Validation of outside values: a service or set name, a free-text value (no control
//  characters). False with "what: what is wrong" in error.
bool al_check_name (const char *value, size_t max, const char *what, char *error, size_t error_size);
bool al_check_text (const char *value, const char *what, char *error, size_t error_size);

//  A spec is outside input: names, texts, ranges, extra_env shape.
bool al_check_spec (const al_driver_spec_t *spec, char *error, size_t error_size);

//  Milliseconds of a monotonic clock.
//  Probe an instance over HTTP at endpoint + the liveness or readiness path (al_probe).
void al_driver_probe_endpoint (const char *endpoint, al_driver_probe_kind_t kind, const char *liveness_path,
                               const char *readiness_path, int timeout_ms, al_probe_result_t *result);

double al_now_ms (void);
void al_sleep_ms (int milliseconds);

//  The built-in drivers' tables, NULL-terminated (al_driver_builtins.c): the registry
//  registers each on first use.
extern const al_driver_ops_t *const al_driver_builtins [];

#endif
