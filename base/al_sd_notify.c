/*  al_sd_notify.c: systemd's notification protocol over a unix datagram socket (see
    al_sd_notify.h). One socket per message, closed before returning; no state.
*/
#include "base/al_sd_notify.h"

#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int
al_sd_notify (const char *state)
{
    assert (state);
    const char *path = getenv ("NOTIFY_SOCKET");
    if (!path || !*path)
        return 0;
    struct sockaddr_un address;
    memset (&address, 0, sizeof address);
    address.sun_family = AF_UNIX;
    size_t length = strlen (path);
    if ((path [0] != '/' && path [0] != '@') || length >= sizeof address.sun_path) {
        errno = EINVAL;
        return -1;
    }
    memcpy (address.sun_path, path, length);
    if (path [0] == '@')
        address.sun_path [0] = '\0';        // abstract namespace: no terminating NUL
    socklen_t address_length = (socklen_t) (offsetof (struct sockaddr_un, sun_path) + length
                                            + (path [0] == '/'? 1: 0));
    int fd = socket (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    size_t size = strlen (state);
    ssize_t sent = sendto (fd, state, size, MSG_NOSIGNAL,
                           (struct sockaddr *) &address, address_length);
    int saved = errno;
    close (fd);
    errno = saved;
    return sent == (ssize_t) size? 1: -1;
}

uint64_t
al_sd_watchdog_usec (void)
{
    const char *text = getenv ("WATCHDOG_USEC");
    if (!text || !*text)
        return 0;
    char *end = NULL;
    errno = 0;
    unsigned long long value = strtoull (text, &end, 10);
    if (errno || *end || text [0] == '-')
        return 0;
    return (uint64_t) value;
}

void
al_sd_notify_forget (void)
{
    unsetenv ("NOTIFY_SOCKET");
    unsetenv ("WATCHDOG_USEC");
    unsetenv ("WATCHDOG_PID");
}
