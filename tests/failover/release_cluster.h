/*  release_cluster.h: two brokers on one PostgreSQL, the five agents and a real service,
    for failover in the middle of real releases (test_release_failover, bench_failover).

    rc_cluster_new starts a throwaway PostgreSQL (tests/pg's harness), makes a state
    directory (`airlock init`, an approver key for alice, the calendar open, the demo
    service with the process driver), starts broker A (it takes the lease), then broker B
    (a standby), each with its own ipc:// endpoints in the state directory, then the five
    agents (orchestrator, qa, deploy-manager, monitor, notifier) as `airlock agent ROLE`
    processes whose endpoints.brokers / events name both brokers, and waits until all
    five are registered. Releases go through the CLI (`airlock submit`, `airlock status`,
    `airlock approve`), as a human and CI do.

    The ledger: a client thread with the orchestrator's certificate (no deliveries)
    keeps up to WINDOW Notifications in flight and writes down every Ack (message id, audit
    sequence, hash); rc_ledger_lost looks each one up in PostgreSQL.

    Every function returns -1 / NULL / false with "what went wrong" in the caller's error
    buffer where it can fail. Threading: one thread drives a cluster; the ledger runs in
    its own thread.
*/
#ifndef RELEASE_CLUSTER_H_INCLUDED
#define RELEASE_CLUSTER_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _rc_cluster_t rc_cluster_t;

//  BINARY_DIR holds `airlock` and `demo-service`; STAGING_SOAK_MS is services.yaml's
//  soak_ms (the staging soak; production soaks 1.5 s).
rc_cluster_t *rc_cluster_new (const char *binary_dir, int staging_soak_ms, char *error, size_t error_size);
//  Stops the ledger, the agents, the brokers, the service instances and PostgreSQL, and
//  deletes the state directory (kept if keep). NULL-safe.
void rc_cluster_destroy (rc_cluster_t **self_p, bool keep);

const char *rc_dir (rc_cluster_t *self);
const char *rc_dsn (rc_cluster_t *self);
//  The PostgreSQL server (for another database on it).
struct _pg_harness_t *rc_pg (rc_cluster_t *self);

//  Which broker holds an unexpired lease (0 = A, 1 = B), -1 if none; the lease's epoch.
int rc_active (rc_cluster_t *self);
uint64_t rc_epoch (rc_cluster_t *self);

//  kill -9 the active broker, start it again at once (it comes back as a standby), and
//  wait (60 s at most) until a new leader holds the lease and has committed a row.
//  seconds: from the kill to that first commit. Returns which broker was killed, or -1.
int rc_kill_active (rc_cluster_t *self, double *seconds, char *error, size_t error_size);

//  `airlock submit` of release ID (service demo, VERSION, its own artifact). 0 or -1.
int rc_submit (rc_cluster_t *self, const char *id, const char *version, char *error, size_t error_size);
//  The release's state (`airlock status ID --json`), caller frees; NULL if not known.
char *rc_state (rc_cluster_t *self, const char *id);
//  Waits (timeout_ms at most) until the release is in WANT or a terminal state (DONE,
//  FAILED, ROLLED_BACK); the state it ended in (caller frees), NULL if none was read.
char *rc_wait_state (rc_cluster_t *self, const char *id, const char *want, int timeout_ms);
//  `airlock approve REQUEST --yes` with alice's key. 0 when it printed "granted", with
//  the audit row of the approval in *row; -1 with its output in error.
int rc_approve (rc_cluster_t *self, const char *request, uint64_t *row, char *error, size_t error_size);
//  Does deploy-manager's journal (in PostgreSQL) hold STEP / PHASE ("before", "after")
//  for DEPLOYMENT?
bool rc_journal_has (rc_cluster_t *self, const char *deployment, const char *step, const char *phase);

//  The first column of the first row of SQL on the cluster's database as a number, -1
//  on error (error filled).
long long rc_sql_number (rc_cluster_t *self, const char *sql, char *error, size_t error_size);
//  `airlock audit verify --postgres DSN`: its exit code (its output in dir/verify.out).
int rc_audit_verify (rc_cluster_t *self);
//  Production deploys against grants, from the audit log: per production deployment id
//  the accepted ExecuteDeploy rows (grants) and DeployReceipt rows. deployments: ids with
//  a grant; duplicates: grants or receipts beyond the first of a deployment; ungranted:
//  receipts of a deployment without a grant. 0 or -1.
int rc_production_deploys (rc_cluster_t *self, size_t *deployments, size_t *grants, size_t *receipts,
                           size_t *duplicates, size_t *ungranted, char *error, size_t error_size);

//  The ledger client: up to WINDOW Notifications in flight, one posted every GAP_MS at
//  most (0: as fast as Acks come). Start once; stop waits for it.
int rc_ledger_start (rc_cluster_t *self, size_t window, int gap_ms, char *error, size_t error_size);
void rc_ledger_stop (rc_cluster_t *self);
//  Acks written down so far.
size_t rc_ledger_acked (rc_cluster_t *self);
//  Acked messages that are not in the log with the sequence and hash of their Ack (also
//  counts approval rows added with rc_ledger_add_row that are not SignedApprovals). -1 on
//  a database error.
long long rc_ledger_lost (rc_cluster_t *self, char *error, size_t error_size);
//  Adds an audit row a command reported (`airlock approve`'s "recorded as audit row N").
void rc_ledger_add_row (rc_cluster_t *self, uint64_t row);

//  The last bytes of every process's log, to stderr.
void rc_dump_logs (rc_cluster_t *self);

#endif
