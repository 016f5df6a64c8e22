/*  bus.c: a state directory from `airlock init` and the broker as a child process, for
    the subscriber and `airlock watch` tests (see bus.h).
*/
#include "bus.h"
#include "agents/al_init.h"

#include <czmq.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef BROKER_UNDER_TEST
#error "BROKER_UNDER_TEST must name the broker_under_test executable"
#endif

bus_t *
bus_new (const char *limits_yaml)
{
    bus_t *self = (bus_t *) calloc (1, sizeof *self);
    if (!self)
        return NULL;
    snprintf (self->dir, sizeof self->dir, "/tmp/al-watch-test-XXXXXX");
    if (!mkdtemp (self->dir)) {
        free (self);
        return NULL;
    }
    //  Our airlock.yaml first: init keeps an existing one and fills in the rest.
    snprintf (self->config_path, sizeof self->config_path, "%s/airlock.yaml", self->dir);
    FILE *file = fopen (self->config_path, "w");
    if (!file)
        goto failed;
    fprintf (file, "state_dir: %s\nheartbeat_ms: 200\nlimits:\n  rate_per_second: 1000000\n"
                   "  rate_burst: 1000000\n%s", self->dir, limits_yaml? limits_yaml: "");
    fclose (file);
    char source [512], error [1024] = "";
    const char *root = getenv ("AIRLOCK_SOURCE_DIR");
    if (!root) {
        fprintf (stderr, "bus: AIRLOCK_SOURCE_DIR is not set\n");
        goto failed;
    }
    snprintf (source, sizeof source, "%s/policies/default", root);
    al_init_options_t options = { source, false };
    if (al_init_state_dir (self->dir, &options, NULL, NULL, error, sizeof error) != 0) {
        fprintf (stderr, "bus: init: %s\n", error);
        goto failed;
    }
    self->config = al_config_load (self->config_path, error, sizeof error);
    if (!self->config) {
        fprintf (stderr, "bus: %s\n", error);
        goto failed;
    }
    return self;
failed:
    bus_destroy (&self);
    return NULL;
}

void
bus_destroy (bus_t **self_p)
{
    bus_t *self = *self_p;
    if (!self)
        return;
    if (self->broker_pid > 0) {
        kill (self->broker_pid, SIGKILL);
        while (waitpid (self->broker_pid, NULL, 0) == -1 && errno == EINTR)
            ;
    }
    al_config_destroy (&self->config);
    char command [400];
    snprintf (command, sizeof command, "rm -rf '%s'", self->dir);
    if (system (command) != 0)
        fprintf (stderr, "bus: could not remove %s\n", self->dir);
    free (self);
    *self_p = NULL;
}

int
bus_broker_start (bus_t *self)
{
    if (self->broker_pid > 0)
        return -1;
    int pipe_fds [2];
    if (pipe (pipe_fds) != 0)
        return -1;
    pid_t pid = fork ();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2 (pipe_fds [1], STDOUT_FILENO);
        close (pipe_fds [0]);
        close (pipe_fds [1]);
        execl (BROKER_UNDER_TEST, BROKER_UNDER_TEST, self->config_path, (char *) NULL);
        _exit (127);
    }
    close (pipe_fds [1]);
    self->broker_pid = pid;
    //  "ready" within 20 s (the ASan build starts slowly).
    char line [64] = "";
    size_t used = 0;
    zmq_pollitem_t item = { NULL, pipe_fds [0], ZMQ_POLLIN, 0 };
    int64_t deadline = zclock_mono () + 20000;
    while (used < sizeof line - 1 && zclock_mono () < deadline) {
        if (zmq_poll (&item, 1, 200) <= 0)
            continue;
        if (read (pipe_fds [0], line + used, 1) <= 0)
            break;
        if (line [used++] == '\n')
            break;
    }
    close (pipe_fds [0]);
    line [used] = '\0';
    if (strcmp (line, "ready\n") != 0) {
        fprintf (stderr, "bus: the broker did not start (said '%s')\n", line);
        kill (pid, SIGKILL);
        waitpid (pid, NULL, 0);
        self->broker_pid = 0;
        return -1;
    }
    return 0;
}

int
bus_broker_stop (bus_t *self)
{
    if (self->broker_pid <= 0)
        return -1;
    kill (self->broker_pid, SIGTERM);
    int status = 0;
    while (waitpid (self->broker_pid, &status, 0) == -1 && errno == EINTR)
        ;
    self->broker_pid = 0;
    return WIFEXITED (status)? WEXITSTATUS (status): -1;
}

al_agent_t *
bus_agent (bus_t *self, const char *role)
{
    char error [1024] = "";
    al_agent_t *agent = al_agent_new_for_role (self->config, role, false, error, sizeof error);
    if (!agent) {
        fprintf (stderr, "bus: %s: %s\n", role, error);
        return NULL;
    }
    if (al_agent_wait_registered (agent, 20000) != 0) {
        al_agent_last_error (agent, error, sizeof error);
        fprintf (stderr, "bus: %s did not register: %s\n", role, error);
        al_agent_destroy (&agent);
    }
    return agent;
}

static int
s_send (al_agent_t *agent, const al_envelope_t *envelope)
{
    al_agent_result_t result;
    al_agent_status_t status = al_agent_send (agent, envelope, 20000, &result);
    if (status != AL_AGENT_ACKED) {
        fprintf (stderr, "bus: send: %s %s\n", al_agent_status_name (status), result.reason);
        return -1;
    }
    return 0;
}

int
bus_send_progress (al_agent_t *agent, const char *deployment, Airlock__Step step,
                   Airlock__Outcome outcome, uint32_t instance, uint32_t instances,
                   uint32_t percent, const char *detail)
{
    Airlock__DeployProgress progress = AIRLOCK__DEPLOY_PROGRESS__INIT;
    progress.step = step;
    progress.outcome = outcome;
    progress.instance = instance;
    progress.instances = instances;
    progress.percent = percent;
    progress.detail = (char *) (detail? detail: "");
    al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
    envelope.deployment_id = (char *) deployment;
    envelope.environment = AIRLOCK__ENVIRONMENT__ENV_STAGING;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_DEPLOY_PROGRESS;
    envelope.deploy_progress = &progress;
    return s_send (agent, &envelope);
}

int
bus_send_journal (al_agent_t *agent, const char *deployment, Airlock__Step step, Airlock__Outcome outcome,
                  const char *detail)
{
    Airlock__DeployProgress progress = AIRLOCK__DEPLOY_PROGRESS__INIT;
    progress.step = step;
    progress.outcome = outcome;
    progress.journal = true;
    progress.detail = (char *) (detail? detail: "");
    al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
    envelope.deployment_id = (char *) deployment;
    envelope.environment = AIRLOCK__ENVIRONMENT__ENV_STAGING;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_DEPLOY_PROGRESS;
    envelope.deploy_progress = &progress;
    return s_send (agent, &envelope);
}

int
bus_send_receipt (al_agent_t *agent, const char *deployment, Airlock__Outcome outcome)
{
    Airlock__DeployReceipt receipt = AIRLOCK__DEPLOY_RECEIPT__INIT;
    receipt.service = "demo-service";
    receipt.version = "v2.0.0";
    receipt.artifact_sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    receipt.receipt_sha256 = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";
    receipt.outcome = outcome;
    if (outcome == AIRLOCK__OUTCOME__OUTCOME_ROLLED_BACK) {
        receipt.rollback_rule = "error_rate";
        receipt.previous_version = "v1.9.0";
    }
    al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
    envelope.deployment_id = (char *) deployment;
    envelope.environment = AIRLOCK__ENVIRONMENT__ENV_STAGING;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_DEPLOY_RECEIPT;
    envelope.deploy_receipt = &receipt;
    return s_send (agent, &envelope);
}

int
bus_send_signal (al_agent_t *agent, const char *service, Airlock__Environment environment,
                 const Airlock__SoakSignal *signal)
{
    Airlock__SoakSignal copy = *signal;
    copy.service = (char *) service;
    al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
    envelope.environment = environment;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_SOAK_SIGNAL;
    envelope.soak_signal = &copy;
    return s_send (agent, &envelope);
}
