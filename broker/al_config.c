/*  al_config.c: load, default and save airlock.yaml.

    The file is parsed into a libyaml document and walked against a fixed table of keys:
    a key that is not in the table, a key given twice, a value of the wrong shape or a
    number out of its range is an error naming line and column (libyaml marks are
    0-based; messages are 1-based). Nothing is returned unless the whole file is valid.
    Paths are made absolute against the configuration file's directory at load time, so
    the getters never depend on the process's working directory.

    Immutable after load; no global state.
*/
#include "broker/al_config.h"
#include "broker/al_telemetry_server.h"
#include "store/al_store_pg.h"
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
    //  failover (docs/ha.md): what clients connect to, when not just router / pub.
    S_BROKERS, S_EVENTS,
    //  ha: the PostgreSQL database the brokers share, and this broker's name in the lease.
    S_HA_DATABASE, S_HA_NAME,
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
    { "ha",         "database",           true,  false, S_HA_DATABASE, 0, 0 },
    { "ha",         "name",               true,  false, S_HA_NAME, 0, 0 },
    { "ha",         "lease_ms",           false, false, S_HA_LEASE_MS, 300, 600000 },
};
#define S_KEY_COUNT (sizeof s_keys / sizeof s_keys [0])

static const char *s_sections [] = { "endpoints", "keys", "limits", "checkpoint", "metrics", "store", "ha" };
#define S_SECTION_COUNT (sizeof s_sections / sizeof s_sections [0])

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

static char *
s_join (const char *dir, const char *name)
{
    char *result = NULL;
    if (asprintf (&result, "%s/%s", dir, name) < 0)
        return NULL;
    return result;
}

//  Absolute version of value: as is if it starts with '/', else base_dir/value.
static char *
s_absolute (const char *base_dir, const char *value)
{
    if (value [0] == '/')
        return strdup (value);
    return s_join (base_dir, value);
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

static int
s_parse_int (const char *text, int64_t *value_p)
{
    if (!*text)
        return -1;
    errno = 0;
    char *end = NULL;
    long long value = strtoll (text, &end, 10);
    if (errno || *end != '\0' || (text [0] != '-' && (text [0] < '0' || text [0] > '9')))
        return -1;
    *value_p = value;
    return 0;
}

//  Fill one value node for key; seen tracks duplicates (index into s_keys).
static int
s_take_value (al_config_t *self, const s_key_t *key, yaml_node_t *value, const char *base_dir,
              const char *path, char *error, size_t error_size)
{
    const char *full = key->name;
    char qualified [128];
    if (key->section) {
        snprintf (qualified, sizeof qualified, "%s.%s", key->section, key->name);
        full = qualified;
    }
    if (value->type != YAML_SCALAR_NODE) {
        s_error (error, error_size, path, value, "%s: expected a single value", full);
        return -1;
    }
    const char *text = (const char *) value->data.scalar.value;
    if (key->is_string) {
        if (!*text || strlen (text) != value->data.scalar.length) {
            s_error (error, error_size, path, value, "%s: expected a non-empty string", full);
            return -1;
        }
        if (key->section && strcmp (key->section, "metrics") == 0) {
            char why [256] = "";
            if (al_telemetry_address_check (text, why, sizeof why)) {
                s_error (error, error_size, path, value, "%s: %s", full, why);
                return -1;
            }
        }
        char *result = key->is_path? s_absolute (base_dir, text): strdup (text);
        if (!result) {
            s_error (error, error_size, path, value, "out of memory");
            return -1;
        }
        free (self->str [key->field]);
        self->str [key->field] = result;
        return 0;
    }
    int64_t number = 0;
    if (value->data.scalar.style != YAML_PLAIN_SCALAR_STYLE || s_parse_int (text, &number)) {
        s_error (error, error_size, path, value, "%s: expected an integer, got '%s'", full, text);
        return -1;
    }
    if (number < key->min || number > key->max) {
        s_error (error, error_size, path, value, "%s: %lld is out of range [%lld, %lld]", full,
                 (long long) number, (long long) key->min, (long long) key->max);
        return -1;
    }
    self->num [key->field] = number;
    return 0;
}

//  Walk a mapping (the root, or a section when section is not NULL).
static int
s_walk_mapping (al_config_t *self, yaml_document_t *doc, yaml_node_t *mapping, const char *section,
                bool *seen, const char *base_dir, const char *path, char *error, size_t error_size)
{
    for (yaml_node_pair_t *pair = mapping->data.mapping.pairs.start;
         pair < mapping->data.mapping.pairs.top; pair++) {
        yaml_node_t *key_node = yaml_document_get_node (doc, pair->key);
        yaml_node_t *value = yaml_document_get_node (doc, pair->value);
        assert (key_node && value);
        if (key_node->type != YAML_SCALAR_NODE) {
            s_error (error, error_size, path, key_node, "expected a key name");
            return -1;
        }
        const char *name = (const char *) key_node->data.scalar.value;
        if (!section && s_is_section (name)) {
            //  A section is seen once: its "seen" slot comes after the keys' slots.
            size_t slot = S_KEY_COUNT;
            for (size_t i = 0; i < S_SECTION_COUNT; i++)
                if (strcmp (s_sections [i], name) == 0)
                    slot = S_KEY_COUNT + i;
            if (seen [slot]) {
                s_error (error, error_size, path, key_node, "duplicate key '%s'", name);
                return -1;
            }
            seen [slot] = true;
            if (value->type != YAML_MAPPING_NODE) {
                s_error (error, error_size, path, value, "%s: expected a mapping", name);
                return -1;
            }
            if (s_walk_mapping (self, doc, value, name, seen, base_dir, path, error, error_size))
                return -1;
            continue;
        }
        const s_key_t *key = s_key_find (section, name);
        if (!key) {
            if (section)
                s_error (error, error_size, path, key_node, "unknown key '%s.%s'", section, name);
            else
                s_error (error, error_size, path, key_node, "unknown key '%s'", name);
            return -1;
        }
        size_t index = (size_t) (key - s_keys);
        if (seen [index]) {
            s_error (error, error_size, path, key_node, "duplicate key '%s'", name);
            return -1;
        }
        seen [index] = true;
        if (s_take_value (self, key, value, base_dir, path, error, error_size))
            return -1;
    }
    return 0;
}

//  store: backend sqlite (the default; the log is `database`) or postgres (the log is
//  the database `dsn` names, which must not hold a password: a passfile does).
static int
s_check_store (al_config_t *self, const char *path, char *error, size_t error_size)
{
    const char *backend = self->str [S_STORE_BACKEND];
    const char *dsn = self->str [S_STORE_DSN];
    if (backend && strcmp (backend, "sqlite") != 0 && strcmp (backend, AL_STORE_PG_BACKEND) != 0) {
        s_error (error, error_size, path, NULL, "store.backend: '%s' is not a store backend (sqlite, postgres)",
                 backend);
        return -1;
    }
    bool postgres = backend && strcmp (backend, AL_STORE_PG_BACKEND) == 0;
    if (postgres && !dsn) {
        s_error (error, error_size, path, NULL, "store.dsn: required with store.backend postgres");
        return -1;
    }
    if (!postgres && dsn) {
        s_error (error, error_size, path, NULL, "store.dsn: only for store.backend postgres");
        return -1;
    }
    char why [256];
    int password = dsn? al_store_pg_dsn_has_password (dsn, why, sizeof why): 0;
    if (password < 0) {
        s_error (error, error_size, path, NULL, "store.dsn: %s", why);
        return -1;
    }
    if (password > 0) {
        s_error (error, error_size, path, NULL, "store.dsn: holds a password; put it in a passfile "
                 "(passfile=FILE in the dsn, libpq's format) so it is never shown");
        return -1;
    }
    return 0;
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
    struct { s_str_t field; const char *format; } defaults [] = {
        { S_POLICY_DIR,      "%s/policy" },
        { S_DATABASE,        "%s/audit.db" },
        { S_ROUTER,          "ipc://%s/broker.ipc" },
        { S_PUB,             "ipc://%s/events.ipc" },
        { S_KEY_BROKER,      "%s/keys/broker.cert" },
        { S_KEY_CHECKPOINT,  "%s/keys/checkpoint.key" },
        { S_KEY_AGENTS,      "%s/keys" },
        { S_CHECKPOINT_PATH, "%s/checkpoints/latest.ckpt" },
        { S_SERVICES,        "%s/services.yaml" },
    };
    for (size_t i = 0; i < sizeof defaults / sizeof defaults [0]; i++) {
        if (self->str [defaults [i].field])
            continue;
        if (asprintf (&self->str [defaults [i].field], defaults [i].format, state) < 0) {
            self->str [defaults [i].field] = NULL;
            return -1;
        }
    }
    return 0;
}

al_config_t *
al_config_load (const char *path, char *error, size_t error_size)
{
    assert (path);
    al_config_t *self = NULL;
    FILE *file = NULL;
    char *base_dir = NULL;
    bool parser_ready = false, doc_ready = false;
    yaml_parser_t parser;
    yaml_document_t doc;
    bool seen [S_KEY_COUNT + S_SECTION_COUNT] = { false };

    file = fopen (path, "rb");
    if (!file) {
        s_error (error, error_size, path, NULL, "cannot open: %s", strerror (errno));
        goto cleanup;
    }
    self = s_alloc ();
    if (!self)
        goto nomem;
    //  The directory relative paths are resolved against.
    char *absolute = realpath (path, NULL);
    if (!absolute) {
        s_error (error, error_size, path, NULL, "cannot resolve: %s", strerror (errno));
        goto failed;
    }
    self->path = absolute;
    base_dir = strdup (absolute);
    if (!base_dir)
        goto nomem;
    char *slash = strrchr (base_dir, '/');
    assert (slash);
    if (slash == base_dir)
        slash [1] = '\0';
    else
        *slash = '\0';

    if (!yaml_parser_initialize (&parser))
        goto nomem;
    parser_ready = true;
    yaml_parser_set_input_file (&parser, file);
    if (!yaml_parser_load (&parser, &doc)) {
        if (error && error_size)
            snprintf (error, error_size, "%s:%zu:%zu: %s", path, (size_t) parser.problem_mark.line + 1,
                      (size_t) parser.problem_mark.column + 1,
                      parser.problem? parser.problem: "invalid YAML");
        goto failed;
    }
    doc_ready = true;
    yaml_node_t *root = yaml_document_get_root_node (&doc);
    if (!root) {
        s_error (error, error_size, path, NULL, "empty file: state_dir is required");
        goto failed;
    }
    if (root->type != YAML_MAPPING_NODE) {
        s_error (error, error_size, path, root, "expected a mapping of keys");
        goto failed;
    }
    if (s_walk_mapping (self, &doc, root, NULL, seen, base_dir, path, error, error_size))
        goto failed;
    if (!self->str [S_STATE_DIR]) {
        s_error (error, error_size, path, root, "state_dir is required");
        goto failed;
    }
    if (s_check_store (self, path, error, error_size))
        goto failed;
    if (s_fill_defaults (self))
        goto nomem;
    goto cleanup;

nomem:
    s_error (error, error_size, path, NULL, "out of memory");
failed:
    al_config_destroy (&self);
cleanup:
    if (doc_ready)
        yaml_document_delete (&doc);
    if (parser_ready)
        yaml_parser_delete (&parser);
    if (file)
        fclose (file);
    free (base_dir);
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
    char *temp = NULL;
    FILE *out = NULL;
    if (asprintf (&temp, "%s.tmp.%d", path, (int) getpid ()) < 0) {
        temp = NULL;
        s_error (error, error_size, path, NULL, "out of memory");
        goto cleanup;
    }
    out = fopen (temp, "w");
    if (!out) {
        s_error (error, error_size, path, NULL, "cannot write: %s", strerror (errno));
        goto cleanup;
    }
    fprintf (out, "# airlock.yaml: read by the broker, the agents and the CLI (docs/broker.md).\n");
    const char *current = NULL;
    for (size_t i = 0; i < S_KEY_COUNT; i++) {
        const s_key_t *key = &s_keys [i];
        if (key->is_string && !self->str [key->field])
            continue;               // optional and unset (metrics addresses)
        if (!key->is_string && key->field == S_HA_LEASE_MS && !self->str [S_HA_DATABASE])
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
    if (fflush (out) || fsync (fileno (out))) {
        s_error (error, error_size, path, NULL, "cannot write: %s", strerror (errno));
        goto cleanup;
    }
    if (fclose (out)) {
        out = NULL;
        s_error (error, error_size, path, NULL, "cannot write: %s", strerror (errno));
        goto cleanup;
    }
    out = NULL;
    if (chmod (temp, 0644) || rename (temp, path)) {
        s_error (error, error_size, path, NULL, "cannot write: %s", strerror (errno));
        goto cleanup;
    }
    rc = 0;
cleanup:
    if (out)
        fclose (out);
    if (rc && temp)
        unlink (temp);
    free (temp);
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
const char *al_config_broker_cert (const al_config_t *self) { assert (self); return self->str [S_KEY_BROKER]; }
const char *al_config_checkpoint_key (const al_config_t *self) { assert (self); return self->str [S_KEY_CHECKPOINT]; }
const char *al_config_agents_keys_dir (const al_config_t *self) { assert (self); return self->str [S_KEY_AGENTS]; }
const char *al_config_checkpoint_path (const al_config_t *self) { assert (self); return self->str [S_CHECKPOINT_PATH]; }
const char *al_config_services_path (const al_config_t *self) { assert (self); return self->str [S_SERVICES]; }
const char *al_config_router_endpoint (const al_config_t *self) { assert (self); return self->str [S_ROUTER]; }
const char *al_config_pub_endpoint (const al_config_t *self) { assert (self); return self->str [S_PUB]; }
const char *al_config_broker_endpoints (const al_config_t *self) { assert (self); return self->str [S_BROKERS] ? self->str [S_BROKERS] : self->str [S_ROUTER]; }
const char *al_config_ha_database (const al_config_t *self) { assert (self); return self->str [S_HA_DATABASE]; }
const char *al_config_ha_name (const al_config_t *self) { assert (self); return self->str [S_HA_NAME]; }
int al_config_ha_lease_ms (const al_config_t *self) { assert (self); return (int) self->num [S_HA_LEASE_MS]; }
const char *al_config_event_endpoints (const al_config_t *self) { assert (self); return self->str [S_EVENTS] ? self->str [S_EVENTS] : self->str [S_PUB]; }

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
    if (!process || !*process || strchr (process, '/'))
        return NULL;
    char *result = NULL;
    if (asprintf (&result, "%s/run/metrics-%s.address", self->str [S_STATE_DIR], process) < 0)
        return NULL;
    return result;
}
