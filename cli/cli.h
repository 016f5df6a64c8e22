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

//  If argv[*index] is --config FILE or --state DIR, stores its value, moves *index past
//  it and returns 1; returns 0 for any other argument, -1 (printed) when the value is
//  missing.
int al_cli_config_option (const char *command, int argc, char **argv, int *index,
                          const char **config_option, const char **state_option);

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
