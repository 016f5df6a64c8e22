/*  al_runbook_int.h: what al_runbook.c (loading, checks) and al_runbook_render.c (the
    sections) share. Internal: names are al_runbook__*, never installed.
*/
#ifndef AL_RUNBOOK_INT_H_INCLUDED
#define AL_RUNBOOK_INT_H_INCLUDED

#include "agents/al_runbook.h"
#include "agents/al_notify_config.h"
#include "deploy/al_migrate.h"
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define AL_RUNBOOK__WARNINGS_MAX 64
#define AL_RUNBOOK__ENV_COUNT 3
#define AL_RUNBOOK__TYPE_COUNT 5

struct _al_runbook_t {
    const al_config_t *config;
    const al_policy_t *policy;
    const al_services_t *services;
    const al_service_t *svc;
    json_t *policy_json;                    // the canonical policy, parsed
    al_notify_config_t *notify;             // NULL: no notifications.yaml (or invalid)
    char notify_path [1024];
    bool notify_present;
    char notify_error [2048];               // "" unless notifications.yaml is invalid
    al_migration_set_t *migrations;         // NULL: none configured, or it did not load
    char migrations_error [1024];
    Airlock__Environment env;               // the environment in focus (--env)
    char *warnings [AL_RUNBOOK__WARNINGS_MAX];
    size_t warning_count;
};

//  development, staging, production; and the deployment types, in the runbook's order.
extern const Airlock__Environment al_runbook__envs [AL_RUNBOOK__ENV_COUNT];
extern const Airlock__DeploymentType al_runbook__types [AL_RUNBOOK__TYPE_COUNT];

//  Text helpers: a duration for humans ("60 min", "1.5 s"), a number without trailing
//  zeros, a canonical-policy scalar as text, a Markdown table cell, one shell word, an
//  argv as a code span.
const char *al_runbook__duration (int64_t ms, char *buffer, size_t size);
const char *al_runbook__number (double value, char *buffer, size_t size);
const char *al_runbook__json_text (json_t *value, char *buffer, size_t size);
void al_runbook__cell (FILE *out, const char *text);
void al_runbook__shell_word (FILE *out, const char *text);
void al_runbook__argv (FILE *out, const char *const *argv, bool in_table);

//  The policy through its canonical JSON.
json_t *al_runbook__policy_file (const al_runbook_t *self, const char *file);
json_t *al_runbook__approvers (const al_runbook_t *self);
bool al_runbook__has_role (json_t *approver, const char *role);
size_t al_runbook__people_with_role (const al_runbook_t *self, const char *role);
void al_runbook__names_with_role (const al_runbook_t *self, FILE *out, const char *role);
void al_runbook__quorum_text (FILE *out, al_policy_quorum_t quorum);
bool al_runbook__quorum_feasible (const al_runbook_t *self, al_policy_quorum_t quorum, al_policy_quorum_t extra,
                                  char *why, size_t why_size);

//  The soak deploy-manager runs in env; the health-check failures that roll back.
int64_t al_runbook__soak_ms (const al_runbook_t *self, Airlock__Environment env);
unsigned al_runbook__health_limit (const al_runbook_t *self);

#endif
