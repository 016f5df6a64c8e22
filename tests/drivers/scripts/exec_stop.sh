#!/bin/sh
# exec_stop.sh: the exec driver's "stop" step in the tests. SIGTERM to the instance's
# process group, up to AIRLOCK_GRACE_MS for it to exit, then SIGKILL and
# "airlock-stop: forced" on stdout.
set -u
pid=$AIRLOCK_PID
alive () {
    [ -e "/proc/$1" ] && ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$1/stat" 2>/dev/null
}
kill -TERM "-$pid" 2>/dev/null
waited=0
while alive "$pid" && [ $waited -lt "$AIRLOCK_GRACE_MS" ]; do
    sleep 0.05
    waited=$((waited + 50))
done
if alive "$pid"; then
    kill -KILL "-$pid" 2>/dev/null
    echo "airlock-stop: forced"
fi
echo "stopped $AIRLOCK_ID"
