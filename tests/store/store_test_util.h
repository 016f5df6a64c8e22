/*  store_test_util.h: helpers shared by the store tests (tests/store and the conformance
    suite over every backend, tests/store_pg): temporary directories, file copies,
    deterministic synthetic events of about 250 bytes of row, raw SQL on an SQLite file,
    and the side-table writes and journal collection of the side-table tests.
*/
#ifndef STORE_TEST_UTIL_H_INCLUDED
#define STORE_TEST_UTIL_H_INCLUDED

#include "store/al_store.h"

//  A synthetic event i (1-based) with its own buffers.
typedef struct {
    char sender [32];
    char message_id [32];
    char deployment_id [32];
    char reason [64];
    uint8_t envelope [160];
    al_store_event_t event;
} st_event_t;

void st_event_make (st_event_t *holder, uint64_t index);
//  mkdtemp under $TMPDIR (or /tmp); caller frees; st_dir_remove deletes it recursively.
char *st_dir_new (void);
void st_dir_remove (char **dir_p);
//  "dir/name", caller frees.
char *st_path (const char *dir, const char *name);
//  Copies a file; 0 on success.
int st_copy_file (const char *from, const char *to);
//  Opens path read-write (create); fails the test on error.
al_store_t *st_open (const char *path);
//  Appends events first..first+count-1 in transactions of batch events; fails on error.
void st_append_range (al_store_t *store, uint64_t first, uint64_t count, uint64_t batch);
//  Runs sql on the SQLite file at path behind the store's back; fails the test on error.
void st_sql_exec (const char *path, const char *sql);

//  Appends event index with a write to each side table in the open transaction: a
//  delivery to deploy-manager, an outbox item, the approval id when not NULL, and the
//  journal entry dep-1 backup/after/ok "12 MB". Fails the test on error; returns the
//  event's sequence.
uint64_t st_append_with_side_effects (al_store_t *store, uint64_t index, const uint8_t approval [16]);

//  Journal entries collected by st_journal_collect (an al_store_journal_list callback):
//  the first 8 as "step/phase/status/detail" with their sequences, and how many in all.
typedef struct {
    int count;
    char steps [8][64];
    uint64_t sequences [8];
} st_journal_seen_t;
int st_journal_collect (const al_store_journal_entry_t *entry, void *arg);

#endif
