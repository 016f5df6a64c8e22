/*  fuzz_policy.c: libFuzzer target for the policy loader.

    The first input byte picks one of the seven policy files; the rest of the input
    becomes that file's content, written over a scratch copy of policies/default (found
    through AIRLOCK_SOURCE_DIR, or the source path compiled in). The policy is loaded,
    its errors listed and everything destroyed: a crash, a leak or a sanitizer report is
    a finding. A successful load is queried once to walk the structures it built.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "policies/al_policy.h"

static char s_dir [64];           // the scratch policy directory
static char s_source [4096];      // the default policy it is copied from

static int
s_copy (const char *from_dir, const char *to_dir, const char *name)
{
    char path [4096];
    snprintf (path, sizeof path, "%s/%s", from_dir, name);
    FILE *in = fopen (path, "rb");
    if (!in)
        return -1;
    snprintf (path, sizeof path, "%s/%s", to_dir, name);
    FILE *out = fopen (path, "wb");
    if (!out) {
        fclose (in);
        return -1;
    }
    char buffer [8192];
    size_t size;
    while ((size = fread (buffer, 1, sizeof buffer, in)) > 0)
        fwrite (buffer, 1, size, out);
    fclose (in);
    fclose (out);
    return 0;
}

static void
s_cleanup (void)
{
    for (size_t i = 0; i < AL_POLICY_FILE_COUNT; i++) {
        char path [4096];
        snprintf (path, sizeof path, "%s/%s", s_dir, al_policy_file_name (i));
        unlink (path);
    }
    rmdir (s_dir);
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    const char *root = getenv ("AIRLOCK_SOURCE_DIR");
    if (root)
        snprintf (s_source, sizeof s_source, "%s/policies/default", root);
    else
        snprintf (s_source, sizeof s_source, "%s", AIRLOCK_DEFAULT_POLICY_DIR);
    strcpy (s_dir, "/tmp/airlock-fuzz-policy-XXXXXX");
    if (!mkdtemp (s_dir))
        abort ();
    for (size_t i = 0; i < AL_POLICY_FILE_COUNT; i++)
        if (s_copy (s_source, s_dir, al_policy_file_name (i)) != 0)
            abort ();
    atexit (s_cleanup);
    return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t file = data [0] % AL_POLICY_FILE_COUNT;
    char path [4096];
    snprintf (path, sizeof path, "%s/%s", s_dir, al_policy_file_name (file));
    FILE *out = fopen (path, "wb");
    if (!out)
        abort ();
    fwrite (data + 1, 1, size - 1, out);
    fclose (out);

    al_policy_errors_t *errors = NULL;
    al_policy_t *policy = al_policy_load (s_dir, &errors);
    size_t total = 0;
    for (size_t i = 0; i < al_policy_errors_count (errors); i++)
        total += strlen (al_policy_errors_at (errors, i));
    if (policy) {
        for (size_t i = 0; i < al_policy_role_count (policy); i++)
            for (size_t t = 0; t < al_msg_type_count (); t++)
                total += al_policy_may_send (policy, al_policy_role_at (policy, i), al_msg_type_at (t),
                                             AIRLOCK__ENVIRONMENT__ENV_PRODUCTION, NULL, 0);
        total += (size_t) al_policy_freeze_check (policy, AIRLOCK__ENVIRONMENT__ENV_PRODUCTION,
                                                  (time_t) 1790000000, NULL, 0);
    }
    al_policy_destroy (&policy);
    al_policy_errors_destroy (&errors);
    //  Restore the default file so each input tests one file against valid others.
    if (s_copy (s_source, s_dir, al_policy_file_name (file)) != 0)
        abort ();
    return total == (size_t) -1;
}
