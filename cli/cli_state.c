/*  cli_state.c: what every subcommand needs to find a state directory.

    One lookup rule for airlock.yaml across the tool (al_cli_config_path); the
    --config/--state options that feed it are read by al_cli_parse (cli_options.c).
    The logs `airlock up` writes are read through agents/al_process_logs.h. Nothing
    here prints or exits.
*/
#include "cli/cli.h"
#include "base/al_paths.h"
#include "base/al_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *
al_cli_config_path (const char *config_option, const char *state_option, char *buffer, size_t size)
{
    if (config_option)
        return config_option;
    if (state_option) {
        char error [256];
        return al_paths_get (state_option, AL_PATH_AIRLOCK_YAML, buffer, size, error, sizeof error) == 0? buffer: NULL;
    }
    const char *environment = getenv ("AIRLOCK_CONFIG");
    return environment && *environment? environment: AL_CLI_DEFAULT_CONFIG;
}
