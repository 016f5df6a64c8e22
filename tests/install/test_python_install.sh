#!/bin/sh
# test_python_install.sh: `pip install ./clients/python` into a fresh venv works and the
# installed package is complete: a venv with Debian's /usr/bin/python3
# (--system-site-packages, since PyPI is unreachable: python3-zmq and python3-protobuf
# satisfy the declared dependencies), the package built from a copy of the tree (pip
# builds in place and would leave build/ and *.egg-info in the source), then, with no
# PYTHONPATH: the package and its generated airlock_pb2 come from the venv, the
# dependencies are declared, `airlock-client --help` runs, and the wire tests
# (tests/clients/test_python_protocol.py) pass against the installed package.
#
# Environment (from ctest): AIRLOCK_SOURCE_DIR.
set -eu
fail () { echo "test_python_install: FAIL: $*" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/airlock-pip.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
unset PYTHONPATH || true
export PYTHONDONTWRITEBYTECODE=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

mkdir -p "$work/src/clients" "$work/src/proto"
cp -r "$AIRLOCK_SOURCE_DIR/clients/python" "$work/src/clients/python"
rm -rf "$work/src/clients/python/airlock_client/__pycache__" "$work/src/clients/python/build"
cp "$AIRLOCK_SOURCE_DIR/proto/airlock.proto" "$work/src/proto/"

/usr/bin/python3 -m venv --system-site-packages "$work/venv" || fail "python3 -m venv"
python=$work/venv/bin/python
"$python" -m pip install --no-build-isolation --no-index "$work/src/clients/python" \
    >"$work/pip.log" 2>&1 || { cat "$work/pip.log" >&2; fail "pip install ./clients/python failed"; }

cd "$work"
"$python" - "$work/venv" <<'PY' || fail "the installed package is incomplete"
import importlib.metadata as metadata
import os
import sys

import airlock_client
from airlock_client import airlock_pb2

venv = os.path.realpath(sys.argv[1])
package = os.path.dirname(os.path.realpath(airlock_client.__file__))
assert package.startswith(venv + os.sep), "airlock_client imported from %s, not the venv" % package
assert os.path.dirname(os.path.realpath(airlock_pb2.__file__)) == package, airlock_pb2.__file__
assert airlock_pb2.Envelope.DESCRIPTOR.fields_by_name["status_query"], "no status_query in Envelope"
requires = " ".join(metadata.requires("airlock-client") or [])
assert "pyzmq" in requires and "protobuf" in requires, "dependencies not declared: %r" % requires
assert metadata.version("airlock-client") == airlock_client.__version__
print("installed:", package)
PY
"$work/venv/bin/airlock-client" --help >"$work/help.txt" 2>&1 || true
grep -q "submit" "$work/help.txt" || { cat "$work/help.txt" >&2; fail "airlock-client --help"; }
"$python" "$AIRLOCK_SOURCE_DIR/tests/clients/test_python_protocol.py" >"$work/unit.log" 2>&1 \
    || { cat "$work/unit.log" >&2; fail "test_python_protocol.py against the installed package"; }
echo "test_python_install: ok"
