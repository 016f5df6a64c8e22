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

    This file parses the arguments and prints; what there is to print comes from
    agents/al_watch_view: the audit log's answer about a deployment, the lines and JSON
    objects of each event, and the signals judged by deploy/al_rules, the monitor's
    rules (per sample, each rule's value, limit and status: ok, over, breach, missing,
    skipped, not required; and the verdict). Baseline samples (SoakSignal.baseline) make
    the baseline and are not judged; the samples after them are the soak. A watch
    started after the baseline was captured has none: the error baseline counts as 0 %
    and the p99 rule is skipped, as for the monitor. Missing evidence is shown as
    missing (null in JSON, plus a "missing" list), never as a 0 that passes.
*/
#include "cli/cli.h"
#include "base/al_clock.h"
#include "agents/al_agent.h"
#include "agents/al_subscriber.h"
#include "agents/al_watch_view.h"
#include "base/al_config.h"
#include "policies/al_policy.h"

#include <czmq.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

//  A broker that has not answered the handshake after this long is worth a warning.
#define S_CONNECT_WARN_MS 5000

typedef struct {
    const char *config_path;
    char state_config [2048];       // airlock.yaml (al_cli_parse)
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
    char live_text [AL_WATCH_LINE_SIZE]; // that line, to draw again after a warning
    int table_lines;                // lines of the signals table on screen
    bool seen_event;                // the first event (any) has arrived
    al_watch_view_t *view;          // what to show (agents/al_watch_view)
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
    args->role = "auditor";
    args->environment = "production";
    al_cli_number_t timeout = { "watch", "--timeout", "seconds", 1, 7 * 86400, &args->timeout_s, NULL };
    const al_cli_option_t options [] = {
        { "--signals", .value = &args->service }, { "--env", .value = &args->environment },
        { "--as", .value = &args->role },
        { "--timeout", .take = al_cli_take_number, .arg = &timeout }, { .name = NULL }
    };
    const al_cli_parser_t parser = { "watch", s_usage, .config = true, .json = true, .options = options,
                                     .arguments = &args->deployment, .arguments_max = 1 };
    al_cli_common_t common;
    if (al_cli_parse (&parser, argc, argv, &common) != 0)
        return AL_EXIT_USAGE;
    args->json = common.json;
    snprintf (args->state_config, sizeof args->state_config, "%s", common.config_path);
    args->config_path = args->state_config;
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

//  ---- printing ------------------------------------------------------------------------
//  What to show comes from agents/al_watch_view; this part only puts it on the screen.

static void
s_json_line (json_t *object)
{
    char *text = object? json_dumps (object, JSON_COMPACT | JSON_REAL_PRECISION (10)): NULL;
    if (text) {
        printf ("%s\n", text);
        free (text);
    }
    fflush (stdout);
    json_decref (object);
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

//  End the live line on a terminal: what follows is history.
static void
s_clear_live (s_watch_t *self)
{
    if (self->tty && self->live_line) {
        printf ("\r\033[K");
        self->live_line = false;
    }
}

//  Gap and restart warnings, in the form of the output.
static void
s_report_loss (s_watch_t *self, const char *topic, uint64_t missed, bool restarted)
{
    if (restarted) {
        if (self->args->json)
            s_json_line (json_pack ("{s:b, s:s}", "restarted", 1, "topic", topic));
        else {
            char text [AL_WATCH_TOPIC_SIZE + 128];
            snprintf (text, sizeof text, "warning: the broker restarted (%s counts from 1 again)", topic);
            s_print_line (self, text);
        }
    }
    if (missed) {
        if (self->args->json)
            s_json_line (json_pack ("{s:I, s:s}", "gap", (json_int_t) missed, "topic", topic));
        else {
            char text [AL_WATCH_TOPIC_SIZE + 128];
            snprintf (text, sizeof text, "warning: missed %" PRIu64 " event%s on %s: evidence gap", missed,
                      missed == 1? "": "s", topic);
            s_print_line (self, text);
        }
    }
}

//  Show what the view made of an envelope (or the log's receipt). Takes item->json.
static void
s_show (s_watch_t *self, al_watch_item_t *item)
{
    if (self->args->json) {
        s_json_line (item->json);
        item->json = NULL;
        return;
    }
    json_decref (item->json);
    item->json = NULL;
    if (item->show == AL_WATCH_SHOW_PROGRESS && self->tty && item->live)
        s_print_live (self, item->line);
    else
    if (item->show != AL_WATCH_SHOW_SIGNAL || !self->tty) {
        s_clear_live (self);
        s_print_line (self, item->line);
    }
    else {
        //  The signals table, drawn again in place.
        if (self->table_lines)
            printf ("\033[%dA", self->table_lines);
        for (int index = 0; index < AL_WATCH_TABLE_LINES; index++)
            printf ("\r\033[K%s\n", item->table [index]);
        self->table_lines = AL_WATCH_TABLE_LINES;
        fflush (stdout);
    }
}

//  ---- a deployment already in the log ------------------------------------------------

//  Before (and once connected, again) watching live: what does the audit log know of
//  the deployment (agents/al_watch_view)? Returns true to watch live, or false with
//  *exit_code set: the log's receipt (its outcome) or a deployment that is over or
//  unknown (1). QUIET: say nothing about a watch that goes on live.
static bool
s_ask_log (s_watch_t *self, const al_config_t *config, bool quiet, int *exit_code)
{
    al_watch_item_t item;
    char message [1400];
    al_watch_log_t answer = al_watch_view_ask_log (config, self->args->deployment, &item, message, sizeof message);
    bool live = answer == AL_WATCH_LOG_LIVE || answer == AL_WATCH_LOG_UNREADABLE;
    if (*message && (!live || !quiet))
        fprintf (stderr, "airlock watch: %s\n", message);
    if (answer == AL_WATCH_LOG_FINISHED) {
        s_clear_live (self);
        s_show (self, &item);
        *exit_code = item.succeeded? AL_EXIT_OK: AL_EXIT_BAD;
    }
    else
    if (!live)
        *exit_code = AL_EXIT_BAD;
    return live;
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
        char brokers [AL_AGENT_ENDPOINTS_TEXT_SIZE];
        fprintf (stderr, "airlock watch: not connected to %s yet (is the broker running? "
                 "`airlock broker --config FILE` starts it)\n",
                 al_agent_endpoints_describe (al_subscriber_endpoint (self->subscriber), brokers, sizeof brokers));
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
    //  With several brokers: the one that answered, and the list it is one of.
    const char *list = al_subscriber_endpoint (self->subscriber);
    const char *answered = al_subscriber_answered (self->subscriber);
    char brokers [AL_AGENT_ENDPOINTS_TEXT_SIZE] = "", error [256];
    char (*endpoints) [AL_AGENT_PATH_SIZE] = malloc (AL_AGENT_MAX_ENDPOINTS * sizeof *endpoints);
    if (endpoints && al_agent_endpoints_split (list, endpoints, error, sizeof error) > 1)
        al_agent_endpoints_describe (list, brokers, sizeof brokers);
    free (endpoints);
    fprintf (stderr, "airlock watch: connected to %s%s%s%s as %s, watching %s%s\n",
             *answered? answered: list, *brokers? " (endpoints.events: ": "", brokers, *brokers? ")": "",
             self->args->role,
             self->args->deployment? "deployment ": "", self->args->deployment? self->args->deployment: topic);
    return true;
}

static int
s_run (s_watch_t *self, const al_config_t *config)
{
    const s_args_t *args = self->args;
    size_t topics = al_watch_view_topic_count (self->view);
    for (size_t index = 0; index < topics; index++)
        if (al_subscriber_subscribe (self->subscriber, al_watch_view_topic (self->view, index)) != 0) {
            fprintf (stderr, "airlock watch: cannot subscribe to %s\n", al_watch_view_topic (self->view, index));
            return AL_EXIT_USAGE;
        }
    bool warned = false, announced = false;
    int64_t started = al_clock_mono_ms ();
    int64_t deadline = args->timeout_s? started + (int64_t) args->timeout_s * 1000: -1;
    while (true) {
        int code = s_check_stop (self, deadline, started, &warned);
        if (code == -2)
            return al_watch_view_breached (self->view)? AL_EXIT_BAD: AL_EXIT_OK;
        if (code >= 0)
            return code;
        char topic [AL_WATCH_TOPIC_SIZE];
        uint64_t sequence = 0, missed = 0;
        bool restarted = false;
        al_envelope_t *envelope = al_subscriber_recv (self->subscriber, 200, topic, sizeof topic,
                                                      &sequence, &missed, &restarted);
        if (!announced) {
            announced = s_announce (self, al_watch_view_topic (self->view, 0));
            //  A receipt recorded between the first look at the log and the subscription
            //  would never reach us: look again now that events do.
            int done = -1;
            if (announced && args->deployment && !s_ask_log (self, config, true, &done)) {
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
        if (al_watch_view_is_ours (self->view, topic))
            s_report_loss (self, topic, missed, restarted);
        al_watch_item_t item;
        al_watch_view_feed (self->view, topic, envelope, sequence, al_clock_mono_ms (), &item);
        al_codec_free (&envelope);
        if (item.show == AL_WATCH_SHOW_NOTHING)
            continue;
        s_show (self, &item);
        if (item.show == AL_WATCH_SHOW_RECEIPT)
            return item.succeeded? AL_EXIT_OK: AL_EXIT_BAD;
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
    if (args.deployment && !s_ask_log (&watch, config, false, &exit_code))
        goto cleanup;
    exit_code = AL_EXIT_USAGE;
    al_agent_catch_signals ();
    watch.subscriber = al_subscriber_new (config, args.role, error, sizeof error);
    if (!watch.subscriber) {
        fprintf (stderr, "airlock watch: %s\n", error);
        goto cleanup;
    }
    watch.view = policy? al_watch_view_new_signals (args.service, args.environment, al_policy_thresholds (policy))
                       : al_watch_view_new_deployment (args.deployment);
    if (!watch.view) {
        fprintf (stderr, "airlock watch: out of memory\n");
        goto cleanup;
    }
    exit_code = s_run (&watch, config);
cleanup:
    al_subscriber_destroy (&watch.subscriber);
    al_watch_view_destroy (&watch.view);
    al_policy_errors_destroy (&errors);
    al_policy_destroy (&policy);
    al_config_destroy (&config);
    return exit_code;
}
