/*  al_driver.h: deploy drivers, the plug-ins that run a service's instances.

    A driver is an ops table (al_driver_ops_t) registered by name. Two are built in:
    "process" (the embedded default: instances are local child processes, each on its
    own port) and "exec" (the operator's own commands per step, which is how airlock
    drives Cloud Run, ECS, Kubernetes or systemd). docs/drivers.md is the contract in
    prose, with configuration examples.

    Callers do not use an ops table directly: al_driver_open picks a driver by name,
    resolves the configuration's secret references and returns an al_driver_t; the
    al_driver_* calls dispatch to the driver and redact every error text with the
    resolved secret values before it reaches the caller. The strategies (rolling,
    canary, blue-green) are written on top of these calls: instance-level start, stop
    and probe, the list of instances, and the switch of the active set.

    Secrets: the configuration names secrets by reference (an environment variable of
    airlock's own process, or a file). Their values exist only in the driver's memory
    and in the environment of the children it starts; they are never substituted into
    argv, and every captured output, evidence file and error text is redacted of them.

    Threading: the registry is thread-safe. One al_driver_t (and its driver handle) is
    used by one thread at a time.
*/
#ifndef AL_DRIVER_H_INCLUDED
#define AL_DRIVER_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include "deploy/al_probe.h"
#include "deploy/al_redact.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AL_DRIVER_OPS_VERSION 1

//  Sizes of the fixed fields below (including the NUL).
#define AL_DRIVER_ID_SIZE        64
#define AL_DRIVER_NAME_SIZE      64
#define AL_DRIVER_VERSION_SIZE   128
#define AL_DRIVER_SET_SIZE       32
#define AL_DRIVER_ENDPOINT_SIZE  256

//  Defaults of the configuration's optional numbers.
#define AL_DRIVER_DEFAULT_START_TIMEOUT_MS  20000
#define AL_DRIVER_DEFAULT_STOP_TIMEOUT_MS   10000
#define AL_DRIVER_DEFAULT_STEP_TIMEOUT_MS   300000
#define AL_DRIVER_DEFAULT_MAX_OUTPUT        (64u * 1024)
#define AL_DRIVER_DEFAULT_HOST              "127.0.0.1"
#define AL_DRIVER_DEFAULT_LIVENESS_PATH     "/healthz"
#define AL_DRIVER_DEFAULT_READINESS_PATH    "/readyz"
#define AL_DRIVER_DEFAULT_SET               "default"

typedef enum {
    AL_DRIVER_OK = 0,
    AL_DRIVER_ERR_CONFIG,           // the configuration or an argument is invalid
    AL_DRIVER_ERR_FAILED,           // the operation ran and failed (exit code, crash at start)
    AL_DRIVER_ERR_TIMEOUT,          // the operation did not finish in time (and was killed)
    AL_DRIVER_ERR_NOT_FOUND,        // no such instance or step
    AL_DRIVER_ERR_UNSUPPORTED,      // the driver does not implement this member
    AL_DRIVER_ERR_SYSTEM            // fork, pipe, file or memory failure on this host
} al_driver_status_t;

typedef enum {
    AL_DRIVER_LIVENESS,             // is the process alive and answering (/healthz)
    AL_DRIVER_READINESS             // may it receive traffic (/readyz)
} al_driver_probe_kind_t;

//  A secret reference: exactly one of env and file is set.
typedef struct {
    const char *name;               // [A-Za-z0-9_.-]{1,64}: in "[REDACTED:NAME]"
    const char *env;                // read from this variable of airlock's environment
    const char *file;               // or from this file (one trailing newline dropped)
    const char *as;                 // variable name in the children's environment (default name)
} al_driver_secret_ref_t;

//  A step of the exec driver: an argv template, one {{var}}-template per element.
typedef struct {
    const char *name;               // "start", "stop", "probe", "switch", "backup", ...
    const char *const *argv;        // NULL-terminated; argv[0] is the program
    int timeout_ms;                 // 0: config step_timeout_ms
} al_driver_step_t;

//  Configuration of a driver, as loaded from a service of services.yaml (al_services.h). Borrowed by
//  open only: a driver copies what it keeps. Members a driver does not use are ignored.
typedef struct {
    const char *evidence_dir;       // both, MUST: logs and evidence files go here (created 0700)
    //  process driver
    const char *const *command;     // argv template of one instance, NULL-terminated
    const char *const *env;         // "NAME=template" for every instance, NULL-terminated; MAY
    const char *host;               // where instances listen and free ports are found
                                    // (IPv4, AL_DRIVER_DEFAULT_HOST); exec too
    const char *liveness_path;      // both (exec: when an endpoint is known)
    const char *readiness_path;     // both
    int start_timeout_ms;           // process: longest wait for a new instance's liveness
    int stop_timeout_ms;            // default grace between SIGTERM and SIGKILL
    int probe_timeout_ms;           // one HTTP probe
    const char *state_file;         // process: the instance registry, NULL = none; MAY.
                                    // JSON rewritten atomically whenever an instance starts
                                    // or stops (id, pid, pgid, start time, port, set,
                                    // version). Open stops the leftovers it records (a
                                    // previous owner killed without close) and fails on a
                                    // registry it cannot parse, naming the file. Keep it in
                                    // a directory only airlock writes: it names what to kill.
    //  exec driver
    const al_driver_step_t *steps;  // the steps, names unique
    size_t step_count;
    const char *endpoint;           // template of an instance's base URL; MAY
    int step_timeout_ms;            // default timeout of a step
    size_t max_output;              // bytes of stdout and of stderr kept per step
    //  both
    const al_driver_secret_ref_t *secrets;
    size_t secret_count;
} al_driver_config_t;

//  What a deployment is about; every field is a template variable of the same name.
typedef struct {
    const char *service;            // {{service}}: [A-Za-z0-9_.-]{1,32}
    const char *version;            // {{version}}
    const char *artifact;           // {{artifact}}: path or URI
    const char *digest;             // {{digest}}: "sha256:..." or ""
    const char *env;                // {{env}}: "staging", "production", ...
} al_driver_vars_t;

//  One instance to start.
typedef struct {
    al_driver_vars_t vars;
    int instance;                   // {{instance}}: index within its set, >= 0
    int port;                       // {{port}}: 0 lets the driver choose (process: a free port)
    const char *set;                // {{set}}: "blue", "green", "canary"... NULL: "default"
    const char *const *extra_env;   // "NAME=value" for this instance only, NULL-terminated; MAY
} al_driver_spec_t;

//  One instance as the driver knows it. Plain data: the caller owns its copy.
typedef struct {
    char id [AL_DRIVER_ID_SIZE];            // unique within the handle, never reused
    char service [AL_DRIVER_NAME_SIZE];
    char version [AL_DRIVER_VERSION_SIZE];
    char set [AL_DRIVER_SET_SIZE];
    char endpoint [AL_DRIVER_ENDPOINT_SIZE];// base URL ("http://127.0.0.1:41235") or ""
    int instance;
    int port;                               // 0 when unknown
    pid_t pid;                              // 0 when unknown (exec without a reported pid)
    bool running;                           // false once it exited or was stopped
    bool active;                            // its set is the active set
    int exit_code;                          // when !running: exit status, or -signal
} al_driver_instance_t;

//  Result of a stop.
typedef struct {
    bool forced;                    // it had to be killed (SIGKILL) after the grace period
    int exit_code;                  // exit status, -signal, or 0 when unknown (exec)
} al_driver_stop_t;

//  What one command run by a driver did: kept as evidence. Output is redacted.
typedef struct {
    char *command;                  // the argv, redacted, quoted for reading
    int exit_code;                  // exit status; -signal when killed by a signal
    bool timed_out;
    double duration_ms;
    char *out;                      // stdout, at most max_output bytes read, redacted
    size_t out_size;
    bool out_truncated;
    char *err;                      // stderr, likewise
    size_t err_size;
    bool err_truncated;
    char *evidence_path;            // the evidence file written for this run, or NULL
} al_driver_run_t;

//  Free what a run holds and zero it. NULL-safe.
void al_driver_run_clear (al_driver_run_t *run);

//  A prerequisites report: one line per check.
typedef struct _al_driver_report_t al_driver_report_t;
al_driver_report_t *al_driver_report_new (void);
void al_driver_report_destroy (al_driver_report_t **self_p);
//  Record a check; detail is printf-style. Returns ok.
bool al_driver_report_add (al_driver_report_t *self, const char *check, bool ok,
                           const char *format, ...) __attribute__ ((format (printf, 4, 5)));
size_t al_driver_report_size (const al_driver_report_t *self);
size_t al_driver_report_failures (const al_driver_report_t *self);
//  Check at index: name, outcome and detail (borrowed, live until destroy).
const char *al_driver_report_check (const al_driver_report_t *self, size_t index,
                                    bool *ok_p, const char **detail_p);

//  Resolved secrets, handed to a driver's open: a redactor and the children's extra
//  environment ("AS=value", NULL-terminated). Owned by al_driver_t; borrowed by the
//  driver until close.
typedef struct {
    const al_redact_t *redact;
    const char *const *env;
} al_driver_secrets_t;

/*  The plug-in table. Members receive the handle returned by open. Errors: a member
    returns an al_driver_status_t and, unless AL_DRIVER_OK, writes "what is wrong" into
    error (error_size bytes, always NUL-terminated). Drivers MUST redact captured output
    and error texts with secrets->redact; the dispatcher redacts error texts again.
    Values of the spec are outside input: a driver MUST pass them as single argv
    elements or environment values, never through a shell.
*/
typedef struct {
    //  MUST: unique name ("process"), and AL_DRIVER_OPS_VERSION.
    const char *name;
    int version;

    //  MUST: validate config (every template, every path it needs) and return a handle,
    //  or NULL with error filled; nothing is started either way. secrets is borrowed
    //  until close.
    void *(*open) (const al_driver_config_t *config, const al_driver_secrets_t *secrets,
                   char *error, size_t error_size);
    //  MUST: release the handle. NULL-safe. A driver whose instances cannot outlive the
    //  handle (process: they are our children) MUST stop them first (SIGTERM, SIGKILL
    //  after stop_timeout_ms) and reap them; one whose instances live on a platform
    //  (exec) MUST leave them running.
    void (*close) (void *handle);

    //  MUST: check what this driver needs before a deploy starts (programs exist and
    //  are executable, ports can be bound, the platform answers), one check per line
    //  in report. vars (MAY be NULL) lets templated programs ("{{artifact}}") be
    //  checked. Returns OK when every check passed, ERR_FAILED otherwise. MUST NOT
    //  change anything on the platform.
    al_driver_status_t (*prerequisites) (void *handle, const al_driver_vars_t *vars,
                                         al_driver_report_t *report,
                                         char *error, size_t error_size);

    //  MUST: start one instance and fill info. Returns only once the instance is started
    //  or has failed: an instance that exits during start MUST fail with its exit code
    //  and the tail of its output in error, and leave nothing running. Readiness is
    //  not awaited (the strategy gates on probe).
    al_driver_status_t (*start_instance) (void *handle, const al_driver_spec_t *spec,
                                          al_driver_instance_t *info,
                                          char *error, size_t error_size);
    //  MUST: stop the instance gracefully: SIGTERM (or the platform's equivalent), then
    //  after grace_ms (<= 0: stop_timeout_ms) a forced kill; fill result. ERR_NOT_FOUND
    //  for an unknown id. Stopping an instance that already exited is OK.
    al_driver_status_t (*stop_instance) (void *handle, const char *id, int grace_ms,
                                         al_driver_stop_t *result, char *error, size_t error_size);
    //  MUST: probe liveness or readiness once. Returns OK when the probe ran, whatever
    //  its outcome, which is in result (a refused connection is a failed probe);
    //  ERR_NOT_FOUND for an unknown id.
    al_driver_status_t (*probe) (void *handle, const char *id, al_driver_probe_kind_t kind,
                                 al_probe_result_t *result, char *error, size_t error_size);
    //  MUST: the instances started by this handle (stopped ones included, with
    //  running false), oldest first, up to max in instances; the total in *count_p.
    al_driver_status_t (*list_instances) (void *handle, al_driver_instance_t *instances,
                                          size_t max, size_t *count_p,
                                          char *error, size_t error_size);

    //  MAY: make set the one that receives traffic. Default: ERR_UNSUPPORTED (a silent
    //  success would let blue-green believe traffic moved).
    al_driver_status_t (*switch_active) (void *handle, const char *set,
                                         char *error, size_t error_size);
    //  MAY: run a named step that is not about one instance ("backup", "migrate",
    //  "rollback", ...) and fill run (evidence): filled whenever the step ran, failed
    //  or timed out too; the caller clears it with al_driver_run_clear in every case.
    //  ERR_NOT_FOUND if the step is not configured. Default: ERR_UNSUPPORTED.
    al_driver_status_t (*run_step) (void *handle, const char *step, const al_driver_vars_t *vars,
                                    al_driver_run_t *run, char *error, size_t error_size);
    //  MAY: how many instances a previous owner left running that open stopped (a
    //  driver whose instances die with their owner keeps a registry: process). Default: 0.
    size_t (*stale_stopped) (void *handle);
} al_driver_ops_t;

//  Register a driver (the table is copied; MAY members left NULL get the shared
//  defaults). Fails if a MUST member is missing, the version differs or the name is
//  taken. The built-in drivers are registered on first use of the registry.
al_driver_status_t al_driver_register (const al_driver_ops_t *ops, char *error, size_t error_size);

//  The registered table for name (with defaults filled), or NULL. Borrowed, for ever.
const al_driver_ops_t *al_driver_find (const char *name);

//  The built-in drivers.
extern const al_driver_ops_t al_driver_process_ops;
extern const al_driver_ops_t al_driver_exec_ops;

//  A driver opened by name.
typedef struct _al_driver_t al_driver_t;

//  Open driver name with config: resolve the secret references, then call its open.
//  NULL with "what is wrong" in error (unknown driver, missing secret, bad config).
al_driver_t *al_driver_open (const char *name, const al_driver_config_t *config,
                             char *error, size_t error_size);
//  Close the driver (see close above). NULL-safe; sets *self_p to NULL.
void al_driver_destroy (al_driver_t **self_p);

const char *al_driver_name (const al_driver_t *self);
//  The active set: "default" until a switch_active succeeded.
const char *al_driver_active_set (const al_driver_t *self);
//  The redactor holding the resolved secrets (for callers that log driver output).
const al_redact_t *al_driver_redactor (const al_driver_t *self);
//  How many leftover instances open found alive in config's state_file and stopped
//  (process driver; 0 for drivers without a registry or when there was nothing to stop).
size_t al_driver_stale_stopped (const al_driver_t *self);

//  Dispatch: the members above, with error texts redacted.
al_driver_status_t al_driver_prerequisites (al_driver_t *self, const al_driver_vars_t *vars,
                                            al_driver_report_t *report,
                                            char *error, size_t error_size);
al_driver_status_t al_driver_start_instance (al_driver_t *self, const al_driver_spec_t *spec,
                                             al_driver_instance_t *info,
                                             char *error, size_t error_size);
al_driver_status_t al_driver_stop_instance (al_driver_t *self, const char *id, int grace_ms,
                                            al_driver_stop_t *result, char *error, size_t error_size);
al_driver_status_t al_driver_probe (al_driver_t *self, const char *id, al_driver_probe_kind_t kind,
                                    al_probe_result_t *result, char *error, size_t error_size);
al_driver_status_t al_driver_list_instances (al_driver_t *self, al_driver_instance_t *instances,
                                             size_t max, size_t *count_p,
                                             char *error, size_t error_size);
al_driver_status_t al_driver_switch_active (al_driver_t *self, const char *set,
                                            char *error, size_t error_size);
al_driver_status_t al_driver_run_step (al_driver_t *self, const char *step,
                                       const al_driver_vars_t *vars, al_driver_run_t *run,
                                       char *error, size_t error_size);

//  "ok", "invalid configuration", "failed", "timeout", "not found", "unsupported", "system error".
const char *al_driver_status_name (al_driver_status_t status);

#ifdef __cplusplus
}
#endif

#endif
