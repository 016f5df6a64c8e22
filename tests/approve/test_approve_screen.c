/*  test_approve_screen.c: what the approver sees is true (issue 14).

    First the rendering itself (agents/al_request_view.c), with agent text the codec would
    refuse on the wire (CR, bidi, ANSI): the screen must show every one of them escaped,
    hold no raw control, bidi or invisible character, keep the agent's words under the
    agent prefix, and never let a forged "Artifact sha256" line start a line. The JSON
    form keeps facts apart from agent_text, escaped.

    Then the real `airlock approve` against the real broker: a request whose summary
    forges a line with LF, and the confirmation prompt fed through a pipe: only `yes`
    signs. Key files are checked before the request is shown; deny and approvals have
    their own help; the approvals table aligns long request ids.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "harness.h"
#include "base/al_text.h"
#include "agents/al_request_view.h"
#include "policies/al_approval_sign.h"
#include "proto/al_signature.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

static const char s_artifact [] = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
static const char s_forged [] = "0000000000000000000000000000000000000000000000000000000000000000";
static const char s_qa [] = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";

static Airlock__ApprovalRequest
s_request (const char *request_id, const char *summary)
{
    Airlock__ApprovalRequest request = AIRLOCK__APPROVAL_REQUEST__INIT;
    request.request_id = (char *) request_id;
    request.deployment_type = AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD;
    request.environment = AIRLOCK__ENVIRONMENT__ENV_PRODUCTION;
    request.service = "demo-service";
    request.version = "v2.0.0";
    request.artifact_uri = "file:///artifacts/demo-service-v2";
    request.artifact_sha256 = (char *) s_artifact;
    request.qa_report_sha256 = (char *) s_qa;
    request.requested_by = "orchestrator";
    request.summary = (char *) summary;
    request.strategy = AIRLOCK__STRATEGY__STRATEGY_ROLLING;
    request.instances = 3;
    return request;
}

//  Every byte of text is printable: no C0 but the line feeds that end lines, no DEL, no
//  C1, no bidi control, no invisible character, valid UTF-8 throughout.
static void
s_assert_inert (const char *text)
{
    const unsigned char *cursor = (const unsigned char *) text;
    while (*cursor) {
        uint32_t code_point;
        size_t step = al_text_utf8_next (cursor, &code_point);
        size_t offset = (size_t) (cursor - (const unsigned char *) text);
        if (step == 0)
            fail_msg ("invalid UTF-8 at byte %zu of:\n%s", offset, text);
        if (code_point != '\n' && (al_text_is_control (code_point) || al_text_is_bidi_control (code_point)
                                   || al_text_is_invisible (code_point)))
            fail_msg ("raw U+%04X at byte %zu of:\n%s", (unsigned) code_point, offset, text);
        cursor += step;
    }
}

//  How many lines of text start with prefix.
static int
s_lines_starting (const char *text, const char *prefix)
{
    int count = 0;
    for (const char *line = text; line && *line; ) {
        if (strncmp (line, prefix, strlen (prefix)) == 0)
            count++;
        line = strchr (line, '\n');
        if (line)
            line++;
    }
    return count;
}

static char *
s_render (const Airlock__ApprovalRequest *request)
{
    FILE *out = tmpfile ();
    assert_non_null (out);
    al_request_view_context_t context = { "open: always", "none", "1 manager",
                                         "SHORTENED to 600.0 s, 1 of 4 checkpoint(s) inside it (services.yaml soak)",
                                         "REFUSED (pre-flight will refuse this report): critical 0, high 1" };
    al_request_view_print (out, request, &context);
    long size = ftell (out);
    assert_true (size > 0);
    rewind (out);
    char *text = calloc (1, (size_t) size + 1);
    assert_non_null (text);
    assert_int_equal (fread (text, 1, (size_t) size, out), (size_t) size);
    fclose (out);
    return text;
}

//  The forms a hostile orchestrator tries, each in the summary, the risk and the
//  rollback plan; the screen shows them escaped, never raw.
static void
test_screen_escapes_agent_text (void **state)
{
    (void) state;
    static const struct {
        const char *hostile;
        const char *escaped;
    } cases [] = {
        { "DISABLES-FRAUD-CHECKS\rroutine dependency bump", "DISABLES-FRAUD-CHECKS\\rroutine dependency bump" },
        { "routine\n- Artifact sha256: 0000000000000000000000000000000000000000000000000000000000000000",
          "routine\\n- Artifact sha256: 0000000000000000000000000000000000000000000000000000000000000000" },
        { "invoice\xe2\x80\xae" "fdp.exe", "invoice\\u{202E}fdp.exe" },
        { "\xe2\x81\xa6isolated\xe2\x81\xa9", "\\u{2066}isolated\\u{2069}" },
        { "\x1b[2J\x1b[Hall clear", "\\x1b[2J\\x1b[Hall clear" },
        { "csi \xc2\x9b" "2J", "csi \\u{009B}2J" },
        { "no\xe2\x80\x8b" "risk", "no\\u{200B}risk" },
        { "bad \xff byte", "bad \\xff byte" },
        { "forged escape \\n", "forged escape \\\\n" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        Airlock__ApprovalRequest request = s_request ("req-hostile", cases [i].hostile);
        request.risk_impact = (char *) cases [i].hostile;
        request.rollback_command = (char *) cases [i].hostile;
        Airlock__ChecklistItem item = AIRLOCK__CHECKLIST_ITEM__INIT;
        item.section = "Tests Passed";
        item.text = (char *) cases [i].hostile;
        item.checked = true;
        Airlock__ChecklistItem *items [] = { &item };
        request.n_checklist = 1;
        request.checklist = items;
        char *text = s_render (&request);
        s_assert_inert (text);
        assert_non_null (strstr (text, "\n- Soak after the rollout: SHORTENED to 600.0 s"));
        //  The bound QA report's security scan is a fact airlock states, not agent text.
        assert_int_equal (s_lines_starting (text, "- Security scan: REFUSED (pre-flight will refuse this report): "
                                                  "critical 0, high 1\n"), 1);
        char expected [512];
        snprintf (expected, sizeof expected, AL_REQUEST_VIEW_AGENT_PREFIX "Summary: %s\n", cases [i].escaped);
        if (!strstr (text, expected))
            fail_msg ("case %zu: the screen does not show '%s':\n%s", i, expected, text);
        snprintf (expected, sizeof expected, AL_REQUEST_VIEW_AGENT_PREFIX "Impact if failure: %s\n", cases [i].escaped);
        assert_non_null (strstr (text, expected));
        snprintf (expected, sizeof expected, AL_REQUEST_VIEW_AGENT_PREFIX "    - [x] %s\n", cases [i].escaped);
        assert_non_null (strstr (text, expected));
        //  One "Artifact sha256" line, airlock's, with the real digest; it comes before
        //  the agent's block, and every line of that block carries the agent prefix.
        assert_int_equal (s_lines_starting (text, "- Artifact sha256:"), 1);
        char real [128];
        snprintf (real, sizeof real, "\n- Artifact sha256: %s\n", s_artifact);
        const char *facts = strstr (text, real);
        const char *agent = strstr (text, "### Agent-written text (unverified");
        assert_non_null (facts);
        assert_non_null (agent);
        assert_true (facts < agent);
        const char *line = strchr (agent, '\n') + 1;
        while (*line && *line != '\n') {
            if (strncmp (line, AL_REQUEST_VIEW_AGENT_PREFIX, strlen (AL_REQUEST_VIEW_AGENT_PREFIX)) != 0)
                fail_msg ("case %zu: a line of the agent's block without the prefix: %.60s", i, line);
            line = strchr (line, '\n') + 1;
        }
        free (text);
    }
}

static void
test_json_keeps_facts_apart (void **state)
{
    (void) state;
    Airlock__ApprovalRequest request = s_request ("req-json", "DISABLES-FRAUD-CHECKS\rok\n\xe2\x80\xae" "x\x1b[2J");
    json_t *document = al_request_view_json (&request);
    assert_non_null (document);
    json_t *facts = json_object_get (document, "facts");
    json_t *agent_text = json_object_get (document, "agent_text");
    assert_string_equal (json_string_value (json_object_get (facts, "artifact_sha256")), s_artifact);
    assert_string_equal (json_string_value (json_object_get (facts, "request_id")), "req-json");
    assert_string_equal (json_string_value (json_object_get (facts, "deployment_type")), "standard");
    assert_null (json_object_get (facts, "summary"));
    assert_null (json_object_get (agent_text, "artifact_sha256"));
    assert_string_equal (json_string_value (json_object_get (agent_text, "summary")),
                         "DISABLES-FRAUD-CHECKS\\rok\\n\\u{202E}x\\x1b[2J");
    assert_string_equal (json_string_value (json_object_get (document, "approve_with")), "airlock approve req-json");
    //  Printed by a script that decodes the JSON, the value is still inert.
    s_assert_inert (json_string_value (json_object_get (agent_text, "summary")));
    json_decref (document);
}

//  ---- The real command against the real broker ---------------------------------------

typedef struct {
    harness_t *harness;
    uint8_t alice_public [32], alice_secret [64];
    char airlock [400];
    int counter;
} s_fixture_t;

static void
s_open_calendar (s_fixture_t *f)
{
    char path [400];
    snprintf (path, sizeof path, "%s/constraints.yaml", f->harness->policy_dir);
    FILE *file = fopen (path, "r");
    assert_non_null (file);
    char text [8192];
    size_t size = fread (text, 1, sizeof text - 1, file);
    fclose (file);
    text [size] = 0;
    char *calendar = strstr (text, "\ncalendar:");
    assert_non_null (calendar);
    calendar [1] = 0;
    file = fopen (path, "w");
    assert_non_null (file);
    fprintf (file, "%scalendar:\n  timezone: UTC\n  applies_to: [production]\n  windows: []\n"
                   "  freezes:\n    weekdays: []\n    holidays: []\n    month_end: off\n", text);
    fclose (file);
}

static int
s_setup (void **state)
{
    assert_true (sodium_init () >= 0);
    s_fixture_t *f = calloc (1, sizeof *f);
    assert_non_null (f);
    static const harness_identity_t identities [] = {
        { "orchestrator", "orchestrator" }, { "approver", "approver" },
    };
    f->harness = harness_new (NULL, identities, 2);
    assert_non_null (f->harness);
    crypto_sign_keypair (f->alice_public, f->alice_secret);
    char path [400], hex [65];
    sodium_bin2hex (hex, sizeof hex, f->alice_public, 32);
    snprintf (path, sizeof path, "%s/approvers.yaml", f->harness->policy_dir);
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fprintf (file, "approvers:\n  - name: alice\n    roles: [manager]\n    keys:\n      - {id: a, ed25519: \"%s\"}\n", hex);
    fclose (file);
    s_open_calendar (f);
    assert_int_equal (harness_broker_start (f->harness), 0);
    zcert_t *cert = (zcert_t *) zhashx_lookup (f->harness->certs, "approver");
    assert_non_null (cert);
    snprintf (path, sizeof path, "%s/keys/approver.cert", f->harness->dir);
    assert_int_equal (zcert_save (cert, path), 0);
    snprintf (path, sizeof path, "%s/alice.key", f->harness->dir);
    char error [256];
    assert_int_equal (al_key_file_write (path, "alice", f->alice_secret, error, sizeof error), AL_SIG_OK);
    const char *binary_dir = getenv ("AIRLOCK_BINARY_DIR");
    assert_non_null (binary_dir);
    snprintf (f->airlock, sizeof f->airlock, "%s/airlock", binary_dir);
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    s_fixture_t *f = *state;
    harness_destroy (&f->harness);
    free (f);
    return 0;
}

//  Run `airlock ARGUMENTS --config ...` with stdin from a file holding input (NULL: an
//  empty stdin, i.e. EOF at once); returns the exit code, the output (stdout and
//  stderr) in *output (caller frees).
static int
s_airlock (s_fixture_t *f, const char *arguments, const char *input, size_t input_size, char **output)
{
    char in_path [400], out_path [400], command [2048];
    snprintf (in_path, sizeof in_path, "%s/stdin-%d", f->harness->dir, ++f->counter);
    snprintf (out_path, sizeof out_path, "%s/stdout-%d", f->harness->dir, f->counter);
    FILE *file = fopen (in_path, "w");
    assert_non_null (file);
    if (input)
        assert_int_equal (fwrite (input, 1, input_size, file), input_size);
    fclose (file);
    snprintf (command, sizeof command, "%s %s --config %s < %s > %s 2>&1", f->airlock, arguments,
              f->harness->config_path, in_path, out_path);
    int status = system (command);
    assert_true (WIFEXITED (status));
    file = fopen (out_path, "r");
    assert_non_null (file);
    char *text = calloc (1, 65536);
    assert_non_null (text);
    size_t size = fread (text, 1, 65535, file);
    text [size] = 0;
    fclose (file);
    *output = text;
    return WEXITSTATUS (status);
}

static void
s_file_request (s_fixture_t *f, zsock_t *orchestrator, const char *request_id, const char *summary)
{
    Airlock__ApprovalRequest request = s_request (request_id, summary);
    Airlock__ChecklistItem item = AIRLOCK__CHECKLIST_ITEM__INIT;
    item.section = "Tests Passed";
    item.text = "45/45 passed\n- QA report sha256: " "0000000000000000000000000000000000000000000000000000000000000000";
    item.checked = true;
    Airlock__ChecklistItem *items [] = { &item };
    request.n_checklist = 1;
    request.checklist = items;
    al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
    char id [32];
    snprintf (id, sizeof id, "file-%d", ++f->counter);
    envelope.message_id = id;
    envelope.deployment_id = (char *) request_id;
    envelope.environment = AIRLOCK__ENVIRONMENT__ENV_PRODUCTION;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_APPROVAL_REQUEST;
    envelope.approval_request = &request;
    assert_int_equal (harness_send (orchestrator, &envelope), 0);
    for (int tries = 0; tries < 20; tries++) {
        al_envelope_t *answer = harness_recv (orchestrator, 5000);
        assert_non_null (answer);
        bool ours = answer->body_case == AIRLOCK__ENVELOPE__BODY_ACK && strcmp (answer->ack->acked_message_id, id) == 0;
        bool refused = answer->body_case == AIRLOCK__ENVELOPE__BODY_DENIED
                    && strcmp (answer->denied->denied_message_id, id) == 0;
        if (refused)
            fail_msg ("the broker refused request %s: %s", request_id, answer->denied->reason);
        al_codec_free (&answer);
        if (ours)
            return;
    }
    fail_msg ("no answer to request %s", request_id);
}

static zsock_t *
s_orchestrator (s_fixture_t *f)
{
    zsock_t *client = harness_client (f->harness, "orchestrator", NULL);
    assert_non_null (client);
    harness_register (client, "reg-1", false);
    al_envelope_t *answer = harness_recv (client, 5000);
    assert_non_null (answer);
    al_codec_free (&answer);
    return client;
}

static void
test_only_yes_signs (void **state)
{
    s_fixture_t *f = *state;
    zsock_t *orchestrator = s_orchestrator (f);
    //  An LF forges an "Artifact sha256" line; a zero-width space hides in "norisk".
    char summary [256];
    snprintf (summary, sizeof summary, "routine dependency bump\n- Artifact sha256: %s\nno\xe2\x80\x8brisk", s_forged);
    s_file_request (f, orchestrator, "req-yes", summary);
    char arguments [600];
    snprintf (arguments, sizeof arguments, "approve req-yes --key %s/alice.key", f->harness->dir);

    static const char *refused [] = { "yesno\n", "yes, wait, no\n", "YES\n", "y\n", "\n", "no\n", "yes please\n",
                                      "yes\n" /* not this one: tested below */ };
    for (size_t i = 0; i < sizeof refused / sizeof refused [0] - 1; i++) {
        char *output = NULL;
        int rc = s_airlock (f, arguments, refused [i], strlen (refused [i]), &output);
        if (rc != 1 || !strstr (output, "Not signed: only the answer `yes` signs."))
            fail_msg ("answer '%s': exit %d:\n%s", refused [i], rc, output);
        assert_null (strstr (output, "Signed with"));
        free (output);
    }
    //  EOF: nothing read, nothing signed.
    char *output = NULL;
    int rc = s_airlock (f, arguments, NULL, 0, &output);
    if (rc != 1 || !strstr (output, "Not signed: no answer (end of input)."))
        fail_msg ("EOF: exit %d:\n%s", rc, output);
    free (output);
    //  No approval reached the gate: not one SignedApproval row, no grant.
    assert_int_equal (harness_count_rows (f->harness, "SignedApproval", NULL, NULL), 0);
    assert_int_equal (harness_count_rows (f->harness, "ExecuteDeploy", NULL, NULL), 0);

    //  `yes` with spaces and a CRLF line end signs; what was shown is inert and the
    //  forged lines never start a line.
    const char *yes = "  yes \r\n";
    rc = s_airlock (f, arguments, yes, strlen (yes), &output);
    if (rc != 0 || !strstr (output, "granted"))
        fail_msg ("yes: exit %d:\n%s", rc, output);
    s_assert_inert (output);
    assert_int_equal (s_lines_starting (output, "- Artifact sha256:"), 1);
    assert_int_equal (s_lines_starting (output, "- QA report sha256:"), 1);
    char real [128];
    snprintf (real, sizeof real, "\n- Artifact sha256: %s\n", s_artifact);
    assert_non_null (strstr (output, real));
    snprintf (real, sizeof real, "\\n- Artifact sha256: %s\\nno\\u{200B}risk\n", s_forged);
    if (!strstr (output, real))
        fail_msg ("the forged line is not shown escaped inside the summary:\n%s", output);
    assert_non_null (strstr (output, "- Quorum: 1 manager\n"));
    //  The QA report it binds is not kept on this machine: its scan is unknown, said so.
    assert_int_equal (s_lines_starting (output, "- Security scan: unknown (cannot be judged here; "), 1);
    free (output);
    assert_int_equal (harness_wait_rows (f->harness, "ExecuteDeploy", "broker", "req-yes", 1, 10000), 1);
    zsock_destroy (&orchestrator);
}

static void
test_key_files_checked_first (void **state)
{
    s_fixture_t *f = *state;
    zsock_t *orchestrator = s_orchestrator (f);
    s_file_request (f, orchestrator, "req-keys", "keys");
    char path [400], arguments [800], command [800];
    //  airlock keygen's public half (alice.key.pub holds "airlock-ed25519 <hex> alice").
    snprintf (path, sizeof path, "%s/alice.key.pub", f->harness->dir);
    struct stat st;
    assert_int_equal (stat (path, &st), 0);
    snprintf (command, sizeof command, "ssh-keygen -q -t ed25519 -N '' -C carol -f %s/carol_ssh", f->harness->dir);
    assert_int_equal (system (command), 0);
    struct {
        const char *options;
        const char *expected;
    } cases [] = {
        { "--key %s/alice.key.pub", "alice.key.pub: this is the public half of a key; give the private key file (" },
        { "--ssh-key %s/carol_ssh.pub", "carol_ssh.pub: this is the public half of a key; give the private key file (" },
        { "--key %s/carol_ssh", "not an airlock secret key file (it is an OpenSSH key: use --ssh-key)" },
        { "--ssh-key %s/alice.key", "not an OpenSSH private key (it is an airlock key: use --key)" },
        { "--key %s/missing.key", "missing.key: cannot open" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        char options [600];
        snprintf (options, sizeof options, cases [i].options, f->harness->dir);
        snprintf (arguments, sizeof arguments, "approve req-keys %s", options);
        char *output = NULL;
        int rc = s_airlock (f, arguments, "yes\n", 4, &output);
        if (rc != 2 || !strstr (output, cases [i].expected))
            fail_msg ("%s: exit %d, expected '%s':\n%s", options, rc, cases [i].expected, output);
        assert_null (strstr (output, "chmod"));
        assert_null (strstr (output, "Production Deployment Request"));
        free (output);
    }
    //  A private key others can read: chmod 600, before the request is shown.
    snprintf (path, sizeof path, "%s/alice.key", f->harness->dir);
    assert_int_equal (chmod (path, 0644), 0);
    snprintf (arguments, sizeof arguments, "approve req-keys --key %s", path);
    char *output = NULL;
    int rc = s_airlock (f, arguments, "yes\n", 4, &output);
    if (rc != 2 || !strstr (output, "a secret key must be readable by its owner only (chmod 600"))
        fail_msg ("0644 key: exit %d:\n%s", rc, output);
    assert_null (strstr (output, "Production Deployment Request"));
    free (output);
    assert_int_equal (chmod (path, 0600), 0);
    assert_int_equal (harness_count_rows (f->harness, "SignedApproval", NULL, NULL), 0);
    zsock_destroy (&orchestrator);
}

static void
test_help_and_table (void **state)
{
    s_fixture_t *f = *state;
    char *output = NULL;
    assert_int_equal (s_airlock (f, "deny --help", NULL, 0, &output), 0);
    assert_non_null (strstr (output, "usage: airlock deny REQUEST_ID --reason TEXT"));
    assert_null (strstr (output, "airlock approve"));
    assert_null (strstr (output, "--valid-for"));
    free (output);
    assert_int_equal (s_airlock (f, "approvals --help", NULL, 0, &output), 0);
    assert_non_null (strstr (output, "usage: airlock approvals"));
    assert_non_null (strstr (output, "Exit codes: 0"));
    free (output);
    assert_int_equal (s_airlock (f, "approve --help", NULL, 0, &output), 0);
    assert_non_null (strstr (output, "Only the answer `yes`"));
    free (output);

    //  A short id and a 64-character one: TYPE starts at the same column on every line.
    zsock_t *orchestrator = s_orchestrator (f);
    const char *long_id = "rel-payments-api-2026-12-07-hotfix-for-the-fraud-check-x1234567";
    assert_int_equal (strlen (long_id), 63);
    s_file_request (f, orchestrator, "r-1", "short");
    s_file_request (f, orchestrator, long_id, "long");
    assert_int_equal (s_airlock (f, "approvals", NULL, 0, &output), 0);
    const char *header = strstr (output, "REQUEST");
    const char *short_row = strstr (output, "\nr-1 ");
    const char *long_row = strstr (output, long_id);
    if (!header || !short_row || !long_row)
        fail_msg ("approvals table:\n%s", output);
    short_row++;
    const char *type_header = strstr (header, "TYPE");
    const char *short_type = strstr (short_row, "standard");
    const char *long_type = strstr (long_row, "standard");
    assert_non_null (type_header);
    assert_int_equal (type_header - header, (long) strlen (long_id) + 2);
    assert_int_equal (short_type - short_row, type_header - header);
    assert_int_equal (long_type - long_row, type_header - header);
    free (output);
    //  --json: facts apart from agent_text.
    assert_int_equal (s_airlock (f, "approvals --json", NULL, 0, &output), 0);
    json_t *array = json_loads (output, 0, NULL);
    assert_true (json_is_array (array));
    assert_int_equal (json_array_size (array), 2);
    json_t *first = json_array_get (array, 0);
    assert_non_null (json_object_get (json_object_get (first, "facts"), "artifact_sha256"));
    assert_non_null (json_object_get (json_object_get (first, "agent_text"), "summary"));
    json_t *checklist = json_object_get (json_object_get (first, "agent_text"), "checklist");
    assert_non_null (strstr (json_string_value (json_object_get (json_array_get (checklist, 0), "text")),
                             "passed\\n- QA report sha256:"));
    json_decref (array);
    free (output);
    zsock_destroy (&orchestrator);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_screen_escapes_agent_text),
        cmocka_unit_test (test_json_keeps_facts_apart),
        cmocka_unit_test_setup_teardown (test_only_yes_signs, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_key_files_checked_first, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_help_and_table, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
