/*  al_releases.c: releases as the pipeline's clients see them (see al_releases.h).

    The same reading of the orchestrator's release files and of the broker's answers as
    cmd_status.c and cmd_submit.c, returning JSON documents instead of printing, so a
    program-facing front end (`airlock mcp`) gives exactly what `airlock status --json`
    gives. Stateless; errors go to the caller's buffer.
*/
#include "agents/al_releases.h"
#include "agents/al_orchestrator.h"
#include "base/al_id.h"
#include "deploy/al_artifacts.h"
#include "deploy/al_release_record.h"
#include "deploy/al_services.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
al_releases_new_id (const char *prefix, const char *service, const char *version, char *id, size_t size)
{
    al_id_release_make (prefix, service, version, id, size);
}

bool
al_releases_id_valid (const char *id)
{
    return al_id_release_valid (id);
}

json_t *
al_releases_load (const al_config_t *config, const char *id, char *error, size_t error_size)
{
    if (!al_releases_id_valid (id)) {
        snprintf (error, error_size, "release id '%s': 1..56 of [A-Za-z0-9._-], not starting with '.'", id? id: "");
        return NULL;
    }
    char *dir = al_orchestrator_releases_dir (config);
    char path [2048];
    snprintf (path, sizeof path, "%s/%s.json", dir? dir: ".", id);
    free (dir);
    json_error_t parse;
    json_t *release = json_load_file (path, 0, &parse);
    if (!release) {
        FILE *probe = fopen (path, "r");
        if (probe) {
            fclose (probe);
            snprintf (error, error_size, "%s:%d: %s", path, parse.line, parse.text);
        }
        else
            snprintf (error, error_size, "no release %s (no %s)", id, path);
    }
    return release;
}

json_t *
al_releases_list (const al_config_t *config)
{
    json_t *list = json_array ();
    char *dir = al_orchestrator_releases_dir (config);
    DIR *handle = dir? opendir (dir): NULL;
    struct dirent *entry;
    while (handle && (entry = readdir (handle))) {
        size_t length = strlen (entry->d_name);
        if (length < 6 || strcmp (entry->d_name + length - 5, ".json") != 0)
            continue;
        char path [2048];
        snprintf (path, sizeof path, "%s/%s", dir, entry->d_name);
        json_t *release = json_load_file (path, 0, NULL);
        if (release)
            json_array_append_new (list, release);
    }
    if (handle)
        closedir (handle);
    free (dir);
    //  Newest first (insertion sort: a handful of releases).
    size_t count = json_array_size (list);
    for (size_t i = 1; i < count; i++)
        for (size_t j = i; j > 0; j--) {
            json_t *a = json_array_get (list, j - 1), *b = json_array_get (list, j);
            if (json_integer_value (json_object_get (a, "created_ms")) >= json_integer_value (json_object_get (b, "created_ms")))
                break;
            json_incref (a);
            json_array_set (list, j - 1, b);
            json_array_set_new (list, j, a);
        }
    return list;
}

//  Why a status query got no reply, into error.
static void
s_query_failed (al_agent_t *agent, const char *what, const al_agent_result_t *result, int timeout_ms,
                char *error, size_t error_size)
{
    if (result->status == AL_AGENT_DENIED)
        snprintf (error, error_size, "the broker refused the %s query: %s", what, result->reason);
    else {
        char last [512] = "", brokers [AL_AGENT_ENDPOINTS_TEXT_SIZE];
        al_agent_last_error (agent, last, sizeof last);
        snprintf (error, error_size, "no answer from the broker at %s to the %s query within %d ms%s%s",
                  al_agent_brokers (agent, brokers, sizeof brokers), what, timeout_ms, *last? ": ": "", last);
    }
}

//  The deploy journal of one deployment, or NULL with the reason in error.
static json_t *
s_journal (al_agent_t *agent, const char *deployment_id, int timeout_ms, char *error, size_t error_size)
{
    al_agent_result_t result;
    al_envelope_t *reply = al_agent_status_query (agent, "journal", deployment_id, 0, timeout_ms, &result);
    if (!reply) {
        s_query_failed (agent, "journal", &result, timeout_ms, error, error_size);
        return NULL;
    }
    json_t *root = json_loads (reply->status_reply->json, 0, NULL);
    json_t *entries = json_object_get (root, "entries");
    //  A journal the broker could not read says so in "error": no entries, not a failure.
    entries = json_is_array (entries)? json_incref (entries): json_array ();
    json_decref (root);
    al_codec_free (&reply);
    return entries;
}

json_t *
al_releases_status (const al_config_t *config, al_agent_t *agent, const char *id, int timeout_ms,
                       char *error, size_t error_size)
{
    json_t *release = al_releases_load (config, id, error, error_size);
    if (!release)
        return NULL;
    json_t *events = json_object ();
    json_t *document = NULL;
    al_envelope_t *reply = NULL;
    const struct { const char *name; al_id_part_t part; } parts [] = {
        { "staging", AL_ID_PART_STAGING }, { "production", AL_ID_PART_PRODUCTION }
    };
    char deployment [AL_ID_SIZE];
    for (size_t p = 0; p < sizeof parts / sizeof parts [0]; p++) {
        //  al_releases_load checked id: it is a valid release id.
        al_id_deployment (id, parts [p].part, deployment, sizeof deployment);
        json_t *entries = s_journal (agent, deployment, timeout_ms, error, error_size);
        if (!entries)
            goto cleanup;
        json_object_set_new (events, parts [p].name, entries);
    }
    //  deployment is now the production request's id.
    al_agent_result_t result;
    reply = al_agent_status_query (agent, "approvals", NULL, 0, timeout_ms, &result);
    if (!reply) {
        s_query_failed (agent, "approvals", &result, timeout_ms, error, error_size);
        goto cleanup;
    }
    bool awaiting = false;
    for (size_t i = 0; i < reply->status_reply->n_approvals; i++)
        awaiting |= strcmp (reply->status_reply->approvals [i]->request_id, deployment) == 0;
    document = json_pack ("{s:O, s:b, s:O}", "release", release, "awaiting_approval", awaiting, "events", events);
cleanup:
    al_codec_free (&reply);
    json_decref (events);
    json_decref (release);
    return document;
}

json_t *
al_releases_rollback_target (const al_config_t *config, const char *release, char *error, size_t error_size)
{
    json_t *root = al_releases_load (config, release, error, error_size);
    if (!root)
        return NULL;
    json_t *target = NULL;
    const char *service = json_string_value (json_object_get (root, "service"));
    char path [2048];
    if (!service || !*service || strchr (service, '/') || service [0] == '.') {
        snprintf (error, error_size, "release %s names no valid service", release);
        goto cleanup;
    }
    al_release_record_t record;
    if (!al_release_record_path_in_state (al_config_state_dir (config), service, "production", path, sizeof path)) {
        snprintf (error, error_size, "release %s names no valid service", release);
        goto cleanup;
    }
    if (al_release_record_load (path, &record, error, error_size) != 0)
        goto cleanup;
    char production [AL_ID_SIZE];
    al_id_deployment (release, AL_ID_PART_PRODUCTION, production, sizeof production);
    //  Rolling back RELEASE means: it is what runs now, and something ran before it.
    if (!record.current.present || strcmp (record.current.deployment_id, production) != 0 || !record.previous.present) {
        snprintf (error, error_size, "%s is not what runs in production for %s%s, or nothing ran before it (%s)",
                  release, service, record.current.present? "": " (nothing recorded)", path);
        goto cleanup;
    }
    const char *version = record.previous.version;
    const char *uri = record.previous.artifact_uri;
    const char *digest = record.previous.digest;
    char summary [256];
    snprintf (summary, sizeof summary, "rollback of %s to %s", release, version);
    target = json_pack ("{s:s, s:s, s:s, s:s, s:s}", "service", service, "version", version, "artifact_uri", uri,
                        "artifact_sha256", digest, "summary", summary);
cleanup:
    json_decref (root);
    return target;
}

const char *
al_releases_deny_code_name (Airlock__DenyCode code)
{
    const ProtobufCEnumValue *value = protobuf_c_enum_descriptor_get_value (&airlock__deny_code__descriptor, (int) code);
    return value? value->name: "DENY_UNSPECIFIED";
}

int
al_releases_submit_check (const al_config_t *config, const char *release_id, const char *service,
                     const char *artifact, const char *digest, char *artifact_out, size_t artifact_size,
                     char *error, size_t error_size)
{
    assert (config && release_id && service && artifact && digest && artifact_out && error);
    int rc = -1;
    al_services_t *services = NULL;
    json_t *taken = NULL;
    char *local = NULL;
    bool hex = strlen (digest) == 64;
    for (const char *c = digest; hex && *c; c++)
        hex = (*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f');
    if (!hex) {
        snprintf (error, error_size, "digest: '%.100s' is not sha256: and 64 lowercase hex digits", digest);
        return -2;
    }
    if (!al_releases_id_valid (release_id)) {
        snprintf (error, error_size, "id: '%.100s' is not a release id (1..56 of [A-Za-z0-9._-], not starting "
                  "with '.')", release_id);
        return -2;
    }
    char why [2048];
    taken = al_releases_load (config, release_id, why, sizeof why);
    if (taken) {
        const char *taken_service = json_string_value (json_object_get (taken, "service"));
        const char *taken_version = json_string_value (json_object_get (taken, "version"));
        const char *taken_state = json_string_value (json_object_get (taken, "state"));
        snprintf (error, error_size, "release id %s is taken (%.64s %.64s, %.32s): choose another id, or leave it "
                  "out for a new one", release_id, taken_service? taken_service: "?",
                  taken_version? taken_version: "?", taken_state? taken_state: "?");
        goto cleanup;
    }
    services = al_services_load (al_config_services_path (config), why, sizeof why);
    if (!services) {
        snprintf (error, error_size, "%s", why);
        rc = -2;
        goto cleanup;
    }
    if (!al_services_find (services, service)) {
        int length = snprintf (error, error_size, "service %.64s: not in %s; configured services:", service,
                               al_config_services_path (config));
        for (size_t i = 0; i < al_services_count (services) && length > 0 && (size_t) length < error_size; i++)
            length += snprintf (error + length, error_size - (size_t) length, "%s %s", i? ",": "",
                                al_services_at (services, i)->name);
        if (al_services_count (services) == 0 && length > 0 && (size_t) length < error_size)
            snprintf (error + length, error_size - (size_t) length, " none");
        goto cleanup;
    }
    snprintf (artifact_out, artifact_size, "%s", artifact);
    if (!strstr (artifact, "://") && artifact [0] != '/') {
        //  A relative path: deploy-manager would refuse it as not local, far away from here.
        char *absolute = realpath (artifact, NULL);
        if (!absolute) {
            snprintf (error, error_size, "artifact %.512s: %s", artifact, strerror (errno));
            goto cleanup;
        }
        snprintf (artifact_out, artifact_size, "%s", absolute);
        free (absolute);
    }
    local = al_artifact_local_path (artifact_out, why, sizeof why);
    if (local) {
        char actual [65];
        if (al_sha256_file_hex (local, actual, why, sizeof why) != 0) {
            snprintf (error, error_size, "artifact: %s", why);
            goto cleanup;
        }
        if (strcmp (actual, digest) != 0) {
            snprintf (error, error_size, "artifact %.512s has sha256:%s, not the digest given, sha256:%s", local,
                      actual, digest);
            goto cleanup;
        }
    }
    rc = 0;
cleanup:
    free (local);
    json_decref (taken);
    al_services_destroy (&services);
    return rc;
}
