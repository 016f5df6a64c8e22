/*  fuzz_text.c: libFuzzer target for al_text_escape.

    Arbitrary bytes (cut at the first NUL, as a C string is) are escaped. The result must
    be inert (valid UTF-8 without a control, bidi or invisible character, so without a
    line feed either), within AL_TEXT_ESCAPE_MAX_GROWTH, equal to the input exactly when
    al_text_is_plain says so, and every cut escape (al_text_escape_to with a smaller
    buffer) must be a prefix of the whole one. Any violation aborts.
*/
#include "base/al_text.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
s_die (const char *what)
{
    fprintf (stderr, "fuzz_text: %s\n", what);
    abort ();
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char *text = malloc (size + 1);
    if (!text)
        return 0;
    memcpy (text, data, size);
    text [size] = '\0';
    char *escaped = al_text_escape (text);
    if (!escaped)
        s_die ("al_text_escape returned NULL");
    size_t length = strlen (escaped);
    if (length > strlen (text) * AL_TEXT_ESCAPE_MAX_GROWTH)
        s_die ("grew beyond AL_TEXT_ESCAPE_MAX_GROWTH");
    const unsigned char *cursor = (const unsigned char *) escaped;
    while (*cursor) {
        uint32_t code_point;
        size_t step = al_text_utf8_next (cursor, &code_point);
        if (step == 0)
            s_die ("invalid UTF-8 in the escaped form");
        if (al_text_is_control (code_point) || al_text_is_bidi_control (code_point) || al_text_is_invisible (code_point))
            s_die ("a control, bidi or invisible character survived");
        cursor += step;
    }
    if (al_text_is_plain (text) != (strcmp (text, escaped) == 0))
        s_die ("al_text_is_plain disagrees with al_text_escape");
    size_t cut_size = size % (length + 2);
    char *cut = malloc (cut_size + 1);
    if (cut) {
        size_t needed = al_text_escape_to (text, cut, cut_size);
        if (needed != length)
            s_die ("al_text_escape_to reports another length");
        if (cut_size > 0 && strncmp (cut, escaped, strlen (cut)) != 0)
            s_die ("a cut escape is not a prefix of the whole one");
        free (cut);
    }
    free (escaped);
    free (text);
    return 0;
}
