"""Scale-out (docs/uploader.md, "Several uploaders"): two and three floe-uploaders in one
$share group on one PostgreSQL catalog and ledger keep exactly once — a retransmit that
reaches another instance is still deduplicated.

- A batch committed by uploader A whose ack was lost, resent by its device, reaches B: B
  answers "duplicate" and writes nothing, both when B has never seen the stream (the check
  before buffering reads the ledger) and when B's cache of the stream is stale (the commit's
  transaction finds it).
- The exactly-once storm with 2 and 3 uploaders: sim-board agents streaming while uploaders
  (and twice an agent) are killed with -9 at random points and restarted after a random pause
  (so batches and their resends land on other instances) and the broker restarts; every
  accepted event once
  in floe.events as DuckDB reads it, floe.aggregates agreeing, the ledger holding exactly the
  batches the tables hold. About 45 s each.
- The same with the shared catalog failing: PostgreSQL restarts and cut connections.
- FLOE_UPLOADER_STORM=1 (`make soak`): the issue's full storm with 2 and 3 uploaders — ten
  agents for several minutes, at least 20 kill -9 of agents and 20 of uploaders, a broker
  restart and a 60 s storage outage. FLOE_STORM_REPORT=<file> appends each storm's figures
  (one JSON line) to that file.
"""

import os
import signal
import time
from collections import Counter
from pathlib import Path

import pytest

import floe_mqtt
from agent_run import Agent
from pg import pg_database, pg_server  # noqa: F401  (pytest fixtures)
from uploader_run import FakeAgent, Storm, UploaderEnv, needs_node, make_pki

pytestmark = pytest.mark.filterwarnings("ignore:Unknown map")

T0 = 1763676000000000  # 2025-11-20T22:00:00Z, µs
STORM = os.environ.get("FLOE_UPLOADER_STORM") == "1"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    e = make_pki(tmp_path_factory, "scale-pki", ("floe-ca", "floe-uploader", "floe-agent", "floe-batch"))
    try:
        yield e
    finally:
        e.broker.stop()


@pytest.fixture
def pg_env(pki, tmp_path, pg_database):
    e = UploaderEnv(os.environ["FLOE_BIN"], tmp_path, pki=pki, catalog=pg_database.uri)
    e.db = pg_database
    try:
        yield e
    finally:
        e.close()
        if not pki.broker.running:  # a storm failed while the broker was down
            pki.broker.start()


@pytest.fixture
def make_agent(pg_env, tmp_path):
    made = []

    def make(identity):
        a = Agent(Path(os.environ["FLOE_BIN"]) / "floe-agent", tmp_path / identity,
                  identity=identity, central=pg_env.central, creds=pg_env.device(identity),
                  extra={"board.sim": {"sensors": 2, "metrics": 2, "interval": "50ms"}})
        made.append(a)
        return a

    yield make
    for a in made:
        a.kill()


def rows(n, sensor, base):
    return [{"tenant": "x", "device": "y", "sensor": sensor, "metric": "m", "ts": base + i,
             "value": float(i) + 0.5} for i in range(n)]


# -- 1. the retransmit that reaches another uploader ------------------------------------------


@needs_node
def test_retransmit_reaching_another_uploader_is_a_duplicate(pg_env):
    """A commits batches whose acks find nobody (the device published and went away, as a
    floe-agent with its clean session does) and is killed right after its commit; the
    device's resends reach B. Both uploaders run with session_expiry = 0, so a dead or
    unreachable member leaves the share group at once and the broker routes every message to
    the one that is there: deterministic, no luck involved."""
    env, ident, epoch = pg_env, "rt.gw-0001", 0x8000000000000123  # above 2^63: signed in SQL
    common = {"broker__session_expiry": "0", "broker__keepalive": "5s",
              "buffer__interval": "300ms"}
    a, b = env.uploader("a", **common), env.uploader("b", **common)
    sizes = {1: 5, 2: 3, 3: 4, 4: 6}
    batches = {s: env.encode(rows(n, f"s{s}", T0 + s * 1000), ident, epoch, s)
               for s, n in sizes.items()}
    creds = env.device(ident)

    def send_unheard(seq):
        # its own connection, closed after the PUBACK: the ack is published to nobody
        floe_mqtt.publish("127.0.0.1", env.broker.device_port, f"floe/v1/{ident}/batch",
                          batches[seq], tls=creds.tls, client_id=ident)

    def committed(up):
        return up.metric('floe_uploader_committed_batches_total{table="events"}')

    def table():
        got = env.table("events")
        keys = Counter((r["sensor"], r["ts"]) for r in got)
        assert max(keys.values()) == 1, "an event twice"
        return Counter(r["batch_seq"] for r in got)

    # (1) B has never seen the stream: its check before buffering reads the ledger
    a.start()
    for seq in (1, 2, 3):
        send_unheard(seq)
    a.wait_metric('floe_uploader_committed_batches_total{table="events"}', lambda v: v == 3)
    a.kill()  # right after its commit: had the acks still been in it, they died with it
    assert table() == {1: 5, 2: 3, 3: 4}
    b.start()
    with FakeAgent(env, ident) as dev:
        for seq in (1, 2, 3):
            dev.publish(batches[seq])
        for seq in (1, 2, 3):
            assert [x["status"] for x in dev.wait_ack(epoch, seq)] == ["duplicate"]
    m = b.metrics()
    assert m['floe_uploader_duplicates_total{where="intake"}'] == 3
    assert m['floe_uploader_acks_total{status="duplicate"}'] == 3
    assert m.get('floe_uploader_acks_total{status="ok"}', 0) == 0
    assert committed(b) == 0 and m["floe_uploader_batches_received_total"] == 0
    assert table() == {1: 5, 2: 3, 3: 4}

    # (2) B's cache of the stream ({1, 2, 3}) is stale: A commits 4 while B is away from the
    # group (stopped until the broker drops it), then the resend of 4 reaches B, whose cache
    # lets it into a buffer and whose commit transaction finds it committed
    b.signal(signal.SIGSTOP)
    try:
        deadline = time.monotonic() + 30
        needle = f"Client {b.sections['broker']['client_id']} has exceeded timeout"
        while needle not in env.broker.log_text():
            assert time.monotonic() < deadline, "the broker never dropped the stopped uploader"
            time.sleep(0.1)
        a.start()
        send_unheard(4)
        a.wait_metric('floe_uploader_committed_batches_total{table="events"}',
                      lambda v: v == 1)
        a.kill()
    finally:
        b.signal(signal.SIGCONT)
    b.wait_log("subscribed to", count=2)
    with FakeAgent(env, ident) as dev:
        dev.publish(batches[4])
        assert [x["status"] for x in dev.wait_ack(epoch, 4)] == ["duplicate"]
    m = b.metrics()
    assert m['floe_uploader_duplicates_total{where="commit"}'] == 1
    assert m['floe_uploader_flush_rebuilds_total{table="events"}'] == 1
    assert m['floe_uploader_acks_total{status="duplicate"}'] == 4
    assert m['floe_uploader_duplicates_total{where="intake"}'] == 3
    assert m.get('floe_uploader_acks_total{status="ok"}', 0) == 0
    assert committed(b) == 0
    assert "committed elsewhere meanwhile" in b.log_text()
    assert table() == {1: 5, 2: 3, 3: 4, 4: 6}
    # the ledger: 1..4 committed, nothing above
    assert env.db.psql("SELECT identity, hwm, above FROM floe_ledger") == f"{ident}|4|"
    assert b.stop() == 0


# -- 2. the exactly-once storm with several uploaders -----------------------------------------


def run_storm(env, make_agent, **kw):
    storm = Storm(env, make_agent, **kw)
    figures = storm.run()
    got = storm.check()
    # the storm did what it says: uploaders died with batches of theirs in flight, so other
    # instances (or their next lives) got resends and recognised them as committed
    assert figures["uploader_kills"] >= kw["uploader_kills"]
    assert figures["agent_kills"] >= kw.get("agent_kills", 0)
    assert figures["broker_restarts"] == kw.get("broker_restarts", 1)
    assert figures["duplicates_intake"] + figures["duplicates_commit"] > 0, figures
    assert got["events"] > 0
    # the share group spread the batches: every uploader committed some
    per = storm.up_lives.by_key
    assert all(per[up.name]["committed_batches"] > 0 for up in storm.ups), per
    return figures


@needs_node
@pytest.mark.parametrize("uploaders", [2, 3])
def test_exactly_once_several_uploaders(pg_env, make_agent, uploaders):
    run_storm(pg_env, make_agent, uploaders=uploaders, agents=3, duration=25,
              uploader_kills=6, agent_kills=2, broker_restarts=1, seed=uploaders)


@needs_node
@pytest.mark.skipif(not STORM, reason="the storm takes minutes: FLOE_UPLOADER_STORM=1")
@pytest.mark.parametrize("uploaders", [2, 3])
def test_storm_several_uploaders(pg_env, make_agent, uploaders):
    """The issue's storm with 2 and 3 uploaders on PostgreSQL: ten agents for four minutes,
    at least 20 kill -9 of agents and 20 of uploaders (each restarted after a random pause;
    an agent's ring and outbox survive), a broker restart and the warehouse gone for 60 s.

    Accepted events are counted from what survives kill -9: each agent's ring header, whose
    next_seq numbers every reading the ring file ever accepted (agent_run.ring_header). The
    agent's accepted counter starts again with every run and its metrics file is written
    every 200 ms, so summing it over runs would miss each run's last readings. The storm checks
    that each ring file is still the one its agent started with (ring_id) and that the drain
    (agents restarted with a board that reads nothing) added no reading."""
    run_storm(pg_env, make_agent, uploaders=uploaders, agents=10, duration=240,
              uploader_kills=20, agent_kills=20, broker_restarts=1, outage=60,
              seed=100 + uploaders)


@needs_node
def test_exactly_once_catalog_restarts(pg_env, make_agent):
    """The shared catalog fails under two uploaders: PostgreSQL restarts twice and has every
    uploader's connection cut twice (as a failover does), commits in flight included, while
    uploaders are killed with -9. A commit whose COMMIT broke has an unknown outcome: retried,
    it finds its batches committed (or not) in the ledger; nothing is lost, nothing twice."""
    server = pg_env.db.server
    name = pg_env.db.name
    faults = [(0.2, "catalog_restarts", server.restart),
              (0.4, "catalog_connections_cut", lambda: server.terminate(name)),
              (0.6, "catalog_restarts", server.restart),
              (0.8, "catalog_connections_cut", lambda: server.terminate(name))]
    figures = run_storm(pg_env, make_agent, uploaders=2, agents=3, duration=25,
                        uploader_kills=4, agent_kills=1, broker_restarts=0, seed=11,
                        faults=faults)
    assert figures["catalog_restarts"] == 2 and figures["catalog_connections_cut"] == 2
