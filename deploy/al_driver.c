/*  al_driver.c: the driver registry and the dispatcher.

    The registry is a small array under a mutex; the built-in drivers (the tables
    al_driver_builtins lists) are registered once, on first use. The dispatcher never
    names a driver: whatever a driver does beyond the common contract it offers as an
    ops member (stale_stopped), with a shared default for those that do not. al_driver_open resolves secret references (environment
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

static size_t
s_none_stale_stopped (void *handle)
{
    (void) handle;
    return 0;
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
    if (!slot->stale_stopped)
        slot->stale_stopped = s_none_stale_stopped;
    return AL_DRIVER_OK;
}

static void
s_builtins_locked (void)
{
    if (s_builtins_done)
        return;
    s_builtins_done = true;
    char error [256];
    for (size_t i = 0; al_driver_builtins [i]; i++) {
        al_driver_status_t status = s_register_locked (al_driver_builtins [i], error, sizeof (error));
        assert (status == AL_DRIVER_OK);
    }
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
        char known [256] = "";
        pthread_mutex_lock (&s_registry_lock);
        for (size_t i = 0, used = 0; i < s_registry_count && used < sizeof known; i++)
            used += (size_t) snprintf (known + used, sizeof known - used, "%s%s", i? ", ": "", s_registry [i].name);
        pthread_mutex_unlock (&s_registry_lock);
        snprintf (error, error_size, "driver %s: no such driver (registered: %s)", name, known);
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
    return self->ops->stale_stopped (self->handle);
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
