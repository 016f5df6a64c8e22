/*  cli_test.h: what the tests of the airlock command share: running the built binary
    ($AIRLOCK_BINARY_DIR/airlock) with its output captured. Test-only code; fails the
    cmocka test on a child that cannot start or runs longer than 120 s.
*/
#ifndef CLI_TEST_H_INCLUDED
#define CLI_TEST_H_INCLUDED

#include "base/al_child.h"

//  Run `airlock WORDS...` (NULL-ended), with `--config CONFIG` appended unless config is
//  NULL, and wait for it to end; stdout in *out, stderr in *err (owned by the
//  child, which the caller destroys).
al_child_t *cli_test_run (const char *const *words, const char *config, const char **out, const char **err);

#endif
