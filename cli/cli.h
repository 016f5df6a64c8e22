/*  cli.h: the airlock command's subcommands.

    Each subcommand is `int al_cmd_NAME (int argc, char **argv)` where argv[0] is the
    subcommand's name. Exit codes follow one rule across the tool: 0 success, 1 the
    thing checked is bad (tampered log, invalid policy, denied), 2 usage or I/O error.
*/
#ifndef AL_CLI_H_INCLUDED
#define AL_CLI_H_INCLUDED

#include <stdbool.h>
#include <stdio.h>

enum { AL_EXIT_OK = 0, AL_EXIT_BAD = 1, AL_EXIT_USAGE = 2 };

int al_cmd_audit (int argc, char **argv);
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
int al_cmd_costplan (int argc, char **argv);

//  True when argv holds --help or -h (anywhere after the subcommand name).
bool al_cli_wants_help (int argc, char **argv);

#endif
