/*  test_instances.c: the instance registry (deploy/al_instances), its only reader and
    writer: paths, a write read back both ways, file_sd.json beside it, and the two
    trust levels (to stop: our file, real pids; to reach: an id and a port).
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "deploy/al_instances.h"
#include "deploy_test_util.h"

typedef struct {
    char dir [128];
    char path [256];
} s_fixture_t;

static int
s_setup (void **state)
{
    s_fixture_t *f = calloc (1, sizeof *f);
    assert_non_null (f);
    snprintf (f->dir, sizeof f->dir, "/tmp/al-instances-XXXXXX");
    assert_non_null (mkdtemp (f->dir));
    snprintf (f->path, sizeof f->path, "%s/instances.json", f->dir);
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    s_fixture_t *f = (s_fixture_t *) *state;
    dtu_remove_tree (f->dir);
    free (f);
    return 0;
}

static void
s_write_text (const char *path, const char *text, mode_t mode)
{
    unlink (path);
    int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    assert_true (fd >= 0);
    assert_int_equal (write (fd, text, strlen (text)), (ssize_t) strlen (text));
    assert_int_equal (fchmod (fd, mode), 0);
    close (fd);
}

static void
test_paths (void **state)
{
    (void) state;
    char path [256];
    assert_true (al_instances_path ("/s/deploy", "demo", "staging", path, sizeof path));
    assert_string_equal (path, "/s/deploy/drivers/demo/staging/instances.json");
    assert_true (al_instances_dir ("/s/deploy", "demo", "staging", path, sizeof path));
    assert_string_equal (path, "/s/deploy/drivers/demo/staging");
    assert_true (al_instances_path_in_state ("/s", "demo", "production", path, sizeof path));
    assert_string_equal (path, "/s/deploy/drivers/demo/production/instances.json");
    //  Names that would leave the directory, and paths that do not fit.
    assert_false (al_instances_path ("/s/deploy", "../etc", "staging", path, sizeof path));
    assert_false (al_instances_path ("/s/deploy", "demo", "a/b", path, sizeof path));
    assert_false (al_instances_path ("/s/deploy", ".hidden", "staging", path, sizeof path));
    assert_false (al_instances_path ("/s/deploy", "demo", "staging", path, 20));
}

static void
test_write_read (void **state)
{
    s_fixture_t *f = (s_fixture_t *) *state;
    al_instance_record_t records [2];
    memset (records, 0, sizeof records);
    for (int i = 0; i < 2; i++) {
        snprintf (records [i].id, sizeof records [i].id, "demo-1.0-%d", i);
        snprintf (records [i].service, sizeof records [i].service, "demo");
        snprintf (records [i].version, sizeof records [i].version, "1.0");
        snprintf (records [i].set, sizeof records [i].set, "default");
        snprintf (records [i].environment, sizeof records [i].environment, "staging");
        records [i].instance = i;
        records [i].port = 41000 + i;
        records [i].pid = getpid ();
        records [i].pgid = getpid ();
        records [i].start_time = 1234 + (unsigned) i;
    }
    char error [512] = "";
    assert_int_equal (al_instances_write (f->path, "127.0.0.1", records, 2, error, sizeof error), 0);

    //  Read back to stop (our file, mode 0600 from mkostemp) and to reach.
    for (int use = AL_INSTANCES_TO_STOP; use <= AL_INSTANCES_TO_REACH; use++) {
        al_instance_record_t *read = NULL;
        size_t count = 0;
        bool found = false;
        if (al_instances_read (f->path, (al_instances_use_t) use, &read, &count, &found, error, sizeof error) != 0)
            fail_msg ("read: %s", error);
        assert_true (found);
        assert_int_equal (count, 2);
        for (size_t i = 0; i < 2; i++) {
            assert_string_equal (read [i].id, records [i].id);
            assert_string_equal (read [i].service, "demo");
            assert_string_equal (read [i].version, "1.0");
            assert_true (read [i].has_version);
            assert_string_equal (read [i].set, "default");
            assert_int_equal (read [i].port, records [i].port);
            assert_int_equal (read [i].pid, getpid ());
            assert_int_equal (read [i].pgid, getpid ());
            assert_int_equal (read [i].start_time, records [i].start_time);
            assert_int_equal (read [i].instance, (int) i);
        }
        free (read);
    }
    //  file_sd.json beside it: one target group per instance with its labels.
    char sd_path [300];
    snprintf (sd_path, sizeof sd_path, "%s/file_sd.json", f->dir);
    json_error_t json_error;
    json_t *targets = json_load_file (sd_path, 0, &json_error);
    assert_non_null (targets);
    assert_int_equal (json_array_size (targets), 2);
    json_t *group = json_array_get (targets, 1);
    assert_string_equal (json_string_value (json_array_get (json_object_get (group, "targets"), 0)), "127.0.0.1:41001");
    json_t *labels = json_object_get (group, "labels");
    assert_string_equal (json_string_value (json_object_get (labels, "environment")), "staging");
    assert_string_equal (json_string_value (json_object_get (labels, "instance_id")), "demo-1.0-1");
    json_decref (targets);

    //  Nothing runs: both files say so.
    assert_int_equal (al_instances_write (f->path, "127.0.0.1", NULL, 0, error, sizeof error), 0);
    al_instance_record_t *read = NULL;
    size_t count = 7;
    assert_int_equal (al_instances_read (f->path, AL_INSTANCES_TO_STOP, &read, &count, NULL, error, sizeof error), 0);
    assert_int_equal (count, 0);
    free (read);
    targets = json_load_file (sd_path, 0, &json_error);
    assert_int_equal (json_array_size (targets), 0);
    json_decref (targets);

    //  The unsynced write (the process driver's spawn gate): the registry only, read
    //  back as written; file_sd.json is left for the durable write that follows.
    assert_int_equal (al_instances_write_unsynced (f->path, records, 1, error, sizeof error), 0);
    read = NULL;
    assert_int_equal (al_instances_read (f->path, AL_INSTANCES_TO_STOP, &read, &count, NULL, error, sizeof error), 0);
    assert_int_equal (count, 1);
    assert_string_equal (read [0].id, records [0].id);
    assert_int_equal (read [0].start_time, records [0].start_time);
    free (read);
    targets = json_load_file (sd_path, 0, &json_error);
    assert_int_equal (json_array_size (targets), 0);
    json_decref (targets);
}

//  Read must fail with reason in the error, naming the file.
static void
s_refused (s_fixture_t *f, al_instances_use_t use, const char *text, mode_t mode, const char *reason)
{
    s_write_text (f->path, text, mode);
    al_instance_record_t *read = NULL;
    size_t count = 0;
    char error [1024] = "";
    assert_int_equal (al_instances_read (f->path, use, &read, &count, NULL, error, sizeof error), -1);
    assert_null (read);
    if (!strstr (error, f->path) || !strstr (error, reason))
        fail_msg ("error \"%s\" names neither %s nor \"%s\"", error, f->path, reason);
}

static void
test_trust (void **state)
{
    s_fixture_t *f = (s_fixture_t *) *state;
    al_instance_record_t *read = NULL;
    size_t count = 9;
    bool found = true;
    char error [1024] = "";
    //  Missing and blank files hold nothing.
    assert_int_equal (al_instances_read (f->path, AL_INSTANCES_TO_STOP, &read, &count, &found, error, sizeof error), 0);
    assert_false (found);
    assert_int_equal (count, 0);
    s_write_text (f->path, " \n", 0600);
    assert_int_equal (al_instances_read (f->path, AL_INSTANCES_TO_REACH, &read, &count, &found, error, sizeof error), 0);
    assert_true (found);
    assert_int_equal (count, 0);

    const char *reachable = "{\"format\": 1, \"instances\": [{\"id\": \"a\", \"port\": 8080, \"pid\": 1}]}";
    //  Reachable but not to be signalled: pid 1 and no group.
    s_refused (f, AL_INSTANCES_TO_STOP, reachable, 0600, "instances[0].pid");
    s_write_text (f->path, reachable, 0600);
    assert_int_equal (al_instances_read (f->path, AL_INSTANCES_TO_REACH, &read, &count, NULL, error, sizeof error), 0);
    assert_int_equal (count, 1);
    assert_int_equal (read [0].port, 8080);
    assert_false (read [0].has_version);
    free (read);
    //  A file others may write never names what to stop; anyone may still read ports.
    const char *stoppable = "{\"format\": 1, \"instances\": [{\"id\": \"a\", \"pid\": 12, \"pgid\": 12, "
                            "\"start_time\": 5, \"port\": 9000}]}";
    s_refused (f, AL_INSTANCES_TO_STOP, stoppable, 0622, "only we can write");
    assert_int_equal (al_instances_read (f->path, AL_INSTANCES_TO_REACH, &read, &count, NULL, error, sizeof error), 0);
    assert_int_equal (count, 1);
    free (read);
    //  What nobody may read.
    s_refused (f, AL_INSTANCES_TO_REACH, "{\"format\": 1, \"instances\": [{\"id\": \"a\"}]}", 0600, "instances[0].port");
    s_refused (f, AL_INSTANCES_TO_REACH, "{\"format\": 1, \"instances\": [{\"port\": 80}]}", 0600, "string id");
    s_refused (f, AL_INSTANCES_TO_REACH, "{\"format\": 2, \"instances\": []}", 0600, "not an instance registry");
    s_refused (f, AL_INSTANCES_TO_REACH, "{\"format\": 1, \"instances\": [", 0600, ":1:");
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_paths),
        cmocka_unit_test_setup_teardown (test_write_read, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_trust, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
