"""test_python_failover.py: the Python client configured with several brokers.

Two `airlock broker` processes share one throwaway PostgreSQL (tests/pg/pg_harness.sh) as
docs/ha.md describes (store: {backend: postgres, dsn}, ha: {name, lease_ms}): A holds the
lease and binds, B is a standby that binds nothing. The client's airlock.yaml lists both
(endpoints.brokers), shown here:
  - the client sends to the leader and is acknowledged;
  - a message in flight when the leader dies (A is stopped, the client sends, A is
    SIGKILLed before it read it) is acknowledged by B once it took the lease, and
    audited exactly once;
  - the next send after the kill is acknowledged by B within its timeout;
  - a message A committed but died before acknowledging (crash point
    broker.after-commit) is resent with its id and answered by B from the log
    (Ack.duplicate), audited once;
  - Timeout names the whole list ("any of 2 brokers (A, B)");
and, without any broker, that endpoints.brokers is read as the list (the C side's
syntax and limits), endpoints.router being the fallback.

Run by ctest with /usr/bin/python3, PYTHONPATH=SOURCE/clients/python:BUILD/clients/python,
AIRLOCK_SOURCE_DIR (tests/pg/pg_harness.sh) and AIRLOCK_BINARY_DIR (the airlock command).
PostgreSQL missing is a failure (scripts/install-deps installs it).
"""
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest

import zmq

import airlock_client as ac
from airlock_client import airlock_pb2 as pb

AIRLOCK = os.path.join(os.environ.get("AIRLOCK_BINARY_DIR", "."), "airlock")
PG_HARNESS = os.path.join(os.environ.get("AIRLOCK_SOURCE_DIR", "."), "tests", "pg", "pg_harness.sh")
DIGEST = "5e" * 32


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


class ConfigTest(unittest.TestCase):
    """endpoints.brokers as the C side reads it (agents/al_agent_endpoints_split)."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="al-pyfailcfg-")
        self.path = os.path.join(self.dir, "airlock.yaml")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def load(self, endpoints):
        with open(self.path, "w") as handle:
            handle.write("state_dir: %s\nendpoints:\n  router: tcp://0.0.0.0:5555\n%s" % (self.dir, endpoints))
        return ac.load_config(self.path)

    def test_brokers_is_the_list(self):
        config = self.load("  brokers: \"tcp://10.1.0.1:5555 ,\ttcp://10.2.0.1:5555\"\n")
        self.assertEqual(config.broker_endpoints, ["tcp://10.1.0.1:5555", "tcp://10.2.0.1:5555"])
        self.assertEqual(config.router_endpoint, "tcp://0.0.0.0:5555")
        self.assertEqual(ac.describe_endpoints(config.broker_endpoints),
                         "any of 2 brokers (tcp://10.1.0.1:5555, tcp://10.2.0.1:5555)")

    def test_router_is_the_fallback(self):
        self.assertEqual(self.load("").broker_endpoints, ["tcp://0.0.0.0:5555"])
        self.assertEqual(ac.describe_endpoints(["tcp://0.0.0.0:5555"]), "tcp://0.0.0.0:5555")

    def test_bad_lists_are_refused(self):
        with self.assertRaises(ac.ConfigError) as caught:
            self.load("  brokers: \"tcp://10.1.0.1:5555,,\"\n")
        self.assertEqual(str(caught.exception), "%s: endpoints.brokers: endpoint: 'tcp://10.1.0.1:5555,,': "
                         "an empty item in the list" % self.path)
        with self.assertRaisesRegex(ac.ConfigError, r"endpoints\.brokers: endpoint: '.*': more than 8 endpoints"):
            self.load("  brokers: \"%s\"\n" % ", ".join("tcp://h%d:1" % n for n in range(9)))
        with self.assertRaisesRegex(ac.ConfigError, r"endpoint: 'broker-b' is not a ZeroMQ endpoint"):
            self.load("  brokers: \"tcp://a:1, broker-b\"\n")
        self.assertEqual(len(self.load("  brokers: \"%s\"\n" % ",".join("ipc://x%d" % n for n in range(8)))
                             .broker_endpoints), 8)

    def test_client_takes_a_list(self):
        # Client(...) takes a list, or one comma-separated string; its messages name
        # the whole list. Nobody listens on these paths: the call times out.
        public, secret = zmq.curve_keypair()
        certificate = ac.Certificate(public.decode(), secret.decode())
        broker_key = zmq.curve_keypair()[0].decode()
        a, b = "ipc://%s/a.ipc" % self.dir, "ipc://%s/b.ipc" % self.dir
        with ac.Client("%s, %s" % (a, b), broker_key, certificate, heartbeat_ms=100) as client:
            self.assertEqual(client.endpoints, [a, b])
            with self.assertRaises(ac.Timeout) as caught:
                client.send(candidate("rel-nobody"), timeout=1.5)
            self.assertIn("no answer from any of 2 brokers (%s, %s) within 1.5 s" % (a, b), str(caught.exception))
            self.assertGreaterEqual(client.switches, 2)      # it went round the list
        with ac.Client([a], broker_key, certificate) as client:
            with self.assertRaises(ac.Timeout) as caught:
                client.connect(0.3)
            self.assertEqual(str(caught.exception), "no answer from the broker at %s within 0.3 s" % a)
        with self.assertRaisesRegex(ac.ConfigError, "an empty item in the list"):
            ac.Client([a, " "], broker_key, certificate)


class FailoverTest(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="al-pyfail-")
        # Its own directory: the server runs as nobody, which must reach it (the harness
        # opens it to 0755; the state directory stays private).
        self.pg_dir = tempfile.mkdtemp(prefix="al-pyfail-pg-")
        self.brokers = {}
        self.addCleanup(self.stop_all)      # also when the rest of setUp fails
        # The harness's watchdog stops the server if this process dies first.
        started = subprocess.run(["sh", PG_HARNESS, "start", self.pg_dir, str(os.getpid())],
                                 capture_output=True, text=True)
        self.assertEqual(started.returncode, 0, "pg_harness.sh start: %s" % started.stderr)
        self.pg_port = int(started.stdout.split()[-1])
        self.psql("postgres", "CREATE DATABASE pyfail")
        self.dsn = "host=127.0.0.1 port=%d user=airlock dbname=pyfail connect_timeout=10" % self.pg_port
        subprocess.run([AIRLOCK, "init", self.dir], check=True, stdout=subprocess.DEVNULL)
        self.routers = ["ipc://%s/%s-router.ipc" % (self.dir, name) for name in ("a", "b")]
        pubs = ["ipc://%s/%s-pub.ipc" % (self.dir, name) for name in ("a", "b")]
        for name in ("a", "b", "clients"):
            with open(os.path.join(self.dir, name + ".yaml"), "w") as handle:
                handle.write("state_dir: %s\nendpoints:\n  router: ipc://%s/%s-router.ipc\n  pub: ipc://%s/%s-pub.ipc\n"
                             "  brokers: \"%s\"\n  events: \"%s\"\n"
                             "checkpoint:\n  path: %s/checkpoints/%s.ckpt\n"
                             "store:\n  backend: postgres\n  dsn: \"%s\"\nha:\n  name: %s\n  lease_ms: 3000\n"
                             % (self.dir, self.dir, name, self.dir, name, ", ".join(self.routers), ", ".join(pubs),
                                self.dir, name, self.dsn, name))

    def stop_all(self):
        for process in self.brokers.values():
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.kill()
                process.wait()
        subprocess.run(["sh", PG_HARNESS, "kill", self.pg_dir], capture_output=True)
        shutil.rmtree(self.pg_dir, ignore_errors=True)
        shutil.rmtree(self.dir, ignore_errors=True)

    def psql(self, database, sql):
        result = subprocess.run(["sh", PG_HARNESS, "psql", self.pg_dir, "-d", database, "-At", "-c", sql],
                                capture_output=True, text=True)
        self.assertEqual(result.returncode, 0, "psql: %s" % result.stderr)
        return result.stdout.strip()

    def log(self, name):
        try:
            with open(os.path.join(self.dir, name + ".log")) as handle:
                return handle.read()
        except OSError:
            return ""

    def logs(self):
        return "".join("---- %s\n%s\n" % (name, self.log(name)[-3000:]) for name in ("a", "b"))

    def start(self, name, says, timeout=60, crashpoint=None):
        env = dict(os.environ)
        env.pop("AIRLOCK_CRASHPOINT", None)
        if crashpoint:
            env["AIRLOCK_CRASHPOINT"] = crashpoint
        with open(os.path.join(self.dir, name + ".log"), "a") as out:
            self.brokers[name] = subprocess.Popen([AIRLOCK, "broker", "--config", os.path.join(self.dir, name + ".yaml")],
                                                  stdout=out, stderr=subprocess.STDOUT, env=env)
        self.wait_log(name, says, timeout)

    def wait_log(self, name, says, timeout=60):
        deadline = time.monotonic() + timeout
        while says not in self.log(name):
            if time.monotonic() > deadline or self.brokers[name].poll() is not None:
                self.fail("broker %s did not say %r\n%s" % (name, says, self.logs()))
            time.sleep(0.1)

    def audited(self, release_id):
        return int(self.psql("pyfail", "SELECT count(*) FROM events WHERE convert_from(type, 'UTF8') = "
                             "'ReleaseCandidate' AND convert_from(deployment_id, 'UTF8') = '%s'" % release_id))

    def test_leader_killed(self):
        self.start("a", "is active (lease epoch")
        self.start("b", "is a standby until it holds the lease")
        with ac.Client.from_config(os.path.join(self.dir, "clients.yaml")) as client:
            self.assertEqual(client.endpoints, self.routers)
            first = client.send(candidate("rel-pyfail-1"), timeout=30)
            self.assertGreater(first.audit_sequence, 0)
            self.assertEqual(client.endpoint, self.routers[0])
            # In flight at the kill: A is stopped, so it never reads what the client sends.
            self.brokers["a"].send_signal(signal.SIGSTOP)
            outcome = {}

            def in_flight():
                try:
                    outcome["ack"] = client.send(candidate("rel-pyfail-2"), timeout=60)
                except ac.AirlockError as error:
                    outcome["error"] = error

            sender = threading.Thread(target=in_flight)
            sender.start()
            time.sleep(0.5)
            self.brokers["a"].kill()
            self.assertEqual(self.brokers["a"].wait(30), -signal.SIGKILL)
            sender.join(90)
            self.assertFalse(sender.is_alive())
            self.assertNotIn("error", outcome, self.logs())
            self.assertGreater(outcome["ack"].audit_sequence, first.audit_sequence)
            self.assertEqual(client.endpoint, self.routers[1])
            self.assertGreaterEqual(client.switches, 1)
            self.assertIn("is active (lease epoch", self.log("b"))
            # The next send: acknowledged by the new leader.
            third = client.send(candidate("rel-pyfail-3"), timeout=30)
            self.assertGreater(third.audit_sequence, outcome["ack"].audit_sequence)
            self.assertFalse(third.duplicate)
        self.assertEqual([self.audited("rel-pyfail-%d" % n) for n in (1, 2, 3)], [1, 1, 1])

    def test_leader_dies_after_commit(self):
        # A commits the client's message and dies before acknowledging it (crash point
        # broker.after-commit, its 3rd commit: its PolicyLoaded row and the client's
        # Register come first). The client resends the same message id to B, which
        # answers from the shared log.
        self.start("a", "is active (lease epoch", crashpoint="broker.after-commit:3")
        self.start("b", "is a standby until it holds the lease")
        with ac.Client.from_config(os.path.join(self.dir, "clients.yaml")) as client:
            client.connect(30)
            ack = client.send(candidate("rel-pyfail-4"), timeout=60)
            self.assertEqual(self.brokers["a"].wait(30), -signal.SIGKILL, self.logs())
            self.assertTrue(ack.duplicate, "B did not answer from the log: %s" % ack)
            self.assertEqual(client.endpoint, self.routers[1])
        self.assertEqual(self.audited("rel-pyfail-4"), 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
