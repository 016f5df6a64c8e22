/*  test_watch_view.c: agents/al_watch_view, what `airlock watch` shows, without the binary.

    Envelopes built here are fed to a view as the subscriber would return them: only the
    watch's exact topics and its deployment count; progress lines are live until their
    step finishes; a receipt ends the watch with its outcome; a signals sample is judged
    by deploy/al_rules (checked against an al_rules_stream fed the same samples), shows
    missing evidence as missing (null in JSON) and a breach stays. The audit log is
    asked on a state directory made here: an unreadable log, an unknown id, a release's
    id, a deployment of a known release not started yet, and a finished deployment whose
    receipt is in the log.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "agents/al_watch_view.h"
#include "store/al_store.h"
#include "rules_fixture.h"

#include <czmq.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  A healthy sample of api (rules_fixture.h, shared with test_rules).
static Airlock__SoakSignal
s_sample (uint64_t sequence, bool baseline)
{
    return rf_sample ("api", sequence, baseline);
}

static void
s_progress (al_envelope_t *envelope, Airlock__DeployProgress *progress, const char *deployment,
            Airlock__Step step, Airlock__Outcome outcome, uint32_t instance, uint32_t percent, const char *detail)
{
    airlock__deploy_progress__init (progress);
    progress->step = step;
    progress->outcome = outcome;
    progress->instance = instance;
    progress->instances = instance? 3: 0;
    progress->percent = percent;
    progress->detail = (char *) detail;
    airlock__envelope__init (envelope);
    envelope->deployment_id = (char *) deployment;
    envelope->timestamp_ms = 1700000000123ULL;
    envelope->body_case = AIRLOCK__ENVELOPE__BODY_DEPLOY_PROGRESS;
    envelope->deploy_progress = progress;
}

static void
s_receipt (al_envelope_t *envelope, Airlock__DeployReceipt *receipt, const char *deployment, Airlock__Outcome outcome)
{
    airlock__deploy_receipt__init (receipt);
    receipt->service = "api";
    receipt->version = "v2.0.0";
    receipt->artifact_sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    receipt->receipt_sha256 = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";
    receipt->outcome = outcome;
    if (outcome == AIRLOCK__OUTCOME__OUTCOME_ROLLED_BACK) {
        receipt->rollback_rule = "error_rate_increase";
        receipt->previous_version = "v1.9.0";
    }
    airlock__envelope__init (envelope);
    envelope->deployment_id = (char *) deployment;
    envelope->timestamp_ms = 1700000000123ULL;
    envelope->body_case = AIRLOCK__ENVELOPE__BODY_DEPLOY_RECEIPT;
    envelope->deploy_receipt = receipt;
}

static void
s_assert_contains (const char *text, const char *part)
{
    if (!strstr (text, part))
        fail_msg ("'%s' does not contain '%s'", text, part);
}

//  ---------------------------------------------------------------------------------

static void
test_deployment_topics_and_filter (void **state)
{
    (void) state;
    al_watch_view_t *view = al_watch_view_new_deployment ("rel-1-stg");
    assert_non_null (view);
    assert_int_equal (al_watch_view_topic_count (view), 2);
    assert_string_equal (al_watch_view_topic (view, 0), "event.DeployProgress");
    assert_string_equal (al_watch_view_topic (view, 1), "event.DeployReceipt");
    assert_true (al_watch_view_is_ours (view, "event.DeployReceipt"));
    assert_false (al_watch_view_is_ours (view, "event.DeployReceiptX"));
    assert_false (al_watch_view_is_ours (view, "event.DeployProgres"));

    al_envelope_t envelope;
    Airlock__DeployProgress progress;
    al_watch_item_t item;
    //  Another deployment: nothing to show.
    s_progress (&envelope, &progress, "rel-2-stg", AIRLOCK__STEP__STEP_ROLLOUT, AIRLOCK__OUTCOME__OUTCOME_STARTED,
                0, 0, "");
    al_watch_view_feed (view, "event.DeployProgress", &envelope, 7, 0, &item);
    assert_int_equal (item.show, AL_WATCH_SHOW_NOTHING);
    assert_null (item.json);
    //  Ours on a longer topic (a prefix match of the subscription): nothing either.
    s_progress (&envelope, &progress, "rel-1-stg", AIRLOCK__STEP__STEP_ROLLOUT, AIRLOCK__OUTCOME__OUTCOME_STARTED,
                0, 0, "");
    al_watch_view_feed (view, "event.DeployProgressX", &envelope, 7, 0, &item);
    assert_int_equal (item.show, AL_WATCH_SHOW_NOTHING);

    //  A step starting: the live line.
    al_watch_view_feed (view, "event.DeployProgress", &envelope, 8, 0, &item);
    assert_int_equal (item.show, AL_WATCH_SHOW_PROGRESS);
    assert_true (item.live);
    s_assert_contains (item.line, "[rollout] started");
    assert_string_equal (json_string_value (json_object_get (item.json, "deployment")), "rel-1-stg");
    assert_string_equal (json_string_value (json_object_get (item.json, "type")), "DeployProgress");
    assert_string_equal (json_string_value (json_object_get (item.json, "step")), "rollout");
    assert_string_equal (json_string_value (json_object_get (item.json, "outcome")), "started");
    assert_int_equal (json_integer_value (json_object_get (item.json, "sequence")), 8);
    assert_string_equal (json_string_value (json_object_get (item.json, "time")), "2023-11-14T22:13:20.123Z");
    json_decref (item.json);

    //  An instance ready, then a step running with its percent.
    s_progress (&envelope, &progress, "rel-1-stg", AIRLOCK__STEP__STEP_ROLLOUT, AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED,
                2, 67, "");
    al_watch_view_feed (view, "event.DeployProgress", &envelope, 9, 0, &item);
    assert_true (item.live);
    s_assert_contains (item.line, "[rollout] instance 2/3 ready  67%");
    json_decref (item.json);
    s_progress (&envelope, &progress, "rel-1-stg", AIRLOCK__STEP__STEP_SOAK, AIRLOCK__OUTCOME__OUTCOME_STARTED,
                0, 56, "sample 5");
    al_watch_view_feed (view, "event.DeployProgress", &envelope, 10, 0, &item);
    s_assert_contains (item.line, "[soak] running  56%  sample 5");
    json_decref (item.json);
    //  A step's result: history, not the live line.
    s_progress (&envelope, &progress, "rel-1-stg", AIRLOCK__STEP__STEP_SOAK, AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED,
                0, 0, "");
    al_watch_view_feed (view, "event.DeployProgress", &envelope, 11, 0, &item);
    assert_false (item.live);
    s_assert_contains (item.line, "[soak] succeeded");
    json_decref (item.json);

    //  The receipt ends it, with its outcome.
    Airlock__DeployReceipt receipt;
    s_receipt (&envelope, &receipt, "rel-1-stg", AIRLOCK__OUTCOME__OUTCOME_ROLLED_BACK);
    al_watch_view_feed (view, "event.DeployReceipt", &envelope, 3, 0, &item);
    assert_int_equal (item.show, AL_WATCH_SHOW_RECEIPT);
    assert_false (item.succeeded);
    s_assert_contains (item.line, "[receipt] api v2.0.0 rolled back, rule error_rate_increase, previous version v1.9.0");
    assert_string_equal (json_string_value (json_object_get (item.json, "outcome")), "rolled_back");
    assert_string_equal (json_string_value (json_object_get (item.json, "rollback_rule")), "error_rate_increase");
    assert_true (json_is_array (json_object_get (item.json, "steps")));
    json_decref (item.json);
    s_receipt (&envelope, &receipt, "rel-1-stg", AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED);
    al_watch_view_feed (view, "event.DeployReceipt", &envelope, 4, 0, &item);
    assert_true (item.succeeded);
    assert_null (json_object_get (item.json, "rollback_rule"));
    json_decref (item.json);
    //  A deployment watch never breaches.
    assert_false (al_watch_view_breached (view));
    al_watch_view_destroy (&view);
    assert_null (view);
    al_watch_view_destroy (&view);
}

static void
test_signals_judged_by_rules (void **state)
{
    (void) state;
    al_policy_thresholds_t thresholds = rf_thresholds ();
    al_watch_view_t *view = al_watch_view_new_signals ("api", "staging", &thresholds);
    assert_non_null (view);
    assert_int_equal (al_watch_view_topic_count (view), 1);
    assert_string_equal (al_watch_view_topic (view, 0), "soak.staging.api");
    assert_false (al_watch_view_is_ours (view, "soak.staging.api-v2"));
    //  The same samples through deploy/al_rules directly: the view must agree.
    al_rules_stream_t *rules = al_rules_stream_new (&thresholds, 0);
    assert_non_null (rules);

    Airlock__SoakSignal samples [6];
    for (int index = 0; index < 6; index++)
        samples [index] = s_sample ((uint64_t) index + 1, index < 2);
    samples [3].cpu_percent = 95;                               // one spike: over, no breach
    samples [5].no_evidence = AL_RULES_SIGNAL_LATENCY;          // latency missing: breach
    samples [5].latency_p50_ms = samples [5].latency_p99_ms = 0;
    for (int index = 0; index < 6; index++) {
        al_envelope_t envelope;
        airlock__envelope__init (&envelope);
        envelope.body_case = AIRLOCK__ENVELOPE__BODY_SOAK_SIGNAL;
        envelope.soak_signal = &samples [index];
        envelope.timestamp_ms = 1700000000123ULL;
        al_watch_item_t item;
        //  A neighbouring service's topic: not shown, not judged.
        al_watch_view_feed (view, "soak.staging.api-v2", &envelope, 100, index, &item);
        assert_int_equal (item.show, AL_WATCH_SHOW_NOTHING);

        al_watch_view_feed (view, "soak.staging.api", &envelope, (uint64_t) index + 1, index, &item);
        assert_int_equal (item.show, AL_WATCH_SHOW_SIGNAL);
        al_rules_row_t rows [AL_RULES_ROWS];
        bool judged = false;
        al_rules_result_t verdict = al_rules_stream_feed (rules, &samples [index], index, rows, AL_RULES_ROWS, &judged);
        json_t *json = item.json;
        assert_int_equal (json_is_true (json_object_get (json, "judged")), judged);
        assert_int_equal (json_is_true (json_object_get (json, "baseline")), index < 2);
        assert_int_equal (item.breach, judged && verdict.verdict == AL_RULES_BREACH);
        assert_int_equal (json_is_true (json_object_get (json, "breach")), item.breach);
        json_t *checks = json_object_get (json, "checks");
        for (int row = 0; row < AL_RULES_ROWS; row++) {
            json_t *check = json_object_get (checks, rows [row].rule);
            assert_non_null (check);
            assert_string_equal (json_string_value (json_object_get (check, "status")),
                                 al_rules_row_status_name (rows [row].status));
            char value [32];
            al_watch_row_value (&rows [row], value, sizeof value);
            s_assert_contains (item.table [2 + row], value);
            s_assert_contains (item.table [2 + row], al_rules_row_status_name (rows [row].status));
        }
        if (judged)
            assert_string_equal (json_string_value (json_object_get (json_object_get (json, "verdict"), "verdict")),
                                 al_rules_verdict_name (verdict.verdict));
        else {
            assert_null (json_object_get (json, "verdict"));
            s_assert_contains (item.line, "not judged (a baseline sample)");
        }
        if (index == 3) {
            //  A single spike is over, not a breach.
            assert_string_equal (json_string_value (json_object_get (json_object_get (checks, "cpu_percent"),
                                                                     "status")), "over");
            assert_false (item.breach);
            s_assert_contains (item.line, "cpu_percent 95.00% (max 80.00%) over");
        }
        if (index == 5) {
            //  Missing evidence: missing, null, listed, and a breach.
            assert_true (item.breach);
            assert_true (json_is_null (json_object_get (json, "latency_p50_ms")));
            json_t *missing = json_object_get (json, "missing");
            assert_int_equal (json_array_size (missing), 1);
            assert_string_equal (json_string_value (json_array_get (missing, 0)), "latency");
            s_assert_contains (item.line, "missing_evidence missing");
            s_assert_contains (item.table [0], "BREACH api in staging: sample #6");
        }
        json_decref (item.json);
    }
    assert_true (al_watch_view_breached (view));
    assert_true (al_rules_stream_breached (rules));
    al_rules_stream_destroy (&rules);
    al_watch_view_destroy (&view);
}

static void
test_row_text (void **state)
{
    (void) state;
    al_rules_row_t row = { .rule = "error_rate_increase", .unit = "%", .status = AL_RULES_ROW_OK,
                           .value = 1.25, .limit = NAN };
    char text [32];
    al_watch_row_value (&row, text, sizeof text);
    assert_string_equal (text, "1.25%");
    al_watch_row_limit (&row, text, sizeof text);
    assert_string_equal (text, "-");
    row.unit = "ms";
    row.value = 150;
    al_watch_row_value (&row, text, sizeof text);
    assert_string_equal (text, "150.0 ms");
    //  Missing evidence never shows as a number that passes.
    row.status = AL_RULES_ROW_MISSING;
    row.value = 0;
    al_watch_row_value (&row, text, sizeof text);
    assert_string_equal (text, "missing");
}

//  ---- the audit log's answer -------------------------------------------------------

typedef struct {
    char dir [256];
    al_config_t *config;
} s_state_t;

static void
s_write (const char *path, const char *text)
{
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    assert_true (fputs (text, file) >= 0);
    assert_int_equal (fclose (file), 0);
}

static int
s_state_setup (void **state)
{
    s_state_t *self = calloc (1, sizeof *self);
    assert_non_null (self);
    snprintf (self->dir, sizeof self->dir, "/tmp/test_watch_view.XXXXXX");
    assert_non_null (mkdtemp (self->dir));
    char path [512], text [512];
    snprintf (path, sizeof path, "%s/airlock.yaml", self->dir);
    snprintf (text, sizeof text, "state_dir: %s\n", self->dir);
    s_write (path, text);
    char error [512] = "";
    self->config = al_config_load (path, error, sizeof error);
    if (!self->config)
        fail_msg ("airlock.yaml: %s", error);
    *state = self;
    return 0;
}

static int
s_state_teardown (void **state)
{
    s_state_t *self = *state;
    al_config_destroy (&self->config);
    char command [400];
    snprintf (command, sizeof command, "rm -rf '%s'", self->dir);
    assert_int_equal (system (command), 0);
    free (self);
    return 0;
}

//  Append a DeployReceipt of DEPLOYMENT to the state directory's audit log.
static void
s_log_receipt (s_state_t *self, const char *deployment, Airlock__Outcome outcome)
{
    char error [512] = "";
    al_store_options_t options = { .create = true };
    al_store_t *store = al_store_open (al_config_store_backend (self->config), al_config_store_location (self->config),
                                       &options, error, sizeof error);
    if (!store)
        fail_msg ("store: %s", error);
    al_envelope_t envelope;
    Airlock__DeployReceipt receipt;
    s_receipt (&envelope, &receipt, deployment, outcome);
    char message_id [128];
    snprintf (message_id, sizeof message_id, "deploy-manager-%s", deployment);
    envelope.message_id = message_id;
    envelope.environment = AIRLOCK__ENVIRONMENT__ENV_STAGING;
    uint8_t *bytes = NULL;
    size_t size = 0;
    assert_int_equal (al_codec_pack (&envelope, &bytes, &size, error, sizeof error), AL_CODEC_OK);
    al_store_event_t event = {
        .time_ms = 1700000000123ULL, .sender = "deploy-manager", .role = "deploy-manager",
        .type = "DeployReceipt", .message_id = message_id, .deployment_id = deployment,
        .environment = "staging", .decision = AL_STORE_ACCEPTED, .reason = "",
        .envelope = bytes, .envelope_size = size,
    };
    al_store_append_result_t result;
    assert_int_equal (al_store_begin (store), AL_STORE_OK);
    if (al_store_append (store, &event, &result) != AL_STORE_OK)
        fail_msg ("append: %s", al_store_error (store));
    if (al_store_commit (store) != AL_STORE_OK)
        fail_msg ("commit: %s", al_store_error (store));
    free (bytes);
    al_store_destroy (&store);
}

static void
test_ask_log (void **state)
{
    s_state_t *self = *state;
    al_watch_item_t item;
    char message [1400];
    //  No audit log yet: say so, and watch live.
    assert_int_equal (al_watch_view_ask_log (self->config, "rel-1-stg", &item, message, sizeof message),
                      AL_WATCH_LOG_UNREADABLE);
    s_assert_contains (message, "cannot read the audit log");
    s_assert_contains (message, "watching live");
    assert_null (item.json);

    //  A log that does not know it, and no release: unknown.
    s_log_receipt (self, "rel-0-stg", AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED);
    assert_int_equal (al_watch_view_ask_log (self->config, "rel-1-stg", &item, message, sizeof message),
                      AL_WATCH_LOG_UNKNOWN);
    s_assert_contains (message, "no such deployment: rel-1-stg (not in the audit log");

    //  A release the orchestrator holds: its deployment is waited for; its own id is not
    //  a deployment.
    char path [512];
    snprintf (path, sizeof path, "%s/orchestrator", self->dir);
    assert_int_equal (zsys_dir_create ("%s/releases", path), 0);
    snprintf (path, sizeof path, "%s/orchestrator/releases/rel-1.json", self->dir);
    s_write (path, "{\"id\": \"rel-1\", \"state\": \"STAGING\"}\n");
    assert_int_equal (al_watch_view_ask_log (self->config, "rel-1-stg", &item, message, sizeof message),
                      AL_WATCH_LOG_LIVE);
    assert_string_equal (message, "rel-1-stg has not started yet (release rel-1 is STAGING): waiting for it");
    assert_int_equal (al_watch_view_ask_log (self->config, "rel-1", &item, message, sizeof message),
                      AL_WATCH_LOG_IS_RELEASE);
    s_assert_contains (message, "it is a release: watch rel-1-stg for staging or rel-1-prod for production");

    //  Finished: the log's receipt, with its outcome.
    s_log_receipt (self, "rel-1-stg", AIRLOCK__OUTCOME__OUTCOME_ROLLED_BACK);
    assert_int_equal (al_watch_view_ask_log (self->config, "rel-1-stg", &item, message, sizeof message),
                      AL_WATCH_LOG_FINISHED);
    assert_string_equal (message, "");
    assert_int_equal (item.show, AL_WATCH_SHOW_RECEIPT);
    assert_false (item.succeeded);
    s_assert_contains (item.line, "rel-1-stg [receipt] api v2.0.0");
    s_assert_contains (item.line, "audit row #2");
    assert_string_equal (json_string_value (json_object_get (item.json, "source")), "audit log");
    assert_int_equal (json_integer_value (json_object_get (item.json, "sequence")), 2);
    json_decref (item.json);
    assert_int_equal (al_watch_view_ask_log (self->config, "rel-0-stg", &item, message, sizeof message),
                      AL_WATCH_LOG_FINISHED);
    assert_true (item.succeeded);
    json_decref (item.json);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_deployment_topics_and_filter),
        cmocka_unit_test (test_signals_judged_by_rules),
        cmocka_unit_test (test_row_text),
        cmocka_unit_test_setup_teardown (test_ask_log, s_state_setup, s_state_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
