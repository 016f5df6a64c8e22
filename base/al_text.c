/*  al_text.c: visible escaping of untrusted text (see al_text.h).

    One pass over the bytes: each valid UTF-8 sequence is either copied or replaced by
    its escape, each invalid byte becomes "\xNN". The character classes live here once
    and the codec (proto/al_codec.c) uses the same ones for what it refuses on the wire.
*/
#include "base/al_text.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t
al_text_utf8_next (const unsigned char *text, uint32_t *code_point)
{
    unsigned char lead = text [0];
    size_t length;
    uint32_t value, minimum;
    if (lead < 0x80) {
        *code_point = lead;
        return 1;
    }
    else
    if (lead >= 0xC2 && lead <= 0xDF) {
        length = 2; value = lead & 0x1F; minimum = 0x80;
    }
    else
    if (lead >= 0xE0 && lead <= 0xEF) {
        length = 3; value = lead & 0x0F; minimum = 0x800;
    }
    else
    if (lead >= 0xF0 && lead <= 0xF4) {
        length = 4; value = lead & 0x07; minimum = 0x10000;
    }
    else
        return 0;
    for (size_t i = 1; i < length; i++) {
        //  The NUL terminator is not a continuation byte, so we never read past it.
        if ((text [i] & 0xC0) != 0x80)
            return 0;
        value = (value << 6) | (text [i] & 0x3F);
    }
    if (value < minimum || value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF))
        return 0;
    *code_point = value;
    return length;
}

bool
al_text_is_control (uint32_t code_point)
{
    return code_point < 0x20 || (code_point >= 0x7F && code_point <= 0x9F);
}

bool
al_text_is_bidi_control (uint32_t code_point)
{
    return code_point == 0x061C || code_point == 0x200E || code_point == 0x200F
        || (code_point >= 0x202A && code_point <= 0x202E)
        || (code_point >= 0x2066 && code_point <= 0x2069);
}

bool
al_text_is_invisible (uint32_t code_point)
{
    return code_point == 0x00AD || code_point == 0x034F || code_point == 0x180E
        || (code_point >= 0x200B && code_point <= 0x200D)
        || (code_point >= 0x2060 && code_point <= 0x2064)
        || code_point == 0xFEFF;
}

//  The escape of the unit at text into piece (at most 9 bytes + NUL); returns how many
//  input bytes it covers and sets *escaped when the unit is not copied as is.
static size_t
s_unit (const unsigned char *text, char piece [16], bool *escaped)
{
    uint32_t code_point;
    size_t step = al_text_utf8_next (text, &code_point);
    *escaped = true;
    if (step == 0) {
        snprintf (piece, 16, "\\x%02x", text [0]);
        return 1;
    }
    if (code_point == '\\')
        strcpy (piece, "\\\\");
    else
    if (code_point == '\n')
        strcpy (piece, "\\n");
    else
    if (code_point == '\r')
        strcpy (piece, "\\r");
    else
    if (code_point == '\t')
        strcpy (piece, "\\t");
    else
    if (code_point < 0x20 || code_point == 0x7F)
        snprintf (piece, 16, "\\x%02x", (unsigned) code_point);
    else
    if (al_text_is_control (code_point) || al_text_is_bidi_control (code_point) || al_text_is_invisible (code_point))
        snprintf (piece, 16, "\\u{%04X}", (unsigned) code_point);
    else {
        memcpy (piece, text, step);
        piece [step] = '\0';
        *escaped = false;
    }
    return step;
}

size_t
al_text_escape_to (const char *text, char *out, size_t out_size)
{
    const unsigned char *cursor = (const unsigned char *) (text ? text : "");
    size_t needed = 0;
    bool full = false;
    if (out_size > 0)
        out [0] = '\0';
    while (*cursor) {
        char piece [16];
        bool escaped;
        cursor += s_unit (cursor, piece, &escaped);
        size_t length = strlen (piece);
        if (!full && needed + length < out_size) {
            memcpy (out + needed, piece, length + 1);
        }
        else
            full = true;
        needed += length;
    }
    return needed;
}

char *
al_text_escape (const char *text)
{
    size_t length = text ? strlen (text) : 0;
    size_t size = length * AL_TEXT_ESCAPE_MAX_GROWTH + 1;
    char *escaped = malloc (size);
    if (!escaped)
        return NULL;
    size_t written = al_text_escape_to (text, escaped, size);
    assert (written < size);    // AL_TEXT_ESCAPE_MAX_GROWTH bounds every escape
    (void) written;
    return escaped;
}

bool
al_text_is_plain (const char *text)
{
    const unsigned char *cursor = (const unsigned char *) (text ? text : "");
    while (*cursor) {
        char piece [16];
        bool escaped;
        cursor += s_unit (cursor, piece, &escaped);
        if (escaped)
            return false;
    }
    return true;
}
