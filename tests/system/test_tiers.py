"""Tiers by partition age (docs/lake.md "Tiers", docs/storage.md "Tiers"), through floe-lake tier.

- file roots: hourly partitions 1, 30, 80 and 100 hours old in a hot warehouse, tiers warm (1 day)
  and cold (3 days): one replace snapshot moves the old partitions' files to the same paths under
  the warm and cold roots; DuckDB reads every row exactly once from where it went, icebird reads
  the table through HTTP; a second run does nothing; expiry deletes the hot copies, orphans finds
  nothing (and finds a stray file under the cold root);
- a crashed run (the copy made, no commit) is completed by the next run, which takes the copy
  over, while imports commit to the same table through the SQLite catalog;
- S3 on Ceph RGW with a lifecycle "day" of 10 seconds: the rule is installed once (a second run
  does not PUT: RGW's access log), another rule of the bucket is kept, old data files really go
  to STANDARD_IA / COLD by their age while fresh ones and the metadata stay STANDARD, DuckDB
  reads the table afterwards; with `s3 = copy` the same by CopyObject, by partition age.
"""

import json
import random
import shutil
import subprocess
import threading
import time
from collections import Counter
from datetime import datetime, timezone

from s3 import ceph_s3_lifecycle  # noqa: F401  (fixture)
from test_lake import (COLS, HttpWarehouse, Lake, canonical, lake_bin, ndjson,  # noqa: F401
                       needs_node, node)

HOUR_US = 3600 * 1000000
NOW_HOUR_US = int(time.time()) // 3600 * 3600 * 1000000  # the start of this hour


def hour_rows(seed, age_h, n, tenants=("acme", "zeta corp"), first_seq=0):
    """n rows in the hour that started age_h hours before this one, whole milliseconds."""
    rnd = random.Random(seed)
    start = NOW_HOUR_US - age_h * HOUR_US
    rows = []
    for i in range(n):
        ts = start + rnd.randrange(0, HOUR_US // 1000) * 1000
        rows.append({"tenant": tenants[i % len(tenants)], "device": f"gw-{rnd.randint(1, 3)}",
                     "sensor": "boiler-3", "metric": rnd.choice(["temp", "pressure"]), "ts": ts,
                     "value": round(rnd.uniform(-50, 150), 3), "text": None,
                     "received_at": ts + 5000000, "batch_epoch": 7, "batch_seq": first_seq + i})
    assert set(rows[0]) == set(COLS)
    return rows


def duckdb_rows(paths):
    got = node("duckdb-scan.mjs", "--micros", "ts,received_at", *paths)
    return got["rows"]


def root_of(path, roots):
    """The name of the root (hot, warm, cold) a file:// location lies under, and its key."""
    for name, d in roots.items():
        prefix = f"file://{d}/"
        if path.startswith(prefix):
            return name, path[len(prefix):]
    raise AssertionError(f"{path} is under no root")


class Tiered:
    def __init__(self, lake_bin, tmp_path, catalog=None):
        self.roots = {n: tmp_path / n for n in ("hot", "warm", "cold")}
        self.conf = tmp_path / "lake.conf"
        self.conf.write_text(
            f"[lake]\nwarehouse = file://{self.roots['hot']}\nnamespace = floe\nfsync = false\n" +
            (f"catalog = {catalog}\n" if catalog else "") +
            f"[tier]\nroot.1 = file://{self.roots['warm']}\nage.1 = 1d\n"
            f"root.2 = file://{self.roots['cold']}\nage.2 = 3d\n")
        self.lake = Lake(lake_bin, ["--config", self.conf])

    def files(self):
        return self.lake.json_lines("files", "--table", "events")

    def placed(self):
        """{(root, key)} of the live files."""
        return {root_of(f["file_path"], self.roots) for f in self.files()}

    def tier(self, *args):
        return json.loads(self.lake("tier", "--table", "events", "--json", *args))


@needs_node
def test_file_tiers(lake_bin, tmp_path):
    t = Tiered(lake_bin, tmp_path)
    t.lake("create", "--table", "events", "--floe", "events")
    rows = []
    for k, age in enumerate((1, 30, 80, 100)):
        part = hour_rows(k, age, 12, first_seq=k * 100)
        rows += part
        t.lake("import", "--table", "events", "-", input=ndjson(part))
    before = t.placed()
    assert len(before) == 8 and {r for r, _ in before} == {"hot"}
    snaps = len(t.lake.json_lines("snapshots", "--table", "events"))

    out = t.tier("--dry-run")
    assert (out["snapshot-id"], out["files"], out["partitions"]) == (0, 6, 6)
    assert len(t.lake.json_lines("snapshots", "--table", "events")) == snaps
    out = t.tier()
    assert out["snapshot-id"] > 0
    assert (out["files"], out["partitions"], out["copied"], out["skipped"]) == (6, 6, 6, 0)
    after = t.placed()
    # the same keys, now under the root of their age
    assert {k for _, k in after} == {k for _, k in before}
    where = Counter(r for r, _ in after)
    assert where == {"hot": 2, "warm": 2, "cold": 4}
    for root, key in after:
        assert (t.roots[root] / key).is_file()
        start = datetime.strptime(key.split("ts_hour=")[1][:13], "%Y-%m-%d-%H")
        age_h = (NOW_HOUR_US // 1000000 - int(start.replace(tzinfo=timezone.utc).timestamp()))
        assert root == {1: "hot", 30: "warm"}.get(age_h // 3600, "cold"), (root, key)
    snap = t.lake.json_lines("snapshots", "--table", "events")[-1]
    assert snap["summary"]["operation"] == "replace"
    assert snap["summary"]["deleted-data-files"] == "6"
    assert snap["summary"]["added-data-files"] == "6"
    assert snap["summary"]["total-records"] == str(len(rows))
    # every row exactly once, from wherever its file went
    paths = [f["file_path"][len("file://"):] for f in t.files()]
    assert canonical(duckdb_rows(paths)) == canonical(rows)
    # an independent Iceberg reader over HTTP: metadata, manifests and files under all roots
    srv = HttpWarehouse(tmp_path)
    try:
        got = node("icebird-http.mjs", f"{srv.base}/hot/floe/events", "--map",
                   f"file://{tmp_path}/={srv.base}/")
    finally:
        srv.close()
    assert canonical(got["rows"], iso=True) == canonical(rows)
    assert any("/cold/floe/events/data/" in u for u in got["fetched"])
    assert "ok:" in t.lake("verify", "--table", "events")

    # again: nothing is due
    assert t.lake("tier", "--table", "events") == "nothing to move\n"
    assert len(t.lake.json_lines("snapshots", "--table", "events")) == snaps + 1

    # the hot copies stay until the snapshots before the move expire
    old = [t.roots["hot"] / k for r, k in after if r != "hot"]
    assert all(p.is_file() for p in old)
    gone = t.lake("expire", "--table", "events", "--older-than", "0", "--retain-last",
                  "1").split()
    assert {f"file://{p}" for p in old} <= set(gone)
    assert not any(p.exists() for p in old)
    assert t.lake("orphans", "--table", "events", "--older-than", "0").split() == []
    stray = t.roots["cold"] / "floe/events/data/stray.parquet"
    stray.write_bytes(b"x")
    assert t.lake("orphans", "--table", "events", "--older-than", "0").split() == \
        [f"file://{stray}"]
    assert canonical(duckdb_rows([f["file_path"][7:] for f in t.files()])) == canonical(rows)
    assert "ok:" in t.lake("verify", "--table", "events")


@needs_node
def test_crashed_run_completes_beside_imports(lake_bin, tmp_path):
    t = Tiered(lake_bin, tmp_path, catalog=tmp_path / "catalog.db")
    t.lake("create", "--table", "events", "--floe", "events", "--property",
           "commit.retry.num-retries=30", "--property", "commit.retry.min-wait-ms=20")
    rows = hour_rows(1, 80, 10)
    t.lake("import", "--table", "events", "-", input=ndjson(rows))
    files = t.files()
    assert len(files) == 2
    # what a run that died between its copies and its commit leaves: a copy under the cold root
    _, key = root_of(files[0]["file_path"], t.roots)
    (t.roots["cold"] / key).parent.mkdir(parents=True)
    shutil.copyfile(t.roots["hot"] / key, t.roots["cold"] / key)
    assert {r for r, _ in t.placed()} == {"hot"}

    # the next run, with imports of fresh rows committing to the table meanwhile
    fresh = []
    lock = threading.Lock()

    def work(w):
        for k in range(3):
            part = hour_rows(100 + w * 10 + k, 0, 6, first_seq=1000 + w * 100 + k * 10)
            r = t.lake.run("import", "--table", "events", "-", input=ndjson(part))
            assert r.returncode == 0, r.stderr
            with lock:
                fresh.extend(part)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(2)]
    for th in threads:
        th.start()
    out = t.tier()
    for th in threads:
        th.join()
    assert (out["files"], out["copied"]) == (2, 1)  # the crashed run's copy taken over
    placed = t.placed()
    assert {(r, k) for r, k in placed if r == "cold"} == \
        {("cold", root_of(f["file_path"], t.roots)[1]) for f in files}
    assert all(r == "hot" for r, k in placed if k not in {root_of(f["file_path"], t.roots)[1]
                                                          for f in files})
    got = duckdb_rows([f["file_path"][7:] for f in t.files()])
    assert canonical(got) == canonical(rows + fresh)
    assert "ok:" in t.lake("verify", "--table", "events")
    assert t.lake("tier", "--table", "events") == "nothing to move\n"


def test_tier_usage_and_errors(lake_bin, tmp_path):
    t = Tiered(lake_bin, tmp_path)
    t.lake("create", "--table", "events", "--floe", "events")
    bare = Lake(lake_bin, ["--warehouse", f"file://{t.roots['hot']}", "--table", "floe.events"])
    assert "floe-lake tier" in bare("tier", rc=2)  # no tiers at all
    assert "ages must be ascending" in bare("tier", "--tier-root", f"file://{tmp_path}/a",
                                            "--age", "2d", "--tier-root",
                                            f"file://{tmp_path}/b", "--age", "1d", rc=2)
    assert "one --age per" in bare("tier", "--tier-root", f"file://{tmp_path}/a", rc=2)
    # flags instead of the config; an empty table has nothing to move
    assert bare("tier", "--tier-root", f"file://{tmp_path}/a", "--age", "1h") == \
        "nothing to move\n"
    bad = tmp_path / "bad.conf"
    bad.write_text(t.conf.read_text() + "age.3 = 1h\n")
    assert "needs root.3 or class.3" in Lake(lake_bin, ["--config", bad])(
        "tier", "--table", "events", rc=2)
    bad.write_text(t.conf.read_text() + "bogus = 1\n")
    assert "[tier] bogus: unknown key" in Lake(lake_bin, ["--config", bad])(
        "tier", "--table", "events", rc=2)


# -- S3 -------------------------------------------------------------------------------------------

def s3_tiered(lake_bin, s3, tmp_path, bucket, extra=""):
    conf = tmp_path / f"{bucket}.conf"
    conf.write_text(f"[lake]\nwarehouse = s3://{bucket}/wh\nnamespace = floe\n"
                    f"[s3]\nendpoint = {s3.endpoint}\nregion = {s3.region}\n"
                    "path_style = true\nretries = 2\n"
                    f"[tier]\nage.1 = 4d\nclass.1 = STANDARD_IA\nage.2 = 5d\nclass.2 = COLD\n"
                    + extra)
    return Lake(lake_bin, ["--config", conf], env=s3.env())


def data_keys(lake, bucket):
    return [f["file_path"][len(f"s3://{bucket}/"):]
            for f in lake.json_lines("files", "--table", "events")]


def read_back(lake_bin, s3, lake, bucket, tmp_path):
    """Every data file through `floe-lake store get`, read by DuckDB."""
    store = [lake_bin, "store", "--endpoint", s3.endpoint, "--region", s3.region,
             "--path-style", f"s3://{bucket}"]
    local = []
    for i, key in enumerate(data_keys(lake, bucket)):
        dst = tmp_path / f"{bucket}-{i}.parquet"
        p = subprocess.run([*store, "get", key, str(dst)], capture_output=True, env=s3.env())
        assert p.returncode == 0, p.stderr
        local.append(dst)
    return duckdb_rows(local)


def wait_classes(s3, bucket, keys, want, timeout):
    """Polls HEAD until every key has class want; returns the classes seen on the way."""
    t0, seen = time.monotonic(), set()
    while True:
        got = {k: s3.client.storage_class(bucket, k) for k in keys}
        seen |= set(got.values())
        if all(c == want for c in got.values()):
            return seen
        assert time.monotonic() - t0 < timeout, f"not all {want} after {timeout} s: {got}"
        time.sleep(0.5)


FOREIGN = ("<LifecycleConfiguration><Rule><ID>keep-tmp</ID><Filter><Prefix>tmp/</Prefix>"
           "</Filter><Status>Enabled</Status><Expiration><Days>365</Days></Expiration></Rule>"
           "</LifecycleConfiguration>").encode()


@needs_node
def test_s3_lifecycle_transitions(lake_bin, ceph_s3_lifecycle, tmp_path):
    import base64
    import hashlib
    s3 = ceph_s3_lifecycle
    bucket = s3.new_bucket()
    # someone else's rule, which floe keeps
    md5 = base64.b64encode(hashlib.md5(FOREIGN).digest()).decode()
    st, _, body = s3.client.request("PUT", bucket, query={"lifecycle": ""}, body=FOREIGN,
                                    headers={"Content-MD5": md5})
    assert st == 200, body
    lake = s3_tiered(lake_bin, s3, tmp_path, bucket)
    lake("create", "--table", "events", "--floe", "events")
    old = hour_rows(1, 2, 20)
    t_old = time.monotonic()
    lake("import", "--table", "events", "-", input=ndjson(old))
    old_keys = data_keys(lake, bucket)
    assert len(old_keys) == 2

    assert lake("tier", "--table", "events", "--s3-lifecycle") == "lifecycle rule installed\n"
    st, _, body = s3.client.request("GET", bucket, query={"lifecycle": ""})
    assert st == 200
    text = body.decode()
    assert "<ID>keep-tmp</ID>" in text and "<Expiration><Days>365</Days>" in text
    assert "<ID>floe-wh/floe/events/data/</ID>" in text
    assert "<Prefix>wh/floe/events/data/</Prefix>" in text
    for days, cls in ((4, "STANDARD_IA"), (5, "COLD")):
        assert f"<Transition><Days>{days}</Days><StorageClass>{cls}</StorageClass>" in text
    puts = s3.requests("PUT", bucket, "lifecycle")
    assert [s for _, s in puts] == [200, 200]  # the foreign rule's and ours
    out = json.loads(lake("tier", "--table", "events", "--s3-lifecycle", "--json"))
    assert out == {"lifecycle": True, "changed": False, "due": 0, "objects-changed": 0}
    assert s3.requests("PUT", bucket, "lifecycle") == puts  # the second run did not PUT
    assert len(s3.requests("GET", bucket, "lifecycle")) >= 4

    # RGW's lifecycle worker, with a day of LC_DAY seconds, passes every LC_DAY s or so (a pass
    # may come late, or skip the STANDARD_IA step). Fresh files written when the old ones are
    # 4.5 days old are less than 4 days old when the old ones turn COLD (5 days), and a pass
    # has come since they were written: they stay STANDARD
    day = s3.lc_day
    time.sleep(max(0.0, t_old + 4.5 * day - time.monotonic()))
    t_fresh = time.monotonic()
    fresh = hour_rows(2, 0, 10, first_seq=500)
    lake("import", "--table", "events", "-", input=ndjson(fresh))
    fresh_keys = [k for k in data_keys(lake, bucket) if k not in old_keys]
    assert len(fresh_keys) == 2
    seen = wait_classes(s3, bucket, old_keys, "COLD", 4 * day)
    assert seen <= {"STANDARD", "STANDARD_IA", "COLD"}, seen
    assert time.monotonic() - t_fresh < 4 * day, "too slow to tell fresh from old"
    assert {s3.client.storage_class(bucket, k) for k in fresh_keys} == {"STANDARD"}
    meta = "wh/floe/events/metadata/v1.metadata.json"  # older than 5 days, not under data/
    assert s3.client.storage_class(bucket, meta) == "STANDARD"
    # RGW keeps them readable: the table reads back whole
    assert canonical(read_back(lake_bin, s3, lake, bucket, tmp_path)) == canonical(old + fresh)
    assert "ok:" in lake("verify", "--table", "events")


@needs_node
def test_s3_copy_fallback(lake_bin, ceph_s3_lifecycle, tmp_path):
    s3 = ceph_s3_lifecycle
    bucket = s3.new_bucket()
    lake = s3_tiered(lake_bin, s3, tmp_path, bucket, extra="s3 = copy\n")
    lake("create", "--table", "events", "--floe", "events")
    rows, keys = [], {}
    for k, age in enumerate((1, 100, 130)):  # hours: STANDARD, STANDARD_IA, COLD
        part = hour_rows(10 + k, age, 8, first_seq=k * 100)
        rows += part
        before = set(data_keys(lake, bucket))
        lake("import", "--table", "events", "-", input=ndjson(part))
        keys[age] = [x for x in data_keys(lake, bucket) if x not in before]
    out = json.loads(lake("tier", "--table", "events", "--s3-lifecycle", "--json"))
    assert out == {"lifecycle": False, "changed": False, "due": 4, "objects-changed": 4}
    assert s3.requests("PUT", bucket, "lifecycle") == []  # no rule: CopyObject instead
    st, _, _ = s3.client.request("GET", bucket, query={"lifecycle": ""})
    assert st == 404
    want = {1: "STANDARD", 100: "STANDARD_IA", 130: "COLD"}
    for age, ks in keys.items():
        assert {s3.client.storage_class(bucket, x) for x in ks} == {want[age]}, age
    # again: the classes are right, nothing copied
    out = json.loads(lake("tier", "--table", "events", "--s3-copy", "--json"))
    assert out["objects-changed"] == 0 and out["due"] == 4
    assert canonical(read_back(lake_bin, s3, lake, bucket, tmp_path)) == canonical(rows)
    assert "ok:" in lake("verify", "--table", "events")
