/*  al_store_ops.h: the plug-in table of an audit store backend.

    The generic layer (al_store.c) owns the chain: it assigns sequence numbers, encodes
    row bytes, computes hashes, checks transactions, verifies and exports. A backend only
    stores and retrieves rows and side-table entries, durably. Backends are registered by
    name; al_store_open picks one. The built-in "sqlite" backend is always registered.

    Every member receives the backend handle returned by open. Members return an
    al_store_status_t and, on AL_STORE_ERR_*, write "what is wrong" into the handle's
    error text (read back through error). Pointers in outputs are borrowed: valid until
    the next call on the same handle (or iterator). MUST members are checked at
    registration; a MAY member left NULL is replaced by a shared no-op that returns
    AL_STORE_ERR_UNSUPPORTED (never a silent success: a store that cannot record consumed
    approvals must not pretend it did).

    Threading: a handle is used by one thread at a time.
*/
#ifndef AL_STORE_OPS_H_INCLUDED
#define AL_STORE_OPS_H_INCLUDED

#include "store/al_store.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AL_STORE_OPS_VERSION 1

typedef struct {
    //  MUST: unique backend name ("sqlite"), and AL_STORE_OPS_VERSION.
    const char *name;
    int version;

    //  MUST: open path. Durability MUST be verified here (every committed transaction
    //  survives power loss); the backend refuses to open otherwise. A read-only open MUST
    //  NOT create or modify anything. Returns the handle or NULL with error filled.
    void *(*open) (const char *path, const al_store_options_t *options, char *error, size_t error_size);
    //  MUST: close the handle, rolling back an open transaction. NULL-safe.
    void (*close) (void *handle);
    //  MUST: text of the last error ("" if none).
    const char *(*error) (void *handle);

    //  MUST: the committed head: number of rows and the hash of the last (zeros if none).
    al_store_status_t (*head) (void *handle, uint64_t *rows_p, uint8_t hash [AL_STORE_HASH_SIZE]);
    //  MUST: transactions. commit returns only when the transaction is durable.
    al_store_status_t (*begin) (void *handle);
    al_store_status_t (*commit) (void *handle);
    al_store_status_t (*rollback) (void *handle);

    //  MUST: the event with this sender and message id (visible inside the open
    //  transaction too), or AL_STORE_NOT_FOUND.
    al_store_status_t (*find_message) (void *handle, const char *sender, const char *message_id,
                                       al_store_event_t *event);
    //  MUST: store a fully formed event (sequence and hash set by the caller) inside the
    //  open transaction. The event's pointers are only read during the call.
    al_store_status_t (*insert) (void *handle, const al_store_event_t *event);
    //  MUST: the event with this sequence, or AL_STORE_NOT_FOUND.
    al_store_status_t (*get) (void *handle, uint64_t sequence, al_store_event_t *event);

    //  MUST: iterate events in ascending stored sequence from from_sequence, reporting
    //  rows exactly as stored (gaps included: verify relies on that). A row whose stored
    //  fields cannot be represented (hash not 32 bytes, decision not 1 or 2) MUST be
    //  returned with decision 0, never skipped or repaired, so verify names it. iter_next
    //  returns AL_STORE_OK, AL_STORE_END or an error. iter_close is NULL-safe. Several
    //  handles on the same path MUST be usable from different threads at once (verify
    //  opens read-only ones to scan ranges in parallel).
    void *(*iter_open) (void *handle, uint64_t from_sequence);
    al_store_status_t (*iter_next) (void *iter, al_store_event_t *event);
    void (*iter_close) (void *iter);

    //  MAY: side tables (see al_store.h for each contract). Writes join the open
    //  transaction if there is one, else run as their own durable transaction.
    al_store_status_t (*delivery_add) (void *handle, const char *role, uint64_t sequence);
    al_store_status_t (*delivery_ack) (void *handle, const char *role, uint64_t sequence);
    al_store_status_t (*delivery_pending) (void *handle, const char *role, uint64_t after_sequence,
                                           uint64_t *sequences, size_t max, size_t *count_p);
    al_store_status_t (*outbox_add) (void *handle, uint64_t sequence, const char *channel,
                                     const uint8_t *payload, size_t payload_size, uint64_t *id_p);
    al_store_status_t (*outbox_claim) (void *handle, uint64_t now_ms, uint64_t lease_ms,
                                       al_store_outbox_item_t *item);
    al_store_status_t (*outbox_mark_sent) (void *handle, uint64_t id, uint64_t sent_ms);
    al_store_status_t (*outbox_retry_at) (void *handle, uint64_t id, uint64_t next_attempt_ms,
                                          const char *error);
    al_store_status_t (*approval_consume) (void *handle, const uint8_t *approval_id, size_t size,
                                           uint64_t sequence);
    al_store_status_t (*journal_add) (void *handle, const al_store_journal_entry_t *entry);
    al_store_status_t (*journal_list) (void *handle, const char *deployment_id,
                                       al_store_journal_fn *fn, void *arg);

    //  MAY: fencing (docs/ha.md). From now on every commit on this handle checks, inside
    //  its transaction, that EPOCH is still the epoch of the brokers' lease (0: stop
    //  checking); a commit whose epoch is stale MUST fail (AL_STORE_ERR_IO, its error
    //  saying "fenced") and leave nothing behind.
    al_store_status_t (*set_fence) (void *handle, uint64_t epoch);

    //  MAY: true if insert itself refuses an event whose sender and non-empty message_id
    //  are already stored, returning AL_STORE_DUPLICATE, storing nothing and leaving the
    //  transaction usable. append then inserts without calling find_message first, and
    //  calls it only to answer a duplicate. false: append probes with find_message first.
    bool insert_reports_duplicate;
} al_store_ops_t;

//  Register a backend (the table is copied). Fails if a mandatory member is missing, the
//  version differs or the name is taken. Thread-safe.
al_store_status_t al_store_backend_register (const al_store_ops_t *ops, char *error, size_t error_size);

//  For backends: the meta table every audit database carries. A backend writes these
//  values when it creates the schema, reads them back at open, and lets the generic layer
//  judge them (one rule for every backend). Each check takes the value read (NULL: no
//  row) and returns 0, or -1 with what is wrong in error.
#define AL_STORE_META_APPLICATION "airlock-audit"
#define AL_STORE_META_SCHEMA_VERSION 1
int al_store_meta_application_check (const char *application, char *error, size_t error_size);
int al_store_meta_version_check (const char *schema_version, char *error, size_t error_size);

//  The built-in SQLite backend.
extern const al_store_ops_t al_store_sqlite_ops;

#ifdef __cplusplus
}
#endif

#endif
