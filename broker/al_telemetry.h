/*  al_telemetry.h: the process's operator metrics, rendered as a Prometheus text exposition.

    A registry holds metric families (counter, gauge, age gauge, histogram), each with
    zero to two label names, and their series (one per combination of label values).
    Hooks in the broker's hot path and in the agents update a series with atomic
    operations only: no lock and no formatting happens until a scrape renders the
    registry (al_telemetry_render). Looking a family or a series up is a lock-free walk of
    an append-only list; only the first use of a new name or label combination takes the
    registry's mutex, to append. Nothing is removed before the registry is destroyed, so
    a series pointer stays valid for the registry's lifetime.

    One registry per process (al_telemetry_process) is what the broker, the agents and the
    metrics endpoint (al_telemetry_server) share: the hooks are one line each and a
    library never needs to be handed a registry. Tests may create their own.

    Threading: every function may be called from any thread.
*/
#ifndef AL_TELEMETRY_H_INCLUDED
#define AL_TELEMETRY_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _al_telemetry_t al_telemetry_t;
typedef struct _al_telemetry_series_t al_telemetry_series_t;

typedef enum {
    AL_TELEMETRY_COUNTER,      // monotonic: al_telemetry_add
    AL_TELEMETRY_GAUGE,        // al_telemetry_set
    AL_TELEMETRY_AGE,          // a gauge of the seconds since the wall-clock time of al_telemetry_touch
    AL_TELEMETRY_HISTOGRAM,    // al_telemetry_observe into the registry's fixed buckets
} al_telemetry_kind_t;

al_telemetry_t *al_telemetry_new (void);
void al_telemetry_destroy (al_telemetry_t **self_p);

//  The process-wide registry, created on first use and never destroyed.
al_telemetry_t *al_telemetry_process (void);

//  The series of family `name` (created with help, kind and the label names on first
//  use; label names NULL when unused) for label values value1, value2 (NULL when the
//  family has fewer labels). A name already registered with another kind or label
//  count is a programming error (assert). Label values are escaped when rendered.
//  Returns NULL only when out of memory; the update functions accept NULL.
//  Histograms use bucket bounds chosen for durations in seconds (100 µs .. 10 s)
//  unless the name ends in "_size" (1 .. 65536, powers of 4).
al_telemetry_series_t *al_telemetry_series (al_telemetry_t *self, al_telemetry_kind_t kind, const char *name,
                                      const char *help, const char *label1, const char *value1,
                                      const char *label2, const char *value2);

void al_telemetry_add (al_telemetry_series_t *series, uint64_t amount);
void al_telemetry_set (al_telemetry_series_t *series, double value);
//  Age gauges: remember now (wall clock) as the time the age counts from.
void al_telemetry_touch (al_telemetry_series_t *series);
void al_telemetry_observe (al_telemetry_series_t *series, double value);
//  The current value (counter, gauge; an age gauge's seconds; a histogram's count).
double al_telemetry_value (al_telemetry_series_t *series);

//  The text exposition (version 0.0.4) of every family: HELP, TYPE, samples. Caller frees.
char *al_telemetry_render (al_telemetry_t *self);

#ifdef __cplusplus
}
#endif

#endif
