"""floe-agent end to end: local publishers and the sim board -> agent -> central broker
over mutual TLS -> the ack consumer, with the faults the issue names."""
import json
import random
import threading
import time

import pytest

import floe_mqtt
from agent_run import Agent

IDENTITY = "acme.gw-0001"
LOCAL = [{"conf_global": "max_queued_messages 0\nmax_inflight_messages 100"}]


def readings(consumer, sensor):
    return [e for e in consumer.events if e["sensor"] == sensor]


def publish_numbered(local, start, stop, sensor="pub"):
    """Numbered readings at QoS 1; returns once the local broker acked all of them."""
    with floe_mqtt.Publisher(local.host, local.port) as pub:
        for i in range(start, stop):
            body = {"metric": "n", "value": i}
            pub.publish("sensors/%s" % sensor, json.dumps(body).encode(), qos=1)


def assert_exactly_once(values, expected, allowed_missing=0):
    dups = len(values) - len(set(values))
    assert dups == 0, "%d duplicates" % dups
    missing = set(expected) - set(values)
    extra = set(values) - set(expected)
    assert not extra, sorted(extra)[:10]
    assert len(missing) <= allowed_missing, (len(missing), sorted(missing)[:20])
    return len(missing)


@pytest.fixture
def agent_factory(floe_bin, tmp_path):
    agents = []

    def make(**kw):
        a = Agent(floe_bin("floe-agent"), tmp_path / ("agent%d" % len(agents)), **kw)
        agents.append(a)
        return a

    yield make
    for a in agents:
        a.kill()


@pytest.mark.parametrize("mosquitto", LOCAL, indirect=True)
def test_local_and_board_readings_arrive_once(mosquitto, tls_broker, agent_factory):
    creds = tls_broker.device(IDENTITY)
    with tls_broker.consumer() as consumer:
        agent = agent_factory(local=mosquitto, central=tls_broker, creds=creds,
                              extra={"board.sim": {"sensors": 2, "metrics": 2,
                                                   "interval": "200ms"}}).start()
        agent.wait_metric("floe_agent_uplink_connected", lambda v: v == 1)
        publish_numbered(mosquitto, 0, 300)
        consumer.wait_until(lambda c: len(readings(consumer, "pub")) >= 300, timeout=20,
                            what="300 local readings")
        time.sleep(1)
        assert agent.stop() == 0
        assert_exactly_once([e["value"] for e in readings(consumer, "pub")], range(300))
        # the board's readings: every one the agent accepted, once
        sim = [(e["sensor"], e["metric"], e["ts"]) for e in consumer.events
               if e["sensor"].startswith("sim-")]
        assert sim and len(sim) == len(set(sim))
        accepted = agent.metric("floe_agent_readings_accepted_total")
        consumer.wait_until(lambda c: len(consumer.events) == accepted, timeout=10,
                            what="all %d accepted readings" % accepted)
        # aggregates agree with the events (SIGTERM closed the open windows)
        counts = sum(a["count"] for a in consumer.aggregates if a["sensor"] == "pub")
        assert counts == 300
        assert consumer.duplicates == 0


@pytest.mark.parametrize("mosquitto", LOCAL, indirect=True)
def test_kill_9_loses_nothing_accepted(mosquitto, tls_broker, agent_factory):
    """kill -9 of the agent at random points, at least 20 times, while readings flow."""
    creds = tls_broker.device(IDENTITY)
    total = 6000
    rnd = random.Random(1)
    with tls_broker.consumer() as consumer:
        agent = agent_factory(local=mosquitto, central=tls_broker, creds=creds).start()
        agent.wait_metric("floe_agent_uplink_connected", lambda v: v == 1)
        pub = threading.Thread(target=publish_numbered, args=(mosquitto, 0, total))
        pub.start()
        kills = 0
        while pub.is_alive() or kills < 20:
            time.sleep(rnd.uniform(0.05, 0.4))
            agent.kill()
            kills += 1
            agent.start()
        pub.join()
        consumer.wait_until(lambda c: len(readings(consumer, "pub")) >= total - kills,
                            timeout=60, what="readings after %d kills" % kills)
        time.sleep(2)
        assert agent.stop() == 0
        # Readings PUBACKed by libmosquitto but killed before the ring (DESIGN.md) are the
        # only permitted loss: at most one per kill. The figure is reported, not hidden.
        lost = assert_exactly_once([e["value"] for e in readings(consumer, "pub")],
                                   range(total), allowed_missing=kills)
        print("kill -9: %d kills, %d readings lost in the PUBACK-before-ring window" % (
            kills, lost))
        assert kills >= 20


@pytest.mark.parametrize("mosquitto", LOCAL, indirect=True)
def test_central_broker_down_60s(mosquitto, tls_broker, agent_factory):
    creds = tls_broker.device(IDENTITY)
    with tls_broker.consumer() as consumer:
        agent = agent_factory(local=mosquitto, central=tls_broker, creds=creds).start()
        agent.wait_metric("floe_agent_uplink_connected", lambda v: v == 1)
        publish_numbered(mosquitto, 0, 500)
        consumer.wait_until(lambda c: len(readings(consumer, "pub")) >= 500, timeout=20)
        tls_broker.stop()
        agent.wait_metric("floe_agent_uplink_connected", lambda v: v == 0)
        t_end = time.monotonic() + 60
        n = 500
        while time.monotonic() < t_end:
            publish_numbered(mosquitto, n, n + 100)
            n += 100
            time.sleep(2)
        assert agent.metric("floe_agent_outbox_batches") > 0
        tls_broker.start()
        consumer.wait_until(lambda c: len(readings(consumer, "pub")) >= n, timeout=60,
                            what="the backlog after the outage")
        time.sleep(1)
        assert agent.stop() == 0
        assert_exactly_once([e["value"] for e in readings(consumer, "pub")], range(n))


@pytest.mark.parametrize("mosquitto", LOCAL, indirect=True)
@pytest.mark.parametrize("policy", ["drop-oldest", "reject-new"])
def test_outbox_full_drops_are_counted(mosquitto, tls_broker, agent_factory, policy):
    creds = tls_broker.device(IDENTITY)
    with tls_broker.consumer() as consumer:
        agent = agent_factory(local=mosquitto, central=tls_broker, creds=creds,
                              extra={"outbox": {"max_bytes": "16KiB",
                                                "segment_bytes": "2KiB",
                                                "policy": policy},
                                     "batch": {"ship": "events", "max_age": "100ms"}}).start()
        agent.wait_metric("floe_agent_uplink_connected", lambda v: v == 1)
        tls_broker.stop()
        agent.wait_metric("floe_agent_uplink_connected", lambda v: v == 0)
        n = 16000
        for i in range(0, n, 200):
            publish_numbered(mosquitto, i, i + 200)
            time.sleep(0.15)  # one batch per burst: many small batches fill the outbox
        key = ("floe_agent_outbox_dropped_events_total" if policy == "drop-oldest"
               else "floe_agent_outbox_rejected_events_total")
        dropped = agent.wait_metric(key, lambda v: v > 0)
        time.sleep(1)
        dropped = agent.metric(key)
        tls_broker.start()
        consumer.wait_until(lambda c: len(readings(consumer, "pub")) >= n - dropped,
                            timeout=60, what="what the outbox kept")
        time.sleep(1)
        agent.stop()
        values = [e["value"] for e in readings(consumer, "pub")]
        assert len(values) == len(set(values))
        # exactly the counted drops are missing
        assert len(values) + dropped == n, (len(values), dropped)
        if policy == "drop-oldest":
            assert min(values) > 0 and max(values) == n - 1  # the oldest went
        else:
            assert min(values) == 0  # the newest were refused


BAD_PAYLOADS = [
    (b"", "empty"),
    (b'{"metric":"t","value":NaN}', "bad-json"),
    (b'{"temp":1e999}', None),  # jansson: real overflow
    (b'{"te\xffmp":1}', None),  # invalid UTF-8
    (b"temp value=nan", "non-finite"),
    (b"temp value=inf 1", "non-finite"),
    (b"temp,sensor=x value=", "bad-line-protocol"),
    (b"\xa2\x64temp", "bad-cbor"),  # truncated CBOR map
    (b'{"temp":1,"temp":2}', "duplicate-key"),
    (b'{"ts":"2026-13-45T99:00:00Z","temp":1}', "bad-time"),
    (b'{"temp":"' + b"x" * 5000 + b'"}', "too-large"),
    (b"[" + b"1," * 2000 + b"1]", None),  # oversized for max_payload 2KiB
]


@pytest.mark.parametrize("mosquitto", LOCAL, indirect=True)
def test_bad_payloads_counted_and_nothing_lost(mosquitto, tls_broker, agent_factory):
    creds = tls_broker.device(IDENTITY)
    with tls_broker.consumer() as consumer:
        agent = agent_factory(local=mosquitto, central=tls_broker, creds=creds,
                              extra={"local": {"max_payload": "2KiB"}}).start()
        agent.wait_metric("floe_agent_uplink_connected", lambda v: v == 1)
        with floe_mqtt.Publisher(mosquitto.host, mosquitto.port) as pub:
            for i, (bad, _) in enumerate(BAD_PAYLOADS):
                pub.publish("sensors/pub", bad, qos=1)
                pub.publish("sensors/pub", json.dumps({"metric": "n", "value": i}).encode(),
                            qos=1)
            # absurd but well-formed timestamps are accepted and counted as implausible
            pub.publish("sensors/odd", b'{"ts":"9999-12-31T23:59:59Z","temp":1}', qos=1)
            pub.publish("sensors/odd", b'{"ts":1,"temp":2}', qos=1)
        n = len(BAD_PAYLOADS)
        consumer.wait_until(lambda c: len(readings(c, "pub")) >= n, timeout=20)
        agent.wait_metric("floe_agent_implausible_total", lambda v: v >= 2)
        m = agent.metrics()
        rejected = {k.split('"')[1]: v for k, v in m.items()
                    if k.startswith("floe_agent_payloads_rejected_total{")}
        assert sum(rejected.values()) == n, rejected
        for _, reason in BAD_PAYLOADS:
            if reason:
                assert rejected.get(reason, 0) >= 1, (reason, rejected)
        assert agent.running()
        assert agent.stop() == 0
        assert_exactly_once([e["value"] for e in readings(consumer, "pub")], range(n))
        odd = readings(consumer, "odd")
        assert sorted(e["value"] for e in odd) == [1, 2]  # shipped as raw events


@pytest.mark.parametrize("mosquitto", LOCAL, indirect=True)
def test_certificate_of_a_cannot_publish_as_b(mosquitto, tls_broker, agent_factory):
    """The agent configured as B but holding A's certificate: the broker refuses every
    batch with MQTT v5 reason 135 (not authorized), the agent counts it and keeps it."""
    creds = tls_broker.device("acme.gw-000a")
    with tls_broker.consumer() as consumer:
        agent = agent_factory(identity="acme.gw-000b", local=mosquitto, central=tls_broker,
                              creds=creds).start()
        agent.wait_metric("floe_agent_uplink_connected", lambda v: v == 1)
        publish_numbered(mosquitto, 0, 20)
        agent.wait_metric("floe_agent_uplink_sent_total", lambda v: v >= 1)
        # the retained status is refused too, so batches make it at least 2
        agent.wait_metric("floe_agent_uplink_refused_total", lambda v: v >= 2)
        assert "reason 135" in agent.log_tail(200)
        assert agent.metric("floe_agent_outbox_batches") >= 1  # kept, not lost
        time.sleep(1)
        assert consumer.events == []
        agent.stop()
