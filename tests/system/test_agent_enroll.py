"""floe-agent's side of enrollment (docs/enrollment.md, "Device side") against a real
mosquitto running the configuration `floe-ca broker-config` wrote, a real floe-ca PKI, a real
floe-enrolld, and the ack consumer (consumer.py) on the service listener as the uploader:
devices start with a claim only, enroll, connect as themselves and deliver every event once;
`floe-agent enroll` and its refusals; answers that are not the device's are refused;
renewal near expiry without losing a batch, and a renewed certificate the broker refuses;
key files 0600 and no key material or token in any agent log.
"""

import datetime
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

import floe_mqtt
from agent_run import Agent
from consumer import Consumer
from enroll_client import Credentials, Env

DEVICES = int(os.environ.get("FLOE_AGENT_ENROLL_DEVICES", "50"))
SECRETS = []  # tokens handed to agents: none may appear in a log
AGENTS = []  # every agent of the module, for the last check of logs and key files


# -- fixtures --------------------------------------------------------------------------------


def make_env(tmp_path_factory, name, backdate=None, **defaults):
    bindir = os.environ.get("FLOE_BIN")
    if not bindir:
        pytest.skip("FLOE_BIN is not set: run through `make system`")
    for b in ("floe-ca", "floe-enrolld", "floe-agent"):
        if not os.access(Path(bindir) / b, os.X_OK):
            pytest.fail(f"{b} not built in {bindir}", pytrace=False)
    e = Env(bindir, tmp_path_factory.mktemp(name), defaults=defaults)
    if backdate is not None:
        conf = e.ca.path("floe-ca.conf")
        conf.write_text(re.sub(r"(?m)^backdate = .*$", f"backdate = {backdate}",
                               conf.read_text()))
    e.daemon = e.enrolld().start()
    return e


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    e = make_env(tmp_path_factory, "enroll", limits__claim_rate=1000, limits__renew_rate=100,
                 enrolld__validity="30d")
    try:
        yield e
    finally:
        e.daemon.stop()
        e.broker.stop()


@pytest.fixture(scope="module")
def short(tmp_path_factory):
    """Certificates of 60 s and not backdated (the CA's [ca] backdate = 0): renewal comes
    within a test."""
    e = make_env(tmp_path_factory, "renew", backdate="0", limits__claim_rate=1000,
                 limits__renew_rate=200, enrolld__validity="60s")
    try:
        yield e
    finally:
        e.daemon.stop()
        e.broker.stop()


@pytest.fixture(autouse=True)
def kill_agents():
    """An agent a failed test left running is killed (it would load the next tests)."""
    before = len(AGENTS)
    yield
    for a in AGENTS[before:]:
        a.kill()


def uploader_creds(e):
    key, _, chain = e.ca.issued("floe-uploader")
    return Credentials(chain, key, e.root)


def consumer_of(e, client_id="floe-uploader"):
    c = uploader_creds(e)
    return Consumer("127.0.0.1", e.broker.service_port, c.ca, c.cert, c.key,
                    client_id=client_id)


class Audit(floe_mqtt.Subscriber):
    """Every batch the broker delivers, as sent: resends must be byte-identical."""

    def __init__(self, e):
        super().__init__("127.0.0.1", e.broker.service_port, "floe/v1/+/batch",
                         tls=uploader_creds(e).tls, prefix="audit")

    def copies(self):
        from consumer import _peek
        seen = {}
        for m in list(self.messages):
            epoch, seq = _peek(m.payload)
            seen.setdefault((m.topic, epoch, seq), []).append(m.payload)
        return seen


def device_agent(e, tmp, name, identity, claim, token=None, enroll=None, extra=None,
                 sim=True):
    """An agent with [enroll] (claim Credentials) and no device certificate yet."""
    d = Path(tmp) / name
    sections = {
        "enroll": {"claim_cert": claim.cert, "claim_key": claim.key,
                   "port": e.broker.claim_port, "timeout": "5s", "retry_min": "200ms",
                   "retry_max": "3s"},
        "ring": {"size": "1MiB"},
        "window": {"max_series": 16},
        "batch": {"max_age": "300ms", "max_events": 2000},
        "outbox": {"sync": "none", "max_bytes": "4MiB", "segment_bytes": "256KiB"},
    }
    if sim:
        sections["board.sim"] = {"sensors": 1, "metrics": 1, "interval": "100ms"}
    if token:
        sections["enroll"]["token"] = token
        SECRETS.append(token)
    for k, v in (enroll or {}).items():
        sections["enroll"][k] = v
    for s, keys in (extra or {}).items():
        sections.setdefault(s, {}).update(keys)
    a = Agent(os.path.join(os.environ["FLOE_BIN"], "floe-agent"), d, identity=identity,
              central=SimpleNamespace(port=e.broker.device_port),
              creds=SimpleNamespace(ca=str(e.root), cert=d / "device.pem", key=d / "device.key"),
              extra=sections)
    a.cert, a.key = d / "device.pem", d / "device.key"
    AGENTS.append(a)
    return a


def openssl(*args, input=None):
    r = subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True,
                       timeout=60, input=input)
    assert r.returncode == 0, f"openssl {args}: {r.stderr}"
    return r.stdout


def serial_of(path):
    return openssl("x509", "-noout", "-serial", "-in", path).strip().split("=", 1)[1]


def cn_of(path):
    return openssl("x509", "-noout", "-subject", "-nameopt", "RFC2253", "-in",
                   path).strip().removeprefix("subject=")


def pubkey_matches(cert, key):
    return openssl("x509", "-noout", "-pubkey", "-in", cert) == openssl("pkey", "-pubout",
                                                                         "-in", key)


def chains_to_root(e, cert):
    r = subprocess.run(["openssl", "verify", "-CAfile", str(e.root), "-untrusted", str(cert),
                        "-purpose", "sslclient", str(cert)], capture_output=True, text=True,
                       timeout=30)
    return r.returncode == 0


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def leftovers(agent):
    return sorted(p.name for p in agent.dir.iterdir()
                  if p.name.endswith((".new", ".tmp")))


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def events_of(consumer, identity):
    tenant, device = identity.split(".")
    return [(r["sensor"], r["metric"], r["ts"]) for r in consumer.events
            if r["tenant"] == tenant and r["device"] == device]


def assert_exactly_once(consumer, agent, identity):
    """Every reading the agent accepted arrived once (the agent has stopped)."""
    accepted = agent.metric("floe_agent_readings_accepted_total")
    assert accepted > 0, agent.log_tail()
    consumer.wait_until(lambda c: len(events_of(c, identity)) >= accepted, timeout=20,
                        what=f"{accepted:.0f} events of {identity}")
    got = events_of(consumer, identity)
    assert len(got) == len(set(got)), f"{identity}: duplicates"
    assert len(got) == accepted, (identity, len(got), accepted)


# -- 50 devices from claim to delivery ------------------------------------------------------


def test_devices_enroll_connect_and_deliver_every_event_once(env, tmp_path):
    per_claim = 10
    plan = []  # (claim credentials, [(identity, token or None)])
    for c in range((DEVICES + per_claim - 1) // per_claim):
        idents = [f"acme.fleet-{c:02d}{i:02d}" for i in range(per_claim)
                  if c * per_claim + i < DEVICES]
        if c % 2 == 0:  # a batch claim with one-time tokens
            creds, tokens = env.claim(f"fleet-{c}", tokens_for=idents)
            plan.append((creds, [(i, tokens[i]) for i in idents]))
        else:  # a batch claim with an allowlist
            creds, _ = env.claim(f"fleet-{c}", allow=idents)
            plan.append((creds, [(i, None) for i in idents]))
    agents = {}
    # ten devices per claim share its client id: each connection takes the previous one's
    # session over, and the losers back off (docs/enrollment.md, "Device side")
    backoff = {"retry_min": "500ms", "retry_max": "6s"}
    # one Python consumer for 50 agents: fewer, larger batches, and patience for its acks
    calm = {"batch": {"max_age": "1s"}, "uplink": {"ack_timeout": "10s"}}
    for creds, idents in plan:
        for ident, token in idents:
            agents[ident] = device_agent(env, tmp_path, ident, ident, creds, token=token,
                                         enroll=backoff, extra=calm)
    with consumer_of(env) as consumer:
        t0 = time.monotonic()
        for a in agents.values():
            a.start()
        for ident, a in agents.items():
            a.wait_metric("floe_agent_uplink_connected", lambda v: v == 1,
                          timeout=max(5, 120 - (time.monotonic() - t0)))
        took = time.monotonic() - t0
        for ident, a in agents.items():
            assert a.metric("floe_agent_enrollments_total") == 1, ident
        # every device delivers its own batches
        wait_for(lambda: all(events_of(consumer, i) for i in agents), 20,
                 "a batch from every device")
        with ThreadPoolExecutor(16) as ex:
            rcs = list(ex.map(lambda a: a.stop(), agents.values()))
        assert rcs == [0] * len(agents)
        for ident, a in agents.items():
            assert_exactly_once(consumer, a, ident)
        assert consumer.rejected == []
    print(f"{len(agents)} agents enrolled and connected in {took:.1f}s")
    for ident, a in agents.items():
        assert cn_of(a.cert) == f"CN={ident},O=acme"
        assert mode(a.key) == 0o600
        assert pubkey_matches(a.cert, a.key)
        assert leftovers(a) == []
    # independent check of a sample: the chain the agent installed verifies to the root
    for ident in sorted(agents)[:: max(1, len(agents) // 5)]:
        assert chains_to_root(env, agents[ident].cert), ident
    issued = {r["identity"] for r in env.ca.list_json("--kind", "device")}
    assert set(agents) <= issued


def test_ingest_goes_on_while_enrolling(env, tmp_path):
    """No enrollment service at start, and a broken certificate file: the agent accepts
    readings and closes batches offline, enrolls when floe-enrolld is back, then delivers
    all of it."""
    ident = "acme.offline-1"
    creds, tokens = env.claim("offline", tokens_for=[ident])
    a = device_agent(env, tmp_path, "offline", ident, creds, token=tokens[ident])
    a.cert.write_text("not a certificate\n")
    rc, out, err = a.command("--check-config")
    assert rc == 0 and "no device certificate yet: [enroll] will request one" in out, (out, err)
    env.daemon.stop()
    try:
        with consumer_of(env) as consumer:
            a.start()
            a.wait_metric("floe_agent_outbox_batches", lambda v: v >= 3, timeout=20)
            assert a.metric("floe_agent_uplink_connected") == 0
            assert a.metric('floe_agent_certificate_state{state="enrolling"}') == 1
            assert a.metric("floe_agent_enrollment_attempts_total") >= 1
            rc, out, _ = a.command("status")
            assert rc == 0 and re.search(r"^certificate\s+enrolling$", out, re.M), out
            env.daemon.start()
            a.wait_metric("floe_agent_uplink_connected", lambda v: v == 1, timeout=30)
            a.wait_metric("floe_agent_outbox_batches", lambda v: v == 0, timeout=20)
            assert a.stop() == 0
            assert_exactly_once(consumer, a, ident)
    finally:
        if env.daemon.proc is None:
            env.daemon.start()
    assert "no usable device certificate: unparsable" in a.log_text()
    assert a.metric('floe_agent_certificate_state{state="valid"}') == 1
    assert cn_of(a.cert) == f"CN={ident},O=acme"


# -- `floe-agent enroll` --------------------------------------------------------------------


def test_enroll_command(env, tmp_path):
    ident = "acme.cmd-1"
    creds, tokens = env.claim("cmd", tokens_for=[ident])
    a = device_agent(env, tmp_path, "cmd", ident, creds, token=tokens[ident])
    rc, out, err = a.command("enroll")
    assert rc == 0, (out, err)
    m = re.fullmatch(r"enrolled acme\.cmd-1: serial ([0-9A-F]+), valid until (.*) UTC\n"
                     r"  certificate (\S+)\n  key (\S+)\n", out)
    assert m, out
    assert m.group(1) == serial_of(a.cert) and m.group(3) == str(a.cert)
    assert m.group(4) == str(a.key)
    until = datetime.datetime.strptime(m.group(2), "%Y-%m-%d %H:%M:%S")
    assert abs((until - datetime.datetime.utcnow()).total_seconds() - 30 * 86400) < 120
    assert cn_of(a.cert) == f"CN={ident},O=acme"
    assert pubkey_matches(a.cert, a.key) and chains_to_root(env, a.cert)
    assert mode(a.key) == 0o600 and leftovers(a) == []
    assert [r["serial"] for r in env.ca.list_json("--identity", ident)] == [m.group(1)]
    rc, out2, _ = a.command("--check-config")
    assert rc == 0 and f"{a.cert}: serial {m.group(1)}, valid until {m.group(2)} UTC" in out2
    # again: nothing to do, and nothing requested
    rc, out2, _ = a.command("enroll")
    assert rc == 0 and out2.startswith(f"already enrolled as {ident}: serial {m.group(1)}")
    assert len(env.ca.list_json("--identity", ident)) == 1
    # the daemon starts with it and connects as the device
    with consumer_of(env) as consumer:
        a.start()
        a.wait_metric("floe_agent_uplink_connected", lambda v: v == 1)
        wait_for(lambda: events_of(consumer, ident), 20, "events")
        assert a.stop() == 0
    assert a.metric("floe_agent_enrollments_total") == 0  # nothing to enroll at start
    for text in (out, a.log_text()):
        assert tokens[ident] not in text


def test_enroll_command_identity_and_token_from_the_command_line(env, tmp_path):
    ident = "acme.cmd-2"
    creds, tokens = env.claim("cmd-2", tokens_for=[ident])
    a = device_agent(env, tmp_path, "cmd-2", ident, creds)
    SECRETS.append(tokens[ident])
    # no identity in the configuration: --identity names it, --token entitles it
    a.conf.write_text(re.sub(r"(?m)^identity = .*\n", "", a.conf.read_text()))
    rc, out, err = a.command("--check-config")
    assert rc != 0 and "no identity" in err, (out, err)
    rc, out, err = a.command("enroll", "--identity", "Acme/Bad")
    assert rc == 2 and "--identity" in err
    rc, out, err = a.command("enroll", "--identity", ident, "--token", tokens[ident])
    assert rc == 0 and out.startswith(f"enrolled {ident}:"), (out, err)
    assert tokens[ident] not in out + err
    # the identity now comes from the certificate
    rc, out, err = a.command("--check-config")
    assert rc == 0 and f"identity {ident}" in out, (out, err)
    # --force: a new key and certificate by claim again (the token is used up, so this
    # claim needs an allowlist entry to do it: refused, and the old pair is kept)
    before = serial_of(a.cert), a.key.read_bytes()
    rc, out, err = a.command("enroll", "--force", "--token", tokens[ident])
    assert rc == 1 and "token-used" in err, (out, err)
    assert (serial_of(a.cert), a.key.read_bytes()) == before


@pytest.mark.parametrize("key_type,text", [("p384", "NIST CURVE: P-384"),
                                           ("rsa3072", "Public-Key: (3072 bit)")])
def test_enroll_command_key_types(env, tmp_path, key_type, text):
    ident = f"acme.key-{key_type}"
    creds, _ = env.claim(f"key-{key_type}", allow=[ident])
    a = device_agent(env, tmp_path, key_type, ident, creds, enroll={"key_type": key_type})
    rc, out, err = a.command("enroll")
    assert rc == 0, (out, err)
    assert text in openssl("x509", "-noout", "-text", "-in", a.cert)
    assert pubkey_matches(a.cert, a.key) and mode(a.key) == 0o600


def test_key_provider_and_property_query(env, tmp_path):
    """[enroll] key_provider loads an OpenSSL 3 provider by name and key_propq makes the key
    through it (a TPM would be "tpm2" / "provider=tpm2"; none here, so the default provider
    named explicitly); a provider that is not there is refused by name before any request."""
    ident = "acme.prov-1"
    creds, _ = env.claim("prov", allow=[ident])
    a = device_agent(env, tmp_path, "prov-bad", ident, creds,
                     enroll={"key_provider": "floe-no-such-provider"})
    rc, out, err = a.command("enroll")
    assert rc != 0 and "[enroll] key_provider floe-no-such-provider" in err, err
    assert not a.key.exists() and not Path(str(a.key) + ".new").exists()
    a = device_agent(env, tmp_path, "prov-ok", ident, creds,
                     enroll={"key_provider": "default", "key_propq": "provider=default"})
    rc, out, err = a.command("enroll")
    assert rc == 0, (out, err)
    assert pubkey_matches(a.cert, a.key) and mode(a.key) == 0o600
    # a property query no provider answers: no key, a clear error
    b = device_agent(env, tmp_path, "prov-q", "acme.prov-2", env.claim("prov2",
                     allow=["acme.prov-2"])[0], enroll={"key_propq": "provider=floe-none"})
    rc, out, err = b.command("enroll")
    assert rc != 0 and not b.key.exists() and "device.key.new (p256)" in err, err


def test_a_retry_after_a_restart_sends_the_same_key(env, tmp_path):
    """No answer (floe-enrolld down): the key made for the request stays pending, 0600, and
    the next run asks with it, so an answer that was lost gives the same certificate."""
    ident = "acme.pending-1"
    creds, _ = env.claim("pending", allow=[ident])
    a = device_agent(env, tmp_path, "pending", ident, creds, enroll={"timeout": "2s"})
    pending = Path(str(a.key) + ".new")
    env.daemon.stop()
    try:
        rc, out, err = a.command("enroll")
        assert rc == 1 and "failed: timeout: no answer from floe-enrolld within 2s" in err, err
    finally:
        env.daemon.start()
    assert mode(pending) == 0o600 and not a.key.exists()
    made = openssl("pkey", "-pubout", "-in", pending)
    rc, out, err = a.command("enroll")
    assert rc == 0, err
    assert "using the pending device key" in err
    assert openssl("pkey", "-pubout", "-in", a.key) == made
    assert not pending.exists()


def test_default_file_locations(env, tmp_path):
    """With [enroll] and no [uplink] cert_file/key_file: the certificate goes to the state
    directory, the key where the board keeps it ([board.sim] key, else the state
    directory)."""
    ident = "acme.where-1"
    creds, _ = env.claim("where", allow=[ident, "acme.where-2"])
    a = device_agent(env, tmp_path, "where", ident, creds)
    a.conf.write_text(re.sub(r"(?m)^(cert|key)_file = .*\n", "", a.conf.read_text()))
    rc, out, err = a.command("--check-config")
    assert rc == 0 and f"{a.state}/device.pem: no device certificate yet" in out, (out, err)
    rc, out, err = a.command("enroll")
    assert rc == 0, err
    assert f"certificate {a.state}/device.pem\n  key {a.state}/device.key\n" in out
    assert mode(a.state / "device.key") == 0o600 and mode(a.state) == 0o700
    assert pubkey_matches(a.state / "device.pem", a.state / "device.key")
    b = device_agent(env, tmp_path, "where-2", "acme.where-2", creds,
                     extra={"board.sim": {"key": tmp_path / "where-2" / "board.key"}})
    b.conf.write_text(re.sub(r"(?m)^(cert|key)_file = .*\n", "", b.conf.read_text()))
    rc, out, err = b.command("enroll")
    assert rc == 0, err
    assert f"key {b.dir}/board.key\n" in out and mode(b.dir / "board.key") == 0o600
    b.conf.write_text(b.conf.read_text().replace(f"key = {b.dir}/board.key",
                                                 "key = handle:0x81000001"))
    rc, out, err = b.command("--check-config")
    assert rc != 0 and "TPM persistent handle" in err, (out, err)


def refuse(a, *args):
    rc, out, err = a.command("enroll", *args)
    assert rc == 1, (rc, out, err)
    assert not a.cert.exists()
    m = re.search(r"floe-agent: enrollment of (\S+) failed: ([a-z-]+): (.+)", err)
    assert m, err
    return m.group(2), m.group(3)


def test_enroll_command_refusals_name_the_reason(env, tmp_path):
    creds, _ = env.claim("refuse", allow=["acme.refuse-1"])
    # not on the claim's allowlist
    a = device_agent(env, tmp_path, "refuse-2", "acme.refuse-2", creds)
    reason, message = refuse(a)
    assert reason == "not-entitled" and "not entitled" in message
    # a token nobody issued
    bad = "floe-et1-" + "0" * 32
    b = device_agent(env, tmp_path, "refuse-3", "acme.refuse-3", creds, token=bad)
    reason, _ = refuse(b)
    assert reason == "not-entitled"
    # a token used by another device
    tcreds, tokens = env.claim("reuse", extra=["--tokens", "1"])
    [token] = tokens.values()
    SECRETS.append(token)
    c = device_agent(env, tmp_path, "reuse-1", "acme.reuse-1", tcreds, token=token)
    assert c.command("enroll")[0] == 0
    d = device_agent(env, tmp_path, "reuse-2", "acme.reuse-2", tcreds, token=token)
    reason, _ = refuse(d)
    assert reason == "token-used"
    # a revoked claim (revoked in the registry; the broker still lets it connect)
    rcreds, _ = env.claim("revoked", allow=["acme.revoked-1"])
    env.ca.run("revoke", "--identity", "claim-revoked", "--reason", "keyCompromise")
    e = device_agent(env, tmp_path, "revoked-1", "acme.revoked-1", rcreds)
    reason, message = refuse(e)
    assert reason == "claim-revoked" and "revoked" in message
    # the pending key stays for a retry (the same key gets the same answer), 0600
    for x in (a, b, d, e):
        assert mode(str(x.key) + ".new") == 0o600
        assert not x.key.exists()


def test_daemon_refused_retries_slowly_and_says_why(env, tmp_path):
    """A permanent refusal is logged with its reason and not hammered: retry_max/2 at the
    earliest, here 20 s."""
    creds, _ = env.claim("slow", allow=["acme.slow-1"])
    a = device_agent(env, tmp_path, "slow-2", "acme.slow-2", creds,
                     enroll={"retry_min": "100ms", "retry_max": "40s"})
    a.start()
    a.wait_log("an operator must act")
    log = a.log_text()
    assert "floe-enrolld refused acme.slow-2: not-entitled: the claim is not entitled" in log
    m = re.search(r"trying again in (\d+)s", log)
    assert m and 20 <= int(m.group(1)) <= 40, log
    time.sleep(2)
    assert a.metric("floe_agent_enrollment_attempts_total") == 1
    assert a.metric("floe_agent_uplink_connected") == 0
    assert a.stop() == 0


# -- answers that are not the device's --------------------------------------------------------


class FakeEnrolld(floe_mqtt.Subscriber):
    """Answers enrollment requests in floe-enrolld's place, with its service certificate on
    the service listener: answer(id, request) returns the body (a dict) or None."""

    def __init__(self, e, answer):
        key, _, chain = e.ca.issued("floe-enrolld")
        super().__init__("127.0.0.1", e.broker.service_port, "floe/enroll/v1/+/req",
                         tls=Credentials(chain, key, e.root).tls, prefix="fake-enrolld")
        self.answer = answer
        self.requests = []
        self.errors = []
        self.client.on_message = self._on_request

    def _on_request(self, client, userdata, msg):
        try:
            props = msg.properties
            req = json.loads(msg.payload)
            self.requests.append((msg.topic.split("/")[3], req))
            body = self.answer(msg.topic.split("/")[3], req)
            if body is None:
                return
            out = Properties(PacketTypes.PUBLISH)
            out.CorrelationData = props.CorrelationData
            out.ContentType = "application/json"
            client.publish(props.ResponseTopic, json.dumps(body).encode(), qos=1,
                           properties=out)
        except Exception as ex:  # never kill paho's thread: the test sees .errors
            self.errors.append(ex)


def pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def make_cert(public_key, cn, issuer_cert, issuer_key, days=(-1, 30), eku=None, ca=False,
              subject=None):
    now = datetime.datetime.now(datetime.timezone.utc)
    name = subject or x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "acme"),
                                 x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    b = (x509.CertificateBuilder().subject_name(name)
         .issuer_name(issuer_cert.subject if issuer_cert else name)
         .public_key(public_key).serial_number(x509.random_serial_number())
         .not_valid_before(now + datetime.timedelta(days=days[0]))
         .not_valid_after(now + datetime.timedelta(days=days[1]))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if eku is not False and not ca:
        b = b.add_extension(x509.ExtendedKeyUsage(eku or [ExtendedKeyUsageOID.CLIENT_AUTH]),
                            critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def ok_answer(ident, cert, chain):
    return {"v": 1, "status": "ok", "identity": ident, "serial": format(cert.serial_number, "X"),
            "not_before": "2000-01-01T00:00:00Z", "not_after": "2100-01-01T00:00:00Z",
            "certificate": pem(cert), "chain": chain, "replay": False}


def test_answers_that_are_not_the_devices_are_refused(env, tmp_path):
    dca_key = serialization.load_pem_private_key(env.ca.path("device", "ca.key").read_bytes(),
                                                 None)
    dca = x509.load_pem_x509_certificate(env.ca.path("device", "ca.pem").read_bytes())
    chain = env.ca.path("device", "ca.pem").read_text()
    rogue_key = ec.generate_private_key(ec.SECP256R1())
    rogue = make_cert(rogue_key.public_key(), "rogue CA", None, rogue_key, ca=True)
    other_key = ec.generate_private_key(ec.SECP256R1())

    def case(kind):
        def answer(claim, req):
            ident = req["identity"]
            key = x509.load_pem_x509_csr(req["csr"].encode()).public_key()
            if kind == "key-mismatch":
                return ok_answer(ident, make_cert(other_key.public_key(), ident, dca, dca_key),
                                 chain)
            if kind == "untrusted":
                return ok_answer(ident, make_cert(key, ident, rogue, rogue_key), pem(rogue))
            if kind == "expired":
                return ok_answer(ident, make_cert(key, ident, dca, dca_key, days=(-10, -1)),
                                 chain)
            if kind == "wrong-identity":
                return ok_answer(ident, make_cert(key, "acme.someone-else", dca, dca_key),
                                 chain)
            if kind == "not-client-auth":
                return ok_answer(ident, make_cert(key, ident, dca, dca_key,
                                                  eku=[ExtendedKeyUsageOID.SERVER_AUTH]), chain)
            if kind == "garbage":
                return {"v": 1, "status": "ok", "certificate": "-----BEGIN CERTIFICATE-----\n"}
            if kind == "no-status":
                return {"v": 1, "certificate": pem(make_cert(key, ident, dca, dca_key))}
            assert kind == "valid"
            return ok_answer(ident, make_cert(key, ident, dca, dca_key), chain)
        return answer

    creds, _ = env.claim("fake", allow=["acme.fake-1"])
    env.daemon.stop()
    try:
        for kind in ("key-mismatch", "untrusted", "expired", "wrong-identity",
                     "not-client-auth", "garbage", "no-status"):
            a = device_agent(env, tmp_path, f"fake-{kind}", "acme.fake-1", creds)
            with FakeEnrolld(env, case(kind)) as fake:
                rc, out, err = a.command("enroll")
                assert fake.errors == [] and len(fake.requests) == 1, fake.errors
            assert rc == 1, (kind, out, err)
            if kind == "no-status":
                assert "failed: bad-answer: unreadable answer: the answer has no status" in err
            else:
                problem = "unparsable" if kind == "garbage" else kind
                assert f"failed: bad-certificate: the certificate in the answer is not ours " \
                       f"to use: {problem}" in err, (kind, err)
            assert not a.cert.exists() and leftovers(a) == ["device.key.new"], leftovers(a)
        # the same responder with a proper answer: installed (so the refusals above were
        # the checks, not the fake)
        a = device_agent(env, tmp_path, "fake-valid", "acme.fake-1", creds)
        with FakeEnrolld(env, case("valid")) as fake:
            rc, out, err = a.command("enroll")
        assert rc == 0, err
        assert chains_to_root(env, a.cert) and pubkey_matches(a.cert, a.key)
    finally:
        env.daemon.start()


# -- renewal -----------------------------------------------------------------------------------


RENEW = {"renew_at": "0.15", "renew_jitter": "1s", "retry_min": "1s", "retry_max": "4s",
         "timeout": "5s"}
FAST_UPLINK = {"uplink": {"ack_timeout": "2s"}}


def test_renewal_near_expiry_loses_no_batch(short, tmp_path):
    ident = "acme.renew-1"
    creds, tokens = short.claim("renew", tokens_for=[ident])
    a = device_agent(short, tmp_path, "renew-1", ident, creds, token=tokens[ident],
                     enroll=RENEW, extra=FAST_UPLINK)
    with consumer_of(short) as consumer, Audit(short) as audit:
        a.start()
        a.wait_metric("floe_agent_uplink_connected", lambda v: v == 1, timeout=20)
        first = serial_of(a.cert)
        first_key = a.key.read_bytes()
        ino = os.stat(a.cert).st_ino
        due = a.wait_metric("floe_agent_certificate_renewal_timestamp_seconds", lambda v: v > 0)
        # 60 s certificate, renew_at 0.15, jitter up to 1 s: due 9 to 10 s after notBefore
        nb = datetime.datetime.strptime(openssl("x509", "-noout", "-startdate", "-in", a.cert)
                                        .strip().split("=", 1)[1], "%b %d %H:%M:%S %Y %Z")
        nb = nb.replace(tzinfo=datetime.timezone.utc).timestamp()
        assert 9 <= due - nb <= 10.01, (due, nb)
        # the uploader holds its acks across the switch: batches in flight must be resent
        # on the new connection, byte-identical, and committed once
        time.sleep(max(0, due - time.time() - 1.5))
        consumer.drop_acks(seconds=4)
        a.wait_metric("floe_agent_certificate_renewals_total", lambda v: v >= 1, timeout=20)
        second = serial_of(a.cert)
        assert second != first
        a.wait_log(f"the broker accepted certificate serial {second}")
        assert a.key.read_bytes() != first_key and os.stat(a.cert).st_ino != ino
        # and again: the renewed certificate is renewed in its turn
        a.wait_metric("floe_agent_certificate_renewals_total", lambda v: v >= 2, timeout=25)
        a.wait_metric("floe_agent_uplink_connected", lambda v: v == 1)
        time.sleep(1)
        assert a.stop() == 0
        assert_exactly_once(consumer, a, ident)
        assert consumer.duplicates > 0  # the held acks made the agent resend
        for (topic, epoch, seq), copies in audit.copies().items():
            assert len(set(copies)) == 1, (topic, epoch, seq)
    third = serial_of(a.cert)
    assert len({first, second, third}) == 3
    assert cn_of(a.cert) == f"CN={ident},O=acme" and pubkey_matches(a.cert, a.key)
    assert chains_to_root(short, a.cert)
    assert mode(a.key) == 0o600 and leftovers(a) == []
    assert a.metric("floe_agent_certificate_renewal_failures_total") == 0
    # the broker saw the device connect with each certificate
    assert short.broker.log_text().count(f"as {ident} ") >= 3 or \
        short.broker.log_text().count(f"u'{ident}'") >= 3
    rows = {r["serial"]: r["status"] for r in short.ca.list_json("--identity", ident)}
    assert {first, second, third} <= set(rows)


def test_a_renewed_certificate_the_broker_refuses_is_not_kept(short, tmp_path):
    """floe-enrolld's place is taken by a responder that issues the renewed certificate
    with floe-ca, revokes it and reloads the broker's CRL before answering: the agent's
    switch to it fails, it goes back to its certificate, keeps delivering, and renews
    later (from the real floe-enrolld again)."""
    ident = "acme.renew-2"
    creds, tokens = short.claim("renew-2", tokens_for=[ident])
    a = device_agent(short, tmp_path, "renew-2", ident, creds, token=tokens[ident],
                     enroll=RENEW, extra=FAST_UPLINK)
    issued = []

    def revoked_answer(claim, req):
        if claim != ident:
            return None
        out = tmp_path / f"fake-{len(issued)}"
        out.mkdir()
        (out / "req.csr").write_text(req["csr"])
        short.ca.run("issue-device", ident, "--csr", out / "req.csr", "--out", out,
                     "--validity", "1h")
        cert_path = next(out.glob(f"{ident}.pem"))
        serial = short.ca.serial_of(cert_path)
        short.ca.run("revoke", "--serial", serial)
        short.ca.run("crl", "--ca", "device", "--out", short.out)
        short.broker.reload()
        issued.append(serial)
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        return ok_answer(ident, cert, short.ca.path("device", "ca.pem").read_text())

    with consumer_of(short) as consumer:
        a.start()
        a.wait_metric("floe_agent_uplink_connected", lambda v: v == 1, timeout=20)
        first = serial_of(a.cert)
        short.daemon.stop()
        try:
            with FakeEnrolld(short, revoked_answer) as fake:
                a.wait_log("the broker refused the renewed certificate", timeout=30)
                assert fake.errors == []
            # no responder now: the agent is back on its own certificate, and delivering
            log = a.log_text()
            refused = re.findall(r"refused the renewed certificate \(serial ([0-9A-F]+)\)", log)
            assert refused and set(refused) <= set(issued), (refused, issued)
            assert f"keeping serial {first}" in log
            a.wait_metric("floe_agent_certificate_renewal_failures_total", lambda v: v >= 1)
            a.wait_metric("floe_agent_uplink_connected", lambda v: v == 1, timeout=20)
            assert serial_of(a.cert) == first
            n = len(events_of(consumer, ident))
            wait_for(lambda: len(events_of(consumer, ident)) > n + 5, 20, "more events")
            # the next attempt goes to floe-enrolld: renewed
            short.daemon.start()
            a.wait_metric("floe_agent_certificate_renewals_total", lambda v: v >= 1, timeout=30)
        finally:
            if short.daemon.proc is None:
                short.daemon.start()
        renewed = serial_of(a.cert)
        assert renewed not in issued and renewed != first
        a.wait_metric("floe_agent_uplink_connected", lambda v: v == 1)
        time.sleep(1)
        assert a.stop() == 0
        assert_exactly_once(consumer, a, ident)
    assert mode(a.key) == 0o600 and leftovers(a) == []


def test_renewal_state_in_status_and_the_status_document(short, tmp_path):
    ident = "acme.renew-3"
    creds, _ = short.claim("renew-3", allow=[ident])
    a = device_agent(short, tmp_path, "renew-3", ident, creds, enroll=dict(RENEW, renew_at="0.5"),
                     extra={"uplink": {"status_interval": "1s"}})
    with floe_mqtt.Subscriber("127.0.0.1", short.broker.service_port,
                              f"floe/v1/{ident}/status", tls=uploader_creds(short).tls) as sub:
        a.start()
        a.wait_metric("floe_agent_uplink_connected", lambda v: v == 1, timeout=20)
        due = a.wait_metric("floe_agent_certificate_renewal_timestamp_seconds",
                            lambda v: v > 0)
        msgs = sub.wait_for(1, timeout=10)
    doc = json.loads(msgs[-1].payload)
    assert doc["cert_state"] == "valid" and doc["cert_serial"] == serial_of(a.cert)
    assert abs(doc["cert_renew_at_us"] / 1e6 - due) < 1
    assert doc["cert_renewals"] == 0 and doc["cert_renewal_failures"] == 0
    rc, out, err = a.command("status")
    assert rc == 0, err
    when = datetime.datetime.fromtimestamp(int(due), datetime.timezone.utc)
    assert re.search(r"^certificate\s+valid$", out, re.M), out
    assert f"next renewal               {when:%Y-%m-%d %H:%M:%S} UTC" in out, out
    assert re.search(r"^certificate renewals\s+0 renewed, 0 failed; 1 enrolled \(1 requests\)$",
                     out, re.M), out
    assert a.stop() == 0


def test_without_auto_enrollment_sighup_picks_up_the_enrolled_certificate(env, tmp_path):
    ident = "acme.manual-1"
    creds, _ = env.claim("manual", allow=[ident])
    a = device_agent(env, tmp_path, "manual", ident, creds, enroll={"auto": "false"})
    rc, out, _ = a.command("--check-config")
    assert rc == 0 and "no device certificate yet: run `floe-agent enroll`" in out
    with consumer_of(env) as consumer:
        a.start()
        a.wait_log("run `floe-agent enroll`, then reload the agent")
        a.wait_metric("floe_agent_outbox_batches", lambda v: v >= 1)
        assert a.metric('floe_agent_certificate_state{state="no-certificate"}') == 1
        assert a.command("enroll")[0] == 0
        mark = len(a.log_text())
        a.proc.send_signal(signal.SIGHUP)
        a.wait_log("reload: using the device certificate on disk", start=mark)
        a.wait_metric("floe_agent_uplink_connected", lambda v: v == 1)
        a.wait_metric("floe_agent_outbox_batches", lambda v: v == 0)
        # SIGHUP with a valid certificate: checked again, and the uplink reconnects with it
        connects = env.broker.log_text().count(f"as {ident} ")
        mark = len(a.log_text())
        a.proc.send_signal(signal.SIGHUP)
        a.wait_log("reload: configuration checked", start=mark)
        wait_for(lambda: env.broker.log_text().count(f"as {ident} ") > connects, 15,
                 "a reconnect")
        a.wait_metric("floe_agent_uplink_connected", lambda v: v == 1)
        assert a.log_text()[mark:].count("connection lost") == 1
        assert a.stop() == 0
        assert_exactly_once(consumer, a, ident)


def test_a_bad_token_is_refused_without_quoting_it(env, tmp_path):
    creds, _ = env.claim("badtok", allow=["acme.badtok-1"])
    a = device_agent(env, tmp_path, "badtok", "acme.badtok-1", creds, token="secret token!")
    line = a.conf.read_text().splitlines().index("token = secret token!") + 1
    rc, out, err = a.command("--check-config")
    assert rc != 0 and f"{a.conf}:{line}: [enroll] token: not a token" in err, err
    assert "secret" not in err + out


def test_without_enroll_section_a_missing_certificate_is_still_an_error(env, tmp_path):
    creds, _ = env.claim("plain", allow=["acme.plain-1"])
    a = device_agent(env, tmp_path, "plain", "acme.plain-1", creds)
    text = a.conf.read_text()
    a.conf.write_text(re.sub(r"\[enroll\]\n(?:[^\[\n][^\n]*\n)*", "", text))
    assert "[enroll]" not in a.conf.read_text()
    rc, out, err = a.command("--check-config")
    assert rc != 0 and "[uplink] cert_file" in err and "No such file" in err, (out, err)
    rc, out, err = a.command("enroll")
    assert rc == 1 and "[uplink] cert_file" in err
    # with a certificate but no [enroll]: there is nothing to enroll with
    env.ca.run("issue-device", "acme.plain-1", "--out", a.dir)
    shutil.copy(a.dir / "acme.plain-1.chain.pem", a.cert)
    shutil.copy(a.dir / "acme.plain-1.key", a.key)
    rc, out, err = a.command("enroll")
    assert rc == 1 and "no [enroll] claim_cert and claim_key" in err, (out, err)


# -- last: what every agent of this module wrote --------------------------------------------


def test_no_key_material_or_token_in_agent_logs():
    assert AGENTS, "run with the whole module"
    for a in AGENTS:
        log = a.log_text()
        for marker in ("PRIVATE KEY", "CERTIFICATE REQUEST", "BEGIN CERTIFICATE", "MII"):
            assert marker not in log, (a.dir, marker)
        for token in SECRETS:
            assert token not in log and token[len("floe-et1-"):] not in log, a.dir
        for key in list(a.dir.glob("*.key")) + list(a.dir.glob("*.key.new")):
            assert mode(key) == 0o600, key
            body = "".join(line for line in key.read_text().splitlines()
                           if not line.startswith("-----"))
            for i in range(0, len(body) - 24, 32):
                assert body[i:i + 24] not in log, key
