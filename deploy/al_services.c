/*  al_services.c: load and validate services.yaml: the file, its root, each service
    and the keys its driver allows, then the accessors. The values, sections, qa: and
    signals: of a service are read by al_services_values.c, al_services_sections.c,
    al_services_qa.c and al_services_signals.c (shared internals: al_services_int.h).

    The file is read whole (at most S_MAX_FILE_SIZE bytes), parsed into a libyaml
    document and walked against the fixed schema of docs/drivers.md with base/al_yaml,
    which records every problem as "path:line:col: field.path: what is wrong" and goes
    on, so one load reports every error of the file, and lets a mapping or list be
    walked once (an alias may stand for a scalar only). A set is returned only when
    there was no error.

    Everything a loaded set points to is allocated from its own pool (blocks freed
    together by destroy), so an al_service_t is plain data with borrowed pointers.
    Immutable after load; no global state.
*/
#include "deploy/al_services.h"
#include "deploy/al_services_int.h"
#include "base/al_yaml.h"
#include "proto/al_codec.h"
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "deploy/al_services_int.h"
#include "base/al_yaml.h"
#include "proto/al_codec.h"
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define S_MAX_FILE_SIZE     (4u * 1024 * 1024)

static const unsigned s_default_canary_steps [] = { 5, 25, 50, 100 };
typedef al_services_loader_t s_loader_t;

//  The keys of a service and which driver owns each.
typedef enum { S_BOTH, S_PROCESS, S_EXEC } s_owner_t;

typedef struct {
    const char *name;
    s_owner_t owner;
} s_service_key_t;

static const s_service_key_t s_service_keys [] = {
    { "driver", S_BOTH }, { "instances", S_BOTH }, { "strategy", S_BOTH },
    { "rolling", S_BOTH }, { "canary", S_BOTH }, { "soak_ms", S_BOTH },
    { "probe_interval_ms", S_BOTH }, { "ready_timeout_ms", S_BOTH },
    { "health_failures", S_BOTH }, { "cost_per_instance_usd_month", S_BOTH },
    { "database", S_BOTH }, { "migrations", S_BOTH }, { "data_rollback", S_BOTH },
    { "metrics_path", S_BOTH }, { "signals", S_BOTH }, { "resources", S_BOTH }, { "host", S_BOTH }, { "liveness_path", S_BOTH },
    { "readiness_path", S_BOTH }, { "stop_timeout_ms", S_BOTH },
    { "probe_timeout_ms", S_BOTH }, { "secrets", S_BOTH },
    { "command", S_PROCESS }, { "env", S_PROCESS }, { "start_timeout_ms", S_PROCESS },
    { "steps", S_EXEC }, { "endpoint", S_EXEC }, { "step_timeout_ms", S_EXEC },
    { "max_output", S_EXEC },
    { "qa", S_BOTH }, { "soak", S_BOTH },
};
#define S_SERVICE_KEY_COUNT (sizeof s_service_keys / sizeof s_service_keys [0])


//  ---------------------------------------------------------------------------------
//  A service

static const s_service_key_t *
s_service_key (const char *name)
{
    for (size_t i = 0; i < S_SERVICE_KEY_COUNT; i++)
        if (strcmp (s_service_keys [i].name, name) == 0)
            return &s_service_keys [i];
    return NULL;
}

static void
s_defaults (al_service_t *svc)
{
    for (int env = 1; env < AL_SERVICE_ENV_SLOTS; env++) {
        svc->instances [env] = AL_SERVICE_DEFAULT_INSTANCES;
        svc->strategy [env] = AIRLOCK__STRATEGY__STRATEGY_ROLLING;
    }
    svc->batch_size = AL_SERVICE_DEFAULT_BATCH_SIZE;
    svc->max_unavailable = AL_SERVICE_DEFAULT_MAX_UNAVAILABLE;
    svc->max_surge = AL_SERVICE_DEFAULT_MAX_SURGE;
    svc->canary_steps = s_default_canary_steps;
    svc->canary_step_count = sizeof s_default_canary_steps / sizeof s_default_canary_steps [0];
    svc->canary_step_soak_ms = AL_SERVICE_DEFAULT_CANARY_SOAK_MS;
    svc->soak_ms = AL_SERVICE_DEFAULT_SOAK_MS;
    svc->probe_interval_ms = AL_SERVICE_DEFAULT_PROBE_INTERVAL_MS;
    svc->ready_timeout_ms = AL_SERVICE_DEFAULT_READY_TIMEOUT_MS;
    svc->health_failures = AL_SERVICE_DEFAULT_HEALTH_FAILURES;
    svc->data_rollback = AL_SERVICE_DATA_ROLLBACK_DOWN;
    svc->signals = AL_SERVICE_SIGNALS_MONITOR;
    svc->metrics_path = AL_SERVICE_DEFAULT_METRICS_PATH;
    svc->host = AL_DRIVER_DEFAULT_HOST;
    svc->liveness_path = AL_DRIVER_DEFAULT_LIVENESS_PATH;
    svc->readiness_path = AL_DRIVER_DEFAULT_READINESS_PATH;
    svc->stop_timeout_ms = AL_DRIVER_DEFAULT_STOP_TIMEOUT_MS;
    svc->probe_timeout_ms = AL_PROBE_DEFAULT_TIMEOUT_MS;
    svc->qa_timeout_ms = AL_SERVICE_DEFAULT_QA_TIMEOUT_MS;
    al_services_signal_defaults (svc);
}

//  One key of a service whose driver allows it.
static void
s_service_value (s_loader_t *L, al_service_t *svc, const char *name, yaml_node_t *value,
                 const char *field)
{
    if (strcmp (name, "driver") == 0)
        ;   // read before the walk
    else
    if (strcmp (name, "instances") == 0)
        al_services_per_env (L, svc, AL_SERVICES_ENV_UNSIGNED, value, field);
    else
    if (strcmp (name, "strategy") == 0)
        al_services_per_env (L, svc, AL_SERVICES_ENV_STRATEGY, value, field);
    else
    if (strcmp (name, "database") == 0)
        al_services_per_env (L, svc, AL_SERVICES_ENV_PATH, value, field);
    else
    if (strcmp (name, "rolling") == 0)
        al_services_rolling (L, svc, value, field);
    else
    if (strcmp (name, "canary") == 0)
        al_services_canary (L, svc, value, field);
    else
    if (strcmp (name, "soak_ms") == 0)
        al_services_int_field (L, value, field, 0, AL_SERVICES_MAX_SOAK_MS, &svc->soak_ms);
    else
    if (strcmp (name, "soak") == 0)
        al_services_soak (L, svc, value, field);
    else
    if (strcmp (name, "probe_interval_ms") == 0)
        al_services_int_field (L, value, field, 50, 600000, &svc->probe_interval_ms);
    else
    if (strcmp (name, "ready_timeout_ms") == 0)
        al_services_int_field (L, value, field, 100, AL_SERVICES_MAX_HOUR_MS, &svc->ready_timeout_ms);
    else
    if (strcmp (name, "health_failures") == 0)
        al_services_unsigned_field (L, value, field, 1, 1000, &svc->health_failures);
    else
    if (strcmp (name, "cost_per_instance_usd_month") == 0)
        al_services_real (L, value, field, 0, 1e9, &svc->cost_per_instance_usd_month);
    else
    if (strcmp (name, "migrations") == 0)
        svc->migrations = al_services_abs_path (L, value, field);
    else
    if (strcmp (name, "data_rollback") == 0) {
        const char *mode = al_yaml_string (L->yaml, value, field, false);
        if (mode && strcmp (mode, "down") == 0)
            svc->data_rollback = AL_SERVICE_DATA_ROLLBACK_DOWN;
        else
        if (mode && strcmp (mode, "restore") == 0)
            svc->data_rollback = AL_SERVICE_DATA_ROLLBACK_RESTORE;
        else
        if (mode)
            al_yaml_error (L->yaml, value, field, "unknown mode '%.64s' (down, restore)", mode);
    }
    else
    if (strcmp (name, "signals") == 0)
        al_services_signals (L, svc, value, field);
    else
    if (strcmp (name, "resources") == 0)
        al_services_resources (L, svc, value, field);
    else
    if (strcmp (name, "metrics_path") == 0 || strcmp (name, "liveness_path") == 0
    ||  strcmp (name, "readiness_path") == 0) {
        const char *path = al_services_http_path (L, value, field);
        const char **out = name [0] == 'm' ? &svc->metrics_path
                         : name [0] == 'l' ? &svc->liveness_path : &svc->readiness_path;
        if (path)
            *out = path;
    }
    else
    if (strcmp (name, "host") == 0) {
        const char *host = al_yaml_string (L->yaml, value, field, false);
        struct in_addr address;
        if (host && inet_pton (AF_INET, host, &address) != 1)
            al_yaml_error (L->yaml, value, field, "'%.64s' is not an IPv4 address", host);
        else
        if (host && !(svc->host = al_services_pool_strdup (L->self, host)))
            al_yaml_out_of_memory (L->yaml);
    }
    else
    if (strcmp (name, "stop_timeout_ms") == 0)
        al_services_int_field (L, value, field, 1, AL_SERVICES_MAX_HOUR_MS, &svc->stop_timeout_ms);
    else
    if (strcmp (name, "probe_timeout_ms") == 0)
        al_services_int_field (L, value, field, 10, 600000, &svc->probe_timeout_ms);
    else
    if (strcmp (name, "secrets") == 0)
        al_services_secrets (L, svc, value, field);
    else
    if (strcmp (name, "command") == 0)
        svc->command = al_services_strv (L, value, field, true);
    else
    if (strcmp (name, "env") == 0)
        al_services_env_list (L, svc, value, field);
    else
    if (strcmp (name, "start_timeout_ms") == 0)
        al_services_int_field (L, value, field, 100, AL_SERVICES_MAX_HOUR_MS, &svc->start_timeout_ms);
    else
    if (strcmp (name, "steps") == 0)
        al_services_steps (L, svc, value, field);
    else
    if (strcmp (name, "endpoint") == 0) {
        const char *endpoint = al_yaml_string (L->yaml, value, field, false);
        if (endpoint && !(svc->endpoint = al_services_pool_strdup (L->self, endpoint)))
            al_yaml_out_of_memory (L->yaml);
    }
    else
    if (strcmp (name, "step_timeout_ms") == 0)
        al_services_int_field (L, value, field, 100, AL_SERVICES_MAX_DAY_MS, &svc->step_timeout_ms);
    else
    if (strcmp (name, "max_output") == 0) {
        long long bytes;
        if (al_yaml_integer (L->yaml, value, field, 1024, 64LL * 1024 * 1024, &bytes))
            svc->max_output = (size_t) bytes;
    }
    else
    if (strcmp (name, "qa") == 0)
        al_services_qa (L, svc, value, field);
    else
        assert (false);     // every key of s_service_keys is handled above
}

static void
s_service (s_loader_t *L, al_service_t *svc, yaml_node_t *key, yaml_node_t *node)
{
    const char *name = al_yaml_scalar (key);
    assert (name);          // al_yaml_first_key let only scalar keys through
    char field [AL_YAML_FIELD_SIZE];
    snprintf (field, sizeof field, "services.%.64s", name);
    svc->line = (size_t) key->start_mark.line + 1;
    if (!al_services_is_service_name (name))
        al_yaml_error (L->yaml, key, field, "not a service name: 1 to %d of [a-z0-9-], not "
                       "starting with '-'", AL_SERVICE_NAME_MAX);
    else
    if (!(svc->name = al_services_pool_strdup (L->self, name)))
        al_yaml_out_of_memory (L->yaml);
    s_defaults (svc);
    if (!al_yaml_want_mapping (L->yaml, node, field))
        return;

    //  The driver decides which keys are allowed: read it first.
    s_owner_t driver = S_BOTH;
    yaml_node_t *value = al_yaml_get (L->yaml, node, "driver");
    char sub [AL_YAML_FIELD_SIZE];
    al_yaml_field_key (sub, field, "driver");
    if (!value)
        al_yaml_error (L->yaml, node, field, "missing key 'driver' (process or exec)");
    else {
        const char *text = al_yaml_string (L->yaml, value, sub, false);
        if (text && strcmp (text, "process") == 0)
            driver = S_PROCESS;
        else
        if (text && strcmp (text, "exec") == 0)
            driver = S_EXEC;
        else
        if (text)
            al_yaml_error (L->yaml, value, sub, "unknown driver '%.64s' (process, exec)", text);
        svc->driver = driver == S_PROCESS ? "process" : driver == S_EXEC ? "exec" : NULL;
    }
    for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
         pair < node->data.mapping.pairs.top; pair++) {
        if (!al_yaml_first_key (L->yaml, node, pair, field))
            continue;
        yaml_node_t *key_node = al_yaml_node (L->yaml, pair->key);
        const char *key_name = al_yaml_scalar (key_node);
        const s_service_key_t *known = s_service_key (key_name);
        if (!known) {
            al_yaml_error (L->yaml, key_node, field, "unknown key '%.64s'", key_name);
            continue;
        }
        al_yaml_field_key (sub, field, key_name);
        if (known->owner != S_BOTH && driver != S_BOTH && known->owner != driver) {
            al_yaml_error (L->yaml, key_node, sub, "a key of the %s driver; this service uses the "
                           "%s driver", known->owner == S_PROCESS ? "process" : "exec", svc->driver);
            continue;
        }
        s_service_value (L, svc, key_name, al_yaml_node (L->yaml, pair->value), sub);
    }

    al_services_qa_defaults (L, svc);

    //  What each driver needs, and its defaults.
    if (driver == S_PROCESS) {
        if (!al_yaml_get (L->yaml, node, "command"))
            al_yaml_error (L->yaml, node, field, "a process service needs 'command' (the argv of "
                           "an instance)");
        if (!svc->start_timeout_ms)
            svc->start_timeout_ms = AL_DRIVER_DEFAULT_START_TIMEOUT_MS;
    }
    if (driver == S_EXEC) {
        if (!al_yaml_get (L->yaml, node, "steps"))
            al_yaml_error (L->yaml, node, field, "an exec service needs 'steps' with 'start' and "
                           "'stop'");
        if (!svc->step_timeout_ms)
            svc->step_timeout_ms = AL_DRIVER_DEFAULT_STEP_TIMEOUT_MS;
        if (!svc->max_output)
            svc->max_output = AL_DRIVER_DEFAULT_MAX_OUTPUT;
        //  The monitor scrapes the instances the process driver registers; an exec
        //  service's instances are the operator's platform's, so its soak evidence is
        //  the probes unless told otherwise, and "monitor" would fail every soak closed.
        if (!al_yaml_get (L->yaml, node, "signals"))
            svc->signals = AL_SERVICE_SIGNALS_PROBES;
        else
        if (svc->signals == AL_SERVICE_SIGNALS_MONITOR)
            al_yaml_error (L->yaml, al_yaml_get (L->yaml, node, "signals"), field, "signals: "
                           "monitor needs the process driver (the monitor scrapes the instances "
                           "it registers); an exec service uses signals: probes");
    }
    al_services_signals_check (L, svc, node, field);
}

//  ---------------------------------------------------------------------------------
//  The file

static void
s_root (s_loader_t *L, yaml_node_t *root)
{
    static const char *const allowed [] = { "version", "services", NULL };
    static const char *const required [] = { "version", "services", NULL };
    if (!al_yaml_check_map (L->yaml, root, NULL, allowed, required))
        return;
    yaml_node_t *version = al_yaml_get (L->yaml, root, "version");
    long long number;
    if (version && al_yaml_integer (L->yaml, version, "version", 1, 1000000, &number)
    &&  number != 1)
        al_yaml_error (L->yaml, version, "version", "unsupported version %lld (this airlock "
                       "reads 1)", number);
    yaml_node_t *services = al_yaml_get (L->yaml, root, "services");
    if (!services || !al_yaml_want_mapping (L->yaml, services, "services"))
        return;
    size_t count = (size_t) (services->data.mapping.pairs.top - services->data.mapping.pairs.start);
    L->self->services = al_services_pool_alloc (L->self, count * sizeof (al_service_t));
    if (!L->self->services) {
        al_yaml_out_of_memory (L->yaml);
        return;
    }
    for (yaml_node_pair_t *pair = services->data.mapping.pairs.start;
         pair < services->data.mapping.pairs.top; pair++) {
        if (!al_yaml_first_key (L->yaml, services, pair, "services"))
            continue;
        al_service_t *svc = &L->self->services [L->self->count++];
        s_service (L, svc, al_yaml_node (L->yaml, pair->key), al_yaml_node (L->yaml, pair->value));
    }
}

al_services_t *
al_services_load (const char *path, char *error, size_t error_size)
{
    assert (path);
    s_loader_t loader = { .yaml = al_yaml_new (path, error, error_size) };
    s_loader_t *L = &loader;
    if (!L->yaml)
        return NULL;
    L->self = calloc (1, sizeof (al_services_t));
    if (!L->self || !(L->self->path = strdup (path)))
        al_yaml_out_of_memory (L->yaml);
    else {
        yaml_node_t *root = al_yaml_load (L->yaml, S_MAX_FILE_SIZE,
                                          "empty file: version and services are required");
        if (root) {
            s_root (L, root);
            al_yaml_end (L->yaml, "services.yaml");
        }
    }
    if (al_yaml_report (L->yaml, error, error_size))
        al_services_destroy (&L->self);
    al_yaml_destroy (&L->yaml);
    return L->self;
}

void
al_services_destroy (al_services_t **self_p)
{
    assert (self_p);
    al_services_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->block_count; i++)
        free (self->blocks [i]);
    free (self->blocks);
    free (self->path);
    free (self);
    *self_p = NULL;
}

const char *
al_services_path (const al_services_t *self)
{
    assert (self);
    return self->path;
}

size_t
al_services_count (const al_services_t *self)
{
    assert (self);
    return self->count;
}

const al_service_t *
al_services_at (const al_services_t *self, size_t index)
{
    assert (self);
    return index < self->count ? &self->services [index] : NULL;
}

const al_service_t *
al_services_find (const al_services_t *self, const char *name)
{
    assert (self);
    if (!name)
        return NULL;
    for (size_t i = 0; i < self->count; i++)
        if (strcmp (self->services [i].name, name) == 0)
            return &self->services [i];
    return NULL;
}

static bool
s_env_ok (Airlock__Environment env)
{
    return env > AIRLOCK__ENVIRONMENT__ENV_UNSPECIFIED && (int) env < AL_SERVICE_ENV_SLOTS;
}

unsigned
al_service_instances (const al_service_t *svc, Airlock__Environment env)
{
    assert (svc);
    return s_env_ok (env) ? svc->instances [env] : 0;
}

Airlock__Strategy
al_service_strategy (const al_service_t *svc, Airlock__Environment env)
{
    assert (svc);
    return s_env_ok (env) ? svc->strategy [env] : AIRLOCK__STRATEGY__STRATEGY_UNSPECIFIED;
}

const char *
al_service_database (const al_service_t *svc, Airlock__Environment env)
{
    assert (svc);
    return s_env_ok (env) ? svc->database [env] : NULL;
}

void
al_service_driver_config (const al_service_t *svc, const char *evidence_dir,
                          al_driver_config_t *config)
{
    assert (svc);
    assert (config);
    memset (config, 0, sizeof *config);
    config->evidence_dir = evidence_dir;
    config->command = svc->command;
    config->env = svc->env;
    config->host = svc->host;
    config->liveness_path = svc->liveness_path;
    config->readiness_path = svc->readiness_path;
    config->start_timeout_ms = svc->start_timeout_ms;
    config->stop_timeout_ms = svc->stop_timeout_ms;
    config->probe_timeout_ms = svc->probe_timeout_ms;
    config->steps = svc->steps;
    config->step_count = svc->step_count;
    config->endpoint = svc->endpoint;
    config->step_timeout_ms = svc->step_timeout_ms;
    config->max_output = svc->max_output;
    config->secrets = svc->secrets;
    config->secret_count = svc->secret_count;
}
