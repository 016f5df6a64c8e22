/*  al_replay_int.h: what the files of the replay share (never installed).

    al_replay.c derives deployments from the audit rows; al_replay_json.c renders them
    (JSON, history) and parses times; al_replay_live.c compares them with the live
    state the orchestrator and deploy-manager keep on disk, read by them through the
    caller's al_replay_live_source_t. Helpers shared across
    them carry the replay_ prefix (internal, unlike the public al_replay_ ones).
*/
#ifndef AL_REPLAY_INT_H_INCLUDED
#define AL_REPLAY_INT_H_INCLUDED

#include "store/al_replay.h"
#include "proto/al_codec.h"
#include "proto/al_signature.h"
#include <assert.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    al_replay_deployment_t view;    // what callers see; pointers into the pool and arrays below
    al_replay_entry_t *entries;
    size_t entry_capacity;
    al_replay_approval_t *approvals;
    size_t approval_capacity;
    bool accepted_request;          // an accepted request (or grant) was seen
} s_deployment_t;

struct _al_replay_t {
    s_deployment_t **deployments;
    size_t count;
    size_t capacity;
    size_t *index;                  // open addressing: slot holds deployment index + 1, 0 = empty
    size_t index_size;              // power of two
    char **pool;
    size_t pool_count;
    size_t pool_capacity;
    uint64_t rows;
    uint64_t last_sequence;         // the last row replay_row saw (al_replay_advance goes on after it)
    bool out_of_memory;
};


//  al_replay.c
bool replay_terminal (al_replay_state_t state);
//  Fold one row into the replay (sets out_of_memory when it fails; last_sequence).
void replay_row (al_replay_t *self, const al_store_event_t *event);

#endif
