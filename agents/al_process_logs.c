/*  al_process_logs.c: the logs `airlock up` writes for its processes (see al_process_logs.h).
*/
#include "agents/al_process_logs.h"
#include "base/al_paths.h"

#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

static const char *s_agents [] = { "orchestrator", "qa", "deploy-manager", "monitor", "notifier" };

size_t
al_process_logs_agent_count (void)
{
    return sizeof s_agents / sizeof s_agents [0];
}

const char *
al_process_logs_agent_at (size_t index)
{
    assert (index < al_process_logs_agent_count ());
    return s_agents [index];
}

char *
al_process_logs_path (const al_config_t *config, const char *name)
{
    char path [4096], error [256];
    if (al_paths_log (al_config_state_dir (config), name, path, sizeof path, error, sizeof error) != 0)
        return NULL;
    return strdup (path);
}

//  Does line (length bytes) say something went wrong? czmq's error lines start "E: ", the
//  CLI's own say "error" or name what cannot be done.
static bool
s_error_line (const char *line, size_t length)
{
    if (length >= 3 && strncmp (line, "E: ", 3) == 0)
        return true;
    static const char *words [] = { "error", "cannot", "invalid", "refused", "failed", "no such" };
    char lower [512];
    size_t size = length < sizeof lower - 1? length: sizeof lower - 1;
    for (size_t i = 0; i < size; i++)
        lower [i] = (char) tolower ((unsigned char) line [i]);
    lower [size] = 0;
    for (size_t i = 0; i < sizeof words / sizeof words [0]; i++)
        if (strstr (lower, words [i]))
            return true;
    return false;
}

bool
al_process_logs_last_error (const char *path, char *line, size_t size)
{
    assert (line && size > 0);
    line [0] = 0;
    FILE *file = fopen (path, "r");
    if (!file)
        return false;
    //  Only the tail matters: a process that keeps dying says why at the end.
    if (fseek (file, 0, SEEK_END) == 0) {
        long end = ftell (file);
        if (end > 65536)
            fseek (file, end - 65536, SEEK_SET);
        else
            rewind (file);
    }
    char *text = NULL;
    size_t text_size = 0;
    ssize_t length;
    char last_error [1024] = "", last [1024] = "";
    while ((length = getline (&text, &text_size, file)) >= 0) {
        while (length > 0 && (text [length - 1] == '\n' || text [length - 1] == '\r'))
            text [--length] = 0;
        if (length == 0)
            continue;
        //  up's own "NAME started" lines say nothing about why it stopped.
        if (strncmp (text, "airlock up: ", 12) == 0)
            continue;
        snprintf (last, sizeof last, "%s", text);
        if (s_error_line (text, (size_t) length))
            snprintf (last_error, sizeof last_error, "%s", text);
    }
    free (text);
    fclose (file);
    const char *chosen = *last_error? last_error: last;
    //  A log line is the process's text: keep control characters off the terminal.
    size_t out = 0;
    for (const char *at = chosen; *at && out + 1 < size; at++)
        line [out++] = iscntrl ((unsigned char) *at)? '?': *at;
    line [out] = 0;
    return out > 0;
}

long
al_process_logs_restarts (const char *log, const char *name)
{
    FILE *file = fopen (log, "r");
    if (!file)
        return -1;
    char prefix [128], line [1024];
    snprintf (prefix, sizeof prefix, "airlock up: %s started (pid ", name);
    long restarts = -1;
    while (fgets (line, sizeof line, file))
        if (strncmp (line, prefix, strlen (prefix)) == 0) {
            const char *at = strstr (line, ", restart ");
            if (at)
                restarts = strtol (at + 10, NULL, 10);
        }
    fclose (file);
    return restarts;
}
