/*  ds_options.h: demo-service's settings, from command-line flags over environment.

    Every setting has a flag and an environment variable; a flag wins over the
    variable, the variable over the built-in default. Parsing checks ranges and never
    exits: the caller decides what a bad value means (main prints it and exits 2).
*/
#ifndef DS_OPTIONS_H_INCLUDED
#define DS_OPTIONS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define DS_VERSION_MAX 64

typedef struct {
    int port;                       //  0 = let the kernel pick (printed on stdout)
    char version [DS_VERSION_MAX];  //  reported by /healthz and demo_service_info
    double error_rate;              //  0..1, share of /work answered with 500
    int latency_ms;                 //  added to every /work
    int jitter_ms;                  //  plus a uniform 0..jitter_ms
    int cpu_burn_percent;           //  0..100 of one core, spun by a thread
    bool fail_readiness;            //  /readyz answers 503
    int ready_delay_ms;             //  /readyz answers 503 this long after start
    bool crash_at_start;            //  exit 3 before listening
    long memory_limit_mb;           //  denominator of demo_service_memory_percent
    int shutdown_timeout_ms;        //  longest wait for in-flight requests on SIGTERM
    const char *db_path;            //  SQLite database whose user_version is reported
    bool verbose;                   //  one stderr line per request
} ds_options_t;

//  Outcome of ds_options_parse.
typedef enum {
    DS_OPTIONS_OK = 0,
    DS_OPTIONS_HELP = 1,
    DS_OPTIONS_ERROR = -1
} ds_options_result_t;

//  Fill options from the environment, then argv. On DS_OPTIONS_ERROR, error holds
//  "FLAG: what is wrong". db_path points into argv or the environment.
ds_options_result_t
    ds_options_parse (ds_options_t *options, int argc, char **argv,
                      char *error, size_t error_size);

//  Print the --help text.
void
    ds_options_usage (FILE *out);

#endif
