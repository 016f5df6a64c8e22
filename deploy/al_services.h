/*  al_services.h: services.yaml, the per-service deployment configuration.

    deploy-manager deploys services it finds in services.yaml (its path is the
    `services:` key of airlock.yaml, default STATE_DIR/services.yaml; the format is in
    docs/drivers.md). Each service names its driver ("process" or "exec"), its instance
    count and strategy per environment, the strategy's parameters, the soak and health
    gates, its databases and migration set, the driver's own keys, which map one to
    one onto al_driver_config_t, and what the qa agent checks in staging (`qa:`).

    Loading is strict: an unknown key, a duplicate key, a wrong type, a number out of
    range, an unknown environment name, a process service without command, an exec
    service without start and stop steps, or a key of the other driver is an error
    "services.yaml:LINE:COL: services.demo.canary.steps: must end with 100". Every error
    of the file is collected, one per line, so an operator fixes the file in one go; a
    set is returned only when there is none. `resources:` (cpu_cores, memory) and
    `signals:` (short form monitor | probes | prometheus, or the long form with the
    metric mapping, the Prometheus queries and the canary judge) are read by
    al_services_signals.c. Relative paths (databases, migrations,
    secret files, JUnit reports) are resolved against the file's directory; argv templates are not
    (the driver expands and checks them when it opens).

    A loaded set is immutable: any number of threads may read it. Every pointer in an
    al_service_t is borrowed from the set and lives until al_services_destroy.
*/
#ifndef AL_SERVICES_H_INCLUDED
#define AL_SERVICES_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "deploy/al_driver.h"
#include "proto/airlock.pb-c.h"

#ifdef __cplusplus
extern "C" {
#endif

//  Longest service name ([a-z0-9-], not starting with '-').
#define AL_SERVICE_NAME_MAX                 32
//  Per-environment arrays are indexed by Airlock__Environment (slot 0 is unused).
#define AL_SERVICE_ENV_SLOTS                4

//  Defaults of the optional keys.
#define AL_SERVICE_DEFAULT_INSTANCES        1
#define AL_SERVICE_DEFAULT_BATCH_SIZE       1
#define AL_SERVICE_DEFAULT_MAX_UNAVAILABLE  0
#define AL_SERVICE_DEFAULT_MAX_SURGE        1
#define AL_SERVICE_DEFAULT_CANARY_SOAK_MS   30000
#define AL_SERVICE_DEFAULT_SOAK_MS          300000
#define AL_SERVICE_DEFAULT_PROBE_INTERVAL_MS 1000
#define AL_SERVICE_DEFAULT_READY_TIMEOUT_MS 30000
#define AL_SERVICE_DEFAULT_HEALTH_FAILURES  3
#define AL_SERVICE_DEFAULT_METRICS_PATH     "/metrics"
//  The default canary ramp is 5, 25, 50, 100 percent.
#define AL_SERVICE_DEFAULT_QA_TIMEOUT_MS    2000        // one smoke request
#define AL_SERVICE_DEFAULT_QA_SUITE_TIMEOUT_MS 600000   // one command suite
#define AL_SERVICE_DEFAULT_QA_STATUS        200         // a smoke check without status
//  Longest name of a smoke check or suite ([a-z0-9_-]).
#define AL_SERVICE_QA_NAME_MAX              32

//  How a failed deploy's data is rolled back.
typedef enum {
    AL_SERVICE_DATA_ROLLBACK_DOWN = 0,  // run the migration set's down scripts (default)
    AL_SERVICE_DATA_ROLLBACK_RESTORE    // restore the backup taken before the deploy
} al_service_data_rollback_t;

//  Where the soak's evidence comes from.
typedef enum {
    AL_SERVICE_SIGNALS_MONITOR = 0,     // the monitor's golden signals (default): pre-flight needs a
                                        // live monitor, the soak fresh SoakSignals (fail closed)
    AL_SERVICE_SIGNALS_PROBES,          // liveness and readiness probes only (no /metrics): the
                                        // monitor does not judge it, deploy-manager ignores any
                                        // RollbackTrigger for it
    AL_SERVICE_SIGNALS_PROMETHEUS       // the queries of signals.prometheus against a Prometheus
                                        // HTTP API (the monitor's scrape skips such a service)
} al_service_signals_t;

//  What the CPU and memory metrics of signals.cpu / signals.memory are.
typedef enum { AL_SERVICE_CPU_SECONDS = 0, AL_SERVICE_CPU_PERCENT_GAUGE } al_service_cpu_kind_t;
typedef enum { AL_SERVICE_MEMORY_BYTES = 0, AL_SERVICE_MEMORY_PERCENT_GAUGE } al_service_memory_kind_t;
//  query slots of al_service_prometheus_t.queries
typedef enum { AL_SIGNAL_REQUESTS_PER_SECOND = 0, AL_SIGNAL_ERROR_RATIO, AL_SIGNAL_LATENCY_P50_MS,
               AL_SIGNAL_LATENCY_P99_MS, AL_SIGNAL_CPU_PERCENT, AL_SIGNAL_MEMORY_PERCENT,
               AL_SIGNAL_COUNT } al_signal_t;

//  Which metrics of an instance's /metrics the monitor reads (signals.requests, .latency,
//  .cpu, .memory). Without configuration: the names the official Prometheus client
//  libraries export (AL_SIGNALS_DEFAULT_* of deploy/al_signals.h), every signal required.
typedef struct {
    const char *requests_metric; const char *status_label /* NULL: auto code/status */;
    const char *const *error_statuses /* NULL-terminated; never NULL after load: {"5xx"} */;
    bool requests_required;
    const char *latency_metric; double latency_to_ms; bool latency_required;
    al_service_cpu_kind_t cpu_kind; const char *cpu_metric; bool cpu_required;
    al_service_memory_kind_t memory_kind; const char *memory_metric; bool memory_required;
} al_service_signal_map_t;

//  signals.prometheus: where the provider reads a service's signals.
typedef struct {
    const char *url;                        // NULL unless signals == PROMETHEUS
    int timeout_ms;                         // default 2000
    const char *queries [AL_SIGNAL_COUNT];  // NULL: not configured
} al_service_prometheus_t;

//  signals.compare_to_stable: a canary judged against stable in the same window.
typedef struct {
    bool enabled; double alpha; unsigned min_samples;
    double min_latency_increase_percent; double min_error_increase_points;
} al_service_canary_judge_t;

//  Defaults of signals.prometheus and signals.compare_to_stable.
#define AL_SERVICE_DEFAULT_PROMETHEUS_TIMEOUT_MS    2000
#define AL_SERVICE_DEFAULT_CANARY_ALPHA             0.01
#define AL_SERVICE_DEFAULT_CANARY_MIN_SAMPLES       8
#define AL_SERVICE_DEFAULT_CANARY_MIN_LATENCY_INCREASE_PERCENT 20.0
#define AL_SERVICE_DEFAULT_CANARY_MIN_ERROR_INCREASE_POINTS    1.0

//  One HTTP smoke check of the qa agent, run against every instance of the service.
typedef struct {
    const char *name;                   // [a-z0-9_-]{1,32}, unique in the service
    const char *path;                   // HTTP path with its query, starts with '/'
    int status;                         // the status expected, 100..599; 0: any 2xx (the
                                        // default liveness check)
    const char *body_contains;          // text the body must contain, or NULL
} al_service_smoke_t;

//  One command suite of the qa agent (any test runner), run once per QA request.
typedef struct {
    const char *name;                   // [a-z0-9_-]{1,32}, unique in the service
    const char *const *argv;            // NULL-terminated, used as written (no templates)
    const char *junit;                  // absolute path of the JUnit XML it writes, or NULL
    int timeout_ms;                     // its process group is killed after it
} al_service_suite_t;

//  One security scanner of the qa agent, run once per QA request; its report is read
//  in its format (agents/al_qa_scan.h) and counted against quality_rules.yaml.
typedef enum {
    AL_SERVICE_SCAN_SARIF,              // "sarif": SARIF 2.1.0
    AL_SERVICE_SCAN_BANDIT_JSON         // "bandit-json": bandit -f json
} al_service_scan_format_t;

typedef struct {
    const char *name;                   // [a-z0-9_-]{1,32}, unique among the service's scanners
    const char *const *argv;            // NULL-terminated, used as written (no templates)
    al_service_scan_format_t format;
    const char *format_name;            // as services.yaml spells it
    const char *output;                 // absolute path of the report it writes
    int timeout_ms;                     // its process group is killed after it
} al_service_scanner_t;

//  One service, as loaded: every optional key holds its effective value (the default
//  when the file leaves it out). Plain data, borrowed from its al_services_t.
typedef struct {
    const char *name;                   // [a-z0-9-]{1,32}
    const char *driver;                 // "process" or "exec": al_driver_open's name
    size_t line;                        // 1-based line of its name in the file

    //  Per environment (use the getters below).
    unsigned instances [AL_SERVICE_ENV_SLOTS];
    Airlock__Strategy strategy [AL_SERVICE_ENV_SLOTS];
    const char *database [AL_SERVICE_ENV_SLOTS];    // absolute path, or NULL

    //  rolling
    unsigned batch_size;                // >= 1
    unsigned max_unavailable;           // max_unavailable + max_surge >= 1
    unsigned max_surge;
    //  canary
    const unsigned *canary_steps;       // percents, strictly ascending, last is 100
    size_t canary_step_count;
    int canary_step_soak_ms;            // soak between two canary steps

    //  Gates
    int soak_ms;                        // soak after the rollout, outside production
    //  soak: {duration_ms, reason}: production soaks for quality_rules.yaml's duration
    //  unless shortened here, with a reason the runbook and the approval screen show.
    int soak_shortened_ms;              // 0: not shortened; else >= 1 (never no soak)
    const char *soak_reason;            // NULL unless soak_shortened_ms is set
    int probe_interval_ms;              // health probing during gates and soak
    int ready_timeout_ms;               // readiness gate of one instance
    unsigned health_failures;           // consecutive failed probes that breach
    double cost_per_instance_usd_month; // cost guardrail input, >= 0

    //  Data
    const char *migrations;             // absolute migration set directory, or NULL
    al_service_data_rollback_t data_rollback;
    const char *metrics_path;           // Prometheus path on each instance, starts with '/'
    al_service_signals_t signals;       // soak evidence: monitor (default), probes, prometheus
    double cpu_limit_cores;              // 0: none
    uint64_t memory_limit_bytes;         // 0: none
    al_service_signal_map_t signal_map;
    al_service_prometheus_t prometheus;
    al_service_canary_judge_t canary_judge;

    //  Driver keys (see al_driver_config_t); the other driver's keys are NULL/0.
    const char *const *command;         // process: argv template, NULL-terminated
    const char *const *env;             // process: "NAME=template", NULL-terminated, or NULL
    const char *host;                   // both: IPv4 address
    const char *liveness_path;          // both
    const char *readiness_path;         // both
    int start_timeout_ms;               // process
    int stop_timeout_ms;                // both
    int probe_timeout_ms;               // both
    const al_driver_step_t *steps;      // exec: "start" and "stop" among them, file order
    size_t step_count;
    const char *endpoint;               // exec: template of an instance's base URL, or NULL
    int step_timeout_ms;                // exec
    size_t max_output;                  // exec
    const al_driver_secret_ref_t *secrets;  // both; file references are absolute
    size_t secret_count;

    //  QA (the `qa:` key, read by the qa agent). Without qa.smoke: one check "liveness"
    //  of liveness_path expecting any 2xx. Without qa.suites: none.
    const al_service_smoke_t *qa_smoke;
    size_t qa_smoke_count;
    const al_service_suite_t *qa_suites;
    size_t qa_suite_count;
    const al_service_scanner_t *qa_scanners;    // without qa.scanners: none
    size_t qa_scanner_count;
    int qa_timeout_ms;                  // one smoke request
} al_service_t;

typedef struct _al_services_t al_services_t;

//  Load and validate path. Returns the set, or NULL with every error in error, one per
//  line ("path:line:col: field: what is wrong", or "path: what is wrong" when the file
//  cannot be read); when the buffer is too small the last line says how many errors
//  were left out.
al_services_t *al_services_load (const char *path, char *error, size_t error_size);

//  NULL-safe; sets *self_p to NULL.
void al_services_destroy (al_services_t **self_p);

//  The file it was loaded from, as given to load.
const char *al_services_path (const al_services_t *self);

//  Services in file order.
size_t al_services_count (const al_services_t *self);
const al_service_t *al_services_at (const al_services_t *self, size_t index);
//  The service called name, or NULL.
const al_service_t *al_services_find (const al_services_t *self, const char *name);

//  Instance count and strategy in env; 0 and STRATEGY_UNSPECIFIED for an env that is
//  not development, staging or production.
unsigned al_service_instances (const al_service_t *svc, Airlock__Environment env);
Airlock__Strategy al_service_strategy (const al_service_t *svc, Airlock__Environment env);
//  The service's SQLite database in env (absolute), or NULL when it has none there.
const char *al_service_database (const al_service_t *svc, Airlock__Environment env);

//  Zero config, then fill it for svc with evidence_dir (borrowed). Arrays and strings
//  are borrowed from the service: config lives no longer than its al_services_t.
//  Members the caller owns (state_file, ...) are left zero for it to set.
void al_service_driver_config (const al_service_t *svc, const char *evidence_dir,
                               al_driver_config_t *config);

#ifdef __cplusplus
}
#endif

#endif
