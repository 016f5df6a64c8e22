/*  fuzz_envelope.c: libFuzzer target for the envelope decoder (al_codec_unpack).

    Arbitrary bytes go through unpack with a size limit. Whatever unpack accepts must be
    stable: it packs again, the packed bytes unpack and validate again, and packing that
    gives the same bytes. Any inconsistency aborts, which libFuzzer reports as a crash.
    Seeds: tests/proto/corpus/ (written by `test_codec --write-corpus DIR`).
*/
#include "proto/al_codec.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_SIZE (64 * 1024)

static void
s_die (const char *what, const char *error)
{
    fprintf (stderr, "fuzz_envelope: %s: %s\n", what, error);
    abort ();
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char error [512];
    al_envelope_t *first = NULL;
    al_codec_status_t status = al_codec_unpack (data, size, S_MAX_SIZE, &first, error, sizeof error);
    if (status != AL_CODEC_OK) {
        if (first)
            s_die ("failed unpack left an envelope", error);
        if (error [0] == '\0')
            s_die ("failed unpack left no error text", al_codec_strerror (status));
        if (size > S_MAX_SIZE && status != AL_CODEC_ERR_TOO_LARGE)
            s_die ("oversized input not refused as too large", error);
        return 0;
    }
    uint8_t *packed = NULL, *repacked = NULL;
    size_t packed_size, repacked_size;
    if (al_codec_validate (first, error, sizeof error) != AL_CODEC_OK)
        s_die ("accepted envelope does not validate", error);
    if (al_codec_pack (first, &packed, &packed_size, error, sizeof error) != AL_CODEC_OK)
        s_die ("accepted envelope does not pack", error);
    al_envelope_t *second = NULL;
    if (al_codec_unpack (packed, packed_size, packed_size, &second, error, sizeof error) != AL_CODEC_OK)
        s_die ("re-packed envelope does not unpack", error);
    if (second->body_case != first->body_case || strcmp (second->message_id, first->message_id) != 0)
        s_die ("re-packed envelope differs", first->message_id);
    if (al_codec_pack (second, &repacked, &repacked_size, error, sizeof error) != AL_CODEC_OK)
        s_die ("second envelope does not pack", error);
    if (repacked_size != packed_size || memcmp (packed, repacked, packed_size) != 0)
        s_die ("packing is not stable", first->message_id);
    free (packed);
    free (repacked);
    al_codec_free (&first);
    al_codec_free (&second);
    return 0;
}
