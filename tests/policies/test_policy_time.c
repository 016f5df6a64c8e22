/*  test_policy_time.c: deploy windows and freezes at their boundaries, in time zones,
    across daylight-saving changes. The clock is injected: every instant is built in UTC
    with timegm and handed to the engine.

    Dates used (2026): Tue 24 Nov, Fri 27 Nov, Sat 28 Nov, Mon 30 Nov (last business day
    of November), Thu 24 Dec and Thu 31 Dec (holidays), Wed 30 Dec (last business day of
    December because the 31st is a holiday). Europe/Berlin switches to CEST on Sun 29 Mar
    at 01:00 UTC and back to CET on Sun 25 Oct at 01:00 UTC.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "policies/al_calendar.h"
#include "policies/al_policy.h"
#include "policy_test_util.h"

#define STG AIRLOCK__ENVIRONMENT__ENV_STAGING
#define PRD AIRLOCK__ENVIRONMENT__ENV_PRODUCTION

static time_t
s_utc (int year, int month, int day, int hour, int minute, int second)
{
    struct tm tm = { .tm_year = year - 1900, .tm_mon = month - 1, .tm_mday = day,
                     .tm_hour = hour, .tm_min = minute, .tm_sec = second };
    return timegm (&tm);
}

//  A copy of the default with constraints.yaml edited: each (from, to) pair replaced.
static al_policy_t *
s_load_edited (const char *from1, const char *to1, const char *from2, const char *to2)
{
    char *dir = pt_copy_default ();
    char *text = pt_read_file (dir, "constraints.yaml");
    const char *from [2] = { from1, from2 };
    const char *to [2] = { to1, to2 };
    for (int i = 0; i < 2 && from [i]; i++) {
        char *at = strstr (text, from [i]);
        assert_non_null (at);
        size_t size = strlen (text) - strlen (from [i]) + strlen (to [i]) + 1;
        char *edited = malloc (size);
        assert_non_null (edited);
        snprintf (edited, size, "%.*s%s%s", (int) (at - text), text, to [i], at + strlen (from [i]));
        free (text);
        text = edited;
    }
    pt_write_file (dir, "constraints.yaml", text);
    free (text);
    al_policy_errors_t *errors = NULL;
    al_policy_t *policy = al_policy_load (dir, &errors);
    for (size_t i = 0; i < al_policy_errors_count (errors); i++)
        fprintf (stderr, "%s\n", al_policy_errors_at (errors, i));
    al_policy_errors_destroy (&errors);
    pt_remove_dir (dir);
    free (dir);
    assert_non_null (policy);
    return policy;
}

static bool
s_open (const al_policy_t *policy, time_t when)
{
    char why [256];
    bool open = al_policy_window_open (policy, PRD, when, why, sizeof why);
    assert_true (strlen (why) > 0);
    return open;
}

static al_policy_freeze_t
s_freeze (const al_policy_t *policy, time_t when, char *why, size_t why_size)
{
    return al_policy_freeze_check (policy, PRD, when, why, why_size);
}

static void
test_window_boundaries_utc (void **state)
{
    (void) state;
    al_policy_t *p = al_policy_load (pt_default_dir (), NULL);
    assert_non_null (p);
    assert_false (s_open (p, s_utc (2026, 11, 24, 9, 59, 59)));
    assert_true (s_open (p, s_utc (2026, 11, 24, 10, 0, 0)));
    assert_true (s_open (p, s_utc (2026, 11, 24, 11, 59, 59)));
    assert_false (s_open (p, s_utc (2026, 11, 24, 12, 0, 0)));
    assert_false (s_open (p, s_utc (2026, 11, 23, 10, 30, 0)));     // Monday
    assert_true (s_open (p, s_utc (2026, 11, 26, 10, 30, 0)));      // Thursday
    assert_false (s_open (p, s_utc (2026, 11, 27, 10, 30, 0)));     // Friday
    char why [256];
    assert_true (al_policy_window_open (p, PRD, s_utc (2026, 11, 25, 11, 0, 0), why, sizeof why));
    assert_non_null (strstr (why, "constraints.yaml:"));
    assert_non_null (strstr (why, "wednesday 2026-11-25 11:00 UTC"));
    //  Outside calendar.applies_to there is no window and no freeze.
    assert_true (al_policy_window_open (p, STG, s_utc (2026, 11, 27, 3, 0, 0), why, sizeof why));
    assert_string_equal (why, "no deploy window applies to staging");
    assert_int_equal (al_policy_freeze_check (p, STG, s_utc (2026, 11, 27, 3, 0, 0), NULL, 0),
                      AL_POLICY_FREEZE_NONE);
    al_policy_destroy (&p);
}

static void
test_friday_freeze_utc (void **state)
{
    (void) state;
    al_policy_t *p = al_policy_load (pt_default_dir (), NULL);
    assert_non_null (p);
    char why [256];
    assert_int_equal (s_freeze (p, s_utc (2026, 11, 26, 23, 59, 59), why, sizeof why), AL_POLICY_FREEZE_NONE);
    assert_int_equal (s_freeze (p, s_utc (2026, 11, 27, 0, 0, 0), why, sizeof why), AL_POLICY_FREEZE_ACTIVE);
    assert_non_null (strstr (why, "friday freeze"));
    assert_int_equal (s_freeze (p, s_utc (2026, 11, 27, 23, 59, 59), why, sizeof why), AL_POLICY_FREEZE_ACTIVE);
    assert_int_equal (s_freeze (p, s_utc (2026, 11, 28, 0, 0, 0), why, sizeof why), AL_POLICY_FREEZE_NONE);
    assert_string_equal (why, "no freeze (saturday 2026-11-28 00:00 UTC)");
    al_policy_destroy (&p);
}

static void
test_holidays_and_month_end (void **state)
{
    (void) state;
    al_policy_t *p = al_policy_load (pt_default_dir (), NULL);
    assert_non_null (p);
    char why [256];
    //  A holiday inside a window: frozen though the window is open.
    assert_true (s_open (p, s_utc (2026, 12, 24, 10, 30, 0)));
    assert_int_equal (s_freeze (p, s_utc (2026, 12, 24, 10, 30, 0), why, sizeof why), AL_POLICY_FREEZE_ACTIVE);
    assert_non_null (strstr (why, "holiday freeze"));
    assert_int_equal (s_freeze (p, s_utc (2026, 12, 23, 23, 59, 59), why, sizeof why), AL_POLICY_FREEZE_NONE);
    //  Month end is flagged, not frozen, by default: Mon 30 Nov, and Wed 30 Dec because
    //  Thu 31 Dec is a holiday.
    assert_int_equal (s_freeze (p, s_utc (2026, 11, 30, 10, 0, 0), why, sizeof why), AL_POLICY_FREEZE_FLAGGED);
    assert_non_null (strstr (why, "month end"));
    assert_int_equal (s_freeze (p, s_utc (2026, 11, 29, 10, 0, 0), why, sizeof why), AL_POLICY_FREEZE_NONE);
    assert_int_equal (s_freeze (p, s_utc (2026, 12, 30, 10, 0, 0), why, sizeof why), AL_POLICY_FREEZE_FLAGGED);
    assert_int_equal (s_freeze (p, s_utc (2026, 12, 29, 10, 0, 0), why, sizeof why), AL_POLICY_FREEZE_NONE);
    al_policy_destroy (&p);

    p = s_load_edited ("month_end: flag", "month_end: freeze", NULL, NULL);
    assert_int_equal (s_freeze (p, s_utc (2026, 11, 30, 10, 0, 0), why, sizeof why), AL_POLICY_FREEZE_ACTIVE);
    al_policy_destroy (&p);
    p = s_load_edited ("month_end: flag", "month_end: off", NULL, NULL);
    assert_int_equal (s_freeze (p, s_utc (2026, 11, 30, 10, 0, 0), why, sizeof why), AL_POLICY_FREEZE_NONE);
    al_policy_destroy (&p);
}

static void
test_time_zone (void **state)
{
    (void) state;
    al_policy_t *p = s_load_edited ("timezone: UTC", "timezone: Europe/Berlin", NULL, NULL);
    assert_string_equal (al_policy_timezone (p), "Europe/Berlin");
    char why [256];
    //  Friday 23:59 in Berlin (CET, UTC+1) is 22:59 UTC: frozen. One minute later it is
    //  Saturday 00:00 in Berlin, though still Friday in UTC: not frozen.
    assert_int_equal (s_freeze (p, s_utc (2026, 11, 27, 22, 59, 0), why, sizeof why), AL_POLICY_FREEZE_ACTIVE);
    assert_non_null (strstr (why, "friday 2026-11-27 23:59 Europe/Berlin"));
    assert_int_equal (s_freeze (p, s_utc (2026, 11, 27, 23, 0, 0), why, sizeof why), AL_POLICY_FREEZE_NONE);
    assert_non_null (strstr (why, "saturday 2026-11-28 00:00 Europe/Berlin"));
    //  Thursday 23:59:59 UTC is already Friday in Berlin.
    assert_int_equal (s_freeze (p, s_utc (2026, 11, 26, 23, 0, 0), why, sizeof why), AL_POLICY_FREEZE_ACTIVE);
    //  The 10:00 window opens at 09:00 UTC in winter.
    assert_false (s_open (p, s_utc (2026, 11, 24, 8, 59, 59)));
    assert_true (s_open (p, s_utc (2026, 11, 24, 9, 0, 0)));
    assert_false (s_open (p, s_utc (2026, 11, 24, 11, 0, 0)));
    al_policy_destroy (&p);
    //  The process's own TZ is left as it was.
    assert_null (getenv ("TZ"));
}

static void
test_dst_changes (void **state)
{
    (void) state;
    al_policy_t *p = s_load_edited ("timezone: UTC", "timezone: Europe/Berlin", NULL, NULL);
    //  Tuesday before the March change (CET): 10:00 local = 09:00 UTC.
    assert_false (s_open (p, s_utc (2026, 3, 24, 8, 59, 59)));
    assert_true (s_open (p, s_utc (2026, 3, 24, 9, 0, 0)));
    assert_false (s_open (p, s_utc (2026, 3, 24, 11, 0, 0)));
    //  Tuesday after it (CEST): 10:00 local = 08:00 UTC.
    assert_false (s_open (p, s_utc (2026, 3, 31, 7, 59, 59)));
    assert_true (s_open (p, s_utc (2026, 3, 31, 8, 0, 0)));
    assert_false (s_open (p, s_utc (2026, 3, 31, 10, 0, 0)));
    //  Back to CET after 25 October.
    assert_true (s_open (p, s_utc (2026, 10, 20, 8, 0, 0)));
    assert_false (s_open (p, s_utc (2026, 10, 27, 8, 0, 0)));
    assert_true (s_open (p, s_utc (2026, 10, 27, 9, 0, 0)));
    al_policy_destroy (&p);

    //  A window on the changeover hour itself, Sunday 02:00-03:00 local.
    p = s_load_edited ("timezone: UTC", "timezone: Europe/Berlin",
                       "    - days: [tuesday, wednesday, thursday]\n      start: \"10:00\"\n      end: \"12:00\"",
                       "    - days: [sunday]\n      start: \"02:00\"\n      end: \"03:00\"");
    //  29 March: 01:59:59 CET is followed by 03:00:00 CEST; the window never opens.
    assert_false (s_open (p, s_utc (2026, 3, 29, 0, 59, 59)));
    assert_false (s_open (p, s_utc (2026, 3, 29, 1, 0, 0)));
    assert_false (s_open (p, s_utc (2026, 3, 29, 1, 30, 0)));
    //  25 October: 02:00-03:00 happens twice (CEST, then CET): open both times.
    assert_false (s_open (p, s_utc (2026, 10, 24, 23, 59, 59)));  // 01:59:59 CEST
    assert_true (s_open (p, s_utc (2026, 10, 25, 0, 0, 0)));      // 02:00 CEST
    assert_true (s_open (p, s_utc (2026, 10, 25, 0, 59, 59)));    // 02:59:59 CEST
    assert_true (s_open (p, s_utc (2026, 10, 25, 1, 0, 0)));      // 02:00 CET
    assert_true (s_open (p, s_utc (2026, 10, 25, 1, 59, 59)));    // 02:59:59 CET
    assert_false (s_open (p, s_utc (2026, 10, 25, 2, 0, 0)));     // 03:00 CET
    al_policy_destroy (&p);
}

static void
test_other_zone_west (void **state)
{
    (void) state;
    al_policy_t *p = s_load_edited ("timezone: UTC", "timezone: America/New_York", NULL, NULL);
    char why [256];
    //  Saturday 02:00 UTC is still Friday 21:00 in New York (EST, UTC-5): frozen.
    assert_int_equal (s_freeze (p, s_utc (2026, 11, 28, 2, 0, 0), why, sizeof why), AL_POLICY_FREEZE_ACTIVE);
    assert_int_equal (s_freeze (p, s_utc (2026, 11, 28, 5, 0, 0), why, sizeof why), AL_POLICY_FREEZE_NONE);
    assert_true (s_open (p, s_utc (2026, 11, 24, 15, 0, 0)));     // 10:00 EST
    assert_false (s_open (p, s_utc (2026, 11, 24, 10, 30, 0)));   // 05:30 EST
    al_policy_destroy (&p);
}

//  The one window decision (al_calendar_decide), shared by the gate and pre-flight:
//  break-glass lifts a freeze and a closed window, never the request's own window.
static al_calendar_decision_t
s_decide (const al_policy_t *policy, Airlock__DeploymentType type, time_t when, bool break_glass,
          uint64_t window_start_ms, uint64_t window_end_ms)
{
    al_calendar_query_t query = {
        .environment = PRD, .deployment_type = type, .now_ms = (uint64_t) when * 1000,
        .window_start_ms = window_start_ms, .window_end_ms = window_end_ms, .break_glass = break_glass
    };
    al_calendar_decision_t decision;
    bool allowed = al_calendar_decide (policy, &query, &decision);
    assert_int_equal (allowed, decision.allowed);
    assert_true (strlen (decision.explanation) > 0);
    return decision;
}

static void
test_one_window_decision (void **state)
{
    (void) state;
    al_policy_t *policy = al_policy_load (pt_default_dir (), NULL);
    assert_non_null (policy);
    Airlock__DeploymentType scheduled = AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_SCHEDULED;
    Airlock__DeploymentType standard = AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD;
    time_t tuesday_open = s_utc (2026, 11, 24, 10, 30, 0);
    time_t tuesday_late = s_utc (2026, 11, 24, 15, 0, 0);
    time_t friday = s_utc (2026, 11, 27, 10, 30, 0);

    //  Inside the window, no freeze: allowed, no break-glass needed.
    al_calendar_decision_t d = s_decide (policy, scheduled, tuesday_open, false, 0, 0);
    assert_true (d.allowed);
    assert_false (d.break_glass_needed);
    assert_false (d.break_glass_used);
    assert_non_null (strstr (d.explanation, "is open"));
    //  A scheduled release outside the policy's windows: refused; break-glass lifts it.
    d = s_decide (policy, scheduled, tuesday_late, false, 0, 0);
    assert_false (d.allowed);
    assert_true (d.break_glass_needed);
    assert_true (d.window_closed);
    assert_non_null (strstr (d.explanation, "deploy window closed"));
    d = s_decide (policy, scheduled, tuesday_late, true, 0, 0);
    assert_true (d.allowed);
    assert_true (d.break_glass_used);
    assert_non_null (strstr (d.explanation, "break-glass overrides"));
    //  A standard release needs no window: the closed one is not an obstacle.
    d = s_decide (policy, standard, tuesday_late, false, 0, 0);
    assert_true (d.allowed);
    assert_false (d.window_required);
    assert_false (d.break_glass_needed);
    //  Friday freeze: refused for every type; break-glass lifts it.
    d = s_decide (policy, standard, friday, false, 0, 0);
    assert_false (d.allowed);
    assert_int_equal (d.freeze, AL_POLICY_FREEZE_ACTIVE);
    assert_non_null (strstr (d.explanation, "friday freeze"));
    d = s_decide (policy, standard, friday, true, 0, 0);
    assert_true (d.allowed);
    assert_true (d.break_glass_used);
    //  The request's own window is never lifted: before it and after it, refused even
    //  with break-glass; inside it, allowed.
    uint64_t open_ms = (uint64_t) tuesday_open * 1000;
    d = s_decide (policy, scheduled, tuesday_open, true, open_ms + 60000, open_ms + 120000);
    assert_false (d.allowed);
    assert_true (d.outside_scheduled);
    assert_false (d.break_glass_used);
    assert_non_null (strstr (d.explanation, "does not override"));
    d = s_decide (policy, scheduled, tuesday_late, true, open_ms - 120000, open_ms);
    assert_false (d.allowed);
    assert_true (d.outside_scheduled);
    d = s_decide (policy, scheduled, tuesday_open, false, open_ms - 60000, open_ms + 60000);
    assert_true (d.allowed);
    assert_false (d.outside_scheduled);
    //  Break-glass never needed, never used: it changes nothing.
    d = s_decide (policy, scheduled, tuesday_open, true, 0, 0);
    assert_true (d.allowed);
    assert_false (d.break_glass_used);
    //  Environments outside calendar.applies_to are always open.
    al_calendar_query_t staging = { .environment = STG, .deployment_type = scheduled,
                                    .now_ms = (uint64_t) friday * 1000 };
    assert_true (al_calendar_decide (policy, &staging, &d));
    al_policy_destroy (&policy);
}

int
main (void)
{
    //  The engine must restore TZ; start from a process without one.
    unsetenv ("TZ");
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_window_boundaries_utc),
        cmocka_unit_test (test_friday_freeze_utc),
        cmocka_unit_test (test_holidays_and_month_end),
        cmocka_unit_test (test_time_zone),
        cmocka_unit_test (test_dst_changes),
        cmocka_unit_test (test_other_zone_west),
        cmocka_unit_test (test_one_window_decision),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
