/*  cmd_demo.c: `airlock demo`: steps of the end-to-end demonstration that need the library.

    `airlock demo fill` writes a fresh audit log of realistic events (real packed
    envelopes of the pipeline's message types, accepted and denied) in group-commit
    batches, with progress, then signs a checkpoint of it. scripts/demo narrates the
    story around it: verify, tamper from outside with sqlite3, verify again.
*/
#include "cli/cli.h"
#include "proto/al_codec.h"
#include "store/al_store.h"

#include <getopt.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void
s_demo_usage (FILE *out)
{
    fprintf (out,
        "usage: airlock demo fill --db FILE [--events N] [--batch B] [--checkpoint FILE]\n"
        "                         [--key-out FILE]\n\n"
        "Write a fresh audit log of N realistic events (default 5000) appended in\n"
        "group-commit batches of B (default 250), then sign a checkpoint of it with a\n"
        "fresh Ed25519 key (public key written to --key-out, default FILE.pub).\n"
        "The database must not exist yet.\n");
}

static uint64_t
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

static double
s_monotonic (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

//  The pipeline's cast: who sends what, in which environment. Index i of the demo
//  stream picks a row; every 7th production DeployRequest from qa is denied, as the
//  broker would (seed 001: qa may not deploy to production).
typedef struct {
    const char *sender;
    const char *role;
    al_msg_type_t type;
    Airlock__Environment environment;
} s_actor_t;

static const s_actor_t s_cast [] = {
    { "orchestrator", "orchestrator", AIRLOCK__ENVELOPE__BODY_RELEASE_CANDIDATE, AIRLOCK__ENVIRONMENT__ENV_STAGING },
    { "orchestrator", "orchestrator", AIRLOCK__ENVELOPE__BODY_DEPLOY_REQUEST, AIRLOCK__ENVIRONMENT__ENV_STAGING },
    { "deploy-manager", "deploy-manager", AIRLOCK__ENVELOPE__BODY_DEPLOY_PROGRESS, AIRLOCK__ENVIRONMENT__ENV_STAGING },
    { "qa", "qa", AIRLOCK__ENVELOPE__BODY_DEPLOY_REQUEST, AIRLOCK__ENVIRONMENT__ENV_PRODUCTION },
    { "monitor", "monitor", AIRLOCK__ENVELOPE__BODY_SOAK_SIGNAL, AIRLOCK__ENVIRONMENT__ENV_PRODUCTION },
    { "monitor", "monitor", AIRLOCK__ENVELOPE__BODY_SOAK_SIGNAL, AIRLOCK__ENVIRONMENT__ENV_STAGING },
    { "deploy-manager", "deploy-manager", AIRLOCK__ENVELOPE__BODY_DEPLOY_PROGRESS, AIRLOCK__ENVIRONMENT__ENV_PRODUCTION },
};
#define S_CAST_SIZE (sizeof s_cast / sizeof s_cast [0])

static const char s_digest [] = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

//  Pack the envelope of event i into *data_p (caller frees).
static al_codec_status_t
s_pack_event (size_t i, const s_actor_t *actor, uint8_t **data_p, size_t *size_p,
              char *error, size_t error_size)
{
    char message_id [64], deployment_id [48], version [48];
    snprintf (message_id, sizeof message_id, "%s-%zu", actor->sender, i);
    snprintf (deployment_id, sizeof deployment_id, "dep-%04zu", i / 50 + 1);
    snprintf (version, sizeof version, "v1.%zu.0", i / 50 + 1);

    Airlock__Envelope envelope = AIRLOCK__ENVELOPE__INIT;
    envelope.message_id = message_id;
    envelope.deployment_id = deployment_id;
    envelope.environment = actor->environment;
    envelope.timestamp_ms = s_now_ms ();
    envelope.body_case = actor->type;

    Airlock__ReleaseCandidate release = AIRLOCK__RELEASE_CANDIDATE__INIT;
    Airlock__DeployRequest request = AIRLOCK__DEPLOY_REQUEST__INIT;
    Airlock__DeployProgress progress = AIRLOCK__DEPLOY_PROGRESS__INIT;
    Airlock__SoakSignal signal = AIRLOCK__SOAK_SIGNAL__INIT;
    switch (actor->type) {
        case AIRLOCK__ENVELOPE__BODY_RELEASE_CANDIDATE:
            release.service = "demo-service";
            release.version = version;
            release.artifact_uri = "file:///artifacts/demo-service.tar.gz";
            release.artifact_sha256 = (char *) s_digest;
            release.deployment_type = AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD;
            envelope.release_candidate = &release;
            break;
        case AIRLOCK__ENVELOPE__BODY_DEPLOY_REQUEST:
            request.service = "demo-service";
            request.version = version;
            request.artifact_uri = "file:///artifacts/demo-service.tar.gz";
            request.artifact_sha256 = (char *) s_digest;
            request.strategy = AIRLOCK__STRATEGY__STRATEGY_ROLLING;
            request.instances = 3;
            request.deployment_type = AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD;
            envelope.deploy_request = &request;
            break;
        case AIRLOCK__ENVELOPE__BODY_DEPLOY_PROGRESS:
            progress.step = AIRLOCK__STEP__STEP_ROLLOUT;
            progress.outcome = AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED;
            progress.instance = (uint32_t) (i % 3) + 1;
            progress.instances = 3;
            progress.detail = "instance ready";
            envelope.deploy_progress = &progress;
            break;
        default:
            signal.service = "demo-service";
            signal.sequence = i;
            signal.requests_per_second = 120.0 + (double) (i % 17);
            signal.error_ratio = 0.002;
            signal.latency_p50_ms = 11.0;
            signal.latency_p99_ms = 42.0 + (double) (i % 5);
            signal.cpu_percent = 31.0;
            signal.memory_percent = 44.0;
            signal.instances_up = 3;
            signal.instances_total = 3;
            envelope.soak_signal = &signal;
            break;
    }
    return al_codec_pack (&envelope, data_p, size_p, error, error_size);
}

static int
s_demo_fill (int argc, char **argv)
{
    const char *db_path = NULL, *checkpoint_path = NULL, *key_out = NULL;
    long events = 5000, batch = 250;
    static const struct option options [] = {
        { "db", required_argument, NULL, 'd' },
        { "events", required_argument, NULL, 'n' },
        { "batch", required_argument, NULL, 'b' },
        { "checkpoint", required_argument, NULL, 'c' },
        { "key-out", required_argument, NULL, 'k' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    int option;
    optind = 1;
    while ((option = getopt_long (argc, argv, "h", options, NULL)) != -1) {
        switch (option) {
            case 'd': db_path = optarg; break;
            case 'n': events = strtol (optarg, NULL, 10); break;
            case 'b': batch = strtol (optarg, NULL, 10); break;
            case 'c': checkpoint_path = optarg; break;
            case 'k': key_out = optarg; break;
            case 'h': s_demo_usage (stdout); return AL_EXIT_OK;
            default: s_demo_usage (stderr); return AL_EXIT_USAGE;
        }
    }
    if (!db_path || events < 1 || events > 10000000 || batch < 1 || batch > 100000) {
        fprintf (stderr, "airlock demo fill: --db is required; --events 1..10000000, --batch 1..100000\n");
        return AL_EXIT_USAGE;
    }
    struct stat st;
    if (stat (db_path, &st) == 0) {
        fprintf (stderr, "airlock demo fill: %s already exists; the demo writes a fresh log\n", db_path);
        return AL_EXIT_USAGE;
    }
    if (sodium_init () < 0) {
        fprintf (stderr, "airlock demo fill: libsodium failed to initialise\n");
        return AL_EXIT_USAGE;
    }

    int rc = AL_EXIT_USAGE;
    char error [512] = "";
    char *pub_path = NULL;
    al_store_t *store = al_store_open (NULL, db_path, NULL, error, sizeof error);
    if (!store) {
        fprintf (stderr, "airlock demo fill: %s\n", error);
        goto cleanup;
    }
    bool tty = isatty (STDOUT_FILENO);
    double started = s_monotonic ();
    long denied = 0, written = 0;
    while (written < events) {
        if (al_store_begin (store) != AL_STORE_OK)
            goto store_failed;
        long end = written + batch < events ? written + batch : events;
        for (long i = written; i < end; i++) {
            const s_actor_t *actor = &s_cast [(size_t) i % S_CAST_SIZE];
            uint8_t *data = NULL;
            size_t size = 0;
            if (s_pack_event ((size_t) i, actor, &data, &size, error, sizeof error) != AL_CODEC_OK) {
                fprintf (stderr, "airlock demo fill: event %ld: %s\n", i, error);
                al_store_rollback (store);
                goto cleanup;
            }
            char message_id [64], deployment_id [48];
            snprintf (message_id, sizeof message_id, "%s-%ld", actor->sender, i);
            snprintf (deployment_id, sizeof deployment_id, "dep-%04ld", i / 50 + 1);
            //  The broker's verdict for this cast: production deploys from qa are denied.
            bool deny = actor->type == AIRLOCK__ENVELOPE__BODY_DEPLOY_REQUEST
                     && actor->environment == AIRLOCK__ENVIRONMENT__ENV_PRODUCTION;
            al_store_event_t event = {
                .time_ms = s_now_ms (),
                .sender = actor->sender,
                .role = actor->role,
                .type = al_msg_type_name (actor->type),
                .message_id = message_id,
                .deployment_id = deployment_id,
                .environment = al_environment_name (actor->environment),
                .decision = deny ? AL_STORE_DENIED : AL_STORE_ACCEPTED,
                .reason = deny ? "roles.yaml: no rule lets role qa send DeployRequest in production (default deny)"
                               : "",
                .envelope = data,
                .envelope_size = size,
            };
            al_store_append_result_t result;
            al_store_status_t status = al_store_append (store, &event, &result);
            free (data);
            if (status != AL_STORE_OK) {
                al_store_rollback (store);
                goto store_failed;
            }
            denied += deny;
        }
        if (al_store_commit (store) != AL_STORE_OK)
            goto store_failed;
        long previous = written;
        written = end;
        //  A redrawn progress line on a terminal, a plain line per 1000 events otherwise.
        long batches = (written + batch - 1) / batch;
        if (tty)
            printf ("\r[APPEND] %ld/%ld events committed (%ld batches)", written, events, batches);
        else
        if (written / 1000 != previous / 1000 || written == events)
            printf ("[APPEND] %ld/%ld events committed (%ld batches)\n", written, events, batches);
        fflush (stdout);
    }
    double elapsed = s_monotonic () - started;
    printf ("%s[APPEND] %ld events (%ld denied) in %.2f s: %.0f events/s with group commit\n",
            tty ? "\n" : "", written, denied, elapsed, (double) written / (elapsed > 0 ? elapsed : 1e-9));

    if (checkpoint_path) {
        unsigned char public_key [crypto_sign_PUBLICKEYBYTES], secret_key [crypto_sign_SECRETKEYBYTES];
        crypto_sign_keypair (public_key, secret_key);
        int written_ok = al_store_checkpoint_write (store, secret_key, checkpoint_path, error, sizeof error)
                         == AL_STORE_OK;
        sodium_memzero (secret_key, sizeof secret_key);
        if (!written_ok) {
            fprintf (stderr, "airlock demo fill: checkpoint: %s\n", error);
            goto cleanup;
        }
        if (!key_out) {
            size_t length = strlen (checkpoint_path) + 5;
            pub_path = malloc (length);
            if (!pub_path)
                goto cleanup;
            snprintf (pub_path, length, "%s.pub", checkpoint_path);
            key_out = pub_path;
        }
        FILE *file = fopen (key_out, "w");
        if (!file) {
            fprintf (stderr, "airlock demo fill: %s: cannot write public key\n", key_out);
            goto cleanup;
        }
        char hex [crypto_sign_PUBLICKEYBYTES * 2 + 1];
        sodium_bin2hex (hex, sizeof hex, public_key, sizeof public_key);
        fprintf (file, "%s\n", hex);
        fclose (file);
        printf ("[CHECKPOINT] signed row count %" PRIu64 " and head hash -> %s (key %.16s...)\n",
                al_store_row_count (store), checkpoint_path, hex);
    }
    rc = AL_EXIT_OK;
    goto cleanup;

store_failed:
    fprintf (stderr, "airlock demo fill: %s: %s\n", db_path, al_store_error (store));
cleanup:
    free (pub_path);
    al_store_destroy (&store);
    return rc;
}

int
al_cmd_demo (int argc, char **argv)
{
    if (argc < 2 || strcmp (argv [1], "--help") == 0 || strcmp (argv [1], "-h") == 0) {
        s_demo_usage (argc < 2 ? stderr : stdout);
        return argc < 2 ? AL_EXIT_USAGE : AL_EXIT_OK;
    }
    if (strcmp (argv [1], "fill") == 0)
        return s_demo_fill (argc - 1, argv + 1);
    fprintf (stderr, "airlock demo: unknown step '%s'\n", argv [1]);
    s_demo_usage (stderr);
    return AL_EXIT_USAGE;
}
