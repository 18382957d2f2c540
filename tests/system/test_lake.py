"""floe-lake's table commands end to end (docs/lake.md): import, append, compact, verify, with
the table writer (uploader/iceberg/ice-writer.c) behind them, read back by independent readers.

- import of NDJSON and of floe batch files (made by floe-batch), read by icebird through a real
  loopback HTTP server (Python, with Range support) serving the warehouse, row for row; the
  manifests decoded by avsc and Debian's python3-avro with their field ids;
- the same on S3 (Ceph RGW, s3.py): commits by If-None-Match: * on vN.metadata.json, a second
  writer racing for the same version gets 412 and retries; files read back with DuckDB;
- several writers through the SQLite catalog and through PostgreSQL (pg.py): every append
  lands once, conflicts are retried and logged;
- kill -9 of floe-lake during commits: verify passes, the table reads at the old or the new
  snapshot, orphans finds what a dead commit left;
- append of DuckDB's Parquet files with and without field ids (name mapping), refusals;
- compact (a replace snapshot), then expire and orphans clean up.
"""

import http.server
import json
import os
import random
import shutil
import signal
import sqlite3
import struct
import subprocess
import threading
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pytest

from pg import pg_database, pg_server  # noqa: F401  (fixtures)
from s3 import ceph_s3  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parent.parent.parent
NODE_DIR = ROOT / "tests" / "node"
NODE = shutil.which("node")
HOUR_US = 3600 * 1000000
T0 = 1763676000000000  # 2025-11-20T22:00:00Z
COLS = ["tenant", "device", "sensor", "metric", "ts", "value", "text", "received_at",
        "batch_epoch", "batch_seq"]

needs_node = pytest.mark.skipif(
    NODE is None or not (NODE_DIR / "node_modules" / "icebird").is_dir(),
    reason="node and tests/node/node_modules (icebird, avsc, @duckdb/node-api) missing: run "
           "scripts/install-deps")


def node(script, *args, timeout=300):
    p = subprocess.run([NODE, script, *map(str, args)], cwd=NODE_DIR, capture_output=True,
                       text=True, timeout=timeout)
    assert p.returncode == 0, f"{script} failed:\n{p.stderr}"
    return json.loads(p.stdout)


class Lake:
    """floe-lake with common options: lake(*args, rc=0) -> stdout (stderr when rc != 0)."""

    def __init__(self, binary, common=(), env=None):
        self.binary, self.common, self.env = binary, list(common), env

    def cmd(self, command, *args):
        return [self.binary, command, *self.common, *map(str, args)]

    def __call__(self, command, *args, rc=0, input=None, timeout=300):
        p = subprocess.run(self.cmd(command, *args), capture_output=True, text=True,
                           input=input, timeout=timeout, env=self.env)
        assert p.returncode == rc, f"{command} {args}: rc {p.returncode}\n{p.stderr}"
        return p.stdout if rc == 0 else p.stderr

    def run(self, command, *args, input=None):
        return subprocess.run(self.cmd(command, *args), capture_output=True, text=True,
                              input=input, timeout=300, env=self.env)

    def spawn(self, command, *args, stdin=subprocess.DEVNULL):
        return subprocess.Popen(self.cmd(command, *args), stdin=stdin, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=self.env)

    def json_lines(self, command, *args):
        return [json.loads(x) for x in self(command, *args, "--json").splitlines()]


@pytest.fixture
def lake_bin():
    bindir = os.environ.get("FLOE_BIN")
    if not bindir:
        pytest.skip("FLOE_BIN is not set: run through `make system`")
    path = str(Path(bindir) / "floe-lake")
    if not os.access(path, os.X_OK):
        pytest.skip(f"floe-lake is not built ({path})")
    r = subprocess.run([path, "import", "--help"], capture_output=True, text=True)
    if "floe-lake import" not in r.stdout:
        pytest.skip("floe-lake has no import command")
    return path


def rows_for(seed, n, tenants=("acme", "zeta corp", "ünïcode"), hours=2, first_seq=0):
    """Rows of floe.events; timestamps in whole milliseconds (icebird reads milliseconds)."""
    rnd = random.Random(seed)
    rows = []
    for i in range(n):
        tenant = tenants[i % len(tenants)]
        ts = T0 + (i % hours) * HOUR_US + rnd.randrange(0, HOUR_US // 1000) * 1000
        rows.append({
            "tenant": tenant, "device": f"gw-{rnd.randint(1, 3):04d}",
            "sensor": rnd.choice(["boiler-3", "door", "a-sensor-with-a-rather-long-name"]),
            "metric": rnd.choice(["temp", "pressure"]), "ts": ts,
            "value": None if i % 9 == 4 else round(rnd.uniform(-50, 150), 3),
            "text": "open" if i % 13 == 2 else None,
            "received_at": ts + 5000000, "batch_epoch": 0x7edcba9876543210,
            "batch_seq": first_seq + i})
    return rows


def ndjson(rows):
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def as_micros(v):
    """icebird gives timestamps as ISO strings with milliseconds."""
    return int(datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp() * 1000) * 1000


def canonical(rows, iso=False):
    out = []
    for r in rows:
        ts, rec = r["ts"], r["received_at"]
        if iso:
            ts, rec = as_micros(ts), as_micros(rec)
        out.append((r["tenant"], int(ts), r["device"], r["sensor"], r["metric"], r["value"],
                    r["text"], int(rec), int(r["batch_epoch"]), int(r["batch_seq"])))
    return sorted(out)


def hour_name(us):
    return datetime.fromtimestamp(us // HOUR_US * 3600, timezone.utc).strftime("%Y-%m-%d-%H")


class Warehouse:
    """A file:// warehouse with a config file naming it ([lake] warehouse, namespace)."""

    def __init__(self, lake_bin, tmp_path, catalog=None, extra=""):
        self.dir = tmp_path / "wh"
        self.dir.mkdir()
        self.url = f"file://{self.dir}"
        self.table_dir = self.dir / "floe" / "events"
        self.loc = f"{self.url}/floe/events"
        self.conf = tmp_path / "lake.conf"
        text = f"[lake]\nwarehouse = {self.url}\nnamespace = floe\nfsync = false\n"
        if catalog:
            text += f"catalog = {catalog}\n"
        self.conf.write_text(text + extra)
        self.lake = Lake(lake_bin, ["--config", self.conf])

    def metadata(self):
        v = (self.table_dir / "metadata" / "version-hint.text").read_text()
        return json.loads((self.table_dir / "metadata" / f"v{v}.metadata.json").read_text())

    def files(self):
        return self.lake.json_lines("files", "--table", "events")

    def snapshots(self):
        return self.lake.json_lines("snapshots", "--table", "events")


class RangeHandler(http.server.BaseHTTPRequestHandler):
    """GET and HEAD of files under the server's root, with single byte ranges (RFC 9110
    §14), as object stores answer. The request path is the object key, taken literally (no
    percent-decoding: keys hold Iceberg's form-encoded partition names)."""

    root = None
    log = None

    def _serve(self, body):
        path = self.root / self.path.split("?", 1)[0].lstrip("/")
        try:
            data = path.read_bytes() if path.resolve().is_relative_to(self.root) else None
        except (FileNotFoundError, IsADirectoryError):
            data = None
        rng = self.headers.get("Range")
        self.log.append((self.command, self.path, rng))
        if data is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        status, start, end = 200, 0, len(data) - 1
        if rng:
            a, b = rng.removeprefix("bytes=").split("-")
            if a == "":
                start = max(0, len(data) - int(b))
            else:
                start, end = int(a), min(end, int(b)) if b else end
            status = 206
        chunk = data[start:end + 1]
        self.send_response(status)
        self.send_header("Content-Length", str(len(chunk)))
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        self.end_headers()
        if body:
            self.wfile.write(chunk)

    def do_GET(self):  # noqa: N802
        self._serve(True)

    def do_HEAD(self):  # noqa: N802
        self._serve(False)

    def log_message(self, *args):
        pass


class HttpWarehouse:
    def __init__(self, root):
        handler = type("H", (RangeHandler,), {"root": Path(root).resolve(), "log": []})
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.log = handler.log
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def http_server():
    servers = []

    def start(root):
        s = HttpWarehouse(root)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.close()


def icebird_http(http_server, wh, table="events"):
    """Every row of floe.<table> as icebird reads it from the warehouse served over HTTP."""
    srv = http_server(wh.dir)
    got = node("icebird-http.mjs", f"{srv.base}/floe/{table}", "--map", f"{wh.url}/={srv.base}/")
    assert all(s in (200, 206) for s in got["statuses"]), got["statuses"]
    assert any(rng for _, _, rng in srv.log), "icebird read no byte ranges"
    assert got["fetched"][0].endswith(f"/floe/{table}/metadata/version-hint.text")
    return got["rows"]


def le64(v):
    return struct.pack("<q", v).hex()


# -- import ---------------------------------------------------------------------------------------

@needs_node
def test_import_ndjson_read_over_http(lake_bin, tmp_path, http_server):
    """One import, one commit: a file per partition; icebird reads every row back through a
    real HTTP server; the manifests decode with avsc with their field ids and bounds cut to 16
    characters (truncate(16), the default metrics mode)."""
    from test_avro_iceberg import check_list_schema, check_manifest_schema

    wh = Warehouse(lake_bin, tmp_path)
    assert wh.lake("create", "--table", "events", "--floe", "events").strip() == \
        f"{wh.loc}/metadata/v1.metadata.json"
    rows = rows_for(1, 300)
    (tmp_path / "rows.ndjson").write_text(ndjson(rows))
    out = wh.lake.json_lines("import", "--table", "events", tmp_path / "rows.ndjson")
    parts = {(r["tenant"], r["ts"] // HOUR_US) for r in rows}
    assert out == [{"table": "floe.events", "snapshot-id": out[0]["snapshot-id"],
                    "files": len(parts), "records": len(rows), "bytes": out[0]["bytes"],
                    "retries": 0}]
    assert len(wh.snapshots()) == 1
    got = icebird_http(http_server, wh)
    assert canonical(got, iso=True) == canonical(rows)

    # manifests: avsc, field ids, partitions, bounds
    avro_files = sorted(str(p) for p in (wh.table_dir / "metadata").glob("*.avro"))
    dumped = node("avro-dump.mjs", *avro_files)
    entries = []
    for f in dumped:
        if f["schema"]["name"] == "manifest_entry":
            check_manifest_schema(f["schema"])
            entries += f["records"]
        else:
            check_list_schema(f["schema"])
    assert len(entries) == len(parts)
    for e in entries:
        df = e["data_file"]
        mine = [r for r in rows if (r["tenant"], r["ts"] // HOUR_US) ==
                (df["partition"]["tenant"], df["partition"]["ts_hour"])]
        assert int(df["record_count"]) == len(mine)
        path = df["file_path"][len("file://"):]
        assert int(df["file_size_in_bytes"]) == os.path.getsize(path)
        assert "/data/tenant=" in path and f"/ts_hour={hour_name(mine[0]['ts'])}/" in path
        lower = {kv["key"]: kv["value"]["hex"] for kv in df["lower_bounds"]}
        upper = {kv["key"]: kv["value"]["hex"] for kv in df["upper_bounds"]}
        assert lower[5] == le64(min(r["ts"] for r in mine))
        assert upper[5] == le64(max(r["ts"] for r in mine))
        sensors = sorted(r["sensor"].encode() for r in mine)
        assert bytes.fromhex(lower[3]) == sensors[0][:16]
        if len(sensors[-1]) > 16:  # cut to 16 characters, the last one incremented
            assert bytes.fromhex(upper[3]) == sensors[-1][:15] + bytes([sensors[-1][15] + 1])
        nulls = {kv["key"]: int(kv["value"]) for kv in df["null_value_counts"]}
        assert nulls[6] == sum(r["value"] is None for r in mine)

    # the same manifests through Debian's python3-avro
    try:
        import avro.datafile
        import avro.io
    except ImportError:
        return
    import warnings
    seen = 0
    for path in avro_files:
        with open(path, "rb") as fh, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reader = avro.datafile.DataFileReader(fh, avro.io.DatumReader())
            schema = json.loads(reader.meta["avro.schema"])
            ids = {f["name"]: f["field-id"] for f in schema["fields"]}
            for rec in reader:
                if schema["name"] == "manifest_entry":
                    assert ids["data_file"] == 2 and ids["status"] == 0
                    assert rec["status"] == 1
                    seen += rec["data_file"]["record_count"]
                else:
                    assert ids["manifest_path"] == 500
                    assert rec["added_rows_count"] == len(rows)
    assert seen == len(rows)


@needs_node
def test_import_batches(lake_bin, floe_bin, tmp_path, http_server):
    """Batch files (the agent's wire format, made by floe-batch) go to floe.events and
    floe.aggregates, created on first use; rows carry the batch's epoch and sequence."""
    wh = Warehouse(lake_bin, tmp_path)
    ev = rows_for(2, 40, tenants=("acme",))
    for r in ev:
        del r["received_at"], r["batch_epoch"], r["batch_seq"]
        r["device"] = "gw-0001"  # one batch: one device
        if r["text"] is None:
            del r["text"]  # the batch form has no null texts, only absent ones
    (tmp_path / "ev.ndjson").write_text(ndjson(ev))
    agg = [{"tenant": "acme", "device": "gw-0001", "sensor": "door", "metric": "open",
            "window_start": T0 + i * 60000000, "window_s": 60, "count": i + 1, "sum": i * 2.5,
            "min": None if i == 3 else -1.0, "max": 9.0, "first": 0.5, "last": 1.5}
           for i in range(12)]
    (tmp_path / "agg.ndjson").write_text(ndjson(agg))
    for name, kind, epoch, seq in (("ev", "events", 2**64 - 2, 41), ("agg", "aggregates", 7, 3)):
        p = subprocess.run([floe_bin("floe-batch"), "encode", "--kind", kind, "--identity",
                            "acme.gw-0001", "--epoch", str(epoch), "--seq", str(seq), "-o",
                            str(tmp_path / f"{name}.batch"), str(tmp_path / f"{name}.ndjson")],
                           capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
    before = time.time()
    out = wh.lake.json_lines("import", tmp_path / "ev.batch", tmp_path / "agg.batch")
    assert sorted((o["table"], o["records"]) for o in out) == [("floe.aggregates", 12),
                                                               ("floe.events", 40)]
    got = icebird_http(http_server, wh)
    assert len(got) == len(ev)
    for r in got:
        assert int(r["batch_epoch"]) == 2**64 - 2 - 2**64  # the u64's bits as a long
        assert int(r["batch_seq"]) == 41
        assert before - 5 <= as_micros(r["received_at"]) / 1e6 <= time.time() + 5
    want = sorted((r["tenant"], r["ts"], r["sensor"], r["value"], r.get("text")) for r in ev)
    assert sorted((r["tenant"], as_micros(r["ts"]), r["sensor"], r["value"], r["text"])
                  for r in got) == want
    got = icebird_http(http_server, wh, "aggregates")
    assert sorted((as_micros(r["window_start"]), int(r["count"]), r["min"]) for r in got) == \
        sorted((a["window_start"], a["count"], a["min"]) for a in agg)
    schema = json.loads(wh.lake("schema", "--table", "aggregates", "--json"))
    assert [(f["field-id"], f["transform"]) for f in schema["partition-spec"]] == \
        [(1000, "identity"), (1001, "day")]
    # a batch of the wrong kind for the named table
    err = wh.lake("import", "--table", "aggregates", tmp_path / "ev.batch", rc=1)
    assert "the table has no column" in err


def test_config_and_errors(lake_bin, tmp_path):
    wh = Warehouse(lake_bin, tmp_path)
    wh.lake("create", "--table", "events", "--floe", "events")
    # -c before the command, the table named without its namespace
    p = subprocess.run([lake_bin, "-c", str(wh.conf), "schema", "--table", "events", "--json"],
                       capture_output=True, text=True)
    assert p.returncode == 0 and json.loads(p.stdout)["schema"]["fields"][0]["name"] == "tenant"
    bad = tmp_path / "bad.conf"
    bad.write_text("[lake]\nwarehouse = file:///x\nbogus = 1\n")
    p = subprocess.run([lake_bin, "-c", str(bad), "files", "--table", "events"],
                       capture_output=True, text=True)
    assert p.returncode == 2 and f"{bad}:3" in p.stderr
    # NDJSON: unknown columns, wrong types and missing required values name the line
    (tmp_path / "x.ndjson").write_text('{"tenant":"a","device":"d","sensor":"s","metric":"m",'
                                       '"ts":1}\n{"tenant":"a","nope":1}\n')
    assert "x.ndjson:2: nope: no such column" in \
        wh.lake("import", "--table", "events", tmp_path / "x.ndjson", rc=1)
    (tmp_path / "y.ndjson").write_text('{"tenant":"a","device":"d","sensor":"s","metric":"m",'
                                       '"ts":"soon"}\n')
    assert "y.ndjson:1: ts: not a timestamptz" in \
        wh.lake("import", "--table", "events", tmp_path / "y.ndjson", rc=1)
    (tmp_path / "z.ndjson").write_text('{"tenant":"a","sensor":"s","metric":"m","ts":1}\n')
    assert "z.ndjson:1: device: required" in \
        wh.lake("import", "--table", "events", tmp_path / "z.ndjson", rc=1)
    assert not list((wh.table_dir / "data").rglob("*.parquet")) if \
        (wh.table_dir / "data").exists() else True
    assert wh.snapshots() == []
    # NDJSON needs a table; a table that is not there
    assert "need --table" in wh.lake("import", tmp_path / "x.ndjson", rc=1)
    assert "floe.nope" in wh.lake("import", "--table", "nope", tmp_path / "x.ndjson", rc=1)


# -- S3 -------------------------------------------------------------------------------------------

def s3_lake(lake_bin, ceph_s3, tmp_path, bucket):
    conf = tmp_path / "s3.conf"
    conf.write_text(f"[lake]\nwarehouse = s3://{bucket}/wh\nnamespace = floe\n"
                    f"[s3]\nendpoint = {ceph_s3.endpoint}\nregion = {ceph_s3.region}\n"
                    "path_style = true\nretries = 2\n")
    return Lake(lake_bin, ["--config", conf], env=ceph_s3.env())


def wait_line(stream, text, timeout=60):
    """Reads lines of a child's stderr until one contains text; returns what was read."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        seen.append(line)
        if text in line:
            return "".join(seen)
    raise AssertionError(f"no {text!r} from the child: {''.join(seen)}")


@needs_node
def test_s3_commits_race_and_read_back(lake_bin, ceph_s3, tmp_path):
    bucket = ceph_s3.new_bucket()
    lake = s3_lake(lake_bin, ceph_s3, tmp_path, bucket)
    lake("create", "--table", "events", "--floe", "events")
    first, second, third = rows_for(3, 120), rows_for(4, 60, first_seq=1000), \
        rows_for(5, 50, first_seq=2000)
    (tmp_path / "a.ndjson").write_text(ndjson(first))
    (tmp_path / "b.ndjson").write_text(ndjson(second))
    lake("import", "--table", "events", tmp_path / "a.ndjson")
    # B opens the table at v2 and reads its rows from a pipe; A commits v3 meanwhile; B's
    # PUT of v3.metadata.json with If-None-Match: * gets 412: B reloads and commits v4
    b = lake.spawn("import", "--table", "events", "-v", "--json", "-", stdin=subprocess.PIPE)
    wait_line(b.stderr, "opened floe.events at")
    lake("import", "--table", "events", tmp_path / "b.ndjson")
    out, err = b.communicate(ndjson(third), timeout=300)
    assert b.returncode == 0, err
    assert "commit conflict, retry 1:" in err and "v3.metadata.json" in err
    assert json.loads(out)["retries"] == 1
    snaps = lake.json_lines("snapshots", "--table", "events")
    assert len(snaps) == 3 and all(s["parent-snapshot-id"] == p["snapshot-id"]
                                   for p, s in zip(snaps, snaps[1:]))
    # the server itself refuses to replace a metadata file
    st, _, _ = ceph_s3.client.request("PUT", bucket, "wh/floe/events/metadata/v3.metadata.json",
                                      body=b"{}", headers={"If-None-Match": "*"})
    assert st == 412
    assert "ok:" in lake("verify", "--table", "events")
    # every file back through `floe-lake store get`, read by DuckDB
    store = [lake_bin, "store", "--endpoint", ceph_s3.endpoint, "--region", ceph_s3.region,
             "--path-style", f"s3://{bucket}"]
    local = []
    for i, f in enumerate(lake.json_lines("files", "--table", "events")):
        key = f["file_path"][len(f"s3://{bucket}/"):]
        dst = tmp_path / f"f{i}.parquet"
        p = subprocess.run([*store, "get", key, str(dst)], capture_output=True,
                           env=ceph_s3.env())
        assert p.returncode == 0, p.stderr
        assert dst.stat().st_size == f["file_size_in_bytes"]
        local.append(dst)
    got = node("duckdb-scan.mjs", "--micros", "ts,received_at", *local)
    assert canonical(got["rows"]) == canonical(first + second + third)
    assert [int(x["field_id"]) for x in got["field_ids"]] == list(range(1, 11))


# -- concurrency through the SQL catalogs ---------------------------------------------------------

@pytest.fixture(params=["sqlite", "postgresql"])
def catalog_wh(request, lake_bin, tmp_path):
    if request.param == "sqlite":
        loc = str(tmp_path / "catalog.db")
    else:
        loc = request.getfixturevalue("pg_database").uri
    wh = Warehouse(lake_bin, tmp_path, catalog=loc)
    wh.kind, wh.catalog = request.param, loc
    if request.param == "postgresql":
        wh.db = request.getfixturevalue("pg_database")
    wh.lake("create", "--table", "events", "--floe", "events", "--property",
            "commit.retry.num-retries=30", "--property", "commit.retry.min-wait-ms=20")
    return wh


def hold_catalog_lock(wh):
    """Blocks catalog commits: returns release(). SQLite: a write transaction; PostgreSQL: the
    table's row locked FOR UPDATE by a psql session."""
    if wh.kind == "sqlite":
        con = sqlite3.connect(wh.catalog, isolation_level=None, timeout=10)
        con.execute("BEGIN IMMEDIATE")

        def release():
            con.execute("ROLLBACK")
            con.close()
        return release
    p = wh.db.server.psql_background(
        "BEGIN; SELECT 1 FROM iceberg_tables FOR UPDATE; SELECT pg_sleep(30); COMMIT;",
        db=wh.db.name)
    deadline = time.monotonic() + 10
    while int(wh.db.psql("SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = "
                         "l.relation WHERE c.relname = 'iceberg_tables' AND "
                         "l.mode = 'RowShareLock'")) == 0:
        assert time.monotonic() < deadline, "psql did not lock the row"
        time.sleep(0.05)

    def release():
        wh.db.psql("SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE "
                   "'%pg_sleep(30)%' AND pid <> pg_backend_pid()")
        p.wait(timeout=30)
    return release


def test_concurrent_writers(catalog_wh, tmp_path):
    wh = catalog_wh
    # 1. a certain conflict: two writers load v1, both block at the catalog's commit, the one
    #    that goes second finds the location changed, reloads and commits again
    a = wh.lake.spawn("import", "--table", "events", "-v", "--json", "-", stdin=subprocess.PIPE)
    b = wh.lake.spawn("import", "--table", "events", "-v", "--json", "-", stdin=subprocess.PIPE)
    for p in (a, b):
        wait_line(p.stderr, "opened floe.events at")
    release = hold_catalog_lock(wh)
    try:
        for p, seed in ((a, 10), (b, 11)):
            p.stdin.write(ndjson(rows_for(seed, 30, first_seq=seed * 1000)))
            p.stdin.close()
        deadline = time.monotonic() + 60
        while len(list((wh.table_dir / "metadata").glob("v*.metadata.json"))) < 3:
            assert time.monotonic() < deadline, "the writers did not reach their commits"
            assert a.poll() is None and b.poll() is None, "a writer ended early"
            time.sleep(0.05)
    finally:
        release()
    results = []
    for p in (a, b):
        out = p.stdout.read()
        err = p.stderr.read()
        assert p.wait(timeout=120) == 0, err
        results.append((json.loads(out), err))
    retried = [err for o, err in results if o["retries"] > 0]
    assert len(retried) == 1, results
    assert "commit conflict, retry 1: catalog: committed by someone else" in retried[0]

    # 2. four writers, three imports each, all at once: every append lands exactly once
    def work(w):
        for k in range(3):
            seq = 100000 + w * 1000 + k * 100
            r = wh.lake.run("import", "--table", "events", "-",
                            input=ndjson(rows_for(w * 10 + k, 20, first_seq=seq)))
            assert r.returncode == 0, r.stderr

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    snaps = wh.snapshots()
    assert len(snaps) == 2 + 12
    assert [s["sequence-number"] for s in snaps] == list(range(1, 15))
    assert int(snaps[-1]["summary"]["total-records"]) == 60 + 12 * 20
    listed = [f["file_path"] for f in wh.files()]
    assert len(listed) == len(set(listed))
    got = node("duckdb-scan.mjs", *(f[len("file://"):] for f in listed)) if NODE else None
    if got:
        seqs = Counter(int(r["batch_seq"]) for r in got["rows"])
        assert all(c == 1 for c in seqs.values()) and len(seqs) == 60 + 240
    assert "ok:" in wh.lake("verify", "--table", "events")
    if wh.kind == "sqlite":
        con = sqlite3.connect(wh.catalog)
        loc, = con.execute("SELECT metadata_location FROM iceberg_tables").fetchone()
        con.close()
        assert json.loads(Path(loc[len("file://"):]).read_text())["current-snapshot-id"] == \
            snaps[-1]["snapshot-id"]


# -- crashes --------------------------------------------------------------------------------------

@needs_node
def test_kill_during_commits(lake_bin, tmp_path, http_server):
    """kill -9 at random points of small imports (SQLite catalog): after each, verify passes and
    the table holds exactly the imports that reported success or were found committed; a commit
    killed while blocked at the catalog leaves only orphans, which `orphans` lists."""
    wh = Warehouse(lake_bin, tmp_path, catalog=str(tmp_path / "catalog.db"))
    wh.lake("create", "--table", "events", "--floe", "events")
    batches = {}
    # a known point first: everything written, the catalog's commit blocked, then killed
    wh.kind, wh.catalog = "sqlite", str(tmp_path / "catalog.db")
    release = hold_catalog_lock(wh)
    p = wh.lake.spawn("import", "--table", "events", "-", stdin=subprocess.PIPE)
    p.stdin.write(ndjson(rows_for(99, 30, first_seq=990000)))
    p.stdin.close()
    deadline = time.monotonic() + 60
    while not (wh.table_dir / "metadata" / "v2.metadata.json").exists():
        assert time.monotonic() < deadline and p.poll() is None
        time.sleep(0.02)
    p.send_signal(signal.SIGKILL)
    p.wait()
    release()
    orphans = wh.lake("orphans", "--table", "events", "--older-than", "0").split()
    assert f"{wh.loc}/metadata/v2.metadata.json" in orphans
    assert sum("/data/" in o for o in orphans) == len({(r["tenant"], r["ts"] // HOUR_US)
                                                        for r in rows_for(99, 30)})
    assert wh.snapshots() == []

    # then random points
    t0 = time.monotonic()
    wh.lake("import", "--table", "events", "-", input=ndjson(rows_for(0, 30)))
    batches[0] = rows_for(0, 30)
    span = time.monotonic() - t0
    rnd = random.Random(7)
    outcomes = Counter()
    for i in range(1, 25):
        rows = rows_for(i, 30, first_seq=i * 1000)
        before = int((wh.snapshots() or [{"summary": {"total-records": "0"}}])[-1]["summary"]
                     ["total-records"])
        p = wh.lake.spawn("import", "--table", "events", "-", stdin=subprocess.PIPE)
        p.stdin.write(ndjson(rows))
        p.stdin.close()
        time.sleep(rnd.uniform(0, span * 1.3))
        p.send_signal(signal.SIGKILL)
        rc = p.wait()
        out = wh.lake("verify", "--table", "events")
        assert out.startswith("ok:"), out
        after = int(wh.snapshots()[-1]["summary"]["total-records"])
        assert after in (before, before + 30), (before, after)
        if rc == 0:
            assert after == before + 30
        if after == before + 30:
            batches[i] = rows
        outcomes[(rc == 0, after > before)] += 1
    print("kill outcomes (finished, committed):", dict(outcomes))
    # killed before its commit and after it, both seen
    assert outcomes[(False, False)] and outcomes[(False, True)] + outcomes[(True, True)]
    want = [r for rows in batches.values() for r in rows]
    got = icebird_http(http_server, wh)
    assert canonical(got, iso=True) == canonical(want)
    # orphans: never a file the table references
    referenced = {f["file_path"] for f in wh.lake.json_lines("files", "--table", "events",
                                                             "--all")}
    orphans = wh.lake("orphans", "--table", "events", "--older-than", "0", "--delete").split()
    assert not referenced & set(orphans)
    assert wh.lake("verify", "--table", "events").startswith("ok:")
    assert canonical(icebird_http(http_server, wh), iso=True) == canonical(want)


# -- append ---------------------------------------------------------------------------------------

def duckdb_files(tmp_path, rows):
    """The rows as DuckDB's Parquet: with field ids, without, and with a wrong one."""
    (tmp_path / "in.json").write_text(json.dumps(rows))
    ids = ", ".join(f"{c}: {i}" for i, c in enumerate(COLS, 1))
    src = (f"SELECT tenant, device, sensor, metric, make_timestamptz(ts::BIGINT) AS ts, "
           f"value::DOUBLE AS value, text::VARCHAR AS text, "
           f"make_timestamptz(received_at::BIGINT) AS received_at, "
           f"batch_epoch::BIGINT AS batch_epoch, batch_seq::BIGINT AS batch_seq "
           f"FROM read_json('{tmp_path / 'in.json'}', format = 'array', columns = {{"
           "tenant: 'VARCHAR', device: 'VARCHAR', sensor: 'VARCHAR', metric: 'VARCHAR', "
           "ts: 'BIGINT', value: 'DOUBLE', text: 'VARCHAR', received_at: 'BIGINT', "
           "batch_epoch: 'BIGINT', batch_seq: 'BIGINT'})")
    node("duckdb-sql.mjs", f"CREATE TABLE t AS {src}",
         f"COPY t TO '{tmp_path / 'ids.parquet'}' (FORMAT parquet, FIELD_IDS {{{ids}}})",
         f"COPY t TO '{tmp_path / 'noids.parquet'}' (FORMAT parquet)",
         f"COPY t TO '{tmp_path / 'wrong.parquet'}' (FORMAT parquet, FIELD_IDS "
         f"{{{ids.replace('batch_seq: 10', 'batch_seq: 42')}}})",
         f"COPY (SELECT * EXCLUDE (device) FROM t) TO '{tmp_path / 'short.parquet'}' "
         "(FORMAT parquet)",
         f"COPY (SELECT * REPLACE (ts::TIMESTAMP AS ts) FROM t) TO "
         f"'{tmp_path / 'naive.parquet'}' (FORMAT parquet)",
         "SELECT 1")


@needs_node
def test_append_duckdb_files(lake_bin, tmp_path, http_server):
    wh = Warehouse(lake_bin, tmp_path)
    wh.lake("create", "--table", "events", "--floe", "events")
    rows = rows_for(20, 80, tenants=("acme",), hours=1)
    duckdb_files(tmp_path, rows)
    sid = int(wh.lake("append", "--table", "events", tmp_path / "ids.parquet",
                      tmp_path / "noids.parquet"))
    md = wh.metadata()
    assert md["current-snapshot-id"] == sid
    mapping = json.loads(md["properties"]["schema.name-mapping.default"])
    assert [(m["field-id"], m["names"]) for m in mapping] == \
        [(i, [c]) for i, c in enumerate(COLS, 1)]
    files = wh.files()
    assert len(files) == 2
    for f in files:  # copied into the table, under the partition
        assert f["file_path"].startswith(f"{wh.loc}/data/tenant=acme/ts_hour=")
        assert f["partition"] == {"tenant": "acme", "ts_hour": hour_name(rows[0]["ts"])}
        assert f["record_count"] == 80
        assert os.path.getsize(f["file_path"][7:]) == f["file_size_in_bytes"]
    got = icebird_http(http_server, wh)
    assert canonical(got, iso=True) == canonical(rows + rows)
    got = node("duckdb-scan.mjs", "--micros", "ts,received_at",
               *(f["file_path"][7:] for f in files))
    assert canonical(got["rows"]) == canonical(rows + rows)
    # refused, with the reason, and nothing committed
    for name, why in (("wrong", "field id 42 is not in the table schema"),
                      ("short", "required field device (id 2) is not in the file"),
                      ("naive", "cannot be read as timestamptz")):
        err = wh.lake("append", "--table", "events", tmp_path / f"{name}.parquet", rc=1)
        assert why in err, err
    assert len(wh.snapshots()) == 1
    assert len(list((wh.table_dir / "data").rglob("*.parquet"))) == 2
    # in place: a file already in the warehouse is registered where it is
    inside = wh.dir / "incoming" / "x.parquet"
    inside.parent.mkdir()
    shutil.copy(tmp_path / "ids.parquet", inside)
    wh.lake("append", "--table", "events", "--in-place", f"{wh.url}/incoming/x.parquet")
    assert f"{wh.url}/incoming/x.parquet" in [f["file_path"] for f in wh.files()]
    err = wh.lake("append", "--table", "events", "--in-place", tmp_path / "ids.parquet", rc=1)
    assert "not in the warehouse" in err
    assert wh.lake("verify", "--table", "events").startswith("ok:")


# -- compact, expire, orphans ---------------------------------------------------------------------

@needs_node
def test_compact_expire_orphans(lake_bin, tmp_path, http_server):
    wh = Warehouse(lake_bin, tmp_path)
    wh.lake("create", "--table", "events", "--floe", "events")
    rows = []
    for k in range(4):
        part = rows_for(30 + k, 40, tenants=("acme", "zeta"), hours=1, first_seq=k * 100)
        rows += part
        wh.lake("import", "--table", "events", "-", input=ndjson(part))
    assert len(wh.files()) == 8
    old = {f["file_path"] for f in wh.files()}
    out = json.loads(wh.lake("compact", "--table", "events", "--json"))
    assert (out["partitions"], out["files-in"], out["files-out"], out["rows"]) == (2, 8, 2, 160)
    snaps = wh.snapshots()
    assert snaps[-1]["summary"]["operation"] == "replace"
    assert snaps[-1]["summary"]["deleted-data-files"] == "8"
    assert snaps[-1]["summary"]["added-data-files"] == "2"
    assert snaps[-1]["summary"]["total-records"] == "160"
    files = wh.files()
    assert len(files) == 2 and not old & {f["file_path"] for f in files}
    assert canonical(icebird_http(http_server, wh), iso=True) == canonical(rows)
    assert wh.lake("verify", "--table", "events").startswith("ok:")
    # the old files stay until expiry, which removes them; orphans then finds nothing
    assert all(Path(p[7:]).exists() for p in old)
    gone = wh.lake("expire", "--table", "events", "--older-than", "0", "--retain-last",
                   "1").split()
    assert old <= set(gone)
    assert not any(Path(p[7:]).exists() for p in old)
    assert wh.lake("orphans", "--table", "events", "--older-than", "0").split() == []
    assert wh.lake("verify", "--table", "events").startswith("ok:")
    assert canonical(icebird_http(http_server, wh), iso=True) == canonical(rows)
    # one partition only
    more = rows_for(50, 10, ("acme", "zeta"), 1)
    wh.lake("import", "--table", "events", "-", input=ndjson(more))
    out = json.loads(wh.lake("compact", "--table", "events", "--json", "--partition",
                             f"tenant=acme/ts_hour={hour_name(T0)}"))
    assert (out["partitions"], out["files-in"], out["files-out"]) == (1, 2, 1)
    assert json.loads(wh.lake("compact", "--table", "events", "--json", "--min-files",
                              "3"))["snapshot-id"] == 0


def test_verify_names_what_is_wrong(lake_bin, tmp_path):
    wh = Warehouse(lake_bin, tmp_path)
    wh.lake("create", "--table", "events", "--floe", "events")
    for k in range(2):
        wh.lake("import", "--table", "events", "-",
                input=ndjson(rows_for(60 + k, 20, ("acme",), 1, first_seq=k * 100)))
    out = wh.lake("verify", "--table", "events")
    assert out.startswith("ok: 2 snapshots, 2 manifest lists, 2 manifests, 2 files, 40 records")
    f1, f2 = (f["file_path"][7:] for f in wh.files())
    data = Path(f1).read_bytes()
    Path(f1).write_bytes(data[:-1] + b"X")  # same size, no footer
    err = wh.lake("verify", "--table", "events", rc=1)
    assert f"{f1}: no Parquet footer" in err
    Path(f1).write_bytes(data)
    os.unlink(f2)
    err = wh.lake("verify", "--table", "events", rc=1)
    assert f"{f2}: missing" in err and "1 problems" in err
    manifest = next((wh.table_dir / "metadata").glob("*-m0.avro"))
    manifest.write_bytes(manifest.read_bytes() + b"x")
    err = wh.lake("verify", "--table", "events", rc=1)
    assert f"{manifest}: " in err and "the manifest list says" in err
