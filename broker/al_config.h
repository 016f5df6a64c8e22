/*  broker/al_config.h: moved to base/al_config.h (airlock.yaml is read by the broker,
    the agents and the CLI alike, so it belongs below all of them).

    Kept only so that files not yet switched build; include "base/al_config.h".
*/
#include "base/al_config.h"
