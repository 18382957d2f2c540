/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The SQL catalog (uploader/catalog/catalog.h) on a real SQLite file, or on a real PostgreSQL
 * server when FLOE_TEST_CATALOG is a postgresql:// URI (each test then runs in a schema of its
 * own, dropped afterwards). The schema is checked column by column against Iceberg's JdbcUtil
 * DDL through the database itself (sqlite3 / libpq), not through the catalog.
 */
#include <errno.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include "catalog.h"
#include "ledger.h"
#include "floe-alloc.h"
#include "floe-sql.h"

/* FLOE_TEST_CATALOG when it names a PostgreSQL server, else NULL (SQLite). */
static const char *pg_base;

struct fx {
        char dir[64];
        char loc[1024];  /* the catalog location */
        char schema[64]; /* PostgreSQL: this test's schema */
        PGconn *admin;   /* PostgreSQL: raw SQL beside the catalog */
        struct lake_catalog *c;
};

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st, (void)flag, (void)ftw;
        return remove(path);
}

/* Runs SQL beside the catalog; with out, the first column of every row, '|'-joined. */
static int raw(struct fx *f, const char *sql, char *out, size_t size)
{
        size_t w = 0;
        int ok;

        if (out)
                out[0] = '\0';
        if (!pg_base) {
                sqlite3 *db;
                sqlite3_stmt *st;

                assert_int_equal(sqlite3_open(f->loc, &db), SQLITE_OK);
                ok = sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK;
                while (ok) {
                        int rc = sqlite3_step(st);

                        if (rc == SQLITE_DONE)
                                break;
                        if (rc != SQLITE_ROW) {
                                ok = 0;
                                break;
                        }
                        if (out && w < size) {
                                const char *v = (const char *)sqlite3_column_text(st, 0);

                                w += (size_t)snprintf(out + w, size - w, "%s%s", w ? "|" : "",
                                                      v ? v : "NULL");
                        }
                }
                if (!ok)
                        print_error("%s: %s\n", sql, sqlite3_errmsg(db));
                sqlite3_finalize(st);
                sqlite3_close(db);
                return ok ? 0 : -1;
        }
        PGresult *res = PQexec(f->admin, sql);

        ok = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK;
        if (!ok)
                print_error("%s: %s", sql, PQresultErrorMessage(res));
        for (int i = 0; ok && out && i < PQntuples(res) && w < size; i++)
                w += (size_t)snprintf(out + w, size - w, "%s%s", w ? "|" : "",
                                      PQgetisnull(res, i, 0) ? "NULL" : PQgetvalue(res, i, 0));
        PQclear(res);
        return ok ? 0 : -1;
}

static void location_for(struct fx *f, const char *suffix, char *buf, size_t size)
{
        char sql[160];

        if (!pg_base) {
                snprintf(buf, size, "%s/catalog%s.db", f->dir, suffix);
                return;
        }
        snprintf(sql, sizeof(sql), "CREATE SCHEMA IF NOT EXISTS %s%s", f->schema, suffix);
        assert_int_equal(raw(f, sql, NULL, 0), 0);
        snprintf(buf, size, "%s%coptions=-csearch_path%%3D%s%s", pg_base,
                 strchr(pg_base, '?') ? '&' : '?', f->schema, suffix);
}

static int setup(void **state)
{
        static unsigned n;
        struct fx *f = calloc(1, sizeof(*f));

        assert_non_null(f);
        snprintf(f->dir, sizeof(f->dir), "/tmp/floe-test-catalog-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        if (pg_base) {
                f->admin = PQconnectdb(pg_base);
                if (PQstatus(f->admin) != CONNECTION_OK)
                        fail_msg("FLOE_TEST_CATALOG: %s", PQerrorMessage(f->admin));
                snprintf(f->schema, sizeof(f->schema), "floe_cat_%ld_%u", (long)getpid(), n++);
                assert_int_equal(raw(f, "SET client_min_messages = warning", NULL, 0), 0);
        }
        location_for(f, "", f->loc, sizeof(f->loc));
        if (pg_base) {
                char sql[160];

                snprintf(sql, sizeof(sql), "SET search_path = %s", f->schema);
                assert_int_equal(raw(f, sql, NULL, 0), 0);
        }
        *state = f;
        return 0;
}

static int setup_open(void **state)
{
        struct fx *f;

        setup(state);
        f = *state;
        assert_int_equal(lake_catalog_open(f->loc, NULL, &f->c), 0);
        return 0;
}

static int teardown(void **state)
{
        static const char *const suffixes[] = {"", "_v0", "_x", "_s0", "_s1", "_s2", "_s3"};
        struct fx *f = *state;
        char sql[160];

        lake_catalog_close(f->c);
        for (size_t i = 0; f->admin && i < ELEMENTSOF(suffixes); i++) {
                snprintf(sql, sizeof(sql), "DROP SCHEMA IF EXISTS %s%s CASCADE", f->schema,
                         suffixes[i]);
                assert_int_equal(raw(f, sql, NULL, 0), 0);
        }
        PQfinish(f->admin);
        assert_int_equal(nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
        free(f);
        return 0;
}

/* -- schema ---------------------------------------------------------------------------------- */

/* "name type notnull pk" per column of table, '|'-joined, in column order. */
static void describe(struct fx *f, const char *table, char *out, size_t size)
{
        char sql[1024];

        if (!pg_base)
                snprintf(sql, sizeof(sql),
                         "SELECT name || ' ' || lower(type) || ' ' || \"notnull\" || ' ' || "
                         "(pk > 0) FROM pragma_table_info('%s') ORDER BY cid",
                         table);
        else
                snprintf(sql, sizeof(sql),
                         "SELECT c.column_name || ' ' || c.data_type || "
                         "coalesce('(' || c.character_maximum_length || ')', '') || ' ' || "
                         "(c.is_nullable = 'NO')::int || ' ' || "
                         "(EXISTS (SELECT 1 FROM information_schema.key_column_usage k JOIN "
                         "information_schema.table_constraints t USING (constraint_schema, "
                         "constraint_name) WHERE t.constraint_type = 'PRIMARY KEY' AND "
                         "k.table_schema = c.table_schema AND k.table_name = c.table_name AND "
                         "k.column_name = c.column_name))::int "
                         "FROM information_schema.columns c WHERE c.table_schema = "
                         "current_schema() AND c.table_name = '%s' ORDER BY c.ordinal_position",
                         table);
        assert_int_equal(raw(f, sql, out, size), 0);
}

static void test_schema(void **state)
{
        struct fx *f = *state;
        char got[1024];
        /* JdbcUtil V0_CREATE_CATALOG_SQL + V1_UPDATE_CATALOG_SQL; CREATE_NAMESPACE_PROPERTIES */
        const char *tables_sqlite = "catalog_name varchar(255) 1 1|table_namespace varchar(255) 1 "
                                    "1|table_name varchar(255) 1 1|metadata_location "
                                    "varchar(1000) 0 0|previous_metadata_location varchar(1000) "
                                    "0 0|iceberg_type varchar(5) 0 0";
        const char *ns_sqlite = "catalog_name varchar(255) 1 1|namespace varchar(255) 1 "
                                "1|property_key varchar(255) 0 1|property_value varchar(1000) 0 0";
        const char *tables_pg = "catalog_name character varying(255) 1 1|table_namespace "
                                "character varying(255) 1 1|table_name character varying(255) 1 "
                                "1|metadata_location character varying(1000) 0 "
                                "0|previous_metadata_location character varying(1000) 0 "
                                "0|iceberg_type character varying(5) 0 0";
        /* PostgreSQL makes primary key columns NOT NULL */
        const char *ns_pg = "catalog_name character varying(255) 1 1|namespace character "
                            "varying(255) 1 1|property_key character varying(255) 1 "
                            "1|property_value character varying(1000) 0 0";
        struct lake_catalog *again;

        assert_int_equal(lake_catalog_open(f->loc, "floe", &f->c), 0);
        describe(f, "iceberg_tables", got, sizeof(got));
        assert_string_equal(got, pg_base ? tables_pg : tables_sqlite);
        describe(f, "iceberg_namespace_properties", got, sizeof(got));
        assert_string_equal(got, pg_base ? ns_pg : ns_sqlite);
        /* opening again changes nothing */
        assert_int_equal(lake_catalog_open(f->loc, "other", &again), 0);
        lake_catalog_close(again);
        describe(f, "iceberg_tables", got, sizeof(got));
        assert_string_equal(got, pg_base ? tables_pg : tables_sqlite);
        if (!pg_base) {
                struct stat st;

                assert_int_equal(stat(f->loc, &st), 0);
                assert_int_equal(st.st_mode & 0777, 0600);
                assert_int_equal(raw(f, "PRAGMA journal_mode", got, sizeof(got)), 0);
                assert_string_equal(got, "wal");
        }
}

/* A catalog made by PyIceberg (no iceberg_type, property columns NOT NULL) or an older Java is
 * used as it is: no column added, rows without a type are tables. */
static void test_v0_catalog(void **state)
{
        struct fx *f = *state;
        char loc[1024], got[512], *where = NULL;

        location_for(f, "_v0", loc, sizeof(loc));
        snprintf(f->loc, sizeof(f->loc), "%s", loc);
        if (pg_base) {
                char sql[160];

                snprintf(sql, sizeof(sql), "SET search_path = %s_v0", f->schema);
                assert_int_equal(raw(f, sql, NULL, 0), 0);
        }
        assert_int_equal(raw(f,
                             "CREATE TABLE iceberg_tables (catalog_name VARCHAR(255) NOT NULL,"
                             " table_namespace VARCHAR(255) NOT NULL, table_name VARCHAR(255) "
                             "NOT NULL, metadata_location VARCHAR(1000), "
                             "previous_metadata_location VARCHAR(1000), PRIMARY KEY "
                             "(catalog_name, table_namespace, table_name))",
                             NULL, 0),
                         0);
        assert_int_equal(raw(f,
                             "CREATE TABLE iceberg_namespace_properties (catalog_name "
                             "VARCHAR(255) NOT NULL, namespace VARCHAR(255) NOT NULL, "
                             "property_key VARCHAR(255) NOT NULL, property_value VARCHAR(1000) "
                             "NOT NULL, PRIMARY KEY (catalog_name, namespace, property_key))",
                             NULL, 0),
                         0);
        assert_int_equal(raw(f,
                             "INSERT INTO iceberg_tables VALUES ('default', 'db', 'py', "
                             "'s3://b/py/metadata/00000-x.metadata.json', NULL)",
                             NULL, 0),
                         0);
        assert_int_equal(lake_catalog_open(loc, "default", &f->c), 0);
        describe(f, "iceberg_tables", got, sizeof(got));
        assert_null(strstr(got, "iceberg_type"));
        assert_int_equal(lake_catalog_load(f->c, "db", "py", &where), 0);
        assert_string_equal(where, "s3://b/py/metadata/00000-x.metadata.json");
        floe_free(where);
        assert_int_equal(lake_catalog_create(f->c, "db", "t", "file:///w/t/v1.metadata.json"), 0);
        assert_int_equal(lake_catalog_commit(f->c, "db", "t", "file:///w/t/v1.metadata.json",
                                             "file:///w/t/v2.metadata.json", NULL, NULL),
                         0);
        assert_int_equal(raw(f,
                             "SELECT metadata_location || ' ' || previous_metadata_location FROM "
                             "iceberg_tables WHERE table_name = 't'",
                             got, sizeof(got)),
                         0);
        assert_string_equal(got, "file:///w/t/v2.metadata.json file:///w/t/v1.metadata.json");
        assert_int_equal(lake_catalog_drop(f->c, "db", "py"), 0);
}

/* -- namespaces and tables ----------------------------------------------------------------- */

static void test_namespaces(void **state)
{
        static const char *const bad[] = {"", ".a", "a.", "a..b", "a\nb", NULL};
        struct fx *f = *state;
        struct lake_catalog *c = f->c;
        char got[256], long_name[300];

        assert_int_equal(lake_catalog_create_namespace(c, "db"), 0);
        assert_int_equal(lake_catalog_create_namespace(c, "db"), -EEXIST);
        assert_non_null(strstr(lake_catalog_error(c), "db"));
        assert_int_equal(lake_catalog_create_namespace(c, "db.sub"), 0);
        /* as Java and PyIceberg have it: the row that says a namespace exists */
        assert_int_equal(raw(f,
                             "SELECT namespace || ' ' || property_key || '=' || property_value "
                             "FROM iceberg_namespace_properties ORDER BY namespace",
                             got, sizeof(got)),
                         0);
        assert_string_equal(got, "db exists=true|db.sub exists=true");
        /* a namespace that only has tables (Java without strict mode), and one below it */
        assert_int_equal(raw(f,
                             "INSERT INTO iceberg_tables VALUES ('floe', 'j.k', 't', 'x', "
                             "NULL, 'TABLE')",
                             NULL, 0),
                         0);
        assert_int_equal(lake_catalog_create_namespace(c, "j.k"), -EEXIST);
        assert_int_equal(lake_catalog_create_namespace(c, "j"), -EEXIST);
        assert_int_equal(lake_catalog_create_namespace(c, "j_k"), 0); /* '_' is no wildcard */
        /* another catalog name in the same database is another catalog */
        struct lake_catalog *other;
        assert_int_equal(lake_catalog_open(f->loc, "other", &other), 0);
        assert_int_equal(lake_catalog_create_namespace(other, "db"), 0);
        lake_catalog_close(other);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_int_equal(lake_catalog_create_namespace(c, bad[i]), -EINVAL);
        memset(long_name, 'n', 256);
        long_name[256] = '\0';
        assert_int_equal(lake_catalog_create_namespace(c, long_name), -EINVAL);
        long_name[255] = '\0';
        assert_int_equal(lake_catalog_create_namespace(c, long_name), 0);
}

struct tables {
        char log[1024];
        int stop_at, n;
};

static int log_table(void *ud, const char *ns, const char *table, const char *loc)
{
        struct tables *t = ud;
        size_t n = strlen(t->log);

        snprintf(t->log + n, sizeof(t->log) - n, "%s.%s=%s;", ns, table, loc ? loc : "NULL");
        return ++t->n == t->stop_at ? -ECANCELED : 0;
}

static void test_tables(void **state)
{
        struct fx *f = *state;
        struct lake_catalog *c = f->c;
        struct tables t = {"", 0, 0};
        char *loc = NULL, big[1100], got[256];

        assert_int_equal(lake_catalog_create(c, "floe", "events", "file:///w/e/v1.metadata.json"),
                         0);
        /* its namespace came with it */
        assert_int_equal(lake_catalog_create_namespace(c, "floe"), -EEXIST);
        assert_int_equal(lake_catalog_create(c, "floe", "events", "file:///w/x.json"), -EEXIST);
        assert_int_equal(lake_catalog_create(c, "floe", "aggregates", "s3://b/a/v1.metadata.json"),
                         0);
        assert_int_equal(lake_catalog_create(c, "a.b", "t", "s3://b/t/v1.metadata.json"), 0);
        assert_int_equal(lake_catalog_load(c, "floe", "events", &loc), 0);
        assert_string_equal(loc, "file:///w/e/v1.metadata.json");
        floe_free(loc);
        assert_int_equal(raw(f,
                             "SELECT iceberg_type || coalesce(previous_metadata_location, '-') "
                             "FROM iceberg_tables WHERE table_name = 'events'",
                             got, sizeof(got)),
                         0);
        assert_string_equal(got, "TABLE-");
        assert_int_equal(lake_catalog_load(c, "floe", "nope", &loc), -ENOENT);
        assert_int_equal(lake_catalog_load(c, "other", "events", &loc), -ENOENT);
        /* a view of the same name space is not a table */
        assert_int_equal(raw(f,
                             "INSERT INTO iceberg_tables VALUES ('floe', 'floe', 'v', "
                             "'file:///w/v.json', NULL, 'VIEW')",
                             NULL, 0),
                         0);
        assert_int_equal(lake_catalog_load(c, "floe", "v", &loc), -ENOENT);
        assert_int_equal(
                lake_catalog_commit(c, "floe", "v", "file:///w/v.json", "file:///w/v2", NULL, NULL),
                -ENOENT);
        assert_int_equal(lake_catalog_drop(c, "floe", "v"), -ENOENT);
        assert_int_equal(lake_catalog_list(c, NULL, log_table, &t), 0);
        assert_string_equal(t.log, "a.b.t=s3://b/t/v1.metadata.json;"
                                   "floe.aggregates=s3://b/a/v1.metadata.json;"
                                   "floe.events=file:///w/e/v1.metadata.json;");
        t = (struct tables){"", 0, 0};
        assert_int_equal(lake_catalog_list(c, "floe", log_table, &t), 0);
        assert_string_equal(t.log, "floe.aggregates=s3://b/a/v1.metadata.json;"
                                   "floe.events=file:///w/e/v1.metadata.json;");
        t = (struct tables){"", 1, 0};
        assert_int_equal(lake_catalog_list(c, "floe", log_table, &t), -ECANCELED);
        assert_int_equal(t.n, 1);
        assert_int_equal(lake_catalog_drop(c, "floe", "aggregates"), 0);
        assert_int_equal(lake_catalog_drop(c, "floe", "aggregates"), -ENOENT);
        /* names and locations the schema cannot hold */
        memset(big, 'x', 1001);
        big[1001] = '\0';
        assert_int_equal(lake_catalog_create(c, "floe", "big", big), -EINVAL);
        big[1000] = '\0';
        assert_int_equal(lake_catalog_create(c, "floe", "big", big), 0);
        assert_int_equal(lake_catalog_create(c, "floe", "", "x"), -EINVAL);
        assert_int_equal(lake_catalog_create(c, "", "t", "x"), -EINVAL);
        assert_int_equal(lake_catalog_create(c, "floe", "t\x01", "x"), -EINVAL);
        assert_int_equal(lake_catalog_load(c, "floe", NULL, &loc), -EINVAL);
        assert_int_equal(lake_catalog_list(c, "a..b", log_table, &t), -EINVAL);
}

/* -- commits --------------------------------------------------------------------------------- */

struct ledger {
        const char *who;
        int64_t seq;
        int fail_with;  /* fn returns this after its insert */
        bool duplicate; /* insert without ON CONFLICT: a unique violation */
        int64_t changes;
};

static int ledger_insert(void *ud, struct lake_catalog_txn *t)
{
        struct ledger *l = ud;
        const struct lake_param p[] = {{.type = LAKE_PARAM_TEXT, .text = l->who},
                                       {.type = LAKE_PARAM_INT64, .i64 = l->seq}};
        int r;

        r = lake_catalog_txn_exec(t,
                                  l->duplicate ? "INSERT INTO ledger (who, seq) VALUES (?, ?)"
                                               : "INSERT INTO ledger (who, seq) VALUES (?, ?)"
                                                 " ON CONFLICT DO NOTHING",
                                  p, 2, 0, NULL, NULL, &l->changes);
        if (r < 0)
                return r;
        return l->fail_with;
}

static int create_ledger(void *ud, struct lake_catalog_txn *t)
{
        (void)ud;
        return lake_catalog_txn_exec(t,
                                     "CREATE TABLE ledger (who VARCHAR(64) NOT NULL, seq BIGINT "
                                     "NOT NULL, PRIMARY KEY (who, seq))",
                                     NULL, 0, 0, NULL, NULL, NULL);
}

struct rows {
        char log[256];
};

static int log_row(void *ud, int ncols, const char *const *cols)
{
        struct rows *r = ud;
        size_t n = strlen(r->log);

        for (int i = 0; i < ncols; i++)
                n += (size_t)snprintf(r->log + n, sizeof(r->log) - n, "%s%s", i ? "," : "",
                                      cols[i] ? cols[i] : "NULL");
        snprintf(r->log + n, sizeof(r->log) - n, ";");
        return 0;
}

static int read_ledger(void *ud, struct lake_catalog_txn *t)
{
        return lake_catalog_txn_exec(t, "SELECT who, seq, NULL FROM ledger ORDER BY who, seq", NULL,
                                     0, 3, log_row, ud, NULL);
}

static int nested_commit(void *ud, struct lake_catalog_txn *t)
{
        (void)t;
        return lake_catalog_commit(ud, "floe", "events", "a", "b", NULL, NULL);
}

static void test_commit(void **state)
{
        struct fx *f = *state;
        struct lake_catalog *c = f->c;
        struct ledger l = {.who = "gw-1", .seq = 1};
        struct rows rows = {""};
        char *loc = NULL, got[256];

        assert_int_equal(lake_catalog_run(c, create_ledger, NULL), 0);
        assert_int_equal(lake_catalog_create(c, "floe", "events", "m/v1.json"), 0);

        /* the swap and the ledger move together */
        assert_int_equal(lake_catalog_commit(c, "floe", "events", "m/v1.json", "m/v2.json",
                                             ledger_insert, &l),
                         0);
        assert_int_equal(l.changes, 1);
        assert_int_equal(lake_catalog_load(c, "floe", "events", &loc), 0);
        assert_string_equal(loc, "m/v2.json");
        floe_free(loc);
        assert_int_equal(raw(f,
                             "SELECT previous_metadata_location FROM iceberg_tables WHERE "
                             "table_name = 'events'",
                             got, sizeof(got)),
                         0);
        assert_string_equal(got, "m/v1.json");

        /* a stale expectation: nothing changes, the ledger insert is rolled back */
        l.seq = 2;
        assert_int_equal(lake_catalog_commit(c, "floe", "events", "m/v1.json", "m/v3.json",
                                             ledger_insert, &l),
                         -ESTALE);
        assert_non_null(strstr(lake_catalog_error(c), "m/v2.json"));
        /* the caller's failure: rolled back and returned */
        l.fail_with = -EPROTO;
        assert_int_equal(lake_catalog_commit(c, "floe", "events", "m/v2.json", "m/v3.json",
                                             ledger_insert, &l),
                         -EPROTO);
        l.fail_with = 0;
        /* a duplicate ledger row: ON CONFLICT DO NOTHING changes nothing, and the commit can go on
         */
        l.seq = 1;
        assert_int_equal(lake_catalog_commit(c, "floe", "events", "m/v2.json", "m/v3.json",
                                             ledger_insert, &l),
                         0);
        assert_int_equal(l.changes, 0);
        /* a plain duplicate insert: -EEXIST, the transaction rolled back (PostgreSQL aborts it) */
        l.duplicate = true;
        assert_int_equal(lake_catalog_commit(c, "floe", "events", "m/v3.json", "m/v4.json",
                                             ledger_insert, &l),
                         -EEXIST);
        l.duplicate = false;
        /* and the catalog works on */
        l.seq = 3;
        assert_int_equal(lake_catalog_commit(c, "floe", "events", "m/v3.json", "m/v4.json",
                                             ledger_insert, &l),
                         0);
        assert_int_equal(lake_catalog_run(c, read_ledger, &rows), 0);
        assert_string_equal(rows.log, "gw-1,1,NULL;gw-1,3,NULL;");
        assert_int_equal(lake_catalog_load(c, "floe", "events", &loc), 0);
        assert_string_equal(loc, "m/v4.json");
        floe_free(loc);

        /* no such table; no commit inside a commit; bad arguments */
        assert_int_equal(lake_catalog_commit(c, "floe", "nope", "a", "b", NULL, NULL), -ENOENT);
        assert_int_equal(lake_catalog_commit(c, "floe", "events", "m/v4.json", "m/v5.json",
                                             nested_commit, c),
                         -EBUSY);
        assert_int_equal(lake_catalog_commit(c, "floe", "events", NULL, "m/v5.json", NULL, NULL),
                         -EINVAL);
        assert_int_equal(lake_catalog_run(c, NULL, NULL), -EINVAL);
        /* statements that fail are the database's errors */
        rows = (struct rows){""};
        assert_int_equal(lake_catalog_run(c, read_ledger, &rows), 0);
        assert_string_equal(rows.log, "gw-1,1,NULL;gw-1,3,NULL;");
}

static int bad_sql(void *ud, struct lake_catalog_txn *t)
{
        (void)ud;
        return lake_catalog_txn_exec(t, "SELEC nonsense", NULL, 0, 0, NULL, NULL, NULL);
}

static void test_errors_and_open(void **state)
{
        struct fx *f = *state;
        struct lake_catalog *c = NULL;
        char why[256];

        assert_int_equal(lake_catalog_open(f->loc, NULL, &f->c), 0);
        assert_int_equal(lake_catalog_run(f->c, bad_sql, NULL), -EIO);
        assert_true(strlen(lake_catalog_error(f->c)) > 0);
        assert_int_equal(lake_catalog_open_explain("/nonexistent-dir/x/catalog.db", NULL, why,
                                                   sizeof(why), &c),
                         -ENOENT);
        assert_string_equal(why, strerror(ENOENT));
        assert_int_equal(lake_catalog_open("", NULL, &c), -EINVAL);
        assert_int_equal(lake_catalog_open("sqlite:", NULL, &c), -EINVAL);
        assert_int_equal(lake_catalog_open(f->loc, "", &c), -EINVAL);
        /* PostgreSQL without a server: the reason names it, never the password */
        assert_int_equal(lake_catalog_open_explain("postgresql://floe:s3cr3t-pw@127.0.0.1:1/floe"
                                                   "?connect_timeout=5",
                                                   NULL, why, sizeof(why), &c),
                         -EIO);
        assert_non_null(strstr(why, "127.0.0.1"));
        assert_null(strstr(why, "s3cr3t"));
        assert_null(lake_catalog_close(NULL));
        assert_string_equal(lake_catalog_error(NULL), "");
}

/* -- concurrency: processes committing in a loop, each success recorded once ------------- */

static int record(void *ud, struct lake_catalog_txn *t)
{
        const char *const *v = ud; /* who, seq, expected, new */
        const struct lake_param p[] = {{.type = LAKE_PARAM_TEXT, .text = v[0]},
                                       {.type = LAKE_PARAM_TEXT, .text = v[1]},
                                       {.type = LAKE_PARAM_TEXT, .text = v[2]},
                                       {.type = LAKE_PARAM_TEXT, .text = v[3]}};

        return lake_catalog_txn_exec(t,
                                     "INSERT INTO history (who, seq, expected, new) VALUES (?, ?, "
                                     "?, ?)",
                                     p, 4, 0, NULL, NULL, NULL);
}

static int child(const char *loc, int id, int commits)
{
        struct lake_catalog *c;
        int conflicts = 0;

        if (lake_catalog_open(loc, NULL, &c) < 0)
                return 2;
        for (int i = 0; i < commits;) {
                char who[16], seq[16], next[64], *cur = NULL;
                int r;

                snprintf(who, sizeof(who), "p%d", id);
                snprintf(seq, sizeof(seq), "%d", i);
                snprintf(next, sizeof(next), "m/p%d-%d.json", id, i);
                r = lake_catalog_load(c, "floe", "events", &cur);
                if (r < 0) {
                        lake_catalog_close(c);
                        return 3;
                }
                const char *v[] = {who, seq, cur, next};
                r = lake_catalog_commit(c, "floe", "events", cur, next, record, (void *)v);
                floe_free(cur);
                if (r == 0)
                        i++;
                else if (r == -ESTALE || r == -EBUSY)
                        conflicts++;
                else {
                        lake_catalog_close(c);
                        return 4;
                }
        }
        lake_catalog_close(c);
        return 0;
}

/* Uploaders starting together on an empty database: every one opens the catalog and sets up
 * the ledger, none fails, and the tables exist once. Several rounds, as the race is narrow. */
static int starter(const char *loc)
{
        struct lake_catalog *c = NULL;
        struct upl_ledger *l = NULL;
        int r = lake_catalog_open(loc, NULL, &c);

        if (r >= 0)
                r = upl_ledger_new("floe", 256, 60000000, &l);
        if (r >= 0)
                r = upl_ledger_setup(l, c);
        if (r < 0)
                fprintf(stderr, "starter: %s: %s\n", strerror(-r), c ? lake_catalog_error(c) : "");
        upl_ledger_free(l);
        lake_catalog_close(c);
        return r < 0 ? 1 : 0;
}

static void test_concurrent_schema_creation(void **state)
{
        enum { PROCS = 6 };
        struct fx *f = *state;

        for (int round = 0; round < 4; round++) {
                char loc[1024], suffix[8], got[256];
                pid_t pids[PROCS];

                snprintf(suffix, sizeof(suffix), "_s%d", round);
                location_for(f, suffix, loc, sizeof(loc));
                for (int i = 0; i < PROCS; i++) {
                        pids[i] = fork();
                        assert_true(pids[i] >= 0);
                        if (pids[i] == 0) {
                                if (f->admin)
                                        close(PQsocket(f->admin)); /* the child's copy only */
                                _exit(starter(loc));
                        }
                }
                for (int i = 0; i < PROCS; i++) {
                        int st;

                        assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
                        assert_true(WIFEXITED(st));
                        assert_int_equal(WEXITSTATUS(st), 0);
                }
                assert_int_equal(starter(loc), 0);
                if (pg_base) {
                        char sql[256];

                        snprintf(sql, sizeof(sql),
                                 "SELECT count(*) FROM pg_tables WHERE schemaname = '%s%s'",
                                 f->schema, suffix);
                        assert_int_equal(raw(f, sql, got, sizeof(got)), 0);
                } else {
                        struct fx g = *f;

                        snprintf(g.loc, sizeof(g.loc), "%s", loc);
                        assert_int_equal(raw(&g,
                                             "SELECT count(*) FROM sqlite_master WHERE "
                                             "type = 'table'",
                                             got, sizeof(got)),
                                         0);
                }
                assert_string_equal(got, "3"); /* the two catalog tables and the ledger */
        }
}

static void test_concurrent_commits(void **state)
{
        enum { PROCS = 4, COMMITS = 25 };
        struct fx *f = *state;
        char got[4096], want[128], expected[64];
        pid_t pids[PROCS];
        int n = 0;

        assert_int_equal(raw(f,
                             "CREATE TABLE history (who VARCHAR(16) NOT NULL, seq VARCHAR(16) NOT "
                             "NULL, expected VARCHAR(64) NOT NULL, new VARCHAR(64) NOT NULL, "
                             "PRIMARY KEY (who, seq))",
                             NULL, 0),
                         0);
        /* no connection of the parent's may be open across fork: closing it in the child
         * would end it for the parent too (PostgreSQL's Terminate message) */
        assert_int_equal(lake_catalog_open(f->loc, NULL, &f->c), 0);
        assert_int_equal(lake_catalog_create(f->c, "floe", "events", "m/v0.json"), 0);
        f->c = lake_catalog_close(f->c);
        for (int i = 0; i < PROCS; i++) {
                pids[i] = fork();
                assert_true(pids[i] >= 0);
                if (pids[i] == 0) {
                        if (f->admin)
                                close(PQsocket(f->admin)); /* the child's copy only */
                        _exit(child(f->loc, i, COMMITS));
                }
        }
        for (int i = 0; i < PROCS; i++) {
                int st;

                assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
                assert_true(WIFEXITED(st));
                assert_int_equal(WEXITSTATUS(st), 0);
        }
        /* every success recorded exactly once, and the records form one chain from v0 to the
         * final location: no commit was lost or applied on a stale base */
        assert_int_equal(raw(f, "SELECT count(*) FROM history", got, sizeof(got)), 0);
        snprintf(want, sizeof(want), "%d", PROCS * COMMITS);
        assert_string_equal(got, want);
        snprintf(expected, sizeof(expected), "m/v0.json");
        for (;;) {
                char sql[256];

                snprintf(sql, sizeof(sql), "SELECT new FROM history WHERE expected = '%s'",
                         expected);
                assert_int_equal(raw(f, sql, got, sizeof(got)), 0);
                if (!got[0])
                        break;
                assert_null(strchr(got, '|')); /* one successor only */
                assert_true(strlen(got) < sizeof(expected));
                memcpy(expected, got, strlen(got) + 1);
                n++;
        }
        assert_int_equal(n, PROCS * COMMITS);
        assert_int_equal(raw(f,
                             "SELECT metadata_location FROM iceberg_tables WHERE table_name = "
                             "'events'",
                             got, sizeof(got)),
                         0);
        assert_string_equal(got, expected);
}

/* Every allocation of a round failing in turn: -ENOMEM or success, no leaks, no half state. */
static void test_allocation_failures(void **state)
{
        struct fx *f = *state;
        bool done = false;
        char got[256];

        for (uint64_t n = 1; !done && n < 1000; n++) {
                struct lake_catalog *c = NULL;
                char *loc = NULL;
                int r;

                floe_alloc_fail_at(n);
                r = lake_catalog_open(f->loc, NULL, &c);
                if (r >= 0) {
                        r = lake_catalog_create(c, "floe", "t", "m/v1");
                        if (r == -EEXIST)
                                r = 0;
                }
                if (r >= 0)
                        r = lake_catalog_load(c, "floe", "t", &loc);
                if (r >= 0)
                        r = lake_catalog_commit(c, "floe", "t", loc, "m/v2", NULL, NULL);
                floe_free(loc);
                lake_catalog_close(c);
                done = !floe_alloc_failed();
                floe_alloc_fail_at(0);
                if (!done) {
                        assert_int_equal(r, -ENOMEM);
                        continue;
                }
                assert_int_equal(r, 0);
        }
        assert_true(done);
        assert_int_equal(raw(f, "SELECT metadata_location FROM iceberg_tables", got, sizeof(got)),
                         0);
        assert_string_equal(got, "m/v2");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_schema, setup, teardown),
                cmocka_unit_test_setup_teardown(test_v0_catalog, setup, teardown),
                cmocka_unit_test_setup_teardown(test_namespaces, setup_open, teardown),
                cmocka_unit_test_setup_teardown(test_tables, setup_open, teardown),
                cmocka_unit_test_setup_teardown(test_commit, setup_open, teardown),
                cmocka_unit_test_setup_teardown(test_errors_and_open, setup, teardown),
                cmocka_unit_test_setup_teardown(test_concurrent_schema_creation, setup, teardown),
                cmocka_unit_test_setup_teardown(test_concurrent_commits, setup, teardown),
                cmocka_unit_test_setup_teardown(test_allocation_failures, setup, teardown),
        };
        const char *env = getenv("FLOE_TEST_CATALOG");

        if (env && *env) {
                if (strncmp(env, "postgresql://", 13) != 0 &&
                    strncmp(env, "postgres://", 11) != 0) {
                        fprintf(stderr, "FLOE_TEST_CATALOG: not a postgresql:// URI (unset: "
                                        "SQLite temp files)\n");
                        return 2;
                }
                pg_base = env;
        }
        printf("catalog backend: %s\n",
               pg_base ? floe_sql_pg_ops.scheme : floe_sql_sqlite_ops.scheme);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
