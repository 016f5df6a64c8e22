/*  cli.h: the airlock command's subcommands.

    Each subcommand is `int al_cmd_NAME (int argc, char **argv)` where argv[0] is the
    subcommand's name. Exit codes follow one rule across the tool: 0 success, 1 the
    thing checked is bad (tampered log, invalid policy, denied), 2 usage or I/O error.
*/
#ifndef AL_CLI_H_INCLUDED
#define AL_CLI_H_INCLUDED

#include <stdbool.h>
#include <stdio.h>
#include <jansson.h>
#include "agents/al_request_view.h"

enum { AL_EXIT_OK = 0, AL_EXIT_BAD = 1, AL_EXIT_USAGE = 2 };

int al_cmd_audit (int argc, char **argv);
int al_cmd_store (int argc, char **argv);
int al_cmd_policy (int argc, char **argv);
int al_cmd_demo (int argc, char **argv);
int al_cmd_agent (int argc, char **argv);
int al_cmd_submit (int argc, char **argv);
int al_cmd_up (int argc, char **argv);
int al_cmd_rollback (int argc, char **argv);
int al_cmd_keygen (int argc, char **argv);
int al_cmd_identity (int argc, char **argv);
int al_cmd_init (int argc, char **argv);
int al_cmd_broker (int argc, char **argv);
int al_cmd_status (int argc, char **argv);
int al_cmd_watch (int argc, char **argv);
int al_cmd_approvals (int argc, char **argv);
int al_cmd_approve (int argc, char **argv);
int al_cmd_deny (int argc, char **argv);
int al_cmd_mcp (int argc, char **argv);
int al_cmd_runbook (int argc, char **argv);
int al_cmd_check (int argc, char **argv);
int al_cmd_costplan (int argc, char **argv);
int al_cmd_console (int argc, char **argv);

//  True when argv holds --help or -h (anywhere after the subcommand name).
bool al_cli_wants_help (int argc, char **argv);

//  ---- the state directory (cli_state.c) ---------------------------------------------

#define AL_CLI_DEFAULT_CONFIG "./airlock-state/airlock.yaml"

typedef struct _al_config_t al_config_t;

//  The airlock.yaml every command reads, by one rule: --config FILE, else --state DIR
//  (DIR/airlock.yaml, composed in buffer), else $AIRLOCK_CONFIG, else
//  ./airlock-state/airlock.yaml. Either option may be NULL. NULL if DIR is too long.
const char *al_cli_config_path (const char *config_option, const char *state_option, char *buffer, size_t size);

//  ---- options (cli_options.c) -----------------------------------------------------------

//  One option of a command. Exactly one of value, flag, take is set: the option takes
//  the next argument into *value, sets *flag, or hands the next argument to take (arg
//  as its second argument), which returns 0, or -1 after saying on stderr what is wrong.
typedef struct {
    const char *name;                               // "--listen"; NULL ends a table
    const char **value;
    bool *flag;
    int (*take) (const char *value, void *arg);
    void *arg;
} al_cli_option_t;

//  How a command reads its arguments: the common options it takes, its own table, and
//  slots for the arguments that are not options.
typedef struct {
    const char *command;            // "status", "audit verify": messages begin "airlock COMMAND: "
    void (*usage) (FILE *out);      // printed on stderr after an unexpected argument; NULL: not
    bool config;                    // takes --config FILE and --state DIR
    bool json;                      // takes --json
    const al_cli_option_t *options; // its own options, ended by a { NULL } row; NULL: none
    const char **arguments;         // slots, filled in order by arguments not starting with '-'
    size_t arguments_max;           // how many slots (0: the command takes none)
    //  Called for an argument nothing above took (an option of another form, such as
    //  --log-format=json): 1 taken (*index moved past its value), 0 not taken, -1 said
    //  on stderr what is wrong. NULL: none.
    int (*other) (int argc, char **argv, int *index, void *arg);
    void *other_arg;
} al_cli_parser_t;

//  What the common options said.
typedef struct {
    const char *config_option;      // --config FILE, or NULL
    const char *state_option;       // --state DIR, or NULL
    //  With parser->config: the airlock.yaml they name by the lookup of every command
    //  (al_cli_config_path), possibly in config_buffer. NULL otherwise.
    const char *config_path;
    char config_buffer [2048];
    bool json;                      // --json was given
    size_t arguments;               // how many argument slots were filled
} al_cli_common_t;

//  Reads argv[1..argc) (argv[0] is the command's name) the same way for every command:
//  the common options, then the command's table, then other, then the argument slots.
//  An option that wants a value and has none is "airlock COMMAND: --NAME needs a
//  value"; anything else no one takes is "airlock COMMAND: unexpected argument 'ARG'",
//  followed by a blank line and the usage; a --state DIR too long for a path is
//  "airlock COMMAND: --state: path too long". Fills common (zeroed first). 0, or -1
//  after the message on stderr.
int al_cli_parse (const al_cli_parser_t *parser, int argc, char **argv, al_cli_common_t *common);

//  A whole number option: a take of al_cli_option_t whose arg is an al_cli_number_t.
//  Stores the value in *out and, when text is not NULL, the argument as given in *text;
//  otherwise (not a number, or out of [min, max]) says "airlock COMMAND: NAME: 'VALUE'
//  is not a number of UNIT (MIN..MAX)" and returns -1.
typedef struct {
    const char *command;
    const char *name;               // "--timeout"
    const char *unit;               // "seconds"
    long min, max;
    int *out;
    const char **text;
} al_cli_number_t;
int al_cli_take_number (const char *value, void *number);

//  ---- airlock check (cmd_check.c) ------------------------------------------------------

//  Validate the state directory of the airlock.yaml at config_path before anything
//  starts: airlock.yaml, the policy directory (every error of the policy loader),
//  services.yaml, notifications.yaml (when present), the key files of the broker and
//  of every role `airlock init` makes (present, readable, and listed for their role in
//  the policy's identities.yaml). Appends each error, "file:line:column: what" where
//  the loaders say it, to errors (a JSON array of strings). Returns the number of
//  errors, or -1 when airlock.yaml itself cannot be read (also appended).
int al_cli_check_state (const char *config_path, json_t *errors);

#endif
