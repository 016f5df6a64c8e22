/*  rules_fixture.h: the soak-rule thresholds and the healthy sample that the tests of
    deploy/al_rules (test_rules) and of what `airlock watch` shows (test_watch_view)
    both judge.

    The thresholds are the shipped defaults (seed 001/004: > 3 health failures, > 5
    points of error rate over baseline, p99 > 2 × baseline, cpu/memory > 80 %,
    investigate above 1 %), written out so that a test does not depend on the policy
    files; test_rules also loads them from policies/default to prove the YAML drives
    them. A test changes the one field it probes.
*/
#ifndef RULES_FIXTURE_H_INCLUDED
#define RULES_FIXTURE_H_INCLUDED

#include "deploy/al_rules.h"
#include "policies/al_policy.h"
#include <stdbool.h>
#include <stdint.h>

//  The shipped default thresholds.
al_policy_thresholds_t rf_thresholds (void);

//  A healthy sample of SERVICE (borrowed): traffic, 0.2 % errors, p99 100 ms, moderate
//  saturation, all three instances up; its SEQUENCE and whether it is a BASELINE sample.
Airlock__SoakSignal rf_sample (const char *service, uint64_t sequence, bool baseline);

#endif
