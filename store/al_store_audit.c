/*  al_store_audit.c: the store's read side for auditors: verification, signed
    checkpoints and JSON export. It uses the generic layer (al_store.c) and the row
    encoding and chain hash (al_store_row.c); al_store.c never calls back into it.

    verify streams every row once in sequence order through the backend's iterator
    (borrowed column pointers, no copies), re-encodes it and recomputes
    SHA-256(previous stored hash || row bytes). Because each row's expected hash depends
    only on its own fields and the previous row's STORED hash, the first row whose
    recomputed hash differs is exactly the first row that was altered, inserted or moved;
    a missing sequence number is reported at the number that is missing. A checkpoint
    (signed elsewhere, kept elsewhere) adds what a chain alone cannot show: that the log
    was not cut short, and not rewritten wholesale up to the checkpointed row.

    SHA-256 comes from OpenSSL's libcrypto (SHA-NI accelerated, 3-4x libsodium's
    portable code on 250-byte rows here); Ed25519 from libsodium.

    Threading: verify splits the log by sequence range over up to S_MAX_THREADS threads,
    each on its own read-only connection (the caller's thread uses the store's own);
    everything else runs in the caller's thread. A store belongs to one thread.
*/
#include "store/al_store_int.h"
#include "base/al_clock.h"
#include "base/al_file.h"
#include "proto/al_codec.h"
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define S_CHECKPOINT_FORMAT "airlock-checkpoint-v1"

const char *
al_verify_result_name (al_verify_result_t result)
{
    switch (result) {
        case AL_VERIFY_OK:                  return "ok";
        case AL_VERIFY_GAP:                 return "gap";
        case AL_VERIFY_HASH_MISMATCH:       return "hash_mismatch";
        case AL_VERIFY_BAD_ROW:             return "bad_row";
        case AL_VERIFY_TRUNCATED:           return "truncated";
        case AL_VERIFY_CHECKPOINT_MISMATCH: return "checkpoint_mismatch";
        case AL_VERIFY_BAD_CHECKPOINT:      return "bad_checkpoint";
        case AL_VERIFY_IO:                  return "io_error";
    }
    return "unknown";
}

static void
s_report (al_verify_report_t *report, al_verify_result_t result, uint64_t sequence, const char *format, ...)
    __attribute__ ((format (printf, 4, 5)));

static void
s_report (al_verify_report_t *report, al_verify_result_t result, uint64_t sequence, const char *format, ...)
{
    report->result = result;
    report->first_bad_sequence = sequence;
    va_list args;
    va_start (args, format);
    vsnprintf (report->reason, sizeof report->reason, format, args);
    va_end (args);
}

//  A checkpoint as read from its file.
typedef struct {
    uint64_t row_count;
    uint8_t head_hash [AL_STORE_HASH_SIZE];
    uint64_t created_ms;
    uint8_t public_key [crypto_sign_PUBLICKEYBYTES];
    uint8_t signature [crypto_sign_BYTES];
} s_checkpoint_t;

//  Signing bytes of a checkpoint (malloc'd), per al_codec_checkpoint_signing_bytes.
static uint8_t *
s_checkpoint_signing_bytes (const s_checkpoint_t *checkpoint, size_t *size_p)
{
    Airlock__Checkpoint message = AIRLOCK__CHECKPOINT__INIT;
    message.row_count = checkpoint->row_count;
    message.head_hash.data = (uint8_t *) checkpoint->head_hash;
    message.head_hash.len = AL_STORE_HASH_SIZE;
    message.created_ms = checkpoint->created_ms;
    message.public_key.data = (uint8_t *) checkpoint->public_key;
    message.public_key.len = crypto_sign_PUBLICKEYBYTES;
    return al_codec_checkpoint_signing_bytes (&message, size_p);
}

static bool
s_hex_field (json_t *root, const char *name, uint8_t *out, size_t size)
{
    const char *text = json_string_value (json_object_get (root, name));
    size_t length = 0;
    return text && strlen (text) == size * 2
        && sodium_hex2bin (out, size, text, strlen (text), NULL, &length, NULL) == 0
        && length == size;
}

//  Reads and checks a checkpoint file. Returns AL_VERIFY_OK, AL_VERIFY_IO (cannot read)
//  or AL_VERIFY_BAD_CHECKPOINT (malformed or signature invalid), with reason.
static al_verify_result_t
s_checkpoint_read (const char *path, s_checkpoint_t *checkpoint, char *reason, size_t reason_size, bool *malformed)
{
    *malformed = true;              // until the fields have parsed
    json_error_t json_error;
    uint8_t *signed_bytes = NULL;
    al_verify_result_t result = AL_VERIFY_BAD_CHECKPOINT;
    json_t *root = json_load_file (path, 0, &json_error);
    if (!root) {
        FILE *probe = fopen (path, "r");
        if (!probe) {
            snprintf (reason, reason_size, "%s: cannot read checkpoint: %s", path, strerror (errno));
            return AL_VERIFY_IO;
        }
        fclose (probe);
        snprintf (reason, reason_size, "%s:%d: checkpoint is not JSON: %s", path, json_error.line, json_error.text);
        return AL_VERIFY_BAD_CHECKPOINT;
    }
    const char *format = json_string_value (json_object_get (root, "format"));
    json_t *rows = json_object_get (root, "row_count");
    json_t *created = json_object_get (root, "created_ms");
    if (!format || strcmp (format, S_CHECKPOINT_FORMAT) != 0) {
        snprintf (reason, reason_size, "%s: format: not %s", path, S_CHECKPOINT_FORMAT);
        goto cleanup;
    }
    if (!json_is_integer (rows) || json_integer_value (rows) < 0
    ||  !json_is_integer (created) || json_integer_value (created) < 0) {
        snprintf (reason, reason_size, "%s: row_count/created_ms: not non-negative integers", path);
        goto cleanup;
    }
    checkpoint->row_count = (uint64_t) json_integer_value (rows);
    checkpoint->created_ms = (uint64_t) json_integer_value (created);
    if (!s_hex_field (root, "head_hash", checkpoint->head_hash, AL_STORE_HASH_SIZE)
    ||  !s_hex_field (root, "public_key", checkpoint->public_key, crypto_sign_PUBLICKEYBYTES)
    ||  !s_hex_field (root, "signature", checkpoint->signature, crypto_sign_BYTES)) {
        snprintf (reason, reason_size, "%s: head_hash/public_key/signature: not hex of the right size", path);
        goto cleanup;
    }
    *malformed = false;
    size_t signed_size = 0;
    signed_bytes = s_checkpoint_signing_bytes (checkpoint, &signed_size);
    if (!signed_bytes) {
        snprintf (reason, reason_size, "%s: out of memory", path);
        result = AL_VERIFY_IO;
        goto cleanup;
    }
    if (crypto_sign_verify_detached (checkpoint->signature, signed_bytes, signed_size,
                                     checkpoint->public_key) != 0) {
        snprintf (reason, reason_size, "%s: checkpoint signature is invalid", path);
        goto cleanup;
    }
    result = AL_VERIFY_OK;
cleanup:
    free (signed_bytes);
    json_decref (root);
    return result;
}

//  The chain scan is split by sequence range over a few threads, each with its own
//  read-only connection: a row's expected hash depends only on its own fields and the
//  previous row's STORED hash, so ranges verify independently (a range starts from the
//  stored hash of the row before it). Reading rows out of SQLite costs more than hashing
//  them, so this is what makes verify scale with cores. The lowest failing sequence of
//  any range is the verdict, exactly as a single sequential scan would find it.
#define S_MIN_ROWS_PER_THREAD 4096
#define S_MAX_THREADS 4

typedef struct {
    al_store_t *store;
    void *handle;                   // the store's own, or a read-only one of this worker's
    uint64_t first, last;           // the range of sequence numbers to check
    const s_checkpoint_t *checkpoint;
    //  Outcome
    al_store_status_t status;
    al_verify_result_t result;
    uint64_t first_bad;
    uint8_t last_hash [AL_STORE_HASH_SIZE];
    uint64_t last_seen;             // highest sequence verified in the range
    char reason [256];
    char error [256];
} s_range_t;

static void *
s_verify_range (void *arg)
{
    s_range_t *range = (s_range_t *) arg;
    const al_store_ops_t *ops = &range->store->ops;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
    EVP_MD *sha256 = EVP_MD_fetch (NULL, "SHA256", NULL);
    size_t row_size = 2048;
    uint8_t *row = malloc (row_size);
    void *iter = NULL;
    al_store_event_t event;
    uint8_t prev [AL_STORE_HASH_SIZE] = { 0 };
    range->status = AL_STORE_ERR_NOMEM;
    if (!ctx || !sha256 || !row)
        goto cleanup;
    range->last_seen = range->first - 1;
    if (range->first > 1) {
        //  Missing or damaged, the row before is the previous range's verdict, which wins.
        if (ops->get (range->handle, range->first - 1, &event) == AL_STORE_OK)
            memcpy (prev, event.hash, AL_STORE_HASH_SIZE);
    }
    iter = ops->iter_open (range->handle, range->first);
    if (!iter) {
        range->status = AL_STORE_ERR_IO;
        snprintf (range->error, sizeof range->error, "%s", ops->error (range->handle));
        goto cleanup;
    }
    uint64_t expected = range->first;
    range->status = AL_STORE_OK;
    while (expected <= range->last) {
        al_store_status_t status = ops->iter_next (iter, &event);
        if (status == AL_STORE_END)
            break;
        if (status != AL_STORE_OK) {
            range->status = status;
            snprintf (range->error, sizeof range->error, "%s", ops->error (range->handle));
            goto cleanup;
        }
        if ((int64_t) event.sequence < 1) {
            range->result = AL_VERIFY_BAD_ROW;
            snprintf (range->reason, sizeof range->reason,
                      "a row numbered %lld was inserted before row 1 (outside the chain)",
                      (long long) (int64_t) event.sequence);
            break;
        }
        if (event.sequence != expected) {
            range->result = AL_VERIFY_GAP;
            snprintf (range->reason, sizeof range->reason, "row %llu is missing (next stored row is %llu)",
                      (unsigned long long) expected, (unsigned long long) event.sequence);
            break;
        }
        if (event.decision != AL_STORE_ACCEPTED && event.decision != AL_STORE_DENIED) {
            range->result = AL_VERIFY_BAD_ROW;
            snprintf (range->reason, sizeof range->reason, "row %llu is malformed (decision or hash column)",
                      (unsigned long long) expected);
            break;
        }
        size_t size = al_store_row_encode (&event, row, row_size);
        if (size > row_size) {
            uint8_t *bigger = realloc (row, size);
            if (!bigger) {
                range->status = AL_STORE_ERR_NOMEM;
                goto cleanup;
            }
            row = bigger;
            row_size = size;
            al_store_row_encode (&event, row, row_size);
        }
        uint8_t computed [AL_STORE_HASH_SIZE];
        unsigned int length = 0;
        if (!EVP_DigestInit_ex (ctx, sha256, NULL)
        ||  !EVP_DigestUpdate (ctx, prev, AL_STORE_HASH_SIZE)
        ||  !EVP_DigestUpdate (ctx, row, size)
        ||  !EVP_DigestFinal_ex (ctx, computed, &length)) {
            range->status = AL_STORE_ERR_NOMEM;
            goto cleanup;
        }
        if (memcmp (computed, event.hash, AL_STORE_HASH_SIZE) != 0) {
            range->result = AL_VERIFY_HASH_MISMATCH;
            snprintf (range->reason, sizeof range->reason,
                      "row %llu: stored hash differs from SHA-256(previous hash || row bytes)",
                      (unsigned long long) expected);
            break;
        }
        memcpy (prev, event.hash, AL_STORE_HASH_SIZE);
        range->last_seen = expected;
        if (range->checkpoint && expected == range->checkpoint->row_count
        &&  memcmp (event.hash, range->checkpoint->head_hash, AL_STORE_HASH_SIZE) != 0) {
            range->result = AL_VERIFY_CHECKPOINT_MISMATCH;
            snprintf (range->reason, sizeof range->reason,
                      "row %llu: hash differs from the checkpoint's head hash (log rewritten)",
                      (unsigned long long) expected);
            break;
        }
        expected++;
    }
    //  A range that ends early (and is not the open-ended tail) lost its last rows.
    if (range->result == AL_VERIFY_OK && expected <= range->last && range->last != UINT64_MAX) {
        range->result = AL_VERIFY_GAP;
        snprintf (range->reason, sizeof range->reason, "row %llu is missing", (unsigned long long) expected);
    }
    if (range->result != AL_VERIFY_OK)
        range->first_bad = expected;
    memcpy (range->last_hash, prev, AL_STORE_HASH_SIZE);
cleanup:
    if (iter)
        ops->iter_close (iter);
    free (row);
    EVP_MD_CTX_free (ctx);
    EVP_MD_free (sha256);
    return NULL;
}

//  The chain scan. With checkpoint, also checks the hash at its row_count.
static al_store_status_t
s_verify_chain (al_store_t *self, const s_checkpoint_t *checkpoint, al_verify_report_t *report)
{
    //  Plan the ranges from the highest stored sequence number.
    uint64_t max_sequence = 0;
    uint8_t ignored [AL_STORE_HASH_SIZE];
    al_store_status_t status = self->ops.head (self->handle, &max_sequence, ignored);
    if (status != AL_STORE_OK) {
        al_store_fail (self, status, "verify");
        s_report (report, AL_VERIFY_IO, 0, "%s", self->error);
        return status;
    }
    long cpus = sysconf (_SC_NPROCESSORS_ONLN);
    size_t threads = cpus > 1? (size_t) cpus: 1;
    if (threads > S_MAX_THREADS)
        threads = S_MAX_THREADS;
    if (threads > max_sequence / S_MIN_ROWS_PER_THREAD)
        threads = max_sequence / S_MIN_ROWS_PER_THREAD;
    if (threads < 1)
        threads = 1;
    s_range_t ranges [S_MAX_THREADS];
    pthread_t ids [S_MAX_THREADS];
    bool started [S_MAX_THREADS] = { false };
    memset (ranges, 0, sizeof ranges);
    al_store_options_t read_only = { .read_only = true };
    uint64_t share = max_sequence / threads;
    for (size_t i = 0; i < threads; i++) {
        s_range_t *range = &ranges [i];
        range->store = self;
        range->checkpoint = checkpoint;
        range->first = 1 + i * share;
        //  The last range is open-ended: it also sees rows beyond max_sequence.
        range->last = i + 1 == threads? UINT64_MAX: (i + 1) * share;
        range->handle = i == 0? self->handle: self->ops.open (self->path, &read_only, range->error,
                                                            sizeof range->error);
        if (!range->handle) {
            //  No second connection (a backend that cannot share the file): scan alone.
            threads = 1;
            ranges [0].last = UINT64_MAX;
            break;
        }
    }
    for (size_t i = 1; i < threads; i++)
        started [i] = pthread_create (&ids [i], NULL, s_verify_range, &ranges [i]) == 0;
    for (size_t i = 1; i < threads; i++)
        if (!started [i])
            s_verify_range (&ranges [i]);
    s_verify_range (&ranges [0]);
    for (size_t i = 1; i < threads; i++)
        if (started [i])
            pthread_join (ids [i], NULL);

    //  The lowest failure wins; ranges after it say nothing.
    status = AL_STORE_OK;
    report->result = AL_VERIFY_OK;
    for (size_t i = 0; i < threads; i++) {
        s_range_t *range = &ranges [i];
        if (range->status != AL_STORE_OK) {
            status = range->status;
            snprintf (self->error, sizeof self->error, "verify: %s", range->error);
            break;
        }
        report->rows = range->last_seen;
        memcpy (report->head_hash, range->last_hash, AL_STORE_HASH_SIZE);
        if (range->result != AL_VERIFY_OK) {
            s_report (report, range->result, range->first_bad, "%s", range->reason);
            break;
        }
    }
    for (size_t i = 1; i < S_MAX_THREADS; i++)
        if (ranges [i].handle)
            self->ops.close (ranges [i].handle);
    if (status != AL_STORE_OK) {
        s_report (report, AL_VERIFY_IO, 0, "%s", self->error);
        return status;
    }
    if (report->result == AL_VERIFY_OK && checkpoint && report->rows < checkpoint->row_count)
        s_report (report, AL_VERIFY_TRUNCATED, report->rows + 1,
                  "log has %llu rows, the checkpoint vouches for %llu (truncated)",
                  (unsigned long long) report->rows, (unsigned long long) checkpoint->row_count);
    return AL_STORE_OK;
}

al_store_status_t
al_store_verify (al_store_t *self, const char *checkpoint_path, const uint8_t *checkpoint_key,
                 al_verify_report_t *report)
{
    assert (self);
    assert (report);
    //  Verify covers the committed log; its helper connections cannot see an open transaction.
    assert (!self->in_transaction);
    memset (report, 0, sizeof *report);
    s_checkpoint_t checkpoint;
    bool have_checkpoint = false, checkpoint_malformed = false;
    al_verify_result_t checkpoint_result = AL_VERIFY_OK;
    char checkpoint_reason [sizeof report->reason] = "";
    if (checkpoint_path) {
        checkpoint_result = s_checkpoint_read (checkpoint_path, &checkpoint, checkpoint_reason,
                                               sizeof checkpoint_reason, &checkpoint_malformed);
        if (checkpoint_result == AL_VERIFY_IO) {
            s_report (report, AL_VERIFY_IO, 0, "%s", checkpoint_reason);
            snprintf (self->error, sizeof self->error, "%s", checkpoint_reason);
            return AL_STORE_ERR_IO;
        }
        if (checkpoint_result == AL_VERIFY_OK && checkpoint_key
        &&  sodium_memcmp (checkpoint.public_key, checkpoint_key, crypto_sign_PUBLICKEYBYTES) != 0) {
            checkpoint_result = AL_VERIFY_BAD_CHECKPOINT;
            snprintf (checkpoint_reason, sizeof checkpoint_reason,
                      "%s: checkpoint is signed by another key than the one given", checkpoint_path);
        }
        have_checkpoint = checkpoint_result == AL_VERIFY_OK;
    }
    al_store_status_t status = s_verify_chain (self, have_checkpoint? &checkpoint: NULL, report);
    if (status != AL_STORE_OK)
        return status;
    //  A broken chain is reported first (it names a row); then a forged checkpoint.
    if (report->result == AL_VERIFY_OK && checkpoint_result != AL_VERIFY_OK) {
        s_report (report, checkpoint_result, 0, "%s", checkpoint_reason);
        report->checkpoint_malformed = checkpoint_malformed;
    }
    if (have_checkpoint) {
        report->checkpoint_checked = report->result == AL_VERIFY_OK;
        report->checkpoint_rows = checkpoint.row_count;
        memcpy (report->checkpoint_key, checkpoint.public_key, sizeof report->checkpoint_key);
    }
    if (report->result == AL_VERIFY_OK)
        snprintf (report->reason, sizeof report->reason, "%llu rows verified%s",
                  (unsigned long long) report->rows, have_checkpoint? ", checkpoint holds": "");
    return AL_STORE_OK;
}

al_store_status_t
al_store_verify_path (const char *backend, const char *path, const char *checkpoint_path,
                      const uint8_t *checkpoint_key, al_verify_report_t *report)
{
    assert (path);
    assert (report);
    memset (report, 0, sizeof *report);
    al_store_options_t options = { .read_only = true, .cache_kib = 64 * 1024 };
    char error [sizeof report->reason];
    al_store_t *store = al_store_open (backend, path, &options, error, sizeof error);
    if (!store) {
        s_report (report, AL_VERIFY_IO, 0, "%s", error);
        return AL_STORE_ERR_IO;
    }
    al_store_status_t status = al_store_verify (store, checkpoint_path, checkpoint_key, report);
    al_store_destroy (&store);
    return status;
}

//  Signs checkpoint's row count and head hash (the rest is filled here) and writes it.
static al_store_status_t
s_checkpoint_sign_write (s_checkpoint_t *checkpoint_in, const uint8_t secret_key [64], const char *path,
                         char *error, size_t error_size)
{
    uint8_t *signed_bytes = NULL;
    json_t *root = NULL;
    char *text = NULL;
    al_store_status_t status = AL_STORE_ERR_IO;
    s_checkpoint_t checkpoint = *checkpoint_in;
    checkpoint.created_ms = (uint64_t) al_clock_wall_ms ();
    crypto_sign_ed25519_sk_to_pk (checkpoint.public_key, secret_key);
    size_t signed_size = 0;
    signed_bytes = s_checkpoint_signing_bytes (&checkpoint, &signed_size);
    if (!signed_bytes) {
        snprintf (error, error_size, "%s: out of memory", path);
        status = AL_STORE_ERR_NOMEM;
        goto cleanup;
    }
    crypto_sign_detached (checkpoint.signature, NULL, signed_bytes, signed_size, secret_key);
    char hash_hex [AL_STORE_HASH_SIZE * 2 + 1];
    char key_hex [crypto_sign_PUBLICKEYBYTES * 2 + 1];
    char signature_hex [crypto_sign_BYTES * 2 + 1];
    sodium_bin2hex (hash_hex, sizeof hash_hex, checkpoint.head_hash, AL_STORE_HASH_SIZE);
    sodium_bin2hex (key_hex, sizeof key_hex, checkpoint.public_key, sizeof checkpoint.public_key);
    sodium_bin2hex (signature_hex, sizeof signature_hex, checkpoint.signature, sizeof checkpoint.signature);
    root = json_pack ("{s:s, s:I, s:s, s:I, s:s, s:s}",
                      "format", S_CHECKPOINT_FORMAT,
                      "row_count", (json_int_t) checkpoint.row_count,
                      "head_hash", hash_hex,
                      "created_ms", (json_int_t) checkpoint.created_ms,
                      "public_key", key_hex,
                      "signature", signature_hex);
    text = root? json_dumps (root, JSON_INDENT (2) | JSON_PRESERVE_ORDER): NULL;
    if (!text) {
        snprintf (error, error_size, "%s: out of memory", path);
        status = AL_STORE_ERR_NOMEM;
        goto cleanup;
    }
    size_t length = strlen (text);
    text [length] = '\0';
    char *with_newline = realloc (text, length + 2);
    if (!with_newline) {
        snprintf (error, error_size, "%s: out of memory", path);
        status = AL_STORE_ERR_NOMEM;
        goto cleanup;
    }
    text = with_newline;
    text [length++] = '\n';
    text [length] = '\0';
    if (al_file_write_atomic (path, text, length, 0600, error, error_size) != 0)
        goto cleanup;
    status = AL_STORE_OK;
cleanup:
    free (signed_bytes);
    free (text);
    json_decref (root);
    return status;
}

al_store_status_t
al_store_checkpoint_write (al_store_t *self, const uint8_t secret_key [64], const char *path,
                           char *error, size_t error_size)
{
    assert (self && secret_key && path);
    assert (!self->in_transaction);
    s_checkpoint_t checkpoint = { 0 };
    //  The committed head, read from the backend, not our cached copy: the checkpoint
    //  must vouch only for what is on disk.
    if (self->ops.head (self->handle, &checkpoint.row_count, checkpoint.head_hash) != AL_STORE_OK) {
        snprintf (error, error_size, "%s", self->ops.error (self->handle));
        return AL_STORE_ERR_IO;
    }
    return s_checkpoint_sign_write (&checkpoint, secret_key, path, error, error_size);
}

al_store_status_t
al_store_checkpoint_write_head (al_store_t *self, const uint8_t secret_key [64], const char *path,
                                uint64_t row_count, const uint8_t head_hash [AL_STORE_HASH_SIZE],
                                char *error, size_t error_size)
{
    assert (self && secret_key && path && head_hash);
    assert (!self->in_transaction);
    char expected [AL_STORE_HASH_SIZE * 2 + 1], found [AL_STORE_HASH_SIZE * 2 + 1];
    sodium_bin2hex (expected, sizeof expected, head_hash, AL_STORE_HASH_SIZE);
    s_checkpoint_t checkpoint = { .row_count = row_count };
    memcpy (checkpoint.head_hash, head_hash, AL_STORE_HASH_SIZE);
    //  What is signed is the caller's head, never what the file says now; the file must
    //  still hold it (row row_count with that hash), or nothing is signed.
    uint8_t stored [AL_STORE_HASH_SIZE] = { 0 };
    if (row_count == 0) {
        uint64_t rows = 0;
        if (self->ops.head (self->handle, &rows, stored) != AL_STORE_OK) {
            snprintf (error, error_size, "%s: %s", self->path, self->ops.error (self->handle));
            return AL_STORE_ERR_IO;
        }
        if (rows != 0) {
            snprintf (error, error_size, "%s: expected an empty log, found %llu rows", self->path,
                      (unsigned long long) rows);
            return AL_STORE_ERR_HEAD_MISMATCH;
        }
    }
    else {
        al_store_event_t event;
        al_store_status_t status = self->ops.get (self->handle, row_count, &event);
        if (status == AL_STORE_NOT_FOUND) {
            snprintf (error, error_size, "%s: row %llu (expected hash %s) is missing", self->path,
                      (unsigned long long) row_count, expected);
            return AL_STORE_ERR_HEAD_MISMATCH;
        }
        if (status != AL_STORE_OK) {
            snprintf (error, error_size, "%s: row %llu: %s", self->path, (unsigned long long) row_count,
                      self->ops.error (self->handle));
            return status;
        }
        memcpy (stored, event.hash, AL_STORE_HASH_SIZE);
    }
    if (sodium_memcmp (stored, head_hash, AL_STORE_HASH_SIZE) != 0) {
        sodium_bin2hex (found, sizeof found, stored, AL_STORE_HASH_SIZE);
        snprintf (error, error_size, "%s: row %llu has hash %s, expected %s: the log was changed",
                  self->path, (unsigned long long) row_count, found, expected);
        return AL_STORE_ERR_HEAD_MISMATCH;
    }
    return s_checkpoint_sign_write (&checkpoint, secret_key, path, error, error_size);
}

void
al_store_format_time (uint64_t time_ms, char *out, size_t size)
{
    time_t seconds = (time_t) (time_ms / 1000);
    struct tm utc;
    if (!gmtime_r (&seconds, &utc)) {
        snprintf (out, size, "invalid");
        return;
    }
    char base [32];
    strftime (base, sizeof base, "%Y-%m-%dT%H:%M:%S", &utc);
    snprintf (out, size, "%s.%03uZ", base, (unsigned) (time_ms % 1000));
}

//  A JSON string, or for bytes that are not UTF-8 (only in a damaged log) a hex form.
static json_t *
s_json_text (const char *text)
{
    json_t *value = json_string (text);
    if (value)
        return value;
    size_t length = strlen (text);
    char *hex = malloc (length * 2 + 5);
    if (!hex)
        return NULL;
    memcpy (hex, "hex:", 4);
    sodium_bin2hex (hex + 4, length * 2 + 1, (const unsigned char *) text, length);
    value = json_string (hex);
    free (hex);
    return value;
}

static json_t *
s_event_json (const al_store_event_t *event)
{
    char time_text [48];
    char hash_hex [AL_STORE_HASH_SIZE * 2 + 1];
    al_store_format_time (event->time_ms, time_text, sizeof time_text);
    sodium_bin2hex (hash_hex, sizeof hash_hex, event->hash, AL_STORE_HASH_SIZE);
    size_t base64_size = sodium_base64_ENCODED_LEN (event->envelope_size, sodium_base64_VARIANT_ORIGINAL);
    char *base64 = malloc (base64_size);
    if (!base64)
        return NULL;
    sodium_bin2base64 (base64, base64_size, event->envelope, event->envelope_size,
                       sodium_base64_VARIANT_ORIGINAL);
    json_t *object = json_object ();
    if (object) {
        json_object_set_new (object, "seq", json_integer ((json_int_t) event->sequence));
        json_object_set_new (object, "time", json_string (time_text));
        json_object_set_new (object, "sender", s_json_text (event->sender));
        json_object_set_new (object, "role", s_json_text (event->role));
        json_object_set_new (object, "type", s_json_text (event->type));
        json_object_set_new (object, "message_id", s_json_text (event->message_id));
        json_object_set_new (object, "deployment_id", s_json_text (event->deployment_id));
        json_object_set_new (object, "environment", s_json_text (event->environment));
        json_object_set_new (object, "decision", json_string (event->decision == AL_STORE_ACCEPTED
                                                              ? "accepted": "denied"));
        json_object_set_new (object, "reason", s_json_text (event->reason));
        json_object_set_new (object, "hash", json_string (hash_hex));
        json_object_set_new (object, "envelope", json_string (base64));
    }
    free (base64);
    return object;
}

al_store_status_t
al_store_export_json (al_store_t *self, uint64_t from_sequence, FILE *out)
{
    assert (self && out);
    al_store_iter_t *iter = al_store_iter_new (self, from_sequence);
    if (!iter)
        return AL_STORE_ERR_IO;
    al_store_status_t status;
    al_store_event_t event;
    while ((status = al_store_iter_next (iter, &event)) == AL_STORE_OK) {
        json_t *object = s_event_json (&event);
        int rc = object? json_dumpf (object, out, JSON_COMPACT | JSON_PRESERVE_ORDER): -1;
        json_decref (object);
        if (rc != 0 || fputc ('\n', out) == EOF) {
            snprintf (self->error, sizeof self->error, "export: cannot write row %llu",
                      (unsigned long long) event.sequence);
            status = AL_STORE_ERR_IO;
            break;
        }
    }
    al_store_iter_destroy (&iter);
    return status == AL_STORE_END? AL_STORE_OK: status;
}
