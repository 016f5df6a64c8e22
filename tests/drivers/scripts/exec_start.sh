#!/bin/sh
# exec_start.sh: the exec driver's "start" step in the tests. Starts service.sh in its
# own session (so the stop step can signal its whole group) with PORT=$AIRLOCK_PORT,
# output to a log beside the evidence (never to this step's stdout, which the driver
# captures), then waits until the service listens or exits. Prints "airlock-pid: N".
# A service that exits during start makes this step exit with the service's code and
# its log tail on stderr.
set -u
here=$(dirname "$0")
log="$AIRLOCK_EVIDENCE_DIR/$AIRLOCK_ID.service.log"
alive () {
    [ -e "/proc/$1" ] && ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$1/stat" 2>/dev/null
}
PORT="$AIRLOCK_PORT" setsid /bin/sh "$here/service.sh" "$AIRLOCK_ARTIFACT" "$AIRLOCK_VERSION" \
    </dev/null >"$log" 2>&1 &
pid=$!
tries=0
while [ $tries -lt 400 ]; do
    if grep -q "listening on" "$log" 2>/dev/null; then
        echo "airlock-pid: $pid"
        exit 0
    fi
    if ! alive $pid; then
        wait $pid
        code=$?
        echo "service exited during start:" >&2
        tail -c 400 "$log" >&2
        exit $code
    fi
    sleep 0.05
    tries=$((tries + 1))
done
kill -KILL "-$pid" 2>/dev/null
echo "service did not listen within 20 s" >&2
exit 124
