/*  al_process_logs.h: the processes `airlock up` runs and the logs it writes for them
    (STATE_DIR/logs/NAME.log): their path, the one line that best says why a process
    died, and how often it was restarted. Read by `airlock status`, `airlock up` and the
    web console (al_console_data). Nothing here prints or exits.
*/
#ifndef AL_PROCESS_LOGS_H_INCLUDED
#define AL_PROCESS_LOGS_H_INCLUDED

#include "base/al_config.h"

#include <stdbool.h>
#include <stddef.h>

//  The five bus agents `airlock up` runs, in start order (their role and log name).
size_t al_process_logs_agent_count (void);
const char *al_process_logs_agent_at (size_t index);

//  STATE_DIR/logs/NAME.log, where `airlock up` logs the process NAME (caller frees).
char *al_process_logs_path (const al_config_t *config, const char *name);

//  The line of a log that best says why its process stopped: the last error line
//  ("E: ...", or one saying error, cannot, invalid, refused, failed, no such), else the
//  last line; never `airlock up`'s own start lines. Control characters become '?'.
//  False (line "") when the log is missing or empty.
bool al_process_logs_last_error (const char *path, char *line, size_t size);

//  K of the last "airlock up: NAME started (pid N, restart K)" line of LOG (cmd_up.c
//  writes it at every start), or -1 when there is none.
long al_process_logs_restarts (const char *log, const char *name);

#endif
