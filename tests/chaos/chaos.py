#!/usr/bin/python3
"""chaos.py: kill anything at any moment and lose nothing (docs/chaos.md).

One harness for the ctest short mode and the bench (bench/chaos/bench_chaos runs it with
`bench`). It makes a state directory (`airlock init`, an approver key, the demo service
with the process driver), runs `airlock up` in its own process group and, while releases
flow through the whole pipeline (submit -> staging -> QA -> request -> `airlock approve`
-> production rollout -> soak -> receipt) and a load of bus messages runs, SIGKILLs at
random moments one of: the broker, any agent, a running `airlock approve`, a service
instance, `airlock up` itself (the harness starts it again). Crash points
(base/al_crashpoint.h, armed through AIRLOCK_CRASHPOINT and re-armed through
AIRLOCK_CRASHPOINT_ARM) aim kills at the narrow windows: approve after its signature left,
deploy-manager before a step's journal record, the broker between commit and ack.

After every kill the invariants are asserted (a failure ends the run with exit 1 and the
reason):
  - ledger: every message a client saw acknowledged (audit sequence + chain hash, from the
    Python client's Ack; audit row from approve's answer) is in the audit log, same hash;
  - grants: no production receipt without its grant (ExecuteDeploy row), none twice;
  - `airlock audit verify` passes; `PRAGMA integrity_check` is ok;
  - no orphan: every process under this one (a child subreaper) is `airlock up`, one of
    the six it supervises, a service instance whose owner is alive or that the driver's
    registry (instances.json) records for clean-up, or a command this harness runs.
At the end (no more kills): every release reaches a terminal state (DONE, FAILED,
ROLLED_BACK), grants and production receipts are one to one, `airlock up` stops on SIGTERM
and nothing survives it (waitpid: ECHILD).

Modes: short (>= 50 kills, ctest), bench [--kills N] (>= 1000, prints RESULT lines),
diskfull (the broker's database on a small tmpfs that fills up), sigstop (the broker
stopped longer than the heartbeat timeout). Needs root for diskfull (mount).
"""
import argparse
import ctypes
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import traceback

BINARY_DIR = os.environ.get("AIRLOCK_BINARY_DIR", "")
AIRLOCK = os.path.join(BINARY_DIR, "airlock")
SUPERVISED = ["broker", "orchestrator", "qa", "deploy-manager", "monitor", "notifier"]
TERMINAL = ("DONE", "FAILED", "ROLLED_BACK")
CRASHPOINTS = {"broker.after-commit": "broker", "deploy-manager.before-journal": "deploy-manager"}
PR_SET_CHILD_SUBREAPER = 36


class ChaosFailure(Exception):
    pass


def log(text):
    sys.stderr.write("chaos %s %s\n" % (time.strftime("%H:%M:%S"), text))
    sys.stderr.flush()


def fail(text):
    raise ChaosFailure(text)


def read(path, default=None):
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return default


def write(path, text, mode=0o644):
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, mode)


# ---- processes ------------------------------------------------------------------------------

def proc_stat(pid):
    """(parent, process group, state) of pid from /proc, or None when it is gone."""
    text = read("/proc/%d/stat" % pid)
    if not text:
        return None
    fields = text[text.rfind(")") + 2:].split()
    return int(fields[1]), int(fields[2]), fields[0]


def proc_cmdline(pid):
    text = read("/proc/%d/cmdline" % pid, "")
    return text.replace("\0", " ").strip()


def alive(pid):
    stat = proc_stat(pid) if pid else None
    return stat is not None and stat[2] not in ("Z", "X")


def descendants(root):
    """Every live process below root: {pid: parent}."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = proc_stat(int(entry))
            if stat and stat[2] not in ("Z", "X"):
                parents[int(entry)] = stat[0]
    below = {}
    changed = True
    while changed:
        changed = False
        for pid, parent in parents.items():
            if pid not in below and (parent == root or parent in below):
                below[pid] = parent
                changed = True
    return below


def reap():
    """Reap every exited child (we are a subreaper: orphans of our tree come to us)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def wait_until(condition, timeout, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    return condition()


# ---- the state directory ------------------------------------------------------------------

class State:
    """A state directory made with `airlock init`, an approver (alice, manager), the demo
    service (process driver, 2 instances, rolling, 1.5 s soak)."""

    def __init__(self, root, database=None):
        self.dir = root
        self.config = os.path.join(root, "airlock.yaml")
        self.arm = os.path.join(root, "crashpoints")
        self.versions = 0
        run([AIRLOCK, "init", root], check=True)
        if database:
            text = read(self.config)
            text = re.sub(r'(?m)^database: .*$', 'database: "%s"' % database, text)
            write(self.config, text, 0o600)
        self.database = database or os.path.join(root, "audit.db")
        run([AIRLOCK, "keygen", "--name", "alice", "--out", os.path.join(root, "alice.key")], check=True)
        policy = os.path.join(root, "policy")
        constraints = read(os.path.join(policy, "constraints.yaml"))
        at = constraints.index("\ncalendar:")
        write(os.path.join(policy, "constraints.yaml"),
              constraints[:at + 1] + "calendar:\n  timezone: UTC\n  applies_to: [production]\n  windows:\n"
              "    - {days: [monday, tuesday, wednesday, thursday, friday, saturday, sunday], start: \"00:00\","
              " end: \"24:00\"}\n  freezes:\n    weekdays: []\n    holidays: []\n    month_end: off\n")
        public = read(os.path.join(root, "alice.key.pub")).split()[1]
        write(os.path.join(policy, "approvers.yaml"),
              "approvers:\n  - name: alice\n    roles: [manager]\n    keys:\n      - {id: alice, ed25519: \"%s\"}\n"
              % public)
        write(os.path.join(root, "services.yaml"),
              "version: 1\nservices:\n  demo:\n    driver: process\n    instances: 2\n    strategy: rolling\n"
              "    soak_ms: 1500\n    soak: { duration_ms: 1500, reason: \"chaos: 1.5 s of production soak suffice\" }\n"
              "    probe_interval_ms: 100\n    ready_timeout_ms: 20000\n    stop_timeout_ms: 2000\n"
              "    command: [\"{{artifact}}\"]\n"
              "    qa:\n      smoke:\n        - { name: health, path: /healthz, status: 200, body_contains: ok }\n")
        os.makedirs(os.path.join(root, "art"), exist_ok=True)
        os.makedirs(self.arm, exist_ok=True)

    def artifact(self):
        """A new version of the demo service: (version, path, sha256 digest)."""
        self.versions += 1
        version = "1.0.%d" % self.versions
        path = os.path.join(self.dir, "art", "demo-%s.sh" % version)
        write(path, "#!/bin/sh\nexec '%s/demo-service' --version '%s' \"$@\"\n" % (BINARY_DIR, version), 0o755)
        import hashlib
        with open(path, "rb") as handle:
            digest = hashlib.sha256(handle.read()).hexdigest()
        return version, path, "sha256:" + digest

    def pid(self, name):
        text = read(os.path.join(self.dir, "run", name + ".pid"), "")
        return int(text) if text.strip().isdigit() else 0

    def release(self, release_id):
        text = read(os.path.join(self.dir, "orchestrator", "releases", release_id + ".json"))
        try:
            return json.loads(text) if text else None
        except ValueError:
            return None                 # written through a rename: never half, but be safe


def run(argv, check=False, timeout=120, env=None):
    result = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout, env=env,
                            universal_newlines=True)
    if check and result.returncode != 0:
        fail("%s: exit %d\n%s" % (" ".join(argv), result.returncode, result.stdout))
    return result


# ---- the ledger and the invariants ----------------------------------------------------------

class Ledger:
    """What the clients saw acknowledged: audit sequence -> (chain hash or None, what)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.acked = {}

    def add(self, sequence, digest, what):
        with self.lock:
            self.acked[sequence] = (digest, what)

    def items(self):
        with self.lock:
            return list(self.acked.items())


class Checker:
    def __init__(self, state, ledger):
        self.state = state
        self.ledger = ledger
        self.checks = 0
        self.acked_lost = 0
        self.duplicate_deploys = 0
        self.ungranted_deploys = 0
        self.grants_seen = 0

    def _db(self):
        return sqlite3.connect("file:%s?mode=ro" % self.state.database, uri=True, timeout=30)

    def wait_ready(self, timeout=60):
        """The broker made its log (the events table exists): the checks have a subject."""
        def ready():
            try:
                db = self._db()
                try:
                    return db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'events'").fetchone()[0] == 1
                finally:
                    db.close()
            except sqlite3.Error:
                return False
        if not wait_until(ready, timeout, 0.2):
            fail("%s: the broker made no audit log within %d s" % (self.state.database, timeout))

    def grants_and_receipts(self, db):
        grants, receipts = {}, {}
        for deployment, kind, count in db.execute(
                "SELECT deployment_id, type, count(*) FROM events WHERE environment = 'production' AND decision = 1 "
                "AND type IN ('ExecuteDeploy', 'DeployReceipt') GROUP BY deployment_id, type"):
            (grants if kind == "ExecuteDeploy" else receipts)[deployment] = count
        return grants, receipts

    def check(self, final=False):
        """Assert every invariant; returns a short summary."""
        self.checks += 1
        acked = self.ledger.items()     # before the read: all of it was committed by then
        db = self._db()
        try:
            rows = dict(db.execute("SELECT seq, hash FROM events").fetchall())
            lost = []
            for sequence, (digest, what) in acked:
                if sequence not in rows or (digest is not None and bytes(rows[sequence]) != digest):
                    lost.append("%s (row %d)" % (what, sequence))
            self.acked_lost = len(lost)
            if lost:
                fail("acknowledged but not in the audit log with its hash: %s" % ", ".join(lost[:10]))
            integrity = db.execute("PRAGMA integrity_check").fetchall()
            if integrity != [("ok",)]:
                fail("PRAGMA integrity_check: %s" % integrity)
            grants, receipts = self.grants_and_receipts(db)
            self.grants_seen = len(grants)
        finally:
            db.close()
        twice = sorted(d for d, n in list(grants.items()) + list(receipts.items()) if n > 1)
        ungranted = sorted(d for d in receipts if d not in grants)
        self.duplicate_deploys = len(twice)
        self.ungranted_deploys = len(ungranted)
        if twice:
            fail("deployed (or granted) twice in production: %s" % twice)
        if ungranted:
            fail("a production receipt without its grant: %s" % ungranted)
        if final and set(grants) != set(receipts):
            fail("grants and production receipts are not one to one: grants %s, receipts %s"
                 % (sorted(grants), sorted(receipts)))
        verify = run([AIRLOCK, "audit", "verify", "--config", self.state.config], timeout=120)
        if verify.returncode != 0:
            fail("airlock audit verify: exit %d\n%s" % (verify.returncode, verify.stdout))
        return "%d rows, %d acked, %d grants, %d receipts" % (len(rows), len(acked), len(grants),
                                                              len(receipts))


# ---- airlock up ------------------------------------------------------------------------------

class Up:
    """`airlock up --state DIR`, its own process group, stderr into DIR/up.out."""

    def __init__(self, state, crashpoints=None):
        self.state = state
        self.crashpoints = crashpoints
        self.process = None
        self.starts = 0
        self.seen_pids = set()

    def start(self):
        env = dict(os.environ)
        if self.crashpoints:
            # A new pass number at every start of up: the windows move (which commit,
            # which step's record: deploy-manager's records alternate start and end).
            env["AIRLOCK_CRASHPOINT"] = self.crashpoints()
            env["AIRLOCK_CRASHPOINT_ARM"] = self.state.arm
        out = open(os.path.join(self.state.dir, "up.out"), "a")
        self.process = subprocess.Popen([AIRLOCK, "up", "--state", self.state.dir], stdout=out, stderr=out,
                                        start_new_session=True, env=env)
        out.close()
        self.starts += 1
        if not wait_until(self.all_running, 60):
            fail("airlock up did not start all six (%s)" % self.pids())

    def pids(self):
        return {name: self.state.pid(name) for name in SUPERVISED}

    def all_running(self):
        pids = self.pids()
        self.seen_pids.update(p for p in pids.values() if p)
        return all(alive(p) for p in pids.values())

    def wait_restarted(self, name, old, timeout):
        def back():
            pid = self.state.pid(name)
            return pid and pid != old and alive(pid)
        if not wait_until(back, timeout):
            fail("%s (pid %d) was not restarted by airlock up within %d s" % (name, old, timeout))
        self.seen_pids.add(self.state.pid(name))

    def restart_delay(self, name, pid):
        """The delay up reported when it last restarted name (0 if never)."""
        text = read(os.path.join(self.state.dir, "up.out"), "")
        text = text[text.rfind("airlock up: starting"):]     # this run of up only
        delays = re.findall(r"airlock up: %s \(pid \d+\) .*; restart in ([\d.]+) s" % re.escape(name), text)
        return float(delays[-1]) if delays else 0.0

    def stop(self, timeout=60):
        """SIGTERM up and wait; then nothing may survive it."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
                fail("airlock up did not stop within %d s of SIGTERM" % timeout)
        self.process = None


class Link:
    """A Python client that survives the broker's deaths: it retransmits across broker
    restarts by itself, and a broker that dies in the middle of the CURVE handshake is
    a lost connection like any other (docs/chaos.md: this harness found the client
    raising KeyRefused for it; a KeyRefused here is now a failure). The harness only
    bounds each wait, to notice stop."""

    def __init__(self, state, role, name):
        self.state = state
        self.role = role
        self.name = name
        self.client = None

    def send(self, envelope, ledger, what, timeout=180, stop=None):
        """Send until acknowledged; the Ack goes into the ledger. None if stop was set
        first (then the message may or may not be committed: not in the ledger)."""
        from airlock_client import Client, Timeout
        deadline = time.monotonic() + timeout
        if self.client is None:
            self.client = Client.from_config(self.state.config, role=self.role, name=self.name)
        while True:
            try:
                ack = self.client.send(envelope, timeout=1.0)
                ledger.add(ack.audit_sequence, bytes(ack.audit_hash) or None, what)
                return ack
            except Timeout:
                pass
            if stop is not None and stop.is_set():
                return None
            if time.monotonic() > deadline:
                fail("%s: no Ack within %d s" % (what, timeout))

    def close(self):
        if self.client:
            self.client.close()
            self.client = None


# ---- the traffic: releases and bus load --------------------------------------------------

class Traffic:
    """Releases through the whole pipeline, one at a time, approved with `airlock approve`
    (sometimes killed on purpose), and a load of Notifications on the bus."""

    def __init__(self, state, ledger, harness):
        self.state = state
        self.ledger = ledger
        self.harness = harness
        self.stop = threading.Event()
        self.releases = []
        self.approve_pid = 0            # a running `airlock approve`, for the kill loop
        self.approve_lock = threading.Lock()
        self.errors = []
        self.load_acked = 0
        self.approvals = 0
        self.threads = []

    def start(self, load=True):
        self.threads.append(threading.Thread(target=self._guard, args=(self._releases,), daemon=True))
        if load:
            self.threads.append(threading.Thread(target=self._guard, args=(self._load,), daemon=True))
        for thread in self.threads:
            thread.start()

    def join(self, timeout=120):
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout)
            if thread.is_alive():
                fail("a traffic thread did not stop within %d s" % timeout)

    def _guard(self, body):
        try:
            body()
        except Exception:                   # reported by the main thread
            self.errors.append(traceback.format_exc())
            self.stop.set()

    def _load(self):
        from airlock_client import airlock_pb2 as pb
        client = Link(self.state, "orchestrator", "chaos-load")
        try:
            count = 0
            while not self.stop.is_set():
                count += 1
                envelope = pb.Envelope()
                envelope.environment = pb.ENV_DEVELOPMENT
                envelope.notification.template = "chaos-load"
                envelope.notification.fields["n"] = str(count)
                if client.send(envelope, self.ledger, "Notification %d" % count, stop=self.stop):
                    self.load_acked += 1
                time.sleep(self.harness.load_gap)
        finally:
            client.close()

    def _releases(self):
        from airlock_client import airlock_pb2 as pb
        client = Link(self.state, "ci", "chaos-ci")
        try:
            while not self.stop.is_set():
                version, path, digest = self.state.artifact()
                release_id = "rel-demo-%s" % version.replace(".", "-")
                envelope = pb.Envelope()
                envelope.deployment_id = release_id
                envelope.environment = pb.ENV_DEVELOPMENT
                candidate = envelope.release_candidate
                candidate.service = "demo"
                candidate.version = version
                candidate.artifact_uri = path
                candidate.artifact_sha256 = digest.split(":", 1)[1]
                candidate.deployment_type = pb.DEPLOY_TYPE_STANDARD
                candidate.changes.append("chaos %s" % version)
                candidate.summary = "chaos release %s" % version
                candidate.no_dependencies_added = True
                candidate.no_breaking_changes = True
                if not client.send(envelope, self.ledger, "ReleaseCandidate %s" % release_id, stop=self.stop):
                    break
                self.releases.append(release_id)
                self._follow(release_id)
        finally:
            client.close()

    def _follow(self, release_id):
        """Approve when asked; return when the release is terminal (or we are told to stop
        and it is not waiting for us)."""
        deadline = time.monotonic() + self.harness.release_timeout
        approved = False
        while time.monotonic() < deadline:
            release = self.state.release(release_id) or {}
            current = release.get("state", "")
            if current in TERMINAL:
                return
            if current == "APPROVE" and not approved:
                approved = self._approve(release_id + "-prod")
            time.sleep(0.2)
        fail("release %s stuck in %s for %d s" % (release_id, (self.state.release(release_id) or {}).get("state"),
                                                   self.harness.release_timeout))

    def _approve(self, request_id):
        """`airlock approve REQUEST --yes`: normally, or killed at its crash point after the
        signature left, or killed by the kill loop at a random moment. True once granted."""
        choice = random.random()
        env = dict(os.environ)
        if choice < self.harness.approve_crash_rate:
            env["AIRLOCK_CRASHPOINT"] = "approve.after-send"
        argv = [AIRLOCK, "approve", request_id, "--yes", "--key", os.path.join(self.state.dir, "alice.key"),
                "--config", self.state.config]
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                                   universal_newlines=True)
        with self.approve_lock:
            self.approve_pid = process.pid
        try:
            output, _ = process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
            fail("airlock approve %s did not end within 120 s:\n%s" % (request_id, output))
        finally:
            with self.approve_lock:
                self.approve_pid = 0
        if process.returncode == -signal.SIGKILL:
            self.harness.count_kill("airlock approve (%s)" % ("crash point approve.after-send"
                                    if "crashpoint: approve.after-send" in output else "random moment"))
            return False                # asked again: the request tells whether it was recorded
        if process.returncode == 0:
            match = re.search(r"recorded as audit row (\d+)", output)
            if match:
                self.ledger.add(int(match.group(1)), None, "SignedApproval %s" % request_id)
            if "Refused by the approval gate" in output:
                # A signature recorded before the kill made the grant already: then the
                # request is closed. Anything else is a real refusal.
                if "closed" not in output and "used" not in output and "unknown request" not in output:
                    fail("airlock approve %s refused:\n%s" % (request_id, output))
            self.approvals += 1
            return True
        if "no pending production request" in output:
            return True                 # granted by an earlier (killed) run
        return False                    # the broker was down: asked again


# ---- the kill loop ----------------------------------------------------------------------------

class Harness:
    def __init__(self, args):
        self.args = args
        self.kills = 0
        self.kinds = {}
        self.kill_lock = threading.Lock()
        self.release_timeout = 240 if args.mode == "bench" else 150
        self.approve_crash_rate = 0.35
        self.load_gap = 0.05
        self.started = time.monotonic()
        self.pending_restarts = {}          # name -> (killed pid, deadline)
        self.stray_seen = {}                # pid -> when first seen without an owner

    def count_kill(self, kind):
        with self.kill_lock:
            self.kills += 1
            self.kinds[kind] = self.kinds.get(kind, 0) + 1

    def service_instances(self, up):
        """Live demo-service processes under deploy-manager."""
        owner = up.state.pid("deploy-manager")
        return [pid for pid, parent in descendants(os.getpid()).items()
                if "demo-service" in proc_cmdline(pid) and alive(pid) and parent == owner]

    def registered_instances(self, state):
        """The pids the process driver's registries name (and their unrenamed rewrites,
        which the next open reads too)."""
        pids = set()
        for top, _, files in os.walk(os.path.join(state.dir, "deploy")):
            for name in files:
                if name == "instances.json" or re.match(r"instances\.json\.\w{6}$", name):
                    try:
                        registry = json.loads(read(os.path.join(top, name), "{}"))
                    except ValueError:
                        continue
                    for instance in registry.get("instances", []):
                        pids.add(int(instance.get("pid", 0)))
        return pids

    def strays(self, up, traffic):
        """Processes below us that are not up, its six, a child of theirs (a service
        instance of a live deploy-manager), a running approve, or this harness's own."""
        up_pid = up.process.pid if up.process else 0
        known = {up_pid} if up_pid else set()
        known.update(p for p in up.pids().values() if p)
        with traffic.approve_lock:
            known.add(traffic.approve_pid)
        below = descendants(os.getpid())
        result = {}
        for pid, parent in below.items():
            if pid in known or (parent in known and parent != up_pid):
                continue
            if parent != os.getpid() and parent in below:
                continue            # below a stray or a known process: judged with it
            line = proc_cmdline(pid)
            if "airlock audit verify" in line or "python3" in line:
                continue            # this harness's own commands
            result[pid] = line
        return result

    def check_orphans(self, up, traffic, final=False):
        """No orphan: a process left by a killed owner must be one the driver's registry
        names (the next deploy-manager stops it) and be gone within 40 s; anything else
        still there 5 s after it was first seen fails. final: wait for none at all."""
        now = time.monotonic()
        found = self.strays(up, traffic)
        registered = self.registered_instances(up.state) if found else set()
        for pid, line in found.items():
            first = self.stray_seen.setdefault(pid, now)
            if pid not in registered and now - first > 5:
                fail("orphan process (not up, not supervised, in no instance registry): %d %s" % (pid, line))
            if now - first > 40:
                fail("orphan process still running 40 s later: %d %s" % (pid, line))
        for pid in list(self.stray_seen):
            if pid not in found:
                del self.stray_seen[pid]
        reap()
        if final and found and not wait_until(lambda: (reap(), not self.strays(up, traffic))[1], 40):
            fail("orphan processes: %s" % self.strays(up, traffic))

    def restarts_done(self, up, wait=False):
        """Every supervised process killed is running again (a new pid); fail past the
        deadline (60 s) of any."""
        for name, (old, deadline) in list(self.pending_restarts.items()):
            pid = up.state.pid(name)
            if pid and pid != old and alive(pid):
                up.seen_pids.add(pid)
                del self.pending_restarts[name]
            elif wait:
                up.wait_restarted(name, old, max(1, deadline - time.monotonic()))
                del self.pending_restarts[name]
            elif time.monotonic() > deadline:
                fail("%s (pid %d) was not restarted by airlock up within 60 s" % (name, old))

    def pick(self, up, traffic):
        """A random target: (kind, name, pid)."""
        candidates = []
        self.restarts_done(up)
        for name in SUPERVISED:
            pid = up.state.pid(name)
            if name in self.pending_restarts or not alive(pid):
                continue
            # up doubles its restart delay for a process killed within a minute of its start;
            # keep the delay short (the kill cadence), let a child rest otherwise.
            if up.restart_delay(name, pid) <= self.args.max_delay:
                candidates.append(("process", name, pid))
        with traffic.approve_lock:
            if traffic.approve_pid and alive(traffic.approve_pid):
                candidates += [("approve", "airlock approve", traffic.approve_pid)] * 3
        for pid in self.service_instances(up)[:1]:
            candidates.append(("instance", "demo-service instance", pid))
        if not [c for c in candidates if c[0] == "process"] or random.random() < self.args.up_kill_rate:
            candidates.append(("up", "airlock up", up.process.pid))
        return random.choice(candidates)

    def kill(self, up, traffic, checker):
        kind, name, pid = self.pick(up, traffic)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return False
        if kind == "approve":
            return True                 # counted by the traffic thread when it sees the exit
        self.count_kill(name)
        if kind == "process":
            # Checked later (before name is a target again, and at the end): the
            # invariants do not wait for the restart, the next kill need not either.
            self.pending_restarts[name] = (pid, time.monotonic() + 60)
        elif kind == "up":
            self.pending_restarts.clear()   # a new up starts them all
            up.process.wait()
            # Its six get SIGTERM from the kernel (PR_SET_PDEATHSIG); they come to us, the
            # subreaper. Nothing of the old run may survive before up starts again.
            def gone():
                reap()
                return not [p for p in descendants(os.getpid())
                            if p in up.seen_pids and alive(p)]
            if not wait_until(gone, 40):
                fail("processes of the killed airlock up still run 40 s later")
            up.process = None
            up.start()
        return True

    def crashpoints_fired(self, up, checker):
        """Count the crash points that fired (their arm files), check, re-arm at random."""
        for point, name in CRASHPOINTS.items():
            marker = os.path.join(up.state.arm, point)
            if os.path.exists(marker) and not os.path.exists(marker + ".counted"):
                open(marker + ".counted", "w").close()
                self.count_kill("crash point " + point)
                pid = int((read(marker, "0").strip() or "0"))
                up.wait_restarted(name, pid, 60)
                checker.check()
            elif (os.path.exists(marker + ".counted") and random.random() < 0.3
                  and up.restart_delay(name, 0) <= self.args.max_delay / 2):
                # Re-armed only while up restarts name fast (a crash point in every
                # life of a process would push up's backoff to 30 s).
                os.unlink(marker + ".counted")
                os.unlink(marker)       # re-armed: the next process of name fires again

    def chaos(self):
        args = self.args
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
            fail("prctl(PR_SET_CHILD_SUBREAPER) failed")
        root = tempfile.mkdtemp(prefix="al-chaos-")
        ok = False
        up = traffic = None
        try:
            state = State(root)
            ledger = Ledger()
            checker = Checker(state, ledger)
            up = Up(state, lambda: "broker.after-commit:%d,deploy-manager.before-journal:%d"
                    % (random.randint(1, args.broker_nth), random.randint(1, args.journal_nth)))
            up.start()
            checker.wait_ready()
            traffic = Traffic(state, ledger, self)
            traffic.start()
            # The kills go on until the count is reached and the pipeline went through a
            # production grant at least once under fire (approve, grant, receipt).
            checked = 0
            calm_since = None
            while self.kills < args.kills or not checker.grants_seen:
                if traffic.errors:
                    fail("traffic: %s" % traffic.errors[0])
                time.sleep(random.uniform(args.min_gap, args.max_gap))
                if self.kills >= args.kills:
                    # The count is reached but no production grant went through yet (on a busy
                    # machine every release can be interrupted): hold fire until one does, so
                    # the run's length depends on the machine's speed only through one release.
                    if calm_since is None:
                        calm_since = time.monotonic()
                        log("%d kills reached before any production grant: holding fire until one" % self.kills)
                    if time.monotonic() - calm_since > self.release_timeout:
                        fail("no production grant within %d s after the kills stopped" % self.release_timeout)
                    checker.check()
                    continue
                if self.kill(up, traffic, checker) or self.kills > checked:
                    checked = self.kills     # a killed approve is counted by the traffic thread
                    summary = checker.check()
                    self.check_orphans(up, traffic)
                    if self.kills % args.report_every == 0:
                        log("%d kills (%s); %s; %d releases; %d load acked"
                            % (self.kills, self.kinds, summary, len(traffic.releases), traffic.load_acked))
                self.crashpoints_fired(up, checker)
            log("%d kills reached; draining: every release must reach a terminal state" % self.kills)
            self.restarts_done(up, wait=True)
            traffic.join(timeout=self.release_timeout + 60)
            if traffic.errors:
                fail("traffic: %s" % traffic.errors[0])
            for release_id in traffic.releases:
                release = wait_until(lambda: (state.release(release_id) or {}).get("state") in TERMINAL and
                                     state.release(release_id), 60)
                if not release:
                    fail("release %s not terminal: %s" % (release_id, (state.release(release_id) or {}).get("state")))
            self.crashpoints_fired(up, checker)
            self.check_orphans(up, traffic, final=True)
            summary = checker.check(final=True)
            up.stop()
            reap()
            check_sanitizers(state)
            leftover = [(p, proc_cmdline(p)) for p in descendants(os.getpid()) if "python3" not in proc_cmdline(p)]
            if leftover and not wait_until(lambda: (reap(), not [p for p in descendants(os.getpid())
                                                                 if "python3" not in proc_cmdline(p)])[1], 20):
                fail("processes survived airlock up's stop: %s" % leftover)
            states = {}
            for release_id in traffic.releases:
                current = state.release(release_id)["state"]
                states[current] = states.get(current, 0) + 1
            elapsed = time.monotonic() - self.started
            log("PASS: %d kills %s in %.0f s; %s; releases %s; %d approvals; %d load messages acked; %d checks"
                % (self.kills, self.kinds, elapsed, summary, states, traffic.approvals, traffic.load_acked,
                   checker.checks))
            if args.mode == "bench":
                print("RESULT chaos.kills %d kills" % self.kills)
                print("RESULT chaos.acked_lost %d messages" % checker.acked_lost)
                print("RESULT chaos.duplicate_deploys %d deploys" % checker.duplicate_deploys)
                print("RESULT chaos.ungranted_deploys %d deploys" % checker.ungranted_deploys)
                print("RESULT chaos.releases %d releases" % len(traffic.releases))
                print("RESULT chaos.acked_messages %d messages" % len(ledger.items()))
                print("RESULT chaos.kills_per_minute %.1f kills/min" % (self.kills * 60.0 / elapsed))
            ok = True
        finally:
            if traffic:
                traffic.stop.set()
            if up and up.process:
                try:
                    os.killpg(up.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                up.process.wait()
            for pid in descendants(os.getpid()):
                if "python3" not in proc_cmdline(pid):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            reap()
            if ok or not args.keep:
                shutil.rmtree(root, ignore_errors=True)
            else:
                log("state kept for inspection: %s" % root)
                for name in ["up.out"] + ["logs/%s.log" % n for n in SUPERVISED]:
                    text = read(os.path.join(root, name), "")
                    sys.stderr.write("---- %s (last 3000 bytes)\n%s\n" % (name, text[-3000:]))


# ---- the broker's disk full; the broker stopped ------------------------------------------

class Sender:
    """A Python client in a thread sending Notifications, each until acknowledged, into
    the ledger; counts what was acknowledged and when the last Ack came."""

    def __init__(self, state, ledger, gap=0.05):
        self.state = state
        self.ledger = ledger
        self.gap = gap
        self.acked = 0
        self.last_ack = time.monotonic()
        self.stop = threading.Event()
        self.errors = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            from airlock_client import airlock_pb2 as pb
            client = Link(self.state, "orchestrator", "chaos-sender")
            count = 0
            while not self.stop.is_set():
                count += 1
                envelope = pb.Envelope()
                envelope.environment = pb.ENV_DEVELOPMENT
                envelope.notification.template = "chaos-load"
                envelope.notification.fields["n"] = str(count)
                if not client.send(envelope, self.ledger, "Notification %d" % count, timeout=600, stop=self.stop):
                    break
                self.acked += 1
                self.last_ack = time.monotonic()
                time.sleep(self.gap)
            client.close()
        except Exception:
            self.errors.append(traceback.format_exc())

    def wait_acked(self, more, timeout):
        target = self.acked + more
        if not wait_until(lambda: self.acked >= target or self.errors, timeout):
            fail("%d more acknowledgements expected within %d s, %d came" % (more, timeout, self.acked - target + more))
        if self.errors:
            fail("sender: %s" % self.errors[0])

    def join(self):
        self.stop.set()
        self.thread.join(60)


def fault_setup(args, database_on=None):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        fail("prctl(PR_SET_CHILD_SUBREAPER) failed")
    root = tempfile.mkdtemp(prefix="al-chaos-%s-" % args.mode)
    return root


def fault_teardown(root, up, sender, ok, args, mount=None):
    if sender:
        sender.join()
    if up and up.process:
        try:
            os.killpg(up.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        up.process.wait()
    for pid in descendants(os.getpid()):
        if "python3" not in proc_cmdline(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    reap()
    if mount:
        wait_until(lambda: run(["umount", mount]).returncode == 0 or not os.path.ismount(mount), 20, 0.5)
        if os.path.ismount(mount):
            run(["umount", "-l", mount])
    if ok or not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    else:
        log("state kept for inspection: %s" % root)
        for name in ["up.out", "logs/broker.log", "logs/orchestrator.log"]:
            text = read(os.path.join(root, name), "")
            sys.stderr.write("---- %s (last 3000 bytes)\n%s\n" % (name, text[-3000:]))


SANITIZER = re.compile(r"ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error: |WARNING: ThreadSanitizer")


def check_sanitizers(state):
    """Under the ASan build a sanitizer report in any process's log fails the run (up
    would otherwise just restart the process that aborted)."""
    for name in ["up.out"] + [os.path.join("logs", n + ".log") for n in SUPERVISED]:
        text = read(os.path.join(state.dir, name), "")
        match = SANITIZER.search(text)
        if match:
            fail("%s: sanitizer report:\n%s" % (name, text[max(0, match.start() - 200):match.start() + 3000]))


def final_checks(up, checker):
    summary = checker.check()
    up.stop()
    reap()
    check_sanitizers(up.state)
    if not wait_until(lambda: (reap(), not [p for p in descendants(os.getpid())
                                            if "python3" not in proc_cmdline(p)])[1], 20):
        fail("processes survived airlock up's stop: %s" % [(p, proc_cmdline(p)) for p in descendants(os.getpid())])
    return summary


def diskfull(args):
    """The broker's database on a small tmpfs: fill it, acceptance stops with a clear
    reason (no Ack for what cannot be recorded); free it, acceptance resumes, nothing
    acknowledged lost."""
    root = fault_setup(args)
    mount = os.path.join(root, "db")
    os.makedirs(mount)
    up = sender = None
    ok = False
    mounted = False
    try:
        result = run(["mount", "-t", "tmpfs", "-o", "size=%dk,mode=0700" % args.tmpfs_kb, "tmpfs", mount])
        if result.returncode != 0:
            fail("mount -t tmpfs (root needed): %s" % result.stdout)
        mounted = True
        state = State(root, database=os.path.join(mount, "audit.db"))
        ledger = Ledger()
        checker = Checker(state, ledger)
        up = Up(state)
        up.start()
        sender = Sender(state, ledger)
        sender.wait_acked(50, 60)
        # Fill the file system to the last block.
        filler = os.path.join(mount, "filler")
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError:
            pass
        finally:
            os.close(fd)
        log("tmpfs full (%d acked so far)" % sender.acked)
        # Acceptance stops: the broker says why; Acks stop coming.
        reasons = re.compile(r"database or disk is full|No space left on device|disk I/O error|SQLITE_FULL", re.I)
        said = wait_until(lambda: reasons.search(read(os.path.join(root, "logs", "broker.log"), "")), 90, 0.5)
        if not said:
            fail("the broker never said its disk is full (logs/broker.log)")
        line = [l for l in read(os.path.join(root, "logs", "broker.log"), "").splitlines() if reasons.search(l)][0]
        log("the broker says: %s" % line.strip())
        stalled = sender.acked
        time.sleep(3)
        if sender.acked - stalled > 2:
            fail("the broker acknowledged %d messages with its disk full" % (sender.acked - stalled))
        # Space returns: acceptance resumes, the stalled message is acknowledged.
        os.unlink(filler)
        sender.wait_acked(20, 120)
        log("space returned: %d acked" % sender.acked)
        sender.join()
        summary = final_checks(up, checker)
        log("PASS: disk full stopped acceptance (%s) and it recovered; %s" % (line.strip()[:160], summary))
        ok = True
    finally:
        fault_teardown(root, up, sender, ok, args, mount if mounted else None)


def sigstop(args):
    """The broker stopped (SIGSTOP) longer than the agents' heartbeat timeout: they
    notice (their logs say so), and after SIGCONT every agent registers again and what was
    sent meanwhile is acknowledged."""
    root = fault_setup(args)
    up = sender = None
    ok = False
    try:
        state = State(root)
        ledger = Ledger()
        checker = Checker(state, ledger)
        up = Up(state)
        up.start()
        sender = Sender(state, ledger)
        sender.wait_acked(20, 60)
        broker = state.pid("broker")
        heartbeat_ms = int(re.search(r"(?m)^heartbeat_ms: (\d+)", read(state.config)).group(1))
        stop_s = 3 * heartbeat_ms / 1000.0 * 3
        os.kill(broker, signal.SIGSTOP)
        log("broker %d stopped for %.0f s (heartbeat timeout %.0f s)" % (broker, stop_s, 3 * heartbeat_ms / 1000.0))
        stopped_at = sender.acked
        notice = "no word from the broker"
        def noticed():
            return [n for n in SUPERVISED[1:] if notice in read(os.path.join(root, "logs", n + ".log"), "")]
        deadline = time.monotonic() + stop_s
        time.sleep(stop_s)
        agents_noticed = noticed()
        if sender.acked - stopped_at > 1:
            fail("%d messages acknowledged by a stopped broker" % (sender.acked - stopped_at))
        if set(agents_noticed) != set(SUPERVISED[1:]):
            fail("agents that did not notice the stopped broker: %s" % sorted(set(SUPERVISED[1:]) - set(agents_noticed)))
        os.kill(broker, signal.SIGCONT)
        if state.pid("broker") != broker:
            fail("the broker was restarted while stopped (pid %d -> %d)" % (broker, state.pid("broker")))
        sender.wait_acked(20, 60)
        # Every agent registered again: alive in `airlock status --json`.
        def all_alive():
            result = run([AIRLOCK, "status", "--json", "--config", state.config], timeout=30)
            try:
                agents = json.loads(result.stdout).get("agents", [])
            except ValueError:
                return False
            roles = {a.get("role") for a in agents if a.get("alive")}
            return set(SUPERVISED[1:]) <= roles
        if not wait_until(all_alive, 60, 0.5):
            fail("not every agent is alive again after SIGCONT")
        sender.join()
        summary = final_checks(up, checker)
        log("PASS: broker stopped %.0f s; agents noticed: %s; all registered again; %s"
            % (stop_s, ", ".join(agents_noticed), summary))
        ok = True
    finally:
        fault_teardown(root, up, sender, ok, args)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=["short", "bench", "diskfull", "sigstop"])
    parser.add_argument("--kills", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--keep", action="store_true", help="keep the state directory on failure")
    args = parser.parse_args()
    if not os.access(AIRLOCK, os.X_OK):
        print("chaos: %s: not built (AIRLOCK_BINARY_DIR)" % AIRLOCK, file=sys.stderr)
        return 2
    args.seed = args.seed if args.seed is not None else int(time.time())
    random.seed(args.seed)
    log("mode %s, seed %d" % (args.mode, args.seed))
    bench = args.mode == "bench"
    args.kills = args.kills or (1000 if bench else 50)
    args.min_gap, args.max_gap = (0.2, 1.2) if bench else (0.2, 1.0)
    args.max_delay = 2.0
    args.up_kill_rate = 0.04
    args.broker_nth = 80 if bench else 30      # the crash points' pass: 1..this, new at each start of up
    args.journal_nth = 12
    args.report_every = 100 if bench else 10
    args.tmpfs_kb = 2048
    try:
        if args.mode in ("short", "bench"):
            Harness(args).chaos()
        elif args.mode == "diskfull":
            diskfull(args)
        else:
            sigstop(args)
    except ChaosFailure as failure:
        log("FAIL: %s (seed %d)" % (failure, args.seed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
