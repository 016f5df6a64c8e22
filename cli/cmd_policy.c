/*  cmd_policy.c: `airlock policy check|show|explain`: validate, print and question a policy.

    A thin client of policies/al_policy.h. The policy directory is the DIR argument, else
    the policy of --state DIR / --config FILE, else $AIRLOCK_POLICY_DIR, else the policy of
    the airlock.yaml every command finds (al_cli_config_path). Exit codes
    follow cli.h: check exits 1 on an invalid policy; explain exits 0 when the message is
    allowed and 1 when it is denied; every subcommand exits 2 on usage errors, and show
    and explain exit 2 when the policy does not load (there is nothing to answer from).
*/
#include "cli/cli.h"
#include "base/al_config.h"
#include "policies/al_policy.h"
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

//  The policy directory when no DIR is given (caller frees): --state / --config's policy,
//  else $AIRLOCK_POLICY_DIR, else the policy of the airlock.yaml every command finds
//  ($AIRLOCK_CONFIG, else ./airlock-state/airlock.yaml). Never a directory of whatever
//  the current directory happens to hold. NULL (printed) when there is none.
static char *
s_default_dir (const char *config_option, const char *state_option)
{
    const char *environment = getenv ("AIRLOCK_POLICY_DIR");
    if (!config_option && !state_option && environment && *environment)
        return strdup (environment);
    char buffer [2048], error [1024];
    const char *config_path = al_cli_config_path (config_option, state_option, buffer, sizeof buffer);
    al_config_t *config = config_path? al_config_load (config_path, error, sizeof error): NULL;
    if (!config) {
        fprintf (stderr, "airlock policy: which policy? %s\n(give DIR, --state DIR or --config FILE, or set "
                 "AIRLOCK_CONFIG)\n", config_path? error: "--state: path too long");
        return NULL;
    }
    char *dir = strdup (al_config_policy_dir (config));
    al_config_destroy (&config);
    return dir;
}

//  Parses [DIR] [--state DIR | --config FILE] [--json] (and --dir DIR when dir_option);
//  positional arguments beyond DIR go to extra (up to extra_max). 0 or an exit code.
typedef struct {
    const char *dir;
    const char *config_option;
    const char *state_option;
    bool json;
    const char *extra [3];
    int extra_count;
} s_args_t;

static int
s_parse (int argc, char **argv, s_args_t *args, int extra_max, bool dir_option)
{
    memset (args, 0, sizeof *args);
    const al_cli_option_t options [] = { { "--dir", .value = &args->dir }, { .name = NULL } };
    //  explain: ROLE MESSAGE_TYPE ENV and --dir DIR; check and show: [DIR].
    const al_cli_parser_t parser = { "policy", NULL, .config = true, .json = true,
                                     .options = dir_option? options: NULL,
                                     .arguments = extra_max? args->extra: &args->dir,
                                     .arguments_max = extra_max? (size_t) extra_max: !dir_option };
    al_cli_common_t common;
    if (al_cli_parse (&parser, argc, argv, &common) != 0)
        return AL_EXIT_USAGE;
    args->config_option = common.config_option;
    args->state_option = common.state_option;
    args->json = common.json;
    args->extra_count = extra_max? (int) common.arguments: 0;
    return 0;
}

//  The directory of args: DIR, else the default (caller frees); NULL (printed) if none.
static char *
s_dir (const s_args_t *args)
{
    return args->dir? strdup (args->dir): s_default_dir (args->config_option, args->state_option);
}

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: airlock policy check [DIR] [--state DIR | --config FILE] [--json]\n"
        "       airlock policy show [DIR] [--state DIR | --config FILE] [--json]\n"
        "       airlock policy explain ROLE MESSAGE_TYPE ENV [--dir DIR] [--state DIR | --config FILE] [--json]\n\n"
        "  check    validate every file of the policy; list every error as file:line:column\n"
        "           (--json: {\"dir\", \"valid\", \"digest\", \"errors\": [...]}); exit 0 valid,\n"
        "           1 invalid\n"
        "  show     print what the engine loaded (roles, quorums, constraints, rules) and\n"
        "           the policy digest; --json prints the canonical policy the digest covers\n"
        "  explain  may ROLE send MESSAGE_TYPE (e.g. DeployRequest) about ENV\n"
        "           (development, staging, production, or bus)? Prints the deciding rule;\n"
        "           exit 0 allowed, 1 denied\n\n"
        "DIR defaults to the policy of the state directory: --state DIR or --config FILE,\n"
        "else $AIRLOCK_POLICY_DIR, else the airlock.yaml of $AIRLOCK_CONFIG, else of\n"
        "./airlock-state/airlock.yaml (the lookup of every command).\n"
        "Exit 2: usage error, or (show, explain) a policy that does not load.\n");
}

//  Loads dir, printing every error on stderr, or (when collected is not NULL) appending
//  them to it instead; NULL if invalid.
static al_policy_t *
s_load (const char *dir, json_t *collected)
{
    al_policy_errors_t *errors = NULL;
    al_policy_t *policy = al_policy_load (dir, &errors);
    size_t count = al_policy_errors_count (errors);
    for (size_t i = 0; i < count; i++)
        if (collected)
            json_array_append_new (collected, json_string (al_policy_errors_at (errors, i)));
        else
            fprintf (stderr, "%s\n", al_policy_errors_at (errors, i));
    if (!policy && !collected)
        fprintf (stderr, "airlock policy: %s: invalid policy (%zu error%s)\n", dir, count,
                 count == 1 ? "" : "s");
    al_policy_errors_destroy (&errors);
    return policy;
}

static int
s_check (int argc, char **argv)
{
    s_args_t args;
    if (s_parse (argc, argv, &args, 0, false) != 0) {
        s_usage (stderr);
        return AL_EXIT_USAGE;
    }
    char *dir = s_dir (&args);
    if (!dir)
        return AL_EXIT_USAGE;
    json_t *errors = args.json? json_array (): NULL;
    al_policy_t *policy = s_load (dir, errors);
    if (args.json) {
        json_t *root = json_pack ("{s:s, s:b, s:s?, s:O}", "dir", dir, "valid", policy != NULL,
                                  "digest", policy? al_policy_digest_hex (policy): NULL, "errors", errors);
        if (root)
            json_dumpf (root, stdout, JSON_INDENT (2) | JSON_PRESERVE_ORDER);
        printf ("\n");
        json_decref (root);
    }
    else
    if (policy)
        printf ("%s: valid policy, digest %s\n", dir, al_policy_digest_hex (policy));
    int exit_code = policy? AL_EXIT_OK: AL_EXIT_BAD;
    json_decref (errors);
    al_policy_destroy (&policy);
    free (dir);
    return exit_code;
}

static void
s_print_quorum (const char *label, al_policy_quorum_t quorum)
{
    printf ("%s", label);
    if (quorum.count == 0)
        printf (" none");
    for (size_t i = 0; i < quorum.count; i++)
        printf ("%s %u %s", i ? " +" : "", quorum.entries [i].count, quorum.entries [i].role);
    printf ("\n");
}

static void
s_show_text (const al_policy_t *p)
{
    static const Airlock__Environment envs [] = {
        AL_POLICY_ENV_BUS, AIRLOCK__ENVIRONMENT__ENV_DEVELOPMENT, AIRLOCK__ENVIRONMENT__ENV_STAGING,
        AIRLOCK__ENVIRONMENT__ENV_PRODUCTION
    };
    static const char *env_names [] = { "bus", "development", "staging", "production" };
    printf ("policy %s\ndigest %s\n\nroles (default deny):\n", al_policy_dir (p), al_policy_digest_hex (p));
    for (size_t r = 0; r < al_policy_role_count (p); r++) {
        const char *role = al_policy_role_at (p, r);
        printf ("  %s (%s)\n", role, al_policy_role_kind (p, role));
        for (size_t e = 0; e < 4; e++) {
            bool allowed;
            const char *cap = al_policy_capability (p, role, envs [e], &allowed);
            bool any = false;
            for (size_t t = 0; t < al_msg_type_count (); t++)
                if (al_policy_may_send (p, role, al_msg_type_at (t), envs [e], NULL, 0)) {
                    printf ("%s %s", any ? "," : "   ", al_msg_type_name (al_msg_type_at (t)));
                    any = true;
                }
            if (any || cap) {
                if (!any)
                    printf ("    (nothing)");
                printf ("  [%s]", env_names [e]);
                if (cap)
                    printf ("  seed 001: %s %s", allowed ? "yes" : "no", cap);
                printf ("\n");
            }
        }
    }
    printf ("\ndeployment types (approval expiry %llds, self-approval forbidden):\n",
            (long long) al_policy_approval_expiry_s (p));
    for (int type = 1; type <= 5; type++) {
        char label [96];
        snprintf (label, sizeof label, "  %-10s quorum:", al_deployment_type_name ((Airlock__DeploymentType) type));
        s_print_quorum (label, al_policy_quorum (p, (Airlock__DeploymentType) type));
        printf ("             window %s, staging %s\n",
                al_policy_requires_window (p, (Airlock__DeploymentType) type) ? "required" : "not required",
                al_policy_requires_staging (p, (Airlock__DeploymentType) type) ? "required" : "not required");
        al_policy_quorum_t skip = al_policy_skip_staging_quorum (p, (Airlock__DeploymentType) type);
        if (skip.count)
            s_print_quorum ("             skip staging with extra:", skip);
    }
    s_print_quorum ("  break glass (override a freeze) extra:", al_policy_break_glass (p));
    printf ("\nconstraints (calendar time zone %s):\n", al_policy_timezone (p));
    static const char *strategies [] = { "", "rolling", "canary", "blue-green" };
    for (size_t e = 1; e < 4; e++) {
        printf ("  %-11s strategies:", env_names [e]);
        for (int s = 1; s <= 3; s++)
            if (al_policy_strategy_allowed (p, envs [e], (Airlock__Strategy) s))
                printf (" %s", strategies [s]);
        printf ("; max %u instances; budget %.2f USD/month\n", al_policy_max_instances (p, envs [e]),
                al_policy_monthly_budget_usd (p, envs [e]));
    }
    const Airlock__Step *steps;
    size_t step_count = al_policy_critical_path (p, &steps);
    static const char *step_names [] = { "", "preflight", "backup", "migrate", "rollout", "soak", "receipt" };
    printf ("\ncritical path:");
    for (size_t i = 0; i < step_count; i++)
        printf ("%s%s", i ? " -> " : " ", step_names [steps [i]]);
    const al_policy_thresholds_t *t = al_policy_thresholds (p);
    printf ("\n\nrollback when: health checks fail more than %u times in a row; error rate more than %g "
            "points above baseline;\n  p99 latency more than %gx baseline; CPU above %g%%; memory above %g%%\n"
            "investigate when: error rate above %g%%\nprobes: %s %s every %lldms (timeout %lldms)\n",
            t->health_check_failures_more_than, t->error_rate_increase_more_than_points,
            t->latency_p99_more_than_baseline_factor, t->cpu_percent_more_than, t->memory_percent_more_than,
            t->investigate_error_rate_percent_more_than, t->liveness_path, t->readiness_path,
            (long long) t->health_interval_ms, (long long) t->health_timeout_ms);
    const al_policy_soak_t *soak = al_policy_soak (p);
    printf ("soak: %lldms (time scale %g), checkpoints:", (long long) soak->duration_ms, soak->time_scale);
    for (size_t i = 0; i < soak->checkpoint_count; i++)
        printf (" %lldms", (long long) soak->checkpoints_ms [i]);
    printf ("\n\ndefinition of done:\n");
    for (size_t i = 0; i < al_policy_done_count (p); i++)
        printf ("  %zu. %s: %s\n", i + 1, al_policy_done_id (p, i), al_policy_done_text (p, i));
}

static int
s_show (int argc, char **argv)
{
    s_args_t args;
    if (s_parse (argc, argv, &args, 0, false) != 0) {
        s_usage (stderr);
        return AL_EXIT_USAGE;
    }
    bool json = args.json;
    char *dir = s_dir (&args);
    al_policy_t *policy = dir? s_load (dir, NULL): NULL;
    free (dir);
    if (!policy)
        return AL_EXIT_USAGE;
    if (json) {
        json_t *policy_json = json_loads (al_policy_canonical_json (policy), 0, NULL);
        json_t *out = json_pack ("{s:s, s:s, s:o}", "dir", al_policy_dir (policy),
                                 "digest", al_policy_digest_hex (policy), "policy", policy_json);
        if (out)
            json_dumpf (out, stdout, JSON_INDENT (2) | JSON_SORT_KEYS);
        printf ("\n");
        json_decref (out);
    }
    else
        s_show_text (policy);
    al_policy_destroy (&policy);
    return AL_EXIT_OK;
}

static int
s_explain (int argc, char **argv)
{
    s_args_t args;
    if (s_parse (argc, argv, &args, 3, true) != 0 || args.extra_count != 3) {
        s_usage (stderr);
        return AL_EXIT_USAGE;
    }
    bool json = args.json;
    const char *role = args.extra [0], *type_name = args.extra [1], *env_name = args.extra [2];
    al_msg_type_t type = al_msg_type_from_name (type_name);
    if (type == AL_MSG_NONE) {
        fprintf (stderr, "airlock policy explain: unknown message type '%s'\n", type_name);
        return AL_EXIT_USAGE;
    }
    Airlock__Environment env = al_environment_from_name (env_name);
    if (env == AIRLOCK__ENVIRONMENT__ENV_UNSPECIFIED && strcmp (env_name, "bus") != 0) {
        fprintf (stderr, "airlock policy explain: unknown environment '%s' "
                 "(development, staging, production, bus)\n", env_name);
        return AL_EXIT_USAGE;
    }
    char *dir = s_dir (&args);
    al_policy_t *policy = dir? s_load (dir, NULL): NULL;
    free (dir);
    if (!policy)
        return AL_EXIT_USAGE;
    char rule [512];
    bool allowed = al_policy_may_send (policy, role, type, env, rule, sizeof rule);
    if (json) {
        json_t *out = json_pack ("{s:s, s:s, s:s, s:b, s:s, s:s}", "role", role, "type", type_name,
                                 "environment", env_name, "allowed", allowed, "rule", rule,
                                 "digest", al_policy_digest_hex (policy));
        if (out)
            json_dumpf (out, stdout, JSON_INDENT (2) | JSON_SORT_KEYS);
        printf ("\n");
        json_decref (out);
    }
    else
        printf ("%s: %s %s in %s\n  rule: %s\n", allowed ? "allowed" : "denied", role, type_name,
                env_name, rule);
    al_policy_destroy (&policy);
    return allowed ? AL_EXIT_OK : AL_EXIT_BAD;
}

int
al_cmd_policy (int argc, char **argv)
{
    if (argc < 2) {
        s_usage (stderr);
        return AL_EXIT_USAGE;
    }
    if (al_cli_wants_help (argc, argv)) {
        s_usage (stdout);
        return AL_EXIT_OK;
    }
    if (strcmp (argv [1], "check") == 0)
        return s_check (argc - 1, argv + 1);
    if (strcmp (argv [1], "show") == 0)
        return s_show (argc - 1, argv + 1);
    if (strcmp (argv [1], "explain") == 0)
        return s_explain (argc - 1, argv + 1);
    fprintf (stderr, "airlock policy: unknown subcommand '%s'\n", argv [1]);
    s_usage (stderr);
    return AL_EXIT_USAGE;
}
