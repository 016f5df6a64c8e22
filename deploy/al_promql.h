/*  al_promql.h: golden signals read from a Prometheus server with PromQL instant queries.

    The alternative to scraping instances ourselves (al_scrape, al_signals): teams that
    already run Prometheus give one PromQL query per golden signal, templated with the
    deployment's labels, and the monitor asks Prometheus (GET /api/v1/query) once per
    soak tick. docs/monitor.md ("The Prometheus provider") has complete examples.

    Evidence rules (the soak gates a production rollout on these numbers):
    - A query answers with one number: a scalar, or a vector of exactly one series.
      A vector of several series is an error (the query must aggregate, e.g. sum() or
      max()), never "the first one": which series comes first is not defined.
    - An empty vector, or a NaN or infinite value (0/0 when there was no traffic), is
      AL_PROMQL_NO_DATA: missing evidence, never zero.
    - Anything else (connection refused, timeout, HTTP error, a body that is not the
      API's JSON, {"status":"error"}, a success that carries "warnings", whose answer
      may be partial or wrong) is AL_PROMQL_ERROR with the reason, which names the
      provider and the server: "prometheus http://127.0.0.1:9090: connection refused".

    Limits: http:// and https:// only, no credentials in the URL (they would end up in
    error texts), no redirects followed, the response body capped (AL_PROMQL_MAX_BODY),
    every request bounded by the client's timeout, which is also passed to Prometheus as
    the query's evaluation timeout. al_promql_sample runs its queries concurrently (one
    libcurl multi round), so a tick costs one round trip, bounded by the timeout in
    total. Connections are kept alive between calls.

    This module does not know services.yaml: its types are plain so that the monitor
    maps al_service_prometheus_t onto them (same signal order as al_signal_t).

    Threading: one owner per client; different clients may run in different threads.
*/
#ifndef AL_PROMQL_H_INCLUDED
#define AL_PROMQL_H_INCLUDED

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

//  The golden signals, in the order of al_signal_t (services.yaml "queries" keys).
#define AL_PROMQL_SIGNALS 6
//  Response bodies above this are refused (bytes).
#define AL_PROMQL_MAX_BODY (1024u * 1024)
//  Longest base URL accepted.
#define AL_PROMQL_MAX_URL 1024

typedef enum {
    AL_PROMQL_OK = 0,               // *value is a finite number
    AL_PROMQL_NO_DATA,              // empty vector, NaN or ±Inf: missing evidence
    AL_PROMQL_ERROR                 // the query failed; the reason is in error
} al_promql_status_t;

//  Values of the template variables; NULL = not known (a template using it fails).
typedef struct {
    const char *service;            // {{service}}
    const char *environment;        // {{environment}}
    const char *version;            // {{version}}
    const char *instance;           // {{instance}}
} al_promql_labels_t;

typedef struct _al_promql_t al_promql_t;

//  A client of the Prometheus at base_url ("http://127.0.0.1:9090", a path prefix is
//  kept: "https://example.org/prometheus"), each request bounded by timeout_ms (> 0).
//  NULL with the reason in error for a URL that is not http(s), holds credentials, a
//  query or a fragment, or for libcurl failing to initialise.
al_promql_t *al_promql_new (const char *base_url, int timeout_ms, char *error, size_t error_size);
//  NULL-safe; sets *self_p to NULL.
void al_promql_destroy (al_promql_t **self_p);
//  The base URL as given (without a trailing slash). Borrowed.
const char *al_promql_url (const al_promql_t *self);

//  "requests_per_second", "error_ratio", "latency_p50_ms", "latency_p99_ms",
//  "cpu_percent", "memory_percent" for 0 .. AL_PROMQL_SIGNALS - 1, else NULL.
const char *al_promql_signal_name (int signal);

//  Expand {{service}} {{environment}} {{version}} {{instance}} in a PromQL template.
//  A value may only stand inside a string literal ("...", '...' or `...`) and is
//  escaped for that literal (backslash, the quote, newline and other control bytes),
//  so no label value can change the query's meaning; a raw `...` literal cannot
//  escape, so a value holding a backquote there is refused. Errors: an unknown
//  {{name}}, an unclosed {{, a variable outside a string literal, a variable whose
//  value is NULL. Returns a new string (caller frees) or NULL with the reason.
char *al_promql_expand (const char *template_text, const al_promql_labels_t *labels,
                        char *error, size_t error_size);

//  Parse a body of the instant query API. OK with *value set, NO_DATA (*value NaN),
//  or ERROR with the reason ("status error: bad_data: parse error ...", "3 series:
//  aggregate the query to one", "not JSON: ..."). Pure: no I/O, any bytes accepted.
al_promql_status_t al_promql_parse_response (const char *body, size_t size, double *value,
                                             char *error, size_t error_size);

//  One instant query (already expanded). *value is NaN unless OK.
al_promql_status_t al_promql_query (al_promql_t *self, const char *query, double *value,
                                    char *error, size_t error_size);

//  Every signal at once: queries [i] NULL (not configured) gives NaN without a request;
//  others are expanded with labels and run concurrently. values [i] is the answer, or
//  NaN for no data, not configured, or an error. statuses (MAY be NULL) gets each
//  signal's status (NO_DATA when not configured). Returns how many queries failed
//  (expansion or query errors), with the first failure's reason in error, which names
//  the signal: "prometheus http://...: error_ratio: connection refused".
int al_promql_sample (al_promql_t *self, const char *const queries [AL_PROMQL_SIGNALS],
                      const al_promql_labels_t *labels, double values [AL_PROMQL_SIGNALS],
                      al_promql_status_t statuses [AL_PROMQL_SIGNALS],
                      char *error, size_t error_size);

#ifdef __cplusplus
}
#endif

#endif
