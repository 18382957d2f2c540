"""The central broker's mTLS device listener (tls_broker), its PKI (pki.py) and the uploader
stand-in (consumer.py) against the real mosquitto: what floe-agent's end-to-end tests rely on.

MQTT v5 reason codes of PUBACKs come from mosquitto_pub -d (paho 1.6 drops them before
on_publish); TLS refusals come from a raw MQTT v5 CONNECT over Python's ssl module, which
shows the TLS alert the broker sent.
"""

import json
import os
import re
import socket
import ssl
import struct
import subprocess
import time
import warnings

import cbor2
import pytest

import floe_mqtt
import wire_ref

A = "acme.gw-0001"
B = "acme.gw-0002"
EPOCH = 0x1234_5678_9ABC_DEF0
NOT_AUTHORIZED = 0x87  # MQTT v5 reason code 135


def rows_for(identity, n=40, seed=0):
    tenant, device = identity.split(".")
    rows = []
    for i in range(n):
        row = {"tenant": tenant, "device": device, "sensor": "boiler-%d" % (i % 3),
               "metric": ("temp", "hum")[i % 2], "ts": 1763676000000000 + i * 250000,
               "value": None if i % 11 == 5 else round(20 + seed + i * 0.1, 1)}
        if i % 13 == 7:
            row["text"] = "open"
        rows.append(row)
    return rows


def encode(floe_bin, tmp_path, rows, seq, epoch=EPOCH):
    src = tmp_path / f"rows-{epoch}-{seq}.ndjson"
    out = tmp_path / f"batch-{epoch}-{seq}.fb"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    r = subprocess.run([floe_bin("floe-batch"), "encode", "--epoch", str(epoch), "--seq",
                        str(seq), "-o", str(out), str(src)], capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr.decode()
    return out.read_bytes()


def ack_topic(identity):
    return f"floe/v1/{identity}/ack"


def batch_topic(identity):
    return f"floe/v1/{identity}/batch"


def device_session(broker, identity):
    """One MQTT v5 session for a device (its client id is its CN, so a second session with
    the same certificate would take this one over): subscribed to its ack topic; publish
    with publish_and_wait(sub, topic, payload)."""
    return floe_mqtt.Subscriber(broker.host, broker.port, ack_topic(identity),
                                tls=broker.device(identity).tls)


def publish_and_wait(session, topic, payload):
    info = session.client.publish(topic, payload, qos=1)
    info.wait_for_publish(timeout=10)
    assert info.is_published(), f"no PUBACK for {topic}"


def mosquitto_pub(broker, creds, topic, payload, tmp_path, retain=False):
    """Publish at QoS 1 with mosquitto_pub -V mqttv5 -d; returns the PUBACK reason code."""
    path = tmp_path / "mosquitto_pub.payload"
    path.write_bytes(payload)
    r = subprocess.run(["mosquitto_pub", "-h", broker.host, "-p", str(broker.port),
                        "--cafile", creds.ca, "--cert", creds.cert, "--key", creds.key,
                        "-V", "mqttv5", "-q", "1", "-t", topic, "-f", str(path), "-d",
                        *(["-r"] if retain else [])],
                       capture_output=True, text=True, timeout=30)
    m = re.search(r"received PUBACK \(Mid: \d+, RC:(\d+)\)", r.stdout)
    assert m, f"no PUBACK from mosquitto_pub (exit {r.returncode}):\n{r.stdout}{r.stderr}"
    return int(m.group(1))


def mqtt_connect(broker, creds=None, tls_min=None, tls_max=None, client_id=b""):
    """A raw MQTT v5 CONNECT over TLS: returns (TLS version, CONNACK reason code); raises
    ssl.SSLError (with the broker's alert) or OSError when the broker refuses."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile=broker.ca)
    with warnings.catch_warnings():  # TLS 1.1 is deprecated: that is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        if tls_min is not None:
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # let the client offer old protocols
            ctx.minimum_version = tls_min
        if tls_max is not None:
            ctx.maximum_version = tls_max
    if creds is not None:
        ctx.load_cert_chain(certfile=creds.cert, keyfile=creds.key)
    # CONNECT: "MQTT", level 5, clean start, keepalive 10, no properties, client id
    body = b"\x00\x04MQTT\x05\x02\x00\x0a\x00" + struct.pack(">H", len(client_id)) + client_id
    with socket.create_connection((broker.host, broker.port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=broker.host) as s:
            s.sendall(bytes([0x10, len(body)]) + body)
            data = b""
            while len(data) < 4:
                chunk = s.recv(256)
                if not chunk:
                    raise ConnectionResetError("broker closed the connection without CONNACK")
                data += chunk
            assert data[0] == 0x20, f"not a CONNACK: {data!r}"
            return s.version(), data[3]


def wait_log(broker, needle, since=0, timeout=5):
    deadline = time.monotonic() + timeout
    while needle not in broker.log_text()[since:]:
        if time.monotonic() > deadline:
            pytest.fail(f"{needle!r} not in the broker log:\n{broker.log_tail()}")
        time.sleep(0.01)


# -- batches, ledger, acks ------------------------------------------------------------------


def test_batch_is_committed_exactly_and_acked_ok(tls_broker_module, floe_bin, tmp_path):
    broker = tls_broker_module
    rows = rows_for(A)
    frame = encode(floe_bin, tmp_path, rows, seq=1)
    ndjson = tmp_path / "committed.ndjson"
    with broker.consumer(ndjson=ndjson) as consumer, device_session(broker, A) as dev:
        publish_and_wait(dev, batch_topic(A), frame)
        [ack] = dev.wait_for(1)
        assert consumer.wait_for_events(len(rows)) == rows
        assert consumer.batches == [(A, EPOCH, 1)]
        assert consumer.aggregates == [] and consumer.rejected == []
    assert ack.topic == ack_topic(A) and ack.qos == 1
    # the exact bytes: a CBOR map with keys in the spec's order
    assert ack.payload == cbor2.dumps({"v": 1, "epoch": EPOCH, "seq": 1, "status": "ok"})
    assert list(cbor2.loads(ack.payload)) == ["v", "epoch", "seq", "status"]
    assert [json.loads(line) for line in ndjson.read_text().splitlines()] == rows
    # the consumer's rows are what the independent decoder reads from the frame
    assert wire_ref.decode(frame)[1] == rows


def test_resent_batch_is_acked_duplicate_and_recorded_once(tls_broker_module, floe_bin,
                                                           tmp_path):
    broker = tls_broker_module
    identity = "acme.gw-0003"
    frames = {seq: encode(floe_bin, tmp_path, rows_for(identity, seed=seq), seq=seq)
              for seq in (1, 3, 2)}
    other_epoch = encode(floe_bin, tmp_path, rows_for(identity, seed=9), seq=1, epoch=5)
    with broker.consumer() as consumer, device_session(broker, identity) as dev:
        # seq 1, resend of 1, seq 3 before 2 (2 is no duplicate for it), 1 of another epoch
        for frame in (frames[1], frames[1], frames[3], frames[2], other_epoch):
            publish_and_wait(dev, batch_topic(identity), frame)
        acks = [cbor2.loads(m.payload) for m in dev.wait_for(5)]
        assert [(a["epoch"], a["seq"], a["status"]) for a in acks] == [
            (EPOCH, 1, "ok"), (EPOCH, 1, "duplicate"), (EPOCH, 3, "ok"), (EPOCH, 2, "ok"),
            (5, 1, "ok")]
        assert consumer.duplicates == 1
        assert consumer.ledger() == {(identity, EPOCH): [1, 2, 3], (identity, 5): [1]}
        assert consumer.events == (rows_for(identity, seed=1) + rows_for(identity, seed=3) +
                                   rows_for(identity, seed=2) + rows_for(identity, seed=9))


def test_batch_naming_another_identity_or_garbage_is_rejected(tls_broker_module, floe_bin,
                                                              tmp_path):
    broker = tls_broker_module
    identity = "acme.gw-0004"
    forged = encode(floe_bin, tmp_path, rows_for(B), seq=8)  # id acme.gw-0002
    with broker.consumer() as consumer, device_session(broker, identity) as dev:
        publish_and_wait(dev, batch_topic(identity), forged)
        publish_and_wait(dev, batch_topic(identity), b"\x00not a batch")
        [ack] = dev.wait_for(1)
        consumer.wait_until(lambda c: len(c.rejected) == 2, what="2 rejections")
        rejected = consumer.rejected
        assert consumer.batches == [] and consumer.events == []
        assert dev.take() == [ack]  # an undecodable batch has no (epoch, seq) to ack
    assert cbor2.loads(ack.payload) == {"v": 1, "epoch": EPOCH, "seq": 8,
                                        "status": "rejected", "reason": "identity-mismatch"}
    assert list(cbor2.loads(ack.payload)) == ["v", "epoch", "seq", "status", "reason"]
    assert rejected[0] == (identity, EPOCH, 8, "identity-mismatch")
    assert rejected[1].identity == identity and rejected[1].seq is None
    assert rejected[1].reason == "not-zstd"


def test_dropped_acks_then_resend_gets_duplicate(tls_broker_module, floe_bin, tmp_path):
    broker = tls_broker_module
    identity = "acme.gw-0005"
    frame = encode(floe_bin, tmp_path, rows_for(identity), seq=4)
    with broker.consumer() as consumer, device_session(broker, identity) as dev:
        consumer.drop_acks(count=1)
        publish_and_wait(dev, batch_topic(identity), frame)
        consumer.wait_until(lambda c: c.acks_dropped == 1, what="a dropped ack")
        assert consumer.batches == [(identity, EPOCH, 4)]
        publish_and_wait(dev, batch_topic(identity), frame)  # the agent's resend
        [ack] = dev.wait_for(1)
        assert cbor2.loads(ack.payload)["status"] == "duplicate"
        assert consumer.duplicates == 1 and len(consumer.events) == len(rows_for(identity))


def test_paused_consumer_holds_batches_then_commits_in_order(tls_broker_module, floe_bin,
                                                             tmp_path):
    broker = tls_broker_module
    identity = "acme.gw-0006"
    frames = [encode(floe_bin, tmp_path, rows_for(identity, seed=s), seq=s) for s in (1, 2)]
    with broker.consumer() as consumer, device_session(broker, identity) as dev:
        consumer.pause()
        for f in frames:
            publish_and_wait(dev, batch_topic(identity), f)
        consumer.wait_until(lambda c: c.held == 2, what="2 held batches")
        assert consumer.batches == [] and consumer.acks == [] and dev.take() == []
        consumer.resume()
        acks = [cbor2.loads(m.payload) for m in dev.wait_for(2)]
        assert [(a["seq"], a["status"]) for a in acks] == [(1, "ok"), (2, "ok")]
        assert consumer.batches == [(identity, EPOCH, 1), (identity, EPOCH, 2)]


# -- ACLs -----------------------------------------------------------------------------------


@pytest.mark.parametrize("topic,allowed", [
    (batch_topic(A), True),
    (f"floe/v1/{A}/status", True),
    (batch_topic(B), False),  # another device's batches
    (f"floe/v1/{B}/status", False),
    (ack_topic(A), False),  # forging its own acks
    ("floe/v1/acme/batch", False),
])
def test_device_publish_acl_v5_reason_code(tls_broker_module, tmp_path, topic, allowed):
    rc = mosquitto_pub(tls_broker_module, tls_broker_module.device(A), topic, b"x", tmp_path)
    # 0x10 "no matching subscribers" is a success code too
    assert (rc in (0x00, 0x10)) if allowed else (rc == NOT_AUTHORIZED), rc


def test_denied_publish_is_not_delivered(tls_broker_module, floe_bin, tmp_path):
    broker = tls_broker_module
    dev = broker.device(A)
    forged = encode(floe_bin, tmp_path, rows_for(B), seq=1)
    own = encode(floe_bin, tmp_path, rows_for(A), seq=2)
    with broker.consumer() as consumer:
        assert mosquitto_pub(broker, dev, batch_topic(B), forged, tmp_path) == NOT_AUTHORIZED
        assert mosquitto_pub(broker, dev, batch_topic(A), own, tmp_path) == 0x00
        # A's messages are handled in order: had the first got through, it came first
        consumer.wait_for_batches(1)
        assert consumer.received == 1 and consumer.batches == [(A, EPOCH, 2)]


def test_device_receives_only_its_own_acks(tls_broker_module):
    """mosquitto 2.0 grants any SUBSCRIBE and applies read ACLs per message: a device
    subscribed to everything still gets only its own ack topic."""
    broker = tls_broker_module
    with floe_mqtt.Subscriber(broker.host, broker.port, "floe/v1/#",
                              tls=broker.device(A).tls) as dev:
        with floe_mqtt.Publisher(broker.host, broker.plain_port) as local:
            for topic in (ack_topic(B), batch_topic(B), batch_topic(A),
                          f"floe/v1/{B}/status", ack_topic(A)):
                local.publish(topic, topic.encode())
        # one publisher, one subscriber: anything let through came before A's ack
        [msg] = dev.wait_for(1)
        assert msg.topic == ack_topic(A)
        assert dev.take() == [msg]


def test_retained_status_reaches_the_service_identity(tls_broker_module, tmp_path):
    broker = tls_broker_module
    status = b'{"state":"ok"}'
    assert mosquitto_pub(broker, broker.device(A), f"floe/v1/{A}/status", status, tmp_path,
                         retain=True) in (0x00, 0x10)
    with floe_mqtt.Subscriber(broker.host, broker.port, "floe/v1/+/status",
                              tls=broker.service.tls) as svc:
        [msg] = svc.wait_for(1)
    assert msg.topic == f"floe/v1/{A}/status" and msg.payload == status and msg.retain


# -- who may connect ------------------------------------------------------------------------


@pytest.mark.parametrize("client_id", [b"", B.encode()])
def test_valid_device_connects_with_its_cn_as_client_id(tls_broker_module, client_id):
    broker = tls_broker_module
    since = len(broker.log_text())
    version, rc = mqtt_connect(broker, broker.device(A), client_id=client_id)
    assert rc == 0 and version in ("TLSv1.2", "TLSv1.3")
    # whatever id the client asked for, the CN is username and client id
    wait_log(broker, f"as {A} (p5, c1, k10, u'{A}')", since)
    assert f"as {B}" not in broker.log_text()[since:]


def assert_refused(broker, creds, alert, log="certificate verify failed"):
    """TLS 1.2 verifies the client during the handshake, so the client reads the broker's
    alert; with TLS 1.3 the alert races the client's first write (EOF or reset instead):
    then the broker's log tells why."""
    tls12 = ssl.TLSVersion.TLSv1_2
    with pytest.raises(ssl.SSLError, match=alert):
        mqtt_connect(broker, creds, tls_max=tls12)
    since = len(broker.log_text())
    with pytest.raises((ssl.SSLError, OSError)):
        mqtt_connect(broker, creds)
    wait_log(broker, log, since)


def test_revoked_certificate_is_refused(tls_broker, tmp_path):
    old = tls_broker.device(A)
    assert mqtt_connect(tls_broker, old)[1] == 0
    with device_session(tls_broker, A) as live:
        assert tls_broker.revoke(A) == [old.serial]
        assert_refused(tls_broker, old, "alert certificate revoked")
        # the CRL names only A's certificate; an open session is not cut (documented in
        # agent-mqtt-enrollment.md §3.2: revocation needs a kick as well)
        assert mqtt_connect(tls_broker, tls_broker.device(B))[1] == 0
        assert live.connected
    new = tls_broker.device(A)  # a new certificate for the same identity
    assert new.serial != old.serial and mqtt_connect(tls_broker, new)[1] == 0
    # and across a restart the broker reads the same CRL
    tls_broker.restart()
    assert_refused(tls_broker, old, "alert certificate revoked")


def test_expired_certificate_is_refused(tls_broker_module):
    broker = tls_broker_module
    assert mqtt_connect(broker, broker.device("acme.gw-0010"))[1] == 0
    assert_refused(broker, broker.device("acme.gw-0010", validity="expired"),
                   "alert certificate expired")


def test_not_yet_valid_certificate_is_refused(tls_broker_module):
    broker = tls_broker_module
    assert mqtt_connect(broker, broker.device("acme.gw-0011"))[1] == 0
    # OpenSSL maps "not yet valid" to the generic bad_certificate alert
    assert_refused(broker, broker.device("acme.gw-0011", validity="future"),
                   "alert bad certificate")


def test_tls11_client_is_refused(tls_broker_module):
    broker = tls_broker_module
    dev = broker.device(A)
    tls12 = ssl.TLSVersion.TLSv1_2
    assert mqtt_connect(broker, dev, tls_min=tls12, tls_max=tls12) == ("TLSv1.2", 0)
    since = len(broker.log_text())
    tls11 = ssl.TLSVersion.TLSv1_1
    with pytest.raises(ssl.SSLError, match="alert protocol version"):
        mqtt_connect(broker, dev, tls_min=tls11, tls_max=tls11)
    wait_log(broker, "unsupported protocol", since)  # the hello reached the broker


def test_client_without_certificate_is_refused(tls_broker_module):
    broker = tls_broker_module
    assert_refused(broker, None, "alert handshake failure",
                   log="peer did not return a certificate")


def test_plain_listener_is_anonymous_and_unrestricted(tls_broker_module):
    broker = tls_broker_module
    with floe_mqtt.Subscriber(broker.host, broker.plain_port, "floe/v1/+/batch") as sub:
        floe_mqtt.publish(broker.host, broker.plain_port, batch_topic(B), b"local")
        assert sub.wait_for(1)[0].payload == b"local"


def test_consumer_resubscribes_after_broker_restart(tls_broker, consumer, floe_bin, tmp_path):
    port = tls_broker.port
    frame = encode(floe_bin, tmp_path, rows_for(A), seq=1)
    tls_broker.restart()
    assert tls_broker.port == port
    consumer.wait_until(lambda c: c.connects == 2, what="a reconnect")
    consumer.wait_subscribed()
    assert mosquitto_pub(tls_broker, tls_broker.device(A), batch_topic(A), frame,
                         tmp_path) == 0x00
    assert consumer.wait_for_batches(1) == [(A, EPOCH, 1)]


def openssl_text(*args):
    return subprocess.run(["openssl", *args], capture_output=True, text=True, check=True,
                          timeout=30).stdout


def test_pki_certificates(tls_broker_module):
    broker = tls_broker_module
    pki = broker.pki
    dev = broker.device("acme.gw-0020")
    assert broker.device("acme.gw-0020") == dev  # reused, not reissued
    with pytest.raises(ValueError):
        broker.device("acme/gw+1")
    for key in (dev.key, broker.service.key, pki.server_key, pki.int_key, pki.root_key):
        assert os.stat(key).st_mode & 0o777 == 0o600, key
    leaf = open(dev.leaf).read()
    assert open(dev.cert).read() == leaf + open(pki.int_cert).read()
    text = openssl_text("x509", "-noout", "-text", "-in", dev.leaf)
    assert "Subject: CN = acme.gw-0020, O = acme" in text
    assert "Issuer: CN = floe test device CA" in text
    assert "TLS Web Client Authentication" in text and "CA:FALSE" in text
    assert "CA:TRUE, pathlen:0" in openssl_text("x509", "-noout", "-text", "-in", pki.int_cert)
    srv = openssl_text("x509", "-noout", "-text", "-in", pki.server_cert)
    assert "DNS:localhost, IP Address:127.0.0.1" in srv and "TLS Web Server Authentication" in srv
    assert "Subject: CN = floe-uploader" in openssl_text("x509", "-noout", "-text", "-in",
                                                         broker.service.leaf)
    # chains verify against the broker's trust (root + intermediate) and CRL
    ok = subprocess.run(["openssl", "verify", "-CAfile", pki.broker_cafile, "-crl_check",
                         "-CRLfile", pki.crl, "-purpose", "sslclient", dev.leaf],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
