/*  cmd_submit.c: `airlock submit` and `airlock rollback`: hand a release to the pipeline.

    Both connect with the state directory's `ci` certificate (the role CI pipelines and AI
    agents' clients use: it may send a ReleaseCandidate, nothing else) and send one
    ReleaseCandidate to the orchestrator, which runs the release from there. They print
    the release id to follow with `airlock status RELEASE` or `airlock watch`. submit
    first checks what it can here (al_releases_submit_check): a taken id, an unknown service, a
    missing artifact or one whose bytes do not match the digest are refused before
    "submitted" is said.

    `airlock rollback RELEASE` reads which release ran in production before RELEASE's
    (deploy-manager's release record) and submits it again as a deployment of type
    rollback: no staging run, and the approvals the rollback type needs (devops).

    An emergency (`--type emergency`) is declared by a human (seed 001), so it goes over
    the human approval client's `approver` certificate instead of `ci`
    (docs/deploying.md); the orchestrator refuses one from any non-human role.
*/
#include "cli/cli.h"
#include "agents/al_releases.h"
#include "agents/al_agent.h"
#include "base/al_config.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void
s_submit_usage (FILE *out)
{
    fprintf (out,
        "usage: airlock submit --service S --version V --artifact URI --digest sha256:HEX\n"
        "                      [--type standard|hotfix|scheduled|emergency] [--changes FILE]\n"
        "                      [--summary TEXT] [--migrations sha256:HEX] [--id RELEASE]\n"
        "                      [--skip-staging] [--window START/END]\n"
        "                      [--dependency NAME@VERSION ... | --no-new-dependencies]\n"
        "                      [--breaking-changes TEXT | --no-breaking-changes]\n"
        "                      [--state DIR | --config FILE] [--json]\n\n"
        "Hand a release candidate to the orchestrator: it deploys it to staging, has QA\n"
        "validate it, and files the production request for human approval. Prints the\n"
        "release id (follow it with `airlock status RELEASE`).\n\n"
        "options:\n"
        "  --artifact URI     the immutable artifact: a file path or file:// URI for the\n"
        "                     embedded default, an image reference for the exec driver\n"
        "  --digest sha256:H  its SHA-256 (deploy-manager checks the bytes against it)\n"
        "  --changes FILE     one change per line (\"Changes included\" of the request)\n"
        "  --migrations D     digest of the migration set (`airlock` prints it in pre-flight)\n"
        "  --id RELEASE       release id (default rel-SERVICE-VERSION-RANDOM)\n"
        "  --window S/E       scheduled only, required there: the window the production deploy\n"
        "                     must start in, UTC, e.g. 2026-12-08T09:00Z/2026-12-08T11:00Z; the\n"
        "                     approvals must be signed inside it (the gate refuses before)\n"
        "  --skip-staging     emergency only (seed 001 P1/P2): no staging run and no QA report;\n"
        "                     the request then also needs the approvals deployment_types.yaml\n"
        "                     names in skip_staging_quorum (devops by default)\n"
        "  --dependency N@V   a dependency this release adds (repeat for each); shown to the\n"
        "                     approver as declared by you: airlock does not check it\n"
        "  --no-new-dependencies  declare that the release adds no dependency\n"
        "  --breaking-changes TEXT  what breaks for clients of the service (declared by you)\n"
        "  --no-breaking-changes    declare that nothing breaks\n"
        "                     without either declaration the approver reads \"not declared\"\n"
        "  --state DIR        the state directory (reads DIR/airlock.yaml)\n"
        "  --config FILE      airlock.yaml (default $AIRLOCK_CONFIG, else ./airlock-state/airlock.yaml)\n"
        "  --json             print {\"release_id\": ..., \"audit_sequence\": ...}\n\n"
        "Checked before anything is sent: the id is not taken, SERVICE is in services.yaml,\n"
        "and an artifact on this host (a path, made absolute, or file:// URI) exists and has\n"
        "the digest.\n\n"
        "exit codes: 0 submitted, 1 refused (taken id, unknown service, missing artifact or\n"
        "digest mismatch, or by the broker), 2 usage error, unreadable configuration or\n"
        "services.yaml, broker unreachable\n");
}

static void
s_rollback_usage (FILE *out)
{
    fprintf (out,
        "usage: airlock rollback RELEASE [--state DIR | --config FILE] [--json]\n\n"
        "Request a production rollback of RELEASE's service to the release that ran before\n"
        "it (deploy-manager's release record). It is submitted as a deployment of type\n"
        "rollback: no staging run, approved per deployment_types.yaml (devops), then\n"
        "deployed like any release. Prints the new release id.\n\n"
        "exit codes: 0 submitted, 1 refused or nothing to roll back to, 2 usage error or\n"
        "broker unreachable\n");
}

//  Send the candidate as ci; prints the outcome. Returns the exit code.
static int
s_send (const char *command, const char *config_path, const char *release_id,
        Airlock__ReleaseCandidate *candidate, bool json)
{
    char error [1024];
    al_config_t *config = al_config_load (config_path, error, sizeof error);
    if (!config) {
        fprintf (stderr, "airlock %s: %s\n", command, error);
        return AL_EXIT_USAGE;
    }
    int exit_code = AL_EXIT_USAGE;
    //  Seed 001: a human declares an emergency. It is filed over the human approval
    //  client's connection (role approver, kind human); the orchestrator refuses an
    //  emergency from anything else, ci included.
    bool emergency = candidate->deployment_type == AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_EMERGENCY;
    al_agent_t *agent = al_agent_new_for_role (config, emergency? "approver": "ci", false, error, sizeof error);
    if (!agent) {
        fprintf (stderr, "airlock %s: %s\n", command, error);
        goto cleanup;
    }
    al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
    envelope.deployment_id = (char *) release_id;
    envelope.environment = AIRLOCK__ENVIRONMENT__ENV_DEVELOPMENT;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_RELEASE_CANDIDATE;
    envelope.release_candidate = candidate;
    al_agent_result_t result;
    al_agent_status_t status = al_agent_send (agent, &envelope, 10000, &result);
    if (status == AL_AGENT_ACKED) {
        if (json)
            printf ("{\"release_id\": \"%s\", \"audit_sequence\": %llu}\n", release_id,
                    (unsigned long long) result.audit_sequence);
        else
            printf ("submitted %s %s as release %s (audit #%llu)\nfollow it: airlock status %s\n",
                    candidate->service, candidate->version, release_id,
                    (unsigned long long) result.audit_sequence, release_id);
        exit_code = AL_EXIT_OK;
    }
    else
    if (status == AL_AGENT_DENIED || status == AL_AGENT_INVALID) {
        fprintf (stderr, "airlock %s: refused: %s\n", command, result.reason);
        exit_code = AL_EXIT_BAD;
    }
    else {
        char brokers [AL_AGENT_ENDPOINTS_TEXT_SIZE];
        fprintf (stderr, "airlock %s: no answer from the broker at %s\n", command,
                 al_agent_endpoints_describe (al_config_broker_endpoints (config), brokers, sizeof brokers));
    }
    al_agent_flush (agent, 1000);
cleanup:
    al_agent_destroy (&agent);
    al_config_destroy (&config);
    return exit_code;
}

static char **
s_read_lines (const char *path, size_t *count_p)
{
    FILE *file = fopen (path, "r");
    if (!file)
        return NULL;
    char **lines = NULL;
    size_t count = 0;
    char line [1024];
    while (fgets (line, sizeof line, file) && count < 100) {
        line [strcspn (line, "\r\n")] = 0;
        if (!*line)
            continue;
        char **grown = (char **) realloc (lines, (count + 1) * sizeof *lines);
        if (!grown)
            break;
        lines = grown;
        lines [count++] = strdup (line);
    }
    fclose (file);
    *count_p = count;
    return lines;
}

//  "YYYY-MM-DDTHH:MM[:SS]Z" to Unix ms; false if it is not exactly that.
static bool
s_parse_utc (const char *text, size_t length, uint64_t *ms)
{
    char copy [32];
    if (length == 0 || length >= sizeof copy)
        return false;
    memcpy (copy, text, length);
    copy [length] = 0;
    struct tm tm;
    memset (&tm, 0, sizeof tm);
    const char *end = strptime (copy, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (!end || *end) {
        memset (&tm, 0, sizeof tm);
        end = strptime (copy, "%Y-%m-%dT%H:%MZ", &tm);
    }
    if (!end || *end)
        return false;
    time_t seconds = timegm (&tm);
    if (seconds <= 0)
        return false;
    *ms = (uint64_t) seconds * 1000;
    return true;
}

#define S_MAX_DEPENDENCIES 64
#define S_MAX_DEPENDENCY_TEXT 200
#define S_MAX_BREAKING_TEXT 2000

//  "NAME@VERSION": both parts non-empty (the last '@' separates them, so a scoped name
//  like @scope/pkg@1.2 works), visible ASCII only, at most 200 characters.
static bool
s_dependency_valid (const char *text, char *why, size_t why_size)
{
    size_t length = strlen (text);
    const char *at = strrchr (text, '@');
    if (length > S_MAX_DEPENDENCY_TEXT) {
        snprintf (why, why_size, "longer than %d characters", S_MAX_DEPENDENCY_TEXT);
        return false;
    }
    for (const char *c = text; *c; c++)
        if (*c <= ' ' || *c > '~') {
            snprintf (why, why_size, "only visible ASCII, no spaces");
            return false;
        }
    if (!at || at == text || !at [1]) {
        snprintf (why, why_size, "expected NAME@VERSION");
        return false;
    }
    return true;
}

//  The --dependency options of a submit, each checked as it comes.
typedef struct {
    char *items [S_MAX_DEPENDENCIES];
    size_t count;
} s_dependencies_t;

static int
s_dependency_add (const char *value, void *arg)
{
    s_dependencies_t *dependencies = (s_dependencies_t *) arg;
    char why [128];
    if (!s_dependency_valid (value, why, sizeof why)) {
        fprintf (stderr, "airlock submit: --dependency '%s': %s\n", value, why);
        return -1;
    }
    if (dependencies->count == S_MAX_DEPENDENCIES) {
        fprintf (stderr, "airlock submit: --dependency: at most %d\n", S_MAX_DEPENDENCIES);
        return -1;
    }
    dependencies->items [dependencies->count++] = (char *) value;
    return 0;
}

static bool
s_parse_window (const char *text, uint64_t *start_ms, uint64_t *end_ms)
{
    const char *slash = strchr (text, '/');
    return slash && s_parse_utc (text, (size_t) (slash - text), start_ms)
        && s_parse_utc (slash + 1, strlen (slash + 1), end_ms) && *start_ms < *end_ms;
}

int
al_cmd_submit (int argc, char **argv)
{
    if (al_cli_wants_help (argc, argv)) {
        s_submit_usage (stdout);
        return AL_EXIT_OK;
    }
    const char *service = NULL, *version = NULL, *artifact = NULL, *digest = NULL, *type = "standard";
    const char *changes_path = NULL, *summary = "", *migrations = "", *id = NULL, *window = NULL;
    const char *breaking = NULL;
    bool skip_staging = false, no_dependencies = false, no_breaking = false;
    s_dependencies_t dependencies = { .count = 0 };
    const al_cli_option_t options [] = {
        { "--service", .value = &service }, { "--version", .value = &version },
        { "--artifact", .value = &artifact }, { "--digest", .value = &digest },
        { "--type", .value = &type }, { "--changes", .value = &changes_path }, { "--summary", .value = &summary },
        { "--migrations", .value = &migrations }, { "--id", .value = &id }, { "--window", .value = &window },
        { "--breaking-changes", .value = &breaking },
        { "--dependency", .take = s_dependency_add, .arg = &dependencies },
        { "--no-new-dependencies", .flag = &no_dependencies }, { "--no-breaking-changes", .flag = &no_breaking },
        { "--skip-staging", .flag = &skip_staging }, { .name = NULL }
    };
    const al_cli_parser_t parser = { "submit", s_submit_usage, .config = true, .json = true, .options = options };
    al_cli_common_t common;
    if (al_cli_parse (&parser, argc, argv, &common) != 0)
        return AL_EXIT_USAGE;
    bool json = common.json;
    char **dependency_list = dependencies.items;
    size_t dependency_count = dependencies.count;
    if (!service || !version || !artifact || !digest) {
        fprintf (stderr, "airlock submit: --service, --version, --artifact and --digest are required\n\n");
        s_submit_usage (stderr);
        return AL_EXIT_USAGE;
    }
    if (no_dependencies && dependency_count) {
        fprintf (stderr, "airlock submit: --no-new-dependencies contradicts --dependency\n");
        return AL_EXIT_USAGE;
    }
    if (no_breaking && breaking) {
        fprintf (stderr, "airlock submit: --no-breaking-changes contradicts --breaking-changes\n");
        return AL_EXIT_USAGE;
    }
    if (breaking && (!*breaking || strlen (breaking) > S_MAX_BREAKING_TEXT)) {
        fprintf (stderr, "airlock submit: --breaking-changes: 1..%d characters (or --no-breaking-changes)\n",
                 S_MAX_BREAKING_TEXT);
        return AL_EXIT_USAGE;
    }
    if (strncmp (digest, "sha256:", 7) == 0)
        digest += 7;
    if (strncmp (migrations, "sha256:", 7) == 0)
        migrations += 7;
    Airlock__DeploymentType deployment_type = al_deployment_type_from_name (type);
    if (deployment_type == AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_UNSPECIFIED
    ||  deployment_type == AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_ROLLBACK) {
        fprintf (stderr, "airlock submit: --type: '%s' (standard, hotfix, scheduled, emergency; "
                 "rollbacks: airlock rollback)\n", type);
        return AL_EXIT_USAGE;
    }
    if (skip_staging && deployment_type != AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_EMERGENCY) {
        fprintf (stderr, "airlock submit: --skip-staging is for --type emergency only (seed 001: P1/P2)\n");
        return AL_EXIT_USAGE;
    }
    uint64_t window_start_ms = 0, window_end_ms = 0;
    if ((deployment_type == AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_SCHEDULED) != (window != NULL)) {
        fprintf (stderr, "airlock submit: --window is required for --type scheduled, and only there\n");
        return AL_EXIT_USAGE;
    }
    if (window && !s_parse_window (window, &window_start_ms, &window_end_ms)) {
        fprintf (stderr, "airlock submit: --window: '%s' is not START/END in UTC (YYYY-MM-DDTHH:MM[:SS]Z, "
                 "START before END)\n", window);
        return AL_EXIT_USAGE;
    }
    const char *config_path = common.config_path;
    char release_id [64];
    if (id && strlen (id) >= sizeof release_id) {
        fprintf (stderr, "airlock submit: --id: '%s' is longer than 56 characters\n", id);
        return AL_EXIT_USAGE;
    }
    if (id)
        snprintf (release_id, sizeof release_id, "%s", id);
    else
        al_releases_new_id ("rel", service, version, release_id, sizeof release_id);
    char artifact_uri [4096], error [4096];
    al_config_t *config = al_config_load (config_path, error, sizeof error);
    if (!config) {
        fprintf (stderr, "airlock submit: %s\n", error);
        return AL_EXIT_USAGE;
    }
    int checked = al_releases_submit_check (config, release_id, service, artifact, digest, artifact_uri,
                                       sizeof artifact_uri, error, sizeof error);
    al_config_destroy (&config);
    if (checked != 0) {
        fprintf (stderr, "airlock submit: %s\n", error);
        return checked == -2? AL_EXIT_USAGE: AL_EXIT_BAD;
    }
    Airlock__ReleaseCandidate candidate = AIRLOCK__RELEASE_CANDIDATE__INIT;
    candidate.service = (char *) service;
    candidate.version = (char *) version;
    candidate.artifact_uri = artifact_uri;
    candidate.artifact_sha256 = (char *) digest;
    candidate.deployment_type = deployment_type;
    candidate.migration_set_sha256 = (char *) migrations;
    candidate.summary = (char *) summary;
    candidate.skip_staging = skip_staging;
    candidate.window_start_ms = window_start_ms;
    candidate.window_end_ms = window_end_ms;
    candidate.n_dependencies_added = dependency_count;
    candidate.dependencies_added = dependency_count? dependency_list: NULL;
    candidate.no_dependencies_added = no_dependencies;
    candidate.breaking_changes = (char *) (breaking? breaking: "");
    candidate.no_breaking_changes = no_breaking;
    size_t count = 0;
    char **lines = NULL;
    if (changes_path) {
        lines = s_read_lines (changes_path, &count);
        if (!lines && count == 0) {
            fprintf (stderr, "airlock submit: --changes: cannot read %s\n", changes_path);
            return AL_EXIT_USAGE;
        }
    }
    candidate.n_changes = count;
    candidate.changes = lines;
    int rc = s_send ("submit", config_path, release_id, &candidate, json);
    for (size_t i = 0; i < count; i++)
        free (lines [i]);
    free (lines);
    return rc;
}

int
al_cmd_rollback (int argc, char **argv)
{
    if (al_cli_wants_help (argc, argv)) {
        s_rollback_usage (stdout);
        return AL_EXIT_OK;
    }
    const char *release = NULL;
    const al_cli_parser_t parser = { "rollback", s_rollback_usage, .config = true, .json = true,
                                     .arguments = &release, .arguments_max = 1 };
    al_cli_common_t common;
    if (al_cli_parse (&parser, argc, argv, &common) != 0)
        return AL_EXIT_USAGE;
    bool json = common.json;
    if (!release) {
        s_rollback_usage (stderr);
        return AL_EXIT_USAGE;
    }
    const char *config_path = common.config_path;
    char error [1024];
    al_config_t *config = al_config_load (config_path, error, sizeof error);
    if (!config) {
        fprintf (stderr, "airlock rollback: %s\n", error);
        return AL_EXIT_USAGE;
    }
    //  The release, then its service's production record: what ran before it.
    int rc = AL_EXIT_BAD;
    al_releases_rollback_t *rollback = al_releases_rollback_new (config, release, error, sizeof error);
    if (!rollback) {
        fprintf (stderr, "airlock rollback: %s\n", error);
        goto cleanup;
    }
    rc = s_send ("rollback", config_path, rollback->release_id, &rollback->candidate, json);
cleanup:
    al_releases_rollback_destroy (&rollback);
    al_config_destroy (&config);
    return rc;
}
