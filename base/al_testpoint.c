/*  al_testpoint.c: the parser and pass counter shared by al_crashpoint and al_stallpoint
    (see al_testpoint_int.h).
*/
#include "base/al_testpoint_int.h"
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  A decimal number in [minimum, maximum] from the LENGTH characters at TEXT; 0 if it is not one.
static int
s_number (const char *text, size_t length, unsigned long minimum, unsigned long maximum, unsigned long *value)
{
    char digits [24];
    if (length == 0 || length >= sizeof digits || text [0] < '0' || text [0] > '9')
        return 0;
    memcpy (digits, text, length);
    digits [length] = 0;
    char *end = NULL;
    errno = 0;
    *value = strtoul (digits, &end, 10);
    return !errno && !*end && *value >= minimum && *value <= maximum;
}

//  Set table->error to "VARIABLE: 'ENTRY': WHAT"; returns -1.
static int
s_fail (al_testpoint_table_t *table, const char *entry, size_t length, const char *what)
{
    snprintf (table->error, sizeof table->error, "%s: '%.*s': %s", table->variable, (int) length, entry, what);
    return -1;
}

int
al_testpoint_parse (al_testpoint_table_t *table, const char *spec)
{
    int count = 0;
    const char *at = spec;
    while (*at) {
        size_t length = strcspn (at, ",");
        const char *end = at + length;
        const char *colon = memchr (at, ':', length);
        size_t name_length = colon? (size_t) (colon - at): length;
        if (count == AL_TESTPOINT_MAX)
            return s_fail (table, at, length, "too many points");
        if (name_length == 0 || name_length >= AL_TESTPOINT_NAME_MAX)
            return s_fail (table, at, length, "a name of 1 to 63 characters is required");
        for (size_t i = 0; i < name_length; i++)
            if (at [i] == '/' || at [i] <= ' ')
                return s_fail (table, at, length, "no '/' or blank in a name");

        al_testpoint_t *point = &table->point [count];
        //  Each field takes the text up to the next ':', the last one all that is left
        //  (so a surplus ':' makes the last number malformed).
        const char *field_at = colon? colon + 1: NULL;
        for (int f = 0; f < table->field_count; f++) {
            const al_testpoint_field_t *field = &table->field [f];
            point->value [f] = field->fallback;
            if (!field_at) {
                if (!field->required)
                    continue;
            }
            else {
                const char *next = f + 1 < table->field_count? memchr (field_at, ':', (size_t) (end - field_at)): NULL;
                size_t field_length = next? (size_t) (next - field_at): (size_t) (end - field_at);
                if (s_number (field_at, field_length, field->minimum, field->maximum, &point->value [f])) {
                    field_at = next? next + 1: NULL;
                    continue;
                }
            }
            char what [96];
            if (field->maximum == ULONG_MAX)
                snprintf (what, sizeof what, "%s must be a number >= %lu", field->label, field->minimum);
            else
                snprintf (what, sizeof what, "%s must be a number of %lu to %lu",
                          field->label, field->minimum, field->maximum);
            return s_fail (table, at, length, what);
        }
        memcpy (point->name, at, name_length);
        point->name [name_length] = 0;
        atomic_init (&point->passes, 0);
        count++;
        at = end;
        if (*at == ',')
            at++;
    }
    return count;
}

void
al_testpoint_load (al_testpoint_table_t *table)
{
    const char *spec = getenv (table->variable);
    table->count = spec? al_testpoint_parse (table, spec): 0;
    if (table->count < 0)
        fprintf (stderr, "%s: %s (%s)\n", table->tag, table->error, table->unarmed);
    table->arm_dir = getenv (table->arm_variable);
    if (table->arm_dir && !*table->arm_dir)
        table->arm_dir = NULL;
}

unsigned long
al_testpoint_pass (al_testpoint_table_t *table, const char *name, int *index)
{
    for (int i = *index; i < table->count; i++)
        if (strcmp (table->point [i].name, name) == 0) {
            *index = i;
            return atomic_fetch_add (&table->point [i].passes, 1) + 1;
        }
    return 0;
}

int
al_testpoint_configured (const al_testpoint_table_t *table, char *error, size_t error_size)
{
    if (table->count < 0 && error && error_size)
        snprintf (error, error_size, "%s", table->error);
    return table->count;
}
