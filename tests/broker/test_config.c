/*  test_config.c: al_config (airlock.yaml): defaults, strictness, paths, save and reload.

    Each test writes a file in a fresh temporary directory and loads it.
*/
#include "base/al_config.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

typedef struct {
    char dir [256];
    char path [300];
} s_fixture_t;

static int
s_setup (void **state)
{
    s_fixture_t *fx = calloc (1, sizeof *fx);
    assert_non_null (fx);
    snprintf (fx->dir, sizeof fx->dir, "/tmp/al-config-XXXXXX");
    assert_non_null (mkdtemp (fx->dir));
    snprintf (fx->path, sizeof fx->path, "%s/airlock.yaml", fx->dir);
    *state = fx;
    return 0;
}

static int
s_teardown (void **state)
{
    s_fixture_t *fx = *state;
    char command [400];
    snprintf (command, sizeof command, "rm -rf '%s'", fx->dir);
    assert_int_equal (system (command), 0);
    free (fx);
    return 0;
}

static void
s_write (s_fixture_t *fx, const char *text)
{
    FILE *file = fopen (fx->path, "w");
    assert_non_null (file);
    fputs (text, file);
    fclose (file);
}

static void
test_defaults (void **state)
{
    s_fixture_t *fx = *state;
    s_write (fx, "state_dir: /srv/airlock\n");
    char error [512] = "";
    al_config_t *config = al_config_load (fx->path, error, sizeof error);
    assert_non_null (config);
    assert_string_equal (al_config_state_dir (config), "/srv/airlock");
    assert_string_equal (al_config_policy_dir (config), "/srv/airlock/policy");
    assert_string_equal (al_config_database (config), "/srv/airlock/audit.db");
    assert_string_equal (al_config_router_endpoint (config), "ipc:///srv/airlock/broker.ipc");
    assert_string_equal (al_config_pub_endpoint (config), "ipc:///srv/airlock/events.ipc");
    assert_string_equal (al_config_broker_cert (config), "/srv/airlock/keys/broker.cert");
    assert_string_equal (al_config_checkpoint_key (config), "/srv/airlock/keys/checkpoint.key");
    assert_string_equal (al_config_checkpoint_path (config), "/srv/airlock/checkpoints/latest.ckpt");
    assert_int_equal (al_config_heartbeat_ms (config), AL_CONFIG_DEFAULT_HEARTBEAT_MS);
    assert_int_equal (al_config_max_message_bytes (config), AL_CONFIG_DEFAULT_MAX_MESSAGE_BYTES);
    assert_int_equal (al_config_batch_max (config), AL_CONFIG_DEFAULT_BATCH_MAX);
    assert_int_equal (al_config_rate_burst (config), AL_CONFIG_DEFAULT_RATE_BURST);
    char *cert = al_config_agent_cert (config, "qa");
    assert_string_equal (cert, "/srv/airlock/keys/qa.cert");
    free (cert);
    assert_null (al_config_agent_cert (config, "../x/y"));
    al_config_destroy (&config);
    assert_null (config);
}

static void
test_full_file_and_relative_paths (void **state)
{
    s_fixture_t *fx = *state;
    s_write (fx,
        "state_dir: state\n"
        "policy_dir: /etc/airlock/policy\n"
        "database: state/x.db\n"
        "endpoints:\n"
        "  router: tcp://127.0.0.1:5555\n"
        "  pub: tcp://127.0.0.1:5556\n"
        "keys:\n"
        "  broker: /k/broker.cert\n"
        "  checkpoint: /k/ck.key\n"
        "  agents: /k\n"
        "heartbeat_ms: 250\n"
        "limits:\n"
        "  max_message_bytes: 4096\n"
        "  handshake_ms: 1000\n"
        "  sndhwm: 10\n"
        "  rcvhwm: 20\n"
        "  rate_per_second: 5\n"
        "  rate_burst: 7\n"
        "  batch_max: 64\n"
        "checkpoint:\n"
        "  every_events: 10\n"
        "  every_seconds: 2\n"
        "  path: /k/latest.ckpt\n");
    char error [512] = "";
    al_config_t *config = al_config_load (fx->path, error, sizeof error);
    assert_non_null (config);
    char expected [400];
    char *real = realpath (fx->dir, NULL);
    snprintf (expected, sizeof expected, "%s/state", real);
    assert_string_equal (al_config_state_dir (config), expected);
    snprintf (expected, sizeof expected, "%s/state/x.db", real);
    assert_string_equal (al_config_database (config), expected);
    free (real);
    assert_string_equal (al_config_router_endpoint (config), "tcp://127.0.0.1:5555");
    assert_string_equal (al_config_agents_keys_dir (config), "/k");
    assert_int_equal (al_config_heartbeat_ms (config), 250);
    assert_int_equal (al_config_max_message_bytes (config), 4096);
    assert_int_equal (al_config_handshake_ms (config), 1000);
    assert_int_equal (al_config_sndhwm (config), 10);
    assert_int_equal (al_config_rcvhwm (config), 20);
    assert_int_equal (al_config_rate_per_second (config), 5);
    assert_int_equal (al_config_rate_burst (config), 7);
    assert_int_equal (al_config_batch_max (config), 64);
    assert_int_equal (al_config_checkpoint_every_events (config), 10);
    assert_int_equal (al_config_checkpoint_every_seconds (config), 2);
    assert_string_equal (al_config_checkpoint_path (config), "/k/latest.ckpt");
    al_config_destroy (&config);
}

//  Every bad file is refused with the expected "file:line:col: what" text.
static void
test_strict_errors (void **state)
{
    s_fixture_t *fx = *state;
    struct { const char *text; const char *where; const char *what; } cases [] = {
        { "state_dir: /s\nstate_dri: /x\n", ":2:1: ", "unknown key 'state_dri'" },
        { "state_dir: /s\nlimits:\n  batch: 3\n", ":3:3: ", "unknown key 'limits.batch'" },
        { "state_dir: /s\nstate_dir: /t\n", ":2:1: ", "duplicate key 'state_dir'" },
        { "state_dir: /s\nheartbeat_ms: fast\n", ":2:15: ", "expected an integer" },
        { "state_dir: /s\nheartbeat_ms: \"100\"\n", ":2:15: ", "expected an integer" },
        { "state_dir: /s\nlimits:\n  batch_max: 0\n", ":3:14: ", "out of range" },
        { "state_dir: /s\nendpoints: tcp://x\n", ":2:12: ", "expected a mapping" },
        { "state_dir: [a, b]\n", ":1:12: ", "state_dir: expected a string, found a list" },
        { "heartbeat_ms: 100\n", ":1:1: ", "state_dir is required" },
        { "state_dir: /s\n  bad: [\n", ":", "" },
        { "- a\n- b\n", ":1:1: ", "expected a mapping, found a list" },
        //  No alias, not even of a scalar (base/al_yaml.h: one rule for every file).
        { "state_dir: &s /s\npolicy_dir: *s\n", ":2:13: ", "an alias (*s): aliases are not allowed" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        s_write (fx, cases [i].text);
        char error [512] = "";
        al_config_t *config = al_config_load (fx->path, error, sizeof error);
        if (config)
            fail_msg ("case %zu loaded", i);
        assert_non_null (strstr (error, fx->path));
        if (!strstr (error, cases [i].where) || !strstr (error, cases [i].what))
            fail_msg ("case %zu: got '%s'", i, error);
    }
    char error [512] = "";
    assert_null (al_config_load ("/nonexistent/airlock.yaml", error, sizeof error));
    assert_non_null (strstr (error, "/nonexistent/airlock.yaml: cannot open"));
}

//  services: the path of services.yaml, defaulted under state_dir, resolved like the
//  other paths, written by save and read back.
static void
test_services_path (void **state)
{
    s_fixture_t *fx = *state;
    char error [512] = "";
    s_write (fx, "state_dir: /srv/airlock\n");
    al_config_t *config = al_config_load (fx->path, error, sizeof error);
    assert_non_null (config);
    assert_string_equal (al_config_services_path (config), "/srv/airlock/services.yaml");
    al_config_destroy (&config);

    s_write (fx, "state_dir: /srv/airlock\nservices: conf/services.yaml\n");
    config = al_config_load (fx->path, error, sizeof error);
    assert_non_null (config);
    char expected [400];
    char *real = realpath (fx->dir, NULL);
    assert_non_null (real);
    snprintf (expected, sizeof expected, "%s/conf/services.yaml", real);
    free (real);
    assert_string_equal (al_config_services_path (config), expected);

    //  save writes it: a reload gives the same path, not the default.
    assert_int_equal (al_config_save (config, fx->path, error, sizeof error), 0);
    al_config_t *loaded = al_config_load (fx->path, error, sizeof error);
    assert_non_null (loaded);
    assert_string_equal (al_config_services_path (loaded), expected);
    al_config_destroy (&loaded);
    al_config_destroy (&config);

    s_write (fx, "state_dir: /s\nservices: [a]\n");
    assert_null (al_config_load (fx->path, error, sizeof error));
    if (!strstr (error, ":2:11: services: expected a string, found a list"))
        fail_msg ("got '%s'", error);
    s_write (fx, "state_dir: /s\nservices: /a.yaml\nservices: /b.yaml\n");
    assert_null (al_config_load (fx->path, error, sizeof error));
    if (!strstr (error, ":3:1: duplicate key 'services'"))
        fail_msg ("got '%s'", error);
}

static void
test_new_save_load (void **state)
{
    s_fixture_t *fx = *state;
    assert_null (al_config_new ("relative/dir"));
    al_config_t *config = al_config_new ("/var/lib/air \"lock\"");
    assert_non_null (config);
    assert_string_equal (al_config_path (config), "");
    char error [512] = "";
    assert_int_equal (al_config_save (config, fx->path, error, sizeof error), 0);
    al_config_t *loaded = al_config_load (fx->path, error, sizeof error);
    assert_non_null (loaded);
    assert_string_equal (al_config_state_dir (loaded), "/var/lib/air \"lock\"");
    assert_string_equal (al_config_router_endpoint (loaded), al_config_router_endpoint (config));
    assert_string_equal (al_config_checkpoint_path (loaded), al_config_checkpoint_path (config));
    assert_string_equal (al_config_services_path (loaded), "/var/lib/air \"lock\"/services.yaml");
    assert_int_equal (al_config_rate_per_second (loaded), al_config_rate_per_second (config));
    al_config_destroy (&loaded);
    al_config_destroy (&config);
}

//  ha: the brokers' shared database is store.dsn. ha requires a postgres store, the former
//  ha.database is refused with the advice to move it, and save writes the section back.
static void
test_ha_uses_the_store_dsn (void **state)
{
    s_fixture_t *fx = *state;
    char error [1024] = "";
    s_write (fx, "state_dir: /s\nstore:\n  backend: postgres\n  dsn: \"host=db1 dbname=airlock\"\n"
                 "ha:\n  name: broker-1\n  lease_ms: 4000\n");
    al_config_t *config = al_config_load (fx->path, error, sizeof error);
    if (!config)
        fail_msg ("%s", error);
    assert_string_equal (al_config_ha_database (config), "host=db1 dbname=airlock");
    assert_string_equal (al_config_store_location (config), "host=db1 dbname=airlock");
    assert_string_equal (al_config_ha_name (config), "broker-1");
    assert_int_equal (al_config_ha_lease_ms (config), 4000);
    //  Saved and loaded again: the same store and ha section.
    char saved [400];
    snprintf (saved, sizeof saved, "%s/saved.yaml", fx->dir);
    assert_int_equal (al_config_save (config, saved, error, sizeof error), 0);
    al_config_destroy (&config);
    config = al_config_load (saved, error, sizeof error);
    if (!config)
        fail_msg ("%s", error);
    assert_string_equal (al_config_ha_database (config), "host=db1 dbname=airlock");
    assert_string_equal (al_config_ha_name (config), "broker-1");
    assert_int_equal (al_config_ha_lease_ms (config), 4000);
    al_config_destroy (&config);
    //  An empty ha mapping is failover with the defaults.
    s_write (fx, "state_dir: /s\nstore: {backend: postgres, dsn: \"host=db1\"}\nha: {}\n");
    config = al_config_load (fx->path, error, sizeof error);
    if (!config)
        fail_msg ("%s", error);
    assert_string_equal (al_config_ha_database (config), "host=db1");
    assert_null (al_config_ha_name (config));
    assert_int_equal (al_config_ha_lease_ms (config), AL_CONFIG_DEFAULT_HA_LEASE_MS);
    al_config_destroy (&config);
    //  Without ha: no shared database, even with a postgres store; save writes no ha.
    s_write (fx, "state_dir: /s\nstore: {backend: postgres, dsn: \"host=db1\"}\n");
    config = al_config_load (fx->path, error, sizeof error);
    assert_non_null (config);
    assert_null (al_config_ha_database (config));
    assert_int_equal (al_config_save (config, saved, error, sizeof error), 0);
    al_config_destroy (&config);
    FILE *file = fopen (saved, "r");
    assert_non_null (file);
    char text [4096];
    size_t size = fread (text, 1, sizeof text - 1, file);
    fclose (file);
    text [size] = 0;
    assert_null (strstr (text, "ha:"));
    assert_null (strstr (text, "lease_ms"));

    struct { const char *text; const char *expected; } cases [] = {
        //  A SQLite store (the default, or said so) with ha: refused at the ha key.
        { "state_dir: /s\nha:\n  name: b1\n",
          ":2:1: ha: requires store: {backend: postgres, dsn: ...}" },
        { "state_dir: /s\nstore:\n  backend: sqlite\nha:\n  lease_ms: 3000\n",
          ":4:1: ha: requires store: {backend: postgres, dsn: ...}" },
        //  The former key: refused with the advice, even beside a postgres store.
        { "state_dir: /s\nstore: {backend: postgres, dsn: \"host=db1\"}\nha:\n  database: \"host=db1\"\n",
          ":4:3: ha.database no longer exists: move its connection string to store.dsn" },
        { "state_dir: /s\nha:\n  database: \"host=db1\"\n  name: b1\n",
          ":3:3: ha.database no longer exists: move its connection string to store.dsn" },
        { "state_dir: /s\nstore: {backend: postgres}\nha: {}\n", "store.dsn: required with store.backend postgres" },
        { "state_dir: /s\nstore: {backend: postgres, dsn: x}\nha: {lease_ms: 10}\n", ":3:16: ha.lease_ms: 10 is out of range" },
        { "state_dir: /s\nstore: {backend: postgres, dsn: x}\nha: yes\n", ":3:5: ha: expected a mapping" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        s_write (fx, cases [i].text);
        error [0] = 0;
        config = al_config_load (fx->path, error, sizeof error);
        if (config)
            fail_msg ("case %zu loaded", i);
        assert_non_null (strstr (error, fx->path));
        if (!strstr (error, cases [i].expected))
            fail_msg ("case %zu: '%s' not in '%s'", i, cases [i].expected, error);
    }
    //  Both faults of one file are listed.
    s_write (fx, "state_dir: /s\nha:\n  database: \"host=db1\"\n");
    assert_null (al_config_load (fx->path, error, sizeof error));
    assert_non_null (strstr (error, "ha.database no longer exists"));
    assert_non_null (strstr (error, "ha: requires store"));
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_defaults, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_full_file_and_relative_paths, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_strict_errors, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_services_path, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_new_save_load, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_ha_uses_the_store_dsn, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
