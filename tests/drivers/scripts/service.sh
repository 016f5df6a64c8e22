#!/bin/sh
# service.sh ARTIFACT VERSION: one demo-service instance, as both drivers' tests run it.
# PORT and the fault variables (FAIL_READINESS, CRASH_AT_START) come from the
# environment. STUBBORN=1 wraps the service in a shell that ignores SIGTERM, so a
# graceful stop cannot succeed and the driver must escalate to SIGKILL. A service that
# leaks a secret is played by SERVICE_TOKEN: when set, it is printed on both streams.
artifact=$1
version=$2
if [ -n "${SERVICE_TOKEN:-}" ]; then
    echo "starting with token $SERVICE_TOKEN"
    echo "token=$SERVICE_TOKEN" >&2
fi
if [ "${STUBBORN:-0}" = 1 ]; then
    trap '' TERM
    "$artifact" --version "$version" &
    while :; do sleep 0.05; done
fi
exec "$artifact" --version "$version"
