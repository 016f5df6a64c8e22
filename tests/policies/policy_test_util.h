/*  policy_test_util.h: helpers shared by the policy tests: a scratch copy of the shipped
    default policy in a temporary directory, with files replaced or edited.

    Single-threaded test code; every function asserts on failure (test setup, not input).
*/
#ifndef POLICY_TEST_UTIL_H_INCLUDED
#define POLICY_TEST_UTIL_H_INCLUDED

#include <stddef.h>

//  "$AIRLOCK_SOURCE_DIR/policies/default" (static buffer).
const char *pt_default_dir (void);
//  A fresh temporary directory holding a copy of the default policy; caller frees the
//  string and calls pt_remove_dir.
char *pt_copy_default (void);
//  Writes text as DIR/NAME.
void pt_write_file (const char *dir, const char *name, const char *text);
//  Reads DIR/NAME (caller frees).
char *pt_read_file (const char *dir, const char *name);
//  Removes DIR and the files in it.
void pt_remove_dir (const char *dir);

#endif
