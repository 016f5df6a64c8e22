/*  al_config.h: airlock.yaml, the configuration shared by the broker, the agents and the CLI.

    In base/ because every layer above reads it (the broker, each agent, the CLI): an
    agent needs the file, not the broker. Paths default to the state directory's
    entries as base/al_paths names them.

    The file (written by `airlock init`, format in docs/broker.md) names the state
    directory, the policy directory, the audit database, the services file, the two
    broker endpoints, the key files, the heartbeat interval, the limits and the
    checkpoint schedule. Loading is strict and walks the file with base/al_yaml: an
    unknown key, a duplicate key, a wrong type, an out-of-range number or an alias is
    an error "airlock.yaml:LINE:COL: KEY: what is wrong", every error is listed (one per
    line), and no configuration is returned. Keys left out take safe defaults (paths under
    state_dir, limits below). Relative paths are resolved against the directory of the
    configuration file, so every getter returns an absolute path.

    A loaded configuration is immutable; any number of threads may read one.
*/
#ifndef AL_CONFIG_H_INCLUDED
#define AL_CONFIG_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _al_config_t al_config_t;

//  Defaults of the optional keys.
#define AL_CONFIG_DEFAULT_HEARTBEAT_MS        1000
#define AL_CONFIG_DEFAULT_MAX_MESSAGE_BYTES   262144
#define AL_CONFIG_DEFAULT_HANDSHAKE_MS        5000
#define AL_CONFIG_DEFAULT_SNDHWM              10000
#define AL_CONFIG_DEFAULT_RCVHWM              10000
#define AL_CONFIG_DEFAULT_RATE_PER_SECOND     2000
#define AL_CONFIG_DEFAULT_RATE_BURST          4000
#define AL_CONFIG_DEFAULT_BATCH_MAX           512
#define AL_CONFIG_DEFAULT_CHECKPOINT_EVENTS   1000
#define AL_CONFIG_DEFAULT_CHECKPOINT_SECONDS  60
#define AL_CONFIG_DEFAULT_HA_LEASE_MS         3000

//  Load and validate path. Returns NULL with "path:line:col: what is wrong" (or
//  "path: what is wrong") in error when the file cannot be read or is invalid.
al_config_t *al_config_load (const char *path, char *error, size_t error_size);

//  A configuration with every default for an absolute state directory (what `airlock
//  init` writes). Returns NULL if state_dir is not absolute.
al_config_t *al_config_new (const char *state_dir);

//  Write the configuration as airlock.yaml to path (mode 0644, atomically via a
//  temporary file and rename). Returns 0, or -1 with "path: what is wrong" in error.
int al_config_save (const al_config_t *self, const char *path, char *error, size_t error_size);

//  NULL-safe; sets *self_p to NULL.
void al_config_destroy (al_config_t **self_p);

//  The file it was loaded from (absolute), or "" for al_config_new.
const char *al_config_path (const al_config_t *self);

//  Paths, all absolute.
const char *al_config_state_dir (const al_config_t *self);
const char *al_config_policy_dir (const al_config_t *self);       // default state_dir/policy
const char *al_config_database (const al_config_t *self);         // default state_dir/audit.db
const char *al_config_broker_cert (const al_config_t *self);      // default state_dir/keys/broker.cert
const char *al_config_checkpoint_key (const al_config_t *self);   // default state_dir/keys/checkpoint.key
const char *al_config_agents_keys_dir (const al_config_t *self);  // default state_dir/keys
const char *al_config_checkpoint_path (const al_config_t *self);  // default state_dir/checkpoints/latest.ckpt
//  The per-service deployment configuration read by deploy-manager (deploy/al_services.h).
const char *al_config_services_path (const al_config_t *self);    // default state_dir/services.yaml

//  The audit log: store.backend ("sqlite" unless airlock.yaml says "postgres") and where
//  al_store_open finds it: the database file for sqlite, store.dsn (a libpq connection
//  string without password) for postgres.
const char *al_config_store_backend (const al_config_t *self);
const char *al_config_store_location (const al_config_t *self);

//  The web console `airlock up` starts (section console: listen "HOST:PORT", token_file
//  a path): NULL when airlock.yaml does not ask for a console (docs/console.md).
const char *al_config_console_listen (const al_config_t *self);
const char *al_config_console_token_file (const al_config_t *self);

//  Endpoints: default ipc://state_dir/broker.ipc and ipc://state_dir/events.ipc.
const char *al_config_router_endpoint (const al_config_t *self);
const char *al_config_pub_endpoint (const al_config_t *self);
//  What clients connect to (docs/ha.md): endpoints.brokers / endpoints.events, each a
//  comma-separated list of every broker's router / pub endpoint, tried in order;
//  unset: the router / pub endpoint above.
const char *al_config_broker_endpoints (const al_config_t *self);
const char *al_config_event_endpoints (const al_config_t *self);

//  Failover (docs/ha.md): with an ha section, several brokers share one PostgreSQL
//  database, their audit log and their lease, and that database is store.dsn (the
//  file is refused unless store.backend is postgres; a leftover ha.database is refused
//  with the advice to move it to store.dsn). al_config_ha_database: store.dsn with an
//  ha section, NULL without (one broker, its own log). ha.name, this broker's name in
//  the lease (NULL: the host name); ha.lease_ms, how long the lease lasts unrenewed (at
//  least 3 heartbeats).
const char *al_config_ha_database (const al_config_t *self);
const char *al_config_ha_name (const al_config_t *self);
int al_config_ha_lease_ms (const al_config_t *self);

//  The certificate file of an agent role: agents_keys_dir/<role>.cert (its secret part
//  is at that path + "_secret", czmq's convention). Caller frees; NULL if role is empty
//  or contains '/'.
char *al_config_agent_cert (const al_config_t *self, const char *role);

//  Heartbeat interval (both ways); a peer is dead after 3 missed intervals.
int al_config_heartbeat_ms (const al_config_t *self);

//  Limits.
size_t al_config_max_message_bytes (const al_config_t *self);
int al_config_handshake_ms (const al_config_t *self);
int al_config_sndhwm (const al_config_t *self);
int al_config_rcvhwm (const al_config_t *self);
uint32_t al_config_rate_per_second (const al_config_t *self);
uint32_t al_config_rate_burst (const al_config_t *self);
uint32_t al_config_batch_max (const al_config_t *self);

//  Checkpoint schedule: every N committed events or S seconds, whichever comes first.
uint32_t al_config_checkpoint_every_events (const al_config_t *self);
uint32_t al_config_checkpoint_every_seconds (const al_config_t *self);

//  The operator metrics endpoint of a process ("broker", "orchestrator", "qa",
//  "deploy-manager", "monitor", "notifier"): the "HOST:PORT" of the metrics section, or
//  NULL when none is configured (no endpoint is served).
const char *al_config_metrics_address (const al_config_t *self, const char *process);
//  Where that process writes the address it bound (state_dir/run/metrics-PROCESS.address,
//  "HOST:PORT"; useful with port 0; named by al_paths). Caller frees; NULL if process
//  cannot stand in a file name (al_paths_name_ok) or memory ran out.
char *al_config_metrics_port_file (const al_config_t *self, const char *process);

//  Parse a metrics address "HOST:PORT" (numeric IPv4 host, port 0..65535) into
//  sockaddr (MAY be NULL: only check). 0, or -1 with what is wrong in error.
int al_config_address_parse (const char *address, struct sockaddr_in *sockaddr,
                             char *error, size_t error_size);

#ifdef __cplusplus
}
#endif

#endif
