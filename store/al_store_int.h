/*  al_store_int.h: internals shared by the store's generic files (al_store.c, which
    defines them, and al_store_audit.c, which uses them). Never included outside store/.

    The store object wraps one backend handle and owns the chain head: the number of rows
    and the hash of the last one, including rows appended in the open transaction; the
    committed head is saved at begin and restored on rollback.
*/
#ifndef AL_STORE_INT_H_INCLUDED
#define AL_STORE_INT_H_INCLUDED

#include "store/al_store_ops.h"
#include <openssl/evp.h>         // al_store_audit.c's verifier hashes with EVP

struct _al_store_t {
    al_store_ops_t ops;             // a copy of the registered table, defaults filled in
    void *handle;
    char *path;
    uint64_t rows;                  // head, including the open transaction
    uint8_t head [AL_STORE_HASH_SIZE];
    uint64_t committed_rows;        // head at begin, restored on rollback
    uint8_t committed_head [AL_STORE_HASH_SIZE];
    bool in_transaction;
    uint64_t last_time_ms;          // time of the last event appended in this transaction
    uint8_t *row;                   // reusable row-bytes buffer
    size_t row_size;
    char error [512];
};

//  Sets self->error ("what: backend error") and returns status.
al_store_status_t al_store_fail (al_store_t *self, al_store_status_t status, const char *what);

#endif
