/*  main.c: the airlock command's entry point; dispatches to a subcommand.

    Kept short on purpose: all work is in libairlock, reached through the module
    headers; the subcommands in cmd_*.c parse arguments and print.
*/
#include "cli/cli.h"
#include <czmq.h>
#include <string.h>

typedef struct {
    const char *name;
    int (*run) (int argc, char **argv);
    const char *summary;
} s_command_t;

static const s_command_t s_commands [] = {
    { "init",   al_cmd_init,   "create a state directory: keys, identities, airlock.yaml" },
    { "check",  al_cmd_check,  "validate a state directory (airlock.yaml, policy, services, notifications, keys)" },
    { "broker", al_cmd_broker, "run the broker (authentication, policy, audit, routing)" },
    { "status", al_cmd_status, "show connected agents, roles and last heartbeat" },
    { "up",     al_cmd_up,     "run the broker and the five agents, supervised, until Ctrl-C" },
    { "submit", al_cmd_submit, "hand a release candidate to the pipeline (staging, QA, approval)" },
    { "rollback", al_cmd_rollback, "request a production rollback to the previous release" },
    { "watch",  al_cmd_watch,  "follow a deployment's progress or a service's soak signals live" },
    { "runbook", al_cmd_runbook, "write a service's runbook.md from the live configuration" },
    { "costplan", al_cmd_costplan, "write a service's cost-plan.md (estimates, budget, guardrails)" },
    { "audit",  al_cmd_audit,  "verify, replay, history and export the audit log (read-only)" },
    { "store",  al_cmd_store,  "copy a SQLite audit log into PostgreSQL and compare the two" },
    { "policy", al_cmd_policy, "check, show and explain a policy directory" },
    { "approvals", al_cmd_approvals, "list production requests awaiting human approval" },
    { "approve", al_cmd_approve, "review a production request and sign your approval" },
    { "deny",   al_cmd_deny,   "sign a denial of a production request, with a reason" },
    { "keygen", al_cmd_keygen, "make an approver's Ed25519 key pair" },
    { "identity", al_cmd_identity, "add a client identity (its own CURVE key pair, role and person)" },
    { "mcp",    al_cmd_mcp,    "serve the Model Context Protocol on stdio for AI agents (as ci, never approves)" },
    { "agent",  al_cmd_agent,  "run one bus agent (orchestrator, qa, deploy-manager, monitor, notifier) in the foreground" },
    { "console", al_cmd_console, "serve the read-only web console (agents, releases, approvals, soak, audit)" },
    { "demo",   al_cmd_demo,   "run the end-to-end demonstration on the embedded default" },
};

static void
s_usage (FILE *out)
{
    fprintf (out, "usage: airlock COMMAND [ARGS...]\n\n"
                  "airlock lets AI agents carry code to production while only a signed\n"
                  "human approval opens the door to production.\n\ncommands:\n");
    for (size_t i = 0; i < sizeof s_commands / sizeof s_commands [0]; i++)
        fprintf (out, "  %-10s %s\n", s_commands [i].name, s_commands [i].summary);
    fprintf (out, "\nRun 'airlock COMMAND --help' for a command's options; 'airlock -V' prints the version.\n"
                  "Every command finds airlock.yaml the same way: --config FILE, else --state DIR,\n"
                  "else $AIRLOCK_CONFIG, else " AL_CLI_DEFAULT_CONFIG ".\n"
                  "Exit codes: 0 ok, 1 check failed (tampered, invalid, denied), 2 usage or I/O error.\n");
}

bool
al_cli_wants_help (int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp (argv [i], "--") == 0)
            break;
        if (strcmp (argv [i], "--help") == 0 || strcmp (argv [i], "-h") == 0)
            return true;
    }
    return false;
}

int
main (int argc, char **argv)
{
    //  czmq logs to stdout unless told otherwise: a client's warning (moving to another
    //  broker after a failover) would land inside a command's output (`status --json`).
    zsys_set_logstream (stderr);
    if (argc < 2) {
        s_usage (stderr);
        return AL_EXIT_USAGE;
    }
    if (strcmp (argv [1], "--help") == 0 || strcmp (argv [1], "-h") == 0
    ||  strcmp (argv [1], "help") == 0) {
        s_usage (stdout);
        return AL_EXIT_OK;
    }
    if (strcmp (argv [1], "--version") == 0 || strcmp (argv [1], "-V") == 0
    ||  strcmp (argv [1], "version") == 0) {
        printf ("airlock %s\n", AL_CLI_VERSION);
        return AL_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof s_commands / sizeof s_commands [0]; i++)
        if (strcmp (argv [1], s_commands [i].name) == 0)
            return s_commands [i].run (argc - 1, argv + 1);
    fprintf (stderr, "airlock: unknown command '%s'\n\n", argv [1]);
    s_usage (stderr);
    return AL_EXIT_USAGE;
}
