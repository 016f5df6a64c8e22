/*  test_file_sd.c: the process driver's file_sd.json (Prometheus file-based service
    discovery), written beside its instance registry.

    Real demo-service instances are started and stopped through the process driver;
    after every step file_sd.json must name exactly the running instances (address and
    labels as list_instances reports them), be [] when none runs, and leave no
    temporary file behind. test_prometheus proves that a real Prometheus reads it.
*/
#include <dirent.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "deploy/al_driver.h"
#include "../drivers/driver_test_util.h"

typedef struct {
    char *dir;
    char evidence [4096];
    char state_file [4096];
    char file_sd [4096];
    const char *command [6];
    al_driver_config_t config;
    al_driver_t *d;
} s_fixture_t;

static int
s_setup (void **state)
{
    dt_become_subreaper ();
    s_fixture_t *self = calloc (1, sizeof (s_fixture_t));
    assert_non_null (self);
    self->dir = dt_temp_dir ("al-file-sd");
    snprintf (self->evidence, sizeof self->evidence, "%s/evidence", self->dir);
    snprintf (self->state_file, sizeof self->state_file, "%s/drivers/checkout/production/instances.json",
              self->dir);
    snprintf (self->file_sd, sizeof self->file_sd, "%s/drivers/checkout/production/file_sd.json", self->dir);
    self->command [0] = dt_demo_service ();
    self->command [1] = "--port";
    self->command [2] = "{{port}}";
    self->command [3] = "--version";
    self->command [4] = "{{version}}";
    self->config.command = self->command;
    self->config.evidence_dir = self->evidence;
    self->config.state_file = self->state_file;
    self->config.stop_timeout_ms = 5000;
    self->config.probe_timeout_ms = 2000;
    *state = self;
    return 0;
}

static int
s_teardown (void **state)
{
    s_fixture_t *self = *state;
    al_driver_destroy (&self->d);
    dt_reap_all (2000);
    dt_remove_tree (self->dir);
    free (self->dir);
    free (self);
    return 0;
}

static json_t *
s_load (const char *path)
{
    json_error_t error;
    json_t *root = json_load_file (path, JSON_REJECT_DUPLICATES, &error);
    if (!root)
        fail_msg ("%s: %s (line %d)", path, error.text, error.line);
    return root;
}

//  file_sd.json names exactly the running instances of the driver, in its format.
static void
s_check_file_sd (s_fixture_t *self, const char *environment, size_t expected)
{
    al_driver_instance_t instances [8];
    size_t count = 0;
    char error [512];
    assert_int_equal (al_driver_list_instances (self->d, instances, 8, &count, error, sizeof error), AL_DRIVER_OK);
    json_t *root = s_load (self->file_sd);
    assert_true (json_is_array (root));
    assert_int_equal (json_array_size (root), expected);
    size_t running = 0;
    for (size_t i = 0; i < count && i < 8; i++) {
        if (!instances [i].running)
            continue;
        json_t *group = json_array_get (root, running++);
        assert_non_null (group);
        assert_int_equal (json_object_size (group), 2);
        json_t *targets = json_object_get (group, "targets");
        json_t *labels = json_object_get (group, "labels");
        assert_true (json_is_array (targets) && json_array_size (targets) == 1);
        char target [64];
        snprintf (target, sizeof target, "127.0.0.1:%d", instances [i].port);
        assert_string_equal (json_string_value (json_array_get (targets, 0)), target);
        assert_int_equal (json_object_size (labels), 4);
        assert_string_equal (json_string_value (json_object_get (labels, "service")), "checkout");
        assert_string_equal (json_string_value (json_object_get (labels, "environment")), environment);
        assert_string_equal (json_string_value (json_object_get (labels, "version")), instances [i].version);
        assert_string_equal (json_string_value (json_object_get (labels, "instance_id")), instances [i].id);
    }
    assert_int_equal (running, expected);
    json_decref (root);
    //  Nothing but the two files: no temporary file left behind.
    char state_dir [4096];
    snprintf (state_dir, sizeof state_dir, "%s/drivers/checkout/production", self->dir);
    DIR *dir = opendir (state_dir);
    assert_non_null (dir);
    struct dirent *entry;
    while ((entry = readdir (dir)))
        if (entry->d_name [0] != '.' && strcmp (entry->d_name, "instances.json") != 0
        &&  strcmp (entry->d_name, "file_sd.json") != 0)
            fail_msg ("unexpected file %s in %s", entry->d_name, state_dir);
    closedir (dir);
}

static void
s_start (s_fixture_t *self, const char *env, const char *version, int index, al_driver_instance_t *info)
{
    char error [2048];
    al_driver_spec_t spec = { .vars = { .service = "checkout", .version = version, .artifact = "",
                                        .digest = "", .env = env }, .instance = index };
    if (al_driver_start_instance (self->d, &spec, info, error, sizeof error) != AL_DRIVER_OK)
        fail_msg ("start: %s", error);
}

static void
test_file_sd_follows_instances (void **state)
{
    s_fixture_t *self = *state;
    char error [2048];
    self->d = al_driver_open ("process", &self->config, error, sizeof error);
    if (!self->d)
        fail_msg ("open: %s", error);
    //  Open takes the registry over: both files exist, empty.
    s_check_file_sd (self, "production", 0);
    al_driver_instance_t first, second;
    s_start (self, "production", "1.0.0", 0, &first);
    s_check_file_sd (self, "production", 1);
    s_start (self, "production", "1.1.0", 1, &second);
    s_check_file_sd (self, "production", 2);
    al_driver_stop_t stopped;
    assert_int_equal (al_driver_stop_instance (self->d, first.id, 0, &stopped, error, sizeof error), AL_DRIVER_OK);
    s_check_file_sd (self, "production", 1);
    json_t *root = s_load (self->file_sd);
    assert_string_equal (json_string_value (json_object_get (json_object_get (json_array_get (root, 0), "labels"),
                                                             "instance_id")), second.id);
    json_decref (root);
    //  Closing stops everything: the file says so.
    al_driver_destroy (&self->d);
    root = s_load (self->file_sd);
    assert_true (json_is_array (root) && json_array_size (root) == 0);
    json_decref (root);
}

static void
test_file_sd_without_environment (void **state)
{
    s_fixture_t *self = *state;
    char error [2048];
    self->d = al_driver_open ("process", &self->config, error, sizeof error);
    if (!self->d)
        fail_msg ("open: %s", error);
    al_driver_instance_t info;
    s_start (self, NULL, "2.0.0", 0, &info);
    s_check_file_sd (self, "", 1);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_file_sd_follows_instances, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_file_sd_without_environment, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
