/*  al_store.c: the audit store's generic layer: backend registry, open, transactions,
    append with the hash chain, lookups and the side-table calls.

    The chain is computed here, never in a backend, so every backend produces the same
    hashes and an auditor's re-implementation of al_store.h's row encoding agrees with
    all of them. Invariants: rows are numbered 1..rows without gaps; head is the hash of
    row `rows` (zeros when empty); appends and side-table adds happen only inside a
    transaction; rollback restores the head saved at begin.

    Threading: the registry is guarded by a mutex; a store belongs to one thread.
*/
#include "store/al_store_int.h"
#include "store/al_store_pg.h"
#include <assert.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_BACKENDS 8

static pthread_mutex_t s_registry_lock = PTHREAD_MUTEX_INITIALIZER;
static al_store_ops_t s_registry [S_MAX_BACKENDS];
static size_t s_registry_count;

//  Shared no-ops for optional members: they refuse, never pretend to succeed.
static al_store_status_t
s_unsupported_role_seq (void *handle, const char *role, uint64_t sequence)
{
    (void) handle; (void) role; (void) sequence;
    return AL_STORE_ERR_UNSUPPORTED;
}

static al_store_status_t
s_unsupported_pending (void *handle, const char *role, uint64_t after, uint64_t *sequences,
                       size_t max, size_t *count_p)
{
    (void) handle; (void) role; (void) after; (void) sequences; (void) max;
    *count_p = 0;
    return AL_STORE_ERR_UNSUPPORTED;
}

static al_store_status_t
s_unsupported_outbox_add (void *handle, uint64_t sequence, const char *channel, const uint8_t *payload,
                          size_t payload_size, uint64_t *id_p)
{
    (void) handle; (void) sequence; (void) channel; (void) payload; (void) payload_size; (void) id_p;
    return AL_STORE_ERR_UNSUPPORTED;
}

static al_store_status_t
s_unsupported_outbox_claim (void *handle, uint64_t now_ms, uint64_t lease_ms, al_store_outbox_item_t *item)
{
    (void) handle; (void) now_ms; (void) lease_ms; (void) item;
    return AL_STORE_ERR_UNSUPPORTED;
}

static al_store_status_t
s_unsupported_outbox_sent (void *handle, uint64_t id, uint64_t sent_ms)
{
    (void) handle; (void) id; (void) sent_ms;
    return AL_STORE_ERR_UNSUPPORTED;
}

static al_store_status_t
s_unsupported_outbox_retry (void *handle, uint64_t id, uint64_t next_attempt_ms, const char *error)
{
    (void) handle; (void) id; (void) next_attempt_ms; (void) error;
    return AL_STORE_ERR_UNSUPPORTED;
}

static al_store_status_t
s_unsupported_approval (void *handle, const uint8_t *approval_id, size_t size, uint64_t sequence)
{
    (void) handle; (void) approval_id; (void) size; (void) sequence;
    return AL_STORE_ERR_UNSUPPORTED;
}

static al_store_status_t
s_unsupported_journal_add (void *handle, const al_store_journal_entry_t *entry)
{
    (void) handle; (void) entry;
    return AL_STORE_ERR_UNSUPPORTED;
}

static al_store_status_t
s_unsupported_journal_list (void *handle, const char *deployment_id, al_store_journal_fn *fn, void *arg)
{
    (void) handle; (void) deployment_id; (void) fn; (void) arg;
    return AL_STORE_ERR_UNSUPPORTED;
}

static al_store_status_t
s_unsupported_fence (void *handle, uint64_t epoch)
{
    (void) handle; (void) epoch;
    return AL_STORE_ERR_UNSUPPORTED;
}

static al_store_status_t
s_register_locked (const al_store_ops_t *ops, char *error, size_t error_size)
{
    const char *missing = !ops->name? "name": !ops->open? "open": !ops->close? "close"
                        : !ops->error? "error": !ops->head? "head": !ops->begin? "begin"
                        : !ops->commit? "commit": !ops->rollback? "rollback"
                        : !ops->find_message? "find_message": !ops->insert? "insert"
                        : !ops->get? "get": !ops->iter_open? "iter_open"
                        : !ops->iter_next? "iter_next": !ops->iter_close? "iter_close": NULL;
    if (missing) {
        snprintf (error, error_size, "store backend '%s': mandatory member '%s' is not set",
                  ops->name? ops->name: "?", missing);
        return AL_STORE_ERR_ARGUMENT;
    }
    if (ops->version != AL_STORE_OPS_VERSION) {
        snprintf (error, error_size, "store backend '%s': ops version %d, expected %d",
                  ops->name, ops->version, AL_STORE_OPS_VERSION);
        return AL_STORE_ERR_ARGUMENT;
    }
    for (size_t i = 0; i < s_registry_count; i++)
        if (strcmp (s_registry [i].name, ops->name) == 0) {
            snprintf (error, error_size, "store backend '%s': already registered", ops->name);
            return AL_STORE_ERR_ARGUMENT;
        }
    if (s_registry_count == S_MAX_BACKENDS) {
        snprintf (error, error_size, "store backend '%s': too many backends", ops->name);
        return AL_STORE_ERR_ARGUMENT;
    }
    al_store_ops_t copy = *ops;
    if (!copy.delivery_add)     copy.delivery_add = s_unsupported_role_seq;
    if (!copy.delivery_ack)     copy.delivery_ack = s_unsupported_role_seq;
    if (!copy.delivery_pending) copy.delivery_pending = s_unsupported_pending;
    if (!copy.outbox_add)       copy.outbox_add = s_unsupported_outbox_add;
    if (!copy.outbox_claim)     copy.outbox_claim = s_unsupported_outbox_claim;
    if (!copy.outbox_mark_sent) copy.outbox_mark_sent = s_unsupported_outbox_sent;
    if (!copy.outbox_retry_at)  copy.outbox_retry_at = s_unsupported_outbox_retry;
    if (!copy.approval_consume) copy.approval_consume = s_unsupported_approval;
    if (!copy.journal_add)      copy.journal_add = s_unsupported_journal_add;
    if (!copy.journal_list)     copy.journal_list = s_unsupported_journal_list;
    if (!copy.set_fence)        copy.set_fence = s_unsupported_fence;
    s_registry [s_registry_count++] = copy;
    return AL_STORE_OK;
}

//  The built-in backends (SQLite, PostgreSQL) are registered on first use of the registry.
static void
s_registry_init_locked (void)
{
    if (s_registry_count == 0) {
        char error [128];
        al_store_status_t status = s_register_locked (&al_store_sqlite_ops, error, sizeof error);
        assert (status == AL_STORE_OK);
        status = s_register_locked (&al_store_pg_ops, error, sizeof error);
        assert (status == AL_STORE_OK);
        (void) status;
    }
}

int
al_store_meta_application_check (const char *application, char *error, size_t error_size)
{
    if (!application || strcmp (application, AL_STORE_META_APPLICATION) != 0) {
        snprintf (error, error_size, "not an airlock audit database (meta.application is not '%s')",
                  AL_STORE_META_APPLICATION);
        return -1;
    }
    return 0;
}

int
al_store_meta_version_check (const char *schema_version, char *error, size_t error_size)
{
    if (!schema_version) {
        snprintf (error, error_size, "schema version missing");
        return -1;
    }
    char *end = NULL;
    long version = strtol (schema_version, &end, 10);
    if (*end || version < 1) {
        snprintf (error, error_size, "bad schema version '%s'", schema_version);
        return -1;
    }
    if (version > AL_STORE_META_SCHEMA_VERSION) {
        snprintf (error, error_size, "schema version %ld is newer than this airlock supports (%d)",
                  version, AL_STORE_META_SCHEMA_VERSION);
        return -1;
    }
    return 0;
}

al_store_status_t
al_store_backend_register (const al_store_ops_t *ops, char *error, size_t error_size)
{
    assert (ops);
    pthread_mutex_lock (&s_registry_lock);
    s_registry_init_locked ();
    al_store_status_t status = s_register_locked (ops, error, error_size);
    pthread_mutex_unlock (&s_registry_lock);
    return status;
}

const char *
al_store_strerror (al_store_status_t status)
{
    switch (status) {
        case AL_STORE_OK:              return "ok";
        case AL_STORE_DUPLICATE:       return "duplicate message";
        case AL_STORE_ALREADY_USED:    return "approval already used";
        case AL_STORE_NOT_FOUND:       return "not found";
        case AL_STORE_END:             return "end of log";
        case AL_STORE_ERR_ARGUMENT:    return "invalid argument";
        case AL_STORE_ERR_IO:          return "database error";
        case AL_STORE_ERR_BUSY:        return "database busy";
        case AL_STORE_ERR_UNSUPPORTED: return "not supported by this backend";
        case AL_STORE_ERR_NOMEM:       return "out of memory";
        case AL_STORE_ERR_HEAD_MISMATCH: return "the log's head is not the one written";
    }
    return "unknown status";
}

al_store_status_t
al_store_fail (al_store_t *self, al_store_status_t status, const char *what)
{
    snprintf (self->error, sizeof self->error, "%s: %s", what, self->ops.error (self->handle));
    return status;
}

al_store_t *
al_store_open (const char *backend, const char *path, const al_store_options_t *options,
               char *error, size_t error_size)
{
    assert (path);
    static const al_store_options_t defaults = { .create = true };
    if (!options)
        options = &defaults;
    if (!backend)
        backend = AL_STORE_DEFAULT_BACKEND;
    if (sodium_init () < 0) {
        snprintf (error, error_size, "%s: libsodium failed to initialise", path);
        return NULL;
    }
    al_store_t *self = calloc (1, sizeof *self);
    if (!self) {
        snprintf (error, error_size, "%s: out of memory", path);
        return NULL;
    }
    pthread_mutex_lock (&s_registry_lock);
    s_registry_init_locked ();
    bool found = false;
    for (size_t i = 0; i < s_registry_count; i++)
        if (strcmp (s_registry [i].name, backend) == 0) {
            self->ops = s_registry [i];
            found = true;
        }
    pthread_mutex_unlock (&s_registry_lock);
    if (!found) {
        snprintf (error, error_size, "%s: unknown store backend '%s'", path, backend);
        goto failed;
    }
    self->path = strdup (path);
    self->row_size = 1024;
    self->row = malloc (self->row_size);
    if (!self->path || !self->row) {
        snprintf (error, error_size, "%s: out of memory", path);
        goto failed;
    }
    self->handle = self->ops.open (path, options, error, error_size);
    if (!self->handle)
        goto failed;
    if (self->ops.head (self->handle, &self->rows, self->head) != AL_STORE_OK) {
        snprintf (error, error_size, "%s", self->ops.error (self->handle));
        goto failed;
    }
    return self;
failed:
    al_store_destroy (&self);
    return NULL;
}

void
al_store_destroy (al_store_t **self_p)
{
    assert (self_p);
    al_store_t *self = *self_p;
    if (!self)
        return;
    if (self->handle)
        self->ops.close (self->handle);
    free (self->row);
    free (self->path);
    free (self);
    *self_p = NULL;
}

const char *
al_store_error (al_store_t *self)
{
    assert (self);
    return self->error;
}

const char *
al_store_backend_name (al_store_t *self)
{
    assert (self);
    return self->ops.name;
}

uint64_t
al_store_row_count (al_store_t *self)
{
    assert (self);
    return self->rows;
}

void
al_store_head_hash (al_store_t *self, uint8_t hash [AL_STORE_HASH_SIZE])
{
    assert (self);
    memcpy (hash, self->head, AL_STORE_HASH_SIZE);
}

bool
al_store_in_transaction (al_store_t *self)
{
    assert (self);
    return self->in_transaction;
}

al_store_status_t
al_store_begin (al_store_t *self)
{
    assert (self);
    assert (!self->in_transaction);
    al_store_status_t status = self->ops.begin (self->handle);
    if (status != AL_STORE_OK)
        return al_store_fail (self, status, "begin");
    //  Another process may have appended since we last looked: re-read the head inside
    //  the write lock so our sequence numbers and chain continue from the real head.
    status = self->ops.head (self->handle, &self->rows, self->head);
    if (status != AL_STORE_OK) {
        al_store_fail (self, status, "begin");
        self->ops.rollback (self->handle);
        return status;
    }
    self->committed_rows = self->rows;
    memcpy (self->committed_head, self->head, AL_STORE_HASH_SIZE);
    self->last_time_ms = 0;
    self->in_transaction = true;
    return AL_STORE_OK;
}

static void
s_restore_head (al_store_t *self)
{
    self->rows = self->committed_rows;
    memcpy (self->head, self->committed_head, AL_STORE_HASH_SIZE);
    self->in_transaction = false;
}

al_store_status_t
al_store_commit (al_store_t *self)
{
    assert (self);
    assert (self->in_transaction);
    al_store_status_t status = self->ops.commit (self->handle);
    if (status != AL_STORE_OK) {
        al_store_fail (self, status, "commit");
        self->ops.rollback (self->handle);
        s_restore_head (self);
        return status;
    }
    self->in_transaction = false;
    return AL_STORE_OK;
}

al_store_status_t
al_store_rollback (al_store_t *self)
{
    assert (self);
    assert (self->in_transaction);
    al_store_status_t status = self->ops.rollback (self->handle);
    s_restore_head (self);
    return status == AL_STORE_OK? status: al_store_fail (self, status, "rollback");
}

static void
s_result_from (al_store_append_result_t *result, const al_store_event_t *event)
{
    result->sequence = event->sequence;
    memcpy (result->hash, event->hash, AL_STORE_HASH_SIZE);
    result->decision = event->decision;
    //  Cut to fit like snprintf, without parsing a format for every row.
    const char *reason = event->reason? event->reason: "";
    size_t length = strnlen (reason, sizeof result->reason - 1);
    memcpy (result->reason, reason, length);
    result->reason [length] = '\0';
}

//  Encodes into self->row, growing it; returns the size or 0 on allocation failure.
static size_t
s_encode (al_store_t *self, const al_store_event_t *event)
{
    size_t size = al_store_row_encode (event, self->row, self->row_size);
    if (size > self->row_size) {
        uint8_t *bigger = realloc (self->row, size);
        if (!bigger)
            return 0;
        self->row = bigger;
        self->row_size = size;
        size = al_store_row_encode (event, self->row, self->row_size);
        assert (size <= self->row_size);
    }
    return size;
}

al_store_status_t
al_store_append (al_store_t *self, const al_store_event_t *event, al_store_append_result_t *result)
{
    assert (self);
    assert (event);
    assert (result);
    assert (self->in_transaction);
    if (event->decision != AL_STORE_ACCEPTED && event->decision != AL_STORE_DENIED) {
        snprintf (self->error, sizeof self->error, "decision: must be accepted or denied");
        return AL_STORE_ERR_ARGUMENT;
    }
    al_store_event_t row = *event;
    row.sender = row.sender? row.sender: "";
    row.role = row.role? row.role: "";
    row.type = row.type? row.type: "";
    row.message_id = row.message_id? row.message_id: "";
    row.deployment_id = row.deployment_id? row.deployment_id: "";
    row.environment = row.environment? row.environment: "";
    row.reason = row.reason? row.reason: "";
    if (!row.envelope)
        row.envelope_size = 0;
    //  A backend whose insert reports duplicates saves this probe per append (below).
    if (*row.message_id && !self->ops.insert_reports_duplicate) {
        al_store_event_t original;
        al_store_status_t status = self->ops.find_message (self->handle, row.sender, row.message_id, &original);
        if (status == AL_STORE_OK) {
            s_result_from (result, &original);
            return AL_STORE_DUPLICATE;
        }
        if (status != AL_STORE_NOT_FOUND)
            return al_store_fail (self, status, "append");
    }
    row.sequence = self->rows + 1;
    size_t size = s_encode (self, &row);
    if (size == 0) {
        snprintf (self->error, sizeof self->error, "append: out of memory");
        return AL_STORE_ERR_NOMEM;
    }
    al_store_chain_hash (self->head, self->row, size, row.hash);
    //  All zero only if libcrypto failed (al_store_chain_hash): append nothing then.
    if (sodium_is_zero (row.hash, AL_STORE_HASH_SIZE)) {
        snprintf (self->error, sizeof self->error, "append: SHA-256 failed");
        return AL_STORE_ERR_NOMEM;
    }
    al_store_status_t status = self->ops.insert (self->handle, &row);
    if (status == AL_STORE_DUPLICATE && *row.message_id && self->ops.insert_reports_duplicate) {
        al_store_event_t original;
        status = self->ops.find_message (self->handle, row.sender, row.message_id, &original);
        if (status == AL_STORE_OK) {
            s_result_from (result, &original);
            return AL_STORE_DUPLICATE;
        }
        if (status == AL_STORE_NOT_FOUND) {
            snprintf (self->error, sizeof self->error, "append: insert reported a duplicate of '%s' that is not stored",
                      row.message_id);
            return AL_STORE_ERR_IO;
        }
    }
    if (status != AL_STORE_OK)
        return al_store_fail (self, status, "append");
    self->rows = row.sequence;
    memcpy (self->head, row.hash, AL_STORE_HASH_SIZE);
    self->last_time_ms = row.time_ms;
    s_result_from (result, &row);
    return AL_STORE_OK;
}

al_store_status_t
al_store_event_get (al_store_t *self, uint64_t sequence, al_store_event_t *event)
{
    assert (self);
    assert (event);
    al_store_status_t status = self->ops.get (self->handle, sequence, event);
    return status == AL_STORE_OK || status == AL_STORE_NOT_FOUND? status: al_store_fail (self, status, "get");
}

struct _al_store_iter_t {
    al_store_t *store;
    void *backend_iter;
};

al_store_iter_t *
al_store_iter_new (al_store_t *self, uint64_t from_sequence)
{
    assert (self);
    al_store_iter_t *iter = calloc (1, sizeof *iter);
    if (!iter) {
        snprintf (self->error, sizeof self->error, "iterator: out of memory");
        return NULL;
    }
    iter->store = self;
    iter->backend_iter = self->ops.iter_open (self->handle, from_sequence? from_sequence: 1);
    if (!iter->backend_iter) {
        al_store_fail (self, AL_STORE_ERR_IO, "iterator");
        free (iter);
        return NULL;
    }
    return iter;
}

al_store_status_t
al_store_iter_next (al_store_iter_t *iter, al_store_event_t *event)
{
    assert (iter);
    assert (event);
    al_store_status_t status = iter->store->ops.iter_next (iter->backend_iter, event);
    if (status != AL_STORE_OK && status != AL_STORE_END)
        al_store_fail (iter->store, status, "iterator");
    return status;
}

void
al_store_iter_destroy (al_store_iter_t **iter_p)
{
    assert (iter_p);
    al_store_iter_t *iter = *iter_p;
    if (!iter)
        return;
    iter->store->ops.iter_close (iter->backend_iter);
    free (iter);
    *iter_p = NULL;
}

//  Side tables: adds belong to the transaction of their event (assert: our own API's
//  contract); the rest may run on their own.
al_store_status_t
al_store_delivery_add (al_store_t *self, const char *role, uint64_t sequence)
{
    assert (self && role);
    assert (self->in_transaction);
    al_store_status_t status = self->ops.delivery_add (self->handle, role, sequence);
    return status == AL_STORE_OK? status: al_store_fail (self, status, "delivery add");
}

al_store_status_t
al_store_delivery_ack (al_store_t *self, const char *role, uint64_t sequence)
{
    assert (self && role);
    al_store_status_t status = self->ops.delivery_ack (self->handle, role, sequence);
    return status == AL_STORE_OK || status == AL_STORE_NOT_FOUND? status: al_store_fail (self, status, "delivery ack");
}

al_store_status_t
al_store_delivery_pending (al_store_t *self, const char *role, uint64_t after_sequence,
                           uint64_t *sequences, size_t max, size_t *count_p)
{
    assert (self && role && count_p);
    assert (sequences || max == 0);
    al_store_status_t status = self->ops.delivery_pending (self->handle, role, after_sequence,
                                                           sequences, max, count_p);
    return status == AL_STORE_OK? status: al_store_fail (self, status, "delivery pending");
}

al_store_status_t
al_store_outbox_add (al_store_t *self, uint64_t sequence, const char *channel,
                     const uint8_t *payload, size_t payload_size, uint64_t *id_p)
{
    assert (self && channel);
    assert (payload || payload_size == 0);
    assert (self->in_transaction);
    al_store_status_t status = self->ops.outbox_add (self->handle, sequence, channel, payload,
                                                     payload_size, id_p);
    return status == AL_STORE_OK? status: al_store_fail (self, status, "outbox add");
}

al_store_status_t
al_store_outbox_claim (al_store_t *self, uint64_t now_ms, uint64_t lease_ms, al_store_outbox_item_t *item)
{
    assert (self && item);
    al_store_status_t status = self->ops.outbox_claim (self->handle, now_ms, lease_ms, item);
    return status == AL_STORE_OK || status == AL_STORE_NOT_FOUND? status: al_store_fail (self, status, "outbox claim");
}

al_store_status_t
al_store_outbox_mark_sent (al_store_t *self, uint64_t id, uint64_t sent_ms)
{
    assert (self);
    al_store_status_t status = self->ops.outbox_mark_sent (self->handle, id, sent_ms);
    return status == AL_STORE_OK || status == AL_STORE_NOT_FOUND? status: al_store_fail (self, status, "outbox sent");
}

al_store_status_t
al_store_outbox_retry_at (al_store_t *self, uint64_t id, uint64_t next_attempt_ms, const char *error)
{
    assert (self);
    al_store_status_t status = self->ops.outbox_retry_at (self->handle, id, next_attempt_ms, error);
    return status == AL_STORE_OK || status == AL_STORE_NOT_FOUND? status: al_store_fail (self, status, "outbox retry");
}

al_store_status_t
al_store_approval_consume (al_store_t *self, const uint8_t *approval_id, size_t size, uint64_t sequence)
{
    assert (self && approval_id);
    assert (self->in_transaction);
    if (size == 0) {
        snprintf (self->error, sizeof self->error, "approval_id: empty");
        return AL_STORE_ERR_ARGUMENT;
    }
    al_store_status_t status = self->ops.approval_consume (self->handle, approval_id, size, sequence);
    return status == AL_STORE_OK || status == AL_STORE_ALREADY_USED? status
         : al_store_fail (self, status, "approval consume");
}

al_store_status_t
al_store_journal_add (al_store_t *self, const char *deployment_id, const char *step,
                      const char *phase, const char *status_text, const char *detail)
{
    assert (self && deployment_id && step && phase && status_text);
    assert (self->in_transaction);
    //  The entry is tied to the event that caused it: the last one appended.
    assert (self->rows > self->committed_rows);
    al_store_journal_entry_t entry = {
        .sequence = self->rows, .time_ms = self->last_time_ms, .deployment_id = deployment_id,
        .step = step, .phase = phase, .status = status_text, .detail = detail? detail: ""
    };
    al_store_status_t status = self->ops.journal_add (self->handle, &entry);
    return status == AL_STORE_OK? status: al_store_fail (self, status, "journal add");
}

al_store_status_t
al_store_journal_list (al_store_t *self, const char *deployment_id, al_store_journal_fn *fn, void *arg)
{
    assert (self && deployment_id && fn);
    al_store_status_t status = self->ops.journal_list (self->handle, deployment_id, fn, arg);
    return status == AL_STORE_OK? status: al_store_fail (self, status, "journal list");
}

al_store_status_t
al_store_set_fence (al_store_t *self, uint64_t epoch)
{
    assert (self);
    al_store_status_t status = self->ops.set_fence (self->handle, epoch);
    return status == AL_STORE_OK? status: al_store_fail (self, status, "set fence");
}
