/*  al_id.c: release, deployment and request ids (see al_id.h).
*/
#include "base/al_id.h"

#include <assert.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static const char *const s_suffix [] = { [AL_ID_PART_STAGING] = "-stg", [AL_ID_PART_PRODUCTION] = "-prod" };

static bool
s_id_char (char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
        || c == '-' || c == '_' || c == '.';
}

static bool
s_valid (const char *id, size_t max)
{
    size_t length = id? strlen (id): 0;
    if (length == 0 || length > max || id [0] == '.')
        return false;
    for (const char *c = id; *c; c++)
        if (!s_id_char (*c))
            return false;
    return true;
}

bool
al_id_release_valid (const char *id)
{
    return s_valid (id, AL_ID_RELEASE_MAX);
}

bool
al_id_valid (const char *id)
{
    return s_valid (id, AL_ID_MAX);
}

void
al_id_release_make (const char *prefix, const char *service, const char *version, char *id, size_t size)
{
    assert (prefix && strlen (prefix) >= 1 && strlen (prefix) <= 8 && strspn (prefix, "abcdefghijklmnopqrstuvwxyz") == strlen (prefix));
    assert (id && size > AL_ID_RELEASE_MAX);
    uint8_t random [3];
    randombytes_buf (random, sizeof random);
    snprintf (id, size, "%s-%.16s-%.16s-%02x%02x%02x", prefix, service? service: "", version? version: "",
              random [0], random [1], random [2]);
    for (char *c = id; *c; c++)
        if (!s_id_char (*c))
            *c = '_';
    assert (al_id_release_valid (id));
}

bool
al_id_deployment (const char *release, al_id_part_t part, char *id, size_t size)
{
    assert (part == AL_ID_PART_STAGING || part == AL_ID_PART_PRODUCTION);
    assert (size > AL_ID_MAX);
    if (!al_id_release_valid (release)) {
        *id = 0;
        return false;
    }
    snprintf (id, size, "%s%s", release, s_suffix [part]);
    return true;
}

al_id_part_t
al_id_release_of (const char *deployment_id, char *release, size_t size)
{
    assert (size > AL_ID_RELEASE_MAX);
    *release = 0;
    size_t length = deployment_id? strlen (deployment_id): 0;
    for (int part = AL_ID_PART_STAGING; part <= AL_ID_PART_PRODUCTION; part++) {
        size_t suffix = strlen (s_suffix [part]);
        if (length <= suffix || length - suffix > AL_ID_RELEASE_MAX
        ||  strcmp (deployment_id + length - suffix, s_suffix [part]) != 0)
            continue;
        snprintf (release, size, "%.*s", (int) (length - suffix), deployment_id);
        if (al_id_release_valid (release))
            return (al_id_part_t) part;
        *release = 0;
        return AL_ID_PART_NONE;
    }
    return AL_ID_PART_NONE;
}
