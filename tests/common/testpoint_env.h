/*  testpoint_env.h: for the tests of the named test hooks (tests/chaos/test_crashpoint,
    tests/base/test_stallpoint): in a forked child, set a hook's variables as a product
    process would see them before its first pass. Header only, so a base test needs no
    library of tests/common.
*/
#ifndef TESTPOINT_ENV_H_INCLUDED
#define TESTPOINT_ENV_H_INCLUDED

#include <stdio.h>
#include <stdlib.h>

//  Set VARIABLE to spec and VARIABLE_ARM to arm; a NULL one is unset instead.
static inline void
testpoint_env (const char *variable, const char *spec, const char *arm)
{
    char arm_variable [64];
    snprintf (arm_variable, sizeof arm_variable, "%s_ARM", variable);
    if (spec)
        setenv (variable, spec, 1);
    else
        unsetenv (variable);
    if (arm)
        setenv (arm_variable, arm, 1);
    else
        unsetenv (arm_variable);
}

#endif
