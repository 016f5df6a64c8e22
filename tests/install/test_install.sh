#!/bin/sh
# test_install.sh: `cmake --install` into a temporary prefix, then use only that prefix.
#
# 1. The install has bin/airlock, libairlock.so with its soname, the public headers under
#    include/airlock/ (no *_int.h), airlock.pc, the CMake package, the default policy.
# 2. `airlock init` from the installed binary copies the INSTALLED default policy: the
#    test marks the installed copy and finds the mark in the state directory; with
#    $AIRLOCK_POLICY_DIR set, that directory wins.
# 3. external_agent.c builds against the prefix alone, with pkg-config and with a CMake
#    project (find_package(airlock)), links the installed libairlock.so, connects to a
#    broker started from the installed bin/airlock and gets its StatusQuery answered.
#
# Environment (from ctest): AIRLOCK_BINARY_DIR, AIRLOCK_SOURCE_DIR, CMAKE_COMMAND, and
# AL_CONSUMER_FLAGS (-fsanitize=... in a sanitizer build, else empty).
set -eu
flags=${AL_CONSUMER_FLAGS:-}
fail () { echo "test_install: FAIL: $*" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/airlock-install.XXXXXX")
broker_pid=
cleanup () {
    if [ -n "$broker_pid" ]; then
        kill "$broker_pid" 2>/dev/null || true
        wait "$broker_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT INT TERM
prefix=$work/prefix

"$CMAKE_COMMAND" --install "$AIRLOCK_BINARY_DIR" --prefix "$prefix" >"$work/install.log" \
    || { cat "$work/install.log" >&2; fail "cmake --install failed"; }

# 1. What is installed.
for file in bin/airlock lib/libairlock.so lib/pkgconfig/airlock.pc \
            lib/cmake/airlock/airlockConfig.cmake lib/cmake/airlock/airlockConfigVersion.cmake \
            lib/cmake/airlock/airlockTargets.cmake \
            include/airlock/agents/al_agent.h include/airlock/proto/al_codec.h \
            include/airlock/proto/airlock.pb-c.h include/airlock/base/al_config.h \
            share/airlock/policies/default/roles.yaml share/airlock/examples/demo-service/demo_service.c; do
    [ -e "$prefix/$file" ] || fail "$file is not installed"
done
[ -x "$prefix/bin/airlock" ] || fail "bin/airlock is not executable"
internal=$(find "$prefix/include" -name '*_int.h')
[ -z "$internal" ] || fail "internal headers installed: $internal"
soname=$(readelf -d "$prefix/lib/libairlock.so" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
[ "$soname" = "libairlock.so.0" ] || fail "soname is '$soname', expected libairlock.so.0"
[ -e "$prefix/lib/$soname" ] || fail "lib/$soname is not installed"

# 2. init from the installed binary copies the installed policy, not the source tree's.
unset AIRLOCK_POLICY_DIR AIRLOCK_CONFIG || true
mark="# installed copy $$"
echo "$mark" >>"$prefix/share/airlock/policies/default/roles.yaml"
(cd "$work" && "$prefix/bin/airlock" init "$work/state") >"$work/init.log" 2>&1 \
    || { cat "$work/init.log" >&2; fail "airlock init failed"; }
grep -qxF "$mark" "$work/state/policy/roles.yaml" \
    || fail "init did not copy the installed policy (no mark in state/policy/roles.yaml)"

# $AIRLOCK_POLICY_DIR still comes first.
cp -r "$prefix/share/airlock/policies/default" "$work/override"
echo "# override copy $$" >>"$work/override/roles.yaml"
(cd "$work" && AIRLOCK_POLICY_DIR="$work/override" "$prefix/bin/airlock" init "$work/state2") \
    >"$work/init2.log" 2>&1 || { cat "$work/init2.log" >&2; fail "airlock init with AIRLOCK_POLICY_DIR failed"; }
grep -qxF "# override copy $$" "$work/state2/policy/roles.yaml" \
    || fail "init did not copy \$AIRLOCK_POLICY_DIR's policy"

# 3a. Build the external agent with pkg-config, from the prefix alone.
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
cflags=$(pkg-config --cflags airlock) || fail "pkg-config --cflags airlock"
libs=$(pkg-config --libs airlock) || fail "pkg-config --libs airlock"
case "$cflags $libs" in
    *"$AIRLOCK_SOURCE_DIR"*|*"$AIRLOCK_BINARY_DIR"*) fail "airlock.pc points into the build: $cflags $libs" ;;
esac
src=$AIRLOCK_SOURCE_DIR/tests/install
# shellcheck disable=SC2086
cc -std=c11 -Wall -Wextra -Werror $flags -o "$work/agent-pkgconfig" "$src/external_agent.c" \
    $cflags $libs -Wl,-rpath,"$prefix/lib" || fail "the pkg-config build failed"

# 3b. And with CMake: find_package(airlock) through CMAKE_PREFIX_PATH only.
"$CMAKE_COMMAND" -S "$src/consumer" -B "$work/consumer" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_C_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="$flags" >"$work/consumer.log" 2>&1 \
    && "$CMAKE_COMMAND" --build "$work/consumer" >>"$work/consumer.log" 2>&1 \
    || { cat "$work/consumer.log" >&2; fail "the CMake build failed"; }

for agent in "$work/agent-pkgconfig" "$work/consumer/external_agent"; do
    ldd "$agent" | grep -qF "$prefix/lib/libairlock.so.0" \
        || { ldd "$agent" >&2; fail "$agent does not load the installed libairlock.so"; }
done

# 3c. A broker from the installed binary; each agent gets its StatusQuery answered.
"$prefix/bin/airlock" broker --config "$work/state/airlock.yaml" >"$work/broker.log" 2>&1 &
broker_pid=$!
for agent in "$work/agent-pkgconfig" "$work/consumer/external_agent"; do
    "$agent" "$work/state/airlock.yaml" >"$work/agent.out" 2>&1 \
        || { cat "$work/agent.out" "$work/broker.log" >&2; fail "$agent: no answer from the broker"; }
    grep -qx "registered" "$work/agent.out" || fail "$agent did not register"
    grep -q "^status: .* auditor$" "$work/agent.out" || fail "$agent: the reply does not list the auditor"
done
kill -0 "$broker_pid" 2>/dev/null || { cat "$work/broker.log" >&2; fail "the broker exited"; }
echo "test_install: ok (prefix $prefix)"
