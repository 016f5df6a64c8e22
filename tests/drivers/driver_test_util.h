/*  driver_test_util.h: helpers shared by the driver tests: temporary directories,
    paths of the demo service and the test scripts, and child bookkeeping.

    The tests make themselves a child subreaper, so services that a step started in
    the background (and that outlive the step) become our children when orphaned; the
    teardown kills and reaps them whatever happened in the test.
*/
#ifndef DRIVER_TEST_UTIL_H_INCLUDED
#define DRIVER_TEST_UTIL_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

//  Become a child subreaper (once per process).
void dt_become_subreaper (void);
//  A fresh directory under /tmp; caller frees. Fails the test on error.
char *dt_temp_dir (const char *prefix);
//  rm -rf path; NULL-safe.
void dt_remove_tree (const char *path);
//  $AIRLOCK_BINARY_DIR/demo-service and $AIRLOCK_SOURCE_DIR/tests/drivers/scripts/NAME.
//  Static buffers (one each).
const char *dt_demo_service (void);
const char *dt_script (const char *name, char *buffer, size_t size);
//  Wait (up to 10 s) until pid no longer runs (gone or a zombie, reaped if ours).
bool dt_pid_gone (pid_t pid);
//  Reap every child that exited, waiting up to timeout_ms for children killed just before.
void dt_reap_all (int timeout_ms);
//  Does file path contain text?
bool dt_file_contains (const char *path, const char *text);
//  Does any file under dir contain text? Names the first one in found (may be NULL).
bool dt_tree_contains (const char *dir, const char *text, char *found, size_t found_size);

#endif
