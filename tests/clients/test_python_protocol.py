"""test_python_protocol.py: the Python client's wire behaviour against a scripted broker.

A fake broker (a CURVE ROUTER without a ZAP handler, so any key connects) records every
frame the client sends and answers as each test scripts it. Shown here: Register comes
first; an unanswered message is retransmitted byte for byte with the same message id
until the answer; Denied becomes the Denied exception with the broker's code and reason;
a StatusReply is matched on its correlation id; a timeout leaves the message in the
outbox, answered later; the client heartbeats while it waits and registers again when
the broker's heartbeat sequence goes back (a broker restart). Also the certificate and
airlock.yaml readers, on good and broken files.

Run by ctest with /usr/bin/python3 and PYTHONPATH=SOURCE/clients/python:BUILD/clients/python.
"""
import os
import queue
import tempfile
import threading
import unittest

import zmq

import airlock_client as ac
from airlock_client import airlock_pb2 as pb


class FakeBroker(threading.Thread):
    """A ROUTER that records envelopes and answers with script(envelope, raw) -> [replies],
    and every heartbeat of the client with an Ack (so the link is never silent)."""

    def __init__(self, script):
        super().__init__(daemon=True)
        self.public, secret = zmq.curve_keypair()
        self.context = zmq.Context()
        self.router = self.context.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.LINGER, 0)
        self.router.curve_server = True
        self.router.curve_secretkey = secret
        self.directory = tempfile.mkdtemp(prefix="al-fake-")
        self.endpoint = "ipc://%s/broker.ipc" % self.directory
        self.router.bind(self.endpoint)
        self.script = script
        self.received = []          # (envelope, raw bytes)
        self.outgoing = queue.Queue()
        self.peer = None
        self.running = True
        self.lock = threading.Lock()

    def run(self):
        while self.running:
            if self.router.poll(20):
                frames = self.router.recv_multipart()
                self.peer = frames[0]
                envelope = pb.Envelope()
                envelope.ParseFromString(frames[1])
                with self.lock:
                    self.received.append((envelope, frames[1]))
                replies = list(self.script(envelope, frames[1]) or [])
                if envelope.WhichOneof("body") == "heartbeat":
                    # A live broker speaks every interval (the client remakes a link
                    # silent for 3): an Ack of the heartbeat, which the client ignores.
                    replies.append(ack(envelope, 0))
                for reply in replies:
                    self.router.send_multipart([self.peer, reply.SerializeToString()])
            while not self.outgoing.empty() and self.peer is not None:
                self.router.send_multipart([self.peer, self.outgoing.get().SerializeToString()])
        self.router.close(linger=0)
        self.context.term()

    def stop(self):
        self.running = False
        self.join(5)
        path = self.endpoint[len("ipc://"):]
        if os.path.exists(path):
            os.unlink(path)
        os.rmdir(self.directory)

    def bodies(self, body):
        with self.lock:
            return [(e, raw) for e, raw in self.received if e.WhichOneof("body") == body]


def ack(envelope, sequence=7):
    reply = pb.Envelope()
    reply.message_id = "broker-%d" % sequence
    reply.ack.acked_message_id = envelope.message_id
    reply.ack.audit_sequence = sequence
    return reply


def heartbeat(sequence):
    reply = pb.Envelope()
    reply.message_id = "hb-%d" % sequence
    reply.heartbeat.sequence = sequence
    return reply


def answer_registers(envelope, raw):
    return [ack(envelope, 1)] if envelope.WhichOneof("body") == "register" else []


class ProtocolTest(unittest.TestCase):

    def start(self, script, **options):
        self.broker = FakeBroker(script)
        self.broker.start()
        public, secret = zmq.curve_keypair()
        options.setdefault("retry_ms", 200)
        options.setdefault("heartbeat_ms", 100)
        self.client = ac.Client(self.broker.endpoint, self.broker.public.decode(),
                                ac.Certificate(public.decode(), secret.decode()), name="tester", **options)

    def tearDown(self):
        self.client.close()
        self.broker.stop()

    def candidate(self):
        return self.client.submit_release, ("shop", "v1", "/a/b", "sha256:" + "ab" * 32)

    def test_register_first_then_retransmit_same_bytes(self):
        seen = {}

        def script(envelope, raw):
            if envelope.WhichOneof("body") == "register":
                return [ack(envelope, 1)]
            if envelope.WhichOneof("body") == "release_candidate":
                seen[envelope.message_id] = seen.get(envelope.message_id, 0) + 1
                # Swallow the first two copies: the client must send it again, unchanged.
                if seen[envelope.message_id] == 3:
                    return [ack(envelope, 9)]
            return []

        self.start(script)
        self.client.connect(5)
        submit, args = self.candidate()
        release_id = submit(*args, changes=["one", "two"], summary="s", timeout=10)
        self.assertEqual(self.client.last_ack.audit_sequence, 9)
        first = self.broker.received[0][0]
        self.assertEqual(first.WhichOneof("body"), "register")
        self.assertEqual(first.register.agent_name, "tester")
        self.assertEqual(first.register.heartbeat_interval_ms, 100)
        self.assertFalse(first.register.subscribe_deliveries)
        copies = self.broker.bodies("release_candidate")
        self.assertEqual(len(copies), 3)
        self.assertEqual(len({raw for _, raw in copies}), 1, "retransmissions must be byte-identical")
        sent = copies[0][0]
        self.assertEqual(sent.deployment_id, release_id)
        self.assertTrue(release_id.startswith("rel-shop-v1-"))
        self.assertEqual(sent.environment, pb.ENV_DEVELOPMENT)
        self.assertEqual(sent.release_candidate.artifact_sha256, "ab" * 32)
        self.assertEqual(list(sent.release_candidate.changes), ["one", "two"])
        self.assertEqual(sent.release_candidate.deployment_type, pb.DEPLOY_TYPE_STANDARD)
        self.assertFalse(sent.HasField("sender"))
        self.assertTrue(sent.message_id.startswith("tester-"))

    def test_denied_carries_code_and_reason(self):
        def script(envelope, raw):
            if envelope.WhichOneof("body") == "release_candidate":
                reply = pb.Envelope()
                reply.message_id = "broker-d"
                reply.denied.denied_message_id = envelope.message_id
                reply.denied.code = pb.DENY_NOT_PERMITTED
                reply.denied.reason = "ci may not send ReleaseCandidate in production"
                reply.denied.audit_sequence = 12
                return [reply]
            return answer_registers(envelope, raw)

        self.start(script)
        submit, args = self.candidate()
        with self.assertRaises(ac.Denied) as caught:
            submit(*args, environment="production")
        self.assertEqual(caught.exception.code_name, "DENY_NOT_PERMITTED")
        self.assertIn("in production", caught.exception.reason)
        self.assertEqual(caught.exception.audit_sequence, 12)
        self.assertEqual(self.broker.bodies("release_candidate")[0][0].environment, pb.ENV_PRODUCTION)

    def test_status_reply_matched_by_correlation(self):
        def script(envelope, raw):
            if envelope.WhichOneof("body") == "status_query":
                other = pb.Envelope()
                other.message_id = "broker-x"
                other.correlation_id = "someone-else"
                other.status_reply.json = "{\"wrong\": true}"
                reply = pb.Envelope()
                reply.message_id = "broker-s"
                reply.correlation_id = envelope.message_id
                request = reply.status_reply.approvals.add()
                request.request_id = "rel-1-prod"
                request.deployment_type = pb.DEPLOY_TYPE_HOTFIX
                request.environment = pb.ENV_PRODUCTION
                request.strategy = pb.STRATEGY_BLUE_GREEN
                request.service = "shop"
                return [other, reply]
            return answer_registers(envelope, raw)

        self.start(script)
        approvals = self.client.approvals()
        self.assertEqual(len(approvals), 1)
        self.assertEqual(approvals[0]["request_id"], "rel-1-prod")
        self.assertEqual(approvals[0]["deployment_type"], "hotfix")
        self.assertEqual(approvals[0]["environment"], "production")
        self.assertEqual(approvals[0]["strategy"], "blue-green")
        self.assertEqual(approvals[0]["approve_with"], "airlock approve rel-1-prod")
        self.assertEqual(self.broker.bodies("status_query")[0][0].status_query.what, "approvals")

    def test_timeout_keeps_the_message_until_answered(self):
        answer = threading.Event()

        def script(envelope, raw):
            if envelope.WhichOneof("body") == "release_candidate" and answer.is_set():
                return [ack(envelope, 3)]
            return answer_registers(envelope, raw)

        self.start(script)
        submit, args = self.candidate()
        with self.assertRaises(ac.Timeout):
            submit(*args, timeout=0.5)
        copies = len(self.broker.bodies("release_candidate"))
        answer.set()
        self.client.poll(1.0)
        later = self.broker.bodies("release_candidate")
        self.assertGreater(len(later), copies, "the unanswered message was not retransmitted")
        self.assertEqual(len({e.message_id for e, _ in later}), 1)
        self.assertEqual(self.client._pending, {})

    def test_heartbeats_and_register_again_after_broker_restart(self):
        self.start(answer_registers)
        self.client.connect(5)
        self.broker.outgoing.put(heartbeat(1))
        self.broker.outgoing.put(heartbeat(2))
        self.client.poll(0.6)
        self.assertGreaterEqual(len(self.broker.bodies("heartbeat")), 3)
        self.assertEqual(len(self.broker.bodies("register")), 1)
        # A broker that counts from 1 again has restarted: register again.
        self.broker.outgoing.put(heartbeat(1))
        self.client.poll(0.5)
        registers = self.broker.bodies("register")
        self.assertEqual(len(registers), 2)
        self.assertNotEqual(registers[0][0].message_id, registers[1][0].message_id)
        self.assertTrue(self.client.registered)


class FilesTest(unittest.TestCase):

    def setUp(self):
        self.directory = tempfile.TemporaryDirectory(prefix="al-files-")
        self.dir = self.directory.name

    def tearDown(self):
        self.directory.cleanup()

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as handle:
            handle.write(text)
        return path

    def test_certificate_pair(self):
        public, secret = zmq.curve_keypair()
        head = "#   ZeroMQ CURVE Public Certificate\n\nmetadata\n    name = \"x\"\ncurve\n"
        path = self.write("x.cert", head + "    public-key = \"%s\"\n" % public.decode())
        secret_path = self.write("x.cert_secret", head + "    public-key = \"%s\"\n    secret-key = \"%s\"\n"
                                 % (public.decode(), secret.decode()))
        os.chmod(secret_path, 0o644)
        with self.assertRaisesRegex(ac.ConfigError, "x.cert_secret: mode 0644: a secret key must be readable by its "
                                    "owner only"):
            ac.load_certificate(path, secret=True)
        os.chmod(secret_path, 0o600)
        cert = ac.load_certificate(path, secret=True)
        self.assertEqual(cert.public_key, public.decode())
        self.assertEqual(cert.secret_key, secret.decode())
        self.assertIsNone(ac.load_certificate(path).secret_key)
        os.unlink(path + "_secret")
        with self.assertRaisesRegex(ac.ConfigError, "secret"):
            ac.load_certificate(path, secret=True)
        bad = self.write("bad.cert", "curve\n   public-key = \"abc\"\n")
        with self.assertRaisesRegex(ac.ConfigError, "bad.cert:2: indentation"):
            ac.load_certificate(bad)
        short = self.write("short.cert", "curve\n    public-key = \"abc\"\n")
        with self.assertRaisesRegex(ac.ConfigError, "40-character"):
            ac.load_certificate(short)

    def test_config(self):
        path = self.write("airlock.yaml", "# comment\nstate_dir: \"state\"\nendpoints:\n  router: \"tcp://127.0.0.1:5999\"\n"
                          "keys:\n  agents: 'my keys'   # here\nheartbeat_ms: 250\n")
        config = ac.load_config(path)
        self.assertEqual(config.state_dir, os.path.join(self.dir, "state"))
        self.assertEqual(config.router_endpoint, "tcp://127.0.0.1:5999")
        self.assertEqual(config.pub_endpoint, "ipc://%s/state/events.ipc" % self.dir)
        self.assertEqual(config.agent_cert("ci"), os.path.join(self.dir, "my keys", "ci.cert"))
        self.assertEqual(config.broker_cert, os.path.join(self.dir, "state", "keys", "broker.cert"))
        self.assertEqual(config.heartbeat_ms, 250)
        broken = self.write("broken.yaml", "state_dir: \"/x\nheartbeat_ms: 1\n")
        with self.assertRaisesRegex(ac.ConfigError, "broken.yaml:1: unterminated"):
            ac.load_config(broken)
        empty = self.write("empty.yaml", "heartbeat_ms: 1000\n")
        with self.assertRaisesRegex(ac.ConfigError, "state_dir is required"):
            ac.load_config(empty)

    def test_bad_endpoint_or_keys(self):
        public, secret = zmq.curve_keypair()
        certificate = ac.Certificate(public.decode(), secret.decode())
        with self.assertRaisesRegex(ac.ConfigError, "nonsense://x"):
            ac.Client("nonsense://x", public.decode(), certificate)
        with self.assertRaisesRegex(ac.ConfigError, "broker key"):
            ac.Client("ipc:///tmp/x", "short", certificate)
        with self.assertRaisesRegex(ac.ConfigError, "no secret key"):
            ac.Client("ipc:///tmp/x", public.decode(), ac.Certificate(public.decode()))

    def test_release_ids_and_digests(self):
        release_id = ac.release_id_for("my svc", "v1/2")
        self.assertRegex(release_id, r"^rel-my_svc-v1_2-[0-9a-f]{6}$")
        self.assertNotEqual(release_id, ac.release_id_for("my svc", "v1/2"))
        with self.assertRaises(ValueError):
            ac.client._bare_digest("sha256:ABC", "digest")
        with self.assertRaises(ValueError):
            ac.client._check_release_id("../../etc/passwd")


if __name__ == "__main__":
    unittest.main(verbosity=2)
