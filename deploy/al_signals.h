/*  al_signals.h: golden signals of one service in one environment, from successive
    Prometheus scrapes of its instances.

    The monitor declares the instances it expects, then reports every scrape: a parsed
    exposition (al_signals_scrape_ok) or a failure (al_signals_scrape_failed: HTTP
    error, timeout, unparsable body). al_signals_sample turns the latest state into one
    sample whose fields map 1:1 onto the proto's SoakSignal:

    - traffic: requests/s, per instance the increase of the request counter between
      its two latest good scrapes over the time between them, summed over instances;
    - errors: increase of requests whose status label starts with "5" over the
      increase of all requests (0 when there was no traffic);
    - latency p50/p99: histogram_quantile over the increase of the latency histogram's
      buckets between the same two scrapes (the recent window, not all time), in ms;
    - saturation, the highest instance (one saturated instance is enough to breach):
      CPU from the rate of a CPU-seconds counter between the instance's two latest good
      scrapes (NaN after its first scrape: a rate needs two), in percent of one core or
      of the configured cores; memory from resident bytes over the memory limit (the
      configured one, else the instance's cgroup limit, else the machine's MemTotal).
      Either may instead be a 0..100 gauge of the latest good scrape.
    - errors: a series is an error when its status label (by default "code" when the
      series carries it, else "status") matches a class ("5xx") or code ("429") of
      error_statuses, or starts with error_prefix.
    Increases follow Prometheus' rate(): per series, a decrease is a counter reset and
    the new value is the increase. A failed scrape is a failed health check: it bumps
    the instance's consecutive failures (a good scrape resets them). An instance with
    no report within stale_after_ms, or never, is missing. Only up instances (latest
    report a good scrape, not stale) contribute traffic, errors, latency, saturation.

    NaN in a latency, CPU or memory field means "no evidence" (no request observed, no
    instance up, gauge absent): callers must treat it as missing evidence.

    Not thread-safe: one owner (the monitor's actor) calls it.
*/
#ifndef AL_SIGNALS_H_INCLUDED
#define AL_SIGNALS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "deploy/al_metrics.h"
#include "proto/airlock.pb-c.h"

#ifdef __cplusplus
extern "C" {
#endif

//  The names the official Prometheus client libraries export (Go, Python, Java, ...):
//  what a service is judged on when services.yaml configures nothing.
#define AL_SIGNALS_DEFAULT_REQUESTS_METRIC  "http_requests_total"
#define AL_SIGNALS_DEFAULT_STATUS_LABEL     "code"      // tried first; else "status"
#define AL_SIGNALS_FALLBACK_STATUS_LABEL    "status"
#define AL_SIGNALS_DEFAULT_ERROR_PREFIX     "5"
#define AL_SIGNALS_DEFAULT_LATENCY_METRIC   "http_request_duration_seconds"
#define AL_SIGNALS_DEFAULT_LATENCY_TO_MS    1000.0
#define AL_SIGNALS_DEFAULT_CPU_METRIC       "process_cpu_seconds_total"
#define AL_SIGNALS_DEFAULT_MEMORY_METRIC    "process_resident_memory_bytes"
#define AL_SIGNALS_DEFAULT_STALE_AFTER_MS   30000

//  What cpu_metric and memory_metric are.
typedef enum {
    AL_SIGNALS_CPU_SECONDS = 0,     // a counter of CPU seconds: percent = its rate between two
                                    // good scrapes x 100 (one busy core is 100%), over
                                    // cpu_limit_cores when set
    AL_SIGNALS_CPU_PERCENT_GAUGE    // a 0..100 gauge, read as it is
} al_signals_cpu_kind_t;
typedef enum {
    AL_SIGNALS_MEMORY_BYTES = 0,    // bytes in use: percent of memory_limit_bytes, else of the
                                    // instance's own limit (al_signals_set_memory_limit), else
                                    // of the machine's MemTotal
    AL_SIGNALS_MEMORY_PERCENT_GAUGE // a 0..100 gauge, read as it is
} al_signals_memory_kind_t;

//  Zero-initialised members after stale_after_ms keep the behaviour of the defaults.
typedef struct {
    const char *requests_metric;    // counter of requests, one series per status
    const char *status_label;       // label holding the status code; NULL or "": per series
                                    // "code" when it carries it, else "status"
    const char *error_prefix;       // status values that start with this are errors (used
                                    // when error_statuses is NULL)
    const char *latency_metric;     // histogram family of request durations
    double latency_to_ms;           // factor from the histogram's unit to ms
    const char *cpu_metric;         // see cpu_kind
    const char *memory_metric;      // see memory_kind
    int64_t stale_after_ms;         // an instance with no newer report is missing
    //  Beyond the original members (zero: the defaults).
    const char *const *error_statuses;  // NULL-terminated classes "5xx" or codes "429"; NULL:
                                        // error_prefix
    al_signals_cpu_kind_t cpu_kind;
    al_signals_memory_kind_t memory_kind;
    double cpu_limit_cores;         // 0: percent of one core
    uint64_t memory_limit_bytes;    // 0: the instance's limit, else the machine's
    uint64_t machine_memory_bytes;  // 0: MemTotal of /proc/meminfo, read by al_signals_new
    uint32_t not_required;          // AL_SIGNALS_NO_* bits of signals declared required: false
} al_signals_config_t;

//  One golden-signals sample. The first block is SoakSignal, field for field.
typedef struct {
    const char *service;            // borrowed from the al_signals_t
    uint64_t sequence;              // 1, 2, ... per al_signals_t
    double requests_per_second;
    double error_ratio;             // 0..1
    double latency_p50_ms;          // NaN: no request observed in the window
    double latency_p99_ms;
    double cpu_percent;             // NaN: no instance up with the gauge
    double memory_percent;
    uint32_t instances_up;
    uint32_t instances_total;
    uint32_t consecutive_health_failures;   // the highest over instances
    bool baseline;
    //  Beyond SoakSignal: why up < total.
    uint32_t instances_missing;     // no report within stale_after_ms
    uint32_t instances_failing;     // latest report a failed scrape
    //  SoakSignal's newer fields.
    uint32_t not_required;          // the config's not_required bits
    const char *memory_basis;       // "gauge", "services.yaml", "cgroup", "machine"; "" when
                                    // memory_percent is NaN (static strings)
} al_signals_sample_t;

//  What is known about one instance.
typedef struct {
    const char *name;               // borrowed
    bool up;                        // latest report a good scrape, not stale
    bool missing;                   // no report within stale_after_ms, or never
    uint32_t consecutive_failures;
    int64_t last_report_ms;         // -1 before the first report
    const char *last_error;         // reason of the latest failed scrape, or NULL
} al_signals_instance_t;

typedef struct _al_signals_t al_signals_t;

//  Fill config with the defaults above.
void al_signals_config_default (al_signals_config_t *config);

//  New tracker for service in environment (any strings; copied). config NULL for the
//  defaults; its strings are copied. NULL if out of memory or config is invalid.
al_signals_t *al_signals_new (const char *service, const char *environment,
                              const al_signals_config_t *config);
void al_signals_destroy (al_signals_t **self_p);

const char *al_signals_service (const al_signals_t *self);
const char *al_signals_environment (const al_signals_t *self);

//  Expect instance (e.g. "127.0.0.1:8081"). Returns 0, or -1 if already there / no memory.
int al_signals_add_instance (al_signals_t *self, const char *instance);
//  The memory limit of instance (e.g. its cgroup's memory.max), which memory in bytes is a
//  share of when the config sets none; basis names it ("cgroup"; static or longer-lived
//  than self). bytes 0 forgets it (the machine's MemTotal again). Returns 0, -1 if unknown.
int al_signals_set_memory_limit (al_signals_t *self, const char *instance, uint64_t bytes,
                                 const char *basis);

//  The memory limit of the cgroup (v2) of process pid: /proc/PID/cgroup's "0::PATH", then
//  /sys/fs/cgroup/PATH/memory.max when it is a number, the lowest of it and its
//  ancestors' (the one that applies). 0 when there is none ("max") or it cannot be read.
uint64_t al_signals_cgroup_memory_limit (int pid);
//  The same from a /proc/PID/cgroup file and the cgroup v2 mount (its tests use a tree
//  of their own).
uint64_t al_signals_cgroup_memory_limit_in (const char *cgroup_file, const char *cgroup_root);

//  MemTotal of /proc/meminfo in bytes, 0 if unreadable.
uint64_t al_signals_machine_memory (void);

//  Stop expecting instance and forget its state. Returns 0, or -1 if unknown.
int al_signals_remove_instance (al_signals_t *self, const char *instance);

//  A good scrape of instance at timestamp_ms (the monitor's clock). Always takes
//  ownership of *metrics_p and sets it to NULL. Returns 0, or -1 with "instance: what
//  is wrong" in error if the instance is unknown or timestamp_ms is not after its
//  previous report (the scrape is then dropped).
int al_signals_scrape_ok (al_signals_t *self, const char *instance, int64_t timestamp_ms,
                          al_metrics_t **metrics_p, char *error, size_t error_size);
//  A failed scrape: a failed health check. reason may be NULL. Same errors as above.
int al_signals_scrape_failed (al_signals_t *self, const char *instance, int64_t timestamp_ms,
                              const char *reason, char *error, size_t error_size);

//  The golden signals as of now_ms. Increments the sequence.
void al_signals_sample (al_signals_t *self, int64_t now_ms, bool baseline,
                        al_signals_sample_t *sample);

//  The same over the instances named in ids only (count of them; names not known are
//  ignored): what a deployment is judged on is the instances of the version it brings,
//  not the ones it replaces. Increments the sequence.
void al_signals_sample_of (al_signals_t *self, int64_t now_ms, bool baseline, const char *const *ids,
                           size_t count, al_signals_sample_t *sample);

//  Instances in the order they were added, as of now_ms.
//  The same numbers as al_signals_sample_of, for a comparison that is not published (the
//  canary judge's stable side): the sequence does not move and sample->sequence is 0.
void al_signals_measure_of (al_signals_t *self, int64_t now_ms, const char *const *ids, size_t count,
                            al_signals_sample_t *sample);

size_t al_signals_instance_count (const al_signals_t *self);
bool al_signals_instance_at (const al_signals_t *self, size_t index, int64_t now_ms,
                             al_signals_instance_t *instance);

//  SoakSignal.no_evidence bits.
#define AL_SIGNALS_NO_LATENCY   1u
#define AL_SIGNALS_NO_CPU       2u
#define AL_SIGNALS_NO_MEMORY    4u
//  SoakSignal.not_required only: the request counter (traffic and errors) is not required.
#define AL_SIGNALS_NO_TRAFFIC   8u

//  Copy a sample into a SoakSignal initialised by the caller (airlock__soak_signal__init);
//  message->service borrows sample->service. A NaN field becomes 0 with its no_evidence
//  bit set (the codec refuses NaN on the wire). Sets not_required, memory_basis and
//  source = "scrape" (static strings).
void al_signals_to_proto (const al_signals_sample_t *sample, Airlock__SoakSignal *message);

#ifdef __cplusplus
}
#endif

#endif
