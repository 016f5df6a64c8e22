/*  cli_log.h: `--log-format json` for the long-running commands (broker, agent).

    czmq's zsys logging offers a stream, syslog and a ZMQ sender, but no hook to format
    a line. So the JSON format works one level below: file descriptor 2 is replaced by
    a pipe whose reader thread turns every line written to it (zsys's "X: YY-MM-DD
    HH:MM:SS text" lines and the commands' own fprintf(stderr) lines alike) into one
    JSON object per line on the real stderr, with the stable keys
      time (UTC, RFC 3339 with milliseconds), level, component, message.
    zsys's letter gives the level (E error, W warning, N notice, I info, D debug); a
    line without one is "error" if it says cannot/failed/error/refused/invalid, else
    "info". Entry points only: libraries keep logging through zsys as before.
*/
#ifndef CLI_LOG_H_INCLUDED
#define CLI_LOG_H_INCLUDED

#include <stddef.h>

//  Parse "--log-format FORMAT" at argv[*index] (text or json). Returns 1 and advances
//  *index when taken (*json set), 0 when argv[*index] is another option, -1 with a
//  message on stderr when the value is missing or unknown.
int al_cli_log_format_option (const char *command, int argc, char **argv, int *index, int *json);

//  Run a command's main (run) with "--log-format FORMAT" taken out of argv, stderr as
//  JSON lines for component (NULL: command) while it runs when FORMAT is json. Returns
//  run's exit code, or 2 (usage) for a bad --log-format.
int al_cli_log_run (const char *command, const char *component, int argc, char **argv,
                    int (*run) (int argc, char **argv));

//  Start writing stderr as JSON lines for component. Returns 0 or -1 (stderr unchanged).
int al_cli_log_json_start (const char *component);
//  Flush, give stderr back, and write what is still in the pipe. Safe when not started.
void al_cli_log_json_stop (void);

//  One line (without its newline) as the JSON object described above, with time_text
//  as "time". Caller frees; NULL when out of memory. Exposed for tests.
char *al_cli_log_json_line (const char *component, const char *line, size_t length, const char *time_text);

#endif
