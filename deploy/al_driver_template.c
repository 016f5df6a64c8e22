/*  al_driver_template.c: what the built-in drivers share to build a command: the
    {{variable}} templates of services.yaml (checked at load, expanded per instance or
    step), string vectors, and the environments children are given.

    Pure functions over their arguments (an al_env_t has one user at a time).
*/
#include "deploy/al_driver_int.h"
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
