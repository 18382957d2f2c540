"""Fixtures for floe's system tests: real servers on loopback, state in tmp dirs.

Run as `make system` (or `/usr/bin/python3 -m pytest tests/system`); the Makefile passes
FLOE_BIN=<dir with the built binaries>.

- free_port(): a TCP port on 127.0.0.1 that was free a moment ago.
- mosquitto: a broker started for one test. Parametrise it indirectly:
      @pytest.mark.parametrize("mosquitto", [{"conf_extra": "max_queued_messages 0"}],
                               indirect=True)
  Keys: conf_extra (lines for the test listener, e.g. TLS), conf_global (lines before any
  listener, e.g. per_listener_settings), persistence (bool), anonymous (bool).
- mosquitto_module: the same, one broker per test module (parametrise with
  pytest.mark.parametrize(..., indirect=True, scope="module")).
- mosquitto_factory: start(**same keys, name=...) for tests that need several brokers.
- floe_bin: floe_bin("floe-batch") -> path of a built binary.
- tls_broker: mosquitto with the central broker's mTLS device listener (DESIGN.md "Identity
  and topics") and its own test PKI (pki.py); see TlsBroker. Parametrise indirectly with
  keys persistence (bool), tls_extra (lines for the TLS listener), acl_extra (ACL lines).
  tls_broker_module: one per test module (revocations then last for the whole module).
- consumer: a consumer.Consumer (the floe-uploader stand-in) connected to tls_broker with
  the service certificate.

A failing test gets the log of every broker still running attached to its report.
"""

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

MOSQUITTO = os.environ.get("MOSQUITTO", "/usr/sbin/mosquitto")
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
LOG_TAIL_LINES = 200

# Brokers started and not yet stopped, for failure reports.
_running = []


def free_port(host="127.0.0.1"):
    """A TCP port on host that nothing listened on when we asked the kernel for it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def run(*args, ok=True, timeout=120, **kwargs):
    """A command to its end, output captured; with ok, an exit status other than 0 fails the
    test with the command and the ends of its output."""
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True,
                       timeout=timeout, **kwargs)
    if ok:
        assert r.returncode == 0, f"{' '.join(map(str, args))}: exit {r.returncode}\n" \
            f"{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
    return r


def terminate(proc, timeout):
    """SIGTERM, then SIGKILL after timeout: proc's exit status, None if it had to be killed."""
    rc = proc.poll()
    if rc is None:
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            rc = None
    return rc


def port_accepts(host, port, timeout=0.2):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class Mosquitto:
    """A mosquitto broker in the foreground, bound to 127.0.0.1:port, its files in workdir.

    Attributes: host, port, workdir, conf_path, log_path, proc (None while stopped), pid.
    """

    def __init__(self, workdir, port=None, conf_extra="", conf_global="", persistence=False,
                 anonymous=True):
        self.host = "127.0.0.1"
        self._auto_port = port is None
        self.port = port or free_port()
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.conf_path = self.workdir / "mosquitto.conf"
        self.log_path = self.workdir / "mosquitto.log"
        self.conf_extra = conf_extra
        self.conf_global = conf_global
        self.persistence = persistence
        self.anonymous = anonymous
        self.proc = None
        self.starts = 0

    def __repr__(self):
        return f"<Mosquitto {self.host}:{self.port} pid={self.pid}>"

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def config(self):
        lines = ["# written by tests/system/conftest.py"]
        if os.geteuid() == 0:
            # mosquitto 2.0 started as root drops to user "mosquitto", which could not read
            # certificates or write persistence files in the test's tmp dir.
            lines.append("user root")
        lines += ["log_dest stderr", "log_type error", "log_type warning", "log_type notice",
                  "log_type information", "log_timestamp true",
                  "log_timestamp_format %Y-%m-%dT%H:%M:%S", "connection_messages true"]
        if self.persistence:
            lines += ["persistence true", f"persistence_location {self.workdir}/",
                      "autosave_interval 1"]
        else:
            lines.append("persistence false")
        if self.conf_global:
            lines.append(self.conf_global.strip("\n"))
        lines += [f"listener {self.port} {self.host}",
                  f"allow_anonymous {'true' if self.anonymous else 'false'}"]
        if self.conf_extra:
            lines.append(self.conf_extra.strip("\n"))
        return "\n".join(lines) + "\n"

    def start(self, timeout=START_TIMEOUT):
        """Start the broker and wait until it accepts connections on its port."""
        if self.running:
            raise RuntimeError(f"{self!r} already running")
        self.conf_path.write_text(self.config())
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(f"--- start #{self.starts} ---\n".encode())
            log.flush()
            self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf_path)],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         cwd=self.workdir, start_new_session=True)
        _running.append(self)
        deadline = time.monotonic() + timeout
        marker = f"--- start #{self.starts} ---"
        while True:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self._forget()
                if (self._auto_port and self.starts == 1 and
                        "Address already in use" in self.log_text().rsplit(marker, 1)[-1]):
                    # free_port() raced with another process: take another port, once.
                    self._auto_port = False
                    self.starts = 0
                    self.port = free_port()
                    return self.start(timeout=timeout)
                pytest.fail(f"mosquitto exited with {code} during start on port {self.port}:\n"
                            f"{self.log_tail()}", pytrace=False)
            # The port alone could belong to someone else: also wait for our own process to
            # say it is running.
            log = self.log_path.read_text(errors="replace")
            if " running" in log.rsplit(marker, 1)[-1] and port_accepts(self.host, self.port):
                return self
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"mosquitto not accepting on {self.host}:{self.port} after "
                            f"{timeout}s:\n{self.log_tail()}", pytrace=False)
            time.sleep(0.02)

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        """Stop the broker by its PID (SIGTERM, SIGKILL after timeout) and reap it."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._forget()

    def kill(self):
        """Stop the broker with SIGKILL: no clean shutdown, no persistence save."""
        self.stop(sig=signal.SIGKILL)

    def restart(self, timeout=START_TIMEOUT):
        """Stop and start again on the same port (clients must reconnect)."""
        self.stop()
        return self.start(timeout=timeout)

    def _forget(self):
        if self.proc is not None and self.proc.poll() is not None:
            self.proc = None
        if self in _running:
            _running.remove(self)

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines=LOG_TAIL_LINES):
        return "\n".join(self.log_text().splitlines()[-lines:])


class MosquittoFactory:
    """Starts brokers under one directory; close() stops all of them."""

    def __init__(self, basedir):
        self.basedir = Path(basedir)
        self.brokers = []

    def start(self, name=None, **kwargs):
        name = name or f"mosquitto-{len(self.brokers)}"
        broker = Mosquitto(self.basedir / name, **kwargs)
        self.brokers.append(broker)
        return broker.start()

    def close(self):
        for broker in reversed(self.brokers):
            broker.stop()


DEVICE_ACL = """\
# written by tests/system/conftest.py: DESIGN.md "Identity and topics"
# devices: username = client id = certificate CN = <tenant>.<device>
pattern write floe/v1/%u/batch
pattern read floe/v1/%u/ack
pattern write floe/v1/%u/status

# the uploader's service identity
user floe-uploader
topic read floe/v1/+/batch
topic write floe/v1/+/ack
topic read floe/v1/+/status
"""


class TlsBroker:
    """mosquitto as the central broker: an mTLS device listener on host:port and a plain
    anonymous listener on host:plain_port for local test tools, per_listener_settings true.

    The TLS listener trusts root + device-issuing intermediate, checks the intermediate's
    CRL, requires a client certificate, takes the CN as username and client id, allows
    TLS 1.2 and later, and applies DEVICE_ACL. Certificates come from self.pki (pki.PKI):
    device(identity) and service give pki.Credentials (cert = chain file, key, ca, .tls for
    paho/floe_mqtt); ca is the root that clients verify the broker with.
    """

    def __init__(self, workdir, persistence=False, tls_extra="", acl_extra=""):
        from pki import PKI

        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.pki = PKI(self.workdir / "pki")
        self.acl_path = self.workdir / "acl.conf"
        self.acl_path.write_text(DEVICE_ACL + (acl_extra.strip("\n") + "\n" if acl_extra else ""))
        self.tls_extra = tls_extra
        self.port = None  # chosen on the first start, kept across restarts
        self.broker = Mosquitto(self.workdir, persistence=persistence, anonymous=True,
                                conf_global="per_listener_settings true")
        self.host = self.broker.host
        self.reloads = 0

    def __repr__(self):
        return f"<TlsBroker {self.host}:{self.port} plain={self.plain_port} pid={self.pid}>"

    # attributes of the underlying broker
    plain_port = property(lambda self: self.broker.port)
    pid = property(lambda self: self.broker.pid)
    running = property(lambda self: self.broker.running)
    conf_path = property(lambda self: self.broker.conf_path)
    log_path = property(lambda self: self.broker.log_path)
    ca = property(lambda self: self.pki.ca, doc="root CA file: what clients verify us with")

    @property
    def service(self):
        """Credentials of the uploader's service identity (CN=floe-uploader)."""
        return self.pki.service()

    def device(self, identity, validity="valid", strict=True):
        """Credentials for a device identity, issued on first use (pki.PKI.device)."""
        return self.pki.device(identity, validity=validity, strict=strict)

    def consumer(self, **kwargs):
        """A consumer.Consumer with the service certificate, to use as a context manager."""
        from consumer import Consumer

        s = self.service
        return Consumer(self.host, self.port, s.ca, s.cert, s.key, **kwargs)

    def tls_listener(self):
        p = self.pki
        lines = [f"listener {self.port} {self.host}", "allow_anonymous false",
                 f"cafile {p.broker_cafile}", f"certfile {p.server_cert}",
                 f"keyfile {p.server_key}", f"crlfile {p.crl}", "require_certificate true",
                 "use_identity_as_username true", "use_username_as_clientid true",
                 "tls_version tlsv1.2", f"acl_file {self.acl_path}"]
        if self.tls_extra:
            lines.append(self.tls_extra.strip("\n"))
        return "\n".join(lines)

    def start(self, timeout=START_TIMEOUT):
        first = self.port is None
        for attempt in range(3):
            if first:
                self.port = free_port()
            self.broker.conf_extra = self.tls_listener()
            try:
                self.broker.start(timeout=timeout)
                break
            except pytest.fail.Exception as e:
                # free_port() raced with another process for the TLS port: take another.
                if not (first and attempt < 2 and "Address already in use" in str(e)):
                    raise
        # mosquitto opens every listener before it logs "running" (or exits): no TLS probe,
        # which would only leave a failed handshake in the log.
        return self

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        self.broker.stop(sig=sig, timeout=timeout)

    def kill(self):
        self.broker.kill()

    def restart(self, timeout=START_TIMEOUT):
        self.stop()
        return self.start(timeout=timeout)

    def reload(self, timeout=START_TIMEOUT):
        """SIGHUP: mosquitto re-reads the ACL file, certificates and CRL. Returns once the
        broker logged the reload; it handles no connection in between (one thread)."""
        if not self.running:
            return
        marker = f"--- start #{self.broker.starts} ---"
        before = self.log_text().rsplit(marker, 1)[-1].count("Reloading config.")
        self.broker.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while self.log_text().rsplit(marker, 1)[-1].count("Reloading config.") <= before:
            if not self.running or time.monotonic() > deadline:
                pytest.fail(f"mosquitto did not reload on SIGHUP:\n{self.log_tail()}",
                            pytrace=False)
            time.sleep(0.01)
        self.reloads += 1

    def revoke(self, identity):
        """Revoke identity's certificates, rewrite the CRL and make the broker load it.
        Connections already open stay open (mosquitto checks certificates at handshake)."""
        serials = self.pki.revoke(identity)
        self.reload()
        return serials

    def log_text(self):
        return self.broker.log_text()

    def log_tail(self, lines=LOG_TAIL_LINES):
        return self.broker.log_tail(lines)


def _tls_params(request):
    params = getattr(request, "param", None) or {}
    if not isinstance(params, dict):
        raise TypeError("parametrise tls_broker with a dict of TlsBroker arguments")
    return params


@pytest.fixture
def tls_broker(request, tmp_path):
    broker = TlsBroker(tmp_path / "tls-broker", **_tls_params(request))
    try:
        yield broker.start()
    finally:
        broker.stop()


@pytest.fixture(scope="module")
def tls_broker_module(request, tmp_path_factory):
    broker = TlsBroker(tmp_path_factory.mktemp("tls-broker-module"), **_tls_params(request))
    try:
        yield broker.start()
    finally:
        broker.stop()


@pytest.fixture
def consumer(tls_broker):
    """The uploader stand-in, subscribed to floe/v1/+/batch on tls_broker."""
    with tls_broker.consumer() as c:
        yield c


def _broker_params(request):
    params = getattr(request, "param", None) or {}
    if not isinstance(params, dict):
        raise TypeError("parametrise mosquitto with a dict of Mosquitto arguments")
    return params


@pytest.fixture
def mosquitto_factory(tmp_path):
    factory = MosquittoFactory(tmp_path)
    yield factory
    factory.close()


@pytest.fixture
def mosquitto(request, mosquitto_factory):
    return mosquitto_factory.start(name="mosquitto", **_broker_params(request))


@pytest.fixture(scope="module")
def mosquitto_module(request, tmp_path_factory):
    factory = MosquittoFactory(tmp_path_factory.mktemp("mosquitto-module"))
    try:
        yield factory.start(name="mosquitto", **_broker_params(request))
    finally:
        factory.close()


@pytest.fixture
def floe_bin():
    """floe_bin(name) -> path of a built floe binary under $FLOE_BIN."""
    bindir = os.environ.get("FLOE_BIN")
    if not bindir:
        pytest.skip("FLOE_BIN is not set: run through `make system` (or set FLOE_BIN to the "
                    "build directory, e.g. FLOE_BIN=$PWD/build/out)")

    def path(name):
        p = Path(bindir) / name
        if not (p.is_file() and os.access(p, os.X_OK)):
            pytest.fail(f"{name} not built: no executable {p} (FLOE_BIN={bindir})",
                        pytrace=False)
        return str(p)

    return path


def pytest_report_header(config):
    version = "not found"
    if shutil.which(MOSQUITTO):
        out = subprocess.run([MOSQUITTO, "-h"], capture_output=True, text=True)
        version = (out.stdout or out.stderr).splitlines()[0] if (out.stdout or out.stderr) \
            else "unknown"
    return [f"mosquitto: {version}", f"FLOE_BIN: {os.environ.get('FLOE_BIN', '(unset)')}"]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and report.when in ("setup", "call"):
        for broker in list(_running):
            report.sections.append((f"mosquitto log ({broker.host}:{broker.port}, "
                                    f"{broker.log_path})", broker.log_tail()))
