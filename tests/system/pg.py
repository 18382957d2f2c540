"""A throw-away PostgreSQL 15 server on 127.0.0.1 for system tests (registry, uplink, lake).

    from pg import pg_server, pg_database  # noqa: F401  (pytest fixtures)

    def test_x(pg_database):                  # a fresh database on the module's server
        uri = pg_database.uri                 # postgresql://floe:PASSWORD@127.0.0.1:PORT/NAME
        pg_database.psql("SELECT 1")          # admin SQL over the server's socket, as text
        pg_database.server.restart()          # every client connection is cut

The server runs as the `postgres` system user when the tests run as root (PostgreSQL refuses
root), with its data and socket in a mktemp directory owned by that user, on a free loopback
port, fsync off. TCP logins need the role's password (scram-sha-256), so a wrong password is
refused for real; the socket trusts local users (for psql as admin). Tests are skipped with the
reason when PostgreSQL 15 is not installed (Debian: postgresql, postgresql-client).
"""

import os
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import free_port

PG_BINDIR = Path(os.environ.get("PG_BINDIR", "/usr/lib/postgresql/15/bin"))
ROLE = "floe"
START_TIMEOUT = 30


def _as_postgres():
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def available():
    """None if a server can be started here, else why not."""
    if not (PG_BINDIR / "initdb").is_file():
        return f"PostgreSQL 15 is not installed ({PG_BINDIR / 'initdb'} missing)"
    if os.geteuid() == 0 and not shutil.which("runuser"):
        return "runuser(1) is missing: PostgreSQL cannot run as root"
    return None


class PgServer:
    """initdb + pg_ctl. Attributes: host, port, socket_dir, password, base (all its files)."""

    def __init__(self):
        self.host = "127.0.0.1"
        self.port = None
        self.password = secrets.token_hex(12)
        self.base = Path(tempfile.mkdtemp(prefix="floe-pg-"))
        self.data = self.base / "data"
        self.log_path = self.base / "postgresql.log"
        self.socket_dir = self.base
        self.running = False
        self.databases = 0

    def _run(self, args, **kwargs):
        return subprocess.run(_as_postgres() + [str(a) for a in args], capture_output=True,
                              text=True, timeout=120, **kwargs)

    def init(self):
        if os.geteuid() == 0:
            shutil.chown(self.base, "postgres", "postgres")
        pwfile = self.base / "pw"
        pwfile.write_text(self.password + "\n")
        if os.geteuid() == 0:
            shutil.chown(pwfile, "postgres", "postgres")
        r = self._run([PG_BINDIR / "initdb", "-D", self.data, "-U", ROLE, "-E", "UTF8",
                       "--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}",
                       "--no-sync"])
        pwfile.unlink()
        assert r.returncode == 0, f"initdb failed:\n{r.stdout}{r.stderr}"
        return self

    def start(self):
        """pg_ctl start -w; on the first start a free port (another if it was taken)."""
        first = self.port is None
        for attempt in range(3):
            if self.port is None:
                self.port = free_port()
            r = self._run([PG_BINDIR / "pg_ctl", "-D", self.data, "-l", self.log_path, "-w",
                           "-t", START_TIMEOUT, "start", "-o",
                           f"-k {self.socket_dir} -p {self.port} "
                           f"-c listen_addresses={self.host} -c fsync=off"])
            if r.returncode == 0:
                self.running = True
                return self
            if "could not bind" in self.log_tail() and attempt < 2 and first:
                self.port = None  # free_port() raced with another process
                continue
            pytest.fail(f"PostgreSQL did not start on port {self.port}:\n{r.stdout}{r.stderr}\n"
                        f"{self.log_tail()}", pytrace=False)

    def stop(self, mode="fast"):
        if not self.running:
            return
        r = self._run([PG_BINDIR / "pg_ctl", "-D", self.data, "-m", mode, "-w", "stop"])
        self.running = False
        assert r.returncode == 0, f"pg_ctl stop:\n{r.stdout}{r.stderr}"

    def restart(self, mode="fast"):
        """Stop (clients are disconnected) and start again on the same port."""
        self.stop(mode)
        return self.start()

    def close(self):
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.base, ignore_errors=True)

    def _psql_args(self, sql, db):
        return [str(PG_BINDIR / "psql"), "-h", str(self.socket_dir), "-p", str(self.port), "-U",
                ROLE, "-d", db, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", "-c", sql]

    def psql(self, sql, db="postgres"):
        """Runs sql as the admin role over the socket; stdout (unaligned, tuples only)."""
        r = subprocess.run(self._psql_args(sql, db), capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"psql {sql!r}:\n{r.stderr}"
        return r.stdout.strip()

    def psql_background(self, sql, db="postgres"):
        """psql running sql while the test goes on (a Popen: wait() for it)."""
        return subprocess.Popen(self._psql_args(sql, db), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)

    def uri(self, db, password=None, port=None, user=ROLE):
        pw = self.password if password is None else password
        return f"postgresql://{user}:{pw}@{self.host}:{port or self.port}/{db}"

    def create_database(self, name=None):
        self.databases += 1
        name = name or f"floe_test_{self.databases}"
        self.psql(f"CREATE DATABASE {name}")
        return PgDatabase(self, name)

    def log_tail(self, lines=60):
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except (FileNotFoundError, PermissionError):
            return ""

    def wait_connections(self, db, count, timeout=10.0):
        """Waits until db has count client connections (other than psql's own)."""
        deadline = time.monotonic() + timeout
        while True:
            n = int(self.psql("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                              f"'{db}' AND pid <> pg_backend_pid()"))
            if n == count:
                return
            assert time.monotonic() < deadline, f"{n} connections to {db}, not {count}"
            time.sleep(0.05)

    def terminate(self, db):
        """Ends every session on db from the server side (as a failover or an admin would)."""
        return int(self.psql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                             f"WHERE datname = '{db}' AND pid <> pg_backend_pid()"))


class PgDatabase:
    """One database on a PgServer: name, uri (with the password), psql(sql)."""

    def __init__(self, server, name):
        self.server = server
        self.name = name
        self.uri = server.uri(name)

    def psql(self, sql):
        return self.server.psql(sql, db=self.name)


@pytest.fixture(scope="module")
def pg_server():
    why = available()
    if why:
        pytest.skip(why)
    server = PgServer()
    try:
        yield server.init().start()
    finally:
        server.close()


@pytest.fixture
def pg_database(pg_server):
    """A fresh database for one test (the server is restarted if a test stopped it)."""
    if not pg_server.running:
        pg_server.start()
    return pg_server.create_database()
