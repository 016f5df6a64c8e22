/*  al_driver_builtins.c: the drivers built into airlock, as the registry registers them.

    Adding a built-in driver is adding its table here; the dispatcher (al_driver.c)
    never names one. Out-of-tree drivers call al_driver_register instead.
*/
#include "deploy/al_driver_int.h"

const al_driver_ops_t *const al_driver_builtins [] = {
    &al_driver_process_ops,
    &al_driver_exec_ops,
    NULL
};
