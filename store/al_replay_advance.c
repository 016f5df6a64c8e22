/*  al_replay_advance.c: advance a replay over the rows appended since it was made (see
    al_replay_advance.h). Rows go through the same replay_row as al_replay_new's, so an
    advanced replay equals one made from scratch over the same rows.
*/
#include "store/al_replay_advance.h"
#include "store/al_replay_int.h"

al_replay_t *
al_replay_new_empty (void)
{
    return (al_replay_t *) calloc (1, sizeof (al_replay_t));
}

uint64_t
al_replay_last_sequence (const al_replay_t *self)
{
    assert (self);
    return self->last_sequence;
}

int64_t
al_replay_advance (al_replay_t *self, al_store_t *store, al_replay_row_fn *row_fn, void *arg,
                   char *error, size_t error_size)
{
    assert (self && store);
    int64_t added = 0;
    al_store_status_t status = AL_STORE_ERR_IO;
    al_store_iter_t *iter = al_store_iter_new (store, self->last_sequence + 1);
    if (!iter)
        goto cleanup;
    al_store_event_t event;
    while ((status = al_store_iter_next (iter, &event)) == AL_STORE_OK) {
        //  The iterator starts at a sequence; a backend that returned an older row
        //  would fold it in twice.
        if (event.sequence <= self->last_sequence)
            continue;
        self->rows++;
        replay_row (self, &event);
        if (self->out_of_memory || (row_fn && !row_fn (&event, arg))) {
            status = AL_STORE_ERR_NOMEM;
            break;
        }
        added++;
    }
cleanup:
    al_store_iter_destroy (&iter);
    if (status == AL_STORE_END)
        return added;
    snprintf (error, error_size, "replay: %s", status == AL_STORE_ERR_NOMEM? "out of memory": al_store_error (store));
    return -1;
}
