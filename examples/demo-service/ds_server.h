/*  ds_server.h: demo-service's HTTP server on 127.0.0.1 (libmicrohttpd).

    Routes /healthz, /readyz, /metrics, /work and /fault; counts every answer in the
    metrics and draws /work's fate from the faults. The server borrows both; they must
    outlive it. libmicrohttpd runs a listening thread and a thread per connection.
*/
#ifndef DS_SERVER_H_INCLUDED
#define DS_SERVER_H_INCLUDED

#include "ds_faults.h"
#include "ds_metrics.h"
#include "ds_options.h"
#include <stdint.h>

typedef struct _ds_server_t ds_server_t;

//  Start listening on 127.0.0.1:options->port (0: any free port). NULL with error
//  filled ("127.0.0.1:PORT: what is wrong") when it cannot.
ds_server_t *
    ds_server_new (const ds_options_t *options, ds_faults_t *faults, ds_metrics_t *metrics,
                   char *error, size_t error_size);

//  The port it listens on.
uint16_t
    ds_server_port (ds_server_t *self);

//  Stop accepting connections and wait up to the options' shutdown timeout for the
//  requests in flight to be answered. Returns how many are still in flight.
int
    ds_server_drain (ds_server_t *self);

//  Stop (cutting short any injected latency still running) and free. NULL-safe.
void
    ds_server_destroy (ds_server_t **self_p);

#endif
