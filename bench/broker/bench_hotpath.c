/*  bench_hotpath.c: two steps of the broker's per-message path on their own, in CPU time.

    The validation of the 200-byte DeployRequest that bench_broker sends (al_codec_validate)
    and the audit append of its row (al_store_append, 100 per transaction, in a state
    directory on disk; the commits are not timed). Each is run 5 times and the fastest
    run's CPU time per operation is printed: the least disturbed by other processes on a
    shared machine. For figures that do not move with the load at all, count instructions
    with valgrind: `valgrind --tool=callgrind --toggle-collect=al_codec_validate
    build/bench/bench_hotpath validate` (or al_store_append with `append`) and divide the
    Ir by the operations printed.

    Usage: bench_hotpath [validate|append]  (both by default)
*/
#include "proto/al_codec.h"
#include "store/al_store.h"
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define S_VALIDATIONS 20000
#define S_APPENDS 20000
#define S_PER_TRANSACTION 100
#define S_RUNS 5

static int64_t
s_cpu_ns (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

//  The envelope bench_broker sends, packed.
static size_t
s_make_message (uint8_t *buffer, size_t size)
{
    al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
    Airlock__DeployRequest body = AIRLOCK__DEPLOY_REQUEST__INIT;
    body.service = (char *) "checkout-service";
    body.version = (char *) "v2.3.1";
    body.artifact_uri = (char *) "oci://registry.example.com/checkout@sha256:9f86d081884c7d659a2fe";
    body.artifact_sha256 = (char *) "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    body.strategy = AIRLOCK__STRATEGY__STRATEGY_ROLLING;
    body.instances = 3;
    body.deployment_type = AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD;
    envelope.message_id = (char *) "b0-0";
    envelope.deployment_id = (char *) "dep-2026-0001";
    envelope.environment = AIRLOCK__ENVIRONMENT__ENV_STAGING;
    envelope.timestamp_ms = 1700000000000ull;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_DEPLOY_REQUEST;
    envelope.deploy_request = &body;
    assert (airlock__envelope__get_packed_size (&envelope) <= size);
    return airlock__envelope__pack (&envelope, buffer);
}

static int
s_validate (void)
{
    uint8_t buffer [512];
    size_t size = s_make_message (buffer, sizeof buffer);
    al_envelope_t *envelope = airlock__envelope__unpack (NULL, size, buffer);
    assert (envelope);
    char error [256];
    int64_t best = INT64_MAX;
    for (int run = 0; run < S_RUNS; run++) {
        int64_t start = s_cpu_ns ();
        for (int n = 0; n < S_VALIDATIONS; n++)
            if (al_codec_validate (envelope, error, sizeof error) != AL_CODEC_OK) {
                fprintf (stderr, "bench_hotpath: %s\n", error);
                return 1;
            }
        int64_t spent = s_cpu_ns () - start;
        best = spent < best? spent: best;
    }
    airlock__envelope__free_unpacked (envelope, NULL);
    printf ("validate: %d x %d validations, fastest run %.3f us each\n", S_RUNS, S_VALIDATIONS,
            (double) best / 1e3 / S_VALIDATIONS);
    printf ("RESULT hotpath.validate_cpu %.3f us\n", (double) best / 1e3 / S_VALIDATIONS);
    return 0;
}

static int
s_append (void)
{
    const char *base = getenv ("AIRLOCK_BENCH_DIR");
    char dir [256], path [300], error [512];
    snprintf (dir, sizeof dir, "%s/al-bench-hotpath-XXXXXX", base? base: "/var/tmp");
    if (!mkdtemp (dir)) {
        fprintf (stderr, "bench_hotpath: cannot create %s\n", dir);
        return 2;
    }
    snprintf (path, sizeof path, "%s/audit.db", dir);
    al_store_t *store = al_store_open ("sqlite", path, NULL, error, sizeof error);
    if (!store) {
        fprintf (stderr, "bench_hotpath: %s\n", error);
        return 2;
    }
    uint8_t envelope [512];
    size_t envelope_size = s_make_message (envelope, sizeof envelope);
    int rc = 0;
    int64_t best = INT64_MAX;
    for (int run = 0; run < S_RUNS && rc == 0; run++) {
        int64_t spent = 0;
        for (int n = 0; n < S_APPENDS && rc == 0; n += S_PER_TRANSACTION) {
            if (al_store_begin (store) != AL_STORE_OK) {
                rc = 1;
                break;
            }
            int64_t start = s_cpu_ns ();
            for (int i = 0; i < S_PER_TRANSACTION; i++) {
                char id [32];
                snprintf (id, sizeof id, "h%d-%d", run, n + i);
                al_store_event_t event = {
                    .time_ms = 1700000000000ull, .sender = "orchestrator-0", .role = "orchestrator",
                    .type = "DeployRequest", .message_id = id, .deployment_id = "dep-2026-0001",
                    .environment = "staging", .decision = AL_STORE_ACCEPTED, .reason = "",
                    .envelope = envelope, .envelope_size = envelope_size
                };
                al_store_append_result_t result;
                if (al_store_append (store, &event, &result) != AL_STORE_OK) {
                    rc = 1;
                    break;
                }
            }
            spent += s_cpu_ns () - start;
            if (rc == 0 && al_store_commit (store) != AL_STORE_OK)
                rc = 1;
        }
        best = spent < best? spent: best;
    }
    if (rc != 0)
        fprintf (stderr, "bench_hotpath: append: %s\n", al_store_error (store));
    else {
        printf ("append: %d x %d appends, fastest run %.3f us each\n", S_RUNS, S_APPENDS,
                (double) best / 1e3 / S_APPENDS);
        printf ("RESULT hotpath.append_cpu %.3f us\n", (double) best / 1e3 / S_APPENDS);
    }
    al_store_destroy (&store);
    char command [400];
    snprintf (command, sizeof command, "rm -rf '%s'", dir);
    if (system (command) != 0)
        fprintf (stderr, "bench_hotpath: could not remove %s\n", dir);
    return rc;
}

int
main (int argc, char *argv [])
{
    const char *which = argc > 1? argv [1]: "both";
    int rc = 0;
    if (strcmp (which, "validate") == 0 || strcmp (which, "both") == 0)
        rc = s_validate ();
    if (rc == 0 && (strcmp (which, "append") == 0 || strcmp (which, "both") == 0))
        rc = s_append ();
    return rc;
}
