/*  store_test_util.c: helpers shared by the store tests (see store_test_util.h). */
#include "store_test_util.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <ftw.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void
st_event_make (st_event_t *holder, uint64_t index)
{
    static const char *roles [] = { "orchestrator", "qa", "deploy-manager", "monitor" };
    static const char *types [] = { "DeployRequest", "QaReport", "StepEvent", "SignalSample" };
    memset (holder, 0, sizeof *holder);
    snprintf (holder->sender, sizeof holder->sender, "agent-%u", (unsigned) (index % 7));
    snprintf (holder->message_id, sizeof holder->message_id, "msg-%llu", (unsigned long long) index);
    snprintf (holder->deployment_id, sizeof holder->deployment_id, "dep-%llu", (unsigned long long) (index / 50));
    snprintf (holder->reason, sizeof holder->reason, index % 5? "": "role qa may not send this");
    for (size_t i = 0; i < sizeof holder->envelope; i++)
        holder->envelope [i] = (uint8_t) (index * 31 + i * 7);
    holder->event = (al_store_event_t) {
        .time_ms = 1790000000000ULL + index,
        .sender = holder->sender,
        .role = roles [index % 4],
        .type = types [index % 4],
        .message_id = holder->message_id,
        .deployment_id = holder->deployment_id,
        .environment = index % 3? "staging": "production",
        .decision = index % 5? AL_STORE_ACCEPTED: AL_STORE_DENIED,
        .reason = holder->reason,
        .envelope = holder->envelope,
        .envelope_size = sizeof holder->envelope,
    };
}

char *
st_dir_new (void)
{
    const char *base = getenv ("TMPDIR");
    char *dir = NULL;
    if (asprintf (&dir, "%s/airlock-store-XXXXXX", base && *base? base: "/tmp") < 0)
        return NULL;
    if (!mkdtemp (dir)) {
        free (dir);
        return NULL;
    }
    return dir;
}

static int
s_remove_entry (const char *path, const struct stat *info, int flag, struct FTW *ftw)
{
    (void) info; (void) flag; (void) ftw;
    return remove (path);
}

void
st_dir_remove (char **dir_p)
{
    if (*dir_p)
        nftw (*dir_p, s_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free (*dir_p);
    *dir_p = NULL;
}

char *
st_path (const char *dir, const char *name)
{
    char *path = NULL;
    if (asprintf (&path, "%s/%s", dir, name) < 0)
        return NULL;
    return path;
}

int
st_copy_file (const char *from, const char *to)
{
    FILE *in = fopen (from, "rb");
    FILE *out = fopen (to, "wb");
    int rc = in && out? 0: -1;
    char buffer [65536];
    size_t got;
    while (rc == 0 && (got = fread (buffer, 1, sizeof buffer, in)) > 0)
        if (fwrite (buffer, 1, got, out) != got)
            rc = -1;
    if (in)
        fclose (in);
    if (out && fclose (out) != 0)
        rc = -1;
    return rc;
}

al_store_t *
st_open (const char *path)
{
    char error [512];
    al_store_t *store = al_store_open ("sqlite", path, NULL, error, sizeof error);
    if (!store)
        fail_msg ("open %s: %s", path, error);
    return store;
}

void
st_append_range (al_store_t *store, uint64_t first, uint64_t count, uint64_t batch)
{
    st_event_t holder;
    uint64_t done = 0;
    while (done < count) {
        assert_int_equal (al_store_begin (store), AL_STORE_OK);
        for (uint64_t i = 0; i < batch && done < count; i++, done++) {
            al_store_append_result_t result;
            st_event_make (&holder, first + done);
            al_store_status_t status = al_store_append (store, &holder.event, &result);
            if (status != AL_STORE_OK)
                fail_msg ("append %llu: %s: %s", (unsigned long long) (first + done),
                          al_store_strerror (status), al_store_error (store));
        }
        assert_int_equal (al_store_commit (store), AL_STORE_OK);
    }
}

void
st_sql_exec (const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal (sqlite3_open (path, &db), SQLITE_OK);
    char *message = NULL;
    if (sqlite3_exec (db, sql, NULL, NULL, &message) != SQLITE_OK)
        fail_msg ("%s: %s", sql, message);
    sqlite3_close (db);
}

uint64_t
st_append_with_side_effects (al_store_t *store, uint64_t index, const uint8_t approval [16])
{
    st_event_t holder;
    st_event_make (&holder, index);
    al_store_append_result_t result;
    assert_int_equal (al_store_append (store, &holder.event, &result), AL_STORE_OK);
    assert_int_equal (al_store_delivery_add (store, "deploy-manager", result.sequence), AL_STORE_OK);
    uint64_t id = 0;
    assert_int_equal (al_store_outbox_add (store, result.sequence, "webhook", (const uint8_t *) "{}", 2, &id),
                      AL_STORE_OK);
    assert_true (id > 0);
    if (approval)
        assert_int_equal (al_store_approval_consume (store, approval, 16, result.sequence), AL_STORE_OK);
    assert_int_equal (al_store_journal_add (store, "dep-1", "backup", "after", "ok", "12 MB"), AL_STORE_OK);
    return result.sequence;
}

int
st_journal_collect (const al_store_journal_entry_t *entry, void *arg)
{
    st_journal_seen_t *seen = arg;
    if (seen->count < 8) {
        snprintf (seen->steps [seen->count], sizeof seen->steps [0], "%s/%s/%s/%s", entry->step, entry->phase,
                  entry->status, entry->detail);
        seen->sequences [seen->count] = entry->sequence;
    }
    seen->count++;
    return 0;
}
