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

# Six bus-agent roles (orchestrator, qa, deploy-manager, monitor, ci, notifier) each get the
# unknown key, plus the bad time: 7 errors.
mkdir "$scratch/bad" && cp "$default"/*.yaml "$scratch/bad/"
sed -i 's/    kind: bus-agent$/    kind: bus-agent\n    alow: everything/' "$scratch/bad/roles.yaml"
sed -i 's/start: "10:00"/start: "25:00"/' "$scratch/bad/constraints.yaml"
expect 1 "roles.yaml:[0-9]*:5: unknown key 'alow' in role 'orchestrator'" "$airlock" policy check "$scratch/bad"
expect 1 "constraints.yaml:[0-9]*:14: start: '25:00' is not a time of day" "$airlock" policy check "$scratch/bad"
expect 1 "invalid policy (7 errors)" "$airlock" policy check "$scratch/bad"

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

[ "$failures" -eq 0 ] && echo "test_policy_cli: all passed"
exit "$failures"
