/*  test_log_format.c: `--log-format json` of `airlock broker` and `airlock agent`.

    The real CLI on an `airlock init` state directory, stderr into a file. Shown here:
    the broker started with --log-format json writes only JSON lines, each an object
    with exactly the string keys time (RFC 3339 UTC), level, component ("broker") and
    message; its start line is level info; a zsys error (a SIGHUP with a broken
    roles.yaml: "policy reload failed") is level error; SIGTERM still exits 0. An
    agent's start-up failure is a JSON line with its role as component. A bad
    --log-format value is refused with exit 2.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <czmq.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define S_DEADLINE_MS 30000

typedef struct {
    char dir [256];
    char airlock [400];
    pid_t broker;
} s_fixture_t;

static char *
s_read (const char *path)
{
    FILE *file = fopen (path, "r");
    if (!file)
        return strdup ("");
    char *text = calloc (1, 1 << 20);
    assert_non_null (text);
    size_t size = fread (text, 1, (1 << 20) - 1, file);
    text [size] = '\0';
    fclose (file);
    return text;
}

//  Every line of text must be a JSON object with exactly time, level, component,
//  message (strings); returns how many lines have level and a message containing needle.
static int
s_check_lines (const char *text, const char *component, const char *level, const char *needle)
{
    int matches = 0;
    char *copy = strdup (text), *saveptr = NULL;
    assert_non_null (copy);
    for (char *line = strtok_r (copy, "\n", &saveptr); line; line = strtok_r (NULL, "\n", &saveptr)) {
        json_error_t error;
        json_t *object = json_loads (line, 0, &error);
        if (!object)
            fprintf (stderr, "not JSON: %s (%s)\n", line, error.text);
        assert_non_null (object);
        assert_true (json_is_object (object));
        assert_int_equal (json_object_size (object), 4);
        const char *time_text = json_string_value (json_object_get (object, "time"));
        const char *line_level = json_string_value (json_object_get (object, "level"));
        const char *line_component = json_string_value (json_object_get (object, "component"));
        const char *message = json_string_value (json_object_get (object, "message"));
        assert_non_null (time_text);
        assert_non_null (line_level);
        assert_non_null (message);
        assert_non_null (line_component);
        assert_string_equal (line_component, component);
        //  2026-12-07T15:16:01.625Z
        assert_int_equal (strlen (time_text), 24);
        assert_true (time_text [4] == '-' && time_text [10] == 'T' && time_text [19] == '.' && time_text [23] == 'Z');
        if (strcmp (line_level, level) == 0 && strstr (message, needle))
            matches++;
        json_decref (object);
    }
    free (copy);
    return matches;
}

static int
s_setup (void **state)
{
    s_fixture_t *f = calloc (1, sizeof *f);
    assert_non_null (f);
    snprintf (f->dir, sizeof f->dir, "/tmp/al-logjson-XXXXXX");
    assert_non_null (mkdtemp (f->dir));
    snprintf (f->airlock, sizeof f->airlock, "%s/airlock", getenv ("AIRLOCK_BINARY_DIR"));
    char command [1200];
    snprintf (command, sizeof command, "'%s' init '%s' > '%s/init.out' 2>&1", f->airlock, f->dir, f->dir);
    assert_int_equal (system (command), 0);
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    s_fixture_t *f = *state;
    if (f->broker > 0) {
        kill (f->broker, SIGKILL);
        waitpid (f->broker, NULL, 0);
    }
    char command [400];
    snprintf (command, sizeof command, "rm -rf '%s'", f->dir);
    if (system (command) != 0)
        fprintf (stderr, "could not remove %s\n", f->dir);
    free (f);
    return 0;
}

//  Wait until the file holds a JSON line of level whose message contains needle.
static char *
s_wait_line (const char *path, const char *component, const char *level, const char *needle)
{
    int64_t deadline = zclock_mono () + S_DEADLINE_MS;
    char *text = NULL;
    while (true) {
        free (text);
        text = s_read (path);
        //  Only whole lines are judged: the last one may still be being written.
        char *end = strrchr (text, '\n');
        if (end)
            end [1] = '\0';
        else
            text [0] = '\0';
        if (s_check_lines (text, component, level, needle) > 0 || zclock_mono () > deadline)
            return text;
        zclock_sleep (50);
    }
}

static void
test_broker_json (void **state)
{
    s_fixture_t *f = *state;
    char err [400];
    snprintf (err, sizeof err, "%s/broker.err", f->dir);
    f->broker = fork ();
    assert_true (f->broker >= 0);
    if (f->broker == 0) {
        if (!freopen (err, "w", stderr))
            _exit (126);
        execl (f->airlock, "airlock", "broker", "--state", f->dir, "--log-format", "json", (char *) NULL);
        _exit (127);
    }
    char *text = s_wait_line (err, "broker", "info", "airlock broker: listening on ipc://");
    assert_int_equal (s_check_lines (text, "broker", "info", "airlock broker: listening on ipc://"), 1);
    free (text);

    //  A broken policy and SIGHUP: the broker's zsys_error, as level error.
    char path [400];
    snprintf (path, sizeof path, "%s/policy/roles.yaml", f->dir);
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fputs ("roles: [unclosed\n", file);
    fclose (file);
    kill (f->broker, SIGHUP);
    text = s_wait_line (err, "broker", "error", "broker: policy reload failed");
    assert_int_equal (s_check_lines (text, "broker", "error", "broker: policy reload failed"), 1);
    free (text);

    kill (f->broker, SIGTERM);
    int status = 0;
    bool exited = false;
    for (int waited = 0; waited < S_DEADLINE_MS && !exited; waited += 50) {
        exited = waitpid (f->broker, &status, WNOHANG) == f->broker;
        if (!exited)
            zclock_sleep (50);
    }
    assert_true (exited);
    f->broker = 0;
    assert_true (WIFEXITED (status));
    assert_int_equal (WEXITSTATUS (status), 0);
    //  Everything written, the last line included, is JSON.
    text = s_read (err);
    assert_true (strlen (text) > 0 && text [strlen (text) - 1] == '\n');
    assert_true (s_check_lines (text, "broker", "info", "") >= 1);
    free (text);
}

static void
test_agent_json (void **state)
{
    s_fixture_t *f = *state;
    char command [1400], path [400];
    snprintf (path, sizeof path, "%s/agent.err", f->dir);
    snprintf (command, sizeof command, "'%s' agent qa --config '%s/missing.yaml' --log-format json 2> '%s'",
              f->airlock, f->dir, path);
    int rc = system (command);
    assert_true (WIFEXITED (rc) && WEXITSTATUS (rc) == 2);
    char *text = s_read (path);
    assert_int_equal (s_check_lines (text, "qa", "error", "missing.yaml: cannot open"), 1);
    free (text);

    snprintf (command, sizeof command, "'%s' broker --state '%s' --log-format xml 2> '%s'", f->airlock, f->dir, path);
    rc = system (command);
    assert_true (WIFEXITED (rc) && WEXITSTATUS (rc) == 2);
    text = s_read (path);
    assert_non_null (strstr (text, "--log-format: 'xml' is not text or json"));
    free (text);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_broker_json, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_agent_json, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
