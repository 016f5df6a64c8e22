#!/bin/sh
# test_systemd.sh: the installed airlock.service passes `systemd-analyze verify` and
# scores at most 2.5 in `systemd-analyze security --offline=yes` (systemd 252 has
# --offline and --threshold, whose scale is tenths: 25 = 2.5). Its ExecStart is the
# installed binary of the prefix given to `cmake --install --prefix`; the installed
# sysusers.d entry creates its user.
#
# Environment (from ctest): AIRLOCK_BINARY_DIR, CMAKE_COMMAND.
set -eu
fail () { echo "test_systemd: FAIL: $*" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/airlock-systemd.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
prefix=$work/prefix
"$CMAKE_COMMAND" --install "$AIRLOCK_BINARY_DIR" --prefix "$prefix" >"$work/install.log" \
    || { cat "$work/install.log" >&2; fail "cmake --install failed"; }
unit=$prefix/lib/systemd/system/airlock.service
[ -f "$unit" ] || fail "lib/systemd/system/airlock.service is not installed"
[ -f "$prefix/lib/sysusers.d/airlock.conf" ] || fail "lib/sysusers.d/airlock.conf is not installed"
grep -qxF "ExecStart=$prefix/bin/airlock up --state /var/lib/airlock/state" "$unit" \
    || { grep ExecStart "$unit" >&2; fail "ExecStart does not run the installed binary"; }
grep -q '@[A-Z_]*@' "$unit" && fail "unsubstituted @VARIABLE@ in the unit"
# The settings a standby's notifications rely on (the last assignment of each wins).
setting () { sed -n "s/^$1=//p" "$unit" | tail -n 1; }
[ "$(setting Type)" = notify ] || fail "Type is not notify"
[ "$(setting NotifyAccess)" = all ] || fail "NotifyAccess is not all (the broker is up's child)"
start_timeout=$(setting TimeoutStartSec)
case "$start_timeout" in
    ''|infinity|0) fail "TimeoutStartSec is '$start_timeout': a standby says READY=1, the start timeout must stay finite";;
    *[!0-9]*) fail "TimeoutStartSec '$start_timeout' is not a number of seconds";;
esac
[ -n "$(setting WatchdogSec)" ] || fail "no WatchdogSec: a standby feeds it while it waits"

# A standby broker (docs/ha.md) waits for the lease, maybe forever: it says READY=1 with
# STATUS=standby (tests/failover/test_broker_failover proves it) so that the start timeout
# stays finite and the watchdog armed. What systemd reads of this must say so.
systemd-analyze verify "$unit" >"$work/verify.log" 2>&1 \
    || { cat "$work/verify.log" >&2; fail "systemd-analyze verify failed"; }
[ ! -s "$work/verify.log" ] || { cat "$work/verify.log" >&2; fail "systemd-analyze verify warns"; }

# The sysusers entry makes the unit's User= (dry run into an empty root).
if command -v systemd-sysusers >/dev/null; then
    mkdir -p "$work/root/etc"
    systemd-sysusers --root="$work/root" --dry-run "$prefix/lib/sysusers.d/airlock.conf" \
        >"$work/sysusers.log" 2>&1 || { cat "$work/sysusers.log" >&2; fail "systemd-sysusers rejects airlock.conf"; }
    grep -q "Creating user 'airlock'" "$work/sysusers.log" \
        || { cat "$work/sysusers.log" >&2; fail "airlock.conf does not create the airlock user"; }
fi

status=0
systemd-analyze security --offline=yes --threshold=25 "$unit" >"$work/security.log" 2>&1 || status=$?
score=$(sed -n 's/.*Overall exposure level for airlock.service: \([0-9.]*\).*/\1/p' "$work/security.log")
[ -n "$score" ] || { cat "$work/security.log" >&2; fail "no exposure level in the output"; }
[ "$status" -eq 0 ] || { cat "$work/security.log" >&2; fail "exposure $score is above 2.5"; }
echo "test_systemd: ok (exposure $score)"
