/*  ds_metrics.c: demo-service's Prometheus metrics and their text exposition.

    A mutex guards the counters, the histogram and the CPU sampling window. Counters
    are kept for a fixed set of routes and status codes (the only ones the server
    answers with), so the exposition is bounded whatever URLs clients send.

    demo_service_cpu_percent is the process's CPU time over wall time, in percent of
    one core, between this scrape and a reference sample between one and two seconds
    old (since start for the first second): /proc/self/stat counts in clock ticks of
    10 ms, and a window of at least a second keeps that granularity under one percent.
    demo_service_memory_percent is the resident set over the configured memory limit.
*/
#include "ds_metrics.h"
#include <assert.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *s_route_names [DS_ROUTES] = {
    "/healthz", "/readyz", "/metrics", "/work", "/fault", "other"
};

static const unsigned s_codes [] = { 200, 400, 404, 405, 413, 500, 503 };
#define S_CODES (sizeof s_codes / sizeof s_codes [0])
static const char *s_methods [] = { "GET", "HEAD", "POST", "other" };
#define S_METHODS (sizeof s_methods / sizeof s_methods [0])

//  Upper bounds in seconds; fine at the low end, where a healthy /work lands.
static const double s_bounds [] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10
};
static const char *s_bound_labels [] = {
    "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10"
};
#define S_BOUNDS (sizeof s_bounds / sizeof s_bounds [0])

//  A point in time and the process's CPU seconds then.
typedef struct {
    double wall;
    double cpu;
} s_sample_t;

struct _ds_metrics_t {
    char *version;
    char *db_path;                  //  NULL: no schema-version gauge
    double memory_limit_bytes;
    double start_time;              //  Unix time at creation
    pthread_mutex_t mutex;
    //  Under mutex:
    uint64_t requests [DS_ROUTES][S_METHODS][S_CODES];
    uint64_t buckets [S_BOUNDS];    //  not cumulative; summed when rendered
    uint64_t work_count;
    double work_sum;
    s_sample_t reference;           //  what cpu_percent is measured against
    s_sample_t latest;              //  the newest sample at least a second after reference
};

static double
s_monotonic (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (double) now.tv_sec + now.tv_nsec / 1e9;
}

//  CPU seconds (user + system) from /proc/self/stat; -1 if unreadable.
static double
s_cpu_seconds (void)
{
    char text [1024];
    FILE *file = fopen ("/proc/self/stat", "r");
    if (!file)
        return -1;
    size_t length = fread (text, 1, sizeof text - 1, file);
    fclose (file);
    text [length] = 0;
    //  The command name (field 2) may hold spaces and parentheses: skip past its end.
    char *cursor = strrchr (text, ')');
    if (!cursor)
        return -1;
    unsigned long long utime = 0, stime = 0;
    //  Fields 3..13 skipped, then utime (14) and stime (15).
    if (sscanf (cursor + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
                &utime, &stime) != 2)
        return -1;
    long ticks = sysconf (_SC_CLK_TCK);
    return ticks > 0 ? (double) (utime + stime) / (double) ticks : -1;
}

//  Resident bytes from /proc/self/statm; -1 if unreadable.
static double
s_resident_bytes (void)
{
    FILE *file = fopen ("/proc/self/statm", "r");
    if (!file)
        return -1;
    unsigned long long size = 0, resident = 0;
    int fields = fscanf (file, "%llu %llu", &size, &resident);
    fclose (file);
    long page = sysconf (_SC_PAGESIZE);
    return fields == 2 && page > 0 ? (double) resident * (double) page : -1;
}

//  PRAGMA user_version of the database, or -1 if it cannot be read.
static long
s_schema_version (const char *path)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = NULL;
    long version = -1;
    if (sqlite3_open_v2 (path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        goto cleanup;
    sqlite3_busy_timeout (db, 200);
    if (sqlite3_prepare_v2 (db, "PRAGMA user_version", -1, &stmt, NULL) != SQLITE_OK)
        goto cleanup;
    if (sqlite3_step (stmt) == SQLITE_ROW)
        version = (long) sqlite3_column_int64 (stmt, 0);
cleanup:
    sqlite3_finalize (stmt);
    sqlite3_close (db);
    return version;
}

ds_metrics_t *
ds_metrics_new (const char *version, long memory_limit_mb, const char *db_path)
{
    assert (version);
    assert (memory_limit_mb > 0);
    ds_metrics_t *self = (ds_metrics_t *) calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->version = strdup (version);
    self->db_path = db_path ? strdup (db_path) : NULL;
    if (!self->version || (db_path && !self->db_path)) {
        free (self->version);
        free (self->db_path);
        free (self);
        return NULL;
    }
    self->memory_limit_bytes = (double) memory_limit_mb * 1024 * 1024;
    struct timespec now;
    clock_gettime (CLOCK_REALTIME, &now);
    self->start_time = (double) now.tv_sec + now.tv_nsec / 1e9;
    pthread_mutex_init (&self->mutex, NULL);
    self->reference = (s_sample_t) { s_monotonic (), s_cpu_seconds () };
    self->latest = self->reference;
    return self;
}

void
ds_metrics_destroy (ds_metrics_t **self_p)
{
    assert (self_p);
    ds_metrics_t *self = *self_p;
    if (!self)
        return;
    pthread_mutex_destroy (&self->mutex);
    free (self->version);
    free (self->db_path);
    free (self);
    *self_p = NULL;
}

ds_route_t
ds_metrics_route (const char *path)
{
    for (int route = 0; route < DS_ROUTE_OTHER; route++)
        if (path && strcmp (path, s_route_names [route]) == 0)
            return (ds_route_t) route;
    return DS_ROUTE_OTHER;
}

const char *
ds_metrics_route_name (ds_route_t route)
{
    assert (route >= 0 && route < DS_ROUTES);
    return s_route_names [route];
}

void
ds_metrics_record (ds_metrics_t *self, ds_route_t route, const char *method, unsigned code,
                   double seconds)
{
    size_t method_index = 0;
    while (method_index < S_METHODS - 1 && !(method && strcmp (s_methods [method_index], method) == 0))
        method_index++;
    assert (self);
    assert (route >= 0 && route < DS_ROUTES);
    size_t code_index = 0;
    while (code_index < S_CODES && s_codes [code_index] != code)
        code_index++;
    assert (code_index < S_CODES);
    pthread_mutex_lock (&self->mutex);
    self->requests [route][method_index][code_index]++;
    if (route == DS_ROUTE_WORK) {
        size_t bucket = 0;
        while (bucket < S_BOUNDS && seconds > s_bounds [bucket])
            bucket++;
        if (bucket < S_BOUNDS)
            self->buckets [bucket]++;
        self->work_count++;
        self->work_sum += seconds;
    }
    pthread_mutex_unlock (&self->mutex);
}

char *
ds_metrics_render (ds_metrics_t *self, bool ready, int in_flight, size_t *size)
{
    assert (self && size);
    char *text = NULL;
    size_t length = 0;
    FILE *out = open_memstream (&text, &length);
    if (!out)
        return NULL;

    //  Sample the process first, then copy the counters under the mutex.
    double wall = s_monotonic ();
    double cpu = s_cpu_seconds ();
    double resident = s_resident_bytes ();
    long schema = self->db_path ? s_schema_version (self->db_path) : 0;

    uint64_t requests [DS_ROUTES][S_METHODS][S_CODES];
    uint64_t buckets [S_BOUNDS];
    uint64_t work_count;
    double work_sum;
    double cpu_percent = 0;
    pthread_mutex_lock (&self->mutex);
    memcpy (requests, self->requests, sizeof requests);
    memcpy (buckets, self->buckets, sizeof buckets);
    work_count = self->work_count;
    work_sum = self->work_sum;
    if (cpu >= 0 && self->reference.cpu >= 0) {
        if (wall - self->latest.wall >= 1.0) {
            self->reference = self->latest;
            self->latest = (s_sample_t) { wall, cpu };
        }
        double elapsed = wall - self->reference.wall;
        if (elapsed > 0)
            cpu_percent = 100.0 * (cpu - self->reference.cpu) / elapsed;
    }
    pthread_mutex_unlock (&self->mutex);
    if (cpu_percent < 0)
        cpu_percent = 0;

    fprintf (out, "# HELP demo_service_info Version of this demo-service instance.\n"
                  "# TYPE demo_service_info gauge\n"
                  "demo_service_info{version=\"%s\"} 1\n", self->version);
    fprintf (out, "# HELP demo_service_ready Whether /readyz answers 200.\n"
                  "# TYPE demo_service_ready gauge\n"
                  "demo_service_ready %d\n", ready ? 1 : 0);
    fprintf (out, "# HELP demo_service_requests_in_flight Requests being answered, this scrape included.\n"
                  "# TYPE demo_service_requests_in_flight gauge\n"
                  "demo_service_requests_in_flight %d\n", in_flight);

    //  Served traffic and the probes are two families: the golden signals are computed from
    //  http_requests_total, and a /readyz answering 503 while an instance warms up (or the
    //  monitor's own scrapes) is not an error or traffic a user saw, as an ingress or a mesh
    //  would not count the kubelet's probes either.
    fprintf (out, "# HELP http_requests_total HTTP requests served (probes and /metrics excluded), "
                  "by status code, method and route.\n"
                  "# TYPE http_requests_total counter\n");
    for (int route = DS_ROUTE_METRICS + 1; route < DS_ROUTES; route++)
        for (size_t method = 0; method < S_METHODS; method++)
            for (size_t code = 0; code < S_CODES; code++)
                if (requests [route][method][code])
                    fprintf (out, "http_requests_total{code=\"%u\",method=\"%s\",path=\"%s\"} %llu\n",
                             s_codes [code], s_methods [method], s_route_names [route],
                             (unsigned long long) requests [route][method][code]);
    fprintf (out, "# HELP demo_service_probe_requests_total /healthz, /readyz and /metrics requests, "
                  "by status code and route.\n"
                  "# TYPE demo_service_probe_requests_total counter\n");
    for (int route = DS_ROUTE_HEALTHZ; route <= DS_ROUTE_METRICS; route++)
        for (size_t code = 0; code < S_CODES; code++) {
            uint64_t count = 0;
            for (size_t method = 0; method < S_METHODS; method++)
                count += requests [route][method][code];
            if (count)
                fprintf (out, "demo_service_probe_requests_total{code=\"%u\",path=\"%s\"} %llu\n",
                         s_codes [code], s_route_names [route], (unsigned long long) count);
        }

    fprintf (out, "# HELP http_request_duration_seconds Time to answer /work, in seconds.\n"
                  "# TYPE http_request_duration_seconds histogram\n");
    uint64_t cumulative = 0;
    for (size_t bucket = 0; bucket < S_BOUNDS; bucket++) {
        cumulative += buckets [bucket];
        fprintf (out, "http_request_duration_seconds_bucket{path=\"/work\",le=\"%s\"} %llu\n",
                 s_bound_labels [bucket], (unsigned long long) cumulative);
    }
    fprintf (out, "http_request_duration_seconds_bucket{path=\"/work\",le=\"+Inf\"} %llu\n"
                  "http_request_duration_seconds_sum{path=\"/work\"} %.9g\n"
                  "http_request_duration_seconds_count{path=\"/work\"} %llu\n",
             (unsigned long long) work_count, work_sum, (unsigned long long) work_count);

    if (cpu >= 0)
        fprintf (out, "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
                      "# TYPE process_cpu_seconds_total counter\n"
                      "process_cpu_seconds_total %.2f\n", cpu);
    if (resident >= 0)
        fprintf (out, "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
                      "# TYPE process_resident_memory_bytes gauge\n"
                      "process_resident_memory_bytes %.0f\n", resident);
    fprintf (out, "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n"
                  "# TYPE process_start_time_seconds gauge\n"
                  "process_start_time_seconds %.3f\n", self->start_time);
    fprintf (out, "# HELP demo_service_cpu_percent CPU use in percent of one core, over the last 1-2 s.\n"
                  "# TYPE demo_service_cpu_percent gauge\n"
                  "demo_service_cpu_percent %.2f\n", cpu_percent);
    if (resident >= 0)
        fprintf (out, "# HELP demo_service_memory_percent Resident memory in percent of the memory limit.\n"
                      "# TYPE demo_service_memory_percent gauge\n"
                      "demo_service_memory_percent %.2f\n", 100.0 * resident / self->memory_limit_bytes);
    fprintf (out, "# HELP demo_service_memory_limit_bytes The memory limit memory_percent refers to.\n"
                  "# TYPE demo_service_memory_limit_bytes gauge\n"
                  "demo_service_memory_limit_bytes %.0f\n", self->memory_limit_bytes);
    if (self->db_path)
        fprintf (out, "# HELP demo_service_schema_version PRAGMA user_version of the database, -1 if unreadable.\n"
                      "# TYPE demo_service_schema_version gauge\n"
                      "demo_service_schema_version %ld\n", schema);

    if (fclose (out) != 0) {
        free (text);
        return NULL;
    }
    *size = length;
    return text;
}
