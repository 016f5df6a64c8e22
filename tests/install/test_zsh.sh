#!/bin/sh
# test_zsh.sh: the installed zsh completion (share/zsh/vendor-completions/_airlock,
# generated from `airlock --help` by packaging/gen-docs.sh) matches the installed command.
#
# The file is loaded the way compinit does (fpath + autoload, so its body runs as the
# function _airlock), with compadd and _files replaced by functions that print what they
# are given (compadd filtered by $PREFIX, as the real one): it offers every command and
# --help --version; for every command, after "--", exactly the options its --help names;
# a command's subcommands (audit: export history replay verify); file names for a
# non-option argument (init DIR).
#
# Environment (from ctest): AIRLOCK_BINARY_DIR, CMAKE_COMMAND.
set -eu
fail () { echo "test_zsh: FAIL: $*" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/airlock-zsh.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
prefix=$work/prefix
"$CMAKE_COMMAND" --install "$AIRLOCK_BINARY_DIR" --prefix "$prefix" >"$work/install.log" \
    || { cat "$work/install.log" >&2; fail "cmake --install failed"; }
airlock=$prefix/bin/airlock
dir=$prefix/share/zsh/vendor-completions
[ -f "$dir/_airlock" ] || fail "share/zsh/vendor-completions/_airlock is not installed"
[ "$(head -n 1 "$dir/_airlock")" = "#compdef airlock" ] || fail "_airlock does not start with '#compdef airlock'"
zsh -n "$dir/_airlock" || fail "_airlock: zsh syntax"

complete () {   # complete WORD...: what the completion offers for the last word, sorted
    zsh -f -c '
        fpath=("$1" $fpath); shift
        autoload -Uz _airlock
        compadd () { local a; [[ $1 == -- ]] && shift; for a in "$@"; do [[ $a == ${PREFIX}* ]] && print -r -- "$a"; done; }
        _files () { print -r -- "<files>"; }
        words=("$@"); CURRENT=$#; PREFIX=${words[CURRENT]}
        _airlock' zsh "$dir" "$@" | sort
}

commands=$("$airlock" --help | awk '/^commands:/ { on = 1; next } on && /^  [a-z]/ { print $1; next } on { on = 0 }')
count=$(echo "$commands" | wc -w)
[ "$count" -ge 10 ] || fail "only $count commands in airlock --help"
offered=$(complete airlock "")
for word in $commands --help --version; do
    echo "$offered" | grep -qx -e "$word" || fail "zsh completion does not offer '$word'"
done
[ "$(complete airlock au)" = audit ] || fail "airlock au: $(complete airlock au | tr '\n' ' ')"

for command in $commands; do
    help=$("$airlock" "$command" --help 2>&1)
    expected=$(printf '%s\n' "$help" | grep -o -e '--[a-z][a-z0-9-]*' | sort -u)
    subcommands=$(printf '%s\n' "$help" | sed -n "s/^\(usage:\)\{0,1\} *airlock $command \([a-z][a-z-]*\).*/\2/p" | sort -u)
    if [ -n "$subcommands" ]; then   # options come after the subcommand
        first=$(echo "$subcommands" | head -n 1)
        got=$(complete airlock "$command" "$first" --)
    else
        got=$(complete airlock "$command" --)
    fi
    [ "$got" = "$expected" ] || fail "airlock $command --: offered [$(echo $got)], its --help names [$(echo $expected)]"
done
complete airlock init --f | grep -qx -e "--force-config" || fail "zsh completion: airlock init --f"
[ "$(complete airlock audit "" | tr '\n' ' ')" = "export history replay verify " ] \
    || fail "zsh completion: airlock audit subcommands: $(complete airlock audit "" | tr '\n' ' ')"
complete airlock audit verify --ch | grep -qx -e "--checkpoint" || fail "zsh completion: airlock audit verify --ch"
[ "$(complete airlock init "")" = "<files>" ] || fail "zsh completion: airlock init DIR does not complete file names"
echo "test_zsh: ok ($count commands)"
