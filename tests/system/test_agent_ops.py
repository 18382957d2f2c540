"""floe-agent operations (docs/agent.md "Commands" and "Signals, systemd, metrics"): sd_notify
and the watchdog, SIGHUP reloads, `floe-agent status`, the identity taken from the device
certificate and `floe-agent --check-config`, against real brokers and a real test PKI."""
import datetime
import json
import os
import random
import re
import signal
import socket
import struct
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

import floe_mqtt
from agent_run import Agent

IDENTITY = "acme.gw-0001"
LOCAL = [{"conf_global": "max_queued_messages 0\nmax_inflight_messages 100"}]
WATCHDOG_USEC = 2000000


# -- helpers ----------------------------------------------------------------------------


class OpsAgent(Agent):
    """An Agent started with extra environment; watchdog_pid_self sets WATCHDOG_PID to the
    agent's own pid, as systemd does (a shell that execs the agent keeps its pid)."""

    def start(self, env=None, watchdog_pid_self=False):
        full = {k: v for k, v in os.environ.items()
                if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
        full.update(FLOE_LOG_TARGET="stderr", **(env or {}))
        argv = [self.binary, "--config", str(self.conf)]
        if watchdog_pid_self:
            argv = ["/bin/sh", "-c", 'WATCHDOG_PID=$$; export WATCHDOG_PID; exec "$0" "$@"',
                    *argv]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=full)
        self.starts += 1
        return self

    def wait_log(self, text, timeout=15, start=0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log_text()[start:]:
                return
            assert self.running(), "agent exited:\n" + self.log_tail()
            time.sleep(0.05)
        raise AssertionError("%r not logged\n%s" % (text, self.log_tail()))

    def log_text(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@pytest.fixture
def agent_factory(floe_bin, tmp_path):
    agents = []

    def make(**kw):
        a = OpsAgent(floe_bin("floe-agent"), tmp_path / ("agent%d" % len(agents)), **kw)
        agents.append(a)
        return a

    yield make
    for a in agents:
        a.kill()


def run_agent(floe_bin, *args):
    """floe-agent ARGS to completion: (exit code, stdout, stderr)."""
    env = dict(os.environ, FLOE_LOG_TARGET="stderr")
    r = subprocess.run([floe_bin("floe-agent"), *map(str, args)], capture_output=True,
                       text=True, env=env, timeout=30)
    return r.returncode, r.stdout, r.stderr


def set_key(path, section, key, value):
    """Set (value None: delete) [section] key in an INI file; appends the section if absent."""
    out, cur, done = [], None, value is None
    for line in Path(path).read_text().splitlines():
        m = re.fullmatch(r"\s*\[([^\]]+)\]\s*", line)
        if m:
            if cur == section and not done:
                out.append("%s = %s" % (key, value))
                done = True
            cur = m.group(1)
        elif cur == section and line.split("=", 1)[0].strip() == key:
            if not done:
                out.append("%s = %s" % (key, value))
                done = True
            continue
        out.append(line)
    if not done:
        if cur != section:
            out.append("[%s]" % section)
        out.append("%s = %s" % (key, value))
    Path(path).write_text("\n".join(out) + "\n")


def line_of(path, section, key):
    """1-based line of [section] key in an INI file, found independently of the agent."""
    cur = None
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        m = re.fullmatch(r"\s*\[([^\]]+)\]\s*", line)
        if m:
            cur = m.group(1)
        elif cur == section and line.split("=", 1)[0].strip() == key:
            return n
    raise KeyError((section, key))


def install_creds(creds, directory):
    """Copy a certificate chain and key where the agent's configuration points, replacing
    what is there (atomically, the key mode 0600): rotation the way an operator does it."""
    cert, key = Path(directory) / "device.pem", Path(directory) / "device.key"
    for src, dst, mode in ((creds.cert, cert, 0o644), (creds.key, key, 0o600)):
        tmp = dst.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(Path(src).read_bytes())
        os.chmod(tmp, mode)
        os.replace(tmp, dst)
    return cert, key


def not_after(cert):
    """notAfter of a PEM certificate (the first in the file), read by the openssl CLI."""
    out = subprocess.run(["openssl", "x509", "-noout", "-enddate", "-in", str(cert)],
                         capture_output=True, text=True, check=True, timeout=30).stdout
    text = out.strip().split("=", 1)[1]
    t = datetime.datetime.strptime(text, "%b %d %H:%M:%S %Y GMT")
    return t.replace(tzinfo=datetime.timezone.utc).timestamp()


def publish_numbered(local, start, stop, sensor="pub", noise=None):
    """Readings start..stop-1 at QoS 1; noise (a random.Random) adds a fraction below 0.5
    that zstd cannot squeeze, for batches of a realistic size."""
    with floe_mqtt.Publisher(local.host, local.port) as pub:
        for i in range(start, stop):
            v = i + noise.random() / 2 if noise else i
            pub.publish("sensors/%s" % sensor, json.dumps({"metric": "n", "value": v}).encode(),
                        qos=1, wait=False)
        pub.flush()


def wait_local_subscribed(agent, local, timeout=15):
    """Publish probe readings until the agent accepts one, so its subscription on the local
    broker is in place (what is published before it is lost). Returns the probes accepted."""
    base = agent.metric("floe_agent_readings_accepted_total")
    deadline = time.monotonic() + timeout
    i = 0
    while agent.metric("floe_agent_readings_accepted_total") == base:
        assert time.monotonic() < deadline and agent.running(), agent.log_tail()
        publish_numbered(local, i, i + 1, sensor="probe")
        i += 1
        time.sleep(0.1)
    time.sleep(0.5)  # the probes still on their way
    return agent.metric("floe_agent_readings_accepted_total") - base


def values(consumer, sensor="pub"):
    """The reading numbers that arrived (without the noise)."""
    return [int(e["value"]) for e in consumer.events if e["sensor"] == sensor]


def assert_exactly_once(vals, expected):
    assert len(vals) == len(set(vals)), "%d duplicates" % (len(vals) - len(set(vals)))
    assert set(vals) == set(expected), (sorted(set(expected) - set(vals))[:10],
                                        sorted(set(vals) - set(expected))[:10])


def client_connects(broker, identity):
    """How often the broker accepted a connection as identity (mosquitto's log)."""
    return broker.log_text().count(" as %s " % identity)


def unused_port():
    """A loopback TCP port nothing listens on (connections to it are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    """User + system CPU time of a process (/proc/<pid>/stat)."""
    fields = Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("%s not reached within %ss" % (what, timeout))
        time.sleep(0.05)


# -- 1. sd_notify and the watchdog ------------------------------------------------------


class NotifySocket:
    """An AF_UNIX datagram socket in systemd's place: records (monotonic time, sender pid
    from SCM_CREDENTIALS, [assignments]) for every datagram."""

    def __init__(self, directory):
        path = str(Path(directory) / "notify")
        # sun_path holds 108 bytes; a long tmp path falls back to the abstract namespace
        self.address = path if len(path) < 100 else "\0floe-test-%s" % uuid.uuid4().hex
        self.env = path if len(path) < 100 else "@" + self.address[1:]
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.sock.bind(self.address)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.settimeout(0.1)
        self.cond = threading.Condition()
        self.messages = []
        self.closing = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.closing:
            try:
                data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
            except socket.timeout:
                continue
            except OSError:
                return
            pid = None
            for level, kind, cdata in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("iII", cdata[:12])[0]
            with self.cond:
                self.messages.append((time.monotonic(), pid, data.decode().split("\n")))
                self.cond.notify_all()

    def all(self):
        with self.cond:
            return list(self.messages)

    def lines(self, prefix):
        """(time, value) of every assignment prefix=value, in arrival order."""
        return [(t, line[len(prefix) + 1:]) for t, _, fields in self.all() for line in fields
                if line.startswith(prefix + "=")]

    def wait(self, predicate, timeout, what):
        with self.cond:
            if not self.cond.wait_for(lambda: predicate(self.messages), timeout):
                raise AssertionError("%s not notified within %ss; got %r" % (
                    what, timeout, [m[2] for m in self.messages][-20:]))

    def wait_line(self, line, timeout=15, after=0):
        self.wait(lambda ms: any(line in m[2] for m in ms[after:]), timeout, line)

    def close(self):
        self.closing = True
        self.thread.join()
        self.sock.close()


@pytest.fixture
def notify_socket(tmp_path):
    s = NotifySocket(tmp_path)
    yield s
    s.close()


STATUS_RE = re.compile(r"(connected|disconnected), outbox (\d+) batches, dropped (\d+)")


def test_sd_notify_ready_status_watchdog_reload_stopping(tls_broker, consumer, agent_factory,
                                                         notify_socket):
    creds = tls_broker.device(IDENTITY)
    agent = agent_factory(central=tls_broker, creds=creds,
                          extra={"board.sim": {"interval": "100ms"}})
    agent.start(env={"NOTIFY_SOCKET": notify_socket.env, "WATCHDOG_USEC": str(WATCHDOG_USEC)},
                watchdog_pid_self=True)
    n = notify_socket
    n.wait_line("READY=1")
    # everything comes from the agent's own pid (systemd's NotifyAccess=main)
    assert {pid for _, pid, _ in n.all()} == {agent.proc.pid}

    def statuses():
        return [STATUS_RE.fullmatch(v) for _, v in n.lines("STATUS")]

    # connected, the consumer acknowledging: the outbox stays (near) empty
    n.wait(lambda ms: any(m and m[1] == "connected" for m in statuses()), 15, "connected")
    # the central broker goes away: STATUS says so, and the outbox grows
    tls_broker.stop()
    cpu0, t0 = cpu_seconds(agent.proc.pid), time.monotonic()
    n.wait(lambda ms: any(m and m[1] == "disconnected" and int(m[2]) >= 2
                          for m in statuses()), 20, "disconnected with 2 batches queued")
    time.sleep(max(0, t0 + 2 - time.monotonic()))
    # reconnecting to a broker that is not there costs next to nothing (no busy loop)
    busy = (cpu_seconds(agent.proc.pid) - cpu0) / (time.monotonic() - t0)
    assert busy < 0.5, "the agent used %.0f%% CPU while disconnected" % (busy * 100)
    # the depth STATUS reports is the depth the agent has: every value the metrics file
    # shows (same loop, sampled at other moments) was reported in a STATUS line
    shown = agent.wait_metric("floe_agent_outbox_batches", lambda v: v >= 2)
    assert agent.metric("floe_agent_uplink_connected") == 0
    seen = {int(m[2]) for m in statuses() if m and m[1] == "disconnected"}
    assert int(shown) in seen, (shown, seen)
    # STATUS is sent when it changes, not every tick
    texts = [v for _, v in n.lines("STATUS")]
    assert all(a != b for a, b in zip(texts, texts[1:])), texts
    tls_broker.start()
    # backoff_max is 1s: the agent is back within a few seconds, not at its keepalive (30s)
    n.wait(lambda ms: statuses()[-1] and statuses()[-1][1] == "connected", 8, "reconnected")
    n.wait(lambda ms: any(m and m[1] == "connected" and m[2] == "0" for m in statuses()[-3:]),
           30, "connected with the backlog delivered")
    assert len(consumer.batches) >= 2

    # SIGHUP: RELOADING=1 with MONOTONIC_USEC, then READY=1 again
    before = len(n.all())
    agent.proc.send_signal(signal.SIGHUP)
    n.wait_line("RELOADING=1", after=before)
    n.wait(lambda ms: any("READY=1" in m[2] for m in ms[before:] if "RELOADING=1" not in m[2]),
           15, "READY=1 after the reload")
    reload_msg = next(f for _, _, f in n.all()[before:] if "RELOADING=1" in f)
    mono = [int(f.split("=", 1)[1]) for f in reload_msg if f.startswith("MONOTONIC_USEC=")]
    assert mono and abs(mono[0] / 1e6 - time.clock_gettime(time.CLOCK_MONOTONIC)) < 10

    # SIGTERM: STOPPING=1, exit 0
    before = len(n.all())
    assert agent.stop() == 0
    n.wait_line("STOPPING=1", timeout=5, after=before)

    # WATCHDOG=1 from the first moment to the last, never more than WATCHDOG_USEC/2 apart
    pings = [t for t, v in n.lines("WATCHDOG") if v == "1"]
    ready_t = n.lines("READY")[0][0]
    stop_t = n.lines("STOPPING")[0][0]
    assert pings and pings[0] <= ready_t + 0.1
    gaps = [b - a for a, b in zip(pings, pings[1:] + [stop_t])]
    assert len(pings) >= (stop_t - ready_t) / (WATCHDOG_USEC / 2e6), (len(pings), stop_t - ready_t)
    assert max(gaps) <= WATCHDOG_USEC / 2e6, max(gaps)


def test_watchdog_not_for_another_pid(agent_factory, notify_socket):
    """WATCHDOG_PID names another process: the agent must not ping in its place."""
    agent = agent_factory()
    agent.start(env={"NOTIFY_SOCKET": notify_socket.env, "WATCHDOG_USEC": "400000",
                     "WATCHDOG_PID": str(os.getpid())})
    notify_socket.wait_line("READY=1")
    time.sleep(1.0)  # with the watchdog on, 1 s would hold 4 pings or more
    assert agent.stop() == 0
    notify_socket.wait_line("STOPPING=1", timeout=5)
    assert notify_socket.lines("WATCHDOG") == []


# -- 2. SIGHUP ---------------------------------------------------------------------------


def rotate_agent(agent_factory, tls_broker, mosquitto):
    creds = tls_broker.device(IDENTITY)
    agent = agent_factory(local=mosquitto, central=tls_broker, creds=creds)
    cert, key = install_creds(creds, agent.dir)
    set_key(agent.conf, "uplink", "cert_file", cert)
    set_key(agent.conf, "uplink", "key_file", key)
    return agent, creds, cert, key


@pytest.mark.parametrize("mosquitto", LOCAL, indirect=True)
def test_sighup_rotates_the_device_certificate(mosquitto, tls_broker, consumer, agent_factory):
    agent, old, cert, key = rotate_agent(agent_factory, tls_broker, mosquitto)
    agent.start()
    agent.wait_metric("floe_agent_uplink_connected", lambda v: v == 1)
    wait_local_subscribed(agent, mosquitto)
    publish_numbered(mosquitto, 0, 100)
    consumer.wait_until(lambda c: len(values(c)) >= 100, timeout=20)
    assert abs(agent.metric("floe_agent_certificate_days_left") -
               (not_after(old.leaf) - time.time()) / 86400) < 0.01

    # a new certificate for the same identity, with another lifetime, in place of the old
    # one; the old one is revoked and the broker reloads its CRL. The open connection stays
    # up (mosquitto checks certificates at the handshake) until the agent reconnects.
    now = datetime.datetime.now(datetime.timezone.utc)
    new = tls_broker.pki.issue(IDENTITY, org="acme",
                               not_after=now + datetime.timedelta(days=9, hours=5))
    install_creds(new, agent.dir)
    tls_broker.pki.revoke_one(old)
    tls_broker.reload()
    connects = client_connects(tls_broker, IDENTITY)
    mark = len(agent.log_text())
    agent.proc.send_signal(signal.SIGHUP)
    agent.wait_log("reload: configuration checked", start=mark)
    # it reconnected, and the broker accepted it: only the new certificate can do that
    wait_for(lambda: client_connects(tls_broker, IDENTITY) > connects, 15, "a reconnect")
    agent.wait_metric("floe_agent_uplink_connected", lambda v: v == 1)
    days = agent.wait_metric("floe_agent_certificate_days_left", lambda v: v < 10)
    assert abs(days - (not_after(new.leaf) - time.time()) / 86400) < 0.01
    publish_numbered(mosquitto, 100, 200)
    consumer.wait_until(lambda c: len(values(c)) >= 200, timeout=20)
    # later reconnects use the new certificate too: the broker restarts
    tls_broker.restart()
    consumer.wait_subscribed(timeout=15)
    publish_numbered(mosquitto, 200, 300)
    consumer.wait_until(lambda c: len(values(c)) >= 300, timeout=30)
    time.sleep(0.5)
    assert agent.stop() == 0
    assert_exactly_once(values(consumer), range(300))


@pytest.mark.parametrize("mosquitto", LOCAL, indirect=True)
def test_sighup_with_a_broken_configuration_keeps_running(mosquitto, tls_broker, consumer,
                                                         agent_factory):
    agent, _, cert, key = rotate_agent(agent_factory, tls_broker, mosquitto)
    agent.start()
    agent.wait_metric("floe_agent_uplink_connected", lambda v: v == 1)
    wait_local_subscribed(agent, mosquitto)
    connects = client_connects(tls_broker, IDENTITY)
    good = agent.conf.read_text()

    # a value that does not parse: the error names file:line, the agent goes on
    set_key(agent.conf, "uplink", "ack_timeout", "fast")
    line = line_of(agent.conf, "uplink", "ack_timeout")
    mark = len(agent.log_text())
    agent.proc.send_signal(signal.SIGHUP)
    agent.wait_log("keeping the running configuration", start=mark)
    assert "%s:%d: [uplink] ack_timeout" % (agent.conf, line) in agent.log_text()[mark:]
    publish_numbered(mosquitto, 0, 50)
    consumer.wait_until(lambda c: len(values(c)) >= 50, timeout=20)

    # the key file gone: refused at the check, so the connection that works is kept
    agent.conf.write_text(good)
    key.rename(key.with_suffix(".away"))
    mark = len(agent.log_text())
    agent.proc.send_signal(signal.SIGHUP)
    agent.wait_log("keeping the running configuration", start=mark)
    assert "[uplink] key_file" in agent.log_text()[mark:]
    publish_numbered(mosquitto, 50, 100)
    consumer.wait_until(lambda c: len(values(c)) >= 100, timeout=20)
    assert client_connects(tls_broker, IDENTITY) == connects  # no reconnect was tried
    assert agent.metric("floe_agent_uplink_connected") == 1

    # repaired: the next SIGHUP is accepted
    key.with_suffix(".away").rename(key)
    mark = len(agent.log_text())
    agent.proc.send_signal(signal.SIGHUP)
    agent.wait_log("reload: configuration checked", start=mark)
    wait_for(lambda: client_connects(tls_broker, IDENTITY) > connects, 15, "a reconnect")
    publish_numbered(mosquitto, 100, 150)
    consumer.wait_until(lambda c: len(values(c)) >= 150, timeout=20)
    assert agent.running()
    assert agent.stop() == 0
    assert_exactly_once(values(consumer), range(150))


# -- 3. floe-agent status -------------------------------------------------------------


def status_table(floe_bin, conf):
    rc, out, err = run_agent(floe_bin, "status", "--config", conf)
    assert rc == 0, (out, err)
    table = {}
    for line in out.splitlines():
        table[line[:26].strip()] = line[27:]
    return table


def numbers(text):
    return [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?", text)]


@pytest.mark.parametrize("mosquitto", LOCAL, indirect=True)
def test_status_command(mosquitto, tls_broker, consumer, agent_factory, floe_bin):
    # a certificate with an odd lifetime, so that no default could pass for it
    now = datetime.datetime.now(datetime.timezone.utc)
    creds = tls_broker.pki.issue(IDENTITY, org="acme",
                                 not_after=now + datetime.timedelta(days=17, hours=7))
    agent = agent_factory(local=mosquitto, central=tls_broker, creds=creds,
                          extra={"batch": {"ship": "events", "max_events": 100},
                                 "uplink": {"inflight": 32, "ack_timeout": "60s"},
                                 "outbox": {"max_bytes": "16KiB", "segment_bytes": "2KiB"}})
    rc, out, err = run_agent(floe_bin, "status", "--config", agent.conf)
    assert rc != 0 and "is the agent running?" in err
    agent.start()
    agent.wait_metric("floe_agent_uplink_connected", lambda v: v == 1)
    prom = agent.state / "floe-agent.prom"
    d0, m0 = agent.metric("floe_agent_certificate_days_left"), prom.stat().st_mtime
    t = status_table(floe_bin, agent.conf)
    assert t["uplink"] == "connected" and t["last ack"] == "never"
    assert numbers(t["readings"]) == [0, 0] and numbers(t["batches"]) == [0] * 5
    probes = wait_local_subscribed(agent, mosquitto)
    agent.wait_metric("floe_agent_outbox_batches", lambda v: v == 0)
    sent0, acks0 = len(consumer.batches), len(consumer.acks)

    # connected, with a backlog: the uploader holds the batches without acknowledging
    consumer.pause()
    for i in range(0, 200, 50):
        publish_numbered(mosquitto, i, i + 50)
        time.sleep(0.4)
    agent.wait_metric("floe_agent_outbox_events", lambda v: v == 200)
    wait_for(lambda: consumer.received - sent0 == agent.metric("floe_agent_outbox_batches"),
             10, "every batch sent")
    time.sleep(0.5)  # the metrics file is rewritten every 200 ms
    t = status_table(floe_bin, agent.conf)
    days_expected = (not_after(creds.leaf) - time.time()) / 86400
    queued = consumer.received - sent0
    assert t["identity"] == IDENTITY
    assert t["uplink"] == "connected"
    assert t["broker"] == "localhost:%d" % tls_broker.port
    assert numbers(t["outbox queue"])[:2] == [queued, 200]
    assert numbers(t["outbox drops"]) == [0, 0, 0]
    assert numbers(t["readings"]) == [200 + probes, 0]
    assert numbers(t["batches"]) == [sent0 + queued, 0, acks0, 0, 0]
    assert t["certificate expires in"].endswith(" days")
    assert abs(numbers(t["certificate expires in"])[0] - days_expected) <= 0.06

    # the uploader catches up: the queue status reported is what arrives
    consumer.resume()
    consumer.wait_until(lambda c: len(values(c)) >= 200, timeout=20)
    acked_at = time.time()
    agent.wait_metric("floe_agent_outbox_batches", lambda v: v == 0)
    time.sleep(0.5)
    assert len(consumer.batches) == sent0 + queued
    t = status_table(floe_bin, agent.conf)
    assert numbers(t["outbox queue"])[:2] == [0, 0]  # bytes: segments not yet reclaimed
    assert numbers(t["batches"]) == [sent0 + queued, 0, acks0 + queued, 0, 0]
    last = datetime.datetime.strptime(t["last ack"], "%Y-%m-%d %H:%M:%S UTC")
    assert abs(last.replace(tzinfo=datetime.timezone.utc).timestamp() - acked_at) < 5

    # the certificate's days left count down while the agent runs
    wait_for(lambda: prom.stat().st_mtime - m0 >= 2.5, 5, "2.5 s of metrics")
    d1, m1 = agent.metric("floe_agent_certificate_days_left"), prom.stat().st_mtime
    assert abs((d0 - d1) * 86400 - (m1 - m0)) < 1.0, (d0, d1, m1 - m0)
    assert agent.stop() == 0

    # disconnected (an uplink port nobody listens on), the outbox overflowing: drop-oldest
    # drops, and status counts it
    good = agent.conf.read_text()
    set_key(agent.conf, "uplink", "port", unused_port())
    agent.start()
    n = 200
    noise = random.Random(7)
    agent.wait_metric("floe_agent_readings_accepted_total", lambda v: v == 0)
    while agent.metric("floe_agent_outbox_dropped_events_total") == 0 or n < 2400:
        publish_numbered(mosquitto, n, n + 200, noise=noise)
        n += 200
        time.sleep(0.15)
        assert n < 40000, agent.log_tail()
    # every accepted reading is in a closed batch: queued or dropped
    wait_for(lambda: agent.metric("floe_agent_outbox_events") +
             agent.metric("floe_agent_outbox_dropped_events_total") == n - 200, 10,
             "the last batch closed")
    time.sleep(0.3)  # the metrics file is rewritten every 200 ms
    t = status_table(floe_bin, agent.conf)
    assert t["uplink"] == "disconnected"
    q_batches, q_events, _ = numbers(t["outbox queue"])
    drop_batches, drop_events, rejected = numbers(t["outbox drops"])
    assert drop_events > 0 and drop_batches > 0 and rejected == 0
    assert numbers(t["readings"]) == [n - 200, 0]
    assert numbers(t["batches"]) == [0, 0, 0, 0, 0]
    assert q_events + drop_events == n - 200
    assert agent.stop() == 0

    # connected again: what status called queued arrives, once; what it called dropped is
    # what is missing
    agent.conf.write_text(good)
    before = len(consumer.batches)
    acks_before = len(consumer.acks)
    agent.start()
    consumer.wait_until(lambda c: len(values(c)) >= n - drop_events, timeout=30)
    agent.wait_metric("floe_agent_outbox_batches", lambda v: v == 0)
    time.sleep(0.5)
    assert agent.stop() == 0
    vals = values(consumer)
    assert len(vals) == len(set(vals)) and len(vals) == n - drop_events
    assert set(range(200)) <= set(vals)
    assert len(consumer.batches) - before == q_batches
    ((_, seqs),) = consumer.ledger().items()
    assert seqs[-1] - seqs[0] + 1 - len(seqs) == drop_batches

    # after the agent stopped: what it last reported
    t = status_table(floe_bin, agent.conf)
    assert t["uplink"] == "disconnected"
    assert numbers(t["outbox queue"])[:2] == [0, 0]  # bytes: segments not yet reclaimed
    assert numbers(t["readings"]) == [0, 0]
    assert numbers(t["batches"]) == [q_batches, 0, len(consumer.acks) - acks_before, 0, 0]


@pytest.mark.parametrize("mosquitto", LOCAL, indirect=True)
def test_noisy_readings_in_a_small_outbox_are_batched(mosquitto, agent_factory):
    agent = agent_factory(local=mosquitto, extra={"batch": {"ship": "events"},
                                                  "outbox": {"max_bytes": "16KiB",
                                                             "segment_bytes": "2KiB"}})
    agent.start()
    n = 1500 + wait_local_subscribed(agent, mosquitto)
    publish_numbered(mosquitto, 0, 1500, noise=random.Random(3))
    wait_for(lambda: sum(v for k, v in agent.metrics().items()
                         if k.startswith("floe_agent_payloads_")) >= n, 10,
             "every payload handled")
    assert "cannot encode" not in agent.log_text()
    wait_for(lambda: agent.metric("floe_agent_outbox_events") +
             agent.metric("floe_agent_outbox_dropped_events_total") == n, 3,
             "every reading in a batch")
    assert agent.metric("floe_agent_readings_accepted_total") == n
    assert agent.stop() == 0


# -- 4. identity from the certificate ---------------------------------------------------


def test_identity_from_the_certificate_cn(tls_broker, consumer, agent_factory, floe_bin):
    creds = tls_broker.device("acme.gw-0042")
    agent = agent_factory(central=tls_broker, creds=creds,
                          extra={"board.sim": {"interval": "100ms"}})
    set_key(agent.conf, "agent", "identity", None)
    assert not re.search(r"^identity", agent.conf.read_text(), re.M)
    rc, out, err = run_agent(floe_bin, "--check-config", "--config", agent.conf)
    assert rc == 0 and "identity acme.gw-0042" in out, (out, err)
    agent.start()
    consumer.wait_for_batches(2, timeout=20)
    assert agent.stop() == 0
    assert {b[0] for b in consumer.batches} == {"acme.gw-0042"}
    assert consumer.rejected == []
    assert status_table(floe_bin, agent.conf)["identity"] == "acme.gw-0042"
    assert agent.metric('floe_agent_info{identity="acme.gw-0042",board="sim"}') == 1


def test_identity_cn_not_an_identity_is_refused(tls_broker, agent_factory, floe_bin):
    creds = tls_broker.device("Gateway 42", strict=False)
    agent = agent_factory(central=tls_broker, creds=creds)
    set_key(agent.conf, "agent", "identity", None)
    rc, out, err = run_agent(floe_bin, "--check-config", "--config", agent.conf)
    assert rc != 0
    assert '[agent] identity: "Gateway 42" is not <tenant>.<device>' in err, err
    agent.start()
    assert agent.proc.wait(timeout=20) != 0
    assert '"Gateway 42" is not <tenant>.<device>' in agent.log_text()
    assert not (agent.state / "ring").exists()  # refused before touching any state


def test_identity_that_is_not_the_certificate_cn_is_reported(tls_broker, agent_factory,
                                                            floe_bin):
    """[agent] identity disagreeing with the certificate's CN can never publish (the broker
    confines a device to floe/v1/<CN>/): the operator is told, naming both."""
    creds = tls_broker.device("acme.gw-0042")
    agent = agent_factory(identity="acme.gw-0043", central=tls_broker, creds=creds)
    agent.start()
    agent.wait_log("CN acme.gw-0042")
    log = agent.log_text()
    assert re.search(r"identity acme\.gw-0043 .*CN.*acme\.gw-0042", log), log
    agent.stop()


# -- 5. --check-config -------------------------------------------------------------------


def broken_unknown_key(agent):
    set_key(agent.conf, "uplink", "colour", "blue")
    return agent.conf, line_of(agent.conf, "uplink", "colour"), "unknown key [uplink] colour"


def broken_size(agent):
    set_key(agent.conf, "ring", "size", "lots")
    return agent.conf, line_of(agent.conf, "ring", "size"), "[ring] size"


def broken_duration_in_dropin(agent):
    d = Path(str(agent.conf) + ".d")
    d.mkdir()
    (d / "50-site.conf").write_text("# site overrides\n[uplink]\nhost = central\n"
                                    "ack_timeout = fast\n")
    return d / "50-site.conf", 4, "[uplink] ack_timeout"


def broken_missing_cert(agent):
    missing = agent.dir / "no-such-cert.pem"
    set_key(agent.conf, "uplink", "cert_file", missing)
    return agent.conf, line_of(agent.conf, "uplink", "cert_file"), "[uplink] cert_file"


def broken_missing_key(agent):
    set_key(agent.conf, "uplink", "key_file", agent.dir / "no-such-key.pem")
    return agent.conf, line_of(agent.conf, "uplink", "key_file"), "[uplink] key_file"


def broken_cert_not_pem(agent):
    bad = agent.dir / "garbage.pem"
    bad.write_text("not a certificate\n")
    set_key(agent.conf, "uplink", "cert_file", bad)
    return agent.conf, line_of(agent.conf, "uplink", "cert_file"), "[uplink] cert_file"


@pytest.mark.parametrize("breakage", [broken_unknown_key, broken_size, broken_duration_in_dropin,
                                      broken_missing_cert, broken_missing_key,
                                      broken_cert_not_pem])
def test_check_config(tls_broker, agent_factory, floe_bin, breakage):
    agent = agent_factory(central=tls_broker, creds=tls_broker.device(IDENTITY))
    rc, out, err = run_agent(floe_bin, "--check-config", "--config", agent.conf)
    assert rc == 0, err
    assert out.strip() == "%s: configuration valid (identity %s, board sim)" % (agent.conf,
                                                                                   IDENTITY)
    path, line, what = breakage(agent)
    rc, out, err = run_agent(floe_bin, "--check-config", "--config", agent.conf)
    assert rc != 0
    assert "configuration valid" not in out
    assert "%s:%d: %s" % (path, line, what) in err, err
    # the daemon refuses the same configuration at start, with the same message
    agent.start()
    assert agent.proc.wait(timeout=20) != 0
    assert "%s:%d: %s" % (path, line, what) in agent.log_text()
