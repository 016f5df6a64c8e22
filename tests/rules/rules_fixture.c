/*  rules_fixture.c: the soak-rule thresholds and a healthy sample. See rules_fixture.h. */
#include "rules_fixture.h"

al_policy_thresholds_t
rf_thresholds (void)
{
    al_policy_thresholds_t thresholds = {
        .health_check_failures_more_than = 3,
        .error_rate_increase_more_than_points = 5,
        .latency_p99_more_than_baseline_factor = 2.0,
        .cpu_percent_more_than = 80,
        .memory_percent_more_than = 80,
        .investigate_error_rate_percent_more_than = 1,
        .liveness_path = "/healthz",
        .readiness_path = "/readyz",
        .health_interval_ms = 10000,
        .health_timeout_ms = 2000,
    };
    return thresholds;
}

Airlock__SoakSignal
rf_sample (const char *service, uint64_t sequence, bool baseline)
{
    Airlock__SoakSignal sample;
    airlock__soak_signal__init (&sample);
    sample.service = (char *) service;
    sample.sequence = sequence;
    sample.baseline = baseline;
    sample.requests_per_second = 20;
    sample.error_ratio = 0.002;
    sample.latency_p50_ms = 20;
    sample.latency_p99_ms = 100;
    sample.cpu_percent = 30;
    sample.memory_percent = 40;
    sample.instances_up = 3;
    sample.instances_total = 3;
    return sample;
}
