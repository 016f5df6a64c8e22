#!/bin/sh
# test_docs.sh: the installed man page and bash completion match the installed command.
#
# Both are generated from `airlock --help` at build time (packaging/gen-docs.sh); this
# checks, against the installed bin/airlock: the man page renders without a groff
# warning, has a section for every command `airlock --help` lists and names every option
# of every command's --help; the completion offers every command, a command's options
# (init: --force-config) and subcommands (audit: verify replay history export).
#
# Environment (from ctest): AIRLOCK_BINARY_DIR, CMAKE_COMMAND.
set -eu
fail () { echo "test_docs: FAIL: $*" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/airlock-docs.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
prefix=$work/prefix
"$CMAKE_COMMAND" --install "$AIRLOCK_BINARY_DIR" --prefix "$prefix" >"$work/install.log" \
    || { cat "$work/install.log" >&2; fail "cmake --install failed"; }
airlock=$prefix/bin/airlock
page=$prefix/share/man/man1/airlock.1
completion=$prefix/share/bash-completion/completions/airlock
[ -f "$page" ] || fail "share/man/man1/airlock.1 is not installed"
[ -f "$completion" ] || fail "share/bash-completion/completions/airlock is not installed"

groff -man -ww -z -Tutf8 "$page" 2>"$work/groff.log" || fail "groff failed"
[ ! -s "$work/groff.log" ] || { cat "$work/groff.log" >&2; fail "groff warns about the man page"; }
MANWIDTH=200 man -l "$page" >"$work/page.txt" 2>/dev/null || fail "man -l failed"

commands=$("$airlock" --help | awk '/^commands:/ { on = 1; next } on && /^  [a-z]/ { print $1; next } on { on = 0 }')
count=$(echo "$commands" | wc -w)
[ "$count" -ge 10 ] || fail "only $count commands in airlock --help"
for command in $commands; do
    grep -q "^   airlock $command\$" "$work/page.txt" || fail "the man page has no section for $command"
    for option in $("$airlock" "$command" --help 2>&1 | grep -o -e '--[a-z][a-z0-9-]*' | sort -u); do
        grep -q -e "$option" "$work/page.txt" || fail "the man page does not mention $command $option"
    done
done

complete () {   # complete WORD...: what the completion offers for the last word
    bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _airlock; printf "%s\n" "${COMPREPLY[@]}"' \
        sh "$completion" "$@"
}
offered=$(complete airlock "")
for command in $commands; do
    echo "$offered" | grep -qx "$command" || fail "completion does not offer $command"
done
complete airlock init --f | grep -qx -e "--force-config" || fail "completion: airlock init --f"
[ "$(complete airlock audit "" | tr '\n' ' ')" = "export history replay verify " ] \
    || fail "completion: airlock audit subcommands: $(complete airlock audit "" | tr '\n' ' ')"
complete airlock audit verify --ch | grep -qx -e "--checkpoint" || fail "completion: airlock audit verify --ch"
echo "test_docs: ok ($count commands)"
