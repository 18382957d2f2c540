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
import re
import shutil
import signal
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from conftest import free_port
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
        rc = self.proc.poll()
        if rc is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                rc = None
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
