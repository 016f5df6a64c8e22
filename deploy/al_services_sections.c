/*  al_services_sections.c: the sections of a service in services.yaml: rolling:,
    soak:, canary:, steps: (the exec driver), env: (the process driver) and
    secrets:, and al_services_entry_list, which reads a list of mappings entry by
    entry. The schema is in docs/drivers.md.
*/
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

typedef al_services_loader_t s_loader_t;

//  ---------------------------------------------------------------------------------
//  Sections of a service

void
al_services_rolling (s_loader_t *L, al_service_t *svc, yaml_node_t *node, const char *field)
{
    static const char *const allowed [] = { "batch_size", "max_unavailable", "max_surge", NULL };
    if (!al_yaml_check_map (L->yaml, node, field, allowed, NULL))
        return;
    char sub [AL_YAML_FIELD_SIZE];
    yaml_node_t *value;
    if ((value = al_yaml_get (L->yaml, node, "batch_size"))) {
        al_yaml_field_key (sub, field, "batch_size");
        al_services_unsigned_field (L, value, sub, 1, AL_SERVICES_MAX_INSTANCES, &svc->batch_size);
    }
    if ((value = al_yaml_get (L->yaml, node, "max_unavailable"))) {
        al_yaml_field_key (sub, field, "max_unavailable");
        al_services_unsigned_field (L, value, sub, 0, AL_SERVICES_MAX_INSTANCES, &svc->max_unavailable);
    }
    if ((value = al_yaml_get (L->yaml, node, "max_surge"))) {
        al_yaml_field_key (sub, field, "max_surge");
        al_services_unsigned_field (L, value, sub, 0, AL_SERVICES_MAX_INSTANCES, &svc->max_surge);
    }
    if (svc->max_unavailable + svc->max_surge < 1)
        al_yaml_error (L->yaml, node, field, "max_unavailable + max_surge must be at least 1 "
                       "(a rollout must be able to stop or start an instance)");
}

//  soak: {duration_ms, reason}: the production soak shortened below quality_rules.yaml's,
//  never to nothing, and never without a reason a human can read.
void
al_services_soak (s_loader_t *L, al_service_t *svc, yaml_node_t *node, const char *field)
{
    static const char *const required [] = { "duration_ms", "reason", NULL };
    if (!al_yaml_check_map (L->yaml, node, field, required, required))
        return;
    char sub [AL_YAML_FIELD_SIZE];
    yaml_node_t *value;
    if ((value = al_yaml_get (L->yaml, node, "duration_ms"))) {
        al_yaml_field_key (sub, field, "duration_ms");
        al_services_int_field (L, value, sub, 1, AL_SERVICES_MAX_SOAK_MS, &svc->soak_shortened_ms);
    }
    if ((value = al_yaml_get (L->yaml, node, "reason"))) {
        al_yaml_field_key (sub, field, "reason");
        const char *reason = al_yaml_string (L->yaml, value, sub, false);
        size_t length = reason? strlen (reason): 0;
        while (reason && length > 0 && (reason [length - 1] == ' ' || reason [length - 1] == '\t'))
            length--;
        if (reason && length < 8)
            al_yaml_error (L->yaml, value, sub, "say why the soak may be shorter (at least 8 characters)");
        else
        if (reason && !(svc->soak_reason = al_services_pool_strdup (L->self, reason)))
            al_yaml_out_of_memory (L->yaml);
    }
}

void
al_services_canary (s_loader_t *L, al_service_t *svc, yaml_node_t *node, const char *field)
{
    static const char *const allowed [] = { "steps", "step_soak_ms", NULL };
    if (!al_yaml_check_map (L->yaml, node, field, allowed, NULL))
        return;
    char sub [AL_YAML_FIELD_SIZE];
    yaml_node_t *value;
    if ((value = al_yaml_get (L->yaml, node, "step_soak_ms"))) {
        al_yaml_field_key (sub, field, "step_soak_ms");
        al_services_int_field (L, value, sub, 0, AL_SERVICES_MAX_DAY_MS, &svc->canary_step_soak_ms);
    }
    if (!(value = al_yaml_get (L->yaml, node, "steps")))
        return;
    al_yaml_field_key (sub, field, "steps");
    if (!al_yaml_want_list (L->yaml, value, sub))
        return;
    size_t count = al_yaml_list_length (value);
    if (count == 0) {
        al_yaml_error (L->yaml, value, sub, "must not be empty (the last step is 100)");
        return;
    }
    unsigned *steps = al_services_pool_alloc (L->self, count * sizeof *steps);
    if (!steps) {
        al_yaml_out_of_memory (L->yaml);
        return;
    }
    bool ok = true;
    for (size_t i = 0; i < count; i++) {
        char item [AL_YAML_FIELD_SIZE];
        al_yaml_field_index (item, sub, i);
        yaml_node_t *step = al_yaml_list_at (L->yaml, value, i);
        long long percent;
        if (!al_yaml_integer (L->yaml, step, item, 1, 100, &percent)) {
            ok = false;
            continue;
        }
        steps [i] = (unsigned) percent;
        if (i > 0 && ok && steps [i] <= steps [i - 1]) {
            al_yaml_error (L->yaml, step, item, "%u is not above the step before (%u): steps "
                           "must be strictly ascending", steps [i], steps [i - 1]);
            ok = false;
        }
    }
    if (ok && steps [count - 1] != 100) {
        al_yaml_error (L->yaml, value, sub, "must end with 100");
        ok = false;
    }
    if (ok) {
        svc->canary_steps = steps;
        svc->canary_step_count = count;
    }
}

void
al_services_steps (s_loader_t *L, al_service_t *svc, yaml_node_t *node, const char *field)
{
    if (!al_yaml_want_mapping (L->yaml, node, field))
        return;
    size_t count = (size_t) (node->data.mapping.pairs.top - node->data.mapping.pairs.start);
    al_driver_step_t *steps = al_services_pool_alloc (L->self, count * sizeof *steps);
    if (!steps) {
        al_yaml_out_of_memory (L->yaml);
        return;
    }
    size_t used = 0;
    bool ok = true;
    for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
         pair < node->data.mapping.pairs.top; pair++) {
        if (!al_yaml_first_key (L->yaml, node, pair, field)) {
            ok = false;
            continue;
        }
        yaml_node_t *key = al_yaml_node (L->yaml, pair->key);
        const char *name = al_yaml_scalar (key);
        if (!al_services_is_name (name, 32)) {
            al_yaml_error (L->yaml, key, field, "step name '%.64s' is not 1 to 32 of "
                           "[A-Za-z0-9_.-] (not starting with '-')", name);
            ok = false;
            continue;
        }
        char step_field [AL_YAML_FIELD_SIZE];
        al_yaml_field_key (step_field, field, name);
        yaml_node_t *step = al_yaml_node (L->yaml, pair->value);
        static const char *const allowed [] = { "argv", "timeout_ms", NULL };
        static const char *const required [] = { "argv", NULL };
        if (!al_yaml_check_map (L->yaml, step, step_field, allowed, required)) {
            ok = false;
            continue;
        }
        al_driver_step_t *out = &steps [used++];
        out->name = al_services_pool_strdup (L->self, name);
        if (!out->name)
            al_yaml_out_of_memory (L->yaml);
        char sub [AL_YAML_FIELD_SIZE];
        yaml_node_t *value;
        if ((value = al_yaml_get (L->yaml, step, "argv"))) {
            al_yaml_field_key (sub, step_field, "argv");
            out->argv = al_services_strv (L, value, sub, true);
        }
        if ((value = al_yaml_get (L->yaml, step, "timeout_ms"))) {
            al_yaml_field_key (sub, step_field, "timeout_ms");
            al_services_int_field (L, value, sub, 100, AL_SERVICES_MAX_DAY_MS, &out->timeout_ms);
        }
        if (!out->argv)
            ok = false;
    }
    static const char *const needed [] = { "start", "stop" };
    for (size_t i = 0; i < 2; i++) {
        if (!al_yaml_get (L->yaml, node, needed [i])) {
            al_yaml_error (L->yaml, node, field, "step '%s' is required", needed [i]);
            ok = false;
        }
    }
    if (ok) {
        svc->steps = steps;
        svc->step_count = used;
    }
}

void
al_services_env_list (s_loader_t *L, al_service_t *svc, yaml_node_t *node, const char *field)
{
    const char *const *env = al_services_strv (L, node, field, false);
    if (!env)
        return;
    bool ok = true;
    for (size_t i = 0; env [i]; i++) {
        const char *equal = strchr (env [i], '=');
        char name [160] = "";
        if (equal && (size_t) (equal - env [i]) < sizeof name)
            snprintf (name, sizeof name, "%.*s", (int) (equal - env [i]), env [i]);
        if (!equal || !al_services_is_name (name, 127)) {
            char item [AL_YAML_FIELD_SIZE];
            al_yaml_field_index (item, field, i);
            al_yaml_error (L->yaml, al_yaml_list_at (L->yaml, node, i), item,
                           "expected NAME=value with NAME 1 to 127 of [A-Za-z0-9_.-]");
            ok = false;
        }
    }
    if (ok)
        svc->env = env;
}

void *
al_services_entry_list (s_loader_t *L, yaml_node_t *node, const char *field, size_t size,
                        const char *const *allowed, const char *const *required,
                        al_services_entry_fn *read_entry, size_t *count_p)
{
    if (!al_yaml_want_list (L->yaml, node, field))
        return NULL;
    size_t count = al_yaml_list_length (node);
    void *entries = al_services_pool_alloc (L->self, count * size);
    if (!entries) {
        al_yaml_out_of_memory (L->yaml);
        return NULL;
    }
    bool ok = true;
    for (size_t i = 0; i < count; i++) {
        char item [AL_YAML_FIELD_SIZE];
        al_yaml_field_index (item, field, i);
        yaml_node_t *entry = al_yaml_list_at (L->yaml, node, i);
        if (!al_yaml_check_map (L->yaml, entry, item, allowed, required)
        ||  !read_entry (L, entries, i, entry, item))
            ok = false;
    }
    *count_p = count;
    return ok ? entries : NULL;
}

//  secrets[index]: one of the secrets (an al_services_entry_fn).
static bool
s_secret (s_loader_t *L, void *entries, size_t i, yaml_node_t *entry, const char *item)
{
    al_driver_secret_ref_t *secrets = entries;
    bool ok = true;
    al_driver_secret_ref_t *ref = &secrets [i];
    char sub [AL_YAML_FIELD_SIZE];
    yaml_node_t *value;
    if ((value = al_yaml_get (L->yaml, entry, "name"))) {
        al_yaml_field_key (sub, item, "name");
        const char *name = al_yaml_string (L->yaml, value, sub, false);
        if (name && !al_services_is_name (name, 64))
            al_yaml_error (L->yaml, value, sub, "'%.64s' is not 1 to 64 of [A-Za-z0-9_.-] "
                           "(not starting with '-')", name);
        else
        if (name)
            ref->name = al_services_pool_strdup (L->self, name);
    }
    yaml_node_t *env = al_yaml_get (L->yaml, entry, "env");
    yaml_node_t *file = al_yaml_get (L->yaml, entry, "file");
    if ((env != NULL) == (file != NULL)) {
        al_yaml_error (L->yaml, entry, item, "give exactly one of env and file");
        ok = false;
    }
    if (env) {
        al_yaml_field_key (sub, item, "env");
        const char *name = al_yaml_string (L->yaml, env, sub, false);
        if (name && !al_services_is_variable (name))
            al_yaml_error (L->yaml, env, sub, "'%.64s' is not an environment variable name", name);
        else
        if (name)
            ref->env = al_services_pool_strdup (L->self, name);
        ok = ok && ref->env;
    }
    if (file) {
        al_yaml_field_key (sub, item, "file");
        ref->file = al_services_abs_path (L, file, sub);
        ok = ok && ref->file;
    }
    if ((value = al_yaml_get (L->yaml, entry, "as"))) {
        al_yaml_field_key (sub, item, "as");
        const char *as = al_yaml_string (L->yaml, value, sub, false);
        if (as && !al_services_is_variable (as))
            al_yaml_error (L->yaml, value, sub, "'%.64s' is not an environment variable name", as);
        else
        if (as)
            ref->as = al_services_pool_strdup (L->self, as);
        ok = ok && ref->as;
    }
    //  Without "as", the child's variable is the name, which must then be one.
    if (ref->name && !ref->as && !al_services_is_variable (ref->name)) {
        al_yaml_error (L->yaml, entry, item, "name '%s' is not an environment variable name: "
                       "give 'as'", ref->name);
        ok = false;
    }
    if (!ref->name)
        return false;
    const char *variable = ref->as ? ref->as : ref->name;
    for (size_t j = 0; j < i; j++) {
        const al_driver_secret_ref_t *prior = &secrets [j];
        if (prior->name && strcmp (prior->name, ref->name) == 0) {
            al_yaml_error (L->yaml, entry, item, "secret '%s' is given twice", ref->name);
            ok = false;
        }
        else
        if (prior->name && strcmp (prior->as ? prior->as : prior->name, variable) == 0) {
            al_yaml_error (L->yaml, entry, item, "variable %s is also set by secret '%s'", variable,
                           prior->name);
            ok = false;
        }
    }
    return ok;
}

void
al_services_secrets (s_loader_t *L, al_service_t *svc, yaml_node_t *node, const char *field)
{
    static const char *const allowed [] = { "name", "env", "file", "as", NULL };
    static const char *const required [] = { "name", NULL };
    size_t count;
    al_driver_secret_ref_t *secrets = al_services_entry_list (L, node, field, sizeof *secrets, allowed,
                                                    required, s_secret, &count);
    if (secrets) {
        svc->secrets = secrets;
        svc->secret_count = count;
    }
}

