#!/bin/sh
# test_man5.sh: the section-5 man pages (packaging/man5) are installed, render without a
# groff warning, and name every key the loaders accept, the key lists taken from the
# loaders' own tables so that a key added there fails here until the page names it:
#   airlock.yaml(5)           base/al_config.c: s_keys (top-level and section keys), s_sections
#   airlock-services.yaml(5)  deploy/al_services.c: the root's allowed keys, s_service_keys
#   airlock-policy(5)         policies/al_policy_*.c: the top-level keys of each of the seven
#                             files (policy_parse_roles ... policy_parse_quality), in that file's section
#
# Environment (from ctest): AIRLOCK_SOURCE_DIR, AIRLOCK_BINARY_DIR, CMAKE_COMMAND.
set -eu
fail () { echo "test_man5: FAIL: $*" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/airlock-man5.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
prefix=$work/prefix
"$CMAKE_COMMAND" --install "$AIRLOCK_BINARY_DIR" --prefix "$prefix" >"$work/install.log" \
    || { cat "$work/install.log" >&2; fail "cmake --install failed"; }
man5=$prefix/share/man/man5
src=$AIRLOCK_SOURCE_DIR

render () {   # render PAGE OUT: groff -ww clean, then the text man shows
    [ -f "$1" ] || fail "${1#$prefix/} is not installed"
    groff -man -ww -z -Tutf8 "$1" 2>"$work/groff.log" || fail "groff failed on $1"
    [ ! -s "$work/groff.log" ] || { cat "$work/groff.log" >&2; fail "groff warns about $1"; }
    MANWIDTH=200 man -l "$1" >"$2" 2>/dev/null || fail "man -l $1 failed"
}
mentions () {  # mentions TEXT PAGE-NAME MIN KEY...: every KEY in TEXT, and at least MIN keys
    text=$1 name=$2 min=$3
    shift 3
    [ "$#" -ge "$min" ] || fail "$name: only $# keys found in the loader's table (expected >= $min): the table's format changed?"
    for key in "$@"; do
        grep -qw -e "$key" "$text" || fail "$name does not mention the key '$key'"
    done
}

# airlock.yaml(5)
render "$man5/airlock.yaml.5" "$work/config.txt"
top=$(sed -n 's/^ *{ NULL, *"\([a-z_]*\)".*/\1/p' "$src/base/al_config.c")
sections=$(sed -n 's/^static const char \*s_sections \[\] = {\(.*\)};.*/\1/p' "$src/base/al_config.c" | grep -o '[a-z_-]\{2,\}')
nested=$(sed -n 's/^ *{ "[a-z_]*", *"\([a-z_-]*\)".*/\1/p' "$src/base/al_config.c" | sort -u)
# shellcheck disable=SC2086
mentions "$work/config.txt" "airlock.yaml(5)" 9 $top $sections
# shellcheck disable=SC2086
mentions "$work/config.txt" "airlock.yaml(5)" 15 $nested

# airlock-services.yaml(5)
render "$man5/airlock-services.yaml.5" "$work/services.txt"
root=$(grep 'const allowed \[\] = { "version"' "$src/deploy/al_services.c" | grep -o '"[a-z_]*"' | tr -d '"')
service=$(sed -n '/s_service_keys \[\] = {/,/^};/p' "$src/deploy/al_services.c" | grep -o '{ "[a-z_]*"' | tr -d '{" ')
# shellcheck disable=SC2086
mentions "$work/services.txt" "airlock-services.yaml(5)" 2 $root
# shellcheck disable=SC2086
mentions "$work/services.txt" "airlock-services.yaml(5)" 25 $service

# airlock-policy(5): each file's top-level keys, in the section named after the file.
render "$man5/airlock-policy.5" "$work/policy.txt"
# "FILE KEY" lines: the first keys array (quality: allowed) of each policy_parse_X.
awk '
    /^policy_parse_[a-z_]* *\(/ { fn = $1; sub(/^policy_parse_/, "", fn); sub(/ *\(.*/, "", fn); grab = 0; done = 0; next }
    fn != "" && !done && (/const keys \[\] = \{/ && fn != "quality" || /const allowed \[\] = \{/ && fn == "quality") { grab = 1 }
    grab {
        line = $0; sub(/.*\{/, "", line)
        while (match(line, /"[a-z_]+"/)) { print fn, substr(line, RSTART + 1, RLENGTH - 2); line = substr(line, RSTART + RLENGTH) }
        if ($0 ~ /NULL/) { grab = 0; done = 1 }
    }' "$src"/policies/al_policy_*.c >"$work/policy-keys"
count=0
for pair in roles:roles.yaml identities:identities.yaml approvers:approvers.yaml types:deployment_types.yaml \
            constraints:constraints.yaml dependencies:dependencies.yaml quality:quality_rules.yaml; do
    fn=${pair%%:*} file=${pair#*:}
    [ -f "$src/policies/default/$file" ] || fail "policies/default/$file does not exist (the table above is stale)"
    keys=$(sed -n "s/^$fn //p" "$work/policy-keys")
    [ -n "$keys" ] || fail "no keys found for $file in policy_parse_$fn"
    # The section: from the heading line "FILE" to the next heading (a line not indented).
    awk -v h="$file" '$0 == h { on = 1; next } on && /^[^ ]/ { on = 0 } on' "$work/policy.txt" >"$work/section.txt"
    [ -s "$work/section.txt" ] || fail "airlock-policy(5) has no section $file"
    # shellcheck disable=SC2086
    mentions "$work/section.txt" "airlock-policy(5) section $file" 1 $keys
    count=$((count + $(echo "$keys" | wc -w)))
done
[ "$count" -ge 20 ] || fail "only $count policy keys found in policies/al_policy_*.c"
echo "test_man5: ok ($(echo $top $sections | wc -w) + $(echo $root $service | wc -w) + $count keys)"
