/*  al_probe.h: one HTTP liveness or readiness probe, with libcurl's easy interface.

    A probe is a GET of a URL with a total timeout. It succeeds when a response with a
    2xx status arrives in time. Anything else fails it: connection refused, DNS
    failure, timeout, reset, or a non-2xx status (a 503 from /readyz is a failed
    readiness, with the status kept). The body is read and discarded (bounded, so a
    misbehaving endpoint cannot fill memory); redirects are not followed.

    Thread-safe: each call uses its own easy handle; libcurl's global init runs once.
*/
#ifndef AL_PROBE_H_INCLUDED
#define AL_PROBE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AL_PROBE_DEFAULT_TIMEOUT_MS 2000

typedef struct {
    bool ok;                        // a 2xx status arrived within the timeout
    long status;                    // HTTP status, 0 when no response arrived
    bool timed_out;                 // the timeout expired
    double latency_ms;              // from the start of the request to its end or failure
    char detail [256];              // "200", "503", "connection refused: ...", "timeout after 2000 ms"
} al_probe_result_t;

//  GET url within timeout_ms (<= 0: AL_PROBE_DEFAULT_TIMEOUT_MS) and fill result.
//  Returns result->ok. Never blocks longer than about timeout_ms.
bool al_probe_http (const char *url, int timeout_ms, al_probe_result_t *result);

//  A smoke check: GET url within timeout_ms; ok when the status is expect_status (0:
//  any 2xx) and, when body_contains is not NULL, the body's first 64 KiB contain it.
//  result->detail says which part failed. Returns result->ok.
bool al_probe_http_check (const char *url, int timeout_ms, long expect_status, const char *body_contains,
                          al_probe_result_t *result);

#ifdef __cplusplus
}
#endif

#endif
