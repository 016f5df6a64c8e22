/*  al_replay_live.c: replayed deployments compared with the live state (orchestrator
    release files, deploy-manager's receipts).

    Part of the replay; see store/al_replay.c for its rules and store/al_replay_int.h
    for how its files divide the work. The files are read by their owners, through the
    source the caller hands in (al_replay_live_source_t); this file only compares, and
    reports everything it cannot compare.
*/
#include "store/al_replay_int.h"
#include "base/al_id.h"

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

static void
s_compare_receipt (const al_replay_deployment_t *d, const al_replay_live_source_t *source,
                   al_replay_disagreement_fn *fn, void *arg, al_replay_live_t *report)
{
    report->receipts++;
    al_replay_receipt_t receipt;
    memset (&receipt, 0, sizeof receipt);
    char error [4400] = "";
    int rc = source->load_receipt (source->self, d->id, &receipt, error, sizeof error);
    if (rc != 0 && rc != -2) {
        s_disagree (report, fn, arg, d->id, "the log holds a receipt (row %llu) but deploy-manager's evidence "
                    "cannot be read: %s", (unsigned long long) d->receipt_sequence, error);
        return;
    }
    if (strcmp (receipt.sha256, d->receipt_sha256) != 0)
        s_disagree (report, fn, arg, d->id, "%s has SHA-256 %s but the log's receipt (row %llu) says %s",
                    receipt.path, receipt.sha256, (unsigned long long) d->receipt_sequence, d->receipt_sha256);
    if (rc == -2) {
        s_disagree (report, fn, arg, d->id, "%s", error);
        return;
    }
    const char *replayed = al_replay_state_name (d->state);
    if (strcmp (receipt.outcome, replayed) != 0)
        s_disagree (report, fn, arg, d->id, "deploy_receipt.json says outcome %s, the log says %s",
                    *receipt.outcome? receipt.outcome: "(none)", replayed);
    if (strcmp (receipt.deployment_id, d->id) != 0)
        s_disagree (report, fn, arg, d->id, "deploy_receipt.json is about deployment %s",
                    *receipt.deployment_id? receipt.deployment_id: "(none)");
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
s_compare_release (const al_replay_t *self, const al_replay_live_source_t *source, const char *file_id,
                   al_replay_disagreement_fn *fn, void *arg, al_replay_live_t *report)
{
    report->releases++;
    al_replay_release_t release;
    memset (&release, 0, sizeof release);
    char error [4400] = "";
    if (source->load_release (source->self, file_id, &release, error, sizeof error) != 0) {
        s_disagree (report, fn, arg, file_id, "%s", error);
        return;
    }
    const char *id = *release.release_id? release.release_id: file_id;
    const char *state = release.state;
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
}

//  The release ids list_releases hands out, kept until they are compared.
typedef struct {
    char **ids;
    size_t count;
    size_t capacity;
    bool out_of_memory;
} s_release_ids_t;

static void
s_collect_release (const char *release_id, void *arg)
{
    s_release_ids_t *list = (s_release_ids_t *) arg;
    if (list->out_of_memory)
        return;
    if (list->count == list->capacity) {
        size_t capacity = list->capacity? list->capacity * 2: 32;
        char **grown = realloc (list->ids, capacity * sizeof *grown);
        if (!grown) {
            list->out_of_memory = true;
            return;
        }
        list->ids = grown;
        list->capacity = capacity;
    }
    if (!(list->ids [list->count] = strdup (release_id)))
        list->out_of_memory = true;
    else
        list->count++;
}

void
al_replay_compare_live (const al_replay_t *self, const al_replay_live_source_t *source,
                        al_replay_disagreement_fn *fn, void *arg, al_replay_live_t *report)
{
    assert (self && source && report);
    assert (source->list_releases && source->load_release && source->load_receipt);
    memset (report, 0, sizeof *report);
    for (size_t i = 0; i < self->count; i++)
        if (self->deployments [i]->view.receipt_sequence)
            s_compare_receipt (&self->deployments [i]->view, source, fn, arg, report);
    s_release_ids_t list = { 0 };
    char error [4400] = "";
    if (source->list_releases (source->self, s_collect_release, &list, error, sizeof error) != 0)
        s_disagree (report, fn, arg, "orchestrator", "the release files cannot be listed: %s", error);
    else
    if (list.out_of_memory)
        s_disagree (report, fn, arg, "orchestrator", "the release files cannot be listed: out of memory");
    else
        for (size_t i = 0; i < list.count; i++)
            s_compare_release (self, source, list.ids [i], fn, arg, report);
    for (size_t i = 0; i < list.count; i++)
        free (list.ids [i]);
    free (list.ids);
}
