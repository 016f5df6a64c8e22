#!/bin/sh
# test_demo.sh SOURCE_DIR BINARY_DIR: `make demo`'s story, the faster variant
# (AIRLOCK_DEMO_FAST=1), run twice by ctest.
#
# By default: exit 0 with every phase complete (the replay of the log agreeing with the
# live state included), in at most 150 lines, every echoed command one line a shell
# parses, with the same binary path, the service named `demo` only, the denial's reason
# said once. With --verbose: exit 0 and every line the default run leaves out: each
# approval request in full (three), every file `airlock init` created, the deployment
# events of `airlock status`, every record of the replay, every progress line of the
# watch, and nothing said to be left out.
set -eu
source_dir=$1
binary_dir=$2
scratch=$(mktemp -d /tmp/airlock-test-demo-XXXXXX)
trap 'rm -rf "$scratch"' EXIT
failures=0
fail() { echo "test_demo: FAIL: $*"; failures=$((failures + 1)); }

# run NAME [OPTIONS]: the demo, its output in $scratch/NAME; shown in full if it fails.
run() {
    name=$1; shift
    if ! sh "$source_dir/scripts/demo" "$@" "$binary_dir" > "$scratch/$name" 2>&1; then
        cat "$scratch/$name"
        fail "scripts/demo $* exited non-zero"
        return 1
    fi
    return 0
}
# count FILE PATTERN: lines of FILE matching the basic regular expression PATTERN.
count() { grep -c -- "$2" "$1" || true; }

#  ---- the default run --------------------------------------------------------------
if run default; then
    lines=$(wc -l < "$scratch/default")
    echo "test_demo: default output: $lines lines"
    [ "$lines" -le 150 ] || fail "the default output has $lines lines (at most 150)"
    for phase in 1 2 3 4 5 6 7 8 9 10 11 12 13; do
        grep -q "^\[DEMO PHASE $phase COMPLETE\]" "$scratch/default" || fail "phase $phase did not complete"
    done
    grep -q "^\[DEMO COMPLETE\] every step happened as expected" "$scratch/default" || fail "no [DEMO COMPLETE]"
    [ "$(count "$scratch/default" '^\[DEMO ERROR\]')" -eq 0 ] || fail "[DEMO ERROR] lines"
    # What the default leaves out, it says: "..." where it cut, and how much at the end.
    [ "$(count "$scratch/default" '^    .* \.\.\.$')" -ge 5 ] || fail "the default output does not mark its cuts"
    grep -q '^(\.\.\.: [0-9]* lines of command output left out; scripts/demo --verbose shows every line)$' \
        "$scratch/default" || fail "the default output does not say how much it left out"
    # Every echoed command: one line a shell parses, the airlock binary by one path.
    sed -n 's/^  \$ //p' "$scratch/default" > "$scratch/commands"
    [ "$(wc -l < "$scratch/commands")" -ge 20 ] || fail "fewer than 20 echoed commands"
    while IFS= read -r command; do
        sh -n -c "$command" 2>/dev/null || fail "echoed command does not parse: $command"
        first=${command%% *}
        case "$first" in
            *airlock) [ "$first" = "$binary_dir/airlock" ] || fail "another airlock path: $command" ;;
        esac
    done < "$scratch/commands"
    grep -q -- "--summary \"demo v1\"" "$scratch/commands" || fail "an argument with a space is not quoted"
    grep -q "^sqlite3 /tmp/airlock-demo-[A-Za-z0-9]*/audit.db \"UPDATE events SET decision = 1, reason = '' WHERE seq = [0-9]*\"$" \
        "$scratch/commands" || fail "the insider's sqlite3 command is not echoed as it ran"
    # One name for the service.
    [ "$(count "$scratch/default" 'demo-service')" -eq 0 ] || fail "the service is also called demo-service"
    # The agent's denial: its reason once.
    denied=$(grep '\[DENIED\]' "$scratch/default" || true)
    [ -n "$denied" ] || fail "no [DENIED] line"
    [ "$(printf '%s\n' "$denied" | grep -o 'DeployRequest in production' | wc -l)" -eq 1 ] \
        || fail "the denial repeats its reason: $denied"
    # The watch: step results, none of the progress lines.
    grep -q '\[soak\] succeeded  held' "$scratch/default" || fail "the watch's soak result is not shown"
    [ "$(count "$scratch/default" '\] \(started\|running\)  *[0-9]*%')" -eq 0 ] || fail "progress lines by default"
fi

#  ---- --verbose ------------------------------------------------------------------
if run verbose --verbose; then
    lines=$(wc -l < "$scratch/verbose")
    echo "test_demo: --verbose output: $lines lines"
    grep -q "^\[DEMO COMPLETE\] every step happened as expected" "$scratch/verbose" || fail "--verbose: no [DEMO COMPLETE]"
    [ "$(count "$scratch/verbose" 'lines of command output left out')" -eq 0 ] || fail "--verbose left lines out"
    [ "$(count "$scratch/verbose" '^    ### Agent-written text')" -eq 3 ] || fail "--verbose: not every request in full"
    [ "$(count "$scratch/verbose" '^    created ')" -ge 20 ] || fail "--verbose: not every file airlock init created"
    [ "$(count "$scratch/verbose" 'Add this approver to approvers.yaml')" -eq 2 ] || fail "--verbose: keygen cut"
    [ "$(count "$scratch/verbose" '^    staging deployment events')" -eq 2 ] || fail "--verbose: status cut"
    [ "$(count "$scratch/verbose" '^    production deployment events')" -eq 1 ] || fail "--verbose: status cut"
    [ "$(count "$scratch/verbose" 'journal   soak succeeded')" -ge 5 ] || fail "--verbose: replay records cut"
    [ "$(count "$scratch/verbose" '\[soak\] running  *[0-9]*%')" -ge 1 ] || fail "--verbose: watch progress cut"
    [ "$(count "$scratch/verbose" '\[soak\] started  *[0-9]*%')" -eq 0 ] || fail "--verbose: progress labelled started"
    if [ -f "$scratch/default" ] && [ "$lines" -le "$(wc -l < "$scratch/default")" ]; then
        fail "--verbose shows no more than the default"
    fi
fi

[ "$failures" -eq 0 ] || { echo "test_demo: $failures failure(s)"; exit 1; }
echo "test_demo: OK"
