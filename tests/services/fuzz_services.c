/*  fuzz_services.c: libFuzzer target for the services.yaml loader.

    Each input is written to a scratch file and loaded; a loaded set is walked through
    every getter and turned into driver configurations, and its qa checks and suites,
    resources and signals are checked for what the loader promises. A crash, a leak or a sanitizer
    report is a finding. The seed corpus is tests/services/corpus/fuzz_services.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "deploy/al_services.h"

static char s_dir [64];           // the scratch directory
static char s_path [128];         // its services.yaml

static void
s_cleanup (void)
{
    unlink (s_path);
    rmdir (s_dir);
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    strcpy (s_dir, "/tmp/airlock-fuzz-services-XXXXXX");
    if (!mkdtemp (s_dir))
        abort ();
    snprintf (s_path, sizeof s_path, "%s/services.yaml", s_dir);
    atexit (s_cleanup);
    return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    FILE *out = fopen (s_path, "wb");
    if (!out)
        abort ();
    fwrite (data, 1, size, out);
    fclose (out);

    char error [4096];
    al_services_t *services = al_services_load (s_path, error, sizeof error);
    size_t total = services ? 0 : strlen (error);
    for (size_t i = 0; services && i < al_services_count (services); i++) {
        const al_service_t *svc = al_services_at (services, i);
        if (al_services_find (services, svc->name) != svc)
            abort ();
        for (int env = 0; env < AL_SERVICE_ENV_SLOTS; env++) {
            total += al_service_instances (svc, (Airlock__Environment) env);
            total += (size_t) al_service_strategy (svc, (Airlock__Environment) env);
            const char *database = al_service_database (svc, (Airlock__Environment) env);
            total += database ? strlen (database) : 0;
        }
        if (svc->canary_step_count == 0 || svc->canary_steps [svc->canary_step_count - 1] != 100)
            abort ();
        al_driver_config_t config;
        al_service_driver_config (svc, s_dir, &config);
        for (size_t s = 0; s < config.step_count; s++)
            for (size_t a = 0; config.steps [s].argv [a]; a++)
                total += strlen (config.steps [s].argv [a]);
        for (size_t a = 0; config.command && config.command [a]; a++)
            total += strlen (config.command [a]);
        for (size_t s = 0; s < config.secret_count; s++)
            total += strlen (config.secrets [s].name);
        //  qa: every check has a name and an HTTP path, every suite a name and an argv.
        for (size_t q = 0; q < svc->qa_smoke_count; q++) {
            const al_service_smoke_t *smoke = &svc->qa_smoke [q];
            if (!smoke->name || !smoke->path || smoke->path [0] != '/'
            ||  (smoke->status != 0 && (smoke->status < 100 || smoke->status > 599)))
                abort ();
            total += strlen (smoke->name) + (smoke->body_contains ? strlen (smoke->body_contains) : 0);
        }
        //  resources and signals: every default filled in; a URL only with a Prometheus
        //  source, and then a query for every required signal.
        const al_service_signal_map_t *map = &svc->signal_map;
        if (!map->requests_metric || !map->error_statuses || !map->error_statuses [0]
        ||  !map->latency_metric || !(map->latency_to_ms > 0) || !map->cpu_metric || !map->memory_metric
        ||  svc->cpu_limit_cores < 0 || svc->prometheus.timeout_ms < 1
        ||  (svc->prometheus.url != NULL) != (svc->signals == AL_SERVICE_SIGNALS_PROMETHEUS)
        ||  !(svc->canary_judge.alpha > 0 && svc->canary_judge.alpha < 0.5) || svc->canary_judge.min_samples < 3)
            abort ();
        for (size_t e = 0; map->error_statuses [e]; e++)
            total += strlen (map->error_statuses [e]);
        if (svc->signals == AL_SERVICE_SIGNALS_PROMETHEUS
        &&  ((map->requests_required && !svc->prometheus.queries [AL_SIGNAL_ERROR_RATIO])
             || (map->cpu_required && !svc->prometheus.queries [AL_SIGNAL_CPU_PERCENT])))
            abort ();
        for (int q = 0; q < AL_SIGNAL_COUNT; q++)
            total += svc->prometheus.queries [q] ? strlen (svc->prometheus.queries [q]) : 0;
        for (size_t q = 0; q < svc->qa_suite_count; q++) {
            const al_service_suite_t *suite = &svc->qa_suites [q];
            if (!suite->name || !suite->argv || !suite->argv [0] || !*suite->argv [0] || suite->timeout_ms < 100
            ||  (suite->junit && suite->junit [0] != '/'))
                abort ();
            for (size_t a = 0; suite->argv [a]; a++)
                total += strlen (suite->argv [a]);
        }
    }
    al_services_destroy (&services);
    return total == (size_t) -1;
}
