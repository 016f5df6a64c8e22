/*  al_mcp_server.c: the Model Context Protocol server behind `airlock mcp` (see
    al_mcp_server.h).

    JSON-RPC 2.0, one message per line; the five tools; how their answers become MCP
    content for the negotiated revision. The tools do what `airlock submit`, `airlock
    status RELEASE --json`, `airlock approvals`, `airlock rollback` and `airlock watch
    --signals` do, through agents/al_releases (release files, status documents, the
    rollback candidate), agents/al_request_view (a pending request, facts apart from agent
    text) and deploy/al_rules (each soak sample judged by the monitor's rules).

    Threading: one thread handles one request at a time; the agent runtime heartbeats
    in its own actor meanwhile.
*/
#include "agents/al_mcp_server.h"
#include "base/al_clock.h"
#include "base/al_error.h"
#include "agents/al_init.h"
#include "agents/al_releases.h"
#include "agents/al_request_view.h"
#include "agents/al_subscriber.h"
#include "deploy/al_rules.h"
#include "policies/al_policy.h"

#include <assert.h>
#include <czmq.h>
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

//  The protocol revisions spoken, newest first. initialize answers the client's revision
//  when it is one of these, else the newest (the client then decides whether to go on).
//  From 2025-03-26 on tools carry annotations; from 2025-06-18 on an outputSchema, and
//  tools/call results a structuredContent beside the text item.
static const char *s_protocol_versions [] = { "2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05" };
#define S_PROTOCOL_COUNT       (sizeof s_protocol_versions / sizeof s_protocol_versions [0])
#define S_SERVER_VERSION       "0.1.0"
#define S_SEND_TIMEOUT_MS      10000
#define S_QUERY_TIMEOUT_MS     5000
#define S_SIGNALS_WINDOW_MS    2000
#define S_SIGNALS_CONNECT_MS   1000
#define S_SIGNALS_MAX          100
#define S_MAX_LINE             (4 * 1024 * 1024)

//  JSON-RPC 2.0 error codes.
#define S_PARSE_ERROR          -32700
#define S_INVALID_REQUEST      -32600
#define S_METHOD_NOT_FOUND     -32601
#define S_INVALID_PARAMS       -32602

//  The tools and their input schemas, as tools/list returns them.
static const char *s_tools_json =
"["
"{\"name\": \"submit_release\","
" \"description\": \"Hand a release candidate to the airlock pipeline. The orchestrator deploys it to staging, QA "
"validates it there, and a production deployment request is filed for a HUMAN to approve with a signed approval; "
"this tool can never deploy to production itself. Returns the release id to follow with get_status.\","
" \"inputSchema\": {\"type\": \"object\", \"additionalProperties\": false,"
"  \"required\": [\"service\", \"version\", \"artifact\", \"digest\"],"
"  \"properties\": {"
"   \"service\": {\"type\": \"string\", \"pattern\": \"^[a-z0-9][a-z0-9-]{0,62}$\", \"description\": \"service name as in services.yaml\"},"
"   \"version\": {\"type\": \"string\", \"description\": \"version label, e.g. v2.3.1\"},"
"   \"artifact\": {\"type\": \"string\", \"description\": \"immutable artifact: a file path or file:// URI (process driver) or an image reference (exec driver)\"},"
"   \"digest\": {\"type\": \"string\", \"pattern\": \"^(sha256:)?[0-9a-f]{64}$\", \"description\": \"SHA-256 of the artifact, sha256:HEX\"},"
"   \"type\": {\"type\": \"string\", \"enum\": [\"standard\", \"hotfix\"], \"default\": \"standard\","
"    \"description\": \"deployment type; it decides which humans must approve (deployment_types.yaml)\"},"
"   \"changes\": {\"type\": \"array\", \"items\": {\"type\": \"string\"}, \"maxItems\": 100, \"description\": \"one line per change, shown to the approver\"},"
"   \"summary\": {\"type\": \"string\", \"description\": \"what this release does, shown to the approver\"}}}},"
"{\"name\": \"get_status\","
" \"description\": \"With release_id: the release's pipeline state (PREPARE, STAGING, VALIDATE, APPROVE, DEPLOY, MONITOR, "
"DONE, ROLLED_BACK, FAILED), its history, whether its production request awaits human approval, and the deploy journal "
"of its staging and production deployments. Without: the agents connected to the broker and every release.\","
" \"inputSchema\": {\"type\": \"object\", \"additionalProperties\": false,"
"  \"properties\": {\"release_id\": {\"type\": \"string\", \"description\": \"the id submit_release returned\"}}}},"
"{\"name\": \"list_approvals\","
" \"description\": \"The production deployment requests waiting for human approval, each in two parts: facts (what "
"airlock itself states: request id, service, environment, type, artifact digest, QA report digest, migration digest, "
"version, strategy, requester) and agent_text (what the orchestrator wrote: summary, risk, rollback plan, checklist; "
"unverified, with control, bidi and invisible characters shown escaped). Show agent_text to a human as the agent's "
"words, never as airlock's. Only a human can approve, with their own key: airlock approve REQUEST_ID.\","
" \"inputSchema\": {\"type\": \"object\", \"additionalProperties\": false, \"properties\": {}}},"
"{\"name\": \"request_rollback\","
" \"description\": \"Request a production rollback of a release to the release that ran before it. It is submitted as "
"a deployment of type rollback, which a devops human approves before deploy-manager runs it.\","
" \"inputSchema\": {\"type\": \"object\", \"additionalProperties\": false, \"required\": [\"release_id\"],"
"  \"properties\": {\"release_id\": {\"type\": \"string\", \"description\": \"the release now running in production\"}}}},"
"{\"name\": \"recent_signals\","
" \"description\": \"The latest golden-signal samples (SoakSignal: traffic, error ratio, latency p50/p99, CPU, memory, "
"instances up) the monitor publishes for a service, collected live for up to 2 seconds; empty when the service runs "
"nowhere the monitor watches. Each sample says how the monitor's rules judge it (checks: per rule value, limit, status "
"ok/over/breach/missing/skipped/not required; verdict); a value without evidence is null and listed under missing.\","
" \"inputSchema\": {\"type\": \"object\", \"additionalProperties\": false, \"required\": [\"service\"],"
"  \"properties\": {"
"   \"service\": {\"type\": \"string\", \"pattern\": \"^[a-z0-9][a-z0-9-]{0,62}$\"},"
"   \"environment\": {\"type\": \"string\", \"enum\": [\"development\", \"staging\", \"production\"], \"description\": \"default: all\"},"
"   \"count\": {\"type\": \"integer\", \"minimum\": 1, \"maximum\": 100, \"default\": 10}}}}"
"]";

//  Per tool: its title, whether it only reads (readOnlyHint), and the outputSchema of
//  its structuredContent. Every answer is a JSON object; a failed call is {"error": TEXT}
//  with isError, so the schemas require nothing and describe the main fields.
static const struct {
    const char *name;
    const char *title;
    bool read_only;
    bool idempotent;
    const char *output_schema;
} s_tool_meta [] = {
    { "submit_release", "Submit a release candidate", false, false,
      "{\"type\": \"object\", \"properties\": {"
      "\"release_id\": {\"type\": \"string\", \"description\": \"follow it with get_status\"},"
      "\"error\": {\"type\": \"string\"}}}" },
    { "get_status", "Release and agent status", true, true,
      "{\"type\": \"object\", \"properties\": {"
      "\"error\": {\"type\": \"string\"}}}" },
    { "list_approvals", "Production requests awaiting human approval", true, true,
      "{\"type\": \"object\", \"properties\": {"
      "\"error\": {\"type\": \"string\"}}}" },
    { "request_rollback", "Request a production rollback (a human approves it)", false, false,
      "{\"type\": \"object\", \"properties\": {"
      "\"error\": {\"type\": \"string\"}}}" },
    { "recent_signals", "Recent golden signals of a service", true, true,
      "{\"type\": \"object\", \"properties\": {"
      "\"error\": {\"type\": \"string\"}}}" },
};

static const char *s_instructions =
    "airlock carries releases to production under human control. Submit a release with submit_release, follow it "
    "with get_status. Production deploys need a human's signed approval: no tool here approves or deploys to "
    "production; tell the human the request id from list_approvals (they run `airlock approve REQUEST_ID`).";

struct _al_mcp_server_t {
    al_config_t *config;        // borrowed
    al_agent_t *agent;          // borrowed
    json_t *tools;              // s_tools_json, parsed
    const char *protocol;       // negotiated at initialize (default: the oldest)
};
typedef struct _al_mcp_server_t s_mcp_t;

//  Position of a revision in s_protocol_versions (0 = newest), or -1.
static int
s_protocol_rank (const char *version)
{
    for (size_t i = 0; version && i < S_PROTOCOL_COUNT; i++)
        if (strcmp (version, s_protocol_versions [i]) == 0)
            return (int) i;
    return -1;
}

//  True when the negotiated revision is at least version.
static bool
s_protocol_at_least (const s_mcp_t *self, const char *version)
{
    return s_protocol_rank (self->protocol) <= s_protocol_rank (version);
}

typedef json_t *(s_tool_fn) (s_mcp_t *self, json_t *arguments, bool *failed);

//  ---- results ------------------------------------------------------------------------

//  A failed tool's result document: {"error": TEXT}.
static json_t *
s_failure (bool *failed, const char *format, ...) __attribute__ ((format (printf, 2, 3)));

static json_t *
s_failure (bool *failed, const char *format, ...)
{
    char text [2048];
    va_list args;
    va_start (args, format);
    al_error_vset (text, sizeof text, format, args);
    va_end (args);
    *failed = true;
    return json_pack ("{s:s}", "error", text);
}

//  Arguments other than ALLOWED (NULL-terminated) are an error: a misspelt optional
//  argument must not be silently ignored.
static bool
s_unknown_argument (json_t *arguments, const char *const *allowed, char *error, size_t error_size)
{
    const char *key;
    json_t *value;
    json_object_foreach (arguments, key, value) {
        bool known = false;
        for (size_t i = 0; allowed [i] && !known; i++)
            known = strcmp (allowed [i], key) == 0;
        if (!known) {
            snprintf (error, error_size, "%s: unknown argument", key);
            return true;
        }
    }
    return false;
}

//  The string argument NAME into *value (NULL when absent). False with the reason in
//  error when it is required and absent, or not a string.
static bool
s_text_argument (json_t *arguments, const char *name, bool required, const char **value,
                 char *error, size_t error_size)
{
    json_t *item = json_object_get (arguments, name);
    *value = NULL;
    if (!item) {
        if (required)
            snprintf (error, error_size, "%s: required", name);
        return !required;
    }
    if (!json_is_string (item)) {
        snprintf (error, error_size, "%s: must be a string", name);
        return false;
    }
    *value = json_string_value (item);
    return true;
}

static bool
s_valid_service (const char *service)
{
    size_t length = strlen (service);
    if (length == 0 || length > 63 || service [0] == '-')
        return false;
    return strspn (service, "abcdefghijklmnopqrstuvwxyz0123456789-") == length;
}

//  Send a ReleaseCandidate as ci; the result document, with failed set when it was not
//  acknowledged.
static json_t *
s_send_candidate (s_mcp_t *self, const char *release_id, Airlock__ReleaseCandidate *candidate, bool *failed)
{
    al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
    envelope.deployment_id = (char *) release_id;
    envelope.environment = AIRLOCK__ENVIRONMENT__ENV_DEVELOPMENT;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_RELEASE_CANDIDATE;
    envelope.release_candidate = candidate;
    al_agent_result_t result;
    switch (al_agent_send (self->agent, &envelope, S_SEND_TIMEOUT_MS, &result)) {
        case AL_AGENT_ACKED:
            return json_pack ("{s:s, s:I}", "release_id", release_id, "audit_sequence",
                              (json_int_t) result.audit_sequence);
        case AL_AGENT_DENIED: {
            json_t *document = s_failure (failed, "refused by the broker: %s", result.reason);
            json_object_set_new (document, "deny_code", json_string (al_releases_deny_code_name (result.deny_code)));
            json_object_set_new (document, "audit_sequence", json_integer ((json_int_t) result.audit_sequence));
            return document;
        }
        case AL_AGENT_INVALID:
            return s_failure (failed, "invalid release candidate: %s", result.reason);
        default: {
            char brokers [AL_AGENT_ENDPOINTS_TEXT_SIZE];
            return s_failure (failed, "no answer from the broker at %s within %d s; release %s stays queued and "
                              "may still be accepted (check with get_status)",
                              al_agent_brokers (self->agent, brokers, sizeof brokers), S_SEND_TIMEOUT_MS / 1000,
                              release_id);
        }
    }
}

//  A status query that got no reply, as a failed tool's document.
static json_t *
s_query_failure (s_mcp_t *self, const al_agent_result_t *result, bool *failed)
{
    if (result->status == AL_AGENT_DENIED)
        return s_failure (failed, "the broker refused the query: %s", result->reason);
    char brokers [AL_AGENT_ENDPOINTS_TEXT_SIZE];
    return s_failure (failed, "no answer from the broker at %s within %d s (is it running?)",
                      al_agent_brokers (self->agent, brokers, sizeof brokers), S_QUERY_TIMEOUT_MS / 1000);
}

//  ---- the tools ------------------------------------------------------------------------

static json_t *
s_tool_submit_release (s_mcp_t *self, json_t *arguments, bool *failed)
{
    static const char *const allowed [] = { "service", "version", "artifact", "digest", "type", "changes",
                                            "summary", NULL };
    char error [512];
    const char *service, *version, *artifact, *digest, *type, *summary;
    if (s_unknown_argument (arguments, allowed, error, sizeof error)
    ||  !s_text_argument (arguments, "service", true, &service, error, sizeof error)
    ||  !s_text_argument (arguments, "version", true, &version, error, sizeof error)
    ||  !s_text_argument (arguments, "artifact", true, &artifact, error, sizeof error)
    ||  !s_text_argument (arguments, "digest", true, &digest, error, sizeof error)
    ||  !s_text_argument (arguments, "type", false, &type, error, sizeof error)
    ||  !s_text_argument (arguments, "summary", false, &summary, error, sizeof error))
        return s_failure (failed, "%s", error);
    Airlock__DeploymentType deployment_type = al_deployment_type_from_name (type? type: "standard");
    if (deployment_type == AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_UNSPECIFIED
    ||  deployment_type == AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_ROLLBACK
    ||  deployment_type == AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_SCHEDULED
    ||  deployment_type == AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_EMERGENCY)
        return s_failure (failed, "type: '%s' is not one of standard, hotfix (rollbacks: request_rollback; "
                          "scheduled deployments need a window: airlock submit --window; an emergency is "
                          "declared by a human: airlock submit --type emergency)", type);
    json_t *changes = json_object_get (arguments, "changes");
    if (changes && (!json_is_array (changes) || json_array_size (changes) > 100))
        return s_failure (failed, "changes: must be an array of at most 100 strings");
    size_t count = json_array_size (changes);
    char **lines = (char **) calloc (count + 1, sizeof *lines);
    assert (lines);
    for (size_t i = 0; i < count; i++) {
        lines [i] = (char *) json_string_value (json_array_get (changes, i));
        if (!lines [i]) {
            free (lines);
            return s_failure (failed, "changes[%zu]: must be a string", i);
        }
    }
    if (strncmp (digest, "sha256:", 7) == 0)
        digest += 7;
    char release_id [64];
    al_releases_new_id ("rel", service, version, release_id, sizeof release_id);
    Airlock__ReleaseCandidate candidate = AIRLOCK__RELEASE_CANDIDATE__INIT;
    candidate.service = (char *) service;
    candidate.version = (char *) version;
    candidate.artifact_uri = (char *) artifact;
    candidate.artifact_sha256 = (char *) digest;
    candidate.deployment_type = deployment_type;
    candidate.summary = (char *) (summary? summary: "");
    candidate.n_changes = count;
    candidate.changes = lines;
    json_t *document = s_send_candidate (self, release_id, &candidate, failed);
    free (lines);
    if (!*failed)
        json_object_set_new (document, "next", json_string (
            "follow it with get_status: staging, QA, then a production request that a human must approve"));
    return document;
}

static json_t *
s_tool_get_status (s_mcp_t *self, json_t *arguments, bool *failed)
{
    static const char *const allowed [] = { "release_id", NULL };
    char error [1024];
    const char *release_id;
    if (s_unknown_argument (arguments, allowed, error, sizeof error)
    ||  !s_text_argument (arguments, "release_id", false, &release_id, error, sizeof error))
        return s_failure (failed, "%s", error);
    if (release_id) {
        json_t *document = al_releases_status (self->config, self->agent, release_id, S_QUERY_TIMEOUT_MS, NULL,
                                               error, sizeof error);
        return document? document: s_failure (failed, "%s", error);
    }
    al_agent_result_t result;
    al_envelope_t *reply = al_agent_status_query (self->agent, "agents", NULL, 0, S_QUERY_TIMEOUT_MS, &result);
    if (!reply)
        return s_query_failure (self, &result, failed);
    json_t *agents = json_array ();
    for (size_t i = 0; i < reply->status_reply->n_agents; i++) {
        const Airlock__AgentStatus *agent = reply->status_reply->agents [i];
        json_array_append_new (agents, json_pack ("{s:s, s:s, s:b, s:I}", "identity", agent->identity,
                               "role", agent->role, "alive", agent->alive,
                               "last_heartbeat_ms", (json_int_t) agent->last_heartbeat_ms));
    }
    al_codec_free (&reply);
    return json_pack ("{s:o, s:o}", "agents", agents, "releases", al_releases_list (self->config));
}

static json_t *
s_tool_list_approvals (s_mcp_t *self, json_t *arguments, bool *failed)
{
    static const char *const allowed [] = { NULL };
    char error [512];
    if (s_unknown_argument (arguments, allowed, error, sizeof error))
        return s_failure (failed, "%s", error);
    al_agent_result_t result;
    al_envelope_t *reply = al_agent_status_query (self->agent, "approvals", NULL, 0, S_QUERY_TIMEOUT_MS, &result);
    if (!reply)
        return s_query_failure (self, &result, failed);
    json_t *approvals = json_array ();
    for (size_t i = 0; i < reply->status_reply->n_approvals; i++)
        json_array_append_new (approvals, al_request_view_json (reply->status_reply->approvals [i]));
    al_codec_free (&reply);
    return json_pack ("{s:o, s:s}", "approvals", approvals, "note",
                      "only a human approves, with their own signing key: airlock approve REQUEST_ID");
}

static json_t *
s_tool_request_rollback (s_mcp_t *self, json_t *arguments, bool *failed)
{
    static const char *const allowed [] = { "release_id", NULL };
    char error [2048];
    const char *release;
    if (s_unknown_argument (arguments, allowed, error, sizeof error)
    ||  !s_text_argument (arguments, "release_id", true, &release, error, sizeof error))
        return s_failure (failed, "%s", error);
    al_releases_rollback_t *rollback = al_releases_rollback_new (self->config, release, error, sizeof error);
    if (!rollback)
        return s_failure (failed, "%s", error);
    json_t *document = s_send_candidate (self, rollback->release_id, &rollback->candidate, failed);
    if (!*failed) {
        json_object_set_new (document, "rolls_back", json_string (release));
        json_object_set_new (document, "to_version", json_string (rollback->candidate.version));
        json_object_set_new (document, "next", json_string (
            "a devops human approves the rollback (airlock approve RELEASE_ID-prod); follow it with get_status"));
    }
    al_releases_rollback_destroy (&rollback);
    return document;
}

//  The names of the AL_RULES_SIGNAL_* bits set in bits.
static json_t *
s_signal_names (uint32_t bits)
{
    json_t *list = json_array ();
    for (uint32_t bit = 1; bit & AL_RULES_SIGNAL_ALL; bit <<= 1)
        if (bits & bit)
            json_array_append_new (list, json_string (al_rules_signal_name (bit)));
    return list;
}

static json_t *
s_finite (double value)
{
    return isfinite (value)? json_real (value): json_null ();
}

//  One SoakSignal as JSON, with how deploy/al_rules judged it (rows, verdict): a value
//  without evidence is null and its signal listed under "missing", never a 0.
static json_t *
s_sample (const al_envelope_t *envelope, const char *environment, uint64_t sequence,
          const al_rules_row_t rows [AL_RULES_ROWS], bool judged, const al_rules_result_t *verdict)
{
    const Airlock__SoakSignal *signal = envelope->soak_signal;
    json_t *no_evidence = json_array ();
    if (signal->no_evidence & 1)
        json_array_append_new (no_evidence, json_string ("latency"));
    if (signal->no_evidence & 2)
        json_array_append_new (no_evidence, json_string ("cpu"));
    if (signal->no_evidence & 4)
        json_array_append_new (no_evidence, json_string ("memory"));
    json_t *document = json_pack ("{s:s, s:I, s:I, s:s, s:f, s:f, s:f, s:f, s:f, s:f, s:i, s:i, s:i, s:i, s:b, s:o}",
        "environment", environment, "sequence", (json_int_t) sequence, "time_ms", (json_int_t) envelope->timestamp_ms,
        "deployment_id", envelope->deployment_id? envelope->deployment_id: "",
        "requests_per_second", signal->requests_per_second, "error_ratio", signal->error_ratio,
        "latency_p50_ms", signal->latency_p50_ms, "latency_p99_ms", signal->latency_p99_ms,
        "cpu_percent", signal->cpu_percent, "memory_percent", signal->memory_percent,
        "instances_up", (int) signal->instances_up, "instances_total", (int) signal->instances_total,
        "instances_missing", (int) signal->instances_missing,
        "consecutive_health_failures", (int) signal->consecutive_health_failures,
        "baseline", signal->baseline, "no_evidence", no_evidence);
    if (!document)
        return NULL;
    //  Absent is null: the wire's 0 stands for "no evidence" (SoakSignal.no_evidence).
    static const struct { uint32_t bit; const char *fields [2]; } absent [] = {
        { AL_RULES_SIGNAL_TRAFFIC, { "requests_per_second", "error_ratio" } },
        { AL_RULES_SIGNAL_LATENCY, { "latency_p50_ms", "latency_p99_ms" } },
        { AL_RULES_SIGNAL_CPU,     { "cpu_percent", NULL } },
        { AL_RULES_SIGNAL_MEMORY,  { "memory_percent", NULL } },
    };
    for (size_t i = 0; i < sizeof absent / sizeof absent [0]; i++)
        for (size_t j = 0; j < 2 && (signal->no_evidence & absent [i].bit) && absent [i].fields [j]; j++)
            json_object_set_new (document, absent [i].fields [j], json_null ());
    json_object_set_new (document, "missing", s_signal_names (al_rules_missing_signals (signal)));
    json_object_set_new (document, "not_required", s_signal_names (signal->not_required & AL_RULES_SIGNAL_ALL));
    json_t *checks = json_object ();
    for (size_t i = 0; i < AL_RULES_ROWS; i++) {
        json_t *check = json_pack ("{s:o, s:o, s:s}", "value", s_finite (rows [i].value),
                                   "limit", s_finite (rows [i].limit),
                                   "status", al_rules_row_status_name (rows [i].status));
        if (*rows [i].detail)
            json_object_set_new (check, "detail", json_string (rows [i].detail));
        json_object_set_new (checks, rows [i].rule, check);
    }
    json_object_set_new (document, "checks", checks);
    json_object_set_new (document, "judged", json_boolean (judged));
    if (judged)
        json_object_set_new (document, "verdict", json_pack ("{s:s, s:s, s:s}",
            "verdict", al_rules_verdict_name (verdict->verdict), "rule", verdict->rule, "detail", verdict->detail));
    return document;
}

static json_t *
s_tool_recent_signals (s_mcp_t *self, json_t *arguments, bool *failed)
{
    static const char *const allowed [] = { "service", "environment", "count", NULL };
    char error [1024];
    const char *service, *environment;
    if (s_unknown_argument (arguments, allowed, error, sizeof error)
    ||  !s_text_argument (arguments, "service", true, &service, error, sizeof error)
    ||  !s_text_argument (arguments, "environment", false, &environment, error, sizeof error))
        return s_failure (failed, "%s", error);
    if (!s_valid_service (service))
        return s_failure (failed, "service: '%s' is not a service name ([a-z0-9-], 1..63)", service);
    if (environment && al_environment_from_name (environment) == AIRLOCK__ENVIRONMENT__ENV_UNSPECIFIED)
        return s_failure (failed, "environment: '%s' is not development, staging or production", environment);
    json_t *count_item = json_object_get (arguments, "count");
    json_int_t count = 10;
    if (count_item) {
        if (!json_is_integer (count_item) || json_integer_value (count_item) < 1
        ||  json_integer_value (count_item) > S_SIGNALS_MAX)
            return s_failure (failed, "count: must be an integer from 1 to %d", S_SIGNALS_MAX);
        count = json_integer_value (count_item);
    }
    //  Topics soak.<environment>.<service>, one or all three environments.
    const char *all [] = { "development", "staging", "production" };
    const char *const *environments = environment? &environment: all;
    size_t topics = environment? 1: 3;
    //  Judged by the monitor's rules (deploy/al_rules), one stream per environment.
    al_policy_errors_t *policy_errors = NULL;
    al_policy_t *policy = al_policy_load (al_config_policy_dir (self->config), &policy_errors);
    if (!policy) {
        json_t *failure = s_failure (failed, "cannot judge the signals: %s: %s", al_config_policy_dir (self->config),
                                     policy_errors && al_policy_errors_count (policy_errors)
                                     ? al_policy_errors_at (policy_errors, 0): "cannot load the policy");
        al_policy_errors_destroy (&policy_errors);
        return failure;
    }
    al_rules_stream_t *judges [3] = { NULL, NULL, NULL };
    al_subscriber_t *subscriber = NULL;
    json_t *samples = json_array ();
    json_t *document = NULL;
    for (size_t i = 0; i < topics; i++)
        if (!(judges [i] = al_rules_stream_new (al_policy_thresholds (policy), 0))) {
            document = s_failure (failed, "out of memory");
            goto cleanup;
        }
    subscriber = al_subscriber_new (self->config, "ci", error, sizeof error);
    if (!subscriber) {
        document = s_failure (failed, "cannot subscribe to the broker's events: %s", error);
        goto cleanup;
    }
    char wanted [3][128];
    for (size_t i = 0; i < topics; i++) {
        snprintf (wanted [i], sizeof wanted [i], "soak.%s.%s", environments [i], service);
        int rc = al_subscriber_subscribe (subscriber, wanted [i]);
        assert (rc == 0);       // a service name is at most 63 characters
        (void) rc;
    }
    if (al_subscriber_wait_connected (subscriber, S_SIGNALS_CONNECT_MS) != 0) {
        al_subscriber_last_error (subscriber, error, sizeof error);
        char brokers [AL_AGENT_ENDPOINTS_TEXT_SIZE];
        document = s_failure (failed, "no connection to the broker's events at %s%s%s",
                              al_agent_endpoints_describe (al_subscriber_endpoint (subscriber), brokers, sizeof brokers),
                              *error? ": ": "", error);
        goto cleanup;
    }
    uint64_t missed = 0;
    int64_t deadline = al_clock_mono_ms () + S_SIGNALS_WINDOW_MS;
    int64_t now;
    while ((json_int_t) json_array_size (samples) < count && (now = al_clock_mono_ms ()) < deadline) {
        char topic [256];
        uint64_t sequence = 0, gap = 0;
        al_envelope_t *envelope = al_subscriber_recv (subscriber, (int) (deadline - now), topic, sizeof topic,
                                                      &sequence, &gap, NULL);
        if (!envelope) {
            if (al_agent_interrupted ())
                break;
            continue;
        }
        //  A prefix subscription also matches longer topics (soak.production.api-v2 for
        //  soak.production.api): only the exact topics count.
        for (size_t i = 0; i < topics; i++)
            if (strcmp (topic, wanted [i]) == 0 && envelope->body_case == AIRLOCK__ENVELOPE__BODY_SOAK_SIGNAL) {
                al_rules_row_t rows [AL_RULES_ROWS];
                bool judged = false;
                al_rules_result_t verdict = al_rules_stream_feed (judges [i], envelope->soak_signal, al_clock_mono_ms (),
                                                                  rows, AL_RULES_ROWS, &judged);
                json_array_append_new (samples, s_sample (envelope, environments [i], sequence, rows, judged,
                                                          &verdict));
                missed += gap;
            }
        al_codec_free (&envelope);
    }
    json_t *listened = json_array ();
    for (size_t i = 0; i < topics; i++)
        json_array_append_new (listened, json_string (environments [i]));
    document = json_pack ("{s:s, s:o, s:i, s:O, s:I}", "service", service, "environments", listened,
                          "window_ms", S_SIGNALS_WINDOW_MS, "samples", samples, "missed", (json_int_t) missed);
    if (json_array_size (samples) == 0)
        json_object_set_new (document, "note", json_string (
            "no sample published while listening: the monitor publishes one per interval for each running "
            "instance group of the service; is the service deployed, and the monitor running?"));
cleanup:
    json_decref (samples);
    al_subscriber_destroy (&subscriber);
    for (size_t i = 0; i < 3; i++)
        al_rules_stream_destroy (&judges [i]);
    al_policy_destroy (&policy);
    al_policy_errors_destroy (&policy_errors);
    return document;
}

static const struct {
    const char *name;
    s_tool_fn *run;
} s_tool_table [] = {
    { "submit_release",   s_tool_submit_release },
    { "get_status",       s_tool_get_status },
    { "list_approvals",   s_tool_list_approvals },
    { "request_rollback", s_tool_request_rollback },
    { "recent_signals",   s_tool_recent_signals },
};

//  ---- JSON-RPC ---------------------------------------------------------------------

static json_t *
s_response (json_t *id, json_t *result)
{
    return json_pack ("{s:s, s:O, s:o}", "jsonrpc", "2.0", "id", id? id: json_null (), "result", result);
}

static json_t *
s_error (json_t *id, int code, const char *message, const char *data)
{
    json_t *error = json_pack ("{s:i, s:s}", "code", code, "message", message);
    if (data)
        json_object_set_new (error, "data", json_string (data));
    return json_pack ("{s:s, s:O, s:o}", "jsonrpc", "2.0", "id", id? id: json_null (), "error", error);
}

//  tools/call: the tool's document as MCP content.
static json_t *
s_tools_call (s_mcp_t *self, json_t *id, json_t *params)
{
    json_t *name_item = json_object_get (params, "name");
    json_t *arguments = json_object_get (params, "arguments");
    if (!json_is_string (name_item))
        return s_error (id, S_INVALID_PARAMS, "Invalid params", "tools/call: params.name must be a string");
    if (arguments && !json_is_object (arguments) && !json_is_null (arguments))
        return s_error (id, S_INVALID_PARAMS, "Invalid params", "tools/call: params.arguments must be an object");
    const char *name = json_string_value (name_item);
    json_t *empty = json_object ();
    if (!json_is_object (arguments))
        arguments = empty;
    bool failed = false;
    json_t *document = NULL;
    for (size_t i = 0; i < sizeof s_tool_table / sizeof s_tool_table [0] && !document; i++)
        if (strcmp (name, s_tool_table [i].name) == 0)
            document = s_tool_table [i].run (self, arguments, &failed);
    if (!document && (strcmp (name, "approve") == 0 || strcmp (name, "deny") == 0))
        document = s_failure (&failed, "there is no %s tool: a production approval is a human's decision, signed "
                              "with their own key (`airlock %s REQUEST_ID`); tell a human the request id from "
                              "list_approvals", name, name);
    else
    if (!document)
        document = s_failure (&failed, "unknown tool '%s'; the tools are submit_release, get_status, list_approvals, "
                              "request_rollback, recent_signals", name);
    json_decref (empty);
    zsys_info ("mcp: tools/call %s: %s", name, failed? "error": "ok");
    char *text = json_dumps (document, JSON_INDENT (2) | JSON_REAL_PRECISION (6));
    assert (text);
    json_t *result = json_pack ("{s:[{s:s, s:s}], s:b}", "content", "type", "text", "text", text, "isError", failed);
    free (text);
    //  The same document as structured content (2025-06-18 on); every tool answers an
    //  object, the schema outputSchema announces.
    if (s_protocol_at_least (self, "2025-06-18") && json_is_object (document))
        json_object_set (result, "structuredContent", document);
    json_decref (document);
    return s_response (id, result);
}

//  tools/list for the negotiated revision: annotations from 2025-03-26, outputSchema
//  and title from 2025-06-18. A new array (the caller owns it).
static json_t *
s_tools_for_protocol (s_mcp_t *self)
{
    json_t *tools = json_deep_copy (self->tools);
    assert (tools);
    size_t index;
    json_t *tool;
    json_array_foreach (tools, index, tool) {
        const char *name = json_string_value (json_object_get (tool, "name"));
        for (size_t i = 0; i < sizeof s_tool_meta / sizeof s_tool_meta [0]; i++) {
            if (strcmp (name, s_tool_meta [i].name) != 0)
                continue;
            if (s_protocol_at_least (self, "2025-03-26"))
                json_object_set_new (tool, "annotations", json_pack ("{s:s, s:b, s:b, s:b, s:b}",
                                     "title", s_tool_meta [i].title, "readOnlyHint", s_tool_meta [i].read_only,
                                     "destructiveHint", false, "idempotentHint", s_tool_meta [i].idempotent,
                                     "openWorldHint", false));
            if (s_protocol_at_least (self, "2025-06-18")) {
                json_object_set_new (tool, "title", json_string (s_tool_meta [i].title));
                json_t *schema = json_loads (s_tool_meta [i].output_schema, 0, NULL);
                assert (schema);
                json_object_set_new (tool, "outputSchema", schema);
            }
        }
    }
    return tools;
}

//  One JSON-RPC message (not a batch). The response, or NULL for a notification or a
//  response sent to us.
static json_t *
s_handle (s_mcp_t *self, json_t *message)
{
    if (!json_is_object (message))
        return s_error (NULL, S_INVALID_REQUEST, "Invalid Request", "a message is a JSON object");
    json_t *id = json_object_get (message, "id");
    if (id && !json_is_string (id) && !json_is_number (id) && !json_is_null (id))
        return s_error (NULL, S_INVALID_REQUEST, "Invalid Request", "id must be a string, a number or null");
    json_t *method_item = json_object_get (message, "method");
    if (!method_item && (json_object_get (message, "result") || json_object_get (message, "error")))
        return NULL;        // a response: we send no requests, so nothing waits for it
    if (!json_is_string (json_object_get (message, "jsonrpc"))
    ||  strcmp (json_string_value (json_object_get (message, "jsonrpc")), "2.0") != 0)
        return s_error (id, S_INVALID_REQUEST, "Invalid Request", "jsonrpc must be \"2.0\"");
    if (!json_is_string (method_item))
        return s_error (id, S_INVALID_REQUEST, "Invalid Request", "method must be a string");
    const char *method = json_string_value (method_item);
    json_t *params = json_object_get (message, "params");
    if (params && !json_is_object (params) && !json_is_array (params))
        return s_error (id, S_INVALID_REQUEST, "Invalid Request", "params must be an object or an array");
    if (!id)
        return NULL;        // notifications/initialized, notifications/cancelled, ...: nothing to answer
    if (params && !json_is_object (params))
        return s_error (id, S_INVALID_PARAMS, "Invalid params", "params must be an object");

    if (strcmp (method, "initialize") == 0) {
        json_t *version = json_object_get (params, "protocolVersion");
        if (params && version && !json_is_string (version))
            return s_error (id, S_INVALID_PARAMS, "Invalid params", "protocolVersion must be a string");
        //  The client's revision if spoken here, else the newest; a client that cannot
        //  speak the answer disconnects.
        int rank = s_protocol_rank (json_string_value (version));
        self->protocol = s_protocol_versions [rank < 0? 0: rank];
        return s_response (id, json_pack ("{s:s, s:{s:{}}, s:{s:s, s:s}, s:s}",
                           "protocolVersion", self->protocol, "capabilities", "tools",
                           "serverInfo", "name", "airlock", "version", S_SERVER_VERSION,
                           "instructions", s_instructions));
    }
    if (strcmp (method, "ping") == 0)
        return s_response (id, json_object ());
    if (strcmp (method, "tools/list") == 0)
        return s_response (id, json_pack ("{s:o}", "tools", s_tools_for_protocol (self)));
    if (strcmp (method, "tools/call") == 0) {
        if (!params)
            return s_error (id, S_INVALID_PARAMS, "Invalid params", "tools/call needs params {name, arguments}");
        return s_tools_call (self, id, params);
    }
    return s_error (id, S_METHOD_NOT_FOUND, "Method not found", method);
}

//  One line from stdin: a message or a batch. The answer to write, or NULL.
static json_t *
s_handle_line (s_mcp_t *self, const char *line, size_t length)
{
    json_error_t parse;
    json_t *message = json_loadb (line, length, JSON_DECODE_ANY, &parse);
    if (!message) {
        char data [256];
        snprintf (data, sizeof data, "column %d: %s", parse.column, parse.text);
        return s_error (NULL, S_PARSE_ERROR, "Parse error", data);
    }
    json_t *answer = NULL;
    if (json_is_array (message)) {
        if (json_array_size (message) == 0)
            answer = s_error (NULL, S_INVALID_REQUEST, "Invalid Request", "an empty batch");
        else {
            answer = json_array ();
            size_t index;
            json_t *item;
            json_array_foreach (message, index, item) {
                json_t *response = s_handle (self, item);
                if (response)
                    json_array_append_new (answer, response);
            }
            if (json_array_size (answer) == 0) {
                json_decref (answer);
                answer = NULL;      // a batch of notifications: nothing is sent back
            }
        }
    }
    else
        answer = s_handle (self, message);
    json_decref (message);
    return answer;
}

//  Write all of text and a newline to fd. -1 when the output is gone.
static int
s_write (int fd, json_t *answer)
{
    char *text = json_dumps (answer, JSON_COMPACT);
    assert (text);
    size_t length = strlen (text);
    text [length] = '\n';           // json_dumps's terminator becomes the line's end
    int rc = 0;
    for (size_t done = 0; done < length + 1 && rc == 0; ) {
        ssize_t wrote = write (fd, text + done, length + 1 - done);
        if (wrote < 0 && errno == EINTR)
            continue;
        if (wrote <= 0)
            rc = -1;
        else
            done += (size_t) wrote;
    }
    free (text);
    return rc;
}

al_mcp_server_t *
al_mcp_server_new (al_config_t *config, al_agent_t *agent)
{
    assert (config && agent);
    al_mcp_server_t *self = (al_mcp_server_t *) calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->config = config;
    self->agent = agent;
    self->protocol = s_protocol_versions [S_PROTOCOL_COUNT - 1];
    json_error_t parse;
    self->tools = json_loads (s_tools_json, 0, &parse);
    assert (self->tools);       // our own constant
    return self;
}

void
al_mcp_server_destroy (al_mcp_server_t **self_p)
{
    assert (self_p);
    al_mcp_server_t *self = *self_p;
    if (!self)
        return;
    json_decref (self->tools);
    free (self);
    *self_p = NULL;
}

const char *
al_mcp_server_protocol (const al_mcp_server_t *self)
{
    assert (self);
    return self->protocol;
}

char *
al_mcp_server_handle (al_mcp_server_t *self, const char *line, size_t length)
{
    assert (self && line);
    json_t *answer = s_handle_line (self, line, length);
    if (!answer)
        return NULL;
    char *text = json_dumps (answer, JSON_COMPACT);
    assert (text);
    json_decref (answer);
    return text;
}

int
al_mcp_server_serve (al_mcp_server_t *self, int input, int output)
{
    assert (self);
    size_t size = 65536, used = 0;
    char *buffer = (char *) malloc (size);
    assert (buffer);
    bool discarding = false;        // inside a line above S_MAX_LINE: drop it
    bool ended = false;
    int rc = 0;
    while (!ended && rc == 0 && !al_agent_interrupted ()) {
        struct pollfd item = { .fd = input, .events = POLLIN };
        int ready = poll (&item, 1, 250);
        if (ready < 0 && errno != EINTR)
            break;
        if (ready <= 0)
            continue;
        if (size - used < 65536) {
            size *= 2;
            buffer = (char *) realloc (buffer, size);
            assert (buffer);
        }
        ssize_t got = read (input, buffer + used, size - used - 1);
        if (got < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (got <= 0) {
            ended = true;
            if (used > 0 && !discarding)
                buffer [used++] = '\n';     // a last line without its newline
        }
        else
            used += (size_t) got;
        //  Every complete line.
        char *start = buffer, *newline;
        while (rc == 0 && (newline = memchr (start, '\n', used - (size_t) (start - buffer)))) {
            size_t length = (size_t) (newline - start);
            if (length && start [length - 1] == '\r')
                length--;
            if (discarding)
                discarding = false;
            else
            if (strspn (start, " \t\r") < length) {
                json_t *answer = s_handle_line (self, start, length);
                if (answer)
                    rc = s_write (output, answer);
                json_decref (answer);
            }
            start = newline + 1;
        }
        used -= (size_t) (start - buffer);
        memmove (buffer, start, used);
        if (used > S_MAX_LINE) {
            if (!discarding) {
                json_t *answer = s_error (NULL, S_PARSE_ERROR, "Parse error", "a message above 4 MiB");
                rc = s_write (output, answer);
                json_decref (answer);
            }
            discarding = true;
            used = 0;
        }
    }
    free (buffer);
    return rc;
}
