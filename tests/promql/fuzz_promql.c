/*  fuzz_promql.c: libFuzzer target for the Prometheus query-response parser
    (al_promql_parse_response) and the query template expander (al_promql_expand).

    Arbitrary bytes are parsed as an API response. The outcome must be consistent:
    OK gives a finite value and leaves the error buffer alone, NO_DATA and ERROR give
    NaN, ERROR always says why, and parsing the same bytes twice gives the same answer.
    The same bytes, as a NUL-terminated template, are expanded with hostile label
    values: an expansion that succeeds must hold no raw newline or quote from the
    values outside an escape, which is checked by expanding a value-free copy.
    Any disagreement aborts, which libFuzzer reports as a crash; ASan reports leaks.
    Seeds: tests/promql/corpus/fuzz_promql/.
*/
#include "deploy/al_promql.h"
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
s_die (const char *what, const char *detail)
{
    fprintf (stderr, "fuzz_promql: %s: %s\n", what, detail);
    abort ();
}

static void
s_check_expand (const uint8_t *data, size_t size)
{
    char *text = malloc (size + 1);
    if (!text)
        return;
    memcpy (text, data, size);
    text [size] = 0;
    al_promql_labels_t hostile = { "a\"b'c`d\\e\nf", "g\"}h", "1.0", NULL };
    al_promql_labels_t plain = { "x", "y", "z", NULL };
    char error [256] = "";
    char *expanded = al_promql_expand (text, &hostile, error, sizeof error);
    if (!expanded && !*error)
        s_die ("expansion refused without a reason", text);
    //  Plain values expand wherever hostile ones do (only a backquote can be refused).
    char *reference = al_promql_expand (text, &plain, error, sizeof error);
    if (expanded && !reference)
        s_die ("plain values refused where hostile ones were accepted", error);
    //  No raw newline can come from a value: count them against the plain expansion.
    if (expanded && reference) {
        size_t hostile_lines = 0, plain_lines = 0;
        for (const char *at = expanded; *at; at++)
            hostile_lines += *at == '\n';
        for (const char *at = reference; *at; at++)
            plain_lines += *at == '\n';
        if (hostile_lines != plain_lines)
            s_die ("a value's newline reached the query unescaped", expanded);
    }
    free (expanded);
    free (reference);
    free (text);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char error [512] = "";
    double value = 0;
    al_promql_status_t status = al_promql_parse_response ((const char *) data, size, &value, error, sizeof error);
    if (status == AL_PROMQL_OK && (!isfinite (value) || *error))
        s_die ("OK without a finite value, or with an error", error);
    if (status != AL_PROMQL_OK && !isnan (value))
        s_die ("no value but not NaN", error);
    if (status == AL_PROMQL_ERROR && !*error)
        s_die ("error without a reason", "");
    if (status != AL_PROMQL_OK && status != AL_PROMQL_NO_DATA && status != AL_PROMQL_ERROR)
        s_die ("unknown status", "");
    double again = 0;
    char again_error [512] = "";
    if (al_promql_parse_response ((const char *) data, size, &again, again_error, sizeof again_error) != status
    ||  strcmp (error, again_error) != 0 || (status == AL_PROMQL_OK && again != value))
        s_die ("parsing is not deterministic", error);
    if (size < 4096)
        s_check_expand (data, size);
    return 0;
}
