/*  test_release_record.c: deploy-manager's release record (deploy/al_release_record),
    its only reader and writer: paths, a record written and read back, a missing record
    (nothing deployed) and records that must not be trusted.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "deploy/al_release_record.h"
#include "deploy_test_util.h"

static void
test_paths (void **state)
{
    (void) state;
    char path [256];
    assert_true (al_release_record_path ("/s/deploy", "demo", "production", path, sizeof path));
    assert_string_equal (path, "/s/deploy/releases/demo/production.json");
    assert_true (al_release_record_path_in_state ("/s", "demo", "staging", path, sizeof path));
    assert_string_equal (path, "/s/deploy/releases/demo/staging.json");
    assert_false (al_release_record_path ("/s/deploy", "../x", "production", path, sizeof path));
    assert_false (al_release_record_path ("/s/deploy", "demo", "", path, sizeof path));
    assert_false (al_release_record_path ("/s/deploy", "demo", "production", path, 16));
}

static void
test_save_load (void **state)
{
    (void) state;
    char dir [] = "/tmp/al-record-XXXXXX";
    assert_non_null (mkdtemp (dir));
    char path [256];
    assert_true (al_release_record_path (dir, "demo", "production", path, sizeof path));
    char error [512] = "";
    al_release_record_t record;
    //  Nothing deployed yet: no file, no release, no error.
    assert_int_equal (al_release_record_load (path, &record, error, sizeof error), 0);
    assert_false (record.current.present);
    assert_false (record.previous.present);

    memset (&record, 0, sizeof record);
    record.current.present = true;
    snprintf (record.current.version, sizeof record.current.version, "2.0");
    snprintf (record.current.digest, sizeof record.current.digest, "%064d", 2);
    snprintf (record.current.artifact_uri, sizeof record.current.artifact_uri, "file:///a/2.tar");
    snprintf (record.current.deployment_id, sizeof record.current.deployment_id, "rel-demo-2-prod");
    record.current.instances = 3;
    record.previous.present = true;
    snprintf (record.previous.version, sizeof record.previous.version, "1.0");
    snprintf (record.previous.digest, sizeof record.previous.digest, "%064d", 1);
    snprintf (record.previous.artifact_uri, sizeof record.previous.artifact_uri, "file:///a/1.tar");
    snprintf (record.previous.deployment_id, sizeof record.previous.deployment_id, "rel-demo-1-prod");
    if (al_release_record_save (path, "demo", "production", &record, error, sizeof error) != 0)
        fail_msg ("save: %s", error);
    al_release_record_t read;
    assert_int_equal (al_release_record_load (path, &read, error, sizeof error), 0);
    assert_true (read.current.present);
    assert_string_equal (read.current.version, "2.0");
    assert_string_equal (read.current.deployment_id, "rel-demo-2-prod");
    assert_int_equal (read.current.instances, 3);
    assert_true (read.previous.present);
    assert_string_equal (read.previous.version, "1.0");
    assert_string_equal (read.previous.digest, record.previous.digest);
    assert_string_equal (read.previous.artifact_uri, "file:///a/1.tar");
    char *text = dtu_read (path);
    assert_non_null (text);
    assert_non_null (strstr (text, "\"format\": \"airlock-release-record-v1\""));
    assert_non_null (strstr (text, "\"environment\": \"production\""));
    free (text);

    //  A record without a current release, or one that does not parse, is an error.
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fputs ("{\"current\": null}", file);
    fclose (file);
    assert_int_equal (al_release_record_load (path, &read, error, sizeof error), -1);
    assert_non_null (strstr (error, "no current release"));
    assert_non_null (strstr (error, path));
    file = fopen (path, "w");
    assert_non_null (file);
    fputs ("{\"current\": ", file);
    fclose (file);
    assert_int_equal (al_release_record_load (path, &read, error, sizeof error), -1);
    assert_non_null (strstr (error, ":1:"));
    dtu_remove_tree (dir);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_paths),
        cmocka_unit_test (test_save_load),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
