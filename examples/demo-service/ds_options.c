/*  ds_options.c: demo-service's settings, from command-line flags over environment.

    One table lists every setting once with its flag, its environment variable, its
    kind and its bounds, so --help, the environment and the flags cannot disagree.
    Pure functions over the table and the caller's struct; no global state.
*/
#include "ds_options.h"
#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef enum { S_INT, S_LONG, S_RATE, S_BOOL, S_TEXT, S_PATH } s_kind_t;

typedef struct {
    const char *flag;
    const char *env;
    s_kind_t kind;
    long min, max;
    size_t offset;
    const char *help;
} s_setting_t;

#define S_AT(field) offsetof (ds_options_t, field)

static const s_setting_t s_settings [] = {
    { "--port",            "PORT",              S_INT,  0, 65535,   S_AT (port),
      "TCP port on 127.0.0.1 (default 8080; 0 = any free port)" },
    { "--version",         "VERSION",           S_TEXT, 1, DS_VERSION_MAX - 1, S_AT (version),
      "version reported by /healthz and demo_service_info (default 1.0.0)" },
    { "--error-rate",      "ERROR_RATE",        S_RATE, 0, 1,       S_AT (error_rate),
      "share of /work answered with 500, 0..1 (default 0)" },
    { "--latency-ms",      "LATENCY_MS",        S_INT,  0, 60000,   S_AT (latency_ms),
      "milliseconds added to every /work (default 0)" },
    { "--jitter-ms",       "LATENCY_JITTER_MS", S_INT,  0, 60000,   S_AT (jitter_ms),
      "plus a uniform random 0..N milliseconds (default 0)" },
    { "--cpu-burn",        "CPU_BURN",          S_INT,  0, 100,     S_AT (cpu_burn_percent),
      "percent of one core a thread keeps busy (default 0)" },
    { "--fail-readiness",  "FAIL_READINESS",    S_BOOL, 0, 1,       S_AT (fail_readiness),
      "/readyz answers 503" },
    { "--ready-delay-ms",  "READY_DELAY_MS",    S_INT,  0, 3600000, S_AT (ready_delay_ms),
      "/readyz answers 503 for this long after start (default 0)" },
    { "--crash-at-start",  "CRASH_AT_START",    S_BOOL, 0, 1,       S_AT (crash_at_start),
      "print why and exit 3 before listening" },
    { "--memory-limit-mb", "MEMORY_LIMIT_MB",   S_LONG, 1, 1048576, S_AT (memory_limit_mb),
      "memory that demo_service_memory_percent is a share of (default 256)" },
    { "--shutdown-timeout-ms", "SHUTDOWN_TIMEOUT_MS", S_INT, 0, 600000, S_AT (shutdown_timeout_ms),
      "on SIGTERM, wait this long at most for in-flight requests (default 10000)" },
    { "--db",              "DB_PATH",           S_PATH, 0, 0,       S_AT (db_path),
      "SQLite database whose PRAGMA user_version is demo_service_schema_version" },
    { "--verbose",         "VERBOSE",           S_BOOL, 0, 1,       S_AT (verbose),
      "log one line per request to stderr" },
};

#define S_SETTINGS (sizeof s_settings / sizeof s_settings [0])

//  Store value into the setting's field; false with error filled if it is out of range.
static bool
s_apply (ds_options_t *options, const s_setting_t *setting, const char *value,
         const char *source, char *error, size_t error_size)
{
    char *field = (char *) options + setting->offset;
    char *end = NULL;
    errno = 0;
    switch (setting->kind) {
        case S_INT:
        case S_LONG: {
            long number = strtol (value, &end, 10);
            if (errno || end == value || *end || number < setting->min || number > setting->max) {
                snprintf (error, error_size, "%s: '%s' is not an integer in %ld..%ld",
                          source, value, setting->min, setting->max);
                return false;
            }
            if (setting->kind == S_INT)
                *(int *) field = (int) number;
            else
                *(long *) field = number;
            return true;
        }
        case S_RATE: {
            double number = strtod (value, &end);
            if (errno || end == value || *end || !isfinite (number) || number < 0 || number > 1) {
                snprintf (error, error_size, "%s: '%s' is not a number in 0..1", source, value);
                return false;
            }
            *(double *) field = number;
            return true;
        }
        case S_BOOL:
            if (strcmp (value, "1") == 0 || strcmp (value, "true") == 0 || strcmp (value, "yes") == 0)
                *(bool *) field = true;
            else
            if (strcmp (value, "0") == 0 || strcmp (value, "false") == 0 || strcmp (value, "no") == 0
            ||  *value == 0)
                *(bool *) field = false;
            else {
                snprintf (error, error_size, "%s: '%s' is not 1/0, true/false or yes/no", source, value);
                return false;
            }
            return true;
        case S_TEXT: {
            size_t length = strlen (value);
            if (length < (size_t) setting->min || length > (size_t) setting->max) {
                snprintf (error, error_size, "%s: must be %ld..%ld characters", source,
                          setting->min, setting->max);
                return false;
            }
            //  The version is printed inside JSON and a Prometheus label: keep it plain.
            for (const char *c = value; *c; c++)
                if (*c < 0x21 || *c > 0x7e || *c == '"' || *c == '\\') {
                    snprintf (error, error_size, "%s: '%s' may hold only printable ASCII "
                              "without spaces, quotes or backslashes", source, value);
                    return false;
                }
            memcpy (field, value, length + 1);
            return true;
        }
        case S_PATH:
            if (*value == 0) {
                snprintf (error, error_size, "%s: empty path", source);
                return false;
            }
            *(const char **) field = value;
            return true;
    }
    assert (false);
    return false;
}

ds_options_result_t
ds_options_parse (ds_options_t *options, int argc, char **argv, char *error, size_t error_size)
{
    assert (options);
    *options = (ds_options_t) {
        .port = 8080, .version = "1.0.0", .memory_limit_mb = 256, .shutdown_timeout_ms = 10000
    };
    for (size_t i = 0; i < S_SETTINGS; i++) {
        const char *value = getenv (s_settings [i].env);
        if (value && !s_apply (options, &s_settings [i], value, s_settings [i].env, error, error_size))
            return DS_OPTIONS_ERROR;
    }
    for (int arg = 1; arg < argc; arg++) {
        const char *text = argv [arg];
        if (strcmp (text, "--help") == 0 || strcmp (text, "-h") == 0)
            return DS_OPTIONS_HELP;
        //  --flag=value or --flag value; a boolean flag alone means true.
        const char *equals = strchr (text, '=');
        size_t name_length = equals ? (size_t) (equals - text) : strlen (text);
        const s_setting_t *setting = NULL;
        for (size_t i = 0; i < S_SETTINGS; i++)
            if (strlen (s_settings [i].flag) == name_length
            &&  strncmp (s_settings [i].flag, text, name_length) == 0)
                setting = &s_settings [i];
        if (!setting) {
            snprintf (error, error_size, "%s: unknown option (see --help)", text);
            return DS_OPTIONS_ERROR;
        }
        const char *value = equals ? equals + 1 : NULL;
        if (!value && setting->kind == S_BOOL)
            value = "1";
        if (!value) {
            if (arg + 1 >= argc) {
                snprintf (error, error_size, "%s: needs a value", setting->flag);
                return DS_OPTIONS_ERROR;
            }
            value = argv [++arg];
        }
        if (!s_apply (options, setting, value, setting->flag, error, error_size))
            return DS_OPTIONS_ERROR;
    }
    return DS_OPTIONS_OK;
}

void
ds_options_usage (FILE *out)
{
    fprintf (out,
        "usage: demo-service [OPTIONS]\n\n"
        "A small HTTP service on 127.0.0.1 that airlock deploys in its demo and tests.\n"
        "Endpoints: GET /healthz, GET /readyz, GET /metrics (Prometheus text 0.0.4),\n"
        "GET /work, GET /fault, POST /fault?error_rate=R&latency_ms=N&jitter_ms=N&\n"
        "cpu_burn=P&fail_readiness=0|1 (change faults in a running instance).\n\n"
        "Options (flag=value or flag value; the environment variable is used when the\n"
        "flag is absent):\n");
    for (size_t i = 0; i < S_SETTINGS; i++)
        fprintf (out, "  %-22s %-20s %s\n", s_settings [i].flag, s_settings [i].env,
                 s_settings [i].help);
    fprintf (out, "  %-22s %-20s %s\n", "--help", "", "print this and exit");
    fprintf (out,
        "\nThe first line on stdout is\n"
        "'demo-service VERSION listening on 127.0.0.1:PORT'. SIGTERM or SIGINT: stop\n"
        "accepting, finish in-flight requests, exit 0.\n"
        "Exit codes: 0 ok, 1 cannot listen, 2 bad option, 3 crash-at-start fault.\n");
}
