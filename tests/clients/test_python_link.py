"""test_python_link.py: the Python client with one broker endpoint remakes a silent link.

As the C agents (agents/al_agent_link.c, s_link_given_up / s_link_remake): a broker that
says nothing for 3 heartbeat intervals (plus a backoff) gets a new socket on the same
endpoint. One real `airlock broker` on the ipc:// endpoint of a throwaway state directory
(`airlock init`), heartbeat_ms 500 for both sides. Shown here:
  - a healthy broker's link is never remade, also not after the client sat idle for
    several heartbeat timeouts (nobody listened: that is no silence of the broker);
  - the broker stopped (SIGSTOP) longer than the heartbeat timeout while the client
    listens: the client remakes its socket (recreations, the "reconnecting" warning),
    and after SIGCONT its next send is acknowledged;
  - the broker killed (SIGKILL) and restarted on the same endpoint: the client remakes
    its socket while nobody answers, and its next send is acknowledged by the new broker.

Run by ctest with /usr/bin/python3, PYTHONPATH=SOURCE/clients/python:BUILD/clients/python
and AIRLOCK_BINARY_DIR (the airlock command).
"""
import logging
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import airlock_client as ac
from airlock_client import airlock_pb2 as pb

AIRLOCK = os.path.join(os.environ.get("AIRLOCK_BINARY_DIR", "."), "airlock")
DIGEST = "5e" * 32
HEARTBEAT_MS = 500


def candidate(release_id):
    envelope = pb.Envelope()
    envelope.deployment_id = release_id
    envelope.environment = pb.ENV_DEVELOPMENT
    body = envelope.release_candidate
    body.service = "demo"
    body.version = "v1"
    body.artifact_uri = "/opt/demo-v1"
    body.artifact_sha256 = DIGEST
    body.deployment_type = pb.DEPLOY_TYPE_STANDARD
    return envelope


class Warnings(logging.Handler):
    """The client's log warnings, kept."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


class LinkTest(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="al-pylink-")
        self.broker = None
        self.addCleanup(self.cleanup)
        subprocess.run([AIRLOCK, "init", self.dir], check=True, stdout=subprocess.DEVNULL)
        self.config = os.path.join(self.dir, "airlock.yaml")
        with open(self.config) as handle:
            text = handle.read()
        text, replaced = re.subn(r"(?m)^heartbeat_ms:.*$", "heartbeat_ms: %d" % HEARTBEAT_MS, text)
        with open(self.config, "w") as handle:
            handle.write(text if replaced else text + "heartbeat_ms: %d\n" % HEARTBEAT_MS)
        self.start_broker()
        self.warnings = Warnings()
        logging.getLogger("airlock_client").addHandler(self.warnings)
        self.addCleanup(logging.getLogger("airlock_client").removeHandler, self.warnings)
        self.client = ac.Client.from_config(self.config)
        self.addCleanup(self.client.close)
        self.assertEqual(self.client.heartbeat_ms, HEARTBEAT_MS)
        self.assertEqual(len(self.client.endpoints), 1)

    def cleanup(self):
        if self.broker is not None and self.broker.poll() is None:
            self.broker.send_signal(signal.SIGCONT)
            self.broker.kill()
            self.broker.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def start_broker(self):
        with open(os.path.join(self.dir, "broker.log"), "a") as out:
            self.broker = subprocess.Popen([AIRLOCK, "broker", "--config", self.config],
                                           stdout=out, stderr=subprocess.STDOUT)

    def broker_log(self):
        try:
            with open(os.path.join(self.dir, "broker.log")) as handle:
                return handle.read()[-3000:]
        except OSError:
            return ""

    def send(self, release_id, timeout=60):
        if self.broker.poll() is not None:
            self.fail("the broker exited (%s)\n---- broker\n%s" % (self.broker.returncode, self.broker_log()))
        try:
            ack = self.client.send(candidate(release_id), timeout=timeout)
        except ac.AirlockError as error:
            self.fail("%s: %s\n---- broker\n%s" % (release_id, error, self.broker_log()))
        self.assertGreater(ack.audit_sequence, 0)
        return ack

    def listen_until(self, condition, timeout=60):
        """The client listens (poll) until condition() holds; fails after timeout."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                self.fail("condition not met within %d s (recreations %d)\n---- broker\n%s"
                          % (timeout, self.client.recreations, self.broker_log()))
            self.client.poll(0.2)

    def test_healthy_link_is_kept(self):
        self.send("rel-pylink-1")
        self.client.poll(4 * 3 * HEARTBEAT_MS / 1000.0)     # listening: the broker heartbeats
        time.sleep(4 * 3 * HEARTBEAT_MS / 1000.0)           # idle: nobody listens
        self.send("rel-pylink-2")
        self.client.poll(2 * 3 * HEARTBEAT_MS / 1000.0)
        self.assertEqual(self.client.recreations, 0, "\n".join(self.warnings.lines))
        self.assertEqual(self.client.switches, 0)

    def test_stopped_broker(self):
        first = self.send("rel-pylink-stop-1")
        self.broker.send_signal(signal.SIGSTOP)
        try:
            # Silent longer than the heartbeat timeout while the client listens.
            self.listen_until(lambda: self.client.recreations >= 2)
        finally:
            self.broker.send_signal(signal.SIGCONT)
        self.assertTrue(any("no word from the broker at %s" % self.client.endpoint in line and "reconnecting" in line
                            for line in self.warnings.lines), self.warnings.lines)
        self.assertEqual(self.client.switches, 0)          # one endpoint: the same one again
        second = self.send("rel-pylink-stop-2")
        self.assertGreater(second.audit_sequence, first.audit_sequence)
        self.assertFalse(second.duplicate)

    def test_killed_and_restarted_broker(self):
        first = self.send("rel-pylink-kill-1")
        self.broker.kill()
        self.broker.wait()
        remade = self.client.recreations
        self.listen_until(lambda: self.client.recreations >= remade + 2)
        self.start_broker()
        second = self.send("rel-pylink-kill-2")
        self.assertGreater(second.audit_sequence, first.audit_sequence)
        self.listen_until(lambda: self.client.registered)       # and it registered on the new link


if __name__ == "__main__":
    unittest.main(verbosity=2)
