#!/usr/bin/python3
"""floe-enrolld through a real mosquitto (make bench): CSRs signed per second by one daemon
(one core: the daemon is single-threaded) and the enrollment round trip a device sees.

A floe-ca PKI and the broker configured by `floe-ca broker-config` are made in a temporary
directory. One claim connection pipelines requests for distinct allowlisted identities as
fast as the broker takes them; every answer must be a fresh certificate. The daemon's CPU
time comes from /proc. Then requests go one at a time for the latency percentiles. The
registry is SQLite on the temporary directory's file system with synchronous=FULL: every
certificate is durable before its answer leaves. With FLOE_BENCH_JSON=DIR the figures also go
to DIR/bench_enrolld.json.
"""
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT / "tests" / "system"))
from enroll_client import EnrollClient, Env, make_csr  # noqa: E402
from test_floe_ca import FloeBroker  # noqa: E402

BIN = Path(os.environ.get("FLOE_BIN", ROOT / "build" / "bench"))
THROUGHPUT = int(os.environ.get("BENCH_ENROLL_N", "2000"))
LATENCY = int(os.environ.get("BENCH_ENROLL_LATENCY_N", "300"))
KEYS = ("p256", "rsa3072")
WINDOW = 200


def binaries():
    """floe-ca and floe-enrolld beside the other benchmark binaries, built if missing."""
    missing = [b for b in ("floe-ca", "floe-enrolld") if not os.access(BIN / b, os.X_OK)]
    if missing:
        subprocess.run(["make", "-C", str(ROOT), "--no-print-directory", f"B={BIN}",
                        "SANITIZE="] + [str(BIN / b) for b in missing],
                       check=True, stdout=subprocess.DEVNULL)
    return BIN / "floe-ca", BIN / "floe-enrolld"


class Broker(FloeBroker):
    """broker-config's configuration plus set_tcp_nodelay: mosquitto's default (Nagle on)
    holds small packets for the peer's delayed ACK, ~40 ms per round trip."""

    def config(self):
        return super().config() + "set_tcp_nodelay true\n"


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def run_key(c, pid, key, work):
    _, csr = make_csr(work, f"bench-{key}", key=key)
    # warm up (connections, caches), not counted
    for i in range(20):
        r = c.request({"identity": f"acme.bench-{key}-{THROUGHPUT + i:05d}", "csr": csr})
        assert r["status"] == "ok", r
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    # a window of requests in flight: mosquitto queues at most 1000 messages per client
    pending, answers = collections.deque(), []
    for i in range(THROUGHPUT):
        if len(pending) == WINDOW:
            answers.append(c.wait(pending.popleft(), timeout=60))
        pending.append(c.send({"identity": f"acme.bench-{key}-{i:05d}", "csr": csr}))
    answers += [c.wait(x, timeout=60) for x in pending]
    wall, cpu = time.monotonic() - t0, cpu_seconds(pid) - cpu0
    bad = [a for a in answers if a["status"] != "ok" or a["replay"]]
    assert not bad, bad[:3]
    assert len({a["serial"] for a in answers}) == THROUGHPUT
    lat = []
    for i in range(20, LATENCY):
        t = time.monotonic()
        r = c.request({"identity": f"acme.bench-{key}-{THROUGHPUT + i:05d}", "csr": csr})
        lat.append((time.monotonic() - t) * 1000)
        assert r["status"] == "ok", r
    return THROUGHPUT / wall, THROUGHPUT / cpu if cpu > 0 else float("inf"), lat


def main():
    binaries()
    work = Path(tempfile.mkdtemp(prefix="bench-enrolld-"))
    env = Env(BIN, work, broker_class=Broker,
              defaults={"limits__claim_rate": 10 ** 9, "broker__inflight": 1024})
    creds, _ = env.claim("bench", allow=[f"acme.bench-{k}-{i:05d}" for k in KEYS
                                         for i in range(THROUGHPUT + LATENCY)])
    d = env.enrolld()
    rows = []
    try:
        d.start()
        with EnrollClient(env.broker.claim_port, creds, "claim-bench", timeout=60) as c:
            for k in KEYS:
                rows.append((k, *run_key(c, d.proc.pid, k, work)))
        assert d.stop() == 0
    finally:
        d.stop()
        env.broker.stop()
    ca = env.ca
    ca_key = ca.path("floe-ca.conf").read_text().split("key_type = ")[1].split()[0]
    print("## floe-enrolld: enrollment by claim through a local mosquitto\n")
    print("| device key | CSRs signed/s (wall) | CSRs/s per CPU second | round trip p50 | p99 |")
    print("|---|---:|---:|---:|---:|")
    for k, rate, cpu_rate, lat in rows:
        print("| %s | %.0f | %.0f | %.2f ms | %.2f ms |" % (
            k, rate, cpu_rate, percentile(lat, 50), percentile(lat, 99)))
    print("\n%d requests per key type from one claim connection, %d in flight, then %d one at a "
          "time; device CA key: %s; every answer a new certificate committed to the SQLite "
          "registry (synchronous=FULL) before it is sent. The broker runs with "
          "set_tcp_nodelay true."
          % (THROUGHPUT, WINDOW, LATENCY - 20, ca_key))
    shutil.rmtree(work, ignore_errors=True)
    d = os.environ.get("FLOE_BENCH_JSON")
    if d:
        doc = {"bench": "bench_enrolld", "requests": THROUGHPUT, "in_flight": WINDOW,
               "latency_requests": LATENCY - 20, "device_ca_key": ca_key,
               "keys": [{"key": k, "csrs_per_s": rate,
                         "csrs_per_cpu_s": cpu_rate if cpu_rate != float("inf") else None,
                         "round_trip_ms": {"p50": percentile(lat, 50),
                                           "p99": percentile(lat, 99)}}
                        for k, rate, cpu_rate, lat in rows]}
        Path(d, "bench_enrolld.json").write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
