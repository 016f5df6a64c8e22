#!/bin/sh
# test_deb.sh: the Debian package CPack makes (packaging/cpack.cmake) holds a working airlock.
#
# 1. cpack -G DEB from the build tree's CPackConfig.cmake, into a temporary directory (the
#    same configuration `make package` uses; the build itself is ctest's).
# 2. The control data: name, version, the dependencies dpkg-shlibdeps found (libczmq,
#    libzmq, ...), the postinst and postrm (executable), the ldconfig trigger, shlibs.
# 3. `dpkg -x` into a temporary root: the command, libairlock.so with its soname, the
#    headers, airlock.pc, the unit (ExecStart=/usr/bin/airlock), the sysusers.d entry, the
#    man pages (1 and 5), the bash and zsh completions, the default policy.
# 4. The unpacked usr/bin/airlock (LD_LIBRARY_PATH=the unpacked lib) runs `init
#    DIR` (init takes DIR as its argument) from the unpacked policy, then (with a minimal
#    services.yaml) `up`: the broker listens, every agent says "ready", `status`
#    answers, SIGTERM stops it all and up exits 0.
# 5. The maintainer scripts, with $DPKG_ROOT = a temporary root: postinst configure makes
#    the user airlock and var/lib/airlock (0700, owned by it), twice with the same result;
#    postrm purge removes both, twice without error. (Needs root for chown: ctest here runs
#    as root; elsewhere this part fails rather than pass unchecked.)
#
# Environment (from ctest): AIRLOCK_BINARY_DIR, CPACK_COMMAND.
set -eu
fail () { echo "test_deb: FAIL: $*" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/airlock-deb.XXXXXX")
up_pid=
cleanup () {
    if [ -n "$up_pid" ]; then
        kill "$up_pid" 2>/dev/null || true
        wait "$up_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

# 1. The package.
"${CPACK_COMMAND:-cpack}" --config "$AIRLOCK_BINARY_DIR/CPackConfig.cmake" -G DEB -B "$work/pkg" >"$work/cpack.log" 2>&1 \
    || { cat "$work/cpack.log" >&2; fail "cpack -G DEB failed"; }
deb=$(ls "$work"/pkg/airlock_*.deb 2>/dev/null | head -n 1)
[ -n "$deb" ] || { cat "$work/cpack.log" >&2; fail "no airlock_*.deb in the cpack output"; }

# 2. Control data.
[ "$(dpkg-deb -f "$deb" Package)" = airlock ] || fail "Package is not airlock"
version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$AIRLOCK_BINARY_DIR/CMakeCache.txt")
[ "$(dpkg-deb -f "$deb" Version)" = "$version" ] || fail "Version is not $version"
depends=$(dpkg-deb -f "$deb" Depends)
for library in libczmq libzmq libprotobuf-c libyaml libsqlite3 libsodium libjansson libcurl libmicrohttpd; do
    echo "$depends" | grep -q "$library" || fail "Depends lacks $library: $depends"
done
echo "$depends" | grep -q "systemd | adduser" || fail "Depends lacks 'systemd | adduser': $depends"
dpkg-deb -e "$deb" "$work/control"
for script in postinst postrm; do
    [ -x "$work/control/$script" ] || fail "no executable $script in the package"
    sh -n "$work/control/$script" || fail "$script: shell syntax"
done
grep -qx "activate-noawait ldconfig" "$work/control/triggers" || fail "no ldconfig trigger"
grep -q "^libairlock 0 airlock" "$work/control/shlibs" || fail "no shlibs entry for libairlock 0"

# 3. Files.
root=$work/root
dpkg -x "$deb" "$root"
for file in usr/bin/airlock usr/lib/libairlock.so usr/lib/libairlock.so.0 \
            usr/include/airlock/agents/al_agent.h usr/include/airlock/proto/airlock.pb-c.h \
            usr/lib/pkgconfig/airlock.pc usr/lib/cmake/airlock/airlockConfig.cmake \
            usr/lib/systemd/system/airlock.service usr/lib/sysusers.d/airlock.conf \
            usr/share/man/man1/airlock.1 usr/share/man/man5/airlock.yaml.5 \
            usr/share/man/man5/airlock-services.yaml.5 usr/share/man/man5/airlock-policy.5 \
            usr/share/bash-completion/completions/airlock usr/share/zsh/vendor-completions/_airlock \
            usr/share/airlock/policies/default/roles.yaml; do
    [ -e "$root/$file" ] || fail "$file is not in the package"
done
[ -x "$root/usr/bin/airlock" ] || fail "usr/bin/airlock is not executable"
grep -qxF "ExecStart=/usr/bin/airlock up --state /var/lib/airlock/state" "$root/usr/lib/systemd/system/airlock.service" \
    || { grep ExecStart "$root/usr/lib/systemd/system/airlock.service" >&2; fail "the unit does not run /usr/bin/airlock"; }
# No file names the build tree or CPack's staging directory (airlock.pc, the CMake
# package, the unit are written with the install prefix).
strays=$(grep -rlI -e "$AIRLOCK_BINARY_DIR" -e "_CPack_Packages" "$root/usr/lib" "$root/usr/share" || true)
[ -z "$strays" ] || fail "build paths in the package: $strays"

# 4. The unpacked command: init, then a short up.
unset AIRLOCK_POLICY_DIR AIRLOCK_CONFIG || true
airlock=$root/usr/bin/airlock
export LD_LIBRARY_PATH="$root/usr/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
mark="# packaged copy $$"
echo "$mark" >>"$root/usr/share/airlock/policies/default/roles.yaml"
state=$work/state
(cd "$work" && "$airlock" init "$state") >"$work/init.log" 2>&1 \
    || { cat "$work/init.log" >&2; fail "airlock init failed"; }
grep -qxF "$mark" "$state/policy/roles.yaml" || fail "init did not copy the packaged policy"
printf '%s\n' 'version: 1' 'services:' '  demo:' '    driver: process' '    instances: 1' \
    '    command: ["/bin/true"]' >"$state/services.yaml"
"$airlock" up --state "$state" >"$work/up.log" 2>&1 &
up_pid=$!
ready () {   # ready: 0 when the broker listens and each agent's log says it is ready
    grep -q "airlock broker: listening on" "$state/logs/broker.log" 2>/dev/null || return 1
    for agent in orchestrator qa deploy-manager monitor notifier; do
        grep -q "$agent: ready" "$state/logs/$agent.log" 2>/dev/null || return 1
    done
}
waited=0
until ready; do
    kill -0 "$up_pid" 2>/dev/null || { cat "$work/up.log" >&2; fail "airlock up exited before it was ready"; }
    [ "$waited" -lt 1200 ] || { cat "$work/up.log" "$state"/logs/*.log >&2; fail "not ready within 120 s"; }
    sleep 0.1
    waited=$((waited + 1))
done
"$airlock" status --timeout 10 --config "$state/airlock.yaml" >"$work/status.log" 2>&1 \
    || { cat "$work/status.log" >&2; fail "airlock status failed"; }
grep -q deploy-manager "$work/status.log" || { cat "$work/status.log" >&2; fail "status does not list deploy-manager"; }
kill -TERM "$up_pid"
status=0
wait "$up_pid" || status=$?
up_pid=
[ "$status" -eq 0 ] || { cat "$work/up.log" >&2; fail "airlock up exited $status after SIGTERM"; }

# 5. Maintainer scripts in a temporary root.
[ "$(id -u)" -eq 0 ] || fail "the maintainer scripts need root (chown)"
sysroot=$work/sysroot
mkdir -p "$sysroot/etc" "$sysroot/usr/lib/sysusers.d"
cp "$root/usr/lib/sysusers.d/airlock.conf" "$sysroot/usr/lib/sysusers.d/"
for round in 1 2; do
    DPKG_ROOT=$sysroot "$work/control/postinst" configure >"$work/postinst.log" 2>&1 \
        || { cat "$work/postinst.log" >&2; fail "postinst configure (round $round) failed"; }
    [ "$(grep -c '^airlock:' "$sysroot/etc/passwd")" -eq 1 ] || fail "round $round: not one user airlock in etc/passwd"
    uid=$(sed -n 's/^airlock:[^:]*:\([0-9]*\):.*/\1/p' "$sysroot/etc/passwd")
    [ "$uid" -gt 0 ] && [ "$uid" -lt 1000 ] || fail "round $round: airlock's uid $uid is not a system uid"
    [ "$(stat -c '%a %u' "$sysroot/var/lib/airlock")" = "700 $uid" ] \
        || fail "round $round: var/lib/airlock is $(stat -c '%a %u' "$sysroot/var/lib/airlock"), expected 700 $uid"
    [ "$round" = 1 ] && first_uid=$uid
    [ "$uid" = "$first_uid" ] || fail "the second postinst changed airlock's uid"
done
for round in 1 2; do
    DPKG_ROOT=$sysroot "$work/control/postrm" purge >"$work/postrm.log" 2>&1 \
        || { cat "$work/postrm.log" >&2; fail "postrm purge (round $round) failed"; }
    [ ! -e "$sysroot/var/lib/airlock" ] || fail "round $round: var/lib/airlock survives the purge"
    ! grep -q '^airlock:' "$sysroot/etc/passwd" || fail "round $round: the user airlock survives the purge"
    ! grep -q '^airlock:' "$sysroot/etc/group" || fail "round $round: the group airlock survives the purge"
done
echo "test_deb: ok ($(basename "$deb"))"
