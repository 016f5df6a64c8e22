/*  ds_metrics.h: demo-service's Prometheus metrics and their text exposition.

    The names the official Prometheus client libraries export, which airlock's monitor
    reads by default: http_requests_total{code,method,path}, the
    http_request_duration_seconds histogram of /work, process_cpu_seconds_total and
    process_resident_memory_bytes read from /proc/self. Beside them, demo-only extras
    that nothing requires: saturation gauges in percent, probe counters, readiness, and
    the optional schema version of a SQLite database. All functions are thread-safe.
*/
#ifndef DS_METRICS_H_INCLUDED
#define DS_METRICS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

typedef struct _ds_metrics_t ds_metrics_t;

//  Routes are the only path labels, so odd URLs cannot grow the series without bound.
typedef enum {
    DS_ROUTE_HEALTHZ,
    DS_ROUTE_READYZ,
    DS_ROUTE_METRICS,
    DS_ROUTE_WORK,
    DS_ROUTE_FAULT,
    DS_ROUTE_OTHER,
    DS_ROUTES
} ds_route_t;

//  Create; version and db_path (may be NULL) are copied. NULL when out of memory.
ds_metrics_t *
    ds_metrics_new (const char *version, long memory_limit_mb, const char *db_path);

//  Free. NULL-safe; sets *self_p to NULL.
void
    ds_metrics_destroy (ds_metrics_t **self_p);

//  The route label of an already-decoded URL path.
ds_route_t
    ds_metrics_route (const char *path);

//  The label text of a route ("/work", ..., "other").
const char *
    ds_metrics_route_name (ds_route_t route);

//  Count one answered request; /work's duration also goes into the histogram.
//  code must be one demo-service answers with (200, 400, 404, 405, 413, 500, 503);
//  method is the request's (GET, HEAD and POST are labels of their own, any other is
//  "other", so clients cannot grow the series either).
void
    ds_metrics_record (ds_metrics_t *self, ds_route_t route, const char *method, unsigned code,
                       double seconds);

//  The exposition (text format 0.0.4) with the server's readiness and requests in
//  flight (the scrape's own included); the caller frees it. NULL when out of memory.
char *
    ds_metrics_render (ds_metrics_t *self, bool ready, int in_flight, size_t *size);

#endif
