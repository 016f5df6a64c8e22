/*  cmd_demo.c: `airlock demo`: steps of the end-to-end demonstration that need the library.

    `airlock demo fill` writes a fresh audit log of realistic events (real packed
    envelopes of the pipeline's message types, accepted and denied) in group-commit
    batches, with progress, then signs a checkpoint of it. scripts/demo narrates the
    story around it: verify, tamper from outside with sqlite3, verify again.
*/
#include "cli/cli.h"
#include "base/al_clock.h"
#include "agents/al_agent.h"
#include "base/al_config.h"
#include "deploy/al_instances.h"
#include "proto/al_codec.h"
#include "store/al_store.h"

#include <getopt.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <curl/curl.h>
#include <jansson.h>
#include <time.h>
#include <unistd.h>

static void
s_demo_usage (FILE *out)
{
    fprintf (out,
        "usage: airlock demo fill --db FILE [--events N] [--batch B] [--checkpoint FILE]\n"
        "                         [--key-out FILE]\n"
        "       airlock demo agent-deploy --config FILE\n"
        "       airlock demo file-request --config FILE --request ID\n"
        "       airlock demo await-grant --config FILE [--seconds N]\n"
        "       airlock demo load --config FILE --service S [--env ENV] [--rps N] [--seconds N]\n\n"
        "Steps of scripts/demo that need the library:\n"
        "  fill          write a fresh audit log of N realistic events (default 5000) in\n"
        "                group-commit batches of B (default 250), then sign a checkpoint\n"
        "                with a fresh Ed25519 key (public key in --key-out, default FILE.pub)\n"
        "  agent-deploy  as the qa agent, try to deploy to production directly (must be denied)\n"
        "  file-request  as orchestrator, file a production deployment request for approval\n"
        "  await-grant   as deploy-manager, wait for the broker's production grant\n"
        "  load          user traffic: GET /work round robin over the running instances of\n"
        "                SERVICE in ENV (default production) at about N requests/s (default\n"
        "                40) for N seconds (default 60); prints the requests and errors seen\n");
}

//  Wall time for envelopes; monotonic seconds for the pacing.
static uint64_t
s_now_ms (void)
{
    return (uint64_t) al_clock_wall_ms ();
}

static double
s_monotonic (void)
{
    return (double) al_clock_mono_ms () / 1000.0;
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
            release.service = "demo";
            release.version = version;
            release.artifact_uri = "file:///artifacts/demo.tar.gz";
            release.artifact_sha256 = (char *) s_digest;
            release.deployment_type = AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD;
            envelope.release_candidate = &release;
            break;
        case AIRLOCK__ENVELOPE__BODY_DEPLOY_REQUEST:
            request.service = "demo";
            request.version = version;
            request.artifact_uri = "file:///artifacts/demo.tar.gz";
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
            signal.service = "demo";
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

//  ---- bus steps -------------------------------------------------------------------------

//  Connect as ROLE with the state directory's certificate. NULL with the reason printed.
static al_agent_t *
s_connect (const char *config_path, const char *role, bool deliveries, al_config_t **config_p)
{
    char error [512];
    *config_p = al_config_load (config_path, error, sizeof error);
    if (!*config_p) {
        fprintf (stderr, "airlock demo: %s\n", error);
        return NULL;
    }
    al_agent_t *agent = al_agent_new_for_role (*config_p, role, deliveries, error, sizeof error);
    if (!agent)
        fprintf (stderr, "airlock demo: %s\n", error);
    else
    if (al_agent_wait_registered (agent, 10000) != 0) {
        fprintf (stderr, "airlock demo: %s could not register with the broker\n", role);
        al_agent_destroy (&agent);
    }
    return agent;
}

typedef struct {
    const char *config;
    const char *request;
    long seconds;
} s_bus_options_t;

static int
s_bus_options (int argc, char **argv, s_bus_options_t *options)
{
    static const struct option long_options [] = {
        { "config", required_argument, NULL, 'c' },
        { "request", required_argument, NULL, 'r' },
        { "seconds", required_argument, NULL, 's' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    *options = (s_bus_options_t) { .seconds = 60 };
    int option;
    optind = 1;
    while ((option = getopt_long (argc, argv, "h", long_options, NULL)) != -1) {
        switch (option) {
            case 'c': options->config = optarg; break;
            case 'r': options->request = optarg; break;
            case 's': options->seconds = strtol (optarg, NULL, 10); break;
            case 'h': s_demo_usage (stdout); return AL_EXIT_OK;
            default: s_demo_usage (stderr); return AL_EXIT_USAGE;
        }
    }
    if (!options->config || options->seconds < 1) {
        fprintf (stderr, "airlock demo: --config FILE is required\n");
        return AL_EXIT_USAGE;
    }
    return -1;
}

//  The qa agent tries to deploy v2 to production directly: the broker must deny it.
static int
s_demo_agent_deploy (int argc, char **argv)
{
    s_bus_options_t options;
    int rc = s_bus_options (argc, argv, &options);
    if (rc >= 0)
        return rc;
    al_config_t *config = NULL;
    al_agent_t *agent = s_connect (options.config, "qa", false, &config);
    rc = AL_EXIT_USAGE;
    if (agent) {
        Airlock__DeployRequest request = AIRLOCK__DEPLOY_REQUEST__INIT;
        request.service = "demo";
        request.version = "v2";
        request.artifact_uri = "file:///artifacts/demo-v2";
        request.artifact_sha256 = (char *) s_digest;
        request.strategy = AIRLOCK__STRATEGY__STRATEGY_ROLLING;
        request.instances = 3;
        request.deployment_type = AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD;
        al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
        envelope.deployment_id = "demo-v2";
        envelope.environment = AIRLOCK__ENVIRONMENT__ENV_PRODUCTION;
        envelope.body_case = AIRLOCK__ENVELOPE__BODY_DEPLOY_REQUEST;
        envelope.deploy_request = &request;
        al_agent_result_t result;
        al_agent_status_t status = al_agent_send (agent, &envelope, 10000, &result);
        if (status == AL_AGENT_DENIED) {
            //  The broker's reason names who, what and where: the line says it once.
            printf ("[DENIED] demo v2 straight to production, audit row %llu: %s\n",
                    (unsigned long long) result.audit_sequence, result.reason);
            rc = AL_EXIT_OK;
        }
        else {
            printf ("[UNEXPECTED] the broker answered %s to an agent's production deploy\n",
                    al_agent_status_name (status));
            rc = AL_EXIT_BAD;
        }
    }
    al_agent_destroy (&agent);
    al_config_destroy (&config);
    return rc;
}

//  orchestrator files a production deployment request (seed 001's template fields).
static int
s_demo_file_request (int argc, char **argv)
{
    s_bus_options_t options;
    int rc = s_bus_options (argc, argv, &options);
    if (rc >= 0)
        return rc;
    if (!options.request) {
        fprintf (stderr, "airlock demo file-request: --request ID is required\n");
        return AL_EXIT_USAGE;
    }
    al_config_t *config = NULL;
    al_agent_t *agent = s_connect (options.config, "orchestrator", false, &config);
    rc = AL_EXIT_USAGE;
    if (agent) {
        static const char qa_digest [] = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";
        Airlock__ChecklistItem items [] = {
            AIRLOCK__CHECKLIST_ITEM__INIT, AIRLOCK__CHECKLIST_ITEM__INIT, AIRLOCK__CHECKLIST_ITEM__INIT,
            AIRLOCK__CHECKLIST_ITEM__INIT, AIRLOCK__CHECKLIST_ITEM__INIT,
        };
        const char *texts [][2] = {
            { "Tests Passed", "Unit tests: 150/150 passed" },
            { "Tests Passed", "Integration tests: 45/45 passed" },
            { "Database Changes", "No migrations" },
            { "Dependencies", "No new dependencies" },
            { "Monitoring", "Alerts configured; soak watches the golden signals" },
        };
        Airlock__ChecklistItem *checklist [5];
        for (size_t i = 0; i < 5; i++) {
            items [i].section = (char *) texts [i][0];
            items [i].text = (char *) texts [i][1];
            items [i].checked = true;
            checklist [i] = &items [i];
        }
        Airlock__ApprovalRequest request = AIRLOCK__APPROVAL_REQUEST__INIT;
        request.request_id = (char *) options.request;
        request.deployment_type = AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD;
        request.environment = AIRLOCK__ENVIRONMENT__ENV_PRODUCTION;
        request.service = "demo";
        request.version = "v2";
        request.artifact_uri = "file:///artifacts/demo-v2";
        request.artifact_sha256 = (char *) s_digest;
        request.qa_report_sha256 = (char *) qa_digest;
        request.urgency = "Routine";
        request.risk_level = "Low";
        request.risk_impact = "checkout latency if the new cache misbehaves";
        request.risk_mitigation = "automatic rollback on a quality rule breach";
        request.summary = "demo v2: faster checkout";
        request.rollback_command = "airlock rollback demo-v2";
        request.rollback_estimate_minutes = 2;
        request.strategy = AIRLOCK__STRATEGY__STRATEGY_ROLLING;
        request.instances = 3;
        request.n_checklist = 5;
        request.checklist = checklist;
        al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
        envelope.deployment_id = (char *) options.request;
        envelope.environment = AIRLOCK__ENVIRONMENT__ENV_PRODUCTION;
        envelope.body_case = AIRLOCK__ENVELOPE__BODY_APPROVAL_REQUEST;
        envelope.approval_request = &request;
        al_agent_result_t result;
        al_agent_status_t status = al_agent_send (agent, &envelope, 10000, &result);
        if (status == AL_AGENT_ACKED) {
            printf ("[REQUEST] orchestrator filed %s: demo v2 to production, "
                    "AWAITING HUMAN APPROVAL (audit row %llu)\n", options.request,
                    (unsigned long long) result.audit_sequence);
            rc = AL_EXIT_OK;
        }
        else {
            printf ("[UNEXPECTED] filing the request: %s %s\n", al_agent_status_name (status), result.reason);
            rc = AL_EXIT_BAD;
        }
    }
    al_agent_destroy (&agent);
    al_config_destroy (&config);
    return rc;
}

//  deploy-manager waits for the broker's production grant and shows what it carries.
static int
s_demo_await_grant (int argc, char **argv)
{
    s_bus_options_t options;
    int rc = s_bus_options (argc, argv, &options);
    if (rc >= 0)
        return rc;
    al_config_t *config = NULL;
    al_agent_t *agent = s_connect (options.config, "deploy-manager", true, &config);
    rc = AL_EXIT_BAD;
    printf ("[DEPLOY-MANAGER] waiting for a production grant...\n");
    fflush (stdout);
    for (long waited = 0; agent && waited < options.seconds && rc != AL_EXIT_OK; waited++) {
        al_envelope_t *delivery = al_agent_recv (agent, 1000);
        if (!delivery)
            continue;
        if (delivery->body_case == AIRLOCK__ENVELOPE__BODY_EXECUTE_DEPLOY && delivery->execute_deploy->grant
        &&  delivery->environment == AIRLOCK__ENVIRONMENT__ENV_PRODUCTION) {
            const Airlock__ProductionGrant *grant = delivery->execute_deploy->grant;
            printf ("[GRANT] from %s: request %s, %s %s, artifact sha256 %.16s..., %zu signed approval(s), "
                    "quorum completed at row %llu\n", delivery->sender ? delivery->sender->identity : "?", grant->request_id,
                    delivery->execute_deploy->request->service, delivery->execute_deploy->request->version,
                    delivery->execute_deploy->request->artifact_sha256, grant->n_approvals,
                    (unsigned long long) grant->grant_audit_sequence);
            rc = AL_EXIT_OK;
        }
        if (delivery->delivery_id)
            al_agent_ack_delivery (agent, delivery->delivery_id);
        al_codec_free (&delivery);
    }
    if (agent)
        al_agent_flush (agent, 5000);
    al_agent_destroy (&agent);
    al_config_destroy (&config);
    return rc;
}

//  User traffic for the monitor to measure: without requests there is no error rate and
//  no latency, only "no evidence". Reads the process driver's instance registry, so it
//  follows every rollout.
static size_t
s_discard (char *data, size_t size, size_t count, void *arg)
{
    (void) data;
    (void) arg;
    return size * count;
}

static int
s_demo_load (int argc, char **argv)
{
    //  Like demo's other subcommands (getopt's -h): the usage, exit 0.
    if (al_cli_wants_help (argc, argv)) {
        s_demo_usage (stdout);
        return AL_EXIT_OK;
    }
    const char *service = NULL, *env = "production";
    int rps = 40, seconds = 60;
    al_cli_number_t rate = { "demo load", "--rps", "requests a second", 1, 1000, &rps, NULL };
    al_cli_number_t duration = { "demo load", "--seconds", "seconds", 1, 86400, &seconds, NULL };
    const al_cli_option_t options [] = {
        { "--service", .value = &service }, { "--env", .value = &env },
        { "--rps", .take = al_cli_take_number, .arg = &rate },
        { "--seconds", .take = al_cli_take_number, .arg = &duration }, { .name = NULL }
    };
    const al_cli_parser_t parser = { "demo load", s_demo_usage, .config = true, .options = options };
    al_cli_common_t common;
    if (al_cli_parse (&parser, argc, argv, &common) != 0)
        return AL_EXIT_USAGE;
    //  The demo's own state directory is named: no fallback to $AIRLOCK_CONFIG here.
    if ((!common.config_option && !common.state_option) || !service) {
        s_demo_usage (stderr);
        return AL_EXIT_USAGE;
    }
    const char *config_path = common.config_path;
    char error [512];
    al_config_t *config = al_config_load (config_path, error, sizeof error);
    if (!config) {
        fprintf (stderr, "airlock demo load: %s\n", error);
        return AL_EXIT_USAGE;
    }
    char registry [2048];
    al_instances_path_in_state (al_config_state_dir (config), service, env, registry, sizeof registry);
    al_config_destroy (&config);
    CURL *curl = curl_easy_init ();
    if (!curl)
        return AL_EXIT_USAGE;
    double deadline = s_monotonic () + (double) seconds;
    unsigned long requests = 0, errors = 0, turn = 0;
    al_agent_catch_signals ();
    while (s_monotonic () < deadline && !al_agent_interrupted ()) {
        al_instance_record_t *instances = NULL;
        size_t count = 0;
        if (al_instances_read (registry, AL_INSTANCES_TO_REACH, &instances, &count, NULL, error, sizeof error) != 0)
            count = 0;
        if (count) {
            char url [128];
            snprintf (url, sizeof url, "http://127.0.0.1:%d/work?n=1000", instances [turn++ % count].port);
            curl_easy_setopt (curl, CURLOPT_URL, url);
            curl_easy_setopt (curl, CURLOPT_TIMEOUT_MS, 1000L);
            curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, s_discard);
            long status = 0;
            requests++;
            if (curl_easy_perform (curl) != CURLE_OK
            ||  curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK || status >= 500)
                errors++;
        }
        free (instances);
        struct timespec pause = { 0, 1000000000L / rps };
        nanosleep (&pause, NULL);
    }
    curl_easy_cleanup (curl);
    printf ("load: %lu requests to %s in %s, %lu errors\n", requests, service, env, errors);
    return AL_EXIT_OK;
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
    if (strcmp (argv [1], "agent-deploy") == 0)
        return s_demo_agent_deploy (argc - 1, argv + 1);
    if (strcmp (argv [1], "file-request") == 0)
        return s_demo_file_request (argc - 1, argv + 1);
    if (strcmp (argv [1], "await-grant") == 0)
        return s_demo_await_grant (argc - 1, argv + 1);
    if (strcmp (argv [1], "load") == 0)
        return s_demo_load (argc - 1, argv + 1);
    fprintf (stderr, "airlock demo: unknown step '%s'\n", argv [1]);
    s_demo_usage (stderr);
    return AL_EXIT_USAGE;
}
