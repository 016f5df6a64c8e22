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
    - saturation: the CPU and memory gauges of the latest good scrape, the highest
      instance (one saturated instance is enough to breach).
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

#define AL_SIGNALS_DEFAULT_REQUESTS_METRIC  "http_requests_total"
#define AL_SIGNALS_DEFAULT_STATUS_LABEL     "code"
#define AL_SIGNALS_DEFAULT_ERROR_PREFIX     "5"
#define AL_SIGNALS_DEFAULT_LATENCY_METRIC   "http_request_duration_seconds"
#define AL_SIGNALS_DEFAULT_LATENCY_TO_MS    1000.0
#define AL_SIGNALS_DEFAULT_CPU_METRIC       "demo_service_cpu_percent"
#define AL_SIGNALS_DEFAULT_MEMORY_METRIC    "demo_service_memory_percent"
#define AL_SIGNALS_DEFAULT_STALE_AFTER_MS   30000

typedef struct {
    const char *requests_metric;    // counter of requests, one series per status
    const char *status_label;       // label of requests_metric holding the status code
    const char *error_prefix;       // status values that start with this are errors
    const char *latency_metric;     // histogram family of request durations
    double latency_to_ms;           // factor from the histogram's unit to ms
    const char *cpu_metric;         // gauge, percent
    const char *memory_metric;      // gauge, percent
    int64_t stale_after_ms;         // an instance with no newer report is missing
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
size_t al_signals_instance_count (const al_signals_t *self);
bool al_signals_instance_at (const al_signals_t *self, size_t index, int64_t now_ms,
                             al_signals_instance_t *instance);

//  SoakSignal.no_evidence bits.
#define AL_SIGNALS_NO_LATENCY   1u
#define AL_SIGNALS_NO_CPU       2u
#define AL_SIGNALS_NO_MEMORY    4u

//  Copy a sample into a SoakSignal initialised by the caller (airlock__soak_signal__init);
//  message->service borrows sample->service. A NaN field becomes 0 with its no_evidence
//  bit set (the codec refuses NaN on the wire).
void al_signals_to_proto (const al_signals_sample_t *sample, Airlock__SoakSignal *message);

#ifdef __cplusplus
}
#endif

#endif
