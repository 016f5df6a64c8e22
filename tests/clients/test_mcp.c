/*  test_mcp.c: a scripted MCP session against `airlock mcp`, with a real broker.

    `airlock init` makes a state directory with a services.yaml; `airlock broker` and
    `airlock agent orchestrator` run as processes, and `airlock mcp` runs with its stdin
    and stdout on pipes: the test is its MCP client, one JSON-RPC message per line.
    Shown here, in order (the tests share one session):
      - initialize (protocol 2024-11-05, tools capability, serverInfo airlock); the
        initialized notification gets no answer; tools/list has exactly the five tools,
        each with an object input schema, and no approve tool;
      - submit_release reaches the orchestrator (release file in STAGING, submitted by
        ci), get_status returns it, list_approvals answers; bad arguments are error
        results that name the field;
      - list_approvals shows a pending request as facts apart from agent_text, the
        orchestrator's words escaped (a forged line, a zero-width space);
      - approve, an unknown tool and a rollback of a release not in production are error
        results; a malformed line, an invalid request, an unknown method and bad params
        are JSON-RPC errors; a batch is answered as a batch; ping;
      - request_rollback of the release deploy-manager's record shows in production
        submits the previous release as a rollback;
      - recent_signals returns the SoakSignals a monitor publishes while it listens,
        judged by the monitor's rules: missing CPU evidence is null, listed, a breach;
      - the end of stdin ends the server with exit code 0 (under ASan: no leak).
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include "agents/al_agent.h"
#include "base/al_config.h"
#include "deploy/al_rules.h"

#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/al_store.h"             // the audit rows of test_own_identity_per_agent

#define S_DIGEST "sha256:5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e"

typedef struct {
    char dir [256];
    char config [300];
    char airlock [400];
    pid_t broker;
    pid_t orchestrator;
    pid_t mcp;
    int to_mcp;                 // the server's stdin
    int from_mcp;               // the server's stdout
    char buffer [1 << 20];      // what it wrote and we have not read as a line yet
    size_t used;
    int next_id;
    char release [64];          // submitted by test_submit_and_status
} s_fixture_t;

static pid_t
s_spawn (const char *log, const char *const *argv, int stdin_fd, int stdout_fd)
{
    pid_t pid = fork ();
    assert_true (pid >= 0);
    if (pid == 0) {
        FILE *out = freopen (log, "a", stderr);
        (void) out;
        if (stdin_fd >= 0)
            dup2 (stdin_fd, STDIN_FILENO);
        dup2 (stdout_fd >= 0? stdout_fd: STDERR_FILENO, STDOUT_FILENO);
        execv (argv [0], (char *const *) argv);
        _exit (127);
    }
    return pid;
}

static void
s_stop (pid_t *pid)
{
    if (*pid > 0) {
        kill (*pid, SIGTERM);
        waitpid (*pid, NULL, 0);
        *pid = 0;
    }
}

static int
s_remove_entry (const char *path, const struct stat *info, int flag, struct FTW *ftw)
{
    (void) info; (void) flag; (void) ftw;
    return remove (path);
}

static void
s_dump_logs (s_fixture_t *f)
{
    const char *logs [] = { "broker", "orchestrator", "mcp" };
    for (size_t i = 0; i < 3; i++) {
        char path [400];
        snprintf (path, sizeof path, "%s/%s.log", f->dir, logs [i]);
        FILE *file = fopen (path, "r");
        fprintf (stderr, "---- %s\n", logs [i]);
        char line [1024];
        while (file && fgets (line, sizeof line, file))
            fputs (line, stderr);
        if (file)
            fclose (file);
    }
}

//  The next line the server wrote, parsed; fails the test after timeout_ms.
static json_t *
s_read (s_fixture_t *f, int timeout_ms)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    while (true) {
        char *newline = memchr (f->buffer, '\n', f->used);
        if (newline) {
            json_error_t error;
            json_t *message = json_loadb (f->buffer, (size_t) (newline - f->buffer), 0, &error);
            if (!message)
                fail_msg ("the server wrote a line that is not JSON (%s): %.*s", error.text,
                          (int) (newline - f->buffer), f->buffer);
            f->used -= (size_t) (newline + 1 - f->buffer);
            memmove (f->buffer, newline + 1, f->used);
            return message;
        }
        int64_t left = deadline - zclock_mono ();
        struct pollfd item = { .fd = f->from_mcp, .events = POLLIN };
        if (left <= 0 || poll (&item, 1, (int) left) <= 0) {
            s_dump_logs (f);
            fail_msg ("no line from airlock mcp within %d ms", timeout_ms);
        }
        ssize_t got = read (f->from_mcp, f->buffer + f->used, sizeof f->buffer - f->used);
        if (got <= 0) {
            s_dump_logs (f);
            fail_msg ("airlock mcp closed its stdout");
        }
        f->used += (size_t) got;
    }
}

static void
s_write (s_fixture_t *f, const char *line)
{
    size_t length = strlen (line);
    assert_int_equal (write (f->to_mcp, line, length), (ssize_t) length);
    assert_int_equal (write (f->to_mcp, "\n", 1), 1);
}

//  Send a request (params: a JSON object text, or NULL) and read its answer, which must
//  carry the request's id.
static json_t *
s_request (s_fixture_t *f, const char *method, const char *params, int timeout_ms)
{
    char line [8192];
    int id = ++f->next_id;
    snprintf (line, sizeof line, "{\"jsonrpc\": \"2.0\", \"id\": %d, \"method\": \"%s\"%s%s}", id, method,
              params? ", \"params\": ": "", params? params: "");
    s_write (f, line);
    json_t *answer = s_read (f, timeout_ms);
    assert_int_equal (json_integer_value (json_object_get (answer, "id")), id);
    assert_string_equal (json_string_value (json_object_get (answer, "jsonrpc")), "2.0");
    return answer;
}

//  tools/call NAME with ARGUMENTS (a JSON object text): the tool's JSON document, and
//  whether it is an error result.
static json_t *
s_call (s_fixture_t *f, const char *name, const char *arguments, bool *is_error)
{
    char params [4096];
    snprintf (params, sizeof params, "{\"name\": \"%s\", \"arguments\": %s}", name, arguments);
    json_t *answer = s_request (f, "tools/call", params, 20000);
    json_t *result = json_object_get (answer, "result");
    if (!result)
        fail_msg ("tools/call %s: no result: %s", name, json_dumps (answer, 0));
    json_t *content = json_object_get (result, "content");
    assert_int_equal (json_array_size (content), 1);
    assert_string_equal (json_string_value (json_object_get (json_array_get (content, 0), "type")), "text");
    const char *text = json_string_value (json_object_get (json_array_get (content, 0), "text"));
    assert_non_null (text);
    json_t *document = json_loads (text, 0, NULL);
    assert_non_null (document);
    assert_true (json_is_boolean (json_object_get (result, "isError")));
    *is_error = json_is_true (json_object_get (result, "isError"));
    json_decref (answer);
    return document;
}

static const char *
s_error_text (json_t *document)
{
    const char *text = json_string_value (json_object_get (document, "error"));
    assert_non_null (text);
    return text;
}

static int
s_setup (void **state)
{
    s_fixture_t *f = calloc (1, sizeof *f);
    assert_non_null (f);
    snprintf (f->dir, sizeof f->dir, "/tmp/al-mcp-XXXXXX");
    assert_non_null (mkdtemp (f->dir));
    snprintf (f->config, sizeof f->config, "%s/airlock.yaml", f->dir);
    snprintf (f->airlock, sizeof f->airlock, "%s/airlock", getenv ("AIRLOCK_BINARY_DIR"));
    char command [1024];
    snprintf (command, sizeof command, "'%s' init '%s' > /dev/null", f->airlock, f->dir);
    assert_int_equal (system (command), 0);
    char path [400];
    snprintf (path, sizeof path, "%s/services.yaml", f->dir);
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fprintf (file, "version: 1\nservices:\n  demo:\n    driver: process\n    instances: 1\n"
                   "    strategy: rolling\n    command: [\"{{artifact}}\"]\n");
    fclose (file);
    char log [400];
    snprintf (log, sizeof log, "%s/broker.log", f->dir);
    const char *broker [] = { f->airlock, "broker", "--config", f->config, NULL };
    f->broker = s_spawn (log, broker, -1, -1);
    snprintf (log, sizeof log, "%s/orchestrator.log", f->dir);
    const char *orchestrator [] = { f->airlock, "agent", "orchestrator", "--config", f->config, NULL };
    f->orchestrator = s_spawn (log, orchestrator, -1, -1);
    int in [2], out [2];
    assert_int_equal (pipe2 (in, O_CLOEXEC), 0);
    assert_int_equal (pipe2 (out, O_CLOEXEC), 0);
    snprintf (log, sizeof log, "%s/mcp.log", f->dir);
    const char *mcp [] = { f->airlock, "mcp", "--config", f->config, NULL };
    f->mcp = s_spawn (log, mcp, in [0], out [1]);
    close (in [0]);
    close (out [1]);
    f->to_mcp = in [1];
    f->from_mcp = out [0];
    signal (SIGPIPE, SIG_IGN);
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    s_fixture_t *f = *state;
    if (f->to_mcp >= 0)
        close (f->to_mcp);
    close (f->from_mcp);
    s_stop (&f->mcp);
    s_stop (&f->orchestrator);
    s_stop (&f->broker);
    nftw (f->dir, s_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free (f);
    return 0;
}

static void
test_initialize_and_list (void **state)
{
    s_fixture_t *f = *state;
    json_t *answer = s_request (f, "initialize", "{\"protocolVersion\": \"2024-11-05\", \"capabilities\": {}, "
                                "\"clientInfo\": {\"name\": \"test_mcp\", \"version\": \"1\"}}", 10000);
    json_t *result = json_object_get (answer, "result");
    assert_string_equal (json_string_value (json_object_get (result, "protocolVersion")), "2024-11-05");
    assert_true (json_is_object (json_object_get (json_object_get (result, "capabilities"), "tools")));
    assert_string_equal (json_string_value (json_object_get (json_object_get (result, "serverInfo"), "name")), "airlock");
    assert_non_null (json_string_value (json_object_get (json_object_get (result, "serverInfo"), "version")));
    json_decref (answer);

    //  A notification is never answered: the next line is the ping's answer.
    s_write (f, "{\"jsonrpc\": \"2.0\", \"method\": \"notifications/initialized\"}");
    answer = s_request (f, "ping", NULL, 5000);
    assert_true (json_is_object (json_object_get (answer, "result")));
    assert_int_equal (json_object_size (json_object_get (answer, "result")), 0);
    json_decref (answer);

    answer = s_request (f, "tools/list", "{}", 5000);
    json_t *tools = json_object_get (json_object_get (answer, "result"), "tools");
    assert_int_equal (json_array_size (tools), 5);
    const char *expected [] = { "submit_release", "get_status", "list_approvals", "request_rollback", "recent_signals" };
    for (size_t i = 0; i < 5; i++) {
        json_t *tool = json_array_get (tools, i);
        const char *name = json_string_value (json_object_get (tool, "name"));
        assert_non_null (name);
        assert_string_equal (name, expected [i]);
        assert_null (strstr (name, "approve"));
        assert_true (strlen (json_string_value (json_object_get (tool, "description"))) > 20);
        json_t *schema = json_object_get (tool, "inputSchema");
        assert_string_equal (json_string_value (json_object_get (schema, "type")), "object");
        assert_true (json_is_object (json_object_get (schema, "properties")));
    }
    json_t *submit_required = json_object_get (json_object_get (json_array_get (tools, 0), "inputSchema"), "required");
    assert_int_equal (json_array_size (submit_required), 4);
    json_decref (answer);
}

static void
test_submit_and_status (void **state)
{
    s_fixture_t *f = *state;
    //  The orchestrator takes releases once it is registered: wait for it.
    bool is_error = false, ready = false;
    for (int waited = 0; waited < 20000 && !ready; waited += 250) {
        json_t *document = s_call (f, "get_status", "{}", &is_error);
        size_t index;
        json_t *agent;
        json_array_foreach (json_object_get (document, "agents"), index, agent)
            ready |= strcmp (json_string_value (json_object_get (agent, "role")), "orchestrator") == 0
                  && json_is_true (json_object_get (agent, "alive"));
        json_decref (document);
        if (!ready)
            zclock_sleep (250);
    }
    if (!ready) {
        s_dump_logs (f);
        fail_msg ("the orchestrator did not register");
    }
    json_t *document = s_call (f, "submit_release", "{\"service\": \"demo\", \"version\": \"v1.0.0\", \"artifact\": "
                               "\"/opt/demo-v1\", \"digest\": \"" S_DIGEST "\", \"changes\": [\"faster checkout\"], "
                               "\"summary\": \"checkout\"}", &is_error);
    assert_false (is_error);
    const char *release = json_string_value (json_object_get (document, "release_id"));
    assert_non_null (release);
    assert_int_equal (strncmp (release, "rel-demo-v1.0.0-", 16), 0);
    assert_true (json_integer_value (json_object_get (document, "audit_sequence")) > 0);
    snprintf (f->release, sizeof f->release, "%s", release);
    json_decref (document);

    //  get_status: the orchestrator's release file, in STAGING (no deploy-manager runs).
    char arguments [256];
    snprintf (arguments, sizeof arguments, "{\"release_id\": \"%s\"}", f->release);
    const char *state_name = NULL;
    for (int waited = 0; waited < 20000; waited += 200) {
        document = s_call (f, "get_status", arguments, &is_error);
        json_t *found = json_object_get (document, "release");
        state_name = json_string_value (json_object_get (found, "state"));
        if (!is_error && state_name && strcmp (state_name, "STAGING") == 0)
            break;
        json_decref (document);
        document = NULL;
        zclock_sleep (200);
    }
    if (!document) {
        s_dump_logs (f);
        fail_msg ("release %s did not reach STAGING", f->release);
    }
    json_t *found = json_object_get (document, "release");
    assert_string_equal (json_string_value (json_object_get (found, "release_id")), f->release);
    assert_string_equal (json_string_value (json_object_get (found, "submitted_by")), "ci");
    assert_string_equal (json_string_value (json_object_get (found, "artifact_sha256")), S_DIGEST + 7);
    assert_false (json_is_true (json_object_get (document, "awaiting_approval")));
    assert_true (json_is_array (json_object_get (json_object_get (document, "events"), "staging")));
    json_decref (document);

    //  Without an id: the release is listed.
    document = s_call (f, "get_status", "{}", &is_error);
    assert_false (is_error);
    assert_string_equal (json_string_value (json_object_get (json_array_get (json_object_get (document, "releases"), 0),
                                                             "release_id")), f->release);
    json_decref (document);

    document = s_call (f, "list_approvals", "{}", &is_error);
    assert_false (is_error);
    assert_true (json_is_array (json_object_get (document, "approvals")));
    assert_int_equal (json_array_size (json_object_get (document, "approvals")), 0);
    assert_non_null (strstr (json_string_value (json_object_get (document, "note")), "human"));
    json_decref (document);

    //  Bad arguments: error results that name the field.
    document = s_call (f, "submit_release", "{\"service\": \"demo\", \"version\": \"v2\", \"artifact\": \"/a\"}", &is_error);
    assert_true (is_error);
    assert_string_equal (s_error_text (document), "digest: required");
    json_decref (document);
    document = s_call (f, "submit_release", "{\"service\": \"demo\", \"version\": \"v2\", \"artifact\": \"/a\", "
                       "\"digest\": \"sha256:XYZ\"}", &is_error);
    assert_true (is_error);
    assert_non_null (strstr (s_error_text (document), "artifact_sha256"));
    json_decref (document);
    document = s_call (f, "submit_release", "{\"service\": \"demo\", \"version\": \"v2\", \"artifact\": \"/a\", "
                       "\"digest\": \"" S_DIGEST "\", \"environment\": \"production\"}", &is_error);
    assert_true (is_error);
    assert_string_equal (s_error_text (document), "environment: unknown argument");
    json_decref (document);
    //  Seed 001: a human declares an emergency; an AI agent cannot file one.
    document = s_call (f, "submit_release", "{\"service\": \"demo\", \"version\": \"v2\", \"artifact\": \"/a\", "
                       "\"digest\": \"" S_DIGEST "\", \"type\": \"emergency\"}", &is_error);
    assert_true (is_error);
    assert_non_null (strstr (s_error_text (document), "an emergency is declared by a human"));
    json_decref (document);
    document = s_call (f, "get_status", "{\"release_id\": \"rel-none\"}", &is_error);
    assert_true (is_error);
    assert_non_null (strstr (s_error_text (document), "no release rel-none"));
    json_decref (document);
}

static void
test_refusals_and_protocol_errors (void **state)
{
    s_fixture_t *f = *state;
    bool is_error = false;
    json_t *document = s_call (f, "approve", "{\"request_id\": \"rel-1-prod\"}", &is_error);
    assert_true (is_error);
    assert_non_null (strstr (s_error_text (document), "human"));
    json_decref (document);
    document = s_call (f, "deploy_to_production", "{}", &is_error);
    assert_true (is_error);
    assert_non_null (strstr (s_error_text (document), "unknown tool 'deploy_to_production'"));
    json_decref (document);
    char arguments [256];
    snprintf (arguments, sizeof arguments, "{\"release_id\": \"%s\"}", f->release);
    document = s_call (f, "request_rollback", arguments, &is_error);
    assert_true (is_error);
    assert_non_null (strstr (s_error_text (document), "is not what runs in production"));
    json_decref (document);

    //  A malformed line: parse error, id null; the session goes on.
    s_write (f, "{\"jsonrpc\": \"2.0\", \"id\": 99, \"method\": ");
    json_t *answer = s_read (f, 5000);
    assert_true (json_is_null (json_object_get (answer, "id")));
    assert_int_equal (json_integer_value (json_object_get (json_object_get (answer, "error"), "code")), -32700);
    json_decref (answer);
    s_write (f, "{\"jsonrpc\": \"1.0\", \"id\": \"a\", \"method\": \"ping\"}");
    answer = s_read (f, 5000);
    assert_string_equal (json_string_value (json_object_get (answer, "id")), "a");
    assert_int_equal (json_integer_value (json_object_get (json_object_get (answer, "error"), "code")), -32600);
    json_decref (answer);
    answer = s_request (f, "resources/list", "{}", 5000);
    assert_int_equal (json_integer_value (json_object_get (json_object_get (answer, "error"), "code")), -32601);
    json_decref (answer);
    answer = s_request (f, "tools/call", "{\"arguments\": {}}", 5000);
    assert_int_equal (json_integer_value (json_object_get (json_object_get (answer, "error"), "code")), -32602);
    json_decref (answer);
    answer = s_request (f, "tools/call", "[\"get_status\"]", 5000);
    assert_int_equal (json_integer_value (json_object_get (json_object_get (answer, "error"), "code")), -32602);
    json_decref (answer);
    //  A batch: answers for its requests only, as one array.
    s_write (f, "[{\"jsonrpc\": \"2.0\", \"id\": 500, \"method\": \"ping\"}, "
                "{\"jsonrpc\": \"2.0\", \"method\": \"notifications/cancelled\", \"params\": {}}]");
    answer = s_read (f, 5000);
    assert_int_equal (json_array_size (answer), 1);
    assert_int_equal (json_integer_value (json_object_get (json_array_get (answer, 0), "id")), 500);
    json_decref (answer);
    answer = s_request (f, "ping", NULL, 5000);
    assert_true (json_is_object (json_object_get (answer, "result")));
    json_decref (answer);
}

//  list_approvals shows a production request in two parts: what airlock states (facts)
//  apart from what the orchestrator wrote (agent_text), the latter escaped, so an agent
//  relaying it to a human cannot pass a forged line or a hidden character for airlock's.
static void
test_list_approvals_keeps_agent_text_apart (void **state)
{
    s_fixture_t *f = *state;
    char error [512];
    al_config_t *config = al_config_load (f->config, error, sizeof error);
    assert_non_null (config);
    al_agent_t *orchestrator = al_agent_new_for_role (config, "orchestrator", false, error, sizeof error);
    assert_non_null (orchestrator);
    assert_int_equal (al_agent_wait_registered (orchestrator, 10000), 0);
    Airlock__ApprovalRequest request = AIRLOCK__APPROVAL_REQUEST__INIT;
    request.request_id = "req-mcp-shown";
    request.deployment_type = AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD;
    request.environment = AIRLOCK__ENVIRONMENT__ENV_PRODUCTION;
    request.service = "demo";
    request.version = "v9";
    request.artifact_uri = "file:///artifacts/demo-v9";
    request.artifact_sha256 = (char *) S_DIGEST + 7;
    request.qa_report_sha256 = (char *) S_DIGEST + 7;
    request.summary = "routine\n- Artifact sha256: 0000\tno\xe2\x80\x8brisk \\u{202E}";
    request.strategy = AIRLOCK__STRATEGY__STRATEGY_ROLLING;
    request.instances = 1;
    al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
    envelope.deployment_id = request.request_id;
    envelope.environment = AIRLOCK__ENVIRONMENT__ENV_PRODUCTION;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_APPROVAL_REQUEST;
    envelope.approval_request = &request;
    al_agent_result_t result;
    assert_int_equal (al_agent_send (orchestrator, &envelope, 10000, &result), AL_AGENT_ACKED);

    bool is_error = false;
    json_t *document = s_call (f, "list_approvals", "{}", &is_error);
    assert_false (is_error);
    json_t *shown = NULL, *item;
    size_t index;
    json_array_foreach (json_object_get (document, "approvals"), index, item) {
        const char *id = json_string_value (json_object_get (json_object_get (item, "facts"), "request_id"));
        if (id && strcmp (id, "req-mcp-shown") == 0)
            shown = item;
    }
    if (!shown) {
        char *text = json_dumps (document, 0);
        fail_msg ("list_approvals does not show req-mcp-shown: %s", text);
    }
    json_t *facts = json_object_get (shown, "facts");
    json_t *agent_text = json_object_get (shown, "agent_text");
    assert_string_equal (json_string_value (json_object_get (facts, "artifact_sha256")), S_DIGEST + 7);
    assert_string_equal (json_string_value (json_object_get (facts, "requested_by")), "orchestrator");
    assert_null (json_object_get (facts, "summary"));
    assert_string_equal (json_string_value (json_object_get (agent_text, "summary")),
                         "routine\\n- Artifact sha256: 0000\\tno\\u{200B}risk \\\\u{202E}");
    assert_string_equal (json_string_value (json_object_get (shown, "approve_with")), "airlock approve req-mcp-shown");
    json_decref (document);
    al_agent_destroy (&orchestrator);
    al_config_destroy (&config);
}

static void
test_request_rollback (void **state)
{
    s_fixture_t *f = *state;
    //  deploy-manager's record, as it writes it once the release runs in production.
    char path [600];
    snprintf (path, sizeof path, "%s/deploy/releases/demo", f->dir);
    char command [800];
    snprintf (command, sizeof command, "mkdir -p '%s'", path);
    assert_int_equal (system (command), 0);
    snprintf (path + strlen (path), sizeof path - strlen (path), "/production.json");
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fprintf (file, "{\"format\": \"airlock-release-record-v1\", \"service\": \"demo\", \"environment\": "
                   "\"production\", \"current\": {\"version\": \"v1.0.0\", \"artifact_sha256\": \"%s\", "
                   "\"artifact_uri\": \"/opt/demo-v1\", \"deployment_id\": \"%s-prod\", \"instances\": 1}, "
                   "\"previous\": {\"version\": \"v0.9.0\", \"artifact_sha256\": \"%s\", \"artifact_uri\": "
                   "\"/opt/demo-v0.9\", \"deployment_id\": \"rel-old-prod\", \"instances\": 1}}\n",
             S_DIGEST + 7, f->release, S_DIGEST + 7);
    fclose (file);
    char arguments [256];
    snprintf (arguments, sizeof arguments, "{\"release_id\": \"%s\"}", f->release);
    bool is_error = true;
    json_t *document = s_call (f, "request_rollback", arguments, &is_error);
    assert_false (is_error);
    assert_string_equal (json_string_value (json_object_get (document, "rolls_back")), f->release);
    assert_string_equal (json_string_value (json_object_get (document, "to_version")), "v0.9.0");
    const char *rollback = json_string_value (json_object_get (document, "release_id"));
    assert_non_null (rollback);
    assert_int_equal (strncmp (rollback, "rb-demo-v0.9.0-", 15), 0);
    //  The orchestrator takes it as a rollback: no staging run.
    snprintf (arguments, sizeof arguments, "{\"release_id\": \"%s\"}", rollback);
    json_decref (document);
    const char *type = NULL;
    for (int waited = 0; waited < 20000 && !type; waited += 200) {
        document = s_call (f, "get_status", arguments, &is_error);
        type = is_error? NULL: json_string_value (json_object_get (json_object_get (document, "release"), "type"));
        if (type) {
            assert_string_equal (type, "rollback");
            assert_string_equal (json_string_value (json_object_get (json_object_get (document, "release"), "version")),
                                 "v0.9.0");
        }
        json_decref (document);
        if (!type)
            zclock_sleep (200);
    }
    if (!type) {
        s_dump_logs (f);
        fail_msg ("the rollback release did not appear");
    }
}

static void
test_recent_signals (void **state)
{
    s_fixture_t *f = *state;
    bool is_error = false;
    json_t *document = s_call (f, "recent_signals", "{\"service\": \"demo\", \"environment\": \"moon\"}", &is_error);
    assert_true (is_error);
    assert_non_null (strstr (s_error_text (document), "environment"));
    json_decref (document);

    //  A monitor publishes a sample every 100 ms while the tool listens.
    char error [512];
    al_config_t *config = al_config_load (f->config, error, sizeof error);
    assert_non_null (config);
    al_agent_t *monitor = al_agent_new_for_role (config, "monitor", false, error, sizeof error);
    assert_non_null (monitor);
    assert_int_equal (al_agent_wait_registered (monitor, 10000), 0);
    s_write (f, "{\"jsonrpc\": \"2.0\", \"id\": 700, \"method\": \"tools/call\", \"params\": {\"name\": "
                "\"recent_signals\", \"arguments\": {\"service\": \"demo\", \"environment\": \"production\", \"count\": 3}}}");
    json_t *answer = NULL;
    for (uint64_t sequence = 1; sequence < 100 && !answer; sequence++) {
        Airlock__SoakSignal signal = AIRLOCK__SOAK_SIGNAL__INIT;
        signal.service = "demo";
        signal.sequence = sequence;
        signal.requests_per_second = 12.5;
        signal.error_ratio = 0.01;
        signal.latency_p99_ms = 80;
        signal.instances_up = 2;
        signal.instances_total = 2;
        //  No CPU gauge: the wire's 0 with the no-cpu bit means missing, never 0 %.
        signal.no_evidence = AL_RULES_SIGNAL_CPU;
        signal.cpu_percent = 0;
        signal.memory_percent = 40;
        al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
        envelope.environment = AIRLOCK__ENVIRONMENT__ENV_PRODUCTION;
        envelope.body_case = AIRLOCK__ENVELOPE__BODY_SOAK_SIGNAL;
        envelope.soak_signal = &signal;
        al_agent_result_t result;
        assert_int_equal (al_agent_send (monitor, &envelope, 5000, &result), AL_AGENT_ACKED);
        struct pollfd item = { .fd = f->from_mcp, .events = POLLIN };
        if (poll (&item, 1, 100) > 0)
            answer = s_read (f, 5000);
    }
    assert_non_null (answer);
    assert_int_equal (json_integer_value (json_object_get (answer, "id")), 700);
    json_t *result = json_object_get (answer, "result");
    assert_false (json_is_true (json_object_get (result, "isError")));
    json_t *signals = json_loads (json_string_value (json_object_get (json_array_get (json_object_get (result, "content"),
                                  0), "text")), 0, NULL);
    json_t *samples = json_object_get (signals, "samples");
    assert_int_equal (json_array_size (samples), 3);
    json_t *sample = json_array_get (samples, 2);
    assert_string_equal (json_string_value (json_object_get (sample, "environment")), "production");
    assert_int_equal (json_integer_value (json_object_get (sample, "instances_up")), 2);
    assert_true (json_real_value (json_object_get (sample, "requests_per_second")) == 12.5);
    assert_true (json_integer_value (json_object_get (sample, "sequence"))
               > json_integer_value (json_object_get (json_array_get (samples, 0), "sequence")));
    //  Judged by the monitor's rules: missing CPU is null, listed, and a breach.
    assert_true (json_is_null (json_object_get (sample, "cpu_percent")));
    assert_true (json_real_value (json_object_get (sample, "memory_percent")) == 40);
    json_t *missing = json_object_get (sample, "missing");
    assert_int_equal (json_array_size (missing), 1);
    assert_string_equal (json_string_value (json_array_get (missing, 0)), "cpu");
    json_t *checks = json_object_get (sample, "checks");
    json_t *cpu = json_object_get (checks, "cpu_percent");
    assert_non_null (cpu);
    assert_true (json_is_null (json_object_get (cpu, "value")));
    assert_string_equal (json_string_value (json_object_get (cpu, "status")), "missing");
    assert_true (json_real_value (json_object_get (cpu, "limit")) == 80);
    assert_string_equal (json_string_value (json_object_get (json_object_get (checks, "missing_evidence"), "status")),
                         "missing");
    assert_string_equal (json_string_value (json_object_get (json_object_get (checks, "latency_p99_factor"), "status")),
                         "skipped");
    json_t *error_rate = json_object_get (checks, "error_rate_increase");
    assert_string_equal (json_string_value (json_object_get (error_rate, "status")), "ok");
    assert_true (fabs (json_real_value (json_object_get (error_rate, "value")) - 1.0) < 1e-9);
    assert_true (json_is_true (json_object_get (sample, "judged")));
    json_t *verdict = json_object_get (sample, "verdict");
    assert_string_equal (json_string_value (json_object_get (verdict, "verdict")), "breach");
    assert_string_equal (json_string_value (json_object_get (verdict, "rule")), "missing_evidence");
    json_decref (signals);
    json_decref (answer);
    al_agent_destroy (&monitor);
    al_config_destroy (&config);
}

static void
test_end_of_input_exits_cleanly (void **state)
{
    s_fixture_t *f = *state;
    close (f->to_mcp);
    f->to_mcp = -1;
    int status = 0;
    int64_t deadline = zclock_mono () + 15000;
    pid_t done = 0;
    while ((done = waitpid (f->mcp, &status, WNOHANG)) == 0 && zclock_mono () < deadline)
        zclock_sleep (50);
    assert_int_equal (done, f->mcp);
    f->mcp = 0;
    if (!WIFEXITED (status) || WEXITSTATUS (status) != 0) {
        s_dump_logs (f);
        fail_msg ("airlock mcp ended with status %d", status);
    }
}

//  Rows of the audit log of this type from this sender (read-only look).
static long
s_count_rows (s_fixture_t *f, const char *type, const char *sender)
{
    char path [400], error [512];
    snprintf (path, sizeof path, "%s/audit.db", f->dir);
    al_store_options_t options = { .read_only = true };
    al_store_t *store = al_store_open (NULL, path, &options, error, sizeof error);
    if (!store)
        return -1;
    long count = 0;
    al_store_iter_t *iter = al_store_iter_new (store, 1);
    al_store_event_t event;
    while (iter && al_store_iter_next (iter, &event) == AL_STORE_OK)
        if (strcmp (event.type, type) == 0 && (!sender || strcmp (event.sender, sender) == 0))
            count++;
    al_store_iter_destroy (&iter);
    al_store_destroy (&store);
    return count;
}

//  Start `airlock mcp --identity NAME` on fresh pipes (the previous server has ended).
static void
s_start_mcp_as (s_fixture_t *f, const char *identity)
{
    if (f->to_mcp >= 0)
        close (f->to_mcp);
    close (f->from_mcp);
    f->used = 0;
    int in [2], out [2];
    assert_int_equal (pipe2 (in, O_CLOEXEC), 0);
    assert_int_equal (pipe2 (out, O_CLOEXEC), 0);
    char log [400];
    snprintf (log, sizeof log, "%s/mcp.log", f->dir);
    const char *mcp [] = { f->airlock, "mcp", "--identity", identity, "--config", f->config, NULL };
    f->mcp = s_spawn (log, mcp, in [0], out [1]);
    close (in [0]);
    close (out [1]);
    f->to_mcp = in [1];
    f->from_mcp = out [0];
}

//  One identity per AI agent: `airlock identity add backend-1 --role backend-specialist`
//  makes its key pair and entry; after the broker reloads (SIGHUP), `airlock mcp
//  --identity backend-1` submits under that identity: the broker stamps it on the audit
//  row and the orchestrator records it as the submitter. Human roles and unknown names
//  are refused before connecting.
static void
test_own_identity_per_agent (void **state)
{
    s_fixture_t *f = *state;
    char command [1400];
    snprintf (command, sizeof command, "'%s' identity add backend-1 --role backend-specialist --person alice "
              "--config '%s' > '%s/identity.log' 2>&1", f->airlock, f->config, f->dir);
    assert_int_equal (system (command), 0);
    snprintf (command, sizeof command, "'%s' mcp --identity approver --config '%s' < /dev/null > '%s/human.log' 2>&1",
              f->airlock, f->config, f->dir);
    int status = system (command);
    assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 2);
    snprintf (command, sizeof command, "grep -q 'human role' '%s/human.log'", f->dir);
    assert_int_equal (system (command), 0);
    snprintf (command, sizeof command, "'%s' mcp --identity nobody --config '%s' < /dev/null > '%s/nobody.log' 2>&1",
              f->airlock, f->config, f->dir);
    status = system (command);
    assert_true (WIFEXITED (status) && WEXITSTATUS (status) == 2);

    long reloads = s_count_rows (f, "PolicyLoaded", "broker");
    assert_int_equal (kill (f->broker, SIGHUP), 0);
    for (int waited = 0; waited < 20000 && s_count_rows (f, "PolicyLoaded", "broker") <= reloads; waited += 100)
        zclock_sleep (100);
    assert_true (s_count_rows (f, "PolicyLoaded", "broker") > reloads);

    s_start_mcp_as (f, "backend-1");
    json_t *answer = s_request (f, "initialize", "{\"protocolVersion\": \"2024-11-05\", \"capabilities\": {}, "
                                "\"clientInfo\": {\"name\": \"backend\", \"version\": \"1\"}}", 10000);
    json_decref (answer);
    bool is_error = true;
    json_t *document = s_call (f, "submit_release", "{\"service\": \"demo\", \"version\": \"v3.0.0\", \"artifact\": "
                               "\"/opt/demo-v3\", \"digest\": \"" S_DIGEST "\", \"summary\": \"backend work\"}", &is_error);
    if (is_error)
        fail_msg ("submit as backend-1: %s", json_dumps (document, 0));
    char release [64];
    snprintf (release, sizeof release, "%s", json_string_value (json_object_get (document, "release_id")));
    json_decref (document);
    assert_int_equal (s_count_rows (f, "ReleaseCandidate", "backend-1"), 1);
    char arguments [256];
    snprintf (arguments, sizeof arguments, "{\"release_id\": \"%s\"}", release);
    const char *submitter = NULL;
    for (int waited = 0; waited < 20000; waited += 200) {
        document = s_call (f, "get_status", arguments, &is_error);
        submitter = json_string_value (json_object_get (json_object_get (document, "release"), "submitted_by"));
        if (!is_error && submitter)
            break;
        json_decref (document);
        document = NULL;
        zclock_sleep (200);
    }
    assert_non_null (document);
    assert_string_equal (submitter, "backend-1");
    json_decref (document);
    close (f->to_mcp);
    f->to_mcp = -1;
    int64_t deadline = zclock_mono () + 15000;
    while (waitpid (f->mcp, &status, WNOHANG) == 0 && zclock_mono () < deadline)
        zclock_sleep (50);
    f->mcp = 0;
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_initialize_and_list),
        cmocka_unit_test (test_submit_and_status),
        cmocka_unit_test (test_refusals_and_protocol_errors),
        cmocka_unit_test (test_list_approvals_keeps_agent_text_apart),
        cmocka_unit_test (test_request_rollback),
        cmocka_unit_test (test_recent_signals),
        cmocka_unit_test (test_end_of_input_exits_cleanly),
        cmocka_unit_test (test_own_identity_per_agent),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
