/*  test_text.c: al_text, the one escaping of agent-written text shown to a human.

    Each hostile form (CR overwrite, LF forged line, bidi override, ANSI, zero-width,
    C1, invalid UTF-8, a forged escape) must come out visible, on one line, with no raw
    control, bidi or invisible character left; plain text must come out unchanged.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "base/al_text.h"

#include <stdlib.h>
#include <string.h>

static void
s_expect (const char *input, const char *expected)
{
    char *escaped = al_text_escape (input);
    assert_non_null (escaped);
    assert_string_equal (escaped, expected);
    char buffer [512];
    assert_int_equal (al_text_escape_to (input, buffer, sizeof buffer), strlen (expected));
    assert_string_equal (buffer, expected);
    assert_int_equal (al_text_is_plain (input), strcmp (input, expected) == 0);
    free (escaped);
}

//  Nothing in s that a terminal would act on or hide: every byte is printable ASCII or
//  part of a valid UTF-8 sequence that is neither a control, a bidi control nor invisible.
static void
s_assert_inert (const char *s)
{
    const unsigned char *cursor = (const unsigned char *) s;
    while (*cursor) {
        uint32_t code_point;
        size_t step = al_text_utf8_next (cursor, &code_point);
        if (step == 0)
            fail_msg ("invalid UTF-8 left at byte %zu of '%s'", (size_t) (cursor - (const unsigned char *) s), s);
        if (al_text_is_control (code_point) || al_text_is_bidi_control (code_point)
        ||  al_text_is_invisible (code_point))
            fail_msg ("U+%04X left raw in '%s'", (unsigned) code_point, s);
        cursor += step;
    }
}

static void
test_plain_text_unchanged (void **state)
{
    (void) state;
    s_expect ("", "");
    s_expect ("routine dependency bump", "routine dependency bump");
    s_expect ("Zürich café 東京 🚀", "Zürich café 東京 🚀");
    assert_true (al_text_is_plain (NULL));
    char *escaped = al_text_escape (NULL);
    assert_string_equal (escaped, "");
    free (escaped);
}

static void
test_hostile_forms_escaped (void **state)
{
    (void) state;
    //  CR overwrite, LF forged line, tab.
    s_expect ("DISABLES-FRAUD-CHECKS\rroutine dependency bump",
              "DISABLES-FRAUD-CHECKS\\rroutine dependency bump");
    s_expect ("fine\n- Artifact sha256: 0000", "fine\\n- Artifact sha256: 0000");
    s_expect ("a\tb", "a\\tb");
    //  ANSI: ESC is C0, CSI (U+009B) is C1; DEL; NUL cannot be inside a C string.
    s_expect ("\x1b[2Jclean", "\\x1b[2Jclean");
    s_expect ("csi \xc2\x9b" "2J", "csi \\u{009B}2J");
    s_expect ("del\x7f", "del\\x7f");
    s_expect ("bell\x07", "bell\\x07");
    //  Bidi controls, each of them.
    s_expect ("abc\xe2\x80\xaegnp.exe", "abc\\u{202E}gnp.exe");
    static const char *bidi [] = {
        "\xd8\x9c", "\xe2\x80\x8e", "\xe2\x80\x8f", "\xe2\x80\xaa", "\xe2\x80\xab", "\xe2\x80\xac",
        "\xe2\x80\xad", "\xe2\x80\xae", "\xe2\x81\xa6", "\xe2\x81\xa7", "\xe2\x81\xa8", "\xe2\x81\xa9",
    };
    static const char *bidi_escaped [] = {
        "\\u{061C}", "\\u{200E}", "\\u{200F}", "\\u{202A}", "\\u{202B}", "\\u{202C}",
        "\\u{202D}", "\\u{202E}", "\\u{2066}", "\\u{2067}", "\\u{2068}", "\\u{2069}",
    };
    for (size_t i = 0; i < sizeof bidi / sizeof bidi [0]; i++)
        s_expect (bidi [i], bidi_escaped [i]);
    //  Invisible characters.
    s_expect ("pay\xe2\x80\x8bpal", "pay\\u{200B}pal");
    s_expect ("\xef\xbb\xbfx", "\\u{FEFF}x");
    s_expect ("soft\xc2\xadhyphen", "soft\\u{00AD}hyphen");
    s_expect ("\xe1\xa0\x8e\xcd\x8f\xe2\x81\xa0\xe2\x81\xa4\xe2\x80\x8d",
              "\\u{180E}\\u{034F}\\u{2060}\\u{2064}\\u{200D}");
    //  Invalid UTF-8: each byte shown, never a raw high byte.
    s_expect ("ok \xc3\x28", "ok \\xc3(");
    s_expect ("\xc0\xaf", "\\xc0\\xaf");
    s_expect ("\xed\xa0\x80", "\\xed\\xa0\\x80");
    s_expect ("end \xe2\x82", "end \\xe2\\x82");
    s_expect ("\xff", "\\xff");
}

static void
test_escapes_cannot_be_forged (void **state)
{
    (void) state;
    //  A literal "\r" typed by the agent is not the same as an escaped CR.
    s_expect ("typed \\r here", "typed \\\\r here");
    s_expect ("\\u{202E}", "\\\\u{202E}");
    char *typed = al_text_escape ("x\\ny");
    char *real = al_text_escape ("x\ny");
    assert_string_not_equal (typed, real);
    free (typed);
    free (real);
}

static void
test_everything_inert (void **state)
{
    (void) state;
    //  Every byte value, and every code point of the classes, in one string.
    char all [256 * 4 + 1];
    size_t length = 0;
    for (int byte = 1; byte < 256; byte++)
        all [length++] = (char) byte;
    all [length] = '\0';
    char *escaped = al_text_escape (all);
    assert_non_null (escaped);
    s_assert_inert (escaped);
    assert_null (strchr (escaped, '\n'));
    assert_true (strlen (escaped) <= strlen (all) * AL_TEXT_ESCAPE_MAX_GROWTH);
    free (escaped);
    //  Worst-case growth: all C1 controls (2 bytes -> 8) and single controls (1 -> 4).
    char worst [64 * 2 + 1];
    for (size_t i = 0; i < 64; i++) {
        worst [2 * i] = (char) 0xc2;
        worst [2 * i + 1] = (char) 0x85;
    }
    worst [128] = '\0';
    escaped = al_text_escape (worst);
    assert_int_equal (strlen (escaped), 64 * 8);
    s_assert_inert (escaped);
    free (escaped);
}

static void
test_cut_never_splits_an_escape (void **state)
{
    (void) state;
    char small [8];
    //  "ab\u{202E}": the escape does not fit after "ab" in 8 bytes: left out whole.
    size_t needed = al_text_escape_to ("ab\xe2\x80\xae" "cd", small, sizeof small);
    assert_int_equal (needed, strlen ("ab\\u{202E}cd"));
    assert_string_equal (small, "ab");
    char one [1];
    assert_int_equal (al_text_escape_to ("x", one, sizeof one), 1);
    assert_string_equal (one, "");
    //  A multi-byte character is not cut either.
    char four [4];
    al_text_escape_to ("a東", four, sizeof four);
    assert_string_equal (four, "a");
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_plain_text_unchanged),
        cmocka_unit_test (test_hostile_forms_escaped),
        cmocka_unit_test (test_escapes_cannot_be_forged),
        cmocka_unit_test (test_everything_inert),
        cmocka_unit_test (test_cut_never_splits_an_escape),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
