/*  fuzz_scan.c: libFuzzer target for the qa agent's scanner report reader (al_qa_scan_read).

    The first byte picks the format (even: SARIF, odd: bandit JSON), the rest is the
    report. A refusal must leave an error starting "fuzz:" and a zeroed result; an
    acceptance must keep at most AL_QA_SCAN_TOP findings, no more than it counted, the
    most severe first, every kept string free of control bytes (escaped), and be
    stable: the same input read again gives the same result. Any disagreement aborts,
    which libFuzzer reports as a crash; ASan reports leaks and overreads.
    Seeds: tests/qa/corpus/fuzz_scan/.
*/
#include "agents/al_qa_scan.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
s_die (const char *what, const char *detail)
{
    fprintf (stderr, "fuzz_scan: %s: %s\n", what, detail);
    abort ();
}

static void
s_check_text (const char *text)
{
    for (const unsigned char *c = (const unsigned char *) text; *c; c++)
        if (*c < 0x20 || *c == 0x7f)
            s_die ("a control byte kept", text);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    al_qa_scan_format_t format = data [0] % 2 ? AL_QA_SCAN_BANDIT_JSON : AL_QA_SCAN_SARIF;
    static al_qa_scan_result_t result, again, zero;
    char error [512] = "";
    int rc = al_qa_scan_read ("fuzz", (const char *) data + 1, size - 1, format, &result, error, sizeof error);
    if (rc != 0) {
        if (strncmp (error, "fuzz:", 5) != 0)
            s_die ("error without the input's name", error);
        if (memcmp (&result, &zero, sizeof result) != 0)
            s_die ("a result left on a refusal", error);
        return 0;
    }
    unsigned total = 0;
    for (int i = 0; i < AL_QA_SCAN_SEVERITIES; i++)
        total += result.counts [i];
    if (result.top_count > AL_QA_SCAN_TOP || result.top_count > total)
        s_die ("more findings kept than counted", "");
    s_check_text (result.tool);
    for (size_t i = 0; i < result.top_count; i++) {
        if (i && result.top [i].severity < result.top [i - 1].severity)
            s_die ("kept findings out of order", result.top [i].rule);
        s_check_text (result.top [i].rule);
        s_check_text (result.top [i].file);
        s_check_text (result.top [i].message);
    }
    if (al_qa_scan_read ("fuzz", (const char *) data + 1, size - 1, format, &again, error, sizeof error) != 0
    ||  memcmp (&result, &again, sizeof result) != 0)
        s_die ("not stable", error);
    return 0;
}
