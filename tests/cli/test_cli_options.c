/*  test_cli_options.c: the option parser every airlock command uses (cli/cli_options.c).

    al_cli_parse is called directly (cli_options.c and cli_state.c are compiled into this
    test) with tables like the commands', and its stderr is captured: the common options
    (--config, --state, --json), value, flag and checked options, the argument slots, the
    other-form hook, and the two messages (a missing value, an unexpected argument naming
    itself, then the usage), the airlock.yaml path it resolves and al_cli_take_number's
    bounds. Then the built binary: every command that reads options this way refuses an
    unknown option with exit 2, naming it, and still answers --help with its usage.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "cli/cli.h"
#include "cli_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void
s_assert_contains (const char *text, const char *part)
{
    if (!text || !strstr (text, part))
        fail_msg ("'%s' does not contain '%s'", text? text: "(null)", part);
}

//  ---- capturing stderr ---------------------------------------------------------------

static FILE *s_capture_file;
static int s_saved_stderr = -1;
static char s_captured [8192];

static void
s_capture_start (void)
{
    fflush (stderr);
    s_capture_file = tmpfile ();
    assert_non_null (s_capture_file);
    s_saved_stderr = dup (STDERR_FILENO);
    assert_true (s_saved_stderr >= 0);
    assert_true (dup2 (fileno (s_capture_file), STDERR_FILENO) >= 0);
}

//  What was written to stderr since s_capture_start.
static const char *
s_capture_end (void)
{
    fflush (stderr);
    assert_true (dup2 (s_saved_stderr, STDERR_FILENO) >= 0);
    close (s_saved_stderr);
    s_saved_stderr = -1;
    rewind (s_capture_file);
    size_t length = fread (s_captured, 1, sizeof s_captured - 1, s_capture_file);
    s_captured [length] = 0;
    fclose (s_capture_file);
    return s_captured;
}

static void
s_usage (FILE *out)
{
    fprintf (out, "usage: airlock test [--listen ADDRESS]\n");
}

//  Parse the NULL-ended words (argv[0] is the command) with parser; returns its result
//  and leaves stderr in s_captured.
static int
s_parse (const al_cli_parser_t *parser, const char *const *words, al_cli_common_t *common)
{
    char *argv [32];
    int argc = 0;
    while (words [argc]) {
        assert_true (argc < 31);
        argv [argc] = (char *) words [argc];
        argc++;
    }
    argv [argc] = NULL;
    s_capture_start ();
    int rc = al_cli_parse (parser, argc, argv, common);
    s_capture_end ();
    return rc;
}

//  ---- al_cli_parse ---------------------------------------------------------------------

//  A take for --tag: records the value; "bad" is refused.
static int
s_take_tag (const char *value, void *arg)
{
    if (strcmp (value, "bad") == 0) {
        fprintf (stderr, "airlock test: --tag: 'bad' is refused\n");
        return -1;
    }
    *(const char **) arg = value;
    return 0;
}

//  The other-form hook: takes --mode=X.
static int
s_other (int argc, char **argv, int *index, void *arg)
{
    (void) argc;
    if (strncmp (argv [*index], "--mode=", 7) != 0)
        return 0;
    if (strcmp (argv [*index] + 7, "") == 0) {
        fprintf (stderr, "airlock test: --mode= needs a mode\n");
        return -1;
    }
    *(const char **) arg = argv [*index] + 7;
    return 1;
}

static void
test_parse_every_kind (void **state)
{
    (void) state;
    const char *listen = "default", *tag = NULL, *mode = NULL;
    const char *slots [2] = { NULL, NULL };
    bool verbose = false;
    const al_cli_option_t options [] = {
        { "--listen", .value = &listen }, { "--verbose", .flag = &verbose },
        { "--tag", .take = s_take_tag, .arg = &tag }, { .name = NULL }
    };
    const al_cli_parser_t parser = { "test", s_usage, .config = true, .json = true, .options = options,
                                     .arguments = slots, .arguments_max = 2, .other = s_other,
                                     .other_arg = &mode };
    al_cli_common_t common;
    const char *words [] = { "test", "first", "--config", "/etc/a.yaml", "--listen", "127.0.0.1:1",
                             "--json", "--verbose", "--state", "/srv/state", "--tag", "t1", "--mode=fast",
                             "second", NULL };
    assert_int_equal (s_parse (&parser, words, &common), 0);
    assert_string_equal (s_captured, "");
    assert_string_equal (common.config_option, "/etc/a.yaml");
    assert_string_equal (common.state_option, "/srv/state");
    assert_true (common.json);
    assert_int_equal (common.arguments, 2);
    assert_string_equal (slots [0], "first");
    assert_string_equal (slots [1], "second");
    assert_string_equal (listen, "127.0.0.1:1");
    assert_true (verbose);
    assert_string_equal (tag, "t1");
    assert_string_equal (mode, "fast");

    //  Nothing given: common is zeroed, the defaults stay.
    listen = "default";
    verbose = false;
    slots [0] = slots [1] = NULL;
    common.json = true;
    const char *none [] = { "test", NULL };
    assert_int_equal (s_parse (&parser, none, &common), 0);
    assert_null (common.config_option);
    assert_null (common.state_option);
    assert_false (common.json);
    assert_int_equal (common.arguments, 0);
    assert_string_equal (listen, "default");
    assert_false (verbose);
    assert_null (slots [0]);
}

static void
test_parse_errors (void **state)
{
    (void) state;
    const char *listen = NULL, *tag = NULL, *release = NULL;
    const al_cli_option_t options [] = {
        { "--listen", .value = &listen }, { "--tag", .take = s_take_tag, .arg = &tag }, { .name = NULL }
    };
    const al_cli_parser_t parser = { "test", s_usage, .config = true, .options = options,
                                     .arguments = &release, .arguments_max = 1 };
    al_cli_common_t common;

    //  A missing value names the option, for the common ones and the command's own.
    const char *no_config [] = { "test", "--config", NULL };
    assert_int_equal (s_parse (&parser, no_config, &common), -1);
    assert_string_equal (s_captured, "airlock test: --config needs a value\n");
    const char *no_state [] = { "test", "--state", NULL };
    assert_int_equal (s_parse (&parser, no_state, &common), -1);
    assert_string_equal (s_captured, "airlock test: --state needs a value\n");
    const char *no_listen [] = { "test", "--listen", NULL };
    assert_int_equal (s_parse (&parser, no_listen, &common), -1);
    assert_string_equal (s_captured, "airlock test: --listen needs a value\n");
    const char *no_tag [] = { "test", "--tag", NULL };
    assert_int_equal (s_parse (&parser, no_tag, &common), -1);
    assert_string_equal (s_captured, "airlock test: --tag needs a value\n");

    //  An unknown option names itself, then the usage.
    const char *unknown [] = { "test", "rel-1", "--bogus", "x", NULL };
    assert_int_equal (s_parse (&parser, unknown, &common), -1);
    assert_string_equal (s_captured, "airlock test: unexpected argument '--bogus'\n\n"
                                     "usage: airlock test [--listen ADDRESS]\n");
    //  --json is not an option of this command.
    const char *json [] = { "test", "--json", NULL };
    assert_int_equal (s_parse (&parser, json, &common), -1);
    s_assert_contains (s_captured, "unexpected argument '--json'");
    //  One slot: a second argument is unexpected.
    release = NULL;
    const char *two [] = { "test", "rel-1", "rel-2", NULL };
    assert_int_equal (s_parse (&parser, two, &common), -1);
    s_assert_contains (s_captured, "airlock test: unexpected argument 'rel-2'");
    assert_string_equal (release, "rel-1");
    //  A take that refuses: its own message, nothing more.
    const char *refused [] = { "test", "--tag", "bad", NULL };
    assert_int_equal (s_parse (&parser, refused, &common), -1);
    assert_string_equal (s_captured, "airlock test: --tag: 'bad' is refused\n");

    //  A command without --config/--state and without usage: both unexpected, no usage.
    const al_cli_parser_t plain = { "plain", NULL, .json = true };
    const char *config [] = { "plain", "--config", "a.yaml", NULL };
    assert_int_equal (s_parse (&plain, config, &common), -1);
    assert_string_equal (s_captured, "airlock plain: unexpected argument '--config'\n\n");
    const char *state_dir [] = { "plain", "--state", "dir", NULL };
    assert_int_equal (s_parse (&plain, state_dir, &common), -1);
    assert_string_equal (s_captured, "airlock plain: unexpected argument '--state'\n\n");
    //  ... and no argument slot.
    const char *word [] = { "plain", "word", NULL };
    assert_int_equal (s_parse (&plain, word, &common), -1);
    assert_string_equal (s_captured, "airlock plain: unexpected argument 'word'\n\n");
    const char *ok [] = { "plain", "--json", NULL };
    assert_int_equal (s_parse (&plain, ok, &common), 0);
    assert_true (common.json);
}

static void
test_take_number (void **state)
{
    (void) state;
    int seconds = 5;
    const char *text = NULL;
    al_cli_number_t number = { "status", "--timeout", "seconds", 1, 3600, &seconds, &text };
    const al_cli_option_t options [] = { { "--timeout", .take = al_cli_take_number, .arg = &number },
                                         { .name = NULL } };
    const al_cli_parser_t parser = { "status", NULL, .options = options };
    al_cli_common_t common;
    const char *good [] = { "status", "--timeout", "3600", NULL };
    assert_int_equal (s_parse (&parser, good, &common), 0);
    assert_int_equal (seconds, 3600);
    assert_string_equal (text, "3600");
    const char *bad [] = { "abc", "0", "3601", "", "12s", "-5" };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        const char *words [] = { "status", "--timeout", bad [i], NULL };
        assert_int_equal (s_parse (&parser, words, &common), -1);
        char expected [128];
        snprintf (expected, sizeof expected, "airlock status: --timeout: '%s' is not a number of seconds (1..3600)\n",
                  bad [i]);
        assert_string_equal (s_captured, expected);
        assert_int_equal (seconds, 3600);           // unchanged
    }
}

static void
test_config_path (void **state)
{
    (void) state;
    const al_cli_parser_t parser = { "test", NULL, .config = true };
    al_cli_common_t common;
    //  --config wins over --state.
    const char *both [] = { "test", "--state", "/srv/state", "--config", "/etc/airlock.yaml", NULL };
    assert_int_equal (s_parse (&parser, both, &common), 0);
    assert_string_equal (common.config_path, "/etc/airlock.yaml");
    const char *state_dir [] = { "test", "--state", "/srv/state", NULL };
    assert_int_equal (s_parse (&parser, state_dir, &common), 0);
    assert_string_equal (common.config_path, "/srv/state/airlock.yaml");
    assert_ptr_equal (common.config_path, common.config_buffer);
    //  Neither: $AIRLOCK_CONFIG, else the default.
    const char *none [] = { "test", NULL };
    setenv ("AIRLOCK_CONFIG", "/env/airlock.yaml", 1);
    assert_int_equal (s_parse (&parser, none, &common), 0);
    assert_string_equal (common.config_path, "/env/airlock.yaml");
    unsetenv ("AIRLOCK_CONFIG");
    assert_int_equal (s_parse (&parser, none, &common), 0);
    assert_string_equal (common.config_path, AL_CLI_DEFAULT_CONFIG);
    //  A state directory too long for a path: refused, said once.
    static char long_dir [3000];
    memset (long_dir, 'd', sizeof long_dir - 1);
    long_dir [0] = '/';
    const char *too_long [] = { "test", "--state", long_dir, NULL };
    assert_int_equal (s_parse (&parser, too_long, &common), -1);
    assert_string_equal (s_captured, "airlock test: --state: path too long\n");
    //  A command without --config/--state has no path.
    const al_cli_parser_t plain = { "plain", NULL, .config = false };
    assert_int_equal (s_parse (&plain, none, &common), 0);
    assert_null (common.config_path);
}

//  ---- the built binary -----------------------------------------------------------------

static void
test_every_command (void **state)
{
    (void) state;
    //  The command words, and what its usage begins with.
    static const char *const commands [][3] = {
        { "init", NULL, "usage: airlock init" }, { "check", NULL, "usage: airlock check" },
        { "broker", NULL, "usage: airlock broker" }, { "status", NULL, "usage: airlock status" },
        { "up", NULL, "usage: airlock up" }, { "submit", NULL, "usage: airlock submit" },
        { "rollback", NULL, "usage: airlock rollback" }, { "watch", NULL, "usage: airlock watch" },
        { "runbook", NULL, "usage: airlock runbook" }, { "costplan", NULL, "usage: airlock costplan" },
        { "agent", NULL, "usage: airlock agent" }, { "mcp", NULL, "usage: airlock mcp" },
        { "console", NULL, "usage: airlock console" }, { "audit", "verify", "usage: airlock audit" },
        { "audit", "history", "usage: airlock audit" }, { "store", "copy", "usage: airlock store" },
        { "policy", "check", "usage: airlock policy" }, { "identity", "add", "usage: airlock identity" },
        { "demo", "load", "usage: airlock demo" },
    };
    for (size_t i = 0; i < sizeof commands / sizeof commands [0]; i++) {
        const char *out, *err;
        const char *words [5] = { commands [i][0] };
        size_t count = 1;
        if (commands [i][1])
            words [count++] = commands [i][1];
        words [count++] = "--bogus-option";
        words [count] = NULL;
        al_child_t *child = cli_test_run (words, NULL, &out, &err);
        if (al_child_exit_code (child) != 2 || !strstr (err, "unexpected argument '--bogus-option'"))
            fail_msg ("%s %s: exit %d, stderr '%s'", commands [i][0], commands [i][1]? commands [i][1]: "",
                      al_child_exit_code (child), err);
        al_child_destroy (&child);

        words [count - 1] = "--help";
        child = cli_test_run (words, NULL, &out, &err);
        if (al_child_exit_code (child) != 0 || strncmp (out, commands [i][2], strlen (commands [i][2])) != 0)
            fail_msg ("%s --help: exit %d, stdout '%.80s'", commands [i][0], al_child_exit_code (child), out);
        al_child_destroy (&child);
    }
    //  A missing value is said the same way everywhere.
    const char *out, *err;
    const char *words [] = { "status", "--timeout", NULL };
    al_child_t *child = cli_test_run (words, NULL, &out, &err);
    assert_int_equal (al_child_exit_code (child), 2);
    s_assert_contains (err, "airlock status: --timeout needs a value");
    al_child_destroy (&child);
    const char *state_words [] = { "submit", "--service", "api", "--state", NULL };
    child = cli_test_run (state_words, NULL, &out, &err);
    assert_int_equal (al_child_exit_code (child), 2);
    s_assert_contains (err, "airlock submit: --state needs a value");
    al_child_destroy (&child);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_parse_every_kind),
        cmocka_unit_test (test_parse_errors),
        cmocka_unit_test (test_take_number),
        cmocka_unit_test (test_config_path),
        cmocka_unit_test (test_every_command),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
