/*  ds_faults.h: the faults demo-service injects, changeable while it runs.

    Faults start from the options and change through POST /fault. ds_faults_t owns the
    CPU-burn thread. All functions are thread-safe.
*/
#ifndef DS_FAULTS_H_INCLUDED
#define DS_FAULTS_H_INCLUDED

#include "ds_options.h"

typedef struct _ds_faults_t ds_faults_t;

//  One consistent set of fault settings.
typedef struct {
    double error_rate;          //  0..1
    int latency_ms;             //  0..60000
    int jitter_ms;              //  0..60000
    int cpu_burn_percent;       //  0..100
    bool fail_readiness;
} ds_fault_values_t;

//  Start with the options' faults and start the CPU-burn thread; NULL if it cannot start.
ds_faults_t *
    ds_faults_new (const ds_options_t *options);

//  Stop the CPU-burn thread and free. NULL-safe; sets *self_p to NULL.
void
    ds_faults_destroy (ds_faults_t **self_p);

//  Copy the current settings.
void
    ds_faults_get (ds_faults_t *self, ds_fault_values_t *values);

//  Replace the current settings.
void
    ds_faults_set (ds_faults_t *self, const ds_fault_values_t *values);

//  Parse one "name=text" setting (names: error_rate, latency_ms, jitter_ms, cpu_burn,
//  fail_readiness) into values. Returns 0, or -1 with error "name: what is wrong".
int
    ds_faults_parse (ds_fault_values_t *values, const char *name, const char *text,
                     char *error, size_t error_size);

//  Draw one request's fate: whether it fails and how long it is delayed.
void
    ds_faults_draw (ds_faults_t *self, bool *fail, int *delay_ms);

#endif
