/*  al_store_pg_int.h: internals of the PostgreSQL backend shared by its files
    (al_store_pg.c: connection, durability, transactions, events; al_store_pg_side.c: the
    side tables; al_store_pg_copy.c: the copy tool). Never included outside store/.
*/
#ifndef AL_STORE_PG_INT_H_INCLUDED
#define AL_STORE_PG_INT_H_INCLUDED

#include "store/al_store_ops.h"
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#define AL_PG_MAX_PARAMS 12

//  Prepared statements (SQL in al_store_pg.c), prepared on first use per session.
typedef enum {
    AL_PG_HEAD, AL_PG_FIND, AL_PG_INSERT, AL_PG_GET, AL_PG_ITER,
    AL_PG_DELIVERY_ADD, AL_PG_DELIVERY_ACK, AL_PG_DELIVERY_PENDING,
    AL_PG_OUTBOX_ADD, AL_PG_OUTBOX_CLAIM, AL_PG_OUTBOX_SENT, AL_PG_OUTBOX_RETRY,
    AL_PG_APPROVAL, AL_PG_JOURNAL_ADD, AL_PG_JOURNAL_LIST, AL_PG_STMT_COUNT
} al_pg_stmt_t;

//  A backend handle: one connection.
typedef struct {
    PGconn *conn;
    char *dsn;                      // as given (may hold a password: never printed)
    char *display;                  // without any password, for messages
    bool read_only;
    int busy_timeout_ms;
    bool prepared [AL_PG_STMT_COUNT];
    PGresult *loan;                 // result behind the last get/find/claim (borrowed by the caller)
    bool in_transaction;            // between a successful begin and commit/rollback
    bool pipeline;                  // in libpq pipeline mode with `pending` unread results
    int pending;
    const char *pending_what [AL_PG_STMT_COUNT];
    char error [512];
    uint64_t fence_epoch;           // failover: the lease epoch each commit checks (0: none)
} al_pg_handle_t;

//  Parameters, all in binary: bigint as 8 big-endian bytes, bytea as raw bytes.
typedef struct {
    const char *values [AL_PG_MAX_PARAMS];
    int lengths [AL_PG_MAX_PARAMS];
    int formats [AL_PG_MAX_PARAMS];
    uint64_t integers [AL_PG_MAX_PARAMS];
    int count;
} al_pg_params_t;

void al_pg_param_int (al_pg_params_t *params, int64_t value);
void al_pg_param_bytes (al_pg_params_t *params, const void *data, size_t size);
void al_pg_param_text (al_pg_params_t *params, const char *text);
//  A bigint (or int) column of a binary result; a bytea column as a string (libpq ends
//  every value with a zero byte), "" when NULL.
int64_t al_pg_get_int (const PGresult *result, int row, int column);
const char *al_pg_get_text (const PGresult *result, int row, int column);

//  Runs a prepared statement behind any deferred writes; the result, or NULL with the
//  handle's error set and *status_p.
PGresult *al_pg_exec (al_pg_handle_t *self, al_pg_stmt_t id, const al_pg_params_t *params, const char *what,
                      al_store_status_t *status_p);
//  A write; AL_STORE_OK, or zero_status when it touched no row.
al_store_status_t al_pg_write (al_pg_handle_t *self, al_pg_stmt_t id, const al_pg_params_t *params,
                               const char *what, al_store_status_t zero_status);
//  A write nobody reads: pipelined inside a transaction, else run now.
al_store_status_t al_pg_write_deferred (al_pg_handle_t *self, al_pg_stmt_t id, const al_pg_params_t *params,
                                        const char *what);
//  Ends the caller's loan of the last get/find/claim result.
void al_pg_end_loan (al_pg_handle_t *self);

//  The side-table members of the ops table (al_store_pg_side.c).
al_store_status_t al_pg_delivery_add (void *handle, const char *role, uint64_t sequence);
al_store_status_t al_pg_delivery_ack (void *handle, const char *role, uint64_t sequence);
al_store_status_t al_pg_delivery_pending (void *handle, const char *role, uint64_t after_sequence,
                                          uint64_t *sequences, size_t max, size_t *count_p);
al_store_status_t al_pg_outbox_add (void *handle, uint64_t sequence, const char *channel, const uint8_t *payload,
                                    size_t payload_size, uint64_t *id_p);
al_store_status_t al_pg_outbox_claim (void *handle, uint64_t now_ms, uint64_t lease_ms, al_store_outbox_item_t *item);
al_store_status_t al_pg_outbox_mark_sent (void *handle, uint64_t id, uint64_t sent_ms);
al_store_status_t al_pg_outbox_retry_at (void *handle, uint64_t id, uint64_t next_attempt_ms, const char *error);
al_store_status_t al_pg_approval_consume (void *handle, const uint8_t *approval_id, size_t size, uint64_t sequence);
al_store_status_t al_pg_journal_add (void *handle, const al_store_journal_entry_t *entry);
al_store_status_t al_pg_journal_list (void *handle, const char *deployment_id, al_store_journal_fn *fn, void *arg);

//  The connection of a handle returned by al_store_pg_ops.open (borrowed), after its
//  deferred writes are read; NULL if one of them failed (the handle's error says why).
PGconn *al_store_pg_connection (void *handle);

#endif
