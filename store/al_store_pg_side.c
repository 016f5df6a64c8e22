/*  al_store_pg_side.c: the PostgreSQL backend's side tables: delivery queues, the
    notification outbox, consumed approvals and the deployment journal (ops members of
    al_store_pg_ops; contracts in al_store.h).

    Adds inside a transaction are pipelined with the event they belong to (deliveries,
    journal) or read back at once (an outbox id, whether an approval was new). The outbox
    claim picks and leases its item in one UPDATE ... FOR UPDATE SKIP LOCKED, so two
    claimers never take the same item. Outside a transaction each call is one statement,
    its own durable transaction.

    Threading: a handle belongs to one thread.
*/
#include "store/al_store_pg_int.h"
#include <string.h>

al_store_status_t
al_pg_delivery_add (void *handle, const char *role, uint64_t sequence)
{
    al_pg_params_t params = { .count = 0 };
    al_pg_param_text (&params, role);
    al_pg_param_int (&params, (int64_t) sequence);
    return al_pg_write_deferred ((al_pg_handle_t *) handle, AL_PG_DELIVERY_ADD, &params, "adding delivery");
}

al_store_status_t
al_pg_delivery_ack (void *handle, const char *role, uint64_t sequence)
{
    al_pg_params_t params = { .count = 0 };
    al_pg_param_text (&params, role);
    al_pg_param_int (&params, (int64_t) sequence);
    return al_pg_write ((al_pg_handle_t *) handle, AL_PG_DELIVERY_ACK, &params, "acknowledging delivery",
                    AL_STORE_NOT_FOUND);
}

al_store_status_t
al_pg_delivery_pending (void *handle, const char *role, uint64_t after_sequence,
                    uint64_t *sequences, size_t max, size_t *count_p)
{
    al_pg_handle_t *self = (al_pg_handle_t *) handle;
    *count_p = 0;
    al_pg_params_t params = { .count = 0 };
    al_pg_param_text (&params, role);
    al_pg_param_int (&params, (int64_t) after_sequence);
    al_pg_param_int (&params, (int64_t) max);
    al_store_status_t status;
    PGresult *result = al_pg_exec (self, AL_PG_DELIVERY_PENDING, &params, "listing deliveries", &status);
    if (!result)
        return status;
    int rows = PQntuples (result);
    for (int i = 0; i < rows && *count_p < max; i++)
        sequences [(*count_p)++] = (uint64_t) al_pg_get_int (result, i, 0);
    PQclear (result);
    return AL_STORE_OK;
}

al_store_status_t
al_pg_outbox_add (void *handle, uint64_t sequence, const char *channel, const uint8_t *payload,
              size_t payload_size, uint64_t *id_p)
{
    al_pg_handle_t *self = (al_pg_handle_t *) handle;
    al_pg_params_t params = { .count = 0 };
    al_pg_param_int (&params, (int64_t) sequence);
    al_pg_param_text (&params, channel);
    al_pg_param_bytes (&params, payload, payload_size);
    al_store_status_t status;
    PGresult *result = al_pg_exec (self, AL_PG_OUTBOX_ADD, &params, "adding outbox item", &status);
    if (!result)
        return status;
    if (id_p)
        *id_p = PQntuples (result) > 0? (uint64_t) al_pg_get_int (result, 0, 0): 0;
    PQclear (result);
    return AL_STORE_OK;
}

al_store_status_t
al_pg_outbox_claim (void *handle, uint64_t now_ms, uint64_t lease_ms, al_store_outbox_item_t *item)
{
    al_pg_handle_t *self = (al_pg_handle_t *) handle;
    al_pg_end_loan (self);
    al_pg_params_t params = { .count = 0 };
    al_pg_param_int (&params, (int64_t) now_ms);
    al_pg_param_int (&params, (int64_t) (now_ms + lease_ms));
    al_store_status_t status;
    PGresult *result = al_pg_exec (self, AL_PG_OUTBOX_CLAIM, &params, "claiming outbox item", &status);
    if (!result)
        return status;
    if (PQntuples (result) == 0) {
        PQclear (result);
        return AL_STORE_NOT_FOUND;
    }
    item->id = (uint64_t) al_pg_get_int (result, 0, 0);
    item->sequence = (uint64_t) al_pg_get_int (result, 0, 1);
    item->channel = al_pg_get_text (result, 0, 2);
    item->payload = (const uint8_t *) al_pg_get_text (result, 0, 3);
    item->payload_size = (size_t) PQgetlength (result, 0, 3);
    item->attempts = (uint32_t) al_pg_get_int (result, 0, 4);
    item->last_error = al_pg_get_text (result, 0, 5);
    self->loan = result;
    return AL_STORE_OK;
}

al_store_status_t
al_pg_outbox_mark_sent (void *handle, uint64_t id, uint64_t sent_ms)
{
    al_pg_params_t params = { .count = 0 };
    al_pg_param_int (&params, (int64_t) id);
    al_pg_param_int (&params, (int64_t) sent_ms);
    return al_pg_write ((al_pg_handle_t *) handle, AL_PG_OUTBOX_SENT, &params, "marking outbox item sent",
                    AL_STORE_NOT_FOUND);
}

al_store_status_t
al_pg_outbox_retry_at (void *handle, uint64_t id, uint64_t next_attempt_ms, const char *error)
{
    al_pg_params_t params = { .count = 0 };
    al_pg_param_int (&params, (int64_t) id);
    al_pg_param_int (&params, (int64_t) next_attempt_ms);
    al_pg_param_text (&params, error);
    return al_pg_write ((al_pg_handle_t *) handle, AL_PG_OUTBOX_RETRY, &params, "rescheduling outbox item",
                    AL_STORE_NOT_FOUND);
}

al_store_status_t
al_pg_approval_consume (void *handle, const uint8_t *approval_id, size_t size, uint64_t sequence)
{
    al_pg_params_t params = { .count = 0 };
    al_pg_param_bytes (&params, approval_id, size);
    al_pg_param_int (&params, (int64_t) sequence);
    return al_pg_write ((al_pg_handle_t *) handle, AL_PG_APPROVAL, &params, "consuming approval", AL_STORE_ALREADY_USED);
}

al_store_status_t
al_pg_journal_add (void *handle, const al_store_journal_entry_t *entry)
{
    al_pg_params_t params = { .count = 0 };
    al_pg_param_text (&params, entry->deployment_id);
    al_pg_param_int (&params, (int64_t) entry->sequence);
    al_pg_param_int (&params, (int64_t) entry->time_ms);
    al_pg_param_text (&params, entry->step);
    al_pg_param_text (&params, entry->phase);
    al_pg_param_text (&params, entry->status);
    al_pg_param_text (&params, entry->detail);
    return al_pg_write_deferred ((al_pg_handle_t *) handle, AL_PG_JOURNAL_ADD, &params, "adding journal entry");
}

al_store_status_t
al_pg_journal_list (void *handle, const char *deployment_id, al_store_journal_fn *fn, void *arg)
{
    al_pg_handle_t *self = (al_pg_handle_t *) handle;
    al_pg_params_t params = { .count = 0 };
    al_pg_param_text (&params, deployment_id);
    al_store_status_t status;
    PGresult *result = al_pg_exec (self, AL_PG_JOURNAL_LIST, &params, "listing journal", &status);
    if (!result)
        return status;
    int rows = PQntuples (result);
    for (int i = 0; i < rows; i++) {
        al_store_journal_entry_t entry = {
            .sequence = (uint64_t) al_pg_get_int (result, i, 0),
            .time_ms = (uint64_t) al_pg_get_int (result, i, 1),
            .deployment_id = al_pg_get_text (result, i, 2),
            .step = al_pg_get_text (result, i, 3),
            .phase = al_pg_get_text (result, i, 4),
            .status = al_pg_get_text (result, i, 5),
            .detail = al_pg_get_text (result, i, 6),
        };
        if (fn (&entry, arg) != 0)
            break;
    }
    PQclear (result);
    return AL_STORE_OK;
}

