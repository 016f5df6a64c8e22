/*  al_sd_notify.h: tell systemd about readiness and liveness (sd_notify, by hand).

    systemd's notification protocol is one datagram of "KEY=VALUE\n..." text sent to the
    AF_UNIX socket named by $NOTIFY_SOCKET (a path, or "@name" for the abstract namespace).
    Written here in a few lines rather than linking libsystemd: when the variable is
    absent (not run by systemd with Type=notify) every call does nothing.

    The broker sends READY=1 once both its endpoints are bound and WATCHDOG=1 from its
    loop; `airlock up` runs it with these variables and removes them from every other
    child's environment, so that no agent and no service the process driver starts can
    speak for the unit (airlock.service has NotifyAccess=all for the broker's sake).

    No state: thread-safe.
*/
#ifndef AL_SD_NOTIFY_H_INCLUDED
#define AL_SD_NOTIFY_H_INCLUDED

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

//  Send STATE (e.g. "READY=1\nSTATUS=listening") to $NOTIFY_SOCKET. Returns 1 if sent,
//  0 if $NOTIFY_SOCKET is unset or empty, -1 if the variable is malformed or sending
//  failed (errno set).
int al_sd_notify (const char *state);

//  The watchdog interval systemd expects pings within, in microseconds, from
//  $WATCHDOG_USEC; 0 when there is no watchdog (unset, empty or not a positive number).
uint64_t al_sd_watchdog_usec (void);

//  Remove NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID from this process's environment.
void al_sd_notify_forget (void);

#ifdef __cplusplus
}
#endif

#endif
