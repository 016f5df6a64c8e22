"""client.py: the airlock client: one authenticated, reliable connection to the broker.

Role: what agents/al_agent.c does for C agents, for Python callers that hand work to the
pipeline and read its state (the `ci` role by default: it may send a ReleaseCandidate in
development and StatusQuery, nothing else). docs/protocol.md is the wire contract and
docs/clients.md the user guide.

Invariants:
- Who we are is our CURVE certificate, nothing else: the broker maps its public key to
  an identity and a role and stamps them on what we send. Envelope.sender is never set.
- Every message is kept until the broker answers it (Ack or Denied, or the StatusReply of
  a query) and is retransmitted, byte for byte with the SAME message id, every retry
  interval and after every reconnect; the broker de-duplicates on (identity, message id).
  A call that times out does not withdraw its message: it may already be committed.
- Message ids are "<name>-<boot id>-<counter>" with 64 random bits of boot id per
  Client, so they never repeat across restarts.
- Register is the first message of every connection; a broker heartbeat whose sequence
  goes back (the broker restarted, or forgot us) or a new handshake registers us again.
- KeyRefused is final, so it is raised only for a refusal: the broker's ZAP handler
  answered 400 for our key (the monitor's HANDSHAKE_FAILED_AUTH), or the broker closed
  the connection during the handshake _DROPS_REFUSED times in a row while it was there
  all along (each reconnect reached it at once: a wrong broker key, or not an airlock
  broker). A handshake cut because the broker died (the next connect attempt finds
  nobody) or timed out is a lost connection like any other: retried within the
  caller's timeout.

Threading: a Client is used by one thread at a time. It has no background thread: the
socket is read, heartbeats are sent and messages retransmitted only while a call waits
(any call, or poll()). After more than 3 silent heartbeat intervals the broker considers
the client gone; the next call registers again first, so nothing is lost, but a
long-lived agent that wants to stay listed as alive calls poll() regularly. The broker's
silence is judged only while a call listens: an idle spell says nothing about the link.
"""
import json
import logging
import os
import re
import secrets
import time

import zmq
from zmq.utils import z85
from zmq.utils.monitor import parse_monitor_message

try:
    from . import airlock_pb2 as pb
except ImportError as cause:  # pragma: no cover - depends on the build
    raise ImportError(
        "airlock_client: the generated protobuf module airlock_pb2 is missing; build it "
        "(cmake --build BUILD --target airlock_python) and put BUILD/clients/python on "
        "PYTHONPATH next to the source clients/python") from cause

SOFTWARE_VERSION = "airlock-python 0.1.0"

# Handshakes the peer cut, in a row, each on the first connect attempt after the last
# (the peer never went away), before the broker key is taken as wrong.
_DROPS_REFUSED = 3

# Broker endpoints one client fails over between, and the longest endpoint: as the C
# agents (AL_AGENT_MAX_ENDPOINTS, AL_AGENT_PATH_SIZE in agents/al_agent.h).
MAX_ENDPOINTS = 8
_ENDPOINT_SIZE = 1024

# The backoff between two rounds of endpoints (C agents: reconnect_ivl 250 ms, max 1 s).
_RECONNECT_IVL_S = 0.25
_RECONNECT_IVL_MAX_S = 1.0

_log = logging.getLogger("airlock_client")

ENVIRONMENTS = {
    "development": pb.ENV_DEVELOPMENT,
    "staging": pb.ENV_STAGING,
    "production": pb.ENV_PRODUCTION,
}

# Types a client may submit; rollbacks go through Client.request_rollback, scheduled
# deployments need a window (airlock submit --type scheduled --window START/END).
SUBMIT_TYPES = {
    "standard": pb.DEPLOY_TYPE_STANDARD,
    "hotfix": pb.DEPLOY_TYPE_HOTFIX,
    "emergency": pb.DEPLOY_TYPE_EMERGENCY,
}

_ID_CHARS = re.compile(r"[^A-Za-z0-9.-]")
_RELEASE_ID = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,55}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class AirlockError(Exception):
    """Anything that went wrong talking to airlock."""


class ConfigError(AirlockError):
    """An unreadable or invalid airlock.yaml or certificate ("path:line: what is wrong")."""


class NotFound(AirlockError):
    """The release (or its state file) does not exist."""


class Timeout(AirlockError):
    """No answer in time. The message stays unanswered, not failed: it may be committed."""


class KeyRefused(AirlockError):
    """The broker refused our CURVE key in the handshake (not in identities.yaml), or
    the broker key is wrong (the peer cut three handshakes in a row). Final; a broker
    that died during the handshake is not a refusal (the call reconnects)."""


class Denied(AirlockError):
    """The broker refused a message: final for that message id, and audited."""

    def __init__(self, message_id, code, reason, audit_sequence=0):
        self.message_id = message_id
        self.code = code
        self.reason = reason
        self.audit_sequence = audit_sequence
        super().__init__("denied (%s): %s" % (self.code_name, reason))

    @property
    def code_name(self):
        """The DenyCode name, e.g. "DENY_NOT_PERMITTED"."""
        try:
            return pb.DenyCode.Name(self.code)
        except ValueError:
            return str(self.code)


# ---- certificates (czmq's ZPL files) ---------------------------------------------------

class Certificate:
    """A CURVE key pair from a czmq certificate: Z85 text keys; secret_key may be None."""

    def __init__(self, public_key, secret_key=None, path=None):
        self.public_key = public_key
        self.secret_key = secret_key
        self.path = path

    def __repr__(self):
        return "Certificate(public_key=%r, secret=%s)" % (self.public_key, self.secret_key is not None)


def _zpl_value(text, path, number):
    text = text.strip()
    if text[:1] in ("\"", "'"):
        end = text.find(text[0], 1)
        if end < 0:
            raise ConfigError("%s:%d: unterminated quoted value" % (path, number))
        rest = text[end + 1:].strip()
        if rest and not rest.startswith("#"):
            raise ConfigError("%s:%d: text after the quoted value" % (path, number))
        return text[1:end]
    hash_at = text.find("#")
    return (text if hash_at < 0 else text[:hash_at]).strip()


def parse_zpl(text, path="<zpl>"):
    """Parse ZPL (ZeroMQ Property Language, czmq's zconfig format) into a flat dict
    {"section/name": value}. Indentation is 4 spaces per level."""
    values = {}
    stack = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(line) - len(line.lstrip(" "))
        if "\t" in line[:len(line) - len(line.lstrip())]:
            raise ConfigError("%s:%d: tabs are not allowed for indentation" % (path, number))
        if indent % 4:
            raise ConfigError("%s:%d: indentation must be a multiple of 4 spaces" % (path, number))
        level = indent // 4
        if level > len(stack):
            raise ConfigError("%s:%d: indented too far" % (path, number))
        del stack[level:]
        name, equals, value = stripped.partition("=")
        name = name.strip()
        if not name or not re.match(r"^[A-Za-z0-9$\-_@.&+/]+$", name):
            raise ConfigError("%s:%d: '%s' is not a property name" % (path, number, name))
        key = "/".join(stack + [name])
        stack.append(name)
        if equals:
            values[key] = _zpl_value(value, path, number)
    return values


def _z85_key(text, what, path):
    if text is None or len(text) != 40:
        raise ConfigError("%s: %s is not a 40-character Z85 CURVE key" % (path, what))
    try:
        key = z85.decode(text.encode("ascii"))
    except (ValueError, KeyError, UnicodeEncodeError):
        raise ConfigError("%s: %s is not valid Z85" % (path, what)) from None
    if len(key) != 32:
        raise ConfigError("%s: %s does not decode to 32 bytes" % (path, what))
    return text


def load_certificate(path, secret=False):
    """Load a czmq certificate. With secret=True the secret half is required: it is read
    from path + "_secret" (czmq's convention) or from path itself if it holds one."""
    candidates = [path + "_secret", path] if secret else [path]
    last_error = None
    for candidate in candidates:
        try:
            with open(candidate, encoding="utf-8") as handle:
                mode = os.fstat(handle.fileno()).st_mode & 0o777
                values = parse_zpl(handle.read(), candidate)
        except OSError as error:
            last_error = "%s: %s" % (candidate, error.strerror)
            continue
        if secret and values.get("curve/secret-key") is not None and mode & 0o077:
            # As the C loaders: a secret key readable by group or others is refused.
            raise ConfigError("%s: mode %04o: a secret key must be readable by its owner only (chmod 600 %s)"
                              % (candidate, mode, candidate))
        public = _z85_key(values.get("curve/public-key"), "curve/public-key", candidate)
        secret_key = values.get("curve/secret-key")
        if secret_key is not None:
            secret_key = _z85_key(secret_key, "curve/secret-key", candidate)
            if z85.decode(secret_key.encode("ascii")) == bytes(32):
                secret_key = None
        if secret and secret_key is None:
            last_error = "%s: no curve/secret-key (the secret half is %s_secret)" % (candidate, path)
            continue
        return Certificate(public, secret_key, candidate)
    raise ConfigError(last_error or "%s: cannot read" % path)


# ---- broker endpoints -------------------------------------------------------------------

def split_endpoints(endpoints):
    """The broker endpoints of a list: a string of one endpoint or several, comma-separated
    (spaces around each ignored, as endpoints.brokers and agents/al_agent_endpoints_split),
    or a list or tuple of them. Returns a list of 1..MAX_ENDPOINTS endpoints; raises
    ConfigError ("endpoint: ...: what is wrong") for an empty item, too many, or an item
    that is not a ZeroMQ endpoint."""
    if isinstance(endpoints, str):
        text, items = endpoints, endpoints.split(",")
    elif isinstance(endpoints, (list, tuple)) and all(isinstance(item, str) for item in endpoints):
        text, items = ", ".join(endpoints), list(endpoints)
    else:
        raise ConfigError("endpoint: %r is neither a string nor a list of strings" % (endpoints,))
    if not items:
        raise ConfigError("endpoint: is required")
    out = []
    for item in items:
        item = item.strip(" \t")
        if not item:
            raise ConfigError("endpoint: '%s': %s" % (text, "an empty item in the list" if text else "is required"))
        if len(out) == MAX_ENDPOINTS:
            raise ConfigError("endpoint: '%s': more than %d endpoints" % (text, MAX_ENDPOINTS))
        if ":" not in item or len(item) >= _ENDPOINT_SIZE:
            raise ConfigError("endpoint: '%s' is not a ZeroMQ endpoint (tcp://HOST:PORT, ipc://PATH)" % item[:200])
        out.append(item)
    return out


def describe_endpoints(endpoints):
    """An endpoint list as messages name it (as agents/al_agent_endpoints_describe): "X"
    for one endpoint, "any of 2 brokers (X, Y)" for several."""
    if len(endpoints) == 1:
        return endpoints[0]
    return "any of %d brokers (%s)" % (len(endpoints), ", ".join(endpoints))


# ---- airlock.yaml -----------------------------------------------------------------------

def default_config_path():
    """$AIRLOCK_CONFIG, else ./airlock-state/airlock.yaml (as the airlock command)."""
    return os.environ.get("AIRLOCK_CONFIG") or "./airlock-state/airlock.yaml"


def _yaml_scalar(text, path, number):
    text = text.strip()
    if text.startswith("\""):
        out, index = [], 1
        escapes = {"\"": "\"", "\\": "\\", "/": "/", "n": "\n", "t": "\t"}
        while index < len(text) and text[index] != "\"":
            if text[index] == "\\":
                index += 1
                if index >= len(text) or text[index] not in escapes:
                    raise ConfigError("%s:%d: unsupported escape in a quoted value" % (path, number))
                out.append(escapes[text[index]])
            else:
                out.append(text[index])
            index += 1
        if index >= len(text):
            raise ConfigError("%s:%d: unterminated quoted value" % (path, number))
        return "".join(out)
    if text.startswith("'"):
        end = text.find("'", 1)
        while end >= 0 and text[end + 1:end + 2] == "'":
            end = text.find("'", end + 2)
        if end < 0:
            raise ConfigError("%s:%d: unterminated quoted value" % (path, number))
        return text[1:end].replace("''", "'")
    hash_at = re.search(r"(^|\s)#", text)
    return (text[:hash_at.start()] if hash_at else text).strip()


class Config:
    """The few keys of airlock.yaml a client needs; paths absolute, defaults as in C.
    broker_endpoints is the list the client connects to (endpoints.brokers, else
    endpoints.router)."""

    def __init__(self, path, values):
        self.path = os.path.abspath(path)
        base = os.path.dirname(self.path)

        def where(key, default):
            value = values.get(key)
            if value is None or value == "":
                return default
            return value if os.path.isabs(value) else os.path.normpath(os.path.join(base, value))

        state_dir = values.get("state_dir")
        if not state_dir:
            raise ConfigError("%s: state_dir is required" % path)
        self.state_dir = where("state_dir", None)
        self.router_endpoint = values.get("endpoints.router") or "ipc://%s/broker.ipc" % self.state_dir
        # What clients connect to: endpoints.brokers (several brokers on one store,
        # docs/ha.md), else the broker's own endpoints.router (as al_config_broker_endpoints).
        brokers = values.get("endpoints.brokers")
        try:
            self.broker_endpoints = split_endpoints(brokers if brokers else self.router_endpoint)
        except ConfigError as error:
            raise ConfigError("%s: %s: %s" % (self.path, "endpoints.brokers" if brokers else "endpoints.router",
                                               error)) from None
        self.pub_endpoint = values.get("endpoints.pub") or "ipc://%s/events.ipc" % self.state_dir
        self.broker_cert = where("keys.broker", os.path.join(self.state_dir, "keys", "broker.cert"))
        self.agents_keys_dir = where("keys.agents", os.path.join(self.state_dir, "keys"))
        self.heartbeat_ms = self._number(values, "heartbeat_ms", 1000, 100, 3600000)
        self.handshake_ms = self._number(values, "limits.handshake_ms", 5000, 1, 3600000)

    def _number(self, values, key, default, low, high):
        text = values.get(key)
        if text is None:
            return default
        try:
            number = int(text)
        except ValueError:
            raise ConfigError("%s: %s: '%s' is not a number" % (self.path, key, text)) from None
        if not low <= number <= high:
            raise ConfigError("%s: %s: %d is out of range (%d..%d)" % (self.path, key, number, low, high))
        return number

    def agent_cert(self, role):
        """The certificate of a role or identity: KEYS/<name>.cert (its secret half: + "_secret")."""
        if not role or "/" in role or role.startswith("."):
            raise ConfigError("%s: '%s' is not a role or identity name" % (self.path, role))
        return os.path.join(self.agents_keys_dir, role + ".cert")

    def releases_dir(self):
        """Where the orchestrator keeps its release files."""
        return os.path.join(self.state_dir, "orchestrator", "releases")


def load_config(path=None):
    """Read airlock.yaml (default: default_config_path()). Only two levels are read
    (endpoints.router, keys.broker, ...); the C loader is the strict validator."""
    path = path or default_config_path()
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as error:
        raise ConfigError("%s: %s" % (path, error.strerror)) from None
    values, section = {}, None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip(" "))
        key, colon, rest = line.strip().partition(":")
        if not colon:
            raise ConfigError("%s:%d: expected 'key: value'" % (path, number))
        key = key.strip().strip("\"'")
        value = _yaml_scalar(rest, path, number)
        if indent == 0:
            section = key if value == "" else None
            if value != "":
                values[key] = value
        elif section is not None:
            values[section + "." + key] = value
    return Config(path, values)


# ---- release ids ----------------------------------------------------------------------------

def release_id_for(service, version, prefix="rel"):
    """rel-<service>-<version>-<6 hex>: as `airlock submit` makes them (at most 56
    characters of [A-Za-z0-9._-])."""
    text = "%s-%.16s-%.16s-%s" % (prefix, service, version, secrets.token_hex(3))
    return _ID_CHARS.sub("_", text)


def _check_release_id(release_id):
    if not isinstance(release_id, str) or not _RELEASE_ID.match(release_id):
        raise ValueError("release id %r: 1..56 of [A-Za-z0-9._-], not starting with '.'" % (release_id,))
    return release_id


def _bare_digest(digest, what):
    text = digest[7:] if digest.startswith("sha256:") else digest
    if not _HEX64.match(text):
        raise ValueError("%s: %r is not sha256:<64 lowercase hex digits>" % (what, digest))
    return text


def message_dict(message):
    """A protobuf message as a plain dict: field names as in airlock.proto, every field
    present, enums by their lower-case name without prefix ("standard", "production",
    "blue-green"), bytes as hex."""
    out = {}
    for field in message.DESCRIPTOR.fields:
        value = getattr(message, field.name)

        def convert(item):
            if field.type == field.TYPE_MESSAGE:
                return message_dict(item)
            if field.type == field.TYPE_ENUM:
                name = field.enum_type.values_by_number.get(item)
                if name is None:
                    return item
                parts = name.name.split("_")
                # ENV_PRODUCTION, DEPLOY_TYPE_STANDARD, STRATEGY_BLUE_GREEN, ...
                prefix = 2 if name.name.startswith("DEPLOY_TYPE_") else 1
                return "-".join(parts[prefix:]).lower() if field.enum_type.name == "Strategy" \
                    else "_".join(parts[prefix:]).lower()
            if field.type == field.TYPE_BYTES:
                return item.hex()
            return item

        if field.label == field.LABEL_REPEATED:
            out[field.name] = [convert(item) for item in value]
        else:
            out[field.name] = convert(value)
    return out


# ---- the client -----------------------------------------------------------------------------

class _Pending:
    """One message waiting for its answer."""

    __slots__ = ("message_id", "data", "sent_at", "sends", "answer")

    def __init__(self, message_id, data):
        self.message_id = message_id
        self.data = data
        self.sent_at = None
        self.sends = 0
        self.answer = None


class Client:
    """One CURVE-authenticated DEALER connection to the broker.

    Client(endpoint, broker_key, certificate) or Client.from_config(path, role="ci").
    endpoint is one broker endpoint or several (a list, or one comma-separated string):
    several brokers on one store (docs/ha.md), of which only the active one binds. As the
    C agents (agents/al_agent_link.c), the client is on one endpoint at a time and moves
    to the next when the link is not up for one heartbeat interval or the broker said
    nothing for 3 (plus a backoff that grows after each whole round, up to 1 s); on the
    new link it registers and sends every unanswered message again with its message id.
    With one endpoint, a broker silent for 3 intervals (plus the backoff) gets a new
    socket on the same endpoint (a link dead without a word, a broker stopped or
    restarted), counted in recreations.
    Usable as a context manager; close() ends it.
    """

    def __init__(self, endpoint, broker_key, certificate, name="python-client", heartbeat_ms=1000,
                 retry_ms=3000, handshake_ms=5000, state_dir=None):
        if certificate.secret_key is None:
            raise ConfigError("%s: the certificate has no secret key" % (certificate.path or "certificate"))
        _z85_key(broker_key, "broker key", "arguments")
        self.endpoints = split_endpoints(endpoint)
        self.brokers = describe_endpoints(self.endpoints)   # "X", or "any of 2 brokers (X, Y)"
        self._index = 0                     # the endpoint the link is on
        self.switches = 0                   # moves to the next endpoint
        self.recreations = 0                # sockets remade (a silent broker, or a move)
        self.name = _ID_CHARS.sub("_", name)[:24] or "python-client"
        self.heartbeat_ms = heartbeat_ms
        self.retry_ms = retry_ms
        self.state_dir = state_dir
        self.public_key = certificate.public_key
        self.last_ack = None
        self._boot = secrets.token_hex(8)
        self._counter = 0
        self._pending = {}                  # message id -> _Pending, in send order
        self._registered = False
        self._register = None               # the _Pending Register of this connection
        self._heartbeats = 0
        self._connections = 0
        self._refused = None
        self._handshake_s = handshake_ms / 1000.0
        self._connected_at = None           # when the monitor reported the last connect
        self._drops = 0                     # handshakes cut in a row by a peer that stayed
        self._retries_since_drop = None     # reconnects scheduled since the last cut (None: no cut)
        self._broker_heartbeat = None       # last broker heartbeat sequence
        self._last_tx = 0.0
        self._next_heartbeat = 0.0
        self._config = None
        self._certificate = certificate
        self._broker_key = broker_key
        self._handshake_ms = handshake_ms
        self._up = False                    # handshake done, not disconnected since
        self._down_since = 0.0              # when the link was opened or went down
        self._last_rx = 0.0                 # when the broker last said something
        self._last_wait = 0.0               # when a call last stopped listening (_wait)
        self._backoff = 0.0                 # added to the failover timeouts
        self._monitors = 0
        self._context = zmq.Context()
        self._socket = None
        self._monitor = None
        try:
            self._open_socket()
        except zmq.ZMQError as error:
            self.close()
            raise ConfigError("%s: %s" % (self.endpoint, error)) from None
        self._queue_register()

    @property
    def endpoint(self):
        """The endpoint the link is on (one of self.endpoints)."""
        return self.endpoints[self._index]

    def _named(self):
        """The brokers as a Timeout names them: "the broker at X", or "any of 2 brokers (X, Y)"."""
        return "the broker at " + self.endpoint if len(self.endpoints) == 1 else self.brokers

    def _list(self):
        """The end of an error about one endpoint: the whole list when there are several."""
        return "" if len(self.endpoints) == 1 else " (endpoints.brokers: %s)" % self.brokers

    def _open_socket(self):
        certificate, broker_key, handshake_ms = self._certificate, self._broker_key, self._handshake_ms
        self._socket = self._context.socket(zmq.DEALER)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.HANDSHAKE_IVL, handshake_ms)
        self._socket.setsockopt(zmq.RECONNECT_IVL, 250)
        self._socket.setsockopt(zmq.RECONNECT_IVL_MAX, 10000)
        self._socket.curve_secretkey = certificate.secret_key.encode("ascii")
        self._socket.curve_publickey = certificate.public_key.encode("ascii")
        self._socket.curve_serverkey = broker_key.encode("ascii")
        # Each socket its own monitor address (a new socket may reuse the old one's fd).
        self._monitors += 1
        self._monitor = self._socket.get_monitor_socket(
            zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED | zmq.EVENT_HANDSHAKE_FAILED_AUTH
            | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
            | zmq.EVENT_CONNECTED | zmq.EVENT_CONNECT_RETRIED,
            "inproc://airlock-client-monitor-%x-%d" % (id(self), self._monitors))
        self._poller = zmq.Poller()
        self._poller.register(self._socket, zmq.POLLIN)
        self._poller.register(self._monitor, zmq.POLLIN)
        now = time.monotonic()
        self._up = False
        self._down_since = now
        self._last_rx = now
        self._connected_at = None
        self._retries_since_drop = None     # no cut on this socket yet
        self._socket.connect(self.endpoint)

    def _close_socket(self):
        if self._monitor is not None:
            self._socket.disable_monitor()
            self._monitor.close(linger=0)
            self._monitor = None
        self._socket.close(linger=0)

    def _remake(self, now):
        """The link is given up (not up for an interval, or the broker silent for 3): a new
        socket, on the next endpoint when there are several, as s_link_remake in
        agents/al_agent_link.c. What is unanswered stays queued; the new link's handshake
        sends a Register and all of it again (same message ids: the broker, or the new
        active one sharing the store, answers what was committed with its outcome)."""
        silent_ms = int((now - self._last_rx) * 1000)
        if len(self.endpoints) > 1:
            after = (self._index + 1) % len(self.endpoints)
            _log.warning("%s: no word from the broker at %s for %d ms (heartbeat timeout): trying %s "
                         "(endpoints.brokers: %s)", self.name, self.endpoint, silent_ms, self.endpoints[after], self.brokers)
            self.switches += 1
        else:
            after = self._index
            _log.warning("%s: no word from the broker at %s for %d ms (heartbeat timeout): reconnecting",
                         self.name, self.endpoint, silent_ms)
        self._close_socket()
        self._index = after
        self.recreations += 1
        if self._index == 0:
            self._backoff = min(self._backoff * 2, _RECONNECT_IVL_MAX_S) if self._backoff else _RECONNECT_IVL_S
        self._registered = False
        self._broker_heartbeat = None
        self._open_socket()

    def _given_up(self, now):
        """Remake the link? The broker silent for 3 intervals, or (several endpoints) not up for 1."""
        interval = self.heartbeat_ms / 1000.0
        if now - self._last_rx > 3 * interval + self._backoff:
            return True
        return len(self.endpoints) > 1 and not self._up and now - self._down_since > interval + self._backoff

    @classmethod
    def from_config(cls, config=None, role="ci", certificate=None, name=None, identity=None, **options):
        """Connect as IDENTITY with its certificate in the state directory (keys/<identity>.cert
        and its _secret half, as `airlock identity add IDENTITY --role ROLE` makes them: one
        identity per AI agent, so the broker stamps and audits each agent apart), else as
        ROLE's built-in certificate (keys/<role>.cert, default ci), or with an explicit
        certificate file. config is a path to airlock.yaml (default_config_path() if None)
        or a loaded Config."""
        if not isinstance(config, Config):
            config = load_config(config)
        broker_key = load_certificate(config.broker_cert).public_key
        cert = load_certificate(certificate or config.agent_cert(identity or role), secret=True)
        options.setdefault("heartbeat_ms", config.heartbeat_ms)
        options.setdefault("handshake_ms", config.handshake_ms)
        client = cls(config.broker_endpoints, broker_key, cert, name=name or identity or role,
                     state_dir=config.state_dir, **options)
        client._config = config
        return client

    # ---- lifecycle ------------------------------------------------------------------------

    def close(self):
        """Close the connection. Unanswered messages are dropped (they may be committed)."""
        if self._context is None:
            return
        if self._socket is not None:
            self._close_socket()
            self._socket = None
        self._context.term()
        self._context = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def connect(self, timeout=10.0):
        """Wait until the broker acknowledged our registration. Raises KeyRefused if the
        broker refuses our key, Timeout if it does not answer."""
        deadline = time.monotonic() + timeout
        while not self._registered:
            answer = self._register.answer
            if answer is not None and answer.WhichOneof("body") == "denied":
                raise Denied(self._register.message_id, answer.denied.code,
                             "registration: " + answer.denied.reason, answer.denied.audit_sequence)
            if not self._wait(deadline):
                raise Timeout("no answer from %s within %.1f s" % (self._named(), timeout))

    def poll(self, timeout=0.0):
        """Handle what the broker sent and keep the link alive (heartbeats, resends) for
        up to timeout seconds."""
        deadline = time.monotonic() + timeout
        while self._wait(deadline):
            pass

    @property
    def registered(self):
        return self._registered

    # ---- sending ---------------------------------------------------------------------------

    def _next_id(self):
        self._counter += 1
        return "%s-%s-%d" % (self.name, self._boot, self._counter)

    def _queue(self, envelope):
        if not envelope.message_id:
            envelope.message_id = self._next_id()
        if not envelope.timestamp_ms:
            envelope.timestamp_ms = int(time.time() * 1000)
        pending = _Pending(envelope.message_id, envelope.SerializeToString())
        self._pending[pending.message_id] = pending
        self._transmit(pending)
        return pending

    def _queue_register(self):
        """Register first on this connection: the Register goes out before the resends."""
        if self._register is not None:
            self._pending.pop(self._register.message_id, None)
        envelope = pb.Envelope()
        envelope.register.agent_name = self.name
        envelope.register.software_version = SOFTWARE_VERSION
        envelope.register.heartbeat_interval_ms = self.heartbeat_ms
        self._registered = False
        self._register = self._queue(envelope)

    def _transmit(self, pending):
        try:
            self._socket.send(pending.data, zmq.NOBLOCK)
        except zmq.Again:
            return      # the pipe is full: the retry timer sends it again
        pending.sent_at = time.monotonic()
        pending.sends += 1
        self._last_tx = pending.sent_at

    def _resend_all(self):
        """A new link: Register first, then everything unanswered, in order."""
        others = [p for p in self._pending.values() if p is not self._register]
        self._queue_register()
        for pending in others:
            self._transmit(pending)

    def _send_heartbeat(self, now):
        envelope = pb.Envelope()
        envelope.message_id = self._next_id()
        envelope.timestamp_ms = int(time.time() * 1000)
        self._heartbeats += 1
        envelope.heartbeat.sequence = self._heartbeats
        try:
            self._socket.send(envelope.SerializeToString(), zmq.NOBLOCK)
            self._last_tx = now
        except zmq.Again:
            pass
        self._next_heartbeat = now + self.heartbeat_ms / 1000.0

    # ---- receiving --------------------------------------------------------------------------

    def _on_envelope(self, envelope):
        body = envelope.WhichOneof("body")
        if body == "heartbeat":
            sequence = envelope.heartbeat.sequence
            if self._broker_heartbeat is not None and sequence <= self._broker_heartbeat:
                # The broker counts from 1 per connection it sees: it restarted or forgot us.
                self._resend_all()
            self._broker_heartbeat = sequence
            return
        if body == "ack":
            pending = self._pending.pop(envelope.ack.acked_message_id, None)
            if pending is not None:
                pending.answer = envelope
                if pending is self._register:
                    self._registered = True
            return
        if body == "denied":
            pending = self._pending.pop(envelope.denied.denied_message_id, None)
            if pending is not None:
                pending.answer = envelope
            return
        if body == "status_reply":
            pending = self._pending.pop(envelope.correlation_id, None)
            if pending is not None:
                pending.answer = envelope
            return
        # A delivery: this client takes none (Register.subscribe_deliveries is false); not
        # acknowledging it leaves it to the role's agents.

    def _on_monitor_event(self):
        message = parse_monitor_message(self._monitor.recv_multipart())
        event, value = message["event"], message["value"]
        now = time.monotonic()
        if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            self._connections += 1
            self._up = True
            self._last_rx = now
            self._refused = None
            self._drops = 0
            self._broker_heartbeat = None
            if self._connections > 1 or self.switches:
                # A new link (the first one after moves counts too): Register and resend.
                self._resend_all()
        elif event == zmq.EVENT_DISCONNECTED:
            self._registered = False
            self._up = False
            self._down_since = now
        elif event == zmq.EVENT_CONNECTED:
            self._connected_at = now
        elif event == zmq.EVENT_CONNECT_RETRIED:
            # The first one after a cut schedules the reconnect; a second means that
            # attempt found nobody: the broker went away (it died), not a refusal.
            # (Only after a cut on this socket: a standby that binds nothing is no proof.)
            if self._retries_since_drop is not None:
                self._retries_since_drop += 1
                if self._retries_since_drop >= 2:
                    self._drops = 0
        elif event == zmq.EVENT_HANDSHAKE_FAILED_AUTH and value != 300:
            # The ZAP status: 400 from the broker's handler (300, temporary: retried).
            self._refused = ("handshake with %s failed: the broker refused this key (%s is not in the "
                             "policy's identities.yaml; ZAP status %d)%s"
                             % (self.endpoint, self.public_key, value, self._list()))
        elif event in (zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL, zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL):
            # Cut during the handshake. A handshake that ran into its timeout is a slow
            # broker, not a refusal; a quick cut counts toward _DROPS_REFUSED.
            quick = self._connected_at is not None and now - self._connected_at < self._handshake_s / 2
            self._connected_at = None
            self._retries_since_drop = 0
            if quick:
                self._drops += 1
            if self._drops >= _DROPS_REFUSED:
                self._refused = ("handshake with %s failed: the broker closed the connection during the CURVE "
                                 "handshake %d times in a row: wrong broker key, or not an airlock broker%s"
                                 % (self.endpoint, self._drops, self._list()))

    def _wait(self, deadline):
        """One round: receive, keep alive, retransmit. False once the deadline passed."""
        now = time.monotonic()
        if now >= deadline:
            return False
        if now - self._last_wait > self.heartbeat_ms / 1000.0:
            # Nobody listened since the last round (an idle client): what the broker sent
            # waits unread, so its silence is measured from now.
            self._last_rx = now
        if self._given_up(now):
            self._remake(now)
        if self._registered and now - self._last_tx > 3 * self.heartbeat_ms / 1000.0:
            # Silent for 3 intervals: the broker has forgotten us.
            self._resend_all()
        if self._registered and now >= self._next_heartbeat:
            self._send_heartbeat(now)
        retry = self.retry_ms / 1000.0
        for pending in list(self._pending.values()):
            if pending.sent_at is None or now - pending.sent_at >= retry:
                self._transmit(pending)
        wake = min([deadline, self._next_heartbeat if self._registered else deadline]
                   + [(p.sent_at or now) + retry for p in self._pending.values()]
                   + [now + self.heartbeat_ms / 1000.0])
        events = dict(self._poller.poll(max(0, int((wake - now) * 1000)) + 1))
        if self._monitor in events:
            while self._monitor.poll(0):
                self._on_monitor_event()
            if self._refused:
                raise KeyRefused(self._refused)
        if self._socket in events:
            while True:
                try:
                    frames = self._socket.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                if len(frames) != 1:
                    continue        # the bus sends single frames
                self._last_rx = time.monotonic()
                envelope = pb.Envelope()
                try:
                    envelope.ParseFromString(frames[0])
                except Exception:  # noqa: BLE001 - protobuf raises DecodeError subclasses
                    continue
                self._on_envelope(envelope)
        self._last_wait = time.monotonic()
        return True

    def _exchange(self, envelope, timeout):
        """Send and wait for the answer envelope (Ack, Denied or StatusReply)."""
        if self._socket is None:
            raise AirlockError("the client is closed")
        deadline = time.monotonic() + timeout
        pending = self._queue(envelope)
        while pending.answer is None:
            if not self._wait(deadline):
                raise Timeout("no answer from %s within %.1f s (message %s stays unanswered: it may be committed)"
                              % (self._named(), timeout, pending.message_id))
        answer = pending.answer
        if answer.WhichOneof("body") == "denied":
            denied = answer.denied
            raise Denied(pending.message_id, denied.code, denied.reason, denied.audit_sequence)
        return answer

    def send(self, envelope, timeout=10.0):
        """Send an Envelope until the broker answers. Returns the Ack (audit_sequence,
        audit_hash, duplicate); raises Denied, Timeout or KeyRefused. The message id and
        timestamp are filled in when empty; set both yourself for idempotence across your
        own restarts (the id must then be unique for your identity forever)."""
        answer = self._exchange(envelope, timeout)
        self.last_ack = answer.ack
        return answer.ack

    def query(self, what, filter="", limit=0, timeout=5.0):
        """A StatusQuery ("agents", "approvals", "journal"); returns the StatusReply."""
        envelope = pb.Envelope()
        envelope.status_query.what = what
        envelope.status_query.filter = filter
        envelope.status_query.limit = limit
        return self._exchange(envelope, timeout).status_reply

    # ---- what an AI agent does --------------------------------------------------------------

    def submit_release(self, service, version, artifact, digest, type="standard", changes=(), summary="",
                       environment="development", release_id=None, migrations="", timeout=10.0):
        """Hand a release candidate to the orchestrator (it deploys it to staging, has QA
        validate it and files the production request for a human). Returns the release id.
        Raises Denied (with the broker's reason), Timeout, ValueError for bad arguments."""
        if type not in SUBMIT_TYPES:
            raise ValueError("type %r: one of %s (rollbacks: request_rollback; scheduled: airlock submit "
                             "--window)" % (type, ", ".join(SUBMIT_TYPES)))
        if environment not in ENVIRONMENTS:
            raise ValueError("environment %r: one of %s" % (environment, ", ".join(ENVIRONMENTS)))
        release_id = _check_release_id(release_id) if release_id else release_id_for(service, version)
        envelope = pb.Envelope()
        envelope.deployment_id = release_id
        envelope.environment = ENVIRONMENTS[environment]
        candidate = envelope.release_candidate
        candidate.service = service
        candidate.version = version
        candidate.artifact_uri = artifact
        candidate.artifact_sha256 = _bare_digest(digest, "digest")
        candidate.deployment_type = SUBMIT_TYPES[type]
        candidate.changes.extend(changes)
        candidate.summary = summary
        if migrations:
            candidate.migration_set_sha256 = _bare_digest(migrations, "migrations")
        self.send(envelope, timeout)
        return release_id

    def _releases_dir(self):
        if self._config is not None:
            return self._config.releases_dir()
        if self.state_dir:
            return os.path.join(self.state_dir, "orchestrator", "releases")
        raise AirlockError("release status needs the state directory (Client.from_config, or state_dir=)")

    def _release_file(self, release_id):
        path = os.path.join(self._releases_dir(), _check_release_id(release_id) + ".json")
        try:
            with open(path, encoding="utf-8") as handle:
                return json.load(handle)
        except FileNotFoundError:
            raise NotFound("no release %s (no %s)" % (release_id, path)) from None
        except (OSError, ValueError) as error:
            raise AirlockError("%s: %s" % (path, error)) from None

    def _journal(self, deployment_id, timeout):
        reply = self.query("journal", deployment_id, timeout=timeout)
        try:
            return json.loads(reply.json).get("entries", [])
        except (ValueError, AttributeError):
            return []

    def status(self, release_id=None, timeout=5.0):
        """With release_id: {"release": <the orchestrator's release file>, "awaiting_approval":
        bool, "events": {"staging": [...], "production": [...]}} (the deploy journal), as
        `airlock status RELEASE --json`. Without: {"agents": [...], "releases": [...]}.
        Raises NotFound for an unknown release."""
        if release_id is None:
            reply = self.query("agents", timeout=timeout)
            agents = [{"identity": a.identity, "role": a.role, "alive": a.alive,
                       "last_heartbeat_ms": a.last_heartbeat_ms} for a in reply.agents]
            releases = []
            directory = self._releases_dir()
            for entry in sorted(os.listdir(directory)) if os.path.isdir(directory) else []:
                if entry.endswith(".json"):
                    try:
                        with open(os.path.join(directory, entry), encoding="utf-8") as handle:
                            releases.append(json.load(handle))
                    except (OSError, ValueError):
                        continue
            releases.sort(key=lambda r: r.get("created_ms", 0), reverse=True)
            return {"agents": agents, "releases": releases}
        release = self._release_file(release_id)
        events = {"staging": self._journal(release_id + "-stg", timeout),
                  "production": self._journal(release_id + "-prod", timeout)}
        request_id = release_id + "-prod"
        awaiting = any(a["request_id"] == request_id for a in self.approvals(timeout))
        return {"release": release, "awaiting_approval": awaiting, "events": events}

    def approvals(self, timeout=5.0):
        """The production requests waiting for human approval, exactly as filed (dicts
        with the ApprovalRequest's fields). A human approves with `airlock approve ID`."""
        reply = self.query("approvals", timeout=timeout)
        requests = []
        for request in reply.approvals:
            item = message_dict(request)
            item["approve_with"] = "airlock approve " + request.request_id
            requests.append(item)
        return requests

    def request_rollback(self, release_id, timeout=10.0):
        """Ask for a production rollback of release_id's service to the release that ran
        before it (as `airlock rollback`): submitted as a deployment of type rollback, which
        a devops human approves. Returns the new release id."""
        release = self._release_file(release_id)
        service = release.get("service")
        if not service:
            raise AirlockError("release %s has no service" % release_id)
        record_path = os.path.join(self._config.state_dir if self._config else self.state_dir,
                                   "deploy", "releases", service, "production.json")
        try:
            with open(record_path, encoding="utf-8") as handle:
                record = json.load(handle)
        except (OSError, ValueError):
            record = {}
        current = (record.get("current") or {}).get("deployment_id")
        previous = record.get("previous")
        if current != release_id + "-prod" or not isinstance(previous, dict):
            raise NotFound("%s is not what runs in production for %s, or nothing ran before it (%s)"
                           % (release_id, service, record_path))
        version = previous.get("version")
        envelope = pb.Envelope()
        new_id = release_id_for(service, version or "?", prefix="rb")
        envelope.deployment_id = new_id
        envelope.environment = pb.ENV_DEVELOPMENT
        candidate = envelope.release_candidate
        candidate.service = service
        candidate.version = version or ""
        candidate.artifact_uri = previous.get("artifact_uri") or ""
        candidate.artifact_sha256 = previous.get("artifact_sha256") or ""
        candidate.deployment_type = pb.DEPLOY_TYPE_ROLLBACK
        candidate.summary = "rollback of %s to %s" % (release_id, version or "?")
        if not (candidate.version and candidate.artifact_uri and candidate.artifact_sha256):
            raise AirlockError("%s: the previous release is incomplete" % record_path)
        self.send(envelope, timeout)
        return new_id
