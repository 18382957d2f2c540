"""floe-uploader's table maintenance beside ingest (docs/uploader.md "Maintenance"): sim-board
agents stream through a real mosquitto while the uploader commits every 200 ms and its
maintenance thread compacts, expires snapshots, removes old metadata and orphan files. The
tables are read back by independent readers (manifests by Debian's python3-avro, Parquet by
DuckDB) during and after; floe-lake verify checks every reachable file. SIGTERM in the middle
of a compaction stops the daemon promptly with the table intact.
"""

import json
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import avro.datafile
import avro.io
import pytest

import floe_mqtt
import wire_ref
from agent_run import Agent
from uploader_run import FakeAgent, UploaderEnv, needs_node, make_pki

pytestmark = pytest.mark.filterwarnings("ignore:Unknown map")

HOUR_US = 3600 * 1000000
T0 = 1763676000000000  # 2025-11-20T22:00:00Z


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    e = make_pki(tmp_path_factory, "maintain-pki", ("floe-ca", "floe-uploader", "floe-agent", "floe-lake"))
    try:
        yield e
    finally:
        e.broker.stop()


@pytest.fixture
def env(pki, tmp_path):
    e = UploaderEnv(os.environ["FLOE_BIN"], tmp_path, pki=pki)
    try:
        yield e
    finally:
        e.close()


class Audit(floe_mqtt.Subscriber):
    """Every batch the broker delivers, beside the uploader's shared subscription."""

    def __init__(self, env):
        super().__init__("127.0.0.1", env.broker.service_port, "floe/v1/+/batch",
                         tls=env.service().tls, prefix="audit")

    def batches(self):
        out = {}
        for m in list(self.messages):
            header, rows = wire_ref.decode(m.payload)
            out[(m.topic.split("/")[2], header["epoch"], header["seq"])] = (header["kind"], rows)
        return out


def lake(env, *args, check=True):
    p = subprocess.run([str(env.bindir / "floe-lake"), *map(str, args)], capture_output=True,
                       text=True, timeout=120)
    if check:
        assert p.returncode == 0, f"floe-lake {args}: {p.stderr}"
    return p


def table_args(env, table):
    return ["--warehouse", f"file://{env.warehouse}", "--catalog", env.catalog,
            "--table", f"floe.{table}"]


def avro_records(location):
    with open(location.removeprefix("file://"), "rb") as fh:
        return list(avro.datafile.DataFileReader(fh, avro.io.DatumReader()))


def reachable(md):
    """Every data file, manifest and manifest list the retained snapshots reach."""
    out = set()
    for snap in md["snapshots"]:
        out.add(snap["manifest-list"])
        for m in avro_records(snap["manifest-list"]):
            out.add(m["manifest_path"])
            out.update(e["data_file"]["file_path"] for e in avro_records(m["manifest_path"]))
    return out


def partition_of(path):
    return path.rsplit("/", 1)[0].split("/data/", 1)[1]


def live_per_partition(env, table, tenant=None):
    parts = (partition_of(f["file_path"]) for f in env.live_files(table))
    return Counter(p for p in parts if tenant is None or p.startswith(f"tenant={tenant}/"))


def event_key(r):
    return (r["tenant"], r["device"], r["sensor"], r["metric"], r["ts"], r["value"])


def agg_key(r):
    return (r["tenant"], r["device"], r["sensor"], r["metric"], r["window_start"], r["window_s"],
            r["count"])


def check_consistent(env, audit):
    """During ingest: each batch in the tables is there whole and once (the rows of a batch
    land in one commit: a compaction that lost or doubled rows shows), DuckDB reading every
    live file of the snapshot."""
    for table, key in (("events", event_key), ("aggregates", agg_key)):
        got = {}
        for r in env.table(table):
            batch = (f'{r["tenant"]}.{r["device"]}', r["batch_epoch"], r["batch_seq"])
            got.setdefault(batch, Counter())[key(r)] += 1
        assert got, table
        sent = audit.batches()  # after the read: the audit hears a batch after the uploader
        for batch, rows in got.items():
            kind, want = sent[batch]
            assert kind == table and rows == Counter(key(r) for r in want), batch


def check_exact(env, sent):
    """After ingest: each table holds the rows of the batches sent, each once."""
    want = {"events": Counter(), "aggregates": Counter()}
    for (_, epoch, seq), (kind, rows) in sent.items():
        key = event_key if kind == "events" else agg_key
        for r in rows:
            want[kind][key(r) + (epoch, seq)] += 1
    for table, key in (("events", event_key), ("aggregates", agg_key)):
        got = Counter(key(r) + (r["batch_epoch"], r["batch_seq"]) for r in env.table(table))
        assert got == want[table], (f"{table}: {sum((got - want[table]).values())} extra, "
                                    f"{sum((want[table] - got).values())} missing")
    return sum(want["events"].values())


def plant(path, age_s, data=b"PAR1 not a table file PAR1"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    t = time.time() - age_s
    os.utime(path, (t, t))
    return path


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what} not reached within {timeout}s"
        time.sleep(0.1)


@needs_node
def test_maintenance_beside_ingest(env, tmp_path):
    # the tables exist before the uploader (orphans planted first); few metadata files kept
    for table in ("events", "aggregates"):
        lake(env, "create", *table_args(env, table), "--floe", table,
             "--property", "write.metadata.previous-versions-max=5")
    data = env.table_dir("events") / "data"
    old_orphan = plant(data / "tenant=acme" / "ts_hour=2020-01-01-00" / "old.parquet", 2 * 3600)
    young_orphan = plant(data / "tenant=acme" / "ts_hour=2020-01-01-00" / "young.parquet",
                         30 * 60)
    up = env.uploader(buffer__interval="200ms", **{
        "maintenance__interval": "1s", "maintenance__compact_min_files": "4",
        "maintenance__compact_min_snapshots": "3", "maintenance__expire_max_age": "8s",
        "maintenance__expire_min_snapshots": "5", "maintenance__orphan_min_age": "1h"}).start()
    ids = ["acme.gw-0001", "acme.gw-0002", "zeta.gw-0003"]
    fleet = []
    with Audit(env) as audit:
        for ident in ids:
            a = Agent(Path(os.environ["FLOE_BIN"]) / "floe-agent", tmp_path / ident,
                      identity=ident, central=env.central, creds=env.device(ident),
                      extra={"board.sim": {"sensors": 2, "metrics": 2, "interval": "50ms"}})
            fleet.append(a.start())
        try:
            samples, reads, planted_meta, replaced = [], 0, None, False
            t_end = time.monotonic() + 16
            while time.monotonic() < t_end:
                m = up.metrics()
                samples.append((time.monotonic(),
                                m.get('floe_uploader_commits_total{table="events"}', 0),
                                m.get('floe_uploader_maintenance_files_compacted_total'
                                      '{table="events"}', 0),
                                max(a.metric("floe_agent_outbox_batches") for a in fleet)))
                meta = env.table_dir("events") / "metadata"
                # a metadata file a crash kept from deletion: v1 fell off the log long ago
                if planted_meta is None and not (meta / "v1.metadata.json").exists() and \
                        (meta / "v8.metadata.json").exists():
                    planted_meta = plant(meta / "v1.metadata.json", 0,
                                         (meta / "v8.metadata.json").read_bytes())
                # the replace snapshots say who made them
                replaced = replaced or any(
                    s["summary"].get("floe.maintenance", "").startswith("compact") and
                    s["summary"]["operation"] == "replace" for s in env.metadata()["snapshots"])
                # read while compactions and expiries commit: every row once
                if samples[-1][2] > 0 and reads < 2 and len(samples) % 12 == 0:
                    check_consistent(env, audit)
                    reads += 1
                time.sleep(0.25)
            for a in fleet:
                assert a.stop() == 0
            accepted = sum(a.metric("floe_agent_readings_accepted_total") for a in fleet)
            assert accepted > 500
            wait_until(lambda: len(env.table("events")) >= accepted, 60, "every event committed")
            time.sleep(1)
            sent = audit.batches()
        finally:
            for a in fleet:
                a.kill()
    # one more whole run after ingest stopped: what it compacts, expires and deletes is final
    runs = up.metric('floe_uploader_maintenance_runs_total{table="events",task="expire"}')
    wait_until(lambda: up.metric('floe_uploader_maintenance_runs_total{table="events",'
                                 'task="expire"}') >= runs + 2, 30, "two more maintenance runs")
    m = up.metrics()
    assert reads == 2
    assert check_exact(env, sent) == accepted

    # ingest went on while maintenance ran: commits every interval, the agents' windows open
    assert m['floe_uploader_maintenance_runs_total{table="events",task="compact"}'] >= 3
    longest, run = 0.0, 0.0
    for (ta, ca, *_), (tb, cb, *_) in zip(samples, samples[1:]):
        run = run + (tb - ta) if cb == ca else 0.0
        longest = max(longest, run)
    assert longest < 3.0, f"no commit for {longest:.1f}s while maintenance ran"
    assert max(s[3] for s in samples) < 8, "an agent's window filled: acks stalled"
    for table in ("events", "aggregates"):
        lt = f'{{table="{table}"}}'
        assert m[f"floe_uploader_maintenance_files_compacted_total{lt}"] > 0
        assert m[f"floe_uploader_maintenance_commits_total{lt}"] > 0
        assert m[f"floe_uploader_maintenance_snapshots_expired_total{lt}"] > 0
        for task in ("compact", "expire", "metadata", "orphans"):
            assert m[f'floe_uploader_maintenance_failures_total{{table="{table}",'
                     f'task="{task}"}}'] == 0

        # compaction: far fewer live files than the uploader committed, per partition too
        committed = m[f"floe_uploader_files_total{lt}"]
        per_part = live_per_partition(env, table)
        assert sum(per_part.values()) <= committed / 2, (per_part, committed)
        # below compact_min_files (4) of small files, the compacted one among them, or at most
        # two snapshots (compact_min_snapshots 3) since the last compaction
        assert max(per_part.values()) <= 5, per_part

        # expiry: old snapshots gone, and with them every file only they reached
        # (maintenance goes on: a run may expire a snapshot between reading the metadata and
        # its manifest list; read again then)
        for attempt in range(10):
            md = env.metadata(table)
            now_ms = time.time() * 1000
            try:
                keep = reachable(md)
                break
            except FileNotFoundError:
                assert attempt < 9, "the metadata kept naming deleted files"
                time.sleep(0.2)
        assert len(md["snapshots"]) >= 5
        assert all(now_ms - s["timestamp-ms"] < 60000 for s in md["snapshots"])
        on_disk = {f"file://{p}" for p in env.table_dir(table).rglob("*")
                   if p.is_file() and (p.suffix in (".parquet", ".avro"))}
        strays = sorted(on_disk - keep - {f"file://{young_orphan}"})
        assert not strays, f"{table}: {len(strays)} files no snapshot reaches: {strays[:3]}"
        if table == "events":  # (the aggregates commit too seldom for this in 16 s)
            written = committed + m[f"floe_uploader_maintenance_files_written_total{lt}"]
            data_on_disk = [p for p in on_disk if "/data/" in p]
            assert len(data_on_disk) < written / 2
            assert m['floe_uploader_maintenance_files_deleted_total{table="events",'
                     'task="expire"}'] > 0
        p = lake(env, "verify", *table_args(env, table))
        assert p.stdout.startswith("ok:"), p.stdout

    # orphans: the old one deleted, the young one (under orphan_min_age) kept
    assert not old_orphan.exists()
    assert young_orphan.exists()
    assert m['floe_uploader_maintenance_files_deleted_total{table="events",task="orphans"}'] == 1
    # the metadata file beyond the metadata-log went though it is new
    assert planted_meta is not None and not planted_meta.exists()
    assert m['floe_uploader_maintenance_files_deleted_total{table="events",task="metadata"}'] >= 1
    assert replaced

    compacted = up.metric('floe_uploader_maintenance_files_compacted_total{table="events"}')
    rc, out, _ = up.command("status")
    assert rc == 0
    lines = out.splitlines()
    head = next(i for i, x in enumerate(lines) if x.startswith("MAINTENANCE"))
    row = lines[head + 1].split()
    assert row[0] == "events" and row[1] in ("idle", "running") and row[4] == "UTC"
    assert int(row[5]) == compacted > 0
    assert up.stop() == 0
    assert "floe.events: compacted " in up.log_text()


def ndjson(hours, rows_per_hour, seq):
    out = []
    for h in range(hours):
        for i in range(rows_per_hour):
            out.append(json.dumps({"tenant": "acme", "device": "gw-1", "sensor": f"s{i % 3}",
                                   "metric": "t", "ts": T0 + h * HOUR_US + i * 1000,
                                   "value": seq * 1000 + i, "batch_seq": seq,
                                   "batch_epoch": 9}))
    return "\n".join(out) + "\n"


@needs_node
def test_sigterm_during_maintenance(env):
    hours = 60
    for table in ("events", "aggregates"):
        lake(env, "create", *table_args(env, table), "--floe", table)
    for seq in (1, 2, 3):
        src = env.base / f"rows-{seq}.ndjson"
        src.write_text(ndjson(hours, 20, seq))
        lake(env, "import", *table_args(env, "events"), src)
    before = Counter((r["ts"], r["batch_seq"]) for r in env.table("events"))
    assert len(before) == hours * 20 * 3
    assert set(live_per_partition(env, "events").values()) == {3}
    settings = {"maintenance__interval": "1s", "maintenance__compact_min_files": "2",
                "maintenance__compact_min_snapshots": "1", "maintenance__compact_step": "0",
                "buffer__stop_timeout": "20s", "buffer__interval": "200ms"}
    up = env.uploader(**settings).start()
    up.wait_metric("floe_uploader_maintenance_running", lambda v: v == 1, timeout=30)
    time.sleep(0.3)  # a few partitions in
    t0 = time.monotonic()
    up.signal(signal.SIGTERM)
    rc = up.proc.wait(timeout=20)
    took = time.monotonic() - t0
    assert rc == 0
    assert took < 5, f"exit took {took:.1f}s"
    log = up.log_text()
    assert "maintenance stopped at a safe point" in log, up.log_tail()
    up.proc = None
    # some partitions compacted, the rest left as they were: nothing lost, nothing twice
    per_part = live_per_partition(env, "events")
    assert set(per_part.values()) <= {1, 3}
    assert 3 in per_part.values(), "the whole compaction ran before SIGTERM took"
    assert Counter((r["ts"], r["batch_seq"]) for r in env.table("events")) == before
    assert lake(env, "verify", *table_args(env, "events")).stdout.startswith("ok:")

    # the next start finishes the job, and ingest goes on meanwhile: a batch sent while the
    # run is under way is committed and acknowledged long before the run ends
    up.start()
    up.wait_metric("floe_uploader_maintenance_running", lambda v: v == 1, timeout=30)
    with FakeAgent(env, "zeta.gw-0009") as dev:
        rows = [{"sensor": "x", "metric": "m", "ts": T0 + i, "value": 1.5} for i in range(5)]
        t0 = time.monotonic()
        dev.publish(env.encode(rows, "zeta.gw-0009", 5, 1))
        assert dev.wait_ack(5, 1, timeout=10)[0]["status"] == "ok"
        acked = time.monotonic() - t0
    m = up.metrics()
    assert m["floe_uploader_maintenance_running"] == 1, f"the run ended before the ack ({acked}s)"
    assert m['floe_uploader_maintenance_runs_total{table="events",task="compact"}'] == 0
    assert m['floe_uploader_commits_total{table="events"}'] == 1
    up.wait_metric('floe_uploader_maintenance_runs_total{table="events",task="compact"}',
                   lambda v: v >= 1, timeout=60)
    wait_until(lambda: set(live_per_partition(env, "events", "acme").values()) == {1}, 60,
               "every partition compacted")
    rows = env.table("events")
    assert Counter((r["ts"], r["batch_seq"]) for r in rows if r["tenant"] == "acme") == before
    assert sorted(r["ts"] for r in rows if r["tenant"] == "zeta") == [T0 + i for i in range(5)]
    assert up.stop() == 0


@needs_node
def test_tier_moves_beside_ingest(env, tmp_path):
    """[tier] with a file root: the maintenance thread moves partitions older than the tier's
    age there in replace snapshots while ingest goes on; every row is read once through
    whichever root holds its file, and expiry then deletes the warehouse's old copies."""
    cold = tmp_path / "cold"
    up = env.uploader(**{"maintenance__interval": "1s", "maintenance__compact": "false",
                         "maintenance__expire_max_age": "1s",
                         "maintenance__expire_min_snapshots": "1",
                         "buffer__interval": "200ms", "tier__root.1": f"file://{cold}",
                         "tier__age.1": "2h"}).start()
    now_us = int(time.time() * 1e6)
    sent = Counter()
    with FakeAgent(env, "acme.gw-0001") as dev:
        # 3 old hours (due for the cold tier) and the current hour (stays hot)
        for seq, base in enumerate([T0, T0 + HOUR_US, T0 + 2 * HOUR_US, now_us], start=1):
            rows = [{"sensor": "s", "metric": "m", "ts": base + i, "value": float(seq * 100 + i)}
                    for i in range(40)]
            dev.publish(env.encode(rows, "acme.gw-0001", 3, seq))
            assert dev.wait_ack(3, seq, timeout=30)[0]["status"] == "ok"
            sent.update((r["ts"], r["value"]) for r in rows)
        up.wait_metric('floe_uploader_maintenance_tier_files_total{table="events"}',
                       lambda v: v >= 3, timeout=60)
        # ingest goes on after the move: a batch of an old hour lands hot, moves at a later run
        rows = [{"sensor": "s", "metric": "m", "ts": T0 + 5, "value": 999.0}]
        dev.publish(env.encode(rows, "acme.gw-0001", 3, 5))
        assert dev.wait_ack(3, 5, timeout=30)[0]["status"] == "ok"
        sent.update((r["ts"], r["value"]) for r in rows)
    up.wait_metric('floe_uploader_maintenance_tier_files_total{table="events"}',
                   lambda v: v >= 4, timeout=60)

    def where():
        out = Counter()
        for f in env.live_files("events"):
            path = f["file_path"].removeprefix("file://")
            out["cold" if path.startswith(str(cold) + "/") else
                "hot" if path.startswith(str(env.warehouse) + "/") else path] += 1
            if path.startswith(str(cold) + "/"):
                assert "/ts_hour=" in path and os.path.exists(path), path
        return out

    assert where() == Counter({"cold": 4, "hot": 1})
    got = Counter((r["ts"], r["value"]) for r in env.table("events"))
    assert got == sent
    # the snapshots before the moves expire; the warehouse's copies of moved files go with them
    wait_until(lambda: not any((env.table_dir("events") / "data").rglob(f"ts_hour=2025-*/*")),
               60, "the hot copies of moved files deleted by expiry")
    assert Counter((r["ts"], r["value"]) for r in env.table("events")) == sent
    m = up.metrics()
    assert m['floe_uploader_maintenance_failures_total{table="events",task="tier"}'] == 0
    assert m['floe_uploader_maintenance_tier_bytes_total{table="events"}'] > 0
    assert m['floe_uploader_maintenance_files_deleted_total{table="events",task="expire"}'] >= 4
    assert "to colder tiers" in up.log_text()
    assert up.stop() == 0
    # what floe-lake verify finds through both roots, with the same [tier]
    p = lake(env, "verify", *table_args(env, "events"), "--tier-root", f"file://{cold}",
             "--age", "2h")
    assert p.stdout.startswith("ok:"), p.stdout + p.stderr
