/*  al_releases.c: releases as the pipeline's clients see them (see al_releases.h).

    The reading of the orchestrator's release files and of the broker's answers, and the
    making of a rollback candidate, that cmd_status.c, cmd_submit.c and the MCP server
    share: they return data (JSON documents, a ReleaseCandidate) instead of printing, so
    a program-facing front end (`airlock mcp`) gives exactly what `airlock status
    --json` gives and submits exactly what `airlock rollback` submits. Stateless; errors
    go to the caller's buffer.
*/
#include "agents/al_releases.h"
#include "agents/al_orchestrator_release.h"
#include "base/al_id.h"
#include "deploy/al_artifacts.h"
#include "deploy/al_release_record.h"
#include "deploy/al_services.h"

#include <assert.h>
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
    al_orchestrator_release_t *release = al_orchestrator_release_load (al_config_state_dir (config), id,
                                                                       error, error_size);
    if (!release)
        return NULL;
    json_t *document = json_incref (release->document);
    al_orchestrator_release_destroy (&release);
    return document;
}

typedef struct {
    const char *state_dir;
    al_orchestrator_release_t **items;
    size_t count;
    size_t capacity;
} s_release_list_t;

//  One release file for the list; one that does not read is left out of it (the list is
//  what the orchestrator knows; `airlock status ID` and `airlock audit replay` say what
//  is wrong with a file).
static void
s_list_add (const char *id, void *arg)
{
    s_release_list_t *list = (s_release_list_t *) arg;
    char error [512];
    al_orchestrator_release_t *release = al_orchestrator_release_load (list->state_dir, id, error, sizeof error);
    if (!release)
        return;
    if (list->count == list->capacity) {
        size_t capacity = list->capacity? list->capacity * 2: 16;
        al_orchestrator_release_t **grown = realloc (list->items, capacity * sizeof *grown);
        if (!grown) {
            al_orchestrator_release_destroy (&release);
            return;
        }
        list->items = grown;
        list->capacity = capacity;
    }
    list->items [list->count++] = release;
}

json_t *
al_releases_list (const al_config_t *config)
{
    json_t *list = json_array ();
    s_release_list_t releases = { .state_dir = al_config_state_dir (config) };
    char error [512];
    al_orchestrator_release_each (releases.state_dir, s_list_add, &releases, error, sizeof error);
    //  Newest first (by created_ms), ties in name order: an insertion sort (stable; a
    //  handful of releases).
    for (size_t i = 1; i < releases.count; i++)
        for (size_t j = i; j > 0 && releases.items [j - 1]->created_ms < releases.items [j]->created_ms; j--) {
            al_orchestrator_release_t *swap = releases.items [j - 1];
            releases.items [j - 1] = releases.items [j];
            releases.items [j] = swap;
        }
    for (size_t i = 0; i < releases.count; i++) {
        json_array_append (list, releases.items [i]->document);
        al_orchestrator_release_destroy (&releases.items [i]);
    }
    free (releases.items);
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
                    al_releases_status_failure_t *failure, char *error, size_t error_size)
{
    al_releases_status_failure_t ignored;
    if (!failure)
        failure = &ignored;
    *failure = AL_RELEASES_STATUS_NO_RELEASE;
    json_t *release = al_releases_load (config, id, error, error_size);
    if (!release)
        return NULL;
    //  From here on only the broker's answers can be missing.
    *failure = AL_RELEASES_STATUS_NO_ANSWER;
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
    if (document)
        *failure = AL_RELEASES_STATUS_OK;
    else
        snprintf (error, error_size, "release %s: out of memory", id);
cleanup:
    al_codec_free (&reply);
    json_decref (events);
    json_decref (release);
    return document;
}

al_releases_rollback_t *
al_releases_rollback_new (const al_config_t *config, const char *release, char *error, size_t error_size)
{
    assert (config && release && error);
    al_orchestrator_release_t *file = al_orchestrator_release_load (al_config_state_dir (config), release,
                                                                    error, error_size);
    if (!file)
        return NULL;
    al_releases_rollback_t *self = NULL;
    const char *service = file->service;
    char path [2048];
    al_release_record_t record;
    if (!*service || !al_release_record_path_in_state (al_config_state_dir (config), service, "production",
                                                       path, sizeof path)) {
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
    self = (al_releases_rollback_t *) calloc (1, sizeof *self);
    assert (self);
    airlock__release_candidate__init (&self->candidate);
    Airlock__ReleaseCandidate *candidate = &self->candidate;
    candidate->deployment_type = AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_ROLLBACK;
    candidate->service = strdup (service);
    candidate->version = strdup (record.previous.version);
    candidate->artifact_uri = strdup (record.previous.artifact_uri);
    candidate->artifact_sha256 = strdup (record.previous.digest);
    if (asprintf (&candidate->summary, "rollback of %s to %s", release, record.previous.version) < 0)
        candidate->summary = NULL;
    assert (candidate->service && candidate->version && candidate->artifact_uri && candidate->artifact_sha256
            && candidate->summary);
    al_releases_new_id ("rb", candidate->service, candidate->version, self->release_id, sizeof self->release_id);
cleanup:
    al_orchestrator_release_destroy (&file);
    return self;
}

void
al_releases_rollback_destroy (al_releases_rollback_t **self_p)
{
    assert (self_p);
    al_releases_rollback_t *self = *self_p;
    if (!self)
        return;
    free (self->candidate.service);
    free (self->candidate.version);
    free (self->candidate.artifact_uri);
    free (self->candidate.artifact_sha256);
    free (self->candidate.summary);
    free (self);
    *self_p = NULL;
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
    al_orchestrator_release_t *taken = NULL;
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
    taken = al_orchestrator_release_load (al_config_state_dir (config), release_id, why, sizeof why);
    if (taken) {
        snprintf (error, error_size, "release id %s is taken (%.64s %.64s, %.32s): choose another id, or leave it "
                  "out for a new one", release_id, *taken->service? taken->service: "?",
                  *taken->version? taken->version: "?", *taken->state? taken->state: "?");
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
    al_orchestrator_release_destroy (&taken);
    al_services_destroy (&services);
    return rc;
}
