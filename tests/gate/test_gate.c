/*  test_gate.c: the approval gate, adversarially. Every attempt that must fail is
    counted; the suite asserts zero grants among them, and each deployment type is
    granted with exactly its quorum.

    Each test copies policies/default to a temporary directory and writes an
    approvers.yaml with keys made here: alice (manager), bob (manager + security, two
    keys), carol (security), dave (devops), erin (manager, revoked key), and one
    OpenSSH key for frank (manager).
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "policies/al_approval_sign.h"
#include "policies/al_approval_gate.h"
#include "proto/al_codec.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

//  Tuesday 2026-11-24 10:30 UTC: inside the default window, no freeze.
#define S_TUESDAY_WINDOW 1795516200000ULL
//  Wednesday 2026-11-25 15:00 UTC: outside the window, no freeze.
#define S_WEDNESDAY_LATE 1795618800000ULL
//  Friday 2026-11-27 10:30 UTC: frozen (Fridays).
#define S_FRIDAY 1795775400000ULL

static const char s_artifact [] = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
static const char s_other_artifact [] = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752";
static const char s_qa [] = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";

typedef struct {
    uint8_t public_key [32];
    uint8_t secret_key [64];
} s_key_t;

typedef struct {
    char dir [64];
    char key_dir [64];
    al_policy_t *policy;
    s_key_t alice, bob1, bob2, carol, dave, erin, outsider;
    size_t attempts;            // adversarial attempts made
    size_t grants;              // of which granted (must stay 0)
} s_fixture_t;

static void
s_hex (const uint8_t *key, char hex [65])
{
    sodium_bin2hex (hex, 65, key, 32);
}

static int
s_setup (void **state)
{
    assert_true (sodium_init () >= 0);
    s_fixture_t *f = calloc (1, sizeof *f);
    assert_non_null (f);
    snprintf (f->dir, sizeof f->dir, "/tmp/airlock-gate-XXXXXX");
    assert_non_null (mkdtemp (f->dir));
    char command [512];
    snprintf (command, sizeof command, "cp -r %s/. %s/", AIRLOCK_DEFAULT_POLICY_DIR, f->dir);
    assert_int_equal (system (command), 0);
    s_key_t *keys [] = { &f->alice, &f->bob1, &f->bob2, &f->carol, &f->dave, &f->erin, &f->outsider };
    for (size_t i = 0; i < sizeof keys / sizeof keys [0]; i++)
        crypto_sign_keypair (keys [i]->public_key, keys [i]->secret_key);
    char alice [65], bob1 [65], bob2 [65], carol [65], dave [65], erin [65];
    s_hex (f->alice.public_key, alice);
    s_hex (f->bob1.public_key, bob1);
    s_hex (f->bob2.public_key, bob2);
    s_hex (f->carol.public_key, carol);
    s_hex (f->dave.public_key, dave);
    s_hex (f->erin.public_key, erin);
    //  frank approves with his OpenSSH key, kept outside the policy directory.
    snprintf (f->key_dir, sizeof f->key_dir, "/tmp/airlock-gate-keys-XXXXXX");
    assert_non_null (mkdtemp (f->key_dir));
    snprintf (command, sizeof command, "ssh-keygen -q -t ed25519 -N '' -C frank -f %s/frank", f->key_dir);
    assert_int_equal (system (command), 0);
    char path [128], frank [256] = "";
    snprintf (path, sizeof path, "%s/frank.pub", f->key_dir);
    FILE *pub = fopen (path, "r");
    assert_non_null (pub);
    assert_non_null (fgets (frank, sizeof frank, pub));
    fclose (pub);
    frank [strcspn (frank, "\n")] = 0;
    snprintf (path, sizeof path, "%s/approvers.yaml", f->dir);
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fprintf (file,
        "approvers:\n"
        "  - name: alice\n    roles: [manager]\n    keys:\n      - {id: a1, ed25519: \"%s\"}\n"
        "  - name: bob\n    roles: [manager, security]\n    keys:\n"
        "      - {id: b1, ed25519: \"%s\"}\n      - {id: b2, ed25519: \"%s\"}\n"
        "  - name: carol\n    roles: [security]\n    keys:\n      - {id: c1, ed25519: \"%s\"}\n"
        "  - name: dave\n    roles: [devops]\n    keys:\n      - {id: d1, ed25519: \"%s\"}\n"
        "  - name: erin\n    roles: [manager]\n    keys: []\n    revoked_keys:\n      - {id: e1, ed25519: \"%s\"}\n"
        "  - name: frank\n    roles: [manager]\n    keys:\n      - {id: f1, ssh: \"%s\"}\n",
        alice, bob1, bob2, carol, dave, erin, frank);
    fclose (file);
    //  Two ci identities: ci-1 is alice's (four eyes: she may not approve what she
    //  submits through it), ci-2 names nobody.
    snprintf (path, sizeof path, "%s/identities.yaml", f->dir);
    file = fopen (path, "w");
    assert_non_null (file);
    fprintf (file,
        "identities:\n"
        "  - key: \"rq:rM>}U?@Lns47E1%%kR.o@n%%FcmmsL/@{H8]yf7\"\n    identity: ci-1\n    role: ci\n    person: alice\n"
        "  - key: \"Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID\"\n    identity: ci-2\n    role: ci\n");
    fclose (file);
    al_policy_errors_t *errors = NULL;
    f->policy = al_policy_load (f->dir, &errors);
    if (!f->policy)
        for (size_t i = 0; i < al_policy_errors_count (errors); i++)
            fprintf (stderr, "%s\n", al_policy_errors_at (errors, i));
    al_policy_errors_destroy (&errors);
    assert_non_null (f->policy);
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    s_fixture_t *f = *state;
    al_policy_destroy (&f->policy);
    char command [256];
    snprintf (command, sizeof command, "rm -rf %s %s", f->dir, f->key_dir);
    assert_int_equal (system (command), 0);
    free (f);
    return 0;
}

static Airlock__ApprovalRequest
s_request (Airlock__DeploymentType type)
{
    Airlock__ApprovalRequest request = AIRLOCK__APPROVAL_REQUEST__INIT;
    request.request_id = "req-42";
    request.deployment_type = type;
    request.environment = AIRLOCK__ENVIRONMENT__ENV_PRODUCTION;
    request.service = "demo-service";
    request.version = "v2.0.0";
    request.artifact_sha256 = (char *) s_artifact;
    request.qa_report_sha256 = (char *) s_qa;
    return request;
}

//  A signed approval; fields of the statement start equal to the request and may be
//  altered by the caller through `tweak` before signing.
typedef struct {
    const char *request_id;
    Airlock__DeploymentType type;
    Airlock__Environment environment;
    const char *artifact;
    const char *qa;             // the QA report digest signed
    uint64_t issued_at_ms;
    uint64_t expires_at_ms;
    Airlock__Decision decision;
    bool break_glass;
    const char *key_id;         // NULL: the signing key's own id
    const char *submitted_by;   // the request's submitter as signed (NULL: none, an old client)
} s_statement_t;

static s_statement_t
s_statement_for (const Airlock__ApprovalRequest *request, uint64_t now_ms)
{
    return (s_statement_t) {
        .request_id = request->request_id, .type = request->deployment_type,
        .environment = request->environment, .artifact = request->artifact_sha256,
        .qa = request->qa_report_sha256, .issued_at_ms = now_ms - 60000, .expires_at_ms = now_ms + 3600000,
        .decision = AIRLOCK__DECISION__DECISION_GRANT, .submitted_by = request->submitted_by,
    };
}

typedef struct {
    uint8_t statement [1024];
    size_t statement_size;
    uint8_t signature [64];
    uint8_t public_key [32];
    Airlock__SignedApproval message;
} s_signed_t;

static void
s_sign (const s_statement_t *fields, const s_key_t *key, s_signed_t *out)
{
    uint8_t approval_id [AL_APPROVAL_ID_SIZE];
    randombytes_buf (approval_id, sizeof approval_id);
    char key_id [32];
    al_key_id (key->public_key, key_id);
    Airlock__ApprovalStatement statement = AIRLOCK__APPROVAL_STATEMENT__INIT;
    statement.request_id = (char *) fields->request_id;
    statement.deployment_type = fields->type;
    statement.environment = fields->environment;
    statement.service = "demo-service";
    statement.artifact_sha256 = (char *) fields->artifact;
    statement.qa_report_sha256 = (char *) (fields->qa ? fields->qa : s_qa);
    statement.approver_key_id = fields->key_id ? (char *) fields->key_id : key_id;
    statement.issued_at_ms = fields->issued_at_ms;
    statement.expires_at_ms = fields->expires_at_ms;
    statement.approval_id.data = approval_id;
    statement.approval_id.len = sizeof approval_id;
    statement.decision = fields->decision;
    statement.break_glass = fields->break_glass;
    if (fields->submitted_by)
        statement.submitted_by = (char *) fields->submitted_by;
    out->statement_size = airlock__approval_statement__get_packed_size (&statement);
    assert_true (out->statement_size <= sizeof out->statement);
    airlock__approval_statement__pack (&statement, out->statement);
    size_t signing_size;
    uint8_t *signing = al_codec_signing_bytes (AL_SIGN_APPROVAL_STATEMENT, out->statement,
                                               out->statement_size, &signing_size);
    crypto_sign_detached (out->signature, NULL, signing, signing_size, key->secret_key);
    free (signing);
    memcpy (out->public_key, key->public_key, 32);
    Airlock__SignedApproval message = AIRLOCK__SIGNED_APPROVAL__INIT;
    message.statement.data = out->statement;
    message.statement.len = out->statement_size;
    message.signature.data = out->signature;
    message.signature.len = 64;
    message.format = AIRLOCK__SIGNATURE_FORMAT__SIG_ED25519;
    message.public_key.data = out->public_key;
    message.public_key.len = 32;
    out->message = message;
}

//  An attempt that must be refused at the check step.
static void
s_expect_rejected (s_fixture_t *f, const Airlock__ApprovalRequest *request, const char *requester,
                   const s_signed_t *approval, uint64_t now_ms, const char *reason_part)
{
    al_approval_gate_accepted_t checked;
    char reason [256] = "";
    f->attempts++;
    if (al_approval_gate_check (f->policy, request, requester, &approval->message, now_ms, &checked,
                                reason, sizeof reason)) {
        f->grants++;
        fail_msg ("approval accepted; expected a rejection containing '%s'", reason_part);
    }
    if (reason_part && !strstr (reason, reason_part))
        fail_msg ("reason '%s' does not mention '%s'", reason, reason_part);
}

static void
s_accept (s_fixture_t *f, const Airlock__ApprovalRequest *request, const s_signed_t *approval,
          uint64_t now_ms, al_approval_gate_accepted_t *checked)
{
    char reason [256] = "";
    if (!al_approval_gate_check (f->policy, request, "orchestrator", &approval->message, now_ms, checked,
                                 reason, sizeof reason))
        fail_msg ("valid approval rejected: %s", reason);
}

static al_approval_gate_outcome_t
s_evaluate (s_fixture_t *f, const Airlock__ApprovalRequest *request, const al_approval_gate_accepted_t *approvals,
            size_t count, uint64_t now_ms, char *explanation, size_t size)
{
    return al_approval_gate_evaluate (f->policy, request, approvals, count, now_ms, explanation, size);
}

static void
test_each_type_granted_with_exactly_its_quorum (void **state)
{
    s_fixture_t *f = *state;
    char explanation [512];
    al_approval_gate_accepted_t checked [3];
    s_signed_t signed_approval;
    struct { Airlock__DeploymentType type; s_key_t *keys [2]; size_t count; uint64_t now; } cases [] = {
        { AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD, { &f->alice }, 1, S_WEDNESDAY_LATE },
        { AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_HOTFIX, { &f->alice, &f->carol }, 2, S_WEDNESDAY_LATE },
        { AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_ROLLBACK, { &f->dave }, 1, S_WEDNESDAY_LATE },
        { AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_SCHEDULED, { &f->alice }, 1, S_TUESDAY_WINDOW },
        { AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_EMERGENCY, { &f->alice }, 1, S_WEDNESDAY_LATE },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases [0]; c++) {
        Airlock__ApprovalRequest request = s_request (cases [c].type);
        for (size_t k = 0; k < cases [c].count; k++) {
            s_statement_t fields = s_statement_for (&request, cases [c].now);
            s_sign (&fields, cases [c].keys [k], &signed_approval);
            s_accept (f, &request, &signed_approval, cases [c].now, &checked [k]);
            //  One short of the quorum is pending, never granted.
            al_approval_gate_outcome_t outcome = s_evaluate (f, &request, checked, k + 1, cases [c].now,
                                                    explanation, sizeof explanation);
            if (k + 1 < cases [c].count)
                assert_int_equal (outcome, AL_APPROVAL_GATE_PENDING);
            else
            if (outcome != AL_APPROVAL_GATE_GRANTED)
                fail_msg ("type %d with its quorum: %s", (int) cases [c].type, explanation);
        }
    }
}

static void
test_hotfix_needs_two_people (void **state)
{
    s_fixture_t *f = *state;
    Airlock__ApprovalRequest request = s_request (AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_HOTFIX);
    uint64_t now = S_WEDNESDAY_LATE;
    char explanation [512];
    al_approval_gate_accepted_t checked [2];
    s_signed_t a, b;
    s_statement_t fields = s_statement_for (&request, now);

    //  A hotfix with only a manager: waiting for security.
    s_sign (&fields, &f->alice, &a);
    s_accept (f, &request, &a, now, &checked [0]);
    f->attempts++;
    assert_int_equal (s_evaluate (f, &request, checked, 1, now, explanation, sizeof explanation), AL_APPROVAL_GATE_PENDING);
    assert_non_null (strstr (explanation, "security"));

    //  bob holds manager and security and signs with both his keys: one person, one slot.
    s_sign (&fields, &f->bob1, &a);
    s_sign (&fields, &f->bob2, &b);
    s_accept (f, &request, &a, now, &checked [0]);
    s_accept (f, &request, &b, now, &checked [1]);
    f->attempts++;
    al_approval_gate_outcome_t outcome = s_evaluate (f, &request, checked, 2, now, explanation, sizeof explanation);
    if (outcome == AL_APPROVAL_GATE_GRANTED)
        f->grants++;
    assert_int_equal (outcome, AL_APPROVAL_GATE_PENDING);

    //  bob + alice: bob takes security, alice manager.
    s_sign (&fields, &f->alice, &b);
    s_accept (f, &request, &b, now, &checked [1]);
    assert_int_equal (s_evaluate (f, &request, checked, 2, now, explanation, sizeof explanation), AL_APPROVAL_GATE_GRANTED);
}

static void
test_keys_that_never_count (void **state)
{
    s_fixture_t *f = *state;
    Airlock__ApprovalRequest request = s_request (AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD);
    uint64_t now = S_WEDNESDAY_LATE;
    s_statement_t fields = s_statement_for (&request, now);
    s_signed_t approval;

    s_sign (&fields, &f->outsider, &approval);              // a random key
    s_expect_rejected (f, &request, "orchestrator", &approval, now, "not an approver key");
    s_sign (&fields, &f->erin, &approval);                  // a revoked key
    s_expect_rejected (f, &request, "orchestrator", &approval, now, "revoked");
    //  alice's statement, signed by the outsider but claiming alice's key.
    s_sign (&fields, &f->outsider, &approval);
    memcpy (approval.public_key, f->alice.public_key, 32);
    s_expect_rejected (f, &request, "orchestrator", &approval, now, "signature");
    //  A statement naming another key id than the one that signs.
    char other_id [32];
    al_key_id (f->bob1.public_key, other_id);
    fields.key_id = other_id;
    s_sign (&fields, &f->alice, &approval);
    s_expect_rejected (f, &request, "orchestrator", &approval, now, "approver_key_id");
    //  Self-approval: alice filed the request.
    fields = s_statement_for (&request, now);
    s_sign (&fields, &f->alice, &approval);
    s_expect_rejected (f, &request, "alice", &approval, now, "self-approval");
}

static void
test_statement_must_match_request (void **state)
{
    s_fixture_t *f = *state;
    Airlock__ApprovalRequest request = s_request (AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD);
    uint64_t now = S_WEDNESDAY_LATE;
    s_signed_t approval;
    s_statement_t fields = s_statement_for (&request, now);
    fields.artifact = s_other_artifact;
    s_sign (&fields, &f->alice, &approval);
    s_expect_rejected (f, &request, "orchestrator", &approval, now, "artifact_sha256");
    fields = s_statement_for (&request, now);
    fields.environment = AIRLOCK__ENVIRONMENT__ENV_STAGING;
    s_sign (&fields, &f->alice, &approval);
    s_expect_rejected (f, &request, "orchestrator", &approval, now, "environment");
    fields = s_statement_for (&request, now);
    fields.request_id = "req-43";
    s_sign (&fields, &f->alice, &approval);
    s_expect_rejected (f, &request, "orchestrator", &approval, now, "request_id");
    fields = s_statement_for (&request, now);
    fields.type = AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_ROLLBACK;
    s_sign (&fields, &f->alice, &approval);
    s_expect_rejected (f, &request, "orchestrator", &approval, now, "deployment_type");
}

static void
test_expiry_boundaries (void **state)
{
    s_fixture_t *f = *state;
    Airlock__ApprovalRequest request = s_request (AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD);
    uint64_t issued = S_WEDNESDAY_LATE, expires = issued + 3600000;
    s_statement_t fields = s_statement_for (&request, issued);
    fields.issued_at_ms = issued;
    fields.expires_at_ms = expires;
    s_signed_t approval;
    s_sign (&fields, &f->alice, &approval);
    al_approval_gate_accepted_t checked;
    s_accept (f, &request, &approval, expires - 1000, &checked);           // expiry - 1 s: valid
    char explanation [256];
    assert_int_equal (s_evaluate (f, &request, &checked, 1, expires - 1000, explanation, sizeof explanation),
                      AL_APPROVAL_GATE_GRANTED);
    s_expect_rejected (f, &request, "orchestrator", &approval, expires, "expired");          // at expiry
    s_expect_rejected (f, &request, "orchestrator", &approval, expires + 1000, "expired");   // expiry + 1 s
    //  A collected approval that expires before the quorum completes no longer counts.
    f->attempts++;
    assert_int_equal (s_evaluate (f, &request, &checked, 1, expires, explanation, sizeof explanation),
                      AL_APPROVAL_GATE_PENDING);
    //  Valid for longer than the policy's approval_expiry (4h): refused.
    fields.expires_at_ms = issued + 5 * 3600000ULL;
    s_sign (&fields, &f->alice, &approval);
    s_expect_rejected (f, &request, "orchestrator", &approval, issued + 1000, "approval_expiry");
}

static void
test_every_bit_flip_is_refused (void **state)
{
    s_fixture_t *f = *state;
    Airlock__ApprovalRequest request = s_request (AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD);
    uint64_t now = S_WEDNESDAY_LATE;
    s_statement_t fields = s_statement_for (&request, now);
    s_signed_t approval;
    s_sign (&fields, &f->alice, &approval);
    uint8_t *buffers [] = { approval.statement, approval.signature };
    size_t sizes [] = { approval.statement_size, 64 };
    for (size_t b = 0; b < 2; b++)
        for (size_t bit = 0; bit < sizes [b] * 8; bit++) {
            buffers [b][bit / 8] ^= (uint8_t) (1u << (bit % 8));
            s_expect_rejected (f, &request, "orchestrator", &approval, now, NULL);
            buffers [b][bit / 8] ^= (uint8_t) (1u << (bit % 8));
        }
    al_approval_gate_accepted_t checked;
    s_accept (f, &request, &approval, now, &checked);
}

static void
test_windows_freezes_and_break_glass (void **state)
{
    s_fixture_t *f = *state;
    char explanation [512];
    al_approval_gate_accepted_t checked [2];
    s_signed_t approval;

    //  A scheduled deploy outside its window: blocked.
    Airlock__ApprovalRequest scheduled = s_request (AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_SCHEDULED);
    s_statement_t fields = s_statement_for (&scheduled, S_WEDNESDAY_LATE);
    s_sign (&fields, &f->alice, &approval);
    s_accept (f, &scheduled, &approval, S_WEDNESDAY_LATE, &checked [0]);
    f->attempts++;
    assert_int_equal (s_evaluate (f, &scheduled, checked, 1, S_WEDNESDAY_LATE, explanation, sizeof explanation),
                      AL_APPROVAL_GATE_BLOCKED);
    assert_non_null (strstr (explanation, "window"));

    //  A standard deploy on a Friday: frozen without break-glass...
    Airlock__ApprovalRequest standard = s_request (AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD);
    fields = s_statement_for (&standard, S_FRIDAY);
    s_sign (&fields, &f->alice, &approval);
    s_accept (f, &standard, &approval, S_FRIDAY, &checked [0]);
    f->attempts++;
    assert_int_equal (s_evaluate (f, &standard, checked, 1, S_FRIDAY, explanation, sizeof explanation),
                      AL_APPROVAL_GATE_BLOCKED);
    assert_non_null (strstr (explanation, "break-glass"));
    //  ...a security signature without the break_glass mark does not override it...
    fields.break_glass = false;
    s_sign (&fields, &f->carol, &approval);
    s_accept (f, &standard, &approval, S_FRIDAY, &checked [1]);
    f->attempts++;
    assert_int_equal (s_evaluate (f, &standard, checked, 2, S_FRIDAY, explanation, sizeof explanation),
                      AL_APPROVAL_GATE_BLOCKED);
    //  ...one with it does.
    fields.break_glass = true;
    s_sign (&fields, &f->carol, &approval);
    s_accept (f, &standard, &approval, S_FRIDAY, &checked [1]);
    assert_int_equal (s_evaluate (f, &standard, checked, 2, S_FRIDAY, explanation, sizeof explanation),
                      AL_APPROVAL_GATE_GRANTED);
    //  The manager's own break-glass mark cannot fill both slots: bob alone stays blocked.
    fields.break_glass = true;
    s_sign (&fields, &f->bob1, &approval);
    s_accept (f, &standard, &approval, S_FRIDAY, &checked [0]);
    f->attempts++;
    assert_int_not_equal (s_evaluate (f, &standard, checked, 1, S_FRIDAY, explanation, sizeof explanation),
                          AL_APPROVAL_GATE_GRANTED);

    //  The scheduled release outside the policy's windows: a break-glass signature lifts
    //  the closed window (pre-flight takes the same decision, tests/deploy)...
    fields = s_statement_for (&scheduled, S_WEDNESDAY_LATE);
    s_sign (&fields, &f->alice, &approval);
    s_accept (f, &scheduled, &approval, S_WEDNESDAY_LATE, &checked [0]);
    fields.break_glass = true;
    s_sign (&fields, &f->carol, &approval);
    s_accept (f, &scheduled, &approval, S_WEDNESDAY_LATE, &checked [1]);
    assert_int_equal (s_evaluate (f, &scheduled, checked, 2, S_WEDNESDAY_LATE, explanation, sizeof explanation),
                      AL_APPROVAL_GATE_GRANTED);
    assert_non_null (strstr (explanation, "break-glass overrides: deploy window closed"));
    //  ...but never the request's own scheduled window: outside it, blocked whatever is signed.
    scheduled.window_start_ms = S_WEDNESDAY_LATE + 3600000;
    scheduled.window_end_ms = S_WEDNESDAY_LATE + 7200000;
    f->attempts++;
    assert_int_equal (s_evaluate (f, &scheduled, checked, 2, S_WEDNESDAY_LATE, explanation, sizeof explanation),
                      AL_APPROVAL_GATE_BLOCKED);
    assert_non_null (strstr (explanation, "scheduled window"));
}

static void
test_deny_closes_the_request (void **state)
{
    s_fixture_t *f = *state;
    Airlock__ApprovalRequest request = s_request (AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_HOTFIX);
    uint64_t now = S_WEDNESDAY_LATE;
    al_approval_gate_accepted_t checked [3];
    s_signed_t approval;
    s_statement_t fields = s_statement_for (&request, now);
    s_sign (&fields, &f->alice, &approval);
    s_accept (f, &request, &approval, now, &checked [0]);
    fields.decision = AIRLOCK__DECISION__DECISION_DENY;
    s_sign (&fields, &f->carol, &approval);
    s_accept (f, &request, &approval, now, &checked [1]);
    fields.decision = AIRLOCK__DECISION__DECISION_GRANT;
    s_sign (&fields, &f->bob1, &approval);
    s_accept (f, &request, &approval, now, &checked [2]);
    char explanation [256];
    f->attempts++;
    assert_int_equal (s_evaluate (f, &request, checked, 3, now, explanation, sizeof explanation), AL_APPROVAL_GATE_DENIED);
    assert_non_null (strstr (explanation, "carol"));
}

static void
test_signing_clients (void **state)
{
    s_fixture_t *f = *state;
    Airlock__ApprovalRequest request = s_request (AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD);
    uint64_t now = S_WEDNESDAY_LATE;
    al_approval_sign_options_t options = {
        .decision = AIRLOCK__DECISION__DECISION_GRANT, .issued_at_ms = now, .valid_for_ms = 3600000,
    };
    char error [512], explanation [256];
    al_approval_gate_accepted_t checked;

    //  frank's OpenSSH key, through ssh-keygen -Y sign: an SSHSIG approval the gate accepts.
    char key_path [128];
    snprintf (key_path, sizeof key_path, "%s/frank", f->key_dir);
    al_approval_signed_t *ssh_signed = al_approval_sign_with_ssh_key (&request, key_path, &options,
                                                                      error, sizeof error);
    if (!ssh_signed)
        fail_msg ("ssh signing failed: %s", error);
    assert_int_equal (al_approval_signed_message (ssh_signed)->format, AIRLOCK__SIGNATURE_FORMAT__SIG_SSHSIG);
    char reason [256] = "";
    if (!al_approval_gate_check (f->policy, &request, "orchestrator", al_approval_signed_message (ssh_signed),
                                 now, &checked, reason, sizeof reason))
        fail_msg ("SSHSIG approval rejected: %s", reason);
    assert_string_equal (checked.approver, "frank");
    assert_memory_equal (checked.approval_id, al_approval_signed_id (ssh_signed), AL_APPROVAL_ID_SIZE);
    assert_int_equal (al_approval_gate_evaluate (f->policy, &request, &checked, 1, now, explanation, sizeof explanation),
                      AL_APPROVAL_GATE_GRANTED);
    al_approval_signed_destroy (&ssh_signed);

    //  alice's airlock key file: raw Ed25519.
    snprintf (key_path, sizeof key_path, "%s/alice.key", f->key_dir);
    assert_int_equal (al_key_file_write (key_path, "alice", f->alice.secret_key, error, sizeof error), AL_SIG_OK);
    options.decision = AIRLOCK__DECISION__DECISION_DENY;
    options.reason = "rollback plan missing";
    al_approval_signed_t *key_signed = al_approval_sign_with_key_file (&request, key_path, &options,
                                                                       error, sizeof error);
    assert_non_null (key_signed);
    assert_true (al_approval_gate_check (f->policy, &request, "orchestrator", al_approval_signed_message (key_signed),
                                         now, &checked, reason, sizeof reason));
    assert_int_equal (checked.decision, AIRLOCK__DECISION__DECISION_DENY);
    assert_string_equal (checked.reason, "rollback plan missing");
    assert_int_equal (al_approval_gate_evaluate (f->policy, &request, &checked, 1, now, explanation, sizeof explanation),
                      AL_APPROVAL_GATE_DENIED);
    al_approval_signed_destroy (&key_signed);

    //  A signer never produces what the verifier refuses: no validity, no statement.
    options.valid_for_ms = 0;
    assert_null (al_approval_sign_with_key_file (&request, key_path, &options, error, sizeof error));
}

//  deploy-manager's own check of what the broker sends it.
static void
test_verify_grant (void **state)
{
    s_fixture_t *f = *state;
    uint64_t now = S_WEDNESDAY_LATE;
    Airlock__ApprovalRequest request = s_request (AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_HOTFIX);
    request.requested_by = "orchestrator";
    request.artifact_uri = "file:///artifacts/demo-service-v2";
    s_statement_t fields = s_statement_for (&request, now);
    s_signed_t alice, carol;
    s_sign (&fields, &f->alice, &alice);
    s_sign (&fields, &f->carol, &carol);
    Airlock__SignedApproval *approvals [2] = { &alice.message, &carol.message };
    Airlock__SignedApproval *twice [2] = { &alice.message, &alice.message };
    Airlock__ProductionGrant grant = AIRLOCK__PRODUCTION_GRANT__INIT;
    grant.request_id = request.request_id;
    grant.request = &request;
    grant.approvals = approvals;
    grant.n_approvals = 2;
    grant.granted_at_ms = now;
    Airlock__DeployRequest deploy = AIRLOCK__DEPLOY_REQUEST__INIT;
    deploy.service = request.service;
    deploy.version = request.version;
    deploy.artifact_uri = request.artifact_uri;
    deploy.artifact_sha256 = request.artifact_sha256;
    deploy.migration_set_sha256 = request.migration_set_sha256;
    deploy.deployment_type = request.deployment_type;
    Airlock__ExecuteDeploy execute = AIRLOCK__EXECUTE_DEPLOY__INIT;
    execute.request = &deploy;
    execute.grant = &grant;
    char reason [512];
    const Airlock__Environment production = AIRLOCK__ENVIRONMENT__ENV_PRODUCTION;
    if (!al_approval_gate_verify_grant (f->policy, production, &execute, now + 1000, reason, sizeof reason))
        fail_msg ("a valid grant was refused: %s", reason);

    //  Each forgery must be refused, naming what is wrong.
    struct { const char *why; } attempts [] = {
        { "artifact_sha256" }, { "not a production deploy" }, { "without a production grant" },
        { "repeats" }, { "do not open" }, { "older than approval_expiry" }, { "signature" },
        { "requested" },
    };
    for (size_t i = 0; i < sizeof attempts / sizeof attempts [0]; i++) {
        Airlock__ExecuteDeploy copy = execute;
        Airlock__DeployRequest deploy_copy = deploy;
        Airlock__ProductionGrant grant_copy = grant;
        Airlock__ApprovalRequest request_copy = request;
        copy.request = &deploy_copy;
        copy.grant = &grant_copy;
        grant_copy.request = &request_copy;
        Airlock__Environment env = production;
        uint64_t at = now + 1000;
        uint8_t saved = alice.signature [5];
        switch (i) {
            case 0: deploy_copy.artifact_sha256 = (char *) s_other_artifact; break;
            case 1: env = AIRLOCK__ENVIRONMENT__ENV_STAGING; break;
            case 2: copy.grant = NULL; break;
            case 3: grant_copy.approvals = twice; break;                          // alice's approval twice
            case 4: grant_copy.n_approvals = 1; break;                            // hotfix with alice only
            case 5: at = now + 5 * 3600000ULL; break;
            case 6: alice.signature [5] ^= 0x10; break;
            case 7: request_copy.requested_by = "alice"; break;                   // self-approval
        }
        f->attempts++;
        bool accepted = al_approval_gate_verify_grant (f->policy, env, &copy, at, reason, sizeof reason);
        alice.signature [5] = saved;
        if (accepted) {
            f->grants++;
            fail_msg ("forged grant %zu accepted", i);
        }
        if (i != 7 && !strstr (reason, attempts [i].why))
            fail_msg ("grant %zu refused for '%s', expected '%s'", i, reason, attempts [i].why);
        if (i == 7 && !strstr (reason, "self-approval"))
            fail_msg ("grant 7 refused for '%s', expected self-approval", reason);
    }
}

//  Four eyes between author and approver: alice submitted the release through ci-1
//  (identities.yaml names her as its person), so her signature does not count for it,
//  at the broker's check and again in deploy-manager's verification of a grant; bob's
//  does. The submitter is part of what is signed: a statement naming another submitter,
//  or none (an older client), does not count for a request that names one.
static void
test_four_eyes_between_submitter_and_approver (void **state)
{
    s_fixture_t *f = *state;
    uint64_t now = S_TUESDAY_WINDOW;
    Airlock__ApprovalRequest request = s_request (AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD);
    request.requested_by = "orchestrator";
    request.submitted_by = "ci-1";
    s_statement_t fields = s_statement_for (&request, now);
    assert_string_equal (fields.submitted_by, "ci-1");
    s_signed_t alice, bob;
    s_sign (&fields, &f->alice, &alice);
    s_sign (&fields, &f->bob1, &bob);
    s_expect_rejected (f, &request, "orchestrator", &alice, now,
                       "four eyes: alice submitted this release (request req-42) through identity ci-1");
    al_approval_gate_accepted_t checked;
    s_accept (f, &request, &bob, now, &checked);
    char explanation [512];
    assert_int_equal (s_evaluate (f, &request, &checked, 1, now, explanation, sizeof explanation), AL_APPROVAL_GATE_GRANTED);
    assert_non_null (strstr (explanation, "manager bob"));

    //  The same alice may approve a release ci-2 (nobody's) submitted.
    Airlock__ApprovalRequest other = request;
    other.submitted_by = "ci-2";
    s_statement_t other_fields = s_statement_for (&other, now);
    s_signed_t alice_other;
    s_sign (&other_fields, &f->alice, &alice_other);
    s_accept (f, &other, &alice_other, now, &checked);
    //  ... but not with her signature over ci-1's request: the submitter is signed.
    s_expect_rejected (f, &other, "orchestrator", &alice, now, "statement.submitted_by does not match");
    s_expect_rejected (f, &request, "orchestrator", &alice_other, now, "statement.submitted_by does not match");
    //  A statement without submitted_by (made before four eyes): refused, saying so.
    s_statement_t old_fields = s_statement_for (&request, now);
    old_fields.submitted_by = NULL;
    s_signed_t bob_old;
    s_sign (&old_fields, &f->bob1, &bob_old);
    s_expect_rejected (f, &request, "orchestrator", &bob_old, now, "statement.submitted_by is missing");
    //  An approver whose name is the submitting identity's own name is refused too.
    Airlock__ApprovalRequest named = request;
    named.submitted_by = "bob";
    s_statement_t named_fields = s_statement_for (&named, now);
    s_signed_t bob_named;
    s_sign (&named_fields, &f->bob2, &bob_named);
    s_expect_rejected (f, &named, "orchestrator", &bob_named, now, "four eyes: bob submitted");
    //  A request from before submitted_by existed (none on either side) is judged as before.
    Airlock__ApprovalRequest legacy = request;
    legacy.submitted_by = "";
    s_statement_t legacy_fields = s_statement_for (&legacy, now);
    legacy_fields.submitted_by = NULL;
    s_signed_t alice_legacy;
    s_sign (&legacy_fields, &f->alice, &alice_legacy);
    s_accept (f, &legacy, &alice_legacy, now, &checked);

    //  The signing client (al_approval_sign) signs the request's submitter.
    const al_approval_sign_options_t options = { AIRLOCK__DECISION__DECISION_GRANT, NULL, false, now - 1000, 3600000 };
    char error [256] = "";
    al_approval_signed_t *signed_alice = al_approval_sign_with_secret (&request, f->alice.secret_key, &options,
                                                                       error, sizeof error);
    assert_non_null (signed_alice);
    char reason [512] = "";
    f->attempts++;
    assert_false (al_approval_gate_check (f->policy, &request, "orchestrator", al_approval_signed_message (signed_alice),
                                          now, &checked, reason, sizeof reason));
    assert_non_null (strstr (reason, "four eyes: alice"));
    al_approval_signed_t *signed_bob = al_approval_sign_with_secret (&request, f->bob1.secret_key, &options,
                                                                     error, sizeof error);
    assert_non_null (signed_bob);
    if (!al_approval_gate_check (f->policy, &request, "orchestrator", al_approval_signed_message (signed_bob),
                                 now, &checked, reason, sizeof reason))
        fail_msg ("bob's approval of ci-1's release was refused: %s", reason);

    //  deploy-manager's verification refuses a grant counting alice for ci-1's release.
    request.artifact_uri = "file:///artifacts/demo-service-v2";
    Airlock__SignedApproval *approvals [1] = { (Airlock__SignedApproval *) al_approval_signed_message (signed_alice) };
    Airlock__ProductionGrant grant = AIRLOCK__PRODUCTION_GRANT__INIT;
    grant.request_id = request.request_id;
    grant.request = &request;
    grant.approvals = approvals;
    grant.n_approvals = 1;
    grant.granted_at_ms = now;
    Airlock__DeployRequest deploy = AIRLOCK__DEPLOY_REQUEST__INIT;
    deploy.service = request.service;
    deploy.version = request.version;
    deploy.artifact_uri = request.artifact_uri;
    deploy.artifact_sha256 = request.artifact_sha256;
    deploy.deployment_type = request.deployment_type;
    Airlock__ExecuteDeploy execute = AIRLOCK__EXECUTE_DEPLOY__INIT;
    execute.request = &deploy;
    execute.grant = &grant;
    f->attempts++;
    if (al_approval_gate_verify_grant (f->policy, AIRLOCK__ENVIRONMENT__ENV_PRODUCTION, &execute, now + 1000,
                              reason, sizeof reason)) {
        f->grants++;
        fail_msg ("a grant counting the submitter's own approval was accepted");
    }
    assert_non_null (strstr (reason, "four eyes"));
    approvals [0] = (Airlock__SignedApproval *) al_approval_signed_message (signed_bob);
    if (!al_approval_gate_verify_grant (f->policy, AIRLOCK__ENVIRONMENT__ENV_PRODUCTION, &execute, now + 1000,
                               reason, sizeof reason))
        fail_msg ("bob's grant was refused: %s", reason);
    al_approval_signed_destroy (&signed_alice);
    al_approval_signed_destroy (&signed_bob);
}

//  A request with no QA report ("none"): fine for a type that needs no staging; for an
//  emergency only with the extra skip-staging approvals (devops by default); refused for
//  a type that requires staging and names no way to skip it.
static void
test_skipping_staging (void **state)
{
    s_fixture_t *f = *state;
    uint64_t now = S_WEDNESDAY_LATE;
    char explanation [512];
    al_approval_gate_accepted_t checked [2];
    s_signed_t a;

    Airlock__ApprovalRequest emergency = s_request (AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_EMERGENCY);
    emergency.qa_report_sha256 = AL_APPROVAL_GATE_NO_QA_REPORT;
    s_statement_t fields = s_statement_for (&emergency, now);
    //  The manager's quorum alone is not enough without staging.
    s_sign (&fields, &f->alice, &a);
    s_accept (f, &emergency, &a, now, &checked [0]);
    f->attempts++;
    al_approval_gate_outcome_t outcome = s_evaluate (f, &emergency, checked, 1, now, explanation, sizeof explanation);
    if (outcome == AL_APPROVAL_GATE_GRANTED)
        f->grants++;
    assert_int_equal (outcome, AL_APPROVAL_GATE_PENDING);
    if (!strstr (explanation, "devops (to skip staging)"))
        fail_msg ("explanation: %s", explanation);
    //  A devops engineer alone fills the skip slot, not the manager's.
    s_sign (&fields, &f->dave, &a);
    s_accept (f, &emergency, &a, now, &checked [0]);
    f->attempts++;
    outcome = s_evaluate (f, &emergency, checked, 1, now, explanation, sizeof explanation);
    if (outcome == AL_APPROVAL_GATE_GRANTED)
        f->grants++;
    assert_int_equal (outcome, AL_APPROVAL_GATE_PENDING);
    //  Both: granted, and the explanation says who let staging be skipped.
    s_sign (&fields, &f->alice, &a);
    s_accept (f, &emergency, &a, now, &checked [1]);
    outcome = s_evaluate (f, &emergency, checked, 2, now, explanation, sizeof explanation);
    if (outcome != AL_APPROVAL_GATE_GRANTED)
        fail_msg ("emergency with manager + devops: %s", explanation);
    assert_non_null (strstr (explanation, "devops (skipping staging) dave"));
    //  A DENY from the devops engineer closes it.
    fields.decision = AIRLOCK__DECISION__DECISION_DENY;
    s_sign (&fields, &f->dave, &a);
    s_accept (f, &emergency, &a, now, &checked [0]);
    f->attempts++;
    outcome = s_evaluate (f, &emergency, checked, 2, now, explanation, sizeof explanation);
    if (outcome == AL_APPROVAL_GATE_GRANTED)
        f->grants++;
    assert_int_equal (outcome, AL_APPROVAL_GATE_DENIED);

    //  A standard deployment without a QA report: refused whoever signs.
    Airlock__ApprovalRequest standard = s_request (AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD);
    standard.qa_report_sha256 = AL_APPROVAL_GATE_NO_QA_REPORT;
    fields = s_statement_for (&standard, now);
    s_sign (&fields, &f->alice, &a);
    s_accept (f, &standard, &a, now, &checked [0]);
    s_sign (&fields, &f->dave, &a);
    s_accept (f, &standard, &a, now, &checked [1]);
    f->attempts++;
    outcome = s_evaluate (f, &standard, checked, 2, now, explanation, sizeof explanation);
    if (outcome == AL_APPROVAL_GATE_GRANTED)
        f->grants++;
    assert_int_equal (outcome, AL_APPROVAL_GATE_DENIED);
    assert_non_null (strstr (explanation, "require a staging run"));

    //  A rollback needs no QA report: devops alone, as its quorum says.
    Airlock__ApprovalRequest rollback = s_request (AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_ROLLBACK);
    rollback.qa_report_sha256 = AL_APPROVAL_GATE_NO_QA_REPORT;
    fields = s_statement_for (&rollback, now);
    s_sign (&fields, &f->dave, &a);
    s_accept (f, &rollback, &a, now, &checked [0]);
    outcome = s_evaluate (f, &rollback, checked, 1, now, explanation, sizeof explanation);
    if (outcome != AL_APPROVAL_GATE_GRANTED)
        fail_msg ("rollback with devops: %s", explanation);
}

static void
test_no_attempt_was_granted (void **state)
{
    s_fixture_t *f = *state;
    printf ("adversarial attempts at the gate: %zu, grants among them: %zu\n", f->attempts, f->grants);
    assert_int_equal (f->grants, 0);
    assert_true (f->attempts > 100);
}

int
main (void)
{
    //  One fixture for the group so the attempt count spans every test.
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_each_type_granted_with_exactly_its_quorum),
        cmocka_unit_test (test_hotfix_needs_two_people),
        cmocka_unit_test (test_keys_that_never_count),
        cmocka_unit_test (test_statement_must_match_request),
        cmocka_unit_test (test_expiry_boundaries),
        cmocka_unit_test (test_every_bit_flip_is_refused),
        cmocka_unit_test (test_windows_freezes_and_break_glass),
        cmocka_unit_test (test_deny_closes_the_request),
        cmocka_unit_test (test_signing_clients),
        cmocka_unit_test (test_verify_grant),
        cmocka_unit_test (test_four_eyes_between_submitter_and_approver),
        cmocka_unit_test (test_skipping_staging),
        cmocka_unit_test (test_no_attempt_was_granted),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
