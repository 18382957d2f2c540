"""The Debian packages and systemd units (docs/packaging.md).

Builds the packages once with scripts/make-deb into a temporary directory (about 1.5 minutes;
DEB_BUILD_OPTIONS=nocheck: `make check` runs the unit tests itself), then checks them with the
tools Debian and systemd use: lintian (no error, no warning), `systemd-analyze security
--offline=yes` (exposure at most 2.0) and `systemd-analyze verify` (silent) on the units as
packaged, dpkg-deb on the contents, and the packaged conffiles with each packaged daemon's
--check-config. Skipped with the reason when the Debian tools are missing.
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import run
from pki import PKI

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ("git", "dpkg-buildpackage", "dpkg-deb", "dh", "lintian", "systemd-analyze")
MAX_EXPOSURE = 2.0
BUILD_TIMEOUT = 1800

# package -> what it must ship (paths inside the package)
PACKAGES = {
    "floe-agent": {
        "sbin": ["floe-agent"],
        "bin": [],
        "units": ["floe-agent.service"],
        "conffiles": ["/etc/floe/agent.conf"],
        "user": "floe-agent",
        "state": "floe-agent",
    },
    "floe-uploader": {
        "sbin": ["floe-uploader"],
        "bin": ["floe-batch", "floe-lake"],
        "units": ["floe-uploader.service"],
        "conffiles": ["/etc/floe/uploader.conf"],
        "user": "floe-uploader",
        "state": "floe-uploader",
    },
    "floe-ca": {
        "sbin": ["floe-enrolld"],
        "bin": ["floe-ca"],
        "units": ["floe-enrolld.service"],
        "conffiles": ["/etc/floe/enrolld.conf"],
        "user": "floe-enrolld",
        "state": "floe-ca",
    },
}
UNITS = [u for p in PACKAGES.values() for u in p["units"]]
MOSQUITTO_TEMPLATES = sorted(p.name for p in (ROOT / "packaging" / "mosquitto").glob("*.conf"))


def _missing_tools():
    missing = [t for t in TOOLS if not shutil.which(t)]
    return ", ".join(missing)


def _sanitizer_run():
    """`make check SANITIZE=1`: the packages are built without sanitizers whatever the caller
    builds, so they are checked once, by the plain `make check`."""
    return re.search(r"(^|\s)SANITIZE=1(\s|$)", os.environ.get("MAKEFLAGS", "")) is not None


pytestmark = [
    pytest.mark.skipif(bool(_missing_tools()),
                       reason=f"Debian packaging tools missing: {_missing_tools()} "
                       "(apt-get install dpkg-dev debhelper lintian)"),
    pytest.mark.skipif(_sanitizer_run(),
                       reason="make check SANITIZE=1: the packages (built without sanitizers) "
                       "are checked by the plain make check"),
]


class Built:
    """The packages of one make-deb run, and their contents unpacked into one tree."""

    def __init__(self, out, tree):
        self.out = out
        self.tree = tree
        self.debs = {}
        for deb in sorted(out.glob("*.deb")):
            name = deb.name.split("_")[0]
            self.debs[name] = deb
        changes = sorted(out.glob("*.changes"))
        assert len(changes) == 1, f"one .changes expected in {out}: {changes}"
        self.changes = changes[0]

    def contents(self, package):
        """Paths in the package (./usr/sbin/x -> /usr/sbin/x), directories with a slash."""
        r = run("dpkg-deb", "-c", self.debs[package])
        paths = []
        for line in r.stdout.splitlines():
            path = line.split(None, 5)[5]
            path = path.split(" -> ")[0]
            paths.append(path[1:] if path.startswith("./") else path)
        return paths

    def field(self, package, name):
        return run("dpkg-deb", "-f", self.debs[package], name).stdout.strip()

    def control_file(self, package, name):
        r = run("dpkg-deb", "-I", self.debs[package], name, ok=False)
        return r.stdout if r.returncode == 0 else None


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    base = tmp_path_factory.mktemp("deb")
    out = base / "out"
    env = dict(os.environ)
    opts = env.get("DEB_BUILD_OPTIONS", "").split()
    env["DEB_BUILD_OPTIONS"] = " ".join(o for o in opts if o != "nocheck") + " nocheck"
    env["TMPDIR"] = str(base)
    r = subprocess.run([str(ROOT / "scripts" / "make-deb"), "--out", str(out)],
                       capture_output=True, text=True, timeout=BUILD_TIMEOUT, env=env, cwd=ROOT)
    log = base / "make-deb.log"
    log.write_text(r.stdout + r.stderr)
    assert r.returncode == 0, \
        f"scripts/make-deb failed (log {log}):\n{(r.stdout + r.stderr)[-6000:]}"
    tree = base / "tree"
    tree.mkdir()
    b = Built(out, tree)
    for package in PACKAGES:
        assert package in b.debs, f"no {package} package in {sorted(b.debs)}"
        assert f"{package}-dbgsym" in b.debs, f"no {package}-dbgsym package"
        run("dpkg-deb", "-x", b.debs[package], tree)
    return b


def test_lintian_no_errors_or_warnings(built):
    r = run("lintian", "-I", "-E", "--pedantic", "--show-overrides", "--fail-on", "none",
            built.changes, ok=False, timeout=600)
    assert r.returncode == 0, f"lintian failed to run:\n{r.stdout}\n{r.stderr}"
    lines = r.stdout.splitlines()
    bad = [line for line in lines if line.startswith(("E:", "W:"))]
    assert not bad, "lintian:\n" + "\n".join(bad)
    # every package was looked at: each carries one override (no init.d script, by design)
    for package in PACKAGES:
        assert any(line.startswith(f"O: {package}: ") for line in lines), \
            f"lintian reported nothing of {package}:\n{r.stdout}"


def _exposure(unit_path):
    r = run("systemd-analyze", "security", "--offline=yes", "--no-pager", unit_path, ok=False)
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+) (\w+)", r.stdout)
    assert m, f"no exposure level for {unit_path}:\n{r.stdout}\n{r.stderr}"
    return float(m.group(1)), m.group(2), r.stdout


@pytest.mark.parametrize("unit", UNITS)
def test_unit_exposure(built, unit):
    path = built.tree / "lib" / "systemd" / "system" / unit
    assert path.is_file(), f"{unit} not in the packages"
    level, verdict, report = _exposure(path)
    print(f"{unit}: exposure {level} {verdict}")
    assert level <= MAX_EXPOSURE, f"{unit}: exposure {level} {verdict} > {MAX_EXPOSURE}\n{report}"
    # what the daemons rely on (docs/packaging.md, "The units")
    text = path.read_text()
    for line in ("Type=notify", "NotifyAccess=main", "Restart=on-failure",
                 "ExecReload=/bin/kill -HUP $MAINPID", "ProtectSystem=strict",
                 "CapabilityBoundingSet=", "NoNewPrivileges=yes", "UMask=0"):
        assert re.search(rf"^{re.escape(line)}", text, re.M), f"{unit}: no {line}"
    assert re.search(r"^WatchdogSec=\d+(s|min)$", text, re.M), f"{unit}: no WatchdogSec="
    assert re.search(r"^ExecStart=/usr/s?bin/", text, re.M), f"{unit}: ExecStart"


def test_unit_exposure_measures(built, tmp_path):
    """The gate is not vacuous: the same unit without its sandbox scores far above 2.0."""
    path = built.tree / "lib" / "systemd" / "system" / "floe-agent.service"
    bare = tmp_path / "floe-agent.service"
    keep = ("[", "Description=", "Type=", "ExecStart=", "User=", "Group=")
    bare.write_text("\n".join(line for line in path.read_text().splitlines()
                              if line.startswith(keep)) + "\n")
    level, _, report = _exposure(bare)
    assert level > 5.0, report


@pytest.fixture(scope="module")
def verify_root(built, tmp_path_factory):
    """The packages over the host's units (sysinit.target & co.) and /bin/kill: what
    `systemd-analyze verify --root` needs to load a unit and check its commands."""
    root = tmp_path_factory.mktemp("verify")
    host_units = Path("/lib/systemd/system")
    if not (host_units / "sysinit.target").exists():
        pytest.skip(f"no systemd units in {host_units} (systemd not installed)")
    shutil.copytree(host_units, root / "lib" / "systemd" / "system", symlinks=True)
    shutil.copytree(built.tree, root, symlinks=True, dirs_exist_ok=True)
    for kill in ("/bin/kill", "/usr/bin/kill"):
        if os.path.exists(kill):
            (root / "bin").mkdir(exist_ok=True)
            shutil.copy2(kill, root / "bin" / "kill")
            break
    else:
        pytest.skip("no kill(1) on this machine (procps)")
    return root


@pytest.mark.parametrize("unit", UNITS)
def test_unit_verify(built, verify_root, unit):
    # man: the Documentation= pages must be among the packaged ones
    env = dict(os.environ, MANPATH=str(built.tree / "usr" / "share" / "man"))
    r = run("systemd-analyze", "verify", f"--root={verify_root}", unit, ok=False, env=env)
    out = (r.stdout + r.stderr).strip()
    assert r.returncode == 0 and not out, \
        f"systemd-analyze verify {unit}: exit {r.returncode}\n{out}"


def test_unit_verify_catches_mistakes(built, verify_root, tmp_path):
    """verify in this root fails on what it should: a missing program, an unknown key."""
    units = verify_root / "lib" / "systemd" / "system"
    unit = units / "floe-agent.service"
    original = unit.read_text()
    env = dict(os.environ, MANPATH=str(built.tree / "usr" / "share" / "man"))
    try:
        unit.write_text(original.replace("ExecStart=/usr/sbin/floe-agent",
                                         "ExecStart=/usr/sbin/floe-agent-missing"))
        r = run("systemd-analyze", "verify", f"--root={verify_root}", unit.name, ok=False,
                env=env)
        assert r.returncode != 0 and "floe-agent-missing" in r.stdout + r.stderr
        unit.write_text(original.replace("ProtectSystem=", "ProtectSystm="))
        r = run("systemd-analyze", "verify", f"--root={verify_root}", unit.name, ok=False,
                env=env)
        assert "ProtectSystm" in r.stdout + r.stderr
    finally:
        unit.write_text(original)


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_deb_contents(built, package):
    want = PACKAGES[package]
    paths = set(built.contents(package))
    for name in want["sbin"]:
        assert f"/usr/sbin/{name}" in paths, f"{package}: no /usr/sbin/{name}"
        assert f"/usr/share/man/man8/{name}.8.gz" in paths, f"{package}: no {name}(8)"
    for name in want["bin"]:
        assert f"/usr/bin/{name}" in paths, f"{package}: no /usr/bin/{name}"
        assert f"/usr/share/man/man1/{name}.1.gz" in paths, f"{package}: no {name}(1)"
    # every program has its page, whichever package it is in
    programs = {p.rsplit("/", 1)[1] for p in paths if re.match(r"/usr/s?bin/[^/]+$", p)}
    assert programs == set(want["sbin"] + want["bin"]), f"{package}: programs {programs}"
    for unit in want["units"]:
        assert f"/lib/systemd/system/{unit}" in paths, f"{package}: no unit {unit}"
    assert f"/usr/lib/sysusers.d/{package}.conf" in paths, f"{package}: no sysusers.d file"
    assert f"/usr/share/doc/{package}/copyright" in paths

    conffiles = built.control_file(package, "conffiles")
    assert conffiles is not None, f"{package}: no conffiles"
    assert sorted(conffiles.split()) == sorted(want["conffiles"]), conffiles
    for conffile in want["conffiles"]:
        assert conffile in paths

    postinst = built.control_file(package, "postinst") or ""
    assert f"systemd-sysusers ${{DPKG_ROOT:+--root=\"$DPKG_ROOT\"}} {package}.conf" in postinst
    assert "deb-systemd-helper" in postinst, f"{package}: units are not enabled"

    depends = built.field(package, "Depends")
    assert re.search(r"\bprocps\b", depends), depends
    assert "systemd-sysusers" in depends, depends
    assert built.field(package, "Architecture") != "all"

    sysusers = (built.tree / "usr" / "lib" / "sysusers.d" / f"{package}.conf").read_text()
    assert re.search(rf"^u {want['user']} - .* /var/lib/{want['state']}$", sysusers, re.M), \
        sysusers
    for unit in want["units"]:
        text = (built.tree / "lib" / "systemd" / "system" / unit).read_text()
        assert f"\nUser={want['user']}\n" in text
        assert f"\nStateDirectory={want['state']}\n" in text


def test_mosquitto_templates(built):
    paths = set(built.contents("floe-ca"))
    assert MOSQUITTO_TEMPLATES, "packaging/mosquitto has no templates"
    for name in MOSQUITTO_TEMPLATES:
        assert f"/usr/share/floe/mosquitto/{name}" in paths, f"no template {name}"


def _conf_with_dropin(tmp_path, package_conf, name, dropin):
    """The packaged conffile as FILE, a test drop-in in FILE.d/."""
    etc = tmp_path / "etc"
    (etc / f"{name}.conf.d").mkdir(parents=True)
    conf = etc / f"{name}.conf"
    shutil.copy(package_conf, conf)
    (etc / f"{name}.conf.d" / "50-test.conf").write_text(dropin)
    return conf


def test_conffiles_check_config(built, tmp_path):
    """Each packaged conffile passes its packaged daemon's --check-config once a drop-in points
    at test certificates and temporary directories: no key in them is unknown or malformed."""
    sbin = built.tree / "usr" / "sbin"
    etc = built.tree / "etc" / "floe"
    pki = PKI(tmp_path / "pki")
    dev = pki.device("acme.gw-0001")
    svc = pki.service()

    # alone, the agent's file is not enough: an uplink needs a certificate (docs/packaging.md)
    r = run(sbin / "floe-agent", "--check-config", "--config", etc / "agent.conf", ok=False)
    assert r.returncode == 1 and "cert_file" in r.stdout + r.stderr, r.stdout + r.stderr

    agent = _conf_with_dropin(tmp_path / "agent", etc / "agent.conf", "agent", (
        f"[agent]\nstate_dir = {tmp_path / 'agent-state'}\n"
        f"[uplink]\nca_file = {pki.ca}\ncert_file = {dev.cert}\nkey_file = {dev.key}\n"))
    r = run(sbin / "floe-agent", "--check-config", "--config", agent)
    assert "configuration valid (identity acme.gw-0001, board linux-generic)" in r.stdout

    uploader = _conf_with_dropin(tmp_path / "uploader", etc / "uploader.conf", "uploader", (
        f"[broker]\nca_file = {pki.ca}\ncert_file = {svc.cert}\nkey_file = {svc.key}\n"
        f"[lake]\nwarehouse = file://{tmp_path / 'warehouse'}\n"
        f"catalog = {tmp_path / 'catalog.db'}\n"))
    r = run(sbin / "floe-uploader", "--check-config", "--config", uploader)
    assert "configuration valid" in r.stdout
    assert "127.0.0.1:8885" in r.stdout, r.stdout

    ca_dir = tmp_path / "ca"
    floe_ca = built.tree / "usr" / "bin" / "floe-ca"
    run(floe_ca, "--dir", ca_dir, "init")
    run(floe_ca, "--dir", ca_dir, "issue-service", "floe-enrolld")
    enrolld = _conf_with_dropin(tmp_path / "enrolld", etc / "enrolld.conf", "enrolld",
                                f"[enrolld]\nca_dir = {ca_dir}\n")
    r = run(sbin / "floe-enrolld", "--check-config", "--config", enrolld)
    assert "configuration valid" in r.stdout and "127.0.0.1:8885" in r.stdout, r.stdout
