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
