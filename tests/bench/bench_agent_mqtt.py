#!/usr/bin/python3
"""Agent through a real local mosquitto (make bench): the agent's CPU seconds per million
readings at QoS 0 and 1, next to mosquitto_sub receiving the same stream in the same run;
the agent's RSS idle and under load. The stream: the reference profile's sensors, one JSON
payload of 20 metrics per sensor per second, published as fast as mosquitto_pub can."""
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT / "tests" / "system"))
from conftest import Mosquitto  # noqa: E402

BIN = Path(os.environ.get("FLOE_BIN", ROOT / "build" / "bench"))
MESSAGES = 30000  # x 20 readings
METRICS = 20


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid, key="VmRSS"):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def payload_file(path):
    rnd = random.Random(1)
    t0 = int(time.time() * 1e6)
    with open(path, "w") as f:
        for i in range(MESSAGES):
            body = {"ts": t0 + (i // 1000) * 1000000 + (i % 1000) * 997}
            body.update({"m%d" % m: round(rnd.uniform(-50, 50), 2) for m in range(METRICS)})
            f.write(json.dumps(body, separators=(",", ":")) + "\n")


def agent_metric(state, name):
    p = state / "floe-agent.prom"
    if not p.exists():
        return 0.0
    for line in p.read_text().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def run(qos, work):
    broker = Mosquitto(work / ("broker%d" % qos),
                       conf_global="max_queued_messages 0\nmax_inflight_messages 0")
    broker.start()
    state = work / ("state%d" % qos)
    conf = work / ("agent%d.conf" % qos)
    conf.write_text("\n".join([
        "[agent]", "identity = acme.bench", "state_dir = %s" % state, "board = sim",
        "[local]", "host = 127.0.0.1", "port = %d" % broker.port, "topics = sensors/#",
        "client_id = bench-agent", "session_expiry = 0", "max_payload = 64KiB",
        "[uplink]", "enabled = false",
        "[ring]", "size = 256MiB", "sync = none",
        "[outbox]", "sync = none", "max_bytes = 1GiB",
        "[metrics]", "interval = 100ms",
        "[board.sim]", "sensors = 1", "metrics = 1", "interval = 1h", ""]))
    env = dict(os.environ, FLOE_LOG_TARGET="stderr", FLOE_LOG_LEVEL="warning")
    agent = subprocess.Popen([str(BIN / "floe-agent"), "--config", str(conf)], env=env)
    try:
        deadline = time.monotonic() + 10
        while agent_metric(state, "floe_agent_readings_accepted_total") == 0 and \
                not (state / "floe-agent.prom").exists():
            time.sleep(0.05)
            if time.monotonic() > deadline:
                raise RuntimeError("the agent did not start")
        time.sleep(1.5)
        rss_idle = rss_kib(agent.pid)
        sub = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port),
                                "-t", "sensors/#", "-q", str(qos), "-C", str(MESSAGES)],
                               stdout=subprocess.DEVNULL)
        time.sleep(0.5)
        a0 = cpu_seconds(agent.pid)
        data = work / "payloads.ndjson"
        # mosquitto_pub -l stops early past 65,535 lines at QoS >= 1: publish in chunks
        lines = data.read_text().splitlines(keepends=True)
        for k in range(0, len(lines), 20000):
            subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port), "-q",
                            str(qos), "-t", "sensors/bench-sensor", "-l"],
                           input="".join(lines[k:k + 20000]).encode(), check=True)
        _, status, usage = os.wait4(sub.pid, 0)
        sub_cpu = usage.ru_utime + usage.ru_stime
        want = MESSAGES * METRICS
        deadline = time.monotonic() + 60
        while agent_metric(state, "floe_agent_readings_accepted_total") < want:
            if time.monotonic() > deadline:
                raise RuntimeError("the agent accepted %d of %d" % (
                    agent_metric(state, "floe_agent_readings_accepted_total"), want))
            time.sleep(0.05)
        agent_cpu = cpu_seconds(agent.pid) - a0
        rss_peak = rss_kib(agent.pid, "VmHWM")
        ring_rss = 0
        with open("/proc/%d/smaps" % agent.pid) as f:
            cur = None
            for line in f:
                if line[0] in "0123456789abcdef" and "-" in line.split()[0]:
                    cur = line.split()[-1] if len(line.split()) > 5 else None
                elif line.startswith("Rss:") and cur and cur.endswith("/ring"):
                    ring_rss += int(line.split()[1])
        return dict(qos=qos, readings=want, agent_cpu=agent_cpu, sub_cpu=sub_cpu,
                    rss_idle=rss_idle, rss_peak=rss_peak, ring_rss=ring_rss)
    finally:
        agent.terminate()
        agent.wait(timeout=30)
        broker.stop()


def main():
    with tempfile.TemporaryDirectory(prefix="floe-bench-mqtt-") as d:
        work = Path(d)
        payload_file(work / "payloads.ndjson")
        results = [run(q, work) for q in (0, 1)]
    print("## Agent through a local mosquitto (%d payloads x %d readings, JSON maps)\n" % (
        MESSAGES, METRICS))
    print("| QoS | agent CPU s / M readings | mosquitto_sub CPU s / M readings | ratio "
          "| agent RSS idle | agent RSS peak (ring pages) |")
    print("|-----|--------------------------|----------------------------------|-------"
          "|----------------|-----------------------------|")
    for r in results:
        per = 1e6 / r["readings"]
        print("| %d | %.2f | %.2f | %.2fx | %.1f MiB | %.1f MiB (%.1f MiB) |" % (
            r["qos"], r["agent_cpu"] * per, r["sub_cpu"] * per,
            r["agent_cpu"] / max(r["sub_cpu"], 1e-9), r["rss_idle"] / 1024,
            r["rss_peak"] / 1024, r["ring_rss"] / 1024))
    print("\nmosquitto_sub receives each payload and writes nothing; the agent parses, "
          "writes the ring, aggregates, batches, encodes and writes the outbox.")


if __name__ == "__main__":
    main()
