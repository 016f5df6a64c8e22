"""setup.py: generate airlock_pb2.py into the built package (pyproject.toml has the rest).

protoc (Debian: protobuf-compiler) compiles the wire protocol, $AIRLOCK_PROTO or
../../proto/airlock.proto beside this file, into build_lib/airlock_client/ at build time;
the generated module is never committed. A missing protoc or .proto fails the build with
what is missing, rather than installing a package that cannot import its protocol.
"""
import os
import shutil
import subprocess

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))


class BuildWithProtocol(build_py):
    def run(self):
        super().run()
        proto = os.environ.get("AIRLOCK_PROTO") or os.path.join(HERE, "..", "..", "proto", "airlock.proto")
        proto = os.path.abspath(proto)
        if not os.path.isfile(proto):
            raise SystemExit("airlock-client: %s: no such file (set AIRLOCK_PROTO to proto/airlock.proto)" % proto)
        protoc = shutil.which("protoc")
        if not protoc:
            raise SystemExit("airlock-client: protoc not found (Debian: apt-get install protobuf-compiler)")
        out = os.path.join(self.build_lib, "airlock_client")
        os.makedirs(out, exist_ok=True)
        subprocess.check_call([protoc, "--proto_path=" + os.path.dirname(proto),
                               "--python_out=" + out, proto])


setup(cmdclass={"build_py": BuildWithProtocol})
