/*  al_policy.h: the policy engine: load a policy directory, validate it, answer questions.

    A policy is the seven YAML files of a directory (roles, identities, approvers,
    deployment_types, constraints, dependencies, quality_rules; see docs/policies.md).
    al_policy_load parses them with libyaml, validates them strictly and collects every
    error as "path/file.yaml:line:column: what is wrong"; it returns a policy only if
    there were none. A loaded policy is immutable: every query takes a const pointer and
    any number of threads may query one policy at once.

    The digest is SHA-256 over a canonical JSON form of the seven documents (see
    docs/policies.md): comments, key order, quoting and layout do not change it; any
    change of a value does. The broker writes it to the audit log.

    Time queries take the time as an argument (the clock is injected by the caller).
*/
#ifndef AL_POLICY_H_INCLUDED
#define AL_POLICY_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "proto/al_codec.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct al_policy_t al_policy_t;
typedef struct al_policy_errors_t al_policy_errors_t;

//  The files of a policy directory, in the order they are loaded.
#define AL_POLICY_FILE_COUNT 7
const char *al_policy_file_name (size_t index);

//  Load and validate DIR. Returns the policy, or NULL if anything is wrong; then, if
//  errors_p is not NULL, *errors_p holds every error found (caller destroys it).
al_policy_t *al_policy_load (const char *dir, al_policy_errors_t **errors_p);
//  NULL-safe; sets *self_p to NULL.
void al_policy_destroy (al_policy_t **self_p);

size_t al_policy_errors_count (const al_policy_errors_t *errors);
//  The index-th error, "dir/roles.yaml:12:5: unknown key 'alow'".
const char *al_policy_errors_at (const al_policy_errors_t *errors, size_t index);
void al_policy_errors_destroy (al_policy_errors_t **errors_p);

//  The 32-byte SHA-256 digest, and as 64 lowercase hex characters.
const uint8_t *al_policy_digest (const al_policy_t *self);
const char *al_policy_digest_hex (const al_policy_t *self);
//  The canonical JSON the digest is computed over (compact, sorted keys).
const char *al_policy_canonical_json (const al_policy_t *self);
//  The directory it was loaded from.
const char *al_policy_dir (const al_policy_t *self);

//  ---- roles.yaml -------------------------------------------------------------------

//  Environment value for bus-level messages (envelope environment unspecified); its
//  name in roles.yaml is "bus".
#define AL_POLICY_ENV_BUS AIRLOCK__ENVIRONMENT__ENV_UNSPECIFIED

size_t al_policy_role_count (const al_policy_t *self);
const char *al_policy_role_at (const al_policy_t *self, size_t index);
bool al_policy_role_exists (const al_policy_t *self, const char *role);
//  "bus-agent", "ai-agent" or "human"; NULL for an unknown role.
const char *al_policy_role_kind (const al_policy_t *self, const char *role);
//  The role whose QaReport gives a release its QA verdict (roles.yaml `qa_authority`);
//  NULL when the policy names none: then no report is a verdict (fail closed). Other
//  roles' QaReports are evidence only.
const char *al_policy_qa_authority (const al_policy_t *self);

//  May ROLE send TYPE about ENV? If rule is not NULL it receives why, e.g.
//  "roles.yaml:42:9: orchestrator may send DeployRequest in staging" or
//  "no rule grants it: default deny (roles.yaml)". Unknown roles and types are denied.
bool al_policy_may_send (const al_policy_t *self, const char *role, al_msg_type_t type,
                         Airlock__Environment env, char *rule, size_t rule_size);

//  Seed 001's capability cell of ROLE in ENV ("write_code", "cannot_deploy", ...), or
//  NULL if the role has none. *allowed_p (if not NULL) says whether the cell is a ✅.
const char *al_policy_capability (const al_policy_t *self, const char *role,
                                  Airlock__Environment env, bool *allowed_p);

//  ---- identities.yaml / approvers.yaml ---------------------------------------------

//  Identity and role for a Z85 CURVE public key (40 chars); false if unknown.
bool al_policy_identity_for_key (const al_policy_t *self, const char *z85_key,
                                 const char **identity_p, const char **role_p);
//  The entry of an identity name: its Z85 key, role and person (the human behind it, as
//  named in approvers.yaml; NULL when identities.yaml names none). Any out-pointer may be
//  NULL. False if no identity has that name.
bool al_policy_identity_by_name (const al_policy_t *self, const char *identity,
                                 const char **key_p, const char **role_p, const char **person_p);

typedef struct {
    const char *name;           // approver name
    const char *key_id;         // the key's id ("" if none)
    const char *const *roles;   // role names
    size_t role_count;
    bool revoked;               // the key is listed under revoked_keys: never count it
} al_policy_approver_t;

//  The approver owning a 32-byte Ed25519 public key; false if no approver lists it.
bool al_policy_approver_for_key (const al_policy_t *self, const uint8_t public_key [32],
                                 al_policy_approver_t *approver);
size_t al_policy_approver_count (const al_policy_t *self);

//  ---- deployment_types.yaml --------------------------------------------------------

typedef struct {
    const char *role;
    unsigned count;
} al_policy_quorum_entry_t;

typedef struct {
    const al_policy_quorum_entry_t *entries;
    size_t count;
} al_policy_quorum_t;

//  The quorum of a deployment type (count 0 for an unknown type).
al_policy_quorum_t al_policy_quorum (const al_policy_t *self, Airlock__DeploymentType type);
//  Extra signatures that override a freeze.
al_policy_quorum_t al_policy_break_glass (const al_policy_t *self);
//  Extra signatures that allow skipping staging (count 0: skipping is not allowed).
al_policy_quorum_t al_policy_skip_staging_quorum (const al_policy_t *self, Airlock__DeploymentType type);
bool al_policy_requires_window (const al_policy_t *self, Airlock__DeploymentType type);
bool al_policy_requires_staging (const al_policy_t *self, Airlock__DeploymentType type);
//  Default validity of an approval, seconds.
int64_t al_policy_approval_expiry_s (const al_policy_t *self);
//  Always true in a valid policy (self_approval: forbidden).
bool al_policy_self_approval_forbidden (const al_policy_t *self);

//  ---- constraints.yaml -------------------------------------------------------------

//  Is STRATEGY allowed in ENV?
bool al_policy_strategy_allowed (const al_policy_t *self, Airlock__Environment env,
                                 Airlock__Strategy strategy);
unsigned al_policy_max_instances (const al_policy_t *self, Airlock__Environment env);
double al_policy_monthly_budget_usd (const al_policy_t *self, Airlock__Environment env);
//  Seed 002's budget alert: the share of the monthly budget (percent, 1..100) a projected
//  cost may reach before the notifier alerts (constraints.yaml budget_alert_percent,
//  optional per environment).
#define AL_POLICY_DEFAULT_BUDGET_ALERT_PERCENT 80.0
double al_policy_budget_alert_percent (const al_policy_t *self, Airlock__Environment env);
//  The calendar's IANA time zone.
const char *al_policy_timezone (const al_policy_t *self);

//  Is a deploy window open in ENV at NOW? Environments outside calendar.applies_to are
//  always open. explanation (if not NULL) says which window or why not.
bool al_policy_window_open (const al_policy_t *self, Airlock__Environment env, time_t now,
                            char *explanation, size_t explanation_size);

typedef enum {
    AL_POLICY_FREEZE_NONE = 0,    // no freeze
    AL_POLICY_FREEZE_FLAGGED,     // allowed, but flagged (month end with month_end: flag)
    AL_POLICY_FREEZE_ACTIVE       // frozen: only break_glass overrides
} al_policy_freeze_t;

al_policy_freeze_t al_policy_freeze_check (const al_policy_t *self, Airlock__Environment env,
                                           time_t now, char *explanation, size_t explanation_size);

//  ---- dependencies.yaml ------------------------------------------------------------

//  The critical path as Step values, in order.
size_t al_policy_critical_path (const al_policy_t *self, const Airlock__Step **steps_p);
int64_t al_policy_qa_report_max_age_s (const al_policy_t *self);
int64_t al_policy_signal_max_age_s (const al_policy_t *self);

//  ---- quality_rules.yaml -----------------------------------------------------------

typedef struct {
    unsigned health_check_failures_more_than;       // consecutive
    double error_rate_increase_more_than_points;    // percentage points above baseline
    double latency_p99_more_than_baseline_factor;   // × baseline
    double latency_p99_floor_ms;                    // a p99 at or below this never breaches (0: none)
    double cpu_percent_more_than;
    double memory_percent_more_than;
    double investigate_error_rate_percent_more_than;
    const char *liveness_path;
    const char *readiness_path;
    int64_t health_interval_ms;
    int64_t health_timeout_ms;
} al_policy_thresholds_t;

const al_policy_thresholds_t *al_policy_thresholds (const al_policy_t *self);

//  Security scan findings a release may carry and still be approved (quality_rules.yaml
//  `security_scan`), per severity; AL_POLICY_SCAN_UNLIMITED: any number. Without the key:
//  no critical, no high, any medium and low.
#define AL_POLICY_SCAN_UNLIMITED (-1)
typedef struct {
    int64_t max_critical;
    int64_t max_high;
    int64_t max_medium;
    int64_t max_low;
} al_policy_scan_limits_t;

const al_policy_scan_limits_t *al_policy_scan_limits (const al_policy_t *self);

//  At most this many signatures per decision: a type's quorum, its skip_staging_quorum
//  and break_glass together (the loader refuses more; the gate refuses rather than
//  count fewer).
#define AL_POLICY_MAX_APPROVAL_SLOTS 32

//  Soak: duration and checkpoints in milliseconds, already multiplied by time_scale.
typedef struct {
    int64_t duration_ms;
    const int64_t *checkpoints_ms;
    size_t checkpoint_count;
    double time_scale;
} al_policy_soak_t;

const al_policy_soak_t *al_policy_soak (const al_policy_t *self);

//  Definition of Done: count, and the i-th point's id and text.
size_t al_policy_done_count (const al_policy_t *self);
const char *al_policy_done_id (const al_policy_t *self, size_t index);
const char *al_policy_done_text (const al_policy_t *self, size_t index);

#ifdef __cplusplus
}
#endif

#endif
