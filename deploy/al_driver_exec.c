/*  al_driver_exec.c: the "exec" driver, the operator's own commands per step.

    The configuration maps step names (an open set: start, stop, probe, switch,
    prerequisites, backup, migrate, rollback, ...) to argv templates. A step runs as
    a child in its own process group, with argv expanded element by element: a value
    is substituted inside its element and never split, so a version holding spaces or
    quotes stays one argument, and no shell sees it unless the operator wrote one
    (["sh", "-c", "..."]); scripts then read AIRLOCK_SERVICE, AIRLOCK_VERSION, ... from
    their environment: a {{variable}} inside a shell's -c script is refused when the
    driver opens. Secrets reach the environment only.

    Each run is bounded: past its timeout the whole group (grandchildren included)
    gets SIGTERM, then SIGKILL half a second later. stdout and stderr are captured up
    to max_output bytes each (the rest is drained and counted, so the child never
    blocks), redacted, returned and written with the command, exit code and duration
    to EVIDENCE_DIR/<seq>-<step>.log. A cut that splits a secret drops the secret's
    head (al_redact_partial_suffix) before redaction.

    Instances: "start" and "stop" are required. A start or stop step MAY print lines
    "airlock-pid: N", "airlock-endpoint: URL" (start) and "airlock-stop: forced" (stop)
    on stdout; the driver records them. Probes run the "probe" step when configured
    (exit 0: success; {{probe}} is liveness or readiness), else an HTTP GET of the
    instance's endpoint (from the start step or the endpoint template). A step started
    in the background by a step (a service) must not keep the step's stdout/stderr
    open: the driver stops reading shortly after the step itself exits.

    Threading: one user at a time (al_driver.h).
*/
#include "deploy/al_driver_int.h"
#include "base/al_child.h"
#include "base/al_clock.h"
#include "base/al_file.h"
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_KILL_GRACE_MS 500
#define S_DRAIN_MS 100
#define S_ERROR_TAIL 400

typedef struct {
    char *name;
    char **argv;
    int timeout_ms;
} s_step_t;

typedef struct {
    al_driver_instance_t info;
    char *artifact;
    char *digest;
    char *env;
} s_instance_t;

typedef struct {
    s_step_t *steps;
    size_t step_count;
    char *endpoint;                 // template, or NULL
    char *host;
    char *liveness_path;
    char *readiness_path;
    char *evidence_dir;
    int step_timeout_ms;
    int stop_timeout_ms;
    int probe_timeout_ms;
    size_t max_output;
    const al_driver_secrets_t *secrets;
    s_instance_t *instances;
    size_t count;
    unsigned sequence;              // instance ids
    unsigned runs;                  // evidence files
    char active [AL_DRIVER_SET_SIZE];
} s_exec_t;

static void
s_exec_close (void *handle)
{
    s_exec_t *self = handle;
    if (!self)
        return;
    for (size_t i = 0; i < self->step_count; i++) {
        free (self->steps [i].name);
        al_strv_free (&self->steps [i].argv);
    }
    free (self->steps);
    for (size_t i = 0; i < self->count; i++) {
        free (self->instances [i].artifact);
        free (self->instances [i].digest);
        free (self->instances [i].env);
    }
    free (self->instances);
    free (self->endpoint);
    free (self->host);
    free (self->liveness_path);
    free (self->readiness_path);
    free (self->evidence_dir);
    free (self);
}

static const s_step_t *
s_step (const s_exec_t *self, const char *name)
{
    for (size_t i = 0; i < self->step_count; i++)
        if (strcmp (self->steps [i].name, name) == 0)
            return &self->steps [i];
    return NULL;
}

static void *
s_exec_open (const al_driver_config_t *config, const al_driver_secrets_t *secrets,
             char *error, size_t error_size)
{
    assert (config && secrets);
    if (!config->evidence_dir || !*config->evidence_dir) {
        snprintf (error, error_size, "evidence_dir: required");
        return NULL;
    }
    s_exec_t *self = calloc (1, sizeof (s_exec_t));
    if (!self) {
        snprintf (error, error_size, "out of memory");
        return NULL;
    }
    self->secrets = secrets;
    self->steps = calloc (config->step_count + 1, sizeof (s_step_t));
    if (!al_driver_config_copy (config, &self->host, &self->liveness_path, &self->readiness_path,
                                &self->evidence_dir, error, error_size))
        goto cleanup;
    if (!self->steps) {
        snprintf (error, error_size, "out of memory");
        goto cleanup;
    }
    self->step_timeout_ms = config->step_timeout_ms > 0 ? config->step_timeout_ms
                                                        : AL_DRIVER_DEFAULT_STEP_TIMEOUT_MS;
    self->stop_timeout_ms = config->stop_timeout_ms > 0 ? config->stop_timeout_ms
                                                        : AL_DRIVER_DEFAULT_STOP_TIMEOUT_MS;
    self->probe_timeout_ms = config->probe_timeout_ms > 0 ? config->probe_timeout_ms
                                                          : AL_PROBE_DEFAULT_TIMEOUT_MS;
    self->max_output = config->max_output > 0 ? config->max_output : AL_DRIVER_DEFAULT_MAX_OUTPUT;
    snprintf (self->active, sizeof (self->active), "%s", AL_DRIVER_DEFAULT_SET);
    for (size_t i = 0; i < config->step_count; i++) {
        const al_driver_step_t *step = &config->steps [i];
        char where [128];
        snprintf (where, sizeof (where), "steps[%zu]", i);
        if (!al_check_name (step->name, 32, where, error, error_size))
            goto cleanup;
        if (s_step (self, step->name)) {
            snprintf (error, error_size, "steps.%s: defined twice", step->name);
            goto cleanup;
        }
        if (!step->argv || !step->argv [0]) {
            snprintf (error, error_size, "steps.%s: argv is empty", step->name);
            goto cleanup;
        }
        snprintf (where, sizeof (where), "steps.%s.argv", step->name);
        if (!al_template_check_argv (step->argv, where, error, error_size))
            goto cleanup;
        s_step_t *copy = &self->steps [self->step_count];
        copy->name = strdup (step->name);
        copy->argv = al_strv_dup (step->argv);
        copy->timeout_ms = step->timeout_ms > 0 ? step->timeout_ms : self->step_timeout_ms;
        self->step_count++;
        if (!copy->name || !copy->argv) {
            snprintf (error, error_size, "out of memory");
            goto cleanup;
        }
    }
    if (!s_step (self, "start") || !s_step (self, "stop")) {
        snprintf (error, error_size, "steps: \"start\" and \"stop\" are required");
        goto cleanup;
    }
    if (config->endpoint) {
        if (!al_template_check (config->endpoint, "endpoint", error, error_size))
            goto cleanup;
        if (!(self->endpoint = strdup (config->endpoint))) {
            snprintf (error, error_size, "out of memory");
            goto cleanup;
        }
    }
    if (al_file_make_directories (self->evidence_dir, 0700, error, error_size) != 0)
        goto cleanup;
    return self;

cleanup:
    s_exec_close (self);
    return NULL;
}

//  --------------------------------------------------------------------------
//  Running one step

//  argv as one readable line, single-quoting what a shell would split.
static char *
s_command_text (char *const *argv)
{
    size_t capacity = 1;
    for (size_t i = 0; argv [i]; i++)
        capacity += strlen (argv [i]) * 4 + 3;
    char *text = malloc (capacity);
    if (!text)
        return NULL;
    char *out = text;
    for (size_t i = 0; argv [i]; i++) {
        if (i)
            *out++ = ' ';
        bool plain = *argv [i] != 0;
        for (const char *c = argv [i]; *c && plain; c++)
            plain = strchr ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                            "_-./:=@,+%", *c) != NULL;
        if (plain) {
            out = stpcpy (out, argv [i]);
            continue;
        }
        *out++ = '\'';
        for (const char *c = argv [i]; *c; c++)
            if (*c == '\'')
                out = stpcpy (out, "'\\''");
            else
                *out++ = *c;
        *out++ = '\'';
    }
    *out = 0;
    return text;
}

//  Redacted copy of captured output (dropped: bytes beyond the limit were cut, so its
//  end may be the head of a secret, dropped before redaction).
static char *
s_output_redact (const char *data, size_t size, size_t dropped, const al_redact_t *redact, size_t *size_p)
{
    if (dropped > 0)
        size -= al_redact_partial_suffix (redact, data, size);
    return al_redact_text (redact, data, size, size_p);
}

//  The evidence file of a run.
static void
s_write_evidence (s_exec_t *self, const char *step, al_driver_run_t *run)
{
    if (asprintf (&run->evidence_path, "%s/%04u-%s.log", self->evidence_dir, ++self->runs, step) < 0) {
        run->evidence_path = NULL;
        return;
    }
    char *text = NULL;
    int size = asprintf (&text,
        "step: %s\ncommand: %s\nexit_code: %d\ntimed_out: %s\nduration_ms: %.1f\n"
        "stdout_truncated: %s\nstderr_truncated: %s\n--- stdout ---\n%s\n--- stderr ---\n%s\n",
        step, run->command, run->exit_code, run->timed_out ? "true" : "false", run->duration_ms,
        run->out_truncated ? "true" : "false", run->err_truncated ? "true" : "false",
        run->out, run->err);
    char ignored [256];
    if (size < 0 || al_file_write_atomic (run->evidence_path, text, (size_t) size, 0600,
                                          ignored, sizeof ignored) != 0) {
        free (run->evidence_path);
        run->evidence_path = NULL;
    }
    free (text);
}

//  The tail of a run's output for an error text: stderr, else stdout.
static const char *
s_run_tail (const al_driver_run_t *run)
{
    const char *text = run->err_size ? run->err : run->out ? run->out : "";
    size_t size = strlen (text);
    return size > S_ERROR_TAIL ? text + size - S_ERROR_TAIL : text;
}

//  Run step with tvars (and extra_env). Fills run; returns OK when it exited 0.
static al_driver_status_t
s_run (s_exec_t *self, const s_step_t *step, al_tvars_t *tvars, const char *const *extra_env,
       int extra_timeout_ms, al_driver_run_t *run, char *error, size_t error_size)
{
    const al_redact_t *redact = self->secrets->redact;
    al_driver_status_t status = AL_DRIVER_ERR_SYSTEM;
    tvars->values [AL_TVAR_STEP] = step->name;
    tvars->values [AL_TVAR_EVIDENCE_DIR] = self->evidence_dir;
    char **argv = al_template_expand_argv ((const char *const *) step->argv, tvars);
    al_env_t *env = al_env_new ();
    char *command = argv ? s_command_text (argv) : NULL;
    al_child_t *child = NULL;
    if (!argv || !env || !command
    ||  !al_env_put_tvars (env, tvars) || !al_env_put_all (env, extra_env)
    ||  !al_env_put_all (env, self->secrets->env)) {
        snprintf (error, error_size, "steps.%s: out of memory", step->name);
        goto cleanup;
    }
    run->command = al_redact_text (redact, command, strlen (command), NULL);
    //  A step that exits normally may leave a service it started in its group: that is
    //  the operator's to keep (keep_leftovers), and its output is not waited for past
    //  S_DRAIN_MS. A step that timed out takes its group along (al_child_kill).
    al_child_options_t options = {
        .environment = al_env_array (env),
        .out = AL_CHILD_PIPE, .err = AL_CHILD_PIPE,
        .out_max = self->max_output, .err_max = self->max_output,
        .keep_leftovers = true, .drain_ms = S_DRAIN_MS
    };
    char spawn_error [512];
    int64_t started = al_clock_mono_ms ();
    child = al_child_start (argv, &options, spawn_error, sizeof (spawn_error));
    if (!child) {
        al_driver_error_set (error, error_size, redact, "steps.%s: %s", step->name, spawn_error);
        status = AL_DRIVER_ERR_FAILED;
        goto cleanup;
    }
    int timeout_ms = step->timeout_ms + extra_timeout_ms;
    if (!al_child_wait (child, timeout_ms)) {
        run->timed_out = true;
        al_child_kill (child, S_KILL_GRACE_MS);
    }
    run->exit_code = al_child_exit_code (child);
    run->duration_ms = (double) (al_clock_mono_ms () - started);
    size_t out_size, err_size;
    const char *out = al_child_out (child, &out_size);
    const char *err = al_child_err (child, &err_size);
    run->out = s_output_redact (out, out_size, al_child_out_dropped (child), redact, &run->out_size);
    run->err = s_output_redact (err, err_size, al_child_err_dropped (child), redact, &run->err_size);
    run->out_truncated = al_child_out_dropped (child) > 0;
    run->err_truncated = al_child_err_dropped (child) > 0;
    if (!run->out || !run->err || !run->command) {
        snprintf (error, error_size, "steps.%s: out of memory", step->name);
        goto cleanup;
    }
    s_write_evidence (self, step->name, run);
    if (run->timed_out) {
        al_driver_error_set (error, error_size, redact, "steps.%s: timed out after %d ms, process group killed "
                             "(evidence %s): %s", step->name, timeout_ms,
                             run->evidence_path ? run->evidence_path : "not written", s_run_tail (run));
        status = AL_DRIVER_ERR_TIMEOUT;
    }
    else
    if (run->exit_code != 0) {
        al_driver_error_set (error, error_size, redact, "steps.%s: exited with exit code %d (evidence %s): %s",
                             step->name, run->exit_code,
                             run->evidence_path ? run->evidence_path : "not written", s_run_tail (run));
        status = AL_DRIVER_ERR_FAILED;
    }
    else
        status = AL_DRIVER_OK;

cleanup:
    al_child_destroy (&child);          // wipes what it captured
    free (command);
    al_env_destroy (&env);
    al_strv_free (&argv);
    return status;
}

//  The value of "airlock-KEY: value" in out, into value; false if absent.
static bool
s_fact (const char *out, const char *key, char *value, size_t value_size)
{
    char prefix [64];
    snprintf (prefix, sizeof (prefix), "airlock-%s:", key);
    for (const char *line = out; line && *line; ) {
        const char *end = strchr (line, '\n');
        size_t length = end ? (size_t) (end - line) : strlen (line);
        if (length > strlen (prefix) && strncmp (line, prefix, strlen (prefix)) == 0) {
            const char *start = line + strlen (prefix);
            while (*start == ' ')
                start++;
            size_t size = length - (size_t) (start - line);
            while (size > 0 && (start [size - 1] == '\r' || start [size - 1] == ' '))
                size--;
            snprintf (value, value_size, "%.*s", (int) size, start);
            return true;
        }
        line = end ? end + 1 : NULL;
    }
    return false;
}

//  --------------------------------------------------------------------------
//  Members

static s_instance_t *
s_find (s_exec_t *self, const char *id)
{
    for (size_t i = 0; i < self->count; i++)
        if (strcmp (self->instances [i].info.id, id) == 0)
            return &self->instances [i];
    return NULL;
}

//  The variables of a started instance.
static void
s_instance_tvars (const s_instance_t *instance, al_tvars_t *tvars, char *instance_text,
                  char *port_text, char *pid_text)
{
    const al_driver_instance_t *info = &instance->info;
    sprintf (instance_text, "%d", info->instance);
    sprintf (port_text, "%d", info->port);
    sprintf (pid_text, "%d", (int) info->pid);
    memset (tvars, 0, sizeof (*tvars));
    tvars->values [AL_TVAR_SERVICE] = info->service;
    tvars->values [AL_TVAR_VERSION] = info->version;
    tvars->values [AL_TVAR_ARTIFACT] = instance->artifact;
    tvars->values [AL_TVAR_DIGEST] = instance->digest;
    tvars->values [AL_TVAR_ENV] = instance->env;
    tvars->values [AL_TVAR_INSTANCE] = instance_text;
    tvars->values [AL_TVAR_PORT] = info->port ? port_text : "";
    tvars->values [AL_TVAR_SET] = info->set;
    tvars->values [AL_TVAR_ID] = info->id;
    tvars->values [AL_TVAR_PID] = info->pid ? pid_text : "";
    tvars->values [AL_TVAR_ENDPOINT] = info->endpoint;
}

static al_driver_status_t
s_exec_prerequisites (void *handle, const al_driver_vars_t *vars, al_driver_report_t *report,
                      char *error, size_t error_size)
{
    s_exec_t *self = handle;
    al_tvars_t tvars = { { NULL } };
    al_tvars_from_vars (&tvars, vars);
    for (size_t i = 0; i < self->step_count; i++) {
        const s_step_t *step = &self->steps [i];
        char check [64];
        snprintf (check, sizeof (check), "steps.%s", step->name);
        al_driver_check_program (report, check, step->argv [0], &tvars, vars != NULL);
    }
    al_driver_check_evidence_dir (report, self->evidence_dir);
    const s_step_t *step = s_step (self, "prerequisites");
    if (step && al_driver_report_failures (report) == 0) {
        al_driver_run_t run = { 0 };
        char why [1024];
        al_driver_status_t status = s_run (self, step, &tvars, NULL, 0, &run, why, sizeof (why));
        al_driver_report_add (report, "steps.prerequisites ran", status == AL_DRIVER_OK, "%s",
                              status == AL_DRIVER_OK ? (run.evidence_path ? run.evidence_path : "exit code 0")
                                                     : why);
        al_driver_run_clear (&run);
    }
    return al_driver_report_verdict (report, error, error_size);
}

static al_driver_status_t
s_exec_start_instance (void *handle, const al_driver_spec_t *spec, al_driver_instance_t *info,
                       char *error, size_t error_size)
{
    s_exec_t *self = handle;
    if (!al_check_spec (spec, error, error_size))
        return AL_DRIVER_ERR_CONFIG;
    const s_step_t *step = s_step (self, "start");
    int port = spec->port;
    bool wants_port = al_template_uses (self->endpoint, AL_TVAR_PORT);
    for (size_t i = 0; step->argv [i]; i++)
        wants_port |= al_template_uses (step->argv [i], AL_TVAR_PORT);
    if (port == 0 && wants_port && (port = al_free_port (self->host, error, error_size)) < 0)
        return AL_DRIVER_ERR_SYSTEM;
    s_instance_t *grown = realloc (self->instances, (self->count + 1) * sizeof (s_instance_t));
    if (!grown) {
        snprintf (error, error_size, "out of memory");
        return AL_DRIVER_ERR_SYSTEM;
    }
    self->instances = grown;
    s_instance_t instance = { .info.instance = spec->instance, .info.port = port };
    const char *set = spec->set ? spec->set : AL_DRIVER_DEFAULT_SET;
    snprintf (instance.info.id, sizeof (instance.info.id), "%s-%d.%u", spec->vars.service,
              spec->instance, ++self->sequence);
    snprintf (instance.info.service, sizeof (instance.info.service), "%s", spec->vars.service);
    snprintf (instance.info.version, sizeof (instance.info.version), "%s", spec->vars.version);
    snprintf (instance.info.set, sizeof (instance.info.set), "%s", set);
    instance.artifact = strdup (spec->vars.artifact ? spec->vars.artifact : "");
    instance.digest = strdup (spec->vars.digest ? spec->vars.digest : "");
    instance.env = strdup (spec->vars.env ? spec->vars.env : "");
    if (!instance.artifact || !instance.digest || !instance.env) {
        free (instance.artifact);
        free (instance.digest);
        free (instance.env);
        snprintf (error, error_size, "out of memory");
        return AL_DRIVER_ERR_SYSTEM;
    }
    al_tvars_t tvars;
    char instance_text [16], port_text [16], pid_text [16];
    s_instance_tvars (&instance, &tvars, instance_text, port_text, pid_text);
    tvars.values [AL_TVAR_ENDPOINT] = NULL;
    tvars.values [AL_TVAR_PID] = NULL;
    al_driver_run_t run = { 0 };
    al_driver_status_t status = s_run (self, step, &tvars, spec->extra_env, 0, &run, error, error_size);
    if (status == AL_DRIVER_OK) {
        char fact [AL_DRIVER_ENDPOINT_SIZE];
        if (s_fact (run.out, "pid", fact, sizeof (fact)))
            instance.info.pid = (pid_t) atoi (fact);
        if (s_fact (run.out, "endpoint", fact, sizeof (fact)))
            snprintf (instance.info.endpoint, sizeof (instance.info.endpoint), "%s", fact);
        else
        if (self->endpoint) {
            char *endpoint = al_template_expand (self->endpoint, &tvars);
            snprintf (instance.info.endpoint, sizeof (instance.info.endpoint), "%s",
                      endpoint ? endpoint : "");
            free (endpoint);
        }
        instance.info.running = true;
        self->instances [self->count++] = instance;
        *info = instance.info;
        info->active = strcmp (info->set, self->active) == 0;
    }
    else {
        free (instance.artifact);
        free (instance.digest);
        free (instance.env);
    }
    al_driver_run_clear (&run);
    return status;
}

static al_driver_status_t
s_exec_stop_instance (void *handle, const char *id, int grace_ms, al_driver_stop_t *result,
                      char *error, size_t error_size)
{
    s_exec_t *self = handle;
    s_instance_t *instance = s_find (self, id);
    if (!instance) {
        snprintf (error, error_size, "instance %.64s: not found", id);
        return AL_DRIVER_ERR_NOT_FOUND;
    }
    if (!instance->info.running)
        return AL_DRIVER_OK;
    if (grace_ms <= 0)
        grace_ms = self->stop_timeout_ms;
    al_tvars_t tvars;
    char instance_text [16], port_text [16], pid_text [16], grace_text [16];
    s_instance_tvars (instance, &tvars, instance_text, port_text, pid_text);
    snprintf (grace_text, sizeof (grace_text), "%d", grace_ms);
    tvars.values [AL_TVAR_GRACE_MS] = grace_text;
    al_driver_run_t run = { 0 };
    al_driver_status_t status = s_run (self, s_step (self, "stop"), &tvars, NULL, grace_ms,
                                       &run, error, error_size);
    if (status == AL_DRIVER_OK) {
        char fact [64];
        result->forced = s_fact (run.out, "stop", fact, sizeof (fact)) && strcmp (fact, "forced") == 0;
        instance->info.running = false;
    }
    al_driver_run_clear (&run);
    return status;
}

static al_driver_status_t
s_exec_probe (void *handle, const char *id, al_driver_probe_kind_t kind, al_probe_result_t *result,
              char *error, size_t error_size)
{
    s_exec_t *self = handle;
    s_instance_t *instance = s_find (self, id);
    if (!instance) {
        snprintf (error, error_size, "instance %.64s: not found", id);
        return AL_DRIVER_ERR_NOT_FOUND;
    }
    memset (result, 0, sizeof (*result));
    if (!instance->info.running) {
        snprintf (result->detail, sizeof (result->detail), "instance was stopped");
        return AL_DRIVER_OK;
    }
    const s_step_t *step = s_step (self, "probe");
    if (step) {
        al_tvars_t tvars;
        char instance_text [16], port_text [16], pid_text [16];
        s_instance_tvars (instance, &tvars, instance_text, port_text, pid_text);
        tvars.values [AL_TVAR_PROBE] = kind == AL_DRIVER_LIVENESS ? "liveness" : "readiness";
        al_driver_run_t run = { 0 };
        char why [512];
        al_driver_status_t status = s_run (self, step, &tvars, NULL, 0, &run, why, sizeof (why));
        result->ok = status == AL_DRIVER_OK;
        result->timed_out = run.timed_out;
        result->latency_ms = run.duration_ms;
        snprintf (result->detail, sizeof (result->detail), "%.250s", result->ok ? "exit code 0" : why);
        al_driver_run_clear (&run);
        if (status == AL_DRIVER_ERR_SYSTEM) {
            snprintf (error, error_size, "%s", why);
            return status;
        }
        return AL_DRIVER_OK;
    }
    if (!*instance->info.endpoint) {
        snprintf (error, error_size, "instance %s: no probe step and no endpoint to probe", id);
        return AL_DRIVER_ERR_UNSUPPORTED;
    }
    al_driver_probe_endpoint (instance->info.endpoint, kind, self->liveness_path, self->readiness_path,
                              self->probe_timeout_ms, result);
    return AL_DRIVER_OK;
}

static al_driver_status_t
s_exec_list_instances (void *handle, al_driver_instance_t *instances, size_t max, size_t *count_p,
                       char *error, size_t error_size)
{
    (void) error;
    (void) error_size;
    s_exec_t *self = handle;
    for (size_t i = 0; i < self->count && i < max; i++) {
        instances [i] = self->instances [i].info;
        instances [i].active = strcmp (instances [i].set, self->active) == 0;
    }
    *count_p = self->count;
    return AL_DRIVER_OK;
}

static al_driver_status_t
s_exec_switch_active (void *handle, const char *set, char *error, size_t error_size)
{
    s_exec_t *self = handle;
    const s_step_t *step = s_step (self, "switch");
    if (!step) {
        snprintf (error, error_size, "steps.switch: not configured, cannot switch traffic to %s", set);
        return AL_DRIVER_ERR_UNSUPPORTED;
    }
    al_tvars_t tvars = { { NULL } };
    tvars.values [AL_TVAR_SET] = set;
    //  The deployment's variables, from the newest instance of that set if any.
    for (size_t i = self->count; i-- > 0; )
        if (strcmp (self->instances [i].info.set, set) == 0) {
            tvars.values [AL_TVAR_SERVICE] = self->instances [i].info.service;
            tvars.values [AL_TVAR_VERSION] = self->instances [i].info.version;
            tvars.values [AL_TVAR_ARTIFACT] = self->instances [i].artifact;
            tvars.values [AL_TVAR_DIGEST] = self->instances [i].digest;
            tvars.values [AL_TVAR_ENV] = self->instances [i].env;
            break;
        }
    al_driver_run_t run = { 0 };
    al_driver_status_t status = s_run (self, step, &tvars, NULL, 0, &run, error, error_size);
    if (status == AL_DRIVER_OK)
        snprintf (self->active, sizeof (self->active), "%s", set);
    al_driver_run_clear (&run);
    return status;
}

static al_driver_status_t
s_exec_run_step (void *handle, const char *name, const al_driver_vars_t *vars, al_driver_run_t *run,
                 char *error, size_t error_size)
{
    s_exec_t *self = handle;
    const s_step_t *step = s_step (self, name);
    if (!step) {
        snprintf (error, error_size, "steps.%.64s: not configured", name);
        return AL_DRIVER_ERR_NOT_FOUND;
    }
    if (vars && (!al_check_text (vars->service, "service", error, error_size)
             ||  !al_check_text (vars->version, "version", error, error_size)
             ||  !al_check_text (vars->artifact, "artifact", error, error_size)
             ||  !al_check_text (vars->digest, "digest", error, error_size)
             ||  !al_check_text (vars->env, "env", error, error_size)))
        return AL_DRIVER_ERR_CONFIG;
    al_tvars_t tvars = { { NULL } };
    al_tvars_from_vars (&tvars, vars);
    return s_run (self, step, &tvars, NULL, 0, run, error, error_size);
}

const al_driver_ops_t al_driver_exec_ops = {
    .name = "exec",
    .version = AL_DRIVER_OPS_VERSION,
    .open = s_exec_open,
    .close = s_exec_close,
    .prerequisites = s_exec_prerequisites,
    .start_instance = s_exec_start_instance,
    .stop_instance = s_exec_stop_instance,
    .probe = s_exec_probe,
    .list_instances = s_exec_list_instances,
    .switch_active = s_exec_switch_active,
    .run_step = s_exec_run_step,
};
