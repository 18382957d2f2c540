"""Iceberg tables written by floe, read by independent implementations.

A floe.events table (DESIGN.md) is created and filled through the Iceberg CLI (ice_cli:
create, add-files with the reports of `floe-lake parquet-write`); then
- its manifests and manifest lists are decoded by avsc (a strict Avro reader, tests/node) and
  by Debian's python3-avro: header keys, the "field-id"/"element-id" attributes of the embedded
  schemas and every value are checked against what was written;
- icebird reads the whole table (version-hint.text, metadata, manifests, Parquet) and DuckDB
  reads the files the manifests list: both give back exactly the rows written;
- concurrent commits from several processes all land.
The reference tables written by Spark, Java and Athena (tests/data/iceberg-tables, or
$FLOE_ICEBERG_TABLES) are read by our reader: per snapshot, the live files match the summary.

The CLI is `floe-lake snapshots|files|schema|create|add-files` once floe-lake routes those
commands to ice_cli(); until then a two-line driver around ice_cli() is linked from the
build's static libraries."""
import json
import os
import random
import shutil
import struct
import subprocess
import sys
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
NODE_DIR = ROOT / "tests" / "node"
NODE = shutil.which("node")
PKGS = "libcbor libzstd libsystemd jansson libmosquitto openssl sqlite3 libpq libcurl zlib"
HOUR_US = 3600 * 1000000
T0 = 1763676000000000  # 2025-11-20T22:00:00Z

SCHEMA = {"type": "struct", "schema-id": 0, "fields": [
    {"id": 1, "name": "tenant", "required": True, "type": "string"},
    {"id": 2, "name": "device", "required": True, "type": "string"},
    {"id": 3, "name": "sensor", "required": True, "type": "string"},
    {"id": 4, "name": "metric", "required": True, "type": "string"},
    {"id": 5, "name": "ts", "required": True, "type": "timestamptz"},
    {"id": 6, "name": "value", "required": False, "type": "double"},
    {"id": 7, "name": "text", "required": False, "type": "string"},
    {"id": 8, "name": "received_at", "required": True, "type": "timestamptz"},
    {"id": 9, "name": "batch_epoch", "required": True, "type": "long"},
    {"id": 10, "name": "batch_seq", "required": True, "type": "long"},
]}

# The field ids the spec gives every manifest and manifest list field (by name).
ENTRY_IDS = {"status": 0, "snapshot_id": 1, "sequence_number": 3, "file_sequence_number": 4,
             "data_file": 2}
DATA_FILE_IDS = {"content": 134, "file_path": 100, "file_format": 101, "partition": 102,
                 "record_count": 103, "file_size_in_bytes": 104, "column_sizes": 108,
                 "value_counts": 109, "null_value_counts": 110, "nan_value_counts": 137,
                 "lower_bounds": 125, "upper_bounds": 128, "key_metadata": 131,
                 "split_offsets": 132, "equality_ids": 135, "sort_order_id": 140,
                 "referenced_data_file": 143}
MAP_IDS = {108: (117, 118), 109: (119, 120), 110: (121, 122), 137: (138, 139),
           125: (126, 127), 128: (129, 130)}
LIST_IDS = {"manifest_path": 500, "manifest_length": 501, "partition_spec_id": 502,
            "content": 517, "sequence_number": 515, "min_sequence_number": 516,
            "added_snapshot_id": 503, "added_files_count": 504, "existing_files_count": 505,
            "deleted_files_count": 506, "added_rows_count": 512, "existing_rows_count": 513,
            "deleted_rows_count": 514, "partitions": 507, "key_metadata": 519}
SUMMARY_IDS = {"contains_null": 509, "contains_nan": 518, "lower_bound": 510,
               "upper_bound": 511}


def have_node_readers():
    return NODE is not None and (NODE_DIR / "node_modules" / "avsc").is_dir()


needs_node = pytest.mark.skipif(not have_node_readers(),
                                reason="node and tests/node/node_modules (avsc, icebird, "
                                       "@duckdb/node-api) missing: run scripts/install-deps")


def node(script, *args, timeout=300):
    p = subprocess.run([NODE, script, *map(str, args)], cwd=NODE_DIR, capture_output=True,
                       text=True, timeout=timeout)
    assert p.returncode == 0, f"{script} failed:\n{p.stderr}"
    return json.loads(p.stdout)


@pytest.fixture(scope="module")
def ice_exe(tmp_path_factory):
    """The Iceberg CLI: floe-lake when it has the commands, else a driver of ice_cli()."""
    bindir = os.environ.get("FLOE_BIN")
    if not bindir:
        pytest.skip("FLOE_BIN is not set: run through `make system`")
    lake = str(Path(bindir) / "floe-lake")
    probe = subprocess.run([lake, "snapshots", "--help"], capture_output=True, text=True)
    if probe.returncode == 0 and "--metadata" in probe.stdout + probe.stderr:
        exe = [lake]
    else:
        bindir = Path(bindir)
        src = tmp_path_factory.mktemp("ice-cli") / "ice-cli.c"
        src.write_text('#include "ice-cli.h"\n'
                       "int main(int argc, char **argv) { return ice_cli(argc - 1, argv + 1); }\n")
        out = src.with_suffix("")
        libs = subprocess.run(["pkg-config", "--libs", *PKGS.split()], capture_output=True,
                              text=True, check=True).stdout.split()
        cmd = [os.environ.get("CC", "cc"), "-o", str(out), str(src),
               f"-I{ROOT / 'uploader' / 'iceberg'}", str(bindir / "liblake.a"),
               str(bindir / "libcerts.a"), str(bindir / "libfloe.a"), *libs, "-lm"]
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:  # a sanitizer build links with the sanitizers
            p = subprocess.run(cmd + ["-fsanitize=address,undefined"], capture_output=True,
                               text=True)
        assert p.returncode == 0, p.stderr
        exe = [str(out)]
    return exe


@pytest.fixture
def ice(ice_exe):
    """ice(*args, rc=0) -> stdout of the Iceberg CLI; ice.spawn(*args) -> a Popen."""
    return IceCli(ice_exe)


class IceCli:
    def __init__(self, exe):
        self.exe = exe

    def __call__(self, *args, rc=0):
        """Runs the CLI: stdout (rc 0) or stderr (an expected failure)."""
        p = subprocess.run([*self.exe, *map(str, args)], capture_output=True, text=True,
                           timeout=300)
        assert p.returncode == rc, f"{args}: rc {p.returncode}\n{p.stderr}"
        return p.stdout if rc == 0 else p.stderr

    def spawn(self, *args):
        return subprocess.Popen([*self.exe, *map(str, args)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)


def make_rows(seed=11):
    """Rows of three tenants over two hours; timestamps whole milliseconds."""
    rnd = random.Random(seed)
    rows = []
    for tenant in ("acme", "zeta corp", "ünïcode"):
        for hour in range(2):
            for i in range(rnd.randint(5, 40)):
                ts = T0 + hour * HOUR_US + rnd.randrange(0, HOUR_US // 1000) * 1000
                rows.append({
                    "tenant": tenant, "device": f"gw-{rnd.randint(1, 3):04d}",
                    "sensor": rnd.choice(["boiler-3", "door", "pump-1"]),
                    "metric": rnd.choice(["temp", "pressure"]), "ts": ts,
                    "value": None if i % 9 == 4 else round(rnd.uniform(-50, 150), 3),
                    "text": "open" if i % 13 == 2 else None,
                    "received_at": ts + 5000000, "batch_epoch": 0x7edcba9876543210,
                    "batch_seq": i})
    return rows


def hour_name(hour):
    return datetime.fromtimestamp(hour * 3600, timezone.utc).strftime("%Y-%m-%d-%H")


class Table:
    def __init__(self, ice, floe_bin, tmp_path, rows, commits=2, create_args=(), common=()):
        self.ice = ice
        self.wh = tmp_path / "wh"
        self.wh.mkdir()
        self.url = f"file://{self.wh}"
        self.loc = f"{self.url}/floe/events"
        self.dir = self.wh / "floe" / "events"
        (tmp_path / "schema.json").write_text(json.dumps(SCHEMA))
        self.args = ["--warehouse", self.url, "--table", "floe.events", *common]
        out = ice("create", *self.args, "--schema", tmp_path / "schema.json",
                  "--partition", "tenant,hour(ts)", "--sort", "ts", *create_args)
        assert out.strip() == f"{self.loc}/metadata/v1.metadata.json"
        groups = defaultdict(list)
        for r in rows:
            groups[(r["tenant"], r["ts"] // HOUR_US)].append(r)
        self.files = {}  # location -> (tenant, hour, rows, report)
        reports = []
        for n, ((tenant, hour), part) in enumerate(sorted(groups.items())):
            rel = f"data/tenant={tenant}/ts_hour={hour_name(hour)}/{n:05d}.parquet"
            path = self.dir / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in part)
            p = subprocess.run([floe_bin("floe-lake"), "parquet-write", "--schema",
                                str(tmp_path / "schema.json"), "--out", str(path)],
                               input=text.encode(), capture_output=True, timeout=300)
            assert p.returncode == 0, p.stderr.decode()
            report = json.loads(p.stdout)
            report["file_path"] = rel
            reports.append(report)
            self.files[f"{self.loc}/{rel}"] = (tenant, hour, part, report)
        self.snapshots = []
        step = (len(reports) + commits - 1) // commits
        for c in range(commits):
            f = tmp_path / f"commit-{c}.json"
            f.write_text(json.dumps(reports[c * step:(c + 1) * step]))
            out = ice("add-files", *self.args, f, "--summary", f"floe.test.commit={c}")
            self.snapshots.append(int(out))

    def avro_files(self):
        return sorted(str(p) for p in (self.dir / "metadata").glob("*.avro"))

    def metadata(self):
        v = (self.dir / "metadata" / "version-hint.text").read_text()
        return json.loads((self.dir / "metadata" / f"v{v}.metadata.json").read_text())


@pytest.fixture
def table(ice, floe_bin, tmp_path):
    return Table(ice, floe_bin, tmp_path, make_rows())


def le64(v):
    return struct.pack("<q", v).hex()


def le32(v):
    return struct.pack("<i", v).hex()


def check_field_ids(schema, expected, where):
    """Every field of a record schema has its spec field id."""
    names = {f["name"]: f for f in schema["fields"]}
    for name, fid in expected.items():
        assert names[name]["field-id"] == fid, f"{where}.{name}"
    for f in schema["fields"]:
        assert isinstance(f.get("field-id"), int), f"{where}.{f['name']} has no field-id"


def nonnull(t):
    return [b for b in t if b != "null"][0] if isinstance(t, list) else t


def check_manifest_schema(schema):
    assert schema["name"] == "manifest_entry"
    check_field_ids(schema, ENTRY_IDS, "manifest_entry")
    df = next(f for f in schema["fields"] if f["name"] == "data_file")["type"]
    assert df["name"] == "r2"
    check_field_ids(df, DATA_FILE_IDS, "r2")
    for f in df["fields"]:
        t = nonnull(f["type"])
        if f["field-id"] in MAP_IDS:
            assert t["type"] == "array" and t["logicalType"] == "map"
            k, v = t["items"]["fields"]
            assert (k["name"], v["name"]) == ("key", "value")
            assert (k["field-id"], v["field-id"]) == MAP_IDS[f["field-id"]]
            assert t["items"]["name"] == f"k{k['field-id']}_v{v['field-id']}"
        elif isinstance(t, dict) and t.get("type") == "array":
            assert t["element-id"] == {132: 133, 135: 136}[f["field-id"]]
        if isinstance(f["type"], list):  # optional: ["null", T] with a null default
            assert f["type"][0] == "null" and "default" in f and f["default"] is None
    part = next(f for f in df["fields"] if f["name"] == "partition")["type"]
    assert part["name"] == "r102"
    assert [(f["name"], f["field-id"]) for f in part["fields"]] == [("tenant", 1000),
                                                                      ("ts_hour", 1001)]
    assert nonnull(part["fields"][0]["type"]) == "string"
    assert nonnull(part["fields"][1]["type"]) == "int"


def check_list_schema(schema):
    assert schema["name"] == "manifest_file"
    check_field_ids(schema, LIST_IDS, "manifest_file")
    parts = nonnull(next(f for f in schema["fields"] if f["name"] == "partitions")["type"])
    assert parts["element-id"] == 508 and parts["items"]["name"] == "r508"
    check_field_ids(parts["items"], SUMMARY_IDS, "r508")


def check_entry(table, e, snapshot_ids):
    df = e["data_file"]
    tenant, hour, rows, report = table.files[df["file_path"]]
    assert e["status"] == 1 and int(e["snapshot_id"]) in snapshot_ids
    assert e["sequence_number"] is None and e["file_sequence_number"] is None  # inherited
    assert df["content"] == 0 and df["file_format"] == "PARQUET"
    assert int(df["record_count"]) == len(rows) == report["num_rows"]
    assert int(df["file_size_in_bytes"]) == report["file_size"] == \
        os.path.getsize(df["file_path"][len("file://"):])
    assert df["partition"] == {"tenant": tenant, "ts_hour": hour}
    assert [int(x) for x in df["split_offsets"]] == report["split_offsets"]
    counts = {kv["key"]: int(kv["value"]) for kv in df["value_counts"]}
    nulls = {kv["key"]: int(kv["value"]) for kv in df["null_value_counts"]}
    lower = {kv["key"]: kv["value"]["hex"] for kv in df["lower_bounds"]}
    upper = {kv["key"]: kv["value"]["hex"] for kv in df["upper_bounds"]}
    assert counts == {f["id"]: len(rows) for f in SCHEMA["fields"]}
    assert nulls[6] == sum(r["value"] is None for r in rows)
    assert nulls[7] == sum(r["text"] is None for r in rows)
    assert lower[5] == le64(min(r["ts"] for r in rows))
    assert upper[5] == le64(max(r["ts"] for r in rows))
    assert lower[1] == upper[1] == tenant.encode().hex()
    vals = [r["value"] for r in rows if r["value"] is not None]
    assert lower[6] == struct.pack("<d", min(vals)).hex()
    assert upper[6] == struct.pack("<d", max(vals)).hex()
    assert {kv["key"] for kv in df["nan_value_counts"]} == {6}
    assert set(kv["key"] for kv in df["column_sizes"]) == set(range(1, 11))


@needs_node
def test_manifests_decode_with_avsc(table):
    md = table.metadata()
    snaps = {s["snapshot-id"]: s for s in md["snapshots"]}
    assert list(snaps) == table.snapshots
    dumped = node("avro-dump.mjs", *table.avro_files())
    entries, lists = [], []
    for f in dumped:
        assert f["codec"] == "deflate" and f["meta"]["avro.codec"] == "deflate"
        assert f["meta"]["format-version"] == "2"
        if f["schema"]["name"] == "manifest_entry":
            check_manifest_schema(f["schema"])
            meta = f["meta"]
            assert json.loads(meta["schema"]) == SCHEMA
            assert meta["schema-id"] == "0" and meta["partition-spec-id"] == "0"
            assert meta["content"] == "data"
            assert json.loads(meta["partition-spec"]) == [
                {"name": "tenant", "transform": "identity", "source-id": 1, "field-id": 1000},
                {"name": "ts_hour", "transform": "hour", "source-id": 5, "field-id": 1001}]
            entries += f["records"]
        else:
            check_list_schema(f["schema"])
            lists.append(f)
    assert len(entries) == len(table.files)
    for e in entries:
        check_entry(table, e, set(table.snapshots))
    assert sorted(e["data_file"]["file_path"] for e in entries) == sorted(table.files)

    # manifest lists: header keys and each manifest's record
    assert len(lists) == 2
    for f in lists:
        sid = int(f["meta"]["snapshot-id"])
        s = snaps[sid]
        assert s["manifest-list"].endswith(os.path.basename(f["file"]))
        assert f["meta"]["sequence-number"] == str(s["sequence-number"])
        assert f["meta"]["parent-snapshot-id"] == str(s.get("parent-snapshot-id", "null"))
        assert len(f["records"]) == s["sequence-number"]  # one new manifest per commit
        new = f["records"][0]
        assert int(new["added_snapshot_id"]) == sid
        assert int(new["sequence_number"]) == int(new["min_sequence_number"]) == \
            s["sequence-number"]
        path = new["manifest_path"][len("file://"):]
        assert int(new["manifest_length"]) == os.path.getsize(path)
        assert new["added_files_count"] == int(s["summary"]["added-data-files"])
        assert int(new["added_rows_count"]) == int(s["summary"]["added-records"])
        assert new["existing_files_count"] == new["deleted_files_count"] == 0
        mine = [e for e in entries if int(e["snapshot_id"]) == sid]
        tenants = sorted(e["data_file"]["partition"]["tenant"].encode() for e in mine)
        hours = sorted(e["data_file"]["partition"]["ts_hour"] for e in mine)
        p_tenant, p_hour = new["partitions"]
        assert p_tenant["contains_null"] is False and p_tenant["contains_nan"] is None
        assert p_tenant["lower_bound"]["hex"] == tenants[0].hex()
        assert p_tenant["upper_bound"]["hex"] == tenants[-1].hex()
        assert p_hour["lower_bound"]["hex"] == le32(hours[0])
        assert p_hour["upper_bound"]["hex"] == le32(hours[-1])
    # the second list carries the first commit's manifest by reference
    first = next(f for f in lists if int(f["meta"]["snapshot-id"]) == table.snapshots[0])
    second = next(f for f in lists if int(f["meta"]["snapshot-id"]) == table.snapshots[1])
    assert second["records"][1] == first["records"][0]
    # summaries are strings, totals add up
    s = snaps[table.snapshots[1]]["summary"]
    assert all(isinstance(v, str) for v in s.values())
    assert s["total-records"] == str(sum(len(v[2]) for v in table.files.values()))
    assert s["total-data-files"] == str(len(table.files))
    assert s["floe.test.commit"] == "1"
    assert md["refs"] == {"main": {"snapshot-id": table.snapshots[1], "type": "branch"}}
    assert (table.dir / "metadata" / "version-hint.text").read_bytes() == b"3"


def test_manifests_decode_with_python_avro(table):
    try:
        import avro.datafile
        import avro.io
    except ImportError:
        pytest.skip("Debian's python3-avro is not installed (apt-get install python3-avro)")
    import warnings
    seen = 0
    for path in table.avro_files():
        with open(path, "rb") as fh, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Unknown map, using array": Iceberg's maps
            reader = avro.datafile.DataFileReader(fh, avro.io.DatumReader())
            assert reader.meta["avro.codec"] == b"deflate"
            schema = json.loads(reader.meta["avro.schema"])
            for rec in reader:
                if schema["name"] == "manifest_entry":
                    df = rec["data_file"]
                    tenant, hour, rows, report = table.files[df["file_path"]]
                    assert df["record_count"] == len(rows)
                    assert df["file_size_in_bytes"] == report["file_size"]
                    assert df["partition"] == {"tenant": tenant, "ts_hour": hour}
                    assert rec["snapshot_id"] in table.snapshots
                    lower = {kv["key"]: kv["value"] for kv in df["lower_bounds"]}
                    assert struct.unpack("<q", lower[5])[0] == min(r["ts"] for r in rows)
                    seen += 1
                else:
                    assert rec["added_snapshot_id"] in table.snapshots
                    assert rec["manifest_length"] == \
                        os.path.getsize(rec["manifest_path"][len("file://"):])
    assert seen == len(table.files)


def as_micros(v):
    """icebird gives timestamps as ISO strings with milliseconds."""
    return int(datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp() * 1000) * 1000


def canonical(rows):
    return sorted((r["tenant"], int(r["ts"]), r["device"], r["sensor"], r["metric"],
                   r["value"], r["text"], int(r["received_at"]), int(r["batch_epoch"]),
                   int(r["batch_seq"])) for r in rows)


@needs_node
def test_table_read_by_icebird_and_duckdb(ice, table):
    want = canonical(r for v in table.files.values() for r in v[2])
    got = node("icebird-read.mjs", table.loc)
    assert got["fetched"][0].endswith("/metadata/version-hint.text")
    assert got["fetched"][1].endswith("/metadata/v3.metadata.json")
    rows = [dict(r, ts=as_micros(r["ts"]), received_at=as_micros(r["received_at"]))
            for r in got["rows"]]
    assert canonical(rows) == want
    # DuckDB over the files our manifests list
    listed = [json.loads(line) for line in ice("files", *table.args, "--json").splitlines()]
    assert sorted(f["file_path"] for f in listed) == sorted(table.files)
    assert sum(f["record_count"] for f in listed) == len(want)
    got = node("duckdb-scan.mjs", "--micros", "ts,received_at",
               *(f["file_path"][len("file://"):] for f in listed))
    assert canonical(got["rows"]) == want
    assert [(x["name"], int(x["field_id"])) for x in got["field_ids"]] == \
        [(f["name"], f["id"]) for f in SCHEMA["fields"]]


def test_cli(ice, table):
    snaps = [json.loads(line) for line in ice("snapshots", *table.args, "--json").splitlines()]
    assert [s["snapshot-id"] for s in snaps] == table.snapshots
    assert snaps[1]["current"] and not snaps[0]["current"]
    assert snaps[1]["parent-snapshot-id"] == table.snapshots[0]
    text = ice("snapshots", *table.args)
    assert str(table.snapshots[1]) in text and "(current)" in text
    schema = json.loads(ice("schema", *table.args, "--json"))
    assert schema["schema"] == SCHEMA
    assert [f["field-id"] for f in schema["partition-spec"]] == [1000, 1001]
    text = ice("schema", *table.args)
    assert "ts_hour" in text and "hour(5)" in text
    # the same through the metadata file
    v = (table.dir / "metadata" / "version-hint.text").read_text()
    files = ice("files", "--metadata", table.dir / "metadata" / f"v{v}.metadata.json")
    assert len(files.splitlines()) == len(table.files)
    assert "\ttenant=%C3%BCn%C3%AFcode/ts_hour=" in files  # form-URL-encoded
    assert "\ttenant=zeta+corp/ts_hour=2025-11-20-22" in files
    # the first snapshot's files only
    old = ice("files", *table.args, "--json", "--snapshot", table.snapshots[0])
    assert 0 < len(old.splitlines()) < len(table.files)
    # errors
    assert "no such" in ice("files", *table.args, "--snapshot", "12345", rc=1).lower()
    assert "usage" in ice("files", rc=2)
    assert "usage" in ice("bogus", rc=2).lower()
    err = ice("snapshots", "--warehouse", table.url, "--table", "floe.nope", rc=1)
    assert "floe.nope" in err
    # a file that spans two partitions is refused
    report = dict(next(iter(table.files.values()))[3])
    cols = [dict(c) for c in report["columns"]]
    ts = next(c for c in cols if c["field_id"] == 5)
    ts["upper_hex"] = le64(T0 + 5 * HOUR_US)
    report["columns"] = cols
    bad = table.dir.parent.parent.parent / "bad.json"
    bad.write_text(json.dumps(report))
    assert "spans more than one partition" in ice("add-files", *table.args, bad, rc=1)


def extra_file(floe_bin, t, tmp_path, row, n=0):
    """One more data file of one row: its report, ready for add-files."""
    rel = f"data/extra/{n}.parquet"
    (t.dir / "data" / "extra").mkdir(parents=True, exist_ok=True)
    p = subprocess.run([floe_bin("floe-lake"), "parquet-write", "--schema",
                        str(tmp_path / "schema.json"), "--out", str(t.dir / rel)],
                       input=(json.dumps(row) + "\n").encode(), capture_output=True)
    assert p.returncode == 0, p.stderr.decode()
    rep = json.loads(p.stdout)
    rep["file_path"] = rel
    f = tmp_path / f"extra-{n}.json"
    f.write_text(json.dumps(rep))
    return f


def test_concurrent_commits_all_land(ice, floe_bin, tmp_path):
    """Four processes add files to one table at once: create-if-absent of vN.metadata.json
    makes the losers retry on top of the winners, and every file lands exactly once."""
    t = Table(ice, floe_bin, tmp_path, make_rows(seed=5), commits=1,
              create_args=("--property", "commit.retry.num-retries=20"))
    before = {json.loads(line)["file_path"]
              for line in ice("files", *t.args, "--json").splitlines()}
    reports = [extra_file(floe_bin, t, tmp_path, r, n)
               for n, r in enumerate(make_rows(seed=6)[:8])]
    procs = [ice.spawn("add-files", *t.args, f) for f in reports]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    after = [json.loads(line)["file_path"]
             for line in ice("files", *t.args, "--json").splitlines()]
    assert len(after) == len(set(after)) == len(before) + len(reports)
    snaps = [json.loads(line) for line in ice("snapshots", *t.args, "--json").splitlines()]
    assert len(snaps) == 1 + len(reports)
    assert [s["sequence-number"] for s in snaps] == list(range(1, len(snaps) + 1))
    for a, b in zip(snaps, snaps[1:]):
        assert b["parent-snapshot-id"] == a["snapshot-id"]


def test_sql_catalog(ice, floe_bin, tmp_path):
    """With --catalog the table is registered in iceberg_tables (the JDBC/PyIceberg schema) and
    every commit is a compare-and-swap of metadata_location; version-hint.text follows. A
    metadata file left behind by a commit that lost its swap does not block the next one."""
    import sqlite3
    db = tmp_path / "catalog.db"
    t = Table(ice, floe_bin, tmp_path, make_rows(seed=3), commits=2, common=("--catalog", db))
    con = sqlite3.connect(db)
    rows = con.execute("SELECT catalog_name, table_namespace, table_name, metadata_location, "
                       "previous_metadata_location FROM iceberg_tables").fetchall()
    assert rows == [("floe", "floe", "events", f"{t.loc}/metadata/v3.metadata.json",
                     f"{t.loc}/metadata/v2.metadata.json")]
    snaps = [json.loads(x) for x in ice("snapshots", *t.args, "--json").splitlines()]
    assert [s["snapshot-id"] for s in snaps] == t.snapshots
    # a leftover v4 (a writer that died after writing it, before its swap)
    (t.dir / "metadata" / "v4.metadata.json").write_text("{}")
    sid = int(ice("add-files", *t.args, extra_file(floe_bin, t, tmp_path, make_rows(seed=4)[0])))
    loc, prev = con.execute("SELECT metadata_location, previous_metadata_location "
                            "FROM iceberg_tables").fetchone()
    assert loc == f"{t.loc}/metadata/v5.metadata.json"
    assert prev == f"{t.loc}/metadata/v3.metadata.json"
    md = json.loads(Path(loc[len("file://"):]).read_text())
    assert md["current-snapshot-id"] == sid and len(md["snapshots"]) == 3
    assert (t.dir / "metadata" / "version-hint.text").read_text() == "5"
    con.close()


def test_expire_and_orphans(ice, floe_bin, table):
    """expire deletes what only expired snapshots reach; orphans finds what nothing reaches;
    the table reads completely afterwards (through uploader/store's file:// backend)."""
    lists = sorted((table.dir / "metadata").glob("snap-*.avro"))
    assert len(lists) == 2
    # dry run: names the snapshot, changes nothing
    out = ice("expire", *table.args, "--older-than", "0", "--retain-last", "1", "--dry-run")
    assert out.split() == ["snapshot", str(table.snapshots[0])]
    assert len(json.loads("[" + ",".join(
        ice("snapshots", *table.args, "--json").splitlines()) + "]")) == 2
    out = ice("expire", *table.args, "--older-than", "0", "--retain-last", "1").split()
    # appends only: the first snapshot's manifest list goes, its manifest is still listed
    assert out == [f"file://{p}" for p in lists if f"snap-{table.snapshots[0]}-" in p.name]
    assert not any(Path(p[len("file://"):]).exists() for p in out)
    snaps = [json.loads(line) for line in ice("snapshots", *table.args, "--json").splitlines()]
    assert [s["snapshot-id"] for s in snaps] == [table.snapshots[1]]
    listed = [json.loads(line) for line in ice("files", *table.args, "--json").splitlines()]
    assert sorted(f["file_path"] for f in listed) == sorted(table.files)
    assert all(Path(f["file_path"][len("file://"):]).exists() for f in listed)

    stray = table.dir / "data" / "tenant=acme" / "stray.parquet"
    stray.write_bytes(b"PAR1")
    young = table.dir / "metadata" / "young-m0.avro"
    young.write_bytes(b"Obj\x01")
    old = 1_000_000_000
    os.utime(stray, (old, old))
    out = ice("orphans", *table.args, "--older-than", "1h").split()
    assert out == [f"file://{stray}"]  # the young one may be a commit in flight
    out = ice("orphans", *table.args, "--older-than", "0", "--delete").split()
    assert sorted(out) == sorted([f"file://{stray}", f"file://{young}"])
    assert not stray.exists() and not young.exists()
    assert ice("orphans", *table.args, "--older-than", "0").split() == []


def reference_tables():
    env = os.environ.get("FLOE_ICEBERG_TABLES")
    path = Path(env) if env else ROOT / "tests" / "data" / "iceberg-tables"
    return path if path.is_dir() else None


@pytest.mark.skipif(reference_tables() is None,
                    reason="reference tables not found: set FLOE_ICEBERG_TABLES")
@pytest.mark.parametrize("name,metadata", [
    ("spark/bunnies", "v5.metadata.json"),
    ("java/bunnies", "v5.metadata.json"),
    ("spark/rename_column", "v3.metadata.json"),
    ("athena/example", "00001-aaf0d033-d06b-43c7-be60-67f83abd4aca.metadata.json"),
])
def test_reference_tables(ice, name, metadata):
    ref = reference_tables()
    args = ["--metadata", ref / name / "metadata" / metadata,
            "--map", f"s3a://hyperparam-iceberg/={ref}/",
            "--map", f"s3://hyperparam-iceberg/={ref}/"]
    snaps = [json.loads(line) for line in ice("snapshots", *args, "--json").splitlines()]
    assert snaps and snaps[-1]["current"]
    for s in snaps:
        files = [json.loads(line) for line in
                 ice("files", *args, "--json", "--snapshot", s["snapshot-id"]).splitlines()]
        data = [f for f in files if f["content"] == "data"]
        deletes = [f for f in files if f["content"] != "data"]
        assert len(data) == int(s["summary"]["total-data-files"])
        assert len(deletes) == int(s["summary"]["total-delete-files"])
        assert sum(f["record_count"] for f in data) == int(s["summary"]["total-records"])
        assert sum(f["file_size_in_bytes"] for f in files) == \
            int(s["summary"]["total-files-size"])
        for f in files:
            local = ref / f["file_path"].split("hyperparam-iceberg/", 1)[1]
            assert local.stat().st_size == f["file_size_in_bytes"]
    if name == "spark/rename_column":
        parts = sorted(json.dumps(f["partition"], sort_keys=True) for f in files)
        assert parts == ['{"date": "2022-01-01", "id_bucket": "0"}',
                         '{"date": "2022-01-02", "id_bucket": "2"}',
                         '{"date": null, "id_bucket": "3"}']


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
