"""The SQL catalog (uploader/catalog/, docs/catalog.md) on SQLite and on a real PostgreSQL 15
(pg.py): the unit suite (tests/unit/test-catalog.c) run against PostgreSQL; processes
committing in a loop through `floe-lake catalog` with a ledger insert in each commit's
transaction (no lost update, every success recorded exactly once, losers see exit 5 and retry);
the tables checked column by column against Iceberg's JdbcUtil DDL with Debian's Python sqlite3
module and with psql, independently of the C code; and the CLI's errors.
"""

import os
import sqlite3
import subprocess
import threading
from pathlib import Path

import pytest

from pg import pg_database, pg_server  # noqa: F401  (fixtures)

# Iceberg's core/src/main/java/org/apache/iceberg/jdbc/JdbcUtil.java, verbatim.
JDBC_V0_CREATE_CATALOG_SQL = (
    "CREATE TABLE iceberg_tables(catalog_name VARCHAR(255) NOT NULL,table_namespace "
    "VARCHAR(255) NOT NULL,table_name VARCHAR(255) NOT NULL,metadata_location VARCHAR(1000),"
    "previous_metadata_location VARCHAR(1000),PRIMARY KEY (catalog_name, table_namespace, "
    "table_name))")
JDBC_V1_UPDATE_CATALOG_SQL = "ALTER TABLE iceberg_tables ADD COLUMN iceberg_type VARCHAR(5)"
JDBC_CREATE_NAMESPACE_PROPERTIES_TABLE_SQL = (
    "CREATE TABLE iceberg_namespace_properties(catalog_name VARCHAR(255) NOT NULL,namespace "
    "VARCHAR(255) NOT NULL,property_key VARCHAR(255),property_value VARCHAR(1000),PRIMARY KEY "
    "(catalog_name, namespace, property_key))")
# PyIceberg's pyiceberg/catalog/sql.py models: (column, SQL type, nullable)
PYICEBERG = {
    "iceberg_tables": [("catalog_name", "VARCHAR(255)", False),
                       ("table_namespace", "VARCHAR(255)", False),
                       ("table_name", "VARCHAR(255)", False),
                       ("metadata_location", "VARCHAR(1000)", True),
                       ("previous_metadata_location", "VARCHAR(1000)", True)],
    "iceberg_namespace_properties": [("catalog_name", "VARCHAR(255)", False),
                                     ("namespace", "VARCHAR(255)", False),
                                     ("property_key", "VARCHAR(255)", False),
                                     ("property_value", "VARCHAR(1000)", False)],
}


@pytest.fixture
def floe_lake():
    bindir = os.environ.get("FLOE_BIN")
    if not bindir:
        pytest.skip("FLOE_BIN is not set: run through `make system`")
    path = str(Path(bindir) / "floe-lake")
    if not os.access(path, os.X_OK):
        pytest.skip(f"floe-lake is not built ({path})")
    r = subprocess.run([path, "catalog", "--help"], capture_output=True, text=True)
    if r.returncode != 0 or "usage: floe-lake catalog" not in r.stdout:
        pytest.skip(f"`floe-lake catalog --help` failed (exit {r.returncode}): the catalog "
                    "commands are not wired into floe-lake yet")
    return path


class Catalog:
    def __init__(self, binary, location):
        self.binary, self.location = binary, location

    def run(self, *args, name=None):
        cmd = [self.binary, "catalog", *(["--name", name] if name else []), self.location, *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60)

    def ok(self, *args, **kw):
        r = self.run(*args, **kw)
        assert r.returncode == 0, f"{args}: exit {r.returncode}: {r.stderr}"
        return r.stdout


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog(request, floe_lake, tmp_path):
    if request.param == "sqlite":
        return Catalog(floe_lake, str(tmp_path / "catalog.db"))
    db = request.getfixturevalue("pg_database")
    c = Catalog(floe_lake, db.uri)
    c.db = db
    return c


# -- the unit suite on PostgreSQL -----------------------------------------------------------

def test_unit_suite_on_postgresql(pg_database):
    bindir = os.environ.get("FLOE_BIN")
    binary = Path(bindir or ".") / "tests" / "test-catalog"
    if not bindir or not os.access(binary, os.X_OK):
        pytest.skip(f"the unit test binary is not built ({binary})")
    r = subprocess.run([str(binary)], capture_output=True, text=True, timeout=600,
                       env=dict(os.environ, FLOE_TEST_CATALOG=pg_database.uri,
                                CMOCKA_MESSAGE_OUTPUT="STDOUT"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "catalog backend: postgresql" in r.stdout
    assert "[  PASSED  ] 9 test(s)." in r.stdout + r.stderr, r.stdout + r.stderr


# -- concurrency ------------------------------------------------------------------------------

def test_concurrent_commits(catalog):
    """Workers load, then commit with --expect and a ledger insert; on a conflict (exit 5) they
    reload and retry. Afterwards: one ledger row per success, and the rows form one chain of
    locations from the first to the last, which is the table's location: no lost update."""
    workers, commits = 4, 10
    catalog.ok("create", "floe", "events", "m/v0.metadata.json")
    catalog.ok("run", "--exec", "CREATE TABLE ledger (worker VARCHAR(16) NOT NULL, seq INTEGER "
                                "NOT NULL, expected VARCHAR(100) NOT NULL, new VARCHAR(100) NOT "
                                "NULL, PRIMARY KEY (worker, seq))")
    conflicts = [0] * workers
    errors = []

    def work(w):
        i = 0
        while i < commits and not errors:
            cur = catalog.ok("load", "floe", "events").strip()
            new = f"m/w{w}-{i}.metadata.json"
            r = catalog.run("commit", "floe", "events", new, "--expect", cur,
                            "--exec", "INSERT INTO ledger (worker, seq, expected, new) VALUES "
                                      "(?, ?, ?, ?)",
                            "--arg", f"w{w}", "--arg", str(i), "--arg", cur, "--arg", new)
            if r.returncode == 0:
                i += 1
            elif r.returncode in (5, 6):  # lost the compare-and-swap, or busy: retry
                conflicts[w] += 1
                if r.returncode == 5:
                    assert "not the one expected" in r.stderr, r.stderr
            else:
                errors.append(f"worker {w}: exit {r.returncode}: {r.stderr}")

    threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    rows = catalog.ok("run", "--exec", "SELECT worker, seq, expected, new FROM ledger",
                      "--columns", "4").splitlines()
    assert len(rows) == workers * commits
    succ = {}
    for row in rows:
        worker, seq, expected, new = row.split("\t")
        assert expected not in succ, f"two commits on top of {expected}"
        succ[expected] = new
    loc, n = "m/v0.metadata.json", 0
    while loc in succ:
        loc, n = succ[loc], n + 1
    assert n == workers * commits
    assert catalog.ok("load", "floe", "events").strip() == loc
    assert sum(conflicts) > 0, "no commit ever conflicted: the test raced nothing"


# -- the schema, checked independently ------------------------------------------------------

def columns_sqlite(db, table):
    return [(r[1], r[2].upper(), r[3], r[4], r[5])
            for r in db.execute(f"PRAGMA table_info({table})")]


def test_sqlite_schema_is_jdbc_catalogs(floe_lake, tmp_path):
    path = tmp_path / "catalog.db"
    Catalog(floe_lake, f"sqlite:{path}").ok("create-namespace", "db")
    ours = sqlite3.connect(path)
    ref = sqlite3.connect(":memory:")
    for sql in (JDBC_V0_CREATE_CATALOG_SQL, JDBC_V1_UPDATE_CATALOG_SQL,
                JDBC_CREATE_NAMESPACE_PROPERTIES_TABLE_SQL):
        ref.execute(sql)
    for table in ("iceberg_tables", "iceberg_namespace_properties"):
        got, want = columns_sqlite(ours, table), columns_sqlite(ref, table)
        assert got == want, f"{table}:\n ours {got}\n JDBC {want}"
        # PyIceberg's models: same columns and types (it makes the property columns NOT NULL;
        # floe never writes NULL there)
        py = [(n, t) for n, t, _ in PYICEBERG[table]]
        assert [(c[0], c[1]) for c in got if c[0] != "iceberg_type"] == py
    assert ours.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert ours.execute("SELECT catalog_name, namespace, property_key, property_value FROM "
                        "iceberg_namespace_properties").fetchall() == \
        [("floe", "db", "exists", "true")]
    ours.close()


def test_postgresql_schema_is_jdbc_catalogs(floe_lake, pg_database):
    Catalog(floe_lake, pg_database.uri).ok("create-namespace", "db")
    pg_database.psql("CREATE SCHEMA jdbc_ref")
    pg_database.psql("SET search_path = jdbc_ref; " + JDBC_V0_CREATE_CATALOG_SQL + "; " +
                     JDBC_V1_UPDATE_CATALOG_SQL + "; " +
                     JDBC_CREATE_NAMESPACE_PROPERTIES_TABLE_SQL)

    def describe(schema, table):
        return pg_database.psql(
            "SELECT string_agg(column_name || ' ' || data_type || ' ' || "
            "coalesce(character_maximum_length::text, '-') || ' ' || is_nullable, ', ' ORDER BY "
            f"ordinal_position) FROM information_schema.columns WHERE table_schema = '{schema}' "
            f"AND table_name = '{table}'")

    def primary_key(schema, table):
        return pg_database.psql(
            "SELECT string_agg(a.attname, ',' ORDER BY array_position(i.indkey, a.attnum)) "
            "FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = "
            f"ANY(i.indkey) WHERE i.indrelid = '{schema}.{table}'::regclass AND i.indisprimary")

    for table in ("iceberg_tables", "iceberg_namespace_properties"):
        assert describe("public", table) == describe("jdbc_ref", table)
        assert primary_key("public", table) == primary_key("jdbc_ref", table)
    assert primary_key("public", "iceberg_tables") == "catalog_name,table_namespace,table_name"


def test_pyiceberg_reads_our_catalog(floe_lake, tmp_path):
    sql = pytest.importorskip("pyiceberg.catalog.sql", reason="PyIceberg is not installed")
    path = tmp_path / "catalog.db"
    c = Catalog(floe_lake, str(path))
    c.ok("create", "db", "events", "file:///nowhere/v1.metadata.json")
    cat = sql.SqlCatalog("floe", uri=f"sqlite:///{path}", warehouse=f"file://{tmp_path}")
    assert ("db",) in cat.list_namespaces()
    assert cat.list_tables("db") == [("db", "events")]


# -- the CLI ----------------------------------------------------------------------------------

def test_cli(catalog):
    c = catalog
    c.ok("create-namespace", "a.b")
    r = c.run("create-namespace", "a.b")
    assert r.returncode == 3 and "exists already" in r.stderr
    c.ok("create", "a.b", "t", "s3://lake/t/metadata/v1.metadata.json")
    assert c.run("create", "a.b", "t", "x").returncode == 3
    assert c.ok("load", "a.b", "t") == "s3://lake/t/metadata/v1.metadata.json\n"
    r = c.run("load", "a.b", "nope")
    assert r.returncode == 4 and "not registered" in r.stderr
    r = c.run("commit", "a.b", "t", "v3", "--expect", "v2")
    assert r.returncode == 5 and "s3://lake/t/metadata/v1.metadata.json" in r.stderr
    c.ok("commit", "a.b", "t", "s3://lake/t/metadata/v2.metadata.json", "--expect",
         "s3://lake/t/metadata/v1.metadata.json")
    # another catalog name is another catalog in the same database
    c.ok("create", "a.b", "t", "elsewhere", name="other")
    assert c.ok("list") == "a.b\tt\ts3://lake/t/metadata/v2.metadata.json\n"
    assert c.ok("list", name="other") == "a.b\tt\telsewhere\n"
    # a failing statement rolls the commit back
    r = c.run("commit", "a.b", "t", "v3", "--expect", "s3://lake/t/metadata/v2.metadata.json",
              "--exec", "INSERT INTO no_such_table VALUES (1)")
    assert r.returncode == 1
    assert c.ok("load", "a.b", "t") == "s3://lake/t/metadata/v2.metadata.json\n"
    c.ok("drop", "a.b", "t")
    assert c.run("drop", "a.b", "t").returncode == 4
    assert c.run("create", "a..b", "t", "x").returncode == 1
    assert c.run("bogus").returncode == 2
    assert c.run("commit", "a.b", "t", "new").returncode == 2  # no --expect


def test_postgresql_login_errors_hide_the_password(floe_lake, pg_database):
    wrong = pg_database.uri.replace(pg_database.server.password, "wr0ng-pa55word")
    r = Catalog(floe_lake, wrong).run("list")
    assert r.returncode == 1
    assert "password authentication failed" in r.stderr, r.stderr
    assert "wr0ng-pa55word" not in r.stderr and pg_database.server.password not in r.stderr
