/*  al_rollout.c: rolling, canary and blue-green rollouts, the fast revert and the
    reconcile, on top of the driver's instance calls (see al_rollout.h).

    Every call works from the driver's own list of instances, read again before each
    decision, never from a count kept on the side: what runs is what the driver says
    runs. An instance belongs to a release when its service and version equal the
    release's. Instances of the release being brought up that were already running when
    a call began are gated like new ones, so a gated instance is the only kind counted
    as ready; old instances count as ready while they run (they served until now).

    Invariants of the rolling engine (s_advance), checked by assert where they are ours:
    a step either stops at least one old instance or starts and gates at least one new
    one, so it ends; the surge room after the stops it may make first is at least 1
    because max_surge + max_unavailable >= 1.

    Threading: one call at a time per driver (the driver's rule). Callbacks run on the
    caller's thread.
*/
#include "deploy/al_rollout.h"
#include "base/al_clock.h"
#include "base/al_error.h"
#include "proto/airlock.pb-c.h"
#include <assert.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

//  Longest sleep between two polls of plan->aborted during a readiness wait.
#define S_ABORT_POLL_MS 50

//  Instances of one release picked from the driver's list (copies), oldest first.
typedef struct {
    al_driver_instance_t *items;
    size_t size;
    size_t capacity;
} s_group_t;

//  One call: the driver, the plan with its defaults applied, the caller's error
//  buffer, the last listing and the counters that number the progress events.
typedef struct {
    al_driver_t *driver;
    const al_rollout_plan_t *plan;
    int probe_interval_ms;
    int ready_timeout_ms;
    char *error;
    size_t error_size;
    al_driver_instance_t *list;         // the driver's last list_instances
    size_t list_size;
    size_t list_capacity;
    s_group_t old;                      // scratch groups, reused by every step
    s_group_t fresh;
    s_group_t batch;
    unsigned ready;                     // instances of the release being brought up known ready
    unsigned started;                   // ordinals of the progress events
    unsigned readied;
    unsigned stopped;
    int starts_left;                    // guard against instances that keep exiting
} s_run_t;

//  --------------------------------------------------------------------------
//  Small helpers

static void
s_error (s_run_t *run, const char *format, ...) __attribute__ ((format (printf, 2, 3)));

static void
s_error (s_run_t *run, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    al_error_vset (run->error, run->error_size, format, args);
    va_end (args);
}

static void
s_sleep_ms (int milliseconds)
{
    if (milliseconds <= 0)
        return;
    struct timespec pause = { milliseconds / 1000, (milliseconds % 1000) * 1000000L };
    nanosleep (&pause, NULL);
}

static bool
s_belongs (const al_driver_instance_t *instance, const al_driver_vars_t *vars)
{
    return strcmp (instance->service, vars->service) == 0
        && strcmp (instance->version, vars->version) == 0;
}

static bool
s_group_add (s_group_t *group, const al_driver_instance_t *instance)
{
    if (group->size == group->capacity) {
        size_t capacity = group->capacity ? group->capacity * 2 : 8;
        al_driver_instance_t *grown = realloc (group->items, capacity * sizeof (*grown));
        if (!grown)
            return false;
        group->items = grown;
        group->capacity = capacity;
    }
    group->items [group->size++] = *instance;
    return true;
}

static void
s_group_free (s_group_t *group)
{
    free (group->items);
    memset (group, 0, sizeof (*group));
}

//  A status from the driver: FAILED when the release failed (exit, timeout), ERROR
//  when the driver or the host did. Fills error with "what: driver's error".
static al_rollout_status_t
s_driver_failure (s_run_t *run, al_driver_status_t status, const char *what, const char *driver_error)
{
    s_error (run, "%s: %s", what, *driver_error ? driver_error : al_driver_status_name (status));
    return status == AL_DRIVER_ERR_FAILED || status == AL_DRIVER_ERR_TIMEOUT ? AL_ROLLOUT_FAILED
                                                                             : AL_ROLLOUT_ERROR;
}

static bool
s_aborted (s_run_t *run)
{
    if (!run->plan->aborted)
        return false;
    char reason [AL_ROLLOUT_REASON_SIZE] = "";
    if (!run->plan->aborted (run->plan->arg, reason, sizeof (reason)))
        return false;
    reason [sizeof (reason) - 1] = 0;
    s_error (run, "aborted: %s", *reason ? reason : "no reason given");
    return true;
}

static void
s_progress (s_run_t *run, const char *phase, const al_driver_instance_t *instance, unsigned ordinal,
            const char *detail)
{
    if (!run->plan->progress)
        return;
    unsigned instances = run->plan->instances;
    unsigned ready = run->ready < instances ? run->ready : instances;
    al_rollout_progress_t progress = {
        .phase = phase, .id = instance->id, .version = instance->version, .set = instance->set,
        .instance = ordinal, .instances = instances, .percent = ready * 100 / instances,
        .detail = detail
    };
    run->plan->progress (run->plan->arg, &progress);
}

//  The same event for a whole release (switch, canary step): no instance.
static void
s_progress_release (s_run_t *run, const char *phase, const al_driver_vars_t *vars, const char *set,
                    unsigned percent, const char *detail)
{
    if (!run->plan->progress)
        return;
    al_rollout_progress_t progress = {
        .phase = phase, .id = "", .version = vars->version, .set = set, .instance = 0,
        .instances = run->plan->instances, .percent = percent, .detail = detail
    };
    run->plan->progress (run->plan->arg, &progress);
}

//  --------------------------------------------------------------------------
//  The driver's view

//  Read the driver's list of instances into run->list.
static al_rollout_status_t
s_refresh (s_run_t *run)
{
    char driver_error [512];
    for (;;) {
        size_t count = 0;
        al_driver_status_t status = al_driver_list_instances (run->driver, run->list, run->list_capacity,
                                                              &count, driver_error, sizeof (driver_error));
        if (status != AL_DRIVER_OK) {
            s_driver_failure (run, status, "list instances", driver_error);
            return AL_ROLLOUT_ERROR;
        }
        if (count <= run->list_capacity) {
            run->list_size = count;
            return AL_ROLLOUT_OK;
        }
        size_t capacity = count + 16;
        al_driver_instance_t *grown = realloc (run->list, capacity * sizeof (*grown));
        if (!grown) {
            s_error (run, "list instances: out of memory");
            return AL_ROLLOUT_ERROR;
        }
        run->list = grown;
        run->list_capacity = capacity;
    }
}

//  group := the running instances of vars in set (NULL: any set), from run->list.
static al_rollout_status_t
s_select (s_run_t *run, s_group_t *group, const al_driver_vars_t *vars, const char *set)
{
    group->size = 0;
    for (size_t i = 0; i < run->list_size; i++) {
        const al_driver_instance_t *instance = &run->list [i];
        if (!instance->running || !s_belongs (instance, vars))
            continue;
        if (set && strcmp (instance->set, set) != 0)
            continue;
        if (!s_group_add (group, instance)) {
            s_error (run, "out of memory");
            return AL_ROLLOUT_ERROR;
        }
    }
    return AL_ROLLOUT_OK;
}

static const al_driver_instance_t *
s_listed (s_run_t *run, const char *id)
{
    for (size_t i = 0; i < run->list_size; i++)
        if (strcmp (run->list [i].id, id) == 0)
            return &run->list [i];
    return NULL;
}

//  The smallest index no running instance of set uses ({{instance}} of a new one).
static int
s_free_index (s_run_t *run, const char *set)
{
    for (int index = 0; ; index++) {
        bool used = false;
        for (size_t i = 0; i < run->list_size && !used; i++)
            used = run->list [i].running && run->list [i].instance == index
                && strcmp (run->list [i].set, set) == 0;
        if (!used)
            return index;
    }
}

//  --------------------------------------------------------------------------
//  Actions

//  Start one instance of vars in set and add it to run->batch (not gated yet).
static al_rollout_status_t
s_start (s_run_t *run, const al_driver_vars_t *vars, const char *set)
{
    if (s_aborted (run))
        return AL_ROLLOUT_ABORTED;
    if (run->starts_left-- <= 0) {
        s_error (run, "start %s %s: too many starts in one call; instances keep exiting after they were ready",
                 vars->service, vars->version);
        return AL_ROLLOUT_FAILED;
    }
    al_rollout_status_t rc = s_refresh (run);
    if (rc != AL_ROLLOUT_OK)
        return rc;
    al_driver_spec_t spec = {
        .vars = *vars, .instance = s_free_index (run, set), .port = 0, .set = set
    };
    al_driver_instance_t info;
    char driver_error [2048];
    al_driver_status_t status = al_driver_start_instance (run->driver, &spec, &info, driver_error,
                                                          sizeof (driver_error));
    if (status != AL_DRIVER_OK) {
        char what [256];
        snprintf (what, sizeof (what), "start %s %s (set %s, instance %d)", vars->service, vars->version,
                  set, spec.instance);
        return s_driver_failure (run, status, what, driver_error);
    }
    if (!s_group_add (&run->batch, &info)) {
        s_error (run, "out of memory");
        return AL_ROLLOUT_ERROR;
    }
    char detail [AL_DRIVER_ENDPOINT_SIZE + 32];
    snprintf (detail, sizeof (detail), "pid %d, %s", (int) info.pid, info.endpoint);
    s_progress (run, "start", &info, ++run->started, detail);
    return AL_ROLLOUT_OK;
}

static al_rollout_status_t
s_stop (s_run_t *run, const al_driver_instance_t *instance)
{
    if (s_aborted (run))
        return AL_ROLLOUT_ABORTED;
    al_driver_stop_t result;
    char driver_error [1024];
    al_driver_status_t status = al_driver_stop_instance (run->driver, instance->id, run->plan->stop_grace_ms,
                                                         &result, driver_error, sizeof (driver_error));
    if (status != AL_DRIVER_OK) {
        char what [AL_DRIVER_ID_SIZE + AL_DRIVER_NAME_SIZE + AL_DRIVER_VERSION_SIZE + 16];
        snprintf (what, sizeof (what), "stop %s (%s %s)", instance->id, instance->service, instance->version);
        return s_driver_failure (run, status, what, driver_error);
    }
    char detail [64];
    snprintf (detail, sizeof (detail), "%s, exit code %d", result.forced ? "forced" : "graceful",
              result.exit_code);
    s_progress (run, "stop", instance, ++run->stopped, detail);
    return AL_ROLLOUT_OK;
}

//  Stop the first count instances of group (the oldest), or its last count (newest).
static al_rollout_status_t
s_stop_some (s_run_t *run, const s_group_t *group, size_t count, bool newest)
{
    assert (count <= group->size);
    for (size_t i = 0; i < count; i++) {
        size_t at = newest ? group->size - 1 - i : i;
        al_rollout_status_t rc = s_stop (run, &group->items [at]);
        if (rc != AL_ROLLOUT_OK)
            return rc;
    }
    return AL_ROLLOUT_OK;
}

//  The readiness gate: probe every instance of group until each is ready. FAILED when
//  one exits first or ready_timeout_ms passes; the instances stay as they are.
static al_rollout_status_t
s_gate (s_run_t *run, const s_group_t *group)
{
    if (group->size == 0)
        return AL_ROLLOUT_OK;
    al_rollout_status_t rc = AL_ROLLOUT_OK;
    bool *ready = calloc (group->size, sizeof (bool));
    if (!ready) {
        s_error (run, "out of memory");
        return AL_ROLLOUT_ERROR;
    }
    double deadline = al_clock_mono_ms () + run->ready_timeout_ms;
    size_t pending = group->size;
    //  The last failed probe, for the error: which instance and what it answered.
    size_t last_index = 0;
    char last [sizeof (((al_probe_result_t *) 0)->detail)] = "";
    for (;;) {
        if (s_aborted (run)) {
            rc = AL_ROLLOUT_ABORTED;
            goto cleanup;
        }
        for (size_t i = 0; i < group->size; i++) {
            if (ready [i])
                continue;
            const al_driver_instance_t *instance = &group->items [i];
            al_probe_result_t probe;
            char driver_error [512];
            al_driver_status_t status = al_driver_probe (run->driver, instance->id, AL_DRIVER_READINESS,
                                                         &probe, driver_error, sizeof (driver_error));
            if (status != AL_DRIVER_OK) {
                char what [128];
                snprintf (what, sizeof (what), "probe %s", instance->id);
                rc = s_driver_failure (run, status, what, driver_error);
                goto cleanup;
            }
            if (!probe.ok) {
                last_index = i;
                snprintf (last, sizeof (last), "%s", probe.detail);
                continue;
            }
            ready [i] = true;
            pending--;
            run->ready++;
            s_progress (run, "ready", instance, ++run->readied, probe.detail);
        }
        if (pending == 0)
            goto cleanup;
        //  An instance that exited will never be ready: say so now, not at the deadline.
        rc = s_refresh (run);
        if (rc != AL_ROLLOUT_OK)
            goto cleanup;
        for (size_t i = 0; i < group->size; i++) {
            const al_driver_instance_t *listed = ready [i] ? NULL : s_listed (run, group->items [i].id);
            if (listed && !listed->running) {
                s_error (run, "instance %s (%s %s) exited with code %d before it was ready",
                         listed->id, listed->service, listed->version, listed->exit_code);
                rc = AL_ROLLOUT_FAILED;
                goto cleanup;
            }
        }
        if (al_clock_mono_ms () >= deadline) {
            const al_driver_instance_t *instance = &group->items [last_index];
            assert (!ready [last_index]);
            s_error (run, "instance %s (%s %s) not ready after %d ms; last readiness probe: %s",
                     instance->id, instance->service, instance->version, run->ready_timeout_ms, last);
            rc = AL_ROLLOUT_FAILED;
            goto cleanup;
        }
        double wake = al_clock_mono_ms () + run->probe_interval_ms;
        for (double now = al_clock_mono_ms (); now < wake; now = al_clock_mono_ms ()) {
            double left = wake - now;
            s_sleep_ms (left < S_ABORT_POLL_MS ? (int) left + 1 : S_ABORT_POLL_MS);
            if (s_aborted (run)) {
                rc = AL_ROLLOUT_ABORTED;
                goto cleanup;
            }
        }
    }
cleanup:
    free (ready);
    return rc;
}

//  Start count instances of vars in set at once (one after the other, no gate in
//  between), then gate them together.
static al_rollout_status_t
s_start_and_gate (s_run_t *run, const al_driver_vars_t *vars, const char *set, size_t count)
{
    run->batch.size = 0;
    for (size_t i = 0; i < count; i++) {
        al_rollout_status_t rc = s_start (run, vars, set);
        if (rc != AL_ROLLOUT_OK)
            return rc;
    }
    return s_gate (run, &run->batch);
}

//  --------------------------------------------------------------------------
//  The rolling engine

//  Gate the instances of to already running in set (a rollout resumed or repeated, a
//  reconcile), stopping the newest beyond N. They are left in run->fresh, counted ready.
static al_rollout_status_t
s_adopt (s_run_t *run, const al_driver_vars_t *to, const char *set)
{
    al_rollout_status_t rc = s_refresh (run);
    if (rc == AL_ROLLOUT_OK)
        rc = s_select (run, &run->fresh, to, set);
    if (rc != AL_ROLLOUT_OK)
        return rc;
    size_t wanted = run->plan->instances;
    if (run->fresh.size > wanted) {
        rc = s_stop_some (run, &run->fresh, run->fresh.size - wanted, true);
        if (rc != AL_ROLLOUT_OK)
            return rc;
        run->fresh.size = wanted;
    }
    run->ready = 0;
    return s_gate (run, &run->fresh);
}

//  Bring to up to target ready instances in set and from (any set) down to N - target,
//  within the plan's batch, surge and unavailability bounds.
static al_rollout_status_t
s_advance (s_run_t *run, const al_driver_vars_t *from, const al_driver_vars_t *to, const char *set,
           size_t target)
{
    const al_rollout_plan_t *plan = run->plan;
    long wanted = plan->instances;
    for (;;) {
        if (s_aborted (run))
            return AL_ROLLOUT_ABORTED;
        al_rollout_status_t rc = s_refresh (run);
        if (rc == AL_ROLLOUT_OK && from)
            rc = s_select (run, &run->old, from, NULL);
        if (rc == AL_ROLLOUT_OK)
            rc = s_select (run, &run->fresh, to, set);
        if (rc != AL_ROLLOUT_OK)
            return rc;
        if (!from)
            run->old.size = 0;
        long old = (long) run->old.size;
        long fresh = (long) run->fresh.size;
        run->ready = (unsigned) fresh;
        //  More than N run: the new instances took over, stop the old ones they replace.
        long excess = old + fresh - wanted;
        if (excess > 0 && old > 0) {
            rc = s_stop_some (run, &run->old, (size_t) (excess < old ? excess : old), false);
            if (rc != AL_ROLLOUT_OK)
                return rc;
            continue;
        }
        if (fresh >= (long) target)
            return AL_ROLLOUT_OK;
        long batch = (long) target - fresh;
        if (batch > (long) plan->batch_size)
            batch = plan->batch_size;
        long total = old + fresh;
        long room = wanted + (long) plan->max_surge - total;
        if (room < batch && old > 0) {
            //  Not enough surge for a whole batch: spend the unavailability budget.
            long first = batch - room;
            if (first > old)
                first = old;
            long budget = total - (wanted - (long) plan->max_unavailable);
            if (first > budget)
                first = budget;
            if (first > 0) {
                rc = s_stop_some (run, &run->old, (size_t) first, false);
                if (rc != AL_ROLLOUT_OK)
                    return rc;
                room += first;
            }
        }
        long count = batch < room ? batch : room;
        assert (count >= 1);
        rc = s_start_and_gate (run, to, set, (size_t) count);
        if (rc != AL_ROLLOUT_OK)
            return rc;
    }
}

static al_rollout_status_t
s_rolling (s_run_t *run, const al_driver_vars_t *from, const al_driver_vars_t *to)
{
    //  A copy: the driver's buffer would change under us if a callback switched sets.
    char set [AL_DRIVER_SET_SIZE];
    snprintf (set, sizeof (set), "%s", al_driver_active_set (run->driver));
    al_rollout_status_t rc = s_adopt (run, to, set);
    if (rc == AL_ROLLOUT_OK)
        rc = s_advance (run, from, to, set, run->plan->instances);
    return rc;
}

static al_rollout_status_t
s_canary (s_run_t *run, const al_driver_vars_t *from, const al_driver_vars_t *to)
{
    const al_rollout_plan_t *plan = run->plan;
    //  A copy, as in s_rolling.
    char set [AL_DRIVER_SET_SIZE];
    snprintf (set, sizeof (set), "%s", al_driver_active_set (run->driver));
    al_rollout_status_t rc = s_adopt (run, to, set);
    for (size_t step = 0; rc == AL_ROLLOUT_OK && step < plan->canary_step_count; step++) {
        unsigned percent = plan->canary_steps [step];
        size_t target = ((size_t) percent * plan->instances + 99) / 100;
        if (target < 1)
            target = 1;
        if (target > plan->instances)
            target = plan->instances;
        rc = s_advance (run, from, to, set, target);
        if (rc != AL_ROLLOUT_OK)
            break;
        char detail [64 + AL_DRIVER_VERSION_SIZE];
        snprintf (detail, sizeof (detail), "%zu of %u instances run %s", target, plan->instances, to->version);
        s_progress_release (run, "canary", to, set, percent, detail);
        if (percent == 100 || !plan->step_soak)
            continue;
        if (s_aborted (run))
            return AL_ROLLOUT_ABORTED;
        char reason [AL_ROLLOUT_REASON_SIZE] = "";
        if (plan->step_soak (plan->arg, percent, reason, sizeof (reason)) != 0) {
            reason [sizeof (reason) - 1] = 0;
            s_error (run, "canary step %u%%: soak failed: %s", percent, *reason ? reason : "no reason given");
            return AL_ROLLOUT_FAILED;
        }
    }
    return rc;
}

static al_rollout_status_t
s_blue_green (s_run_t *run, const al_driver_vars_t *to)
{
    const char *set = strcmp (al_driver_active_set (run->driver), "green") == 0 ? "blue" : "green";
    //  The new set receives no traffic: whatever else runs there is a leftover.
    al_rollout_status_t rc = s_refresh (run);
    if (rc != AL_ROLLOUT_OK)
        return rc;
    run->old.size = 0;
    for (size_t i = 0; i < run->list_size; i++) {
        const al_driver_instance_t *instance = &run->list [i];
        if (instance->running && strcmp (instance->set, set) == 0
        &&  strcmp (instance->service, to->service) == 0 && !s_belongs (instance, to)
        &&  !s_group_add (&run->old, instance)) {
            s_error (run, "out of memory");
            return AL_ROLLOUT_ERROR;
        }
    }
    rc = s_stop_some (run, &run->old, run->old.size, false);
    if (rc == AL_ROLLOUT_OK)
        rc = s_adopt (run, to, set);
    if (rc != AL_ROLLOUT_OK)
        return rc;
    rc = s_start_and_gate (run, to, set, run->plan->instances - run->fresh.size);
    if (rc != AL_ROLLOUT_OK)
        return rc;
    if (s_aborted (run))
        return AL_ROLLOUT_ABORTED;
    char driver_error [1024];
    al_driver_status_t status = al_driver_switch_active (run->driver, set, driver_error, sizeof (driver_error));
    if (status != AL_DRIVER_OK) {
        char what [64];
        snprintf (what, sizeof (what), "switch to set %s", set);
        return s_driver_failure (run, status, what, driver_error);
    }
    s_progress_release (run, "switch", to, set, 100, "traffic moved");
    return AL_ROLLOUT_OK;
}

//  --------------------------------------------------------------------------
//  Validation

static bool
s_vars_valid (s_run_t *run, const char *which, const al_driver_vars_t *vars)
{
    if (!vars->service || !*vars->service) {
        s_error (run, "%s.service: empty", which);
        return false;
    }
    if (!vars->version || !*vars->version) {
        s_error (run, "%s.version: empty", which);
        return false;
    }
    return true;
}

//  The plan's common numbers; with_strategy: also the strategy's own members.
static bool
s_plan_valid (s_run_t *run, bool with_strategy)
{
    const al_rollout_plan_t *plan = run->plan;
    if (plan->instances < 1 || plan->instances > AL_ROLLOUT_MAX_INSTANCES) {
        s_error (run, "plan.instances: %u is not in 1 .. %d", plan->instances, AL_ROLLOUT_MAX_INSTANCES);
        return false;
    }
    if (plan->probe_interval_ms < 0 || plan->ready_timeout_ms < 0) {
        s_error (run, "plan.%s: negative", plan->probe_interval_ms < 0 ? "probe_interval_ms" : "ready_timeout_ms");
        return false;
    }
    if (!with_strategy)
        return true;
    int strategy = plan->strategy;
    if (strategy != AIRLOCK__STRATEGY__STRATEGY_ROLLING && strategy != AIRLOCK__STRATEGY__STRATEGY_CANARY
    &&  strategy != AIRLOCK__STRATEGY__STRATEGY_BLUE_GREEN) {
        s_error (run, "plan.strategy: %d is not rolling, canary or blue-green", strategy);
        return false;
    }
    if (strategy == AIRLOCK__STRATEGY__STRATEGY_BLUE_GREEN)
        return true;
    if (plan->batch_size < 1) {
        s_error (run, "plan.batch_size: must be at least 1");
        return false;
    }
    if (plan->max_surge == 0 && plan->max_unavailable == 0) {
        s_error (run, "plan.max_surge, plan.max_unavailable: both 0 leaves no room to replace an instance");
        return false;
    }
    if (strategy != AIRLOCK__STRATEGY__STRATEGY_CANARY)
        return true;
    if (!plan->canary_steps || plan->canary_step_count == 0) {
        s_error (run, "plan.canary_steps: empty");
        return false;
    }
    for (size_t i = 0; i < plan->canary_step_count; i++) {
        unsigned percent = plan->canary_steps [i];
        if (percent < 1 || percent > 100) {
            s_error (run, "plan.canary_steps[%zu]: %u is not a percent in 1 .. 100", i, percent);
            return false;
        }
        if (i > 0 && percent <= plan->canary_steps [i - 1]) {
            s_error (run, "plan.canary_steps[%zu]: %u does not increase on %u", i, percent,
                     plan->canary_steps [i - 1]);
            return false;
        }
    }
    if (plan->canary_steps [plan->canary_step_count - 1] != 100) {
        s_error (run, "plan.canary_steps: the last step is %u, not 100",
                 plan->canary_steps [plan->canary_step_count - 1]);
        return false;
    }
    return true;
}

static void
s_run_init (s_run_t *run, al_driver_t *driver, const al_rollout_plan_t *plan, char *error, size_t error_size)
{
    assert (driver && plan && error && error_size > 0);
    memset (run, 0, sizeof (*run));
    run->driver = driver;
    run->plan = plan;
    run->error = error;
    run->error_size = error_size;
    *error = 0;
    run->probe_interval_ms = plan->probe_interval_ms > 0 ? plan->probe_interval_ms
                                                         : AL_ROLLOUT_DEFAULT_PROBE_INTERVAL_MS;
    run->ready_timeout_ms = plan->ready_timeout_ms > 0 ? plan->ready_timeout_ms
                                                       : AL_ROLLOUT_DEFAULT_READY_TIMEOUT_MS;
    //  A rollout needs N starts when all goes well; twice that plus N means instances
    //  that pass their gate keep exiting, and the engine would replace them for ever.
    run->starts_left = 3 * (int) (plan->instances <= AL_ROLLOUT_MAX_INSTANCES ? plan->instances : 0);
}

static void
s_run_free (s_run_t *run)
{
    free (run->list);
    run->list = NULL;
    s_group_free (&run->old);
    s_group_free (&run->fresh);
    s_group_free (&run->batch);
}

//  The arguments of a run or a revert: the plan (with_strategy: as al_rollout_run needs it),
//  to and from (MAY be NULL), one service, two versions. False with the error set.
static bool
s_releases_valid (s_run_t *run, bool with_strategy, const al_driver_vars_t *from, const al_driver_vars_t *to)
{
    if (!s_plan_valid (run, with_strategy) || !s_vars_valid (run, "to", to)
    ||  (from && !s_vars_valid (run, "from", from)))
        return false;
    if (from && strcmp (from->service, to->service) != 0) {
        s_error (run, "from.service: %s differs from to.service %s", from->service, to->service);
        return false;
    }
    if (from && strcmp (from->version, to->version) == 0) {
        s_error (run, "to.version: %s equals from.version (releases are told apart by version)", to->version);
        return false;
    }
    return true;
}

//  --------------------------------------------------------------------------
//  Public calls

al_rollout_status_t
al_rollout_run (al_driver_t *driver, const al_rollout_plan_t *plan, const al_driver_vars_t *from,
                const al_driver_vars_t *to, char *error, size_t error_size)
{
    assert (to);
    s_run_t run;
    s_run_init (&run, driver, plan, error, error_size);
    al_rollout_status_t rc = AL_ROLLOUT_ERROR;
    if (!s_releases_valid (&run, true, from, to))
        goto cleanup;
    if (plan->strategy == AIRLOCK__STRATEGY__STRATEGY_ROLLING)
        rc = s_rolling (&run, from, to);
    else
    if (plan->strategy == AIRLOCK__STRATEGY__STRATEGY_CANARY)
        rc = s_canary (&run, from, to);
    else
        rc = s_blue_green (&run, to);
cleanup:
    s_run_free (&run);
    return rc;
}

al_rollout_status_t
al_rollout_finish (al_driver_t *driver, const al_rollout_plan_t *plan, const al_driver_vars_t *from,
                   char *error, size_t error_size)
{
    s_run_t run;
    s_run_init (&run, driver, plan, error, error_size);
    al_rollout_status_t rc = AL_ROLLOUT_ERROR;
    if (!s_plan_valid (&run, false) || (from && !s_vars_valid (&run, "from", from)))
        goto cleanup;
    rc = AL_ROLLOUT_OK;
    if (!from)
        goto cleanup;
    rc = s_refresh (&run);
    if (rc == AL_ROLLOUT_OK)
        rc = s_select (&run, &run.old, from, NULL);
    if (rc != AL_ROLLOUT_OK)
        goto cleanup;
    const char *active = al_driver_active_set (driver);
    for (size_t i = 0; i < run.old.size && rc == AL_ROLLOUT_OK; i++)
        if (strcmp (run.old.items [i].set, active) != 0)
            rc = s_stop (&run, &run.old.items [i]);
cleanup:
    s_run_free (&run);
    return rc;
}

//  The set in which revert brings from back (see al_rollout_revert in the header).
static const char *
s_revert_set (s_run_t *run, const al_driver_vars_t *from, const al_driver_vars_t *to)
{
    const char *active = al_driver_active_set (run->driver);
    const char *elsewhere = NULL;
    bool to_active = false;
    for (size_t i = 0; i < run->list_size; i++) {
        const al_driver_instance_t *instance = &run->list [i];
        if (!instance->running)
            continue;
        if (s_belongs (instance, from)) {
            if (strcmp (instance->set, active) == 0)
                return active;
            if (!elsewhere)
                elsewhere = instance->set;
        }
        if (s_belongs (instance, to) && strcmp (instance->set, active) == 0)
            to_active = true;
    }
    if (elsewhere)
        return elsewhere;
    if (to_active && strcmp (active, "green") == 0)
        return "blue";
    if (to_active && strcmp (active, "blue") == 0)
        return "green";
    return active;
}

al_rollout_status_t
al_rollout_revert (al_driver_t *driver, const al_rollout_plan_t *plan, const al_driver_vars_t *from,
                   const al_driver_vars_t *to, char *error, size_t error_size)
{
    assert (to);
    s_run_t run;
    s_run_init (&run, driver, plan, error, error_size);
    al_rollout_status_t rc = AL_ROLLOUT_ERROR;
    if (!s_releases_valid (&run, false, from, to))
        goto cleanup;
    if (s_aborted (&run)) {
        rc = AL_ROLLOUT_ABORTED;
        goto cleanup;
    }
    rc = s_refresh (&run);
    if (rc != AL_ROLLOUT_OK)
        goto cleanup;
    if (from) {
        char set [AL_DRIVER_SET_SIZE];
        snprintf (set, sizeof (set), "%s", s_revert_set (&run, from, to));
        //  What still runs of from is gated first (a probe round when it is ready).
        rc = s_select (&run, &run.fresh, from, set);
        if (rc == AL_ROLLOUT_OK)
            rc = s_gate (&run, &run.fresh);
        if (rc != AL_ROLLOUT_OK)
            goto cleanup;
        size_t missing = run.fresh.size < plan->instances ? plan->instances - run.fresh.size : 0;
        rc = s_start_and_gate (&run, from, set, missing);
        if (rc != AL_ROLLOUT_OK)
            goto cleanup;
        if (strcmp (set, al_driver_active_set (driver)) != 0) {
            if (s_aborted (&run)) {
                rc = AL_ROLLOUT_ABORTED;
                goto cleanup;
            }
            char driver_error [1024];
            al_driver_status_t status = al_driver_switch_active (driver, set, driver_error, sizeof (driver_error));
            if (status != AL_DRIVER_OK) {
                char what [64];
                snprintf (what, sizeof (what), "switch back to set %s", set);
                rc = s_driver_failure (&run, status, what, driver_error);
                goto cleanup;
            }
            s_progress_release (&run, "switch", from, set, 100, "traffic moved back");
        }
        rc = s_refresh (&run);
        if (rc != AL_ROLLOUT_OK)
            goto cleanup;
    }
    rc = s_select (&run, &run.fresh, to, NULL);
    if (rc == AL_ROLLOUT_OK)
        rc = s_stop_some (&run, &run.fresh, run.fresh.size, false);
cleanup:
    s_run_free (&run);
    return rc;
}

al_rollout_status_t
al_rollout_ensure (al_driver_t *driver, const al_rollout_plan_t *plan, const al_driver_vars_t *vars,
                   char *error, size_t error_size)
{
    assert (vars);
    s_run_t run;
    s_run_init (&run, driver, plan, error, error_size);
    al_rollout_status_t rc = AL_ROLLOUT_ERROR;
    if (!s_plan_valid (&run, false) || !s_vars_valid (&run, "vars", vars))
        goto cleanup;
    if (s_aborted (&run)) {
        rc = AL_ROLLOUT_ABORTED;
        goto cleanup;
    }
    char set [AL_DRIVER_SET_SIZE];
    snprintf (set, sizeof (set), "%s", al_driver_active_set (driver));
    //  s_adopt stops the newest beyond N and gates the rest, leaving them in run.fresh.
    rc = s_adopt (&run, vars, set);
    if (rc == AL_ROLLOUT_OK)
        rc = s_start_and_gate (&run, vars, set, plan->instances - run.fresh.size);
cleanup:
    s_run_free (&run);
    return rc;
}

const char *
al_rollout_status_name (al_rollout_status_t status)
{
    switch (status) {
        case AL_ROLLOUT_OK:         return "ok";
        case AL_ROLLOUT_FAILED:     return "failed";
        case AL_ROLLOUT_ABORTED:    return "aborted";
        case AL_ROLLOUT_ERROR:      return "error";
    }
    return "unknown";
}
