/*  test_cli_release.c: `airlock status RELEASE` and `airlock rollback RELEASE`, the built
    binary against a real broker (tests/broker's broker_under_test) on an `airlock init`
    state directory (tests/agents/bus).

    status RELEASE reads the release file once (al_releases_status says which failure it
    met): an unknown release is exit 1 with "no release ID", a broker that registers the
    client but does not answer its queries (here: a policy without the common
    StatusQuery grant, so it refuses them) is exit 2, naming the query. rollback submits
    the candidate agents/al_releases builds (al_releases_rollback_new): the new id is
    printed and the broker acknowledges it; a release that is not what runs in
    production is exit 1 with the reason.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "bus.h"
#include "cli_test.h"
#include "agents/al_orchestrator_release.h"
#include "agents/al_releases.h"
#include "deploy/al_release_record.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
s_assert_contains (const char *text, const char *part)
{
    if (!text || !strstr (text, part))
        fail_msg ("'%s' does not contain '%s'", text? text: "(null)", part);
}

//  Run `airlock ARGS... --config BUS` (exited); stdout in *out, stderr in *err.
static al_child_t *
s_airlock (bus_t *bus, const char *const *args, const char **out, const char **err)
{
    return cli_test_run (args, bus->config_path, out, err);
}

static void
s_save_release (bus_t *bus, const char *id, const char *service, const char *version)
{
    json_t *document = json_pack ("{s:s, s:s, s:s, s:s, s:s, s:I}", "release_id", id, "service", service,
                                  "version", version, "state", "DONE", "type", "standard", "created_ms",
                                  (json_int_t) 1000);
    char error [1024];
    if (al_orchestrator_release_save (bus->dir, document, error, sizeof error) != 0)
        fail_msg ("save %s: %s", id, error);
    json_decref (document);
}

//  Replace the line `from` of the state directory's roles.yaml with `to`.
static void
s_edit_roles (bus_t *bus, const char *from, const char *to)
{
    char path [600];
    snprintf (path, sizeof path, "%s/roles.yaml", al_config_policy_dir (bus->config));
    FILE *file = fopen (path, "r");
    assert_non_null (file);
    char *text = calloc (1, 1 << 20);
    assert_non_null (text);
    size_t length = fread (text, 1, (1 << 20) - 1, file);
    fclose (file);
    text [length] = 0;
    char *at = strstr (text, from);
    assert_non_null (at);
    file = fopen (path, "w");
    assert_non_null (file);
    fprintf (file, "%.*s%s%s", (int) (at - text), text, to, at + strlen (from));
    fclose (file);
    free (text);
}

static void
test_status_unknown_release (void **state)
{
    (void) state;
    bus_t *bus = bus_new (NULL);
    assert_non_null (bus);
    assert_int_equal (bus_broker_start (bus), 0);
    const char *out, *err;
    const char *args [] = { "status", "rel-none", "--timeout", "30", NULL };
    al_child_t *child = s_airlock (bus, args, &out, &err);
    assert_int_equal (al_child_exit_code (child), 1);
    s_assert_contains (err, "airlock status: no release rel-none");
    al_child_destroy (&child);

    //  The same broker answers for a release it holds: exit 0, the document.
    s_save_release (bus, "rel-a", "api", "1.0");
    const char *known [] = { "status", "rel-a", "--timeout", "30", "--json", NULL };
    child = s_airlock (bus, known, &out, &err);
    if (al_child_exit_code (child) != 0)
        fail_msg ("status rel-a: %s", err);
    json_t *document = json_loads (out, 0, NULL);
    assert_non_null (document);
    assert_string_equal (json_string_value (json_object_get (json_object_get (document, "release"), "release_id")),
                         "rel-a");
    json_decref (document);
    al_child_destroy (&child);
    bus_destroy (&bus);
}

static void
test_status_queries_unanswered (void **state)
{
    (void) state;
    bus_t *bus = bus_new (NULL);
    assert_non_null (bus);
    s_edit_roles (bus, "  - types: [Register, Heartbeat, DeliveryAck, StatusQuery]\n",
                  "  - types: [Register, Heartbeat, DeliveryAck]\n");
    assert_int_equal (bus_broker_start (bus), 0);
    s_save_release (bus, "rel-a", "api", "1.0");
    const char *out, *err;
    const char *args [] = { "status", "rel-a", "--timeout", "30", NULL };
    al_child_t *child = s_airlock (bus, args, &out, &err);
    assert_int_equal (al_child_exit_code (child), 2);
    s_assert_contains (err, "airlock status: the broker refused the journal query");
    al_child_destroy (&child);
    //  An unknown release is still 1: the file is read before any query.
    const char *unknown [] = { "status", "rel-none", "--timeout", "30", NULL };
    child = s_airlock (bus, unknown, &out, &err);
    assert_int_equal (al_child_exit_code (child), 1);
    s_assert_contains (err, "airlock status: no release rel-none");
    al_child_destroy (&child);
    bus_destroy (&bus);
}

static void
test_rollback (void **state)
{
    (void) state;
    bus_t *bus = bus_new (NULL);
    assert_non_null (bus);
    assert_int_equal (bus_broker_start (bus), 0);
    s_save_release (bus, "rel-b", "api", "2.0");
    al_release_record_t record;
    memset (&record, 0, sizeof record);
    record.current.present = record.previous.present = true;
    snprintf (record.current.version, sizeof record.current.version, "2.0");
    snprintf (record.current.digest, sizeof record.current.digest, "%064d", 2);
    snprintf (record.current.artifact_uri, sizeof record.current.artifact_uri, "/opt/api-2.0");
    snprintf (record.current.deployment_id, sizeof record.current.deployment_id, "rel-b-prod");
    snprintf (record.previous.version, sizeof record.previous.version, "1.0");
    snprintf (record.previous.digest, sizeof record.previous.digest, "%064d", 1);
    snprintf (record.previous.artifact_uri, sizeof record.previous.artifact_uri, "/opt/api-1.0");
    snprintf (record.previous.deployment_id, sizeof record.previous.deployment_id, "rel-a-prod");
    char path [2048], error [1024];
    assert_true (al_release_record_path_in_state (bus->dir, "api", "production", path, sizeof path));
    if (al_release_record_save (path, "api", "production", &record, error, sizeof error) != 0)
        fail_msg ("record: %s", error);

    const char *out, *err;
    const char *args [] = { "rollback", "rel-b", "--json", NULL };
    al_child_t *child = s_airlock (bus, args, &out, &err);
    if (al_child_exit_code (child) != 0)
        fail_msg ("rollback rel-b: %s", err);
    json_t *reply = json_loads (out, 0, NULL);
    assert_non_null (reply);
    const char *id = json_string_value (json_object_get (reply, "release_id"));
    assert_non_null (id);
    assert_int_equal (strncmp (id, "rb-api-1.0-", 11), 0);
    assert_true (al_releases_id_valid (id));
    assert_true (json_integer_value (json_object_get (reply, "audit_sequence")) > 0);
    json_decref (reply);
    al_child_destroy (&child);

    //  Text output names what was submitted.
    const char *text [] = { "rollback", "rel-b", NULL };
    child = s_airlock (bus, text, &out, &err);
    assert_int_equal (al_child_exit_code (child), 0);
    s_assert_contains (out, "submitted api 1.0 as release rb-api-1.0-");
    al_child_destroy (&child);

    //  rel-c is not what runs in production: 1, with the reason.
    s_save_release (bus, "rel-c", "api", "3.0");
    const char *refused [] = { "rollback", "rel-c", NULL };
    child = s_airlock (bus, refused, &out, &err);
    assert_int_equal (al_child_exit_code (child), 1);
    s_assert_contains (err, "airlock rollback: rel-c is not what runs in production for api");
    al_child_destroy (&child);
    bus_destroy (&bus);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_status_unknown_release),
        cmocka_unit_test (test_status_queries_unanswered),
        cmocka_unit_test (test_rollback),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
