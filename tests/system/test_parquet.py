"""floe-lake parquet-write / parquet-footer against independent readers.

Every file written here is read back by DuckDB (@duckdb/node-api: read_parquet,
parquet_metadata, parquet_schema) and by hyparquet (+ hyparquet-compressors for ZSTD), both
from tests/node/node_modules, and compared row for row with the NDJSON input; statistics are
compared with values computed here from the input. Files DuckDB writes are read by our footer
reader. Skipped when node or tests/node/node_modules is missing (scripts/install-deps)."""
import json
import math
import os
import random
import re
import shutil
import struct
import subprocess
from datetime import datetime
from pathlib import Path

import pytest

NODE_DIR = Path(__file__).resolve().parent.parent / "node"
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(
    NODE is None or not (NODE_DIR / "node_modules" / "@duckdb" / "node-api").is_dir()
    or not (NODE_DIR / "node_modules" / "hyparquet-compressors").is_dir(),
    reason="independent readers missing: node and tests/node/node_modules "
           "(run scripts/install-deps)")

TYPES = ["boolean", "int", "long", "float", "double", "date", "timestamp", "timestamptz",
         "string"]
INTEGRAL = {"int", "long", "date", "timestamp", "timestamptz"}
FLOATS = {"float", "double"}
SPECIAL = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf, "-0": -0.0}
PHYSICAL = {"boolean": "BOOLEAN", "int": "INT32", "long": "INT64", "float": "FLOAT",
            "double": "DOUBLE", "date": "INT32", "timestamp": "INT64", "timestamptz": "INT64",
            "string": "BYTE_ARRAY"}
DUCK_TYPE = {"boolean": "BOOLEAN", "int": "INTEGER", "long": "BIGINT", "float": "FLOAT",
             "double": "DOUBLE", "date": "DATE", "timestamp": "TIMESTAMP",
             "timestamptz": "TIMESTAMP WITH TIME ZONE", "string": "VARCHAR"}
UNICODE = ["Grüße", "日本語テキスト", "🙂 emoji", "naïve café", "ελληνικά", "", " ", "a\tb\n"]


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


# ---- running things ----

def node(script, *args, timeout=300):
    p = subprocess.run([NODE, script, *map(str, args)], cwd=NODE_DIR, capture_output=True,
                       text=True, timeout=timeout)
    assert p.returncode == 0, f"{script} failed:\n{p.stderr}"
    return json.loads(p.stdout)


def duckdb_read(path):
    return node("parquet-duckdb.mjs", path)


def hyparquet_read(path):
    return node("parquet-hyparquet.mjs", path)


def duckdb_sql(*statements):
    return node("duckdb-sql.mjs", *statements)


def write(floe_bin, tmp_path, schema, rows, *opts, name="t.parquet", expect_rc=0):
    schema_path = tmp_path / (name + ".schema.json")
    schema_path.write_text(json.dumps(schema))
    out = tmp_path / name
    text = "".join(json.dumps(r, ensure_ascii=False, allow_nan=False) + "\n" for r in rows)
    p = subprocess.run([floe_bin("floe-lake"), "parquet-write", "--schema", str(schema_path),
                        "--out", str(out), *opts], input=text.encode(), capture_output=True,
                       timeout=300)
    assert p.returncode == expect_rc, p.stderr.decode()
    if expect_rc != 0:
        return out, p.stderr.decode()
    return out, json.loads(p.stdout)


def footer(floe_bin, path, expect_rc=0):
    p = subprocess.run([floe_bin("floe-lake"), "parquet-footer", str(path)], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == expect_rc, p.stderr
    return json.loads(p.stdout) if expect_rc == 0 else p.stderr


# ---- rows ----

def col(name, fid, typ, required=False):
    return {"name": name, "id": fid, "type": typ, "required": required}


def random_value(rnd, typ, i):
    if typ == "boolean":
        return rnd.random() < 0.5
    if typ == "int":
        return rnd.choice([rnd.randint(-1000, 1000), rnd.randint(-2**31, 2**31 - 1),
                           -2**31, 2**31 - 1])
    if typ == "long":
        return rnd.choice([rnd.randint(-10**6, 10**6), rnd.randint(-2**63, 2**63 - 1),
                           -2**63, 2**63 - 1])
    if typ == "date":
        return rnd.randint(-719162, 2932896)  # years 1..9999
    if typ in ("timestamp", "timestamptz"):
        return 1763676000000000 + rnd.randint(-10**12, 10**12) if i % 5 else rnd.randint(
            -62135596800000000, 253402300799999999)
    if typ == "float":
        # 3.4028235e38 is FLT_MAX as printed: it rounds to FLT_MAX, not to infinity
        return rnd.choice([f32(rnd.uniform(-1e6, 1e6)), f32(rnd.uniform(-1, 1)), 1.5, -0.0,
                           f32(3.4e38), f32(1e-45), 3.4028235e38, rnd.uniform(-1e6, 1e6)])
    if typ == "double":
        return rnd.choice([rnd.uniform(-1e6, 1e6), round(rnd.uniform(-50, 50), 1), -0.0, 0.0,
                           5e-324, 1.7976931348623157e308, -1.7976931348623157e308])
    if typ == "string":
        k = rnd.random()
        if k < 0.3:
            return rnd.choice(UNICODE)
        if k < 0.35:
            return "long-" + "x" * rnd.randint(1000, 20000) + str(i)
        return "s-%d" % rnd.randint(0, 50)
    raise AssertionError(typ)


def make_rows(schema, n, seed=1, null_rate=0.1, specials=True):
    rnd = random.Random(seed)
    rows = []
    for i in range(n):
        row = {}
        for c in schema:
            if not c["required"] and rnd.random() < null_rate:
                if rnd.random() < 0.5:
                    row[c["name"]] = None  # an explicit null; otherwise the key is absent
                continue
            v = random_value(rnd, c["type"], i)
            if specials and c["type"] in FLOATS and rnd.random() < 0.03:
                v = rnd.choice(["NaN", "Infinity", "-Infinity"])
            row[c["name"]] = v
        rows.append(row)
    return rows


# ---- comparing ----

def expected(typ, v):
    if v is None:
        return None
    if typ in FLOATS:
        v = SPECIAL[v] if isinstance(v, str) else float(v)
        return f32(v) if typ == "float" else v
    return v


def from_reader(typ, v):
    if v is None:
        return None
    if typ in INTEGRAL:
        return int(v)
    if typ in FLOATS:
        return SPECIAL[v] if isinstance(v, str) else float(v)
    return v


def same(typ, a, b):
    if a is None or b is None:
        return a is None and b is None
    if typ in FLOATS:
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    return a == b and type(a) is type(b)


def check_rows(schema, rows, got, reader):
    assert len(got) == len(rows), f"{reader}: {len(got)} rows, wrote {len(rows)}"
    for i, (row, back) in enumerate(zip(rows, got)):
        for j, c in enumerate(schema):
            want = expected(c["type"], row.get(c["name"]))
            have = from_reader(c["type"], back[j])
            assert same(c["type"], want, have), \
                f"{reader}: row {i} column {c['name']}: wrote {want!r}, read {have!r}"


def read_both(schema, rows, path):
    """Both readers, values row for row; DuckDB's types; returns DuckDB's result."""
    duck = duckdb_read(path)
    assert [c["name"] for c in duck["columns"]] == [c["name"] for c in schema]
    assert [c["type"] for c in duck["columns"]] == [DUCK_TYPE[c["type"]] for c in schema]
    check_rows(schema, rows, duck["rows"], "duckdb")
    hyp = hyparquet_read(path)
    assert hyp["columns"] == [c["name"] for c in schema]
    check_rows(schema, rows, hyp["rows"], "hyparquet")
    return duck, hyp


def sort_key(typ, v):
    if typ == "string":
        return v.encode()
    return v


def expected_stats(typ, values):
    """(null_count, nan_count, min, max) of one chunk, by the rules of parquet.thrift."""
    vals = [expected(typ, v) for v in values]
    nulls = sum(v is None for v in vals)
    present = [v for v in vals if v is not None]
    nans = sum(1 for v in present if typ in FLOATS and math.isnan(v))
    present = [v for v in present if not (typ in FLOATS and math.isnan(v))]
    if not present:
        return nulls, nans, None, None
    lo = min(present, key=lambda v: sort_key(typ, v))
    hi = max(present, key=lambda v: sort_key(typ, v))
    if typ in FLOATS:
        lo = -0.0 if lo == 0 else lo
        hi = 0.0 if hi == 0 else hi
    return nulls, nans, lo, hi


def ours(typ, v):
    """A decoded value from floe-lake's JSON."""
    if v is None:
        return None
    if typ in FLOATS and isinstance(v, str):
        return SPECIAL[v]
    return v


def duck_stat(typ, s):
    """DuckDB's text form of a statistic, as a value."""
    if s is None:
        return None
    if typ in INTEGRAL - {"date", "timestamp", "timestamptz"}:
        return int(s)
    if typ == "float":
        return f32(float(s))  # printed as the shortest float32 text
    if typ == "double":
        return float(s)
    if typ == "boolean":
        return s == "true"
    if typ == "date":
        return (datetime.fromisoformat(s) - datetime(1970, 1, 1)).days
    if typ in ("timestamp", "timestamptz"):
        t = datetime.fromisoformat(s if typ == "timestamp" else s)
        epoch = datetime(1970, 1, 1, tzinfo=t.tzinfo)
        d = t - epoch
        return (d.days * 86400 + d.seconds) * 1000000 + d.microseconds
    return s


def check_stats(floe_bin, schema, rows, path, report, rg_rows, duck, stats_max=256):
    """Our footer, DuckDB's parquet_metadata and our report against the input."""
    f = footer(floe_bin, path)
    groups = [rows[k:k + rg_rows] for k in range(0, len(rows), rg_rows)] if rows else []
    assert f["num_rows"] == len(rows) == report["num_rows"]
    assert len(f["row_groups"]) == len(groups) == report["row_groups"]
    assert f["column_orders"] == ["TYPE_ORDER"] * len(schema)
    assert f["created_by"].startswith("floe version ")
    assert report["file_size"] == os.path.getsize(path)
    meta = {(int(m["row_group_id"]), int(m["column_id"])): m for m in duck["metadata"]}
    for g, group in enumerate(groups):
        rg = f["row_groups"][g]
        assert rg["num_rows"] == len(group)
        assert rg["file_offset"] == report["split_offsets"][g]
        assert rg["total_byte_size"] == sum(c["total_uncompressed_size"] for c in rg["columns"])
        assert rg["total_compressed_size"] == sum(c["total_compressed_size"]
                                                  for c in rg["columns"])
        for j, c in enumerate(schema):
            typ = c["type"]
            nulls, nans, lo, hi = expected_stats(typ, [r.get(c["name"]) for r in group])
            ch = rg["columns"][j]
            st = ch["statistics"]
            assert ch["num_values"] == len(group)
            assert st["null_count"] == nulls, (g, c["name"])
            if typ in FLOATS:
                assert st["nan_count"] == nans, (g, c["name"])
            else:
                assert "nan_count" not in st
            if lo is None:
                assert "min_value" not in st and "max_value" not in st, (g, c["name"])
            elif typ == "string" and len(lo.encode()) > stats_max:
                assert st["is_min_value_exact"] is False
                assert lo.encode().startswith(st["min_value"].encode())
            else:
                assert same(typ, ours(typ, st["min_value"]), lo), (g, c["name"], st, lo)
                assert st["is_min_value_exact"] is True
            if lo is not None and typ == "string" and len(hi.encode()) > stats_max:
                assert st["is_max_value_exact"] is False
                assert st["max_value"].encode() > hi.encode()
                assert len(st["max_value"].encode()) <= stats_max
            elif hi is not None:
                assert same(typ, ours(typ, st["max_value"]), hi), (g, c["name"], st, hi)
                assert st["is_max_value_exact"] is True
            # the deprecated min/max only for signed-order types
            if typ in ("string", "boolean") or lo is None:
                assert "min" not in st and "max" not in st
            else:
                assert st["min_hex"] == st["min_value_hex"]
                assert st["max_hex"] == st["max_value_hex"]
            m = meta[(g, j)]
            assert int(m["stats_null_count"]) == nulls
            assert m["type"] == PHYSICAL[typ]
            assert int(m["num_values"]) == len(group)
            assert int(m["total_compressed_size"]) == ch["total_compressed_size"]
            if lo is not None and not (typ == "string" and (len(lo.encode()) > stats_max or
                                                              len(hi.encode()) > stats_max)):
                # DuckDB shows infinite float statistics as NULL
                for key, want in (("stats_min_value", lo), ("stats_max_value", hi)):
                    if typ in FLOATS and math.isinf(want):
                        want = None
                    assert same(typ, duck_stat(typ, m[key]), want), (m, key, want)
    # the report: counts and bounds over the file
    for j, c in enumerate(schema):
        typ = c["type"]
        nulls, nans, lo, hi = expected_stats(typ, [r.get(c["name"]) for r in rows])
        rc = report["columns"][j]
        assert rc["field_id"] == c["id"] and rc["name"] == c["name"]
        assert rc["value_count"] == len(rows) and rc["null_count"] == nulls
        assert rc.get("nan_count", 0) == nans
        assert rc["compressed_size"] == sum(rg["columns"][j]["total_compressed_size"]
                                            for rg in f["row_groups"])
        if lo is None:
            assert rc["lower"] is None and rc["upper"] is None
        elif typ != "string" or max(len(lo.encode()), len(hi.encode())) <= stats_max:
            assert same(typ, ours(typ, rc["lower"]), lo) and same(typ, ours(typ, rc["upper"]), hi)
        # our footer reader derives the same report from the file
        assert f["report"]["columns"][j] == rc
    return f


def check_schema(duck, hyp, schema):
    elems = {e["name"]: e for e in duck["schema"]}
    for c in schema:
        e = elems[c["name"]]
        assert int(e["field_id"]) == c["id"]
        assert e["repetition_type"] == ("REQUIRED" if c["required"] else "OPTIONAL")
        assert e["type"] == PHYSICAL[c["type"]]
        want = {"string": ("UTF8", "StringType()"), "date": ("DATE", "DateType()"),
                "timestamptz": ("TIMESTAMP_MICROS", "isAdjustedToUTC=1"),
                "timestamp": ("TIMESTAMP_MICROS", "isAdjustedToUTC=0")}.get(c["type"])
        if want:
            assert e["converted_type"] == want[0]
            assert want[1] in e["logical_type"], e
            if c["type"].startswith("timestamp"):
                assert "MICROS=MicroSeconds()" in e["logical_type"], e
        else:
            assert e["converted_type"] is None and e["logical_type"] is None
    hschema = {e["name"]: e for e in hyp["metadata"]["schema"][1:]}
    for c in schema:
        assert hschema[c["name"]]["field_id"] == c["id"]


ALL_TYPES = [col("c_" + t, 10 + i, t, required=(i % 2 == 0)) for i, t in enumerate(TYPES)] + \
            [col("o_" + t, 100 + i, t) for i, t in enumerate(TYPES)]


@pytest.mark.parametrize("shape", ["one-row", "plain", "nulls-heavy", "many-groups"])
def test_every_type(floe_bin, tmp_path, shape):
    n, rg, null_rate, opts = {"one-row": (1, 1, 0.0, []),
                              "plain": (3000, 3000, 0.1, []),
                              "nulls-heavy": (2000, 2000, 0.8, []),
                              "many-groups": (5500, 1000, 0.2, ["--row-group-rows", "1000"]),
                              }[shape]
    rows = make_rows(ALL_TYPES, n, seed=n, null_rate=null_rate)
    path, report = write(floe_bin, tmp_path, ALL_TYPES, rows, *opts)
    duck, hyp = read_both(ALL_TYPES, rows, path)
    check_schema(duck, hyp, ALL_TYPES)
    check_stats(floe_bin, ALL_TYPES, rows, path, report, rg, duck)
    assert all(m["compression"] == "ZSTD" for m in duck["metadata"])


def test_zero_rows(floe_bin, tmp_path):
    path, report = write(floe_bin, tmp_path, ALL_TYPES, [])
    duck, _ = read_both(ALL_TYPES, [], path)
    assert duck["metadata"] == []
    f = check_stats(floe_bin, ALL_TYPES, [], path, report, 1, duck)
    assert f["row_groups"] == [] and report["split_offsets"] == []


def test_all_null_and_all_nan(floe_bin, tmp_path):
    schema = [col("id", 1, "long", True), col("nothing", 2, "string"), col("nan", 3, "double"),
              col("fnan", 4, "float"), col("nulls", 5, "timestamptz"), col("b", 6, "boolean")]
    rows = [{"id": i, "nothing": None, "nan": "NaN", "fnan": "NaN" if i % 2 else None}
            for i in range(500)]
    path, report = write(floe_bin, tmp_path, schema, rows)
    duck, _ = read_both(schema, rows, path)
    f = check_stats(floe_bin, schema, rows, path, report, 500, duck)
    st = f["row_groups"][0]["columns"][2]["statistics"]
    assert st == {"null_count": 0, "nan_count": 500}
    assert report["columns"][2]["nan_count"] == 500 and report["columns"][2]["lower"] is None
    assert report["columns"][1]["null_count"] == 500
    # an all-null string column has no dictionary page
    assert f["row_groups"][0]["columns"][1]["dictionary_page_offset"] is None


def test_strings_dictionary_and_fallback(floe_bin, tmp_path):
    schema = [col("few", 1, "string", True), col("unique", 2, "string", True),
              col("grows", 3, "string"), col("n", 4, "long", True)]
    rows = [{"few": ["acme", "globex", "initech"][i % 3],
             "unique": "id-%08d-%s" % (i * 7919 % 100003, "ü" * (i % 5)),
             "grows": "g%d" % (i // 4) if i % 11 else None, "n": i} for i in range(6000)]
    # small pages so the dictionary of 'grows' serves some pages before it passes --dict-size
    path, report = write(floe_bin, tmp_path, schema, rows, "--page-size", "2KiB",
                         "--dict-size", "8KiB")
    duck, _ = read_both(schema, rows, path)
    f = check_stats(floe_bin, schema, rows, path, report, 6000, duck)
    few, unique, grows = f["row_groups"][0]["columns"][:3]
    assert few["encodings"] == ["PLAIN", "RLE_DICTIONARY"]
    assert few["encoding_stats"]["other_data_pages"] == 0
    assert few["encoding_stats"]["dictionary_data_pages"] > 0
    assert 4 <= few["dictionary_page_offset"] < few["data_page_offset"]
    # unique values: the dictionary never pays, PLAIN only, no dictionary page
    assert unique["encodings"] == ["PLAIN"] and unique["dictionary_page_offset"] is None
    # fallback after some dictionary pages: both kinds of data page
    assert set(grows["encodings"]) == {"PLAIN", "RLE", "RLE_DICTIONARY"}
    assert grows["encoding_stats"]["dictionary_data_pages"] > 0
    assert grows["encoding_stats"]["other_data_pages"] > 0
    duck_enc = {m["path_in_schema"]: m["encodings"] for m in duck["metadata"]}
    assert "RLE_DICTIONARY" in duck_enc["grows"] and "PLAIN" in duck_enc["grows"]


@pytest.mark.parametrize("opts,enc", [
    (["--int-encoding", "delta"], {"int", "long", "date", "timestamp", "timestamptz"}),
    (["--float-encoding", "byte-stream-split"], {"float", "double"}),
    (["--int-encoding", "delta", "--float-encoding", "byte-stream-split", "--page-size", "4KiB"],
     {"int", "long", "date", "timestamp", "timestamptz", "float", "double"}),
])
def test_encoding_options(floe_bin, tmp_path, opts, enc):
    schema = ALL_TYPES
    rows = make_rows(schema, 2500, seed=11)
    # sorted, gapped and constant runs exercise the delta bit widths
    for i, r in enumerate(rows):
        if i < 600:
            r["c_timestamptz"] = 1763676000000000 + i * 1000 + (i % 3)
            r["c_long"] = 42
    path, report = write(floe_bin, tmp_path, schema, rows, *opts)
    duck, _ = read_both(schema, rows, path)
    check_stats(floe_bin, schema, rows, path, report, 2500, duck)
    for m in duck["metadata"]:
        typ = schema[int(m["column_id"])]["type"]
        name = {"float": "BYTE_STREAM_SPLIT", "double": "BYTE_STREAM_SPLIT"}.get(
            typ, "DELTA_BINARY_PACKED")
        assert (name in m["encodings"]) == (typ in enc), (typ, m["encodings"])


@pytest.mark.parametrize("compression", [["--compression", "none"], ["--level", "1"],
                                         ["--level", "19"], ["--level", "-5"]])
def test_compression(floe_bin, tmp_path, compression):
    schema = ALL_TYPES[:9]
    rows = make_rows(schema, 1500, seed=5)
    path, report = write(floe_bin, tmp_path, schema, rows, *compression)
    duck, _ = read_both(schema, rows, path)
    check_stats(floe_bin, schema, rows, path, report, 1500, duck)
    want = "UNCOMPRESSED" if "none" in compression else "ZSTD"
    assert {m["compression"] for m in duck["metadata"]} == {want}
    for m in duck["metadata"]:
        if want == "UNCOMPRESSED":
            assert m["total_compressed_size"] == m["total_uncompressed_size"]


def test_row_group_byte_bound(floe_bin, tmp_path):
    schema = [col("ts", 1, "timestamptz", True), col("v", 2, "double"), col("s", 3, "string")]
    rnd = random.Random(3)
    rows = [{"ts": 1763676000000000 + rnd.randint(0, 10**12), "v": rnd.random(),
             "s": "x%d" % rnd.randint(0, 10**6)} for i in range(40000)]
    path, report = write(floe_bin, tmp_path, schema, rows, "--row-group-size", "64KiB",
                         "--page-size", "8KiB")
    duck, _ = read_both(schema, rows, path)
    f = footer(floe_bin, path)
    sizes = [rg["total_compressed_size"] for rg in f["row_groups"]]
    counts = [rg["num_rows"] for rg in f["row_groups"]]
    assert len(sizes) > 3 and sum(counts) == 40000
    # buffered bytes are checked every 4096 rows: a row group ends at most one slice late
    assert all(s < 64 * 1024 + 4096 * 24 for s in sizes), sizes
    assert report["split_offsets"] == [rg["file_offset"] for rg in f["row_groups"]]


def test_stats_truncation(floe_bin, tmp_path):
    schema = [col("s", 1, "string", True)]
    rows = [{"s": "m" + "é" * 20 + str(i)} for i in range(50)] + \
           [{"s": "a" * 40}, {"s": "z" + "\U0010ffff" * 5}, {"s": "b" * 3}]
    path, report = write(floe_bin, tmp_path, schema, rows, "--stats-max", "16")
    duck, _ = read_both(schema, rows, path)
    check_stats(floe_bin, schema, rows, path, report, len(rows), duck, stats_max=16)
    st = footer(floe_bin, path)["row_groups"][0]["columns"][0]["statistics"]
    assert st["min_value"] == "a" * 16 and st["is_min_value_exact"] is False
    # U+10FFFF cannot be incremented: the bound steps back to the character before
    assert st["max_value"] == "{" and st["is_max_value_exact"] is False


def test_metadata_and_created_by(floe_bin, tmp_path):
    schema = [col("a", 7, "long", True)]
    ice = json.dumps({"type": "struct", "schema-id": 0,
                      "fields": [{"id": 7, "name": "a", "required": True, "type": "long"}]})
    path, _ = write(floe_bin, tmp_path, schema, [{"a": 1}], "--kv", "iceberg.schema=" + ice,
                    "--kv", "k=v=w")
    duck = duckdb_read(path)
    kv = {r["key"]: r["value"] for r in duck["kv"]}
    assert kv == {"iceberg.schema": ice, "k": "v=w"}
    created_by = duck["file"][0]["created_by"]
    # parquet-java's VersionParser: application "floe", a semantic version, a build
    m = re.fullmatch(r"(.*?)\s+version\s*(?:([^(]*?)\s*(?:\(\s*build\s*([^)]*?)\s*\))?)?",
                     created_by)
    assert m and m.group(1) == "floe" and re.fullmatch(r"\d+\.\d+\.\d+", m.group(2))
    assert m.group(3)


def test_rejected_input(floe_bin, tmp_path):
    schema = [col("a", 1, "long", True), col("s", 2, "string")]
    for rows, why in [([{"a": 1}, {"s": "x"}], "line 2: column 'a' is required"),
                      ([{"a": "1"}], "line 1: column 'a': not a long value"),
                      ([{"a": 1, "zz": 2}], "line 1: unknown column 'zz'"),
                      ([{"a": 2**63}], "line 1: column 25: too big integer")]:
        out, err = write(floe_bin, tmp_path, schema, rows, expect_rc=1)
        assert why in err, err
        assert not out.exists() and list(tmp_path.glob("*.tmp-*")) == []


def test_footer_rejects_damaged_files(floe_bin, tmp_path):
    schema = [col("a", 1, "long", True), col("s", 2, "string")]
    path, _ = write(floe_bin, tmp_path, schema, make_rows(schema, 100))
    data = path.read_bytes()
    mlen = struct.unpack("<I", data[-8:-4])[0]
    cases = {
        "truncated": (data[:-3], "no PAR1 at the end of the file"),
        "no-magic": (data[:-4] + b"PARX", "no PAR1 at the end of the file"),
        "huge-length": (data[:-8] + struct.pack("<I", 0x7fffffff) + b"PAR1",
                        f"FileMetaData of 2147483647 bytes in a {len(data)}-byte file"),
        "cut-metadata": (data[:-8 - mlen] + data[-8 - mlen + 20:-8] +
                         struct.pack("<I", mlen - 20) + b"PAR1", " at offset "),
        "bad-field-type": (data[:-8 - mlen] + b"\x1f" + data[-8 - mlen + 1:],
                           "invalid field type 15 in FileMetaData at offset 0"),
        "not-parquet": (b"PAR1", "not a Parquet file (4 bytes)"),
    }
    for name, (bad, why) in cases.items():
        p = tmp_path / (name + ".parquet")
        p.write_bytes(bad)
        err = footer(floe_bin, p, expect_rc=1)
        assert err.startswith(f"floe-lake: {p}: ") and why in err, (name, err)


DUCK_COPY = """COPY (SELECT i::BIGINT AS id,
  (i % 1000)::INTEGER AS small,
  CASE WHEN i % 7 = 0 THEN NULL ELSE (i * 0.25 - 100)::DOUBLE END AS dbl,
  (i * 1.5)::FLOAT AS flt,
  (i % 100 * 0.01)::DECIMAL(9, 2) AS dec,
  CASE WHEN i % 5 = 0 THEN NULL ELSE 'name-' || (i % 37) END AS name,
  'ü-' || lpad((i * 7919 % 5003)::VARCHAR, 6, '0') AS uniq,
  i % 3 = 0 AS flag,
  DATE '2024-01-01' + (i % 400)::INTEGER AS day,
  TIMESTAMPTZ '2025-11-20 00:00:00+00' + to_microseconds(i * 1000003) AS ts
  FROM range({n}) t(i)) TO '{path}' (FORMAT parquet, COMPRESSION {codec},
  ROW_GROUP_SIZE {rg}{extra})"""


@pytest.mark.parametrize("codec,rg,extra", [("zstd", 2048, ""), ("snappy", 10000, ""),
                                            ("zstd", 4096, ", FIELD_IDS 'auto'"),
                                            ("uncompressed", 100000, ", PARQUET_VERSION V2")])
def test_footer_of_duckdb_files(floe_bin, tmp_path, codec, rg, extra):
    path = tmp_path / "duck.parquet"
    n = 10000
    duckdb_sql(DUCK_COPY.format(n=n, path=path, codec=codec, rg=rg, extra=extra))
    f = footer(floe_bin, path)
    duck = duckdb_read(path)
    meta = {(int(m["row_group_id"]), int(m["column_id"])): m for m in duck["metadata"]}
    names = [c["name"] for c in duck["columns"]]
    assert f["num_rows"] == n and f["created_by"].startswith("DuckDB")
    assert len(f["row_groups"]) == len({k[0] for k in meta})
    assert [e["name"] for e in f["schema"][1:]] == names
    for g, rg_ in enumerate(f["row_groups"]):
        for j, ch in enumerate(rg_["columns"]):
            m = meta[(g, j)]
            st = ch["statistics"]
            assert ch["path"] == [names[j]]
            assert ch["num_values"] == int(m["num_values"])
            assert ch["codec"] == m["compression"]
            assert ch["data_page_offset"] == int(m["data_page_offset"])
            assert ch["total_compressed_size"] == int(m["total_compressed_size"])
            assert st["null_count"] == int(m["stats_null_count"])
            for ours_key, duck_key in [("min_value", "stats_min_value"),
                                       ("max_value", "stats_max_value")]:
                if ch["type"] == "BYTE_ARRAY":
                    assert st[ours_key] == m[duck_key]
                elif ch["type"] in ("INT64", "INT32") and names[j] in ("id", "small"):
                    assert st[ours_key] == int(m[duck_key])
                elif ch["type"] in ("DOUBLE", "FLOAT"):
                    assert st[ours_key] == float(m[duck_key])
    # the report's bounds and counts match DuckDB's own aggregates over the file
    agg = duckdb_sql(f"""SELECT min(id) a, max(id) b, min(dbl) c, max(dbl) d,
        count(*) - count(dbl) e, min(name) f, max(name) g, count(*) - count(name) h,
        min(uniq) i, max(uniq) j, min(small) k, max(small) l
        FROM read_parquet('{path}')""")[0]
    cols = {c["name"]: c for c in f["report"]["columns"]}
    assert cols["id"]["lower"] == int(agg["a"]) and cols["id"]["upper"] == int(agg["b"])
    assert cols["dbl"]["lower"] == agg["c"] and cols["dbl"]["upper"] == agg["d"]
    assert cols["dbl"]["null_count"] == int(agg["e"]) and cols["dbl"]["value_count"] == n
    assert cols["name"]["lower"] == agg["f"] and cols["name"]["upper"] == agg["g"]
    assert cols["name"]["null_count"] == int(agg["h"])
    assert cols["uniq"]["lower"] == agg["i"] and cols["uniq"]["upper"] == agg["j"]
    assert cols["small"]["lower"] == agg["k"] and cols["small"]["upper"] == agg["l"]
    assert cols["flag"]["lower"] is False and cols["flag"]["upper"] is True
    # decimals sort as signed numbers, not bytes: no bounds from the footer
    assert cols["dec"]["lower"] is None and cols["dec"]["null_count"] == 0
    if "FIELD_IDS" in extra:
        assert [c["field_id"] for c in f["report"]["columns"]] == list(range(len(names)))
    else:
        assert all(c["field_id"] is None for c in f["report"]["columns"])
