/*  fuzz_junit.c: libFuzzer target for the qa agent's JUnit counter (al_qa_junit_count).

    Arbitrary bytes are counted. A refusal must leave an error starting "fuzz:" and
    zeroed counts; an acceptance must add up (passed + failed + skipped == tests) and
    be stable: the same input counted again gives the same counts. Any disagreement
    aborts, which libFuzzer reports as a crash; ASan reports leaks and overreads.
    Seeds: tests/qa/corpus/fuzz_junit/.
*/
#include "agents/al_qa.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
s_die (const char *what, const char *detail)
{
    fprintf (stderr, "fuzz_junit: %s: %s\n", what, detail);
    abort ();
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    al_qa_junit_t counts, again;
    char error [512] = "";
    int rc = al_qa_junit_count ("fuzz", (const char *) data, size, &counts, error, sizeof error);
    if (rc != 0) {
        if (strncmp (error, "fuzz:", 5) != 0)
            s_die ("error without the input's name", error);
        if (counts.tests || counts.passed || counts.failed || counts.skipped)
            s_die ("counts left on a refusal", error);
        return 0;
    }
    if (counts.passed + counts.failed + counts.skipped != counts.tests)
        s_die ("counts do not add up", "");
    if (al_qa_junit_count ("fuzz", (const char *) data, size, &again, error, sizeof error) != 0
    ||  memcmp (&counts, &again, sizeof counts) != 0)
        s_die ("not stable", error);
    return 0;
}
