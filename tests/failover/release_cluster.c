/*  release_cluster.c: two brokers on one PostgreSQL, the five agents and the demo
    service, for failover in the middle of real releases. See release_cluster.h.

    The state directory, the processes (each with its log in the state directory:
    broker-a.log, broker-b.log, ROLE.log) and the CLI (its output in dir/NAME.out and
    NAME.err) come from tests/common/proc_harness, as for the other tests that run
    airlock as processes; what is this cluster's own is the two brokers' HA configs, the
    lease and the log read from PostgreSQL, and the ledger. PostgreSQL is read with libpq
    on one connection owned by the driving thread (the ledger thread never touches it).
*/
#include "release_cluster.h"
#include "agents/al_agent.h"
#include "base/al_config.h"
#include "base/al_error.h"
#include "base/al_file.h"
#include "deploy/al_artifacts.h"
#include "pg_harness.h"
#include "proc_harness.h"

#include <czmq.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <signal.h>

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
    ph_cli_t cli;                   // the CLI as the clients' config
    al_child_t *broker [2];
    al_child_t *agents [S_AGENTS];
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

static void
s_start_broker (rc_cluster_t *self, int which)
{
    char error [1024] = "";
    self->broker [which] = ph_start_broker (&self->cli, self->config_broker [which], which? "broker-b": "broker-a",
                                            error, sizeof error);
    if (!self->broker [which])
        fprintf (stderr, "release_cluster: %s\n", error);
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
    snprintf (self->config_clients, sizeof self->config_clients, "%s/clients.yaml", self->dir);
    self->cli = (ph_cli_t) { .airlock = self->airlock, .config = self->config_clients, .dir = self->dir };
    const char *keys [] = { "alice" }, *roles [] = { "manager" };
    if (ph_init (self->airlock, self->dir, keys, 1, error, error_size) != 0)
        goto failed;
    char path [400];
    snprintf (path, sizeof path, "%s/airlock.yaml", self->dir);
    char *text = al_file_read (path, 1024 * 1024, NULL, error, error_size);
    if (!text)
        goto failed;
    //  Each broker binds its own ipc:// endpoints and keeps its own checkpoint file;
    //  every process names both brokers; the clients' own endpoints are A's.
    char router [2][300], pub [2][300], brokers [700], events [700];
    for (int i = 0; i < 2; i++) {
        snprintf (router [i], sizeof router [i], "ipc://%s/%c-router.ipc", self->dir, 'a' + i);
        snprintf (pub [i], sizeof pub [i], "ipc://%s/%c-pub.ipc", self->dir, 'a' + i);
        snprintf (self->config_broker [i], sizeof self->config_broker [i], "%s/broker-%c.yaml", self->dir, 'a' + i);
    }
    snprintf (brokers, sizeof brokers, "%s, %s", router [0], router [1]);
    snprintf (events, sizeof events, "%s, %s", pub [0], pub [1]);
    ph_endpoints_t endpoints [3] = {
        { router [0], pub [0], brokers, events, "a", self->dsn, "a" },
        { router [1], pub [1], brokers, events, "b", self->dsn, "b" },
        { router [0], pub [0], brokers, events, "clients", NULL, NULL },
    };
    const char *configs [3] = { self->config_broker [0], self->config_broker [1], self->config_clients };
    int rc = 0;
    for (int i = 0; i < 3 && rc == 0; i++)
        rc = ph_write_config (configs [i], text, self->dir, &endpoints [i], error, error_size);
    free (text);
    if (rc != 0 || ph_prepare_demo (self->dir, keys, roles, 1, staging_soak_ms, NULL, error, error_size) != 0)
        goto failed;

    //  A first: it takes the lease; then B, a standby.
    s_start_broker (self, 0);
    if (!ph_wait_log (self->dir, "broker-a", "is active (lease epoch", 60000)) {
        al_error_set (error, error_size, "broker A never took the lease (%s/broker-a.log)", self->dir);
        goto failed;
    }
    s_start_broker (self, 1);
    if (!ph_wait_log (self->dir, "broker-b", "is a standby until it holds the lease", 60000)) {
        al_error_set (error, error_size, "broker B never said it is a standby (%s/broker-b.log)", self->dir);
        goto failed;
    }
    if (ph_start_agents (&self->cli, s_roles, S_AGENTS, self->agents, 60000, error, error_size) != S_AGENTS)
        goto failed;
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
    ph_stop_all (self->agents, S_AGENTS, SIGTERM);
    ph_stop_all (self->broker, 2, SIGTERM);
    if (*self->dir)
        s_stop_instances (self);
    PQfinish (self->db);
    pg_harness_destroy (&self->pg);
    free (self->dsn);
    if (*self->dir && !keep)
        ph_shell ("rm -rf '%s'", self->dir);
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
    ph_stop (&self->broker [active], SIGKILL);
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
    snprintf (changes, sizeof changes, "release %s: faster checkout\n", id);
    return ph_submit (&self->cli, "demo", id, version, artifact, sha, changes, NULL, error, error_size);
}

char *
rc_state (rc_cluster_t *self, const char *id)
{
    return ph_state (&self->cli, id);
}

char *
rc_wait_state (rc_cluster_t *self, const char *id, const char *want, int timeout_ms)
{
    return ph_wait_state (&self->cli, id, want, timeout_ms);
}

int
rc_approve (rc_cluster_t *self, const char *request, uint64_t *row, char *error, size_t error_size)
{
    char *output = NULL;
    int rc = ph_approve (&self->cli, request, "alice", &output);
    char *text = ph_stdout (&self->cli, "approve");
    const char *recorded = text? strstr (text, "recorded as audit row "): NULL;
    unsigned long long sequence = 0;
    if (rc != 0 || !text || !strstr (text, "granted") || !recorded
    ||  sscanf (recorded, "recorded as audit row %llu", &sequence) != 1) {
        al_error_set (error, error_size, "airlock approve %s: exit %d: %s", request, rc,
                      output && *output? output: "(no output)");
        free (output);
        free (text);
        return -1;
    }
    free (output);
    free (text);
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
    return ph_shell ("'%s' audit verify --postgres '%s' > '%s/verify.out' 2>&1", self->airlock, self->dsn, self->dir);
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
    ph_dump_logs (self->dir, logs, sizeof logs / sizeof logs [0], 3000);
}
