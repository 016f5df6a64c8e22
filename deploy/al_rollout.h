/*  al_rollout.h: the rollout strategies (rolling, canary, blue-green), the fast revert
    and the reconcile, written on top of the deploy driver calls (al_driver.h).

    A release is identified by its al_driver_vars_t: the instances whose service and
    version equal the release's belong to it, so two releases of one rollout MUST
    differ in version. "from" is the release running now (NULL on a first deploy),
    "to" the new one; plan->instances (N) are wanted.

    - rolling: batches of at most batch_size new instances in the active set. At no
      point do more than N + max_surge instances of from and to run, nor fewer than
      N - max_unavailable ready ones. Each batch passes its readiness gate (a
      READINESS probe every probe_interval_ms, up to ready_timeout_ms) before the old
      instances it replaces are stopped; only when the surge room is smaller than a
      batch are old instances stopped first, within the max_unavailable budget.
    - canary: for each percent p of canary_steps, max (1, ceil (p * N / 100)) new
      instances (at most N) run ready and old ones are stopped so that N run, with the
      rolling bounds while getting there; then step_soak (p) is called, except at 100.
    - blue-green: the new set is "blue" when the active set is "green", "green"
      otherwise (a fresh driver's active set is "default", so the first blue-green goes
      to "green"). Instances of other releases in the new set (it receives no traffic)
      are stopped, N instances of to are started there at once and gated, then the
      active set is switched. The old set keeps running: al_rollout_finish stops it once
      the soak has passed, or al_rollout_revert switches back to it.

    A failing start, readiness gate or step soak stops a rollout at once with
    AL_ROLLOUT_FAILED; the rollout never reverts by itself (the caller decides, and
    calls al_rollout_revert). What was started stays running for the revert to clean.

    Callbacks (all MAY be NULL) run on the caller's thread between driver calls, with
    plan->arg; they may use the driver to list and probe, nothing else. aborted is polled
    before every action and during readiness waits (at least every 50 ms); when it
    returns true the call stops and returns AL_ROLLOUT_ABORTED with its reason.

    Threading: the calls use the driver, which is used by one thread at a time.
*/
#ifndef AL_ROLLOUT_H_INCLUDED
#define AL_ROLLOUT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include "deploy/al_driver.h"

#ifdef __cplusplus
extern "C" {
#endif

//  Plan numbers: 0 in probe_interval_ms or ready_timeout_ms means these defaults.
#define AL_ROLLOUT_DEFAULT_PROBE_INTERVAL_MS    200
#define AL_ROLLOUT_DEFAULT_READY_TIMEOUT_MS     60000
#define AL_ROLLOUT_MAX_INSTANCES                1024
#define AL_ROLLOUT_REASON_SIZE                  512

typedef enum {
    AL_ROLLOUT_OK = 0,
    AL_ROLLOUT_FAILED,              // the release failed: a start, a readiness gate, a step soak
    AL_ROLLOUT_ABORTED,             // plan->aborted returned true
    AL_ROLLOUT_ERROR                // invalid plan or vars, or the driver failed on its own
                                    // (configuration, system, unsupported, lost instance)
} al_rollout_status_t;

//  One event. Strings are borrowed for the duration of the callback.
typedef struct {
    const char *phase;              // "start", "ready", "stop", "switch", "canary"
    const char *id;                 // the instance's id; "" for switch and canary
    const char *version;            // the instance's version (switch, canary: the release's)
    const char *set;                // the instance's set (switch: the new active set)
    unsigned instance;              // 1-based: the n-th start, ready or stop of this call
    unsigned instances;             // N
    unsigned percent;               // share of N of the release being brought up that is
                                    // ready; canary: the step's percent
    const char *detail;             // for reading: "graceful, exit code 0", "3 of 4 run 2.0"
} al_rollout_progress_t;

typedef struct {
    int strategy;                   // Airlock__Strategy (proto/airlock.pb-c.h): ROLLING,
                                    // CANARY or BLUE_GREEN; only al_rollout_run reads it
    unsigned instances;             // N, 1 .. AL_ROLLOUT_MAX_INSTANCES
    unsigned batch_size;            // rolling, canary: >= 1
    unsigned max_unavailable;       // rolling, canary: with max_surge, not both 0
    unsigned max_surge;
    const unsigned *canary_steps;   // canary: percents, strictly increasing, 1 .. 100, last 100
    size_t canary_step_count;
    int probe_interval_ms;          // 0: AL_ROLLOUT_DEFAULT_PROBE_INTERVAL_MS
    int ready_timeout_ms;           // 0: AL_ROLLOUT_DEFAULT_READY_TIMEOUT_MS
    int stop_grace_ms;              // SIGTERM to SIGKILL; <= 0: the driver's stop_timeout_ms
    //  MAY: soak between canary steps; 0 passes, -1 is a breach explained in reason.
    int (*step_soak) (void *arg, unsigned percent, char *reason, size_t reason_size);
    //  MAY: every instance started, ready or stopped, every switch and canary step.
    void (*progress) (void *arg, const al_rollout_progress_t *progress);
    //  MAY: true stops the call; reason (NUL-terminated) says why.
    bool (*aborted) (void *arg, char *reason, size_t reason_size);
    void *arg;
} al_rollout_plan_t;

//  Roll out to (from the release from, NULL on a first deploy) with plan->strategy.
//  OK once N instances of to run ready in the active set (rolling, canary: and no
//  instance of from runs; blue-green: the active set switched, from still runs).
//  Otherwise FAILED, ABORTED or ERROR with "what is wrong" in error ("plan.canary_steps:
//  ..." for an invalid plan, in which case nothing was touched).
al_rollout_status_t
    al_rollout_run (al_driver_t *driver, const al_rollout_plan_t *plan, const al_driver_vars_t *from,
                    const al_driver_vars_t *to, char *error, size_t error_size);

//  After a successful rollout and soak: stop every running instance of from outside the
//  active set (blue-green's old set; rolling and canary leave none). from NULL: OK.
al_rollout_status_t
    al_rollout_finish (al_driver_t *driver, const al_rollout_plan_t *plan, const al_driver_vars_t *from,
                       char *error, size_t error_size);

//  Fast revert, no canary steps, no soak, no surge bounds: make at least N instances of
//  from run ready in the set it lives in (the active set if it runs there, else the set
//  where it runs, else the colour blue-green left: the one not active), starting the
//  missing ones at once; switch back to that set if it is not active; then stop every
//  running instance of to. from NULL: only stop every instance of to. When from cannot
//  be brought up, to is left running (FAILED): it may be all that serves.
al_rollout_status_t
    al_rollout_revert (al_driver_t *driver, const al_rollout_plan_t *plan, const al_driver_vars_t *from,
                       const al_driver_vars_t *to, char *error, size_t error_size);

//  Reconcile (after a deploy-manager restart): exactly N ready instances of vars running
//  in the active set; missing ones started at once, extra ones (the newest) stopped.
//  Instances of other releases are left alone.
al_rollout_status_t
    al_rollout_ensure (al_driver_t *driver, const al_rollout_plan_t *plan, const al_driver_vars_t *vars,
                       char *error, size_t error_size);

//  "ok", "failed", "aborted", "error".
const char *
    al_rollout_status_name (al_rollout_status_t status);

#ifdef __cplusplus
}
#endif

#endif
