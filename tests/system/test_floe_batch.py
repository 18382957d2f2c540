"""floe-batch end to end: its output read by an independent decoder (wire_ref.py),
carried through a real mosquitto, and its answers to bad input."""
import json
import math
import random
import subprocess

import pytest

import floe_mqtt
import wire_ref

IDENTITY = "acme.gw-0001"


def make_rows(n=3000, seed=7):
    rnd = random.Random(seed)
    rows = []
    for i in range(n):
        sensor = "sensor-%d" % (i % 37)
        res = [1, 2, 0, None][i % 37 % 4]  # decimals, or full precision
        if res is None:
            value = rnd.uniform(-1e6, 1e6)
        else:
            value = round(rnd.uniform(-500, 500), res)
        if i % 53 == 0:
            value = None
        row = {"tenant": "acme", "device": "gw-0001", "sensor": sensor,
               "metric": ["temp", "hum", "ünit"][i % 3],
               "ts": 1763676000000000 + i * 50000 - (i % 7) * 3, "value": value}
        if i % 97 == 5:
            row["text"] = rnd.choice(["open", "closed", "fault \"E7\"\n"])
        rows.append(row)
    rows.append(dict(rows[1], value=-0.0))
    rows.append(dict(rows[2], value=5e-324, ts=-1))
    return rows


def ndjson(rows):
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def same_value(a, b):
    if a is None or b is None:
        return a is b
    return a == b and math.copysign(1, a) == math.copysign(1, b)


def assert_rows_equal(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        for key in w:
            if isinstance(w[key], float) or w[key] is None:
                assert same_value(g[key], w[key]), (key, g, w)
            else:
                assert g[key] == w[key], (key, g, w)
        assert set(g) == set(w)


def run(args, **kw):
    return subprocess.run(args, capture_output=True, timeout=60, **kw)


def encode(floe_bin, tmp_path, rows, *flags):
    src = tmp_path / "in.ndjson"
    out = tmp_path / "out.fb"
    src.write_text(ndjson(rows), encoding="utf-8")
    r = run([floe_bin("floe-batch"), "encode", "--epoch", "77", "--seq", "5",
             "--created", "1763676099000000", *flags, "-o", str(out), str(src)])
    assert r.returncode == 0, r.stderr.decode()
    return out.read_bytes()


def test_independent_decoder_reads_events(floe_bin, tmp_path):
    rows = make_rows()
    frame = encode(floe_bin, tmp_path, rows)
    header, got = wire_ref.decode(frame)
    assert header == {"v": 1, "kind": "events", "id": IDENTITY, "epoch": 77, "seq": 5,
                      "created": 1763676099000000}
    assert_rows_equal(got, rows)


def test_independent_decoder_reads_aggregates(floe_bin, tmp_path):
    rows = [{"tenant": "acme", "device": "gw-0001", "sensor": "s%d" % (i % 5),
             "metric": "temp", "window_start": 1763676000000000 + (i // 5) * 60000000,
             "window_s": 60, "count": 0 if i == 3 else 60 + i,
             "sum": None if i == 3 else i * 12.5, "min": None if i == 3 else -i / 10,
             "max": None if i == 3 else i + 0.25, "first": None if i == 3 else 1 / (i + 1),
             "last": None if i == 3 else float(i)} for i in range(200)]
    frame = encode(floe_bin, tmp_path, rows, "--kind", "aggregates")
    header, got = wire_ref.decode(frame)
    assert header["kind"] == "aggregates"
    assert_rows_equal(got, rows)


def test_decode_round_trip_is_exact(floe_bin, tmp_path):
    rows = make_rows()
    frame = encode(floe_bin, tmp_path, rows)
    r = run([floe_bin("floe-batch"), "decode", str(tmp_path / "out.fb")])
    assert r.returncode == 0, r.stderr.decode()
    text = r.stdout.decode("utf-8")
    assert_rows_equal([json.loads(line) for line in text.splitlines()], rows)
    # the printed form is canonical: encoding it again gives the same batch and text
    (tmp_path / "canon.ndjson").write_text(text, encoding="utf-8")
    r2 = run([floe_bin("floe-batch"), "encode", "--epoch", "77", "--seq", "5",
              "--created", "1763676099000000", "-o", str(tmp_path / "again.fb"),
              str(tmp_path / "canon.ndjson")])
    assert r2.returncode == 0, r2.stderr.decode()
    assert (tmp_path / "again.fb").read_bytes() == frame
    r3 = run([floe_bin("floe-batch"), "decode", str(tmp_path / "again.fb")])
    assert r3.stdout.decode("utf-8") == text


def test_batches_cross_a_real_broker(floe_bin, tmp_path, mosquitto):
    frames = []
    for seq in range(5):
        rows = make_rows(n=500, seed=seq)
        frames.append(encode(floe_bin, tmp_path, rows, "--seq", str(seq)))
    topic = "floe/v1/%s/batch" % IDENTITY
    with floe_mqtt.Subscriber(mosquitto.host, mosquitto.port, topic, qos=1) as sub:
        with floe_mqtt.Publisher(mosquitto.host, mosquitto.port) as pub:
            for f in frames:
                pub.publish(topic, f, qos=1)
        got = sub.wait_for(len(frames), timeout=10)
    assert [m.payload for m in got] == frames
    for seq, m in enumerate(got):
        header, rows = wire_ref.decode(m.payload)
        assert header["seq"] == seq
        assert_rows_equal(rows, make_rows(n=500, seed=seq))


def test_stat(floe_bin, tmp_path):
    encode(floe_bin, tmp_path, make_rows())
    r = run([floe_bin("floe-batch"), "stat", str(tmp_path / "out.fb")])
    assert r.returncode == 0, r.stderr.decode()
    out = r.stdout.decode()
    for needle in ("identity     acme.gw-0001", "epoch        77", "seq          5",
                   "rows         3002", "kind         events", "wire bytes", "bytes/event"):
        assert needle in out, out


@pytest.mark.parametrize("payload,reason", [
    (b"", "not-zstd"),
    (b'{"not":"a batch"}', "not-zstd"),
    (b"\x28\xb5\x2f\xfd\x24\x00\x01\x00\x00", "zstd-corrupt"),
])
def test_decode_rejects_with_one_line_reason(floe_bin, tmp_path, payload, reason):
    bad = tmp_path / "bad.fb"
    bad.write_bytes(payload)
    r = run([floe_bin("floe-batch"), "decode", str(bad)])
    assert r.returncode == 1
    err = r.stderr.decode()
    assert err.count("\n") == 1 and "rejected: " + reason in err, err
    assert r.stdout == b""


def test_decode_rejects_truncated_and_oversized(floe_bin, tmp_path):
    frame = encode(floe_bin, tmp_path, make_rows())
    (tmp_path / "cut.fb").write_bytes(frame[:-10])
    r = run([floe_bin("floe-batch"), "decode", str(tmp_path / "cut.fb")])
    assert r.returncode == 1 and b"rejected: zstd-corrupt" in r.stderr, r.stderr
    r = run([floe_bin("floe-batch"), "decode", "--max-rows", "100", str(tmp_path / "out.fb")])
    assert r.returncode == 1 and b"rejected: too-many-rows" in r.stderr, r.stderr
    r = run([floe_bin("floe-batch"), "decode", "--max-compressed", "1000",
             str(tmp_path / "out.fb")])
    assert r.returncode == 1 and b"rejected: too-large" in r.stderr, r.stderr


@pytest.mark.parametrize("line,message", [
    ('{"tenant":"acme","device":"gw-0001","sensor":"s","metric":"m","ts":1.5,"value":1}',
     '"ts": expected an integer'),
    ('{"tenant":"acme","device":"gw-0001","sensor":"s","metric":"m","ts":1,"value":"x"}',
     '"value": expected a number or null'),
    ('{"tenant":"acme","device":"gw-0001","sensor":"s","metric":"m","ts":1,"colour":1}',
     'unknown key "colour"'),
    ('{"tenant":"other","device":"gw-0001","sensor":"s","metric":"m","ts":1,"value":1}',
     "row is for other.gw-0001, the batch for acme.gw-0001"),
    ('{"tenant":"acme","device":"gw-0001","sensor":"","metric":"m","ts":1,"value":1}',
     "empty name"),
    ('{"tenant":"acme","device":"gw-0001","sensor":"s","metric":"m","ts":1,"value":1',
     "column"),
])
def test_encode_names_file_and_line(floe_bin, tmp_path, line, message):
    good = make_rows(n=3)
    src = tmp_path / "rows.ndjson"
    src.write_text(ndjson(good) + line + "\n", encoding="utf-8")
    r = run([floe_bin("floe-batch"), "encode", "-o", str(tmp_path / "x.fb"), str(src)])
    assert r.returncode == 1
    err = r.stderr.decode()
    assert "%s:%d: " % (src, len(good) + 1) in err and message in err, err


def test_usage_errors(floe_bin):
    assert run([floe_bin("floe-batch")]).returncode == 2
    assert run([floe_bin("floe-batch"), "frobnicate"]).returncode == 2
    r = run([floe_bin("floe-batch"), "encode", "--kind", "metrics", "-"], input=b"")
    assert r.returncode == 2 and b"--kind" in r.stderr
    r = run([floe_bin("floe-batch"), "decode", "/nonexistent/batch"])
    assert r.returncode == 2 and b"No such file" in r.stderr


def test_every_program_says_the_packaged_version(floe_bin):
    """--version of every program prints the version packaging/debian/changelog gives."""
    from pathlib import Path

    changelog = Path(__file__).resolve().parents[2] / "packaging" / "debian" / "changelog"
    version = changelog.read_text().split("(", 1)[1].split(")", 1)[0]
    for prog in ("floe-agent", "floe-uploader", "floe-ca", "floe-enrolld", "floe-batch",
                 "floe-lake"):
        p = subprocess.run([str(floe_bin(prog)), "--version"], capture_output=True, text=True,
                           timeout=10)
        assert p.returncode == 0, (prog, p.stderr)
        assert p.stdout.split()[:2] == [prog, version], (prog, p.stdout)
