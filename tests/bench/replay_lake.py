"""What a reader sees of the lake while floe-uploader writes it, for bench_uploader.py.

    watch = CatalogWatch(catalog_db).start()  # polls floe.events' metadata_location
    ...
    watch.stop()
    watch.seen                                # [Seen(t_us, location, snapshot, seq, total)]
    files = added_files(metadata)             # {snapshot id: [data file paths]}
    usage = warehouse_usage(root)             # objects and bytes by kind
    rows = duckdb("SELECT ...")               # DuckDB (tests/node) over the data files

Visibility is the catalog's: a snapshot is visible once the catalog row names its metadata
file, which is what Iceberg's SQL catalog clients (PyIceberg, Spark's JDBC catalog) read.
"""

import json
import os
import sqlite3
import sys
import threading
import time
import warnings
from collections import namedtuple
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT / "tests" / "system"))
from uploader_run import NODE, have_node_readers, node  # noqa: E402

Seen = namedtuple("Seen", "t_us location snapshot sequence total")


def local(location):
    return location.removeprefix("file://")


class CatalogWatch(threading.Thread):
    """Reads floe.<table>'s metadata_location from the SQLite catalog every `period` seconds
    (a read-only connection: WAL readers never block the uploader's commits) and records the
    wall-clock time each new location was first seen, with the snapshot it names."""

    def __init__(self, catalog, table="events", namespace="floe", period=0.005):
        super().__init__(daemon=True)
        self.catalog = str(catalog)
        self.table = table
        self.namespace = namespace
        self.period = period
        self.seen = []
        self.polls = 0
        self.error = None
        self._halt = threading.Event()

    def start(self):
        super().start()
        return self

    def stop(self):
        self._halt.set()
        self.join(timeout=10)

    def latest(self):
        return self.seen[-1] if self.seen else None

    def wait_total(self, total, timeout):
        """The first Seen whose snapshot holds at least total records (None after timeout)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for s in list(self.seen):
                if s.total >= total:
                    return s
            if self.error:
                raise RuntimeError(f"catalog watch: {self.error}")
            time.sleep(0.02)
        return None

    def run(self):
        con, last = None, None
        while not self._halt.is_set():
            try:
                if con is None and os.path.exists(self.catalog):
                    con = sqlite3.connect(f"file:{self.catalog}?mode=ro", uri=True,
                                          check_same_thread=False, timeout=1)
                row = None
                if con is not None:
                    row = con.execute(
                        "SELECT metadata_location FROM iceberg_tables WHERE "
                        "table_namespace = ? AND table_name = ?",
                        (self.namespace, self.table)).fetchone()
                self.polls += 1
                if row and row[0] != last:
                    t = time.time_ns() // 1000
                    last = row[0]
                    md = json.loads(Path(local(last)).read_text())
                    sid = md.get("current-snapshot-id")
                    snap = next((s for s in md.get("snapshots", []) if s["snapshot-id"] == sid),
                                None)
                    total = int(snap["summary"].get("total-records", 0)) if snap else 0
                    seq = snap.get("sequence-number", 0) if snap else 0
                    self.seen.append(Seen(t, last, sid, seq, total))
            except sqlite3.OperationalError:
                pass  # the catalog is being created
            except (OSError, ValueError, KeyError) as e:
                self.error = repr(e)
            self._halt.wait(self.period)
        if con is not None:
            con.close()


def metadata(catalog, table="events", namespace="floe"):
    """The current metadata JSON of floe.<table>, through the catalog."""
    con = sqlite3.connect(f"file:{catalog}?mode=ro", uri=True)
    try:
        row = con.execute("SELECT metadata_location FROM iceberg_tables WHERE "
                          "table_namespace = ? AND table_name = ?", (namespace, table)).fetchone()
    finally:
        con.close()
    return json.loads(Path(local(row[0])).read_text()) if row else None


def avro_records(path):
    import avro.datafile
    import avro.io

    # Iceberg's map logical type is unknown to python3-avro: it reads the array of pairs
    warnings.filterwarnings("ignore", message="Unknown map")

    with open(local(path), "rb") as f:
        return list(avro.datafile.DataFileReader(f, avro.io.DatumReader()))


def added_files(md):
    """{snapshot id: [data file path, ...]}: the files each snapshot added (manifest entries
    with status ADDED in the manifests that snapshot wrote)."""
    out = {}
    for snap in md.get("snapshots", []):
        sid = snap["snapshot-id"]
        files = out.setdefault(sid, [])
        for m in avro_records(snap["manifest-list"]):
            if m["added_snapshot_id"] != sid:
                continue
            for e in avro_records(m["manifest_path"]):
                if e["status"] == 1:
                    files.append(e["data_file"]["file_path"])
    return out


def live_files(md):
    """[(path, record_count)] of the current snapshot's data files."""
    sid = md.get("current-snapshot-id")
    snap = next((s for s in md.get("snapshots", []) if s["snapshot-id"] == sid), None)
    if snap is None:
        return []
    files = []
    for m in avro_records(snap["manifest-list"]):
        for e in avro_records(m["manifest_path"]):
            if e["status"] != 2:
                files.append((e["data_file"]["file_path"], e["data_file"]["record_count"]))
    return files


def warehouse_usage(root):
    """Objects and bytes under the warehouse by kind: data (Parquet), manifests, manifest
    lists, metadata JSON, version hints, other."""
    kinds = {}
    for dirpath, _, names in os.walk(root):
        for n in names:
            p = Path(dirpath) / n
            if n.endswith(".parquet"):
                k = "data"
            elif n.startswith("snap-") and n.endswith(".avro"):
                k = "manifest_lists"
            elif n.endswith(".avro"):
                k = "manifests"
            elif n.endswith(".metadata.json"):
                k = "metadata"
            elif n == "version-hint.text":
                k = "version_hint"
            else:
                k = "other"
            c = kinds.setdefault(k, {"objects": 0, "bytes": 0})
            c["objects"] += 1
            c["bytes"] += p.stat().st_size
    return kinds


def sql_list(paths):
    return "[" + ", ".join("'" + local(p).replace("'", "''") + "'" for p in paths) + "]"


def duckdb(*statements, timeout=600):
    """The last statement's rows (DuckDB in node, tests/node/duckdb-sql.mjs)."""
    if not have_node_readers():
        raise RuntimeError("node and tests/node/node_modules missing: run scripts/install-deps")
    return node("duckdb-sql.mjs", *statements, timeout=timeout)


__all__ = ["CatalogWatch", "Seen", "metadata", "added_files", "live_files", "warehouse_usage",
           "sql_list", "duckdb", "NODE"]
