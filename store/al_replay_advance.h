/*  al_replay_advance.h: a replay kept up to date with a growing audit log.

    al_replay_new reads the whole log; a reader that answers again and again (the web
    console) keeps one replay and advances it over the rows appended since, instead of
    replaying every row per answer. The result is the same as a replay of the whole log
    made now: rows are folded in sequence order whether they come in one pass or many.

    The caller decides when the log it advanced over is no longer the one it replayed
    (a replaced or truncated database: the row at al_replay_last_sequence no longer has
    the hash the caller saw) and then starts over with a new replay.

    Threading: advancing writes the replay; the caller keeps readers out meanwhile (an
    al_replay_t is otherwise read-only, al_replay.h).
*/
#ifndef AL_REPLAY_ADVANCE_H_INCLUDED
#define AL_REPLAY_ADVANCE_H_INCLUDED

#include "store/al_replay.h"

#ifdef __cplusplus
extern "C" {
#endif

//  A replay of no rows yet, to be advanced. NULL if memory runs out.
al_replay_t *al_replay_new_empty (void);

//  The sequence of the last row replayed (0: none).
uint64_t al_replay_last_sequence (const al_replay_t *self);

//  Called with every row al_replay_advance folds in, after the replay took it (event
//  is borrowed for the call). False: stop (the caller ran out of memory).
typedef bool (al_replay_row_fn) (const al_store_event_t *event, void *arg);

//  Fold in store's rows after al_replay_last_sequence, in order, calling row_fn (may be
//  NULL) for each. Only for a replay of the whole log (al_replay_new_empty, or
//  al_replay_new with as_of_ms 0). Returns the number of rows added, or -1 with "what is
//  wrong" in error (the store failed, or memory ran out: the rows before the failure
//  stay folded in, al_replay_last_sequence says up to where).
int64_t al_replay_advance (al_replay_t *self, al_store_t *store, al_replay_row_fn *row_fn, void *arg,
                           char *error, size_t error_size);

#ifdef __cplusplus
}
#endif

#endif
