/*  demo_service.c: demo-service's entry point, the stand-in for the operator's service.

    Reads options, honours the crash-at-start fault, starts the metrics, the faults and
    the HTTP server, prints "demo-service VERSION listening on 127.0.0.1:PORT" on stdout
    and waits for SIGTERM or SIGINT; then it stops accepting, lets in-flight requests
    finish and exits 0. The signals are blocked before any thread starts, so only this
    thread receives them (in sigwait).
*/
#include "ds_faults.h"
#include "ds_metrics.h"
#include "ds_options.h"
#include "ds_server.h"
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

int
main (int argc, char **argv)
{
    ds_options_t options;
    char error [256];
    switch (ds_options_parse (&options, argc, argv, error, sizeof error)) {
        case DS_OPTIONS_HELP:
            ds_options_usage (stdout);
            return 0;
        case DS_OPTIONS_ERROR:
            fprintf (stderr, "demo-service: %s\n", error);
            return 2;
        case DS_OPTIONS_OK:
            break;
    }
    if (options.crash_at_start) {
        fprintf (stderr, "demo-service %s: crash-at-start fault is set "
                 "(--crash-at-start or CRASH_AT_START=1): exiting with status 3\n", options.version);
        return 3;
    }
    signal (SIGPIPE, SIG_IGN);
    sigset_t stop_signals;
    sigemptyset (&stop_signals);
    sigaddset (&stop_signals, SIGTERM);
    sigaddset (&stop_signals, SIGINT);
    pthread_sigmask (SIG_BLOCK, &stop_signals, NULL);

    int status = 1;
    ds_metrics_t *metrics = ds_metrics_new (options.version, options.memory_limit_mb, options.db_path);
    ds_faults_t *faults = ds_faults_new (&options);
    ds_server_t *server = NULL;
    if (!metrics || !faults) {
        fprintf (stderr, "demo-service: cannot start (out of memory or threads)\n");
        goto cleanup;
    }
    server = ds_server_new (&options, faults, metrics, error, sizeof error);
    if (!server) {
        fprintf (stderr, "demo-service: %s\n", error);
        goto cleanup;
    }
    printf ("demo-service %s listening on 127.0.0.1:%u\n", options.version, ds_server_port (server));
    fflush (stdout);

    int received = 0;
    sigwait (&stop_signals, &received);
    fprintf (stderr, "demo-service: %s: draining\n", received == SIGTERM ? "SIGTERM" : "SIGINT");
    int left = ds_server_drain (server);
    if (left > 0)
        fprintf (stderr, "demo-service: %d requests still in flight after %d ms; stopping anyway\n",
                 left, options.shutdown_timeout_ms);
    status = 0;
cleanup:
    ds_server_destroy (&server);
    ds_faults_destroy (&faults);
    ds_metrics_destroy (&metrics);
    return status;
}
