/*  al_paths.c: the layout of the state directory, spelled once (see al_paths.h). */
#include "base/al_paths.h"
#include "base/al_error.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *s_relative [AL_PATH_COUNT] = {
    [AL_PATH_AIRLOCK_YAML]              = "airlock.yaml",
    [AL_PATH_KEYS_DIR]                  = "keys",
    [AL_PATH_CHECKPOINT_KEY]            = "keys/checkpoint.key",
    [AL_PATH_CHECKPOINT_PUBLIC_KEY]     = "keys/checkpoint.pub",
    [AL_PATH_POLICY_DIR]                = "policy",
    [AL_PATH_IDENTITIES_YAML]           = "policy/identities.yaml",
    [AL_PATH_SERVICES_YAML]             = "services.yaml",
    [AL_PATH_NOTIFICATIONS_YAML]        = "notifications.yaml",
    [AL_PATH_AUDIT_DB]                  = "audit.db",
    [AL_PATH_AUDIT_DB_LOCK]             = "audit.db.lock",
    [AL_PATH_BROKER_SOCKET]             = "broker.ipc",
    [AL_PATH_EVENTS_SOCKET]             = "events.ipc",
    [AL_PATH_CHECKPOINTS_DIR]           = "checkpoints",
    [AL_PATH_CHECKPOINT]                = "checkpoints/latest.ckpt",
    [AL_PATH_LOGS_DIR]                  = "logs",
    [AL_PATH_RUN_DIR]                   = "run",
    [AL_PATH_UP_LOCK]                   = "run/up.lock",
    [AL_PATH_CONSOLE_PORT]              = "run/console.port",
    [AL_PATH_ORCHESTRATOR_DIR]          = "orchestrator",
    [AL_PATH_ORCHESTRATOR_RELEASES_DIR] = "orchestrator/releases",
    [AL_PATH_QA_DIR]                    = "qa",
    [AL_PATH_QA_REFUSED_DIR]            = "qa/.refused",
    [AL_PATH_QA_REPORTS_DIR]            = "qa/.reports",
    [AL_PATH_DEPLOY_DIR]                = "deploy",
    [AL_PATH_DEPLOY_ARTIFACTS_DIR]      = "deploy/artifacts",
    [AL_PATH_DEPLOY_EVIDENCE_DIR]       = "deploy/.artifacts/deployment",
    [AL_PATH_DEPLOY_RELEASES_DIR]       = "deploy/releases",
    [AL_PATH_DEPLOY_DRIVERS_DIR]        = "deploy/drivers",
    [AL_PATH_DEPLOY_BACKUPS_DIR]        = "deploy/backups",
    [AL_PATH_MONITOR_DIR]               = "monitor",
    [AL_PATH_MONITOR_BASELINES_DIR]     = "monitor/baselines",
    [AL_PATH_NOTIFIER_DIR]              = "notifier",
    [AL_PATH_NOTIFIER_OUTBOX]           = "notifier/outbox.db",
    [AL_PATH_NOTIFIER_LOCK]             = "notifier/lock",
};

const char *
al_paths_relative (al_path_t which)
{
    assert ((int) which >= 0 && which < AL_PATH_COUNT);
    assert (s_relative [which]);
    return s_relative [which];
}

bool
al_paths_name_ok (const char *name)
{
    if (!name || !*name || strcmp (name, ".") == 0 || strcmp (name, "..") == 0)
        return false;
    size_t length = 0;
    for (const unsigned char *p = (const unsigned char *) name; *p; p++, length++)
        if (*p == '/' || *p < 0x20 || *p == 0x7f)
            return false;
    return length <= AL_PATHS_NAME_MAX;
}

//  Check each of count names (their labels for the error), then format.
static int
s_format (char *out, size_t out_size, char *error, size_t error_size, const char *state_dir,
          size_t count, const char *const *labels, const char *const *names, const char *format, ...)
    __attribute__ ((format (printf, 9, 10)));

static int
s_format (char *out, size_t out_size, char *error, size_t error_size, const char *state_dir,
          size_t count, const char *const *labels, const char *const *names, const char *format, ...)
{
    assert (out && out_size > 0);
    out [0] = 0;
    if (!state_dir || !*state_dir) {
        al_error_set (error, error_size, "the state directory is not set");
        return -1;
    }
    for (size_t index = 0; index < count; index++)
        if (!al_paths_name_ok (names [index])) {
            al_error_set (error, error_size, "%s '%.*s': not usable in a file name (empty, "
                          "'.', '..', a '/', a control character, or over %d bytes)",
                          labels [index], 64, names [index] ? names [index] : "(null)",
                          AL_PATHS_NAME_MAX);
            return -1;
        }
    va_list args;
    va_start (args, format);
    int length = vsnprintf (out, out_size, format, args);
    va_end (args);
    if (length < 0 || (size_t) length >= out_size) {
        al_error_set (error, error_size, "%s: a path under it would be over %zu bytes", state_dir,
                      out_size - 1);
        out [0] = 0;
        return -1;
    }
    return 0;
}

int
al_paths_get (const char *state_dir, al_path_t which, char *out, size_t out_size,
              char *error, size_t error_size)
{
    return s_format (out, out_size, error, error_size, state_dir, 0, NULL, NULL, "%s/%s",
                     state_dir, al_paths_relative (which));
}

char *
al_paths_dup (const char *state_dir, al_path_t which, char *error, size_t error_size)
{
    if (!state_dir || !*state_dir) {
        al_error_set (error, error_size, "the state directory is not set");
        return NULL;
    }
    char *path = NULL;
    if (asprintf (&path, "%s/%s", state_dir, al_paths_relative (which)) < 0) {
        al_error_set (error, error_size, "%s: out of memory", state_dir);
        return NULL;
    }
    return path;
}

int
al_paths_endpoint (const char *state_dir, al_path_t socket, char *out, size_t out_size,
                   char *error, size_t error_size)
{
    assert (socket == AL_PATH_BROKER_SOCKET || socket == AL_PATH_EVENTS_SOCKET);
    return s_format (out, out_size, error, error_size, state_dir, 0, NULL, NULL, "ipc://%s/%s",
                     state_dir, al_paths_relative (socket));
}

int
al_paths_certificate (const char *state_dir, const char *role, bool secret,
                      char *out, size_t out_size, char *error, size_t error_size)
{
    const char *labels [] = { "role" }, *names [] = { role };
    return s_format (out, out_size, error, error_size, state_dir, 1, labels, names, "%s/%s/%s.cert%s",
                     state_dir, s_relative [AL_PATH_KEYS_DIR], role, secret ? "_secret" : "");
}

int
al_paths_log (const char *state_dir, const char *name, char *out, size_t out_size,
              char *error, size_t error_size)
{
    const char *labels [] = { "process name" }, *names [] = { name };
    return s_format (out, out_size, error, error_size, state_dir, 1, labels, names, "%s/%s/%s.log",
                     state_dir, s_relative [AL_PATH_LOGS_DIR], name);
}

int
al_paths_pid (const char *state_dir, const char *name, char *out, size_t out_size,
              char *error, size_t error_size)
{
    const char *labels [] = { "process name" }, *names [] = { name };
    return s_format (out, out_size, error, error_size, state_dir, 1, labels, names, "%s/%s/%s.pid",
                     state_dir, s_relative [AL_PATH_RUN_DIR], name);
}

int
al_paths_metrics_address (const char *state_dir, const char *name, char *out, size_t out_size,
                          char *error, size_t error_size)
{
    const char *labels [] = { "process name" }, *names [] = { name };
    return s_format (out, out_size, error, error_size, state_dir, 1, labels, names,
                     "%s/%s/metrics-%s.address", state_dir, s_relative [AL_PATH_RUN_DIR], name);
}

int
al_paths_orchestrator_release (const char *state_dir, const char *release, char *out,
                               size_t out_size, char *error, size_t error_size)
{
    const char *labels [] = { "release" }, *names [] = { release };
    return s_format (out, out_size, error, error_size, state_dir, 1, labels, names, "%s/%s/%s.json",
                     state_dir, s_relative [AL_PATH_ORCHESTRATOR_RELEASES_DIR], release);
}

int
al_paths_qa_deployment_dir (const char *state_dir, const char *deployment, char *out,
                            size_t out_size, char *error, size_t error_size)
{
    const char *labels [] = { "deployment" }, *names [] = { deployment };
    return s_format (out, out_size, error, error_size, state_dir, 1, labels, names, "%s/%s/%s",
                     state_dir, s_relative [AL_PATH_QA_DIR], deployment);
}

int
al_paths_qa_report (const char *state_dir, const char *deployment, char *out,
                    size_t out_size, char *error, size_t error_size)
{
    const char *labels [] = { "deployment" }, *names [] = { deployment };
    return s_format (out, out_size, error, error_size, state_dir, 1, labels, names,
                     "%s/%s/%s/qa_report.json", state_dir, s_relative [AL_PATH_QA_DIR], deployment);
}

int
al_paths_deploy_evidence (const char *state_dir, const char *deployment, char *out,
                          size_t out_size, char *error, size_t error_size)
{
    const char *labels [] = { "deployment" }, *names [] = { deployment };
    return s_format (out, out_size, error, error_size, state_dir, 1, labels, names, "%s/%s/%s",
                     state_dir, s_relative [AL_PATH_DEPLOY_EVIDENCE_DIR], deployment);
}

int
al_paths_release_record (const char *state_dir, const char *service, const char *environment,
                         char *out, size_t out_size, char *error, size_t error_size)
{
    const char *labels [] = { "service", "environment" }, *names [] = { service, environment };
    return s_format (out, out_size, error, error_size, state_dir, 2, labels, names, "%s/%s/%s/%s.json",
                     state_dir, s_relative [AL_PATH_DEPLOY_RELEASES_DIR], service, environment);
}

int
al_paths_driver_dir (const char *state_dir, const char *service, const char *environment,
                     char *out, size_t out_size, char *error, size_t error_size)
{
    const char *labels [] = { "service", "environment" }, *names [] = { service, environment };
    return s_format (out, out_size, error, error_size, state_dir, 2, labels, names, "%s/%s/%s/%s",
                     state_dir, s_relative [AL_PATH_DEPLOY_DRIVERS_DIR], service, environment);
}

int
al_paths_instances (const char *state_dir, const char *service, const char *environment,
                    char *out, size_t out_size, char *error, size_t error_size)
{
    const char *labels [] = { "service", "environment" }, *names [] = { service, environment };
    return s_format (out, out_size, error, error_size, state_dir, 2, labels, names,
                     "%s/%s/%s/%s/instances.json", state_dir, s_relative [AL_PATH_DEPLOY_DRIVERS_DIR],
                     service, environment);
}

int
al_paths_backup (const char *state_dir, const char *deployment, const char *service,
                 char *out, size_t out_size, char *error, size_t error_size)
{
    const char *labels [] = { "deployment", "service" }, *names [] = { deployment, service };
    return s_format (out, out_size, error, error_size, state_dir, 2, labels, names, "%s/%s/%s/%s.db",
                     state_dir, s_relative [AL_PATH_DEPLOY_BACKUPS_DIR], deployment, service);
}

int
al_paths_monitor_baseline (const char *state_dir, const char *deployment, char *out,
                           size_t out_size, char *error, size_t error_size)
{
    const char *labels [] = { "deployment" }, *names [] = { deployment };
    return s_format (out, out_size, error, error_size, state_dir, 1, labels, names, "%s/%s/%s.json",
                     state_dir, s_relative [AL_PATH_MONITOR_BASELINES_DIR], deployment);
}
