#!/usr/bin/python3
"""floe-uploader end to end (make bench): batches in, committed Iceberg snapshots out.

The agents are replaced by bench-replay (tests/bench/bench-replay.c): one MQTT v5 client that
publishes batches in the agent's wire format (lib/floe-wire, zstd level 1) to
floe/v1/<identity>/batch at QoS 1 for many identities, each identity with a window of 8
batches in flight and its seqs in order, as the agent's [uplink] inflight, and takes the
uploader's acks. Each device has 8 sensors x 6 metrics read every second; a batch holds 10 s
of them (480 events, the agent's default [batch] max_age), values at the sensor's resolution.

The broker is the configuration `floe-ca broker-config` writes (mTLS listeners; its
`max_queued_messages 1000000` lets a fleet's thousands of in-flight batches queue in the broker
while the uploader's receive window (64) is full), plus a service identity for the replayer
(floe-replay: write floe/v1/+/batch, read floe/v1/+/ack). The uploader runs with its defaults except the paths, the metrics port
and `session_expiry = 0` (a benchmark's sessions must not outlive their run).

Figures:
  (a) sustained events/s: first publish -> the catalog shows the snapshot holding every event
      (verified by DuckDB: row count and distinct (epoch, seq) over the snapshot's files), at
      the default hints (interval 10 s, size 64 MiB) and at interval 1 s; beside them, in the
      same run, the broker alone (the same payloads to mosquitto_sub over the same TLS
      listener) and DuckDB writing the same events from NDJSON to zstd Parquet partitioned
      by tenant and hour (threads = 1, as the uploader is one thread).
  (b) freshness at interval 1 s: each batch encoded when it is sent with every event's ts =
      the send instant (the agent's batching delay, [batch] max_age, comes on top); visible =
      the first time a poll of the catalog (every 5 ms) finds a metadata_location whose
      snapshot holds the event's data file. p50/p99 over every event (DuckDB).
  (c) objects written and bytes stored per million events (file:// warehouse).
  (d) uploader memory with 10,000 and 100,000 identities (two batches of 48 events each).

    /usr/bin/python3 tests/bench/bench_uploader.py [--quick] [--json FILE]

FLOE_BIN: the build directory (default build/bench); BENCH_UPLOADER_JSON: where the figures go
as JSON (also --json); BENCH_UPLOADER_QUICK=1: --quick (under `make bench`).
"""

import argparse
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT / "tests" / "system"))
sys.path.insert(0, str(HERE))
from enroll_client import Credentials, Env  # noqa: E402
from replay_lake import (CatalogWatch, added_files, duckdb, live_files,  # noqa: E402
                         metadata, sql_list, warehouse_usage)
from test_floe_ca import FloeBroker  # noqa: E402
from uploader_run import Uploader  # noqa: E402

BIN = Path(os.environ.get("FLOE_BIN", ROOT / "build" / "bench"))
REPLAY = BIN / "bench" / "bench-replay"

# throughput: 4000 identities x 8 in flight = 15.4 M events in flight; 20 batches each make
# three commits at the default hints. The broker peer sends the same batches.
FULL = {
    "throughput": {"identities": 4000, "batches": 20},
    "duckdb_events": 1_000_000,
    "freshness": {"identities": 200, "seconds_run": 30, "rate": 100_000},
    "memory": [10_000, 100_000],
}
QUICK = {
    "throughput": {"identities": 300, "batches": 4},
    "duckdb_events": 200_000,
    "freshness": {"identities": 50, "seconds_run": 8, "rate": 20_000},
    "memory": [2_000],
}
SENSORS, METRICS, SECONDS, WINDOW = 8, 6, 10, 8
REPLAY_ACL = """
# bench_uploader.py: the replayer stands in for every agent
user floe-replay
topic write floe/v1/+/batch
topic read floe/v1/+/ack
"""


def binaries():
    """The uploader, floe-ca and the replayer beside the other benchmark binaries."""
    want = [BIN / "floe-ca", BIN / "floe-uploader", REPLAY]
    missing = [str(b) for b in want if not os.access(b, os.X_OK)]
    if missing:
        subprocess.run(["make", "-C", str(ROOT), "--no-print-directory", f"B={BIN}",
                        "SANITIZE="] + missing, check=True, stdout=subprocess.DEVNULL)


class Broker(FloeBroker):
    """broker-config's mosquitto configuration and the replayer's ACL."""

    def config(self):
        acl = Path(self.generated).parent / "acl-service.conf"
        if "floe-replay" not in acl.read_text():
            with open(acl, "a") as f:
                f.write(REPLAY_ACL)
        return super().config()


def cpu_seconds(pid):
    """CPU time of every thread of pid (schedstat: nanoseconds)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except FileNotFoundError:
            pass
    return total / 1e9


def status_kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def machine_busy():
    """CPU seconds every CPU of the machine spent busy so far (/proc/stat)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


def self_cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Load:
    """How busy the machine was during a run, and how much of that was not the run's own
    processes (other work on a shared machine slows the run down)."""

    def __init__(self):
        self.t0, self.busy0, self.self0 = time.monotonic(), machine_busy(), self_cpu()

    def result(self, own_cpu):
        wall = time.monotonic() - self.t0
        busy = machine_busy() - self.busy0
        own = own_cpu + self_cpu() - self.self0
        cap = wall * os.cpu_count()
        return {"machine_busy_share": busy / cap, "others_share": max(0.0, busy - own) / cap}


class Bench:
    def __init__(self, work, profile):
        self.work = Path(work)
        self.p = profile
        (self.work / "pki").mkdir(parents=True, exist_ok=True)
        self.env = Env(BIN, self.work / "pki", broker_class=Broker)
        self.broker = self.env.broker
        ca = self.env.ca
        ca.run("issue-service", "floe-replay")
        key, _, chain = ca.issued("floe-replay")
        self.replay_creds = Credentials(chain, key, self.env.root)
        key, _, chain = ca.issued("floe-uploader")
        self.service = Credentials(chain, key, self.env.root)
        self.n = 0
        self.uploaders = []

    # -- the parts ------------------------------------------------------------------------

    def uploader(self, name, **settings):
        from conftest import free_port

        d = self.work / name
        s = self.service
        sections = {
            "broker": {"host": "localhost", "port": self.broker.service_port, "ca_file": s.ca,
                       "cert_file": s.cert, "key_file": s.key, "client_id": f"bench-{name}",
                       "share_group": f"bench-{name}", "session_expiry": "0"},
            "lake": {"warehouse": f"file://{d}/warehouse", "catalog": f"{d}/catalog.db"},
            "metrics": {"listen": f"127.0.0.1:{free_port()}"},
        }
        for key, value in settings.items():
            section, _, k = key.partition("__")
            sections.setdefault(section, {})[k] = value
        up = Uploader(BIN / "floe-uploader", d, sections, name=name)
        self.uploaders.append(up)
        up.catalog = d / "catalog.db"
        up.warehouse = d / "warehouse"
        return up

    def cache(self, identities, batches):
        """The encoded batches of this geometry, shared by the runs that send them."""
        return ["--cache", self.work / f"batches-{identities}x{batches}.bin"]

    def replay(self, name, *args, timeout=900):
        """Runs bench-replay to the end; its JSON figures."""
        self.n += 1
        out = self.work / f"replay-{name}.json"
        c = self.replay_creds
        argv = [str(REPLAY), "--host", "localhost", "--port", str(self.broker.service_port),
                "--cafile", c.ca, "--cert", c.cert, "--key", c.key,
                "--client-id", f"bench-replay-{self.n}", "--out", str(out), *map(str, args)]
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=timeout)
        if r.returncode != 0 or not out.exists():
            raise RuntimeError(f"bench-replay {name} failed ({r.returncode}):\n{r.stderr}")
        return json.loads(out.read_text())

    # -- (a) and (c): throughput, objects --------------------------------------------------

    def throughput(self, label, name, **settings):
        t = self.p["throughput"]
        progress(f"throughput, {label}: {t['identities']} identities x {t['batches']} batches")
        up = self.uploader(name, **settings).start()
        watch = CatalogWatch(up.catalog).start()
        try:
            cpu0, bcpu0, load = cpu_seconds(up.proc.pid), cpu_seconds(self.broker.pid), Load()
            rep = self.replay(name, "--identities", t["identities"], "--batches", t["batches"],
                              "--sensors", SENSORS, "--metrics", METRICS, "--seconds", SECONDS,
                              "--window", WINDOW, *self.cache(t["identities"], t["batches"]))
            seen = watch.wait_total(rep["events"], timeout=120)
            cpu = cpu_seconds(up.proc.pid) - cpu0
            bcpu = cpu_seconds(self.broker.pid) - bcpu0
            busy = load.result(cpu + bcpu + rep["cpu_seconds"])
            hwm = status_kib(up.proc.pid, "VmHWM")
        finally:
            rc = up.stop()
            watch.stop()
        if seen is None:
            raise RuntimeError(f"{label}: the catalog never showed {rep['events']} events")
        if rc != 0:
            raise RuntimeError(f"{label}: floe-uploader exited {rc}:\n{up.log_tail()}")
        check_acks(label, rep)
        rows = verify_rows(metadata(up.catalog), rep)
        commits = [s for s in watch.seen if s.total > 0]
        secs = (seen.t_us - rep["first_publish_us"]) / 1e6
        steady = None
        if len(commits) >= 3:  # the events of every commit but the first over their time
            steady = (commits[-1].total - commits[0].total) / \
                ((commits[-1].t_us - commits[0].t_us) / 1e6)
        return {
            "label": label, "settings": settings, "events": rep["events"],
            "batches": rep["batches"], "identities": rep["identities"], "window": WINDOW,
            "payload_bytes": rep["payload_bytes"], "rows_verified": rows,
            "seconds": secs, "events_per_s": rep["events"] / secs,
            "steady_events_per_s": steady, "commits": len(commits),
            "uploader_cpu_s": cpu, "events_per_cpu_s": rep["events"] / cpu,
            "broker_cpu_s": bcpu, "replay_cpu_s": rep["cpu_seconds"],
            "ack_latency_ms": rep["latency_ms"], "max_in_flight": rep["max_in_flight"],
            "uploader_peak_kib": hwm, **busy, "objects": objects(up, rep["events"]),
        }

    # -- the peers ---------------------------------------------------------------------------

    def broker_only(self):
        """The same payloads from the same replayer, PUBACKed by the broker and delivered to
        mosquitto_sub (a shared subscription over the service listener, QoS 1)."""
        t = self.p["throughput"]
        progress("peer: the broker alone, the same batches to mosquitto_sub")
        n = t["identities"] * t["batches"]
        s = self.service
        sub = subprocess.Popen(
            ["mosquitto_sub", "-h", "localhost", "-p", str(self.broker.service_port), "-V",
             "mqttv5", "--cafile", s.ca, "--cert", s.cert, "--key", s.key, "-i",
             "bench-sub", "-q", "1", "-C", str(n), "-t", "$share/bench-sub/floe/v1/+/batch"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(1.0)  # subscribed (mosquitto_sub has no "ready" signal)
        status = None
        try:
            bcpu0, load = cpu_seconds(self.broker.pid), Load()
            rep = self.replay("broker", "--puback", "--identities", t["identities"],
                              "--batches", t["batches"], "--sensors", SENSORS, "--metrics",
                              METRICS, "--seconds", SECONDS, "--window", WINDOW,
                              *self.cache(t["identities"], t["batches"]))
            _, status, usage = os.wait4(sub.pid, 0)
            t_end = time.time_ns() // 1000
            bcpu = cpu_seconds(self.broker.pid) - bcpu0
            sub_cpu = usage.ru_utime + usage.ru_stime
            busy = load.result(bcpu + sub_cpu + rep["cpu_seconds"])
        finally:
            if status is None:
                sub.kill()
                sub.wait()
        if status != 0:
            raise RuntimeError(f"mosquitto_sub failed: {sub.stderr.read().decode()}")
        secs = (t_end - rep["first_publish_us"]) / 1e6
        return {"events": rep["events"], "batches": rep["batches"], "seconds": secs,
                "events_per_s": rep["events"] / secs, "broker_cpu_s": bcpu,
                "sub_cpu_s": sub_cpu, "replay_cpu_s": rep["cpu_seconds"], **busy}

    def duckdb_peer(self):
        """DuckDB (one thread) reading the same kind of events from NDJSON and writing zstd
        Parquet partitioned by tenant and hour: the first identities of the throughput runs."""
        t = self.p["throughput"]
        ident = max(1, self.p["duckdb_events"] // (SENSORS * METRICS * SECONDS * t["batches"]))
        progress(f"peer: DuckDB, NDJSON of {ident} identities to Parquet")
        nd = self.work / "events.ndjson"
        r = subprocess.run([str(REPLAY), "--ndjson", str(nd), "--identities", str(ident),
                            "--batches", str(t["batches"]), "--sensors", str(SENSORS),
                            "--metrics", str(METRICS), "--seconds", str(SECONDS)],
                           capture_output=True, text=True, check=True)
        events = json.loads(r.stdout)["events"]
        out = self.work / "duckdb-out"
        lit = "'" + str(nd).replace("'", "''") + "'"
        c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        rows = duckdb(
            "SET threads = 1",
            "CREATE TABLE t0 AS SELECT epoch_us(get_current_timestamp()) AS a",
            f"COPY (SELECT tenant, device, sensor, metric, make_timestamptz(ts) AS ts, value, "
            f"date_trunc('hour', make_timestamptz(ts)) AS hour FROM read_json({lit}, "
            f"format = 'newline_delimited', columns = {{tenant: 'VARCHAR', device: 'VARCHAR', "
            f"sensor: 'VARCHAR', metric: 'VARCHAR', ts: 'BIGINT', value: 'DOUBLE'}})) "
            f"TO '{out}' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (tenant, hour))",
            "SELECT epoch_us(get_current_timestamp()) - (SELECT a FROM t0) AS us, "
            "(SELECT version()) AS version")
        c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        secs = int(rows[0]["us"]) / 1e6
        size = sum(p.stat().st_size for p in out.rglob("*.parquet"))
        ndjson_bytes = nd.stat().st_size
        nd.unlink()
        shutil.rmtree(out, ignore_errors=True)
        return {"events": events, "seconds": secs, "events_per_s": events / secs,
                "process_cpu_s": (c1.ru_utime + c1.ru_stime) - (c0.ru_utime + c0.ru_stime),
                "parquet_bytes": size, "ndjson_bytes": ndjson_bytes,
                "version": rows[0]["version"]}

    # -- (b) freshness -------------------------------------------------------------------

    def freshness(self):
        f = self.p["freshness"]
        rows = 24 * 20  # 24 sensors x 20 metrics read at the send instant: 480 events
        batches = max(1, f["rate"] * f["seconds_run"] // rows // f["identities"])
        progress(f"freshness: {f['rate']} events/s for {f['seconds_run']} s at interval 1 s")
        up = self.uploader("freshness", buffer__interval="1s").start()
        watch = CatalogWatch(up.catalog).start()
        try:
            cpu0, load = cpu_seconds(up.proc.pid), Load()
            rep = self.replay("freshness", "--live", "--rate", f["rate"], "--identities",
                              f["identities"], "--batches", batches, "--sensors", 24,
                              "--metrics", 20, "--seconds", 1, "--window", WINDOW)
            seen = watch.wait_total(rep["events"], timeout=60)
            cpu = cpu_seconds(up.proc.pid) - cpu0
            busy = load.result(cpu + rep["cpu_seconds"])
        finally:
            rc = up.stop()
            watch.stop()
        if seen is None or rc != 0:
            raise RuntimeError(f"freshness: not all committed (exit {rc}):\n{up.log_tail()}")
        check_acks("freshness", rep)
        md = metadata(up.catalog)
        verify_rows(md, rep)
        # a snapshot is visible from the first poll that found it or a newer one (one poll may
        # find two commits)
        visible = {}
        for snap in md["snapshots"]:
            t = next((s.t_us for s in watch.seen if s.sequence >= snap["sequence-number"]), None)
            if t is None:
                raise RuntimeError(f"freshness: snapshot {snap['snapshot-id']} never seen")
            visible[snap["snapshot-id"]] = t
        mapping = [(local_path(p), visible[sid]) for sid, paths in added_files(md).items()
                   for p in paths]
        values = ", ".join("('%s', %d)" % (p.replace("'", "''"), t) for p, t in mapping)
        q = duckdb(
            f"CREATE TABLE v AS SELECT * FROM (VALUES {values}) v(f, t)",
            "SELECT count(*) AS n, quantile_disc(d, 0.5) AS p50, quantile_disc(d, 0.9) AS p90, "
            "quantile_disc(d, 0.99) AS p99, max(d) AS max, min(d) AS min FROM (SELECT v.t - "
            f"epoch_us(p.ts) AS d FROM read_parquet({sql_list(p for p, _ in mapping)}, "
            "filename = true) p JOIN v ON p.filename = v.f)")[0]
        if int(q["n"]) != rep["events"]:
            raise RuntimeError(f"freshness: {q['n']} events mapped of {rep['events']}")
        pub_s = (rep["last_publish_us"] - rep["first_publish_us"]) / 1e6
        return {"events": rep["events"], "batches": rep["batches"], "rate": f["rate"],
                "identities": f["identities"],
                "sent_rate": rep["events"] / pub_s if pub_s > 0 else None,
                "commits": len([s for s in watch.seen if s.total > 0]),
                "freshness_ms": {k: int(q[k]) / 1000 for k in ("p50", "p90", "p99", "max", "min")},
                "ack_latency_ms": rep["latency_ms"], "polls": watch.polls,
                "uploader_cpu_s": cpu, **busy, "objects": objects(up, rep["events"])}

    # -- (d) memory ----------------------------------------------------------------------

    def memory(self, identities):
        name = f"memory-{identities}"
        progress(f"memory: {identities} identities, 2 batches each")
        up = self.uploader(name, buffer__interval="1s").start()
        try:
            time.sleep(1.0)
            idle = status_kib(up.proc.pid, "VmRSS")
            rep = self.replay(name, "--identities", identities, "--batches", 2, "--sensors",
                              SENSORS, "--metrics", METRICS, "--seconds", 1, "--window", 1,
                              "--timeout", 300)
            time.sleep(3.0)
            settled = status_kib(up.proc.pid, "VmRSS")
            hwm = status_kib(up.proc.pid, "VmHWM")
            cached = up.metric("floe_uploader_ledger_cached_streams")
            ledger = up.metric("floe_uploader_ledger_cache_bytes")
        finally:
            rc = up.stop()
        if rc != 0:
            raise RuntimeError(f"{name}: floe-uploader exited {rc}:\n{up.log_tail()}")
        check_acks(name, rep)
        return {"identities": identities, "events": rep["events"], "idle_rss_kib": idle,
                "peak_kib": hwm, "settled_rss_kib": settled, "cached_streams": int(cached),
                "settled_bytes_per_identity": (settled - idle) * 1024 / identities,
                "ledger_bytes": int(ledger),
                "ledger_bytes_per_identity": int(ledger) / max(1, int(cached)),
                "seconds": rep["seconds"]}

    def close(self):
        for up in self.uploaders:
            up.stop(timeout=30)
        self.broker.stop()


def progress(msg):
    print(f"bench_uploader: {msg}", file=sys.stderr, flush=True)


def local_path(location):
    return location.removeprefix("file://")


def check_acks(label, rep):
    if rep["done"] != rep["batches"] or rep["acks"]["rejected"] or rep["acks"]["duplicate"]:
        raise RuntimeError(f"{label}: acks {rep['acks']}, {rep['done']} of {rep['batches']}")


def verify_rows(md, rep):
    """DuckDB over the snapshot's data files: every event once, every batch present."""
    files = live_files(md)
    if not files:
        raise RuntimeError("no data files")
    q = duckdb(f"SELECT count(*) AS n, count(DISTINCT (batch_epoch, batch_seq)) AS b, "
               f"count(DISTINCT device) AS d FROM read_parquet({sql_list(p for p, _ in files)})")
    n, b, d = int(q[0]["n"]), int(q[0]["b"]), int(q[0]["d"])
    if n != rep["events"] or b != rep["batches"] or d != rep["identities"]:
        raise RuntimeError(f"table holds {n} events of {b} batches from {d} devices; sent "
                           f"{rep['events']} of {rep['batches']} from {rep['identities']}")
    return n


def objects(up, events):
    """Objects written and bytes stored by a run, in all and per million events. On file://
    each object is one file written: data files, manifests and manifest lists stay; a
    table's metadata JSON and version hint are written once per version (vN: N of each),
    older metadata files being deleted past write.metadata.previous-versions-max."""
    usage = warehouse_usage(up.warehouse)
    con = sqlite3.connect(f"file:{up.catalog}?mode=ro", uri=True)
    try:
        locs = [r[0] for r in con.execute("SELECT metadata_location FROM iceberg_tables")]
    finally:
        con.close()
    versions = sum(int(Path(local_path(x)).name.split(".")[0].lstrip("v").split("-")[0])
                   for x in locs)

    def n(kind, field="objects"):
        return usage.get(kind, {}).get(field, 0)

    written = n("data") + n("manifests") + n("manifest_lists") + n("other") + 2 * versions
    stored = sum(v["bytes"] for v in usage.values())
    pm = 1e6 / events
    return {"usage": usage, "metadata_versions": versions, "written": written,
            "stored_bytes": stored,
            "per_million": {"data_files": n("data") * pm, "manifests": n("manifests") * pm,
                            "manifest_lists": n("manifest_lists") * pm,
                            "metadata_json": versions * pm, "objects_written": written * pm,
                            "data_bytes": n("data", "bytes") * pm, "stored_bytes": stored * pm}}


# -- output ---------------------------------------------------------------------------------


def mib(b):
    return b / 2**20


def print_tables(r):
    tp, b, d = r["throughput"], r["broker"], r["duckdb"]
    print("## floe-uploader: batches to committed Iceberg snapshots\n")
    print("| run | events | events/s end to end | commit to commit | uploader CPU s | "
          "events per uploader CPU s | commits | ack p50 / p99 | machine busy (others) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for t in tp:
        print("| uploader, %s | %d | %.0f | %s | %.1f | %.0f | %d | %.1f / %.1f s | "
              "%.0f%% (%.0f%%) |" % (
                  t["label"], t["events"], t["events_per_s"],
                  "%.0f" % t["steady_events_per_s"] if t["steady_events_per_s"] else "-",
                  t["uploader_cpu_s"], t["events_per_cpu_s"], t["commits"],
                  t["ack_latency_ms"]["p50"] / 1000, t["ack_latency_ms"]["p99"] / 1000,
                  100 * t["machine_busy_share"], 100 * t["others_share"]))
    print("| peer: broker alone (replayer -> mosquitto -> mosquitto_sub) | %d | %.0f | | | | | "
          "| %.0f%% (%.0f%%) |" % (b["events"], b["events_per_s"], 100 * b["machine_busy_share"],
                                  100 * b["others_share"]))
    print("| peer: DuckDB %s, NDJSON -> zstd Parquet by tenant and hour, 1 thread | %d | %.0f | "
          "| | %.0f (process) | | | |" % (d["version"], d["events"], d["events_per_s"],
                                         d["events"] / d["process_cpu_s"]))
    t0 = tp[0]
    print("\n%d identities x %d batches of %d events (8 sensors x 6 metrics x 10 s), %d in "
          "flight per identity: %.0f bytes per batch on the wire (%.2f per event). End to end: "
          "first publish to the catalog showing every event (checked by DuckDB). Uploader "
          "over broker alone: %s; over DuckDB: %s end to end, %.2fx per CPU second. Machine: "
          "%d CPUs shared by uploader, broker and replayer; 'others' is CPU used meanwhile by "
          "processes outside the benchmark." % (
              t0["identities"], t0["batches"] // t0["identities"],
              t0["events"] // t0["batches"], t0["window"], t0["payload_bytes"] / t0["batches"],
              t0["payload_bytes"] / t0["events"],
              ", ".join("%.2fx (%s)" % (t["events_per_s"] / b["events_per_s"], t["label"])
                        for t in tp),
              ", ".join("%.2fx (%s)" % (t["events_per_s"] / d["events_per_s"], t["label"])
                        for t in tp),
              t0["events_per_cpu_s"] / (d["events"] / d["process_cpu_s"]), r["cpus"]))

    f = r["freshness"]
    fm = f["freshness_ms"]
    print("\n## Freshness at [buffer] interval 1 s\n")
    print("| events/s sent | events | commits | p50 | p90 | p99 | max | ack at the agent "
          "p50 / p99 |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    print("| %.0f | %d | %d | %.0f ms | %.0f ms | %.0f ms | %.0f ms | %.0f / %.0f ms |" % (
        f["sent_rate"] or 0, f["events"], f["commits"], fm["p50"], fm["p90"], fm["p99"],
        fm["max"], f["ack_latency_ms"]["p50"], f["ack_latency_ms"]["p99"]))
    print("\nFrom an event's ts (the instant its batch was sent: the agent's [batch] max_age "
          "comes on top) to the first poll (every 5 ms) of the SQLite catalog that found a "
          "snapshot holding its data file; every event counted (DuckDB).")

    print("\n## Objects written and bytes stored per million events (file:// warehouse)\n")
    print("| run | data files | manifests | manifest lists | metadata JSON | objects written | "
          "data bytes | bytes stored |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, o in [(t["label"], t["objects"]) for t in tp] + \
            [("interval 1 s at %.0f events/s" % (f["sent_rate"] or 0), f["objects"])]:
        pm = o["per_million"]
        print("| %s | %.1f | %.1f | %.1f | %.1f | %.1f | %.2f MiB | %.2f MiB |" % (
            label, pm["data_files"], pm["manifests"], pm["manifest_lists"], pm["metadata_json"],
            pm["objects_written"], mib(pm["data_bytes"]), mib(pm["stored_bytes"])))
    print("\nObjects written: data files, manifests, manifest lists, and a metadata JSON and a "
          "version hint per table version (on S3 each is one PUT, more for multipart data "
          "files); stored: what the warehouse holds at the end.")

    print("\n## Uploader memory against identities\n")
    print("| identities | events | RSS idle | peak (VmHWM) | RSS after settling | per identity "
          "| cached ledger streams | ledger cache | ledger per identity |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for m in r["memory"]:
        print("| %d | %d | %.1f MiB | %.1f MiB | %.1f MiB | %.0f B | %d | %.2f MiB | %.1f B |" % (
            m["identities"], m["events"], mib(m["idle_rss_kib"] * 1024),
            mib(m["peak_kib"] * 1024), mib(m["settled_rss_kib"] * 1024),
            m["settled_bytes_per_identity"], m["cached_streams"], mib(m["ledger_bytes"]),
            m["ledger_bytes_per_identity"]))
    print("\nEach identity sends two batches of 48 events, the second after the first's ack, "
          "at interval 1 s; settled: 3 s after the last ack (glibc keeps freed heap, so this "
          "is an upper bound of what the identities hold). Ledger: the heap blocks of the "
          "ledger cache (floe_uploader_ledger_cache_bytes: slot table, entries, ranges, with "
          "the allocator's chunk overhead) over the streams it holds.")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    default=os.environ.get("BENCH_UPLOADER_QUICK") == "1",
                    help="small runs, a smoke test (or $BENCH_UPLOADER_QUICK=1)")
    ap.add_argument("--json", default=os.environ.get("BENCH_UPLOADER_JSON"),
                    help="write the figures here as JSON (or $BENCH_UPLOADER_JSON)")
    args = ap.parse_args()
    binaries()
    profile = QUICK if args.quick else FULL
    work = Path(tempfile.mkdtemp(prefix="bench-uploader-"))
    results = {"profile": "quick" if args.quick else "full", "cpus": os.cpu_count(),
               "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    try:
        bench = Bench(work, profile)
        try:
            results["throughput"] = [bench.throughput("default hints", "default"),
                                     bench.throughput("interval 1 s", "interval1s",
                                                      buffer__interval="1s")]
            results["broker"] = bench.broker_only()
            results["duckdb"] = bench.duckdb_peer()
            results["freshness"] = bench.freshness()
            results["memory"] = [bench.memory(n) for n in profile["memory"]]
        finally:
            bench.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_tables(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
