/*  bench_failover.c: broker failover under load, in the middle of real releases
    (docs/ha.md).

    tests/failover's release_cluster: a throwaway PostgreSQL, two `airlock broker`
    processes (A, B) sharing it with their own ipc:// endpoints, the five agents
    (orchestrator, qa, deploy-manager, monitor, notifier) knowing both, the demo service
    with the process driver. Load: the ledger client keeps 32 Notifications in flight
    (pipelined) and writes down every Ack. Releases: one after another, each submitted
    with `airlock submit`, approved with `airlock approve` when it waits for the approval
    (run again if the broker died under it), followed to DONE, FAILED or ROLLED_BACK.
    Meanwhile, BENCH_FAILOVER_KILLS times (default 10): the active broker is killed with
    SIGKILL and started again at once (it comes back as a standby), and the time from the
    kill to the first row the new leader commits is measured on the database itself (the
    lease's epoch grows, then the log's max sequence grows past what it was at that
    moment: a commit the killed broker had in flight is not counted). The kills land
    wherever the releases are (staging rollout or soak, QA, the approval, production).
    At the end: every Ack of the ledger (and every approval's row) is looked up in the
    log (acked_lost), production deploys are counted against grants from the audit log
    (duplicate_deploys: grants or receipts beyond the first of a deployment;
    ungranted_deploys: receipts without a grant), how the releases ended, and `airlock
    audit verify --postgres`. Last, the raw append rate of the PostgreSQL store beside
    SQLite's (transactions of 100 events, same machine).
    Prints RESULT lines; exits non-zero if a run did not complete, anything
    acknowledged was lost, a production deploy is duplicated or ungranted, no release
    ended, or the log does not verify.
*/
#include "release_cluster.h"
#include "store/al_store.h"
#include "store/al_store_pg.h"
#include "pg_harness.h"

#include <czmq.h>
#include <pthread.h>
#include <stdarg.h>

#define S_MAX_RELEASES 1000

typedef struct {
    rc_cluster_t *cluster;
    volatile bool stop;
    pthread_mutex_t mutex;
    size_t releases;                // submitted
    size_t done, failed, rolled_back, other;
    uint64_t approval_rows [S_MAX_RELEASES];
    size_t approvals;
} s_bench_t;

//  Approve REQUEST of release ID, again while the release still waits for it (a kill
//  under `airlock approve` leaves it without an answer; the broker answers a second
//  one from the log, or the request is no longer pending).
static void
s_approve (s_bench_t *self, const char *id, const char *request)
{
    for (int attempt = 0; attempt < 10; attempt++) {    // also once stopping: it is followed to its end
        char error [2048] = "";
        uint64_t row = 0;
        if (rc_approve (self->cluster, request, &row, error, sizeof error) == 0) {
            pthread_mutex_lock (&self->mutex);
            if (self->approvals < S_MAX_RELEASES)
                self->approval_rows [self->approvals++] = row;
            pthread_mutex_unlock (&self->mutex);
            return;
        }
        char *state = rc_state (self->cluster, id);
        bool waiting = !state || strcmp (state, "APPROVE") == 0;
        free (state);
        if (!waiting)
            return;
        fprintf (stderr, "bench_failover: %s (attempt %d)\n", error, attempt + 1);
        zclock_sleep (1000);
    }
}

//  Releases one after another until stopped; the one under way is followed to its end.
static void *
s_releases (void *args)
{
    s_bench_t *self = args;
    for (int number = 1; !self->stop && number <= S_MAX_RELEASES; number++) {
        char id [32], version [32], request [48], error [2048] = "";
        snprintf (id, sizeof id, "rel-b%d", number);
        snprintf (version, sizeof version, "v%d", number);
        snprintf (request, sizeof request, "%s-prod", id);
        if (rc_submit (self->cluster, id, version, error, sizeof error) != 0) {
            fprintf (stderr, "bench_failover: %s\n", error);
            zclock_sleep (1000);
            continue;
        }
        pthread_mutex_lock (&self->mutex);
        self->releases++;
        pthread_mutex_unlock (&self->mutex);
        char *state = rc_wait_state (self->cluster, id, "APPROVE", 300000);
        if (state && strcmp (state, "APPROVE") == 0) {
            s_approve (self, id, request);
            free (state);
            state = rc_wait_state (self->cluster, id, "DONE", 300000);
        }
        printf ("release %s: %s\n", id, state? state: "(unknown)");
        pthread_mutex_lock (&self->mutex);
        if (state && strcmp (state, "DONE") == 0)
            self->done++;
        else
        if (state && strcmp (state, "FAILED") == 0)
            self->failed++;
        else
        if (state && strcmp (state, "ROLLED_BACK") == 0)
            self->rolled_back++;
        else
            self->other++;
        pthread_mutex_unlock (&self->mutex);
        free (state);
    }
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
    zsys_set_logstream (stderr);            // the ledger client's warnings, apart from the RESULT lines
    int kills = getenv ("BENCH_FAILOVER_KILLS")? atoi (getenv ("BENCH_FAILOVER_KILLS")): 10;
    s_bench_t *self = calloc (1, sizeof *self);
    assert (self);
    pthread_mutex_init (&self->mutex, NULL);
    int rc = 1;
    char error [2048] = "";
    //  Staging soaks 3 s: releases are quick, and kills land in every step of them.
    self->cluster = rc_cluster_new (AIRLOCK_BINARY_DIR, 3000, error, sizeof error);
    if (!self->cluster) {
        fprintf (stderr, "bench_failover: %s\n", error);
        free (self);
        return 1;
    }
    if (rc_ledger_start (self->cluster, 32, 0, error, sizeof error) != 0) {
        fprintf (stderr, "bench_failover: %s\n", error);
        rc_cluster_destroy (&self->cluster, false);
        free (self);
        return 1;
    }
    pthread_t releases;
    pthread_create (&releases, NULL, s_releases, self);
    zclock_sleep (3000);

    double *seconds = calloc ((size_t) (kills > 0? kills: 1), sizeof (double));
    int runs = 0;
    for (int run = 0; run < kills; run++) {
        size_t before_acked = rc_ledger_acked (self->cluster);
        double taken = 0;
        int killed = rc_kill_active (self->cluster, &taken, error, sizeof error);
        if (killed < 0) {
            fprintf (stderr, "bench_failover: run %d: %s\n", run + 1, error);
            break;
        }
        seconds [runs++] = taken;
        int now_active = rc_active (self->cluster);
        printf ("failover %d: %c killed, %c%s leads, first commit %.2f s after the kill\n", run + 1, 'a' + killed,
                now_active == 0? 'a': now_active == 1? 'b': '?', now_active == killed? " (restarted)": "", taken);
        //  Let the load settle on the new leader before the next kill.
        for (int64_t deadline = zclock_mono () + 60000;
             rc_ledger_acked (self->cluster) < before_acked + 200 && zclock_mono () < deadline; )
            zclock_sleep (50);
        zclock_sleep (1000 + (int) (zclock_usecs () % 3000000) / 1000);
    }
    self->stop = true;
    pthread_join (releases, NULL);
    rc_ledger_stop (self->cluster);
    for (size_t i = 0; i < self->approvals; i++)
        rc_ledger_add_row (self->cluster, self->approval_rows [i]);

    long long lost = rc_ledger_lost (self->cluster, error, sizeof error);
    if (lost < 0)
        fprintf (stderr, "bench_failover: %s\n", error);
    size_t deployments = 0, grants = 0, receipts = 0, duplicates = 0, ungranted = 0;
    if (rc_production_deploys (self->cluster, &deployments, &grants, &receipts, &duplicates, &ungranted,
                               error, sizeof error) != 0)
        fprintf (stderr, "bench_failover: %s\n", error);
    int verify = rc_audit_verify (self->cluster);
    qsort (seconds, (size_t) runs, sizeof (double), s_compare);
    printf ("acknowledged %zu messages; %zu production grants, %zu receipts (%zu deployments)\n",
            rc_ledger_acked (self->cluster), grants, receipts, deployments);
    printf ("RESULT failover.runs %d kills\n", runs);
    if (runs) {
        printf ("RESULT failover.p50_s %.2f s\n", seconds [(runs - 1) / 2]);
        printf ("RESULT failover.p95_s %.2f s\n", seconds [(int) ((runs - 1) * 0.95 + 0.5)]);
    }
    printf ("RESULT failover.acked_messages %zu messages\n", rc_ledger_acked (self->cluster));
    printf ("RESULT failover.acked_lost %lld messages\n", lost);
    printf ("RESULT failover.duplicate_deploys %zu deploys\n", duplicates);
    printf ("RESULT failover.ungranted_deploys %zu deploys\n", ungranted);
    printf ("RESULT failover.releases %zu releases\n", self->releases);
    printf ("RESULT failover.releases_done %zu releases\n", self->done);
    printf ("RESULT failover.releases_failed %zu releases\n", self->failed);
    printf ("RESULT failover.releases_rolled_back %zu releases\n", self->rolled_back);
    printf ("RESULT failover.releases_unfinished %zu releases\n", self->other);
    printf ("RESULT failover.audit_verify %s\n", verify == 0? "ok": "FAILED");

    char *rate_dsn = pg_harness_database_new (rc_pg (self->cluster), "bench_rate", error, sizeof error);
    char sqlite_path [300];
    snprintf (sqlite_path, sizeof sqlite_path, "%s/rate.db", rc_dir (self->cluster));
    double pg_rate = rate_dsn? s_append_rate (AL_STORE_PG_BACKEND, rate_dsn): 0;
    double sqlite_rate = s_append_rate (NULL, sqlite_path);
    free (rate_dsn);
    printf ("RESULT failover.append_postgres %.0f events/s\n", pg_rate);
    printf ("RESULT failover.append_sqlite %.0f events/s\n", sqlite_rate);
    if (sqlite_rate > 0)
        printf ("RESULT failover.append_postgres_vs_sqlite %.2f x\n", pg_rate / sqlite_rate);
    rc = runs == kills && lost == 0 && duplicates == 0 && ungranted == 0 && verify == 0
      && self->done + self->failed + self->rolled_back > 0? 0: 1;
    free (seconds);
    rc_cluster_destroy (&self->cluster, getenv ("BENCH_FAILOVER_KEEP") != NULL);
    pthread_mutex_destroy (&self->mutex);
    free (self);
    return rc;
}
