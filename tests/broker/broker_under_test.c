/*  broker_under_test.c: the broker as its own process for the integration tests.

    Same behaviour as `airlock broker --config FILE` (metrics endpoint included), linked only with the broker's
    modules so the tests do not depend on the whole CLI. Prints "ready" on stdout once
    the endpoints are bound and the start-up rows are committed.
*/
#include "broker/al_broker.h"
#include "base/al_config.h"
#include "broker/al_telemetry_server.h"
#include <czmq.h>
#include <stdio.h>

int
main (int argc, char **argv)
{
    if (argc != 2) {
        fprintf (stderr, "usage: broker_under_test AIRLOCK.YAML\n");
        return 2;
    }
    //  Logs go to stderr: stdout may be a pipe its reader closes.
    zsys_set_logstream (stderr);
    char error [1024] = "";
    al_config_t *config = al_config_load (argv [1], error, sizeof error);
    if (!config) {
        fprintf (stderr, "broker_under_test: %s\n", error);
        return 2;
    }
    al_broker_t *broker = al_broker_new (config, error, sizeof error);
    if (!broker) {
        fprintf (stderr, "broker_under_test: %s\n", error);
        al_config_destroy (&config);
        return 2;
    }
    //  As `airlock broker`: the metrics endpoint when airlock.yaml names one.
    al_telemetry_server_t *metrics = al_telemetry_server_for (config, "broker", error, sizeof error);
    if (!metrics && *error) {
        fprintf (stderr, "broker_under_test: %s\n", error);
        al_broker_destroy (&broker);
        al_config_destroy (&config);
        return 2;
    }
    al_broker_handle_signals (broker);
    printf ("ready\n");
    fflush (stdout);
    int rc = al_broker_run (broker);
    al_telemetry_server_destroy (&metrics);
    al_broker_destroy (&broker);
    al_config_destroy (&config);
    return rc == 0? 0: 1;
}
