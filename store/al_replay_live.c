/*  al_replay_live.c: replayed deployments compared with the live state on disk (orchestrator releases, deploy receipts).

    Part of the replay; see store/al_replay.c for its rules and store/al_replay_int.h
    for how its files divide the work.
*/
#include "store/al_replay_int.h"

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

//  A deployment id usable as one path component (deploy-manager accepts no other).
static bool
s_safe_name (const char *name)
{
    return *name && strcmp (name, ".") != 0 && strcmp (name, "..") != 0 && !strchr (name, '/');
}

//  Read a whole (small) file; caller frees. NULL with errno set.
static uint8_t *
s_read_file (const char *path, size_t *size_p)
{
    FILE *file = fopen (path, "rb");
    if (!file)
        return NULL;
    uint8_t *data = NULL;
    size_t size = 0, capacity = 0;
    while (true) {
        if (size == capacity) {
            if (capacity >= S_MAX_EVIDENCE) {
                errno = EFBIG;
                goto failed;
            }
            capacity = capacity? capacity * 2: 8192;
            uint8_t *grown = realloc (data, capacity + 1);
            if (!grown)
                goto failed;
            data = grown;
        }
        size_t got = fread (data + size, 1, capacity - size, file);
        size += got;
        if (got == 0) {
            if (ferror (file))
                goto failed;
            break;
        }
    }
    fclose (file);
    data [size] = 0;
    *size_p = size;
    return data;
failed: {
        int saved = errno;
        fclose (file);
        free (data);
        errno = saved? saved: EIO;
        return NULL;
    }
}

static void
s_compare_receipt (const al_replay_deployment_t *d, const char *deploy_dir, al_replay_disagreement_fn *fn,
                   void *arg, al_replay_live_t *report)
{
    report->receipts++;
    if (!s_safe_name (d->id)) {
        s_disagree (report, fn, arg, d->id, "not a deployment id deploy-manager keeps evidence for");
        return;
    }
    char path [4096];
    snprintf (path, sizeof path, "%s/.artifacts/deployment/%s/deploy_receipt.json", deploy_dir, d->id);
    size_t size = 0;
    uint8_t *data = s_read_file (path, &size);
    if (!data) {
        s_disagree (report, fn, arg, d->id, "the log holds a receipt (row %llu) but deploy-manager's evidence "
                    "%s cannot be read: %s", (unsigned long long) d->receipt_sequence, path, strerror (errno));
        return;
    }
    uint8_t digest [crypto_hash_sha256_BYTES];
    char hex [crypto_hash_sha256_BYTES * 2 + 1];
    crypto_hash_sha256 (digest, data, size);
    sodium_bin2hex (hex, sizeof hex, digest, sizeof digest);
    if (strcmp (hex, d->receipt_sha256) != 0)
        s_disagree (report, fn, arg, d->id, "%s has SHA-256 %s but the log's receipt (row %llu) says %s",
                    path, hex, (unsigned long long) d->receipt_sequence, d->receipt_sha256);
    json_error_t error;
    json_t *root = json_loadb ((const char *) data, size, 0, &error);
    free (data);
    if (!root) {
        s_disagree (report, fn, arg, d->id, "%s:%d: not JSON: %s", path, error.line, error.text);
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
    char name [512];
    snprintf (name, sizeof name, "%.400s-prod", id);
    const al_replay_deployment_t *production = al_replay_find (self, name);
    snprintf (name, sizeof name, "%.400s-stg", id);
    const al_replay_deployment_t *staging = al_replay_find (self, name);
    const char *expected = s_release_state (production);
    if (expected) {
        if (strcmp (state, expected) != 0)
            s_disagree (report, fn, arg, id, "release file says %s, the log says production deployment %s-prod %s "
                        "(expected %s)", state, id, al_replay_state_name (production->state), expected);
    }
    else
    if (strcmp (state, "DONE") == 0 || strcmp (state, "ROLLED_BACK") == 0)
        s_disagree (report, fn, arg, id, "release file says %s, but the log holds no %s receipt for %s-prod%s%s",
                    state, strcmp (state, "DONE") == 0? "succeeded": "rolled_back", id,
                    production? ", which is ": "", production? al_replay_state_name (production->state): "");
    else
    if (staging && (staging->state == AL_REPLAY_FAILED || staging->state == AL_REPLAY_ROLLED_BACK)
    &&  strcmp (state, "FAILED") != 0)
        s_disagree (report, fn, arg, id, "release file says %s, but its staging deployment %s-stg %s",
                    state, id, al_replay_state_name (staging->state));
    json_decref (release);
}

static int
s_name_compare (const void *a, const void *b)
{
    return strcmp (*(char *const *) a, *(char *const *) b);
}

void
al_replay_compare_live (const al_replay_t *self, const char *deploy_dir, const char *releases_dir,
                        al_replay_disagreement_fn *fn, void *arg, al_replay_live_t *report)
{
    assert (self && report);
    memset (report, 0, sizeof *report);
    if (deploy_dir)
        for (size_t i = 0; i < self->count; i++)
            if (self->deployments [i]->view.receipt_sequence)
                s_compare_receipt (&self->deployments [i]->view, deploy_dir, fn, arg, report);
    DIR *dir = releases_dir? opendir (releases_dir): NULL;
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
        char path [4096], id [1024];
        snprintf (path, sizeof path, "%s/%s", releases_dir, names [i]);
        snprintf (id, sizeof id, "%.*s", (int) (strlen (names [i]) - 5), names [i]);
        s_compare_release (self, path, id, fn, arg, report);
        free (names [i]);
    }
    free (names);
}
