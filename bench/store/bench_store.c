/*  bench_store.c: audit store throughput, measured in one run on one disk.

    Prints events/s for group commit (batches of 256 events per transaction) and for one
    transaction per event, their ratio, verify events/s (read-only, whole chain), and
    SHA-256 rates on 250-byte rows (OpenSSL libcrypto vs libsodium) for context. The
    database lives in a temporary directory under DIR (default: the current directory,
    i.e. a real disk, unlike a tmpfs /tmp) with synchronous=FULL as always.

    usage: bench_store [DIR] [GROUP_EVENTS]
*/
#include "store/al_store.h"
#include <openssl/evp.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define S_BATCH 256
#define S_SINGLE_EVENTS 2000

static double
s_now (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (double) now.tv_sec + (double) now.tv_nsec * 1e-9;
}

//  An event whose row bytes are about 250 bytes (a typical small envelope).
static void
s_event (al_store_event_t *event, char *message_id, size_t id_size, uint8_t *envelope, uint64_t index)
{
    snprintf (message_id, id_size, "m-%llu", (unsigned long long) index);
    for (int i = 0; i < 120; i++)
        envelope [i] = (uint8_t) (index + (uint64_t) i);
    *event = (al_store_event_t) {
        .time_ms = 1790000000000ULL + index, .sender = "orchestrator-1", .role = "orchestrator",
        .type = "DeployRequest", .message_id = message_id, .deployment_id = "dep-2026-11-22-001",
        .environment = "staging", .decision = AL_STORE_ACCEPTED, .reason = "",
        .envelope = envelope, .envelope_size = 120
    };
}

//  Appends count events in transactions of batch; returns events/s or -1.
static double
s_append (al_store_t *store, uint64_t first, uint64_t count, uint64_t batch)
{
    char message_id [32];
    uint8_t envelope [128];
    al_store_event_t event;
    al_store_append_result_t result;
    double start = s_now ();
    for (uint64_t done = 0; done < count;) {
        if (al_store_begin (store) != AL_STORE_OK)
            return -1;
        for (uint64_t i = 0; i < batch && done < count; i++, done++) {
            s_event (&event, message_id, sizeof message_id, envelope, first + done);
            if (al_store_append (store, &event, &result) != AL_STORE_OK)
                return -1;
        }
        if (al_store_commit (store) != AL_STORE_OK)
            return -1;
    }
    return (double) count / (s_now () - start);
}

static void
s_hash_rates (double *openssl_p, double *sodium_p)
{
    uint8_t row [250], hash [32] = { 0 };
    memset (row, 0x5a, sizeof row);
    const int rounds = 1000000;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
    EVP_MD *sha256 = EVP_MD_fetch (NULL, "SHA256", NULL);
    unsigned int length;
    double start = s_now ();
    for (int i = 0; i < rounds; i++) {
        EVP_DigestInit_ex (ctx, sha256, NULL);
        EVP_DigestUpdate (ctx, hash, sizeof hash);
        EVP_DigestUpdate (ctx, row, sizeof row);
        EVP_DigestFinal_ex (ctx, hash, &length);
    }
    *openssl_p = rounds / (s_now () - start);
    EVP_MD_CTX_free (ctx);
    EVP_MD_free (sha256);
    start = s_now ();
    for (int i = 0; i < rounds; i++) {
        crypto_hash_sha256_state state;
        crypto_hash_sha256_init (&state);
        crypto_hash_sha256_update (&state, hash, sizeof hash);
        crypto_hash_sha256_update (&state, row, sizeof row);
        crypto_hash_sha256_final (&state, hash);
    }
    *sodium_p = rounds / (s_now () - start);
}

int
main (int argc, char **argv)
{
    const char *base = argc > 1? argv [1]: ".";
    uint64_t group_events = argc > 2? strtoull (argv [2], NULL, 10): 500000;
    if (sodium_init () < 0 || group_events == 0)
        return 2;
    char dir [4096];
    snprintf (dir, sizeof dir, "%s/bench-store-XXXXXX", base);
    if (!mkdtemp (dir)) {
        perror (dir);
        return 2;
    }
    char group_path [4200], single_path [4200];
    snprintf (group_path, sizeof group_path, "%s/group.db", dir);
    snprintf (single_path, sizeof single_path, "%s/single.db", dir);
    int rc = 1;
    char error [512];
    al_store_t *group = al_store_open ("sqlite", group_path, NULL, error, sizeof error);
    al_store_t *single = al_store_open ("sqlite", single_path, NULL, error, sizeof error);
    if (!group || !single) {
        fprintf (stderr, "bench_store: %s\n", error);
        goto cleanup;
    }
    double grouped = s_append (group, 1, group_events, S_BATCH);
    double one_by_one = s_append (single, 1, S_SINGLE_EVENTS, 1);
    if (grouped < 0 || one_by_one < 0) {
        fprintf (stderr, "bench_store: append failed: %s%s\n", al_store_error (group), al_store_error (single));
        goto cleanup;
    }
    al_store_destroy (&group);
    printf ("append, group commit (%d/tx):   %12.0f events/s (%llu events)\n", S_BATCH, grouped,
            (unsigned long long) group_events);
    printf ("append, one transaction/event: %12.0f events/s (%d events)\n", one_by_one, S_SINGLE_EVENTS);
    printf ("group commit speed-up:         %12.1fx\n", grouped / one_by_one);

    //  Verify: first run reads from disk into the page cache, the best of three is the
    //  steady state an auditor re-running it sees.
    double best = 0;
    for (int run = 0; run < 3; run++) {
        al_verify_report_t report;
        double start = s_now ();
        if (al_store_verify_path ("sqlite", group_path, NULL, NULL, &report) != AL_STORE_OK
        ||  report.result != AL_VERIFY_OK || report.rows != group_events) {
            fprintf (stderr, "bench_store: verify failed: %s\n", report.reason);
            goto cleanup;
        }
        double rate = (double) report.rows / (s_now () - start);
        if (rate > best)
            best = rate;
    }
    printf ("verify (read-only, full chain): %11.0f events/s (goal 1000000: %s)\n", best,
            best >= 1e6? "met": "not met");
    double openssl_rate, sodium_rate;
    s_hash_rates (&openssl_rate, &sodium_rate);
    printf ("SHA-256 of 32+250 bytes, libcrypto: %7.0f hashes/s\n", openssl_rate);
    printf ("SHA-256 of 32+250 bytes, libsodium: %7.0f hashes/s (libcrypto %.1fx)\n", sodium_rate,
            openssl_rate / sodium_rate);
    //  Machine-readable lines gathered by scripts/bench into one table.
    printf ("RESULT store.append_group_commit %.0f events/s\n", grouped);
    printf ("RESULT store.append_one_per_tx %.0f events/s\n", one_by_one);
    printf ("RESULT store.group_commit_ratio %.1f x\n", grouped / one_by_one);
    printf ("RESULT store.verify %.0f events/s\n", best);
    rc = 0;
cleanup:
    al_store_destroy (&group);
    al_store_destroy (&single);
    char command [4300];
    snprintf (command, sizeof command, "rm -rf '%s'", dir);
    if (system (command) != 0)
        fprintf (stderr, "bench_store: could not remove %s\n", dir);
    return rc;
}
