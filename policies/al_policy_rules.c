/*  al_policy_rules.c: parsing constraints.yaml (calendar), dependencies.yaml and quality_rules.yaml.

    Part of the policy engine; see policies/al_policy.c for its rules and
    policies/al_policy_int.h for how its files divide the work.
*/
#include "policies/al_policy_int.h"

//  ---------------------------------------------------------------------------------
//  constraints.yaml

bool
policy_valid_timezone (const char *name)
{
    if (!*name || strlen (name) > 64 || name [0] == '/' || strstr (name, ".."))
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')
        ||    strchr ("/_+-", *p)))
            return false;
    const char *tzdir = getenv ("TZDIR");
    char path [512];
    snprintf (path, sizeof path, "%s/%s", tzdir && *tzdir ? tzdir : "/usr/share/zoneinfo", name);
    FILE *file = fopen (path, "rb");
    if (!file)
        return false;
    char magic [4] = { 0 };
    size_t read = fread (magic, 1, 4, file);
    fclose (file);
    return read == 4 && memcmp (magic, "TZif", 4) == 0;
}

//  "HH:MM" (00:00..24:00) to minutes since midnight, or -1.
static int
s_parse_clock (const char *text)
{
    if (strlen (text) != 5 || text [2] != ':')
        return -1;
    for (int i = 0; i < 5; i++)
        if (i != 2 && (text [i] < '0' || text [i] > '9'))
            return -1;
    int hours = (text [0] - '0') * 10 + (text [1] - '0');
    int minutes = (text [3] - '0') * 10 + (text [4] - '0');
    if (hours > 24 || minutes > 59 || (hours == 24 && minutes))
        return -1;
    return hours * 60 + minutes;
}

int
policy_days_in_month (int year, int month)
{
    static const int days [] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month == 2 && leap ? 29 : days [month - 1];
}

//  Day of week (0 = Sunday) of a Gregorian date (Sakamoto's method).
int
policy_weekday (int year, int month, int day)
{
    static const int offsets [] = { 0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4 };
    if (month < 3)
        year -= 1;
    return (year + year / 4 - year / 100 + year / 400 + offsets [month - 1] + day) % 7;
}

static unsigned
s_parse_days (s_loader_t *L, yaml_node_t *list, const char *what)
{
    unsigned days = 0;
    if (!policy_want_list (L, list, what))
        return 0;
    S_FOR_ITEMS (L, list, day_node) {
        const char *day = policy_string (L, day_node, "day");
        if (!day)
            continue;
        int index = policy_lookup (s_day_names, 7, day);
        if (index < 0)
            policy_error (L, day_node, "unknown weekday '%s' (expected monday..sunday)", day);
        else
        if (days & (1u << index))
            policy_error (L, day_node, "%s: '%s' listed twice", what, day);
        else
            days |= 1u << index;
    }
    return days;
}

static void
s_parse_calendar (s_loader_t *L, yaml_node_t *calendar)
{
    al_policy_t *self = L->policy;
    static const char *const keys [] = { "timezone", "applies_to", "windows", "freezes", NULL };
    if (!policy_check_map (L, calendar, "calendar", keys, keys))
        return;
    yaml_node_t *node;
    if ((node = policy_get (L, calendar, "timezone"))) {
        const char *zone = policy_string (L, node, "timezone");
        if (zone && !policy_valid_timezone (zone))
            policy_error (L, node, "timezone: unknown time zone '%s' (not in the tz database)", zone);
        else
            self->timezone = zone;
    }
    if ((node = policy_get (L, calendar, "applies_to")) && policy_want_list (L, node, "applies_to")) {
        S_FOR_ITEMS (L, node, env_node) {
            const char *env_name = policy_string (L, env_node, "environment");
            Airlock__Environment env = env_name ? al_environment_from_name (env_name)
                                                : AIRLOCK__ENVIRONMENT__ENV_UNSPECIFIED;
            if (env_name && env == AIRLOCK__ENVIRONMENT__ENV_UNSPECIFIED)
                policy_error (L, env_node, "unknown environment '%s'", env_name);
            self->calendar_envs |= 1u << env;
        }
    }
    yaml_node_t *windows = policy_get (L, calendar, "windows");
    if (windows && policy_want_list (L, windows, "windows")) {
        self->windows = calloc (policy_list_length (windows) + 1, sizeof *self->windows);
        static const char *const window_keys [] = { "days", "start", "end", NULL };
        S_FOR_ITEMS (L, windows, window) {
            if (!self->windows || !policy_check_map (L, window, "window", window_keys, window_keys))
                continue;
            s_window_t entry = { .line = policy_line (window) };
            yaml_node_t *start = policy_get (L, window, "start");
            yaml_node_t *end = policy_get (L, window, "end");
            if ((node = policy_get (L, window, "days")))
                entry.days = s_parse_days (L, node, "days");
            const char *start_text = start ? policy_string (L, start, "start") : NULL;
            const char *end_text = end ? policy_string (L, end, "end") : NULL;
            if (!start_text || !end_text)
                continue;
            entry.start_min = s_parse_clock (start_text);
            entry.end_min = s_parse_clock (end_text);
            if (entry.start_min < 0)
                policy_error (L, start, "start: '%s' is not a time of day HH:MM (00:00..24:00)", start_text);
            if (entry.end_min < 0)
                policy_error (L, end, "end: '%s' is not a time of day HH:MM (00:00..24:00)", end_text);
            if (entry.start_min < 0 || entry.end_min < 0)
                continue;
            if (entry.start_min >= entry.end_min) {
                policy_error (L, end, "end: %s is not after start %s", end_text, start_text);
                continue;
            }
            if (entry.days)
                self->windows [self->window_count++] = entry;
        }
    }
    yaml_node_t *freezes = policy_get (L, calendar, "freezes");
    static const char *const freeze_keys [] = { "weekdays", "holidays", "month_end", NULL };
    if (!freezes || !policy_check_map (L, freezes, "freezes", freeze_keys, freeze_keys))
        return;
    if ((node = policy_get (L, freezes, "weekdays"))) {
        self->freeze_days = s_parse_days (L, node, "weekdays");
        self->freeze_days_line = policy_line (node);
    }
    if ((node = policy_get (L, freezes, "month_end"))) {
        static const char *const modes [] = { "off", "flag", "freeze", NULL };
        const char *mode = policy_string (L, node, "month_end");
        int index = mode ? policy_lookup (modes, 3, mode) : -1;
        if (mode && index < 0)
            policy_error (L, node, "month_end: expected flag, freeze or off");
        self->month_end = index < 0 ? S_MONTH_END_FLAG : (s_month_end_t) index;
    }
    yaml_node_t *holidays = policy_get (L, freezes, "holidays");
    if (!holidays || !policy_want_list (L, holidays, "holidays"))
        return;
    self->holidays = calloc (policy_list_length (holidays) + 1, sizeof *self->holidays);
    S_FOR_ITEMS (L, holidays, date_node) {
        const char *text = policy_string (L, date_node, "holiday");
        if (!text || !self->holidays)
            continue;
        s_date_t date = { .line = policy_line (date_node) };
        char tail;
        if (strlen (text) != 10 || sscanf (text, "%4d-%2d-%2d%c", &date.year, &date.month, &date.day, &tail) != 3
        ||  text [4] != '-' || text [7] != '-' || date.year < 1970 || date.year > 9999
        ||  date.month < 1 || date.month > 12 || date.day < 1
        ||  date.day > policy_days_in_month (date.year, date.month)) {
            policy_error (L, date_node, "holiday: '%s' is not a date YYYY-MM-DD", text);
            continue;
        }
        bool duplicate = false;
        for (size_t i = 0; i < self->holiday_count; i++)
            if (self->holidays [i].year == date.year && self->holidays [i].month == date.month
            &&  self->holidays [i].day == date.day)
                duplicate = true;
        if (duplicate)
            policy_error (L, date_node, "holiday '%s' listed twice", text);
        else
            self->holidays [self->holiday_count++] = date;
    }
}

void
policy_parse_constraints (s_loader_t *L, yaml_node_t *root)
{
    al_policy_t *self = L->policy;
    static const char *const keys [] = { "environments", "calendar", NULL };
    if (!policy_check_map (L, root, "constraints.yaml", keys, keys))
        return;
    yaml_node_t *node;
    if ((node = policy_get (L, root, "calendar")))
        s_parse_calendar (L, node);
    yaml_node_t *envs = policy_get (L, root, "environments");
    static const char *const env_keys [] = { "development", "staging", "production", NULL };
    if (!envs || !policy_check_map (L, envs, "environments", env_keys, env_keys))
        return;
    static const char *const entry_keys [] = { "strategies", "max_instances", "monthly_budget_usd",
                                                "budget_alert_percent", NULL };
    static const char *const required_keys [] = { "strategies", "max_instances", "monthly_budget_usd", NULL };
    static const char *const strategies [] = { "", "rolling", "canary", "blue-green", NULL };
    for (int env = 1; env < S_ENV_COUNT; env++) {
        self->budget_alert_percent [env] = AL_POLICY_DEFAULT_BUDGET_ALERT_PERCENT;
        yaml_node_t *entry = policy_get (L, envs, s_env_names [env]);
        if (!entry || !policy_check_map (L, entry, s_env_names [env], entry_keys, required_keys))
            continue;
        yaml_node_t *list = policy_get (L, entry, "strategies");
        if (list && policy_want_list (L, list, "strategies")) {
            if (policy_list_length (list) == 0)
                policy_error (L, list, "strategies: %s needs at least one strategy", s_env_names [env]);
            S_FOR_ITEMS (L, list, item) {
                const char *name = policy_string (L, item, "strategy");
                int index = name ? policy_lookup (strategies, 4, name) : -1;
                if (name && index <= 0)
                    policy_error (L, item, "unknown strategy '%s' (expected rolling, canary or blue-green)", name);
                else
                if (name && (self->strategies [env] & (1u << index)))
                    policy_error (L, item, "strategy '%s' listed twice", name);
                else
                if (name)
                    self->strategies [env] |= 1u << index;
            }
        }
        long long instances;
        if ((node = policy_get (L, entry, "max_instances"))
        &&  policy_integer (L, node, "max_instances", 1, 10000, &instances))
            self->max_instances [env] = (unsigned) instances;
        if ((node = policy_get (L, entry, "monthly_budget_usd")))
            policy_number (L, node, "monthly_budget_usd", 0, false, 1e12, &self->budget [env]);
        if ((node = policy_get (L, entry, "budget_alert_percent")))
            policy_number (L, node, "budget_alert_percent", 1, false, 100, &self->budget_alert_percent [env]);
    }
}

//  ---------------------------------------------------------------------------------
//  dependencies.yaml

static void
s_require_true (s_loader_t *L, yaml_node_t *map, const char *key, const char *why)
{
    yaml_node_t *node = policy_get (L, map, key);
    bool value;
    if (node && policy_bool (L, node, key, &value) && !value && why)
        policy_error (L, node, "%s: must be true (%s)", key, why);
}

void
policy_parse_dependencies (s_loader_t *L, yaml_node_t *root)
{
    al_policy_t *self = L->policy;
    static const char *const keys [] = {
        "critical_path", "qa_handoff", "rollback_prerequisites", "observability_prerequisites", NULL
    };
    if (!policy_check_map (L, root, "dependencies.yaml", keys, keys))
        return;
    yaml_node_t *path = policy_get (L, root, "critical_path");
    static const char *const steps [] = {
        "", "preflight", "backup", "migrate", "rollout", "soak", "receipt", NULL
    };
    if (path && policy_want_list (L, path, "critical_path")) {
        int position [7] = { 0 };           // 1-based place of each step; 0 = absent
        yaml_node_t *nodes [7] = { NULL };
        S_FOR_ITEMS (L, path, item) {
            const char *name = policy_string (L, item, "step");
            if (!name)
                continue;
            int step = policy_lookup (steps, 7, name);
            if (step <= 0) {
                policy_error (L, item, "critical_path: unknown step '%s' (expected preflight, backup, "
                         "migrate, rollout, soak, receipt)", name);
                continue;
            }
            if (position [step]) {
                policy_error (L, item, "critical_path: step '%s' listed twice", name);
                continue;
            }
            assert (self->step_count < 6);  // six known steps, each at most once
            self->steps [self->step_count++] = (Airlock__Step) step;
            position [step] = (int) self->step_count;
            nodes [step] = item;
        }
        //  The fixed order: preflight first, backup -> migrate -> rollout -> soak,
        //  receipt last. Report each step placed before one that must precede it.
        for (int step = 1; step < 7; step++) {
            if (!position [step]) {
                policy_error (L, path, "critical_path: missing step '%s'", steps [step]);
                continue;
            }
            for (int before = 1; before < step; before++)
                if (position [before] > position [step]) {
                    policy_error (L, nodes [step], "critical_path: '%s' must come after '%s'",
                             steps [step], steps [before]);
                    break;
                }
        }
    }
    yaml_node_t *node;
    int64_t ms;
    static const char *const qa_keys [] = {
        "requires_approved_qa_report", "requires_human_approval", "report_max_age", NULL
    };
    if ((node = policy_get (L, root, "qa_handoff")) && policy_check_map (L, node, "qa_handoff", qa_keys, qa_keys)) {
        s_require_true (L, node, "requires_approved_qa_report",
                        "seed 000: only an approved QA report is handed to a deploy");
        s_require_true (L, node, "requires_human_approval",
                        "airlock never deploys to production without a signed human approval");
        yaml_node_t *age = policy_get (L, node, "report_max_age");
        if (age && policy_duration (L, age, "report_max_age", 60000, INT64_C (30) * 86400000, &ms))
            self->qa_max_age_s = ms / 1000;
    }
    static const char *const rollback_keys [] = {
        "immutable_artifact_digest", "backward_compatible_migrations", "previous_version_retained",
        "verified_backup", NULL
    };
    if ((node = policy_get (L, root, "rollback_prerequisites"))
    &&  policy_check_map (L, node, "rollback_prerequisites", rollback_keys, rollback_keys)) {
        s_require_true (L, node, "immutable_artifact_digest",
                        "a grant binds an artifact digest; a mutable artifact would void it");
        s_require_true (L, node, "backward_compatible_migrations", NULL);
        s_require_true (L, node, "previous_version_retained", NULL);
        s_require_true (L, node, "verified_backup", NULL);
    }
    static const char *const observability_keys [] = {
        "golden_signals", "signal_max_age", "centralized_logging", NULL
    };
    if ((node = policy_get (L, root, "observability_prerequisites"))
    &&  policy_check_map (L, node, "observability_prerequisites", observability_keys, observability_keys)) {
        static const char *const signals [] = { "latency", "traffic", "errors", "saturation", NULL };
        yaml_node_t *list = policy_get (L, node, "golden_signals");
        unsigned seen = 0;
        if (list && policy_want_list (L, list, "golden_signals")) {
            S_FOR_ITEMS (L, list, item) {
                const char *name = policy_string (L, item, "signal");
                int index = name ? policy_lookup (signals, 4, name) : -1;
                if (name && index < 0)
                    policy_error (L, item, "unknown golden signal '%s' (expected latency, traffic, errors, "
                             "saturation)", name);
                else
                if (name && (seen & (1u << index)))
                    policy_error (L, item, "golden signal '%s' listed twice", name);
                else
                if (name)
                    seen |= 1u << index;
            }
            if (policy_list_length (list) == 0)
                policy_error (L, list, "golden_signals: needs at least one signal");
        }
        yaml_node_t *age = policy_get (L, node, "signal_max_age");
        if (age && policy_duration (L, age, "signal_max_age", 100, 3600000, &ms))
            self->signal_max_age_s = ms / 1000;
        s_require_true (L, node, "centralized_logging", NULL);
    }
}

//  ---------------------------------------------------------------------------------
//  quality_rules.yaml

void
policy_parse_quality (s_loader_t *L, yaml_node_t *root)
{
    al_policy_t *self = L->policy;
    al_policy_thresholds_t *t = &self->thresholds;
    static const char *const keys [] = {
        "definition_of_done", "health_checks", "rollback_triggers", "investigate", "soak", NULL
    };
    static const char *const allowed [] = {
        "definition_of_done", "health_checks", "rollback_triggers", "investigate", "soak", "security_scan", NULL
    };
    if (!policy_check_map (L, root, "quality_rules.yaml", allowed, keys))
        return;
    yaml_node_t *node;
    yaml_node_t *done = policy_get (L, root, "definition_of_done");
    if (done && policy_want_list (L, done, "definition_of_done")) {
        size_t length = policy_list_length (done);
        self->done_ids = calloc (length + 1, sizeof *self->done_ids);
        self->done_texts = calloc (length + 1, sizeof *self->done_texts);
        static const char *const done_keys [] = { "id", "text", NULL };
        S_FOR_ITEMS (L, done, item) {
            if (!self->done_ids || !self->done_texts
            ||  !policy_check_map (L, item, "definition_of_done", done_keys, done_keys))
                continue;
            yaml_node_t *id_node = policy_get (L, item, "id");
            yaml_node_t *text_node = policy_get (L, item, "text");
            const char *id = id_node ? policy_string (L, id_node, "id") : NULL;
            const char *text = text_node ? policy_string (L, text_node, "text") : NULL;
            if (!id || !text)
                continue;
            bool duplicate = false;
            for (size_t i = 0; i < self->done_count; i++)
                if (strcmp (self->done_ids [i], id) == 0)
                    duplicate = true;
            if (duplicate) {
                policy_error (L, id_node, "definition_of_done: id '%s' listed twice", id);
                continue;
            }
            self->done_ids [self->done_count] = id;
            self->done_texts [self->done_count++] = text;
        }
        if (length == 0)
            policy_error (L, done, "definition_of_done: needs at least one point");
    }
    static const char *const health_keys [] = {
        "liveness_path", "readiness_path", "interval", "timeout", NULL
    };
    yaml_node_t *health = policy_get (L, root, "health_checks");
    if (health && policy_check_map (L, health, "health_checks", health_keys, health_keys)) {
        const char *names [2] = { "liveness_path", "readiness_path" };
        const char **targets [2] = { &t->liveness_path, &t->readiness_path };
        for (int i = 0; i < 2; i++) {
            node = policy_get (L, health, names [i]);
            const char *value = node ? policy_string (L, node, names [i]) : NULL;
            if (value && (value [0] != '/' || strpbrk (value, " \t\r\n?#")))
                policy_error (L, node, "%s: '%s' is not an absolute HTTP path", names [i], value);
            else
                *targets [i] = value;
        }
        if ((node = policy_get (L, health, "interval")))
            policy_duration (L, node, "interval", 100, 3600000, &t->health_interval_ms);
        if ((node = policy_get (L, health, "timeout"))
        &&  policy_duration (L, node, "timeout", 10, 3600000, &t->health_timeout_ms)
        &&  t->health_interval_ms && t->health_timeout_ms >= t->health_interval_ms)
            policy_error (L, node, "timeout: must be shorter than interval");
    }
    static const char *const trigger_keys [] = {
        "health_check_failures_more_than", "error_rate_increase_more_than_points",
        "latency_p99_more_than_baseline_factor", "cpu_percent_more_than", "memory_percent_more_than", NULL
    };
    static const char *const trigger_allowed [] = {
        "health_check_failures_more_than", "error_rate_increase_more_than_points",
        "latency_p99_more_than_baseline_factor", "latency_p99_floor_ms", "cpu_percent_more_than",
        "memory_percent_more_than", NULL
    };
    yaml_node_t *triggers = policy_get (L, root, "rollback_triggers");
    if (triggers && policy_check_map (L, triggers, "rollback_triggers", trigger_allowed, trigger_keys)) {
        if ((node = policy_get (L, triggers, "latency_p99_floor_ms")))
            policy_number (L, node, "latency_p99_floor_ms", 0, true, 600000, &t->latency_p99_floor_ms);
        long long failures;
        if ((node = policy_get (L, triggers, "health_check_failures_more_than"))
        &&  policy_integer (L, node, "health_check_failures_more_than", 0, 1000, &failures))
            t->health_check_failures_more_than = (unsigned) failures;
        if ((node = policy_get (L, triggers, "error_rate_increase_more_than_points")))
            policy_number (L, node, "error_rate_increase_more_than_points", 0, true, 100,
                      &t->error_rate_increase_more_than_points);
        if ((node = policy_get (L, triggers, "latency_p99_more_than_baseline_factor")))
            policy_number (L, node, "latency_p99_more_than_baseline_factor", 1, true, 1000,
                      &t->latency_p99_more_than_baseline_factor);
        if ((node = policy_get (L, triggers, "cpu_percent_more_than")))
            policy_number (L, node, "cpu_percent_more_than", 0, true, 100, &t->cpu_percent_more_than);
        if ((node = policy_get (L, triggers, "memory_percent_more_than")))
            policy_number (L, node, "memory_percent_more_than", 0, true, 100, &t->memory_percent_more_than);
    }
    static const char *const investigate_keys [] = { "error_rate_percent_more_than", NULL };
    yaml_node_t *investigate = policy_get (L, root, "investigate");
    if (investigate && policy_check_map (L, investigate, "investigate", investigate_keys, investigate_keys)
    &&  (node = policy_get (L, investigate, "error_rate_percent_more_than")))
        policy_number (L, node, "error_rate_percent_more_than", 0, true, 100,
                  &t->investigate_error_rate_percent_more_than);

    //  security_scan: optional, each limit optional; "unlimited" or a count.
    self->scan_limits = (al_policy_scan_limits_t) { 0, 0, AL_POLICY_SCAN_UNLIMITED, AL_POLICY_SCAN_UNLIMITED };
    static const char *const scan_keys [] = { "max_critical", "max_high", "max_medium", "max_low", NULL };
    int64_t *scan_targets [] = { &self->scan_limits.max_critical, &self->scan_limits.max_high,
                                 &self->scan_limits.max_medium, &self->scan_limits.max_low };
    yaml_node_t *scan = policy_get (L, root, "security_scan");
    if (scan && policy_check_map (L, scan, "security_scan", scan_keys, NULL))
        for (size_t i = 0; scan_keys [i]; i++) {
            long long limit;
            if (!(node = policy_get (L, scan, scan_keys [i])))
                continue;
            if (policy_scalar (node) && strcmp (policy_scalar (node), "unlimited") == 0)
                *scan_targets [i] = AL_POLICY_SCAN_UNLIMITED;
            else
            if (policy_integer (L, node, scan_keys [i], 0, 1000000, &limit))
                *scan_targets [i] = limit;
        }

    static const char *const soak_keys [] = { "duration", "checkpoints", "time_scale", NULL };
    yaml_node_t *soak = policy_get (L, root, "soak");
    if (!soak || !policy_check_map (L, soak, "soak", soak_keys, soak_keys))
        return;
    int64_t duration = 0;
    double scale = 1;
    if ((node = policy_get (L, soak, "duration")))
        policy_duration (L, node, "duration", 1000, INT64_C (7) * 86400000, &duration);
    if ((node = policy_get (L, soak, "time_scale")))
        policy_number (L, node, "time_scale", 0, true, 1, &scale);
    self->soak.time_scale = scale;
    self->soak.duration_ms = (int64_t) llround ((double) duration * scale);
    yaml_node_t *list = policy_get (L, soak, "checkpoints");
    if (!list || !policy_want_list (L, list, "checkpoints"))
        return;
    self->checkpoints = calloc (policy_list_length (list) + 1, sizeof *self->checkpoints);
    if (!self->checkpoints)
        return;
    int64_t previous = 0;
    yaml_node_t *last = NULL;
    S_FOR_ITEMS (L, list, item) {
        int64_t ms;
        if (!policy_duration (L, item, "checkpoint", 1, INT64_C (7) * 86400000, &ms))
            continue;
        last = item;
        if (ms <= previous) {
            policy_error (L, item, "checkpoints: must be increasing");
            continue;
        }
        if (duration && ms > duration) {
            policy_error (L, item, "checkpoints: %s is after the end of the soak", policy_scalar (item));
            continue;
        }
        previous = ms;
        self->checkpoints [self->soak.checkpoint_count++] = (int64_t) llround ((double) ms * scale);
    }
    if (policy_list_length (list) == 0)
        policy_error (L, list, "checkpoints: needs at least one checkpoint");
    else
    if (last && duration && previous != duration)
        policy_error (L, last, "checkpoints: the last checkpoint must equal the soak duration");
    self->soak.checkpoints_ms = self->checkpoints;
}
