"""The broker fixtures and MQTT helpers work against the real mosquitto."""

import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import free_port, port_accepts
from floe_mqtt import Publisher, Subscriber, publish

HERE = Path(__file__).resolve().parent
TOPIC = "floe/v1/acme.gw-0001/batch"


def process_gone(pid):
    """True when pid is not a live mosquitto (reaped, or the number reused by another program)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    state = stat.rsplit(")", 1)[1].split()[0]
    return b"mosquitto" not in cmdline or state == "Z"


def test_qos1_roundtrip(mosquitto):
    payload = bytes(range(256)) * 4  # binary, with NULs
    with Subscriber(mosquitto.host, mosquitto.port, "floe/v1/+/batch") as sub:
        publish(mosquitto.host, mosquitto.port, TOPIC, payload, qos=1)
        [msg] = sub.wait_for(1)
    assert msg.topic == TOPIC
    assert msg.payload == payload
    assert msg.qos == 1
    assert not msg.retain


def test_publisher_keeps_order(mosquitto):
    n = 200
    with Subscriber(mosquitto.host, mosquitto.port, TOPIC) as sub:
        with Publisher(mosquitto.host, mosquitto.port) as pub:
            for i in range(n):
                pub.publish(TOPIC, b"%d" % i, wait=False)
        msgs = sub.wait_for(n)
    assert [m.payload for m in msgs] == [b"%d" % i for i in range(n)]


def test_restart_keeps_port_and_clients_reconnect(mosquitto):
    port, pid = mosquitto.port, mosquitto.pid
    with Subscriber(mosquitto.host, port, TOPIC) as sub:
        drops = sub.disconnects
        mosquitto.restart()
        assert mosquitto.port == port
        assert mosquitto.pid != pid and mosquitto.running
        assert process_gone(pid)

        # paho reconnects by itself; a clean session has to subscribe again.
        deadline = time.monotonic() + 10
        while sub.disconnects == drops and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sub.disconnects > drops, "subscriber never saw the broker go away"
        sub.wait_connected(timeout=10)
        sub.subscribe(TOPIC)
        publish(mosquitto.host, port, TOPIC, b"after restart")
        [msg] = sub.wait_for(1)
    assert msg.payload == b"after restart"
    assert mosquitto.log_text().count("running") == 2


@pytest.mark.parametrize("mosquitto", [{"persistence": True}], indirect=True)
def test_persistence_keeps_retained_across_restart(mosquitto):
    publish(mosquitto.host, mosquitto.port, "floe/v1/acme.gw-0001/status", b"ok", retain=True)
    mosquitto.restart()  # SIGTERM: mosquitto saves its database on the way out
    with Subscriber(mosquitto.host, mosquitto.port, "floe/v1/+/status") as sub:
        [msg] = sub.wait_for(1)
    assert msg.payload == b"ok" and msg.retain


SECOND_PORT = free_port()


@pytest.mark.parametrize("mosquitto", [{"conf_extra": f"listener {SECOND_PORT} 127.0.0.1"}],
                         indirect=True)
def test_conf_extra_reaches_the_config(mosquitto):
    assert f"listener {SECOND_PORT} 127.0.0.1" in mosquitto.conf_path.read_text()
    assert port_accepts("127.0.0.1", SECOND_PORT)
    with Subscriber("127.0.0.1", SECOND_PORT, TOPIC) as sub:
        publish(mosquitto.host, mosquitto.port, TOPIC, b"via the other listener")
        assert sub.wait_for(1)[0].payload == b"via the other listener"


def test_factory_runs_several_brokers_and_stops_them(mosquitto_factory):
    a = mosquitto_factory.start(name="gateway")
    b = mosquitto_factory.start(name="central")
    assert a.port != b.port and a.log_path != b.log_path
    pids = [a.pid, b.pid]
    mosquitto_factory.close()
    assert all(process_gone(p) for p in pids)
    assert not port_accepts(a.host, a.port) and not port_accepts(b.host, b.port)


def test_module_broker(mosquitto_module):
    with Subscriber(mosquitto_module.host, mosquitto_module.port, TOPIC) as sub:
        publish(mosquitto_module.host, mosquitto_module.port, TOPIC, b"m")
        assert sub.wait_for(1)[0].payload == b"m"


INNER_TESTS = """
import os
from pathlib import Path

def test_uses_broker_and_fails(mosquitto):
    Path(os.environ["INNER_STATE"]).write_text(f"{mosquitto.pid} {mosquitto.port}")
    assert False, "deliberate failure"

def test_needs_binaries(floe_bin):
    floe_bin("floe-batch")
"""


def test_teardown_kills_broker_and_failure_shows_log(tmp_path):
    """Run a failing test in a child pytest with our conftest: its broker must be gone
    afterwards, its log must be in the failure report, and floe_bin must skip without
    FLOE_BIN."""
    inner = tmp_path / "inner"
    inner.mkdir()
    shutil.copy(HERE / "conftest.py", inner / "conftest.py")
    (inner / "test_inner.py").write_text(textwrap.dedent(INNER_TESTS))
    state = tmp_path / "state"
    env = dict(os.environ, INNER_STATE=str(state), PYTHONDONTWRITEBYTECODE="1")
    env.pop("FLOE_BIN", None)
    res = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rs",
                          "-q", str(inner)], cwd=inner, env=env, capture_output=True, text=True,
                         timeout=60)
    out = res.stdout + res.stderr
    assert res.returncode == 1, out
    assert "1 failed, 1 skipped" in out, out
    assert "FLOE_BIN is not set" in out, out
    assert "mosquitto log (127.0.0.1:" in out, out
    assert "mosquitto version" in out and "running" in out, out

    pid, port = map(int, state.read_text().split())
    assert process_gone(pid), f"mosquitto pid {pid} still alive after teardown"
    assert not port_accepts("127.0.0.1", port)
