"""airlock_client: a Python client for the airlock broker (for AI agents, CI and humans).

It connects to the broker with a CURVE-authenticated ZeroMQ DEALER socket, registers,
sends protobuf Envelopes reliably (retransmitted with the same message id until the
broker answers Ack or Denied), heartbeats, and offers the few calls an AI agent needs:
submit a release candidate, follow its status, list the requests waiting for a human.
It never approves anything: production approval is a human's signed decision.

The protobuf module (airlock_pb2) is generated from proto/airlock.proto at build time
into BUILD/clients/python/airlock_client/; this package's __path__ is extended over every
airlock_client directory on sys.path, so PYTHONPATH=SOURCE/clients/python:BUILD/clients/python
finds both halves. See README.md.
"""
import pkgutil

__path__ = pkgutil.extend_path(__path__, __name__)

from .client import (  # noqa: E402  (the path must be extended first)
    AirlockError,
    Certificate,
    Client,
    Config,
    ConfigError,
    Denied,
    KeyRefused,
    NotFound,
    Timeout,
    default_config_path,
    describe_endpoints,
    load_certificate,
    load_config,
    release_id_for,
    split_endpoints,
)

__version__ = "0.1.0"

__all__ = [
    "AirlockError",
    "Certificate",
    "Client",
    "Config",
    "ConfigError",
    "Denied",
    "KeyRefused",
    "NotFound",
    "Timeout",
    "default_config_path",
    "describe_endpoints",
    "load_certificate",
    "load_config",
    "release_id_for",
    "split_endpoints",
]
