/*  store_test_util.h: helpers shared by the store tests: temporary directories, file
    copies and deterministic synthetic events of about 250 bytes of row.
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

#endif
