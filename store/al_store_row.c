/*  al_store_row.c: the canonical encoding of an audit row and the chain hash.

    The bytes every backend, the append path (al_store.c) and the verifier
    (al_store_audit.c) agree on, as al_store.h specifies them: both sides depend on this
    file and it on neither, so the store's generic layer and its audit side do not
    call each other. Pure functions; thread-safe.

    The chain hash uses libcrypto's SHA-256 primitive directly (SHA256_Init/Update/
    Final, kept by OpenSSL 3 though marked deprecated), not EVP: EVP fetches the
    algorithm from OpenSSL 3's provider machinery, whose first use initialises the
    default provider and its tables, about 2 MB of resident memory in every process
    that appends (the broker, issue 19; the verifier keeps EVP), for the same SHA-NI code
    path per row (0.9 us for a 300-byte row either way; libsodium's portable SHA-256
    takes 4 us).
*/
//  The primitive API is all we need (see above); OpenSSL 3 marks it deprecated.
#define OPENSSL_SUPPRESS_DEPRECATED
#include "store/al_store.h"
#include <assert.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
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
    SHA256_CTX ctx;
    //  The primitive cannot fail on valid arguments (no allocation); should it report
    //  a failure anyway, the hash is all zero: al_store_append refuses it, and such a
    //  row never verifies.
    int ok = SHA256_Init (&ctx) && SHA256_Update (&ctx, prev, AL_STORE_HASH_SIZE)
          && SHA256_Update (&ctx, row, row_size) && SHA256_Final (hash, &ctx);
    if (!ok)
        memset (hash, 0, AL_STORE_HASH_SIZE);
    OPENSSL_cleanse (&ctx, sizeof ctx);
}
