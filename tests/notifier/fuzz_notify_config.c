/*  fuzz_notify_config.c: libFuzzer target for the notifications.yaml loader.

    Each input is written to a scratch file and loaded; a loaded configuration is walked
    through every getter and its filter. A crash, a leak or a sanitizer report is a
    finding. The seed corpus is tests/notifier/corpus/fuzz_notify_config.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "agents/al_notify_config.h"

static char s_dir [64];           // the scratch directory
static char s_path [128];         // its notifications.yaml

static void
s_cleanup (void)
{
    unlink (s_path);
    rmdir (s_dir);
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    strcpy (s_dir, "/tmp/airlock-fuzz-notify-XXXXXX");
    if (!mkdtemp (s_dir))
        abort ();
    snprintf (s_path, sizeof s_path, "%s/notifications.yaml", s_dir);
    atexit (s_cleanup);
    return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    FILE *out = fopen (s_path, "wb");
    if (!out)
        abort ();
    fwrite (data, 1, size, out);
    fclose (out);

    char error [4096];
    al_notify_config_t *config = al_notify_config_load (s_path, error, sizeof error);
    size_t total = config? 0: strlen (error);
    for (size_t i = 0; config && i < al_notify_config_count (config); i++) {
        const al_notify_endpoint_t *endpoint = al_notify_config_at (config, i);
        if (al_notify_config_find (config, endpoint->name) != endpoint || !endpoint->url)
            abort ();
        if (!endpoint->secret_env && !endpoint->secret_file && endpoint->kind == AL_NOTIFY_WEBHOOK)
            abort ();               // a webhook always has a secret
        total += strlen (endpoint->url) + strlen (al_notify_kind_name (endpoint->kind));
        for (unsigned t = 0; t < AL_NOTIFY_TEMPLATE_COUNT; t++)
            total += al_notify_endpoint_wants (endpoint, al_notify_template_name (t), (int) (t % 4));
    }
    if (config && al_notify_config_retry (config)->max_ms < al_notify_config_retry (config)->initial_ms)
        abort ();
    al_notify_config_destroy (&config);
    return total == (size_t) -1;
}
