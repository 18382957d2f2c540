"""The certificate registry on a real PostgreSQL 15 (lib/floe-sql-pg.c, docs/enrollment.md
"Registry on PostgreSQL"): the whole registry unit suite on it, two processes racing for the
same one-time tokens and rate limit, a long-lived client across server restarts and killed
sessions, clear login errors without the password, and floe-ca + two floe-enrolld daemons
sharing one PostgreSQL registry.

The long-lived client is `test-registry --serve LOCATION` (tests/unit/test-registry.c): one
command per stdin line, one answer line each. Rows are checked independently with psql.
"""

import hashlib
import os
import queue
import secrets
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import free_port
from pg import pg_database, pg_server  # noqa: F401  (fixtures)

KEY1 = "1" * 64
KEY2 = "2" * 64


def token():
    return "floe-et1-" + secrets.token_hex(16)


def token_hash(t):
    return hashlib.sha256(t.encode()).hexdigest()


@pytest.fixture
def registry_bin(floe_bin):
    return floe_bin("tests/test-registry")


class Client:
    """test-registry --serve LOCATION; call(cmd) -> its answer line."""

    def __init__(self, binary, location):
        self.proc = subprocess.Popen([binary, "--serve", location], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     bufsize=1)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.first = self.recv()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def send(self, cmd):
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()

    def recv(self, timeout=60):
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no answer within {timeout}s") from None
        assert line is not None, f"client exited: {self.proc.wait()}: {self.proc.stderr.read()}"
        return line

    def call(self, cmd, timeout=60):
        self.send(cmd)
        return self.recv(timeout)

    def ok(self, cmd):
        answer = self.call(cmd)
        assert answer.startswith("ok"), f"{cmd[:60]}: {answer}"
        return [int(x) for x in answer.split()[1:]]

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture
def clients(registry_bin):
    started = []

    def start(location):
        c = Client(registry_bin, location)
        started.append(c)
        return c

    yield start
    for c in started:
        c.close()


def add_tokens(client, claim, n):
    tokens = [token() for _ in range(n)]
    for t in tokens:
        client.ok(f"token {claim} {t}")
    return tokens


# -- the unit suite on PostgreSQL -------------------------------------------------------------


def test_registry_unit_suite_on_postgresql(pg_database, registry_bin):
    env = dict(os.environ, FLOE_TEST_REGISTRY=pg_database.uri, CMOCKA_MESSAGE_OUTPUT="STDOUT")
    r = subprocess.run([registry_bin], capture_output=True, text=True, timeout=300, env=env)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "registry backend: postgresql" in out
    assert "PASSED" in out and "FAILED" not in out
    # it ran there: every test's schema was created on this server and dropped again
    assert pg_database.psql("SELECT count(*) FROM pg_namespace WHERE nspname LIKE "
                            "'floe_test_%'") == "0"
    commits = int(pg_database.psql("SELECT xact_commit FROM pg_stat_database WHERE datname = "
                                   "current_database()"))
    assert commits > 100, commits


def test_unit_suite_refuses_a_location_that_is_not_postgresql(registry_bin, tmp_path):
    env = dict(os.environ, FLOE_TEST_REGISTRY=str(tmp_path / "r.db"))
    r = subprocess.run([registry_bin], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 2 and "FLOE_TEST_REGISTRY" in r.stderr


# -- two processes, one registry --------------------------------------------------------------


def test_two_processes_burn_each_token_exactly_once(pg_database, clients):
    n = 200
    a, b = clients(pg_database.uri), clients(pg_database.uri)
    assert (a.first, b.first) == ("ready", "ready")
    a.ok("claim claim-race acme")
    tokens = add_tokens(a, "claim-race", n)
    # both burn the same tokens in the same order, at the same time, with their own key
    a.send(f"burn claim-race acme.gw-1 {KEY1} " + " ".join(tokens))
    b.send(f"burn claim-race acme.gw-1 {KEY2} " + " ".join(tokens))
    ra, rb = a.recv(), b.recv()
    assert ra.startswith("ok ") and rb.startswith("ok "), (ra, rb)
    wins_a, lost_a = map(int, ra.split()[1:])
    wins_b, lost_b = map(int, rb.split()[1:])
    assert wins_a + wins_b == n and lost_a == wins_b and lost_b == wins_a, (ra, rb)
    # psql: every token used once, by the key of the process that says it won it
    rows = dict(line.split("|") for line in pg_database.psql(
        "SELECT coalesce(used_key, 'unused'), count(*) FROM tokens GROUP BY 1").splitlines())
    assert rows == {k: str(v) for k, v in ((KEY1, wins_a), (KEY2, wins_b)) if v}, rows


def test_two_processes_share_one_rate_limit(pg_database, clients):
    limit, each = 100, 150
    a, b = clients(pg_database.uri), clients(pg_database.uri)
    a.send(f"rate claim-rate {limit} {each}")
    b.send(f"rate claim-rate {limit} {each}")
    ra, rb = a.recv(), b.recv()
    allowed = int(ra.split()[1]) + int(rb.split()[1])
    denied = int(ra.split()[2]) + int(rb.split()[2])
    assert (allowed, denied) == (limit, 2 * each - limit), (ra, rb)
    assert pg_database.psql("SELECT attempts FROM enroll_rate WHERE claim_id = "
                            "'claim-rate'") == str(2 * each)


# -- connection loss ----------------------------------------------------------------------------


def test_a_long_lived_client_survives_restarts_and_killed_sessions(pg_database, clients):
    srv = pg_database.server
    c = clients(pg_database.uri)
    c.ok("claim claim-up acme")
    t = add_tokens(c, "claim-up", 5)
    assert c.ok(f"burn claim-up acme.gw-1 {KEY1} {t[0]}") == [1, 0]

    srv.restart()  # fast shutdown: the server tells its clients before closing
    assert c.ok(f"burn claim-up acme.gw-2 {KEY1} {t[1]}") == [1, 0]

    srv.restart("immediate")  # no shutdown checkpoint, sessions cut at once
    assert c.ok(f"burn claim-up acme.gw-3 {KEY1} {t[2]}") == [1, 0]

    assert srv.terminate(pg_database.name) == 1
    assert c.ok(f"burn claim-up acme.gw-4 {KEY1} {t[3]}") == [1, 0]

    # server down: a clear error now, and no lasting failure once it is back
    srv.stop()
    answer = c.call(f"burn claim-up acme.gw-5 {KEY1} {t[4]}")
    assert answer.startswith("err 5 "), answer
    assert f'"{srv.host}", port {srv.port}' in answer, answer
    assert srv.password not in answer
    srv.start()
    assert c.ok(f"burn claim-up acme.gw-5 {KEY1} {t[4]}") == [1, 0]
    assert c.ok("count claim-up") == [5, 0]
    assert pg_database.psql("SELECT string_agg(used_identity, ',' ORDER BY used_identity) "
                            "FROM tokens") == ",".join(f"acme.gw-{i}" for i in range(1, 6))


def test_connection_lost_inside_a_transaction(pg_database, clients):
    srv = pg_database.server
    c = clients(pg_database.uri)
    c.ok("claim claim-tx acme")
    t1, t2 = add_tokens(c, "claim-tx", 2)
    c.ok("begin")
    assert c.ok(f"burn claim-tx acme.gw-1 {KEY1} {t1}") == [1, 0]
    assert srv.terminate(pg_database.name) == 1
    # inside the transaction: -EIO, no silent reconnection that would lose the burn above
    assert c.call(f"burn claim-tx acme.gw-2 {KEY1} {t2}").startswith("err 5 ")
    assert c.call("commit").startswith("err 5 ")
    # after it: the next call reconnects
    assert c.ok(f"burn claim-tx acme.gw-2 {KEY1} {t2}") == [1, 0]
    assert c.ok("count claim-tx") == [2, 1]
    assert pg_database.psql(f"SELECT used_at IS NULL FROM tokens WHERE token_hash = "
                            f"'{token_hash(t1)}'") == "t"


def test_lock_timeout_gives_busy_and_aborts_the_transaction(pg_database, clients):
    srv = pg_database.server
    # a lock_timeout in the URI is kept (the registry sets 10 s only where none is set)
    c = clients(pg_database.uri + "?options=-clock_timeout%3D300")
    c.ok("claim claim-ab acme")
    [t1] = add_tokens(c, "claim-ab", 1)
    c.ok("begin")
    assert c.ok(f"burn claim-ab acme.gw-1 {KEY1} {t1}") == [1, 0]
    holder = srv.psql_background("BEGIN; LOCK TABLE enroll_rate IN ACCESS EXCLUSIVE MODE; "
                                 "SELECT pg_sleep(3); COMMIT", db=pg_database.name)
    try:
        deadline = time.monotonic() + 10
        while pg_database.psql("SELECT count(*) FROM pg_locks l JOIN pg_class c ON "
                               "c.oid = l.relation WHERE c.relname = 'enroll_rate' AND "
                               "l.mode = 'AccessExclusiveLock' AND l.granted") != "1":
            assert time.monotonic() < deadline, "the lock holder did not get its lock"
            time.sleep(0.05)
        start = time.monotonic()
        answer = c.call("rate claim-ab 10 1")
        assert answer.startswith("err 16 ") and "55P03" in answer, answer  # -EBUSY
        assert time.monotonic() - start < 2.5
        # PostgreSQL aborted the transaction: COMMIT must not report success
        answer = c.call("commit")
        assert answer.startswith("err 5 ") and "aborted" in answer, answer
    finally:
        holder.wait(timeout=30)
    assert c.ok("count claim-ab") == [1, 1]


def test_a_role_with_table_grants_only_uses_an_existing_registry(pg_database, clients):
    owner = clients(pg_database.uri)
    assert owner.first == "ready"  # creates the schema
    role, pw = f"{pg_database.name}_dml", secrets.token_hex(8)
    pg_database.psql(f"CREATE ROLE {role} LOGIN PASSWORD '{pw}'; "
                     f"GRANT USAGE ON SCHEMA public TO {role}; "
                     f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public "
                     f"TO {role}")
    dbs = [pg_database]
    try:
        uri = pg_database.server.uri(pg_database.name, password=pw, user=role)
        c = clients(uri)
        assert c.first == "ready"
        c.ok("claim claim-dml acme")
        [t] = add_tokens(c, "claim-dml", 1)
        assert c.ok(f"burn claim-dml acme.gw-1 {KEY1} {t}") == [1, 0]
        assert c.ok("rate claim-dml 5 2") == [2, 0]
        c.close()
        # the same role cannot create a registry: a clear refusal
        fresh = pg_database.server.create_database()
        dbs.append(fresh)
        fresh.psql(f"REVOKE CREATE ON SCHEMA public FROM PUBLIC; GRANT USAGE ON SCHEMA public "
                   f"TO {role}")
        denied = clients(pg_database.server.uri(fresh.name, password=pw, user=role))
        assert denied.first.startswith("err 13 ") and "permission denied" in denied.first
    finally:
        for db in dbs:
            db.psql(f"DROP OWNED BY {role}")
        pg_database.psql(f"DROP ROLE {role}")


# -- login errors -------------------------------------------------------------------------------


def test_login_errors_name_the_server_never_the_password(pg_server, clients):
    wrong = "Wr0ng-" + secrets.token_hex(6)
    bad = clients(pg_server.uri("postgres", password=wrong))
    assert bad.first.startswith("err 5 "), bad.first
    assert f'"{pg_server.host}", port {pg_server.port}' in bad.first
    assert "password authentication failed" in bad.first
    assert wrong not in bad.first
    assert bad.close() == 1

    port = free_port()
    down = clients(pg_server.uri("postgres", password=wrong, port=port) + "?connect_timeout=5")
    assert down.first.startswith("err 5 "), down.first
    assert f'"{pg_server.host}", port {port}' in down.first and "refused" in down.first
    assert wrong not in down.first

    nodb = clients(pg_server.uri("no_such_db"))
    assert nodb.first.startswith("err 5 ") and '"no_such_db" does not exist' in nodb.first
    assert pg_server.password not in nodb.first

    # libpq's key=value words after "postgresql:" work the same way
    words = f"host={pg_server.host} port={pg_server.port} user=floe dbname=postgres"
    assert clients(f"postgresql: {words} password='{pg_server.password}'").first == "ready"
    kv = clients(f"postgres:{words} password='{wrong}'")
    assert kv.first.startswith("err 5 ") and "password authentication failed" in kv.first
    assert wrong not in kv.first
    # a malformed location is refused with libpq's reason, its secret scrubbed
    bad_uri = clients(f"postgresql://floe:{wrong}%zz@{pg_server.host}/postgres")
    assert bad_uri.first.startswith("err 22 ") and "percent-encoded" in bad_uri.first
    assert wrong not in bad_uri.first


# -- floe-ca and floe-enrolld on PostgreSQL ------------------------------------------------------


def floe_ca_has_registry_option(bindir):
    r = subprocess.run([str(Path(bindir) / "floe-ca"), "--help"], capture_output=True,
                       text=True, timeout=30)
    return "--registry" in r.stdout + r.stderr


def test_floe_ca_and_two_enrolld_daemons_share_a_postgresql_registry(pg_database, tmp_path,
                                                                      monkeypatch):
    import enroll_client
    from enroll_client import Env, make_csr
    from test_floe_ca import FloeCA

    bindir = os.environ.get("FLOE_BIN")
    if not bindir:
        pytest.skip("FLOE_BIN is not set: run through `make system`")
    if not floe_ca_has_registry_option(bindir):
        pytest.skip("floe-ca init --registry is not built yet (certs/floe-ca.c)")
    uri = pg_database.uri

    class PgFloeCA(FloeCA):
        def run(self, *args, **kwargs):
            if args and args[0] == "init":
                args = (*args, "--registry", uri)
            return super().run(*args, **kwargs)

    monkeypatch.setattr(enroll_client, "FloeCA", PgFloeCA)
    rate = 12
    env = Env(bindir, tmp_path, defaults={"limits__claim_rate": rate,
                                          "limits__rate_window": "24h",
                                          "enrolld__validity": "30d"})
    daemons = []
    try:
        assert not (env.ca.dir / "registry.db").exists()
        # init recorded its CA certificates in PostgreSQL
        assert int(pg_database.psql("SELECT count(*) FROM certificates WHERE kind = 'ca'")) >= 5
        daemons = [env.enrolld(name=f"enrolld-{i}").start() for i in range(2)]

        # each one-time token is asked for twice at once, with two keys: one wins
        n = 6
        idents = [f"acme.pg-{i}" for i in range(n)]
        creds, tokens = env.claim("pg", tokens_for=idents)
        keys = [make_csr(env.keys, f"pg-{i}", subject=f"/CN=pg-{i}") for i in range(2 * n)]
        with env.client(creds, "claim-pg") as c:
            corrs = [c.send({"identity": idents[i // 2], "csr": keys[i][1],
                             "token": tokens[idents[i // 2]]}) for i in range(2 * n)]
            answers = [c.wait(x) for x in corrs]
        for i in range(n):
            pair = sorted(a["status"] + ":" + a.get("reason", "") for a in answers[2 * i:2 * i + 2])
            assert pair == ["error:token-used", "ok:"], (i, answers[2 * i:2 * i + 2])
        enrolled = sorted(a["identity"] for a in answers if a["status"] == "ok")
        wins = [d.log_text().count("enrolled acme.pg-") for d in daemons]
        decided = [w + d.log_text().count("for acme.pg-") for w, d in zip(wins, daemons)]
        assert sum(wins) == n and all(decided), (wins, decided)  # both daemons decided some
        listed = sorted(x["identity"] for x in env.ca.list_json("--kind", "device"))
        assert listed == enrolled
        assert pg_database.psql("SELECT count(*) FROM tokens WHERE used_at IS NOT NULL") == str(n)

        # the claim's rate limit holds across both daemons: 2 n requests so far
        with env.client(creds, "claim-pg") as c:
            corrs = [c.send({"identity": "acme.pg-x", "csr": keys[0][1], "token": tokens[idents[0]]})
                     for _ in range(rate - 2 * n + 3)]
            answers = [c.wait(x) for x in corrs]
        reasons = [a.get("reason", "ok") for a in answers]
        assert reasons.count("rate-limited") == 3, reasons

        # PostgreSQL restarts under the daemons: the next enrollment still works
        pg_database.server.restart()
        creds2, tokens2 = env.claim("pg2", tokens_for=["acme.pg-after"])
        key, csr = make_csr(env.keys, "pg-after", subject="/CN=acme.pg-after")
        with env.client(creds2, "claim-pg2") as c:
            res = c.request({"identity": "acme.pg-after", "csr": csr,
                             "token": tokens2["acme.pg-after"]}, timeout=30)
        assert res["status"] == "ok", res
        assert pg_database.psql("SELECT count(*) FROM certificates WHERE identity = "
                                "'acme.pg-after'") == "1"
        for d in daemons:
            assert pg_database.server.password not in d.log_text()
    finally:
        for d in daemons:
            d.stop()
        env.broker.stop()


def test_floe_ca_names_the_server_on_a_failed_login(pg_server, tmp_path):
    bindir = os.environ.get("FLOE_BIN")
    if not bindir or not floe_ca_has_registry_option(bindir):
        pytest.skip("floe-ca init --registry is not built")
    wrong = "Wr0ng-" + secrets.token_hex(6)
    r = subprocess.run([str(Path(bindir) / "floe-ca"), "--dir", str(tmp_path / "ca"), "init",
                        "--registry", pg_server.uri("postgres", password=wrong)],
                       capture_output=True, text=True, timeout=60)
    out = r.stdout + r.stderr
    assert r.returncode != 0 and wrong not in out
    assert f'"{pg_server.host}", port {pg_server.port}' in out, out
    assert "password authentication failed" in out, out
