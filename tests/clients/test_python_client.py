"""test_python_client.py: the Python client against a real broker and orchestrator.

`airlock init` makes a state directory with a services.yaml; `airlock broker` and
`airlock agent orchestrator` run as processes (no deploy-manager: a release stops in
STAGING, its DeployRequest queued for a deploy-manager that never comes, which is all
these tests need). Shown here, with the state directory's `ci` certificate:
  - submit_release: the orchestrator's release file appears in state STAGING, submitted
    by ci, and status() returns it with its (empty) journal and no pending approval;
  - a ReleaseCandidate for production is denied, with the broker's reason;
  - a certificate whose key is not in identities.yaml is refused at the handshake, and
    so is a client given the wrong broker key (long before its timeout), also with a
    list of brokers (the message names the list);
  - a broker SIGKILLed in the middle of the client's handshake (crash point broker.zap,
    twice in a row) and restarted: the client's send completes, nothing raised;
  - a release submitted while the broker is down is delivered once it is back;
  - request_rollback submits the release that ran before as a rollback;
  - `python3 -m airlock_client submit|status --json`, and its exit codes.

Run by ctest with /usr/bin/python3, PYTHONPATH=SOURCE/clients/python:BUILD/clients/python
and AIRLOCK_BINARY_DIR (the airlock command).
"""
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import zmq

import airlock_client as ac
from airlock_client import airlock_pb2 as pb

AIRLOCK = os.path.join(os.environ.get("AIRLOCK_BINARY_DIR", "."), "airlock")
DIGEST = "sha256:" + "5e" * 32


class Stack:
    """A state directory with a broker and an orchestrator running."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="al-pyclient-")
        self.config = os.path.join(self.dir, "airlock.yaml")
        subprocess.run([AIRLOCK, "init", self.dir], check=True, stdout=subprocess.DEVNULL)
        with open(os.path.join(self.dir, "services.yaml"), "w") as handle:
            handle.write("version: 1\nservices:\n  demo:\n    driver: process\n    instances: 1\n"
                         "    strategy: rolling\n    command: [\"{{artifact}}\"]\n")
        self.broker = None
        self.orchestrator = None
        self.start_broker()
        self.orchestrator = self.spawn("orchestrator", [AIRLOCK, "agent", "orchestrator", "--config", self.config])
        self.wait_for_role("orchestrator")

    def spawn(self, log, argv):
        with open(os.path.join(self.dir, log + ".log"), "a") as out:
            return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)

    def start_broker(self):
        self.broker = self.spawn("broker", [AIRLOCK, "broker", "--config", self.config])

    def stop_broker(self):
        self.broker.send_signal(signal.SIGTERM)
        self.broker.wait(30)

    def wait_for_role(self, role, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with ac.Client.from_config(self.config, name="probe") as client:
                    if any(a["role"] == role and a["alive"] for a in client.status(timeout=2)["agents"]):
                        return
            except ac.AirlockError:
                pass
            time.sleep(0.25)
        raise AssertionError("%s did not register:\n%s" % (role, self.logs()))

    def logs(self):
        text = []
        for name in ("broker", "orchestrator"):
            try:
                with open(os.path.join(self.dir, name + ".log")) as handle:
                    text.append("---- %s\n%s" % (name, handle.read()[-3000:]))
            except OSError:
                pass
        return "\n".join(text)

    def close(self):
        for process in (self.orchestrator, self.broker):
            if process and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class ClientTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.stack = Stack()

    @classmethod
    def tearDownClass(cls):
        cls.stack.close()

    def setUp(self):
        self.client = ac.Client.from_config(self.stack.config)

    def tearDown(self):
        self.client.close()

    def wait_state(self, release_id, want, timeout=30):
        deadline = time.monotonic() + timeout
        result = None
        while time.monotonic() < deadline:
            try:
                result = self.client.status(release_id)
                if result["release"]["state"] == want:
                    return result
            except ac.NotFound:
                pass
            time.sleep(0.2)
        self.fail("%s: %s, expected state %s\n%s" % (release_id, result, want, self.stack.logs()))

    def test_submit_reaches_staging(self):
        self.client.connect(10)
        release_id = self.client.submit_release("demo", "v1.2.0", "/opt/demo-v1.2.0", DIGEST,
                                                changes=["faster checkout"], summary="checkout")
        self.assertRegex(release_id, r"^rel-demo-v1\.2\.0-[0-9a-f]{6}$")
        self.assertGreater(self.client.last_ack.audit_sequence, 0)
        result = self.wait_state(release_id, "STAGING")
        release = result["release"]
        self.assertEqual(release["release_id"], release_id)
        self.assertEqual(release["submitted_by"], "ci")
        self.assertEqual(release["artifact_sha256"], DIGEST[7:])
        self.assertEqual(release["changes"], ["faster checkout"])
        self.assertFalse(result["awaiting_approval"])
        self.assertEqual(result["events"], {"staging": [], "production": []})
        # The same file, read directly: status() returns what the orchestrator wrote.
        path = os.path.join(self.stack.dir, "orchestrator", "releases", release_id + ".json")
        with open(path) as handle:
            self.assertEqual(json.load(handle)["state"], "STAGING")
        self.assertNotIn(release_id + "-prod", [a["request_id"] for a in self.client.approvals()])
        overview = self.client.status()
        self.assertIn(release_id, [r["release_id"] for r in overview["releases"]])
        self.assertIn("orchestrator", [a["role"] for a in overview["agents"]])

    def test_production_candidate_is_denied(self):
        with self.assertRaises(ac.Denied) as caught:
            self.client.submit_release("demo", "v9", "/opt/demo-v9", DIGEST, environment="production",
                                       release_id="rel-denied-1")
        self.assertEqual(caught.exception.code_name, "DENY_NOT_PERMITTED")
        self.assertIn("production", caught.exception.reason)
        self.assertIn("ReleaseCandidate", caught.exception.reason)
        self.assertGreater(caught.exception.audit_sequence, 0)
        # Never routed: the orchestrator has no such release.
        time.sleep(0.5)
        with self.assertRaises(ac.NotFound):
            self.client.status("rel-denied-1")

    def test_unknown_certificate_is_refused(self):
        public, secret = zmq.curve_keypair()
        broker_key = ac.load_certificate(os.path.join(self.stack.dir, "keys", "broker.cert")).public_key
        config = ac.load_config(self.stack.config)
        with ac.Client(config.router_endpoint, broker_key, ac.Certificate(public.decode(), secret.decode())) as rogue:
            with self.assertRaises(ac.KeyRefused) as caught:
                rogue.submit_release("demo", "v1", "/opt/demo", DIGEST, timeout=10)
        self.assertIn("refused this key", str(caught.exception))
        self.assertIn(public.decode(), str(caught.exception))

    def test_wrong_broker_key_is_refused(self):
        # The broker cannot open our HELLO and closes the connection, every time: that
        # is a refusal (final), not a broker that died (retried), and it comes long
        # before the call's timeout.
        public, _ = zmq.curve_keypair()
        config = ac.load_config(self.stack.config)
        certificate = ac.load_certificate(config.agent_cert("ci"), secret=True)
        with ac.Client(config.router_endpoint, public.decode(), certificate) as lost:
            with self.assertRaises(ac.KeyRefused) as caught:
                lost.submit_release("demo", "v1", "/opt/demo", DIGEST, timeout=120)
        self.assertIn("wrong broker key", str(caught.exception))
        self.assertIn("3 times in a row", str(caught.exception))

    def test_refusals_name_the_list(self):
        # Several brokers (a standby that binds nothing, then this broker): a refusal is
        # still found (on the broker that answers) and the message names the whole list.
        config = ac.load_config(self.stack.config)
        nobody = "ipc://%s/standby.ipc" % self.stack.dir
        brokers = "any of 2 brokers (%s, %s)" % (nobody, config.router_endpoint)
        broker_key = ac.load_certificate(config.broker_cert).public_key
        public, secret = zmq.curve_keypair()
        with ac.Client([nobody, config.router_endpoint], broker_key, ac.Certificate(public.decode(), secret.decode()),
                       heartbeat_ms=300) as rogue:
            with self.assertRaises(ac.KeyRefused) as caught:
                rogue.submit_release("demo", "v1", "/opt/demo", DIGEST, timeout=30)
        self.assertIn("handshake with %s failed: the broker refused this key" % config.router_endpoint,
                      str(caught.exception))
        self.assertIn("(endpoints.brokers: %s)" % brokers, str(caught.exception))
        certificate = ac.load_certificate(config.agent_cert("ci"), secret=True)
        with ac.Client([nobody, config.router_endpoint], zmq.curve_keypair()[0].decode(), certificate,
                       heartbeat_ms=300) as lost:
            with self.assertRaises(ac.KeyRefused) as caught:
                lost.submit_release("demo", "v1", "/opt/demo", DIGEST, timeout=120)
        self.assertIn("wrong broker key", str(caught.exception))
        self.assertIn("(endpoints.brokers: %s)" % brokers, str(caught.exception))

    def test_submit_while_broker_down_is_delivered_later(self):
        self.client.connect(10)
        self.stack.stop_broker()
        restart = threading.Timer(1.5, self.stack.start_broker)
        restart.start()
        try:
            release_id = self.client.submit_release("demo", "v2", "/opt/demo-v2", DIGEST, timeout=30)
        finally:
            restart.join()
        # The new broker run knows us again (a fresh Register on the new connection).
        self.client.connect(10)
        self.assertTrue(self.client.registered)
        self.wait_state(release_id, "STAGING")

    def test_request_rollback(self):
        release_id = self.client.submit_release("demo", "v5", "/opt/demo-v5", DIGEST)
        self.wait_state(release_id, "STAGING")
        with self.assertRaisesRegex(ac.NotFound, "is not what runs in production"):
            self.client.request_rollback(release_id)
        # deploy-manager's record, as it writes it once the release runs in production.
        record = os.path.join(self.stack.dir, "deploy", "releases", "demo")
        os.makedirs(record, exist_ok=True)
        with open(os.path.join(record, "production.json"), "w") as handle:
            json.dump({"format": "airlock-release-record-v1", "service": "demo", "environment": "production",
                       "current": {"version": "v5", "artifact_sha256": DIGEST[7:], "artifact_uri": "/opt/demo-v5",
                                   "deployment_id": release_id + "-prod", "instances": 1},
                       "previous": {"version": "v4", "artifact_sha256": "4" * 64, "artifact_uri": "/opt/demo-v4",
                                    "deployment_id": "rel-old-prod", "instances": 1}}, handle)
        rollback = self.client.request_rollback(release_id)
        self.assertRegex(rollback, r"^rb-demo-v4-[0-9a-f]{6}$")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                release = self.client.status(rollback)["release"]
                break
            except ac.NotFound:
                time.sleep(0.2)
        else:
            self.fail("the rollback release did not appear\n" + self.stack.logs())
        self.assertEqual(release["type"], "rollback")
        self.assertEqual(release["artifact_sha256"], "4" * 64)

    def test_command_line(self):
        env = dict(os.environ, AIRLOCK_CONFIG=self.stack.config)
        command = [sys.executable, "-m", "airlock_client"]
        submit = subprocess.run(command + ["submit", "--service", "demo", "--version", "v3", "--artifact", "/opt/d3",
                                           "--digest", DIGEST, "--json"], env=env, capture_output=True, text=True)
        self.assertEqual(submit.returncode, 0, submit.stderr)
        release_id = json.loads(submit.stdout)["release_id"]
        self.wait_state(release_id, "STAGING")
        status = subprocess.run(command + ["status", release_id, "--json"], env=env, capture_output=True, text=True)
        self.assertEqual(status.returncode, 0, status.stderr)
        self.assertEqual(json.loads(status.stdout)["release"]["state"], "STAGING")
        missing = subprocess.run(command + ["status", "rel-none", "--json"], env=env, capture_output=True, text=True)
        self.assertEqual(missing.returncode, 1)
        self.assertIn("no release rel-none", missing.stderr)
        bad = subprocess.run(command + ["submit", "--service", "demo", "--version", "v3", "--artifact", "/opt/d3",
                                        "--digest", "md5:00"], env=env, capture_output=True, text=True)
        self.assertEqual(bad.returncode, 2)
        self.assertIn("digest", bad.stderr)

    def test_own_identity_per_agent(self):
        # One identity per AI agent: `airlock identity add` makes frontend-1's key pair
        # and entry; after the broker reloads, the client connects as frontend-1 and the
        # broker stamps it: the audit row's sender and the release's submitter.
        added = subprocess.run([AIRLOCK, "identity", "add", "frontend-1", "--role", "frontend-specialist",
                                "--config", self.stack.config], capture_output=True, text=True)
        self.assertEqual(added.returncode, 0, added.stderr)
        self.assertIn("SIGHUP", added.stdout)
        self.stack.broker.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 30
        release_id = None
        while release_id is None:
            try:
                with ac.Client.from_config(self.stack.config, identity="frontend-1") as agent:
                    release_id = agent.submit_release("demo", "v7", "/opt/demo-v7", DIGEST, timeout=5)
            except ac.KeyRefused:
                if time.monotonic() > deadline:
                    self.fail("frontend-1 still refused after the reload\n" + self.stack.logs())
                time.sleep(0.2)
        result = self.wait_state(release_id, "STAGING")
        self.assertEqual(result["release"]["submitted_by"], "frontend-1")
        database = sqlite3.connect("file:%s?mode=ro" % os.path.join(self.stack.dir, "audit.db"), uri=True)
        try:
            rows = database.execute("SELECT sender, role FROM events WHERE type = 'ReleaseCandidate' AND "
                                    "deployment_id = ?", (release_id,)).fetchall()
        finally:
            database.close()
        self.assertEqual(rows, [("frontend-1", "frontend-specialist")])
        # The command line, with --identity.
        env = dict(os.environ, AIRLOCK_CONFIG=self.stack.config)
        submit = subprocess.run([sys.executable, "-m", "airlock_client", "submit", "--identity", "frontend-1",
                                 "--service", "demo", "--version", "v8", "--artifact", "/opt/d8", "--digest", DIGEST,
                                 "--json"], env=env, capture_output=True, text=True)
        self.assertEqual(submit.returncode, 0, submit.stderr)
        second = self.wait_state(json.loads(submit.stdout)["release_id"], "STAGING")
        self.assertEqual(second["release"]["submitted_by"], "frontend-1")
        # A secret key readable by others is refused before anything connects.
        secret = os.path.join(self.stack.dir, "keys", "frontend-1.cert_secret")
        os.chmod(secret, 0o644)
        try:
            with self.assertRaises(ac.ConfigError) as caught:
                ac.Client.from_config(self.stack.config, identity="frontend-1")
        finally:
            os.chmod(secret, 0o600)
        self.assertEqual(str(caught.exception), "%s: mode 0644: a secret key must be readable by its owner only "
                         "(chmod 600 %s)" % (secret, secret))


class HandshakeDropTest(unittest.TestCase):
    """A broker of its own (no other client), started with the crash point broker.zap:
    it SIGKILLs itself on the first ZAP request it handles, i.e. in the middle of the
    first CURVE handshake it sees, which is ours."""

    KILLS = 2

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="al-pydrop-")
        self.config = os.path.join(self.dir, "airlock.yaml")
        subprocess.run([AIRLOCK, "init", self.dir], check=True, stdout=subprocess.DEVNULL)
        self.broker = None
        self.exits = []

    def tearDown(self):
        if self.broker and self.broker.poll() is None:
            self.broker.send_signal(signal.SIGTERM)
            try:
                self.broker.wait(30)
            except subprocess.TimeoutExpired:
                self.broker.kill()
                self.broker.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def start_broker(self, crash):
        env = dict(os.environ)
        env.pop("AIRLOCK_CRASHPOINT", None)
        if crash:
            env["AIRLOCK_CRASHPOINT"] = "broker.zap"
        with open(os.path.join(self.dir, "broker.log"), "a") as out:
            self.broker = subprocess.Popen([AIRLOCK, "broker", "--config", self.config], stdout=out,
                                           stderr=subprocess.STDOUT, env=env)

    def supervise(self):
        """As `airlock up` would: restart the broker each time it dies, the crash point
        armed for the first KILLS runs."""
        for _ in range(self.KILLS):
            self.exits.append(self.broker.wait(120))
            time.sleep(0.3)
            self.start_broker(crash=len(self.exits) < self.KILLS)

    def test_broker_killed_in_handshake_then_restarted(self):
        self.start_broker(crash=True)
        supervisor = threading.Thread(target=self.supervise)
        supervisor.start()
        try:
            with ac.Client.from_config(self.config) as client:
                ack = client.send(self.candidate(), timeout=120)
        finally:
            supervisor.join(150)
        self.assertEqual(self.exits, [-signal.SIGKILL] * self.KILLS, "the broker did not die in the handshake")
        self.assertGreater(ack.audit_sequence, 0)
        self.assertFalse(ack.duplicate)
        database = sqlite3.connect("file:%s?mode=ro" % os.path.join(self.dir, "audit.db"), uri=True)
        try:
            rows = database.execute("SELECT sender FROM events WHERE type = 'ReleaseCandidate'").fetchall()
        finally:
            database.close()
        self.assertEqual(rows, [("ci",)])

    @staticmethod
    def candidate():
        envelope = pb.Envelope()
        envelope.deployment_id = "rel-drop-1"
        envelope.environment = pb.ENV_DEVELOPMENT
        candidate = envelope.release_candidate
        candidate.service = "demo"
        candidate.version = "v1"
        candidate.artifact_uri = "/opt/demo-v1"
        candidate.artifact_sha256 = DIGEST[7:]
        candidate.deployment_type = pb.DEPLOY_TYPE_STANDARD
        return envelope


if __name__ == "__main__":
    unittest.main(verbosity=2)
