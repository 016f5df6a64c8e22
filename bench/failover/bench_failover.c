/*  bench_failover.c: broker failover under load (docs/ha.md).

    A throwaway PostgreSQL (tests/pg's harness), one `airlock init` state directory and
    two `airlock broker` processes (A, B) sharing the database, each with its own ipc://
    endpoints; the clients know both. Load: an orchestrator client keeps up to 32 staging
    DeployRequests in flight (pipelined), a deploy-manager client takes their deliveries
    and acknowledges them. Then, BENCH_FAILOVER_KILLS times (default 10): the active
    broker is killed with SIGKILL and started again at once (it comes back as a standby),
    and the time from the kill to the first row the new leader commits is measured on
    the database itself (the lease's epoch grows, then the log's max sequence grows past
    what it was at that moment: a commit the killed broker had in flight is not counted).
    At the end every message the client saw acknowledged is looked up in the log
    (acked_lost: missing ones), and every deploy request handed to the deploy-manager
    more than once is counted (duplicate_deploys). Last, the raw append rate of the
    PostgreSQL store beside SQLite's (transactions of 100 events, same machine).
    Prints RESULT lines; exits non-zero if a run did not complete.
*/
#include "agents/al_agent.h"
#include "base/al_config.h"
#include "store/al_store.h"
#include "store/al_store_pg.h"
#include "pg_harness.h"

#include <czmq.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/wait.h>

#define S_WINDOW 32
#define S_MAX_ACKED 1000000

typedef struct {
    char dir [128];
    char *dsn;
    char config [2][256];
    char clients [256];
    pid_t broker [2];
    int restarts [2];
    PGconn *db;
    volatile bool stop;
    //  the load client's outcomes
    pthread_mutex_t mutex;
    char (*acked_ids) [AL_AGENT_ID_SIZE];
    uint64_t *acked_sequences;
    size_t acked;
    zhashx_t *delivered;            // message id -> count (deploy-manager side)
    size_t duplicates;
    size_t deliveries;
} s_bench_t;

static int
s_shell (const char *format, ...)
{
    char command [4096];
    va_list args;
    va_start (args, format);
    vsnprintf (command, sizeof command, format, args);
    va_end (args);
    int rc = system (command);
    return WIFEXITED (rc)? WEXITSTATUS (rc): -1;
}

static void
s_start_broker (s_bench_t *self, int which)
{
    char log [300];
    snprintf (log, sizeof log, "%s/broker-%c.log", self->dir, 'a' + which);
    fflush (stdout);
    pid_t pid = fork ();
    if (pid == 0) {
        FILE *out = freopen (log, "a", stderr);
        out = freopen (log, "a", stdout);
        (void) out;
        execl (AIRLOCK_BIN, AIRLOCK_BIN, "broker", "--config", self->config [which], (char *) NULL);
        _exit (127);
    }
    self->broker [which] = pid;
    self->restarts [which]++;
}

//  The latest "is active (lease epoch N)" of each broker's log: which one leads now.
static int
s_active (s_bench_t *self)
{
    PGresult *result = PQexec (self->db, "SELECT holder FROM airlock_ha.leader WHERE id = 1 AND expires_at > clock_timestamp()");
    int which = -1;
    if (PQresultStatus (result) == PGRES_TUPLES_OK && PQntuples (result) == 1) {
        const char *holder = PQgetvalue (result, 0, 0);
        which = strncmp (holder, "a-", 2) == 0? 0: strncmp (holder, "b-", 2) == 0? 1: -1;
    }
    PQclear (result);
    return which;
}

static uint64_t
s_epoch (s_bench_t *self)
{
    PGresult *result = PQexec (self->db, "SELECT epoch FROM airlock_ha.leader WHERE id = 1");
    uint64_t value = PQresultStatus (result) == PGRES_TUPLES_OK && PQntuples (result) == 1
                   ? strtoull (PQgetvalue (result, 0, 0), NULL, 10): 0;
    PQclear (result);
    return value;
}

static uint64_t
s_max_sequence (s_bench_t *self)
{
    PGresult *result = PQexec (self->db, "SELECT coalesce(max(seq), 0) FROM events");
    uint64_t value = PQresultStatus (result) == PGRES_TUPLES_OK? strtoull (PQgetvalue (result, 0, 0), NULL, 10): 0;
    PQclear (result);
    return value;
}

static al_agent_t *
s_agent (s_bench_t *self, const char *role, bool deliveries)
{
    char error [1024] = "";
    al_config_t *config = al_config_load (self->clients, error, sizeof error);
    al_agent_t *agent = config? al_agent_new_for_role (config, role, deliveries, error, sizeof error): NULL;
    al_config_destroy (&config);
    if (!agent)
        fprintf (stderr, "bench_failover: %s: %s\n", role, error);
    return agent;
}

static void *
s_load (void *args)
{
    s_bench_t *self = args;
    al_agent_t *agent = s_agent (self, "orchestrator", false);
    if (!agent)
        return NULL;
    uint64_t counter = 0;
    size_t in_flight = 0;
    while (!self->stop) {
        while (in_flight < S_WINDOW && !self->stop) {
            char version [32], deployment [48];
            snprintf (version, sizeof version, "v%llu", (unsigned long long) ++counter);
            snprintf (deployment, sizeof deployment, "bench-%llu", (unsigned long long) counter);
            al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
            Airlock__DeployRequest request = AIRLOCK__DEPLOY_REQUEST__INIT;
            request.service = "demo";
            request.version = version;
            request.artifact_sha256 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
            envelope.deployment_id = deployment;
            envelope.environment = AIRLOCK__ENVIRONMENT__ENV_STAGING;
            envelope.body_case = AIRLOCK__ENVELOPE__BODY_DEPLOY_REQUEST;
            envelope.deploy_request = &request;
            if (al_agent_post (agent, &envelope, 1000, NULL, NULL, 0) != AL_AGENT_QUEUED)
                break;
            in_flight++;
        }
        al_agent_result_t result;
        al_agent_status_t status = al_agent_next_result (agent, 200, &result);
        if (status == AL_AGENT_TIMEOUT)
            continue;
        in_flight--;
        if (status == AL_AGENT_ACKED) {
            pthread_mutex_lock (&self->mutex);
            if (self->acked < S_MAX_ACKED) {
                strcpy (self->acked_ids [self->acked], result.message_id);
                self->acked_sequences [self->acked++] = result.audit_sequence;
            }
            pthread_mutex_unlock (&self->mutex);
        }
        else
            fprintf (stderr, "bench_failover: %s: %s\n", al_agent_status_name (status), result.reason);
    }
    al_agent_flush (agent, 2000);
    al_agent_destroy (&agent);
    return NULL;
}

static void *
s_deploy_manager (void *args)
{
    s_bench_t *self = args;
    al_agent_t *agent = s_agent (self, "deploy-manager", true);
    if (!agent)
        return NULL;
    while (!self->stop) {
        al_envelope_t *delivery = al_agent_recv (agent, 200);
        if (!delivery)
            continue;
        if (delivery->body_case == AIRLOCK__ENVELOPE__BODY_DEPLOY_REQUEST) {
            pthread_mutex_lock (&self->mutex);
            self->deliveries++;
            uintptr_t seen = (uintptr_t) zhashx_lookup (self->delivered, delivery->message_id);
            if (seen)
                self->duplicates++;
            zhashx_update (self->delivered, delivery->message_id, (void *) (seen + 1));
            pthread_mutex_unlock (&self->mutex);
        }
        if (delivery->delivery_id)
            al_agent_ack_delivery (agent, delivery->delivery_id);
        al_codec_free (&delivery);
    }
    al_agent_flush (agent, 2000);
    al_agent_destroy (&agent);
    return NULL;
}

static int
s_compare (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y? -1: x > y;
}

//  Events per second appending 2,000 events in transactions of 100 to BACKEND at PATH.
static double
s_append_rate (const char *backend, const char *path)
{
    char error [512] = "";
    al_store_t *store = al_store_open (backend, path, NULL, error, sizeof error);
    if (!store) {
        fprintf (stderr, "bench_failover: %s: %s\n", backend? backend: "sqlite", error);
        return 0;
    }
    uint8_t body [256];
    memset (body, 'x', sizeof body);
    char id [32];
    int64_t started = zclock_usecs ();
    for (int batch = 0; batch < 20; batch++) {
        al_store_begin (store);
        for (int i = 0; i < 100; i++) {
            snprintf (id, sizeof id, "m-%d-%d", batch, i);
            al_store_event_t event = { .type = "DeployProgress", .sender = "bench", .role = "deploy-manager",
                                       .message_id = id, .deployment_id = "", .environment = "staging",
                                       .decision = AL_STORE_ACCEPTED, .reason = "", .envelope = body,
                                       .envelope_size = sizeof body };
            al_store_append_result_t result;
            al_store_append (store, &event, &result);
        }
        if (al_store_commit (store) != AL_STORE_OK)
            fprintf (stderr, "bench_failover: commit: %s\n", al_store_error (store));
    }
    double seconds = (double) (zclock_usecs () - started) / 1e6;
    al_store_destroy (&store);
    return 2000 / seconds;
}

int
main (void)
{
    setvbuf (stdout, NULL, _IOLBF, 0);
    int kills = getenv ("BENCH_FAILOVER_KILLS")? atoi (getenv ("BENCH_FAILOVER_KILLS")): 10;
    s_bench_t *self = calloc (1, sizeof *self);
    self->acked_ids = calloc (S_MAX_ACKED, AL_AGENT_ID_SIZE);
    self->acked_sequences = calloc (S_MAX_ACKED, sizeof (uint64_t));
    self->delivered = zhashx_new ();
    pthread_mutex_init (&self->mutex, NULL);
    int rc = 1;
    char error [1024] = "";
    pg_harness_t *pg = pg_harness_new (error, sizeof error);
    if (!pg) {
        fprintf (stderr, "bench_failover: %s\n", error);
        return 1;
    }
    self->dsn = pg_harness_database_new (pg, "bench_failover", error, sizeof error);
    snprintf (self->dir, sizeof self->dir, "/tmp/al-bench-failover-XXXXXX");
    if (!self->dsn || !mkdtemp (self->dir) || s_shell ("'%s' init '%s' > /dev/null", AIRLOCK_BIN, self->dir)) {
        fprintf (stderr, "bench_failover: setup failed: %s\n", error);
        goto done;
    }
    char routers [600], pubs [600];
    snprintf (routers, sizeof routers, "ipc://%s/a-router.ipc, ipc://%s/b-router.ipc", self->dir, self->dir);
    snprintf (pubs, sizeof pubs, "ipc://%s/a-pub.ipc, ipc://%s/b-pub.ipc", self->dir, self->dir);
    const char *names [] = { "a", "b", "clients" };
    for (int i = 0; i < 3; i++) {
        char *path = i < 2? self->config [i]: self->clients;
        snprintf (path, 256, "%s/%s.yaml", self->dir, names [i]);
        FILE *file = fopen (path, "w");
        fprintf (file, "state_dir: %s\nendpoints:\n  router: ipc://%s/%s-router.ipc\n  pub: ipc://%s/%s-pub.ipc\n"
                       "  brokers: \"%s\"\n  events: \"%s\"\n"
                       "checkpoint:\n  path: %s/checkpoints/%s.ckpt\n"
                       "store:\n  backend: postgres\n  dsn: \"%s\"\nha:\n  name: %s\n  lease_ms: 3000\n",
                 self->dir, self->dir, names [i], self->dir, names [i], routers, pubs, self->dir, names [i],
                 self->dsn, names [i]);
        fclose (file);
    }
    self->db = PQconnectdb (self->dsn);
    s_start_broker (self, 0);
    while (s_active (self) != 0)
        zclock_sleep (50);
    s_start_broker (self, 1);
    pthread_t load, consumer;
    pthread_create (&load, NULL, s_load, self);
    pthread_create (&consumer, NULL, s_deploy_manager, self);
    zclock_sleep (3000);

    double *seconds = calloc ((size_t) kills, sizeof (double));
    int runs = 0;
    for (int run = 0; run < kills; run++) {
        int active = s_active (self);
        if (active < 0) {
            fprintf (stderr, "bench_failover: no active broker before kill %d\n", run + 1);
            break;
        }
        uint64_t before_acked = self->acked;
        uint64_t old_epoch = s_epoch (self);
        int64_t killed = zclock_usecs ();
        kill (self->broker [active], SIGKILL);
        waitpid (self->broker [active], NULL, 0);
        s_start_broker (self, active);          // back as a standby
        //  A COMMIT the killed broker had sent may still land; the takeover waits for it
        //  (the fence's row lock), so rows after the new epoch appears are the new
        //  leader's.
        int64_t deadline = zclock_mono () + 60000;
        while (s_epoch (self) <= old_epoch && zclock_mono () < deadline)
            zclock_sleep (10);
        uint64_t last = s_max_sequence (self);
        while (s_max_sequence (self) <= last && zclock_mono () < deadline)
            zclock_sleep (10);
        if (s_max_sequence (self) <= last) {
            fprintf (stderr, "bench_failover: run %d: the new leader committed nothing within 60 s\n", run + 1);
            break;
        }
        seconds [runs++] = (double) (zclock_usecs () - killed) / 1e6;
        int now_active = s_active (self);
        printf ("failover %d: %s killed, %s%s leads, first commit %.2f s after the kill\n", run + 1,
                active? "b": "a", now_active == 0? "a": now_active == 1? "b": "?",
                now_active == active? " (restarted)": "", seconds [runs - 1]);
        //  Let the load settle on the new leader before the next kill.
        while (self->acked < before_acked + 200 && zclock_mono () < deadline)
            zclock_sleep (50);
        zclock_sleep (1000);
    }
    self->stop = true;
    pthread_join (load, NULL);
    pthread_join (consumer, NULL);

    //  Every acknowledged message is in the log, at the sequence it was acknowledged with
    //  (one query for all of the client's rows, then a table lookup per message).
    size_t lost = 0;
    zhashx_t *logged = zhashx_new ();
    PGresult *rows = PQexec (self->db, "SELECT convert_from(message_id, 'UTF8'), seq FROM events"
                                       " WHERE sender = convert_to('orchestrator', 'UTF8')");
    if (PQresultStatus (rows) == PGRES_TUPLES_OK)
        for (int i = 0; i < PQntuples (rows); i++)
            zhashx_update (logged, PQgetvalue (rows, i, 0),
                           (void *) (uintptr_t) strtoull (PQgetvalue (rows, i, 1), NULL, 10));
    else
        fprintf (stderr, "bench_failover: %s", PQerrorMessage (self->db));
    PQclear (rows);
    for (size_t i = 0; i < self->acked; i++)
        if ((uint64_t) (uintptr_t) zhashx_lookup (logged, self->acked_ids [i]) != self->acked_sequences [i])
            lost++;
    zhashx_destroy (&logged);
    qsort (seconds, (size_t) runs, sizeof (double), s_compare);
    printf ("acknowledged %zu messages, %zu deploy requests delivered\n", self->acked, self->deliveries);
    printf ("RESULT failover.runs %d kills\n", runs);
    if (runs) {
        printf ("RESULT failover.p50_s %.2f s\n", seconds [(runs - 1) / 2]);
        printf ("RESULT failover.p95_s %.2f s\n", seconds [(int) ((runs - 1) * 0.95 + 0.5)]);
    }
    printf ("RESULT failover.acked_lost %zu messages\n", lost);
    printf ("RESULT failover.duplicate_deploys %zu deploys\n", self->duplicates);
    for (int i = 0; i < 2; i++) {
        kill (self->broker [i], SIGTERM);
        waitpid (self->broker [i], NULL, 0);
    }
    char *rate_dsn = pg_harness_database_new (pg, "bench_rate", error, sizeof error);
    char sqlite_path [300];
    snprintf (sqlite_path, sizeof sqlite_path, "%s/rate.db", self->dir);
    double pg_rate = rate_dsn? s_append_rate (AL_STORE_PG_BACKEND, rate_dsn): 0;
    double sqlite_rate = s_append_rate (NULL, sqlite_path);
    free (rate_dsn);
    printf ("RESULT failover.append_postgres %.0f events/s\n", pg_rate);
    printf ("RESULT failover.append_sqlite %.0f events/s\n", sqlite_rate);
    if (sqlite_rate > 0)
        printf ("RESULT failover.append_postgres_vs_sqlite %.2f x\n", pg_rate / sqlite_rate);
    free (seconds);
    rc = runs == kills && lost == 0 && self->duplicates == 0? 0: 1;
done:
    PQfinish (self->db);
    s_shell ("rm -rf '%s'", self->dir);
    free (self->dsn);
    pg_harness_destroy (&pg);
    zhashx_destroy (&self->delivered);
    free (self->acked_ids);
    free (self->acked_sequences);
    free (self);
    return rc;
}
