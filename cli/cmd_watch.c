/*  cmd_watch.c: `airlock watch DEPLOYMENT` follows a deployment's progress live, and
    `airlock watch --signals SERVICE` shows a service's soak signals against the policy's
    quality thresholds.

    Both subscribe to the broker's event bus (agents/al_subscriber.h) with a read-only
    certificate (the auditor's unless --as ROLE). A deployment watch takes the topics
    event.DeployProgress and event.DeployReceipt, shows only envelopes of its deployment
    and ends with the receipt: exit 0 for SUCCEEDED, 1 for any other outcome (FAILED,
    ROLLED_BACK), 2 for usage or I/O errors, an interruption or --timeout before a
    receipt. A signals watch takes soak.<env>.<service> and runs until SIGINT or
    --timeout: exit 0 if every judged sample was within the rules, 1 if the rules
    breached (missing evidence counts as a breach, at once), 2 as above.

    Events lost on the way (a sequence gap per topic) are never silent: a warning line,
    or {"gap":N} in --json. On a terminal the deployment's progress is one line redrawn
    in place and the signals a small table redrawn in place; otherwise plain lines, or
    one JSON object per line with --json.

    The signals are judged by deploy/al_rules, the monitor's rules, never by this file:
    per sample, each rule's value, limit and status (ok, over, breach, missing, skipped,
    not required) and the verdict. Baseline samples (SoakSignal.baseline) make the
    baseline and are not judged; the samples after them are the soak. A watch started
    after the baseline was captured has none: the error baseline counts as 0 % and the
    p99 rule is skipped, as for the monitor. Missing evidence is shown as missing (null
    in JSON, plus a "missing" list), never as a 0 that passes.
*/
#include "cli/cli.h"
#include "base/al_clock.h"
#include "base/al_id.h"
#include "agents/al_agent.h"
#include "agents/al_subscriber.h"
#include "base/al_config.h"
#include "agents/al_releases.h"
#include "deploy/al_rules.h"
#include "policies/al_policy.h"
#include "store/al_replay.h"
#include "store/al_store.h"

#include <czmq.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

//  A broker that has not answered the handshake after this long is worth a warning.
#define S_CONNECT_WARN_MS 5000
#define S_TOPIC_SIZE 256

typedef struct {
    const char *config_path;
    char state_config [1100];       // --state DIR/airlock.yaml
    const char *role;
    const char *deployment;         // DEPLOYMENT form
    const char *service;            // --signals form
    const char *environment;
    bool json;
    int timeout_s;                  // 0: none
} s_args_t;

//  What a watch has shown so far; shared by both forms.
typedef struct {
    const s_args_t *args;
    al_subscriber_t *subscriber;
    bool tty;                       // redraw in place (stdout is a terminal, not --json)
    bool live_line;                 // a progress line without its newline is on screen
    char live_text [1024];          // that line, to draw again after a warning
    int table_lines;                // lines of the signals table on screen
    bool seen_event;                // the first event (any) has arrived
    al_rules_stream_t *rules;       // --signals: judges the samples (deploy/al_rules)
} s_watch_t;

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: airlock watch DEPLOYMENT [--json] [--timeout SECONDS] [--as ROLE]\n"
        "                    [--state DIR | --config FILE]\n"
        "       airlock watch --signals SERVICE [--env ENV] [--json] [--timeout SECONDS]\n"
        "                    [--as ROLE] [--state DIR | --config FILE]\n\n"
        "Follow a deployment live: its progress (step, instance, percent) and its receipt,\n"
        "from the broker's event bus. Exits when the receipt arrives: 0 succeeded, 1 failed\n"
        "or rolled back. Events the bus lost are reported as 'missed N events: evidence gap'.\n"
        "The audit log is asked first: a deployment that already finished prints its\n"
        "receipt from the log at once (exit 0 succeeded, 1 otherwise); one the log and the\n"
        "orchestrator's releases do not know is 'no such deployment: ID' (exit 1).\n"
        "Deployment ids: RELEASE-stg (staging) and RELEASE-prod (production).\n\n"
        "With --signals, show the soak signals of SERVICE judged by the monitor's rules\n"
        "(the policy's quality_rules.yaml): per sample, each rule's value, limit and status\n"
        "(ok, over, breach, missing, skipped, not required), until SIGINT or --timeout.\n"
        "Missing evidence shows as missing and counts as a breach.\n\n"
        "options:\n"
        "  --json             one JSON object per line (gaps as {\"gap\":N})\n"
        "  --timeout SECONDS  stop after this long (a deployment watch then exits 2)\n"
        "  --env ENV          environment of the signals (default production)\n"
        "  --as ROLE          connect with this role's certificate (default auditor)\n"
        "  --state DIR        the state directory (reads DIR/airlock.yaml)\n"
        "  --config FILE      airlock.yaml (default $AIRLOCK_CONFIG, else\n"
        "                     ./airlock-state/airlock.yaml)\n\n"
        "exit codes: DEPLOYMENT: 0 succeeded, 1 failed, rolled back, refused or no such\n"
        "deployment, 2 usage error, I/O error, interrupted or timed out; --signals: 0 every\n"
        "judged sample within the rules, 1 a rule was breached (or evidence was missing),\n"
        "2 usage or I/O error\n");
}

static int
s_usage_error (const char *format, const char *value)
{
    fprintf (stderr, "airlock watch: ");
    fprintf (stderr, format, value);
    fprintf (stderr, "\n\n");
    s_usage (stderr);
    return AL_EXIT_USAGE;
}

static int
s_parse (int argc, char **argv, s_args_t *args)
{
    memset (args, 0, sizeof *args);
    const char *config_option = NULL, *state_option = NULL;
    args->role = "auditor";
    args->environment = "production";
    for (int index = 1; index < argc; index++) {
        const char *arg = argv [index];
        bool has_value = index + 1 < argc;
        if (strcmp (arg, "--json") == 0)
            args->json = true;
        else
        if (strcmp (arg, "--signals") == 0 && has_value)
            args->service = argv [++index];
        else
        if (strcmp (arg, "--env") == 0 && has_value)
            args->environment = argv [++index];
        else
        if (strcmp (arg, "--as") == 0 && has_value)
            args->role = argv [++index];
        else
        if (strcmp (arg, "--config") == 0 || strcmp (arg, "--state") == 0) {
            if (al_cli_config_option ("watch", argc, argv, &index, &config_option, &state_option) < 0)
                return AL_EXIT_USAGE;
        }
        else
        if (strcmp (arg, "--timeout") == 0 && has_value) {
            char *end = NULL;
            long value = strtol (argv [++index], &end, 10);
            if (!end || *end || value < 1 || value > 7 * 86400)
                return s_usage_error ("--timeout: '%s' is not a number of seconds (1..604800)",
                                      argv [index]);
            args->timeout_s = (int) value;
        }
        else
        if (arg [0] == '-')
            return s_usage_error ("unexpected option '%s' (or its value is missing)", arg);
        else
        if (!args->deployment)
            args->deployment = arg;
        else
            return s_usage_error ("unexpected argument '%s'", arg);
    }
    args->config_path = al_cli_config_path (config_option, state_option, args->state_config,
                                            sizeof args->state_config);
    if (!args->config_path)
        return s_usage_error ("%s", "--state: path too long");
    if (args->service && args->deployment)
        return s_usage_error ("give a DEPLOYMENT or --signals SERVICE, not both (%s)", args->deployment);
    if (!args->service && !args->deployment)
        return s_usage_error ("%s", "a DEPLOYMENT or --signals SERVICE is required");
    if (args->deployment && (!*args->deployment || strlen (args->deployment) > AL_CODEC_MAX_ID_LEN))
        return s_usage_error ("DEPLOYMENT: '%s' is not a deployment id (1..64 characters)", args->deployment);
    if (args->service) {
        size_t length = strlen (args->service);
        bool valid = length >= 1 && length <= AL_CODEC_MAX_SERVICE_LEN;
        for (const char *c = args->service; valid && *c; c++)
            valid = (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-';
        if (!valid)
            return s_usage_error ("--signals: '%s' is not a service name ([a-z0-9-], 1..63)", args->service);
    }
    if (al_environment_from_name (args->environment) == AIRLOCK__ENVIRONMENT__ENV_UNSPECIFIED)
        return s_usage_error ("--env: '%s' is not development, staging or production", args->environment);
    return AL_EXIT_OK;
}

//  ---- output helpers ----------------------------------------------------------------

//  "2024-05-01T12:00:00.123Z" for a wall-clock time in ms; "" for 0.
static void
s_iso_time (uint64_t ms, char *text, size_t size)
{
    if (ms == 0) {
        snprintf (text, size, "%s", "");
        return;
    }
    time_t seconds = (time_t) (ms / 1000);
    struct tm tm;
    gmtime_r (&seconds, &tm);
    char date [32];
    strftime (date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf (text, size, "%s.%03uZ", date, (unsigned) (ms % 1000));
}

//  "12:00:01" local time of a wall-clock ms, for the human lines; "--:--:--" for 0.
static void
s_clock_time (uint64_t ms, char *text, size_t size)
{
    if (ms == 0) {
        snprintf (text, size, "--:--:--");
        return;
    }
    time_t seconds = (time_t) (ms / 1000);
    struct tm tm;
    localtime_r (&seconds, &tm);
    strftime (text, size, "%H:%M:%S", &tm);
}

static void
s_json_line (json_t *object)
{
    char *text = json_dumps (object, JSON_COMPACT | JSON_REAL_PRECISION (10));
    if (text) {
        printf ("%s\n", text);
        free (text);
    }
    fflush (stdout);
    json_decref (object);
}

//  A real, or null for NaN/infinity (JSON has no NaN; jansson refuses it).
static json_t *
s_json_number (double value)
{
    return isfinite (value)? json_real (value): json_null ();
}

//  Print a finished line: replaces a live line, which is then drawn again below it.
static void
s_print_line (s_watch_t *self, const char *text)
{
    //  Below a signals table: the table is drawn afresh under this line next time.
    self->table_lines = 0;
    if (self->tty && self->live_line)
        printf ("\r\033[K%s\n%s", text, self->live_text);
    else
        printf ("%s\n", text);
    fflush (stdout);
}

static void
s_print_live (s_watch_t *self, const char *text)
{
    snprintf (self->live_text, sizeof self->live_text, "%s", text);
    printf ("\r\033[K%s", self->live_text);
    self->live_line = true;
    fflush (stdout);
}

//  Gap and restart warnings, in the form of the output.
static void
s_report_loss (s_watch_t *self, const char *topic, uint64_t missed, bool restarted)
{
    if (restarted) {
        if (self->args->json) {
            json_t *object = json_pack ("{s:b, s:s}", "restarted", 1, "topic", topic);
            s_json_line (object);
        }
        else {
            char text [S_TOPIC_SIZE + 128];
            snprintf (text, sizeof text, "warning: the broker restarted (%s counts from 1 again)", topic);
            s_print_line (self, text);
        }
    }
    if (missed) {
        if (self->args->json) {
            json_t *object = json_pack ("{s:I, s:s}", "gap", (json_int_t) missed, "topic", topic);
            s_json_line (object);
        }
        else {
            char text [S_TOPIC_SIZE + 128];
            snprintf (text, sizeof text, "warning: missed %" PRIu64 " event%s on %s: evidence gap", missed,
                      missed == 1? "": "s", topic);
            s_print_line (self, text);
        }
    }
}

//  ---- deployment watch --------------------------------------------------------------

static const char *
s_outcome_word (Airlock__Outcome outcome, bool instance)
{
    switch (outcome) {
        case AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED:   return instance? "ready": "succeeded";
        case AIRLOCK__OUTCOME__OUTCOME_ROLLED_BACK: return "rolled back";
        default: {
            const char *name = al_outcome_name (outcome);
            return name? name: "unknown";
        }
    }
}

//  "[rollout] instance 2/3 ready  67%  detail". A step's progress after its start says
//  "running" ("[soak] running  56%  ..."), not "started" again; an instance's progress
//  within a running step says what happened in its detail ("ready: 200"), no word.
static void
s_progress_text (const al_envelope_t *envelope, char *text, size_t size)
{
    const Airlock__DeployProgress *progress = envelope->deploy_progress;
    const char *step = al_step_name (progress->step);
    char clock [16], where [64] = "", percent [16] = "";
    s_clock_time (envelope->timestamp_ms, clock, sizeof clock);
    if (progress->instance)
        snprintf (where, sizeof where, "instance %u/%u", progress->instance, progress->instances);
    if (progress->percent)
        snprintf (percent, sizeof percent, "  %u%%", progress->percent);
    const char *word = s_outcome_word (progress->outcome, progress->instance > 0);
    if (progress->outcome == AIRLOCK__OUTCOME__OUTCOME_STARTED) {
        if (progress->instance && *progress->detail)
            word = "";
        else
        if (!progress->instance && progress->percent)
            word = "running";
    }
    snprintf (text, size, "%s [%s] %s%s%s%s%s%s", clock, step? step: "?", where, *where && *word? " ": "",
              word, percent, *progress->detail? "  ": "", progress->detail);
}

static void
s_receipt_text (const al_envelope_t *envelope, char *text, size_t size)
{
    const Airlock__DeployReceipt *receipt = envelope->deploy_receipt;
    char clock [16], rule [300] = "", previous [200] = "";
    s_clock_time (envelope->timestamp_ms, clock, sizeof clock);
    if (*receipt->rollback_rule)
        snprintf (rule, sizeof rule, ", rule %s", receipt->rollback_rule);
    if (*receipt->previous_version)
        snprintf (previous, sizeof previous, ", previous version %s", receipt->previous_version);
    snprintf (text, size, "%s [receipt] %s %s %s%s%s (receipt sha256 %s)", clock,
              receipt->service, receipt->version, s_outcome_word (receipt->outcome, false), rule, previous,
              receipt->receipt_sha256);
}

static json_t *
s_envelope_json (const al_envelope_t *envelope, const char *type, uint64_t sequence)
{
    char stamp [40];
    s_iso_time (envelope->timestamp_ms, stamp, sizeof stamp);
    json_t *object = json_pack ("{s:s, s:s}", "deployment", envelope->deployment_id, "type", type);
    json_object_set_new (object, "sequence", json_integer ((json_int_t) sequence));
    json_object_set_new (object, "time", *stamp? json_string (stamp): json_null ());
    if (envelope->sender && *envelope->sender->identity)
        json_object_set_new (object, "sender", json_string (envelope->sender->identity));
    return object;
}

static void
s_show_progress (s_watch_t *self, const al_envelope_t *envelope, uint64_t sequence)
{
    const Airlock__DeployProgress *progress = envelope->deploy_progress;
    if (self->args->json) {
        json_t *object = s_envelope_json (envelope, "DeployProgress", sequence);
        const char *step = al_step_name (progress->step);
        const char *outcome = al_outcome_name (progress->outcome);
        json_object_set_new (object, "step", json_string (step? step: "unknown"));
        json_object_set_new (object, "outcome", json_string (outcome? outcome: "unknown"));
        json_object_set_new (object, "instance", json_integer (progress->instance));
        json_object_set_new (object, "instances", json_integer (progress->instances));
        json_object_set_new (object, "percent", json_integer (progress->percent));
        json_object_set_new (object, "detail", json_string (progress->detail));
        s_json_line (object);
        return;
    }
    char text [sizeof self->live_text];
    s_progress_text (envelope, text, sizeof text);
    //  A step-level result is history: a plain line. Everything in between (a step
    //  starting, instance by instance) is the one live line.
    bool finished = progress->instance == 0 && progress->outcome != AIRLOCK__OUTCOME__OUTCOME_STARTED;
    if (self->tty && !finished)
        s_print_live (self, text);
    else {
        if (self->tty && self->live_line) {
            printf ("\r\033[K");
            self->live_line = false;
        }
        s_print_line (self, text);
    }
}

//  Show the receipt; returns the exit code it means.
static int
s_show_receipt (s_watch_t *self, const al_envelope_t *envelope, uint64_t sequence)
{
    const Airlock__DeployReceipt *receipt = envelope->deploy_receipt;
    if (self->args->json) {
        json_t *object = s_envelope_json (envelope, "DeployReceipt", sequence);
        const char *outcome = al_outcome_name (receipt->outcome);
        json_object_set_new (object, "step", json_string ("receipt"));
        json_object_set_new (object, "outcome", json_string (outcome? outcome: "unknown"));
        json_object_set_new (object, "service", json_string (receipt->service));
        json_object_set_new (object, "version", json_string (receipt->version));
        json_object_set_new (object, "artifact_sha256", json_string (receipt->artifact_sha256));
        json_object_set_new (object, "receipt_sha256", json_string (receipt->receipt_sha256));
        if (*receipt->rollback_rule)
            json_object_set_new (object, "rollback_rule", json_string (receipt->rollback_rule));
        if (*receipt->previous_version)
            json_object_set_new (object, "previous_version", json_string (receipt->previous_version));
        json_t *steps = json_array ();
        for (size_t index = 0; index < receipt->n_steps; index++) {
            const Airlock__StepRecord *record = receipt->steps [index];
            const char *step = al_step_name (record->step);
            const char *result = al_outcome_name (record->outcome);
            json_array_append_new (steps, json_pack ("{s:s, s:s, s:I, s:I, s:s}",
                "step", step? step: "unknown", "outcome", result? result: "unknown",
                "started_ms", (json_int_t) record->started_ms, "ended_ms", (json_int_t) record->ended_ms,
                "detail", record->detail));
        }
        json_object_set_new (object, "steps", steps);
        s_json_line (object);
    }
    else {
        char text [1024];
        s_receipt_text (envelope, text, sizeof text);
        if (self->tty && self->live_line) {
            printf ("\r\033[K");
            self->live_line = false;
        }
        s_print_line (self, text);
    }
    return receipt->outcome == AIRLOCK__OUTCOME__OUTCOME_SUCCEEDED? AL_EXIT_OK: AL_EXIT_BAD;
}

//  ---- a deployment already in the log ------------------------------------------------

typedef enum { S_LOG_LIVE, S_LOG_DONE, S_LOG_UNKNOWN } s_log_answer_t;

//  The receipt of a finished deployment, as the audit log recorded it.
static int
s_show_logged_receipt (s_watch_t *self, const al_replay_deployment_t *deployment)
{
    const char *outcome = *deployment->receipt_outcome? deployment->receipt_outcome
                        : al_replay_state_name (deployment->state);
    char stamp [40];
    s_iso_time (deployment->finished_ms, stamp, sizeof stamp);
    if (self->args->json) {
        json_t *object = json_pack ("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "deployment", deployment->id,
                                    "type", deployment->receipt_sequence? "DeployReceipt": "DeployProgress",
                                    "source", "audit log", "step", "receipt", "outcome", outcome,
                                    "service", deployment->service, "version", deployment->version,
                                    "artifact_sha256", deployment->artifact_sha256,
                                    "receipt_sha256", deployment->receipt_sha256? deployment->receipt_sha256: "");
        json_object_set_new (object, "sequence", json_integer ((json_int_t) deployment->receipt_sequence));
        json_object_set_new (object, "time", *stamp? json_string (stamp): json_null ());
        if (deployment->rollback_rule && *deployment->rollback_rule)
            json_object_set_new (object, "rollback_rule", json_string (deployment->rollback_rule));
        if (deployment->previous_version && *deployment->previous_version)
            json_object_set_new (object, "previous_version", json_string (deployment->previous_version));
        if (*deployment->detail)
            json_object_set_new (object, "detail", json_string (deployment->detail));
        s_json_line (object);
    }
    else {
        char text [1400];
        snprintf (text, sizeof text, "%s [receipt] %s %s %s%s%s%s%s (receipt sha256 %s; finished %s, audit row #%llu)",
                  deployment->id, deployment->service, deployment->version, outcome,
                  *deployment->detail? ": ": "", deployment->detail,
                  deployment->previous_version && *deployment->previous_version? ", previous version ": "",
                  deployment->previous_version && *deployment->previous_version? deployment->previous_version: "",
                  deployment->receipt_sha256 && *deployment->receipt_sha256? deployment->receipt_sha256: "none",
                  *stamp? stamp: "?", (unsigned long long) deployment->receipt_sequence);
        s_print_line (self, text);
    }
    return deployment->state == AL_REPLAY_SUCCEEDED? AL_EXIT_OK: AL_EXIT_BAD;
}

//  Before (and once connected, again) watching live: what does the audit log know of
//  the deployment? A finished one is answered from the log at once (*exit_code: its
//  outcome), and so is one the log has never heard of, unless it is a deployment of a
//  release the orchestrator holds (STAGING, "<release>-stg", or the production request
//  "<release>-prod", may not have started yet): only a deployment that exists and has
//  not finished is watched live.
static s_log_answer_t
s_ask_log (s_watch_t *self, const al_config_t *config, bool quiet, int *exit_code)
{
    const char *id = self->args->deployment;
    char error [1024] = "";
    al_store_options_t options = { .read_only = true };
    al_store_t *store = al_store_open (al_config_store_backend (config), al_config_store_location (config), &options,
                                       error, sizeof error);
    al_replay_t *replay = store? al_replay_new (store, 0, error, sizeof error): NULL;
    if (!replay) {
        //  No log to ask (a broker that never ran, a log we cannot read): say so and
        //  watch live, as before; the broker decides what we may see.
        if (!quiet)
            fprintf (stderr, "airlock watch: cannot read the audit log (%s): watching live\n", error);
        al_store_destroy (&store);
        return S_LOG_LIVE;
    }
    s_log_answer_t answer = S_LOG_LIVE;
    const al_replay_deployment_t *deployment = al_replay_find (replay, id);
    if (deployment && (deployment->state == AL_REPLAY_SUCCEEDED || deployment->state == AL_REPLAY_ROLLED_BACK
                   ||  deployment->state == AL_REPLAY_FAILED)) {
        if (self->tty && self->live_line) {
            printf ("\r\033[K");
            self->live_line = false;
        }
        *exit_code = s_show_logged_receipt (self, deployment);
        answer = S_LOG_DONE;
    }
    else
    if (deployment && deployment->state == AL_REPLAY_REFUSED) {
        fprintf (stderr, "airlock watch: deployment %s is over: it never ran: %s\n", id, deployment->detail);
        *exit_code = AL_EXIT_BAD;
        answer = S_LOG_DONE;
    }
    else
    if (!deployment) {
        char release [AL_ID_SIZE];
        al_id_release_of (id, release, sizeof release);
        json_t *file = *release? al_releases_load (config, release, error, sizeof error): NULL;
        json_t *itself = file? NULL: al_releases_load (config, id, error, sizeof error);
        if (file) {
            if (!quiet)
                fprintf (stderr, "airlock watch: %s has not started yet (release %s is %s): waiting for it\n", id,
                         release, json_string_value (json_object_get (file, "state"))
                                  ? json_string_value (json_object_get (file, "state")): "?");
        }
        else {
            if (itself) {
                //  itself loaded: id is a valid release id.
                char staging [AL_ID_SIZE], production [AL_ID_SIZE];
                al_id_deployment (id, AL_ID_PART_STAGING, staging, sizeof staging);
                al_id_deployment (id, AL_ID_PART_PRODUCTION, production, sizeof production);
                fprintf (stderr, "airlock watch: no such deployment: %s (it is a release: watch %s for "
                         "staging or %s for production)\n", id, staging, production);
            }
            else
                fprintf (stderr, "airlock watch: no such deployment: %s (not in the audit log %s, and no "
                         "release of the orchestrator)\n", id, al_config_database (config));
            *exit_code = AL_EXIT_BAD;
            answer = S_LOG_UNKNOWN;
        }
        json_decref (file);
        json_decref (itself);
    }
    al_replay_destroy (&replay);
    al_store_destroy (&store);
    return answer;
}

//  ---- signals watch -----------------------------------------------------------------
//  Every verdict shown is deploy/al_rules' (al_rules_stream_t: baseline runs, then the
//  soak, as the monitor judges them): this part only prints the rows it returns.

//  "1.25%", "150.0 ms", "3"; "-" for no number.
static void
s_row_number (const al_rules_row_t *row, double value, char *text, size_t size)
{
    if (!isfinite (value))
        snprintf (text, size, "-");
    else
    if (strcmp (row->unit, "%") == 0)
        snprintf (text, size, "%.2f%%", value);
    else
    if (strcmp (row->unit, "ms") == 0)
        snprintf (text, size, "%.1f ms", value);
    else
        snprintf (text, size, "%.0f", value);
}

//  A row's value: "missing" when its evidence is, never a 0 that passes.
static void
s_row_value (const al_rules_row_t *row, char *text, size_t size)
{
    if (row->status == AL_RULES_ROW_MISSING)
        snprintf (text, size, "missing");
    else
        s_row_number (row, row->value, text, size);
}

//  Does the row count against the sample (a breach, or missing evidence: fail closed)?
static bool
s_row_counts (const al_rules_row_t *row)
{
    return row->status == AL_RULES_ROW_BREACH || row->status == AL_RULES_ROW_MISSING;
}

//  The names of the AL_RULES_SIGNAL_* bits set in bits.
static json_t *
s_signal_list (uint32_t bits)
{
    json_t *list = json_array ();
    for (uint32_t bit = 1; bit & AL_RULES_SIGNAL_ALL; bit <<= 1)
        if (bits & bit)
            json_array_append_new (list, json_string (al_rules_signal_name (bit)));
    return list;
}

//  A number of the sample, or null when its evidence bit says it is absent.
static json_t *
s_json_evidence (const Airlock__SoakSignal *signal, uint32_t bit, double value)
{
    return signal->no_evidence & bit? json_null (): s_json_number (value);
}

static void
s_show_signal (s_watch_t *self, const al_envelope_t *envelope, uint64_t sequence,
               const al_rules_row_t rows [AL_RULES_ROWS], bool judged, const al_rules_result_t *verdict)
{
    const Airlock__SoakSignal *signal = envelope->soak_signal;
    //  The soak's verdict, as the monitor decides it: sticky, so a sample after a breach
    //  still says so (the rollback is under way). "breaches" lists this sample's own.
    bool breach = judged && verdict->verdict == AL_RULES_BREACH;
    if (self->args->json) {
        char stamp [40];
        s_iso_time (envelope->timestamp_ms, stamp, sizeof stamp);
        json_t *object = json_pack ("{s:s, s:s}", "service", signal->service,
                                    "environment", self->args->environment);
        json_object_set_new (object, "sequence", json_integer ((json_int_t) sequence));
        json_object_set_new (object, "signal_sequence", json_integer ((json_int_t) signal->sequence));
        json_object_set_new (object, "time", *stamp? json_string (stamp): json_null ());
        json_object_set_new (object, "baseline", json_boolean (signal->baseline));
        json_object_set_new (object, "judged", json_boolean (judged));
        json_object_set_new (object, "requests_per_second",
                             s_json_evidence (signal, AL_RULES_SIGNAL_TRAFFIC, signal->requests_per_second));
        json_object_set_new (object, "latency_p50_ms",
                             s_json_evidence (signal, AL_RULES_SIGNAL_LATENCY, signal->latency_p50_ms));
        json_object_set_new (object, "instances_up", json_integer (signal->instances_up));
        json_object_set_new (object, "instances_total", json_integer (signal->instances_total));
        json_object_set_new (object, "instances_missing", json_integer (signal->instances_missing));
        json_object_set_new (object, "missing", s_signal_list (al_rules_missing_signals (signal)));
        json_object_set_new (object, "not_required", s_signal_list (signal->not_required & AL_RULES_SIGNAL_ALL));
        json_t *checks = json_object ();
        json_t *breaches = json_array ();
        for (int index = 0; index < AL_RULES_ROWS; index++) {
            const al_rules_row_t *row = &rows [index];
            json_t *check = json_pack ("{s:o, s:o, s:s}", "value", s_json_number (row->value),
                                       "limit", s_json_number (row->limit),
                                       "status", al_rules_row_status_name (row->status));
            if (*row->detail)
                json_object_set_new (check, "detail", json_string (row->detail));
            if (row->in_a_row)
                json_object_set_new (check, "in_a_row", json_integer (row->in_a_row));
            json_object_set_new (checks, row->rule, check);
            if (judged && s_row_counts (row))
                json_array_append_new (breaches, json_string (row->rule));
        }
        json_object_set_new (object, "checks", checks);
        json_object_set_new (object, "breaches", breaches);
        json_object_set_new (object, "breach", json_boolean (breach));
        if (judged)
            json_object_set_new (object, "verdict", json_pack ("{s:s, s:s, s:s}",
                "verdict", al_rules_verdict_name (verdict->verdict), "rule", verdict->rule,
                "detail", verdict->detail));
        s_json_line (object);
        return;
    }
    char clock [16], rps [32];
    s_clock_time (envelope->timestamp_ms, clock, sizeof clock);
    if (signal->no_evidence & AL_RULES_SIGNAL_TRAFFIC)
        snprintf (rps, sizeof rps, "%s", al_rules_missing_signals (signal) & AL_RULES_SIGNAL_TRAFFIC? "missing": "-");
    else
        snprintf (rps, sizeof rps, "%.1f", signal->requests_per_second);
    char verdict_text [400];
    if (judged)
        snprintf (verdict_text, sizeof verdict_text, "%s%s%s%s%s", al_rules_verdict_name (verdict->verdict),
                  *verdict->rule? " ": "", verdict->rule, *verdict->detail? ": ": "", verdict->detail);
    else
        snprintf (verdict_text, sizeof verdict_text, "not judged (a baseline sample)");
    if (!self->tty) {
        char line [2048];
        int used = snprintf (line, sizeof line, "%s %s #%" PRIu64 "%s  rps %s  up %u/%u", clock,
                             signal->service, signal->sequence, signal->baseline? " baseline": "", rps,
                             signal->instances_up, signal->instances_total);
        for (int index = 0; index < AL_RULES_ROWS && used > 0 && (size_t) used < sizeof line; index++) {
            const al_rules_row_t *row = &rows [index];
            char value [32], limit [32];
            s_row_value (row, value, sizeof value);
            s_row_number (row, row->limit, limit, sizeof limit);
            bool say_why = *row->detail && row->status != AL_RULES_ROW_OK;
            used += snprintf (line + used, sizeof line - (size_t) used, "  %s %s (max %s) %s%s%s%s", row->rule,
                              value, limit, al_rules_row_status_name (row->status), say_why? " (": "",
                              say_why? row->detail: "", say_why? ")": "");
        }
        if (used > 0 && (size_t) used < sizeof line)
            snprintf (line + used, sizeof line - (size_t) used, "  => %s", verdict_text);
        s_print_line (self, line);
        return;
    }
    //  The table, drawn again in place.
    if (self->table_lines)
        printf ("\033[%dA", self->table_lines);
    printf ("\r\033[K%s %s in %s: sample #%" PRIu64 "%s at %s, %s req/s, %u/%u instances up\n",
            breach? "BREACH": signal->baseline? "baseline": "ok", signal->service, self->args->environment,
            signal->sequence, signal->baseline? " (baseline)": "", clock, rps, signal->instances_up,
            signal->instances_total);
    printf ("\r\033[K  %-24s %12s %12s  %s\n", "rule", "value", "limit", "status");
    for (int index = 0; index < AL_RULES_ROWS; index++) {
        const al_rules_row_t *row = &rows [index];
        char value [32], limit [32];
        s_row_value (row, value, sizeof value);
        s_row_number (row, row->limit, limit, sizeof limit);
        printf ("\r\033[K  %-24s %12s %12s  %s%s%s\n", row->rule, value, limit, al_rules_row_status_name (row->status),
                *row->detail? ": ": "", row->detail);
    }
    printf ("\r\033[K  verdict: %s\n", verdict_text);
    self->table_lines = 3 + AL_RULES_ROWS;
    fflush (stdout);
}

//  ---- the loop ----------------------------------------------------------------------

//  Stop conditions that are not an event: interruption, timeout, a refused key.
//  Returns -1 to go on, or the exit code.
static int
s_check_stop (s_watch_t *self, int64_t deadline, int64_t started, bool *warned)
{
    al_subscriber_info_t info;
    al_subscriber_info (self->subscriber, &info);
    const char *what = self->args->deployment? "a receipt": "signals";
    if (info.refused) {
        char error [600];
        al_subscriber_last_error (self->subscriber, error, sizeof error);
        fprintf (stderr, "airlock watch: %s\n", error);
        return AL_EXIT_USAGE;
    }
    if (!info.connected && info.connections == 0 && !*warned
    &&  al_clock_mono_ms () - started >= S_CONNECT_WARN_MS) {
        fprintf (stderr, "airlock watch: not connected to %s yet (is the broker running? "
                 "`airlock broker --config FILE` starts it)\n", al_subscriber_endpoint (self->subscriber));
        *warned = true;
    }
    if (al_agent_interrupted ()) {
        if (self->tty && self->live_line)
            printf ("\n");
        if (self->args->deployment) {
            fprintf (stderr, "airlock watch: interrupted before %s for %s\n", what, self->args->deployment);
            return AL_EXIT_USAGE;
        }
        return -2;
    }
    if (deadline >= 0 && al_clock_mono_ms () >= deadline) {
        if (self->tty && self->live_line)
            printf ("\n");
        if (self->args->deployment) {
            fprintf (stderr, "airlock watch: no receipt for %s within %d s\n", self->args->deployment,
                     self->args->timeout_s);
            return AL_EXIT_USAGE;
        }
        return -2;
    }
    return -1;
}

//  Once connected, say so (stderr). Returns true once said.
static bool
s_announce (s_watch_t *self, const char *topic)
{
    al_subscriber_info_t info;
    al_subscriber_info (self->subscriber, &info);
    if (!info.connections)
        return false;
    fprintf (stderr, "airlock watch: connected to %s as %s, watching %s%s\n",
             al_subscriber_endpoint (self->subscriber), self->args->role,
             self->args->deployment? "deployment ": "", self->args->deployment? self->args->deployment: topic);
    return true;
}

static int
s_run (s_watch_t *self, const al_config_t *config)
{
    const s_args_t *args = self->args;
    char wanted [2][S_TOPIC_SIZE];
    size_t topics = 0;
    if (args->deployment) {
        snprintf (wanted [topics++], S_TOPIC_SIZE, "event.DeployProgress");
        snprintf (wanted [topics++], S_TOPIC_SIZE, "event.DeployReceipt");
    }
    else
        snprintf (wanted [topics++], S_TOPIC_SIZE, "soak.%s.%s", args->environment, args->service);
    for (size_t index = 0; index < topics; index++)
        if (al_subscriber_subscribe (self->subscriber, wanted [index]) != 0) {
            fprintf (stderr, "airlock watch: cannot subscribe to %s\n", wanted [index]);
            return AL_EXIT_USAGE;
        }
    bool warned = false, announced = false;
    int64_t started = al_clock_mono_ms ();
    int64_t deadline = args->timeout_s? started + (int64_t) args->timeout_s * 1000: -1;
    while (true) {
        int code = s_check_stop (self, deadline, started, &warned);
        if (code == -2)
            return self->rules && al_rules_stream_breached (self->rules)? AL_EXIT_BAD: AL_EXIT_OK;
        if (code >= 0)
            return code;
        char topic [S_TOPIC_SIZE];
        uint64_t sequence = 0, missed = 0;
        bool restarted = false;
        al_envelope_t *envelope = al_subscriber_recv (self->subscriber, 200, topic, sizeof topic,
                                                      &sequence, &missed, &restarted);
        if (!announced) {
            announced = s_announce (self, wanted [0]);
            //  A receipt recorded between the first look at the log and the subscription
            //  would never reach us: look again now that events do.
            int done = -1;
            if (announced && args->deployment && s_ask_log (self, config, true, &done) != S_LOG_LIVE) {
                al_codec_free (&envelope);
                return done;
            }
        }
        if (!envelope)
            continue;
        if (!self->seen_event) {
            //  Says the bus is live even while other deployments are all there is to see.
            fprintf (stderr, "airlock watch: receiving events (first: %s #%" PRIu64 ")\n", topic, sequence);
            self->seen_event = true;
        }
        //  A prefix subscription also matches longer topics (soak.production.api-v2 for
        //  soak.production.api): only exact topics count, also for gaps.
        bool ours = false;
        for (size_t index = 0; index < topics; index++)
            ours = ours || strcmp (topic, wanted [index]) == 0;
        if (ours)
            s_report_loss (self, topic, missed, restarted);
        int result = -1;
        if (ours && args->deployment && strcmp (envelope->deployment_id, args->deployment) == 0) {
            if (envelope->body_case == AIRLOCK__ENVELOPE__BODY_DEPLOY_PROGRESS)
                s_show_progress (self, envelope, sequence);
            else
            if (envelope->body_case == AIRLOCK__ENVELOPE__BODY_DEPLOY_RECEIPT)
                result = s_show_receipt (self, envelope, sequence);
        }
        else
        if (ours && args->service && envelope->body_case == AIRLOCK__ENVELOPE__BODY_SOAK_SIGNAL) {
            //  The watch's own clock: only its order matters (grace 0, see al_cmd_watch).
            al_rules_row_t rows [AL_RULES_ROWS];
            bool judged = false;
            al_rules_result_t verdict = al_rules_stream_feed (self->rules, envelope->soak_signal, al_clock_mono_ms (),
                                                              rows, AL_RULES_ROWS, &judged);
            s_show_signal (self, envelope, sequence, rows, judged, &verdict);
        }
        al_codec_free (&envelope);
        if (result >= 0)
            return result;
    }
}

int
al_cmd_watch (int argc, char **argv)
{
    if (al_cli_wants_help (argc, argv)) {
        s_usage (stdout);
        return AL_EXIT_OK;
    }
    s_args_t args;
    int exit_code = s_parse (argc, argv, &args);
    if (exit_code != AL_EXIT_OK)
        return exit_code;
    exit_code = AL_EXIT_USAGE;
    char error [1024] = "";
    al_policy_t *policy = NULL;
    al_policy_errors_t *errors = NULL;
    s_watch_t watch = { .args = &args, .tty = !args.json && isatty (STDOUT_FILENO) };
    al_config_t *config = al_config_load (args.config_path, error, sizeof error);
    if (!config) {
        fprintf (stderr, "airlock watch: %s\n", error);
        goto cleanup;
    }
    if (args.service) {
        policy = al_policy_load (al_config_policy_dir (config), &errors);
        if (!policy) {
            fprintf (stderr, "airlock watch: %s: %s\n", al_config_policy_dir (config),
                     errors && al_policy_errors_count (errors)? al_policy_errors_at (errors, 0)
                                                              : "cannot load the policy");
            goto cleanup;
        }
    }
    if (args.deployment && s_ask_log (&watch, config, false, &exit_code) != S_LOG_LIVE)
        goto cleanup;
    exit_code = AL_EXIT_USAGE;
    al_agent_catch_signals ();
    watch.subscriber = al_subscriber_new (config, args.role, error, sizeof error);
    if (!watch.subscriber) {
        fprintf (stderr, "airlock watch: %s\n", error);
        goto cleanup;
    }
    if (policy) {
        //  Grace 0: a watch judges the samples it sees, and missing evidence in one of
        //  them counts at once (the monitor, which also sees the silences, waits its
        //  grace period before it rolls back).
        watch.rules = al_rules_stream_new (al_policy_thresholds (policy), 0);
        if (!watch.rules) {
            fprintf (stderr, "airlock watch: out of memory\n");
            goto cleanup;
        }
    }
    exit_code = s_run (&watch, config);
cleanup:
    al_subscriber_destroy (&watch.subscriber);
    al_rules_stream_destroy (&watch.rules);
    al_policy_errors_destroy (&errors);
    al_policy_destroy (&policy);
    al_config_destroy (&config);
    return exit_code;
}
