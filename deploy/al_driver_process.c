/*  al_driver_process.c: the "process" driver, airlock's embedded default.

    Each instance is a child process of this handle (base/al_child): the configured argv
    template, expanded for the instance, run with PORT (and AIRLOCK_PORT,
    AIRLOCK_VERSION, ...) in its environment, in its own process group, with stdout and
    stderr on a pipe that the log pump (al_driver_process_log.c) copies, redacted of the
    secrets, to EVIDENCE_DIR/<id>.log. A port of 0 in the spec means "pick one": the
    driver binds port 0 on the host to learn a free port and passes it explicitly (a
    small race with other programs remains; the instance then fails to listen and its
    start fails with its log tail).

    start_instance returns once the instance answers its liveness path, or fails when
    the child exits first (crash at start: its exit code and the redacted tail of its
    log are in the error) or the start timeout passes (the group is killed). Children
    are reaped by al_child on their own pid only, never -1, so the host's other
    children are left alone; every call first reaps instances that exited (what an
    instance left in its group goes with it).

    With a state_file, the instance registry (al_driver_process_registry.c) names each
    instance before its program runs (the child is held at al_child's gate until then)
    and is rewritten at every start and stop; an open stops what a dead owner left.

    There is no load balancer in the embedded default: switch_active records which set
    receives traffic, a label that list_instances reports (active) and the monitor and
    tests read. Instances cannot outlive the handle: close stops every running one.

    Threading: one user at a time (al_driver.h); the pump thread touches only the
    streams, under their lock.
*/
#include "deploy/al_driver_process_int.h"
#include "base/al_clock.h"
#include "base/al_file.h"
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_LOG_TAIL 600
#define S_START_PROBE_TIMEOUT_MS 1000

static size_t
s_process_stale_stopped (void *handle)
{
    al_process_driver_t *self = handle;
    assert (self);
    return self->stale_stopped;
}

static void
s_process_close (void *handle)
{
    al_process_driver_t *self = handle;
    if (!self)
        return;
    for (size_t i = 0; i < self->count; i++) {
        al_process_instance_t *instance = &self->instances [i];
        if (instance->info.running)
            al_child_kill (instance->child, self->stop_timeout_ms);
        al_child_destroy (&instance->child);
        instance->info.running = false;
        free (instance->log_path);
        free (instance->environment);
    }
    //  Nothing runs any more. Only once we own the registry: an open that failed on it
    //  leaves it as it was. A failed write here is harmless: the pids it still names
    //  are gone, and the start times keep their reuse from being mistaken for ours.
    char ignored [256];
    if (self->registry_ready)
        al_process_registry_write (self, NULL, ignored, sizeof (ignored));
    al_process_pump_stop (&self->pump);
    free (self->instances);
    al_strv_free (&self->command);
    al_strv_free (&self->env);
    free (self->host);
    free (self->liveness_path);
    free (self->readiness_path);
    free (self->evidence_dir);
    free (self->state_file);
    free (self->state_dir);
    free (self);
}

static void *
s_process_open (const al_driver_config_t *config, const al_driver_secrets_t *secrets,
                char *error, size_t error_size)
{
    assert (config && secrets);
    if (!config->evidence_dir || !*config->evidence_dir) {
        snprintf (error, error_size, "evidence_dir: required");
        return NULL;
    }
    if (!config->command || !config->command [0]) {
        snprintf (error, error_size, "command: required (the argv template of an instance)");
        return NULL;
    }
    char where [64];
    if (!al_template_check_argv (config->command, "command", error, error_size))
        return NULL;
    for (size_t i = 0; config->env && config->env [i]; i++) {
        snprintf (where, sizeof (where), "env[%zu]", i);
        const char *equal = strchr (config->env [i], '=');
        char name [128];
        snprintf (name, sizeof (name), "%.*s", equal ? (int) (equal - config->env [i]) : 0,
                  config->env [i]);
        if (!equal || !al_check_name (name, 127, where, error, error_size)
        ||  !al_template_check (equal + 1, where, error, error_size)) {
            if (!equal)
                snprintf (error, error_size, "%s: not NAME=value", where);
            return NULL;
        }
    }
    al_process_driver_t *self = calloc (1, sizeof (al_process_driver_t));
    if (!self) {
        snprintf (error, error_size, "out of memory");
        return NULL;
    }
    self->secrets = secrets;
    self->command = al_strv_dup (config->command);
    self->env = config->env ? al_strv_dup (config->env) : calloc (1, sizeof (char *));
    if (!al_driver_config_copy (config, &self->host, &self->liveness_path, &self->readiness_path,
                                &self->evidence_dir, error, error_size))
        goto cleanup;
    self->start_timeout_ms = config->start_timeout_ms > 0 ? config->start_timeout_ms
                                                          : AL_DRIVER_DEFAULT_START_TIMEOUT_MS;
    self->stop_timeout_ms = config->stop_timeout_ms > 0 ? config->stop_timeout_ms
                                                        : AL_DRIVER_DEFAULT_STOP_TIMEOUT_MS;
    self->probe_timeout_ms = config->probe_timeout_ms > 0 ? config->probe_timeout_ms
                                                          : AL_PROBE_DEFAULT_TIMEOUT_MS;
    snprintf (self->active, sizeof (self->active), "%s", AL_DRIVER_DEFAULT_SET);
    if (config->state_file) {
        self->state_file = strdup (config->state_file);
        char *copy = strdup (config->state_file);
        self->state_dir = copy ? strdup (dirname (copy)) : NULL;
        free (copy);
    }
    if (!self->command || !self->env
    ||  (config->state_file && (!self->state_file || !self->state_dir))) {
        snprintf (error, error_size, "out of memory");
        goto cleanup;
    }
    if (self->state_file && (!*self->state_file || self->state_file [strlen (self->state_file) - 1] == '/')) {
        snprintf (error, error_size, "state_file: \"%s\" is not a file name", self->state_file);
        goto cleanup;
    }
    char probe_error [128];
    if (al_free_port (self->host, probe_error, sizeof (probe_error)) < 0) {
        snprintf (error, error_size, "host: %s", probe_error);
        goto cleanup;
    }
    if (al_file_make_directories (self->evidence_dir, 0700, error, error_size) != 0
    ||  (self->state_file && al_file_make_directories (self->state_dir, 0700, error, error_size) != 0)
    ||  (self->state_file && al_process_registry_recover (self, error, error_size) != 0)
    ||  al_process_pump_start (&self->pump, secrets->redact, error, error_size) != 0)
        goto cleanup;
    return self;

cleanup:
    s_process_close (self);
    return NULL;
}

//  Mark instances that exited since the last call, reaping them. Returns how many.
static size_t
s_reap (al_process_driver_t *self)
{
    size_t exited = 0;
    for (size_t i = 0; i < self->count; i++) {
        al_process_instance_t *instance = &self->instances [i];
        if (instance->info.running && al_child_wait (instance->child, 0)) {
            instance->info.exit_code = al_child_exit_code (instance->child);
            instance->info.running = false;
            exited++;
        }
    }
    return exited;
}

//  Reap, and drop what exited from the registry. For the calls that do not rewrite the
//  registry themselves (probe, list, switch): a failed write is not their failure, and
//  an entry left behind is harmless (its start time no longer matches once reused).
static void
s_reap_and_record (al_process_driver_t *self)
{
    char ignored [256];
    if (s_reap (self) > 0 && self->state_file)
        al_process_registry_write (self, NULL, ignored, sizeof (ignored));
}

static al_process_instance_t *
s_find (al_process_driver_t *self, const char *id)
{
    for (size_t i = 0; i < self->count; i++)
        if (strcmp (self->instances [i].info.id, id) == 0)
            return &self->instances [i];
    return NULL;
}

static al_driver_status_t
s_process_prerequisites (void *handle, const al_driver_vars_t *vars, al_driver_report_t *report,
                         char *error, size_t error_size)
{
    al_process_driver_t *self = handle;
    al_tvars_t tvars = { { NULL } };
    al_tvars_from_vars (&tvars, vars);
    al_driver_check_program (report, "program", self->command [0], &tvars, vars != NULL);
    char why [256];
    int port = al_free_port (self->host, why, sizeof (why));
    if (port > 0)
        al_driver_report_add (report, "ports", true, "free ports on %s (e.g. %d)", self->host, port);
    else
        al_driver_report_add (report, "ports", false, "%s", why);
    al_driver_check_evidence_dir (report, self->evidence_dir);
    return al_driver_report_verdict (report, error, error_size);
}

static al_driver_status_t
s_process_start_instance (void *handle, const al_driver_spec_t *spec, al_driver_instance_t *info,
                          char *error, size_t error_size)
{
    al_process_driver_t *self = handle;
    const al_redact_t *redact = self->secrets->redact;
    s_reap_and_record (self);
    if (!al_check_spec (spec, error, error_size))
        return AL_DRIVER_ERR_CONFIG;
    al_driver_status_t status = AL_DRIVER_ERR_SYSTEM;
    char **argv = NULL;
    al_env_t *env = NULL;
    char *log_path = NULL;
    char *tail = NULL;
    char *environment = NULL;
    int log_fd = -1;
    al_child_t *child = NULL;
    al_process_instance_t starting = { .info = { .running = false } };
    bool registered = false;

    int port = spec->port;
    if (port == 0 && (port = al_free_port (self->host, error, error_size)) < 0)
        goto cleanup;
    const char *set = spec->set ? spec->set : AL_DRIVER_DEFAULT_SET;
    char id [AL_DRIVER_ID_SIZE], port_text [16], instance_text [16];
    snprintf (id, sizeof (id), "%s-%d.%u", spec->vars.service, spec->instance, ++self->sequence);
    snprintf (port_text, sizeof (port_text), "%d", port);
    snprintf (instance_text, sizeof (instance_text), "%d", spec->instance);
    al_tvars_t tvars = { { NULL } };
    al_tvars_from_vars (&tvars, &spec->vars);
    tvars.values [AL_TVAR_INSTANCE] = instance_text;
    tvars.values [AL_TVAR_PORT] = port_text;
    tvars.values [AL_TVAR_SET] = set;
    tvars.values [AL_TVAR_ID] = id;
    tvars.values [AL_TVAR_STEP] = "start";
    tvars.values [AL_TVAR_EVIDENCE_DIR] = self->evidence_dir;

    argv = al_template_expand_argv ((const char *const *) self->command, &tvars);
    env = al_env_new ();
    environment = strdup (spec->vars.env ? spec->vars.env : "");
    if (!argv || !env || !environment || asprintf (&log_path, "%s/%s.log", self->evidence_dir, id) < 0) {
        log_path = NULL;
        snprintf (error, error_size, "out of memory");
        goto cleanup;
    }
    bool env_ok = true;
    for (size_t i = 0; self->env [i]; i++) {
        char *assignment = al_template_expand (self->env [i], &tvars);
        env_ok = env_ok && assignment && al_env_put (env, assignment);
        free (assignment);
    }
    env_ok = env_ok && al_env_put_tvars (env, &tvars) && al_env_set (env, "PORT", port_text)
          && al_env_put_all (env, spec->extra_env) && al_env_put_all (env, self->secrets->env);
    if (!env_ok) {
        snprintf (error, error_size, "out of memory");
        goto cleanup;
    }
    log_fd = open (log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (log_fd < 0) {
        al_driver_error_set (error, error_size, redact, "%s: %s", log_path, strerror (errno));
        goto cleanup;
    }
    int output [2];
    if (pipe2 (output, O_CLOEXEC) != 0) {
        snprintf (error, error_size, "pipe: %s", strerror (errno));
        goto cleanup;
    }
    char endpoint [AL_DRIVER_ENDPOINT_SIZE], url [AL_DRIVER_ENDPOINT_SIZE + 256];
    snprintf (endpoint, sizeof (endpoint), "http://%s:%d", self->host, port);
    //  The record, complete but for the pid and the log path. With a registry, the child
    //  is held at its gate until the registry names it (al_process_registry_name_held),
    //  so an owner killed at any moment, during the start or the liveness wait, leaves
    //  nothing unknown.
    starting = (al_process_instance_t) { .info = { .instance = spec->instance, .port = port, .running = true },
                                         .environment = environment };
    snprintf (starting.info.id, sizeof (starting.info.id), "%s", id);
    snprintf (starting.info.service, sizeof (starting.info.service), "%s", spec->vars.service);
    snprintf (starting.info.version, sizeof (starting.info.version), "%s", spec->vars.version);
    snprintf (starting.info.set, sizeof (starting.info.set), "%s", set);
    snprintf (starting.info.endpoint, sizeof (starting.info.endpoint), "%s", endpoint);
    al_child_options_t options = {
        .environment = al_env_array (env),
        .out = AL_CHILD_FD, .out_fd = output [1], .err = AL_CHILD_TO_STDOUT,
        .hold = self->state_file != NULL
    };
    char spawn_error [512];
    child = al_child_start (argv, &options, spawn_error, sizeof (spawn_error));
    close (output [1]);
    //  The pump owns the read end and the log descriptor from here.
    int pumped = al_process_pump_add (&self->pump, id, output [0], log_fd);
    log_fd = -1;
    if (!child) {
        al_driver_error_set (error, error_size, redact, "instance %s: %s", id, spawn_error);
        status = AL_DRIVER_ERR_FAILED;
        goto cleanup;
    }
    starting.info.pid = al_child_pid (child);
    if (pumped != 0) {
        snprintf (error, error_size, "out of memory");
        goto cleanup;
    }
    if (al_child_held (child)) {
        char why [512];
        if (al_process_registry_name_held (self, &starting, starting.info.pid, why, sizeof (why)) != 0) {
            //  Its program never runs: the child exits at its gate, and is reaped.
            al_child_refuse (child);
            al_driver_error_set (error, error_size, redact, "instance %s not started: %s", id, why);
            goto cleanup;
        }
        registered = true;              // the registry names it
        if (!al_child_release (child, spawn_error, sizeof (spawn_error))) {
            al_driver_error_set (error, error_size, redact, "instance %s: %s", id, spawn_error);
            status = AL_DRIVER_ERR_FAILED;
            goto cleanup;
        }
        //  It runs: now the durable rewrite, and file_sd.json for Prometheus.
        if (al_process_registry_write (self, &starting, why, sizeof (why)) != 0) {
            al_driver_error_set (error, error_size, redact, "instance %s not started: registry %s", id, why);
            goto cleanup;
        }
    }
    snprintf (url, sizeof (url), "%s%s", endpoint, self->liveness_path);
    int64_t deadline = al_clock_deadline_ms (self->start_timeout_ms);
    bool alive = false;
    while (!alive) {
        if (al_child_wait (child, 0)) {
            int exit_code = al_child_exit_code (child);
            al_process_pump_wait_eof (&self->pump, id, 2000);
            tail = al_file_tail (log_path, S_LOG_TAIL, redact);
            al_driver_error_set (error, error_size, redact,
                                 "instance %s exited during start with exit code %d; log %s ends: %s",
                                 id, exit_code, log_path, tail);
            status = AL_DRIVER_ERR_FAILED;
            goto cleanup;
        }
        if (al_clock_remaining_ms (deadline) == 0) {
            tail = al_file_tail (log_path, S_LOG_TAIL, redact);
            al_driver_error_set (error, error_size, redact,
                                 "instance %s did not answer %s within %d ms (killed); log %s ends: %s",
                                 id, url, self->start_timeout_ms, log_path, tail);
            status = AL_DRIVER_ERR_TIMEOUT;
            goto cleanup;
        }
        al_probe_result_t probe;
        int timeout = self->probe_timeout_ms < S_START_PROBE_TIMEOUT_MS ? self->probe_timeout_ms
                                                                         : S_START_PROBE_TIMEOUT_MS;
        alive = al_probe_http (url, timeout, &probe);
        if (!alive)
            al_clock_sleep_ms (20);
    }
    al_process_instance_t *grown = realloc (self->instances, (self->count + 1) * sizeof (al_process_instance_t));
    if (!grown) {
        snprintf (error, error_size, "out of memory");
        goto cleanup;
    }
    self->instances = grown;
    al_process_instance_t *instance = &self->instances [self->count++];
    *instance = starting;
    instance->child = child;
    instance->log_path = log_path;
    child = NULL;
    log_path = NULL;
    environment = NULL;
    //  The registry already names it (written with starting above).
    registered = false;
    *info = instance->info;
    info->active = strcmp (instance->info.set, self->active) == 0;
    status = AL_DRIVER_OK;

cleanup:
    al_child_destroy (&child);          // killed (grace 0) and reaped if it runs
    if (registered) {
        //  It is stopped and reaped; an entry left behind by a failed write no longer
        //  matches anything once its pid is reused (start time).
        char ignored [256];
        al_process_registry_write (self, NULL, ignored, sizeof (ignored));
    }
    if (log_fd >= 0)
        close (log_fd);
    free (tail);
    free (log_path);
    free (environment);
    al_env_destroy (&env);
    al_strv_free (&argv);
    return status;
}

static al_driver_status_t
s_process_stop_instance (void *handle, const char *id, int grace_ms, al_driver_stop_t *result,
                         char *error, size_t error_size)
{
    al_process_driver_t *self = handle;
    s_reap (self);
    al_process_instance_t *instance = s_find (self, id);
    if (!instance) {
        snprintf (error, error_size, "instance %.64s: not found", id);
        return AL_DRIVER_ERR_NOT_FOUND;
    }
    al_driver_instance_t *info = &instance->info;
    if (info->running) {
        result->forced = al_child_kill (instance->child, grace_ms > 0 ? grace_ms : self->stop_timeout_ms);
        info->exit_code = al_child_exit_code (instance->child);
        info->running = false;
    }
    result->exit_code = info->exit_code;
    //  Also after s_reap found it exited: that stop is recorded here too.
    char why [512];
    if (self->state_file && al_process_registry_write (self, NULL, why, sizeof (why)) != 0) {
        al_driver_error_set (error, error_size, self->secrets->redact,
                             "instance %s stopped, but the registry was not updated: %s", id, why);
        return AL_DRIVER_ERR_SYSTEM;
    }
    return AL_DRIVER_OK;
}

static al_driver_status_t
s_process_probe (void *handle, const char *id, al_driver_probe_kind_t kind, al_probe_result_t *result,
                 char *error, size_t error_size)
{
    al_process_driver_t *self = handle;
    s_reap_and_record (self);
    al_process_instance_t *instance = s_find (self, id);
    if (!instance) {
        snprintf (error, error_size, "instance %.64s: not found", id);
        return AL_DRIVER_ERR_NOT_FOUND;
    }
    if (!instance->info.running) {
        memset (result, 0, sizeof (*result));
        snprintf (result->detail, sizeof (result->detail), "instance exited with exit code %d",
                  instance->info.exit_code);
        return AL_DRIVER_OK;
    }
    al_driver_probe_endpoint (instance->info.endpoint, kind, self->liveness_path, self->readiness_path,
                              self->probe_timeout_ms, result);
    return AL_DRIVER_OK;
}

static al_driver_status_t
s_process_list_instances (void *handle, al_driver_instance_t *instances, size_t max, size_t *count_p,
                          char *error, size_t error_size)
{
    (void) error;
    (void) error_size;
    al_process_driver_t *self = handle;
    s_reap_and_record (self);
    for (size_t i = 0; i < self->count && i < max; i++) {
        instances [i] = self->instances [i].info;
        instances [i].active = strcmp (instances [i].set, self->active) == 0;
    }
    *count_p = self->count;
    return AL_DRIVER_OK;
}

static al_driver_status_t
s_process_switch_active (void *handle, const char *set, char *error, size_t error_size)
{
    al_process_driver_t *self = handle;
    s_reap_and_record (self);
    //  Moving traffic to a set with nothing running would be an outage.
    bool any = false;
    for (size_t i = 0; i < self->count && !any; i++)
        any = self->instances [i].info.running && strcmp (self->instances [i].info.set, set) == 0;
    if (!any) {
        snprintf (error, error_size, "set %s: no running instance to switch traffic to", set);
        return AL_DRIVER_ERR_FAILED;
    }
    snprintf (self->active, sizeof (self->active), "%s", set);
    return AL_DRIVER_OK;
}

const al_driver_ops_t al_driver_process_ops = {
    .name = "process",
    .version = AL_DRIVER_OPS_VERSION,
    .open = s_process_open,
    .close = s_process_close,
    .prerequisites = s_process_prerequisites,
    .start_instance = s_process_start_instance,
    .stop_instance = s_process_stop_instance,
    .probe = s_process_probe,
    .list_instances = s_process_list_instances,
    .switch_active = s_process_switch_active,
    .stale_stopped = s_process_stale_stopped,
};
