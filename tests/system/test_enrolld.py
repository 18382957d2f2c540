"""floe-enrolld against a real mosquitto started from `floe-ca broker-config` and a real
floe-ca PKI (docs/enrollment.md): devices enroll by claim, connect with the certificate they
got and publish; every refusal comes back with its reason; retries are idempotent; devices
renew over their own connection; two daemons share the subscription; no key material is
ever logged. Independent checks of certificates use the openssl CLI.
"""

import json
import os
import re
import signal
import socket
import ssl
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cbor2
import pytest

import floe_mqtt
from enroll_client import Credentials, Env, csr_der, make_csr
from test_floe_ca import ext_value, tls_connect

DEVICES = int(os.environ.get("FLOE_ENROLL_DEVICES", "50"))
CLAIM_RATE = 20
@pytest.fixture(scope="module")
def env(tmp_path_factory):
    bindir = os.environ.get("FLOE_BIN")
    if not bindir:
        pytest.skip("FLOE_BIN is not set: run through `make system`")
    for b in ("floe-ca", "floe-enrolld"):
        if not os.access(Path(bindir) / b, os.X_OK):
            pytest.fail(f"{b} not built in {bindir}", pytrace=False)
    e = Env(bindir, tmp_path_factory.mktemp("enrolld"),
            defaults={"limits__claim_rate": CLAIM_RATE, "limits__renew_rate": 6,
                      "enrolld__validity": "30d"})
    e.daemon = e.enrolld().start()
    try:
        yield e
    finally:
        e.daemon.stop()
        e.broker.stop()


def ok(res):
    assert res["status"] == "ok", res
    return res


def refused(res, reason):
    assert res["status"] == "error" and res["reason"] == reason, res
    assert res["message"]
    assert "certificate" not in res
    return res


def subject(cert_pem):
    r = subprocess.run(["openssl", "x509", "-noout", "-subject", "-nameopt", "RFC2253"],
                       input=cert_pem, capture_output=True, text=True, timeout=30)
    return r.stdout.strip().removeprefix("subject=")


def verify_device(env, chain_path):
    r = subprocess.run(["openssl", "verify", "-CAfile", str(env.root), "-untrusted",
                        str(chain_path), "-purpose", "sslclient", str(chain_path)],
                       capture_output=True, text=True, timeout=30)
    return r.returncode == 0


def pubkey(path_or_pem, kind):
    if kind == "key":
        args, data = ["openssl", "pkey", "-pubout", "-in", str(path_or_pem)], None
    else:
        args, data = ["openssl", "x509", "-noout", "-pubkey"], path_or_pem
    return subprocess.run(args, input=data, capture_output=True, text=True,
                          timeout=30).stdout


# -- the happy path ------------------------------------------------------------------------


def test_batch_enrolls_connects_and_publishes(env):
    per_claim = 10
    n_claims = max(1, (DEVICES + per_claim - 1) // per_claim)
    plan = []  # (claim creds, [(identity, token or None)])
    for c in range(n_claims):
        idents = [f"acme.gw-{c:02d}{i:02d}" for i in range(per_claim)
                  if c * per_claim + i < DEVICES]
        if c % 2 == 0:  # one-time tokens bound to each identity
            creds, tokens = env.claim(f"batch-{c}", tokens_for=idents)
            plan.append((f"claim-batch-{c}", creds, [(i, tokens[i]) for i in idents]))
        else:  # an allowlist
            creds, _ = env.claim(f"batch-{c}", allow=idents)
            plan.append((f"claim-batch-{c}", creds, [(i, None) for i in idents]))
    keys = {}

    def mkcsr(ident):
        keys[ident] = make_csr(env.keys, ident, subject=f"/CN={ident}")

    with ThreadPoolExecutor(8) as ex:
        list(ex.map(mkcsr, [i for _, _, ids in plan for i, _ in ids]))

    def enroll(entry):
        claim_id, creds, idents = entry
        results = {}
        with env.client(creds, claim_id) as c:
            pending = []
            for n, (ident, token) in enumerate(idents):
                body = {"identity": ident, "csr": keys[ident][1]}
                if token:
                    body["token"] = token
                fmt = "cbor" if n % 2 else "json"
                if fmt == "cbor" and n % 4 == 1:
                    body["csr"] = csr_der(body["csr"])  # DER in a CBOR byte string
                pending.append((ident, fmt, c.send(body, fmt=fmt)))
            for ident, fmt, corr in pending:
                res = c.wait(corr)
                assert res["_ctype"] == f"application/{fmt}"
                results[ident] = res
        return results

    t0 = time.monotonic()
    with ThreadPoolExecutor(len(plan)) as ex:
        results = {k: v for r in ex.map(enroll, plan) for k, v in r.items()}
    took = time.monotonic() - t0
    assert len(results) == DEVICES
    creds = {}
    for ident, res in results.items():
        ok(res)
        assert res["identity"] == ident and res["replay"] is False
        assert subject(res["certificate"]) == f"CN={ident},O=acme"
        key_path = keys[ident][0]
        assert pubkey(key_path, "key") == pubkey(res["certificate"], "cert")
        creds[ident] = env.device(res, key_path, ident)
        assert verify_device(env, creds[ident].cert), ident
    assert len({r["serial"] for r in results.values()}) == DEVICES
    # every device connects with what it got and publishes its batch to the uploader
    up_key, _, up_chain = env.ca.issued("floe-uploader")
    uploader = Credentials(up_chain, up_key, env.root)
    with floe_mqtt.Subscriber("127.0.0.1", env.broker.service_port,
                              "$share/floe/floe/v1/+/batch", tls=uploader.tls) as sub:
        def publish(ident):
            with floe_mqtt.Publisher("127.0.0.1", env.broker.device_port,
                                     tls=creds[ident].tls) as pub:
                pub.publish(f"floe/v1/{ident}/batch", ident.encode())

        with ThreadPoolExecutor(8) as ex:
            list(ex.map(publish, sorted(creds)))
        msgs = sub.wait_for(DEVICES, timeout=30)
    assert sorted(m.topic for m in msgs) == sorted(f"floe/v1/{i}/batch" for i in creds)
    assert all(m.payload == m.topic.split("/")[2].encode() for m in msgs)
    print(f"{DEVICES} devices enrolled in {took:.2f}s")


def test_issued_certificate_profile(env):
    creds, _ = env.claim("profile", allow=["acme.profile-1"])
    key, csr = make_csr(env.keys, "profile-1")
    with env.client(creds, "claim-profile") as c:
        t = time.time()
        res = ok(c.request({"identity": "acme.profile-1", "csr": csr}))
    assert res["_topic"].startswith("floe/enroll/v1/claim-profile/res/")
    text = cert_text_pem(res["certificate"])
    assert "Issuer: O = floe, CN = floe device CA" in text
    assert ext_value(text, "X509v3 Basic Constraints: critical") == "CA:FALSE"
    assert ext_value(text, "X509v3 Key Usage: critical") == "Digital Signature"
    assert ext_value(text, "X509v3 Extended Key Usage") == "TLS Web Client Authentication"
    assert ext_value(text, "X509v3 Subject Alternative Name") == \
        "URI:urn:floe:device:acme.profile-1"
    serial = re.search(r"Serial Number:\s*\n?\s*([0-9a-f:]+)", text).group(1).replace(":", "")
    assert serial.upper().lstrip("0") == res["serial"].lstrip("0")
    assert len(res["serial"]) >= 30  # 128 random bits
    nb = time.mktime(time.strptime(res["not_before"], "%Y-%m-%dT%H:%M:%SZ"))
    na = time.mktime(time.strptime(res["not_after"], "%Y-%m-%dT%H:%M:%SZ"))
    now = time.mktime(time.gmtime(t))
    assert 240 <= now - nb <= 420  # backdated 5 minutes for clock skew
    assert abs(na - now - 30 * 86400) <= 60  # [enrolld] validity = 30d
    # the chain is the device CA, not the root (the device pins the root)
    assert res["chain"] == env.ca.path("device", "ca.pem").read_text()
    rows = env.ca.list_json("--identity", "acme.profile-1")
    assert [(r["kind"], r["issuer"], r["serial"], r["status"]) for r in rows] == \
        [("device", "device", res["serial"], "valid")]


def cert_text_pem(pem):
    return subprocess.run(["openssl", "x509", "-noout", "-text"], input=pem,
                          capture_output=True, text=True, timeout=30).stdout


def test_idempotent_retry_returns_the_same_certificate(env):
    creds, tokens = env.claim("retry", tokens_for=["acme.retry-1"])
    key, csr = make_csr(env.keys, "retry-1")
    body = {"identity": "acme.retry-1", "csr": csr, "token": tokens["acme.retry-1"]}
    with env.client(creds, "claim-retry") as c:
        first = ok(c.request(body))
        again = ok(c.request(body, fmt="cbor"))
        assert again["serial"] == first["serial"] and again["replay"] is True
        assert again["certificate"] == first["certificate"]
        # the token was burned once: another key cannot use it
        _, other = make_csr(env.keys, "retry-1b")
        refused(c.request(dict(body, csr=other)), "token-used")
    assert len(env.ca.list_json("--identity", "acme.retry-1")) == 1


# -- refusals ---------------------------------------------------------------------------------


def test_not_entitled(env):
    creds, _ = env.claim("entitle", allow=["acme.ent-1"])
    _, csr = make_csr(env.keys, "ent")
    with env.client(creds, "claim-entitle") as c:
        refused(c.request({"identity": "acme.ent-2", "csr": csr}), "not-entitled")
        # an unknown token, and a token of another claim
        refused(c.request({"identity": "acme.ent-2", "csr": csr,
                           "token": "floe-et1-" + "0" * 32}), "not-entitled")
        _, other = env.claim("entitle-other", tokens_for=["acme.ent-3"])
        refused(c.request({"identity": "acme.ent-3", "csr": csr,
                           "token": other["acme.ent-3"]}), "not-entitled")
        # another tenant: outside the claim
        refused(c.request({"identity": "other.ent-1", "csr": csr}), "not-entitled")
        # the allowlisted one is fine, once per key
        ok(c.request({"identity": "acme.ent-1", "csr": csr}))
        _, csr2 = make_csr(env.keys, "ent-b")
        refused(c.request({"identity": "acme.ent-1", "csr": csr2}), "already-enrolled")
    assert env.ca.list_json("--identity", "acme.ent-2") == []


def test_token_reused_for_another_identity(env):
    creds, tokens = env.claim("tok", extra=["--tokens", "1"])
    [token] = tokens.values()  # valid for any identity of the tenant
    _, csr = make_csr(env.keys, "tok")
    with env.client(creds, "claim-tok") as c:
        ok(c.request({"identity": "acme.tok-1", "csr": csr, "token": token}))
        refused(c.request({"identity": "acme.tok-2", "csr": csr, "token": token}),
                "token-used")
        refused(c.request({"identity": "acme.tok-2", "csr": csr, "token": "bad"}),
                "not-entitled")
    assert env.ca.list_json("--identity", "acme.tok-2") == []


BAD_IDENTITIES = [
    "acme.gw/1", "acme.gw+1", "acme.#", "acme.gw\x00x", "Acme.gw-1", "acme.GW-1",
    "acme." + "a" * 64, "a" * 64 + ".gw", "acme.gw-1.x", "acme", "acme.", ".gw", "acme.gw 1",
    "claim-x", "acme.gw-1\n", "ácme.gw",
]


@pytest.mark.parametrize("fmt", ["json", "cbor"])
def test_identity_injection_is_refused(env, fmt):
    creds, _ = env.claim(f"inject-{fmt}", allow=["acme.inject-ok"], extra=["--reusable"])
    _, csr = make_csr(env.keys, f"inject-{fmt}", subject="/CN=acme.gw\\/1/O=evil")
    with env.client(creds, f"claim-inject-{fmt}") as c:
        for ident in BAD_IDENTITIES:
            res = refused(c.request({"identity": ident, "csr": csr}, fmt=fmt), "bad-identity")
            assert ident not in res["message"] or ident == "claim-x"
        # the CSR's own subject (with a '/' in CN, another O) is ignored: registry names only
        res = ok(c.request({"identity": "acme.inject-ok", "csr": csr}, fmt=fmt))
        assert subject(res["certificate"]) == "CN=acme.inject-ok,O=acme"
    issued = {r["identity"] for r in env.ca.list_json("--kind", "device")}
    assert issued.isdisjoint(BAD_IDENTITIES)


def test_csr_extensions_are_never_copied(env):
    creds, _ = env.claim("ext", allow=["acme.ext-1", "acme.ext-2"])
    with env.client(creds, "claim-ext") as c:
        _, ca_csr = make_csr(env.keys, "ext-ca", exts=["basicConstraints=critical,CA:TRUE"])
        res = refused(c.request({"identity": "acme.ext-1", "csr": ca_csr}), "bad-csr")
        assert "CA:TRUE" in res["message"]
        # other requested extensions: signed, but none of them is in the certificate
        _, csr = make_csr(env.keys, "ext-other", exts=[
            "subjectAltName=DNS:evil.example.com,URI:urn:floe:device:acme.victim",
            "extendedKeyUsage=serverAuth,codeSigning", "keyUsage=keyCertSign,cRLSign",
            "basicConstraints=CA:FALSE,pathlen:0"])
        res = ok(c.request({"identity": "acme.ext-2", "csr": csr}))
    text = cert_text_pem(res["certificate"])
    assert ext_value(text, "X509v3 Basic Constraints: critical") == "CA:FALSE"
    assert ext_value(text, "X509v3 Extended Key Usage") == "TLS Web Client Authentication"
    assert ext_value(text, "X509v3 Key Usage: critical") == "Digital Signature"
    assert ext_value(text, "X509v3 Subject Alternative Name") == \
        "URI:urn:floe:device:acme.ext-2"
    assert "evil" not in text and "victim" not in text and "Code Signing" not in text
    assert env.ca.list_json("--identity", "acme.ext-1") == []


KEYS = [
    ("rsa1024", "weak-key"), ("rsa2048", "weak-key"), ("p192", "weak-key"),
    ("ed25519", "unsupported-key"), ("secp256k1", "unsupported-key"),
    ("p521", "unsupported-key"), ("p384", "ok"), ("rsa3072", "ok"),
]


def test_key_types_and_sizes(env):
    idents = [f"acme.key-{k}" for k, _ in KEYS]
    creds, _ = env.claim("keys", allow=idents)
    with env.client(creds, "claim-keys") as c:
        for (key, want), ident in zip(KEYS, idents):
            _, csr = make_csr(env.keys, f"key-{key}", key=key)
            res = c.request({"identity": ident, "csr": csr})
            if want == "ok":
                ok(res)
                assert ("P-384" if key == "p384" else "3072 bit") in cert_text_pem(
                    res["certificate"])
            else:
                refused(res, want)
                assert env.ca.list_json("--identity", ident) == []
        # a refused key did not use the entitlement: a good key still enrolls
        _, good = make_csr(env.keys, "key-good")
        ok(c.request({"identity": "acme.key-rsa1024", "csr": good}))


def test_bad_csrs(env):
    creds, _ = env.claim("badcsr", allow=["acme.badcsr-1"])
    _, csr = make_csr(env.keys, "badcsr")
    der = bytearray(csr_der(csr))
    der[-5] ^= 0x55  # inside the signature: no proof of possession
    _, sha1 = make_csr(env.keys, "badcsr-sha1", digest="sha1")
    cert_pem = env.root.read_text()
    with env.client(creds, "claim-badcsr") as c:
        cases = [
            ({"identity": "acme.badcsr-1", "csr": bytes(der)}, "cbor", "signature"),
            ({"identity": "acme.badcsr-1", "csr": "not a csr"}, "json", "PKCS#10"),
            ({"identity": "acme.badcsr-1", "csr": cert_pem}, "json", "PKCS#10"),
            ({"identity": "acme.badcsr-1", "csr": sha1}, "json", "SHA1"),
            ({"identity": "acme.badcsr-1", "csr": b"\x30\x03\x02\x01\x00"}, "cbor", "DER"),
            ({"identity": "acme.badcsr-1", "csr": csr + "\x00"}, "json", "NUL"),
        ]
        for body, fmt, why in cases:
            res = refused(c.request(body, fmt=fmt), "bad-csr")
            assert why in res["message"], res
        ok(c.request({"identity": "acme.badcsr-1", "csr": csr}))


def test_bad_requests(env):
    creds, _ = env.claim("badreq", allow=["acme.badreq-1"])
    _, csr = make_csr(env.keys, "badreq")
    with env.client(creds, "claim-badreq") as c:
        cases = [
            (b"{", "JSON"), (b"[1,2]", "neither"), (b"\xa1\x61", "CBOR"),
            (b"", "empty"), (json.dumps({"identity": "acme.badreq-1"}).encode(), "csr"),
            (json.dumps({"csr": csr}).encode(), "identity"),
            (json.dumps({"identity": 5, "csr": csr}).encode(), "identity"),
            (json.dumps({"v": 2, "identity": "acme.badreq-1", "csr": csr}).encode(), "version"),
            (b'{"identity":"acme.badreq-1","identity":"acme.badreq-1","csr":"x"}', "JSON"),
            (cbor2.dumps({"identity": "acme.badreq-1", "csr": csr, "csr": csr}) + b"\x00",
             "after"),
            (cbor2.dumps({"identity": "acme.badreq-1", "csr": 7}), "csr"),
            (cbor2.dumps({f"k{i}": i for i in range(17)}), "keys"),
            (b"x" * (17 * 1024), "larger"),
            (json.dumps({"identity": "acme.badreq-1", "csr": csr, "pad": "x" * 20000}).encode(),
             "larger"),
        ]
        for payload, why in cases:
            res = refused(c.wait(c.raw(payload)), "bad-request")
            assert why in res["message"], (payload[:40], res)
        # unknown keys are ignored
        ok(c.request({"identity": "acme.badreq-1", "csr": csr, "nonce": "n1", "x": [1, 2]}))


def test_requests_without_a_usable_response_topic_are_dropped(env):
    creds, _ = env.claim("drop", allow=["acme.drop-1"])
    other, _ = env.claim("drop-other")
    _, csr = make_csr(env.keys, "drop")
    body = json.dumps({"identity": "acme.drop-1", "csr": csr}).encode()
    before = env.daemon.log_text().count("ignored a message")
    with env.client(other, "claim-drop-other") as victim, env.client(creds, "claim-drop") as c:
        corrs = [
            c.raw(body, response_topic=False),
            c.raw(body, response_topic="floe/enroll/v1/claim-drop-other/res/x"),
            c.raw(body, response_topic="floe/enroll/v1/claim-drop/res/a/b"),
            c.raw(body, response_topic="floe/enroll/v1/claim-drop/res/+"),
            c.raw(body, response_topic="floe/enroll/v1/claim-drop/resx"),
            c.raw(body, corr=b"c" * 300),
        ]
        env.daemon.wait_log("ignored a message", count=before + len(corrs))
        # the next request is answered: nothing above was
        res = ok(c.request({"identity": "acme.drop-1", "csr": csr}))
        assert res["replay"] is False
        time.sleep(0.3)
        assert all(c.answered(x) == 0 for x in corrs)
        assert victim.answers == {}


def test_correlation_data_is_optional_and_echoed(env):
    creds, _ = env.claim("corr", allow=["acme.corr-1"])
    _, csr = make_csr(env.keys, "corr")
    with env.client(creds, "claim-corr") as c:
        corr = c.raw(json.dumps({"identity": "acme.corr-1", "csr": "x"}).encode())
        refused(c.wait(corr), "bad-csr")
        c.raw(json.dumps({"identity": "acme.corr-1", "csr": csr}).encode(), corr=False,
              response_topic="floe/enroll/v1/claim-corr/res/no-corr")
        ok(c.wait(None))
        [(topic, _, _, props)] = c.answers[None]
        assert topic == "floe/enroll/v1/claim-corr/res/no-corr"
        assert props.MessageExpiryInterval <= 300


def test_revoked_claim_is_refused(env):
    creds, _ = env.claim("revoked", allow=["acme.revoked-1", "acme.revoked-2"])
    _, csr = make_csr(env.keys, "revoked")
    with env.client(creds, "claim-revoked") as c:
        ok(c.request({"identity": "acme.revoked-1", "csr": csr}))
        # revoked in the registry; the broker has not reloaded its CRL yet
        env.ca.run("revoke", "--identity", "claim-revoked", "--reason", "keyCompromise")
        res = refused(c.request({"identity": "acme.revoked-2", "csr": csr}), "claim-revoked")
        assert "revoked" in res["message"]
        # and its earlier enrollment is not handed out again either
        refused(c.request({"identity": "acme.revoked-1", "csr": csr}), "claim-revoked")
    # after the CRL reaches the broker the claim cannot even connect
    env.ca.run("crl", "--ca", "claim", "--out", env.out)
    env.broker.reload()
    with pytest.raises(ssl.SSLError, match="certificate revoked"):
        tls_connect(env.broker.claim_port, creds)


def test_rate_limit_per_claim(env):
    creds, _ = env.claim("rate", allow=["acme.rate-1"])
    other, _ = env.claim("rate-other", allow=["acme.rate-2"])
    _, csr = make_csr(env.keys, "rate")
    body = {"identity": "acme.rate-1", "csr": csr}
    with env.client(creds, "claim-rate") as c:
        corrs = [c.send(body) for _ in range(CLAIM_RATE + 3)]
        answers = [c.wait(x) for x in corrs]
    assert [a["status"] for a in answers[:CLAIM_RATE]] == ["ok"] * CLAIM_RATE
    assert len({a["serial"] for a in answers[:CLAIM_RATE]}) == 1
    for a in answers[CLAIM_RATE:]:
        refused(a, "rate-limited")
        assert 0 < a["retry_after"] <= 3600
    # per claim: another claim is not affected
    with env.client(other, "claim-rate-other") as c:
        ok(c.request({"identity": "acme.rate-2", "csr": csr}))


# -- renewal -----------------------------------------------------------------------------------


def enroll_one(env, name, ident):
    creds, _ = env.claim(name, allow=[ident])
    key, csr = make_csr(env.keys, ident)
    with env.client(creds, f"claim-{name}") as c:
        res = ok(c.request({"identity": ident, "csr": csr}))
    return env.device(res, key, ident), res


def test_renewal_over_the_device_connection(env):
    ident = "acme.renew-1"
    dev, first = enroll_one(env, "renew", ident)
    key2, csr2 = make_csr(env.keys, "renew-1-new", subject="/CN=acme.someone-else")
    with env.client(dev, ident, device=True) as c:
        res = ok(c.request({"csr": csr2}, fmt="cbor"))
        assert res["_topic"].startswith(f"floe/enroll/v1/{ident}/res/")
        assert res["identity"] == ident and res["serial"] != first["serial"]
        assert subject(res["certificate"]) == f"CN={ident},O=acme"
        # a retry of the renewal: the same certificate again
        again = ok(c.request({"identity": ident, "csr": csr2}))
        assert again["serial"] == res["serial"] and again["replay"] is True
        # a renewal is for the connected identity only
        refused(c.request({"identity": "acme.renew-2", "csr": csr2}), "bad-identity")
        # the same key as the current certificate, long after it was issued: renewed anyway
        # (renew_replay is 10 minutes by default; this daemon issued it seconds ago)
    new = env.device(res, key2, "renew-1-new")
    assert verify_device(env, new.cert)
    # both certificates are valid until the old one expires; the new one connects
    with floe_mqtt.Publisher("127.0.0.1", env.broker.device_port, tls=new.tls) as pub:
        pub.publish(f"floe/v1/{ident}/batch", b"after renewal")
    statuses = sorted((r["serial"], r["status"]) for r in env.ca.list_json("--identity", ident))
    assert statuses == sorted([(first["serial"], "valid"), (res["serial"], "valid")])


def test_renewal_needs_a_valid_certificate_in_the_registry(env):
    ident = "acme.renew-rev"
    dev, _ = enroll_one(env, "renew-rev", ident)
    _, csr = make_csr(env.keys, "renew-rev-new")
    with env.client(dev, ident, device=True) as c:
        # revoked, but the broker has not reloaded: the live session must not renew
        env.ca.run("revoke", "--identity", ident)
        refused(c.request({"csr": csr}), "not-entitled")
    assert all(r["status"] == "revoked" for r in env.ca.list_json("--identity", ident))


def test_renewal_rate_limit(env):
    ident = "acme.renew-rate"
    dev, _ = enroll_one(env, "renew-rate", ident)
    with env.client(dev, ident, device=True) as c:
        answers = []
        for i in range(8):
            _, csr = make_csr(env.keys, f"renew-rate-{i}")
            answers.append(c.request({"csr": csr}))
    assert [a["status"] for a in answers[:6]] == ["ok"] * 6
    for a in answers[6:]:
        refused(a, "rate-limited")


def test_a_claim_cannot_renew_and_a_device_cannot_enroll_others(env):
    """The broker's ACLs make the topic's id the publisher's CN: checked end to end."""
    ident = "acme.acl-1"
    dev, _ = enroll_one(env, "acl", ident)
    creds, _ = env.claim("acl-2", allow=["acme.acl-2"])
    _, csr = make_csr(env.keys, "acl")
    with env.client(creds, "claim-acl-2") as c:
        corr = c.send({"csr": csr}, topic=f"floe/enroll/v1/{ident}/req",
                      response_topic="floe/enroll/v1/claim-acl-2/res/x")
        time.sleep(0.5)
        assert c.answered(corr) == 0
    with env.client(dev, ident, device=True) as c:
        corr = c.send({"identity": "acme.acl-2", "csr": csr},
                      topic="floe/enroll/v1/claim-acl-2/req",
                      response_topic=f"floe/enroll/v1/{ident}/res/x")
        time.sleep(0.5)
        assert c.answered(corr) == 0
    assert env.ca.list_json("--identity", "acme.acl-2") == []


# -- several daemons, signals, configuration ------------------------------------------------------


def test_two_daemons_share_the_subscription(env):
    second = env.enrolld(name="enrolld-2").start()
    try:
        n = CLAIM_RATE
        creds, _ = env.claim("shared", allow=[f"acme.shared-{i}" for i in range(n)],
                             extra=["--validity", "30d"])
        _, csr = make_csr(env.keys, "shared")
        logs = (env.daemon.log_text().count("enrolled acme.shared-"),
                second.log_text().count("enrolled acme.shared-"))
        assert logs == (0, 0)
        with env.client(creds, "claim-shared") as c:
            corrs = [c.send({"identity": f"acme.shared-{i}", "csr": csr}) for i in range(n)]
            answers = [c.wait(x) for x in corrs]
            time.sleep(0.5)
            assert all(c.answered(x) == 1 for x in corrs)  # exactly once each
        assert [a["status"] for a in answers] == ["ok"] * n
        assert len({a["serial"] for a in answers}) == n
        first_n = env.daemon.log_text().count("enrolled acme.shared-")
        second_n = second.log_text().count("enrolled acme.shared-")
        assert first_n + second_n == n and first_n > 0 and second_n > 0, (first_n, second_n)
    finally:
        assert second.stop() == 0


def test_reload_and_clean_stop(env, tmp_path):
    d = env.enrolld(name="enrolld-signals", limits__claim_rate=1)
    d.start()
    creds, _ = env.claim("reload", allow=["acme.reload-1"])
    _, csr = make_csr(env.keys, "reload")
    body = {"identity": "acme.reload-1", "csr": csr}
    env.daemon.stop()  # only d answers now
    try:
        with env.client(creds, "claim-reload") as c:
            ok(c.request(body))
            refused(c.request(body), "rate-limited")
            # SIGHUP: a new limit applies without a restart
            text = d.conf.read_text().replace("claim_rate = 1", "claim_rate = 10")
            d.conf.write_text(text)
            d.signal(signal.SIGHUP)
            d.wait_log("reload: limits and validity applied")
            d.wait_log("subscribed to", count=2)
            ok(c.request(body))
            # a retained request is answered once, and not again when the daemon
            # subscribes anew (mosquitto < 2.0.13 sends retained messages to shared
            # subscriptions: the daemon drops them)
            retained = c.send(body, retain=True)
            c.wait(retained)
            d.signal(signal.SIGHUP)
            d.wait_log("subscribed to", count=3)
            ok(c.request(body))
            assert c.answered(retained) == 1
            c.raw(b"", retain=True, response_topic=False)  # clear it
            # a broken configuration is refused and the old one kept
            d.conf.write_text(text + "[limits]\nbogus = 1\n")
            d.signal(signal.SIGHUP)
            d.wait_log("keeping the running configuration")
            ok(c.request(body))
        assert d.stop() == 0
        assert "stopped: " in d.log_text()
    finally:
        d.stop()
        env.daemon.start()


def test_sd_notify_ready_status_watchdog(env, tmp_path):
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.2)
    got = []

    def collect(until, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                got.append(sock.recv(4096).decode())
            except socket.timeout:
                pass
            if any(until in m for m in got):
                return
        raise AssertionError(f"no {until!r} in {got}")

    d = env.enrolld(name="enrolld-notify")
    try:
        d.start(env={"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "400000"})
        collect("READY=1")
        collect("WATCHDOG=1")
        collect("STATUS=connected")
        d.signal(signal.SIGHUP)
        collect("RELOADING=1")
        collect("READY=1\nSTATUS=reloaded")
        assert d.stop() == 0
        collect("STOPPING=1")
    finally:
        d.stop()
        sock.close()
    assert any(m.startswith("STATUS=connected; ") and "requests" in m for m in got), got


def test_check_config(env, tmp_path):
    binary = str(env.bindir / "floe-enrolld")
    d = env.enrolld(name="enrolld-check")
    r = subprocess.run([binary, "--check-config", "--config", str(d.conf)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "configuration valid" in r.stdout, r.stderr
    bad = tmp_path / "bad.conf"
    bad.write_text("[enrolld]\nca_dir = %s\n[limits]\nclaim_rate = many\n" % env.ca.dir)
    r = subprocess.run([binary, "--check-config", "--config", str(bad)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and f"{bad}:4" in r.stderr, r.stderr
    bad.write_text("[enrolld]\nca_dir = %s\n" % (tmp_path / "nope"))
    r = subprocess.run([binary, "--check-config", "--config", str(bad)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "nope" in r.stderr, r.stderr
    r = subprocess.run([binary, "--bogus"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2


def test_reconnects_after_a_broker_restart(env):
    creds, _ = env.claim("restart", allow=["acme.restart-1"])
    _, csr = make_csr(env.keys, "restart")
    before = env.daemon.log_text().count("subscribed to")
    env.broker.restart()
    env.daemon.wait_log("subscribed to", count=before + 1, timeout=20)
    with env.client(creds, "claim-restart") as c:
        ok(c.request({"identity": "acme.restart-1", "csr": csr}))


# -- the runbook (docs/enrollment.md) ----------------------------------------------------------


def test_runbook_revoke_a_device_and_end_its_session(env):
    ident = "acme.revoke-live"
    dev, _ = enroll_one(env, "revoke-live", ident)
    _, csr = make_csr(env.keys, "revoke-live-new")
    # one session (client id = identity): it publishes batches and asks for renewal
    with env.client(dev, ident, device=True) as c:
        def publish(payload):
            info = c.client.publish(f"floe/v1/{ident}/batch", payload, qos=1)
            info.wait_for_publish(5)
            return info.is_published()

        assert publish(b"before")
        env.ca.run("revoke", "--identity", ident, "--reason", "keyCompromise")
        env.ca.run("crl", "--ca", "device", "--out", env.out)
        env.broker.reload()
        # new connections fail; the open session survives the reload ...
        with pytest.raises(ssl.SSLError, match="certificate revoked"):
            tls_connect(env.broker.device_port, dev)
        assert publish(b"still connected")
        # ... but cannot renew
        refused(c.request({"csr": csr}), "not-entitled")
        # the documented end of the session: restart the broker (and keep paho from
        # reconnecting into the refusal in its thread)
        c.client.reconnect_delay_set(min_delay=60, max_delay=60)
        before = env.daemon.log_text().count("subscribed to")
        env.broker.restart()
        env.daemon.wait_log("subscribed to", count=before + 1, timeout=20)
        with pytest.raises(ssl.SSLError, match="certificate revoked"):
            tls_connect(env.broker.device_port, dev)
        time.sleep(0.5)
        assert not c.connected


def test_runbook_rotate_the_device_ca(env):
    """docs/enrollment.md, "Rotate the device CA", step by step."""
    old_dev, old_res = enroll_one(env, "rotate-old", "acme.rotate-old")
    d = env.ca.path("device")
    old_ca = (d / "ca.pem").read_text()
    # step 1: a new device CA from the root key; the previous one stays as device/gen-1
    r = env.ca.run("rotate", "--ca", "device")
    assert "now generation 2" in r.stdout
    assert (d / "gen-1" / "ca.pem").read_text() == old_ca != (d / "ca.pem").read_text()
    # step 2: the broker trusts both generations, with a CRL of each
    user = ["--user", "root"] if os.geteuid() == 0 else []
    env.ca.run("crl", "--ca", "device", "--out", env.out)
    env.ca.run("broker-config", "--out", env.out, "--hostname", "localhost", "--bind",
               "127.0.0.1", "--ports", f"{env.broker.device_port},{env.broker.claim_port},"
               f"{env.broker.service_port}", *user)
    bundle = (env.out / "device-ca.pem").read_text()
    assert old_ca in bundle and (d / "ca.pem").read_text() in bundle
    env.broker.reload()
    # step 3: floe-enrolld signs with the new CA after a reload
    before = env.daemon.log_text().count("subscribed to")
    reloads = env.daemon.log_text().count("device CA loaded")
    env.daemon.signal(signal.SIGHUP)
    env.daemon.wait_log("device CA loaded", count=reloads + 1)
    env.daemon.wait_log("subscribed to", count=before + 1, timeout=20)
    new_dev, new_res = enroll_one(env, "rotate-new", "acme.rotate-new")
    assert new_res["chain"] == (d / "ca.pem").read_text() != old_res["chain"]
    assert "Issuer: O = floe, CN = floe device CA 2" in cert_text_pem(new_res["certificate"])
    assert verify_device(env, new_dev.cert)
    # both generations connect and publish; the old one renews into the new CA
    for ident, creds in (("acme.rotate-old", old_dev), ("acme.rotate-new", new_dev)):
        with floe_mqtt.Publisher("127.0.0.1", env.broker.device_port, tls=creds.tls) as pub:
            pub.publish(f"floe/v1/{ident}/batch", b"x")
    key, csr = make_csr(env.keys, "rotate-old-renewed")
    with env.client(old_dev, "acme.rotate-old", device=True) as c:
        res = ok(c.request({"csr": csr}))
    renewed = env.device(res, key, "rotate-old-renewed")
    with floe_mqtt.Publisher("127.0.0.1", env.broker.device_port, tls=renewed.tls) as pub:
        pub.publish("floe/v1/acme.rotate-old/batch", b"renewed")
    assert "CN = floe device CA 2" in cert_text_pem(res["certificate"])
    # the reload put the new CA into the device listener's trust: a device sending only its
    # own certificate, without the intermediate, is accepted from either generation
    for name, leaf_pem, key_path in (("old", old_res["certificate"], old_dev.key),
                                     ("new", new_res["certificate"], new_dev.key)):
        leaf = env.keys / f"rotate-{name}.leaf.pem"
        leaf.write_text(leaf_pem)
        assert tls_connect(env.broker.device_port, Credentials(leaf, key_path, env.root)) == 0
    # revoking a certificate of the old generation: its CRL is renewed with the new one's
    env.ca.run("revoke", "--serial", old_res["serial"], "--reason", "superseded")
    r = env.ca.run("crl", "--ca", "device", "--out", env.out)
    assert "earlier generation" in r.stdout
    env.broker.reload()
    with pytest.raises(ssl.SSLError, match="certificate revoked"):
        tls_connect(env.broker.device_port, old_dev)
    for creds in (renewed, new_dev):
        assert tls_connect(env.broker.device_port, creds) == 0


# -- last: what the daemons logged over the whole module --------------------------------------


def test_no_key_material_in_logs(env):
    logs = "".join(p.read_text(errors="replace") for p in env.base.glob("enrolld*.log"))
    assert "enrolled acme.gw-" in logs  # the logs are the ones the tests wrote
    assert "runtime error" not in logs and "Sanitizer" not in logs  # make SANITIZE=1
    for marker in ("PRIVATE KEY", "CERTIFICATE REQUEST", "BEGIN CERTIFICATE", "MII"):
        assert marker not in logs, marker
    for token in env.secrets:
        assert token not in logs and token[len("floe-et1-"):] not in logs
    # nor any piece of a key or CSR the devices made
    for f in list(env.keys.glob("*.key")) + list(env.keys.glob("*.csr")):
        body = "".join(line for line in f.read_text().splitlines()
                       if not line.startswith("-----"))
        for i in range(0, len(body) - 24, 64):
            assert body[i:i + 24] not in logs, f.name
