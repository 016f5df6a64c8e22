/*  al_calendar.c: the one window decision (see al_calendar.h for the rules).

    Built only on al_policy's calendar queries (al_policy_freeze_check,
    al_policy_window_open, al_policy_requires_window); it adds the combination: which
    obstacles break-glass lifts, and which it does not.
*/
#include "policies/al_calendar.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static void
s_utc (uint64_t ms, char *text, size_t size)
{
    time_t seconds = (time_t) (ms / 1000);
    struct tm utc;
    if (!gmtime_r (&seconds, &utc) || strftime (text, size, "%Y-%m-%d %H:%M:%S UTC", &utc) == 0)
        snprintf (text, size, "%llu ms", (unsigned long long) ms);
}

bool
al_calendar_decide (const al_policy_t *policy, const al_calendar_query_t *query,
                    al_calendar_decision_t *decision)
{
    assert (policy);
    assert (query);
    assert (decision);
    memset (decision, 0, sizeof *decision);
    const char *type_name = al_deployment_type_name (query->deployment_type);
    if (!type_name)
        type_name = "these";
    time_t now_s = (time_t) (query->now_ms / 1000);

    decision->freeze = al_policy_freeze_check (policy, query->environment, now_s,
                                               decision->freeze_text, sizeof decision->freeze_text);
    decision->window_required = al_policy_requires_window (policy, query->deployment_type);
    if (decision->window_required) {
        char why [200] = "";
        decision->window_closed = !al_policy_window_open (policy, query->environment, now_s, why, sizeof why);
        snprintf (decision->window_text, sizeof decision->window_text, "%s", why);
    }
    else
        snprintf (decision->window_text, sizeof decision->window_text,
                  "%s deployments need no deploy window (deployment_types.yaml)", type_name);

    if (query->window_end_ms) {
        char start [40], end [40], now [40];
        s_utc (query->window_start_ms, start, sizeof start);
        s_utc (query->window_end_ms, end, sizeof end);
        s_utc (query->now_ms, now, sizeof now);
        decision->outside_scheduled = query->now_ms < query->window_start_ms
                                   || query->now_ms >= query->window_end_ms;
        snprintf (decision->scheduled_text, sizeof decision->scheduled_text, "%s the request's scheduled window "
                  "%s to %s (now %s)", decision->outside_scheduled? "outside": "inside", start, end, now);
    }
    else
        snprintf (decision->scheduled_text, sizeof decision->scheduled_text, "no scheduled window");

    bool frozen = decision->freeze == AL_POLICY_FREEZE_ACTIVE;
    decision->break_glass_needed = frozen || decision->window_closed;
    //  The obstacles break-glass may lift, in one phrase.
    char obstacle [600] = "";
    if (frozen && decision->window_closed)
        snprintf (obstacle, sizeof obstacle, "%s; deploy window closed: %s", decision->freeze_text,
                  decision->window_text);
    else if (frozen)
        snprintf (obstacle, sizeof obstacle, "%s", decision->freeze_text);
    else if (decision->window_closed)
        snprintf (obstacle, sizeof obstacle, "deploy window closed: %s", decision->window_text);

    if (decision->outside_scheduled) {
        //  Never lifted, whatever was signed.
        decision->allowed = false;
        snprintf (decision->explanation, sizeof decision->explanation, "%s (break-glass does not override the "
                  "request's own window: file a new request)", decision->scheduled_text);
    }
    else if (decision->break_glass_needed && !query->break_glass) {
        decision->allowed = false;
        snprintf (decision->explanation, sizeof decision->explanation, "%s", obstacle);
    }
    else if (decision->break_glass_needed) {
        decision->allowed = true;
        decision->break_glass_used = true;
        snprintf (decision->explanation, sizeof decision->explanation, "break-glass overrides: %s", obstacle);
    }
    else {
        decision->allowed = true;
        snprintf (decision->explanation, sizeof decision->explanation, "%s; %s%s%s",
                  decision->window_required? decision->window_text: "no deploy window required",
                  decision->freeze == AL_POLICY_FREEZE_FLAGGED? "flagged: ": "", decision->freeze_text,
                  query->window_end_ms? "; inside the request's scheduled window": "");
    }
    return decision->allowed;
}
