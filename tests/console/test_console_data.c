/*  test_console_data.c: the console's log view (agents/al_console_data.c) is advanced
    over the new rows of the audit log, not replayed per request.

    A state directory with an audit.db this test writes (al_store, read-write) while the
    console data reads it (read-only per request, as `airlock console`). The agent points
    at an endpoint where no broker listens: audit and history never ask the broker.
    Shown: N requests after K appended rows see exactly those K rows, and read only them
    from the store (al_console_data_log_stats: rows_read, full_replays); a request with
    no new rows reads none; the advanced view equals one built from scratch (history,
    and al_replay_advance against al_replay_new); a replaced or truncated log is seen
    and the view is built again from its first row. With a window smaller than the log,
    every page of every filter (old pages included, walked with before) equals a scan of
    the store, and the rows held stay at the window. The history lists the deployments
    `airlock audit history --json` lists, on one log.
*/
#include "agents/al_console_data.h"
#include "store/al_replay.h"
#include "store/al_replay_advance.h"
#include "store/al_store.h"

#include <czmq.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

typedef struct {
    char dir [256];
    char database [512];
    al_config_t *config;
    al_agent_t *agent;
    al_console_data_t *data;
    al_store_t *store;              // the writer
    uint64_t appended;
} s_fixture_t;

//  Query parameters: NULL-terminated key, value pairs.
static const char *
s_arg (const void *request, const char *key)
{
    const char *const *pairs = (const char *const *) request;
    for (size_t index = 0; pairs && pairs [index]; index += 2)
        if (strcmp (pairs [index], key) == 0)
            return pairs [index + 1];
    return NULL;
}

static void
s_store_open (s_fixture_t *fixture)
{
    char error [512] = "";
    fixture->store = al_store_open (NULL, fixture->database, NULL, error, sizeof error);
    if (!fixture->store)
        fail_msg ("al_store_open: %s", error);
}

static void
s_store_remove (s_fixture_t *fixture)
{
    al_store_destroy (&fixture->store);
    const char *suffixes [] = { "", "-wal", "-shm" };
    for (size_t index = 0; index < 3; index++) {
        char path [600];
        snprintf (path, sizeof path, "%s%s", fixture->database, suffixes [index]);
        remove (path);
    }
    fixture->appended = 0;
}

//  Append COUNT rows: a DeployRequest for DEPLOYMENT (when not NULL) first, then rows of
//  TYPE, every third one denied.
static void
s_append (s_fixture_t *fixture, const char *deployment, const char *type, size_t count)
{
    assert_int_equal (al_store_begin (fixture->store), AL_STORE_OK);
    if (deployment) {
        Airlock__Envelope envelope;
        Airlock__DeployRequest request;
        airlock__envelope__init (&envelope);
        airlock__deploy_request__init (&request);
        request.service = "demo";
        request.version = "v1";
        request.artifact_uri = "/opt/demo-v1";
        request.artifact_sha256 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        request.instances = 1;
        envelope.deployment_id = (char *) deployment;
        envelope.environment = AIRLOCK__ENVIRONMENT__ENV_STAGING;
        envelope.body_case = AIRLOCK__ENVELOPE__BODY_DEPLOY_REQUEST;
        envelope.deploy_request = &request;
        size_t size = airlock__envelope__get_packed_size (&envelope);
        uint8_t *bytes = malloc (size);
        assert_non_null (bytes);
        airlock__envelope__pack (&envelope, bytes);
        char id [64];
        snprintf (id, sizeof id, "req-%llu", (unsigned long long) ++fixture->appended);
        al_store_event_t event = { .time_ms = 1765000000000ULL + fixture->appended, .sender = "orchestrator",
                                   .role = "orchestrator", .type = "DeployRequest", .message_id = id,
                                   .deployment_id = deployment, .environment = "staging",
                                   .decision = AL_STORE_ACCEPTED, .envelope = bytes, .envelope_size = size };
        al_store_append_result_t result;
        assert_int_equal (al_store_append (fixture->store, &event, &result), AL_STORE_OK);
        assert_int_equal (result.sequence, fixture->appended);
        free (bytes);
    }
    for (size_t index = 0; index < count; index++) {
        char id [64];
        snprintf (id, sizeof id, "msg-%llu", (unsigned long long) ++fixture->appended);
        bool denied = fixture->appended % 3 == 0;
        al_store_event_t event = { .time_ms = 1765000000000ULL + fixture->appended, .sender = "qa", .role = "qa",
                                   .type = type, .message_id = id, .deployment_id = "rel-x-stg",
                                   .environment = "staging",
                                   .decision = denied? AL_STORE_DENIED: AL_STORE_ACCEPTED,
                                   .reason = denied? "not permitted": "" };
        al_store_append_result_t result;
        assert_int_equal (al_store_append (fixture->store, &event, &result), AL_STORE_OK);
        assert_int_equal (result.sequence, fixture->appended);
    }
    assert_int_equal (al_store_commit (fixture->store), AL_STORE_OK);
}

static json_t *
s_api (s_fixture_t *fixture, const char *name, const char *const *pairs)
{
    int status = 200;
    char error [512] = "";
    json_t *answer = al_console_data_api (fixture->data, name, s_arg, pairs, &status, error, sizeof error);
    if (!answer)
        fail_msg ("%s: %d %s", name, status, error);
    return answer;
}

static al_console_data_log_stats_t
s_stats (s_fixture_t *fixture)
{
    al_console_data_log_stats_t stats;
    al_console_data_log_stats (fixture->data, &stats);
    return stats;
}

static int
s_setup (void **state)
{
    s_fixture_t *fixture = calloc (1, sizeof *fixture);
    assert_non_null (fixture);
    snprintf (fixture->dir, sizeof fixture->dir, "/tmp/al-console-data-XXXXXX");
    assert_non_null (mkdtemp (fixture->dir));
    fixture->config = al_config_new (fixture->dir);
    assert_non_null (fixture->config);
    snprintf (fixture->database, sizeof fixture->database, "%s", al_config_database (fixture->config));
    zcert_t *own = zcert_new (), *broker = zcert_new ();
    al_agent_options_t options;
    al_agent_options_defaults (&options);
    snprintf (options.endpoint, sizeof options.endpoint, "ipc://%s/nobody.ipc", fixture->dir);
    snprintf (options.broker_key, sizeof options.broker_key, "%s", zcert_public_txt (broker));
    snprintf (options.cert_path, sizeof options.cert_path, "%s/console.cert", fixture->dir);
    snprintf (options.name, sizeof options.name, "console-test");
    assert_int_equal (zcert_save (own, options.cert_path), 0);
    zcert_destroy (&own);
    zcert_destroy (&broker);
    char error [512] = "";
    fixture->agent = al_agent_new (&options, error, sizeof error);
    if (!fixture->agent)
        fail_msg ("al_agent_new: %s", error);
    fixture->data = al_console_data_new (fixture->config, fixture->agent, 1000);
    assert_non_null (fixture->data);
    s_store_open (fixture);
    *state = fixture;
    return 0;
}

static int
s_teardown (void **state)
{
    s_fixture_t *fixture = *state;
    al_console_data_destroy (&fixture->data);
    al_agent_destroy (&fixture->agent);
    al_store_destroy (&fixture->store);
    al_config_destroy (&fixture->config);
    zsys_dir_delete (fixture->dir);     // not recursive: remove what is known first
    char command [400];
    snprintf (command, sizeof command, "rm -rf '%s'", fixture->dir);
    assert_int_equal (system (command), 0);
    free (fixture);
    return 0;
}

//  The sequences of an audit answer's rows, newest first.
static void
s_assert_sequences (json_t *answer, const uint64_t *sequences, size_t count)
{
    json_t *rows = json_object_get (answer, "rows");
    assert_int_equal (json_array_size (rows), count);
    for (size_t index = 0; index < count; index++)
        assert_int_equal (json_integer_value (json_object_get (json_array_get (rows, index), "sequence")),
                          sequences [index]);
}

static void
test_requests_read_only_the_new_rows (void **state)
{
    s_fixture_t *fixture = *state;
    s_append (fixture, "rel-a-stg", "QaReport", 9);                    // rows 1..10
    json_t *answer = s_api (fixture, "audit", NULL);
    assert_int_equal (json_integer_value (json_object_get (answer, "rows_in_log")), 10);
    assert_int_equal (json_integer_value (json_object_get (answer, "matched")), 10);
    assert_int_equal (json_integer_value (json_object_get (json_array_get (json_object_get (answer, "rows"), 0),
                                                           "sequence")), 10);
    json_decref (answer);
    al_console_data_log_stats_t stats = s_stats (fixture);
    assert_int_equal (stats.full_replays, 1);
    assert_int_equal (stats.rows_read, 10);

    //  N requests after appending K rows: each round reads exactly the K new rows.
    for (int round = 0; round < 4; round++) {
        uint64_t before = fixture->appended;
        size_t added = 3 + (size_t) round;
        s_append (fixture, NULL, "QaRequest", added);
        const char *pairs [] = { "type", "QaRequest", "limit", "1000", NULL };
        answer = s_api (fixture, "audit", pairs);
        assert_int_equal (json_integer_value (json_object_get (answer, "rows_in_log")), fixture->appended);
        json_t *rows = json_object_get (answer, "rows");
        //  The newest QaRequest rows are this round's, newest first.
        for (size_t index = 0; index < added; index++)
            assert_int_equal (json_integer_value (json_object_get (json_array_get (rows, index), "sequence")),
                              fixture->appended - index);
        json_decref (answer);
        stats = s_stats (fixture);
        assert_int_equal (stats.full_replays, 1);
        assert_int_equal (stats.rows_read, before + added);
        assert_int_equal (stats.rows_held, fixture->appended);
    }
    //  No new rows: nothing read, no replay.
    uint64_t read = s_stats (fixture).rows_read;
    for (int round = 0; round < 3; round++) {
        json_decref (s_api (fixture, "audit", NULL));
        json_decref (s_api (fixture, "history", NULL));
    }
    stats = s_stats (fixture);
    assert_int_equal (stats.full_replays, 1);
    assert_int_equal (stats.rows_read, read);

    //  The filters over the kept rows: denied only, limit, text, release.
    const char *denied [] = { "denied", "1", "limit", "2", NULL };
    answer = s_api (fixture, "audit", denied);
    uint64_t newest_denied = fixture->appended - fixture->appended % 3;
    uint64_t expect [] = { newest_denied, newest_denied - 3 };
    s_assert_sequences (answer, expect, 2);
    assert_int_equal (json_integer_value (json_object_get (answer, "matched")), fixture->appended / 3);
    assert_string_equal (json_string_value (json_object_get (json_array_get (json_object_get (answer, "rows"), 0),
                                                            "reason")), "not permitted");
    json_decref (answer);
    const char *release [] = { "release", "rel-a", NULL };
    answer = s_api (fixture, "audit", release);
    uint64_t first [] = { 1 };
    s_assert_sequences (answer, first, 1);
    assert_string_equal (json_string_value (json_object_get (json_array_get (json_object_get (answer, "rows"), 0),
                                                            "type")), "DeployRequest");
    json_decref (answer);
    const char *search [] = { "q", "msg-7", NULL };
    answer = s_api (fixture, "audit", search);
    uint64_t seven [] = { 7 };
    s_assert_sequences (answer, seven, 1);
    json_decref (answer);
}

static size_t
s_history_count (s_fixture_t *fixture, const char *deployment)
{
    json_t *answer = s_api (fixture, "history", NULL);
    json_t *rows = json_object_get (answer, "history");
    size_t found = 0;
    for (size_t index = 0; index < json_array_size (rows); index++)
        found += strcmp (json_string_value (json_object_get (json_array_get (rows, index), "deployment")),
                         deployment) == 0;
    size_t count = json_array_size (rows);
    json_decref (answer);
    return found? count: 0;
}

static void
test_history_advances_and_equals_a_fresh_replay (void **state)
{
    s_fixture_t *fixture = *state;
    s_append (fixture, "rel-a-stg", "StatusQuery", 2);
    assert_int_equal (s_history_count (fixture, "rel-a-stg"), 1);
    s_append (fixture, "rel-b-stg", "StatusQuery", 2);
    s_append (fixture, "rel-c-stg", NULL, 0);
    assert_int_equal (s_history_count (fixture, "rel-c-stg"), 3);
    al_console_data_log_stats_t stats = s_stats (fixture);
    assert_int_equal (stats.full_replays, 1);
    assert_int_equal (stats.rows_read, fixture->appended);

    //  The advanced view answers as one built from scratch now.
    json_t *advanced = s_api (fixture, "history", NULL);
    al_console_data_t *fresh = al_console_data_new (fixture->config, fixture->agent, 1000);
    assert_non_null (fresh);
    int status = 200;
    char error [512] = "";
    json_t *scratch = al_console_data_api (fresh, "history", s_arg, NULL, &status, error, sizeof error);
    assert_non_null (scratch);
    assert_true (json_equal (advanced, scratch));
    json_decref (advanced);
    json_decref (scratch);
    al_console_data_destroy (&fresh);

    //  al_replay_advance in steps against al_replay_new over the same rows.
    al_replay_t *whole = al_replay_new (fixture->store, 0, error, sizeof error);
    assert_non_null (whole);
    al_replay_t *stepped = al_replay_new_empty ();
    assert_non_null (stepped);
    assert_int_equal (al_replay_advance (stepped, fixture->store, NULL, NULL, error, sizeof error),
                      (int64_t) fixture->appended);
    s_append (fixture, "rel-d-stg", "StatusQuery", 1);
    al_replay_destroy (&whole);
    whole = al_replay_new (fixture->store, 0, error, sizeof error);
    assert_non_null (whole);
    assert_int_equal (al_replay_advance (stepped, fixture->store, NULL, NULL, error, sizeof error), 2);
    assert_int_equal (al_replay_advance (stepped, fixture->store, NULL, NULL, error, sizeof error), 0);
    assert_int_equal (al_replay_last_sequence (stepped), fixture->appended);
    assert_int_equal (al_replay_rows (stepped), al_replay_rows (whole));
    assert_int_equal (al_replay_count (stepped), al_replay_count (whole));
    assert_int_equal (al_replay_count (whole), 4);
    for (size_t index = 0; index < al_replay_count (whole); index++) {
        json_t *one = al_replay_deployment_json (al_replay_at (whole, index));
        json_t *two = al_replay_deployment_json (al_replay_at (stepped, index));
        assert_true (json_equal (one, two));
        json_decref (one);
        json_decref (two);
    }
    al_replay_destroy (&whole);
    al_replay_destroy (&stepped);
}

static void
test_replaced_or_truncated_log_is_built_again (void **state)
{
    s_fixture_t *fixture = *state;
    s_append (fixture, "rel-a-stg", "StatusQuery", 5);
    json_decref (s_api (fixture, "audit", NULL));
    assert_int_equal (s_stats (fixture).full_replays, 1);

    //  Replaced by another log, longer, whose rows differ: the row the view last saw
    //  has another hash.
    s_store_remove (fixture);
    s_store_open (fixture);
    s_append (fixture, "rel-z-stg", "Register", 7);
    json_t *answer = s_api (fixture, "audit", NULL);
    assert_int_equal (json_integer_value (json_object_get (answer, "rows_in_log")), 8);
    const char *release [] = { "release", "rel-a", NULL };
    json_decref (answer);
    answer = s_api (fixture, "audit", release);
    assert_int_equal (json_integer_value (json_object_get (answer, "matched")), 0);
    json_decref (answer);
    assert_int_equal (s_history_count (fixture, "rel-z-stg"), 1);
    al_console_data_log_stats_t stats = s_stats (fixture);
    assert_int_equal (stats.full_replays, 2);
    assert_int_equal (stats.rows_read, 6 + 8);

    //  Truncated: fewer rows than the view saw.
    s_store_remove (fixture);
    s_store_open (fixture);
    s_append (fixture, NULL, "StatusQuery", 2);
    answer = s_api (fixture, "audit", NULL);
    assert_int_equal (json_integer_value (json_object_get (answer, "rows_in_log")), 2);
    uint64_t both [] = { 2, 1 };
    s_assert_sequences (answer, both, 2);
    json_decref (answer);
    assert_int_equal (s_history_count (fixture, "rel-z-stg"), 0);
    assert_int_equal (s_stats (fixture).full_replays, 3);

    //  A missing database: 503, and the next request after it builds the view again.
    s_store_remove (fixture);
    int status = 200;
    char error [512] = "";
    assert_null (al_console_data_api (fixture->data, "audit", s_arg, NULL, &status, error, sizeof error));
    assert_int_equal (status, 503);
    assert_true (*error);
    s_store_open (fixture);
    s_append (fixture, NULL, "StatusQuery", 1);
    answer = s_api (fixture, "audit", NULL);
    assert_int_equal (json_integer_value (json_object_get (answer, "rows_in_log")), 1);
    json_decref (answer);
}

//  ---- the bounded window ---------------------------------------------------------------

//  Does row EVENT match the audit query PAIRS? Written here apart from the console's
//  filter: the reference the pages are compared with.
static bool
s_reference_match (const al_store_event_t *event, const char *const *pairs)
{
    const char *type = s_arg (pairs, "type"), *sender = s_arg (pairs, "sender");
    const char *release = s_arg (pairs, "release"), *search = s_arg (pairs, "q"), *denied = s_arg (pairs, "denied");
    if (type && strcmp (event->type, type) != 0)
        return false;
    if (sender && strcmp (event->sender, sender) != 0)
        return false;
    if (denied && event->decision != AL_STORE_DENIED)
        return false;
    if (release && strncmp (event->deployment_id, release, strlen (release)) != 0)
        return false;
    if (!search)
        return true;
    const char *fields [] = { event->type, event->sender, event->deployment_id, event->reason, event->message_id };
    for (size_t index = 0; index < 5; index++)
        if (strcasestr (fields [index], search))
            return true;
    return false;
}

//  The sequences of the whole log matching PAIRS, oldest first (a scan of the store).
static size_t
s_reference (s_fixture_t *fixture, const char *const *pairs, uint64_t *sequences, size_t size)
{
    al_store_iter_t *iter = al_store_iter_new (fixture->store, 1);
    assert_non_null (iter);
    al_store_event_t event;
    size_t count = 0;
    while (al_store_iter_next (iter, &event) == AL_STORE_OK)
        if (s_reference_match (&event, pairs)) {
            assert_true (count < size);
            sequences [count++] = event.sequence;
        }
    al_store_iter_destroy (&iter);
    return count;
}

//  Walk the pages of query PAIRS (limit LIMIT) from the newest back to the first row:
//  every match of the reference comes once, newest first, and each page says how many
//  rows match in all. Returns the number of pages.
static size_t
s_walk_pages (s_fixture_t *fixture, const char *type, const char *denied, const char *search, const char *limit)
{
    const char *filter [12] = { NULL };
    size_t used = 0;
    if (type) { filter [used++] = "type"; filter [used++] = type; }
    if (denied) { filter [used++] = "denied"; filter [used++] = denied; }
    if (search) { filter [used++] = "q"; filter [used++] = search; }
    static uint64_t expect [20000];
    size_t expected = s_reference (fixture, filter, expect, 20000);
    size_t seen = 0, pages = 0;
    char before [32] = "";
    while (true) {
        const char *pairs [16] = { NULL };
        memcpy (pairs, filter, sizeof filter);
        size_t at = used;
        pairs [at++] = "limit";
        pairs [at++] = limit;
        if (*before) {
            pairs [at++] = "before";
            pairs [at++] = before;
        }
        json_t *answer = s_api (fixture, "audit", pairs);
        pages++;
        assert_int_equal (json_integer_value (json_object_get (answer, "matched")), expected);
        assert_int_equal (json_integer_value (json_object_get (answer, "rows_in_log")), fixture->appended);
        json_t *rows = json_object_get (answer, "rows");
        for (size_t index = 0; index < json_array_size (rows); index++) {
            assert_true (seen < expected);
            assert_int_equal (json_integer_value (json_object_get (json_array_get (rows, index), "sequence")),
                              expect [expected - 1 - seen]);
            seen++;
        }
        json_t *next = json_object_get (answer, "next_before");
        bool more = json_is_integer (next);
        if (more)
            snprintf (before, sizeof before, "%lld", (long long) json_integer_value (next));
        else
            assert_true (json_array_size (rows) < (size_t) atoi (limit));
        json_decref (answer);
        al_console_data_log_stats_t stats = s_stats (fixture);
        assert_int_equal (stats.rows_held, stats.window_rows);      // the window stays at its cap
        if (!more)
            break;
    }
    assert_int_equal (seen, expected);
    return pages;
}

static void
test_window_bounds_memory_and_pages_older_rows (void **state)
{
    s_fixture_t *fixture = *state;
    assert_true (al_console_data_set_window (fixture->data, 16));
    s_append (fixture, "rel-a-stg", "QaReport", 299);                  // rows 1..300
    json_t *answer = s_api (fixture, "audit", NULL);
    assert_int_equal (json_array_size (json_object_get (answer, "rows")), 200);
    assert_int_equal (json_integer_value (json_object_get (answer, "matched")), 300);
    json_decref (answer);
    al_console_data_log_stats_t stats = s_stats (fixture);
    assert_int_equal (stats.window_rows, 16);
    assert_int_equal (stats.rows_held, 16);
    assert_int_equal (stats.rows_read, 300);
    assert_true (stats.older_rows_read > 0);       // the page went below the window

    //  Every page, old ones included, as the reference scan of the store says.
    assert_int_equal (s_walk_pages (fixture, NULL, NULL, NULL, "7"), 43);
    s_walk_pages (fixture, NULL, "1", NULL, "9");
    s_walk_pages (fixture, "QaReport", NULL, NULL, "1000");
    s_walk_pages (fixture, NULL, NULL, "msg-2", "4");
    s_walk_pages (fixture, "DeployRequest", NULL, NULL, "3");          // the first row only
    s_walk_pages (fixture, "NoSuchType", NULL, NULL, "5");

    //  The log grows past the window again: the window slides, the counts of older
    //  rows follow (remembered per filter, counted over the rows that left only), and
    //  the memory stays at the window.
    for (int round = 0; round < 3; round++) {
        s_append (fixture, NULL, "QaRequest", 40 + (size_t) round);
        s_walk_pages (fixture, NULL, "1", NULL, "50");
        s_walk_pages (fixture, "QaRequest", NULL, NULL, "13");
        stats = s_stats (fixture);
        assert_int_equal (stats.rows_held, 16);
        assert_int_equal (stats.rows_read, fixture->appended);
        assert_int_equal (stats.full_replays, 1);
    }
    //  More rows than one range read back (4096): pages cross ranges.
    s_append (fixture, NULL, "QaReport", 5000);
    s_walk_pages (fixture, NULL, NULL, "msg-1", "1000");
    s_walk_pages (fixture, NULL, NULL, NULL, "1000");
    assert_int_equal (s_stats (fixture).rows_held, 16);

    //  A bad before is refused.
    const char *bad [] = { "before", "x1", NULL };
    int status = 200;
    char error [512] = "";
    assert_null (al_console_data_api (fixture->data, "audit", s_arg, bad, &status, error, sizeof error));
    assert_int_equal (status, 400);
    assert_non_null (strstr (error, "before"));
}

//  ---- history: the CLI's deployments ------------------------------------------------------

//  A refused DeployRequest about an id nobody filed: in the replay, not in the history.
static void
s_append_stray_denial (s_fixture_t *fixture, const char *deployment)
{
    assert_int_equal (al_store_begin (fixture->store), AL_STORE_OK);
    char id [64];
    snprintf (id, sizeof id, "stray-%llu", (unsigned long long) ++fixture->appended);
    al_store_event_t event = { .time_ms = 1765000000000ULL + fixture->appended, .sender = "qa", .role = "qa",
                               .type = "DeployRequest", .message_id = id, .deployment_id = deployment,
                               .environment = "", .decision = AL_STORE_DENIED, .reason = "not permitted" };
    al_store_append_result_t result;
    assert_int_equal (al_store_append (fixture->store, &event, &result), AL_STORE_OK);
    assert_int_equal (al_store_commit (fixture->store), AL_STORE_OK);
}

static void
test_history_lists_what_the_cli_lists (void **state)
{
    s_fixture_t *fixture = *state;
    s_append (fixture, "rel-a-stg", "QaReport", 4);    // rel-x-stg's denials: a replayed id without request
    s_append_stray_denial (fixture, "rel-stray-stg");
    s_append (fixture, "rel-b-stg", NULL, 0);

    //  The replay holds deployments the history does not list.
    char error [512] = "";
    al_replay_t *replay = al_replay_new (fixture->store, 0, error, sizeof error);
    assert_non_null (replay);
    assert_non_null (al_replay_find (replay, "rel-stray-stg"));
    assert_non_null (al_replay_find (replay, "rel-x-stg"));
    size_t replayed = al_replay_count (replay);
    al_replay_destroy (&replay);

    //  `airlock audit history DB --json`, the CLI.
    const char *binary_dir = getenv ("AIRLOCK_BINARY_DIR");
    assert_non_null (binary_dir);
    char command [2048];
    snprintf (command, sizeof command, "'%s/airlock' audit history --db '%s' --json 2>/dev/null", binary_dir,
              fixture->database);
    FILE *pipe = popen (command, "r");
    assert_non_null (pipe);
    json_error_t json_error;
    json_t *cli = json_loadf (pipe, 0, &json_error);
    assert_int_equal (pclose (pipe), 0);
    if (!cli)
        fail_msg ("airlock audit history --json: %s", json_error.text);
    json_t *listed = json_object_get (cli, "deployments");

    json_t *console = s_api (fixture, "history", NULL);
    json_t *rows = json_object_get (console, "history");
    assert_int_equal (json_array_size (rows), json_array_size (listed));
    assert_int_equal (json_array_size (rows), 2);
    assert_true (replayed > json_array_size (rows));
    for (size_t index = 0; index < json_array_size (rows); index++) {
        json_t *row = json_array_get (rows, index), *entry = json_array_get (listed, index);
        assert_string_equal (json_string_value (json_object_get (row, "deployment")),
                             json_string_value (json_object_get (entry, "deployment_id")));
        assert_string_equal (json_string_value (json_object_get (row, "status")),
                             json_string_value (json_object_get (entry, "status")));
        assert_string_equal (json_string_value (json_object_get (row, "date")),
                             json_string_value (json_object_get (entry, "date")));
    }
    assert_string_equal (json_string_value (json_object_get (json_array_get (rows, 0), "deployment")), "rel-a-stg");
    assert_string_equal (json_string_value (json_object_get (json_array_get (rows, 1), "deployment")), "rel-b-stg");
    json_decref (console);
    json_decref (cli);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_requests_read_only_the_new_rows, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_history_advances_and_equals_a_fresh_replay, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_replaced_or_truncated_log_is_built_again, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_window_bounds_memory_and_pages_older_rows, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_history_lists_what_the_cli_lists, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
