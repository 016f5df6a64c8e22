/*  al_store_row.c: the canonical encoding of an audit row and the chain hash.

    The bytes every backend, the append path (al_store.c) and the verifier
    (al_store_audit.c) agree on, as al_store.h specifies them: both sides depend on this
    file and it on neither, so the store's generic layer and its audit side do not
    call each other. Pure functions; thread-safe.
*/
#include "store/al_store.h"
#include <assert.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <string.h>

static uint8_t *
s_put_u64 (uint8_t *out, uint64_t value)
{
    for (int i = 7; i >= 0; i--) {
        out [i] = (uint8_t) value;
        value >>= 8;
    }
    return out + 8;
}

static uint8_t *
s_put_bytes (uint8_t *out, const void *data, size_t size)
{
    assert (size <= UINT32_MAX);
    out [0] = (uint8_t) (size >> 24);
    out [1] = (uint8_t) (size >> 16);
    out [2] = (uint8_t) (size >> 8);
    out [3] = (uint8_t) size;
    if (size)
        memcpy (out + 4, data, size);
    return out + 4 + size;
}

size_t
al_store_row_encode (const al_store_event_t *event, uint8_t *buffer, size_t size)
{
    assert (event);
    const char *strings [] = {
        event->sender, event->role, event->type, event->message_id,
        event->deployment_id, event->environment
    };
    size_t lengths [6];
    size_t needed = 1 + 8 + 8 + 1 + 4 + 4 + event->envelope_size;
    for (int i = 0; i < 6; i++) {
        lengths [i] = strings [i]? strlen (strings [i]): 0;
        needed += 4 + lengths [i];
    }
    size_t reason_length = event->reason? strlen (event->reason): 0;
    needed += reason_length;
    if (needed > size)
        return needed;
    uint8_t *out = buffer;
    *out++ = AL_STORE_ROW_FORMAT;
    out = s_put_u64 (out, event->sequence);
    out = s_put_u64 (out, event->time_ms);
    for (int i = 0; i < 6; i++)
        out = s_put_bytes (out, strings [i], lengths [i]);
    *out++ = (uint8_t) event->decision;
    out = s_put_bytes (out, event->reason, reason_length);
    out = s_put_bytes (out, event->envelope, event->envelope_size);
    assert ((size_t) (out - buffer) == needed);
    return needed;
}

void
al_store_chain_hash (const uint8_t prev [AL_STORE_HASH_SIZE], const uint8_t *row, size_t row_size,
                     uint8_t hash [AL_STORE_HASH_SIZE])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
    unsigned int length = 0;
    int ok = ctx && EVP_DigestInit_ex (ctx, EVP_sha256 (), NULL)
          && EVP_DigestUpdate (ctx, prev, AL_STORE_HASH_SIZE)
          && EVP_DigestUpdate (ctx, row, row_size)
          && EVP_DigestFinal_ex (ctx, hash, &length);
    //  libcrypto fails here only without memory; an all-zero hash then never verifies.
    if (!ok)
        memset (hash, 0, AL_STORE_HASH_SIZE);
    EVP_MD_CTX_free (ctx);
}
