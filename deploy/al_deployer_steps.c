/*  al_deployer_steps.c: the steps that change things, and their rollback.

    Preparing a release (driver variables, the verified artifact), pre-flight (with
    validation.json), backup, migrate, the baseline before the rollout, the rollout with
    its plan and callbacks, production smoke checks, the performance baseline at the end
    of the soak, and the fast rollback. See al_deployer.c for the map.
*/
#include "deploy/al_deployer_int.h"
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

//  ---- the rollout's callbacks ----------------------------------------------------------

static void
s_rollout_progress (void *arg, const al_rollout_progress_t *progress)
{
    al_deployer_run_t *run = (al_deployer_run_t *) arg;
    al_deployer_progress (run, AIRLOCK__STEP__STEP_ROLLOUT, AIRLOCK__OUTCOME__OUTCOME_STARTED, progress->instance,
                          progress->instances, progress->percent, "%s%s%s", progress->phase? progress->phase: "",
                          progress->detail && *progress->detail? ": ": "", progress->detail? progress->detail: "");
}

static bool
s_rollout_aborted (void *arg, char *reason, size_t reason_size)
{
    al_deployer_run_t *run = (al_deployer_run_t *) arg;
    if (!al_deployer_trigger (run))
        return false;
    al_error_set (reason, reason_size, "%s", run->failure);
    return true;
}

void
al_deployer_plan_init (al_deployer_run_t *run, al_rollout_plan_t *plan)
{
    memset (plan, 0, sizeof *plan);
    plan->strategy = (int) run->strategy;
    plan->instances = run->instances;
    plan->batch_size = run->svc->batch_size;
    plan->max_unavailable = run->svc->max_unavailable;
    plan->max_surge = run->svc->max_surge;
    plan->canary_steps = run->svc->canary_steps;
    plan->canary_step_count = run->svc->canary_step_count;
    plan->probe_interval_ms = run->svc->probe_interval_ms;
    plan->ready_timeout_ms = run->svc->ready_timeout_ms;
    plan->stop_grace_ms = run->svc->stop_timeout_ms;
    //  Seed 004: a hotfix is expedited. Its ramp is shortened, never its checks: a
    //  canary goes from its first step straight to 100% (the first step still soaks in
    //  full), rolling batches are twice as large (within the same max_surge and
    //  max_unavailable bounds, each batch still gated on readiness), and the soak after
    //  the rollout keeps its full duration and checkpoints (docs/deploying.md).
    run->expedited [0] = 0;
    if (run->request->deployment_type == AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_HOTFIX) {
        if (run->strategy == AIRLOCK__STRATEGY__STRATEGY_CANARY && plan->canary_step_count > 2) {
            run->hotfix_steps [0] = plan->canary_steps [0];
            run->hotfix_steps [1] = 100;
            al_error_set (run->expedited, sizeof run->expedited, "hotfix expedited: canary steps %u%%, 100%% "
                          "(of %zu steps)", run->hotfix_steps [0], plan->canary_step_count);
            plan->canary_steps = run->hotfix_steps;
            plan->canary_step_count = 2;
        }
        else
        if (run->strategy == AIRLOCK__STRATEGY__STRATEGY_ROLLING && plan->batch_size < run->instances) {
            unsigned batch = plan->batch_size * 2 < run->instances? plan->batch_size * 2: run->instances;
            al_error_set (run->expedited, sizeof run->expedited, "hotfix expedited: rolling batches of %u (not %u)",
                          batch, plan->batch_size);
            plan->batch_size = batch;
        }
    }
    plan->step_soak = al_deployer_canary_soak;
    plan->progress = s_rollout_progress;
    plan->aborted = s_rollout_aborted;
    plan->arg = run;
}

//  ---- preparing the run ----------------------------------------------------------------

void
al_deployer_vars (al_driver_vars_t *vars, const al_service_t *svc, const char *version, const char *artifact,
                  const char *digest_ref, Airlock__Environment env)
{
    vars->service = svc->name;
    vars->version = version;
    vars->artifact = artifact;
    vars->digest = digest_ref;
    vars->env = al_deployer_env_name (env);
}

//  The artifact to run for a release: the kept copy when the URI is local, else the URI
//  itself (a platform image the exec driver pins by {{digest}}).
int
al_deployer_artifact (al_deployer_run_t *run, const char *uri, const char *digest, bool keep, char *path, size_t path_size)
{
    char error [512];
    al_artifact_status_t status = keep
        ? al_artifacts_keep (run->self->artifacts, uri, digest, path, path_size, error, sizeof error)
        : al_artifacts_path (run->self->artifacts, digest, path, path_size, error, sizeof error);
    if (status == AL_ARTIFACT_OK)
        return 0;
    if (status == AL_ARTIFACT_NOT_LOCAL && strcmp (run->svc->driver, "process") != 0) {
        al_error_set (path, path_size, "%s", uri);
        return 0;
    }
    al_deployer_fail (run, "artifact %s: %s", uri, error);
    return -1;
}

//  ---- the steps ----------------------------------------------------------------------

//  Seed 003's validation.json: what was validated before this deploy changed anything:
//  the QA report it carries (in production the digest the approvers signed, and
//  pre-flight's verdict on it) and every pre-flight check with its result. Returns 0,
//  or -1 when the file cannot be written (pre-flight then fails: no evidence, no deploy).
static int
s_validation (al_deployer_run_t *run, json_t *checks, bool passed, uint64_t now)
{
    Airlock__Environment env = run->job->environment;
    const Airlock__ProductionGrant *grant = run->job->execute? run->job->execute->grant: NULL;
    const Airlock__ApprovalRequest *approved = grant? grant->request: NULL;
    bool has_report = approved && !al_approval_gate_no_qa_report (approved);
    bool qa_ok = false;
    const char *qa_detail = "pre-flight made no QA check";
    size_t index;
    json_t *check;
    json_array_foreach (checks, index, check)
        if (strcmp (json_string_value (json_object_get (check, "check")), "qa_report_approved") == 0) {
            qa_ok = json_is_true (json_object_get (check, "ok"));
            qa_detail = json_string_value (json_object_get (check, "detail"));
        }
    const char *verdict = env != AIRLOCK__ENVIRONMENT__ENV_PRODUCTION? "not required before production"
                        : !qa_ok? "not approved": has_report? "approved": "no QA report required";
    json_t *root = json_pack ("{s:s, s:s, s:s, s:s, s:s, s:I, s:{s:s?, s:s, s:b, s:s}, s:{s:b, s:O}, s:b}",
                              "deployment_id", run->job->deployment_id, "service", run->svc->name,
                              "environment", al_deployer_env_name (env), "version", run->request->version,
                              "artifact_sha256", run->request->artifact_sha256, "time_ms", (json_int_t) now,
                              "qa", "report_sha256", has_report? approved->qa_report_sha256: NULL,
                                    "verdict", verdict, "ok", qa_ok, "detail", qa_detail? qa_detail: "",
                              "preflight", "passed", passed, "checks", checks,
                              "passed", passed);
    char error [512];
    int rc = root? al_deployer_write_json (run->evidence_dir, "validation.json", root, NULL, error, sizeof error): -1;
    if (rc != 0)
        zsys_error ("deploy-manager: %s: validation.json: %s", run->job->deployment_id, root? error: "cannot encode");
    json_decref (root);
    return rc;
}

int
al_deployer_step_preflight (al_deployer_run_t *run)
{
    const al_policy_t *policy = run->self->policy;
    const Airlock__DeployRequest *request = run->request;
    Airlock__Environment env = run->job->environment;
    json_t *checks = json_array ();
    char reason [AL_DEPLOYER_DETAIL_SIZE];
    char detail [AL_PREFLIGHT_DETAIL_SIZE];
    uint64_t now = al_deployer_now (run);

    //  The grant and its QA report (production), the constraints, the calendar: the
    //  checks al_preflight shares with the runbook.
    al_preflight_add_grant (checks, policy, env, request, run->job->execute, run->self->qa_reports, now,
                            &run->grant_break_glass);
    al_preflight_add_constraints (checks, policy, run->svc, env, run->strategy, run->instances);
    const Airlock__ApprovalRequest *approved = env == AIRLOCK__ENVIRONMENT__ENV_PRODUCTION && run->job->execute
        && run->job->execute->grant? run->job->execute->grant->request: NULL;
    al_preflight_add_calendar (checks, policy, env, request->deployment_type, approved, now, run->grant_break_glass);

    //  The artifact: bit for bit what was approved, kept for rollback.
    if (al_deployer_artifact (run, request->artifact_uri, request->artifact_sha256, true,
                    run->artifact_path, sizeof run->artifact_path) == 0)
        al_preflight_add (checks, "artifact_digest", true, "%s is sha256:%s", request->artifact_uri,
                          request->artifact_sha256);
    else
        al_preflight_add (checks, "artifact_digest", false, "%s", run->failure);
    al_preflight_release_t current = {
        .present = run->has_from, .version = run->record.current.version,
        .digest = run->record.current.digest, .deployment_id = run->record.current.deployment_id
    };
    al_preflight_add_release (checks, env, &current, run->from_artifact_path [0] != 0, request->version,
                              run->job->deployment_id);
    if (request->deployment_type == AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_ROLLBACK) {
        const al_release_t *before = &run->record.previous;
        al_preflight_release_t previous = {
            .present = before->present, .version = before->version,
            .digest = before->digest, .deployment_id = before->deployment_id
        };
        bool back = al_preflight_rollback_target (&current, &previous, request->version, request->artifact_sha256,
                                                  detail, sizeof detail);
        al_preflight_add (checks, "rollback_target", back, "%s", detail);
    }

    //  Migrations: the set is the one approved; reversible in production.
    al_preflight_add_migrations (checks, run->svc, env, request->migration_set_sha256, &run->set);

    //  Observability prerequisites: the probes the soak and the monitor rely on, and the
    //  monitor itself when the soak depends on its signals.
    if (run->svc->signals != AL_SERVICE_SIGNALS_PROBES) {
        char monitor [256] = "no monitor is connected";
        bool alive = run->hooks->monitor_alive
                  && run->hooks->monitor_alive (run->hooks->arg, monitor, sizeof monitor);
        al_preflight_add (checks, "monitor", alive, "%s", monitor);
    }
    bool observable = al_preflight_observability (run->svc, detail, sizeof detail);
    al_preflight_add (checks, "observability", observable, "%s", detail);

    //  The driver's own prerequisites (connectivity, programs, ports).
    al_preflight_add_driver (checks, run->driver, &run->to);

    json_t *root = json_pack ("{s:s, s:s, s:s, s:s, s:I, s:o}", "deployment_id", run->job->deployment_id,
                              "service", run->svc->name, "environment", al_deployer_env_name (env),
                              "driver", run->svc->driver, "time_ms", (json_int_t) now, "checks", checks);
    bool ok = al_preflight_passed (checks, reason, sizeof reason);
    char write_error [512];
    if (al_deployer_write_json (run->evidence_dir, "connectivity-report.json", root, NULL, write_error, sizeof write_error) != 0) {
        ok = false;
        al_error_set (reason, sizeof reason, "evidence: %s", write_error);
    }
    if (s_validation (run, checks, ok, now) != 0) {
        ok = false;
        al_error_set (reason, sizeof reason, "evidence: validation.json cannot be written");
    }
    json_decref (root);
    if (!ok)
        al_deployer_fail (run, "pre-flight: %s", reason);
    return ok? 0: -1;
}

bool
al_deployer_has_database (const al_deployer_run_t *run, const char **db_p)
{
    const char *db = al_service_database (run->svc, run->job->environment);
    *db_p = db;
    return db != NULL;
}

int
al_deployer_step_backup (al_deployer_run_t *run, bool *skipped)
{
    const char *db;
    if (!al_deployer_has_database (run, &db) || access (db, F_OK) != 0) {
        *skipped = true;
        al_error_set (run->failure, sizeof run->failure, "%s", db? "the database does not exist yet": "no database");
        return 0;
    }
    char dir [AL_DEPLOYER_PATH_SIZE], error [512], sha [AL_SHA256_HEX_SIZE];
    al_error_set (dir, sizeof dir, "%s/backups/%s", run->self->state_dir, run->job->deployment_id);
    if (al_deployer_make_dirs (dir, 0700) != 0) {
        al_deployer_fail (run, "backup: %s: %s", dir, strerror (errno));
        return -1;
    }
    if (al_backup_create (db, run->backup_path, sha, error, sizeof error) != 0) {
        al_deployer_fail (run, "backup: %s", error);
        return -1;
    }
    al_error_set (run->failure, sizeof run->failure, "%s verified, sha256 %s", run->backup_path, sha);
    return 0;
}

int
al_deployer_step_migrate (al_deployer_run_t *run, bool *skipped)
{
    const char *db;
    if (!run->set || !al_deployer_has_database (run, &db)) {
        *skipped = true;
        al_error_set (run->failure, sizeof run->failure, "%s", run->set? "no database in this environment": "no migrations");
        return 0;
    }
    al_migrate_report_t report;
    memset (&report, 0, sizeof report);
    char error [512];
    if (al_migrate_up (db, run->set, AL_MIGRATE_LATEST, &report, error, sizeof error) != 0) {
        al_deployer_fail (run, "migrate: %s", error);
        return -1;
    }
    al_error_set (run->failure, sizeof run->failure, "version %u -> %u (%u step(s))",
                  report.from_version, report.to_version, report.steps_run);
    return 0;
}

//  A baseline of the release that runs now, before anything changes (seed 003's
//  performance baseline): one probe round's latencies. The monitor's golden-signal
//  baseline, when it runs, is richer; this one never depends on it.
static void
s_baseline (al_deployer_run_t *run)
{
    json_t *probes = json_array ();
    al_driver_instance_t *instances = (al_driver_instance_t *) calloc (AL_DEPLOYER_MAX_INSTANCES, sizeof *instances);
    assert (instances);
    size_t count = 0;
    char error [256];
    if (run->has_from
    &&  al_driver_list_instances (run->driver, instances, AL_DEPLOYER_MAX_INSTANCES, &count, error, sizeof error) == AL_DRIVER_OK)
        for (size_t i = 0; i < count && i < AL_DEPLOYER_MAX_INSTANCES; i++) {
            if (!instances [i].running || strcmp (instances [i].version, run->from.version) != 0)
                continue;
            al_probe_result_t probe;
            memset (&probe, 0, sizeof probe);
            al_driver_probe (run->driver, instances [i].id, AL_DRIVER_READINESS, &probe, error, sizeof error);
            json_array_append_new (probes, json_pack ("{s:s, s:b, s:f, s:s}", "instance", instances [i].id,
                                                      "ok", probe.ok, "latency_ms", probe.latency_ms,
                                                      "detail", probe.detail));
        }
    free (instances);
    json_t *root = json_pack ("{s:s, s:s, s:s, s:s, s:I, s:o}", "deployment_id", run->job->deployment_id,
                              "service", run->svc->name, "baseline_version",
                              run->has_from? run->from.version: "", "source", "readiness probes before the rollout",
                              "time_ms", (json_int_t) al_deployer_now (run), "probes", probes);
    //  What the running release showed at the end of its own soak (its deployment's
    //  performance-baseline.json), when it was deployed here by airlock.
    json_t *previous = NULL;
    if (run->has_from && run->record.current.present && run->record.current.deployment_id [0]
    &&  strcmp (run->record.current.deployment_id, run->job->deployment_id) != 0) {
        char path [AL_DEPLOYER_PATH_SIZE];
        al_deployer_evidence_dir (run->self, run->record.current.deployment_id, path, sizeof path);
        strncat (path, "/performance-baseline.json", sizeof path - strlen (path) - 1);
        json_t *recorded = json_load_file (path, 0, NULL);
        previous = json_incref (json_object_get (recorded, "at_soak_end"));
        json_decref (recorded);
    }
    json_object_set_new (root, "previous_release_at_soak_end", previous? previous: json_null ());
    if (al_deployer_write_json (run->evidence_dir, "performance-baseline.json", root, NULL, error, sizeof error) != 0)
        zsys_warning ("deploy-manager: %s", error);
    json_decref (root);
}

//  Seed 003's post-deployment smoke tests, in production: the service's read-only
//  qa.smoke checks (without any, one "liveness" check of liveness_path, any 2xx) against
//  every instance of the new release, after the rollout and before the soak. The first
//  failing check fails the rollout, so the release is rolled back. An instance whose
//  driver gives no endpoint (exec without `endpoint:`) cannot be checked: said so in
//  the evidence, not counted as passed. Results in run->smoke and smoke-test-results.json.
static int
s_smoke (al_deployer_run_t *run)
{
    const al_service_t *svc = run->svc;
    al_service_smoke_t liveness = { .name = "liveness", .path = svc->liveness_path? svc->liveness_path: "/",
                                    .status = 0, .body_contains = NULL };
    const al_service_smoke_t *smoke = svc->qa_smoke_count? svc->qa_smoke: &liveness;
    size_t smoke_count = svc->qa_smoke_count? svc->qa_smoke_count: 1;
    al_driver_instance_t *instances = (al_driver_instance_t *) calloc (AL_DEPLOYER_MAX_INSTANCES, sizeof *instances);
    assert (instances);
    json_t *results = json_array ();
    size_t count = 0;
    unsigned ran = 0, failed = 0, unchecked = 0;
    char error [256], first [AL_DEPLOYER_DETAIL_SIZE] = "";
    if (al_driver_list_instances (run->driver, instances, AL_DEPLOYER_MAX_INSTANCES, &count, error, sizeof error) != AL_DRIVER_OK) {
        al_error_set (first, sizeof first, "cannot list the instances: %s", error);
        failed++;
        count = 0;
    }
    for (size_t i = 0; i < count && i < AL_DEPLOYER_MAX_INSTANCES; i++) {
        const al_driver_instance_t *instance = &instances [i];
        if (!instance->running || strcmp (instance->version, run->to.version) != 0)
            continue;
        if (!instance->endpoint [0]) {
            unchecked++;
            json_array_append_new (results, json_pack ("{s:s, s:s, s:n, s:s}", "instance", instance->id,
                                   "status", "not_run", "ok", "detail",
                                   "the driver gives no endpoint for this instance (services.yaml endpoint:)"));
            continue;
        }
        for (size_t k = 0; k < smoke_count; k++) {
            char url [AL_DEPLOYER_PATH_SIZE];
            al_error_set (url, sizeof url, "%s%s", instance->endpoint, smoke [k].path);
            al_probe_result_t probe;
            bool ok = al_probe_http_check (url, svc->qa_timeout_ms, smoke [k].status, smoke [k].body_contains, &probe);
            ran++;
            if (!ok && failed++ == 0)
                al_error_set (first, sizeof first, "smoke check %s on %s (GET %s): %s", smoke [k].name, instance->id,
                              smoke [k].path, probe.detail);
            json_array_append_new (results, json_pack ("{s:s, s:s, s:s, s:s, s:b, s:s, s:f}", "check", smoke [k].name,
                                   "instance", instance->id, "url", url, "status", ok? "passed": "failed", "ok", ok,
                                   "detail", probe.detail, "latency_ms", probe.latency_ms));
        }
    }
    free (instances);
    if (ran == 0 && failed == 0 && unchecked == 0) {
        al_error_set (first, sizeof first, "no instance of %s runs to check", run->to.version);
        failed++;
    }
    json_decref (run->smoke);
    run->smoke = json_pack ("{s:s, s:s, s:b, s:i, s:i, s:i, s:o}", "when", "after the rollout, before the soak",
                            "source", svc->qa_smoke_count? "services.yaml qa.smoke": "liveness_path (no qa.smoke)",
                            "passed", failed == 0, "run", (int) ran, "failed", (int) failed,
                            "not_run", (int) unchecked, "checks", results);
    json_t *root = json_pack ("{s:s, s:s, s:s, s:s, s:O}", "deployment_id", run->job->deployment_id,
                              "service", svc->name, "environment", al_deployer_env_name (run->job->environment),
                              "version", run->to.version, "smoke", run->smoke);
    char write_error [512];
    if (al_deployer_write_json (run->evidence_dir, "smoke-test-results.json", root, NULL, write_error, sizeof write_error) != 0)
        zsys_warning ("deploy-manager: %s", write_error);
    json_decref (root);
    if (failed) {
        al_deployer_fail (run, "%s", first);
        return -1;
    }
    //  The rollout step's detail (journal, receipt, Definition of Done).
    al_error_set (run->failure, sizeof run->failure, "production smoke: %u check(s) passed%s", ran,
                  unchecked? ", some instance(s) not checkable (no endpoint)": "");
    return 0;
}

//  Seed 003's performance baseline of the new release: at the end of a soak that held,
//  the latest golden signals the monitor sent for it (SoakSignal), and the soak's last
//  probe round, added to performance-baseline.json as "at_soak_end". The next deploy of
//  the service copies it into its own baseline ("previous_release_at_soak_end"), so a
//  first look at a release always has the numbers of the one it replaces.
void
al_deployer_performance_at_soak_end (al_deployer_run_t *run)
{
    char path [AL_DEPLOYER_PATH_SIZE], error [512];
    al_error_set (path, sizeof path, "%s/performance-baseline.json", run->evidence_dir);
    json_t *root = json_load_file (path, 0, NULL);
    if (!json_is_object (root)) {
        json_decref (root);
        root = json_pack ("{s:s, s:s}", "deployment_id", run->job->deployment_id, "service", run->svc->name);
    }
    const Airlock__SoakSignal *signal = run->hooks->latest_signal? run->hooks->latest_signal (run->hooks->arg): NULL;
    json_t *signals = signal?
        json_pack ("{s:I, s:f, s:f, s:f, s:f, s:f, s:f, s:i, s:i, s:i, s:s}", "sequence", (json_int_t) signal->sequence,
                   "requests_per_second", signal->requests_per_second, "error_ratio", signal->error_ratio,
                   "latency_p50_ms", signal->latency_p50_ms, "latency_p99_ms", signal->latency_p99_ms,
                   "cpu_percent", signal->cpu_percent, "memory_percent", signal->memory_percent,
                   "instances_up", (int) signal->instances_up, "instances_total", (int) signal->instances_total,
                   "no_evidence", (int) signal->no_evidence, "source", signal->source? signal->source: "")
        : json_null ();
    json_t *last_round = json_object_get (json_array_get (run->soak_samples, json_array_size (run->soak_samples) - 1),
                                          "probes");
    json_object_set_new (root, "at_soak_end", json_pack ("{s:s, s:I, s:s, s:o, s:O, s:f, s:i, s:i}",
        "version", run->to.version, "time_ms", (json_int_t) al_deployer_now (run),
        "source", signal? "the monitor's latest SoakSignal for this release, and the soak's last probe round"
                        : "no SoakSignal for this release (signals: probes): the soak's last probe round only",
        "golden_signals", signals, "probes", last_round? last_round: json_null (),
        "max_probe_latency_ms", run->probe_latency_max_ms, "probes_run", (int) run->probes_run,
        "probes_failed", (int) run->probes_failed));
    if (al_deployer_write_json (run->evidence_dir, "performance-baseline.json", root, NULL, error, sizeof error) != 0)
        zsys_warning ("deploy-manager: %s", error);
    json_decref (root);
}

int
al_deployer_step_rollout (al_deployer_run_t *run)
{
    s_baseline (run);
    al_rollout_plan_t plan;
    al_deployer_plan_init (run, &plan);
    if (run->expedited [0])
        al_deployer_progress (run, AIRLOCK__STEP__STEP_ROLLOUT, AIRLOCK__OUTCOME__OUTCOME_STARTED, 0, run->instances, 0,
                              "%s; the soak after the rollout is not shortened", run->expedited);
    char error [AL_DEPLOYER_DETAIL_SIZE];
    al_rollout_status_t status = al_rollout_run (run->driver, &plan, run->has_from? &run->from: NULL,
                                                 &run->to, error, sizeof error);
    if (status == AL_ROLLOUT_OK && run->job->environment == AIRLOCK__ENVIRONMENT__ENV_PRODUCTION
    &&  s_smoke (run) != 0) {
        al_error_set (run->rule, sizeof run->rule, "smoke_failed");
        return -1;
    }
    if (status == AL_ROLLOUT_OK)
        return 0;
    if (status != AL_ROLLOUT_ABORTED || !run->failure [0])
        al_deployer_fail (run, "rollout (%s): %s", al_strategy_name (run->strategy)? al_strategy_name (run->strategy): "?", error);
    if (!run->rule [0])
        al_error_set (run->rule, sizeof run->rule, "%s", status == AL_ROLLOUT_ABORTED? "rollback_trigger": "rollout_failed");
    return -1;
}

//  Rollback: fast, no analysis. Stop the new release, bring the recorded one back to its
//  count, undo the data as services.yaml says, then verify health.
int
al_deployer_rollback (al_deployer_run_t *run)
{
    char detail [AL_DEPLOYER_DETAIL_SIZE];
    al_error_set (detail, sizeof detail, "rule %s: %s", run->rule [0]? run->rule: "step_failed", run->failure);
    if (al_deployer_journal (run, AIRLOCK__STEP__STEP_ROLLBACK, AIRLOCK__OUTCOME__OUTCOME_STARTED, detail) != 0)
        return -1;
    char error [AL_DEPLOYER_DETAIL_SIZE] = "";
    bool ok = true;
    al_rollout_plan_t plan;
    al_deployer_plan_init (run, &plan);
    plan.aborted = NULL;
    plan.step_soak = NULL;
    if (run->driver) {
        if (al_rollout_revert (run->driver, &plan, run->has_from? &run->from: NULL, &run->to,
                               error, sizeof error) != AL_ROLLOUT_OK)
            ok = false;
    }
    //  Data: only when migrate started (else nothing changed).
    const char *db;
    bool data = run->started [AIRLOCK__STEP__STEP_MIGRATE] && run->set && al_deployer_has_database (run, &db);
    if (ok && data) {
        if (run->svc->data_rollback == AL_SERVICE_DATA_ROLLBACK_RESTORE
        ||  access (run->backup_path, F_OK) == 0) {
            unsigned target = 0;
            if (access (run->backup_path, F_OK) != 0) {
                ok = false;
                al_error_set (error, sizeof error, "no backup at %s to restore", run->backup_path);
            }
            else
            if (run->svc->data_rollback == AL_SERVICE_DATA_ROLLBACK_DOWN
            &&  al_migrate_version (run->backup_path, run->set, &target, error, sizeof error) == 0
            &&  al_migrate_down (db, run->set, target, NULL, error, sizeof error) == 0)
                ;
            else
            if (al_backup_restore (run->backup_path, NULL, db, error, sizeof error) != 0)
                ok = false;
        }
        else
        if (al_migrate_down (db, run->set, 0, NULL, error, sizeof error) != 0)
            ok = false;
    }
    if (ok && run->has_from) {
        //  Health of what we went back to.
        al_driver_vars_t saved = run->to;
        run->to = run->from;
        if (al_deployer_health_report (run, "health-check-report.json") != 0) {
            ok = false;
            al_error_set (error, sizeof error, "the restored release %s is not healthy", run->from.version);
        }
        run->to = saved;
    }
    if (ok)
        al_error_set (detail, sizeof detail, "restored %s%s", run->has_from? run->from.version: "nothing (first deploy)",
                      data? " and its data": "");
    else
        al_error_set (detail, sizeof detail, "rollback failed: %s", error);
    if (al_deployer_journal (run, AIRLOCK__STEP__STEP_ROLLBACK, ok? AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED
                   : AIRLOCK__OUTCOME__OUTCOME_FAILED, detail) != 0)
        return -1;
    return ok? 0: -1;
}
