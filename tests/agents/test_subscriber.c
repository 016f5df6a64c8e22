/*  test_subscriber.c: al_seqtrack_t (gap and restart accounting, driven directly) and
    al_subscriber_t against a real broker on an `airlock init` state directory.

    On the bus: events arrive in order with their topic, consecutive sequences and the
    sender the broker stamped; only subscribed topics arrive; a key outside
    identities.yaml is refused; a burst into a subscriber with a tiny receive high-water
    mark loses events and every lost one is accounted for as missed; a broker restart is
    reported as such, with the new run's lost events as missed. A fake CURVE publisher
    sends what the broker never does (undecodable, oversized, wrong framing): each is
    skipped, counted as malformed and shows as a gap.

    Subscriptions take effect asynchronously, so each test first "probes": it publishes
    events of a deployment named "probe" until one arrives. Probes are skipped when the
    results are checked; they are still sequenced, so they take part in the accounting.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "bus.h"
#include "agents/al_subscriber.h"

#include <czmq.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  ---- al_seqtrack_t ------------------------------------------------------------------

static void
test_seqtrack_first_next_and_gaps (void **state)
{
    (void) state;
    al_seqtrack_t *tracker = al_seqtrack_new ();
    assert_non_null (tracker);
    bool restarted = true;
    //  The first of a topic only initialises it, whatever its number.
    assert_int_equal (al_seqtrack_feed (tracker, "event.DeployProgress", 41, &restarted), 0);
    assert_false (restarted);
    assert_int_equal (al_seqtrack_feed (tracker, "event.DeployProgress", 42, &restarted), 0);
    assert_false (restarted);
    assert_int_equal (al_seqtrack_feed (tracker, "event.DeployProgress", 45, &restarted), 2);
    assert_false (restarted);
    assert_int_equal (al_seqtrack_feed (tracker, "event.DeployProgress", 46, NULL), 0);
    assert_int_equal (al_seqtrack_feed (tracker, "event.DeployProgress", 146, NULL), 99);
    assert_int_equal (al_seqtrack_last (tracker, "event.DeployProgress"), 146);
    assert_int_equal (al_seqtrack_last (tracker, "event.DeployReceipt"), 0);

    al_seqtrack_info_t info;
    al_seqtrack_info (tracker, &info);
    assert_int_equal (info.received, 5);
    assert_int_equal (info.missed, 101);
    assert_int_equal (info.restarts, 0);
    assert_int_equal (info.topics, 1);
    al_seqtrack_destroy (&tracker);
    assert_null (tracker);
    al_seqtrack_destroy (&tracker);
}

static void
test_seqtrack_restarts (void **state)
{
    (void) state;
    al_seqtrack_t *tracker = al_seqtrack_new ();
    assert_non_null (tracker);
    bool restarted = false;
    assert_int_equal (al_seqtrack_feed (tracker, "t", 10, &restarted), 0);
    assert_int_equal (al_seqtrack_feed (tracker, "t", 11, &restarted), 0);
    //  Back to 1: a new broker run, nothing of it missed.
    assert_int_equal (al_seqtrack_feed (tracker, "t", 1, &restarted), 0);
    assert_true (restarted);
    assert_int_equal (al_seqtrack_feed (tracker, "t", 2, &restarted), 0);
    assert_false (restarted);
    //  The same number again is a new run too, whose first event we missed.
    assert_int_equal (al_seqtrack_feed (tracker, "t", 2, &restarted), 1);
    assert_true (restarted);
    //  Back to 4 from 2 is impossible within a run... but 4 from 9 is a restart that
    //  lost 1..3 of the new run.
    assert_int_equal (al_seqtrack_feed (tracker, "t", 9, &restarted), 6);
    assert_false (restarted);
    assert_int_equal (al_seqtrack_feed (tracker, "t", 4, &restarted), 3);
    assert_true (restarted);
    assert_int_equal (al_seqtrack_feed (tracker, "t", 5, &restarted), 0);
    assert_false (restarted);
    assert_int_equal (al_seqtrack_last (tracker, "t"), 5);
    al_seqtrack_info_t info;
    al_seqtrack_info (tracker, &info);
    assert_int_equal (info.received, 8);
    assert_int_equal (info.restarts, 3);
    assert_int_equal (info.missed, 1 + 6 + 3);
    al_seqtrack_destroy (&tracker);
}

static void
test_seqtrack_topics_are_independent (void **state)
{
    (void) state;
    al_seqtrack_t *tracker = al_seqtrack_new ();
    assert_non_null (tracker);
    bool restarted = false;
    assert_int_equal (al_seqtrack_feed (tracker, "soak.production.api", 1, &restarted), 0);
    assert_int_equal (al_seqtrack_feed (tracker, "soak.production.web", 7, &restarted), 0);
    assert_int_equal (al_seqtrack_feed (tracker, "soak.production.api", 2, &restarted), 0);
    //  web skipped 8; api is unaffected by web's numbers, and the reverse.
    assert_int_equal (al_seqtrack_feed (tracker, "soak.production.web", 9, &restarted), 1);
    assert_int_equal (al_seqtrack_feed (tracker, "soak.production.api", 3, &restarted), 0);
    //  A small number on api after web's 9 is not a restart of api.
    assert_false (restarted);
    //  A topic name that extends another is its own topic.
    assert_int_equal (al_seqtrack_feed (tracker, "soak.production.api-v2", 1, &restarted), 0);
    assert_false (restarted);
    assert_int_equal (al_seqtrack_feed (tracker, "soak.production.api", 1, &restarted), 0);
    assert_true (restarted);
    al_seqtrack_info_t info;
    al_seqtrack_info (tracker, &info);
    assert_int_equal (info.topics, 3);
    assert_int_equal (info.missed, 1);
    assert_int_equal (info.restarts, 1);
    al_seqtrack_destroy (&tracker);
}

//  ---- on the bus ---------------------------------------------------------------------

typedef struct {
    bus_t *bus;
    al_agent_t *deployer;           // deploy-manager
    al_agent_t *monitor;
} fixture_t;

static int
s_setup_limits (void **state, const char *limits)
{
    fixture_t *fixture = calloc (1, sizeof *fixture);
    assert_non_null (fixture);
    fixture->bus = bus_new (limits);
    assert_non_null (fixture->bus);
    assert_int_equal (bus_broker_start (fixture->bus), 0);
    fixture->deployer = bus_agent (fixture->bus, "deploy-manager");
    assert_non_null (fixture->deployer);
    fixture->monitor = bus_agent (fixture->bus, "monitor");
    assert_non_null (fixture->monitor);
    *state = fixture;
    return 0;
}

static int
s_setup (void **state)
{
    return s_setup_limits (state, NULL);
}

//  The broker's PUB queue per subscriber is small, so that a burst overflows it.
static int
s_setup_small_hwm (void **state)
{
    return s_setup_limits (state, "  sndhwm: 1000\n");
}

static int
s_teardown (void **state)
{
    fixture_t *fixture = *state;
    al_agent_destroy (&fixture->deployer);
    al_agent_destroy (&fixture->monitor);
    bus_destroy (&fixture->bus);
    free (fixture);
    return 0;
}

typedef struct {
    char topic [256];
    uint64_t sequence;
    uint64_t missed;
    bool restarted;
} s_meta_t;

//  Publish probes until one reaches the subscriber; returns it (caller frees) with its
//  metadata.
static al_envelope_t *
s_probe (fixture_t *fixture, al_subscriber_t *subscriber, s_meta_t *meta)
{
    for (int attempt = 0; attempt < 100; attempt++) {
        assert_int_equal (bus_send_progress (fixture->deployer, "probe", AIRLOCK__STEP__STEP_PREFLIGHT,
                                             AIRLOCK__OUTCOME__OUTCOME_STARTED, 0, 0, 0, "probe"), 0);
        al_envelope_t *envelope = al_subscriber_recv (subscriber, 300, meta->topic, sizeof meta->topic,
                                                      &meta->sequence, &meta->missed, &meta->restarted);
        if (envelope)
            return envelope;
    }
    fail_msg ("no probe reached the subscriber");
    return NULL;
}

static al_subscriber_t *
s_subscriber (fixture_t *fixture, const char *role)
{
    char error [1024] = "";
    al_subscriber_t *subscriber = al_subscriber_new (fixture->bus->config, role, error, sizeof error);
    if (!subscriber)
        fail_msg ("subscriber: %s", error);
    return subscriber;
}

static void
test_events_arrive_in_order (void **state)
{
    fixture_t *fixture = *state;
    al_subscriber_t *subscriber = s_subscriber (fixture, "auditor");
    assert_int_equal (al_subscriber_subscribe (subscriber, "event.DeployProgress"), 0);
    assert_int_equal (al_subscriber_wait_connected (subscriber, 20000), 0);
    s_meta_t meta;
    al_envelope_t *envelope = s_probe (fixture, subscriber, &meta);
    assert_string_equal (meta.topic, "event.DeployProgress");
    assert_int_equal (meta.missed, 0);
    al_codec_free (&envelope);

    //  Five progress events, with a soak signal (not subscribed) in the middle.
    char detail [32];
    for (int index = 1; index <= 5; index++) {
        snprintf (detail, sizeof detail, "step-%d", index);
        assert_int_equal (bus_send_progress (fixture->deployer, "dep-1", AIRLOCK__STEP__STEP_ROLLOUT,
                                             AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED, (uint32_t) index, 5,
                                             (uint32_t) (20 * index), detail), 0);
        if (index == 3) {
            Airlock__SoakSignal signal = AIRLOCK__SOAK_SIGNAL__INIT;
            signal.sequence = 1;
            assert_int_equal (bus_send_signal (fixture->monitor, "demo-service",
                                               AIRLOCK__ENVIRONMENT__ENV_PRODUCTION, &signal), 0);
        }
    }
    uint64_t previous = meta.sequence;
    int seen = 0;
    while (seen < 5) {
        envelope = al_subscriber_recv (subscriber, 10000, meta.topic, sizeof meta.topic, &meta.sequence,
                                       &meta.missed, &meta.restarted);
        assert_non_null (envelope);
        assert_string_equal (meta.topic, "event.DeployProgress");
        assert_int_equal (envelope->body_case, AIRLOCK__ENVELOPE__BODY_DEPLOY_PROGRESS);
        assert_int_equal (meta.sequence, previous + 1);
        assert_int_equal (meta.missed, 0);
        assert_false (meta.restarted);
        previous = meta.sequence;
        if (strcmp (envelope->deployment_id, "probe") != 0) {
            seen++;
            snprintf (detail, sizeof detail, "step-%d", seen);
            assert_string_equal (envelope->deployment_id, "dep-1");
            assert_string_equal (envelope->deploy_progress->detail, detail);
            assert_int_equal (envelope->deploy_progress->instance, seen);
            assert_int_equal (envelope->deploy_progress->percent, 20 * seen);
            //  The broker stamps who sent it, from the sender's key.
            assert_non_null (envelope->sender);
            assert_string_equal (envelope->sender->identity, "deploy-manager");
            assert_string_equal (envelope->sender->role, "deploy-manager");
        }
        al_codec_free (&envelope);
    }
    //  Nothing else is waiting: the soak signal was not subscribed to.
    envelope = al_subscriber_recv (subscriber, 500, NULL, 0, NULL, NULL, NULL);
    assert_null (envelope);

    //  Subscribing to soak signals brings them (under their own topic and numbering).
    assert_int_equal (al_subscriber_subscribe (subscriber, "soak.production."), 0);
    Airlock__SoakSignal signal = AIRLOCK__SOAK_SIGNAL__INIT;
    for (int attempt = 0; attempt < 100 && !envelope; attempt++) {
        signal.sequence = (uint64_t) attempt + 2;
        assert_int_equal (bus_send_signal (fixture->monitor, "demo-service",
                                           AIRLOCK__ENVIRONMENT__ENV_PRODUCTION, &signal), 0);
        envelope = al_subscriber_recv (subscriber, 300, meta.topic, sizeof meta.topic, &meta.sequence,
                                       &meta.missed, &meta.restarted);
    }
    assert_non_null (envelope);
    assert_string_equal (meta.topic, "soak.production.demo-service");
    assert_int_equal (envelope->body_case, AIRLOCK__ENVELOPE__BODY_SOAK_SIGNAL);
    assert_true (meta.sequence >= 2);
    assert_int_equal (meta.missed, 0);
    al_codec_free (&envelope);

    al_subscriber_info_t info;
    al_subscriber_info (subscriber, &info);
    assert_true (info.connected);
    assert_false (info.refused);
    assert_int_equal (info.missed, 0);
    assert_int_equal (info.malformed, 0);
    assert_int_equal (info.restarts, 0);
    assert_true (info.received >= 7);
    al_subscriber_destroy (&subscriber);
    assert_null (subscriber);
}

static void
test_unknown_key_is_refused (void **state)
{
    fixture_t *fixture = *state;
    //  A certificate in the keys directory but not in identities.yaml.
    char path [512];
    snprintf (path, sizeof path, "%s/stranger.cert", al_config_agents_keys_dir (fixture->bus->config));
    zcert_t *cert = zcert_new ();
    assert_int_equal (zcert_save (cert, path), 0);
    zcert_destroy (&cert);
    al_subscriber_t *subscriber = s_subscriber (fixture, "stranger");
    assert_int_equal (al_subscriber_subscribe (subscriber, ""), 0);
    assert_int_equal (al_subscriber_wait_connected (subscriber, 3000), -1);
    al_subscriber_info_t info;
    for (int attempt = 0; attempt < 50; attempt++) {
        al_subscriber_info (subscriber, &info);
        if (info.refused)
            break;
        zclock_sleep (100);
    }
    assert_true (info.refused);
    assert_int_equal (info.connections, 0);
    char error [600];
    al_subscriber_last_error (subscriber, error, sizeof error);
    if (!strstr (error, "refused this key"))
        fail_msg ("last error: '%s'", error);
    //  Events published meanwhile do not reach it.
    assert_int_equal (bus_send_progress (fixture->deployer, "dep-1", AIRLOCK__STEP__STEP_PREFLIGHT,
                                         AIRLOCK__OUTCOME__OUTCOME_STARTED, 0, 0, 0, ""), 0);
    assert_null (al_subscriber_recv (subscriber, 500, NULL, 0, NULL, NULL, NULL));
    al_subscriber_destroy (&subscriber);

    //  No certificate at all: an error at once, naming the file.
    char message [1024] = "";
    assert_null (al_subscriber_new (fixture->bus->config, "nobody", message, sizeof message));
    if (!strstr (message, "nobody.cert"))
        fail_msg ("error: '%s'", message);
    assert_null (al_subscriber_new (fixture->bus->config, "../auditor", message, sizeof message));
}

static void
test_burst_losses_are_counted (void **state)
{
    fixture_t *fixture = *state;
    char error [1024] = "";
    al_subscriber_options_t options;
    al_subscriber_options_defaults (&options);
    assert_int_equal (al_subscriber_options_from_config (&options, fixture->bus->config, "auditor",
                                                         error, sizeof error), 0);
    options.rcvhwm = 1;
    al_subscriber_t *subscriber = al_subscriber_new_with (&options, error, sizeof error);
    assert_non_null (subscriber);
    assert_int_equal (al_subscriber_subscribe (subscriber, "event.DeployProgress"), 0);
    s_meta_t meta;
    al_envelope_t *envelope = s_probe (fixture, subscriber, &meta);
    al_codec_free (&envelope);
    uint64_t first = meta.sequence, last = meta.sequence, received = 1, missed = 0;

    //  A burst the subscriber does not read: 3000 events of ~1 KB against a PUB queue
    //  of 1000, a receive queue of 1 and the kernel's socket buffers.
    enum { BURST = 3000 };
    char detail [1001];
    memset (detail, 'x', sizeof detail - 1);
    detail [sizeof detail - 1] = '\0';
    Airlock__DeployProgress progress = AIRLOCK__DEPLOY_PROGRESS__INIT;
    progress.step = AIRLOCK__STEP__STEP_SOAK;
    progress.outcome = AIRLOCK__OUTCOME__OUTCOME_STARTED;
    progress.detail = detail;
    al_envelope_t burst = AIRLOCK__ENVELOPE__INIT;
    burst.deployment_id = "dep-burst";
    burst.environment = AIRLOCK__ENVIRONMENT__ENV_STAGING;
    burst.body_case = AIRLOCK__ENVELOPE__BODY_DEPLOY_PROGRESS;
    burst.deploy_progress = &progress;
    for (int index = 0; index < BURST; index++)
        assert_int_equal (al_agent_post (fixture->deployer, &burst, 20000, NULL, error, sizeof error),
                          AL_AGENT_QUEUED);
    for (int index = 0; index < BURST; index++) {
        al_agent_result_t result;
        assert_int_equal (al_agent_next_result (fixture->deployer, 30000, &result), AL_AGENT_ACKED);
    }
    //  Drain what survived, then one last event that must arrive.
    while ((envelope = al_subscriber_recv (subscriber, 1000, meta.topic, sizeof meta.topic, &meta.sequence,
                                           &meta.missed, &meta.restarted))) {
        assert_false (meta.restarted);
        assert_true (meta.sequence > last);
        assert_int_equal (meta.missed, meta.sequence - last - 1);
        received++;
        missed += meta.missed;
        last = meta.sequence;
        al_codec_free (&envelope);
    }
    assert_int_equal (bus_send_progress (fixture->deployer, "dep-last", AIRLOCK__STEP__STEP_RECEIPT,
                                         AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED, 0, 0, 0, "last"), 0);
    envelope = al_subscriber_recv (subscriber, 10000, meta.topic, sizeof meta.topic, &meta.sequence,
                                   &meta.missed, &meta.restarted);
    assert_non_null (envelope);
    assert_string_equal (envelope->deployment_id, "dep-last");
    al_codec_free (&envelope);
    received++;
    missed += meta.missed;
    last = meta.sequence;

    //  Every event published after the first we saw was either received or counted.
    assert_true (missed > 0);
    assert_int_equal (received + missed, last - first + 1);
    al_subscriber_info_t info;
    al_subscriber_info (subscriber, &info);
    assert_int_equal (info.missed, missed);
    assert_int_equal (info.received, received);
    printf ("burst of %d: %" PRIu64 " received, %" PRIu64 " missed and reported\n", BURST,
            received - 2, missed);
    al_subscriber_destroy (&subscriber);
}

static void
test_broker_restart_is_reported (void **state)
{
    fixture_t *fixture = *state;
    al_subscriber_t *subscriber = s_subscriber (fixture, "auditor");
    assert_int_equal (al_subscriber_subscribe (subscriber, "event.DeployProgress"), 0);
    s_meta_t meta;
    al_envelope_t *envelope = s_probe (fixture, subscriber, &meta);
    al_codec_free (&envelope);
    //  Take the topic's sequence well past where a new run will start.
    for (int index = 0; index < 20; index++)
        assert_int_equal (bus_send_progress (fixture->deployer, "dep-1", AIRLOCK__STEP__STEP_ROLLOUT,
                                             AIRLOCK__OUTCOME__OUTCOME_STARTED, 0, 0, 0, ""), 0);
    uint64_t before = 0;
    for (int index = 0; index < 20; index++) {
        envelope = al_subscriber_recv (subscriber, 10000, meta.topic, sizeof meta.topic, &meta.sequence,
                                       &meta.missed, &meta.restarted);
        assert_non_null (envelope);
        assert_int_equal (meta.missed, 0);
        before = meta.sequence;
        al_codec_free (&envelope);
    }
    while ((envelope = al_subscriber_recv (subscriber, 300, NULL, 0, &before, NULL, NULL)))
        al_codec_free (&envelope);
    assert_true (before >= 21);

    assert_int_equal (bus_broker_stop (fixture->bus), 0);
    assert_int_equal (bus_broker_start (fixture->bus), 0);
    //  The first event of the new run that reaches us: a restart, and what the new run
    //  published before it reached us (while we reconnected) is missed.
    envelope = s_probe (fixture, subscriber, &meta);
    assert_true (meta.restarted);
    assert_true (meta.sequence < before);
    assert_int_equal (meta.missed, meta.sequence - 1);
    al_codec_free (&envelope);
    uint64_t after = meta.sequence;
    assert_int_equal (bus_send_progress (fixture->deployer, "dep-1", AIRLOCK__STEP__STEP_ROLLOUT,
                                         AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED, 0, 0, 0, ""), 0);
    do {
        al_codec_free (&envelope);
        envelope = al_subscriber_recv (subscriber, 10000, meta.topic, sizeof meta.topic, &meta.sequence,
                                       &meta.missed, &meta.restarted);
        assert_non_null (envelope);
        assert_false (meta.restarted);
        assert_int_equal (meta.sequence, after + 1);
        assert_int_equal (meta.missed, 0);
        after = meta.sequence;
    } while (strcmp (envelope->deployment_id, "dep-1") != 0);
    al_codec_free (&envelope);
    al_subscriber_info_t info;
    al_subscriber_info (subscriber, &info);
    assert_int_equal (info.restarts, 1);
    assert_true (info.connections >= 2);
    al_subscriber_destroy (&subscriber);
}

//  ---- a fake publisher: what the broker never sends ------------------------------------

//  Publish [topic][envelope][8-byte sequence]; envelope NULL sends raw bytes instead.
static void
s_publish (zsock_t *pub, const char *topic, const al_envelope_t *envelope, const char *raw, uint64_t sequence,
           size_t sequence_size)
{
    uint8_t *data = NULL;
    size_t size = 0;
    if (envelope)
        assert_int_equal (al_codec_pack (envelope, &data, &size, NULL, 0), AL_CODEC_OK);
    uint8_t be [8];
    for (int i = 0; i < 8; i++)
        be [i] = (uint8_t) (sequence >> (56 - 8 * i));
    void *socket = zsock_resolve (pub);
    assert_true (zmq_send (socket, topic, strlen (topic), ZMQ_SNDMORE) >= 0);
    if (envelope)
        assert_true (zmq_send (socket, data, size, sequence_size? ZMQ_SNDMORE: 0) >= 0);
    else
        assert_true (zmq_send (socket, raw, strlen (raw), sequence_size? ZMQ_SNDMORE: 0) >= 0);
    if (sequence_size)
        assert_true (zmq_send (socket, be, sequence_size, 0) >= 0);
    free (data);
}

static void
test_malformed_events_are_gaps (void **state)
{
    (void) state;
    char dir [] = "/tmp/al-subscriber-test-XXXXXX";
    assert_non_null (mkdtemp (dir));
    char cert_path [128], endpoint [128], error [512] = "";
    snprintf (cert_path, sizeof cert_path, "%s/client.cert", dir);
    snprintf (endpoint, sizeof endpoint, "ipc://%s/events.ipc", dir);
    zcert_t *client = zcert_new ();
    assert_int_equal (zcert_save (client, cert_path), 0);
    zcert_destroy (&client);
    //  A CURVE PUB with no ZAP handler: it admits any client key.
    zcert_t *server = zcert_new ();
    zsock_t *pub = zsock_new (ZMQ_PUB);
    assert_non_null (pub);
    zcert_apply (server, pub);
    zsock_set_curve_server (pub, 1);
    assert_int_equal (zsock_bind (pub, "%s", endpoint), 0);

    al_subscriber_options_t options;
    al_subscriber_options_defaults (&options);
    snprintf (options.endpoint, sizeof options.endpoint, "%s", endpoint);
    snprintf (options.broker_key, sizeof options.broker_key, "%s", zcert_public_txt (server));
    snprintf (options.cert_path, sizeof options.cert_path, "%s", cert_path);
    options.max_envelope_bytes = 4096;
    al_subscriber_t *subscriber = al_subscriber_new_with (&options, error, sizeof error);
    if (!subscriber)
        fail_msg ("subscriber: %s", error);
    assert_int_equal (al_subscriber_subscribe (subscriber, "event."), 0);
    assert_int_equal (al_subscriber_wait_connected (subscriber, 10000), 0);

    Airlock__DeployProgress progress = AIRLOCK__DEPLOY_PROGRESS__INIT;
    progress.step = AIRLOCK__STEP__STEP_ROLLOUT;
    progress.outcome = AIRLOCK__OUTCOME__OUTCOME_STARTED;
    progress.detail = "";
    al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
    envelope.message_id = "m-1";
    envelope.deployment_id = "dep-1";
    envelope.environment = AIRLOCK__ENVIRONMENT__ENV_STAGING;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_DEPLOY_PROGRESS;
    envelope.deploy_progress = &progress;
    //  Until the subscription is through: events of a probe topic, whatever number.
    s_meta_t meta;
    al_envelope_t *received = NULL;
    for (int attempt = 0; attempt < 100 && !received; attempt++) {
        s_publish (pub, "event.Probe", &envelope, NULL, 1, 8);
        received = al_subscriber_recv (subscriber, 100, meta.topic, sizeof meta.topic, &meta.sequence,
                                       &meta.missed, &meta.restarted);
    }
    assert_non_null (received);
    al_codec_free (&received);
    while ((received = al_subscriber_recv (subscriber, 200, NULL, 0, NULL, NULL, NULL)))
        al_codec_free (&received);

    s_publish (pub, "event.DeployProgress", &envelope, NULL, 1, 8);           // the first: kept
    s_publish (pub, "event.DeployProgress", NULL, "not protobuf", 2, 8);      // undecodable
    s_publish (pub, "event.DeployProgress", &envelope, NULL, 3, 4);           // short sequence
    s_publish (pub, "event.DeployProgress", &envelope, NULL, 4, 0);           // two frames
    char big [5000];
    memset (big, 'x', sizeof big - 1);
    big [sizeof big - 1] = '\0';
    progress.detail = big;
    s_publish (pub, "event.DeployProgress", &envelope, NULL, 5, 8);           // above max_envelope_bytes
    progress.detail = "";
    s_publish (pub, "event.DeployProgress", &envelope, NULL, 6, 8);           // kept, 4 missed before it
    received = al_subscriber_recv (subscriber, 5000, meta.topic, sizeof meta.topic, &meta.sequence,
                                   &meta.missed, &meta.restarted);
    assert_non_null (received);
    assert_int_equal (meta.sequence, 1);
    assert_int_equal (meta.missed, 0);
    al_codec_free (&received);
    received = al_subscriber_recv (subscriber, 5000, meta.topic, sizeof meta.topic, &meta.sequence,
                                   &meta.missed, &meta.restarted);
    assert_non_null (received);
    assert_int_equal (meta.sequence, 6);
    assert_int_equal (meta.missed, 4);
    assert_false (meta.restarted);
    al_codec_free (&received);
    al_subscriber_info_t info;
    al_subscriber_info (subscriber, &info);
    assert_int_equal (info.malformed, 4);
    assert_int_equal (info.missed, 4);
    al_subscriber_last_error (subscriber, error, sizeof error);
    if (!strstr (error, "event.DeployProgress #5: envelope:"))
        fail_msg ("last error: '%s'", error);

    al_subscriber_destroy (&subscriber);
    zsock_destroy (&pub);
    zcert_destroy (&server);
    char command [128];
    snprintf (command, sizeof command, "rm -rf '%s'", dir);
    assert_int_equal (system (command), 0);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_seqtrack_first_next_and_gaps),
        cmocka_unit_test (test_seqtrack_restarts),
        cmocka_unit_test (test_seqtrack_topics_are_independent),
        cmocka_unit_test (test_malformed_events_are_gaps),
        cmocka_unit_test_setup_teardown (test_events_arrive_in_order, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_unknown_key_is_refused, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_burst_losses_are_counted, s_setup_small_hwm, s_teardown),
        cmocka_unit_test_setup_teardown (test_broker_restart_is_reported, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
