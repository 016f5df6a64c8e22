/*  al_text.h: showing text that someone else wrote (an agent, a driver, a peer) to a human.

    Everything an agent writes is hostile when a human reads it: a carriage return can
    overwrite what is already on the line, a line feed can forge a line that looks like
    airlock's own, bidi overrides reorder what is seen, zero-width characters hide text,
    ANSI sequences clear the screen. al_text_escape makes all of it visible instead, and
    is the one escaping function used wherever agent text is shown to an approver
    (terminal, --json, MCP).

    The escaped form is one line of valid UTF-8 in which:
      - a backslash is doubled ("\\"), so no escape below can be forged;
      - LF, CR, TAB are "\n", "\r", "\t"; every other C0 control and DEL are "\xNN"
        (NN < 80, two lowercase hex digits);
      - C1 controls (U+0080..U+009F), bidi controls (U+061C, U+200E, U+200F,
        U+202A..U+202E, U+2066..U+2069) and invisible characters (U+00AD, U+034F,
        U+180E, U+200B..U+200D, U+2060..U+2064, U+FEFF) are "\u{XXXX}" (uppercase hex);
      - each byte that is not part of valid UTF-8 (overlong, surrogate, above
        U+10FFFF, cut short) is "\xNN" (NN >= 80, so never confused with a control);
      - everything else is copied unchanged.
    The output therefore never holds a control byte, a bidi control or an invisible
    character, and is never more than AL_TEXT_ESCAPE_MAX_GROWTH times the input.

    Pure functions, no state: thread-safe.
*/
#ifndef AL_TEXT_H_INCLUDED
#define AL_TEXT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  The escaped form of n bytes is at most n * AL_TEXT_ESCAPE_MAX_GROWTH bytes (plus NUL).
#define AL_TEXT_ESCAPE_MAX_GROWTH 4

//  The escaped form of TEXT (NULL is shown as ""), newly allocated: the caller frees it.
//  NULL only when memory runs out.
char *al_text_escape (const char *text);

//  The escaped form of TEXT into out (always NUL-terminated when out_size > 0); an escape
//  is never cut in half: what does not fit is left out whole. Returns the length of the
//  complete escaped form (like snprintf), so a result >= out_size means it was cut.
size_t al_text_escape_to (const char *text, char *out, size_t out_size);

//  True if al_text_escape would show TEXT unchanged.
bool al_text_is_plain (const char *text);

//  Decode one UTF-8 sequence at text (which is NUL-terminated); returns its length and
//  sets *code_point, or returns 0 if the bytes there are not valid UTF-8 (overlong forms,
//  surrogates, code points above U+10FFFF, a sequence cut short). Never reads past a NUL.
size_t al_text_utf8_next (const unsigned char *text, uint32_t *code_point);

//  C0 controls, DEL and C1 controls (U+0000..U+001F, U+007F..U+009F).
bool al_text_is_control (uint32_t code_point);

//  Bidi controls: U+061C, U+200E, U+200F, U+202A..U+202E, U+2066..U+2069.
bool al_text_is_bidi_control (uint32_t code_point);

//  Characters that show nothing: U+00AD, U+034F, U+180E, U+200B..U+200D,
//  U+2060..U+2064, U+FEFF.
bool al_text_is_invisible (uint32_t code_point);

#endif
