"""A test client of floe-enrolld's protocol (docs/enrollment.md), MQTT v5 with paho.

    key, csr = make_csr(tmp, "dev1")                       # openssl CLI; P-256 by default
    with EnrollClient(port, creds, "claim-batch-1") as c:  # claim or device certificate
        res = c.request({"identity": "acme.gw-1", "csr": csr, "token": tok})
        assert res["status"] == "ok"
        write_chain(tmp / "dev1.chain.pem", res)

Requests go to floe/enroll/v1/<id>/req with a response topic floe/enroll/v1/<id>/res/<nonce>
and random correlation data; the answer is matched by correlation data. Keys and CSRs come
from the openssl CLI, which can also make the odd ones the refusal tests need (RSA 1024,
P-192, Ed25519, CA:TRUE, hostile subjects).
"""

import json
import os
import re
import socket
import ssl
import subprocess
import threading
import time
import uuid
from pathlib import Path

import cbor2
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

import floe_mqtt
from conftest import free_port, terminate
from test_floe_ca import FloeBroker, FloeCA

KEY_ARGS = {
    "p256": ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
    "p384": ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"],
    "p521": ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-521"],
    "p192": ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-192"],
    "secp256k1": ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:secp256k1"],
    "rsa1024": ["-newkey", "rsa:1024"],
    "rsa2048": ["-newkey", "rsa:2048"],
    "rsa3072": ["-newkey", "rsa:3072"],
    "ed25519": ["-newkey", "ed25519"],
}


def make_csr(directory, name, key="p256", subject="/CN=device", exts=(), digest=None,
             key_file=None):
    """(key path, CSR PEM text) made by `openssl req`; key_file reuses an existing key."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    csr_path = directory / f"{name}.csr"
    args = ["openssl", "req", "-new", "-subj", subject, "-out", str(csr_path)]
    if key_file:
        args += ["-key", str(key_file)]
        key_path = Path(key_file)
    else:
        key_path = directory / f"{name}.key"
        args += KEY_ARGS[key] + ["-nodes", "-keyout", str(key_path)]
    if digest:
        args.append("-" + digest)
    for e in exts:
        args += ["-addext", e]
    r = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"{' '.join(args)}:\n{r.stderr}"
    os.chmod(key_path, 0o600)
    return key_path, csr_path.read_text()


def csr_der(pem):
    r = subprocess.run(["openssl", "req", "-outform", "DER"], input=pem.encode(),
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout


def write_chain(path, res):
    """What a device sends: its certificate and the chain from the response."""
    Path(path).write_text(res["certificate"] + res["chain"])
    return str(path)


class Credentials:
    """Certificate chain file + key + the root the broker is verified with."""

    def __init__(self, cert, key, ca):
        self.cert, self.key, self.ca = str(cert), str(key), str(ca)

    @property
    def tls(self):
        return {"ca_certs": self.ca, "certfile": self.cert, "keyfile": self.key,
                "tls_version": ssl.PROTOCOL_TLS_CLIENT}


class EnrollClient(floe_mqtt.Subscriber):
    """One MQTT v5 session as a claim (or a device) sending enrollment requests.

    request() sends one and waits for its answer; send() only sends and returns the
    correlation data, wait() then waits for that answer; raw() publishes any payload."""

    def __init__(self, port, creds, ident, host="127.0.0.1", timeout=15.0):
        self.ident = ident
        self.res_prefix = f"floe/enroll/v1/{ident}/res"
        super().__init__(host, port, self.res_prefix + "/#", tls=creds.tls, timeout=timeout,
                         prefix="enroll-test")
        self.answers = {}
        self._answers_cond = threading.Condition()
        self.client.on_message = self._on_answer

    def __enter__(self):
        super().__enter__()
        # paho leaves Nagle on: a request would wait for the broker's delayed ACK
        sock = self.client.socket()
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self

    def _on_answer(self, client, userdata, msg):
        props = getattr(msg, "properties", None)
        corr = getattr(props, "CorrelationData", None)
        ctype = getattr(props, "ContentType", None)
        payload = bytes(msg.payload)
        with self._answers_cond:
            self.answers.setdefault(corr, []).append((msg.topic, payload, ctype, props))
            self._answers_cond.notify_all()

    def raw(self, payload, response_topic=None, corr=None, topic=None, retain=False):
        """Publish payload as a request; returns the correlation data (None: none sent)."""
        props = Properties(PacketTypes.PUBLISH)
        if response_topic is not False:
            props.ResponseTopic = response_topic or f"{self.res_prefix}/{uuid.uuid4().hex[:16]}"
        if corr is not False:
            corr = corr or uuid.uuid4().bytes
            props.CorrelationData = corr
        else:
            corr = None
        info = self.client.publish(topic or f"floe/enroll/v1/{self.ident}/req", payload, qos=1,
                                   retain=retain, properties=props)
        info.wait_for_publish(self.timeout)
        return corr

    def send(self, body, fmt="json", **kwargs):
        if fmt == "cbor":
            payload = cbor2.dumps(body)
        else:
            payload = json.dumps(body).encode()
        return self.raw(payload, **kwargs)

    def wait(self, corr, timeout=None, count=1):
        """The decoded answers to corr (a dict, or a list when count > 1)."""
        timeout = self.timeout if timeout is None else timeout
        with self._answers_cond:
            ok = self._answers_cond.wait_for(lambda: len(self.answers.get(corr, [])) >= count,
                                             timeout)
            if not ok:
                raise floe_mqtt.MQTTError(f"{self.ident}: no answer within {timeout}s")
            got = self.answers[corr]
        out = [decode(payload, ctype) | {"_topic": topic, "_ctype": ctype}
               for topic, payload, ctype, _ in got]
        return out[0] if count == 1 else out

    def request(self, body, fmt="json", timeout=None, **kwargs):
        return self.wait(self.send(body, fmt=fmt, **kwargs), timeout=timeout)

    def answered(self, corr):
        with self._answers_cond:
            return len(self.answers.get(corr, []))


def decode(payload, ctype):
    if ctype == "application/cbor":
        return cbor2.loads(payload)
    assert ctype == "application/json", ctype
    return json.loads(payload)


# -- a PKI, a broker and floe-enrolld for tests and the benchmark ---------------------------


class Enrolld:
    """floe-enrolld started with a config file written from settings; stderr to a log."""

    def __init__(self, binary, workdir, ca_dir, service_port, name="enrolld", **settings):
        self.bin = str(binary)
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.conf = self.workdir / f"{name}.conf"
        self.log_path = self.workdir / f"{name}.log"
        sections = {
            "enrolld": {"ca_dir": str(ca_dir)},
            "broker": {"host": "127.0.0.1", "port": service_port, "backoff_min": "50ms",
                       "backoff_max": "500ms"},
            "limits": {},
        }
        for key, value in settings.items():
            section, _, k = key.partition("__")
            sections.setdefault(section, {})[k] = value
        self.write_config(sections)
        self.proc = None

    def write_config(self, sections):
        lines = []
        for section, keys in sections.items():
            lines.append(f"[{section}]")
            lines += [f"{k} = {v}" for k, v in keys.items()]
        self.conf.write_text("\n".join(lines) + "\n")

    def start(self, timeout=15.0, env=None):
        e = dict(os.environ, FLOE_LOG_TARGET="stderr", **(env or {}))
        before = self.log_text().count("subscribed to")
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([self.bin, "--config", str(self.conf)],
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
                                     env=e)
        self.wait_log("subscribed to", timeout=timeout, count=before + 1)
        return self

    def log_text(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_log(self, needle, timeout=10.0, count=1):
        deadline = time.monotonic() + timeout
        while self.log_text().count(needle) < count:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n"
                                     f"{self.log_text()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{needle!r} not in the {self.name} log:\n{self.log_text()}")
            time.sleep(0.02)

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=10.0):
        """SIGTERM; returns the exit status (SIGKILL and None after timeout)."""
        if self.proc is None:
            return None
        rc = terminate(self.proc, timeout)
        self.proc = None
        self.log.close()
        return rc


TOKEN_RE = re.compile(r"^(floe-et1-[0-9a-f]{32}) (\S+)$", re.M)


class Env:
    """A floe-ca CA directory, a mosquitto running the configuration `broker-config` wrote
    (broker_class: test_floe_ca.FloeBroker or a subclass), and floe-enrolld daemons on its
    service listener (enrolld(); defaults: their settings unless given)."""

    def __init__(self, bindir, base, defaults=None, broker_class=None):
        broker_class = broker_class or FloeBroker
        self.defaults = defaults or {}
        self.bindir = Path(bindir)
        self.base = Path(base)
        self.ca = FloeCA(str(self.bindir / "floe-ca"), self.base / "ca")
        self.ca.run("init")
        for svc in ("floe-enrolld", "floe-uploader"):
            self.ca.run("issue-service", svc)
        self.out = self.base / "broker"
        user = ["--user", "root"] if os.geteuid() == 0 else []
        for attempt in range(3):
            ports = (free_port(), free_port(), free_port())
            self.ca.run("broker-config", "--out", self.out, "--hostname", "localhost", "--bind",
                        "127.0.0.1", "--ports", ",".join(map(str, ports)), *user)
            self.broker = broker_class(self.base / f"run-{attempt}", self.out / "mosquitto.conf",
                                     ports)
            try:
                self.broker.start()
                break
            except pytest.fail.Exception as e:
                if "Address already in use" not in str(e) or attempt == 2:
                    raise
        self.root = self.ca.path("root", "ca.pem")
        self.keys = self.base / "keys"
        self.secrets = []  # tokens handed out: none may appear in a log

    def enrolld(self, name="enrolld", **settings):
        settings = {**self.defaults, **settings}
        return Enrolld(self.bindir / "floe-enrolld", self.base, self.ca.dir,
                       self.broker.service_port, name=name, **settings)

    def claim(self, name, allow=(), tokens_for=(), tenant="acme", extra=()):
        """A claim certificate; returns (Credentials, {identity: token})."""
        args = ["issue-claim", name, "--tenant", tenant, *extra]
        if len(allow) > 100:
            path = self.base / f"{name}.allow"
            path.write_text("\n".join(allow) + "\n")
            args += ["--allow-file", path]
        elif allow:
            args += ["--allow", ",".join(allow)]
        if tokens_for:
            args += ["--tokens-for", ",".join(tokens_for)]
        r = self.ca.run(*args)
        tokens = {ident: tok for tok, ident in TOKEN_RE.findall(r.stdout)}
        self.secrets += tokens.values()
        key, _, chain = self.ca.issued(f"claim-{name}")
        return Credentials(chain, key, self.root), tokens

    def client(self, creds, ident, device=False):
        port = self.broker.device_port if device else self.broker.claim_port
        return EnrollClient(port, creds, ident)

    def device(self, res, key, name):
        chain = write_chain(self.keys / f"{name}.chain.pem", res)
        return Credentials(chain, key, self.root)
