/*  deploy_test_util.c: fixtures shared by the deployer and deploy-manager tests. */
#include "deploy_test_util.h"
#include "deploy/al_artifacts.h"
#include "deploy/al_probe.h"
#include "deploy/al_qa_reports.h"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <ftw.h>
#include <jansson.h>
#include <pthread.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void
dtu_policy (const char *dir, const char *policy_dir)
{
    const char *source = getenv ("AIRLOCK_SOURCE_DIR");
    assert_non_null (source);
    char command [2048];
    snprintf (command, sizeof command, "mkdir -p '%s' && cp '%s'/policies/default/*.yaml '%s'/",
              policy_dir, source, policy_dir);
    assert_int_equal (system (command), 0);
    (void) dir;
    dtu_open_calendar (policy_dir);
}

void
dtu_open_calendar (const char *policy_dir)
{
    char path [1024];
    snprintf (path, sizeof path, "%s/constraints.yaml", policy_dir);
    char *text = dtu_read (path);
    assert_non_null (text);
    char *calendar = strstr (text, "\ncalendar:");
    assert_non_null (calendar);
    calendar [1] = 0;
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fprintf (file, "%scalendar:\n  timezone: UTC\n  applies_to: [production]\n  windows: []\n"
                   "  freezes:\n    weekdays: []\n    holidays: []\n    month_end: off\n", text);
    fclose (file);
    free (text);
}

void
dtu_artifact (const char *dir, const char *name, const char *version, const char *extra,
              char *path, size_t path_size, char sha256 [65])
{
    const char *binary = getenv ("AIRLOCK_BINARY_DIR");
    assert_non_null (binary);
    char art [1024];
    snprintf (art, sizeof art, "%s/art", dir);
    mkdir (art, 0700);
    snprintf (path, path_size, "%s/%s.sh", art, name);
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fprintf (file, "#!/bin/sh\n"
                   "[ -n \"$SERVICE_TOKEN\" ] && echo \"starting with token $SERVICE_TOKEN\"\n"
                   "exec '%s/demo-service' --version '%s' %s \"$@\"\n", binary, version, extra? extra: "");
    fclose (file);
    assert_int_equal (chmod (path, 0755), 0);
    char error [256];
    assert_int_equal (al_sha256_file_hex (path, sha256, error, sizeof error), 0);
}

void
dtu_count (const char *deploy_state, const char *service, const char *env, const char *version,
           int *with_version, int *total)
{
    char path [1024];
    snprintf (path, sizeof path, "%s/drivers/%s/%s/instances.json", deploy_state, service, env);
    *with_version = 0;
    *total = 0;
    json_t *root = json_load_file (path, 0, NULL);
    if (!root)
        return;
    json_t *instances = json_object_get (root, "instances");
    size_t index;
    json_t *instance;
    json_array_foreach (instances, index, instance) {
        (*total)++;
        int port = (int) json_integer_value (json_object_get (instance, "port"));
        char url [128];
        snprintf (url, sizeof url, "http://127.0.0.1:%d/healthz", port);
        al_probe_result_t probe;
        if (!al_probe_http (url, 2000, &probe))
            continue;
        const char *recorded = json_string_value (json_object_get (instance, "version"));
        if (recorded && strcmp (recorded, version) == 0)
            (*with_version)++;
    }
    json_decref (root);
}

static const char *s_needle;
static bool s_found;

static int
s_search (const char *path, const struct stat *info, int flag, struct FTW *ftw)
{
    (void) ftw;
    if (flag != FTW_F || !S_ISREG (info->st_mode))
        return 0;
    char *text = dtu_read (path);
    if (text && memmem (text, (size_t) info->st_size, s_needle, strlen (s_needle))) {
        fprintf (stderr, "found '%s' in %s\n", s_needle, path);
        s_found = true;
    }
    free (text);
    return 0;
}

bool
dtu_tree_contains (const char *dir, const char *needle)
{
    s_needle = needle;
    s_found = false;
    nftw (dir, s_search, 16, FTW_PHYS);
    return s_found;
}

char *
dtu_read (const char *path)
{
    FILE *file = fopen (path, "rb");
    if (!file)
        return NULL;
    fseek (file, 0, SEEK_END);
    long size = ftell (file);
    fseek (file, 0, SEEK_SET);
    char *text = (char *) malloc ((size_t) size + 1);
    assert_non_null (text);
    size_t got = fread (text, 1, (size_t) size, file);
    text [got] = 0;
    fclose (file);
    return text;
}

static int
s_remove (const char *path, const struct stat *info, int flag, struct FTW *ftw)
{
    (void) info;
    (void) flag;
    (void) ftw;
    return remove (path);
}

void
dtu_remove_tree (const char *path)
{
    if (path)
        nftw (path, s_remove, 16, FTW_DEPTH | FTW_PHYS);
}

struct _dtu_traffic_t {
    pthread_t thread;
    volatile int stop;
    char registry [1024];
    int pause_ms;
};

static void *
s_traffic (void *arg)
{
    dtu_traffic_t *self = (dtu_traffic_t *) arg;
    unsigned turn = 0;
    while (!self->stop) {
        json_t *root = json_load_file (self->registry, 0, NULL);
        json_t *instances = root? json_object_get (root, "instances"): NULL;
        size_t count = json_array_size (instances);
        if (count) {
            json_t *instance = json_array_get (instances, turn++ % count);
            char url [128];
            snprintf (url, sizeof url, "http://127.0.0.1:%d/work?n=1000",
                      (int) json_integer_value (json_object_get (instance, "port")));
            al_probe_result_t probe;
            al_probe_http (url, 1000, &probe);
        }
        json_decref (root);
        struct timespec pause = { 0, (long) self->pause_ms * 1000000L };
        nanosleep (&pause, NULL);
    }
    return NULL;
}

dtu_traffic_t *
dtu_traffic_start (const char *deploy_state, const char *service, const char *env, int rps)
{
    dtu_traffic_t *self = calloc (1, sizeof *self);
    assert_non_null (self);
    snprintf (self->registry, sizeof self->registry, "%s/drivers/%s/%s/instances.json", deploy_state, service, env);
    self->pause_ms = rps > 0 && rps < 1000? 1000 / rps: 1;
    assert_int_equal (pthread_create (&self->thread, NULL, s_traffic, self), 0);
    return self;
}

void
dtu_traffic_stop (dtu_traffic_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    (*self_p)->stop = 1;
    pthread_join ((*self_p)->thread, NULL);
    free (*self_p);
    *self_p = NULL;
}

void
dtu_qa_report (const char *state_dir, const char *artifact_sha256, bool approved, char digest [65])
{
    json_t *report = json_pack ("{s:i, s:s, s:s, s:s, s:[], s:b}", "format", 1, "service", "demo",
                                "artifact_sha256", artifact_sha256, "environment", "staging",
                                "issues_found", "approved", approved);
    assert_non_null (report);
    char *text = json_dumps (report, JSON_INDENT (2));
    assert_non_null (text);
    char *store = al_qa_reports_dir (state_dir), error [512];
    assert_non_null (store);
    if (al_qa_reports_put (store, text, strlen (text), digest, error, sizeof error) != 0)
        fail_msg ("QA report store: %s", error);
    free (store);
    free (text);
    json_decref (report);
}
