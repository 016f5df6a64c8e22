/*  al_services_int.h: what the files of the services.yaml loader share: al_services.c
    (the file, a service's keys), al_services_values.c (typed values, the pool),
    al_services_sections.c (rolling, soak, canary, steps, env, secrets),
    al_services_qa.c (qa:) and al_services_signals.c (resources:, signals:).
    Never installed; not an API.

    A loader walks one file: its al_yaml_t records the errors, its al_services_t owns
    the pool every pointer of an al_service_t comes from. One thread.
*/
#ifndef AL_SERVICES_INT_H_INCLUDED
#define AL_SERVICES_INT_H_INCLUDED

#include "deploy/al_services.h"
#include "base/al_yaml.h"

typedef struct {
    al_yaml_t *yaml;            // the document, the errors
    al_services_t *self;
} al_services_loader_t;

//  Ranges of the numbers (inclusive).
#define AL_SERVICES_MAX_INSTANCES     1000
#define AL_SERVICES_MAX_DAY_MS        86400000
#define AL_SERVICES_MAX_HOUR_MS       3600000
#define AL_SERVICES_MAX_SOAK_MS       (7 * AL_SERVICES_MAX_DAY_MS)
#define AL_SERVICES_MAX_BODY_TEXT     1024    // qa smoke body_contains

//  A loaded set (the pool is freed by al_services_destroy).
struct _al_services_t {
    char *path;
    al_service_t *services;
    size_t count;
    void **blocks;              // the pool: everything the services point to
    size_t block_count;
    size_t block_capacity;
};

//  What al_services_per_env reads for each environment.
typedef enum {
    AL_SERVICES_ENV_UNSIGNED, AL_SERVICES_ENV_STRATEGY, AL_SERVICES_ENV_PATH
} al_services_env_kind_t;

//  A list of mappings whose keys are as allowed and required (al_yaml_check_map), each
//  read by read_entry into a pooled, zeroed array of elements of size bytes. The array,
//  with its length in *count_p, when every entry was read without error; else NULL.
typedef bool (al_services_entry_fn) (al_services_loader_t *L, void *entries, size_t index,
                                     yaml_node_t *entry, const char *item);

//  al_services_values.c: the pool.
//  Zeroed memory owned by the set (freed by al_services_destroy); NULL when out of memory.
void *al_services_pool_alloc (al_services_t *self, size_t size);
//  A copy of text in the pool; NULL when out of memory.
char *al_services_pool_strdup (al_services_t *self, const char *text);
//  A decimal number (plain scalar; no nan, inf or hex) in min..max, else false with an error.
bool al_services_real (al_services_loader_t *L, yaml_node_t *node, const char *field, double min,
                       double max, double *out);

//  al_services_values.c: typed values of one key (errors recorded, walk goes on),
//  names, lists of strings, and values per environment.
const char *al_services_abs_path (al_services_loader_t *L, yaml_node_t *node,
                                  const char *field);
const char *al_services_http_path (al_services_loader_t *L, yaml_node_t *node,
                                   const char *field);
void al_services_int_field (al_services_loader_t *L, yaml_node_t *node, const char *field,
                            long long min, long long max, int *out);
bool al_services_integer_into_int (al_services_loader_t *L, yaml_node_t *node,
                                   const char *field, long long min, long long max, int *out);
bool al_services_is_name (const char *value, size_t max);
bool al_services_is_service_name (const char *value);
bool al_services_is_variable (const char *value);
void al_services_per_env (al_services_loader_t *L, al_service_t *svc,
                          al_services_env_kind_t kind, yaml_node_t *node, const char *field);
const char *const *al_services_strv (al_services_loader_t *L, yaml_node_t *node,
                                     const char *field, bool is_argv);
void al_services_unsigned_field (al_services_loader_t *L, yaml_node_t *node, const char *field,
                                 long long min, long long max, unsigned *out);

//  al_services_sections.c: the sections of a service, and a list of mappings read
//  entry by entry.
void al_services_canary (al_services_loader_t *L, al_service_t *svc, yaml_node_t *node,
                         const char *field);
void *al_services_entry_list (al_services_loader_t *L, yaml_node_t *node, const char *field,
                              size_t size, const char *const *allowed,
                              const char *const *required, al_services_entry_fn *read_entry,
                              size_t *count_p);
void al_services_env_list (al_services_loader_t *L, al_service_t *svc, yaml_node_t *node,
                           const char *field);
void al_services_rolling (al_services_loader_t *L, al_service_t *svc, yaml_node_t *node,
                          const char *field);
void al_services_secrets (al_services_loader_t *L, al_service_t *svc, yaml_node_t *node,
                          const char *field);
void al_services_soak (al_services_loader_t *L, al_service_t *svc, yaml_node_t *node,
                       const char *field);
void al_services_steps (al_services_loader_t *L, al_service_t *svc, yaml_node_t *node,
                        const char *field);

//  al_services_qa.c: qa: (smoke, suites, scanners) and its defaults once the walk ends.
void al_services_qa (al_services_loader_t *L, al_service_t *svc, yaml_node_t *node,
                     const char *field);
void al_services_qa_defaults (al_services_loader_t *L, al_service_t *svc);

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
