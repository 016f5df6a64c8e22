/*  test_monitor.c: automatic rollback on the monitor's golden signals, with real processes.

    The broker (broker_under_test), deploy-manager and the monitor (the airlock binary,
    `airlock agent ...`, the monitor scraping every 250 ms), demo-service instances with
    background traffic from the test. services.yaml says signals: monitor, so the soak
    depends on the monitor's evidence. Shown here:
      - a healthy release passes its soak on the monitor's samples;
      - a release with injected errors, one with added latency and one burning CPU are
        each rolled back automatically, and the receipt names the rule that broke and
        carries the samples that broke it;
      - the baseline taken before each rollout is stored;
      - the samples are on the PUB socket (topic soak.staging.demo) in sequence;
      - with the monitor stopped, nothing deploys (pre-flight needs a live monitor);
      - a probes-only service is neither judged by the monitor nor rolled back by a
        RollbackTrigger (deploy-manager ignores it and says so in the audit log).
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include "../broker/harness.h"
#include "agents_test_util.h"
#include "deploy_test_util.h"
#include "agents/al_subscriber.h"
#include "base/al_config.h"
#include "proto/al_codec.h"
#include "store/al_store.h"
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    atu_fixture_t *agents;
    dtu_traffic_t *traffic;
} s_fixture_t;

static int
s_setup (void **state)
{
    s_fixture_t *f = calloc (1, sizeof *f);
    assert_non_null (f);
    f->agents = atu_new ();
    FILE *file = fopen (f->agents->services_path, "w");
    assert_non_null (file);
    //  demo: judged on the standard names by default; CPU as a share of a quarter of a
    //  core, so a thread burning a core breaches even when the loaded, shared test machine
    //  gives it a fraction of one (the healthy demo uses a few percent of a core).
    //  burner: a fiftieth of a core, so that a thread burning a core breaches cpu_percent
    //  however little of a core a loaded machine gives it (seen: a quarter-core limit was
    //  not enough at a load average of 12 on 2 cores); it gets no traffic, so nothing
    //  else of it can breach. quiet: probes only, never judged on metrics. promsvc: read
    //  through Prometheus queries of a server that is not there; nothing of it runs or is
    //  watched, so it is never queried (tests/deploy/test_prometheus_soak.c runs the
    //  provider against a real one).
    fprintf (file, "version: 1\nservices:\n  demo:\n    driver: process\n    instances: 2\n    strategy: rolling\n"
                   "    soak_ms: 3000\n    probe_interval_ms: 100\n    ready_timeout_ms: 10000\n"
                   "    stop_timeout_ms: 3000\n    signals: monitor\n    resources: { cpu_cores: 0.25 }\n"
                   "    command: [\"{{artifact}}\"]\n"
                   "  burner:\n    driver: process\n    instances: 1\n    strategy: rolling\n"
                   "    soak_ms: 3000\n    probe_interval_ms: 100\n    ready_timeout_ms: 10000\n"
                   "    stop_timeout_ms: 3000\n    resources: { cpu_cores: 0.02 }\n"
                   "    command: [\"{{artifact}}\"]\n"
                   "  quiet:\n    driver: process\n    instances: 1\n    soak_ms: 4000\n    probe_interval_ms: 100\n"
                   "    ready_timeout_ms: 10000\n    stop_timeout_ms: 3000\n    signals: probes\n"
                   "    command: [\"{{artifact}}\"]\n"
                   "  promsvc:\n    driver: process\n    command: [\"{{artifact}}\"]\n    signals:\n"
                   "      source: prometheus\n      prometheus:\n        url: http://127.0.0.1:9\n"
                   "        queries: { requests_per_second: a, error_ratio: b, latency_p50_ms: c, latency_p99_ms: d,"
                   " cpu_percent: e, memory_percent: f }\n");
    fclose (file);
    //  Both agents registered with the broker before anything is asked of them (a
    //  deploy that finds no monitor yet is refused in pre-flight: that is the point).
    atu_start (f->agents, 250);
    f->traffic = dtu_traffic_start (f->agents->deploy_state, "demo", "staging", 40);
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    s_fixture_t *f = *state;
    dtu_traffic_stop (&f->traffic);
    atu_destroy (&f->agents);
    free (f);
    return 0;
}

//  Does an audit row of type hold text in its envelope?
static bool
s_audit_has (s_fixture_t *f, const char *type, const char *text)
{
    al_store_options_t options = { .read_only = true };
    char error [512];
    al_store_t *store = al_store_open (NULL, f->agents->harness->database, &options, error, sizeof error);
    assert_non_null (store);
    bool found = false;
    al_store_iter_t *iter = al_store_iter_new (store, 1);
    al_store_event_t event;
    while (!found && iter && al_store_iter_next (iter, &event) == AL_STORE_OK)
        found = strcmp (event.type, type) == 0
             && memmem (event.envelope, event.envelope_size, text, strlen (text)) != NULL;
    al_store_iter_destroy (&iter);
    al_store_destroy (&store);
    return found;
}

static json_t *s_deploy_service (s_fixture_t *f, const char *service, const char *deployment_id,
                                 const char *version, const char *faults, zsock_t *forger);

//  Deploy a release of demo to staging and return its receipt (caller decrefs).
static json_t *
s_deploy (s_fixture_t *f, const char *deployment_id, const char *version, const char *faults)
{
    return s_deploy_service (f, "demo", deployment_id, version, faults, NULL);
}

//  A RollbackTrigger for service's deployment_id, as a monitor would send it.
static void
s_forge_trigger (atu_fixture_t *agents, zsock_t *forger, const char *service, const char *deployment_id)
{
    Airlock__RollbackTrigger trigger = AIRLOCK__ROLLBACK_TRIGGER__INIT;
    trigger.service = (char *) service;
    trigger.rule = (char *) "error_rate_increase";
    trigger.detail = (char *) "forged by the test";
    al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
    envelope.deployment_id = (char *) deployment_id;
    envelope.environment = AIRLOCK__ENVIRONMENT__ENV_STAGING;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_ROLLBACK_TRIGGER;
    envelope.rollback_trigger = &trigger;
    al_envelope_t *answer = atu_roundtrip (agents, forger, &envelope);
    assert_int_equal (answer->body_case, AIRLOCK__ENVELOPE__BODY_ACK);
    al_codec_free (&answer);
}

typedef struct {
    zsock_t *forger;
    const char *service;
    const char *deployment_id;
} s_forgery_t;

static void
s_forge (atu_fixture_t *agents, void *arg)
{
    s_forgery_t *forgery = (s_forgery_t *) arg;
    s_forge_trigger (agents, forgery->forger, forgery->service, forgery->deployment_id);
}

//  Deploy a release of service to staging and return its receipt (caller decrefs). With
//  a forger, a RollbackTrigger is sent from it once the soak has started.
static json_t *
s_deploy_service (s_fixture_t *f, const char *service, const char *deployment_id, const char *version,
                  const char *faults, zsock_t *forger)
{
    s_forgery_t forgery = { forger, service, deployment_id };
    return atu_deploy (f->agents, service, deployment_id, version, faults, forger? s_forge: NULL, &forgery);
}

static void
s_expect (json_t *receipt, const char *outcome, const char *rule)
{
    atu_expect (receipt, outcome, rule);
}

static void
test_soak_on_golden_signals (void **state)
{
    s_fixture_t *f = *state;
    json_t *receipt = s_deploy (f, "m-1", "v1", NULL);
    s_expect (receipt, "succeeded", "");
    json_decref (receipt);
    //  Let the baseline of v1 fill with traffic.
    zclock_sleep (2000);
    receipt = s_deploy (f, "m-2", "v2", NULL);
    s_expect (receipt, "succeeded", "");
    json_decref (receipt);
    char path [700];
    snprintf (path, sizeof path, "%s/monitor/baselines/m-2.json", f->agents->harness->dir);
    json_t *baseline = json_load_file (path, 0, NULL);
    assert_non_null (baseline);
    assert_true (json_integer_value (json_object_get (baseline, "samples_with_traffic")) >= 1);
    json_decref (baseline);

    zclock_sleep (1500);
    receipt = s_deploy (f, "m-3", "v3", "--error-rate 0.6");
    s_expect (receipt, "rolled_back", "error_rate_increase");
    json_decref (receipt);
    zclock_sleep (1500);
    receipt = s_deploy (f, "m-4", "v4", "--latency-ms 150");
    s_expect (receipt, "rolled_back", "latency_p99_factor");
    json_decref (receipt);
    zclock_sleep (1500);
    receipt = s_deploy_service (f, "burner", "m-5", "v5", "--cpu-burn 100", NULL);
    s_expect (receipt, "rolled_back", "cpu_percent");
    json_decref (receipt);
    int with_version = 0, total = 0;
    dtu_count (f->agents->deploy_state, "demo", "staging", "v2", &with_version, &total);
    assert_int_equal (with_version, 2);
    assert_int_equal (total, 2);
}

//  A fix deployed over a broken release: the errors of the instances it replaces are not
//  its own. v1 answers every /work with 500 but had no traffic (its soak passed, the
//  baseline before v2 is clean); traffic starts with v2's rollout and still reaches v1's
//  instances while v2's warm up. v2 is judged on its own instances and stays.
static void
test_judged_on_its_own_instances (void **state)
{
    s_fixture_t *f = *state;
    dtu_traffic_stop (&f->traffic);
    json_t *receipt = s_deploy (f, "o-1", "v1", "--error-rate 1");
    s_expect (receipt, "succeeded", "");
    json_decref (receipt);
    zclock_sleep (1000);
    f->traffic = dtu_traffic_start (f->agents->deploy_state, "demo", "staging", 40);
    receipt = s_deploy (f, "o-2", "v2", "--ready-delay-ms 1500");
    s_expect (receipt, "succeeded", "");
    json_decref (receipt);
    int with_version = 0, total = 0;
    dtu_count (f->agents->deploy_state, "demo", "staging", "v2", &with_version, &total);
    assert_int_equal (with_version, 2);
    //  The monitor did see v1's errors while v2 rolled out: the service's samples said so.
    char path [700];
    snprintf (path, sizeof path, "%s/monitor.log", f->agents->harness->dir);
    char *log = dtu_read (path);
    assert_non_null (log);
    assert_null (strstr (log, "RollbackTrigger sent for o-2"));
    free (log);
}

//  A probes-only service is never judged on metrics: the monitor neither scrapes it nor
//  sends a trigger for it, even when every /work answers 500 under traffic, and
//  deploy-manager ignores a RollbackTrigger for it (said in the audit log).
static void
test_probes_only_never_rolled_back_on_metrics (void **state)
{
    s_fixture_t *f = *state;
    dtu_traffic_t *traffic = dtu_traffic_start (f->agents->deploy_state, "quiet", "staging", 40);
    json_t *receipt = s_deploy_service (f, "quiet", "q-1", "v1", NULL, NULL);
    s_expect (receipt, "succeeded", "");
    json_decref (receipt);
    receipt = s_deploy_service (f, "quiet", "q-2", "v2", "--error-rate 1", NULL);
    s_expect (receipt, "succeeded", "");
    json_decref (receipt);
    int with_version = 0, total = 0;
    dtu_count (f->agents->deploy_state, "quiet", "staging", "v2", &with_version, &total);
    assert_int_equal (with_version, 1);
    //  The monitor judged nothing of it: no RollbackTrigger in the audit log at all, and
    //  no sample of quiet (or of promsvc, whose source is Prometheus and which never ran) was ever sent.
    assert_int_equal (harness_count_rows (f->agents->harness, "RollbackTrigger", NULL, NULL), 0);
    assert_false (s_audit_has (f, "SoakSignal", "quiet"));
    assert_false (s_audit_has (f, "SoakSignal", "promsvc"));

    //  A trigger from a monitor identity (the real monitor stopped: a probes service's
    //  pre-flight does not need it) during q-3's soak is ignored; the release stays.
    atu_stop (&f->agents->monitor);
    zsock_t *forger = harness_client (f->agents->harness, "monitor", NULL);
    assert_non_null (forger);
    harness_register (forger, "reg-forger", false);
    al_envelope_t *answer = harness_recv (forger, 5000);
    assert_non_null (answer);
    al_codec_free (&answer);
    receipt = s_deploy_service (f, "quiet", "q-3", "v3", "--error-rate 1", forger);
    s_expect (receipt, "succeeded", "");
    json_decref (receipt);
    dtu_count (f->agents->deploy_state, "quiet", "staging", "v3", &with_version, &total);
    assert_int_equal (with_version, 1);
    //  The forged trigger was delivered, and its reason is in the audit log: a DeployProgress of deploy-manager carries it.
    assert_true (s_audit_has (f, "DeployProgress", "RollbackTrigger ignored: quiet uses signals: probes"));
    zsock_destroy (&forger);
    dtu_traffic_stop (&traffic);
}

static void
test_samples_on_pub_and_no_monitor_no_deploy (void **state)
{
    s_fixture_t *f = *state;
    json_t *receipt = s_deploy (f, "p-1", "v1", NULL);
    s_expect (receipt, "succeeded", "");
    json_decref (receipt);
    //  The monitor's samples on the PUB socket, in sequence.
    char error [512];
    al_config_t *config = al_config_load (f->agents->harness->config_path, error, sizeof error);
    assert_non_null (config);
    al_subscriber_t *subscriber = al_subscriber_new (config, "auditor", error, sizeof error);
    if (!subscriber)
        fail_msg ("subscriber: %s", error);
    assert_int_equal (al_subscriber_subscribe (subscriber, "soak.staging.demo"), 0);
    uint64_t previous = 0, missed_total = 0;
    int received = 0;
    for (int i = 0; i < 200 && received < 8; i++) {
        char topic [64];
        uint64_t sequence = 0, missed = 0;
        al_envelope_t *event = al_subscriber_recv (subscriber, 500, topic, sizeof topic, &sequence, &missed, NULL);
        if (!event)
            continue;
        assert_string_equal (topic, "soak.staging.demo");
        assert_int_equal (event->body_case, AIRLOCK__ENVELOPE__BODY_SOAK_SIGNAL);
        assert_string_equal (event->soak_signal->service, "demo");
        assert_int_equal (event->soak_signal->instances_total, 2);
        if (previous)
            assert_true (sequence == previous + 1 + missed);
        previous = sequence;
        missed_total += missed;
        received++;
        al_codec_free (&event);
    }
    assert_true (received >= 8);
    assert_int_equal (missed_total, 0);
    al_subscriber_destroy (&subscriber);
    al_config_destroy (&config);

    //  No monitor: pre-flight refuses, nothing changes.
    atu_stop (&f->agents->monitor);
    zclock_sleep (1500);        // the broker notices it is gone (heartbeats)
    receipt = s_deploy (f, "p-2", "v2", NULL);
    s_expect (receipt, "failed", "");
    const char *detail = json_string_value (json_object_get (receipt, "detail"));
    if (!strstr (detail, "monitor"))
        fail_msg ("detail: %s", detail);
    json_decref (receipt);
    int with_version = 0, total = 0;
    dtu_count (f->agents->deploy_state, "demo", "staging", "v1", &with_version, &total);
    assert_int_equal (with_version, 2);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_soak_on_golden_signals, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_judged_on_its_own_instances, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_probes_only_never_rolled_back_on_metrics, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_samples_on_pub_and_no_monitor_no_deploy, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
