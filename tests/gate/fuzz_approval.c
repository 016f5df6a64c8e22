/*  fuzz_approval.c: libFuzzer target for the approval verifier as the broker runs it:
    arbitrary bytes decoded as a SignedApproval, then judged by al_approval_gate_check
    against the shipped default policy plus one approver whose secret key the fuzzer
    never sees. Nothing may crash or leak, and nothing may be accepted.
*/
#include "policies/al_approval_gate.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static al_policy_t *s_policy;

static void
s_load_policy (void)
{
    //  A copy of the default policy with one approver, made once per process.
    char dir [] = "/tmp/airlock-fuzz-approval-XXXXXX", command [512], path [600];
    if (sodium_init () < 0 || !mkdtemp (dir))
        abort ();
    snprintf (command, sizeof command, "cp -r %s/. %s/", AIRLOCK_DEFAULT_POLICY_DIR, dir);
    if (system (command) != 0)
        abort ();
    uint8_t public_key [32], secret_key [64];
    crypto_sign_keypair (public_key, secret_key);
    char hex [65];
    sodium_bin2hex (hex, sizeof hex, public_key, 32);
    snprintf (path, sizeof path, "%s/approvers.yaml", dir);
    FILE *file = fopen (path, "w");
    if (!file)
        abort ();
    fprintf (file, "approvers:\n  - name: alice\n    roles: [manager]\n    keys:\n"
                   "      - {id: a1, ed25519: \"%s\"}\n", hex);
    fclose (file);
    s_policy = al_policy_load (dir, NULL);
    snprintf (command, sizeof command, "rm -rf %s", dir);
    if (!s_policy || system (command) != 0)
        abort ();
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (!s_policy)
        s_load_policy ();
    Airlock__SignedApproval *approval = airlock__signed_approval__unpack (NULL, size, data);
    if (!approval)
        return 0;
    Airlock__ApprovalRequest request = AIRLOCK__APPROVAL_REQUEST__INIT;
    request.request_id = "req-1";
    request.deployment_type = AIRLOCK__DEPLOYMENT_TYPE__DEPLOY_TYPE_STANDARD;
    request.environment = AIRLOCK__ENVIRONMENT__ENV_PRODUCTION;
    request.service = "demo-service";
    request.artifact_sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    request.qa_report_sha256 = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";
    al_approval_gate_accepted_t checked;
    char reason [256];
    if (al_approval_gate_check (s_policy, &request, "orchestrator", approval, 1795618800000ULL,
                                &checked, reason, sizeof reason))
        abort ();   // a forged approval passed the gate
    airlock__signed_approval__free_unpacked (approval, NULL);
    return 0;
}
