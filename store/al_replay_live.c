/*  al_replay_live.c: replayed deployments compared with the live state on disk (orchestrator releases, deploy receipts).

    Part of the replay; see store/al_replay.c for its rules and store/al_replay_int.h
    for how its files divide the work.
*/
#include "store/al_replay_int.h"
#include "base/al_file.h"
#include "base/al_id.h"
#include "base/al_paths.h"

//  ---- the live state -----------------------------------------------------------------------

static void
s_disagree (al_replay_live_t *report, al_replay_disagreement_fn *fn, void *arg, const char *subject,
            const char *format, ...) __attribute__ ((format (printf, 5, 6)));

static void
s_disagree (al_replay_live_t *report, al_replay_disagreement_fn *fn, void *arg, const char *subject,
            const char *format, ...)
{
    char what [1024];
    va_list args;
    va_start (args, format);
    vsnprintf (what, sizeof what, format, args);
    va_end (args);
    report->disagreements++;
    if (fn)
        fn (subject, what, arg);
}

//  deploy-manager's receipt (deploy/al_done.h writes it): the file is read here, not
//  through deploy's API, because store/ is below deploy/ (docs/design.md); its path
//  comes from base/al_paths, as deploy's does.
static void
s_compare_receipt (const al_replay_deployment_t *d, const char *state_dir, al_replay_disagreement_fn *fn,
                   void *arg, al_replay_live_t *report)
{
    report->receipts++;
    char dir [4096], path [4200], error [4400];
    if (al_paths_deploy_evidence (state_dir, d->id, dir, sizeof dir, error, sizeof error) != 0) {
        s_disagree (report, fn, arg, d->id, "not a deployment id deploy-manager keeps evidence for (%s)", error);
        return;
    }
    snprintf (path, sizeof path, "%s/deploy_receipt.json", dir);
    size_t size = 0;
    char *data = al_file_read (path, S_MAX_EVIDENCE, &size, error, sizeof error);
    if (!data) {
        s_disagree (report, fn, arg, d->id, "the log holds a receipt (row %llu) but deploy-manager's evidence "
                    "cannot be read: %s", (unsigned long long) d->receipt_sequence, error);
        return;
    }
    uint8_t digest [crypto_hash_sha256_BYTES];
    char hex [crypto_hash_sha256_BYTES * 2 + 1];
    crypto_hash_sha256 (digest, (const uint8_t *) data, size);
    sodium_bin2hex (hex, sizeof hex, digest, sizeof digest);
    if (strcmp (hex, d->receipt_sha256) != 0)
        s_disagree (report, fn, arg, d->id, "%s has SHA-256 %s but the log's receipt (row %llu) says %s",
                    path, hex, (unsigned long long) d->receipt_sequence, d->receipt_sha256);
    json_error_t json_error;
    json_t *root = json_loadb ((const char *) data, size, 0, &json_error);
    free (data);
    if (!root) {
        s_disagree (report, fn, arg, d->id, "%s:%d: not JSON: %s", path, json_error.line, json_error.text);
        return;
    }
    const char *outcome = json_string_value (json_object_get (root, "outcome"));
    const char *id = json_string_value (json_object_get (root, "deployment_id"));
    const char *replayed = al_replay_state_name (d->state);
    if (!outcome || strcmp (outcome, replayed) != 0)
        s_disagree (report, fn, arg, d->id, "deploy_receipt.json says outcome %s, the log says %s",
                    outcome? outcome: "(none)", replayed);
    if (!id || strcmp (id, d->id) != 0)
        s_disagree (report, fn, arg, d->id, "deploy_receipt.json is about deployment %s", id? id: "(none)");
    json_decref (root);
}

//  The orchestrator state a replayed deployment implies, or NULL when it implies none.
static const char *
s_release_state (const al_replay_deployment_t *deployment)
{
    if (!deployment)
        return NULL;
    switch (deployment->state) {
        case AL_REPLAY_SUCCEEDED:   return "DONE";
        case AL_REPLAY_ROLLED_BACK: return "ROLLED_BACK";
        case AL_REPLAY_FAILED:      return "FAILED";
        default:                    return NULL;
    }
}

static void
s_compare_release (const al_replay_t *self, const char *path, const char *file_id,
                   al_replay_disagreement_fn *fn, void *arg, al_replay_live_t *report)
{
    report->releases++;
    json_error_t error;
    json_t *release = json_load_file (path, 0, &error);
    if (!release) {
        s_disagree (report, fn, arg, file_id, "%s:%d: not JSON: %s", path, error.line, error.text);
        return;
    }
    const char *id = json_string_value (json_object_get (release, "release_id"));
    const char *state = json_string_value (json_object_get (release, "state"));
    id = id? id: file_id;
    state = state? state: "";
    //  A release id that is not valid has no deployments (al_id makes them from valid
    //  ones only): "" is found in no log.
    char production_id [AL_ID_SIZE], staging_id [AL_ID_SIZE];
    al_id_deployment (id, AL_ID_PART_PRODUCTION, production_id, sizeof production_id);
    al_id_deployment (id, AL_ID_PART_STAGING, staging_id, sizeof staging_id);
    const al_replay_deployment_t *production = *production_id? al_replay_find (self, production_id): NULL;
    const al_replay_deployment_t *staging = *staging_id? al_replay_find (self, staging_id): NULL;
    const char *expected = s_release_state (production);
    if (expected) {
        if (strcmp (state, expected) != 0)
            s_disagree (report, fn, arg, id, "release file says %s, the log says production deployment %s %s "
                        "(expected %s)", state, production_id, al_replay_state_name (production->state), expected);
    }
    else
    if (strcmp (state, "DONE") == 0 || strcmp (state, "ROLLED_BACK") == 0)
        s_disagree (report, fn, arg, id, "release file says %s, but the log holds no %s receipt for %s%s%s",
                    state, strcmp (state, "DONE") == 0? "succeeded": "rolled_back", *production_id? production_id: id,
                    production? ", which is ": "", production? al_replay_state_name (production->state): "");
    else
    if (staging && (staging->state == AL_REPLAY_FAILED || staging->state == AL_REPLAY_ROLLED_BACK)
    &&  strcmp (state, "FAILED") != 0)
        s_disagree (report, fn, arg, id, "release file says %s, but its staging deployment %s %s",
                    state, staging_id, al_replay_state_name (staging->state));
    json_decref (release);
}

static int
s_name_compare (const void *a, const void *b)
{
    return strcmp (*(char *const *) a, *(char *const *) b);
}

void
al_replay_compare_live (const al_replay_t *self, const char *state_dir,
                        al_replay_disagreement_fn *fn, void *arg, al_replay_live_t *report)
{
    assert (self && state_dir && report);
    memset (report, 0, sizeof *report);
    for (size_t i = 0; i < self->count; i++)
        if (self->deployments [i]->view.receipt_sequence)
            s_compare_receipt (&self->deployments [i]->view, state_dir, fn, arg, report);
    //  The orchestrator's release files (agents/al_orchestrator.c writes them): read
    //  here for the same reason, at the path base/al_paths names.
    char releases_dir [4096], error [4400];
    if (al_paths_get (state_dir, AL_PATH_ORCHESTRATOR_RELEASES_DIR, releases_dir, sizeof releases_dir,
                      error, sizeof error) != 0) {
        s_disagree (report, fn, arg, "orchestrator", "%s", error);
        return;
    }
    DIR *dir = opendir (releases_dir);
    if (!dir)
        return;
    //  In name order, so that the report reads the same every time.
    char **names = NULL;
    size_t count = 0, capacity = 0;
    struct dirent *item;
    while ((item = readdir (dir))) {
        size_t length = strlen (item->d_name);
        if (length <= 5 || item->d_name [0] == '.' || strcmp (item->d_name + length - 5, ".json") != 0)
            continue;
        if (count == capacity) {
            capacity = capacity? capacity * 2: 32;
            char **grown = realloc (names, capacity * sizeof *grown);
            if (!grown)
                break;
            names = grown;
        }
        if (!(names [count] = strdup (item->d_name)))
            break;
        count++;
    }
    closedir (dir);
    if (count)
        qsort (names, count, sizeof *names, s_name_compare);
    for (size_t i = 0; i < count; i++) {
        char path [4096 + 1024], id [1024];
        snprintf (path, sizeof path, "%s/%.1000s", releases_dir, names [i]);
        snprintf (id, sizeof id, "%.*s", (int) (strlen (names [i]) - 5), names [i]);
        s_compare_release (self, path, id, fn, arg, report);
        free (names [i]);
    }
    free (names);
}
