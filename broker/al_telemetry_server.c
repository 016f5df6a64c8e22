/*  al_telemetry_server.c: GET /metrics on a loopback address, with libmicrohttpd.

    The daemon runs its own polling thread (MHD_USE_INTERNAL_POLLING_THREAD) and answers
    one request at a time: a scrape renders the registry, which takes no lock that a
    hook takes, so a slow scraper never delays the broker. The port file is written
    after the bind succeeded (temporary file + rename) and removed at destroy.
*/
#include "broker/al_telemetry_server.h"
#include "base/al_error.h"
#include "base/al_file.h"
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct _al_telemetry_server_t {
    al_telemetry_t *registry;
    struct MHD_Daemon *daemon;
    int port;
    char *port_file;
    char address [INET_ADDRSTRLEN + 8];
};

//  The one parser of a metrics address is airlock.yaml's (base/al_config).
static int
s_parse (const char *address, struct sockaddr_in *sockaddr, char *error, size_t error_size)
{
    return al_config_address_parse (address, sockaddr, error, error_size);
}

int
al_telemetry_address_check (const char *address, char *error, size_t error_size)
{
    struct sockaddr_in sockaddr;
    return s_parse (address, &sockaddr, error, error_size);
}

static enum MHD_Result
s_answer (void *cls, struct MHD_Connection *connection, const char *url, const char *method,
          const char *version, const char *upload_data, size_t *upload_data_size, void **state)
{
    (void) version;
    (void) upload_data;
    (void) state;
    al_telemetry_server_t *self = (al_telemetry_server_t *) cls;
    unsigned int status = MHD_HTTP_OK;
    const char *type = "text/plain; version=0.0.4; charset=utf-8";
    char *body = NULL;
    if (*upload_data_size) {
        *upload_data_size = 0;      // a body is never read
        return MHD_YES;
    }
    if (strcmp (method, "GET") != 0 && strcmp (method, "HEAD") != 0) {
        status = MHD_HTTP_METHOD_NOT_ALLOWED;
        body = strdup ("only GET /metrics\n");
    }
    else
    if (strcmp (url, "/metrics") != 0) {
        status = MHD_HTTP_NOT_FOUND;
        body = strdup ("not found: the metrics are at /metrics\n");
    }
    else {
        body = al_telemetry_render (self->registry);
        if (!body) {
            status = MHD_HTTP_INTERNAL_SERVER_ERROR;
            body = strdup ("out of memory\n");
        }
    }
    if (!body)
        return MHD_NO;
    struct MHD_Response *response = MHD_create_response_from_buffer (strlen (body), body, MHD_RESPMEM_MUST_FREE);
    if (!response) {
        free (body);
        return MHD_NO;
    }
    MHD_add_response_header (response, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    enum MHD_Result result = MHD_queue_response (connection, status, response);
    MHD_destroy_response (response);
    return result;
}

static int
s_write_port_file (const char *path, const char *host, int port, char *error, size_t error_size)
{
    char *directory = strdup (path);
    if (!directory) {
        al_error_set (error, error_size, "out of memory");
        return -1;
    }
    char *slash = strrchr (directory, '/');
    if (slash && slash != directory) {
        *slash = '\0';
        mkdir (directory, 0755);    // EEXIST is fine; the write below reports the rest
    }
    free (directory);
    char text [300];
    snprintf (text, sizeof text, "%s:%d\n", host, port);
    return al_file_write_atomic_text (path, text, 0644, error, error_size);
}

al_telemetry_server_t *
al_telemetry_server_new (al_telemetry_t *registry, const char *address, const char *port_file,
                       char *error, size_t error_size)
{
    assert (registry);
    char why [512] = "";
    struct sockaddr_in sockaddr;
    al_telemetry_server_t *self = NULL;
    if (s_parse (address, &sockaddr, why, sizeof why))
        goto failed;
    self = (al_telemetry_server_t *) calloc (1, sizeof *self);
    if (!self || (port_file && !(self->port_file = strdup (port_file)))) {
        snprintf (why, sizeof why, "out of memory");
        goto failed;
    }
    self->registry = registry;
    self->daemon = MHD_start_daemon (MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO, 0, NULL, NULL,
                                     s_answer, self,
                                     MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &sockaddr,
                                     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) 10,
                                     MHD_OPTION_CONNECTION_LIMIT, (unsigned int) 16,
                                     MHD_OPTION_END);
    if (!self->daemon) {
        snprintf (why, sizeof why, "cannot listen: %s", errno? strerror (errno): "libmicrohttpd refused to start");
        goto failed;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info (self->daemon, MHD_DAEMON_INFO_BIND_PORT);
    if (!info || info->port == 0) {
        snprintf (why, sizeof why, "cannot learn the port bound");
        goto failed;
    }
    self->port = info->port;
    char host [INET_ADDRSTRLEN] = "";
    inet_ntop (AF_INET, &sockaddr.sin_addr, host, sizeof host);
    snprintf (self->address, sizeof self->address, "%s:%d", host, self->port);
    if (self->port_file) {
        if (s_write_port_file (self->port_file, host, self->port, why, sizeof why)) {
            free (self->port_file);
            self->port_file = NULL;
            goto failed;
        }
    }
    return self;
failed:
    snprintf (error, error_size, "metrics %s: %s", address? address: "", why);
    al_telemetry_server_destroy (&self);
    return NULL;
}

void
al_telemetry_server_destroy (al_telemetry_server_t **self_p)
{
    assert (self_p);
    al_telemetry_server_t *self = *self_p;
    if (!self)
        return;
    if (self->daemon)
        MHD_stop_daemon (self->daemon);
    if (self->port_file) {
        unlink (self->port_file);
        free (self->port_file);
    }
    free (self);
    *self_p = NULL;
}

int
al_telemetry_server_port (const al_telemetry_server_t *self)
{
    assert (self);
    return self->port;
}

const char *
al_telemetry_server_address (const al_telemetry_server_t *self)
{
    assert (self);
    return self->address;
}

al_telemetry_server_t *
al_telemetry_server_for (const al_config_t *config, const char *process, char *error, size_t error_size)
{
    assert (config);
    assert (process);
    if (error_size)
        error [0] = '\0';
    const char *address = al_config_metrics_address (config, process);
    if (!address)
        return NULL;
    char *port_file = al_config_metrics_port_file (config, process);
    if (!port_file) {
        snprintf (error, error_size, "metrics %s: out of memory", address);
        return NULL;
    }
    al_telemetry_t *registry = al_telemetry_process ();
    al_telemetry_server_t *self = registry? al_telemetry_server_new (registry, address, port_file, error, error_size): NULL;
    if (!registry)
        snprintf (error, error_size, "metrics %s: out of memory", address);
    free (port_file);
    return self;
}
