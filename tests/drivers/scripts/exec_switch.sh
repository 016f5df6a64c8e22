#!/bin/sh
# exec_switch.sh: the exec driver's "switch" step in the tests: what a load balancer
# update would be, reduced to a file naming the set that receives traffic.
set -u
printf '%s\n' "$AIRLOCK_SET" > "$AIRLOCK_EVIDENCE_DIR/active_set"
echo "traffic now goes to $AIRLOCK_SET"
