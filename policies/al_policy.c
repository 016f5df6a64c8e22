/*  al_policy.c: the policy engine's queries; the loading lives in al_policy_load.c and the
    parsers of each file beside it (see al_policy_int.h for the map).

    Loading parses each YAML file with libyaml's document API and keeps the documents:
    the policy's strings point into them, so a loaded policy owns its documents and no
    string is copied. Validation never stops at the first error: every
    check reports "path:line:column: what is wrong" into an error list and carries on,
    so `airlock policy check` lists all of them. A policy is returned only when that
    list is empty. After al_policy_load returns, nothing in the policy changes: queries
    take a const pointer and are safe from any number of threads.

    Time: the calendar's days and hours are local time in an IANA zone. Local time is
    computed with the C library (setenv TZ + tzset + localtime_r) under one process-wide
    mutex that also restores the previous TZ, because glibc keeps one zone per process.
    Code elsewhere in airlock uses UTC only (gmtime_r, time()); any code that called
    localtime, mktime or getenv ("TZ") from another thread at the same time would race
    with this, which is why airlock does not.

    The digest is SHA-256 of a canonical JSON form of the seven documents (an object
    keyed by file name, keys sorted, compact; plain scalars typed as YAML core schema:
    integers, reals, true/false, null; everything else a string), so comments, layout,
    key order and the quoting of strings never change it.
*/
#include "policies/al_policy_int.h"

//  ---------------------------------------------------------------------------------
//  Queries

const uint8_t *
al_policy_digest (const al_policy_t *self)
{
    assert (self);
    return self->digest;
}

const char *
al_policy_digest_hex (const al_policy_t *self)
{
    assert (self);
    return self->digest_hex;
}

const char *
al_policy_canonical_json (const al_policy_t *self)
{
    assert (self);
    return self->canonical;
}

const char *
al_policy_dir (const al_policy_t *self)
{
    assert (self);
    return self->dir;
}

size_t
al_policy_role_count (const al_policy_t *self)
{
    assert (self);
    return self->role_count;
}

const char *
al_policy_role_at (const al_policy_t *self, size_t index)
{
    assert (self);
    return index < self->role_count ? self->roles [index].name : NULL;
}

bool
al_policy_role_exists (const al_policy_t *self, const char *role)
{
    assert (self);
    return policy_role_find (self, role) != NULL;
}

const char *
al_policy_qa_authority (const al_policy_t *self)
{
    assert (self);
    return self->qa_authority;
}

const char *
al_policy_role_kind (const al_policy_t *self, const char *role)
{
    assert (self);
    const s_role_t *found = policy_role_find (self, role);
    return found ? found->kind : NULL;
}

static int
s_env_index (Airlock__Environment env)
{
    return (int) env >= 0 && (int) env < S_ENV_COUNT ? (int) env : -1;
}

bool
al_policy_may_send (const al_policy_t *self, const char *role, al_msg_type_t type,
                    Airlock__Environment env, char *rule, size_t rule_size)
{
    assert (self);
    char scratch [8];
    if (!rule) {
        rule = scratch;
        rule_size = sizeof scratch;
    }
    const char *type_name = al_msg_type_name (type);
    int env_index = s_env_index (env);
    const s_role_t *found = policy_role_find (self, role);
    if (!found) {
        snprintf (rule, rule_size, "unknown role '%s': default deny", role ? role : "(none)");
        return false;
    }
    if (!type_name || (int) type <= 0 || (int) type >= S_MAX_TYPE_ID) {
        snprintf (rule, rule_size, "unknown message type: default deny");
        return false;
    }
    if (env_index < 0) {
        snprintf (rule, rule_size, "unknown environment: default deny");
        return false;
    }
    const char *env_name = s_env_names [env_index];
    if (policy_broker_only (type)) {
        snprintf (rule, rule_size, "%s is sent only by the broker: no role may send it", type_name);
        return false;
    }
    if (env == AIRLOCK__ENVIRONMENT__ENV_PRODUCTION && policy_is_type (type, "DeployRequest")) {
        //  Callers prefix who may not send what where (the broker: "qa may not send
        //  DeployRequest in production: "): the rule says only why.
        snprintf (rule, rule_size, "only the broker's approval gate deploys to production");
        return false;
    }
    const s_grant_t *grant = &found->grant [type][env_index];
    if (grant->line) {
        snprintf (rule, rule_size, "roles.yaml:%u:%u: %s may send %s in %s", grant->line,
                  grant->column, found->name, type_name, env_name);
        return true;
    }
    grant = &self->common [type][env_index];
    if (grant->line) {
        snprintf (rule, rule_size, "roles.yaml:%u:%u: every role (common) may send %s in %s",
                  grant->line, grant->column, type_name, env_name);
        return true;
    }
    snprintf (rule, rule_size, "no rule grants %s %s in %s: default deny (roles.yaml)",
              found->name, type_name, env_name);
    return false;
}

const char *
al_policy_capability (const al_policy_t *self, const char *role, Airlock__Environment env,
                      bool *allowed_p)
{
    assert (self);
    const s_role_t *found = policy_role_find (self, role);
    int env_index = s_env_index (env);
    if (!found || env_index <= 0 || !found->capability [env_index]) {
        if (allowed_p)
            *allowed_p = false;
        return NULL;
    }
    if (allowed_p)
        *allowed_p = found->capability_allowed [env_index];
    return found->capability [env_index];
}

bool
al_policy_identity_for_key (const al_policy_t *self, const char *z85_key,
                            const char **identity_p, const char **role_p)
{
    assert (self);
    for (size_t i = 0; z85_key && i < self->identity_count; i++)
        if (strcmp (self->identities [i].key, z85_key) == 0) {
            if (identity_p)
                *identity_p = self->identities [i].identity;
            if (role_p)
                *role_p = self->identities [i].role;
            return true;
        }
    return false;
}

bool
al_policy_identity_by_name (const al_policy_t *self, const char *identity,
                            const char **key_p, const char **role_p, const char **person_p)
{
    assert (self);
    for (size_t i = 0; identity && i < self->identity_count; i++)
        if (strcmp (self->identities [i].identity, identity) == 0) {
            if (key_p)
                *key_p = self->identities [i].key;
            if (role_p)
                *role_p = self->identities [i].role;
            if (person_p)
                *person_p = self->identities [i].person;
            return true;
        }
    return false;
}

bool
al_policy_approver_for_key (const al_policy_t *self, const uint8_t public_key [32],
                            al_policy_approver_t *approver)
{
    assert (self);
    assert (public_key);
    for (size_t i = 0; i < self->key_count; i++)
        if (sodium_memcmp (self->keys [i].bytes, public_key, 32) == 0) {
            const s_approver_t *owner = &self->approvers [self->keys [i].approver];
            if (approver)
                *approver = (al_policy_approver_t) {
                    .name = owner->name, .key_id = self->keys [i].id,
                    .roles = owner->roles, .role_count = owner->role_count,
                    .revoked = self->keys [i].revoked
                };
            return true;
        }
    return false;
}

size_t
al_policy_approver_count (const al_policy_t *self)
{
    assert (self);
    return self->approver_count;
}

static const s_type_t *
s_type (const al_policy_t *self, Airlock__DeploymentType type)
{
    return (int) type > 0 && (int) type < S_TYPE_COUNT ? &self->types [type] : NULL;
}

al_policy_quorum_t
al_policy_quorum (const al_policy_t *self, Airlock__DeploymentType type)
{
    assert (self);
    const s_type_t *entry = s_type (self, type);
    return entry ? (al_policy_quorum_t) { entry->quorum.entries, entry->quorum.count }
                 : (al_policy_quorum_t) { NULL, 0 };
}

al_policy_quorum_t
al_policy_break_glass (const al_policy_t *self)
{
    assert (self);
    return (al_policy_quorum_t) { self->break_glass.entries, self->break_glass.count };
}

al_policy_quorum_t
al_policy_skip_staging_quorum (const al_policy_t *self, Airlock__DeploymentType type)
{
    assert (self);
    const s_type_t *entry = s_type (self, type);
    return entry ? (al_policy_quorum_t) { entry->skip_staging.entries, entry->skip_staging.count }
                 : (al_policy_quorum_t) { NULL, 0 };
}

bool
al_policy_requires_window (const al_policy_t *self, Airlock__DeploymentType type)
{
    assert (self);
    const s_type_t *entry = s_type (self, type);
    return entry && entry->requires_window;
}

bool
al_policy_requires_staging (const al_policy_t *self, Airlock__DeploymentType type)
{
    assert (self);
    const s_type_t *entry = s_type (self, type);
    //  An unknown type gets the safe answer.
    return !entry || entry->requires_staging;
}

int64_t
al_policy_approval_expiry_s (const al_policy_t *self)
{
    assert (self);
    return self->approval_expiry_s;
}

bool
al_policy_self_approval_forbidden (const al_policy_t *self)
{
    assert (self);
    return self->self_approval_forbidden;
}

bool
al_policy_strategy_allowed (const al_policy_t *self, Airlock__Environment env, Airlock__Strategy strategy)
{
    assert (self);
    int env_index = s_env_index (env);
    if (env_index <= 0 || (int) strategy <= 0 || (int) strategy > 3)
        return false;
    return (self->strategies [env_index] & (1u << strategy)) != 0;
}

unsigned
al_policy_max_instances (const al_policy_t *self, Airlock__Environment env)
{
    assert (self);
    int env_index = s_env_index (env);
    return env_index > 0 ? self->max_instances [env_index] : 0;
}

double
al_policy_monthly_budget_usd (const al_policy_t *self, Airlock__Environment env)
{
    assert (self);
    int env_index = s_env_index (env);
    return env_index > 0 ? self->budget [env_index] : 0;
}

double
al_policy_budget_alert_percent (const al_policy_t *self, Airlock__Environment env)
{
    assert (self);
    int env_index = s_env_index (env);
    return env_index > 0 ? self->budget_alert_percent [env_index] : AL_POLICY_DEFAULT_BUDGET_ALERT_PERCENT;
}

const char *
al_policy_timezone (const al_policy_t *self)
{
    assert (self);
    return self->timezone;
}

//  Local time of now in zone. glibc keeps one zone per process, so TZ is switched and
//  restored under a mutex (see the file header).
static pthread_mutex_t s_tz_mutex = PTHREAD_MUTEX_INITIALIZER;

static bool
s_local_time (const char *zone, time_t now, struct tm *local)
{
    pthread_mutex_lock (&s_tz_mutex);
    const char *previous = getenv ("TZ");
    char *saved = previous ? strdup (previous) : NULL;
    //  The leading ':' makes glibc read the zone file, never parse the name as a POSIX
    //  TZ rule, so the zone used is the one policy_valid_timezone checked.
    char value [80];
    snprintf (value, sizeof value, ":%s", zone);
    bool ok = setenv ("TZ", value, 1) == 0;
    tzset ();
    ok = ok && localtime_r (&now, local) != NULL;
    if (saved) {
        setenv ("TZ", saved, 1);
        free (saved);
    }
    else
        unsetenv ("TZ");
    tzset ();
    pthread_mutex_unlock (&s_tz_mutex);
    return ok;
}

static bool
s_calendar_applies (const al_policy_t *self, Airlock__Environment env)
{
    int env_index = s_env_index (env);
    return env_index >= 0 && (self->calendar_envs & (1u << env_index));
}

static void
s_describe_local (const struct tm *local, const char *zone, char *text, size_t size)
{
    snprintf (text, size, "%s %04d-%02d-%02d %02d:%02d %s", s_day_names [local->tm_wday],
              local->tm_year + 1900, local->tm_mon + 1, local->tm_mday, local->tm_hour,
              local->tm_min, zone);
}

bool
al_policy_window_open (const al_policy_t *self, Airlock__Environment env, time_t now,
                       char *explanation, size_t explanation_size)
{
    assert (self);
    char scratch [8];
    if (!explanation) {
        explanation = scratch;
        explanation_size = sizeof scratch;
    }
    if (!s_calendar_applies (self, env)) {
        snprintf (explanation, explanation_size, "no deploy window applies to %s",
                  al_environment_name (env) ? al_environment_name (env) : "this environment");
        return true;
    }
    struct tm local;
    if (!s_local_time (self->timezone, now, &local)) {
        snprintf (explanation, explanation_size, "cannot compute local time in %s", self->timezone);
        return false;
    }
    char when [96];
    s_describe_local (&local, self->timezone, when, sizeof when);
    int minute = local.tm_hour * 60 + local.tm_min;
    for (size_t i = 0; i < self->window_count; i++) {
        const s_window_t *window = &self->windows [i];
        if ((window->days & (1u << local.tm_wday)) && minute >= window->start_min
        &&  minute < window->end_min) {
            snprintf (explanation, explanation_size,
                      "constraints.yaml:%u: window %02d:%02d-%02d:%02d is open (%s)", window->line,
                      window->start_min / 60, window->start_min % 60, window->end_min / 60,
                      window->end_min % 60, when);
            return true;
        }
    }
    snprintf (explanation, explanation_size, "outside every deploy window (%s)", when);
    return false;
}

static bool
s_is_holiday (const al_policy_t *self, int year, int month, int day, unsigned *line_p)
{
    for (size_t i = 0; i < self->holiday_count; i++)
        if (self->holidays [i].year == year && self->holidays [i].month == month
        &&  self->holidays [i].day == day) {
            if (line_p)
                *line_p = self->holidays [i].line;
            return true;
        }
    return false;
}

al_policy_freeze_t
al_policy_freeze_check (const al_policy_t *self, Airlock__Environment env, time_t now,
                        char *explanation, size_t explanation_size)
{
    assert (self);
    char scratch [8];
    if (!explanation) {
        explanation = scratch;
        explanation_size = sizeof scratch;
    }
    if (!s_calendar_applies (self, env)) {
        snprintf (explanation, explanation_size, "no freeze applies to %s",
                  al_environment_name (env) ? al_environment_name (env) : "this environment");
        return AL_POLICY_FREEZE_NONE;
    }
    struct tm local;
    if (!s_local_time (self->timezone, now, &local)) {
        //  Fail closed: no local time, no deploy.
        snprintf (explanation, explanation_size, "cannot compute local time in %s", self->timezone);
        return AL_POLICY_FREEZE_ACTIVE;
    }
    char when [96];
    s_describe_local (&local, self->timezone, when, sizeof when);
    int year = local.tm_year + 1900, month = local.tm_mon + 1, day = local.tm_mday;
    unsigned line;
    if (self->freeze_days & (1u << local.tm_wday)) {
        snprintf (explanation, explanation_size, "constraints.yaml:%u: %s freeze (%s)",
                  self->freeze_days_line, s_day_names [local.tm_wday], when);
        return AL_POLICY_FREEZE_ACTIVE;
    }
    if (s_is_holiday (self, year, month, day, &line)) {
        snprintf (explanation, explanation_size, "constraints.yaml:%u: holiday freeze (%s)", line, when);
        return AL_POLICY_FREEZE_ACTIVE;
    }
    if (self->month_end != S_MONTH_END_OFF) {
        //  The last business day: going back from the month's last day over weekends
        //  and holidays.
        int last = policy_days_in_month (year, month);
        while (last > 1 && (policy_weekday (year, month, last) == 0 || policy_weekday (year, month, last) == 6
        ||                  s_is_holiday (self, year, month, last, NULL)))
            last--;
        if (day == last) {
            bool freeze = self->month_end == S_MONTH_END_FREEZE;
            snprintf (explanation, explanation_size, "month end: last business day of the month, %s (%s)",
                      freeze ? "frozen" : "flagged", when);
            return freeze ? AL_POLICY_FREEZE_ACTIVE : AL_POLICY_FREEZE_FLAGGED;
        }
    }
    snprintf (explanation, explanation_size, "no freeze (%s)", when);
    return AL_POLICY_FREEZE_NONE;
}

size_t
al_policy_critical_path (const al_policy_t *self, const Airlock__Step **steps_p)
{
    assert (self);
    if (steps_p)
        *steps_p = self->steps;
    return self->step_count;
}

int64_t
al_policy_qa_report_max_age_s (const al_policy_t *self)
{
    assert (self);
    return self->qa_max_age_s;
}

int64_t
al_policy_signal_max_age_s (const al_policy_t *self)
{
    assert (self);
    return self->signal_max_age_s;
}

const al_policy_scan_limits_t *
al_policy_scan_limits (const al_policy_t *self)
{
    assert (self);
    return &self->scan_limits;
}

const al_policy_thresholds_t *
al_policy_thresholds (const al_policy_t *self)
{
    assert (self);
    return &self->thresholds;
}

const al_policy_soak_t *
al_policy_soak (const al_policy_t *self)
{
    assert (self);
    return &self->soak;
}

size_t
al_policy_done_count (const al_policy_t *self)
{
    assert (self);
    return self->done_count;
}

const char *
al_policy_done_id (const al_policy_t *self, size_t index)
{
    assert (self);
    return index < self->done_count ? self->done_ids [index] : NULL;
}

const char *
al_policy_done_text (const al_policy_t *self, size_t index)
{
    assert (self);
    return index < self->done_count ? self->done_texts [index] : NULL;
}
