/*  al_qa_junit.c: the qa agent's JUnit counter (al_qa_junit_count, see al_qa.h).

    A small strict XML scanner, not a parser: it checks the structure (matching tags,
    quoted attributes, known entities, comments, CDATA, processing instructions) and
    counts <testcase> elements and their <failure>, <error> and <skipped> children.
    Input is bounded (16 MiB, 256 levels); nothing it reads is expanded or resolved, so
    hostile input costs at most one linear pass. Pure; thread-safe.
*/
#include "agents/al_qa.h"
#include "agents/al_qa_int.h"
#include <assert.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum {
    S_XML_OTHER, S_XML_TESTSUITES, S_XML_TESTSUITE, S_XML_TESTCASE, S_XML_FAILURE, S_XML_ERROR,
    S_XML_SKIPPED
} s_xml_kind_t;

typedef struct {
    size_t name;                    // offset of the element's name
    size_t length;                  // its length
    s_xml_kind_t kind;
    bool failed;                    // a testcase with a <failure> or <error>
    bool skipped;                   // a testcase with a <skipped>
} s_xml_open_t;

typedef struct {
    const char *name;               // the input's label in messages
    const unsigned char *data;
    size_t size;
    size_t pos;
    char *error;
    size_t error_size;
    s_xml_open_t stack [AL_QA_JUNIT_MAX_DEPTH];
    size_t depth;
    bool root_seen;
    bool root_closed;
    al_qa_junit_t counts;
} s_xml_t;

//  "NAME:LINE: what" for the byte at offset at. Returns -1.
static int
s_xml_fail_at (s_xml_t *x, size_t at, const char *format, ...) __attribute__ ((format (printf, 3, 4)));

static int
s_xml_fail_at (s_xml_t *x, size_t at, const char *format, ...)
{
    size_t line = 1;
    for (size_t i = 0; i < at && i < x->size; i++)
        if (x->data [i] == '\n')
            line++;
    char what [400];
    va_list args;
    va_start (args, format);
    vsnprintf (what, sizeof what, format, args);
    va_end (args);
    snprintf (x->error, x->error_size, "%s:%zu: %s", x->name, line, what);
    return -1;
}

#define s_xml_fail(x, ...) s_xml_fail_at ((x), (x)->pos, __VA_ARGS__)

static bool
s_xml_at (const s_xml_t *x, const char *text)
{
    size_t length = strlen (text);
    return x->size - x->pos >= length && memcmp (x->data + x->pos, text, length) == 0;
}

static bool
s_xml_space (unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool
s_xml_name_start (unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' || c >= 0x80;
}

static bool
s_xml_name_char (unsigned char c)
{
    return s_xml_name_start (c) || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

static void
s_xml_skip_space (s_xml_t *x)
{
    while (x->pos < x->size && s_xml_space (x->data [x->pos]))
        x->pos++;
}

//  A name at pos; its length, 0 if none.
static size_t
s_xml_name (s_xml_t *x)
{
    size_t start = x->pos;
    if (x->pos < x->size && s_xml_name_start (x->data [x->pos])) {
        x->pos++;
        while (x->pos < x->size && s_xml_name_char (x->data [x->pos]))
            x->pos++;
    }
    return x->pos - start;
}

//  Skip past terminator (from pos); what names the construct in the error.
static int
s_xml_skip_past (s_xml_t *x, const char *terminator, const char *what)
{
    size_t start = x->pos;
    size_t length = strlen (terminator);
    const void *found = memmem (x->data + x->pos, x->size - x->pos, terminator, length);
    if (!found)
        return s_xml_fail_at (x, start, "%s is not closed with '%s'", what, terminator);
    x->pos = (size_t) ((const unsigned char *) found - x->data) + length;
    return 0;
}

//  An entity or character reference at pos ('&'): only the predefined five and
//  numeric references to valid characters (nothing is defined without a DTD).
static int
s_xml_reference (s_xml_t *x)
{
    size_t start = x->pos++;
    if (x->pos < x->size && x->data [x->pos] == '#') {
        x->pos++;
        bool hex = x->pos < x->size && x->data [x->pos] == 'x';
        if (hex)
            x->pos++;
        unsigned long value = 0;
        size_t digits = 0;
        while (x->pos < x->size && digits < 8) {
            unsigned char c = x->data [x->pos];
            int digit = c >= '0' && c <= '9' ? c - '0'
                      : hex && c >= 'a' && c <= 'f' ? c - 'a' + 10
                      : hex && c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
            if (digit < 0)
                break;
            value = value * (hex ? 16 : 10) + (unsigned long) digit;
            digits++;
            x->pos++;
        }
        bool valid = digits > 0 && x->pos < x->size && x->data [x->pos] == ';'
                  && (value == 0x9 || value == 0xa || value == 0xd || (value >= 0x20 && value <= 0xd7ff)
                      || (value >= 0xe000 && value <= 0xfffd) || (value >= 0x10000 && value <= 0x10ffff));
        if (!valid)
            return s_xml_fail_at (x, start, "invalid character reference");
        x->pos++;
        return 0;
    }
    size_t name_start = x->pos;
    size_t length = s_xml_name (x);
    static const char *const known [] = { "lt", "gt", "amp", "apos", "quot" };
    bool ok = false;
    for (size_t i = 0; i < 5 && !ok; i++)
        ok = length == strlen (known [i]) && memcmp (x->data + name_start, known [i], length) == 0;
    if (!ok || x->pos >= x->size || x->data [x->pos] != ';')
        return s_xml_fail_at (x, start, "unknown or unterminated entity reference '&%.*s' (only &lt; &gt; "
                              "&amp; &apos; &quot; and &#...;)", (int) (length > 32 ? 32 : length),
                              (const char *) x->data + name_start);
    x->pos++;
    return 0;
}

static s_xml_kind_t
s_xml_kind (const unsigned char *name, size_t length)
{
    static const struct { const char *name; s_xml_kind_t kind; } names [] = {
        { "testsuites", S_XML_TESTSUITES }, { "testsuite", S_XML_TESTSUITE },
        { "testcase", S_XML_TESTCASE }, { "failure", S_XML_FAILURE }, { "error", S_XML_ERROR },
        { "skipped", S_XML_SKIPPED },
    };
    for (size_t i = 0; i < sizeof names / sizeof names [0]; i++)
        if (length == strlen (names [i].name) && memcmp (name, names [i].name, length) == 0)
            return names [i].kind;
    return S_XML_OTHER;
}

//  The element on top of the stack ends: tally a testcase.
static void
s_xml_close (s_xml_t *x)
{
    assert (x->depth > 0);
    s_xml_open_t *element = &x->stack [--x->depth];
    if (element->kind == S_XML_TESTCASE) {
        x->counts.tests++;
        if (element->failed)
            x->counts.failed++;
        else
        if (element->skipped)
            x->counts.skipped++;
        else
            x->counts.passed++;
    }
    if (x->depth == 0)
        x->root_closed = true;
}

//  A start tag; pos is just past '<'.
static int
s_xml_start_tag (s_xml_t *x)
{
    size_t tag = x->pos - 1;
    size_t name = x->pos;
    size_t length = s_xml_name (x);
    if (length == 0)
        return s_xml_fail_at (x, tag, "'<' that starts no tag (write &lt; in text)");
    if (x->root_closed)
        return s_xml_fail_at (x, tag, "a second root element <%.*s>", (int) (length > 64 ? 64 : length),
                              (const char *) x->data + name);
    //  Attributes: whitespace, name, '=', a quoted value.
    while (true) {
        size_t before = x->pos;
        s_xml_skip_space (x);
        if (x->pos >= x->size)
            return s_xml_fail_at (x, tag, "the tag <%.*s is not closed", (int) (length > 64 ? 64 : length),
                                  (const char *) x->data + name);
        unsigned char c = x->data [x->pos];
        if (c == '>' || (c == '/' && s_xml_at (x, "/>")))
            break;
        if (x->pos == before)
            return s_xml_fail (x, "expected whitespace, '>' or '/>' in the tag");
        if (s_xml_name (x) == 0)
            return s_xml_fail (x, "expected an attribute name");
        s_xml_skip_space (x);
        if (x->pos >= x->size || x->data [x->pos] != '=')
            return s_xml_fail (x, "expected '=' after the attribute name");
        x->pos++;
        s_xml_skip_space (x);
        if (x->pos >= x->size || (x->data [x->pos] != '"' && x->data [x->pos] != '\''))
            return s_xml_fail (x, "an attribute value must be quoted");
        unsigned char quote = x->data [x->pos++];
        while (x->pos < x->size && x->data [x->pos] != quote) {
            if (x->data [x->pos] == '<')
                return s_xml_fail (x, "'<' in an attribute value");
            if (x->data [x->pos] == '&') {
                if (s_xml_reference (x) != 0)
                    return -1;
            }
            else
                x->pos++;
        }
        if (x->pos >= x->size)
            return s_xml_fail_at (x, tag, "an attribute value is not closed");
        x->pos++;
    }
    bool empty = x->data [x->pos] == '/';
    x->pos += empty ? 2 : 1;

    //  Where it may be, and what it means there.
    s_xml_kind_t kind = s_xml_kind (x->data + name, length);
    s_xml_open_t *parent = x->depth ? &x->stack [x->depth - 1] : NULL;
    if (!parent) {
        if (kind != S_XML_TESTSUITES && kind != S_XML_TESTSUITE)
            return s_xml_fail_at (x, tag, "the root element is <%.*s>, not <testsuites> or <testsuite>",
                                  (int) (length > 64 ? 64 : length), (const char *) x->data + name);
        x->root_seen = true;
    }
    else
    if (kind == S_XML_TESTSUITES)
        return s_xml_fail_at (x, tag, "<testsuites> is only allowed as the root element");
    else
    if (kind == S_XML_TESTSUITE && parent->kind != S_XML_TESTSUITES && parent->kind != S_XML_TESTSUITE)
        return s_xml_fail_at (x, tag, "<testsuite> inside <%.*s>", (int) (parent->length > 64 ? 64 : parent->length),
                              (const char *) x->data + parent->name);
    else
    if (kind == S_XML_TESTCASE && parent->kind != S_XML_TESTSUITE)
        return s_xml_fail_at (x, tag, "<testcase> outside a <testsuite>");
    else
    if ((kind == S_XML_FAILURE || kind == S_XML_ERROR) && parent->kind == S_XML_TESTCASE)
        parent->failed = true;
    else
    if (kind == S_XML_SKIPPED && parent->kind == S_XML_TESTCASE)
        parent->skipped = true;
    else
    if ((kind == S_XML_FAILURE || kind == S_XML_ERROR) && parent->kind == S_XML_TESTSUITE) {
        //  The suite failed outside its cases (setup, collection): never a pass.
        x->counts.tests++;
        x->counts.failed++;
    }
    if (x->depth == AL_QA_JUNIT_MAX_DEPTH)
        return s_xml_fail_at (x, tag, "elements nested deeper than %d", AL_QA_JUNIT_MAX_DEPTH);
    x->stack [x->depth++] = (s_xml_open_t) { .name = name, .length = length, .kind = kind };
    if (empty)
        s_xml_close (x);
    return 0;
}

//  An end tag; pos is just past "</".
static int
s_xml_end_tag (s_xml_t *x)
{
    size_t tag = x->pos - 2;
    size_t name = x->pos;
    size_t length = s_xml_name (x);
    s_xml_skip_space (x);
    if (length == 0 || x->pos >= x->size || x->data [x->pos] != '>')
        return s_xml_fail_at (x, tag, "malformed end tag");
    x->pos++;
    if (x->depth == 0)
        return s_xml_fail_at (x, tag, "end tag </%.*s> without a start tag", (int) (length > 64 ? 64 : length),
                              (const char *) x->data + name);
    const s_xml_open_t *open = &x->stack [x->depth - 1];
    if (open->length != length || memcmp (x->data + open->name, x->data + name, length) != 0)
        return s_xml_fail_at (x, tag, "end tag </%.*s> does not match <%.*s>", (int) (length > 64 ? 64 : length),
                              (const char *) x->data + name, (int) (open->length > 64 ? 64 : open->length),
                              (const char *) x->data + open->name);
    s_xml_close (x);
    return 0;
}

static int
s_xml_document (s_xml_t *x)
{
    //  Characters XML 1.0 does not allow anywhere (this also refuses NUL bytes).
    for (size_t i = 0; i < x->size; i++)
        if ((x->data [i] < 0x20 && x->data [i] != '\t' && x->data [i] != '\n' && x->data [i] != '\r')
        ||  x->data [i] == 0x7f)
            return s_xml_fail_at (x, i, "control character 0x%02x", x->data [i]);
    if (s_xml_at (x, "\xef\xbb\xbf"))
        x->pos += 3;
    while (x->pos < x->size) {
        unsigned char c = x->data [x->pos];
        if (c != '<') {
            bool inside = x->depth > 0;
            if (c == '&' && inside) {
                if (s_xml_reference (x) != 0)
                    return -1;
                continue;
            }
            if (!inside && !s_xml_space (c))
                return s_xml_fail (x, "text outside the root element");
            x->pos++;
            continue;
        }
        if (s_xml_at (x, "<!--")) {
            x->pos += 4;
            if (s_xml_skip_past (x, "-->", "a comment") != 0)
                return -1;
        }
        else
        if (s_xml_at (x, "<![CDATA[")) {
            if (x->depth == 0)
                return s_xml_fail (x, "CDATA outside the root element");
            x->pos += 9;
            if (s_xml_skip_past (x, "]]>", "a CDATA section") != 0)
                return -1;
        }
        else
        if (s_xml_at (x, "<!"))
            return s_xml_fail (x, "a DOCTYPE or other declaration is not accepted in a JUnit report");
        else
        if (s_xml_at (x, "<?")) {
            x->pos += 2;
            if (s_xml_name (x) == 0)
                return s_xml_fail (x, "malformed processing instruction");
            if (s_xml_skip_past (x, "?>", "a processing instruction") != 0)
                return -1;
        }
        else
        if (s_xml_at (x, "</")) {
            x->pos += 2;
            if (s_xml_end_tag (x) != 0)
                return -1;
        }
        else {
            x->pos++;
            if (s_xml_start_tag (x) != 0)
                return -1;
        }
    }
    if (!x->root_seen)
        return s_xml_fail (x, "no root element: expected <testsuites> or <testsuite>");
    if (x->depth > 0) {
        const s_xml_open_t *open = &x->stack [x->depth - 1];
        return s_xml_fail (x, "<%.*s> is not closed", (int) (open->length > 64 ? 64 : open->length),
                           (const char *) x->data + open->name);
    }
    return 0;
}

int
al_qa_junit_count (const char *name, const char *data, size_t size, al_qa_junit_t *counts,
                   char *error, size_t error_size)
{
    assert (name && (data || size == 0) && counts && error && error_size > 0);
    memset (counts, 0, sizeof *counts);
    if (size > AL_QA_JUNIT_MAX_SIZE) {
        snprintf (error, error_size, "%s: larger than %u bytes", name, AL_QA_JUNIT_MAX_SIZE);
        return -1;
    }
    s_xml_t *x = calloc (1, sizeof *x);
    assert (x);
    x->name = name;
    x->data = (const unsigned char *) (data ? data : "");
    x->size = size;
    x->error = error;
    x->error_size = error_size;
    int rc = s_xml_document (x);
    if (rc == 0) {
        assert (x->counts.passed + x->counts.failed + x->counts.skipped == x->counts.tests);
        *counts = x->counts;
    }
    free (x);
    return rc;
}

int
al_qa_junit_count_file (const char *path, al_qa_junit_t *counts, char *error, size_t error_size)
{
    assert (path && counts && error && error_size > 0);
    memset (counts, 0, sizeof *counts);
    char *data = NULL;
    size_t size = 0;
    if (al_qa_read_regular (path, AL_QA_JUNIT_MAX_SIZE, &data, &size, NULL, error, error_size) != 0)
        return -1;
    int rc = al_qa_junit_count (path, data, size, counts, error, error_size);
    free (data);
    return rc;
}

