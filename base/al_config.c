/*  al_config.c: load, default and save airlock.yaml.

    The file is parsed into a libyaml document and walked against a fixed table of keys:
    a key that is not in the table, a key given twice, a value of the wrong shape or a
    number out of its range is an error naming line and column (libyaml marks are
    0-based; messages are 1-based). Nothing is returned unless the whole file is valid.
    Paths are made absolute against the configuration file's directory at load time, so
    the getters never depend on the process's working directory.

    Immutable after load; no global state.
*/
#include "base/al_config.h"
#include "base/al_error.h"
#include "base/al_yaml.h"
#include "base/al_file.h"
#include "base/al_paths.h"
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

//  String fields, indexed by s_str_t.
typedef enum {
    S_STATE_DIR, S_POLICY_DIR, S_DATABASE, S_ROUTER, S_PUB,
    S_KEY_BROKER, S_KEY_CHECKPOINT, S_KEY_AGENTS, S_CHECKPOINT_PATH, S_SERVICES,
    //  metrics: one optional address per process (unset: no endpoint).
    S_METRICS_BROKER, S_METRICS_ORCHESTRATOR, S_METRICS_QA, S_METRICS_DEPLOY_MANAGER,
    S_METRICS_MONITOR, S_METRICS_NOTIFIER,
    //  store: the audit log's backend and, for postgres, its connection string.
    S_STORE_BACKEND, S_STORE_DSN,
    //  console: the web console `airlock up` starts.
    S_CONSOLE_LISTEN, S_CONSOLE_TOKEN_FILE,
    //  failover (docs/ha.md): what clients connect to, when not just router / pub.
    S_BROKERS, S_EVENTS,
    //  ha: this broker's name in the lease (the database is store.dsn).
    S_HA_NAME,
    S_STR_COUNT
} s_str_t;

//  Integer fields, indexed by s_int_t.
typedef enum {
    S_HEARTBEAT_MS, S_MAX_MESSAGE_BYTES, S_HANDSHAKE_MS, S_SNDHWM, S_RCVHWM,
    S_RATE_PER_SECOND, S_RATE_BURST, S_BATCH_MAX, S_CKPT_EVENTS, S_CKPT_SECONDS,
    S_HA_LEASE_MS,
    S_INT_COUNT
} s_int_t;

struct _al_config_t {
    char *path;
    char *str [S_STR_COUNT];
    int64_t num [S_INT_COUNT];
    bool ha;                    // an ha section: several brokers share store.dsn (docs/ha.md)
};

//  One key of the file: where it lives (section, or NULL at top level), its name, and
//  which field it fills (a string that is a path or endpoint, or an integer in a range).
typedef struct {
    const char *section;
    const char *name;
    bool is_string;
    bool is_path;               // strings: resolve relative to the config file
    int field;
    int64_t min, max;           // integers
} s_key_t;

static const s_key_t s_keys [] = {
    { NULL,         "state_dir",          true,  true,  S_STATE_DIR, 0, 0 },
    { NULL,         "policy_dir",         true,  true,  S_POLICY_DIR, 0, 0 },
    { NULL,         "database",           true,  true,  S_DATABASE, 0, 0 },
    { NULL,         "services",           true,  true,  S_SERVICES, 0, 0 },
    { "endpoints",  "router",             true,  false, S_ROUTER, 0, 0 },
    { "endpoints",  "pub",                true,  false, S_PUB, 0, 0 },
    { "endpoints",  "brokers",            true,  false, S_BROKERS, 0, 0 },
    { "endpoints",  "events",             true,  false, S_EVENTS, 0, 0 },
    { "keys",       "broker",             true,  true,  S_KEY_BROKER, 0, 0 },
    { "keys",       "checkpoint",         true,  true,  S_KEY_CHECKPOINT, 0, 0 },
    { "keys",       "agents",             true,  true,  S_KEY_AGENTS, 0, 0 },
    { NULL,         "heartbeat_ms",       false, false, S_HEARTBEAT_MS, 10, 3600000 },
    { "limits",     "max_message_bytes",  false, false, S_MAX_MESSAGE_BYTES, 1024, 64 * 1024 * 1024 },
    { "limits",     "handshake_ms",       false, false, S_HANDSHAKE_MS, 100, 600000 },
    { "limits",     "sndhwm",             false, false, S_SNDHWM, 1, 10000000 },
    { "limits",     "rcvhwm",             false, false, S_RCVHWM, 1, 10000000 },
    { "limits",     "rate_per_second",    false, false, S_RATE_PER_SECOND, 1, 10000000 },
    { "limits",     "rate_burst",         false, false, S_RATE_BURST, 1, 100000000 },
    { "limits",     "batch_max",          false, false, S_BATCH_MAX, 1, 65536 },
    { "checkpoint", "every_events",       false, false, S_CKPT_EVENTS, 1, 100000000 },
    { "checkpoint", "every_seconds",      false, false, S_CKPT_SECONDS, 1, 86400 * 30 },
    { "checkpoint", "path",               true,  true,  S_CHECKPOINT_PATH, 0, 0 },
    { "metrics",    "broker",             true,  false, S_METRICS_BROKER, 0, 0 },
    { "metrics",    "orchestrator",       true,  false, S_METRICS_ORCHESTRATOR, 0, 0 },
    { "metrics",    "qa",                 true,  false, S_METRICS_QA, 0, 0 },
    { "metrics",    "deploy-manager",     true,  false, S_METRICS_DEPLOY_MANAGER, 0, 0 },
    { "metrics",    "monitor",            true,  false, S_METRICS_MONITOR, 0, 0 },
    { "metrics",    "notifier",           true,  false, S_METRICS_NOTIFIER, 0, 0 },
    { "store",      "backend",            true,  false, S_STORE_BACKEND, 0, 0 },
    { "store",      "dsn",                true,  false, S_STORE_DSN, 0, 0 },
    { "console",    "listen",             true,  false, S_CONSOLE_LISTEN, 0, 0 },
    { "console",    "token_file",         true,  true,  S_CONSOLE_TOKEN_FILE, 0, 0 },
    { "ha",         "name",               true,  false, S_HA_NAME, 0, 0 },
    { "ha",         "lease_ms",           false, false, S_HA_LEASE_MS, 300, 600000 },
};
#define S_MAX_FILE_SIZE (1024 * 1024)    // airlock.yaml is a few hundred bytes
#define S_KEY_COUNT (sizeof s_keys / sizeof s_keys [0])

//  Keys that were removed, each with what to write instead: refused with that advice
//  rather than as unknown (never read as an alias of their replacement).
static const struct { const char *section, *name, *advice; } s_retired [] = {
    { "ha", "database", "no longer exists: move its connection string to store.dsn, with store.backend "
                        "postgres (with ha the brokers' audit log is the lease's database)" },
};

static const char *s_sections [] = { "endpoints", "keys", "limits", "checkpoint", "metrics", "store", "console", "ha" };
#define S_SECTION_COUNT (sizeof s_sections / sizeof s_sections [0])

int
al_config_address_parse (const char *address, struct sockaddr_in *sockaddr_p, char *error, size_t error_size)
{
    const char *colon = address? strrchr (address, ':'): NULL;
    if (!colon || colon == address || colon - address >= 64) {
        al_error_set (error, error_size, "'%s' is not HOST:PORT", address? address: "");
        return -1;
    }
    char host [64];
    memcpy (host, address, (size_t) (colon - address));
    host [colon - address] = '\0';
    char *end = NULL;
    errno = 0;
    long port = strtol (colon + 1, &end, 10);
    if (errno || !colon [1] || *end || port < 0 || port > 65535) {
        al_error_set (error, error_size, "'%s': the port must be a number 0..65535", address);
        return -1;
    }
    struct sockaddr_in sockaddr;
    memset (&sockaddr, 0, sizeof sockaddr);
    sockaddr.sin_family = AF_INET;
    sockaddr.sin_port = htons ((uint16_t) port);
    if (inet_pton (AF_INET, host, &sockaddr.sin_addr) != 1) {
        al_error_set (error, error_size, "'%s': the host must be a numeric IPv4 address (e.g. 127.0.0.1)", address);
        return -1;
    }
    if (sockaddr_p)
        *sockaddr_p = sockaddr;
    return 0;
}

static void
s_error (char *error, size_t error_size, const char *path, const yaml_node_t *node,
         const char *format, ...)
{
    if (!error || error_size == 0)
        return;
    char what [512];
    va_list args;
    va_start (args, format);
    vsnprintf (what, sizeof what, format, args);
    va_end (args);
    if (node)
        snprintf (error, error_size, "%s:%zu:%zu: %s", path,
                  (size_t) node->start_mark.line + 1, (size_t) node->start_mark.column + 1, what);
    else
        snprintf (error, error_size, "%s: %s", path, what);
}

static const s_key_t *
s_key_find (const char *section, const char *name)
{
    for (size_t i = 0; i < S_KEY_COUNT; i++) {
        const s_key_t *key = &s_keys [i];
        if (strcmp (key->name, name) != 0)
            continue;
        if ((section == NULL) != (key->section == NULL))
            continue;
        if (section && strcmp (section, key->section) != 0)
            continue;
        return key;
    }
    return NULL;
}

static bool
s_is_section (const char *name)
{
    for (size_t i = 0; i < S_SECTION_COUNT; i++)
        if (strcmp (s_sections [i], name) == 0)
            return true;
    return false;
}

//  One value of key into self. Errors go to yaml; the walk goes on.
static void
s_take_value (al_config_t *self, al_yaml_t *yaml, const s_key_t *key, yaml_node_t *value)
{
    char field [AL_YAML_FIELD_SIZE];
    if (key->section)
        al_yaml_field_key (field, key->section, key->name);
    else
        al_yaml_field_join (field, "", "", key->name);
    if (key->is_string) {
        const char *text = al_yaml_string (yaml, value, field, false);
        if (!text)
            return;
        if (key->section && strcmp (key->section, "metrics") == 0) {
            char why [256] = "";
            if (al_config_address_parse (text, NULL, why, sizeof why)) {
                al_yaml_error (yaml, value, field, "%s", why);
                return;
            }
        }
        char *result = key->is_path? al_yaml_path (yaml, value, field): strdup (text);
        if (!result) {
            if (!key->is_path)
                al_yaml_out_of_memory (yaml);
            return;
        }
        free (self->str [key->field]);
        self->str [key->field] = result;
        return;
    }
    long long number = 0;
    if (al_yaml_integer (yaml, value, field, key->min, key->max, &number))
        self->num [key->field] = (int64_t) number;
}

//  Walk mapping (the root when section is NULL, else that section's) against s_keys.
static void
s_walk (al_config_t *self, al_yaml_t *yaml, yaml_node_t *mapping, const char *section)
{
    for (yaml_node_pair_t *pair = mapping->data.mapping.pairs.start;
         pair < mapping->data.mapping.pairs.top; pair++) {
        if (!al_yaml_first_key (yaml, mapping, pair, section))
            continue;           // not a scalar, or given before: reported
        yaml_node_t *key_node = al_yaml_node (yaml, pair->key);
        yaml_node_t *value = al_yaml_node (yaml, pair->value);
        const char *name = al_yaml_scalar (key_node);
        if (!section && s_is_section (name)) {
            if (al_yaml_want_mapping (yaml, value, name))
                s_walk (self, yaml, value, name);
            if (strcmp (name, "ha") == 0)
                self->ha = true;
            continue;
        }
        const s_key_t *key = s_key_find (section, name);
        const char *retired = NULL;
        for (size_t i = 0; i < sizeof s_retired / sizeof s_retired [0]; i++)
            if (section && strcmp (s_retired [i].section, section) == 0 && strcmp (s_retired [i].name, name) == 0)
                retired = s_retired [i].advice;
        if (retired) {
            al_yaml_error (yaml, key_node, NULL, "%s.%s %s", section, name, retired);
            continue;
        }
        if (!key) {
            if (section)
                al_yaml_error (yaml, key_node, NULL, "unknown key '%s.%.64s'", section, name);
            else
                al_yaml_error (yaml, key_node, NULL, "unknown key '%.64s'", name);
            continue;
        }
        s_take_value (self, yaml, key, value);
    }
}

//  store: backend sqlite (the default; the log is `database`) or postgres (the log is
//  the database `dsn` names). The dsn itself (its syntax, and that it holds no password:
//  a passfile does) is checked by the PostgreSQL backend when the store is opened
//  (store/al_store_pg.c) and, with ha, before the lease's connection is made
//  (broker/al_broker_leader.c), since libpq's parser lives above this layer.
//  ha: several brokers share one audit log, which is the PostgreSQL database that also
//  holds their lease, so ha requires store.backend postgres (one name for one database).
static void
s_check_store (al_config_t *self, al_yaml_t *yaml, yaml_node_t *root)
{
    const char *backend = self->str [S_STORE_BACKEND];
    const char *dsn = self->str [S_STORE_DSN];
    if (backend && strcmp (backend, "sqlite") != 0 && strcmp (backend, "postgres") != 0)
        al_yaml_error (yaml, root, "store.backend", "'%.64s' is not a store backend (sqlite, postgres)", backend);
    bool postgres = backend && strcmp (backend, "postgres") == 0;
    if (postgres && !dsn)
        al_yaml_error (yaml, root, "store.dsn", "required with store.backend postgres");
    if (!postgres && dsn)
        al_yaml_error (yaml, root, "store.dsn", "only for store.backend postgres");
    if (self->ha && !postgres) {
        //  At the ha key itself: that is the line the reader has to change or complete.
        yaml_node_t *where = root;
        for (yaml_node_pair_t *pair = root->data.mapping.pairs.start; pair < root->data.mapping.pairs.top; pair++) {
            yaml_node_t *key = al_yaml_node (yaml, pair->key);
            const char *name = key? al_yaml_scalar (key): NULL;
            if (name && strcmp (name, "ha") == 0) {
                where = key;
                break;
            }
        }
        al_yaml_error (yaml, where, "ha", "requires store: {backend: postgres, dsn: ...}: the brokers share "
                       "their audit log and their lease in one PostgreSQL database (the store is %s)",
                       backend? backend: "sqlite, the default");
    }
}

static al_config_t *
s_alloc (void)
{
    al_config_t *self = (al_config_t *) calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->num [S_HEARTBEAT_MS] = AL_CONFIG_DEFAULT_HEARTBEAT_MS;
    self->num [S_MAX_MESSAGE_BYTES] = AL_CONFIG_DEFAULT_MAX_MESSAGE_BYTES;
    self->num [S_HANDSHAKE_MS] = AL_CONFIG_DEFAULT_HANDSHAKE_MS;
    self->num [S_SNDHWM] = AL_CONFIG_DEFAULT_SNDHWM;
    self->num [S_RCVHWM] = AL_CONFIG_DEFAULT_RCVHWM;
    self->num [S_RATE_PER_SECOND] = AL_CONFIG_DEFAULT_RATE_PER_SECOND;
    self->num [S_RATE_BURST] = AL_CONFIG_DEFAULT_RATE_BURST;
    self->num [S_BATCH_MAX] = AL_CONFIG_DEFAULT_BATCH_MAX;
    self->num [S_CKPT_EVENTS] = AL_CONFIG_DEFAULT_CHECKPOINT_EVENTS;
    self->num [S_CKPT_SECONDS] = AL_CONFIG_DEFAULT_CHECKPOINT_SECONDS;
    self->num [S_HA_LEASE_MS] = AL_CONFIG_DEFAULT_HA_LEASE_MS;
    return self;
}

//  Fill every string left unset from state_dir. Returns 0 or -1 (out of memory).
static int
s_fill_defaults (al_config_t *self)
{
    const char *state = self->str [S_STATE_DIR];
    assert (state);
    //  Every default is an entry of the state directory (base/al_paths); the broker's
    //  certificate is the "broker" role's.
    struct { s_str_t field; al_path_t entry; const char *scheme; } defaults [] = {
        { S_POLICY_DIR,      AL_PATH_POLICY_DIR,      "" },
        { S_DATABASE,        AL_PATH_AUDIT_DB,        "" },
        { S_ROUTER,          AL_PATH_BROKER_SOCKET,   "ipc://" },
        { S_PUB,             AL_PATH_EVENTS_SOCKET,   "ipc://" },
        { S_KEY_CHECKPOINT,  AL_PATH_CHECKPOINT_KEY,  "" },
        { S_KEY_AGENTS,      AL_PATH_KEYS_DIR,        "" },
        { S_CHECKPOINT_PATH, AL_PATH_CHECKPOINT,      "" },
        { S_SERVICES,        AL_PATH_SERVICES_YAML,   "" },
    };
    for (size_t i = 0; i < sizeof defaults / sizeof defaults [0]; i++) {
        if (self->str [defaults [i].field])
            continue;
        if (asprintf (&self->str [defaults [i].field], "%s%s/%s", defaults [i].scheme, state,
                      al_paths_relative (defaults [i].entry)) < 0) {
            self->str [defaults [i].field] = NULL;
            return -1;
        }
    }
    if (!self->str [S_KEY_BROKER]) {
        char path [PATH_MAX];
        if (al_paths_certificate (state, "broker", false, path, sizeof path, NULL, 0) != 0
        ||  !(self->str [S_KEY_BROKER] = strdup (path)))
            return -1;
    }
    return 0;
}

al_config_t *
al_config_load (const char *path, char *error, size_t error_size)
{
    assert (path);
    //  base/al_yaml: the walk every airlock file shares (no alias, every error listed
    //  as "path:line:col: field: what", a second document refused).
    al_yaml_t *yaml = al_yaml_new (path, error, error_size);
    if (!yaml)
        return NULL;
    al_config_t *self = s_alloc ();
    if (!self)
        al_yaml_out_of_memory (yaml);
    else {
        yaml_node_t *root = al_yaml_load (yaml, S_MAX_FILE_SIZE, "empty file: state_dir is required");
        if (root) {
            if (al_yaml_want_mapping (yaml, root, NULL)) {
                s_walk (self, yaml, root, NULL);
                if (!self->str [S_STATE_DIR])
                    al_yaml_error (yaml, root, NULL, "state_dir is required");
                s_check_store (self, yaml, root);
            }
            al_yaml_end (yaml, "airlock.yaml");
        }
    }
    if (al_yaml_report (yaml, error, error_size) != 0) {
        al_config_destroy (&self);
        goto cleanup;
    }
    self->path = realpath (path, NULL);
    if (!self->path) {
        al_error_set (error, error_size, "%s: cannot resolve: %s", path, strerror (errno));
        al_config_destroy (&self);
    }
    else
    if (s_fill_defaults (self)) {
        al_error_set (error, error_size, "%s: out of memory", path);
        al_config_destroy (&self);
    }
cleanup:
    al_yaml_destroy (&yaml);
    return self;
}

al_config_t *
al_config_new (const char *state_dir)
{
    assert (state_dir);
    if (state_dir [0] != '/')
        return NULL;
    al_config_t *self = s_alloc ();
    if (!self)
        return NULL;
    self->path = strdup ("");
    self->str [S_STATE_DIR] = strdup (state_dir);
    if (!self->path || !self->str [S_STATE_DIR] || s_fill_defaults (self))
        al_config_destroy (&self);
    return self;
}

//  Write a YAML double-quoted scalar.
static void
s_put_quoted (FILE *out, const char *text)
{
    fputc ('"', out);
    for (const char *p = text; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf (out, "\\%c", *p);
        else
        if ((unsigned char) *p < 0x20)
            fprintf (out, "\\x%02x", (unsigned char) *p);
        else
            fputc (*p, out);
    }
    fputc ('"', out);
}

int
al_config_save (const al_config_t *self, const char *path, char *error, size_t error_size)
{
    assert (self);
    assert (path);
    int rc = -1;
    char *text = NULL;
    size_t text_size = 0;
    FILE *out = open_memstream (&text, &text_size);
    if (!out) {
        s_error (error, error_size, path, NULL, "out of memory");
        goto cleanup;
    }
    fprintf (out, "# airlock.yaml: read by the broker, the agents and the CLI (docs/broker.md).\n");
    const char *current = NULL;
    for (size_t i = 0; i < S_KEY_COUNT; i++) {
        const s_key_t *key = &s_keys [i];
        if (key->is_string && !self->str [key->field])
            continue;               // optional and unset (metrics addresses)
        if (key->section && strcmp (key->section, "ha") == 0 && !self->ha)
            continue;               // no failover: no ha section
        const char *indent = "";
        if (key->section) {
            indent = "  ";
            if (!current || strcmp (current, key->section) != 0)
                fprintf (out, "%s:\n", key->section);
        }
        current = key->section;
        fprintf (out, "%s%s: ", indent, key->name);
        if (key->is_string)
            s_put_quoted (out, self->str [key->field]);
        else
            fprintf (out, "%lld", (long long) self->num [key->field]);
        fputc ('\n', out);
    }
    int closed = fclose (out);
    out = NULL;
    if (closed != 0 || !text) {
        s_error (error, error_size, path, NULL, "out of memory");
        goto cleanup;
    }
    rc = al_file_write_atomic (path, text, text_size, 0644, error, error_size);
cleanup:
    if (out)
        fclose (out);
    free (text);
    return rc;
}

void
al_config_destroy (al_config_t **self_p)
{
    assert (self_p);
    al_config_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < S_STR_COUNT; i++)
        free (self->str [i]);
    free (self->path);
    free (self);
    *self_p = NULL;
}

const char *al_config_path (const al_config_t *self) { assert (self); return self->path; }
const char *al_config_state_dir (const al_config_t *self) { assert (self); return self->str [S_STATE_DIR]; }
const char *al_config_policy_dir (const al_config_t *self) { assert (self); return self->str [S_POLICY_DIR]; }
const char *al_config_database (const al_config_t *self) { assert (self); return self->str [S_DATABASE]; }

const char *al_config_broker_endpoints (const al_config_t *self) { assert (self); return self->str [S_BROKERS] ? self->str [S_BROKERS] : self->str [S_ROUTER]; }
const char *al_config_event_endpoints (const al_config_t *self) { assert (self); return self->str [S_EVENTS] ? self->str [S_EVENTS] : self->str [S_PUB]; }
const char *al_config_ha_database (const al_config_t *self) { assert (self); return self->ha? self->str [S_STORE_DSN]: NULL; }
const char *al_config_ha_name (const al_config_t *self) { assert (self); return self->str [S_HA_NAME]; }
int al_config_ha_lease_ms (const al_config_t *self) { assert (self); return (int) self->num [S_HA_LEASE_MS]; }

const char *
al_config_console_listen (const al_config_t *self)
{
    assert (self);
    return self->str [S_CONSOLE_LISTEN];
}

const char *
al_config_console_token_file (const al_config_t *self)
{
    assert (self);
    return self->str [S_CONSOLE_TOKEN_FILE];
}

const char *
al_config_store_backend (const al_config_t *self)
{
    assert (self);
    return self->str [S_STORE_BACKEND]? self->str [S_STORE_BACKEND]: "sqlite";
}

const char *
al_config_store_location (const al_config_t *self)
{
    assert (self);
    return self->str [S_STORE_DSN]? self->str [S_STORE_DSN]: self->str [S_DATABASE];
}
const char *al_config_broker_cert (const al_config_t *self) { assert (self); return self->str [S_KEY_BROKER]; }
const char *al_config_checkpoint_key (const al_config_t *self) { assert (self); return self->str [S_KEY_CHECKPOINT]; }
const char *al_config_agents_keys_dir (const al_config_t *self) { assert (self); return self->str [S_KEY_AGENTS]; }
const char *al_config_checkpoint_path (const al_config_t *self) { assert (self); return self->str [S_CHECKPOINT_PATH]; }
const char *al_config_services_path (const al_config_t *self) { assert (self); return self->str [S_SERVICES]; }
const char *al_config_router_endpoint (const al_config_t *self) { assert (self); return self->str [S_ROUTER]; }
const char *al_config_pub_endpoint (const al_config_t *self) { assert (self); return self->str [S_PUB]; }

char *
al_config_agent_cert (const al_config_t *self, const char *role)
{
    assert (self);
    if (!role || !*role || strchr (role, '/'))
        return NULL;
    char *result = NULL;
    if (asprintf (&result, "%s/%s.cert", self->str [S_KEY_AGENTS], role) < 0)
        return NULL;
    return result;
}

int al_config_heartbeat_ms (const al_config_t *self) { assert (self); return (int) self->num [S_HEARTBEAT_MS]; }
size_t al_config_max_message_bytes (const al_config_t *self) { assert (self); return (size_t) self->num [S_MAX_MESSAGE_BYTES]; }
int al_config_handshake_ms (const al_config_t *self) { assert (self); return (int) self->num [S_HANDSHAKE_MS]; }
int al_config_sndhwm (const al_config_t *self) { assert (self); return (int) self->num [S_SNDHWM]; }
int al_config_rcvhwm (const al_config_t *self) { assert (self); return (int) self->num [S_RCVHWM]; }
uint32_t al_config_rate_per_second (const al_config_t *self) { assert (self); return (uint32_t) self->num [S_RATE_PER_SECOND]; }
uint32_t al_config_rate_burst (const al_config_t *self) { assert (self); return (uint32_t) self->num [S_RATE_BURST]; }
uint32_t al_config_batch_max (const al_config_t *self) { assert (self); return (uint32_t) self->num [S_BATCH_MAX]; }
uint32_t al_config_checkpoint_every_events (const al_config_t *self) { assert (self); return (uint32_t) self->num [S_CKPT_EVENTS]; }
uint32_t al_config_checkpoint_every_seconds (const al_config_t *self) { assert (self); return (uint32_t) self->num [S_CKPT_SECONDS]; }

const char *
al_config_metrics_address (const al_config_t *self, const char *process)
{
    assert (self);
    assert (process);
    for (size_t i = 0; i < S_KEY_COUNT; i++)
        if (s_keys [i].section && strcmp (s_keys [i].section, "metrics") == 0
        &&  strcmp (s_keys [i].name, process) == 0)
            return self->str [s_keys [i].field];
    return NULL;
}

char *
al_config_metrics_port_file (const al_config_t *self, const char *process)
{
    assert (self);
    char path [PATH_MAX];
    if (!process || al_paths_metrics_address (self->str [S_STATE_DIR], process, path, sizeof path, NULL, 0) != 0)
        return NULL;
    return strdup (path);
}
