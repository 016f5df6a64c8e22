/*  release_cluster.c: two brokers on one PostgreSQL, the five agents and the demo
    service, for failover in the middle of real releases. See release_cluster.h.

    Processes are started with fork/exec, each with its log in the state directory
    (broker-a.log, broker-b.log, ROLE.log); the CLI runs through system() with its output
    in dir/NAME.out. PostgreSQL is read with libpq on one connection owned by the driving
    thread (the ledger thread never touches it).
*/
#include "release_cluster.h"
#include "agents/al_agent.h"
#include "base/al_config.h"
#include "base/al_error.h"
#include "deploy/al_artifacts.h"
#include "pg_harness.h"

#include <czmq.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/wait.h>

#define S_AGENTS 5
#define S_LEDGER_MAX 1000000

static const char *s_roles [S_AGENTS] = { "orchestrator", "qa", "deploy-manager", "monitor", "notifier" };

typedef struct {
    char message_id [AL_AGENT_ID_SIZE];
    uint64_t sequence;
    uint8_t hash [32];
} s_ack_t;

struct _rc_cluster_t {
    char dir [128];
    char airlock [600];
    char binary_dir [400];
    char config_broker [2][300];
    char config_clients [300];
    pg_harness_t *pg;
    char *dsn;
    PGconn *db;
    pid_t broker [2];
    pid_t agents [S_AGENTS];
    //  the ledger
    pthread_t ledger;
    bool ledger_running;
    volatile bool ledger_stop;
    size_t window;
    int gap_ms;
    pthread_mutex_t mutex;
    s_ack_t *acks;
    size_t acked;
    uint64_t rows [64];             // audit rows commands reported (approvals)
    size_t row_count;
};

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

static char *
s_read (const char *path)
{
    FILE *file = fopen (path, "rb");
    if (!file)
        return NULL;
    fseek (file, 0, SEEK_END);
    long size = ftell (file);
    fseek (file, 0, SEEK_SET);
    char *text = malloc ((size_t) (size > 0? size: 0) + 1);
    size_t got = text? fread (text, 1, (size_t) (size > 0? size: 0), file): 0;
    if (text)
        text [got] = 0;
    fclose (file);
    return text;
}

static pid_t
s_spawn (rc_cluster_t *self, const char *log, const char *const *argv)
{
    char path [400];
    snprintf (path, sizeof path, "%s/%s.log", self->dir, log);
    fflush (stdout);
    fflush (stderr);
    pid_t pid = fork ();
    if (pid == 0) {
        FILE *out = freopen (path, "a", stderr);
        out = freopen (path, "a", stdout);
        (void) out;
        execv (argv [0], (char *const *) argv);
        _exit (127);
    }
    return pid;
}

static void
s_stop (pid_t *pid, int signum)
{
    if (*pid > 0) {
        kill (*pid, signum);
        waitpid (*pid, NULL, 0);
        *pid = 0;
    }
}

static void
s_start_broker (rc_cluster_t *self, int which)
{
    const char *argv [] = { self->airlock, "broker", "--config", self->config_broker [which], NULL };
    self->broker [which] = s_spawn (self, which? "broker-b": "broker-a", argv);
}

//  An airlock command as the clients' config, output in dir/NAME.out; its exit code.
static int
s_airlock (rc_cluster_t *self, const char *name, const char *arguments)
{
    //  stderr apart: a client that first tries the standby warns there before it moves.
    return s_shell ("'%s' %s --config '%s' > '%s/%s.out' 2> '%s/%s.err'", self->airlock, arguments, self->config_clients,
                    self->dir, name, self->dir, name);
}

//  A command's stdout (dir/NAME.out), or the file NAME names when it has a suffix
//  ("approve.err"). Caller frees; NULL if missing.
static char *
s_output (rc_cluster_t *self, const char *name)
{
    char path [400];
    snprintf (path, sizeof path, strchr (name, '.')? "%s/%s": "%s/%s.out", self->dir, name);
    return s_read (path);
}

//  The store and ha lines of a broker's airlock.yaml: the one place that spells the HA
//  syntax (the shared log and the lease in the PostgreSQL database at store.dsn).
static void
s_write_ha (FILE *file, const char *dsn, const char *name)
{
    fprintf (file, "store:\n  backend: postgres\n  dsn: \"%s\"\n", dsn);
    fprintf (file, "ha:\n  name: %s\n  lease_ms: 3000\n", name);
}

//  An airlock.yaml from the init one (TEXT): the endpoints of NAME (both brokers listed),
//  its own checkpoint file, and the ha lines for a broker.
static int
s_write_config (rc_cluster_t *self, const char *path, const char *text, const char *name, bool broker,
                char *error, size_t error_size)
{
    const char *endpoints = strstr (text, "endpoints:\n"), *keys = strstr (text, "keys:\n"),
               *checkpoint = strstr (text, "checkpoint:\n");
    if (!endpoints || !keys || !checkpoint || !(endpoints < keys && keys < checkpoint)) {
        al_error_set (error, error_size, "%s/airlock.yaml: not the layout `airlock init` writes", self->dir);
        return -1;
    }
    FILE *file = fopen (path, "w");
    if (!file) {
        al_error_set (error, error_size, "%s: %s", path, strerror (errno));
        return -1;
    }
    const char *own = strcmp (name, "b") == 0? "b": "a";
    fprintf (file, "%.*s", (int) (endpoints - text), text);
    fprintf (file, "endpoints:\n  router: \"ipc://%s/%s-router.ipc\"\n  pub: \"ipc://%s/%s-pub.ipc\"\n"
                   "  brokers: \"ipc://%s/a-router.ipc, ipc://%s/b-router.ipc\"\n"
                   "  events: \"ipc://%s/a-pub.ipc, ipc://%s/b-pub.ipc\"\n",
             self->dir, own, self->dir, own, self->dir, self->dir, self->dir, self->dir);
    fprintf (file, "%.*s", (int) (checkpoint - keys), keys);
    fprintf (file, "checkpoint:\n  every_events: 1000\n  every_seconds: 60\n  path: \"%s/checkpoints/%s.ckpt\"\n",
             self->dir, name);
    if (broker)
        s_write_ha (file, self->dsn, name);
    fclose (file);
    return 0;
}

//  The policy's calendar open all day, alice a manager, the demo service.
static int
s_write_state (rc_cluster_t *self, int staging_soak_ms, char *error, size_t error_size)
{
    char path [400];
    snprintf (path, sizeof path, "%s/policy/constraints.yaml", self->dir);
    char *text = s_read (path);
    char *calendar = text? strstr (text, "\ncalendar:"): NULL;
    if (!calendar) {
        free (text);
        al_error_set (error, error_size, "%s: no calendar section", path);
        return -1;
    }
    calendar [1] = 0;
    FILE *file = fopen (path, "w");
    if (!file) {
        free (text);
        al_error_set (error, error_size, "%s: %s", path, strerror (errno));
        return -1;
    }
    fprintf (file, "%scalendar:\n  timezone: UTC\n  applies_to: [production]\n  windows: []\n"
                   "  freezes:\n    weekdays: []\n    holidays: []\n    month_end: off\n", text);
    fclose (file);
    free (text);

    snprintf (path, sizeof path, "%s/alice.key.pub", self->dir);
    text = s_read (path);
    char hex [65] = "";
    if (!text || sscanf (text, "airlock-ed25519 %64s", hex) != 1) {
        free (text);
        al_error_set (error, error_size, "%s: not an airlock public key", path);
        return -1;
    }
    free (text);
    snprintf (path, sizeof path, "%s/policy/approvers.yaml", self->dir);
    file = fopen (path, "w");
    if (!file) {
        al_error_set (error, error_size, "%s: %s", path, strerror (errno));
        return -1;
    }
    fprintf (file, "approvers:\n  - name: alice\n    roles: [manager]\n    keys:\n      - {id: alice, ed25519: \"%s\"}\n", hex);
    fclose (file);

    snprintf (path, sizeof path, "%s/services.yaml", self->dir);
    file = fopen (path, "w");
    if (!file) {
        al_error_set (error, error_size, "%s: %s", path, strerror (errno));
        return -1;
    }
    fprintf (file, "version: 1\nservices:\n  demo:\n    driver: process\n    instances: 2\n    strategy: rolling\n"
                   "    soak_ms: %d\n    soak: { duration_ms: 1500, reason: \"test: 1.5 s of production soak suffice\" }\n"
                   "    probe_interval_ms: 100\n    ready_timeout_ms: 10000\n"
                   "    stop_timeout_ms: 2000\n    command: [\"{{artifact}}\"]\n"
                   "    qa:\n      smoke:\n        - { name: health, path: /healthz, status: 200, body_contains: ok }\n",
             staging_soak_ms);
    fclose (file);
    return 0;
}

//  Which agent roles `airlock status --json` lists.
static int
s_registered (rc_cluster_t *self)
{
    if (s_airlock (self, "agents", "status --json") != 0)
        return 0;
    char *agents = s_output (self, "agents");
    int alive = 0;
    for (int i = 0; i < S_AGENTS; i++) {
        char needle [64];
        snprintf (needle, sizeof needle, "\"role\": \"%s\"", s_roles [i]);
        alive += agents && strstr (agents, needle) != NULL;
    }
    free (agents);
    return alive;
}

static bool
s_log_has (rc_cluster_t *self, const char *log, const char *text)
{
    return s_shell ("grep -q -- '%s' '%s/%s.log'", text, self->dir, log) == 0;
}

static bool
s_wait_log (rc_cluster_t *self, const char *log, const char *text)
{
    for (int64_t deadline = zclock_mono () + 60000; zclock_mono () < deadline; zclock_sleep (100))
        if (s_log_has (self, log, text))
            return true;
    return false;
}

rc_cluster_t *
rc_cluster_new (const char *binary_dir, int staging_soak_ms, char *error, size_t error_size)
{
    rc_cluster_t *self = calloc (1, sizeof *self);
    assert (self);
    pthread_mutex_init (&self->mutex, NULL);
    snprintf (self->binary_dir, sizeof self->binary_dir, "%s", binary_dir);
    snprintf (self->airlock, sizeof self->airlock, "%s/airlock", binary_dir);
    snprintf (self->dir, sizeof self->dir, "/tmp/al-release-failover-XXXXXX");
    if (!mkdtemp (self->dir)) {
        al_error_set (error, error_size, "mkdtemp: %s", strerror (errno));
        *self->dir = 0;
        goto failed;
    }
    self->pg = pg_harness_new (error, error_size);
    if (!self->pg)
        goto failed;
    self->dsn = pg_harness_database_new (self->pg, "release_failover", error, error_size);
    if (!self->dsn)
        goto failed;
    self->db = PQconnectdb (self->dsn);
    if (PQstatus (self->db) != CONNECTION_OK) {
        al_error_set (error, error_size, "%s: %s", self->dsn, PQerrorMessage (self->db));
        goto failed;
    }
    if (s_shell ("'%s' init '%s' > '%s/init.out' 2>&1 && '%s' keygen --name alice --out '%s/alice.key' >> '%s/init.out' 2>&1",
                 self->airlock, self->dir, self->dir, self->airlock, self->dir, self->dir) != 0) {
        al_error_set (error, error_size, "airlock init / keygen failed (%s/init.out)", self->dir);
        goto failed;
    }
    char path [400];
    snprintf (path, sizeof path, "%s/airlock.yaml", self->dir);
    char *text = s_read (path);
    if (!text) {
        al_error_set (error, error_size, "%s: cannot read", path);
        goto failed;
    }
    snprintf (self->config_broker [0], sizeof self->config_broker [0], "%s/broker-a.yaml", self->dir);
    snprintf (self->config_broker [1], sizeof self->config_broker [1], "%s/broker-b.yaml", self->dir);
    snprintf (self->config_clients, sizeof self->config_clients, "%s/clients.yaml", self->dir);
    int rc = s_write_config (self, self->config_broker [0], text, "a", true, error, error_size);
    if (rc == 0)
        rc = s_write_config (self, self->config_broker [1], text, "b", true, error, error_size);
    if (rc == 0)
        rc = s_write_config (self, self->config_clients, text, "clients", false, error, error_size);
    free (text);
    if (rc != 0 || s_write_state (self, staging_soak_ms, error, error_size) != 0)
        goto failed;

    //  A first: it takes the lease; then B, a standby.
    s_start_broker (self, 0);
    if (!s_wait_log (self, "broker-a", "is active (lease epoch")) {
        al_error_set (error, error_size, "broker A never took the lease (%s/broker-a.log)", self->dir);
        goto failed;
    }
    s_start_broker (self, 1);
    if (!s_wait_log (self, "broker-b", "is a standby until it holds the lease")) {
        al_error_set (error, error_size, "broker B never said it is a standby (%s/broker-b.log)", self->dir);
        goto failed;
    }
    for (int i = 0; i < S_AGENTS; i++) {
        bool monitor = strcmp (s_roles [i], "monitor") == 0;
        const char *argv [] = { self->airlock, "agent", s_roles [i], "--config", self->config_clients,
                                monitor? "--interval-ms": NULL, "250", NULL };
        self->agents [i] = s_spawn (self, s_roles [i], argv);
    }
    int alive = 0;
    for (int64_t deadline = zclock_mono () + 60000; zclock_mono () < deadline; zclock_sleep (250))
        if ((alive = s_registered (self)) == S_AGENTS)
            break;
    if (alive != S_AGENTS) {
        al_error_set (error, error_size, "only %d of the %d agents registered within 60 s", alive, S_AGENTS);
        goto failed;
    }
    return self;
failed:
    rc_dump_logs (self);
    rc_cluster_destroy (&self, false);
    return NULL;
}

//  Stop the service instances deploy-manager started (the driver's registries name them).
static void
s_stop_instances (rc_cluster_t *self)
{
    const char *environments [] = { "staging", "production" };
    for (int e = 0; e < 2; e++) {
        char path [600];
        snprintf (path, sizeof path, "%s/deploy/drivers/demo/%s/instances.json", self->dir, environments [e]);
        json_t *root = json_load_file (path, 0, NULL);
        size_t index;
        json_t *instance;
        json_array_foreach (json_object_get (root, "instances"), index, instance) {
            json_int_t pgid = json_integer_value (json_object_get (instance, "pgid"));
            if (pgid > 1 && kill (-(pid_t) pgid, SIGKILL) == 0)
                //  Gone before the directory they write logs into is removed.
                for (int64_t deadline = zclock_mono () + 5000; kill (-(pid_t) pgid, 0) == 0 && zclock_mono () < deadline; )
                    zclock_sleep (20);
        }
        json_decref (root);
    }
}

void
rc_cluster_destroy (rc_cluster_t **self_p, bool keep)
{
    assert (self_p);
    rc_cluster_t *self = *self_p;
    if (!self)
        return;
    rc_ledger_stop (self);
    for (int i = 0; i < S_AGENTS; i++)
        s_stop (&self->agents [i], SIGTERM);
    s_stop (&self->broker [0], SIGTERM);
    s_stop (&self->broker [1], SIGTERM);
    if (*self->dir)
        s_stop_instances (self);
    PQfinish (self->db);
    pg_harness_destroy (&self->pg);
    free (self->dsn);
    if (*self->dir && !keep)
        s_shell ("rm -rf '%s'", self->dir);
    else
    if (*self->dir)
        fprintf (stderr, "release_cluster: kept %s\n", self->dir);
    free (self->acks);
    pthread_mutex_destroy (&self->mutex);
    free (self);
    *self_p = NULL;
}

const char *
rc_dir (rc_cluster_t *self)
{
    return self->dir;
}

const char *
rc_dsn (rc_cluster_t *self)
{
    return self->dsn;
}

//  One number from SQL, -1 on error.
pg_harness_t *
rc_pg (rc_cluster_t *self)
{
    return self->pg;
}

long long
rc_sql_number (rc_cluster_t *self, const char *sql, char *error, size_t error_size)
{
    PGresult *result = PQexec (self->db, sql);
    long long value = -1;
    if (PQresultStatus (result) == PGRES_TUPLES_OK && PQntuples (result) >= 1)
        value = PQgetisnull (result, 0, 0)? 0: strtoll (PQgetvalue (result, 0, 0), NULL, 10);
    else
    if (error)
        al_error_set (error, error_size, "%s: %s", sql, PQerrorMessage (self->db));
    PQclear (result);
    return value;
}

int
rc_active (rc_cluster_t *self)
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

uint64_t
rc_epoch (rc_cluster_t *self)
{
    long long epoch = rc_sql_number (self, "SELECT epoch FROM airlock_ha.leader WHERE id = 1", NULL, 0);
    return epoch > 0? (uint64_t) epoch: 0;
}

static long long
s_max_sequence (rc_cluster_t *self)
{
    return rc_sql_number (self, "SELECT coalesce(max(seq), 0) FROM events", NULL, 0);
}

int
rc_kill_active (rc_cluster_t *self, double *seconds, char *error, size_t error_size)
{
    int active = rc_active (self);
    if (active < 0) {
        al_error_set (error, error_size, "no broker holds the lease");
        return -1;
    }
    uint64_t old_epoch = rc_epoch (self);
    int64_t killed = zclock_usecs ();
    kill (self->broker [active], SIGKILL);
    waitpid (self->broker [active], NULL, 0);
    s_start_broker (self, active);          // back as a standby
    //  A COMMIT the killed broker had sent may still land; the takeover waits for it
    //  (the fence's row lock), so rows after the new epoch appears are the new leader's.
    int64_t deadline = zclock_mono () + 60000;
    while (rc_epoch (self) <= old_epoch && zclock_mono () < deadline)
        zclock_sleep (10);
    if (rc_epoch (self) <= old_epoch) {
        al_error_set (error, error_size, "no broker took the lease within 60 s of killing %c", 'a' + active);
        return -1;
    }
    long long last = s_max_sequence (self);
    while (s_max_sequence (self) <= last && zclock_mono () < deadline)
        zclock_sleep (10);
    if (s_max_sequence (self) <= last) {
        al_error_set (error, error_size, "the new leader (epoch %llu) committed nothing within 60 s of the kill",
                 (unsigned long long) rc_epoch (self));
        return -1;
    }
    if (seconds)
        *seconds = (double) (zclock_usecs () - killed) / 1e6;
    return active;
}

int
rc_submit (rc_cluster_t *self, const char *id, const char *version, char *error, size_t error_size)
{
    char artifact [600], changes [600], sha [65];
    snprintf (artifact, sizeof artifact, "%s/art-%s.sh", self->dir, id);
    FILE *file = fopen (artifact, "w");
    if (!file) {
        al_error_set (error, error_size, "%s: %s", artifact, strerror (errno));
        return -1;
    }
    //  The release id in the script gives each release its own digest.
    fprintf (file, "#!/bin/sh\n# release %s\nexec '%s/demo-service' --version '%s' \"$@\"\n", id, self->binary_dir,
             version);
    fclose (file);
    if (chmod (artifact, 0755) != 0 || al_sha256_file_hex (artifact, sha, error, error_size) != 0)
        return -1;
    snprintf (changes, sizeof changes, "%s/changes-%s.txt", self->dir, id);
    file = fopen (changes, "w");
    if (!file) {
        al_error_set (error, error_size, "%s: %s", changes, strerror (errno));
        return -1;
    }
    fprintf (file, "release %s: faster checkout\n", id);
    fclose (file);
    char arguments [2048];
    snprintf (arguments, sizeof arguments, "submit --service demo --version '%s' --artifact '%s' --digest sha256:%s "
              "--changes '%s' --summary 'release %s' --id '%s'", version, artifact, sha, changes, version, id);
    if (s_airlock (self, "submit", arguments) != 0) {
        char *text = s_output (self, "submit"), *errors = s_output (self, "submit.err");
        al_error_set (error, error_size, "airlock submit %s: %s%s", id, text? text: "", errors? errors: "");
        free (text);
        free (errors);
        return -1;
    }
    return 0;
}

char *
rc_state (rc_cluster_t *self, const char *id)
{
    char arguments [256];
    snprintf (arguments, sizeof arguments, "status '%s' --json", id);
    if (s_airlock (self, "status", arguments) != 0)
        return NULL;
    char *text = s_output (self, "status");
    json_t *root = text? json_loads (text, 0, NULL): NULL;
    free (text);
    const char *state = json_string_value (json_object_get (json_object_get (root, "release"), "state"));
    char *copy = state? strdup (state): NULL;
    json_decref (root);
    return copy;
}

char *
rc_wait_state (rc_cluster_t *self, const char *id, const char *want, int timeout_ms)
{
    char *state = NULL;
    for (int64_t deadline = zclock_mono () + timeout_ms; zclock_mono () < deadline; ) {
        char *now = rc_state (self, id);
        if (now) {
            free (state);
            state = now;
            if (strcmp (state, want) == 0 || strcmp (state, "FAILED") == 0 || strcmp (state, "DONE") == 0
            ||  strcmp (state, "ROLLED_BACK") == 0)
                break;
        }
        zclock_sleep (250);
    }
    return state;
}

int
rc_approve (rc_cluster_t *self, const char *request, uint64_t *row, char *error, size_t error_size)
{
    char arguments [1024];
    snprintf (arguments, sizeof arguments, "approve '%s' --yes --key '%s/alice.key'", request, self->dir);
    int rc = s_airlock (self, "approve", arguments);
    char *text = s_output (self, "approve");
    char *errors = s_output (self, "approve.err");
    const char *recorded = text? strstr (text, "recorded as audit row "): NULL;
    unsigned long long sequence = 0;
    if (rc != 0 || !text || !strstr (text, "granted") || !recorded
    ||  sscanf (recorded, "recorded as audit row %llu", &sequence) != 1) {
        al_error_set (error, error_size, "airlock approve %s: exit %d: %s%s", request, rc, text? text: "(no output)",
                 errors? errors: "");
        free (text);
        free (errors);
        return -1;
    }
    free (text);
    free (errors);
    if (row)
        *row = sequence;
    return 0;
}

bool
rc_journal_has (rc_cluster_t *self, const char *deployment, const char *step, const char *phase)
{
    const char *values [3] = { deployment, step, phase };
    PGresult *result = PQexecParams (self->db, "SELECT count(*) FROM journal WHERE deployment_id = convert_to($1, 'UTF8')"
                                     " AND step = convert_to($2, 'UTF8') AND phase = convert_to($3, 'UTF8')",
                                     3, NULL, values, NULL, NULL, 0);
    bool found = PQresultStatus (result) == PGRES_TUPLES_OK && atoll (PQgetvalue (result, 0, 0)) > 0;
    PQclear (result);
    return found;
}

int
rc_audit_verify (rc_cluster_t *self)
{
    return s_shell ("'%s' audit verify --postgres '%s' > '%s/verify.out' 2>&1", self->airlock, self->dsn, self->dir);
}

int
rc_production_deploys (rc_cluster_t *self, size_t *deployments, size_t *grants, size_t *receipts,
                       size_t *duplicates, size_t *ungranted, char *error, size_t error_size)
{
    const char *sql =
        "SELECT convert_from(deployment_id, 'UTF8'),"
        " count(*) FILTER (WHERE type = convert_to('ExecuteDeploy', 'UTF8')),"
        " count(*) FILTER (WHERE type = convert_to('DeployReceipt', 'UTF8'))"
        " FROM events WHERE decision = 1 AND environment = convert_to('production', 'UTF8')"
        " AND type IN (convert_to('ExecuteDeploy', 'UTF8'), convert_to('DeployReceipt', 'UTF8'))"
        " GROUP BY deployment_id";
    PGresult *result = PQexec (self->db, sql);
    if (PQresultStatus (result) != PGRES_TUPLES_OK) {
        al_error_set (error, error_size, "production deploys: %s", PQerrorMessage (self->db));
        PQclear (result);
        return -1;
    }
    *deployments = *grants = *receipts = *duplicates = *ungranted = 0;
    for (int i = 0; i < PQntuples (result); i++) {
        long long granted = atoll (PQgetvalue (result, i, 1)), received = atoll (PQgetvalue (result, i, 2));
        *deployments += granted > 0;
        *grants += (size_t) granted;
        *receipts += (size_t) received;
        *duplicates += (size_t) (granted > 1? granted - 1: 0) + (size_t) (received > 1? received - 1: 0);
        *ungranted += (size_t) (received > 0 && granted == 0);
    }
    PQclear (result);
    return 0;
}

//  ---- the ledger --------------------------------------------------------------------

static void
s_ledger_write (rc_cluster_t *self, const al_agent_result_t *result)
{
    pthread_mutex_lock (&self->mutex);
    if (self->acked < S_LEDGER_MAX) {
        s_ack_t *ack = &self->acks [self->acked++];
        snprintf (ack->message_id, sizeof ack->message_id, "%s", result->message_id);
        ack->sequence = result->audit_sequence;
        memcpy (ack->hash, result->audit_hash, sizeof ack->hash);
    }
    pthread_mutex_unlock (&self->mutex);
}

static void *
s_ledger_run (void *args)
{
    rc_cluster_t *self = args;
    char error [1024] = "";
    al_config_t *config = al_config_load (self->config_clients, error, sizeof error);
    al_agent_t *agent = config? al_agent_new_for_role (config, "orchestrator", false, error, sizeof error): NULL;
    al_config_destroy (&config);
    if (!agent) {
        fprintf (stderr, "release_cluster: ledger client: %s\n", error);
        return NULL;
    }
    uint64_t counter = 0;
    size_t in_flight = 0;
    int64_t next_post = 0;
    while (!self->ledger_stop) {
        while (in_flight < self->window && !self->ledger_stop && zclock_mono () >= next_post) {
            next_post = self->gap_ms > 0? zclock_mono () + self->gap_ms: 0;
            char number [32];
            snprintf (number, sizeof number, "%llu", (unsigned long long) ++counter);
            Airlock__Notification__FieldsEntry field = AIRLOCK__NOTIFICATION__FIELDS_ENTRY__INIT;
            field.key = "n";
            field.value = number;
            Airlock__Notification__FieldsEntry *fields [1] = { &field };
            Airlock__Notification notification = AIRLOCK__NOTIFICATION__INIT;
            notification.template_ = "failover-ledger";
            notification.n_fields = 1;
            notification.fields = fields;
            al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
            envelope.environment = AIRLOCK__ENVIRONMENT__ENV_DEVELOPMENT;
            envelope.body_case = AIRLOCK__ENVELOPE__BODY_NOTIFICATION;
            envelope.notification = &notification;
            if (al_agent_post (agent, &envelope, 1000, NULL, NULL, 0) != AL_AGENT_QUEUED)
                break;
            in_flight++;
        }
        al_agent_result_t result;
        al_agent_status_t status = al_agent_next_result (agent, self->gap_ms > 0? self->gap_ms: 200, &result);
        if (status == AL_AGENT_TIMEOUT)
            continue;
        in_flight--;
        if (status == AL_AGENT_ACKED)
            s_ledger_write (self, &result);
        else
            fprintf (stderr, "release_cluster: ledger: %s: %s\n", al_agent_status_name (status), result.reason);
    }
    //  What is still in flight gets its outcome (or stays unacknowledged: not counted).
    for (int64_t deadline = zclock_mono () + 10000; in_flight > 0 && zclock_mono () < deadline; ) {
        al_agent_result_t result;
        al_agent_status_t status = al_agent_next_result (agent, 200, &result);
        if (status == AL_AGENT_TIMEOUT)
            continue;
        in_flight--;
        if (status == AL_AGENT_ACKED)
            s_ledger_write (self, &result);
    }
    al_agent_destroy (&agent);
    return NULL;
}

int
rc_ledger_start (rc_cluster_t *self, size_t window, int gap_ms, char *error, size_t error_size)
{
    assert (!self->ledger_running);
    self->acks = calloc (S_LEDGER_MAX, sizeof *self->acks);
    assert (self->acks);
    self->window = window > 0? window: 1;
    self->gap_ms = gap_ms;
    self->ledger_stop = false;
    if (pthread_create (&self->ledger, NULL, s_ledger_run, self) != 0) {
        al_error_set (error, error_size, "pthread_create: %s", strerror (errno));
        return -1;
    }
    self->ledger_running = true;
    return 0;
}

void
rc_ledger_stop (rc_cluster_t *self)
{
    if (!self->ledger_running)
        return;
    self->ledger_stop = true;
    pthread_join (self->ledger, NULL);
    self->ledger_running = false;
}

size_t
rc_ledger_acked (rc_cluster_t *self)
{
    pthread_mutex_lock (&self->mutex);
    size_t acked = self->acked;
    pthread_mutex_unlock (&self->mutex);
    return acked;
}

void
rc_ledger_add_row (rc_cluster_t *self, uint64_t row)
{
    if (self->row_count < sizeof self->rows / sizeof self->rows [0])
        self->rows [self->row_count++] = row;
}

long long
rc_ledger_lost (rc_cluster_t *self, char *error, size_t error_size)
{
    //  One query for all the ledger client's rows, then a lookup per Ack.
    PGresult *result = PQexec (self->db, "SELECT convert_from(message_id, 'UTF8'), seq, encode(hash, 'hex') FROM events"
                                         " WHERE sender = convert_to('orchestrator', 'UTF8')"
                                         " AND type = convert_to('Notification', 'UTF8')");
    if (PQresultStatus (result) != PGRES_TUPLES_OK) {
        al_error_set (error, error_size, "ledger: %s", PQerrorMessage (self->db));
        PQclear (result);
        return -1;
    }
    zhashx_t *logged = zhashx_new ();
    for (int i = 0; i < PQntuples (result); i++)
        zhashx_update (logged, PQgetvalue (result, i, 0), (void *) (intptr_t) (i + 1));   // 0 is "absent"
    long long lost = 0;
    pthread_mutex_lock (&self->mutex);
    for (size_t i = 0; i < self->acked; i++) {
        s_ack_t *ack = &self->acks [i];
        int row = (int) (intptr_t) zhashx_lookup (logged, ack->message_id) - 1;
        char hex [65];
        for (int b = 0; b < 32; b++)
            snprintf (hex + 2 * b, 3, "%02x", ack->hash [b]);
        if (row < 0)
            lost++;
        else
        if (strtoull (PQgetvalue (result, row, 1), NULL, 10) != ack->sequence || strcmp (PQgetvalue (result, row, 2), hex) != 0)
            lost++;
    }
    pthread_mutex_unlock (&self->mutex);
    zhashx_destroy (&logged);
    PQclear (result);
    //  The rows commands reported (approvals) are SignedApprovals in the log.
    for (size_t i = 0; i < self->row_count; i++) {
        char sql [200];
        snprintf (sql, sizeof sql, "SELECT count(*) FROM events WHERE seq = %llu AND type = convert_to('SignedApproval', 'UTF8')",
                  (unsigned long long) self->rows [i]);
        if (rc_sql_number (self, sql, error, error_size) != 1)
            lost++;
    }
    return lost;
}

void
rc_dump_logs (rc_cluster_t *self)
{
    if (!self || !*self->dir)
        return;
    const char *logs [] = { "broker-a", "broker-b", "orchestrator", "qa", "deploy-manager", "monitor", "notifier" };
    for (size_t i = 0; i < sizeof logs / sizeof logs [0]; i++) {
        char path [400];
        snprintf (path, sizeof path, "%s/%s.log", self->dir, logs [i]);
        char *text = s_read (path);
        size_t length = text? strlen (text): 0;
        fprintf (stderr, "---- %s (last 3000 bytes)\n%s\n", logs [i], text? text + (length > 3000? length - 3000: 0): "");
        free (text);
    }
}
