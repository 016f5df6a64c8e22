/*  stub_server.c: the scripted HTTP server of the scrape tests (see stub_server.h).

    The thread owns the listening socket and the connection it serves; the counters
    are atomics read by the test thread. Sends use MSG_NOSIGNAL and a send timeout, so
    a client that aborted (as the scraper does above its size cap) only ends the
    connection.
*/
#include "stub_server.h"
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define S_POLL_MS 50

struct _stub_server_t {
    stub_config_t config;
    int listen_fd;
    int port;
    pthread_t thread;
    atomic_bool stop;
    atomic_int connections;
    atomic_int requests;
};

static int
s_listen (int *port)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    int on = 1;
    setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = 0 };
    address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    socklen_t size = sizeof address;
    if (bind (fd, (struct sockaddr *) &address, sizeof address)
    ||  listen (fd, 16)
    ||  getsockname (fd, (struct sockaddr *) &address, &size)) {
        close (fd);
        return -1;
    }
    *port = ntohs (address.sin_port);
    return fd;
}

//  Wait until fd is readable or the server stops; true if readable.
static bool
s_wait_readable (stub_server_t *self, int fd)
{
    while (!atomic_load (&self->stop)) {
        struct pollfd readable = { fd, POLLIN, 0 };
        int ready = poll (&readable, 1, S_POLL_MS);
        if (ready > 0)
            return true;
        if (ready < 0 && errno != EINTR)
            return false;
    }
    return false;
}

static void
s_sleep_ms (stub_server_t *self, int milliseconds)
{
    while (milliseconds > 0 && !atomic_load (&self->stop)) {
        int step = milliseconds < 10? milliseconds: 10;
        struct timespec pause = { 0, step * 1000000L };
        nanosleep (&pause, NULL);
        milliseconds -= step;
    }
}

static bool
s_send_all (stub_server_t *self, int fd, const char *data, size_t size)
{
    while (size > 0 && !atomic_load (&self->stop)) {
        ssize_t sent = send (fd, data, size, MSG_NOSIGNAL);
        if (sent < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (sent <= 0)
            return false;
        data += sent;
        size -= (size_t) sent;
    }
    return size == 0;
}

//  Answer one request on fd; false when the connection must close.
static bool
s_answer (stub_server_t *self, int fd)
{
    const stub_config_t *config = &self->config;
    s_sleep_ms (self, config->delay_ms);
    char head [512];
    int length = snprintf (head, sizeof head, "HTTP/1.1 %d Stub\r\nContent-Type: text/plain\r\n",
                           config->status);
    if (config->extra_header)
        length += snprintf (head + length, sizeof head - (size_t) length, "%s\r\n", config->extra_header);
    if (config->content_length)
        length += snprintf (head + length, sizeof head - (size_t) length, "Content-Length: %zu\r\n\r\n",
                            config->body_size);
    else
        length += snprintf (head + length, sizeof head - (size_t) length, "Connection: close\r\n\r\n");
    if (!s_send_all (self, fd, head, (size_t) length))
        return false;
    char chunk [16384];
    memset (chunk, 'm', sizeof chunk);
    for (size_t left = config->body_size; left > 0; ) {
        size_t size = left < sizeof chunk? left: sizeof chunk;
        if (!s_send_all (self, fd, chunk, size))
            return false;
        left -= size;
    }
    return config->content_length;
}

//  Serve one connection until the client closes it or the server stops.
static void
s_serve (stub_server_t *self, int fd)
{
    char request [8192];
    size_t used = 0;
    while (s_wait_readable (self, fd)) {
        ssize_t got = recv (fd, request + used, sizeof request - 1 - used, 0);
        if (got <= 0)
            return;
        used += (size_t) got;
        request [used] = 0;
        char *end = strstr (request, "\r\n\r\n");
        if (!end) {
            if (used == sizeof request - 1)
                return;
            continue;
        }
        atomic_fetch_add (&self->requests, 1);
        //  Requests are GETs without bodies: drop this one, keep what follows.
        size_t consumed = (size_t) (end + 4 - request);
        memmove (request, request + consumed, used - consumed + 1);
        used -= consumed;
        if (!s_answer (self, fd))
            return;
    }
}

static void *
s_thread (void *arg)
{
    stub_server_t *self = arg;
    while (s_wait_readable (self, self->listen_fd)) {
        int fd = accept (self->listen_fd, NULL, NULL);
        if (fd < 0)
            continue;
        atomic_fetch_add (&self->connections, 1);
        struct timeval send_timeout = { 0, S_POLL_MS * 1000 };
        setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof send_timeout);
        //  Head and body go out in separate sends: without this, Nagle's algorithm and
        //  the client's delayed ACK add ~40 ms to every kept-alive answer.
        int on = 1;
        setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
        s_serve (self, fd);
        close (fd);
    }
    return NULL;
}

stub_server_t *
stub_server_start (const stub_config_t *config)
{
    stub_server_t *self = calloc (1, sizeof (stub_server_t));
    if (!self)
        return NULL;
    self->config = *config;
    atomic_init (&self->stop, false);
    atomic_init (&self->connections, 0);
    atomic_init (&self->requests, 0);
    self->listen_fd = s_listen (&self->port);
    if (self->listen_fd < 0) {
        free (self);
        return NULL;
    }
    if (pthread_create (&self->thread, NULL, s_thread, self)) {
        close (self->listen_fd);
        free (self);
        return NULL;
    }
    return self;
}

void
stub_server_stop (stub_server_t **self_p)
{
    stub_server_t *self = *self_p;
    if (!self)
        return;
    atomic_store (&self->stop, true);
    pthread_join (self->thread, NULL);
    close (self->listen_fd);
    free (self);
    *self_p = NULL;
}

int
stub_server_port (const stub_server_t *self)
{
    return self->port;
}

int
stub_server_connections (const stub_server_t *self)
{
    return atomic_load (&((stub_server_t *) self)->connections);
}

int
stub_server_requests (const stub_server_t *self)
{
    return atomic_load (&((stub_server_t *) self)->requests);
}

int
stub_silent_listener (int *port)
{
    return s_listen (port);
}

int
stub_closed_port (void)
{
    int port = 0;
    int fd = s_listen (&port);
    if (fd < 0)
        return -1;
    close (fd);
    return port;
}
