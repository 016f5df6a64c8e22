/*  al_paths.h: the name of every file and directory under the state directory.

    The state directory (`airlock init --state DIR`, al_config_state_dir) holds all that
    airlock keeps on disk. Each entry has one owner module, which writes it and offers
    the typed API others call (docs/design.md, "Files on disk"); this module only names
    the paths, so that no path is spelled in two places. Layout (docs/operations.md):

        airlock.yaml                              configuration (init)
        keys/                                     CURVE certificates, checkpoint key (init)
          <role>.cert, <role>.cert_secret, broker.cert, checkpoint.key, checkpoint.pub
        policy/                                   the seven policy files (init, operator)
          identities.yaml, roles.yaml, ...
        services.yaml, notifications.yaml         operator
        audit.db, audit.db.lock                   broker (store/)
        broker.ipc, events.ipc                    broker sockets
        checkpoints/latest.ckpt                   broker
        logs/<name>.log                           airlock up
        run/<name>.pid, run/up.lock               airlock up
        run/metrics-<name>.address                each process with a metrics address
        orchestrator/releases/<release>.json      orchestrator
        qa/<deployment>/qa_report.json, qa/<deployment>/evidence/, qa/.refused/   qa
        qa/.reports/<sha256>.json                 qa (kept by content; deploy/al_qa_reports)
        deploy/artifacts/sha256/<hex>             deploy-manager
        deploy/.artifacts/deployment/<deployment>/   deploy-manager (evidence, receipt)
        deploy/releases/<service>/<environment>.json deploy-manager (release record)
        deploy/drivers/<service>/<environment>/instances.json   process driver
        deploy/backups/<deployment>/<service>.db  deploy-manager
        monitor/baselines/<deployment>.json       monitor
        notifier/outbox.db, notifier/lock         notifier

    Every function writes "STATE/..." into a caller buffer and returns 0, or -1 with the
    reason in error: the path does not fit, or a name to put in it (a service, an
    environment, a deployment id, a role) could climb out of its directory or hide
    itself: empty, ".", "..", holding '/', a control byte, or longer than
    AL_PATHS_NAME_MAX. The state directory itself is taken as given.

    Pure functions; thread-safe.
*/
#ifndef AL_PATHS_H_INCLUDED
#define AL_PATHS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AL_PATHS_NAME_MAX   255

//  The fixed entries.
typedef enum {
    AL_PATH_AIRLOCK_YAML,           // airlock.yaml
    AL_PATH_KEYS_DIR,               // keys
    AL_PATH_CHECKPOINT_KEY,         // keys/checkpoint.key
    AL_PATH_CHECKPOINT_PUBLIC_KEY,  // keys/checkpoint.pub
    AL_PATH_POLICY_DIR,             // policy
    AL_PATH_IDENTITIES_YAML,        // policy/identities.yaml
    AL_PATH_SERVICES_YAML,          // services.yaml
    AL_PATH_NOTIFICATIONS_YAML,     // notifications.yaml
    AL_PATH_AUDIT_DB,               // audit.db
    AL_PATH_AUDIT_DB_LOCK,          // audit.db.lock
    AL_PATH_BROKER_SOCKET,          // broker.ipc
    AL_PATH_EVENTS_SOCKET,          // events.ipc
    AL_PATH_CHECKPOINTS_DIR,        // checkpoints
    AL_PATH_CHECKPOINT,             // checkpoints/latest.ckpt
    AL_PATH_LOGS_DIR,               // logs
    AL_PATH_RUN_DIR,                // run
    AL_PATH_UP_LOCK,                // run/up.lock
    AL_PATH_CONSOLE_PORT,           // run/console.port (the web console's bound address)
    AL_PATH_ORCHESTRATOR_DIR,       // orchestrator
    AL_PATH_ORCHESTRATOR_RELEASES_DIR, // orchestrator/releases
    AL_PATH_QA_DIR,                 // qa
    AL_PATH_QA_REFUSED_DIR,         // qa/.refused
    AL_PATH_QA_REPORTS_DIR,         // qa/.reports (QA reports kept by content digest)
    AL_PATH_DEPLOY_DIR,             // deploy
    AL_PATH_DEPLOY_ARTIFACTS_DIR,   // deploy/artifacts
    AL_PATH_DEPLOY_EVIDENCE_DIR,    // deploy/.artifacts/deployment
    AL_PATH_DEPLOY_RELEASES_DIR,    // deploy/releases
    AL_PATH_DEPLOY_DRIVERS_DIR,     // deploy/drivers
    AL_PATH_DEPLOY_BACKUPS_DIR,     // deploy/backups
    AL_PATH_MONITOR_DIR,            // monitor
    AL_PATH_MONITOR_BASELINES_DIR,  // monitor/baselines
    AL_PATH_NOTIFIER_DIR,           // notifier
    AL_PATH_NOTIFIER_OUTBOX,        // notifier/outbox.db
    AL_PATH_NOTIFIER_LOCK,          // notifier/lock
    AL_PATH_COUNT
} al_path_t;

//  The entry's path relative to the state directory ("keys/checkpoint.key").
const char *al_paths_relative (al_path_t which);

//  STATE/<entry>.
int al_paths_get (const char *state_dir, al_path_t which, char *out, size_t out_size,
                  char *error, size_t error_size);

//  The same, in a fresh string (the caller's), or NULL (error says why).
char *al_paths_dup (const char *state_dir, al_path_t which, char *error, size_t error_size);

//  ipc://STATE/broker.ipc, ipc://STATE/events.ipc: the default endpoints.
int al_paths_endpoint (const char *state_dir, al_path_t socket, char *out, size_t out_size,
                       char *error, size_t error_size);

//  A name that may stand as one path component (see above).
bool al_paths_name_ok (const char *name);

//  Entries named after something. Each name is checked with al_paths_name_ok.
//  keys/<role>.cert and keys/<role>.cert_secret
int al_paths_certificate (const char *state_dir, const char *role, bool secret,
                          char *out, size_t out_size, char *error, size_t error_size);
//  logs/<name>.log
int al_paths_log (const char *state_dir, const char *name, char *out, size_t out_size,
                  char *error, size_t error_size);
//  run/<name>.pid
int al_paths_pid (const char *state_dir, const char *name, char *out, size_t out_size,
                  char *error, size_t error_size);
//  run/metrics-<name>.address
int al_paths_metrics_address (const char *state_dir, const char *name, char *out, size_t out_size,
                              char *error, size_t error_size);
//  orchestrator/releases/<release>.json
int al_paths_orchestrator_release (const char *state_dir, const char *release, char *out,
                                   size_t out_size, char *error, size_t error_size);
//  qa/<deployment> (its qa_report.json and evidence/ inside)
int al_paths_qa_deployment_dir (const char *state_dir, const char *deployment, char *out,
                                size_t out_size, char *error, size_t error_size);
//  qa/<deployment>/qa_report.json
int al_paths_qa_report (const char *state_dir, const char *deployment, char *out,
                        size_t out_size, char *error, size_t error_size);
//  deploy/.artifacts/deployment/<deployment>
int al_paths_deploy_evidence (const char *state_dir, const char *deployment, char *out,
                              size_t out_size, char *error, size_t error_size);
//  deploy/releases/<service>/<environment>.json
int al_paths_release_record (const char *state_dir, const char *service, const char *environment,
                             char *out, size_t out_size, char *error, size_t error_size);
//  deploy/drivers/<service>/<environment>
int al_paths_driver_dir (const char *state_dir, const char *service, const char *environment,
                         char *out, size_t out_size, char *error, size_t error_size);
//  deploy/drivers/<service>/<environment>/instances.json
int al_paths_instances (const char *state_dir, const char *service, const char *environment,
                        char *out, size_t out_size, char *error, size_t error_size);
//  deploy/backups/<deployment>/<service>.db
int al_paths_backup (const char *state_dir, const char *deployment, const char *service,
                     char *out, size_t out_size, char *error, size_t error_size);
//  monitor/baselines/<deployment>.json
int al_paths_monitor_baseline (const char *state_dir, const char *deployment, char *out,
                               size_t out_size, char *error, size_t error_size);

#ifdef __cplusplus
}
#endif

#endif
