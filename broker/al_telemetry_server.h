/*  al_telemetry_server.h: the operator metrics endpoint: GET /metrics over loopback HTTP.

    A libmicrohttpd daemon (its own polling thread) answers GET /metrics with the text
    exposition of a registry (al_telemetry.h), rendered at scrape time; every other path
    is 404 and every other method 405. The address is "HOST:PORT" with a numeric IPv4
    host ("127.0.0.1:9464"); port 0 lets the kernel choose, and the port chosen is what
    al_telemetry_server_port returns and what is written to port_file (when given), so a
    test or a scraper's service discovery can read it.

    Threading: the daemon's thread only reads the registry; new/destroy from one thread.
*/
#ifndef AL_TELEMETRY_SERVER_H_INCLUDED
#define AL_TELEMETRY_SERVER_H_INCLUDED

#include "base/al_config.h"
#include "broker/al_telemetry.h"
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _al_telemetry_server_t al_telemetry_server_t;

//  Check an address without binding: 0, or -1 with "what is wrong" in error.
int al_telemetry_address_check (const char *address, char *error, size_t error_size);

//  Serve registry (borrowed; it must outlive the server) on address. port_file, when
//  not NULL, receives "HOST:PORT\n" (written atomically, parent directory created).
//  Returns NULL with "metrics ADDRESS: why" in error.
al_telemetry_server_t *al_telemetry_server_new (al_telemetry_t *registry, const char *address,
                                            const char *port_file, char *error, size_t error_size);
//  Stop serving, remove port_file. NULL-safe; sets *self_p to NULL.
void al_telemetry_server_destroy (al_telemetry_server_t **self_p);
//  The port bound, and "HOST:PORT" as bound.
int al_telemetry_server_port (const al_telemetry_server_t *self);
const char *al_telemetry_server_address (const al_telemetry_server_t *self);

//  The endpoint of process ("broker", "orchestrator", ...) as airlock.yaml's metrics
//  section names it, serving the process registry (al_telemetry_process), its address
//  written to al_config_metrics_port_file. NULL with error "" when the section names
//  none; NULL with "metrics ADDRESS: why" when it cannot be served.
al_telemetry_server_t *al_telemetry_server_for (const al_config_t *config, const char *process,
                                                char *error, size_t error_size);

#ifdef __cplusplus
}
#endif

#endif
