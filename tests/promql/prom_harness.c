/*  prom_harness.c: a real Prometheus and a load generator (see prom_harness.h). */
#include "prom_harness.h"
#include "deploy/al_probe.h"
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define S_PROMETHEUS "/usr/bin/prometheus"
#define S_ATTEMPTS 3

struct _prom_harness_t {
    pid_t pid;                      // also its process group; 0 once reaped
    int port;
    char url [64];
    char log [4096];
};

static double
s_now_ms (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (double) now.tv_sec * 1e3 + now.tv_nsec / 1e6;
}

static void
s_sleep_ms (int milliseconds)
{
    struct timespec pause = { milliseconds / 1000, (long) (milliseconds % 1000) * 1000000L };
    while (nanosleep (&pause, &pause) != 0 && errno == EINTR)
        ;
}

//  A loopback port free a moment ago (bound to port 0, read, closed). -1 on failure.
static int
s_free_port (void)
{
    int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in address = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    socklen_t length = sizeof address;
    int port = -1;
    if (bind (fd, (struct sockaddr *) &address, sizeof address) == 0
    &&  getsockname (fd, (struct sockaddr *) &address, &length) == 0)
        port = ntohs (address.sin_port);
    close (fd);
    return port;
}

//  The last bytes of the log, for an error text.
static void
s_log_tail (const char *path, char *tail, size_t tail_size)
{
    tail [0] = 0;
    FILE *file = fopen (path, "r");
    if (!file)
        return;
    if (fseek (file, 0, SEEK_END) == 0) {
        long size = ftell (file);
        long start = size > (long) tail_size - 1 ? size - (long) tail_size + 1 : 0;
        fseek (file, start, SEEK_SET);
        size_t got = fread (tail, 1, tail_size - 1, file);
        tail [got] = 0;
    }
    fclose (file);
}

static int
s_write_config (const char *path, const char *file_sd_path)
{
    FILE *file = fopen (path, "w");
    if (!file)
        return -1;
    fprintf (file,
             "global:\n"
             "  scrape_interval: 1s\n"
             "  scrape_timeout: 1s\n"
             "  evaluation_interval: 1s\n"
             "scrape_configs:\n"
             "  - job_name: airlock\n"
             "    file_sd_configs:\n"
             "      - files: ['%s']\n"
             "        refresh_interval: 1s\n", file_sd_path);
    return fclose (file);
}

void
prom_kill (prom_harness_t *self)
{
    if (!self || self->pid <= 0)
        return;
    kill (-self->pid, SIGKILL);
    kill (self->pid, SIGKILL);
    while (waitpid (self->pid, NULL, 0) < 0 && errno == EINTR)
        ;
    self->pid = 0;
}

void
prom_destroy (prom_harness_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    prom_kill (*self_p);
    free (*self_p);
    *self_p = NULL;
}

const char *
prom_url (const prom_harness_t *self)
{
    return self->url;
}

pid_t
prom_pid (const prom_harness_t *self)
{
    return self->pid;
}

//  One attempt on a fresh port. 0 when ready; -1 with error (the child is reaped).
static int
s_try_start (prom_harness_t *self, const char *dir, int ready_timeout_ms, char *error, size_t error_size)
{
    self->port = s_free_port ();
    if (self->port < 0) {
        snprintf (error, error_size, "no free port: %s", strerror (errno));
        return -1;
    }
    snprintf (self->url, sizeof self->url, "http://127.0.0.1:%d", self->port);
    char config [4096], storage [4096], listen [64];
    snprintf (config, sizeof config, "--config.file=%s/prometheus.yml", dir);
    snprintf (storage, sizeof storage, "--storage.tsdb.path=%s/data", dir);
    snprintf (listen, sizeof listen, "--web.listen-address=127.0.0.1:%d", self->port);
    char *argv [] = { S_PROMETHEUS, config, storage, listen, "--log.level=warn", NULL };
    pid_t pid = fork ();
    if (pid < 0) {
        snprintf (error, error_size, "fork: %s", strerror (errno));
        return -1;
    }
    if (pid == 0) {
        setpgid (0, 0);
        //  If the test is killed (a ctest timeout), Prometheus goes with it.
        prctl (PR_SET_PDEATHSIG, SIGKILL);
        if (getppid () == 1)
            _exit (127);
        int log = open (self->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (log >= 0) {
            dup2 (log, 1);
            dup2 (log, 2);
        }
        execv (argv [0], argv);
        _exit (127);
    }
    setpgid (pid, pid);             // both sides: no window where a kill of the group misses
    self->pid = pid;
    char ready [128];
    snprintf (ready, sizeof ready, "%s/-/ready", self->url);
    double deadline = s_now_ms () + ready_timeout_ms;
    while (s_now_ms () < deadline) {
        int status;
        if (waitpid (pid, &status, WNOHANG) == pid) {
            self->pid = 0;
            char tail [600];
            s_log_tail (self->log, tail, sizeof tail);
            snprintf (error, error_size, "prometheus exited (status %d) during start; log ends: %s",
                      status, tail);
            return -1;
        }
        al_probe_result_t probe;
        if (al_probe_http (ready, 1000, &probe))
            return 0;
        s_sleep_ms (100);
    }
    prom_kill (self);
    char tail [600];
    s_log_tail (self->log, tail, sizeof tail);
    snprintf (error, error_size, "prometheus not ready within %d ms; log ends: %s", ready_timeout_ms, tail);
    return -1;
}

prom_harness_t *
prom_start (const char *dir, const char *file_sd_path, int ready_timeout_ms, char *error, size_t error_size)
{
    if (access (S_PROMETHEUS, X_OK) != 0) {
        snprintf (error, error_size, "%s: %s (scripts/install-deps installs the prometheus package)",
                  S_PROMETHEUS, strerror (errno));
        return NULL;
    }
    prom_harness_t *self = calloc (1, sizeof (prom_harness_t));
    if (!self) {
        snprintf (error, error_size, "out of memory");
        return NULL;
    }
    snprintf (self->log, sizeof self->log, "%s/prometheus.log", dir);
    char config [4096];
    snprintf (config, sizeof config, "%s/prometheus.yml", dir);
    if (s_write_config (config, file_sd_path) != 0) {
        snprintf (error, error_size, "%s: %s", config, strerror (errno));
        free (self);
        return NULL;
    }
    //  Another program may take the port between our probe and Prometheus' bind.
    for (int attempt = 0; attempt < S_ATTEMPTS; attempt++)
        if (s_try_start (self, dir, ready_timeout_ms, error, error_size) == 0)
            return self;
    free (self);
    return NULL;
}

//  --------------------------------------------------------------------------
//  Load

struct _load_t {
    pthread_t thread;
    char **urls;
    size_t count;
    int pause_ms;
    atomic_bool stopping;
    atomic_size_t requests;
};

static size_t
s_discard (char *data, size_t size, size_t count, void *arg)
{
    (void) data;
    (void) arg;
    return size * count;
}

static void *
s_load_thread (void *arg)
{
    load_t *self = arg;
    CURL *easy = curl_easy_init ();
    if (!easy)
        return NULL;
    curl_easy_setopt (easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (easy, CURLOPT_TIMEOUT_MS, 2000L);
    curl_easy_setopt (easy, CURLOPT_WRITEFUNCTION, s_discard);
    for (size_t next = 0; !atomic_load (&self->stopping); next = (next + 1) % self->count) {
        curl_easy_setopt (easy, CURLOPT_URL, self->urls [next]);
        if (curl_easy_perform (easy) == CURLE_OK)
            atomic_fetch_add (&self->requests, 1);
        if (self->pause_ms > 0)
            s_sleep_ms (self->pause_ms);
    }
    curl_easy_cleanup (easy);
    return NULL;
}

load_t *
load_start (const char *const *urls, size_t count, int pause_ms)
{
    load_t *self = calloc (1, sizeof (load_t));
    if (!self || count == 0)
        goto failed;
    self->urls = calloc (count, sizeof (char *));
    if (!self->urls)
        goto failed;
    self->count = count;
    self->pause_ms = pause_ms;
    for (size_t i = 0; i < count; i++)
        if (!(self->urls [i] = strdup (urls [i])))
            goto failed;
    if (pthread_create (&self->thread, NULL, s_load_thread, self) != 0)
        goto failed;
    return self;

failed:
    if (self) {
        for (size_t i = 0; self->urls && i < self->count; i++)
            free (self->urls [i]);
        free (self->urls);
        free (self);
    }
    return NULL;
}

size_t
load_requests (load_t *self)
{
    return atomic_load (&self->requests);
}

void
load_stop (load_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    load_t *self = *self_p;
    atomic_store (&self->stopping, true);
    pthread_join (self->thread, NULL);
    for (size_t i = 0; i < self->count; i++)
        free (self->urls [i]);
    free (self->urls);
    free (self);
    *self_p = NULL;
}
