/*  test_metrics.c: tests of the Prometheus text parser, its query helpers and
    al_histogram_quantile.

    A valid exposition with every type, escapes, comments and timestamps is parsed and
    checked field by field. Then one malformed or hostile input per rule must be
    refused with the expected "line N: ..." message (and nothing leaks: run under
    ASan). Quantiles are checked against values worked out by hand from Prometheus'
    bucketQuantile (promql/quantile.go).
*/
#include "deploy/al_metrics.h"
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static const char s_valid [] =
    "# A comment that is ignored, with UTF-8: é ✓\n"
    "#\n"
    "# HELP http_requests_total Total requests.\\nSecond line, a backslash \\\\ here.\n"
    "# TYPE http_requests_total counter\n"
    "http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n"
    "http_requests_total{code=\"500\",method=\"post\"} 3 1395066363000\n"
    "http_requests_total{method=\"get\",code=\"503\",path=\"C:\\\\dir \\\"q\\\"\\nx\"} 2\n"
    "\n"
    "# TYPE temperature gauge\n"
    "temperature -3.5\n"
    "temperature{room=\"a\",} NaN\n"
    "temperature { room = \"b\" } +Inf\n"
    "temperature{room=\"c\"} -Inf\n"
    "# HELP http_request_duration_seconds Request latency.\n"
    "# TYPE http_request_duration_seconds histogram\n"
    "http_request_duration_seconds_bucket{le=\"0.05\"} 24054\n"
    "http_request_duration_seconds_bucket{le=\"0.1\"} 33444\n"
    "http_request_duration_seconds_bucket{le=\"0.2\"} 100392\n"
    "http_request_duration_seconds_bucket{le=\"0.5\"} 129389\n"
    "http_request_duration_seconds_bucket{le=\"1\"} 133988\n"
    "http_request_duration_seconds_bucket{le=\"+Inf\"} 144320\n"
    "http_request_duration_seconds_sum 53423\n"
    "http_request_duration_seconds_count 144320\n"
    "# TYPE rpc_duration_seconds summary\n"
    "rpc_duration_seconds{quantile=\"0.01\"} 3102\n"
    "rpc_duration_seconds{quantile=\"0.5\"} 4773\n"
    "rpc_duration_seconds{quantile=\"0.99\"} 76656\n"
    "rpc_duration_seconds_sum 1.7560473e+07\n"
    "rpc_duration_seconds_count 2693\n"
    "  \tmetric_without_type\t12.47\t-5  \n";

static al_metrics_t *
s_parse_ok (const char *text)
{
    char error [256] = "";
    al_metrics_t *metrics = al_metrics_parse (text, strlen (text), NULL, error, sizeof error);
    if (!metrics)
        fail_msg ("unexpected parse error: %s", error);
    return metrics;
}

static void
test_valid_exposition (void **state)
{
    (void) state;
    al_metrics_t *metrics = s_parse_ok (s_valid);
    assert_int_equal (al_metrics_family_count (metrics), 5);
    assert_int_equal (al_metrics_sample_count (metrics), 21);

    const al_metric_family_t *requests = al_metrics_family_at (metrics, 0);
    assert_string_equal (requests->name, "http_requests_total");
    assert_int_equal (requests->type, AL_METRIC_COUNTER);
    assert_string_equal (requests->help, "Total requests.\nSecond line, a backslash \\ here.");
    assert_int_equal (requests->sample_count, 3);
    const al_metric_sample_t *sample = &requests->samples [0];
    assert_string_equal (sample->name, "http_requests_total");
    assert_int_equal (sample->label_count, 2);
    //  Labels come back sorted by name.
    assert_string_equal (sample->labels [0].name, "code");
    assert_string_equal (sample->labels [0].value, "200");
    assert_string_equal (sample->labels [1].name, "method");
    assert_true (sample->value == 1027);
    assert_true (sample->has_timestamp);
    assert_true (sample->timestamp_ms == 1395066363000LL);
    assert_int_equal (sample->line, 5);
    sample = &requests->samples [2];
    assert_false (sample->has_timestamp);
    assert_string_equal (al_metric_sample_label (sample, "path"), "C:\\dir \"q\"\nx");
    assert_null (al_metric_sample_label (sample, "nope"));

    const al_metric_family_t *temperature = al_metrics_find (metrics, "temperature");
    assert_non_null (temperature);
    assert_int_equal (temperature->type, AL_METRIC_GAUGE);
    assert_null (temperature->help);
    assert_int_equal (temperature->sample_count, 4);
    assert_true (temperature->samples [0].value == -3.5);
    assert_int_equal (temperature->samples [0].label_count, 0);
    assert_true (isnan (temperature->samples [1].value));
    assert_true (isinf (temperature->samples [2].value) && temperature->samples [2].value > 0);
    assert_string_equal (al_metric_sample_label (&temperature->samples [2], "room"), "b");
    assert_true (isinf (temperature->samples [3].value) && temperature->samples [3].value < 0);

    const al_metric_family_t *latency = al_metrics_find (metrics, "http_request_duration_seconds");
    assert_int_equal (latency->type, AL_METRIC_HISTOGRAM);
    assert_string_equal (latency->help, "Request latency.");
    assert_int_equal (latency->sample_count, 8);
    assert_string_equal (latency->samples [7].name, "http_request_duration_seconds_count");

    const al_metric_family_t *rpc = al_metrics_find (metrics, "rpc_duration_seconds");
    assert_int_equal (rpc->type, AL_METRIC_SUMMARY);
    assert_int_equal (rpc->sample_count, 5);
    assert_true (rpc->samples [3].value == 1.7560473e+07);

    const al_metric_family_t *untyped = al_metrics_find (metrics, "metric_without_type");
    assert_int_equal (untyped->type, AL_METRIC_UNTYPED);
    assert_true (untyped->samples [0].value == 12.47);
    assert_true (untyped->samples [0].timestamp_ms == -5);

    //  Suffixed names are samples, not families.
    assert_null (al_metrics_find (metrics, "http_request_duration_seconds_bucket"));
    assert_null (al_metrics_find (metrics, "nope"));
    assert_null (al_metrics_family_at (metrics, 5));
    assert_string_equal (al_metric_type_name (AL_METRIC_SUMMARY), "summary");
    al_metrics_destroy (&metrics);
    assert_null (metrics);
    al_metrics_destroy (&metrics);
}

static void
test_empty_and_comments_only (void **state)
{
    (void) state;
    al_metrics_t *metrics = s_parse_ok ("");
    assert_int_equal (al_metrics_family_count (metrics), 0);
    al_metrics_destroy (&metrics);
    metrics = s_parse_ok ("# just a comment\n\n   \n# HELP lonely No samples.\n");
    assert_int_equal (al_metrics_family_count (metrics), 1);
    assert_int_equal (al_metrics_family_at (metrics, 0)->sample_count, 0);
    assert_null (al_metrics_family_at (metrics, 0)->samples);
    al_metrics_destroy (&metrics);
}

static bool
s_is_get (const al_metric_sample_t *sample, void *arg)
{
    const char *method = al_metric_sample_label (sample, "method");
    (*(int *) arg)++;
    return method && strcmp (method, "get") == 0;
}

static void
test_sum_and_matchers (void **state)
{
    (void) state;
    al_metrics_t *metrics = s_parse_ok (s_valid);
    double sum = -1;
    assert_int_equal (al_metrics_sum (metrics, "http_requests_total", NULL, 0, &sum), 3);
    assert_true (sum == 1032);
    al_metric_matcher_t errors [] = { { "code", AL_MATCH_PREFIX, "5" } };
    assert_int_equal (al_metrics_sum (metrics, "http_requests_total", errors, 1, &sum), 2);
    assert_true (sum == 5);
    al_metric_matcher_t ok [] = { { "code", AL_MATCH_NOT_PREFIX, "5" },
                                  { "method", AL_MATCH_EQUAL, "post" } };
    assert_int_equal (al_metrics_sum (metrics, "http_requests_total", ok, 2, &sum), 1);
    assert_true (sum == 1027);
    al_metric_matcher_t not_post [] = { { "method", AL_MATCH_NOT_EQUAL, "post" } };
    assert_int_equal (al_metrics_sum (metrics, "http_requests_total", not_post, 1, &sum), 1);
    assert_true (sum == 2);
    //  A missing label matches as "".
    al_metric_matcher_t no_path [] = { { "path", AL_MATCH_EQUAL, "" } };
    assert_int_equal (al_metrics_sum (metrics, "http_requests_total", no_path, 1, &sum), 2);
    int calls = 0;
    assert_int_equal (al_metrics_sum_if (metrics, "http_requests_total", s_is_get, &calls, &sum), 1);
    assert_int_equal (calls, 3);
    assert_true (sum == 2);
    //  Suffixed samples of a histogram or summary.
    assert_int_equal (al_metrics_sum (metrics, "http_request_duration_seconds_count", NULL, 0, &sum), 1);
    assert_true (sum == 144320);
    assert_int_equal (al_metrics_sum (metrics, "rpc_duration_seconds_sum", NULL, 0, &sum), 1);
    assert_true (sum == 1.7560473e+07);
    assert_int_equal (al_metrics_sum (metrics, "absent_total", NULL, 0, &sum), 0);
    assert_true (sum == 0);
    al_metrics_destroy (&metrics);
}

static void
test_histogram_merge_and_lookup (void **state)
{
    (void) state;
    const char *text =
        "# TYPE d histogram\n"
        "d_bucket{path=\"/a\",le=\"0.1\"} 1\n"
        "d_bucket{path=\"/a\",le=\"1\"} 3\n"
        "d_bucket{path=\"/a\",le=\"+Inf\"} 4\n"
        "d_count{path=\"/a\"} 4\n"
        "d_bucket{path=\"/b\",le=\"0.1\"} 10\n"
        "d_bucket{path=\"/b\",le=\"0.5\"} 20\n"
        "d_bucket{path=\"/b\",le=\"+Inf\"} 20\n"
        "d_count{path=\"/b\"} 20\n";
    al_metrics_t *metrics = s_parse_ok (text);
    al_metric_bucket_t *buckets = NULL;
    size_t count = 0;
    assert_int_equal (al_metrics_histogram (metrics, "d", NULL, 0, &buckets, &count), 0);
    assert_int_equal (count, 4);
    double bounds [] = { 0.1, 0.5, 1, INFINITY };
    double counts [] = { 11, 20, 3, 24 };
    for (size_t i = 0; i < count; i++) {
        assert_true (buckets [i].upper_bound == bounds [i]);
        assert_true (buckets [i].count == counts [i]);
    }
    free (buckets);
    al_metric_matcher_t only_a [] = { { "path", AL_MATCH_EQUAL, "/a" } };
    assert_int_equal (al_metrics_histogram (metrics, "d", only_a, 1, &buckets, &count), 0);
    assert_int_equal (count, 3);
    assert_true (buckets [2].count == 4);
    free (buckets);
    //  Not a histogram, or absent: no buckets.
    assert_int_equal (al_metrics_histogram (metrics, "d_count", NULL, 0, &buckets, &count), 0);
    assert_int_equal (count, 0);
    assert_null (buckets);

    //  Following a series into another scrape.
    al_metrics_t *later = s_parse_ok (
        "# TYPE d histogram\n"
        "d_bucket{path=\"/b\",le=\"0.1\"} 11\n"
        "d_bucket{path=\"/b\",le=\"0.5\"} 21\n"
        "d_bucket{path=\"/b\",le=\"+Inf\"} 22\n"
        "d_count{path=\"/b\"} 22\n");
    const al_metric_family_t *family = al_metrics_find (later, "d");
    const al_metric_sample_t *found = al_metrics_lookup (metrics, &family->samples [1]);
    assert_non_null (found);
    assert_string_equal (found->name, "d_bucket");
    assert_string_equal (al_metric_sample_label (found, "le"), "0.5");
    assert_true (found->value == 20);
    assert_int_equal (found->line, 7);
    assert_null (al_metrics_lookup (later, &al_metrics_find (metrics, "d")->samples [0]));
    al_metrics_destroy (&later);
    al_metrics_destroy (&metrics);
}

typedef struct {
    const char *input;
    const char *error;              // expected prefix of the message
} s_bad_case_t;

static const s_bad_case_t s_bad_cases [] = {
    { "1abc 1\n", "line 1: invalid metric name (character 0x31)" },
    { "ok 1\nbad-name 1\n", "line 2: invalid character 0x2d in metric name" },
    { "a{1b=\"x\"} 1\n", "line 1: invalid label name on a" },
    { "a{b-c=\"x\"} 1\n", "line 1: expected '=' after label name b on a" },
    { "a{b=\"x} 1\n", "line 1: unterminated value of label b" },
    { "a{b=\"x\\\"} 1\n", "line 1: unterminated value of label b" },
    { "a{b=x} 1\n", "line 1: value of label b on a is not quoted" },
    { "a{b=\"x\" 1\n", "line 1: expected ',' or '}' after label b on a" },
    { "a{b=\"x\",\n", "line 1: unterminated label set of a" },
    { "a{,} 1\n", "line 1: invalid label name on a (character 0x2c)" },
    { "a{b=\"\\t\"} 1\n", "line 1: invalid escape \\t in value of label b" },
    { "a{b=\"\\\xc3\xa9\"} 1\n", "line 1: invalid escape (backslash, byte 0xc3) in value of label b" },
    { "a{b=\"1\",c=\"2\",b=\"3\"} 1\n", "line 1: duplicate label name b on a" },
    { "a{__name__=\"x\"} 1\n", "line 1: label name __name__ on a is reserved" },
    { "a 1x\n", "line 1: value of a is not a number" },
    { "a 0x10\n", "line 1: value of a is not a number" },
    { "a 1e999\n", "line 1: value of a is not a number" },
    { "a\n", "line 1: sample a without a value" },
    { "a 1 12.5\n", "line 1: timestamp of a is not an integer" },
    { "a 1 99999999999999999999\n", "line 1: timestamp of a is not an integer" },
    { "a 1 2 3\n", "line 1: unexpected text after the timestamp of a" },
    { "a 1", "line 1: last line does not end with a newline" },
    { "a 1\r\n", "line 1: carriage return" },
    { "a 1\n\xff\xfe garbage\n", "line 2: invalid UTF-8 byte 0xff" },
    { "a{b=\"\xc0\xaf\"} 1\n", "line 1: invalid UTF-8 byte 0xc0" },
    { "a{b=\"\xed\xa0\x80\"} 1\n", "line 1: invalid UTF-8 sequence" },
    { "# \x01\x02 binary\n", "line 1: control character 0x01" },
    { "# TYPE a\n", "line 1: TYPE line for a without a type" },
    { "# TYPE a widget\n", "line 1: unknown metric type in TYPE line for a" },
    { "# TYPE a counter extra\n", "line 1: unexpected text after the type in TYPE line for a" },
    { "# TYPE 9a counter\n", "line 1: invalid metric name in TYPE line" },
    { "# HELP\n", "line 1: HELP line without a metric name" },
    { "# HELP a bad \\x escape\n", "line 1: invalid escape \\x in HELP text of a" },
    { "# HELP a ends with \\\n", "line 1: HELP text of a ends with a lone backslash" },
    { "# TYPE a counter\n# TYPE a gauge\n", "line 2: duplicate TYPE line for a" },
    { "# HELP a one\n# HELP a two\n", "line 2: duplicate HELP line for a" },
    { "a 1\n# TYPE a counter\n", "line 2: TYPE line for a after its samples" },
    { "a 1\n# HELP a late\n", "line 2: HELP line for a after its samples" },
    { "a 1\nb 1\na{x=\"1\"} 2\n", "line 3: lines of metric family a are not grouped together" },
    { "# TYPE a counter\nb 1\n# HELP a x\n", "line 3: lines of metric family a are not grouped" },
    { "a 1\na 2\n", "line 2: duplicate sample a (same labels as line 1)" },
    { "a{x=\"1\",y=\"2\"} 1\na{y=\"2\",x=\"1\"} 2\n", "line 2: duplicate sample a" },
    { "# TYPE h histogram\nh 1\n", "line 2: histogram h: sample h needs a _bucket, _sum or _count suffix" },
    { "# TYPE h histogram\nh_bucket 1\n", "line 2: h_bucket without le label" },
    { "# TYPE h histogram\nh_bucket{le=\"fast\"} 1\n", "line 2: le label of h_bucket is not a number" },
    { "# TYPE h histogram\nh_bucket{le=\"NaN\"} 1\n", "line 2: le label of h_bucket is not a number" },
    { "# TYPE h histogram\nh_bucket{le=\"1\"} -1\n", "line 2: bucket count of h_bucket is negative or NaN" },
    { "# TYPE h histogram\nh_count{le=\"1\"} 1\n", "line 2: le label on h_count" },
    { "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"2\"} 1\nh_count 1\n",
      "line 4: histogram h has no le=\"+Inf\" bucket" },
    { "# TYPE h histogram\nh_bucket{le=\"1\"} 5\nh_bucket{le=\"2\"} 3\nh_bucket{le=\"+Inf\"} 5\nh_count 5\n",
      "line 3: bucket counts of h are not cumulative" },
    { "# TYPE h histogram\nh_bucket{le=\"2\"} 1\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n",
      "line 3: bucket le=\"1\" of h is not above the previous one" },
    { "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"1.0\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n",
      "line 3: bucket le=\"1.0\" of h is not above the previous one" },
    { "# TYPE h histogram\nh_bucket{le=\"1\"} 5\nh_bucket{le=\"+Inf\"} 5\nh_count 6\n",
      "line 4: h_count (6) differs from its +Inf bucket (5)" },
    { "# TYPE h histogram\nh_bucket{le=\"1\"} 5\nh_bucket{le=\"+Inf\"} 5\n",
      "line 3: histogram h has no h_count" },
    { "# TYPE h histogram\nh_bucket{x=\"a\",le=\"+Inf\"} 5\nh_count{x=\"a\"} 5\nh_count{x=\"b\"} 5\n",
      "line 4: histogram h has no le=\"+Inf\" bucket" },
    { "# TYPE s summary\ns 1\n", "line 2: summary s without quantile label" },
    { "# TYPE s summary\ns{quantile=\"1.5\"} 1\n", "line 2: quantile label of s is not a number in [0, 1]" },
    { "# TYPE s summary\ns{quantile=\"0.9\"} 1\ns{quantile=\"0.5\"} 1\n",
      "line 3: quantile quantile=\"0.5\" of s is not above the previous one" },
    { "# TYPE s summary\ns_count{quantile=\"0.5\"} 1\n", "line 2: quantile label on s_count" },
    { "# TYPE h histogram\n# TYPE h_count counter\n", "line 2: metric family h_count collides with histogram h" },
    { "# TYPE h_sum gauge\n# TYPE h summary\n", "line 2: summary h collides with metric family h_sum" },
};

static void
test_malformed_inputs (void **state)
{
    (void) state;
    for (size_t i = 0; i < sizeof s_bad_cases / sizeof s_bad_cases [0]; i++) {
        const s_bad_case_t *bad = &s_bad_cases [i];
        char error [256] = "";
        al_metrics_t *metrics = al_metrics_parse (bad->input, strlen (bad->input), NULL, error,
                                                  sizeof error);
        if (metrics)
            fail_msg ("case %zu accepted: %s", i, bad->input);
        if (strncmp (error, bad->error, strlen (bad->error)) != 0)
            fail_msg ("case %zu: expected \"%s\", got \"%s\"", i, bad->error, error);
    }
}

static void
test_binary_garbage (void **state)
{
    (void) state;
    const char garbage [] = { 'a', ' ', '1', '\0', '\n', (char) 0x9f, '\n' };
    char error [256];
    assert_null (al_metrics_parse (garbage, sizeof garbage, NULL, error, sizeof error));
    assert_string_equal (error, "line 1: control character 0x00");
    unsigned char noise [4096];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof noise; i++) {
        x = x * 1103515245 + 12345;
        noise [i] = (unsigned char) (x >> 16);
    }
    assert_null (al_metrics_parse ((const char *) noise, sizeof noise, NULL, error, sizeof error));
    assert_memory_equal (error, "line ", 5);
}

//  A string of n copies of piece between prefix and suffix.
static char *
s_repeat (const char *prefix, const char *piece, size_t n, const char *suffix)
{
    size_t size = strlen (prefix) + strlen (piece) * n + strlen (suffix) + 1;
    char *text = malloc (size);
    assert_non_null (text);
    strcpy (text, prefix);
    char *end = text + strlen (prefix);
    for (size_t i = 0; i < n; i++)
        end = stpcpy (end, piece);
    strcpy (end, suffix);
    return text;
}

static void
test_limits (void **state)
{
    (void) state;
    char error [256];
    //  A huge line.
    char *text = s_repeat ("", "a", 20000, " 1\n");
    assert_null (al_metrics_parse (text, strlen (text), NULL, error, sizeof error));
    assert_string_equal (error, "line 1: line longer than 16384 bytes");
    free (text);
    //  Many distinct labels.
    text = malloc (100 * 16 + 16);
    assert_non_null (text);
    char *end = stpcpy (text, "a{");
    for (int i = 0; i < 100; i++)
        end += sprintf (end, "l%d=\"v\",", i);
    strcpy (end, "} 1\n");
    assert_null (al_metrics_parse (text, strlen (text), NULL, error, sizeof error));
    assert_string_equal (error, "line 1: more than 64 labels on a");
    free (text);
    //  The same label over and over.
    text = s_repeat ("a{", "x=\"1\",", 50, "} 1\n");
    assert_null (al_metrics_parse (text, strlen (text), NULL, error, sizeof error));
    assert_string_equal (error, "line 1: duplicate label name x on a");
    free (text);
    //  Configured limits; zero members keep their defaults.
    al_metrics_limits_t limits = { .max_input_size = 10 };
    assert_null (al_metrics_parse ("a 1\nb 2\nc 3\n", 12, &limits, error, sizeof error));
    assert_string_equal (error, "input: 12 bytes, more than the limit of 10");
    limits = (al_metrics_limits_t) { .max_samples = 2 };
    assert_null (al_metrics_parse ("a 1\nb 2\nc 3\n", 12, &limits, error, sizeof error));
    assert_string_equal (error, "line 3: more than 2 samples");
    limits = (al_metrics_limits_t) { .max_line_length = 3 };
    assert_null (al_metrics_parse ("a 1\nbb 2\n", 9, &limits, error, sizeof error));
    assert_string_equal (error, "line 2: line longer than 3 bytes");
    limits = (al_metrics_limits_t) { .max_labels_per_sample = 1 };
    assert_null (al_metrics_parse ("a{x=\"1\",y=\"2\"} 1\n", 17, &limits, error, sizeof error));
    assert_string_equal (error, "line 1: more than 1 labels on a");
    al_metrics_limits_default (&limits);
    assert_int_equal (limits.max_samples, AL_METRICS_DEFAULT_MAX_SAMPLES);
    //  Many samples within the limits still parse (and stay linear).
    text = malloc (20000 * 24);
    assert_non_null (text);
    end = text;
    for (int i = 0; i < 20000; i++)
        end += sprintf (end, "m%d{i=\"%d\"} %d\n", i, i, i);
    al_metrics_t *metrics = al_metrics_parse (text, (size_t) (end - text), NULL, error, sizeof error);
    assert_non_null (metrics);
    assert_int_equal (al_metrics_family_count (metrics), 20000);
    assert_true (al_metrics_find (metrics, "m19999")->samples [0].value == 19999);
    al_metrics_destroy (&metrics);
    free (text);
}

static void
test_parse_value (void **state)
{
    (void) state;
    double value;
    assert_true (al_metric_parse_value ("+Inf", &value) && isinf (value) && value > 0);
    assert_true (al_metric_parse_value ("-inf", &value) && isinf (value) && value < 0);
    assert_true (al_metric_parse_value ("NaN", &value) && isnan (value));
    assert_true (al_metric_parse_value ("1.5e-3", &value) && value == 1.5e-3);
    assert_true (al_metric_parse_value (".5", &value) && value == 0.5);
    assert_true (al_metric_parse_value ("-0", &value) && value == 0);
    assert_false (al_metric_parse_value ("", &value));
    assert_true (al_metric_parse_value ("1.", &value) && value == 1);
    assert_false (al_metric_parse_value ("e5", &value));
    assert_false (al_metric_parse_value ("1e", &value));
    assert_false (al_metric_parse_value (" 1", &value));
    assert_false (al_metric_parse_value ("1_000", &value));
}

static void
s_check_quantile (double q, const al_metric_bucket_t *buckets, size_t count, double expected)
{
    double got = al_histogram_quantile (q, buckets, count);
    if (isnan (expected)) {
        if (!isnan (got))
            fail_msg ("q=%g: expected NaN, got %.17g", q, got);
        return;
    }
    if (!(got == expected || fabs (got - expected) <= 1e-12 * fabs (expected)))
        fail_msg ("q=%g: expected %.17g, got %.17g", q, expected, got);
}

static void
test_histogram_quantile (void **state)
{
    (void) state;
    //  Given out of order on purpose: the function sorts.
    al_metric_bucket_t b [] = { { 1, 40 }, { 0.1, 10 }, { INFINITY, 50 }, { 0.5, 30 } };
    //  rank 25 falls in (0.1, 0.5]: 0.1 + 0.4 * (25 - 10) / (30 - 10)
    s_check_quantile (0.5, b, 4, 0.4);
    //  rank 5 in the lowest bucket, interpolated from 0: 0.1 * 5 / 10
    s_check_quantile (0.1, b, 4, 0.05);
    //  rank 40 exactly at the top of (0.5, 1]
    s_check_quantile (0.8, b, 4, 1.0);
    //  rank 49.5 in the +Inf bucket: the highest finite bound
    s_check_quantile (0.99, b, 4, 1.0);
    s_check_quantile (1.0, b, 4, 1.0);
    s_check_quantile (0.0, b, 4, 0.0);
    assert_true (isinf (al_histogram_quantile (-0.1, b, 4)) && al_histogram_quantile (-0.1, b, 4) < 0);
    assert_true (isinf (al_histogram_quantile (1.1, b, 4)) && al_histogram_quantile (1.1, b, 4) > 0);
    s_check_quantile (NAN, b, 4, NAN);
    //  The input is not modified.
    assert_true (b [0].upper_bound == 1 && b [2].count == 50);

    //  Fewer than 2 buckets, no +Inf bucket, zero observations, nothing: NaN.
    al_metric_bucket_t only_inf [] = { { INFINITY, 5 } };
    s_check_quantile (0.5, only_inf, 1, NAN);
    al_metric_bucket_t no_inf [] = { { 0.1, 1 }, { 1, 2 } };
    s_check_quantile (0.5, no_inf, 2, NAN);
    al_metric_bucket_t empty [] = { { 0.1, 0 }, { INFINITY, 0 } };
    s_check_quantile (0.5, empty, 2, NAN);
    s_check_quantile (0.5, NULL, 0, NAN);
    //  A lowest bound <= 0 is returned as is.
    al_metric_bucket_t negative [] = { { -0.5, 4 }, { 1, 8 }, { INFINITY, 8 } };
    s_check_quantile (0.25, negative, 3, -0.5);
    //  rank 6 in (-0.5, 1]: -0.5 + 1.5 * (6 - 4) / (8 - 4)
    s_check_quantile (0.75, negative, 3, 0.25);
    //  Equal bounds are coalesced (summed): 0.5:30, +Inf:30; rank 15 -> 0.5 * 15 / 30
    al_metric_bucket_t twice [] = { { 0.5, 10 }, { INFINITY, 30 }, { 0.5, 20 } };
    s_check_quantile (0.5, twice, 3, 0.25);
    //  Non-monotonic counts are lifted to the running maximum: 0.1:10 0.5:10 +Inf:10.
    al_metric_bucket_t dip [] = { { 0.1, 10 }, { 0.5, 5 }, { INFINITY, 10 } };
    s_check_quantile (0.5, dip, 3, 0.05);
    //  Counts within 1e-12 relative of the previous are taken as equal.
    al_metric_bucket_t jitter [] = { { 1, 100 }, { 2, 100 * (1 - 1e-14) }, { INFINITY, 100 } };
    s_check_quantile (0.5, jitter, 3, 0.5);

    //  The parsed histogram of the valid fixture: rank 72160 in (0.1, 0.2].
    al_metrics_t *metrics = s_parse_ok (s_valid);
    al_metric_bucket_t *buckets;
    size_t count;
    assert_int_equal (al_metrics_histogram (metrics, "http_request_duration_seconds", NULL, 0,
                                            &buckets, &count), 0);
    assert_int_equal (count, 6);
    s_check_quantile (0.5, buckets, count, 0.1 + 0.1 * (72160.0 - 33444.0) / (100392.0 - 33444.0));
    //  rank 142876.8 is above 133988: the +Inf bucket, so 1.
    s_check_quantile (0.99, buckets, count, 1.0);
    free (buckets);
    al_metrics_destroy (&metrics);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_valid_exposition),
        cmocka_unit_test (test_empty_and_comments_only),
        cmocka_unit_test (test_sum_and_matchers),
        cmocka_unit_test (test_histogram_merge_and_lookup),
        cmocka_unit_test (test_malformed_inputs),
        cmocka_unit_test (test_binary_garbage),
        cmocka_unit_test (test_limits),
        cmocka_unit_test (test_parse_value),
        cmocka_unit_test (test_histogram_quantile),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
