/*  proc_harness.h: airlock as separate processes for integration tests and benches.

    The one home of what test_pipeline, test_realservice, test_netns, test_netns_pg and
    release_cluster (test_release_failover, bench_failover) each used to spell for
    themselves: a state directory made with `airlock init` / `airlock keygen` and
    filled with an approver list and the demo service; an airlock.yaml whose
    endpoints are replaced; the broker and the agents started as processes (in a
    network namespace when asked) with their logs in the state directory; CLI commands
    with their output kept in files; the release's state read and waited for; the last
    bytes of the logs shown when something went wrong.

    Nothing here asserts: each function returns -1 / NULL / false with "what went wrong"
    in the caller's error buffer where it can fail, so a bench uses it as a test does.
    Processes are started through base/al_child (each in its own process group).
    Threading: none of its own; one thread drives a ph_cli_t.
*/
#ifndef PROC_HARNESS_H_INCLUDED
#define PROC_HARNESS_H_INCLUDED

#include "base/al_child.h"
#include <stdbool.h>
#include <stddef.h>

//  How a test runs airlock: the binary, the airlock.yaml its CLI commands and agents
//  read, the directory that receives logs (DIR/LOG.log) and command output (DIR/NAME.out
//  and DIR/NAME.err), and the network namespace they run in (NULL: this one). Borrowed
//  strings; the test owns them.
typedef struct {
    const char *airlock;
    const char *config;
    const char *dir;
    const char *netns;
} ph_cli_t;

//  Run a shell command (printf FORMAT); its exit code, -1 if it did not exit.
int ph_shell (const char *format, ...) __attribute__ ((format (printf, 1, 2)));

//  ---- a state directory ---------------------------------------------------------------

//  `airlock init DIR`, then `airlock keygen --name KEY --out DIR/KEY.key` for each of
//  the COUNT KEYS (their output in DIR/init.out). 0 or -1.
int ph_init (const char *airlock, const char *dir, const char *const *keys, size_t count,
             char *error, size_t error_size);

//  Rewrite POLICY_DIR/constraints.yaml's calendar: open all day (no windows, no freezes).
int ph_open_calendar (const char *policy_dir, char *error, size_t error_size);

//  DIR/policy/approvers.yaml: one approver per NAMES[i] with the role ROLES[i] and its key
//  DIR/NAME.key.pub (made by ph_init). 0 or -1.
int ph_write_approvers (const char *dir, const char *const *names, const char *const *roles, size_t count,
                        char *error, size_t error_size);

//  DIR/services.yaml: the demo service (process driver, two instances, rolling, the
//  artifact is the command), STAGING_SOAK_MS of staging soak and 1.5 s in production,
//  QA's smoke check of /healthz and EXTRA_SMOKE (more lines of the smoke list, each
//  "        - { ... }\n"; MAY be NULL). 0 or -1.
int ph_write_demo_services (const char *dir, int staging_soak_ms, const char *extra_smoke,
                            char *error, size_t error_size);

//  DIR ready for releases of the demo service: the calendar open (ph_open_calendar on
//  DIR/policy), the COUNT approvers (ph_write_approvers) and services.yaml
//  (ph_write_demo_services). 0 or -1.
int ph_prepare_demo (const char *dir, const char *const *names, const char *const *roles, size_t count,
                     int staging_soak_ms, const char *extra_smoke, char *error, size_t error_size);

//  Where a process's endpoints are, for ph_write_config. ROUTER and PUB: where the broker
//  of this config binds. BROKERS and EVENTS (MAY be NULL: not written): every broker a
//  client tries. CHECKPOINT (MAY be NULL: the init one kept): DIR/checkpoints/NAME.ckpt.
//  DSN (MAY be NULL: the init store): the PostgreSQL store and the ha section, HA_NAME
//  the broker's name in the lease.
typedef struct {
    const char *router;
    const char *pub;
    const char *brokers;
    const char *events;
    const char *checkpoint;
    const char *dsn;
    const char *ha_name;
} ph_endpoints_t;

//  PATH: the airlock.yaml that `airlock init DIR` wrote (INIT_TEXT) with its endpoints
//  (and checkpoint, store and ha sections) from ENDPOINTS. 0 or -1 ("not the layout
//  `airlock init` writes" when INIT_TEXT is not).
int ph_write_config (const char *path, const char *init_text, const char *dir, const ph_endpoints_t *endpoints,
                     char *error, size_t error_size);

//  ---- processes -----------------------------------------------------------------------

//  Start ARGV (ARGV[0] a path) with stdout and stderr appended to DIR/LOG.log, inside the
//  network namespace NETNS when not NULL (`ip netns exec` execs it: the pid is the
//  program's). NULL with why in error.
al_child_t *ph_spawn (const char *dir, const char *log, const char *netns, const char *const *argv,
                      char *error, size_t error_size);

//  Stop *CHILD_P and reap it: SIGKILL at once, or SIGTERM then SIGKILL after 30 s. Sets
//  *CHILD_P to NULL; NULL-safe.
void ph_stop (al_child_t **child_p, int signum);

//  `airlock broker --config CONFIG`, its log DIR/LOG.log.
al_child_t *ph_start_broker (const ph_cli_t *cli, const char *config, const char *log,
                             char *error, size_t error_size);

//  `airlock agent ROLE --config CONFIG` (the monitor polls every 250 ms), its log
//  DIR/ROLE.log.
al_child_t *ph_start_agent (const ph_cli_t *cli, const char *role, char *error, size_t error_size);

//  An agent for each of the COUNT ROLES (ph_start_agent) into AGENTS, then a wait
//  (TIMEOUT_MS at most) until all are registered. How many are registered, or -1 when
//  one could not be started; with why in error unless all are. The agents started stay
//  in AGENTS for the caller to stop (ph_stop_all).
int ph_start_agents (const ph_cli_t *cli, const char *const *roles, int count, al_child_t **agents, int timeout_ms,
                     char *error, size_t error_size);

//  ph_stop on each of the COUNT CHILDREN.
void ph_stop_all (al_child_t **children, int count, int signum);

//  How many of ROLES `airlock status --json` lists.
int ph_registered (const ph_cli_t *cli, const char *const *roles, int count);

//  Waits (TIMEOUT_MS at most) until every one of ROLES is registered. True when they are.
bool ph_wait_registered (const ph_cli_t *cli, const char *const *roles, int count, int timeout_ms);

//  Does DIR/LOG.log hold TEXT? Waits (TIMEOUT_MS at most) until it does.
bool ph_log_has (const char *dir, const char *log, const char *text);
bool ph_wait_log (const char *dir, const char *log, const char *text, int timeout_ms);

//  The last TAIL bytes of DIR/LOG.log for each of the COUNT LOGS, to stderr.
void ph_dump_logs (const char *dir, const char *const *logs, size_t count, size_t tail);

//  ---- the CLI ---------------------------------------------------------------------------

//  `airlock ARGUMENTS --config CONFIG` (ARGUMENTS is shell text), stdout in DIR/NAME.out,
//  stderr in DIR/NAME.err; its exit code.
int ph_airlock (const ph_cli_t *cli, const char *name, const char *arguments);

//  What command NAME printed on its stdout (JSON is parsed from this alone); caller
//  frees, NULL if missing.
char *ph_stdout (const ph_cli_t *cli, const char *name);

//  What command NAME printed, stdout then stderr; caller frees.
char *ph_output (const ph_cli_t *cli, const char *name);

//  `airlock submit` of RELEASE: SERVICE at VERSION, the artifact at ARTIFACT with its
//  SHA256 (hex), CHANGES written to DIR/changes-RELEASE.txt, the summary "release
//  VERSION", and EXTRA (shell text, MAY be NULL) after the rest. 0, or -1 with what the
//  command printed in error.
int ph_submit (const ph_cli_t *cli, const char *service, const char *release, const char *version,
               const char *artifact, const char *sha256, const char *changes, const char *extra,
               char *error, size_t error_size);

//  `airlock approve REQUEST --yes --key DIR/KEY.key`: its exit code; what it printed
//  (stdout then stderr) in *OUTPUT_P (caller frees).
int ph_approve (const ph_cli_t *cli, const char *request, const char *key, char **output_p);

//  How many instances of SERVICE in ENV that run VERSION (the process driver's registry
//  under DIR/deploy) answer GET /healthz, asked from the network namespace NETNS (NULL:
//  this one). -1 if the registry cannot be read.
int ph_answering (const char *dir, const char *service, const char *env, const char *version, const char *netns);

//  The state of RELEASE (`airlock status RELEASE --json`); caller frees, NULL if unknown.
char *ph_state (const ph_cli_t *cli, const char *release);

//  Waits (TIMEOUT_MS at most) until RELEASE is in WANT or in a final state (DONE, FAILED,
//  ROLLED_BACK). The last state read (caller frees), NULL if none was.
char *ph_wait_state (const ph_cli_t *cli, const char *release, const char *want, int timeout_ms);

#endif
