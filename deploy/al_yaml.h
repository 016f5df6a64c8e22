/*  deploy/al_yaml.h: moved to base/al_yaml.h (the one YAML walk of the product).

    Kept only so that deploy/ builds until its files include "base/al_yaml.h"
    themselves; then this file is deleted.
*/
#include "base/al_yaml.h"
