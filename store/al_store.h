/*  al_store.h: the audit store: a hash-chained, append-only event log with the broker's
    side tables (delivery queues, notification outbox, consumed approvals, deploy journal).

    Every envelope the broker receives becomes one event (row). Rows are numbered 1, 2, 3...
    without gaps and chained: hash(n) = SHA-256(hash(n-1) || row_bytes(n)), hash(0) = 32
    zero bytes. Auditors re-implement row_bytes from this description:

        row_bytes = u8   format           (always 1)
                    u64  sequence
                    u64  time_ms          (broker clock, ms since the Unix epoch)
                    str  sender           (identity, from the CURVE key, never the envelope)
                    str  role
                    str  type             (message type name, "DeployRequest")
                    str  message_id
                    str  deployment_id
                    str  environment
                    u8   decision         (1 accepted, 2 denied)
                    str  reason
                    str  envelope         (the packed envelope bytes as received)

    where u8/u64 are unsigned big-endian integers of 1/8 bytes and str is a u32 big-endian
    byte length followed by that many bytes (no terminator). Strings are UTF-8 as given.

    The broker's cycle: al_store_begin; for each message al_store_append (AL_STORE_DUPLICATE
    hands back the original outcome of a retransmission); side-table writes for the
    accepted ones; al_store_commit (one fsync for the whole batch) or al_store_rollback.
    Delivery acks, outbox claims and journal reads work outside a transaction (each is its
    own durable transaction) or inside one (they join it).

    Verification (al_store_verify*) needs only read access. A signed checkpoint (row count
    and head hash, Ed25519) kept outside the database detects truncation and rewrites.
    Checkpoint files are JSON: {"format":"airlock-checkpoint-v1","row_count":N,
    "head_hash":"<hex>","created_ms":N,"public_key":"<hex>","signature":"<hex>"}; the
    signature is Ed25519 over al_codec_checkpoint_signing_bytes() of the Checkpoint message.

    Threading: an al_store_t belongs to one thread at a time. Several processes may open
    the same database (SQLite locking; writers wait up to busy_timeout_ms).
*/
#ifndef AL_STORE_H_INCLUDED
#define AL_STORE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AL_STORE_HASH_SIZE 32
#define AL_STORE_ROW_FORMAT 1
//  Name of the default (and built-in) backend.
#define AL_STORE_DEFAULT_BACKEND "sqlite"

typedef enum {
    AL_STORE_OK = 0,
    AL_STORE_DUPLICATE,         // append: (sender, message_id) exists; result holds the original
    AL_STORE_ALREADY_USED,      // approval_consume: the approval id was consumed before
    AL_STORE_NOT_FOUND,         // no such row / nothing due
    AL_STORE_END,               // iterator exhausted
    AL_STORE_ERR_ARGUMENT,      // bad argument from outside (too long, unknown backend, ...)
    AL_STORE_ERR_IO,            // the database failed (disk, locking, corruption); see al_store_error
    AL_STORE_ERR_BUSY,          // locked by another process beyond busy_timeout_ms
    AL_STORE_ERR_UNSUPPORTED,   // the backend does not implement this optional operation
    AL_STORE_ERR_NOMEM,
    AL_STORE_ERR_HEAD_MISMATCH  // the log does not hold the head the caller wrote (it was changed)
} al_store_status_t;

typedef enum {
    AL_STORE_ACCEPTED = 1,
    AL_STORE_DENIED = 2
} al_store_decision_t;

typedef struct _al_store_t al_store_t;
typedef struct _al_store_iter_t al_store_iter_t;

//  One event. As input to al_store_append, sequence and hash are ignored (the store
//  assigns them). As output (iterator, event_get) every pointer is borrowed from the
//  store and valid until the next call on the same store or iterator. Strings are never
//  NULL on output ("" when empty); on input NULL means "".
typedef struct {
    uint64_t sequence;
    uint64_t time_ms;
    const char *sender;
    const char *role;
    const char *type;
    const char *message_id;
    const char *deployment_id;
    const char *environment;
    al_store_decision_t decision;
    const char *reason;
    const uint8_t *envelope;
    size_t envelope_size;
    uint8_t hash [AL_STORE_HASH_SIZE];
} al_store_event_t;

//  Outcome of an append: the new row's, or (on AL_STORE_DUPLICATE) the original row's.
//  reason is copied into the result (truncated to fit).
typedef struct {
    uint64_t sequence;
    uint8_t hash [AL_STORE_HASH_SIZE];
    al_store_decision_t decision;
    char reason [256];
} al_store_append_result_t;

typedef struct {
    bool read_only;             // open for reading only (verify, export); no schema creation
    bool create;                // create the database if missing (ignored when read_only)
    int busy_timeout_ms;        // 0 = default (5000)
    int64_t cache_kib;          // page cache size in KiB; 0 = default (backend's choice)
} al_store_options_t;

//  Open a store with the named backend ("sqlite"); NULL backend = the default. options
//  NULL = read-write, create. Returns NULL with "path: what is wrong" in error on failure
//  (unknown backend, not a database, newer schema, WAL/FULL durability not in effect).
al_store_t *al_store_open (const char *backend, const char *path, const al_store_options_t *options,
                           char *error, size_t error_size);
//  Close; rolls back an open transaction. NULL-safe, sets *self_p to NULL.
void al_store_destroy (al_store_t **self_p);
//  Text of the last error on this store ("" if none).
const char *al_store_error (al_store_t *self);
const char *al_store_strerror (al_store_status_t status);

//  A row time as the exports and the auditor's tools print it: "2026-11-22T05:41:09.123Z"
//  (UTC, milliseconds); "invalid" when it cannot be represented.
void al_store_format_time (uint64_t time_ms, char *out, size_t size);
//  The backend's name.
const char *al_store_backend_name (al_store_t *self);

//  Rows committed or appended in the open transaction, and the head hash (zeros if empty).
uint64_t al_store_row_count (al_store_t *self);
void al_store_head_hash (al_store_t *self, uint8_t hash [AL_STORE_HASH_SIZE]);

//  Transactions. At most one open at a time per store.
al_store_status_t al_store_begin (al_store_t *self);
al_store_status_t al_store_commit (al_store_t *self);
al_store_status_t al_store_rollback (al_store_t *self);
bool al_store_in_transaction (al_store_t *self);

//  Append an event; must be inside a transaction. AL_STORE_OK: result holds the new row.
//  AL_STORE_DUPLICATE: an event with this sender and (non-empty) message_id exists,
//  committed or earlier in this transaction; result holds that original row; nothing
//  is written. Events with an empty message_id are never de-duplicated.
al_store_status_t al_store_append (al_store_t *self, const al_store_event_t *event,
                                   al_store_append_result_t *result);
//  Event by sequence number (borrowed until the next call on self). AL_STORE_NOT_FOUND.
al_store_status_t al_store_event_get (al_store_t *self, uint64_t sequence, al_store_event_t *event);

//  Replay iterator over events in sequence order from from_sequence (1 = all).
al_store_iter_t *al_store_iter_new (al_store_t *self, uint64_t from_sequence);
//  AL_STORE_OK and *event (borrowed until the next call), AL_STORE_END, or an error.
al_store_status_t al_store_iter_next (al_store_iter_t *iter, al_store_event_t *event);
void al_store_iter_destroy (al_store_iter_t **iter_p);

//  Delivery queue: an event to be delivered to a role, kept until an instance acks it.
//  add must be inside a transaction (with its event). ack: AL_STORE_NOT_FOUND if not
//  pending. pending: up to max sequences after after_sequence, oldest first.
al_store_status_t al_store_delivery_add (al_store_t *self, const char *role, uint64_t sequence);
al_store_status_t al_store_delivery_ack (al_store_t *self, const char *role, uint64_t sequence);
al_store_status_t al_store_delivery_pending (al_store_t *self, const char *role, uint64_t after_sequence,
                                             uint64_t *sequences, size_t max, size_t *count_p);

//  Notification outbox. add must be inside a transaction; it is tied to the event
//  `sequence`. claim takes the oldest due, unsent item whose lease has expired, leases it
//  until now_ms + lease_ms and counts an attempt; AL_STORE_NOT_FOUND when none is due.
typedef struct {
    uint64_t id;
    uint64_t sequence;
    const char *channel;        // borrowed until the next call on the store
    const uint8_t *payload;
    size_t payload_size;
    uint32_t attempts;          // including this claim
    const char *last_error;
} al_store_outbox_item_t;

al_store_status_t al_store_outbox_add (al_store_t *self, uint64_t sequence, const char *channel,
                                       const uint8_t *payload, size_t payload_size, uint64_t *id_p);
al_store_status_t al_store_outbox_claim (al_store_t *self, uint64_t now_ms, uint64_t lease_ms,
                                         al_store_outbox_item_t *item);
al_store_status_t al_store_outbox_mark_sent (al_store_t *self, uint64_t id, uint64_t sent_ms);
al_store_status_t al_store_outbox_retry_at (al_store_t *self, uint64_t id, uint64_t next_attempt_ms,
                                            const char *error);

//  Consume a single-use approval id inside the transaction of the event that uses it
//  (sequence). AL_STORE_ALREADY_USED if it was consumed before (nothing written).
al_store_status_t al_store_approval_consume (al_store_t *self, const uint8_t *approval_id, size_t size,
                                             uint64_t sequence);

//  Deployment step journal, inside a transaction; the entry is tied to the last event
//  appended in it (its sequence and time).
typedef struct {
    uint64_t sequence;
    uint64_t time_ms;
    const char *deployment_id;
    const char *step;           // "preflight", "backup", ...
    const char *phase;          // "before", "after"
    const char *status;         // "started", "ok", "failed", ...
    const char *detail;
} al_store_journal_entry_t;

al_store_status_t al_store_journal_add (al_store_t *self, const char *deployment_id, const char *step,
                                        const char *phase, const char *status, const char *detail);
//  Calls fn for each entry of a deployment in order; fn returns non-zero to stop.
typedef int (al_store_journal_fn) (const al_store_journal_entry_t *entry, void *arg);
al_store_status_t al_store_journal_list (al_store_t *self, const char *deployment_id,
                                         al_store_journal_fn *fn, void *arg);

//  Fencing for broker failover (docs/ha.md, broker/al_leader.h): every later commit
//  checks in its own transaction that EPOCH is still the lease's, and fails with
//  AL_STORE_ERR_IO (its error saying "fenced") otherwise. AL_STORE_ERR_UNSUPPORTED on a backend
//  without a shared lease (SQLite: one broker per file, by its lock).
al_store_status_t al_store_set_fence (al_store_t *self, uint64_t epoch);

//  Verification.
typedef enum {
    AL_VERIFY_OK = 0,
    AL_VERIFY_GAP,              // a sequence number is missing (or the log does not start at 1)
    AL_VERIFY_HASH_MISMATCH,    // a row's stored hash is not SHA-256(prev || row bytes)
    AL_VERIFY_BAD_ROW,          // a row's fields cannot be encoded (bad decision, ...)
    AL_VERIFY_TRUNCATED,        // fewer rows than the checkpoint's row_count
    AL_VERIFY_CHECKPOINT_MISMATCH, // the row at the checkpoint's row_count has another hash
    AL_VERIFY_BAD_CHECKPOINT,   // the checkpoint's signature (or format) is invalid
    AL_VERIFY_IO                // could not read the database or the checkpoint
} al_verify_result_t;

typedef struct {
    al_verify_result_t result;
    uint64_t rows;                  // rows scanned (that verified)
    uint64_t first_bad_sequence;    // 0 when ok
    uint8_t head_hash [AL_STORE_HASH_SIZE];
    bool checkpoint_checked;        // a checkpoint was given and verified against the log
    uint64_t checkpoint_rows;
    uint8_t checkpoint_key [32];    // the Ed25519 key that signed the checkpoint
    bool checkpoint_malformed;      // BAD_CHECKPOINT because the file is not a checkpoint at all
                                    // (not JSON, wrong format, missing or malformed fields),
                                    // not because a well-formed one fails its signature or key
    char reason [256];              // human-readable
} al_verify_report_t;

//  Verify the chain of an open store (and a checkpoint file unless NULL). checkpoint_key
//  pins the broker's Ed25519 public key (32 bytes): a checkpoint signed by any other key
//  is AL_VERIFY_BAD_CHECKPOINT. With NULL, the key inside the checkpoint is accepted
//  (and reported in report->checkpoint_key): that only proves the checkpoint was not
//  altered, not who made it. Returns AL_STORE_OK when verification ran (its outcome is
//  in report->result), else an error (report->result AL_VERIFY_IO).
al_store_status_t al_store_verify (al_store_t *self, const char *checkpoint_path, const uint8_t *checkpoint_key,
                                   al_verify_report_t *report);
//  Open path read-only with the backend (NULL = default) and verify it.
al_store_status_t al_store_verify_path (const char *backend, const char *path, const char *checkpoint_path,
                                        const uint8_t *checkpoint_key, al_verify_report_t *report);
const char *al_verify_result_name (al_verify_result_t result);

//  Sign (row count, head hash, created time, public key) of the committed log with an
//  Ed25519 secret key (libsodium format, 64 bytes) and write it atomically to path.
al_store_status_t al_store_checkpoint_write (al_store_t *self, const uint8_t secret_key [64], const char *path,
                                             char *error, size_t error_size);
//  Sign the head the caller itself committed (row_count rows, the last with head_hash)
//  rather than what the file holds now: a writer that remembers its own head never vouches
//  for rows changed under it. Nothing is written, and AL_STORE_ERR_HEAD_MISMATCH returned
//  with "path: row N has hash X, expected Y" in error, unless row row_count is stored with
//  exactly head_hash (rows after it, appended since, do not matter).
al_store_status_t al_store_checkpoint_write_head (al_store_t *self, const uint8_t secret_key [64],
                                                  const char *path, uint64_t row_count,
                                                  const uint8_t head_hash [AL_STORE_HASH_SIZE],
                                                  char *error, size_t error_size);

//  Encode an event's canonical row bytes into buffer; returns the needed size (write
//  happens only if it fits). Exposed for auditors' tests and the bench.
size_t al_store_row_encode (const al_store_event_t *event, uint8_t *buffer, size_t size);
//  hash = SHA-256(prev || row_bytes).
void al_store_chain_hash (const uint8_t prev [AL_STORE_HASH_SIZE], const uint8_t *row, size_t row_size,
                          uint8_t hash [AL_STORE_HASH_SIZE]);

//  Write every event from from_sequence as one JSON object per line: seq, time (RFC 3339
//  UTC with ms), sender, role, type, message_id, deployment_id, environment, decision,
//  reason, hash (hex), envelope (base64).
al_store_status_t al_store_export_json (al_store_t *self, uint64_t from_sequence, FILE *out);

#ifdef __cplusplus
}
#endif

#endif
