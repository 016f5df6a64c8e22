/*  test_rollout.c: the rollout strategies, the revert and the reconcile, with real
    demo-service instances under the process driver on free loopback ports.

    Each release is a small script in the test's temporary directory that execs the
    demo service with the release's version and faults (--ready-delay-ms,
    --fail-readiness, --crash-at-start); the driver's command runs "/bin/sh SCRIPT
    VERSION", so the release's artifact is its script. Progress callbacks list the
    driver's instances at every event and record any breach of the plan's bounds
    (running above N + max_surge, ready below N - max_unavailable, an old instance
    stopped before its replacement was ready); the tests assert on those records after
    the call, so a failed check never jumps out of library code. The teardown stops
    every instance whatever happened. Nothing here asserts timing.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <ftw.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "deploy/al_rollout.h"
#include "proto/airlock.pb-c.h"

#define S_MAX       64
#define S_EVENTS    256
#define S_RELEASES  4
#define S_ROLLING   AIRLOCK__STRATEGY__STRATEGY_ROLLING
#define S_CANARY    AIRLOCK__STRATEGY__STRATEGY_CANARY
#define S_BLUE_GREEN AIRLOCK__STRATEGY__STRATEGY_BLUE_GREEN

typedef struct {
    char phase [16];
    char id [AL_DRIVER_ID_SIZE];
    char version [AL_DRIVER_VERSION_SIZE];
    char set [AL_DRIVER_SET_SIZE];
    unsigned percent;
} s_event_t;

typedef struct {
    char script [4096];
    char version [64];
    al_driver_vars_t vars;
} s_release_t;

typedef struct {
    char *dir;
    char evidence [4096];
    const char *command [4];
    al_driver_config_t config;
    al_driver_t *d;
    s_release_t releases [S_RELEASES];
    //  What the callbacks saw.
    s_event_t events [S_EVENTS];
    size_t event_count;
    //  Bounds watched at every progress event (when old_version is set).
    const char *old_version;
    const char *new_version;
    unsigned wanted, max_surge, max_unavailable;
    bool check_order;               // no old instance stopped before a new one was ready for it
    char ready_ids [S_MAX][AL_DRIVER_ID_SIZE];
    size_t ready_count;
    unsigned old_stops;
    unsigned max_running;
    unsigned min_ready;
    unsigned violations;
    char violation [512];
    //  aborted (): after this many "ready" (or "start") events of new_version; 0: never.
    unsigned abort_after_ready;
    unsigned abort_after_start;
    size_t events_at_abort;
    bool abort_said;
    //  step_soak (): calls, and what ran at each.
    unsigned soak_fail_percent;     // breach at this percent; 0: always pass
    unsigned soak_calls;
    unsigned soak_percent [8];
    unsigned soak_old [8];
    unsigned soak_new [8];
} s_fixture_t;

//  --------------------------------------------------------------------------
//  Helpers

static int
s_remove (const char *path, const struct stat *info, int flag, struct FTW *ftw)
{
    (void) info;
    (void) flag;
    (void) ftw;
    remove (path);
    return 0;
}

//  Running instances of version (NULL: any) in set (NULL: any); ids copied when asked.
static unsigned
s_count (s_fixture_t *self, const char *version, const char *set, char ids [][AL_DRIVER_ID_SIZE])
{
    al_driver_instance_t listed [S_MAX];
    size_t count = 0;
    char error [512];
    if (al_driver_list_instances (self->d, listed, S_MAX, &count, error, sizeof (error)) != AL_DRIVER_OK)
        return (unsigned) -1;
    unsigned running = 0;
    for (size_t i = 0; i < count && i < S_MAX; i++) {
        if (!listed [i].running || strcmp (listed [i].service, "demo") != 0)
            continue;
        if ((version && strcmp (listed [i].version, version) != 0) || (set && strcmp (listed [i].set, set) != 0))
            continue;
        if (ids)
            memcpy (ids [running], listed [i].id, AL_DRIVER_ID_SIZE);
        running++;
    }
    return running;
}

//  Running instances of version that answer their readiness probe now.
static unsigned
s_ready_now (s_fixture_t *self, const char *version)
{
    char ids [S_MAX][AL_DRIVER_ID_SIZE];
    unsigned running = s_count (self, version, NULL, ids);
    unsigned ready = 0;
    for (unsigned i = 0; i < running; i++) {
        al_probe_result_t probe;
        char error [512];
        if (al_driver_probe (self->d, ids [i], AL_DRIVER_READINESS, &probe, error, sizeof (error)) == AL_DRIVER_OK
        &&  probe.ok)
            ready++;
    }
    return ready;
}

static size_t
s_events (s_fixture_t *self, const char *phase, const char *version)
{
    size_t count = 0;
    for (size_t i = 0; i < self->event_count; i++)
        if (strcmp (self->events [i].phase, phase) == 0
        &&  (!version || strcmp (self->events [i].version, version) == 0))
            count++;
    return count;
}

static bool
s_was_ready (s_fixture_t *self, const char *id)
{
    for (size_t i = 0; i < self->ready_count; i++)
        if (strcmp (self->ready_ids [i], id) == 0)
            return true;
    return false;
}

static void
s_violation (s_fixture_t *self, const char *what, const al_rollout_progress_t *progress)
{
    if (self->violations++ == 0)
        snprintf (self->violation, sizeof (self->violation), "%s at %s of %s (%s)", what, progress->phase,
                  progress->id, progress->version);
}

//  --------------------------------------------------------------------------
//  Callbacks

static void
s_on_progress (void *arg, const al_rollout_progress_t *progress)
{
    s_fixture_t *self = arg;
    if (self->event_count < S_EVENTS) {
        s_event_t *event = &self->events [self->event_count++];
        snprintf (event->phase, sizeof (event->phase), "%s", progress->phase);
        snprintf (event->id, sizeof (event->id), "%s", progress->id);
        snprintf (event->version, sizeof (event->version), "%s", progress->version);
        snprintf (event->set, sizeof (event->set), "%s", progress->set);
        event->percent = progress->percent;
    }
    if (!self->new_version)
        return;
    bool is_new = strcmp (progress->version, self->new_version) == 0;
    if (is_new && strcmp (progress->phase, "ready") == 0 && self->ready_count < S_MAX)
        snprintf (self->ready_ids [self->ready_count++], AL_DRIVER_ID_SIZE, "%s", progress->id);
    if (!self->old_version)
        return;
    char new_ids [S_MAX][AL_DRIVER_ID_SIZE];
    unsigned old_running = s_count (self, self->old_version, NULL, NULL);
    unsigned new_running = s_count (self, self->new_version, NULL, new_ids);
    unsigned new_ready = 0;
    for (unsigned i = 0; i < new_running; i++)
        new_ready += s_was_ready (self, new_ids [i]);
    unsigned running = old_running + new_running;
    unsigned ready = old_running + new_ready;
    if (running > self->max_running)
        self->max_running = running;
    if (ready < self->min_ready)
        self->min_ready = ready;
    if (running > self->wanted + self->max_surge)
        s_violation (self, "more than N + max_surge running", progress);
    if (ready + self->max_unavailable < self->wanted)
        s_violation (self, "fewer than N - max_unavailable ready", progress);
    //  Each old instance stopped has a replacement that was reported ready and that
    //  really answers its readiness probe now.
    if (self->check_order && strcmp (progress->phase, "stop") == 0
    &&  strcmp (progress->version, self->old_version) == 0
    &&  (++self->old_stops > self->ready_count || self->old_stops > s_ready_now (self, self->new_version)))
        s_violation (self, "old instance stopped before its replacement was ready", progress);
}

static bool
s_on_aborted (void *arg, char *reason, size_t reason_size)
{
    s_fixture_t *self = arg;
    if (!self->abort_said) {
        bool ready_hit = self->abort_after_ready && self->new_version
                      && s_events (self, "ready", self->new_version) >= self->abort_after_ready;
        bool start_hit = self->abort_after_start && self->new_version
                      && s_events (self, "start", self->new_version) >= self->abort_after_start;
        if (!ready_hit && !start_hit)
            return false;
        self->abort_said = true;
        self->events_at_abort = self->event_count;
    }
    snprintf (reason, reason_size, "operator pressed stop");
    return true;
}

static int
s_on_soak (void *arg, unsigned percent, char *reason, size_t reason_size)
{
    s_fixture_t *self = arg;
    if (self->soak_calls < 8) {
        self->soak_percent [self->soak_calls] = percent;
        self->soak_old [self->soak_calls] = s_count (self, self->old_version, NULL, NULL);
        self->soak_new [self->soak_calls] = s_count (self, self->new_version, NULL, NULL);
    }
    self->soak_calls++;
    if (percent == self->soak_fail_percent) {
        snprintf (reason, reason_size, "error rate +7%% over baseline at %u%%", percent);
        return -1;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Fixture

static int
s_setup (void **state)
{
    s_fixture_t *self = calloc (1, sizeof (s_fixture_t));
    assert_non_null (self);
    assert_true (asprintf (&self->dir, "/tmp/al-rollout-XXXXXX") > 0);
    assert_non_null (mkdtemp (self->dir));
    snprintf (self->evidence, sizeof (self->evidence), "%s/evidence", self->dir);
    self->command [0] = "/bin/sh";
    self->command [1] = "{{artifact}}";
    self->command [2] = "{{version}}";
    self->command [3] = NULL;
    self->config.evidence_dir = self->evidence;
    self->config.command = self->command;
    self->config.stop_timeout_ms = 5000;
    self->config.probe_timeout_ms = 1000;
    char error [1024];
    self->d = al_driver_open ("process", &self->config, error, sizeof (error));
    if (!self->d)
        fail_msg ("open process driver: %s", error);
    *state = self;
    return 0;
}

static int
s_teardown (void **state)
{
    s_fixture_t *self = *state;
    if (self->d) {
        al_driver_instance_t listed [S_MAX];
        size_t count = 0;
        char error [512];
        al_driver_list_instances (self->d, listed, S_MAX, &count, error, sizeof (error));
        //  Every group, running or not: nothing a release script left behind survives.
        for (size_t i = 0; i < count && i < S_MAX; i++)
            if (listed [i].pid > 0)
                kill (-listed [i].pid, SIGKILL);
        al_driver_destroy (&self->d);
    }
    while (waitpid (-1, NULL, WNOHANG) > 0)
        ;
    nftw (self->dir, s_remove, 16, FTW_DEPTH | FTW_PHYS);
    free (self->dir);
    free (self);
    return 0;
}

//  Release number index: version, and the body of its script, where "DEMO" stands for
//  the demo service's path and "$1" is the version.
static const al_driver_vars_t *
s_release_script (s_fixture_t *self, int index, const char *version, const char *body)
{
    const char *binary_dir = getenv ("AIRLOCK_BINARY_DIR");
    assert_non_null (binary_dir);
    char demo [4096];
    snprintf (demo, sizeof (demo), "%s/demo-service", binary_dir);
    assert_int_equal (access (demo, X_OK), 0);
    s_release_t *release = &self->releases [index];
    snprintf (release->version, sizeof (release->version), "%s", version);
    snprintf (release->script, sizeof (release->script), "%s/release-%d.sh", self->dir, index);
    FILE *file = fopen (release->script, "w");
    assert_non_null (file);
    fprintf (file, "#!/bin/sh\nDEMO='%s'\n%s\n", demo, body);
    assert_int_equal (fclose (file), 0);
    release->vars = (al_driver_vars_t) {
        .service = "demo", .version = release->version, .artifact = release->script,
        .digest = "sha256:00", .env = "test"
    };
    return &release->vars;
}

//  A release that execs the demo service with flags (its faults).
static const al_driver_vars_t *
s_release (s_fixture_t *self, int index, const char *version, const char *flags)
{
    char body [256];
    snprintf (body, sizeof (body), "exec \"$DEMO\" --version \"$1\" %s", flags);
    return s_release_script (self, index, version, body);
}

static al_rollout_plan_t
s_plan (s_fixture_t *self, int strategy, unsigned instances)
{
    return (al_rollout_plan_t) {
        .strategy = strategy, .instances = instances, .batch_size = 1, .max_unavailable = 0, .max_surge = 1,
        .probe_interval_ms = 50, .ready_timeout_ms = 15000, .stop_grace_ms = 3000,
        .step_soak = s_on_soak, .progress = s_on_progress, .aborted = s_on_aborted, .arg = self
    };
}

//  Forget what the callbacks saw; watch the bounds of plan from old to new (old NULL:
//  record only).
static void
s_watch (s_fixture_t *self, const al_rollout_plan_t *plan, const char *old_version, const char *new_version,
         bool check_order)
{
    self->event_count = 0;
    self->old_version = old_version;
    self->new_version = new_version;
    self->wanted = plan->instances;
    self->max_surge = plan->max_surge;
    self->max_unavailable = plan->max_unavailable;
    self->check_order = check_order;
    self->ready_count = 0;
    self->old_stops = 0;
    self->max_running = 0;
    self->min_ready = (unsigned) -1;
    self->violations = 0;
    self->violation [0] = 0;
    self->soak_calls = 0;
}

static void
s_ensure (s_fixture_t *self, unsigned instances, const al_driver_vars_t *vars)
{
    al_rollout_plan_t plan = s_plan (self, S_ROLLING, instances);
    s_watch (self, &plan, NULL, NULL, false);
    char error [2048];
    al_rollout_status_t rc = al_rollout_ensure (self->d, &plan, vars, error, sizeof (error));
    if (rc != AL_ROLLOUT_OK)
        fail_msg ("ensure %s x%u: %s: %s", vars->version, instances, al_rollout_status_name (rc), error);
}

#define S_ASSERT_STATUS(rc, expected, error) \
    do { if ((rc) != (expected)) fail_msg ("%s instead of %s: %s", al_rollout_status_name (rc), \
                                           al_rollout_status_name (expected), error); } while (0)

#define S_ASSERT_NO_VIOLATION(self) \
    do { if ((self)->violations) fail_msg ("%u violations, first: %s", (self)->violations, \
                                           (self)->violation); } while (0)

//  --------------------------------------------------------------------------
//  Rolling

static void
test_rolling_with_surge_gates_each_replacement (void **state)
{
    s_fixture_t *self = *state;
    const al_driver_vars_t *v1 = s_release (self, 0, "1.0.0", "");
    const al_driver_vars_t *v2 = s_release (self, 1, "2.0.0", "--ready-delay-ms 300");
    s_ensure (self, 4, v1);
    assert_int_equal (s_ready_now (self, "1.0.0"), 4);

    al_rollout_plan_t plan = s_plan (self, S_ROLLING, 4);
    s_watch (self, &plan, "1.0.0", "2.0.0", true);
    char error [2048];
    al_rollout_status_t rc = al_rollout_run (self->d, &plan, v1, v2, error, sizeof (error));
    S_ASSERT_STATUS (rc, AL_ROLLOUT_OK, error);
    S_ASSERT_NO_VIOLATION (self);
    assert_int_equal (self->max_running, 5);           // the surge was used, never exceeded
    assert_int_equal (self->min_ready, 4);
    assert_int_equal (s_events (self, "start", "2.0.0"), 4);
    assert_int_equal (s_events (self, "ready", "2.0.0"), 4);
    assert_int_equal (s_events (self, "stop", "1.0.0"), 4);
    assert_int_equal (s_count (self, "1.0.0", NULL, NULL), 0);
    assert_int_equal (s_count (self, "2.0.0", "default", NULL), 4);
    assert_int_equal (s_ready_now (self, "2.0.0"), 4);
    assert_int_equal (self->events [self->event_count - 1].percent, 100);
}

static void
test_rolling_without_surge_spends_unavailability (void **state)
{
    s_fixture_t *self = *state;
    const al_driver_vars_t *v1 = s_release (self, 0, "1.0.0", "");
    const al_driver_vars_t *v2 = s_release (self, 1, "2.0.0", "--ready-delay-ms 200");
    const al_driver_vars_t *v3 = s_release (self, 2, "3.0.0", "--ready-delay-ms 200");
    s_ensure (self, 4, v1);

    //  Batches of 2 with 2 unavailable: 2 old stop, 2 new start, twice.
    al_rollout_plan_t plan = s_plan (self, S_ROLLING, 4);
    plan.batch_size = 2;
    plan.max_surge = 0;
    plan.max_unavailable = 2;
    s_watch (self, &plan, "1.0.0", "2.0.0", false);
    char error [2048];
    al_rollout_status_t rc = al_rollout_run (self->d, &plan, v1, v2, error, sizeof (error));
    S_ASSERT_STATUS (rc, AL_ROLLOUT_OK, error);
    S_ASSERT_NO_VIOLATION (self);
    assert_int_equal (self->max_running, 4);
    assert_int_equal (self->min_ready, 2);
    assert_int_equal (s_events (self, "start", "2.0.0"), 4);
    assert_int_equal (s_count (self, "1.0.0", NULL, NULL), 0);
    assert_int_equal (s_ready_now (self, "2.0.0"), 4);

    //  Batches of 2 with only 1 unavailable: the budget, not the batch, bounds the stops.
    plan.max_unavailable = 1;
    s_watch (self, &plan, "2.0.0", "3.0.0", false);
    rc = al_rollout_run (self->d, &plan, v2, v3, error, sizeof (error));
    S_ASSERT_STATUS (rc, AL_ROLLOUT_OK, error);
    S_ASSERT_NO_VIOLATION (self);
    assert_int_equal (self->max_running, 4);
    assert_int_equal (self->min_ready, 3);
    assert_int_equal (s_count (self, "2.0.0", NULL, NULL), 0);
    assert_int_equal (s_ready_now (self, "3.0.0"), 4);
}

static void
test_rolling_first_deploy (void **state)
{
    s_fixture_t *self = *state;
    const al_driver_vars_t *v1 = s_release (self, 0, "1.0.0", "");
    al_rollout_plan_t plan = s_plan (self, S_ROLLING, 3);
    plan.batch_size = 2;
    s_watch (self, &plan, NULL, "1.0.0", false);
    char error [2048];
    al_rollout_status_t rc = al_rollout_run (self->d, &plan, NULL, v1, error, sizeof (error));
    S_ASSERT_STATUS (rc, AL_ROLLOUT_OK, error);
    assert_int_equal (s_events (self, "start", "1.0.0"), 3);
    assert_int_equal (s_events (self, "stop", NULL), 0);
    assert_int_equal (s_ready_now (self, "1.0.0"), 3);
}

static void
test_rolling_failed_readiness_stops_then_revert_restores (void **state)
{
    s_fixture_t *self = *state;
    const al_driver_vars_t *v1 = s_release (self, 0, "1.0.0", "");
    const al_driver_vars_t *v2 = s_release (self, 1, "2.0.0", "--fail-readiness");
    s_ensure (self, 3, v1);

    al_rollout_plan_t plan = s_plan (self, S_ROLLING, 3);
    plan.ready_timeout_ms = 1500;
    s_watch (self, &plan, "1.0.0", "2.0.0", true);
    char error [2048];
    al_rollout_status_t rc = al_rollout_run (self->d, &plan, v1, v2, error, sizeof (error));
    S_ASSERT_STATUS (rc, AL_ROLLOUT_FAILED, error);
    assert_non_null (strstr (error, "not ready after 1500 ms"));
    assert_non_null (strstr (error, "503"));
    S_ASSERT_NO_VIOLATION (self);
    //  It stopped at once: one new instance, no old one touched, nothing reverted.
    assert_int_equal (s_events (self, "start", "2.0.0"), 1);
    assert_int_equal (s_events (self, "stop", NULL), 0);
    assert_int_equal (s_count (self, "1.0.0", NULL, NULL), 3);
    assert_int_equal (s_count (self, "2.0.0", NULL, NULL), 1);

    s_watch (self, &plan, NULL, NULL, false);
    rc = al_rollout_revert (self->d, &plan, v1, v2, error, sizeof (error));
    S_ASSERT_STATUS (rc, AL_ROLLOUT_OK, error);
    assert_int_equal (s_events (self, "start", NULL), 0);
    assert_int_equal (s_events (self, "stop", "2.0.0"), 1);
    assert_int_equal (s_ready_now (self, "1.0.0"), 3);
    assert_int_equal (s_count (self, "2.0.0", NULL, NULL), 0);
}

static void
test_rolling_crash_at_start_then_revert_restores (void **state)
{
    s_fixture_t *self = *state;
    const al_driver_vars_t *v1 = s_release (self, 0, "1.0.0", "");
    const al_driver_vars_t *v2 = s_release (self, 1, "2.0.0", "--crash-at-start");
    s_ensure (self, 3, v1);

    //  No surge: an old instance makes room first, within max_unavailable.
    al_rollout_plan_t plan = s_plan (self, S_ROLLING, 3);
    plan.max_surge = 0;
    plan.max_unavailable = 1;
    s_watch (self, &plan, "1.0.0", "2.0.0", false);
    char error [2048];
    al_rollout_status_t rc = al_rollout_run (self->d, &plan, v1, v2, error, sizeof (error));
    S_ASSERT_STATUS (rc, AL_ROLLOUT_FAILED, error);
    assert_non_null (strstr (error, "exit code 3"));
    S_ASSERT_NO_VIOLATION (self);
    assert_int_equal (s_events (self, "stop", "1.0.0"), 1);
    assert_int_equal (s_count (self, "1.0.0", NULL, NULL), 2);
    assert_int_equal (s_count (self, "2.0.0", NULL, NULL), 0);

    s_watch (self, &plan, NULL, NULL, false);
    rc = al_rollout_revert (self->d, &plan, v1, v2, error, sizeof (error));
    S_ASSERT_STATUS (rc, AL_ROLLOUT_OK, error);
    assert_int_equal (s_events (self, "start", "1.0.0"), 1);
    assert_int_equal (s_ready_now (self, "1.0.0"), 3);
    assert_int_equal (s_count (self, "2.0.0", NULL, NULL), 0);
}

static void
test_rolling_instance_exiting_before_ready_fails_fast (void **state)
{
    s_fixture_t *self = *state;
    const al_driver_vars_t *v1 = s_release (self, 0, "1.0.0", "");
    //  Alive (it answers liveness), never ready, then gone with exit code 4.
    const al_driver_vars_t *v2 = s_release_script (self, 1, "2.0.0",
        "\"$DEMO\" --version \"$1\" --ready-delay-ms 600000 &\nsleep 1\nkill -9 $!\nwait\nexit 4");
    s_ensure (self, 2, v1);

    al_rollout_plan_t plan = s_plan (self, S_ROLLING, 2);
    plan.ready_timeout_ms = 120000;
    s_watch (self, &plan, "1.0.0", "2.0.0", true);
    char error [2048];
    al_rollout_status_t rc = al_rollout_run (self->d, &plan, v1, v2, error, sizeof (error));
    S_ASSERT_STATUS (rc, AL_ROLLOUT_FAILED, error);
    assert_non_null (strstr (error, "exited with code 4 before it was ready"));
    S_ASSERT_NO_VIOLATION (self);
    assert_int_equal (s_count (self, "1.0.0", NULL, NULL), 2);
    assert_int_equal (s_count (self, "2.0.0", NULL, NULL), 0);
}

//  --------------------------------------------------------------------------
//  Canary

static void
test_canary_ramps_with_soak_between_steps (void **state)
{
    s_fixture_t *self = *state;
    const al_driver_vars_t *v1 = s_release (self, 0, "1.0.0", "");
    const al_driver_vars_t *v2 = s_release (self, 1, "2.0.0", "--ready-delay-ms 200");
    s_ensure (self, 4, v1);

    static const unsigned steps [] = { 10, 60, 100 };
    al_rollout_plan_t plan = s_plan (self, S_CANARY, 4);
    plan.canary_steps = steps;
    plan.canary_step_count = 3;
    s_watch (self, &plan, "1.0.0", "2.0.0", true);
    char error [2048];
    al_rollout_status_t rc = al_rollout_run (self->d, &plan, v1, v2, error, sizeof (error));
    S_ASSERT_STATUS (rc, AL_ROLLOUT_OK, error);
    S_ASSERT_NO_VIOLATION (self);
    //  Soaked at 10% (at least 1 of 4 new) and 60% (ceil 2.4 = 3 of 4), not after 100%;
    //  N ran at each soak.
    assert_int_equal (self->soak_calls, 2);
    assert_int_equal (self->soak_percent [0], 10);
    assert_int_equal (self->soak_new [0], 1);
    assert_int_equal (self->soak_old [0], 3);
    assert_int_equal (self->soak_percent [1], 60);
    assert_int_equal (self->soak_new [1], 3);
    assert_int_equal (self->soak_old [1], 1);
    assert_int_equal (s_events (self, "canary", "2.0.0"), 3);
    assert_int_equal (s_count (self, "1.0.0", NULL, NULL), 0);
    assert_int_equal (s_ready_now (self, "2.0.0"), 4);
}

static void
test_canary_soak_breach_stops_at_first_step (void **state)
{
    s_fixture_t *self = *state;
    const al_driver_vars_t *v1 = s_release (self, 0, "1.0.0", "");
    const al_driver_vars_t *v2 = s_release (self, 1, "2.0.0", "");
    s_ensure (self, 4, v1);

    static const unsigned steps [] = { 5, 25, 50, 100 };
    al_rollout_plan_t plan = s_plan (self, S_CANARY, 4);
    plan.canary_steps = steps;
    plan.canary_step_count = 4;
    self->soak_fail_percent = 5;
    s_watch (self, &plan, "1.0.0", "2.0.0", true);
    char error [2048];
    al_rollout_status_t rc = al_rollout_run (self->d, &plan, v1, v2, error, sizeof (error));
    S_ASSERT_STATUS (rc, AL_ROLLOUT_FAILED, error);
    assert_non_null (strstr (error, "canary step 5%"));
    assert_non_null (strstr (error, "error rate +7% over baseline"));
    assert_int_equal (self->soak_calls, 1);
    assert_int_equal (s_count (self, "2.0.0", NULL, NULL), 1);
    assert_int_equal (s_count (self, "1.0.0", NULL, NULL), 3);

    s_watch (self, &plan, NULL, NULL, false);
    rc = al_rollout_revert (self->d, &plan, v1, v2, error, sizeof (error));
    S_ASSERT_STATUS (rc, AL_ROLLOUT_OK, error);
    assert_int_equal (self->soak_calls, 0);
    assert_int_equal (s_events (self, "canary", NULL), 0);
    assert_int_equal (s_ready_now (self, "1.0.0"), 4);
    assert_int_equal (s_count (self, "2.0.0", NULL, NULL), 0);
}

//  --------------------------------------------------------------------------
//  Blue-green

static void
test_blue_green_keeps_old_set_until_finish (void **state)
{
    s_fixture_t *self = *state;
    const al_driver_vars_t *v1 = s_release (self, 0, "1.0.0", "");
    const al_driver_vars_t *v2 = s_release (self, 1, "2.0.0", "--ready-delay-ms 200");
    const al_driver_vars_t *v3 = s_release (self, 2, "3.0.0", "");
    s_ensure (self, 3, v1);

    al_rollout_plan_t plan = s_plan (self, S_BLUE_GREEN, 3);
    s_watch (self, &plan, NULL, "2.0.0", false);
    char error [2048];
    al_rollout_status_t rc = al_rollout_run (self->d, &plan, v1, v2, error, sizeof (error));
    S_ASSERT_STATUS (rc, AL_ROLLOUT_OK, error);
    assert_string_equal (al_driver_active_set (self->d), "green");
    assert_int_equal (s_count (self, "2.0.0", "green", NULL), 3);
    assert_int_equal (s_count (self, "1.0.0", "default", NULL), 3);
    assert_int_equal (s_ready_now (self, "2.0.0"), 3);
    //  The switch came last, after every new instance was ready.
    assert_int_equal (s_events (self, "ready", "2.0.0"), 3);
    assert_string_equal (self->events [self->event_count - 1].phase, "switch");
    assert_string_equal (self->events [self->event_count - 1].set, "green");

    s_watch (self, &plan, NULL, NULL, false);
    rc = al_rollout_finish (self->d, &plan, v1, error, sizeof (error));
    S_ASSERT_STATUS (rc, AL_ROLLOUT_OK, error);
    assert_int_equal (s_events (self, "stop", "1.0.0"), 3);
    assert_int_equal (s_count (self, "1.0.0", NULL, NULL), 0);
    assert_int_equal (s_count (self, "2.0.0", "green", NULL), 3);

    //  The next one goes to the other colour.
    rc = al_rollout_run (self->d, &plan, v2, v3, error, sizeof (error));
    S_ASSERT_STATUS (rc, AL_ROLLOUT_OK, error);
    assert_string_equal (al_driver_active_set (self->d), "blue");
    assert_int_equal (s_count (self, "3.0.0", "blue", NULL), 3);
    assert_int_equal (s_count (self, "2.0.0", "green", NULL), 3);
    rc = al_rollout_finish (self->d, &plan, v2, error, sizeof (error));
    S_ASSERT_STATUS (rc, AL_ROLLOUT_OK, error);
    assert_int_equal (s_count (self, "2.0.0", NULL, NULL), 0);
    assert_int_equal (s_ready_now (self, "3.0.0"), 3);
}

static void
test_blue_green_revert_switches_back (void **state)
{
    s_fixture_t *self = *state;
    const al_driver_vars_t *v1 = s_release (self, 0, "1.0.0", "");
    const al_driver_vars_t *v2 = s_release (self, 1, "2.0.0", "");
    s_ensure (self, 3, v1);
    char before [S_MAX][AL_DRIVER_ID_SIZE];
    assert_int_equal (s_count (self, "1.0.0", NULL, before), 3);

    al_rollout_plan_t plan = s_plan (self, S_BLUE_GREEN, 3);
    char error [2048];
    al_rollout_status_t rc = al_rollout_run (self->d, &plan, v1, v2, error, sizeof (error));
    S_ASSERT_STATUS (rc, AL_ROLLOUT_OK, error);
    assert_string_equal (al_driver_active_set (self->d), "green");

    s_watch (self, &plan, NULL, NULL, false);
    rc = al_rollout_revert (self->d, &plan, v1, v2, error, sizeof (error));
    S_ASSERT_STATUS (rc, AL_ROLLOUT_OK, error);
    assert_string_equal (al_driver_active_set (self->d), "default");
    assert_int_equal (s_events (self, "start", NULL), 0);
    assert_int_equal (s_events (self, "switch", "1.0.0"), 1);
    assert_int_equal (s_events (self, "stop", "2.0.0"), 3);
    char after [S_MAX][AL_DRIVER_ID_SIZE];
    assert_int_equal (s_count (self, "1.0.0", "default", after), 3);
    for (int i = 0; i < 3; i++)
        assert_string_equal (after [i], before [i]);
    assert_int_equal (s_count (self, "2.0.0", NULL, NULL), 0);
    assert_int_equal (s_ready_now (self, "1.0.0"), 3);
}

static void
test_blue_green_failure_keeps_traffic (void **state)
{
    s_fixture_t *self = *state;
    const al_driver_vars_t *v1 = s_release (self, 0, "1.0.0", "");
    const al_driver_vars_t *v2 = s_release (self, 1, "2.0.0", "--fail-readiness");
    s_ensure (self, 3, v1);

    al_rollout_plan_t plan = s_plan (self, S_BLUE_GREEN, 3);
    plan.ready_timeout_ms = 1000;
    s_watch (self, &plan, NULL, "2.0.0", false);
    char error [2048];
    al_rollout_status_t rc = al_rollout_run (self->d, &plan, v1, v2, error, sizeof (error));
    S_ASSERT_STATUS (rc, AL_ROLLOUT_FAILED, error);
    assert_non_null (strstr (error, "not ready"));
    assert_string_equal (al_driver_active_set (self->d), "default");
    assert_int_equal (s_events (self, "switch", NULL), 0);
    assert_int_equal (s_count (self, "2.0.0", "green", NULL), 3);

    //  finish never stops the set that receives traffic.
    s_watch (self, &plan, NULL, NULL, false);
    rc = al_rollout_finish (self->d, &plan, v1, error, sizeof (error));
    S_ASSERT_STATUS (rc, AL_ROLLOUT_OK, error);
    assert_int_equal (s_events (self, "stop", NULL), 0);
    assert_int_equal (s_count (self, "1.0.0", "default", NULL), 3);

    rc = al_rollout_revert (self->d, &plan, v1, v2, error, sizeof (error));
    S_ASSERT_STATUS (rc, AL_ROLLOUT_OK, error);
    assert_int_equal (s_events (self, "start", NULL), 0);
    assert_int_equal (s_events (self, "switch", NULL), 0);
    assert_int_equal (s_count (self, "2.0.0", NULL, NULL), 0);
    assert_int_equal (s_ready_now (self, "1.0.0"), 3);
    assert_string_equal (al_driver_active_set (self->d), "default");
}

static void
test_blue_green_clears_leftovers_in_the_new_set (void **state)
{
    s_fixture_t *self = *state;
    const al_driver_vars_t *v1 = s_release (self, 0, "1.0.0", "");
    const al_driver_vars_t *v2 = s_release (self, 1, "2.0.0", "--fail-readiness");
    const al_driver_vars_t *v3 = s_release (self, 2, "3.0.0", "");
    s_ensure (self, 2, v1);
    al_rollout_plan_t plan = s_plan (self, S_BLUE_GREEN, 2);
    plan.ready_timeout_ms = 800;
    char error [2048];
    al_rollout_status_t rc = al_rollout_run (self->d, &plan, v1, v2, error, sizeof (error));
    S_ASSERT_STATUS (rc, AL_ROLLOUT_FAILED, error);
    assert_int_equal (s_count (self, "2.0.0", "green", NULL), 2);

    //  Not reverted: the next blue-green finds the failed release in "green" and stops it.
    s_watch (self, &plan, NULL, NULL, false);
    rc = al_rollout_run (self->d, &plan, v1, v3, error, sizeof (error));
    S_ASSERT_STATUS (rc, AL_ROLLOUT_OK, error);
    assert_int_equal (s_events (self, "stop", "2.0.0"), 2);
    assert_int_equal (s_count (self, "2.0.0", NULL, NULL), 0);
    assert_int_equal (s_count (self, "3.0.0", "green", NULL), 2);
    assert_int_equal (s_count (self, "1.0.0", "default", NULL), 2);
    assert_string_equal (al_driver_active_set (self->d), "green");
}

//  --------------------------------------------------------------------------
//  Abort, revert of a first deploy, reconcile, plan validation

static void
test_aborted_between_actions_and_while_waiting (void **state)
{
    s_fixture_t *self = *state;
    const al_driver_vars_t *v1 = s_release (self, 0, "1.0.0", "");
    const al_driver_vars_t *v2 = s_release (self, 1, "2.0.0", "");
    const al_driver_vars_t *v3 = s_release (self, 2, "3.0.0", "--ready-delay-ms 60000");
    s_ensure (self, 3, v1);

    //  Between actions: right after the first new instance is ready, before its old one stops.
    al_rollout_plan_t plan = s_plan (self, S_ROLLING, 3);
    s_watch (self, &plan, "1.0.0", "2.0.0", true);
    self->abort_after_ready = 1;
    char error [2048];
    al_rollout_status_t rc = al_rollout_run (self->d, &plan, v1, v2, error, sizeof (error));
    S_ASSERT_STATUS (rc, AL_ROLLOUT_ABORTED, error);
    assert_string_equal (error, "aborted: operator pressed stop");
    assert_true (self->abort_said);
    assert_int_equal (self->event_count, self->events_at_abort);
    assert_int_equal (s_count (self, "1.0.0", NULL, NULL), 3);
    assert_int_equal (s_count (self, "2.0.0", NULL, NULL), 1);

    //  During a readiness wait that would last a minute: no instance ever got ready.
    self->abort_after_ready = 0;
    self->abort_said = false;
    s_watch (self, &plan, "2.0.0", "3.0.0", false);
    self->abort_after_start = 1;
    rc = al_rollout_run (self->d, &plan, v2, v3, error, sizeof (error));
    S_ASSERT_STATUS (rc, AL_ROLLOUT_ABORTED, error);
    assert_int_equal (s_events (self, "start", "3.0.0"), 1);
    assert_int_equal (s_events (self, "ready", NULL), 0);
}

static void
test_revert_of_a_first_deploy_stops_it (void **state)
{
    s_fixture_t *self = *state;
    const al_driver_vars_t *v1 = s_release (self, 0, "1.0.0", "--fail-readiness");
    al_rollout_plan_t plan = s_plan (self, S_ROLLING, 2);
    plan.batch_size = 2;
    plan.max_surge = 2;
    plan.ready_timeout_ms = 800;
    char error [2048];
    al_rollout_status_t rc = al_rollout_run (self->d, &plan, NULL, v1, error, sizeof (error));
    S_ASSERT_STATUS (rc, AL_ROLLOUT_FAILED, error);
    assert_int_equal (s_count (self, "1.0.0", NULL, NULL), 2);
    s_watch (self, &plan, NULL, NULL, false);
    rc = al_rollout_revert (self->d, &plan, NULL, v1, error, sizeof (error));
    S_ASSERT_STATUS (rc, AL_ROLLOUT_OK, error);
    assert_int_equal (s_events (self, "stop", "1.0.0"), 2);
    assert_int_equal (s_count (self, NULL, NULL, NULL), 0);
}

static void
test_ensure_reconciles_up_and_down (void **state)
{
    s_fixture_t *self = *state;
    const al_driver_vars_t *v1 = s_release (self, 0, "1.0.0", "");
    const al_driver_vars_t *other = s_release (self, 1, "0.9.0", "");
    s_ensure (self, 1, other);
    s_ensure (self, 3, v1);
    assert_int_equal (s_events (self, "start", "1.0.0"), 3);
    assert_int_equal (s_ready_now (self, "1.0.0"), 3);
    s_ensure (self, 5, v1);
    assert_int_equal (s_events (self, "start", "1.0.0"), 2);
    assert_int_equal (s_ready_now (self, "1.0.0"), 5);
    char five [S_MAX][AL_DRIVER_ID_SIZE];
    assert_int_equal (s_count (self, "1.0.0", NULL, five), 5);

    //  N + 2 → N: the two newest stop, the others and the other release are untouched.
    s_ensure (self, 3, v1);
    assert_int_equal (s_events (self, "start", NULL), 0);
    assert_int_equal (s_events (self, "stop", "1.0.0"), 2);
    char three [S_MAX][AL_DRIVER_ID_SIZE];
    assert_int_equal (s_count (self, "1.0.0", NULL, three), 3);
    for (int i = 0; i < 3; i++)
        assert_string_equal (three [i], five [i]);
    assert_int_equal (s_ready_now (self, "1.0.0"), 3);
    assert_int_equal (s_count (self, "0.9.0", NULL, NULL), 1);

    //  Already right: nothing started or stopped.
    s_ensure (self, 3, v1);
    assert_int_equal (s_events (self, "start", NULL) + s_events (self, "stop", NULL), 0);
    assert_int_equal (s_events (self, "ready", "1.0.0"), 3);
}

static void
test_invalid_plans_touch_nothing (void **state)
{
    s_fixture_t *self = *state;
    const al_driver_vars_t *v1 = s_release (self, 0, "1.0.0", "");
    const al_driver_vars_t *v2 = s_release (self, 1, "2.0.0", "");
    static const unsigned empty_steps [] = { 0 };
    static const unsigned decreasing [] = { 50, 25, 100 };
    static const unsigned repeated [] = { 50, 50, 100 };
    static const unsigned zero [] = { 0, 100 };
    static const unsigned short_of_100 [] = { 25, 50 };
    static const unsigned too_big [] = { 50, 101 };
    al_driver_vars_t same = *v2;
    same.version = "1.0.0";
    al_driver_vars_t nameless = *v2;
    nameless.version = "";
    struct {
        int strategy;
        unsigned instances, batch, surge, unavailable;
        const unsigned *steps;
        size_t step_count;
        int probe_interval;
        const al_driver_vars_t *to;
        const char *expected;
    } cases [] = {
        { S_ROLLING, 0, 1, 1, 0, NULL, 0, 0, v2, "plan.instances: 0 is not in 1 .. 1024" },
        { S_ROLLING, 2000, 1, 1, 0, NULL, 0, 0, v2, "plan.instances: 2000" },
        { S_ROLLING, 3, 0, 1, 0, NULL, 0, 0, v2, "plan.batch_size: must be at least 1" },
        { S_ROLLING, 3, 1, 0, 0, NULL, 0, 0, v2, "plan.max_surge, plan.max_unavailable: both 0" },
        { S_CANARY, 3, 1, 1, 0, empty_steps, 0, 0, v2, "plan.canary_steps: empty" },
        { S_CANARY, 3, 1, 1, 0, decreasing, 3, 0, v2, "plan.canary_steps[1]: 25 does not increase on 50" },
        { S_CANARY, 3, 1, 1, 0, repeated, 3, 0, v2, "plan.canary_steps[1]: 50 does not increase on 50" },
        { S_CANARY, 3, 1, 1, 0, zero, 2, 0, v2, "plan.canary_steps[0]: 0 is not a percent" },
        { S_CANARY, 3, 1, 1, 0, too_big, 2, 0, v2, "plan.canary_steps[1]: 101 is not a percent" },
        { S_CANARY, 3, 1, 1, 0, short_of_100, 2, 0, v2, "plan.canary_steps: the last step is 50, not 100" },
        { 0, 3, 1, 1, 0, NULL, 0, 0, v2, "plan.strategy: 0 is not" },
        { 7, 3, 1, 1, 0, NULL, 0, 0, v2, "plan.strategy: 7 is not" },
        { S_ROLLING, 3, 1, 1, 0, NULL, 0, -1, v2, "plan.probe_interval_ms: negative" },
        { S_BLUE_GREEN, 3, 1, 1, 0, NULL, 0, 0, &same, "to.version: 1.0.0 equals from.version" },
        { S_ROLLING, 3, 1, 1, 0, NULL, 0, 0, &nameless, "to.version: empty" },
    };
    for (size_t i = 0; i < sizeof (cases) / sizeof (cases [0]); i++) {
        al_rollout_plan_t plan = s_plan (self, cases [i].strategy, cases [i].instances);
        plan.batch_size = cases [i].batch;
        plan.max_surge = cases [i].surge;
        plan.max_unavailable = cases [i].unavailable;
        plan.canary_steps = cases [i].steps;
        plan.canary_step_count = cases [i].step_count;
        plan.probe_interval_ms = cases [i].probe_interval;
        s_watch (self, &plan, NULL, NULL, false);
        char error [1024];
        al_rollout_status_t rc = al_rollout_run (self->d, &plan, v1, cases [i].to, error, sizeof (error));
        if (rc != AL_ROLLOUT_ERROR || strncmp (error, cases [i].expected, strlen (cases [i].expected)) != 0)
            fail_msg ("case %zu: %s: %s (expected %s)", i, al_rollout_status_name (rc), error, cases [i].expected);
        assert_int_equal (self->event_count, 0);
    }
    //  The other calls check what they use.
    al_rollout_plan_t plan = s_plan (self, S_ROLLING, 0);
    char error [1024];
    assert_int_equal (al_rollout_ensure (self->d, &plan, v1, error, sizeof (error)), AL_ROLLOUT_ERROR);
    assert_non_null (strstr (error, "plan.instances"));
    plan.instances = 3;
    assert_int_equal (al_rollout_revert (self->d, &plan, v1, &same, error, sizeof (error)), AL_ROLLOUT_ERROR);
    assert_non_null (strstr (error, "to.version"));
    assert_int_equal (s_count (self, NULL, NULL, NULL), 0);
    al_driver_instance_t listed [1];
    size_t count = 1;
    assert_int_equal (al_driver_list_instances (self->d, listed, 1, &count, error, sizeof (error)), AL_DRIVER_OK);
    assert_int_equal (count, 0);
    assert_string_equal (al_rollout_status_name (AL_ROLLOUT_ABORTED), "aborted");
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_rolling_with_surge_gates_each_replacement, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_rolling_without_surge_spends_unavailability, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_rolling_first_deploy, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_rolling_failed_readiness_stops_then_revert_restores,
                                         s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_rolling_crash_at_start_then_revert_restores, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_rolling_instance_exiting_before_ready_fails_fast,
                                         s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_canary_ramps_with_soak_between_steps, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_canary_soak_breach_stops_at_first_step, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_blue_green_keeps_old_set_until_finish, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_blue_green_revert_switches_back, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_blue_green_failure_keeps_traffic, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_blue_green_clears_leftovers_in_the_new_set, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_aborted_between_actions_and_while_waiting, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_revert_of_a_first_deploy_stops_it, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_ensure_reconciles_up_and_down, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_invalid_plans_touch_nothing, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
