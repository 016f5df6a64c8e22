/*  al_services_int.h: what al_services.c shares with al_services_signals.c (the
    `resources:` and `signals:` keys of a service). Never installed; not an API.

    A loader walks one file: its al_yaml_t records the errors, its al_services_t owns
    the pool every pointer of an al_service_t comes from. One thread.
*/
#ifndef AL_SERVICES_INT_H_INCLUDED
#define AL_SERVICES_INT_H_INCLUDED

#include "deploy/al_services.h"
#include "deploy/al_yaml.h"

typedef struct {
    al_yaml_t *yaml;            // the document, the errors
    al_services_t *self;
} al_services_loader_t;

//  Zeroed memory owned by the set (freed by al_services_destroy); NULL when out of memory.
void *al_services_pool_alloc (al_services_t *self, size_t size);
//  A copy of text in the pool; NULL when out of memory.
char *al_services_pool_strdup (al_services_t *self, const char *text);
//  A decimal number (plain scalar; no nan, inf or hex) in min..max, else false with an error.
bool al_services_real (al_services_loader_t *L, yaml_node_t *node, const char *field, double min,
                       double max, double *out);

//  al_services_signals.c: the defaults of the signal map, the Prometheus provider and
//  the canary judge; `resources:`; `signals:` (short or long form); and, after every
//  key of the service was read, the checks that tie them together (node: the service's
//  mapping, field: "services.NAME").
void al_services_signal_defaults (al_service_t *svc);
void al_services_resources (al_services_loader_t *L, al_service_t *svc, yaml_node_t *node,
                            const char *field);
void al_services_signals (al_services_loader_t *L, al_service_t *svc, yaml_node_t *node,
                          const char *field);
void al_services_signals_check (al_services_loader_t *L, al_service_t *svc, yaml_node_t *node,
                                const char *field);

#endif
