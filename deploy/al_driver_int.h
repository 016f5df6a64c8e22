/*  al_driver_int.h: internals shared by the dispatcher and the built-in drivers.

    Templates, child environments, ports, evidence files, redacted error texts and the
    validation of outside values. Not installed; only deploy/al_driver*.c include it.
    Children are started, waited for and stopped through base/al_child, the one
    fork/exec; time comes from base/al_clock.
*/
#ifndef AL_DRIVER_INT_H_INCLUDED
#define AL_DRIVER_INT_H_INCLUDED

#include "deploy/al_driver.h"
#include <stdarg.h>

//  Template variables, in the order of al_tvars_t.values.
typedef enum {
    AL_TVAR_SERVICE, AL_TVAR_VERSION, AL_TVAR_ARTIFACT, AL_TVAR_DIGEST, AL_TVAR_ENV,
    AL_TVAR_INSTANCE, AL_TVAR_PORT, AL_TVAR_SET, AL_TVAR_ID, AL_TVAR_PID, AL_TVAR_ENDPOINT,
    AL_TVAR_GRACE_MS, AL_TVAR_PROBE, AL_TVAR_STEP, AL_TVAR_EVIDENCE_DIR,
    AL_TVAR_COUNT
} al_tvar_t;

typedef struct {
    const char *values [AL_TVAR_COUNT];     // NULL is expanded as ""
} al_tvars_t;

//  "service", ...; the environment name is "AIRLOCK_" + upper case.
const char *al_tvar_name (al_tvar_t var);
//  Fill the deployment variables of tvars from vars (NULL-safe).
void al_tvars_from_vars (al_tvars_t *tvars, const al_driver_vars_t *vars);
//  Check a template: every {{name}} known, every {{ closed. where names it in error.
bool al_template_check (const char *template_text, const char *where, char *error, size_t error_size);
//  Check every element of an argv template (where names it: "steps.start.argv"), and
//  refuse a {{variable}} inside the script of a shell's -c option.
bool al_template_check_argv (const char *const *argv, const char *where, char *error, size_t error_size);
//  Does the template use variable var?
bool al_template_uses (const char *template_text, al_tvar_t var);
//  Expand a checked template. Caller frees; NULL when out of memory.
char *al_template_expand (const char *template_text, const al_tvars_t *tvars);
//  Expand a NULL-terminated argv template. Caller frees with al_strv_free.
char **al_template_expand_argv (const char *const *argv, const al_tvars_t *tvars);
//  Copy of a NULL-terminated string vector (NULL for NULL). Caller frees.
char **al_strv_dup (const char *const *strv);
void al_strv_free (char ***strv_p);
size_t al_strv_size (const char *const *strv);

//  A child environment: airlock's environ plus overrides, as "NAME=value" strings.
typedef struct _al_env_t al_env_t;
al_env_t *al_env_new (void);                    // a copy of environ
void al_env_destroy (al_env_t **self_p);
bool al_env_set (al_env_t *self, const char *name, const char *value);
bool al_env_put (al_env_t *self, const char *assignment);      // "NAME=value"
bool al_env_put_all (al_env_t *self, const char *const *assignments);   // NULL-safe
//  AIRLOCK_SERVICE... for every non-NULL value of tvars.
bool al_env_put_tvars (al_env_t *self, const al_tvars_t *tvars);
char *const *al_env_array (const al_env_t *self);

//  A TCP port on host that was free a moment ago (bind to port 0), or -1 with error.
int al_free_port (const char *host, char *error, size_t error_size);

//  The last max bytes of a file, redacted, NUL-terminated. Caller frees; "" if unreadable.
char *al_file_tail (const char *path, size_t max, const al_redact_t *redact);

//  snprintf into error, then redact it in place (al_error_set, with the secrets removed).
void al_driver_error_set (char *error, size_t error_size, const al_redact_t *redact,
                          const char *format, ...) __attribute__ ((format (printf, 4, 5)));

//  Validation of outside values: a service or set name, a free-text value (no control
//  characters). False with "what: what is wrong" in error.
bool al_check_name (const char *value, size_t max, const char *what, char *error, size_t error_size);
bool al_check_text (const char *value, const char *what, char *error, size_t error_size);

//  A spec is outside input: names, texts, ranges, extra_env shape.
bool al_check_spec (const al_driver_spec_t *spec, char *error, size_t error_size);

//  Prerequisite checks the built-in drivers share, added to report under check:
//  the program of an argv template resolves on PATH (a template that needs the
//  deployment's variables fails when vars_given is false); evidence_dir is writable.
void al_driver_check_program (al_driver_report_t *report, const char *check, const char *program_template,
                              const al_tvars_t *tvars, bool vars_given);
void al_driver_check_evidence_dir (al_driver_report_t *report, const char *evidence_dir);
//  The verdict of a prerequisites report: AL_DRIVER_OK, or AL_DRIVER_ERR_FAILED with
//  "N prerequisite(s) failed" in error.
al_driver_status_t al_driver_report_verdict (const al_driver_report_t *report, char *error, size_t error_size);

//  Copies of the config's host, probe paths and evidence directory, with the defaults
//  (AL_DRIVER_DEFAULT_*) where the config has none. false when out of memory ("out of
//  memory" in error); what was copied is the caller's to free either way.
bool al_driver_config_copy (const al_driver_config_t *config, char **host, char **liveness_path,
                            char **readiness_path, char **evidence_dir, char *error, size_t error_size);

//  Probe an instance over HTTP at endpoint + the liveness or readiness path (al_probe).
void al_driver_probe_endpoint (const char *endpoint, al_driver_probe_kind_t kind, const char *liveness_path,
                               const char *readiness_path, int timeout_ms, al_probe_result_t *result);

//  The built-in drivers' tables, NULL-terminated (al_driver_builtins.c): the registry
//  registers each on first use.
extern const al_driver_ops_t *const al_driver_builtins [];

#endif
