#!/bin/sh
# test_policy_cli.sh AIRLOCK SOURCE_DIR: `airlock policy` exit codes and messages.
#
# check passes on the shipped default and fails (exit 1) on a broken copy listing every
# error with file:line:column; explain exits 0 allowed / 1 denied with the rule; usage
# errors exit 2; show --json carries the digest that check prints.
set -u
airlock=${1:?usage: test_policy_cli.sh AIRLOCK SOURCE_DIR}
source_dir=${2:?usage: test_policy_cli.sh AIRLOCK SOURCE_DIR}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
failures=0

expect () {  # expect CODE PATTERN COMMAND...: exit code and a line of output matching PATTERN
    code=$1 pattern=$2
    shift 2
    "$@" > "$scratch/out" 2>&1
    got=$?
    if [ "$got" -ne "$code" ] || ! grep -q -- "$pattern" "$scratch/out"; then
        echo "FAIL: $* -> exit $got (want $code), output:"; sed 's/^/    /' "$scratch/out"
        failures=$((failures + 1))
    fi
}

default="$source_dir/policies/default"
expect 0 "valid policy, digest [0-9a-f]\{64\}" "$airlock" policy check "$default"
AIRLOCK_POLICY_DIR="$default" expect 0 "valid policy" "$airlock" policy check

# Seven bus-agent roles (orchestrator, qa, deploy-manager, monitor, ci, notifier, console)
# each get the unknown key, plus the bad time: 8 errors.
mkdir "$scratch/bad" && cp "$default"/*.yaml "$scratch/bad/"
sed -i 's/    kind: bus-agent$/    kind: bus-agent\n    alow: everything/' "$scratch/bad/roles.yaml"
sed -i 's/start: "10:00"/start: "25:00"/' "$scratch/bad/constraints.yaml"
expect 1 "roles.yaml:[0-9]*:5: role 'orchestrator': unknown key 'alow'" "$airlock" policy check "$scratch/bad"
expect 1 "constraints.yaml:[0-9]*:14: start: '25:00' is not a time of day" "$airlock" policy check "$scratch/bad"
expect 1 "invalid policy (8 errors)" "$airlock" policy check "$scratch/bad"

expect 0 "rule: roles.yaml:[0-9]*:[0-9]*: orchestrator may send DeployRequest in staging" \
    "$airlock" policy explain orchestrator DeployRequest staging --dir "$default"
expect 1 "only the broker's approval gate deploys to production" \
    "$airlock" policy explain orchestrator DeployRequest production --dir "$default"
expect 1 "default deny" "$airlock" policy explain backend-specialist DeployRequest staging --dir "$default"
expect 1 '"allowed": false' "$airlock" policy explain qa QaRequest staging --dir "$default" --json
expect 2 "unknown message type 'Deploy'" "$airlock" policy explain qa Deploy staging --dir "$default"
expect 2 "usage:" "$airlock" policy frobnicate
expect 0 "usage:" "$airlock" policy show --help

digest=$("$airlock" policy check "$default" | sed 's/.*digest //')
expect 0 "\"digest\": \"$digest\"" "$airlock" policy show "$default" --json
expect 0 "hotfix     quorum: 1 manager + 1 security" "$airlock" policy show "$default"

# No DIR: the state directory's policy (--state, --config, $AIRLOCK_CONFIG), never a
# policies/default of the directory you stand in (here a broken one).
"$airlock" init "$scratch/state" > /dev/null 2>&1 || { echo "FAIL: airlock init"; failures=$((failures + 1)); }
mkdir -p "$scratch/cwd/policies" && cp -r "$scratch/bad" "$scratch/cwd/policies/default"
(cd "$scratch/cwd" && env -u AIRLOCK_POLICY_DIR AIRLOCK_CONFIG="$scratch/state/airlock.yaml" \
    "$airlock" policy check) > "$scratch/out" 2>&1
if [ $? -ne 0 ] || ! grep -q "$scratch/state/policy: valid policy" "$scratch/out"; then
    echo "FAIL: policy check with AIRLOCK_CONFIG:"; sed 's/^/    /' "$scratch/out"; failures=$((failures + 1))
fi
(cd "$scratch/cwd" && env -u AIRLOCK_POLICY_DIR -u AIRLOCK_CONFIG "$airlock" policy check) > "$scratch/out" 2>&1
if [ $? -ne 2 ] || ! grep -q "airlock-state/airlock.yaml" "$scratch/out" || grep -q "alow" "$scratch/out"; then
    echo "FAIL: policy check without a state:"; sed 's/^/    /' "$scratch/out"; failures=$((failures + 1))
fi
expect 0 "$scratch/state/policy: valid policy" env -u AIRLOCK_POLICY_DIR "$airlock" policy check --state "$scratch/state"
expect 0 "allowed" env -u AIRLOCK_POLICY_DIR "$airlock" policy explain orchestrator DeployRequest staging \
    --config "$scratch/state/airlock.yaml"
expect 0 '"valid": true' "$airlock" policy check "$default" --json
expect 1 '"valid": false' "$airlock" policy check "$scratch/bad" --json
expect 1 "role 'orchestrator': unknown key 'alow'" "$airlock" policy check "$scratch/bad" --json

[ "$failures" -eq 0 ] && echo "test_policy_cli: all passed"
exit "$failures"
