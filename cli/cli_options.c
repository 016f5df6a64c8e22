/*  cli_options.c: the one option parser every subcommand uses (al_cli_parse).

    Every command reads its arguments the same way: the common options (--config FILE
    and --state DIR, turned into the airlock.yaml path by al_cli_config_path; --json),
    then the command's own table of options (a value, a flag, or a value handed to a
    checking function), then an optional hook for options of another form, then slots
    for the arguments that are not options. So a missing value and an unknown option are
    worded the same in every command, and each command lists its options instead of
    repeating the loop that compares them. It prints only those two messages (and the
    command's usage after the second); it never exits.
*/
#include "cli/cli.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  The value after argv[*index], moving *index onto it; NULL after the message.
static const char *
s_value (const al_cli_parser_t *parser, int argc, char **argv, int *index)
{
    if (*index + 1 >= argc) {
        fprintf (stderr, "airlock %s: %s needs a value\n", parser->command, argv [*index]);
        return NULL;
    }
    return argv [++*index];
}

//  The row of the command's table named arg, or NULL.
static const al_cli_option_t *
s_find (const al_cli_option_t *options, const char *arg)
{
    for (const al_cli_option_t *option = options; option && option->name; option++)
        if (strcmp (option->name, arg) == 0)
            return option;
    return NULL;
}

int
al_cli_parse (const al_cli_parser_t *parser, int argc, char **argv, al_cli_common_t *common)
{
    assert (parser && parser->command && common);
    memset (common, 0, sizeof *common);
    for (int index = 1; index < argc; index++) {
        const char *arg = argv [index];
        if (parser->config && (strcmp (arg, "--config") == 0 || strcmp (arg, "--state") == 0)) {
            const char *value = s_value (parser, argc, argv, &index);
            if (!value)
                return -1;
            *(arg [2] == 'c'? &common->config_option: &common->state_option) = value;
            continue;
        }
        if (parser->json && strcmp (arg, "--json") == 0) {
            common->json = true;
            continue;
        }
        const al_cli_option_t *option = s_find (parser->options, arg);
        if (option) {
            assert ((option->value != NULL) + (option->flag != NULL) + (option->take != NULL) == 1);
            if (option->flag) {
                *option->flag = true;
                continue;
            }
            const char *value = s_value (parser, argc, argv, &index);
            if (!value)
                return -1;
            if (option->value)
                *option->value = value;
            else
            if (option->take (value, option->arg) != 0)
                return -1;
            continue;
        }
        if (parser->other) {
            int taken = parser->other (argc, argv, &index, parser->other_arg);
            if (taken < 0)
                return -1;
            if (taken)
                continue;
        }
        if (arg [0] != '-' && common->arguments < parser->arguments_max) {
            parser->arguments [common->arguments++] = arg;
            continue;
        }
        fprintf (stderr, "airlock %s: unexpected argument '%s'\n\n", parser->command, arg);
        if (parser->usage)
            parser->usage (stderr);
        return -1;
    }
    if (parser->config) {
        common->config_path = al_cli_config_path (common->config_option, common->state_option,
                                                  common->config_buffer, sizeof common->config_buffer);
        if (!common->config_path) {
            fprintf (stderr, "airlock %s: --state: path too long\n", parser->command);
            return -1;
        }
    }
    return 0;
}

int
al_cli_take_number (const char *value, void *arg)
{
    const al_cli_number_t *number = (const al_cli_number_t *) arg;
    char *end = NULL;
    long parsed = strtol (value, &end, 10);
    if (!*value || !end || *end || parsed < number->min || parsed > number->max) {
        fprintf (stderr, "airlock %s: %s: '%s' is not a number of %s (%ld..%ld)\n", number->command, number->name,
                 value, number->unit, number->min, number->max);
        return -1;
    }
    *number->out = (int) parsed;
    if (number->text)
        *number->text = value;
    return 0;
}
