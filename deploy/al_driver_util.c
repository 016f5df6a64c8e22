/*  al_driver_util.c: the system helpers the built-in drivers share: free ports,
    directories and evidence files, redacted error texts, validation of outside values,
    HTTP probes of an endpoint. Children are base/al_child's, time base/al_clock's.

    No state; thread-safe.
*/
#include "deploy/al_driver_int.h"
#include "base/al_child.h"
#include "base/al_clock.h"
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <arpa/inet.h>
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

//  --------------------------------------------------------------------------
//  Ports

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
//  Files, errors, checks, probes

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

void
al_driver_error_set (char *error, size_t error_size, const al_redact_t *redact, const char *format, ...)
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

void
al_driver_probe_endpoint (const char *endpoint, al_driver_probe_kind_t kind, const char *liveness_path,
                          const char *readiness_path, int timeout_ms, al_probe_result_t *result)
{
    char url [AL_DRIVER_ENDPOINT_SIZE + 256];
    snprintf (url, sizeof (url), "%s%s", endpoint, kind == AL_DRIVER_LIVENESS ? liveness_path : readiness_path);
    al_probe_http (url, timeout_ms, result);
}

void
al_driver_check_program (al_driver_report_t *report, const char *check, const char *program_template,
                         const al_tvars_t *tvars, bool vars_given)
{
    bool templated = false;
    for (int var = 0; var < AL_TVAR_COUNT; var++)
        templated |= al_template_uses (program_template, (al_tvar_t) var);
    if (templated && !vars_given) {
        al_driver_report_add (report, check, false, "%s depends on the deployment's variables, "
                              "none were given", program_template);
        return;
    }
    char *program = al_template_expand (program_template, tvars);
    char path [PATH_MAX];
    char why [512] = "";
    bool found = program && al_child_resolve (program, path, sizeof (path), why, sizeof (why));
    al_driver_report_add (report, check, found, "%s", found ? path : why);
    free (program);
}

void
al_driver_check_evidence_dir (al_driver_report_t *report, const char *evidence_dir)
{
    bool writable = access (evidence_dir, W_OK | X_OK) == 0;
    al_driver_report_add (report, "evidence_dir", writable, "%s%s", evidence_dir,
                          writable ? " is writable" : ": not writable");
}

al_driver_status_t
al_driver_report_verdict (const al_driver_report_t *report, char *error, size_t error_size)
{
    if (al_driver_report_failures (report) > 0) {
        snprintf (error, error_size, "%zu prerequisite(s) failed", al_driver_report_failures (report));
        return AL_DRIVER_ERR_FAILED;
    }
    return AL_DRIVER_OK;
}

bool
al_driver_config_copy (const al_driver_config_t *config, char **host, char **liveness_path,
                       char **readiness_path, char **evidence_dir, char *error, size_t error_size)
{
    *host = strdup (config->host ? config->host : AL_DRIVER_DEFAULT_HOST);
    *liveness_path = strdup (config->liveness_path ? config->liveness_path : AL_DRIVER_DEFAULT_LIVENESS_PATH);
    *readiness_path = strdup (config->readiness_path ? config->readiness_path
                                                    : AL_DRIVER_DEFAULT_READINESS_PATH);
    *evidence_dir = config->evidence_dir ? strdup (config->evidence_dir) : NULL;
    if (!*host || !*liveness_path || !*readiness_path || (config->evidence_dir && !*evidence_dir)) {
        snprintf (error, error_size, "out of memory");
        return false;
    }
    return true;
}
