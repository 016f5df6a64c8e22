/*  bench_store_pg.c: append rate of the PostgreSQL store backend against SQLite's,
    measured in one run on one disk.

    Starts a throwaway PostgreSQL server (tests/pg/pg_harness, fsync and
    synchronous_commit on) and, for each of RUNS runs (default 5), appends EVENTS events
    (default 20000) in group-committed transactions of BATCH events (default 256, as the
    broker batches) to a fresh SQLite file (WAL, synchronous=FULL) and to a fresh
    PostgreSQL database (over loopback TCP), alternating which goes first. Prints each
    run, then the medians and their ratio:

        RESULT store.sqlite_append_per_s_median N
        RESULT store.pg_append_per_s_median N
        RESULT store.pg_vs_sqlite_append_ratio R

    usage: bench_store_pg [RUNS] [EVENTS] [BATCH]
*/
#include "store/al_store.h"
#include "store/al_store_pg.h"
#include "pg_harness.h"
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define S_MAX_RUNS 51

static double
s_now (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (double) now.tv_sec + (double) now.tv_nsec * 1e-9;
}

//  Appends count events in transactions of batch to a fresh log; events/s or -1.
static double
s_append_rate (const char *backend, const char *path, uint64_t count, uint64_t batch)
{
    char error [512];
    al_store_t *store = al_store_open (backend, path, NULL, error, sizeof error);
    if (!store) {
        fprintf (stderr, "bench_store_pg: %s\n", error);
        return -1;
    }
    char message_id [32];
    uint8_t envelope [120];
    al_store_append_result_t result;
    double rate = -1;
    double start = s_now ();
    for (uint64_t done = 0; done < count;) {
        if (al_store_begin (store) != AL_STORE_OK)
            goto cleanup;
        for (uint64_t i = 0; i < batch && done < count; i++, done++) {
            snprintf (message_id, sizeof message_id, "m-%llu", (unsigned long long) done);
            for (size_t b = 0; b < sizeof envelope; b++)
                envelope [b] = (uint8_t) (done + b);
            al_store_event_t event = {
                .time_ms = 1790000000000ULL + done, .sender = "orchestrator-1", .role = "orchestrator",
                .type = "DeployRequest", .message_id = message_id, .deployment_id = "dep-2026-11-22-001",
                .environment = "staging", .decision = AL_STORE_ACCEPTED, .reason = "",
                .envelope = envelope, .envelope_size = sizeof envelope
            };
            if (al_store_append (store, &event, &result) != AL_STORE_OK)
                goto cleanup;
        }
        if (al_store_commit (store) != AL_STORE_OK)
            goto cleanup;
    }
    rate = (double) count / (s_now () - start);
cleanup:
    if (rate < 0)
        fprintf (stderr, "bench_store_pg: %s: %s\n", backend, al_store_error (store));
    al_store_destroy (&store);
    return rate;
}

static int
s_compare (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y? -1: x > y;
}

static double
s_median (double *values, int count)
{
    qsort (values, (size_t) count, sizeof values [0], s_compare);
    return count % 2? values [count / 2]: (values [count / 2 - 1] + values [count / 2]) / 2;
}

static int
s_remove_entry (const char *path, const struct stat *info, int flag, struct FTW *ftw)
{
    (void) info; (void) flag; (void) ftw;
    return remove (path);
}

int
main (int argc, char **argv)
{
    int runs = argc > 1? atoi (argv [1]): 5;
    long long events = argc > 2? atoll (argv [2]): 20000;
    long long batch = argc > 3? atoll (argv [3]): 256;
    if (runs < 1 || runs > S_MAX_RUNS || events < 1 || batch < 1) {
        fprintf (stderr, "usage: bench_store_pg [RUNS 1..%d] [EVENTS] [BATCH]\n", S_MAX_RUNS);
        return 2;
    }
    char error [2048];
    pg_harness_t *server = pg_harness_new (error, sizeof error);
    if (!server) {
        fprintf (stderr, "bench_store_pg: %s\n", error);
        return 1;
    }
    const char *tmp = getenv ("TMPDIR");
    char dir [4096];
    snprintf (dir, sizeof dir, "%s/bench-store-pg-XXXXXX", tmp && *tmp? tmp: "/tmp");
    if (!mkdtemp (dir)) {
        pg_harness_destroy (&server);
        return 1;
    }
    double sqlite [S_MAX_RUNS], pg [S_MAX_RUNS];
    int status = 0;
    printf ("bench_store_pg: %d runs of %lld events in transactions of %lld (PostgreSQL over loopback TCP)\n",
            runs, events, batch);
    for (int run = 0; run < runs && status == 0; run++) {
        char path [4200];
        snprintf (path, sizeof path, "%s/audit-%d.db", dir, run);
        char *dsn = pg_harness_database_new (server, "bench", error, sizeof error);
        if (!dsn) {
            fprintf (stderr, "bench_store_pg: %s\n", error);
            status = 1;
            break;
        }
        //  Alternate the order so neither backend always runs on a warmer machine.
        if (run % 2 == 0) {
            sqlite [run] = s_append_rate ("sqlite", path, (uint64_t) events, (uint64_t) batch);
            pg [run] = s_append_rate (AL_STORE_PG_BACKEND, dsn, (uint64_t) events, (uint64_t) batch);
        }
        else {
            pg [run] = s_append_rate (AL_STORE_PG_BACKEND, dsn, (uint64_t) events, (uint64_t) batch);
            sqlite [run] = s_append_rate ("sqlite", path, (uint64_t) events, (uint64_t) batch);
        }
        free (dsn);
        if (sqlite [run] < 0 || pg [run] < 0)
            status = 1;
        else
            printf ("run %d: sqlite %.0f events/s, postgres %.0f events/s\n", run + 1, sqlite [run], pg [run]);
        fflush (stdout);
    }
    if (status == 0) {
        double sqlite_median = s_median (sqlite, runs);
        double pg_median = s_median (pg, runs);
        printf ("RESULT store.sqlite_append_per_s_median %.0f\n", sqlite_median);
        printf ("RESULT store.pg_append_per_s_median %.0f\n", pg_median);
        printf ("RESULT store.pg_vs_sqlite_append_ratio %.2f\n", pg_median / sqlite_median);
    }
    nftw (dir, s_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    pg_harness_destroy (&server);
    return status;
}
