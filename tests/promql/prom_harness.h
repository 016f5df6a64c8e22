/*  prom_harness.h: a real Prometheus server and a load generator, for the Prometheus
    provider's end-to-end test (test_prometheus) and its bench (bench/promql).

    prom_start runs /usr/bin/prometheus in its own process group on 127.0.0.1 with a
    port the kernel picked (a bound-then-closed port; a start that loses the port race
    is retried on another), storage and configuration in the caller's directory, a 1 s
    scrape interval and one file_sd job reading the given file, and returns once
    /-/ready answers. It dies with its parent (PR_SET_PDEATHSIG), e.g. a test killed by
    ctest's timeout. prom_kill stops it at once (SIGKILL to its group, reaped);
    prom_destroy kills it if still running and frees. Nothing here asserts, so the
    bench can use it too: errors come back in the caller's buffer.

    load_start runs one thread that GETs every URL in turn, with a short pause, until
    load_stop. Threading: each object has one owner.
*/
#ifndef PROM_HARNESS_H_INCLUDED
#define PROM_HARNESS_H_INCLUDED

#include <stddef.h>
#include <sys/types.h>

typedef struct _prom_harness_t prom_harness_t;

//  Start Prometheus scraping the targets of file_sd_path every second. dir (existing)
//  holds its configuration, storage and log. NULL with the reason (and the log's tail).
prom_harness_t *prom_start (const char *dir, const char *file_sd_path, int ready_timeout_ms,
                            char *error, size_t error_size);
//  Its base URL, "http://127.0.0.1:PORT". Borrowed.
const char *prom_url (const prom_harness_t *self);
pid_t prom_pid (const prom_harness_t *self);
//  SIGKILL its process group and reap it. Idempotent.
void prom_kill (prom_harness_t *self);
//  NULL-safe; kills it first if still running.
void prom_destroy (prom_harness_t **self_p);

typedef struct _load_t load_t;

//  GET each of urls (copied) in turn, pausing pause_ms between requests. NULL on failure.
load_t *load_start (const char *const *urls, size_t count, int pause_ms);
//  Requests sent so far (answered with any status).
size_t load_requests (load_t *self);
//  Stop and join the thread; NULL-safe.
void load_stop (load_t **self_p);

#endif
