/*  agents_test_util.c: the real agents around a broker, for end-to-end soak tests
    (see agents_test_util.h). test_monitor, test_prometheus_soak and test_canary_soak use it.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include "agents_test_util.h"
#include "deploy_test_util.h"
#include "proto/al_codec.h"
#include "store/al_store.h"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define S_RECEIPT_DEADLINE_MS 90000

static pid_t
s_start (atu_fixture_t *self, const char *role, int interval_ms)
{
    char log [400], airlock [400], interval [32];
    snprintf (log, sizeof log, "%s/%s.log", self->harness->dir, role);
    snprintf (airlock, sizeof airlock, "%s/airlock", getenv ("AIRLOCK_BINARY_DIR"));
    snprintf (interval, sizeof interval, "%d", interval_ms);
    pid_t pid = fork ();
    assert_true (pid >= 0);
    if (pid == 0) {
        FILE *out = freopen (log, "a", stderr);
        (void) out;
        if (interval_ms > 0)
            execl (airlock, airlock, "agent", role, "--config", self->harness->config_path, "--interval-ms",
                   interval, (char *) NULL);
        else
            execl (airlock, airlock, "agent", role, "--config", self->harness->config_path, (char *) NULL);
        _exit (127);
    }
    return pid;
}

void
atu_stop (pid_t *pid)
{
    if (*pid <= 0)
        return;
    kill (*pid, SIGTERM);
    waitpid (*pid, NULL, 0);
    *pid = 0;
}

static void
s_save_cert (harness_t *h, const char *role)
{
    char path [600];
    snprintf (path, sizeof path, "%s/keys", h->dir);
    mkdir (path, 0700);
    snprintf (path, sizeof path, "%s/keys/%s.cert", h->dir, role);
    assert_int_equal (zcert_save ((zcert_t *) zhashx_lookup (h->certs, role), path), 0);
}

atu_fixture_t *
atu_new (void)
{
    atu_fixture_t *self = calloc (1, sizeof *self);
    assert_non_null (self);
    static const harness_identity_t identities [] = {
        { "orchestrator", "orchestrator" }, { "deploy-manager", "deploy-manager" }, { "monitor", "monitor" },
        { "auditor", "auditor" },
    };
    self->harness = harness_new (NULL, identities, sizeof identities / sizeof identities [0]);
    assert_non_null (self->harness);
    s_save_cert (self->harness, "deploy-manager");
    s_save_cert (self->harness, "monitor");
    s_save_cert (self->harness, "auditor");
    dtu_open_calendar (self->harness->policy_dir);
    snprintf (self->deploy_state, sizeof self->deploy_state, "%s/deploy", self->harness->dir);
    snprintf (self->services_path, sizeof self->services_path, "%s/services.yaml", self->harness->dir);
    return self;
}

void
atu_start (atu_fixture_t *self, int monitor_interval_ms)
{
    harness_t *h = self->harness;
    assert_int_equal (harness_broker_start (h), 0);
    self->orchestrator = harness_client (h, "orchestrator", NULL);
    assert_non_null (self->orchestrator);
    harness_register (self->orchestrator, "reg-1", false);
    al_envelope_t *answer = harness_recv (self->orchestrator, 5000);
    assert_non_null (answer);
    al_codec_free (&answer);
    self->deploy_manager = s_start (self, "deploy-manager", 0);
    self->monitor = s_start (self, "monitor", monitor_interval_ms);
    //  Both registered before anything is asked of them (pre-flight needs the monitor).
    assert_true (harness_wait_rows (h, "Register", "monitor", NULL, 1, 20000) >= 1);
    assert_true (harness_wait_rows (h, "Register", "deploy-manager", NULL, 1, 20000) >= 1);
}

void
atu_destroy (atu_fixture_t **self_p)
{
    atu_fixture_t *self = *self_p;
    if (!self)
        return;
    atu_stop (&self->monitor);
    atu_stop (&self->deploy_manager);
    zsock_destroy (&self->orchestrator);
    harness_destroy (&self->harness);
    free (self);
    *self_p = NULL;
}

al_envelope_t *
atu_roundtrip (atu_fixture_t *self, zsock_t *client, al_envelope_t *envelope)
{
    char id [32];
    snprintf (id, sizeof id, "m-%d", ++self->counter);
    envelope->message_id = id;
    assert_int_equal (harness_send (client, envelope), 0);
    for (int tries = 0; tries < 50; tries++) {
        al_envelope_t *answer = harness_recv (client, 5000);
        assert_non_null (answer);
        if ((answer->body_case == AIRLOCK__ENVELOPE__BODY_ACK && strcmp (answer->ack->acked_message_id, id) == 0)
        ||  (answer->body_case == AIRLOCK__ENVELOPE__BODY_DENIED && strcmp (answer->denied->denied_message_id, id) == 0))
            return answer;
        al_codec_free (&answer);
    }
    fail_msg ("no answer to %s", id);
    return NULL;
}

bool
atu_soak_started (atu_fixture_t *self, const char *deployment_id)
{
    al_store_options_t options = { .read_only = true };
    char error [512];
    al_store_t *store = al_store_open (NULL, self->harness->database, &options, error, sizeof error);
    assert_non_null (store);
    bool started = false;
    al_store_iter_t *iter = al_store_iter_new (store, 1);
    al_store_event_t event;
    while (!started && iter && al_store_iter_next (iter, &event) == AL_STORE_OK) {
        if (strcmp (event.type, "DeployProgress") != 0 || strcmp (event.deployment_id, deployment_id) != 0)
            continue;
        al_envelope_t *envelope = NULL;
        if (al_codec_unpack (event.envelope, event.envelope_size, 0, &envelope, error, sizeof error) == AL_CODEC_OK)
            started = envelope->deploy_progress->journal && envelope->deploy_progress->step == AIRLOCK__STEP__STEP_SOAK
                   && envelope->deploy_progress->outcome == AIRLOCK__OUTCOME__OUTCOME_STARTED;
        al_codec_free (&envelope);
    }
    al_store_iter_destroy (&iter);
    al_store_destroy (&store);
    return started;
}

int
atu_complete_samples (atu_fixture_t *self, const char *deployment_id, const char *source, const char *version,
                      double *mean_rps, double *max_error_ratio)
{
    double rps_sum = 0, error_max = 0;
    al_store_options_t options = { .read_only = true };
    char error [512];
    al_store_t *store = al_store_open (NULL, self->harness->database, &options, error, sizeof error);
    assert_non_null (store);
    int complete = 0;
    al_store_iter_t *iter = al_store_iter_new (store, 1);
    al_store_event_t event;
    while (iter && al_store_iter_next (iter, &event) == AL_STORE_OK) {
        if (strcmp (event.type, "SoakSignal") != 0 || strcmp (event.deployment_id, deployment_id) != 0)
            continue;
        al_envelope_t *envelope = NULL;
        if (al_codec_unpack (event.envelope, event.envelope_size, 0, &envelope, error, sizeof error) != AL_CODEC_OK)
            continue;
        const Airlock__SoakSignal *sample = envelope->soak_signal;
        if (sample && sample->source && strcmp (sample->source, source) == 0 && sample->version
        &&  strcmp (sample->version, version) == 0 && sample->no_evidence == 0 && sample->requests_per_second > 0
        &&  sample->instances_up > 0) {
            complete++;
            rps_sum += sample->requests_per_second;
            if (sample->error_ratio > error_max)
                error_max = sample->error_ratio;
        }
        al_codec_free (&envelope);
    }
    al_store_iter_destroy (&iter);
    al_store_destroy (&store);
    if (mean_rps)
        *mean_rps = complete? rps_sum / complete: 0;
    if (max_error_ratio)
        *max_error_ratio = error_max;
    return complete;
}

char *
atu_monitor_log (atu_fixture_t *self)
{
    char path [700];
    snprintf (path, sizeof path, "%s/monitor.log", self->harness->dir);
    char *log = dtu_read (path);
    return log? log: strdup ("");
}

json_t *
atu_deploy (atu_fixture_t *self, const char *service, const char *deployment_id, const char *version,
            const char *faults, atu_soak_fn *on_soak, void *arg)
{
    char artifact [1024], sha [65], name [64];
    snprintf (name, sizeof name, "%s-%s", service, version);
    dtu_artifact (self->harness->dir, name, version, faults, artifact, sizeof artifact, sha);
    Airlock__DeployRequest request = AIRLOCK__DEPLOY_REQUEST__INIT;
    request.service = (char *) service;
    request.version = (char *) version;
    request.artifact_uri = artifact;
    request.artifact_sha256 = sha;
    request.deployment_type = AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD;
    al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
    envelope.deployment_id = (char *) deployment_id;
    envelope.environment = AIRLOCK__ENVIRONMENT__ENV_STAGING;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_DEPLOY_REQUEST;
    envelope.deploy_request = &request;
    al_envelope_t *answer = atu_roundtrip (self, self->orchestrator, &envelope);
    assert_int_equal (answer->body_case, AIRLOCK__ENVELOPE__BODY_ACK);
    al_codec_free (&answer);
    char path [700];
    snprintf (path, sizeof path, "%s/.artifacts/deployment/%s/deploy_receipt.json", self->deploy_state, deployment_id);
    bool called = false;
    for (int waited = 0; waited < S_RECEIPT_DEADLINE_MS; waited += 100) {
        json_t *root = json_load_file (path, 0, NULL);
        if (root)
            return root;
        if (on_soak && !called && atu_soak_started (self, deployment_id)) {
            on_soak (self, arg);
            called = true;
        }
        zclock_sleep (100);
    }
    char *monitor = atu_monitor_log (self);
    snprintf (path, sizeof path, "%s/deploy-manager.log", self->harness->dir);
    char *manager = dtu_read (path);
    fail_msg ("no receipt for %s\n-- monitor:\n%s\n-- deploy-manager:\n%s", deployment_id, monitor,
              manager? manager: "");
    return NULL;
}

void
atu_expect (json_t *receipt, const char *outcome, const char *rule)
{
    const char *got = json_string_value (json_object_get (receipt, "outcome"));
    const char *got_rule = json_string_value (json_object_get (receipt, "rollback_rule"));
    if (!got || !got_rule || strcmp (got, outcome) != 0 || strcmp (got_rule, rule) != 0)
        fail_msg ("receipt %s: outcome %s rule %s (expected %s, %s): %s",
                  json_string_value (json_object_get (receipt, "deployment_id")), got? got: "(none)",
                  got_rule? got_rule: "(none)", outcome, rule,
                  json_string_value (json_object_get (receipt, "detail")));
    if (*rule) {
        json_t *trigger = json_object_get (receipt, "rollback_trigger");
        assert_true (json_is_object (trigger));
        assert_string_equal (json_string_value (json_object_get (trigger, "rule")), rule);
        assert_true (json_array_size (json_object_get (trigger, "samples")) >= 1);
    }
}
