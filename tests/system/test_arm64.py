"""The arm64 packages (docs/packaging.md, "arm64"): the cross-built programs, and the packaged
floe-agent run under qemu-user.

`make deb ARCH=arm64` (scripts/ci-arm64 in CI) cross-builds the packages into build/deb-arm64.
This file takes floe-agent out of its .deb (dpkg-deb -x: the package is what is tested, not a
build tree) and runs it with `qemu-aarch64-static -L /` against the arm64 libraries installed
through multiarch. It checks:

- every program of the three packages is an AArch64 executable for /lib/ld-linux-aarch64.so.1,
  and floe-agent's Depends name the package of every library it needs;
- `floe-agent --version` prints the package's version;
- with its packaged conffile and a drop-in (board sim, no broker), the agent's outbox fills with
  records that are well-formed by docs/outbox.md, decode by docs/wire-format.md (wire_ref.py)
  and hold exactly the sim board's walks (docs/boards.md), computed here; SIGTERM stops it
  with exit 0, the open batch and windows in the outbox and the exact next seq in meta;
- over mutual TLS to a loopback mosquitto, its batches are acknowledged by the consumer.

None of it uses floe's code: the outbox and wire readers here and in wire_ref.py are written
from the documents. Skipped, with the reason, unless the arm64 packages are in build/deb-arm64
(or FLOE_ARM64_DEBS=DIR) and qemu-aarch64-static is installed; with FLOE_ARM64_REQUIRED=1
(scripts/ci-arm64) that is an error instead.
"""

import os
import re
import shutil
import struct
from pathlib import Path

import pytest

import wire_ref
from agent_run import Agent
from conftest import run

ROOT = Path(__file__).resolve().parents[2]
DEBS = Path(os.environ.get("FLOE_ARM64_DEBS") or ROOT / "build" / "deb-arm64")
QEMU = shutil.which("qemu-aarch64-static")
PACKAGES = ("floe-agent", "floe-uploader", "floe-ca")
IDENTITY = "acme.gw-arm64"
EM_AARCH64 = 183
INTERP = "/lib/ld-linux-aarch64.so.1"
MULTIARCH_DIRS = ("/usr/lib/aarch64-linux-gnu", "/lib/aarch64-linux-gnu")

# The sim board of these runs (docs/boards.md): 2 sensors x 3 metrics, a poll every 100 ms.
SIM = {"sensors": 2, "metrics": 3, "interval": "100ms", "seed": 7}
SIM_METRICS = ["temp", "humidity", "pressure"]


def _debs():
    return {p: sorted(DEBS.glob(f"{p}_*_arm64.deb")) for p in PACKAGES}


def _skip_reason():
    if re.search(r"(^|\s)SANITIZE=1(\s|$)", os.environ.get("MAKEFLAGS", "")):
        return ("make check SANITIZE=1: the arm64 packages (built without sanitizers) are "
                "checked by the plain make check")
    if not shutil.which("dpkg-deb"):
        return "dpkg-deb missing (apt-get install dpkg)"
    missing = [p for p, found in _debs().items() if not found]
    if missing:
        return (f"no arm64 packages ({', '.join(missing)}) in {DEBS}: make deb ARCH=arm64 "
                "or scripts/ci-arm64 builds them (FLOE_ARM64_DEBS=DIR for another directory)")
    if not QEMU:
        return "qemu-aarch64-static missing (apt-get install qemu-user-static)"
    return None


if _skip_reason() is not None and os.environ.get("FLOE_ARM64_REQUIRED") == "1":
    # scripts/ci-arm64: a skip there would hide a broken set-up
    pytest.fail(f"FLOE_ARM64_REQUIRED=1: {_skip_reason()}", pytrace=False)
pytestmark = pytest.mark.skipif(_skip_reason() is not None, reason=str(_skip_reason()))


def deb_field(deb, field):
    return run("dpkg-deb", "-f", deb, field).stdout.strip()


def depends_names(depends):
    """Package names of a Depends field, alternatives included."""
    names = set()
    for clause in depends.split(","):
        for alt in clause.split("|"):
            if alt.strip():
                names.add(re.split(r"[\s(:]", alt.strip(), maxsplit=1)[0])
    return names


# -- ELF (enough of the System V ABI to name the machine and the interpreter) -------------

def elf_machine_and_interp(path):
    data = Path(path).read_bytes()
    assert data[:4] == b"\x7fELF", f"{path}: not ELF"
    assert data[4] == 2 and data[5] == 1, f"{path}: not a 64-bit little-endian ELF"
    (machine,) = struct.unpack_from("<H", data, 18)
    (phoff,) = struct.unpack_from("<Q", data, 32)
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    interp = None
    for i in range(phnum):
        p_type, _, p_offset, _, _, p_filesz = struct.unpack_from("<IIQQQQ", data,
                                                                  phoff + i * phentsize)
        if p_type == 3:  # PT_INTERP
            interp = data[p_offset:p_offset + p_filesz].rstrip(b"\0").decode()
    return machine, interp


# -- the outbox, from docs/outbox.md -------------------------------------------------------

def _crc32c_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


CRC32C_TABLE = _crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = CRC32C_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283  # the check value docs/outbox.md gives

SEG_RE = re.compile(r"seg-([0-9a-f]{16})\.log")


def read_segment(path):
    """[(kind, events, epoch, seq, payload)]; fails unless the file is records and nothing
    else, each well-formed (§3)."""
    data = path.read_bytes()
    records, off = [], 0
    while off < len(data):
        assert len(data) - off >= 40, f"{path.name}@{off}: truncated header"
        magic, version, kind, flags, length, events, epoch, seq, hcrc, crc = \
            struct.unpack_from("<4sBBHIIQQII", data, off)
        where = f"{path.name}@{off}"
        assert magic == b"FOBX" and version == 1 and flags == 0, f"{where}: bad header"
        assert hcrc == crc32c(data[off:off + 32]), f"{where}: header CRC"
        assert 1 <= length <= 64 << 20 and events < 1 << 31, f"{where}: bad length/events"
        assert 1 <= seq < 1 << 63, f"{where}: bad seq"
        end = off + 40 + length
        assert end <= len(data), f"{where}: payload beyond the file"
        payload = data[off + 40:end]
        assert crc == crc32c(data[off:off + 36] + payload), f"{where}: record CRC"
        records.append((kind, events, epoch, seq, payload))
        off = end
    return records


def read_meta(path):
    """The valid meta slot with the highest generation (§4), as a dict; both slots checked."""
    data = path.read_bytes()
    slots = []
    for off in (0, 4096):
        s = data[off:off + 64]
        if len(s) < 64:
            continue
        magic, version, zero, gen, epoch, next_seq, done_below = struct.unpack_from(
            "<4sHHQQQQ", s)
        (crc,) = struct.unpack_from("<I", s, 60)
        if (magic == b"FOBM" and version == 1 and zero == 0 and epoch != 0 and
                done_below <= next_seq and crc == crc32c(s[:60])):
            slots.append({"generation": gen, "epoch": epoch, "next_seq": next_seq,
                          "done_below": done_below, "raw": s})
    assert slots, f"{path}: no valid meta slot"
    return max(slots, key=lambda s: s["generation"]), slots


def read_outbox(outbox):
    """All records of the outbox directory in seq order, segment names checked."""
    segs = sorted(p for p in outbox.iterdir() if SEG_RE.fullmatch(p.name))
    records = []
    for seg in segs:
        recs = read_segment(seg)
        if recs:
            assert int(SEG_RE.fullmatch(seg.name).group(1), 16) == recs[0][3], (
                f"{seg.name}: named after another seq than its first record's ({recs[0][3]})")
        records.extend(recs)
    return segs, records


# -- the sim board's walks, from docs/boards.md ---------------------------------------------

M64 = (1 << 64) - 1
G = 0x9E3779B97F4A7C15


def mix(z):
    z &= M64
    z ^= z >> 30
    z = (z * 0xBF58476D1CE4E5B9) & M64
    z ^= z >> 27
    z = (z * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def sim_walk(i, polls, seed):
    """The first `polls` readings of series i."""
    s = (10, 100, 1)[i % 3]
    start = (20 + 10 * (i % 5)) * s
    lo, hi = start - 50 * s, start + 50 * s
    key = mix(seed + (i + 1) * G)
    q, out = start, []
    for p in range(polls):
        q = min(hi, max(lo, q + mix(key + (p + 1) * G) % 21 - 10))
        out.append(q / s)
    return out


def series_index(sensor, metric):
    m = re.fullmatch(r"sim-(\d+)", sensor)
    assert m and metric in SIM_METRICS, (sensor, metric)
    return int(m.group(1)) * SIM["metrics"] + SIM_METRICS.index(metric)


def check_walks(events):
    """Per series, in time order, the readings are the walk from its first poll on, with no
    gap; returns the number of polls."""
    by_series = {}
    for e in events:
        by_series.setdefault(series_index(e["sensor"], e["metric"]), []).append(e)
    assert sorted(by_series) == list(range(SIM["sensors"] * SIM["metrics"])), sorted(by_series)
    polls = set()
    for i, rows in sorted(by_series.items()):
        rows.sort(key=lambda e: e["ts"])
        ts = [e["ts"] for e in rows]
        assert len(set(ts)) == len(ts), f"series {i}: a reading twice"
        values = [e["value"] for e in rows]
        want = sim_walk(i, len(values), SIM["seed"])
        bad = [(p, v, w) for p, (v, w) in enumerate(zip(values, want)) if v != w]
        assert not bad, f"series {i}: (poll, read, walk) {bad[:5]}"
        polls.add(len(values))
    return polls


# -- fixtures ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pkgs(tmp_path_factory):
    """The arm64 packages unpacked: {package: (deb, root)}."""
    out = {}
    for p, found in _debs().items():
        if len(found) != 1:
            pytest.fail(f"{DEBS}: {len(found)} {p} packages for arm64, expected one: "
                        f"{[f.name for f in found]}", pytrace=False)
        root = tmp_path_factory.mktemp(f"{p}-root")
        run("dpkg-deb", "-x", found[0], root)
        out[p] = (found[0], root)
    return out


@pytest.fixture(scope="module")
def agent_bin(pkgs, tmp_path_factory):
    """A floe-agent that runs the packaged arm64 one under qemu, with the arm64 libraries of
    this machine's multiarch /usr/lib/aarch64-linux-gnu."""
    deb, root = pkgs["floe-agent"]
    binary = root / "usr" / "sbin" / "floe-agent"
    assert binary.is_file(), f"{deb.name} has no /usr/sbin/floe-agent"
    libs = sorted(n for n in depends_names(deb_field(deb, "Depends"))
                  if n.startswith("lib") or n == "zlib1g")
    missing = [n for n in libs if run("dpkg-query", "-W", "-f=${Status}", f"{n}:arm64",
                                      ok=False).stdout != "install ok installed"]
    if missing:
        pytest.fail("arm64 libraries floe-agent depends on are not installed: apt-get install "
                    + " ".join(f"{n}:arm64" for n in missing) + " (scripts/ci-arm64 does)",
                    pytrace=False)
    wrapper = tmp_path_factory.mktemp("qemu") / "floe-agent"
    wrapper.write_text(f'#!/bin/sh\nexec "{QEMU}" -L / "{binary}" "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


def packaged_agent(pkgs, agent_bin, workdir, **kwargs):
    """An agent_run.Agent whose configuration is the packaged /etc/floe/agent.conf with the
    test's keys as a drop-in in agent.conf.d/."""
    a = Agent(agent_bin, workdir, identity=IDENTITY, **kwargs)
    dropin = a.dir / "agent.conf.d" / "50-test.conf"
    dropin.parent.mkdir()
    dropin.write_text(a.conf.read_text())
    shutil.copy(pkgs["floe-agent"][1] / "etc" / "floe" / "agent.conf", a.conf)
    return a


@pytest.fixture
def agents():
    made = []
    yield made
    for a in made:
        a.kill()


SIM_KEYS = {"board.sim": {k: str(v) for k, v in SIM.items()},
            "window": {"length": "1s", "grace": "200ms"}}


# -- tests ------------------------------------------------------------------------------

def test_programs_are_aarch64(pkgs):
    """Every program in the three packages: Architecture arm64, an AArch64 ELF executable for
    the arm64 loader (the cross compiler and the arm64 libraries were used, not the host's)."""
    for p, (deb, root) in pkgs.items():
        assert deb_field(deb, "Architecture") == "arm64", deb.name
        progs = sorted(f for d in ("usr/bin", "usr/sbin") for f in (root / d).glob("*"))
        assert progs, f"{deb.name}: no programs"
        for f in progs:
            machine, interp = elf_machine_and_interp(f)
            assert (machine, interp) == (EM_AARCH64, INTERP), (
                f"{p}: {f.name}: machine {machine}, interpreter {interp}")


def test_agent_depends_cover_its_libraries(pkgs, agent_bin):
    """Each library floe-agent needs comes from a package its Depends name (dpkg-shlibdeps
    saw the arm64 libraries)."""
    deb, root = pkgs["floe-agent"]
    depends = depends_names(deb_field(deb, "Depends"))
    dyn = run("readelf", "-d", root / "usr" / "sbin" / "floe-agent").stdout
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dyn)
    assert "libc.so.6" in needed and "libmosquitto.so.1" in needed, needed
    for soname in needed:
        paths = [f"{d}/{soname}" for d in MULTIARCH_DIRS if os.path.exists(f"{d}/{soname}")]
        assert paths, f"{soname}: not in {MULTIARCH_DIRS} (not named by Depends?)"
        owner = run("dpkg", "-S", paths[0], ok=False).stdout
        if not owner:  # /lib is /usr/lib: dpkg knows one of the two names
            owner = run("dpkg", "-S", paths[0].replace("/usr/lib/", "/lib/", 1)).stdout
        pkg = owner.split(":", 1)[0]
        assert pkg in depends, f"{soname} comes from {pkg}, which Depends does not name"


def test_version(pkgs, agent_bin):
    deb = pkgs["floe-agent"][0]
    version = re.sub(r"^\d+:|-[^-]*$", "", deb_field(deb, "Version"))
    r = run(agent_bin, "--version")
    assert r.stdout == f"floe-agent {version}\n", r.stdout + r.stderr


def test_sim_run_fills_the_outbox_and_stops_cleanly(pkgs, agent_bin, agents, tmp_path):
    a = packaged_agent(pkgs, agent_bin, tmp_path / "agent", extra=SIM_KEYS)
    agents.append(a)
    a.start()
    # readings reach the ring and the batches the outbox, while it runs
    a.wait_metric("floe_agent_readings_accepted_total", lambda v: v >= 60, timeout=60)
    a.wait_metric("floe_agent_outbox_batches", lambda v: v >= 3, timeout=60)
    outbox = a.state / "outbox"
    running_segs, running_records = read_outbox(outbox)
    assert running_segs and running_records, a.log_tail()

    assert a.stop(timeout=30) == 0, a.log_tail()
    log = a.log_text()
    assert "running (board sim)" in log and "stopping: closing the open batch" in log, log
    assert "<3>" not in log and "<4>" not in log, log  # no error or warning

    segs, records = read_outbox(outbox)
    assert records[:len(running_records)] == running_records  # appended, never rewritten
    assert len(records) > len(running_records)  # the open batch went in at SIGTERM
    epochs = {r[2] for r in records}
    assert len(epochs) == 1 and 0 not in epochs, epochs
    seqs = [r[3] for r in records]
    assert seqs == list(range(1, len(records) + 1)), seqs
    # a clean close writes the exact next seq (§5), both slots alike (§4); nothing acked
    meta, slots = read_meta(outbox / "meta")
    assert (meta["epoch"], meta["next_seq"], meta["done_below"]) == (
        records[0][2], len(records) + 1, 1), meta
    assert len(slots) == 2 and slots[0]["raw"] == slots[1]["raw"]

    events, aggregates = [], []
    for kind, n, epoch, seq, payload in records:
        header, rows = wire_ref.decode(payload)
        assert (header["id"], header["epoch"], header["seq"]) == (IDENTITY, epoch, seq)
        assert n == len(rows), (seq, n, len(rows))
        (events if header["kind"] == "events" else aggregates).extend(rows)
    polls = check_walks(events)
    assert len(polls) == 1 and min(polls) >= 10, polls  # every series, every poll
    # the windows closed at SIGTERM hold exactly the events of their time span
    assert aggregates
    for g in aggregates:
        inside = sorted((e for e in events if (e["sensor"], e["metric"]) ==
                         (g["sensor"], g["metric"]) and
                         g["window_start"] <= e["ts"] < g["window_start"] + g["window_s"] * 10**6),
                        key=lambda e: e["ts"])
        values = [e["value"] for e in inside]
        assert g["count"] == len(values) > 0, (g, values)
        assert (g["min"], g["max"], g["first"], g["last"]) == (
            min(values), max(values), values[0], values[-1]), (g, values)
        assert abs(g["sum"] - sum(values)) < 1e-6, (g, values)
    assert sum(g["count"] for g in aggregates) == len(events)


def test_uplink_batches_acknowledged_over_tls(pkgs, agent_bin, agents, tls_broker, tmp_path):
    creds = tls_broker.device(IDENTITY)
    with tls_broker.consumer() as consumer:
        a = packaged_agent(pkgs, agent_bin, tmp_path / "agent", central=tls_broker,
                           creds=creds, extra=SIM_KEYS)
        agents.append(a)
        a.start()
        a.wait_metric("floe_agent_uplink_connected", lambda v: v == 1, timeout=60)
        consumer.wait_for_batches(5, timeout=60)
        a.wait_metric("floe_agent_uplink_acked_total", lambda v: v >= 5, timeout=60)
        assert not consumer.rejected, consumer.rejected
        assert {b[0] for b in consumer.batches} == {IDENTITY}
        # in order and gapless so far: each series' readings are a prefix of its walk
        check_walks(consumer.events)
        assert a.stop(timeout=30) == 0, a.log_tail()
    assert a.metric("floe_agent_uplink_rejected_total") == 0
