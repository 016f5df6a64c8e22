/*  test_signals.c: tests of the golden signals computed from successive scrapes.

    Each test writes expositions as the demo service would (request counter per status
    code, latency histogram, CPU and memory gauges), feeds them to an al_signals_t at
    chosen times and checks the sample: rate from counter deltas, counter resets, error
    ratio, p50/p99 over the window's bucket increases, failed scrapes as failed health
    checks, missing and stale instances, and the copy into a SoakSignal.
*/
#include "deploy/al_signals.h"
#include "deploy/al_rules.h"
#include "proto/al_codec.h"
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#define S_BOUNDS 4
static const char *s_le [S_BOUNDS] = { "0.1", "0.5", "1", "+Inf" };

typedef struct {
    double ok;                      // http_requests_total{code="200"}
    double errors;                  // http_requests_total{code="500"}; < 0: series absent
    double buckets [S_BOUNDS];      // cumulative; all 0: the histogram counts nothing
    double cpu;                     // < 0: gauge absent
    double memory;
} s_scrape_t;

static al_metrics_t *
s_metrics (const s_scrape_t *scrape)
{
    char text [4096];
    char *end = text;
    end += sprintf (end, "# TYPE http_requests_total counter\n");
    end += sprintf (end, "http_requests_total{code=\"200\",method=\"get\"} %.17g\n", scrape->ok);
    if (scrape->errors >= 0)
        end += sprintf (end, "http_requests_total{code=\"500\",method=\"get\"} %.17g\n", scrape->errors);
    end += sprintf (end, "# TYPE http_request_duration_seconds histogram\n");
    for (int i = 0; i < S_BOUNDS; i++)
        end += sprintf (end, "http_request_duration_seconds_bucket{le=\"%s\"} %.17g\n",
                        s_le [i], scrape->buckets [i]);
    end += sprintf (end, "http_request_duration_seconds_count %.17g\n", scrape->buckets [S_BOUNDS - 1]);
    if (scrape->cpu >= 0)
        end += sprintf (end, "# TYPE demo_service_cpu_percent gauge\ndemo_service_cpu_percent %.17g\n",
                        scrape->cpu);
    if (scrape->memory >= 0)
        end += sprintf (end, "demo_service_memory_percent %.17g\n", scrape->memory);
    char error [256] = "";
    al_metrics_t *metrics = al_metrics_parse (text, (size_t) (end - text), NULL, error, sizeof error);
    if (!metrics)
        fail_msg ("fixture does not parse: %s\n%s", error, text);
    return metrics;
}

static void
s_scrape (al_signals_t *signals, const char *instance, int64_t at_ms, const s_scrape_t *scrape)
{
    al_metrics_t *metrics = s_metrics (scrape);
    char error [256] = "";
    if (al_signals_scrape_ok (signals, instance, at_ms, &metrics, error, sizeof error))
        fail_msg ("scrape refused: %s", error);
    assert_null (metrics);
}

static al_signals_t *
s_signals (const char *instance, ...)
{
    //  These fixtures carry percent gauges (the demo-only ones): the standard names'
    //  CPU rate and memory against a limit are tested on their own below.
    al_signals_config_t config;
    al_signals_config_default (&config);
    config.cpu_kind = AL_SIGNALS_CPU_PERCENT_GAUGE;
    config.cpu_metric = "demo_service_cpu_percent";
    config.memory_kind = AL_SIGNALS_MEMORY_PERCENT_GAUGE;
    config.memory_metric = "demo_service_memory_percent";
    al_signals_t *signals = al_signals_new ("demo", "staging", &config);
    assert_non_null (signals);
    va_list args;
    va_start (args, instance);
    for (const char *name = instance; name; name = va_arg (args, const char *))
        assert_int_equal (al_signals_add_instance (signals, name), 0);
    va_end (args);
    return signals;
}

static void
s_assert_near (double got, double expected)
{
    if (!(fabs (got - expected) <= 1e-9 * (fabs (expected) + 1)))
        fail_msg ("expected %.17g, got %.17g", expected, got);
}

static void
test_rate_from_two_scrapes (void **state)
{
    (void) state;
    al_signals_t *signals = s_signals ("a", NULL);
    al_signals_sample_t sample;
    s_scrape (signals, "a", 1000, &(s_scrape_t) { 100, 0, { 0, 0, 0, 0 }, 10, 20 });
    //  One scrape: up, saturation known, no window yet.
    al_signals_sample (signals, 1000, true, &sample);
    assert_string_equal (sample.service, "demo");
    assert_int_equal (sample.sequence, 1);
    assert_true (sample.baseline);
    assert_int_equal (sample.instances_up, 1);
    assert_int_equal (sample.instances_total, 1);
    s_assert_near (sample.requests_per_second, 0);
    s_assert_near (sample.cpu_percent, 10);
    s_assert_near (sample.memory_percent, 20);
    assert_true (isnan (sample.latency_p99_ms));

    s_scrape (signals, "a", 11000, &(s_scrape_t) { 150, 0, { 0, 0, 0, 0 }, 30, 40 });
    al_signals_sample (signals, 11000, false, &sample);
    assert_int_equal (sample.sequence, 2);
    assert_false (sample.baseline);
    //  50 requests in 10 s.
    s_assert_near (sample.requests_per_second, 5);
    s_assert_near (sample.error_ratio, 0);
    s_assert_near (sample.cpu_percent, 30);
    s_assert_near (sample.memory_percent, 40);
    al_signals_destroy (&signals);
    assert_null (signals);
}

static void
test_counter_reset (void **state)
{
    (void) state;
    al_signals_t *signals = s_signals ("a", NULL);
    al_signals_sample_t sample;
    s_scrape (signals, "a", 0, &(s_scrape_t) { 1000, 100, { 0, 0, 0, 0 }, 1, 1 });
    //  The process restarted: counters start again from 0 and are now 30 and 10.
    s_scrape (signals, "a", 10000, &(s_scrape_t) { 30, 10, { 0, 0, 0, 0 }, 1, 1 });
    al_signals_sample (signals, 10000, false, &sample);
    s_assert_near (sample.requests_per_second, 4);
    s_assert_near (sample.error_ratio, 0.25);
    al_signals_destroy (&signals);
}

static void
test_error_ratio (void **state)
{
    (void) state;
    al_signals_t *signals = s_signals ("a", NULL);
    al_signals_sample_t sample;
    s_scrape (signals, "a", 0, &(s_scrape_t) { 100, 10, { 0, 0, 0, 0 }, 1, 1 });
    s_scrape (signals, "a", 5000, &(s_scrape_t) { 180, 30, { 0, 0, 0, 0 }, 1, 1 });
    al_signals_sample (signals, 5000, false, &sample);
    //  80 good + 20 errors in the window; the all-time ratio would be 30/210.
    s_assert_near (sample.requests_per_second, 20);
    s_assert_near (sample.error_ratio, 0.2);
    //  No traffic in the next window: ratio 0, not NaN.
    s_scrape (signals, "a", 10000, &(s_scrape_t) { 180, 30, { 0, 0, 0, 0 }, 1, 1 });
    al_signals_sample (signals, 10000, false, &sample);
    s_assert_near (sample.requests_per_second, 0);
    s_assert_near (sample.error_ratio, 0);
    al_signals_destroy (&signals);
}

//  The sample of some instances only: the old version's errors are not the new one's.
static void
test_sample_of_some_instances (void **state)
{
    (void) state;
    al_signals_t *signals = s_signals ("old-1", "new-1", NULL);
    al_signals_sample_t sample;
    s_scrape (signals, "old-1", 0, &(s_scrape_t) { 100, 0, { 0, 0, 0, 0 }, 1, 1 });
    s_scrape (signals, "new-1", 0, &(s_scrape_t) { 100, 0, { 0, 0, 0, 0 }, 70, 1 });
    s_scrape (signals, "old-1", 5000, &(s_scrape_t) { 100, 50, { 0, 0, 0, 0 }, 1, 1 });
    s_scrape (signals, "new-1", 5000, &(s_scrape_t) { 150, 0, { 0, 0, 0, 0 }, 70, 1 });
    al_signals_sample (signals, 5000, false, &sample);
    s_assert_near (sample.error_ratio, 0.5);
    assert_int_equal (sample.instances_total, 2);
    assert_int_equal (sample.sequence, 1);
    const char *fresh [] = { "new-1", "unknown" };
    al_signals_sample_of (signals, 5000, false, fresh, 2, &sample);
    assert_int_equal (sample.sequence, 2);
    assert_int_equal (sample.instances_total, 1);
    assert_int_equal (sample.instances_up, 1);
    s_assert_near (sample.error_ratio, 0);
    s_assert_near (sample.requests_per_second, 10);
    s_assert_near (sample.cpu_percent, 70);
    const char *stale [] = { "old-1" };
    al_signals_sample_of (signals, 5000, false, stale, 1, &sample);
    s_assert_near (sample.error_ratio, 1);
    s_assert_near (sample.cpu_percent, 1);
    //  None selected: nothing up, no evidence.
    al_signals_sample_of (signals, 5000, false, NULL, 0, &sample);
    assert_int_equal (sample.instances_total, 0);
    assert_int_equal (sample.instances_up, 0);
    assert_true (isnan (sample.cpu_percent));
    al_signals_destroy (&signals);
}

static void
test_new_error_series_counts (void **state)
{
    (void) state;
    al_signals_t *signals = s_signals ("a", NULL);
    al_signals_sample_t sample;
    //  No 500 series until the first error happens.
    s_scrape (signals, "a", 0, &(s_scrape_t) { 100, -1, { 0, 0, 0, 0 }, 1, 1 });
    s_scrape (signals, "a", 1000, &(s_scrape_t) { 105, 5, { 0, 0, 0, 0 }, 1, 1 });
    al_signals_sample (signals, 1000, false, &sample);
    s_assert_near (sample.requests_per_second, 10);
    s_assert_near (sample.error_ratio, 0.5);
    al_signals_destroy (&signals);
}

static void
test_latency_from_bucket_deltas (void **state)
{
    (void) state;
    al_signals_t *signals = s_signals ("a", NULL);
    al_signals_sample_t sample;
    //  All time, 10000 fast requests; in the window 100 more, 90 of them in (0.5, 1]
    //  and 10 above 1 s.
    s_scrape (signals, "a", 0, &(s_scrape_t) { 10000, 0, { 10000, 10000, 10000, 10000 }, 1, 1 });
    s_scrape (signals, "a", 10000, &(s_scrape_t) { 10100, 0, { 10000, 10000, 10090, 10100 }, 1, 1 });
    al_signals_sample (signals, 10000, false, &sample);
    //  Window buckets 0.1:0 0.5:0 1:90 +Inf:100. p99: rank 99 is in +Inf -> 1 s.
    s_assert_near (sample.latency_p99_ms, 1000);
    //  p50: rank 50 in (0.5, 1]: 0.5 + 0.5 * 50 / 90 s.
    s_assert_near (sample.latency_p50_ms, (0.5 + 0.5 * 50.0 / 90.0) * 1000);
    //  (Over all time p99 would be 0.1 * 9999/10000 s: the window is what counts.)

    //  A reset of the histogram: the new counts are the increase.
    s_scrape (signals, "a", 20000, &(s_scrape_t) { 10, 0, { 10, 10, 10, 10 }, 1, 1 });
    al_signals_sample (signals, 20000, false, &sample);
    s_assert_near (sample.latency_p99_ms, 0.1 * 9.9 / 10 * 1000);
    al_signals_destroy (&signals);
}

static void
test_failed_scrapes (void **state)
{
    (void) state;
    al_signals_t *signals = s_signals ("a", "b", NULL);
    al_signals_sample_t sample;
    char error [256];
    s_scrape (signals, "a", 0, &(s_scrape_t) { 0, 0, { 0, 0, 0, 0 }, 1, 1 });
    s_scrape (signals, "b", 0, &(s_scrape_t) { 0, 0, { 0, 0, 0, 0 }, 1, 1 });
    for (int i = 1; i <= 3; i++) {
        assert_int_equal (al_signals_scrape_failed (signals, "b", i * 1000, "connection refused",
                                                    error, sizeof error), 0);
        s_scrape (signals, "a", i * 1000, &(s_scrape_t) { i * 10, 0, { 0, 0, 0, 0 }, 1, 1 });
        al_signals_sample (signals, i * 1000, false, &sample);
        assert_int_equal (sample.consecutive_health_failures, i);
        assert_int_equal (sample.instances_up, 1);
        assert_int_equal (sample.instances_failing, 1);
        assert_int_equal (sample.instances_total, 2);
    }
    al_signals_instance_t instance;
    assert_true (al_signals_instance_at (signals, 1, 3000, &instance));
    assert_string_equal (instance.name, "b");
    assert_false (instance.up);
    assert_false (instance.missing);
    assert_int_equal (instance.consecutive_failures, 3);
    assert_string_equal (instance.last_error, "connection refused");
    //  A good scrape resets the count; b's window spans its failures (0 -> 4 s).
    s_scrape (signals, "b", 4000, &(s_scrape_t) { 40, 0, { 0, 0, 0, 0 }, 1, 1 });
    al_signals_sample (signals, 4000, false, &sample);
    assert_int_equal (sample.consecutive_health_failures, 0);
    assert_int_equal (sample.instances_up, 2);
    //  a: 10 requests in 1 s; b: 40 in 4 s.
    s_assert_near (sample.requests_per_second, 20);
    assert_true (al_signals_instance_at (signals, 1, 4000, &instance));
    assert_true (instance.up);
    assert_null (instance.last_error);
    assert_false (al_signals_instance_at (signals, 2, 4000, &instance));
    al_signals_destroy (&signals);
}

static void
test_missing_instance (void **state)
{
    (void) state;
    al_signals_t *signals = s_signals ("a", "b", "c", NULL);
    al_signals_sample_t sample;
    s_scrape (signals, "a", 0, &(s_scrape_t) { 0, 0, { 0, 0, 0, 0 }, 50, 60 });
    s_scrape (signals, "b", 0, &(s_scrape_t) { 0, 0, { 0, 0, 0, 0 }, 90, 10 });
    s_scrape (signals, "a", 10000, &(s_scrape_t) { 100, 0, { 0, 0, 0, 0 }, 50, 60 });
    //  c never reported: missing. The highest instance gives saturation.
    al_signals_sample (signals, 10000, false, &sample);
    assert_int_equal (sample.instances_total, 3);
    assert_int_equal (sample.instances_up, 2);
    assert_int_equal (sample.instances_missing, 1);
    assert_int_equal (sample.consecutive_health_failures, 0);
    s_assert_near (sample.cpu_percent, 90);
    s_assert_near (sample.memory_percent, 60);
    s_assert_near (sample.requests_per_second, 10);
    //  Later b falls silent for longer than stale_after_ms (30 s): missing too, and its
    //  saturation no longer counts.
    s_scrape (signals, "a", 35000, &(s_scrape_t) { 100, 0, { 0, 0, 0, 0 }, 50, 60 });
    al_signals_sample (signals, 35000, false, &sample);
    assert_int_equal (sample.instances_up, 1);
    assert_int_equal (sample.instances_missing, 2);
    s_assert_near (sample.cpu_percent, 50);
    al_signals_instance_t instance;
    assert_true (al_signals_instance_at (signals, 1, 35000, &instance));
    assert_true (instance.missing);
    assert_int_equal (instance.last_report_ms, 0);
    //  Removing c: no longer expected.
    assert_int_equal (al_signals_remove_instance (signals, "c"), 0);
    assert_int_equal (al_signals_remove_instance (signals, "c"), -1);
    al_signals_sample (signals, 35000, false, &sample);
    assert_int_equal (sample.instances_total, 2);
    al_signals_destroy (&signals);
}

static void
test_no_gauges_no_instances (void **state)
{
    (void) state;
    al_signals_t *signals = s_signals (NULL);
    al_signals_sample_t sample;
    al_signals_sample (signals, 0, false, &sample);
    assert_int_equal (sample.instances_total, 0);
    assert_true (isnan (sample.cpu_percent));
    assert_true (isnan (sample.latency_p50_ms));
    assert_int_equal (al_signals_add_instance (signals, "a"), 0);
    assert_int_equal (al_signals_add_instance (signals, "a"), -1);
    s_scrape (signals, "a", 0, &(s_scrape_t) { 0, 0, { 0, 0, 0, 0 }, -1, -1 });
    al_signals_sample (signals, 0, false, &sample);
    assert_int_equal (sample.instances_up, 1);
    assert_true (isnan (sample.cpu_percent));
    assert_true (isnan (sample.memory_percent));
    al_signals_destroy (&signals);
}

static void
test_refused_reports (void **state)
{
    (void) state;
    al_signals_t *signals = s_signals ("a", NULL);
    char error [256];
    al_metrics_t *metrics = s_metrics (&(s_scrape_t) { 0, 0, { 0, 0, 0, 0 }, 1, 1 });
    //  Unknown instance: refused, and the metrics are still taken (and freed).
    assert_int_equal (al_signals_scrape_ok (signals, "zz", 0, &metrics, error, sizeof error), -1);
    assert_null (metrics);
    assert_string_equal (error, "zz: not an instance of demo");
    s_scrape (signals, "a", 5000, &(s_scrape_t) { 0, 0, { 0, 0, 0, 0 }, 1, 1 });
    metrics = s_metrics (&(s_scrape_t) { 0, 0, { 0, 0, 0, 0 }, 1, 1 });
    assert_int_equal (al_signals_scrape_ok (signals, "a", 5000, &metrics, error, sizeof error), -1);
    assert_null (metrics);
    assert_string_equal (error, "a: scrape time 5000 is not after the previous report (5000)");
    assert_int_equal (al_signals_scrape_failed (signals, "a", 4000, NULL, error, sizeof error), -1);
    assert_int_equal (al_signals_scrape_failed (signals, "b", 6000, NULL, error, sizeof error), -1);
    //  An invalid configuration is refused.
    al_signals_config_t config;
    al_signals_config_default (&config);
    config.stale_after_ms = 0;
    assert_null (al_signals_new ("demo", "staging", &config));
    al_signals_config_default (&config);
    config.requests_metric = "";
    assert_null (al_signals_new ("demo", "staging", &config));
    al_signals_destroy (&signals);
}

static void
test_configured_names_and_proto (void **state)
{
    (void) state;
    al_signals_config_t config;
    al_signals_config_default (&config);
    config.requests_metric = "app_requests_total";
    config.status_label = "status";
    config.latency_metric = "app_latency_ms";
    config.latency_to_ms = 1;
    config.cpu_kind = AL_SIGNALS_CPU_PERCENT_GAUGE;
    config.cpu_metric = "app_cpu";
    config.memory_kind = AL_SIGNALS_MEMORY_PERCENT_GAUGE;
    config.memory_metric = "app_mem";
    al_signals_t *signals = al_signals_new ("shop", "production", &config);
    assert_non_null (signals);
    assert_string_equal (al_signals_service (signals), "shop");
    assert_string_equal (al_signals_environment (signals), "production");
    assert_int_equal (al_signals_add_instance (signals, "x"), 0);
    const char *first =
        "app_requests_total{status=\"200\"} 10\n"
        "app_requests_total{status=\"503\"} 0\n"
        "# TYPE app_latency_ms histogram\n"
        "app_latency_ms_bucket{le=\"10\"} 0\napp_latency_ms_bucket{le=\"+Inf\"} 0\napp_latency_ms_count 0\n"
        "app_cpu{core=\"0\"} 20\napp_cpu{core=\"1\"} 85\napp_mem 33\n";
    const char *second =
        "app_requests_total{status=\"200\"} 16\n"
        "app_requests_total{status=\"503\"} 2\n"
        "# TYPE app_latency_ms histogram\n"
        "app_latency_ms_bucket{le=\"10\"} 8\napp_latency_ms_bucket{le=\"+Inf\"} 8\napp_latency_ms_count 8\n"
        "app_cpu{core=\"0\"} 20\napp_cpu{core=\"1\"} 85\napp_mem 33\n";
    char error [256] = "";
    al_metrics_t *metrics = al_metrics_parse (first, strlen (first), NULL, error, sizeof error);
    assert_non_null (metrics);
    assert_int_equal (al_signals_scrape_ok (signals, "x", 0, &metrics, error, sizeof error), 0);
    metrics = al_metrics_parse (second, strlen (second), NULL, error, sizeof error);
    assert_non_null (metrics);
    assert_int_equal (al_signals_scrape_ok (signals, "x", 2000, &metrics, error, sizeof error), 0);
    al_signals_sample_t sample;
    al_signals_sample (signals, 2000, true, &sample);
    s_assert_near (sample.requests_per_second, 4);
    s_assert_near (sample.error_ratio, 0.25);
    //  p99: rank 7.92 in (0, 10], interpolated from 0; already in ms.
    s_assert_near (sample.latency_p99_ms, 10 * 7.92 / 8);
    s_assert_near (sample.cpu_percent, 85);

    Airlock__SoakSignal message;
    airlock__soak_signal__init (&message);
    al_signals_to_proto (&sample, &message);
    assert_string_equal (message.service, "shop");
    assert_true (message.sequence == sample.sequence);
    assert_true (message.requests_per_second == sample.requests_per_second);
    assert_true (message.error_ratio == sample.error_ratio);
    assert_true (message.latency_p50_ms == sample.latency_p50_ms);
    assert_true (message.latency_p99_ms == sample.latency_p99_ms);
    assert_true (message.cpu_percent == sample.cpu_percent);
    assert_true (message.memory_percent == sample.memory_percent);
    assert_int_equal (message.instances_up, 1);
    assert_int_equal (message.instances_total, 1);
    assert_int_equal (message.consecutive_health_failures, 0);
    assert_true (message.baseline);
    assert_int_equal (message.no_evidence, 0);
    assert_string_equal (message.source, "scrape");
    assert_string_equal (message.memory_basis, "gauge");
    assert_int_equal (message.not_required, 0);

    //  No evidence never travels as NaN: the field is 0 and its bit is set, and the
    //  envelope then passes the codec.
    sample.latency_p50_ms = sample.latency_p99_ms = NAN;
    sample.memory_percent = NAN;
    airlock__soak_signal__init (&message);
    al_signals_to_proto (&sample, &message);
    assert_int_equal (message.no_evidence, AL_SIGNALS_NO_LATENCY | AL_SIGNALS_NO_MEMORY);
    assert_true (message.latency_p99_ms == 0 && message.memory_percent == 0);
    assert_true (message.cpu_percent == sample.cpu_percent);
    al_envelope_t envelope = AIRLOCK__ENVELOPE__INIT;
    envelope.message_id = (char *) "m-1";
    envelope.environment = AIRLOCK__ENVIRONMENT__ENV_STAGING;
    envelope.body_case = AIRLOCK__ENVELOPE__BODY_SOAK_SIGNAL;
    envelope.soak_signal = &message;
    char error_text [256];
    assert_int_equal (al_codec_validate (&envelope, error_text, sizeof error_text), AL_CODEC_OK);
    al_signals_destroy (&signals);
}

//  One exposition of an official client library: process collector and HTTP metrics.
static al_metrics_t *
s_standard (const char *status_label, double ok, double errors, double too_many, double cpu_seconds,
            double resident_bytes)
{
    char text [4096];
    char *end = text;
    end += sprintf (end, "# TYPE http_requests_total counter\n");
    end += sprintf (end, "http_requests_total{%s=\"200\",method=\"GET\"} %.17g\n", status_label, ok);
    end += sprintf (end, "http_requests_total{%s=\"503\",method=\"GET\"} %.17g\n", status_label, errors);
    end += sprintf (end, "http_requests_total{%s=\"429\",method=\"GET\"} %.17g\n", status_label, too_many);
    end += sprintf (end, "# TYPE http_request_duration_seconds histogram\n"
                         "http_request_duration_seconds_bucket{le=\"0.1\"} %.17g\n"
                         "http_request_duration_seconds_bucket{le=\"+Inf\"} %.17g\n"
                         "http_request_duration_seconds_count %.17g\n", ok, ok, ok);
    if (cpu_seconds >= 0)
        end += sprintf (end, "# TYPE process_cpu_seconds_total counter\n"
                             "process_cpu_seconds_total %.17g\n", cpu_seconds);
    if (resident_bytes >= 0)
        end += sprintf (end, "# TYPE process_resident_memory_bytes gauge\n"
                             "process_resident_memory_bytes %.17g\n", resident_bytes);
    char error [256] = "";
    al_metrics_t *metrics = al_metrics_parse (text, (size_t) (end - text), NULL, error, sizeof error);
    if (!metrics)
        fail_msg ("fixture does not parse: %s\n%s", error, text);
    return metrics;
}

static void
s_feed (al_signals_t *signals, const char *instance, int64_t at_ms, al_metrics_t *metrics)
{
    char error [256] = "";
    if (al_signals_scrape_ok (signals, instance, at_ms, &metrics, error, sizeof error))
        fail_msg ("scrape refused: %s", error);
}

//  No configuration: the official client libraries' names. CPU is the rate of
//  process_cpu_seconds_total (NaN after the first scrape: a rate needs two), one busy
//  core 100%; memory is resident bytes over the machine's MemTotal; errors are 5xx of
//  "code", else of "status".
static void
test_standard_names_by_default (void **state)
{
    (void) state;
    al_signals_config_t config;
    al_signals_config_default (&config);
    assert_string_equal (config.cpu_metric, "process_cpu_seconds_total");
    assert_string_equal (config.memory_metric, "process_resident_memory_bytes");
    config.machine_memory_bytes = 1000000;      // a known machine
    al_signals_t *signals = al_signals_new ("py", "staging", &config);
    assert_non_null (signals);
    assert_int_equal (al_signals_add_instance (signals, "a"), 0);
    s_feed (signals, "a", 10000, s_standard ("code", 100, 0, 0, 5.0, 100000));
    al_signals_sample_t sample;
    al_signals_sample (signals, 10000, false, &sample);
    assert_true (isnan (sample.cpu_percent));           // first scrape: no rate yet
    s_assert_near (sample.memory_percent, 10);
    assert_string_equal (sample.memory_basis, "machine");
    Airlock__SoakSignal message;
    airlock__soak_signal__init (&message);
    al_signals_to_proto (&sample, &message);
    assert_true (message.no_evidence & AL_SIGNALS_NO_CPU);
    assert_string_equal (message.memory_basis, "machine");
    assert_string_equal (message.source, "scrape");
    //  2 s later: 1.5 CPU seconds used (75% of one core), 10 of 110 requests 5xx, 429s
    //  are not errors by default.
    s_feed (signals, "a", 12000, s_standard ("code", 190, 10, 10, 6.5, 300000));
    al_signals_sample (signals, 12000, false, &sample);
    s_assert_near (sample.cpu_percent, 75);
    s_assert_near (sample.memory_percent, 30);
    s_assert_near (sample.error_ratio, 10.0 / 110);
    s_assert_near (sample.requests_per_second, 55);
    //  A restart resets the counter: the new process's seconds are its usage.
    s_feed (signals, "a", 14000, s_standard ("code", 200, 10, 10, 0.2, 300000));
    al_signals_sample (signals, 14000, false, &sample);
    s_assert_near (sample.cpu_percent, 10);
    al_signals_destroy (&signals);

    //  "status" when the series carry no "code"; more than one core busy is above 100%.
    al_signals_config_default (&config);
    signals = al_signals_new ("py", "staging", &config);
    assert_non_null (signals);
    assert_int_equal (al_signals_add_instance (signals, "a"), 0);
    s_feed (signals, "a", 0, s_standard ("status", 0, 0, 0, 1, -1));
    s_feed (signals, "a", 1000, s_standard ("status", 30, 10, 0, 3, -1));
    al_signals_sample (signals, 1000, false, &sample);
    s_assert_near (sample.error_ratio, 0.25);
    s_assert_near (sample.cpu_percent, 200);
    assert_true (isnan (sample.memory_percent));         // gauge absent
    assert_string_equal (sample.memory_basis, "");
    al_signals_destroy (&signals);
}

//  services.yaml's limits: CPU as a share of cpu_cores, memory of resources.memory,
//  else of the instance's cgroup limit; error statuses as configured; not_required.
static void
test_limits_and_mapping (void **state)
{
    (void) state;
    static const char *const statuses [] = { "5xx", "429", NULL };
    al_signals_config_t config;
    al_signals_config_default (&config);
    config.cpu_limit_cores = 0.5;
    config.memory_limit_bytes = 200000;
    config.error_statuses = statuses;
    config.status_label = "code";
    config.not_required = AL_SIGNALS_NO_LATENCY | AL_SIGNALS_NO_TRAFFIC;
    al_signals_t *signals = al_signals_new ("py", "staging", &config);
    assert_non_null (signals);
    assert_int_equal (al_signals_add_instance (signals, "a"), 0);
    s_feed (signals, "a", 0, s_standard ("code", 0, 0, 0, 1, 50000));
    s_feed (signals, "a", 2000, s_standard ("code", 80, 10, 10, 1.5, 50000));
    al_signals_sample_t sample;
    al_signals_sample (signals, 2000, false, &sample);
    //  0.5 s of CPU in 2 s is 25% of a core, 50% of half a core.
    s_assert_near (sample.cpu_percent, 50);
    s_assert_near (sample.memory_percent, 25);
    assert_string_equal (sample.memory_basis, "services.yaml");
    s_assert_near (sample.error_ratio, 0.2);
    Airlock__SoakSignal message;
    airlock__soak_signal__init (&message);
    al_signals_to_proto (&sample, &message);
    assert_int_equal (message.not_required, AL_SIGNALS_NO_LATENCY | AL_SIGNALS_NO_TRAFFIC);
    assert_string_equal (message.memory_basis, "services.yaml");
    al_signals_destroy (&signals);

    //  Without resources.memory: the instance's own limit (the monitor reads its cgroup).
    al_signals_config_default (&config);
    config.machine_memory_bytes = 1000000000;
    signals = al_signals_new ("py", "staging", &config);
    assert_non_null (signals);
    assert_int_equal (al_signals_add_instance (signals, "a"), 0);
    assert_int_equal (al_signals_add_instance (signals, "b"), 0);
    assert_int_equal (al_signals_set_memory_limit (signals, "a", 400000, "cgroup"), 0);
    assert_int_equal (al_signals_set_memory_limit (signals, "nobody", 1, "cgroup"), -1);
    s_feed (signals, "a", 0, s_standard ("code", 0, 0, 0, 1, 100000));
    s_feed (signals, "b", 0, s_standard ("code", 0, 0, 0, 1, 100000));
    al_signals_sample (signals, 0, false, &sample);
    s_assert_near (sample.memory_percent, 25);           // a's 25% beats b's 0.01%
    assert_string_equal (sample.memory_basis, "cgroup");
    al_signals_destroy (&signals);

    //  The host's own numbers are read: MemTotal, and a cgroup limit that is a number or 0.
    assert_true (al_signals_machine_memory () > 0);
    assert_int_equal (al_signals_cgroup_memory_limit (-1), 0);
    uint64_t own = al_signals_cgroup_memory_limit ((int) getpid ());
    FILE *file = fopen ("/proc/self/cgroup", "r");
    assert_non_null (file);
    char line [1024] = "";
    assert_non_null (fgets (line, sizeof line, file));
    fclose (file);
    if (strncmp (line, "0::", 3) == 0) {
        line [strcspn (line, "\n")] = 0;
        char path [1200];
        snprintf (path, sizeof path, "/sys/fs/cgroup%s/memory.max", line + 3);
        FILE *max = fopen (path, "r");
        char value [64] = "";
        if (max) {
            if (!fgets (value, sizeof value, max))
                value [0] = 0;
            fclose (max);
        }
        //  When the process's own cgroup sets a number, the limit read is at most that
        //  (an ancestor may be tighter).
        if (value [0] >= '0' && value [0] <= '9')
            assert_true (own > 0 && own <= strtoull (value, NULL, 10));
    }
}

//  A new instance's first scrape gives no CPU evidence (a rate needs two scrapes): the
//  rules' grace period covers it, so a healthy instance fed to the rules from its first
//  scrape is not rolled back; a service that never shows its CPU counter is (missing
//  evidence fails closed), so the grace is what saves the first, not a blind eye.
static void
test_first_scrape_is_not_a_rollback (void **state)
{
    (void) state;
    al_policy_thresholds_t thresholds = {
        .health_check_failures_more_than = 3, .error_rate_increase_more_than_points = 5,
        .latency_p99_more_than_baseline_factor = 2.0, .latency_p99_floor_ms = 25,
        .cpu_percent_more_than = 80, .memory_percent_more_than = 80,
        .investigate_error_rate_percent_more_than = 1,
        .liveness_path = "/healthz", .readiness_path = "/readyz",
        .health_interval_ms = 10000, .health_timeout_ms = 2000,
    };
    al_baseline_t baseline = { 0, 50, 5 };
    for (int with_cpu = 1; with_cpu >= 0; with_cpu--) {
        al_signals_t *signals = al_signals_new ("py", "staging", NULL);
        assert_non_null (signals);
        assert_int_equal (al_signals_add_instance (signals, "new"), 0);
        al_rules_t *rules = al_rules_new (&thresholds, &baseline, 1000);
        assert_non_null (rules);
        al_rules_result_t verdict = { .verdict = AL_RULES_OK };
        int64_t at = 0;
        bool first_had_cpu = true;
        //  Every 250 ms for 5 s, as the monitor does: 20 requests, 5 ms of CPU each time.
        for (int i = 0; i < 20 && verdict.verdict == AL_RULES_OK; i++, at += 250) {
            s_feed (signals, "new", at, s_standard ("code", 20.0 * i, 0, 0, with_cpu? 1 + 0.005 * i: -1, 1e6));
            al_signals_sample_t sample;
            al_signals_sample (signals, at, false, &sample);
            if (i == 0)
                first_had_cpu = !isnan (sample.cpu_percent);
            Airlock__SoakSignal message;
            airlock__soak_signal__init (&message);
            al_signals_to_proto (&sample, &message);
            verdict = al_rules_feed (rules, &message, 0, at);
        }
        if (with_cpu) {
            assert_false (first_had_cpu);
            if (verdict.verdict != AL_RULES_OK)
                fail_msg ("a healthy new instance was judged %s: %s", verdict.rule, verdict.detail);
        }
        else {
            assert_int_equal (verdict.verdict, AL_RULES_BREACH);
            assert_string_equal (verdict.rule, "missing_evidence");
        }
        al_rules_destroy (&rules);
        al_signals_destroy (&signals);
    }
}

static void
s_write_file (const char *path, const char *text)
{
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fputs (text, file);
    fclose (file);
}

//  The cgroup v2 limit of a process: its cgroup's memory.max or an ancestor's, the lowest
//  number ("max" is none), in a cgroup tree made here.
static void
test_cgroup_memory_limit (void **state)
{
    (void) state;
    char root [64] = "/tmp/al-signals-cgroup-XXXXXX";
    assert_non_null (mkdtemp (root));
    char path [256], cgroup_file [256];
    snprintf (cgroup_file, sizeof cgroup_file, "%s/cgroup", root);
    snprintf (path, sizeof path, "%s/app.slice", root);
    assert_int_equal (mkdir (path, 0700), 0);
    snprintf (path, sizeof path, "%s/app.slice/svc.scope", root);
    assert_int_equal (mkdir (path, 0700), 0);
    s_write_file (cgroup_file, "1:name=systemd:/\n0::/app.slice/svc.scope\n");
    //  Nothing set anywhere: no limit.
    assert_int_equal (al_signals_cgroup_memory_limit_in (cgroup_file, root), 0);
    snprintf (path, sizeof path, "%s/app.slice/svc.scope/memory.max", root);
    s_write_file (path, "max\n");
    assert_int_equal (al_signals_cgroup_memory_limit_in (cgroup_file, root), 0);
    //  The parent's limit applies to its children.
    snprintf (path, sizeof path, "%s/app.slice/memory.max", root);
    s_write_file (path, "1073741824\n");
    assert_true (al_signals_cgroup_memory_limit_in (cgroup_file, root) == 1073741824u);
    //  The lowest wins.
    snprintf (path, sizeof path, "%s/app.slice/svc.scope/memory.max", root);
    s_write_file (path, "268435456\n");
    assert_true (al_signals_cgroup_memory_limit_in (cgroup_file, root) == 268435456u);
    //  No cgroup v2 line, a path that climbs out, no file: none.
    s_write_file (cgroup_file, "4:memory:/app.slice/svc.scope\n");
    assert_int_equal (al_signals_cgroup_memory_limit_in (cgroup_file, root), 0);
    s_write_file (cgroup_file, "0::/app.slice/../../etc\n");
    assert_int_equal (al_signals_cgroup_memory_limit_in (cgroup_file, root), 0);
    snprintf (path, sizeof path, "%s/none", root);
    assert_int_equal (al_signals_cgroup_memory_limit_in (path, root), 0);
    char command [128];
    snprintf (command, sizeof command, "rm -rf '%s'", root);
    assert_int_equal (system (command), 0);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_rate_from_two_scrapes),
        cmocka_unit_test (test_counter_reset),
        cmocka_unit_test (test_error_ratio),
        cmocka_unit_test (test_sample_of_some_instances),
        cmocka_unit_test (test_new_error_series_counts),
        cmocka_unit_test (test_latency_from_bucket_deltas),
        cmocka_unit_test (test_failed_scrapes),
        cmocka_unit_test (test_missing_instance),
        cmocka_unit_test (test_no_gauges_no_instances),
        cmocka_unit_test (test_refused_reports),
        cmocka_unit_test (test_configured_names_and_proto),
        cmocka_unit_test (test_standard_names_by_default),
        cmocka_unit_test (test_limits_and_mapping),
        cmocka_unit_test (test_first_scrape_is_not_a_rollback),
        cmocka_unit_test (test_cgroup_memory_limit),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
