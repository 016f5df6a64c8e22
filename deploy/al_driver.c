/*  al_driver.c: the driver registry, the dispatcher, and the internals both built-in
    drivers share (templates, environments, child processes, ports, evidence files).

    The registry is a small array under a mutex; the built-in drivers are registered
    once, on first use. al_driver_open resolves secret references (environment
    variables and files of airlock's own process) before the driver opens, so a
    missing secret fails the deploy before anything runs; the resolved values live in
    the al_driver_t (a redactor and the children's environment) and are wiped on
    destroy. Every dispatch redacts the error text it returns, whatever the driver did.

    Threading: the registry is thread-safe; an al_driver_t has one user at a time.
*/
#include "deploy/al_driver_int.h"
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define S_MAX_DRIVERS 16

//  --------------------------------------------------------------------------
//  Registry

static pthread_mutex_t s_registry_lock = PTHREAD_MUTEX_INITIALIZER;
static al_driver_ops_t s_registry [S_MAX_DRIVERS];
static size_t s_registry_count;
static bool s_builtins_done;

static al_driver_status_t
s_unsupported_switch (void *handle, const char *set, char *error, size_t error_size)
{
    (void) handle;
    (void) set;
    snprintf (error, error_size, "this driver cannot switch the active set");
    return AL_DRIVER_ERR_UNSUPPORTED;
}

static al_driver_status_t
s_unsupported_run_step (void *handle, const char *step, const al_driver_vars_t *vars,
                        al_driver_run_t *run, char *error, size_t error_size)
{
    (void) handle;
    (void) vars;
    (void) run;
    snprintf (error, error_size, "%s: this driver does not run named steps", step);
    return AL_DRIVER_ERR_UNSUPPORTED;
}

static al_driver_status_t
s_register_locked (const al_driver_ops_t *ops, char *error, size_t error_size)
{
    const char *missing = !ops->name ? "name" : !ops->open ? "open" : !ops->close ? "close"
        : !ops->prerequisites ? "prerequisites" : !ops->start_instance ? "start_instance"
        : !ops->stop_instance ? "stop_instance" : !ops->probe ? "probe"
        : !ops->list_instances ? "list_instances" : NULL;
    if (missing) {
        snprintf (error, error_size, "driver %s: mandatory member %s is not set",
                  ops->name ? ops->name : "(unnamed)", missing);
        return AL_DRIVER_ERR_CONFIG;
    }
    if (ops->version != AL_DRIVER_OPS_VERSION) {
        snprintf (error, error_size, "driver %s: ops version %d, expected %d",
                  ops->name, ops->version, AL_DRIVER_OPS_VERSION);
        return AL_DRIVER_ERR_CONFIG;
    }
    for (size_t i = 0; i < s_registry_count; i++)
        if (strcmp (s_registry [i].name, ops->name) == 0) {
            snprintf (error, error_size, "driver %s: the name is already registered", ops->name);
            return AL_DRIVER_ERR_CONFIG;
        }
    if (s_registry_count == S_MAX_DRIVERS) {
        snprintf (error, error_size, "driver %s: the registry is full", ops->name);
        return AL_DRIVER_ERR_SYSTEM;
    }
    al_driver_ops_t *slot = &s_registry [s_registry_count++];
    *slot = *ops;
    if (!slot->switch_active)
        slot->switch_active = s_unsupported_switch;
    if (!slot->run_step)
        slot->run_step = s_unsupported_run_step;
    return AL_DRIVER_OK;
}

static void
s_builtins_locked (void)
{
    if (s_builtins_done)
        return;
    s_builtins_done = true;
    char error [256];
    al_driver_status_t status = s_register_locked (&al_driver_process_ops, error, sizeof (error));
    assert (status == AL_DRIVER_OK);
    status = s_register_locked (&al_driver_exec_ops, error, sizeof (error));
    assert (status == AL_DRIVER_OK);
}

al_driver_status_t
al_driver_register (const al_driver_ops_t *ops, char *error, size_t error_size)
{
    assert (ops);
    pthread_mutex_lock (&s_registry_lock);
    s_builtins_locked ();
    al_driver_status_t status = s_register_locked (ops, error, error_size);
    pthread_mutex_unlock (&s_registry_lock);
    return status;
}

const al_driver_ops_t *
al_driver_find (const char *name)
{
    assert (name);
    const al_driver_ops_t *found = NULL;
    pthread_mutex_lock (&s_registry_lock);
    s_builtins_locked ();
    for (size_t i = 0; i < s_registry_count && !found; i++)
        if (strcmp (s_registry [i].name, name) == 0)
            found = &s_registry [i];
    pthread_mutex_unlock (&s_registry_lock);
    return found;
}

const char *
al_driver_status_name (al_driver_status_t status)
{
    switch (status) {
        case AL_DRIVER_OK:              return "ok";
        case AL_DRIVER_ERR_CONFIG:      return "invalid configuration";
        case AL_DRIVER_ERR_FAILED:      return "failed";
        case AL_DRIVER_ERR_TIMEOUT:     return "timeout";
        case AL_DRIVER_ERR_NOT_FOUND:   return "not found";
        case AL_DRIVER_ERR_UNSUPPORTED: return "unsupported";
        case AL_DRIVER_ERR_SYSTEM:      return "system error";
    }
    return "unknown";
}

//  --------------------------------------------------------------------------
//  Reports and runs

typedef struct {
    char *check;
    bool ok;
    char *detail;
} s_check_t;

struct _al_driver_report_t {
    s_check_t *checks;
    size_t count;
    size_t failures;
};

al_driver_report_t *
al_driver_report_new (void)
{
    return calloc (1, sizeof (al_driver_report_t));
}

void
al_driver_report_destroy (al_driver_report_t **self_p)
{
    assert (self_p);
    al_driver_report_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->count; i++) {
        free (self->checks [i].check);
        free (self->checks [i].detail);
    }
    free (self->checks);
    free (self);
    *self_p = NULL;
}

bool
al_driver_report_add (al_driver_report_t *self, const char *check, bool ok, const char *format, ...)
{
    assert (self);
    assert (check);
    char detail [1024];
    va_list args;
    va_start (args, format);
    vsnprintf (detail, sizeof (detail), format, args);
    va_end (args);
    if (!ok)
        self->failures++;
    s_check_t *grown = realloc (self->checks, (self->count + 1) * sizeof (s_check_t));
    if (!grown)
        return ok;          // the failure count still tells the truth
    self->checks = grown;
    s_check_t *entry = &self->checks [self->count];
    entry->check = strdup (check);
    entry->detail = strdup (detail);
    entry->ok = ok;
    if (entry->check && entry->detail)
        self->count++;
    else {
        free (entry->check);
        free (entry->detail);
    }
    return ok;
}

size_t
al_driver_report_size (const al_driver_report_t *self)
{
    assert (self);
    return self->count;
}

size_t
al_driver_report_failures (const al_driver_report_t *self)
{
    assert (self);
    return self->failures;
}

const char *
al_driver_report_check (const al_driver_report_t *self, size_t index, bool *ok_p, const char **detail_p)
{
    assert (self);
    if (index >= self->count)
        return NULL;
    if (ok_p)
        *ok_p = self->checks [index].ok;
    if (detail_p)
        *detail_p = self->checks [index].detail;
    return self->checks [index].check;
}

//  Redact every detail of a report (drivers should have; this is the backstop).
static void
s_report_redact (al_driver_report_t *report, const al_redact_t *redact)
{
    for (size_t i = 0; report && i < report->count; i++) {
        char *redacted = al_redact_text (redact, report->checks [i].detail,
                                         strlen (report->checks [i].detail), NULL);
        if (redacted) {
            free (report->checks [i].detail);
            report->checks [i].detail = redacted;
        }
    }
}

void
al_driver_run_clear (al_driver_run_t *run)
{
    if (!run)
        return;
    free (run->command);
    free (run->out);
    free (run->err);
    free (run->evidence_path);
    memset (run, 0, sizeof (*run));
}

//  --------------------------------------------------------------------------
//  Dispatch

struct _al_driver_t {
    const al_driver_ops_t *ops;
    void *handle;
    al_redact_t *redact;
    char **secret_env;              // "AS=value", NULL-terminated; wiped on destroy
    size_t secret_count;
    al_driver_secrets_t secrets;
    char active [AL_DRIVER_SET_SIZE];
};

static void
s_secret_env_free (al_driver_t *self)
{
    for (size_t i = 0; self->secret_env && self->secret_env [i]; i++) {
        explicit_bzero (self->secret_env [i], strlen (self->secret_env [i]));
        free (self->secret_env [i]);
    }
    free (self->secret_env);
    self->secret_env = NULL;
}

//  Read a secret file: at most 64 KiB, one trailing newline dropped. Caller wipes.
static char *
s_read_secret_file (const char *path, char *error, size_t error_size, const char *name)
{
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf (error, error_size, "secret %s: cannot open %s: %s", name, path, strerror (errno));
        return NULL;
    }
    size_t capacity = 65536;
    char *value = malloc (capacity + 1);
    size_t size = 0;
    while (value && size < capacity) {
        ssize_t got = read (fd, value + size, capacity - size);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        size += (size_t) got;
    }
    close (fd);
    if (!value) {
        snprintf (error, error_size, "secret %s: out of memory", name);
        return NULL;
    }
    value [size] = 0;
    if (size > 0 && value [size - 1] == '\n')
        value [--size] = 0;
    if (size > 0 && value [size - 1] == '\r')
        value [--size] = 0;
    if (strlen (value) != size) {
        explicit_bzero (value, size);
        free (value);
        snprintf (error, error_size, "secret %s: %s holds a NUL byte", name, path);
        return NULL;
    }
    return value;
}

static int
s_resolve_secrets (al_driver_t *self, const al_driver_config_t *config, char *error, size_t error_size)
{
    self->secret_env = calloc (config->secret_count + 1, sizeof (char *));
    if (!self->secret_env) {
        snprintf (error, error_size, "secrets: out of memory");
        return -1;
    }
    for (size_t i = 0; i < config->secret_count; i++) {
        const al_driver_secret_ref_t *ref = &config->secrets [i];
        const char *name = ref->name ? ref->name : "";
        if ((ref->env != NULL) == (ref->file != NULL)) {
            snprintf (error, error_size, "secret %s: give exactly one of env and file", name);
            return -1;
        }
        const char *as = ref->as ? ref->as : name;
        if (!al_check_name (as, 128, "secret variable", error, error_size) || strchr (as, '.')
        ||  strchr (as, '-')) {
            snprintf (error, error_size, "secret %s: %s is not an environment variable name", name, as);
            return -1;
        }
        char *value;
        if (ref->env) {
            const char *found = getenv (ref->env);
            if (!found) {
                snprintf (error, error_size, "secret %s: environment variable %s is not set",
                          name, ref->env);
                return -1;
            }
            value = strdup (found);
            if (!value) {
                snprintf (error, error_size, "secret %s: out of memory", name);
                return -1;
            }
        }
        else {
            value = s_read_secret_file (ref->file, error, error_size, name);
            if (!value)
                return -1;
        }
        int rc = al_redact_add (self->redact, name, value, error, error_size);
        char *assignment = NULL;
        if (rc == 0 && asprintf (&assignment, "%s=%s", as, value) < 0) {
            assignment = NULL;
            snprintf (error, error_size, "secret %s: out of memory", name);
            rc = -1;
        }
        explicit_bzero (value, strlen (value));
        free (value);
        if (rc != 0)
            return -1;
        self->secret_env [self->secret_count++] = assignment;
    }
    return 0;
}

al_driver_t *
al_driver_open (const char *name, const al_driver_config_t *config, char *error, size_t error_size)
{
    assert (name);
    assert (config);
    assert (error && error_size > 0);
    *error = 0;
    const al_driver_ops_t *ops = al_driver_find (name);
    if (!ops) {
        snprintf (error, error_size, "driver %s: no such driver (built in: process, exec)", name);
        return NULL;
    }
    al_driver_t *self = calloc (1, sizeof (al_driver_t));
    if (!self) {
        snprintf (error, error_size, "driver %s: out of memory", name);
        return NULL;
    }
    self->ops = ops;
    snprintf (self->active, sizeof (self->active), "%s", AL_DRIVER_DEFAULT_SET);
    self->redact = al_redact_new ();
    if (!self->redact) {
        snprintf (error, error_size, "driver %s: out of memory", name);
        goto cleanup;
    }
    if (s_resolve_secrets (self, config, error, error_size) != 0)
        goto cleanup;
    self->secrets.redact = self->redact;
    self->secrets.env = (const char *const *) self->secret_env;
    self->handle = ops->open (config, &self->secrets, error, error_size);
    if (!self->handle) {
        al_redact_buffer (self->redact, error, error_size);
        goto cleanup;
    }
    return self;

cleanup:
    s_secret_env_free (self);
    al_redact_destroy (&self->redact);
    free (self);
    return NULL;
}

void
al_driver_destroy (al_driver_t **self_p)
{
    assert (self_p);
    al_driver_t *self = *self_p;
    if (!self)
        return;
    self->ops->close (self->handle);
    s_secret_env_free (self);
    al_redact_destroy (&self->redact);
    free (self);
    *self_p = NULL;
}

const char *
al_driver_name (const al_driver_t *self)
{
    assert (self);
    return self->ops->name;
}

const char *
al_driver_active_set (const al_driver_t *self)
{
    assert (self);
    return self->active;
}

const al_redact_t *
al_driver_redactor (const al_driver_t *self)
{
    assert (self);
    return self->redact;
}

size_t
al_driver_stale_stopped (const al_driver_t *self)
{
    assert (self);
    //  The registry is the process driver's own; other drivers have nothing to count.
    //  The registered table is a copy, so compare a member, not the table's address.
    if (self->ops->open == al_driver_process_ops.open)
        return al_driver_process_stale_stopped (self->handle);
    return 0;
}

//  Every dispatch: clear error, call, redact what came back.
static al_driver_status_t
s_done (al_driver_t *self, al_driver_status_t status, char *error, size_t error_size)
{
    if (status != AL_DRIVER_OK) {
        if (!*error)
            snprintf (error, error_size, "driver %s: %s", self->ops->name, al_driver_status_name (status));
        al_redact_buffer (self->redact, error, error_size);
    }
    return status;
}

al_driver_status_t
al_driver_prerequisites (al_driver_t *self, const al_driver_vars_t *vars, al_driver_report_t *report,
                         char *error, size_t error_size)
{
    assert (self && report && error && error_size > 0);
    *error = 0;
    al_driver_status_t status = self->ops->prerequisites (self->handle, vars, report, error, error_size);
    s_report_redact (report, self->redact);
    return s_done (self, status, error, error_size);
}

al_driver_status_t
al_driver_start_instance (al_driver_t *self, const al_driver_spec_t *spec, al_driver_instance_t *info,
                          char *error, size_t error_size)
{
    assert (self && spec && info && error && error_size > 0);
    *error = 0;
    memset (info, 0, sizeof (*info));
    return s_done (self, self->ops->start_instance (self->handle, spec, info, error, error_size),
                   error, error_size);
}

al_driver_status_t
al_driver_stop_instance (al_driver_t *self, const char *id, int grace_ms, al_driver_stop_t *result,
                         char *error, size_t error_size)
{
    assert (self && id && result && error && error_size > 0);
    *error = 0;
    memset (result, 0, sizeof (*result));
    return s_done (self, self->ops->stop_instance (self->handle, id, grace_ms, result, error, error_size),
                   error, error_size);
}

al_driver_status_t
al_driver_probe (al_driver_t *self, const char *id, al_driver_probe_kind_t kind, al_probe_result_t *result,
                 char *error, size_t error_size)
{
    assert (self && id && result && error && error_size > 0);
    *error = 0;
    memset (result, 0, sizeof (*result));
    al_driver_status_t status = self->ops->probe (self->handle, id, kind, result, error, error_size);
    al_redact_buffer (self->redact, result->detail, sizeof (result->detail));
    return s_done (self, status, error, error_size);
}

al_driver_status_t
al_driver_list_instances (al_driver_t *self, al_driver_instance_t *instances, size_t max, size_t *count_p,
                          char *error, size_t error_size)
{
    assert (self && count_p && error && error_size > 0);
    assert (instances || max == 0);
    *error = 0;
    *count_p = 0;
    return s_done (self, self->ops->list_instances (self->handle, instances, max, count_p, error, error_size),
                   error, error_size);
}

al_driver_status_t
al_driver_switch_active (al_driver_t *self, const char *set, char *error, size_t error_size)
{
    assert (self && set && error && error_size > 0);
    *error = 0;
    if (!al_check_name (set, AL_DRIVER_SET_SIZE - 1, "set", error, error_size))
        return s_done (self, AL_DRIVER_ERR_CONFIG, error, error_size);
    al_driver_status_t status = self->ops->switch_active (self->handle, set, error, error_size);
    if (status == AL_DRIVER_OK)
        snprintf (self->active, sizeof (self->active), "%s", set);
    return s_done (self, status, error, error_size);
}

al_driver_status_t
al_driver_run_step (al_driver_t *self, const char *step, const al_driver_vars_t *vars, al_driver_run_t *run,
                    char *error, size_t error_size)
{
    assert (self && step && run && error && error_size > 0);
    *error = 0;
    memset (run, 0, sizeof (*run));
    al_driver_status_t status = self->ops->run_step (self->handle, step, vars, run, error, error_size);
    //  The driver redacted already; this is the backstop for third-party drivers.
    char **texts [] = { &run->command, &run->out, &run->err };
    size_t *sizes [] = { NULL, &run->out_size, &run->err_size };
    for (int i = 0; i < 3; i++)
        if (*texts [i]) {
            size_t size;
            char *redacted = al_redact_text (self->redact, *texts [i], strlen (*texts [i]), &size);
            if (redacted) {
                free (*texts [i]);
                *texts [i] = redacted;
                if (sizes [i])
                    *sizes [i] = size;
            }
        }
    return s_done (self, status, error, error_size);
}

//  --------------------------------------------------------------------------
//  Templates

static const char *s_tvar_names [AL_TVAR_COUNT] = {
    "service", "version", "artifact", "digest", "env", "instance", "port", "set", "id", "pid",
    "endpoint", "grace_ms", "probe", "step", "evidence_dir"
};

const char *
al_tvar_name (al_tvar_t var)
{
    assert (var < AL_TVAR_COUNT);
    return s_tvar_names [var];
}

void
al_tvars_from_vars (al_tvars_t *tvars, const al_driver_vars_t *vars)
{
    if (!vars)
        return;
    tvars->values [AL_TVAR_SERVICE] = vars->service;
    tvars->values [AL_TVAR_VERSION] = vars->version;
    tvars->values [AL_TVAR_ARTIFACT] = vars->artifact;
    tvars->values [AL_TVAR_DIGEST] = vars->digest;
    tvars->values [AL_TVAR_ENV] = vars->env;
}

//  Parse the {{...}} starting at text (which points at "{{"): the variable's index,
//  or -1 unknown, -2 unclosed; *end_p just past "}}". name_out gets the name.
static int
s_template_var (const char *text, const char **end_p, char *name_out, size_t name_size)
{
    const char *close = strstr (text + 2, "}}");
    if (!close)
        return -2;
    const char *start = text + 2;
    const char *stop = close;
    while (start < stop && *start == ' ')
        start++;
    while (stop > start && stop [-1] == ' ')
        stop--;
    snprintf (name_out, name_size, "%.*s", (int) (stop - start), start);
    *end_p = close + 2;
    for (int i = 0; i < AL_TVAR_COUNT; i++)
        if (strlen (s_tvar_names [i]) == (size_t) (stop - start)
        &&  memcmp (s_tvar_names [i], start, (size_t) (stop - start)) == 0)
            return i;
    return -1;
}

bool
al_template_check (const char *template_text, const char *where, char *error, size_t error_size)
{
    assert (template_text && where);
    for (const char *at = strstr (template_text, "{{"); at; ) {
        const char *end;
        char name [64];
        int var = s_template_var (at, &end, name, sizeof (name));
        if (var == -2) {
            snprintf (error, error_size, "%s: \"{{\" without \"}}\" in template \"%s\"", where, template_text);
            return false;
        }
        if (var < 0) {
            snprintf (error, error_size, "%s: unknown variable {{%s}} in template \"%s\"",
                      where, name, template_text);
            return false;
        }
        at = strstr (end, "{{");
    }
    return true;
}

//  Is program (an argv[0] template) a shell that takes a script with -c?
static bool
s_is_shell (const char *program)
{
    const char *base = strrchr (program, '/');
    base = base ? base + 1 : program;
    static const char *shells [] = { "sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "busybox", NULL };
    for (int i = 0; shells [i]; i++)
        if (strcmp (base, shells [i]) == 0)
            return true;
    return false;
}

bool
al_template_check_argv (const char *const *argv, const char *where, char *error, size_t error_size)
{
    char element [160];
    for (size_t i = 0; argv && argv [i]; i++) {
        snprintf (element, sizeof (element), "%s[%zu]", where, i);
        if (!al_template_check (argv [i], element, error, error_size))
            return false;
    }
    if (!argv || !argv [0] || !s_is_shell (argv [0]))
        return true;
    //  A shell's script is code: a value pasted into it could be executed. Options
    //  such as -c, -ec, -euc announce the script as the next element.
    for (size_t i = 1; argv [i]; i++) {
        const char *option = argv [i];
        if (option [0] != '-' || option [1] == '-' || !strchr (option, 'c'))
            continue;
        const char *script = argv [i + 1];
        if (script && strstr (script, "{{")) {
            snprintf (error, error_size, "%s[%zu]: a {{variable}} inside a shell script could be "
                      "injected; read it from the environment instead ($AIRLOCK_VERSION, ...)",
                      where, i + 1);
            return false;
        }
        break;
    }
    return true;
}

bool
al_template_uses (const char *template_text, al_tvar_t var)
{
    for (const char *at = template_text ? strstr (template_text, "{{") : NULL; at; ) {
        const char *end;
        char name [64];
        int found = s_template_var (at, &end, name, sizeof (name));
        if (found < -1)
            return false;
        if (found == (int) var)
            return true;
        at = strstr (end, "{{");
    }
    return false;
}

char *
al_template_expand (const char *template_text, const al_tvars_t *tvars)
{
    assert (template_text && tvars);
    size_t capacity = strlen (template_text) + 1;
    for (int i = 0; i < AL_TVAR_COUNT; i++)
        if (tvars->values [i])
            capacity += strlen (tvars->values [i]) * (strlen (template_text) / 4 + 1);
    char *result = malloc (capacity);
    if (!result)
        return NULL;
    char *out = result;
    const char *at = template_text;
    while (*at) {
        const char *open = strstr (at, "{{");
        if (!open) {
            out = stpcpy (out, at);
            break;
        }
        memcpy (out, at, (size_t) (open - at));
        out += open - at;
        const char *end;
        char name [64];
        int var = s_template_var (open, &end, name, sizeof (name));
        assert (var >= 0);          // templates are checked when the driver opens
        const char *value = tvars->values [var] ? tvars->values [var] : "";
        out = stpcpy (out, value);
        at = end;
    }
    *out = 0;
    assert ((size_t) (out - result) < capacity);
    return result;
}

size_t
al_strv_size (const char *const *strv)
{
    size_t size = 0;
    while (strv && strv [size])
        size++;
    return size;
}

void
al_strv_free (char ***strv_p)
{
    assert (strv_p);
    char **strv = *strv_p;
    for (size_t i = 0; strv && strv [i]; i++)
        free (strv [i]);
    free (strv);
    *strv_p = NULL;
}

char **
al_strv_dup (const char *const *strv)
{
    if (!strv)
        return NULL;
    size_t size = al_strv_size (strv);
    char **copy = calloc (size + 1, sizeof (char *));
    for (size_t i = 0; copy && i < size; i++)
        if (!(copy [i] = strdup (strv [i])))
            al_strv_free (&copy);
    return copy;
}

char **
al_template_expand_argv (const char *const *argv, const al_tvars_t *tvars)
{
    size_t size = al_strv_size (argv);
    char **result = calloc (size + 1, sizeof (char *));
    for (size_t i = 0; result && i < size; i++)
        if (!(result [i] = al_template_expand (argv [i], tvars)))
            al_strv_free (&result);
    return result;
}

//  --------------------------------------------------------------------------
//  Environments

struct _al_env_t {
    char **entries;                 // NULL-terminated
    size_t count;
};

al_env_t *
al_env_new (void)
{
    al_env_t *self = calloc (1, sizeof (al_env_t));
    if (!self)
        return NULL;
    size_t size = al_strv_size ((const char *const *) environ);
    self->entries = calloc (size + 1, sizeof (char *));
    if (!self->entries) {
        free (self);
        return NULL;
    }
    for (size_t i = 0; i < size; i++)
        if (strchr (environ [i], '=') && (self->entries [self->count] = strdup (environ [i])))
            self->count++;
    return self;
}

void
al_env_destroy (al_env_t **self_p)
{
    assert (self_p);
    al_env_t *self = *self_p;
    if (!self)
        return;
    //  Wiped: secrets pass through here.
    for (size_t i = 0; i < self->count; i++) {
        explicit_bzero (self->entries [i], strlen (self->entries [i]));
        free (self->entries [i]);
    }
    free (self->entries);
    free (self);
    *self_p = NULL;
}

bool
al_env_put (al_env_t *self, const char *assignment)
{
    assert (self && assignment);
    const char *equal = strchr (assignment, '=');
    if (!equal || equal == assignment)
        return false;
    size_t name_length = (size_t) (equal - assignment) + 1;
    char *copy = strdup (assignment);
    if (!copy)
        return false;
    for (size_t i = 0; i < self->count; i++)
        if (strncmp (self->entries [i], assignment, name_length) == 0) {
            explicit_bzero (self->entries [i], strlen (self->entries [i]));
            free (self->entries [i]);
            self->entries [i] = copy;
            return true;
        }
    char **grown = realloc (self->entries, (self->count + 2) * sizeof (char *));
    if (!grown) {
        free (copy);
        return false;
    }
    self->entries = grown;
    self->entries [self->count++] = copy;
    self->entries [self->count] = NULL;
    return true;
}

bool
al_env_set (al_env_t *self, const char *name, const char *value)
{
    char *assignment;
    if (asprintf (&assignment, "%s=%s", name, value ? value : "") < 0)
        return false;
    bool ok = al_env_put (self, assignment);
    explicit_bzero (assignment, strlen (assignment));
    free (assignment);
    return ok;
}

bool
al_env_put_all (al_env_t *self, const char *const *assignments)
{
    for (size_t i = 0; assignments && assignments [i]; i++)
        if (!al_env_put (self, assignments [i]))
            return false;
    return true;
}

bool
al_env_put_tvars (al_env_t *self, const al_tvars_t *tvars)
{
    for (int i = 0; i < AL_TVAR_COUNT; i++) {
        if (!tvars->values [i])
            continue;
        char name [64] = "AIRLOCK_";
        size_t at = strlen (name);
        for (const char *c = s_tvar_names [i]; *c && at < sizeof (name) - 1; c++)
            name [at++] = (char) (*c >= 'a' && *c <= 'z' ? *c - 'a' + 'A' : *c);
        name [at] = 0;
        if (!al_env_set (self, name, tvars->values [i]))
            return false;
    }
    return true;
}

char *const *
al_env_array (const al_env_t *self)
{
    assert (self);
    return self->entries;
}

//  --------------------------------------------------------------------------
//  Programs and children

bool
al_program_resolve (const char *program, char *path, size_t path_size, char *error, size_t error_size)
{
    assert (program && path);
    if (!*program) {
        snprintf (error, error_size, "the program name is empty");
        return false;
    }
    if (strchr (program, '/')) {
        snprintf (path, path_size, "%s", program);
        struct stat info;
        if (stat (program, &info) != 0) {
            snprintf (error, error_size, "%s: %s", program, strerror (errno));
            return false;
        }
        if (!S_ISREG (info.st_mode) || access (program, X_OK) != 0) {
            snprintf (error, error_size, "%s: not an executable file", program);
            return false;
        }
        return true;
    }
    const char *search = getenv ("PATH");
    if (!search || !*search)
        search = "/usr/local/bin:/usr/bin:/bin";
    while (*search) {
        const char *colon = strchr (search, ':');
        size_t length = colon ? (size_t) (colon - search) : strlen (search);
        snprintf (path, path_size, "%.*s/%s", (int) length, length ? search : ".", program);
        struct stat info;
        if (stat (path, &info) == 0 && S_ISREG (info.st_mode) && access (path, X_OK) == 0)
            return true;
        search += length + (colon ? 1 : 0);
    }
    snprintf (error, error_size, "%s: not found in PATH", program);
    return false;
}

pid_t
al_child_spawn (char *const *argv, char *const *envp, int out_fd, int err_fd, char *error, size_t error_size)
{
    return al_child_spawn_recorded (argv, envp, out_fd, err_fd, NULL, NULL, error, error_size);
}

pid_t
al_child_spawn_recorded (char *const *argv, char *const *envp, int out_fd, int err_fd,
                         al_child_record_fn *record, void *arg, char *error, size_t error_size)
{
    assert (argv && argv [0] && envp);
    char path [PATH_MAX];
    if (!al_program_resolve (argv [0], path, sizeof (path), error, error_size))
        return -1;
    //  The child reports an execve failure through this pipe (closed on exec).
    int report [2];
    if (pipe2 (report, O_CLOEXEC) != 0) {
        snprintf (error, error_size, "pipe: %s", strerror (errno));
        return -1;
    }
    //  With record: the child waits on this gate before its execve (one byte: go; end
    //  of file: the owner died or refused, exit).
    int gate [2] = { -1, -1 };
    if (record && pipe2 (gate, O_CLOEXEC) != 0) {
        snprintf (error, error_size, "pipe: %s", strerror (errno));
        close (report [0]);
        close (report [1]);
        return -1;
    }
    int null_fd = open ("/dev/null", O_RDONLY | O_CLOEXEC);
    pid_t pid = null_fd < 0 ? -1 : fork ();
    if (pid < 0) {
        snprintf (error, error_size, "%s: %s", null_fd < 0 ? "/dev/null" : "fork", strerror (errno));
        close (report [0]);
        close (report [1]);
        if (null_fd >= 0)
            close (null_fd);
        if (record) {
            close (gate [0]);
            close (gate [1]);
        }
        return -1;
    }
    if (pid == 0) {
        //  Child: async-signal-safe calls only.
        setpgid (0, 0);
        sigset_t none;
        sigemptyset (&none);
        sigprocmask (SIG_SETMASK, &none, NULL);
        for (int sig = 1; sig < NSIG; sig++)
            if (sig != SIGKILL && sig != SIGSTOP)
                signal (sig, SIG_DFL);
        if (dup2 (null_fd, 0) < 0 || dup2 (out_fd, 1) < 0 || dup2 (err_fd, 2) < 0) {
            int code = errno;
            (void) !write (report [1], &code, sizeof (code));
            _exit (127);
        }
        //  Everything but 0, 1, 2, the report pipe (and the gate's read end): the host
        //  may hold descriptors (sockets, the audit database) that are not
        //  close-on-exec, and other children's gates, whose end of file they await.
        int keep = report [1], keep_too = record ? gate [0] : report [1];
        int low = keep < keep_too ? keep : keep_too, high = keep < keep_too ? keep_too : keep;
        if (low > 3)
            close_range (3, (unsigned) low - 1, 0);
        if (high > low + 1)
            close_range ((unsigned) low + 1, (unsigned) high - 1, 0);
        close_range ((unsigned) high + 1, ~0U, 0);
        if (record) {
            char go = 0;
            ssize_t got;
            do
                got = read (gate [0], &go, 1);
            while (got < 0 && errno == EINTR);
            if (got != 1)
                _exit (127);            // the owner died (or refused) before recording us
        }
        execve (path, argv, envp);
        int code = errno;
        (void) !write (keep, &code, sizeof (code));
        _exit (127);
    }
    //  Also set from here, so the group exists before we might signal it.
    setpgid (pid, pid);
    close (report [1]);
    close (null_fd);
    if (record) {
        close (gate [0]);
        int recorded = record (pid, arg, error, error_size);
        if (recorded == 0 && write (gate [1], "", 1) != 1) {
            snprintf (error, error_size, "gate: %s", strerror (errno));
            recorded = -1;
        }
        close (gate [1]);               // without the byte: the child exits 127
        if (recorded != 0) {
            close (report [0]);
            int status;
            while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
                ;
            return -1;
        }
    }
    int code = 0;
    ssize_t got;
    do
        got = read (report [0], &code, sizeof (code));
    while (got < 0 && errno == EINTR);
    close (report [0]);
    if (got == (ssize_t) sizeof (code)) {
        int status;
        while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
            ;
        snprintf (error, error_size, "cannot execute %s: %s", path, strerror (code));
        return -1;
    }
    return pid;
}

static int
s_exit_code (int status)
{
    if (WIFEXITED (status))
        return WEXITSTATUS (status);
    if (WIFSIGNALED (status))
        return -WTERMSIG (status);
    return -1;
}

bool
al_child_wait (pid_t pid, int timeout_ms, bool kill_leftovers, int *exit_code_p)
{
    assert (pid > 0);
    double deadline = al_now_ms () + timeout_ms;
    while (true) {
        //  Look without reaping first: while the leader is a zombie its pid (the group
        //  id) cannot be reused, so signalling the group cannot hit a stranger.
        siginfo_t info = { 0 };
        int rc = waitid (P_PID, (id_t) pid, &info, WEXITED | WNOHANG | WNOWAIT);
        if (rc == 0 && info.si_pid == pid) {
            if (kill_leftovers)
                kill (-pid, SIGKILL);
            int status = 0;
            while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
                ;
            if (exit_code_p)
                *exit_code_p = s_exit_code (status);
            return true;
        }
        if (rc < 0 && errno != EINTR) {
            //  Not our child any more (reaped elsewhere): treat as gone.
            if (exit_code_p)
                *exit_code_p = -1;
            return true;
        }
        if (al_now_ms () >= deadline)
            return false;
        al_sleep_ms (10);
    }
}

void
al_child_stop (pid_t pid, int grace_ms, bool *forced_p, int *exit_code_p)
{
    assert (pid > 0);
    bool forced = false;
    int exit_code = 0;
    kill (-pid, SIGTERM);
    if (!al_child_wait (pid, grace_ms, true, &exit_code)) {
        forced = true;
        kill (-pid, SIGKILL);
        al_child_wait (pid, 60000, true, &exit_code);
    }
    if (forced_p)
        *forced_p = forced;
    if (exit_code_p)
        *exit_code_p = exit_code;
}

int
al_free_port (const char *host, char *error, size_t error_size)
{
    struct sockaddr_in address = { .sin_family = AF_INET };
    if (inet_pton (AF_INET, host, &address.sin_addr) != 1) {
        snprintf (error, error_size, "%s: not an IPv4 address", host);
        return -1;
    }
    int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf (error, error_size, "socket: %s", strerror (errno));
        return -1;
    }
    socklen_t length = sizeof (address);
    int port = -1;
    if (bind (fd, (struct sockaddr *) &address, sizeof (address)) != 0
    ||  getsockname (fd, (struct sockaddr *) &address, &length) != 0)
        snprintf (error, error_size, "%s: cannot bind a port: %s", host, strerror (errno));
    else
        port = ntohs (address.sin_port);
    close (fd);
    return port;
}

//  --------------------------------------------------------------------------
//  Files, errors, checks, time

int
al_mkdir_p (const char *path, char *error, size_t error_size)
{
    char buffer [PATH_MAX];
    if (snprintf (buffer, sizeof (buffer), "%s", path) >= (int) sizeof (buffer)) {
        snprintf (error, error_size, "%s: path too long", path);
        return -1;
    }
    for (char *slash = buffer + 1; ; slash++) {
        bool last = *slash == 0;
        if (*slash == '/' || last) {
            *slash = 0;
            if (mkdir (buffer, 0700) != 0 && errno != EEXIST) {
                snprintf (error, error_size, "%s: %s", buffer, strerror (errno));
                return -1;
            }
            if (last)
                break;
            *slash = '/';
        }
    }
    struct stat info;
    if (stat (path, &info) != 0 || !S_ISDIR (info.st_mode)) {
        snprintf (error, error_size, "%s: not a directory", path);
        return -1;
    }
    return 0;
}

char *
al_file_tail (const char *path, size_t max, const al_redact_t *redact)
{
    char *raw = calloc (1, max + 1);
    size_t size = 0;
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (raw && fd >= 0) {
        off_t end = lseek (fd, 0, SEEK_END);
        off_t start = end > (off_t) max ? end - (off_t) max : 0;
        ssize_t got = pread (fd, raw, max, start);
        size = got > 0 ? (size_t) got : 0;
    }
    if (fd >= 0)
        close (fd);
    char *result = raw ? al_redact_text (redact, raw, size, NULL) : NULL;
    free (raw);
    return result ? result : strdup ("");
}

int
al_file_write (const char *path, const char *data, size_t size)
{
    int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    size_t done = 0;
    while (done < size) {
        ssize_t wrote = write (fd, data + done, size - done);
        if (wrote < 0 && errno == EINTR)
            continue;
        if (wrote <= 0)
            break;
        done += (size_t) wrote;
    }
    int rc = close (fd) == 0 && done == size ? 0 : -1;
    return rc;
}

void
al_error_set (char *error, size_t error_size, const al_redact_t *redact, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    vsnprintf (error, error_size, format, args);
    va_end (args);
    al_redact_buffer (redact, error, error_size);
}

bool
al_check_name (const char *value, size_t max, const char *what, char *error, size_t error_size)
{
    size_t length = value ? strlen (value) : 0;
    bool ok = length > 0 && length <= max;
    for (size_t i = 0; ok && i < length; i++) {
        char c = value [i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
          || c == '_' || c == '.' || c == '-';
    }
    if (ok && value [0] == '-')
        ok = false;
    if (!ok)
        snprintf (error, error_size, "%s: \"%.64s\" is not 1 to %zu of [A-Za-z0-9_.-] "
                  "(not starting with '-')", what, value ? value : "", max);
    return ok;
}

bool
al_check_text (const char *value, const char *what, char *error, size_t error_size)
{
    for (const unsigned char *c = (const unsigned char *) (value ? value : ""); *c; c++)
        if (*c < 0x20 || *c == 0x7f) {
            snprintf (error, error_size, "%s: holds a control character", what);
            return false;
        }
    return true;
}

bool
al_check_spec (const al_driver_spec_t *spec, char *error, size_t error_size)
{
    const al_driver_vars_t *vars = &spec->vars;
    if (!al_check_name (vars->service, 32, "service", error, error_size)
    ||  (spec->set && !al_check_name (spec->set, AL_DRIVER_SET_SIZE - 1, "set", error, error_size))
    ||  !al_check_text (vars->version, "version", error, error_size)
    ||  !al_check_text (vars->artifact, "artifact", error, error_size)
    ||  !al_check_text (vars->digest, "digest", error, error_size)
    ||  !al_check_text (vars->env, "env", error, error_size))
        return false;
    if (!vars->version || !*vars->version || strlen (vars->version) >= AL_DRIVER_VERSION_SIZE) {
        snprintf (error, error_size, "version: 1 to %d characters", AL_DRIVER_VERSION_SIZE - 1);
        return false;
    }
    if (spec->instance < 0 || spec->port < 0 || spec->port > 65535) {
        snprintf (error, error_size, "instance %d, port %d: out of range", spec->instance, spec->port);
        return false;
    }
    for (size_t i = 0; spec->extra_env && spec->extra_env [i]; i++)
        if (!strchr (spec->extra_env [i], '=') || spec->extra_env [i][0] == '=') {
            snprintf (error, error_size, "extra_env[%zu]: not NAME=value", i);
            return false;
        }
    return true;
}

double
al_now_ms (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (double) now.tv_sec * 1e3 + now.tv_nsec / 1e6;
}

void
al_sleep_ms (int milliseconds)
{
    struct timespec pause = { milliseconds / 1000, (milliseconds % 1000) * 1000000L };
    while (nanosleep (&pause, &pause) != 0 && errno == EINTR)
        ;
}

void
al_driver_probe_endpoint (const char *endpoint, al_driver_probe_kind_t kind, const char *liveness_path,
                          const char *readiness_path, int timeout_ms, al_probe_result_t *result)
{
    char url [AL_DRIVER_ENDPOINT_SIZE + 256];
    snprintf (url, sizeof (url), "%s%s", endpoint, kind == AL_DRIVER_LIVENESS ? liveness_path : readiness_path);
    al_probe_http (url, timeout_ms, result);
}
