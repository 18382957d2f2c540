"""floe-ca with the real CLI: init, issue-*, revoke, crl, list and broker-config, checked
independently with the openssl CLI and with a real mosquitto started from the generated
configuration (docs/floe-ca.md).

PUBACK reason codes (MQTT v5) come from mosquitto_pub -d; TLS refusals from a raw MQTT v5
CONNECT over Python's ssl module limited to TLS 1.2, where the broker's alert reaches the
client during the handshake.
"""

import json
import os
import re
import signal
import socket
import ssl
import stat
import struct
import subprocess
import time
from pathlib import Path

import pytest

import floe_mqtt
from conftest import Mosquitto, free_port

NOT_AUTHORIZED = 0x87  # MQTT v5 reason code 135
KEY_MARKERS = ("PRIVATE KEY", "BEGIN EC", "BEGIN RSA")


# -- the CLI --------------------------------------------------------------------------------


class FloeCA:
    """floe-ca on one CA directory; every run checks that no key material was printed."""

    def __init__(self, binary, directory):
        self.bin = binary
        self.dir = Path(directory)
        self.outputs = []

    def run(self, *args, ok=True, env=None):
        r = subprocess.run([self.bin, "--dir", str(self.dir), *map(str, args)],
                           capture_output=True, text=True, timeout=120, env=env)
        self.outputs.append(r.stdout + r.stderr)
        for marker in KEY_MARKERS:
            assert marker not in r.stdout + r.stderr, f"key material printed by {args}"
        if ok is True:
            assert r.returncode == 0, f"floe-ca {' '.join(map(str, args))}:\n{r.stderr}"
        elif ok is False:
            assert r.returncode != 0, f"floe-ca {' '.join(map(str, args))} succeeded"
        return r

    def path(self, *parts):
        return self.dir.joinpath(*parts)

    def issued(self, name, out=None):
        d = Path(out) if out else self.path("issued")
        return d / f"{name}.key", d / f"{name}.pem", d / f"{name}.chain.pem"

    def serial_of(self, cert):
        return openssl("x509", "-noout", "-serial", "-in", cert).strip().split("=", 1)[1]

    def list_json(self, *args):
        return json.loads(self.run("list", "--json", *args).stdout)


def openssl(*args, ok=True):
    r = subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True, timeout=60)
    if ok:
        assert r.returncode == 0, f"openssl {' '.join(map(str, args))}:\n{r.stdout}{r.stderr}"
        return r.stdout
    return r


def cert_text(path):
    return openssl("x509", "-noout", "-text", "-in", path)


def verify(ca, cert, untrusted=None, purpose=None, crl=None):
    args = ["verify", "-CAfile", ca]
    if untrusted:
        args += ["-untrusted", untrusted]
    if purpose:
        args += ["-purpose", purpose]
    if crl:
        args += ["-crl_check", "-CRLfile", crl]
    return openssl(*args, cert, ok=False)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def ext_value(text, name):
    """The line after an extension's header in `openssl x509 -text` output."""
    m = re.search(re.escape(name) + r"[^\n]*\n\s*([^\n]*)", text)
    assert m, f"no {name} in\n{text}"
    return m.group(1).strip()


def key_body(path):
    """The base64 body of a PEM key file, to look for it in outputs."""
    lines = Path(path).read_text().splitlines()
    return "".join(line for line in lines if not line.startswith("-----"))


@pytest.fixture(scope="module")
def floe_ca_bin():
    """floe-ca under $FLOE_BIN, for module-scoped fixtures (conftest's floe_bin is per test)."""
    bindir = os.environ.get("FLOE_BIN")
    if not bindir:
        pytest.skip("FLOE_BIN is not set: run through `make system`")
    path = Path(bindir) / "floe-ca"
    if not os.access(path, os.X_OK):
        pytest.fail(f"floe-ca not built: no executable {path}", pytrace=False)
    return str(path)


@pytest.fixture(scope="module")
def ca(floe_ca_bin, tmp_path_factory):
    c = FloeCA(floe_ca_bin, tmp_path_factory.mktemp("floe-ca") / "ca")
    c.run("init")
    return c


@pytest.fixture
def fresh_ca(floe_ca_bin, tmp_path):
    return FloeCA(floe_ca_bin, tmp_path / "ca")


# -- init ---------------------------------------------------------------------------------


CAS = ("root", "device", "server", "claim", "service")


def test_init_layout_modes_and_extensions(ca):
    assert mode(ca.dir) == 0o700
    for role in CAS:
        assert mode(ca.path(role, "ca.key")) == 0o600, role
        assert mode(ca.path(role)) == 0o700
        assert "BEGIN PRIVATE KEY" in ca.path(role, "ca.key").read_text()
    texts = {role: cert_text(ca.path(role, "ca.pem")) for role in CAS}
    root_ski = ext_value(texts["root"], "X509v3 Subject Key Identifier")
    for role, text in texts.items():
        assert f"Subject: O = floe, CN = floe {role} CA" in text
        assert "NIST CURVE: P-256" in text and "ecdsa-with-SHA256" in text
        assert ext_value(text, "X509v3 Basic Constraints: critical") == (
            "CA:TRUE, pathlen:1" if role == "root" else "CA:TRUE, pathlen:0")
        assert ext_value(text, "X509v3 Key Usage: critical") == "Certificate Sign, CRL Sign"
        ski = ext_value(text, "X509v3 Subject Key Identifier")
        assert re.fullmatch(r"([0-9A-F]{2}:){19}[0-9A-F]{2}", ski)
        serial = ca.serial_of(ca.path(role, "ca.pem"))
        assert 30 <= len(serial) <= 34 and int(serial, 16) > 0
    # intermediates: issued by the root, AKI = root SKI; EKU keeps each CA to its job
    for role in ("device", "server"):
        assert "Issuer: O = floe, CN = floe root CA" in texts[role]
        assert ext_value(texts[role], "X509v3 Authority Key Identifier") == root_ski
        assert verify(ca.path("root", "ca.pem"), ca.path(role, "ca.pem")).returncode == 0
    assert "Extended Key Usage" not in texts["root"]
    assert ext_value(texts["device"], "X509v3 Extended Key Usage") == \
        "TLS Web Client Authentication"
    assert ext_value(texts["server"], "X509v3 Extended Key Usage") == \
        "TLS Web Server Authentication"
    # claim and service CAs are anchors of their own, not under the root
    for role in ("claim", "service"):
        assert f"Issuer: O = floe, CN = floe {role} CA" in texts[role]
        assert verify(ca.path("root", "ca.pem"), ca.path(role, "ca.pem")).returncode != 0
    # root validity ~20 years, intermediates ~10, backdated by a few minutes
    nb = openssl("x509", "-noout", "-startdate", "-in", ca.path("root", "ca.pem"))
    start = time.mktime(time.strptime(nb.strip().split("=", 1)[1], "%b %d %H:%M:%S %Y %Z"))
    assert 60 <= time.mktime(time.gmtime()) - start <= 3600
    # an initial CRL per CA, number 1
    for role in CAS:
        crl = openssl("crl", "-noout", "-text", "-in", ca.path(role, "crl.pem"))
        assert ext_value(crl, "X509v3 CRL Number") == "1"
        assert "No Revoked Certificates" in crl


def test_init_refuses_an_existing_ca(ca):
    before = ca.path("root", "ca.pem").read_bytes()
    r = ca.run("init", ok=False)
    assert r.returncode == 1 and "refusing to overwrite" in r.stderr
    assert ca.path("root", "ca.pem").read_bytes() == before
    # nothing left behind by the attempt
    assert not [p for p in ca.dir.parent.iterdir() if ".init-" in p.name]


def test_init_into_an_empty_directory_and_refuses_a_non_empty_one(fresh_ca):
    fresh_ca.dir.mkdir()
    fresh_ca.run("init")
    other = FloeCA(fresh_ca.bin, fresh_ca.dir.parent / "other")
    other.dir.mkdir()
    (other.dir / "notes.txt").write_text("x")
    assert "refusing to overwrite" in other.run("init", ok=False).stderr
    assert sorted(p.name for p in other.dir.iterdir()) == ["notes.txt"]


@pytest.mark.parametrize("key_type,expect,digest", [
    ("p384", "NIST CURVE: P-384", "ecdsa-with-SHA384"),
    ("rsa3072", "Public-Key: (3072 bit)", "sha256WithRSAEncryption"),
])
def test_init_key_types(fresh_ca, key_type, expect, digest):
    fresh_ca.run("init", "--key-type", key_type)
    for role in ("root", "device"):
        text = cert_text(fresh_ca.path(role, "ca.pem"))
        assert expect in text and f"Signature Algorithm: {digest}" in text
    assert f"key_type = {key_type}" in fresh_ca.path("floe-ca.conf").read_text()
    # leaves get the same key type, and verify
    fresh_ca.run("issue-device", "acme.gw-0001")
    key, leaf, chain = fresh_ca.issued("acme.gw-0001")
    assert expect in cert_text(leaf)
    assert verify(fresh_ca.path("root", "ca.pem"), leaf, untrusted=chain,
                  purpose="sslclient").returncode == 0


def test_init_options_and_bad_values(fresh_ca):
    r = fresh_ca.run("init", "--key-type", "dsa", ok=False)
    assert r.returncode == 2 and "--key-type" in r.stderr
    r = fresh_ca.run("init", "--crl-next-update", "soon", ok=False)
    assert r.returncode == 2 and "duration" in r.stderr
    assert not fresh_ca.dir.exists()
    fresh_ca.run("init", "--organization", "Example Ops", "--root-validity", "3650d",
                 "--intermediate-validity", "365d", "--crl-next-update", "2d")
    text = cert_text(fresh_ca.path("device", "ca.pem"))
    assert "Subject: O = Example Ops, CN = Example Ops device CA" in text
    crl = openssl("crl", "-noout", "-text", "-in", fresh_ca.path("device", "crl.pem"))
    last = re.search(r"Last Update: (.*)", crl).group(1)
    nxt = re.search(r"Next Update: (.*)", crl).group(1)
    fmt = "%b %d %H:%M:%S %Y %Z"
    assert time.mktime(time.strptime(nxt, fmt)) - time.mktime(time.strptime(last, fmt)) == \
        2 * 86400


# -- issue ---------------------------------------------------------------------------------


def test_issue_server_certificate(ca):
    r = ca.run("issue-server", "broker1.example.com", "--san",
               "dns:mqtt.example.com,ip:10.1.2.3,ip:::1")
    key, leaf, chain = ca.issued("broker1.example.com")
    assert mode(key) == 0o600 and "serial" in r.stdout
    text = cert_text(leaf)
    assert "Issuer: O = floe, CN = floe server CA" in text
    assert "Subject: O = floe, CN = broker1.example.com" in text
    assert ext_value(text, "X509v3 Subject Alternative Name") == (
        "DNS:broker1.example.com, DNS:mqtt.example.com, IP Address:10.1.2.3, "
        "IP Address:0:0:0:0:0:0:0:1")
    assert ext_value(text, "X509v3 Extended Key Usage") == "TLS Web Server Authentication"
    assert ext_value(text, "X509v3 Basic Constraints: critical") == "CA:FALSE"
    assert ext_value(text, "X509v3 Key Usage: critical") == "Digital Signature"
    assert ext_value(text, "X509v3 Authority Key Identifier") == ext_value(
        cert_text(ca.path("server", "ca.pem")), "X509v3 Subject Key Identifier")
    root = ca.path("root", "ca.pem")
    assert verify(root, leaf, untrusted=chain, purpose="sslserver").returncode == 0
    assert verify(root, leaf, untrusted=chain, purpose="sslclient").returncode != 0
    # the chain is leaf + server CA, and the key matches the certificate
    assert chain.read_text() == leaf.read_text() + ca.path("server", "ca.pem").read_text()
    assert openssl("x509", "-noout", "-pubkey", "-in", leaf) == \
        openssl("pkey", "-pubout", "-in", key)
    # never overwritten
    before = key.read_bytes()
    r = ca.run("issue-server", "broker1.example.com", ok=False)
    assert "refusing to overwrite" in r.stderr and key.read_bytes() == before


def test_issue_service_identity(ca):
    ca.run("issue-server", "floe-uploader", "--client")
    key, leaf, chain = ca.issued("floe-uploader")
    text = cert_text(leaf)
    assert "Issuer: O = floe, CN = floe service CA" in text
    assert ext_value(text, "X509v3 Extended Key Usage") == "TLS Web Client Authentication"
    assert "Subject Alternative Name" not in text
    assert verify(ca.path("service", "ca.pem"), leaf, purpose="sslclient").returncode == 0
    # not usable against the device listener's trust (root + device CA)
    assert verify(ca.path("device", "trust.pem"), leaf, purpose="sslclient").returncode != 0
    assert "no --san" in ca.run("issue-server", "svc-x", "--client", "--san", "dns:a.b",
                                ok=False).stderr
    # service names never look like identities or claims
    assert ca.run("issue-service", "acme.gw-0001", ok=False).returncode == 1
    assert ca.run("issue-service", "claim-x", ok=False).returncode == 1


def test_issue_device_certificate(ca, tmp_path):
    ca.run("issue-device", "acme.gw-0100", "--validity", "30d", "--out", tmp_path)
    key, leaf, chain = ca.issued("acme.gw-0100", tmp_path)
    text = cert_text(leaf)
    assert "Subject: O = acme, CN = acme.gw-0100" in text
    assert "Issuer: O = floe, CN = floe device CA" in text
    assert ext_value(text, "X509v3 Extended Key Usage") == "TLS Web Client Authentication"
    assert mode(key) == 0o600
    na = openssl("x509", "-noout", "-enddate", "-in", leaf).strip().split("=", 1)[1]
    left = time.mktime(time.strptime(na, "%b %d %H:%M:%S %Y %Z")) - time.mktime(time.gmtime())
    assert 30 * 86400 - 120 <= left <= 30 * 86400 + 5
    assert verify(ca.path("device", "trust.pem"), chain, purpose="sslclient",
                  crl=ca.path("device", "crl.pem")).returncode == 0


@pytest.mark.parametrize("name,why", [
    ("Acme.gw-1", "upper-case"),
    ("acme/gw-1", "'/'"),
    ("acme.gw+1", "'+'"),
    ("acme.#", "'#'"),
    ("acme.gw 1", "only a-z"),
    ("acme.gw-1\x01", "control characters"),
    ("acme.gw\u00e9", "non-ASCII"),
    ("acmegw", "<tenant>.<device>"),
    ("acme.gw.1", "exactly one"),
    ("acme." + "d" * 64, "too long"),
    ("acme.-gw", "must start"),
])
def test_issue_device_rejects_bad_identities(ca, name, why):
    before = sorted(ca.path("issued").iterdir())
    count = len(ca.list_json())
    r = ca.run("issue-device", name, ok=False)
    assert r.returncode == 1 and why in r.stderr, r.stderr
    assert sorted(ca.path("issued").iterdir()) == before and len(ca.list_json()) == count


def test_issue_from_csr_keeps_the_key_elsewhere(ca, tmp_path):
    key = tmp_path / "device.key"
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-out", key)
    csr = tmp_path / "device.csr"
    # the CSR asks for another name and CA:TRUE: both are ignored
    openssl("req", "-new", "-key", key, "-subj", "/CN=evil.other/O=evil", "-addext",
            "basicConstraints=critical,CA:TRUE", "-out", csr)
    out = tmp_path / "out"
    out.mkdir()
    ca.run("issue-device", "acme.gw-0200", "--csr", csr, "--out", out)
    assert not (out / "acme.gw-0200.key").exists()
    text = cert_text(out / "acme.gw-0200.pem")
    assert "Subject: O = acme, CN = acme.gw-0200" in text and "CA:FALSE" in text
    assert "NIST CURVE: P-384" in text
    # a CSR whose signature does not verify (no proof of possession) is refused
    bad = tmp_path / "bad.csr"
    pem = csr.read_text().splitlines()
    body = "".join(pem[1:-1])
    flipped = body[:-8] + ("A" if body[-8] != "A" else "B") + body[-7:]
    bad.write_text(pem[0] + "\n" + "\n".join(flipped[i:i + 64] for i in range(0, len(flipped),
                                                                             64)) +
                   "\n" + pem[-1] + "\n")
    assert ca.run("issue-device", "acme.gw-0201", "--csr", bad, "--out", out,
                  ok=False).returncode == 1
    # a weak key type is refused
    weak = tmp_path / "weak.key"
    openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024", "-out", weak)
    openssl("req", "-new", "-key", weak, "-subj", "/CN=x", "-out", tmp_path / "weak.csr")
    r = ca.run("issue-device", "acme.gw-0202", "--csr", tmp_path / "weak.csr", "--out", out,
               ok=False)
    assert "key type" in r.stderr


def test_issue_claim_with_allowlist_and_tokens(ca, tmp_path):
    allow = tmp_path / "allow.txt"
    allow.write_text("# factory batch 7\nacme.gw-0300\n\n  acme.gw-0301  \n")
    r = ca.run("issue-claim", "batch-7", "--tenant", "acme", "--allow-file", allow,
               "--allow", "acme.gw-0302", "--tokens", "3", "--tokens-for",
               "acme.gw-0303,acme.gw-0304", "--validity", "30d")
    key, leaf, chain = ca.issued("claim-batch-7")
    text = cert_text(leaf)
    assert "Subject: O = floe, CN = claim-batch-7" in text
    assert "Issuer: O = floe, CN = floe claim CA" in text
    assert ext_value(text, "X509v3 Extended Key Usage") == "TLS Web Client Authentication"
    assert verify(ca.path("claim", "ca.pem"), leaf, purpose="sslclient").returncode == 0
    assert verify(ca.path("device", "trust.pem"), leaf, purpose="sslclient").returncode != 0
    assert "allowlist  3 identities" in r.stdout
    tokens = re.findall(r"^(floe-et1-[0-9a-f]{32}) (\S+)$", r.stdout, re.M)
    assert len(tokens) == 5 and len({t for t, _ in tokens}) == 5
    assert sorted(i for _, i in tokens) == ["acme.*"] * 3 + ["acme.gw-0303", "acme.gw-0304"]
    # stored hashed: the registry never holds a token in clear
    db = b"".join(p.read_bytes() for p in ca.dir.glob("registry.db*"))
    for t, _ in tokens:
        assert t.encode() not in db
    assert "claim-batch-7" in [c["identity"] for c in ca.list_json("--kind", "claim")]


def test_issue_claim_tokens_to_a_file(ca, tmp_path):
    out = tmp_path / "tokens.txt"
    r = ca.run("issue-claim", "claim-gw-0400", "--tenant", "acme", "--tokens-for",
               "acme.gw-0400", "--tokens-out", out)
    assert mode(out) == 0o600
    [token] = re.findall(r"floe-et1-[0-9a-f]{32}", out.read_text())
    assert token not in r.stdout and "shown once in" in r.stdout
    assert out.read_text() == f"{token} acme.gw-0400\n"
    # the claim exists: not again, not even into another directory
    other = tmp_path / "other"
    other.mkdir()
    r = ca.run("issue-claim", "gw-0400", "--out", other, ok=False)
    assert "exists already" in r.stderr and not list(other.iterdir())
    # an existing tokens file is refused before anything is issued
    r = ca.run("issue-claim", "gw-0401", "--tenant", "acme", "--tokens", "1", "--tokens-out",
               out, ok=False)
    assert "refusing to overwrite" in r.stderr
    assert not ca.issued("claim-gw-0401")[0].exists()
    assert out.read_text() == f"{token} acme.gw-0400\n"


@pytest.mark.parametrize("args,why", [
    (["claim-x", "--tokens", "2"], "need --tenant"),
    (["claim-x", "--tenant", "acme", "--allow", "other.gw-1"], "outside the claim's tenant"),
    (["claim-x", "--allow", "acme/gw-1"], "invalid device identity"),
    (["Claim-X"], "invalid claim id"),
    (["claim-" + "x" * 58], "invalid claim id"),
    (["claim-x", "--tenant", "Acme"], "invalid tenant"),
])
def test_issue_claim_rejects_bad_input(ca, args, why):
    r = ca.run("issue-claim", *args, ok=False)
    assert r.returncode == 1 and why in r.stderr, r.stderr
    assert not ca.path("issued", "claim-x.key").exists()


# -- revoke, crl, list ---------------------------------------------------------------------


def crl_text(path):
    return openssl("crl", "-noout", "-text", "-in", path)


def crl_entries(path):
    """{serial: reason or None} of a CRL."""
    entries = {}
    for block in crl_text(path).split("Serial Number: ")[1:]:
        serial = block.split()[0]
        m = re.search(r"CRL Reason Code:\s*\n\s*([^\n]+)", block)
        entries[serial] = m.group(1).strip() if m else None
    return entries


def test_revoke_by_serial_and_crl(ca):
    for ident in ("acme.gw-0500", "acme.gw-0501"):
        ca.run("issue-device", ident)
    a_key, a_leaf, a_chain = ca.issued("acme.gw-0500")
    b_key, b_leaf, b_chain = ca.issued("acme.gw-0501")
    serial = ca.serial_of(a_leaf)
    before = int(ext_value(crl_text(ca.path("device", "crl.pem")), "X509v3 CRL Number"))
    r = ca.run("revoke", "--serial", serial.lower(), "--reason", "keyCompromise")
    assert "Revoked 1 certificate" in r.stdout
    assert "already revoked" in ca.run("revoke", "--serial", serial, ok=False).stderr
    out = ca.run("crl", "--next-update", "1h")
    assert re.search(r"^device\s+CRL number \d+", out.stdout, re.M)
    text = crl_text(ca.path("device", "crl.pem"))
    assert int(ext_value(text, "X509v3 CRL Number")) == before + 1
    assert crl_entries(ca.path("device", "crl.pem"))[serial] == "Key Compromise"
    assert ext_value(text, "X509v3 Authority Key Identifier") == ext_value(
        cert_text(ca.path("device", "ca.pem")), "X509v3 Subject Key Identifier")
    assert ca.serial_of(b_leaf) not in text
    # signed by the device CA, and nextUpdate one hour out
    r = openssl("crl", "-noout", "-in", ca.path("device", "crl.pem"), "-CAfile",
                ca.path("device", "trust.pem"), ok=False)
    assert r.returncode == 0 and "verify OK" in r.stdout + r.stderr
    fmt = "%b %d %H:%M:%S %Y %Z"
    last = time.mktime(time.strptime(re.search(r"Last Update: (.*)", text).group(1), fmt))
    nxt = time.mktime(time.strptime(re.search(r"Next Update: (.*)", text).group(1), fmt))
    assert nxt - last == 3600
    trust, crl = ca.path("device", "trust.pem"), ca.path("device", "crl.pem")
    refused = verify(trust, a_chain, crl=crl)
    assert refused.returncode != 0 and "certificate revoked" in refused.stdout + refused.stderr
    assert verify(trust, b_chain, crl=crl).returncode == 0
    # the other CRLs only got a new number, with nothing in them from the device CA
    assert "No Revoked Certificates" in crl_text(ca.path("claim", "crl.pem"))


def test_revoke_by_identity_revokes_every_valid_certificate(ca, tmp_path):
    ident = "acme.gw-0600"
    ca.run("issue-device", ident)
    ca.run("issue-device", ident, "--out", tmp_path)
    serials = {ca.serial_of(ca.issued(ident)[1]), ca.serial_of(ca.issued(ident, tmp_path)[1])}
    r = ca.run("revoke", "--identity", ident, "--reason", "superseded")
    assert "Revoked 2 certificates" in r.stdout
    rows = ca.list_json("--identity", ident)
    assert {row["serial"] for row in rows} == serials
    assert all(row["status"] == "revoked" and row["reason"] == "superseded" for row in rows)
    assert "no such" in ca.run("revoke", "--identity", ident, ok=False).stderr
    ca.run("crl", "--ca", "device")
    entries = crl_entries(ca.path("device", "crl.pem"))
    for s in serials:
        assert entries[s] == "Superseded"


def test_revoke_claim_and_bad_arguments(ca):
    ca.run("issue-claim", "gw-0700", "--allow", "acme.gw-0700")
    ca.run("revoke", "--identity", "claim-gw-0700")
    ca.run("crl", "--ca", "claim")
    claim_key, claim_leaf, _ = ca.issued("claim-gw-0700")
    text = crl_text(ca.path("claim", "crl.pem"))
    assert f"Serial Number: {ca.serial_of(claim_leaf)}" in text
    assert verify(ca.path("claim", "ca.pem"), claim_leaf,
                  crl=ca.path("claim", "crl.pem")).returncode != 0
    assert ca.run("revoke", ok=False).returncode == 2
    assert ca.run("revoke", "--serial", "zz", ok=False).returncode == 2
    assert ca.run("revoke", "--serial", "1", "--identity", "x", ok=False).returncode == 2
    assert ca.run("revoke", "--identity", "acme.gw-1", "--reason", "bored",
                  ok=False).returncode == 2
    assert "no such certificate" in ca.run("revoke", "--serial", "ABCDEF",
                                           ok=False).stderr
    # a self-signed CA cannot be revoked through its own CRL
    root_serial = ca.serial_of(ca.path("root", "ca.pem"))
    assert "self-signed" in ca.run("revoke", "--serial", root_serial, ok=False).stderr


def test_crl_skips_an_offline_root_key(fresh_ca):
    fresh_ca.run("init")
    key = fresh_ca.path("root", "ca.key")
    offline = key.with_name("ca.key.offline")
    key.rename(offline)
    r = fresh_ca.run("crl")
    assert "root CA: key not present" in r.stderr
    assert re.search(r"^device\s+CRL number 2", r.stdout, re.M)
    assert not re.search(r"^root", r.stdout, re.M)
    # the leaves still issue: only the root key is offline
    fresh_ca.run("issue-device", "acme.gw-0001")
    # a key readable by others is refused rather than used
    offline.rename(key)
    os.chmod(fresh_ca.path("device", "ca.key"), 0o644)
    r = fresh_ca.run("crl", "--ca", "device", ok=False)
    assert "chmod 0600" in r.stderr


def test_list_table_json_and_statuses(ca):
    ca.run("issue-device", "acme.gw-0800")
    ca.run("issue-device", "acme.gw-0801", "--validity", "1s")
    ca.run("issue-device", "acme.gw-0802")
    ca.run("revoke", "--identity", "acme.gw-0802", "--reason", "keyCompromise")
    time.sleep(2.1)
    table = ca.run("list").stdout.splitlines()
    assert table[0].split() == ["IDENTITY", "KIND", "SERIAL", "STATUS", "NOT", "AFTER"]
    rows = {line.split()[0]: line.split() for line in table[1:]}
    assert rows["acme.gw-0800"][1:2] == ["device"] and rows["acme.gw-0800"][3] == "valid"
    assert rows["acme.gw-0801"][3] == "expired" and rows["acme.gw-0802"][3] == "revoked"
    serial = ca.serial_of(ca.issued("acme.gw-0800")[1])
    assert rows["acme.gw-0800"][2] == serial
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", rows["acme.gw-0800"][4])
    data = {row["identity"]: row for row in ca.list_json("--kind", "device")}
    assert data["acme.gw-0800"]["status"] == "valid" and data["acme.gw-0800"]["serial"] == serial
    assert data["acme.gw-0801"]["status"] == "expired"
    assert data["acme.gw-0802"]["status"] == "revoked"
    assert data["acme.gw-0802"]["reason"] == "keyCompromise" and "revoked_at" in data[
        "acme.gw-0802"]
    assert {row["kind"] for row in data.values()} == {"device"}
    assert {row["identity"] for row in ca.list_json("--kind", "ca")} == {
        f"floe {r} CA" for r in CAS}
    # an expired certificate leaves the CRL; a revoked unexpired one stays
    ca.run("revoke", "--serial", serial)
    ca.run("crl", "--ca", "device")
    text = crl_text(ca.path("device", "crl.pem"))
    assert f"Serial Number: {serial}" in text


def test_no_directory_and_unknown_command(fresh_ca, floe_ca_bin):
    r = fresh_ca.run("list", ok=False)
    assert "not a CA directory" in r.stderr
    env = {k: v for k, v in os.environ.items() if k != "FLOE_CA_DIR"}
    r = subprocess.run([floe_ca_bin, "list"], capture_output=True, text=True, env=env)
    assert r.returncode == 2 and "--dir" in r.stderr
    assert fresh_ca.run("frobnicate", ok=False).returncode == 2


def test_bad_settings_file_names_file_and_line(fresh_ca):
    fresh_ca.run("init")
    conf = fresh_ca.path("floe-ca.conf")
    conf.write_text(conf.read_text().replace("device = 90d", "device = soon"))
    r = fresh_ca.run("issue-device", "acme.gw-0001", ok=False)
    assert re.search(r"floe-ca\.conf:\d+: .*duration", r.stderr), r.stderr


def test_no_key_material_in_any_output(ca):
    keys = list(ca.path("issued").glob("*.key")) + [ca.path(r, "ca.key") for r in CAS]
    assert keys and ca.outputs
    bodies = [key_body(k) for k in keys]
    for out in ca.outputs:
        for body in bodies:
            assert body[:40] not in out


# -- rotate ----------------------------------------------------------------------------------


def pem_blocks(path, kind):
    """The PEM blocks of one kind ("CERTIFICATE", "X509 CRL") in a file, in order."""
    return re.findall(rf"-----BEGIN {kind}-----\n.*?-----END {kind}-----\n",
                      Path(path).read_text(), re.S)


def split_crls(path, tmp_path):
    """Each CRL of a CRL file (mosquitto's crlfile may hold several) as {issuer CN: path}."""
    crls = {}
    for i, block in enumerate(pem_blocks(path, "X509 CRL")):
        one = tmp_path / f"{Path(path).name}.{i}"
        one.write_text(block)
        issuer = openssl("crl", "-noout", "-issuer", "-in", one).strip()
        crls[issuer.split("CN = ", 1)[1]] = one
    assert len(crls) == len(pem_blocks(path, "X509 CRL")), "two CRLs of one issuer"
    return crls


def bundle_subjects(path):
    subjects = []
    for block in pem_blocks(path, "CERTIFICATE"):
        r = subprocess.run(["openssl", "x509", "-noout", "-subject"], input=block,
                           capture_output=True, text=True, timeout=30)
        subjects.append(r.stdout.strip().split("CN = ", 1)[1])
    return subjects


def test_rotate_the_device_ca(fresh_ca, tmp_path):
    ca = fresh_ca
    ca.run("init")
    for ident in ("acme.old-1", "acme.old-2"):
        ca.run("issue-device", ident)
    old_pem = ca.path("device", "ca.pem").read_bytes()
    old_key = ca.path("device", "ca.key").read_bytes()
    old_text = cert_text(ca.path("device", "ca.pem"))
    r = ca.run("rotate", "--ca", "device")
    assert "now generation 2: \"floe device CA 2\", p256 key" in r.stdout
    assert "kept in" in r.stdout and "(1 earlier generation with valid" in r.stdout
    # the new intermediate: same profile, another key and name, from the root
    text = cert_text(ca.path("device", "ca.pem"))
    assert "Subject: O = floe, CN = floe device CA 2" in text
    assert "Issuer: O = floe, CN = floe root CA" in text
    for ext in ("X509v3 Basic Constraints: critical", "X509v3 Key Usage: critical",
                "X509v3 Extended Key Usage", "X509v3 Authority Key Identifier"):
        assert ext_value(text, ext) == ext_value(old_text, ext), ext
    assert ext_value(text, "X509v3 Subject Key Identifier") != ext_value(
        old_text, "X509v3 Subject Key Identifier")
    assert "NIST CURVE: P-256" in text
    assert verify(ca.path("root", "ca.pem"), ca.path("device", "ca.pem")).returncode == 0
    assert ca.path("device", "trust.pem").read_text() == (
        ca.path("device", "ca.pem").read_text() + ca.path("root", "ca.pem").read_text())
    # the previous generation kept as it was, its key 0600; the new key 0600
    gen1 = ca.path("device", "gen-1")
    assert mode(gen1) == 0o700
    assert (gen1 / "ca.pem").read_bytes() == old_pem
    assert (gen1 / "ca.key").read_bytes() == old_key and mode(gen1 / "ca.key") == 0o600
    assert ca.path("device", "ca.key").read_bytes() != old_key
    assert mode(ca.path("device", "ca.key")) == 0o600
    assert openssl("pkey", "-pubout", "-in", ca.path("device", "ca.key")) == openssl(
        "x509", "-noout", "-pubkey", "-in", ca.path("device", "ca.pem"))
    # new devices come from the new CA
    ca.run("issue-device", "acme.new-1")
    new_leaf = ca.issued("acme.new-1")[1]
    assert "Issuer: O = floe, CN = floe device CA 2" in cert_text(new_leaf)
    # the broker trusts the root and both generations, with a CRL of each
    out = tmp_path / "broker"
    ca.run("broker-config", "--out", out, "--hostname", "localhost")
    bundle, crl = out / "device-ca.pem", out / "device.crl.pem"
    assert sorted(bundle_subjects(bundle)) == [
        "floe device CA", "floe device CA 2", "floe root CA"]
    assert set(split_crls(crl, tmp_path)) == {"floe device CA", "floe device CA 2"}
    chains = {i: ca.issued(i)[2] for i in ("acme.old-1", "acme.old-2", "acme.new-1")}
    for ident, chain in chains.items():
        assert verify(bundle, chain, purpose="sslclient", crl=crl).returncode == 0, ident
        # and with the chain the device sends, not only the bundle's intermediates
        assert verify(bundle, ca.issued(ident)[1], untrusted=chain,
                      crl=crl).returncode == 0, ident
    # revoking an old-generation device: its CRL comes from the old generation
    old1 = ca.serial_of(ca.issued("acme.old-1")[1])
    new1 = ca.serial_of(new_leaf)
    ca.run("revoke", "--identity", "acme.old-1", "--reason", "keyCompromise")
    ca.run("revoke", "--identity", "acme.new-1")
    r = ca.run("crl", "--ca", "device", "--out", out)
    assert "and the CRL of 1 earlier generation" in r.stdout
    crls = split_crls(crl, tmp_path)
    assert crl_entries(crls["floe device CA"]) == {old1: "Key Compromise"}
    assert crl_entries(crls["floe device CA 2"]) == {new1: None}
    # each CRL is signed by its generation
    for cn, path in crls.items():
        signer = gen1 / "trust.pem" if cn == "floe device CA" else ca.path("device", "trust.pem")
        r = openssl("crl", "-noout", "-in", path, "-CAfile", signer, ok=False)
        assert "verify OK" in r.stdout + r.stderr, cn
    assert (gen1 / "crl.pem").read_text() == crls["floe device CA"].read_text()
    assert ca.path("device", "crl.pem").read_text() == crl.read_text()
    for ident, chain in chains.items():
        r = verify(bundle, chain, crl=crl)
        if ident == "acme.old-2":
            assert r.returncode == 0
        else:
            assert "certificate revoked" in r.stdout + r.stderr, ident
    # list: both generations valid CAs, the devices with their statuses
    cas = {row["identity"]: row for row in ca.list_json("--kind", "ca")}
    for cn in ("floe device CA", "floe device CA 2"):
        assert cas[cn]["status"] == "valid" and cas[cn]["issuer"] == "root"
    assert cas["floe device CA 2"]["serial"] == ca.serial_of(ca.path("device", "ca.pem"))
    table = ca.run("list").stdout
    assert re.search(r"^floe device CA 2\s+ca\s", table, re.M)
    assert re.search(r"^floe device CA\s+ca\s", table, re.M)


def test_rotate_again_other_key_type_and_the_server_ca(fresh_ca, tmp_path):
    ca = fresh_ca
    ca.run("init", "--key-type", "p384")
    ca.run("issue-device", "acme.gen-1")
    ca.run("rotate", "--ca", "device")
    ca.run("issue-device", "acme.gen-2")
    r = ca.run("rotate", "--ca", "device", "--key-type", "p256")
    assert "now generation 3: \"floe device CA 3\", p256 key" in r.stdout
    assert "(2 earlier generations with valid certificates)" in r.stdout
    assert "NIST CURVE: P-256" in cert_text(ca.path("device", "ca.pem"))
    assert "NIST CURVE: P-384" in cert_text(ca.path("device", "gen-2", "ca.pem"))
    assert "CN = floe device CA 2" in cert_text(ca.path("device", "gen-2", "ca.pem"))
    out = tmp_path / "broker"
    ca.run("broker-config", "--out", out, "--hostname", "localhost")
    assert sorted(bundle_subjects(out / "device-ca.pem")) == [
        "floe device CA", "floe device CA 2", "floe device CA 3", "floe root CA"]
    for ident in ("acme.gen-1", "acme.gen-2"):
        assert verify(out / "device-ca.pem", ca.issued(ident)[2],
                      crl=out / "device.crl.pem").returncode == 0
    # the server CA: the broker certificate already made keeps verifying with the root
    r = ca.run("rotate", "--ca", "server")
    assert "now generation 2: \"floe server CA 2\", p384 key" in r.stdout
    assert "remove BROKER/broker" in r.stdout
    assert verify(ca.path("root", "ca.pem"), out / "broker.chain.pem",
                  untrusted=out / "broker.chain.pem", purpose="sslserver").returncode == 0
    other = tmp_path / "broker2"
    ca.run("broker-config", "--out", other, "--hostname", "localhost")
    assert "Issuer: O = floe, CN = floe server CA 2" in cert_text(other / "broker.pem")
    assert verify(ca.path("root", "ca.pem"), other / "broker.chain.pem",
                  untrusted=other / "broker.chain.pem", purpose="sslserver").returncode == 0
    assert "floe server CA" in split_crls(ca.path("server", "crl.pem"), tmp_path)


def test_rotate_drops_generations_without_valid_certificates(fresh_ca, tmp_path):
    ca = fresh_ca
    ca.run("init")
    ca.run("issue-device", "acme.short", "--validity", "3s")
    r = ca.run("rotate", "--ca", "device")
    assert "(1 earlier generation with valid certificates)" in r.stdout
    out = tmp_path / "broker"
    ca.run("broker-config", "--out", out, "--hostname", "localhost")
    assert len(bundle_subjects(out / "device-ca.pem")) == 3
    time.sleep(3.5)
    r = ca.run("crl", "--ca", "device", "--out", out)
    assert "earlier generation" not in r.stdout
    assert list(split_crls(out / "device.crl.pem", tmp_path)) == ["floe device CA 2"]
    ca.run("broker-config", "--out", out)
    assert sorted(bundle_subjects(out / "device-ca.pem")) == ["floe device CA 2", "floe root CA"]
    assert (out / "device-ca.pem").read_text() == ca.path("device", "trust.pem").read_text()
    # the next rotation keeps generation 2 and names the new CA 3
    r = ca.run("rotate", "--ca", "device")
    assert "now generation 3" in r.stdout and "(0 earlier generations" in r.stdout
    assert sorted(p.name for p in ca.path("device").iterdir() if p.name.startswith("gen-")) == [
        "gen-1", "gen-2"]


def test_a_revoked_generation_leaves_the_broker_files(fresh_ca, tmp_path):
    """A compromised device CA: rotate, then revoke the old one (docs/enrollment.md)."""
    ca = fresh_ca
    ca.run("init")
    ca.run("issue-device", "acme.gw-0001")
    old_serial = ca.serial_of(ca.path("device", "ca.pem"))
    ca.run("rotate", "--ca", "device")
    ca.run("revoke", "--serial", old_serial, "--reason", "CACompromise")
    out = tmp_path / "broker"
    out.mkdir()
    ca.run("crl", "--out", out)
    ca.run("broker-config", "--out", out, "--hostname", "localhost")
    assert sorted(bundle_subjects(out / "device-ca.pem")) == ["floe device CA 2", "floe root CA"]
    assert list(split_crls(out / "device.crl.pem", tmp_path)) == ["floe device CA 2"]
    assert crl_entries(ca.path("root", "crl.pem")) == {old_serial: "CA Compromise"}
    # even with the old CA in the chain it sends, the device is refused: no CRL of its issuer
    chain = ca.issued("acme.gw-0001")[2]
    r = verify(out / "device-ca.pem", chain, untrusted=chain, crl=out / "device.crl.pem")
    assert r.returncode != 0 and "unable to get certificate CRL" in r.stdout + r.stderr


def test_crl_keeps_the_last_crl_of_a_generation_without_its_key(fresh_ca, tmp_path):
    ca = fresh_ca
    ca.run("init")
    ca.run("issue-device", "acme.gw-0001")
    ca.run("rotate", "--ca", "device")
    old_crl = ca.path("device", "gen-1", "crl.pem").read_text()
    before = int(ext_value(crl_text(ca.path("device", "crl.pem")), "X509v3 CRL Number"))
    ca.path("device", "gen-1", "ca.key").rename(tmp_path / "gen-1.key")
    r = ca.run("crl", "--ca", "device", ok=False)
    assert r.returncode == 1 and "gen-N/ca.key" in r.stderr and "others were renewed" in r.stderr
    crls = split_crls(ca.path("device", "crl.pem"), tmp_path)
    assert crls["floe device CA"].read_text() == old_crl
    assert int(ext_value(crl_text(crls["floe device CA 2"]), "X509v3 CRL Number")) > before


def test_rotate_refused_without_the_root_key(fresh_ca):
    ca = fresh_ca
    ca.run("init")
    key = ca.path("root", "ca.key")
    offline = key.with_name("ca.key.offline")
    key.rename(offline)
    before = {p.name: p.read_bytes() for p in ca.path("device").iterdir()}
    r = ca.run("rotate", "--ca", "device", ok=False)
    assert r.returncode == 1 and "root key is not in the CA directory" in r.stderr
    assert {p.name: p.read_bytes() for p in ca.path("device").iterdir()} == before
    assert len(ca.list_json("--kind", "ca")) == len(CAS)
    # with the key back it works
    offline.rename(key)
    ca.run("rotate", "--ca", "device")
    assert len(ca.list_json("--kind", "ca")) == len(CAS) + 1
    # the current CA's key missing: refused too, nothing changed
    ca.path("device", "ca.key").rename(ca.path("device", "ca.key.away"))
    before = sorted(p.name for p in ca.path("device").iterdir())
    r = ca.run("rotate", "--ca", "device", ok=False)
    assert r.returncode == 1 and "device/ca.key" in r.stderr
    assert sorted(p.name for p in ca.path("device").iterdir()) == before
    # bad usage
    for args in ((), ("--ca", "claim"), ("--ca", "root"), ("--ca", "device", "--key-type", "x"),
                 ("--ca", "device", "extra")):
        assert ca.run("rotate", *args, ok=False).returncode == 2, args


# -- the registry location ------------------------------------------------------------------


def test_init_with_the_registry_elsewhere(fresh_ca, tmp_path):
    import sqlite3

    shared = tmp_path / "shared"
    shared.mkdir()
    location = shared / "floe-registry.db"
    ca = fresh_ca
    ca.run("init", "--registry", location)
    assert not ca.path("registry.db").exists() and location.exists()
    conf = ca.path("floe-ca.conf").read_text()
    assert f"[registry]\nlocation = {location}\n" in conf
    ca.run("issue-device", "acme.gw-0001")
    serial = ca.serial_of(ca.issued("acme.gw-0001")[1])
    assert [row["serial"] for row in ca.list_json("--kind", "device")] == [serial]
    with sqlite3.connect(location) as db:
        rows = db.execute("SELECT identity FROM certificates WHERE serial = ?",
                          (serial,)).fetchall()
    assert rows == [("acme.gw-0001",)]
    # a registry holding a CA is never given to another
    other = FloeCA(ca.bin, tmp_path / "other")
    r = other.run("init", "--registry", location, ok=False)
    assert "holds certificates already" in r.stderr and not other.dir.exists()
    # a relative SQLite path is inside the CA directory
    rel = FloeCA(ca.bin, tmp_path / "rel")
    rel.run("init", "--registry", "sqlite:certs.db")
    assert rel.path("certs.db").exists() and not rel.path("registry.db").exists()
    rel.run("issue-device", "acme.gw-0002")
    assert [row["identity"] for row in rel.list_json("--kind", "device")] == ["acme.gw-0002"]
    # a registry gone from its location is an error naming the setting, not a new registry
    location.rename(shared / "moved.db")
    r = ca.run("list", ok=False)
    assert re.search(r"floe-ca\.conf:\d+: \[registry\] location: no registry at", r.stderr)
    assert not location.exists()
    # bad locations
    for bad in ("mysql://db", " padded", "sqlite:", '"quoted"'):
        r = FloeCA(ca.bin, tmp_path / "bad").run("init", "--registry", bad, ok=False)
        assert r.returncode == 2 and "--registry" in r.stderr, bad


def test_init_with_an_unusable_postgresql_registry(fresh_ca, tmp_path):
    """Without a PostgreSQL backend, or without a server: a clear error, nothing left behind,
    and the password in the location never printed."""
    url = f"postgresql://floe:s3cret-pw@127.0.0.1:{free_port()}/floe?connect_timeout=2"
    r = fresh_ca.run("init", "--registry", url, ok=False)
    assert r.returncode == 1 and "registry" in r.stderr
    assert "s3cret-pw" not in r.stdout + r.stderr
    assert not fresh_ca.dir.exists()
    assert not [p for p in tmp_path.iterdir() if ".init-" in p.name]


# -- the broker --------------------------------------------------------------------------------


class FloeBroker(Mosquitto):
    """mosquitto running the configuration broker-config wrote, plus logging to stderr."""

    def __init__(self, workdir, conf, ports):
        super().__init__(workdir, port=ports[0])
        self.generated = conf
        self.device_port, self.claim_port, self.service_port = ports

    def config(self):
        return ("log_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\n"
                "log_type information\nconnection_messages true\npersistence false\n" +
                Path(self.generated).read_text())

    def reload(self, timeout=10):
        before = self.log_text().count("Reloading config.")
        self.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while self.log_text().count("Reloading config.") <= before:
            assert time.monotonic() < deadline, f"no reload:\n{self.log_tail()}"
            time.sleep(0.02)


class Creds:
    def __init__(self, ca_obj, name, out=None):
        key, leaf, chain = ca_obj.issued(name, out)
        self.name, self.key, self.cert, self.leaf = name, str(key), str(chain), str(leaf)
        self.ca = str(ca_obj.path("root", "ca.pem"))

    @property
    def tls(self):
        return {"ca_certs": self.ca, "certfile": self.cert, "keyfile": self.key,
                "tls_version": ssl.PROTOCOL_TLS_CLIENT}


@pytest.fixture(scope="module")
def broker(floe_ca_bin, tmp_path_factory):
    base = tmp_path_factory.mktemp("floe-broker")
    c = FloeCA(floe_ca_bin, base / "ca")
    c.run("init")
    for d in ("acme.gw-0001", "acme.gw-0002", "acme.gw-0003"):
        c.run("issue-device", d)
    for claim in ("gw-0001", "gw-0002"):
        c.run("issue-claim", claim, "--tenant", "acme", "--allow", "acme." + claim)
    for svc in ("floe-uploader", "floe-enrolld"):
        c.run("issue-service", svc)
    out = base / "broker"
    user = ["--user", "root"] if os.geteuid() == 0 else []
    for attempt in range(3):
        ports = (free_port(), free_port(), free_port())
        c.run("broker-config", "--out", out, "--hostname", "localhost", "--bind",
              "127.0.0.1", "--ports", ",".join(map(str, ports)), *user)
        b = FloeBroker(base / f"run-{attempt}", out / "mosquitto.conf", ports)
        try:
            b.start()
            break
        except pytest.fail.Exception as e:
            if "Address already in use" not in str(e) or attempt == 2:
                raise
    b.ca = c
    b.out = out
    try:
        yield b
    finally:
        b.stop()


def mosquitto_pub(broker, port, creds, topic, payload=b"x", client_id=None):
    """QoS 1 publish with mosquitto_pub -V mqttv5 -d; returns the PUBACK reason code."""
    r = subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "--cafile",
                        creds.ca, "--cert", creds.cert, "--key", creds.key, "-V", "mqttv5",
                        "-q", "1", "-t", topic, "-m", payload, "-d",
                        *(["-i", client_id] if client_id else [])],
                       capture_output=True, text=True, timeout=30)
    m = re.search(r"received PUBACK \(Mid: \d+, RC:(\d+)\)", r.stdout)
    assert m, f"no PUBACK (exit {r.returncode}):\n{r.stdout}{r.stderr}\n{broker.log_tail()}"
    return int(m.group(1))


def tls_connect(port, creds, tls_max=ssl.TLSVersion.TLSv1_2, client_id=b""):
    """A raw MQTT v5 CONNECT over TLS; returns the CONNACK reason code or raises
    ssl.SSLError carrying the broker's alert (TLS 1.2: the alert comes in the handshake)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile=creds.ca)
    ctx.maximum_version = tls_max
    ctx.load_cert_chain(certfile=creds.cert, keyfile=creds.key)
    body = b"\x00\x04MQTT\x05\x02\x00\x0a\x00" + struct.pack(">H", len(client_id)) + client_id
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            s.sendall(bytes([0x10, len(body)]) + body)
            data = b""
            while len(data) < 4:
                chunk = s.recv(256)
                if not chunk:
                    raise ConnectionResetError("closed without CONNACK")
                data += chunk
            assert data[0] == 0x20
            return data[3]


def refused(port, creds, alert):
    with pytest.raises(ssl.SSLError, match=alert):
        tls_connect(port, creds)


def wait_log(broker, needle, since, timeout=5):
    deadline = time.monotonic() + timeout
    while needle not in broker.log_text()[since:]:
        assert time.monotonic() < deadline, f"{needle!r} not in log:\n{broker.log_tail()}"
        time.sleep(0.02)


def quiet(sub, seconds=0.7):
    """Messages that reach sub within seconds (expected: none)."""
    time.sleep(seconds)
    return sub.take()


def test_generated_files(broker):
    out = broker.out
    conf = (out / "mosquitto.conf").read_text()
    assert conf.index("per_listener_settings true") < re.search(r"^listener ", conf, re.M).start()
    assert conf.count("require_certificate true") == 3
    # Nagle off, globally (mosquitto.conf(5): "This option applies globally"): before any
    # listener, so it never reads as one listener's setting
    lines = conf.splitlines()
    assert lines.count("set_tcp_nodelay true") == 1
    assert lines.index("set_tcp_nodelay true") < min(
        i for i, line in enumerate(lines) if line.startswith("listener "))
    assert conf.count("use_identity_as_username true") == 3
    assert conf.count("tls_version tlsv1.2") == 3
    assert f"cafile {out}/device-ca.pem" in conf and f"crlfile {out}/device.crl.pem" in conf
    assert f"listener {broker.service_port} 127.0.0.1" in conf
    acl = (out / "acl-device.conf").read_text()
    for line in ("pattern write floe/v1/%u/batch", "pattern read floe/v1/%u/ack",
                 "pattern write floe/v1/%u/status"):
        assert line in acl.splitlines()
    claim_acl = [line for line in (out / "acl-claim.conf").read_text().splitlines()
                 if line and not line.startswith("#")]
    assert claim_acl == ["pattern write floe/enroll/v1/%u/req",
                         "pattern read floe/enroll/v1/%u/res/#"]
    assert mode(out / "broker.key") == 0o600
    text = cert_text(out / "broker.pem")
    assert ext_value(text, "X509v3 Subject Alternative Name") == \
        "DNS:localhost, IP Address:127.0.0.1"
    assert (out / "device-ca.pem").read_text() == broker.ca.path("device", "trust.pem").read_text()
    # a second run keeps the broker key and certificate
    before = (out / "broker.key").read_bytes()
    r = broker.ca.run("broker-config", "--out", out, "--ports", "1,2,3", "--install-dir",
                      "/etc/mosquitto/floe")
    assert "new broker certificate" not in r.stdout
    assert (out / "broker.key").read_bytes() == before
    assert "cafile /etc/mosquitto/floe/device-ca.pem" in (out / "mosquitto.conf").read_text()
    # put the test broker's configuration back (a reload would read it)
    user = ["--user", "root"] if os.geteuid() == 0 else []
    broker.ca.run("broker-config", "--out", out, "--bind", "127.0.0.1", "--ports",
                  f"{broker.device_port},{broker.claim_port},{broker.service_port}", *user)
    empty = broker.out.parent / "no-cert"
    assert "--hostname" in broker.ca.run("broker-config", "--out", empty, ok=False).stderr


def test_packaged_configuration_is_what_broker_config_writes(ca, tmp_path):
    """packaging/mosquitto/ holds broker-config's output for /etc/mosquitto/floe."""
    packaged = Path(__file__).resolve().parents[2] / "packaging" / "mosquitto"
    out = tmp_path / "broker"
    ca.run("broker-config", "--out", out, "--hostname", "broker.example.com", "--install-dir",
           "/etc/mosquitto/floe")
    assert (packaged / "floe.conf").read_text() == (out / "mosquitto.conf").read_text()
    for name in ("acl-device.conf", "acl-claim.conf", "acl-service.conf"):
        assert (packaged / name).read_text() == (out / name).read_text(), name


def test_device_publishes_its_own_batch_and_the_uploader_gets_it(broker):
    dev = Creds(broker.ca, "acme.gw-0001")
    up = Creds(broker.ca, "floe-uploader")
    with floe_mqtt.Subscriber("127.0.0.1", broker.service_port, "$share/floe/floe/v1/+/batch",
                              tls=up.tls) as sub:
        rc = mosquitto_pub(broker, broker.device_port, dev, "floe/v1/acme.gw-0001/batch",
                           "batch-1")
        assert rc < 0x80
        [msg] = sub.wait_for(1)
        assert msg.topic == "floe/v1/acme.gw-0001/batch" and msg.payload == b"batch-1"
        sub.take()
        # another identity's topic: refused with a v5 reason code, and not delivered
        assert mosquitto_pub(broker, broker.device_port, dev, "floe/v1/acme.gw-0002/batch",
                             "forged") == NOT_AUTHORIZED
        assert mosquitto_pub(broker, broker.device_port, dev, "floe/v1/acme.gw-0001/ack",
                             "self-ack") == NOT_AUTHORIZED
        assert quiet(sub) == []


def test_device_client_id_is_its_identity(broker):
    dev = Creds(broker.ca, "acme.gw-0001")
    since = len(broker.log_text())
    assert tls_connect(broker.device_port, dev, client_id=b"acme.gw-0002") == 0
    wait_log(broker, "as acme.gw-0001 (p5, c1, k10, u'acme.gw-0001')", since)
    assert "as acme.gw-0002" not in broker.log_text()[since:]


def test_uploader_acks_reach_only_their_device(broker):
    up = Creds(broker.ca, "floe-uploader")
    a, b = Creds(broker.ca, "acme.gw-0001"), Creds(broker.ca, "acme.gw-0002")
    with floe_mqtt.Subscriber("127.0.0.1", broker.device_port, "floe/v1/+/ack",
                              tls=a.tls) as sub_a:
        assert mosquitto_pub(broker, broker.service_port, up, "floe/v1/acme.gw-0002/ack") < 0x80
        assert mosquitto_pub(broker, broker.service_port, up, "floe/v1/acme.gw-0001/ack",
                             "for-a") < 0x80
        msgs = sub_a.wait_for(1)
        assert [m.topic for m in msgs] == ["floe/v1/acme.gw-0001/ack"]
        sub_a.take()
        assert quiet(sub_a) == []
    # the uploader may not publish data, and devices do not get service rights
    assert mosquitto_pub(broker, broker.service_port, up, "floe/v1/acme.gw-0001/batch") == \
        NOT_AUTHORIZED
    refused(broker.service_port, b, "unknown ca")


def test_claim_is_refused_on_the_device_listener(broker):
    claim = Creds(broker.ca, "claim-gw-0001")
    refused(broker.device_port, claim, "alert unknown ca")
    # and a service certificate too; the device itself connects
    refused(broker.device_port, Creds(broker.ca, "floe-uploader"), "alert unknown ca")
    assert tls_connect(broker.device_port, Creds(broker.ca, "acme.gw-0003")) == 0


def test_claim_listener_allows_only_enrollment_topics(broker):
    claim = Creds(broker.ca, "claim-gw-0001")
    other = Creds(broker.ca, "claim-gw-0002")
    enrolld = Creds(broker.ca, "floe-enrolld")
    dev = Creds(broker.ca, "acme.gw-0001")
    refused(broker.claim_port, dev, "alert unknown ca")
    # writes (client id = CN: a second session of the same claim would take this one over,
    # so the publishing checks come before the subscriber below connects)
    with floe_mqtt.Subscriber("127.0.0.1", broker.service_port,
                              "$share/enroll/floe/enroll/v1/+/req", tls=enrolld.tls) as svc:
        assert mosquitto_pub(broker, broker.claim_port, claim, "floe/enroll/v1/claim-gw-0001/req",
                             "csr") < 0x80
        [req] = svc.wait_for(1)
        assert req.topic == "floe/enroll/v1/claim-gw-0001/req" and req.payload == b"csr"
        svc.take()
        for topic in ("floe/v1/acme.gw-0001/batch", "floe/v1/claim-gw-0001/batch",
                      "floe/v1/acme.gw-0001/status", "floe/enroll/v1/claim-gw-0002/req",
                      "floe/enroll/v1/claim-gw-0001/res"):
            assert mosquitto_pub(broker, broker.claim_port, claim, topic) == NOT_AUTHORIZED, \
                topic
        assert quiet(svc) == []
    # reads: device data, other claims' requests and responses never reach a claim
    with floe_mqtt.Subscriber("127.0.0.1", broker.claim_port,
                              ["floe/enroll/v1/claim-gw-0001/res/#", "floe/v1/#",
                               "floe/enroll/v1/+/req", "floe/enroll/v1/+/res"],
                              tls=claim.tls) as sub:
        assert mosquitto_pub(broker, broker.device_port, dev, "floe/v1/acme.gw-0001/batch") < \
            0x80
        assert mosquitto_pub(broker, broker.claim_port, other,
                             "floe/enroll/v1/claim-gw-0002/req") < 0x80
        assert mosquitto_pub(broker, broker.service_port, enrolld,
                             "floe/enroll/v1/claim-gw-0002/res", "not yours") < 0x80
        assert quiet(sub) == []
        # its own response (and a per-request sub-topic) does
        for topic in ("floe/enroll/v1/claim-gw-0001/res", "floe/enroll/v1/claim-gw-0001/res/n1"):
            assert mosquitto_pub(broker, broker.service_port, enrolld, topic, "cert") < 0x80
        # "res" matches two of the subscriptions, so it may come twice before "res/n1" does:
        # wait for the topics, not for a number of messages
        want = ["floe/enroll/v1/claim-gw-0001/res", "floe/enroll/v1/claim-gw-0001/res/n1"]
        deadline = time.monotonic() + 10
        while sorted({m.topic for m in sub.messages}) != want and time.monotonic() < deadline:
            time.sleep(0.02)
        got = sorted({m.topic for m in sub.take()})
        assert got == want
    # the enrollment daemon may not publish device data
    assert mosquitto_pub(broker, broker.service_port, enrolld, "floe/v1/acme.gw-0001/ack") == \
        NOT_AUTHORIZED


def test_revoked_device_is_refused_after_crl_and_reload(broker):
    ca = broker.ca
    ident = "acme.gw-0900"
    ca.run("issue-device", ident)
    dev, other = Creds(ca, ident), Creds(ca, "acme.gw-0003")
    assert tls_connect(broker.device_port, dev) == 0
    ca.run("revoke", "--identity", ident, "--reason", "keyCompromise")
    ca.run("crl", "--out", broker.out)
    # until the broker reloads, it still has the old CRL
    assert tls_connect(broker.device_port, dev) == 0
    broker.reload()
    refused(broker.device_port, dev, "alert certificate revoked")
    assert tls_connect(broker.device_port, other) == 0
    # and the same after a restart
    broker.restart()
    refused(broker.device_port, dev, "alert certificate revoked")
    assert tls_connect(broker.device_port, other) == 0


def test_revoked_claim_is_refused_on_the_claim_listener(broker):
    ca = broker.ca
    ca.run("issue-claim", "gw-0950", "--allow", "acme.gw-0950")
    claim = Creds(ca, "claim-gw-0950")
    assert tls_connect(broker.claim_port, claim) == 0
    ca.run("revoke", "--identity", "claim-gw-0950")
    ca.run("crl", "--ca", "claim", "--out", broker.out)
    broker.reload()
    refused(broker.claim_port, claim, "alert certificate revoked")
    assert tls_connect(broker.claim_port, Creds(ca, "claim-gw-0002")) == 0


def test_expired_device_is_refused(broker):
    ca = broker.ca
    ca.run("issue-device", "acme.gw-0960", "--validity", "2s")
    dev = Creds(ca, "acme.gw-0960")
    assert tls_connect(broker.device_port, dev) == 0
    time.sleep(2.5)
    refused(broker.device_port, dev, "alert certificate expired")


def test_an_expired_crl_locks_every_device_out_until_renewed(broker):
    """The pitfall the CRL schedule exists for: past nextUpdate, nobody connects."""
    ca = broker.ca
    dev = Creds(ca, "acme.gw-0003")
    assert tls_connect(broker.device_port, dev) == 0
    ca.run("crl", "--ca", "device", "--next-update", "1s", "--out", broker.out)
    broker.reload()
    time.sleep(2.2)
    with pytest.raises(ssl.SSLError, match="alert"):
        tls_connect(broker.device_port, dev)
    ca.run("crl", "--ca", "device", "--out", broker.out)
    broker.reload()
    assert tls_connect(broker.device_port, dev) == 0
