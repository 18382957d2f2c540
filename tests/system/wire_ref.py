"""An independent reader of the floe wire format, written from docs/wire-format.md.

It uses python3-zstandard and python3-cbor2 and shares no code with lib/. System tests
decode what the C encoder wrote with it, so a bug that the C encoder and decoder share
(and would hide from a round trip) shows up here.
"""
import math
import struct

import cbor2
import zstandard

HEADER = ["v", "kind", "id", "epoch", "seq", "created", "rows", "sensors", "metrics",
          "series", "s", "t"]
EVENT_KEYS = set(HEADER) | {"val", "text"}
AGG_COLS = ["sum", "min", "max", "first", "last"]
AGG_KEYS = set(HEADER) | {"w", "n"} | set(AGG_COLS)


class Rejected(Exception):
    pass


def varints(data):
    out, v, shift = [], 0, 0
    for i, c in enumerate(data):
        v |= (c & 0x7F) << shift
        if c & 0x80:
            shift += 7
            if shift > 63:
                raise Rejected("varint too long")
            continue
        if c == 0 and shift > 0:
            raise Rejected("non-minimal varint")
        out.append(v)
        v, shift = 0, 0
    if shift:
        raise Rejected("truncated varint")
    return out


def unzigzag(u):
    return (u >> 1) ^ -(u & 1)


def wrap64(v):
    v &= (1 << 64) - 1
    return v - (1 << 64) if v >= 1 << 63 else v


def double_column(col, rows, row_series, nseries):
    nulls = [False] * rows
    if "null" in col:
        bitmap = col["null"]
        if len(bitmap) != (rows + 7) // 8:
            raise Rejected("null bitmap length")
        nulls = [bool(bitmap[i // 8] >> (i % 8) & 1) for i in range(rows)]
    scale = col["scale"]
    scales = list(scale) if isinstance(scale, bytes) else [scale] * nseries
    if len(scales) != nseries:
        raise Rejected("scale length")
    dec = varints(col.get("dec", b""))
    f64 = col.get("f64")
    if f64 is not None:
        if not isinstance(f64, cbor2.CBORTag) or f64.tag != 86:
            raise Rejected("f64 must be tag 86")
        f64 = f64.value
    f64 = f64 or b""
    floats = list(struct.unpack("<%dd" % (len(f64) // 8), f64))
    last = [0] * nseries
    out, di, fi = [], 0, 0
    for i in range(rows):
        if nulls[i]:
            out.append(None)
            continue
        s = row_series[i]
        k = scales[s]
        if k == 255:
            v = floats[fi]
            fi += 1
            if not math.isfinite(v):
                raise Rejected("non-finite")
        elif 0 <= k <= 15:
            m = last[s] + unzigzag(dec[di])
            di += 1
            if abs(m) > 2**53:
                raise Rejected("mantissa")
            last[s] = m
            v = m / 10**k  # Python int / int is correctly rounded
        else:
            raise Rejected("scale %d" % k)
        out.append(v)
    if di != len(dec) or fi != len(floats):
        raise Rejected("column length")
    return out


def decode(frame):
    """Returns (header dict, list of row dicts in the NDJSON form)."""
    if frame[:4] != b"\x28\xb5\x2f\xfd":
        raise Rejected("not zstd")
    if not frame[4] & 0x04:
        raise Rejected("no checksum")
    params = zstandard.get_frame_parameters(frame)
    if params.content_size == zstandard.CONTENTSIZE_UNKNOWN:
        raise Rejected("no content size")
    raw = zstandard.ZstdDecompressor().decompress(frame)
    return decode_map(raw)


def decode_map(raw):
    m = cbor2.loads(raw)
    keys = list(m)
    if keys[:2] != ["v", "kind"] or m["v"] != 1:
        raise Rejected("version")
    kind = m["kind"]
    allowed = EVENT_KEYS if kind == "events" else AGG_KEYS
    for k in keys:
        if k not in allowed and not k.startswith("x-"):
            raise Rejected("unknown key " + k)
    rows = m["rows"]
    sensors, metrics = m["sensors"], m["metrics"]
    deltas = [unzigzag(d) for d in varints(m["series"])]
    series, si, mi = [], 0, 0
    for ds, dm in zip(deltas[0::2], deltas[1::2]):
        si, mi = si + ds, mi + dm
        series.append((si, mi))
    row_series, prev = [], 0
    for d in varints(m["s"]):
        prev += unzigzag(d)
        row_series.append(prev)
    times, t = [], 0
    for d in varints(m["t"]):
        t = wrap64(t + unzigzag(d))
        times.append(t)
    if len(row_series) != rows or len(times) != rows:
        raise Rejected("row count")
    tenant, device = m["id"].split(".")
    out = []
    if kind == "events":
        values = double_column(m["val"], rows, row_series, len(series))
        texts = [None] * rows
        if "text" in m:
            idx = varints(m["text"]["idx"])
            texts = [m["text"]["dict"][i - 1] if i else None for i in idx]
        for i in range(rows):
            si, mi = series[row_series[i]]
            r = {"tenant": tenant, "device": device, "sensor": sensors[si],
                 "metric": metrics[mi], "ts": times[i], "value": values[i]}
            if texts[i] is not None:
                r["text"] = texts[i]
            out.append(r)
    else:
        w, n = varints(m["w"]), varints(m["n"])
        cols = {c: double_column(m[c], rows, row_series, len(series)) for c in AGG_COLS}
        for i in range(rows):
            si, mi = series[row_series[i]]
            r = {"tenant": tenant, "device": device, "sensor": sensors[si],
                 "metric": metrics[mi], "window_start": times[i], "window_s": w[i],
                 "count": n[i]}
            r.update({c: cols[c][i] for c in AGG_COLS})
            out.append(r)
    header = {k: m[k] for k in ("v", "kind", "id", "epoch", "seq", "created")}
    return header, out
