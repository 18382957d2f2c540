"""Run a real floe-uploader for system tests, with what it needs around it.

    env = UploaderEnv(bindir, tmp)         # floe-ca PKI, mosquitto from `broker-config`
    up = env.uploader(buffer__interval="1s").start()   # config written, waits "subscribed"
    creds = env.device("acme.gw-0001")     # a device certificate (floe-ca issue-device)
    up.metrics()                           # {"name{labels}": value} from its /metrics
    up.kill(); up.start()                  # kill -9 and restart (same config, same session)
    rows = env.table("events")             # the committed table, read by icebird (node)

The broker is the real configuration `floe-ca broker-config` writes (three listeners: the
device one for agents, the service one on loopback for the uploader and the tests' audit
subscribers). The warehouse is file://<tmp>/warehouse, the catalog a SQLite file (or the
PostgreSQL location given as catalog=).
"""

import json
import os
import random
import re
import shutil
import signal
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from conftest import free_port, terminate
from enroll_client import Credentials, Env

ROOT = Path(__file__).resolve().parents[2]
NODE_DIR = ROOT / "tests" / "node"
NODE = shutil.which("node")


def have_node_readers():
    return NODE is not None and (NODE_DIR / "node_modules" / "icebird").is_dir()


def node(script, *args, timeout=600):
    p = subprocess.run([NODE, script, *map(str, args)], cwd=NODE_DIR, capture_output=True,
                       text=True, timeout=timeout)
    assert p.returncode == 0, f"{script} failed:\n{p.stderr}"
    return json.loads(p.stdout)


def conf_text(sections):
    out = []
    for name, keys in sections.items():
        out.append(f"[{name}]")
        out.extend(f"{k} = {v}" for k, v in keys.items())
        out.append("")
    return "\n".join(out)


def parse_metrics(text):
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        out[name] = float(value)
    return out



def make_pki(tmp_path_factory, name, binaries):
    """The module's PKI and broker (enroll_client.Env) after checking that binaries are built
    in FLOE_BIN; skips without FLOE_BIN. Stop its broker when done."""
    bindir = os.environ.get("FLOE_BIN")
    if not bindir:
        pytest.skip("FLOE_BIN is not set: run through `make system`")
    for b in binaries:
        if not os.access(Path(bindir) / b, os.X_OK):
            pytest.fail(f"{b} not built in {bindir}", pytrace=False)
    return Env(bindir, tmp_path_factory.mktemp(name))

class Uploader:
    """floe-uploader with a config written from sections; stderr to a log file."""

    def __init__(self, binary, workdir, sections, name="uploader"):
        self.bin = str(binary)
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.conf = self.dir / f"{name}.conf"
        self.log_path = self.dir / f"{name}.log"
        self.sections = sections
        self.conf.write_text(conf_text(sections))
        self.proc = None
        self.starts = 0
        m = re.fullmatch(r"(.*):(\d+)", sections.get("metrics", {}).get("listen", ""))
        self.metrics_url = f"http://{m.group(1)}:{m.group(2)}/metrics" if m else None

    def write(self, **settings):
        """Changes settings (section__key=value; None removes) and rewrites the config."""
        for key, value in settings.items():
            section, _, k = key.partition("__")
            if value is None:
                self.sections.get(section, {}).pop(k, None)
            else:
                self.sections.setdefault(section, {})[k] = value
        self.conf.write_text(conf_text(self.sections))

    def log_text(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, n=60):
        return "\n".join(self.log_text().splitlines()[-n:])

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self, wait=True, timeout=20, env=None, watchdog_pid_self=False):
        """watchdog_pid_self: WATCHDOG_PID is the daemon's own pid (as systemd sets it)."""
        before = self.log_text().count("subscribed to")
        e = {k: v for k, v in os.environ.items()
             if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
        e.update(FLOE_LOG_TARGET="stderr", **(env or {}))
        argv = [self.bin, "--config", str(self.conf)]
        if watchdog_pid_self:
            argv = ["/bin/sh", "-c", 'WATCHDOG_PID=$$; export WATCHDOG_PID; exec "$0" "$@"',
                    *argv]
        with open(self.log_path, "ab") as log:
            log.write(f"--- start #{self.starts + 1} ---\n".encode())
            log.flush()
            self.proc = subprocess.Popen(argv,
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         env=e)
        self.starts += 1
        if wait:
            self.wait_log("subscribed to", timeout=timeout, count=before + 1)
        return self

    def wait_log(self, needle, timeout=20, count=1):
        deadline = time.monotonic() + timeout
        while self.log_text().count(needle) < count:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.proc.returncode} waiting "
                                     f"for {needle!r}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{needle!r} not in the {self.name} log:\n"
                                     f"{self.log_tail()}")
            time.sleep(0.05)

    def signal(self, sig):
        self.proc.send_signal(sig)

    def kill(self):
        if self.running():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def stop(self, timeout=60):
        """SIGTERM; the exit status (None if it had to be killed)."""
        if self.proc is None:
            return None
        rc = terminate(self.proc, timeout)
        self.proc = None
        return rc

    def command(self, *args, timeout=60):
        """floe-uploader ARGS --config <this config>: (rc, stdout, stderr)."""
        e = dict(os.environ, FLOE_LOG_TARGET="stderr")
        r = subprocess.run([self.bin, *map(str, args), "--config", str(self.conf)],
                           capture_output=True, text=True, timeout=timeout, env=e)
        return r.returncode, r.stdout, r.stderr

    def metrics_text(self):
        with urllib.request.urlopen(self.metrics_url, timeout=10) as r:
            return r.read().decode()

    def metrics(self):
        return parse_metrics(self.metrics_text())

    def metric(self, name, default=0.0):
        try:
            return self.metrics().get(name, default)
        except OSError:
            return default

    def wait_metric(self, name, predicate, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            v = self.metric(name)
            if predicate(v):
                return v
            time.sleep(0.1)
        raise AssertionError(f"{name} never satisfied the condition (last {self.metric(name)})"
                             f"\n{self.log_tail()}")


class UploaderEnv:
    """A floe-ca PKI, mosquitto running its broker configuration, a warehouse directory."""

    def __init__(self, bindir, base, catalog=None, pki=None):
        self.bindir = Path(bindir)
        self.base = Path(base)
        self.base.mkdir(parents=True, exist_ok=True)
        self.own_pki = pki is None
        self.env = pki or Env(bindir, self.base / "pki")
        # sessions and share groups of this environment's uploaders: apart from any other's
        self.tag = uuid.uuid4().hex[:8]
        self.broker = self.env.broker
        self.ca = self.env.ca
        self.root = self.env.root
        self.warehouse = self.base / "warehouse"
        self.warehouse.mkdir(parents=True, exist_ok=True)
        self.catalog = catalog or str(self.base / "catalog.db")
        self.uploaders = []
        self._devices = {}

    def device(self, identity):
        """Credentials of a device certificate (issued on first use, once per PKI)."""
        devices = self.env.__dict__.setdefault("uploader_devices", {})
        if identity not in devices:
            self.ca.run("issue-device", identity)
            key, _, chain = self.ca.issued(identity)
            devices[identity] = Credentials(chain, key, self.root)
        return devices[identity]

    def encode(self, rows, identity, epoch, seq, kind="events"):
        """A batch of NDJSON rows (their tenant and device become identity's), encoded by
        floe-batch."""
        tenant, device = identity.split(".")
        text = "".join(json.dumps({**r, "tenant": tenant, "device": device}) + "\n"
                       for r in rows)
        p = subprocess.run([str(self.bindir / "floe-batch"), "encode", "--kind", kind,
                            "--identity", identity, "--epoch", str(epoch), "--seq", str(seq),
                            "-o", "-", "-"], input=text.encode(), capture_output=True,
                           timeout=60)
        assert p.returncode == 0, p.stderr.decode()
        return p.stdout

    def service(self):
        key, _, chain = self.ca.issued("floe-uploader")
        return Credentials(chain, key, self.root)

    def sections(self, name="uploader"):
        s = self.service()
        return {
            "broker": {"host": "localhost", "port": self.broker.service_port, "ca_file": s.ca,
                       "cert_file": s.cert, "key_file": s.key,
                       "client_id": f"floe-{name}-{self.tag}", "share_group": f"g-{self.tag}",
                       "backoff_min": "50ms", "backoff_max": "1s", "keepalive": "10s"},
            "lake": {"warehouse": f"file://{self.warehouse}", "catalog": self.catalog,
                     "fsync": "false"},
            "buffer": {"interval": "1s", "retry_min": "100ms", "retry_max": "2s",
                       "max_memory": "64MiB", "size": "8MiB"},
            "metrics": {"listen": f"127.0.0.1:{free_port()}"},
        }

    def uploader(self, name="uploader", **settings):
        sections = self.sections(name)
        for key, value in settings.items():
            section, _, k = key.partition("__")
            sections.setdefault(section, {})[k] = value
        up = Uploader(self.bindir / "floe-uploader", self.base / name, sections, name=name)
        self.uploaders.append(up)
        return up

    @property
    def central(self):
        """What agent_run.Agent takes as central= (the device listener)."""

        class Central:
            port = self.broker.device_port

        return Central()

    def table_dir(self, table):
        return self.warehouse / "floe" / table

    def metadata(self, table="events"):
        """The current metadata JSON, found the way Hadoop-style readers do (version-hint)."""
        meta = self.table_dir(table) / "metadata"
        hint = meta / "version-hint.text"
        if not hint.exists():
            return None
        return json.loads((meta / f"v{hint.read_text().strip()}.metadata.json").read_text())

    def live_files(self, table="events"):
        """The data files of the current snapshot, from the manifest list and manifests as
        Debian's python3-avro decodes them (status 2 = deleted)."""
        import avro.datafile
        import avro.io

        md = self.metadata(table)
        if not md or md.get("current-snapshot-id", -1) in (-1, None):
            return []
        snap = next(x for x in md["snapshots"] if x["snapshot-id"] == md["current-snapshot-id"])

        def records(location):
            with open(location.removeprefix("file://"), "rb") as fh:
                return list(avro.datafile.DataFileReader(fh, avro.io.DatumReader()))

        files = []
        for m in records(snap["manifest-list"]):
            for e in records(m["manifest_path"]):
                if e["status"] != 2:
                    files.append(e["data_file"])
        return files

    def table(self, table="events"):
        """Every row of floe.<table>'s current snapshot: the live files read by DuckDB (by
        column name: files of older schemas lack the newer columns), timestamps as µs."""
        files = self.live_files(table)
        if not files:
            return []
        paths = ", ".join("'" + f["file_path"].removeprefix("file://").replace("'", "''") + "'"
                          for f in files)
        times = [c for c in TIME_COLUMNS if c != ("window_start" if table == "events" else "ts")]
        sql = (f"SELECT * REPLACE ({', '.join(f'epoch_us({c}) AS {c}' for c in times)}) "
               f"FROM read_parquet([{paths}], union_by_name = true, hive_partitioning = false)")
        rows = [normalise(r) for r in node("duckdb-sql.mjs", sql)]
        assert len(rows) == sum(f["record_count"] for f in files)
        return rows

    def table_icebird(self, table="events"):
        """The same table read by icebird (metadata, manifests and Parquet in JavaScript);
        icebird gives timestamps in milliseconds."""
        if self.metadata(table) is None:
            return []
        got = node("icebird-read.mjs", f"file://{self.table_dir(table)}")
        return [normalise(r) for r in got["rows"]]

    def close(self):
        for up in self.uploaders:
            up.stop(timeout=30)
        if self.own_pki:
            self.broker.stop()


class FakeAgent:
    """A device in Python: publishes batches on its topic and reads its acks over one
    connection (the broker makes the client id the certificate's CN: a second connection
    would take the first one's place)."""

    def __init__(self, env, identity):
        import floe_mqtt

        self.identity = identity
        self.sub = floe_mqtt.Subscriber("127.0.0.1", env.broker.device_port,
                                        f"floe/v1/{identity}/ack", tls=env.device(identity).tls,
                                        client_id=identity)

    def __enter__(self):
        self.sub.__enter__()
        return self

    def __exit__(self, *exc):
        self.sub.close()
        return False

    def publish(self, payload, topic=None):
        info = self.sub.client.publish(topic or f"floe/v1/{self.identity}/batch", payload, qos=1)
        info.wait_for_publish(10)
        return info

    def acks(self):
        import cbor2

        return [cbor2.loads(m.payload) for m in list(self.sub.messages)]

    def wait_ack(self, epoch, seq, timeout=30, count=1):
        """The acks of (epoch, seq), once count of them came."""
        deadline = time.monotonic() + timeout
        while True:
            got = [a for a in self.acks() if a["epoch"] == epoch and a["seq"] == seq]
            if len(got) >= count:
                return got
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.identity}: no ack of {epoch}/{seq} within "
                                     f"{timeout}s; acks: {self.acks()[-10:]}")
            time.sleep(0.05)

    def send_until_acked(self, batches, resend=2.0, timeout=120):
        """Publishes {(epoch, seq): payload} and resends what has no ok or duplicate ack every
        resend seconds, as an agent does; returns {(epoch, seq): [statuses]}."""
        deadline = time.monotonic() + timeout
        sent = {}
        while True:
            done = {(a["epoch"], a["seq"]) for a in self.acks()
                    if a["status"] in ("ok", "duplicate")}
            todo = [k for k in batches if k not in done]
            if not todo:
                break
            assert time.monotonic() < deadline, f"unacked after {timeout}s: {todo[:10]}"
            now = time.monotonic()
            for k in todo:
                if now - sent.get(k, -1e9) >= resend:
                    self.publish(batches[k])
                    sent[k] = now
            time.sleep(0.05)
        out = {}
        for a in self.acks():
            out.setdefault((a["epoch"], a["seq"]), []).append(a["status"])
        return out


TIME_COLUMNS = ("ts", "window_start", "received_at")


def as_micros(v):
    """icebird gives timestamps as ISO strings (milliseconds); DuckDB (--micros) numbers."""
    if isinstance(v, (int, float)):
        return int(v)
    if isinstance(v, str) and re.fullmatch(r"-?\d+", v):
        return int(v)
    from datetime import datetime
    return int(round(datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp() * 1000)) * 1000


def normalise(row):
    out = dict(row)
    for c in TIME_COLUMNS:
        if c in out and out[c] is not None:
            out[c] = as_micros(out[c])
    for c in ("batch_epoch", "batch_seq", "count", "window_s"):
        if c in out and isinstance(out[c], str):
            out[c] = int(out[c])
        if c in out and out[c] is not None:
            out[c] = int(out[c])
    if "batch_epoch" in out and out["batch_epoch"] < 0:
        out["batch_epoch"] += 1 << 64  # the u64's bits in a signed long
    return out


needs_node = pytest.mark.skipif(not have_node_readers(),
                                reason="node and tests/node/node_modules (icebird) missing: "
                                       "run scripts/install-deps")


# -- storms: kill -9 of uploaders and agents, broker restarts, a storage outage ---------------

UPLOADER_FIGURES = {
    # figure: the /metrics families summed over every life of every uploader (labels merged,
    # except where noted)
    "messages": "floe_uploader_messages_total",
    "batches_taken": "floe_uploader_batches_received_total",
    "committed_batches": "floe_uploader_committed_batches_total",
    "commits": "floe_uploader_commits_total",
    "duplicates_intake": 'floe_uploader_duplicates_total{where="intake"}',
    "duplicates_commit": 'floe_uploader_duplicates_total{where="commit"}',
    "resent_buffered": "floe_uploader_resent_buffered_total",
    "flush_rebuilds": "floe_uploader_flush_rebuilds_total",
    "commit_retries": "floe_uploader_commit_retries_total",
    "flush_failures": "floe_uploader_flush_failures_total",
    "deferred": "floe_uploader_deferred_total",
}
AGENT_FIGURES = {
    "agent_sent": "floe_agent_uplink_sent_total",
    "agent_resent": "floe_agent_uplink_resent_total",
    "agent_acked": "floe_agent_uplink_acked_total",
    "agent_duplicate_acks": "floe_agent_uplink_duplicates_total",
}


def figures_of(sample, families):
    """{figure: value} from one metrics sample: a family with labels in its name is taken as
    it is, one without is summed over all its label sets."""
    out = {}
    for fig, name in families.items():
        if "{" in name:
            out[fig] = sample.get(name, 0.0)
        else:
            out[fig] = sum(v for k, v in sample.items()
                           if k == name or k.startswith(name + "{"))
    return out


def quick_metrics(up, timeout=2.0):
    """An uploader's /metrics with a short timeout (a flush may hold its loop); {} when it
    does not answer."""
    if not up.running() or not up.metrics_url:
        return {}
    try:
        with urllib.request.urlopen(up.metrics_url, timeout=timeout) as r:
            return parse_metrics(r.read().decode())
    except OSError:
        return {}


class Lives:
    """Counters of processes that die with kill -9: the last sample of each life is added to
    the totals when the life ends (kill, stop). Figures are lower bounds: what a life counted
    after its last sample is lost with it."""

    def __init__(self, families):
        self.families = families
        self.totals = {k: 0.0 for k in families}
        self.by_key = {}  # key -> its totals
        self.last = {}

    def sample(self, key, metrics):
        if metrics:
            self.last[key] = figures_of(metrics, self.families)

    def end(self, key):
        mine = self.by_key.setdefault(key, {k: 0.0 for k in self.families})
        for k, v in self.last.pop(key, {}).items():
            self.totals[k] += v
            mine[k] += v


class Storm:
    """Sim-board agents streaming into `uploaders` floe-uploaders of one share group and one
    catalog while, at random points, uploaders and agents are killed with -9 (each restarted
    after a random pause), the broker restarts and the warehouse is gone for `outage` seconds.

        storm = Storm(env, make_agent, uploaders=3, agents=10, duration=240,
                      uploader_kills=20, agent_kills=20, outage=60, seed=7)
        figures = storm.run()        # the storm, then the drain
        storm.check()                # exactly once, read back by DuckDB (audit_lake)

    make_agent(identity) returns an agent_run.Agent that is not started yet.

    Accepted events are counted from each agent's ring (agent_run.Agent.ring_header): its
    next_seq is the number of readings the ring file ever accepted, kept across kill -9, while
    the agent's accepted counter restarts with each run and is written only periodically. The
    ring file must be the same one at the end (its ring_id), or the count would be wrong.
    """

    def __init__(self, env, make_agent, uploaders=1, agents=4, duration=30, uploader_kills=6,
                 agent_kills=0, broker_restarts=1, outage=0, seed=1, tenant="storm",
                 uploader_pause=(0, 1.5), agent_pause=(0, 1.0), faults=(),
                 **uploader_settings):
        self.env = env
        self.rnd = random.Random(seed)
        self.duration = duration
        self.want_up_kills = uploader_kills
        self.want_agent_kills = agent_kills
        self.broker_restarts = broker_restarts
        self.outage = outage
        self.uploader_pause = uploader_pause
        self.agent_pause = agent_pause
        self.faults = sorted(faults, key=lambda f: f[0])  # (fraction of duration, what, fn)
        settings = {"buffer__interval": "1s", "buffer__retry_max": "5s"}
        settings.update(uploader_settings)
        self.ups = [env.uploader(f"u{i}", **settings) for i in range(uploaders)]
        self.agents = [make_agent(f"{tenant}.gw-{i:04d}") for i in range(agents)]
        self.up_lives = Lives(UPLOADER_FIGURES)
        self.agent_lives = Lives(AGENT_FIGURES)
        self.rings = {}
        self.accepted = {}
        self.figures = {}
        self.timeline = env.base / "storm.log"  # what happened when, for a failure's analysis

    # -- the storm -------------------------------------------------------------------------

    def _note(self, t0, what):
        with open(self.timeline, "a") as f:
            f.write(f"{time.monotonic() - t0:8.2f} {what}\n")

    def _kill_uploader(self, up):
        self.up_lives.sample(up.name, quick_metrics(up))
        up.kill()
        self.up_lives.end(up.name)

    def _kill_agent(self, a):
        self.agent_lives.sample(a.dir.name, a.metrics())
        a.kill()
        self.agent_lives.end(a.dir.name)

    def run(self):
        env, rnd = self.env, self.rnd
        self.t_start = time.monotonic()
        for up in self.ups:  # one after the other: the first creates the tables
            up.start()
        for a in self.agents:
            a.start()
        for a in self.agents:
            self.rings[a.dir.name] = a.wait_ring()["ring_id"]
        t0 = time.monotonic()
        D = self.duration
        restarts = {}  # object -> when it starts again
        up_kills = agent_kills = broker_restarts = 0
        gap_up = 2.0 * D / max(1, self.want_up_kills)
        gap_agent = 2.0 * D / max(1, self.want_agent_kills)
        next_up = rnd.uniform(0.5, gap_up) if self.want_up_kills else None
        next_agent = rnd.uniform(0.5, gap_agent) if self.want_agent_kills else None
        broker_at = [D * (0.3 + 0.4 * i / max(1, self.broker_restarts))
                     for i in range(self.broker_restarts)]
        outage_at = D * 0.45 if self.outage else None
        faults = list(self.faults)
        outage_end = None
        ns, away = env.warehouse / "floe", env.warehouse / "floe.away"
        last_sample = 0.0
        while True:
            now = time.monotonic() - t0
            done = (now >= D and up_kills >= self.want_up_kills and
                    agent_kills >= self.want_agent_kills and outage_at is None and
                    outage_end is None and not broker_at and not faults)
            if done:
                break
            for obj, due in list(restarts.items()):
                if now >= due:
                    del restarts[obj]
                    if isinstance(obj, Uploader):
                        obj.start(wait=False)
                    else:
                        obj.start()
                    self._note(t0, f"start {getattr(obj, 'name', None) or obj.dir.name}")
            if next_up is not None and now >= next_up:
                alive = [u for u in self.ups if u not in restarts]
                if alive:
                    up = rnd.choice(alive)
                    self._kill_uploader(up)
                    up_kills += 1
                    restarts[up] = now + rnd.uniform(*self.uploader_pause)
                    self._note(t0, f"kill -9 {up.name}")
                if now >= D and up_kills >= self.want_up_kills:
                    next_up = None
                else:
                    next_up = now + rnd.uniform(0.2, gap_up)
            if next_agent is not None and now >= next_agent:
                alive = [a for a in self.agents if a not in restarts]
                if alive:
                    a = rnd.choice(alive)
                    self._kill_agent(a)
                    agent_kills += 1
                    restarts[a] = now + rnd.uniform(*self.agent_pause)
                    self._note(t0, f"kill -9 {a.dir.name}")
                if now >= D and agent_kills >= self.want_agent_kills:
                    next_agent = None
                else:
                    next_agent = now + rnd.uniform(0.2, gap_agent)
            if broker_at and now >= broker_at[0]:
                broker_at.pop(0)
                self._note(t0, "broker stop")
                env.broker.stop()
                time.sleep(2)
                env.broker.start()
                broker_restarts += 1
                self._note(t0, "broker started")
            if faults and now >= D * faults[0][0]:
                _, what, fn = faults.pop(0)
                self._note(t0, what)
                fn()
                self.figures[what] = self.figures.get(what, 0) + 1
            if outage_at is not None and now >= outage_at:
                ns.rename(away)
                ns.write_text("not a directory\n")
                outage_at, outage_end = None, now + self.outage
                self._note(t0, "storage gone")
            if outage_end is not None and now >= outage_end:
                ns.unlink()
                away.rename(ns)
                outage_end = None
                self._note(t0, "storage back")
            if now - last_sample >= 2:
                last_sample = now
                for up in self.ups:
                    if up not in restarts:
                        self.up_lives.sample(up.name, quick_metrics(up, timeout=0.5))
                for a in self.agents:
                    if a not in restarts:
                        self.agent_lives.sample(a.dir.name, a.metrics())
            time.sleep(0.05)
        for obj in list(restarts):
            if isinstance(obj, Uploader):
                obj.start(wait=False)
            else:
                obj.start()
        storm_s = time.monotonic() - t0
        self._note(t0, "storm over")
        drain = self.drain()
        self.figures.update({
            "uploaders": len(self.ups), "agents": len(self.agents),
            "storm_s": round(storm_s, 1), "uploader_kills": up_kills,
            "agent_kills": agent_kills, "broker_restarts": broker_restarts,
            "outage_s": self.outage, **drain,
        })
        return self.figures

    # -- the drain ---------------------------------------------------------------------------

    def table_rows(self, table="events"):
        return sum(f["record_count"] for f in self.env.live_files(table))

    def drain(self):
        """Every uploader up and subscribed; then every agent stopped (SIGTERM: its open batch
        and windows go to its outbox) and started again with a board that reads nothing (the
        sim board's first poll is one interval after the start: 1h), which resends what its
        outbox holds until everything is acknowledged, and stopped again with an empty outbox.
        Then the tables are waited for until they hold every accepted event."""
        t0 = time.monotonic()
        for up in self.ups:
            if not up.running():
                up.start()
        for up in self.ups:
            up.wait_metric("floe_uploader_mqtt_connected", lambda v: v == 1, timeout=60)
        for a in self.agents:
            if a.running():  # SIGTERM only once it handles it (an agent restarted just now)
                a.wait_log("running (board", count=a.starts)
            self.agent_lives.sample(a.dir.name, a.metrics())
            if a.running():
                rc = a.stop()
                assert rc == 0, f"{a.dir.name}: exit {rc}\n{a.log_tail()}"
            self.agent_lives.sample(a.dir.name, a.metrics())
            self.agent_lives.end(a.dir.name)
        readings = {}
        for a in self.agents:
            readings[a.dir.name] = a.ring_header()["next_seq"]
            a.set_option("board.sim", "interval", "1h")
            a.start()
        deadline = time.monotonic() + 120
        waiting = list(self.agents)
        while waiting:
            assert time.monotonic() < deadline, (
                "outboxes not emptied within 120 s: " +
                ", ".join(f"{a.dir.name}: {a.metric('floe_agent_outbox_batches')}"
                          for a in waiting))
            time.sleep(0.2)
            for a in list(waiting):
                m = a.metrics()
                # the file of this run: written at its start, the metric counts this run's acks
                if (m.get("floe_agent_uplink_connected") == 1 and
                        m.get("floe_agent_outbox_batches", 1) == 0):
                    waiting.remove(a)
        outboxes_s = time.monotonic() - t0
        for a in self.agents:
            assert a.stop() == 0, a.log_tail()
            m = a.metrics()
            self.agent_lives.sample(a.dir.name, m)
            self.agent_lives.end(a.dir.name)
            assert m["floe_agent_outbox_batches"] == 0, a.log_tail()
            h = a.ring_header()
            assert h["next_seq"] == readings[a.dir.name], f"{a.dir.name} read more"
            assert h["ring_id"] == self.rings[a.dir.name], f"{a.dir.name}: the ring was replaced"
            assert not list(a.state.glob("ring.corrupt-*")), f"{a.dir.name}: a ring moved aside"
            self.accepted[a.dir.name.split(".", 1)[1]] = h["next_seq"]
        total = sum(self.accepted.values())
        # every outbox is empty: what is not committed within a few flushes never will be
        last, deadline = -1, 0.0
        while (n := self.table_rows()) < total:
            if n != last:
                last, deadline = n, time.monotonic() + 30
            assert time.monotonic() < deadline, f"{n} of {total} accepted events committed"
            time.sleep(0.5)
        table_s = time.monotonic() - t0
        time.sleep(3)  # flushes still under way: nothing more may come
        for up in self.ups:
            self.up_lives.sample(up.name, quick_metrics(up, timeout=10))
            assert up.stop() == 0, up.log_tail()
            self.up_lives.end(up.name)
        return {"drain_outboxes_s": round(outboxes_s, 1), "drain_table_s": round(table_s, 1)}

    # -- the check -------------------------------------------------------------------------

    def check(self):
        """Exactly once (audit_lake); the figures completed with what the tables hold."""
        t = time.monotonic()
        got = audit_lake(self.env, self.accepted)
        # the ledger and the tables agree: a seq the ledger holds committed has its rows in a
        # table (no ack without data), and every batch in the tables is in the ledger
        ids = {a.dir.name for a in self.agents}
        ledger = {k: v for k, v in ledger_streams(self.env.catalog).items() if k[0] in ids}
        tables = {k: v for k, v in got["batches"].items() if k[0] in ids}
        diff = {k: (sorted(ledger.get(k, set()) - tables.get(k, set()))[:10],
                    sorted(tables.get(k, set()) - ledger.get(k, set()))[:10])
                for k in set(ledger) | set(tables) if ledger.get(k) != tables.get(k)}
        assert not diff, f"(ledger only, tables only) per stream: {diff}"
        self.figures["check_s"] = round(time.monotonic() - t, 1)
        self.figures["total_s"] = round(time.monotonic() - self.t_start, 1)
        self.figures.update({"accepted_events": sum(self.accepted.values()),
                             "events": got["events"], "aggregate_rows": got["agg_rows"],
                             "event_batches": got["event_batches"]})
        self.figures.update({k: int(v) for k, v in self.up_lives.totals.items()})
        self.figures.update({k: int(v) for k, v in self.agent_lives.totals.items()})
        report = os.environ.get("FLOE_STORM_REPORT")
        if report:
            with open(report, "a") as f:
                f.write(json.dumps(self.figures, sort_keys=True) + "\n")
        print("storm figures:", json.dumps(self.figures, sort_keys=True))
        return got


def _parquet_list(files):
    return "[" + ", ".join("'" + f["file_path"].removeprefix("file://").replace("'", "''") + "'"
                           for f in files) + "]"


def _load_statements(table, select, files, chunk=200):
    """CREATE TABLE then INSERTs over the files in chunks (one argument of a command line
    holds at most 128 KiB)."""
    out = []
    for i in range(0, len(files), chunk):
        src = (f"read_parquet({_parquet_list(files[i:i + chunk])}, union_by_name = true, "
               f"hive_partitioning = false)")
        verb = f"CREATE TABLE {table} AS" if i == 0 else f"INSERT INTO {table}"
        out.append(f"{verb} SELECT {select} FROM {src}")
    return out


def audit_lake(env, accepted):
    """floe.events and floe.aggregates read by DuckDB (the live files of the current snapshots
    as python3-avro lists them): every accepted event exactly once (accepted: {device:
    readings its ring accepted}), and the aggregates agreeing with the events — no window of a
    series twice, each window's count and sum those of its events, the counts adding up to the
    accepted events."""
    ev_files, ag_files = env.live_files("events"), env.live_files("aggregates")
    assert ev_files and ag_files
    stmts = _load_statements(
        "ev", "tenant, device, sensor, metric, epoch_us(ts) AS ts, value, batch_epoch, "
        "batch_seq", ev_files)
    stmts += _load_statements(
        "ag0", "tenant, device, sensor, metric, epoch_us(window_start) AS ws, window_s, count, "
        "sum, batch_epoch, batch_seq", ag_files)
    stmts.append("CREATE TABLE ag AS SELECT row_number() OVER () AS rid, * FROM ag0")
    stmts.append("""
SELECT
 (SELECT count(*) FROM ev) AS events,
 (SELECT count(*) FROM (SELECT DISTINCT device, sensor, metric, ts FROM ev)) AS distinct_events,
 (SELECT count(*) FROM (SELECT DISTINCT device, batch_epoch, batch_seq FROM ev))
   AS event_batches,
 (SELECT list(x) FROM (SELECT {'device': device, 'sensor': sensor, 'metric': metric, 'ts': ts,
   'n': count(*), 'batches': list(DISTINCT batch_seq)} AS x FROM ev
   GROUP BY device, sensor, metric, ts HAVING count(*) > 1 LIMIT 10)) AS duplicates,
 (SELECT list(x) FROM (SELECT {'device': device, 'n': count(*)} AS x FROM ev GROUP BY device))
   AS per_device,
 (SELECT count(*) FROM ag) AS agg_rows,
 (SELECT sum(count) FROM ag) AS agg_count,
 (SELECT count(*) FROM (SELECT 1 FROM ag GROUP BY device, sensor, metric, ws
   HAVING count(*) > 1)) AS agg_dup_windows,
 (SELECT list(x) FROM (SELECT {'device': a.device, 'sensor': a.sensor, 'metric': a.metric,
   'ws': a.ws, 'count': a.count, 'events': count(e.ts)} AS x
   FROM ag a LEFT JOIN ev e ON e.device = a.device AND e.sensor = a.sensor
   AND e.metric = a.metric AND e.ts >= a.ws AND e.ts < a.ws + a.window_s * 1000000
   GROUP BY a.rid, a.device, a.sensor, a.metric, a.ws, a.count, a.sum
   HAVING count(e.ts) <> a.count OR abs(coalesce(sum(e.value), 0) - coalesce(a.sum, 0))
     > 1e-9 * greatest(1, abs(coalesce(a.sum, 0))))) AS bad_windows,
 (SELECT list(x) FROM (SELECT {'identity': id, 'epoch': batch_epoch,
   'seqs': list(DISTINCT batch_seq)} AS x FROM
   (SELECT tenant || '.' || device AS id, batch_epoch, batch_seq FROM ev UNION ALL
    SELECT tenant || '.' || device, batch_epoch, batch_seq FROM ag)
   GROUP BY id, batch_epoch)) AS batches
""")
    got = node("duckdb-sql.mjs", *stmts)[0]
    for k in ("events", "distinct_events", "event_batches", "agg_rows", "agg_count",
              "agg_dup_windows"):
        got[k] = int(got[k] or 0)
    per_device = {x["device"]: int(x["n"]) for x in got["per_device"] or []}
    total = sum(accepted.values())
    assert not got["duplicates"], f"events more than once: {got['duplicates']}"
    assert got["events"] == got["distinct_events"]
    assert per_device == accepted, (
        "per device, committed vs accepted: " +
        ", ".join(f"{d}: {per_device.get(d, 0)}/{accepted.get(d, 0)}"
                  for d in sorted(set(per_device) | set(accepted))
                  if per_device.get(d, 0) != accepted.get(d, 0)))
    assert got["events"] == total
    assert got["agg_dup_windows"] == 0
    assert not got["bad_windows"], f"windows disagreeing with the events: {got['bad_windows']}"
    assert got["agg_count"] == total
    got["batches"] = {(x["identity"], int(x["epoch"]) % (1 << 64)): {int(q) for q in x["seqs"]}
                      for x in got["batches"] or []}
    return got


def ledger_streams(catalog):
    """{(identity, epoch): the seqs floe_ledger holds committed (1..hwm and the ranges above)}
    from the catalog's database (psql for PostgreSQL, Python's sqlite3 for SQLite)."""
    sql = "SELECT identity, epoch, hwm, above FROM floe_ledger"
    if catalog.startswith("postgresql://"):
        from pg import PG_BINDIR

        p = subprocess.run([str(PG_BINDIR / "psql"), catalog, "-X", "-q", "-At", "-F", "|",
                            "-v", "ON_ERROR_STOP=1", "-c", sql], capture_output=True, text=True,
                           timeout=60)
        assert p.returncode == 0, p.stderr
        rows = [line.split("|") for line in p.stdout.splitlines() if line]
    else:
        import sqlite3
        from contextlib import closing

        with closing(sqlite3.connect(catalog)) as db:
            rows = db.execute(sql).fetchall()
    out = {}
    for identity, epoch, hwm, above in rows:
        seqs = set(range(1, int(hwm) + 1))
        for part in filter(None, str(above).split(",")):
            lo, _, hi = part.partition("-")
            seqs.update(range(int(lo), int(hi or lo) + 1))
        out[(identity, int(epoch) % (1 << 64))] = seqs
    return out
