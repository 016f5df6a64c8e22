/*  test_releases.c: agents/al_releases, what the CLI and the MCP server share.

    al_releases_status says which failure it met (no such release, or no answer from the
    broker) so that `airlock status RELEASE` reads the release file once; checked here on
    an `airlock init` state directory (tests/agents/bus) with no broker, then with a real
    one (tests/broker's broker_under_test). al_releases_rollback_new builds the candidate
    `airlock rollback` and the MCP tool request_rollback submit, from a release file and
    deploy-manager's release record written here; no processes for that part.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "bus.h"
#include "agents/al_orchestrator_release.h"
#include "agents/al_releases.h"
#include "deploy/al_release_record.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_DIGEST_OLD "1111111111111111111111111111111111111111111111111111111111111111"
#define S_DIGEST_NEW "2222222222222222222222222222222222222222222222222222222222222222"

static void
s_assert_contains (const char *text, const char *part)
{
    if (!strstr (text, part))
        fail_msg ("'%s' does not contain '%s'", text, part);
}

//  The orchestrator's file of release id (service may be "" to leave it out).
static void
s_save_release (const char *state_dir, const char *id, const char *service, const char *version)
{
    json_t *document = json_pack ("{s:s, s:s, s:s, s:s, s:I}", "release_id", id, "version", version,
                                  "state", "DONE", "type", "standard", "created_ms", (json_int_t) 1000);
    if (*service)
        json_object_set_new (document, "service", json_string (service));
    char error [1024];
    if (al_orchestrator_release_save (state_dir, document, error, sizeof error) != 0)
        fail_msg ("save %s: %s", id, error);
    json_decref (document);
}

//  deploy-manager's production record of service: current is deployment current_id at
//  version 2.0; previous (when with_previous) version 1.0 at /opt/SERVICE-1.0.
static void
s_save_record (const char *state_dir, const char *service, const char *current_id, bool with_previous)
{
    al_release_record_t record;
    memset (&record, 0, sizeof record);
    record.current.present = true;
    snprintf (record.current.version, sizeof record.current.version, "2.0");
    snprintf (record.current.digest, sizeof record.current.digest, "%s", S_DIGEST_NEW);
    snprintf (record.current.artifact_uri, sizeof record.current.artifact_uri, "/opt/%s-2.0", service);
    snprintf (record.current.deployment_id, sizeof record.current.deployment_id, "%s", current_id);
    record.current.instances = 2;
    if (with_previous) {
        record.previous.present = true;
        snprintf (record.previous.version, sizeof record.previous.version, "1.0");
        snprintf (record.previous.digest, sizeof record.previous.digest, "%s", S_DIGEST_OLD);
        snprintf (record.previous.artifact_uri, sizeof record.previous.artifact_uri, "/opt/%s-1.0", service);
        snprintf (record.previous.deployment_id, sizeof record.previous.deployment_id, "rel-old-prod");
        record.previous.instances = 2;
    }
    char path [2048], error [1024];
    assert_true (al_release_record_path_in_state (state_dir, service, "production", path, sizeof path));
    if (al_release_record_save (path, service, "production", &record, error, sizeof error) != 0)
        fail_msg ("record: %s", error);
}

//  ---- al_releases_status: which failure ----------------------------------------------

static void
test_status_failures (void **state)
{
    (void) state;
    bus_t *bus = bus_new (NULL);
    assert_non_null (bus);
    char error [2048] = "";
    al_agent_t *agent = al_agent_new_for_role (bus->config, "auditor", false, error, sizeof error);
    if (!agent)
        fail_msg ("agent: %s", error);
    al_releases_status_failure_t failure = AL_RELEASES_STATUS_OK;

    //  No release file: the release is unknown, whatever the broker (there is none).
    assert_null (al_releases_status (bus->config, agent, "rel-none", 300, &failure, error, sizeof error));
    assert_int_equal (failure, AL_RELEASES_STATUS_NO_RELEASE);
    s_assert_contains (error, "no release rel-none");
    //  Not even a release id: unknown too.
    failure = AL_RELEASES_STATUS_OK;
    assert_null (al_releases_status (bus->config, agent, "../etc", 300, &failure, error, sizeof error));
    assert_int_equal (failure, AL_RELEASES_STATUS_NO_RELEASE);
    //  A file that does not parse is no release the orchestrator holds.
    s_save_release (bus->dir, "rel-broken", "api", "1.0");
    char path [2048];
    assert_int_equal (al_orchestrator_release_path (bus->dir, "rel-broken", path, sizeof path, error, sizeof error), 0);
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fputs ("{\"release_id\": ", file);
    fclose (file);
    failure = AL_RELEASES_STATUS_OK;
    assert_null (al_releases_status (bus->config, agent, "rel-broken", 300, &failure, error, sizeof error));
    assert_int_equal (failure, AL_RELEASES_STATUS_NO_RELEASE);
    s_assert_contains (error, "not JSON");

    //  The release exists and no broker answers: the other failure.
    s_save_release (bus->dir, "rel-a", "api", "1.0");
    failure = AL_RELEASES_STATUS_OK;
    assert_null (al_releases_status (bus->config, agent, "rel-a", 300, &failure, error, sizeof error));
    assert_int_equal (failure, AL_RELEASES_STATUS_NO_ANSWER);
    s_assert_contains (error, "no answer from the broker");
    //  failure may be NULL (the console does not need it).
    assert_null (al_releases_status (bus->config, agent, "rel-a", 300, NULL, error, sizeof error));
    al_agent_destroy (&agent);

    //  With a broker: the document, and OK.
    assert_int_equal (bus_broker_start (bus), 0);
    agent = bus_agent (bus, "auditor");
    assert_non_null (agent);
    failure = AL_RELEASES_STATUS_NO_ANSWER;
    json_t *document = al_releases_status (bus->config, agent, "rel-a", 30000, &failure, error, sizeof error);
    if (!document)
        fail_msg ("status: %s", error);
    assert_int_equal (failure, AL_RELEASES_STATUS_OK);
    json_t *release = json_object_get (document, "release");
    assert_string_equal (json_string_value (json_object_get (release, "release_id")), "rel-a");
    assert_true (json_is_false (json_object_get (document, "awaiting_approval")));
    assert_true (json_is_array (json_object_get (json_object_get (document, "events"), "staging")));
    assert_true (json_is_array (json_object_get (json_object_get (document, "events"), "production")));
    json_decref (document);
    //  An unknown release is still that, with the broker up.
    failure = AL_RELEASES_STATUS_OK;
    assert_null (al_releases_status (bus->config, agent, "rel-none", 30000, &failure, error, sizeof error));
    assert_int_equal (failure, AL_RELEASES_STATUS_NO_RELEASE);
    al_agent_destroy (&agent);
    bus_destroy (&bus);
}

//  ---- al_releases_rollback_new ----------------------------------------------------------

static void
test_rollback_candidate (void **state)
{
    (void) state;
    char dir [] = "/tmp/al-releases-XXXXXX";
    assert_non_null (mkdtemp (dir));
    al_config_t *config = al_config_new (dir);
    assert_non_null (config);
    char error [2048] = "";

    //  rel-b (api 2.0) runs in production; 1.0 ran before it.
    s_save_release (dir, "rel-b", "api", "2.0");
    s_save_record (dir, "api", "rel-b-prod", true);
    al_releases_rollback_t *rollback = al_releases_rollback_new (config, "rel-b", error, sizeof error);
    if (!rollback)
        fail_msg ("rollback: %s", error);
    const Airlock__ReleaseCandidate *candidate = &rollback->candidate;
    assert_int_equal (candidate->deployment_type, AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_ROLLBACK);
    assert_string_equal (candidate->service, "api");
    assert_string_equal (candidate->version, "1.0");
    assert_string_equal (candidate->artifact_uri, "/opt/api-1.0");
    assert_string_equal (candidate->artifact_sha256, S_DIGEST_OLD);
    assert_string_equal (candidate->summary, "rollback of rel-b to 1.0");
    assert_false (candidate->skip_staging);
    assert_int_equal (candidate->n_changes, 0);
    //  A new id of its own, rb-SERVICE-VERSION-<6 hex>, that the orchestrator accepts.
    assert_int_equal (strncmp (rollback->release_id, "rb-api-1.0-", 11), 0);
    assert_int_equal (strlen (rollback->release_id), 11 + 6);
    assert_true (al_releases_id_valid (rollback->release_id));
    //  The candidate packs (every required string is set).
    assert_true (airlock__release_candidate__get_packed_size (candidate) > 0);
    al_releases_rollback_t *again = al_releases_rollback_new (config, "rel-b", error, sizeof error);
    assert_non_null (again);
    assert_string_not_equal (again->release_id, rollback->release_id);
    al_releases_rollback_destroy (&again);
    al_releases_rollback_destroy (&rollback);
    assert_null (rollback);
    al_releases_rollback_destroy (&rollback);          // NULL-safe

    //  Refusals, each with its reason.
    assert_null (al_releases_rollback_new (config, "rel-none", error, sizeof error));
    s_assert_contains (error, "no release rel-none");
    //  rel-c is not what runs in production.
    s_save_release (dir, "rel-c", "api", "3.0");
    assert_null (al_releases_rollback_new (config, "rel-c", error, sizeof error));
    s_assert_contains (error, "rel-c is not what runs in production for api");
    //  Nothing ran before it.
    s_save_release (dir, "rel-d", "web", "2.0");
    s_save_record (dir, "web", "rel-d-prod", false);
    assert_null (al_releases_rollback_new (config, "rel-d", error, sizeof error));
    s_assert_contains (error, "nothing ran before it");
    //  Nothing recorded for the service at all.
    s_save_release (dir, "rel-e", "db", "2.0");
    assert_null (al_releases_rollback_new (config, "rel-e", error, sizeof error));
    s_assert_contains (error, "(nothing recorded)");
    //  A release file naming no service, or one that is no plain name.
    s_save_release (dir, "rel-f", "", "2.0");
    assert_null (al_releases_rollback_new (config, "rel-f", error, sizeof error));
    s_assert_contains (error, "release rel-f names no valid service");
    s_save_release (dir, "rel-g", "../api", "2.0");
    assert_null (al_releases_rollback_new (config, "rel-g", error, sizeof error));
    s_assert_contains (error, "release rel-g names no valid service");

    al_config_destroy (&config);
    char command [256];
    snprintf (command, sizeof command, "rm -rf '%s'", dir);
    assert_int_equal (system (command), 0);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_status_failures),
        cmocka_unit_test (test_rollback_candidate),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
