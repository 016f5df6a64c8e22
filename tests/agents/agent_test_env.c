/*  agent_test_env.c: what the agent runtime tests share (see agent_test_env.h). */
#include "agent_test_env.h"

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/stat.h>
#include <cmocka.h>

void
agent_test_remove_tree (const char *path)
{
    DIR *dir = opendir (path);
    if (dir) {
        struct dirent *item;
        while ((item = readdir (dir))) {
            if (streq (item->d_name, ".") || streq (item->d_name, ".."))
                continue;
            char child [512];
            snprintf (child, sizeof child, "%s/%s", path, item->d_name);
            agent_test_remove_tree (child);
        }
        closedir (dir);
        rmdir (path);
    }
    else
        unlink (path);
}

void
agent_test_env_init (agent_test_env_t *env, const char *prefix)
{
    memset (env, 0, sizeof *env);
    snprintf (env->dir, sizeof env->dir, "/tmp/%s-XXXXXX", prefix);
    assert_non_null (mkdtemp (env->dir));
    snprintf (env->keys, sizeof env->keys, "%s/keys", env->dir);
    assert_int_equal (mkdir (env->keys, 0700), 0);
    snprintf (env->agent_cert, sizeof env->agent_cert, "%s/qa.cert", env->keys);
    env->broker_cert = zcert_new ();
    assert_non_null (env->broker_cert);
    char broker_cert [256];
    snprintf (broker_cert, sizeof broker_cert, "%s/broker.cert", env->dir);
    assert_int_equal (zcert_save (env->broker_cert, broker_cert), 0);
    env->agent = zcert_new ();
    assert_non_null (env->agent);
    assert_int_equal (zcert_save (env->agent, env->agent_cert), 0);
    env->auth = zactor_new (zauth, NULL);
    assert_non_null (env->auth);
    zstr_sendx (env->auth, "CURVE", env->keys, NULL);
    zsock_wait (env->auth);
}

void
agent_test_env_fini (agent_test_env_t *env)
{
    zactor_destroy (&env->auth);
    zcert_destroy (&env->broker_cert);
    zcert_destroy (&env->agent);
    if (*env->dir)
        agent_test_remove_tree (env->dir);
}

void
agent_test_options (const agent_test_env_t *env, const char *endpoint, al_agent_options_t *options)
{
    al_agent_options_defaults (options);
    snprintf (options->endpoint, sizeof options->endpoint, "%s", endpoint);
    snprintf (options->broker_key, sizeof options->broker_key, "%s", zcert_public_txt (env->broker_cert));
    snprintf (options->cert_path, sizeof options->cert_path, "%s", env->agent_cert);
    snprintf (options->name, sizeof options->name, "qa");
    options->subscribe_deliveries = true;
    options->heartbeat_ms = 100;
    options->retry_ms = 500;
    options->reconnect_ivl_ms = 50;
    options->reconnect_ivl_max_ms = 400;
}

void
agent_test_qa_report (al_envelope_t *envelope, Airlock__QaReport *report, const char *version)
{
    airlock__envelope__init (envelope);
    airlock__qa_report__init (report);
    report->service = "demo";
    report->version = (char *) version;
    report->artifact_sha256 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    report->report_sha256 = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";
    report->approved = true;
    envelope->environment = AIRLOCK__ENVIRONMENT__ENV_STAGING;
    envelope->body_case = AIRLOCK__ENVELOPE__BODY_QA_REPORT;
    envelope->qa_report = report;
}
