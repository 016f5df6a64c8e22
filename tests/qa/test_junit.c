/*  test_junit.c: the qa agent's JUnit XML counter (al_qa_junit_count).

    Reports as real runners write them (pytest, JUnit 5 nested suites, go-junit, a
    suite that failed outside its cases; fixtures in tests/qa/fixtures) are counted
    exactly; malformed and hostile inputs are refused with the line at fault: broken
    structure, a DOCTYPE with entities (the "billion laughs"), unknown entities, control
    characters and NUL bytes, nesting past the bound, sizes past 16 MiB. The file reader
    refuses what is not a regular file.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include "agents/al_qa.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char s_fixtures [2048];

static void
s_expect_counts (const char *fixture, unsigned tests, unsigned passed, unsigned failed, unsigned skipped)
{
    char path [2300];
    snprintf (path, sizeof path, "%s/%s", s_fixtures, fixture);
    al_qa_junit_t counts;
    char error [512] = "";
    if (al_qa_junit_count_file (path, &counts, error, sizeof error) != 0)
        fail_msg ("%s: %s", fixture, error);
    if (counts.tests != tests || counts.passed != passed || counts.failed != failed || counts.skipped != skipped)
        fail_msg ("%s: tests %u passed %u failed %u skipped %u (expected %u %u %u %u)", fixture, counts.tests,
                  counts.passed, counts.failed, counts.skipped, tests, passed, failed, skipped);
}

static void
test_real_reports (void **state)
{
    (void) state;
    //  failure and error both fail; skipped skips; comments and CDATA hold no tests.
    s_expect_counts ("pytest.xml", 5, 2, 2, 1);
    //  Nested suites are summed; a case both skipped and failed is failed.
    s_expect_counts ("junit5_nested.xml", 6, 4, 1, 1);
    s_expect_counts ("single_suite.xml", 3, 3, 0, 0);
    //  An <error> of a suite itself counts as one failed test.
    s_expect_counts ("suite_error.xml", 2, 1, 1, 0);
    //  A byte-order mark, an empty report: valid, zero tests.
    s_expect_counts ("empty_bom.xml", 0, 0, 0, 0);
    s_expect_counts ("three_one_failure.xml", 3, 2, 1, 0);
}

//  text is refused with an error starting "input:LINE: " + expected.
static void
s_expect_refused (const char *text, size_t size, const char *expected)
{
    al_qa_junit_t counts = { 7, 7, 7, 7 };
    char error [512] = "";
    if (al_qa_junit_count ("input", text, size, &counts, error, sizeof error) == 0)
        fail_msg ("accepted (tests %u), expected '%s' for: %.200s", counts.tests, expected, text);
    if (strncmp (error, expected, strlen (expected)) != 0)
        fail_msg ("expected '%s', got '%s' for: %.200s", expected, error, text);
    assert_int_equal (counts.tests, 0);
    assert_int_equal (counts.passed, 0);
}

#define S_REFUSED(text, expected) s_expect_refused ((text), strlen (text), (expected))

static void
test_malformed (void **state)
{
    (void) state;
    S_REFUSED ("", "input:1: no root element");
    S_REFUSED ("  \n<!-- only a comment -->\n", "input:3: no root element");
    S_REFUSED ("<testsuite>", "input:1: <testsuite> is not closed");
    S_REFUSED ("<testsuites>\n<testsuite>\n<testcase>\n</testsuite>\n</testsuites>",
               "input:4: end tag </testsuite> does not match <testcase>");
    S_REFUSED ("<testsuite></testsuite></testsuite>", "input:1: end tag </testsuite> without a start tag");
    S_REFUSED ("<testsuite/><testsuite/>", "input:1: a second root element <testsuite>");
    S_REFUSED ("<html><testsuite/></html>", "input:1: the root element is <html>");
    S_REFUSED ("<testsuites><testcase/></testsuites>", "input:1: <testcase> outside a <testsuite>");
    S_REFUSED ("<testsuite><testsuites/></testsuite>", "input:1: <testsuites> is only allowed as the root");
    S_REFUSED ("<testsuite><testcase><testcase/></testcase></testsuite>", "input:1: <testcase> outside a <testsuite>");
    S_REFUSED ("<testsuite><properties><testsuite/></properties></testsuite>",
               "input:1: <testsuite> inside <properties>");
    S_REFUSED ("junk<testsuite/>", "input:1: text outside the root element");
    S_REFUSED ("<testsuite/>\ntrailing", "input:2: text outside the root element");
    S_REFUSED ("<testsuite name=x/>", "input:1: an attribute value must be quoted");
    S_REFUSED ("<testsuite name\"x\"/>", "input:1: expected '=' after the attribute name");
    S_REFUSED ("<testsuite a=\"1\"b=\"2\"/>", "input:1: expected whitespace, '>' or '/>' in the tag");
    S_REFUSED ("<testsuite a=\"<\"/>", "input:1: '<' in an attribute value");
    S_REFUSED ("<testsuite a=\"1/>", "input:1: an attribute value is not closed");
    S_REFUSED ("<testsuite", "input:1: the tag <testsuite is not closed");
    S_REFUSED ("<testsuite>< testcase/></testsuite>", "input:1: '<' that starts no tag");
    S_REFUSED ("<testsuite>a < b</testsuite>", "input:1: '<' that starts no tag");
    S_REFUSED ("<testsuite></ testsuite>", "input:1: malformed end tag");
    S_REFUSED ("<testsuite><!-- open", "input:1: a comment is not closed with '-->'");
    S_REFUSED ("<testsuite><![CDATA[ open", "input:1: a CDATA section is not closed with ']]>'");
    S_REFUSED ("<![CDATA[x]]><testsuite/>", "input:1: CDATA outside the root element");
    S_REFUSED ("<? ?><testsuite/>", "input:1: malformed processing instruction");
    S_REFUSED ("<?xml version='1.0'<testsuite/>", "input:1: a processing instruction is not closed");
    //  Entities: the five predefined and valid character references only.
    S_REFUSED ("<testsuite>&nbsp;</testsuite>", "input:1: unknown or unterminated entity reference '&nbsp'");
    S_REFUSED ("<testsuite>&amp</testsuite>", "input:1: unknown or unterminated entity reference '&amp'");
    S_REFUSED ("<testsuite>&</testsuite>", "input:1: unknown or unterminated entity reference '&'");
    S_REFUSED ("<testsuite a='&bogus;'/>", "input:1: unknown or unterminated entity reference '&bogus'");
    S_REFUSED ("<testsuite>&#0;</testsuite>", "input:1: invalid character reference");
    S_REFUSED ("<testsuite>&#x110000;</testsuite>", "input:1: invalid character reference");
    S_REFUSED ("<testsuite>&#xD800;</testsuite>", "input:1: invalid character reference");
    S_REFUSED ("<testsuite>&#;</testsuite>", "input:1: invalid character reference");
    S_REFUSED ("<testsuite>&#123456789;</testsuite>", "input:1: invalid character reference");
    //  Control characters and NUL bytes are refused wherever they are.
    S_REFUSED ("<testsuite>\x01</testsuite>", "input:1: control character 0x01");
    static const char with_nul [] = "<testsuite>\n\n<testcase/>\0</testsuite>";
    s_expect_refused (with_nul, sizeof with_nul - 1, "input:3: control character 0x00");
}

static void
test_hostile (void **state)
{
    (void) state;
    //  The billion laughs: no DOCTYPE at all, so nothing is ever expanded.
    S_REFUSED ("<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n <!ENTITY lol \"lol\">\n"
               " <!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n]>\n"
               "<testsuites>&lol2;</testsuites>",
               "input:2: a DOCTYPE or other declaration is not accepted");
    //  An external entity (XXE) likewise.
    S_REFUSED ("<!DOCTYPE t [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><testsuite>&x;</testsuite>",
               "input:1: a DOCTYPE");

    //  Nesting: 256 levels are read, 257 are refused.
    size_t levels = AL_QA_JUNIT_MAX_DEPTH;
    char *deep = malloc (levels * 8 + 64);
    assert_non_null (deep);
    for (int extra = 0; extra < 2; extra++) {
        char *out = stpcpy (deep, "<testsuite>");
        for (size_t i = 1; i < levels + (size_t) extra; i++)
            out = stpcpy (out, "<a>");
        for (size_t i = 1; i < levels + (size_t) extra; i++)
            out = stpcpy (out, "</a>");
        strcpy (out, "</testsuite>");
        al_qa_junit_t counts;
        char error [512] = "";
        int rc = al_qa_junit_count ("deep", deep, strlen (deep), &counts, error, sizeof error);
        if (extra) {
            assert_int_equal (rc, -1);
            assert_string_equal (error, "deep:1: elements nested deeper than 256");
        }
        else if (rc != 0)
            fail_msg ("256 levels refused: %s", error);
    }
    free (deep);

    //  Many cases in one report: each is counted, in one linear pass.
    size_t cases = 500000;
    const char *one = "<testcase name=\"t\"/>";
    const char *skipped = "<testcase><skipped/></testcase>";
    char *many = malloc (cases * strlen (skipped) + 64);
    assert_non_null (many);
    char *out = stpcpy (many, "<testsuite>");
    for (size_t i = 0; i < cases; i++)
        out = stpcpy (out, i % 10 == 9 ? skipped : one);
    strcpy (out, "</testsuite>");
    al_qa_junit_t counts;
    char error [512] = "";
    assert_int_equal (al_qa_junit_count ("many", many, strlen (many), &counts, error, sizeof error), 0);
    assert_int_equal (counts.tests, cases);
    assert_int_equal (counts.skipped, cases / 10);
    assert_int_equal (counts.passed, cases - cases / 10);
    free (many);

    //  16 MiB is the bound; one byte more is refused before anything is read.
    size_t limit = AL_QA_JUNIT_MAX_SIZE;
    char *big = malloc (limit + 1);
    assert_non_null (big);
    memset (big, ' ', limit + 1);
    memcpy (big, "<testsuite>", 11);
    memcpy (big + limit - 12, "</testsuite>", 12);
    assert_int_equal (al_qa_junit_count ("big", big, limit, &counts, error, sizeof error), 0);
    assert_int_equal (counts.tests, 0);
    assert_int_equal (al_qa_junit_count ("big", big, limit + 1, &counts, error, sizeof error), -1);
    assert_string_equal (error, "big: larger than 16777216 bytes");
    free (big);
}

static void
test_files (void **state)
{
    (void) state;
    char dir [] = "/tmp/al-junit-XXXXXX";
    assert_non_null (mkdtemp (dir));
    char path [256], expected [512], error [512];
    al_qa_junit_t counts;
    snprintf (path, sizeof path, "%s/missing.xml", dir);
    assert_int_equal (al_qa_junit_count_file (path, &counts, error, sizeof error), -1);
    snprintf (expected, sizeof expected, "%s: cannot open: No such file or directory", path);
    assert_string_equal (error, expected);
    //  A directory, a FIFO: not regular files (a FIFO must not block the reader).
    assert_int_equal (al_qa_junit_count_file (dir, &counts, error, sizeof error), -1);
    snprintf (expected, sizeof expected, "%s: not a regular file", dir);
    assert_string_equal (error, expected);
    snprintf (path, sizeof path, "%s/fifo.xml", dir);
    assert_int_equal (mkfifo (path, 0600), 0);
    assert_int_equal (al_qa_junit_count_file (path, &counts, error, sizeof error), -1);
    snprintf (expected, sizeof expected, "%s: not a regular file", path);
    assert_string_equal (error, expected);
    unlink (path);
    //  A file past the bound; then a good one, whose errors carry its path.
    snprintf (path, sizeof path, "%s/big.xml", dir);
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    assert_int_equal (ftruncate (fileno (file), AL_QA_JUNIT_MAX_SIZE + 1), 0);
    fclose (file);
    assert_int_equal (al_qa_junit_count_file (path, &counts, error, sizeof error), -1);
    snprintf (expected, sizeof expected, "%s: larger than 16777216 bytes", path);
    assert_string_equal (error, expected);
    file = fopen (path, "w");
    assert_non_null (file);
    fputs ("<testsuite>\n<testcase/>\n</testcase>\n", file);
    fclose (file);
    assert_int_equal (al_qa_junit_count_file (path, &counts, error, sizeof error), -1);
    snprintf (expected, sizeof expected, "%s:3: end tag </testcase> does not match <testsuite>", path);
    assert_string_equal (error, expected);
    unlink (path);
    rmdir (dir);
}

int
main (void)
{
    const char *source = getenv ("AIRLOCK_SOURCE_DIR");
    if (!source) {
        fprintf (stderr, "AIRLOCK_SOURCE_DIR is not set\n");
        return 1;
    }
    snprintf (s_fixtures, sizeof s_fixtures, "%s/tests/qa/fixtures", source);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_real_reports),
        cmocka_unit_test (test_malformed),
        cmocka_unit_test (test_hostile),
        cmocka_unit_test (test_files),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
