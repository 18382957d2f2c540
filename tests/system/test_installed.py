"""The installed Debian packages at work (issue 7; docs/packaging.md, "Installed-package test").

Runs what `apt-get install ./floe-*.deb` put on this machine, never the build tree: the
programs, configuration files and users come from the installed units (ExecStart=, User=,
Group=, UMask=, WatchdogSec=), and each program must belong to the package whose .install
file names it. With `floe-ca` (as the user floe-enrolld, like docs/packaging.md says) a PKI
and the broker configuration; mosquitto running that configuration; floe-enrolld,
floe-uploader and two sim-board floe-agents run as their system users with no capabilities and
no_new_privs, each from its installed conffile plus a drop-in that only points it at the
test's broker, certificates and directories: the uploader and the first agent through
/etc/floe/<name>.conf.d/, the second agent (which enrolls by claim through floe-enrolld)
through a symlink to /etc/floe/agent.conf with a drop-in directory of its own. Each daemon
gets a NOTIFY_SOCKET and must say READY=1 from its main process (Type=notify,
NotifyAccess=main). Then scripts/lake-query (DuckDB, with the installed floe-lake) must find
both agents' readings, the readings published on each gateway's local broker, no row twice,
and exactly the batches the uploader's ledger committed.

Needs root and the installed packages: scripts/ci-installed installs them and runs this with
FLOE_INSTALLED=1. Skipped without FLOE_INSTALLED=1 (so `make check` skips it); with it, a
missing piece is a failure. Everything it adds (processes, the temporary directory, the
drop-ins under /etc/floe) is removed at the end, pass or fail.
"""

import json
import os
import pwd
import re
import shlex
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from conftest import Mosquitto, free_port, run, terminate
from test_floe_ca import FloeBroker
from uploader_run import ledger_streams

ROOT = Path(__file__).resolve().parents[2]
PACKAGING = ROOT / "packaging" / "debian"
UNITS = Path("/lib/systemd/system")
DROPIN = "99-floe-installed-test.conf"
SETPRIV = "/usr/bin/setpriv"
ROWS_TIMEOUT = 180
PROBES = 20  # readings published on each gateway's local broker

pytestmark = pytest.mark.skipif(
    os.environ.get("FLOE_INSTALLED") != "1",
    reason="FLOE_INSTALLED=1 not set: this test runs the installed Debian packages "
    "(scripts/ci-installed builds, installs and purges them, as root)")


def packaged_programs():
    """{program name: (package, installed path)} from packaging/debian/*.install."""
    out = {}
    for install in sorted(PACKAGING.glob("*.install")):
        for line in install.read_text().splitlines():
            words = line.split()
            if len(words) == 1 and re.fullmatch(r"usr/s?bin/[^/]+", words[0]):
                out[words[0].rsplit("/", 1)[1]] = (install.stem, "/" + words[0])
    return out


def seconds(value):
    m = re.fullmatch(r"(\d+)(s|min)", value)
    assert m, f"WatchdogSec={value}: expected Ns or Nmin"
    return int(m.group(1)) * (60 if m.group(2) == "min" else 1)


class Unit:
    """What systemd would run for an installed unit: its [Service] keys."""

    def __init__(self, name):
        self.name = name
        self.path = UNITS / name
        assert self.path.is_file(), f"{self.path} is not installed"
        keys = {}
        section = None
        for line in self.path.read_text().splitlines():
            line = line.strip()
            if line.startswith("["):
                section = line
            elif section == "[Service]" and "=" in line and not line.startswith("#"):
                k, _, v = line.partition("=")
                keys.setdefault(k, v)
        self.argv = shlex.split(keys["ExecStart"])
        assert self.argv[1:2] == ["--config"] and len(self.argv) == 3, \
            f"{name}: ExecStart={keys['ExecStart']}: expected PROGRAM --config FILE"
        self.program, self.config = self.argv[0], self.argv[2]
        self.user, self.group = keys["User"], keys["Group"]
        self.umask = int(keys["UMask"], 8)
        self.watchdog_s = seconds(keys["WatchdogSec"])


class Notify:
    """A NOTIFY_SOCKET (abstract, so any user may send to it) that records each message with
    the sender's pid from SCM_CREDENTIALS, as systemd checks NotifyAccess=main."""

    def __init__(self):
        self.address = f"@floe-installed-{uuid.uuid4().hex}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind("\0" + self.address[1:])
        self.sock.setblocking(False)
        self.messages = []  # (pid, {key: value})

    def drain(self):
        while True:
            try:
                data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
            except BlockingIOError:
                return self.messages
            pid = None
            for level, kind, cdata in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("3i", cdata[:12])[0]
            fields = dict(line.split("=", 1) for line in data.decode(errors="replace")
                          .splitlines() if "=" in line)
            self.messages.append((pid, fields))

    def sent(self, pid, key, value=None):
        return [f for p, f in self.drain()
                if p == pid and key in f and (value is None or f[key] == value)]

    def close(self):
        self.sock.close()


def as_user(unit, argv):
    """argv run as the unit's user and group, without capabilities and with no_new_privs
    (User=, Group=, CapabilityBoundingSet=, NoNewPrivileges=): setpriv execs, so the pid is
    the program's own (what NotifyAccess=main compares)."""
    return [SETPRIV, f"--reuid={unit.user}", f"--regid={unit.group}", "--init-groups",
            "--no-new-privs", "--inh-caps=-all", "--bounding-set=-all", "--", *map(str, argv)]


def unit_env(unit, **extra):
    pw = pwd.getpwnam(unit.user)
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "HOME": pw.pw_dir, "USER": unit.user, "LOGNAME": unit.user, "SHELL": pw.pw_shell,
           "FLOE_LOG_TARGET": "stderr"}
    env.update(extra)
    return env


def run_as(unit, argv, ok=True, timeout=120):
    r = subprocess.run(as_user(unit, argv), capture_output=True, text=True, timeout=timeout,
                       env=unit_env(unit), umask=unit.umask, cwd="/")
    if ok:
        assert r.returncode == 0, f"{' '.join(map(str, argv))} as {unit.user}: exit " \
            f"{r.returncode}\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
    return r


class Daemon:
    """An installed daemon started the way its unit starts it (ExecStart=, with --config
    replaced by config when given), as the unit's user, with the unit's umask, a
    NOTIFY_SOCKET and WATCHDOG_USEC; its standard error in a log file."""

    def __init__(self, site, unit, name, config=None):
        self.unit = unit
        self.name = name
        self.config = str(config or unit.config)
        self.log_path = site.base / "log" / f"{name}.log"
        self.notify = Notify()
        self.proc = None
        site.daemons.append(self)

    def start(self, ready="subscribed to", timeout=60):
        env = unit_env(self.unit, NOTIFY_SOCKET=self.notify.address,
                       WATCHDOG_USEC=str(self.unit.watchdog_s * 1000000))
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                as_user(self.unit, [self.unit.program, "--config", self.config]),
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                umask=self.unit.umask, cwd="/", start_new_session=True)
        deadline = time.monotonic() + timeout
        while not self.notify.sent(self.proc.pid, "READY", "1") or \
                (ready and ready not in self.log_text()):
            assert self.proc.poll() is None, \
                f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}"
            assert time.monotonic() < deadline, \
                f"{self.name}: no READY=1 from pid {self.proc.pid} or no {ready!r} in " \
                f"{timeout} s; notifications {self.notify.messages}\n{self.log_tail()}"
            time.sleep(0.1)
        return self

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n=40):
        return "\n".join(self.log_text().splitlines()[-n:])

    def stop(self, timeout=60):
        """SIGTERM by pid, SIGKILL after timeout; the exit status (None if killed)."""
        if self.proc is None:
            return None
        rc = terminate(self.proc, timeout)
        return rc

    def close(self):
        self.stop(timeout=30)
        self.notify.close()


def conf_text(sections):
    out = ["# scripts/ci-installed, tests/system/test_installed.py: remove after the test"]
    for name, keys in sections.items():
        out.append(f"[{name}]")
        out.extend(f"{k} = {v}" for k, v in keys.items())
        out.append("")
    return "\n".join(out)


def owned_dir(path, user, mode):
    path.mkdir(parents=True, exist_ok=True)
    pw = pwd.getpwnam(user)
    os.chown(path, pw.pw_uid, pw.pw_gid)
    path.chmod(mode)
    return path


def give(src, dst, user, mode=0o600):
    """A copy of src owned by user: a key handed to a daemon (or a credential systemd copied
    for it)."""
    shutil.copyfile(src, dst)
    pw = pwd.getpwnam(user)
    os.chown(dst, pw.pw_uid, pw.pw_gid)
    Path(dst).chmod(mode)
    return dst


class Site:
    """A temporary directory the daemons' users can reach, the drop-ins written under /etc
    (removed by close(), with the directories made for them), the daemons and brokers."""

    def __init__(self):
        self.base = Path(tempfile.mkdtemp(prefix="floe-installed-"))
        self.base.chmod(0o755)  # each daemon's own directory below is its user's
        (self.base / "log").mkdir()
        self.dropins = []  # files written
        self.made_dirs = []  # drop-in directories that did not exist
        self.daemons = []
        self.brokers = []

    def dropin(self, config, sections):
        d = Path(f"{config}.d")
        if not d.is_dir():
            d.mkdir(mode=0o755)
            self.made_dirs.append(d)
        path = d / DROPIN
        self.dropins.append(path)
        path.write_text(conf_text(sections))
        path.chmod(0o644)
        return path

    def close(self):
        errors = []
        for daemon in reversed(self.daemons):
            try:
                daemon.close()
            except Exception as e:  # noqa: BLE001 - clean up the rest all the same
                errors.append(f"{daemon.name}: {e}")
        for broker in reversed(self.brokers):
            broker.stop()
        for path in self.dropins:
            path.unlink(missing_ok=True)
        for d in reversed(self.made_dirs):
            try:
                d.rmdir()
            except OSError as e:
                errors.append(f"{d}: {e}")
        shutil.rmtree(self.base, ignore_errors=True)
        assert not errors, errors


@pytest.fixture(scope="module")
def installed():
    """The installed programs (checked against the packages) and units."""
    assert os.geteuid() == 0, "FLOE_INSTALLED=1: run as root (scripts/ci-installed)"
    for tool in (SETPRIV, shutil.which("dpkg-query") or "dpkg-query", "/usr/sbin/mosquitto",
                 shutil.which("node") or "node"):
        assert os.access(tool, os.X_OK), f"{tool} missing"
    assert (ROOT / "tests" / "node" / "node_modules" / "@duckdb").is_dir(), \
        "DuckDB for node missing (scripts/install-deps)"
    programs = packaged_programs()
    assert {"floe-agent", "floe-uploader", "floe-ca", "floe-enrolld", "floe-lake"} <= \
        set(programs), programs
    for name, (package, path) in programs.items():
        assert os.access(path, os.X_OK), f"{path} ({package}) is not installed"
        owner = run("dpkg-query", "-S", path).stdout.split(":")[0]
        assert owner == package, f"{path} belongs to {owner}, not {package}"
    units = {n: Unit(f"{n}.service") for n in ("floe-agent", "floe-uploader", "floe-enrolld")}
    for name, unit in units.items():
        assert unit.program == programs[name][1], \
            f"{unit.path}: ExecStart={unit.program}, the package installs {programs[name][1]}"
        assert Path(unit.config).is_file(), f"{unit.path}: no {unit.config}"
        conffiles = run("dpkg-query", "-W", "-f=${Conffiles}", programs[name][0]).stdout
        assert f" {unit.config} " in conffiles, \
            f"{unit.config} is not a conffile of {programs[name][0]}: {conffiles}"
        pwd.getpwnam(unit.user)
    if Path("/run/systemd/system").is_dir():
        # systemd runs: a unit (re)starting now would read the test's drop-ins
        for unit in units.values():
            state = run("systemctl", "is-active", unit.name, ok=False).stdout.strip()
            assert state in ("inactive", "failed", "unknown"), \
                f"{unit.name} is {state}: stop it first (systemctl stop {unit.name})"
    return {"programs": {n: p for n, (_, p) in programs.items()}, "units": units}


def issue(site, ca_unit, floe_ca, *args):
    return run_as(ca_unit, [floe_ca, "--dir", site.ca, *args])


@pytest.fixture(scope="module")
def site(installed):
    """PKI, broker configuration and mosquitto; every daemon's directory and drop-in."""
    s = Site()
    try:
        units, floe_ca = installed["units"], installed["programs"]["floe-ca"]
        enrolld = units["floe-enrolld"]
        # The CA directory is floe-enrolld's (the unit's StateDirectory=floe-ca); every
        # floe-ca command runs as that user.
        s.ca = owned_dir(s.base / "ca-home", enrolld.user, 0o700) / "ca"
        issue(s, enrolld, floe_ca, "init")
        for svc in ("floe-enrolld", "floe-uploader"):
            issue(s, enrolld, floe_ca, "issue-service", svc)
        issue(s, enrolld, floe_ca, "issue-device", "acme.gw-0001")
        issue(s, enrolld, floe_ca, "issue-claim", "gw-0002", "--tenant", "acme", "--allow",
              "acme.gw-0002")
        issued = s.ca / "issued"
        root_ca = s.ca / "root" / "ca.pem"

        out = owned_dir(s.base / "broker", enrolld.user, 0o755)
        for attempt in range(3):
            s.ports = (free_port(), free_port(), free_port())
            issue(s, enrolld, floe_ca, "broker-config", "--out", out, "--hostname",
                  "localhost", "--bind", "127.0.0.1", "--ports", ",".join(map(str, s.ports)),
                  "--user", "root")
            broker = FloeBroker(s.base / f"mosquitto-{attempt}", out / "mosquitto.conf",
                                s.ports)
            s.brokers.append(broker)
            try:
                broker.start()
                break
            except pytest.fail.Exception as e:
                s.brokers.remove(broker)
                if "Address already in use" not in str(e) or attempt == 2:
                    raise
        device_port, claim_port, service_port = s.ports

        # floe-enrolld: the installed enrolld.conf, its CA directory and the broker.
        s.dropin(enrolld.config, {"enrolld": {"ca_dir": s.ca},
                                  "broker": {"host": "127.0.0.1", "port": service_port}})

        # floe-uploader: the service identity as systemd's credential copy would be (the
        # unit's user may read it), the state directory as StateDirectory= makes it.
        up = units["floe-uploader"]
        s.up_dir = owned_dir(s.base / "uploader", up.user, 0o750)
        s.up_state = owned_dir(s.up_dir / "state", up.user, 0o750)
        ca = give(root_ca, s.up_dir / "ca.pem", up.user, 0o644)
        cert = give(issued / "floe-uploader.chain.pem", s.up_dir / "uploader.chain.pem",
                    up.user, 0o400)
        key = give(issued / "floe-uploader.key", s.up_dir / "uploader.key", up.user, 0o400)
        s.metrics_port = free_port()
        s.warehouse = f"file://{s.up_state / 'warehouse'}"
        s.catalog = s.up_state / "catalog.db"
        s.dropin(up.config, {
            "broker": {"host": "127.0.0.1", "port": service_port, "ca_file": ca,
                       "cert_file": cert, "key_file": key},
            "lake": {"warehouse": s.warehouse, "catalog": s.catalog},
            "metrics": {"listen": f"127.0.0.1:{s.metrics_port}"},
        })

        # Two gateways, each with its local broker. acme.gw-0001: a device certificate, the
        # installed agent.conf and a drop-in in /etc/floe/agent.conf.d. acme.gw-0002: a claim
        # (it enrolls through floe-enrolld and keeps its key in its state directory), the
        # installed agent.conf through a symlink whose drop-in directory is its own.
        ag = units["floe-agent"]
        s.agents = {}
        for n, identity in ((1, "acme.gw-0001"), (2, "acme.gw-0002")):
            d = owned_dir(s.base / f"agent-{n}", ag.user, 0o700)
            state = owned_dir(d / "state", ag.user, 0o700)
            local = Mosquitto(s.base / f"local-{n}", conf_global="log_type subscribe")
            s.brokers.append(local)
            local.start()
            sections = {
                "agent": {"state_dir": state, "board": "sim"},
                "local": {"port": local.port},
                "uplink": {"host": "127.0.0.1", "port": device_port,
                           "ca_file": give(root_ca, d / "ca.pem", ag.user, 0o644)},
            }
            if n == 1:
                sections["uplink"].update(
                    cert_file=give(issued / f"{identity}.chain.pem", d / "device.chain.pem",
                                   ag.user),
                    key_file=give(issued / f"{identity}.key", d / "device.key", ag.user))
                config = ag.config
            else:
                sections["agent"]["identity"] = identity
                sections["enroll"] = {
                    "claim_cert": give(issued / "claim-gw-0002.chain.pem",
                                       d / "claim.chain.pem", ag.user),
                    "claim_key": give(issued / "claim-gw-0002.key", d / "claim.key", ag.user),
                    "port": claim_port}
                etc = s.base / f"etc-agent-{n}"
                etc.mkdir(mode=0o755)
                config = etc / Path(ag.config).name
                config.symlink_to(ag.config)
            s.dropin(config, sections)
            s.agents[identity] = {"config": config, "state": state, "local": local}
        yield s
    finally:
        s.close()


def test_units_verify(installed):
    """systemd-analyze verify of each installed unit: silent, exit 0 (its programs, /bin/kill
    and its Documentation= pages are where the unit says)."""
    for unit in installed["units"].values():
        r = run("systemd-analyze", "verify", unit.name, ok=False)
        out = (r.stdout + r.stderr).strip()
        assert r.returncode == 0 and not out, \
            f"systemd-analyze verify {unit.name}: exit {r.returncode}\n{out}"


def test_check_config(installed, site):
    """Each daemon's --check-config, as its user, on the installed conffile with the drop-in:
    valid, and what it reports comes from both (the packaged file and the drop-in)."""
    units = installed["units"]
    ag = units["floe-agent"]
    for identity, a in site.agents.items():
        r = run_as(ag, [ag.program, "--check-config", "--config", a["config"]])
        assert f"configuration valid (identity {identity}, board sim)" in r.stdout, r.stdout
    up = units["floe-uploader"]
    r = run_as(up, [up.program, "--check-config", "--config", up.config])
    assert "configuration valid" in r.stdout, r.stdout
    # the port from the drop-in, the client id from the packaged uploader.conf
    assert f"127.0.0.1:{site.ports[2]} as floe-uploader," in r.stdout, r.stdout
    assert f"metrics     http://127.0.0.1:{site.metrics_port}/metrics" in r.stdout, r.stdout
    en = units["floe-enrolld"]
    r = run_as(en, [en.program, "--check-config", "--config", en.config])
    assert "configuration valid" in r.stdout and f"127.0.0.1:{site.ports[2]}" in r.stdout, \
        r.stdout

    # without the drop-ins, the packaged files alone are not enough (they name /etc/floe's
    # certificates): so the checks above did read the drop-ins
    dropin = Path(f"{ag.config}.d") / DROPIN
    text = dropin.read_text()
    dropin.unlink()
    try:
        r = run_as(ag, [ag.program, "--check-config", "--config", ag.config], ok=False)
        assert r.returncode == 1 and "cert_file" in r.stdout + r.stderr, r.stdout + r.stderr
    finally:
        dropin.write_text(text)
        dropin.chmod(0o644)


def lake_query(installed, site, sql):
    """scripts/lake-query --json with the installed floe-lake."""
    env = dict(os.environ, FLOE_BIN=str(Path(installed["programs"]["floe-lake"]).parent))
    r = subprocess.run([str(ROOT / "scripts" / "lake-query"), "--warehouse", site.warehouse,
                        "--catalog", str(site.catalog), "--json", sql], capture_output=True,
                       text=True, timeout=300, env=env)
    if r.returncode != 0 and "no rows committed yet" in r.stderr:
        return None
    assert r.returncode == 0, f"lake-query: exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    return json.loads(r.stdout)


def live_tables(installed, site):
    """The tables with live data files, by the installed floe-lake."""
    lake = installed["programs"]["floe-lake"]
    out = []
    for table in ("events", "aggregates"):
        r = run(lake, "files", "--warehouse", site.warehouse, "--catalog", site.catalog,
                "--table", f"floe.{table}", "--json", ok=False, timeout=300)
        if r.returncode == 0 and r.stdout.strip():
            out.append(table)
    return out


PER_IDENTITY = ("SELECT tenant || '.' || device AS identity, count(*) AS n, "
                "count(*) FILTER (WHERE sensor = 'probe') AS probes "
                "FROM events GROUP BY ALL ORDER BY ALL")


def publish_probes(local):
    """PROBES readings on the gateway's broker once the agent subscribed to sensors/#."""
    import floe_mqtt

    deadline = time.monotonic() + 60
    while "sensors/#" not in local.log_text():
        assert time.monotonic() < deadline, f"no subscription to sensors/#:\n{local.log_tail()}"
        time.sleep(0.1)
    with floe_mqtt.Publisher(local.host, local.port) as pub:
        for i in range(PROBES):
            pub.publish("sensors/probe", json.dumps({"metric": "n", "value": i}).encode(), qos=1)


def check_files(paths, user, forbidden):
    """Each path is user's and has none of the mode bits forbidden(path)."""
    bad = []
    for p in paths:
        st = p.lstat()
        owner = pwd.getpwuid(st.st_uid).pw_name
        if owner != user or st.st_mode & forbidden(p):
            bad.append(f"{p}: {owner} {oct(st.st_mode & 0o7777)}")
    assert not bad, f"not {user}'s or with mode bits the unit's UMask= masks:\n" + \
        "\n".join(bad)


def test_rows_land(installed, site):
    """The installed daemons as their users: both gateways' readings land in floe.events,
    once each, and the daemons behave as their units expect (READY=1, exit 0 on SIGTERM,
    their files theirs)."""
    units = installed["units"]
    enrolld = Daemon(site, units["floe-enrolld"], "floe-enrolld").start()
    uploader = Daemon(site, units["floe-uploader"], "floe-uploader").start()
    agents = {}
    for identity, a in site.agents.items():
        agents[identity] = Daemon(site, units["floe-agent"], identity,
                                  config=a["config"]).start(ready=None)
    for identity, a in site.agents.items():
        publish_probes(a["local"])

    # rows of both gateways, the probes included, committed while everything runs
    deadline = time.monotonic() + ROWS_TIMEOUT
    while True:
        got = lake_query(installed, site, PER_IDENTITY) or []
        have = {r["identity"]: r for r in got}
        if all(i in have and int(have[i]["probes"]) >= PROBES for i in agents):
            break
        for d in (enrolld, uploader, *agents.values()):
            assert d.proc.poll() is None, f"{d.name} exited:\n{d.log_tail()}"
        assert time.monotonic() < deadline, \
            f"rows after {ROWS_TIMEOUT} s: {got}\n" + \
            "\n".join(f"--- {d.name}\n{d.log_tail(15)}" for d in (uploader, *agents.values()))
        time.sleep(2)

    # systemd stops the agents, then the uploader (it flushes what it holds), with SIGTERM
    for d in (*agents.values(), uploader, enrolld):
        rc = d.stop()
        assert rc == 0, f"{d.name}: exit {rc} on SIGTERM\n{d.log_tail()}"

    # the enrolled agent holds its own key and certificate in its state directory
    a2 = site.agents["acme.gw-0002"]["state"]
    enrolled = [p for p in a2.rglob("*") if p.is_file() and p.suffix == ".key"]
    assert enrolled, f"no enrolled key in {a2}: {sorted(p.name for p in a2.rglob('*'))}"

    # The daemons' files are their users', with the units' umasks: the agent's private (but
    # for the certificate it enrolled, public by design), the uploader's readable by its group
    # only (docs/packaging.md).
    for identity, a in site.agents.items():
        files = list(a["state"].rglob("*"))
        assert files, f"{identity}: nothing in its state directory"
        check_files(files, units["floe-agent"].user,
                    lambda p: 0o022 if p.suffix == ".pem" else units["floe-agent"].umask)
    lake_files = list(site.up_state.rglob("*"))
    assert any(p.suffix == ".parquet" for p in lake_files), lake_files
    check_files(lake_files, units["floe-uploader"].user, lambda p: units["floe-uploader"].umask)

    # The table, by DuckDB: both gateways, each probe exactly once, no row twice.
    got = lake_query(installed, site, """
SELECT
 (SELECT count(*) FROM events) AS events,
 (SELECT list(x) FROM (SELECT {'identity': tenant || '.' || device, 'n': count(*)} AS x
   FROM events GROUP BY tenant, device)) AS per_identity,
 (SELECT list(x) FROM (SELECT {'identity': tenant || '.' || device, 'sensor': sensor,
   'metric': metric, 'ts': ts, 'n': count(*)} AS x FROM events
   GROUP BY tenant, device, sensor, metric, ts HAVING count(*) > 1 LIMIT 10)) AS duplicates,
 (SELECT list(x) FROM (SELECT {'identity': tenant || '.' || device,
   'values': list(value ORDER BY value)} AS x FROM events WHERE sensor = 'probe'
   GROUP BY tenant, device)) AS probes,
 (SELECT count(DISTINCT sensor) FROM events WHERE sensor LIKE 'sim-%') AS sim_sensors
""")[0]
    print("installed: table", json.dumps(got, sort_keys=True))
    assert int(got["events"]) > 0
    per_identity = {x["identity"]: int(x["n"]) for x in got["per_identity"] or []}
    assert set(per_identity) == set(agents), per_identity
    assert not got["duplicates"], f"rows more than once: {got['duplicates']}"
    probes = {x["identity"]: [float(v) for v in x["values"]] for x in got["probes"] or []}
    assert probes == {i: [float(v) for v in range(PROBES)] for i in agents}, probes
    assert int(got["sim_sensors"]) > 0, "no sim-board readings"

    # exactly the batches the ledger committed, in the tables (events and aggregates)
    batches = {}
    for table in live_tables(installed, site):
        rows = lake_query(installed, site, (
            f"SELECT DISTINCT tenant || '.' || device AS identity, batch_epoch AS epoch, "
            f"batch_seq AS seq FROM {table}")) or []
        for r in rows:
            key = (r["identity"], int(r["epoch"]) % (1 << 64))
            batches.setdefault(key, set()).add(int(r["seq"]))
    committed = {k: v for k, v in ledger_streams(str(site.catalog)).items() if k[0] in agents}
    assert committed, "nothing in the uploader's ledger"
    assert batches == committed, f"tables {batches} != ledger {committed}"
